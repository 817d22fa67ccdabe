/*
 * simd_avx2.h — small AVX2 helpers shared by quants_avx2.c and matmul_avx2.c. Include
 * only from files compiled with -mavx2 -mfma -mf16c (the *_avx2.c files).
 */
#ifndef ES_SIMD_AVX2_H
#define ES_SIMD_AVX2_H

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

/* Sum of the 8 lanes. */
static inline float es_hsum_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Lane k = the sum of the 8 int32 lanes of v[k] (exact). */
static inline __m256i es_hsum8x8_epi32(const __m256i v[8]) {
    const __m256i u0 =
        _mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3]));
    const __m256i u1 =
        _mm256_hadd_epi32(_mm256_hadd_epi32(v[4], v[5]), _mm256_hadd_epi32(v[6], v[7]));
    /* u0: {Σlo v0..v3 | Σhi v0..v3}, u1 the same for v4..v7 */
    return _mm256_add_epi32(_mm256_permute2x128_si256(u0, u1, 0x20),
                            _mm256_permute2x128_si256(u0, u1, 0x31));
}

/* The 32 nibbles of a 16-byte block as bytes in element order: low nibbles
 * (elements 0..15) then high nibbles (elements 16..31). */
static inline __m256i es_unpack_nibbles(const uint8_t *qs) {
    const __m128i q = _mm_loadu_si128((const __m128i *)qs);
    const __m128i lo = _mm_and_si128(q, _mm_set1_epi8(0x0f));
    const __m128i hi = _mm_and_si128(_mm_srli_epi16(q, 4), _mm_set1_epi8(0x0f));
    return _mm256_set_m128i(hi, lo);
}

/* 0xff in byte j where bit j of the little-endian 32-bit qh is set, else 0. */
static inline __m256i es_expand_bits(const uint8_t qh[4]) {
    uint32_t bits;
    memcpy(&bits, qh, sizeof bits);
    const __m256i shuf = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2,
                                          2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i bitsel = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    const __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)bits), shuf);
    return _mm256_cmpeq_epi8(_mm256_and_si256(v, bitsel), bitsel);
}

/* Transposes 8 rows of 8 dwords in place (r[i][j] <-> r[j][i]). */
static inline __attribute__((always_inline)) void es_transpose8x8_epi32(__m256i r[8]) {
    __m256 t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(_mm256_castsi256_ps(r[i]), _mm256_castsi256_ps(r[i + 1]));
        t[i + 1] = _mm256_unpackhi_ps(_mm256_castsi256_ps(r[i]), _mm256_castsi256_ps(r[i + 1]));
    }
    for (int i = 0; i < 8; i += 4) {
        u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
        u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xee);
        u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xee);
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm256_castps_si256(_mm256_permute2f128_ps(u[i], u[i + 4], 0x20));
        r[i + 4] = _mm256_castps_si256(_mm256_permute2f128_ps(u[i], u[i + 4], 0x31));
    }
}

/* Tokens per block of the tile walks below: their activation rows stay in cache while the
 * weight rows pass over them. */
#define ES_TILE_TOK_BLOCK 32

/* Calls tile(R, T, n_in, w, a, ad, ld, out) with a constant T in 1..4 (so that the tile's
 * accumulators live in registers). */
#define ES_TILE_CALL_T(tile, R, T, n_in, w, a, ad, ld, out)                                        \
    switch (T) {                                                                                   \
    case 4: tile(R, 4, n_in, w, a, ad, ld, out); break;                                            \
    case 3: tile(R, 3, n_in, w, a, ad, ld, out); break;                                            \
    case 2: tile(R, 2, n_in, w, a, ad, ld, out); break;                                            \
    default: tile(R, 1, n_in, w, a, ad, ld, out); break;                                           \
    }

/* Defines static void name(W, w_row, n_in, xq, x_row, xd, xd_ld, n_tok, y, n_out, r0, r1), an
 * es_vec_dot_tiles_fn: y[t][r] for rows [r0, r1) and all n_tok tokens (W: rows of w_row bytes;
 * xq: activation rows of x_row bytes in the vec_dot type; xd: their block scales as floats,
 * xd[b * xd_ld + t], or NULL; y: [n_tok][n_out]), walked as token blocks of ES_TILE_TOK_BLOCK
 * and, inside them, tiles of r_max (1 or 2) rows by up to t_max (<= 4) tokens, each computed by
 * tile(R, T, n_in, w, a, ad, ld, out) with w[R] the weight rows, a[T] the activation rows, ad
 * the scales of the tile's first token (ad[b * ld + k] for token k < 4 of the tile; NULL with
 * xd) and out[T] the outputs of the tile's first row per token; w[2] and a[4] are always whole,
 * the last row and token repeated past R and T, so a tile may compute 2 x 4 and store R x T.
 * Use as a declaration: ES_TILE_ROWS_AVX2(name, tile, 2, 4); */
#define ES_TILE_ROWS_AVX2(name, tile, r_max, t_max)                                                \
    static void name(const uint8_t *W, size_t w_row, int64_t n_in, const uint8_t *xq,              \
                     size_t x_row, const float *xd, size_t xd_ld, int64_t n_tok, float *y,         \
                     int64_t n_out, int64_t r0, int64_t r1) {                                      \
        for (int64_t t0 = 0; t0 < n_tok; t0 += ES_TILE_TOK_BLOCK) {                                \
            const int64_t t1 = t0 + ES_TILE_TOK_BLOCK < n_tok ? t0 + ES_TILE_TOK_BLOCK : n_tok;    \
            for (int64_t r = r0; r < r1; r += (r_max)) {                                           \
                const int R = r + (r_max) <= r1 ? (r_max) : 1;                                     \
                const uint8_t *w[2] = {W + (size_t)r * w_row, W + (size_t)(r + R - 1) * w_row};    \
                for (int64_t t = t0; t < t1; t += (t_max)) {                                       \
                    const int T = t + (t_max) <= t1 ? (t_max) : (int)(t1 - t);                     \
                    const uint8_t *a[4];                                                           \
                    float *out[4];                                                                 \
                    for (int k = 0; k < 4; k++) {                                                  \
                        const int64_t tk = t + (k < T ? k : T - 1);                                \
                        a[k] = xq + (size_t)tk * x_row;                                            \
                        out[k] = y + tk * n_out + r;                                               \
                    }                                                                              \
                    const float *ad = xd ? xd + t : NULL;                                          \
                    if (R == 2) {                                                                  \
                        ES_TILE_CALL_T(tile, 2, T, n_in, w, a, ad, xd_ld, out)                     \
                    } else {                                                                       \
                        ES_TILE_CALL_T(tile, 1, T, n_in, w, a, ad, xd_ld, out)                     \
                    }                                                                              \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }                                                                                              \
    _Static_assert((r_max) >= 1 && (r_max) <= 2 && (t_max) >= 1 && (t_max) <= 4, "tile shape")

#endif /* ES_SIMD_AVX2_H */
