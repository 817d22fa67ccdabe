/*
 * matmul_avx2.c — register-blocked AVX2/FMA microkernels for es_matmul's prompt case
 * (n_tok > 1), weights F32/F16/BF16 with f32 activations.
 *
 * A tile of MR = 3 weight rows × NT = 4 tokens keeps 12 accumulators of 8 lanes in
 * registers; each step of 8 k loads 3 weight vectors and 4 activation vectors for 12
 * FMAs, and the 12 sums are reduced once per tile. F16/BF16 rows are converted to f32
 * once per block of KC elements into a small stack buffer and reused for every token
 * of the token block, whose activations (TB rows) stay in L2.
 */
#include "kernels.h"

#include <immintrin.h>
#include <string.h>

#define MR 3    /* weight rows per microkernel */
#define NT 4    /* tokens per microkernel */
#define KC 1024 /* k elements converted per block */

#define ES_ALWAYS_INLINE inline __attribute__((always_inline))

/* out[r][t] = sum_k w[r][k] * x[t][k] over k in [0, kc) for nr rows and nt tokens. */
static ES_ALWAYS_INLINE void tile_kernel(int nr, int nt, const float *const w[MR],
                                         const float *const x[NT], int64_t kc, float out[MR][NT]) {
    __m256 acc[MR][NT];
#pragma GCC unroll 3
    for (int r = 0; r < nr; r++)
#pragma GCC unroll 4
        for (int t = 0; t < nt; t++)
            acc[r][t] = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 8 <= kc; k += 8) {
        __m256 wv[MR];
#pragma GCC unroll 3
        for (int r = 0; r < nr; r++)
            wv[r] = _mm256_loadu_ps(w[r] + k);
#pragma GCC unroll 4
        for (int t = 0; t < nt; t++) {
            const __m256 xv = _mm256_loadu_ps(x[t] + k);
#pragma GCC unroll 3
            for (int r = 0; r < nr; r++)
                acc[r][t] = _mm256_fmadd_ps(wv[r], xv, acc[r][t]);
        }
    }
#pragma GCC unroll 3
    for (int r = 0; r < nr; r++) {
        /* the 4 token sums of row r at once */
        const __m256 z = _mm256_setzero_ps();
        const __m256 ab = _mm256_hadd_ps(acc[r][0], nt > 1 ? acc[r][1] : z);
        const __m256 cd = _mm256_hadd_ps(nt > 2 ? acc[r][2] : z, nt > 3 ? acc[r][3] : z);
        const __m256 abcd = _mm256_hadd_ps(ab, cd);
        float sums[4];
        _mm_storeu_ps(sums,
                      _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1)));
#pragma GCC unroll 4
        for (int t = 0; t < nt; t++) {
            float v = sums[t];
            for (int64_t kk = k; kk < kc; kk++)
                v += w[r][kk] * x[t][kk];
            out[r][t] = v;
        }
    }
}

/* The kernel specialised for each (nr, nt), so that every accumulator is a register. */
static void run_tile(int nr, int nt, const float *const w[MR], const float *const x[NT], int64_t kc,
                     float out[MR][NT]) {
/* a table of cases, one row per nr */
/* clang-format off */
#define ES_TILE_CASE(R, T)                                                                                   \
    case (R) * 8 + (T): tile_kernel(R, T, w, x, kc, out); break;
    switch (nr * 8 + nt) {
        ES_TILE_CASE(3, 4) ES_TILE_CASE(3, 3) ES_TILE_CASE(3, 2) ES_TILE_CASE(3, 1)
        ES_TILE_CASE(2, 4) ES_TILE_CASE(2, 3) ES_TILE_CASE(2, 2) ES_TILE_CASE(2, 1)
        ES_TILE_CASE(1, 4) ES_TILE_CASE(1, 3) ES_TILE_CASE(1, 2) ES_TILE_CASE(1, 1)
    default: break;
    }
#undef ES_TILE_CASE
    /* clang-format on */
}

/* Converts kc elements from k0 of a F16/BF16 row into f32. */
static void convert_row(int type, const uint8_t *row, int64_t k0, int64_t kc, float *dst) {
    const uint16_t *h = (const uint16_t *)row + k0;
    int64_t k = 0;
    if (type == ES_TYPE_F16) {
        for (; k + 8 <= kc; k += 8)
            _mm256_storeu_ps(dst + k, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + k))));
        for (; k < kc; k++)
            dst[k] = _cvtsh_ss(h[k]);
    } else {
        for (; k + 8 <= kc; k += 8) {
            __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(h + k)));
            _mm256_storeu_ps(dst + k, _mm256_castsi256_ps(_mm256_slli_epi32(v, 16)));
        }
        for (; k < kc; k++)
            dst[k] = es_bf16_to_fp32(h[k]);
    }
}

void es_matmul_f32act_avx2(int type, const uint8_t *W, size_t w_row, int64_t n_in, const float *x,
                           int64_t n_tok, float *y, int64_t n_out, int64_t r0, int64_t r1) {
    float buf[MR][KC] __attribute__((aligned(32)));
    /* tokens per block: their activations (TB * n_in floats) should stay within ~384 KB of L2 */
    int64_t tb_max = (384 * 1024) / (n_in * (int64_t)sizeof(float));
    tb_max = tb_max < NT ? NT : (tb_max > 64 ? 64 : tb_max / NT * NT);
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

/* ---- es_gemm_nn: 6 rows x 16 columns per tile ---- */

#define GT_V __m256
#define GT_VL 8
#define GT_ZERO() _mm256_setzero_ps()
#define GT_LOAD(p) _mm256_loadu_ps(p)
#define GT_STORE(p, v) _mm256_storeu_ps(p, v)
#define GT_BCAST(f) _mm256_set1_ps(f)
#define GT_FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define GT_MT 6
#define GT_NV 2
#define GT_ATTR
#define GT_NAME es_gemm_nn_avx2
#include "gemm_tmpl.h"
