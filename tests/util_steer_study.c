/* util_steer_study.c — see util_steer_study.h. */
#include "util_steer_study.h"

#include "common.h"
#include "eval_metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct es_study {
    es_study_params p;
    es_model *model;
    const es_vocab *vocab;
    es_context *ctx;
    es_lexicon *lex;
    int n_prompts, n_layer;
    char **texts;             /* [n_prompts] prompt lines */
    int32_t **toks;           /* [n_prompts] tokens */
    int *n_toks;              /* [n_prompts] */
    const int32_t **seq_toks; /* [n_prompts * n_samples] prompt of each sequence */
    int *seq_n;               /* [n_prompts * n_samples] */
};

es_study_params es_study_default_params(void) {
    es_study_params p = {0};
    p.n_samples = 3;
    p.n_predict = 40;
    p.temp = 0.8f;
    p.seed = 1234;
    return p;
}

static es_status read_prompts(es_study *st) {
    FILE *f = fopen(st->p.prompts, "r");
    if (!f) return es_error(ES_ERR_IO, "study: cannot open %s", st->p.prompts);
    char line[4096];
    int cap = 0;
    es_status rc = ES_OK;
    while (fgets(line, sizeof line, f)) {
        size_t n = strcspn(line, "\r\n");
        line[n] = '\0';
        if (n == 0) continue;
        if (st->p.max_prompts > 0 && st->n_prompts >= st->p.max_prompts) break;
        if (st->n_prompts == cap) {
            cap = cap ? 2 * cap : 64;
            char **t = realloc(st->texts, (size_t)cap * sizeof *t);
            if (!t) {
                rc = es_error(ES_ERR_NOMEM, "study: out of memory");
                break;
            }
            st->texts = t;
        }
        st->texts[st->n_prompts] = es_strdup(line);
        if (!st->texts[st->n_prompts]) {
            rc = es_error(ES_ERR_NOMEM, "study: out of memory");
            break;
        }
        st->n_prompts++;
    }
    fclose(f);
    if (rc == ES_OK && st->n_prompts == 0)
        rc = es_error(ES_ERR_FORMAT, "study: no prompts in %s", st->p.prompts);
    return rc;
}

es_status es_study_create(const es_study_params *p, es_study **out) {
    es_study *st = calloc(1, sizeof *st);
    if (!st) return es_error(ES_ERR_NOMEM, "study: out of memory");
    st->p = *p;
    es_status rc = es_model_load(p->model, NULL, &st->model);
    if (rc == ES_OK) rc = es_lexicon_load(p->lexicon, &st->lex);
    if (rc == ES_OK) rc = read_prompts(st);
    if (rc == ES_OK && !(st->vocab = es_model_vocab(st->model)))
        rc = es_error(ES_ERR_NOT_FOUND, "study: the model has no tokenizer");
    int max_len = 0;
    if (rc == ES_OK) {
        st->toks = calloc((size_t)st->n_prompts, sizeof *st->toks);
        st->n_toks = calloc((size_t)st->n_prompts, sizeof *st->n_toks);
        if (!st->toks || !st->n_toks) rc = es_error(ES_ERR_NOMEM, "study: out of memory");
    }
    for (int i = 0; rc == ES_OK && i < st->n_prompts; i++) {
        int32_t cap = (int32_t)strlen(st->texts[i]) + 8, n = 0;
        st->toks[i] = malloc((size_t)cap * sizeof(int32_t));
        if (!st->toks[i]) rc = es_error(ES_ERR_NOMEM, "study: out of memory");
        if (rc == ES_OK)
            rc = es_tokenize(st->vocab, st->texts[i], strlen(st->texts[i]), true, false,
                             st->toks[i], cap, &n);
        st->n_toks[i] = n;
        if (n > max_len) max_len = n;
    }
    int n_seq = st->n_prompts * p->n_samples;
    if (rc == ES_OK) {
        st->seq_toks = calloc((size_t)n_seq, sizeof *st->seq_toks);
        st->seq_n = calloc((size_t)n_seq, sizeof *st->seq_n);
        if (!st->seq_toks || !st->seq_n) rc = es_error(ES_ERR_NOMEM, "study: out of memory");
        for (int i = 0; rc == ES_OK && i < n_seq; i++) {
            st->seq_toks[i] = st->toks[i / p->n_samples];
            st->seq_n[i] = st->n_toks[i / p->n_samples];
        }
    }
    if (rc == ES_OK) {
        es_model_info mi;
        es_model_get_info(st->model, &mi);
        st->n_layer = mi.n_layer;
        es_context_params cp = es_context_default_params();
        cp.n_ctx = max_len + p->n_predict + 8;
        cp.n_seq_max = n_seq;
        cp.n_batch = 1024 > n_seq ? 1024 : n_seq;
        if (p->n_threads > 0) cp.n_threads = p->n_threads;
        rc = es_context_create(st->model, &cp, &st->ctx);
    }
    if (rc != ES_OK) {
        es_study_free(st);
        return rc;
    }
    *out = st;
    return ES_OK;
}

void es_study_free(es_study *st) {
    if (!st) return;
    for (int i = 0; i < st->n_prompts; i++) {
        free(st->texts[i]);
        if (st->toks) free(st->toks[i]);
    }
    free(st->texts);
    free(st->toks);
    free(st->n_toks);
    free(st->seq_toks);
    free(st->seq_n);
    es_context_free(st->ctx);
    es_lexicon_free(st->lex);
    es_model_free(st->model);
    free(st);
}

int es_study_n_prompts(const es_study *st) {
    return st->n_prompts;
}
int es_study_n_layer(const es_study *st) {
    return st->n_layer;
}
const char *es_study_prompt(const es_study *st, int i) {
    return i >= 0 && i < st->n_prompts ? st->texts[i] : NULL;
}

es_status es_study_run(es_study *st, const es_steer_set *steer, es_study_cell *cell) {
    int n = st->n_prompts * st->p.n_samples;
    memset(cell, 0, sizeof *cell);
    es_status rc = es_context_set_steering(st->ctx, -1, steer);
    if (rc != ES_OK) return rc;
    es_gen_output *out = calloc((size_t)n, sizeof *out);
    if (!out) return es_error(ES_ERR_NOMEM, "study: out of memory");
    es_gen_params gp = es_gen_default_params();
    gp.n_predict = st->p.n_predict;
    gp.sampling.temp = st->p.temp;
    gp.sampling.seed = st->p.seed;
    gp.stop_at_eog = false;
    rc = es_generate(st->ctx, st->vocab, st->seq_toks, st->seq_n, n, &gp, NULL, NULL, out);
    for (int i = 0; rc == ES_OK && i < n; i++) {
        es_lexicon_score ls;
        es_text_fluency fl;
        double sc[ES_EMO_N_LABELS];
        rc = es_lexicon_score_text(st->lex, out[i].text, out[i].text_len, &ls);
        if (rc == ES_OK) rc = es_text_fluency_of(out[i].text, NULL, &fl);
        if (rc != ES_OK) break;
        es_scores_from_lexicon(&ls, 0, sc);
        for (int k = 0; k < ES_EMO_N_LABELS; k++)
            cell->label[k] += sc[k] / n;
        cell->rep4 += fl.rep4 / n;
        cell->degenerate += (fl.degenerate ? 1.0 : 0.0) / n;
        cell->n_words += fl.n_words;
    }
    if (rc == ES_OK) {
        cell->n = n;
        cell->example = es_strdup(out[0].text);
    }
    for (int i = 0; i < n; i++)
        es_gen_output_free(&out[i]);
    free(out);
    es_context_set_steering(st->ctx, -1, NULL);
    return rc;
}

es_status es_study_steer(const es_ev_set *ev, const char *emotion, float alpha,
                         const int32_t *layers, int n_layers, es_steer_set **out) {
    es_steer_set *set = NULL;
    es_status rc = es_steer_set_create(&set);
    if (rc != ES_OK) return rc;
    es_steer_item it = es_steer_item_default();
    it.vectors = ev;
    it.emotion = emotion;
    it.alpha = alpha;
    it.layers = layers;
    it.n_layers = layers ? n_layers : 0;
    rc = es_steer_set_add(set, &it);
    if (rc != ES_OK) {
        es_steer_set_free(set);
        return rc;
    }
    *out = set;
    return ES_OK;
}
