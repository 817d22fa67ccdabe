/* test_vecops.c — the SIMD vector kernels of the attention loop against their scalar
 * references (vecops.h) on odd sizes; prints the largest relative difference. */
#include "testutil.h"
#include "vecops.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
    const es_vecops *ref = es_vecops_ref(), *fast = es_vecops_get();
    static const int sizes[] = {0, 1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 64, 127, 128, 129, 1000};
    float x[1000], y[1000], y1[1000], y2[1000];
    unsigned r = 12345;
    for (int i = 0; i < 1000; i++) {
        r = r * 1103515245u + 12345u;
        x[i] = ((float)(r >> 8) / (float)(1 << 24)) * 2.0f - 1.0f;
        r = r * 1103515245u + 12345u;
        y[i] = ((float)(r >> 8) / (float)(1 << 24)) * 2.0f - 1.0f;
    }
    double worst = 0;
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        const int n = sizes[k];
        float a = ref->dot(x, y, n), b = fast->dot(x, y, n);
        double scale = 0;
        for (int i = 0; i < n; i++)
            scale += fabs(x[i] * y[i]);
        double rel = fabs(a - b) / (scale > 0 ? scale : 1);
        worst = fmax(worst, rel);
        CHECK(rel < 1e-5, "dot n=%d: ref %g fast %g", n, a, b);
        memcpy(y1, y, sizeof y);
        memcpy(y2, y, sizeof y);
        ref->axpy(0.37f, x, y1, n);
        fast->axpy(0.37f, x, y2, n);
        double d = es_test_maxdiff(y1, y2, 1000, NULL);
        CHECK(d < 1e-6, "axpy n=%d: max diff %g (and nothing past n may change)", n, d);
        ref->scale(-1.5f, y1, n);
        fast->scale(-1.5f, y2, n);
        d = es_test_maxdiff(y1, y2, 1000, NULL);
        CHECK(d < 1e-6, "scale n=%d: max diff %g", n, d);
    }
    /* softmax pieces: max exactly, exp within 4e-7 relative (elements and sum) */
    double worst_exp = 0, worst_sum = 0;
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        const int n = sizes[k];
        for (int i = 0; i < 1000; i++)
            y1[i] = y2[i] = x[i] * 30.0f - 15.0f * (i % 7 == 3); /* [-45, 30] */
        if (n > 2) y1[n / 2] = y2[n / 2] = -200.0f;              /* underflow */
        const float m1 = ref->max(y1, n), m2 = fast->max(y2, n);
        CHECK(m1 == m2, "max n=%d: ref %g fast %g", n, m1, m2);
        const double s1 = ref->exp_sum(y1, m1, n), s2 = fast->exp_sum(y2, m1, n);
        for (int i = 0; i < 1000; i++) {
            const double rel = i < n
                                   ? fabs((double)y1[i] - y2[i]) / fmax(fabs((double)y1[i]), 1e-30)
                                   : y1[i] != y2[i];
            if (y1[i] < 1e-37f && y2[i] < 1e-37f) continue; /* underflow: fast flushes to 0 */
            worst_exp = fmax(worst_exp, rel);
        }
        const double srel = fabs(s1 - s2) / fmax(s1, 1e-30);
        worst_sum = fmax(worst_sum, srel);
        CHECK(srel < 4e-7, "exp_sum n=%d: ref %.9g fast %.9g", n, s1, s2);
    }
    /* every float in [-87, 0] by steps, against double exp */
    double worst_abs = 0;
    for (int i = 0; i < 1000; i++)
        y2[i] = -87.0f * (float)i / 999.0f;
    fast->exp_sum(y2, 0.0f, 1000);
    for (int i = 0; i < 1000; i++) {
        const double w = exp((double)(-87.0f * (float)i / 999.0f));
        worst_abs = fmax(worst_abs, fabs(y2[i] - w) / w);
    }
    CHECK(worst_exp < 4e-7, "exp_sum elements: max relative diff %g", worst_exp);
    CHECK(worst_abs < 4e-7, "exp vs double exp: max relative error %g", worst_abs);
    printf("exp_sum: elements vs expf %.3g, sums %.3g, vs double exp %.3g (relative)\n", worst_exp,
           worst_sum, worst_abs);
    /* f16 kernels (the ES_KV_F16 attention): the same roundings, so bit-identical */
    static uint16_t hx[1000], hy[1000], h1[1000], h2[1000];
    ref->to_f16(x, hx, 1000);
    fast->to_f16(y, hy, 1000);
    ref->to_f16(y, h1, 1000);
    CHECK(!memcmp(hy, h1, sizeof hy), "to_f16 differs");
    ref->from_f16(hx, y1, 1000);
    fast->from_f16(hx, y2, 1000);
    CHECK(!memcmp(y1, y2, sizeof y1), "from_f16 differs");
    CHECK(es_test_maxdiff(y1, x, 1000, NULL) <= 1.0 / 2048,
          "f16 round trip off by more than half an ulp");
    ref->from_f16(hy, y1, 1000);
    int f16_bad = 0;
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        const int n = sizes[k];
        const float a = ref->dot_f16(hx, y1, n), b = fast->dot_f16(hx, y1, n); /* y1: f16 values */
        f16_bad += !CHECK(a == b, "dot_f16 n=%d: ref %.9g fast %.9g", n, a, b);
        memcpy(h1, hy, sizeof hy);
        memcpy(h2, hy, sizeof hy);
        ref->mad_f16(0.37f, hx, h1, n);
        fast->mad_f16(0.37f, hx, h2, n);
        ref->scale_f16(-1.5f, h1, n);
        fast->scale_f16(-1.5f, h2, n);
        f16_bad += !CHECK(!memcmp(h1, h2, sizeof h1), "mad_f16/scale_f16 n=%d differ", n);
    }
    /* llama.cpp's SiLU·up: ref and fast bit-identical; both within a few ulp of expf's SiLU.
     * Gates over [-150, 150] reach the |n| > 126 and > 192 branches of ggml_v_expf. */
    static float gate[1000], o1[1000], o2[1000];
    for (int i = 0; i < 1000; i++)
        gate[i] = x[i] * (i % 5 == 0 ? 150.0f : 8.0f);
    gate[0] = 0.0f, gate[1] = -0.0f, gate[2] = -88.5f, gate[3] = 88.5f, gate[4] = -104.5f;
    double worst_silu = 0;
    int silu_bad = 0;
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        const int n = sizes[k];
        for (int i = 0; i < 1000; i++)
            o1[i] = o2[i] = 7.0f;
        ref->silu_mul(gate, y, o1, n);
        fast->silu_mul(gate, y, o2, n);
        silu_bad += !CHECK(!memcmp(o1, o2, sizeof o1), "silu_mul n=%d: ref and fast differ", n);
        for (int i = 0; i < n; i++) {
            const double want = (double)gate[i] / (1.0 + exp(-(double)gate[i])) * y[i];
            const double err = fabs(o1[i] - want) / fmax(fabs(want), 1e-30);
            if (fabs(want) > 1e-30) worst_silu = fmax(worst_silu, err);
        }
    }
    CHECK(worst_silu < 1e-6, "silu_mul vs double SiLU: max relative error %g", worst_silu);
    printf("silu_mul: ref and fast %s, vs double SiLU %.3g (relative)\n",
           silu_bad ? "DIFFER" : "bit-identical", worst_silu);
    printf("vecops: %s, dot max relative diff %.2e, f16 kernels %s\n",
           fast == ref ? "scalar" : "avx2", worst, f16_bad ? "DIFFER" : "bit-identical");
    return es_test_finish();
}
