/*
 * matmul_avx512.c — the AVX-512 version of matmul_avx2.c's f32 tile (F32/F16/BF16
 * weights, f32 activations, n_tok > 1), chosen at run time on CPUs with AVX-512F.
 *
 * Same scheme with 16 lanes and 32 registers: a tile of MR = 4 weight rows × NT = 6
 * tokens keeps 24 accumulators; each step of 16 k loads 4 weight and 6 activation
 * vectors for 24 FMAs. F16/BF16 rows are converted to f32 per block of KC elements.
 * Compiled with per-function target attributes, so the file needs no special flags;
 * on builds without SIMD it is empty.
 */
#include "cpu.h"
#include "kernels.h"

#if !defined(ES_NO_SIMD) && (defined(__x86_64__) || defined(__i386__))

#include <immintrin.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define MR 4    /* weight rows per microkernel */
#define NT 6    /* tokens per microkernel */
#define KC 1024 /* k elements converted per block */

#define ES_AVX512 __attribute__((target("avx512f,avx2,fma,f16c")))
#define ES_ALWAYS_INLINE inline __attribute__((always_inline))

bool es_avx512_supported(void) {
    static _Atomic int cached = -1; /* computed once; racing first calls agree */
    if (cached < 0)
        cached =
            es_kernels_have_avx2() && es_cpu_has(ES_CPU_AVX512F) && !es_env_switch("ES_NO_AVX512");
    return cached == 1;
}

/* Sums of 4 vectors of 8 lanes: {sum a, sum b, sum c, sum d}. */
ES_AVX512 static ES_ALWAYS_INLINE __m128 hsum4_256(__m256 a, __m256 b, __m256 c, __m256 d) {
    const __m256 abcd = _mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, d));
    return _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
}

ES_AVX512 static ES_ALWAYS_INLINE __m256 fold512(__m512 v) {
    return _mm256_add_ps(_mm512_castps512_ps256(v),
                         _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
}

/* out[r][t] = sum_k w[r][k] * x[t][k] over k in [0, kc). */
ES_AVX512 static ES_ALWAYS_INLINE void tile_kernel(int nr, int nt, const float *const w[MR],
                                                   const float *const x[NT], int64_t kc,
                                                   float out[MR][NT]) {
    __m512 acc[MR][NT];
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++)
#pragma GCC unroll 6
        for (int t = 0; t < nt; t++)
            acc[r][t] = _mm512_setzero_ps();
    int64_t k = 0;
    for (; k + 16 <= kc; k += 16) {
        __m512 wv[MR];
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++)
            wv[r] = _mm512_loadu_ps(w[r] + k);
#pragma GCC unroll 6
        for (int t = 0; t < nt; t++) {
            const __m512 xv = _mm512_loadu_ps(x[t] + k);
#pragma GCC unroll 4
            for (int r = 0; r < nr; r++)
                acc[r][t] = _mm512_fmadd_ps(wv[r], xv, acc[r][t]);
        }
    }
    const __m256 z = _mm256_setzero_ps();
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++) {
        __m256 f[NT];
#pragma GCC unroll 6
        for (int t = 0; t < NT; t++)
            f[t] = t < nt ? fold512(acc[r][t]) : z;
        float sums[8];
        _mm_storeu_ps(sums, hsum4_256(f[0], f[1], f[2], f[3]));
        if (nt > 4) _mm_storeu_ps(sums + 4, hsum4_256(f[4], f[5], z, z));
#pragma GCC unroll 6
        for (int t = 0; t < nt; t++) {
            float v = sums[t];
            for (int64_t kk = k; kk < kc; kk++)
                v += w[r][kk] * x[t][kk];
            out[r][t] = v;
        }
    }
}

ES_AVX512 static void run_tile(int nr, int nt, const float *const w[MR], const float *const x[NT],
                               int64_t kc, float out[MR][NT]) {
#define ES_T(R, T)                                                                                 \
    case (R)*8 + (T):                                                                              \
        tile_kernel(R, T, w, x, kc, out);                                                          \
        break;
#define ES_ROW(R) ES_T(R, 6) ES_T(R, 5) ES_T(R, 4) ES_T(R, 3) ES_T(R, 2) ES_T(R, 1)
    switch (nr * 8 + nt) { ES_ROW(4) ES_ROW(3) ES_ROW(2) ES_ROW(1) default : break; }
#undef ES_ROW
#undef ES_T
}

ES_AVX512 static void convert_row(int type, const uint8_t *row, int64_t k0, int64_t kc,
                                  float *dst) {
    const uint16_t *h = (const uint16_t *)row + k0;
    int64_t k = 0;
    if (type == ES_TYPE_F16) {
        for (; k + 16 <= kc; k += 16)
            _mm512_storeu_ps(dst + k,
                             _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(h + k))));
        for (; k < kc; k++)
            dst[k] = _cvtsh_ss(h[k]);
    } else {
        for (; k + 16 <= kc; k += 16) {
            __m512i v = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(h + k)));
            _mm512_storeu_ps(dst + k, _mm512_castsi512_ps(_mm512_slli_epi32(v, 16)));
        }
        for (; k < kc; k++)
            dst[k] = es_bf16_to_fp32(h[k]);
    }
}

ES_AVX512 void es_matmul_f32act_avx512(int type, const uint8_t *W, size_t w_row, int64_t n_in,
                                       const float *x, int64_t n_tok, float *y, int64_t n_out,
                                       int64_t r0, int64_t r1) {
    float buf[MR][KC] __attribute__((aligned(64)));
    /* tokens per block: their activations (TB * n_in floats) should stay within ~384 KB of L2 */
    int64_t tb_max = (384 * 1024) / (n_in * (int64_t)sizeof(float));
    tb_max = tb_max < NT ? NT : (tb_max > 96 ? 96 : tb_max / NT * NT);
    for (int64_t t0 = 0; t0 < n_tok; t0 += tb_max) {
        const int64_t t1 = t0 + tb_max < n_tok ? t0 + tb_max : n_tok;
        for (int64_t r = r0; r < r1; r += MR) {
            const int nr = (int)(r1 - r < MR ? r1 - r : MR);
            for (int64_t k0 = 0; k0 < n_in; k0 += KC) {
                const int64_t kc = n_in - k0 < KC ? n_in - k0 : KC;
                const float *w[MR];
                for (int i = 0; i < nr; i++) {
                    const uint8_t *row = W + (size_t)(r + i) * w_row;
                    if (type == ES_TYPE_F32) {
                        w[i] = (const float *)row + k0;
                    } else {
                        convert_row(type, row, k0, kc, buf[i]);
                        w[i] = buf[i];
                    }
                }
                for (int64_t t = t0; t < t1; t += NT) {
                    const int nt = (int)(t1 - t < NT ? t1 - t : NT);
                    const float *xt[NT];
                    for (int j = 0; j < nt; j++)
                        xt[j] = x + (t + j) * n_in + k0;
                    float out[MR][NT];
                    run_tile(nr, nt, w, xt, kc, out);
                    for (int j = 0; j < nt; j++) {
                        float *yr = y + (t + j) * n_out + r;
                        for (int i = 0; i < nr; i++)
                            yr[i] = k0 == 0 ? out[i][j] : yr[i] + out[i][j];
                    }
                }
            }
        }
    }
}

/* ---- broadcast form for n_tok >= ES_XT_MIN_TOK: tokens across the lanes ----------------
 *
 * The activations are first transposed into tiles of ES_XT_W tokens, xt[tile][k][ES_XT_W]
 * (missing tokens zero). A microkernel keeps XR weight rows × ES_XT_W tokens in 24
 * accumulators whose lanes are tokens; each k costs XNV loads of xt and 24 FMAs that
 * broadcast w[r][k] from memory, and no horizontal sums. Weights are converted to f32 once per
 * block of XKC k; between blocks the sums go through y and come back, so every output is one fma
 * per k in k order whatever the batch (tokens never mix: they are lanes). */

#define XNV (ES_XT_W / 16) /* vectors of 16 tokens per tile */
#define XR (24 / XNV)      /* weight rows per microkernel: XR x XNV = 24 accumulators */
#define XKC 1024           /* k per converted weight block (48 KB for XR rows) */
#define XTB                                                                                        \
    (512 / ES_XT_W) /* token tiles per pass over the rows (weights converted once per pass) */

/* Transposes 16 vectors of 16 floats in place (r[i][j] <-> r[j][i]). */
ES_AVX512 static ES_ALWAYS_INLINE void transpose16(__m512 r[16]) {
    __m512 t[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) {
        const __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 1]);
        const __m512d c = _mm512_castps_pd(t[4 * i + 2]), d = _mm512_castps_pd(t[4 * i + 3]);
        r[4 * i + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    /* r[4i+m], 128-bit lane j: column 4j+m of source rows 4i..4i+3 */
    for (int m = 0; m < 4; m++) {
        t[m] = _mm512_shuffle_f32x4(r[m], r[4 + m], 0x88);
        t[m + 4] = _mm512_shuffle_f32x4(r[m], r[4 + m], 0xdd);
        t[m + 8] = _mm512_shuffle_f32x4(r[8 + m], r[12 + m], 0x88);
        t[m + 12] = _mm512_shuffle_f32x4(r[8 + m], r[12 + m], 0xdd);
    }
    for (int m = 0; m < 4; m++) {
        r[m] = _mm512_shuffle_f32x4(t[m], t[m + 8], 0x88);
        r[8 + m] = _mm512_shuffle_f32x4(t[m], t[m + 8], 0xdd);
        r[4 + m] = _mm512_shuffle_f32x4(t[m + 4], t[m + 12], 0x88);
        r[12 + m] = _mm512_shuffle_f32x4(t[m + 4], t[m + 12], 0xdd);
    }
}

ES_AVX512 void es_pack_xt_avx512(const float *x, int64_t n_in, int64_t n_tok, float *xt, int64_t g0,
                                 int64_t g1) {
    /* groups of 16 tokens [g0, g1): tile g/XNV, lanes 16·(g%XNV) ..; tokens past n_tok
     * (a partial group, or whole groups filling the last tile) become zeros */
    for (int64_t g = g0; g < g1; g++) {
        float *dst = xt + (size_t)(g / XNV) * (size_t)n_in * ES_XT_W + (size_t)(g % XNV) * 16;
        const int64_t t0 = g * 16, nt = n_tok - t0 < 16 ? n_tok - t0 : 16;
        int64_t k = 0;
        for (; k + 16 <= n_in; k += 16) {
            __m512 r[16];
            for (int i = 0; i < 16; i++)
                r[i] = i < nt ? _mm512_loadu_ps(x + (t0 + i) * n_in + k) : _mm512_setzero_ps();
            transpose16(r);
            for (int c = 0; c < 16; c++)
                _mm512_storeu_ps(dst + (size_t)(k + c) * ES_XT_W, r[c]);
        }
        for (; k < n_in; k++)
            for (int i = 0; i < 16; i++)
                dst[(size_t)k * ES_XT_W + i] = i < nt ? x[(t0 + i) * n_in + k] : 0.0f;
    }
}

ES_AVX512 void es_matmul_xt_avx512(int type, const uint8_t *W, size_t w_row, int64_t n_in,
                                   const float *xt, int64_t n_tok, float *y, int64_t n_out,
                                   int64_t r0, int64_t r1) {
    float buf[XR][XKC] __attribute__((aligned(64)));
    const int64_t n_tiles = (n_tok + ES_XT_W - 1) / ES_XT_W;
    for (int64_t tb = 0; tb < n_tiles; tb += XTB) {
        for (int64_t r = r0; r < r1; r += XR) {
            const int nr = (int)(r1 - r < XR ? r1 - r : XR);
            for (int64_t k0 = 0; k0 < n_in; k0 += XKC) {
                const int64_t kc = n_in - k0 < XKC ? n_in - k0 : XKC;
                /* rows in buf (F32 too: one base pointer leaves the registers to the tile) */
                for (int i = 0; i < XR; i++) {
                    if (i >= nr) /* missing rows: zero weights (results dropped) */
                        memset(buf[i], 0, (size_t)kc * sizeof(float));
                    else if (type == ES_TYPE_F32)
                        memcpy(buf[i], (const float *)(W + (size_t)(r + i) * w_row) + k0,
                               (size_t)kc * sizeof(float));
                    else
                        convert_row(type, W + (size_t)(r + i) * w_row, k0, kc, buf[i]);
                }
                for (int64_t tile = tb; tile < n_tiles && tile < tb + XTB; tile++) {
                    const int64_t t0 = tile * ES_XT_W,
                                  nt = n_tok - t0 < ES_XT_W ? n_tok - t0 : ES_XT_W;
                    float out[XR][ES_XT_W] __attribute__((aligned(64)));
                    __m512 acc[XR][XNV];
                    if (k0 == 0) {
                        for (int i = 0; i < XR; i++)
                            for (int v = 0; v < XNV; v++)
                                acc[i][v] = _mm512_setzero_ps();
                    } else { /* continue the earlier k blocks' sums: one fma per k, in k order */
                        memset(out, 0, sizeof out);
                        for (int64_t j = 0; j < nt; j++)
                            for (int i = 0; i < nr; i++)
                                out[i][j] = y[(t0 + j) * n_out + r + i];
                        for (int i = 0; i < XR; i++)
                            for (int v = 0; v < XNV; v++)
                                acc[i][v] = _mm512_load_ps(out[i] + 16 * v);
                    }
                    const float *xk = xt + ((size_t)tile * (size_t)n_in + (size_t)k0) * ES_XT_W;
                    for (int64_t k = 0; k < kc; k++, xk += ES_XT_W) {
                        __m512 xv[XNV];
#pragma GCC unroll 4
                        for (int v = 0; v < XNV; v++)
                            xv[v] = _mm512_loadu_ps(xk + 16 * v);
#pragma GCC unroll 12
                        for (int i = 0; i < XR; i++) {
                            const __m512 wv = _mm512_set1_ps(buf[i][k]);
#pragma GCC unroll 4
                            for (int v = 0; v < XNV; v++)
                                acc[i][v] = _mm512_fmadd_ps(wv, xv[v], acc[i][v]);
                        }
                    }
                    for (int i = 0; i < XR; i++)
                        for (int v = 0; v < XNV; v++)
                            _mm512_store_ps(out[i] + 16 * v, acc[i][v]);
                    for (int64_t j = 0; j < nt; j++)
                        for (int i = 0; i < nr; i++)
                            y[(t0 + j) * n_out + r + i] = out[i][j];
                }
            }
        }
    }
}

/* ---- es_gemm_nn: 6 rows x 64 columns per tile ---- */

#define GT_V __m512
#define GT_VL 16
#define GT_ZERO() _mm512_setzero_ps()
#define GT_LOAD(p) _mm512_loadu_ps(p)
#define GT_STORE(p, v) _mm512_storeu_ps(p, v)
#define GT_BCAST(f) _mm512_set1_ps(f)
#define GT_FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define GT_MT 6
#define GT_NV 4
#define GT_ATTR ES_AVX512
#define GT_NAME es_gemm_nn_avx512
#include "gemm_tmpl.h"

#else

bool es_avx512_supported(void) {
    return false;
}

#endif
