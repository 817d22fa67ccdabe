/*
 * random_model.h — internal: writes a complete GGUF model with random weights at the
 * shape of a real model, for benchmarks and tests without downloads.
 *
 * The file carries the real architecture keys (llama / qwen2 hparams), a small
 * SentencePiece-style vocabulary of the model's size ("<unk>", "<s>", "</s>", the
 * 256 byte tokens "<0xNN>", then "t<i>"), the tensors under llama.cpp's names, and
 * the tensor types of a llama-quantize-like mix:
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
 * llama-quantize: Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0. Norm weights, biases
 * and rope factors are F32.
 *
 * Values: matrices and biases ~ N(0, 0.02²) (a sum of four uniforms), norm weights
 * 1 + N(0, 0.02²), quantized with our own quantizers. The output depends only on
 * (like, mix, seed), not on the number of threads. The whole file is held in memory
 * until it is written (about the file's size, plus one tensor).
 */
#ifndef ES_RANDOM_MODEL_H
#define ES_RANDOM_MODEL_H

#include "common.h"

#include <stdint.h>

typedef struct es_random_model_params {
    const char *like; /* "qwen2.5-0.5b", "llama-3.2-1b" or "demo-16m" */
    const char *mix;  /* "f16", "q8_0", "q4_0", "q4_k_m", "q5_k_m" or "q6_k" */
    uint64_t seed;
    int n_threads; /* >= 1 */
    /* Called after each tensor is generated (may be NULL). */
    void (*progress)(void *ud, int index, int count, const char *name, int type, const int64_t *ne);
    void *progress_ud;
} es_random_model_params;

es_random_model_params es_random_model_default_params(void);

/* Names accepted for like and mix, NULL-terminated. */
extern const char *const es_random_model_likes[];
extern const char *const es_random_model_mixes[];

/* Generates the model and writes it to path (atomically). On success *n_params (if
 * not NULL) gets the parameter count. Fails with ES_ERR_INVALID_ARG for an unknown
 * like/mix, ES_ERR_NOMEM or ES_ERR_IO otherwise. */
es_status es_random_model_write(const es_random_model_params *params, const char *path,
                                uint64_t *n_params);

#endif /* ES_RANDOM_MODEL_H */
