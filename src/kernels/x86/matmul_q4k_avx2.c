/*
 * matmul_q4k_avx2.c — Q4_K products in llama.cpp's order: the prompts of Q4_K rows (the type's
 * vec_dot_tiles_llamacpp, which fast-mode prompts take too) and every product of the matrices
 * the model interleaved at load (ES_TYPE_Q4_K_X8, matmul.h): every output the bits of
 * vec_dot_q4_K_llamacpp (quants_k_avx2.c) — per 64 elements acc = fma(isum, d_w·d_x, acc),
 * accm = fma(msum, dmin_w·d_x, accm), then acc − accm — whatever the tile, the batch or the
 * instruction set.
 *
 * Rows in lanes: the blocks of 8 rows interleaved (es_block_q4_Kx8, quants_k.h), so that one
 * 32-byte load holds 4 bytes of each row (4 low-nibble quants of one sub-block, 4 high-nibble of
 * the next); the model interleaves its Q4_K matrices once at load (es_repack_q4_K_x8), others
 * are interleaved here per 16-row panel and chunk of Q4K_CB blocks. A vector holds 8 (AVX2) or
 * 16 (AVX-512: two groups) rows. Against a broadcast of 4 activation
 * bytes, one vpdpbusd (VNNI) or one pmaddubsw (AVX2; 8 of them sum exactly in int16: at most
 * 8·2·15·128 = 30720) gives 4 products of every row of the tile; a sub-block's sums are then
 * scaled by its scale (pmulld, or pmaddwd against the scale in both int16 halves), two of them
 * summed as one 64-element isum, converted and fma'd lane by lane — vec_dot's float steps, per
 * lane. The integer sums are exact, so every path gives the same bits.
 * llama.cpp gets its speed on these types from repacking the weights at load into interleaved
 * rows (its q4_K 8x8 gemm and gemv), as the model does here.
 */
#include "common.h"
#include "kernels.h"
#include "quants_k.h"
#include "simd_avx2.h"

#include <stdbool.h>

#define Q4K_R 16 /* weight rows per panel: two es_block_q4_Kx8 groups */
#define Q4K_CB 4 /* blocks per chunk of a panel: in L1 while its tokens pass */

/* Interleaves blocks [b0, b0 + nb) of rows [r, r + nr) (nr <= 8; missing rows: zeros). */
static void pack_x8(const uint8_t *W, size_t w_row, int64_t r, int nr, int64_t b0, int64_t nb,
                    es_block_q4_Kx8 *out) {
    for (int64_t b = 0; b < nb; b++) {
        es_block_q4_Kx8 *o = &out[b];
        const es_block_q4_K *x[8];
        for (int i = 0; i < 8; i++) {
            x[i] = i < nr ? (const es_block_q4_K *)(W + (size_t)(r + i) * w_row) + b0 + b : NULL;
            uint8_t sc[8] = {0}, m[8] = {0};
            if (x[i]) es_unpack_scales_q4_K(x[i]->scales, sc, m);
            o->d[i] = x[i] ? x[i]->d : 0;
            o->dmin[i] = x[i] ? x[i]->dmin : 0;
            for (int k = 0; k < 8; k++)
                o->sc[k][i] = sc[k];
            for (int h = 0; h < 4; h++) {
                o->m[h][i][0] = m[2 * h];
                o->m[h][i][1] = m[2 * h + 1];
            }
        }
        for (int h = 0; h < 4; h++) {
            __m256i v[8];
            for (int i = 0; i < 8; i++)
                v[i] = x[i] ? _mm256_loadu_si256((const __m256i *)(x[i]->qs + 32 * h))
                            : _mm256_setzero_si256();
            es_transpose8x8_epi32(v); /* v[g]: bytes 4g..4g+3 of the 8 rows */
            for (int g = 0; g < 8; g++)
                _mm256_storeu_si256((__m256i *)o->qs[h][g], v[g]);
        }
    }
}

void es_repack_q4_K_x8(const void *W, size_t w_row, int64_t n_out, int64_t n_in, void *out) {
    const int64_t n_blk = n_in / ES_QK_K;
    for (int64_t r = 0; r < n_out; r += 8)
        pack_x8(W, w_row, r, (int)ES_MIN(8, n_out - r), 0, n_blk,
                (es_block_q4_Kx8 *)out + (size_t)(r / 8) * (size_t)n_blk);
}

/* ---- AVX2: pmaddubsw, summed in int16 over a sub-block, then pmaddwd by the scale ---- */
#define QT_VI __m256i
#define QT_VF __m256
#define QT_LANES 8
#define QT_T 3
#define QT_LOADW(a, b, off) _mm256_loadu_si256((const __m256i *)((const uint8_t *)(a)->qs + (off)))
#define QT_LOADSC(a, b, k) _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(a)->sc[k]))
#define QT_LOADM(a, b, h) _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(a)->m[h]))
#define QT_LOADH(a, b, f) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(a)->f))
#define QT_LOADF(p) _mm256_loadu_ps(p)
#define QT_STOREF(p, v) _mm256_storeu_ps(p, v)
#define QT_SET1I(i) _mm256_set1_epi32(i)
#define QT_SET1F(f) _mm256_set1_ps(f)
#define QT_SET1B(c) _mm256_set1_epi8(c)
#define QT_ZEROI() _mm256_setzero_si256()
#define QT_ZEROF() _mm256_setzero_ps()
#define QT_ADDI(a, b) _mm256_add_epi32(a, b)
#define QT_AND(a, b) _mm256_and_si256(a, b)
#define QT_SRLI16(a, n) _mm256_srli_epi16(a, n)
#define QT_MADD16(a, b) _mm256_madd_epi16(a, b)
#define QT_CVT(v) _mm256_cvtepi32_ps(v)
#define QT_MUL(a, b) _mm256_mul_ps(a, b)
#define QT_FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define QT_SUBF(a, b) _mm256_sub_ps(a, b)
#define QT_GROUP(s, w, x) _mm256_add_epi16(s, _mm256_maddubs_epi16(w, x))
#define QT_SCALE(s, sc) _mm256_madd_epi16(s, _mm256_or_si256(sc, _mm256_slli_epi32(sc, 16)))
#define QT_ATTR
#define QT_NAME tile_avx2
#include "q4k_tmpl.h"
#undef QT_NAME
#undef QT_ATTR
#undef QT_GROUP
#undef QT_SCALE

/* ---- AVX-VNNI: vpdpbusd in int32, then pmulld by the scale ---- */
#define QT_GROUP(s, w, x) _mm256_dpbusd_avx_epi32(s, w, x)
#define QT_SCALE(s, sc) _mm256_mullo_epi32(s, sc)
#define QT_ATTR __attribute__((target("avxvnni")))
#define QT_NAME tile_avxvnni
#include "q4k_tmpl.h"
#undef QT_NAME
#undef QT_ATTR
#undef QT_GROUP

/* ---- AVX-512 VNNI on 8 rows (EVEX vpdpbusd ymm): one group, one stream, for decode ---- */
#define QT_GROUP(s, w, x) _mm256_dpbusd_epi32(s, w, x)
#define QT_ATTR __attribute__((target("avx512f,avx512vl,avx512bw,avx512vnni")))
#define QT_NAME tile_avx512vl
#include "q4k_tmpl.h"
#undef QT_NAME
#undef QT_ATTR
#undef QT_GROUP
#undef QT_SCALE
#undef QT_VI
#undef QT_VF
#undef QT_LANES
#undef QT_T
#undef QT_LOADW
#undef QT_LOADSC
#undef QT_LOADM
#undef QT_LOADH
#undef QT_LOADF
#undef QT_STOREF
#undef QT_SET1I
#undef QT_SET1F
#undef QT_SET1B
#undef QT_ZEROI
#undef QT_ZEROF
#undef QT_ADDI
#undef QT_AND
#undef QT_SRLI16
#undef QT_MADD16
#undef QT_CVT
#undef QT_MUL
#undef QT_FMA
#undef QT_SUBF

/* ---- AVX-512 VNNI: the 16 rows of two groups in one vector ---- */
#define QT_VI __m512i
#define QT_VF __m512
#define QT_LANES 16
#define QT_T 6
#define QT_JOIN256(lo, hi) _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1)
#define QT_LOADW(a, b, off)                                                                        \
    QT_JOIN256(_mm256_loadu_si256((const __m256i *)((const uint8_t *)(a)->qs + (off))),            \
               _mm256_loadu_si256((const __m256i *)((const uint8_t *)(b)->qs + (off))))
#define QT_LOADSC(a, b, k)                                                                         \
    _mm512_cvtepu8_epi32(_mm_unpacklo_epi64(_mm_loadl_epi64((const __m128i *)(a)->sc[k]),          \
                                            _mm_loadl_epi64((const __m128i *)(b)->sc[k])))
#define QT_LOADM(a, b, h)                                                                          \
    _mm512_cvtepu8_epi16(_mm256_set_m128i(_mm_loadu_si128((const __m128i *)(b)->m[h]),             \
                                          _mm_loadu_si128((const __m128i *)(a)->m[h])))
#define QT_LOADH(a, b, f)                                                                          \
    _mm512_cvtph_ps(_mm256_set_m128i(_mm_loadu_si128((const __m128i *)(b)->f),                     \
                                     _mm_loadu_si128((const __m128i *)(a)->f)))
#define QT_LOADF(p) _mm512_loadu_ps(p)
#define QT_STOREF(p, v) _mm512_storeu_ps(p, v)
#define QT_SET1I(i) _mm512_set1_epi32(i)
#define QT_SET1F(f) _mm512_set1_ps(f)
#define QT_SET1B(c) _mm512_set1_epi8(c)
#define QT_ZEROI() _mm512_setzero_si512()
#define QT_ZEROF() _mm512_setzero_ps()
#define QT_ADDI(a, b) _mm512_add_epi32(a, b)
#define QT_AND(a, b) _mm512_and_si512(a, b)
#define QT_SRLI16(a, n) _mm512_srli_epi16(a, n)
#define QT_MADD16(a, b) _mm512_madd_epi16(a, b)
#define QT_CVT(v) _mm512_cvtepi32_ps(v)
#define QT_MUL(a, b) _mm512_mul_ps(a, b)
#define QT_FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define QT_SUBF(a, b) _mm512_sub_ps(a, b)
#define QT_GROUP(s, w, x) _mm512_dpbusd_epi32(s, w, x)
#define QT_SCALE(s, sc) _mm512_mullo_epi32(s, sc)
#define QT_ATTR __attribute__((target("avx512f,avx512bw,avx512vnni")))
#define QT_NAME tile_avx512vnni
#include "q4k_tmpl.h"

typedef void (*tile_fn)(int nt, const es_block_q4_Kx8 *a, const es_block_q4_Kx8 *b, int nb,
                        const es_block_q8_K *const *y, float *const *out, float *const *outm,
                        bool first, bool last, int nr);

/* Tokens per pass over the rows: their accm chains between chunks fit on the stack. */
#define Q4K_TOK_BLOCK 64

/* Rows [r0, r1) of W: Q4_K rows of w_row bytes (x8 false, interleaved per panel and chunk here),
 * or es_block_q4_Kx8 groups [n_out / 8][n_blk] (x8 true; r0, r1 multiples of 8). */
static void rows(const uint8_t *W, size_t w_row, bool x8, int64_t n_in, const uint8_t *xq,
                 size_t x_row, int64_t n_tok, float *y, int64_t n_out, int64_t r0, int64_t r1) {
    const int64_t n_blk = n_in / ES_QK_K;
    /* chunks of Q4K_CB blocks keep a panel's blocks in L1 while the tokens pass; a few tokens
     * of interleaved weights take the whole row at once */
    const int64_t cb = x8 && n_tok <= 8 ? n_blk : Q4K_CB;
    tile_fn tile = tile_avx2;
    int lanes = 8, tt = 3;
    if (es_avx512vnni_supported() && cb == n_blk) /* decode: one group at a time, one stream */
        tile = tile_avx512vl;
    else if (es_avx512vnni_supported()) /* two groups' chunks in L1 */
        tile = tile_avx512vnni, lanes = 16, tt = 6;
    else if (es_avxvnni_supported())
        tile = tile_avxvnni;
    es_block_q4_Kx8 buf[2][Q4K_CB] __attribute__((aligned(64)));
    float accm[Q4K_TOK_BLOCK * Q4K_R] __attribute__((aligned(64))); /* [token][row] */
    for (int64_t t0 = 0; t0 < n_tok; t0 += Q4K_TOK_BLOCK) {
        const int64_t t1 = ES_MIN(n_tok, t0 + Q4K_TOK_BLOCK);
        for (int64_t r = r0; r < r1; r += Q4K_R) {
            const int nr = (int)ES_MIN(Q4K_R, r1 - r);
            for (int64_t b0 = 0; b0 < n_blk; b0 += cb) {
                const int nb = (int)ES_MIN(cb, n_blk - b0);
                const bool first = b0 == 0, last = b0 + nb == n_blk;
                const es_block_q4_Kx8 *g[2];
                if (x8) {
                    g[0] = (const es_block_q4_Kx8 *)W + (size_t)(r / 8) * (size_t)n_blk + b0;
                    g[1] = nr > 8 ? g[0] + n_blk : g[0];
                } else {
                    pack_x8(W, w_row, r, ES_MIN(8, nr), b0, nb, buf[0]);
                    if (nr > 8) pack_x8(W, w_row, r + 8, nr - 8, b0, nb, buf[1]);
                    g[0] = buf[0];
                    g[1] = nr > 8 ? buf[1] : buf[0];
                }
                for (int64_t t = t0; t < t1; t += tt) {
                    const int nt = (int)ES_MIN(tt, t1 - t);
                    for (int rofs = 0; rofs < nr; rofs += lanes) {
                        const es_block_q8_K *yb[8];
                        float *out[8], *outm[8];
                        for (int j = 0; j < nt; j++) {
                            yb[j] = (const es_block_q8_K *)(xq + (size_t)(t + j) * x_row) + b0;
                            out[j] = y + (t + j) * n_out + r + rofs;
                            outm[j] = accm + (size_t)(t - t0 + j) * Q4K_R + rofs;
                        }
                        /* with 16 lanes and 8 rows left, the group twice (8 rows stored) */
                        const es_block_q4_Kx8 *ga = g[rofs / 8];
                        const es_block_q4_Kx8 *gb = g[lanes == 16 ? 1 : rofs / 8];
                        tile(nt, ga, gb, nb, yb, out, outm, first, last, ES_MIN(lanes, nr - rofs));
                    }
                }
            }
        }
    }
}

void es_matmul_rows_q4_K_panels(const uint8_t *W, size_t w_row, int64_t n_in, const uint8_t *xq,
                                size_t x_row, int64_t n_tok, float *y, int64_t n_out, int64_t r0,
                                int64_t r1) {
    rows(W, w_row, false, n_in, xq, x_row, n_tok, y, n_out, r0, r1);
}

void es_matmul_rows_q4_K_x8(const void *W, int64_t n_in, const uint8_t *xq, size_t x_row,
                            int64_t n_tok, float *y, int64_t n_out, int64_t r0, int64_t r1) {
    rows(W, 0, true, n_in, xq, x_row, n_tok, y, n_out, r0, r1);
}
