/*
 * bench_kernels.c — speed of the matrix product, for the record.
 *
 *   bench_kernels [--quick] [TYPE...]
 *
 * Prints (1) the machine's memory read bandwidth with 1 and 2 threads (a plain sum
 * over 256 MB) and the thread pool's hand-off latency, (2) matrix-vector (decode, n_tok = 1) GB/s
 * of weights per type on a 256 MB matrix (larger than the caches), and its fraction of the read
 * bandwidth, (3) matrix- matrix GFLOP/s on the shapes of the demo-16m model (d 384, FFN 1024, vocab
 * 8192), with 2 threads (wall clock) and 1 thread (its CPU time, which other processes on a shared
 * machine do not inflate), and the tokens/s the matrix products alone allow.
 */
#include "common.h"
#include "kernels.h"
#include "matmul.h"
#include "threadpool.h"
#include "types.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static bool quick;

static float frand(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((*s >> 40) & 0xffffff) / 16777216.0f * 2.0f - 1.0f;
}

/* ---- memory read bandwidth ---- */

typedef struct {
    const double *a;
    size_t n;
    double sums[64];
} sum_arg;

/* Reads [lo, hi) of the array with wide loads (fast enough to be bound by memory). */
#if defined(__x86_64__) && !defined(ES_NO_SIMD)
#include <immintrin.h>
__attribute__((target("avx2"))) static double sum_range(const double *a, size_t lo, size_t hi) {
    __m256d s0 = _mm256_setzero_pd(), s1 = s0, s2 = s0, s3 = s0;
    size_t i = lo;
    for (; i + 16 <= hi; i += 16) {
        s0 = _mm256_add_pd(s0, _mm256_load_pd(a + i));
        s1 = _mm256_add_pd(s1, _mm256_load_pd(a + i + 4));
        s2 = _mm256_add_pd(s2, _mm256_load_pd(a + i + 8));
        s3 = _mm256_add_pd(s3, _mm256_load_pd(a + i + 12));
    }
    double out[4];
    _mm256_storeu_pd(out, _mm256_add_pd(_mm256_add_pd(s0, s1), _mm256_add_pd(s2, s3)));
    return out[0] + out[1] + out[2] + out[3];
}
#else
static double sum_range(const double *a, size_t lo, size_t hi) {
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (size_t i = lo; i + 4 <= hi; i += 4)
        s0 += a[i], s1 += a[i + 1], s2 += a[i + 2], s3 += a[i + 3];
    return s0 + s1 + s2 + s3;
}
#endif

static void sum_task(void *p, int ith, int nth) {
    sum_arg *s = p;
    size_t lo = s->n * (size_t)ith / (size_t)nth / 16 * 16,
           hi = s->n * (size_t)(ith + 1) / (size_t)nth / 16 * 16;
    s->sums[ith] = sum_range(s->a, lo, hi);
}

static double read_bandwidth(es_threadpool *tp) {
    const size_t bytes = (size_t)256 << 20;
    sum_arg s = {.n = bytes / sizeof(double)};
    double *a = es_alloc_aligned(bytes);
    if (!a) return 0;
    for (size_t i = 0; i < s.n; i++)
        a[i] = (double)(i & 1023);
    s.a = a;
    double best = 1e30;
    for (int rep = 0; rep < (quick ? 3 : 10); rep++) {
        double t0 = es_time_s();
        es_threadpool_run(tp, sum_task, &s);
        best = fmin(best, es_time_s() - t0);
    }
    es_free_aligned(a);
    return (double)bytes / best * 1e-9;
}

/* ---- one weight matrix ---- */

typedef struct {
    int type;
    int64_t n_out, n_in;
    void *W;
    size_t bytes;
} matrix;

static bool make_matrix(matrix *m, int type, int64_t n_out, int64_t n_in) {
    const es_type_traits *t = es_type_get(type);
    m->type = type;
    m->n_out = n_out;
    m->n_in = n_in;
    size_t row = es_row_size(type, n_in);
    m->bytes = row * (size_t)n_out;
    m->W = es_alloc_aligned(m->bytes);
    float *tmp = malloc((size_t)n_in * sizeof *tmp);
    if (!m->W || !tmp) return free(tmp), false;
    uint64_t seed = 12345 + (uint64_t)type;
    for (int64_t r = 0; r < n_out; r++) {
        for (int64_t k = 0; k < n_in; k++)
            tmp[k] = frand(&seed) * 0.1f;
        t->from_float(tmp, (uint8_t *)m->W + (size_t)r * row, n_in);
    }
    free(tmp);
    return true;
}

static double thread_cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Best-of wall time of es_matmul for n_tok tokens (x, y, wsp sized by the caller);
 * *cpu_best gets the best CPU time of the calling thread (meaningful with tp NULL:
 * on a machine shared with other processes it is the time the work itself took). */
static double time_matmul(es_threadpool *tp, const matrix *m, const float *x, int64_t n_tok,
                          float *y, void *wsp, int reps, double *cpu_best) {
    double best = 1e30, cbest = 1e30;
    es_matmul(tp, m->type, m->W, m->n_out, m->n_in, x, n_tok, y, wsp); /* warm-up */
    for (int rep = 0; rep < reps; rep++) {
        double c0 = thread_cpu_s(), t0 = es_time_s();
        es_matmul(tp, m->type, m->W, m->n_out, m->n_in, x, n_tok, y, wsp);
        best = fmin(best, es_time_s() - t0);
        cbest = fmin(cbest, thread_cpu_s() - c0);
    }
    if (cpu_best) *cpu_best = cbest;
    return best;
}

static bool type_selected(int type, int argc, char **argv) {
    bool any = false;
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-') continue;
        any = true;
        if (strcmp(argv[i], es_type_name(type)) == 0) return true;
    }
    return !any;
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--quick") == 0) quick = true;
    es_threadpool *tp2 = es_threadpool_create(2);
    es_threadpool *pools[2] = {NULL, tp2};
    printf("kernels: %s\n", es_kernels_isa());
    double bw1 = read_bandwidth(NULL), bw2 = read_bandwidth(tp2);
    printf("memory read bandwidth: %.1f GB/s (1 thread), %.1f GB/s (2 threads)\n", bw1, bw2);
    {
        /* hand-off latency of an empty task (decode runs hundreds per token) */
        sum_arg empty = {.n = 0};
        double best = 1e30;
        for (int rep = 0; rep < 5; rep++) {
            double t0 = es_time_s();
            for (int i = 0; i < 2000; i++)
                es_threadpool_run(tp2, sum_task, &empty);
            best = fmin(best, (es_time_s() - t0) / 2000);
        }
        printf("threadpool: %.2f us per empty run (2 threads)\n\n", best * 1e6);
    }

    /* decode: one token through ~256 MB of weights (well beyond the last-level cache) */
    const int64_t n_in = 4096;
    float *x = malloc(sizeof(float) * (size_t)n_in * 512);
    float *y = malloc(sizeof(float) * (size_t)8192 * 512);
    uint64_t seed = 7;
    for (int64_t i = 0; i < n_in * 512; i++)
        x[i] = frand(&seed);
    printf("matrix-vector (n_in %lld, ~256 MB of weights)\n", (long long)n_in);
    printf("  %-6s %10s %10s %8s %8s\n", "type", "1thr GB/s", "2thr GB/s", "frac1", "frac2");
    for (int type = 0; type < ES_TYPE_COUNT; type++) {
        const es_type_traits *t = es_type_get(type);
        if (!t || !t->can_compute || !t->from_float || !type_selected(type, argc, argv)) continue;
        if (n_in % t->block_size) continue;
        int64_t n_out = (int64_t)(((size_t)256 << 20) / es_row_size(type, n_in));
        matrix m;
        if (!make_matrix(&m, type, n_out, n_in)) return 1;
        float *yy = malloc(sizeof(float) * (size_t)n_out);
        void *wsp = es_alloc_aligned(es_matmul_wsize(type, n_in, 1) + 64);
        double gbs[2];
        for (int p = 0; p < 2; p++)
            gbs[p] = (double)m.bytes /
                     time_matmul(pools[p], &m, x, 1, yy, wsp, quick ? 3 : 8, NULL) * 1e-9;
        printf("  %-6s %10.1f %10.1f %7.0f%% %7.0f%%\n", t->name, gbs[0], gbs[1],
               100 * gbs[0] / bw1, 100 * gbs[1] / bw2);
        es_free_aligned(wsp);
        free(yy);
        es_free_aligned(m.W);
    }

    /* prompt: the demo-16m shapes */
    static const struct {
        const char *what;
        int64_t n_out, n_in, per_model; /* matrices of this shape in the model */
    } shapes[] = {
        {"attn q/o", 384, 384, 16}, {"attn k/v", 128, 384, 16}, {"ffn gate/up", 1024, 384, 16},
        {"ffn down", 384, 1024, 8}, {"output", 8192, 384, 1},
    };
    const int64_t toks[] = {64, 512};
    printf("\nmatrix-matrix, demo-16m shapes: GFLOP/s with 2 threads (wall clock) / 1 thread (its "
           "CPU time)\n");
    for (int type = 0; type < ES_TYPE_COUNT; type++) {
        const es_type_traits *t = es_type_get(type);
        if (!t || !t->can_compute || !t->from_float || !type_selected(type, argc, argv)) continue;
        if (384 % t->block_size) continue;
        for (size_t ti = 0; ti < ES_ARRAY_LEN(toks); ti++) {
            const int64_t n_tok = toks[ti];
            double total_wall = 0, total_cpu = 0;
            printf("  %-5s n_tok %3lld:", t->name, (long long)n_tok);
            for (size_t si = 0; si < ES_ARRAY_LEN(shapes); si++) {
                matrix m;
                if (!make_matrix(&m, type, shapes[si].n_out, shapes[si].n_in)) return 1;
                void *wsp = es_alloc_aligned(es_matmul_wsize(type, m.n_in, n_tok) + 64);
                const double flop = 2.0 * (double)(m.n_out * m.n_in * n_tok);
                double cpu1;
                double wall2 = time_matmul(tp2, &m, x, n_tok, y, wsp, quick ? 3 : 10, NULL);
                time_matmul(NULL, &m, x, n_tok, y, wsp, quick ? 3 : 10, &cpu1);
                printf(" %s %.0f/%.0f", shapes[si].what, flop / wall2 * 1e-9, flop / cpu1 * 1e-9);
                total_wall += wall2 * (double)shapes[si].per_model;
                total_cpu += cpu1 * (double)shapes[si].per_model;
                es_free_aligned(wsp);
                es_free_aligned(m.W);
            }
            printf("\n        matmul-only tok/s: %.0f (2 threads, wall), %.0f (2 x 1-thread CPU "
                   "time)\n",
                   (double)n_tok / total_wall, 2.0 * (double)n_tok / total_cpu);
        }
    }
    free(x);
    free(y);
    es_threadpool_free(tp2);
    return 0;
}
