/*
 * arch.h — model architectures as data: one row per family of the table in arch.c
 * says how its decoder block differs from plain Llama (RoPE style, activation,
 * optional/required tensors, norms, soft-caps, sliding-window layout). The forward
 * pass (forward.c) reads these flags; there is no per-family copy of the math.
 *
 * Tensor names follow the GGUF convention ("blk.%d.attn_q.weight"); es_tensor_name
 * formats the name of a tensor role for a layer.
 */
#ifndef ES_ARCH_H
#define ES_ARCH_H

#include <stdbool.h>
#include <stddef.h>

/* How RoPE pairs the dimensions of a head. */
typedef enum es_rope_style {
    ES_ROPE_NORM = 0, /* adjacent pairs (2i, 2i+1): llama.cpp's converter permutes Q/K for it */
    ES_ROPE_NEOX = 1, /* halves (i, i + n_rot/2): Hugging Face rotate_half */
} es_rope_style;

/* Activation of the gated MLP: down(act(gate(x)) * up(x)). */
typedef enum es_ffn_act {
    ES_ACT_SILU = 0,      /* SwiGLU */
    ES_ACT_GELU_TANH = 1, /* GeGLU with the tanh approximation of GELU */
} es_ffn_act;

/* Every weight tensor a decoder may have. Names in arch.c. */
typedef enum es_tensor_role {
    ES_T_TOKEN_EMBD = 0, /* token_embd.weight        [n_vocab][n_embd] */
    ES_T_OUTPUT_NORM,    /* output_norm.weight       [n_embd] */
    ES_T_OUTPUT,     /* output.weight            [n_vocab][n_embd] (absent: tied to token_embd) */
    ES_T_ROPE_FREQS, /* rope_freqs.weight        [n_rot/2] frequency divisors (Llama 3.1) */
    ES_T_ROPE_SHORT, /* rope_factors_short.weight [n_rot/2] (Phi-3 LongRoPE, n_ctx <= original) */
    ES_T_ROPE_LONG,  /* rope_factors_long.weight  [n_rot/2] (Phi-3 LongRoPE, n_ctx > original) */
    /* per layer ("blk.%d.") */
    ES_T_ATTN_NORM,      /* attn_norm.weight         [n_embd] */
    ES_T_ATTN_Q,         /* attn_q.weight            [n_head*head_dim][n_embd] */
    ES_T_ATTN_K,         /* attn_k.weight            [n_head_kv*head_dim][n_embd] */
    ES_T_ATTN_V,         /* attn_v.weight            [n_head_kv*head_dim_v][n_embd] */
    ES_T_ATTN_QKV,       /* attn_qkv.weight          [q rows + k rows + v rows][n_embd] (fused) */
    ES_T_ATTN_Q_BIAS,    /* attn_q.bias              [n_head*head_dim] */
    ES_T_ATTN_K_BIAS,    /* attn_k.bias              [n_head_kv*head_dim] */
    ES_T_ATTN_V_BIAS,    /* attn_v.bias              [n_head_kv*head_dim_v] */
    ES_T_ATTN_QKV_BIAS,  /* attn_qkv.bias            [q + k + v rows] */
    ES_T_ATTN_Q_NORM,    /* attn_q_norm.weight       [head_dim] per-head RMSNorm */
    ES_T_ATTN_K_NORM,    /* attn_k_norm.weight       [head_dim] */
    ES_T_ATTN_OUT,       /* attn_output.weight       [n_embd][n_head*head_dim_v] */
    ES_T_ATTN_OUT_BIAS,  /* attn_output.bias         [n_embd] */
    ES_T_ATTN_POST_NORM, /* post_attention_norm.weight [n_embd] */
    ES_T_FFN_NORM,       /* ffn_norm.weight          [n_embd] */
    ES_T_FFN_GATE,       /* ffn_gate.weight          [n_ff][n_embd] */
    ES_T_FFN_UP, /* ffn_up.weight            [n_ff][n_embd] (fused: [2*n_ff][n_embd], gate first) */
    ES_T_FFN_DOWN,      /* ffn_down.weight          [n_embd][n_ff] */
    ES_T_FFN_POST_NORM, /* post_ffw_norm.weight     [n_embd] */
    /* mixture of experts (Qwen3-MoE, Mixtral): a router and n_expert FFNs in 3-D tensors */
    ES_T_FFN_GATE_INP,  /* ffn_gate_inp.weight      [n_expert][n_embd] router */
    ES_T_FFN_GATE_EXPS, /* ffn_gate_exps.weight     [n_expert][n_ff_exp][n_embd] */
    ES_T_FFN_UP_EXPS,   /* ffn_up_exps.weight       [n_expert][n_ff_exp][n_embd] */
    ES_T_FFN_DOWN_EXPS, /* ffn_down_exps.weight     [n_expert][n_embd][n_ff_exp] */
    /* multi-head latent attention (MiniCPM3) */
    ES_T_ATTN_Q_A,       /* attn_q_a.weight          [q_lora_rank][n_embd] */
    ES_T_ATTN_Q_A_NORM,  /* attn_q_a_norm.weight     [q_lora_rank] */
    ES_T_ATTN_Q_B,       /* attn_q_b.weight          [n_head*head_dim][q_lora_rank] */
    ES_T_ATTN_KV_A_MQA,  /* attn_kv_a_mqa.weight     [kv_lora_rank + n_rot][n_embd] latent | shared
                            RoPE key */
    ES_T_ATTN_KV_A_NORM, /* attn_kv_a_norm.weight    [kv_lora_rank] */
    ES_T_ATTN_KV_B,      /* attn_kv_b.weight         [n_head*(head_dim - n_rot +
                            head_dim_v)][kv_lora_rank] */
    ES_T_ROLE_COUNT
} es_tensor_role;

/* First per-layer role: roles below it are global tensors. */
#define ES_T_FIRST_LAYER_ROLE ES_T_ATTN_NORM

/* One architecture family. */
typedef struct es_arch {
    const char *name;            /* general.architecture value ("llama", "qwen2", ...) */
    es_rope_style rope;          /* how RoPE pairs dimensions */
    es_ffn_act act;              /* gated MLP activation */
    bool embd_scale;             /* embeddings multiplied by sqrt(n_embd) (Gemma) */
    bool fused_qkv;              /* one attn_qkv matrix instead of attn_q/k/v (Phi-3) */
    bool fused_gate_up;          /* ffn_up holds gate (first half) and up (second half) (Phi-3) */
    bool qk_norm;                /* per-head RMSNorm of Q and K before RoPE (Qwen3, Gemma 3) */
    bool post_norms;             /* RMSNorm of attention and MLP outputs before the residual add */
    int swa_pattern;             /* which layers use the sliding window (when the file sets one):
                                    0: none; 1: all; n > 1: all but those with il % n == n-1
                                    (Gemma 2: 2 = even layers, Gemma 3: 6 = 5 local then 1 global) */
    float rope_base_default;     /* when the file has no rope.freq_base */
    float rope_base_swa_default; /* sliding-window layers' base when the file has none (0: global
                                    base) */
    int big_variant_layers; /* layer count of the variant whose query scale is 1/sqrt(n_embd/n_head)
                               instead of 1/sqrt(head_dim) (Gemma 2 27B: 46, Gemma 3 27B: 62), 0 =
                               none */
    bool minicpm_scales;    /* embeddings × <arch>.embedding_scale, each residual branch ×
                               <arch>.residual_scale, logits ÷ <arch>.logit_scale; without the keys
                               llama.cpp's fallbacks 12, 1.4/sqrt(n_layer), 256/n_embd (MiniCPM) */
    bool ff_len_doubled;    /* feed_forward_length is twice the FFN width (Qwen v1) */
    int rope_n_layer;       /* > 0: RoPE only in files with this many layers, other counts have no
                               position encoding (Baichuan 7B: 32; llama.cpp's rule) */
    int alibi_n_layer; /* > 0: files with this many layers use ALiBi instead (Baichuan 13B: 40) */
    float alibi_max_bias; /* the ALiBi max bias of those files (Baichuan 13B: 8) */
} es_arch;

/* Scales a family applies that llama.cpp hard-codes for it instead of reading keys
 * (MiniCPM3: embeddings x 12, each residual branch x depth/sqrt(n_layer), the normed
 * output x n_embd_base/n_embd before the lm head). */
typedef struct es_arch_fixed_scales {
    const char *name;  /* family */
    float embd;        /* embedding multiplier */
    float depth;       /* residual branches x depth / sqrt(n_layer) */
    float n_embd_base; /* lm-head input x n_embd_base / n_embd */
} es_arch_fixed_scales;

/* The fixed scales of the family named `name`, or NULL if it has none. */
const es_arch_fixed_scales *es_arch_fixed_scales_find(const char *name);

/* The family named `name`, or NULL if unknown. */
const es_arch *es_arch_find(const char *name);

/* True for the encoder families (encoder.c), which es_decode does not run. */
bool es_arch_is_encoder(const es_arch *arch);

/* Comma-separated names of every supported family (static string). */
const char *es_arch_list(void);

/* Writes the GGUF name of `role` (for layer `layer` if per-layer) into buf.
 * Returns buf. */
char *es_tensor_name(es_tensor_role role, int layer, char *buf, size_t size);

/* True if `layer` uses the sliding window under this family's pattern. */
bool es_arch_layer_is_swa(const es_arch *arch, int layer);

#endif /* ES_ARCH_H */
