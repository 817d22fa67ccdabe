/*
 * types.c — the kernel table of the GGML tensor types (sizes come from
 * gguf/tensor_types.c), half/bfloat16 conversions, and the run-time choice between scalar and SIMD
 * kernels.
 */
#include "types.h"
#include "cpu.h"

#include "kernels.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static es_type_traits s_ref[ES_TYPE_COUNT];  /* scalar kernels */
static es_type_traits s_fast[ES_TYPE_COUNT]; /* best kernels for this CPU */
static bool s_have_avx2;
static pthread_once_t s_once = PTHREAD_ONCE_INIT;

bool es_env_switch(const char *name) {
    const char *v = getenv(name);
    return v && v[0] && strcmp(v, "0") != 0;
}

static void init_tables(void) {
    for (int t = 0; t < ES_TYPE_COUNT; t++) {
        const es_type_layout *l = es_type_layout_get(t);
        if (!l) continue;
        s_ref[t] = (es_type_traits){.name = l->name,
                                    .block_size = l->block_size,
                                    .type_size = l->type_size,
                                    .vec_dot_type = (es_type)t};
    }
    es_quants_register_ref(s_ref);
    memcpy(s_fast, s_ref, sizeof s_fast);
    bool avx2 = false;
#ifndef ES_NO_SIMD
    avx2 = es_cpu_has(ES_CPU_AVX2) && es_cpu_has(ES_CPU_FMA) && es_cpu_has(ES_CPU_F16C) &&
           !es_env_switch("ES_FORCE_SCALAR");
    if (avx2) es_quants_register_avx2(s_fast);
#endif
    s_have_avx2 = avx2;
    es_quants_k_register(s_ref, s_fast, avx2);
    for (int t = 0; t < ES_TYPE_COUNT;
         t++) { /* vec_dot keeps the order unless a SIMD table says otherwise */
        if (!s_ref[t].vec_dot_llamacpp) s_ref[t].vec_dot_llamacpp = s_ref[t].vec_dot;
        if (!s_fast[t].vec_dot_llamacpp) s_fast[t].vec_dot_llamacpp = s_fast[t].vec_dot;
    }
}

void es_kernels_init(void) {
    pthread_once(&s_once, init_tables);
}

bool es_kernels_have_avx2(void) {
    es_kernels_init();
    return s_have_avx2;
}

static char s_isa[64];
static pthread_once_t s_isa_once = PTHREAD_ONCE_INIT;

static void init_isa(void) {
    if (!es_kernels_have_avx2()) {
        snprintf(s_isa, sizeof s_isa, "scalar");
        return;
    }
#ifndef ES_NO_SIMD
    snprintf(s_isa, sizeof s_isa, "avx2+fma+f16c%s%s%s", es_avxvnni_supported() ? "+avxvnni" : "",
             es_avx512_supported() ? "+avx512" : "",
             es_avx512vnni_supported() ? "+avx512vnni" : "");
#endif
}

const char *es_kernels_isa(void) {
    pthread_once(&s_isa_once, init_isa);
    return s_isa;
}

const es_type_traits *es_type_get(int type) {
    if (type < 0 || type >= ES_TYPE_COUNT || !es_type_layout_get(type)) return NULL;
    es_kernels_init();
    return &s_fast[type];
}

const es_type_traits *es_type_get_ref(int type) {
    if (type < 0 || type >= ES_TYPE_COUNT || !es_type_layout_get(type)) return NULL;
    es_kernels_init();
    return &s_ref[type];
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
    if (ax > 0x7f800000u)
        return (uint16_t)(sign | 0x7e00u | ((ax >> 13) & 0x3ffu)); /* NaN stays NaN */
    if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);      /* >= 65520 rounds to inf */
    if (ax < 0x38800000u) { /* below 2^-14: subnormal half; the FPU rounds to 2^-24 steps */
        float t = f32_from_bits(ax) + 0.5f;
        return (uint16_t)(sign | (f32_bits(t) - 0x3f000000u));
    }
    /* normal: rebias the exponent by -112 and round the 13 dropped bits to nearest even */
    uint32_t odd = (ax >> 13) & 1u;
    ax += 0xc8000fffu + odd;
    return (uint16_t)(sign | (ax >> 13));
}

float es_bf16_to_fp32(uint16_t h) {
    return f32_from_bits((uint32_t)h << 16);
}

uint16_t es_fp32_to_bf16(float f) {
    uint32_t x = f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u); /* quiet NaN */
    x += 0x7fffu + ((x >> 16) & 1u);
    return (uint16_t)(x >> 16);
}

const char *es_kernel_paths(void) {
    return es_kernels_isa();
}
