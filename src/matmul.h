/*
 * matmul.h — y = x · Wᵀ for any weight type, the one matrix product of the forward pass.
 *
 *   W: n_out rows of n_in elements of `type`, rows contiguous (es_row_size bytes each),
 *      used in place (e.g. straight from the mmap).
 *   x: float[n_tok][n_in]      activations
 *   y: float[n_tok][n_out]     result (overwritten)
 *
 * n_tok == 1 is the decode case (matrix-vector); n_tok > 1 the prompt case
 * (matrix-matrix, tiled so that each weight row is read once per tile of tokens).
 * Activations are first converted to the weight type's vec_dot_type (e.g. Q8_0 for
 * Q4_0 weights, as llama.cpp does) into `wsp`, then rows are split over the pool.
 */
#ifndef ES_MATMUL_H
#define ES_MATMUL_H

#include "threadpool.h"

#include <stddef.h>
#include <stdint.h>

/* Scratch bytes es_matmul needs for these sizes. */
size_t es_matmul_wsize(int type, int64_t n_in, int64_t n_tok);

/* Computes y. `wsp` must hold es_matmul_wsize bytes (64-byte aligned). The type must
 * have can_compute (the caller checks at load time). */
void es_matmul(es_threadpool *tp, int type, const void *W, int64_t n_out, int64_t n_in,
               const float *x, int64_t n_tok, float *y, void *wsp);

#endif /* ES_MATMUL_H */
