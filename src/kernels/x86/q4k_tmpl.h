/*
 * q4k_tmpl.h — the tile of matmul_q4k_avx2.c, written once for three instruction sets.
 * Included by matmul_q4k_avx2.c after it defines:
 *   QT_VI, QT_VF         int32 and float vector types; QT_LANES their lanes (rows of a tile)
 *   QT_T                 tokens of a tile (at most)
 *   QT_LOADI(p), QT_LOADF(p), QT_STOREF(p, v), QT_SET1I(i), QT_SET1F(f), QT_ZEROI(),
 *   QT_ZEROF(), QT_ADDI(a, b), QT_MADD16(a, b) (pmaddwd), QT_CVT(v), QT_MUL(a, b),
 *   QT_FMA(a, b, c) (a·b + c, one rounding), QT_SUBF(a, b)
 *   QT_GROUP(s, w, x)    s += the 4-byte dot products of unsigned w and signed x per lane, in
 *                        whatever integer form QT_SCALE takes
 *   QT_SCALE(s, sc)      int32 lanes sc·(sum of s's lane), sc the int32 sub-block scales
 *   QT_ATTR, QT_NAME     function attributes (target) and the name of the function to define
 * The function: QT_NAME(nt, p, nb, rofs, y, out, outm, first, last, nr) computes rows
 * [rofs, rofs + QT_LANES) of panel chunk p (nb blocks) against nt <= QT_T tokens, the chunk's
 * blocks of token j at y[j]: the chains of vec_dot_q4_K_llamacpp per output, continued from
 * out[j] (acc) and outm[j] (accm) unless first, and out[j] = acc − accm if last (else acc);
 * nr: rows of out[j] to store (< QT_LANES at the end of the matrix).
 */

#define QT_CAT2(a, b) a##b
#define QT_CAT(a, b) QT_CAT2(a, b)
#define QT_TILE QT_CAT(QT_NAME, _tile)

QT_ATTR static inline __attribute__((always_inline)) void
QT_TILE(int nt, const q4k_chunk *p, int nb, int rofs, const es_block_q8_K *const *y,
        float *const *out, float *const *outm, bool first, bool last, int nr) {
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
    for (int b = 0; b < nb; b++) {
        const QT_VF dw = QT_LOADF(p->d[b] + rofs), dmw = QT_LOADF(p->dm[b] + rofs);
#pragma GCC unroll 4
        for (int h = 0; h < 4; h++) { /* 64 elements: sub-blocks 2h and 2h + 1 */
            QT_VI pair[QT_T];
#pragma GCC unroll 2
            for (int u = 0; u < 2; u++) {
                const int k = 2 * h + u;
                QT_VI s[QT_T];
#pragma GCC unroll 8
                for (int j = 0; j < nt; j++)
                    s[j] = QT_ZEROI();
                const uint8_t *qk = p->q[b][k][0][rofs];
#pragma GCC unroll 8
                for (int g = 0; g < 8; g++) {
                    const QT_VI w = QT_LOADI(qk + (size_t)g * Q4K_R * 4);
#pragma GCC unroll 8
                    for (int j = 0; j < nt; j++) {
                        int32_t xv;
                        memcpy(&xv, y[j][b].qs + 32 * k + 4 * g, 4);
                        s[j] = QT_GROUP(s[j], w, QT_SET1I(xv));
                    }
                }
                const QT_VI sc = QT_LOADI(p->sc[b][k] + rofs);
#pragma GCC unroll 8
                for (int j = 0; j < nt; j++) {
                    const QT_VI v = QT_SCALE(s[j], sc);
                    pair[j] = u ? QT_ADDI(pair[j], v) : v;
                }
            }
            /* vec_dot_q4_K_llamacpp: acc = fma(isum, d_w·d_x, acc) */
#pragma GCC unroll 8
            for (int j = 0; j < nt; j++)
                acc[j] = QT_FMA(QT_CVT(pair[j]), QT_MUL(dw, QT_SET1F(y[j][b].d)), acc[j]);
        }
        /* and accm = fma(m[2h]·bs[2h] + m[2h+1]·bs[2h+1], dmin_w·d_x, accm), bs the sums of
         * 32 activations (pairs of bsums) */
        const QT_VI m0 = QT_LOADI(p->mp[b][0] + rofs), m1 = QT_LOADI(p->mp[b][1] + rofs);
        const QT_VI m2 = QT_LOADI(p->mp[b][2] + rofs), m3 = QT_LOADI(p->mp[b][3] + rofs);
#pragma GCC unroll 8
        for (int j = 0; j < nt; j++) {
            const int16_t *bs = y[j][b].bsums;
            const QT_VF dm = QT_MUL(dmw, QT_SET1F(y[j][b].d));
            const QT_VI mv[4] = {m0, m1, m2, m3};
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
QT_ATTR static void QT_NAME(int nt, const q4k_chunk *p, int nb, int rofs,
                            const es_block_q8_K *const *y, float *const *out, float *const *outm,
                            bool first, bool last, int nr) {
    switch (nt) {
#if QT_T > 4
    case 8: QT_TILE(8, p, nb, rofs, y, out, outm, first, last, nr); break;
    case 7: QT_TILE(7, p, nb, rofs, y, out, outm, first, last, nr); break;
    case 6: QT_TILE(6, p, nb, rofs, y, out, outm, first, last, nr); break;
    case 5: QT_TILE(5, p, nb, rofs, y, out, outm, first, last, nr); break;
#endif
    case 4: QT_TILE(4, p, nb, rofs, y, out, outm, first, last, nr); break;
    case 3: QT_TILE(3, p, nb, rofs, y, out, outm, first, last, nr); break;
    case 2: QT_TILE(2, p, nb, rofs, y, out, outm, first, last, nr); break;
    default: QT_TILE(1, p, nb, rofs, y, out, outm, first, last, nr); break;
    }
}

#undef QT_TILE
#undef QT_CAT
#undef QT_CAT2
