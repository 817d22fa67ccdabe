/*
 * moe.c — the mixture-of-experts FFN (moe.h), as llama.cpp's build_moe_ffn with
 * softmax gating and normalised weights (what Qwen3-MoE and Mixtral use):
 *
 *   p[t]      = softmax(h[t]·Wrouterᵀ)                    over all n_expert experts
 *   sel[t]    = the n_expert_used largest p[t][e], best first
 *   w[t][j]   = p[t][sel[t][j]] / max(Σ_j p[t][sel[t][j]], 2^-14)
 *   out[t]    = Σ_j w[t][j] · down_e(silu(gate_e(h[t])) · up_e(h[t])),  e = sel[t][j]
 *
 * Each expert runs only on the tokens routed to it: the (token, slot) pairs are grouped
 * by expert (rows in expert order, a token's rows in batch order within), the rows of h
 * are gathered, and every expert multiplies its own rows: gate and up of all experts in
 * one es_matmul_groups (one conversion pass, one pass of the pool over the rows of every
 * expert's matrices), act(gate)·up in one pass, down the same way; then each token adds
 * its experts' weighted outputs into out[t] in ascending expert order. A token meets its
 * experts in that order whatever else is in the batch, and the router dot products are
 * per token, so the routing and the sum of a token do not depend on the batch (up to the
 * matmul kernel chosen for the number of rows, as for the dense FFN; none in the
 * batch-invariant mode).
 */
#include "moe.h"

#include "matmul.h"
#include "ops.h"
#include "types.h"

#include <math.h>
#include <string.h>

/* ---- routing -------------------------------------------------------------------------- */

typedef struct {
    es_context *ctx;
    const es_matrix *router; /* [n_expert][n_embd], vec_dot_type F32 */
    int n_tok;
} route_args;

/* probs[t] = the router's logits for token t, one dot product per expert. */
static void router_task(void *p, int ith, int nth) {
    const route_args *a = p;
    const es_config *c = &a->ctx->model->cfg;
    const es_type_traits *tt = es_type_get(a->router->type);
    const size_t row = es_row_size(a->router->type, c->n_embd);
    int64_t t0, t1;
    es_op_split(a->n_tok, ith, nth, &t0, &t1);
    for (int64_t t = t0; t < t1; t++) {
        const float *h = a->ctx->rs.xb + (size_t)t * c->n_embd;
        float *logit = a->ctx->rs.moe_probs + (size_t)t * c->n_expert;
        for (int e = 0; e < c->n_expert; e++)
            tt->vec_dot(c->n_embd, &logit[e], (const uint8_t *)a->router->data + (size_t)e * row,
                        h);
    }
}

/* Softmax of n logits in place, as ggml_soft_max: exp(x - max) summed in double, times
 * the float reciprocal of the sum. */
static void softmax(float *x, int n) {
    float max = -INFINITY;
    for (int i = 0; i < n; i++)
        max = fmaxf(max, x[i]);
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
        x[i] = expf(x[i] - max);
        sum += (double)x[i];
    }
    const float inv = (float)(1.0 / sum);
    for (int i = 0; i < n; i++)
        x[i] *= inv;
}

/* sel[0..k) = indices of the k largest of p[0..n), best first (ties: lower index). */
static void top_k(const float *p, int n, int k, int32_t *sel) {
    for (int j = 0; j < k; j++) {
        int best = -1;
        for (int e = 0; e < n; e++) {
            bool taken = false;
            for (int i = 0; i < j && !taken; i++)
                taken = sel[i] == e;
            if (!taken && (best < 0 || p[e] > p[best])) best = e;
        }
        sel[j] = best;
    }
}

/* Routing of rows [t0, t1): probabilities, top-k, renormalised weights. */
static void select_task(void *p, int ith, int nth) {
    const route_args *a = p;
    const es_config *c = &a->ctx->model->cfg;
    es_run_state *rs = &a->ctx->rs;
    const int k = c->n_expert_used;
    int64_t t0, t1;
    es_op_split(a->n_tok, ith, nth, &t0, &t1);
    for (int64_t t = t0; t < t1; t++) {
        float *prob = rs->moe_probs + (size_t)t * c->n_expert;
        int32_t *sel = rs->moe_sel + (size_t)t * k;
        float *w = rs->moe_w + (size_t)t * k;
        softmax(prob, c->n_expert);
        top_k(prob, c->n_expert, k, sel);
        double sum = 0.0;
        for (int j = 0; j < k; j++)
            sum += (double)(w[j] = prob[sel[j]]);
        const float s =
            fmaxf((float)sum, 6.103515625e-5f); /* llama.cpp's clamp: the smallest normal f16 */
        for (int j = 0; j < k; j++)
            w[j] /= s;
    }
}

/* ---- the experts ---------------------------------------------------------------------- */

/* Groups the (token, slot) pairs by expert: moe_tok[moe_off[e] ..] are the tokens of
 * expert e in batch order, moe_wt their weights; moe_row[t * k + j] is the row of token t's
 * slot j. */
static void group_by_expert(es_context *ctx, int n_tok) {
    const es_config *c = &ctx->model->cfg;
    es_run_state *rs = &ctx->rs;
    const int k = c->n_expert_used;
    memset(rs->moe_off, 0, (size_t)(c->n_expert + 1) * sizeof *rs->moe_off);
    for (int i = 0; i < n_tok * k; i++)
        rs->moe_off[rs->moe_sel[i] + 1]++;
    for (int e = 0; e < c->n_expert; e++)
        rs->moe_off[e + 1] += rs->moe_off[e];
    memcpy(rs->moe_next, rs->moe_off, (size_t)c->n_expert * sizeof *rs->moe_next);
    for (int t = 0; t < n_tok; t++)
        for (int j = 0; j < k; j++) {
            const int e = rs->moe_sel[(size_t)t * k + j], r = rs->moe_next[e]++;
            rs->moe_tok[r] = t;
            rs->moe_wt[r] = rs->moe_w[(size_t)t * k + j];
            rs->moe_row[(size_t)t * k + j] = r;
        }
}

/* Expert e's matrix of a 3-D expert tensor. */
static const uint8_t *expert(const es_experts *x, int e) {
    return (const uint8_t *)x->m.data + (size_t)e * x->stride;
}

typedef struct {
    es_context *ctx;
    int n_rows; /* n_tok * k */
    int n_tok;
} rows_args;

/* moe_x[r] = xb[moe_tok[r]] for every row. */
static void gather_task(void *p, int ith, int nth) {
    const rows_args *a = p;
    es_run_state *rs = &a->ctx->rs;
    const int d = a->ctx->model->cfg.n_embd;
    int64_t r0, r1;
    es_op_split(a->n_rows, ith, nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++)
        memcpy(rs->moe_x + (size_t)r * d, rs->xb + (size_t)rs->moe_tok[r] * d,
               (size_t)d * sizeof(float));
}

/* out[t] = Σ over t's experts, ascending, of w · moe_y[row]; the rows are grouped by expert
 * in ascending order, so ascending rows are ascending experts. Tokens split over threads. */
static void scatter_task(void *p, int ith, int nth) {
    const rows_args *a = p;
    es_run_state *rs = &a->ctx->rs;
    const es_config *c = &a->ctx->model->cfg;
    const int d = c->n_embd, k = c->n_expert_used;
    int64_t t0, t1;
    es_op_split(a->n_tok, ith, nth, &t0, &t1);
    for (int64_t t = t0; t < t1; t++) {
        int32_t row[ES_MAX_EXPERT_USED];
        for (int j = 0; j < k; j++) { /* insertion sort of k <= ES_MAX_EXPERT_USED rows */
            const int32_t r = rs->moe_row[(size_t)t * k + j];
            int i = j;
            for (; i > 0 && row[i - 1] > r; i--)
                row[i] = row[i - 1];
            row[i] = r;
        }
        float *o = rs->out + (size_t)t * d;
        memset(o, 0, (size_t)d * sizeof(float));
        for (int j = 0; j < k; j++) {
            const float w = rs->moe_wt[row[j]];
            const float *y = rs->moe_y + (size_t)row[j] * d;
            for (int i = 0; i < d; i++)
                o[i] += w * y[i];
        }
    }
}

void es_moe_ffn(es_context *ctx, int il, int n_tok) {
    const es_config *c = &ctx->model->cfg;
    const es_layer_weights *L = &ctx->model->w.layers[il];
    es_run_state *rs = &ctx->rs;
    const int E = c->n_expert, n_rows = n_tok * c->n_expert_used;

    /* p = softmax(h·Wrouterᵀ); sel = top-k(p); w = p[sel] / Σ p[sel] */
    route_args ra = {ctx, &L->ffn_gate_inp, n_tok};
    if (es_type_get(L->ffn_gate_inp.type)->vec_dot_type == ES_TYPE_F32)
        es_op_run(ctx, router_task, &ra, (int64_t)n_tok * c->n_expert * c->n_embd);
    else /* a quantized router: activations are converted once per batch */
        es_op_matmul(ctx, &L->ffn_gate_inp, rs->xb, n_tok, rs->moe_probs);
    es_op_run(ctx, select_task, &ra, (int64_t)n_tok * c->n_expert * c->n_expert_used);
    group_by_expert(ctx, n_tok);

    /* x = the rows of h, grouped by expert */
    rows_args a = {ctx, n_rows, n_tok};
    es_op_run(ctx, gather_task, &a, (int64_t)n_rows * c->n_embd);
    /* gate_e, up_e = x_e·W_gate,eᵀ, x_e·W_up,eᵀ for every expert e on its rows */
    es_matmul_group *g = rs->moe_groups; /* [2 * E] */
    int ng = 0;
    for (int e = 0; e < E; e++) {
        const int r0 = rs->moe_off[e], cnt = rs->moe_off[e + 1] - r0;
        if (cnt == 0) continue;
        const float *x = rs->moe_x + (size_t)r0 * c->n_embd;
        g[ng++] = (es_matmul_group){L->ffn_gate_exps.m.type,
                                    expert(&L->ffn_gate_exps, e),
                                    c->n_ff_exp,
                                    x,
                                    cnt,
                                    rs->moe_gate + (size_t)r0 * c->n_ff_exp};
        g[ng++] = (es_matmul_group){L->ffn_up_exps.m.type,
                                    expert(&L->ffn_up_exps, e),
                                    c->n_ff_exp,
                                    x,
                                    cnt,
                                    rs->moe_up + (size_t)r0 * c->n_ff_exp};
    }
    es_op_matmul_groups(ctx, g, ng, c->n_embd);
    /* u = act(gate) · up, every row */
    es_op_glu(ctx, rs->moe_up, rs->moe_gate, rs->moe_up, n_rows, c->n_ff_exp);
    /* y_e = u_e·W_down,eᵀ */
    ng = 0;
    for (int e = 0; e < E; e++) {
        const int r0 = rs->moe_off[e], cnt = rs->moe_off[e + 1] - r0;
        if (cnt == 0) continue;
        g[ng++] = (es_matmul_group){L->ffn_down_exps.m.type,
                                    expert(&L->ffn_down_exps, e),
                                    c->n_embd,
                                    rs->moe_up + (size_t)r0 * c->n_ff_exp,
                                    cnt,
                                    rs->moe_y + (size_t)r0 * c->n_embd};
    }
    es_op_matmul_groups(ctx, g, ng, c->n_ff_exp);
    /* out[t] = Σ_j w · y[row of (t, j)], experts ascending */
    es_op_run(ctx, scatter_task, &a, (int64_t)n_tok * c->n_embd * c->n_expert_used);
}
