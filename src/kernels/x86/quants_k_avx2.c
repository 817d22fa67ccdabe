/*
 * quants_k_avx2.c — AVX2/FMA/F16C dot products (K-quant row · Q8_K row) and two
 * dequantizers, beside the scalar references of quants_k.c.
 *
 * Every dot product works one 256-element super-block at a time: the unsigned quants
 * (0..2^bits−1) of 32 elements are multiplied with 32 int8 activations by
 * _mm256_maddubs_epi16 (pairs summed into int16, which cannot saturate: 2·63·128 <
 * 2^15), then weighted by the sub-block scales with _mm256_madd_epi16 into int32.
 * Constant level offsets (−4 for Q3_K, −32 for Q6_K) and the mins (Q2_K, Q4_K, Q5_K)
 * use the per-16 activation sums (bsums) of Q8_K. The integer sums of a block are
 * exact, and the float combination per block is written in the same order as the
 * scalar reference, so both give the same result.
 */
#include "quants_k.h"

#include "kernels.h"
#include "simd_avx2.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

static inline float fp16(uint16_t h) {
    return _cvtsh_ss(h);
}

/* Sum of the 8 int32 lanes. */
static inline int32_t hsum_i32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(s);
}

/* The int16 scale vector of a 32-element group g: lanes of the low 128-bit half hold
 * scale 2g, those of the high half scale 2g+1. sc16: the 16 scales as int16. */
static inline __m256i scale_pair(__m256i sc16, int g) {
    const __m256i pair = _mm256_permutevar8x32_epi32(sc16, _mm256_set1_epi32(g));
    const __m256i pick =
        _mm256_setr_epi8(0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, /* low half */
                         2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3);
    return _mm256_shuffle_epi8(pair, pick);
}

/* int32 lanes of Σ q·y over 32 elements, each half weighted by its lane of sc (int16).
 * q: unsigned bytes ≤ 63. */
static inline __m256i dot32_scaled(__m256i q, const int8_t *y, __m256i sc) {
    const __m256i p = _mm256_maddubs_epi16(q, _mm256_loadu_si256((const __m256i *)y));
    return _mm256_madd_epi16(p, sc);
}

/* Bytes of v that have bit `bit` set become `val`, the others 0. */
static inline __m256i bit_to(__m256i v, int bit, char val) {
    const __m256i mask = _mm256_set1_epi8((char)(1u << bit));
    return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(v, mask), mask),
                            _mm256_set1_epi8(val));
}

/* Lanes Σ_k w[k]·bsums[k] over the 16 per-16 sums; w: 16 int16. */
static inline __m256i weighted_bsums(__m256i w16, const int16_t *bsums) {
    return _mm256_madd_epi16(w16, _mm256_loadu_si256((const __m256i *)bsums));
}

void es_vec_dot_q2_K_avx2(int64_t n, float *s, const void *vx, const void *vy) {
    const es_block_q2_K *x = vx;
    const es_block_q8_K *y = vy;
    const __m256i m3 = _mm256_set1_epi8(3);
    const __m128i m4 = _mm_set1_epi8(0x0f);
    float sum = 0;
    for (int64_t i = 0; i < n / ES_QK_K; i++) {
        const __m128i sc8 = _mm_loadu_si128((const __m128i *)x[i].scales);
        const __m256i scales = _mm256_cvtepu8_epi16(_mm_and_si128(sc8, m4));
        const __m256i mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sc8, 4), m4));
        const int8_t *q8 = y[i].qs;
        __m256i acc = _mm256_setzero_si256();
        for (int c = 0; c < 2; c++) { /* two chunks of 128 elements */
            const __m256i qv = _mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * c));
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++) {
                const __m256i q =
                    _mm256_and_si256(_mm256_srl_epi16(qv, _mm_cvtsi32_si128(2 * j)), m3);
                acc = _mm256_add_epi32(
                    acc, dot32_scaled(q, q8 + 128 * c + 32 * j, scale_pair(scales, 4 * c + j)));
            }
        }
        const int32_t isum = hsum_i32(acc);
        const int32_t msum = hsum_i32(weighted_bsums(mins, y[i].bsums));
        const float dall = fp16(x[i].d) * y[i].d, dmin = fp16(x[i].dmin) * y[i].d;
        sum += dall * (float)isum - dmin * (float)msum;
    }
    *s = sum;
}

/* The 16 scales of a Q3_K block minus 32, as int16 (see es_unpack_scales_q3_K). */
static inline __m256i scales16_q3_K(const uint8_t *q) {
    uint32_t w[3];
    memcpy(w, q, 12);
    const uint32_t nib = 0x0f0f0f0fu, two = 0x03030303u;
    const __m128i s = _mm_set_epi32((int)(((w[1] >> 4) & nib) | (((w[2] >> 6) & two) << 4)),
                                    (int)(((w[0] >> 4) & nib) | (((w[2] >> 4) & two) << 4)),
                                    (int)((w[1] & nib) | (((w[2] >> 2) & two) << 4)),
                                    (int)((w[0] & nib) | ((w[2] & two) << 4)));
    return _mm256_cvtepi8_epi16(_mm_sub_epi8(s, _mm_set1_epi8(32)));
}

void es_vec_dot_q3_K_avx2(int64_t n, float *s, const void *vx, const void *vy) {
    const es_block_q3_K *x = vx;
    const es_block_q8_K *y = vy;
    const __m256i m3 = _mm256_set1_epi8(3);
    float sum = 0;
    for (int64_t i = 0; i < n / ES_QK_K; i++) {
        const __m256i sc16 = scales16_q3_K(x[i].scales);
        const int8_t *q8 = y[i].qs;
        const __m256i hm = _mm256_loadu_si256((const __m256i *)x[i].hmask);
        __m256i acc = _mm256_setzero_si256();
        for (int c = 0; c < 2; c++) {
            const __m256i qv = _mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * c));
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++) {
                __m256i q = _mm256_and_si256(_mm256_srl_epi16(qv, _mm_cvtsi32_si128(2 * j)), m3);
                q = _mm256_or_si256(q, bit_to(hm, 4 * c + j, 4)); /* level + 4, 0..7 */
                acc = _mm256_add_epi32(
                    acc, dot32_scaled(q, q8 + 128 * c + 32 * j, scale_pair(sc16, 4 * c + j)));
            }
        }
        /* levels are q − 4: subtract 4·Σ sc·bsums */
        acc = _mm256_sub_epi32(acc, _mm256_slli_epi32(weighted_bsums(sc16, y[i].bsums), 2));
        sum += fp16(x[i].d) * y[i].d * (float)hsum_i32(acc);
    }
    *s = sum;
}

/* Q4_K/Q5_K scales as int16 in both 128-bit halves (lanes 0..7 = scale 0..7); *mins2 gets
 * the 8 mins, each twice, as int16 (one per 16 elements). */
static inline __m256i scales_q4_K_w(const uint8_t *q, __m256i *mins2) {
    uint32_t w[3];
    memcpy(w, q, 12);
    const uint32_t s0 = w[0] & 0x3f3f3f3fu, m0 = w[1] & 0x3f3f3f3fu;
    const uint32_t s1 = (w[2] & 0x0f0f0f0fu) | (((w[0] >> 6) & 0x03030303u) << 4);
    const uint32_t m1 = ((w[2] >> 4) & 0x0f0f0f0fu) | (((w[1] >> 6) & 0x03030303u) << 4);
    const __m128i mins = _mm_set_epi32(0, 0, (int)m1, (int)m0);
    /* each min twice (int16), to weigh the 16 bsums */
    *mins2 = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(mins, mins));
    const __m128i sc = _mm_cvtepu8_epi16(_mm_set_epi32(0, 0, (int)s1, (int)s0));
    return _mm256_broadcastsi128_si256(sc);
}

/* The same scales; *mterms gets the 8 int32 min terms m[j]·(bsums[2j] + bsums[2j+1]). */
static inline __m256i scales_q4_K(const uint8_t *q, const int16_t *bsums, __m256i *mterms) {
    __m256i mins2;
    const __m256i sc = scales_q4_K_w(q, &mins2);
    *mterms = weighted_bsums(mins2, bsums);
    return sc;
}

/* Broadcast of int16 lane k (0..7) of a scales_q4_K vector. */
#define K4_SCALE(v, k)                                                                             \
    _mm256_shuffle_epi8((v), _mm256_set1_epi16((short)(((2 * (k) + 1) << 8) | (2 * (k)))))

/* Q4_K in llama.cpp's order (its repacked gemm: per 64 elements, two scalar fma chains):
 * ES_NUMERICS_LLAMACPP, and the reference's order bit for bit. */
static void vec_dot_q4_K_llamacpp(int64_t n, float *s, const void *vx, const void *vy) {
    const es_block_q4_K *x = vx;
    const es_block_q8_K *y = vy;
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    float acc = 0, accm = 0; /* the order of es_vec_dot_q4_K_ref (kernels.h) */
    for (int64_t i = 0; i < n / ES_QK_K; i++) {
        __m256i mterms;
        int32_t mlane[8];
        const __m256i sc = scales_q4_K(x[i].scales, y[i].bsums, &mterms);
        _mm256_storeu_si256((__m256i *)mlane, mterms);
        const int8_t *q8 = y[i].qs;
        const float dd = fp16(x[i].d) * y[i].d, dm = fp16(x[i].dmin) * y[i].d;
        __m256i p[4];
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) { /* 64 elements: low nibbles, then high nibbles */
            const __m256i qv = _mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * j));
            const __m256i lo = _mm256_and_si256(qv, m4);
            const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(qv, 4), m4);
            p[j] = _mm256_add_epi32(dot32_scaled(lo, q8 + 64 * j, K4_SCALE(sc, 2 * j)),
                                    dot32_scaled(hi, q8 + 64 * j + 32, K4_SCALE(sc, 2 * j + 1)));
        }
        /* the four lane sums at once (integer: any order is exact) */
        const __m256i h =
            _mm256_hadd_epi32(_mm256_hadd_epi32(p[0], p[1]), _mm256_hadd_epi32(p[2], p[3]));
        int32_t isum[4];
        _mm_storeu_si128((__m128i *)isum,
                         _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1)));
        for (int j = 0; j < 4; j++) {
            acc = fmaf((float)isum[j], dd, acc);
            accm = fmaf((float)(mlane[2 * j] + mlane[2 * j + 1]), dm, accm);
        }
    }
    *s = acc - accm;
}

/* Q4_K (q5 false) and Q5_K (true) rows · Q8_K in 8 integer lanes per block (scales applied in
 * int), acc_l = fma(d, lane_l, acc_l), plus one fma chain of the mins: the order of
 * es_vec_dot_q5_K_ref (kernels.h). For Q4_K this is llama.cpp's plain AVX2 vec_dot order, with
 * no dependency between the 64-element groups of a block: ~1.4x the per-64 chain, the decode
 * speed of Q4_K files (vec_dot_q4_K_llamacpp keeps the reference's order). The two block
 * types share d, dmin and scales at the same offsets; Q5_K has qh[32] before qs. */
static inline __attribute__((always_inline)) void q45_K_dot(bool q5, int64_t n, float *s,
                                                            const void *vx, const void *vy) {
    const size_t bs = q5 ? sizeof(es_block_q5_K) : sizeof(es_block_q4_K);
    const es_block_q8_K *y = vy;
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    __m256 accf = _mm256_setzero_ps();
    float summs = 0;
    for (int64_t i = 0; i < n / ES_QK_K; i++) {
        const es_block_q4_K *x4 = (const es_block_q4_K *)((const uint8_t *)vx + (size_t)i * bs);
        const es_block_q5_K *x5 = (const es_block_q5_K *)x4;
        const uint8_t *qs = q5 ? x5->qs : x4->qs;
        __m256i mterms;
        const __m256i sc = scales_q4_K(x4->scales, y[i].bsums, &mterms);
        const int32_t msum = hsum_i32(mterms);
        const int8_t *q8 = y[i].qs;
        const __m256i qh =
            q5 ? _mm256_loadu_si256((const __m256i *)x5->qh) : _mm256_setzero_si256();
        __m256i acc = _mm256_setzero_si256();
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) {
            const __m256i qv = _mm256_loadu_si256((const __m256i *)(qs + 32 * j));
            __m256i lo = _mm256_and_si256(qv, m4);
            __m256i hi = _mm256_and_si256(_mm256_srli_epi16(qv, 4), m4);
            if (q5) {
                lo = _mm256_or_si256(lo, bit_to(qh, 2 * j, 16));
                hi = _mm256_or_si256(hi, bit_to(qh, 2 * j + 1, 16));
            }
            acc = _mm256_add_epi32(acc, dot32_scaled(lo, q8 + 64 * j, K4_SCALE(sc, 2 * j)));
            acc =
                _mm256_add_epi32(acc, dot32_scaled(hi, q8 + 64 * j + 32, K4_SCALE(sc, 2 * j + 1)));
        }
        const float d = y[i].d * fp16(x4->d), dmin = -y[i].d * fp16(x4->dmin);
        summs = fmaf(dmin, (float)msum, summs);
        accf = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(acc), accf);
    }
    *s = es_hsum_ps(accf) + summs;
}

void es_vec_dot_q4_K_avx2(int64_t n, float *s, const void *vx, const void *vy) {
    q45_K_dot(false, n, s, vx, vy);
}

void es_vec_dot_q5_K_avx2(int64_t n, float *s, const void *vx, const void *vy) {
    q45_K_dot(true, n, s, vx, vy);
}

void es_vec_dot_q6_K_avx2(int64_t n, float *s, const void *vx, const void *vy) {
    const es_block_q6_K *x = vx;
    const es_block_q8_K *y = vy;
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    const __m256i m2 = _mm256_set1_epi8(0x30);
    __m256 accf = _mm256_setzero_ps(); /* the order of es_vec_dot_q6_K_ref (kernels.h) */
    for (int64_t i = 0; i < n / ES_QK_K; i++) {
        const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)x[i].scales));
        const int8_t *q8 = y[i].qs;
        __m256i acc = _mm256_setzero_si256();
        for (int c = 0; c < 2; c++) { /* 128 elements: ql 64 bytes, qh 32 bytes */
            const __m256i l0 = _mm256_loadu_si256((const __m256i *)(x[i].ql + 64 * c));
            const __m256i l1 = _mm256_loadu_si256((const __m256i *)(x[i].ql + 64 * c + 32));
            const __m256i h = _mm256_loadu_si256((const __m256i *)(x[i].qh + 32 * c));
            /* high 2 bits of the 4 groups of 32, moved to bits 4..5 */
            const __m256i h0 = _mm256_and_si256(_mm256_slli_epi16(h, 4), m2);
            const __m256i h1 = _mm256_and_si256(_mm256_slli_epi16(h, 2), m2);
            const __m256i h2 = _mm256_and_si256(h, m2);
            const __m256i h3 = _mm256_and_si256(_mm256_srli_epi16(h, 2), m2);
            const __m256i q0 = _mm256_or_si256(_mm256_and_si256(l0, m4), h0);
            const __m256i q1 = _mm256_or_si256(_mm256_and_si256(l1, m4), h1);
            const __m256i q2 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), h2);
            const __m256i q3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4), h3);
            const int8_t *yc = q8 + 128 * c;
            acc = _mm256_add_epi32(acc, dot32_scaled(q0, yc, scale_pair(sc16, 4 * c + 0)));
            acc = _mm256_add_epi32(acc, dot32_scaled(q1, yc + 32, scale_pair(sc16, 4 * c + 1)));
            acc = _mm256_add_epi32(acc, dot32_scaled(q2, yc + 64, scale_pair(sc16, 4 * c + 2)));
            acc = _mm256_add_epi32(acc, dot32_scaled(q3, yc + 96, scale_pair(sc16, 4 * c + 3)));
        }
        /* levels are q − 32: subtract 32·Σ sc·bsums */
        acc = _mm256_sub_epi32(acc, _mm256_slli_epi32(weighted_bsums(sc16, y[i].bsums), 5));
        accf =
            _mm256_fmadd_ps(_mm256_set1_ps(y[i].d * fp16(x[i].d)), _mm256_cvtepi32_ps(acc), accf);
    }
    *s = es_hsum_ps(accf);
}

/* ---- tiles: R rows × T tokens in the order of the vec_dots above ---- */

/* Every y[t][r] of a tile is computed by the operations of the type's vec_dot above, in its
 * order: the same integer block sums (exact in any order), the same float products and
 * accumulations, the same final sum, so the result is bit for bit the one-token vec_dot's
 * whatever the tile or the batch. What a tile shares is the unpacking of a weight block and
 * its scales across its T tokens, and the loads of an activation block across its R rows. */

#define TILE_FN static inline __attribute__((always_inline)) void

/* The token side of 32-element group k of a K-quant tile (the weights unpacked into q[r], 0..63,
 * their 16-bit scales s[r]): acc[r][t] += the scaled pair sums against token t, in 32-bit
 * lanes, exact. */
TILE_FN k_group_tokens(int R, int T, int k, const __m256i *q, const __m256i *s,
                       const es_block_q8_K *const *y, __m256i acc[2][4]) {
#pragma GCC unroll 4
    for (int t = 0; t < T; t++) {
        const __m256i ya = _mm256_loadu_si256((const __m256i *)(y[t]->qs + 32 * k));
#pragma GCC unroll 4
        for (int r = 0; r < R; r++)
            acc[r][t] = _mm256_add_epi32(acc[r][t],
                                         _mm256_madd_epi16(_mm256_maddubs_epi16(q[r], ya), s[r]));
    }
}

/* Q2_K and Q3_K: as Q5_K and Q6_K below, the integer sums of a block for every output of the
 * tile one 32-element group at a time (exact in any order), then vec_dot's scalar float steps
 * per output. q3 false: Q2_K, true: Q3_K. */
TILE_FN q2_3_K_tile(bool q3, int R, int T, int64_t n_in, const uint8_t *const *wr,
                    const uint8_t *const *ar, const float *ad, size_t ld, float *const *out) {
    const __m256i m3 = _mm256_set1_epi8(3);
    const __m128i m4 = _mm_set1_epi8(0x0f);
    float sum[2][4];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++)
            sum[r][t] = 0;
    const size_t bs = q3 ? sizeof(es_block_q3_K) : sizeof(es_block_q2_K);
    for (int64_t i = 0; i < n_in / ES_QK_K; i++) {
        const es_block_q2_K *x2[2];
        const es_block_q3_K *x3[2];
        __m256i sc16[2], mins[2];
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            x2[r] = (const es_block_q2_K *)(wr[r] + (size_t)i * bs);
            x3[r] = (const es_block_q3_K *)(wr[r] + (size_t)i * bs);
            if (q3) {
                sc16[r] = scales16_q3_K(x3[r]->scales);
            } else {
                const __m128i sc8 = _mm_loadu_si128((const __m128i *)x2[r]->scales);
                sc16[r] = _mm256_cvtepu8_epi16(_mm_and_si128(sc8, m4));
                mins[r] = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sc8, 4), m4));
            }
        }
        const es_block_q8_K *y[4];
#pragma GCC unroll 4
        for (int t = 0; t < 4; t++)
            y[t] = (const es_block_q8_K *)ar[t] + i;
        __m256i acc[2][4];
#pragma GCC unroll 4
        for (int r = 0; r < R; r++)
#pragma GCC unroll 4
            for (int t = 0; t < T; t++)
                acc[r][t] = _mm256_setzero_si256();
#pragma GCC unroll 8
        for (int k = 0; k < 8; k++) { /* 32 elements: bits 2j..2j+1 of the 32 bytes of chunk c */
            const int c = k / 4, j = k % 4;
            __m256i q[2], s[2];
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) {
                const uint8_t *qs = q3 ? x3[r]->qs : x2[r]->qs;
                const __m256i qv = _mm256_loadu_si256((const __m256i *)(qs + 32 * c));
                q[r] = _mm256_and_si256(_mm256_srl_epi16(qv, _mm_cvtsi32_si128(2 * j)), m3);
                if (q3) /* level + 4, 0..7 */
                    q[r] = _mm256_or_si256(
                        q[r], bit_to(_mm256_loadu_si256((const __m256i *)x3[r]->hmask), k, 4));
                s[r] = scale_pair(sc16[r], k);
            }
            k_group_tokens(R, T, k, q, s, y, acc);
        }
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
#pragma GCC unroll 4
            for (int t = 0; t < T; t++) {
                if (q3) {
                    /* levels are q − 4: subtract 4·Σ sc·bsums */
                    const __m256i a = _mm256_sub_epi32(
                        acc[r][t], _mm256_slli_epi32(weighted_bsums(sc16[r], y[t]->bsums), 2));
                    sum[r][t] += fp16(x3[r]->d) * y[t]->d * (float)hsum_i32(a);
                } else {
                    const int32_t isum = hsum_i32(acc[r][t]);
                    const int32_t msum = hsum_i32(weighted_bsums(mins[r], y[t]->bsums));
                    const float dall = fp16(x2[r]->d) * y[t]->d, dmin = fp16(x2[r]->dmin) * y[t]->d;
                    sum[r][t] += dall * (float)isum - dmin * (float)msum;
                }
            }
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++)
            out[t][r] = sum[r][t];
}

#define Q2_K_TILE(R, T, n_in, w, a, ad, ld, out) q2_3_K_tile(false, R, T, n_in, w, a, ad, ld, out)
#define Q3_K_TILE(R, T, n_in, w, a, ad, ld, out) q2_3_K_tile(true, R, T, n_in, w, a, ad, ld, out)

/* Q4_K in llama.cpp's order (vec_dot_q4_K_llamacpp): the 8 outputs of a 2 × 4 tile in the lanes of
 * float vectors (lane 4r + t; a smaller tile has its last row and token repeated by the walk, and
 * stores only its own), so that vec_dot_q4_K_llamacpp's two scalar fma chains become lane-wise
 * vector fmas of the same operands in the same order. */
TILE_FN q4_K_tile_llamacpp(int R, int T, int64_t n_in, const uint8_t *const *wr,
                           const uint8_t *const *ar, const float *ad, size_t ld,
                           float *const *out) {
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
    for (int64_t i = 0; i < n_in / ES_QK_K; i++) {
        const es_block_q4_K *x[2] = {(const es_block_q4_K *)wr[0] + i,
                                     (const es_block_q4_K *)wr[1] + i};
        const es_block_q8_K *y[4];
        for (int t = 0; t < 4; t++)
            y[t] = (const es_block_q8_K *)ar[t] + i;
        __m256i sc[2], mins2[2];
        for (int r = 0; r < 2; r++)
            sc[r] = scales_q4_K_w(x[r]->scales, &mins2[r]);
        /* dd, dm of vec_dot per lane: the same float products */
        const float wd0 = fp16(x[0]->d), wd1 = fp16(x[1]->d);
        const float wm0 = fp16(x[0]->dmin), wm1 = fp16(x[1]->dmin);
        const __m256 yd =
            _mm256_setr_ps(y[0]->d, y[1]->d, y[2]->d, y[3]->d, y[0]->d, y[1]->d, y[2]->d, y[3]->d);
        const __m256 dd = _mm256_mul_ps(_mm256_setr_ps(wd0, wd0, wd0, wd0, wd1, wd1, wd1, wd1), yd);
        const __m256 dm = _mm256_mul_ps(_mm256_setr_ps(wm0, wm0, wm0, wm0, wm1, wm1, wm1, wm1), yd);
        /* mv[j] lane 4r + t: vec_dot's mlane[2j] + mlane[2j+1] (integer, exact) */
        __m256i mv[4];
        {
            __m256i hp[4]; /* pairs of outputs: {M0 M1 of o, M0 M1 of o+1 | M2 M3 of o, of o+1} */
            for (int o = 0; o < 8; o += 2)
                hp[o / 2] =
                    _mm256_hadd_epi32(weighted_bsums(mins2[o / 4], y[o % 4]->bsums),
                                      weighted_bsums(mins2[(o + 1) / 4], y[(o + 1) % 4]->bsums));
            const __m256i a01 = _mm256_permute2x128_si256(hp[0], hp[1], 0x20); /* M0 M1, o 0..3 */
            const __m256i b01 = _mm256_permute2x128_si256(hp[2], hp[3], 0x20); /* o 4..7 */
            const __m256i a23 = _mm256_permute2x128_si256(hp[0], hp[1], 0x31); /* M2 M3 */
            const __m256i b23 = _mm256_permute2x128_si256(hp[2], hp[3], 0x31);
            /* even / odd lanes of a and b: lanes o = 0 1 4 5 | 2 3 6 7, then in order */
#define K4_PICK(a, b, imm)                                                                         \
    _mm256_permute4x64_epi64(_mm256_castps_si256(_mm256_shuffle_ps(_mm256_castsi256_ps(a),         \
                                                                   _mm256_castsi256_ps(b), imm)),  \
                             _MM_SHUFFLE(3, 1, 2, 0))
            mv[0] = K4_PICK(a01, b01, _MM_SHUFFLE(2, 0, 2, 0));
            mv[1] = K4_PICK(a01, b01, _MM_SHUFFLE(3, 1, 3, 1));
            mv[2] = K4_PICK(a23, b23, _MM_SHUFFLE(2, 0, 2, 0));
            mv[3] = K4_PICK(a23, b23, _MM_SHUFFLE(3, 1, 3, 1));
#undef K4_PICK
        }
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) { /* 64 elements: low nibbles, then high nibbles */
            __m256i p[8], qv[2];
            for (int r = 0; r < 2; r++)
                qv[r] = _mm256_loadu_si256((const __m256i *)(x[r]->qs + 32 * j));
            for (int h = 0; h < 2; h++) {
                __m256i q[2], s[2];
                for (int r = 0; r < 2; r++) {
                    q[r] = _mm256_and_si256(h ? _mm256_srli_epi16(qv[r], 4) : qv[r], m4);
                    s[r] = K4_SCALE(sc[r], 2 * j + h);
                }
#pragma GCC unroll 4
                for (int t = 0; t < 4; t++) {
                    const __m256i ya =
                        _mm256_loadu_si256((const __m256i *)(y[t]->qs + 64 * j + 32 * h));
                    for (int r = 0; r < 2; r++) {
                        const __m256i d = _mm256_madd_epi16(_mm256_maddubs_epi16(q[r], ya), s[r]);
                        p[4 * r + t] = h ? _mm256_add_epi32(p[4 * r + t], d) : d;
                    }
                }
            }
            acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(es_hsum8x8_epi32(p)), dd, acc);
            accm = _mm256_fmadd_ps(_mm256_cvtepi32_ps(mv[j]), dm, accm);
        }
    }
    float res[8];
    _mm256_storeu_ps(res, _mm256_sub_ps(acc, accm));
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++)
            out[t][r] = res[4 * r + t];
}

/* Q4_K/Q5_K and Q6_K: the integer sums of a block for every output of the tile, one 32-element
 * group at a time (exact in any order), then vec_dot's float steps per output. */
TILE_FN q45_K_tile(bool q5, int R, int T, int64_t n_in, const uint8_t *const *wr,
                   const uint8_t *const *ar, const float *ad, size_t ld, float *const *out) {
    const size_t bs = q5 ? sizeof(es_block_q5_K) : sizeof(es_block_q4_K);
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    __m256 accf[2][4];
    float summs[2][4];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++)
            accf[r][t] = _mm256_setzero_ps(), summs[r][t] = 0;
    for (int64_t i = 0; i < n_in / ES_QK_K; i++) {
        const es_block_q4_K *x[2] = {(const es_block_q4_K *)(wr[0] + (size_t)i * bs),
                                     (const es_block_q4_K *)(wr[1] + (size_t)i * bs)};
        const es_block_q8_K *y[4];
#pragma GCC unroll 4
        for (int t = 0; t < 4; t++)
            y[t] = (const es_block_q8_K *)ar[t] + i;
        __m256i sc[2], mins2[2], acc[2][4];
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            sc[r] = scales_q4_K_w(x[r]->scales, &mins2[r]);
#pragma GCC unroll 4
            for (int t = 0; t < T; t++)
                acc[r][t] = _mm256_setzero_si256();
        }
#pragma GCC unroll 8
        for (int k = 0; k < 8; k++) { /* 32 elements: low (k even) or high nibbles of qs[j] */
            const int j = k / 2;
            __m256i q[2], s[2];
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) {
                const es_block_q5_K *x5 = (const es_block_q5_K *)x[r];
                const __m256i qv =
                    _mm256_loadu_si256((const __m256i *)((q5 ? x5->qs : x[r]->qs) + 32 * j));
                q[r] = _mm256_and_si256(k & 1 ? _mm256_srli_epi16(qv, 4) : qv, m4);
                if (q5)
                    q[r] = _mm256_or_si256(
                        q[r], bit_to(_mm256_loadu_si256((const __m256i *)x5->qh), k, 16));
                s[r] = K4_SCALE(sc[r], k);
            }
            k_group_tokens(R, T, k, q, s, y, acc);
        }
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            const float wd = fp16(x[r]->d), wm = fp16(x[r]->dmin);
#pragma GCC unroll 4
            for (int t = 0; t < T; t++) {
                const int32_t msum = hsum_i32(weighted_bsums(mins2[r], y[t]->bsums));
                const float d = y[t]->d * wd, dmin = -y[t]->d * wm;
                summs[r][t] = fmaf(dmin, (float)msum, summs[r][t]);
                accf[r][t] =
                    _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(acc[r][t]), accf[r][t]);
            }
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++)
            out[t][r] = es_hsum_ps(accf[r][t]) + summs[r][t];
}

TILE_FN q6_K_tile(int R, int T, int64_t n_in, const uint8_t *const *wr, const uint8_t *const *ar,
                  const float *ad, size_t ld, float *const *out) {
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    const __m256i m2 = _mm256_set1_epi8(0x30);
    __m256 accf[2][4];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++)
            accf[r][t] = _mm256_setzero_ps();
    for (int64_t i = 0; i < n_in / ES_QK_K; i++) {
        const es_block_q6_K *x[2] = {(const es_block_q6_K *)wr[0] + i,
                                     (const es_block_q6_K *)wr[1] + i};
        const es_block_q8_K *y[4];
#pragma GCC unroll 4
        for (int t = 0; t < 4; t++)
            y[t] = (const es_block_q8_K *)ar[t] + i;
        __m256i acc[2][4];
#pragma GCC unroll 4
        for (int r = 0; r < R; r++)
#pragma GCC unroll 4
            for (int t = 0; t < T; t++)
                acc[r][t] = _mm256_setzero_si256();
#pragma GCC unroll 8
        for (int k = 0; k < 8; k++) { /* 32 elements: group g of the 128-element chunk c */
            const int c = k / 4, g = k % 4;
            __m256i q[2], s[2];
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) {
                /* as vec_dot_q6_K: low 4 bits from ql (low or high nibbles), bits 4..5 from qh */
                const __m256i l =
                    _mm256_loadu_si256((const __m256i *)(x[r]->ql + 64 * c + 32 * (g & 1)));
                const __m256i h = _mm256_loadu_si256((const __m256i *)(x[r]->qh + 32 * c));
                const __m256i lo = _mm256_and_si256(g < 2 ? l : _mm256_srli_epi16(l, 4), m4);
                const __m256i hi = _mm256_and_si256(g == 0   ? _mm256_slli_epi16(h, 4)
                                                    : g == 1 ? _mm256_slli_epi16(h, 2)
                                                    : g == 2 ? h
                                                             : _mm256_srli_epi16(h, 2),
                                                    m2);
                q[r] = _mm256_or_si256(lo, hi);
                s[r] = scale_pair(
                    _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)x[r]->scales)), k);
            }
            k_group_tokens(R, T, k, q, s, y, acc);
        }
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            const __m256i sc16 =
                _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)x[r]->scales));
            const float wd = fp16(x[r]->d);
#pragma GCC unroll 4
            for (int t = 0; t < T; t++) {
                /* levels are q − 32: subtract 32·Σ sc·bsums */
                const __m256i a = _mm256_sub_epi32(
                    acc[r][t], _mm256_slli_epi32(weighted_bsums(sc16, y[t]->bsums), 5));
                accf[r][t] = _mm256_fmadd_ps(_mm256_set1_ps(y[t]->d * wd), _mm256_cvtepi32_ps(a),
                                             accf[r][t]);
            }
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++)
            out[t][r] = es_hsum_ps(accf[r][t]);
}

ES_TILE_ROWS_AVX2(rows_q2_K, Q2_K_TILE, 2, 4);
ES_TILE_ROWS_AVX2(rows_q3_K, Q3_K_TILE, 2, 4);
#define Q4_K_TILE(R, T, n_in, w, a, ad, ld, out) q45_K_tile(false, R, T, n_in, w, a, ad, ld, out)
#define Q5_K_TILE(R, T, n_in, w, a, ad, ld, out) q45_K_tile(true, R, T, n_in, w, a, ad, ld, out)
ES_TILE_ROWS_AVX2(rows_q4_K, Q4_K_TILE, 2, 4);
ES_TILE_ROWS_AVX2(rows_q4_K_llamacpp, q4_K_tile_llamacpp, 2, 4);
ES_TILE_ROWS_AVX2(rows_q5_K, Q5_K_TILE, 2, 4);

/* Below this many tokens the per-call panels of es_matmul_rows_q4_K_panels cost more than
 * they save. */
#define ES_Q4K_PANEL_MIN_TOK 8

/* Q4_K prompts in llama.cpp's order: the rows-in-lanes panels, or the 2 x 4 tiles for a few
 * tokens: the same bits. */
static void rows_q4_K_llamacpp_any(const uint8_t *W, size_t w_row, int64_t n_in, const uint8_t *xq,
                                   size_t x_row, const float *xd, size_t xd_ld, int64_t n_tok,
                                   float *y, int64_t n_out, int64_t r0, int64_t r1) {
    if (n_tok < ES_Q4K_PANEL_MIN_TOK)
        rows_q4_K_llamacpp(W, w_row, n_in, xq, x_row, xd, xd_ld, n_tok, y, n_out, r0, r1);
    else
        es_matmul_rows_q4_K_panels(W, w_row, n_in, xq, x_row, n_tok, y, n_out, r0, r1);
}
ES_TILE_ROWS_AVX2(rows_q6_K, q6_K_tile, 2, 4);

void es_quants_k_register_tiles_avx2(es_type_traits *table) {
    static const struct {
        es_type type;
        es_vec_dot_tiles_fn tiles;
    } tiles[] = {{ES_TYPE_Q2_K, rows_q2_K},
                 {ES_TYPE_Q3_K, rows_q3_K},
                 {ES_TYPE_Q4_K, rows_q4_K},
                 {ES_TYPE_Q5_K, rows_q5_K},
                 {ES_TYPE_Q6_K, rows_q6_K}};
    for (size_t i = 0; i < sizeof tiles / sizeof tiles[0]; i++) {
        table[tiles[i].type].vec_dot_tiles = tiles[i].tiles; /* 2 rows x 4 tokens */
        table[tiles[i].type].tile_rows = 2;
    }
    /* Q4_K's vec_dot is not the reference's order: llama.cpp's, and its tiles, beside it */
    table[ES_TYPE_Q4_K].vec_dot_llamacpp = vec_dot_q4_K_llamacpp;
    table[ES_TYPE_Q4_K].vec_dot_tiles_llamacpp = rows_q4_K_llamacpp_any;
}

/* ---- Q8_K quantization of activations ---- */

/* int32 lanes of round-half-even(v) clamped to [-128, 127], NaN → -128: es_from_float_q8_K_ref's
 * round_clamp (rounding first gives the same integers: the clamp bounds are integers). */
static inline __m256i round_clamp_q8_K(__m256 v) {
    const __m256 r = _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    /* max(r, lo) is lo when r is NaN (the second operand) */
    return _mm256_cvtps_epi32(
        _mm256_min_ps(_mm256_set1_ps(127.0f), _mm256_max_ps(r, _mm256_set1_ps(-128.0f))));
}

/* es_from_float_q8_K_ref's bytes, vectorized: the same max element (the first of largest
 * magnitude, NaNs skipped), the same float scale and products, the same rounding and sums. */
void es_from_float_q8_K_avx2(const float *x, void *vy, int64_t n) {
    es_block_q8_K *y = vy;
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    for (int64_t b = 0; b < n / ES_QK_K; b++, x += ES_QK_K) {
        es_block_q8_K *out = &y[b];
        __m256 m = _mm256_setzero_ps();
        for (int k = 0; k < ES_QK_K; k += 8) /* max(new, m) keeps m where new is NaN */
            m = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(x + k), absmask), m);
        __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        h = _mm_max_ps(h, _mm_movehl_ps(h, h));
        h = _mm_max_ss(h, _mm_movehdup_ps(h));
        const float amax = _mm_cvtss_f32(h);
        if (amax == 0 || !isfinite(amax)) {
            memset(out, 0, sizeof *out);
            continue;
        }
        int first = 0; /* the first element of magnitude amax, as the reference's strict > */
        for (int k = 0; k < ES_QK_K; k += 8) {
            const int mask = _mm256_movemask_ps(_mm256_cmp_ps(
                _mm256_and_ps(_mm256_loadu_ps(x + k), absmask), _mm256_set1_ps(amax), _CMP_EQ_OQ));
            if (mask) {
                first = k + __builtin_ctz((unsigned)mask);
                break;
            }
        }
        const float iscale = -127.0f / x[first];
        const __m256 is = _mm256_set1_ps(iscale);
        __m256i g[ES_QK_K / 16]; /* int32 lanes summing to each 16-quant group */
        for (int c = 0; c < ES_QK_K / 32; c++) {
            const float *xc = x + 32 * c;
            const __m256i i0 = round_clamp_q8_K(_mm256_mul_ps(is, _mm256_loadu_ps(xc)));
            const __m256i i1 = round_clamp_q8_K(_mm256_mul_ps(is, _mm256_loadu_ps(xc + 8)));
            const __m256i i2 = round_clamp_q8_K(_mm256_mul_ps(is, _mm256_loadu_ps(xc + 16)));
            const __m256i i3 = round_clamp_q8_K(_mm256_mul_ps(is, _mm256_loadu_ps(xc + 24)));
            g[2 * c] = _mm256_add_epi32(i0, i1);
            g[2 * c + 1] = _mm256_add_epi32(i2, i3);
            /* int32 → int8 in element order (the packs interleave 128-bit lanes) */
            const __m256i p8 =
                _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
            _mm256_storeu_si256(
                (__m256i *)(out->qs + 32 * c),
                _mm256_permutevar8x32_epi32(p8, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
        }
        const __m256i s0 = es_hsum8x8_epi32(g), s1 = es_hsum8x8_epi32(g + 8);
        _mm256_storeu_si256((__m256i *)out->bsums,
                            _mm256_permute4x64_epi64(_mm256_packs_epi32(s0, s1), 0xd8));
        out->d = 1.0f / iscale;
    }
}

/* ---- dequantizers ---- */

/* y[0..32) = a·(float)q − b for 32 unsigned bytes q (mul then sub, as the scalar). */
static inline void store32_affine(float *y, __m256i q, float a, float b) {
    const __m256 va = _mm256_set1_ps(a), vb = _mm256_set1_ps(b);
    const __m128i q_lo = _mm256_castsi256_si128(q), q_hi = _mm256_extracti128_si256(q, 1);
    const __m128i parts[4] = {q_lo, _mm_srli_si128(q_lo, 8), q_hi, _mm_srli_si128(q_hi, 8)};
    for (int k = 0; k < 4; k++) {
        const __m256 f = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(parts[k]));
        _mm256_storeu_ps(y + 8 * k, _mm256_sub_ps(_mm256_mul_ps(va, f), vb));
    }
}

void es_to_float_q4_K_avx2(const void *vx, float *y, int64_t n) {
    const es_block_q4_K *x = vx;
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    for (int64_t i = 0; i < n / ES_QK_K; i++, y += ES_QK_K) {
        uint8_t sc[8], m[8];
        es_unpack_scales_q4_K(x[i].scales, sc, m);
        const float d = fp16(x[i].d), dmin = fp16(x[i].dmin);
        for (int j = 0; j < 4; j++) {
            const __m256i qv = _mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * j));
            store32_affine(y + 64 * j, _mm256_and_si256(qv, m4), d * (float)sc[2 * j],
                           dmin * (float)m[2 * j]);
            store32_affine(y + 64 * j + 32, _mm256_and_si256(_mm256_srli_epi16(qv, 4), m4),
                           d * (float)sc[2 * j + 1], dmin * (float)m[2 * j + 1]);
        }
    }
}

/* y[0..16) = a·(q − 32) for 16 unsigned bytes q. */
static inline void store16_q6(float *y, __m128i q, float a) {
    const __m256 va = _mm256_set1_ps(a);
    const __m256i off = _mm256_set1_epi32(32);
    const __m128i parts[2] = {q, _mm_srli_si128(q, 8)};
    for (int k = 0; k < 2; k++) {
        const __m256i v = _mm256_sub_epi32(_mm256_cvtepu8_epi32(parts[k]), off);
        _mm256_storeu_ps(y + 8 * k, _mm256_mul_ps(va, _mm256_cvtepi32_ps(v)));
    }
}

void es_to_float_q6_K_avx2(const void *vx, float *y, int64_t n) {
    const es_block_q6_K *x = vx;
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    const __m256i m2 = _mm256_set1_epi8(0x30);
    for (int64_t i = 0; i < n / ES_QK_K; i++, y += ES_QK_K) {
        const float d = fp16(x[i].d);
        for (int c = 0; c < 2; c++) {
            const __m256i l0 = _mm256_loadu_si256((const __m256i *)(x[i].ql + 64 * c));
            const __m256i l1 = _mm256_loadu_si256((const __m256i *)(x[i].ql + 64 * c + 32));
            const __m256i h = _mm256_loadu_si256((const __m256i *)(x[i].qh + 32 * c));
            __m256i q[4];
            q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4),
                                   _mm256_and_si256(_mm256_slli_epi16(h, 4), m2));
            q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4),
                                   _mm256_and_si256(_mm256_slli_epi16(h, 2), m2));
            q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                                   _mm256_and_si256(h, m2));
            q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                   _mm256_and_si256(_mm256_srli_epi16(h, 2), m2));
            for (int g = 0; g < 4; g++) {
                const int sb = 8 * c + 2 * g; /* sub-block of the first 16 */
                float *yo = y + 128 * c + 32 * g;
                store16_q6(yo, _mm256_castsi256_si128(q[g]), d * (float)x[i].scales[sb]);
                store16_q6(yo + 16, _mm256_extracti128_si256(q[g], 1),
                           d * (float)x[i].scales[sb + 1]);
            }
        }
    }
}
