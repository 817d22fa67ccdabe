/*
 * eval_metrics.h — internal part of the evaluation metrics; the metric definitions,
 * the records and the results struct are public (emosteer.h, "Evaluation: metrics").
 */
#ifndef ES_EVAL_METRICS_H
#define ES_EVAL_METRICS_H

#include "emosteer.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Allocates an empty results struct with the given shape: names copied, every cell
 * zeroed with NaN statistics, confusion zero. Used by the summarizer and the reader. */
es_status es_eval_results_alloc(int n_emotions, const char *const *emotions, int n_alphas,
                                const double *alphas, int n_labels, const char *const *labels,
                                es_eval_results **out);

#endif /* ES_EVAL_METRICS_H */
