/*
 * forward.c — es_decode: the decoder forward pass over a batch of tokens from any
 * mix of sequences, in f32, reading weights in place.
 *
 *   x = embed(tokens) * embd_scale
 *   for each layer l:
 *       h   = rmsnorm(x, attn_norm)
 *       q,k,v = h·Wqᵀ (+bq), h·Wkᵀ (+bk), h·Wvᵀ (+bv)       (fused: one h·Wqkvᵀ)
 *             (MiniCPM3: through low-rank latents, mla.c)
 *       q,k = rmsnorm_per_head(q, k)                         (Qwen3, Gemma 3)
 *       q,k = rope(q, k, pos)
 *       cache[l][seq][pos] = k, v
 *       a   = softmax(softcap(scale · q·Kᵀ) + alibi + causal/sliding mask) · V   per head, GQA
 *       o   = a·Woᵀ (+bo)                                    -> hook ATTN_OUT
 *       o   = rmsnorm(o, post_attention_norm)               (Gemma 2/3)
 *       x  += o · residual_scale                             (MiniCPM: from the file; MiniCPM3:
 * scale_depth/√n_layer) h   = rmsnorm(x, ffn_norm) m   = (act(h·Wgateᵀ) * h·Wupᵀ)·Wdownᵀ -> hook
 * MLP_OUT (mixture of experts: Σ_k w_k · expert_k(h) over the routed top-k, moe.c) m   = rmsnorm(m,
 * post_ffw_norm)                     (Gemma 2/3) x  += m · residual_scale -> hook BLOCK_OUT logits
 * = softcap(lmhead_scale · rmsnorm(x, output_norm)·Woutᵀ / logit_scale)   only rows that ask
 *
 * At each hook point steering (ctx->steer) is applied first, then the user hook.
 * Ops are small functions split over the context's thread pool by rows
 * (fn(arg, ith, nth)); matrix products go through es_matmul. The attention itself
 * (the two algorithms, by KV cache type) is attention.c; the checks on the batch
 * before anything runs are batch.c.
 */
#include "attention.h"
#include "batch.h"
#include "context.h"
#include "mla.h"
#include "moe.h"
#include "ops.h"

#include "matmul.h"
#include "steer_state.h"
#include "types.h"
#include "vecops.h"

#include <math.h>
#include <string.h>

/* Below this many floats of work an op runs on the calling thread only. */
#define ES_PAR_MIN_WORK 8192

static void run_op(es_context *ctx, es_task_fn fn, void *arg, int64_t work) {
    if (work < ES_PAR_MIN_WORK)
        fn(arg, 0, 1);
    else
        es_threadpool_run(ctx->tp, fn, arg);
}

/* Rows [r0, r1) of n rows for thread ith of nth. */
static void split_rows(int64_t n, int ith, int nth, int64_t *r0, int64_t *r1) {
    int64_t per = (n + nth - 1) / nth;
    *r0 = ES_MIN(n, per * ith);
    *r1 = ES_MIN(n, *r0 + per);
}

/* ---- RMSNorm: out = x / sqrt(mean(x²) + eps) * w, row by row --------------------- */

/* The squares are rounded to float and summed in double, the mean and the scale are
 * float, and out = (x·scale)·w, all as llama.cpp's CPU backend computes them. */
static void rmsnorm_row(float *out, const float *x, const float *w, int n, float eps) {
    double sum = 0.0;
    for (int i = 0; i < n; i++)
        sum += (double)(x[i] * x[i]);
    const float mean = (float)(sum / n);
    const float scale = 1.0f / sqrtf(mean + eps);
    for (int i = 0; i < n; i++)
        out[i] = (x[i] * scale) * w[i];
}

typedef struct {
    float *out;     /* [n_rows][n] (may equal x) */
    const float *x; /* [n_rows][n] */
    const float *w; /* [n] */
    int64_t n_rows;
    int n;
    float eps;
} rmsnorm_args;

static void rmsnorm_task(void *p, int ith, int nth) {
    const rmsnorm_args *a = p;
    int64_t r0, r1;
    split_rows(a->n_rows, ith, nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++)
        rmsnorm_row(a->out + r * a->n, a->x + r * a->n, a->w, a->n, a->eps);
}

static void rmsnorm(es_context *ctx, float *out, const float *x, const float *w, int64_t n_rows,
                    int n) {
    rmsnorm_args a = {out, x, w, n_rows, n, ctx->model->cfg.norm_eps};
    run_op(ctx, rmsnorm_task, &a, n_rows * n);
}

/* ---- bias: y[t] += b ---------------------------------------------------------------- */

static void add_bias(float *y, const float *b, int n_tok, int n) {
    if (!b) return;
    for (int t = 0; t < n_tok; t++)
        for (int i = 0; i < n; i++)
            y[(size_t)t * n + i] += b[i];
}

/* ---- RoPE -------------------------------------------------------------------------- */

/* cs[t][i] = (cos, sin)(angle_i(pos[t])) * attn_factor, as es_rope_freqs describes. */
static void rope_angles(float *cs, const int32_t *pos, int n_tok, const es_rope_freqs *f,
                        int n_half, float attn_factor) {
    for (int t = 0; t < n_tok; t++) {
        float theta = (float)pos[t];
        for (int i = 0; i < n_half; i++) {
            const float angle = f->pos_scale * (f->factors ? theta / f->factors[i] : theta);
            cs[((size_t)t * n_half + i) * 2 + 0] = cosf(angle) * attn_factor;
            cs[((size_t)t * n_half + i) * 2 + 1] = sinf(angle) * attn_factor;
            theta *= f->theta_scale;
        }
    }
}

typedef struct {
    float *x;        /* [n_tok][n_heads][head_dim] */
    const float *cs; /* [n_tok][n_rot/2][2] */
    int n_tok, n_heads, head_dim, n_rot;
    es_rope_style style;
} rope_args;

/* Rotates the pairs of the first n_rot dims of every head: (2i, 2i+1) for NORM,
 * (i, i + n_rot/2) for NEOX, by the angle of frequency i. */
static void rope_task(void *p, int ith, int nth) {
    const rope_args *a = p;
    const int n_half = a->n_rot / 2;
    const int stride = a->style == ES_ROPE_NEOX ? 1 : 2;     /* distance between pair starts */
    const int other = a->style == ES_ROPE_NEOX ? n_half : 1; /* offset of a pair's 2nd element */
    int64_t r0, r1;
    split_rows((int64_t)a->n_tok * a->n_heads, ith, nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        const int64_t t = r / a->n_heads;
        float *h = a->x + r * a->head_dim;
        const float *cs = a->cs + t * n_half * 2;
        for (int i = 0; i < n_half; i++) {
            const float c = cs[2 * i], s = cs[2 * i + 1];
            float *x0 = h + i * stride, *x1 = x0 + other;
            const float v0 = *x0, v1 = *x1;
            /* fused as llama.cpp's x86 build computes them */
            *x0 = fmaf(v0, c, -(v1 * s));
            *x1 = fmaf(v0, s, v1 * c);
        }
    }
}

static void rope(es_context *ctx, float *x, const float *cs, int n_tok, int n_heads) {
    const es_config *c = &ctx->model->cfg;
    if (c->n_rot == 0) return;
    rope_args a = {x, cs, n_tok, n_heads, c->head_dim, c->n_rot, c->arch->rope};
    run_op(ctx, rope_task, &a, (int64_t)n_tok * n_heads * c->n_rot);
}

/* ---- matmul shorthand: y[n_tok][W.n_out] = x · Wᵀ ------------------------------------ */

/* y_i = x · W_iᵀ for the n matrices of parts that multiply the same x (one conversion of x,
 * one pass of the pool where they share a type). */
void es_op_matmul_parts(es_context *ctx, const es_matrix *const *W, float *const *y, int n,
                        const float *x, int n_tok) {
    es_matmul_part parts[ES_MATMUL_MAX_PARTS];
    for (int i = 0; i < n; i++)
        parts[i] = (es_matmul_part){W[i]->type, W[i]->data, W[i]->n_out, y[i]};
    es_matmul_parts(ctx->tp, parts, n, W[0]->n_in, x, n_tok, ctx->rs.wsp,
                    ctx->params.numerics == ES_NUMERICS_LLAMACPP, ctx->params.batch_invariant);
}

/* y = x · Wᵀ */
static void matmul(es_context *ctx, const es_matrix *W, const float *x, int n_tok, float *y) {
    es_op_matmul_parts(ctx, &W, &y, 1, x, n_tok);
}

void es_op_matmul_groups(es_context *ctx, const es_matmul_group *g, int n, int64_t n_in) {
    es_matmul_groups(ctx->tp, g, n, n_in, ctx->rs.wsp, ctx->params.numerics == ES_NUMERICS_LLAMACPP,
                     ctx->params.batch_invariant);
}

/* x += o, the residual add. */
static void add_residual(float *x, const float *o, size_t n) {
    for (size_t i = 0; i < n; i++)
        x[i] += o[i];
}

/* ---- gated MLP activation: hb = act(gate) * up --------------------------------------- */

static inline float gelu_tanh(float x) {
    const float k = 0.7978845608028654f; /* sqrt(2/pi) */
    return 0.5f * x * (1.0f + tanhf(k * (x + 0.044715f * x * x * x)));
}

typedef struct {
    float *hb;         /* [n_tok][n_ff] out */
    const float *gate; /* row t at gate + t * stride */
    const float *up;   /* row t at up + t * stride */
    int64_t stride;    /* floats between rows of gate and of up (n_ff, or 2*n_ff fused) */
    int n_tok, n_ff;
    es_ffn_act act; /* SiLU (vectorized as llama.cpp's AVX2 swiglu computes it) or GELU(tanh) */
} glu_args;

static void glu_task(void *p, int ith, int nth) {
    const glu_args *a = p;
    int64_t r0, r1;
    split_rows(a->n_tok, ith, nth, &r0, &r1);
    for (int64_t t = r0; t < r1; t++) {
        const float *g = a->gate + t * a->stride, *u = a->up + t * a->stride;
        float *o = a->hb + t * a->n_ff;
        if (a->act == ES_ACT_GELU_TANH)
            for (int i = 0; i < a->n_ff; i++)
                o[i] = gelu_tanh(g[i]) * u[i];
        else
            es_vecops_get()->silu_mul(g, u, o, a->n_ff);
    }
}

/* ---- the ops other parts of the pass use (ops.h) ---------------------------------------- */

void es_op_run(es_context *ctx, es_task_fn fn, void *arg, int64_t work) {
    run_op(ctx, fn, arg, work);
}

void es_op_rmsnorm(es_context *ctx, float *out, const float *x, const float *w, int64_t n_rows,
                   int n) {
    rmsnorm(ctx, out, x, w, n_rows, n);
}

void es_op_matmul(es_context *ctx, const es_matrix *W, const float *x, int n_tok, float *y) {
    matmul(ctx, W, x, n_tok, y);
}

void es_op_glu(es_context *ctx, float *hb, const float *gate, const float *up, int n_tok,
               int n_ff) {
    glu_args ga = {hb, gate, up, n_ff, n_tok, n_ff, ctx->model->cfg.arch->act};
    run_op(ctx, glu_task, &ga, (int64_t)n_tok * n_ff);
}

/* x *= s (a residual branch's scale, MiniCPM). */
static void scale_rows(float *x, float s, size_t n) {
    if (s == 1.0f) return;
    for (size_t i = 0; i < n; i++)
        x[i] *= s;
}

/* ---- hooks -------------------------------------------------------------------------- */

static void hook_point(es_context *ctx, es_hook_point hp, int layer, float *x, const es_batch *b) {
    const int n_embd = ctx->model->cfg.n_embd;
    if (ctx->steer) es_steer_apply(ctx->steer, hp, layer, x, b->n_tokens, n_embd, b);
    if (ctx->hook) ctx->hook(ctx->hook_user, hp, layer, x, b->n_tokens, n_embd, b);
}

/* ---- embedding and output ---------------------------------------------------------- */

/* x[t] = token_embd[token[t]] * embd_scale (rows dequantized to f32). */
static void embed(es_context *ctx, const es_batch *b) {
    const es_config *c = &ctx->model->cfg;
    const es_matrix *E = &ctx->model->w.token_embd;
    const es_to_float_fn to_float = es_type_get(E->type)->to_float;
    const size_t row = es_row_size(E->type, c->n_embd);
    for (int t = 0; t < b->n_tokens; t++) {
        float *x = ctx->rs.x + (size_t)t * c->n_embd;
        to_float((const uint8_t *)E->data + (size_t)b->token[t] * row, x, c->n_embd);
        if (c->embd_scale != 1.0f)
            for (int i = 0; i < c->n_embd; i++)
                x[i] *= c->embd_scale;
    }
}

/* logits[r] = softcap(rmsnorm(x[out_rows[r]], output_norm)·Woutᵀ) for r < n_out. */
static void output_logits(es_context *ctx, int n_out) {
    const es_config *c = &ctx->model->cfg;
    es_run_state *rs = &ctx->rs;
    for (int r = 0; r < n_out; r++)
        rmsnorm_row(rs->xb + (size_t)r * c->n_embd, rs->x + (size_t)rs->out_rows[r] * c->n_embd,
                    ctx->model->w.output_norm, c->n_embd, c->norm_eps);
    scale_rows(rs->xb, c->lmhead_scale, (size_t)n_out * c->n_embd);
    matmul(ctx, &ctx->model->w.output, rs->xb, n_out, ctx->logits);
    if (c->logit_scale !=
        1.0f) { /* MiniCPM: logits / logit_scale, as llama.cpp's scale by the inverse */
        const float inv = 1.0f / c->logit_scale;
        const size_t n = (size_t)n_out * c->n_vocab;
        for (size_t i = 0; i < n; i++)
            ctx->logits[i] *= inv;
    }
    if (c->final_softcap > 0.0f) {
        const size_t n = (size_t)n_out * c->n_vocab;
        for (size_t i = 0; i < n; i++)
            ctx->logits[i] = es_softcap(ctx->logits[i], c->final_softcap);
    }
}

/* The first of the n_out rows whose logits are not all finite, or whose hidden state
 * overflowed (its mean square, summed in float as every rmsnorm does, is Inf: the norms
 * then scale it to zeros and the logits come out flat, a silent <unk>), as an
 * ES_ERR_FORMAT naming the batch token, its position and sequence; ES_OK when all are
 * fine. O(n_vocab + n_embd) per row. */
static es_status check_logits(const es_context *ctx, int n_out) {
    const es_run_state *rs = &ctx->rs;
    const size_t n_vocab = (size_t)ctx->model->cfg.n_vocab, n_embd = (size_t)ctx->model->cfg.n_embd;
    for (int r = 0; r < n_out; r++) {
        const float *row = ctx->logits + (size_t)r * n_vocab;
        const float *x = rs->x + (size_t)rs->out_rows[r] * n_embd;
        float bad = 0.0f, ss = 0.0f;
        for (size_t i = 0; i < n_vocab; i++)
            bad += row[i] * 0.0f; /* NaN iff some entry is NaN or Inf */
        for (size_t i = 0; i < n_embd; i++)
            ss += x[i] * x[i];
        if (bad == 0.0f && isfinite(ss)) continue;
        const int t = rs->out_rows[r];
        return es_error(ES_ERR_FORMAT,
                        "decode: non-finite logits at batch token %d (position %d of sequence %d): "
                        "the weights or "
                        "the steering vectors produce NaN/Inf",
                        t, rs->pos[t], rs->seq[t]);
    }
    return ES_OK;
}

/* ---- one decoder block ---------------------------------------------------------------- */

/* q, k, v = the three column ranges of each row of the fused projection rs.qkv. */
static void split_qkv(es_context *ctx, int n_tok) {
    const es_config *c = &ctx->model->cfg;
    es_run_state *rs = &ctx->rs;
    const int n_qkv = c->n_q + c->n_k + c->n_v;
    for (int t = 0; t < n_tok; t++) {
        const float *row = rs->qkv + (size_t)t * n_qkv;
        memcpy(rs->q + (size_t)t * c->n_q, row, (size_t)c->n_q * sizeof(float));
        memcpy(rs->k + (size_t)t * c->n_k, row + c->n_q, (size_t)c->n_k * sizeof(float));
        memcpy(rs->v + (size_t)t * c->n_v, row + c->n_q + c->n_k, (size_t)c->n_v * sizeof(float));
    }
}

/* x += attention sublayer of layer il. */
static void attention_block(es_context *ctx, int il, const es_batch *b) {
    const es_config *c = &ctx->model->cfg;
    const es_layer_weights *L = &ctx->model->w.layers[il];
    es_run_state *rs = &ctx->rs;
    const int n = b->n_tokens;

    /* h = rmsnorm(x, attn_norm) */
    rmsnorm(ctx, rs->xb, rs->x, L->attn_norm, n, c->n_embd);
    /* q, k, v = h·Wqᵀ, h·Wkᵀ, h·Wvᵀ (fused: one h·Wqkvᵀ, then split; MLA: from latents) */
    if (c->kv_lora_rank > 0) {
        es_mla_qkv(ctx, il, n);
    } else if (c->arch->fused_qkv) {
        matmul(ctx, &L->wqkv, rs->xb, n, rs->qkv);
        split_qkv(ctx, n);
    } else {
        const es_matrix *W[3] = {&L->wq, &L->wk, &L->wv};
        float *const y[3] = {rs->q, rs->k, rs->v};
        es_op_matmul_parts(ctx, W, y, 3, rs->xb, n);
    }
    /* + bq, bk, bv */
    add_bias(rs->q, L->bq, n, c->n_q);
    add_bias(rs->k, L->bk, n, c->n_k);
    add_bias(rs->v, L->bv, n, c->n_v);
    /* q, k = rmsnorm per head (Qwen3, Gemma 3) */
    if (L->q_norm) rmsnorm(ctx, rs->q, rs->q, L->q_norm, (int64_t)n * c->n_head, c->head_dim);
    if (L->k_norm) rmsnorm(ctx, rs->k, rs->k, L->k_norm, (int64_t)n * c->n_head_kv, c->head_dim);
    /* q, k = rope(q, k, pos), with the sliding-window frequencies on SWA layers */
    const float *cs = L->swa ? rs->rope_cs_swa : rs->rope_cs;
    rope(ctx, rs->q, cs, n, c->n_head);
    rope(ctx, rs->k, cs, n, c->n_head_kv);
    /* cache[il][seq][pos] = k, v */
    es_kv_store(ctx, il, n);
    /* a = softmax(softcap(scale · q·Kᵀ) + mask) · V */
    es_attention(ctx, il, n, L->swa);
    /* o = a·Woᵀ + bo */
    matmul(ctx, &L->wo, rs->att, n, rs->out);
    add_bias(rs->out, L->bo, n, c->n_embd);
    /* hook ATTN_OUT: the attention output before any post-norm */
    hook_point(ctx, ES_HOOK_ATTN_OUT, il, rs->out, b);
    /* o = rmsnorm(o, post_attention_norm) (Gemma 2/3) */
    if (L->attn_post_norm) rmsnorm(ctx, rs->out, rs->out, L->attn_post_norm, n, c->n_embd);
    /* x += o · residual_scale */
    scale_rows(rs->out, c->residual_scale, (size_t)n * c->n_embd);
    add_residual(rs->x, rs->out, (size_t)n * c->n_embd);
}

static void dense_ffn(es_context *ctx, int il, int n);

/* x += gated MLP (or mixture-of-experts) sublayer of layer il. */
static void mlp_block(es_context *ctx, int il, const es_batch *b) {
    const es_config *c = &ctx->model->cfg;
    const es_layer_weights *L = &ctx->model->w.layers[il];
    es_run_state *rs = &ctx->rs;
    const int n = b->n_tokens;

    /* h = rmsnorm(x, ffn_norm) */
    rmsnorm(ctx, rs->xb, rs->x, L->ffn_norm, n, c->n_embd);
    /* m = Σ_k w_k · expert_k(h) over each token's top-k experts (mixture of experts), or */
    if (c->n_expert > 0)
        es_moe_ffn(ctx, il, n);
    else
        dense_ffn(ctx, il, n);
    /* hook MLP_OUT: the MLP output before any post-norm */
    hook_point(ctx, ES_HOOK_MLP_OUT, il, rs->out, b);
    /* m = rmsnorm(m, post_ffw_norm) (Gemma 2/3) */
    if (L->ffn_post_norm) rmsnorm(ctx, rs->out, rs->out, L->ffn_post_norm, n, c->n_embd);
    /* x += m · residual_scale */
    scale_rows(rs->out, c->residual_scale, (size_t)n * c->n_embd);
    add_residual(rs->x, rs->out, (size_t)n * c->n_embd);
    /* hook BLOCK_OUT: the residual stream after the block */
    hook_point(ctx, ES_HOOK_BLOCK_OUT, il, rs->x, b);
}

/* rs.out = the gated MLP of layer il on rs.xb. */
static void dense_ffn(es_context *ctx, int il, int n) {
    const es_config *c = &ctx->model->cfg;
    const es_layer_weights *L = &ctx->model->w.layers[il];
    es_run_state *rs = &ctx->rs;
    /* gate, up = h·Wgateᵀ, h·Wupᵀ (fused: one product, row t = [gate (n_ff) | up (n_ff)]) */
    glu_args ga = {rs->hb, rs->gate, rs->hb, c->n_ff, n, c->n_ff, c->arch->act};
    if (c->arch->fused_gate_up) {
        matmul(ctx, &L->w_up, rs->xb, n, rs->gate);
        ga.up = rs->gate + c->n_ff;
        ga.stride = 2 * (int64_t)c->n_ff;
    } else {
        const es_matrix *W[2] = {&L->w_gate, &L->w_up};
        float *const y[2] = {rs->gate, rs->hb};
        es_op_matmul_parts(ctx, W, y, 2, rs->xb, n);
    }
    /* hb = act(gate) * up */
    run_op(ctx, glu_task, &ga, (int64_t)n * c->n_ff);
    /* m = hb·Wdownᵀ */
    matmul(ctx, &L->w_down, rs->hb, n, rs->out);
}

/* ---- the forward pass -------------------------------------------------------------------- */

es_status es_decode(es_context *ctx, const es_batch *batch) {
    if (!ctx) return es_error(ES_ERR_INVALID_ARG, "decode: NULL context");
    const es_config *c = &ctx->model->cfg;
    es_run_state *rs = &ctx->rs;

    /* check the batch against the context; fill positions, sequences, logits rows */
    int n_out = 0;
    es_status st = es_batch_prepare(ctx, batch, &n_out);
    if (st != ES_OK) return st;

    /* the batch as hooks see it: positions and sequences filled in */
    const es_batch b = {batch->n_tokens, batch->token, rs->pos, rs->seq, batch->logits};
    const int n = b.n_tokens;

    /* roll back: each sequence keeps the positions before its first token here */
    for (int s = 0; s < ctx->params.n_seq_max; s++)
        if (rs->first_pos[s] >= 0) ctx->kv_len[s] = rs->first_pos[s];

    /* order the tokens for attention (blocks per sequence for an f32 cache) */
    es_attn_plan(ctx, n);
    /* x = embed(tokens) * embd_scale */
    embed(ctx, &b);
    /* cos, sin of every token's position, for global and sliding-window layers */
    rope_angles(rs->rope_cs, rs->pos, n, ctx->rope, c->n_rot / 2, c->rope_attn_factor);
    if (c->n_swa > 0)
        rope_angles(rs->rope_cs_swa, rs->pos, n, &ctx->model->w.rope_swa, c->n_rot / 2,
                    c->rope_attn_factor);

    /* the decoder blocks */
    for (int il = 0; il < c->n_layer; il++) {
        attention_block(ctx, il, &b);
        mlp_block(ctx, il, &b);
    }

    /* logits = softcap(rmsnorm(x, output_norm)·Woutᵀ) for the rows that ask */
    if (n_out > 0) output_logits(ctx, n_out);
    /* NaN/Inf there means the weights or the steering broke the forward pass: say so
     * instead of sampling garbage; the batch is then not appended to the cache */
    if (n_out > 0 && (st = check_logits(ctx, n_out)) != ES_OK) {
        for (int i = 0; i < n; i++)
            ctx->logits_row[i] = -1;
        ctx->last_n_tokens = 0;
        return st;
    }

    /* the cache now holds every sequence up to its last position; logits rows by token */
    for (int i = 0; i < n; i++) {
        ctx->logits_row[i] = -1;
        const int s = rs->seq[i];
        if (rs->pos[i] + 1 > ctx->kv_len[s]) ctx->kv_len[s] = rs->pos[i] + 1;
    }
    for (int r = 0; r < n_out; r++)
        ctx->logits_row[rs->out_rows[r]] = r;
    ctx->last_n_tokens = n;
    return ES_OK;
}
