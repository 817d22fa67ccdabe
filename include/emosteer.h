/*
 * emosteer.h — the one public header of libemosteer.
 *
 * emosteer runs GGUF language models on the CPU and steers them with emotion
 * vectors: per-layer directions added to the hidden state at named hook points.
 *
 * Conventions (they hold for every function below unless its comment says otherwise):
 *   - Every symbol is prefixed `es_` / `ES_`.
 *   - Functions that can fail return an es_status. ES_OK (0) is success; every
 *     failure is negative. On failure a readable message naming the problem is
 *     kept per thread and returned by es_last_error(). Output parameters are left
 *     untouched on failure.
 *   - The library never exits, aborts, or prints. The caller decides what to show.
 *   - Handles are opaque. Each create/load has one free; free(NULL) is a no-op.
 *   - `*_default_params()` returns a struct by value; change fields, pass a pointer.
 *   - Thread safety: a model is immutable after load and may be shared by any number
 *     of contexts in any threads. A context is used by one thread at a time.
 *   - Shapes are written fastest dimension last in C order: float x[n_tokens][n_embd].
 */
#ifndef EMOSTEER_H
#define EMOSTEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ES_VERSION_STRING "0.1.0"

/* ------------------------------------------------------------------------- */
/* Status codes                                                              */
/* ------------------------------------------------------------------------- */

typedef enum es_status {
    ES_OK = 0,
    ES_ERR_INVALID_ARG = -1, /* a caller-supplied argument is wrong (NULL, out of range, bad name) */
    ES_ERR_IO = -2,          /* a file could not be opened, read, mapped or written */
    ES_ERR_FORMAT = -3,      /* input is malformed: truncated, lying counts, bad magic, NaN, ... */
    ES_ERR_UNSUPPORTED = -4, /* input is well formed but uses something we do not implement */
    ES_ERR_NOMEM = -5,       /* an allocation failed or a size would overflow */
    ES_ERR_RANGE = -6,       /* a position, token id or sequence is outside what the context holds */
    ES_ERR_NOT_FOUND = -7,   /* a named key, tensor, emotion or file entry does not exist */
    ES_ERR_INTERNAL = -8,    /* a bug in emosteer; please report the message */
} es_status;

/* A static English name for a status ("ok", "invalid argument", ...). Never NULL. */
const char *es_status_str(es_status st);

/* The message of the last failure on the calling thread ("" if none). The pointer
 * stays valid until the next emosteer call on this thread. */
const char *es_last_error(void);

/* ------------------------------------------------------------------------- */
/* Threads                                                                   */
/* ------------------------------------------------------------------------- */

/* Number of hardware threads usable by this process (>= 1). */
int es_cpu_count(void);

/* ------------------------------------------------------------------------- */
/* Model                                                                     */
/* ------------------------------------------------------------------------- */

typedef struct es_model es_model;

typedef struct es_model_params {
    bool use_mmap;  /* map the weights read-only and use them in place (default true) */
    bool check_finite; /* scan float weights for NaN/Inf at load (default false; slow on big models) */
} es_model_params;

es_model_params es_model_default_params(void);

/* Loads a GGUF model. On success *out owns the model (free with es_model_free); the
 * file may be deleted afterwards only if use_mmap is false. Unknown architectures and
 * tensor types fail with ES_ERR_UNSUPPORTED and a message naming them. */
es_status es_model_load(const char *path, const es_model_params *params, es_model **out);
void es_model_free(es_model *model);

typedef struct es_model_info {
    const char *arch;   /* "llama", "qwen2", ... (borrowed from the model) */
    const char *name;   /* general.name or "" (borrowed) */
    int n_layer;        /* number of decoder blocks */
    int n_embd;         /* residual width d_model */
    int n_head;         /* query heads */
    int n_head_kv;      /* key/value heads */
    int head_dim;       /* per-head width of Q/K */
    int n_ff;           /* MLP hidden width */
    int n_vocab;        /* rows of the output matrix */
    int n_ctx_train;    /* context length the model was trained for */
    uint64_t n_params;  /* total number of weight elements */
    uint64_t weight_bytes; /* bytes of all weight tensors in the file */
} es_model_info;

/* Fills *info. Never fails for a loaded model. */
void es_model_get_info(const es_model *model, es_model_info *info);

/* ------------------------------------------------------------------------- */
/* Context: KV cache and scratch for up to n_seq_max independent sequences   */
/* ------------------------------------------------------------------------- */

typedef struct es_context es_context;

typedef struct es_context_params {
    int n_ctx;      /* positions held per sequence (default 2048, clamped to n_ctx_train) */
    int n_seq_max;  /* independent sequences (default 1) */
    int n_batch;    /* max tokens in one es_decode call (default 512) */
    int n_threads;  /* worker threads (default: es_cpu_count(), at most 8) */
} es_context_params;

es_context_params es_context_default_params(void);

/* Creates a context over `model`, which must outlive it. *out is owned by the caller. */
es_status es_context_create(es_model *model, const es_context_params *params, es_context **out);
void es_context_free(es_context *ctx);

/* Forgets the cached positions of sequence `seq` (or of all sequences when seq < 0). */
es_status es_kv_clear(es_context *ctx, int seq);

/* Number of positions currently cached for sequence `seq`. */
int es_kv_len(const es_context *ctx, int seq);

/* A batch of tokens, any mix of sequences. Arrays have n_tokens entries and are
 * borrowed for the duration of es_decode. For each sequence, its tokens must appear in
 * increasing position order and the first must be at position <= es_kv_len(seq);
 * positions after it are discarded (so a sequence can be rolled back). pos may be NULL:
 * each token then continues its sequence. seq may be NULL: all tokens are sequence 0.
 * logits may be NULL: only the last token of the batch gets logits. */
typedef struct es_batch {
    int n_tokens;
    const int32_t *token; /* [n_tokens] token ids */
    const int32_t *pos;   /* [n_tokens] positions, or NULL */
    const int32_t *seq;   /* [n_tokens] sequence ids in [0, n_seq_max), or NULL */
    const int8_t *logits; /* [n_tokens] nonzero where logits are wanted, or NULL */
} es_batch;

/* Runs the model on a batch and appends to the KV cache. */
es_status es_decode(es_context *ctx, const es_batch *batch);

/* Logits of the i-th token of the last batch (float[n_vocab]), or NULL if that token
 * did not ask for logits. Valid until the next es_decode or es_context_free. */
const float *es_get_logits(const es_context *ctx, int i);

/* ------------------------------------------------------------------------- */
/* Hook points: read or change activations inside the forward pass           */
/* ------------------------------------------------------------------------- */

typedef enum es_hook_point {
    ES_HOOK_ATTN_OUT = 0,  /* self-attention output after o_proj, before the residual add */
    ES_HOOK_MLP_OUT = 1,   /* MLP output before the residual add (gemma2/3: before post-FFN norm) */
    ES_HOOK_BLOCK_OUT = 2, /* residual stream after the block */
    ES_HOOK_COUNT = 3
} es_hook_point;

/* "attn_out", "mlp_out", "block_out". */
const char *es_hook_name(es_hook_point hp);
/* Parses a hook name; returns ES_ERR_INVALID_ARG naming the bad value. */
es_status es_hook_parse(const char *name, es_hook_point *out);

/* Called for every (hook point, layer) during es_decode with the activations of all
 * tokens of the batch: x[n_tokens][n_embd]. The callback may read and modify x in
 * place; changes flow into the rest of the forward pass. `batch` is the batch being
 * decoded (with pos and seq filled in even if the caller passed NULL). */
typedef void (*es_hook_fn)(void *user, es_hook_point hp, int layer, float *x, int n_tokens,
                           int n_embd, const es_batch *batch);

/* Installs (or with fn == NULL removes) the hook callback of a context. */
void es_set_hook(es_context *ctx, es_hook_fn fn, void *user);

/* ------------------------------------------------------------------------- */
/* Tokenizer (implemented in src/tokenizer*.c)                               */
/* ------------------------------------------------------------------------- */

/* (tokenizer section: end) */

/* ------------------------------------------------------------------------- */
/* Chat templates (implemented in src/chat.c)                                */
/* ------------------------------------------------------------------------- */

/* (chat section: end) */

/* ------------------------------------------------------------------------- */
/* Sampling (implemented in src/sampler.c)                                   */
/* ------------------------------------------------------------------------- */

/* (sampling section: end) */

/* ------------------------------------------------------------------------- */
/* Steering and emotion vectors (implemented in src/steer*.c, src/ev*.c)     */
/* ------------------------------------------------------------------------- */

/* (steering section: end) */

#ifdef __cplusplus
}
#endif
#endif /* EMOSTEER_H */
