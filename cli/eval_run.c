/*
 * eval_run.c — the generation and scoring loop of `emosteer eval`.
 *
 * The grid (emotion, alpha, sample, query) is walked in order; the items not yet in
 * generations.jsonl are taken B at a time. Each sequence of a batch gets its own
 * steering set (alpha * the emotion's vector; none at alpha 0). Sampler seeds: the
 * response to query q (its position in the query list) is drawn with seed
 * es_eval_seed(S, emotion, alpha, "*", sample) + q, so a record's seed does not depend
 * on the batch size, the order or on resuming, and the items of one (emotion, alpha,
 * sample) with consecutive queries share one es_generate call (es_generate gives
 * sequence i of a call the seed `sampling.seed + i`).
 *
 * Each finished batch is scored — lexicon shares and valence; with --judge the judge's
 * emotion probabilities and its answer to "is this on the topic of the query?"
 * (eval_topic.c), else topic = cosine of the mean hidden states of response and query;
 * perplexity of the response after its prompt; the model passes run with the steering
 * removed from the context — and every record is appended (and flushed) to the log.
 */
#include "eval_cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *const eval_all_labels[2 * EVAL_N_LEX] = {
    "anger",       "disgust",       "fear",       "joy",       "sadness",       "neutral",
    "judge:anger", "judge:disgust", "judge:fear", "judge:joy", "judge:sadness", "judge:neutral"};

/* ---- progress ------------------------------------------------------------------- */

typedef struct progress {
    int total, done_start; /* done_start: responses already in the log at the start */
    double t0;
    long tokens; /* tokens generated this run */
    int last_decile, last_done;
    bool tty;
} progress;

static void progress_show(progress *p, int done, bool final) {
    double dt = es_time_s() - p->t0;
    int ran = done - p->done_start;
    double rate = dt > 0 ? ran / dt : 0, eta = rate > 0 ? (p->total - done) / rate : 0;
    int decile = p->total ? (int)(10LL * done / p->total) : 10;
    if (!p->tty && ((!final && decile == p->last_decile) || (final && done == p->last_done)))
        return;
    p->last_decile = decile;
    p->last_done = done;
    int width = 24, fill = p->total ? (int)((long long)width * done / p->total) : width;
    char bar[32];
    for (int i = 0; i < width; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[width] = '\0';
    fprintf(stderr,
            "%seval: [%s] %d/%d responses (%3.0f%%)  %.2f resp/s  %.1f tok/s  ETA %d:%02d%s",
            p->tty ? "\r" : "", bar, done, p->total, p->total ? 100.0 * done / p->total : 100.0,
            rate, dt > 0 ? p->tokens / dt : 0.0, (int)(eta / 60), (int)eta % 60,
            p->tty && !final ? "  " : "\n");
    fflush(stderr);
}

/* ---- scoring -------------------------------------------------------------------- */

const char *eval_model_scorer(const eval_opts *o) {
    return o->judge ? "judge" : o->classifier ? "classifier" : o->nli ? "nli" : NULL;
}

const char *eval_model_scorer_path(const eval_opts *o) {
    return o->judge ? o->judge : o->classifier ? o->classifier : o->nli;
}

int eval_judge_texts(eval_job *j, const char *const *texts, int n, double *probs) {
    const int chunk = 64;
    for (int a = 0; a < n; a += chunk) {
        int m = ES_MIN(chunk, n - a);
        if (es_judge_score(j->judge, texts + a, m, probs + (size_t)a * EVAL_N_LEX) != ES_OK)
            return cli_fail("judging the responses");
    }
    return ES_EXIT_OK;
}

/* The scoring state of a run. */
typedef struct scorer {
    es_context *topic_ctx; /* the eval model's generation context, or a judge-model context */
    es_embed_params ep;
    int d;               /* embedding width */
    float *query_emb;    /* [n_queries][d] */
    float *resp_emb;     /* [B][d] */
    double *judge_probs; /* [B][EVAL_N_LEX] the judge's or classifier's */
    double *extra;       /* [B][n_extra] the classifier's extra labels (NULL: none) */
    double *row;         /* [n_labels] one record's scores */
    double *topic;       /* [B] judge topic scores */
    int *qidx;           /* [B] query of each response */
    double *nll, *ppl;   /* [B] */
    es_ppl_pair *pairs;  /* [B] */
} scorer;

static int scorer_init(eval_job *j, es_context *gen_ctx, scorer *sc, es_context **own_ctx) {
    const int B = (int)j->o->rt.batch;
    *own_ctx = NULL;
    sc->ep = es_embed_default_params();
    sc->topic_ctx = gen_ctx;
    sc->d = j->mi.n_embd;
    if (j->judge_model) { /* topic adherence: a question to the judge */
        es_model_info ji;
        es_model_get_info(j->judge_model, &ji);
        es_context_params cp = es_context_default_params();
        cp.n_ctx = ES_MIN(ji.n_ctx_train, 1024);
        cp.n_seq_max = B;
        cp.n_batch = 512;
        if (j->o->rt.n_threads > 0)
            cp.n_threads = j->o->rt.n_threads; /* the judge: default numerics */
        if (es_context_create(j->judge_model, &cp, own_ctx) != ES_OK)
            return cli_fail("creating the judge model's topic context");
        sc->topic_ctx = *own_ctx;
    }
    sc->query_emb = malloc((size_t)j->n_queries * (size_t)sc->d * sizeof *sc->query_emb);
    sc->resp_emb = malloc((size_t)B * (size_t)sc->d * sizeof *sc->resp_emb);
    sc->judge_probs = malloc((size_t)B * EVAL_N_LEX * sizeof *sc->judge_probs);
    sc->topic = malloc((size_t)B * sizeof *sc->topic);
    sc->row = malloc((size_t)j->n_labels * sizeof *sc->row);
    if (j->n_extra > 0 &&
        !(sc->extra = malloc((size_t)B * (size_t)j->n_extra * sizeof *sc->extra))) {
        free(sc->row);
        sc->row = NULL;
    }
    sc->qidx = malloc((size_t)B * sizeof *sc->qidx);
    sc->nll = malloc((size_t)B * sizeof *sc->nll);
    sc->ppl = malloc((size_t)B * sizeof *sc->ppl);
    sc->pairs = calloc((size_t)B, sizeof *sc->pairs);
    const char **texts = malloc((size_t)j->n_queries * sizeof *texts);
    if (!sc->query_emb || !sc->resp_emb || !sc->judge_probs || !sc->topic || !sc->qidx ||
        !sc->nll || !sc->ppl || !sc->pairs || !sc->row || !texts) {
        free(texts);
        fprintf(stderr, "emosteer: out of memory for the scorers\n");
        return ES_EXIT_FAIL;
    }
    for (int q = 0; q < j->n_queries; q++)
        texts[q] = j->queries[q].text;
    es_status st =
        j->judge ? ES_OK : es_embed_texts(gen_ctx, texts, j->n_queries, &sc->ep, sc->query_emb);
    free(texts);
    if (st != ES_OK) return cli_fail("embedding the queries");
    return ES_EXIT_OK;
}

static void scorer_free(scorer *sc) {
    free(sc->query_emb);
    free(sc->resp_emb);
    free(sc->judge_probs);
    free(sc->extra);
    free(sc->row);
    free(sc->topic);
    free(sc->qidx);
    free(sc->nll);
    free(sc->ppl);
    free(sc->pairs);
}

/* Scores the n responses of a batch and appends their records. ctx has no steering. */
static int score_and_append(eval_job *j, es_context *ctx, scorer *sc, const int *idx, int n,
                            es_gen_output *outs) {
    const char *texts[1024];
    for (int i = 0; i < n; i++) {
        const eval_query *q = &j->queries[j->items[idx[i]].q];
        texts[i] = outs[i].text ? outs[i].text : "";
        sc->pairs[i] = (es_ppl_pair){q->prompt, q->n_prompt, outs[i].tokens, outs[i].n_tokens};
    }
    if (es_score_ppl(ctx, sc->pairs, n, sc->nll, sc->ppl) != ES_OK)
        return cli_fail("perplexity of the responses");
    for (int i = 0; i < n; i++)
        sc->qidx[i] = j->items[idx[i]].q;
    if (j->judge) {
        if (eval_judge_texts(j, texts, n, sc->judge_probs) != ES_EXIT_OK ||
            eval_judge_topic(j, sc->topic_ctx, texts, sc->qidx, n, sc->topic) != ES_EXIT_OK)
            return ES_EXIT_FAIL;
    } else if (es_embed_texts(sc->topic_ctx, texts, n, &sc->ep, sc->resp_emb) != ES_OK) {
        return cli_fail("embedding the responses");
    }
    if (j->cls && es_cls_scorer_score(j->cls, texts, n, sc->judge_probs, sc->extra) != ES_OK)
        return cli_fail(j->o->nli ? "scoring with the NLI model" : "scoring with the classifier");
    for (int i = 0; i < n; i++) {
        const eval_item *it = &j->items[idx[i]];
        const eval_query *q = &j->queries[it->q];
        double *scores = sc->row;
        es_lexicon_score ls;
        if (es_lexicon_score_text(j->lex, texts[i], strlen(texts[i]), &ls) != ES_OK)
            return cli_fail("lexicon scoring");
        es_scores_from_lexicon(&ls, ES_EVAL_LEXICON_PRIOR, scores);
        if (j->judge || j->cls)
            memcpy(scores + EVAL_N_LEX, sc->judge_probs + (size_t)i * EVAL_N_LEX,
                   EVAL_N_LEX * sizeof *scores);
        if (j->n_extra > 0)
            memcpy(scores + 2 * EVAL_N_LEX, sc->extra + (size_t)i * j->n_extra,
                   (size_t)j->n_extra * sizeof *scores);
        es_gen_record rec = es_gen_record_empty();
        rec.emotion = j->emotions[it->e];
        rec.alpha = j->alphas[it->a];
        rec.query_id = q->id;
        rec.sample = it->s;
        rec.seed = it->seed;
        rec.prompt = q->text;
        rec.response = (char *)texts[i];
        rec.n_tokens = outs[i].n_tokens;
        rec.n_labels = j->n_labels;
        rec.scores = scores;
        rec.valence = ls.valence;
        rec.ppl = sc->ppl[i];
        /* an empty response has no topic */
        if (!texts[i][0])
            rec.topic = NAN;
        else if (j->judge)
            rec.topic = sc->topic[i];
        else
            rec.topic = es_cosine(sc->resp_emb + (size_t)i * (size_t)sc->d,
                                  sc->query_emb + (size_t)it->q * (size_t)sc->d, sc->d);
        if (es_genlog_append(j->log, &rec) != ES_OK) return cli_fail("writing generations.jsonl");
    }
    return ES_EXIT_OK;
}

/* ---- generation ------------------------------------------------------------------- */

/* Generates items idx[0..n): steering per sequence, one es_generate call per run of
 * consecutive queries of one (emotion, alpha, sample). */
static int generate_batch(eval_job *j, es_context *ctx, const int *idx, int n, es_gen_output *outs,
                          double *t_gen) {
    const int32_t *prompts[1024];
    int n_prompt[1024];
    es_gen_params gp = es_gen_default_params();
    gp.n_predict = (int)j->o->n_predict;
    const char *eot = es_chat_end_of_turn(j->fmt);
    const char *stops[1] = {eot};
    if (j->fmt != ES_CHAT_NONE && eot[0]) gp.stops = stops, gp.n_stops = 1;
    for (int i = 0; i < n; i++) {
        const eval_item *it = &j->items[idx[i]];
        prompts[i] = j->queries[it->q].prompt;
        n_prompt[i] = j->queries[it->q].n_prompt;
        if (es_context_set_steering(ctx, i, j->steer[it->e * j->n_alphas + it->a]) != ES_OK)
            return cli_fail("steering");
    }
    double t0 = es_time_s();
    for (int a = 0; a < n;) {
        const eval_item *first = &j->items[idx[a]];
        int b = a + 1;
        while (b < n) {
            const eval_item *x = &j->items[idx[b]], *prev = &j->items[idx[b - 1]];
            if (x->e != first->e || x->a != first->a || x->s != first->s ||
                j->queries[x->q].index != j->queries[prev->q].index + 1)
                break;
            b++;
        }
        gp.sampling = j->o->sp;
        gp.sampling.seed = first->seed;
        gp.first_seq = a;
        if (es_generate(ctx, j->vocab, prompts + a, n_prompt + a, b - a, &gp, NULL, NULL,
                        outs + a) != ES_OK)
            return cli_fail("generating");
        a = b;
    }
    *t_gen += es_time_s() - t0;
    if (es_context_set_steering(ctx, -1, NULL) != ES_OK) return cli_fail("removing the steering");
    return ES_EXIT_OK;
}

void eval_shard_range(int n_items, int batch, int k, int n, int *lo, int *hi) {
    long long n_batches = (n_items + (long long)batch - 1) / batch;
    long long b_lo = (k - 1) * n_batches / n, b_hi = k * n_batches / n;
    *lo = (int)ES_MIN(b_lo * batch, (long long)n_items);
    *hi = (int)ES_MIN(b_hi * batch, (long long)n_items);
}

/* The shard (1-based) of o->merge's N that holds item i, for messages. */
static int shard_of(const eval_job *j, int i, int n) {
    for (int k = 1; k <= n; k++) {
        int lo, hi;
        eval_shard_range(j->n_items, (int)j->o->rt.batch, k, n, &lo, &hi);
        if (i >= lo && i < hi) return k;
    }
    return 0;
}

int eval_run(eval_job *j) {
    const eval_opts *o = j->o;
    const int B = (int)o->rt.batch;
    int max_prompt = 1, todo = 0;
    for (int q = 0; q < j->n_queries; q++)
        max_prompt = ES_MAX(max_prompt, j->queries[q].n_prompt);
    int first_todo = -1, n_range = j->item_hi - j->item_lo;
    for (int i = j->item_lo; i < j->item_hi; i++) {
        const eval_item *it = &j->items[i];
        bool done = es_genlog_done(j->log, j->emotions[it->e], j->alphas[it->a],
                                   j->queries[it->q].id, it->s);
        if (!done && first_todo < 0) first_todo = i;
        todo += !done;
    }
    if (todo && o->merge.n) {
        const eval_item *it = &j->items[first_todo];
        fprintf(stderr,
                "emosteer eval: --merge: the shards lack %d of the %d responses, the first (%s, "
                "alpha %g, %s, sample %d) "
                "of shard %d/%d\n(finish that shard: the same command with --shard %d/%d --resume "
                "-o ITS_DIR)\n",
                todo, j->n_items, j->emotions[it->e], j->alphas[it->a], j->queries[it->q].id, it->s,
                shard_of(j, first_todo, j->o->shard_n), j->o->shard_n,
                shard_of(j, first_todo, j->o->shard_n), j->o->shard_n);
        return ES_EXIT_FAIL;
    }
    fprintf(stderr,
            "eval: %d responses (%d emotions x %d alphas x %d queries%s x %d samples; protocol "
            "%s), %d done, %d to generate\n",
            j->n_items, j->n_emotions, j->n_alphas, j->n_per_emotion,
            j->protocol == EVAL_PROTO_EMOTIONQUERY ? " of its own" : "", (int)o->samples,
            eval_protocol_name(j->protocol, NULL), n_range - todo, todo);
    if (o->shard_n && !o->merge.n)
        fprintf(stderr, "eval: shard %d/%d: responses %d..%d of the grid (%d)\n", o->shard_k,
                o->shard_n, j->item_lo, j->item_hi - 1, n_range);
    if (todo == 0) return ES_EXIT_OK;
    if (max_prompt + o->n_predict + 1 > j->mi.n_ctx_train) {
        fprintf(
            stderr,
            "emosteer: a response needs %ld positions; the model was trained for %d (lower -n)\n",
            max_prompt + o->n_predict + 1, j->mi.n_ctx_train);
        return ES_EXIT_FAIL;
    }
    es_context_params cp = es_context_default_params();
    cp.n_ctx = max_prompt + (int)o->n_predict + 1;
    cp.n_seq_max = B;
    cp.n_batch = ES_MAX(ES_MAX(64, B), ES_MIN(1024, B * max_prompt));
    cli_runtime_apply(&o->rt, &cp);
    es_context *ctx = NULL, *topic_ctx = NULL;
    if (es_context_create(j->model, &cp, &ctx) != ES_OK) return cli_fail("creating the context");
    scorer sc = {0};
    int rc = scorer_init(j, ctx, &sc, &topic_ctx);
    int *idx = calloc((size_t)B, sizeof *idx);
    es_gen_output *outs = calloc((size_t)B, sizeof *outs);
    if (rc == ES_EXIT_OK && (!idx || !outs)) {
        fprintf(stderr, "emosteer: out of memory for a batch of %d\n", B);
        rc = ES_EXIT_FAIL;
    }
    progress pr = {.total = n_range,
                   .done_start = n_range - todo,
                   .t0 = es_time_s(),
                   .last_decile = -1,
                   .last_done = -1,
                   .tty = isatty(fileno(stderr)) != 0};
    double t_gen = 0, t_score = 0;
    int done = n_range - todo;
    if (rc == ES_EXIT_OK) progress_show(&pr, done, false);
    for (int next = j->item_lo; rc == ES_EXIT_OK && next < j->item_hi;) {
        int n = 0;
        for (; next < j->item_hi && n < B; next++) {
            const eval_item *it = &j->items[next];
            if (!es_genlog_done(j->log, j->emotions[it->e], j->alphas[it->a], j->queries[it->q].id,
                                it->s))
                idx[n++] = next;
        }
        if (n == 0) break;
        if ((rc = generate_batch(j, ctx, idx, n, outs, &t_gen)) != ES_EXIT_OK) break;
        double t0 = es_time_s();
        rc = score_and_append(j, ctx, &sc, idx, n, outs);
        t_score += es_time_s() - t0;
        for (int i = 0; i < n; i++) {
            pr.tokens += outs[i].n_tokens;
            es_gen_output_free(&outs[i]);
        }
        if (rc != ES_EXIT_OK) break;
        done += n;
        progress_show(&pr, done, false);
    }
    if (rc == ES_EXIT_OK) {
        progress_show(&pr, done, true);
        fprintf(stderr, "eval: generated %ld tokens in %.2f s (%.1f tok/s); scoring took %.2f s\n",
                pr.tokens, t_gen, t_gen > 0 ? pr.tokens / t_gen : 0.0, t_score);
    }
    for (int i = 0; outs && i < B; i++)
        es_gen_output_free(&outs[i]);
    free(outs);
    free(idx);
    scorer_free(&sc);
    es_context_free(topic_ctx);
    es_context_free(ctx);
    return rc;
}
