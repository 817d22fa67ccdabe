/*
 * gguf.h — reading and writing GGUF files (versions 2 and 3).
 *
 * Reader: es_gguf_open maps a file (or es_gguf_open_memory borrows a buffer) and
 * validates everything up front: header, every key/value (all 13 value types,
 * nested arrays), every tensor info (name, dims, type, offset), alignment, and that
 * every tensor's bytes lie inside the file. Every count, length and offset read
 * from the file is bounds- and overflow-checked; a failure returns ES_ERR_FORMAT
 * (or ES_ERR_IO / ES_ERR_NOMEM) with a message naming the problem and the byte
 * offset. After a successful open, the accessors below cannot fail on bad data.
 *
 * Tensor types: the reader accepts any type id known to types.h (it needs the block
 * size and byte size to check extents) and rejects unknown ids by number.
 * Whether a consumer can compute with a type is the consumer's business.
 *
 * Writer: es_gguf_writer collects key/values and tensors in memory and writes a
 * version-3 file with 32-byte alignment.
 */
#ifndef ES_GGUF_H
#define ES_GGUF_H

#include "common.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum es_gguf_vtype {
    ES_GGUF_UINT8 = 0,
    ES_GGUF_INT8 = 1,
    ES_GGUF_UINT16 = 2,
    ES_GGUF_INT16 = 3,
    ES_GGUF_UINT32 = 4,
    ES_GGUF_INT32 = 5,
    ES_GGUF_FLOAT32 = 6,
    ES_GGUF_BOOL = 7,
    ES_GGUF_STRING = 8,
    ES_GGUF_ARRAY = 9,
    ES_GGUF_UINT64 = 10,
    ES_GGUF_INT64 = 11,
    ES_GGUF_FLOAT64 = 12,
    ES_GGUF_VTYPE_COUNT = 13
} es_gguf_vtype;

/* A string inside the file: not NUL-terminated in general. */
typedef struct es_gguf_str {
    const char *ptr;
    uint64_t len;
} es_gguf_str;

#define ES_GGUF_MAX_DIMS 4

typedef struct es_gguf_tensor {
    char *name;                    /* NUL-terminated copy */
    int type;                      /* tensor type id (types.h es_type) */
    int n_dims;                    /* 1..4 */
    int64_t ne[ES_GGUF_MAX_DIMS];  /* elements per dim, fastest first; unused dims are 1 */
    uint64_t offset;               /* offset in the data section */
    size_t nbytes;                 /* bytes of data */
    const void *data;              /* pointer into the mapping */
} es_gguf_tensor;

typedef struct es_gguf es_gguf;

/* Opens and validates a GGUF file. The mapping (read-only, MAP_PRIVATE) lives until
 * es_gguf_close. */
es_status es_gguf_open(const char *path, es_gguf **out);
/* Validates a GGUF image in memory. `data` is borrowed and must outlive the handle. */
es_status es_gguf_open_memory(const void *data, size_t size, es_gguf **out);
void es_gguf_close(es_gguf *g);

uint32_t es_gguf_version(const es_gguf *g);
size_t es_gguf_alignment(const es_gguf *g);
const char *es_gguf_path(const es_gguf *g); /* "" for memory images */

/* ---- key/value metadata ---- */
int64_t es_gguf_n_kv(const es_gguf *g);
/* Index of a key or -1. */
int64_t es_gguf_find_key(const es_gguf *g, const char *key);
es_gguf_str es_gguf_key(const es_gguf *g, int64_t i);
es_gguf_vtype es_gguf_kv_type(const es_gguf *g, int64_t i);

/* Typed getters by key. Each returns ES_ERR_NOT_FOUND if the key is missing and
 * ES_ERR_FORMAT (message names the key, expected and actual type) on a type
 * mismatch. Integer getters accept any integer type whose value fits. */
es_status es_gguf_get_u32(const es_gguf *g, const char *key, uint32_t *out);
es_status es_gguf_get_i64(const es_gguf *g, const char *key, int64_t *out);
es_status es_gguf_get_f32(const es_gguf *g, const char *key, float *out); /* f32 or f64 */
es_status es_gguf_get_bool(const es_gguf *g, const char *key, bool *out);
es_status es_gguf_get_str(const es_gguf *g, const char *key, es_gguf_str *out);
/* Convenience: returns a NUL-terminated malloc'ed copy (caller frees) or NULL if absent
 * or not a string. */
char *es_gguf_get_str_dup(const es_gguf *g, const char *key);

/* Arrays. es_gguf_get_arr returns the element type and count of an array key. */
es_status es_gguf_get_arr(const es_gguf *g, const char *key, es_gguf_vtype *elem_type,
                          uint64_t *n);
/* Pointer to the raw little-endian elements of a numeric array (not strings/arrays), or
 * NULL. Inside the image, so possibly unaligned: read elements with memcpy. */
const void *es_gguf_arr_data(const es_gguf *g, const char *key);
/* i-th string of a string array (bounds-checked: returns {NULL,0} if out of range). */
es_gguf_str es_gguf_arr_str(const es_gguf *g, const char *key, uint64_t i);
/* Fills out[0..n) from a numeric array of any integer or float type, converting.
 * Fails (ES_ERR_FORMAT) if the key is not a numeric array of exactly n elements. */
es_status es_gguf_arr_to_f32(const es_gguf *g, const char *key, float *out, uint64_t n);
es_status es_gguf_arr_to_i32(const es_gguf *g, const char *key, int32_t *out, uint64_t n);

/* ---- tensors ---- */
int64_t es_gguf_n_tensors(const es_gguf *g);
const es_gguf_tensor *es_gguf_tensor_at(const es_gguf *g, int64_t i);
/* Tensor by name or NULL. */
const es_gguf_tensor *es_gguf_find_tensor(const es_gguf *g, const char *name);

/* ---- writer ---- */
typedef struct es_gguf_writer es_gguf_writer;

es_gguf_writer *es_gguf_writer_new(void); /* NULL on out of memory */
void es_gguf_writer_free(es_gguf_writer *w);
/* Setters copy their arguments. A key set twice keeps the last value. */
es_status es_gguf_writer_set_u32(es_gguf_writer *w, const char *key, uint32_t v);
es_status es_gguf_writer_set_i32(es_gguf_writer *w, const char *key, int32_t v);
es_status es_gguf_writer_set_u64(es_gguf_writer *w, const char *key, uint64_t v);
es_status es_gguf_writer_set_f32(es_gguf_writer *w, const char *key, float v);
es_status es_gguf_writer_set_bool(es_gguf_writer *w, const char *key, bool v);
es_status es_gguf_writer_set_str(es_gguf_writer *w, const char *key, const char *v);
es_status es_gguf_writer_set_arr(es_gguf_writer *w, const char *key, es_gguf_vtype elem_type,
                                 const void *data, uint64_t n); /* numeric element types */
es_status es_gguf_writer_set_arr_str(es_gguf_writer *w, const char *key, const char *const *v,
                                     uint64_t n);
/* Adds a tensor; data (nbytes computed from type and ne) is copied. */
es_status es_gguf_writer_add_tensor(es_gguf_writer *w, const char *name, int type, int n_dims,
                                    const int64_t *ne, const void *data);
/* Any scalar type (u8..f64, bool) from host (little-endian) bytes at value. */
es_status es_gguf_writer_set_val(es_gguf_writer *w, const char *key, es_gguf_vtype type,
                                 const void *value);
/* A value already encoded as in the file (e.g. nested arrays): n bytes at value, which
 * must parse as exactly one value of `type` (ES_ERR_INVALID_ARG otherwise). */
es_status es_gguf_writer_set_raw(es_gguf_writer *w, const char *key, es_gguf_vtype type,
                                 const void *value, size_t n);
/* Writes the file atomically (temp file + rename). */
es_status es_gguf_writer_write(const es_gguf_writer *w, const char *path);
/* Builds the same bytes in memory: *out (malloc'ed, caller frees) of *size bytes. */
es_status es_gguf_writer_write_memory(const es_gguf_writer *w, uint8_t **out, size_t *size);

#endif /* ES_GGUF_H */
