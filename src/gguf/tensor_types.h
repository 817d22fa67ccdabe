/*
 * tensor_types.h — the tensor element types a GGUF file may hold (GGML's type ids) and
 * their block layout: the file-format facts the GGUF reader needs to size a tensor.
 * The kernels for the types that can be computed live in kernels/types.h.
 */
#ifndef ES_TENSOR_TYPES_H
#define ES_TENSOR_TYPES_H

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

typedef struct es_type_layout {
    const char *name;   /* "F16", "Q4_K", ... */
    int64_t block_size; /* elements per block (1 for plain types) */
    size_t type_size;   /* bytes per block */
} es_type_layout;

/* Layout of a type id, or NULL for an id that is not a known GGML type. */
const es_type_layout *es_type_layout_get(int type);
/* Name of a type id ("Q4_K"), or "unknown" for an unknown id. */
const char *es_type_name(int type);
/* Bytes of a row of n elements; 0 if the type is unknown or n is not a multiple of
 * its block size. */
size_t es_row_size(int type, int64_t n);

#endif /* ES_TENSOR_TYPES_H */
