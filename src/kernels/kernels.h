/*
 * kernels.h — internal: quantized block layouts and the per-type kernels behind the
 * es_type_traits tables of types.c. Not part of the public API.
 *
 * Naming, for every kernel of src/kernels/ and src/kernels/x86/:
 *   blocks     es_block_<type>              es_block_q4_0, es_block_q4_K, es_block_q8_K
 *   kernels    es_<op>[_<type>]_<isa>       es_vec_dot_q4_0_ref, es_vec_dot_q4_K_avx2,
 *                                           es_to_float_q6_K_avx2, es_matmul_f32act_avx512,
 *                                           es_matmul_rows_q8_0_avx512vnni, es_dot_f16_avx2
 *   helpers    es_<op>_<type>               es_unpack_scales_q4_K (shared by ref and SIMD files)
 *   ISA tests  es_<isa>_supported           es_avx512_supported, es_avxvnni_supported
 *   tables     es_<module>_register[_<isa>] es_quants_register_ref, es_quants_k_register
 * <type> is the GGML name in lower case with the K kept upper (q4_0, q5_K, bf16); <isa> is
 * one of ref (the plain scalar reference, quants.c / quants_k.c / vecops.c), avx2
 * (AVX2/FMA/F16C), avxvnni (AVX-VNNI), avx512 (AVX-512F), avx512vnni (AVX-512 VNNI), the
 * same words es_kernels_isa() prints. Constants are ES_QK (32) and ES_QK_K (256). File-local
 * (static) kernels drop the es_ prefix and may drop the suffix in a file of one ISA
 * (vec_dot_q4_0 in x86/quants_avx2.c, dot_ref in vecops.c). The per-type kernels
 * follow the signatures of types.h: to_float(x, y, n), from_float(x, y, n),
 * vec_dot(n, s, x, y) with n a multiple of the block size.
 *
 * Block layouts are the GGML ones, as stored in GGUF files (little-endian, packed):
 *   Q4_0: d (fp16), qs[16]: element j in the low nibble of qs[j], element j+16 in the
 *         high nibble; value = d * (q - 8).
 *   Q4_1: d, m (fp16), qs[16] (same nibble order); value = d * q + m.
 *   Q5_0: d, qh[4] (bit j of the little-endian u32 = 5th bit of element j), qs[16];
 *         value = d * (q - 16).
 *   Q5_1: d, m, qh[4], qs[16]; value = d * q + m.
 *   Q8_0: d, qs[32] (int8); value = d * q.
 *   Q8_1: d, s (fp16; s = d * sum(qs)), qs[32] (int8) — activations for Q4_1/Q5_1.
 */
#ifndef ES_KERNELS_H
#define ES_KERNELS_H

#include "types.h"

#include <stdbool.h>
#include <stdint.h>

#define ES_QK 32 /* elements per block of the non-K quantized types */

/* Summation order of the quantized dot products. Integer block sums are exact; what
 * decides the float result is where they are rounded and added. We follow the order of
 * llama.cpp's x86 AVX2 kernels (what users compare us with, and what the quantized
 * fixtures hold), so that the same file gives the same logits bit for bit:
 *   Q4_0, Q5_0 per block: acc = fma(isum, d_w·d_x, acc) (as llama.cpp's repacked Q4_0 gemm;
 *              the AVX-VNNI prompt tile and the AVX2 vec_dot_llamacpp follow it; the AVX2
 *              vec_dot of ES_NUMERICS_FAST keeps float lanes, ~25% faster where it computes
 *              the prompt, equal up to rounding);
 *   Q8_0·Q8_0  eight lanes, lane l = Σ of elements 4l..4l+3 of each 32-block (int),
 *              acc_l = fma(d_w·d_x, lane_l, acc_l) block after block, then es_hsum8;
 *   Q4_K·Q8_K  per 64 elements: acc = fma(sc·isum pair, d_w·d_x, acc) and
 *              accm = fma(min·bsum pair, dmin_w·d_x, accm); result acc − accm (as
 *              llama.cpp's repacked Q4_K gemm; the AVX2 vec_dot_llamacpp and its tiles follow
 *              it, and so do fast-mode prompts and every product of the matrices a model
 *              interleaves at load, ES_TYPE_Q4_K_X8 (matmul.h), decode included; the AVX2
 *              vec_dot of ES_NUMERICS_FAST and the batch-invariant tiles of rows left in the
 *              file's layout sum as Q5_K below, as llama.cpp's plain vec_dot does: ~1.4x the
 *              per-64 chain one row at a time, equal up to rounding);
 *   Q5_K·Q8_K  lanes as Q8_0 over each super-block (scales applied in int),
 *              acc_l = fma(d, lane_l, acc_l); plus Σ_blocks (−dmin·d_x)·Σ min·bsum;
 *   Q6_K·Q8_K  lanes as Q5_K, the −32 offset folded in per lane pair of 16-sums.
 * The scalar references below spell these out; every SIMD version reproduces them (for
 * Q4_0/Q5_0/Q4_K: the table's vec_dot_llamacpp, types.h), so that ES_NUMERICS_LLAMACPP gives the
 * same bits on every CPU and with every environment switch below. */
static inline float es_hsum8(const float a[8]) {
    return ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]));
}

typedef struct {
    uint16_t d;            /* scale, fp16 */
    uint8_t qs[ES_QK / 2]; /* nibbles */
} es_block_q4_0;
_Static_assert(sizeof(es_block_q4_0) == 18, "Q4_0 block is 18 bytes");

typedef struct {
    uint16_t d;            /* scale, fp16 */
    uint16_t m;            /* minimum, fp16 */
    uint8_t qs[ES_QK / 2]; /* nibbles */
} es_block_q4_1;
_Static_assert(sizeof(es_block_q4_1) == 20, "Q4_1 block is 20 bytes");

typedef struct {
    uint16_t d;            /* scale, fp16 */
    uint8_t qh[4];         /* 5th bits, element j = bit j */
    uint8_t qs[ES_QK / 2]; /* low nibbles */
} es_block_q5_0;
_Static_assert(sizeof(es_block_q5_0) == 22, "Q5_0 block is 22 bytes");

typedef struct {
    uint16_t d;            /* scale, fp16 */
    uint16_t m;            /* minimum, fp16 */
    uint8_t qh[4];         /* 5th bits */
    uint8_t qs[ES_QK / 2]; /* low nibbles */
} es_block_q5_1;
_Static_assert(sizeof(es_block_q5_1) == 24, "Q5_1 block is 24 bytes");

typedef struct {
    uint16_t d;       /* scale, fp16 */
    int8_t qs[ES_QK]; /* quants */
} es_block_q8_0;
_Static_assert(sizeof(es_block_q8_0) == 34, "Q8_0 block is 34 bytes");

typedef struct {
    uint16_t d;       /* scale, fp16 */
    uint16_t s;       /* d * sum(qs), fp16 */
    int8_t qs[ES_QK]; /* quants */
} es_block_q8_1;
_Static_assert(sizeof(es_block_q8_1) == 36, "Q8_1 block is 36 bytes");

/* ---- scalar references (quants.c) ---- */
void es_to_float_f32_ref(const void *x, float *y, int64_t n);
void es_from_float_f32_ref(const float *x, void *y, int64_t n);
void es_vec_dot_f32_ref(int64_t n, float *s, const void *x, const void *y);

void es_to_float_f16_ref(const void *x, float *y, int64_t n);
void es_from_float_f16_ref(const float *x, void *y, int64_t n);
void es_vec_dot_f16_ref(int64_t n, float *s, const void *x, const void *y);

void es_to_float_bf16_ref(const void *x, float *y, int64_t n);
void es_from_float_bf16_ref(const float *x, void *y, int64_t n);
void es_vec_dot_bf16_ref(int64_t n, float *s, const void *x, const void *y);

void es_to_float_q4_0_ref(const void *x, float *y, int64_t n);
void es_from_float_q4_0_ref(const float *x, void *y, int64_t n);
void es_vec_dot_q4_0_ref(int64_t n, float *s, const void *x, const void *y); /* y: Q8_0 */

void es_to_float_q4_1_ref(const void *x, float *y, int64_t n);
void es_from_float_q4_1_ref(const float *x, void *y, int64_t n);
void es_vec_dot_q4_1_ref(int64_t n, float *s, const void *x, const void *y); /* y: Q8_1 */

void es_to_float_q5_0_ref(const void *x, float *y, int64_t n);
void es_from_float_q5_0_ref(const float *x, void *y, int64_t n);
void es_vec_dot_q5_0_ref(int64_t n, float *s, const void *x, const void *y); /* y: Q8_0 */

void es_to_float_q5_1_ref(const void *x, float *y, int64_t n);
void es_from_float_q5_1_ref(const float *x, void *y, int64_t n);
void es_vec_dot_q5_1_ref(int64_t n, float *s, const void *x, const void *y); /* y: Q8_1 */

void es_to_float_q8_0_ref(const void *x, float *y, int64_t n);
void es_from_float_q8_0_ref(const float *x, void *y, int64_t n);
void es_vec_dot_q8_0_ref(int64_t n, float *s, const void *x, const void *y); /* y: Q8_0 */

void es_to_float_q8_1_ref(const void *x, float *y, int64_t n);
void es_from_float_q8_1_ref(const float *x, void *y, int64_t n);

/* Fills the scalar kernels of the types quants.c implements into a table indexed by
 * type id (sizes and names already set by types.c). */
void es_quants_register_ref(es_type_traits *table);

#ifndef ES_NO_SIMD
/* ---- AVX2/FMA/F16C (quants_avx2.c); call only when the CPU has all three ---- */
/* Replaces entries of `table` with AVX2 kernels where quants_avx2.c has one. */
void es_quants_register_avx2(es_type_traits *table);

/* matmul_avx2.c: y[t][r] for rows [r0, r1) and all n_tok tokens, with F32, F16 or BF16
 * weights W (rows of w_row bytes) and f32 activations x[n_tok][n_in]; y is
 * [n_tok][n_out]. Register-blocked (3 rows x 4 tokens). */
void es_matmul_f32act_avx2(int type, const uint8_t *W, size_t w_row, int64_t n_in, const float *x,
                           int64_t n_tok, float *y, int64_t n_out, int64_t r0, int64_t r1);

/* es_gemm_nn (matmul.h) with AVX2 (matmul_avx2.c) and AVX-512F (matmul_avx512.c). */
void es_gemm_nn_avx2(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B,
                     int64_t ldb, float *C, int64_t ldc, bool acc);
void es_gemm_nn_avx512(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B,
                       int64_t ldb, float *C, int64_t ldc, bool acc);

/* matmul_avx512.c: the same as es_matmul_f32act_avx2 with AVX-512F (4 rows x 6 tokens). */
void es_matmul_f32act_avx512(int type, const uint8_t *W, size_t w_row, int64_t n_in, const float *x,
                             int64_t n_tok, float *y, int64_t n_out, int64_t r0, int64_t r1);

/* matmul_avx512.c, n_tok >= ES_XT_MIN_TOK: the activations transposed into tiles of
 * ES_XT_W tokens, xt[ceil(n_tok/ES_XT_W)][n_in][ES_XT_W] (es_pack_xt_avx512 writes the
 * groups of 16 tokens [g0, g1), up to ceil(n_tok/ES_XT_W)·ES_XT_W/16; tokens past n_tok are
 * zeros), then y rows [r0, r1) with tokens across the vector lanes. */
#define ES_XT_MIN_TOK 16
#define ES_XT_W 32
void es_pack_xt_avx512(const float *x, int64_t n_in, int64_t n_tok, float *xt, int64_t g0,
                       int64_t g1);
void es_matmul_xt_avx512(int type, const uint8_t *W, size_t w_row, int64_t n_in, const float *xt,
                         int64_t n_tok, float *y, int64_t n_out, int64_t r0, int64_t r1);

/* matmul_q8_avx512.c: Q8_0 prompt rows [r0, r1) with AVX-512 VNNI, in the order of
 * es_vec_dot_q8_0_ref bit for bit (xq: activations as Q8_0 rows of x_row bytes). Returns
 * false (and computes nothing) when its panel cannot be allocated. The path is on when
 * es_avx512_supported(), the CPU has AVX-512BW and AVX-512 VNNI, and ES_NO_VNNI is unset. */
bool es_avx512vnni_supported(void);
bool es_matmul_rows_q8_0_avx512vnni(const uint8_t *W, size_t w_row, int64_t n_in, const uint8_t *xq,
                                    size_t x_row, int64_t n_tok, float *y, int64_t n_out,
                                    int64_t r0, int64_t r1);

/* matmul_q4k_avx2.c: Q4_K products in llama.cpp's order (vec_dot_llamacpp's bits, xq:
 * activations as Q8_K rows of x_row bytes), rows in the lanes of AVX2, AVX-VNNI or AVX-512 VNNI
 * vectors, whichever the CPU has: rows [r0, r1) of Q4_K rows W (w_row bytes each; prompts), or
 * of a matrix es_repack_q4_K_x8 interleaved (r0, r1 multiples of 8; any n_tok). */
void es_matmul_rows_q4_K_panels(const uint8_t *W, size_t w_row, int64_t n_in, const uint8_t *xq,
                                size_t x_row, int64_t n_tok, float *y, int64_t n_out, int64_t r0,
                                int64_t r1);
void es_matmul_rows_q4_K_x8(const void *W, int64_t n_in, const uint8_t *xq, size_t x_row,
                            int64_t n_tok, float *y, int64_t n_out, int64_t r0, int64_t r1);
/* Interleaves the n_out Q4_K rows of W (w_row bytes each, n_in columns) into out: n_out / 8
 * (rounded up; missing rows zero) groups of n_in / 256 es_block_q4_Kx8 (quants_k.h). */
void es_repack_q4_K_x8(const void *W, size_t w_row, int64_t n_out, int64_t n_in, void *out);

/* matmul_q_avx2.c: the integer prompt path for Q4_0/Q4_1/Q5_0/Q5_1/Q8_0 and
 * Q4_K/Q5_K/Q6_K weights. */
typedef struct {
    float d;   /* activation scale of the group's block */
    float ms;  /* d * sum q (Q8_1: its stored s), for the weights' mins */
    int32_t c; /* weight offset * sum q, subtracted from the biased integer dot */
    int32_t pad;
} es_xinfo;
/* True when the CPU has AVX-VNNI, es_type_get hands out AVX2 kernels, and ES_NO_VNNI is unset. */
bool es_avxvnni_supported(void);
/* Weights per scale group (32 or 16) of a type the packed path handles, else 0. */
int es_group_size_packed(int type);
/* es_xinfo for the n_in / group_size groups of one activation row xq (vec_dot_type). */
void es_xinfo_packed(int type, const uint8_t *xq, int64_t n_in, es_xinfo *out);
/* y[t][r] for rows [r0, r1) and all tokens; xq: n_tok activation rows of x_row bytes,
 * xi: [n_tok][n_in / group_size]. */
void es_matmul_rows_packed(int type, const uint8_t *W, size_t w_row, int64_t n_in,
                           const uint8_t *xq, size_t x_row, const es_xinfo *xi, int64_t n_tok,
                           float *y, int64_t n_out, int64_t r0, int64_t r1);
#endif

/* Environment switches, read once when a path is first chosen (a value other than
 * empty or "0" sets them); together they select the paths of a smaller CPU on a larger one:
 *   ES_FORCE_SCALAR=1  the scalar references everywhere (es_kernels_have_avx2() false);
 *   ES_NO_AVX512=1     no AVX-512 path (es_avx512_supported(), es_avx512vnni_supported() false);
 *   ES_NO_VNNI=1       no VNNI path, neither AVX-VNNI (es_avxvnni_supported()) nor AVX-512 VNNI
 *                      (es_avx512vnni_supported()).
 *   ES_NO_REPACK=1     models keep their Q4_K matrices in the file's layout (es_q4_K_x8_enabled(),
 *                      matmul.h): the vec_dot and tile paths of the rows, as before interleaving.
 * ES_NO_AVX512=1 ES_NO_VNNI=1 runs exactly the paths of an AVX2/FMA/F16C CPU such as Zen 3.
 * es_kernels_isa() (types.h) names the paths in use. */
bool es_env_switch(const char *name);

/* True when the CPU has AVX-512F, the AVX2 kernels are in use, and ES_NO_AVX512 is unset
 * (matmul_avx512.c; false on builds without SIMD). */
bool es_avx512_supported(void);

/* Hook of the K-quant module (src/quants_k.c): fills the Q2_K..Q6_K and Q8_K entries
 * of both tables (kernels, can_compute, vec_dot_type). A weak no-op stands in until
 * that module is linked. */
void es_quants_k_register(es_type_traits *ref_table, es_type_traits *fast_table, bool have_avx2);

/* True when es_type_get hands out the AVX2 kernels (after es_kernels_init). */
bool es_kernels_have_avx2(void);

#endif /* ES_KERNELS_H */
