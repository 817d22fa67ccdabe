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

typedef enum es_type {
    ES_TYPE_F32 = 0,
    ES_TYPE_F16 = 1,
    ES_TYPE_Q4_0 = 2,
    ES_TYPE_Q4_1 = 3,
    ES_TYPE_Q5_0 = 6,
    ES_TYPE_Q5_1 = 7,
    ES_TYPE_Q8_0 = 8,
    ES_TYPE_Q8_1 = 9,
    ES_TYPE_Q2_K = 10,
    ES_TYPE_Q3_K = 11,
    ES_TYPE_Q4_K = 12,
    ES_TYPE_Q5_K = 13,
    ES_TYPE_Q6_K = 14,
    ES_TYPE_Q8_K = 15,
    ES_TYPE_IQ2_XXS = 16,
    ES_TYPE_IQ2_XS = 17,
    ES_TYPE_IQ3_XXS = 18,
    ES_TYPE_IQ1_S = 19,
    ES_TYPE_IQ4_NL = 20,
    ES_TYPE_IQ3_S = 21,
    ES_TYPE_IQ2_S = 22,
    ES_TYPE_IQ4_XS = 23,
    ES_TYPE_I8 = 24,
    ES_TYPE_I16 = 25,
    ES_TYPE_I32 = 26,
    ES_TYPE_I64 = 27,
    ES_TYPE_F64 = 28,
    ES_TYPE_IQ1_M = 29,
    ES_TYPE_BF16 = 30,
    ES_TYPE_TQ1_0 = 34,
    ES_TYPE_TQ2_0 = 35,
    ES_TYPE_MXFP4 = 39,
    ES_TYPE_COUNT = 40
} es_type;

/* Dequantize n elements (n a multiple of block_size) from x into y. */
typedef void (*es_to_float_fn)(const void *x, float *y, int64_t n);
/* Quantize n elements (n a multiple of block_size) from x into y. */
typedef void (*es_from_float_fn)(const float *x, void *y, int64_t n);
/* *s = dot(x, y) over n elements, x of this type, y of this type's vec_dot_type. */
typedef void (*es_vec_dot_fn)(int64_t n, float *s, const void *x, const void *y);

typedef struct es_type_traits {
    const char *name;          /* "F16", "Q4_K", ... */
    int64_t block_size;        /* elements per block (1 for plain types) */
    size_t type_size;          /* bytes per block */
    bool can_compute;          /* to_float and vec_dot are available */
    es_type vec_dot_type;      /* format the activations are converted to for vec_dot */
    es_to_float_fn to_float;
    es_from_float_fn from_float;
    es_vec_dot_fn vec_dot;
} es_type_traits;

/* Traits of a type id with the fastest kernels this CPU runs, or NULL for an id that
 * is not a known GGML type. Calls es_kernels_init() on first use. */
const es_type_traits *es_type_get(int type);
/* The same with the plain scalar reference kernels. */
const es_type_traits *es_type_get_ref(int type);
/* Name of a type id ("Q4_K"), or "unknown" for an unknown id. */
const char *es_type_name(int type);
/* Bytes of a row of n elements; 0 if the type is unknown or n is not a multiple of
 * its block size. */
size_t es_row_size(int type, int64_t n);

/* Selects SIMD kernels for this CPU (idempotent, thread-safe). Setting the
 * environment variable ES_FORCE_SCALAR=1 keeps the scalar references. */
void es_kernels_init(void);
/* "avx2+fma+f16c" or "scalar": what es_type_get hands out. */
const char *es_kernels_isa(void);

/* Half and bfloat16 conversions (exact for every value; NaN stays NaN). */
float es_fp16_to_fp32(uint16_t h);
uint16_t es_fp32_to_fp16(float f);
float es_bf16_to_fp32(uint16_t h);
uint16_t es_fp32_to_bf16(float f);

#endif /* ES_TYPES_H */
