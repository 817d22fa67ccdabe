/*
 * mla.c — the projections of multi-head latent attention (mla.h), as MiniCPM3 (and
 * llama.cpp's llm_build_minicpm3) computes them, with n_nope = head_dim - n_rot:
 *
 *   q      = q_b(rmsnorm(q_a(h), q_a_norm))          per head [q_nope (n_nope) | q_pe (n_rot)]
 *   c, kpe = kv_a_mqa(h)                             latent (kv_lora_rank) | shared key (n_rot)
 *   kv     = kv_b(rmsnorm(c, kv_a_norm))             per head [k_nope (n_nope) | v (head_dim_v)]
 *   k      = per head [k_nope | kpe],  v per head
 *
 * RoPE (NEOX pairs) turns the q_pe and kpe parts; the attention is then ordinary
 * multi-head attention with K heads of head_dim and V heads of head_dim_v (the cache
 * holds both widths), scaled by 1/sqrt(head_dim). Here each Q/K head is written
 * [pe | nope] so that forward.c's RoPE of a head's first n_rot dims applies: q·k is
 * the same sum in another order. The shared key is copied into every head before the
 * RoPE, which turns each copy by the same angles to the same values.
 */
#include "mla.h"

#include "ops.h"

#include <string.h>

typedef struct {
    es_context *ctx;
    int n_tok;
} mla_args;

/* Rows of rs.q, rs.k, rs.v from the projections, per token t and head h. */
static void assemble_task(void *p, int ith, int nth) {
    const mla_args *a = p;
    const es_config *c = &a->ctx->model->cfg;
    es_run_state *rs = &a->ctx->rs;
    const int hd = c->head_dim, hdv = c->head_dim_v, nr = c->n_rot, nn = hd - nr;
    const int kv_w = nn + hdv, kva_w = c->kv_lora_rank + nr;
    int64_t t0, t1;
    es_op_split(a->n_tok, ith, nth, &t0, &t1);
    for (int64_t t = t0; t < t1; t++) {
        const float *kpe = rs->mla_kva + (size_t)t * kva_w + c->kv_lora_rank;
        for (int h = 0; h < c->n_head; h++) {
            const float *qb = rs->mla_qb + ((size_t)t * c->n_head + h) * hd;
            const float *kv = rs->mla_kv + ((size_t)t * c->n_head + h) * kv_w;
            float *q = rs->q + ((size_t)t * c->n_head + h) * hd;
            float *k = rs->k + ((size_t)t * c->n_head + h) * hd;
            float *v = rs->v + ((size_t)t * c->n_head + h) * hdv;
            memcpy(q, qb + nn, (size_t)nr * sizeof(float)); /* q_pe */
            memcpy(q + nr, qb, (size_t)nn * sizeof(float)); /* q_nope */
            memcpy(k, kpe, (size_t)nr * sizeof(float));     /* the shared key */
            memcpy(k + nr, kv, (size_t)nn * sizeof(float)); /* k_nope */
            memcpy(v, kv + nn, (size_t)hdv * sizeof(float));
        }
    }
}

/* mla_lat[t] = the latent part of mla_kva[t]. */
static void latent_task(void *p, int ith, int nth) {
    const mla_args *a = p;
    const es_config *c = &a->ctx->model->cfg;
    es_run_state *rs = &a->ctx->rs;
    int64_t t0, t1;
    es_op_split(a->n_tok, ith, nth, &t0, &t1);
    for (int64_t t = t0; t < t1; t++)
        memcpy(rs->mla_lat + (size_t)t * c->kv_lora_rank,
               rs->mla_kva + (size_t)t * (c->kv_lora_rank + c->n_rot),
               (size_t)c->kv_lora_rank * sizeof(float));
}

void es_mla_qkv(es_context *ctx, int il, int n_tok) {
    const es_config *c = &ctx->model->cfg;
    const es_layer_weights *L = &ctx->model->w.layers[il];
    es_run_state *rs = &ctx->rs;

    /* q = q_b(rmsnorm(q_a(h))) */
    es_op_matmul(ctx, &L->wq_a, rs->xb, n_tok, rs->mla_qa);
    es_op_rmsnorm(ctx, rs->mla_qa, rs->mla_qa, L->q_a_norm, n_tok, c->q_lora_rank);
    es_op_matmul(ctx, &L->wq_b, rs->mla_qa, n_tok, rs->mla_qb);
    /* latent | shared key = kv_a_mqa(h); kv = kv_b(rmsnorm(latent)) */
    es_op_matmul(ctx, &L->wkv_a, rs->xb, n_tok, rs->mla_kva);
    mla_args a = {ctx, n_tok};
    es_op_run(ctx, latent_task, &a, (int64_t)n_tok * c->kv_lora_rank);
    es_op_rmsnorm(ctx, rs->mla_lat, rs->mla_lat, L->kv_a_norm, n_tok, c->kv_lora_rank);
    es_op_matmul(ctx, &L->wkv_b, rs->mla_lat, n_tok, rs->mla_kv);
    /* q, k, v heads, Q/K as [pe | nope] */
    es_op_run(ctx, assemble_task, &a, (int64_t)n_tok * (c->n_q + c->n_k + c->n_v));
}
