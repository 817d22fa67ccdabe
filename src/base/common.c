/* common.c — error messages, allocation and clock helpers (see common.h). */
#define _POSIX_C_SOURCE 200809L
#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static _Thread_local char tls_error[1024];

es_status es_error(es_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tls_error, sizeof tls_error, fmt, ap);
    va_end(ap);
    return st;
}

es_status es_error_prefix(es_status st, const char *fmt, ...) {
    char prefix[512];
    char old[sizeof tls_error];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, tls_error, sizeof old);
    /* "prefix: old", truncated to the buffer */
    size_t np = strnlen(prefix, sizeof prefix), no = strnlen(old, sizeof old - 1);
    size_t at = 0, cap = sizeof tls_error - 1;
    for (size_t i = 0; i < np && at < cap; i++)
        tls_error[at++] = prefix[i];
    for (size_t i = 0; i < 2 && at < cap; i++)
        tls_error[at++] = ": "[i];
    for (size_t i = 0; i < no && at < cap; i++)
        tls_error[at++] = old[i];
    tls_error[at] = '\0';
    return st;
}

void es_error_clear(void) {
    tls_error[0] = '\0';
}

const char *es_last_error(void) {
    return tls_error;
}

const char *es_status_str(es_status st) {
    switch (st) {
    case ES_OK: return "ok";
    case ES_ERR_INVALID_ARG: return "invalid argument";
    case ES_ERR_IO: return "i/o error";
    case ES_ERR_FORMAT: return "malformed input";
    case ES_ERR_UNSUPPORTED: return "unsupported";
    case ES_ERR_NOMEM: return "out of memory";
    case ES_ERR_RANGE: return "out of range";
    case ES_ERR_NOT_FOUND: return "not found";
    case ES_ERR_INTERNAL: return "internal error";
    }
    return "unknown status";
}

void *es_calloc(size_t count, size_t size) {
    size_t total;
    if (!es_mul_size(count, size, &total)) {
        es_error(ES_ERR_NOMEM, "allocation of %zu x %zu bytes overflows", count, size);
        return NULL;
    }
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) es_error(ES_ERR_NOMEM, "out of memory allocating %zu bytes", total);
    return p;
}

void *es_alloc_aligned(size_t size) {
    void *p = NULL;
    size_t rounded = (size + 63) & ~(size_t)63;
    if (rounded < size || posix_memalign(&p, 64, rounded ? rounded : 64) != 0) {
        es_error(ES_ERR_NOMEM, "out of memory allocating %zu bytes", size);
        return NULL;
    }
    memset(p, 0, rounded);
    return p;
}

void es_free_aligned(void *p) {
    free(p);
}

char *es_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (!d) {
        es_error(ES_ERR_NOMEM, "out of memory duplicating a string of %zu bytes", n);
        return NULL;
    }
    memcpy(d, s, n);
    return d;
}

double es_time_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int es_cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (int)n;
}
