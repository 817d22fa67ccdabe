/*
 * model.h — internal: a loaded model = Config (hyperparameters) + Weights (views into
 * the GGUF mapping) + the vocabulary. Immutable after es_model_load; shared by any
 * number of contexts (context.h holds the per-context RunState and KV cache).
 *
 * Weight matrices are used in place: W points into the mapping, rows of n_in
 * elements of `type`, n_out rows (GGUF ne = [n_in, n_out]). Only norm vectors and
 * biases stored as f16/bf16 are converted to owned f32 copies at load.
 */
#ifndef ES_MODEL_H
#define ES_MODEL_H

#include "arch.h"
#include "common.h"
#include "gguf.h"

#include <stdbool.h>
#include <stdint.h>

struct es_vocab; /* tokenizer.h */

/* Hyperparameters, read from the GGUF metadata and checked against tensor shapes. */
typedef struct es_config {
    const es_arch *arch;    /* family row of arch.c */
    int n_layer;            /* decoder blocks */
    int n_embd;             /* residual width d_model */
    int n_head;             /* query heads */
    int n_head_kv;          /* key/value heads (n_head % n_head_kv == 0) */
    int head_dim;           /* width of a Q/K head */
    int head_dim_v;         /* width of a V head */
    int n_ff;               /* MLP hidden width */
    int n_vocab;            /* rows of token_embd / output */
    int n_ctx_train;        /* trained context length */
    int n_rot;              /* RoPE'd dims per head (<= head_dim, even) */
    float norm_eps;         /* RMSNorm epsilon */
    float rope_base;        /* RoPE theta of global layers */
    float rope_base_swa;    /* RoPE theta of sliding-window layers */
    float rope_pos_scale;   /* positions are multiplied by this (linear scaling: 1/factor) */
    float rope_attn_factor; /* cos/sin multiplied by this (LongRoPE attention factor; 1 = none) */
    int n_ctx_orig;         /* LongRoPE: original context (short factors up to it), 0 = none */
    float attn_scale;       /* query scale: 1/sqrt(head_dim) unless the file says otherwise */
    float attn_softcap;     /* attention logits: tanh(s/c)*c; 0 = none */
    float final_softcap;    /* output logits: tanh(l/c)*c; 0 = none */
    int n_swa;              /* sliding window (keys with pos > q_pos - n_swa), 0 = none */
    float embd_scale;       /* embeddings multiplied by this (sqrt(n_embd) for Gemma, else 1) */
    float residual_scale;   /* each residual branch multiplied by this before the add (MiniCPM: from
                               the file; MiniCPM3: fixed), else 1 */
    float logit_scale;      /* logits multiplied by 1/logit_scale (MiniCPM), else 1 */
    float alibi_max_bias;   /* > 0: ALiBi with this max bias, no RoPE (Baichuan 13B), else 0 */
    int n_q;                /* n_head * head_dim    (rows of Wq) */
    int n_k;                /* n_head_kv * head_dim (rows of Wk) */
    int n_v;                /* n_head_kv * head_dim_v (rows of Wv) */
    int n_expert;           /* routed experts per MoE layer (expert_count), 0 = dense FFN */
    int n_expert_used;      /* experts each token is routed to (expert_used_count, top-k) */
    int n_ff_exp;           /* hidden width of one expert (expert_feed_forward_length, else n_ff) */
    int q_lora_rank;        /* MLA: rank of the query latent (attention.q_lora_rank) */
    int kv_lora_rank;   /* MLA: rank of the key/value latent (attention.kv_lora_rank), 0 = no MLA */
    float lmhead_scale; /* the normed output is multiplied by this before the lm head (1 = none) */
} es_config;

/* A weight matrix in the mapping: n_out rows of n_in elements of `type`. */
typedef struct es_matrix {
    const void *data; /* [n_out][row bytes] in the mapping, NULL if absent */
    int type;         /* es_type */
    int64_t n_in;     /* ne[0] */
    int64_t n_out;    /* ne[1] */
} es_matrix;

/* n_expert matrices of the same shape back to back in one 3-D tensor (GGUF ne =
 * [n_in, n_out, n_expert]): expert e is `m` with data advanced by e * stride bytes. */
/* Most experts a token is routed to (expert_used_count); files asking more are refused. */
#define ES_MAX_EXPERT_USED 64

typedef struct es_experts {
    es_matrix m;   /* expert 0: [n_out][n_in] */
    size_t stride; /* bytes from one expert's matrix to the next */
} es_experts;

typedef struct es_layer_weights {
    const float *attn_norm;      /* [n_embd] */
    es_matrix wq;                /* [n_q][n_embd] (fused models: NULL data) */
    es_matrix wk;                /* [n_k][n_embd] */
    es_matrix wv;                /* [n_v][n_embd] */
    es_matrix wqkv;              /* [n_q + n_k + n_v][n_embd] (fused models only) */
    const float *bq;             /* [n_q] or NULL */
    const float *bk;             /* [n_k] or NULL */
    const float *bv;             /* [n_v] or NULL */
    const float *q_norm;         /* [head_dim] or NULL */
    const float *k_norm;         /* [head_dim] or NULL */
    es_matrix wo;                /* [n_embd][n_head * head_dim_v] */
    const float *bo;             /* [n_embd] or NULL */
    const float *attn_post_norm; /* [n_embd] or NULL */
    const float *ffn_norm;       /* [n_embd] */
    es_matrix w_gate;            /* [n_ff][n_embd] (fused models: NULL data) */
    es_matrix w_up;              /* [n_ff][n_embd], fused: [2*n_ff][n_embd] gate rows first */
    es_matrix w_down;            /* [n_embd][n_ff] */
    const float *ffn_post_norm;  /* [n_embd] or NULL */
    es_matrix ffn_gate_inp;      /* MoE router [n_expert][n_embd] (dense models: NULL data) */
    es_experts ffn_gate_exps;    /* MoE: [n_expert] x [n_ff_exp][n_embd] */
    es_experts ffn_up_exps;      /* MoE: [n_expert] x [n_ff_exp][n_embd] */
    es_experts ffn_down_exps;    /* MoE: [n_expert] x [n_embd][n_ff_exp] */
    es_matrix wq_a;              /* MLA: [q_lora_rank][n_embd] (others: NULL data) */
    const float *q_a_norm;       /* MLA: [q_lora_rank] */
    es_matrix wq_b;              /* MLA: [n_q][q_lora_rank] */
    es_matrix wkv_a;             /* MLA: [kv_lora_rank + n_rot][n_embd] */
    const float *kv_a_norm;      /* MLA: [kv_lora_rank] */
    es_matrix wkv_b;             /* MLA: [n_head * (head_dim - n_rot + head_dim_v)][kv_lora_rank] */
    bool swa;                    /* this layer uses the sliding window and rope_base_swa */
} es_layer_weights;

/* RoPE angles, computed as llama.cpp's CPU backend does (so that quantized models give its
 * logits bit for bit): for position p, theta_0 = p and theta_{i+1} = theta_i · theta_scale
 * in float, angle_i = pos_scale · (theta_i / factors[i]), cos/sin in float. */
typedef struct es_rope_freqs {
    float theta_scale; /* base^(−2/n_rot) */
    float pos_scale;   /* linear position scaling (1 = none) */
    const float
        *factors; /* [n_rot/2] frequency divisors (finite, > 0; in the mapped file) or NULL */
} es_rope_freqs;

typedef struct es_weights {
    es_matrix token_embd;     /* [n_vocab][n_embd] */
    const float *output_norm; /* [n_embd] */
    es_matrix output;         /* [n_vocab][n_embd] (== token_embd when tied) */
    bool tied;                /* output is token_embd */
    es_rope_freqs rope;       /* global layers (factors from rope_freqs or rope_factors_short) */
    es_rope_freqs
        rope_long; /* LongRoPE: rope_factors_long, used when a context's n_ctx > n_ctx_orig */
    bool has_rope_long;
    es_rope_freqs rope_swa;   /* sliding-window layers: rope_base_swa, no scaling */
    es_layer_weights *layers; /* [n_layer] (owned) */
} es_weights;

struct es_model {
    es_config cfg;
    es_weights w;
    es_gguf *gguf;          /* owns the mapping the weights point into */
    void *file_copy;        /* use_mmap == false: the file read into memory (owned), else NULL */
    char *arch_name;        /* general.architecture (owned) */
    char *name;             /* general.name or "" (owned) */
    struct es_vocab *vocab; /* tokenizer, or NULL if the file has none (owned) */
    void (*vocab_free)(struct es_vocab *); /* frees vocab (set by the text layer) */
    float **owned;                         /* f32 copies of f16 norm vectors and biases */
    int n_owned, cap_owned;
    uint64_t n_params;     /* weight elements */
    uint64_t weight_bytes; /* bytes of all tensors */
    char *chat_template;   /* tokenizer.chat_template or NULL (owned) */
    char features[256];    /* what the family does beyond plain Llama, for es_model_info */
    struct es_encoder_weights
        *enc; /* encoder families (encoder.h): their weights, else NULL (owned) */
};

/* Loads the weights and configuration of a GGUF model, without its vocabulary: the
 * text layer's es_model_load calls this, then attaches the tokenizer. Same contract
 * as es_model_load otherwise. */
es_status es_model_open(const char *path, const es_model_params *params, es_model **out);

/* Hands `vocab` to the model, which frees it with vocab_free in es_model_free. Only
 * while the model is being loaded (it is immutable afterwards). */
void es_model_attach_vocab(es_model *m, struct es_vocab *vocab,
                           void (*vocab_free)(struct es_vocab *));

/* Binds the tensor `name` as a matrix [n_out][n_in] / a vector of n floats (F32 in place,
 * other types converted to an owned copy), checking shape and type; absent and optional
 * leaves out zeroed / NULL. For the weight binders of other files (encoder.c). */
es_status es_model_bind_matrix(es_model *m, const char *name, int64_t n_in, int64_t n_out,
                               bool required, es_matrix *out);
es_status es_model_bind_vector(es_model *m, const char *name, int64_t n, bool required,
                               const float **out);

/* Bytes of matmul scratch needed to multiply any weight of the model by n_tok rows. */
size_t es_model_matmul_wsize(const es_model *m, int64_t n_tok);

#endif /* ES_MODEL_H */
