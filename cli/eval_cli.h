/*
 * eval_cli.h — what the parts of `emosteer eval` share: cli/cmd_eval.c (options,
 * inputs, outputs, --compare) and cli/eval_run.c (generation and scoring).
 */
#ifndef ES_CLI_EVAL_H
#define ES_CLI_EVAL_H

#include "cli.h"
#include "opts.h"
#include "steer_opts.h"

#define EVAL_CMD "eval"
#define EVAL_N_LEX ES_EMO_N_LABELS /* lexicon labels: anger .. sadness, neutral */

/* Folders named on the command line. */
typedef struct eval_dirs {
    char *const *v; /* [n] borrowed from argv */
    int n;
} eval_dirs;

typedef struct eval_opts {
    cli_runtime_opts rt;  /* -m, -t, --kv-type, --numerics, --batch */
    cli_steer_opts steer; /* --ev, --hook, --layers, --positions, --preserve-norm */
    cli_chat_opts chat;   /* --chat-template */
    const char *queries, *prompts, *out, *judge, *lexicon;
    const char *classifier, *nli, *nli_template; /* --classifier, --nli: the main scores */
    const char *emotions_spec;                   /* NULL: every emotion of --ev except "base" */
    const char *alphas_spec;
    const char *compare[2]; /* --compare A B */
    bool resume;
    int shard_k, shard_n; /* --shard K/N (1 <= K <= N); 0/0 without */
    eval_dirs merge;      /* --merge DIR... */
    long n_queries, samples, n_predict;
    es_sampler_params sp;
} eval_opts;

/* Which queries each emotion is asked (chosen by the query file's shape). */
typedef enum eval_protocol {
    EVAL_PROTO_NEUTRAL,      /* the set's "neutral" list, for every emotion (emosteer's set) */
    EVAL_PROTO_EMOTIONQUERY, /* each emotion its own list, steered toward it (EmotionQuery) */
    EVAL_PROTO_SHARED,       /* one unlabelled list, for every emotion (EmotionQuery+) */
    EVAL_PROTO_PROMPTS,      /* --prompts: the prompt file, for every emotion */
} eval_protocol;

/* "neutral", "emotionquery", "emotionquery+", "prompts"; *what gets a sentence for the
 * settings. */
const char *eval_protocol_name(eval_protocol p, const char **what);

/* One evaluation prompt. */
typedef struct eval_query {
    char *id;        /* "neutral-0042", "prompt-0007" (owned) */
    char *text;      /* the query or prompt text (owned) */
    int index;       /* position in its list: seeds are consecutive in it */
    int32_t *prompt; /* [n_prompt] the tokens generation starts from (owned) */
    int n_prompt;
} eval_query;

/* One response to generate: (emotion, alpha, query, sample). */
typedef struct eval_item {
    int e, a, q, s;
    uint64_t seed;
} eval_item;

typedef struct eval_job {
    const eval_opts *o;
    es_model *model;
    const es_vocab *vocab;
    es_model_info mi;
    es_chat_format fmt;
    es_ev_set *ev;
    int n_emotions;
    char **emotions; /* [n_emotions] (owned) */
    int n_alphas;
    double *alphas;       /* [n_alphas] ascending */
    es_steer_set **steer; /* [n_emotions][n_alphas]; NULL where alpha == 0 */
    eval_protocol protocol;
    int n_queries;
    eval_query *queries; /* [n_queries] every query of the run, list by list */
    int *q_lo, *q_hi;    /* [n_emotions] emotion e is asked queries[q_lo[e] .. q_hi[e]) */
    int n_per_emotion;   /* queries asked per emotion (the most of any emotion) */
    es_lexicon *lex;
    es_model *judge_model; /* NULL without --judge */
    es_judge *judge;
    es_cls_scorer *cls; /* --classifier / --nli (NULL without) */
    int n_extra;        /* the classifier's extra labels (es_cls_scorer_n_extra) */
    int n_labels;       /* generations.jsonl labels: the lexicon's 6 (+ the judge's or
                           classifier's 6, + the classifier's n_extra) */
    const char *const *labels;
    char **own_labels; /* [n_labels] with a classifier: "classifier:anger", ... (owned) */
    es_genlog *log;
    int n_items;
    eval_item *items;     /* [n_items] the whole grid, emotion-major */
    int item_lo, item_hi; /* the items this run makes: all, or --shard's range */
    char *topic_desc;     /* how topic adherence is measured (owned) */
} eval_job;

/* Label names of generations.jsonl: anger..neutral, then judge:anger..judge:neutral. */
extern const char *const eval_all_labels[2 * EVAL_N_LEX];

/* The model scorer whose scores are the main ones: "judge", "classifier", "nli", or NULL
 * (the lexicon's). */
const char *eval_model_scorer(const eval_opts *o);
/* Its file (NULL without). */
const char *eval_model_scorer_path(const eval_opts *o);

/* The items [*lo, *hi) of shard k (1-based) of n: the grid cut into the batches of
 * `batch` items a whole run makes (item i in batch i / batch), and shard k given the
 * batches [(k-1) * n_batches / n, k * n_batches / n), so each shard decodes exactly the
 * batches the whole run would, and the shards in order are the whole grid in order. */
void eval_shard_range(int n_items, int batch, int k, int n, int *lo, int *hi);

/* Generates and scores every item of the grid not yet in the log, appending each
 * record as it is finished. Prints progress on stderr. Returns an exit code. */
int eval_run(eval_job *j); /* the items [item_lo, item_hi); with --merge, any missing is an error */

/* Judge scores of n texts into probs[n][EVAL_N_LEX] in batches. Returns an exit code. */
int eval_judge_texts(eval_job *j, const char *const *texts, int n, double *probs);

/* Topic adherence by the judge (eval_topic.c): out[i] = P(yes) / (P(yes) + P(no)) of "is
 * texts[i] on the topic of query query[i]?". ctx: a context on the judge model with
 * o->batch sequences (cleared and reused). Returns an exit code. */
int eval_judge_topic(eval_job *j, es_context *ctx, const char *const *texts, const int *query,
                     int n, double *out);

#endif
