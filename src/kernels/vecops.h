/*
 * vecops.h — internal: the small vector kernels of the attention loop (dot product,
 * y += a*x, y *= a, in f32 and, for the f16 KV cache, on f16 vectors), as a table chosen once at
 * run time: AVX2/FMA (vecops_avx2.c) when the CPU has it and ES_FORCE_SCALAR is unset (the choice
 * of es_kernels_init), else the scalar references (vecops.c). tests/test_vecops.c compares the two
 * on odd sizes.
 */
#ifndef ES_VECOPS_H
#define ES_VECOPS_H

#include <stdint.h>

typedef struct es_vecops {
    float (*dot)(const float *x, const float *y, int n);    /* sum x[i]*y[i] */
    void (*axpy)(float a, const float *x, float *y, int n); /* y[i] += a*x[i] */
    void (*scale)(float a, float *y, int n);                /* y[i] *= a */
    /* f16 vectors (uint16_t IEEE half), as llama.cpp's CPU flash attention uses them: */
    /* sum x[i]*y[i] in f32 (four 8-lane sums over 32-element steps); y holds f16 values as f32 */
    float (*dot_f16)(const uint16_t *x, const float *y, int n);
    void (*mad_f16)(float a, const uint16_t *x, uint16_t *y,
                    int n);                               /* y[i] = f16(fma(a, x[i], y[i])) */
    void (*scale_f16)(float a, uint16_t *y, int n);       /* y[i] = f16(y[i] * a) */
    void (*to_f16)(const float *x, uint16_t *y, int n);   /* y[i] = f16(x[i]), nearest even */
    void (*from_f16)(const uint16_t *x, float *y, int n); /* y[i] = x[i] */
    /* softmax pieces of the blocked f32 attention: */
    float (*max)(const float *x, int n); /* max x[i]; -INFINITY for n == 0 (NaNs ignored) */
    /* x[i] = exp(x[i] - m) for x[i] <= m, returns the sum in double. The reference uses
     * expf; the AVX2 kernel a polynomial within ~2e-7 relative (and 0 below exp(-87)). */
    double (*exp_sum)(float *x, float m, int n);
    /* gated MLP (both numerics): o[i] = silu(g[i]) * u[i] as llama.cpp's x86 AVX2
     * ggml_vec_swiglu_f32 computes it, bit for bit: groups of 8 with exp(-g) from its
     * ggml_v_expf (within ~1.5 ulp of expf; an 8-bit rounding of the next matmul's
     * activations can flip on the difference), the last n % 8 as g / (1 + expf(-g)) * u.
     * The reference emulates ggml_v_expf lane by lane with fmaf. */
    void (*silu_mul)(const float *g, const float *u, float *o, int n);
} es_vecops;

/* The fastest kernels for this CPU. */
const es_vecops *es_vecops_get(void);
/* The scalar references. */
const es_vecops *es_vecops_ref(void);

#ifndef ES_NO_SIMD
float es_dot_avx2(const float *x, const float *y, int n);
void es_axpy_avx2(float a, const float *x, float *y, int n);
void es_scale_avx2(float a, float *y, int n);
float es_dot_f16_avx2(const uint16_t *x, const float *y, int n);
void es_mad_f16_avx2(float a, const uint16_t *x, uint16_t *y, int n);
void es_scale_f16_avx2(float a, uint16_t *y, int n);
void es_to_f16_avx2(const float *x, uint16_t *y, int n);
void es_from_f16_avx2(const uint16_t *x, float *y, int n);
float es_max_avx2(const float *x, int n);
double es_exp_sum_avx2(float *x, float m, int n);
void es_silu_mul_avx2(const float *g, const float *u, float *o, int n);
#endif

#endif /* ES_VECOPS_H */
