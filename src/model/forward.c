/*
 * forward.c — es_decode: the decoder forward pass over a batch of tokens from any
 * mix of sequences, in f32, reading weights in place.
 *
 *   x = embed(tokens) * embd_scale
 *   for each layer l:
 *       h   = rmsnorm(x, attn_norm)
 *       q,k,v = h·Wqᵀ (+bq), h·Wkᵀ (+bk), h·Wvᵀ (+bv)       (fused: one h·Wqkvᵀ)
 *       q,k = rmsnorm_per_head(q, k)                         (Qwen3, Gemma 3)
 *       q,k = rope(q, k, pos)
 *       cache[l][seq][pos] = k, v
 *       a   = softmax(softcap(scale · q·Kᵀ) + causal/sliding mask) · V   per head, GQA
 *       o   = a·Woᵀ (+bo)                                    -> hook ATTN_OUT
 *       o   = rmsnorm(o, post_attention_norm)               (Gemma 2/3)
 *       x  += o
 *       h   = rmsnorm(x, ffn_norm)
 *       m   = (act(h·Wgateᵀ) * h·Wupᵀ)·Wdownᵀ                -> hook MLP_OUT
 *       m   = rmsnorm(m, post_ffw_norm)                     (Gemma 2/3)
 *       x  += m                                              -> hook BLOCK_OUT
 *   logits = softcap(rmsnorm(x, output_norm)·Woutᵀ)          only rows that ask
 *
 * At each hook point steering (ctx->steer) is applied first, then the user hook.
 * Ops are small functions split over the context's thread pool by rows
 * (fn(arg, ith, nth)); matrix products go through es_matmul.
 */
#include "context.h"

#include "matmul.h"
#include "steer_state.h"
#include "types.h"
#include "vecops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Most query heads sharing one KV head that f16 attention handles in one task. */
#define ES_MAX_GROUP 16

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
    for (int i = 0; i < n; i++) sum += (double)(x[i] * x[i]);
    const float mean = (float)(sum / n);
    const float scale = 1.0f / sqrtf(mean + eps);
    for (int i = 0; i < n; i++) out[i] = (x[i] * scale) * w[i];
}

typedef struct {
    float *out;      /* [n_rows][n] (may equal x) */
    const float *x;  /* [n_rows][n] */
    const float *w;  /* [n] */
    int64_t n_rows;
    int n;
    float eps;
} rmsnorm_args;

static void rmsnorm_task(void *p, int ith, int nth) {
    const rmsnorm_args *a = p;
    int64_t r0, r1;
    split_rows(a->n_rows, ith, nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) rmsnorm_row(a->out + r * a->n, a->x + r * a->n, a->w, a->n, a->eps);
}

static void rmsnorm(es_context *ctx, float *out, const float *x, const float *w, int64_t n_rows, int n) {
    rmsnorm_args a = {out, x, w, n_rows, n, ctx->model->cfg.norm_eps};
    run_op(ctx, rmsnorm_task, &a, n_rows * n);
}

/* ---- bias: y[t] += b ---------------------------------------------------------------- */

static void add_bias(float *y, const float *b, int n_tok, int n) {
    if (!b) return;
    for (int t = 0; t < n_tok; t++)
        for (int i = 0; i < n; i++) y[(size_t)t * n + i] += b[i];
}

/* ---- RoPE -------------------------------------------------------------------------- */

/* cs[t][i] = (cos, sin)(angle_i(pos[t])) * attn_factor, as es_rope_freqs describes. */
static void rope_angles(float *cs, const int32_t *pos, int n_tok, const es_rope_freqs *f, int n_half,
                        float attn_factor) {
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
    float *x;         /* [n_tok][n_heads][head_dim] */
    const float *cs;  /* [n_tok][n_rot/2][2] */
    int n_tok, n_heads, head_dim, n_rot;
    es_rope_style style;
} rope_args;

/* Rotates the pairs of the first n_rot dims of every head: (2i, 2i+1) for NORM,
 * (i, i + n_rot/2) for NEOX, by the angle of frequency i. */
static void rope_task(void *p, int ith, int nth) {
    const rope_args *a = p;
    const int n_half = a->n_rot / 2;
    const int stride = a->style == ES_ROPE_NEOX ? 1 : 2;      /* distance between pair starts */
    const int other = a->style == ES_ROPE_NEOX ? n_half : 1;  /* offset of a pair's 2nd element */
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

/* ---- soft-cap: tanh(x / cap) * cap --------------------------------------------------- */

static inline float softcap(float x, float cap) { return tanhf(x / cap) * cap; }

/* ---- attention ------------------------------------------------------------------------ */

typedef struct {
    es_context *ctx;
    int layer;
    int n_tok;
    bool swa;
    int heads_per_task; /* query heads of one KV group handled together (1 or n_head/n_head_kv) */
} attn_args;

/* Token t, query heads [h0, h0 + nh) of one KV group with an f16 cache, computed as
 * llama.cpp's CPU flash attention does: keys at positions [lo, pos]; the
 * query rounded to f16 (rs.qh), q·k summed in f32, scale and soft-cap, an online
 * softmax in f32 (running max M and sum S), and the value sum kept in f16: on a new
 * maximum acc = f16(acc * exp(M_old - M)), then acc = f16(acc + exp(s - M) * v) per key;
 * finally out = f32(acc) * (1/S). acc16: [nh][hdv]. */
static void attend_f16(const attn_args *a, int t, int h0, int nh, uint16_t *acc16) {
    const es_context *ctx = a->ctx;
    const es_config *c = &ctx->model->cfg;
    const es_vecops *vo = es_vecops_get();
    const int hd = c->head_dim, hdv = c->head_dim_v, n_ctx = ctx->params.n_ctx;
    const int s = ctx->rs.seq[t], p = ctx->rs.pos[t];
    const int kvh = h0 / (c->n_head / c->n_head_kv);
    const int lo = a->swa ? ES_MAX(0, p - c->n_swa + 1) : 0;
    const int n_keys = p - lo + 1;
    const size_t cell = ((size_t)a->layer * ctx->params.n_seq_max + (size_t)s) * (size_t)n_ctx + (size_t)lo;
    const uint16_t *K = (const uint16_t *)ctx->k_cache + cell * (size_t)c->n_k + (size_t)kvh * hd;
    const uint16_t *V = (const uint16_t *)ctx->v_cache + cell * (size_t)c->n_v + (size_t)kvh * hdv;
    const float *q = ctx->rs.qh + (size_t)t * c->n_q + (size_t)h0 * hd;    /* head i at q + i*hd */
    float *out = ctx->rs.att + ((size_t)t * c->n_head + (size_t)h0) * hdv;  /* head i at out + i*hdv */

    float M[ES_MAX_GROUP], S[ES_MAX_GROUP];
    for (int i = 0; i < nh; i++) {
        M[i] = -INFINITY;
        S[i] = 0.0f;
        memset(acc16 + (size_t)i * hdv, 0, (size_t)hdv * sizeof(uint16_t));
    }
    for (int j = 0; j < n_keys; j++) {
        const uint16_t *k = K + (size_t)j * c->n_k, *v = V + (size_t)j * c->n_v;
        for (int i = 0; i < nh; i++) {
            float sc = vo->dot_f16(k, q + (size_t)i * hd, hd) * c->attn_scale;
            if (c->attn_softcap > 0.0f) sc = softcap(sc, c->attn_softcap);
            uint16_t *acc = acc16 + (size_t)i * hdv;
            float ms = 1.0f, vs = 1.0f;
            if (sc > M[i]) {
                const float m_old = M[i];
                M[i] = sc;
                ms = expf(m_old - sc);
                vo->scale_f16(ms, acc, hdv);
            } else {
                vs = expf(sc - M[i]);
            }
            vo->mad_f16(vs, v, acc, hdv);
            S[i] = fmaf(S[i], ms, vs);
        }
    }
    for (int i = 0; i < nh; i++) {
        float *o = out + (size_t)i * hdv;
        vo->from_f16(acc16 + (size_t)i * hdv, o, hdv);
        vo->scale(S[i] == 0.0f ? 0.0f : 1.0f / S[i], o, hdv);
    }
}

/* ---- attention with an f32 cache: blocks of queries of one sequence ----------------
 *
 * The queries of up to attn_block_tokens consecutive tokens of one sequence, for the
 * n_rep heads sharing one KV head, are stacked as rows r = token * n_rep + head and
 * computed together against the keys in steps of ES_ATT_KEYS positions:
 *   S = (scale·q)·Kᵀ (es_gemm_nt), soft-cap, causal and sliding-window mask, online
 *   softmax (running max m and sum l per row; o rescaled when m grows), o += P·V
 *   (es_gemm_nn); finally out = o / l.
 * Every (token, head) result depends only on its position and the cache, never on the
 * other rows of the block nor on the batch: steps start at multiples of ES_ATT_KEYS,
 * S is computed over whole 16-column groups, the last partial one from a zero-padded
 * copy of its keys (so each column takes the kernels' vector path), masked probabilities are exact zeros, and the sums run in key order. So a
 * prompt decoded in one batch, in pieces or token by token gets the same attention
 * bits (single tokens are blocks of one). */

/* Query rows per block (tokens x heads of one KV group), keys per step (a multiple of
 * ES_ATT_COLS), and the column granularity of S (>= the widest gemm vector). */
#define ES_ATT_ROWS 96
#define ES_ATT_KEYS 256
#define ES_ATT_COLS 16

/* Tokens per block for this model: as many as fill ES_ATT_ROWS rows, at least one. */
static int attn_block_tokens(const es_config *c) {
    return ES_MAX(1, ES_ATT_ROWS / (c->n_head / c->n_head_kv));
}

size_t es_attn_block_floats(const es_config *c) {
    const size_t rows = (size_t)attn_block_tokens(c) * (size_t)(c->n_head / c->n_head_kv);
    /* q [rows][hd], S [rows][KEYS], o [rows][hdv], m [rows], kpad [COLS][hd], l [rows] doubles (+ alignment) */
    return rows * ((size_t)c->head_dim + ES_ATT_KEYS + (size_t)c->head_dim_v + 1 + 2) +
           (size_t)ES_ATT_COLS * (size_t)c->head_dim + 16;
}

/* Fills rs.att_tok / att_blk. f32 cache: the tokens of each sequence in batch order
 * (= position order), cut into blocks of attn_block_tokens; n_att_blocked = n. f16
 * cache: att_tok = 0..n-1 and no blocks (attend_f16 per token). */
static void plan_attention(es_context *ctx, int n) {
    es_run_state *rs = &ctx->rs;
    const int qb = attn_block_tokens(&ctx->model->cfg), n_seq = ctx->params.n_seq_max;
    rs->n_att_blk = 0;
    rs->n_att_blocked = 0;
    if (ctx->params.kv_type != ES_KV_F32) {
        for (int i = 0; i < n; i++) rs->att_tok[i] = i;
        return;
    }
    for (int s = 0; s < n_seq; s++) rs->att_cnt[s] = 0;
    for (int i = 0; i < n; i++) rs->att_cnt[rs->seq[i]]++;
    /* att_cnt becomes the next free slot of the sequence in att_tok */
    int start = 0;
    for (int s = 0; s < n_seq; s++) {
        const int cnt = rs->att_cnt[s];
        for (int j = 0; j < cnt; j += qb) {
            rs->att_blk[2 * rs->n_att_blk] = start + j;
            rs->att_blk[2 * rs->n_att_blk + 1] = ES_MIN(qb, cnt - j);
            rs->n_att_blk++;
        }
        rs->att_cnt[s] = start;
        start += cnt;
    }
    for (int i = 0; i < n; i++) rs->att_tok[rs->att_cnt[rs->seq[i]]++] = i;
    rs->n_att_blocked = n;
}

/* Block `blk` of rs.att_blk (nq tokens at positions p0 .. p0+nq-1 of sequence s), KV
 * head g, as described above. buf: es_attn_block_floats floats. */
static void attend_block(const attn_args *a, int blk, int g, float *buf) {
    const es_context *ctx = a->ctx;
    const es_config *c = &ctx->model->cfg;
    const es_run_state *rs = &ctx->rs;
    const es_vecops *vo = es_vecops_get();
    const int hd = c->head_dim, hdv = c->head_dim_v, n_ctx = ctx->params.n_ctx;
    const int n_rep = c->n_head / c->n_head_kv, h0 = g * n_rep;
    const int32_t *tok = rs->att_tok + rs->att_blk[2 * blk];
    const int nq = rs->att_blk[2 * blk + 1], M = nq * n_rep;
    const int s = rs->seq[tok[0]], p0 = rs->pos[tok[0]], p1 = p0 + nq - 1;
    const int lo = a->swa ? ES_MAX(0, p0 - c->n_swa + 1) : 0;
    const size_t cell = ((size_t)a->layer * ctx->params.n_seq_max + (size_t)s) * (size_t)n_ctx;
    const float *K = (const float *)ctx->k_cache + cell * (size_t)c->n_k + (size_t)g * hd;  /* key j at K + j*n_k */
    const float *V = (const float *)ctx->v_cache + cell * (size_t)c->n_v + (size_t)g * hdv; /* value j at V + j*n_v */

    const size_t rows = (size_t)attn_block_tokens(c) * (size_t)n_rep;
    float *q = buf;                           /* [M][hd] */
    float *S = q + rows * hd;                 /* [M][ES_ATT_KEYS] */
    float *o = S + rows * ES_ATT_KEYS;        /* [M][hdv] */
    float *m = o + rows * hdv;                /* [M] running max of the scores */
    float *kpad = m + rows;                   /* [ES_ATT_COLS][hd] the last keys of a step */
    double *l = (double *)(((uintptr_t)(kpad + ES_ATT_COLS * hd) + 7) & ~(uintptr_t)7); /* [M] running sum */

    /* q pre-multiplied by the scale (exact for power-of-two scales such as 1/8) */
    for (int tq = 0; tq < nq; tq++) {
        const float *src = rs->q + (size_t)tok[tq] * c->n_q + (size_t)h0 * hd;
        float *dst = q + (size_t)tq * n_rep * hd;
        for (int e = 0; e < n_rep * hd; e++) dst[e] = src[e] * c->attn_scale;
    }
    memset(o, 0, (size_t)M * hdv * sizeof(float));
    for (int r = 0; r < M; r++) {
        m[r] = -INFINITY;
        l[r] = 0.0;
    }
    for (int k0 = lo - lo % ES_ATT_KEYS; k0 <= p1; k0 += ES_ATT_KEYS) {
        const int nk = ES_MIN(ES_ATT_KEYS, p1 + 1 - k0);
        /* S over whole column groups: the last partial group from a zero-padded copy */
        const int nk_full = nk / ES_ATT_COLS * ES_ATT_COLS, rem = nk - nk_full;
        es_gemm_nt(M, nk_full, hd, q, hd, K + (size_t)k0 * c->n_k, c->n_k, S, ES_ATT_KEYS, false);
        if (rem > 0) {
            for (int j = 0; j < rem; j++)
                memcpy(kpad + (size_t)j * hd, K + (size_t)(k0 + nk_full + j) * c->n_k, (size_t)hd * sizeof(float));
            memset(kpad + (size_t)rem * hd, 0, (size_t)(ES_ATT_COLS - rem) * hd * sizeof(float));
            es_gemm_nt(M, ES_ATT_COLS, hd, q, hd, kpad, hd, S + nk_full, ES_ATT_KEYS, false);
        }
        for (int r = 0; r < M; r++) {
            float *sr = S + (size_t)r * ES_ATT_KEYS;
            const int p = p0 + r / n_rep;
            /* this row's keys in the step: [j0, j1) relative to k0 */
            const int j0 = a->swa ? ES_MAX(0, p - c->n_swa + 1 - k0) : 0;
            const int j1 = ES_MIN(nk, p + 1 - k0);
            if (j0 >= j1) {
                memset(sr, 0, (size_t)nk * sizeof(float));
                continue;
            }
            if (c->attn_softcap > 0.0f)
                for (int j = j0; j < j1; j++) sr[j] = softcap(sr[j], c->attn_softcap);
            const float bmx = vo->max(sr + j0, j1 - j0);
            if (bmx > m[r]) {
                const float alpha = expf(m[r] - bmx); /* 0 on the row's first step */
                l[r] *= alpha;
                if (m[r] > -INFINITY) vo->scale(alpha, o + (size_t)r * hdv, hdv);
                m[r] = bmx;
            }
            if (j0 > 0) memset(sr, 0, (size_t)j0 * sizeof(float));
            if (j1 < nk) memset(sr + j1, 0, (size_t)(nk - j1) * sizeof(float));
            l[r] += vo->exp_sum(sr + j0, m[r], j1 - j0);
        }
        es_gemm_nn(M, hdv, nk, S, ES_ATT_KEYS, V + (size_t)k0 * c->n_v, c->n_v, o, hdv, true);
    }
    for (int r = 0; r < M; r++) {
        const int tq = r / n_rep, i = r % n_rep;
        float *out = rs->att + ((size_t)tok[tq] * c->n_head + (size_t)(h0 + i)) * hdv;
        const float inv = (float)(1.0 / l[r]);
        const float *orow = o + (size_t)r * hdv;
        for (int e = 0; e < hdv; e++) out[e] = orow[e] * inv;
    }
}

static void attention_task(void *p, int ith, int nth) {
    const attn_args *a = p;
    const es_context *ctx = a->ctx;
    const es_run_state *rs = &ctx->rs;
    const int n_kv = ctx->model->cfg.n_head_kv;
    /* f32: blocks, the last (longest) ones first */
    const int64_t n_blk_tasks = (int64_t)rs->n_att_blk * n_kv;
    if (n_blk_tasks > 0) {
        float *buf = rs->ablk + (size_t)ith * es_attn_block_floats(&ctx->model->cfg);
        for (int64_t task = ith; task < n_blk_tasks; task += nth) {
            const int64_t u = n_blk_tasks - 1 - task;
            attend_block(a, (int)(u / n_kv), (int)(u % n_kv), buf);
        }
    }
    /* f16: token by token, interleaved so that long (late) and short (early) rows
     * spread over threads */
    const int per = a->heads_per_task, n_units = ctx->model->cfg.n_head / per;
    const int n_single = a->n_tok - rs->n_att_blocked;
    if (n_single == 0) return;
    uint16_t *acc16 = ctx->rs.acc16 + (size_t)ith * per * ctx->model->cfg.head_dim_v;
    for (int64_t task = ith; task < (int64_t)n_single * n_units; task += nth) {
        const int idx = (int)(task / n_units), h0 = (int)(task % n_units) * per;
        attend_f16(a, rs->att_tok[rs->n_att_blocked + idx], h0, per, acc16);
    }
}

/* Copies this batch's k, v rows into the cache of their sequence at their position
 * (rounded to f16 for ES_KV_F16, and then the queries too: rs.qh). */
static void store_kv(es_context *ctx, int layer, int n_tok) {
    const es_config *c = &ctx->model->cfg;
    const es_vecops *vo = es_vecops_get();
    const bool f16 = ctx->params.kv_type == ES_KV_F16;
    for (int t = 0; t < n_tok; t++) {
        const size_t cell = (((size_t)layer * ctx->params.n_seq_max + (size_t)ctx->rs.seq[t]) *
                                 (size_t)ctx->params.n_ctx + (size_t)ctx->rs.pos[t]);
        const float *k = ctx->rs.k + (size_t)t * c->n_k, *v = ctx->rs.v + (size_t)t * c->n_v;
        if (f16) {
            vo->to_f16(k, (uint16_t *)ctx->k_cache + cell * c->n_k, c->n_k);
            vo->to_f16(v, (uint16_t *)ctx->v_cache + cell * c->n_v, c->n_v);
            vo->to_f16(ctx->rs.q + (size_t)t * c->n_q, ctx->rs.q16, c->n_q);
            vo->from_f16(ctx->rs.q16, ctx->rs.qh + (size_t)t * c->n_q, c->n_q);
        } else {
            memcpy((float *)ctx->k_cache + cell * c->n_k, k, (size_t)c->n_k * sizeof(float));
            memcpy((float *)ctx->v_cache + cell * c->n_v, v, (size_t)c->n_v * sizeof(float));
        }
    }
}

/* ---- gated MLP activation: hb = act(gate) * up --------------------------------------- */

static inline float silu(float x) { return x / (1.0f + expf(-x)); }

static inline float gelu_tanh(float x) {
    const float k = 0.7978845608028654f; /* sqrt(2/pi) */
    return 0.5f * x * (1.0f + tanhf(k * (x + 0.044715f * x * x * x)));
}

typedef struct {
    float *hb;          /* [n_tok][n_ff] out */
    const float *gate;  /* row t at gate + t * stride */
    const float *up;    /* row t at up + t * stride */
    int64_t stride;
    int n_tok, n_ff;
    es_ffn_act act;
} glu_args;

static void glu_task(void *p, int ith, int nth) {
    const glu_args *a = p;
    int64_t r0, r1;
    split_rows(a->n_tok, ith, nth, &r0, &r1);
    for (int64_t t = r0; t < r1; t++) {
        const float *g = a->gate + t * a->stride, *u = a->up + t * a->stride;
        float *o = a->hb + t * a->n_ff;
        if (a->act == ES_ACT_GELU_TANH)
            for (int i = 0; i < a->n_ff; i++) o[i] = gelu_tanh(g[i]) * u[i];
        else
            for (int i = 0; i < a->n_ff; i++) o[i] = silu(g[i]) * u[i];
    }
}

/* ---- hooks -------------------------------------------------------------------------- */

static void hook_point(es_context *ctx, es_hook_point hp, int layer, float *x, const es_batch *b) {
    const int n_embd = ctx->model->cfg.n_embd;
    if (ctx->steer) es_steer_apply(ctx->steer, hp, layer, x, b->n_tokens, n_embd, b);
    if (ctx->hook) ctx->hook(ctx->hook_user, hp, layer, x, b->n_tokens, n_embd, b);
}

/* ---- matmul shorthand: y[n_tok][W.n_out] = x · Wᵀ ------------------------------------ */

static void matmul(es_context *ctx, const es_matrix *W, const float *x, int n_tok, float *y) {
    es_matmul_ex(ctx->tp, W->type, W->data, W->n_out, W->n_in, x, n_tok, y, ctx->rs.wsp,
                 ctx->params.numerics == ES_NUMERICS_LLAMACPP);
}

static void add_residual(float *x, const float *o, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] += o[i];
}

/* ---- one decoder block ---------------------------------------------------------------- */

static void attention_block(es_context *ctx, int il, const es_batch *b) {
    const es_config *c = &ctx->model->cfg;
    const es_layer_weights *L = &ctx->model->w.layers[il];
    es_run_state *rs = &ctx->rs;
    const int n = b->n_tokens;

    rmsnorm(ctx, rs->xb, rs->x, L->attn_norm, n, c->n_embd);
    if (c->arch->fused_qkv) {
        const int n_qkv = c->n_q + c->n_k + c->n_v;
        matmul(ctx, &L->wqkv, rs->xb, n, rs->qkv);
        for (int t = 0; t < n; t++) {
            const float *row = rs->qkv + (size_t)t * n_qkv;
            memcpy(rs->q + (size_t)t * c->n_q, row, (size_t)c->n_q * sizeof(float));
            memcpy(rs->k + (size_t)t * c->n_k, row + c->n_q, (size_t)c->n_k * sizeof(float));
            memcpy(rs->v + (size_t)t * c->n_v, row + c->n_q + c->n_k, (size_t)c->n_v * sizeof(float));
        }
    } else {
        matmul(ctx, &L->wq, rs->xb, n, rs->q);
        matmul(ctx, &L->wk, rs->xb, n, rs->k);
        matmul(ctx, &L->wv, rs->xb, n, rs->v);
    }
    add_bias(rs->q, L->bq, n, c->n_q);
    add_bias(rs->k, L->bk, n, c->n_k);
    add_bias(rs->v, L->bv, n, c->n_v);
    if (L->q_norm) rmsnorm(ctx, rs->q, rs->q, L->q_norm, (int64_t)n * c->n_head, c->head_dim);
    if (L->k_norm) rmsnorm(ctx, rs->k, rs->k, L->k_norm, (int64_t)n * c->n_head_kv, c->head_dim);
    const float *cs = L->swa ? rs->rope_cs_swa : rs->rope_cs;
    rope(ctx, rs->q, cs, n, c->n_head);
    rope(ctx, rs->k, cs, n, c->n_head_kv);
    store_kv(ctx, il, n);

    /* whole KV groups per task when there are enough of them for the threads */
    const int n_rep = c->n_head / c->n_head_kv, nth = es_threadpool_size(ctx->tp);
    const int n_single = n - rs->n_att_blocked;
    const int per = (n_rep <= ES_MAX_GROUP && n_single * c->n_head_kv >= 2 * nth) ? n_rep : 1; /* f16 */
    attn_args aa = {ctx, il, n, L->swa, per};
    const int64_t n_tasks = (int64_t)rs->n_att_blk * c->n_head_kv + (int64_t)n_single * c->n_head / per;
    es_threadpool_run(n_tasks > 1 ? ctx->tp : NULL, attention_task, &aa);

    matmul(ctx, &L->wo, rs->att, n, rs->out);
    add_bias(rs->out, L->bo, n, c->n_embd);
    hook_point(ctx, ES_HOOK_ATTN_OUT, il, rs->out, b);
    if (L->attn_post_norm) rmsnorm(ctx, rs->out, rs->out, L->attn_post_norm, n, c->n_embd);
    add_residual(rs->x, rs->out, (size_t)n * c->n_embd);
}

static void mlp_block(es_context *ctx, int il, const es_batch *b) {
    const es_config *c = &ctx->model->cfg;
    const es_layer_weights *L = &ctx->model->w.layers[il];
    es_run_state *rs = &ctx->rs;
    const int n = b->n_tokens;

    rmsnorm(ctx, rs->xb, rs->x, L->ffn_norm, n, c->n_embd);
    glu_args ga = {rs->hb, rs->gate, rs->hb, c->n_ff, n, c->n_ff, c->arch->act};
    if (c->arch->fused_gate_up) {
        /* one product: row t = [gate (n_ff) | up (n_ff)] */
        matmul(ctx, &L->w_up, rs->xb, n, rs->gate);
        ga.up = rs->gate + c->n_ff;
        ga.stride = 2 * (int64_t)c->n_ff;
    } else {
        matmul(ctx, &L->w_gate, rs->xb, n, rs->gate);
        matmul(ctx, &L->w_up, rs->xb, n, rs->hb);
    }
    run_op(ctx, glu_task, &ga, (int64_t)n * c->n_ff);
    matmul(ctx, &L->w_down, rs->hb, n, rs->out);
    hook_point(ctx, ES_HOOK_MLP_OUT, il, rs->out, b);
    if (L->ffn_post_norm) rmsnorm(ctx, rs->out, rs->out, L->ffn_post_norm, n, c->n_embd);
    add_residual(rs->x, rs->out, (size_t)n * c->n_embd);
    hook_point(ctx, ES_HOOK_BLOCK_OUT, il, rs->x, b);
}

/* ---- batch validation --------------------------------------------------------------- */

/* Checks the batch and fills rs.pos, rs.seq, rs.first_pos, rs.out_rows; *n_out gets the
 * number of tokens that want logits. Changes nothing else. */
static es_status prepare_batch(es_context *ctx, const es_batch *b, int *n_out) {
    const es_config *c = &ctx->model->cfg;
    es_run_state *rs = &ctx->rs;
    const int n_seq = ctx->params.n_seq_max, n_ctx = ctx->params.n_ctx;
    if (!b) return es_error(ES_ERR_INVALID_ARG, "decode: NULL batch");
    if (b->n_tokens < 1) return es_error(ES_ERR_INVALID_ARG, "decode: batch of %d tokens", b->n_tokens);
    if (b->n_tokens > ctx->params.n_batch)
        return es_error(ES_ERR_RANGE, "decode: batch of %d tokens exceeds n_batch %d", b->n_tokens,
                        ctx->params.n_batch);
    if (!b->token) return es_error(ES_ERR_INVALID_ARG, "decode: batch has no token array");

    /* first_pos doubles as "next expected position" while scanning */
    int32_t *next = rs->first_pos;
    for (int s = 0; s < n_seq; s++) next[s] = -1;
    for (int i = 0; i < b->n_tokens; i++) {
        const int32_t tok = b->token[i];
        if (tok < 0 || tok >= c->n_vocab)
            return es_error(ES_ERR_RANGE, "decode: token %d (batch index %d) is outside the vocabulary [0, %d)",
                            tok, i, c->n_vocab);
        const int32_t s = b->seq ? b->seq[i] : 0;
        if (s < 0 || s >= n_seq)
            return es_error(ES_ERR_RANGE, "decode: sequence id %d (batch index %d) is outside [0, %d)", s, i,
                            n_seq);
        int32_t p;
        if (next[s] < 0) { /* first token of this sequence in the batch */
            p = b->pos ? b->pos[i] : ctx->kv_len[s];
            if (p < 0 || p > ctx->kv_len[s])
                return es_error(ES_ERR_RANGE,
                                "decode: position %d (batch index %d) of sequence %d must be in [0, %d] "
                                "(its cached length)", p, i, s, ctx->kv_len[s]);
        } else {
            p = b->pos ? b->pos[i] : next[s];
            if (p != next[s])
                return es_error(ES_ERR_RANGE,
                                "decode: position %d (batch index %d) of sequence %d does not follow "
                                "position %d", p, i, s, next[s] - 1);
        }
        if (p >= n_ctx)
            return es_error(ES_ERR_RANGE, "decode: context full: position %d of sequence %d, n_ctx is %d", p, s,
                            n_ctx);
        rs->pos[i] = p;
        rs->seq[i] = s;
        next[s] = p + 1;
    }
    /* first position per sequence: the smallest in the batch (positions ascend) */
    for (int s = 0; s < n_seq; s++) rs->first_pos[s] = -1;
    for (int i = b->n_tokens - 1; i >= 0; i--) rs->first_pos[rs->seq[i]] = rs->pos[i];

    int n = 0;
    for (int i = 0; i < b->n_tokens; i++) {
        const bool want = b->logits ? b->logits[i] != 0 : i == b->n_tokens - 1;
        if (want) rs->out_rows[n++] = i;
    }
    *n_out = n;
    return ES_OK;
}

/* Grows the logits buffer to at least `rows` rows. */
static es_status reserve_logits(es_context *ctx, int rows) {
    if (rows <= ctx->logits_cap) return ES_OK;
    const size_t n_vocab = (size_t)ctx->model->cfg.n_vocab;
    int cap = ES_MAX(rows, ES_MIN(2 * ctx->logits_cap, ctx->params.n_batch));
    size_t bytes;
    if (!es_mul_size((size_t)cap, n_vocab * sizeof(float), &bytes))
        return es_error(ES_ERR_NOMEM, "decode: logits for %d tokens overflow", cap);
    float *l = es_alloc_aligned(bytes);
    if (!l) return es_error_prefix(ES_ERR_NOMEM, "decode: logits for %d tokens", cap);
    es_free_aligned(ctx->logits);
    ctx->logits = l;
    ctx->logits_cap = cap;
    return ES_OK;
}

/* ---- the forward pass -------------------------------------------------------------------- */

static void embed(es_context *ctx, const es_batch *b) {
    const es_config *c = &ctx->model->cfg;
    const es_matrix *E = &ctx->model->w.token_embd;
    const es_to_float_fn to_float = es_type_get(E->type)->to_float;
    const size_t row = es_row_size(E->type, c->n_embd);
    for (int t = 0; t < b->n_tokens; t++) {
        float *x = ctx->rs.x + (size_t)t * c->n_embd;
        to_float((const uint8_t *)E->data + (size_t)b->token[t] * row, x, c->n_embd);
        if (c->embd_scale != 1.0f)
            for (int i = 0; i < c->n_embd; i++) x[i] *= c->embd_scale;
    }
}

static void output_logits(es_context *ctx, int n_out) {
    const es_config *c = &ctx->model->cfg;
    es_run_state *rs = &ctx->rs;
    for (int r = 0; r < n_out; r++)
        rmsnorm_row(rs->xb + (size_t)r * c->n_embd, rs->x + (size_t)rs->out_rows[r] * c->n_embd,
                    ctx->model->w.output_norm, c->n_embd, c->norm_eps);
    matmul(ctx, &ctx->model->w.output, rs->xb, n_out, ctx->logits);
    if (c->final_softcap > 0.0f) {
        const size_t n = (size_t)n_out * c->n_vocab;
        for (size_t i = 0; i < n; i++) ctx->logits[i] = softcap(ctx->logits[i], c->final_softcap);
    }
}

es_status es_decode(es_context *ctx, const es_batch *batch) {
    if (!ctx) return es_error(ES_ERR_INVALID_ARG, "decode: NULL context");
    const es_config *c = &ctx->model->cfg;
    es_run_state *rs = &ctx->rs;
    int n_out = 0;
    es_status st = prepare_batch(ctx, batch, &n_out);
    if (st == ES_OK) st = reserve_logits(ctx, n_out);
    if (st != ES_OK) return st;

    /* the batch as hooks see it: positions and sequences filled in */
    const es_batch b = {batch->n_tokens, batch->token, rs->pos, rs->seq, batch->logits};
    const int n = b.n_tokens;

    /* roll back: each sequence keeps the positions before its first token here */
    for (int s = 0; s < ctx->params.n_seq_max; s++)
        if (rs->first_pos[s] >= 0) ctx->kv_len[s] = rs->first_pos[s];

    plan_attention(ctx, n);
    embed(ctx, &b);
    rope_angles(rs->rope_cs, rs->pos, n, ctx->rope, c->n_rot / 2, c->rope_attn_factor);
    if (c->n_swa > 0)
        rope_angles(rs->rope_cs_swa, rs->pos, n, &ctx->model->w.rope_swa, c->n_rot / 2,
                    c->rope_attn_factor);

    for (int il = 0; il < c->n_layer; il++) {
        attention_block(ctx, il, &b);
        mlp_block(ctx, il, &b);
    }

    if (n_out > 0) output_logits(ctx, n_out);

    for (int i = 0; i < n; i++) {
        ctx->logits_row[i] = -1;
        const int s = rs->seq[i];
        if (rs->pos[i] + 1 > ctx->kv_len[s]) ctx->kv_len[s] = rs->pos[i] + 1;
    }
    for (int r = 0; r < n_out; r++) ctx->logits_row[rs->out_rows[r]] = r;
    ctx->last_n_tokens = n;
    return ES_OK;
}
