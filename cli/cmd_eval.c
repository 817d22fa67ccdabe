/*
 * cmd_eval.c — `emosteer eval`: how well steering works. For every (emotion, alpha,
 * query, sample) the model answers a neutral query while alpha * the emotion's vector
 * is added (eval_run.c); each response is scored (emotion lexicon always, a zero-shot
 * judge with --judge; perplexity under the unsteered model; topic adherence; distinct-2,
 * rep-4, degenerate share) and the records are summarised (eval_metrics.h) into
 * results.json, summary.csv and report.html. `eval --compare A B` compares two runs.
 *
 * Layout: eval_parse (options, from the tables) -> eval_prepare (every input is read and checked
 * before anything is written) -> open DIR (settings check on --resume) -> eval_run -> eval_finish
 * (summaries and files, each written to a temporary name and renamed).
 */
#include "eval_cli.h"
#include "gen_util.h"
#include "steer_opts.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int cmd_eval(int argc, char **argv); /* declared in cli.h */

#define CMD EVAL_CMD
#define DEFAULT_ALPHAS "-1,0,1,2,4"
#define MAX_LIST 256

/* ---- paths ---------------------------------------------------------------------------- */

static char default_queries_buf[PATH_MAX], default_lexicon_buf[PATH_MAX];
static const char *default_queries(void) {
    return cli_data_path("queries/emosteer-queries.json", default_queries_buf,
                         sizeof default_queries_buf);
}
static const char *default_lexicon(void) {
    return cli_data_path("lexicon", default_lexicon_buf, sizeof default_lexicon_buf);
}

static const char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* ---- options ---------------------------------------------------------------------------- */

static int compare_fn(const cli_opt *o, const char *flag, void *dest, char *const *vals, int n,
                      char *err, size_t cap) {
    (void)o;
    const char **cmp = dest;
    if (n < 2) {
        snprintf(err, cap, "%s wants two results.json files", flag);
        return -1;
    }
    cmp[0] = vals[0];
    cmp[1] = vals[1];
    return 2;
}

/* --shard K/N: 1 <= K <= N <= 100000. */
static int shard_fn(const cli_opt *o, const char *flag, void *dest, char *const *vals, int n,
                    char *err, size_t cap) {
    (void)o;
    int *kn = dest; /* shard_k, shard_n */
    long k, m;
    char *slash = n ? strchr(vals[0], '/') : NULL;
    char a[32], b[32];
    if (slash && (size_t)(slash - vals[0]) < sizeof a && strlen(slash + 1) < sizeof b) {
        snprintf(a, sizeof a, "%.*s", (int)(slash - vals[0]), vals[0]);
        snprintf(b, sizeof b, "%s", slash + 1);
    }
    if (!slash || (size_t)(slash - vals[0]) >= sizeof a || strlen(slash + 1) >= sizeof b ||
        !cli_parse_int(b, 1, 100000, &m) || !cli_parse_int(a, 1, m, &k)) {
        snprintf(err, cap, "%s wants K/N with 1 <= K <= N <= 100000 (e.g. 2/8), got '%s'", flag,
                 n ? vals[0] : "");
        return -1;
    }
    kn[0] = (int)k;
    kn[1] = (int)m;
    return 1;
}

/* --merge DIR...: every word up to the next option. */
static int merge_fn(const cli_opt *o, const char *flag, void *dest, char *const *vals, int n,
                    char *err, size_t cap) {
    (void)o;
    int used = 0;
    while (used < n && vals[used][0] != '-')
        used++;
    if (used == 0) {
        snprintf(err, cap, "%s wants the shard folders (--merge DIR1 DIR2 ...)", flag);
        return -1;
    }
    eval_dirs *m = dest;
    m->v = vals;
    m->n = used;
    return used;
}

#define EO(f) offsetof(eval_opts, f)
static const cli_opt eval_own[] = {
    {"-o", "--output", "DIR", CLI_PATH, 0, 0, EO(out), "output folder (created if needed)", NULL,
     NULL, 0, 0},
    {NULL, "--emotions", "LIST", CLI_STR, 0, 0, EO(emotions_spec),
     "emotions of --ev to steer toward (default: all but \"base\")", NULL, NULL, 0, 0},
    {NULL, "--alphas", "LIST", CLI_STR, 0, 0, EO(alphas_spec), "steering strengths; 0 = unsteered",
     NULL, NULL, CLI_SHOW_DEFAULT, 0},
    {NULL, "--queries", "FILE", CLI_PATH, 0, 0, EO(queries),
     "query set; its shape picks the protocol: a \"neutral\" list is asked\nfor every emotion (the "
     "project's set, "
     "the default:\ndata/queries/emosteer-queries.json); EmotionQuery (emotion ->\nqueries): each "
     "emotion its own "
     "queries; EmotionQuery+ (a list):\nevery emotion on all of them",
     NULL, NULL, 0, 0},
    {NULL, "--prompts", "FILE", CLI_PATH, 0, 0, EO(prompts),
     "instead: one prompt a line (e.g. data/queries/heldout-prompts.txt);\nbase models continue "
     "the text as it is",
     NULL, NULL, 0, 0},
    {NULL, "--n-queries", "N", CLI_LONG, 1, 1000000, EO(n_queries),
     "the first N queries or prompts", NULL, NULL, CLI_SHOW_DEFAULT, 0},
    {NULL, "--samples", "K", CLI_LONG, 1, 100000, EO(samples),
     "responses per (emotion, alpha, query)", NULL, NULL, CLI_SHOW_DEFAULT, 0},
    {NULL, "--judge", "MODEL", CLI_PATH, 0, 0, EO(judge),
     "zero-shot judge (any GGUF chat model): its emotion probabilities\nbecome the main scores "
     "(the lexicon's go to "
     "results-lexicon.json)\nand it judges topic adherence",
     NULL, NULL, 0, 0},
    {NULL, "--classifier", "FILE", CLI_PATH, 0, 0, EO(classifier),
     "emotion classifier (encoder GGUF): its probabilities of the six labels\n(renormalised) "
     "become the main scores",
     NULL, NULL, 0, 0},
    {NULL, "--nli", "FILE", CLI_PATH, 0, 0, EO(nli),
     "zero-shot NLI model (encoder GGUF with an entailment label): its\nprobabilities become the "
     "main scores",
     NULL, NULL, 0, 0},
    {NULL, "--nli-template", "TEXT", CLI_STR, 0, 0, EO(nli_template),
     "--nli's hypothesis, {} = the label (default 'This text expresses {}.')", NULL, NULL, 0, 0},
    {NULL, "--lexicon", "DIR", CLI_PATH, 0, 0, EO(lexicon),
     "lexicon folder (default: the project's, data/lexicon)", NULL, NULL, 0, 0},
    {NULL, "--resume", NULL, CLI_FLAG, 0, 0, EO(resume),
     "continue DIR/generations.jsonl: finished responses are kept\n(each checked: a value out of "
     "range, or a "
     "seed or prompt\nnot this run's, is an error naming FILE:LINE; responses\noutside this grid "
     "stay in the file, "
     "left out of the\nresults, and a note counts them)",
     NULL, NULL, 0, 0},
    {NULL, "--shard", "K/N", CLI_CUSTOM, 0, 0, EO(shard_k),
     "make only shard K of N of the grid (whole batches of --batch, the\nseeds of the whole run) "
     "into -o DIR; "
     "combine them with --merge",
     NULL, shard_fn, 0, 0},
    {NULL, "--merge", "DIR...", CLI_CUSTOM, 0, 0, EO(merge),
     "combine the shard folders of one run (the same command, --shard\nleft out) into -o DIR: "
     "results equal to an "
     "unsharded run's",
     NULL, merge_fn, 0, 0},
    {NULL, "--compare", "A B", CLI_CUSTOM, 0, 0, EO(compare),
     "compare two runs' results.json instead", NULL, compare_fn, 0, 0},
};
static const cli_opt_group eval_group = {"options", eval_own, sizeof eval_own / sizeof eval_own[0]};

static const cli_group_use eval_groups[] = {
    {&eval_group, 0, 0},
    {&cli_runtime_group, EO(rt), CLI_RT_CTX},
    {&cli_chat_group, EO(chat), CLI_CHAT_FLAG | CLI_CHAT_SYSTEM},
    {&cli_n_predict_group, EO(n_predict), 0},
    {&cli_sampling_group, EO(sp), 0},
    {&cli_steer_group, EO(steer), CLI_STEER_SPEC | CLI_STEER_CV},
};

static void eval_init(void *p) {
    eval_opts *o = p;
    cli_runtime_init(&o->rt);
    cli_steer_init(&o->steer);
    o->alphas_spec = DEFAULT_ALPHAS;
    o->n_queries = 50;
    o->samples = 1;
    o->n_predict = 48;
    o->sp = es_sampler_default_params();
}

const cli_command cli_eval_cmd = {
    "eval",
    "[-m MODEL] --ev FILE -o DIR [options]\n       emosteer eval --compare A/results.json "
    "B/results.json",
    "Measures steering: for every emotion, alpha, query and sample the model answers a\n"
    "neutral query with alpha * the emotion's vector added; the responses are scored and\n"
    "summarised into DIR/results.json, summary.csv, report.html and generations.jsonl.",
    "Prompts are built as extract builds them, so steering is tested in the context the\n"
    "vectors came from: chat models get the query as the user message; base models\n"
    "'\"<query>\" I asked.\\n\"' and continue the answer. The response to query q is drawn\n"
    "with seed es_eval_seed(S, emotion, alpha, \"*\", sample) + q, whatever the batching.\n"
    "Topic adherence: with --judge, P(yes) / (P(yes) + P(no)) of the judge's answer to\n"
    "'Is this text on the topic of \"<query>\"?'; else the cosine of the mean hidden states\n"
    "(layer 2/3 of the depth) of response and query under the unsteered model.\n"
    "Perplexity: of the response after its prompt, under the unsteered model.\n"
    "Layers: --layers, else the layers the --ev file recommends (emosteer.default_layers;\n"
    "models/demo-16m.ev.gguf: 2,3,4), else every layer it has; run-settings.txt and\n"
    "results.json record the layers used, e.g. \"2,3,4 (recommended by the file)\".\n"
    "See docs/evaluation.md for every metric.\n\n"
    "example: emosteer eval --ev models/demo-16m.ev.gguf -o eval-demo --batch 32",
    sizeof(eval_opts),
    eval_init,
    eval_groups,
    sizeof eval_groups / sizeof eval_groups[0],
    0,
};

/* Returns -1 to go on, or an exit code. */
static int eval_parse(int argc, char **argv, eval_opts *o) {
    int rc = cli_opts_parse(&cli_eval_cmd, o, argc, argv, NULL);
    if (rc >= 0) return rc;
    if (o->compare[0]) return -1;
    if (!o->out) return cli_usage_error(CMD, "no output folder: give one with -o DIR");
    struct stat sb;
    if (!*o->out) return cli_usage_error(CMD, "-o '': the output folder is empty");
    if (stat(o->out, &sb) == 0 && !S_ISDIR(sb.st_mode))
        return cli_usage_error(CMD, "-o %s: is a file, not a folder", o->out);
    if (!o->steer.ev_path)
        return cli_usage_error(CMD, "no emotion vectors: give them with --ev FILE");
    if (o->queries && o->prompts)
        return cli_usage_error(CMD, "--queries and --prompts exclude each other");
    if (o->shard_n && o->merge.n)
        return cli_usage_error(CMD, "--shard and --merge exclude each other");
    if (o->merge.n && o->resume)
        return cli_usage_error(CMD, "--merge writes a new folder: leave out --resume");
    if ((o->judge != NULL) + (o->classifier != NULL) + (o->nli != NULL) > 1)
        return cli_usage_error(
            CMD, "--judge, --classifier and --nli exclude each other (one main scorer)");
    if (o->nli_template && !o->nli) return cli_usage_error(CMD, "--nli-template needs --nli");
    if (!o->lexicon) o->lexicon = default_lexicon();
    if (!o->queries && !o->prompts) o->queries = default_queries();
    return -1;
}

/* "-1,0,1.5": finite, distinct; sorted ascending. Returns -1 or an exit code. */
static int parse_alphas(const char *spec, eval_job *j) {
    if (!*spec) return cli_usage_error(CMD, "--alphas: empty list (give e.g. --alphas 0,1,2)");
    int cap = 1;
    for (const char *p = spec; *p; p++)
        cap += *p == ',';
    if (cap > MAX_LIST) return cli_usage_error(CMD, "--alphas: at most %d values", MAX_LIST);
    if (!(j->alphas = calloc((size_t)cap, sizeof *j->alphas))) return cli_fail("--alphas");
    for (const char *p = spec;;) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        char tok[64];
        if (n == 0) return cli_usage_error(CMD, "--alphas: empty entry in '%s'", spec);
        snprintf(tok, sizeof tok, "%.*s", (int)ES_MIN(n, sizeof tok - 1), p);
        double v;
        if (n >= sizeof tok || !cli_parse_float(tok, -1e4, 1e4, &v))
            return cli_usage_error(CMD, "--alphas: '%.*s' is not a finite number in [-1e4, 1e4]",
                                   (int)n, p);
        for (int k = 0; k < j->n_alphas; k++)
            if (j->alphas[k] == v) return cli_usage_error(CMD, "--alphas: %g is given twice", v);
        /* insertion sort: keep ascending */
        int k = j->n_alphas++;
        while (k > 0 && j->alphas[k - 1] > v) {
            j->alphas[k] = j->alphas[k - 1];
            k--;
        }
        j->alphas[k] = v;
        if (!e) break;
        p = e + 1;
    }
    return -1;
}

static void list_emotions(const es_ev_set *ev) {
    for (int k = 0; k < es_ev_set_n_emotions(ev); k++)
        fprintf(stderr, "%s%s", k ? ", " : " ", es_ev_set_emotion(ev, k));
    fprintf(stderr, "\n");
}

/* The emotions to steer toward: --emotions (each must be in the vectors), else every
 * emotion of the vectors but "base". Returns -1 or an exit code. */
static int pick_emotions(eval_job *j) {
    const char *spec = j->o->emotions_spec;
    int n_ev = es_ev_set_n_emotions(j->ev);
    if (!(j->emotions = calloc((size_t)ES_MAX(n_ev, MAX_LIST), sizeof *j->emotions)))
        return cli_fail("--emotions");
    if (!spec) {
        for (int k = 0; k < n_ev; k++)
            if (strcmp(es_ev_set_emotion(j->ev, k), "base") != 0)
                if (!(j->emotions[j->n_emotions++] = es_strdup(es_ev_set_emotion(j->ev, k))))
                    return cli_fail("--emotions");
        if (j->n_emotions == 0) {
            fprintf(
                stderr,
                "emosteer eval: %s holds no emotion besides \"base\"; name one with --emotions\n",
                j->o->steer.ev_path);
            return ES_EXIT_USAGE;
        }
        return -1;
    }
    if (!*spec) return cli_usage_error(CMD, "--emotions: empty list");
    for (const char *p = spec;;) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 0) return cli_usage_error(CMD, "--emotions: empty entry in '%s'", spec);
        if (j->n_emotions == MAX_LIST)
            return cli_usage_error(CMD, "--emotions: at most %d", MAX_LIST);
        char *name = strndup(p, n);
        if (!name) return cli_fail("--emotions");
        j->emotions[j->n_emotions++] = name;
        if (es_ev_set_find(j->ev, name) < 0) {
            fprintf(stderr, "emosteer eval: emotion '%s' is not in %s; it has:", name,
                    j->o->steer.ev_path);
            list_emotions(j->ev);
            return ES_EXIT_USAGE;
        }
        for (int k = 0; k < j->n_emotions - 1; k++)
            if (!strcmp(j->emotions[k], name))
                return cli_usage_error(CMD, "--emotions: '%s' is given twice", name);
        if (!e) break;
        p = e + 1;
    }
    return -1;
}

/* ---- inputs --------------------------------------------------------------------------- */

const char *eval_protocol_name(eval_protocol p, const char **what) {
    static const char *const names[] = {"neutral", "emotionquery", "emotionquery+", "prompts"};
    static const char *const whats[] = {
        "every emotion on the query set's neutral queries (the first N)",
        "each emotion on its own queries of the set (the first N of each list), steered toward it, "
        "as Dong et al.",
        "every emotion on all the set's queries (the first N), as Dong et al.'s EmotionQuery+",
        "every emotion on the prompt file (the first N lines)"};
    if (what) *what = whats[p];
    return names[p];
}

/* Appends query `index` of a list (or a prompt) to j->queries and builds its prompt. */
static int add_query(eval_job *j, const char *id, const char *text, int index) {
    eval_query *x = &j->queries[j->n_queries++];
    x->index = index;
    x->id = es_strdup(id);
    x->text = es_strdup(text);
    if (!x->id || !x->text) {
        fprintf(stderr, "emosteer: out of memory\n");
        return ES_EXIT_FAIL;
    }
    es_status st;
    if (j->o->prompts && j->fmt == ES_CHAT_NONE) /* base model: continue the text itself */
        st = es_tokenize_alloc(j->vocab, x->text, strlen(x->text), true, false, &x->prompt,
                               &x->n_prompt);
    else
        st = es_extract_prompt(j->vocab, j->fmt, NULL, NULL, x->text, &x->prompt, &x->n_prompt);
    if (st != ES_OK) {
        fprintf(stderr, "emosteer: building the prompt of %s: %s\n", x->id, es_last_error());
        return ES_EXIT_FAIL;
    }
    return ES_EXIT_OK;
}

/* The queries and which emotion is asked which (eval_protocol, from the file's shape):
 * a prompt file, a set with a "neutral" list, one unlabelled list (EmotionQuery+), or
 * lists named by emotion (EmotionQuery); the first N of each list used. */
static int load_queries(eval_job *j) {
    const eval_opts *o = j->o;
    char **prompts = NULL;
    int n_prompts = 0, rc = ES_EXIT_FAIL;
    es_query_set *qs = NULL;
    const es_query_list *shared = NULL;
    const es_query_list **lists = calloc((size_t)j->n_emotions, sizeof *lists); /* per emotion */
    j->q_lo = calloc((size_t)j->n_emotions, sizeof *j->q_lo);
    j->q_hi = calloc((size_t)j->n_emotions, sizeof *j->q_hi);
    if (!lists || !j->q_lo || !j->q_hi) {
        free(lists);
        return cli_fail("the queries");
    }
    const char *src = o->prompts ? o->prompts : o->queries;
    if (o->prompts) {
        if (es_prompts_load(o->prompts, &prompts, &n_prompts) != ES_OK) {
            cli_fail("reading the prompts");
            goto done;
        }
        j->protocol = EVAL_PROTO_PROMPTS;
    } else {
        if (es_query_set_load(o->queries, &qs) != ES_OK) {
            cli_fail("reading the queries");
            goto done;
        }
        if ((shared = es_query_set_find(qs, ES_EVAL_NEUTRAL)) && shared->n > 0) {
            j->protocol = EVAL_PROTO_NEUTRAL;
        } else if (qs->format == ES_QUERY_FORMAT_LIST) {
            j->protocol = EVAL_PROTO_SHARED;
            shared = &qs->lists[0];
        } else {
            j->protocol = EVAL_PROTO_EMOTIONQUERY;
            shared = NULL;
            for (int e = 0; e < j->n_emotions; e++)
                if (!(lists[e] = es_query_set_find(qs, j->emotions[e])) || lists[e]->n == 0) {
                    fprintf(stderr,
                            "emosteer: %s has no \"neutral\" list, so each emotion is asked its "
                            "own queries "
                            "(EmotionQuery), but it has none for '%s'; it has:",
                            o->queries, j->emotions[e]);
                    for (int i = 0; i < qs->n_lists; i++)
                        fprintf(stderr, " %s", qs->lists[i].emotion);
                    fprintf(stderr, "\n(choose the emotions with --emotions, or give a set with a "
                                    "neutral list)\n");
                    goto done;
                }
        }
    }
    /* every query of the run, list by list; emotion e asks a range of them */
    size_t total = 0;
    int avail = o->prompts ? n_prompts : shared ? shared->n : 0;
    if (o->prompts || shared)
        total = (size_t)ES_MIN((long)avail, o->n_queries);
    else
        for (int e = 0; e < j->n_emotions; e++)
            total += (size_t)ES_MIN((long)lists[e]->n, o->n_queries);
    if (!(j->queries = calloc(total, sizeof *j->queries))) {
        fprintf(stderr, "emosteer: out of memory\n");
        goto done;
    }
    char id[32];
    if (o->prompts || shared) {
        if ((long)avail < o->n_queries)
            fprintf(stderr, "eval: %s has %d %s; using all of them\n", src, avail,
                    o->prompts ? "prompts" : "queries");
        for (int q = 0; q < (int)total; q++) {
            snprintf(id, sizeof id, "prompt-%04d", q);
            if (add_query(j, o->prompts ? id : shared->queries[q].id,
                          o->prompts ? prompts[q] : shared->queries[q].text, q) != ES_EXIT_OK)
                goto done;
        }
        for (int e = 0; e < j->n_emotions; e++)
            j->q_lo[e] = 0, j->q_hi[e] = (int)total;
        j->n_per_emotion = (int)total;
    } else {
        for (int e = 0; e < j->n_emotions; e++) {
            int n = (int)ES_MIN((long)lists[e]->n, o->n_queries);
            if (n < o->n_queries)
                fprintf(stderr, "eval: %s has %d queries for %s; using all of them\n", src,
                        lists[e]->n, j->emotions[e]);
            j->q_lo[e] = j->n_queries;
            for (int q = 0; q < n; q++)
                if (add_query(j, lists[e]->queries[q].id, lists[e]->queries[q].text, q) !=
                    ES_EXIT_OK)
                    goto done;
            j->q_hi[e] = j->n_queries;
            j->n_per_emotion = ES_MAX(j->n_per_emotion, n);
        }
    }
    rc = ES_EXIT_OK;
done:
    free(lists);
    es_prompts_free(prompts, n_prompts);
    es_query_set_free(qs);
    return rc;
}

/* One steering set per (emotion, alpha != 0), checked against the model on a scratch
 * context sequence. */
static int build_steering(eval_job *j) {
    const eval_opts *o = j->o;
    if (!(j->steer = calloc((size_t)j->n_emotions * (size_t)j->n_alphas, sizeof *j->steer)))
        return cli_fail("steering");
    es_context_params cp = es_context_default_params();
    cp.n_ctx = 8;
    cp.n_batch = 8;
    cp.n_threads = 1;
    es_context *probe = NULL;
    if (es_context_create(j->model, &cp, &probe) != ES_OK) return cli_fail("creating a context");
    int rc = ES_EXIT_OK;
    for (int e = 0; e < j->n_emotions && rc == ES_EXIT_OK; e++)
        for (int a = 0; a < j->n_alphas && rc == ES_EXIT_OK; a++) {
            if (j->alphas[a] == 0) continue;
            es_steer_set **set = &j->steer[e * j->n_alphas + a];
            es_steer_item it = es_steer_item_default();
            int32_t *list = NULL;
            it.vectors = j->ev;
            it.emotion = j->emotions[e];
            it.alpha = (float)j->alphas[a];
            it.hook = o->steer.hook;
            it.positions = o->steer.positions;
            int missing;
            if (!cli_steer_select_layers(j->ev, o->steer.layers_spec, &it, &list, &missing)) {
                rc = cli_steer_layers_error(CMD, &o->steer, j->emotions[e], missing);
            } else if (es_steer_set_create(set) != ES_OK || es_steer_set_add(*set, &it) != ES_OK) {
                fprintf(stderr, "emosteer: steering toward %s at alpha %g: %s\n", j->emotions[e],
                        j->alphas[a], es_last_error());
                rc = ES_EXIT_FAIL;
            } else {
                es_steer_set_preserve_norm(*set, o->steer.preserve_norm);
                if (es_context_set_steering(probe, 0, *set) != ES_OK) {
                    fprintf(stderr, "emosteer: %s does not fit %s: %s\n", o->steer.ev_path,
                            o->rt.model, es_last_error());
                    rc = ES_EXIT_FAIL;
                }
            }
            free(list);
        }
    es_context_free(probe);
    return rc;
}

/* Reads and checks every input. Returns -1 to go on, or an exit code. */
static int eval_prepare(eval_job *j) {
    const eval_opts *o = j->o;
    int rc;
    if ((rc = parse_alphas(o->alphas_spec, j)) >= 0) return rc;
    if (es_ev_set_load(o->steer.ev_path, NULL, &j->ev) != ES_OK)
        return cli_fail("reading the emotion vectors");
    if ((rc = pick_emotions(j)) >= 0) return rc;
    es_model_params mp = es_model_default_params();
    if (es_model_load(o->rt.model, &mp, &j->model) != ES_OK) return cli_fail("loading the model");
    es_model_get_info(j->model, &j->mi);
    if (!(j->vocab = es_model_vocab(j->model))) {
        fprintf(stderr, "emosteer: %s has no tokenizer\n", o->rt.model);
        return ES_EXIT_FAIL;
    }
    if (es_ev_set_n_embd(j->ev) != j->mi.n_embd) {
        fprintf(stderr,
                "emosteer: %s holds vectors of width %d; %s has d_model %d (vectors of another "
                "model?)\n",
                o->steer.ev_path, es_ev_set_n_embd(j->ev), o->rt.model, j->mi.n_embd);
        return ES_EXIT_FAIL;
    }
    if ((rc = cli_chat_format(j->model, o->chat.tmpl_name, false, &j->fmt)) != ES_EXIT_OK)
        return rc;
    if ((rc = load_queries(j)) != ES_EXIT_OK) return rc;
    if ((rc = build_steering(j)) != ES_EXIT_OK) return rc;
    if (es_lexicon_load(o->lexicon, &j->lex) != ES_OK)
        return cli_fail("loading the lexicon (--lexicon DIR)");
    j->labels = eval_all_labels;
    j->n_labels = EVAL_N_LEX;
    if (o->judge) {
        if ((rc = cli_judge_open(o->judge, (int)o->rt.n_threads, &j->judge_model, &j->judge)) !=
            ES_EXIT_OK)
            return rc;
        j->n_labels = 2 * EVAL_N_LEX;
    }
    if (o->classifier || o->nli) {
        const char *kind = eval_model_scorer(o), *path = eval_model_scorer_path(o);
        if ((rc = cli_cls_scorer_open(path, o->nli != NULL, o->nli_template, (int)o->rt.n_threads,
                                      &j->cls)) != ES_EXIT_OK)
            return rc;
        j->n_extra = es_cls_scorer_n_extra(j->cls);
        j->n_labels = 2 * EVAL_N_LEX + j->n_extra;
        if (!(j->own_labels = calloc((size_t)j->n_labels, sizeof *j->own_labels)))
            return cli_fail("labels");
        for (int l = 0; l < j->n_labels; l++) {
            const char *name = l < EVAL_N_LEX ? eval_all_labels[l]
                               : l < 2 * EVAL_N_LEX
                                   ? es_emotion_name((es_emotion)(l - EVAL_N_LEX))
                                   : es_cls_scorer_extra_label(j->cls, l - 2 * EVAL_N_LEX);
            if (l < EVAL_N_LEX ? !(j->own_labels[l] = es_strdup(name))
                               : asprintf(&j->own_labels[l], "%s:%s", kind, name) < 0) {
                j->own_labels[l] = NULL;
                fprintf(stderr, "emosteer: out of memory\n");
                return ES_EXIT_FAIL;
            }
        }
        j->labels = (const char *const *)j->own_labels;
    }
    for (int e = 0; e < j->n_emotions; e++) {
        es_emotion label;
        if (es_emotion_parse(j->emotions[e], &label) != ES_OK || label == ES_EMO_NEUTRAL)
            fprintf(
                stderr,
                "eval: note: '%s' is not a scorer label (anger, disgust, fear, joy, sadness): its "
                "target prob is 0\n",
                j->emotions[e]);
    }
    es_error_clear();
    return -1;
}

/* ---- the output folder ------------------------------------------------------------------- */

static int mkdir_p(const char *dir) {
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path) return -1;
    for (char *p = path + 1;; p++) {
        if (*p == '/' || !*p) {
            char c = *p;
            *p = '\0';
            if (mkdir(path, 0777) != 0 && errno != EEXIST) return -1;
            *p = c;
            if (!c) break;
        }
    }
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode) ? 0 : -1;
}

static char *join(const char *dir, const char *name) {
    char *p = NULL;
    return asprintf(&p, "%s/%s", dir, name) < 0 ? NULL : p;
}

/* The layers steered, as run-settings.txt and results.json record them: the --layers
 * spec, else the EV file's recommended layers (emosteer.default_layers), else every
 * layer it has for the first emotion — what cli_steer_select_layers picks. */
static void layers_text(const eval_job *j, char *buf, size_t cap) {
    const eval_opts *o = j->o;
    const int32_t *def = NULL;
    int n_def = es_ev_set_default_layers(j->ev, &def);
    size_t at = 0;
    if (o->steer.layers_spec) {
        snprintf(buf, cap, "%s (--layers)", o->steer.layers_spec);
    } else if (n_def > 0) {
        for (int k = 0; k < n_def && at < cap; k++)
            at += (size_t)snprintf(buf + at, cap - at, "%s%d", k ? "," : "", def[k]);
        if (at < cap) snprintf(buf + at, cap - at, " (recommended by the file)");
    } else {
        int first = -1, last = -1;
        for (int l = 0; l < es_ev_set_n_layer(j->ev); l++)
            if (es_ev_set_get(j->ev, j->emotions[0], l)) first = first < 0 ? l : first, last = l;
        snprintf(buf, cap, "%d-%d (every layer of the file)", first, last);
    }
}

/* What must not change between a run and its --resume: the settings the responses
 * and their topic scores depend on (not the grid, the batch or the threads; a judge
 * added or changed is refused because it measures topic adherence). */
static char *run_settings(const eval_job *j, const char *model_sha, const char *ev_sha,
                          const char *query_sha, const char *judge_sha) {
    const eval_opts *o = j->o;
    const es_sampler_params *sp = &o->sp;
    char *t = NULL, layers[1024];
    layers_text(j, layers, sizeof layers);
    int n = asprintf(
        &t,
        "model_sha256=%s\nev_sha256=%s\nhook=%s\nlayers=%s\npositions=%s\npreserve_norm=%d\n"
        "chat=%s\nprompts=%s:%s\nn_predict=%ld\nsampling=%g,%d,%g,%g,%g,%g,%g,%d\nseed=%llu\n"
        "topic=%s%s\nprotocol=%s\n",
        model_sha, ev_sha,
        es_hook_name(o->steer.hook >= 0 ? (es_hook_point)o->steer.hook : es_ev_set_hook(j->ev)),
        layers, es_steer_positions_name(o->steer.positions), o->steer.preserve_norm,
        es_chat_format_name(j->fmt), o->prompts ? "prompts" : "queries", query_sha, o->n_predict,
        (double)sp->temp, sp->top_k, (double)sp->top_p, (double)sp->min_p,
        (double)sp->repeat_penalty, (double)sp->presence_penalty, (double)sp->frequency_penalty,
        sp->penalty_last_n, (unsigned long long)sp->seed, o->judge ? "judge " : "cosine",
        o->judge ? judge_sha : "", eval_protocol_name(j->protocol, NULL));
    if (n >= 0 &&
        j->cls) { /* the scores in generations.jsonl are the classifier's: resume keeps it */
        char *u = NULL;
        n = asprintf(&u, "%sscorer=%s %s%s%s\n", t, eval_model_scorer(o), judge_sha,
                     o->nli_template ? " " : "", o->nli_template ? o->nli_template : "");
        free(t);
        t = n < 0 ? NULL : u;
    }
    return n < 0 ? NULL : t;
}

/* The settings of shard k/n: the run's, then the shard and the grid it was cut from
 * (the emotions, alphas, queries, samples and the batch, which fix the cut). *base is
 * replaced (freed). Returns false out of memory. */
static bool add_shard_settings(const eval_job *j, char **base, int k, int n) {
    char grid[8192];
    size_t at = 0;
    for (int e = 0; e < j->n_emotions && at < sizeof grid; e++)
        at += (size_t)snprintf(grid + at, sizeof grid - at, "%s%s", e ? "," : "", j->emotions[e]);
    for (int a = 0; a < j->n_alphas && at < sizeof grid; a++)
        at += (size_t)snprintf(grid + at, sizeof grid - at, "%s%.9g", a ? "," : ";", j->alphas[a]);
    if (at < sizeof grid)
        snprintf(grid + at, sizeof grid - at, ";%d queries;%ld samples;batch %d", j->n_per_emotion,
                 j->o->samples, j->o->rt.batch);
    char *t = NULL;
    if (asprintf(&t, "%sshard=%d/%d\ngrid=%s\n", *base, k, n, grid) < 0) return false;
    free(*base);
    *base = t;
    return true;
}

/* --merge: checks that the folders are the shards 1..N of this very run (each one's
 * run-settings.txt is what `--shard K/N` of this command writes) and writes their
 * generations.jsonl, in shard order, as gen_path: the lines as they are, so the file
 * is the one an unsharded run writes. Sets o->shard_n = N. Returns an exit code. */
static int merge_shards(eval_job *j, eval_opts *o, const char *base_settings,
                        const char *gen_path) {
    int n = 0, rc = ES_EXIT_FAIL;
    int *order = calloc((size_t)o->merge.n, sizeof *order); /* order[k-1] = index in o->merge */
    char *text = NULL, *want = NULL, *path = NULL, *tmp = NULL;
    FILE *out = NULL;
    if (!order) return cli_fail("--merge");
    for (int i = 0; i < o->merge.n; i++)
        order[i] = -1;
    for (int i = 0; i < o->merge.n; i++) {
        const char *dir = o->merge.v[i];
        size_t len;
        free(path);
        path = join(dir, "run-settings.txt");
        free(text);
        text = NULL;
        if (!path || es_file_read(path, 1 << 20, &text, &len) != ES_OK) {
            fprintf(stderr, "emosteer eval: --merge: %s: %s\n", dir,
                    path ? es_last_error() : "out of memory");
            goto done;
        }
        const char *sh = strstr(text, "\nshard=");
        int k = 0, m = 0;
        if (!sh || sscanf(sh, "\nshard=%d/%d", &k, &m) != 2 || k < 1 || k > m) {
            fprintf(stderr,
                    "emosteer eval: --merge: %s is not a shard (no shard=K/N line: made without "
                    "--shard)\n",
                    path);
            goto done;
        }
        if (n && m != n) {
            fprintf(stderr, "emosteer eval: --merge: %s is a shard of %d, %s of %d\n", dir, m,
                    o->merge.v[order[0] >= 0 ? order[0] : 0], n);
            goto done;
        }
        n = m;
        if (m != o->merge.n) {
            fprintf(stderr, "emosteer eval: --merge: the run has %d shards; %d folders given\n", m,
                    o->merge.n);
            goto done;
        }
        if (order[k - 1] >= 0) {
            fprintf(stderr, "emosteer eval: --merge: %s and %s are both shard %d/%d\n",
                    o->merge.v[order[k - 1]], dir, k, n);
            goto done;
        }
        order[k - 1] = i;
        free(want);
        want = es_strdup(base_settings);
        if (!want || !add_shard_settings(j, &want, k, n)) {
            fprintf(stderr, "emosteer: out of memory\n");
            goto done;
        }
        /* line by line: name the first that differs */
        const char *a = text, *b = want;
        while (*a || *b) {
            size_t la = strcspn(a, "\n"), lb = strcspn(b, "\n");
            if (la != lb || memcmp(a, b, la) != 0) {
                fprintf(stderr,
                        "emosteer eval: --merge: %s is not a shard of this run:\n  was: %.*s\n  "
                        "now: %.*s\n"
                        "(merge with the command the shards ran, --shard left out)\n",
                        path, (int)la, a, (int)lb, b);
                goto done;
            }
            a += la + (a[la] == '\n');
            b += lb + (b[lb] == '\n');
        }
    }
    o->shard_n = n;
    /* the generations, shard by shard, through a temporary file */
    if (asprintf(&tmp, "%s.tmp%d", gen_path, (int)getpid()) < 0 || !(out = fopen(tmp, "wb"))) {
        fprintf(stderr, "emosteer: cannot create %s: %s\n", gen_path, strerror(errno));
        goto done;
    }
    for (int k = 0; k < n; k++) {
        const char *dir = o->merge.v[order[k]];
        free(path);
        path = join(dir, "generations.jsonl");
        es_genlog *log = NULL;
        if (!path || es_genlog_open(path, j->labels, j->n_labels, false, &log) != ES_OK) {
            fprintf(stderr, "emosteer eval: --merge: %s\n",
                    path ? es_last_error() : "out of memory");
            goto done;
        }
        es_genlog_info info;
        es_genlog_get_info(log, &info);
        es_genlog_free(log);
        size_t len;
        free(text);
        text = NULL;
        if (es_file_read(path, (size_t)1 << 40, &text, &len) != ES_OK) {
            cli_fail("--merge");
            goto done;
        }
        len = ES_MIN(len, info.valid_bytes); /* without a cut-off last line */
        if (fwrite(text ? text : "", 1, len, out) != len ||
            (len && text[len - 1] != '\n' && fputc('\n', out) == EOF)) {
            fprintf(stderr, "emosteer: cannot write %s: %s\n", gen_path, strerror(errno));
            goto done;
        }
        if (info.dropped_bytes)
            fprintf(stderr, "eval: note: %s ends in a cut-off line; left out\n", path);
    }
    bool ok = fclose(out) == 0;
    out = NULL;
    if (!ok || rename(tmp, gen_path) != 0) {
        fprintf(stderr, "emosteer: cannot write %s: %s\n", gen_path, strerror(errno));
        goto done;
    }
    fprintf(stderr, "eval: merged %d shards into %s\n", n, gen_path);
    rc = ES_EXIT_OK;
done:
    if (out) fclose(out);
    if (rc != ES_EXIT_OK && tmp) unlink(tmp);
    free(order);
    free(text);
    free(want);
    free(path);
    free(tmp);
    return rc;
}

/* Writes text to path through a temporary file and a rename. */
static int write_atomic_text(const char *path, const char *text) {
    char *tmp = NULL;
    if (asprintf(&tmp, "%s.tmp%d", path, (int)getpid()) < 0) return cli_fail("writing");
    FILE *f = fopen(tmp, "w");
    bool ok = f && fputs(text, f) >= 0;
    ok = (f && fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        fprintf(stderr, "emosteer: cannot write %s: %s\n", path, strerror(errno));
        unlink(tmp);
        free(tmp);
        return ES_EXIT_FAIL;
    }
    free(tmp);
    return ES_EXIT_OK;
}

/* Compares the settings of this run with DIR/run-settings.txt of the run it resumes. */
static int check_resume(const char *path, const char *now, bool layers_given) {
    FILE *f = fopen(path, "r");
    if (!f) return ES_EXIT_OK; /* nothing recorded: trust the user */
    char before[8192];
    size_t n = fread(before, 1, sizeof before - 1, f);
    fclose(f);
    before[n] = '\0';
    /* line by line: name the first key that differs */
    const char *a = before, *b = now;
    while (*a || *b) {
        size_t la = strcspn(a, "\n"), lb = strcspn(b, "\n");
        /* runs written before the layers were spelled out recorded "layers=all" for
         * "no --layers": the same selection */
        bool old_layers =
            !layers_given && la == 10 && !memcmp(a, "layers=all", 10) && !strncmp(b, "layers=", 7);
        /* runs written before the protocol was recorded asked the neutral queries or the prompts */
        bool old_protocol = la == 0 && !*a &&
                            (!strcmp(b, "protocol=neutral\n") || !strcmp(b, "protocol=prompts\n"));
        if (old_protocol) break;
        if (!old_layers && (la != lb || memcmp(a, b, la) != 0)) {
            fprintf(stderr,
                    "emosteer eval: --resume: this run differs from the one in %s:\n  was: %.*s\n  "
                    "now: %.*s\n"
                    "(the responses or their scores would not be comparable; use another -o DIR)\n",
                    path, (int)la, a, (int)lb, b);
            return ES_EXIT_USAGE;
        }
        a += la + (a[la] == '\n');
        b += lb + (b[lb] == '\n');
    }
    return ES_EXIT_OK;
}

/* Where (emotion, alpha, query, sample) of a record is in this run's grid: false for a
 * record of another grid (the grid may change between a run and its --resume). *seed
 * gets the seed this run draws that response with. */
static bool in_grid(const eval_job *j, const es_gen_record *r, uint64_t *seed) {
    int e = 0, a = 0, q = 0;
    while (e < j->n_emotions && strcmp(j->emotions[e], r->emotion) != 0)
        e++;
    /* alphas compare as the log's keys do: rounded to 9 significant digits */
    char want[32], got[32];
    snprintf(got, sizeof got, "%.9g", r->alpha == 0 ? 0.0 : r->alpha);
    for (; a < j->n_alphas; a++) {
        snprintf(want, sizeof want, "%.9g", j->alphas[a] == 0 ? 0.0 : j->alphas[a]);
        if (!strcmp(want, got)) break;
    }
    if (e == j->n_emotions) return false;
    for (q = j->q_lo[e]; q < j->q_hi[e] && strcmp(j->queries[q].id, r->query_id) != 0; q++) {
    }
    if (a == j->n_alphas || q == j->q_hi[e] || r->sample >= j->o->samples) return false;
    *seed = es_eval_seed(j->o->sp.seed, j->emotions[e], j->alphas[a], "*", r->sample) +
            (uint64_t)j->queries[q].index;
    return true;
}

static int query_of(const eval_job *j, const char *id) {
    for (int q = 0; q < j->n_queries; q++)
        if (!strcmp(j->queries[q].id, id)) return q;
    return -1;
}

/* Checks every record of the log a --resume continues: the file must read (each value
 * in its range, es_genlog_open), and a record of this run's grid must be the response
 * this run would draw — its seed, prompt and at most -n tokens — or it is an error naming path:line
 * and the field. Records of other grid points are kept in the file and left out of the results; a
 * note counts them. Returns an exit code. */
static int check_resumed_records(const eval_job *j, const char *gen_path) {
    es_genlog *log = NULL;
    if (es_genlog_open(gen_path, j->labels, j->n_labels, false, &log) != ES_OK) {
        fprintf(stderr,
                "emosteer eval: --resume: %s\n(fix or remove that line, or use another -o DIR)\n",
                es_last_error());
        return ES_EXIT_FAIL;
    }
    es_genlog_free(log);
    FILE *f = fopen(gen_path, "rb");
    if (!f) {
        fprintf(stderr, "emosteer eval: --resume: cannot read %s: %s\n", gen_path, strerror(errno));
        return ES_EXIT_FAIL;
    }
    char *line = NULL;
    size_t cap = 0, line_no = 0, foreign = 0;
    ssize_t got;
    int rc = ES_EXIT_OK;
    while (rc == ES_EXIT_OK && (got = getline(&line, &cap, f)) > 0) {
        line_no++;
        es_gen_record r;
        size_t body = (size_t)got;
        while (body && (line[body - 1] == '\n' || line[body - 1] == '\r'))
            body--;
        /* blank lines and a torn last line: es_genlog_open has accepted them */
        if (es_gen_record_from_json(line, body, j->labels, j->n_labels, &r) != ES_OK) continue;
        uint64_t seed;
        if (!in_grid(j, &r, &seed)) {
            foreign++;
        } else if (r.seed != seed) {
            fprintf(
                stderr,
                "emosteer eval: --resume: %s:%zu: \"seed\": %llu is not the seed this run draws "
                "(%s, alpha %g, "
                "%s, sample %d) with (%llu): a response of another run?\n(use another -o DIR)\n",
                gen_path, line_no, (unsigned long long)r.seed, r.emotion, r.alpha, r.query_id,
                r.sample, (unsigned long long)seed);
            rc = ES_EXIT_FAIL;
        } else if (r.n_tokens > j->o->n_predict) {
            fprintf(
                stderr,
                "emosteer eval: --resume: %s:%zu: \"n_tokens\": %d is more than this run's -n %ld\n"
                "(use another -o DIR)\n",
                gen_path, line_no, r.n_tokens, j->o->n_predict);
            rc = ES_EXIT_FAIL;
        } else if (r.prompt && strcmp(r.prompt, j->queries[query_of(j, r.query_id)].text) != 0) {
            fprintf(stderr,
                    "emosteer eval: --resume: %s:%zu: \"prompt\" is not the text of query %s in "
                    "this run\n"
                    "(use another -o DIR)\n",
                    gen_path, line_no, r.query_id);
            rc = ES_EXIT_FAIL;
        }
        es_gen_record_clear(&r);
    }
    free(line);
    fclose(f);
    if (rc == ES_EXIT_OK && foreign)
        fprintf(stderr,
                "eval: note: %zu responses in %s are outside this run's grid (--emotions, "
                "--alphas, queries, "
                "--samples): kept in the file, left out of the results\n",
                foreign, gen_path);
    return rc;
}

/* ---- summaries and files ------------------------------------------------------------------ */

static es_status set_str(char **field, const char *v) {
    free(*field);
    *field = es_strdup(v ? v : "");
    return *field ? ES_OK : ES_ERR_NOMEM;
}

static es_status add_kv(es_eval_settings *s, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static es_status add_kv(es_eval_settings *s, const char *key, const char *fmt, ...) {
    char buf[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return es_eval_settings_add(s, key, buf);
}

static int fill_settings(const eval_job *j, es_eval_settings *s, const char *model_sha,
                         const char *ev_sha, const char *query_sha, const char *judge_sha,
                         bool judge_scores) {
    const eval_opts *o = j->o;
    es_ev_meta meta;
    es_ev_set_get_meta(j->ev, &meta);
    char layers[1024], created[32], scorer[PATH_MAX + 64];
    layers_text(j, layers, sizeof layers);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (judge_scores)
        snprintf(scorer, sizeof scorer, "%s (%s)", eval_model_scorer(o),
                 base_name(eval_model_scorer_path(o)));
    else
        snprintf(scorer, sizeof scorer, "lexicon (prior %g)", ES_EVAL_LEXICON_PRIOR);
    es_status st = ES_OK;
    st = st ? st : set_str(&s->model_path, o->rt.model);
    st = st ? st
            : set_str(&s->model_name,
                      j->mi.name && *j->mi.name ? j->mi.name : base_name(o->rt.model));
    st = st ? st : set_str(&s->model_sha256, model_sha);
    st = st ? st : set_str(&s->ev_path, o->steer.ev_path);
    st = st ? st : set_str(&s->ev_sha256, ev_sha);
    st = st ? st : set_str(&s->method, *meta.method ? meta.method : "unknown");
    st = st ? st
            : set_str(&s->hook, es_hook_name(o->steer.hook >= 0 ? (es_hook_point)o->steer.hook
                                                                : es_ev_set_hook(j->ev)));
    st = st ? st : set_str(&s->layers, layers);
    st = st ? st : set_str(&s->query_file, o->prompts ? o->prompts : o->queries);
    st = st ? st : set_str(&s->query_sha256, query_sha);
    st = st ? st : set_str(&s->scorer, scorer);
    st = st ? st : set_str(&s->created, created);
    s->seed = o->sp.seed;
    s->n_samples = (int)o->samples;
    s->max_tokens = (int)o->n_predict;
    const es_sampler_params *sp = &o->sp;
    const char *what, *protocol = eval_protocol_name(j->protocol, &what);
    st = st ? st : add_kv(s, "protocol", "%s: %s", protocol, what);
    st = st ? st
            : add_kv(s, "n_queries", "%d%s", j->n_per_emotion,
                     j->protocol == EVAL_PROTO_EMOTIONQUERY ? " per emotion" : "");
    st = st ? st : add_kv(s, "chat_format", "%s", es_chat_format_name(j->fmt));
    st = st ? st : add_kv(s, "positions", "%s", es_steer_positions_name(o->steer.positions));
    st = st ? st : add_kv(s, "preserve_norm", "%s", o->steer.preserve_norm ? "yes" : "no");
    st = st ? st : add_kv(s, "ev_source_model", "%s", meta.source_model);
    st = st ? st : add_kv(s, "ev_query_set", "%s", meta.query_set);
    st = st ? st
            : add_kv(s, "sampling", "temp %g, top_k %d, top_p %g, min_p %g, repeat_penalty %g",
                     (double)sp->temp, sp->top_k, (double)sp->top_p, (double)sp->min_p,
                     (double)sp->repeat_penalty);
    st = st ? st
            : add_kv(s, "seeds", "es_eval_seed(seed, emotion, alpha, \"*\", sample) + query index");
    st = st ? st : add_kv(s, "topic", "%s", j->topic_desc);
    st = st ? st
            : add_kv(s, "perplexity", "of the response after its prompt, unsteered %s",
                     base_name(o->rt.model));
    st = st ? st : add_kv(s, "lexicon", "%s", o->lexicon);
    if (o->judge) {
        st = st ? st : add_kv(s, "judge", "%s", o->judge);
        st = st ? st : add_kv(s, "judge_sha256", "%s", judge_sha);
        st = st ? st
                : add_kv(s, "judge_chat_format", "%s",
                         es_chat_format_name(es_judge_chat_format(j->judge)));
    }
    if (j->cls) {
        st = st ? st : add_kv(s, eval_model_scorer(o), "%s", eval_model_scorer_path(o));
        st = st ? st : add_kv(s, o->nli ? "nli_sha256" : "classifier_sha256", "%s", judge_sha);
        if (o->nli)
            st = st ? st
                    : add_kv(s, "nli_template",
                             "%s (neutral: {} = no particular emotion; softmax over the "
                             "entailment logits)",
                             o->nli_template ? o->nli_template : ES_NLI_DEFAULT_TEMPLATE);
        else
            st = st ? st
                    : add_kv(s, "classifier_labels",
                             "the six renormalised; others kept in generations.jsonl");
    }
    if (st != ES_OK) {
        fprintf(stderr, "emosteer: out of memory\n");
        return ES_EXIT_FAIL;
    }
    return ES_EXIT_OK;
}

/* Summarises recs with the scores at offset `off` of each record and writes
 * DIR/results<suffix>.json and summary<suffix>.csv (and report.html if asked). */
static int write_outputs(const eval_job *j, es_gen_record *recs, size_t n,
                         const es_eval_settings *settings, const char *suffix, bool report,
                         es_eval_results **out) {
    const eval_opts *o = j->o;
    es_eval_results *r = NULL;
    if (es_eval_summarize(recs, n, (const char *const *)j->emotions, j->n_emotions, j->alphas,
                          j->n_alphas, es_eval_lexicon_labels, EVAL_N_LEX, settings, NULL,
                          &r) != ES_OK)
        return cli_fail("summarising");
    char name[64], *path = NULL, *tmp = NULL;
    int rc = ES_EXIT_FAIL;
    for (int f = 0; f < 3; f++) {
        if (f == 2 && !report) break;
        snprintf(name, sizeof name,
                 f == 0   ? "results%s.json"
                 : f == 1 ? "summary%s.csv"
                          : "report.html",
                 suffix);
        free(path);
        free(tmp);
        path = join(o->out, name);
        tmp = NULL;
        if (!path || asprintf(&tmp, "%s/.%s.tmp%d", o->out, name, (int)getpid()) < 0) {
            tmp = NULL;
            fprintf(stderr, "emosteer: out of memory\n");
            goto done;
        }
        es_status st;
        if (f == 0)
            st = es_results_write_json(r, tmp);
        else if (f == 1)
            st = es_results_write_csv(r, tmp);
        else {
            char title[512];
            snprintf(title, sizeof title, "emosteer eval: %s steered by %s", settings->model_name,
                     base_name(o->steer.ev_path));
            es_report_params rp = es_report_default_params();
            rp.title = title;
            st = es_report_write(r, &rp, tmp);
        }
        if (st != ES_OK || rename(tmp, path) != 0) {
            fprintf(stderr, "emosteer: cannot write %s: %s\n", path,
                    st != ES_OK ? es_last_error() : strerror(errno));
            unlink(tmp);
            goto done;
        }
    }
    rc = ES_EXIT_OK;
done:
    free(path);
    free(tmp);
    if (rc == ES_EXIT_OK && out)
        *out = r;
    else
        es_eval_results_free(r);
    return rc;
}

/* Summarises the records of this run's grid (shallow copies) with the lexicon's scores
 * (the first EVAL_N_LEX) and, with --judge, the judge's (the next EVAL_N_LEX). */
static int eval_finish(eval_job *j, const char *model_sha, const char *ev_sha,
                       const char *query_sha, const char *judge_sha) {
    es_genlog_info info;
    es_genlog_get_info(j->log, &info);
    const es_gen_record *all = es_genlog_records(j->log);
    es_gen_record *sel = calloc(info.n_records + 1, sizeof *sel);
    es_eval_settings settings = {0};
    es_eval_results *res = NULL;
    int rc = ES_EXIT_FAIL;
    size_t n = 0;
    if (!sel) goto done;
    for (size_t i = 0; i < info.n_records; i++) {
        uint64_t seed;
        if (in_grid(j, &all[i], &seed)) sel[n++] = all[i];
    }
    /* lexicon: the first six scores */
    for (size_t i = 0; i < n; i++)
        sel[i].n_labels = sel[i].scores ? EVAL_N_LEX : 0;
    if (fill_settings(j, &settings, model_sha, ev_sha, query_sha, judge_sha, false) != ES_EXIT_OK)
        goto done;
    const bool model_scores = j->judge || j->cls;
    if (write_outputs(j, sel, n, &settings, model_scores ? "-lexicon" : "", !model_scores,
                      model_scores ? NULL : &res) != ES_EXIT_OK)
        goto done;
    if (model_scores) {
        for (size_t i = 0; i < n; i++)
            if (sel[i].scores) sel[i].scores += EVAL_N_LEX, sel[i].n_labels = EVAL_N_LEX;
        es_eval_settings_clear(&settings);
        if (fill_settings(j, &settings, model_sha, ev_sha, query_sha, judge_sha, true) !=
                ES_EXIT_OK ||
            write_outputs(j, sel, n, &settings, "", true, &res) != ES_EXIT_OK)
            goto done;
    }
    /* the headline numbers */
    printf("%-10s", "emotion");
    for (int a = 0; a < res->n_alphas; a++)
        printf("  a=%-6g", res->alphas[a]);
    printf("  slope[%g,%g]  R^2\n", res->lin_alpha_lo, res->lin_alpha_hi);
    for (int e = 0; e < res->n_emotions; e++) {
        printf("%-10s", res->emotions[e]);
        for (int a = 0; a < res->n_alphas; a++)
            printf("  %-8.3f", es_eval_cell_at(res, e, a)->target_prob.mean);
        printf("  %-12.4f  %.3f\n", res->linearity[e].slope, res->linearity[e].r2);
    }
    printf("%-10s", "rep-4");
    for (int a = 0; a < res->n_alphas; a++) {
        double s = 0;
        for (int e = 0; e < res->n_emotions; e++)
            s += es_eval_cell_at(res, e, a)->rep4.mean;
        printf("  %-8.3f", s / res->n_emotions);
    }
    printf("\n%-10s", "degenerate");
    for (int a = 0; a < res->n_alphas; a++) {
        double s = 0;
        for (int e = 0; e < res->n_emotions; e++)
            s += es_eval_cell_at(res, e, a)->degenerate_share;
        printf("  %-8.3f", s / res->n_emotions);
    }
    printf("\n(target prob by %s; rep-4 and degenerate share averaged over the emotions)\n",
           res->settings.scorer);
    fprintf(stderr, "eval: wrote %s/results.json, summary.csv, report.html (%d responses%s)\n",
            j->o->out, res->n_records,
            j->judge || j->cls ? "; lexicon scores in results-lexicon.json" : "");
    rc = ES_EXIT_OK;
done:
    if (rc != ES_EXIT_OK && !sel) fprintf(stderr, "emosteer: out of memory\n");
    es_eval_results_free(res);
    es_eval_settings_clear(&settings);
    free(sel);
    return rc;
}

/* ---- main ----------------------------------------------------------------------------- */

static void job_free(eval_job *j) {
    for (int i = 0; j->steer && i < j->n_emotions * j->n_alphas; i++)
        es_steer_set_free(j->steer[i]);
    free(j->steer);
    for (int i = 0; i < j->n_emotions; i++)
        free(j->emotions[i]);
    free(j->emotions);
    free(j->alphas);
    for (int q = 0; q < j->n_queries; q++) {
        free(j->queries[q].id);
        free(j->queries[q].text);
        free(j->queries[q].prompt);
    }
    free(j->queries);
    free(j->q_lo);
    free(j->q_hi);
    free(j->items);
    free(j->topic_desc);
    es_genlog_free(j->log);
    es_judge_free(j->judge);
    es_model_free(j->judge_model);
    es_cls_scorer_free(j->cls);
    for (int l = 0; j->own_labels && l < j->n_labels; l++)
        free(j->own_labels[l]);
    free(j->own_labels);
    es_lexicon_free(j->lex);
    es_ev_set_free(j->ev);
    es_model_free(j->model);
}

static int sha_or_fail(const char *path, char hex[ES_SHA256_HEX]) {
    if (es_sha256_file(path, hex) != ES_OK) return cli_fail("hashing");
    return ES_EXIT_OK;
}

int cmd_eval(int argc, char **argv) {
    eval_opts o;
    int rc = eval_parse(argc, argv, &o);
    if (rc >= 0) return rc;
    if (o.compare[0]) {
        if (es_results_compare_files(o.compare[0], o.compare[1], stdout) != ES_OK)
            return cli_fail("--compare");
        return ES_EXIT_OK;
    }
    eval_job j = {.o = &o};
    char *gen_path = NULL, *set_path = NULL, *settings = NULL;
    bool made_dir = false, made_settings = false, made_log = false,
         made_merge = false; /* by this run: removed if it fails */
    struct stat sb;
    char model_sha[ES_SHA256_HEX] = "", ev_sha[ES_SHA256_HEX] = "", query_sha[ES_SHA256_HEX] = "",
         judge_sha[ES_SHA256_HEX] = "";
    if ((rc = eval_prepare(&j)) >= 0) goto done;
    rc = ES_EXIT_FAIL;
    /* the grid, emotion-major; seeds as eval_run.c explains */
    size_t n_items =
        (size_t)j.n_alphas * (size_t)o.samples * (size_t)j.n_per_emotion * (size_t)j.n_emotions;
    if (n_items > INT_MAX / 2 || !(j.items = calloc(n_items, sizeof *j.items))) {
        fprintf(stderr, "emosteer: %zu responses is too many\n", n_items);
        goto done;
    }
    for (int e = 0; e < j.n_emotions; e++)
        for (int a = 0; a < j.n_alphas; a++)
            for (int s = 0; s < o.samples; s++) {
                uint64_t seed0 = es_eval_seed(o.sp.seed, j.emotions[e], j.alphas[a], "*", s);
                for (int q = j.q_lo[e]; q < j.q_hi[e]; q++)
                    j.items[j.n_items++] =
                        (eval_item){e, a, q, s, seed0 + (uint64_t)j.queries[q].index};
                /* --shard: whole batches of the whole run (eval_shard_range) */
                j.item_lo = 0;
                j.item_hi = j.n_items;
                if (o.shard_n && !o.merge.n)
                    eval_shard_range(j.n_items, o.rt.batch, o.shard_k, o.shard_n, &j.item_lo,
                                     &j.item_hi);
            }
    char topic_desc[PATH_MAX + 128];
    if (o.judge)
        snprintf(
            topic_desc, sizeof topic_desc,
            "judge %s: P(yes) / (P(yes) + P(no)) of 'Is this text on the topic of \"<query>\"?'",
            base_name(o.judge));
    else
        snprintf(topic_desc, sizeof topic_desc,
                 "cosine of mean hidden states (block_out, layer %d) of response and query under "
                 "the unsteered %s",
                 es_embed_default_layer(j.mi.n_layer), base_name(o.rt.model));
    j.topic_desc = es_strdup(topic_desc);
    fprintf(stderr, "eval: hashing the inputs\n");
    if (sha_or_fail(o.rt.model, model_sha) || sha_or_fail(o.steer.ev_path, ev_sha) ||
        sha_or_fail(o.prompts ? o.prompts : o.queries, query_sha) ||
        (eval_model_scorer_path(&o) && sha_or_fail(eval_model_scorer_path(&o), judge_sha)))
        goto done;
    if (!(settings = run_settings(&j, model_sha, ev_sha, query_sha, judge_sha)) ||
        !(gen_path = join(o.out, "generations.jsonl")) ||
        !(set_path = join(o.out, "run-settings.txt"))) {
        fprintf(stderr, "emosteer: out of memory\n");
        goto done;
    }
    if (o.shard_n && !o.merge.n && !add_shard_settings(&j, &settings, o.shard_k, o.shard_n)) {
        fprintf(stderr, "emosteer: out of memory\n");
        goto done;
    }
    bool have_log = stat(gen_path, &sb) == 0 && sb.st_size > 0;
    if (have_log && !o.resume) {
        fprintf(stderr,
                "emosteer eval: %s already holds responses: continue them with --resume, or choose "
                "another -o DIR\n",
                gen_path);
        rc = ES_EXIT_USAGE;
        goto done;
    }
    if (have_log &&
        (rc = check_resume(set_path, settings, o.steer.layers_spec != NULL)) != ES_EXIT_OK)
        goto done;
    if (o.merge.n) { /* the shards' responses become this folder's log, checked as a resumed one */
        made_dir = stat(o.out, &sb) != 0;
        if (mkdir_p(o.out) != 0) {
            fprintf(stderr, "emosteer: cannot create the folder %s: %s\n", o.out, strerror(errno));
            goto done;
        }
        if ((rc = merge_shards(&j, &o, settings, gen_path)) != ES_EXIT_OK) goto done;
        made_merge = have_log = true;
    }
    if (have_log && (rc = check_resumed_records(&j, gen_path)) != ES_EXIT_OK) goto done;
    rc = ES_EXIT_FAIL;
    made_dir = made_dir || stat(o.out, &sb) != 0;
    made_settings = access(set_path, F_OK) != 0;
    made_log = !have_log;
    if (mkdir_p(o.out) != 0) {
        fprintf(stderr, "emosteer: cannot create the folder %s: %s\n", o.out, strerror(errno));
        goto done;
    }
    if (write_atomic_text(set_path, settings) != ES_EXIT_OK) goto done;
    if (es_genlog_open(gen_path, j.labels, j.n_labels, true, &j.log) != ES_OK) {
        cli_fail("opening generations.jsonl");
        goto done;
    }
    es_genlog_info gi;
    es_genlog_get_info(j.log, &gi);
    if (o.resume)
        fprintf(stderr, "eval: resuming %s: %zu responses%s\n", gen_path, gi.n_records,
                gi.dropped_bytes ? " (a cut-off last line was dropped)" : "");
    double t0 = es_time_s();
    if ((rc = eval_run(&j)) != ES_EXIT_OK) goto done;
    if (o.shard_n && !o.merge.n) { /* a part of the grid: its results come from --merge */
        fprintf(stderr,
                "eval: shard %d/%d done: %s/generations.jsonl; combine the %d shard folders with "
                "the same "
                "command, --shard left out, --merge DIR... -o OUT\n",
                o.shard_k, o.shard_n, o.out, o.shard_n);
        goto done;
    }
    /* summarise what the file holds (numbers as written), whether fresh or resumed */
    es_genlog_free(j.log);
    j.log = NULL;
    if (es_genlog_open(gen_path, j.labels, j.n_labels, false, &j.log) != ES_OK) {
        rc = cli_fail("reading generations.jsonl");
        goto done;
    }
    rc = eval_finish(&j, model_sha, ev_sha, query_sha, judge_sha);
    fprintf(stderr, "eval: done in %.2f s\n", es_time_s() - t0);
done:
    /* a failed merge takes back the log it wrote */
    if (rc != ES_EXIT_OK && made_merge && gen_path) {
        es_genlog_free(j.log);
        j.log = NULL;
        unlink(gen_path);
        if (made_settings || made_dir) unlink(set_path);
        if (made_dir) rmdir(o.out);
    }
    /* a failed run that generated nothing takes back what it created: an empty log, its
     * settings, the folder; a log with responses is kept for --resume */
    if (rc != ES_EXIT_OK && made_log && gen_path && stat(gen_path, &sb) == 0 && sb.st_size == 0) {
        es_genlog_free(j.log);
        j.log = NULL;
        unlink(gen_path);
        if (made_settings) unlink(set_path);
        if (made_dir) rmdir(o.out);
    }
    free(gen_path);
    free(set_path);
    free(settings);
    job_free(&j);
    return rc;
}
