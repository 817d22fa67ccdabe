/*
 * eval_metrics.h — the numbers `emosteer eval` reports, as pure functions over
 * per-response scores, and the results struct that results.json, summary.csv and
 * report.html are written from.
 *
 * Vocabulary
 *   emotion   a steering target ("joy", "anger", ...): a row of every table.
 *   alpha     the steering strength: the vector added is alpha * EV_l.
 *   cell      one (emotion, alpha): all responses generated when steering toward that
 *             emotion at that alpha (every query, every sample).
 *   label     a class of the emotion scorer. The scorer gives every response one
 *             non-negative score per label ("shares"); labels normally include each
 *             emotion and "neutral" (ES_EVAL_NEUTRAL).
 *
 * Metric definitions (the README quotes these)
 *   Word tokens      the maximal runs of ASCII letters and digits, and of bytes >= 0x80
 *                    (so UTF-8 letters stay inside words), lower-cased (ASCII only).
 *                    "Don't STOP!!" -> don, t, stop.
 *   target prob      p(target) of a response = its score for the label named like the
 *                    cell's emotion (0 if the scorer lacks that label). Cell value: the
 *                    mean over the cell's responses (with sd and 95% CI).
 *   EAS              absolute emotion score of a response = the sum of its scores over
 *                    every label except neutral (its total non-neutral emotion mass;
 *                    for a scorer whose shares sum to 1 this is 1 - p(neutral)).
 *                    Cell value: mean; delta-EAS = cell mean - the mean of the same
 *                    emotion's alpha = 0 cell (NaN if there is no alpha = 0 cell).
 *   topic            topic adherence: mean over responses of a response-to-query
 *                    similarity computed elsewhere (e.g. embedding cosine in [-1, 1]).
 *   perplexity       of each response under the unsteered model (computed elsewhere).
 *                    Cell value: the geometric mean exp(mean(log ppl)).
 *   distinct-2       of a response = distinct word bigrams / word bigrams; undefined
 *                    (NaN, left out of means) with fewer than 2 words. Cell value:
 *                    mean over responses. es_distinct_n_pooled gives the corpus-level
 *                    variant (Li et al. 2016): distinct n-grams of all responses of a
 *                    set / all their n-grams.
 *   rep-4            share of repeated 4-grams of a response = 1 - distinct word
 *                    4-grams / word 4-grams, i.e. the fraction of 4-gram occurrences
 *                    that repeat an earlier one; 0 with fewer than 4 words. Cell: mean.
 *   degenerate       a response is degenerate if rep-4 > 0.3, or it has fewer than 3
 *                    words (empty and punctuation-only responses included). Both
 *                    thresholds are es_fluency_params. Cell value: the share of
 *                    degenerate responses.
 *   linearity        per emotion, the least-squares line through the points
 *                    (alpha, cell mean target prob) for the alphas in
 *                    [lin_alpha_lo, lin_alpha_hi]: slope, intercept and
 *                    R^2 = 1 - SS_res / SS_tot (NaN when SS_tot = 0 or < 2 points).
 *   detected label   argmax of a response's scores over all labels. Ties split the
 *                    response evenly between the tied labels; a response whose scores
 *                    are all 0 (or that is unscored) counts as neutral when the scorer
 *                    has a neutral label, else it is left out.
 *   confusion        per alpha, a matrix [emotion][label]: row = steered-to emotion,
 *                    column = detected label, entry = number of responses (fractional
 *                    with ties). Accuracy = sum of the entries (e, label of e) / sum
 *                    of all entries; a row's diagonal share = its entry at its own
 *                    label / its row sum.
 *   mean, sd, 95% CI over the finite values x_1..x_n (NaN values are left out):
 *                    mean = sum x / n; sd = sqrt(sum (x - mean)^2 / (n - 1)) (sample
 *                    sd, NaN for n < 2); CI = mean -/+ t(0.975, n - 1) * sd / sqrt(n)
 *                    (Student t; NaN for n < 2).
 */
#ifndef ES_EVAL_METRICS_H
#define ES_EVAL_METRICS_H

#include "emosteer.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ES_EVAL_NEUTRAL "neutral"

/* ------------------------------------------------------------------------- */
/* Statistics                                                                */
/* ------------------------------------------------------------------------- */

typedef struct es_stat {
    int n;        /* finite values used */
    double mean;  /* NaN if n == 0 */
    double sd;    /* sample sd (n - 1), NaN if n < 2 */
    double ci_lo; /* 95% CI of the mean (Student t), NaN if n < 2 */
    double ci_hi;
} es_stat;

/* Statistics of x[n], skipping NaN and infinite values. Never fails. */
es_stat es_stat_of(const double *x, size_t n);

/* The 0.975 quantile of Student's t with df degrees of freedom (df >= 1): exact
 * table to 7 digits for df <= 30, a Cornish-Fisher expansion above (error < 1e-5).
 * NaN for df < 1. */
double es_t975(int df);

/* Least-squares line y = intercept + slope * x through the points with x in [lo, hi]
 * and finite x, y. slope/intercept NaN with fewer than 2 distinct x; r2 NaN also when
 * all y are equal. */
typedef struct es_linearity {
    int n_points; /* points used */
    double slope;
    double intercept;
    double r2; /* coefficient of determination 1 - SS_res / SS_tot */
} es_linearity;

es_linearity es_linear_fit(const double *x, const double *y, size_t n, double lo, double hi);

/* ------------------------------------------------------------------------- */
/* Fluency of one response                                                   */
/* ------------------------------------------------------------------------- */

typedef struct es_fluency_params {
    double degenerate_rep4;   /* rep-4 above this is degenerate (default 0.3) */
    int degenerate_min_words; /* fewer words than this is degenerate (default 3) */
} es_fluency_params;

es_fluency_params es_fluency_default_params(void);

typedef struct es_text_fluency {
    int n_words;
    double distinct2; /* NaN with < 2 words */
    double rep4;      /* 0 with < 4 words */
    bool degenerate;
} es_text_fluency;

/* Word tokens as defined above. On success *words is a malloc'ed array of 64-bit
 * hashes (FNV-1a of the lower-cased word), one per word, owned by the caller (free());
 * NULL when *n_words is 0. */
es_status es_word_hashes(const char *text, uint64_t **words, size_t *n_words);

/* distinct-2, rep-4 and degenerate of one NUL-terminated text (NULL counts as "").
 * params may be NULL (defaults). */
es_status es_text_fluency_of(const char *text, const es_fluency_params *params,
                             es_text_fluency *out);

/* Share of distinct word n-grams over the n-grams of one text: NaN if it has no
 * n-gram. order >= 1. */
es_status es_distinct_n(const char *text, int order, double *out);

/* Corpus-level distinct-n over texts[n_texts] (n-grams never span two texts). */
es_status es_distinct_n_pooled(const char *const *texts, size_t n_texts, int order, double *out);

/* ------------------------------------------------------------------------- */
/* Emotion scores of one response                                            */
/* ------------------------------------------------------------------------- */

/* EAS of a response: sum of scores[i] over i != neutral (neutral < 0: no neutral
 * label). NaN if scores is NULL or any counted score is not finite. */
double es_emotion_eas(const double *scores, int n_labels, int neutral);

/* Scores from the lexicon scorer (es_lexicon_score_text, emosteer.h) as a label
 * distribution over es_eval_lexicon_labels = anger, disgust, fear, joy, sadness,
 * neutral (ES_EMO_N_LABELS):
 *   scores[e]       = weight[e] / (W + prior)     W = total emotion-word weight
 *   scores[neutral] = prior / (W + prior)
 * so a response without emotion words is all neutral, EAS = W / (W + prior) grows with
 * the emotion-word weight, and an emotion is detected once its weight exceeds the
 * prior (default ES_EVAL_LEXICON_PRIOR = 1, one plain emotion word). prior <= 0 or NaN
 * means the default. */
#define ES_EVAL_LEXICON_PRIOR 1.0
extern const char *const es_eval_lexicon_labels[ES_EMO_N_LABELS];
void es_scores_from_lexicon(const es_lexicon_score *s, double prior,
                            double scores[ES_EMO_N_LABELS]);

/* Adds the response's detected label to row[n_labels] (fractional ties, see above).
 * scores may be NULL (unscored). Returns false if nothing was added. */
bool es_detect_label_add(const double *scores, int n_labels, int neutral, double *row);

/* ------------------------------------------------------------------------- */
/* Generated responses (one line of generations.jsonl, see eval_io.h)        */
/* ------------------------------------------------------------------------- */

typedef struct es_gen_record {
    char *emotion;  /* steered-to emotion (owned) */
    double alpha;   /* steering strength */
    char *query_id; /* identifier of the query, e.g. "neutral-0042" (owned) */
    int sample;     /* draw index >= 0 for one (emotion, alpha, query) */
    uint64_t seed;  /* sampler seed of this draw */
    char *prompt;   /* the query text (owned, may be "") */
    char *response; /* the generated text (owned, may be "") */
    int n_tokens;   /* generated tokens (-1 = unknown) */
    int n_labels;   /* entries of scores (0 when unscored) */
    double *scores; /* [n_labels] scorer shares in the run's label order, or NULL (owned) */
    double valence; /* e.g. VADER compound in [-1, 1]; NaN = not computed */
    double ppl;     /* perplexity under the unsteered model; NaN = not computed */
    double topic;   /* response-to-query similarity; NaN = not computed */
} es_gen_record;

/* A record with every pointer NULL, counts 0, numbers NaN, n_tokens -1. */
es_gen_record es_gen_record_empty(void);
/* Deep copy of src into *dst (which the caller then owns; free with es_gen_record_clear). */
es_status es_gen_record_copy(es_gen_record *dst, const es_gen_record *src);
/* Frees what the record owns and resets it to es_gen_record_empty(). */
void es_gen_record_clear(es_gen_record *rec);

/* ------------------------------------------------------------------------- */
/* Results of an evaluation                                                  */
/* ------------------------------------------------------------------------- */

/* One (emotion, alpha). */
typedef struct es_eval_cell {
    int n;               /* responses in the cell */
    es_stat target_prob; /* p(target emotion) */
    es_stat eas;         /* absolute emotion score */
    double eas_delta;    /* eas.mean - eas.mean at alpha 0; NaN without alpha 0 */
    es_stat valence;
    es_stat topic;
    es_stat log_ppl; /* natural log of perplexity */
    double ppl;      /* geometric mean perplexity exp(log_ppl.mean) */
    es_stat distinct2;
    es_stat rep4;
    double degenerate_share; /* in [0, 1]; NaN if n == 0 */
    es_stat n_words;
} es_eval_cell;

/* One response shown in the report's sample table. */
typedef struct es_eval_sample {
    int emotion;        /* index into emotions */
    int alpha;          /* index into alphas */
    char *query_id;     /* owned */
    char *prompt;       /* owned */
    char *response;     /* owned */
    double target_prob; /* NaN if unscored */
    int detected;       /* label index of the top score, -1 if unscored or tied */
} es_eval_sample;

/* Free-form settings: key/value strings kept in order (e.g. "temperature" -> "0.7"). */
typedef struct es_eval_kv {
    char *key;   /* owned */
    char *value; /* owned */
} es_eval_kv;

/* The string fields of es_eval_settings, in results.json order: X(field). */
#define ES_EVAL_SETTINGS_STRINGS(X)                                                                \
    X(model_path)                                                                                  \
    X(model_name) X(model_sha256) X(ev_path) X(ev_sha256) X(method) X(hook) X(layers)              \
        X(query_file) X(query_sha256) X(scorer) X(created)

/* What was run. Every string is owned and may be NULL (unknown). */
typedef struct es_eval_settings {
    char *model_path;
    char *model_name;
    char *model_sha256;
    char *ev_path;
    char *ev_sha256;
    char *method; /* how the emotion vectors were made, e.g. "mean-diff" */
    char *hook;   /* "attn_out", "mlp_out", "block_out" */
    char *layers; /* steered layers as text, e.g. "all" or "4-7" */
    char *query_file;
    char *query_sha256;
    char *scorer;  /* e.g. "lexicon" */
    char *created; /* ISO 8601 time */
    uint64_t seed;
    int n_samples; /* draws per (emotion, alpha, query) */
    int max_tokens;
    int n_extra;
    es_eval_kv *extra; /* [n_extra] any other settings */
} es_eval_settings;

/* Everything results.json holds. Built by es_eval_summarize (or read back by
 * es_results_read_json); owned by the caller, freed with es_eval_results_free. */
typedef struct es_eval_results {
    es_eval_settings settings;
    int n_emotions;
    char **emotions; /* [n_emotions] steered-to emotions (rows) */
    int n_alphas;
    double *alphas; /* [n_alphas] ascending */
    int n_labels;
    char **labels;       /* [n_labels] scorer labels (confusion columns) */
    int neutral;         /* index of "neutral" in labels, or -1 */
    int *emotion_label;  /* [n_emotions] label index of each emotion, -1 if absent */
    es_eval_cell *cells; /* [n_emotions][n_alphas] */
    double lin_alpha_lo; /* linearity range */
    double lin_alpha_hi;
    es_linearity *linearity;     /* [n_emotions] target prob mean vs alpha */
    es_linearity *linearity_eas; /* [n_emotions] EAS mean vs alpha */
    double *confusion;           /* [n_alphas][n_emotions][n_labels] response counts */
    double *accuracy;            /* [n_alphas] diagonal share, NaN if the matrix is empty */
    int n_samples;
    es_eval_sample *samples; /* [n_samples] */
    int n_records;           /* records summarised */
    int n_ignored;           /* records whose emotion or alpha was not in the lists */
} es_eval_results;

typedef struct es_summary_params {
    double lin_alpha_lo; /* linearity range (default 0) */
    double lin_alpha_hi; /*                 (default 2) */
    es_fluency_params fluency;
    int samples_per_cell; /* responses per cell in the sample table (default 1) */
} es_summary_params;

es_summary_params es_summary_default_params(void);

/* Aggregates records[n_records] into results.
 * emotions[n_emotions]: the rows; NULL = every record emotion in order of first
 * appearance. alphas[n_alphas]: NULL = every record alpha; sorted ascending either
 * way, duplicates rejected. labels[n_labels]: the scorer labels each record's scores
 * are aligned with; a record with n_labels != this is an ES_ERR_INVALID_ARG naming it.
 * settings may be NULL; it is deep-copied. params may be NULL (defaults).
 * Records outside the emotion/alpha lists are counted in n_ignored.
 * On success *out is owned by the caller. */
es_status es_eval_summarize(const es_gen_record *records, size_t n_records,
                            const char *const *emotions, int n_emotions, const double *alphas,
                            int n_alphas, const char *const *labels, int n_labels,
                            const es_eval_settings *settings, const es_summary_params *params,
                            es_eval_results **out);

void es_eval_results_free(es_eval_results *r);

/* Cell (e, a) of r; no bounds check beyond the caller's. */
static inline es_eval_cell *es_eval_cell_at(const es_eval_results *r, int e, int a) {
    return &r->cells[(size_t)e * (size_t)r->n_alphas + (size_t)a];
}
/* Row e of the confusion matrix at alpha a: double[n_labels]. */
static inline double *es_eval_confusion_row(const es_eval_results *r, int a, int e) {
    return &r->confusion[((size_t)a * (size_t)r->n_emotions + (size_t)e) * (size_t)r->n_labels];
}

/* Deep copy of settings into *dst (owned by the caller; free with es_eval_settings_clear). */
es_status es_eval_settings_copy(es_eval_settings *dst, const es_eval_settings *src);
void es_eval_settings_clear(es_eval_settings *s);
/* Appends key=value to s->extra (both copied). */
es_status es_eval_settings_add(es_eval_settings *s, const char *key, const char *value);

/* Allocates an empty results struct with the given shape: names copied, every cell
 * zeroed with NaN statistics, confusion zero. Used by the summarizer and the reader. */
es_status es_eval_results_alloc(int n_emotions, const char *const *emotions, int n_alphas,
                                const double *alphas, int n_labels, const char *const *labels,
                                es_eval_results **out);

#endif /* ES_EVAL_METRICS_H */
