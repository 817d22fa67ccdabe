/*
 * matmul.c — y[n_tok][n_out] = x[n_tok][n_in] · W[n_out][n_in]ᵀ for every computable type.
 *
 * Steps: (1) the activation rows are converted once to the weight type's vec_dot_type
 * (into wsp; F32 activations are used in place); (2) the output rows are cut into
 * chunks that the threads take from a shared counter (so a thread slowed down by
 * another process does not hold up the rest); (3) each chunk is computed by one of
 * three kernels:
 *   - rows × vec_dot: any type; the decode case (n_tok == 1), memory bound;
 *   - tiled f32 (matmul_avx2.c, or matmul_avx512.c where the CPU has AVX-512F):
 *     F32/F16/BF16 weights, n_tok > 1;
 *   - packed integer (matmul_q_avx2.c): Q4_0/Q4_1/Q5_0/Q5_1/Q8_0/Q4_K/Q5_K/Q6_K,
 *     n_tok >= 4, AVX-VNNI;
 *   - tiles in vec_dot's order (quants_avx2.c, quants_k_avx2.c: Q4_0/Q5_0/Q4_1/Q5_1/Q8_0/
 *     Q2_K..Q6_K; matmul_q8_avx512.c for Q8_0 with AVX-512 VNNI): prompts of those types
 *     without AVX-VNNI, and every batch of them in the batch-invariant mode.
 * All of them give the same sums up to float rounding (integer block sums are exact).
 */
#include "matmul.h"

#include "common.h"
#include "kernels.h"
#include "types.h"

#include <stdatomic.h>
#include <string.h>

#define ES_MM_ALIGN 64
#define ES_MM_VNNI_MIN_TOK 4 /* below this, packing costs more than it saves */
/* The AVX-512 VNNI Q8_0 kernel repacks its weight panels on every call: below this many tokens
 * the AVX2 tiles of the same order are faster (4864x896, 2 threads: 0.11 vs 0.39 ms at 2 tokens,
 * even at 32, 2.2 vs 2.5 ms at 64) */
#define ES_MM_Q8_AVX512_MIN_TOK 32

static size_t align_up(size_t v) {
    return (v + ES_MM_ALIGN - 1) & ~(size_t)(ES_MM_ALIGN - 1);
}

/* Bytes of one converted activation row. */
static size_t act_row_bytes(const es_type_traits *t, int64_t n_in) {
    return align_up(es_row_size(t->vec_dot_type, n_in));
}

/* Row stride of the float activation scales (es_vec_dot_tiles_fn's xd): tiles read 4 tokens at
 * a time. */
static size_t xd_ld(int64_t n_tok) {
    return ((size_t)n_tok + 3) & ~(size_t)3;
}

size_t es_matmul_wsize(int type, int64_t n_in, int64_t n_tok) {
    const es_type_traits *t = es_type_get(type);
    if (!t || n_in < 0 || n_tok < 0) return 0;
    size_t total, info = 0;
    if (t->vec_dot_type == ES_TYPE_F32) {
#ifndef ES_NO_SIMD
        /* transposed activation tiles of the AVX-512 broadcast path */
        if (!es_mul_size((size_t)((n_tok + ES_XT_W - 1) / ES_XT_W) * ES_XT_W,
                         (size_t)n_in * sizeof(float), &total))
            return SIZE_MAX;
        return total;
#else
        return 0;
#endif
    }
    if (!es_mul_size(act_row_bytes(t, n_in), (size_t)n_tok, &total)) return SIZE_MAX;
#ifndef ES_NO_SIMD
    /* after the rows, one of: es_xinfo per token and block for the packed integer path, or the
     * float block scales of Q8_0 activations for the tiles */
    const int gs = es_group_size_avxvnni(type);
    if (gs > 0 && !es_mul_size((size_t)n_tok * (size_t)(n_in / gs), sizeof(es_xinfo), &info))
        return SIZE_MAX;
    size_t xd = 0;
    if (t->vec_dot_type == ES_TYPE_Q8_0 &&
        !es_mul_size(xd_ld(n_tok) * (size_t)(n_in / ES_QK), sizeof(float), &xd))
        return SIZE_MAX;
    if (!es_add_size(total, align_up(ES_MAX(info, xd)), &total)) return SIZE_MAX;
#endif
    (void)info;
    return total;
}

typedef enum {
    PATH_VEC_DOT,
    PATH_TILED_F32,
    PATH_PACKED_Q,
    PATH_Q8_AVX512,
    PATH_VEC_DOT_TILES /* es_type_traits.vec_dot_tiles */
} mm_path;

typedef struct {
    const uint8_t *W; /* [n_out] rows of w_row bytes */
    int64_t n_out;
    float *y;      /* [n_tok][n_out] */
    int64_t chunk; /* output rows per chunk */
    int64_t first; /* index of its first chunk among all the parts' chunks */
} mm_part;

typedef struct {
    const es_type_traits *tt;
    es_vec_dot_fn dot;         /* tt->vec_dot, or tt->vec_dot_llamacpp for llama.cpp's order */
    es_vec_dot_tiles_fn tiles; /* PATH_VEC_DOT_TILES: the tiles of dot */
    int type;
    mm_path path;
    size_t w_row;
    int64_t n_in;
    const float *x;    /* [n_tok][n_in] */
    const uint8_t *xq; /* [n_tok] rows of x_row bytes in vec_dot_type (x itself for F32) */
    size_t x_row;
    void *xinfo; /* es_xinfo [n_tok][n_in / group_size] (packed path) */
    float *xd;   /* tiles over Q8_0 activations: block scales [n_in / 32][xd_ld], or NULL */
    size_t xd_ld;
    int group_size; /* packed path: weights per scale group */
    int64_t n_tok;
    float *xt; /* AVX-512 broadcast path: x transposed, [ceil(n_tok/W)][n_in][W] (W = ES_XT_W), or
                  NULL */
    mm_part part[ES_MATMUL_MAX_PARTS];
    int n_parts;
    int64_t n_chunks;  /* over all parts */
    atomic_llong next; /* index of the next free chunk */
} mm_task;

/* Converts the activation rows, split over threads. */
static void convert_task(void *p, int ith, int nth) {
    mm_task *t = p;
    const es_type_traits *vt = es_type_get(t->tt->vec_dot_type);
    for (int64_t i = ith; i < t->n_tok; i += nth) {
        uint8_t *row = (uint8_t *)t->xq + (size_t)i * t->x_row;
        vt->from_float(t->x + i * t->n_in, row, t->n_in);
        if (t->xd) { /* the tiles' float copy of the block scales, exact */
            const es_block_q8_0 *b = (const es_block_q8_0 *)row;
            for (int64_t k = 0; k < t->n_in / ES_QK; k++)
                t->xd[(size_t)k * t->xd_ld + (size_t)i] = es_fp16_to_fp32(b[k].d);
        }
#ifndef ES_NO_SIMD
        if (t->path == PATH_PACKED_Q)
            es_xinfo_avxvnni(t->type, row, t->n_in,
                             (es_xinfo *)t->xinfo + i * (t->n_in / t->group_size));
#endif
    }
}

#ifndef ES_NO_SIMD
/* Transposes the activations for the AVX-512 broadcast path: the groups of 16 tokens of
 * whole tiles (the last one zero-padded), split over threads. */
static void pack_xt_task(void *p, int ith, int nth) {
    mm_task *t = p;
    const int64_t n_groups = (t->n_tok + ES_XT_W - 1) / ES_XT_W * (ES_XT_W / 16);
    const int64_t per = (n_groups + nth - 1) / nth, g0 = ES_MIN(n_groups, per * ith);
    es_pack_xt_avx512(t->x, t->n_in, t->n_tok, t->xt, g0, ES_MIN(n_groups, g0 + per));
}
#endif

/* Weight bytes a block of rows_vec_dot keeps in cache while every token passes over it. */
#define ES_MM_ROW_BLOCK_BYTES 16384

static void rows_vec_dot(const mm_task *t, const mm_part *p, int64_t r0, int64_t r1) {
    const es_vec_dot_fn dot = t->dot;
    /* rows in blocks of ~16 KB, the tokens inside: with many tokens (a batch of sequences in
     * the batch-invariant mode, whose products all come here) each weight row is read from
     * memory once, not once per token. Each y[tok][r] is the same one vec_dot call either way. */
    const int64_t rb = ES_MAX(1, ES_MM_ROW_BLOCK_BYTES / (int64_t)t->w_row);
    for (int64_t b0 = r0; b0 < r1; b0 += rb) {
        const int64_t b1 = ES_MIN(r1, b0 + rb);
        for (int64_t tok = 0; tok < t->n_tok; tok++) {
            const uint8_t *xr = t->xq + (size_t)tok * t->x_row;
            float *yr = p->y + tok * p->n_out;
            for (int64_t r = b0; r < b1; r++)
                dot(t->n_in, &yr[r], p->W + (size_t)r * t->w_row, xr);
        }
    }
}

/* Rows [r0, r1) of part p by the task's kernel. */
static void rows_chunk(const mm_task *t, const mm_part *p, int64_t r0, int64_t r1) {
    switch (t->path) {
#ifndef ES_NO_SIMD
    case PATH_TILED_F32:
        if (t->xt)
            es_matmul_xt_avx512(t->type, p->W, t->w_row, t->n_in, t->xt, t->n_tok, p->y, p->n_out,
                                r0, r1);
        else
            (es_avx512_supported() ? es_matmul_f32act_avx512 : es_matmul_f32act_avx2)(
                t->type, p->W, t->w_row, t->n_in, t->x, t->n_tok, p->y, p->n_out, r0, r1);
        break;
    case PATH_Q8_AVX512:
        if (!es_matmul_rows_q8_0_avx512vnni(p->W, t->w_row, t->n_in, t->xq, t->x_row, t->n_tok,
                                            p->y, p->n_out, r0, r1))
            rows_vec_dot(t, p, r0, r1);
        break;
    case PATH_VEC_DOT_TILES:
        t->tiles(p->W, t->w_row, t->n_in, t->xq, t->x_row, t->xd, t->xd_ld, t->n_tok, p->y,
                 p->n_out, r0, r1);
        break;
    case PATH_PACKED_Q:
        es_matmul_rows_avxvnni(t->type, p->W, t->w_row, t->n_in, t->xq, t->x_row, t->xinfo,
                               t->n_tok, p->y, p->n_out, r0, r1);
        break;
#endif
    default: rows_vec_dot(t, p, r0, r1); break;
    }
}

/* Takes chunks of every part from the shared counter until none is left. */
static void rows_task(void *arg, int ith, int nth) {
    (void)ith;
    (void)nth;
    mm_task *t = arg;
    for (;;) {
        const int64_t c = atomic_fetch_add_explicit(&t->next, 1, memory_order_relaxed);
        if (c >= t->n_chunks) break;
        int ip = t->n_parts - 1;
        while (ip > 0 && c < t->part[ip].first)
            ip--;
        const mm_part *p = &t->part[ip];
        const int64_t r0 = (c - p->first) * p->chunk;
        rows_chunk(t, p, r0, ES_MIN(r0 + p->chunk, p->n_out));
    }
}

/* The tiles that reproduce the task's dot (vec_dot, or vec_dot_llamacpp), or NULL. */
static es_vec_dot_tiles_fn tiles_of(const es_type_traits *tt, bool llamacpp_order) {
    if (!llamacpp_order || tt->vec_dot_llamacpp == tt->vec_dot) return tt->vec_dot_tiles;
    return tt->vec_dot_tiles_llamacpp;
}

/* The batch-invariant mode: kernels whose every sum is the one-token dot's bit for bit (the
 * tiles in vec_dot's order, or in llama.cpp's where they exist: Q8_0, Q4_1, Q5_1, the
 * K-quants); the dot itself for the rest. */
static mm_path choose_path_invariant(int type, int64_t n_tok, bool llamacpp_order) {
    if (n_tok < 2) return PATH_VEC_DOT;
#ifndef ES_NO_SIMD
    if (type == ES_TYPE_Q8_0 && n_tok >= ES_MM_Q8_AVX512_MIN_TOK && es_avx512vnni_supported())
        return PATH_Q8_AVX512;
#endif
    if (tiles_of(es_type_get(type), llamacpp_order)) return PATH_VEC_DOT_TILES;
    return PATH_VEC_DOT;
}

static mm_path choose_path(int type, int64_t n_in, int64_t n_tok, bool llamacpp_order) {
#ifndef ES_NO_SIMD
    if (n_tok > 1 && es_kernels_have_avx2() &&
        (type == ES_TYPE_F32 || type == ES_TYPE_F16 || type == ES_TYPE_BF16))
        return PATH_TILED_F32;
    if (type == ES_TYPE_Q8_0 && llamacpp_order) /* its vec_dot's order, for any batch */
        return choose_path_invariant(type, n_tok, true);
    const int gs = es_group_size_avxvnni(type);
    if (n_tok >= ES_MM_VNNI_MIN_TOK && gs > 0 && n_in % gs == 0 && es_avxvnni_supported())
        return PATH_PACKED_Q;
    if (es_type_get(type)->vec_dot_tiles) /* without AVX-VNNI */
        return choose_path_invariant(type, n_tok, llamacpp_order);
#endif
    (void)type, (void)n_in, (void)n_tok, (void)llamacpp_order;
    return PATH_VEC_DOT;
}

void es_matmul(es_threadpool *tp, int type, const void *W, int64_t n_out, int64_t n_in,
               const float *x, int64_t n_tok, float *y, void *wsp) {
    es_matmul_ex(tp, type, W, n_out, n_in, x, n_tok, y, wsp, false);
}

void es_matmul_ex(es_threadpool *tp, int type, const void *W, int64_t n_out, int64_t n_in,
                  const float *x, int64_t n_tok, float *y, void *wsp, bool llamacpp_order) {
    es_matmul_bi(tp, type, W, n_out, n_in, x, n_tok, y, wsp, llamacpp_order, false);
}

void es_matmul_bi(es_threadpool *tp, int type, const void *W, int64_t n_out, int64_t n_in,
                  const float *x, int64_t n_tok, float *y, void *wsp, bool llamacpp_order,
                  bool batch_invariant) {
    const es_matmul_part part = {type, W, n_out, y};
    es_matmul_parts(tp, &part, 1, n_in, x, n_tok, wsp, llamacpp_order, batch_invariant);
}

/* Output rows a chunk of a part takes: ~8 chunks per thread for balance, whole tiles of the
 * kernel and whole 64-byte lines of each output row (threads writing one line slow each other
 * down). */
static int64_t chunk_rows(const mm_task *t, int64_t n_out, int nth) {
    const int64_t tile =
        t->path == PATH_PACKED_Q || t->path == PATH_Q8_AVX512
            ? 16
            : (t->path == PATH_TILED_F32 ? 12
                                         : (t->path == PATH_VEC_DOT_TILES ? t->tt->tile_rows : 1));
    int64_t unit = tile; /* the least common multiple of tile and 16 rows */
    while (unit % 16 != 0)
        unit += tile;
    const int64_t chunk = ES_MAX(n_out / (nth * 8), 16);
    return (chunk + unit - 1) / unit * unit;
}

void es_matmul_parts(es_threadpool *tp, const es_matmul_part *parts, int n_parts, int64_t n_in,
                     const float *x, int64_t n_tok, void *wsp, bool llamacpp_order,
                     bool batch_invariant) {
    if (n_parts <= 0 || n_tok <= 0 || n_in < 0) return;
    /* one conversion and one pass of the pool serve parts of one type; others go one by one */
    bool one_type = n_parts <= ES_MATMUL_MAX_PARTS;
    for (int i = 1; i < n_parts && one_type; i++)
        one_type = parts[i].type == parts[0].type;
    if (!one_type) {
        for (int i = 0; i < n_parts; i++)
            es_matmul_parts(tp, &parts[i], 1, n_in, x, n_tok, wsp, llamacpp_order, batch_invariant);
        return;
    }
    const int type = parts[0].type;
    const es_type_traits *tt = es_type_get(type);
    if (!tt || !tt->can_compute) return;
    if (n_in == 0) { /* empty sums */
        for (int i = 0; i < n_parts; i++)
            if (parts[i].n_out > 0)
                memset(parts[i].y, 0, sizeof(float) * (size_t)parts[i].n_out * (size_t)n_tok);
        return;
    }
    if (es_row_size(type, n_in) == 0)
        return; /* n_in not a whole number of blocks: checked at load */
    mm_task t = {
        .tt = tt,
        .dot = llamacpp_order ? tt->vec_dot_llamacpp : tt->vec_dot,
        /* prompts outside the batch-invariant mode take llama.cpp's order where it has tiles
         * (Q4_K: what llama.cpp's prompt path computes; its decode, like our vec_dot, sums
         * otherwise) */
        .tiles = !batch_invariant && tt->vec_dot_tiles_llamacpp ? tt->vec_dot_tiles_llamacpp
                                                                : tiles_of(tt, llamacpp_order),
        .type = type,
        .path = batch_invariant ? choose_path_invariant(type, n_tok, llamacpp_order)
                                : choose_path(type, n_in, n_tok, llamacpp_order),
#ifndef ES_NO_SIMD
        .group_size = es_group_size_avxvnni(type),
#endif
        .w_row = es_row_size(type, n_in),
        .n_in = n_in,
        .x = x,
        .n_tok = n_tok,
    };
    const int nth = es_threadpool_size(tp);
    for (int i = 0; i < n_parts; i++) {
        if (parts[i].n_out <= 0) continue;
        mm_part *p = &t.part[t.n_parts++];
        *p = (mm_part){.W = parts[i].W, .n_out = parts[i].n_out, .y = parts[i].y};
        p->chunk = chunk_rows(&t, p->n_out, nth);
        p->first = t.n_chunks;
        t.n_chunks += (p->n_out + p->chunk - 1) / p->chunk;
    }
    if (t.n_parts == 0) return;
    if (tt->vec_dot_type == ES_TYPE_F32) {
        t.xq = (const uint8_t *)x;
        t.x_row = (size_t)n_in * sizeof(float);
#ifndef ES_NO_SIMD
        if (t.path == PATH_TILED_F32 && n_tok >= ES_XT_MIN_TOK && es_avx512_supported()) {
            t.xt = wsp;
            es_threadpool_run(tp, pack_xt_task, &t);
        }
#endif
    } else {
        t.xq = wsp;
        t.x_row = act_row_bytes(tt, n_in);
        t.xinfo = (uint8_t *)wsp + t.x_row * (size_t)n_tok;
        if (t.path == PATH_VEC_DOT_TILES && tt->vec_dot_type == ES_TYPE_Q8_0) {
            t.xd = t.xinfo; /* the two never serve one product */
            t.xd_ld = xd_ld(n_tok);
            for (int64_t k = 0; k < n_in / ES_QK; k++) /* the lanes past n_tok */
                for (size_t j = (size_t)n_tok; j < t.xd_ld; j++)
                    t.xd[(size_t)k * t.xd_ld + j] = 0.0f;
        }
        if (n_tok == 1)
            convert_task(&t, 0, 1);
        else
            es_threadpool_run(tp, convert_task, &t);
    }
    atomic_init(&t.next, 0);
    es_threadpool_run(tp, rows_task, &t);
}

/* ---- small f32 products (attention) ---- */

/* The plain loops: the reference, and the fallback without SIMD. */
static void gemm_nn_ref(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda,
                        const float *B, int64_t ldb, float *C, int64_t ldc, bool acc) {
    for (int64_t m = 0; m < M; m++) {
        float *c = C + m * ldc;
        if (!acc)
            for (int64_t n = 0; n < N; n++)
                c[n] = 0.0f;
        for (int64_t k = 0; k < K; k++) {
            const float a = A[m * lda + k];
            const float *b = B + k * ldb;
            for (int64_t n = 0; n < N; n++)
                c[n] += a * b[n];
        }
    }
}

typedef void (*gemm_fn)(int64_t, int64_t, int64_t, const float *, int64_t, const float *, int64_t,
                        float *, int64_t, bool);

static gemm_fn gemm_nn_impl(void) {
#ifndef ES_NO_SIMD
    if (es_avx512_supported()) return es_gemm_nn_avx512;
    if (es_kernels_have_avx2()) return es_gemm_nn_avx2;
#endif
    return gemm_nn_ref;
}

void es_gemm_nn(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B,
                int64_t ldb, float *C, int64_t ldc, bool acc) {
    if (M <= 0 || N <= 0) return;
    gemm_nn_impl()(M, N, K, A, lda, B, ldb, C, ldc, acc);
}

#define ES_GEMM_NT_NB 64  /* rows of B transposed per block */
#define ES_GEMM_NT_KB 128 /* k per block */

void es_gemm_nt(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B,
                int64_t ldb, float *C, int64_t ldc, bool acc) {
    if (M <= 0 || N <= 0) return;
    const gemm_fn nn = gemm_nn_impl();
    float bt[ES_GEMM_NT_KB * ES_GEMM_NT_NB] __attribute__((aligned(64))); /* [kb][nb] */
    for (int64_t n0 = 0; n0 < N; n0 += ES_GEMM_NT_NB) {
        const int64_t nb = ES_MIN(ES_GEMM_NT_NB, N - n0);
        if (K <= 0) {
            nn(M, nb, 0, A, lda, bt, nb, C + n0, ldc, acc);
            continue;
        }
        for (int64_t k0 = 0; k0 < K; k0 += ES_GEMM_NT_KB) {
            const int64_t kb = ES_MIN(ES_GEMM_NT_KB, K - k0);
            for (int64_t j = 0; j < nb; j++) {
                const float *row = B + (n0 + j) * ldb + k0;
                for (int64_t k = 0; k < kb; k++)
                    bt[k * nb + j] = row[k];
            }
            nn(M, nb, kb, A + k0, lda, bt, nb, C + n0, ldc, acc || k0 > 0);
        }
    }
}
