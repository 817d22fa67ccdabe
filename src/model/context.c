/*
 * context.c — contexts: KV cache and scratch allocation, cache bookkeeping, logits
 * access, hooks. The forward pass itself is es_decode in forward.c.
 */
#include "context.h"

#include "matmul.h"

#include "steer_state.h"

#include <stdlib.h>
#include <string.h>

es_context_params es_context_default_params(void) {
    es_context_params p;
    p.n_ctx = 0; /* the model's trained length, at most ES_CTX_DEFAULT_MAX */
    p.n_seq_max = 1;
    p.n_batch = 512;
    p.n_threads = ES_MIN(es_cpu_count(), 8);
    if (p.n_threads < 1) p.n_threads = 1;
    p.kv_type = ES_KV_F32;
    p.numerics = ES_NUMERICS_FAST;
    return p;
}

const char *es_numerics_name(es_numerics n) {
    return n == ES_NUMERICS_FAST ? "fast" : n == ES_NUMERICS_LLAMACPP ? "llamacpp" : "unknown";
}

es_status es_numerics_parse(const char *name, es_numerics *out) {
    if (!name || !out)
        return es_error(ES_ERR_INVALID_ARG, "context: numerics name and out must not be NULL");
    if (!strcmp(name, "fast"))
        *out = ES_NUMERICS_FAST;
    else if (!strcmp(name, "llamacpp"))
        *out = ES_NUMERICS_LLAMACPP;
    else
        return es_error(ES_ERR_INVALID_ARG,
                        "context: unknown numerics '%s' (expected fast or llamacpp)", name);
    return ES_OK;
}

const char *es_kv_type_name(es_kv_type t) {
    return t == ES_KV_F32 ? "f32" : t == ES_KV_F16 ? "f16" : "unknown";
}

es_status es_kv_type_parse(const char *name, es_kv_type *out) {
    if (!name || !out)
        return es_error(ES_ERR_INVALID_ARG, "context: kv type name and out must not be NULL");
    if (!strcmp(name, "f32"))
        *out = ES_KV_F32;
    else if (!strcmp(name, "f16"))
        *out = ES_KV_F16;
    else
        return es_error(ES_ERR_INVALID_ARG,
                        "context: unknown KV cache type '%s' (expected f32 or f16)", name);
    return ES_OK;
}

/* a*b*c*d elements of `size` bytes, overflow-checked, as an aligned zeroed buffer. */
static void *alloc_elems(size_t a, size_t b, size_t c, size_t d, size_t size) {
    size_t n;
    if (!es_mul_size(a, b, &n) || !es_mul_size(n, c, &n) || !es_mul_size(n, d, &n) ||
        !es_mul_size(n, size, &n)) {
        es_error(ES_ERR_NOMEM, "context: buffer of %zu x %zu x %zu x %zu x %zu bytes overflows", a,
                 b, c, d, size);
        return NULL;
    }
    return es_alloc_aligned(n);
}

static float *alloc_floats(size_t a, size_t b, size_t c, size_t d) {
    return alloc_elems(a, b, c, d, sizeof(float));
}

static void free_run_state(es_run_state *rs) {
    es_free_aligned(rs->x);
    es_free_aligned(rs->xb);
    es_free_aligned(rs->q);
    es_free_aligned(rs->k);
    es_free_aligned(rs->v);
    es_free_aligned(rs->qkv);
    es_free_aligned(rs->att);
    es_free_aligned(rs->out);
    es_free_aligned(rs->gate);
    es_free_aligned(rs->hb);
    es_free_aligned(rs->ablk);
    free(rs->att_tok);
    free(rs->att_blk);
    free(rs->att_cnt);
    es_free_aligned(rs->qh);
    es_free_aligned(rs->q16);
    es_free_aligned(rs->acc16);
    es_free_aligned(rs->rope_cs);
    es_free_aligned(rs->rope_cs_swa);
    es_free_aligned(rs->wsp);
    free(rs->pos);
    free(rs->seq);
    free(rs->first_pos);
    free(rs->out_rows);
    es_free_aligned(rs->moe_probs);
    es_free_aligned(rs->moe_sel);
    es_free_aligned(rs->moe_w);
    free(rs->moe_off);
    free(rs->moe_next);
    es_free_aligned(rs->moe_tok);
    es_free_aligned(rs->moe_wt);
    es_free_aligned(rs->moe_row);
    free(rs->moe_groups);
    es_free_aligned(rs->moe_x);
    es_free_aligned(rs->moe_gate);
    es_free_aligned(rs->moe_up);
    es_free_aligned(rs->moe_y);
    es_free_aligned(rs->mla_qa);
    es_free_aligned(rs->mla_qb);
    es_free_aligned(rs->mla_kva);
    es_free_aligned(rs->mla_lat);
    es_free_aligned(rs->mla_kv);
    memset(rs, 0, sizeof *rs);
}

static es_status alloc_run_state(es_context *ctx) {
    const es_config *c = &ctx->model->cfg;
    const es_context_params *p = &ctx->params;
    es_run_state *rs = &ctx->rs;
    size_t B = (size_t)p->n_batch;
    size_t nr = (size_t)(c->n_rot / 2 ? c->n_rot / 2 : 1);
    rs->x = alloc_floats(B, (size_t)c->n_embd, 1, 1);
    rs->xb = alloc_floats(B, (size_t)c->n_embd, 1, 1);
    rs->q = alloc_floats(B, (size_t)c->n_q, 1, 1);
    rs->k = alloc_floats(B, (size_t)c->n_k, 1, 1);
    rs->v = alloc_floats(B, (size_t)c->n_v, 1, 1);
    rs->att = alloc_floats(B, (size_t)c->n_head, (size_t)c->head_dim_v, 1);
    rs->out = alloc_floats(B, (size_t)c->n_embd, 1, 1);
    rs->gate = alloc_floats(B, (size_t)c->n_ff, c->arch->fused_gate_up ? 2 : 1, 1);
    rs->hb = alloc_floats(B, (size_t)c->n_ff, 1, 1);
    rs->rope_cs = alloc_floats(B, nr, 2, 1);
    rs->rope_cs_swa = alloc_floats(B, nr, 2, 1);
    bool ok = rs->x && rs->xb && rs->q && rs->k && rs->v && rs->att && rs->out && rs->gate &&
              rs->hb && rs->rope_cs && rs->rope_cs_swa;
    if (ok && p->kv_type == ES_KV_F16) {
        rs->qh = alloc_floats(B, (size_t)c->n_q, 1, 1);
        rs->q16 = alloc_elems((size_t)c->n_q, 1, 1, 1, sizeof(uint16_t));
        rs->acc16 = alloc_elems((size_t)p->n_threads, (size_t)(c->n_head / c->n_head_kv),
                                (size_t)c->head_dim_v, 1, sizeof(uint16_t));
        ok = rs->qh && rs->q16 && rs->acc16;
    }
    if (ok && c->arch->fused_qkv) {
        rs->qkv = alloc_floats(B, (size_t)c->n_q + (size_t)c->n_k + (size_t)c->n_v, 1, 1);
        ok = rs->qkv != NULL;
    }
    if (ok) {
        size_t ws = es_model_matmul_wsize(ctx->model, (int64_t)B);
        if (ws == SIZE_MAX)
            return es_error(ES_ERR_NOMEM, "context: matmul scratch for %zu tokens overflows", B);
        rs->wsp = es_alloc_aligned(ws ? ws : 64);
        ok = rs->wsp != NULL;
    }
    if (ok) {
        rs->pos = es_calloc(B, sizeof *rs->pos);
        rs->seq = es_calloc(B, sizeof *rs->seq);
        rs->out_rows = es_calloc(B, sizeof *rs->out_rows);
        rs->first_pos = es_calloc((size_t)p->n_seq_max, sizeof *rs->first_pos);
        rs->att_tok = es_calloc(B, sizeof *rs->att_tok);
        rs->att_blk = es_calloc(B, 2 * sizeof *rs->att_blk);
        rs->att_cnt = es_calloc((size_t)p->n_seq_max, sizeof *rs->att_cnt);
        ok = rs->pos && rs->seq && rs->out_rows && rs->first_pos && rs->att_tok && rs->att_blk &&
             rs->att_cnt;
    }
    if (ok && c->n_expert > 0) {
        const size_t E = (size_t)c->n_expert, K = (size_t)c->n_expert_used;
        rs->moe_probs = alloc_floats(B, E, 1, 1);
        rs->moe_sel = alloc_elems(B, K, 1, 1, sizeof(int32_t));
        rs->moe_w = alloc_elems(B, K, 1, 1, sizeof(float));
        rs->moe_off = es_calloc(E + 1, sizeof *rs->moe_off);
        rs->moe_next = es_calloc(E, sizeof *rs->moe_next);
        rs->moe_tok = alloc_elems(B, K, 1, 1, sizeof(int32_t));
        rs->moe_wt = alloc_elems(B, K, 1, 1, sizeof(float));
        rs->moe_row = alloc_elems(B, K, 1, 1, sizeof(int32_t));
        rs->moe_x = alloc_floats(B, K, (size_t)c->n_embd, 1);
        rs->moe_gate = alloc_floats(B, K, (size_t)c->n_ff_exp, 1);
        rs->moe_up = alloc_floats(B, K, (size_t)c->n_ff_exp, 1);
        rs->moe_y = alloc_floats(B, K, (size_t)c->n_embd, 1);
        rs->moe_groups = es_calloc(2 * E, sizeof *rs->moe_groups);
        ok = rs->moe_probs && rs->moe_sel && rs->moe_w && rs->moe_off && rs->moe_next &&
             rs->moe_tok && rs->moe_wt && rs->moe_row && rs->moe_x && rs->moe_gate && rs->moe_up &&
             rs->moe_y && rs->moe_groups;
    }
    if (ok && c->kv_lora_rank > 0) {
        const size_t n_kv = (size_t)c->n_head * (size_t)(c->head_dim - c->n_rot + c->head_dim_v);
        rs->mla_qa = alloc_floats(B, (size_t)c->q_lora_rank, 1, 1);
        rs->mla_qb = alloc_floats(B, (size_t)c->n_q, 1, 1);
        rs->mla_kva = alloc_floats(B, (size_t)c->kv_lora_rank + (size_t)c->n_rot, 1, 1);
        rs->mla_lat = alloc_floats(B, (size_t)c->kv_lora_rank, 1, 1);
        rs->mla_kv = alloc_floats(B, n_kv, 1, 1);
        ok = rs->mla_qa && rs->mla_qb && rs->mla_kva && rs->mla_lat && rs->mla_kv;
    }
    if (ok && p->kv_type == ES_KV_F32) {
        rs->ablk = alloc_floats((size_t)p->n_threads, es_attn_block_floats(c), 1, 1);
        ok = rs->ablk != NULL;
    }
    return ok ? ES_OK : ES_ERR_NOMEM;
}

es_status es_context_create(es_model *model, const es_context_params *params, es_context **out) {
    if (!model || !out)
        return es_error(ES_ERR_INVALID_ARG, "context: model and out must not be NULL");
    if (es_arch_is_encoder(model->cfg.arch))
        return es_error(ES_ERR_UNSUPPORTED,
                        "context: '%s' is an encoder, which has no decoder context "
                        "(use es_classifier)",
                        model->arch_name);
    es_context_params p = params ? *params : es_context_default_params();
    const es_config *c = &model->cfg;
    if (p.n_ctx == 0) p.n_ctx = ES_MIN(c->n_ctx_train, ES_CTX_DEFAULT_MAX);
    if (p.n_ctx < 1)
        return es_error(ES_ERR_INVALID_ARG, "context: n_ctx %d must be >= 1 (or 0: the default)",
                        p.n_ctx);
    if (p.n_seq_max < 1 || p.n_seq_max > 4096)
        return es_error(ES_ERR_INVALID_ARG, "context: n_seq_max %d must be in [1, 4096]",
                        p.n_seq_max);
    if (p.n_batch < 1 || p.n_batch > (1 << 20))
        return es_error(ES_ERR_INVALID_ARG, "context: n_batch %d must be in [1, 1048576]",
                        p.n_batch);
    if (p.n_threads < 1 || p.n_threads > 512)
        return es_error(ES_ERR_INVALID_ARG, "context: n_threads %d must be in [1, 512]",
                        p.n_threads);
    if (p.kv_type != ES_KV_F32 && p.kv_type != ES_KV_F16)
        return es_error(ES_ERR_INVALID_ARG,
                        "context: kv_type %d must be ES_KV_F32 (0) or ES_KV_F16 (1)",
                        (int)p.kv_type);
    if (p.numerics != ES_NUMERICS_FAST && p.numerics != ES_NUMERICS_LLAMACPP)
        return es_error(
            ES_ERR_INVALID_ARG,
            "context: numerics %d must be ES_NUMERICS_FAST (0) or ES_NUMERICS_LLAMACPP (1)",
            (int)p.numerics);
    /* n_ctx past n_ctx_train is honoured: RoPE extrapolates, quality degrades there */

    es_context *ctx = es_calloc(1, sizeof *ctx);
    if (!ctx) return ES_ERR_NOMEM;
    ctx->model = model;
    ctx->params = p;
    es_status st = ES_ERR_NOMEM;
    ctx->tp = es_threadpool_create(p.n_threads);
    if (!ctx->tp) goto fail;
    const size_t esz = p.kv_type == ES_KV_F16 ? sizeof(uint16_t) : sizeof(float);
    ctx->k_cache =
        alloc_elems((size_t)c->n_layer, (size_t)p.n_seq_max, (size_t)p.n_ctx, (size_t)c->n_k, esz);
    ctx->v_cache =
        alloc_elems((size_t)c->n_layer, (size_t)p.n_seq_max, (size_t)p.n_ctx, (size_t)c->n_v, esz);
    ctx->kv_len = es_calloc((size_t)p.n_seq_max, sizeof *ctx->kv_len);
    ctx->logits_row = es_calloc((size_t)p.n_batch, sizeof *ctx->logits_row);
    if (!ctx->k_cache || !ctx->v_cache || !ctx->kv_len || !ctx->logits_row) goto fail;
    if ((st = alloc_run_state(ctx)) != ES_OK) goto fail;
    /* LongRoPE: long factors when the context is longer than the original one */
    ctx->rope = &model->w.rope;
    if (model->w.has_rope_long && c->n_ctx_orig > 0 && p.n_ctx > c->n_ctx_orig)
        ctx->rope = &model->w.rope_long;
    for (int i = 0; i < p.n_batch; i++)
        ctx->logits_row[i] = -1;
    *out = ctx;
    return ES_OK;
fail:
    es_error_prefix(st, "context");
    es_context_free(ctx);
    return st;
}

void es_context_free(es_context *ctx) {
    if (!ctx) return;
    es_steer_state_free(ctx->steer);
    free_run_state(&ctx->rs);
    es_threadpool_free(ctx->tp);
    es_free_aligned(ctx->k_cache);
    es_free_aligned(ctx->v_cache);
    es_free_aligned(ctx->logits);
    free(ctx->kv_len);
    free(ctx->logits_row);
    free(ctx);
}

es_status es_kv_clear(es_context *ctx, int seq) {
    if (!ctx) return es_error(ES_ERR_INVALID_ARG, "context: NULL context");
    if (seq >= ctx->params.n_seq_max)
        return es_error(ES_ERR_INVALID_ARG, "context: sequence %d is outside [0, %d)", seq,
                        ctx->params.n_seq_max);
    if (seq < 0) {
        for (int s = 0; s < ctx->params.n_seq_max; s++)
            ctx->kv_len[s] = 0;
    } else {
        ctx->kv_len[seq] = 0;
    }
    return ES_OK;
}

int es_context_n_ctx(const es_context *ctx) {
    return ctx ? ctx->params.n_ctx : 0;
}

int es_kv_len(const es_context *ctx, int seq) {
    if (!ctx || seq < 0 || seq >= ctx->params.n_seq_max) return 0;
    return ctx->kv_len[seq];
}

const float *es_get_logits(const es_context *ctx, int i) {
    if (!ctx || i < 0 || i >= ctx->last_n_tokens) return NULL;
    int row = ctx->logits_row[i];
    if (row < 0) return NULL;
    return ctx->logits + (size_t)row * (size_t)ctx->model->cfg.n_vocab;
}

void es_set_hook(es_context *ctx, es_hook_fn fn, void *user) {
    if (!ctx) return;
    ctx->hook = fn;
    ctx->hook_user = fn ? user : NULL;
}

static const char *const hook_names[ES_HOOK_COUNT] = {"attn_out", "mlp_out", "block_out"};

const char *es_hook_name(es_hook_point hp) {
    if ((int)hp < 0 || hp >= ES_HOOK_COUNT) return "unknown";
    return hook_names[hp];
}

es_status es_hook_parse(const char *name, es_hook_point *out) {
    if (!name || !out) return es_error(ES_ERR_INVALID_ARG, "hook: name and out must not be NULL");
    for (int i = 0; i < ES_HOOK_COUNT; i++)
        if (!strcmp(name, hook_names[i])) {
            *out = (es_hook_point)i;
            return ES_OK;
        }
    return es_error(ES_ERR_INVALID_ARG,
                    "hook: unknown hook point '%s' (expected attn_out, mlp_out or block_out)",
                    name);
}
