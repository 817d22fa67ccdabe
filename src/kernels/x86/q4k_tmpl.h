/*
 * q4k_tmpl.h — the tile of matmul_q4k_avx2.c, written once for several instruction sets.
 * Included by matmul_q4k_avx2.c after it defines:
 *   QT_VI, QT_VF         int32 and float vector types; QT_LANES their lanes (rows of a tile:
 *                        8, one es_block_q4_Kx8 group, or 16, two)
 *   QT_T                 tokens of a tile (at most)
 *   QT_LOADW(a, b, off)  the 32-byte piece at byte off of the groups' blocks a (rows 0..7) and
 *                        b (rows 8..15; unused with 8 lanes), as one vector
 *   QT_LOADSC(a, b, k)   int32 lanes: the rows' scales of sub-block k
 *   QT_LOADM(a, b, h)    int16 pairs: the rows' mins of sub-blocks 2h, 2h + 1
 *   QT_LOADH(a, b, f)    float lanes: the rows' fp16 field f (d or dmin)
 *   QT_LOADF(p), QT_STOREF(p, v), QT_SET1I(i), QT_SET1F(f), QT_SET1B(c), QT_ZEROI(),
 *   QT_ZEROF(), QT_ADDI(a, b), QT_AND(a, b), QT_SRLI16(a, n), QT_MADD16(a, b) (pmaddwd),
 *   QT_CVT(v), QT_MUL(a, b), QT_FMA(a, b, c) (a·b + c, one rounding), QT_SUBF(a, b)
 *   QT_GROUP(s, w, x)    s += the 4-byte dot products of unsigned w and signed x per lane, in
 *                        whatever integer form QT_SCALE takes
 *   QT_SCALE(s, sc)      int32 lanes sc·(sum of s's lane), sc the int32 sub-block scales
 *   QT_ATTR, QT_NAME     function attributes (target) and the name of the function to define
 * The function: QT_NAME(nt, a, b, nb, y, out, outm, first, last, nr) computes the QT_LANES rows
 * of the nb blocks a[0..nb), b[0..nb) against nt <= QT_T tokens, the same blocks of token j at
 * y[j]: the chains of vec_dot_q4_K_llamacpp per output, continued from out[j] (acc) and outm[j]
 * (accm) unless first, and out[j] = acc − accm if last (else acc, and accm to outm[j]);
 * nr: rows of out[j] to store (< QT_LANES at the end of the matrix).
 */

#define QT_CAT2(a, b) a##b
#define QT_CAT(a, b) QT_CAT2(a, b)
#define QT_TILE QT_CAT(QT_NAME, _tile)

QT_ATTR static inline __attribute__((always_inline)) void
QT_TILE(int nt, const es_block_q4_Kx8 *a, const es_block_q4_Kx8 *b, int nb,
        const es_block_q8_K *const *y, float *const *out, float *const *outm, bool first, bool last,
        int nr) {
    const QT_VI m4 = QT_SET1B(0x0f);
    QT_VF acc[QT_T], accm[QT_T];
#pragma GCC unroll 8
    for (int j = 0; j < nt; j++) {
        if (first) {
            acc[j] = accm[j] = QT_ZEROF();
        } else {
            float tmp[QT_LANES] = {0};
            memcpy(tmp, out[j], sizeof(float) * (size_t)nr);
            acc[j] = QT_LOADF(tmp);
            accm[j] = QT_LOADF(outm[j]);
        }
    }
    for (int i = 0; i < nb; i++) {
        const es_block_q4_Kx8 *ai = a + i, *bi = b + i;
        (void)bi; /* the 8-lane tiles read one group */
        const QT_VF dw = QT_LOADH(ai, bi, d);
#pragma GCC unroll 4
        for (int h = 0; h < 4; h++) { /* 64 elements: sub-blocks 2h (low nibbles), 2h + 1 */
            QT_VI slo[QT_T], shi[QT_T];
#pragma GCC unroll 8
            for (int j = 0; j < nt; j++)
                slo[j] = shi[j] = QT_ZEROI();
#pragma GCC unroll 8
            for (int g = 0; g < 8; g++) {
                const QT_VI w = QT_LOADW(ai, bi, (h * 8 + g) * 32);
                const QT_VI lo = QT_AND(w, m4), hi = QT_AND(QT_SRLI16(w, 4), m4);
#pragma GCC unroll 8
                for (int j = 0; j < nt; j++) {
                    int32_t xl, xh;
                    memcpy(&xl, y[j][i].qs + 64 * h + 4 * g, 4);
                    memcpy(&xh, y[j][i].qs + 64 * h + 32 + 4 * g, 4);
                    slo[j] = QT_GROUP(slo[j], lo, QT_SET1I(xl));
                    shi[j] = QT_GROUP(shi[j], hi, QT_SET1I(xh));
                }
            }
            const QT_VI sl = QT_LOADSC(ai, bi, 2 * h), sh = QT_LOADSC(ai, bi, 2 * h + 1);
            /* vec_dot_q4_K_llamacpp: acc = fma(isum, d_w·d_x, acc) */
#pragma GCC unroll 8
            for (int j = 0; j < nt; j++) {
                const QT_VI isum = QT_ADDI(QT_SCALE(slo[j], sl), QT_SCALE(shi[j], sh));
                acc[j] = QT_FMA(QT_CVT(isum), QT_MUL(dw, QT_SET1F(y[j][i].d)), acc[j]);
            }
        }
        /* and accm = fma(m[2h]·bs[2h] + m[2h+1]·bs[2h+1], dmin_w·d_x, accm), bs the sums of
         * 32 activations (pairs of bsums) */
        const QT_VF dmw = QT_LOADH(ai, bi, dmin);
        const QT_VI mv[4] = {QT_LOADM(ai, bi, 0), QT_LOADM(ai, bi, 1), QT_LOADM(ai, bi, 2),
                             QT_LOADM(ai, bi, 3)};
#pragma GCC unroll 8
        for (int j = 0; j < nt; j++) {
            const int16_t *bs = y[j][i].bsums;
            const QT_VF dm = QT_MUL(dmw, QT_SET1F(y[j][i].d));
#pragma GCC unroll 4
            for (int h = 0; h < 4; h++) {
                const uint32_t lo = (uint16_t)(int16_t)(bs[4 * h] + bs[4 * h + 1]);
                const uint32_t hi = (uint16_t)(int16_t)(bs[4 * h + 2] + bs[4 * h + 3]);
                const QT_VI m = QT_MADD16(mv[h], QT_SET1I((int32_t)(lo | hi << 16)));
                accm[j] = QT_FMA(QT_CVT(m), dm, accm[j]);
            }
        }
    }
#pragma GCC unroll 8
    for (int j = 0; j < nt; j++) {
        float tmp[QT_LANES];
        QT_STOREF(tmp, last ? QT_SUBF(acc[j], accm[j]) : acc[j]);
        memcpy(out[j], tmp, sizeof(float) * (size_t)nr);
        if (!last) QT_STOREF(outm[j], accm[j]);
    }
}

/* QT_TILE with a constant nt. */
QT_ATTR static void QT_NAME(int nt, const es_block_q4_Kx8 *a, const es_block_q4_Kx8 *b, int nb,
                            const es_block_q8_K *const *y, float *const *out, float *const *outm,
                            bool first, bool last, int nr) {
    switch (nt) {
#if QT_T > 4
    case 6: QT_TILE(6, a, b, nb, y, out, outm, first, last, nr); break;
    case 5: QT_TILE(5, a, b, nb, y, out, outm, first, last, nr); break;
    case 4: QT_TILE(4, a, b, nb, y, out, outm, first, last, nr); break;
#endif
    case 3: QT_TILE(3, a, b, nb, y, out, outm, first, last, nr); break;
    case 2: QT_TILE(2, a, b, nb, y, out, outm, first, last, nr); break;
    default: QT_TILE(1, a, b, nb, y, out, outm, first, last, nr); break;
    }
}

#undef QT_TILE
#undef QT_CAT
#undef QT_CAT2
