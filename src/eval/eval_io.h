/*
 * eval_io.h — internal part of the evaluation files; generations.jsonl, results.json,
 * summary.csv and the compare table are public (emosteer.h, "Evaluation: results files").
 */
#ifndef ES_EVAL_IO_H
#define ES_EVAL_IO_H

#include "eval_metrics.h"
#include "utf8.h" /* es_utf8_sanitize for the writers */

#include <stdio.h>

/* CSV writers shared by summary.csv and score's summary: a field quoted when it holds a
 * comma, quote or line break (RFC 4180); a number as ",%.6g", or "," when not finite. */
void es_csv_text(FILE *f, const char *s);
void es_csv_num(FILE *f, double v);

#endif /* ES_EVAL_IO_H */
