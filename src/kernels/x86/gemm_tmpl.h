/*
 * gemm_tmpl.h — the register-blocked f32 "NN" microkernel behind es_gemm_nn, written
 * once for several vector widths. Included by matmul_avx2.c and matmul_avx512.c after
 * they define:
 *   GT_V, GT_VL           vector type and its lanes
 *   GT_ZERO(), GT_LOAD(p), GT_STORE(p, v), GT_BCAST(f), GT_FMA(a, b, c), GT_ADD(a, b)
 *   GT_MT, GT_NV          tile: GT_MT (<= 8) rows of C × GT_NV (2 or 4) vectors of columns
 *   GT_ATTR               function attributes (target)
 *   GT_NAME               name of the function to define
 * The function: C[m][n] = (acc ? C[m][n] : 0) + sum_k A[m][k] * B[k][n] for
 * m < M, n < N, k < K, row strides lda, ldb, ldc (in floats). Lanes run along n, so
 * there are no horizontal sums; each k loads GT_NV vectors of B and broadcasts GT_MT
 * elements of A for GT_MT × GT_NV FMAs.
 */

#define GT_CAT2(a, b) a##b
#define GT_CAT(a, b) GT_CAT2(a, b)
#define GT_TILE GT_CAT(GT_NAME, _tile)
#define GT_RUN GT_CAT(GT_NAME, _run)

/* One tile: mt rows, nv whole vectors of columns starting at column 0 of B/C. */
GT_ATTR static inline __attribute__((always_inline)) void
GT_TILE(int mt, int nv, int64_t K, const float *A, int64_t lda, const float *B, int64_t ldb,
        float *C, int64_t ldc, bool acc_in) {
    GT_V acc[GT_MT][GT_NV];
#pragma GCC unroll 8
    for (int i = 0; i < mt; i++)
#pragma GCC unroll 4
        for (int j = 0; j < nv; j++)
            acc[i][j] = acc_in ? GT_LOAD(C + i * ldc + j * GT_VL) : GT_ZERO();
    for (int64_t k = 0; k < K; k++) {
        GT_V b[GT_NV];
#pragma GCC unroll 4
        for (int j = 0; j < nv; j++)
            b[j] = GT_LOAD(B + k * ldb + j * GT_VL);
#pragma GCC unroll 8
        for (int i = 0; i < mt; i++) {
            const GT_V a = GT_BCAST(A[i * lda + k]);
#pragma GCC unroll 4
            for (int j = 0; j < nv; j++)
                acc[i][j] = GT_FMA(a, b[j], acc[i][j]);
        }
    }
#pragma GCC unroll 8
    for (int i = 0; i < mt; i++)
#pragma GCC unroll 4
        for (int j = 0; j < nv; j++)
            GT_STORE(C + i * ldc + j * GT_VL, acc[i][j]);
}

/* Dispatch to a tile specialised for (mt, nv). */
GT_ATTR static void GT_RUN(int mt, int nv, int64_t K, const float *A, int64_t lda, const float *B,
                           int64_t ldb, float *C, int64_t ldc, bool acc_in) {
#define GT_CASE(MT_, NV_)                                                                          \
    case (MT_)*8 + (NV_):                                                                          \
        GT_TILE(MT_, NV_, K, A, lda, B, ldb, C, ldc, acc_in);                                      \
        return;
#if GT_NV == 4
#define GT_ROW(MT_) GT_CASE(MT_, 1) GT_CASE(MT_, 2) GT_CASE(MT_, 3) GT_CASE(MT_, 4)
#elif GT_NV == 2
#define GT_ROW(MT_) GT_CASE(MT_, 1) GT_CASE(MT_, 2)
#else
#error "gemm_tmpl.h: GT_NV must be 2 or 4"
#endif
    switch (mt * 8 + nv) {
#if GT_MT >= 8
        GT_ROW(8)
        GT_ROW(7)
#endif
        GT_ROW(6) GT_ROW(5) GT_ROW(4) GT_ROW(3) GT_ROW(2) GT_ROW(1) default : break;
    }
#undef GT_ROW
#undef GT_CASE
}

GT_ATTR void GT_NAME(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B,
                     int64_t ldb, float *C, int64_t ldc, bool acc) {
    const int64_t nvec = N / GT_VL; /* whole vectors of columns */
    for (int64_t m = 0; m < M; m += GT_MT) {
        const int mt = (int)(M - m < GT_MT ? M - m : GT_MT);
        for (int64_t v = 0; v < nvec; v += GT_NV) {
            const int nv = (int)(nvec - v < GT_NV ? nvec - v : GT_NV);
            GT_RUN(mt, nv, K, A + m * lda, lda, B + v * GT_VL, ldb, C + m * ldc + v * GT_VL, ldc,
                   acc);
        }
        /* the last N % GT_VL columns, plainly */
        for (int i = 0; i < mt; i++) {
            for (int64_t n = nvec * GT_VL; n < N; n++) {
                float s = acc ? C[(m + i) * ldc + n] : 0.0f;
                for (int64_t k = 0; k < K; k++)
                    s += A[(m + i) * lda + k] * B[k * ldb + n];
                C[(m + i) * ldc + n] = s;
            }
        }
    }
}

#undef GT_RUN
#undef GT_TILE
#undef GT_CAT
#undef GT_CAT2
