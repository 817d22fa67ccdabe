/*
 * quants.c — scalar reference kernels for the plain types (F32, F16, BF16) and the
 * non-K quantized types (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1). Block layouts in kernels.h.
 *
 * These are the definitions the SIMD kernels are tested against: plain loops, one
 * element at a time. Float dot products accumulate in double; integer dot products
 * sum each block exactly in int and scale it once per block.
 */
#include "kernels.h"

#include <math.h>
#include <string.h>

/* ---- F32 ---- */

void es_to_float_f32_ref(const void *x, float *y, int64_t n) {
    memcpy(y, x, (size_t)n * sizeof(float));
}

void es_from_float_f32_ref(const float *x, void *y, int64_t n) {
    memcpy(y, x, (size_t)n * sizeof(float));
}

void es_vec_dot_f32_ref(int64_t n, float *s, const void *x, const void *y) {
    const float *a = x, *b = y;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++)
        sum += (double)a[i] * (double)b[i];
    *s = (float)sum;
}

/* ---- F16 (weights) · F32 (activations) ---- */

void es_to_float_f16_ref(const void *x, float *y, int64_t n) {
    const uint16_t *h = x;
    for (int64_t i = 0; i < n; i++)
        y[i] = es_fp16_to_fp32(h[i]);
}

void es_from_float_f16_ref(const float *x, void *y, int64_t n) {
    uint16_t *h = y;
    for (int64_t i = 0; i < n; i++)
        h[i] = es_fp32_to_fp16(x[i]);
}

void es_vec_dot_f16_ref(int64_t n, float *s, const void *x, const void *y) {
    const uint16_t *a = x;
    const float *b = y;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++)
        sum += (double)es_fp16_to_fp32(a[i]) * (double)b[i];
    *s = (float)sum;
}

/* ---- BF16 (weights) · F32 (activations) ---- */

void es_to_float_bf16_ref(const void *x, float *y, int64_t n) {
    const uint16_t *h = x;
    for (int64_t i = 0; i < n; i++)
        y[i] = es_bf16_to_fp32(h[i]);
}

void es_from_float_bf16_ref(const float *x, void *y, int64_t n) {
    uint16_t *h = y;
    for (int64_t i = 0; i < n; i++)
        h[i] = es_fp32_to_bf16(x[i]);
}

void es_vec_dot_bf16_ref(int64_t n, float *s, const void *x, const void *y) {
    const uint16_t *a = x;
    const float *b = y;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++)
        sum += (double)es_bf16_to_fp32(a[i]) * (double)b[i];
    *s = (float)sum;
}

/* ---- helpers for the block quantizers ---- */

/* The element of largest magnitude, with its sign. */
static float signed_absmax(const float *x, int n) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < n; j++) {
        if (fabsf(x[j]) > amax) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    }
    return max;
}

static void min_max(const float *x, int n, float *min, float *max) {
    float lo = x[0], hi = x[0];
    for (int j = 1; j < n; j++) {
        if (x[j] < lo) lo = x[j];
        if (x[j] > hi) hi = x[j];
    }
    *min = lo;
    *max = hi;
}

static int clamp_int(int v, int lo, int hi) {
    return v < lo ? lo : (v > hi ? hi : v);
}

/* ---- Q4_0: value = d * (q - 8), q in [0, 15] ---- */

void es_to_float_q4_0_ref(const void *x, float *y, int64_t n) {
    const es_block_q4_0 *b = x;
    for (int64_t i = 0; i < n / ES_QK; i++, y += ES_QK) {
        const float d = es_fp16_to_fp32(b[i].d);
        for (int j = 0; j < ES_QK / 2; j++) {
            y[j] = d * (float)((b[i].qs[j] & 0x0f) - 8);
            y[j + ES_QK / 2] = d * (float)((b[i].qs[j] >> 4) - 8);
        }
    }
}

/* Quantizes one block: q_j = clamp((int)((x_j − sub)·id + bias), 0, 2^bits − 1); the low
 * nibbles go to qs (elements j and j + 16 share byte j) and, for bits = 5, the fifth bits
 * to *qh (bit j for element j). Q4_0/Q4_1/Q5_0/Q5_1 differ only in sub, id and bias. */
static void pack_block(const float *x, float sub, float id, float bias, int bits, uint8_t *qs,
                       uint32_t *qh) {
    const int qmax = (1 << bits) - 1;
    uint32_t h = 0;
    for (int j = 0; j < ES_QK / 2; j++) {
        const int q0 = clamp_int((int)((x[j] - sub) * id + bias), 0, qmax);
        const int q1 = clamp_int((int)((x[j + ES_QK / 2] - sub) * id + bias), 0, qmax);
        qs[j] = (uint8_t)((q0 & 0x0f) | ((q1 & 0x0f) << 4));
        h |= (uint32_t)(q0 >> 4) << j;
        h |= (uint32_t)(q1 >> 4) << (j + ES_QK / 2);
    }
    if (qh) *qh = h;
}

void es_from_float_q4_0_ref(const float *x, void *y, int64_t n) {
    es_block_q4_0 *b = y;
    for (int64_t i = 0; i < n / ES_QK; i++, x += ES_QK) {
        /* the extreme element maps to -8, so the full range [-8, 7] is used */
        const float d = signed_absmax(x, ES_QK) / -8.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = es_fp32_to_fp16(d);
        pack_block(x, 0.0f, id, 8.5f, 4, b[i].qs, NULL);
    }
}

void es_vec_dot_q4_0_ref(int64_t n, float *s, const void *x, const void *y) {
    const es_block_q4_0 *a = x;
    const es_block_q8_0 *b = y;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / ES_QK; i++) {
        int sumi = 0;
        for (int j = 0; j < ES_QK / 2; j++) {
            sumi += ((a[i].qs[j] & 0x0f) - 8) * b[i].qs[j];
            sumi += ((a[i].qs[j] >> 4) - 8) * b[i].qs[j + ES_QK / 2];
        }
        sum = fmaf((float)sumi, es_fp16_to_fp32(a[i].d) * es_fp16_to_fp32(b[i].d), sum);
    }
    *s = sum;
}

/* ---- Q4_1: value = d * q + m, q in [0, 15] ---- */

void es_to_float_q4_1_ref(const void *x, float *y, int64_t n) {
    const es_block_q4_1 *b = x;
    for (int64_t i = 0; i < n / ES_QK; i++, y += ES_QK) {
        const float d = es_fp16_to_fp32(b[i].d), m = es_fp16_to_fp32(b[i].m);
        for (int j = 0; j < ES_QK / 2; j++) {
            y[j] = d * (float)(b[i].qs[j] & 0x0f) + m;
            y[j + ES_QK / 2] = d * (float)(b[i].qs[j] >> 4) + m;
        }
    }
}

void es_from_float_q4_1_ref(const float *x, void *y, int64_t n) {
    es_block_q4_1 *b = y;
    for (int64_t i = 0; i < n / ES_QK; i++, x += ES_QK) {
        float min, max;
        min_max(x, ES_QK, &min, &max);
        const float d = (max - min) / 15.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = es_fp32_to_fp16(d);
        b[i].m = es_fp32_to_fp16(min);
        pack_block(x, min, id, 0.5f, 4, b[i].qs, NULL);
    }
}

void es_vec_dot_q4_1_ref(int64_t n, float *s, const void *x, const void *y) {
    const es_block_q4_1 *a = x;
    const es_block_q8_1 *b = y;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / ES_QK; i++) {
        int sumi = 0;
        for (int j = 0; j < ES_QK / 2; j++) {
            sumi += (a[i].qs[j] & 0x0f) * b[i].qs[j];
            sumi += (a[i].qs[j] >> 4) * b[i].qs[j + ES_QK / 2];
        }
        /* sum_j (d q_j + m) (dy y_j) = d dy sumi + m (dy sum_j y_j), the latter stored as s */
        sum += (float)sumi * (es_fp16_to_fp32(a[i].d) * es_fp16_to_fp32(b[i].d)) +
               es_fp16_to_fp32(a[i].m) * es_fp16_to_fp32(b[i].s);
    }
    *s = sum;
}

/* ---- Q5_0: value = d * (q - 16), q in [0, 31], 5th bit in qh ---- */

static inline uint32_t load_qh(const uint8_t qh[4]) {
    return (uint32_t)qh[0] | (uint32_t)qh[1] << 8 | (uint32_t)qh[2] << 16 | (uint32_t)qh[3] << 24;
}

static inline void store_qh(uint8_t qh[4], uint32_t v) {
    for (int k = 0; k < 4; k++)
        qh[k] = (uint8_t)(v >> (8 * k));
}

/* The 5-bit values of elements j and j + 16 of a Q5 block. */
static inline void q5_pair(const uint8_t *qs, uint32_t qh, int j, int *q0, int *q1) {
    *q0 = (qs[j] & 0x0f) | (int)(((qh >> j) & 1u) << 4);
    *q1 = (qs[j] >> 4) | (int)(((qh >> (j + ES_QK / 2)) & 1u) << 4);
}

void es_to_float_q5_0_ref(const void *x, float *y, int64_t n) {
    const es_block_q5_0 *b = x;
    for (int64_t i = 0; i < n / ES_QK; i++, y += ES_QK) {
        const float d = es_fp16_to_fp32(b[i].d);
        const uint32_t qh = load_qh(b[i].qh);
        for (int j = 0; j < ES_QK / 2; j++) {
            int q0, q1;
            q5_pair(b[i].qs, qh, j, &q0, &q1);
            y[j] = d * (float)(q0 - 16);
            y[j + ES_QK / 2] = d * (float)(q1 - 16);
        }
    }
}

void es_from_float_q5_0_ref(const float *x, void *y, int64_t n) {
    es_block_q5_0 *b = y;
    for (int64_t i = 0; i < n / ES_QK; i++, x += ES_QK) {
        const float d = signed_absmax(x, ES_QK) / -16.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = es_fp32_to_fp16(d);
        uint32_t qh;
        pack_block(x, 0.0f, id, 16.5f, 5, b[i].qs, &qh);
        store_qh(b[i].qh, qh);
    }
}

void es_vec_dot_q5_0_ref(int64_t n, float *s, const void *x, const void *y) {
    const es_block_q5_0 *a = x;
    const es_block_q8_0 *b = y;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / ES_QK; i++) {
        const uint32_t qh = load_qh(a[i].qh);
        int sumi = 0;
        for (int j = 0; j < ES_QK / 2; j++) {
            int q0, q1;
            q5_pair(a[i].qs, qh, j, &q0, &q1);
            sumi += (q0 - 16) * b[i].qs[j] + (q1 - 16) * b[i].qs[j + ES_QK / 2];
        }
        sum = fmaf((float)sumi, es_fp16_to_fp32(a[i].d) * es_fp16_to_fp32(b[i].d), sum);
    }
    *s = sum;
}

/* ---- Q5_1: value = d * q + m, q in [0, 31] ---- */

void es_to_float_q5_1_ref(const void *x, float *y, int64_t n) {
    const es_block_q5_1 *b = x;
    for (int64_t i = 0; i < n / ES_QK; i++, y += ES_QK) {
        const float d = es_fp16_to_fp32(b[i].d), m = es_fp16_to_fp32(b[i].m);
        const uint32_t qh = load_qh(b[i].qh);
        for (int j = 0; j < ES_QK / 2; j++) {
            int q0, q1;
            q5_pair(b[i].qs, qh, j, &q0, &q1);
            y[j] = d * (float)q0 + m;
            y[j + ES_QK / 2] = d * (float)q1 + m;
        }
    }
}

void es_from_float_q5_1_ref(const float *x, void *y, int64_t n) {
    es_block_q5_1 *b = y;
    for (int64_t i = 0; i < n / ES_QK; i++, x += ES_QK) {
        float min, max;
        min_max(x, ES_QK, &min, &max);
        const float d = (max - min) / 31.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = es_fp32_to_fp16(d);
        b[i].m = es_fp32_to_fp16(min);
        uint32_t qh;
        pack_block(x, min, id, 0.5f, 5, b[i].qs, &qh);
        store_qh(b[i].qh, qh);
    }
}

void es_vec_dot_q5_1_ref(int64_t n, float *s, const void *x, const void *y) {
    const es_block_q5_1 *a = x;
    const es_block_q8_1 *b = y;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / ES_QK; i++) {
        const uint32_t qh = load_qh(a[i].qh);
        int sumi = 0;
        for (int j = 0; j < ES_QK / 2; j++) {
            int q0, q1;
            q5_pair(a[i].qs, qh, j, &q0, &q1);
            sumi += q0 * b[i].qs[j] + q1 * b[i].qs[j + ES_QK / 2];
        }
        sum += (float)sumi * (es_fp16_to_fp32(a[i].d) * es_fp16_to_fp32(b[i].d)) +
               es_fp16_to_fp32(a[i].m) * es_fp16_to_fp32(b[i].s);
    }
    *s = sum;
}

/* ---- Q8_0: value = d * q, q in [-127, 127] ---- */

void es_to_float_q8_0_ref(const void *x, float *y, int64_t n) {
    const es_block_q8_0 *b = x;
    for (int64_t i = 0; i < n / ES_QK; i++, y += ES_QK) {
        const float d = es_fp16_to_fp32(b[i].d);
        for (int j = 0; j < ES_QK; j++)
            y[j] = d * (float)b[i].qs[j];
    }
}

/* Scale d = amax / 127 and the rounded quants of one block; returns the sum of quants.
 * q = round-half-even(x * (127 / amax)): the multiplier and the rounding of llama.cpp's x86
 * activation quantizer (its portable reference uses 1/d and rounds halves away from zero), so that
 * quantized dot products see the same activations as llama.cpp on the machines our users run. */
static int quantize_block_q8(const float *x, float *d_out, int8_t *qs) {
    float amax = 0.0f;
    for (int j = 0; j < ES_QK; j++)
        amax = fmaxf(amax, fabsf(x[j]));
    const float d = amax / 127.0f;
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    int sum = 0;
    for (int j = 0; j < ES_QK; j++) {
        const float v = x[j] * id;
        /* NaN and out-of-range values saturate instead of invoking undefined conversions */
        const float r = v >= 127.0f ? 127.0f : (v > -127.0f ? nearbyintf(v) : -127.0f);
        qs[j] = (int8_t)r;
        sum += qs[j];
    }
    *d_out = d;
    return sum;
}

void es_from_float_q8_0_ref(const float *x, void *y, int64_t n) {
    es_block_q8_0 *b = y;
    for (int64_t i = 0; i < n / ES_QK; i++, x += ES_QK) {
        float d;
        quantize_block_q8(x, &d, b[i].qs);
        b[i].d = es_fp32_to_fp16(d);
    }
}

void es_vec_dot_q8_0_ref(int64_t n, float *s, const void *x, const void *y) {
    const es_block_q8_0 *a = x;
    const es_block_q8_0 *b = y;
    float acc[8] = {0};
    for (int64_t i = 0; i < n / ES_QK; i++) {
        const float d = es_fp16_to_fp32(a[i].d) * es_fp16_to_fp32(b[i].d);
        for (int l = 0; l < 8; l++) {
            int sumi = 0;
            for (int j = 4 * l; j < 4 * l + 4; j++)
                sumi += a[i].qs[j] * b[i].qs[j];
            acc[l] = fmaf(d, (float)sumi, acc[l]);
        }
    }
    *s = es_hsum8(acc);
}

/* ---- Q8_1: Q8_0 plus s = d * sum(q) (activations for Q4_1 / Q5_1) ---- */

void es_to_float_q8_1_ref(const void *x, float *y, int64_t n) {
    const es_block_q8_1 *b = x;
    for (int64_t i = 0; i < n / ES_QK; i++, y += ES_QK) {
        const float d = es_fp16_to_fp32(b[i].d);
        for (int j = 0; j < ES_QK; j++)
            y[j] = d * (float)b[i].qs[j];
    }
}

void es_from_float_q8_1_ref(const float *x, void *y, int64_t n) {
    es_block_q8_1 *b = y;
    for (int64_t i = 0; i < n / ES_QK; i++, x += ES_QK) {
        float d;
        int sum = quantize_block_q8(x, &d, b[i].qs);
        b[i].d = es_fp32_to_fp16(d);
        b[i].s = es_fp32_to_fp16(d * (float)sum);
    }
}

/* ---- table ---- */

static void set_kernels(es_type_traits *t, es_type vdt, es_to_float_fn to, es_from_float_fn from,
                        es_vec_dot_fn dot) {
    t->vec_dot_type = vdt;
    t->to_float = to;
    t->from_float = from;
    t->vec_dot = dot;
    t->can_compute = to != NULL && dot != NULL;
}

void es_quants_register_ref(es_type_traits *table) {
    set_kernels(&table[ES_TYPE_F32], ES_TYPE_F32, es_to_float_f32_ref, es_from_float_f32_ref,
                es_vec_dot_f32_ref);
    set_kernels(&table[ES_TYPE_F16], ES_TYPE_F32, es_to_float_f16_ref, es_from_float_f16_ref,
                es_vec_dot_f16_ref);
    set_kernels(&table[ES_TYPE_BF16], ES_TYPE_F32, es_to_float_bf16_ref, es_from_float_bf16_ref,
                es_vec_dot_bf16_ref);
    set_kernels(&table[ES_TYPE_Q4_0], ES_TYPE_Q8_0, es_to_float_q4_0_ref, es_from_float_q4_0_ref,
                es_vec_dot_q4_0_ref);
    set_kernels(&table[ES_TYPE_Q4_1], ES_TYPE_Q8_1, es_to_float_q4_1_ref, es_from_float_q4_1_ref,
                es_vec_dot_q4_1_ref);
    set_kernels(&table[ES_TYPE_Q5_0], ES_TYPE_Q8_0, es_to_float_q5_0_ref, es_from_float_q5_0_ref,
                es_vec_dot_q5_0_ref);
    set_kernels(&table[ES_TYPE_Q5_1], ES_TYPE_Q8_1, es_to_float_q5_1_ref, es_from_float_q5_1_ref,
                es_vec_dot_q5_1_ref);
    set_kernels(&table[ES_TYPE_Q8_0], ES_TYPE_Q8_0, es_to_float_q8_0_ref, es_from_float_q8_0_ref,
                es_vec_dot_q8_0_ref);
    /* Q8_1 is an activation format only: no vec_dot of its own */
    set_kernels(&table[ES_TYPE_Q8_1], ES_TYPE_Q8_1, es_to_float_q8_1_ref, es_from_float_q8_1_ref,
                NULL);
}
