/*
 * test_kernels.c — the type table, half/bfloat16 conversions, every computable type's
 * SIMD kernels against the scalar references on odd sizes, quantization error bounds,
 * es_matmul against a naive double loop (1 and 2 threads), and the thread pool.
 */
#include "kernels.h"
#include "matmul.h"
#include "testutil.h"
#include "threadpool.h"
#include "types.h"

#include "common.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- deterministic random numbers ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng_next(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Uniform in [-1, 1). */
static float rng_float(void) {
    return (float)((double)(rng_next() >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

/* Activation-like data: mostly small, a few outliers, some offsets. */
static void fill_random(float *x, int64_t n, float scale) {
    float offset = rng_float() * 0.3f * scale;
    for (int64_t i = 0; i < n; i++) {
        float v = rng_float() * scale + offset;
        if ((rng_next() & 63) == 0) v *= 6.0f;
        x[i] = v;
    }
}

/* ---- type table ---- */

static void test_table(void) {
    static const struct {
        int id;
        const char *name;
        int64_t bs;
        size_t size;
    } expect[] = {
        {0, "F32", 1, 4},         {1, "F16", 1, 2},         {2, "Q4_0", 32, 18},
        {3, "Q4_1", 32, 20},      {6, "Q5_0", 32, 22},      {7, "Q5_1", 32, 24},
        {8, "Q8_0", 32, 34},      {9, "Q8_1", 32, 36},      {10, "Q2_K", 256, 84},
        {11, "Q3_K", 256, 110},   {12, "Q4_K", 256, 144},   {13, "Q5_K", 256, 176},
        {14, "Q6_K", 256, 210},   {15, "Q8_K", 256, 292},   {16, "IQ2_XXS", 256, 66},
        {17, "IQ2_XS", 256, 74},  {18, "IQ3_XXS", 256, 98}, {19, "IQ1_S", 256, 50},
        {20, "IQ4_NL", 32, 18},   {21, "IQ3_S", 256, 110},  {22, "IQ2_S", 256, 82},
        {23, "IQ4_XS", 256, 136}, {24, "I8", 1, 1},         {25, "I16", 1, 2},
        {26, "I32", 1, 4},        {27, "I64", 1, 8},        {28, "F64", 1, 8},
        {29, "IQ1_M", 256, 56},   {30, "BF16", 1, 2},       {34, "TQ1_0", 256, 54},
        {35, "TQ2_0", 256, 66},   {39, "MXFP4", 32, 17},
    };
    for (size_t i = 0; i < ES_ARRAY_LEN(expect); i++) {
        const es_type_traits *t = es_type_get(expect[i].id);
        const es_type_traits *r = es_type_get_ref(expect[i].id);
        if (!CHECK(t && r, "type %d missing", expect[i].id)) continue;
        CHECK(strcmp(t->name, expect[i].name) == 0, "type %d name %s", expect[i].id, t->name);
        CHECK(strcmp(es_type_name(expect[i].id), expect[i].name) == 0, "es_type_name(%d)",
              expect[i].id);
        CHECK(t->block_size == expect[i].bs && t->type_size == expect[i].size,
              "%s: block %lld bytes %zu", t->name, (long long)t->block_size, t->type_size);
        CHECK(r->block_size == t->block_size && r->type_size == t->type_size, "%s ref sizes",
              t->name);
        CHECK(es_row_size(expect[i].id, expect[i].bs * 3) == expect[i].size * 3, "%s row size",
              t->name);
        if (expect[i].bs > 1)
            CHECK(es_row_size(expect[i].id, expect[i].bs + 1) == 0, "%s odd row", t->name);
        if (t->can_compute) {
            CHECK(t->to_float && t->vec_dot, "%s can_compute without kernels", t->name);
            const es_type_traits *v = es_type_get(t->vec_dot_type);
            CHECK(v && v->from_float, "%s: vec_dot_type %d has no from_float", t->name,
                  t->vec_dot_type);
        }
    }
    const int unknown[] = {-1, 4, 5, 31, 32, 33, 36, 37, 38, 40, 1000};
    for (size_t i = 0; i < ES_ARRAY_LEN(unknown); i++) {
        CHECK(es_type_get(unknown[i]) == NULL && es_type_get_ref(unknown[i]) == NULL, "id %d known",
              unknown[i]);
        CHECK(strcmp(es_type_name(unknown[i]), "unknown") == 0, "name of id %d", unknown[i]);
        CHECK(es_row_size(unknown[i], 32) == 0, "row size of id %d", unknown[i]);
    }
    CHECK(es_row_size(ES_TYPE_F32, -1) == 0, "negative n");
    CHECK(es_row_size(ES_TYPE_F64, INT64_MAX) == 0, "overflowing row size");
    const char *forced = getenv("ES_FORCE_SCALAR");
    printf("kernels: %s%s\n", es_kernels_isa(), forced ? " (ES_FORCE_SCALAR set)" : "");
    for (int id = 0; id < ES_TYPE_COUNT; id++) {
        const es_type_traits *t = es_type_get(id);
        if (t && t->can_compute)
            printf("  computable: %s (activations %s)\n", t->name, es_type_name(t->vec_dot_type));
    }
}

/* ---- half and bfloat16 ---- */

static float bits_to_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* True if h is the correctly rounded (nearest, ties to even) half of f. */
static bool is_nearest_half(float f, uint16_t h) {
    double v = es_fp16_to_fp32(h);
    if (isinf(v)) return fabs((double)f) >= 65520.0 && (v > 0) == (f > 0);
    double err = fabs(v - (double)f);
    for (int dlt = -1; dlt <= 1; dlt += 2) {
        uint16_t o = (uint16_t)(h + dlt);
        if ((o & 0x7fff) > 0x7c00 || ((o ^ h) & 0x8000)) continue; /* crossed into NaN or sign */
        double w = es_fp16_to_fp32(o);
        if (isinf(w)) continue;
        double e2 = fabs(w - (double)f);
        if (e2 < err) return false;
        if (e2 == err && (h & 1)) return false; /* tie must go to even */
    }
    return true;
}

static void test_half(void) {
    int bad_roundtrip = 0, bad_round = 0, bad_bf = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = es_fp16_to_fp32((uint16_t)h);
        uint16_t back = es_fp32_to_fp16(f);
        if ((h & 0x7fff) > 0x7c00) { /* NaN stays NaN */
            if (!isnan(f) || (back & 0x7fff) <= 0x7c00) bad_roundtrip++;
        } else if (back != h) {
            bad_roundtrip++;
        }
        float b = es_bf16_to_fp32((uint16_t)h);
        uint16_t bb = es_fp32_to_bf16(b);
        if (isnan(b) ? !isnan(es_bf16_to_fp32(bb)) : bb != h) bad_bf++;
    }
    /* known values */
    CHECK(es_fp16_to_fp32(0x3c00) == 1.0f && es_fp16_to_fp32(0xc000) == -2.0f, "fp16 1, -2");
    CHECK(es_fp16_to_fp32(0x0001) == 5.9604644775390625e-08f, "smallest subnormal");
    CHECK(es_fp16_to_fp32(0x7bff) == 65504.0f, "largest half");
    CHECK(es_fp32_to_fp16(65519.0f) == 0x7bff && es_fp32_to_fp16(65520.0f) == 0x7c00,
          "overflow edge");
    CHECK(es_fp32_to_fp16(1e-9f) == 0 && es_fp32_to_fp16(-1e-9f) == 0x8000,
          "underflow to signed zero");
    CHECK(isnan(es_fp16_to_fp32(es_fp32_to_fp16(NAN))), "NaN stays NaN");
    CHECK(es_bf16_to_fp32(es_fp32_to_bf16(1.00390625f)) == 1.0f, "bf16 tie to even");
    CHECK(isnan(es_bf16_to_fp32(es_fp32_to_bf16(bits_to_f32(0x7f800001u)))),
          "bf16 signalling NaN stays NaN");
    /* random floats of every magnitude, plus exact halfway cases */
    for (int i = 0; i < 200000; i++) {
        uint32_t u = (uint32_t)rng_next();
        u = (u & 0x80000000u) | (0x33000000u + (u & 0x7fffffffu) % (0x47800000u - 0x33000000u));
        if (i % 4 == 0) u &= ~0xfffu, u |= 0x1000u; /* a tie between two halves (normal range) */
        float f = bits_to_f32(u);
        if (!is_nearest_half(f, es_fp32_to_fp16(f))) {
            if (bad_round++ < 5)
                printf("  fp16 rounding of %a gave %04x\n", (double)f, es_fp32_to_fp16(f));
        }
    }
    CHECK(bad_roundtrip == 0, "fp16 round trip failed for %d values", bad_roundtrip);
    CHECK(bad_round == 0, "fp16 rounding wrong for %d values", bad_round);
    CHECK(bad_bf == 0, "bf16 round trip failed for %d values", bad_bf);
    printf("half: 65536 round trips, 200000 roundings checked\n");
}

/* ---- per-type kernels: SIMD vs scalar reference ---- */

/* Types whose summation order kernels.h fixes as llama.cpp's: their vec_dot_llamacpp
 * gives the reference's bits on every path. */
static bool has_llamacpp_order(int type) {
    return type == ES_TYPE_Q8_0 || type == ES_TYPE_Q4_0 || type == ES_TYPE_Q5_0 ||
           es_type_get(type)->vec_dot_type == ES_TYPE_Q8_K;
}

/* Largest |error| allowed when quantizing a block with absolute max amax and range
 * (max - min) = span, or < 0 if we have no bound for the type. */
static double quant_error_bound(int type, double amax, double span) {
    switch (type) {
    case ES_TYPE_F32: return 0.0;
    case ES_TYPE_F16: return amax * (1.0 / 2048.0) + 6e-8;
    case ES_TYPE_BF16: return amax * (1.0 / 256.0);
    case ES_TYPE_Q8_0:
    case ES_TYPE_Q8_1: return amax * (0.5 / 127.0 + 127.0 / 2048.0 / 127.0) * 1.01;
    /* the extreme maps to -8 (-16): its opposite can be clamped by a whole step */
    case ES_TYPE_Q4_0: return amax * (1.0 / 8.0 + 1.0 / 2048.0) * 1.01;
    case ES_TYPE_Q5_0: return amax * (1.0 / 16.0 + 1.0 / 2048.0) * 1.01;
    case ES_TYPE_Q4_1: return span * (0.5 / 15.0 + 1.0 / 2048.0) * 1.01 + amax / 2048.0;
    case ES_TYPE_Q5_1: return span * (0.5 / 31.0 + 1.0 / 2048.0) * 1.01 + amax / 2048.0;
    default: return -1.0;
    }
}

static void test_type(int type) {
    const es_type_traits *ft = es_type_get(type), *rt = es_type_get_ref(type);
    const es_type_traits *vr = es_type_get_ref(ft->vec_dot_type);
    const int64_t bs =
        ft->block_size < 32 ? 32 : ft->block_size; /* plain types: odd multiples of 32 */
    static const int64_t counts[] = {1, 2, 3, 7, 33};
    double max_to = 0, max_dot_rel = 0, max_q_ratio = 0, max_from = 0;
    for (size_t ci = 0; ci < ES_ARRAY_LEN(counts); ci++) {
        for (int extra = 0; extra < (ft->block_size == 1 ? 2 : 1); extra++) {
            /* plain types also get lengths that are not a multiple of 8 */
            const int64_t n = counts[ci] * bs + (extra ? 5 : 0);
            float *w = malloc((size_t)n * sizeof *w), *a = malloc((size_t)n * sizeof *a);
            float *wd_ref = malloc((size_t)n * sizeof *wd_ref),
                  *wd_fast = malloc((size_t)n * sizeof *wd_fast);
            float *ad = malloc((size_t)n * sizeof *ad);
            void *wq = malloc(es_row_size(type, n)), *wq2 = malloc(es_row_size(type, n));
            void *aq = malloc(es_row_size(ft->vec_dot_type, n));
            fill_random(w, n, 0.05f + 2.0f * (float)ci);
            fill_random(a, n, 1.0f);
            if (ci == 0 && extra == 0)
                w[3] = 0.0f, memset(w + bs / 2, 0, sizeof(float) * (size_t)(bs / 2));
            rt->from_float(w, wq, n);
            /* to_float: fast and ref bit-identical */
            rt->to_float(wq, wd_ref, n);
            ft->to_float(wq, wd_fast, n);
            double d_to = es_test_maxdiff(wd_ref, wd_fast, (size_t)n, NULL);
            max_to = fmax(max_to, d_to);
            /* quantization error per block */
            for (int64_t b0 = 0; b0 < n; b0 += ft->block_size) {
                int64_t len = ES_MIN(ft->block_size, n - b0);
                double amax = 0, mn = w[b0], mx = w[b0], err = 0;
                for (int64_t j = b0; j < b0 + len; j++) {
                    amax = fmax(amax, fabs(w[j]));
                    mn = fmin(mn, w[j]);
                    mx = fmax(mx, w[j]);
                    err = fmax(err, fabs((double)w[j] - wd_ref[j]));
                }
                double bound = quant_error_bound(type, amax, mx - mn);
                if (bound >= 0) {
                    if (bound > 0)
                        max_q_ratio = fmax(max_q_ratio, err / bound);
                    else if (err > 0)
                        max_q_ratio = INFINITY;
                }
            }
            /* from_float: fast and ref agree after dequantization within a quant step */
            if (ft->from_float) {
                ft->from_float(w, wq2, n);
                rt->to_float(wq2, wd_fast, n);
                double d_from = es_test_maxdiff(wd_ref, wd_fast, (size_t)n, NULL);
                max_from = fmax(max_from, d_from);
                /* bound: two quantizations of the same data differ by at most one step */
                double amax = 0;
                for (int64_t j = 0; j < n; j++)
                    amax = fmax(amax, fabs(w[j]));
                double step =
                    type == ES_TYPE_F32 ? 0 : (type == ES_TYPE_F16 ? amax / 1024 : amax / 3.5);
                if (type == ES_TYPE_Q8_0 || type == ES_TYPE_Q8_1 || type == ES_TYPE_BF16)
                    step = amax / 100;
                CHECK(d_from <= step + 1e-30, "%s n=%lld: fast from_float differs by %g", ft->name,
                      (long long)n, d_from);
            }
            /* vec_dot: activations in vec_dot_type; fast and ref within float rounding */
            vr->from_float(a, aq, n);
            vr->to_float(aq, ad, n);
            if (ft->vec_dot_type !=
                ES_TYPE_F32) { /* fast activation quantization: the same bytes */
                size_t abytes = es_row_size(ft->vec_dot_type, n);
                void *aq2 = malloc(abytes);
                es_type_get(ft->vec_dot_type)->from_float(a, aq2, n);
                CHECK(memcmp(aq, aq2, abytes) == 0,
                      "%s n=%lld: fast %s quantization differs from the reference", ft->name,
                      (long long)n, es_type_name(ft->vec_dot_type));
                free(aq2);
            }
            float s_ref = 0, s_fast = 0, s_ordered = 0;
            rt->vec_dot(n, &s_ref, wq, aq);
            ft->vec_dot(n, &s_fast, wq, aq);
            ft->vec_dot_llamacpp(n, &s_ordered, wq, aq);
            CHECK(rt->vec_dot_llamacpp == rt->vec_dot,
                  "%s: the reference is its own llama.cpp order", ft->name);
            if (has_llamacpp_order(type))
                CHECK(memcmp(&s_ordered, &s_ref, sizeof s_ref) == 0,
                      "%s n=%lld: vec_dot_llamacpp %.9g is not the reference's %.9g bit for bit",
                      ft->name, (long long)n, s_ordered, s_ref);
            double exact = 0, mag = 0;
            for (int64_t j = 0; j < n; j++) {
                exact += (double)wd_ref[j] * ad[j];
                mag += fabs((double)wd_ref[j] * ad[j]);
            }
            double rel_fast = fabs(s_fast - s_ref) / (mag + 1e-30);
            double rel_exact = fabs(s_ref - exact) / (mag + 1e-30);
            max_dot_rel = fmax(max_dot_rel, rel_fast);
            CHECK(d_to == 0, "%s n=%lld: to_float differs by %g", ft->name, (long long)n, d_to);
            /* the Q4_1/Q5_1 min term uses s = fp16(d * sum q): allow its rounding */
            double tol_exact = (ft->vec_dot_type == ES_TYPE_Q8_1) ? 2e-3 : 1e-5;
            CHECK(rel_fast <= 1e-5, "%s n=%lld: vec_dot fast %.9g ref %.9g (rel %.3g)", ft->name,
                  (long long)n, s_fast, s_ref, rel_fast);
            CHECK(rel_exact <= tol_exact,
                  "%s n=%lld: ref vec_dot %.9g vs dequantized dot %.9g (rel %.3g)", ft->name,
                  (long long)n, s_ref, exact, rel_exact);
            free(w), free(a), free(wd_ref), free(wd_fast), free(ad), free(wq), free(wq2), free(aq);
        }
    }
    CHECK(max_q_ratio <= 1.0, "%s: quantization error %.3f x its bound", ft->name, max_q_ratio);
    printf("%-5s to_float maxdiff %g, vec_dot max rel diff %.3g, from_float maxdiff %.3g, quant "
           "err/bound %.3f\n",
           ft->name, max_to, max_dot_rel, max_from, max_q_ratio);
}

/* ---- matmul vs naive ---- */

/* A tiled f32 kernel called directly (all rows on one thread), or NULL for es_matmul. */
typedef void (*f32_tile_fn)(int type, const uint8_t *W, size_t w_row, int64_t n_in, const float *x,
                            int64_t n_tok, float *y, int64_t n_out, int64_t r0, int64_t r1);

static void test_matmul_case(es_threadpool *tp, int type, int64_t n_out, int64_t n_in,
                             int64_t n_tok, f32_tile_fn direct, const char *direct_name) {
    const es_type_traits *t = es_type_get_ref(type);
    const es_type_traits *v = es_type_get_ref(t->vec_dot_type);
    float *wf = malloc((size_t)(n_out * n_in) * sizeof *wf);
    float *x = malloc((size_t)(n_tok * n_in) * sizeof *x);
    float *xd = malloc((size_t)(n_tok * n_in) * sizeof *xd);
    float *y = malloc((size_t)(n_tok * n_out) * sizeof *y);
    size_t row = es_row_size(type, n_in);
    uint8_t *W = malloc(row * (size_t)n_out);
    uint8_t *xq = malloc(es_row_size(t->vec_dot_type, n_in));
    fill_random(wf, n_out * n_in, 0.3f);
    fill_random(x, n_tok * n_in, 1.0f);
    for (int64_t r = 0; r < n_out; r++) {
        t->from_float(wf + r * n_in, W + (size_t)r * row, n_in);
        t->to_float(W + (size_t)r * row, wf + r * n_in, n_in); /* wf := dequantized weights */
    }
    for (int64_t i = 0; i < n_tok; i++) { /* xd := activations as vec_dot sees them */
        v->from_float(x + i * n_in, xq, n_in);
        v->to_float(xq, xd + i * n_in, n_in);
    }
    size_t ws = es_matmul_wsize(type, n_in, n_tok);
    void *wsp = es_alloc_aligned(ws ? ws : 64);
    for (int64_t i = 0; i < n_tok * n_out; i++)
        y[i] = NAN;
    if (direct)
        direct(type, W, row, n_in, x, n_tok, y, n_out, 0, n_out);
    else
        es_matmul(tp, type, W, n_out, n_in, x, n_tok, y, wsp);
    if (!direct && has_llamacpp_order(type)) {
        /* llama.cpp's order on every path: the same bits as vec_dot_llamacpp row by row, any batch
         */
        const es_type_traits *ft = es_type_get(type);
        float *y2 = malloc((size_t)(n_tok * n_out) * sizeof *y2);
        uint8_t *xr = malloc(es_row_size(ft->vec_dot_type, n_in));
        es_matmul_ex(tp, type, W, n_out, n_in, x, n_tok, y2, wsp, true);
        int64_t differ = 0;
        for (int64_t i = 0; i < n_tok; i++) {
            es_type_get(ft->vec_dot_type)->from_float(x + i * n_in, xr, n_in);
            for (int64_t r = 0; r < n_out; r++) {
                float s1;
                ft->vec_dot_llamacpp(n_in, &s1, W + (size_t)r * row, xr);
                differ += memcmp(&s1, &y2[i * n_out + r], sizeof s1) != 0;
            }
        }
        CHECK(differ == 0,
              "%s %lldx%lld n_tok %lld: llamacpp order differs from vec_dot on %lld outputs",
              t->name, (long long)n_out, (long long)n_in, (long long)n_tok, (long long)differ);
        free(y2), free(xr);
    }
    if (!direct) {
        /* the batch-invariant mode: every output the one-token vec_dot's bits, any batch */
        const es_type_traits *ft = es_type_get(type);
        float *y2 = malloc((size_t)(n_tok * n_out) * sizeof *y2);
        uint8_t *xr = malloc(es_row_size(ft->vec_dot_type, n_in));
        es_matmul_bi(tp, type, W, n_out, n_in, x, n_tok, y2, wsp, false, true);
        int64_t differ = 0;
        for (int64_t i = 0; i < n_tok; i++) {
            const uint8_t *xi = (const uint8_t *)(x + i * n_in);
            if (ft->vec_dot_type != ES_TYPE_F32) {
                es_type_get(ft->vec_dot_type)->from_float(x + i * n_in, xr, n_in);
                xi = xr;
            }
            for (int64_t r = 0; r < n_out; r++) {
                float s1;
                ft->vec_dot(n_in, &s1, W + (size_t)r * row, xi);
                differ += memcmp(&s1, &y2[i * n_out + r], sizeof s1) != 0;
            }
        }
        CHECK(differ == 0,
              "%s %lldx%lld n_tok %lld: batch-invariant matmul differs from vec_dot on %lld "
              "outputs",
              t->name, (long long)n_out, (long long)n_in, (long long)n_tok, (long long)differ);
        free(y2), free(xr);
    }
    double max_rel = 0;
    int64_t where = -1;
    /* Q4_1/Q5_1 use the activations' stored s = fp16(d * sum q) for the min term:
     * the reference does the same (min of block b of row r: mins[r][b]) */
    const bool q8_1 = t->vec_dot_type == ES_TYPE_Q8_1;
    const int64_t nb = n_in / ES_QK;
    float *mins = malloc(sizeof(float) * (size_t)(n_out * nb + 1));
    float *xs = malloc(sizeof(float) * (size_t)(n_tok * nb + 1));
    if (q8_1) {
        for (int64_t r = 0; r < n_out; r++)
            for (int64_t b = 0; b < nb; b++) {
                const uint8_t *blk = W + (size_t)r * row + (size_t)b * t->type_size;
                uint16_t m;
                memcpy(&m, blk + 2, sizeof m); /* d, then m, in both Q4_1 and Q5_1 */
                mins[r * nb + b] = es_fp16_to_fp32(m);
            }
        for (int64_t i = 0; i < n_tok; i++) {
            v->from_float(x + i * n_in, xq, n_in);
            for (int64_t b = 0; b < nb; b++)
                xs[i * nb + b] = es_fp16_to_fp32(((const es_block_q8_1 *)xq)[b].s);
        }
    }
    for (int64_t i = 0; i < n_tok; i++) {
        for (int64_t r = 0; r < n_out; r++) {
            double s = 0, mag = 0;
            for (int64_t k = 0; k < n_in; k++) {
                double wk = wf[r * n_in + k] - (q8_1 ? mins[r * nb + k / ES_QK] : 0.0f);
                s += wk * xd[i * n_in + k];
                mag += fabs((double)wf[r * n_in + k] * xd[i * n_in + k]);
            }
            if (q8_1)
                for (int64_t b = 0; b < nb; b++)
                    s += (double)mins[r * nb + b] * xs[i * nb + b];
            double got = y[i * n_out + r];
            double rel = isnan(got) ? INFINITY : fabs(got - s) / (mag + 1e-30);
            if (rel > max_rel || isnan(rel)) max_rel = rel, where = i * n_out + r;
        }
    }
    CHECK(max_rel <= 1e-5, "%s %s %lldx%lld n_tok %lld threads %d: max rel diff %.3g at %lld",
          direct ? direct_name : "matmul", t->name, (long long)n_out, (long long)n_in,
          (long long)n_tok, es_threadpool_size(tp), max_rel, (long long)where);
    printf("  %-6s %-5s out %4lld in %4lld tok %3lld thr %d: max rel diff %.3g\n",
           direct ? direct_name : "matmul", t->name, (long long)n_out, (long long)n_in,
           (long long)n_tok, es_threadpool_size(tp), max_rel);
    es_free_aligned(wsp);
    free(wf), free(x), free(xd), free(y), free(W), free(xq), free(mins), free(xs);
}

static void test_matmul(void) {
    es_threadpool *pools[2] = {NULL, es_threadpool_create(2)};
    CHECK(pools[1] != NULL, "threadpool create: %s", es_last_error());
    static const int64_t shapes[][3] = {
        {1, 32, 1},    {3, 64, 2},     {17, 96, 5},    {64, 128, 1},  {96, 256, 64},
        {100, 384, 5}, {257, 160, 13}, {40, 1024, 64}, {1030, 64, 3}, {5, 37, 6},
        {7, 2053, 9},  {29, 1100, 33}, {12, 2053, 47},
    };
    for (int type = 0; type < ES_TYPE_COUNT; type++) {
        const es_type_traits *t = es_type_get(type);
        if (!t || !t->can_compute || !t->from_float) continue;
        for (size_t s = 0; s < ES_ARRAY_LEN(shapes); s++) {
            int64_t n_in = shapes[s][1];
            if (n_in % t->block_size != 0) n_in = (n_in / t->block_size + 1) * t->block_size;
            for (int p = 0; p < 2; p++)
                test_matmul_case(pools[p], type, shapes[s][0], n_in, shapes[s][2], NULL, NULL);
        }
    }
#ifndef ES_NO_SIMD
    /* both tiled f32 kernels directly, whichever es_matmul picks on this CPU */
    const int f32_types[] = {ES_TYPE_F32, ES_TYPE_F16, ES_TYPE_BF16};
    for (size_t i = 0; i < ES_ARRAY_LEN(f32_types) && es_kernels_have_avx2(); i++) {
        for (size_t s = 0; s < ES_ARRAY_LEN(shapes); s++) {
            if (shapes[s][2] < 2) continue;
            test_matmul_case(NULL, f32_types[i], shapes[s][0], shapes[s][1], shapes[s][2],
                             es_matmul_f32act_avx2, "avx2");
            if (es_avx512_supported())
                test_matmul_case(NULL, f32_types[i], shapes[s][0], shapes[s][1], shapes[s][2],
                                 es_matmul_f32act_avx512, "avx512");
        }
    }
#endif
    es_threadpool_free(pools[1]);
}

/* ---- small f32 products (attention) ---- */

typedef void (*gemm_fn)(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda,
                        const float *B, int64_t ldb, float *C, int64_t ldc, bool acc);

/* One es_gemm_* (or SIMD variant) call against double loops; nt: B is [N][K]. */
static double gemm_case(gemm_fn fn, bool nt, int64_t M, int64_t N, int64_t K, bool acc) {
    const int64_t lda = K + 3, ldb = (nt ? K : N) + 5, ldc = N + 2;
    const int64_t brows = nt ? N : K;
    float *A = malloc(sizeof(float) * (size_t)(M * lda + 1));
    float *B = malloc(sizeof(float) * (size_t)(brows * ldb + 1));
    float *C = malloc(sizeof(float) * (size_t)(M * ldc + 1));
    float *C0 = malloc(sizeof(float) * (size_t)(M * ldc + 1));
    fill_random(A, M * lda, 1.0f);
    fill_random(B, brows * ldb, 1.0f);
    fill_random(C0, M * ldc, 1.0f);
    memcpy(C, C0, sizeof(float) * (size_t)(M * ldc));
    fn(M, N, K, A, lda, B, ldb, C, ldc, acc);
    double worst = 0;
    for (int64_t m = 0; m < M; m++) {
        for (int64_t n = 0; n < ldc; n++) {
            if (n >= N) { /* padding between rows is untouched */
                if (C[m * ldc + n] != C0[m * ldc + n]) worst = INFINITY;
                continue;
            }
            double s = acc ? C0[m * ldc + n] : 0.0, mag = fabs(s);
            for (int64_t k = 0; k < K; k++) {
                const double p = (double)A[m * lda + k] * (nt ? B[n * ldb + k] : B[k * ldb + n]);
                s += p;
                mag += fabs(p);
            }
            const double rel = fabs(C[m * ldc + n] - s) / (mag + 1e-30);
            worst = isnan(C[m * ldc + n]) ? INFINITY : fmax(worst, rel);
        }
    }
    free(A), free(B), free(C), free(C0);
    return worst;
}

static void test_gemm(void) {
    static const int64_t sizes[][3] = {{1, 1, 1},     {1, 64, 64},   {7, 13, 5},
                                       {6, 64, 64},   {13, 100, 64}, {32, 77, 128},
                                       {5, 300, 200}, {3, 16, 0},    {64, 129, 65}};
    typedef struct {
        const char *name;
        gemm_fn fn;
        bool nt;
    } gemm_variant;
    gemm_variant fns[4] = {{"es_gemm_nn", es_gemm_nn, false}, {"es_gemm_nt", es_gemm_nt, true}};
    int n_fns = 2;
#ifndef ES_NO_SIMD
    if (es_kernels_have_avx2())
        fns[n_fns++] = (gemm_variant){"avx2_gemm_nn", es_gemm_nn_avx2, false};
    if (es_avx512_supported())
        fns[n_fns++] = (gemm_variant){"avx512_gemm_nn", es_gemm_nn_avx512, false};
#endif
    for (int f = 0; f < n_fns; f++) {
        double worst = 0;
        for (size_t i = 0; i < ES_ARRAY_LEN(sizes); i++) {
            for (int acc = 0; acc < 2; acc++) {
                double d =
                    gemm_case(fns[f].fn, fns[f].nt, sizes[i][0], sizes[i][1], sizes[i][2], acc);
                CHECK(d <= 1e-5, "%s M %lld N %lld K %lld acc %d: max rel diff %.3g", fns[f].name,
                      (long long)sizes[i][0], (long long)sizes[i][1], (long long)sizes[i][2], acc,
                      d);
                worst = fmax(worst, d);
            }
        }
        printf("%-15s max rel diff %.3g over %zu shapes\n", fns[f].name, worst,
               ES_ARRAY_LEN(sizes) * 2);
    }
}

/* ---- thread pool ---- */

typedef struct {
    atomic_int counts[8];
    atomic_int bad_nth;
    int expect_nth;
} pool_probe;

static void probe_task(void *arg, int ith, int nth) {
    pool_probe *p = arg;
    if (nth != p->expect_nth || ith < 0 || ith >= nth)
        atomic_fetch_add(&p->bad_nth, 1);
    else
        atomic_fetch_add(&p->counts[ith], 1);
}

static void test_threadpool(void) {
    for (int n = 1; n <= 4; n++) {
        es_threadpool *tp = es_threadpool_create(n);
        if (!CHECK(tp != NULL, "create(%d): %s", n, es_last_error())) continue;
        CHECK(es_threadpool_size(tp) == n, "size %d", n);
        const int runs = n <= 2 ? 3000 : 300; /* more threads than cores: slow hand-offs */
        pool_probe p = {.expect_nth = n};
        double t0 = es_time_s();
        for (int r = 0; r < runs; r++)
            es_threadpool_run(tp, probe_task, &p);
        double dt = es_time_s() - t0;
        bool ok = atomic_load(&p.bad_nth) == 0;
        for (int i = 0; i < n; i++)
            ok = ok && atomic_load(&p.counts[i]) == runs;
        CHECK(ok, "pool of %d: every ith exactly once per run", n);
        /* a pause long enough for the workers to fall asleep, then more runs */
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
        for (int r = 0; r < 10; r++)
            es_threadpool_run(tp, probe_task, &p);
        ok = true;
        for (int i = 0; i < n; i++)
            ok = ok && atomic_load(&p.counts[i]) == runs + 10;
        CHECK(ok, "pool of %d: runs after sleeping", n);
        printf("threadpool %d threads: %.2f us per run\n", n, dt / runs * 1e6);
        es_threadpool_free(tp);
    }
    pool_probe p = {.expect_nth = 1};
    es_threadpool_run(NULL, probe_task, &p);
    CHECK(atomic_load(&p.counts[0]) == 1, "NULL pool runs on the caller");
    CHECK(es_threadpool_create(0) == NULL, "create(0) fails");
    es_threadpool_free(NULL);
}

/* The activation quantizers (Q8_0, Q8_1, Q8_K) on the values random inputs miss: NaN (skipped by
 * the maximum, quantized to the lowest level), ±Inf and all-zero blocks (zero), two elements of
 * the largest magnitude with opposite signs (the first sets the scale's sign), exact ties of
 * rounding, -0 and denormals: the fast bytes are the reference's. */
static void test_activation_special(void) {
    const int types[] = {ES_TYPE_Q8_0, ES_TYPE_Q8_1, ES_TYPE_Q8_K};
    const int64_t n = 512;
    float x[512];
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const es_type_traits *ft = es_type_get(types[ti]), *rt = es_type_get_ref(types[ti]);
        const size_t bytes = es_row_size(types[ti], n);
        uint8_t *a = malloc(bytes), *b = malloc(bytes);
        for (int c = 0; c < 7; c++) {
            fill_random(x, n, 2.0f);
            switch (c) {
            case 0: x[3] = NAN, x[200] = NAN, x[300] = -NAN; break;
            case 1: x[5] = INFINITY, x[260] = -INFINITY; break;
            case 2: memset(x, 0, sizeof x), x[7] = -0.0f, x[400] = 1e-40f; break;
            case 3: x[9] = 1e3f, x[10] = -1e3f, x[17] = -1e3f, x[270] = -1e3f, x[271] = 1e3f; break;
            case 4: /* ties of x·127/amax: amax 127, halves in between */
                for (int64_t j = 0; j < n; j++)
                    x[j] = (float)(j % 64) - 31.5f;
                x[0] = 127.0f, x[256] = -127.0f;
                break;
            case 5:
                for (int64_t j = 0; j < n; j++)
                    x[j] = j % 3 ? 1e-39f * (float)(j % 7) : -0.0f;
                break;
            default: x[1] = NAN, x[2] = INFINITY; break;
            }
            rt->from_float(x, a, n);
            ft->from_float(x, b, n);
            CHECK(memcmp(a, b, bytes) == 0,
                  "%s special case %d: fast quantization differs from "
                  "the reference",
                  ft->name, c);
        }
        free(a);
        free(b);
    }
}

/* es_matmul_groups (the experts of a MoE layer, each on its own rows; gate and up share their
 * rows) gives every group's y bit for bit as one es_matmul_bi per group, in both modes, for
 * groups of 1, 2, 5 and 40 tokens, with gate and up of one type and of two (the next in the
 * list), and es_matmul_groups_wsize covers its scratch. */
static void test_matmul_groups(es_threadpool *tp) {
    const int types[] = {ES_TYPE_F16, ES_TYPE_Q8_0, ES_TYPE_Q4_0, ES_TYPE_Q4_K, ES_TYPE_Q6_K};
    const int n_types = (int)(sizeof types / sizeof types[0]);
    const int64_t n_in = 512, n_out = 48, toks[] = {1, 2, 5, 40};
    enum { N_EXP = 4, N_GROUPS = 2 * N_EXP };
    int64_t n_rows = 0;
    for (int e = 0; e < N_EXP; e++)
        n_rows += toks[e];
    float *x = malloc(sizeof(float) * (size_t)(n_rows * n_in));
    float *wf = malloc(sizeof(float) * (size_t)(n_out * n_in));
    float *y = malloc(sizeof(float) * (size_t)(N_GROUPS * n_rows * n_out));
    float *y1 = malloc(sizeof(float) * (size_t)(N_GROUPS * n_rows * n_out));
    uint8_t *W[2];
    fill_random(x, n_rows * n_in, 1.0f);
    for (int ti = 0; ti < n_types; ti++) {
        for (int mixed = 0; mixed < 2; mixed++) {
            /* gate: types[ti]; up: the same, or the next type */
            const int ty[2] = {types[ti], types[(ti + mixed) % n_types]};
            for (int h = 0; h < 2; h++) {
                const size_t row = es_row_size(ty[h], n_in);
                W[h] = malloc(row * (size_t)(n_out * N_EXP));
                for (int e = 0; e < N_EXP; e++) {
                    fill_random(wf, n_out * n_in, 0.1f + 0.05f * (float)(2 * e + h));
                    for (int64_t r = 0; r < n_out; r++)
                        es_type_get(ty[h])->from_float(wf + r * n_in,
                                                       W[h] + row * (size_t)(e * n_out + r), n_in);
                }
            }
            for (int bi = 0; bi < 2; bi++) {
                es_matmul_group groups[N_GROUPS];
                int64_t r0 = 0;
                for (int e = 0; e < N_EXP; e++) {
                    for (int h = 0; h < 2; h++) { /* gate and up: the same rows */
                        const int g = 2 * e + h;
                        groups[g] = (es_matmul_group){
                            ty[h],   W[h] + es_row_size(ty[h], n_in) * (size_t)(e * n_out),
                            n_out,   x + r0 * n_in,
                            toks[e], y + (size_t)(g * n_rows + r0) * n_out};
                    }
                    r0 += toks[e];
                }
                const size_t ws = ES_MAX(es_matmul_groups_wsize(ty[0], n_in, n_rows, N_GROUPS),
                                         es_matmul_groups_wsize(ty[1], n_in, n_rows, N_GROUPS));
                void *wsp = es_alloc_aligned(ws);
                for (int64_t i = 0; i < N_GROUPS * n_rows * n_out; i++)
                    y[i] = y1[i] = NAN;
                es_matmul_groups(tp, groups, N_GROUPS, n_in, wsp, false, bi);
                void *wsp1 = es_alloc_aligned(
                    ES_MAX(es_matmul_wsize(ty[0], n_in, 40), es_matmul_wsize(ty[1], n_in, 40)));
                int64_t differ = 0;
                for (int g = 0; g < N_GROUPS; g++) {
                    float *yg = y1 + (groups[g].y - y);
                    es_matmul_bi(tp, groups[g].type, groups[g].W, n_out, n_in, groups[g].x,
                                 groups[g].n_tok, yg, wsp1, false, bi);
                    for (int64_t i = 0; i < groups[g].n_tok * n_out; i++)
                        differ += memcmp(&yg[i], &groups[g].y[i], sizeof(float)) != 0;
                }
                CHECK(differ == 0,
                      "groups gate %s, up %s (batch-invariant %d): %lld outputs differ from one "
                      "call per group",
                      es_type_name(ty[0]), es_type_name(ty[1]), bi, (long long)differ);
                es_free_aligned(wsp);
                es_free_aligned(wsp1);
            }
            free(W[0]), free(W[1]);
        }
    }
    free(x), free(wf), free(y), free(y1);
    printf("matmul groups: %d types, gate and up of one type and of two, 2 modes, groups of "
           "1/2/5/40 tokens = one call per group\n",
           n_types);
}

/* Q4_K matrices interleaved at load (ES_TYPE_Q4_K_X8): every product, any batch, fast or
 * llama.cpp numerics, batch-invariant or not, 1 or 2 threads, gives vec_dot_llamacpp's bits row
 * by row on the original rows; experts (2 matrices, stride apart) through es_matmul_groups too;
 * rows that are not whole groups of 8 are refused. Without AVX2 nothing is interleaved. */
static void test_q4_K_x8(es_threadpool *tp2) {
    const es_type_traits *t = es_type_get(ES_TYPE_Q4_K);
    const es_type_traits *v = es_type_get(t->vec_dot_type);
    if (!es_q4_K_x8_enabled()) {
        CHECK(es_q4_K_x8_interleave(NULL, 8, 256, 1, 0) == NULL, "x8 interleave without AVX2");
        CHECK(!es_kernels_have_avx2() || es_env_switch("ES_NO_REPACK"),
              "x8: AVX2 but interleaving off");
        printf("Q4_K x8: off on this path\n");
        return;
    }
    static const int64_t shapes[][2] = {{8, 256}, {16, 512}, {24, 1280}, {40, 2304}, {136, 768}};
    static const int64_t toks[] = {1, 2, 3, 5, 8, 9, 17, 64, 70};
    es_threadpool *pools[2] = {NULL, tp2};
    int64_t checked = 0;
    for (size_t si = 0; si < ES_ARRAY_LEN(shapes); si++) {
        const int64_t n_out = shapes[si][0], n_in = shapes[si][1];
        const size_t row = es_row_size(ES_TYPE_Q4_K, n_in);
        float *wf = malloc(sizeof(float) * (size_t)(2 * n_out * n_in));
        uint8_t *W = malloc(row * (size_t)(2 * n_out));
        fill_random(wf, 2 * n_out * n_in, 0.2f);
        for (int64_t r = 0; r < 2 * n_out; r++)
            t->from_float(wf + r * n_in, W + (size_t)r * row, n_in);
        /* two experts, one matrix apart */
        uint8_t *X = es_q4_K_x8_interleave(W, n_out, n_in, 2, row * (size_t)n_out);
        CHECK(X != NULL, "x8 interleave %lldx%lld", (long long)n_out, (long long)n_in);
        CHECK(es_q4_K_x8_interleave(W, n_out - 3, n_in, 1, 0) == NULL,
              "x8 interleave of %lld rows (not whole groups) refused", (long long)n_out - 3);
        if (!X) {
            free(wf), free(W);
            continue;
        }
        const size_t xs = es_q4_K_x8_size(n_out, n_in);
        for (size_t ti = 0; ti < ES_ARRAY_LEN(toks); ti++) {
            const int64_t n_tok = toks[ti];
            float *x = malloc(sizeof(float) * (size_t)(n_tok * n_in));
            float *y = malloc(sizeof(float) * (size_t)(n_tok * n_out));
            float *ref = malloc(sizeof(float) * (size_t)(2 * n_tok * n_out));
            uint8_t *xq = malloc(es_row_size(t->vec_dot_type, n_in));
            fill_random(x, n_tok * n_in, 1.0f);
            for (int64_t i = 0; i < n_tok; i++) {
                v->from_float(x + i * n_in, xq, n_in);
                for (int e = 0; e < 2; e++)
                    for (int64_t r = 0; r < n_out; r++)
                        t->vec_dot_llamacpp(n_in, &ref[(e * n_tok + i) * n_out + r],
                                            W + (size_t)(e * n_out + r) * row, xq);
            }
            void *wsp =
                es_alloc_aligned(es_matmul_groups_wsize(ES_TYPE_Q4_K_X8, n_in, 2 * n_tok, 2));
            for (int p = 0; p < 2; p++) {
                for (int mode = 0; mode < 4; mode++) {
                    for (int64_t i = 0; i < n_tok * n_out; i++)
                        y[i] = NAN;
                    es_matmul_bi(pools[p], ES_TYPE_Q4_K_X8, X, n_out, n_in, x, n_tok, y, wsp,
                                 mode & 1, mode >> 1);
                    int64_t differ = 0;
                    for (int64_t i = 0; i < n_tok * n_out; i++)
                        differ += memcmp(&y[i], &ref[i], sizeof(float)) != 0;
                    CHECK(
                        differ == 0,
                        "x8 %lldx%lld, %lld tokens, %d threads, mode %d: %lld outputs differ from "
                        "vec_dot_llamacpp",
                        (long long)n_out, (long long)n_in, (long long)n_tok, p + 1, mode,
                        (long long)differ);
                    checked += n_tok * n_out;
                }
                /* the second expert through groups */
                float *yg = malloc(sizeof(float) * (size_t)(n_tok * n_out));
                const es_matmul_group g = {ES_TYPE_Q4_K_X8, X + xs, n_out, x, n_tok, yg};
                es_matmul_groups(pools[p], &g, 1, n_in, wsp, false, false);
                int64_t differ = 0;
                for (int64_t i = 0; i < n_tok * n_out; i++)
                    differ += memcmp(&yg[i], &ref[n_tok * n_out + i], sizeof(float)) != 0;
                CHECK(differ == 0, "x8 groups %lldx%lld, %lld tokens: %lld outputs differ",
                      (long long)n_out, (long long)n_in, (long long)n_tok, (long long)differ);
                free(yg);
            }
            es_free_aligned(wsp);
            free(x), free(y), free(ref), free(xq);
        }
        free(X), free(wf), free(W);
    }
    printf("Q4_K x8: %lld outputs = vec_dot_llamacpp bit for bit (5 shapes, 1..70 tokens, 4 "
           "modes, 1 and 2 threads, groups)\n",
           (long long)checked);
}

int main(void) {
    test_table();
    test_half();
    for (int type = 0; type < ES_TYPE_COUNT; type++) {
        const es_type_traits *t = es_type_get(type);
        if (t && t->can_compute && t->from_float && es_type_get(t->vec_dot_type)->from_float)
            test_type(type);
    }
    test_activation_special();
    test_matmul();
    {
        es_threadpool *tp = es_threadpool_create(2);
        test_matmul_groups(tp);
        test_q4_K_x8(tp);
        es_threadpool_free(tp);
    }
    test_gemm();
    test_threadpool();
    return es_test_finish();
}
