/*
 * model.c — es_model_open: open the GGUF, read the Config from its metadata, bind
 * the Weights to tensors in the mapping (checking every name, shape and type). The
 * vocabulary is attached by the text layer (text/model_load.c). Nothing is computed
 * here; see forward.c.
 */
#include "model.h"

#include "encoder.h"
#include "file.h"

#include "matmul.h"
#include "types.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* ---- metadata -------------------------------------------------------------- */

/* "<arch>.<suffix>" into buf. */
static const char *arch_key(const es_model *m, const char *suffix, char *buf, size_t size) {
    snprintf(buf, size, "%s.%s", m->arch_name, suffix);
    return buf;
}

/* Reads a positive integer key; a missing key gives `def` (or an error when def < 0). */
static es_status read_int(const es_model *m, const char *suffix, int def, int lo, int hi,
                          int *out) {
    char key[160];
    arch_key(m, suffix, key, sizeof key);
    int64_t v;
    es_status st = es_gguf_get_i64(m->gguf, key, &v);
    if (st == ES_ERR_NOT_FOUND) {
        if (def < 0) return es_error(ES_ERR_FORMAT, "model: metadata key %s is missing", key);
        *out = def;
        return ES_OK;
    }
    if (st != ES_OK) return es_error_prefix(st, "model");
    if (v < lo || v > hi)
        return es_error(ES_ERR_FORMAT, "model: %s = %lld is outside [%d, %d]", key, (long long)v,
                        lo, hi);
    *out = (int)v;
    return ES_OK;
}

/* Reads a float key; a missing key gives `def`. */
static es_status read_float(const es_model *m, const char *suffix, float def, float *out) {
    char key[160];
    arch_key(m, suffix, key, sizeof key);
    float v;
    es_status st = es_gguf_get_f32(m->gguf, key, &v);
    if (st == ES_ERR_NOT_FOUND) {
        *out = def;
        return ES_OK;
    }
    if (st != ES_OK) return es_error_prefix(st, "model");
    if (!isfinite(v)) return es_error(ES_ERR_FORMAT, "model: %s is not finite", key);
    *out = v;
    return ES_OK;
}

#define ES_MAX_DIM (1 << 24) /* sanity bound on any width read from a file */

/* Mixture of experts: expert_count > 0 replaces the dense FFN of every layer by
 * n_expert_used of n_expert routed experts (moe.c). */
static es_status read_moe_config(es_model *m) {
    es_config *c = &m->cfg;
    es_status st;
    if ((st = read_int(m, "expert_count", 0, 0, 4096, &c->n_expert))) return st;
    if (c->n_expert == 0) return ES_OK;
    if ((st = read_int(m, "expert_used_count", -1, 1, ES_MIN(c->n_expert, ES_MAX_EXPERT_USED),
                       &c->n_expert_used)))
        return st;
    return read_int(m, "expert_feed_forward_length", c->n_ff, 1, ES_MAX_DIM, &c->n_ff_exp);
}

/* Multi-head latent attention as MiniCPM3 has it: a query latent, every KV head its own
 * (n_head_kv = n_head), the last n_rot dims of a K head the shared RoPE key. */
static es_status check_mla_config(const es_config *c) {
    if (c->kv_lora_rank == 0) return ES_OK;
    if (c->q_lora_rank == 0)
        return es_error(ES_ERR_UNSUPPORTED,
                        "model: latent attention without a query latent (q_lora_rank 0) "
                        "is not supported");
    if (c->n_head_kv != c->n_head)
        return es_error(ES_ERR_FORMAT,
                        "model: latent attention needs head_count_kv %d = head_count %d",
                        c->n_head_kv, c->n_head);
    if (c->n_rot == 0 || c->n_rot >= c->head_dim)
        return es_error(ES_ERR_FORMAT,
                        "model: latent attention needs 0 < rope dims %d < key length %d", c->n_rot,
                        c->head_dim);
    return ES_OK;
}

/* What the arch row's later columns add: MiniCPM's three scales, Qwen v1's doubled FFN
 * length, Baichuan's position encoding by layer count (arch.c). */
static es_status read_family_config(es_model *m) {
    es_config *c = &m->cfg;
    const es_arch *a = c->arch;
    es_status st;
    c->residual_scale = 1.0f;
    c->logit_scale = 1.0f;
    c->alibi_max_bias = 0.0f;
    if (a->minicpm_scales) {
        if ((st = read_float(m, "embedding_scale", 12.0f, &c->embd_scale))) return st;
        if ((st = read_float(m, "residual_scale", 1.4f / sqrtf((float)c->n_layer),
                             &c->residual_scale)))
            return st;
        if ((st = read_float(m, "logit_scale", 256.0f / (float)c->n_embd, &c->logit_scale)))
            return st;
        if (!(c->logit_scale != 0.0f))
            return es_error(ES_ERR_FORMAT, "model: %s.logit_scale must not be 0", m->arch_name);
    }
    if (a->ff_len_doubled) {
        if (c->n_ff % 2 != 0)
            return es_error(
                ES_ERR_FORMAT,
                "model: %s.feed_forward_length %d is odd (it holds twice the FFN width)",
                m->arch_name, c->n_ff);
        c->n_ff /= 2;
    }
    if (a->alibi_n_layer > 0 && c->n_layer == a->alibi_n_layer) {
        c->alibi_max_bias = a->alibi_max_bias;
        c->n_rot = 0;
    } else if (a->rope_n_layer > 0 && c->n_layer != a->rope_n_layer) {
        c->n_rot = 0; /* llama.cpp's LLM_TYPE_UNKNOWN: no position encoding */
    }
    return ES_OK;
}

static es_status read_config(es_model *m) {
    es_config *c = &m->cfg;
    es_status st;
    if ((st = read_int(m, "block_count", -1, 1, 4096, &c->n_layer))) return st;
    if ((st = read_int(m, "embedding_length", -1, 1, ES_MAX_DIM, &c->n_embd))) return st;
    if ((st = read_int(m, "attention.head_count", -1, 1, 65536, &c->n_head))) return st;
    if ((st = read_int(m, "attention.head_count_kv", c->n_head, 1, c->n_head, &c->n_head_kv)))
        return st;
    if ((st = read_int(m, "feed_forward_length", -1, 1, ES_MAX_DIM, &c->n_ff))) return st;
    if ((st = read_int(m, "context_length", 2048, 1, 1 << 30, &c->n_ctx_train))) return st;
    if ((st = read_int(m, "attention.key_length", c->n_embd / c->n_head, 1, 65536, &c->head_dim)))
        return st;
    /* multi-head latent attention (MiniCPM3): V heads default to n_embd / n_head, as in llama.cpp
     */
    if ((st = read_int(m, "attention.kv_lora_rank", 0, 0, ES_MAX_DIM, &c->kv_lora_rank))) return st;
    if ((st = read_int(m, "attention.q_lora_rank", 0, 0, ES_MAX_DIM, &c->q_lora_rank))) return st;
    const int v_default = c->kv_lora_rank > 0 ? c->n_embd / c->n_head : c->head_dim;
    if ((st = read_int(m, "attention.value_length", v_default, 1, 65536, &c->head_dim_v)))
        return st;
    if ((st = read_int(m, "rope.dimension_count", c->head_dim, 0, c->head_dim, &c->n_rot)))
        return st;
    if (c->n_head % c->n_head_kv != 0)
        return es_error(ES_ERR_FORMAT, "model: %d query heads are not a multiple of %d KV heads",
                        c->n_head, c->n_head_kv);
    if (c->n_rot % 2 != 0)
        return es_error(ES_ERR_FORMAT, "model: rope.dimension_count %d is odd", c->n_rot);
    if ((int64_t)c->n_head * c->head_dim > ES_MAX_DIM ||
        (int64_t)c->n_head * c->head_dim_v > ES_MAX_DIM)
        return es_error(ES_ERR_FORMAT, "model: %d heads of %d are too wide", c->n_head,
                        c->head_dim);
    c->n_q = c->n_head * c->head_dim;
    c->n_k = c->n_head_kv * c->head_dim;
    c->n_v = c->n_head_kv * c->head_dim_v;

    if ((st = read_float(m, "attention.layer_norm_rms_epsilon", 1e-5f, &c->norm_eps))) return st;
    if (!(c->norm_eps >= 0.0f)) return es_error(ES_ERR_FORMAT, "model: negative RMSNorm epsilon");
    if ((st = read_float(m, "rope.freq_base", c->arch->rope_base_default, &c->rope_base)))
        return st;
    float swa_default =
        c->arch->rope_base_swa_default > 0 ? c->arch->rope_base_swa_default : c->rope_base;
    if ((st = read_float(m, "rope.freq_base_swa", swa_default, &c->rope_base_swa))) return st;
    if (!(c->rope_base > 1.0f) || !(c->rope_base_swa > 1.0f))
        return es_error(ES_ERR_FORMAT, "model: RoPE base %g / %g must be > 1", c->rope_base,
                        c->rope_base_swa);

    /* RoPE scaling: linear (positions / factor) is supported; others are refused by name. */
    c->rope_pos_scale = 1.0f;
    char key[160];
    char *stype = es_gguf_get_str_dup(m->gguf, arch_key(m, "rope.scaling.type", key, sizeof key));
    float factor;
    if ((st = read_float(m, "rope.scaling.factor", 1.0f, &factor))) {
        free(stype);
        return st;
    }
    if (stype && strcmp(stype, "none") != 0 && strcmp(stype, "linear") != 0) {
        st = es_error(ES_ERR_UNSUPPORTED, "model: RoPE scaling type '%s' is not supported", stype);
        free(stype);
        return st;
    }
    if (stype && !strcmp(stype, "linear") && factor > 0.0f) c->rope_pos_scale = 1.0f / factor;
    free(stype);
    float scale_linear;
    if ((st = read_float(m, "rope.scale_linear", 1.0f, &scale_linear))) return st;
    if (scale_linear > 0.0f && scale_linear != 1.0f) c->rope_pos_scale = 1.0f / scale_linear;
    if ((st = read_float(m, "rope.scaling.attn_factor", 1.0f, &c->rope_attn_factor))) return st;
    if ((st = read_int(m, "rope.scaling.original_context_length", 0, 0, 1 << 30, &c->n_ctx_orig)))
        return st;

    /* query scale: 1/sqrt(head_dim), except the Gemma 27B variants (query_pre_attn_scalar =
     * n_embd / n_head), recognised by their layer count as the files do not carry it */
    float qscale = (float)c->head_dim;
    if (c->arch->big_variant_layers > 0 && c->n_layer == c->arch->big_variant_layers)
        qscale = (float)c->n_embd / (float)c->n_head;
    if ((st = read_float(m, "attention.scale", 1.0f / sqrtf(qscale), &c->attn_scale))) return st;
    if ((st = read_float(m, "attn_logit_softcapping", 0.0f, &c->attn_softcap))) return st;
    if ((st = read_float(m, "final_logit_softcapping", 0.0f, &c->final_softcap))) return st;
    if (c->attn_softcap < 0 || c->final_softcap < 0)
        return es_error(ES_ERR_FORMAT, "model: negative logit soft-cap");
    if ((st = read_int(m, "attention.sliding_window", 0, 0, 1 << 30, &c->n_swa))) return st;
    if (c->arch->swa_pattern == 0) c->n_swa = 0;
    c->embd_scale = c->arch->embd_scale ? sqrtf((float)c->n_embd) : 1.0f;
    c->lmhead_scale = 1.0f;
    if ((st = read_family_config(m))) return st;
    const es_arch_fixed_scales *fixed = es_arch_fixed_scales_find(c->arch->name);
    if (fixed) {
        c->embd_scale = fixed->embd;
        c->residual_scale = fixed->depth / sqrtf((float)c->n_layer);
        c->lmhead_scale = fixed->n_embd_base / (float)c->n_embd;
    }
    if ((st = read_moe_config(m))) return st;
    return check_mla_config(c);
}

/* ---- tensors ---------------------------------------------------------------- */

static void count_tensors(es_model *m) {
    for (int64_t i = 0; i < es_gguf_n_tensors(m->gguf); i++) {
        const es_gguf_tensor *t = es_gguf_tensor_at(m->gguf, i);
        uint64_t n = 1;
        for (int d = 0; d < t->n_dims; d++)
            n *= (uint64_t)t->ne[d];
        m->n_params += n;
        m->weight_bytes += t->nbytes;
    }
}

static const es_gguf_tensor *find_tensor(const es_model *m, es_tensor_role role, int layer,
                                         char *name, size_t size) {
    es_tensor_name(role, layer, name, size);
    return es_gguf_find_tensor(m->gguf, name);
}

static es_status check_shape(const es_gguf_tensor *t, const char *name, int64_t ne0, int64_t ne1) {
    bool ok = t->ne[0] == ne0 && t->ne[1] == ne1 && t->ne[2] == 1 && t->ne[3] == 1;
    if (!ok) {
        if (ne1 == 1)
            return es_error(ES_ERR_FORMAT,
                            "model: tensor %s has shape [%lld, %lld, %lld, %lld], expected [%lld]",
                            name, (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2],
                            (long long)t->ne[3], (long long)ne0);
        return es_error(
            ES_ERR_FORMAT,
            "model: tensor %s has shape [%lld, %lld, %lld, %lld], expected [%lld, %lld]", name,
            (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2], (long long)t->ne[3],
            (long long)ne0, (long long)ne1);
    }
    return ES_OK;
}

static es_status check_computable(const es_gguf_tensor *t, const char *name, int64_t n_in) {
    const es_type_traits *tt = es_type_get(t->type);
    if (!tt || !tt->can_compute)
        return es_error(ES_ERR_UNSUPPORTED,
                        "model: tensor %s has type %s (%d), which emosteer cannot compute", name,
                        es_type_name(t->type), t->type);
    if (es_row_size(t->type, n_in) == 0)
        return es_error(ES_ERR_UNSUPPORTED,
                        "model: tensor %s: row of %lld is not a whole number of %s blocks", name,
                        (long long)n_in, tt->name);
    return ES_OK;
}

/* Binds a matrix [n_out][n_in]. Absent and optional: data stays NULL. */
static es_status bind_matrix(es_model *m, es_tensor_role role, int layer, int64_t n_in,
                             int64_t n_out, bool required, es_matrix *out) {
    char name[96];
    es_tensor_name(role, layer, name, sizeof name);
    return es_model_bind_matrix(m, name, n_in, n_out, required, out);
}

es_status es_model_bind_matrix(es_model *m, const char *name, int64_t n_in, int64_t n_out,
                               bool required, es_matrix *out) {
    const es_gguf_tensor *t = es_gguf_find_tensor(m->gguf, name);
    memset(out, 0, sizeof *out);
    if (!t) {
        if (required) return es_error(ES_ERR_FORMAT, "model: tensor %s is missing", name);
        return ES_OK;
    }
    es_status st = check_shape(t, name, n_in, n_out);
    if (st == ES_OK) st = check_computable(t, name, n_in);
    if (st != ES_OK) return st;
    out->data = t->data;
    out->type = t->type;
    out->n_in = n_in;
    out->n_out = n_out;
    return ES_OK;
}

static es_status keep_owned(es_model *m, void *p) {
    if (m->n_owned == m->cap_owned) {
        int cap = m->cap_owned ? 2 * m->cap_owned : 64;
        float **o = realloc(m->owned, (size_t)cap * sizeof *o);
        if (!o) {
            free(p);
            return es_error(ES_ERR_NOMEM, "model: out of memory");
        }
        m->owned = o;
        m->cap_owned = cap;
    }
    m->owned[m->n_owned++] = p;
    return ES_OK;
}

/* Binds a vector of n floats: F32 in place, any other computable type converted to an
 * owned f32 copy. Absent and optional: *out = NULL. */
static es_status bind_vector(es_model *m, es_tensor_role role, int layer, int64_t n, bool required,
                             const float **out) {
    char name[96];
    es_tensor_name(role, layer, name, sizeof name);
    return es_model_bind_vector(m, name, n, required, out);
}

es_status es_model_bind_vector(es_model *m, const char *name, int64_t n, bool required,
                               const float **out) {
    const es_gguf_tensor *t = es_gguf_find_tensor(m->gguf, name);
    *out = NULL;
    if (!t) {
        if (required) return es_error(ES_ERR_FORMAT, "model: tensor %s is missing", name);
        return ES_OK;
    }
    es_status st = check_shape(t, name, n, 1);
    if (st == ES_OK) st = check_computable(t, name, n);
    if (st != ES_OK) return st;
    if (t->type == ES_TYPE_F32 && ((uintptr_t)t->data % sizeof(float)) == 0) {
        *out = t->data;
        return ES_OK;
    }
    float *f = es_calloc((size_t)n, sizeof *f);
    if (!f) return ES_ERR_NOMEM;
    es_type_get(t->type)->to_float(t->data, f, n);
    if ((st = keep_owned(m, f))) return st;
    *out = f;
    return ES_OK;
}

/* Binds n_expert matrices [n_out][n_in] stored as one 3-D tensor [n_in, n_out, n_expert]. */
static es_status bind_experts(es_model *m, es_tensor_role role, int layer, int64_t n_in,
                              int64_t n_out, es_experts *out) {
    char name[96];
    const es_gguf_tensor *t = find_tensor(m, role, layer, name, sizeof name);
    memset(out, 0, sizeof *out);
    if (!t) return es_error(ES_ERR_FORMAT, "model: tensor %s is missing", name);
    const int64_t n_expert = m->cfg.n_expert;
    if (t->ne[0] != n_in || t->ne[1] != n_out || t->ne[2] != n_expert || t->ne[3] != 1)
        return es_error(
            ES_ERR_FORMAT,
            "model: tensor %s has shape [%lld, %lld, %lld, %lld], expected [%lld, %lld, %lld]",
            name, (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2],
            (long long)t->ne[3], (long long)n_in, (long long)n_out, (long long)n_expert);
    es_status st = check_computable(t, name, n_in);
    if (st != ES_OK) return st;
    out->m.data = t->data;
    out->m.type = t->type;
    out->m.n_in = n_in;
    out->m.n_out = n_out;
    out->stride = es_row_size(t->type, n_in) * (size_t)n_out; /* the GGUF reader checked nbytes */
    return ES_OK;
}

/* The router and the experts of a mixture-of-experts layer (moe.c). */
static es_status bind_moe(es_model *m, int il, es_layer_weights *L) {
    const es_config *c = &m->cfg;
    es_status st;
    if ((st =
             bind_matrix(m, ES_T_FFN_GATE_INP, il, c->n_embd, c->n_expert, true, &L->ffn_gate_inp)))
        return st;
    if ((st = bind_experts(m, ES_T_FFN_GATE_EXPS, il, c->n_embd, c->n_ff_exp, &L->ffn_gate_exps)))
        return st;
    if ((st = bind_experts(m, ES_T_FFN_UP_EXPS, il, c->n_embd, c->n_ff_exp, &L->ffn_up_exps)))
        return st;
    return bind_experts(m, ES_T_FFN_DOWN_EXPS, il, c->n_ff_exp, c->n_embd, &L->ffn_down_exps);
}

/* The projections of multi-head latent attention (mla.c). */
static es_status bind_mla(es_model *m, int il, es_layer_weights *L) {
    const es_config *c = &m->cfg;
    const int64_t n_nope = c->head_dim - c->n_rot;
    es_status st;
    if ((st = bind_matrix(m, ES_T_ATTN_Q_A, il, c->n_embd, c->q_lora_rank, true, &L->wq_a)))
        return st;
    if ((st = bind_vector(m, ES_T_ATTN_Q_A_NORM, il, c->q_lora_rank, true, &L->q_a_norm)))
        return st;
    if ((st = bind_matrix(m, ES_T_ATTN_Q_B, il, c->q_lora_rank, c->n_q, true, &L->wq_b))) return st;
    if ((st = bind_matrix(m, ES_T_ATTN_KV_A_MQA, il, c->n_embd, (int64_t)c->kv_lora_rank + c->n_rot,
                          true, &L->wkv_a)))
        return st;
    if ((st = bind_vector(m, ES_T_ATTN_KV_A_NORM, il, c->kv_lora_rank, true, &L->kv_a_norm)))
        return st;
    return bind_matrix(m, ES_T_ATTN_KV_B, il, c->kv_lora_rank,
                       (int64_t)c->n_head * (n_nope + c->head_dim_v), true, &L->wkv_b);
}

static es_status bind_layer(es_model *m, int il) {
    const es_config *c = &m->cfg;
    const es_arch *a = c->arch;
    es_layer_weights *L = &m->w.layers[il];
    es_status st;
    L->swa = c->n_swa > 0 && es_arch_layer_is_swa(a, il);
    if ((st = bind_vector(m, ES_T_ATTN_NORM, il, c->n_embd, true, &L->attn_norm))) return st;
    if (c->kv_lora_rank > 0) {
        if ((st = bind_mla(m, il, L))) return st;
    } else if (a->fused_qkv) {
        if ((st = bind_matrix(m, ES_T_ATTN_QKV, il, c->n_embd, (int64_t)c->n_q + c->n_k + c->n_v,
                              true, &L->wqkv)))
            return st;
        const float *b = NULL;
        if ((st = bind_vector(m, ES_T_ATTN_QKV_BIAS, il, (int64_t)c->n_q + c->n_k + c->n_v, false,
                              &b)))
            return st;
        if (b) {
            L->bq = b;
            L->bk = b + c->n_q;
            L->bv = b + c->n_q + c->n_k;
        }
    } else {
        if ((st = bind_matrix(m, ES_T_ATTN_Q, il, c->n_embd, c->n_q, true, &L->wq))) return st;
        if ((st = bind_matrix(m, ES_T_ATTN_K, il, c->n_embd, c->n_k, true, &L->wk))) return st;
        if ((st = bind_matrix(m, ES_T_ATTN_V, il, c->n_embd, c->n_v, true, &L->wv))) return st;
        if ((st = bind_vector(m, ES_T_ATTN_Q_BIAS, il, c->n_q, false, &L->bq))) return st;
        if ((st = bind_vector(m, ES_T_ATTN_K_BIAS, il, c->n_k, false, &L->bk))) return st;
        if ((st = bind_vector(m, ES_T_ATTN_V_BIAS, il, c->n_v, false, &L->bv))) return st;
    }
    if ((st = bind_vector(m, ES_T_ATTN_Q_NORM, il, c->head_dim, a->qk_norm, &L->q_norm))) return st;
    if ((st = bind_vector(m, ES_T_ATTN_K_NORM, il, c->head_dim, a->qk_norm, &L->k_norm))) return st;
    if ((st = bind_matrix(m, ES_T_ATTN_OUT, il, (int64_t)c->n_head * c->head_dim_v, c->n_embd, true,
                          &L->wo)))
        return st;
    if ((st = bind_vector(m, ES_T_ATTN_OUT_BIAS, il, c->n_embd, false, &L->bo))) return st;
    if ((st =
             bind_vector(m, ES_T_ATTN_POST_NORM, il, c->n_embd, a->post_norms, &L->attn_post_norm)))
        return st;
    if ((st = bind_vector(m, ES_T_FFN_NORM, il, c->n_embd, true, &L->ffn_norm))) return st;
    if (c->n_expert > 0) {
        if ((st = bind_moe(m, il, L))) return st;
    } else if (a->fused_gate_up) {
        if ((st = bind_matrix(m, ES_T_FFN_UP, il, c->n_embd, 2 * (int64_t)c->n_ff, true, &L->w_up)))
            return st;
    } else {
        if ((st = bind_matrix(m, ES_T_FFN_GATE, il, c->n_embd, c->n_ff, true, &L->w_gate)))
            return st;
        if ((st = bind_matrix(m, ES_T_FFN_UP, il, c->n_embd, c->n_ff, true, &L->w_up))) return st;
    }
    if (c->n_expert == 0 &&
        (st = bind_matrix(m, ES_T_FFN_DOWN, il, c->n_ff, c->n_embd, true, &L->w_down)))
        return st;
    if ((st = bind_vector(m, ES_T_FFN_POST_NORM, il, c->n_embd, a->post_norms, &L->ffn_post_norm)))
        return st;
    return ES_OK;
}

/* The RoPE parameters of one set of layers; factors must be finite and positive. */
static es_status rope_freqs(const es_config *c, float base, float pos_scale, const float *factors,
                            const char *what, es_rope_freqs *out) {
    for (int i = 0; factors && i < c->n_rot / 2; i++)
        if (!(factors[i] > 0.0f) || !isfinite(factors[i]))
            return es_error(ES_ERR_FORMAT,
                            "model: %s[%d] = %g is not a positive finite RoPE factor", what, i,
                            (double)factors[i]);
    out->theta_scale = c->n_rot > 0 ? powf(base, -2.0f / (float)c->n_rot) : 1.0f;
    out->pos_scale = pos_scale;
    out->factors = factors;
    return ES_OK;
}

static es_status check_block_tensors(const es_model *m);

static es_status bind_weights(es_model *m) {
    const es_config *c = &m->cfg;
    es_weights *w = &m->w;
    es_status st;
    char name[96];
    const es_gguf_tensor *te = find_tensor(m, ES_T_TOKEN_EMBD, 0, name, sizeof name);
    if (!te) return es_error(ES_ERR_FORMAT, "model: tensor %s is missing", name);
    if (te->ne[0] != c->n_embd || te->ne[1] < 1 || te->ne[1] > INT32_MAX || te->ne[2] != 1 ||
        te->ne[3] != 1)
        return es_error(
            ES_ERR_FORMAT,
            "model: tensor %s has shape [%lld, %lld, %lld, %lld], expected [%d, n_vocab]", name,
            (long long)te->ne[0], (long long)te->ne[1], (long long)te->ne[2], (long long)te->ne[3],
            c->n_embd);
    m->cfg.n_vocab = (int)te->ne[1];
    if ((st = bind_matrix(m, ES_T_TOKEN_EMBD, 0, c->n_embd, c->n_vocab, true, &w->token_embd)))
        return st;
    if ((st = bind_vector(m, ES_T_OUTPUT_NORM, 0, c->n_embd, true, &w->output_norm))) return st;
    if ((st = bind_matrix(m, ES_T_OUTPUT, 0, c->n_embd, c->n_vocab, false, &w->output))) return st;
    if (!w->output.data) {
        w->output = w->token_embd;
        w->tied = true;
    }

    /* RoPE frequency tables */
    const float *freqs = NULL, *fshort = NULL, *flong = NULL;
    int nr = c->n_rot / 2;
    if (nr > 0) {
        if ((st = bind_vector(m, ES_T_ROPE_FREQS, 0, nr, false, &freqs))) return st;
        if ((st = bind_vector(m, ES_T_ROPE_SHORT, 0, nr, false, &fshort))) return st;
        if ((st = bind_vector(m, ES_T_ROPE_LONG, 0, nr, false, &flong))) return st;
    }
    if (freqs && fshort)
        return es_error(ES_ERR_FORMAT, "model: both rope_freqs and rope_factors_short are present");
    if ((st = rope_freqs(c, c->rope_base, c->rope_pos_scale, freqs ? freqs : fshort,
                         freqs ? "rope_freqs" : "rope_factors_short", &w->rope)))
        return st;
    w->has_rope_long = flong != NULL;
    if (flong && (st = rope_freqs(c, c->rope_base, c->rope_pos_scale, flong, "rope_factors_long",
                                  &w->rope_long)))
        return st;
    if ((st = rope_freqs(c, c->rope_base_swa, 1.0f, NULL, "rope (sliding window)", &w->rope_swa)))
        return st;

    w->layers = es_calloc((size_t)c->n_layer, sizeof *w->layers);
    if (!w->layers) return ES_ERR_NOMEM;
    for (int il = 0; il < c->n_layer; il++)
        if ((st = bind_layer(m, il))) return st;
    return check_block_tensors(m);
}

/* The matrices of a layer multiplied whole by es_matmul (not the router, whose rows moe.c
 * reads one by one, nor the experts' 3-D tensors): ES_LAYER_MATRICES of them into out. */
#define ES_LAYER_MATRICES 12
static void layer_matrices(es_layer_weights *L, es_matrix *out[ES_LAYER_MATRICES]) {
    es_matrix *all[ES_LAYER_MATRICES] = {&L->wq,   &L->wk,     &L->wv,    &L->wqkv,
                                         &L->wo,   &L->w_gate, &L->w_up,  &L->w_down,
                                         &L->wq_a, &L->wq_b,   &L->wkv_a, &L->wkv_b};
    memcpy(out, all, sizeof all);
}

/* The bytes [p, p + n) of the mapping are no longer read: hands their whole pages back (the
 * mapping is private and read-only; a later read would map them again from the file). */
static void release_mapped(const es_model *m, const void *p, size_t n) {
    if (m->file_copy) return; /* the copy in memory stays whole */
    const uintptr_t page = 4096, a = ((uintptr_t)p + page - 1) & ~(page - 1);
    const uintptr_t b = ((uintptr_t)p + n) & ~(page - 1);
    if (b > a) madvise((void *)a, b - a, MADV_DONTNEED);
}

/* Q4_K matrices interleaved by 8 rows for the rows-in-lanes kernels (matmul.h ES_TYPE_Q4_K_X8,
 * what llama.cpp's CPU backend does at load too): decode and prompts in llama.cpp's order, the
 * same bits whatever the batch. Not the token embedding (its rows are looked up one by one), nor
 * a tied output; a matrix whose rows are not whole groups of 8, or without memory for the copy,
 * stays as it is. n_mat > 1: experts, stride bytes apart (updated). */
static es_status interleave(es_model *m, es_matrix *w, int64_t n_mat, size_t *stride) {
    if (!w->data || w->type != ES_TYPE_Q4_K) return ES_OK;
    const size_t rows = es_row_size(ES_TYPE_Q4_K, w->n_in) * (size_t)w->n_out;
    const size_t st = stride ? *stride : rows;
    void *x8 = es_q4_K_x8_interleave(w->data, w->n_out, w->n_in, n_mat, st);
    if (!x8) return ES_OK;
    es_status s = keep_owned(m, x8);
    if (s) return s;
    for (int64_t e = 0; e < n_mat; e++)
        release_mapped(m, (const uint8_t *)w->data + (size_t)e * st, rows);
    w->data = x8;
    w->type = ES_TYPE_Q4_K_X8;
    if (stride) *stride = es_q4_K_x8_size(w->n_out, w->n_in);
    return ES_OK;
}

static es_status interleave_weights(es_model *m) {
    if (!m->w.layers || !es_q4_K_x8_enabled()) return ES_OK;
    es_status st;
    if (!m->w.tied && (st = interleave(m, &m->w.output, 1, NULL))) return st;
    for (int il = 0; il < m->cfg.n_layer; il++) {
        es_layer_weights *L = &m->w.layers[il];
        es_matrix *all[ES_LAYER_MATRICES];
        layer_matrices(L, all);
        for (int i = 0; i < ES_LAYER_MATRICES; i++)
            if ((st = interleave(m, all[i], 1, NULL))) return st;
        es_experts *exps[] = {&L->ffn_gate_exps, &L->ffn_up_exps, &L->ffn_down_exps};
        for (size_t i = 0; i < sizeof exps / sizeof exps[0]; i++)
            if ((st = interleave(m, &exps[i]->m, m->cfg.n_expert, &exps[i]->stride))) return st;
    }
    return ES_OK;
}

/* A file whose block_count is smaller than the blocks it holds would run part of the
 * model: every "blk.N." tensor must have N < block_count. */
static es_status check_block_tensors(const es_model *m) {
    for (int64_t i = 0; i < es_gguf_n_tensors(m->gguf); i++) {
        const char *name = es_gguf_tensor_at(m->gguf, i)->name;
        if (strncmp(name, "blk.", 4) != 0) continue;
        char *end = NULL;
        long blk = strtol(name + 4, &end, 10);
        if (end == name + 4 || *end != '.' || blk < 0) continue;
        if (blk >= m->cfg.n_layer)
            return es_error(
                ES_ERR_FORMAT,
                "model: tensor %s belongs to block %ld, but %s.block_count says the model has %d "
                "blocks (0..%d)",
                name, blk, m->arch_name, m->cfg.n_layer, m->cfg.n_layer - 1);
    }
    return ES_OK;
}

/* NaN/Inf scan of float weights (params.check_finite). */
static es_status check_finite(const es_model *m) {
    for (int64_t i = 0; i < es_gguf_n_tensors(m->gguf); i++) {
        const es_gguf_tensor *t = es_gguf_tensor_at(m->gguf, i);
        size_t n = t->nbytes;
        if (t->type == ES_TYPE_F32) {
            const uint32_t *u = t->data;
            for (size_t j = 0; j < n / 4; j++)
                if ((u[j] & 0x7f800000u) == 0x7f800000u)
                    return es_error(ES_ERR_FORMAT,
                                    "model: tensor %s has a NaN or Inf at element %zu", t->name, j);
        } else if (t->type == ES_TYPE_F16) {
            const uint16_t *u = t->data;
            for (size_t j = 0; j < n / 2; j++)
                if ((u[j] & 0x7c00u) == 0x7c00u)
                    return es_error(ES_ERR_FORMAT,
                                    "model: tensor %s has a NaN or Inf at element %zu", t->name, j);
        } else if (t->type == ES_TYPE_BF16) {
            const uint16_t *u = t->data;
            for (size_t j = 0; j < n / 2; j++)
                if ((u[j] & 0x7f80u) == 0x7f80u)
                    return es_error(ES_ERR_FORMAT,
                                    "model: tensor %s has a NaN or Inf at element %zu", t->name, j);
        }
    }
    return ES_OK;
}

/* Appends ", " (but before the first) and one printf-formatted item to m->features,
 * truncating at its size. */
static void add_feature(es_model *m, const char *fmt, ...) {
    size_t len = strlen(m->features);
    const size_t size = sizeof m->features;
    if (len > 0 && len + 2 < size) {
        memcpy(m->features + len, ", ", 3);
        len += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->features + len, size - len, fmt, ap);
    va_end(ap);
}

/* m->features: the position encoding and whatever else the config and weights add to
 * plain Llama, as one line for `emosteer info`. */
static void describe_features(es_model *m) {
    const es_config *c = &m->cfg;
    m->features[0] = '\0';
    if (!m->w.layers) { /* an encoder (encoder.c) */
        add_feature(m, "encoder, absolute positions, post-LN, GELU");
        return;
    }
    const es_layer_weights *L = &m->w.layers[0];
#define ADD(...) add_feature(m, __VA_ARGS__)
    if (c->alibi_max_bias > 0)
        ADD("ALiBi (max bias %g)", (double)c->alibi_max_bias);
    else if (c->n_rot == 0)
        ADD("no position encoding");
    else
        ADD("RoPE (%s, base %g)", c->arch->rope == ES_ROPE_NEOX ? "NEOX" : "adjacent pairs",
            (double)c->rope_base);
    if (c->embd_scale != 1.0f) ADD("embedding scale %g", (double)c->embd_scale);
    if (c->residual_scale != 1.0f) ADD("residual scale %g", (double)c->residual_scale);
    if (c->logit_scale != 1.0f) ADD("logit scale %g", (double)c->logit_scale);
    if (c->arch->fused_qkv) ADD("fused QKV");
    if (L->bq) ADD("QKV bias");
    if (L->q_norm) ADD("Q/K norm");
    if (c->arch->fused_gate_up) ADD("fused gate/up");
    if (c->arch->act == ES_ACT_GELU_TANH) ADD("GELU-tanh");
    if (L->attn_post_norm) ADD("post norms");
    if (c->attn_softcap > 0) ADD("attention soft-cap %g", (double)c->attn_softcap);
    if (c->final_softcap > 0) ADD("final soft-cap %g", (double)c->final_softcap);
    if (c->n_swa > 0) ADD("sliding window %d", c->n_swa);
    if (m->w.tied) ADD("tied output");
#undef ADD
}

/* ---- load / free -------------------------------------------------------------- */

es_model_params es_model_default_params(void) {
    es_model_params p = {.use_mmap = true, .check_finite = false};
    return p;
}

es_status es_model_open(const char *path, const es_model_params *params, es_model **out) {
    if (!path || !out) return es_error(ES_ERR_INVALID_ARG, "model: path and out must not be NULL");
    es_model_params p = params ? *params : es_model_default_params();
    es_model *m = es_calloc(1, sizeof *m);
    if (!m) return ES_ERR_NOMEM;
    es_status st;
    if (p.use_mmap) {
        st = es_gguf_open(path, &m->gguf);
    } else {
        size_t size = 0;
        char *copy = NULL;
        st = es_file_read(path, SIZE_MAX - 64, &copy, &size);
        if (st == ES_OK)
            m->file_copy = copy;
        else
            es_error_prefix(st, "model");
        if (st == ES_OK) st = es_gguf_open_memory(m->file_copy, size, &m->gguf);
    }
    if (st != ES_OK) goto fail;

    m->arch_name = es_gguf_get_str_dup(m->gguf, "general.architecture");
    if (!m->arch_name) {
        st = es_error(ES_ERR_FORMAT, "model: %s has no general.architecture string", path);
        goto fail;
    }
    m->cfg.arch = es_arch_find(m->arch_name);
    if (!m->cfg.arch) {
        st = es_error(ES_ERR_UNSUPPORTED,
                      "model: architecture '%s' is not supported (supported: %s)", m->arch_name,
                      es_arch_list());
        goto fail;
    }
    m->name = es_gguf_get_str_dup(m->gguf, "general.name");
    if (!m->name) m->name = es_strdup("");
    if (!m->name) {
        st = ES_ERR_NOMEM;
        goto fail;
    }
    m->chat_template = es_gguf_get_str_dup(m->gguf, "tokenizer.chat_template");
    if ((st = read_config(m))) goto fail;
    if (es_arch_is_encoder(m->cfg.arch))
        st = es_encoder_bind(m); /* encoder.c */
    else
        st = bind_weights(m);
    if (st != ES_OK) goto fail;
    if (p.check_finite && (st = check_finite(m))) goto fail;
    if ((st = interleave_weights(m))) goto fail;
    count_tensors(m);
    describe_features(m);
    *out = m;
    return ES_OK;
fail:
    es_model_free(m);
    return st;
}

void es_model_free(es_model *m) {
    if (!m) return;
    if (m->vocab && m->vocab_free) m->vocab_free(m->vocab);
    for (int i = 0; i < m->n_owned; i++)
        free(m->owned[i]);
    free(m->owned);
    if (m->w.layers) free(m->w.layers);
    es_encoder_weights_free(m->enc);
    free(m->arch_name);
    free(m->name);
    free(m->chat_template);
    es_gguf_close(m->gguf);
    es_free_aligned(m->file_copy);
    free(m);
}

void es_model_get_info(const es_model *m, es_model_info *info) {
    if (!m || !info) return;
    const es_config *c = &m->cfg;
    memset(info, 0, sizeof *info);
    info->arch = m->arch_name;
    info->name = m->name;
    info->n_layer = c->n_layer;
    info->n_embd = c->n_embd;
    info->n_head = c->n_head;
    info->n_head_kv = c->n_head_kv;
    info->head_dim = c->head_dim;
    info->n_ff = c->n_ff;
    info->n_vocab = c->n_vocab;
    info->n_ctx_train = c->n_ctx_train;
    info->n_params = m->n_params;
    info->weight_bytes = m->weight_bytes;
    info->head_dim_v = c->head_dim_v;
    info->n_expert = c->n_expert;
    info->n_expert_used = c->n_expert_used;
    info->n_ff_exp = c->n_ff_exp;
    info->q_lora_rank = c->q_lora_rank;
    info->kv_lora_rank = c->kv_lora_rank;
    info->n_rot = c->n_rot;
    info->features = m->features;
    if (m->enc) { /* encoder families */
        info->is_encoder = true;
        info->n_labels = m->enc->n_labels;
        info->has_pooler = m->enc->cls.data != NULL;
    }
}

const char *es_model_chat_template(const es_model *m) {
    return m ? m->chat_template : NULL;
}

const struct es_vocab *es_model_vocab(const es_model *m) {
    return m ? m->vocab : NULL;
}

void es_model_attach_vocab(es_model *m, struct es_vocab *vocab,
                           void (*vocab_free)(struct es_vocab *)) {
    if (m->vocab && m->vocab_free) m->vocab_free(m->vocab);
    m->vocab = vocab;
    m->vocab_free = vocab_free;
}

static size_t matrix_wsize(const es_matrix *w, int64_t n_tok) {
    return w->data ? es_matmul_wsize(w->type, w->n_in, n_tok) : 0;
}

size_t es_model_matmul_wsize(const es_model *m, int64_t n_tok) {
    if (!m->w.layers) return 0; /* an encoder: encoder.c sizes its own scratch */
    size_t ws = matrix_wsize(&m->w.output, n_tok);
    for (int il = 0; il < m->cfg.n_layer; il++) {
        es_layer_weights *L = &m->w.layers[il];
        es_matrix *all[ES_LAYER_MATRICES];
        layer_matrices(L, all);
        for (int i = 0; i < ES_LAYER_MATRICES; i++)
            ws = ES_MAX(ws, matrix_wsize(all[i], n_tok));
        /* MoE: the router; an expert multiplies at most every token once */
        const es_matrix *more[] = {&L->ffn_gate_inp, &L->ffn_gate_exps.m, &L->ffn_up_exps.m,
                                   &L->ffn_down_exps.m};
        for (size_t i = 0; i < sizeof more / sizeof more[0]; i++)
            ws = ES_MAX(ws, matrix_wsize(more[i], n_tok));
        /* MoE: every expert's rows at once (moe.c), n_tok * n_expert_used rows in all */
        const es_experts *exps[] = {&L->ffn_gate_exps, &L->ffn_up_exps, &L->ffn_down_exps};
        for (size_t i = 0; i < sizeof exps / sizeof exps[0]; i++)
            if (exps[i]->m.data)
                ws = ES_MAX(ws, es_matmul_groups_wsize(exps[i]->m.type, exps[i]->m.n_in,
                                                       n_tok * m->cfg.n_expert_used,
                                                       2 * m->cfg.n_expert));
    }
    return ws;
}
