/*
 * util_evalsynth.h — a deterministic synthetic evaluation run for the tests of the
 * report, results.json and compare: 5 emotions (joy anger disgust fear sadness) x
 * alphas {-1, 0, 1, 2, 4} x n_queries queries, scored over the labels of the 5
 * emotions + neutral. The target-emotion share grows about linearly with alpha
 * (slope `slope`, plus noise) up to 2, and the responses at alpha 4 repeat
 * themselves (degenerate). One response holds "<script>alert(1)</script>", "&", quotes
 * and an invalid UTF-8 byte, to test escaping.
 */
#ifndef ES_UTIL_EVALSYNTH_H
#define ES_UTIL_EVALSYNTH_H

#include "eval_metrics.h"

#define ES_SYNTH_N_LABELS 6

extern const char *const es_synth_emotions[5];
extern const char *const es_synth_labels[ES_SYNTH_N_LABELS];
extern const double es_synth_alphas[5];

/* Records of the run (malloc'ed; free with es_synth_records_free). */
es_gen_record *es_synth_records(int n_queries, double slope, uint64_t seed, size_t *n_records);
void es_synth_records_free(es_gen_record *recs, size_t n);

/* The summarised run with settings filled in (model_name = `model`); NULL on failure. */
es_eval_results *es_synth_results(int n_queries, double slope, uint64_t seed, const char *model);

#endif
