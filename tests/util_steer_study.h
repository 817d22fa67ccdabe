/*
 * util_steer_study.h — the steering study shared by bench/bench_steer_study.c and
 * tests/test_steer_demo.c: sampled continuations of held-out prompts under one
 * steering set, scored with the lexicon.
 *
 * A cell is one steering set (or none) over every prompt x sample: prompt p, sample s
 * is sequence p * n_samples + s with sampler seed `seed + p * n_samples + s`, the same
 * in every cell, so cells differ only by the steering (common random numbers).
 *
 * Metrics of a cell (the definitions of src/eval/eval_metrics.h):
 *   target share  mean over the responses of the lexicon label probability
 *                 es_scores_from_lexicon (prior 1): weight[e] / (W + 1), W the summed
 *                 weight of all emotion words of the response (0 without any);
 *   rep-4         mean over the responses of es_text_fluency_of's rep-4;
 *   degenerate    share of responses es_text_fluency_of calls degenerate.
 */
#ifndef ES_UTIL_STEER_STUDY_H
#define ES_UTIL_STEER_STUDY_H

#include "emosteer.h"

typedef struct es_study es_study;

typedef struct es_study_params {
    const char *model;   /* GGUF model */
    const char *prompts; /* one prompt a line; blank lines skipped */
    const char *lexicon; /* folder of emotions.tsv and vader_lexicon.txt */
    int max_prompts;     /* 0 = every prompt of the file */
    int n_samples;       /* samples per prompt (default 3) */
    int n_predict;       /* tokens per response (default 40) */
    float temp;          /* default 0.8 */
    uint64_t seed;       /* default 1234 */
    int n_threads;       /* 0 = es_context_default_params */
} es_study_params;

es_study_params es_study_default_params(void);

typedef struct es_study_cell {
    int n;                          /* responses */
    double label[ES_EMO_COUNT + 1]; /* mean label probability: anger..sadness, neutral */
    double rep4;                    /* mean rep-4 */
    double degenerate;              /* share of degenerate responses */
    int n_words;                    /* words in all responses */
    char *example;                  /* response of prompt 0, sample 0 (malloc'ed) */
} es_study_cell;

/* Loads model, prompts and lexicon. *out is owned by the caller (es_study_free). */
es_status es_study_create(const es_study_params *p, es_study **out);
void es_study_free(es_study *st);
int es_study_n_prompts(const es_study *st);
int es_study_n_layer(const es_study *st);
/* The prompt text of index i (borrowed). */
const char *es_study_prompt(const es_study *st, int i);

/* Generates every prompt x sample with `steer` on every sequence (NULL: unsteered)
 * and fills *cell (free its example with free()). */
es_status es_study_run(es_study *st, const es_steer_set *steer, es_study_cell *cell);

/* A steering set adding alpha * the emotion's vector of ev at the layers[n_layers]
 * (NULL: every layer of the emotion), every position. *out owned by the caller. */
es_status es_study_steer(const es_ev_set *ev, const char *emotion, float alpha,
                         const int32_t *layers, int n_layers, es_steer_set **out);

#endif
