/*
 * context.h — internal: struct es_context = KV cache + RunState (scratch sized once
 * for n_batch tokens at creation; es_decode allocates nothing per token) + logits +
 * hooks and steering. One thread uses a context at a time.
 */
#ifndef ES_CONTEXT_H
#define ES_CONTEXT_H

#include "model.h"
#include "threadpool.h"

#include <stdint.h>

struct es_steer_state; /* steer.h */

/* Activations of the batch being decoded; B = n_batch (capacity), rows used = n_tokens. */
typedef struct es_run_state {
    float *x;         /* [B][n_embd] residual stream */
    float *xb;        /* [B][n_embd] normed input of the current sublayer */
    float *q;         /* [B][n_q] queries (RoPE'd) */
    float *k;         /* [B][n_k] keys (RoPE'd), copied into the cache */
    float *v;         /* [B][n_v] values, copied into the cache */
    float *qkv;       /* [B][n_q + n_k + n_v] fused projection (fused-QKV models only, else NULL) */
    float *att;       /* [B][n_head * head_dim_v] attention-weighted values */
    float *out;       /* [B][n_embd] sublayer output (attention after o_proj, then MLP) */
    float *gate;      /* [B][n_ff] gate projection (fused gate/up models: [B][2 * n_ff]) */
    float *hb;        /* [B][n_ff] act(gate) * up: input of the down projection */
    float *ablk;      /* [n_threads][es_attn_block_floats(cfg)] blocked-attention scratch (ES_KV_F32
                         only) */
    int32_t *att_tok; /* [B] batch indices grouped by sequence (f32 cache), else 0..n-1 */
    int32_t *att_blk; /* [B][2] (start in att_tok, count) of each block of queries */
    int32_t *att_cnt; /* [n_seq_max] tokens per sequence in the batch */
    int n_att_blk;    /* blocks in att_blk */
    int n_att_blocked; /* tokens in blocks: all (f32 cache) or none (f16 cache) */
    float *qh;         /* [B][n_q] queries rounded to f16, as f32 (ES_KV_F16 only, else NULL) */
    uint16_t *q16;     /* [n_q] f16 scratch of one query row (ES_KV_F16 only) */
    uint16_t *acc16; /* [n_threads][n_head/n_head_kv][head_dim_v] f16 value sums (ES_KV_F16 only) */
    float *rope_cs;  /* [B][n_rot/2][2] cos, sin per token for global layers */
    float *rope_cs_swa; /* [B][n_rot/2][2] the same for sliding-window layers */
    void *wsp;          /* es_model_matmul_wsize(model, B) bytes of matmul scratch */
    int32_t *pos;       /* [B] positions of the batch (filled when the caller passed NULL) */
    int32_t *seq;       /* [B] sequence ids of the batch */
    int32_t *first_pos; /* [n_seq_max] first position of each sequence in the batch, -1 if absent */
    int32_t *out_rows;  /* [B] batch indices of the tokens that want logits, in order */
    /* mixture of experts (cfg.n_expert > 0, else NULL); k = n_expert_used */
    float *moe_probs;  /* [B][n_expert] router logits, then softmax probabilities */
    int32_t *moe_sel;  /* [B][k] experts of each token, best first (of the last MoE layer run) */
    float *moe_w;      /* [B][k] their weights, summing to 1 */
    int32_t *moe_off;  /* [n_expert + 1] start of each expert's rows in moe_tok */
    int32_t *moe_next; /* [n_expert] next free row of each expert while grouping */
    int32_t *moe_tok;  /* [B * k] token of each row, grouped by expert */
    float *moe_wt;     /* [B * k] weight of each row */
    int32_t *moe_row;  /* [B * k] the row of each (token, slot) */
    float *moe_x;      /* [B * k][n_embd] the rows' inputs, grouped by expert */
    float *moe_gate;   /* [B * k][n_ff_exp] their gate projections */
    float *moe_up;     /* [B * k][n_ff_exp] their up projections, then act(gate) * up */
    float *moe_y;      /* [B * k][n_embd] their experts' outputs */
    struct es_matmul_group *moe_groups; /* [2 * n_expert] the products of one step */
    /* multi-head latent attention (cfg.kv_lora_rank > 0, else NULL) */
    float *mla_qa;  /* [B][q_lora_rank] query latent */
    float *mla_qb;  /* [B][n_q] queries as q_b gives them: per head [non-rope | rope] */
    float *mla_kva; /* [B][kv_lora_rank + n_rot] key/value latent | shared RoPE key */
    float *mla_lat; /* [B][kv_lora_rank] the normed latent */
    float *mla_kv;  /* [B][n_head * (head_dim - n_rot + head_dim_v)] per head [k non-rope | v] */
} es_run_state;

/* Floats of per-thread scratch that blocked attention needs (attention.c). */
size_t es_attn_block_floats(const es_config *c);

struct es_context {
    es_model *model;          /* borrowed; outlives the context */
    es_context_params params; /* as used: n_ctx clamped, n_threads >= 1 */
    es_threadpool *tp;        /* n_threads workers (owned) */

    /* KV cache: K/V after RoPE, per layer and sequence; elements are float (ES_KV_F32)
     * or uint16_t f16 (ES_KV_F16), see params.kv_type */
    void *k_cache;             /* [n_layer][n_seq_max][n_ctx][n_k] (owned) */
    void *v_cache;             /* [n_layer][n_seq_max][n_ctx][n_v] (owned) */
    int32_t *kv_len;           /* [n_seq_max] positions cached per sequence */
    const es_rope_freqs *rope; /* RoPE of global layers (the model's short or long factors) */

    es_run_state rs; /* scratch */

    float *logits;       /* [logits_cap][n_vocab] rows of the last batch's logits (owned) */
    int logits_cap;      /* rows allocated (grows when a batch asks for more) */
    int32_t *logits_row; /* [n_batch] row in `logits` of batch token i, or -1 */
    int last_n_tokens;   /* size of the last decoded batch */

    es_hook_fn hook; /* user hook, or NULL */
    void *hook_user;
    struct es_steer_state *steer; /* owned; NULL when no steering */
};

#endif /* ES_CONTEXT_H */
