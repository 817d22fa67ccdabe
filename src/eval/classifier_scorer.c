/*
 * classifier_scorer.c — es_cls_scorer: eval's six label probabilities from an encoder
 * classifier (es_classifier), either an emotion classifier whose class names map onto
 * the labels or a zero-shot NLI model asked one hypothesis per label. See emosteer.h,
 * "Evaluation: classifier scorers".
 */
#include "common.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define EXTRA_NAME_MAX 64 /* bytes of an extra label's name, NUL included */

/* Label phrases substituted into the NLI template, in es_emotion order. */
static const char *const k_nli_phrase[ES_EMO_N_LABELS] = {
    "anger", "disgust", "fear", "joy", "sadness", "no particular emotion"};

typedef enum cls_mode { CLS_EMOTION, CLS_NLI } cls_mode;

struct es_cls_scorer {
    es_classifier *c; /* borrowed */
    cls_mode mode;
    int n_class;      /* the classifier's classes */
    int *class_label; /* [n_class] CLS_EMOTION: the es_emotion of each class, or -1 (extra) */
    int *extra_class; /* [n_extra] CLS_EMOTION: the class of each extra label */
    int n_extra;
    char (*extra_name)[EXTRA_NAME_MAX]; /* [n_extra] */
    int entail;                         /* CLS_NLI: the entailment class */
    char *hypothesis[ES_EMO_N_LABELS];  /* CLS_NLI: the six hypotheses (owned) */
    es_classifier *own_c;               /* es_cls_scorer_load: the classifier and model it owns */
    es_model *own_model;
};

es_status es_emotion_parse_synonym(const char *name, es_emotion *out) {
    static const struct {
        const char *name;
        es_emotion e;
    } k_names[] = {
        {"anger", ES_EMO_ANGER},       {"angry", ES_EMO_ANGER},     {"disgust", ES_EMO_DISGUST},
        {"disgusted", ES_EMO_DISGUST}, {"fear", ES_EMO_FEAR},       {"afraid", ES_EMO_FEAR},
        {"scared", ES_EMO_FEAR},       {"joy", ES_EMO_JOY},         {"happy", ES_EMO_JOY},
        {"happiness", ES_EMO_JOY},     {"sadness", ES_EMO_SADNESS}, {"sad", ES_EMO_SADNESS},
        {"neutral", ES_EMO_NEUTRAL},
    };
    if (!name || !out) return ES_ERR_INVALID_ARG;
    for (size_t i = 0; i < sizeof k_names / sizeof k_names[0]; i++)
        if (!strcasecmp(name, k_names[i].name)) {
            *out = k_names[i].e;
            return ES_OK;
        }
    return ES_ERR_INVALID_ARG;
}

void es_cls_scorer_free(es_cls_scorer *s) {
    if (!s) return;
    free(s->class_label);
    free(s->extra_class);
    free(s->extra_name);
    for (int l = 0; l < ES_EMO_N_LABELS; l++)
        free(s->hypothesis[l]);
    es_classifier_free(s->own_c);
    es_model_free(s->own_model);
    free(s);
}

es_status es_cls_scorer_load(const char *path, bool nli, const char *hypothesis_template,
                             int n_threads, es_cls_scorer **out) {
    if (!path || !out) return es_error(ES_ERR_INVALID_ARG, "classifier scorer: NULL argument");
    *out = NULL;
    es_model_params mp = es_model_default_params();
    es_model *m = NULL;
    es_classifier *c = NULL;
    es_status st = es_model_load(path, &mp, &m);
    if (st == ES_OK) st = es_classifier_create(m, n_threads, &c);
    if (st == ES_OK)
        st = nli ? es_cls_scorer_create_nli(c, hypothesis_template, out)
                 : es_cls_scorer_create_emotion(c, out);
    if (st != ES_OK) {
        es_classifier_free(c);
        es_model_free(m);
        return st;
    }
    (*out)->own_c = c;
    (*out)->own_model = m;
    return ES_OK;
}

static es_status scorer_new(es_classifier *c, cls_mode mode, es_cls_scorer **out) {
    if (!c || !out) return es_error(ES_ERR_INVALID_ARG, "classifier scorer: NULL argument");
    *out = NULL;
    es_cls_scorer *s = calloc(1, sizeof *s);
    const int L = es_classifier_n_labels(c);
    if (!s || !(s->class_label = malloc((size_t)L * sizeof *s->class_label)) ||
        !(s->extra_class = malloc((size_t)L * sizeof *s->extra_class)) ||
        !(s->extra_name =
              calloc((size_t)(L > ES_EMO_N_LABELS ? L : ES_EMO_N_LABELS), sizeof *s->extra_name))) {
        es_cls_scorer_free(s);
        return es_error(ES_ERR_NOMEM, "classifier scorer: out of memory");
    }
    s->c = c;
    s->mode = mode;
    s->n_class = L;
    s->entail = -1;
    *out = s;
    return ES_OK;
}

/* "a, b, c" of the classifier's labels into buf. */
static void list_labels(const es_classifier *c, char *buf, size_t cap) {
    size_t k = 0;
    buf[0] = '\0';
    for (int i = 0; i < es_classifier_n_labels(c) && k < cap; i++) {
        int w = snprintf(buf + k, cap - k, "%s%s", i ? ", " : "", es_classifier_label(c, i));
        if (w < 0) break;
        k += (size_t)w;
    }
}

es_status es_cls_scorer_create_emotion(es_classifier *c, es_cls_scorer **out) {
    es_cls_scorer *s;
    es_status st = scorer_new(c, CLS_EMOTION, &s);
    if (st != ES_OK) return st;
    bool seen[ES_EMO_N_LABELS] = {false};
    int n_mapped = 0;
    for (int i = 0; i < s->n_class; i++) {
        es_emotion e;
        const char *name = es_classifier_label(c, i);
        if (es_emotion_parse_synonym(name, &e) == ES_OK) {
            s->class_label[i] = (int)e;
            n_mapped += !seen[e];
            seen[e] = true;
        } else {
            s->class_label[i] = -1;
            s->extra_class[s->n_extra] = i;
            snprintf(s->extra_name[s->n_extra++], EXTRA_NAME_MAX, "%s", name);
        }
    }
    if (n_mapped < 2) {
        char labels[1024];
        list_labels(c, labels, sizeof labels);
        es_cls_scorer_free(s);
        return es_error(
            ES_ERR_UNSUPPORTED,
            "classifier scorer: the classifier's labels (%s) name %d of anger, disgust, fear, joy, "
            "sadness, neutral (or their synonyms); at least 2 are needed",
            labels, n_mapped);
    }
    *out = s;
    return ES_OK;
}

es_status es_cls_scorer_create_nli(es_classifier *c, const char *tmpl, es_cls_scorer **out) {
    if (!tmpl) tmpl = ES_NLI_DEFAULT_TEMPLATE;
    const char *hole = strstr(tmpl, "{}");
    if (!hole || strstr(hole + 2, "{}"))
        return es_error(ES_ERR_INVALID_ARG,
                        "NLI scorer: the hypothesis template '%.200s' must hold {} exactly once",
                        tmpl);
    es_cls_scorer *s;
    es_status st = scorer_new(c, CLS_NLI, &s);
    if (st != ES_OK) return st;
    /* the pipeline's entailment_id: the first label2id name starting with "entail" */
    for (int i = 0; i < s->n_class && s->entail < 0; i++)
        if (!strncasecmp(es_classifier_label(c, i), "entail", 6)) s->entail = i;
    if (s->entail < 0) {
        char labels[1024];
        list_labels(c, labels, sizeof labels);
        es_cls_scorer_free(s);
        return es_error(ES_ERR_UNSUPPORTED,
                        "NLI scorer: the model has no entailment label (its labels: %s)", labels);
    }
    const size_t pre = (size_t)(hole - tmpl), post = strlen(hole + 2);
    for (int l = 0; l < ES_EMO_N_LABELS; l++) {
        const size_t len = pre + strlen(k_nli_phrase[l]) + post + 1;
        if (!(s->hypothesis[l] = malloc(len))) {
            es_cls_scorer_free(s);
            return es_error(ES_ERR_NOMEM, "NLI scorer: out of memory");
        }
        snprintf(s->hypothesis[l], len, "%.*s%s%s", (int)pre, tmpl, k_nli_phrase[l], hole + 2);
        snprintf(s->extra_name[l], EXTRA_NAME_MAX, "entail:%s", es_emotion_name((es_emotion)l));
    }
    s->n_extra = ES_EMO_N_LABELS;
    *out = s;
    return ES_OK;
}

int es_cls_scorer_n_extra(const es_cls_scorer *s) {
    return s ? s->n_extra : 0;
}

const char *es_cls_scorer_extra_label(const es_cls_scorer *s, int i) {
    return s && i >= 0 && i < s->n_extra ? s->extra_name[i] : NULL;
}

/* Emotion classifier: the softmax summed per mapped label, renormalised over the mapped
 * classes. When every mapped class underflowed to 0, the mapped labels share equally. */
static es_status score_emotion(es_cls_scorer *s, const char *const *texts, int n, double *probs,
                               double *extra) {
    const int L = s->n_class;
    float *p = malloc((size_t)(n > 0 ? n : 1) * L * sizeof *p);
    if (!p) return es_error(ES_ERR_NOMEM, "classifier scorer: out of memory for %d texts", n);
    es_status st = es_classifier_classify(s->c, texts, NULL, n, p);
    for (int i = 0; st == ES_OK && i < n; i++) {
        const float *row = p + (size_t)i * L;
        double *out = probs + (size_t)i * ES_EMO_N_LABELS, sum = 0.0;
        int n_mapped = 0;
        for (int l = 0; l < ES_EMO_N_LABELS; l++)
            out[l] = 0.0;
        for (int k = 0; k < L; k++)
            if (s->class_label[k] >= 0) out[s->class_label[k]] += row[k], sum += row[k], n_mapped++;
        for (int k = 0; k < L; k++)
            if (s->class_label[k] >= 0 && !(sum > 0.0)) out[s->class_label[k]] += 1.0 / n_mapped;
        if (sum > 0.0)
            for (int l = 0; l < ES_EMO_N_LABELS; l++)
                out[l] /= sum;
        for (int x = 0; extra && x < s->n_extra; x++)
            extra[(size_t)i * s->n_extra + x] = row[s->extra_class[x]];
    }
    free(p);
    return st;
}

/* NLI, as transformers' pipelines/zero_shot_classification.py postprocess() with
 * multi_label=False and several candidate labels: entail_logits = logits[..., entailment_id];
 * scores = exp(entail_logits) / exp(entail_logits).sum(-1) — a softmax over the candidate
 * labels of the raw entailment logits (not of the per-pair entailment probabilities). */
static es_status score_nli(es_cls_scorer *s, const char *const *texts, int n, double *probs,
                           double *extra) {
    const int L = s->n_class, m = n * ES_EMO_N_LABELS;
    const char **prem = calloc((size_t)(m > 0 ? m : 1), sizeof *prem);
    const char **hyp = calloc((size_t)(m > 0 ? m : 1), sizeof *hyp);
    float *logits = malloc((size_t)(m > 0 ? m : 1) * L * sizeof *logits);
    es_status st = prem && hyp && logits
                       ? ES_OK
                       : es_error(ES_ERR_NOMEM, "NLI scorer: out of memory for %d texts", n);
    for (int i = 0; st == ES_OK && i < n; i++) {
        if (!texts[i]) st = es_error(ES_ERR_INVALID_ARG, "NLI scorer: text %d is NULL", i);
        for (int l = 0; l < ES_EMO_N_LABELS; l++) {
            prem[i * ES_EMO_N_LABELS + l] = texts[i];
            hyp[i * ES_EMO_N_LABELS + l] = s->hypothesis[l];
        }
    }
    if (st == ES_OK) st = es_classifier_logits(s->c, prem, hyp, m, logits);
    for (int i = 0; st == ES_OK && i < n; i++) {
        double *out = probs + (size_t)i * ES_EMO_N_LABELS, mx = -INFINITY, sum = 0.0;
        for (int l = 0; l < ES_EMO_N_LABELS; l++) {
            const float *row = logits + ((size_t)i * ES_EMO_N_LABELS + l) * L;
            mx = fmax(mx, row[s->entail]);
            if (extra) { /* P(entailment) of this pair: the softmax over the model's classes */
                double rmx = row[0], z = 0.0;
                for (int k = 1; k < L; k++)
                    rmx = fmax(rmx, row[k]);
                for (int k = 0; k < L; k++)
                    z += exp((double)row[k] - rmx);
                extra[(size_t)i * s->n_extra + l] = exp((double)row[s->entail] - rmx) / z;
            }
        }
        if (!isfinite(mx)) {
            st = es_error(ES_ERR_FORMAT, "NLI scorer: non-finite logits for text %d", i);
            break;
        }
        for (int l = 0; l < ES_EMO_N_LABELS; l++)
            sum += out[l] =
                exp((double)logits[((size_t)i * ES_EMO_N_LABELS + l) * L + s->entail] - mx);
        for (int l = 0; l < ES_EMO_N_LABELS; l++)
            out[l] /= sum;
    }
    free(prem);
    free(hyp);
    free(logits);
    return st;
}

es_status es_cls_scorer_score(es_cls_scorer *s, const char *const *texts, int n, double *probs,
                              double *extra) {
    if (!s || n < 0 || (n > 0 && (!texts || !probs)))
        return es_error(ES_ERR_INVALID_ARG, "classifier scorer: NULL argument or negative count");
    if (n == 0) return ES_OK;
    return s->mode == CLS_NLI ? score_nli(s, texts, n, probs, extra)
                              : score_emotion(s, texts, n, probs, extra);
}

es_status es_cls_label_probs(void *scorer, const char *const *texts, int n, double *probs) {
    return es_cls_scorer_score(scorer, texts, n, probs, NULL);
}
