/*
 * matmul_q_avx2.c — es_matmul's prompt case (n_tok > 1) for Q4_0, Q4_1, Q5_0, Q5_1 and
 * Q8_0 weights with integer dot products (AVX-VNNI vpdpbusd: 4 u8 × s8 products per
 * int32 lane per instruction).
 *
 * Packing: a panel of 16 weight rows × KB blocks is rewritten as unsigned bytes
 * (Q8_0: q + 128; Q4/Q5: the raw 4/5-bit values), interleaved so that one 32-byte
 * load holds 4 consecutive k of 8 rows:
 *     q[block][group g = k/4 within the block][row 0..15][4 bytes]
 * with the per-row block scales d (and mins m for Q4_1/Q5_1) as floats beside them.
 * Activations stay in their Q8_0/Q8_1 blocks; per token and block, es_xinfo holds the
 * scale, the weight offset times the sum of the quants (so that
 * sum (w+off)·x − off·sum x = sum w·x exactly), and Q8_1's s for the min term.
 *
 * Tile: 16 rows (two vectors of 8 int32 lanes) × 3 tokens; per block the exact
 * integer sums are scaled by d_w·d_x and accumulated in f32 lanes, one lane per row,
 * block after block (the same arithmetic as the vec_dot kernels, summed in order).
 */
#include "kernels.h"
#include "simd_avx2.h"

#include <immintrin.h>
#include <string.h>

#define PR 16 /* weight rows per panel */
#define PT 3  /* tokens per tile */
#define KB 16 /* blocks of 32 per packed panel (512 k) */

#define ES_ALWAYS_INLINE inline __attribute__((always_inline))

typedef struct {
    uint8_t q[KB][8][PR][4]; /* biased unsigned quants, interleaved */
    float d[KB][PR];         /* row scales per block */
    float m[KB][PR];         /* row mins per block (Q4_1/Q5_1) */
} packed_panel;

bool es_vnni_supported(void) {
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = es_kernels_have_avx2() && __builtin_cpu_supports("avxvnni") ? 1 : 0;
    }
    return cached == 1;
}

int es_vnni_weight_offset(int type) {
    switch (type) {
    case ES_TYPE_Q8_0: return 128;
    case ES_TYPE_Q4_0: return 8;
    case ES_TYPE_Q5_0: return 16;
    case ES_TYPE_Q4_1:
    case ES_TYPE_Q5_1: return 0;
    default: return -1;
    }
}

/* Byte offset of the quants in an activation block, and the block size. */
static inline size_t act_qs_offset(int type) { return es_type_get(type)->vec_dot_type == ES_TYPE_Q8_1 ? 4 : 2; }
static inline size_t act_block_bytes(int type) { return es_type_get(type)->vec_dot_type == ES_TYPE_Q8_1 ? 36 : 34; }

void es_vnni_xinfo(int type, const uint8_t *xq, int64_t nb, es_xinfo *out) {
    const int off = es_vnni_weight_offset(type);
    const bool q8_1 = es_type_get(type)->vec_dot_type == ES_TYPE_Q8_1;
    const size_t bs = act_block_bytes(type), qo = act_qs_offset(type);
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = xq + (size_t)b * bs;
        uint16_t d, s = 0;
        memcpy(&d, blk, 2);
        if (q8_1) memcpy(&s, blk + 2, 2);
        /* sum of 32 int8: maddubs with ones, then madd */
        const __m256i q = _mm256_loadu_si256((const __m256i *)(blk + qo));
        const __m256i s16 = _mm256_maddubs_epi16(_mm256_set1_epi8(1), q);
        const __m256i s32 = _mm256_madd_epi16(s16, _mm256_set1_epi16(1));
        __m128i t = _mm_add_epi32(_mm256_castsi256_si128(s32), _mm256_extracti128_si256(s32, 1));
        t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0x4e));
        t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0xb1));
        out[b].d = _cvtsh_ss(d);
        out[b].ms = q8_1 ? _cvtsh_ss(s) : 0.0f;
        out[b].c = off * _mm_cvtsi128_si32(t);
        out[b].pad = 0;
    }
}

/* 32 unsigned (biased) quants of a weight block in element order. */
static ES_ALWAYS_INLINE __m256i biased_quants(int type, const uint8_t *blk) {
    switch (type) {
    case ES_TYPE_Q8_0:
        return _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(blk + 2)), _mm256_set1_epi8((char)0x80));
    case ES_TYPE_Q4_0: return es_unpack_nibbles(blk + 2);
    case ES_TYPE_Q4_1: return es_unpack_nibbles(blk + 4);
    case ES_TYPE_Q5_0:
        return _mm256_or_si256(es_unpack_nibbles(blk + 6),
                               _mm256_and_si256(es_expand_bits(blk + 2), _mm256_set1_epi8(0x10)));
    default: /* Q5_1 */
        return _mm256_or_si256(es_unpack_nibbles(blk + 8),
                               _mm256_and_si256(es_expand_bits(blk + 4), _mm256_set1_epi8(0x10)));
    }
}

/* Transposes 8 rows of 8 dwords in place (r[i][j] <-> r[j][i]). */
static ES_ALWAYS_INLINE void transpose8x8_epi32(__m256i r[8]) {
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

/* Packs rows [r, r + nr) (nr <= 16; missing rows get zero scales) for blocks
 * [b0, b0 + kb) into p. */
static ES_ALWAYS_INLINE void pack_panel_t(int type, const uint8_t *W, size_t w_row, size_t bbytes, int64_t r, int nr,
                                          int64_t b0, int kb, packed_panel *p) {
    const bool has_m = type == ES_TYPE_Q4_1 || type == ES_TYPE_Q5_1;
    for (int half = 0; half < 2; half++) {
        for (int b = 0; b < kb; b++) {
            __m256i v[8];
            for (int i = 0; i < 8; i++) {
                const int row = half * 8 + i;
                if (row < nr) {
                    const uint8_t *blk = W + (size_t)(r + row) * w_row + (size_t)(b0 + b) * bbytes;
                    uint16_t d;
                    memcpy(&d, blk, 2);
                    v[i] = biased_quants(type, blk);
                    p->d[b][row] = _cvtsh_ss(d);
                    if (has_m) {
                        uint16_t m;
                        memcpy(&m, blk + 2, 2);
                        p->m[b][row] = _cvtsh_ss(m);
                    }
                } else {
                    v[i] = _mm256_setzero_si256();
                    p->d[b][row] = 0.0f;
                    p->m[b][row] = 0.0f;
                }
            }
            transpose8x8_epi32(v); /* v[g] = 4 bytes of group g for the 8 rows */
            for (int g = 0; g < 8; g++) _mm256_storeu_si256((__m256i *)p->q[b][g][half * 8], v[g]);
        }
    }
}

static void pack_panel(int type, const uint8_t *W, size_t w_row, int64_t r, int nr, int64_t b0, int kb,
                       packed_panel *p) {
    const size_t bb = es_type_get(type)->type_size;
    switch (type) {
    case ES_TYPE_Q8_0: pack_panel_t(ES_TYPE_Q8_0, W, w_row, bb, r, nr, b0, kb, p); break;
    case ES_TYPE_Q4_0: pack_panel_t(ES_TYPE_Q4_0, W, w_row, bb, r, nr, b0, kb, p); break;
    case ES_TYPE_Q4_1: pack_panel_t(ES_TYPE_Q4_1, W, w_row, bb, r, nr, b0, kb, p); break;
    case ES_TYPE_Q5_0: pack_panel_t(ES_TYPE_Q5_0, W, w_row, bb, r, nr, b0, kb, p); break;
    default: pack_panel_t(ES_TYPE_Q5_1, W, w_row, bb, r, nr, b0, kb, p); break;
    }
}

/* acc[v][t] += sum over blocks [0, kb) for 16 rows × nt tokens. x[t] points at the
 * quants of token t's first block; xi[t] at its first es_xinfo. */
__attribute__((target("avxvnni"))) static ES_ALWAYS_INLINE void tile_vnni(int nt, bool has_m, const packed_panel *p,
                                                                          int kb, const uint8_t *const x[PT],
                                                                          size_t xbs, const es_xinfo *const xi[PT],
                                                                          __m256 acc[2][PT]) {
    for (int b = 0; b < kb; b++) {
        __m256i ia[2][PT];
#pragma GCC unroll 3
        for (int t = 0; t < nt; t++) ia[0][t] = ia[1][t] = _mm256_setzero_si256();
#pragma GCC unroll 8
        for (int g = 0; g < 8; g++) {
            const __m256i w0 = _mm256_loadu_si256((const __m256i *)p->q[b][g][0]);
            const __m256i w1 = _mm256_loadu_si256((const __m256i *)p->q[b][g][8]);
#pragma GCC unroll 3
            for (int t = 0; t < nt; t++) {
                int32_t xv;
                memcpy(&xv, x[t] + (size_t)b * xbs + 4 * g, 4);
                const __m256i xb = _mm256_set1_epi32(xv);
                ia[0][t] = _mm256_dpbusd_avx_epi32(ia[0][t], w0, xb);
                ia[1][t] = _mm256_dpbusd_avx_epi32(ia[1][t], w1, xb);
            }
        }
        const __m256 d0 = _mm256_loadu_ps(p->d[b]), d1 = _mm256_loadu_ps(p->d[b] + 8);
#pragma GCC unroll 3
        for (int t = 0; t < nt; t++) {
            const __m256i c = _mm256_set1_epi32(xi[t][b].c);
            const __m256 dx = _mm256_set1_ps(xi[t][b].d);
            acc[0][t] = _mm256_fmadd_ps(_mm256_mul_ps(d0, dx), _mm256_cvtepi32_ps(_mm256_sub_epi32(ia[0][t], c)),
                                        acc[0][t]);
            acc[1][t] = _mm256_fmadd_ps(_mm256_mul_ps(d1, dx), _mm256_cvtepi32_ps(_mm256_sub_epi32(ia[1][t], c)),
                                        acc[1][t]);
            if (has_m) {
                const __m256 s = _mm256_set1_ps(xi[t][b].ms);
                acc[0][t] = _mm256_fmadd_ps(_mm256_loadu_ps(p->m[b]), s, acc[0][t]);
                acc[1][t] = _mm256_fmadd_ps(_mm256_loadu_ps(p->m[b] + 8), s, acc[1][t]);
            }
        }
    }
}

__attribute__((target("avxvnni"))) static void run_tile(int nt, bool has_m, const packed_panel *p, int kb,
                                                        const uint8_t *const x[PT], size_t xbs,
                                                        const es_xinfo *const xi[PT], __m256 acc[2][PT]) {
#define ES_QTILE(T, M)                                                                                       \
    case (T) * 2 + (M): tile_vnni(T, M, p, kb, x, xbs, xi, acc); break;
    switch (nt * 2 + (has_m ? 1 : 0)) {
        ES_QTILE(3, 0) ES_QTILE(2, 0) ES_QTILE(1, 0) ES_QTILE(3, 1) ES_QTILE(2, 1) ES_QTILE(1, 1)
    default: break;
    }
#undef ES_QTILE
}

void es_vnni_matmul_rows(int type, const uint8_t *W, size_t w_row, int64_t n_in, const uint8_t *xq, size_t x_row,
                         const es_xinfo *xi, int64_t n_tok, float *y, int64_t n_out, int64_t r0, int64_t r1) {
    packed_panel panel __attribute__((aligned(32)));
    const int64_t nb = n_in / 32;
    const bool has_m = type == ES_TYPE_Q4_1 || type == ES_TYPE_Q5_1;
    const size_t xbs = act_block_bytes(type), qo = act_qs_offset(type);
    /* tokens per block: keep their activation rows within ~384 KB of L2 */
    int64_t tb_max = (384 * 1024) / (int64_t)(x_row ? x_row : 1);
    tb_max = tb_max < PT ? PT : (tb_max > 96 ? 96 : tb_max / PT * PT);
    for (int64_t t0 = 0; t0 < n_tok; t0 += tb_max) {
        const int64_t t1 = t0 + tb_max < n_tok ? t0 + tb_max : n_tok;
        for (int64_t r = r0; r < r1; r += PR) {
            const int nr = (int)(r1 - r < PR ? r1 - r : PR);
            for (int64_t b0 = 0; b0 < nb; b0 += KB) {
                const int kb = (int)(nb - b0 < KB ? nb - b0 : KB);
                pack_panel(type, W, w_row, r, nr, b0, kb, &panel);
                for (int64_t t = t0; t < t1; t += PT) {
                    const int nt = (int)(t1 - t < PT ? t1 - t : PT);
                    const uint8_t *xt[PT];
                    const es_xinfo *xit[PT];
                    __m256 acc[2][PT];
                    for (int j = 0; j < nt; j++) {
                        xt[j] = xq + (size_t)(t + j) * x_row + (size_t)b0 * xbs + qo;
                        xit[j] = xi + (t + j) * nb + b0;
                        acc[0][j] = acc[1][j] = _mm256_setzero_ps();
                    }
                    run_tile(nt, has_m, &panel, kb, xt, xbs, xit, acc);
                    for (int j = 0; j < nt; j++) {
                        float *yr = y + (t + j) * n_out + r;
                        if (nr == PR) {
                            __m256 v0 = acc[0][j], v1 = acc[1][j];
                            if (b0 > 0) {
                                v0 = _mm256_add_ps(_mm256_loadu_ps(yr), v0);
                                v1 = _mm256_add_ps(_mm256_loadu_ps(yr + 8), v1);
                            }
                            _mm256_storeu_ps(yr, v0);
                            _mm256_storeu_ps(yr + 8, v1);
                            continue;
                        }
                        float out[PR];
                        _mm256_storeu_ps(out, acc[0][j]);
                        _mm256_storeu_ps(out + 8, acc[1][j]);
                        if (b0 == 0)
                            for (int i = 0; i < nr; i++) yr[i] = out[i];
                        else
                            for (int i = 0; i < nr; i++) yr[i] += out[i];
                    }
                }
            }
        }
    }
}
