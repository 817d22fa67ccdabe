/*
 * cmd_score.c — `emosteer score`: the emotion probabilities of texts made by any tool.
 * Reads --texts (a .jsonl of objects with "text"/"response"/"output", or one text a
 * line), scores them with one label scorer (the lexicon, --judge MODEL, --classifier
 * FILE or --nli FILE), writes
 * one JSON line per text (-o, else stdout) and the mean probabilities per group of the
 * lines' fields (emotion, alpha, model, ...: es_text_set_group_keys, or --group-by) on
 * stderr or into --summary FILE.csv|.json.
 *
 * The scorer is an es_label_scorer_fn with its state (score_backend); another backend
 * is one more case in backend_open and backend_close.
 */
#include "cli.h"
#include "gen_util.h"
#include "opts.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

int cmd_score(int argc, char **argv); /* declared in cli/main.c */
extern const cli_command cli_score_cmd;

#define CMD "score"
#define MAX_GROUP_VALUES 20 /* a field with more distinct values is not a grouping */
#define SCORE_CHUNK 64      /* texts per scorer call (eval judges 64 at a time too) */

typedef struct score_opts {
    cli_runtime_opts rt; /* -t */
    const char *texts, *out, *summary, *group_by, *judge, *lexicon, *classifier, *nli,
        *nli_template;
} score_opts;

#define SO(f) offsetof(score_opts, f)
static const cli_opt score_own[] = {
    {NULL, "--texts", "FILE", CLI_PATH, 0, 0, SO(texts),
     "the texts: FILE.jsonl (objects with \"text\", \"response\" or \"output\";\ne.g. eval's "
     "generations.jsonl) or "
     "one text a line",
     NULL, NULL, 0, 0},
    {"-o", "--output", "FILE", CLI_PATH, 0, 0, SO(out), "the scored lines (default: stdout)", NULL,
     NULL, 0, 0},
    {NULL, "--summary", "FILE", CLI_PATH, 0, 0, SO(summary),
     "the per-group means into FILE.csv or FILE.json (default: a table on stderr)", NULL, NULL, 0,
     0},
    {NULL, "--group-by", "LIST", CLI_STR, 0, 0, SO(group_by),
     "fields to group by, e.g. model,alpha,emotion (default: every string or\nnumber field with at "
     "most 20 values; '' "
     "= one group)",
     NULL, NULL, 0, 0},
    {NULL, "--judge", "MODEL", CLI_PATH, 0, 0, SO(judge),
     "score with a zero-shot judge (any GGUF chat model) instead of the lexicon", NULL, NULL, 0, 0},
    {NULL, "--classifier", "FILE", CLI_PATH, 0, 0, SO(classifier),
     "score with an emotion classifier (encoder GGUF); its labels outside the\nsix go to "
     "\"extra_scores\"",
     NULL, NULL, 0, 0},
    {NULL, "--nli", "FILE", CLI_PATH, 0, 0, SO(nli),
     "score with a zero-shot NLI model (encoder GGUF with an entailment label)", NULL, NULL, 0, 0},
    {NULL, "--nli-template", "TEXT", CLI_STR, 0, 0, SO(nli_template),
     "--nli's hypothesis, {} = the label (default 'This text expresses {}.')", NULL, NULL, 0, 0},
    {NULL, "--lexicon", "DIR", CLI_PATH, 0, 0, SO(lexicon),
     "lexicon folder (default: the project's, data/lexicon)", NULL, NULL, 0, 0},
};
static const cli_opt_group score_group = {"options", score_own,
                                          sizeof score_own / sizeof score_own[0]};

static const cli_group_use score_groups[] = {
    {&score_group, 0, 0},
    {&cli_runtime_group, SO(rt), CLI_RT_ALL & ~CLI_RT_THREADS},
};

static void score_init(void *p) {
    cli_runtime_init(&((score_opts *)p)->rt);
}

const cli_command cli_score_cmd = {
    "score",
    "--texts FILE.jsonl|FILE.txt [--judge MODEL|--classifier F|--nli F] [-o OUT.jsonl] [--summary "
    "S.csv|S.json]",
    "Scores texts made by any tool with eval's emotion scorers: one JSON line per text with\n"
    "the probability of every label (anger, disgust, fear, joy, sadness, neutral), then the\n"
    "mean per group of the lines' fields (e.g. model, alpha, emotion).",
    "The lexicon's probabilities are eval's: `score --texts DIR/generations.jsonl` gives\n"
    "each response the scores eval wrote for it. A JSONL line is written back as it was,\n"
    "its \"scores\" replaced and \"scorer\" added; a text line as {\"line\", \"text\",\n"
    "\"scores\", \"scorer\"}; --classifier adds \"extra_scores\" (its labels outside the six,\n"
    "e.g. surprise) and --nli \"extra_scores\" entail:<label>. Groups with an \"emotion\" field "
    "also show the target\n"
    "prob (the mean probability of that emotion's label). See docs/evaluation.md.\n\n"
    "example: emosteer score --texts eval-demo/generations.jsonl -o scored.jsonl --summary "
    "by-cell.csv",
    sizeof(score_opts),
    score_init,
    score_groups,
    sizeof score_groups / sizeof score_groups[0],
    0,
};

/* ---- the scorer -------------------------------------------------------------------- */

/* One label scorer and what it owns. */
typedef struct score_backend {
    char name[PATH_MAX + 32]; /* "lexicon", "judge (qwen.gguf)": the "scorer" of each line */
    es_label_scorer_fn fn;
    void *user;
    es_lexicon *lex;
    es_model *judge_model;
    es_judge *judge;
    es_cls_scorer *cls; /* --classifier / --nli */
} score_backend;

static const char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* Opens the scorer the options choose. Returns an exit code. */
static int backend_open(const score_opts *o, score_backend *b) {
    if (o->judge) {
        int rc = cli_judge_open(o->judge, o->rt.n_threads, &b->judge_model, &b->judge);
        if (rc != ES_EXIT_OK) return rc;
        snprintf(b->name, sizeof b->name, "judge (%s)", base_name(o->judge));
        b->fn = es_judge_label_probs;
        b->user = b->judge;
        return ES_EXIT_OK;
    }
    if (o->classifier || o->nli) {
        const bool nli = o->nli != NULL;
        const char *path = nli ? o->nli : o->classifier;
        int rc = cli_cls_scorer_open(path, nli, o->nli_template, o->rt.n_threads, &b->cls);
        if (rc != ES_EXIT_OK) return rc;
        snprintf(b->name, sizeof b->name, "%s (%s)", nli ? "nli" : "classifier", base_name(path));
        b->fn = es_cls_label_probs;
        b->user = b->cls;
        return ES_EXIT_OK;
    }
    char dir[PATH_MAX];
    const char *lexicon = o->lexicon ? o->lexicon : cli_data_path("lexicon", dir, sizeof dir);
    if (es_lexicon_load(lexicon, &b->lex) != ES_OK)
        return cli_fail("loading the lexicon (--lexicon DIR)");
    snprintf(b->name, sizeof b->name, "lexicon (prior %g)", ES_EVAL_LEXICON_PRIOR);
    b->fn = es_lexicon_label_probs;
    b->user = b->lex;
    return ES_EXIT_OK;
}

static void backend_close(score_backend *b) {
    es_cls_scorer_free(b->cls);
    es_judge_free(b->judge);
    es_model_free(b->judge_model);
    es_lexicon_free(b->lex);
}

/* ---- grouping keys ----------------------------------------------------------------- */

/* --group-by "a,b" into keys (malloc'ed copies); "" = none. Returns -1 or an exit code. */
static int parse_group_by(const char *spec, char ***keys, int *n) {
    *keys = NULL;
    *n = 0;
    if (!*spec) return -1;
    int cap = 1;
    for (const char *p = spec; *p; p++)
        cap += *p == ',';
    if (!(*keys = calloc((size_t)cap, sizeof **keys))) return cli_fail("--group-by");
    for (const char *p = spec;;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == 0) return cli_usage_error(CMD, "--group-by: empty entry in '%s'", spec);
        if (!((*keys)[(*n)++] = strndup(p, len))) return cli_fail("--group-by");
        if (!e) break;
        p = e + 1;
    }
    return -1;
}

static void print_summary(const es_score_summary *s, const char *scorer) {
    int w[64] = {0};
    for (int k = 0; k < s->n_keys && k < 64; k++) {
        w[k] = (int)strlen(s->keys[k]);
        for (int g = 0; g < s->n_groups; g++)
            w[k] = ES_MAX(w[k], (int)strlen(s->groups[g].values[k]));
    }
    for (int k = 0; k < s->n_keys && k < 64; k++)
        fprintf(stderr, "%-*s  ", w[k], s->keys[k]);
    fprintf(stderr, "%6s", "n");
    for (int l = 0; l < ES_EMO_N_LABELS; l++)
        fprintf(stderr, "  %7s", es_emotion_name((es_emotion)l));
    fprintf(stderr, "  %7s%s\n", "eas", s->emotion_key >= 0 ? "   target" : "");
    for (int g = 0; g < s->n_groups; g++) {
        const es_score_group *x = &s->groups[g];
        for (int k = 0; k < s->n_keys && k < 64; k++)
            fprintf(stderr, "%-*s  ", w[k], *x->values[k] ? x->values[k] : "-");
        fprintf(stderr, "%6d", x->n);
        for (int l = 0; l < ES_EMO_N_LABELS; l++)
            fprintf(stderr, "  %7.4f", x->mean[l]);
        fprintf(stderr, "  %7.4f", x->eas);
        if (s->emotion_key >= 0 && isfinite(x->target))
            fprintf(stderr, "  %7.4f", x->target);
        else if (s->emotion_key >= 0)
            fprintf(stderr, "  %7s", "-");
        fputc('\n', stderr);
    }
    fprintf(stderr, "(mean probabilities by %s)\n", scorer);
}

static bool ends_with(const char *s, const char *tail) {
    size_t a = strlen(s), b = strlen(tail);
    return a >= b && !strcmp(s + a - b, tail);
}

/* Writes the summary into path (.csv or .json). Returns an exit code. */
static int write_summary(const es_score_summary *s, const char *path) {
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "emosteer score: cannot create %s: %s\n", path, strerror(errno));
        return ES_EXIT_FAIL;
    }
    es_status st = ends_with(path, ".json") ? es_score_summary_write_json(s, f)
                                            : es_score_summary_write_csv(s, f);
    if (fclose(f) != 0 && st == ES_OK) st = es_error(ES_ERR_IO, "cannot write %s", path);
    return st == ES_OK ? ES_EXIT_OK : cli_fail("writing the summary");
}

/* ---- main ----------------------------------------------------------------------------- */

int cmd_score(int argc, char **argv) {
    score_opts o;
    int rc = cli_opts_parse(&cli_score_cmd, &o, argc, argv, NULL);
    if (rc >= 0) return rc;
    if (!o.texts)
        return cli_usage_error(CMD, "no texts: give them with --texts FILE.jsonl or FILE.txt");
    if (o.summary && !ends_with(o.summary, ".csv") && !ends_with(o.summary, ".json"))
        return cli_usage_error(CMD, "--summary %s: the name must end in .csv or .json", o.summary);
    if ((o.judge != NULL) + (o.classifier != NULL) + (o.nli != NULL) + (o.lexicon != NULL) > 1)
        return cli_usage_error(CMD,
                               "--judge, --classifier, --nli and --lexicon exclude each other");
    if (o.nli_template && !o.nli) return cli_usage_error(CMD, "--nli-template needs --nli");
    char **keys = NULL;
    int n_keys = 0;
    es_text_set *t = NULL;
    es_score_summary *sum = NULL;
    score_backend b = {0};
    double *probs = NULL, *extra = NULL;
    const char **extra_names = NULL; /* [n_extra] borrowed from the scorer */
    FILE *out = NULL;
    if (o.group_by && (rc = parse_group_by(o.group_by, &keys, &n_keys)) >= 0) goto done;
    rc = ES_EXIT_FAIL;
    if (es_text_set_load(o.texts, &t) != ES_OK) {
        cli_fail("reading the texts");
        goto done;
    }
    if (!o.group_by && es_text_set_group_keys(t, MAX_GROUP_VALUES, &keys, &n_keys) != ES_OK) {
        cli_fail("grouping");
        goto done;
    }
    if (backend_open(&o, &b) != ES_EXIT_OK) goto done;
    int n = es_text_set_n(t);
    const char *const *texts = es_text_set_texts(t);
    const int n_extra = es_cls_scorer_n_extra(b.cls);
    if (!(probs = malloc((size_t)n * ES_EMO_N_LABELS * sizeof *probs)) ||
        (n_extra > 0 && (!(extra = malloc((size_t)n * n_extra * sizeof *extra)) ||
                         !(extra_names = malloc((size_t)n_extra * sizeof *extra_names))))) {
        fprintf(stderr, "emosteer: out of memory for %d texts\n", n);
        goto done;
    }
    for (int k = 0; k < n_extra; k++)
        extra_names[k] = es_cls_scorer_extra_label(b.cls, k);
    fprintf(stderr, "score: %d texts of %s%s%s%s by %s\n", n, o.texts,
            es_text_set_text_key(t) ? " (field \"" : "",
            es_text_set_text_key(t) ? es_text_set_text_key(t) : "",
            es_text_set_text_key(t) ? "\")" : "", b.name);
    for (int a = 0; a < n; a += SCORE_CHUNK) {
        int m = ES_MIN(SCORE_CHUNK, n - a);
        double *p = probs + (size_t)a * ES_EMO_N_LABELS;
        if ((b.cls ? es_cls_scorer_score(b.cls, texts + a, m, p,
                                         extra ? extra + (size_t)a * n_extra : NULL)
                   : b.fn(b.user, texts + a, m, p)) != ES_OK) {
            cli_fail("scoring");
            goto done;
        }
    }
    if (!(out = o.out ? fopen(o.out, "w") : stdout)) {
        fprintf(stderr, "emosteer score: cannot create %s: %s\n", o.out, strerror(errno));
        goto done;
    }
    es_status st = es_text_set_write_scores_ex(t, probs, b.name, extra_names, n_extra, extra, out);
    if (o.out && fclose(out) != 0 && st == ES_OK)
        st = es_error(ES_ERR_IO, "cannot write %s", o.out);
    out = NULL;
    if (st != ES_OK) {
        cli_fail("writing the scores");
        goto done;
    }
    if (es_score_summarize(t, probs, (const char *const *)keys, n_keys, &sum) != ES_OK) {
        cli_fail("summarising");
        goto done;
    }
    if (o.summary) {
        if (write_summary(sum, o.summary) != ES_EXIT_OK) goto done;
        fprintf(stderr, "score: wrote %s (%d groups)\n", o.summary, sum->n_groups);
    } else {
        print_summary(sum, b.name);
    }
    rc = ES_EXIT_OK;
done:
    if (out && out != stdout) fclose(out);
    for (int k = 0; k < n_keys; k++)
        free(keys[k]);
    free(keys);
    free(probs);
    free(extra);
    free(extra_names);
    es_score_summary_free(sum);
    backend_close(&b);
    es_text_set_free(t);
    return rc;
}
