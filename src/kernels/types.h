/*
 * types.h — tensor element types (GGML ids, as stored in GGUF), their block layout,
 * and the per-type kernels behind one table: dequantize, quantize, dot product.
 *
 * Every type with can_compute has a plain scalar reference (es_type_get_ref) and,
 * where the CPU allows, a SIMD version (es_type_get) chosen at run time by
 * es_kernels_init(). Both have the same signatures and are compared by
 * tests/test_kernels.c on odd sizes.
 */
#ifndef ES_TYPES_H
#define ES_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tensor_types.h"

/* Dequantize n elements (n a multiple of block_size) from x into y. */
typedef void (*es_to_float_fn)(const void *x, float *y, int64_t n);
/* Quantize n elements (n a multiple of block_size) from x into y. */
typedef void (*es_from_float_fn)(const float *x, void *y, int64_t n);
/* *s = dot(x, y) over n elements, x of this type, y of this type's vec_dot_type. */
typedef void (*es_vec_dot_fn)(int64_t n, float *s, const void *x, const void *y);
/* y[t][r] = vec_dot(row r of W, token t of xq) for rows [r0, r1) and all n_tok tokens, bit for
 * bit (W: rows of w_row bytes; xq: the activations in vec_dot_type, rows of x_row bytes; y:
 * [n_tok][n_out]), computed tile_rows rows × several tokens at a time. When vec_dot_type is
 * Q8_0, xd holds the activation blocks' scales as floats, block-major: xd[b * xd_ld + t], with
 * xd_ld a multiple of 4 >= n_tok and the entries past n_tok zero (16-byte aligned); else NULL. */
typedef void (*es_vec_dot_tiles_fn)(const uint8_t *W, size_t w_row, int64_t n_in, const uint8_t *xq,
                                    size_t x_row, const float *xd, size_t xd_ld, int64_t n_tok,
                                    float *y, int64_t n_out, int64_t r0, int64_t r1);

typedef struct es_type_traits {
    const char *name;     /* "F16", "Q4_K", ... */
    int64_t block_size;   /* elements per block (1 for plain types) */
    size_t type_size;     /* bytes per block */
    bool can_compute;     /* to_float and vec_dot are available */
    es_type vec_dot_type; /* format the activations are converted to for vec_dot */
    es_to_float_fn to_float;
    es_from_float_fn from_float;
    es_vec_dot_fn vec_dot;
    /* vec_dot in llama.cpp's summation order (kernels.h), for ES_NUMERICS_LLAMACPP: the same
     * function as vec_dot where that already keeps the order (and in the reference table). */
    es_vec_dot_fn vec_dot_llamacpp;
    /* vec_dot over tiles of tile_rows rows (x86/quants*_avx2.c, registered with the vec_dot
     * they reproduce), or NULL */
    es_vec_dot_tiles_fn vec_dot_tiles;
    int tile_rows;
    /* the same for vec_dot_llamacpp where that differs from vec_dot (Q4_K), or NULL; es_matmul
     * also takes them for prompts outside the batch-invariant mode */
    es_vec_dot_tiles_fn vec_dot_tiles_llamacpp;
} es_type_traits;

/* Traits of a type id with the fastest kernels this CPU runs, or NULL for an id that
 * is not a known GGML type. Calls es_kernels_init() on first use. */
const es_type_traits *es_type_get(int type);
/* The same with the plain scalar reference kernels. */
const es_type_traits *es_type_get_ref(int type);

/* Selects SIMD kernels for this CPU (idempotent, thread-safe). Setting the
 * environment variable ES_FORCE_SCALAR=1 keeps the scalar references. */
void es_kernels_init(void);
/* The kernel paths in use (after the environment switches of kernels.h): "scalar",
 * "avx2+fma+f16c", or that followed by "+avxvnni" (the packed prompt tile), "+avx512"
 * (the f32 tiles) and "+avx512vnni" (the Q8_0 prompt tile), e.g.
 * "avx2+fma+f16c+avxvnni+avx512+avx512vnni". A static string. */
const char *es_kernels_isa(void);

/* Half and bfloat16 conversions (exact for every value; NaN stays NaN). */
float es_fp16_to_fp32(uint16_t h);
uint16_t es_fp32_to_fp16(float f);
float es_bf16_to_fp32(uint16_t h);
uint16_t es_fp32_to_bf16(float f);

#endif /* ES_TYPES_H */
