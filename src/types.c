/*
 * types.c — the table of GGML tensor types (sizes for every id a GGUF file may hold),
 * half/bfloat16 conversions, and the run-time choice between scalar and SIMD kernels.
 */
#include "cpu.h"
#include "types.h"

#include "kernels.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Sizes of every GGML type id, computed or not: the GGUF reader checks tensor extents
 * with them. Kernels are filled in by es_kernels_init. */
#define ES_PLAIN(id, nm, bytes) [id] = {.name = nm, .block_size = 1, .type_size = bytes, .vec_dot_type = id}
#define ES_BLOCK(id, nm, bs, bytes) [id] = {.name = nm, .block_size = bs, .type_size = bytes, .vec_dot_type = id}

static const es_type_traits s_layout[ES_TYPE_COUNT] = {
    ES_PLAIN(ES_TYPE_F32, "F32", 4),
    ES_PLAIN(ES_TYPE_F16, "F16", 2),
    ES_BLOCK(ES_TYPE_Q4_0, "Q4_0", 32, 18),
    ES_BLOCK(ES_TYPE_Q4_1, "Q4_1", 32, 20),
    ES_BLOCK(ES_TYPE_Q5_0, "Q5_0", 32, 22),
    ES_BLOCK(ES_TYPE_Q5_1, "Q5_1", 32, 24),
    ES_BLOCK(ES_TYPE_Q8_0, "Q8_0", 32, 34),
    ES_BLOCK(ES_TYPE_Q8_1, "Q8_1", 32, 36),
    /* K-quants: filled by es_kquants_register() */
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

static es_type_traits s_ref[ES_TYPE_COUNT];  /* scalar kernels */
static es_type_traits s_fast[ES_TYPE_COUNT]; /* best kernels for this CPU */
static bool s_have_avx2;
static pthread_once_t s_once = PTHREAD_ONCE_INIT;

#ifndef ES_NO_SIMD
static bool env_force_scalar(void) {
    const char *v = getenv("ES_FORCE_SCALAR");
    return v && v[0] && strcmp(v, "0") != 0;
}
#endif

static void init_tables(void) {
    memcpy(s_ref, s_layout, sizeof s_ref);
    es_quants_register_ref(s_ref);
    memcpy(s_fast, s_ref, sizeof s_fast);
    bool avx2 = false;
#ifndef ES_NO_SIMD
    avx2 = es_cpu_has(ES_CPU_AVX2) && es_cpu_has(ES_CPU_FMA) && es_cpu_has(ES_CPU_F16C) &&
           !env_force_scalar();
    if (avx2) es_quants_register_avx2(s_fast);
#endif
    s_have_avx2 = avx2;
    es_kquants_register(s_ref, s_fast, avx2);
}

void es_kernels_init(void) { pthread_once(&s_once, init_tables); }

bool es_kernels_have_avx2(void) {
    es_kernels_init();
    return s_have_avx2;
}

const char *es_kernels_isa(void) { return es_kernels_have_avx2() ? "avx2+fma+f16c" : "scalar"; }

const es_type_traits *es_type_get(int type) {
    if (type < 0 || type >= ES_TYPE_COUNT || !s_layout[type].name) return NULL;
    es_kernels_init();
    return &s_fast[type];
}

const es_type_traits *es_type_get_ref(int type) {
    if (type < 0 || type >= ES_TYPE_COUNT || !s_layout[type].name) return NULL;
    es_kernels_init();
    return &s_ref[type];
}

const char *es_type_name(int type) {
    if (type < 0 || type >= ES_TYPE_COUNT || !s_layout[type].name) return "unknown";
    return s_layout[type].name;
}

size_t es_row_size(int type, int64_t n) {
    if (type < 0 || type >= ES_TYPE_COUNT || !s_layout[type].name || n < 0) return 0;
    const es_type_traits *t = &s_layout[type];
    if (n % t->block_size != 0) return 0;
    size_t bytes;
    if (__builtin_mul_overflow((size_t)(n / t->block_size), t->type_size, &bytes)) return 0;
    return bytes;
}

/* ---- half and bfloat16 ---- */

static inline uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float f32_from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

float es_fp16_to_fp32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    if (exp == 0) { /* zero or subnormal: man * 2^-24, exact in f32 */
        float v = (float)man * 5.9604644775390625e-08f;
        return f32_from_bits(f32_bits(v) | sign);
    }
    if (exp == 31) return f32_from_bits(sign | 0x7f800000u | (man << 13)); /* inf / NaN */
    return f32_from_bits(sign | ((exp + 112u) << 23) | (man << 13));
}

uint16_t es_fp32_to_fp16(float f) {
    uint32_t x = f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | ((ax >> 13) & 0x3ffu)); /* NaN stays NaN */
    if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* >= 65520 rounds to inf */
    if (ax < 0x38800000u) { /* below 2^-14: subnormal half; the FPU rounds to 2^-24 steps */
        float t = f32_from_bits(ax) + 0.5f;
        return (uint16_t)(sign | (f32_bits(t) - 0x3f000000u));
    }
    /* normal: rebias the exponent by -112 and round the 13 dropped bits to nearest even */
    uint32_t odd = (ax >> 13) & 1u;
    ax += 0xc8000fffu + odd;
    return (uint16_t)(sign | (ax >> 13));
}

float es_bf16_to_fp32(uint16_t h) { return f32_from_bits((uint32_t)h << 16); }

uint16_t es_fp32_to_bf16(float f) {
    uint32_t x = f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u); /* quiet NaN */
    x += 0x7fffu + ((x >> 16) & 1u);
    return (uint16_t)(x >> 16);
}
