/*
 * test_kquants.c — the K-quant types (Q2_K..Q6_K with Q8_K activations):
 *   - the type tables hold our kernels (scalar and, with AVX2, SIMD);
 *   - Q8_K rounds exactly like llama.cpp's reference (hand-checked values);
 *   - AVX2 vec_dot == scalar vec_dot == float dot of the dequantized operands, on
 *     n = 256, 512, 2816, for quantized random data and for random block bytes;
 *   - AVX2 dequantizers == scalar ones;
 *   - quantize → dequantize error bounds per type (and edge blocks);
 *   - llama.cpp's quantized tensors of the llama fixture dequantize to within the
 *     type's error of the f16 originals, and our quantizer's error is close to llama.cpp's.
 */
#include "cpu.h"
#include "gguf.h"
#include "kernels.h"
#include "quants_k.h"
#include "testutil.h"
#include "types.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- deterministic random numbers ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng_u64(void) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double rng_uniform(void) {
    return (double)(rng_u64() >> 11) * (1.0 / 9007199254740992.0);
}

static float rng_gauss(void) {
    double u = rng_uniform(), v = rng_uniform();
    if (u < 1e-300) u = 1e-300;
    return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}

/* ---- the five weight types ---- */

typedef struct kq_type {
    es_type type;
    const char *name;
    size_t block_bytes;
    es_to_float_fn to_float;
    es_from_float_fn from_float;
    es_vec_dot_fn vec_dot;
    es_vec_dot_fn vec_dot_avx2;   /* NULL without SIMD */
    es_to_float_fn to_float_avx2; /* NULL where none */
    double rms_bound;             /* relative RMS bound of the round trip on N(0,1) */
} kq_type;

#ifdef ES_NO_SIMD
#define SIMD(f) NULL
#else
#define SIMD(f) f
#endif

static const kq_type kq_types[] = {
    {ES_TYPE_Q2_K, "Q2_K", sizeof(es_block_q2_K), es_to_float_q2_K_ref, es_from_float_q2_K_ref,
     es_vec_dot_q2_K_ref, SIMD(es_vec_dot_q2_K_avx2), NULL, 0.29},
    {ES_TYPE_Q3_K, "Q3_K", sizeof(es_block_q3_K), es_to_float_q3_K_ref, es_from_float_q3_K_ref,
     es_vec_dot_q3_K_ref, SIMD(es_vec_dot_q3_K_avx2), NULL, 0.16},
    {ES_TYPE_Q4_K, "Q4_K", sizeof(es_block_q4_K), es_to_float_q4_K_ref, es_from_float_q4_K_ref,
     es_vec_dot_q4_K_ref, SIMD(es_vec_dot_q4_K_avx2), SIMD(es_to_float_q4_K_avx2), 0.08},
    {ES_TYPE_Q5_K, "Q5_K", sizeof(es_block_q5_K), es_to_float_q5_K_ref, es_from_float_q5_K_ref,
     es_vec_dot_q5_K_ref, SIMD(es_vec_dot_q5_K_avx2), NULL, 0.04},
    {ES_TYPE_Q6_K, "Q6_K", sizeof(es_block_q6_K), es_to_float_q6_K_ref, es_from_float_q6_K_ref,
     es_vec_dot_q6_K_ref, SIMD(es_vec_dot_q6_K_avx2), SIMD(es_to_float_q6_K_avx2), 0.02},
};

static bool cpu_has_avx2(void) {
#ifdef ES_NO_SIMD
    return false;
#else
    return es_cpu_has(ES_CPU_AVX2) && es_cpu_has(ES_CPU_FMA) && es_cpu_has(ES_CPU_F16C);
#endif
}

static void test_tables(void) {
    for (size_t t = 0; t < ES_ARRAY_LEN(kq_types); t++) {
        const kq_type *k = &kq_types[t];
        const es_type_traits *ref = es_type_get_ref(k->type), *fast = es_type_get(k->type);
        CHECK(ref && fast, "%s: no traits", k->name);
        if (!ref || !fast) continue;
        CHECK(ref->can_compute && fast->can_compute, "%s: can_compute not set", k->name);
        CHECK(ref->vec_dot_type == ES_TYPE_Q8_K && fast->vec_dot_type == ES_TYPE_Q8_K,
              "%s: vec_dot_type %d/%d, want Q8_K", k->name, ref->vec_dot_type, fast->vec_dot_type);
        CHECK(ref->block_size == ES_QK_K && ref->type_size == k->block_bytes, "%s: size %lld/%zu",
              k->name, (long long)ref->block_size, ref->type_size);
        CHECK(ref->vec_dot == k->vec_dot && ref->to_float == k->to_float &&
                  ref->from_float == k->from_float,
              "%s: reference table does not hold the scalar kernels", k->name);
        if (es_kernels_have_avx2() && k->vec_dot_avx2)
            CHECK(fast->vec_dot == k->vec_dot_avx2, "%s: fast table lacks the AVX2 vec_dot",
                  k->name);
    }
    const es_type_traits *q8 = es_type_get_ref(ES_TYPE_Q8_K), *q8f = es_type_get(ES_TYPE_Q8_K);
    CHECK(q8 && q8->from_float == es_from_float_q8_K_ref && q8->to_float == es_to_float_q8_K_ref,
          "Q8_K: conversions not registered");
#ifndef ES_NO_SIMD
    CHECK(q8f && q8f->from_float ==
                     (es_kernels_have_avx2() ? es_from_float_q8_K_avx2 : es_from_float_q8_K_ref),
          "Q8_K: fast table lacks the AVX2 quantizer");
#else
    (void)q8f;
#endif
    printf("tables: kernels ISA %s\n", es_kernels_isa());
}

/* ---- Q8_K ---- */

static void test_q8_K(void) {
    float x[ES_QK_K];
    es_block_q8_K b;
    /* max |x| is −127 → d = 1 (sign: d = max/−127), q = round-half-even(x) */
    memset(x, 0, sizeof x);
    x[0] = -127.0f;
    x[1] = 2.5f;  /* tie → 2 */
    x[2] = 3.5f;  /* tie → 4 */
    x[3] = -2.5f; /* tie → −2 */
    x[4] = 0.49f;
    x[17] = 100.75f;
    es_from_float_q8_K_ref(x, &b, ES_QK_K);
    CHECK(b.d == 1.0f, "q8_K: d %g, want 1", b.d);
    CHECK(b.qs[0] == -127 && b.qs[1] == 2 && b.qs[2] == 4 && b.qs[3] == -2 && b.qs[4] == 0 &&
              b.qs[17] == 101,
          "q8_K: rounding %d %d %d %d %d %d", b.qs[0], b.qs[1], b.qs[2], b.qs[3], b.qs[4],
          b.qs[17]);
    CHECK(b.bsums[0] == -127 + 2 + 4 - 2 && b.bsums[1] == 101, "q8_K: bsums %d %d", b.bsums[0],
          b.bsums[1]);
    /* a positive maximum flips the sign of d: the maximum becomes −127 */
    memset(x, 0, sizeof x);
    x[5] = 2.0f;
    x[6] = -1.0f;
    es_from_float_q8_K_ref(x, &b, ES_QK_K);
    CHECK(b.qs[5] == -127 && b.qs[6] == 64 && fabsf(b.d - 2.0f / -127.0f) < 1e-9f,
          "q8_K: positive max: q %d %d d %g", b.qs[5], b.qs[6], b.d);
    /* all zero */
    memset(x, 0, sizeof x);
    es_from_float_q8_K_ref(x, &b, ES_QK_K);
    CHECK(b.d == 0 && b.qs[0] == 0 && b.bsums[3] == 0, "q8_K: zero block");
    /* random: |error| ≤ |d|/2, bsums consistent */
    enum { N = 4 * ES_QK_K };
    float xr[N], back[N];
    es_block_q8_K br[N / ES_QK_K];
    for (int i = 0; i < N; i++)
        xr[i] = rng_gauss() * 3.0f;
    es_from_float_q8_K_ref(xr, br, N);
    es_to_float_q8_K_ref(br, back, N);
    double maxerr_rel = 0;
    int bad_bsums = 0;
    for (int i = 0; i < N; i++) {
        const float d = fabsf(br[i / ES_QK_K].d);
        maxerr_rel = fmax(maxerr_rel, fabs(back[i] - xr[i]) / d);
    }
    for (int k = 0; k < N / ES_QK_K; k++)
        for (int j = 0; j < 16; j++) {
            int s = 0;
            for (int e = 0; e < 16; e++)
                s += br[k].qs[16 * j + e];
            bad_bsums += s != br[k].bsums[j];
        }
    CHECK(maxerr_rel <= 0.5 + 1e-4, "q8_K: max error %g steps, want ≤ 0.5", maxerr_rel);
    CHECK(bad_bsums == 0, "q8_K: %d wrong bsums", bad_bsums);
    printf("q8_K: max round-trip error %.4f steps\n", maxerr_rel);
}

/* ---- dot products ---- */

/* Float reference of the dot product of quantized rows: Σ to_float(x)·to_float(y) in
 * double; *mag gets Σ|x_i·y_i|, the scale the error is measured against. */
static double dequant_dot(const kq_type *k, const void *qx, const void *qy, int64_t n,
                          double *mag) {
    float *fx = malloc(sizeof *fx * (size_t)n), *fy = malloc(sizeof *fy * (size_t)n);
    k->to_float(qx, fx, n);
    es_to_float_q8_K_ref(qy, fy, n);
    double s = 0, m = 0;
    for (int64_t i = 0; i < n; i++) {
        s += (double)fx[i] * fy[i];
        m += fabs((double)fx[i] * fy[i]);
    }
    free(fx);
    free(fy);
    *mag = m;
    return s;
}

/* Writes sane random fp16 scales over random block bytes, so every bit pattern of the
 * quants and sub-block scales is exercised but d/dmin stay finite. */
static void randomize_blocks(const kq_type *k, void *blocks, int64_t nb) {
    uint8_t *p = blocks;
    for (size_t i = 0; i < (size_t)nb * k->block_bytes; i++)
        p[i] = (uint8_t)rng_u64();
    for (int64_t i = 0; i < nb; i++) {
        uint16_t d = es_fp32_to_fp16((float)(0.001 + 0.01 * rng_uniform()));
        uint16_t dmin = es_fp32_to_fp16((float)(0.001 + 0.01 * rng_uniform()));
        switch (k->type) {
        case ES_TYPE_Q2_K:
            ((es_block_q2_K *)blocks)[i].d = d, ((es_block_q2_K *)blocks)[i].dmin = dmin;
            break;
        case ES_TYPE_Q3_K: ((es_block_q3_K *)blocks)[i].d = d; break;
        case ES_TYPE_Q4_K:
            ((es_block_q4_K *)blocks)[i].d = d, ((es_block_q4_K *)blocks)[i].dmin = dmin;
            break;
        case ES_TYPE_Q5_K:
            ((es_block_q5_K *)blocks)[i].d = d, ((es_block_q5_K *)blocks)[i].dmin = dmin;
            break;
        case ES_TYPE_Q6_K: ((es_block_q6_K *)blocks)[i].d = d; break;
        default: break;
        }
    }
}

static void test_vec_dot(bool avx2) {
    const int64_t sizes[] = {256, 512, 2816};
    for (size_t t = 0; t < ES_ARRAY_LEN(kq_types); t++) {
        const kq_type *k = &kq_types[t];
        double max_simd = 0, max_deq = 0, max_tf = 0;
        int exact = 0, cases = 0;
        for (size_t si = 0; si < ES_ARRAY_LEN(sizes); si++) {
            const int64_t n = sizes[si], nb = n / ES_QK_K;
            float *x = malloc(sizeof *x * (size_t)n), *y = malloc(sizeof *y * (size_t)n);
            void *qx = malloc(k->block_bytes * (size_t)nb);
            es_block_q8_K *qy = malloc(sizeof *qy * (size_t)nb);
            float *f1 = malloc(sizeof *f1 * (size_t)n), *f2 = malloc(sizeof *f2 * (size_t)n);
            for (int mode = 0; mode < 2; mode++) { /* 0: quantized data, 1: random bytes */
                for (int64_t i = 0; i < n; i++) {
                    const float scale = (float)exp(rng_gauss()); /* varied magnitudes */
                    x[i] = rng_gauss() * scale * 0.05f + (rng_uniform() < 0.01 ? 0.3f : 0.0f);
                    y[i] = rng_gauss() * 2.0f;
                }
                if (mode == 0)
                    k->from_float(x, qx, n);
                else
                    randomize_blocks(k, qx, nb);
                es_from_float_q8_K_ref(y, qy, n);
                float s_ref = 0, s_simd = 0;
                k->vec_dot(n, &s_ref, qx, qy);
                double mag;
                const double s_deq = dequant_dot(k, qx, qy, n, &mag);
                const double e_deq = fabs(s_ref - s_deq) / fmax(mag, 1e-30);
                max_deq = fmax(max_deq, e_deq);
                CHECK(e_deq <= 1e-5,
                      "%s n=%lld mode %d: scalar vec_dot %.9g vs dequantized dot %.9g", k->name,
                      (long long)n, mode, s_ref, s_deq);
                if (avx2 && k->vec_dot_avx2) {
                    k->vec_dot_avx2(n, &s_simd, qx, qy);
                    const double e = fabs((double)s_simd - s_ref) / fmax(fabs(s_ref), 1e-6 * mag);
                    max_simd = fmax(max_simd, e);
                    exact += s_simd == s_ref;
                    cases++;
                    CHECK(e <= 1e-5, "%s n=%lld mode %d: AVX2 %.9g vs scalar %.9g (rel %g)",
                          k->name, (long long)n, mode, s_simd, s_ref, e);
                }
                if (avx2 && k->to_float_avx2) {
                    k->to_float(qx, f1, n);
                    k->to_float_avx2(qx, f2, n);
                    size_t where = 0;
                    const double d = es_test_maxdiff(f1, f2, (size_t)n, &where);
                    max_tf = fmax(max_tf, d);
                    CHECK(d == 0, "%s n=%lld: AVX2 to_float differs by %g at %zu", k->name,
                          (long long)n, d, where);
                }
            }
            free(x), free(y), free(qx), free(qy), free(f1), free(f2);
        }
        printf("%s vec_dot: scalar vs dequantized dot max rel %.3g; AVX2 vs scalar max rel %.3g "
               "(%d/%d bit-exact)%s; AVX2 to_float max diff %g\n",
               k->name, max_deq, max_simd, exact, cases, avx2 ? "" : " [no AVX2: skipped]", max_tf);
    }
}

/* ---- quantization round trip ---- */

static double rel_rms(const float *a, const float *b, size_t n, double *maxdiff) {
    double num = 0, den = 0, mx = 0;
    for (size_t i = 0; i < n; i++) {
        const double d = (double)a[i] - b[i];
        num += d * d;
        den += (double)b[i] * b[i];
        mx = fmax(mx, fabs(d));
    }
    if (maxdiff) *maxdiff = mx;
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

static void test_round_trip(void) {
    enum { N = 32 * ES_QK_K };
    float *x = malloc(sizeof *x * N), *back = malloc(sizeof *back * N);
    void *q = malloc(sizeof(es_block_q6_K) * (N / ES_QK_K) + 64);
    for (size_t t = 0; t < ES_ARRAY_LEN(kq_types); t++) {
        const kq_type *k = &kq_types[t];
        /* N(0, 1) and N(0, 0.02): the relative error does not depend on the scale */
        const float sigmas[2] = {1.0f, 0.02f};
        double rms[2], mx[2];
        for (int s = 0; s < 2; s++) {
            for (int i = 0; i < N; i++)
                x[i] = rng_gauss() * sigmas[s];
            k->from_float(x, q, N);
            k->to_float(q, back, N);
            rms[s] = rel_rms(back, x, N, &mx[s]);
            CHECK(rms[s] < k->rms_bound, "%s: relative RMS %.4f at sigma %g, bound %.3f", k->name,
                  rms[s], sigmas[s], k->rms_bound);
        }
        printf(
            "%s round trip: rel RMS %.4f (sigma 1, max diff %.3f), %.4f (sigma 0.02); bound %.3f\n",
            k->name, rms[0], mx[0], rms[1], k->rms_bound);

        /* edge blocks: zeros stay zeros; a constant block; a single outlier */
        memset(x, 0, sizeof *x * ES_QK_K);
        k->from_float(x, q, ES_QK_K);
        k->to_float(q, back, ES_QK_K);
        double md;
        rel_rms(back, x, ES_QK_K, &md);
        CHECK(md == 0, "%s: zero block dequantizes to max |%g|", k->name, md);
        for (int i = 0; i < ES_QK_K; i++)
            x[i] = 0.25f;
        k->from_float(x, q, ES_QK_K);
        k->to_float(q, back, ES_QK_K);
        const double rc = rel_rms(back, x, ES_QK_K, &md);
        CHECK(rc < k->rms_bound, "%s: constant block rel RMS %.4f", k->name, rc);
        for (int i = 0; i < ES_QK_K; i++)
            x[i] = rng_gauss();
        x[77] = 50.0f;
        k->from_float(x, q, ES_QK_K);
        k->to_float(q, back, ES_QK_K);
        CHECK(fabsf(back[77] - 50.0f) < 50.0f * (float)k->rms_bound, "%s: outlier 50 -> %g",
              k->name, back[77]);
        bool finite = true;
        for (int i = 0; i < ES_QK_K; i++)
            finite = finite && isfinite(back[i]);
        CHECK(finite, "%s: outlier block has non-finite values", k->name);
    }
    free(x), free(back), free(q);
}

/* ---- real tensors quantized by llama.cpp ---- */

static float *tensor_to_f32(const es_gguf_tensor *t, bool fast) {
    const int64_t n = t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
    const es_type_traits *tr = fast ? es_type_get(t->type) : es_type_get_ref(t->type);
    float *out = malloc(sizeof *out * (size_t)n);
    if (!out || !tr || !tr->to_float) {
        free(out);
        return NULL;
    }
    tr->to_float(t->data, out, n);
    return out;
}

static void check_real_tensor(const kq_type *k, const char *file, const es_gguf_tensor *tq,
                              const es_gguf_tensor *tf) {
    const int64_t n = tq->ne[0] * tq->ne[1];
    float *deq = tensor_to_f32(tq, false), *deq_fast = tensor_to_f32(tq, true);
    float *orig = tensor_to_f32(tf, false);
    if (!CHECK(deq && deq_fast && orig, "%s %s: could not dequantize", file, tq->name)) goto done;
    size_t where = 0;
    const double fast_diff = es_test_maxdiff(deq, deq_fast, (size_t)n, &where);
    CHECK(fast_diff == 0, "%s %s: fast to_float differs by %g at %zu", file, tq->name, fast_diff,
          where);
    double md_llama, md_ours;
    const double rms_llama = rel_rms(deq, orig, (size_t)n, &md_llama);
    /* our quantizer on the same f16 weights */
    void *q = malloc(k->block_bytes * (size_t)(n / ES_QK_K));
    float *ours = malloc(sizeof *ours * (size_t)n);
    k->from_float(orig, q, n);
    k->to_float(q, ours, n);
    const double rms_ours = rel_rms(ours, orig, (size_t)n, &md_ours);
    printf("%s %s [%s %lldx%lld]: llama.cpp's quants vs f16: rel RMS %.4f, max diff %.4f; "
           "ours: rel RMS %.4f, max diff %.4f\n",
           file, tq->name, k->name, (long long)tq->ne[0], (long long)tq->ne[1], rms_llama, md_llama,
           rms_ours, md_ours);
    CHECK(rms_llama < k->rms_bound, "%s %s: dequantized rel RMS %.4f vs f16, bound %.3f", file,
          tq->name, rms_llama, k->rms_bound);
    CHECK(rms_ours < rms_llama * 1.15, "%s %s: our quantizer's rel RMS %.4f vs llama.cpp's %.4f",
          file, tq->name, rms_ours, rms_llama);

    /* dot products on real rows */
    const int64_t row = tq->ne[0], rows = ES_MIN(tq->ne[1], 8);
    float *act = malloc(sizeof *act * (size_t)row);
    es_block_q8_K *qa = malloc(sizeof *qa * (size_t)(row / ES_QK_K));
    double max_e = 0;
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t i = 0; i < row; i++)
            act[i] = rng_gauss();
        es_from_float_q8_K_ref(act, qa, row);
        const void *xr = (const uint8_t *)tq->data + (size_t)r * es_row_size(tq->type, row);
        float s_ref, s_fast;
        k->vec_dot(row, &s_ref, xr, qa);
        es_type_get(tq->type)->vec_dot(row, &s_fast, xr, qa);
        double mag;
        const double s_deq = dequant_dot(k, xr, qa, row, &mag);
        max_e = fmax(max_e, fmax(fabs(s_ref - s_deq), fabs((double)s_fast - s_ref)) / mag);
    }
    CHECK(max_e < 1e-5, "%s %s: vec_dot on real rows rel error %g", file, tq->name, max_e);
    free(act), free(qa), free(q), free(ours);
done:
    free(deq), free(deq_fast), free(orig);
}

static void test_real_tensors(void) {
    const char *f16_path = es_test_shared_path("fixtures/llama.f16.gguf");
    es_gguf *gf = NULL;
    if (!f16_path || es_gguf_open(f16_path, &gf) != ES_OK) {
        printf("real tensors: skipped (no ../shared/fixtures/llama.f16.gguf)\n");
        return;
    }
    const char *files[] = {"llama.Q4_K_M.gguf", "llama.Q5_K_M.gguf", "llama.Q6_K.gguf"};
    int checked = 0;
    for (size_t fi = 0; fi < ES_ARRAY_LEN(files); fi++) {
        char rel[256];
        snprintf(rel, sizeof rel, "fixtures/quant/%s", files[fi]);
        es_gguf *gq = NULL;
        if (es_gguf_open(es_test_shared_path(rel), &gq) != ES_OK) {
            CHECK(false, "cannot open %s: %s", rel, es_last_error());
            continue;
        }
        /* first 2-D tensor of each K type in the file */
        for (size_t t = 0; t < ES_ARRAY_LEN(kq_types); t++) {
            for (int64_t i = 0; i < es_gguf_n_tensors(gq); i++) {
                const es_gguf_tensor *tq = es_gguf_tensor_at(gq, i);
                if ((int)tq->type != (int)kq_types[t].type || tq->n_dims != 2) continue;
                const es_gguf_tensor *tf = es_gguf_find_tensor(gf, tq->name);
                if (!CHECK(tf && tf->ne[0] == tq->ne[0] && tf->ne[1] == tq->ne[1],
                           "%s: %s missing or reshaped in the f16 file", files[fi], tq->name))
                    break;
                check_real_tensor(&kq_types[t], files[fi], tq, tf);
                checked++;
                break;
            }
        }
        es_gguf_close(gq);
    }
    CHECK(checked >= 4, "only %d real K-quant tensors found", checked);
    es_gguf_close(gf);
}

/* ---- whole-model logits against llama.cpp's on its own K-quant files ----
 *
 * These tiny random fixtures are chaotic under 8-bit activation rounding: scaling our
 * Q8_K iscale by (1 + 3e-6), which flips a handful of roundings, moves the logits by
 * up to 0.25–0.34 (mean 0.02–0.04). So a 0.15 max bound is below the noise floor of
 * any engine that does not bit-match llama.cpp's whole pipeline (it keeps the KV cache
 * in f16). Measured: ours vs llama.cpp max 0.27–0.35, mean 0.046–0.050; a real but
 * subtle bug (Q8_K truncating instead of rounding) gives max 0.70–0.86, mean 0.12.
 * The bounds sit between. */
#define LOGITS_MAX_DIFF 0.45
#define LOGITS_MEAN_DIFF 0.07

static void test_fixture_logits(void) {
    const char *models[] = {"llama", "qwen2"};
    const char *kinds[] = {"Q4_K_M", "Q5_K_M", "Q6_K"};
    for (size_t mi = 0; mi < ES_ARRAY_LEN(models); mi++) {
        for (size_t ki = 0; ki < ES_ARRAY_LEN(kinds); ki++) {
            char rel[256], rel_ref[256];
            snprintf(rel, sizeof rel, "fixtures/quant/%s.%s.gguf", models[mi], kinds[ki]);
            snprintf(rel_ref, sizeof rel_ref, "fixtures/quant/%s.%s.llamacpp-ref.gguf", models[mi],
                     kinds[ki]);
            char path[4096];
            snprintf(path, sizeof path, "%s", es_test_shared_path(rel));
            es_gguf *ref = NULL;
            if (!CHECK(es_gguf_open(es_test_shared_path(rel_ref), &ref) == ES_OK, "%s: %s", rel_ref,
                       es_last_error()))
                continue;
            const es_gguf_tensor *tt = es_gguf_find_tensor(ref, "tokens");
            const es_gguf_tensor *tl = es_gguf_find_tensor(ref, "logits");
            es_model *model = NULL;
            es_model_params mp = es_model_default_params();
            es_context *ctx = NULL;
            es_context_params cp = es_context_default_params();
            cp.n_ctx = 64;
            cp.n_threads = 2;
            if (!CHECK(tt && tl && tt->type == ES_TYPE_I32 && tl->type == ES_TYPE_F32,
                       "%s: bad reference", rel_ref) ||
                !CHECK(es_model_load(path, &mp, &model) == ES_OK, "%s: %s", rel, es_last_error()) ||
                !CHECK(es_context_create(model, &cp, &ctx) == ES_OK, "%s: %s", rel,
                       es_last_error())) {
                es_model_free(model);
                es_gguf_close(ref);
                continue;
            }
            const int n_tok = (int)tt->ne[0], n_vocab = (int)tl->ne[0];
            int8_t want[64];
            memset(want, 1, sizeof want);
            es_batch b = {n_tok, tt->data, NULL, NULL, want};
            double maxd = 0, sum_abs = 0;
            int at_tok = -1;
            if (CHECK(n_tok <= 64 && es_decode(ctx, &b) == ES_OK, "%s: decode: %s", rel,
                      es_last_error())) {
                for (int i = 0; i < n_tok; i++) {
                    const float *lg = es_get_logits(ctx, i);
                    if (!CHECK(lg, "%s: no logits for token %d", rel, i)) break;
                    const float *want_lg = (const float *)tl->data + (size_t)i * n_vocab;
                    for (int v = 0; v < n_vocab; v++) {
                        const double d = fabs((double)lg[v] - want_lg[v]);
                        sum_abs += d;
                        if (!(d <= maxd)) maxd = d, at_tok = i; /* NaN counts */
                    }
                }
                const double mean_abs = sum_abs / ((double)n_tok * n_vocab);
                printf(
                    "%s: logits vs llama.cpp: max diff %.4f (token %d of %d), mean abs diff %.4f\n",
                    rel, maxd, at_tok, n_tok, mean_abs);
                CHECK(maxd < LOGITS_MAX_DIFF && mean_abs < LOGITS_MEAN_DIFF,
                      "%s: logits differ from llama.cpp's by max %.4f, mean %.4f", rel, maxd,
                      mean_abs);
            }
            es_context_free(ctx);
            es_model_free(model);
            es_gguf_close(ref);
        }
    }
}

int main(void) {
    const bool avx2 = cpu_has_avx2();
    test_tables();
    test_q8_K();
    test_vec_dot(avx2);
    test_round_trip();
    test_real_tensors();
    if (es_test_shared()) test_fixture_logits();
    return es_test_finish();
}
