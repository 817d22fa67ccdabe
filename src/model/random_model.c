/*
 * random_model.c — a GGUF model with random weights at a real model's shape (see
 * random_model.h): the shapes, the quantization mix, the tokenizer, the generator.
 */
#include "random_model.h"

#include "gguf.h"
#include "threadpool.h"
#include "types.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------- */
/* Shapes                                                                    */
/* ------------------------------------------------------------------------- */

typedef struct rm_shape {
    const char *like;
    const char *arch; /* GGUF general.architecture */
    const char *name;
    int n_layer, n_embd, n_head, n_head_kv, head_dim, n_ff, n_vocab, n_ctx;
    float rope_theta, rms_eps;
    bool qkv_bias;
    /* Llama 3 rope scaling (rope_freqs.weight); factor 0 = none */
    float rope_factor, rope_low_freq, rope_high_freq;
    int rope_orig_ctx;
    bool untied; /* an output.weight of its own (else tied to token_embd), as the real model */
} rm_shape;

/* Dimensions from the models' Hugging Face config.json; tied as the real ones are. */
static const rm_shape rm_shapes[] = {
    {"qwen2.5-0.5b", "qwen2", "Qwen2.5-0.5B (random weights)", 24, 896, 14, 2, 64, 4864, 151936,
     32768, 1e6f, 1e-6f, true, 0, 0, 0, 0, false},
    {"llama-3.2-1b", "llama", "Llama-3.2-1B (random weights)", 16, 2048, 32, 8, 64, 8192, 128256,
     131072, 500000.0f, 1e-5f, false, 32.0f, 1.0f, 4.0f, 8192, false},
    {"demo-16m", "llama", "demo-16m (random weights)", 8, 384, 6, 2, 64, 1024, 8192, 1024, 10000.0f,
     1e-5f, false, 0, 0, 0, 0, false},
    {"qwen3-30b-a3b", "qwen3moe", "Qwen3-30B-A3B (random weights)", 48, 2048, 32, 4, 128, 6144,
     151936, 40960, 1e6f, 1e-6f, false, 0, 0, 0, 0, false},
    {"qwen3-moe-tiny", "qwen3moe", "qwen3-moe-tiny (random weights)", 4, 256, 4, 2, 64, 512, 2048,
     2048, 1e6f, 1e-6f, false, 0, 0, 0, 0, false},
    {"minicpm3-4b", "minicpm3", "MiniCPM3-4B (random weights)", 62, 2560, 40, 40, 96, 6400, 73448,
     32768, 10000.0f, 1e-5f, false, 0, 0, 0, 0, false},
    /* Baichuan2-7B-Base/Chat (its NormHead is not modelled: output is a plain matrix) */
    {"baichuan2-7b", "baichuan", "Baichuan2-7B (random weights)", 32, 4096, 32, 32, 128, 11008,
     125696, 4096, 10000.0f, 1e-6f, false, 0, 0, 0, 0, true},
    {"qwen2.5-7b", "qwen2", "Qwen2.5-7B (random weights)", 28, 3584, 28, 4, 128, 18944, 152064,
     32768, 1e6f, 1e-6f, true, 0, 0, 0, 0, true},
    {"llama-3.1-8b", "llama", "Llama-3.1-8B (random weights)", 32, 4096, 32, 8, 128, 14336, 128256,
     131072, 500000.0f, 1e-5f, false, 8.0f, 1.0f, 4.0f, 8192, true},
};

/* What some shapes have beyond rm_shape: per-head Q/K norms, routed experts, latent
 * attention. A shape not listed has none of these. */
typedef struct rm_shape_ext {
    const char *like;
    bool qk_norm;                  /* attn_q_norm / attn_k_norm [head_dim] (Qwen3) */
    int n_expert, n_expert_used;   /* routed experts (ffn_*_exps), 0 = dense FFN */
    int n_ff_exp;                  /* hidden width of one expert */
    int q_lora_rank, kv_lora_rank; /* multi-head latent attention (MiniCPM3), 0 = none */
    int n_rot, head_dim_v;         /* MLA: RoPE'd dims of a head_dim Q/K head; V head width */
} rm_shape_ext;

/* Qwen3-30B-A3B and MiniCPM3-4B from their config.json; qwen3-moe-tiny is a small MoE
 * for tests and benchmarks (expert rows of 256, so the K-quants apply). */
static const rm_shape_ext rm_shape_exts[] = {
    {"qwen3-30b-a3b", true, 128, 8, 768, 0, 0, 0, 0},
    {"qwen3-moe-tiny", true, 8, 2, 256, 0, 0, 0, 0},
    {"minicpm3-4b", false, 0, 0, 0, 768, 256, 32, 64},
};

static const rm_shape_ext *shape_ext(const rm_shape *s) {
    static const rm_shape_ext none = {NULL, false, 0, 0, 0, 0, 0, 0, 0};
    for (size_t i = 0; i < ES_ARRAY_LEN(rm_shape_exts); i++)
        if (!strcmp(rm_shape_exts[i].like, s->like)) return &rm_shape_exts[i];
    return &none;
}

const char *const es_random_model_likes[] = {
    "qwen2.5-0.5b", "llama-3.2-1b", "demo-16m",   "qwen3-30b-a3b", "qwen3-moe-tiny",
    "minicpm3-4b",  "baichuan2-7b", "qwen2.5-7b", "llama-3.1-8b",  NULL};

/* ------------------------------------------------------------------------- */
/* Quantization mixes                                                        */
/* ------------------------------------------------------------------------- */

typedef enum rm_mix { MIX_F16, MIX_Q8_0, MIX_Q4_0, MIX_Q4_K_M, MIX_Q5_K_M, MIX_Q6_K } rm_mix;

static const struct {
    const char *name;
    rm_mix mix;
    uint32_t file_type; /* general.file_type as llama.cpp numbers it */
} rm_mixes[] = {
    {"f16", MIX_F16, 1},        {"q8_0", MIX_Q8_0, 7},      {"q4_0", MIX_Q4_0, 2},
    {"q4_k_m", MIX_Q4_K_M, 15}, {"q5_k_m", MIX_Q5_K_M, 17}, {"q6_k", MIX_Q6_K, 18},
};

const char *const es_random_model_mixes[] = {"f16",    "q8_0", "q4_0", "q4_k_m",
                                             "q5_k_m", "q6_k", NULL};

typedef enum rm_role {
    ROLE_EMBD, /* token_embd, also the output projection (tied) */
    ROLE_TOK,  /* token_embd of an untied model: typed as the other matrices */
    ROLE_OUT,  /* output.weight of an untied model: typed as a tied token_embd */
    ROLE_Q,
    ROLE_K,
    ROLE_V,
    ROLE_O,
    ROLE_GATE,
    ROLE_UP,
    ROLE_DOWN,
    ROLE_NORM, /* F32, 1 + noise */
    ROLE_BIAS, /* F32, noise */
    ROLE_ROPE, /* F32, Llama 3 frequency factors */
} rm_role;

/* llama-quantize's choice of layers that get more bits in the _M mixes. */
static bool use_more_bits(int layer, int n_layer) {
    return layer < n_layer / 8 || layer >= 7 * n_layer / 8 || (layer - n_layer / 8) % 3 == 2;
}

/* K-quants need rows of a multiple of 256 elements; llama-quantize's fallbacks. */
static int fallback_type(int type, int64_t row) {
    if (row % 256 == 0) return type;
    switch (type) {
    case ES_TYPE_Q4_K: return ES_TYPE_Q5_0;
    case ES_TYPE_Q5_K: return ES_TYPE_Q5_1;
    case ES_TYPE_Q6_K: return ES_TYPE_Q8_0;
    default: return type;
    }
}

static int matrix_type(rm_mix mix, rm_role role, int layer, int n_layer, int64_t row) {
    int t;
    const bool more = use_more_bits(layer, n_layer);
    switch (mix) {
    case MIX_F16: t = ES_TYPE_F16; break;
    case MIX_Q8_0: t = ES_TYPE_Q8_0; break;
    case MIX_Q4_0: t = role == ROLE_EMBD || role == ROLE_OUT ? ES_TYPE_Q6_K : ES_TYPE_Q4_0; break;
    case MIX_Q4_K_M:
    case MIX_Q5_K_M:
        if (role == ROLE_EMBD || role == ROLE_OUT ||
            ((role == ROLE_V || role == ROLE_DOWN) && more))
            t = ES_TYPE_Q6_K;
        else
            t = mix == MIX_Q4_K_M ? ES_TYPE_Q4_K : ES_TYPE_Q5_K;
        break;
    default: t = ES_TYPE_Q6_K; break;
    }
    return fallback_type(t, row);
}

/* ------------------------------------------------------------------------- */
/* Tensor list                                                               */
/* ------------------------------------------------------------------------- */

typedef struct rm_tensor {
    char name[64];
    rm_role role;
    int type;
    int n_dims;
    int64_t ne[2]; /* [row length, rows] */
    int64_t n_mat; /* matrices of ne[1] rows back to back (3-D expert tensors), else 1 */
} rm_tensor;

static void add_tensor(rm_tensor *list, int *n, rm_role role, int layer, const char *name,
                       int n_dims, int64_t ne0, int64_t ne1, int type) {
    rm_tensor *t = &list[(*n)++];
    if (layer >= 0)
        snprintf(t->name, sizeof t->name, "blk.%d.%s", layer, name);
    else
        snprintf(t->name, sizeof t->name, "%s", name);
    t->role = role;
    t->type = type;
    t->n_dims = n_dims;
    t->ne[0] = ne0;
    t->ne[1] = ne1;
    t->n_mat = 1;
}

/* The same for n_mat expert matrices of [ne1][ne0] in one 3-D tensor. */
static void add_experts(rm_tensor *list, int *n, rm_role role, int layer, const char *name,
                        int64_t ne0, int64_t ne1, int64_t n_mat, int type) {
    add_tensor(list, n, role, layer, name, 3, ne0, ne1, type);
    list[*n - 1].n_mat = n_mat;
}

/* The router (F32, as llama-quantize leaves it) and the experts of layer l, quantized
 * as the dense FFN matrices would be. */
static void add_moe_ffn(const rm_shape *s, const rm_shape_ext *x, rm_mix mix, rm_tensor *list,
                        int *n, int l) {
    const int64_t d = s->n_embd, ff = x->n_ff_exp, E = x->n_expert;
    add_tensor(list, n, ROLE_GATE, l, "ffn_gate_inp.weight", 2, d, E, ES_TYPE_F32);
    add_experts(list, n, ROLE_GATE, l, "ffn_gate_exps.weight", d, ff, E,
                matrix_type(mix, ROLE_GATE, l, s->n_layer, d));
    add_experts(list, n, ROLE_UP, l, "ffn_up_exps.weight", d, ff, E,
                matrix_type(mix, ROLE_UP, l, s->n_layer, d));
    add_experts(list, n, ROLE_DOWN, l, "ffn_down_exps.weight", ff, d, E,
                matrix_type(mix, ROLE_DOWN, l, s->n_layer, ff));
}

/* Layer l of a latent-attention model after its attn_norm (MiniCPM3: dense FFN);
 * returns l. */
static int add_mla_layer(const rm_shape *s, const rm_shape_ext *x, rm_mix mix, rm_tensor *list,
                         int *n, int l) {
    const int64_t d = s->n_embd, q = (int64_t)s->n_head * s->head_dim, ff = s->n_ff;
    const int64_t kv = (int64_t)s->n_head * (s->head_dim - x->n_rot + x->head_dim_v);
    const int64_t o = (int64_t)s->n_head * x->head_dim_v;
    add_tensor(list, n, ROLE_Q, l, "attn_q_a.weight", 2, d, x->q_lora_rank,
               matrix_type(mix, ROLE_Q, l, s->n_layer, d));
    add_tensor(list, n, ROLE_NORM, l, "attn_q_a_norm.weight", 1, x->q_lora_rank, 1, ES_TYPE_F32);
    add_tensor(list, n, ROLE_Q, l, "attn_q_b.weight", 2, x->q_lora_rank, q,
               matrix_type(mix, ROLE_Q, l, s->n_layer, x->q_lora_rank));
    add_tensor(list, n, ROLE_K, l, "attn_kv_a_mqa.weight", 2, d, x->kv_lora_rank + x->n_rot,
               matrix_type(mix, ROLE_K, l, s->n_layer, d));
    add_tensor(list, n, ROLE_NORM, l, "attn_kv_a_norm.weight", 1, x->kv_lora_rank, 1, ES_TYPE_F32);
    add_tensor(list, n, ROLE_V, l, "attn_kv_b.weight", 2, x->kv_lora_rank, kv,
               matrix_type(mix, ROLE_V, l, s->n_layer, x->kv_lora_rank));
    add_tensor(list, n, ROLE_O, l, "attn_output.weight", 2, o, d,
               matrix_type(mix, ROLE_O, l, s->n_layer, o));
    add_tensor(list, n, ROLE_NORM, l, "ffn_norm.weight", 1, d, 1, ES_TYPE_F32);
    add_tensor(list, n, ROLE_GATE, l, "ffn_gate.weight", 2, d, ff,
               matrix_type(mix, ROLE_GATE, l, s->n_layer, d));
    add_tensor(list, n, ROLE_UP, l, "ffn_up.weight", 2, d, ff,
               matrix_type(mix, ROLE_UP, l, s->n_layer, d));
    add_tensor(list, n, ROLE_DOWN, l, "ffn_down.weight", 2, ff, d,
               matrix_type(mix, ROLE_DOWN, l, s->n_layer, ff));
    return l;
}

/* Fills list (capacity 4 + 13·n_layer) and returns the count. */
static int build_tensor_list(const rm_shape *s, rm_mix mix, rm_tensor *list) {
    int n = 0;
    const int64_t d = s->n_embd, q = (int64_t)s->n_head * s->head_dim,
                  kv = (int64_t)s->n_head_kv * s->head_dim, ff = s->n_ff, L = s->n_layer;
    const rm_role embd = s->untied ? ROLE_TOK : ROLE_EMBD;
    add_tensor(list, &n, embd, -1, "token_embd.weight", 2, d, s->n_vocab,
               matrix_type(mix, embd, 0, s->n_layer, d));
    add_tensor(list, &n, ROLE_NORM, -1, "output_norm.weight", 1, d, 1, ES_TYPE_F32);
    if (s->untied)
        add_tensor(list, &n, ROLE_OUT, -1, "output.weight", 2, d, s->n_vocab,
                   matrix_type(mix, ROLE_OUT, 0, s->n_layer, d));
    if (s->rope_factor > 0)
        add_tensor(list, &n, ROLE_ROPE, -1, "rope_freqs.weight", 1, s->head_dim / 2, 1,
                   ES_TYPE_F32);
    const rm_shape_ext *x = shape_ext(s);
    for (int l = 0; l < L; l++) {
        add_tensor(list, &n, ROLE_NORM, l, "attn_norm.weight", 1, d, 1, ES_TYPE_F32);
        if (x->kv_lora_rank > 0) {
            l = add_mla_layer(s, x, mix, list, &n, l);
            continue;
        }
        add_tensor(list, &n, ROLE_Q, l, "attn_q.weight", 2, d, q,
                   matrix_type(mix, ROLE_Q, l, s->n_layer, d));
        add_tensor(list, &n, ROLE_K, l, "attn_k.weight", 2, d, kv,
                   matrix_type(mix, ROLE_K, l, s->n_layer, d));
        add_tensor(list, &n, ROLE_V, l, "attn_v.weight", 2, d, kv,
                   matrix_type(mix, ROLE_V, l, s->n_layer, d));
        if (s->qkv_bias) {
            add_tensor(list, &n, ROLE_BIAS, l, "attn_q.bias", 1, q, 1, ES_TYPE_F32);
            add_tensor(list, &n, ROLE_BIAS, l, "attn_k.bias", 1, kv, 1, ES_TYPE_F32);
            add_tensor(list, &n, ROLE_BIAS, l, "attn_v.bias", 1, kv, 1, ES_TYPE_F32);
        }
        if (x->qk_norm) {
            add_tensor(list, &n, ROLE_NORM, l, "attn_q_norm.weight", 1, s->head_dim, 1,
                       ES_TYPE_F32);
            add_tensor(list, &n, ROLE_NORM, l, "attn_k_norm.weight", 1, s->head_dim, 1,
                       ES_TYPE_F32);
        }
        add_tensor(list, &n, ROLE_O, l, "attn_output.weight", 2, q, d,
                   matrix_type(mix, ROLE_O, l, s->n_layer, q));
        add_tensor(list, &n, ROLE_NORM, l, "ffn_norm.weight", 1, d, 1, ES_TYPE_F32);
        if (x->n_expert > 0) {
            add_moe_ffn(s, x, mix, list, &n, l);
            continue;
        }
        add_tensor(list, &n, ROLE_GATE, l, "ffn_gate.weight", 2, d, ff,
                   matrix_type(mix, ROLE_GATE, l, s->n_layer, d));
        add_tensor(list, &n, ROLE_UP, l, "ffn_up.weight", 2, d, ff,
                   matrix_type(mix, ROLE_UP, l, s->n_layer, d));
        add_tensor(list, &n, ROLE_DOWN, l, "ffn_down.weight", 2, ff, d,
                   matrix_type(mix, ROLE_DOWN, l, s->n_layer, ff));
    }
    return n;
}

/* ------------------------------------------------------------------------- */
/* Values                                                                    */
/* ------------------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Approximately N(0, 1): the sum of the four 16-bit uniforms of one 64-bit draw,
 * centred and scaled (mean 4·32767.5, sd 2·65536/√12). */
static inline float gauss4(uint64_t *state) {
    const uint64_t r = splitmix64(state);
    const int32_t sum = (int32_t)(r & 0xffff) + (int32_t)((r >> 16) & 0xffff) +
                        (int32_t)((r >> 32) & 0xffff) + (int32_t)(r >> 48);
    return ((float)sum - 131070.0f) * (1.0f / 37837.2f);
}

/* Llama 3 rope frequency factors (what rope_freqs.weight holds): 1 for short
 * wavelengths, `factor` for long ones, smooth in between. */
static void llama3_rope_factors(const rm_shape *s, float *out) {
    const int half = s->head_dim / 2;
    const double low_wavelen = s->rope_orig_ctx / s->rope_low_freq;
    const double high_wavelen = s->rope_orig_ctx / s->rope_high_freq;
    for (int i = 0; i < half; i++) {
        const double freq = 1.0 / pow(s->rope_theta, (2.0 * i) / s->head_dim);
        const double wavelen = 2.0 * M_PI / freq;
        if (wavelen < high_wavelen) {
            out[i] = 1.0f;
        } else if (wavelen > low_wavelen) {
            out[i] = s->rope_factor;
        } else {
            const double smooth = (s->rope_orig_ctx / wavelen - s->rope_low_freq) /
                                  (s->rope_high_freq - s->rope_low_freq);
            out[i] = (float)(1.0 / ((1.0 - smooth) / s->rope_factor + smooth));
        }
    }
}

typedef struct gen_task {
    const rm_tensor *t;
    uint64_t seed;
    int index; /* tensor index, part of every row's seed */
    es_from_float_fn quantize;
    size_t row_bytes;
    uint8_t *out;       /* [rows][row_bytes] */
    atomic_bool failed; /* a thread could not allocate its row buffer */
} gen_task;

/* Rows [ith·rows/nth, (ith+1)·rows/nth): each row from its own seed, so the result
 * does not depend on the number of threads. */
static void gen_rows(void *arg, int ith, int nth) {
    gen_task *g = arg;
    const int64_t n = g->t->ne[0], rows = g->t->ne[1] * g->t->n_mat;
    const int64_t r0 = rows * ith / nth, r1 = rows * (ith + 1) / nth;
    if (r0 >= r1) return;
    float *row = malloc(sizeof *row * (size_t)n);
    if (!row) {
        atomic_store(&g->failed, true);
        return;
    }
    for (int64_t r = r0; r < r1; r++) {
        uint64_t st = g->seed ^ ((uint64_t)g->index << 40) ^ (uint64_t)r * 0xd1b54a32d192ed03ull;
        splitmix64(&st);
        for (int64_t i = 0; i < n; i++) {
            const float v = 0.02f * gauss4(&st);
            row[i] = g->t->role == ROLE_NORM ? 1.0f + v : v;
        }
        g->quantize(row, g->out + (size_t)r * g->row_bytes, n);
    }
    free(row);
}

/* Generates one tensor into a new buffer (*out, caller frees). */
static es_status gen_tensor(const rm_shape *s, const rm_tensor *t, int index, uint64_t seed,
                            es_threadpool *tp, uint8_t **out) {
    const es_type_traits *tr = es_type_get(t->type);
    const size_t row_bytes = es_row_size(t->type, t->ne[0]);
    size_t bytes;
    if (!tr || !row_bytes || !es_mul_size(row_bytes, (size_t)(t->ne[1] * t->n_mat), &bytes))
        return es_error(ES_ERR_INTERNAL, "random model: tensor %s: bad type %s or shape", t->name,
                        es_type_name(t->type));
    if (t->role == ROLE_ROPE) {
        float *f = es_calloc((size_t)t->ne[0], sizeof *f);
        if (!f) return ES_ERR_NOMEM;
        llama3_rope_factors(s, f);
        *out = (uint8_t *)f;
        return ES_OK;
    }
    if (!tr->from_float)
        return es_error(ES_ERR_UNSUPPORTED, "random model: no quantizer for %s (tensor %s)",
                        es_type_name(t->type), t->name);
    uint8_t *buf = malloc(bytes);
    if (!buf)
        return es_error(ES_ERR_NOMEM, "random model: out of memory for %s (%zu bytes)", t->name,
                        bytes);
    gen_task g = {.t = t,
                  .seed = seed,
                  .index = index,
                  .quantize = tr->from_float,
                  .row_bytes = row_bytes,
                  .out = buf};
    atomic_init(&g.failed, false);
    es_threadpool_run(tp, gen_rows, &g);
    if (atomic_load(&g.failed)) {
        free(buf);
        return es_error(ES_ERR_NOMEM, "random model: out of memory generating %s", t->name);
    }
    *out = buf;
    return ES_OK;
}

/* ------------------------------------------------------------------------- */
/* Metadata                                                                  */
/* ------------------------------------------------------------------------- */

static es_status set_hparams(es_gguf_writer *w, const rm_shape *s, uint32_t file_type,
                             uint64_t seed) {
    char key[128];
    es_status st = ES_OK;
#define KEY(suffix) (snprintf(key, sizeof key, "%s.%s", s->arch, suffix), key)
    if (!st) st = es_gguf_writer_set_str(w, "general.architecture", s->arch);
    if (!st) st = es_gguf_writer_set_str(w, "general.name", s->name);
    if (!st)
        st = es_gguf_writer_set_str(w, "general.description",
                                    "random weights for benchmarks (emosteer random-model)");
    if (!st) st = es_gguf_writer_set_u32(w, "general.file_type", file_type);
    if (!st) st = es_gguf_writer_set_u32(w, "general.quantization_version", 2);
    if (!st) st = es_gguf_writer_set_u64(w, "emosteer.random_model.seed", seed);
    if (!st) st = es_gguf_writer_set_u32(w, KEY("block_count"), (uint32_t)s->n_layer);
    if (!st) st = es_gguf_writer_set_u32(w, KEY("context_length"), (uint32_t)s->n_ctx);
    if (!st) st = es_gguf_writer_set_u32(w, KEY("embedding_length"), (uint32_t)s->n_embd);
    if (!st) st = es_gguf_writer_set_u32(w, KEY("feed_forward_length"), (uint32_t)s->n_ff);
    if (!st) st = es_gguf_writer_set_u32(w, KEY("attention.head_count"), (uint32_t)s->n_head);
    if (!st) st = es_gguf_writer_set_u32(w, KEY("attention.head_count_kv"), (uint32_t)s->n_head_kv);
    if (!st) st = es_gguf_writer_set_f32(w, KEY("rope.freq_base"), s->rope_theta);
    if (!st) st = es_gguf_writer_set_f32(w, KEY("attention.layer_norm_rms_epsilon"), s->rms_eps);
    if (!st) st = es_gguf_writer_set_u32(w, KEY("attention.key_length"), (uint32_t)s->head_dim);
    const rm_shape_ext *x = shape_ext(s);
    const int head_dim_v = x->head_dim_v ? x->head_dim_v : s->head_dim,
              n_rot = x->n_rot ? x->n_rot : s->head_dim;
    if (!st) st = es_gguf_writer_set_u32(w, KEY("attention.value_length"), (uint32_t)head_dim_v);
    if (!st) st = es_gguf_writer_set_u32(w, KEY("rope.dimension_count"), (uint32_t)n_rot);
    if (!st && x->n_expert > 0)
        st = es_gguf_writer_set_u32(w, KEY("expert_count"), (uint32_t)x->n_expert);
    if (!st && x->n_expert > 0)
        st = es_gguf_writer_set_u32(w, KEY("expert_used_count"), (uint32_t)x->n_expert_used);
    if (!st && x->n_expert > 0)
        st = es_gguf_writer_set_u32(w, KEY("expert_feed_forward_length"), (uint32_t)x->n_ff_exp);
    if (!st && x->kv_lora_rank > 0)
        st = es_gguf_writer_set_u32(w, KEY("attention.q_lora_rank"), (uint32_t)x->q_lora_rank);
    if (!st && x->kv_lora_rank > 0)
        st = es_gguf_writer_set_u32(w, KEY("attention.kv_lora_rank"), (uint32_t)x->kv_lora_rank);
    if (!st) st = es_gguf_writer_set_u32(w, KEY("vocab_size"), (uint32_t)s->n_vocab);
#undef KEY
    return st;
}

/* A SentencePiece-style vocabulary of n tokens: <unk>, <s>, </s>, 256 byte tokens,
 * then "t<i>" with decreasing scores. */
static es_status set_tokenizer(es_gguf_writer *w, int n) {
    char **tok = es_calloc((size_t)n, sizeof *tok);
    float *score = es_calloc((size_t)n, sizeof *score);
    int32_t *type = es_calloc((size_t)n, sizeof *type);
    es_status st = tok && score && type ? ES_OK : ES_ERR_NOMEM;
    for (int i = 0; i < n && !st; i++) {
        char buf[32];
        if (i < 3) { /* <unk> is type 2 (unknown), <s> and </s> type 3 (control) */
            snprintf(buf, sizeof buf, "%s", i == 0 ? "<unk>" : i == 1 ? "<s>" : "</s>");
            type[i] = i == 0 ? 2 : 3;
        } else if (i < 3 + 256) { /* byte tokens: type 6 */
            snprintf(buf, sizeof buf, "<0x%02X>", i - 3);
            type[i] = 6;
        } else { /* normal tokens: type 1 */
            snprintf(buf, sizeof buf, "t%d", i);
            type[i] = 1;
            score[i] = -(float)(i - 258);
        }
        tok[i] = es_strdup(buf);
        if (!tok[i]) st = ES_ERR_NOMEM;
    }
    if (!st) st = es_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    if (!st) st = es_gguf_writer_set_str(w, "tokenizer.ggml.pre", "default");
    if (!st)
        st = es_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)tok,
                                        (uint64_t)n);
    if (!st)
        st =
            es_gguf_writer_set_arr(w, "tokenizer.ggml.scores", ES_GGUF_FLOAT32, score, (uint64_t)n);
    if (!st)
        st = es_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", ES_GGUF_INT32, type,
                                    (uint64_t)n);
    if (!st) st = es_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 1);
    if (!st) st = es_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 2);
    if (!st) st = es_gguf_writer_set_u32(w, "tokenizer.ggml.padding_token_id", 0);
    if (!st) st = es_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", true);
    if (!st) st = es_gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", false);
    if (tok)
        for (int i = 0; i < n; i++)
            free(tok[i]);
    free(tok);
    free(score);
    free(type);
    if (st == ES_ERR_NOMEM)
        return es_error(ES_ERR_NOMEM, "random model: out of memory for the vocabulary");
    return st;
}

/* ------------------------------------------------------------------------- */
/* Entry point                                                               */
/* ------------------------------------------------------------------------- */

es_random_model_params es_random_model_default_params(void) {
    es_random_model_params p = {"demo-16m", "q8_0", 1, 1, NULL, NULL};
    return p;
}

es_status es_random_model_write(const es_random_model_params *p, const char *path,
                                uint64_t *n_params) {
    if (!p || !path || !p->like || !p->mix)
        return es_error(ES_ERR_INVALID_ARG, "random model: NULL argument");
    const rm_shape *s = NULL;
    for (size_t i = 0; i < ES_ARRAY_LEN(rm_shapes); i++)
        if (!strcmp(p->like, rm_shapes[i].like)) s = &rm_shapes[i];
    if (!s) return es_error(ES_ERR_INVALID_ARG, "random model: unknown model shape '%s'", p->like);
    int mix = -1;
    for (size_t i = 0; i < ES_ARRAY_LEN(rm_mixes); i++)
        if (!strcmp(p->mix, rm_mixes[i].name)) mix = (int)i;
    if (mix < 0) return es_error(ES_ERR_INVALID_ARG, "random model: unknown type mix '%s'", p->mix);

    rm_tensor *list = es_calloc(4 + 13 * (size_t)s->n_layer, sizeof *list);
    es_gguf_writer *w = es_gguf_writer_new();
    es_threadpool *tp = p->n_threads > 1 ? es_threadpool_create(p->n_threads) : NULL;
    es_status st = list && w && (tp || p->n_threads <= 1) ? ES_OK : ES_ERR_NOMEM;
    if (st) es_error(ES_ERR_NOMEM, "random model: out of memory");
    if (!st) st = set_hparams(w, s, rm_mixes[mix].file_type, p->seed);
    if (!st) st = set_tokenizer(w, s->n_vocab);
    uint64_t count = 0;
    const int n = st ? 0 : build_tensor_list(s, rm_mixes[mix].mix, list);
    for (int i = 0; i < n && !st; i++) {
        uint8_t *data = NULL;
        st = gen_tensor(s, &list[i], i, p->seed, tp, &data);
        if (st) break;
        const int64_t ne[3] = {list[i].ne[0], list[i].ne[1], list[i].n_mat};
        st = es_gguf_writer_add_tensor(w, list[i].name, list[i].type, list[i].n_dims, ne, data);
        free(data);
        count += (uint64_t)(ne[0] * ne[1] * ne[2]);
        if (!st && p->progress) p->progress(p->progress_ud, i, n, list[i].name, list[i].type, ne);
    }
    if (!st) st = es_gguf_writer_write(w, path);
    if (!st && n_params) *n_params = count;
    es_threadpool_free(tp);
    es_gguf_writer_free(w);
    free(list);
    return st;
}
