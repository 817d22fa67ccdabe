/*
 * quants_avx2.c — AVX2/FMA/F16C versions of the kernels in quants.c (same signatures,
 * same results up to float rounding; integer block sums are exact). Compiled with
 * -mavx2 -mfma -mf16c and only called when the CPU has all three.
 */
#include "kernels.h"
#include "simd_avx2.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

/* ---- F32 ---- */

static void vec_dot_f32(int64_t n, float *s, const void *xv, const void *yv) {
    const float *x = xv, *y = yv;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8), a1);
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 16), _mm256_loadu_ps(y + i + 16), a2);
        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 24), _mm256_loadu_ps(y + i + 24), a3);
    }
    for (; i + 8 <= n; i += 8)
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0);
    float sum = es_hsum_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; i < n; i++)
        sum += x[i] * y[i];
    *s = sum;
}

/* ---- F16 ---- */

static inline __m256 load_f16x8(const uint16_t *p) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

static void to_float_f16(const void *xv, float *y, int64_t n) {
    const uint16_t *x = xv;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        _mm256_storeu_ps(y + i, load_f16x8(x + i));
        _mm256_storeu_ps(y + i + 8, load_f16x8(x + i + 8));
    }
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, load_f16x8(x + i));
    for (; i < n; i++)
        y[i] = _cvtsh_ss(x[i]);
}

static void from_float_f16(const float *x, void *yv, int64_t n) {
    uint16_t *y = yv;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(y + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++)
        y[i] = es_fp32_to_fp16(x[i]);
}

static void vec_dot_f16(int64_t n, float *s, const void *xv, const void *yv) {
    const uint16_t *x = xv;
    const float *y = yv;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_fmadd_ps(load_f16x8(x + i), _mm256_loadu_ps(y + i), a0);
        a1 = _mm256_fmadd_ps(load_f16x8(x + i + 8), _mm256_loadu_ps(y + i + 8), a1);
        a2 = _mm256_fmadd_ps(load_f16x8(x + i + 16), _mm256_loadu_ps(y + i + 16), a2);
        a3 = _mm256_fmadd_ps(load_f16x8(x + i + 24), _mm256_loadu_ps(y + i + 24), a3);
    }
    for (; i + 8 <= n; i += 8)
        a0 = _mm256_fmadd_ps(load_f16x8(x + i), _mm256_loadu_ps(y + i), a0);
    float sum = es_hsum_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; i < n; i++)
        sum += _cvtsh_ss(x[i]) * y[i];
    *s = sum;
}

/* ---- BF16 ---- */

static inline __m256 load_bf16x8(const uint16_t *p) {
    __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}

static void to_float_bf16(const void *xv, float *y, int64_t n) {
    const uint16_t *x = xv;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, load_bf16x8(x + i));
    for (; i < n; i++)
        y[i] = es_bf16_to_fp32(x[i]);
}

static void vec_dot_bf16(int64_t n, float *s, const void *xv, const void *yv) {
    const uint16_t *x = xv;
    const float *y = yv;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_fmadd_ps(load_bf16x8(x + i), _mm256_loadu_ps(y + i), a0);
        a1 = _mm256_fmadd_ps(load_bf16x8(x + i + 8), _mm256_loadu_ps(y + i + 8), a1);
        a2 = _mm256_fmadd_ps(load_bf16x8(x + i + 16), _mm256_loadu_ps(y + i + 16), a2);
        a3 = _mm256_fmadd_ps(load_bf16x8(x + i + 24), _mm256_loadu_ps(y + i + 24), a3);
    }
    for (; i + 8 <= n; i += 8)
        a0 = _mm256_fmadd_ps(load_bf16x8(x + i), _mm256_loadu_ps(y + i), a0);
    float sum = es_hsum_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; i < n; i++)
        sum += es_bf16_to_fp32(x[i]) * y[i];
    *s = sum;
}

/* ---- helpers for the integer block dot products ---- */

static inline float fp16_scalar(uint16_t h) {
    return _cvtsh_ss(h);
}

/* 8 lanes of int32 partial sums of (signed a) * (signed b) over 32 int8 pairs.
 * |a| is taken so that maddubs sees an unsigned operand; b carries a's sign. a = -128
 * becomes 128 (unsigned), and with |b| <= 127 a pair sum stays below 32767. */
static inline __m256i dot_i8_pairs(__m256i a, __m256i b) {
    const __m256i ax = _mm256_sign_epi8(a, a);
    const __m256i sb = _mm256_sign_epi8(b, a);
    return _mm256_madd_epi16(_mm256_maddubs_epi16(ax, sb), _mm256_set1_epi16(1));
}

/* Same with a unsigned (0..31), b signed. */
static inline __m256i dot_u8_i8(__m256i a, __m256i b) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), _mm256_set1_epi16(1));
}

static inline __m256i load_i8x32(const int8_t *p) {
    return _mm256_loadu_si256((const __m256i *)p);
}

/* ---- Q8_0 · Q8_0 ---- */

static void vec_dot_q8_0(int64_t n, float *s, const void *xv, const void *yv) {
    const es_block_q8_0 *x = xv;
    const es_block_q8_0 *y = yv;
    __m256 acc = _mm256_setzero_ps(); /* the order of es_vec_dot_q8_0_ref (kernels.h) */
    for (int64_t i = 0; i < n / ES_QK; i++) {
        const __m256 d = _mm256_set1_ps(fp16_scalar(x[i].d) * fp16_scalar(y[i].d));
        const __m256i p = dot_i8_pairs(load_i8x32(x[i].qs), load_i8x32(y[i].qs));
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), acc);
    }
    *s = es_hsum_ps(acc);
}

/* The 32 quants of a block as int8 q − 8 (Q4_0) or q − 16 (Q5_0). */
static inline __m256i q4_0_quants(const es_block_q4_0 *b) {
    return _mm256_sub_epi8(es_unpack_nibbles(b->qs), _mm256_set1_epi8(8));
}

static inline __m256i q5_0_quants(const es_block_q5_0 *b) {
    /* the low nibble, with 0xf0 or-ed in where the 5th bit is clear */
    const __m256i hb = _mm256_andnot_si256(es_expand_bits(b->qh), _mm256_set1_epi8((char)0xf0));
    return _mm256_or_si256(es_unpack_nibbles(b->qs), hb);
}

#define TILE_FN static inline __attribute__((always_inline)) void

/* The token side of block i of a tile with signed 8-bit weights (Q8_0, Q4_0, Q5_0, unpacked
 * into wq[r] with scales wd[r]; ad[k] the float scales of the tile's tokens in block i, lanes past
 * T unused): acc[r][t] += (wd[r] · d_t) · Σ w·a, by the operations of dot_i8_pairs and the
 * vec_dots' fma, so each output gets vec_dot's bits. The 8 scale products are one vector
 * multiply (the same float products vec_dot takes one at a time), stored and broadcast back
 * from memory, which costs a load, not an ALU operation, per output. */
TILE_FN i8_block_tokens(int R, int T, int64_t i, const __m256i *wq, const float *wd,
                        const uint8_t *const *ar, const float *ad, float *sc, __m256 acc[2][4]) {
    /* sc[4r + t] = wd[r] · d_t (32-byte aligned scratch of the caller) */
    _mm256_store_ps(sc, _mm256_mul_ps(_mm256_set_m128(_mm_set1_ps(wd[R - 1]), _mm_set1_ps(wd[0])),
                                      _mm256_broadcast_ps((const __m128 *)ad)));
    __m256i wa[2];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
        wa[r] = _mm256_sign_epi8(wq[r], wq[r]);
#pragma GCC unroll 4
    for (int t = 0; t < T; t++) {
        const __m256i aq = load_i8x32(((const es_block_q8_0 *)ar[t] + i)->qs);
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            const __m256i p = _mm256_madd_epi16(
                _mm256_maddubs_epi16(wa[r], _mm256_sign_epi8(aq, wq[r])), _mm256_set1_epi16(1));
            acc[r][t] = _mm256_fmadd_ps(_mm256_broadcast_ss(&sc[4 * r + t]), _mm256_cvtepi32_ps(p),
                                        acc[r][t]);
        }
    }
}

/* Q8_0 rows × tokens, R rows by T tokens at a time: each y[t][r] is computed by exactly the
 * operations of vec_dot_q8_0 above, in its order (its 8-lane accumulator, the same scale
 * product, the same final sum), so the result is bit for bit that of vec_dot whatever the
 * tile or the batch; what the tile saves is the loads and the |w| of a weight block, shared
 * by T tokens, and the activation blocks and their scales, shared by R rows. */
/* One output of the whole 2 × 4 tile below: acc += s · Σ |w|·(a signed as w), s the scale
 * product broadcast from a register (in-lane shuffle of a vector whose two halves are equal). */
#define I8_PAIR(acc, wa, wq, aq, s)                                                                \
    acc = _mm256_fmadd_ps(                                                                         \
        s,                                                                                         \
        _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(wa, _mm256_sign_epi8(aq, wq)),   \
                                             _mm256_set1_epi16(1))),                               \
        acc)
#define I8_LANE(v, t) _mm256_shuffle_ps(v, v, (t)*0x55)

/* The quants of block i of a row of signed 8-bit weights: Q8_0 (kind 0) or Q5_0 (kind 5). */
static inline __attribute__((always_inline)) __m256i i8_quants(int kind, const uint8_t *row,
                                                               int64_t i) {
    if (kind == 5) return q5_0_quants((const es_block_q5_0 *)row + i);
    return load_i8x32(((const es_block_q8_0 *)row + i)->qs);
}

/* The whole 2 × 4 tile of q8_0_tile and q5_0_tile, the prompt's common case, written out with
 * one variable per accumulator and pointer: the same operations in the same order as
 * i8_block_tokens, but nothing for the compiler to keep in memory (the array form spills
 * accumulators at -O2), and the scale products broadcast by in-lane shuffles (a store of
 * them and broadcast loads back stall on store forwarding on some CPUs). Both block types
 * start with their fp16 scale. */
static inline __attribute__((always_inline)) void
i8_tile_2x4(int kind, int64_t n_in, const uint8_t *const *wr, const uint8_t *const *ar,
            const float *ad, size_t ld, float *const *out) {
    const size_t bs = kind == 5 ? sizeof(es_block_q5_0) : sizeof(es_block_q8_0);
    const uint8_t *w0 = wr[0], *w1 = wr[1];
    const es_block_q8_0 *a0 = (const es_block_q8_0 *)ar[0], *a1 = (const es_block_q8_0 *)ar[1];
    const es_block_q8_0 *a2 = (const es_block_q8_0 *)ar[2], *a3 = (const es_block_q8_0 *)ar[3];
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c02 = c00, c03 = c00;
    __m256 c10 = c00, c11 = c00, c12 = c00, c13 = c00;
    for (int64_t i = 0; i < n_in / ES_QK; i++, ad += ld) {
        /* s_r = d_w[r] · (d_0, d_1, d_2, d_3) in both halves */
        const __m256 adv = _mm256_broadcast_ps((const __m128 *)ad);
        uint16_t h0, h1;
        memcpy(&h0, w0 + (size_t)i * bs, sizeof h0);
        memcpy(&h1, w1 + (size_t)i * bs, sizeof h1);
        const __m256 s0 = _mm256_mul_ps(_mm256_set1_ps(_cvtsh_ss(h0)), adv);
        const __m256 s1 = _mm256_mul_ps(_mm256_set1_ps(_cvtsh_ss(h1)), adv);
        const __m256i q0 = i8_quants(kind, w0, i), q1 = i8_quants(kind, w1, i);
        const __m256i x0 = _mm256_sign_epi8(q0, q0), x1 = _mm256_sign_epi8(q1, q1);
        __m256i y = load_i8x32(a0[i].qs);
        I8_PAIR(c00, x0, q0, y, I8_LANE(s0, 0));
        I8_PAIR(c10, x1, q1, y, I8_LANE(s1, 0));
        y = load_i8x32(a1[i].qs);
        I8_PAIR(c01, x0, q0, y, I8_LANE(s0, 1));
        I8_PAIR(c11, x1, q1, y, I8_LANE(s1, 1));
        y = load_i8x32(a2[i].qs);
        I8_PAIR(c02, x0, q0, y, I8_LANE(s0, 2));
        I8_PAIR(c12, x1, q1, y, I8_LANE(s1, 2));
        y = load_i8x32(a3[i].qs);
        I8_PAIR(c03, x0, q0, y, I8_LANE(s0, 3));
        I8_PAIR(c13, x1, q1, y, I8_LANE(s1, 3));
    }
    out[0][0] = es_hsum_ps(c00), out[1][0] = es_hsum_ps(c01);
    out[2][0] = es_hsum_ps(c02), out[3][0] = es_hsum_ps(c03);
    out[0][1] = es_hsum_ps(c10), out[1][1] = es_hsum_ps(c11);
    out[2][1] = es_hsum_ps(c12), out[3][1] = es_hsum_ps(c13);
}
#undef I8_LANE
#undef I8_PAIR

TILE_FN q8_0_tile(int R, int T, int64_t n_in, const uint8_t *const *wr, const uint8_t *const *ar,
                  const float *ad, size_t ld, float *const *out) {
    if (R == 2 && T == 4) {
        i8_tile_2x4(0, n_in, wr, ar, ad, ld, out);
        return;
    }
    __m256 acc[2][4];
    float sc[8] __attribute__((aligned(32)));
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++)
            acc[r][t] = _mm256_setzero_ps();
    for (int64_t i = 0; i < n_in / ES_QK; i++) {
        __m256i wq[2];
        float wd[2];
        for (int r = 0; r < R; r++) {
            const es_block_q8_0 *w = (const es_block_q8_0 *)wr[r] + i;
            wq[r] = load_i8x32(w->qs);
            wd[r] = fp16_scalar(w->d);
        }
        i8_block_tokens(R, T, i, wq, wd, ar, ad + (size_t)i * ld, sc, acc);
    }
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++)
            out[t][r] = es_hsum_ps(acc[r][t]);
}

ES_TILE_ROWS_AVX2(rows_q8_0, q8_0_tile, 2, 4);

/* ---- Q4_0 · Q8_0 ---- */

/* Two float lanes of block sums: ~25% faster than the reference's one scalar chain of fmas
 * where the prompt is computed by vec_dot (no AVX-VNNI), and equal to it up to float
 * rounding. ES_NUMERICS_LLAMACPP takes vec_dot_q4_0_llamacpp below instead. */
static void vec_dot_q4_0(int64_t n, float *s, const void *xv, const void *yv) {
    const es_block_q4_0 *x = xv;
    const es_block_q8_0 *y = yv;
    const int64_t nb = n / ES_QK;
    const __m256i eight = _mm256_set1_epi8(8);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) {
        const __m256 d0 = _mm256_set1_ps(fp16_scalar(x[i].d) * fp16_scalar(y[i].d));
        const __m256 d1 = _mm256_set1_ps(fp16_scalar(x[i + 1].d) * fp16_scalar(y[i + 1].d));
        const __m256i q0 = _mm256_sub_epi8(es_unpack_nibbles(x[i].qs), eight);
        const __m256i q1 = _mm256_sub_epi8(es_unpack_nibbles(x[i + 1].qs), eight);
        acc0 = _mm256_fmadd_ps(d0, _mm256_cvtepi32_ps(dot_i8_pairs(q0, load_i8x32(y[i].qs))), acc0);
        acc1 = _mm256_fmadd_ps(d1, _mm256_cvtepi32_ps(dot_i8_pairs(q1, load_i8x32(y[i + 1].qs))),
                               acc1);
    }
    for (; i < nb; i++) {
        const __m256 d0 = _mm256_set1_ps(fp16_scalar(x[i].d) * fp16_scalar(y[i].d));
        const __m256i q0 = _mm256_sub_epi8(es_unpack_nibbles(x[i].qs), eight);
        acc0 = _mm256_fmadd_ps(d0, _mm256_cvtepi32_ps(dot_i8_pairs(q0, load_i8x32(y[i].qs))), acc0);
    }
    *s = es_hsum_ps(_mm256_add_ps(acc0, acc1));
}

/* ---- Q5_0 · Q8_0 ---- */

/* Float lanes of block sums; equal to the reference up to float rounding (as Q4_0). */
static void vec_dot_q5_0(int64_t n, float *s, const void *xv, const void *yv) {
    const es_block_q5_0 *x = xv;
    const es_block_q8_0 *y = yv;
    const int64_t nb = n / ES_QK;
    const __m256i high = _mm256_set1_epi8((char)0xf0);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        const __m256 d = _mm256_set1_ps(fp16_scalar(x[i].d) * fp16_scalar(y[i].d));
        /* q - 16 as int8: the low nibble, with 0xf0 or-ed in where the 5th bit is clear */
        const __m256i hb = _mm256_andnot_si256(es_expand_bits(x[i].qh), high);
        const __m256i q = _mm256_or_si256(es_unpack_nibbles(x[i].qs), hb);
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_i8_pairs(q, load_i8x32(y[i].qs))), acc);
    }
    *s = es_hsum_ps(acc);
}

/* ---- Q4_0 · Q8_0 and Q5_0 · Q8_0 in llama.cpp's order: the reference's one fma chain ---- */

/* sum = fma(isum_k, d_k, sum) for the first nb of the 8 blocks of p (int32 lanes per
 * block) and d, in block order: the order of es_vec_dot_q4_0_ref / _q5_0 (kernels.h). The
 * integer sums of 8 blocks are reduced together; only the chain itself is scalar. */
static inline float fma_chain8(const __m256i p[8], const float d[8], int nb, float sum) {
    float isum[8];
    _mm256_storeu_ps(isum, _mm256_cvtepi32_ps(es_hsum8x8_epi32(p)));
    for (int k = 0; k < nb; k++)
        sum = fmaf(isum[k], d[k], sum);
    return sum;
}

/* The int32 lanes of one Q4_0 (q5 false) or Q5_0 (q5 true) block · Q8_0 block; *d = d_w·d_x. */
static inline __attribute__((always_inline)) __m256i
block_x_q8_0(bool q5, const uint8_t *blk, const es_block_q8_0 *y, float *d) {
    const __m256i q =
        q5 ? q5_0_quants((const es_block_q5_0 *)blk) : q4_0_quants((const es_block_q4_0 *)blk);
    uint16_t dw;
    memcpy(&dw, blk, sizeof dw); /* d leads both blocks */
    *d = fp16_scalar(dw) * fp16_scalar(y->d);
    return dot_i8_pairs(q, load_i8x32(y->qs));
}

/* Q4_0 (q5 false) or Q5_0 (q5 true) rows · Q8_0. */
static inline __attribute__((always_inline)) void vec_dot_x_q8_0(bool q5, int64_t n, float *s,
                                                                 const void *xv, const void *yv) {
    const uint8_t *x = xv;
    const es_block_q8_0 *y = yv;
    const size_t bs = q5 ? sizeof(es_block_q5_0) : sizeof(es_block_q4_0);
    const int64_t nb = n / ES_QK;
    float sum = 0.0f, d[8];
    __m256i p[8];
    int64_t i0 = 0;
    for (; i0 + 8 <= nb; i0 += 8) {
#pragma GCC unroll 8
        for (int k = 0; k < 8; k++)
            p[k] = block_x_q8_0(q5, x + (size_t)(i0 + k) * bs, &y[i0 + k], &d[k]);
        sum = fma_chain8(p, d, 8, sum);
    }
    if (i0 < nb) {
        const int m = (int)(nb - i0);
        for (int k = 0; k < 8; k++)
            p[k] = k < m ? block_x_q8_0(q5, x + (size_t)(i0 + k) * bs, &y[i0 + k], &d[k])
                         : _mm256_setzero_si256();
        sum = fma_chain8(p, d, m, sum);
    }
    *s = sum;
}

static void vec_dot_q4_0_llamacpp(int64_t n, float *s, const void *x, const void *y) {
    vec_dot_x_q8_0(false, n, s, x, y);
}
static void vec_dot_q5_0_llamacpp(int64_t n, float *s, const void *x, const void *y) {
    vec_dot_x_q8_0(true, n, s, x, y);
}

/* ---- Q4_1 · Q8_1 ---- */

static void vec_dot_q4_1(int64_t n, float *s, const void *xv, const void *yv) {
    const es_block_q4_1 *x = xv;
    const es_block_q8_1 *y = yv;
    const int64_t nb = n / ES_QK;
    __m256 acc = _mm256_setzero_ps();
    float summ = 0.0f;
    for (int64_t i = 0; i < nb; i++) {
        const __m256 d = _mm256_set1_ps(fp16_scalar(x[i].d) * fp16_scalar(y[i].d));
        summ += fp16_scalar(x[i].m) * fp16_scalar(y[i].s);
        const __m256i p = dot_u8_i8(es_unpack_nibbles(x[i].qs), load_i8x32(y[i].qs));
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), acc);
    }
    *s = es_hsum_ps(acc) + summ;
}

/* ---- Q5_1 · Q8_1 ---- */

static void vec_dot_q5_1(int64_t n, float *s, const void *xv, const void *yv) {
    const es_block_q5_1 *x = xv;
    const es_block_q8_1 *y = yv;
    const int64_t nb = n / ES_QK;
    const __m256i bit4 = _mm256_set1_epi8(0x10);
    __m256 acc = _mm256_setzero_ps();
    float summ = 0.0f;
    for (int64_t i = 0; i < nb; i++) {
        const __m256 d = _mm256_set1_ps(fp16_scalar(x[i].d) * fp16_scalar(y[i].d));
        summ += fp16_scalar(x[i].m) * fp16_scalar(y[i].s);
        const __m256i hb = _mm256_and_si256(es_expand_bits(x[i].qh), bit4);
        const __m256i q = _mm256_or_si256(es_unpack_nibbles(x[i].qs), hb);
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_u8_i8(q, load_i8x32(y[i].qs))), acc);
    }
    *s = es_hsum_ps(acc) + summ;
}

/* ---- Q4_0 / Q5_0 / Q4_1 / Q5_1 tiles: R rows × T tokens in the order of their vec_dots ---- */

/* As q8_0_tile: every y[t][r] is computed by the operations of the type's vec_dot above (not
 * its llama.cpp-order twin), in its order, so bit for bit the one-token vec_dot's; the tile
 * shares the unpacking of a weight block across T tokens and the activation blocks across R
 * rows. */

/* One Q4_0 block i of the tile into acc (vec_dot_q4_0's acc0 or acc1 of each output). */
TILE_FN q4_0_block(int R, int T, int64_t i, const uint8_t *const *wr, const uint8_t *const *ar,
                   const float *ad, size_t ld, float *sc, __m256 acc[2][4]) {
    __m256i wq[2];
    float wd[2];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) {
        const es_block_q4_0 *x = (const es_block_q4_0 *)wr[r] + i;
        wq[r] = _mm256_sub_epi8(es_unpack_nibbles(x->qs), _mm256_set1_epi8(8));
        wd[r] = fp16_scalar(x->d);
    }
    i8_block_tokens(R, T, i, wq, wd, ar, ad + (size_t)i * ld, sc, acc);
}

/* Q4_0: vec_dot_q4_0's two accumulators per output, acc0 for the even blocks (the last one of
 * an odd count included) and acc1 for the odd ones. */
TILE_FN q4_0_tile(int R, int T, int64_t n_in, const uint8_t *const *wr, const uint8_t *const *ar,
                  const float *ad, size_t ld, float *const *out) {
    const int64_t nb = n_in / ES_QK;
    __m256 acc0[2][4], acc1[2][4];
    float sc[8] __attribute__((aligned(32)));
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++)
            acc0[r][t] = acc1[r][t] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) {
        q4_0_block(R, T, i, wr, ar, ad, ld, sc, acc0);
        q4_0_block(R, T, i + 1, wr, ar, ad, ld, sc, acc1);
    }
    if (i < nb) q4_0_block(R, T, i, wr, ar, ad, ld, sc, acc0);
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++)
            out[t][r] = es_hsum_ps(_mm256_add_ps(acc0[r][t], acc1[r][t]));
}

TILE_FN q5_0_tile(int R, int T, int64_t n_in, const uint8_t *const *wr, const uint8_t *const *ar,
                  const float *ad, size_t ld, float *const *out) {
    if (R == 2 && T == 4) {
        i8_tile_2x4(5, n_in, wr, ar, ad, ld, out);
        return;
    }
    __m256 acc[2][4];
    float sc[8] __attribute__((aligned(32)));
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++)
            acc[r][t] = _mm256_setzero_ps();
    for (int64_t i = 0; i < n_in / ES_QK; i++) {
        __m256i wq[2];
        float wd[2];
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            const es_block_q5_0 *x = (const es_block_q5_0 *)wr[r] + i;
            wq[r] = q5_0_quants(x);
            wd[r] = fp16_scalar(x->d);
        }
        i8_block_tokens(R, T, i, wq, wd, ar, ad + (size_t)i * ld, sc, acc);
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++)
            out[t][r] = es_hsum_ps(acc[r][t]);
}

/* Q4_1 (q5 false) or Q5_1 (q5 true) · Q8_1: vec_dot_q4_1 / _q5_1's accumulator and min sum. */
TILE_FN q4_1_tile(bool q5, int R, int T, int64_t n_in, const uint8_t *const *wr,
                  const uint8_t *const *ar, const float *ad, size_t ld, float *const *out) {
    __m256 acc[2][4];
    float summ[2][4];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++)
            acc[r][t] = _mm256_setzero_ps(), summ[r][t] = 0.0f;
    for (int64_t i = 0; i < n_in / ES_QK; i++) {
        __m256i wq[2];
        float wd[2], wm[2];
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            if (q5) {
                const es_block_q5_1 *x = (const es_block_q5_1 *)wr[r] + i;
                const __m256i hb = _mm256_and_si256(es_expand_bits(x->qh), _mm256_set1_epi8(0x10));
                wq[r] = _mm256_or_si256(es_unpack_nibbles(x->qs), hb);
                wd[r] = fp16_scalar(x->d), wm[r] = fp16_scalar(x->m);
            } else {
                const es_block_q4_1 *x = (const es_block_q4_1 *)wr[r] + i;
                wq[r] = es_unpack_nibbles(x->qs);
                wd[r] = fp16_scalar(x->d), wm[r] = fp16_scalar(x->m);
            }
        }
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            const es_block_q8_1 *y = (const es_block_q8_1 *)ar[t] + i;
            const __m256i aq = load_i8x32(y->qs);
            const float da = fp16_scalar(y->d), sa = fp16_scalar(y->s);
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) {
                summ[r][t] += wm[r] * sa;
                acc[r][t] = _mm256_fmadd_ps(_mm256_set1_ps(wd[r] * da),
                                            _mm256_cvtepi32_ps(dot_u8_i8(wq[r], aq)), acc[r][t]);
            }
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++)
            out[t][r] = es_hsum_ps(acc[r][t]) + summ[r][t];
}

#define Q4_1_TILE(R, T, n_in, w, a, ad, ld, out) q4_1_tile(false, R, T, n_in, w, a, ad, ld, out)
#define Q5_1_TILE(R, T, n_in, w, a, ad, ld, out) q4_1_tile(true, R, T, n_in, w, a, ad, ld, out)

ES_TILE_ROWS_AVX2(rows_q4_0, q4_0_tile, 2, 4);
ES_TILE_ROWS_AVX2(rows_q5_0, q5_0_tile, 2, 4);
ES_TILE_ROWS_AVX2(rows_q4_1, Q4_1_TILE, 2, 4);
ES_TILE_ROWS_AVX2(rows_q5_1, Q5_1_TILE, 2, 4);

/* ---- Q8_0 / Q8_1 quantization of activations ---- */

/* Round-half-even of 8 lanes, saturated to [-127, 127] (NaN → -127, as the scalar version), as
 * int32. */
static inline __m256i round_even_epi32(__m256 v) {
    const __m256 r = _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m256 lo = _mm256_set1_ps(-127.0f), hi = _mm256_set1_ps(127.0f);
    /* max(lo, r) returns lo for NaN r (second operand) */
    return _mm256_cvtps_epi32(_mm256_min_ps(hi, _mm256_max_ps(r, lo)));
}

/* Quantizes one block of 32 floats to int8 (d = amax / 127, q = round-half-even(x·127/amax), as
 * the scalar version does);
 * returns d and the sum of the quants. */
static inline float quantize_block_q8(const float *x, int8_t *qs, int *sum) {
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8);
    __m256 v2 = _mm256_loadu_ps(x + 16), v3 = _mm256_loadu_ps(x + 24);
    __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_and_ps(v0, absmask), _mm256_and_ps(v1, absmask)),
                             _mm256_max_ps(_mm256_and_ps(v2, absmask), _mm256_and_ps(v3, absmask)));
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    const float amax = _mm_cvtss_f32(m4);
    const float d = amax / 127.0f;
    const __m256 id = _mm256_set1_ps(amax != 0.0f ? 127.0f / amax : 0.0f);
    __m256i i0 = round_even_epi32(_mm256_mul_ps(v0, id)),
            i1 = round_even_epi32(_mm256_mul_ps(v1, id));
    __m256i i2 = round_even_epi32(_mm256_mul_ps(v2, id)),
            i3 = round_even_epi32(_mm256_mul_ps(v3, id));
    /* sum before packing */
    __m256i s32 = _mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3));
    __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s32), _mm256_extracti128_si256(s32, 1));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
    *sum = _mm_cvtsi128_si32(s4);
    /* int32 -> int8 (values are within [-127, 127]); packs interleave 128-bit lanes */
    __m256i p16a = _mm256_packs_epi32(i0, i1), p16b = _mm256_packs_epi32(i2, i3);
    __m256i p8 = _mm256_packs_epi16(p16a, p16b);
    p8 = _mm256_permutevar8x32_epi32(p8, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256((__m256i *)qs, p8);
    return d;
}

static void from_float_q8_0(const float *x, void *yv, int64_t n) {
    es_block_q8_0 *y = yv;
    for (int64_t i = 0; i < n / ES_QK; i++) {
        int sum;
        y[i].d = es_fp32_to_fp16(quantize_block_q8(x + i * ES_QK, y[i].qs, &sum));
    }
}

static void from_float_q8_1(const float *x, void *yv, int64_t n) {
    es_block_q8_1 *y = yv;
    for (int64_t i = 0; i < n / ES_QK; i++) {
        int sum;
        const float d = quantize_block_q8(x + i * ES_QK, y[i].qs, &sum);
        y[i].d = es_fp32_to_fp16(d);
        y[i].s = es_fp32_to_fp16(d * (float)sum);
    }
}

/* ---- dequantization ---- */

static void to_float_q8_0(const void *xv, float *y, int64_t n) {
    const es_block_q8_0 *x = xv;
    for (int64_t i = 0; i < n / ES_QK; i++, y += ES_QK) {
        const __m256 d = _mm256_set1_ps(fp16_scalar(x[i].d));
        for (int j = 0; j < ES_QK; j += 8) {
            __m256i q = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(x[i].qs + j)));
            _mm256_storeu_ps(y + j, _mm256_mul_ps(d, _mm256_cvtepi32_ps(q)));
        }
    }
}

/* Stores d * q (+ m) for the 32 int8 values of q (in element order). */
static inline void store_block(float *y, __m256i q, __m256 d, __m256 m, bool has_m) {
    const __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
    const __m256 f[4] = {
        _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo)),
        _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8))),
        _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi)),
        _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8))),
    };
    for (int k = 0; k < 4; k++)
        _mm256_storeu_ps(y + 8 * k, has_m ? _mm256_fmadd_ps(d, f[k], m) : _mm256_mul_ps(d, f[k]));
}

static void to_float_q4_0(const void *xv, float *y, int64_t n) {
    const es_block_q4_0 *x = xv;
    for (int64_t i = 0; i < n / ES_QK; i++, y += ES_QK) {
        const __m256i q = _mm256_sub_epi8(es_unpack_nibbles(x[i].qs), _mm256_set1_epi8(8));
        store_block(y, q, _mm256_set1_ps(fp16_scalar(x[i].d)), _mm256_setzero_ps(), false);
    }
}

static void to_float_q4_1(const void *xv, float *y, int64_t n) {
    const es_block_q4_1 *x = xv;
    for (int64_t i = 0; i < n / ES_QK; i++, y += ES_QK)
        store_block(y, es_unpack_nibbles(x[i].qs), _mm256_set1_ps(fp16_scalar(x[i].d)),
                    _mm256_set1_ps(fp16_scalar(x[i].m)), true);
}

static void to_float_q5_0(const void *xv, float *y, int64_t n) {
    const es_block_q5_0 *x = xv;
    for (int64_t i = 0; i < n / ES_QK; i++, y += ES_QK) {
        const __m256i hb =
            _mm256_andnot_si256(es_expand_bits(x[i].qh), _mm256_set1_epi8((char)0xf0));
        const __m256i q = _mm256_or_si256(es_unpack_nibbles(x[i].qs), hb);
        store_block(y, q, _mm256_set1_ps(fp16_scalar(x[i].d)), _mm256_setzero_ps(), false);
    }
}

static void to_float_q5_1(const void *xv, float *y, int64_t n) {
    const es_block_q5_1 *x = xv;
    for (int64_t i = 0; i < n / ES_QK; i++, y += ES_QK) {
        const __m256i hb = _mm256_and_si256(es_expand_bits(x[i].qh), _mm256_set1_epi8(0x10));
        const __m256i q = _mm256_or_si256(es_unpack_nibbles(x[i].qs), hb);
        store_block(y, q, _mm256_set1_ps(fp16_scalar(x[i].d)), _mm256_set1_ps(fp16_scalar(x[i].m)),
                    true);
    }
}

static void to_float_q8_1(const void *xv, float *y, int64_t n) {
    const es_block_q8_1 *x = xv;
    for (int64_t i = 0; i < n / ES_QK; i++, y += ES_QK)
        store_block(y, load_i8x32(x[i].qs), _mm256_set1_ps(fp16_scalar(x[i].d)),
                    _mm256_setzero_ps(), false);
}

/* ---- table ---- */

void es_quants_register_avx2(es_type_traits *table) {
    static const struct {
        es_type type;
        es_vec_dot_tiles_fn tiles;
    } tiles[] = {{ES_TYPE_Q8_0, rows_q8_0},
                 {ES_TYPE_Q4_0, rows_q4_0},
                 {ES_TYPE_Q5_0, rows_q5_0},
                 {ES_TYPE_Q4_1, rows_q4_1},
                 {ES_TYPE_Q5_1, rows_q5_1}};
    for (size_t i = 0; i < sizeof tiles / sizeof tiles[0]; i++) {
        table[tiles[i].type].vec_dot_tiles = tiles[i].tiles; /* 2 rows x 4 tokens */
        table[tiles[i].type].tile_rows = 2;
    }
    table[ES_TYPE_F32].vec_dot = vec_dot_f32;
    table[ES_TYPE_F16].to_float = to_float_f16;
    table[ES_TYPE_F16].from_float = from_float_f16;
    table[ES_TYPE_F16].vec_dot = vec_dot_f16;
    table[ES_TYPE_BF16].to_float = to_float_bf16;
    table[ES_TYPE_BF16].vec_dot = vec_dot_bf16;
    table[ES_TYPE_Q4_0].to_float = to_float_q4_0;
    table[ES_TYPE_Q4_0].vec_dot = vec_dot_q4_0;
    table[ES_TYPE_Q4_0].vec_dot_llamacpp = vec_dot_q4_0_llamacpp;
    table[ES_TYPE_Q4_1].to_float = to_float_q4_1;
    table[ES_TYPE_Q4_1].vec_dot = vec_dot_q4_1;
    table[ES_TYPE_Q5_0].to_float = to_float_q5_0;
    table[ES_TYPE_Q5_0].vec_dot = vec_dot_q5_0;
    table[ES_TYPE_Q5_0].vec_dot_llamacpp = vec_dot_q5_0_llamacpp;
    table[ES_TYPE_Q5_1].to_float = to_float_q5_1;
    table[ES_TYPE_Q5_1].vec_dot = vec_dot_q5_1;
    table[ES_TYPE_Q8_0].to_float = to_float_q8_0;
    table[ES_TYPE_Q8_0].from_float = from_float_q8_0;
    table[ES_TYPE_Q8_0].vec_dot = vec_dot_q8_0;
    table[ES_TYPE_Q8_1].to_float = to_float_q8_1;
    table[ES_TYPE_Q8_1].from_float = from_float_q8_1;
}
