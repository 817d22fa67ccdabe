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
#include <stdio.h> /* FILE, for es_results_compare */

#ifdef __cplusplus
extern "C" {
#endif

#define ES_VERSION_STRING "0.1.0"

/* ------------------------------------------------------------------------- */
/* Status codes and error messages                                         */
/* ------------------------------------------------------------------------- */

typedef enum es_status {
    ES_OK = 0,
    ES_ERR_INVALID_ARG =
        -1,             /* a caller-supplied argument is wrong (NULL, out of range, bad name) */
    ES_ERR_IO = -2,     /* a file could not be opened, read, mapped or written */
    ES_ERR_FORMAT = -3, /* input is malformed: truncated, lying counts, bad magic, NaN, ... */
    ES_ERR_UNSUPPORTED = -4, /* input is well formed but uses something we do not implement */
    ES_ERR_NOMEM = -5,       /* an allocation failed or a size would overflow */
    ES_ERR_RANGE = -6,     /* a position, token id or sequence is outside what the context holds */
    ES_ERR_NOT_FOUND = -7, /* a named key, tensor, emotion or file entry does not exist */
    ES_ERR_INTERNAL = -8,  /* a bug in emosteer; please report the message */
} es_status;

/* A static English name for a status ("ok", "invalid argument", ...). Never NULL. */
const char *es_status_str(es_status st);

/* The message of the last failure on the calling thread ("" if none). The pointer
 * stays valid until the next emosteer call on this thread. */
const char *es_last_error(void);

#if defined(__GNUC__)
#define ES_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define ES_PRINTF(a, b)
#endif

/* Records a printf-formatted message for es_last_error() on the calling thread (cut to
 * 1023 bytes) and returns st, so that code built on the library (a scorer callback, a
 * tool) reports its own failures the library's way:
 *     return es_error(ES_ERR_FORMAT, "%s:%d: expected a tab", path, line);
 * Never fails. */
es_status es_error(es_status st, const char *fmt, ...) ES_PRINTF(2, 3);

/* Forgets the calling thread's message: es_last_error() gives "" until the next failure. */
void es_error_clear(void);

/* ------------------------------------------------------------------------- */
/* Threads, clock, strings, SHA-256                                        */
/* ------------------------------------------------------------------------- */

/* Number of hardware threads usable by this process (>= 1). */
int es_cpu_count(void);

/* The kernel paths this process uses, e.g. "avx2+fma+f16c+avxvnni+avx512+avx512vnni",
 * "avx2+fma+f16c" or "scalar" (static). The environment narrows them: ES_FORCE_SCALAR=1
 * (the scalar references), ES_NO_AVX512=1, ES_NO_VNNI=1 (both together: what an
 * AVX2-only CPU such as AMD Zen 3 runs). */
const char *es_kernel_paths(void);

/* Seconds from a monotonic clock (the origin is arbitrary: use differences). */
double es_time_s(void);

/* A malloc'ed copy of the NUL-terminated string s (free with free()), or NULL on
 * allocation failure, with an ES_ERR_NOMEM message. s must not be NULL. */
char *es_strdup(const char *s);

/* SHA-256 (FIPS 180-4) of a whole file, streamed (any size), as 64 lower-case hex
 * digits and a NUL in hex[ES_SHA256_HEX]; what results.json records for the model,
 * vector and query files. Fails with ES_ERR_IO naming the path (hex then untouched). */
#define ES_SHA256_HEX 65 /* 64 hex digits + NUL */
es_status es_sha256_file(const char *path, char hex[ES_SHA256_HEX]);

/* ------------------------------------------------------------------------- */
/* Files (src/base/file.c)                                                 */
/* ------------------------------------------------------------------------- */

/* Reads the whole regular file at `path` (at most max_bytes bytes) into a new 64-byte
 * aligned buffer with a NUL after the last byte (so text can be used as a C string;
 * *len does not count it, and a NUL inside the file is kept: compare *len with
 * strlen). *data is owned by the caller (free()). Fails, with a message starting with
 * "PATH: ", on a file that cannot be opened (ES_ERR_IO), one that is not a regular
 * file — "PATH: is a directory, not a file", a FIFO, a device — (ES_ERR_IO, checked
 * before any read, so a FIFO never blocks), one larger than max_bytes (ES_ERR_FORMAT),
 * a read error (ES_ERR_IO) or out of memory. On failure *data and *len are untouched. */
es_status es_file_read(const char *path, size_t max_bytes, char **data, size_t *len);

/* ------------------------------------------------------------------------- */
/* Tensor types (src/gguf/tensor_types.c)                                  */
/* ------------------------------------------------------------------------- */

/* The element types a GGUF tensor may hold, by GGML's type id as stored in the file.
 * The reader accepts every type listed (it knows their block layout); the forward
 * pass computes with F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and the K-quants
 * Q2_K .. Q6_K, and es_model_load refuses other weight types with ES_ERR_UNSUPPORTED. */
typedef enum es_type {
    ES_TYPE_F32 = 0,
    ES_TYPE_F16 = 1,
    ES_TYPE_Q4_0 = 2,
    ES_TYPE_Q4_1 = 3,
    ES_TYPE_Q5_0 = 6,
    ES_TYPE_Q5_1 = 7,
    ES_TYPE_Q8_0 = 8,
    ES_TYPE_Q8_1 = 9,
    ES_TYPE_Q2_K = 10,
    ES_TYPE_Q3_K = 11,
    ES_TYPE_Q4_K = 12,
    ES_TYPE_Q5_K = 13,
    ES_TYPE_Q6_K = 14,
    ES_TYPE_Q8_K = 15,
    ES_TYPE_IQ2_XXS = 16,
    ES_TYPE_IQ2_XS = 17,
    ES_TYPE_IQ3_XXS = 18,
    ES_TYPE_IQ1_S = 19,
    ES_TYPE_IQ4_NL = 20,
    ES_TYPE_IQ3_S = 21,
    ES_TYPE_IQ2_S = 22,
    ES_TYPE_IQ4_XS = 23,
    ES_TYPE_I8 = 24,
    ES_TYPE_I16 = 25,
    ES_TYPE_I32 = 26,
    ES_TYPE_I64 = 27,
    ES_TYPE_F64 = 28,
    ES_TYPE_IQ1_M = 29,
    ES_TYPE_BF16 = 30,
    ES_TYPE_TQ1_0 = 34,
    ES_TYPE_TQ2_0 = 35,
    ES_TYPE_MXFP4 = 39,
    ES_TYPE_COUNT = 40 /* one past the largest id; ids in between are not types */
} es_type;

/* GGML's name of a type ("F16", "Q4_K"; static), or "unknown" for an id that is not a type. */
const char *es_type_name(es_type type);
/* Bytes of a row of n elements of a type; 0 if the id is not a type or n is not a
 * multiple of its block size. */
size_t es_row_size(es_type type, int64_t n);

/* ------------------------------------------------------------------------- */
/* GGUF files (src/gguf/gguf.c)                                            */
/* ------------------------------------------------------------------------- */

/*
 * Reading and writing GGUF files (versions 2 and 3), for tools that look inside model,
 * vector or activation files (`emosteer info`, `emosteer activations`).
 *
 * Reader: es_gguf_open maps a file (or es_gguf_open_memory borrows a buffer) and
 * validates everything up front: header, every key/value (all 13 value types, nested
 * arrays), every tensor info (name, dims, type, offset), alignment, and that every
 * tensor's bytes lie inside the file. Every count, length and offset read from the
 * file is bounds- and overflow-checked; a failure returns ES_ERR_FORMAT (or ES_ERR_IO
 * / ES_ERR_NOMEM) with a message naming the problem and the byte offset. After a
 * successful open the accessors below cannot fail on bad data. Tensor type ids
 * outside es_type are refused by number. A handle is read-only after open: any number
 * of threads may read it at once.
 *
 * Writer: es_gguf_writer collects key/values and tensors in memory and writes a
 * version-3 file with 32-byte alignment.
 */
typedef enum es_gguf_vtype {
    ES_GGUF_UINT8 = 0,
    ES_GGUF_INT8 = 1,
    ES_GGUF_UINT16 = 2,
    ES_GGUF_INT16 = 3,
    ES_GGUF_UINT32 = 4,
    ES_GGUF_INT32 = 5,
    ES_GGUF_FLOAT32 = 6,
    ES_GGUF_BOOL = 7,
    ES_GGUF_STRING = 8,
    ES_GGUF_ARRAY = 9,
    ES_GGUF_UINT64 = 10,
    ES_GGUF_INT64 = 11,
    ES_GGUF_FLOAT64 = 12,
    ES_GGUF_VTYPE_COUNT = 13
} es_gguf_vtype;

/* A string inside the file: borrowed from the handle, not NUL-terminated in general. */
typedef struct es_gguf_str {
    const char *ptr;
    uint64_t len;
} es_gguf_str;

#define ES_GGUF_MAX_DIMS 4

/* One tensor of an open file; borrowed from the handle (valid until es_gguf_close). */
typedef struct es_gguf_tensor {
    char *name;                   /* NUL-terminated copy */
    es_type type;                 /* element type */
    int n_dims;                   /* 1..4 */
    int64_t ne[ES_GGUF_MAX_DIMS]; /* elements per dim, fastest first; unused dims are 1 */
    uint64_t offset;              /* offset in the data section */
    size_t nbytes;                /* bytes of data */
    const void *data;             /* [nbytes] pointer into the mapping (or the buffer) */
} es_gguf_tensor;

typedef struct es_gguf es_gguf;

/* Opens and validates a GGUF file. On success *out owns a read-only private mapping
 * of the file, which lives until es_gguf_close; every pointer handed out by the
 * accessors below is borrowed from it. */
es_status es_gguf_open(const char *path, es_gguf **out);
/* Validates a GGUF image in memory. `data` is borrowed and must outlive the handle. */
es_status es_gguf_open_memory(const void *data, size_t size, es_gguf **out);
/* Unmaps and frees; every pointer from the handle becomes invalid. NULL is a no-op. */
void es_gguf_close(es_gguf *g);

uint32_t es_gguf_version(const es_gguf *g);
size_t es_gguf_alignment(const es_gguf *g);
/* The path given to es_gguf_open (borrowed), "" for memory images. */
const char *es_gguf_path(const es_gguf *g);

/* Key/value metadata: the number of keys, the index of a key (or -1), and the key
 * and value type of index i in [0, es_gguf_n_kv). */
int64_t es_gguf_n_kv(const es_gguf *g);
int64_t es_gguf_find_key(const es_gguf *g, const char *key);
es_gguf_str es_gguf_key(const es_gguf *g, int64_t i);
es_gguf_vtype es_gguf_kv_type(const es_gguf *g, int64_t i);

/* Typed getters by key. Each returns ES_ERR_NOT_FOUND if the key is missing and
 * ES_ERR_FORMAT (message names the key, expected and actual type) on a type
 * mismatch; *out is written only on success. Integer getters accept any integer type
 * whose value fits; es_gguf_get_f32 takes f32 or f64. A string is borrowed. */
es_status es_gguf_get_u32(const es_gguf *g, const char *key, uint32_t *out);
es_status es_gguf_get_i64(const es_gguf *g, const char *key, int64_t *out);
es_status es_gguf_get_f32(const es_gguf *g, const char *key, float *out);
es_status es_gguf_get_bool(const es_gguf *g, const char *key, bool *out);
es_status es_gguf_get_str(const es_gguf *g, const char *key, es_gguf_str *out);
/* A NUL-terminated malloc'ed copy of a string value (the caller frees it), or NULL if
 * the key is absent or not a string. */
char *es_gguf_get_str_dup(const es_gguf *g, const char *key);

/* Arrays. es_gguf_get_arr gives the element type and count of an array key (errors as
 * the typed getters). */
es_status es_gguf_get_arr(const es_gguf *g, const char *key, es_gguf_vtype *elem_type, uint64_t *n);
/* Pointer to the raw little-endian elements of a numeric array (not strings/arrays), or
 * NULL. Borrowed, inside the image, so possibly unaligned: read elements with memcpy. */
const void *es_gguf_arr_data(const es_gguf *g, const char *key);
/* The i-th string of a string array (borrowed; {NULL, 0} if out of range). */
es_gguf_str es_gguf_arr_str(const es_gguf *g, const char *key, uint64_t i);
/* Fills out[0..n) from a numeric array of any integer or float type, converting.
 * Fails (ES_ERR_FORMAT) if the key is not a numeric array of exactly n elements. */
es_status es_gguf_arr_to_f32(const es_gguf *g, const char *key, float *out, uint64_t n);
es_status es_gguf_arr_to_i32(const es_gguf *g, const char *key, int32_t *out, uint64_t n);

/* Tensors: the count, the i-th in file order (NULL out of range) and one by name
 * (NULL if absent); borrowed from the handle. */
int64_t es_gguf_n_tensors(const es_gguf *g);
const es_gguf_tensor *es_gguf_tensor_at(const es_gguf *g, int64_t i);
const es_gguf_tensor *es_gguf_find_tensor(const es_gguf *g, const char *name);

/* The writer. es_gguf_writer_new returns an empty writer owned by the caller
 * (es_gguf_writer_free), or NULL when out of memory. One thread at a time. */
typedef struct es_gguf_writer es_gguf_writer;

es_gguf_writer *es_gguf_writer_new(void);
void es_gguf_writer_free(es_gguf_writer *w);
/* Setters copy their arguments. A key set twice keeps the last value. set_arr takes
 * n elements of a numeric elem_type at data (host little-endian). */
es_status es_gguf_writer_set_u32(es_gguf_writer *w, const char *key, uint32_t v);
es_status es_gguf_writer_set_i32(es_gguf_writer *w, const char *key, int32_t v);
es_status es_gguf_writer_set_u64(es_gguf_writer *w, const char *key, uint64_t v);
es_status es_gguf_writer_set_f32(es_gguf_writer *w, const char *key, float v);
es_status es_gguf_writer_set_bool(es_gguf_writer *w, const char *key, bool v);
es_status es_gguf_writer_set_str(es_gguf_writer *w, const char *key, const char *v);
es_status es_gguf_writer_set_arr(es_gguf_writer *w, const char *key, es_gguf_vtype elem_type,
                                 const void *data, uint64_t n);
es_status es_gguf_writer_set_arr_str(es_gguf_writer *w, const char *key, const char *const *v,
                                     uint64_t n);
/* Adds a tensor of n_dims dims ne[] (fastest first); its bytes (es_row_size of the rows)
 * are copied from data. */
es_status es_gguf_writer_add_tensor(es_gguf_writer *w, const char *name, es_type type, int n_dims,
                                    const int64_t *ne, const void *data);
/* Any scalar type (u8..f64, bool) from host (little-endian) bytes at value. */
es_status es_gguf_writer_set_val(es_gguf_writer *w, const char *key, es_gguf_vtype type,
                                 const void *value);
/* A value already encoded as in the file (e.g. nested arrays): n bytes at value, which
 * must parse as exactly one value of `type` (ES_ERR_INVALID_ARG otherwise). */
es_status es_gguf_writer_set_raw(es_gguf_writer *w, const char *key, es_gguf_vtype type,
                                 const void *value, size_t n);
/* Writes the file atomically (a temporary file renamed over path); ES_ERR_IO naming
 * the path. */
es_status es_gguf_writer_write(const es_gguf_writer *w, const char *path);
/* Builds the same bytes in memory: *out (malloc'ed, the caller frees it) of *size bytes. */
es_status es_gguf_writer_write_memory(const es_gguf_writer *w, uint8_t **out, size_t *size);

/* ------------------------------------------------------------------------- */
/* Model (src/model/model.c, src/text/model_load.c)                        */
/* ------------------------------------------------------------------------- */

typedef struct es_model es_model;

typedef struct es_model_params {
    bool use_mmap;     /* map the weights read-only and use them in place (default true) */
    bool check_finite; /* scan float weights for NaN/Inf at load (default false; slow on big models)
                        */
} es_model_params;

es_model_params es_model_default_params(void);

/* Loads a GGUF model. On success *out owns the model (free with es_model_free); the
 * file may be deleted afterwards only if use_mmap is false. Unknown architectures and
 * tensor types fail with ES_ERR_UNSUPPORTED and a message naming them. */
es_status es_model_load(const char *path, const es_model_params *params, es_model **out);
void es_model_free(es_model *model);

typedef struct es_model_info {
    const char *arch;      /* "llama", "qwen2", ... (borrowed from the model) */
    const char *name;      /* general.name or "" (borrowed) */
    int n_layer;           /* number of decoder blocks */
    int n_embd;            /* residual width d_model */
    int n_head;            /* query heads */
    int n_head_kv;         /* key/value heads */
    int head_dim;          /* per-head width of Q/K */
    int n_ff;              /* MLP hidden width */
    int n_vocab;           /* rows of the output matrix */
    int n_ctx_train;       /* context length the model was trained for */
    uint64_t n_params;     /* total number of weight elements */
    uint64_t weight_bytes; /* bytes of all weight tensors in the file */
    int head_dim_v;        /* per-head width of V (differs from head_dim with latent attention) */
    int n_expert;          /* routed experts per layer, 0 for a dense FFN */
    int n_expert_used;     /* experts each token is routed to (top-k) */
    int n_ff_exp;          /* hidden width of one expert */
    int q_lora_rank;       /* latent attention: rank of the query latent (0 = none) */
    int kv_lora_rank; /* latent attention: rank of the key/value latent (0 = no latent attention) */
    int n_rot;        /* RoPE'd dims per Q/K head */
    const char *features; /* the family's specifics, e.g. "RoPE (NEOX), fused QKV, QKV bias" or
                             "ALiBi (max bias 8)" (borrowed from the model) */
    bool is_encoder;      /* an encoder family ("bert"): es_classifier, not es_context */
    int n_labels;         /* encoder: classes of the cls.output head (0: none) */
    bool has_pooler;      /* encoder: the pooler dense cls.weight is present (see es_classifier) */
} es_model_info;

/* Fills *info. Never fails for a loaded model. */
void es_model_get_info(const es_model *model, es_model_info *info);

/* The model's chat template (GGUF tokenizer.chat_template), borrowed from the model,
 * or NULL if the file has none. */
const char *es_model_chat_template(const es_model *model);

/* The model's tokenizer (borrowed; lives as long as the model), or NULL if the file
 * has no tokenizer.ggml.model. */
const struct es_vocab *es_model_vocab(const es_model *model);

/*
 * Random models: a complete GGUF model with random weights at the shape of a real
 * model, for benchmarks and tests without downloads (`emosteer random-model`). The
 * file carries the real architecture keys (llama / qwen2 / baichuan hparams), a small
 * SentencePiece-style vocabulary of the model's size ("<unk>", "<s>", "</s>", the 256
 * byte tokens "<0xNN>", then "t<i>"), the tensors under llama.cpp's names, and the
 * tensor types of a llama-quantize-like mix:
 *
 *   f16     every matrix F16
 *   q8_0    every matrix Q8_0
 *   q4_0    matrices Q4_0; output (or tied token_embd) Q6_K
 *   q4_k_m  matrices Q4_K; attn_v and ffn_down Q6_K in the "more bits" layers
 *           (first and last eighth, and every third layer between); output Q6_K
 *   q5_k_m  as q4_k_m with Q5_K in place of Q4_K
 *   q6_k    every matrix Q6_K
 *
 * A K-quant needs rows that are a multiple of 256; other rows fall back as in
 * llama-quantize: Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0. Norm weights, biases and
 * rope factors are F32. Values: matrices and biases ~ N(0, 0.02^2) (a sum of four
 * uniforms), norm weights 1 + N(0, 0.02^2), quantized with our own quantizers. The
 * output depends only on (like, mix, seed), not on the number of threads. The whole
 * file is held in memory until it is written (about the file's size, plus one tensor).
 */
typedef struct es_random_model_params {
    const char *like; /* "qwen2.5-0.5b", "llama-3.2-1b" or "demo-16m" (borrowed) */
    const char *mix;  /* "f16", "q8_0", "q4_0", "q4_k_m", "q5_k_m" or "q6_k" (borrowed) */
    uint64_t seed;
    int n_threads; /* >= 1 */
    /* Called after each tensor is generated (may be NULL); name and ne are borrowed for
     * the call. */
    void (*progress)(void *ud, int index, int count, const char *name, es_type type,
                     const int64_t *ne);
    void *progress_ud;
} es_random_model_params;

/* like "demo-16m", mix "q8_0", seed 1, one thread, no progress. */
es_random_model_params es_random_model_default_params(void);

/* The names accepted for like and mix, NULL-terminated (static). */
extern const char *const es_random_model_likes[];
extern const char *const es_random_model_mixes[];

/* Generates the model and writes it to path (atomically). On success *n_params (if
 * not NULL) gets the parameter count. Fails with ES_ERR_INVALID_ARG for an unknown
 * like/mix, ES_ERR_NOMEM or ES_ERR_IO otherwise. */
es_status es_random_model_write(const es_random_model_params *params, const char *path,
                                uint64_t *n_params);

/* ------------------------------------------------------------------------- */
/* Context: KV cache and scratch for up to n_seq_max independent sequences */
/* ------------------------------------------------------------------------- */

typedef struct es_context es_context;

/* Element type of the KV cache. ES_KV_F32 (default) keeps keys and values exactly and
 * computes attention in f32. ES_KV_F16 stores them as f16 (half the memory and memory
 * traffic) and computes attention the way llama.cpp's CPU flash attention does: queries
 * rounded to f16 for the key dot products (f32 sums), online softmax in f32, values
 * accumulated in f16. Logits then move by about 1e-3 relative to ES_KV_F32. */
typedef enum es_kv_type { ES_KV_F32 = 0, ES_KV_F16 = 1 } es_kv_type;

/* Summation order of quantized matrix products. Every quantized weight type follows the
 * order of llama.cpp's x86 AVX2 kernels (src/kernels/kernels.h) on every path except one:
 * ES_NUMERICS_FAST (default) lets Q8_0 prompts on CPUs with AVX-VNNI or AVX-512 VNNI take
 * a tile that sums in its own order (about 1.7x faster there; logits differ from
 * llama.cpp's by float rounding, up to 0.12 on the quantized fixtures);
 * ES_NUMERICS_LLAMACPP keeps llama.cpp's order there too. With ES_KV_F16 as well, the
 * logits of quantized models are llama.cpp's to the last bit or two (tests/test_quant_fixtures.c).
 */
typedef enum es_numerics { ES_NUMERICS_FAST = 0, ES_NUMERICS_LLAMACPP = 1 } es_numerics;

typedef struct es_context_params {
    int n_ctx;            /* positions held per sequence; 0 (default): the model's n_ctx_train, at
                             most ES_CTX_DEFAULT_MAX. A larger value is honoured, not clamped:
                             positions past n_ctx_train are extrapolated and quality degrades */
    int n_seq_max;        /* independent sequences (default 1) */
    int n_batch;          /* max tokens in one es_decode call (default 512) */
    int n_threads;        /* worker threads (default: es_cpu_count(), at most 8) */
    es_kv_type kv_type;   /* element type of the KV cache (default ES_KV_F32) */
    es_numerics numerics; /* summation order (default ES_NUMERICS_FAST) */
    bool batch_invariant; /* default false. true: a token's numbers (logits, KV cache) do not
                             depend on the other tokens of its batch: every matrix product
                             takes the per-row path a one-token batch takes, whatever the
                             batch holds (attention and the rest are per token already), so a
                             sequence decoded alone, in prompt chunks of any size, or beside
                             other sequences gives bit-identical logits. `serve` uses it;
                             costs prompt speed (no tiled products) */
} es_context_params;

/* The most positions a default context (n_ctx = 0) holds, whatever the model was
 * trained for: a 128k-context model does not get a 128k KV cache unasked. */
#define ES_CTX_DEFAULT_MAX 4096

es_context_params es_context_default_params(void);

/* "f32" or "f16"; es_kv_type_parse returns ES_ERR_INVALID_ARG naming a bad value. */
const char *es_kv_type_name(es_kv_type t);
es_status es_kv_type_parse(const char *name, es_kv_type *out);
/* "fast" or "llamacpp"; es_numerics_parse returns ES_ERR_INVALID_ARG naming a bad value. */
const char *es_numerics_name(es_numerics n);
es_status es_numerics_parse(const char *name, es_numerics *out);

/* Creates a context over `model`, which must outlive it. *out is owned by the caller. */
es_status es_context_create(es_model *model, const es_context_params *params, es_context **out);
void es_context_free(es_context *ctx);

/* Positions per sequence the context holds (n_ctx after the default is resolved);
 * 0 for NULL. */
int es_context_n_ctx(const es_context *ctx);

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

/* Runs the model on a batch and appends to the KV cache. Logits that come out NaN or
 * Inf (broken weights, or steering vectors so large the hidden states overflow) fail
 * with ES_ERR_FORMAT naming the batch token, its position and sequence; the batch is
 * then not appended and no logits are readable. */
es_status es_decode(es_context *ctx, const es_batch *batch);

/* Logits of the i-th token of the last batch (float[n_vocab]), or NULL if that token
 * did not ask for logits. Valid until the next es_decode or es_context_free. */
const float *es_get_logits(const es_context *ctx, int i);

/* ------------------------------------------------------------------------- */
/* Hook points: read or change activations inside the forward pass         */
/* ------------------------------------------------------------------------- */

typedef enum es_hook_point {
    ES_HOOK_AUTO = -1,     /* only where a field says so (es_steer_item.hook): the hook the
                              emotion vectors were measured at */
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
/* Vocabulary and tokenizer (src/text/tokenizer*.c)                        */
/* ------------------------------------------------------------------------- */

/* A vocabulary and its tokenizer, read from GGUF metadata (tokenizer.ggml.*):
 * "llama" = SentencePiece (score-ordered pair merges, byte fallback, dummy prefix)
 * and "gpt2" = byte-level BPE (pre-tokenizer regex chosen by tokenizer.ggml.pre:
 * "gpt-2", "llama-bpe"/"llama3", "qwen2"; any other value falls back to the GPT-2
 * pattern). Immutable after load: any number of threads may use one vocab at once. */
typedef struct es_vocab es_vocab;

/* Loads the vocabulary of any GGUF file with tokenizer metadata (a vocab-only file
 * or a full model; the weights are not read). On success *out owns everything it
 * needs (the file may be deleted); free with es_vocab_free. A file without
 * tokenizer.ggml.model fails with ES_ERR_NOT_FOUND, an unknown model with
 * ES_ERR_UNSUPPORTED, inconsistent arrays with ES_ERR_FORMAT. */
es_status es_vocab_load(const char *path, es_vocab **out);
void es_vocab_free(es_vocab *v);

int32_t es_vocab_n_tokens(const es_vocab *v);
/* Special ids, or -1 when the vocabulary has none. eot is tokenizer.ggml.eot_token_id
 * or else the first of <|eot_id|>, <|im_end|>, <|end|>, <end_of_turn>, <|endoftext|>
 * present in the vocabulary. */
int32_t es_vocab_bos(const es_vocab *v);
int32_t es_vocab_eos(const es_vocab *v);
int32_t es_vocab_eot(const es_vocab *v);
int32_t es_vocab_unk(const es_vocab *v);
/* Whether es_tokenize with add_special prepends BOS / appends EOS. */
bool es_vocab_add_bos(const es_vocab *v);
bool es_vocab_add_eos(const es_vocab *v);
/* End of generation: eos, eot, eom and the turn-ending control tokens (<|im_end|>,
 * <|eot_id|>, <|eom_id|>, <end_of_turn>, <|end|>, <|endoftext|>). False for ids out of range. */
bool es_vocab_is_eog(const es_vocab *v, int32_t tok);
/* A control token (type CONTROL, or a turn-ending token above): hidden when text is
 * rendered without specials. False for ids out of range. */
bool es_vocab_is_control(const es_vocab *v, int32_t tok);
/* The stored text of a token exactly as in the vocabulary ("▁Hello", "Ġworld",
 * "<|im_end|>"), NUL-terminated and borrowed from v; NULL for ids out of range. */
const char *es_vocab_token_text(const es_vocab *v, int32_t tok);
/* The id of the token whose stored text is exactly `text`, or -1. */
int32_t es_vocab_find_token(const es_vocab *v, const char *text);

/* Tokenizes text[0..len) (any bytes; NUL is an ordinary byte). add_special adds BOS
 * and/or EOS as the vocabulary asks (es_vocab_add_bos/_eos). parse_special turns
 * control tokens written literally in the text ("<|im_start|>") into their ids,
 * leftmost-longest first; without it they are tokenized as plain text. User-defined
 * tokens (type USER_DEFINED) are part of the vocabulary proper and always matched,
 * as SentencePiece and Hugging Face tokenizers do. Writes up to cap ids to out and
 * the count to *n_out; if cap is too small, returns ES_ERR_RANGE with *n_out set to
 * the number needed (out is then not written). */
es_status es_tokenize(const es_vocab *v, const char *text, size_t len, bool add_special,
                      bool parse_special, int32_t *out, int32_t cap, int32_t *n_out);

/* es_tokenize into a malloc'ed array sized to fit (*toks, free with free()); text may
 * be NULL when len is 0. Fails like es_tokenize, and with ES_ERR_INVALID_ARG for a
 * text too long to index with int32. */
es_status es_tokenize_alloc(const es_vocab *v, const char *text, size_t len, bool add_special,
                            bool parse_special, int32_t **toks, int *n_toks);

/* The bytes one token stands for: SentencePiece "▁" becomes a space, byte tokens
 * <0xNN> the byte, byte-level BPE pieces are decoded to their bytes. Control tokens
 * give their text with render_special and nothing without. No NUL is written.
 * Returns the number of bytes written, or -(bytes needed) if cap is too small, or 0
 * for ids out of range. A piece may be part of a UTF-8 character. */
int32_t es_token_to_piece(const es_vocab *v, int32_t tok, char *buf, int32_t cap,
                          bool render_special);

/* Text of a token sequence: the concatenated pieces, with control tokens dropped when
 * remove_special (rendered as their text otherwise). For SentencePiece vocabularies
 * with a dummy prefix, the one space es_tokenize put in front of the text (at the
 * start and after each special token) is removed again, so text without special
 * tokens round-trips. *out is malloc'ed, NUL-terminated (free with free()), *len its
 * length without the NUL. Ids out of range fail with ES_ERR_RANGE. */
es_status es_detokenize(const es_vocab *v, const int32_t *toks, int32_t n, bool remove_special,
                        char **out, size_t *len);

/* Streaming detokenizer for generated tokens: pieces are pushed one token at a time
 * and only complete UTF-8 characters come out, so a character split across tokens is
 * never printed in halves. No dummy-prefix space is removed. The vocab is borrowed and
 * must outlive the stream; *out is owned by the caller (es_detok_stream_free). */
typedef struct es_detok_stream es_detok_stream;
es_status es_detok_stream_create(const es_vocab *v, bool render_special, es_detok_stream **out);
void es_detok_stream_free(es_detok_stream *s);
/* Appends token tok and copies to buf (at most cap bytes, never half a character)
 * the bytes now complete; returns their count. Bytes that did not fit stay queued
 * for the next push or flush. Ids out of range add nothing. The output is always
 * valid UTF-8: a byte that cannot begin a valid character (a byte-fallback token
 * that forms no valid sequence) comes out as U+FFFD. */
size_t es_detok_stream_push(es_detok_stream *s, int32_t tok, char *buf, size_t cap);
/* Copies out what is still queued, an incomplete character at the end as U+FFFD per
 * byte; returns the count; call until it returns 0. The stream can then be reused. */
size_t es_detok_stream_flush(es_detok_stream *s, char *buf, size_t cap);

/* ------------------------------------------------------------------------- */
/* Chat templates (src/text/chat.c)                                        */
/* ------------------------------------------------------------------------- */

/* A chat format: how a conversation becomes the prompt text an instruction-tuned
 * model was trained on. We do not run Jinja: es_chat_detect recognises a GGUF's
 * tokenizer.chat_template by distinctive markers, and es_chat_render writes the text
 * with our own code, byte for byte what Hugging Face's apply_chat_template gives for
 * conversations of system / user / assistant messages (no tools, no images). */
typedef enum es_chat_format {
    ES_CHAT_AUTO = -1, /* only where a field says so (es_judge_params.chat_format): the model's
                          own template as es_chat_detect finds it */
    ES_CHAT_NONE = 0,  /* no template (base models): the contents joined by "\n" */
    ES_CHAT_UNKNOWN,   /* a template we do not reproduce exactly; es_chat_render refuses it */
    ES_CHAT_LLAMA3,    /* Llama 3.1/3.2/3.3: system header with "Cutting Knowledge Date:
                          December 2023\nToday Date: 26 Jul 2024\n\n" (the template's own
                          default date; Llama 3.2+ under HF would print today's date) */
    ES_CHAT_LLAMA3_0,  /* Llama 3.0: the same headers without the date block */
    ES_CHAT_CHATML,    /* Qwen 2.5 ChatML; default system prompt "You are Qwen, created by
                          Alibaba Cloud. You are a helpful assistant." */
    ES_CHAT_QWEN3,     /* Qwen 3 ChatML: no default system; <think> blocks of assistant turns
                          before the last user message are dropped */
    ES_CHAT_GEMMA,     /* Gemma 1/2/3: "model" role; a system message is prepended to the first
                          user turn followed by "\n\n" as Gemma 3 does (Gemma 2's template
                          would refuse it); contents are whitespace-trimmed */
    ES_CHAT_PHI3,      /* Phi 3.5: <|system|>/<|user|>/<|assistant|> ... <|end|>; empty system
                          messages are skipped; without a generation prompt ends with EOS */
    ES_CHAT_MISTRAL,   /* Mistral Nemo / v3-tekken "[INST]...[/INST]" without spaces; the
                          system message is prepended to the LAST user message */
    ES_CHAT_LLAMA2,    /* Llama 2 chat: "<s>[INST] <<SYS>>\n...\n<</SYS>>\n\n... [/INST]" */
    ES_CHAT_MINICPM,   /* MiniCPM 5: BOS + ChatML with Qwen 3-style <think> handling */
    ES_CHAT_VICUNA, /* Vicuna v1.1 (FastChat): "<s>SYSTEM USER: ... ASSISTANT: ...</s>USER: ..." */
    ES_CHAT_BAICHUAN2, /* Baichuan 2 chat: system text, then <reserved_106> user / <reserved_107>
                          assistant, no separators */
    ES_CHAT_QWEN,      /* Qwen (v1) chat: ChatML, default system "You are a helpful assistant." */
    ES_CHAT_YI,        /* Yi-6B/34B-Chat: plain ChatML turns, no default system (also any
                          template that is exactly the generic ChatML loop) */
    ES_CHAT_MINICPM3,  /* MiniCPM3-4B: ChatML, a first system message only when non-empty,
                          no default system, no BOS in the text */
    ES_CHAT_FORMAT_COUNT
} es_chat_format;

/* One message. Roles are "system", "user" or "assistant"; both strings are borrowed. */
typedef struct es_chat_msg {
    const char *role;
    const char *content;
} es_chat_msg;

/* Recognises a chat template (the GGUF key tokenizer.chat_template; the caller reads it
 * from the model and passes it in). NULL or blank text gives ES_CHAT_NONE; a template
 * we cannot reproduce byte-exactly gives ES_CHAT_UNKNOWN, and the caller should then
 * fall back to plain text (ES_CHAT_NONE) or let the user name a format. */
es_chat_format es_chat_detect(const char *template_text);

/* For --chat-template NAME: "none", "llama3", "llama3.0", "chatml", "qwen3", "gemma",
 * "phi3", "mistral", "llama2", "minicpm", "vicuna", "baichuan2", "qwen", "yi", "minicpm3" (aliases:
 * "llama3.1", "qwen2.5", "gemma2", "gemma3", "phi3.5", "mistral-nemo"). Unknown names fail with
 * ES_ERR_INVALID_ARG. */
es_status es_chat_parse_name(const char *name, es_chat_format *out);
/* The canonical name of a format ("unknown" for ES_CHAT_UNKNOWN and out-of-range values). */
const char *es_chat_format_name(es_chat_format fmt);

/* The model's chat format: es_chat_detect of its tokenizer.chat_template; when the file
 * has no template (or a blank one), a fallback by general.architecture for the chat
 * models whose GGUFs usually carry none:
 *   qwen -> ES_CHAT_QWEN, baichuan -> ES_CHAT_BAICHUAN2, minicpm3 -> ES_CHAT_MINICPM3,
 *   qwen3, qwen3moe -> ES_CHAT_QWEN3
 * and ES_CHAT_NONE for other architectures. A template that is present but not one we
 * reproduce still gives ES_CHAT_UNKNOWN (never overridden by the architecture). */
es_chat_format es_chat_detect_model(const es_model *model);

/* Whether the rendered text starts with the BOS token written out ("<|begin_of_text|>",
 * "<bos>", "<s>"). The text es_chat_render gives is the whole prompt as Hugging Face
 * writes it: tokenize it with parse_special = true, and for every format but
 * ES_CHAT_NONE WITHOUT letting the tokenizer add a BOS (add_special = false) — that is
 * what apply_chat_template(tokenize=True) does. For ES_CHAT_NONE follow the vocabulary. */
bool es_chat_includes_bos(es_chat_format fmt);

/* The text that closes an assistant turn ("<|eot_id|>", "<|im_end|>", "<end_of_turn>",
 * "<|end|>", "</s>"), for use as a stop string; "" for NONE and UNKNOWN. Static. */
const char *es_chat_end_of_turn(es_chat_format fmt);

/* Qwen 3 / MiniCPM `enable_thinking`: DEFAULT does not pass it (the templates then let
 * the model think); OFF appends an empty "<think>\n\n</think>\n\n" to the generation
 * prompt; ON opens "<think>\n" for MiniCPM and changes nothing for Qwen 3. */
typedef enum es_chat_thinking {
    ES_CHAT_THINK_DEFAULT = 0,
    ES_CHAT_THINK_OFF = 1,
    ES_CHAT_THINK_ON = 2
} es_chat_thinking;

typedef struct es_chat_options {
    bool add_generation_prompt; /* end with the opening of an assistant turn (default true) */
    es_chat_thinking thinking;  /* default ES_CHAT_THINK_DEFAULT; ignored by other formats */
    const char *bos_text;       /* the model's BOS token text, or NULL for the family's usual
                                   one ("<|begin_of_text|>", "<bos>", "<s>") (borrowed) */
    const char *eos_text;       /* the model's EOS token text, or NULL for the family's usual
                                   one ("</s>" Mistral/Llama 2, "<|endoftext|>" Phi 3) */
} es_chat_options;

es_chat_options es_chat_default_options(void);

/* Renders n >= 1 messages as prompt text. *out is malloc'ed and NUL-terminated (free
 * with free()). Fails with ES_ERR_INVALID_ARG for a NULL role or content, a role other
 * than system/user/assistant, or an order the template itself refuses (Gemma, Mistral
 * and Llama 2 want user/assistant alternating after an optional first system message;
 * Mistral refuses a later system message), and with ES_ERR_UNSUPPORTED for
 * ES_CHAT_UNKNOWN. Contents are bytes; NUL ends them. */
es_status es_chat_render(es_chat_format fmt, const es_chat_msg *msgs, size_t n,
                         bool add_generation_prompt, char **out);
es_status es_chat_render_ex(es_chat_format fmt, const es_chat_msg *msgs, size_t n,
                            const es_chat_options *opt, char **out);

/* ------------------------------------------------------------------------- */
/* Stop strings (src/text/stop.c)                                          */
/* ------------------------------------------------------------------------- */

/* Stop strings in streamed text. Text is fed as it is generated; what comes back is
 * safe to print: everything before the first stop string, with any tail that could
 * still become a stop string held back until it is decided. */
typedef struct es_stop es_stop;

/* Copies n stop strings (empty ones are ignored). *out is owned by the caller
 * (es_stop_free). */
es_status es_stop_create(const char *const *stops, size_t n, es_stop **out);
void es_stop_free(es_stop *st);
/* Feeds text[0..len). Sets *emit and *emit_len to the text that may now be printed
 * (borrowed from st, valid until the next call on st) and *stopped to whether a stop
 * string has been found; then *emit ends right before it and later feeds emit nothing.
 * Fails only with ES_ERR_NOMEM or ES_ERR_INVALID_ARG. */
es_status es_stop_feed(es_stop *st, const char *text, size_t len, const char **emit,
                       size_t *emit_len, bool *stopped);
/* At the end of generation: the held-back tail (it never became a stop string). */
void es_stop_flush(es_stop *st, const char **emit, size_t *emit_len);
/* Index of the stop string found (in the order given to es_stop_create), or -1. */
int es_stop_which(const es_stop *st);
/* Forgets held text and a found stop, for the next generation. */
void es_stop_reset(es_stop *st);

/* ------------------------------------------------------------------------- */
/* Sampling (src/text/sampler.c)                                           */
/* ------------------------------------------------------------------------- */

/* Token sampling from logits. Per call: penalties from the accepted history, then
 * temp <= 0 -> greedy argmax (ties -> lowest id); otherwise top-k, top-p and min-p
 * (all three judged on the penalised logits at temperature 1, as llama.cpp does),
 * then a softmax at temperature `temp` over what is left and a draw from the sampler's
 * own xoshiro256** generator. A sampler is used by one thread at a time. */
typedef struct es_sampler es_sampler;

typedef struct es_sampler_params {
    float temp;  /* default 0.8; <= 0 means greedy */
    int top_k;   /* default 40; 0 = off */
    float top_p; /* default 0.95; keep the smallest most-likely set with mass >= top_p; 1 = off */
    float min_p; /* default 0.05; keep tokens with p >= min_p * p_max; 0 = off */
    float
        repeat_penalty; /* default 1.0 (off); seen tokens: positive logits /= it, negative *= it */
    float frequency_penalty; /* default 0; logit -= count * it */
    float presence_penalty;  /* default 0; logit -= it once a token was seen */
    int penalty_last_n; /* default 64; how many accepted tokens the penalties look at; 0 = none */
    uint64_t seed;      /* default 42 (ES_SAMPLER_DEFAULT_SEED) */
} es_sampler_params;

#define ES_SAMPLER_DEFAULT_SEED 42u

es_sampler_params es_sampler_default_params(void);

/* Validates params (NaN or infinite values, top_k < 0, top_p or min_p outside [0,1],
 * repeat_penalty <= 0, penalty_last_n < 0, n_vocab < 1 fail with ES_ERR_INVALID_ARG
 * naming the field). *out is owned by the caller (es_sampler_free). */
es_status es_sampler_create(const es_sampler_params *p, int32_t n_vocab, es_sampler **out);
void es_sampler_free(es_sampler *s);

/* Picks a token from logits[n_vocab] (not modified). Returns the token id, or a
 * negative es_status: ES_ERR_FORMAT if a logit is NaN or +inf or none is finite
 * (-inf marks a forbidden token), ES_ERR_INVALID_ARG for NULL arguments. It does not
 * add the token to the history: call es_sampler_accept for the token kept. */
int32_t es_sampler_sample(es_sampler *s, const float *logits);

/* Applies the penalties of the current history to logits[n_vocab] in place (the first
 * step of es_sampler_sample; useful to show what the sampler sees). */
void es_sampler_apply_penalties(const es_sampler *s, float *logits);

/* Adds a token to the penalty history (ids outside [0, n_vocab) are ignored). */
void es_sampler_accept(es_sampler *s, int32_t tok);
/* Clears the history and restarts the generator from its seed, so that the same
 * logits give the same draws again. */
void es_sampler_reset(es_sampler *s);

/* ------------------------------------------------------------------------- */
/* Generation (src/text/generate.c)                                        */
/* ------------------------------------------------------------------------- */

/* Generates continuations of several prompts at once, one sequence each, in shared
 * batches: the prompts are decoded together, then every step decodes one new token
 * of each unfinished sequence in one es_decode call. Each sequence has its own
 * sampler (seed = params.sampling.seed + index), stop strings and steering (set on
 * the context beforehand with es_context_set_steering for seq = first_seq + index). */
typedef struct es_gen_params {
    int n_predict;              /* max new tokens per sequence (default 128) */
    es_sampler_params sampling; /* default es_sampler_default_params() */
    const char *const *stops;   /* stop strings (borrowed), or NULL */
    size_t n_stops;
    bool stop_at_eog;    /* stop at end-of-generation tokens (default true) */
    int first_seq;       /* sequence id of prompt 0 (default 0) */
    const int *n_cached; /* [n] or NULL: the first n_cached[i] tokens of prompt i are
                            already in its sequence's KV cache (the caller guarantees
                            they match) and are not decoded again; must be < n_prompt[i].
                            NULL (default): every sequence is cleared first. */
} es_gen_params;

es_gen_params es_gen_default_params(void);

typedef enum es_gen_stop {
    ES_GEN_STOP_LENGTH = 0,  /* n_predict tokens were generated */
    ES_GEN_STOP_EOG = 1,     /* an end-of-generation token */
    ES_GEN_STOP_STRING = 2,  /* a stop string (not included in the text) */
    ES_GEN_STOP_CONTEXT = 3, /* the context is full */
    ES_GEN_STOP_CALLER = 4   /* the callback asked to stop */
} es_gen_stop;

typedef struct es_gen_output {
    char *text; /* generated text (malloc'ed, NUL-terminated; owned by the caller) */
    size_t text_len;
    int32_t *tokens; /* [n_tokens] generated token ids (malloc'ed), EOG token excluded */
    int n_tokens;
    es_gen_stop stop;
} es_gen_output;

/* Called with each piece of text as soon as it is safe to show (complete UTF-8, not
 * part of a possible stop string). Return false to stop that sequence. */
typedef bool (*es_gen_text_fn)(void *user, int index, const char *text, size_t len);

/* Runs generation for n prompts (prompts[i] has n_prompt[i] tokens, decoded from
 * position 0 of sequence first_seq + i after clearing it). out[i] receives each
 * result (free with es_gen_output_free). The context needs n_seq_max >= first_seq +
 * n and n_batch >= 1; prompts longer than n_batch are decoded in several batches.
 * on_text may be NULL. */
es_status es_generate(es_context *ctx, const es_vocab *vocab, const int32_t *const *prompts,
                      const int *n_prompt, int n, const es_gen_params *params,
                      es_gen_text_fn on_text, void *user, es_gen_output *out);
void es_gen_output_free(es_gen_output *out);

/* One sequence's generation state, for callers that run their own decode loop (the
 * server): es_generate is this plus the batching. Per step the caller decodes the
 * sequence's pending token (or, first, its prompt) and hands the logits to
 * es_gen_seq_take, which samples, stops (end of generation, stop string, n_predict,
 * context) and streams the new text through on_text. */
typedef struct es_gen_seq es_gen_seq;

/* Uses params' n_predict, sampling (its seed as given), stops (copied) and stop_at_eog;
 * first_seq and n_cached are the caller's business. *out: es_gen_seq_free. */
es_status es_gen_seq_create(const es_vocab *vocab, const es_gen_params *params, es_gen_seq **out);
void es_gen_seq_free(es_gen_seq *s);
/* Samples the next token from logits[n_vocab] (the output of the sequence's last decoded
 * token). kv_len is the number of positions the sequence then has in the cache, n_ctx
 * what the context holds; index is passed to on_text (may be NULL). */
es_status es_gen_seq_take(es_gen_seq *s, const float *logits, int kv_len, int n_ctx,
                          es_gen_text_fn on_text, void *user, int index);
/* The token to decode next, or -1 once the sequence has ended. */
int32_t es_gen_seq_pending(const es_gen_seq *s);
/* Whether the sequence has ended, and why (*why may be NULL). */
bool es_gen_seq_done(const es_gen_seq *s, es_gen_stop *why);
/* Ends the sequence from outside (a cancelled request: ES_GEN_STOP_CALLER). */
void es_gen_seq_stop(es_gen_seq *s, es_gen_stop why);
/* After the end: passes on what the detokenizer and the stop filter still hold. */
es_status es_gen_seq_finish(es_gen_seq *s, es_gen_text_fn on_text, void *user, int index);
/* The generated tokens so far (end-of-generation token excluded; borrowed). */
const int32_t *es_gen_seq_tokens(const es_gen_seq *s, int *n);

/* ------------------------------------------------------------------------- */
/* Emotion vectors (src/steer/ev_set.c, ev_file.c)                           */
/* ------------------------------------------------------------------------- */

/*
 * Emotion-vector sets. An es_ev_set holds named vectors ("emotions"):
 * for each emotion one float[n_embd] per layer, for some layers (a layer may be
 * absent), all measured at one hook point, plus metadata saying how they were made.
 * Layers are 0-based decoder blocks, as in the hook callbacks: at
 * ES_HOOK_BLOCK_OUT, layer i is the residual stream after block i.
 * Vectors never contain NaN or Inf: every way in checks it.
 * File formats (our GGUF, llama.cpp control vectors, the seed paper's JSON) are
 * specified in src/steer/ev.h.
 */
typedef struct es_ev_set es_ev_set;

#define ES_EV_MAX_LAYER 4096 /* layers are in [0, ES_EV_MAX_LAYER) */
#define ES_EV_MAX_NAME 48    /* emotion names: 1..48 chars of [A-Za-z0-9_-] */

typedef struct es_ev_meta {
    const char *method;       /* how the vectors were made, e.g. "mean_diff" ("" = unknown) */
    const char *source_model; /* the model they were measured on ("" = unknown) */
    const char *query_set;    /* the queries used ("" = unknown) */
    const char *token_policy; /* which tokens were averaged, e.g. "response" ("" = unknown) */
    const char *note;         /* free text, e.g. a forced-export warning ("") */
    int n_samples;            /* prompts per condition (0 = unknown) */
} es_ev_meta;

/* Creates an empty set of width n_embd measured at hook hp. *out is owned by the
 * caller and freed with es_ev_set_free. */
es_status es_ev_set_create(int n_embd, es_hook_point hp, es_ev_set **out);
void es_ev_set_free(es_ev_set *set);

/* Copies v (float[n_embd]) as the vector of `emotion` at `layer`, adding the emotion
 * if new and replacing an existing vector. Fails with ES_ERR_INVALID_ARG on a bad
 * name or layer and ES_ERR_FORMAT on a NaN/Inf value (the message names its index). */
es_status es_ev_set_put(es_ev_set *set, const char *emotion, int layer, const float *v);

int es_ev_set_n_embd(const es_ev_set *set);
es_hook_point es_ev_set_hook(const es_ev_set *set);
/* One past the highest layer any emotion has (0 for an empty set). */
int es_ev_set_n_layer(const es_ev_set *set);
int es_ev_set_n_emotions(const es_ev_set *set);
/* Name of the i-th emotion (insertion order), or NULL out of range. Borrowed. */
const char *es_ev_set_emotion(const es_ev_set *set, int i);
/* Index of an emotion, or -1. */
int es_ev_set_find(const es_ev_set *set, const char *emotion);
/* The vector (float[n_embd]) of an emotion at a layer, or NULL if absent. Borrowed:
 * valid until the set is changed or freed. */
const float *es_ev_set_get(const es_ev_set *set, const char *emotion, int layer);
/* Renames an emotion (ES_ERR_NOT_FOUND if absent, ES_ERR_INVALID_ARG if the new name
 * is bad or taken). */
es_status es_ev_set_rename(es_ev_set *set, const char *emotion, const char *new_name);
/* Copies every emotion of src into dst (same n_embd and hook, else
 * ES_ERR_INVALID_ARG); an emotion in both takes src's vectors. Metadata of dst stays. */
es_status es_ev_set_merge(es_ev_set *dst, const es_ev_set *src);

/* Metadata. get: the strings are borrowed from the set (never NULL). set: copies
 * every string; NULL fields become "". */
void es_ev_set_get_meta(const es_ev_set *set, es_ev_meta *meta);
es_status es_ev_set_set_meta(es_ev_set *set, const es_ev_meta *meta);
/* Mean L2 norm of the activations the vectors of `layer` were measured on (at the
 * set's hook), to express steering strengths relative to it. 0 = unknown. */
es_status es_ev_set_set_act_norm(es_ev_set *set, int layer, float norm);
float es_ev_set_act_norm(const es_ev_set *set, int layer);
/* Recommended steering layers (file key emosteer.default_layers): what a caller steers
 * when the user names no layers (the CLI's --layers default). set: copies layers[n],
 * each in [0, ES_EV_MAX_LAYER) and strictly increasing (ES_ERR_INVALID_ARG naming the
 * value); n = 0 removes them. get: returns the count (0 = none recorded: steer every
 * layer) and sets *layers (may be NULL) to the borrowed array, valid until the set is
 * changed or freed. es_ev_set_merge keeps dst's. */
es_status es_ev_set_set_default_layers(es_ev_set *set, const int32_t *layers, int n);
int es_ev_set_default_layers(const es_ev_set *set, const int32_t **layers);
/* The layers `emosteer extract` records for a model of n_layer blocks: the blocks from
 * n_layer/4 to 5*n_layer/8 - 1 (at least one; 8 blocks -> 2, 3, 4), where steering the
 * demo model raised the target emotion without breaking the text
 * (docs/steering-demo.md). Writes min(count, cap) layers to out (may be NULL) and
 * returns the count (0 when n_layer < 1). */
int es_ev_recommended_layers(int n_layer, int32_t *out, int cap);

/* Loads emotion vectors, detecting the format from the file's first bytes:
 *   - emosteer GGUF (has key emosteer.emotions): everything as saved;
 *   - llama.cpp / repeng control-vector GGUF (tensors direction.N, N >= 1): one
 *     emotion at hook block_out, layer N (llama.cpp adds direction.N to the output
 *     of 0-based block N);
 *   - the seed paper's JSON ({"0": [[floats]], "1": ...}): one emotion at hook
 *     attn_out, layer = key; numbers are parsed as double and rounded to float.
 * Single-vector formats carry no emotion name: `name` is used, or when NULL the
 * file name's last "_"-separated word without extension ("qwen2.5_joy.json" ->
 * "joy"; a control vector exported by emosteer remembers its name). `name` is
 * ignored for emosteer GGUF, which names its emotions.
 * *out is owned by the caller. Malformed input fails with ES_ERR_FORMAT naming the
 * problem (layer, index, key). */
es_status es_ev_set_load(const char *path, const char *name, es_ev_set **out);
/* Saves the set as emosteer GGUF (src/steer/ev.h). A set with one emotion at block_out
 * and no layer-0 vector is stored as llama.cpp's direction.N tensors (N >= 1), so
 * llama.cpp also reads the file as a control vector. */
es_status es_ev_set_save(const es_ev_set *set, const char *path);
/* Writes `scale` times one emotion as a llama.cpp control vector (direction.N for
 * every layer N >= 1 the emotion has). Only block_out vectors mean the same thing in
 * llama.cpp: for attn_out / mlp_out vectors this fails with ES_ERR_UNSUPPORTED
 * (the hook differs), and so does a nonzero layer-0 vector (llama.cpp never steers
 * block 0), unless `force`, which writes what it can and records the difference in
 * the key emosteer.note. */
es_status es_ev_set_export_control_vector(const es_ev_set *set, const char *emotion, float scale,
                                          bool force, const char *path);

/* ------------------------------------------------------------------------- */
/* Steering (src/steer/steer.c, src/model/steer_state.c)                   */
/* ------------------------------------------------------------------------- */

/*
 * Steering sets. A steering set is a list of items, each adding
 * alpha * (an emotion's vector) at a hook point, on chosen layers and positions.
 * Emotions mix linearly: items at the same (hook, layer, positions) are summed into
 * one precomputed vector when the set is attached to a context, so steering costs
 * one vector add per steered token and layer.
 */
typedef enum es_steer_positions {
    ES_STEER_POS_ALL = 0,       /* every position */
    ES_STEER_POS_PROMPT = 1,    /* positions < the sequence's prompt length */
    ES_STEER_POS_GENERATED = 2, /* positions >= the sequence's prompt length */
    ES_STEER_POS_LAST = 3,      /* in each es_decode batch, the last token of each
                                   sequence in it (what the seed paper's code steers) */
    ES_STEER_POS_COUNT = 4
} es_steer_positions;

/* "all", "prompt", "generated", "last". */
const char *es_steer_positions_name(es_steer_positions p);
es_status es_steer_positions_parse(const char *name, es_steer_positions *out);

typedef struct es_steer_item {
    const es_ev_set *vectors; /* read by es_steer_set_add only: the vectors are copied */
    const char *emotion;      /* an emotion of `vectors` */
    float alpha;              /* scale (default 1) */
    es_hook_point hook;       /* a hook point, or ES_HOOK_AUTO (default): the hook of `vectors` */
    int layer_first;          /* inclusive layer range; -1 (default) = from the emotion's */
    int layer_last;           /*   first / to its last layer. Every layer of an explicit */
                              /*   range must exist; the default range skips absent ones */
    const int32_t *layers;    /* an explicit layer list (n_layers entries) instead of the */
    int n_layers;             /*   range, or NULL (default); borrowed during the add */
    es_steer_positions positions; /* default ES_STEER_POS_ALL */
} es_steer_item;

/* alpha 1, hook ES_HOOK_AUTO, every layer, every position, vectors/emotion NULL. */
es_steer_item es_steer_item_default(void);

typedef struct es_steer_set es_steer_set;

/* Creates an empty steering set; *out is owned by the caller (es_steer_set_free). */
es_status es_steer_set_create(es_steer_set **out);
void es_steer_set_free(es_steer_set *set);
/* Adds an item (copying the selected vectors). Fails on an unknown emotion
 * (ES_ERR_NOT_FOUND), a missing layer of an explicit selection (ES_ERR_NOT_FOUND), a
 * width different from earlier items, a bad hook/positions, or a non-finite alpha. */
es_status es_steer_set_add(es_steer_set *set, const es_steer_item *item);
/* After adding, rescale every changed activation vector to its L2 norm before the
 * addition (default off). */
void es_steer_set_preserve_norm(es_steer_set *set, bool on);
int es_steer_set_n_items(const es_steer_set *set);
/* The combined vector sum_k alpha_k v_k of the items at (hp, layer, p) into
 * out[n_embd]; ES_ERR_NOT_FOUND if no item adds there. */
es_status es_steer_set_combined(const es_steer_set *set, es_hook_point hp, int layer,
                                es_steer_positions p, float *out, int n_embd);

/* Attaches a copy of `set` to sequence `seq` of ctx, or to every sequence when
 * seq < 0; set == NULL removes steering. The set may be freed afterwards. Checks it
 * against the model: width == n_embd and every layer < n_layer (ES_ERR_INVALID_ARG
 * naming the value), and every combined vector finite (ES_ERR_FORMAT). Takes effect
 * at the next es_decode; steering runs before the es_set_hook callback. */
es_status es_context_set_steering(es_context *ctx, int seq, const es_steer_set *set);
/* Sets the prompt length of sequence `seq` (every sequence when seq < 0), which
 * splits ES_STEER_POS_PROMPT from ES_STEER_POS_GENERATED. n_prompt < 0 restores
 * the default: the prompt is the tokens of the latest batch that contained the
 * sequence's position 0 (right for "decode the whole prompt, then one token at a
 * time"; set it explicitly when the prompt is decoded in several batches). Before
 * any such batch every position counts as prompt. */
es_status es_context_set_prompt_len(es_context *ctx, int seq, int n_prompt);

/* ------------------------------------------------------------------------- */
/* Extraction (src/steer/extract.c, src/steer/extract_io.c)                */
/* ------------------------------------------------------------------------- */

/*
 * Emotion vectors from contrasting activations (Dong et al. 2025, arXiv 2502.04075).
 * A sample is one response of the model to one query under one condition (neutral,
 * or an emotion's instruction). Its feature is, per layer, the mean hook activation
 * over the response tokens (positions >= the prompt length). Per layer and emotion e,
 * a method turns the samples into a vector; "base" (every emotion pooled against
 * neutral) comes with it.
 */
typedef enum es_extract_method {
    ES_EXTRACT_MEAN_DIFF = 0, /* mean_e - mean_neutral (the paper) */
    ES_EXTRACT_CENTERED = 1,  /* mean_diff_e - (1/K) sum_k mean_diff_k: the part the K
                                 emotions do not share; "base" is that shared part */
    ES_EXTRACT_FISHER = 2,    /* (S_w + lambda I)^-1 mean_diff_e, S_w the within-class
                                 covariance of all samples (every class around its own
                                 mean), lambda = shrinkage * trace(S_w)/d (+ a tiny
                                 floor); rescaled to |mean_diff_e| */
    ES_EXTRACT_PCA = 3,       /* first principal axis u of the paired differences
                                 (emotional sample - the neutral sample of the same pair),
                                 uncentered (second moment); sign and length:
                                 (u . mean_diff_e) u */
    ES_EXTRACT_METHOD_COUNT = 4
} es_extract_method;

/* "mean_diff", "centered", "fisher", "pca". */
const char *es_extract_method_name(es_extract_method m);
/* Parses a method name; ES_ERR_INVALID_ARG naming the bad value and the valid ones. */
es_status es_extract_method_parse(const char *name, es_extract_method *out);

/* One sequence for teacher forcing: a prompt followed by its response. */
typedef struct es_extract_seq {
    const int32_t *tokens; /* [n_tokens] prompt then response (borrowed) */
    int n_tokens;
    int n_prompt; /* tokens [n_prompt, n_tokens) are the response; 0 <= n_prompt <= n_tokens */
} es_extract_seq;

/* Runs each sequence through the model (several per es_decode batch: up to the
 * context's n_seq_max sequences and n_batch tokens; no logits are computed) and
 * writes, per sequence i and layer l, the mean activation at hook hp over the
 * response tokens to mean[i][l][n_embd] and the mean L2 norm of those activations to
 * norm[i][l] (norm may be NULL), and the response length to n_resp[i] (may be NULL).
 * A sequence without response tokens is not decoded and gets zeros. The context's
 * own hook is set aside during the call and restored; its steering applies. Every
 * sequence must fit the context (n_tokens <= n_ctx: ES_ERR_RANGE). */
es_status es_extract_response_means(es_context *ctx, es_hook_point hp, const es_extract_seq *seqs,
                                    int n, float *mean, float *norm, int *n_resp);

/* The prompt tokens of one sample. With a chat format (not ES_CHAT_NONE): a system
 * message `system` (none when NULL or "") and the user message `query`, rendered with
 * the generation prompt (es_chat_render_ex with the vocabulary's BOS/EOS texts) and
 * tokenized with specials parsed and no BOS added. With ES_CHAT_NONE (base models),
 * the text is a quoted question answered in the conditioned voice:
 *     "<query>" I asked.\n"<prefix>
 * (without the prefix: "<query>" I asked.\n"), tokenized with the vocabulary's BOS
 * and no special parsing; the model continues the answer. *toks is malloc'ed (free
 * with free()). */
es_status es_extract_prompt(const es_vocab *vocab, es_chat_format fmt, const char *system,
                            const char *prefix, const char *query, int32_t **toks, int *n_toks);

/* Collects samples and computes the vectors. */
typedef struct es_extractor es_extractor;

/* Creates an empty collection for n_emotions emotions (names copied; valid EV names,
 * not "neutral" or "base", no duplicates) with features [n_layer][n_embd]. *out is
 * owned by the caller (es_extractor_free). */
es_status es_extractor_create(int n_layer, int n_embd, const char *const *emotions, int n_emotions,
                              es_extractor **out);
void es_extractor_free(es_extractor *ex);

/* Adds a sample (copying it): emotion is an index into the emotions, or -1 for
 * neutral; pair >= 0 links an emotional sample to the neutral sample(s) with the same
 * pair (the same query; used by ES_EXTRACT_PCA, several neutral samples of one pair
 * are averaged); mean[n_layer][n_embd]; norm[n_layer] mean activation norms (or
 * NULL). Non-finite values fail with ES_ERR_FORMAT. */
es_status es_extractor_add(es_extractor *ex, int emotion, int pair, const float *mean,
                           const float *norm);
/* Samples added for an emotion index (-1: neutral). */
int es_extractor_n_samples(const es_extractor *ex, int emotion);

typedef struct es_extract_params {
    es_extract_method method; /* default ES_EXTRACT_MEAN_DIFF */
    float fisher_shrinkage;   /* lambda / (trace(S_w)/d), default 0.1 */
    int pca_max_iter;         /* power iterations at most, default 1000 */
    bool add_base;            /* also compute "base" (default true) */
} es_extract_params;

es_extract_params es_extract_default_params(void);

/* Computes every emotion's vector (then "base") at every layer into a new set at
 * hook hp, with act_norm = the samples' average norm per layer and metadata method,
 * token_policy "response" and n_samples (the smallest sample count of any class);
 * the caller adds source_model and query_set. Needs >= 1 neutral sample and >= 1
 * sample per emotion (ES_ERR_INVALID_ARG naming the class); PCA needs every emotion
 * to have >= 1 paired sample. *out is owned by the caller. */
es_status es_extractor_compute(const es_extractor *ex, const es_extract_params *params,
                               es_hook_point hp, es_ev_set **out);

/* Pairs files for teacher forcing (`emosteer extract --pairs`): JSON Lines, one object
 * per line
 *     {"query": "...", "emotion": "joy", "neutral": "...", "emotional": "..."}
 * blank lines skipped, other keys ignored; every field a non-empty string, emotion a
 * valid EV name other than "neutral" and "base". */
typedef struct es_extract_pair {
    char *query, *emotion, *neutral, *emotional; /* owned */
    int line;                                    /* 1-based line in the file */
} es_extract_pair;

/* Reads a pairs file. *pairs is an array of *n (>= 1) pairs owned by the caller
 * (es_extract_pairs_free). Malformed lines fail with ES_ERR_FORMAT naming
 * "path:line"; a file without pairs fails with ES_ERR_FORMAT. */
es_status es_extract_pairs_load(const char *path, es_extract_pair **pairs, int *n);
/* Frees pairs[n] and what they own. NULL is a no-op. */
void es_extract_pairs_free(es_extract_pair *pairs, int n);

/* Tokenizes a response for teacher forcing: no BOS/EOS, no special parsing. *toks is
 * malloc'ed (free with free()); an empty response gives *n_toks 0 and a valid pointer. */
es_status es_extract_tokenize_response(const es_vocab *vocab, const char *text, int32_t **toks,
                                       int *n_toks);

/*
 * Checkpoints (OUT.ev.gguf.partial): per-sample features appended as they are computed,
 * so that an interrupted extraction resumes where it stopped. Format (little-endian):
 *   header:  "ESXCKPT1" (8 bytes), u32 n_layer, u32 n_embd, u32 settings_len,
 *            settings[settings_len] (text "key=value\n" lines identifying the model
 *            and the run), u64 FNV-1a of everything before it
 *   records: u32 0x52435845 ("EXCR"), u32 sample, u32 n_resp, u32 0,
 *            f32 mean[n_layer][n_embd], f32 norm[n_layer],
 *            u64 FNV-1a of the record before the checksum
 * A truncated or corrupt record ends the readable part: it and everything after it are
 * dropped (the file is cut there) and computed again. A checkpoint is used by one
 * thread at a time.
 */
typedef struct es_extract_ckpt es_extract_ckpt;

/* Called for each valid record read on resume; mean[n_layer][n_embd] and norm[n_layer]
 * are borrowed for the call. Returning an error stops the load (the status is returned
 * by es_extract_ckpt_open). */
typedef es_status (*es_extract_ckpt_fn)(void *user, int sample, int n_resp, const float *mean,
                                        const float *norm);

/* Opens the checkpoint at `path`. With resume and an existing file: its header must
 * match n_layer, n_embd and `settings` exactly (else ES_ERR_INVALID_ARG naming the
 * first differing line), every valid record is passed to fn, and the file is cut
 * after the last valid record; *n_loaded gets the count. Otherwise (no resume, or no
 * file yet) the file is created or emptied and a header written; *n_loaded = 0.
 * *out is owned by the caller (es_extract_ckpt_close). */
es_status es_extract_ckpt_open(const char *path, const char *settings, int n_layer, int n_embd,
                               bool resume, es_extract_ckpt_fn fn, void *user, int *n_loaded,
                               es_extract_ckpt **out);
/* Appends one record (mean[n_layer][n_embd], norm[n_layer], both copied) and flushes it. */
es_status es_extract_ckpt_append(es_extract_ckpt *c, int sample, int n_resp, const float *mean,
                                 const float *norm);
/* Closes the file and frees the handle (NULL is a no-op). The file stays on disk. */
void es_extract_ckpt_close(es_extract_ckpt *c);

/* FNV-1a 64-bit hash of n bytes, continuing from h (start with ES_FNV_INIT), as the
 * checkpoints use it. */
#define ES_FNV_INIT 0xcbf29ce484222325ull
uint64_t es_fnv1a(uint64_t h, const void *data, size_t n);

/* ------------------------------------------------------------------------- */
/* Query sets (src/steer/queries.c)                                        */
/* ------------------------------------------------------------------------- */

/*
 * Query sets for extracting and evaluating emotion vectors. Three JSON shapes are read:
 *
 * 1. EmotionQuery (Dong et al. 2025): an object of emotion -> array of query strings
 *      {"anger": ["How did you feel when ...?", ...], "joy": [...], ...}
 *
 * 2. emosteer (data/queries/emosteer-queries.json): the same object under "queries",
 *    plus conditioning instructions per emotion:
 *      {"format": "emosteer-queries/1", "description": "...", "license": "...",
 *       "queries": {"anger": [...], ..., "neutral": [...]},
 *       "instructions": {"anger": {"system": "Respond as someone who ...",
 *                                  "prefix": "I am absolutely furious ..."}, ...}}
 *    "system" is a system prompt for chat models, "prefix" a short text to put before
 *    the query for base models; either may be absent. An instruction for a name with no
 *    query list makes a list with no queries.
 *
 * 3. EmotionQuery+ (Dong et al. 2025): an array of unlabelled query strings
 *      ["How do you feel about ...?", ...]
 *    read as one list named ES_QUERY_LIST_NAME ("query"; ids "query-0042").
 *
 * Rules for all three: names are 1..63 characters of [A-Za-z0-9_-]; every list holds 1 or
 * more non-empty strings of at most 65536 bytes; duplicate JSON keys are an error;
 * repeated queries inside a list are kept (EmotionQuery has some) and counted. Every
 * failure is ES_ERR_FORMAT (or ES_ERR_UNSUPPORTED for an unknown format version) with
 * a message naming the file and the entry, e.g. "q.json: queries.joy[17]: expected a
 * non-empty string".
 *
 * Query ids are "<name>-<index>" with the 0-based index in 4 digits: "joy-0017".
 * A loaded set is read-only: any number of threads may read it.
 */
typedef struct es_query {
    char *id;   /* "joy-0017" (owned by the set) */
    char *text; /* the query (owned by the set) */
} es_query;

typedef struct es_query_list {
    char *emotion;     /* the list's name: an emotion or "neutral" (owned) */
    int n;             /* queries, >= 0 (0 only for an instruction-only entry) */
    es_query *queries; /* [n] */
    char *system;      /* conditioning system prompt, or NULL (owned) */
    char *prefix;      /* conditioning text prefix for base models, or NULL (owned) */
    int n_duplicates;  /* queries equal to an earlier one of the same list */
} es_query_list;

typedef enum es_query_format {
    ES_QUERY_FORMAT_EMOTIONQUERY = 0,
    ES_QUERY_FORMAT_EMOSTEER = 1,
    ES_QUERY_FORMAT_LIST = 2, /* a top-level array: EmotionQuery+ */
} es_query_format;

/* The name of the one list of an ES_QUERY_FORMAT_LIST set. */
#define ES_QUERY_LIST_NAME "query"

typedef struct es_query_set {
    es_query_format format;
    char *source;      /* the path or name given when loading (owned) */
    char *description; /* "description" of an emosteer file, or NULL (owned) */
    int n_lists;
    es_query_list *lists; /* [n_lists] in file order */
} es_query_set;

/* Reads and validates a query file. On success *out is owned by the caller
 * (es_query_set_free). */
es_status es_query_set_load(const char *path, es_query_set **out);

/* The same from memory; `name` is used in messages and as source. */
es_status es_query_set_parse(const char *json, size_t len, const char *name, es_query_set **out);

/* Frees the set and everything in it; every pointer into it becomes invalid. NULL is
 * a no-op. */
void es_query_set_free(es_query_set *qs);

/* The list named `emotion`, or NULL. Borrowed from qs. */
const es_query_list *es_query_set_find(const es_query_set *qs, const char *emotion);

/* Reads a prompt file: one prompt per line, exactly as written (only the line end
 * "\n" or "\r\n" removed); blank lines and lines starting with '#' are skipped.
 * On success *prompts is a malloc'ed array of *n malloc'ed strings; free with
 * es_prompts_free. An empty file or a line over 65536 bytes is ES_ERR_FORMAT. */
es_status es_prompts_load(const char *path, char ***prompts, int *n);
void es_prompts_free(char **prompts, int n);

/* ------------------------------------------------------------------------- */
/* Evaluation: emotion labels and lexicon (src/eval/lexicon.c)             */
/* ------------------------------------------------------------------------- */

/*
 * Emotion lexicon scorer: a transparent word-list signal for
 * evaluation. Words of data/lexicon/emotions.tsv (word, emotion, weight) count toward
 * anger, disgust, fear, joy, sadness; a negator (not, no, never, ...n't, ...) up to 3
 * words before an emotion word cancels it. Valence is a VADER-style compound score
 * from data/lexicon/vader_lexicon.txt.
 */
/* The six emotion labels of evaluation: the five emotions the lexicon counts, then
 * neutral. The one encoding used everywhere a label is a number: lexicon scores
 * (es_lexicon_score.top), judge and scorer probabilities (probs[n][ES_EMO_N_LABELS]
 * in this order), labelled sentences, validation tables. */
typedef enum es_emotion {
    ES_EMO_ANGER = 0,
    ES_EMO_DISGUST = 1,
    ES_EMO_FEAR = 2,
    ES_EMO_JOY = 3,
    ES_EMO_SADNESS = 4,
    ES_EMO_NEUTRAL = 5, /* no particular emotion */
    ES_EMO_COUNT = 5,   /* the emotions proper: ES_EMO_ANGER .. ES_EMO_SADNESS */
    ES_EMO_N_LABELS = 6 /* every label: the emotions, then ES_EMO_NEUTRAL */
} es_emotion;

/* "anger", "disgust", "fear", "joy", "sadness", "neutral"; "unknown" for any other
 * value. Static. */
const char *es_emotion_name(es_emotion e);
/* Parses a label name (case-sensitive, "neutral" included) into *out; ES_ERR_INVALID_ARG
 * naming the bad value (out untouched). Callers that want an emotion proper check
 * *out != ES_EMO_NEUTRAL. */
es_status es_emotion_parse(const char *name, es_emotion *out);

typedef struct es_lexicon es_lexicon;

/* Loads <dir>/emotions.tsv and <dir>/vader_lexicon.txt (the project ships them in
 * data/lexicon/ and installs them in share/emosteer/lexicon/). *out is owned by the
 * caller (es_lexicon_free) and is read-only afterwards: share it between threads. */
es_status es_lexicon_load(const char *dir, es_lexicon **out);
void es_lexicon_free(es_lexicon *lex);

typedef struct es_lexicon_score {
    int n_words;                /* words in the text */
    int n_emotion_words;        /* emotion words counted (not negated) */
    int n_negated;              /* emotion words cancelled by a negator */
    int count[ES_EMO_COUNT];    /* counted words per emotion */
    float weight[ES_EMO_COUNT]; /* summed weights per emotion */
    float share[ES_EMO_COUNT];  /* weight / total weight (all 0 when none) */
    float valence;              /* VADER-style compound in [-1, 1] */
    es_emotion top;             /* the emotion with the largest weight (ties: lower
                                   enum value), or ES_EMO_NEUTRAL when none */
} es_lexicon_score;

/* Scores UTF-8 text (len bytes; need not be NUL-terminated). Never fails on any
 * bytes; ES_ERR_INVALID_ARG only for NULL arguments. */
es_status es_lexicon_score_text(const es_lexicon *lex, const char *text, size_t len,
                                es_lexicon_score *out);

/* ------------------------------------------------------------------------- */
/* Evaluation: classifiers (src/eval/classifier.c, src/model/encoder.c)    */
/* ------------------------------------------------------------------------- */

/*
 * Encoder sequence classifiers: BERT, RoBERTa and XLM-RoBERTa checkpoints converted by
 * llama.cpp (GGUF architecture "bert" with a cls.output head), e.g. an emotion
 * classifier (j-hartmann/emotion-english-distilroberta-base) or an NLI model for
 * zero-shot labels. The forward pass follows Hugging Face's modeling code (post-LN
 * blocks, exact erf GELU, real token types, the pooler `cls` dense + tanh when the
 * file has it, then `cls.output`).
 *
 * A BERT file converted without the pooler (no cls.weight; the stock converter drops
 * BertForSequenceClassification's pooler) still loads and scores classifier(h[CLS]):
 * es_classifier_has_pooler says false, and its scores lack the trained pooler.
 *
 * Thread safety: a classifier is used by one thread at a time (it owns scratch and a
 * thread pool); several classifiers may share one model.
 */
typedef struct es_classifier es_classifier;

/* Creates a classifier over `model` (borrowed: it must outlive the classifier) with a
 * pool of n_threads (>= 1). ES_ERR_UNSUPPORTED if the model is not an encoder or has
 * no classification head (cls.output), ES_ERR_FORMAT if it has no tokenizer. */
es_status es_classifier_create(es_model *model, int n_threads, es_classifier **out);
void es_classifier_free(es_classifier *c);

/* Number of classes, and the name of class i in id order (borrowed from the model;
 * "LABEL_i" when the file names none; NULL outside [0, n_labels)). */
int es_classifier_n_labels(const es_classifier *c);
const char *es_classifier_label(const es_classifier *c, int i);

/* False for a file without the pooler tensors (cls.weight): see above. */
bool es_classifier_has_pooler(const es_classifier *c);

/* Classifies n texts: probs[i][0..n_labels) gets the softmax of text i's class logits.
 * pairs is NULL or n second segments (NULL entries: none) for sentence-pair models
 * (NLI: premise = texts[i], hypothesis = pairs[i]). Texts are tokenized with the
 * model's vocabulary as Hugging Face does ([CLS] a [SEP] b [SEP] with token types 0/1
 * for BERT; <s> a </s></s> b </s> for RoBERTa), cut from the end (the longer segment
 * first) to fit the model's positions, sorted by length and run in padded batches.
 * Every row gives what it gives alone. */
es_status es_classifier_classify(es_classifier *c, const char *const *texts,
                                 const char *const *pairs, int n, float *probs);
/* es_classifier_classify without the softmax: logits[i][0..n_labels) gets text i's
 * class logits (what Hugging Face's zero-shot pipeline compares across hypotheses). */
es_status es_classifier_logits(es_classifier *c, const char *const *texts, const char *const *pairs,
                               int n, float *logits);

/* The token ids and token types the classifier feeds for one text (pair may be NULL):
 * *tokens and *types are malloc'ed arrays of *n entries (the caller frees both). */
es_status es_classifier_tokenize(const es_classifier *c, const char *text, const char *pair,
                                 int32_t **tokens, int32_t **types, int *n);

/* What es_classifier_activations writes; any pointer may be NULL (not wanted). Shapes
 * as C arrays for n rows of T tokens; rows of padding positions are zero. */
typedef struct es_encoder_activations {
    float *emb;     /* [n][T][n_embd]: LayerNorm(word + position + token type) */
    float *attn_ln; /* [n_layer][n][T][n_embd]: LayerNorm(x + attention(x)) of each layer */
    float *hidden;  /* [n_layer][n][T][n_embd]: output of each layer */
    float *pooled; /* [n][n_embd]: what cls.output reads (tanh(cls·h[0]), or h[0] without pooler) */
    float *logits; /* [n][n_labels]: class logits */
} es_encoder_activations;

/* Runs the encoder on n rows of T given token ids (tokens[i][t]); token_types (NULL:
 * all 0) and mask (NULL: all 1; 0 marks padding, 1 a real token) have the same shape.
 * Positions count real tokens only. ES_ERR_INVALID_ARG for an id, type or mask value
 * out of range or a row without real tokens; ES_ERR_RANGE for a row longer than the
 * model's positions. */
es_status es_classifier_activations(es_classifier *c, const int32_t *tokens,
                                    const int32_t *token_types, const int32_t *mask, int n, int T,
                                    const es_encoder_activations *out);

/* ------------------------------------------------------------------------- */
/* Evaluation: classifier scorers (src/eval/classifier_scorer.c)           */
/* ------------------------------------------------------------------------- */

/*
 * Two es_label_scorer_fn over an es_classifier (probs[n][ES_EMO_N_LABELS]):
 *
 * An emotion classifier (es_cls_scorer_create_emotion): each class name is mapped onto
 * the six labels by es_emotion_parse_synonym; a text's six probabilities are the
 * classifier's softmax summed per mapped label and divided by the sum over the mapped
 * classes (classes outside the six, e.g. "surprise", are left out and the rest
 * renormalised to sum 1). The unmapped classes' own softmax probabilities are the
 * scorer's extra labels. A classifier with fewer than two distinct mapped labels is
 * refused (ES_ERR_UNSUPPORTED, the message lists its labels).
 *
 * A zero-shot NLI model (es_cls_scorer_create_nli), as Hugging Face's
 * zero-shot-classification pipeline with multi_label=False: premise = the text,
 * hypothesis = the template with "{}" replaced by the label's phrase ("anger",
 * "disgust", "fear", "joy", "sadness"; neutral: "no particular emotion"; default
 * template "This text expresses {}."), and the six probabilities are the softmax over
 * the six hypotheses of the entailment logit. The entailment class is the first whose
 * name starts with "entail" (any case), as the pipeline finds it; a model without one
 * is refused (ES_ERR_UNSUPPORTED). Extra labels "entail:<label>": P(entailment) of each
 * hypothesis alone (the softmax over the model's classes), for diagnostics.
 *
 * The scorer borrows the classifier (it must outlive the scorer) and shares its
 * thread-safety: one thread at a time.
 */
typedef struct es_cls_scorer es_cls_scorer;

#define ES_NLI_DEFAULT_TEMPLATE "This text expresses {}."

/* Maps a classifier label onto *out, case-insensitively: the six names and the
 * synonyms angry, disgusted, afraid, scared, happy, happiness, sad. ES_ERR_INVALID_ARG
 * for any other name (no message is kept: it is a lookup). */
es_status es_emotion_parse_synonym(const char *name, es_emotion *out);

/* *out is owned by the caller (es_cls_scorer_free); c is borrowed. */
es_status es_cls_scorer_create_emotion(es_classifier *c, es_cls_scorer **out);
/* template NULL: ES_NLI_DEFAULT_TEMPLATE; else it must hold "{}" exactly once
 * (ES_ERR_INVALID_ARG). */
es_status es_cls_scorer_create_nli(es_classifier *c, const char *hypothesis_template,
                                   es_cls_scorer **out);
/* Loads the GGUF file at path, creates a classifier on it (n_threads >= 1) and the
 * scorer (nli: es_cls_scorer_create_nli with hypothesis_template, else
 * es_cls_scorer_create_emotion); the scorer owns the model and classifier. Errors are
 * those of es_model_load, es_classifier_create (ES_ERR_UNSUPPORTED for a decoder
 * model) and the create function. */
es_status es_cls_scorer_load(const char *path, bool nli, const char *hypothesis_template,
                             int n_threads, es_cls_scorer **out);
/* Frees the scorer (and what es_cls_scorer_load made); NULL is a no-op. */
void es_cls_scorer_free(es_cls_scorer *s);

/* Extra labels (borrowed from the scorer; NULL outside [0, n_extra)). */
int es_cls_scorer_n_extra(const es_cls_scorer *s);
const char *es_cls_scorer_extra_label(const es_cls_scorer *s, int i);

/* Scores n texts: probs[n][ES_EMO_N_LABELS] (rows sum to 1) and, unless extra is NULL,
 * extra[n][n_extra]. ES_ERR_INVALID_ARG for NULL arguments (a NULL text included). */
es_status es_cls_scorer_score(es_cls_scorer *s, const char *const *texts, int n, double *probs,
                              double *extra);
/* es_label_scorer_fn over an es_cls_scorer (user): es_cls_scorer_score without extras. */
es_status es_cls_label_probs(void *scorer, const char *const *texts, int n, double *probs);

/* ------------------------------------------------------------------------- */
/* Evaluation: judge (src/eval/judge.c)                                    */
/* ------------------------------------------------------------------------- */

/*
 * Model-based signals for `emosteer eval`: a zero-shot emotion judge (any GGUF model
 * answering yes/no questions), topic adherence from mean-pooled hidden states, and
 * perplexity of responses under the unsteered model; plus validation of a scorer on
 * labelled sentences. Scorer labels are the es_emotion values in enum order:
 * anger, disgust, fear, joy, sadness, neutral (ES_EMO_N_LABELS).
 */

/*
 * The judge: the decoder-model analogue of an NLI zero-shot classifier. For each text
 * and label it asks the model yes/no questions (3 wordings: "Does the speaker of this
 * text feel {label}?", "Does this text express {label}?", "Is the emotion of this
 * text {label}?"; for neutral "... feel no particular emotion?", "Does this text
 * express no particular emotion?", "Is this text emotionally neutral?") in the prompt
 *     Text: {text}\nAnswer the question about this text with yes or no.\nQuestion: {question}
 * sent as the user message of the model's chat template with the generation prompt
 * (Qwen 3 / MiniCPM with thinking off), or without a template as plain text followed
 * by "\nAnswer:". The entailment score of a question is P(yes) / (P(yes) + P(no)) of
 * the next token, where P(yes) sums the probabilities of the tokens that read "yes" in
 * any letter case with or without one leading space (likewise "no"); a vocabulary
 * without such tokens uses the first token of "yes"/"Yes" and "no"/"No". A label's
 * score is the mean over the wordings; the six scores are divided by their sum, so
 * each text gets a probability distribution over the labels. Deterministic (no
 * sampling). Texts are untrusted: control-token text in them is removed when a chat
 * template is used, and they are cut to max_text_tokens tokens.
 */
typedef struct es_judge es_judge;

typedef struct es_judge_params {
    es_chat_format chat_format; /* ES_CHAT_AUTO (default): the model's template as
                            es_chat_detect finds it, plain text when it has none or one we
                            cannot render; otherwise the format to use (ES_CHAT_NONE = plain
                            text; ES_CHAT_UNKNOWN is refused) */
    int max_text_tokens; /* each text is cut to its first max_text_tokens tokens (default 256;
                            at most 32 bytes per token are looked at) */
    int n_seq;           /* texts decoded side by side (default 8) */
    int n_batch;         /* tokens per es_decode (default 512) */
    int n_threads;       /* worker threads (0 = es_context_default_params) */
} es_judge_params;

es_judge_params es_judge_default_params(void);

/* Creates a judge over `model`, which must outlive it; it owns a context sized for its
 * prompts (n_seq sequences). Fails with ES_ERR_UNSUPPORTED when the model has no
 * tokenizer or no distinct yes/no tokens, or when its context is too short for a prompt.
 * *out is owned by the caller (es_judge_free). One thread uses a judge at a time. */
es_status es_judge_create(es_model *model, const es_judge_params *params, es_judge **out);
void es_judge_free(es_judge *judge);
/* The chat format the judge renders its prompts with (ES_CHAT_NONE: plain text). */
es_chat_format es_judge_chat_format(const es_judge *judge);

/* Scores n NUL-terminated texts: probs[n][ES_EMO_N_LABELS], each row finite, in
 * [0, 1] and summing to 1. All (text, label, wording) prompts of a call are decoded
 * together: the tokens the prompts of a text share are decoded once per text (then
 * once per wording), each question's end as a continuation. ES_ERR_INVALID_ARG for NULL
 * arguments (a NULL text included), ES_ERR_FORMAT when the model gives non-finite logits. */
es_status es_judge_score(es_judge *judge, const char *const *texts, int n, double *probs);
/* es_judge_score with diagnostics: entail[n][ES_EMO_N_LABELS] the wording-averaged
 * entailment scores before normalisation, yes_no_mass[n] the mean over the text's
 * prompts of P(yes) + P(no) (how much the model answers in the expected form). Either
 * may be NULL. */
es_status es_judge_score_ex(es_judge *judge, const char *const *texts, int n, double *probs,
                            double *entail, double *yes_no_mass);

/* The text as the judge uses it: control-token text removed (chat formats) and cut to
 * at most max_tokens tokens (max_tokens < 0: the judge's own budget, max_text_tokens
 * or less if the context needs it). *out is malloc'ed (free with free()). */
es_status es_judge_prepare_text(const es_judge *j, const char *text, int max_tokens, char **out);

/* The token ids counted as "yes" (*yes[*n_yes]) and "no" (*no[*n_no]); borrowed from the
 * judge, valid until es_judge_free. */
void es_judge_answer_ids(const es_judge *j, const int32_t **yes, int *n_yes, const int32_t **no,
                         int *n_no);

/* ------------------------------------------------------------------------- */
/* Evaluation: scorers (src/eval/scorers.c)                                */
/* ------------------------------------------------------------------------- */

/*
 * Topic adherence without a judge: texts are embedded as the mean of the hidden state
 * at a hook point (default the residual stream, block_out) of one layer over the
 * text's tokens (BOS excluded), and compared with es_cosine. The default layer is
 * es_embed_default_layer: about two thirds of the depth, because middle layers carry
 * more of what a text is about while the last ones specialise in the next token.
 */
typedef struct es_embed_params {
    int layer;          /* -1 (default): es_embed_default_layer(n_layer) */
    es_hook_point hook; /* default ES_HOOK_BLOCK_OUT */
    int max_tokens;     /* each text is cut to its first max_tokens tokens, BOS included
                           (default 512; also capped by the context's n_ctx) */
} es_embed_params;

es_embed_params es_embed_default_params(void);
/* (2 * n_layer) / 3, within [0, n_layer - 1]. */
int es_embed_default_layer(int n_layer);

/* Embeds n NUL-terminated texts (tokenized with the model's BOS, no special parsing)
 * into out[n][n_embd]. A text without tokens besides BOS gets zeros. Uses and clears
 * sequences 0 .. n_seq_max - 1 of ctx; steering set on ctx applies (pass an unsteered
 * context); the context's hook is set aside during the call and restored. */
es_status es_embed_texts(es_context *ctx, const char *const *texts, int n,
                         const es_embed_params *params, float *out);

/* Cosine similarity of a[n] and b[n] in double; 0 when either vector is zero or n < 1. */
double es_cosine(const float *a, const float *b, int n);

/* A response and the prompt it answers, as tokens (both borrowed). */
typedef struct es_ppl_pair {
    const int32_t *prompt; /* [n_prompt] e.g. the chat-rendered query; n_prompt >= 1 (at
                              least BOS: the first response token needs a context) */
    int n_prompt;
    const int32_t *response; /* [n_response] */
    int n_response;
} es_ppl_pair;

/* Teacher-forces each prompt + response (several pairs per es_decode batch, one
 * sequence each) and writes mean_nll[i] = -(1/n_response) sum_t log p(r_t | prompt,
 * r_<t) (natural log) and ppl[i] = exp(mean_nll[i]) (ppl may be NULL); both NaN for an
 * empty response. Uses and clears sequences 0 .. n_seq_max - 1 of ctx; steering set on
 * ctx applies (pass an unsteered context). Token ids outside the vocabulary fail with
 * ES_ERR_INVALID_ARG, a pair longer than the context's n_ctx with ES_ERR_RANGE. */
es_status es_score_ppl(es_context *ctx, const es_ppl_pair *pairs, int n, double *mean_nll,
                       double *ppl);

/* Validation of a scorer on labelled sentences. A scorer writes probs[n][6] for n
 * texts; es_judge_score (user = the judge) and es_lexicon_label_probs (user = the
 * lexicon) fit. */
typedef es_status (*es_label_scorer_fn)(void *user, const char *const *texts, int n, double *probs);

/* es_label_scorer_fn over an es_lexicon (user): the label shares of eval's lexicon
 * scorer (emotion weight / (total weight + 1), neutral 1 / (total weight + 1)). */
es_status es_lexicon_label_probs(void *lexicon, const char *const *texts, int n, double *probs);
/* es_label_scorer_fn over an es_judge (user): es_judge_score. */
es_status es_judge_label_probs(void *judge, const char *const *texts, int n, double *probs);

/* Labelled sentences. */
typedef struct es_labelled {
    int n;
    char **texts;       /* [n] owned */
    es_emotion *labels; /* [n] the gold labels */
} es_labelled;

/* Reads a TSV file of lines "label<TAB>sentence" (label: anger, disgust, fear, joy,
 * sadness or neutral; '#' lines and blank lines skipped), keeping at most
 * max_per_class sentences per label (0 = all) in file order. An unknown label or a
 * line without a tab fails with ES_ERR_FORMAT naming the line. *out is owned by the
 * caller (es_labelled_clear). */
es_status es_labelled_load(const char *path, int max_per_class, es_labelled *out);
void es_labelled_clear(es_labelled *set);

typedef struct es_validation {
    int n;                      /* sentences scored */
    double accuracy;            /* share whose predicted label (the argmax of the scorer's
                                   probabilities, ties to the lower label) is the gold label */
    double f1[ES_EMO_N_LABELS]; /* per class 2TP / (2TP + FP + FN); NaN when the class is
                                      neither gold nor predicted anywhere */
    double macro_f1;            /* mean of the defined per-class F1 */
    int confusion[ES_EMO_N_LABELS][ES_EMO_N_LABELS]; /* [gold][predicted] counts */
} es_validation;

/* Scores the sentences of `set` with fn (one call) and compares with the gold labels. */
es_status es_validate_scorer(es_label_scorer_fn fn, void *user, const es_labelled *set,
                             es_validation *out);

/* es_labelled_load then es_validate_scorer. */
es_status es_validate_tsv(const char *path, int max_per_class, es_label_scorer_fn fn, void *user,
                          es_validation *out);

/*
 * Teacher forcing: the driver behind the embeddings, the perplexity and the judge,
 * for callers that score tokens their own way. It packs token segments of several
 * sequences into es_decode batches and hands back the logits rows asked for.
 */
typedef struct es_tf_seg {
    const int32_t *tok; /* [len] token ids (borrowed for the call) */
    int len;            /* tokens; 0 = nothing to decode */
    int slot;           /* sequence id in the context; distinct among the segments of one call */
    int pos0;           /* position of tok[0]: at most es_kv_len(slot); later cached positions
                           of the slot are dropped (a rollback) */
    int logits_lo;      /* logits are wanted for the tokens [logits_lo, logits_hi) */
    int logits_hi;
} es_tf_seg;

/* Called with the logits (float[n_vocab], borrowed until the next decode) of token k of
 * segment `seg`, in order of the segments and tokens. A non-OK return stops the run and
 * is returned. */
typedef es_status (*es_tf_logits_fn)(void *user, int seg, int k, const float *logits);

/* Decodes the segments in order, several per es_decode batch (at most the context's
 * n_batch tokens and max_logit_rows tokens with logits per batch; a segment longer
 * than that is split across batches), calling fn for every wanted logits row (fn may
 * be NULL when no logits are wanted). Validates slots, positions and lengths against
 * the context (ES_ERR_RANGE naming the segment). The context's hook and steering apply. */
es_status es_tf_decode(es_context *ctx, const es_tf_seg *segs, int n_segs, int max_logit_rows,
                       es_tf_logits_fn fn, void *user);

/* A reasonable max_logit_rows for a context: its n_batch, capped so that the logits
 * of one batch stay under about 128 MiB (at least 8 rows). */
int es_tf_default_logit_rows(const es_context *ctx);

/* ------------------------------------------------------------------------- */
/* Evaluation: metrics (src/eval/eval_metrics.c, src/eval/eval_summary.c)  */
/* ------------------------------------------------------------------------- */

/*
 * The numbers `emosteer eval` reports, as pure functions over per-response scores,
 * and the results struct that results.json, summary.csv and report.html are written
 * from. Every function here is pure or touches only what it is given: thread-safe.
 *
 * Vocabulary
 *   emotion   a steering target ("joy", "anger", ...): a row of every table.
 *   alpha     the steering strength: the vector added is alpha * EV_l.
 *   cell      one (emotion, alpha): all responses generated when steering toward that
 *             emotion at that alpha (every query, every sample).
 *   label     a class of the emotion scorer. The scorer gives every response one
 *             non-negative score per label ("shares"); labels normally include each
 *             emotion and "neutral" (ES_EVAL_NEUTRAL).
 *
 * Metric definitions (the README quotes these)
 *   Word tokens      the maximal runs of ASCII letters and digits, and of bytes >= 0x80
 *                    (so UTF-8 letters stay inside words), lower-cased (ASCII only).
 *                    "Don't STOP!!" -> don, t, stop.
 *   target prob      p(target) of a response = its score for the label named like the
 *                    cell's emotion (0 if the scorer lacks that label). Cell value: the
 *                    mean over the cell's responses (with sd and 95% CI).
 *   EAS              absolute emotion score of a response = the sum of its scores over
 *                    every label except neutral (its total non-neutral emotion mass;
 *                    for a scorer whose shares sum to 1 this is 1 - p(neutral)).
 *                    Cell value: mean; delta-EAS = cell mean - the mean of the same
 *                    emotion's alpha = 0 cell (NaN if there is no alpha = 0 cell).
 *   topic            topic adherence: mean over responses of a response-to-query
 *                    similarity computed elsewhere (e.g. embedding cosine in [-1, 1]).
 *   perplexity       of each response under the unsteered model (computed elsewhere).
 *                    Cell value: the geometric mean exp(mean(log ppl)).
 *   distinct-2       of a response = distinct word bigrams / word bigrams; undefined
 *                    (NaN, left out of means) with fewer than 2 words. Cell value:
 *                    mean over responses. es_distinct_n_pooled gives the corpus-level
 *                    variant (Li et al. 2016): distinct n-grams of all responses of a
 *                    set / all their n-grams.
 *   rep-4            share of repeated 4-grams of a response = 1 - distinct word
 *                    4-grams / word 4-grams, i.e. the fraction of 4-gram occurrences
 *                    that repeat an earlier one; 0 with fewer than 4 words. Cell: mean.
 *   degenerate       a response is degenerate if rep-4 > 0.3, or it has fewer than 3
 *                    words (empty and punctuation-only responses included). Both
 *                    thresholds are es_fluency_params. Cell value: the share of
 *                    degenerate responses.
 *   linearity        per emotion, the least-squares line through the points
 *                    (alpha, cell mean target prob) for the alphas in
 *                    [lin_alpha_lo, lin_alpha_hi]: slope, intercept and
 *                    R^2 = 1 - SS_res / SS_tot (NaN when SS_tot = 0 or < 2 points).
 *   detected label   argmax of a response's scores over all labels. Ties split the
 *                    response evenly between the tied labels; a response whose scores
 *                    are all 0 (or that is unscored) counts as neutral when the scorer
 *                    has a neutral label, else it is left out.
 *   confusion        per alpha, a matrix [emotion][label]: row = steered-to emotion,
 *                    column = detected label, entry = number of responses (fractional
 *                    with ties). Accuracy = sum of the entries (e, label of e) / sum
 *                    of all entries; a row's diagonal share = its entry at its own
 *                    label / its row sum.
 *   mean, sd, 95% CI over the finite values x_1..x_n (NaN values are left out):
 *                    mean = sum x / n; sd = sqrt(sum (x - mean)^2 / (n - 1)) (sample
 *                    sd, NaN for n < 2); CI = mean -/+ t(0.975, n - 1) * sd / sqrt(n)
 *                    (Student t; NaN for n < 2).
 */
/* The name of the neutral label in results and generation logs. */
#define ES_EVAL_NEUTRAL "neutral"

/* ---- Statistics ---- */

typedef struct es_stat {
    int n;        /* finite values used */
    double mean;  /* NaN if n == 0 */
    double sd;    /* sample sd (n - 1), NaN if n < 2 */
    double ci_lo; /* 95% CI of the mean (Student t), NaN if n < 2 */
    double ci_hi;
} es_stat;

/* Statistics of x[n], skipping NaN and infinite values. Never fails. */
es_stat es_stat_of(const double *x, size_t n);

/* The 0.975 quantile of Student's t with df degrees of freedom (df >= 1): exact
 * table to 7 digits for df <= 30, a Cornish-Fisher expansion above (error < 1e-5).
 * NaN for df < 1. */
double es_t975(int df);

/* Least-squares line y = intercept + slope * x through the points with x in [lo, hi]
 * and finite x, y. slope/intercept NaN with fewer than 2 distinct x; r2 NaN also when
 * all y are equal. */
typedef struct es_linearity {
    int n_points; /* points used */
    double slope;
    double intercept;
    double r2; /* coefficient of determination 1 - SS_res / SS_tot */
} es_linearity;

es_linearity es_linear_fit(const double *x, const double *y, size_t n, double lo, double hi);

/* ---- Fluency of one response ---- */

typedef struct es_fluency_params {
    double degenerate_rep4;   /* rep-4 above this is degenerate (default 0.3) */
    int degenerate_min_words; /* fewer words than this is degenerate (default 3) */
} es_fluency_params;

es_fluency_params es_fluency_default_params(void);

typedef struct es_text_fluency {
    int n_words;
    double distinct2; /* NaN with < 2 words */
    double rep4;      /* 0 with < 4 words */
    bool degenerate;
} es_text_fluency;

/* Word tokens as defined above. On success *words is a malloc'ed array of 64-bit
 * hashes (FNV-1a of the lower-cased word), one per word, owned by the caller (free());
 * NULL when *n_words is 0. */
es_status es_word_hashes(const char *text, uint64_t **words, size_t *n_words);

/* distinct-2, rep-4 and degenerate of one NUL-terminated text (NULL counts as "").
 * params may be NULL (defaults). */
es_status es_text_fluency_of(const char *text, const es_fluency_params *params,
                             es_text_fluency *out);

/* Share of distinct word n-grams over the n-grams of one text: NaN if it has no
 * n-gram. order >= 1. */
es_status es_distinct_n(const char *text, int order, double *out);

/* Corpus-level distinct-n over texts[n_texts] (n-grams never span two texts). */
es_status es_distinct_n_pooled(const char *const *texts, size_t n_texts, int order, double *out);

/* ---- Emotion scores of one response ---- */

/* EAS of a response: sum of scores[i] over i != neutral (neutral < 0: no neutral
 * label). NaN if scores is NULL or any counted score is not finite. */
double es_emotion_eas(const double *scores, int n_labels, int neutral);

/* Scores from the lexicon scorer (es_lexicon_score_text) as a label
 * distribution over es_eval_lexicon_labels = anger, disgust, fear, joy, sadness,
 * neutral (ES_EMO_N_LABELS):
 *   scores[e]       = weight[e] / (W + prior)     W = total emotion-word weight
 *   scores[neutral] = prior / (W + prior)
 * so a response without emotion words is all neutral, EAS = W / (W + prior) grows with
 * the emotion-word weight, and an emotion is detected once its weight exceeds the
 * prior (default ES_EVAL_LEXICON_PRIOR = 1, one plain emotion word). prior <= 0 or NaN
 * means the default. */
#define ES_EVAL_LEXICON_PRIOR 1.0
/* es_eval_lexicon_labels[e] = es_emotion_name(e) for every label e (static). */
extern const char *const es_eval_lexicon_labels[ES_EMO_N_LABELS];
void es_scores_from_lexicon(const es_lexicon_score *s, double prior,
                            double scores[ES_EMO_N_LABELS]);

/* Adds the response's detected label to row[n_labels] (fractional ties, see above).
 * scores may be NULL (unscored). Returns false if nothing was added. */
bool es_detect_label_add(const double *scores, int n_labels, int neutral, double *row);

/* ---- Generated responses (one line of generations.jsonl) ---- */

typedef struct es_gen_record {
    char *emotion;  /* steered-to emotion (owned) */
    double alpha;   /* steering strength */
    char *query_id; /* identifier of the query, e.g. "neutral-0042" (owned) */
    int sample;     /* draw index >= 0 for one (emotion, alpha, query) */
    uint64_t seed;  /* sampler seed of this draw */
    char *prompt;   /* the query text (owned, may be "") */
    char *response; /* the generated text (owned, may be "") */
    int n_tokens;   /* generated tokens (-1 = unknown) */
    int n_labels;   /* entries of scores (0 when unscored) */
    double *scores; /* [n_labels] scorer shares in the run's label order, or NULL (owned) */
    double valence; /* e.g. VADER compound in [-1, 1]; NaN = not computed */
    double ppl;     /* perplexity under the unsteered model; NaN = not computed */
    double topic;   /* response-to-query similarity; NaN = not computed */
} es_gen_record;

/* A record with every pointer NULL, counts 0, numbers NaN, n_tokens -1. */
es_gen_record es_gen_record_empty(void);
/* Deep copy of src into *dst (which the caller then owns; free with es_gen_record_clear). */
es_status es_gen_record_copy(es_gen_record *dst, const es_gen_record *src);
/* Frees what the record owns and resets it to es_gen_record_empty(). */
void es_gen_record_clear(es_gen_record *rec);

/* ---- Results of an evaluation ---- */

/* One (emotion, alpha). */
typedef struct es_eval_cell {
    int n;               /* responses in the cell */
    es_stat target_prob; /* p(target emotion) */
    es_stat eas;         /* absolute emotion score */
    double eas_delta;    /* eas.mean - eas.mean at alpha 0; NaN without alpha 0 */
    es_stat valence;
    es_stat topic;
    es_stat log_ppl; /* natural log of perplexity */
    double ppl;      /* geometric mean perplexity exp(log_ppl.mean) */
    es_stat distinct2;
    es_stat rep4;
    double degenerate_share; /* in [0, 1]; NaN if n == 0 */
    es_stat n_words;
} es_eval_cell;

/* One response shown in the report's sample table. */
typedef struct es_eval_sample {
    int emotion;        /* index into emotions */
    int alpha;          /* index into alphas */
    char *query_id;     /* owned */
    char *prompt;       /* owned */
    char *response;     /* owned */
    double target_prob; /* NaN if unscored */
    int detected;       /* label index of the top score, -1 if unscored or tied */
} es_eval_sample;

/* Free-form settings: key/value strings kept in order (e.g. "temperature" -> "0.7"). */
typedef struct es_eval_kv {
    char *key;   /* owned */
    char *value; /* owned */
} es_eval_kv;

/* The string fields of es_eval_settings, in results.json order: X(field). */
/* clang-format off */
#define ES_EVAL_SETTINGS_STRINGS(X)                                                                \
    X(model_path)                                                                                  \
    X(model_name) X(model_sha256) X(ev_path) X(ev_sha256) X(method) X(hook) X(layers)              \
        X(query_file) X(query_sha256) X(scorer) X(created)
/* clang-format on */

/* What was run. Every string is owned and may be NULL (unknown). */
typedef struct es_eval_settings {
    char *model_path;
    char *model_name;
    char *model_sha256;
    char *ev_path;
    char *ev_sha256;
    char *method; /* how the emotion vectors were made, e.g. "mean-diff" */
    char *hook;   /* "attn_out", "mlp_out", "block_out" */
    char *layers; /* steered layers as text, e.g. "all" or "4-7" */
    char *query_file;
    char *query_sha256;
    char *scorer;  /* e.g. "lexicon" */
    char *created; /* ISO 8601 time */
    uint64_t seed;
    int n_samples; /* draws per (emotion, alpha, query) */
    int max_tokens;
    int n_extra;
    es_eval_kv *extra; /* [n_extra] any other settings */
} es_eval_settings;

/* Everything results.json holds. Built by es_eval_summarize (or read back by
 * es_results_read_json); owned by the caller, freed with es_eval_results_free. */
typedef struct es_eval_results {
    es_eval_settings settings;
    int n_emotions;
    char **emotions; /* [n_emotions] steered-to emotions (rows) */
    int n_alphas;
    double *alphas; /* [n_alphas] ascending */
    int n_labels;
    char **labels;       /* [n_labels] scorer labels (confusion columns) */
    int neutral;         /* index of "neutral" in labels, or -1 */
    int *emotion_label;  /* [n_emotions] label index of each emotion, -1 if absent */
    es_eval_cell *cells; /* [n_emotions][n_alphas] */
    double lin_alpha_lo; /* linearity range */
    double lin_alpha_hi;
    es_linearity *linearity;     /* [n_emotions] target prob mean vs alpha */
    es_linearity *linearity_eas; /* [n_emotions] EAS mean vs alpha */
    double *confusion;           /* [n_alphas][n_emotions][n_labels] response counts */
    double *accuracy;            /* [n_alphas] diagonal share, NaN if the matrix is empty */
    int n_samples;
    es_eval_sample *samples; /* [n_samples] */
    int n_records;           /* records summarised */
    int n_ignored;           /* records whose emotion or alpha was not in the lists */
} es_eval_results;

typedef struct es_summary_params {
    double lin_alpha_lo; /* linearity range (default 0) */
    double lin_alpha_hi; /*                 (default 2) */
    es_fluency_params fluency;
    int samples_per_cell; /* responses per cell in the sample table (default 1) */
} es_summary_params;

es_summary_params es_summary_default_params(void);

/* Aggregates records[n_records] into results.
 * emotions[n_emotions]: the rows; NULL = every record emotion in order of first
 * appearance. alphas[n_alphas]: NULL = every record alpha; sorted ascending either
 * way, duplicates rejected. labels[n_labels]: the scorer labels each record's scores
 * are aligned with; a record with n_labels != this is an ES_ERR_INVALID_ARG naming it.
 * settings may be NULL; it is deep-copied. params may be NULL (defaults).
 * Records outside the emotion/alpha lists are counted in n_ignored.
 * On success *out is owned by the caller. */
es_status es_eval_summarize(const es_gen_record *records, size_t n_records,
                            const char *const *emotions, int n_emotions, const double *alphas,
                            int n_alphas, const char *const *labels, int n_labels,
                            const es_eval_settings *settings, const es_summary_params *params,
                            es_eval_results **out);

void es_eval_results_free(es_eval_results *r);

/* Cell (e, a) of r; no bounds check beyond the caller's. */
static inline es_eval_cell *es_eval_cell_at(const es_eval_results *r, int e, int a) {
    return &r->cells[(size_t)e * (size_t)r->n_alphas + (size_t)a];
}
/* Row e of the confusion matrix at alpha a: double[n_labels]. */
static inline double *es_eval_confusion_row(const es_eval_results *r, int a, int e) {
    return &r->confusion[((size_t)a * (size_t)r->n_emotions + (size_t)e) * (size_t)r->n_labels];
}

/* Deep copy of settings into *dst (owned by the caller; free with es_eval_settings_clear). */
es_status es_eval_settings_copy(es_eval_settings *dst, const es_eval_settings *src);
void es_eval_settings_clear(es_eval_settings *s);
/* Appends key=value to s->extra (both copied). */
es_status es_eval_settings_add(es_eval_settings *s, const char *key, const char *value);

/* ------------------------------------------------------------------------- */
/* Evaluation: results files (src/eval/eval_io.c, src/eval/eval_results.c) */
/* ------------------------------------------------------------------------- */

/*
 * The files `emosteer eval` writes and reads back:
 *
 *   generations.jsonl  one JSON object per line per generated response (es_gen_record),
 *                      appended and flushed as each finishes, so that a crashed or
 *                      stopped run resumes where it was (es_genlog).
 *   results.json       every number of es_eval_results plus the settings and hashes
 *                      (es_results_write_json / es_results_read_json).
 *   summary.csv        one row per emotion x alpha (es_results_write_csv).
 *
 * and `emosteer eval --compare A/results.json B/results.json` (es_results_compare).
 *
 * generations.jsonl line (keys in this order; numbers that are NaN are written null;
 * optional keys may be absent when read):
 *   {"emotion":"joy","alpha":1.5,"query_id":"neutral-0042","sample":0,
 *    "seed":1234,"prompt":"...","response":"...","n_tokens":57,
 *    "scores":{"anger":0.1,...,"neutral":0.5},"valence":0.31,"ppl":12.3,"topic":0.8}
 *   required: emotion (non-empty string), alpha (finite number), query_id (string),
 *   sample (integer >= 0), response (string). Optional: seed (integer >= 0, or a
 *   decimal string for values above 2^63), prompt (string), n_tokens (integer),
 *   scores (object of label -> probability in [0, 1] or null), valence (in [-1, 1]),
 *   ppl (>= 1), topic (in [-1, 1]) (number or null); a value outside its range is
 *   ES_ERR_FORMAT naming the key (each range widened by 1e-6 for rounding).
 *   Text that is not valid UTF-8 is written with each bad byte replaced by U+FFFD.
 *
 * A record's key is (emotion, alpha, query_id, sample); alphas are compared after
 * rounding to 9 significant digits.
 */
typedef struct es_genlog es_genlog;

/* Opens the generation log at `path` for resuming.
 *
 * Reads every record already in the file (a missing file is an empty log). labels
 * [n_labels] are the scorer labels: each record's "scores" object is read into that
 * order (a missing label reads NaN, unknown labels are ignored); n_labels may be 0.
 * Empty lines are skipped. When the LAST line of the file is not valid JSON and has no
 * newline — the remains of a write cut short by a crash — it is dropped and counted in
 * es_genlog_info's dropped_bytes; any other malformed line (a line before the last, or
 * a complete one that breaks the format above, e.g. a score outside [0, 1]) is
 * ES_ERR_FORMAT naming "path:line" and the problem. A record whose key was already seen is
 * dropped (the first is kept) and counted as a duplicate.
 *
 * If `writable`, the file is then cut just after its last good line (dropping the
 * broken tail), created if missing, and held open for es_genlog_append.
 * On success *out owns the records and the file; free with es_genlog_free. */
es_status es_genlog_open(const char *path, const char *const *labels, int n_labels, bool writable,
                         es_genlog **out);

/* Closes the file (if open) and frees everything. NULL is a no-op. */
void es_genlog_free(es_genlog *log);

typedef struct es_genlog_info {
    size_t n_records;     /* records held (read + appended) */
    size_t n_lines_read;  /* non-empty lines read from the file */
    size_t n_duplicates;  /* lines dropped because their key was already present */
    size_t dropped_bytes; /* bytes of an unparseable last line dropped (0 if none) */
    size_t valid_bytes;   /* file length up to and including the last good line */
} es_genlog_info;

void es_genlog_get_info(const es_genlog *log, es_genlog_info *info);

/* The records, in file order then append order: [n_records]. Borrowed; valid until
 * the next es_genlog_append or es_genlog_free. */
const es_gen_record *es_genlog_records(const es_genlog *log);

/* True if a record with this key is present. */
bool es_genlog_done(const es_genlog *log, const char *emotion, double alpha, const char *query_id,
                    int sample);

/* The sampler seed of one draw: a hash of (base, emotion, alpha rounded as in the key,
 * query_id, sample), so a draw gets the same seed whatever the batching, the order or
 * the number of resumptions. */
uint64_t es_eval_seed(uint64_t base, const char *emotion, double alpha, const char *query_id,
                      int sample);

/* Adds a copy of rec. If the log was opened writable the record is also written as
 * one line and flushed before returning. A record whose key is already present is
 * ES_ERR_INVALID_ARG naming it; a record with scores must have n_labels equal to the
 * log's. */
es_status es_genlog_append(es_genlog *log, const es_gen_record *rec);

/* One record as a JSON line without the newline (malloc'ed, caller frees).
 * labels[n_labels] name the scores (rec->n_labels must equal n_labels if scored). */
es_status es_gen_record_to_json(const es_gen_record *rec, const char *const *labels, int n_labels,
                                char **out);

/* Parses one JSON line into *rec (owned by the caller, es_gen_record_clear). On
 * ES_ERR_FORMAT the message names the problem (without any file name). */
es_status es_gen_record_from_json(const char *line, size_t len, const char *const *labels,
                                  int n_labels, es_gen_record *rec);

/* ---- results.json, summary.csv, compare ---- */

#define ES_RESULTS_FORMAT "emosteer-results/1"

/* Writes results.json (pretty-printed, keys in a fixed order: "format" =
 * ES_RESULTS_FORMAT, "settings", "emotions", "alphas", "labels", "cells", "linearity",
 * "confusion", "samples"; src/eval/eval_results.c has the full layout). */
es_status es_results_write_json(const es_eval_results *r, const char *path);

/* Reads a results.json written by es_results_write_json. Any malformed part is
 * ES_ERR_FORMAT with a message naming the file and the JSON path of the problem
 * ("B/results.json: cells[3].alpha: expected a number"). *out owned by the caller. */
es_status es_results_read_json(const char *path, es_eval_results **out);

/* The same from memory; `name` stands for the file in messages. */
es_status es_results_parse(const char *json, size_t len, const char *name, es_eval_results **out);

/* Writes summary.csv: a header, then one row per emotion x alpha with the columns
 *   emotion,alpha,n,target_prob_mean,target_prob_sd,target_prob_ci_lo,target_prob_ci_hi,
 *   eas_mean,eas_sd,eas_delta,valence_mean,distinct2_mean,distinct2_sd,rep4_mean,rep4_sd,
 *   degenerate_share,ppl,topic_mean,topic_sd
 * NaN is an empty field. */
es_status es_results_write_csv(const es_eval_results *r, const char *path);

/* Writes to `out` a side-by-side text table of two results: settings (model, hashes,
 * method, hook, layers, scorer), then per emotion the mean target prob at each alpha of
 * either run, then slope and R^2. name_a / name_b head the columns (e.g. the paths). */
es_status es_results_compare(const es_eval_results *a, const char *name_a, const es_eval_results *b,
                             const char *name_b, FILE *out);

/* Reads both files and compares them: errors name the file that failed. */
es_status es_results_compare_files(const char *path_a, const char *path_b, FILE *out);

/* ------------------------------------------------------------------------- */
/* Evaluation: scoring texts (src/eval/texts.c)                            */
/* ------------------------------------------------------------------------- */

/*
 * Texts generated elsewhere, scored with any es_label_scorer_fn (`emosteer score`).
 *
 * A text file is read by its name: "*.jsonl" or "*.json" holds one JSON object per
 * line with the text in "text", "response" (eval's generations.jsonl) or "output" —
 * the first of these keys the first line has; every line must have it as a string;
 * any other file holds one text per line (the line end removed; blank lines skipped,
 * a line starting with '#' is a text). Blank lines are skipped in both. A line that is
 * not a JSON object, lacks the text key or holds a NUL byte is ES_ERR_FORMAT naming
 * "path:line"; an empty file is ES_ERR_FORMAT.
 *
 * The scores are written one JSON line per text: a JSONL line comes back as it was
 * (keys in order) with "scores" set to {"anger": p, ..., "neutral": p} (the
 * es_emotion labels) and "scorer" added; a text line becomes {"line": N, "text": ...,
 * "scores": {...}, "scorer": ...}. Numbers have 10 significant digits, as
 * generations.jsonl has them, so the two compare as text.
 *
 * A set is read-only after loading: any number of threads may read it.
 */
typedef struct es_text_set es_text_set;

/* Reads and checks a text file. On success *out is owned by the caller (es_text_set_free). */
es_status es_text_set_load(const char *path, es_text_set **out);
/* Frees the set; every pointer from it becomes invalid. NULL is a no-op. */
void es_text_set_free(es_text_set *t);
/* Texts in the set, >= 1. */
int es_text_set_n(const es_text_set *t);
/* The texts in file order: [n] NUL-terminated, borrowed from t (the shape a
 * es_label_scorer_fn takes). */
const char *const *es_text_set_texts(const es_text_set *t);
/* The JSON key the texts came from ("text", "response", "output"), NULL for a text
 * file. Static. */
const char *es_text_set_text_key(const es_text_set *t);

/* The grouping keys found in a JSONL set: every key whose values are strings or
 * numbers (null or absent counts as the value "") with at most max_distinct distinct
 * values, in order of first appearance, leaving out the text keys and the per-line ones
 * (prompt, query, query_id, id, seed, sample, n_tokens, ppl, topic, valence, scores,
 * scorer, line). For eval's generations.jsonl: emotion, alpha. None for a text file.
 * *keys[*n_keys] is malloc'ed (free each and the array). */
es_status es_text_set_group_keys(const es_text_set *t, int max_distinct, char ***keys, int *n_keys);

/* Writes one JSON line per text (the layout above) with probs[n][ES_EMO_N_LABELS] (a
 * NaN is null); scorer (may be NULL: no "scorer" key) names what scored them. */
es_status es_text_set_write_scores(const es_text_set *t, const double *probs, const char *scorer,
                                   FILE *f);
/* es_text_set_write_scores with an "extra_scores" object on each line: extra_names[k]
 * -> extra[i][k] for k < n_extra (e.g. a classifier's labels outside the six,
 * es_cls_scorer_extra_label); an "extra_scores" already on a JSONL line is dropped. */
es_status es_text_set_write_scores_ex(const es_text_set *t, const double *probs, const char *scorer,
                                      const char *const *extra_names, int n_extra,
                                      const double *extra, FILE *f);

/* One group of texts: the lines whose grouping keys hold `values`. */
typedef struct es_score_group {
    char **values; /* [n_keys] as es_text_set_group_keys reads them: strings as they are,
                      integers in decimal, reals as %.9g, "" when absent (owned) */
    int n;         /* texts */
    double mean[ES_EMO_N_LABELS]; /* mean probability of each label */
    double eas;                   /* mean EAS: the sum of mean[] over the labels but neutral */
    double target; /* mean[the label named by the "emotion" key's value]; NaN without an
                      "emotion" key or when the value is not an emotion label */
} es_score_group;

typedef struct es_score_summary {
    int n_keys;
    char **keys;     /* [n_keys] the grouping keys (owned) */
    int emotion_key; /* index of "emotion" in keys, or -1 */
    int n_groups;
    es_score_group *groups; /* [n_groups] sorted by the values, key by key (numbers
                               numerically) */
} es_score_summary;

/* Groups the texts of t by keys[n_keys] (n_keys 0: one group of every text) and
 * averages probs[n][ES_EMO_N_LABELS] per group. More than 100000 groups is ES_ERR_RANGE.
 * *out is owned by the caller (es_score_summary_free). */
es_status es_score_summarize(const es_text_set *t, const double *probs, const char *const *keys,
                             int n_keys, es_score_summary **out);
void es_score_summary_free(es_score_summary *s);
/* CSV: the keys, n, anger..neutral, eas, target_prob; one row per group (an undefined
 * number is an empty field). */
es_status es_score_summary_write_csv(const es_score_summary *s, FILE *f);
/* JSON: {"format": "emosteer-score-summary/1", "group_by": [keys], "groups": [{key:
 * value, ..., "n", "mean": {label: p}, "eas", "target_prob"}]}. */
es_status es_score_summary_write_json(const es_score_summary *s, FILE *f);

/* ------------------------------------------------------------------------- */
/* Evaluation: report (src/eval/report.c)                                  */
/* ------------------------------------------------------------------------- */

/*
 * report.html of an evaluation: ONE self-contained page (inline CSS and
 * inline SVG; no script, no external fetch) drawn from es_eval_results
 * (above), in this order:
 *
 *   settings      model, hashes, EV file, method, hook, layers, scorer, sampling
 *   emotion       target-emotion probability and EAS vs alpha: per emotion a mean line
 *                 with a +-1 sd band, one colour per emotion, legend
 *   fluency       rep-4 share, degenerate share, distinct-2 and perplexity vs alpha
 *   specificity   confusion matrices (steered-to x detected, incl. neutral) as heat
 *                 maps with counts, one per positive alpha, and accuracy per alpha
 *   topic         topic adherence vs alpha
 *   linearity     table of slope, intercept and R^2 per emotion (target prob, EAS)
 *   samples       table of sample responses; every text from the model, the queries or
 *                 the settings is HTML-escaped (it is untrusted), invalid UTF-8 is
 *                 replaced by U+FFFD
 *
 * Every chart section is a <section class="chart" id="..."> holding one <svg>. A
 * panel without finite data says "no data" instead of drawing.
 */
typedef struct es_report_params {
    const char *title;      /* page title (default "emosteer evaluation"); escaped */
    int max_samples;        /* rows of the sample table (default 60) */
    int max_response_bytes; /* longer responses are cut at a UTF-8 boundary + "…" (default 1200) */
    int max_heatmaps;       /* confusion matrices shown, largest positive alphas kept (default 4) */
} es_report_params;

es_report_params es_report_default_params(void);

/* The page as a malloc'ed NUL-terminated string (*out, owned by the caller; *len its
 * length, may be NULL). params may be NULL (defaults). */
es_status es_report_html(const es_eval_results *r, const es_report_params *params, char **out,
                         size_t *len);

/* Writes the page to path. */
es_status es_report_write(const es_eval_results *r, const es_report_params *params,
                          const char *path);

#ifdef __cplusplus
}
#endif
#endif /* EMOSTEER_H */
