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
 *   - packed integer (matmul_q_avx2.c): Q4_0/Q4_1/Q5_0/Q5_1/Q8_0, n_tok >= 4, AVX-VNNI or
 *     AVX2;
 *   - tiles in vec_dot's order (quants_avx2.c, quants_k_avx2.c: Q4_0/Q5_0/Q4_1/Q5_1/Q8_0/
 *     Q2_K..Q6_K; matmul_q8_avx512.c for Q8_0 with AVX-512 VNNI): the other
 *     types' prompts, and every batch of them in the batch-invariant mode; Q4_K prompts in
 *     llama.cpp's order through panels with rows in vector lanes (matmul_q4k_avx2.c).
 * All of them give the same sums up to float rounding (integer block sums are exact).
 */
#include "matmul.h"

#include "common.h"
#include "kernels.h"
#include "quants_k.h"
#include "types.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

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

/* The type of a matrix's rows and activations: Q4_K for the interleaved ones. */
static int row_type(int type) {
    return type == ES_TYPE_Q4_K_X8 ? ES_TYPE_Q4_K : type;
}

size_t es_q4_K_x8_size(int64_t n_out, int64_t n_in) {
    return (size_t)((n_out + 7) / 8) * (size_t)(n_in / ES_QK_K) * sizeof(es_block_q4_Kx8);
}

bool es_q4_K_x8_enabled(void) {
#ifndef ES_NO_SIMD
    return es_kernels_have_avx2() && !es_env_switch("ES_NO_REPACK");
#else
    return false;
#endif
}

#ifndef ES_NO_SIMD
typedef struct {
    const uint8_t *W;
    uint8_t *out;
    int64_t n_out, n_in, n_mat;
    size_t stride, w_row, one;
} x8_task;

/* Groups of 8 rows, all matrices, split over threads. */
static void x8_task_run(void *p, int ith, int nth) {
    const x8_task *t = p;
    const int64_t groups = t->n_out / 8, all = groups * t->n_mat;
    const int64_t per = (all + nth - 1) / nth, g0 = ES_MIN(all, per * ith),
                  g1 = ES_MIN(all, g0 + per);
    const size_t gbytes = es_q4_K_x8_size(8, t->n_in);
    for (int64_t g = g0; g < g1; g++) {
        const int64_t e = g / groups, r = (g % groups) * 8;
        es_repack_q4_K_x8(t->W + (size_t)e * t->stride + (size_t)r * t->w_row, t->w_row, 8, t->n_in,
                          t->out + (size_t)e * t->one + (size_t)(r / 8) * gbytes);
    }
}
#endif

void *es_q4_K_x8_interleave(const void *W, int64_t n_out, int64_t n_in, int64_t n_mat,
                            size_t stride) {
#ifndef ES_NO_SIMD
    if (!es_q4_K_x8_enabled() || n_out <= 0 || n_out % 8 != 0 || n_in <= 0 || n_in % ES_QK_K != 0 ||
        n_mat <= 0)
        return NULL;
    const size_t one = es_q4_K_x8_size(n_out, n_in);
    size_t all;
    if (!es_mul_size(one, (size_t)n_mat, &all)) return NULL;
    /* not zeroed here: every byte is written below; in 2 MB pages where the kernel allows
     * (transparent huge pages on request): a 7B model's 4 GB in 4 KB pages costs a million
     * page faults at load, and the TLB misses of decode */
    void *mem = NULL;
    const size_t huge = (size_t)2 << 20;
    if (posix_memalign(&mem, all >= huge ? huge : ES_MM_ALIGN, all) != 0) return NULL;
#ifdef MADV_HUGEPAGE
    if (all >= huge) madvise(mem, all, MADV_HUGEPAGE);
#endif
    x8_task t = {W, mem, n_out, n_in, n_mat, stride, es_row_size(ES_TYPE_Q4_K, n_in), one};
    /* large matrices on every CPU (the first touch of the copy's pages costs as much as the
     * packing): a 7B model loads in half the time on two */
    const int ncpu = es_cpu_count();
    es_threadpool *tp =
        all >= ((size_t)16 << 20) && ncpu > 1 ? es_threadpool_create(ES_MIN(ncpu, 8)) : NULL;
    if (tp) {
        es_threadpool_run(tp, x8_task_run, &t);
        es_threadpool_free(tp);
    } else {
        x8_task_run(&t, 0, 1);
    }
    return mem;
#else
    (void)W, (void)n_out, (void)n_in, (void)n_mat, (void)stride;
    return NULL;
#endif
}

size_t es_matmul_wsize(int type, int64_t n_in, int64_t n_tok) {
    type = row_type(type); /* interleaved Q4_K: the same activations */
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
    const int gs = es_group_size_packed(type);
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
    PATH_VEC_DOT_TILES, /* es_type_traits.vec_dot_tiles */
    PATH_Q4K_X8         /* ES_TYPE_Q4_K_X8: every batch */
} mm_path;

/* One set of activations and how they are multiplied: converted once for every part that
 * multiplies them. */
typedef struct {
    const float *x; /* [n_tok][n_in] */
    int64_t n_tok;
    mm_path path;
    const uint8_t *xq; /* [n_tok] rows of x_row bytes in vec_dot_type (x itself for F32) */
    void *xinfo;       /* es_xinfo [n_tok][n_in / group_size] (packed path) */
    float *xd;         /* tiles over Q8_0 activations: block scales [n_in / 32][xd_ld], or NULL */
    size_t xd_ld;
    float *xt;    /* AVX-512 broadcast path: x transposed, [ceil(n_tok/W)][n_in][W] (W = ES_XT_W),
                     or NULL */
    int64_t tok0; /* its first token among the task's tokens (which thread converts which) */
} mm_act;

typedef struct {
    const uint8_t *W; /* [n_out] rows of w_row bytes */
    int64_t n_out;
    float *y; /* [n_tok][n_out] */
    const mm_act *act;
    int64_t chunk; /* output rows per chunk */
    int64_t first; /* index of its first chunk among all the parts' chunks */
} mm_part;

typedef struct {
    const es_type_traits *tt;
    es_vec_dot_fn dot;         /* tt->vec_dot, or tt->vec_dot_llamacpp for llama.cpp's order */
    es_vec_dot_tiles_fn tiles; /* PATH_VEC_DOT_TILES: the tiles of dot */
    int type;
    size_t w_row;
    int64_t n_in;
    size_t x_row;   /* bytes of a converted activation row */
    int group_size; /* packed path: weights per scale group */
    mm_act *act;    /* [n_act], in token order */
    int n_act;
    int64_t n_tok; /* over all activations */
    mm_part *part; /* [n_parts], in chunk order */
    int n_parts;
    int64_t n_chunks;  /* over all parts */
    atomic_llong next; /* index of the next free chunk */
} mm_task;

/* Converts the activation rows of every act, split over threads. */
static void convert_task(void *p, int ith, int nth) {
    mm_task *t = p;
    const es_type_traits *vt = es_type_get(t->tt->vec_dot_type);
    for (int ia = 0; ia < t->n_act; ia++) {
        const mm_act *a = &t->act[ia];
        /* token i of a is the task's token tok0 + i, which thread (tok0 + i) mod nth converts */
        for (int64_t i = ((ith - a->tok0) % nth + nth) % nth; i < a->n_tok; i += nth) {
            uint8_t *row = (uint8_t *)a->xq + (size_t)i * t->x_row;
            vt->from_float(a->x + i * t->n_in, row, t->n_in);
            if (a->xd) { /* the tiles' float copy of the block scales, exact */
                const es_block_q8_0 *b = (const es_block_q8_0 *)row;
                for (int64_t k = 0; k < t->n_in / ES_QK; k++)
                    a->xd[(size_t)k * a->xd_ld + (size_t)i] = es_fp16_to_fp32(b[k].d);
            }
#ifndef ES_NO_SIMD
            if (a->path == PATH_PACKED_Q)
                es_xinfo_packed(t->type, row, t->n_in,
                                (es_xinfo *)a->xinfo + i * (t->n_in / t->group_size));
#endif
        }
    }
}

#ifndef ES_NO_SIMD
typedef struct {
    const mm_act *act;
    int64_t n_in;
} xt_args;

/* Transposes the activations for the AVX-512 broadcast path: the groups of 16 tokens of
 * whole tiles (the last one zero-padded), split over threads. */
static void pack_xt_task(void *p, int ith, int nth) {
    const xt_args *x = p;
    const mm_act *a = x->act;
    const int64_t n_groups = (a->n_tok + ES_XT_W - 1) / ES_XT_W * (ES_XT_W / 16);
    const int64_t per = (n_groups + nth - 1) / nth, g0 = ES_MIN(n_groups, per * ith);
    es_pack_xt_avx512(a->x, x->n_in, a->n_tok, a->xt, g0, ES_MIN(n_groups, g0 + per));
}
#endif

/* Activations of at most this many elements are converted by the caller alone (a decode step:
 * one token, or the one or two rows of a few experts): a pass of the pool costs more. */
#define ES_MM_CONVERT_INLINE 16384

/* Weight bytes a block of rows_vec_dot keeps in cache while every token passes over it. */
#define ES_MM_ROW_BLOCK_BYTES 16384

static void rows_vec_dot(const mm_task *t, const mm_part *p, int64_t r0, int64_t r1) {
    const es_vec_dot_fn dot = t->dot;
    const int64_t n_in = t->n_in, n_tok = p->act->n_tok, n_out = p->n_out;
    const size_t w_row = t->w_row, x_row = t->x_row;
    const uint8_t *W = p->W, *xq = p->act->xq;
    float *y = p->y;
    /* rows in blocks of ~16 KB, the tokens inside: with many tokens (a batch of sequences in
     * the batch-invariant mode, whose products all come here) each weight row is read from
     * memory once, not once per token. Each y[tok][r] is the same one vec_dot call either way. */
    const int64_t rb = ES_MAX(1, ES_MM_ROW_BLOCK_BYTES / (int64_t)w_row);
    for (int64_t b0 = r0; b0 < r1; b0 += rb) {
        const int64_t b1 = ES_MIN(r1, b0 + rb);
        for (int64_t tok = 0; tok < n_tok; tok++) {
            const uint8_t *xr = xq + (size_t)tok * x_row;
            float *yr = y + tok * n_out;
            for (int64_t r = b0; r < b1; r++)
                dot(n_in, &yr[r], W + (size_t)r * w_row, xr);
        }
    }
}

/* Rows [r0, r1) of part p by its activations' kernel. */
static void rows_chunk(const mm_task *t, const mm_part *p, int64_t r0, int64_t r1) {
    const mm_act *a = p->act;
    switch (a->path) {
#ifndef ES_NO_SIMD
    case PATH_TILED_F32:
        if (a->xt)
            es_matmul_xt_avx512(t->type, p->W, t->w_row, t->n_in, a->xt, a->n_tok, p->y, p->n_out,
                                r0, r1);
        else
            (es_avx512_supported() ? es_matmul_f32act_avx512 : es_matmul_f32act_avx2)(
                t->type, p->W, t->w_row, t->n_in, a->x, a->n_tok, p->y, p->n_out, r0, r1);
        break;
    case PATH_Q8_AVX512:
        if (!es_matmul_rows_q8_0_avx512vnni(p->W, t->w_row, t->n_in, a->xq, t->x_row, a->n_tok,
                                            p->y, p->n_out, r0, r1))
            rows_vec_dot(t, p, r0, r1);
        break;
    case PATH_VEC_DOT_TILES:
        t->tiles(p->W, t->w_row, t->n_in, a->xq, t->x_row, a->xd, a->xd_ld, a->n_tok, p->y,
                 p->n_out, r0, r1);
        break;
    case PATH_Q4K_X8:
        es_matmul_rows_q4_K_x8(p->W, t->n_in, a->xq, t->x_row, a->n_tok, p->y, p->n_out, r0, r1);
        break;
    case PATH_PACKED_Q:
        es_matmul_rows_packed(t->type, p->W, t->w_row, t->n_in, a->xq, t->x_row, a->xinfo, a->n_tok,
                              p->y, p->n_out, r0, r1);
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
        int lo = 0, hi = t->n_parts - 1; /* the part of chunk c (first ascending) */
        while (lo < hi) {
            const int mid = (lo + hi + 1) / 2;
            if (t->part[mid].first <= c)
                lo = mid;
            else
                hi = mid - 1;
        }
        const mm_part *p = &t->part[lo];
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
    if (type == ES_TYPE_Q4_K_X8) return PATH_Q4K_X8;
    if (n_tok < 2) return PATH_VEC_DOT;
#ifndef ES_NO_SIMD
    if (type == ES_TYPE_Q8_0 && n_tok >= ES_MM_Q8_AVX512_MIN_TOK && es_avx512vnni_supported())
        return PATH_Q8_AVX512;
#endif
    if (tiles_of(es_type_get(type), llamacpp_order)) return PATH_VEC_DOT_TILES;
    return PATH_VEC_DOT;
}

static mm_path choose_path(int type, int64_t n_in, int64_t n_tok, bool llamacpp_order) {
    if (type == ES_TYPE_Q4_K_X8) return PATH_Q4K_X8;
#ifndef ES_NO_SIMD
    if (n_tok > 1 && es_kernels_have_avx2() &&
        (type == ES_TYPE_F32 || type == ES_TYPE_F16 || type == ES_TYPE_BF16))
        return PATH_TILED_F32;
    if (type == ES_TYPE_Q8_0 && llamacpp_order) /* its vec_dot's order, for any batch */
        return choose_path_invariant(type, n_tok, true);
    const int gs = es_group_size_packed(type);
    if (n_tok >= ES_MM_VNNI_MIN_TOK && gs > 0 && n_in % gs == 0 && es_kernels_have_avx2())
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

/* Weight bytes x tokens a chunk computes at least: smaller chunks (a decode step of a small
 * matrix) cost more in taking them from the shared counter than they save in balance. */
#define ES_MM_MIN_CHUNK_WORK 32768

/* Output rows a chunk of a part takes: ~8 chunks per thread for balance, at least
 * ES_MM_MIN_CHUNK_WORK, whole tiles of the kernel and whole 64-byte lines of each output row
 * (threads writing one line slow each other down). */
static int64_t chunk_rows(const mm_task *t, mm_path path, int64_t n_out, int64_t n_tok, int nth) {
    const int64_t tile =
        path == PATH_PACKED_Q || path == PATH_Q8_AVX512 || path == PATH_Q4K_X8
            ? 16
            : (path == PATH_TILED_F32 ? 12 : (path == PATH_VEC_DOT_TILES ? t->tt->tile_rows : 1));
    int64_t unit = tile; /* the least common multiple of tile and 16 rows */
    while (unit % 16 != 0)
        unit += tile;
    const int64_t min_rows = ES_MM_MIN_CHUNK_WORK / ((int64_t)t->w_row * ES_MAX(n_tok, 1)) + 1;
    const int64_t chunk = ES_MAX(n_out / (nth * 8), ES_MAX(min_rows, 16));
    return (chunk + unit - 1) / unit * unit;
}

/* The task for weights of `type` with n_in columns, no activations or parts yet; false when
 * there is nothing to compute (a type that cannot be, n_in not whole blocks: checked at load). */
static bool task_init(mm_task *t, int type, int64_t n_in, bool llamacpp_order,
                      bool batch_invariant) {
    const es_type_traits *tt = es_type_get(row_type(type));
    if (!tt || !tt->can_compute || n_in <= 0 || es_row_size(row_type(type), n_in) == 0)
        return false;
    *t = (mm_task){
        .tt = tt,
        .dot = llamacpp_order ? tt->vec_dot_llamacpp : tt->vec_dot,
        /* prompts outside the batch-invariant mode take llama.cpp's order where it has tiles
         * (Q4_K: what llama.cpp's prompt path computes; its decode, like our vec_dot, sums
         * otherwise) */
        .tiles = !batch_invariant && tt->vec_dot_tiles_llamacpp ? tt->vec_dot_tiles_llamacpp
                                                                : tiles_of(tt, llamacpp_order),
        .type = type,
#ifndef ES_NO_SIMD
        .group_size = es_group_size_packed(type),
#endif
        /* interleaved: a row's share of its group, so that row r (a multiple of 8) starts its
         * group */
        .w_row = type == ES_TYPE_Q4_K_X8 ? es_q4_K_x8_size(8, n_in) / 8 : es_row_size(type, n_in),
        .n_in = n_in,
        .x_row = tt->vec_dot_type == ES_TYPE_F32 ? (size_t)n_in * sizeof(float)
                                                 : act_row_bytes(tt, n_in),
    };
    return true;
}

/* Adds activations x [n_tok][n_in] to the task, their scratch at *wsp (advanced past it). */
static mm_act *task_add_act(mm_task *t, mm_act *a, const float *x, int64_t n_tok, uint8_t **wsp,
                            bool llamacpp_order, bool batch_invariant) {
    *a = (mm_act){.x = x, .n_tok = n_tok, .tok0 = t->n_tok};
    a->path = batch_invariant ? choose_path_invariant(t->type, n_tok, llamacpp_order)
                              : choose_path(t->type, t->n_in, n_tok, llamacpp_order);
    uint8_t *w = *wsp;
    *wsp += align_up(es_matmul_wsize(t->type, t->n_in, n_tok));
    if (t->tt->vec_dot_type == ES_TYPE_F32) {
        a->xq = (const uint8_t *)x;
#ifndef ES_NO_SIMD
        if (a->path == PATH_TILED_F32 && n_tok >= ES_XT_MIN_TOK && es_avx512_supported())
            a->xt = (float *)w;
#endif
    } else {
        a->xq = w;
        a->xinfo = w + t->x_row * (size_t)n_tok;
        if (a->path == PATH_VEC_DOT_TILES && t->tt->vec_dot_type == ES_TYPE_Q8_0) {
            a->xd = a->xinfo; /* the two never serve one product */
            a->xd_ld = xd_ld(n_tok);
            for (int64_t k = 0; k < t->n_in / ES_QK; k++) /* the lanes past n_tok */
                for (size_t j = (size_t)n_tok; j < a->xd_ld; j++)
                    a->xd[(size_t)k * a->xd_ld + j] = 0.0f;
        }
    }
    t->n_tok += n_tok;
    t->n_act++;
    return a;
}

/* Adds a part multiplying activations a. */
static void task_add_part(mm_task *t, mm_part *p, const void *W, int64_t n_out, float *y,
                          const mm_act *a, int nth) {
    *p = (mm_part){.W = W, .n_out = n_out, .y = y, .act = a};
    p->chunk = chunk_rows(t, a->path, n_out, a->n_tok, nth);
    p->first = t->n_chunks;
    t->n_chunks += (n_out + p->chunk - 1) / p->chunk;
    t->n_parts++;
}

/* Converts every activation (one pass of the pool) and computes every part (another). */
static void task_run(es_threadpool *tp, mm_task *t) {
    if (t->n_parts == 0) return;
    if (t->tt->vec_dot_type == ES_TYPE_F32) {
#ifndef ES_NO_SIMD
        for (int i = 0; i < t->n_act; i++)
            if (t->act[i].xt) {
                xt_args xa = {&t->act[i], t->n_in};
                es_threadpool_run(tp, pack_xt_task, &xa);
            }
#endif
    } else if (t->n_tok * t->n_in <= ES_MM_CONVERT_INLINE) {
        convert_task(t, 0, 1);
    } else {
        es_threadpool_run(tp, convert_task, t);
    }
    atomic_init(&t->next, 0);
    es_threadpool_run(tp, rows_task, t);
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
    if (n_in == 0) { /* empty sums */
        for (int i = 0; i < n_parts; i++)
            if (parts[i].n_out > 0)
                memset(parts[i].y, 0, sizeof(float) * (size_t)parts[i].n_out * (size_t)n_tok);
        return;
    }
    mm_task t;
    mm_act act;
    mm_part part[ES_MATMUL_MAX_PARTS];
    if (!task_init(&t, parts[0].type, n_in, llamacpp_order, batch_invariant)) return;
    t.act = &act;
    t.part = part;
    uint8_t *w = wsp;
    const mm_act *a = task_add_act(&t, &act, x, n_tok, &w, llamacpp_order, batch_invariant);
    for (int i = 0; i < n_parts; i++)
        if (parts[i].n_out > 0)
            task_add_part(&t, &part[t.n_parts], parts[i].W, parts[i].n_out, parts[i].y, a,
                          es_threadpool_size(tp));
    task_run(tp, &t);
}

/* Groups per pass of es_matmul_groups (its records live on the stack). */
#define ES_MM_GROUPS_PER_PASS 64

size_t es_matmul_groups_wsize(int type, int64_t n_in, int64_t n_tok, int n_groups) {
    /* each group's scratch is es_matmul_wsize of its tokens, rounded up to 64 bytes; that is
     * linear in the tokens but for rounding: the AVX-512 tiles of 32 tokens and the Q8_0 scales
     * of 4 tokens, and three alignments */
    const int64_t g = n_groups < 0 ? 0 : n_groups;
    const size_t ws = es_matmul_wsize(type, n_in, n_tok + 32 * g);
    size_t pad;
    if (ws == SIZE_MAX || !es_mul_size((size_t)g, 3 * ES_MM_ALIGN, &pad) ||
        !es_add_size(ws, pad, &pad))
        return SIZE_MAX;
    return pad;
}

/* The groups of one type among groups[0, n), in passes of ES_MM_GROUPS_PER_PASS. */
static void groups_of_type(es_threadpool *tp, int type, const es_matmul_group *groups, int n,
                           int64_t n_in, void *wsp, bool llamacpp_order, bool batch_invariant) {
    for (int i = 0; i < n;) {
        mm_task t;
        mm_act act[ES_MM_GROUPS_PER_PASS];
        mm_part part[ES_MM_GROUPS_PER_PASS];
        if (!task_init(&t, type, n_in, llamacpp_order, batch_invariant)) return;
        t.act = act;
        t.part = part;
        uint8_t *w = wsp;
        const mm_act *a = NULL;
        for (; i < n && t.n_parts < ES_MM_GROUPS_PER_PASS; i++) {
            const es_matmul_group *g = &groups[i];
            if (g->type != type || g->n_tok <= 0 || g->n_out <= 0) continue;
            if (!a || a->x != g->x || a->n_tok != g->n_tok) /* else: the same rows, converted */
                a = task_add_act(&t, &act[t.n_act], g->x, g->n_tok, &w, llamacpp_order,
                                 batch_invariant);
            task_add_part(&t, &part[t.n_parts], g->W, g->n_out, g->y, a, es_threadpool_size(tp));
        }
        task_run(tp, &t);
    }
}

void es_matmul_groups(es_threadpool *tp, const es_matmul_group *groups, int n_groups, int64_t n_in,
                      void *wsp, bool llamacpp_order, bool batch_invariant) {
    if (n_in == 0) { /* empty sums */
        for (int i = 0; i < n_groups; i++)
            if (groups[i].n_out > 0 && groups[i].n_tok > 0)
                memset(groups[i].y, 0,
                       sizeof(float) * (size_t)groups[i].n_out * (size_t)groups[i].n_tok);
        return;
    }
    /* one type at a time, in the order they first appear (an expert's gate and up may differ) */
    bool done[ES_TYPE_Q4_K_X8 + 1] = {false};
    for (int i = 0; i < n_groups; i++) {
        const int type = groups[i].type;
        if (type < 0 || type > ES_TYPE_Q4_K_X8 || done[type]) continue;
        done[type] = true;
        groups_of_type(tp, type, groups + i, n_groups - i, n_in, wsp, llamacpp_order,
                       batch_invariant);
    }
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
