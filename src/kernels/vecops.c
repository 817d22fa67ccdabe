/* vecops.c — scalar reference vector kernels and the run-time choice (see vecops.h). */
#include "vecops.h"

#include "kernels.h"
#include "types.h"

#include <math.h>
#include <string.h>

static float dot_ref(const float *x, const float *y, int n) {
    float s = 0.0f;
    for (int i = 0; i < n; i++)
        s += x[i] * y[i];
    return s;
}

static void axpy_ref(float a, const float *x, float *y, int n) {
    for (int i = 0; i < n; i++)
        y[i] += a * x[i];
}

static void scale_ref(float a, float *y, int n) {
    for (int i = 0; i < n; i++)
        y[i] *= a;
}

/* f16 dot: four f32 partial sums over 32-element steps (lane j of sum k holds elements
 * i + 8k + j), combined as the AVX2 kernel does; a scalar tail. */
static float dot_f16_ref(const uint16_t *x, const float *y, int n) {
    float acc[4][8] = {{0}};
    int i = 0;
    for (; i + 32 <= n; i += 32)
        for (int k = 0; k < 4; k++)
            for (int j = 0; j < 8; j++)
                acc[k][j] = fmaf(es_fp16_to_fp32(x[i + 8 * k + j]), y[i + 8 * k + j], acc[k][j]);
    float v[8];
    for (int j = 0; j < 8; j++)
        v[j] = (acc[0][j] + acc[2][j]) + (acc[1][j] + acc[3][j]);
    float h[4];
    for (int j = 0; j < 4; j++)
        h[j] = v[j] + v[j + 4];
    float s = (h[0] + h[1]) + (h[2] + h[3]);
    for (; i < n; i++)
        s += es_fp16_to_fp32(x[i]) * y[i];
    return s;
}

static void mad_f16_ref(float a, const uint16_t *x, uint16_t *y, int n) {
    for (int i = 0; i < n; i++)
        y[i] = es_fp32_to_fp16(fmaf(a, es_fp16_to_fp32(x[i]), es_fp16_to_fp32(y[i])));
}

static void scale_f16_ref(float a, uint16_t *y, int n) {
    for (int i = 0; i < n; i++)
        y[i] = es_fp32_to_fp16(es_fp16_to_fp32(y[i]) * a);
}

static void to_f16_ref(const float *x, uint16_t *y, int n) {
    for (int i = 0; i < n; i++)
        y[i] = es_fp32_to_fp16(x[i]);
}

static void from_f16_ref(const uint16_t *x, float *y, int n) {
    for (int i = 0; i < n; i++)
        y[i] = es_fp16_to_fp32(x[i]);
}

static float max_ref(const float *x, int n) {
    float m = -INFINITY;
    for (int i = 0; i < n; i++)
        m = x[i] > m ? x[i] : m;
    return m;
}

static double exp_sum_ref(float *x, float m, int n) {
    double s = 0.0;
    for (int i = 0; i < n; i++) {
        x[i] = expf(x[i] - m);
        s += x[i];
    }
    return s;
}

static inline uint32_t bits_of(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float float_of(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* One lane of ggml's AVX2 ggml_v_expf (adapted there from ARM's optimized routines):
 * x = n·ln2 + b with n = round(x·log2 e) (by the 1.5·2^23 shift) and ln2 in two parts,
 * exp(b) − 1 by a degree-5 polynomial j, 2^n built in the exponent bits of k; outside
 * |n| <= 126 the scale is split in two factors s1·s2, and past |n| > 192 the result is
 * inf or 0. Every step as the vector code rounds it (fnmadd(a, b, c) = fmaf(−a, b, c)). */
static float ggml_expf_lane(float x) {
    const float r = 0x1.8p23f;
    const float z = fmaf(x, 0x1.715476p+0f, r);
    const float n = z - r;
    const float b = fmaf(-n, 0x1.7f7d1cp-20f, fmaf(-n, 0x1.62e4p-1f, x));
    const uint32_t e = bits_of(z) << 23;
    const float k = float_of(e + bits_of(1.0f));
    const float u = b * b;
    const float j = fmaf(
        fmaf(fmaf(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u, fmaf(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)),
        u, 0x1.ffffecp-1f * b);
    if (!(fabsf(n) > 126.0f)) return fmaf(j, k, k);
    const uint32_t g = n <= 0.0f ? 0x82000000u : 0u;
    const float s1 = float_of(g + 0x7f000000u), s2 = float_of(e - g);
    if (fabsf(n) > 192.0f) return s1 * s1;
    return fmaf(s2, j, s2) * s1;
}

static void silu_mul_ref(const float *g, const float *u, float *o, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8) /* the 8 lanes of one vector step */
        for (int l = i; l < i + 8; l++)
            o[l] = g[l] / (1.0f + ggml_expf_lane(0.0f - g[l])) * u[l];
    for (; i < n; i++)
        o[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

static const es_vecops vecops_ref = {dot_ref,     axpy_ref,      scale_ref,   dot_f16_ref,
                                     mad_f16_ref, scale_f16_ref, to_f16_ref,  from_f16_ref,
                                     max_ref,     exp_sum_ref,   silu_mul_ref};
#ifndef ES_NO_SIMD
static const es_vecops vecops_avx2 = {es_dot_avx2,     es_axpy_avx2,     es_scale_avx2,
                                      es_dot_f16_avx2, es_mad_f16_avx2,  es_scale_f16_avx2,
                                      es_to_f16_avx2,  es_from_f16_avx2, es_max_avx2,
                                      es_exp_sum_avx2, es_silu_mul_avx2};
#endif

const es_vecops *es_vecops_ref(void) {
    return &vecops_ref;
}

const es_vecops *es_vecops_get(void) {
#ifndef ES_NO_SIMD
    if (es_kernels_have_avx2()) return &vecops_avx2;
#endif
    return &vecops_ref;
}
