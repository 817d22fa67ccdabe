/*
 * test_steer.c — steering sets:
 *   1. combination math sum_k alpha_k v_k, layer selection, hook override, rejections;
 *   2. es_steer_apply on a synthetic batch of two interleaved sequences: every
 *      position policy (all / prompt / generated / last), explicit and automatic
 *      prompt lengths, preserve_norm;
 *   3. end to end on every fixture through the public API (no raw hook):
 *      logits.steer_block / steer_multi / steer_attn_last within 2e-3, gen_steer
 *      greedy equal, and steer_block through a llama.cpp control vector written to a
 *      temp file and loaded back. Prints the max differences.
 */
#include "emosteer.h"
#include "gguf.h"
#include "steer.h"
#include "testutil.h"
#include "types.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TOL 2e-3
#define N_GEN 16
#define N_PROMPT 8

static void fill(float *v, int n, float seed) {
    for (int i = 0; i < n; i++)
        v[i] = sinf(seed * 1.3f + (float)i * 0.71f) * (0.5f + seed);
}

/* A set of width d at hook hp with emotions "a" and "b" at layers 0..n_layer-1 (b lacks
 * layer 3). */
static es_ev_set *make_ev(int d, int n_layer, es_hook_point hp) {
    es_ev_set *s = NULL;
    es_ev_set_create(d, hp, &s);
    float *v = malloc((size_t)d * sizeof *v);
    for (int l = 0; l < n_layer; l++) {
        fill(v, d, (float)l);
        es_ev_set_put(s, "a", l, v);
        if (l == 3) continue;
        fill(v, d, 10.0f + (float)l);
        es_ev_set_put(s, "b", l, v);
    }
    free(v);
    return s;
}

static es_steer_item item(const es_ev_set *ev, const char *emo, float alpha) {
    es_steer_item it = es_steer_item_default();
    it.vectors = ev;
    it.emotion = emo;
    it.alpha = alpha;
    return it;
}

/* ---- 1. combination, selection, rejection ---- */

static void test_combination(void) {
    enum { D = 8, L = 5 };
    es_ev_set *ev = make_ev(D, L, ES_HOOK_BLOCK_OUT);
    es_steer_set *set = NULL;
    CHECK(es_steer_set_create(&set) == ES_OK, "create");

    es_steer_item it = item(ev, "a", 0.5f);
    it.layer_first = 1;
    it.layer_last = 2;
    CHECK(es_steer_set_add(set, &it) == ES_OK, "add a 1..2: %s", es_last_error());
    it = item(ev, "b", -2.0f);
    int32_t two[1] = {2};
    it.layers = two;
    it.n_layers = 1;
    CHECK(es_steer_set_add(set, &it) == ES_OK, "add b [2]: %s", es_last_error());
    it = item(ev, "a", 3.0f);
    it.positions = ES_STEER_POS_LAST;
    it.hook = ES_HOOK_ATTN_OUT;
    CHECK(es_steer_set_add(set, &it) == ES_OK, "add a last attn_out (all layers)");
    CHECK(es_steer_set_n_items(set) == 3, "3 items");

    float got[D], want[D];
    double maxd = 0;
    CHECK(es_steer_set_combined(set, ES_HOOK_BLOCK_OUT, 2, ES_STEER_POS_ALL, got, D) == ES_OK,
          "combined layer 2");
    const float *a2 = es_ev_set_get(ev, "a", 2), *b2 = es_ev_set_get(ev, "b", 2);
    for (int i = 0; i < D; i++) {
        want[i] = (float)(0.5 * a2[i] - 2.0 * b2[i]);
        maxd = fmax(maxd, fabs(got[i] - want[i]));
    }
    CHECK(maxd < 1e-6, "0.5 a - 2 b at layer 2: max diff %.3g", maxd);
    CHECK(es_steer_set_combined(set, ES_HOOK_BLOCK_OUT, 1, ES_STEER_POS_ALL, got, D) == ES_OK &&
              got[3] == 0.5f * es_ev_set_get(ev, "a", 1)[3],
          "layer 1 = 0.5 a");
    CHECK(es_steer_set_combined(set, ES_HOOK_BLOCK_OUT, 0, ES_STEER_POS_ALL, got, D) ==
              ES_ERR_NOT_FOUND,
          "nothing at layer 0");
    CHECK(es_steer_set_combined(set, ES_HOOK_BLOCK_OUT, 2, ES_STEER_POS_LAST, got, D) ==
              ES_ERR_NOT_FOUND,
          "nothing at block_out/last");
    CHECK(es_steer_set_combined(set, ES_HOOK_ATTN_OUT, 4, ES_STEER_POS_LAST, got, D) == ES_OK &&
              got[5] == 3.0f * es_ev_set_get(ev, "a", 4)[5],
          "hook override: attn_out layer 4 = 3 a");

    /* layer selection */
    it = item(ev, "b", 1.0f);
    CHECK(es_steer_set_add(set, &it) == ES_OK, "default range skips b's absent layer 3");
    it.layer_first = 2;
    it.layer_last = 4;
    CHECK(es_steer_set_add(set, &it) == ES_ERR_NOT_FOUND && strstr(es_last_error(), "layer 3"),
          "explicit range over an absent layer: %s", es_last_error());
    int32_t dup[2] = {1, 1};
    it = item(ev, "a", 1.0f);
    it.layers = dup;
    it.n_layers = 2;
    CHECK(es_steer_set_add(set, &it) == ES_ERR_INVALID_ARG, "duplicate layer in list");
    it.n_layers = 0;
    CHECK(es_steer_set_add(set, &it) == ES_ERR_INVALID_ARG, "empty layer list");
    it = item(ev, "a", 1.0f);
    it.layer_first = 3;
    it.layer_last = 2;
    CHECK(es_steer_set_add(set, &it) == ES_ERR_INVALID_ARG, "reversed range");

    /* rejections at add */
    it = item(ev, "c", 1.0f);
    CHECK(es_steer_set_add(set, &it) == ES_ERR_NOT_FOUND, "unknown emotion");
    it = item(ev, "a", NAN);
    CHECK(es_steer_set_add(set, &it) == ES_ERR_INVALID_ARG, "NaN alpha");
    it = item(ev, "a", INFINITY);
    CHECK(es_steer_set_add(set, &it) == ES_ERR_INVALID_ARG, "Inf alpha");
    it = item(ev, "a", 1.0f);
    it.hook = 7;
    CHECK(es_steer_set_add(set, &it) == ES_ERR_INVALID_ARG, "bad hook");
    it.hook = ES_HOOK_AUTO;
    it.positions = (es_steer_positions)9;
    CHECK(es_steer_set_add(set, &it) == ES_ERR_INVALID_ARG, "bad positions");
    es_ev_set *wide = make_ev(D + 1, 2, ES_HOOK_BLOCK_OUT);
    it = item(wide, "a", 1.0f);
    CHECK(es_steer_set_add(set, &it) == ES_ERR_INVALID_ARG, "width differs from earlier items");

    /* rejections at attach: width, layers beyond the model, overflowing mix, sequence */
    struct es_steer_state *st = NULL;
    CHECK(es_steer_state_create(2, 3, D, &st) == ES_OK, "state");
    CHECK(es_steer_state_attach_set(st, 0, set) == ES_ERR_INVALID_ARG &&
              strstr(es_last_error(), "steers layer 3 but the model has 3 layers"),
          "layers 3, 4 of a 3-layer model refused: %s", es_last_error());
    es_steer_state_free(st);
    CHECK(es_steer_state_create(2, L, D + 1, &st) == ES_OK, "state D+1");
    CHECK(es_steer_state_attach_set(st, 0, set) == ES_ERR_INVALID_ARG &&
              strstr(es_last_error(), "width"),
          "width mismatch refused: %s", es_last_error());
    es_steer_state_free(st);
    CHECK(es_steer_state_create(2, L, D, &st) == ES_OK, "state ok");
    CHECK(es_steer_state_attach_set(st, 2, set) == ES_ERR_RANGE, "sequence 2 of 2 refused");
    CHECK(es_steer_state_attach_set(st, -1, set) == ES_OK, "attach all: %s", es_last_error());
    es_steer_set *huge = NULL;
    es_steer_set_create(&huge);
    float big[D];
    for (int i = 0; i < D; i++)
        big[i] = 3e38f;
    es_ev_set *bev = NULL;
    es_ev_set_create(D, ES_HOOK_BLOCK_OUT, &bev);
    es_ev_set_put(bev, "x", 0, big);
    it = item(bev, "x", 2.0f);
    es_steer_set_add(huge, &it);
    CHECK(es_steer_state_attach_set(st, 0, huge) == ES_ERR_FORMAT, "overflowing mix refused: %s",
          es_last_error());
    CHECK(es_steer_active(st, ES_HOOK_BLOCK_OUT, 2), "failed attach kept the old steering");
    CHECK(es_steer_state_attach_set(st, -1, NULL) == ES_OK &&
              !es_steer_active(st, ES_HOOK_BLOCK_OUT, 2),
          "detach");
    es_steer_state_free(st);

    es_steer_positions p;
    CHECK(es_steer_positions_parse("generated", &p) == ES_OK && p == ES_STEER_POS_GENERATED,
          "parse generated");
    CHECK(es_steer_positions_parse("first", &p) == ES_ERR_INVALID_ARG, "parse junk");
    CHECK(strcmp(es_steer_positions_name(ES_STEER_POS_LAST), "last") == 0, "name last");

    es_steer_set_free(huge);
    es_ev_set_free(bev);
    es_ev_set_free(wide);
    es_steer_set_free(set);
    es_ev_set_free(ev);
}

/* ---- 2. application on a synthetic batch ---- */

static double norm(const float *x, int n) {
    double s = 0;
    for (int i = 0; i < n; i++)
        s += (double)x[i] * x[i];
    return sqrt(s);
}

static void test_apply(void) {
    enum { D = 6, L = 4, T = 7 };
    /* one vector per policy, so the expected sum says which policies fired */
    es_ev_set *ev = NULL;
    es_ev_set_create(D, ES_HOOK_MLP_OUT, &ev);
    const char *names[4] = {"all", "prompt", "gen", "last"};
    float v[D];
    for (int k = 0; k < 4; k++) {
        for (int i = 0; i < D; i++)
            v[i] = (float)((i == k) ? 1 : 0) * (float)(k + 1);
        es_ev_set_put(ev, names[k], 2, v);
    }
    /* seq 0: "all" only; seq 1: prompt + generated + last, with preserve_norm off */
    es_steer_set *s0 = NULL, *s1 = NULL;
    es_steer_set_create(&s0);
    es_steer_set_create(&s1);
    es_steer_item it = item(ev, "all", 1.0f);
    es_steer_set_add(s0, &it);
    for (int k = 1; k < 4; k++) {
        it = item(ev, names[k], 10.0f);
        it.positions = (es_steer_positions)k;
        es_steer_set_add(s1, &it);
    }
    struct es_steer_state *st = NULL;
    es_steer_state_create(2, L, D, &st);
    CHECK(es_steer_state_attach_set(st, 0, s0) == ES_OK &&
              es_steer_state_attach_set(st, 1, s1) == ES_OK,
          "attach per sequence");

    /* batch: seq 0 starts at position 0 (its prompt = this batch: 3 tokens); seq 1
     * continues at positions 5..8 with an explicit prompt length of 7 */
    int32_t tok[T] = {0}, seq[T] = {0, 1, 0, 1, 1, 0, 1}, pos[T] = {0, 5, 1, 6, 7, 2, 8};
    es_batch b = {T, tok, pos, seq, NULL};
    CHECK(es_steer_state_set_prompt_len(st, 1, 7) == ES_OK, "prompt len seq 1");
    float x[T][D];
    memset(x, 0, sizeof x);
    es_steer_apply(st, ES_HOOK_MLP_OUT, 1, &x[0][0], T, D, &b);
    es_steer_apply(st, ES_HOOK_BLOCK_OUT, 2, &x[0][0], T, D, &b);
    float zero = 0;
    for (int t = 0; t < T; t++)
        for (int i = 0; i < D; i++)
            zero = fmaxf(zero, fabsf(x[t][i]));
    CHECK(zero == 0, "other layers and hooks untouched");
    es_steer_apply(st, ES_HOOK_MLP_OUT, 2, &x[0][0], T, D, &b);
    /* expected: seq 0 tokens get e0*1; seq 1: pos 5, 6 prompt (e1*20), pos 7, 8 generated
     * (e2*30), and its last token (index 6) also e3*40 */
    float want[T][D];
    memset(want, 0, sizeof want);
    want[0][0] = want[2][0] = want[5][0] = 1;
    want[1][1] = want[3][1] = 20;
    want[4][2] = want[6][2] = 30;
    want[6][3] = 40;
    size_t where;
    double d = es_test_maxdiff(&x[0][0], &want[0][0], T * D, &where);
    CHECK(d == 0, "policies on two sequences: max diff %g at token %zu dim %zu", d, where / D,
          where % D);

    /* automatic prompt length: seq 1 restarts at position 0 with 2 tokens; then one
     * token at position 2 is generated */
    es_steer_state_set_prompt_len(st, 1, -1);
    int32_t seq2[2] = {1, 1}, pos2[2] = {0, 1};
    es_batch b2 = {2, tok, pos2, seq2, NULL};
    float y[2][D];
    memset(y, 0, sizeof y);
    es_steer_apply(st, ES_HOOK_MLP_OUT, 2, &y[0][0], 2, D, &b2);
    CHECK(y[0][1] == 20 && y[1][1] == 20 && y[1][3] == 40 && y[0][3] == 0 && y[0][2] == 0,
          "auto prompt: both tokens prompt, last token also 'last'");
    int32_t pos3[1] = {2};
    es_batch b3 = {1, tok, pos3, seq2, NULL};
    float z[D] = {0};
    es_steer_apply(st, ES_HOOK_MLP_OUT, 2, z, 1, D, &b3);
    CHECK(z[2] == 30 && z[3] == 40 && z[1] == 0, "auto prompt: position 2 is generated + last");

    /* preserve_norm: the steered vector keeps its norm; direction moves toward v */
    es_steer_set_preserve_norm(s0, true);
    es_steer_state_attach_set(st, 0, s0);
    float r[T][D];
    double n_before[T];
    for (int t = 0; t < T; t++) {
        fill(r[t], D, (float)t);
        n_before[t] = norm(r[t], D);
    }
    es_steer_apply(st, ES_HOOK_MLP_OUT, 2, &r[0][0], T, D, &b);
    double worst = 0;
    for (int t = 0; t < T; t++)
        if (seq[t] == 0) worst = fmax(worst, fabs(norm(r[t], D) - n_before[t]) / n_before[t]);
    CHECK(worst < 1e-6, "preserve_norm: relative norm change %.2g", worst);
    float r0[D];
    fill(r0, D, 0);
    CHECK(r[0][0] / norm(r[0], D) > r0[0] / norm(r0, D), "preserve_norm moved toward the vector");

    /* sequence ids outside the state are skipped, never read out of bounds */
    int32_t bad_seq[1] = {5};
    es_batch bb = {1, tok, pos3, bad_seq, NULL};
    float q[D] = {0};
    es_steer_apply(st, ES_HOOK_MLP_OUT, 2, q, 1, D, &bb);
    CHECK(q[0] == 0 && q[1] == 0, "unknown sequence untouched");
    es_steer_apply(NULL, ES_HOOK_MLP_OUT, 2, q, 1, D, &bb);

    es_steer_state_free(st);
    es_steer_set_free(s0);
    es_steer_set_free(s1);
    es_ev_set_free(ev);
}

/* Cost of es_steer_apply for one decode step of a 7B-sized model (28 layers, 3584):
 * steering every layer at one position. Printed, not asserted (timings vary). */
static void bench_apply(void) {
    enum { D = 3584, L = 28 };
    es_ev_set *ev = make_ev(D, L, ES_HOOK_ATTN_OUT);
    es_steer_set *set = NULL;
    es_steer_set_create(&set);
    es_steer_item it = item(ev, "a", 4.0f);
    es_steer_set_add(set, &it);
    it = item(ev, "b", -2.0f);
    es_steer_set_add(set, &it);
    struct es_steer_state *st = NULL;
    es_steer_state_create(1, L, D, &st);
    es_steer_state_attach_set(st, 0, set);
    float *x = calloc(D, sizeof *x);
    int32_t tok = 0, seq = 0, pos = 100;
    es_batch b = {1, &tok, &pos, &seq, NULL};
    int reps = 300;
    double t0 = es_time_s();
    for (int r = 0; r < reps; r++)
        for (int h = 0; h < ES_HOOK_COUNT; h++)
            for (int l = 0; l < L; l++)
                es_steer_apply(st, (es_hook_point)h, l, x, 1, D, &b);
    double us = (es_time_s() - t0) / reps * 1e6;
    printf(
        "steering cost per decoded token (28 layers x 3 hooks, width 3584, 2 emotions): %.1f us\n",
        us);
    CHECK(isfinite(x[0]), "bench ran");
    free(x);
    es_steer_state_free(st);
    es_steer_set_free(set);
    es_ev_set_free(ev);
}

/* ---- 3. end to end on the fixtures ---- */

static const char *const fixtures[] = {"llama",    "llama31", "mistral",  "qwen2",       "qwen3",
                                       "gemma",    "gemma2",  "gemma3",   "phi3",        "qwen3moe",
                                       "minicpm3", "minicpm", "baichuan", "baichuan13b", "qwen"};

static const float *ref_f32(const es_gguf *g, const char *name, size_t n) {
    const es_gguf_tensor *t = es_gguf_find_tensor(g, name);
    if (!CHECK(t && t->type == ES_TYPE_F32 && t->nbytes == n * sizeof(float), "reference %s", name))
        return NULL;
    return t->data;
}

static int argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

/* Decodes tokens as one batch with all logits; returns the max diff against want. */
static double steered_logits(es_context *ctx, const es_steer_set *set, const int32_t *tokens, int n,
                             int nv, const float *want, size_t *where) {
    if (es_context_set_steering(ctx, -1, set) != ES_OK) {
        CHECK(false, "attach: %s", es_last_error());
        return INFINITY;
    }
    int8_t *lg = malloc((size_t)n);
    memset(lg, 1, (size_t)n);
    float *got = malloc((size_t)n * nv * sizeof *got);
    es_kv_clear(ctx, -1);
    es_batch b = {n, tokens, NULL, NULL, lg};
    double d = INFINITY;
    if (CHECK(es_decode(ctx, &b) == ES_OK, "decode: %s", es_last_error())) {
        for (int i = 0; i < n; i++)
            memcpy(got + (size_t)i * nv, es_get_logits(ctx, i), (size_t)nv * 4);
        d = es_test_maxdiff(got, want, (size_t)n * nv, where);
    }
    free(got);
    free(lg);
    return d;
}

static bool generate(es_context *ctx, const int32_t *prompt, int nv, const int32_t *want) {
    es_kv_clear(ctx, -1);
    es_batch b = {N_PROMPT, prompt, NULL, NULL, NULL};
    if (es_decode(ctx, &b) != ES_OK) return false;
    int32_t tok = argmax(es_get_logits(ctx, N_PROMPT - 1), nv);
    for (int i = 0; i < N_GEN; i++) {
        if (tok != want[i]) return false;
        es_batch one = {1, &tok, NULL, NULL, NULL};
        if (es_decode(ctx, &one) != ES_OK) return false;
        tok = argmax(es_get_logits(ctx, 0), nv);
    }
    return true;
}

static void test_fixture(const char *fx, const char *tmpdir, double *worst) {
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
    const int nv = info.n_vocab, ne = info.n_embd, nl = info.n_layer, n = 40;
    const es_gguf_tensor *tt = es_gguf_find_tensor(ref, "tokens");
    const int32_t *tokens = tt && tt->ne[0] == n && tt->type == ES_TYPE_I32 ? tt->data : NULL;
    const es_gguf_tensor *gt = es_gguf_find_tensor(ref, "gen_steer");
    const int32_t *gen_steer =
        gt && gt->ne[0] == N_GEN && gt->type == ES_TYPE_I32 ? gt->data : NULL;
    float a1 = 0;
    es_gguf_get_f32(ref, "reference.a1", &a1);
    const float *v1 = ref_f32(ref, "v1", (size_t)ne), *v2 = ref_f32(ref, "v2", (size_t)ne);
    const float *w_block = ref_f32(ref, "logits.steer_block", (size_t)n * nv);
    const float *w_multi = ref_f32(ref, "logits.steer_multi", (size_t)n * nv);
    const float *w_last = ref_f32(ref, "logits.steer_attn_last", (size_t)n * nv);
    es_context_params cp = es_context_default_params();
    cp.n_ctx = 64;
    cp.n_batch = 64;
    cp.n_threads = 2;
    es_context *ctx = NULL;
    if (!CHECK(tokens && gen_steer && v1 && v2 && w_block && w_multi && w_last && a1 > 0,
               "%s: reference incomplete", fx) ||
        !CHECK(es_context_create(m, &cp, &ctx) == ES_OK, "%s: context: %s", fx, es_last_error()))
        goto done;

    /* the unit vectors v1, v2 as "emotions" at every layer, measured at block_out */
    es_ev_set *ev = NULL;
    es_ev_set_create(ne, ES_HOOK_BLOCK_OUT, &ev);
    for (int l = 0; l < nl; l++) {
        es_ev_set_put(ev, "v1", l, v1);
        es_ev_set_put(ev, "v2", l, v2);
    }
    size_t where = 0;
    double d[4];

    /* steer_block: a1 * v1 at block_out.1, every position */
    es_steer_set *sb = NULL;
    es_steer_set_create(&sb);
    es_steer_item it = item(ev, "v1", a1);
    int32_t l1[1] = {1};
    it.layers = l1;
    it.n_layers = 1;
    es_steer_set_add(sb, &it);
    d[0] = steered_logits(ctx, sb, tokens, n, nv, w_block, &where);
    CHECK(d[0] <= TOL, "%s steer_block: max diff %.3g at token %zu", fx, d[0], where / nv);
    bool gen_ok = generate(ctx, tokens, nv, gen_steer);
    CHECK(gen_ok, "%s: steered greedy generation differs from gen_steer", fx);

    /* steer_multi: 0.5 a1 v1 at block_out.0 and -0.75 a1 v2 at block_out.2 */
    es_steer_set *sm = NULL;
    es_steer_set_create(&sm);
    it = item(ev, "v1", 0.5f * a1);
    it.layer_first = it.layer_last = 0;
    es_steer_set_add(sm, &it);
    it = item(ev, "v2", -0.75f * a1);
    it.layer_first = it.layer_last = 2;
    es_steer_set_add(sm, &it);
    d[1] = steered_logits(ctx, sm, tokens, n, nv, w_multi, &where);
    CHECK(d[1] <= TOL, "%s steer_multi: max diff %.3g at token %zu", fx, d[1], where / nv);

    /* steer_attn_last: 0.5 a1 v1 at attn_out of every layer, last position (the paper) */
    es_steer_set *sl = NULL;
    es_steer_set_create(&sl);
    it = item(ev, "v1", 0.5f * a1);
    it.hook = ES_HOOK_ATTN_OUT;
    it.positions = ES_STEER_POS_LAST;
    es_steer_set_add(sl, &it);
    d[2] = steered_logits(ctx, sl, tokens, n, nv, w_last, &where);
    CHECK(d[2] <= TOL, "%s steer_attn_last: max diff %.3g at token %zu", fx, d[2], where / nv);

    /* steer_block through a llama.cpp control vector on disk: direction.1 = a1 v1 */
    es_ev_set *one = NULL;
    es_ev_set_create(ne, ES_HOOK_BLOCK_OUT, &one);
    es_ev_set_put(one, "v1", 1, v1);
    char cvpath[600];
    snprintf(cvpath, sizeof cvpath, "%s/%s_cv.gguf", tmpdir, fx);
    es_ev_set *cv = NULL;
    es_steer_set *sc = NULL;
    es_steer_set_create(&sc);
    d[3] = INFINITY;
    if (CHECK(es_ev_set_export_control_vector(one, "v1", a1, false, cvpath) == ES_OK,
              "%s: export: %s", fx, es_last_error()) &&
        CHECK(es_ev_set_load(cvpath, NULL, &cv) == ES_OK, "%s: load cv: %s", fx, es_last_error())) {
        it = item(cv, "v1", 1.0f);
        CHECK(es_steer_set_add(sc, &it) == ES_OK, "%s: add cv: %s", fx, es_last_error());
        d[3] = steered_logits(ctx, sc, tokens, n, nv, w_block, &where);
        CHECK(d[3] <= TOL, "%s steer_block via control vector: max diff %.3g", fx, d[3]);
    }
    /* and through our own GGUF (single block_out emotion: llama.cpp-readable layout) */
    char evpath[600];
    snprintf(evpath, sizeof evpath, "%s/%s_ev.gguf", tmpdir, fx);
    es_ev_set *back = NULL;
    es_steer_set *so = NULL;
    es_steer_set_create(&so);
    double d_own = INFINITY;
    if (CHECK(es_ev_set_save(one, evpath) == ES_OK, "%s: save: %s", fx, es_last_error()) &&
        CHECK(es_ev_set_load(evpath, NULL, &back) == ES_OK, "%s: load: %s", fx, es_last_error())) {
        it = item(back, "v1", a1);
        es_steer_set_add(so, &it);
        d_own = steered_logits(ctx, so, tokens, n, nv, w_block, &where);
        CHECK(d_own <= TOL, "%s steer_block via emosteer GGUF: max diff %.3g", fx, d_own);
    }
    d[3] = fmax(d[3], d_own);
    es_steer_set_free(so);
    es_ev_set_free(back);
    /* detaching restores the plain model */
    es_context_set_steering(ctx, -1, NULL);
    const float *w_plain = ref_f32(ref, "logits", (size_t)n * nv);
    double dp = w_plain ? steered_logits(ctx, NULL, tokens, n, nv, w_plain, &where) : INFINITY;
    CHECK(dp <= TOL, "%s: after detaching, plain logits: max diff %.3g", fx, dp);

    printf("%-8s steer_block %.2e | steer_multi %.2e | steer_attn_last %.2e | via files %.2e "
           "| plain after detach %.2e | gen_steer %s\n",
           fx, d[0], d[1], d[2], d[3], dp, gen_ok ? "ok" : "FAIL");
    for (int k = 0; k < 4; k++)
        *worst = fmax(*worst, d[k]);

    /* attaching to a wrong model is refused */
    es_ev_set *bad = NULL;
    es_ev_set_create(ne, ES_HOOK_BLOCK_OUT, &bad);
    es_ev_set_put(bad, "v1", nl, v1);
    es_steer_set *sbad = NULL;
    es_steer_set_create(&sbad);
    it = item(bad, "v1", 1.0f);
    es_steer_set_add(sbad, &it);
    CHECK(es_context_set_steering(ctx, 0, sbad) == ES_ERR_INVALID_ARG, "%s: layer %d refused", fx,
          nl);
    CHECK(es_context_set_steering(ctx, 5, sb) == ES_ERR_RANGE, "%s: sequence 5 refused", fx);
    es_steer_set_free(sbad);
    es_ev_set_free(bad);

    es_steer_set_free(sb);
    es_steer_set_free(sm);
    es_steer_set_free(sl);
    es_steer_set_free(sc);
    es_ev_set_free(cv);
    es_ev_set_free(one);
    es_ev_set_free(ev);
done:
    es_context_free(ctx);
    es_gguf_close(ref);
    es_model_free(m);
}

/* Two sequences in one batch, each with its own steering, equal each decoded alone. */
static void test_two_sequences(void) {
    char mpath[1024], rpath[1024];
    snprintf(mpath, sizeof mpath, "%s/llama.f16.gguf", es_test_shared_path("fixtures"));
    snprintf(rpath, sizeof rpath, "%s/llama.ref.gguf", es_test_shared_path("fixtures"));
    es_model *m = NULL;
    es_gguf *ref = NULL;
    if (!CHECK(es_model_load(mpath, NULL, &m) == ES_OK && es_gguf_open(rpath, &ref) == ES_OK,
               "llama: %s", es_last_error())) {
        es_model_free(m);
        return;
    }
    es_model_info info;
    es_model_get_info(m, &info);
    const int nv = info.n_vocab, ne = info.n_embd, n = 12;
    const int32_t *tokens = es_gguf_find_tensor(ref, "tokens")->data;
    float a1 = 0;
    es_gguf_get_f32(ref, "reference.a1", &a1);
    const float *w_block = ref_f32(ref, "logits.steer_block", (size_t)40 * nv);
    const float *w_plain = ref_f32(ref, "logits", (size_t)40 * nv);
    es_ev_set *ev = NULL;
    es_ev_set_create(ne, ES_HOOK_BLOCK_OUT, &ev);
    es_ev_set_put(ev, "v1", 1, ref_f32(ref, "v1", (size_t)ne));
    es_steer_set *sb = NULL;
    es_steer_set_create(&sb);
    es_steer_item it = item(ev, "v1", a1);
    es_steer_set_add(sb, &it);

    es_context_params cp = es_context_default_params();
    cp.n_ctx = 64;
    cp.n_batch = 64;
    cp.n_seq_max = 2;
    cp.n_threads = 2;
    es_context *ctx = NULL;
    if (CHECK(es_context_create(m, &cp, &ctx) == ES_OK, "context: %s", es_last_error()) &&
        w_block && w_plain) {
        /* seq 0 steered, seq 1 plain, interleaved token by token in one batch */
        CHECK(es_context_set_steering(ctx, 0, sb) == ES_OK, "attach seq 0");
        int32_t tok[2 * n], seq[2 * n], pos[2 * n];
        int8_t lg[2 * n];
        for (int i = 0; i < n; i++)
            for (int s = 0; s < 2; s++) {
                tok[2 * i + s] = tokens[i];
                seq[2 * i + s] = s;
                pos[2 * i + s] = i;
                lg[2 * i + s] = 1;
            }
        es_batch b = {2 * n, tok, pos, seq, lg};
        double d0 = 0, d1 = 0;
        if (CHECK(es_decode(ctx, &b) == ES_OK, "decode: %s", es_last_error()))
            for (int i = 0; i < n; i++) {
                d0 = fmax(d0, es_test_maxdiff(es_get_logits(ctx, 2 * i), w_block + (size_t)i * nv,
                                              (size_t)nv, NULL));
                d1 = fmax(d1, es_test_maxdiff(es_get_logits(ctx, 2 * i + 1),
                                              w_plain + (size_t)i * nv, (size_t)nv, NULL));
            }
        printf("two sequences in one batch: steered seq %.2e, plain seq %.2e\n", d0, d1);
        CHECK(d0 <= TOL && d1 <= TOL, "per-sequence steering: %.3g / %.3g", d0, d1);
    }
    es_context_free(ctx);
    es_steer_set_free(sb);
    es_ev_set_free(ev);
    es_gguf_close(ref);
    es_model_free(m);
}

int main(void) {
    test_combination();
    test_apply();
    bench_apply();
    if (es_test_shared() == NULL) {
        printf("skip fixtures: no shared folder\n");
        return es_test_finish();
    }
    char tmpdir[] = "/tmp/es_test_steer_XXXXXX";
    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    double worst = 0;
    for (size_t i = 0; i < sizeof fixtures / sizeof fixtures[0]; i++)
        test_fixture(fixtures[i], tmpdir, &worst);
    printf("worst steering difference over all fixtures: %.2e (tolerance %.0e)\n", worst, TOL);
    test_two_sequences();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return es_test_finish();
}
