/*
 * test_forward.c — the forward pass against float64 Hugging Face references
 * (../shared/fixtures/NAME.{f16,ref}.gguf) for every architecture:
 *   1. logits and every block_out.i / attn_out.i / mlp_out.i (read with a user hook)
 *      within 1e-4; greedy generation through the KV cache equals gen_plain;
 *   2. steering through a user hook: logits.steer_block / steer_multi /
 *      steer_attn_last within 1e-4, gen_steer exact;
 *   3. batch consistency: one batch vs one token at a time, two interleaved
 *      sequences vs each alone, rollback;
 *   4. bad input: token / sequence / position / batch size / full context, and
 *      malformed models (unknown arch, missing tensor, wrong shape, bad type).
 * Runs with 2 threads and with 1 thread. Prints the max difference and where.
 */
#include "emosteer.h"
#include "gguf.h"
#include "testutil.h"
#include "types.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TOL 1e-4
/* Hook activations of the 32- and 40-layer fixtures (baichuan, baichuan13b): f32 rounding
 * accumulates along the residual stream, about 1e-5 per block; llama.cpp on F32 weights
 * lands at 2.5e-4 / 1.8e-4 there (fixtures README). Their logits keep TOL. */
#define TOL_DEEP 1e-3
#define DEEP_LAYERS 8
#define N_GEN 16
#define N_PROMPT 8

static const char *const fixtures[] = {"llama",    "llama31", "mistral",  "qwen2",       "qwen3",
                                       "gemma",    "gemma2",  "gemma3",   "phi3",        "qwen3moe",
                                       "minicpm3", "minicpm", "baichuan", "baichuan13b", "qwen"};

/* ---- hook: capture activations and/or steer ---------------------------------------- */

typedef enum { STEER_NONE, STEER_BLOCK, STEER_MULTI, STEER_ATTN_LAST } steer_mode;

typedef struct hook_state {
    int n_layer, n_embd, n_cap_tok;
    float *act[ES_HOOK_COUNT]; /* [n_layer][n_cap_tok][n_embd] captured (NULL: no capture) */
    steer_mode mode;
    const float *v1, *v2; /* [n_embd] */
    float a1;
} hook_state;

static void add_scaled(float *x, const float *v, float s, int n) {
    for (int i = 0; i < n; i++)
        x[i] += s * v[i];
}

static void test_hook(void *user, es_hook_point hp, int layer, float *x, int n_tokens, int n_embd,
                      const es_batch *batch) {
    hook_state *h = user;
    (void)batch;
    if (h->mode == STEER_BLOCK && hp == ES_HOOK_BLOCK_OUT && layer == 1)
        for (int t = 0; t < n_tokens; t++)
            add_scaled(x + (size_t)t * n_embd, h->v1, h->a1, n_embd);
    if (h->mode == STEER_MULTI && hp == ES_HOOK_BLOCK_OUT && layer == 0)
        for (int t = 0; t < n_tokens; t++)
            add_scaled(x + (size_t)t * n_embd, h->v1, 0.5f * h->a1, n_embd);
    if (h->mode == STEER_MULTI && hp == ES_HOOK_BLOCK_OUT && layer == 2)
        for (int t = 0; t < n_tokens; t++)
            add_scaled(x + (size_t)t * n_embd, h->v2, -0.75f * h->a1, n_embd);
    if (h->mode == STEER_ATTN_LAST && hp == ES_HOOK_ATTN_OUT)
        add_scaled(x + (size_t)(n_tokens - 1) * n_embd, h->v1, 0.5f * h->a1, n_embd);
    if (h->act[hp] && n_tokens == h->n_cap_tok && layer < h->n_layer)
        memcpy(h->act[hp] + (size_t)layer * n_tokens * n_embd, x,
               (size_t)n_tokens * n_embd * sizeof(float));
}

/* ---- helpers -------------------------------------------------------------------------- */

static const float *ref_f32(const es_gguf *g, const char *name, size_t n) {
    const es_gguf_tensor *t = es_gguf_find_tensor(g, name);
    if (!CHECK(t != NULL, "reference tensor %s missing", name)) return NULL;
    if (!CHECK(t->type == ES_TYPE_F32 && t->nbytes == n * sizeof(float),
               "reference %s: type %d, %zu bytes", name, t->type, t->nbytes))
        return NULL;
    return t->data;
}

static const int32_t *ref_i32(const es_gguf *g, const char *name, size_t n) {
    const es_gguf_tensor *t = es_gguf_find_tensor(g, name);
    if (!CHECK(t != NULL && t->type == ES_TYPE_I32 && t->nbytes == n * 4,
               "reference %s missing or wrong", name))
        return NULL;
    return t->data;
}

/* Decodes tokens[0..n) as one batch with logits for every token into logits[n][n_vocab]. */
static es_status decode_all(es_context *ctx, const int32_t *tokens, int n, float *logits,
                            int n_vocab) {
    int8_t *want = malloc((size_t)n);
    for (int i = 0; i < n; i++)
        want[i] = 1;
    es_batch b = {n, tokens, NULL, NULL, want};
    es_kv_clear(ctx, -1);
    es_status st = es_decode(ctx, &b);
    if (st == ES_OK)
        for (int i = 0; i < n; i++)
            memcpy(logits + (size_t)i * n_vocab, es_get_logits(ctx, i), (size_t)n_vocab * 4);
    free(want);
    return st;
}

static int argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

/* Greedy: prompt as one batch, then N_GEN tokens one at a time through the cache. */
static bool generate(es_context *ctx, const int32_t *prompt, int n_prompt, int n_vocab,
                     int32_t *out) {
    es_kv_clear(ctx, -1);
    es_batch b = {n_prompt, prompt, NULL, NULL, NULL};
    if (es_decode(ctx, &b) != ES_OK) return false;
    int32_t tok = argmax(es_get_logits(ctx, n_prompt - 1), n_vocab);
    for (int i = 0; i < N_GEN; i++) {
        out[i] = tok;
        es_batch one = {1, &tok, NULL, NULL, NULL};
        if (es_decode(ctx, &one) != ES_OK) return false;
        tok = argmax(es_get_logits(ctx, 0), n_vocab);
    }
    return true;
}

/* Compares [n_tok][width] and prints the max difference with (token, dim). */
static double compare(const char *fx, const char *what, const float *got, const float *want,
                      int n_tok, int width, double tol) {
    size_t where = 0;
    double d = es_test_maxdiff(got, want, (size_t)n_tok * width, &where);
    CHECK(d <= tol, "%s %s: max diff %.3g at token %zu dim %zu (got %g want %g) > %g", fx, what, d,
          where / width, where % width, got[where], want[where], tol);
    return d;
}

/* One row of the summary table. */
typedef struct fam_max {
    double d;
    char where[64];
} fam_max;

static void fam_update(fam_max *f, double d, const char *name) {
    if (d > f->d || f->where[0] == '\0') {
        f->d = d;
        snprintf(f->where, sizeof f->where, "%s", name);
    }
}

/* ---- 1 + 2: one fixture against its reference ----------------------------------------- */

static void test_fixture(const char *fx, int n_threads) {
    char mpath[1024], rpath[1024];
    snprintf(mpath, sizeof mpath, "%s", es_test_shared_path("fixtures"));
    snprintf(rpath, sizeof rpath, "%s/%s.ref.gguf", mpath, fx);
    snprintf(mpath + strlen(mpath), sizeof mpath - strlen(mpath), "/%s.f16.gguf", fx);

    es_model *m = NULL;
    es_status st = es_model_load(mpath, NULL, &m);
    if (!CHECK(st == ES_OK, "%s: load: %s", fx, es_last_error())) return;
    es_gguf *ref = NULL;
    if (!CHECK(es_gguf_open(rpath, &ref) == ES_OK, "%s: ref: %s", fx, es_last_error())) {
        es_model_free(m);
        return;
    }
    es_model_info info;
    es_model_get_info(m, &info);
    const int nv = info.n_vocab, ne = info.n_embd, nl = info.n_layer;
    const es_gguf_tensor *tt = es_gguf_find_tensor(ref, "tokens");
    const int n_tok = tt ? (int)tt->ne[0] : 0;
    const int32_t *tokens = ref_i32(ref, "tokens", (size_t)n_tok);
    float a1 = 0;
    es_gguf_get_f32(ref, "reference.a1", &a1);
    const float *v1 = ref_f32(ref, "v1", (size_t)ne), *v2 = ref_f32(ref, "v2", (size_t)ne);

    es_context_params cp = es_context_default_params();
    cp.n_ctx = 64;
    cp.n_batch = 64;
    cp.n_threads = n_threads;
    es_context *ctx = NULL;
    st = es_context_create(m, &cp, &ctx);
    if (!CHECK(st == ES_OK, "%s: context: %s", fx, es_last_error()) || !tokens || !v1 || !v2)
        goto done;

    hook_state hs = {.n_layer = nl, .n_embd = ne, .n_cap_tok = n_tok, .v1 = v1, .v2 = v2, .a1 = a1};
    for (int h = 0; h < ES_HOOK_COUNT; h++)
        hs.act[h] = calloc((size_t)nl * n_tok * ne, sizeof(float));
    es_set_hook(ctx, test_hook, &hs);
    float *logits = calloc((size_t)n_tok * nv, sizeof(float));

    /* 1. plain pass: logits and every hook activation */
    fam_max fm[4] = {{0}};
    st = decode_all(ctx, tokens, n_tok, logits, nv);
    if (CHECK(st == ES_OK, "%s: decode: %s", fx, es_last_error())) {
        const float *want = ref_f32(ref, "logits", (size_t)n_tok * nv);
        if (want) fam_update(&fm[0], compare(fx, "logits", logits, want, n_tok, nv, TOL), "logits");
        static const char *const fam[ES_HOOK_COUNT] = {"attn_out", "mlp_out", "block_out"};
        const double tol_act = nl > DEEP_LAYERS ? TOL_DEEP : TOL;
        for (int h = 0; h < ES_HOOK_COUNT; h++)
            for (int l = 0; l < nl; l++) {
                char name[64];
                snprintf(name, sizeof name, "%s.%d", fam[h], l);
                const float *w = ref_f32(ref, name, (size_t)n_tok * ne);
                if (w)
                    fam_update(&fm[1 + h],
                               compare(fx, name, hs.act[h] + (size_t)l * n_tok * ne, w, n_tok, ne,
                                       tol_act),
                               name);
            }
    }
    for (int h = 0; h < ES_HOOK_COUNT; h++) {
        free(hs.act[h]);
        hs.act[h] = NULL;
    }

    /* 2. steering through the hook */
    static const struct {
        steer_mode mode;
        const char *name;
    } cases[] = {{STEER_BLOCK, "logits.steer_block"},
                 {STEER_MULTI, "logits.steer_multi"},
                 {STEER_ATTN_LAST, "logits.steer_attn_last"}};
    double dsteer = 0;
    const char *wsteer = "";
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        hs.mode = cases[c].mode;
        st = decode_all(ctx, tokens, n_tok, logits, nv);
        const float *want = ref_f32(ref, cases[c].name, (size_t)n_tok * nv);
        if (CHECK(st == ES_OK, "%s: decode: %s", fx, es_last_error()) && want) {
            double d = compare(fx, cases[c].name, logits, want, n_tok, nv, TOL);
            if (d >= dsteer) {
                dsteer = d;
                wsteer = cases[c].name;
            }
        }
    }

    /* greedy generation, plain and steered */
    int32_t gen[N_GEN];
    const int32_t *gp = ref_i32(ref, "gen_plain", N_GEN), *gs = ref_i32(ref, "gen_steer", N_GEN);
    hs.mode = STEER_NONE;
    bool ok_plain = generate(ctx, tokens, N_PROMPT, nv, gen) && gp && !memcmp(gen, gp, sizeof gen);
    CHECK(ok_plain, "%s: greedy generation differs from gen_plain", fx);
    hs.mode = STEER_BLOCK;
    bool ok_steer = generate(ctx, tokens, N_PROMPT, nv, gen) && gs && !memcmp(gen, gs, sizeof gen);
    CHECK(ok_steer, "%s: steered greedy generation differs from gen_steer", fx);
    hs.mode = STEER_NONE;

    printf("%-8s t=%d  logits %.2e | attn_out %.2e (%s) | mlp_out %.2e (%s) | block_out %.2e (%s) "
           "| steer %.2e (%s) | gen %s/%s\n",
           fx, n_threads, fm[0].d, fm[1].d, fm[1].where, fm[2].d, fm[2].where, fm[3].d, fm[3].where,
           dsteer, wsteer, ok_plain ? "ok" : "FAIL", ok_steer ? "ok" : "FAIL");
    free(logits);
done:
    es_context_free(ctx);
    es_gguf_close(ref);
    es_model_free(m);
}

/* ---- 3. batch consistency, sequences, rollback ------------------------------------------ */

static void test_consistency(const char *fx, int n_threads, int kv_type) {
    /* f16 KV: a last-bit difference between the batched and single-token matmuls can
     * flip an f16 rounding of a key, value or query (measured up to 2.8e-3) */
    const double tol = kv_type == ES_KV_F16 ? 5e-3 : 1e-4;
    char mpath[1024], rpath[1024];
    snprintf(mpath, sizeof mpath, "%s/%s.f16.gguf", es_test_shared_path("fixtures"), fx);
    snprintf(rpath, sizeof rpath, "%s/%s.ref.gguf", es_test_shared_path("fixtures"), fx);
    es_model *m = NULL;
    es_gguf *ref = NULL;
    if (!CHECK(es_model_load(mpath, NULL, &m) == ES_OK, "%s: %s", fx, es_last_error())) return;
    if (!CHECK(es_gguf_open(rpath, &ref) == ES_OK, "%s: %s", fx, es_last_error())) {
        es_model_free(m);
        return;
    }
    es_model_info info;
    es_model_get_info(m, &info);
    const int nv = info.n_vocab, n = 40;
    const int32_t *tokens = ref_i32(ref, "tokens", (size_t)n);
    es_context_params cp = es_context_default_params();
    cp.n_ctx = 64;
    cp.n_batch = 64;
    cp.n_seq_max = 2;
    cp.n_threads = n_threads;
    cp.kv_type = kv_type;
    es_context *ctx = NULL;
    float *batch_logits = calloc((size_t)n * nv, sizeof(float));
    float *step_logits = calloc((size_t)n * nv, sizeof(float));
    if (!tokens || !CHECK(es_context_create(m, &cp, &ctx) == ES_OK, "%s: %s", fx, es_last_error()))
        goto done;

    /* one batch vs one token at a time */
    CHECK(decode_all(ctx, tokens, n, batch_logits, nv) == ES_OK, "%s: %s", fx, es_last_error());
    CHECK(es_kv_len(ctx, 0) == n, "%s: kv_len %d after %d tokens", fx, es_kv_len(ctx, 0), n);
    es_kv_clear(ctx, -1);
    for (int i = 0; i < n; i++) {
        es_batch one = {1, &tokens[i], NULL, NULL, NULL};
        CHECK(es_decode(ctx, &one) == ES_OK, "%s: step %d: %s", fx, i, es_last_error());
        memcpy(step_logits + (size_t)i * nv, es_get_logits(ctx, 0), (size_t)nv * 4);
    }
    double d_step = compare(fx, "batch vs one-by-one", step_logits, batch_logits, n, nv, tol);

    /* two sequences interleaved in one batch vs each alone: seq 0 = tokens[0..20),
     * seq 1 = tokens[20..40) (positions 0..19 each) */
    const int h = n / 2;
    int32_t tok[40], pos[40], seq[40];
    int8_t want[40];
    for (int i = 0; i < h; i++) {
        tok[2 * i] = tokens[i], pos[2 * i] = i, seq[2 * i] = 0;
        tok[2 * i + 1] = tokens[h + i], pos[2 * i + 1] = i, seq[2 * i + 1] = 1;
        want[2 * i] = want[2 * i + 1] = 1;
    }
    es_kv_clear(ctx, -1);
    es_batch two = {n, tok, pos, seq, want};
    double d_seq = INFINITY;
    if (CHECK(es_decode(ctx, &two) == ES_OK, "%s: two sequences: %s", fx, es_last_error())) {
        for (int i = 0; i < h; i++) {
            memcpy(step_logits + (size_t)i * nv, es_get_logits(ctx, 2 * i), (size_t)nv * 4);
            memcpy(step_logits + (size_t)(h + i) * nv, es_get_logits(ctx, 2 * i + 1),
                   (size_t)nv * 4);
        }
        CHECK(es_kv_len(ctx, 0) == h && es_kv_len(ctx, 1) == h, "%s: kv_len %d %d", fx,
              es_kv_len(ctx, 0), es_kv_len(ctx, 1));
        float *alone = calloc((size_t)n * nv, sizeof(float));
        decode_all(ctx, tokens, h, alone, nv);
        decode_all(ctx, tokens + h, h, alone + (size_t)h * nv, nv);
        d_seq = compare(fx, "interleaved vs alone", step_logits, alone, n, nv, tol);
        free(alone);
    }

    /* rollback: after all 40, redo positions 30..39 (same tokens): same logits; then
     * positions 25.. with the sequence 1 slot unaffected */
    decode_all(ctx, tokens, n, batch_logits, nv);
    int32_t rpos[10];
    int8_t rwant[10];
    for (int i = 0; i < 10; i++)
        rpos[i] = 30 + i, rwant[i] = 1;
    es_batch rb = {10, tokens + 30, rpos, NULL, rwant};
    double d_roll = INFINITY;
    if (CHECK(es_decode(ctx, &rb) == ES_OK, "%s: rollback: %s", fx, es_last_error())) {
        for (int i = 0; i < 10; i++)
            memcpy(step_logits + (size_t)i * nv, es_get_logits(ctx, i), (size_t)nv * 4);
        d_roll = compare(fx, "rollback", step_logits, batch_logits + (size_t)30 * nv, 10, nv, tol);
        CHECK(es_kv_len(ctx, 0) == 40, "%s: kv_len %d after rollback", fx, es_kv_len(ctx, 0));
    }
    /* roll back to 5 with a single token, no positions given: continues at kv_len, so pass pos */
    int32_t p5 = 5;
    es_batch r5 = {1, tokens + 5, &p5, NULL, NULL};
    CHECK(es_decode(ctx, &r5) == ES_OK && es_kv_len(ctx, 0) == 6, "%s: rollback to 5: kv_len %d",
          fx, es_kv_len(ctx, 0));
    d_roll = fmax(d_roll, es_test_maxdiff(es_get_logits(ctx, 0), batch_logits + (size_t)5 * nv,
                                          (size_t)nv, NULL));
    CHECK(d_roll <= tol, "%s: rollback max diff %g", fx, d_roll);
    printf("%-8s t=%d kv %s  batch-vs-steps %.2e | interleaved-vs-alone %.2e | rollback %.2e\n", fx,
           n_threads, kv_type == ES_KV_F16 ? "f16" : "f32", d_step, d_seq, d_roll);
done:
    free(batch_logits);
    free(step_logits);
    es_context_free(ctx);
    es_gguf_close(ref);
    es_model_free(m);
}

/* ---- 3b. f16 KV cache: logits near the float64 reference, less memory ------------------- */

static void test_kv_f16(const char *fx) {
    char mpath[1024], rpath[1024];
    snprintf(mpath, sizeof mpath, "%s/%s.f16.gguf", es_test_shared_path("fixtures"), fx);
    snprintf(rpath, sizeof rpath, "%s/%s.ref.gguf", es_test_shared_path("fixtures"), fx);
    es_model *m = NULL;
    es_gguf *ref = NULL;
    es_context *ctx = NULL;
    float *logits = NULL;
    if (!CHECK(es_model_load(mpath, NULL, &m) == ES_OK, "%s: %s", fx, es_last_error())) return;
    if (!CHECK(es_gguf_open(rpath, &ref) == ES_OK, "%s: %s", fx, es_last_error())) goto done;
    es_model_info info;
    es_model_get_info(m, &info);
    const int nv = info.n_vocab, n = 40;
    const int32_t *tokens = ref_i32(ref, "tokens", (size_t)n);
    const float *want = ref_f32(ref, "logits", (size_t)n * nv);
    es_context_params cp = es_context_default_params();
    cp.n_ctx = 64;
    cp.n_batch = 64;
    cp.n_threads = 2;
    cp.kv_type = ES_KV_F16;
    logits = calloc((size_t)n * nv, sizeof(float));
    if (!tokens || !want || !logits ||
        !CHECK(es_context_create(m, &cp, &ctx) == ES_OK, "%s: %s", fx, es_last_error()))
        goto done;
    if (CHECK(decode_all(ctx, tokens, n, logits, nv) == ES_OK, "%s: %s", fx, es_last_error())) {
        size_t where = 0;
        const double d = es_test_maxdiff(logits, want, (size_t)n * nv, &where);
        int agree = 0;
        for (int i = 0; i < n; i++)
            agree += argmax(logits + (size_t)i * nv, nv) == argmax(want + (size_t)i * nv, nv);
        /* f16 K/V/Q and an f16 value sum: about 1e-3 relative in attention; measured
         * 7e-3..1.9e-2 (llama.cpp itself lands within 0.01-0.03 of these references); the
         * 32/40-layer baichuans 6.7e-2 (llama.cpp with its F16 cache: up to 0.13 there) */
        const double tol16 = info.n_layer > DEEP_LAYERS ? 1e-1 : 3e-2;
        CHECK(d <= tol16, "%s: kv f16 logits max diff %.3e (token %zu) > %.0e", fx, d,
              where / (size_t)nv, tol16);
        CHECK(agree >= n - 1, "%s: kv f16 argmax agrees on %d/%d tokens", fx, agree, n);
        printf("%-8s kv f16  logits vs float64 %.2e (token %zu), argmax %d/%d\n", fx, d,
               where / (size_t)nv, agree, n);
    }
done:
    free(logits);
    es_context_free(ctx);
    es_gguf_close(ref);
    es_model_free(m);
}

/* ---- 3c. what es_model_info says about a family's specifics ------------------------------ */

static void test_features(const char *fx, const char *want) {
    char mpath[1024];
    snprintf(mpath, sizeof mpath, "%s/%s.f16.gguf", es_test_shared_path("fixtures"), fx);
    es_model *m = NULL;
    if (!CHECK(es_model_load(mpath, NULL, &m) == ES_OK, "%s: %s", fx, es_last_error())) return;
    es_model_info info;
    es_model_get_info(m, &info);
    CHECK(info.features && strstr(info.features, want), "%s: features '%s' lack '%s'", fx,
          info.features ? info.features : "(null)", want);
    es_model_free(m);
}

/* ---- 4. bad input ------------------------------------------------------------------------- */

static void expect_fail(es_context *ctx, const es_batch *b, es_status want, const char *needle,
                        const char *what) {
    es_status st = es_decode(ctx, b);
    CHECK(st == want && strstr(es_last_error(), needle) != NULL,
          "%s: got %d (%s), want %d with '%s'", what, st, es_last_error(), want, needle);
}

static void test_bad_batches(void) {
    char mpath[1024];
    snprintf(mpath, sizeof mpath, "%s/llama.f16.gguf", es_test_shared_path("fixtures"));
    es_model *m = NULL;
    if (!CHECK(es_model_load(mpath, NULL, &m) == ES_OK, "%s", es_last_error())) return;
    es_context_params cp = es_context_default_params();
    cp.n_ctx = 8;
    cp.n_batch = 4;
    cp.n_threads = 2;
    es_context *ctx = NULL;
    if (!CHECK(es_context_create(m, &cp, &ctx) == ES_OK, "%s", es_last_error())) {
        es_model_free(m);
        return;
    }
    int32_t toks[5] = {1, 5, 9, 13, 17};
    int32_t bad_tok[2] = {1, 512}, neg_tok[1] = {-3};
    es_batch b = {2, bad_tok, NULL, NULL, NULL};
    expect_fail(ctx, &b, ES_ERR_RANGE, "512", "token 512");
    b = (es_batch){1, neg_tok, NULL, NULL, NULL};
    expect_fail(ctx, &b, ES_ERR_RANGE, "-3", "token -3");
    int32_t seq[1] = {1};
    b = (es_batch){1, toks, NULL, seq, NULL};
    expect_fail(ctx, &b, ES_ERR_RANGE, "sequence id 1", "seq 1");
    b = (es_batch){5, toks, NULL, NULL, NULL};
    expect_fail(ctx, &b, ES_ERR_RANGE, "n_batch", "5 > n_batch");
    b = (es_batch){0, toks, NULL, NULL, NULL};
    expect_fail(ctx, &b, ES_ERR_INVALID_ARG, "batch of 0", "empty batch");
    int32_t gap[2] = {0, 2};
    b = (es_batch){2, toks, gap, NULL, NULL};
    expect_fail(ctx, &b, ES_ERR_RANGE, "does not follow", "position gap");
    int32_t ahead[1] = {3};
    b = (es_batch){1, toks, ahead, NULL, NULL};
    expect_fail(ctx, &b, ES_ERR_RANGE, "cached length", "position after the cache");
    CHECK(es_kv_len(ctx, 0) == 0, "failed batches must not change the cache");
    /* fill the context: 8 positions, then one more */
    for (int i = 0; i < 2; i++) {
        b = (es_batch){4, toks, NULL, NULL, NULL};
        CHECK(es_decode(ctx, &b) == ES_OK, "fill %d: %s", i, es_last_error());
    }
    b = (es_batch){1, toks, NULL, NULL, NULL};
    expect_fail(ctx, &b, ES_ERR_RANGE, "context full", "context full");
    CHECK(es_get_logits(ctx, 3) != NULL && es_get_logits(ctx, 2) == NULL &&
              es_get_logits(ctx, 4) == NULL,
          "logits only for the last token by default");
    CHECK(es_decode(NULL, &b) == ES_ERR_INVALID_ARG && es_decode(ctx, NULL) == ES_ERR_INVALID_ARG,
          "NULL args");
    es_hook_point hp;
    CHECK(es_hook_parse("mlp_out", &hp) == ES_OK && hp == ES_HOOK_MLP_OUT, "hook parse");
    CHECK(es_hook_parse("mlp", &hp) == ES_ERR_INVALID_ARG && strstr(es_last_error(), "mlp"),
          "bad hook name");
    CHECK(!strcmp(es_hook_name(ES_HOOK_BLOCK_OUT), "block_out"), "hook name");
    es_context_free(ctx);
    es_model_free(m);
}

/* Loading without mmap (and with the NaN scan) gives the same model and logits; info. */
static void test_load_options(void) {
    char mpath[1024];
    snprintf(mpath, sizeof mpath, "%s/llama.f16.gguf", es_test_shared_path("fixtures"));
    es_model_params mp = es_model_default_params();
    CHECK(mp.use_mmap && !mp.check_finite, "model defaults");
    mp.use_mmap = false;
    mp.check_finite = true;
    es_model *a = NULL, *b = NULL;
    es_context *ca = NULL, *cb = NULL;
    CHECK(es_model_load(mpath, NULL, &a) == ES_OK && es_model_load(mpath, &mp, &b) == ES_OK,
          "load: %s", es_last_error());
    if (a && b) {
        es_model_info in;
        es_model_get_info(b, &in);
        CHECK(!strcmp(in.arch, "llama") && !strcmp(in.name, "Llama") && in.n_layer == 3 &&
                  in.n_embd == 256 && in.n_head == 4 && in.n_head_kv == 2 && in.head_dim == 64 &&
                  in.n_ff == 512 && in.n_vocab == 512 && in.n_ctx_train == 4096 &&
                  in.n_params > 1000000 && in.weight_bytes > 2000000,
              "model info");
        CHECK(es_model_vocab(b) != NULL && es_model_chat_template(b) == NULL,
              "vocab present, no chat template");
        es_context_params cp = es_context_default_params();
        cp.n_ctx = 0; /* the default: the trained 4096 */
        cp.n_threads = 2;
        int32_t toks[6] = {1, 20, 40, 60, 80, 100};
        es_batch bt = {6, toks, NULL, NULL, NULL};
        if (CHECK(es_context_create(a, &cp, &ca) == ES_OK &&
                      es_context_create(b, &cp, &cb) == ES_OK,
                  "%s", es_last_error()) &&
            CHECK(es_context_n_ctx(ca) == 4096, "n_ctx 0 is the trained length: %d",
                  es_context_n_ctx(ca)) &&
            CHECK(es_decode(ca, &bt) == ES_OK && es_decode(cb, &bt) == ES_OK, "%s",
                  es_last_error()))
            CHECK(!memcmp(es_get_logits(ca, 5), es_get_logits(cb, 5), 512 * sizeof(float)),
                  "use_mmap=false gives the same logits");
    }
    es_context_params bad = es_context_default_params();
    bad.n_batch = 0;
    es_context *cx = NULL;
    CHECK(es_context_create(a, &bad, &cx) == ES_ERR_INVALID_ARG && cx == NULL &&
              strstr(es_last_error(), "n_batch"),
          "n_batch 0 refused");
    bad = es_context_default_params();
    bad.kv_type = 7;
    CHECK(es_context_create(a, &bad, &cx) == ES_ERR_INVALID_ARG && cx == NULL &&
              strstr(es_last_error(), "kv_type"),
          "kv_type 7 refused");
    bad = es_context_default_params();
    bad.n_ctx = 5000; /* past the trained 4096: honoured, not clamped */
    bad.n_threads = 1;
    if (CHECK(es_context_create(a, &bad, &cx) == ES_OK, "n_ctx 5000: %s", es_last_error()))
        CHECK(es_context_n_ctx(cx) == 5000, "n_ctx 5000 honoured: %d", es_context_n_ctx(cx));
    es_context_free(cx);
    cx = NULL;
    CHECK(es_model_load("/nonexistent/x.gguf", NULL, &b) != ES_OK, "missing file");
    es_context_free(ca);
    es_context_free(cb);
    es_model_free(a);
    es_model_free(b);
}

/* A tiny llama model written with the GGUF writer; `edit` selects one defect. */
typedef enum { MODEL_OK, MODEL_ARCH_FOO, MODEL_MISSING, MODEL_SHAPE, MODEL_TYPE } model_defect;

static bool write_tiny_model(const char *path, model_defect defect) {
    enum { D = 32, F = 64, V = 16 };
    es_gguf_writer *w = es_gguf_writer_new();
    if (!w) return false;
    const char *arch = defect == MODEL_ARCH_FOO ? "foo" : "llama";
    char key[64];
    es_gguf_writer_set_str(w, "general.architecture", arch);
#define KEY(s) (snprintf(key, sizeof key, "%s.%s", arch, s), key)
    es_gguf_writer_set_u32(w, KEY("block_count"), 1);
    es_gguf_writer_set_u32(w, KEY("embedding_length"), D);
    es_gguf_writer_set_u32(w, KEY("feed_forward_length"), F);
    es_gguf_writer_set_u32(w, KEY("attention.head_count"), 2);
    es_gguf_writer_set_u32(w, KEY("context_length"), 64);
#undef KEY
    static float zeros[(F + 1) * D];
    static int8_t zeros8[F * D];
    struct {
        const char *name;
        int64_t ne0, ne1;
    } t[] = {{"token_embd.weight", D, V},        {"output_norm.weight", D, 1},
             {"blk.0.attn_norm.weight", D, 1},   {"blk.0.attn_q.weight", D, D},
             {"blk.0.attn_k.weight", D, D},      {"blk.0.attn_v.weight", D, D},
             {"blk.0.attn_output.weight", D, D}, {"blk.0.ffn_norm.weight", D, 1},
             {"blk.0.ffn_gate.weight", D, F},    {"blk.0.ffn_up.weight", D, F},
             {"blk.0.ffn_down.weight", F, D}};
    bool ok = true;
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        const bool is_gate = !strcmp(t[i].name, "blk.0.ffn_gate.weight");
        if (defect == MODEL_MISSING && is_gate) continue;
        int64_t ne[2] = {t[i].ne0, t[i].ne1};
        if (defect == MODEL_SHAPE && is_gate) ne[1] = F + 1;
        int type = defect == MODEL_TYPE && is_gate ? ES_TYPE_I8 : ES_TYPE_F32;
        ok = ok && es_gguf_writer_add_tensor(w, t[i].name, type, ne[1] == 1 ? 1 : 2, ne,
                                             type == ES_TYPE_I8 ? (const void *)zeros8
                                                                : (const void *)zeros) == ES_OK;
    }
    ok = ok && es_gguf_writer_write(w, path) == ES_OK;
    es_gguf_writer_free(w);
    return ok;
}

static void test_bad_models(void) {
    char path[256];
    snprintf(path, sizeof path, "/tmp/es_test_forward_%d.gguf", (int)getpid());
    static const struct {
        model_defect d;
        es_status st;
        const char *needle, *needle2;
    } cases[] = {
        {MODEL_OK, ES_OK, "", ""},
        {MODEL_ARCH_FOO, ES_ERR_UNSUPPORTED, "'foo'", "foo"},
        {MODEL_MISSING, ES_ERR_FORMAT, "blk.0.ffn_gate.weight", "missing"},
        {MODEL_SHAPE, ES_ERR_FORMAT, "blk.0.ffn_gate.weight", "[32, 65"},
        {MODEL_TYPE, ES_ERR_UNSUPPORTED, "blk.0.ffn_gate.weight", "I8"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (!CHECK(write_tiny_model(path, cases[i].d), "write tiny model %zu: %s", i,
                   es_last_error()))
            continue;
        es_model *m = NULL;
        es_status st = es_model_load(path, NULL, &m);
        CHECK(st == cases[i].st && strstr(es_last_error(), cases[i].needle) &&
                  strstr(es_last_error(), cases[i].needle2),
              "tiny model case %zu: status %d (%s), want %d mentioning %s", i, st, es_last_error(),
              cases[i].st, cases[i].needle);
        if (st == ES_OK) {
            /* the all-zero model runs: uniform logits */
            es_context *ctx = NULL;
            int32_t tok = 3;
            es_batch b = {1, &tok, NULL, NULL, NULL};
            CHECK(es_context_create(m, NULL, &ctx) == ES_OK && es_decode(ctx, &b) == ES_OK &&
                      es_get_logits(ctx, 0)[0] == 0.0f,
                  "tiny model decode: %s", es_last_error());
            es_context_free(ctx);
        }
        es_model_free(m);
        printf("bad model case %zu: %s\n", i, st == ES_OK ? "loads" : es_last_error());
    }
    remove(path);
}

int main(void) {
    if (!es_test_shared()) {
        printf("no shared folder: skipped\n");
        return ES_TEST_SKIP;
    }
    double t0 = es_time_s();
    /* every architecture with 2 threads; a spread of them again with 1 thread */
    for (size_t i = 0; i < sizeof fixtures / sizeof fixtures[0]; i++)
        test_fixture(fixtures[i], 2);
    static const char *const single[] = {"llama31", "gemma2", "phi3"};
    for (size_t i = 0; i < sizeof single / sizeof single[0]; i++)
        test_fixture(single[i], 1);
    static const char *const cons[] = {"llama", "qwen2", "gemma2", "gemma3", "phi3"};
    for (size_t i = 0; i < sizeof cons / sizeof cons[0]; i++)
        test_consistency(cons[i], 2, ES_KV_F32);
    test_consistency("qwen3", 1, ES_KV_F32);
    test_fixture("qwen3moe", 1);
    test_fixture("minicpm3", 1);
    test_consistency("qwen3moe", 2, ES_KV_F32);
    test_consistency("minicpm3", 2, ES_KV_F32);
    for (size_t i = 0; i < sizeof fixtures / sizeof fixtures[0]; i++)
        test_kv_f16(fixtures[i]);
    static const char *const cons16[] = {"llama", "gemma2", "phi3"};
    for (size_t i = 0; i < sizeof cons16 / sizeof cons16[0]; i++)
        test_consistency(cons16[i], 2, ES_KV_F16);
    /* MiniCPM scales, Baichuan RoPE / ALiBi, Qwen v1 at 1 thread too; ALiBi with an f16
     * cache is checked against the reference by test_kv_f16 (its batch-vs-steps figure,
     * 1e-2 over 40 layers, is f16 rounding noise beyond test_consistency's 5e-3) */
    test_fixture("minicpm", 1);
    test_fixture("baichuan", 1);
    test_fixture("baichuan13b", 1);
    test_fixture("qwen", 1);
    test_consistency("minicpm", 2, ES_KV_F32);
    test_consistency("baichuan13b", 2, ES_KV_F32);
    test_features("minicpm", "embedding scale 2.5, residual scale 0.69282, logit scale 4");
    test_features("baichuan", "RoPE (adjacent pairs");
    test_features("baichuan13b", "ALiBi (max bias 8)");
    test_features("qwen", "RoPE (NEOX, base 10000), fused QKV, QKV bias");
    test_bad_batches();
    test_load_options();
    test_bad_models();
    printf("time %.2f s\n", es_time_s() - t0);
    return es_test_finish();
}
