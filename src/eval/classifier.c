/*
 * classifier.c — es_classifier: texts -> class probabilities with an encoder model
 * (encoder.c). Tokenizing as Hugging Face's tokenizers frame sequences and pairs,
 * batching by length, softmax.
 */
#include "encoder.h"
#include "model.h"
#include "threadpool.h"
#include "tokenizer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Rows and tokens of one forward pass of es_classifier_classify. */
#define CLS_BATCH_ROWS 32
#define CLS_BATCH_TOKENS 4096

struct es_classifier {
    es_model *model;             /* borrowed */
    const es_encoder_weights *w; /* model->enc */
    const es_vocab *vocab;       /* model->vocab */
    es_threadpool *tp;
    es_encoder_scratch scratch;
};

es_status es_classifier_create(es_model *model, int n_threads, es_classifier **out) {
    if (!model || !out)
        return es_error(ES_ERR_INVALID_ARG, "classifier: model and out must not be NULL");
    *out = NULL;
    if (n_threads < 1 || n_threads > 512)
        return es_error(ES_ERR_INVALID_ARG, "classifier: n_threads %d must be in [1, 512]",
                        n_threads);
    if (!model->enc)
        return es_error(ES_ERR_UNSUPPORTED,
                        "classifier: '%s' is not an encoder model (supported: bert)",
                        model->arch_name);
    if (model->enc->n_labels < 1)
        return es_error(ES_ERR_UNSUPPORTED,
                        "classifier: the model has no classification head (cls.output)");
    if (!model->vocab) return es_error(ES_ERR_FORMAT, "classifier: the model has no tokenizer");
    if (model->vocab->cls < 0 || model->vocab->sep < 0)
        return es_error(ES_ERR_FORMAT,
                        "classifier: the vocabulary has no [CLS]/<s> or [SEP]/</s> token");
    es_classifier *c = es_calloc(1, sizeof *c);
    if (!c) return ES_ERR_NOMEM;
    c->model = model;
    c->w = model->enc;
    c->vocab = model->vocab;
    c->tp = es_threadpool_create(n_threads);
    if (!c->tp) {
        free(c);
        return es_error_prefix(ES_ERR_NOMEM, "classifier");
    }
    *out = c;
    return ES_OK;
}

void es_classifier_free(es_classifier *c) {
    if (!c) return;
    es_threadpool_free(c->tp);
    es_encoder_scratch_free(&c->scratch);
    free(c);
}

int es_classifier_n_labels(const es_classifier *c) {
    return c ? c->w->n_labels : 0;
}

const char *es_classifier_label(const es_classifier *c, int i) {
    return c && i >= 0 && i < c->w->n_labels ? c->w->labels[i] : NULL;
}

bool es_classifier_has_pooler(const es_classifier *c) {
    return c && c->w->cls.data != NULL;
}

/* ---- tokenizing ------------------------------------------------------------------------ */

es_status es_classifier_tokenize(const es_classifier *c, const char *text, const char *pair,
                                 int32_t **tokens, int32_t **types, int *n) {
    if (!c || !text || !tokens || !types || !n)
        return es_error(ES_ERR_INVALID_ARG, "classifier: NULL argument to es_classifier_tokenize");
    *tokens = *types = NULL;
    *n = 0;
    const es_vocab *v = c->vocab;
    int32_t *a = NULL, *b = NULL;
    int na = 0, nb = 0;
    es_status st = es_tokenize_alloc(v, text, strlen(text), false, false, &a, &na);
    if (st == ES_OK && pair) st = es_tokenize_alloc(v, pair, strlen(pair), false, false, &b, &nb);
    if (st != ES_OK) {
        free(a);
        return es_error_prefix(st, "classifier");
    }
    /* BERT: [CLS] a [SEP] b [SEP], types 0 then 1; RoBERTa: <s> a </s></s> b </s>, all 0 */
    const bool bert = v->kind == ES_VOCAB_WPM;
    const int n_special = pair ? (bert ? 3 : 4) : 2;
    const int cap = c->w->n_pos;
    while (na + nb + n_special > cap && (na > 0 || nb > 0)) { /* longest first, from the end */
        if (na >= nb)
            na--;
        else
            nb--;
    }
    const int total = na + nb + n_special;
    int32_t *t = malloc((size_t)total * sizeof *t), *ty = calloc((size_t)total, sizeof *ty);
    if (!t || !ty) {
        free(a);
        free(b);
        free(t);
        free(ty);
        return es_error(ES_ERR_NOMEM, "classifier: out of memory for %d tokens", total);
    }
    int k = 0;
    t[k++] = v->cls;
    for (int i = 0; i < na; i++)
        t[k++] = a[i];
    t[k++] = v->sep;
    if (pair) {
        const int second = k + (bert ? 0 : 1);
        if (!bert) t[k++] = v->sep;
        for (int i = 0; i < nb; i++)
            t[k++] = b[i];
        t[k++] = v->sep;
        if (bert && c->w->n_types >= 2)
            for (int i = second; i < k; i++)
                ty[i] = 1;
    }
    free(a);
    free(b);
    *tokens = t;
    *types = ty;
    *n = total;
    return ES_OK;
}

/* ---- running ---------------------------------------------------------------------------- */

es_status es_classifier_activations(es_classifier *c, const int32_t *tokens,
                                    const int32_t *token_types, const int32_t *mask, int n, int T,
                                    const es_encoder_activations *out) {
    if (!c || !tokens || !out)
        return es_error(ES_ERR_INVALID_ARG, "classifier: NULL argument to activations");
    es_status st =
        es_encoder_forward(c->model, c->tp, &c->scratch, tokens, token_types, mask, n, T, out);
    return st == ES_OK ? ES_OK : es_error_prefix(st, "classifier");
}

static void softmax(float *p, const float *logits, int n) {
    float mx = logits[0];
    for (int i = 1; i < n; i++)
        mx = logits[i] > mx ? logits[i] : mx;
    double sum = 0.0;
    for (int i = 0; i < n; i++)
        sum += exp((double)logits[i] - mx);
    for (int i = 0; i < n; i++)
        p[i] = (float)(exp((double)logits[i] - mx) / sum);
}

typedef struct tokenized {
    int32_t *tokens, *types;
    int n;
} tokenized;

/* (length, index) pairs sorted by length, then index. */
typedef struct by_len {
    int n, i;
} by_len;

static int by_length(const void *x, const void *y) {
    const by_len *a = x, *b = y;
    return a->n != b->n ? (a->n < b->n ? -1 : 1) : (a->i < b->i ? -1 : a->i > b->i);
}

/* es_classifier_classify (want_probs) or es_classifier_logits: out[n][n_labels]. */
static es_status classify_rows(es_classifier *c, const char *const *texts, const char *const *pairs,
                               int n, float *dst, bool want_probs) {
    if (!c || (!texts && n > 0) || (!dst && n > 0) || n < 0)
        return es_error(ES_ERR_INVALID_ARG,
                        "classifier: NULL argument or negative count to classify");
    if (n == 0) return ES_OK;
    const int L = c->w->n_labels;
    tokenized *items = es_calloc((size_t)n, sizeof *items);
    by_len *sorted = malloc((size_t)n * sizeof *sorted);
    int *order = malloc((size_t)n * sizeof *order);
    int32_t *btok = NULL, *btyp = NULL, *bmask = NULL;
    float *logits = malloc((size_t)CLS_BATCH_ROWS * L * sizeof *logits);
    es_status st = items && sorted && order && logits
                       ? ES_OK
                       : es_error(ES_ERR_NOMEM, "classifier: out of memory");
    for (int i = 0; st == ES_OK && i < n; i++) {
        if (!texts[i])
            st = es_error(ES_ERR_INVALID_ARG, "classifier: text %d is NULL", i);
        else
            st = es_classifier_tokenize(c, texts[i], pairs ? pairs[i] : NULL, &items[i].tokens,
                                        &items[i].types, &items[i].n);
        sorted[i] = (by_len){items[i].n, i};
    }
    if (st == ES_OK) {
        qsort(sorted, (size_t)n, sizeof *sorted, by_length);
        for (int i = 0; i < n; i++)
            order[i] = sorted[i].i;
        const int T_max = items[order[n - 1]].n;
        btok = malloc((size_t)CLS_BATCH_ROWS * T_max * sizeof *btok);
        btyp = malloc((size_t)CLS_BATCH_ROWS * T_max * sizeof *btyp);
        bmask = malloc((size_t)CLS_BATCH_ROWS * T_max * sizeof *bmask);
        if (!btok || !btyp || !bmask)
            st = es_error(ES_ERR_NOMEM, "classifier: out of memory for a batch");
    }
    /* batches of similar lengths: rows padded to the batch's longest */
    for (int i0 = 0; st == ES_OK && i0 < n;) {
        int rows = 0, T = 0;
        while (i0 + rows < n && rows < CLS_BATCH_ROWS) {
            const int len = items[order[i0 + rows]].n;
            if (rows > 0 && (int64_t)(rows + 1) * len > CLS_BATCH_TOKENS) break;
            T = len;
            rows++;
        }
        for (int r = 0; r < rows; r++) {
            const tokenized *it = &items[order[i0 + r]];
            for (int t = 0; t < T; t++) {
                const bool real = t < it->n;
                btok[(size_t)r * T + t] =
                    real ? it->tokens[t] : (c->vocab->pad >= 0 ? c->vocab->pad : 0);
                btyp[(size_t)r * T + t] = real ? it->types[t] : 0;
                bmask[(size_t)r * T + t] = real;
            }
        }
        es_encoder_activations out = {.logits = logits};
        st = es_classifier_activations(c, btok, btyp, bmask, rows, T, &out);
        for (int r = 0; st == ES_OK && r < rows; r++) {
            float *row = dst + (size_t)order[i0 + r] * L;
            if (want_probs)
                softmax(row, logits + (size_t)r * L, L);
            else
                memcpy(row, logits + (size_t)r * L, (size_t)L * sizeof *row);
        }
        i0 += rows;
    }
    for (int i = 0; items && i < n; i++) {
        free(items[i].tokens);
        free(items[i].types);
    }
    free(items);
    free(sorted);
    free(order);
    free(btok);
    free(btyp);
    free(bmask);
    free(logits);
    return st;
}

es_status es_classifier_classify(es_classifier *c, const char *const *texts,
                                 const char *const *pairs, int n, float *probs) {
    return classify_rows(c, texts, pairs, n, probs, true);
}

es_status es_classifier_logits(es_classifier *c, const char *const *texts, const char *const *pairs,
                               int n, float *logits) {
    return classify_rows(c, texts, pairs, n, logits, false);
}
