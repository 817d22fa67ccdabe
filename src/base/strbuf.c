/* strbuf.c — see strbuf.h. */
#include "strbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool es_strbuf_reserve(es_strbuf *b, size_t extra) {
    if (b->failed) return false;
    size_t need;
    if (!es_add_size(b->len, extra, &need) || !es_add_size(need, 1, &need))
        return !(b->failed = true);
    if (need <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = realloc(b->data, cap);
    if (!p) return !(b->failed = true);
    b->data = p;
    b->cap = cap;
    return true;
}

void es_strbuf_append(es_strbuf *b, const char *s, size_t n) {
    if (!es_strbuf_reserve(b, n)) return;
    if (n) memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void es_strbuf_puts(es_strbuf *b, const char *s) {
    es_strbuf_append(b, s, strlen(s));
}

void es_strbuf_vprintf(es_strbuf *b, const char *fmt, va_list ap) {
    char small[512];
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    if (n < 0) {
        b->failed = true;
    } else if ((size_t)n < sizeof small) {
        es_strbuf_append(b, small, (size_t)n);
    } else if (es_strbuf_reserve(b, (size_t)n)) {
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap2);
        b->len += (size_t)n;
    }
    va_end(ap2);
}

void es_strbuf_printf(es_strbuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    es_strbuf_vprintf(b, fmt, ap);
    va_end(ap);
}

void es_strbuf_free(es_strbuf *b) {
    free(b->data);
    *b = (es_strbuf){0};
}
