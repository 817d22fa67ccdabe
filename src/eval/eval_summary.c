/* eval_summary.c — the results struct and es_eval_summarize: records -> per-cell
 * statistics, linearity, confusion matrices, sample table (see eval_metrics.h). */
#include "eval_metrics.h"

#include "common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- settings ------------------------------------------------------------ */

void es_eval_settings_clear(es_eval_settings *s) {
    if (!s) return;
#define FREE_FIELD(f) free(s->f);
    ES_EVAL_SETTINGS_STRINGS(FREE_FIELD)
#undef FREE_FIELD
    for (int i = 0; i < s->n_extra; i++) {
        free(s->extra[i].key);
        free(s->extra[i].value);
    }
    free(s->extra);
    memset(s, 0, sizeof *s);
}

es_status es_eval_settings_add(es_eval_settings *s, const char *key, const char *value) {
    if (!s || !key || !value)
        return es_error(ES_ERR_INVALID_ARG, "eval: settings_add: NULL key or value");
    size_t bytes;
    if (s->n_extra >= INT32_MAX / 2 ||
        !es_mul_size((size_t)s->n_extra + 1, sizeof *s->extra, &bytes))
        return es_error(ES_ERR_NOMEM, "eval: too many settings");
    es_eval_kv *grown = realloc(s->extra, bytes);
    if (!grown) return es_error(ES_ERR_NOMEM, "eval: out of memory for setting %s", key);
    s->extra = grown;
    es_eval_kv kv = {es_strdup(key), es_strdup(value)};
    if (!kv.key || !kv.value) {
        free(kv.key);
        free(kv.value);
        return es_error(ES_ERR_NOMEM, "eval: out of memory for setting %s", key);
    }
    s->extra[s->n_extra++] = kv;
    return ES_OK;
}

es_status es_eval_settings_copy(es_eval_settings *dst, const es_eval_settings *src) {
    es_eval_settings d;
    memset(&d, 0, sizeof d);
    d.seed = src->seed;
    d.n_samples = src->n_samples;
    d.max_tokens = src->max_tokens;
#define COPY_FIELD(f)                                                                              \
    if (src->f && !(d.f = es_strdup(src->f))) goto nomem;
    ES_EVAL_SETTINGS_STRINGS(COPY_FIELD)
#undef COPY_FIELD
    for (int i = 0; i < src->n_extra; i++)
        if (es_eval_settings_add(&d, src->extra[i].key, src->extra[i].value) != ES_OK) goto nomem;
    *dst = d;
    return ES_OK;
nomem:
    es_eval_settings_clear(&d);
    return es_error(ES_ERR_NOMEM, "eval: out of memory copying settings");
}

/* ---- results struct ------------------------------------------------------ */

void es_eval_results_free(es_eval_results *r) {
    if (!r) return;
    es_eval_settings_clear(&r->settings);
    for (int i = 0; i < r->n_emotions && r->emotions; i++)
        free(r->emotions[i]);
    for (int i = 0; i < r->n_labels && r->labels; i++)
        free(r->labels[i]);
    for (int i = 0; i < r->n_samples && r->samples; i++) {
        free(r->samples[i].query_id);
        free(r->samples[i].prompt);
        free(r->samples[i].response);
    }
    free(r->emotions);
    free(r->labels);
    free(r->alphas);
    free(r->emotion_label);
    free(r->cells);
    free(r->linearity);
    free(r->linearity_eas);
    free(r->confusion);
    free(r->accuracy);
    free(r->samples);
    free(r);
}

static const es_stat stat_none = {0, NAN, NAN, NAN, NAN};

es_status es_eval_results_alloc(int n_emotions, const char *const *emotions, int n_alphas,
                                const double *alphas, int n_labels, const char *const *labels,
                                es_eval_results **out) {
    /* bounded so that every product below fits comfortably */
    if (n_emotions < 1 || n_emotions > 4096 || n_alphas < 1 || n_alphas > 4096 || n_labels < 0 ||
        n_labels > 4096 || !emotions || !alphas || (n_labels && !labels))
        return es_error(ES_ERR_INVALID_ARG,
                        "eval: results shape %d emotions x %d alphas x %d labels out of range "
                        "(1..4096 each, labels 0..4096)",
                        n_emotions, n_alphas, n_labels);
    es_eval_results *r = es_calloc(1, sizeof *r);
    if (!r) return ES_ERR_NOMEM;
    r->n_emotions = n_emotions;
    r->n_alphas = n_alphas;
    r->n_labels = n_labels;
    r->neutral = -1;
    r->lin_alpha_lo = NAN;
    r->lin_alpha_hi = NAN;
    size_t n_cells = (size_t)n_emotions * (size_t)n_alphas;
    r->emotions = es_calloc((size_t)n_emotions, sizeof *r->emotions);
    r->labels = es_calloc((size_t)n_labels + 1, sizeof *r->labels);
    r->alphas = es_calloc((size_t)n_alphas, sizeof *r->alphas);
    r->emotion_label = es_calloc((size_t)n_emotions, sizeof *r->emotion_label);
    r->cells = es_calloc(n_cells, sizeof *r->cells);
    r->linearity = es_calloc((size_t)n_emotions, sizeof *r->linearity);
    r->linearity_eas = es_calloc((size_t)n_emotions, sizeof *r->linearity_eas);
    r->confusion = es_calloc(n_cells * (size_t)n_labels + 1, sizeof *r->confusion);
    r->accuracy = es_calloc((size_t)n_alphas, sizeof *r->accuracy);
    if (!r->emotions || !r->labels || !r->alphas || !r->emotion_label || !r->cells ||
        !r->linearity || !r->linearity_eas || !r->confusion || !r->accuracy)
        goto nomem;
    for (int i = 0; i < n_emotions; i++)
        if (!(r->emotions[i] = es_strdup(emotions[i] ? emotions[i] : ""))) goto nomem;
    for (int i = 0; i < n_labels; i++) {
        if (!(r->labels[i] = es_strdup(labels[i] ? labels[i] : ""))) goto nomem;
        if (r->neutral < 0 && !strcmp(r->labels[i], ES_EVAL_NEUTRAL)) r->neutral = i;
    }
    memcpy(r->alphas, alphas, (size_t)n_alphas * sizeof *alphas);
    for (int e = 0; e < n_emotions; e++) {
        r->emotion_label[e] = -1;
        for (int l = 0; l < n_labels; l++)
            if (!strcmp(r->emotions[e], r->labels[l])) {
                r->emotion_label[e] = l;
                break;
            }
        es_linearity none = {0, NAN, NAN, NAN};
        r->linearity[e] = none;
        r->linearity_eas[e] = none;
    }
    for (size_t c = 0; c < n_cells; c++) {
        es_eval_cell *cell = &r->cells[c];
        cell->n = 0;
        cell->target_prob = cell->eas = cell->valence = cell->topic = stat_none;
        cell->log_ppl = cell->distinct2 = cell->rep4 = cell->n_words = stat_none;
        cell->eas_delta = cell->ppl = cell->degenerate_share = NAN;
    }
    for (int a = 0; a < n_alphas; a++)
        r->accuracy[a] = NAN;
    *out = r;
    return ES_OK;
nomem:
    es_eval_results_free(r);
    return es_error(ES_ERR_NOMEM, "eval: out of memory for results");
}

/* ---- summarize ----------------------------------------------------------- */

es_summary_params es_summary_default_params(void) {
    es_summary_params p;
    p.lin_alpha_lo = 0.0;
    p.lin_alpha_hi = 2.0;
    p.fluency = es_fluency_default_params();
    p.samples_per_cell = 1;
    return p;
}

static bool alpha_equal(double a, double b) {
    return fabs(a - b) <= 1e-9 * ES_MAX(1.0, fabs(a));
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int find_alpha(const double *alphas, int n, double a) {
    for (int i = 0; i < n; i++)
        if (alpha_equal(alphas[i], a)) return i;
    return -1;
}

static int find_name(const char *const *names, int n, const char *s) {
    if (!s) return -1;
    for (int i = 0; i < n; i++)
        if (!strcmp(names[i], s)) return i;
    return -1;
}

/* The row and column lists: given, or collected from the records. On success
 * *emo / *alp are malloc'ed arrays (names borrowed from records or the caller). */
static es_status collect_axes(const es_gen_record *recs, size_t n_recs, const char *const *emotions,
                              int n_emotions, const double *alphas, int n_alphas, const char ***emo,
                              int *n_emo, double **alp, int *n_alp) {
    size_t cap = n_emotions > 0 ? (size_t)n_emotions : ES_MAX(n_recs, (size_t)1);
    const char **e = es_calloc(cap, sizeof *e);
    size_t acap = n_alphas > 0 ? (size_t)n_alphas : ES_MAX(n_recs, (size_t)1);
    double *a = es_calloc(acap, sizeof *a);
    if (!e || !a) {
        free(e);
        free(a);
        return ES_ERR_NOMEM;
    }
    int ne = 0, na = 0;
    if (emotions) {
        for (int i = 0; i < n_emotions; i++) {
            if (!emotions[i] || !*emotions[i] || find_name(e, ne, emotions[i]) >= 0) {
                free(e);
                free(a);
                return es_error(ES_ERR_INVALID_ARG, "eval: emotion %d (%s) is empty or repeated", i,
                                emotions[i] ? emotions[i] : "NULL");
            }
            e[ne++] = emotions[i];
        }
    } else {
        for (size_t i = 0; i < n_recs; i++)
            if (recs[i].emotion && *recs[i].emotion && find_name(e, ne, recs[i].emotion) < 0)
                e[ne++] = recs[i].emotion;
    }
    if (alphas) {
        for (int i = 0; i < n_alphas; i++) {
            if (!isfinite(alphas[i]) || find_alpha(a, na, alphas[i]) >= 0) {
                free(e);
                free(a);
                return es_error(ES_ERR_INVALID_ARG, "eval: alpha %d (%g) is not finite or repeated",
                                i, alphas[i]);
            }
            a[na++] = alphas[i];
        }
    } else {
        for (size_t i = 0; i < n_recs; i++)
            if (isfinite(recs[i].alpha) && find_alpha(a, na, recs[i].alpha) < 0)
                a[na++] = recs[i].alpha;
    }
    qsort(a, (size_t)na, sizeof *a, cmp_double);
    if (ne == 0 || na == 0) {
        free(e);
        free(a);
        return es_error(ES_ERR_INVALID_ARG, "eval: nothing to summarise (%d emotions, %d alphas)",
                        ne, na);
    }
    *emo = e;
    *n_emo = ne;
    *alp = a;
    *n_alp = na;
    return ES_OK;
}

/* Per-cell scratch: the metric of every response of the cell. */
typedef struct cell_arrays {
    double *tp, *eas, *val, *topic, *logppl, *d2, *rep4, *words; // [n] each
} cell_arrays;

static es_status fill_cell(es_eval_results *r, int e, int a, const es_gen_record *recs,
                           const size_t *idx, size_t n, const es_summary_params *p,
                           cell_arrays *s) {
    es_eval_cell *cell = es_eval_cell_at(r, e, a);
    int tl = r->emotion_label[e];
    size_t n_degen = 0;
    double *row = es_eval_confusion_row(r, a, e);
    for (size_t k = 0; k < n; k++) {
        const es_gen_record *rec = &recs[idx[k]];
        const double *sc = rec->scores && rec->n_labels == r->n_labels ? rec->scores : NULL;
        s->tp[k] = !sc ? NAN : tl >= 0 ? sc[tl] : 0.0;
        s->eas[k] = sc ? es_emotion_eas(sc, r->n_labels, r->neutral) : NAN;
        s->val[k] = rec->valence;
        s->topic[k] = rec->topic;
        s->logppl[k] = isfinite(rec->ppl) && rec->ppl > 0 ? log(rec->ppl) : NAN;
        es_text_fluency f;
        es_status st = es_text_fluency_of(rec->response, &p->fluency, &f);
        if (st != ES_OK) return st;
        s->d2[k] = f.distinct2;
        s->rep4[k] = f.rep4;
        s->words[k] = f.n_words;
        n_degen += f.degenerate;
        if (sc)
            es_detect_label_add(sc, r->n_labels, r->neutral, row);
        else if (r->neutral >= 0)
            row[r->neutral] += 1.0; /* unscored: counts as neutral */
    }
    cell->n = (int)n;
    cell->target_prob = es_stat_of(s->tp, n);
    cell->eas = es_stat_of(s->eas, n);
    cell->valence = es_stat_of(s->val, n);
    cell->topic = es_stat_of(s->topic, n);
    cell->log_ppl = es_stat_of(s->logppl, n);
    cell->ppl = cell->log_ppl.n ? exp(cell->log_ppl.mean) : NAN;
    cell->distinct2 = es_stat_of(s->d2, n);
    cell->rep4 = es_stat_of(s->rep4, n);
    cell->n_words = es_stat_of(s->words, n);
    cell->degenerate_share = n ? (double)n_degen / (double)n : NAN;
    return ES_OK;
}

static es_status add_samples(es_eval_results *r, int e, int a, const es_gen_record *recs,
                             const size_t *idx, size_t n, int per_cell) {
    for (size_t k = 0; k < n && (int)k < per_cell; k++) {
        const es_gen_record *rec = &recs[idx[k]];
        es_eval_sample *s = &r->samples[r->n_samples];
        s->emotion = e;
        s->alpha = a;
        s->query_id = es_strdup(rec->query_id ? rec->query_id : "");
        s->prompt = es_strdup(rec->prompt ? rec->prompt : "");
        s->response = es_strdup(rec->response ? rec->response : "");
        r->n_samples++; /* counted before the check so that free releases partial copies */
        if (!s->query_id || !s->prompt || !s->response)
            return es_error(ES_ERR_NOMEM, "eval: out of memory for samples");
        const double *sc = rec->scores && rec->n_labels == r->n_labels ? rec->scores : NULL;
        int tl = r->emotion_label[e];
        s->target_prob = !sc ? NAN : tl >= 0 ? sc[tl] : 0.0;
        s->detected = -1;
        if (sc) {
            double best = 0;
            int n_best = 0;
            for (int l = 0; l < r->n_labels; l++) {
                if (!isfinite(sc[l]) || sc[l] <= 0) continue;
                if (sc[l] > best) {
                    best = sc[l];
                    n_best = 1;
                    s->detected = l;
                } else if (sc[l] == best) {
                    n_best++;
                }
            }
            if (n_best != 1) s->detected = n_best == 0 ? r->neutral : -1;
        }
    }
    return ES_OK;
}

es_status es_eval_summarize(const es_gen_record *records, size_t n_records,
                            const char *const *emotions, int n_emotions, const double *alphas,
                            int n_alphas, const char *const *labels, int n_labels,
                            const es_eval_settings *settings, const es_summary_params *params,
                            es_eval_results **out) {
    if ((!records && n_records) || !out || n_labels < 0 || (n_labels && !labels))
        return es_error(ES_ERR_INVALID_ARG, "eval: summarize: bad arguments");
    if (n_records > (size_t)INT32_MAX)
        return es_error(ES_ERR_INVALID_ARG, "eval: %zu records is too many", n_records);
    es_summary_params p = params ? *params : es_summary_default_params();
    if (p.samples_per_cell < 0 || p.samples_per_cell > 1000)
        return es_error(ES_ERR_INVALID_ARG, "eval: samples_per_cell %d out of range 0..1000",
                        p.samples_per_cell);
    for (size_t i = 0; i < n_records; i++)
        if (records[i].scores && records[i].n_labels != n_labels)
            return es_error(ES_ERR_INVALID_ARG,
                            "eval: record %zu (%s, alpha %g, %s) has %d scores, the labels are %d",
                            i, records[i].emotion ? records[i].emotion : "?", records[i].alpha,
                            records[i].query_id ? records[i].query_id : "?", records[i].n_labels,
                            n_labels);

    const char **emo = NULL;
    double *alp = NULL;
    int ne = 0, na = 0;
    es_status st = collect_axes(records, n_records, emotions, n_emotions, alphas, n_alphas, &emo,
                                &ne, &alp, &na);
    if (st != ES_OK) return st;
    es_eval_results *r = NULL;
    st = es_eval_results_alloc(ne, emo, na, alp, n_labels, labels, &r);
    free(emo);
    free(alp);
    if (st != ES_OK) return st;
    if (settings && (st = es_eval_settings_copy(&r->settings, settings)) != ES_OK) goto fail;
    r->lin_alpha_lo = p.lin_alpha_lo;
    r->lin_alpha_hi = p.lin_alpha_hi;
    r->n_records = (int)n_records;

    /* bucket the records by cell (counting sort: start[c] .. start[c+1]) */
    size_t n_cells = (size_t)ne * (size_t)na;
    int *cell_of = es_calloc(n_records + 1, sizeof *cell_of);
    size_t *start = es_calloc(n_cells + 1, sizeof *start);
    size_t *idx = es_calloc(n_records + 1, sizeof *idx);
    size_t *fillpos = es_calloc(n_cells + 1, sizeof *fillpos);
    cell_arrays s = {0};
    double **arrays[] = {&s.tp, &s.eas, &s.val, &s.topic, &s.logppl, &s.d2, &s.rep4, &s.words};
    bool ok = cell_of && start && idx && fillpos;
    for (size_t i = 0; ok && i < ES_ARRAY_LEN(arrays); i++)
        ok = (*arrays[i] = es_calloc(n_records + 1, sizeof(double))) != NULL;
    if (!ok) {
        st = es_error(ES_ERR_NOMEM, "eval: out of memory summarising %zu records", n_records);
        goto done;
    }
    for (size_t i = 0; i < n_records; i++) {
        int e = find_name((const char *const *)r->emotions, ne, records[i].emotion);
        int a = isfinite(records[i].alpha) ? find_alpha(r->alphas, na, records[i].alpha) : -1;
        cell_of[i] = e < 0 || a < 0 ? -1 : e * na + a;
        if (cell_of[i] < 0)
            r->n_ignored++;
        else
            start[cell_of[i] + 1]++;
    }
    for (size_t c = 0; c < n_cells; c++)
        start[c + 1] += start[c];
    memcpy(fillpos, start, n_cells * sizeof *start);
    for (size_t i = 0; i < n_records; i++)
        if (cell_of[i] >= 0) idx[fillpos[cell_of[i]]++] = i;

    size_t max_samples = n_cells * (size_t)p.samples_per_cell;
    r->samples = es_calloc(max_samples + 1, sizeof *r->samples);
    if (!r->samples) {
        st = ES_ERR_NOMEM;
        goto done;
    }
    for (int e = 0; e < ne; e++)
        for (int a = 0; a < na; a++) {
            size_t c = (size_t)e * (size_t)na + (size_t)a;
            size_t n = start[c + 1] - start[c];
            if ((st = fill_cell(r, e, a, records, idx + start[c], n, &p, &s)) != ES_OK) goto done;
            if ((st = add_samples(r, e, a, records, idx + start[c], n, p.samples_per_cell)) !=
                ES_OK)
                goto done;
        }

    /* delta-EAS against alpha 0, linearity per emotion, accuracy per alpha */
    int a0 = find_alpha(r->alphas, na, 0.0);
    double *y = es_calloc((size_t)na, sizeof *y), *y2 = es_calloc((size_t)na, sizeof *y2);
    if (!y || !y2) {
        free(y);
        free(y2);
        st = ES_ERR_NOMEM;
        goto done;
    }
    for (int e = 0; e < ne; e++) {
        for (int a = 0; a < na; a++) {
            es_eval_cell *cell = es_eval_cell_at(r, e, a);
            if (a0 >= 0) cell->eas_delta = cell->eas.mean - es_eval_cell_at(r, e, a0)->eas.mean;
            y[a] = cell->target_prob.mean;
            y2[a] = cell->eas.mean;
        }
        r->linearity[e] = es_linear_fit(r->alphas, y, (size_t)na, p.lin_alpha_lo, p.lin_alpha_hi);
        r->linearity_eas[e] =
            es_linear_fit(r->alphas, y2, (size_t)na, p.lin_alpha_lo, p.lin_alpha_hi);
    }
    free(y);
    free(y2);
    for (int a = 0; a < na; a++) {
        double diag = 0, total = 0;
        for (int e = 0; e < ne; e++) {
            const double *row = es_eval_confusion_row(r, a, e);
            for (int l = 0; l < r->n_labels; l++)
                total += row[l];
            if (r->emotion_label[e] >= 0) diag += row[r->emotion_label[e]];
        }
        r->accuracy[a] = total > 0 ? diag / total : NAN;
    }
    st = ES_OK;
done:
    free(cell_of);
    free(start);
    free(idx);
    free(fillpos);
    for (size_t i = 0; i < ES_ARRAY_LEN(arrays); i++)
        free(*arrays[i]);
    if (st != ES_OK) goto fail;
    *out = r;
    return ES_OK;
fail:
    es_eval_results_free(r);
    return st == ES_ERR_NOMEM && !*es_last_error()
               ? es_error(ES_ERR_NOMEM, "eval: out of memory summarising")
               : st;
}
