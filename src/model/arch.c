/* arch.c — the table of supported architecture families and tensor names (see arch.h). */
#include "arch.h"

#include <stdio.h>
#include <string.h>

/* Facts per family, from the Hugging Face modeling code and llama.cpp's converter:
 *  - llama/mistral: Q/K rows are permuted by the converter so adjacent-pair RoPE applies.
 *  - qwen2, qwen3, gemma, gemma2, gemma3, phi3: Hugging Face rotate_half RoPE, unpermuted (NEOX
 * style).
 *  - gemma, gemma2, gemma3: embeddings scaled by sqrt(d), GELU-tanh, norms stored as 1+w by the
 * converter.
 *  - gemma2: sliding window on even layers; gemma3: 5 local layers then 1 global.
 *  - phi3: a sliding window, when the file sets one, on every layer.
 *  - qwen3moe: qwen3 with routed experts; any family whose file has expert_count > 0
 *    runs the mixture-of-experts FFN (moe.c), e.g. Mixtral as "llama".
 *  - minicpm3: multi-head latent attention (mla.c, chosen by attention.kv_lora_rank > 0),
 *    LongRoPE factors, and the fixed scales of the table below.
 *  - minicpm (MiniCPM 1/2): Llama with embedding, residual-branch and logit scales read from
 *    the file (llama.cpp's llama_load_hparams_minicpm; keys <arch>.embedding_scale,
 *    .residual_scale, .logit_scale).
 *  - baichuan: Llama with W_pack split into Q/K/V by the converter (Q/K permuted). llama.cpp
 *    (llama_load_hparams_baichuan, llm_build_baichuan) types the model by its layer count:
 *    32 = 7B, RoPE; 40 = 13B, ALiBi with max bias 8; any other count gets no position
 *    encoding at all. We follow that rule so that our logits match llama.cpp's.
 *  - qwen (Qwen v1): fused attn_qkv with bias, NEOX RoPE, ffn_gate = w2 (under the SiLU) and
 *    ffn_up = w1; feed_forward_length is written as twice the width (llama.cpp: n_ff/2). */
/* Columns after the first twelve (arch.h, from minicpm_scales on) are named in the rows that
 * use them; every other row leaves them 0 / false, hence the pragma. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
static const es_arch arch_table[] = {
    /* name      rope          act               embd   fqkv   fgu    qkn    post   swa  base
       base_swa  27B */
    {"llama", ES_ROPE_NORM, ES_ACT_SILU, false, false, false, false, false, 0, 10000.0f, 0.0f, 0},
    {"mistral", ES_ROPE_NORM, ES_ACT_SILU, false, false, false, false, false, 0, 10000.0f, 0.0f, 0},
    {"qwen2", ES_ROPE_NEOX, ES_ACT_SILU, false, false, false, false, false, 0, 10000.0f, 0.0f, 0},
    {"qwen3", ES_ROPE_NEOX, ES_ACT_SILU, false, false, false, true, false, 0, 10000.0f, 0.0f, 0},
    {"gemma", ES_ROPE_NEOX, ES_ACT_GELU_TANH, true, false, false, false, false, 0, 10000.0f, 0.0f,
     0},
    {"gemma2", ES_ROPE_NEOX, ES_ACT_GELU_TANH, true, false, false, false, true, 2, 10000.0f, 0.0f,
     46},
    {"gemma3", ES_ROPE_NEOX, ES_ACT_GELU_TANH, true, false, false, true, true, 6, 1000000.0f,
     10000.0f, 62},
    {"phi3", ES_ROPE_NEOX, ES_ACT_SILU, false, true, true, false, false, 1, 10000.0f, 0.0f, 0},
    {"qwen3moe", ES_ROPE_NEOX, ES_ACT_SILU, false, false, false, true, false, 0, 10000.0f, 0.0f, 0},
    {"minicpm3", ES_ROPE_NEOX, ES_ACT_SILU, false, false, false, false, false, 0, 10000.0f, 0.0f,
     0},
    {"minicpm", ES_ROPE_NORM, ES_ACT_SILU, false, false, false, false, false, 0, 10000.0f, 0.0f, 0,
     .minicpm_scales = true},
    {"baichuan", ES_ROPE_NORM, ES_ACT_SILU, false, false, false, false, false, 0, 10000.0f, 0.0f, 0,
     .rope_n_layer = 32, .alibi_n_layer = 40, .alibi_max_bias = 8.0f},
    {"qwen", ES_ROPE_NEOX, ES_ACT_SILU, false, true, false, false, false, 0, 10000.0f, 0.0f, 0,
     .ff_len_doubled = true},
};
#pragma GCC diagnostic pop

/* Encoder families (encoder.c: bidirectional post-LayerNorm blocks, learned positions, no
 * RoPE): "bert" is what llama.cpp's converter writes for BERT, RoBERTa and XLM-RoBERTa. */
static const es_arch encoder_arch_table[] = {
    {.name = "bert", .rope_base_default = 10000.0f},
};

/* GGUF names; per-layer ones are formats taking the layer index. */
static const char *const tensor_names[ES_T_ROLE_COUNT] = {
    [ES_T_TOKEN_EMBD] = "token_embd.weight",
    [ES_T_OUTPUT_NORM] = "output_norm.weight",
    [ES_T_OUTPUT] = "output.weight",
    [ES_T_ROPE_FREQS] = "rope_freqs.weight",
    [ES_T_ROPE_SHORT] = "rope_factors_short.weight",
    [ES_T_ROPE_LONG] = "rope_factors_long.weight",
    [ES_T_ATTN_NORM] = "blk.%d.attn_norm.weight",
    [ES_T_ATTN_Q] = "blk.%d.attn_q.weight",
    [ES_T_ATTN_K] = "blk.%d.attn_k.weight",
    [ES_T_ATTN_V] = "blk.%d.attn_v.weight",
    [ES_T_ATTN_QKV] = "blk.%d.attn_qkv.weight",
    [ES_T_ATTN_Q_BIAS] = "blk.%d.attn_q.bias",
    [ES_T_ATTN_K_BIAS] = "blk.%d.attn_k.bias",
    [ES_T_ATTN_V_BIAS] = "blk.%d.attn_v.bias",
    [ES_T_ATTN_QKV_BIAS] = "blk.%d.attn_qkv.bias",
    [ES_T_ATTN_Q_NORM] = "blk.%d.attn_q_norm.weight",
    [ES_T_ATTN_K_NORM] = "blk.%d.attn_k_norm.weight",
    [ES_T_ATTN_OUT] = "blk.%d.attn_output.weight",
    [ES_T_ATTN_OUT_BIAS] = "blk.%d.attn_output.bias",
    [ES_T_ATTN_POST_NORM] = "blk.%d.post_attention_norm.weight",
    [ES_T_FFN_NORM] = "blk.%d.ffn_norm.weight",
    [ES_T_FFN_GATE] = "blk.%d.ffn_gate.weight",
    [ES_T_FFN_UP] = "blk.%d.ffn_up.weight",
    [ES_T_FFN_DOWN] = "blk.%d.ffn_down.weight",
    [ES_T_FFN_POST_NORM] = "blk.%d.post_ffw_norm.weight",
    [ES_T_FFN_GATE_INP] = "blk.%d.ffn_gate_inp.weight",
    [ES_T_FFN_GATE_EXPS] = "blk.%d.ffn_gate_exps.weight",
    [ES_T_FFN_UP_EXPS] = "blk.%d.ffn_up_exps.weight",
    [ES_T_FFN_DOWN_EXPS] = "blk.%d.ffn_down_exps.weight",
    [ES_T_ATTN_Q_A] = "blk.%d.attn_q_a.weight",
    [ES_T_ATTN_Q_A_NORM] = "blk.%d.attn_q_a_norm.weight",
    [ES_T_ATTN_Q_B] = "blk.%d.attn_q_b.weight",
    [ES_T_ATTN_KV_A_MQA] = "blk.%d.attn_kv_a_mqa.weight",
    [ES_T_ATTN_KV_A_NORM] = "blk.%d.attn_kv_a_norm.weight",
    [ES_T_ATTN_KV_B] = "blk.%d.attn_kv_b.weight",
};

/* llama.cpp's llm_build_minicpm3 hard-codes these (its files carry no keys for them). */
static const es_arch_fixed_scales fixed_scales_table[] = {
    {"minicpm3", 12.0f, 1.4f, 256.0f},
};

const es_arch_fixed_scales *es_arch_fixed_scales_find(const char *name) {
    if (!name) return NULL;
    for (size_t i = 0; i < sizeof fixed_scales_table / sizeof fixed_scales_table[0]; i++)
        if (!strcmp(fixed_scales_table[i].name, name)) return &fixed_scales_table[i];
    return NULL;
}

const es_arch *es_arch_find(const char *name) {
    if (!name) return NULL;
    for (size_t i = 0; i < sizeof arch_table / sizeof arch_table[0]; i++)
        if (!strcmp(arch_table[i].name, name)) return &arch_table[i];
    for (size_t i = 0; i < sizeof encoder_arch_table / sizeof encoder_arch_table[0]; i++)
        if (!strcmp(encoder_arch_table[i].name, name)) return &encoder_arch_table[i];
    return NULL;
}

bool es_arch_is_encoder(const es_arch *arch) {
    const size_t n = sizeof encoder_arch_table / sizeof encoder_arch_table[0];
    return arch && arch >= encoder_arch_table && arch < encoder_arch_table + n;
}

const char *es_arch_list(void) {
    return "llama, mistral, qwen2, qwen3, gemma, gemma2, gemma3, phi3, minicpm, baichuan, qwen, "
           "qwen3moe, minicpm3"
           ", bert (encoder classifiers)";
}

char *es_tensor_name(es_tensor_role role, int layer, char *buf, size_t size) {
    if (size == 0) return buf;
    if ((int)role < 0 || role >= ES_T_ROLE_COUNT) {
        buf[0] = '\0';
        return buf;
    }
    if (role >= ES_T_FIRST_LAYER_ROLE)
        snprintf(buf, size, tensor_names[role], layer);
    else
        snprintf(buf, size, "%s", tensor_names[role]);
    return buf;
}

bool es_arch_layer_is_swa(const es_arch *arch, int layer) {
    if (arch->swa_pattern <= 0) return false;
    if (arch->swa_pattern == 1) return true;
    return layer % arch->swa_pattern != arch->swa_pattern - 1;
}
