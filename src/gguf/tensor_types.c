/*
 * tensor_types.c — block sizes and byte sizes of every GGML type id a GGUF file may hold.
 */
#include "tensor_types.h"

/* Sizes of every GGML type id, computed or not: the GGUF reader checks tensor extents
 * with them. */
#define ES_PLAIN(id, nm, bytes) [id] = {.name = nm, .block_size = 1, .type_size = bytes}
#define ES_BLOCK(id, nm, bs, bytes) [id] = {.name = nm, .block_size = bs, .type_size = bytes}

static const es_type_layout s_layout[ES_TYPE_COUNT] = {
    ES_PLAIN(ES_TYPE_F32, "F32", 4),
    ES_PLAIN(ES_TYPE_F16, "F16", 2),
    ES_BLOCK(ES_TYPE_Q4_0, "Q4_0", 32, 18),
    ES_BLOCK(ES_TYPE_Q4_1, "Q4_1", 32, 20),
    ES_BLOCK(ES_TYPE_Q5_0, "Q5_0", 32, 22),
    ES_BLOCK(ES_TYPE_Q5_1, "Q5_1", 32, 24),
    ES_BLOCK(ES_TYPE_Q8_0, "Q8_0", 32, 34),
    ES_BLOCK(ES_TYPE_Q8_1, "Q8_1", 32, 36),
    /* K-quants: filled by es_quants_k_register() */
    ES_BLOCK(ES_TYPE_Q2_K, "Q2_K", 256, 84),
    ES_BLOCK(ES_TYPE_Q3_K, "Q3_K", 256, 110),
    ES_BLOCK(ES_TYPE_Q4_K, "Q4_K", 256, 144),
    ES_BLOCK(ES_TYPE_Q5_K, "Q5_K", 256, 176),
    ES_BLOCK(ES_TYPE_Q6_K, "Q6_K", 256, 210),
    ES_BLOCK(ES_TYPE_Q8_K, "Q8_K", 256, 292),
    /* Types we can size but not compute. */
    ES_BLOCK(ES_TYPE_IQ2_XXS, "IQ2_XXS", 256, 66),
    ES_BLOCK(ES_TYPE_IQ2_XS, "IQ2_XS", 256, 74),
    ES_BLOCK(ES_TYPE_IQ3_XXS, "IQ3_XXS", 256, 98),
    ES_BLOCK(ES_TYPE_IQ1_S, "IQ1_S", 256, 50),
    ES_BLOCK(ES_TYPE_IQ4_NL, "IQ4_NL", 32, 18),
    ES_BLOCK(ES_TYPE_IQ3_S, "IQ3_S", 256, 110),
    ES_BLOCK(ES_TYPE_IQ2_S, "IQ2_S", 256, 82),
    ES_BLOCK(ES_TYPE_IQ4_XS, "IQ4_XS", 256, 136),
    ES_PLAIN(ES_TYPE_I8, "I8", 1),
    ES_PLAIN(ES_TYPE_I16, "I16", 2),
    ES_PLAIN(ES_TYPE_I32, "I32", 4),
    ES_PLAIN(ES_TYPE_I64, "I64", 8),
    ES_PLAIN(ES_TYPE_F64, "F64", 8),
    ES_BLOCK(ES_TYPE_IQ1_M, "IQ1_M", 256, 56),
    ES_PLAIN(ES_TYPE_BF16, "BF16", 2),
    ES_BLOCK(ES_TYPE_TQ1_0, "TQ1_0", 256, 54),
    ES_BLOCK(ES_TYPE_TQ2_0, "TQ2_0", 256, 66),
    ES_BLOCK(ES_TYPE_MXFP4, "MXFP4", 32, 17),
};

const es_type_layout *es_type_layout_get(int type) {
    if (type < 0 || type >= ES_TYPE_COUNT || !s_layout[type].name) return NULL;
    return &s_layout[type];
}

const char *es_type_name(es_type type) {
    const es_type_layout *l = es_type_layout_get(type);
    return l ? l->name : "unknown";
}

size_t es_row_size(es_type type, int64_t n) {
    const es_type_layout *t = es_type_layout_get(type);
    if (!t || n < 0 || n % t->block_size != 0) return 0;
    size_t bytes;
    if (__builtin_mul_overflow((size_t)(n / t->block_size), t->type_size, &bytes)) return 0;
    return bytes;
}
