/* test_vecops.c — the SIMD vector kernels of the attention loop against their scalar
 * references (vecops.h) on odd sizes; prints the largest relative difference. */
#include "testutil.h"
#include "vecops.h"

#include <math.h>
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
        for (int i = 0; i < n; i++) scale += fabs(x[i] * y[i]);
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
    printf("vecops: %s, dot max relative diff %.2e\n", fast == ref ? "scalar" : "avx2", worst);
    return es_test_finish();
}
