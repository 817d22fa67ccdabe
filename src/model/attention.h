/*
 * attention.h — internal: the attention of one layer over the KV cache, for every
 * query head of a batch (attention.c). Which algorithm runs follows the context's
 * cache type: exact blocked attention for ES_KV_F32, a flash-attention-style online
 * softmax with f16 value sums for ES_KV_F16; the caller sees one call.
 *
 * Per es_decode: es_attn_plan once, then per layer es_kv_store and es_attention.
 */
#ifndef ES_ATTENTION_H
#define ES_ATTENTION_H

#include "context.h"

#include <math.h>
#include <stdbool.h>

/* Soft-cap: tanh(x / cap) * cap (attention scores here, output logits in forward.c). */
static inline float es_softcap(float x, float cap) {
    return tanhf(x / cap) * cap;
}

/* Orders the batch's n_tok tokens for attention: fills rs.att_tok, att_blk, att_cnt,
 * n_att_blk, n_att_blocked from rs.seq (es_batch_prepare has filled it). */
void es_attn_plan(es_context *ctx, int n_tok);

/* cache[layer][seq][pos] = k, v for the batch's rows rs.k, rs.v at rs.seq, rs.pos;
 * rounded to f16 for ES_KV_F16, and then the queries too (rs.q -> rs.qh). */
void es_kv_store(es_context *ctx, int layer, int n_tok);

/* rs.att[t] = softmax(softcap(attn_scale · q_t·Kᵀ) + causal/sliding mask) · V per query
 * head, grouped-query (n_head / n_head_kv heads share a KV head), for the n_tok tokens
 * of the batch; q_t = rs.q (f32 cache) or rs.qh (f16 cache), K and V the layer's cache
 * of the token's sequence up to its position, the last n_swa positions only when swa. */
void es_attention(es_context *ctx, int layer, int n_tok, bool swa);

#endif /* ES_ATTENTION_H */
