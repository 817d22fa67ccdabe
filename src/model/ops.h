/*
 * ops.h — internal: the few ops of the forward pass (forward.c) that its other parts
 * (moe.c, mla.c) call too, so that every part computes them the same way. Each splits
 * its work over the context's thread pool as (ith, nth) tasks.
 */
#ifndef ES_OPS_H
#define ES_OPS_H

#include "context.h"

#include <stdint.h>

/* Runs fn over the pool, or on the calling thread alone below a small amount of work
 * (floats touched). */
void es_op_run(es_context *ctx, es_task_fn fn, void *arg, int64_t work);

/* out[r] = x[r] / sqrt(mean(x[r]²) + norm_eps) * w for n_rows rows of n (out may be x),
 * as llama.cpp's CPU backend rounds it. */
void es_op_rmsnorm(es_context *ctx, float *out, const float *x, const float *w, int64_t n_rows,
                   int n);

/* y[n_tok][W.n_out] = x[n_tok][W.n_in] · Wᵀ, with the context's numerics and scratch. */
void es_op_matmul(es_context *ctx, const es_matrix *W, const float *x, int n_tok, float *y);
/* y[i] = x · W[i]ᵀ for n (<= ES_MATMUL_MAX_PARTS) matrices of the same n_in that multiply the
 * same x: one conversion of x and one pass of the pool where they share a type. */
void es_op_matmul_parts(es_context *ctx, const es_matrix *const *W, float *const *y, int n,
                        const float *x, int n_tok);
/* es_matmul_groups over the context's pool and scratch, with its numerics. */
void es_op_matmul_groups(es_context *ctx, const struct es_matmul_group *g, int n, int64_t n_in);

/* hb = act(gate) * up, rows of n_ff (the family's activation: SiLU or GELU-tanh). */
void es_op_glu(es_context *ctx, float *hb, const float *gate, const float *up, int n_tok, int n_ff);

/* Rows [r0, r1) of n rows for thread ith of nth. */
static inline void es_op_split(int64_t n, int ith, int nth, int64_t *r0, int64_t *r1) {
    const int64_t per = (n + nth - 1) / nth;
    *r0 = ES_MIN(n, per * ith);
    *r1 = ES_MIN(n, *r0 + per);
}

#endif /* ES_OPS_H */
