/*
 * eval_io.h — internal part of the evaluation files; generations.jsonl, results.json,
 * summary.csv and the compare table are public (emosteer.h, "Evaluation: results files").
 */
#ifndef ES_EVAL_IO_H
#define ES_EVAL_IO_H

#include "eval_metrics.h"
#include "utf8.h" /* es_utf8_sanitize for the writers */

#include <stdio.h>

#endif /* ES_EVAL_IO_H */
