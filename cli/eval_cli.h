/*
 * eval_cli.h — what the parts of `emosteer eval` share: cli/cmd_eval.c (options,
 * inputs, outputs, --compare) and cli/eval_run.c (generation and scoring).
 */
#ifndef ES_CLI_EVAL_H
#define ES_CLI_EVAL_H

#include "cli.h"

#define EV_CMD "eval"
#define EV_N_LEX ES_EMO_N_LABELS /* lexicon labels: anger .. sadness, neutral */

typedef struct ev_opts {
    const char *model, *ev_path, *queries, *prompts, *out, *judge, *lexicon, *tmpl_name;
    const char *emotions_spec; /* NULL: every emotion of --ev except "base" */
    const char *alphas_spec;
    const char *layers_spec; /* NULL: the layers stored in --ev */
    int hook;                /* es_hook_point, -1: the vectors' own */
    es_steer_positions positions;
    bool preserve_norm, resume;
    long n_queries, samples, n_predict, batch, n_threads;
    es_sampler_params sp;
} ev_opts;

/* One evaluation prompt. */
typedef struct ev_query {
    char *id;        /* "neutral-0042", "prompt-0007" (owned) */
    char *text;      /* the query or prompt text (owned) */
    int index;       /* position in its list: seeds are consecutive in it */
    int32_t *prompt; /* [n_prompt] the tokens generation starts from (owned) */
    int n_prompt;
} ev_query;

/* One response to generate: (emotion, alpha, query, sample). */
typedef struct ev_item {
    int e, a, q, s;
    uint64_t seed;
} ev_item;

typedef struct ev_job {
    const ev_opts *o;
    es_model *model;
    const es_vocab *vocab;
    es_model_info mi;
    es_chat_format fmt;
    es_ev_set *ev;
    int n_emotions;
    char **emotions; /* [n_emotions] (owned) */
    int n_alphas;
    double *alphas;         /* [n_alphas] ascending */
    es_steer_set **steer;   /* [n_emotions][n_alphas]; NULL where alpha == 0 */
    int n_queries;
    ev_query *queries;      /* [n_queries] */
    es_lexicon *lex;
    es_model *judge_model;  /* NULL without --judge */
    es_judge *judge;
    int n_labels;           /* generations.jsonl labels: the lexicon's 6 (+ the judge's 6) */
    const char *const *labels;
    es_genlog *log;
    int n_items;
    ev_item *items;         /* [n_items] the whole grid, emotion-major */
    char *topic_desc;       /* how topic adherence is measured (owned) */
} ev_job;

/* Label names of generations.jsonl: anger..neutral, then judge:anger..judge:neutral. */
extern const char *const ev_all_labels[2 * EV_N_LEX];

/* Generates and scores every item of the grid not yet in the log, appending each
 * record as it is finished. Prints progress on stderr. Returns an exit code. */
int ev_run(ev_job *j);

/* Judge scores of n texts into probs[n][EV_N_LEX] in batches. Returns an exit code. */
int ev_judge_texts(ev_job *j, const char *const *texts, int n, double *probs);

/* Topic adherence by the judge (eval_topic.c): out[i] = P(yes) / (P(yes) + P(no)) of "is
 * texts[i] on the topic of query query[i]?". ctx: a context on the judge model with
 * o->batch sequences (cleared and reused). Returns an exit code. */
int ev_judge_topic(ev_job *j, es_context *ctx, const char *const *texts, const int *query, int n, double *out);

#endif
