/*
 * judge.h — internal view of the zero-shot emotion judge (src/eval/judge.c), for tests and
 * diagnostics: the exact prompt tokens, the yes/no token sets and the per-wording
 * entailment scores. The public API is in emosteer.h ("Evaluation: judge").
 */
#ifndef ES_JUDGE_H
#define ES_JUDGE_H

#include "emosteer.h"

#include <stdint.h>

#define ES_JUDGE_N_WORDINGS 3

/* The question of (label, wording) as text, e.g. "Does this text express joy?",
 * written into buf[cap] (truncated, always NUL-terminated). */
void es_judge_question(es_emotion label, int wording, char *buf, size_t cap);

/* The prompt tokens of (raw text, label, wording), exactly as es_judge_score decodes
 * them. *toks is malloc'ed (free with free()). */
es_status es_judge_prompt_tokens(const es_judge *j, const char *text, es_emotion label, int wording,
                                 int32_t **toks, int *n_toks);

/* The per-prompt scores: s[n][ES_EMO_N_LABELS][ES_JUDGE_N_WORDINGS] =
 * P(yes) / (P(yes) + P(no)) and mass[same] = P(yes) + P(no) (mass may be NULL). */
es_status es_judge_score_raw(es_judge *j, const char *const *texts, int n, double *s, double *mass);

/* The judge's context (borrowed), e.g. to compare with a manual decode. */
es_context *es_judge_context(const es_judge *j);

#endif /* ES_JUDGE_H */
