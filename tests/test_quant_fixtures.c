/*
 * test_quant_fixtures.c — quantized models end to end: ../shared/fixtures/quant/
 * {llama,qwen2}.{Q8_0,Q4_0,Q4_K_M,Q5_K_M,Q6_K}.gguf through es_decode, logits compared
 * with llama.cpp's (NAME.TYPE.llamacpp-ref.gguf). A type that cannot be computed fails
 * loudly (the load error names the tensor and type).
 *
 * Tolerances. These random-weight models amplify tiny activation differences through
 * the 8-bit activation quantization of every quantized matmul: rounding only the
 * attention inputs/outputs to f16 (what llama.cpp does) moves OUR OWN logits by
 * max 0.18-0.36, mean 0.030-0.046, argmax 36-40/40 on these ten files (measured with
 * an f16-attention build of forward.c). Against llama.cpp we measure the same sizes
 * (max 0.19-0.35, mean 0.032-0.050, argmax 36-39/40), so the 0.15 once planned is
 * below this floor; a wrong kernel moves logits by 1 or more (quantization itself
 * moves them 0.6-4.4 from the float64 reference). Limits: max 0.5, mean 0.07,
 * argmax on at least n-5 of the n tokens (ES_KV_F32).
 * Each file also runs with ES_KV_F16, which computes attention as llama.cpp's CPU flash
 * attention does (f16 K/V/Q, value sums kept in f16). Together with llama.cpp's x86
 * activation quantizer (127/amax, ties to even), its RoPE angles and RMSNorm roundings and
 * the summation order of its AVX2 dot kernels (kernels.h), the logits are then llama.cpp's
 * (to the last bit or two) on every file except, with ES_NUMERICS_FAST, Q8_0 on CPUs with
 * AVX-VNNI, whose fast prompt tile sums in another order (measured: llama/qwen2 max 0.12 /
 * 0.09), and Q4_0 on CPUs without it (Zen 3, or ES_NO_AVX512=1 ES_NO_VNNI=1), whose prompt
 * takes the float-lane AVX2 vec_dot (measured: 0.098 / 0.086). Limits: max 0.15 (the bound
 * issue 3 asks for), mean 0.02, argmax on at least n-1 tokens.
 * And with ES_KV_F16 + ES_NUMERICS_LLAMACPP (that tile off, Q4_0/Q5_0 rows in their fma-chain
 * order, the gated MLP's SiLU as llama.cpp's AVX2 swiglu computes it, ggml_v_expf step for
 * step): all 10 files must give llama.cpp's logits within 1e-5 (measured: max 0 on every
 * file) — the same on every kernel path (no environment, ES_NO_AVX512=1,
 * ES_NO_AVX512=1 ES_NO_VNNI=1 as on a Zen 3, ES_FORCE_SCALAR=1).
 * Also: the demo model (f16 and q8_0) runs and its two files agree on the argmax.
 */
#include "emosteer.h"
#include "gguf.h"
#include "testutil.h"
#include "types.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TOL_MAX 0.5
#define TOL_MEAN 0.07
#define TOL_MAX_KV_F16 0.15 /* with llama.cpp's attention arithmetic */
#define TOL_MAX_EXACT 0.1   /* ... and its summation order everywhere */
#define MIN_EXACT_FILES 10
#define TOL_SAME 1e-5 /* "the same logits": at most a last-bit rounding apart */
#define TOL_MEAN_KV_F16 0.02
#define MAX_ARGMAX_MISSES 5 /* argmax may differ on this many tokens */
#define MAX_ARGMAX_MISSES_KV_F16 1

static int
    n_exact; /* files with llama.cpp's logits (within TOL_SAME) in the llamacpp-numerics runs */

static void test_quant(const char *arch, const char *qtype, int kv_type, int numerics) {
    char dir[1024], mpath[1200], rpath[1200];
    snprintf(dir, sizeof dir, "%s", es_test_shared_path("fixtures/quant"));
    snprintf(mpath, sizeof mpath, "%s/%s.%s.gguf", dir, arch, qtype);
    snprintf(rpath, sizeof rpath, "%s/%s.%s.llamacpp-ref.gguf", dir, arch, qtype);
    es_model *m = NULL;
    es_gguf *ref = NULL;
    es_context *ctx = NULL;
    float *got = NULL;
    int8_t *want = NULL;
    if (!CHECK(es_model_load(mpath, NULL, &m) == ES_OK, "%s.%s: load: %s", arch, qtype,
               es_last_error())) {
        printf("%-6s %-7s FAIL (load: %s)\n", arch, qtype, es_last_error());
        return;
    }
    if (!CHECK(es_gguf_open(rpath, &ref) == ES_OK, "%s.%s: ref: %s", arch, qtype, es_last_error()))
        goto done;
    const es_gguf_tensor *tt = es_gguf_find_tensor(ref, "tokens"),
                         *tl = es_gguf_find_tensor(ref, "logits");
    if (!CHECK(tt && tl && tt->type == ES_TYPE_I32 && tl->type == ES_TYPE_F32, "%s.%s: bad ref",
               arch, qtype))
        goto done;
    es_model_info info;
    es_model_get_info(m, &info);
    const int n = (int)tt->ne[0], nv = info.n_vocab;
    if (!CHECK(tl->ne[0] == nv && tl->ne[1] == n, "%s.%s: ref logits shape", arch, qtype))
        goto done;
    es_context_params cp = es_context_default_params();
    cp.n_ctx = 64;
    cp.n_batch = 64;
    cp.n_threads = 2;
    cp.kv_type = kv_type;
    cp.numerics = numerics;
    if (!CHECK(es_context_create(m, &cp, &ctx) == ES_OK, "%s", es_last_error())) goto done;
    want = malloc((size_t)n);
    got = malloc((size_t)n * nv * sizeof(float));
    for (int i = 0; i < n; i++)
        want[i] = 1;
    es_batch b = {n, tt->data, NULL, NULL, want};
    if (!CHECK(es_decode(ctx, &b) == ES_OK, "%s.%s: decode: %s", arch, qtype, es_last_error()))
        goto done;
    for (int i = 0; i < n; i++)
        memcpy(got + (size_t)i * nv, es_get_logits(ctx, i), (size_t)nv * sizeof(float));
    size_t where = 0;
    const float *rl = tl->data;
    double d = es_test_maxdiff(got, rl, (size_t)n * nv, &where);
    double sum = 0;
    int agree = 0;
    for (int i = 0; i < n; i++) {
        int a = 0, b = 0;
        for (int v = 0; v < nv; v++) {
            sum += fabs(got[(size_t)i * nv + v] - rl[(size_t)i * nv + v]);
            if (got[(size_t)i * nv + v] > got[(size_t)i * nv + a]) a = v;
            if (rl[(size_t)i * nv + v] > rl[(size_t)i * nv + b]) b = v;
        }
        agree += a == b;
    }
    const double mean = sum / ((double)n * nv);
    const bool f16 = kv_type == ES_KV_F16, exact = numerics == ES_NUMERICS_LLAMACPP;
    const double tol_mean = f16 ? TOL_MEAN_KV_F16 : TOL_MEAN;
    const double tol_max = f16 ? (exact ? TOL_MAX_EXACT : TOL_MAX_KV_F16) : TOL_MAX;
    if (exact && d <= TOL_SAME) n_exact++;
    const int misses = f16 ? MAX_ARGMAX_MISSES_KV_F16 : MAX_ARGMAX_MISSES;
    CHECK(d <= tol_max, "%s.%s: logits max diff %.4f at token %zu vocab %zu > %g", arch, qtype, d,
          where / nv, where % nv, tol_max);
    CHECK(mean <= tol_mean, "%s.%s: logits mean abs diff %.4f > %g", arch, qtype, mean, tol_mean);
    CHECK(agree >= n - misses, "%s.%s: argmax agrees on only %d of %d tokens", arch, qtype, agree,
          n);
    printf("%-6s %-7s kv %s %-8s logits vs llama.cpp: max %.3g (token %zu, vocab %zu), mean %.4f, "
           "argmax %d/%d %s\n",
           arch, qtype, kv_type == ES_KV_F16 ? "f16" : "f32", es_numerics_name(numerics), d,
           where / nv, where % nv, mean, agree, n,
           d <= tol_max && mean <= tol_mean && agree >= n - misses ? "ok" : "FAIL");
done:
    free(got);
    free(want);
    es_context_free(ctx);
    es_gguf_close(ref);
    es_model_free(m);
}

/* The demo model runs in f16 and q8_0; both pick the same next tokens for a prompt. */
static void test_demo(void) {
    static const char *const files[2] = {"models/demo-16m.f16.gguf", "models/demo-16m.q8_0.gguf"};
    int32_t prompt[16] = {1};
    for (int i = 1; i < 16; i++)
        prompt[i] = 300 + 37 * i;
    int top[2][16];
    for (int f = 0; f < 2; f++) {
        es_model *m = NULL;
        es_context *ctx = NULL;
        char path[1024];
        snprintf(path, sizeof path, "%s", es_test_shared_path(files[f]));
        if (!CHECK(es_model_load(path, NULL, &m) == ES_OK, "%s: %s", files[f], es_last_error()))
            return;
        es_context_params cp = es_context_default_params();
        cp.n_ctx = 64;
        cp.n_threads = 2;
        int8_t want[16];
        memset(want, 1, sizeof want);
        es_batch b = {16, prompt, NULL, NULL, want};
        if (CHECK(es_context_create(m, &cp, &ctx) == ES_OK && es_decode(ctx, &b) == ES_OK, "%s: %s",
                  files[f], es_last_error())) {
            es_model_info info;
            es_model_get_info(m, &info);
            for (int i = 0; i < 16; i++) {
                const float *l = es_get_logits(ctx, i);
                int best = 0;
                for (int v = 1; v < info.n_vocab; v++)
                    if (l[v] > l[best]) best = v;
                top[f][i] = best;
            }
        }
        es_context_free(ctx);
        es_model_free(m);
    }
    int same = 0;
    for (int i = 0; i < 16; i++)
        same += top[0][i] == top[1][i];
    CHECK(same >= 14, "demo f16 vs q8_0: only %d/16 argmax agree", same);
    printf("demo-16m f16 vs q8_0: %d/16 argmax agree\n", same);
}

int main(void) {
    es_numerics nm = ES_NUMERICS_FAST;
    CHECK(es_numerics_parse("llamacpp", &nm) == ES_OK && nm == ES_NUMERICS_LLAMACPP,
          "parse llamacpp");
    CHECK(es_numerics_parse("exact", &nm) == ES_ERR_INVALID_ARG &&
              strstr(es_last_error(), "'exact'"),
          "a bad numerics name is refused by name: %s", es_last_error());
    if (!es_test_shared()) {
        printf("no shared folder: skipped\n");
        return ES_TEST_SKIP;
    }
    static const char *const archs[] = {"llama", "qwen2"};
    static const char *const types[] = {"Q8_0", "Q4_0", "Q4_K_M", "Q5_K_M", "Q6_K"};
    for (size_t a = 0; a < 2; a++)
        for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
            test_quant(archs[a], types[t], ES_KV_F32, ES_NUMERICS_FAST);
            test_quant(archs[a], types[t], ES_KV_F16, ES_NUMERICS_FAST);
            test_quant(archs[a], types[t], ES_KV_F16, ES_NUMERICS_LLAMACPP);
        }
    printf("llamacpp numerics + kv f16: %d of 10 files give llama.cpp's logits (max diff <= %g)\n",
           n_exact, TOL_SAME);
    CHECK(n_exact >= MIN_EXACT_FILES, "only %d of 10 files give llama.cpp's logits (want %d)",
          n_exact, MIN_EXACT_FILES);
    test_demo();
    return es_test_finish();
}
