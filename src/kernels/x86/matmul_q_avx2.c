/*
 * matmul_q_avx2.c — es_matmul's prompt case (n_tok >= 4) for quantized weights, outside the
 * batch-invariant mode: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 (activations Q8_0/Q8_1), with integer dot
 * products of 4 bytes per int32 lane and one lane per weight row: AVX-VNNI's vpdpbusd, or
 * without it AVX2's pmaddubsw summed in int16 over several groups, then pmaddwd by ones
 * (exact: at most 8 groups of 4-bit, 4 of 5-bit quants; Q8_0 one group, as |w| times x with
 * w's sign). Against the tiles in vec_dot's order, without VNNI: 1.1x (Q8_0) to 2x (Q5_1) at
 * 1 thread, 896x4864 x 128 tokens; the same sums up to float rounding. The K types have
 * their own (matmul_q4k_avx2.c, the tiles).
 *
 * Every weight is written as w = scale_g · (q − off) + min_g with q an unsigned byte,
 * off a constant of the type and (scale_g, min_g) per block of GS = 32 weights:
 *     Q8_0: q + 128 (off 128; without VNNI q itself, off 0)
 *     Q4_0: 4 bits, off 8     Q5_0: 5 bits, off 16     Q4_1/Q5_1: off 0, min m
 * Packing: a panel of 16 weight rows × one chunk of k (512 elements) is rewritten as those
 * bytes, interleaved so that one 32-byte load holds 4 consecutive k of 8 rows:
 * q[k/32][(k%32)/4][row 0..15][k%4], with the per-row group scales and mins as floats
 * beside them.
 * Activations stay in their Q8 blocks; per token and group, es_xinfo holds the scale,
 * off·Σx (so that Σ q·x − off·Σx = Σ (q − off)·x exactly), and scale·Σx for the mins.
 *
 * Tile: 16 rows (two vectors of 8 int32 lanes, one lane per row) × 3 tokens; per group
 * the exact integer sums are scaled by scale_g·d_x and accumulated in f32 lanes, group
 * after group and chunk after chunk: for Q4_0/Q5_0 the order of their scalar references
 * (kernels.h), bit for bit; for Q8_0 (whose order keeps eight partial lanes per block) equal
 * up to float rounding.
 */
#include "cpu.h"
#include "kernels.h"
#include "simd_avx2.h"

#include <immintrin.h>
#include <stdatomic.h>
#include <string.h>

#define PR 16       /* weight rows per panel */
#define PT 3        /* tokens per tile */
#define CHUNK_K 512 /* k per packed panel */

#define ES_ALWAYS_INLINE inline __attribute__((always_inline))

typedef struct {
    uint8_t q[CHUNK_K * PR];      /* biased unsigned quants, interleaved */
    float d[CHUNK_K / ES_QK][PR]; /* per block and row: scale */
    float m[CHUNK_K / ES_QK][PR]; /* per block and row: min (types with mins) */
} packed_panel;

/* How a type maps onto the packed path (blocks of ES_QK weights). */
typedef struct {
    int off;    /* constant subtracted from the unsigned quants */
    bool has_m; /* per-block mins */
    bool sgn;   /* Q8_0 without VNNI: signed quants as they are (off 0), multiplied by pmaddubsw
                   as |w| times x with w's sign */
} qdesc;

static bool get_desc(int type, qdesc *d) {
    switch (type) {
    case ES_TYPE_Q8_0:
        *d = es_avxvnni_supported() ? (qdesc){128, false, false} : (qdesc){0, false, true};
        return true;
    case ES_TYPE_Q4_0: *d = (qdesc){8, false, false}; return true;
    case ES_TYPE_Q5_0: *d = (qdesc){16, false, false}; return true;
    case ES_TYPE_Q4_1:
    case ES_TYPE_Q5_1: *d = (qdesc){0, true, false}; return true;
    default: return false;
    }
}

bool es_avxvnni_supported(void) {
    static _Atomic int cached = -1; /* computed once; racing first calls agree */
    if (cached < 0)
        cached =
            es_kernels_have_avx2() && es_cpu_has(ES_CPU_AVXVNNI) && !es_env_switch("ES_NO_VNNI");
    return cached == 1;
}

int es_group_size_packed(int type) {
    qdesc d;
    if (!get_desc(type, &d)) return 0;
    const es_type_traits *t = es_type_get(type);
    if (!t || !t->can_compute) return 0;
    return ES_QK;
}

/* ---- activations ---- */

/* Sum of the 32 int8 at p. */
static inline int32_t sum_i8x32(const uint8_t *p) {
    const __m256i q = _mm256_loadu_si256((const __m256i *)p);
    const __m256i s32 =
        _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), q), _mm256_set1_epi16(1));
    __m128i t = _mm_add_epi32(_mm256_castsi256_si128(s32), _mm256_extracti128_si256(s32, 1));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0x4e));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0xb1));
    return _mm_cvtsi128_si32(t);
}

void es_xinfo_packed(int type, const uint8_t *xq, int64_t n_in, es_xinfo *out) {
    qdesc q;
    if (!get_desc(type, &q)) return;
    const bool q8_1 = es_type_get(type)->vec_dot_type == ES_TYPE_Q8_1;
    const size_t bs = q8_1 ? sizeof(es_block_q8_1) : sizeof(es_block_q8_0);
    for (int64_t b = 0; b < n_in / ES_QK; b++) {
        const uint8_t *blk = xq + (size_t)b * bs;
        uint16_t d, s = 0;
        memcpy(&d, blk, 2);
        if (q8_1) memcpy(&s, blk + 2, 2);
        out[b].d = _cvtsh_ss(d);
        out[b].ms = q8_1 ? _cvtsh_ss(s) : 0.0f;
        out[b].c = q.off * sum_i8x32(blk + (q8_1 ? 4 : 2));
        out[b].pad = 0;
    }
}

/* ---- weights: unsigned quants in element order, 32 at a time ---- */

/* The 32 biased quants of a non-K block. */
static ES_ALWAYS_INLINE __m256i block_quants(int type, bool sgn, const uint8_t *blk) {
    switch (type) {
    case ES_TYPE_Q8_0:
        if (sgn) return _mm256_loadu_si256((const __m256i *)(blk + 2));
        return _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(blk + 2)),
                                _mm256_set1_epi8((char)0x80));
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

/* Packs rows [r, r + nr) (nr <= 16; missing rows get zero quants and scales) for the
 * n32 32-element pieces of chunk `chunk` (elements chunk*CHUNK_K ..). */
static ES_ALWAYS_INLINE void pack_panel_t(int type, qdesc q, const uint8_t *W, size_t w_row,
                                          int64_t r, int nr, int64_t chunk, int n32,
                                          packed_panel *p) {
    const size_t bb = es_type_get(type)->type_size;
    for (int half = 0; half < 2; half++) {
        /* scales */
        for (int i = 0; i < 8; i++) {
            const int row = half * 8 + i;
            if (row >= nr) {
                for (int c = 0; c < n32; c++)
                    p->d[c][row] = p->m[c][row] = 0.0f;
                continue;
            }
            const uint8_t *wr = W + (size_t)(r + row) * w_row;
            for (int c = 0; c < n32; c++) {
                const uint8_t *blk = wr + (size_t)(chunk * (CHUNK_K / 32) + c) * bb;
                uint16_t d, m = 0;
                memcpy(&d, blk, 2);
                if (q.has_m) memcpy(&m, blk + 2, 2);
                p->d[c][row] = _cvtsh_ss(d);
                p->m[c][row] = _cvtsh_ss(m);
            }
        }
        /* quants, 32 elements × 8 rows at a time */
        for (int c = 0; c < n32; c++) {
            __m256i v[8];
            for (int i = 0; i < 8; i++) {
                const int row = half * 8 + i;
                if (row >= nr) {
                    v[i] = _mm256_setzero_si256();
                    continue;
                }
                const uint8_t *wr = W + (size_t)(r + row) * w_row;
                v[i] = block_quants(type, q.sgn, wr + (size_t)(chunk * (CHUNK_K / 32) + c) * bb);
            }
            es_transpose8x8_epi32(v); /* v[g] = 4 bytes of dword-group g for the 8 rows */
            for (int g = 0; g < 8; g++)
                _mm256_storeu_si256((__m256i *)(p->q + c * 32 * PR + g * 64 + half * 32), v[g]);
        }
    }
}

static void pack_panel(int type, qdesc q, const uint8_t *W, size_t w_row, int64_t r, int nr,
                       int64_t chunk, int n32, packed_panel *p) {
#define ES_PACK(T)                                                                                 \
    case T: pack_panel_t(T, q, W, w_row, r, nr, chunk, n32, p); break;
    switch (type) {
        ES_PACK(ES_TYPE_Q8_0)
        ES_PACK(ES_TYPE_Q4_0)
        ES_PACK(ES_TYPE_Q4_1) ES_PACK(ES_TYPE_Q5_0) ES_PACK(ES_TYPE_Q5_1) default : break;
    }
#undef ES_PACK
}

/* ---- the tile ---- */

/* The end of block b: acc[v][t] += scale_w·d_x · (ia − c) (+ min_w · d_x·Σx). */
#define QP_BLOCK_END                                                                               \
    const __m256 d0 = _mm256_loadu_ps(p->d[b]), d1 = _mm256_loadu_ps(p->d[b] + 8);                 \
    _Pragma("GCC unroll 3") for (int t = 0; t < nt; t++) {                                         \
        const __m256i c = _mm256_set1_epi32(xi[t][b].c);                                           \
        const __m256 dx = _mm256_set1_ps(xi[t][b].d);                                              \
        acc[0][t] = _mm256_fmadd_ps(_mm256_mul_ps(d0, dx),                                         \
                                    _mm256_cvtepi32_ps(_mm256_sub_epi32(ia[0][t], c)), acc[0][t]); \
        acc[1][t] = _mm256_fmadd_ps(_mm256_mul_ps(d1, dx),                                         \
                                    _mm256_cvtepi32_ps(_mm256_sub_epi32(ia[1][t], c)), acc[1][t]); \
        if (has_m) {                                                                               \
            const __m256 s = _mm256_set1_ps(xi[t][b].ms);                                          \
            acc[0][t] = _mm256_fmadd_ps(_mm256_loadu_ps(p->m[b]), s, acc[0][t]);                   \
            acc[1][t] = _mm256_fmadd_ps(_mm256_loadu_ps(p->m[b] + 8), s, acc[1][t]);               \
        }                                                                                          \
    }

/* acc[v][t] += the sums over nb blocks of 8 dword-groups for 16 rows × nt tokens.
 * x[t]: quants of token t's first block, blocks xgs bytes apart; xi[t]: its first es_xinfo. */
__attribute__((target("avxvnni"))) static ES_ALWAYS_INLINE void
tile_vnni(int nt, bool has_m, const packed_panel *p, int nb, const uint8_t *const x[PT], size_t xgs,
          const es_xinfo *const xi[PT], __m256 acc[2][PT]) {
    for (int b = 0; b < nb; b++) {
        __m256i ia[2][PT];
#pragma GCC unroll 3
        for (int t = 0; t < nt; t++)
            ia[0][t] = ia[1][t] = _mm256_setzero_si256();
        const uint8_t *qb = p->q + (size_t)b * 8 * 64;
#pragma GCC unroll 8
        for (int g = 0; g < 8; g++) {
            const __m256i w0 = _mm256_loadu_si256((const __m256i *)(qb + g * 64));
            const __m256i w1 = _mm256_loadu_si256((const __m256i *)(qb + g * 64 + 32));
#pragma GCC unroll 3
            for (int t = 0; t < nt; t++) {
                int32_t xv;
                memcpy(&xv, x[t] + (size_t)b * xgs + 4 * g, 4);
                const __m256i xb = _mm256_set1_epi32(xv);
                ia[0][t] = _mm256_dpbusd_avx_epi32(ia[0][t], w0, xb);
                ia[1][t] = _mm256_dpbusd_avx_epi32(ia[1][t], w1, xb);
            }
        }
        QP_BLOCK_END
    }
}

/* Without VNNI: gk groups' pmaddubsw sums added in int16 before one pmaddwd (exact: at most
 * gk·2·q_max·128 <= 32767, gk 8 for 4-bit quants, 4 for 5-bit, 1 for Q8_0's |w| up to 127). */
static ES_ALWAYS_INLINE void tile_avx2(int nt, bool has_m, bool sgn, int gk, const packed_panel *p,
                                       int nb, const uint8_t *const x[PT], size_t xgs,
                                       const es_xinfo *const xi[PT], __m256 acc[2][PT]) {
    const __m256i ones = _mm256_set1_epi16(1);
    for (int b = 0; b < nb; b++) {
        __m256i ia[2][PT];
#pragma GCC unroll 3
        for (int t = 0; t < nt; t++)
            ia[0][t] = ia[1][t] = _mm256_setzero_si256();
        const uint8_t *qb = p->q + (size_t)b * 8 * 64;
#pragma GCC unroll 8
        for (int g0 = 0; g0 < 8; g0 += gk) {
            __m256i s[2][PT];
#pragma GCC unroll 8
            for (int g = g0; g < g0 + gk; g++) {
                const __m256i w0 = _mm256_loadu_si256((const __m256i *)(qb + g * 64));
                const __m256i w1 = _mm256_loadu_si256((const __m256i *)(qb + g * 64 + 32));
                const __m256i a0 = sgn ? _mm256_sign_epi8(w0, w0) : w0;
                const __m256i a1 = sgn ? _mm256_sign_epi8(w1, w1) : w1;
#pragma GCC unroll 3
                for (int t = 0; t < nt; t++) {
                    int32_t xv;
                    memcpy(&xv, x[t] + (size_t)b * xgs + 4 * g, 4);
                    const __m256i xb = _mm256_set1_epi32(xv);
                    const __m256i p0 =
                        _mm256_maddubs_epi16(a0, sgn ? _mm256_sign_epi8(xb, w0) : xb);
                    const __m256i p1 =
                        _mm256_maddubs_epi16(a1, sgn ? _mm256_sign_epi8(xb, w1) : xb);
                    s[0][t] = g == g0 ? p0 : _mm256_add_epi16(s[0][t], p0);
                    s[1][t] = g == g0 ? p1 : _mm256_add_epi16(s[1][t], p1);
                }
            }
#pragma GCC unroll 3
            for (int t = 0; t < nt; t++) {
                ia[0][t] = _mm256_add_epi32(ia[0][t], _mm256_madd_epi16(s[0][t], ones));
                ia[1][t] = _mm256_add_epi32(ia[1][t], _mm256_madd_epi16(s[1][t], ones));
            }
        }
        QP_BLOCK_END
    }
}

__attribute__((target("avxvnni"))) static void
run_tile_vnni(int nt, bool has_m, const packed_panel *p, int nb, const uint8_t *const x[PT],
              size_t xgs, const es_xinfo *const xi[PT], __m256 acc[2][PT]) {
#define ES_QTILE(T, M)                                                                             \
    case (T)*2 + (M): tile_vnni(T, M, p, nb, x, xgs, xi, acc); break;
    switch (nt * 2 + (has_m ? 1 : 0)) {
        ES_QTILE(3, 0)
        ES_QTILE(2, 0) ES_QTILE(1, 0) ES_QTILE(3, 1) ES_QTILE(2, 1) ES_QTILE(1, 1) default : break;
    }
#undef ES_QTILE
}

static void run_tile_avx2(int nt, int type, const packed_panel *p, int nb,
                          const uint8_t *const x[PT], size_t xgs, const es_xinfo *const xi[PT],
                          __m256 acc[2][PT]) {
#define ES_QTILE(T, M, S, G)                                                                       \
    case (T):                                                                                      \
        tile_avx2(T, M, S, G, p, nb, x, xgs, xi, acc);                                             \
        break;
#define ES_QTILES(M, S, G)                                                                         \
    switch (nt) {                                                                                  \
        ES_QTILE(3, M, S, G)                                                                       \
        ES_QTILE(2, M, S, G) default : tile_avx2(1, M, S, G, p, nb, x, xgs, xi, acc);              \
    }
    switch (type) {
    case ES_TYPE_Q8_0: ES_QTILES(false, true, 1) break;
    case ES_TYPE_Q4_0: ES_QTILES(false, false, 8) break;
    case ES_TYPE_Q5_0: ES_QTILES(false, false, 4) break;
    case ES_TYPE_Q4_1: ES_QTILES(true, false, 8) break;
    default: ES_QTILES(true, false, 4) break; /* Q5_1 */
    }
#undef ES_QTILES
#undef ES_QTILE
}

void es_matmul_rows_packed(int type, const uint8_t *W, size_t w_row, int64_t n_in,
                           const uint8_t *xq, size_t x_row, const es_xinfo *xi, int64_t n_tok,
                           float *y, int64_t n_out, int64_t r0, int64_t r1) {
    qdesc q;
    if (!get_desc(type, &q)) return;
    const bool vnni = es_avxvnni_supported();
    packed_panel panel __attribute__((aligned(32)));
    const int64_t n_chunks = (n_in + CHUNK_K - 1) / CHUNK_K;
    const int64_t blocks_row = n_in / ES_QK;
    const size_t xbs =
        q.has_m ? sizeof(es_block_q8_1) : sizeof(es_block_q8_0); /* activation block */
    /* tokens per block: keep their activation rows within ~384 KB of L2 */
    int64_t tb_max = (384 * 1024) / (int64_t)(x_row ? x_row : 1);
    tb_max = tb_max < PT ? PT : (tb_max > 255 ? 255 : tb_max / PT * PT);
    for (int64_t t0 = 0; t0 < n_tok; t0 += tb_max) {
        const int64_t t1 = t0 + tb_max < n_tok ? t0 + tb_max : n_tok;
        for (int64_t r = r0; r < r1; r += PR) {
            const int nr = (int)(r1 - r < PR ? r1 - r : PR);
            for (int64_t ch = 0; ch < n_chunks; ch++) {
                const int n32 =
                    (int)((n_in - ch * CHUNK_K < CHUNK_K ? n_in - ch * CHUNK_K : CHUNK_K) / ES_QK);
                pack_panel(type, q, W, w_row, r, nr, ch, n32, &panel);
                for (int64_t t = t0; t < t1; t += PT) {
                    const int nt = (int)(t1 - t < PT ? t1 - t : PT);
                    const uint8_t *xt[PT];
                    const es_xinfo *xit[PT];
                    __m256 acc[2][PT];
                    for (int j = 0; j < nt; j++) {
                        const uint8_t *row = xq + (size_t)(t + j) * x_row;
                        xt[j] = row + (size_t)(ch * (CHUNK_K / ES_QK)) * xbs + (q.has_m ? 4 : 2);
                        xit[j] = xi + (t + j) * blocks_row + ch * (CHUNK_K / ES_QK);
                        /* later chunks continue the sums of the earlier ones, so every block is
                         * one more fma in row order, as in the scalar reference */
                        acc[0][j] = acc[1][j] = _mm256_setzero_ps();
                        if (ch > 0) {
                            float prev[PR] = {0};
                            memcpy(prev, y + (t + j) * n_out + r, (size_t)nr * sizeof(float));
                            acc[0][j] = _mm256_loadu_ps(prev);
                            acc[1][j] = _mm256_loadu_ps(prev + 8);
                        }
                    }
                    if (vnni)
                        run_tile_vnni(nt, q.has_m, &panel, n32, xt, xbs, xit, acc);
                    else
                        run_tile_avx2(nt, type, &panel, n32, xt, xbs, xit, acc);
                    for (int j = 0; j < nt; j++) {
                        float *yr = y + (t + j) * n_out + r;
                        if (nr == PR) {
                            _mm256_storeu_ps(yr, acc[0][j]);
                            _mm256_storeu_ps(yr + 8, acc[1][j]);
                        } else {
                            float out[PR];
                            _mm256_storeu_ps(out, acc[0][j]);
                            _mm256_storeu_ps(out + 8, acc[1][j]);
                            memcpy(yr, out, (size_t)nr * sizeof(float));
                        }
                    }
                }
            }
        }
    }
}
