/*
 * matmul_q4k_avx2.c — prompts of Q4_K weights in llama.cpp's order (the type's
 * vec_dot_tiles_llamacpp, which fast-mode prompts take too): every output the bits of
 * vec_dot_q4_K_llamacpp (quants_k_avx2.c) — per 64 elements acc = fma(isum, d_w·d_x, acc),
 * accm = fma(msum, dmin_w·d_x, accm), then acc − accm — whatever the tile, the batch or the
 * instruction set.
 *
 * Rows in lanes: a panel of 16 weight rows × a chunk of Q4K_CB blocks is unpacked per call into
 *     q[block][sub-block k][group g][row 0..15][4 bytes]   (quants 0..15, elements 4g..4g+3)
 * with the scales, min pairs and d/dmin of each row beside them, so that one vector holds
 * 4 consecutive quants of 8 (AVX2) or 16 (AVX-512) rows. Against a broadcast of 4 activation
 * bytes, one vpdpbusd (VNNI) or one pmaddubsw (AVX2; 8 of them sum exactly in int16: at most
 * 8·2·15·128 = 30720) gives 4 products of every row of the tile; a sub-block's sums are then
 * scaled by its scale (pmulld, or pmaddwd against the scale in both int16 halves), two of them
 * summed as one 64-element isum, converted and fma'd lane by lane — vec_dot's float steps, per
 * lane. The integer sums are exact, so every path gives the same bits.
 * llama.cpp gets its speed on these types from repacking the weights at load into interleaved
 * rows (its q4_K 8x8 gemm); this repacks a panel per call instead (~4 tokens of tile work per
 * panel), and keeps the files' layout for decode.
 */
#include "common.h"
#include "kernels.h"
#include "quants_k.h"
#include "simd_avx2.h"

#include <stdbool.h>
#include <stdlib.h>

#define Q4K_R 16 /* weight rows per panel */
#define Q4K_CB 4 /* blocks per panel chunk: 16 KB of quants, in L1 while its tokens pass */

typedef struct {
    uint8_t q[Q4K_CB][8][8][Q4K_R][4]; /* unsigned quants */
    int32_t sc[Q4K_CB][8][Q4K_R];      /* sub-block scales */
    int32_t mp[Q4K_CB][4][Q4K_R];      /* min pairs: m[2h] | m[2h + 1] << 16 */
    float d[Q4K_CB][Q4K_R], dm[Q4K_CB][Q4K_R];
} q4k_chunk;

/* Packs blocks [b0, b0 + nb) of rows [r, r + nr) (missing rows: zeros). */
static void pack_chunk(const uint8_t *W, size_t w_row, int64_t r, int nr, int64_t b0, int nb,
                       q4k_chunk *p) {
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    for (int b = 0; b < nb; b++) {
        const es_block_q4_K *x[Q4K_R];
        for (int i = 0; i < Q4K_R; i++) {
            x[i] = i < nr ? (const es_block_q4_K *)(W + (size_t)(r + i) * w_row) + b0 + b : NULL;
            uint8_t sc[8] = {0}, m[8] = {0};
            if (x[i]) es_unpack_scales_q4_K(x[i]->scales, sc, m);
            p->d[b][i] = x[i] ? _cvtsh_ss(x[i]->d) : 0.0f;
            p->dm[b][i] = x[i] ? _cvtsh_ss(x[i]->dmin) : 0.0f;
            for (int k = 0; k < 8; k++)
                p->sc[b][k][i] = sc[k];
            for (int h = 0; h < 4; h++)
                p->mp[b][h][i] = (int32_t)((uint32_t)m[2 * h] | (uint32_t)m[2 * h + 1] << 16);
        }
        for (int half = 0; half < 2; half++) {
            for (int h = 0; h < 4; h++) { /* qs[32h..]: sub-block 2h (low), 2h + 1 (high) */
                __m256i lo[8], hi[8];
                for (int i = 0; i < 8; i++) {
                    const es_block_q4_K *xi = x[half * 8 + i];
                    const __m256i v = xi ? _mm256_loadu_si256((const __m256i *)(xi->qs + 32 * h))
                                         : _mm256_setzero_si256();
                    lo[i] = _mm256_and_si256(v, m4);
                    hi[i] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
                }
                es_transpose8x8_epi32(lo); /* lo[g]: elements 4g..4g+3 of the 8 rows */
                es_transpose8x8_epi32(hi);
                for (int g = 0; g < 8; g++) {
                    _mm256_storeu_si256((__m256i *)p->q[b][2 * h][g][half * 8], lo[g]);
                    _mm256_storeu_si256((__m256i *)p->q[b][2 * h + 1][g][half * 8], hi[g]);
                }
            }
        }
    }
}

/* ---- AVX2: pmaddubsw, summed in int16 over a sub-block, then pmaddwd by the scale ---- */
#define QT_VI __m256i
#define QT_VF __m256
#define QT_LANES 8
#define QT_T 4
#define QT_LOADI(p) _mm256_loadu_si256((const __m256i *)(const void *)(p))
#define QT_LOADF(p) _mm256_loadu_ps(p)
#define QT_STOREF(p, v) _mm256_storeu_ps(p, v)
#define QT_SET1I(i) _mm256_set1_epi32(i)
#define QT_SET1F(f) _mm256_set1_ps(f)
#define QT_ZEROI() _mm256_setzero_si256()
#define QT_ZEROF() _mm256_setzero_ps()
#define QT_ADDI(a, b) _mm256_add_epi32(a, b)
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
#undef QT_SCALE
#undef QT_VI
#undef QT_VF
#undef QT_LANES
#undef QT_T
#undef QT_LOADI
#undef QT_LOADF
#undef QT_STOREF
#undef QT_SET1I
#undef QT_SET1F
#undef QT_ZEROI
#undef QT_ZEROF
#undef QT_ADDI
#undef QT_MADD16
#undef QT_CVT
#undef QT_MUL
#undef QT_FMA
#undef QT_SUBF

/* ---- AVX-512 VNNI: the 16 rows of a panel in one vector ---- */
#define QT_VI __m512i
#define QT_VF __m512
#define QT_LANES 16
#define QT_T 8
#define QT_LOADI(p) _mm512_loadu_si512((const void *)(p))
#define QT_LOADF(p) _mm512_loadu_ps(p)
#define QT_STOREF(p, v) _mm512_storeu_ps(p, v)
#define QT_SET1I(i) _mm512_set1_epi32(i)
#define QT_SET1F(f) _mm512_set1_ps(f)
#define QT_ZEROI() _mm512_setzero_si512()
#define QT_ZEROF() _mm512_setzero_ps()
#define QT_ADDI(a, b) _mm512_add_epi32(a, b)
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

typedef void (*tile_fn)(int nt, const q4k_chunk *p, int nb, int rofs, const es_block_q8_K *const *y,
                        float *const *out, float *const *outm, bool first, bool last, int nr);

bool es_matmul_rows_q4_K_panels(const uint8_t *W, size_t w_row, int64_t n_in, const uint8_t *xq,
                                size_t x_row, int64_t n_tok, float *y, int64_t n_out, int64_t r0,
                                int64_t r1) {
    const int64_t n_blk = n_in / ES_QK_K;
    /* the accm chains between chunks: [n_tok][Q4K_R] */
    float *accm = n_blk > Q4K_CB ? malloc(sizeof(float) * Q4K_R * (size_t)n_tok) : NULL;
    if (n_blk > Q4K_CB && !accm) return false;
    tile_fn tile = tile_avx2;
    int lanes = 8, tt = 4;
    if (es_avx512vnni_supported())
        tile = tile_avx512vnni, lanes = 16, tt = 8;
    else if (es_avxvnni_supported())
        tile = tile_avxvnni;
    q4k_chunk p __attribute__((aligned(64)));
    for (int64_t r = r0; r < r1; r += Q4K_R) {
        const int nr = (int)ES_MIN(Q4K_R, r1 - r);
        for (int64_t b0 = 0; b0 < n_blk; b0 += Q4K_CB) {
            const int nb = (int)ES_MIN(Q4K_CB, n_blk - b0);
            const bool first = b0 == 0, last = b0 + nb == n_blk;
            pack_chunk(W, w_row, r, nr, b0, nb, &p);
            for (int64_t t = 0; t < n_tok; t += tt) {
                const int nt = (int)ES_MIN(tt, n_tok - t);
                for (int rofs = 0; rofs < nr; rofs += lanes) {
                    const es_block_q8_K *yb[8];
                    float *out[8], *outm[8];
                    for (int j = 0; j < nt; j++) {
                        yb[j] = (const es_block_q8_K *)(xq + (size_t)(t + j) * x_row) + b0;
                        out[j] = y + (t + j) * n_out + r + rofs;
                        outm[j] = accm ? accm + (size_t)(t + j) * Q4K_R + rofs : NULL;
                    }
                    tile(nt, &p, nb, rofs, yb, out, outm, first, last, ES_MIN(lanes, nr - rofs));
                }
            }
        }
    }
    free(accm);
    return true;
}
