/*
 * common.h — internal helpers shared by every module: error reporting, checked
 * arithmetic, allocation. Not part of the public API.
 */
#ifndef ES_COMMON_H
#define ES_COMMON_H

#include "emosteer.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* es_error and es_error_clear are public (emosteer.h). */

/* Prefixes the current thread's message with "prefix: " and returns st. */
es_status es_error_prefix(es_status st, const char *fmt, ...) ES_PRINTF(2, 3);

/* Checked arithmetic: return false on overflow, leaving *out undefined. */
static inline bool es_mul_size(size_t a, size_t b, size_t *out) {
    return !__builtin_mul_overflow(a, b, out);
}
static inline bool es_add_size(size_t a, size_t b, size_t *out) {
    return !__builtin_add_overflow(a, b, out);
}

/* calloc with overflow-checked count*size; NULL on failure (sets ES_ERR_NOMEM message). */
void *es_calloc(size_t count, size_t size);
/* aligned (64-byte) zeroed allocation; free with es_free_aligned. NULL on failure. */
void *es_alloc_aligned(size_t size);
void es_free_aligned(void *p);

/* es_strdup and es_time_s are public (emosteer.h). */

#define ES_MIN(a, b) ((a) < (b) ? (a) : (b))
#define ES_MAX(a, b) ((a) > (b) ? (a) : (b))
#define ES_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif /* ES_COMMON_H */
