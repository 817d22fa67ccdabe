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

#include "emosteer.h" /* ES_TYPE_COUNT */
#include "threadpool.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Q4_K matrices interleaved once at load by es_repack_q4_K_x8 (kernels.h): an internal type id,
 * never read from a file (es_type_layout_get does not know it). n_out a multiple of 8,
 * es_q4_K_x8_size bytes; es_matmul* take it like any type, every product in llama.cpp's Q4_K
 * order whatever the batch or mode (vec_dot_llamacpp's bits, so batch-invariant too). Without
 * AVX2 (es_kernels_have_avx2()) nothing may be interleaved. */
#define ES_TYPE_Q4_K_X8 (ES_TYPE_COUNT + 1)
size_t es_q4_K_x8_size(int64_t n_out, int64_t n_in);
/* Whether a model should interleave its Q4_K matrices: AVX2, and ES_NO_REPACK unset. */
bool es_q4_K_x8_enabled(void);
/* Interleaves n_mat matrices of n_out Q4_K rows of n_in (stride bytes apart) into one owned
 * allocation (posix_memalign, free() frees it; es_q4_K_x8_size bytes per matrix), or returns NULL
 * (no memory, or a shape it does not take: n_out not a multiple of 8, n_in of 256). */
void *es_q4_K_x8_interleave(const void *W, int64_t n_out, int64_t n_in, int64_t n_mat,
                            size_t stride);

/* Scratch bytes es_matmul needs for these sizes. */
size_t es_matmul_wsize(int type, int64_t n_in, int64_t n_tok);

/* Computes y. `wsp` must hold es_matmul_wsize bytes (64-byte aligned). The type must
 * have can_compute (the caller checks at load time). */
void es_matmul(es_threadpool *tp, int type, const void *W, int64_t n_out, int64_t n_in,
               const float *x, int64_t n_tok, float *y, void *wsp);
/* The same; llamacpp_order keeps llama.cpp's summation order (kernels.h) on every path
 * (see es_numerics in emosteer.h): rows take vec_dot_llamacpp (Q4_0/Q5_0: one fma chain
 * instead of float lanes), Q8_0 prompts skip the AVX-VNNI tile. */
void es_matmul_ex(es_threadpool *tp, int type, const void *W, int64_t n_out, int64_t n_in,
                  const float *x, int64_t n_tok, float *y, void *wsp, bool llamacpp_order);
/* The same with batch_invariant: every y[tok][r] is the per-row vec_dot that a batch of
 * one token computes, whatever n_tok (es_context_params.batch_invariant): a token's
 * numbers do not depend on the other tokens of its batch. */
void es_matmul_bi(es_threadpool *tp, int type, const void *W, int64_t n_out, int64_t n_in,
                  const float *x, int64_t n_tok, float *y, void *wsp, bool llamacpp_order,
                  bool batch_invariant);

/* One matrix of es_matmul_parts: y = x · Wᵀ, W n_out rows of `type`, y [n_tok][n_out]. */
typedef struct {
    int type;
    const void *W;
    int64_t n_out;
    float *y;
} es_matmul_part;

#define ES_MATMUL_MAX_PARTS 4

/* es_matmul_bi for n_parts matrices of n_in columns that multiply the same x (q, k and v;
 * gate and up): the same y, bit for bit, as one call per part. Parts of one type (at most
 * ES_MATMUL_MAX_PARTS) share one conversion of x and one pass of the pool, whose threads take
 * chunks of rows from all of them; others are computed one by one. `wsp` as for es_matmul (the
 * type's es_matmul_wsize). */
void es_matmul_parts(es_threadpool *tp, const es_matmul_part *parts, int n_parts, int64_t n_in,
                     const float *x, int64_t n_tok, void *wsp, bool llamacpp_order,
                     bool batch_invariant);

/* One product of es_matmul_groups: y = x · Wᵀ with its own activations (W n_out rows of
 * `type`; x [n_tok][n_in]; y [n_tok][n_out]). */
typedef struct es_matmul_group {
    int type;
    const void *W;
    int64_t n_out;
    const float *x;
    int64_t n_tok;
    float *y;
} es_matmul_group;

/* Scratch bytes es_matmul_groups needs for n_groups groups of n_tok tokens in all (a bound). */
size_t es_matmul_groups_wsize(int type, int64_t n_in, int64_t n_tok, int n_groups);

/* es_matmul_bi for n_groups products of n_in columns, each with its own activations (the
 * experts of a mixture-of-experts layer, each on its own tokens): the same y, bit for bit, as
 * one call per group. The groups of one type take one conversion pass and one pass of the pool
 * whose threads take chunks of rows of every group; groups of that type with the same x and
 * n_tok one after the other (an expert's gate and up) share one conversion. `wsp`: the largest
 * es_matmul_groups_wsize of the types' groups (64-byte aligned). */
void es_matmul_groups(es_threadpool *tp, const es_matmul_group *groups, int n_groups, int64_t n_in,
                      void *wsp, bool llamacpp_order, bool batch_invariant);

/*
 * Small dense f32 products for attention (scores = Q·Kᵀ, out = P·V), on the calling
 * thread only: the caller splits the work (per head, per block of queries) over its
 * own tasks. Row strides are in floats, so heads can be read in place from a cache
 * laid out [pos][n_head * head_dim]. With acc false C is overwritten, else added to.
 *
 *   es_gemm_nn:  C[m][n] (+)= sum_k A[m][k] · B[k][n]    A: [M][lda], B: [K][ldb]
 *   es_gemm_nt:  C[m][n] (+)= sum_k A[m][k] · B[n][k]    A: [M][lda], B: [N][ldb]
 *
 * C: [M][ldc]. Register-blocked (lanes along n, no horizontal sums); es_gemm_nt
 * transposes blocks of B's rows into a small buffer first. Same results as the plain
 * loops up to float rounding (sums in k order per element).
 */
void es_gemm_nn(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B,
                int64_t ldb, float *C, int64_t ldc, bool acc);
void es_gemm_nt(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B,
                int64_t ldb, float *C, int64_t ldc, bool acc);

#endif /* ES_MATMUL_H */
