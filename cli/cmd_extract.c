/*
 * cmd_extract.c — `emosteer extract`: emotion vectors from a model's own responses
 * (Dong et al. 2025). For each query, the model answers under a neutral and under each
 * emotion's conditioning (a system prompt in the model's chat format, or a text prefix
 * for base models; see es_extract_prompt); the mean hook activation over each
 * response, per layer, is one sample; a method (es_extract_method) turns the samples
 * into one vector per emotion and layer, plus "base" (every emotion pooled).
 * With --pairs the responses are given and only teacher-forced.
 *
 * Layout: ex_parse (options, from the tables) -> build the samples (queries or pairs) -> ex_run:
 * for each batch of samples, generate (es_generate), teacher-force (es_extract_response_means),
 * checkpoint, collect -> es_extractor_compute -> save.
 */
#include "cli.h"
#include "gen_util.h"
#include "opts.h"

#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int cmd_extract(int argc, char **argv); /* declared in cli.h */

#define CMD "extract"
#define DEFAULT_EMOTIONS "joy,anger,disgust,fear,sadness"
#define MAX_EMOTIONS 64

typedef struct ex_opts {
    cli_runtime_opts rt; /* -m, -t, --kv-type, --numerics, --batch */
    cli_chat_opts chat;  /* --chat-template */
    const char *queries, *instructions, *pairs, *out;
    const char *emotions_spec; /* --emotions, NULL = DEFAULT_EMOTIONS */
    char *emotions[MAX_EMOTIONS];
    int n_emotions;
    bool emotions_given, resume;
    int method; /* es_extract_method */
    int hook;   /* es_hook_point */
    long n_queries, n_predict, stop_after;
    double scale; /* every saved vector is multiplied by it (default 1) */
    es_sampler_params sp;
} ex_opts;

/* One sample: the response to one query under one condition. */
typedef struct ex_sample {
    int label;       /* emotion index, -1 = neutral */
    int pair;        /* query index (generation) or pairs-file entry */
    int32_t *prompt; /* [n_prompt] */
    int n_prompt;
    int32_t *resp; /* [n_resp] given response (pairs mode), else NULL */
    int n_resp;
    bool done;
} ex_sample;

/* ---- paths ---------------------------------------------------------------------------- */

/* The project's query set: installed next to the binary, else in the source tree. */
static const char *default_queries(void) {
    static char path[PATH_MAX];
    return cli_data_path("queries/emosteer-queries.json", path, sizeof path);
}

static const char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* ---- options ---------------------------------------------------------------------------- */

static const char *method_choice(int i) {
    return i >= 0 && i < ES_EXTRACT_METHOD_COUNT ? es_extract_method_name((es_extract_method)i)
                                                 : NULL;
}

#define XO(f) offsetof(ex_opts, f)
static const cli_opt ex_own[] = {
    {"-o", "--output", "FILE", CLI_PATH, 0, 0, XO(out),
     "the emotion-vector file to write (emosteer GGUF)", NULL, NULL, 0, 0},
    {NULL, "--emotions", "LIST", CLI_STR, 0, 0, XO(emotions_spec),
     "comma-separated emotions (default " DEFAULT_EMOTIONS ")", NULL, NULL, 0, 0},
    {NULL, "--queries", "FILE", CLI_PATH, 0, 0, XO(queries),
     "query set, EmotionQuery or emosteer JSON (default: the "
     "project's,\ndata/queries/emosteer-queries.json)",
     NULL, NULL, 0, 0},
    {NULL, "--instructions", "FILE", CLI_PATH, 0, 0, XO(instructions),
     "conditioning instructions for emotions the query file has none\nfor (default: the project's "
     "query set)",
     NULL, NULL, 0, 0},
    {NULL, "--pairs", "FILE.jsonl", CLI_PATH, 0, 0, XO(pairs),
     "given responses instead of generating: one JSON object a line,\n{\"query\", \"emotion\", "
     "\"neutral\", "
     "\"emotional\"}; each response is\nteacher-forced after its condition's prompt",
     NULL, NULL, 0, 0},
    {NULL, "--method", NULL, CLI_CHOICE, 0, 0, XO(method),
     "how samples become vectors (mean_diff: the paper)", method_choice, NULL, CLI_SHOW_DEFAULT, 0},
    {NULL, "--hook", NULL, CLI_CHOICE, 0, 0, XO(hook), "where activations are read",
     cli_hook_choice, NULL, CLI_SHOW_DEFAULT, 0},
    {NULL, "--scale", "K", CLI_DOUBLE, 1e-6, 1e6, XO(scale),
     "multiply every saved vector by K, setting the unit of --steer\nalpha (recorded in the file's "
     "note)",
     NULL, NULL, CLI_SHOW_DEFAULT, 0},
    {NULL, "--n-queries", "N", CLI_LONG, 1, 1000000, XO(n_queries),
     "queries used, taken round-robin from every list of the set;\neach is asked neutrally and per "
     "emotion",
     NULL, NULL, CLI_SHOW_DEFAULT, 0},
    {NULL, "--resume", NULL, CLI_FLAG, 0, 0, XO(resume),
     "continue from OUT.partial, the checkpoint of an interrupted run\n(none there: a note, and "
     "the run starts fresh)",
     NULL, NULL, 0, 0},
    {NULL, "--stop-after", "N", CLI_LONG, 1, 2147483647, XO(stop_after),
     "stop once N samples are computed this run, keeping the\ncheckpoint (continue later with "
     "--resume)",
     NULL, NULL, 0, 0},
};
static const cli_opt_group ex_group = {"options", ex_own, sizeof ex_own / sizeof ex_own[0]};

static const cli_group_use ex_groups[] = {
    {&ex_group, 0, 0},
    {&cli_runtime_group, XO(rt), CLI_RT_CTX},
    {&cli_chat_group, XO(chat), CLI_CHAT_FLAG | CLI_CHAT_SYSTEM},
    {&cli_n_predict_group, XO(n_predict), 0},
    {&cli_sampling_group, XO(sp), 0},
};

static void ex_init(void *p) {
    ex_opts *o = p;
    cli_runtime_init(&o->rt);
    o->method = ES_EXTRACT_MEAN_DIFF;
    o->hook = ES_HOOK_BLOCK_OUT;
    o->n_queries = 100;
    o->n_predict = 48;
    o->scale = 1;
    o->sp = es_sampler_default_params();
}

const cli_command cli_extract_cmd = {
    "extract",
    "[-m MODEL] -o OUT.ev.gguf [options]",
    "Extracts emotion vectors: for each query the model answers under a neutral and under\n"
    "each emotion's conditioning; the mean hook activation over every response is a sample;\n"
    "the method turns the samples into one vector per emotion and layer, plus \"base\"\n"
    "(all emotions pooled against neutral).",
    "Prompts: with a chat format, system = the condition's instruction, user = the query.\n"
    "Without one (base models): '\"<query>\" I asked.\\n\"<prefix>' and the model goes on.\n"
    "Sample k uses seed S + k, so a run is reproducible and resumable.\n\n"
    "example: emosteer extract --pairs data/queries/demo-pairs.jsonl --scale 0.5 -o demo.ev.gguf",
    sizeof(ex_opts),
    ex_init,
    ex_groups,
    sizeof ex_groups / sizeof ex_groups[0],
    0,
};

static int parse_emotions(ex_opts *o, const char *list) {
    for (int i = 0; i < o->n_emotions; i++)
        free(o->emotions[i]);
    o->n_emotions = 0;
    const char *p = list;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 0 || n > ES_EV_MAX_NAME)
            return cli_usage_error(CMD, "--emotions: bad name in '%s'", list);
        if (o->n_emotions == MAX_EMOTIONS)
            return cli_usage_error(CMD, "--emotions: at most %d", MAX_EMOTIONS);
        char *name = strndup(p, n);
        if (!name) return cli_fail("--emotions");
        if (!strcmp(name, "neutral") || !strcmp(name, "base")) {
            free(name);
            return cli_usage_error(CMD, "--emotions: '%.*s' is reserved", (int)n, p);
        }
        for (int i = 0; i < o->n_emotions; i++)
            if (!strcmp(o->emotions[i], name)) {
                free(name);
                return cli_usage_error(CMD, "--emotions: '%.*s' given twice", (int)n, p);
            }
        o->emotions[o->n_emotions++] = name;
        p += n;
        if (*p == ',') {
            p++;
            if (!*p) return cli_usage_error(CMD, "--emotions: trailing comma in '%s'", list);
        }
    }
    if (o->n_emotions == 0) return cli_usage_error(CMD, "--emotions: empty list");
    return -1;
}

/* Returns -1 to go on, or an exit code. */
static int ex_parse(int argc, char **argv, ex_opts *o) {
    int rc = cli_opts_parse(&cli_extract_cmd, o, argc, argv, NULL);
    if (rc >= 0) return rc;
    if (!o->out) return cli_usage_error(CMD, "no output file: give one with -o OUT.ev.gguf");
    if ((rc = cli_check_output_file(CMD, o->out, "out.ev.gguf")) >= 0) return rc;
    if (!o->queries) o->queries = default_queries();
    o->emotions_given = o->emotions_spec != NULL;
    return parse_emotions(o, o->emotions_given ? o->emotions_spec : DEFAULT_EMOTIONS);
}

/* ---- progress ------------------------------------------------------------------------- */

typedef struct progress {
    int total, done_start; /* done_start: samples already done when the run began */
    double t0;
    int last_decile, last_done; /* what was shown last */
    bool tty;
} progress;

static void progress_show(progress *p, int done, bool final) {
    double dt = es_time_s() - p->t0;
    int ran = done - p->done_start;
    double rate = dt > 0 ? ran / dt : 0;
    double eta = rate > 0 ? (p->total - done) / rate : 0;
    int decile = p->total ? (int)(10LL * done / p->total) : 10;
    if (!p->tty && ((!final && decile == p->last_decile) || (final && done == p->last_done)))
        return;
    p->last_decile = decile;
    p->last_done = done;
    fprintf(stderr, "%sextract: %d/%d samples (%3.0f%%)  %.1f samples/s  ETA %d:%02d%s",
            p->tty ? "\r" : "", done, p->total, p->total ? 100.0 * done / p->total : 100.0, rate,
            (int)(eta / 60), (int)eta % 60, p->tty && !final ? "  " : "\n");
    fflush(stderr);
}

/* ---- samples ---------------------------------------------------------------------------- */

typedef struct ex_job {
    ex_opts *o;
    es_model *model;
    const es_vocab *vocab;
    es_chat_format fmt;
    es_query_set *qs, *qs_instr; /* queries; fallback instructions (may be NULL) */
    ex_sample *samples;
    int n_samples, n_queries;
    es_extractor *ex;
    int n_layer, n_embd;
    int n_empty; /* samples without response tokens (left out) */
} ex_job;

/* The conditioning text of `name` for the job's format: the system prompt (chat) or
 * the prefix (base model), from the query set, else the instruction file. */
static const char *instruction(const ex_job *j, const char *name) {
    const es_query_set *sets[2] = {j->qs, j->qs_instr};
    for (int s = 0; s < 2; s++) {
        const es_query_list *l = sets[s] ? es_query_set_find(sets[s], name) : NULL;
        const char *t = l ? (j->fmt == ES_CHAT_NONE ? l->prefix : l->system) : NULL;
        if (t) return t;
    }
    return NULL;
}

/* Fails (listing the available ones) unless every chosen emotion has an instruction. */
static int check_emotions(const ex_job *j) {
    const char *field = j->fmt == ES_CHAT_NONE ? "prefix" : "system";
    for (int e = 0; e < j->o->n_emotions; e++) {
        if (instruction(j, j->o->emotions[e])) continue;
        fprintf(
            stderr,
            "emosteer: unknown emotion '%s': no \"%s\" instruction for it in %s%s%s; available:",
            j->o->emotions[e], field, j->qs->source, j->qs_instr ? " or " : "",
            j->qs_instr ? j->qs_instr->source : "");
        int n = 0;
        const es_query_set *sets[2] = {j->qs, j->qs_instr};
        for (int s = 0; s < 2; s++)
            for (int i = 0; sets[s] && i < sets[s]->n_lists; i++) {
                const es_query_list *l = &sets[s]->lists[i];
                if (!strcmp(l->emotion, "neutral") || !instruction(j, l->emotion)) continue;
                bool seen = false; /* listed from the first set already */
                for (int k = 0; s == 1 && k < j->qs->n_lists; k++)
                    seen |=
                        !strcmp(j->qs->lists[k].emotion, l->emotion) && instruction(j, l->emotion);
                if (!seen) fprintf(stderr, "%s %s", n++ ? "," : "", l->emotion);
            }
        fprintf(stderr, "%s\n", n ? "" : " none");
        return ES_EXIT_FAIL;
    }
    return ES_EXIT_OK;
}

/* Generation mode: the first n_queries distinct queries taken round-robin over the
 * lists; sample k = q * (K + 1) + c with c = 0 neutral, 1 + e emotion e. */
static int build_generate(ex_job *j) {
    const es_query_set *qs = j->qs;
    const int K = j->o->n_emotions;
    int total = 0, max_len = 0;
    for (int i = 0; i < qs->n_lists; i++) {
        total += qs->lists[i].n;
        max_len = ES_MAX(max_len, qs->lists[i].n);
    }
    if (total == 0) {
        fprintf(stderr, "emosteer: %s holds no queries\n", qs->source);
        return ES_EXIT_FAIL;
    }
    const char **picked = calloc((size_t)ES_MIN(total, j->o->n_queries), sizeof *picked);
    if (!picked) return cli_fail("extract");
    int n = 0;
    for (int r = 0; r < max_len && n < j->o->n_queries; r++)
        for (int i = 0; i < qs->n_lists && n < j->o->n_queries; i++) {
            if (r >= qs->lists[i].n) continue;
            const char *t = qs->lists[i].queries[r].text;
            bool dup = false;
            for (int k = 0; k < n && !dup; k++)
                dup = !strcmp(picked[k], t);
            if (!dup) picked[n++] = t;
        }
    if (n < j->o->n_queries)
        fprintf(stderr, "extract: %s has %d distinct queries; using all of them\n", qs->source, n);
    j->n_queries = n;
    j->n_samples = n * (K + 1);
    j->samples = calloc((size_t)j->n_samples, sizeof *j->samples);
    if (!j->samples) {
        free(picked);
        return cli_fail("extract");
    }
    const char *neutral = instruction(j, "neutral");
    for (int q = 0; q < n; q++)
        for (int c = 0; c <= K; c++) {
            ex_sample *s = &j->samples[q * (K + 1) + c];
            s->label = c - 1;
            s->pair = q;
            const char *ins = c == 0 ? neutral : instruction(j, j->o->emotions[c - 1]);
            es_status st = j->fmt == ES_CHAT_NONE
                               ? es_extract_prompt(j->vocab, j->fmt, NULL, ins, picked[q],
                                                   &s->prompt, &s->n_prompt)
                               : es_extract_prompt(j->vocab, j->fmt, ins, NULL, picked[q],
                                                   &s->prompt, &s->n_prompt);
            if (st != ES_OK) {
                free(picked);
                return cli_fail("building a prompt");
            }
        }
    free(picked);
    return ES_EXIT_OK;
}

/* Pairs mode: every line gives a neutral sample and an emotional one (pair = line). */
static int build_pairs(ex_job *j) {
    es_extract_pair *pairs = NULL;
    int n_pairs = 0, rc = ES_EXIT_FAIL;
    if (es_extract_pairs_load(j->o->pairs, &pairs, &n_pairs) != ES_OK)
        return cli_fail("reading the pairs");
    if (!j->o->emotions_given) { /* the file's emotions, in order of appearance */
        for (int i = 0; i < j->o->n_emotions; i++)
            free(j->o->emotions[i]);
        j->o->n_emotions = 0;
        for (int p = 0; p < n_pairs; p++) {
            bool seen = false;
            for (int e = 0; e < j->o->n_emotions && !seen; e++)
                seen = !strcmp(j->o->emotions[e], pairs[p].emotion);
            if (seen) continue;
            if (j->o->n_emotions == MAX_EMOTIONS) {
                fprintf(stderr, "emosteer: %s: more than %d emotions\n", j->o->pairs, MAX_EMOTIONS);
                goto done;
            }
            if (!(j->o->emotions[j->o->n_emotions++] = es_strdup(pairs[p].emotion))) goto done;
        }
    }
    if ((rc = check_emotions(j)) != ES_EXIT_OK) goto done;
    rc = ES_EXIT_FAIL;
    j->samples = calloc((size_t)n_pairs * 2, sizeof *j->samples);
    if (!j->samples) goto done;
    const char *neutral = instruction(j, "neutral");
    int skipped = 0;
    for (int p = 0; p < n_pairs; p++) {
        int e = -1;
        for (int k = 0; k < j->o->n_emotions; k++)
            if (!strcmp(j->o->emotions[k], pairs[p].emotion)) e = k;
        if (e < 0) {
            skipped++;
            continue;
        }
        for (int c = 0; c < 2; c++) {
            ex_sample *s = &j->samples[j->n_samples++];
            s->label = c ? e : -1;
            s->pair = p;
            const char *ins = c ? instruction(j, pairs[p].emotion) : neutral;
            es_status st = j->fmt == ES_CHAT_NONE
                               ? es_extract_prompt(j->vocab, j->fmt, NULL, ins, pairs[p].query,
                                                   &s->prompt, &s->n_prompt)
                               : es_extract_prompt(j->vocab, j->fmt, ins, NULL, pairs[p].query,
                                                   &s->prompt, &s->n_prompt);
            if (st == ES_OK)
                st = es_extract_tokenize_response(
                    j->vocab, c ? pairs[p].emotional : pairs[p].neutral, &s->resp, &s->n_resp);
            if (st != ES_OK) {
                fprintf(stderr, "emosteer: %s:%d: %s\n", j->o->pairs, pairs[p].line,
                        es_last_error());
                goto done;
            }
        }
    }
    if (skipped) fprintf(stderr, "extract: %d pairs of other emotions skipped\n", skipped);
    j->n_queries = n_pairs - skipped;
    rc = ES_EXIT_OK;
done:
    if (rc == ES_EXIT_FAIL && !*es_last_error()) fprintf(stderr, "emosteer: out of memory\n");
    es_extract_pairs_free(pairs, n_pairs);
    return rc;
}

/* The text that identifies a run in its checkpoint: the model, the settings and a
 * hash of every sample's tokens. */
static char *settings_text(const ex_job *j) {
    const ex_opts *o = j->o;
    es_model_info mi;
    es_model_get_info(j->model, &mi);
    uint64_t h = ES_FNV_INIT;
    for (int i = 0; i < j->n_samples; i++) {
        const ex_sample *s = &j->samples[i];
        int32_t hdr[4] = {s->label, s->pair, s->n_prompt, s->n_resp};
        h = es_fnv1a(h, hdr, sizeof hdr);
        h = es_fnv1a(h, s->prompt, (size_t)s->n_prompt * sizeof *s->prompt);
        if (s->resp) h = es_fnv1a(h, s->resp, (size_t)s->n_resp * sizeof *s->resp);
    }
    char emo[MAX_EMOTIONS * (ES_EV_MAX_NAME + 1) + 1] = "";
    for (int e = 0; e < o->n_emotions; e++) {
        if (e) strcat(emo, ",");
        strcat(emo, o->emotions[e]);
    }
    const es_sampler_params *sp = &o->sp;
    char *t = NULL;
    int n = asprintf(
        &t,
        "mode=%s\nmodel=%s\nmodel_name=%s\narch=%s\nn_params=%llu\nhook=%s\nchat=%s\n"
        "emotions=%s\nqueries=%s\nn_queries=%d\nsamples=%d\nsample_hash=%016llx\n"
        "n_predict=%ld\nsampling=%g,%d,%g,%g,%g,%g,%g,%d,%llu\n",
        o->pairs ? "pairs" : "generate", base_name(o->rt.model), mi.name, mi.arch,
        (unsigned long long)mi.n_params, es_hook_name(o->hook), es_chat_format_name(j->fmt), emo,
        o->pairs ? base_name(o->pairs) : base_name(o->queries), j->n_queries, j->n_samples,
        (unsigned long long)h, o->pairs ? 0L : o->n_predict, (double)sp->temp, sp->top_k,
        (double)sp->top_p, (double)sp->min_p, (double)sp->repeat_penalty,
        (double)sp->presence_penalty, (double)sp->frequency_penalty, sp->penalty_last_n,
        (unsigned long long)sp->seed);
    return n < 0 ? NULL : t;
}

/* Checkpoint records of a resumed run go straight into the extractor. */
static es_status on_record(void *user, int sample, int n_resp, const float *mean,
                           const float *norm) {
    ex_job *j = user;
    if (sample < 0 || sample >= j->n_samples)
        return es_error(ES_ERR_FORMAT, "checkpoint: sample %d outside [0, %d)", sample,
                        j->n_samples);
    ex_sample *s = &j->samples[sample];
    if (s->done) return es_error(ES_ERR_FORMAT, "checkpoint: sample %d appears twice", sample);
    s->done = true;
    if (n_resp == 0) {
        j->n_empty++;
        return ES_OK;
    }
    return es_extractor_add(j->ex, s->label, s->pair, mean, norm);
}

/* ---- the run ----------------------------------------------------------------------------- */

typedef struct ex_stats {
    double t_gen, t_tf;
    long gen_tokens, tf_tokens;
} ex_stats;

/* Generates the responses of samples idx[0..n) (consecutive runs of sample indices
 * share one es_generate call; sample k uses seed S + k) into full[i]. */
static int generate_batch(ex_job *j, es_context *ctx, const int *idx, int n, int32_t **full,
                          int *n_full, ex_stats *stats) {
    es_gen_params gp = es_gen_default_params();
    gp.n_predict = (int)j->o->n_predict;
    const char *eot = es_chat_end_of_turn(j->fmt);
    const char *stops[1] = {eot};
    if (j->fmt != ES_CHAT_NONE && eot[0]) gp.stops = stops, gp.n_stops = 1;
    const int32_t **prompts = calloc((size_t)n, sizeof *prompts);
    int *n_prompt = calloc((size_t)n, sizeof *n_prompt);
    es_gen_output *outs = calloc((size_t)n, sizeof *outs);
    int rc = ES_EXIT_FAIL;
    if (!prompts || !n_prompt || !outs) goto done;
    for (int i = 0; i < n; i++) {
        prompts[i] = j->samples[idx[i]].prompt;
        n_prompt[i] = j->samples[idx[i]].n_prompt;
    }
    double t0 = es_time_s();
    for (int a = 0; a < n;) {
        int b = a + 1;
        while (b < n && idx[b] == idx[b - 1] + 1)
            b++;
        gp.sampling = j->o->sp;
        gp.sampling.seed = j->o->sp.seed + (uint64_t)idx[a];
        gp.first_seq = a;
        if (es_generate(ctx, j->vocab, prompts + a, n_prompt + a, b - a, &gp, NULL, NULL,
                        outs + a) != ES_OK) {
            cli_fail("generating");
            goto done;
        }
        a = b;
    }
    stats->t_gen += es_time_s() - t0;
    for (int i = 0; i < n; i++) {
        int np = n_prompt[i], nr = outs[i].n_tokens;
        stats->gen_tokens += nr;
        if (!(full[i] = malloc(((size_t)np + (size_t)nr) * sizeof *full[i]))) goto done;
        memcpy(full[i], prompts[i], (size_t)np * sizeof *full[i]);
        if (nr) memcpy(full[i] + np, outs[i].tokens, (size_t)nr * sizeof *full[i]);
        n_full[i] = np + nr;
    }
    rc = ES_EXIT_OK;
done:
    for (int i = 0; outs && i < n; i++)
        es_gen_output_free(&outs[i]);
    free(outs);
    free(prompts);
    free(n_prompt);
    return rc;
}

static int ex_run(ex_job *j, es_extract_ckpt *ckpt, int n_loaded) {
    const ex_opts *o = j->o;
    const int B = o->rt.batch, L = j->n_layer, d = j->n_embd;
    const bool gen = !o->pairs;
    int max_len = 0;
    for (int i = 0; i < j->n_samples; i++)
        max_len = ES_MAX(max_len,
                         j->samples[i].n_prompt + (gen ? (int)o->n_predict : j->samples[i].n_resp));
    es_context_params cp = es_context_default_params();
    cp.n_ctx = max_len + 1;
    cp.n_seq_max = B;
    cp.n_batch = ES_MAX(64, ES_MIN(1024, B * max_len));
    cli_runtime_apply(&o->rt, &cp);
    es_model_info mi;
    es_model_get_info(j->model, &mi);
    if (max_len + 1 > mi.n_ctx_train) {
        fprintf(stderr,
                "emosteer: a sample needs %d positions; the model was trained for %d (lower -n)\n",
                max_len + 1, mi.n_ctx_train);
        return ES_EXIT_FAIL;
    }
    es_context *ctx = NULL;
    if (es_context_create(j->model, &cp, &ctx) != ES_OK) return cli_fail("creating the context");

    int rc = ES_EXIT_FAIL;
    int *idx = calloc((size_t)B, sizeof *idx), *n_full = calloc((size_t)B, sizeof *n_full);
    int *n_resp = calloc((size_t)B, sizeof *n_resp);
    int32_t **full = calloc((size_t)B, sizeof *full);
    es_extract_seq *seqs = calloc((size_t)B, sizeof *seqs);
    float *mean = malloc((size_t)B * (size_t)L * (size_t)d * sizeof *mean);
    float *norm = malloc((size_t)B * (size_t)L * sizeof *norm);
    if (!idx || !n_full || !n_resp || !full || !seqs || !mean || !norm) {
        fprintf(stderr, "emosteer: out of memory for a batch of %d\n", B);
        goto done;
    }
    progress pr = {.total = j->n_samples,
                   .done_start = n_loaded,
                   .t0 = es_time_s(),
                   .last_decile = -1,
                   .last_done = -1,
                   .tty = isatty(fileno(stderr)) != 0};
    ex_stats stats = {0};
    int done_count = n_loaded, ran = 0, next = 0;
    progress_show(&pr, done_count, false);
    while (next < j->n_samples) {
        int n = 0;
        for (; next < j->n_samples && n < B; next++)
            if (!j->samples[next].done) idx[n++] = next;
        if (n == 0) break;
        if (gen) {
            if (generate_batch(j, ctx, idx, n, full, n_full, &stats) != ES_EXIT_OK) goto done;
        } else {
            for (int i = 0; i < n; i++) {
                const ex_sample *s = &j->samples[idx[i]];
                full[i] = malloc(((size_t)s->n_prompt + (size_t)s->n_resp) * sizeof *full[i]);
                if (!full[i]) goto done;
                memcpy(full[i], s->prompt, (size_t)s->n_prompt * sizeof *full[i]);
                if (s->n_resp)
                    memcpy(full[i] + s->n_prompt, s->resp, (size_t)s->n_resp * sizeof *full[i]);
                n_full[i] = s->n_prompt + s->n_resp;
            }
        }
        for (int i = 0; i < n; i++) {
            seqs[i] = (es_extract_seq){full[i], n_full[i], j->samples[idx[i]].n_prompt};
            stats.tf_tokens += n_full[i];
        }
        double t0 = es_time_s();
        if (es_extract_response_means(ctx, o->hook, seqs, n, mean, norm, n_resp) != ES_OK) {
            cli_fail("teacher forcing");
            goto done;
        }
        stats.t_tf += es_time_s() - t0;
        for (int i = 0; i < n; i++) {
            const float *m = mean + (size_t)i * (size_t)L * (size_t)d,
                        *nm = norm + (size_t)i * (size_t)L;
            ex_sample *s = &j->samples[idx[i]];
            if (es_extract_ckpt_append(ckpt, idx[i], n_resp[i], m, nm) != ES_OK) {
                cli_fail("writing the checkpoint");
                goto done;
            }
            s->done = true;
            if (n_resp[i] == 0)
                j->n_empty++;
            else if (es_extractor_add(j->ex, s->label, s->pair, m, nm) != ES_OK) {
                cli_fail("collecting a sample");
                goto done;
            }
            free(full[i]);
            full[i] = NULL;
        }
        done_count += n;
        ran += n;
        progress_show(&pr, done_count, false);
        if (o->stop_after && ran >= o->stop_after && done_count < j->n_samples) break;
    }
    progress_show(&pr, done_count, true);
    if (gen)
        fprintf(stderr, "extract: generated %ld tokens in %.2f s (%.1f tok/s)\n", stats.gen_tokens,
                stats.t_gen, stats.t_gen > 0 ? stats.gen_tokens / stats.t_gen : 0.0);
    fprintf(stderr, "extract: teacher-forced %ld tokens in %.2f s (%.1f tok/s)\n", stats.tf_tokens,
            stats.t_tf, stats.t_tf > 0 ? stats.tf_tokens / stats.t_tf : 0.0);
    rc = ES_EXIT_OK;
done:
    for (int i = 0; full && i < B; i++)
        free(full[i]);
    free(full);
    free(idx);
    free(n_full);
    free(n_resp);
    free(seqs);
    free(mean);
    free(norm);
    es_context_free(ctx);
    return rc;
}

/* Multiplies every vector of set by k (act_norm unchanged). */
static es_status scale_set(es_ev_set *set, float k) {
    int d = es_ev_set_n_embd(set), L = es_ev_set_n_layer(set);
    float *v = malloc((size_t)d * sizeof *v); // [n_embd]
    if (!v) return es_error(ES_ERR_NOMEM, "extract: out of memory scaling the vectors");
    es_status st = ES_OK;
    for (int e = 0; st == ES_OK && e < es_ev_set_n_emotions(set); e++) {
        const char *name = es_ev_set_emotion(set, e);
        for (int l = 0; st == ES_OK && l < L; l++) {
            const float *src = es_ev_set_get(set, name, l);
            if (!src) continue;
            for (int i = 0; i < d; i++)
                v[i] = src[i] * k;
            st = es_ev_set_put(set, name, l, v);
        }
    }
    free(v);
    return st;
}

/* Computes the vectors, adds the metadata and writes the file. */
static int ex_finish(ex_job *j) {
    const ex_opts *o = j->o;
    es_extract_params ep = es_extract_default_params();
    ep.method = o->method;
    es_ev_set *set = NULL;
    if (es_extractor_compute(j->ex, &ep, o->hook, &set) != ES_OK)
        return cli_fail("computing the vectors");
    if (o->scale != 1 && scale_set(set, (float)o->scale) != ES_OK) {
        es_ev_set_free(set);
        return cli_fail("scaling the vectors");
    }
    es_model_info mi;
    es_model_get_info(j->model, &mi);
    es_ev_meta meta;
    es_ev_set_get_meta(set, &meta);
    char *method = es_strdup(meta.method), *policy = es_strdup(meta.token_policy);
    char note[512], query_set[512];
    if (o->pairs) {
        snprintf(query_set, sizeof query_set, "pairs:%s", base_name(o->pairs));
        snprintf(note, sizeof note, "emosteer extract --pairs: %d pairs, chat %s, hook %s",
                 j->n_queries, es_chat_format_name(j->fmt), es_hook_name(o->hook));
    } else {
        snprintf(query_set, sizeof query_set, "%s", base_name(o->queries));
        snprintf(note, sizeof note,
                 "emosteer extract: %d queries x (neutral + %d emotions), -n %ld, temp %g, seed "
                 "%llu, chat %s",
                 j->n_queries, o->n_emotions, o->n_predict, (double)o->sp.temp,
                 (unsigned long long)o->sp.seed, es_chat_format_name(j->fmt));
    }
    meta.method = method;
    meta.token_policy = policy;
    meta.source_model = mi.name && *mi.name ? mi.name : base_name(o->rt.model);
    meta.query_set = query_set;
    if (o->scale != 1) {
        size_t n = strlen(note);
        snprintf(note + n, sizeof note - n, "; vectors x %g (--scale)", o->scale);
    }
    meta.note = note;
    int rc = ES_EXIT_OK;
    /* the recommended steering layers for this depth (docs/steering-demo.md) */
    int32_t def_layers[ES_EV_MAX_LAYER];
    int n_def = es_ev_recommended_layers(mi.n_layer, def_layers, ES_EV_MAX_LAYER);
    if (!method || !policy || es_ev_set_set_meta(set, &meta) != ES_OK)
        rc = cli_fail("metadata");
    else if (es_ev_set_set_default_layers(set, def_layers, n_def) != ES_OK)
        rc = cli_fail("default layers");
    else if (es_ev_set_save(set, o->out) != ES_OK)
        rc = cli_fail("writing the vectors");
    free(method);
    free(policy);
    if (rc == ES_EXIT_OK) {
        fprintf(stderr,
                "extract: wrote %s: %d emotions + base, %d layers, hook %s, method %s, %d samples "
                "in the "
                "smallest class (%d neutral)\n",
                o->out, o->n_emotions, es_ev_set_n_layer(set), es_hook_name(o->hook),
                es_extract_method_name(o->method), meta.n_samples,
                es_extractor_n_samples(j->ex, -1));
    }
    es_ev_set_free(set);
    return rc;
}

int cmd_extract(int argc, char **argv) {
    ex_opts o;
    int rc = ex_parse(argc, argv, &o);
    ex_job j = {.o = &o};
    es_extract_ckpt *ckpt = NULL;
    char *settings = NULL, *partial = NULL;
    int n_loaded = 0;
    bool had_partial = false,
         ckpt_opened = false; /* OUT.partial was there before this run; this run opened it */
    if (rc >= 0) goto done;
    rc = ES_EXIT_FAIL;
    if (!o.pairs || strcmp(o.queries, default_queries()) != 0 || access(o.queries, R_OK) == 0) {
        if (es_query_set_load(o.queries, &j.qs) != ES_OK) {
            cli_fail("reading the queries");
            goto done;
        }
    }
    const char *instr = o.instructions ? o.instructions : default_queries();
    if (strcmp(instr, o.queries) != 0 && (o.instructions || access(instr, R_OK) == 0) &&
        es_query_set_load(instr, &j.qs_instr) != ES_OK) {
        cli_fail("reading the instructions");
        goto done;
    }
    if (!j.qs) { /* --pairs without a readable default query set: instructions only */
        j.qs = j.qs_instr;
        j.qs_instr = NULL;
        if (!j.qs) {
            fprintf(stderr, "emosteer: no instructions: give --queries or --instructions\n");
            goto done;
        }
    }
    es_model_params mp = es_model_default_params();
    if (es_model_load(o.rt.model, &mp, &j.model) != ES_OK) {
        cli_fail("loading the model");
        goto done;
    }
    if (!(j.vocab = es_model_vocab(j.model))) {
        fprintf(stderr, "emosteer: %s has no tokenizer\n", o.rt.model);
        goto done;
    }
    if ((rc = cli_chat_format(j.model, o.chat.tmpl_name, false, &j.fmt)) != ES_EXIT_OK) goto done;
    rc = ES_EXIT_FAIL;
    es_model_info mi;
    es_model_get_info(j.model, &mi);
    j.n_layer = mi.n_layer;
    j.n_embd = mi.n_embd;
    if (o.pairs) {
        if (build_pairs(&j) != ES_EXIT_OK) goto done;
    } else {
        if (check_emotions(&j) != ES_EXIT_OK || build_generate(&j) != ES_EXIT_OK) goto done;
    }
    if (es_extractor_create(j.n_layer, j.n_embd, (const char *const *)o.emotions, o.n_emotions,
                            &j.ex) != ES_OK) {
        cli_fail("extract");
        goto done;
    }
    if (!(settings = settings_text(&j)) || asprintf(&partial, "%s.partial", o.out) < 0) {
        partial = NULL;
        fprintf(stderr, "emosteer: out of memory\n");
        goto done;
    }
    had_partial = access(partial, F_OK) == 0;
    if (!o.resume && had_partial)
        fprintf(stderr, "extract: starting over (%s exists; --resume continues it)\n", partial);
    if (o.resume && !had_partial)
        fprintf(stderr, "extract: no checkpoint at %s; starting fresh\n", partial);
    if (es_extract_ckpt_open(partial, settings, j.n_layer, j.n_embd, o.resume, on_record, &j,
                             &n_loaded, &ckpt) != ES_OK) {
        cli_fail("opening the checkpoint");
        goto done;
    }
    ckpt_opened = true;
    if (o.resume && had_partial)
        fprintf(stderr, "extract: resumed %d samples from %s\n", n_loaded, partial);
    fprintf(
        stderr,
        "extract: %d samples (%d %s x (neutral + %d emotions)), hook %s, chat %s, %d to compute\n",
        j.n_samples, j.n_queries, o.pairs ? "pairs" : "queries", o.n_emotions, es_hook_name(o.hook),
        es_chat_format_name(j.fmt), j.n_samples - n_loaded);
    double t0 = es_time_s();
    if (ex_run(&j, ckpt, n_loaded) != ES_EXIT_OK) goto done;
    int n_done = 0;
    for (int i = 0; i < j.n_samples; i++)
        n_done += j.samples[i].done;
    if (n_done < j.n_samples) {
        fprintf(stderr,
                "extract: stopped after %d of %d samples as asked; continue with --resume\n",
                n_done, j.n_samples);
        rc = ES_EXIT_OK;
        goto done;
    }
    if (j.n_empty)
        fprintf(stderr, "extract: %d samples had an empty response and were left out\n", j.n_empty);
    if ((rc = ex_finish(&j)) != ES_EXIT_OK) goto done;
    es_extract_ckpt_close(ckpt);
    ckpt = NULL;
    if (unlink(partial) != 0) fprintf(stderr, "extract: could not remove %s\n", partial);
    fprintf(stderr, "extract: done in %.2f s\n", es_time_s() - t0);
done:
    es_extract_ckpt_close(ckpt);
    /* a failed run leaves no checkpoint of its own that holds nothing; one with samples
     * in it is kept for --resume, and one that was there before is never removed */
    if (rc != ES_EXIT_OK && ckpt_opened && !had_partial) {
        int n_done = 0;
        for (int i = 0; j.samples && i < j.n_samples; i++)
            n_done += j.samples[i].done;
        if (n_done == 0)
            unlink(partial);
        else
            fprintf(stderr, "extract: kept the checkpoint %s (%d samples): --resume continues it\n",
                    partial, n_done);
    }
    free(settings);
    free(partial);
    for (int i = 0; j.samples && i < j.n_samples; i++) {
        free(j.samples[i].prompt);
        free(j.samples[i].resp);
    }
    free(j.samples);
    es_extractor_free(j.ex);
    es_query_set_free(j.qs);
    es_query_set_free(j.qs_instr);
    es_model_free(j.model);
    for (int i = 0; i < o.n_emotions; i++)
        free(o.emotions[i]);
    return rc;
}
