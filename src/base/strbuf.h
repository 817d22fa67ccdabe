/*
 * strbuf.h — the one growing string of the library. Appends never fail loudly: an
 * allocation failure sets `failed`, later appends are dropped, and the owner checks
 * `failed` once at the end. `data` is NUL-terminated whenever it is not NULL.
 */
#ifndef ES_STRBUF_H
#define ES_STRBUF_H

#include "common.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct es_strbuf {
    char *data;  /* [cap] NUL-terminated text, or NULL while empty (owned) */
    size_t len;  /* bytes before the NUL */
    size_t cap;  /* bytes allocated */
    bool failed; /* an allocation failed: everything after it was dropped */
} es_strbuf;

/* Makes room for `extra` more bytes (and the NUL); false (and failed set) if not. */
bool es_strbuf_reserve(es_strbuf *b, size_t extra);
/* Appends n bytes of s (which may hold NULs). */
void es_strbuf_append(es_strbuf *b, const char *s, size_t n);
/* Appends a C string. */
void es_strbuf_puts(es_strbuf *b, const char *s);
/* Appends printf-formatted text. */
void es_strbuf_printf(es_strbuf *b, const char *fmt, ...) ES_PRINTF(2, 3);
void es_strbuf_vprintf(es_strbuf *b, const char *fmt, va_list ap);
/* Frees the text and empties the buffer (it can be used again). */
void es_strbuf_free(es_strbuf *b);

#endif /* ES_STRBUF_H */
