/*
 * eval_io.h — internal part of the evaluation files; generations.jsonl, results.json,
 * summary.csv and the compare table are public (emosteer.h, "Evaluation: results files").
 */
#ifndef ES_EVAL_IO_H
#define ES_EVAL_IO_H

#include "eval_metrics.h"

#include <stdio.h>

/* A copy of s in which every byte that does not begin a valid UTF-8 sequence (or is
 * part of an overlong, surrogate or > U+10FFFF one) is replaced by U+FFFD. NULL on
 * allocation failure; s == NULL gives "". */
char *es_utf8_sanitize(const char *s);

#endif /* ES_EVAL_IO_H */
