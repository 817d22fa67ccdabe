/*
 * quants_k.h — the K-quant weight types (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K) and the Q8_K
 * activation type, in GGUF's byte layout.
 *
 * Every K type packs ES_QK_K = 256 weights into one super-block. A super-block holds
 * sub-blocks of 16 (Q2_K, Q3_K, Q6_K) or 32 (Q4_K, Q5_K) weights, each with its own
 * small integer scale (and, for Q2_K/Q4_K/Q5_K, a min) that is itself multiplied by
 * the super-block's fp16 scale d (and dmin):
 *
 *   Q2_K   w = d·(sc & 15)·q − dmin·(sc >> 4),     q ∈ 0..3,   sub-block 16
 *   Q3_K   w = d·(sc − 32)·(q − 4),                q ∈ 0..7,   sub-block 16, sc 6 bits
 *   Q4_K   w = d·sc·q − dmin·m,                    q ∈ 0..15,  sub-block 32, sc/m 6 bits
 *   Q5_K   w = d·sc·q − dmin·m,                    q ∈ 0..31,  sub-block 32, sc/m 6 bits
 *   Q6_K   w = d·sc·(q − 32),                      q ∈ 0..63,  sub-block 16, sc int8
 *   Q8_K   a = d·q,                                q ∈ −127..127, d float, bsums per 16
 *
 * Element order inside a super-block (e = 0..255):
 *   Q2_K/Q3_K low bits: qs[32·(e/128) + e%32] >> 2·((e%128)/32), 2 bits;
 *   Q3_K high bit:      hmask[e%32] bit e/32;
 *   Q4_K/Q5_K nibbles:  qs[32·(e/64) + e%32], low nibble if (e%64) < 32, else high;
 *   Q5_K 5th bit:       qh[e%32] bit e/32;
 *   Q6_K low 4 bits:    ql[64·(e/128) + e%64], low nibble if (e%128) < 64, else high;
 *   Q6_K high 2 bits:   qh[32·(e/128) + e%32] >> 2·((e%128)/32).
 * The sub-block of element e is e/16 (or e/32 for Q4_K/Q5_K).
 *
 * Dot products take a K-quant row x and a Q8_K row y (activations quantized by
 * es_from_float_q8_K_ref, which rounds exactly like llama.cpp's reference, so that our
 * products match llama.cpp's up to float summation order). Integer sums per
 * super-block are exact; the float combination per block is done in the same order by
 * the scalar and the AVX2 versions, which therefore agree bit for bit.
 *
 * All functions take n, a multiple of ES_QK_K (the callers check), and never fail.
 */
#ifndef ES_QUANTS_K_H
#define ES_QUANTS_K_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define ES_QK_K 256
#define ES_K_SCALE_SIZE 12

typedef struct es_block_q2_K {
    uint8_t scales[ES_QK_K / 16]; /* low nibble: scale, high nibble: min, per 16 weights */
    uint8_t qs[ES_QK_K / 4];      /* 2-bit quants */
    uint16_t d;                   /* fp16 super-block scale of the scales */
    uint16_t dmin;                /* fp16 super-block scale of the mins */
} es_block_q2_K;
_Static_assert(sizeof(es_block_q2_K) == 84, "es_block_q2_K must be 84 bytes");

typedef struct es_block_q3_K {
    uint8_t hmask[ES_QK_K / 8];      /* high (third) bit of each quant */
    uint8_t qs[ES_QK_K / 4];         /* low 2 bits */
    uint8_t scales[ES_K_SCALE_SIZE]; /* 16 scales of 6 bits, stored +32 */
    uint16_t d;                      /* fp16 super-block scale */
} es_block_q3_K;
_Static_assert(sizeof(es_block_q3_K) == 110, "es_block_q3_K must be 110 bytes");

typedef struct es_block_q4_K {
    uint16_t d;                      /* fp16 super-block scale of the scales */
    uint16_t dmin;                   /* fp16 super-block scale of the mins */
    uint8_t scales[ES_K_SCALE_SIZE]; /* 8 scales and 8 mins of 6 bits */
    uint8_t qs[ES_QK_K / 2];         /* 4-bit quants */
} es_block_q4_K;
_Static_assert(sizeof(es_block_q4_K) == 144, "es_block_q4_K must be 144 bytes");

/* Eight Q4_K rows' blocks of the same 256 columns, interleaved (matmul_q4k_avx2.c: weights
 * repacked at load, and the per-call panels of the others): one 32-byte load holds 4 bytes of
 * each of the 8 rows. qs[h][g][r][i] is byte 32h + 4g + i of row r's qs: its low nibble element
 * 64h + 4g + i, its high nibble element 64h + 32 + 4g + i; the scales and mins unpacked. */
typedef struct es_block_q4_Kx8 {
    uint8_t qs[4][8][8][4]; /* [h][g][row][i] */
    uint8_t sc[8][8];       /* [sub-block][row] scales, 0..63 */
    uint8_t m[4][8][2];     /* [h][row]: mins of sub-blocks 2h and 2h + 1, 0..63 */
    uint16_t d[8];          /* fp16, per row */
    uint16_t dmin[8];
} es_block_q4_Kx8;
_Static_assert(sizeof(es_block_q4_Kx8) == 1184, "es_block_q4_Kx8 must be 1184 bytes");

typedef struct es_block_q5_K {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[ES_K_SCALE_SIZE]; /* as Q4_K */
    uint8_t qh[ES_QK_K / 8];         /* fifth bit of each quant */
    uint8_t qs[ES_QK_K / 2];         /* low 4 bits */
} es_block_q5_K;
_Static_assert(sizeof(es_block_q5_K) == 176, "es_block_q5_K must be 176 bytes");

typedef struct es_block_q6_K {
    uint8_t ql[ES_QK_K / 2];     /* low 4 bits */
    uint8_t qh[ES_QK_K / 4];     /* high 2 bits */
    int8_t scales[ES_QK_K / 16]; /* one per 16 weights */
    uint16_t d;                  /* fp16 super-block scale */
} es_block_q6_K;
_Static_assert(sizeof(es_block_q6_K) == 210, "es_block_q6_K must be 210 bytes");

typedef struct es_block_q8_K {
    float d;                     /* scale (may be negative) */
    int8_t qs[ES_QK_K];          /* quants, −127..127 */
    int16_t bsums[ES_QK_K / 16]; /* sum of each 16 consecutive quants */
} es_block_q8_K;
_Static_assert(sizeof(es_block_q8_K) == 292, "es_block_q8_K must be 292 bytes");

/* ---- decoding helpers shared by the scalar and SIMD files ---- */

/* Unpacks the 12-byte 6-bit scales of Q4_K/Q5_K into sc[8] and m[8]: for j < 4,
 * sc[j] and m[j] are the low 6 bits of bytes j and j+4; for j ≥ 4, their low 4 bits are
 * the low and high nibble of byte j+4 and their top 2 bits the top bits of bytes j−4
 * and j. Done four at a time in little-endian 32-bit words. */
static inline void es_unpack_scales_q4_K(const uint8_t *q, uint8_t *sc, uint8_t *m) {
    uint32_t w[3], s[2], mn[2];
    memcpy(w, q, 12);
    s[0] = w[0] & 0x3f3f3f3fu;
    mn[0] = w[1] & 0x3f3f3f3fu;
    s[1] = (w[2] & 0x0f0f0f0fu) | (((w[0] >> 6) & 0x03030303u) << 4);
    mn[1] = ((w[2] >> 4) & 0x0f0f0f0fu) | (((w[1] >> 6) & 0x03030303u) << 4);
    memcpy(sc, s, 8);
    memcpy(m, mn, 8);
}

/* Unpacks the 12-byte 6-bit scales of Q3_K into sc[16], already minus 32: the low 4
 * bits of scale i are byte i (i < 8) or the high nibble of byte i−8; its high 2 bits
 * are in byte 8 + i%4 at bit 2·(i/4). Done four scales at a time in 32-bit words
 * (bytes are little-endian, as in the file). */
static inline void es_unpack_scales_q3_K(const uint8_t *q, int8_t *sc) {
    uint32_t w[3], out[4];
    memcpy(w, q, 12);
    const uint32_t nib = 0x0f0f0f0fu, two = 0x03030303u;
    out[0] = (w[0] & nib) | (((w[2] >> 0) & two) << 4);        /* scales 0..3 */
    out[1] = (w[1] & nib) | (((w[2] >> 2) & two) << 4);        /* scales 4..7 */
    out[2] = ((w[0] >> 4) & nib) | (((w[2] >> 4) & two) << 4); /* scales 8..11 */
    out[3] = ((w[1] >> 4) & nib) | (((w[2] >> 6) & two) << 4); /* scales 12..15 */
    uint8_t u[16];
    memcpy(u, out, 16);
    for (int i = 0; i < 16; i++)
        sc[i] = (int8_t)(u[i] - 32);
}

/* ---- scalar references (the definition of each format) ---- */

void es_to_float_q2_K_ref(const void *x, float *y, int64_t n);
void es_to_float_q3_K_ref(const void *x, float *y, int64_t n);
void es_to_float_q4_K_ref(const void *x, float *y, int64_t n);
void es_to_float_q5_K_ref(const void *x, float *y, int64_t n);
void es_to_float_q6_K_ref(const void *x, float *y, int64_t n);
void es_to_float_q8_K_ref(const void *x, float *y, int64_t n);

/* Weight quantizers: per sub-block, a small search for the scale (and min) with the
 * least squared error, then the scales themselves quantized per super-block. Simpler
 * than llama.cpp's, deterministic, and close in error. */
void es_from_float_q2_K_ref(const float *x, void *y, int64_t n);
void es_from_float_q3_K_ref(const float *x, void *y, int64_t n);
void es_from_float_q4_K_ref(const float *x, void *y, int64_t n);
void es_from_float_q5_K_ref(const float *x, void *y, int64_t n);
void es_from_float_q6_K_ref(const float *x, void *y, int64_t n);
/* Activation quantizer, identical in rounding to llama.cpp's reference:
 * d = max/−127 with max the element of largest magnitude (sign kept), q = round(x/d)
 * to nearest, ties to even, bsums the sums of each 16 quants. */
void es_from_float_q8_K_ref(const float *x, void *y, int64_t n);

void es_vec_dot_q2_K_ref(int64_t n, float *s, const void *x, const void *y);
void es_vec_dot_q3_K_ref(int64_t n, float *s, const void *x, const void *y);
void es_vec_dot_q4_K_ref(int64_t n, float *s, const void *x, const void *y);
void es_vec_dot_q5_K_ref(int64_t n, float *s, const void *x, const void *y);
void es_vec_dot_q6_K_ref(int64_t n, float *s, const void *x, const void *y);

/* ---- AVX2/FMA versions (quants_k_avx2.c; only where ES_NO_SIMD is not defined) ---- */

#ifndef ES_NO_SIMD
void es_vec_dot_q2_K_avx2(int64_t n, float *s, const void *x, const void *y);
/* Sets vec_dot_tiles of Q2_K..Q6_K in table (the one whose vec_dot are the AVX2 functions). */
struct es_type_traits;
void es_quants_k_register_tiles_avx2(struct es_type_traits *table);
void es_vec_dot_q3_K_avx2(int64_t n, float *s, const void *x, const void *y);
/* es_from_float_q8_K_ref's bytes, faster. */
void es_from_float_q8_K_avx2(const float *x, void *y, int64_t n);
void es_vec_dot_q4_K_avx2(int64_t n, float *s, const void *x, const void *y);
void es_vec_dot_q5_K_avx2(int64_t n, float *s, const void *x, const void *y);
void es_vec_dot_q6_K_avx2(int64_t n, float *s, const void *x, const void *y);
void es_to_float_q4_K_avx2(const void *x, float *y, int64_t n);
void es_to_float_q6_K_avx2(const void *x, float *y, int64_t n);
#endif

#endif /* ES_QUANTS_K_H */
