/* vecops.c — scalar reference vector kernels and the run-time choice (see vecops.h). */
#include "vecops.h"

#include "kernels.h"

static float ref_dot(const float *x, const float *y, int n) {
    float s = 0.0f;
    for (int i = 0; i < n; i++) s += x[i] * y[i];
    return s;
}

static void ref_axpy(float a, const float *x, float *y, int n) {
    for (int i = 0; i < n; i++) y[i] += a * x[i];
}

static void ref_scale(float a, float *y, int n) {
    for (int i = 0; i < n; i++) y[i] *= a;
}

static const es_vecops vecops_ref = {ref_dot, ref_axpy, ref_scale};
#ifndef ES_NO_SIMD
static const es_vecops vecops_avx2 = {es_avx2_dot, es_avx2_axpy, es_avx2_scale};
#endif

const es_vecops *es_vecops_ref(void) { return &vecops_ref; }

const es_vecops *es_vecops_get(void) {
#ifndef ES_NO_SIMD
    if (es_kernels_have_avx2()) return &vecops_avx2;
#endif
    return &vecops_ref;
}
