/*
 * vecops.h — internal: the small f32 vector kernels of the attention loop (dot product,
 * y += a*x, y *= a), as a table chosen once at run time: AVX2/FMA (vecops_avx2.c) when
 * the CPU has it and ES_FORCE_SCALAR is unset (the choice of es_kernels_init), else the
 * scalar references (vecops.c). tests/test_vecops.c compares the two on odd sizes.
 */
#ifndef ES_VECOPS_H
#define ES_VECOPS_H

typedef struct es_vecops {
    float (*dot)(const float *x, const float *y, int n); /* sum x[i]*y[i] */
    void (*axpy)(float a, const float *x, float *y, int n); /* y[i] += a*x[i] */
    void (*scale)(float a, float *y, int n);              /* y[i] *= a */
} es_vecops;

/* The fastest kernels for this CPU. */
const es_vecops *es_vecops_get(void);
/* The scalar references. */
const es_vecops *es_vecops_ref(void);

#ifndef ES_NO_SIMD
float es_avx2_dot(const float *x, const float *y, int n);
void es_avx2_axpy(float a, const float *x, float *y, int n);
void es_avx2_scale(float a, float *y, int n);
#endif

#endif /* ES_VECOPS_H */
