/*
 * matmul_q8_avx512.c — es_matmul's prompt case for Q8_0 weights on CPUs with AVX-512 VNNI,
 * in the summation order of es_vec_dot_q8_0_ref (kernels.h), bit for bit: per output,
 * eight lanes l, lane l = Σ of elements 4l..4l+3 of each 32-block (exact int32), then
 * acc_l = fma(d_w·d_x, lane_l, acc_l) block after block, and es_hsum8 at the end. So a
 * prompt gives the same logits whatever its batch split (decode takes vec_dot, same
 * order), and the logits of llama.cpp's x86 kernels.
 *
 * One vpdpbusd of a 16-row panel computes exactly those 4-element lane sums, for 16 rows
 * (one int32 lane per row) and one lane l: the panel is rewritten as
 *     q[block][l][row 0..15][4 bytes] = weight bytes xor 0x80 (unsigned, q + 128),
 * and the accumulator starts at −128 · Σ of the 4 activation bytes, so the result is
 * Σ q·x exactly. A tile keeps 8 lanes × up to 3 tokens = 24 float accumulators of 16 rows.
 * (Putting the activations on the unsigned side instead, with per-row corrections, measured
 * 20% slower: the broadcast operand of vpdpbusd must then be the register one.)
 * Compiled with per-function target attributes; empty without SIMD.
 */
#include "cpu.h"
#include "kernels.h"

#if !defined(ES_NO_SIMD) && (defined(__x86_64__) || defined(__i386__))

#include <immintrin.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define ES_Q8X __attribute__((target("avx512f,avx512bw,avx512vnni,avx2,fma,f16c")))
#define ES_ALWAYS_INLINE inline __attribute__((always_inline))
#define QR 16 /* weight rows per panel: one int32 lane each */
#define QT 3  /* tokens per tile */

bool es_avx512vnni_supported(void) {
    static _Atomic int cached = -1; /* computed once; racing first calls agree */
    /* AVX-512F and the ES_NO_AVX512 switch as es_avx512_supported() decides them */
    if (cached < 0)
        cached = es_avx512_supported() && es_cpu_has(ES_CPU_AVX512BW) &&
                 es_cpu_has(ES_CPU_AVX512VNNI) && !es_env_switch("ES_NO_VNNI");
    return cached == 1;
}

/* Panel of rows [r, r + nr): q [n_blk][8][QR][4] (bytes + 128) and d [n_blk][QR];
 * missing rows are zeros. */
static void pack_panel(const uint8_t *W, size_t w_row, int64_t r, int nr, int64_t n_blk, uint8_t *q,
                       float *d) {
    for (int64_t b = 0; b < n_blk; b++) {
        uint8_t *qb = q + (size_t)b * 8 * QR * 4;
        for (int i = 0; i < QR; i++) {
            const es_block_q8_0 *blk =
                i < nr ? (const es_block_q8_0 *)(W + (size_t)(r + i) * w_row) + b : NULL;
            d[b * QR + i] = blk ? es_fp16_to_fp32(blk->d) : 0.0f;
            for (int l = 0; l < 8; l++) {
                uint32_t v = 0;
                if (blk) memcpy(&v, blk->qs + 4 * l, 4);
                v ^= 0x80808080u;
                memcpy(qb + ((size_t)l * QR + i) * 4, &v, 4);
            }
        }
    }
}

/* y[t + j][r .. r + nr) for the nt (<= QT) tokens t.. over all n_blk blocks. */
ES_Q8X static ES_ALWAYS_INLINE void tile(int nt, const uint8_t *q, const float *d, int64_t n_blk,
                                         const uint8_t *const x[QT], float *const yr[QT], int nr) {
    __m512 acc[QT][8];
#pragma GCC unroll 3
    for (int j = 0; j < nt; j++)
#pragma GCC unroll 8
        for (int l = 0; l < 8; l++)
            acc[j][l] = _mm512_setzero_ps();
    const __m256i ones8 = _mm256_set1_epi8(1);
    const __m256i ones16 = _mm256_set1_epi16(1);
    for (int64_t b = 0; b < n_blk; b++) {
        const __m512 dw = _mm512_loadu_ps(d + b * QR);
        __m512 dp[QT];
        uint32_t xv[QT][8];
        int32_t nc[QT][8];
#pragma GCC unroll 3
        for (int j = 0; j < nt; j++) {
            const es_block_q8_0 *xb = (const es_block_q8_0 *)x[j] + b;
            dp[j] = _mm512_mul_ps(dw, _mm512_set1_ps(es_fp16_to_fp32(xb->d)));
            const __m256i xq = _mm256_loadu_si256((const __m256i *)xb->qs);
            const __m256i s4 = _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, xq), ones16);
            _mm256_storeu_si256((__m256i *)nc[j],
                                _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(s4, 7)));
            _mm256_storeu_si256((__m256i *)xv[j], xq);
        }
        const uint8_t *qb = q + (size_t)b * 8 * QR * 4;
#pragma GCC unroll 8
        for (int l = 0; l < 8; l++) {
            const __m512i w = _mm512_loadu_si512((const void *)(qb + (size_t)l * QR * 4));
#pragma GCC unroll 3
            for (int j = 0; j < nt; j++) {
                const __m512i ia = _mm512_dpbusd_epi32(_mm512_set1_epi32(nc[j][l]), w,
                                                       _mm512_set1_epi32((int)xv[j][l]));
                acc[j][l] = _mm512_fmadd_ps(dp[j], _mm512_cvtepi32_ps(ia), acc[j][l]);
            }
        }
    }
#pragma GCC unroll 3
    for (int j = 0; j < nt; j++) {
        const __m512 s = _mm512_add_ps(
            _mm512_add_ps(_mm512_add_ps(acc[j][0], acc[j][4]), _mm512_add_ps(acc[j][2], acc[j][6])),
            _mm512_add_ps(_mm512_add_ps(acc[j][1], acc[j][5]),
                          _mm512_add_ps(acc[j][3], acc[j][7])));
        if (nr == QR) {
            _mm512_storeu_ps(yr[j], s);
        } else {
            float out[QR];
            _mm512_storeu_ps(out, s);
            memcpy(yr[j], out, (size_t)nr * sizeof(float));
        }
    }
}

ES_Q8X static void run_tile(int nt, const uint8_t *q, const float *d, int64_t n_blk,
                            const uint8_t *const x[QT], float *const yr[QT], int nr) {
    switch (nt) {
    case 3: tile(3, q, d, n_blk, x, yr, nr); break;
    case 2: tile(2, q, d, n_blk, x, yr, nr); break;
    default: tile(1, q, d, n_blk, x, yr, nr); break;
    }
}

bool es_matmul_rows_q8_0_avx512vnni(const uint8_t *W, size_t w_row, int64_t n_in, const uint8_t *xq,
                                    size_t x_row, int64_t n_tok, float *y, int64_t n_out,
                                    int64_t r0, int64_t r1) {
    const int64_t n_blk = n_in / ES_QK;
    uint8_t *q = malloc((size_t)n_blk * 8 * QR * 4);
    float *d = malloc((size_t)n_blk * QR * sizeof(float));
    if (!q || !d) {
        free(q);
        free(d);
        return false;
    }
    for (int64_t r = r0; r < r1; r += QR) {
        const int nr = (int)(r1 - r < QR ? r1 - r : QR);
        pack_panel(W, w_row, r, nr, n_blk, q, d);
        for (int64_t t = 0; t < n_tok; t += QT) {
            const int nt = (int)(n_tok - t < QT ? n_tok - t : QT);
            const uint8_t *x[QT] = {NULL, NULL, NULL};
            float *yr[QT] = {NULL, NULL, NULL};
            for (int j = 0; j < nt; j++) {
                x[j] = xq + (size_t)(t + j) * x_row;
                yr[j] = y + (t + j) * n_out + r;
            }
            run_tile(nt, q, d, n_blk, x, yr, nr);
        }
    }
    free(q);
    free(d);
    return true;
}

#else

bool es_avx512vnni_supported(void) {
    return false;
}
bool es_matmul_rows_q8_0_avx512vnni(const uint8_t *W, size_t w_row, int64_t n_in, const uint8_t *xq,
                                    size_t x_row, int64_t n_tok, float *y, int64_t n_out,
                                    int64_t r0, int64_t r1) {
    (void)W, (void)w_row, (void)n_in, (void)xq, (void)x_row, (void)n_tok, (void)y, (void)n_out,
        (void)r0, (void)r1;
    return false;
}

#endif
