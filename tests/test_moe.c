/*
 * test_moe.c — the mixture-of-experts FFN on random qwen3-moe-tiny files (no shared
 * folder needed): in the q8_0 and q4_k_m mixes the 3-D expert tensors are quantized like
 * the other matrices (the router stays F32); the model runs with finite logits; 1 and 2
 * threads give the same logits; and the expert routing of every layer, read at the
 * mlp_out hook, is the same when the prompt is decoded as one batch and token by token; in the
 * batch-invariant mode the logits of the two are equal bit for bit (in the fast mode they may
 * differ by rounding: the AVX-VNNI Q8_0 tile rounds differently from the one-token dot, and an
 * 8-bit rounding of a later activation can flip on that). Every routing's weights sum to 1.
 */
#include "context.h"
#include "gguf.h"
#include "testutil.h"
#include "types.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define N_TOK 24
#define N_LAYER 4
#define N_EXPERT 8
#define TOP_K 2
#define N_VOCAB 2048

/* Routing seen at the mlp_out hook of each layer: sel[layer][token][slot]. */
typedef struct route_log {
    es_context *ctx;
    int t0; /* batch index 0 is this token of the prompt */
    int32_t sel[N_LAYER][N_TOK][TOP_K];
    double worst_wsum; /* largest |sum of weights - 1| */
} route_log;

static void route_hook(void *user, es_hook_point hp, int layer, float *x, int n_tokens, int n_embd,
                       const es_batch *batch) {
    route_log *r = user;
    (void)x, (void)n_embd, (void)batch;
    if (hp != ES_HOOK_MLP_OUT || layer >= N_LAYER) return;
    const es_run_state *rs = &r->ctx->rs;
    for (int t = 0; t < n_tokens && r->t0 + t < N_TOK; t++) {
        double sum = 0;
        for (int j = 0; j < TOP_K; j++) {
            r->sel[layer][r->t0 + t][j] = rs->moe_sel[t * TOP_K + j];
            sum += rs->moe_w[t * TOP_K + j];
        }
        r->worst_wsum = fmax(r->worst_wsum, fabs(sum - 1.0));
    }
}

static const int32_t prompt[N_TOK] = {1,    300, 301, 1999, 2047, 42,  7,    900,
                                      901,  902, 77,  1500, 260,  261, 262,  263,
                                      1024, 555, 556, 3,    4,    5,   2000, 1234};

/* Decodes the prompt (one batch, or token by token) with n_threads, batch-invariant or not;
 * logits [N_TOK][N_VOCAB]. */
static bool run(es_model *m, int n_threads, bool one_by_one, bool invariant, float *logits,
                route_log *r) {
    es_context_params cp = es_context_default_params();
    cp.n_ctx = 64;
    cp.n_batch = 32;
    cp.n_threads = n_threads;
    cp.batch_invariant = invariant;
    es_context *ctx = NULL;
    if (!CHECK(es_context_create(m, &cp, &ctx) == ES_OK, "context: %s", es_last_error()))
        return false;
    memset(r, 0, sizeof *r);
    r->ctx = ctx;
    es_set_hook(ctx, route_hook, r);
    bool ok = true;
    int8_t want[N_TOK];
    memset(want, 1, sizeof want);
    for (int t0 = 0; ok && t0 < N_TOK; t0 += one_by_one ? 1 : N_TOK) {
        const int n = one_by_one ? 1 : N_TOK;
        es_batch b = {n, prompt + t0, NULL, NULL, want};
        r->t0 = t0;
        ok = CHECK(es_decode(ctx, &b) == ES_OK, "decode: %s", es_last_error());
        for (int i = 0; ok && i < n; i++)
            memcpy(logits + (size_t)(t0 + i) * N_VOCAB, es_get_logits(ctx, i), N_VOCAB * 4);
    }
    es_context_free(ctx);
    return ok;
}

static void check_model(const char *path, const char *mix, int exp_type) {
    es_gguf *g = NULL;
    if (!CHECK(es_gguf_open(path, &g) == ES_OK, "%s: %s", mix, es_last_error())) return;
    const es_gguf_tensor *e = es_gguf_find_tensor(g, "blk.1.ffn_gate_exps.weight");
    const es_gguf_tensor *router = es_gguf_find_tensor(g, "blk.1.ffn_gate_inp.weight");
    CHECK(e && e->n_dims == 3 && e->ne[0] == 256 && e->ne[1] == 256 && e->ne[2] == N_EXPERT &&
              (int)e->type == exp_type,
          "%s: ffn_gate_exps is not a [256, 256, 8] %s tensor", mix, es_type_name(exp_type));
    CHECK(router && router->type == ES_TYPE_F32 && router->ne[1] == N_EXPERT,
          "%s: router is not F32 [256, 8]", mix);
    es_gguf_close(g);

    es_model *m = NULL;
    if (!CHECK(es_model_load(path, NULL, &m) == ES_OK, "%s: load: %s", mix, es_last_error()))
        return;
    float *a = calloc((size_t)N_TOK * N_VOCAB, sizeof *a),
          *b = calloc((size_t)N_TOK * N_VOCAB, sizeof *b),
          *c = calloc((size_t)N_TOK * N_VOCAB, sizeof *c),
          *d = calloc((size_t)N_TOK * N_VOCAB, sizeof *d);
    route_log *ra = calloc(1, sizeof *ra), *rb = calloc(1, sizeof *rb), *rc = calloc(1, sizeof *rc),
              *rd = calloc(1, sizeof *rd);
    if (run(m, 2, false, false, a, ra) && run(m, 1, false, false, b, rb) &&
        run(m, 2, true, true, c, rc) && run(m, 2, false, true, d, rd)) {
        bool finite = true;
        double amax = 0, d_thr = 0, d_step = 0;
        for (size_t i = 0; i < (size_t)N_TOK * N_VOCAB; i++) {
            finite = finite && isfinite(a[i]);
            amax = fmax(amax, fabs(a[i]));
            d_thr = fmax(d_thr, fabs(a[i] - b[i]));
            d_step = fmax(d_step, fabs(d[i] - c[i]));
        }
        int same_route = 0, all = N_LAYER * N_TOK;
        for (int l = 0; l < N_LAYER; l++)
            for (int t = 0; t < N_TOK; t++)
                same_route += !memcmp(ra->sel[l][t], rc->sel[l][t], sizeof ra->sel[l][t]) &&
                              !memcmp(ra->sel[l][t], rb->sel[l][t], sizeof ra->sel[l][t]) &&
                              !memcmp(ra->sel[l][t], rd->sel[l][t], sizeof ra->sel[l][t]);
        int used[N_EXPERT] = {0}, n_used = 0;
        for (int l = 0; l < N_LAYER; l++)
            for (int t = 0; t < N_TOK; t++)
                for (int j = 0; j < TOP_K; j++)
                    used[ra->sel[l][t][j]] = 1;
        for (int e2 = 0; e2 < N_EXPERT; e2++)
            n_used += used[e2];
        printf("%-7s max |logit| %.3f | 1 vs 2 threads %.2e | batch vs one by one (invariant) %.2e "
               "| routing "
               "equal %d/%d, "
               "experts used %d/%d, |sum w - 1| <= %.1e\n",
               mix, amax, d_thr, d_step, same_route, all, n_used, N_EXPERT, ra->worst_wsum);
        CHECK(finite && amax > 0, "%s: logits not finite or all zero", mix);
        CHECK(d_thr == 0.0, "%s: 1 and 2 threads differ by %g", mix, d_thr);
        CHECK(d_step == 0.0, "%s: batch vs one by one (batch-invariant) %g", mix, d_step);
        CHECK(same_route == all, "%s: routing differs for %d of %d (layer, token)", mix,
              all - same_route, all);
        CHECK(n_used > TOP_K, "%s: only %d experts used", mix, n_used);
        CHECK(ra->worst_wsum < 1e-6 && rc->worst_wsum < 1e-6 && rd->worst_wsum < 1e-6,
              "%s: routing weights do not sum to 1", mix);
    }
    free(a), free(b), free(c), free(d), free(ra), free(rb), free(rc), free(rd);
    es_model_free(m);
}

int main(void) {
    char dir[] = "/tmp/es_test_moe_XXXXXX";
    if (!mkdtemp(dir)) {
        printf("cannot create a temporary folder\n");
        return 1;
    }
    static const struct {
        const char *mix;
        int type;
    } mixes[] = {{"q8_0", ES_TYPE_Q8_0}, {"q4_k_m", ES_TYPE_Q4_K}};
    for (size_t i = 0; i < sizeof mixes / sizeof mixes[0]; i++) {
        char path[256];
        snprintf(path, sizeof path, "%s/tiny.%s.gguf", dir, mixes[i].mix);
        es_random_model_params p = es_random_model_default_params();
        p.like = "qwen3-moe-tiny";
        p.mix = mixes[i].mix;
        p.n_threads = 2;
        if (CHECK(es_random_model_write(&p, path, NULL) == ES_OK, "write %s: %s", mixes[i].mix,
                  es_last_error()))
            check_model(path, mixes[i].mix, mixes[i].type);
        remove(path);
    }
    rmdir(dir);
    return es_test_finish();
}
