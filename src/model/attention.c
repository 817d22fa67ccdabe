/*
 * attention.c — a = softmax(softcap(scale · q·Kᵀ) + ALiBi + causal/sliding mask) · V for every
 * query head of a batch against the KV cache, by one of two algorithms chosen by the
 * cache type (attention.h):
 *
 *   ES_KV_F32  exact blocked attention: the queries of consecutive tokens of one
 *              sequence, stacked per KV group, against blocks of keys (attend_block)
 *   ES_KV_F16  flash-attention-style: token by token, an online softmax with the value
 *              sum kept in f16, as llama.cpp's CPU flash attention (attend_f16)
 *
 * Both split their work over the context's thread pool as (ith, nth) tasks.
 */
#include "attention.h"

#include "matmul.h"
#include "vecops.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* Most query heads sharing one KV head that f16 attention handles in one task. */
#define ES_MAX_GROUP 16

/* One layer's attention over the batch, shared by every task. */
typedef struct {
    es_context *ctx;
    int layer;          /* decoder block whose cache is read */
    int n_tok;          /* tokens in the batch */
    bool swa;           /* the layer's keys are limited to the sliding window */
    int heads_per_task; /* query heads of one KV group handled together (1 or n_head/n_head_kv) */
} attn_args;

/* ---- ALiBi (Baichuan 13B) ------------------------------------------------------------ */

/* The ALiBi slope of query head h, by llama.cpp's rule (ggml_soft_max_ext): with n2 the
 * largest power of two <= n_head, m0 = 2^(-max_bias/n2) and m1 = 2^(-max_bias/2/n2),
 * heads h < n2 get m0^(h+1) and the rest (n_head not a power of two) m1^(2(h-n2)+1).
 * The score of key position j for a query at position p gets slope · (j - p) (<= 0;
 * the same softmax as Press et al.'s slope · j). */
static float alibi_slope(const es_config *c, int h) {
    int n2 = 1;
    while (n2 * 2 <= c->n_head)
        n2 *= 2;
    const float m0 = powf(2.0f, -c->alibi_max_bias / (float)n2);
    const float m1 = powf(2.0f, -(c->alibi_max_bias / 2.0f) / (float)n2);
    return h < n2 ? powf(m0, (float)(h + 1)) : powf(m1, (float)(2 * (h - n2) + 1));
}

/* ---- attention with an f16 cache: token by token, flash-attention style ------------ */

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
    const size_t cell =
        ((size_t)a->layer * ctx->params.n_seq_max + (size_t)s) * (size_t)n_ctx + (size_t)lo;
    const uint16_t *K = (const uint16_t *)ctx->k_cache + cell * (size_t)c->n_k + (size_t)kvh * hd;
    const uint16_t *V = (const uint16_t *)ctx->v_cache + cell * (size_t)c->n_v + (size_t)kvh * hdv;
    const float *q = ctx->rs.qh + (size_t)t * c->n_q + (size_t)h0 * hd; /* head i at q + i*hd */
    float *out =
        ctx->rs.att + ((size_t)t * c->n_head + (size_t)h0) * hdv; /* head i at out + i*hdv */

    float M[ES_MAX_GROUP], S[ES_MAX_GROUP], slope[ES_MAX_GROUP];
    const bool alibi = c->alibi_max_bias > 0.0f;
    for (int i = 0; i < nh; i++) {
        slope[i] = alibi ? alibi_slope(c, h0 + i) : 0.0f;
        M[i] = -INFINITY;
        S[i] = 0.0f;
        memset(acc16 + (size_t)i * hdv, 0, (size_t)hdv * sizeof(uint16_t));
    }
    for (int j = 0; j < n_keys; j++) {
        const uint16_t *k = K + (size_t)j * c->n_k, *v = V + (size_t)j * c->n_v;
        for (int i = 0; i < nh; i++) {
            float sc = vo->dot_f16(k, q + (size_t)i * hd, hd) * c->attn_scale;
            if (c->attn_softcap > 0.0f) sc = es_softcap(sc, c->attn_softcap);
            if (alibi) sc += slope[i] * (float)(lo + j - p);
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
 * copy of its keys (so each column takes the kernels' vector path), masked probabilities are exact
 * zeros, and the sums run in key order. So a prompt decoded in one batch, in pieces or token by
 * token gets the same attention bits (single tokens are blocks of one). */

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
    /* q [rows][hd], S [rows][KEYS], o [rows][hdv], m [rows], kpad [COLS][hd], l [rows] doubles (+
     * alignment) */
    return rows * ((size_t)c->head_dim + ES_ATT_KEYS + (size_t)c->head_dim_v + 1 + 2) +
           (size_t)ES_ATT_COLS * (size_t)c->head_dim + 16;
}

/* f32 cache: the tokens of each sequence in batch order (= position order), cut into
 * blocks of attn_block_tokens; n_att_blocked = n. f16 cache: att_tok = 0..n-1 and no
 * blocks (attend_f16 per token). */
void es_attn_plan(es_context *ctx, int n) {
    es_run_state *rs = &ctx->rs;
    const int qb = attn_block_tokens(&ctx->model->cfg), n_seq = ctx->params.n_seq_max;
    rs->n_att_blk = 0;
    rs->n_att_blocked = 0;
    if (ctx->params.kv_type != ES_KV_F32) {
        for (int i = 0; i < n; i++)
            rs->att_tok[i] = i;
        return;
    }
    for (int s = 0; s < n_seq; s++)
        rs->att_cnt[s] = 0;
    for (int i = 0; i < n; i++)
        rs->att_cnt[rs->seq[i]]++;
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
    for (int i = 0; i < n; i++)
        rs->att_tok[rs->att_cnt[rs->seq[i]]++] = i;
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
    const float *K = (const float *)ctx->k_cache + cell * (size_t)c->n_k +
                     (size_t)g * hd; /* key j at K + j*n_k */
    const float *V = (const float *)ctx->v_cache + cell * (size_t)c->n_v +
                     (size_t)g * hdv; /* value j at V + j*n_v */

    const size_t rows = (size_t)attn_block_tokens(c) * (size_t)n_rep;
    float *q = buf;                    /* [M][hd] */
    float *S = q + rows * hd;          /* [M][ES_ATT_KEYS] */
    float *o = S + rows * ES_ATT_KEYS; /* [M][hdv] */
    float *m = o + rows * hdv;         /* [M] running max of the scores */
    float *kpad = m + rows;            /* [ES_ATT_COLS][hd] the last keys of a step */
    double *l = (double *)(((uintptr_t)(kpad + ES_ATT_COLS * hd) + 7) &
                           ~(uintptr_t)7); /* [M] running sum */

    /* q pre-multiplied by the scale (exact for power-of-two scales such as 1/8) */
    for (int tq = 0; tq < nq; tq++) {
        const float *src = rs->q + (size_t)tok[tq] * c->n_q + (size_t)h0 * hd;
        float *dst = q + (size_t)tq * n_rep * hd;
        for (int e = 0; e < n_rep * hd; e++)
            dst[e] = src[e] * c->attn_scale;
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
                memcpy(kpad + (size_t)j * hd, K + (size_t)(k0 + nk_full + j) * c->n_k,
                       (size_t)hd * sizeof(float));
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
                for (int j = j0; j < j1; j++)
                    sr[j] = es_softcap(sr[j], c->attn_softcap);
            if (c->alibi_max_bias > 0.0f) {
                const float slope = alibi_slope(c, h0 + r % n_rep);
                for (int j = j0; j < j1; j++)
                    sr[j] += slope * (float)(k0 + j - p);
            }
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
        for (int e = 0; e < hdv; e++)
            out[e] = orow[e] * inv;
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

void es_kv_store(es_context *ctx, int layer, int n_tok) {
    const es_config *c = &ctx->model->cfg;
    const es_vecops *vo = es_vecops_get();
    const bool f16 = ctx->params.kv_type == ES_KV_F16;
    for (int t = 0; t < n_tok; t++) {
        const size_t cell = (((size_t)layer * ctx->params.n_seq_max + (size_t)ctx->rs.seq[t]) *
                                 (size_t)ctx->params.n_ctx +
                             (size_t)ctx->rs.pos[t]);
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

/* ---- the one call ------------------------------------------------------------------- */

void es_attention(es_context *ctx, int layer, int n_tok, bool swa) {
    const es_config *c = &ctx->model->cfg;
    const es_run_state *rs = &ctx->rs;
    /* whole KV groups per task when there are enough of them for the threads */
    const int n_rep = c->n_head / c->n_head_kv, nth = es_threadpool_size(ctx->tp);
    const int n_single = n_tok - rs->n_att_blocked;
    const int per =
        (n_rep <= ES_MAX_GROUP && n_single * c->n_head_kv >= 2 * nth) ? n_rep : 1; /* f16 */
    attn_args aa = {ctx, layer, n_tok, swa, per};
    const int64_t n_tasks =
        (int64_t)rs->n_att_blk * c->n_head_kv + (int64_t)n_single * c->n_head / per;
    es_threadpool_run(n_tasks > 1 ? ctx->tp : NULL, attention_task, &aa);
}
