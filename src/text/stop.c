/*
 * stop.c — stop strings in streamed text.
 *
 * The matcher keeps the text it has not yet released in `buf`. Each feed appends the
 * new text, looks for the earliest stop string, and otherwise releases everything but
 * the longest tail that is a proper prefix of some stop string: that tail could still
 * grow into a stop string, so printing it now could print part of one.
 */
#include "common.h"

#include <stdlib.h>
#include <string.h>

struct es_stop {
    char **stops;     /* [n_stops] NUL-terminated copies, none empty */
    size_t *stop_len; /* [n_stops] */
    int *orig;        /* [n_stops] index in the caller's list (empty strings are dropped) */
    size_t n_stops;
    char *buf; /* [cap] held text; buf[0..emitted) was released by the last call */
    size_t len;
    size_t cap;
    size_t emitted; /* bytes at the front of buf handed out by the last call */
    int which;      /* index of the stop string found, or -1 */
};

es_status es_stop_create(const char *const *stops, size_t n, es_stop **out) {
    if (!out) return es_error(ES_ERR_INVALID_ARG, "stop: NULL output pointer");
    if (n > 0 && !stops)
        return es_error(ES_ERR_INVALID_ARG, "stop: NULL list of %zu stop strings", n);
    if (n > (size_t)INT32_MAX)
        return es_error(ES_ERR_INVALID_ARG, "stop: %zu stop strings is too many", n);
    es_stop *st = es_calloc(1, sizeof(*st));
    if (!st) return ES_ERR_NOMEM;
    st->which = -1;
    if (n > 0) {
        st->stops = es_calloc(n, sizeof(*st->stops));
        st->stop_len = es_calloc(n, sizeof(*st->stop_len));
        st->orig = es_calloc(n, sizeof(*st->orig));
        if (!st->stops || !st->stop_len || !st->orig) {
            es_stop_free(st);
            return ES_ERR_NOMEM;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (!stops[i]) {
            es_stop_free(st);
            return es_error(ES_ERR_INVALID_ARG, "stop: stop string %zu is NULL", i);
        }
        if (stops[i][0] == '\0') continue;
        char *copy = es_strdup(stops[i]);
        if (!copy) {
            es_stop_free(st);
            return es_error(ES_ERR_NOMEM, "stop: out of memory copying stop string %zu", i);
        }
        st->stops[st->n_stops] = copy;
        st->stop_len[st->n_stops] = strlen(copy);
        st->orig[st->n_stops] = (int)i;
        st->n_stops++;
    }
    *out = st;
    return ES_OK;
}

void es_stop_free(es_stop *st) {
    if (!st) return;
    for (size_t i = 0; i < st->n_stops; i++)
        free(st->stops[i]);
    free(st->stops);
    free(st->stop_len);
    free(st->orig);
    free(st->buf);
    free(st);
}

void es_stop_reset(es_stop *st) {
    if (!st) return;
    st->len = 0;
    st->emitted = 0;
    st->which = -1;
}

int es_stop_which(const es_stop *st) {
    return st && st->which >= 0 ? st->orig[st->which] : -1;
}

/* Earliest position of any stop string in buf[0..len); sets *which. -1 if none. */
static ptrdiff_t find_stop(const es_stop *st, int *which) {
    ptrdiff_t best = -1;
    for (size_t k = 0; k < st->n_stops; k++) {
        size_t m = st->stop_len[k];
        if (m > st->len) continue;
        size_t limit = best >= 0 ? (size_t)best : st->len - m; /* only earlier matches help */
        for (size_t i = 0; i <= limit && i + m <= st->len; i++) {
            if (st->buf[i] == st->stops[k][0] && memcmp(st->buf + i, st->stops[k], m) == 0) {
                if (best < 0 || (ptrdiff_t)i < best) {
                    best = (ptrdiff_t)i;
                    *which = (int)k;
                }
                break;
            }
        }
    }
    return best;
}

/* Length of the longest tail of buf that is a proper prefix of some stop string. */
static size_t partial_tail(const es_stop *st) {
    size_t hold = 0;
    for (size_t k = 0; k < st->n_stops; k++) {
        size_t m = st->stop_len[k];
        size_t max_t = ES_MIN(m - 1, st->len);
        for (size_t t = max_t; t > hold; t--) {
            if (memcmp(st->buf + st->len - t, st->stops[k], t) == 0) {
                hold = t;
                break;
            }
        }
    }
    return hold;
}

/* Forgets the text the previous call released. */
static void drop_emitted(es_stop *st) {
    if (st->emitted > 0) memmove(st->buf, st->buf + st->emitted, st->len - st->emitted);
    st->len -= st->emitted;
    st->emitted = 0;
}

es_status es_stop_feed(es_stop *st, const char *text, size_t len, const char **emit,
                       size_t *emit_len, bool *stopped) {
    if (!st || !emit || !emit_len || !stopped || (len > 0 && !text))
        return es_error(ES_ERR_INVALID_ARG, "stop: NULL argument to es_stop_feed");
    drop_emitted(st);
    *emit = st->buf ? st->buf : "";
    *emit_len = 0;
    if (st->which >= 0) { /* already stopped: nothing more comes out */
        st->len = 0;
        *stopped = true;
        return ES_OK;
    }
    size_t need;
    if (!es_add_size(st->len, len, &need))
        return es_error(ES_ERR_NOMEM, "stop: held text too long");
    if (need > st->cap) {
        size_t cap = st->cap ? st->cap : 64;
        while (cap < need)
            cap = cap > SIZE_MAX / 2 ? need : cap * 2;
        char *p = realloc(st->buf, cap);
        if (!p) return es_error(ES_ERR_NOMEM, "stop: out of memory holding %zu bytes", need);
        st->buf = p;
        st->cap = cap;
    }
    if (len > 0) memcpy(st->buf + st->len, text, len);
    st->len = need;
    *emit = st->buf;

    int which = -1;
    ptrdiff_t at = find_stop(st, &which);
    if (at >= 0) {
        st->which = which;
        st->emitted = (size_t)at;
        *emit_len = (size_t)at;
        *stopped = true;
        st->len = (size_t)at; /* the stop string and what follows are dropped */
        return ES_OK;
    }
    st->emitted = st->len - partial_tail(st);
    *emit_len = st->emitted;
    *stopped = false;
    return ES_OK;
}

void es_stop_flush(es_stop *st, const char **emit, size_t *emit_len) {
    if (!emit || !emit_len) return;
    *emit = "";
    *emit_len = 0;
    if (!st || !st->buf) return;
    drop_emitted(st);
    if (st->which >= 0) st->len = 0;
    *emit = st->buf;
    *emit_len = st->len;
    st->emitted = st->len; /* released; the next feed or flush drops it */
}
