/*
 * steer_state.c — the per-context steering state and its application in the forward
 * pass. The steer layer (steer/steer.c) compiles a steering set into an
 * es_steer_compiled: per (hook, policy) a [n_layer][n_embd] table of combined vectors
 * sum_k alpha_k * v_k plus a per-layer bit mask of the policies present.
 * es_steer_apply then adds, per token, the rows of the policies that hold for that
 * token: one pass over the batch per steered layer.
 */
#include "steer_state.h"

#include "common.h"
#include "context.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct es_steer_state {
    int n_seq, n_layer, n_embd;
    es_steer_compiled **seq;        /* [n_seq] shared, NULL = not steered */
    int32_t *prompt_len;            /* [n_seq] set by the caller, -1 = automatic */
    int32_t *auto_prompt_len;       /* [n_seq] from the latest batch holding position 0;
                                       INT32_MAX = not seen (every position is prompt) */
    uint8_t *active[ES_HOOK_COUNT]; /* [n_layer] some sequence steers here */
    int32_t *last_idx;              /* [n_seq] scratch: last batch index of each sequence */
    int32_t *has_pos0;              /* [n_seq] scratch: the batch holds position 0 */
};

void es_steer_compiled_free(es_steer_compiled *c) {
    if (c == NULL) return;
    for (int h = 0; h < ES_HOOK_COUNT; h++) {
        for (int p = 0; p < ES_STEER_POS_COUNT; p++)
            free(c->vec[h][p]);
        free(c->mask[h]);
    }
    free(c);
}

static void compiled_release(es_steer_compiled *c) {
    if (c && --c->refs == 0) es_steer_compiled_free(c);
}

es_status es_steer_state_create(int n_seq, int n_layer, int n_embd, struct es_steer_state **out) {
    if (out == NULL || n_seq <= 0 || n_layer <= 0 || n_embd <= 0)
        return es_error(ES_ERR_INVALID_ARG, "steer: state of %d sequences, %d layers, width %d",
                        n_seq, n_layer, n_embd);
    struct es_steer_state *st = es_calloc(1, sizeof *st);
    if (st == NULL) return ES_ERR_NOMEM;
    st->n_seq = n_seq;
    st->n_layer = n_layer;
    st->n_embd = n_embd;
    st->seq = es_calloc((size_t)n_seq, sizeof *st->seq);
    st->prompt_len = es_calloc((size_t)n_seq, sizeof *st->prompt_len);
    st->auto_prompt_len = es_calloc((size_t)n_seq, sizeof *st->auto_prompt_len);
    st->last_idx = es_calloc((size_t)n_seq, sizeof *st->last_idx);
    st->has_pos0 = es_calloc((size_t)n_seq, sizeof *st->has_pos0);
    bool ok = st->seq && st->prompt_len && st->auto_prompt_len && st->last_idx && st->has_pos0;
    for (int h = 0; h < ES_HOOK_COUNT; h++)
        ok = ok && (st->active[h] = es_calloc((size_t)n_layer, 1)) != NULL;
    if (!ok) {
        es_steer_state_free(st);
        return es_error(ES_ERR_NOMEM, "steer: out of memory creating the state");
    }
    for (int s = 0; s < n_seq; s++) {
        st->prompt_len[s] = -1;
        st->auto_prompt_len[s] = INT32_MAX;
    }
    *out = st;
    return ES_OK;
}

void es_steer_state_free(struct es_steer_state *st) {
    if (st == NULL) return;
    if (st->seq)
        for (int s = 0; s < st->n_seq; s++)
            compiled_release(st->seq[s]);
    free(st->seq);
    free(st->prompt_len);
    free(st->auto_prompt_len);
    free(st->last_idx);
    free(st->has_pos0);
    for (int h = 0; h < ES_HOOK_COUNT; h++)
        free(st->active[h]);
    free(st);
}

int es_steer_state_n_seq(const struct es_steer_state *st) {
    return st->n_seq;
}
int es_steer_state_n_layer(const struct es_steer_state *st) {
    return st->n_layer;
}
int es_steer_state_n_embd(const struct es_steer_state *st) {
    return st->n_embd;
}

/* Recomputes the per-layer "some sequence steers here" flags. */
static void refresh_active(struct es_steer_state *st) {
    for (int h = 0; h < ES_HOOK_COUNT; h++) {
        memset(st->active[h], 0, (size_t)st->n_layer);
        for (int s = 0; s < st->n_seq; s++) {
            const es_steer_compiled *c = st->seq[s];
            if (c == NULL || c->mask[h] == NULL) continue;
            for (int l = 0; l < st->n_layer; l++)
                st->active[h][l] |= c->mask[h][l];
        }
    }
}

es_status es_steer_state_attach(struct es_steer_state *st, int seq, es_steer_compiled *c) {
    if (st == NULL) {
        es_steer_compiled_free(c);
        return es_error(ES_ERR_INVALID_ARG, "steer: attach: state is NULL");
    }
    if (seq >= st->n_seq) {
        es_steer_compiled_free(c);
        return es_error(ES_ERR_RANGE, "steer: sequence %d is outside [0, %d)", seq, st->n_seq);
    }
    int s0 = seq < 0 ? 0 : seq, s1 = seq < 0 ? st->n_seq : seq + 1;
    for (int s = s0; s < s1; s++) {
        compiled_release(st->seq[s]);
        st->seq[s] = c;
        if (c) c->refs++;
    }
    refresh_active(st);
    return ES_OK;
}

es_status es_steer_state_set_prompt_len(struct es_steer_state *st, int seq, int n_prompt) {
    if (st == NULL) return es_error(ES_ERR_INVALID_ARG, "steer: prompt_len: state is NULL");
    if (seq >= st->n_seq)
        return es_error(ES_ERR_RANGE, "steer: sequence %d is outside [0, %d)", seq, st->n_seq);
    int s0 = seq < 0 ? 0 : seq, s1 = seq < 0 ? st->n_seq : seq + 1;
    for (int s = s0; s < s1; s++)
        st->prompt_len[s] = n_prompt < 0 ? -1 : n_prompt;
    return ES_OK;
}

bool es_steer_active(const struct es_steer_state *st, es_hook_point hp, int layer) {
    return st != NULL && (int)hp >= 0 && hp < ES_HOOK_COUNT && layer >= 0 && layer < st->n_layer &&
           st->active[hp][layer] != 0;
}

/* x[n] += v[n] */
static void vec_add(float *restrict x, const float *restrict v, int n) {
    for (int i = 0; i < n; i++)
        x[i] += v[i];
}

static double vec_norm(const float *x, int n) {
    double s = 0.0;
    for (int i = 0; i < n; i++)
        s += (double)x[i] * x[i];
    return sqrt(s);
}

void es_steer_apply(struct es_steer_state *st, es_hook_point hp, int layer, float *x, int n_tokens,
                    int n_embd, const es_batch *batch) {
    if (st == NULL || x == NULL || batch == NULL || n_tokens <= 0 || n_embd != st->n_embd) return;
    /* one pass over the batch: last token of each sequence, and whether the batch
     * (re)starts a sequence at position 0, which fixes its automatic prompt length */
    for (int s = 0; s < st->n_seq; s++) {
        st->last_idx[s] = -1;
        st->has_pos0[s] = 0;
    }
    for (int t = 0; t < n_tokens; t++) {
        int s = batch->seq ? batch->seq[t] : 0;
        if (s < 0 || s >= st->n_seq) continue;
        st->last_idx[s] = t;
        if (batch->pos && batch->pos[t] == 0) st->has_pos0[s] = 1;
    }
    for (int s = 0; s < st->n_seq; s++)
        if (st->has_pos0[s] && batch->pos) st->auto_prompt_len[s] = batch->pos[st->last_idx[s]] + 1;

    if (!es_steer_active(st, hp, layer)) return;
    for (int t = 0; t < n_tokens; t++) {
        int s = batch->seq ? batch->seq[t] : 0;
        if (s < 0 || s >= st->n_seq) continue;
        const es_steer_compiled *c = st->seq[s];
        if (c == NULL || c->mask[hp] == NULL) continue;
        unsigned m = c->mask[hp][layer];
        if (m == 0) continue;
        int32_t pos = batch->pos ? batch->pos[t] : 0;
        int32_t n_prompt = st->prompt_len[s] >= 0 ? st->prompt_len[s] : st->auto_prompt_len[s];
        unsigned want = 1u << ES_STEER_POS_ALL;
        want |= pos < n_prompt ? 1u << ES_STEER_POS_PROMPT : 1u << ES_STEER_POS_GENERATED;
        if (st->last_idx[s] == t) want |= 1u << ES_STEER_POS_LAST;
        m &= want;
        if (m == 0) continue;
        float *xt = x + (size_t)t * n_embd;
        double before = c->preserve_norm ? vec_norm(xt, n_embd) : 0.0;
        for (int p = 0; p < ES_STEER_POS_COUNT; p++)
            if (m & (1u << p)) vec_add(xt, c->vec[hp][p] + (size_t)layer * n_embd, n_embd);
        if (c->preserve_norm) {
            double after = vec_norm(xt, n_embd);
            if (after > 0.0) {
                float scale = (float)(before / after);
                for (int i = 0; i < n_embd; i++)
                    xt[i] *= scale;
            }
        }
    }
}

/* ---- public setters on a context ---- */

es_status es_context_steer_state(es_context *ctx, struct es_steer_state **out) {
    if (ctx->steer == NULL) {
        es_status st = es_steer_state_create(ctx->params.n_seq_max, ctx->model->cfg.n_layer,
                                             ctx->model->cfg.n_embd, &ctx->steer);
        if (st != ES_OK) return st;
    }
    *out = ctx->steer;
    return ES_OK;
}

es_status es_context_set_prompt_len(es_context *ctx, int seq, int n_prompt) {
    if (ctx == NULL) return es_error(ES_ERR_INVALID_ARG, "steer: context is NULL");
    if (seq >= ctx->params.n_seq_max)
        return es_error(ES_ERR_RANGE, "steer: sequence %d is outside [0, %d)", seq,
                        ctx->params.n_seq_max);
    struct es_steer_state *state = NULL;
    es_status st = es_context_steer_state(ctx, &state);
    if (st != ES_OK) return st;
    return es_steer_state_set_prompt_len(state, seq, n_prompt);
}
