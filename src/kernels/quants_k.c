/*
 * quants_k.c — scalar reference kernels of the K-quant types (see quants_k.h for the
 * formats): dequantization, quantization, dot products with Q8_K activations, and
 * es_quants_k_register, which puts them (and the AVX2 versions) into the type tables.
 */
#include "quants_k.h"

#include "kernels.h"
#include "types.h"

#include <math.h>
#include <string.h>

/* Round to nearest, ties to even, for |v| < 2^22 (under the default rounding mode, as
 * llama.cpp's quantizers): adding 1.5·2^23 leaves the rounded integer in the low
 * mantissa bits. */
static inline int round_even(float v) {
    float t = v + 12582912.0f;
    int32_t bits;
    memcpy(&bits, &t, sizeof bits);
    return (bits & 0x007fffff) - 0x00400000;
}

/* Rounds and clamps to [lo, hi]; safe for any finite or non-finite v. */
static inline int round_clamp(float v, int lo, int hi) {
    if (!(v > (float)lo)) return lo; /* also NaN */
    if (v > (float)hi) return hi;
    int r = round_even(v);
    return r < lo ? lo : r > hi ? hi : r;
}

static inline float fp16(uint16_t h) {
    return es_fp16_to_fp32(h);
}

/* ------------------------------------------------------------------------- */
/* Scale packing                                                             */
/* ------------------------------------------------------------------------- */

/* Inverse of es_unpack_scales_q4_K; sc and m are 0..63. */
static void pack_scales_q4_K(const uint8_t *sc, const uint8_t *m, uint8_t *q) {
    for (int j = 0; j < 4; j++) {
        q[j] = (uint8_t)(sc[j] | ((sc[j + 4] >> 4) << 6));
        q[j + 4] = (uint8_t)(m[j] | ((m[j + 4] >> 4) << 6));
        q[j + 8] = (uint8_t)((sc[j + 4] & 0x0f) | ((m[j + 4] & 0x0f) << 4));
    }
}

/* v[i] in 0..63 */
static void pack_scales_q3_K(const uint8_t *v, uint8_t *q) {
    memset(q, 0, ES_K_SCALE_SIZE);
    for (int i = 0; i < 16; i++) {
        if (i < 8)
            q[i] |= v[i] & 0x0f;
        else
            q[i - 8] |= (uint8_t)((v[i] & 0x0f) << 4);
        q[8 + i % 4] |= (uint8_t)((v[i] >> 4) << (2 * (i / 4)));
    }
}

/* ------------------------------------------------------------------------- */
/* Unpacking the quants of one super-block into q[256] (unsigned, 0..2^bits-1) */
/* ------------------------------------------------------------------------- */

static void unpack_q2_K(const es_block_q2_K *b, uint8_t *q) {
    for (int e = 0; e < ES_QK_K; e++)
        q[e] = (b->qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
}

static void unpack_q3_K(const es_block_q3_K *b, uint8_t *q) {
    for (int e = 0; e < ES_QK_K; e++) {
        int lo = (b->qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
        int hi = (b->hmask[e % 32] >> (e / 32)) & 1;
        q[e] = (uint8_t)(lo | (hi << 2));
    }
}

static void unpack_q4_K(const es_block_q4_K *b, uint8_t *q) {
    for (int e = 0; e < ES_QK_K; e++) {
        uint8_t byte = b->qs[32 * (e / 64) + e % 32];
        q[e] = (e % 64) < 32 ? byte & 0x0f : byte >> 4;
    }
}

static void unpack_q5_K(const es_block_q5_K *b, uint8_t *q) {
    for (int e = 0; e < ES_QK_K; e++) {
        uint8_t byte = b->qs[32 * (e / 64) + e % 32];
        int lo = (e % 64) < 32 ? byte & 0x0f : byte >> 4;
        int hi = (b->qh[e % 32] >> (e / 32)) & 1;
        q[e] = (uint8_t)(lo | (hi << 4));
    }
}

static void unpack_q6_K(const es_block_q6_K *b, uint8_t *q) {
    for (int e = 0; e < ES_QK_K; e++) {
        uint8_t byte = b->ql[64 * (e / 128) + e % 64];
        int lo = (e % 128) < 64 ? byte & 0x0f : byte >> 4;
        int hi = (b->qh[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
        q[e] = (uint8_t)(lo | (hi << 4));
    }
}

/* ------------------------------------------------------------------------- */
/* Dequantization                                                            */
/* ------------------------------------------------------------------------- */

void es_to_float_q2_K_ref(const void *vx, float *y, int64_t n) {
    const es_block_q2_K *x = vx;
    uint8_t q[ES_QK_K];
    for (int64_t i = 0; i < n / ES_QK_K; i++) {
        const float d = fp16(x[i].d), dmin = fp16(x[i].dmin);
        unpack_q2_K(&x[i], q);
        for (int e = 0; e < ES_QK_K; e++) {
            const uint8_t sc = x[i].scales[e / 16];
            y[i * ES_QK_K + e] = d * (float)(sc & 0x0f) * (float)q[e] - dmin * (float)(sc >> 4);
        }
    }
}

void es_to_float_q3_K_ref(const void *vx, float *y, int64_t n) {
    const es_block_q3_K *x = vx;
    uint8_t q[ES_QK_K];
    int8_t sc[16];
    for (int64_t i = 0; i < n / ES_QK_K; i++) {
        const float d = fp16(x[i].d);
        unpack_q3_K(&x[i], q);
        es_unpack_scales_q3_K(x[i].scales, sc);
        for (int e = 0; e < ES_QK_K; e++)
            y[i * ES_QK_K + e] = d * (float)sc[e / 16] * (float)(q[e] - 4);
    }
}

void es_to_float_q4_K_ref(const void *vx, float *y, int64_t n) {
    const es_block_q4_K *x = vx;
    uint8_t q[ES_QK_K], sc[8], m[8];
    for (int64_t i = 0; i < n / ES_QK_K; i++) {
        const float d = fp16(x[i].d), dmin = fp16(x[i].dmin);
        unpack_q4_K(&x[i], q);
        es_unpack_scales_q4_K(x[i].scales, sc, m);
        for (int e = 0; e < ES_QK_K; e++)
            y[i * ES_QK_K + e] = d * (float)sc[e / 32] * (float)q[e] - dmin * (float)m[e / 32];
    }
}

void es_to_float_q5_K_ref(const void *vx, float *y, int64_t n) {
    const es_block_q5_K *x = vx;
    uint8_t q[ES_QK_K], sc[8], m[8];
    for (int64_t i = 0; i < n / ES_QK_K; i++) {
        const float d = fp16(x[i].d), dmin = fp16(x[i].dmin);
        unpack_q5_K(&x[i], q);
        es_unpack_scales_q4_K(x[i].scales, sc, m);
        for (int e = 0; e < ES_QK_K; e++)
            y[i * ES_QK_K + e] = d * (float)sc[e / 32] * (float)q[e] - dmin * (float)m[e / 32];
    }
}

void es_to_float_q6_K_ref(const void *vx, float *y, int64_t n) {
    const es_block_q6_K *x = vx;
    uint8_t q[ES_QK_K];
    for (int64_t i = 0; i < n / ES_QK_K; i++) {
        const float d = fp16(x[i].d);
        unpack_q6_K(&x[i], q);
        for (int e = 0; e < ES_QK_K; e++)
            y[i * ES_QK_K + e] = d * (float)x[i].scales[e / 16] * (float)(q[e] - 32);
    }
}

void es_to_float_q8_K_ref(const void *vx, float *y, int64_t n) {
    const es_block_q8_K *x = vx;
    for (int64_t i = 0; i < n / ES_QK_K; i++)
        for (int e = 0; e < ES_QK_K; e++)
            y[i * ES_QK_K + e] = x[i].d * (float)x[i].qs[e];
}

/* ------------------------------------------------------------------------- */
/* Quantization                                                              */
/* ------------------------------------------------------------------------- */

/* Candidate scales tried around the plain max-based one, in steps of 0.1 level. */
#define FIT_STEPS_LO 4
#define FIT_STEPS_HI 8

/* Fits x[0..n) ≈ s·L − m with L ∈ 0..nmax, s ≥ 0, m ≥ 0 (the group minimum, clipped
 * to ≤ 0, is the zero level). Tries several level spacings, solves the least-squares
 * (s, m) for each assignment, keeps the one with the least squared error. */
static void fit_scale_min(const float *x, int n, int nmax, float *s_out, float *m_out) {
    float lo = x[0], hi = x[0];
    for (int i = 1; i < n; i++) {
        lo = fminf(lo, x[i]);
        hi = fmaxf(hi, x[i]);
    }
    if (lo > 0) lo = 0;
    if (!(hi > lo)) { /* all equal (and ≤ 0) or non-finite */
        *s_out = 0;
        *m_out = isfinite(lo) ? -lo : 0;
        return;
    }
    float sum_x = 0, sum_x2 = 0;
    for (int i = 0; i < n; i++) {
        sum_x += x[i];
        sum_x2 += x[i] * x[i];
    }
    float best_s = (hi - lo) / (float)nmax, best_m = -lo, best_err = INFINITY;
    for (int k = -FIT_STEPS_LO; k <= FIT_STEPS_HI; k++) {
        const float iscale = ((float)nmax + 0.1f * (float)k) / (hi - lo);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            const float l = (float)round_clamp(iscale * (x[i] - lo), 0, nmax);
            sum_l += l;
            sum_l2 += l * l;
            sum_xl += l * x[i];
        }
        const float det = (float)n * sum_l2 - sum_l * sum_l;
        if (!(det > 0)) continue;
        float s = ((float)n * sum_xl - sum_l * sum_x) / det;
        float b = (sum_l2 * sum_x - sum_l * sum_xl) / det; /* x ≈ s·L + b */
        if (b > 0) {                                       /* the min must be ≤ 0 */
            b = 0;
            s = sum_xl / sum_l2;
        }
        if (!(s > 0)) continue;
        /* Σ (s·L + b − x)² expanded over the sums of this assignment */
        const float err = s * s * sum_l2 + 2 * s * b * sum_l - 2 * s * sum_xl + (float)n * b * b -
                          2 * b * sum_x + sum_x2;
        if (err < best_err) {
            best_err = err;
            best_s = s;
            best_m = -b;
        }
    }
    *s_out = best_s;
    *m_out = best_m;
}

/* Fits x[0..n) ≈ s·L with L ∈ −nmax..nmax−1 (s may be negative so that the element of
 * largest magnitude can use level −nmax). Returns s. */
static float fit_scale_sym(const float *x, int n, int nmax) {
    float amax = 0, max = 0;
    for (int i = 0; i < n; i++) {
        const float a = fabsf(x[i]);
        if (a > amax) {
            amax = a;
            max = x[i];
        }
    }
    if (!(amax > 0) || !isfinite(amax)) return 0;
    float best_s = max / -(float)nmax, best_score = -1;
    for (int k = -FIT_STEPS_LO; k <= FIT_STEPS_HI; k++) {
        const float iscale = -((float)nmax + 0.1f * (float)k) / max;
        float sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            const float l = (float)round_clamp(iscale * x[i], -nmax, nmax - 1);
            sum_l2 += l * l;
            sum_xl += l * x[i];
        }
        if (!(sum_l2 > 0)) continue;
        /* with the least-squares s = Σxl/Σl², the error is Σx² − (Σxl)²/Σl² */
        const float score = sum_xl * sum_xl / sum_l2;
        if (score > best_score) {
            best_score = score;
            best_s = sum_xl / sum_l2;
        }
    }
    return best_s;
}

/* Quantizes positive values v[0..n) to integers 0..qmax with one shared step d
 * (= max/qmax, stored as fp16); returns d as read back from fp16. */
static float quantize_scales_unsigned(const float *v, int n, int qmax, uint8_t *out,
                                      uint16_t *d_fp16) {
    float vmax = 0;
    for (int j = 0; j < n; j++)
        vmax = fmaxf(vmax, v[j]);
    if (!(vmax > 0)) {
        memset(out, 0, (size_t)n);
        *d_fp16 = es_fp32_to_fp16(0.0f);
        return 0;
    }
    *d_fp16 = es_fp32_to_fp16(vmax / (float)qmax);
    const float d = fp16(*d_fp16);
    for (int j = 0; j < n; j++)
        out[j] = (uint8_t)round_clamp(d > 0 ? v[j] / d : 0, 0, qmax);
    return d;
}

/* Shared by Q2_K (16 groups of 16, 4-bit scales) and Q4_K/Q5_K (8 groups of 32,
 * 6-bit scales): picks per-group scale/min codes and the final levels L[256]. */
static void quantize_asym_block(const float *x, int group, int nmax, int scale_max, uint8_t *sc,
                                uint8_t *m, uint16_t *d_fp16, uint16_t *dmin_fp16, uint8_t *L) {
    const int ngroups = ES_QK_K / group;
    float s[16] = {0}, mn[16] = {0};
    for (int j = 0; j < ngroups; j++)
        fit_scale_min(x + j * group, group, nmax, &s[j], &mn[j]);
    const float d = quantize_scales_unsigned(s, ngroups, scale_max, sc, d_fp16);
    const float dmin = quantize_scales_unsigned(mn, ngroups, scale_max, m, dmin_fp16);
    for (int j = 0; j < ngroups; j++) {
        const float ds = d * (float)sc[j], dm = dmin * (float)m[j];
        for (int i = 0; i < group; i++) {
            const int e = j * group + i;
            L[e] = ds > 0 ? (uint8_t)round_clamp((x[e] + dm) / ds, 0, nmax) : 0;
        }
    }
}

/* Shared by Q3_K (levels −4..3, 6-bit signed scales) and Q6_K (levels −32..31, int8
 * scales): 16 groups of 16. Writes scale codes sc[16] (signed), d, and L[256] = level + nmax. */
static void quantize_sym_block(const float *x, int nmax, int scale_lo, int scale_hi, int *sc,
                               uint16_t *d_fp16, uint8_t *L) {
    float s[16], smax = 0, samax = 0;
    for (int j = 0; j < 16; j++) {
        s[j] = fit_scale_sym(x + 16 * j, 16, nmax);
        if (fabsf(s[j]) > samax) {
            samax = fabsf(s[j]);
            smax = s[j];
        }
    }
    if (!(samax > 0)) {
        for (int j = 0; j < 16; j++)
            sc[j] = 0;
        *d_fp16 = es_fp32_to_fp16(0.0f);
        memset(L, (uint8_t)nmax, ES_QK_K);
        return;
    }
    /* the largest scale maps to scale_lo (the wider, negative side) */
    *d_fp16 = es_fp32_to_fp16(smax / (float)scale_lo);
    const float d = fp16(*d_fp16);
    for (int j = 0; j < 16; j++) {
        sc[j] = d != 0 ? round_clamp(s[j] / d, scale_lo, scale_hi) : 0;
        const float ds = d * (float)sc[j];
        for (int i = 0; i < 16; i++) {
            const int e = 16 * j + i;
            const int l = ds != 0 ? round_clamp(x[e] / ds, -nmax, nmax - 1) : 0;
            L[e] = (uint8_t)(l + nmax);
        }
    }
}

void es_from_float_q2_K_ref(const float *x, void *vy, int64_t n) {
    es_block_q2_K *y = vy;
    uint8_t L[ES_QK_K], sc[16], m[16];
    for (int64_t i = 0; i < n / ES_QK_K; i++, x += ES_QK_K) {
        es_block_q2_K *b = &y[i];
        quantize_asym_block(x, 16, 3, 15, sc, m, &b->d, &b->dmin, L);
        for (int j = 0; j < 16; j++)
            b->scales[j] = (uint8_t)(sc[j] | (m[j] << 4));
        memset(b->qs, 0, sizeof b->qs);
        for (int e = 0; e < ES_QK_K; e++)
            b->qs[32 * (e / 128) + e % 32] |= (uint8_t)(L[e] << (2 * ((e % 128) / 32)));
    }
}

void es_from_float_q3_K_ref(const float *x, void *vy, int64_t n) {
    es_block_q3_K *y = vy;
    uint8_t L[ES_QK_K], v[16];
    int sc[16];
    for (int64_t i = 0; i < n / ES_QK_K; i++, x += ES_QK_K) {
        es_block_q3_K *b = &y[i];
        quantize_sym_block(x, 4, -32, 31, sc, &b->d, L);
        for (int j = 0; j < 16; j++)
            v[j] = (uint8_t)(sc[j] + 32);
        pack_scales_q3_K(v, b->scales);
        memset(b->qs, 0, sizeof b->qs);
        memset(b->hmask, 0, sizeof b->hmask);
        for (int e = 0; e < ES_QK_K; e++) {
            b->qs[32 * (e / 128) + e % 32] |= (uint8_t)((L[e] & 3) << (2 * ((e % 128) / 32)));
            b->hmask[e % 32] |= (uint8_t)((L[e] >> 2) << (e / 32));
        }
    }
}

void es_from_float_q4_K_ref(const float *x, void *vy, int64_t n) {
    es_block_q4_K *y = vy;
    uint8_t L[ES_QK_K], sc[8], m[8];
    for (int64_t i = 0; i < n / ES_QK_K; i++, x += ES_QK_K) {
        es_block_q4_K *b = &y[i];
        quantize_asym_block(x, 32, 15, 63, sc, m, &b->d, &b->dmin, L);
        pack_scales_q4_K(sc, m, b->scales);
        memset(b->qs, 0, sizeof b->qs);
        for (int e = 0; e < ES_QK_K; e++)
            b->qs[32 * (e / 64) + e % 32] |= (uint8_t)(L[e] << ((e % 64) < 32 ? 0 : 4));
    }
}

void es_from_float_q5_K_ref(const float *x, void *vy, int64_t n) {
    es_block_q5_K *y = vy;
    uint8_t L[ES_QK_K], sc[8], m[8];
    for (int64_t i = 0; i < n / ES_QK_K; i++, x += ES_QK_K) {
        es_block_q5_K *b = &y[i];
        quantize_asym_block(x, 32, 31, 63, sc, m, &b->d, &b->dmin, L);
        pack_scales_q4_K(sc, m, b->scales);
        memset(b->qs, 0, sizeof b->qs);
        memset(b->qh, 0, sizeof b->qh);
        for (int e = 0; e < ES_QK_K; e++) {
            b->qs[32 * (e / 64) + e % 32] |= (uint8_t)((L[e] & 15) << ((e % 64) < 32 ? 0 : 4));
            b->qh[e % 32] |= (uint8_t)((L[e] >> 4) << (e / 32));
        }
    }
}

void es_from_float_q6_K_ref(const float *x, void *vy, int64_t n) {
    es_block_q6_K *y = vy;
    uint8_t L[ES_QK_K];
    int sc[16];
    for (int64_t i = 0; i < n / ES_QK_K; i++, x += ES_QK_K) {
        es_block_q6_K *b = &y[i];
        quantize_sym_block(x, 32, -128, 127, sc, &b->d, L);
        for (int j = 0; j < 16; j++)
            b->scales[j] = (int8_t)sc[j];
        memset(b->ql, 0, sizeof b->ql);
        memset(b->qh, 0, sizeof b->qh);
        for (int e = 0; e < ES_QK_K; e++) {
            b->ql[64 * (e / 128) + e % 64] |= (uint8_t)((L[e] & 15) << ((e % 128) < 64 ? 0 : 4));
            b->qh[32 * (e / 128) + e % 32] |= (uint8_t)((L[e] >> 4) << (2 * ((e % 128) / 32)));
        }
    }
}

void es_from_float_q8_K_ref(const float *x, void *vy, int64_t n) {
    es_block_q8_K *y = vy;
    for (int64_t i = 0; i < n / ES_QK_K; i++, x += ES_QK_K) {
        es_block_q8_K *b = &y[i];
        float amax = 0, max = 0;
        for (int e = 0; e < ES_QK_K; e++) {
            const float a = fabsf(x[e]);
            if (a > amax) {
                amax = a;
                max = x[e];
            }
        }
        if (amax == 0 || !isfinite(amax)) {
            b->d = 0;
            memset(b->qs, 0, sizeof b->qs);
            memset(b->bsums, 0, sizeof b->bsums);
            continue;
        }
        const float iscale = -127.0f / max;
        for (int e = 0; e < ES_QK_K; e++)
            b->qs[e] = (int8_t)round_clamp(iscale * x[e], -128, 127);
        for (int j = 0; j < ES_QK_K / 16; j++) {
            int sum = 0;
            for (int e = 0; e < 16; e++)
                sum += b->qs[16 * j + e];
            b->bsums[j] = (int16_t)sum;
        }
        b->d = 1.0f / iscale;
    }
}

/* ------------------------------------------------------------------------- */
/* Dot products with Q8_K                                                    */
/* ------------------------------------------------------------------------- */

/* Σ over elements [e0, e0+len) of q·y, exact in int. */
static inline int32_t idot(const uint8_t *q, const int8_t *y, int e0, int len) {
    int32_t sum = 0;
    for (int e = e0; e < e0 + len; e++)
        sum += (int32_t)q[e] * y[e];
    return sum;
}

void es_vec_dot_q2_K_ref(int64_t n, float *s, const void *vx, const void *vy) {
    const es_block_q2_K *x = vx;
    const es_block_q8_K *y = vy;
    uint8_t q[ES_QK_K];
    float sum = 0;
    for (int64_t i = 0; i < n / ES_QK_K; i++) {
        unpack_q2_K(&x[i], q);
        int32_t isum = 0, msum = 0;
        for (int j = 0; j < 16; j++) {
            isum += (x[i].scales[j] & 0x0f) * idot(q, y[i].qs, 16 * j, 16);
            msum += (x[i].scales[j] >> 4) * y[i].bsums[j];
        }
        const float dall = fp16(x[i].d) * y[i].d, dmin = fp16(x[i].dmin) * y[i].d;
        sum += dall * (float)isum - dmin * (float)msum;
    }
    *s = sum;
}

void es_vec_dot_q3_K_ref(int64_t n, float *s, const void *vx, const void *vy) {
    const es_block_q3_K *x = vx;
    const es_block_q8_K *y = vy;
    uint8_t q[ES_QK_K];
    int8_t sc[16];
    float sum = 0;
    for (int64_t i = 0; i < n / ES_QK_K; i++) {
        unpack_q3_K(&x[i], q);
        es_unpack_scales_q3_K(x[i].scales, sc);
        int32_t isum = 0;
        for (int j = 0; j < 16; j++) /* levels are q − 4 */
            isum += sc[j] * (idot(q, y[i].qs, 16 * j, 16) - 4 * y[i].bsums[j]);
        sum += fp16(x[i].d) * y[i].d * (float)isum;
    }
    *s = sum;
}

/* lane[l] += scale · Σ q·y over elements e0+4l .. e0+4l+3, for the lanes [l0, l0+nl). */
static inline void lanes_add(int32_t lane[8], const uint8_t *q, const int8_t *y, int e0, int l0,
                             int nl, int scale) {
    for (int l = l0; l < l0 + nl; l++)
        lane[l] += scale * idot(q, y, e0 + 4 * l, 4);
}

void es_vec_dot_q4_K_ref(int64_t n, float *s, const void *vx, const void *vy) {
    const es_block_q4_K *x = vx;
    const es_block_q8_K *y = vy;
    uint8_t q[ES_QK_K], sc[8], m[8];
    float acc = 0, accm = 0;
    for (int64_t i = 0; i < n / ES_QK_K; i++) {
        unpack_q4_K(&x[i], q);
        es_unpack_scales_q4_K(x[i].scales, sc, m);
        const float dd = fp16(x[i].d) * y[i].d, dm = fp16(x[i].dmin) * y[i].d;
        const int16_t *bs = y[i].bsums;
        for (int p = 0; p < 4; p++) { /* pairs of 32-element sub-blocks */
            const int32_t isum = sc[2 * p] * idot(q, y[i].qs, 64 * p, 32) +
                                 sc[2 * p + 1] * idot(q, y[i].qs, 64 * p + 32, 32);
            const int32_t msum = m[2 * p] * (bs[4 * p] + bs[4 * p + 1]) +
                                 m[2 * p + 1] * (bs[4 * p + 2] + bs[4 * p + 3]);
            acc = fmaf((float)isum, dd, acc);
            accm = fmaf((float)msum, dm, accm);
        }
    }
    *s = acc - accm;
}

void es_vec_dot_q5_K_ref(int64_t n, float *s, const void *vx, const void *vy) {
    const es_block_q5_K *x = vx;
    const es_block_q8_K *y = vy;
    uint8_t q[ES_QK_K], sc[8], m[8];
    float acc[8] = {0}, summs = 0;
    for (int64_t i = 0; i < n / ES_QK_K; i++) {
        unpack_q5_K(&x[i], q);
        es_unpack_scales_q4_K(x[i].scales, sc, m);
        const float d = y[i].d * fp16(x[i].d), dmin = -y[i].d * fp16(x[i].dmin);
        int32_t lane[8] = {0}, msum = 0;
        for (int j = 0; j < 8; j++) {
            lanes_add(lane, q, y[i].qs, 32 * j, 0, 8, sc[j]);
            msum += m[j] * (y[i].bsums[2 * j] + y[i].bsums[2 * j + 1]);
        }
        summs = fmaf(dmin, (float)msum, summs);
        for (int l = 0; l < 8; l++)
            acc[l] = fmaf(d, (float)lane[l], acc[l]);
    }
    *s = es_hsum8(acc) + summs;
}

void es_vec_dot_q6_K_ref(int64_t n, float *s, const void *vx, const void *vy) {
    const es_block_q6_K *x = vx;
    const es_block_q8_K *y = vy;
    uint8_t q[ES_QK_K];
    float acc[8] = {0};
    for (int64_t i = 0; i < n / ES_QK_K; i++) {
        unpack_q6_K(&x[i], q);
        const int8_t *sc = x[i].scales;
        int32_t lane[8] = {0};
        for (int j = 0; j < 8;
             j++) { /* 32 elements: lanes 0-3 use scale 2j, lanes 4-7 scale 2j+1 */
            lanes_add(lane, q, y[i].qs, 32 * j, 0, 4, sc[2 * j]);
            lanes_add(lane, q, y[i].qs, 32 * j, 4, 4, sc[2 * j + 1]);
        }
        for (int l = 0; l < 8; l++) /* levels are q − 32 */
            lane[l] -= 32 * (sc[2 * l] * y[i].bsums[2 * l] + sc[2 * l + 1] * y[i].bsums[2 * l + 1]);
        const float d = y[i].d * fp16(x[i].d);
        for (int l = 0; l < 8; l++)
            acc[l] = fmaf(d, (float)lane[l], acc[l]);
    }
    *s = es_hsum8(acc);
}

/* ------------------------------------------------------------------------- */
/* Registration in the type tables                                           */
/* ------------------------------------------------------------------------- */

typedef struct kquant_kernels {
    es_type type;
    es_to_float_fn to_float, to_float_fast;
    es_from_float_fn from_float;
    es_vec_dot_fn vec_dot, vec_dot_fast;
} kquant_kernels;

void es_quants_k_register(es_type_traits *ref_table, es_type_traits *fast_table, bool have_avx2) {
#ifdef ES_NO_SIMD
#define ES_KQ_FAST(simd, scalar) (scalar)
#else
#define ES_KQ_FAST(simd, scalar) (simd)
#endif
    const kquant_kernels k[] = {
        {ES_TYPE_Q2_K, es_to_float_q2_K_ref, es_to_float_q2_K_ref, es_from_float_q2_K_ref,
         es_vec_dot_q2_K_ref, ES_KQ_FAST(es_vec_dot_q2_K_avx2, es_vec_dot_q2_K_ref)},
        {ES_TYPE_Q3_K, es_to_float_q3_K_ref, es_to_float_q3_K_ref, es_from_float_q3_K_ref,
         es_vec_dot_q3_K_ref, ES_KQ_FAST(es_vec_dot_q3_K_avx2, es_vec_dot_q3_K_ref)},
        {ES_TYPE_Q4_K, es_to_float_q4_K_ref,
         ES_KQ_FAST(es_to_float_q4_K_avx2, es_to_float_q4_K_ref), es_from_float_q4_K_ref,
         es_vec_dot_q4_K_ref, ES_KQ_FAST(es_vec_dot_q4_K_avx2, es_vec_dot_q4_K_ref)},
        {ES_TYPE_Q5_K, es_to_float_q5_K_ref, es_to_float_q5_K_ref, es_from_float_q5_K_ref,
         es_vec_dot_q5_K_ref, ES_KQ_FAST(es_vec_dot_q5_K_avx2, es_vec_dot_q5_K_ref)},
        {ES_TYPE_Q6_K, es_to_float_q6_K_ref,
         ES_KQ_FAST(es_to_float_q6_K_avx2, es_to_float_q6_K_ref), es_from_float_q6_K_ref,
         es_vec_dot_q6_K_ref, ES_KQ_FAST(es_vec_dot_q6_K_avx2, es_vec_dot_q6_K_ref)},
    };
#undef ES_KQ_FAST
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
        es_type_traits *r = &ref_table[k[i].type], *f = &fast_table[k[i].type];
        r->to_float = k[i].to_float;
        r->from_float = k[i].from_float;
        r->vec_dot = k[i].vec_dot;
        r->vec_dot_type = ES_TYPE_Q8_K;
        r->can_compute = true;
        f->to_float = have_avx2 ? k[i].to_float_fast : k[i].to_float;
        f->from_float = k[i].from_float;
        f->vec_dot = have_avx2 ? k[i].vec_dot_fast : k[i].vec_dot;
        f->vec_dot_type = ES_TYPE_Q8_K;
        f->can_compute = true;
    }
#ifndef ES_NO_SIMD
    if (have_avx2) es_quants_k_register_tiles_avx2(fast_table);
#endif
    /* Q8_K is only an activation format: convertible both ways, no dot product. */
    es_type_traits *tabs[2] = {ref_table, fast_table};
    for (int t = 0; t < 2; t++) {
        tabs[t][ES_TYPE_Q8_K].to_float = es_to_float_q8_K_ref;
        tabs[t][ES_TYPE_Q8_K].from_float = es_from_float_q8_K_ref;
    }
#ifndef ES_NO_SIMD
    if (have_avx2) fast_table[ES_TYPE_Q8_K].from_float = es_from_float_q8_K_avx2;
#endif
}
