/* eval_results.c — results.json (write and read back), summary.csv, and the
 * side-by-side comparison of two results (see eval_io.h).
 *
 * results.json layout (NaN is written as null; readers treat absent optional numbers
 * as NaN):
 *   {"format": "emosteer-results/1", "emosteer_version": "0.1.0",
 *    "settings": {"model_path": s, "model_name": s, "model_sha256": s, "ev_path": s,
 *                 "ev_sha256": s, "method": s, "hook": s, "layers": s, "query_file": s,
 *                 "query_sha256": s, "scorer": s, "created": s, (each string or null)
 *                 "seed": int, "n_samples": int, "max_tokens": int, "extra": {k: s}},
 *    "emotions": [s], "alphas": [x], "labels": [s],
 *    "n_records": int, "n_ignored": int,
 *    "linearity": {"alpha_lo": x, "alpha_hi": x,
 *                  "target_prob": {emotion: FIT}, "eas": {emotion: FIT}},
 *    "cells": [{"emotion": s, "alpha": x, "n": int, "target_prob": STAT, "eas": STAT,
 *               "eas_delta": x, "valence": STAT, "topic": STAT, "log_ppl": STAT,
 *               "ppl": x, "distinct2": STAT, "rep4": STAT, "degenerate_share": x,
 *               "n_words": STAT}],
 *    "confusion": [{"alpha": x, "accuracy": x, "rows": emotions, "columns": labels,
 *                   "counts": [[x, ...] per emotion]}],
 *    "samples": [{"emotion": s, "alpha": x, "query_id": s, "prompt": s, "response": s,
 *                 "target_prob": x, "detected": label or null}]}
 *   STAT = {"n": int, "mean": x, "sd": x, "ci_lo": x, "ci_hi": x}
 *   FIT  = {"n_points": int, "slope": x, "intercept": x, "r2": x}
 */
#include "eval_io.h"

#include "common.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- writing --------------------------------------------------------------- */

static json_t *jnum(double v) {
    return isfinite(v) ? json_real(v) : json_null();
}

static json_t *jstr(const char *s) {
    if (!s) return json_null();
    char *clean = es_utf8_sanitize(s);
    json_t *j = clean ? json_string(clean) : NULL;
    free(clean);
    return j;
}

/* json_object_set_new that remembers a failure in *ok (a NULL value is a failure) */
static void put(json_t *o, const char *key, json_t *v, bool *ok) {
    if (!v || !o || json_object_set_new(o, key, v) != 0) *ok = false;
}

static json_t *stat_json(const es_stat *s, bool *ok) {
    json_t *o = json_object();
    put(o, "n", json_integer(s->n), ok);
    put(o, "mean", jnum(s->mean), ok);
    put(o, "sd", jnum(s->sd), ok);
    put(o, "ci_lo", jnum(s->ci_lo), ok);
    put(o, "ci_hi", jnum(s->ci_hi), ok);
    if (!o) *ok = false;
    return o;
}

static json_t *fit_json(const es_linearity *f, bool *ok) {
    json_t *o = json_object();
    put(o, "n_points", json_integer(f->n_points), ok);
    put(o, "slope", jnum(f->slope), ok);
    put(o, "intercept", jnum(f->intercept), ok);
    put(o, "r2", jnum(f->r2), ok);
    if (!o) *ok = false;
    return o;
}

static json_t *results_to_json(const es_eval_results *r) {
    bool ok = true;
    json_t *root = json_object();
    put(root, "format", json_string(ES_RESULTS_FORMAT), &ok);
    put(root, "emosteer_version", json_string(ES_VERSION_STRING), &ok);

    const es_eval_settings *s = &r->settings;
    json_t *js = json_object();
    put(root, "settings", js, &ok);
#define PUT_FIELD(f) put(js, #f, jstr(s->f), &ok);
    ES_EVAL_SETTINGS_STRINGS(PUT_FIELD)
#undef PUT_FIELD
    if (s->seed <= (uint64_t)INT64_MAX) {
        put(js, "seed", json_integer((json_int_t)s->seed), &ok);
    } else {
        char buf[32];
        snprintf(buf, sizeof buf, "%" PRIu64, s->seed);
        put(js, "seed", json_string(buf), &ok);
    }
    put(js, "n_samples", json_integer(s->n_samples), &ok);
    put(js, "max_tokens", json_integer(s->max_tokens), &ok);
    json_t *extra = json_object();
    put(js, "extra", extra, &ok);
    for (int i = 0; i < s->n_extra; i++) {
        char *k = es_utf8_sanitize(s->extra[i].key);
        if (!k)
            ok = false;
        else
            put(extra, k, jstr(s->extra[i].value), &ok);
        free(k);
    }

    json_t *emotions = json_array(), *alphas = json_array(), *labels = json_array();
    put(root, "emotions", emotions, &ok);
    put(root, "alphas", alphas, &ok);
    put(root, "labels", labels, &ok);
    for (int e = 0; e < r->n_emotions; e++)
        if (!emotions || json_array_append_new(emotions, jstr(r->emotions[e]))) ok = false;
    for (int a = 0; a < r->n_alphas; a++)
        if (!alphas || json_array_append_new(alphas, json_real(r->alphas[a]))) ok = false;
    for (int l = 0; l < r->n_labels; l++)
        if (!labels || json_array_append_new(labels, jstr(r->labels[l]))) ok = false;
    put(root, "n_records", json_integer(r->n_records), &ok);
    put(root, "n_ignored", json_integer(r->n_ignored), &ok);

    json_t *lin = json_object(), *lin_tp = json_object(), *lin_eas = json_object();
    put(root, "linearity", lin, &ok);
    put(lin, "alpha_lo", jnum(r->lin_alpha_lo), &ok);
    put(lin, "alpha_hi", jnum(r->lin_alpha_hi), &ok);
    put(lin, "target_prob", lin_tp, &ok);
    put(lin, "eas", lin_eas, &ok);
    for (int e = 0; e < r->n_emotions; e++) {
        put(lin_tp, r->emotions[e], fit_json(&r->linearity[e], &ok), &ok);
        put(lin_eas, r->emotions[e], fit_json(&r->linearity_eas[e], &ok), &ok);
    }

    json_t *cells = json_array();
    put(root, "cells", cells, &ok);
    for (int e = 0; e < r->n_emotions && ok; e++)
        for (int a = 0; a < r->n_alphas && ok; a++) {
            const es_eval_cell *c = es_eval_cell_at(r, e, a);
            json_t *o = json_object();
            if (!o || json_array_append_new(cells, o)) {
                ok = false;
                break;
            }
            put(o, "emotion", jstr(r->emotions[e]), &ok);
            put(o, "alpha", json_real(r->alphas[a]), &ok);
            put(o, "n", json_integer(c->n), &ok);
            put(o, "target_prob", stat_json(&c->target_prob, &ok), &ok);
            put(o, "eas", stat_json(&c->eas, &ok), &ok);
            put(o, "eas_delta", jnum(c->eas_delta), &ok);
            put(o, "valence", stat_json(&c->valence, &ok), &ok);
            put(o, "topic", stat_json(&c->topic, &ok), &ok);
            put(o, "log_ppl", stat_json(&c->log_ppl, &ok), &ok);
            put(o, "ppl", jnum(c->ppl), &ok);
            put(o, "distinct2", stat_json(&c->distinct2, &ok), &ok);
            put(o, "rep4", stat_json(&c->rep4, &ok), &ok);
            put(o, "degenerate_share", jnum(c->degenerate_share), &ok);
            put(o, "n_words", stat_json(&c->n_words, &ok), &ok);
        }

    json_t *conf = json_array();
    put(root, "confusion", conf, &ok);
    for (int a = 0; a < r->n_alphas && ok; a++) {
        json_t *o = json_object(), *counts = json_array();
        if (!o || json_array_append_new(conf, o)) ok = false;
        put(o, "alpha", json_real(r->alphas[a]), &ok);
        put(o, "accuracy", jnum(r->accuracy[a]), &ok);
        put(o, "counts", counts, &ok);
        for (int e = 0; e < r->n_emotions && ok; e++) {
            json_t *row = json_array();
            if (!row || json_array_append_new(counts, row)) ok = false;
            const double *v = es_eval_confusion_row(r, a, e);
            for (int l = 0; l < r->n_labels && ok; l++)
                if (json_array_append_new(row, json_real(v[l]))) ok = false;
        }
    }

    json_t *samples = json_array();
    put(root, "samples", samples, &ok);
    for (int i = 0; i < r->n_samples && ok; i++) {
        const es_eval_sample *sm = &r->samples[i];
        json_t *o = json_object();
        if (!o || json_array_append_new(samples, o)) ok = false;
        put(o, "emotion", jstr(r->emotions[sm->emotion]), &ok);
        put(o, "alpha", json_real(r->alphas[sm->alpha]), &ok);
        put(o, "query_id", jstr(sm->query_id), &ok);
        put(o, "prompt", jstr(sm->prompt), &ok);
        put(o, "response", jstr(sm->response), &ok);
        put(o, "target_prob", jnum(sm->target_prob), &ok);
        put(o, "detected", sm->detected >= 0 ? jstr(r->labels[sm->detected]) : json_null(), &ok);
    }
    if (!ok) {
        json_decref(root);
        return NULL;
    }
    return root;
}

es_status es_results_write_json(const es_eval_results *r, const char *path) {
    if (!r || !path) return es_error(ES_ERR_INVALID_ARG, "results: NULL results or path");
    json_t *root = results_to_json(r);
    if (!root) return es_error(ES_ERR_NOMEM, "results: out of memory building %s", path);
    int rc = json_dump_file(root, path, JSON_INDENT(1) | JSON_REAL_PRECISION(10));
    json_decref(root);
    if (rc != 0) return es_error(ES_ERR_IO, "results: cannot write %s: %s", path, strerror(errno));
    return ES_OK;
}

/* ---- reading --------------------------------------------------------------- */

/* Reader state: the file name and a JSON path for messages. */
typedef struct reader {
    const char *file;
} reader;

static es_status bad(const reader *rd, const char *where, const char *what) {
    return es_error(ES_ERR_FORMAT, "%s: %s: %s", rd->file, where, what);
}

static es_status read_num(const reader *rd, json_t *o, const char *key, const char *where,
                          bool required, double *out) {
    json_t *v = json_object_get(o, key);
    *out = NAN;
    char path[256];
    snprintf(path, sizeof path, "%s.%s", where, key);
    if (!v) return required ? bad(rd, path, "missing") : ES_OK;
    if (json_is_null(v) && !required) return ES_OK;
    if (!json_is_number(v))
        return bad(rd, path, required ? "expected a number" : "expected a number or null");
    *out = json_number_value(v);
    if (required && !isfinite(*out)) return bad(rd, path, "not finite");
    return ES_OK;
}

static es_status read_int(const reader *rd, json_t *o, const char *key, const char *where,
                          bool required, int *out) {
    json_t *v = json_object_get(o, key);
    char path[256];
    snprintf(path, sizeof path, "%s.%s", where, key);
    if (!v) return required ? bad(rd, path, "missing") : ES_OK;
    if (!json_is_integer(v)) return bad(rd, path, "expected an integer");
    json_int_t x = json_integer_value(v);
    if (x < 0 || x > INT32_MAX) return bad(rd, path, "out of range 0..2^31-1");
    *out = (int)x;
    return ES_OK;
}

static es_status read_str(const reader *rd, json_t *o, const char *key, const char *where,
                          char **out) {
    json_t *v = json_object_get(o, key);
    *out = NULL;
    char path[256];
    snprintf(path, sizeof path, "%s.%s", where, key);
    if (!v || json_is_null(v)) return ES_OK;
    if (!json_is_string(v)) return bad(rd, path, "expected a string or null");
    *out = es_strdup(json_string_value(v));
    return *out ? ES_OK : ES_ERR_NOMEM;
}

static es_status read_stat(const reader *rd, json_t *o, const char *key, const char *where,
                           es_stat *s) {
    json_t *v = json_object_get(o, key);
    char path[256];
    snprintf(path, sizeof path, "%s.%s", where, key);
    es_stat none = {0, NAN, NAN, NAN, NAN};
    *s = none;
    if (!v || json_is_null(v)) return ES_OK;
    if (!json_is_object(v)) return bad(rd, path, "expected an object");
    es_status st;
    if ((st = read_int(rd, v, "n", path, false, &s->n)) != ES_OK) return st;
    if ((st = read_num(rd, v, "mean", path, false, &s->mean)) != ES_OK) return st;
    if ((st = read_num(rd, v, "sd", path, false, &s->sd)) != ES_OK) return st;
    if ((st = read_num(rd, v, "ci_lo", path, false, &s->ci_lo)) != ES_OK) return st;
    return read_num(rd, v, "ci_hi", path, false, &s->ci_hi);
}

static es_status read_fit(const reader *rd, json_t *o, const char *key, const char *where,
                          es_linearity *f) {
    json_t *v = json_object_get(o, key);
    char path[256];
    snprintf(path, sizeof path, "%s.%s", where, key);
    if (!v || json_is_null(v)) return ES_OK;
    if (!json_is_object(v)) return bad(rd, path, "expected an object");
    es_status st;
    if ((st = read_int(rd, v, "n_points", path, false, &f->n_points)) != ES_OK) return st;
    if ((st = read_num(rd, v, "slope", path, false, &f->slope)) != ES_OK) return st;
    if ((st = read_num(rd, v, "intercept", path, false, &f->intercept)) != ES_OK) return st;
    return read_num(rd, v, "r2", path, false, &f->r2);
}

/* A JSON array of non-empty strings -> malloc'ed array of borrowed pointers. */
static es_status read_names(const reader *rd, json_t *root, const char *key, bool allow_empty,
                            const char ***out, int *n) {
    json_t *v = json_object_get(root, key);
    if (!v) return bad(rd, key, "missing");
    if (!json_is_array(v)) return bad(rd, key, "expected an array of strings");
    size_t m = json_array_size(v);
    if ((!allow_empty && m == 0) || m > 4096) return bad(rd, key, "must hold 1..4096 entries");
    const char **names = es_calloc(m + 1, sizeof *names);
    if (!names) return ES_ERR_NOMEM;
    for (size_t i = 0; i < m; i++) {
        json_t *s = json_array_get(v, i);
        char path[64];
        snprintf(path, sizeof path, "%s[%zu]", key, i);
        if (!json_is_string(s) || !*json_string_value(s)) {
            free(names);
            return bad(rd, path, "expected a non-empty string");
        }
        names[i] = json_string_value(s);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(names[j], names[i])) {
                free(names);
                return bad(rd, path, "repeated");
            }
    }
    *out = names;
    *n = (int)m;
    return ES_OK;
}

static int index_of_alpha(const es_eval_results *r, double a) {
    for (int i = 0; i < r->n_alphas; i++)
        if (fabs(r->alphas[i] - a) <= 1e-9 * ES_MAX(1.0, fabs(a))) return i;
    return -1;
}

static int index_of_name(char **names, int n, const char *s) {
    for (int i = 0; i < n; i++)
        if (!strcmp(names[i], s)) return i;
    return -1;
}

static es_status read_settings(const reader *rd, json_t *root, es_eval_settings *s) {
    json_t *js = json_object_get(root, "settings");
    if (!js || json_is_null(js)) return ES_OK;
    if (!json_is_object(js)) return bad(rd, "settings", "expected an object");
    es_status st;
#define READ_FIELD(f)                                                                              \
    if ((st = read_str(rd, js, #f, "settings", &s->f)) != ES_OK) return st;
    ES_EVAL_SETTINGS_STRINGS(READ_FIELD)
#undef READ_FIELD
    json_t *seed = json_object_get(js, "seed");
    if (seed && json_is_integer(seed) && json_integer_value(seed) >= 0) {
        s->seed = (uint64_t)json_integer_value(seed);
    } else if (seed && json_is_string(seed)) {
        char *end;
        errno = 0;
        s->seed = strtoull(json_string_value(seed), &end, 10);
        if (*end || errno || !*json_string_value(seed))
            return bad(rd, "settings.seed", "not an integer");
    } else if (seed && !json_is_null(seed)) {
        return bad(rd, "settings.seed", "expected a non-negative integer");
    }
    if ((st = read_int(rd, js, "n_samples", "settings", false, &s->n_samples)) != ES_OK) return st;
    if ((st = read_int(rd, js, "max_tokens", "settings", false, &s->max_tokens)) != ES_OK)
        return st;
    json_t *extra = json_object_get(js, "extra");
    if (extra && !json_is_null(extra)) {
        if (!json_is_object(extra)) return bad(rd, "settings.extra", "expected an object");
        const char *k;
        json_t *v;
        json_object_foreach(extra, k, v) {
            if (!json_is_string(v)) {
                char path[256];
                snprintf(path, sizeof path, "settings.extra.%.200s", k);
                return bad(rd, path, "expected a string");
            }
            if ((st = es_eval_settings_add(s, k, json_string_value(v))) != ES_OK) return st;
        }
    }
    return ES_OK;
}

static es_status read_cells(const reader *rd, json_t *root, es_eval_results *r) {
    json_t *cells = json_object_get(root, "cells");
    if (!cells) return bad(rd, "cells", "missing");
    if (!json_is_array(cells)) return bad(rd, "cells", "expected an array");
    for (size_t i = 0; i < json_array_size(cells); i++) {
        json_t *o = json_array_get(cells, i);
        char where[64];
        snprintf(where, sizeof where, "cells[%zu]", i);
        if (!json_is_object(o)) return bad(rd, where, "expected an object");
        json_t *em = json_object_get(o, "emotion");
        if (!json_is_string(em)) return bad(rd, where, "\"emotion\" missing or not a string");
        int e = index_of_name(r->emotions, r->n_emotions, json_string_value(em));
        if (e < 0) return bad(rd, where, "emotion not listed in \"emotions\"");
        double alpha;
        es_status st = read_num(rd, o, "alpha", where, true, &alpha);
        if (st != ES_OK) return st;
        int a = index_of_alpha(r, alpha);
        if (a < 0) return bad(rd, where, "alpha not listed in \"alphas\"");
        es_eval_cell *c = es_eval_cell_at(r, e, a);
        if ((st = read_int(rd, o, "n", where, true, &c->n)) != ES_OK ||
            (st = read_stat(rd, o, "target_prob", where, &c->target_prob)) != ES_OK ||
            (st = read_stat(rd, o, "eas", where, &c->eas)) != ES_OK ||
            (st = read_num(rd, o, "eas_delta", where, false, &c->eas_delta)) != ES_OK ||
            (st = read_stat(rd, o, "valence", where, &c->valence)) != ES_OK ||
            (st = read_stat(rd, o, "topic", where, &c->topic)) != ES_OK ||
            (st = read_stat(rd, o, "log_ppl", where, &c->log_ppl)) != ES_OK ||
            (st = read_num(rd, o, "ppl", where, false, &c->ppl)) != ES_OK ||
            (st = read_stat(rd, o, "distinct2", where, &c->distinct2)) != ES_OK ||
            (st = read_stat(rd, o, "rep4", where, &c->rep4)) != ES_OK ||
            (st = read_num(rd, o, "degenerate_share", where, false, &c->degenerate_share)) !=
                ES_OK ||
            (st = read_stat(rd, o, "n_words", where, &c->n_words)) != ES_OK)
            return st;
    }
    return ES_OK;
}

static es_status read_confusion(const reader *rd, json_t *root, es_eval_results *r) {
    json_t *conf = json_object_get(root, "confusion");
    if (!conf || json_is_null(conf)) return ES_OK;
    if (!json_is_array(conf)) return bad(rd, "confusion", "expected an array");
    for (size_t i = 0; i < json_array_size(conf); i++) {
        json_t *o = json_array_get(conf, i);
        char where[96];
        snprintf(where, sizeof where, "confusion[%zu]", i);
        if (!json_is_object(o)) return bad(rd, where, "expected an object");
        double alpha;
        es_status st = read_num(rd, o, "alpha", where, true, &alpha);
        if (st != ES_OK) return st;
        int a = index_of_alpha(r, alpha);
        if (a < 0) return bad(rd, where, "alpha not listed in \"alphas\"");
        if ((st = read_num(rd, o, "accuracy", where, false, &r->accuracy[a])) != ES_OK) return st;
        json_t *counts = json_object_get(o, "counts");
        if (!json_is_array(counts) || json_array_size(counts) != (size_t)r->n_emotions)
            return bad(rd, where, "\"counts\" must be an array with one row per emotion");
        for (int e = 0; e < r->n_emotions; e++) {
            json_t *row = json_array_get(counts, (size_t)e);
            snprintf(where, sizeof where, "confusion[%zu].counts[%d]", i, e);
            if (!json_is_array(row) || json_array_size(row) != (size_t)r->n_labels)
                return bad(rd, where, "expected an array with one number per label");
            double *v = es_eval_confusion_row(r, a, e);
            for (int l = 0; l < r->n_labels; l++) {
                json_t *x = json_array_get(row, (size_t)l);
                if (!json_is_number(x) || !(json_number_value(x) >= 0))
                    return bad(rd, where, "counts must be numbers >= 0");
                v[l] = json_number_value(x);
            }
        }
    }
    return ES_OK;
}

static es_status read_samples(const reader *rd, json_t *root, es_eval_results *r) {
    json_t *samples = json_object_get(root, "samples");
    if (!samples || json_is_null(samples)) return ES_OK;
    if (!json_is_array(samples)) return bad(rd, "samples", "expected an array");
    size_t m = json_array_size(samples);
    if (m > 1000000) return bad(rd, "samples", "more than 10^6 entries");
    r->samples = es_calloc(m + 1, sizeof *r->samples);
    if (!r->samples) return ES_ERR_NOMEM;
    for (size_t i = 0; i < m; i++) {
        json_t *o = json_array_get(samples, i);
        char where[64];
        snprintf(where, sizeof where, "samples[%zu]", i);
        if (!json_is_object(o)) return bad(rd, where, "expected an object");
        es_eval_sample *s = &r->samples[r->n_samples++];
        s->detected = -1;
        json_t *em = json_object_get(o, "emotion");
        if (!json_is_string(em) ||
            (s->emotion = index_of_name(r->emotions, r->n_emotions, json_string_value(em))) < 0)
            return bad(rd, where, "\"emotion\" is not one of \"emotions\"");
        double alpha;
        es_status st = read_num(rd, o, "alpha", where, true, &alpha);
        if (st != ES_OK) return st;
        if ((s->alpha = index_of_alpha(r, alpha)) < 0)
            return bad(rd, where, "alpha not listed in \"alphas\"");
        if ((st = read_str(rd, o, "query_id", where, &s->query_id)) != ES_OK ||
            (st = read_str(rd, o, "prompt", where, &s->prompt)) != ES_OK ||
            (st = read_str(rd, o, "response", where, &s->response)) != ES_OK ||
            (st = read_num(rd, o, "target_prob", where, false, &s->target_prob)) != ES_OK)
            return st;
        if ((!s->query_id && !(s->query_id = es_strdup(""))) ||
            (!s->prompt && !(s->prompt = es_strdup(""))) ||
            (!s->response && !(s->response = es_strdup(""))))
            return ES_ERR_NOMEM;
        json_t *det = json_object_get(o, "detected");
        if (det && json_is_string(det))
            s->detected = index_of_name(r->labels, r->n_labels, json_string_value(det));
        else if (det && !json_is_null(det))
            return bad(rd, where, "\"detected\" must be a label or null");
    }
    return ES_OK;
}

static es_status results_from_json(const reader *rd, json_t *root, es_eval_results **out) {
    if (!json_is_object(root)) return bad(rd, "(top level)", "expected an object");
    json_t *fmt = json_object_get(root, "format");
    if (!json_is_string(fmt) || strncmp(json_string_value(fmt), "emosteer-results/", 17))
        return bad(rd, "format",
                   "missing or not \"emosteer-results/N\" (not an emosteer results.json?)");
    if (strcmp(json_string_value(fmt), ES_RESULTS_FORMAT))
        return es_error(ES_ERR_UNSUPPORTED, "%s: format %s is not %s", rd->file,
                        json_string_value(fmt), ES_RESULTS_FORMAT);
    const char **emotions = NULL, **labels = NULL;
    int ne = 0, nl = 0;
    double *alphas = NULL;
    es_eval_results *r = NULL;
    es_status st;
    if ((st = read_names(rd, root, "emotions", false, &emotions, &ne)) != ES_OK) goto done;
    if ((st = read_names(rd, root, "labels", true, &labels, &nl)) != ES_OK) goto done;
    json_t *ja = json_object_get(root, "alphas");
    if (!json_is_array(ja) || json_array_size(ja) == 0 || json_array_size(ja) > 4096) {
        st = bad(rd, "alphas", "expected an array of 1..4096 numbers");
        goto done;
    }
    size_t na = json_array_size(ja);
    if (!(alphas = es_calloc(na, sizeof *alphas))) {
        st = ES_ERR_NOMEM;
        goto done;
    }
    for (size_t i = 0; i < na; i++) {
        json_t *x = json_array_get(ja, i);
        char where[32];
        snprintf(where, sizeof where, "alphas[%zu]", i);
        if (!json_is_number(x) || !isfinite(json_number_value(x))) {
            st = bad(rd, where, "expected a finite number");
            goto done;
        }
        alphas[i] = json_number_value(x);
        if (i && !(alphas[i] > alphas[i - 1])) {
            st = bad(rd, where, "alphas must be strictly ascending");
            goto done;
        }
    }
    if ((st = es_eval_results_alloc(ne, emotions, (int)na, alphas, nl, labels, &r)) != ES_OK)
        goto done;
    if ((st = read_settings(rd, root, &r->settings)) != ES_OK) goto done;
    r->n_records = r->n_ignored = 0;
    if ((st = read_int(rd, root, "n_records", "(top level)", false, &r->n_records)) != ES_OK)
        goto done;
    if ((st = read_int(rd, root, "n_ignored", "(top level)", false, &r->n_ignored)) != ES_OK)
        goto done;
    json_t *lin = json_object_get(root, "linearity");
    if (lin && !json_is_null(lin)) {
        if (!json_is_object(lin)) {
            st = bad(rd, "linearity", "expected an object");
            goto done;
        }
        if ((st = read_num(rd, lin, "alpha_lo", "linearity", false, &r->lin_alpha_lo)) != ES_OK ||
            (st = read_num(rd, lin, "alpha_hi", "linearity", false, &r->lin_alpha_hi)) != ES_OK)
            goto done;
        const char *keys[2] = {"target_prob", "eas"};
        es_linearity *fits[2] = {r->linearity, r->linearity_eas};
        for (int k = 0; k < 2; k++) {
            json_t *m = json_object_get(lin, keys[k]);
            if (!m || json_is_null(m)) continue;
            char where[64];
            snprintf(where, sizeof where, "linearity.%s", keys[k]);
            if (!json_is_object(m)) {
                st = bad(rd, where, "expected an object");
                goto done;
            }
            for (int e = 0; e < ne; e++)
                if ((st = read_fit(rd, m, r->emotions[e], where, &fits[k][e])) != ES_OK) goto done;
        }
    }
    if ((st = read_cells(rd, root, r)) != ES_OK) goto done;
    if ((st = read_confusion(rd, root, r)) != ES_OK) goto done;
    if ((st = read_samples(rd, root, r)) != ES_OK) goto done;
done:
    free(emotions);
    free(labels);
    free(alphas);
    if (st != ES_OK) {
        es_eval_results_free(r);
        if (st == ES_ERR_NOMEM) return es_error(st, "%s: out of memory", rd->file);
        return st;
    }
    *out = r;
    return ES_OK;
}

static es_status parse_root(json_t *root, const json_error_t *err, const char *name,
                            es_eval_results **out) {
    if (!root)
        return es_error(ES_ERR_FORMAT, "%s: invalid JSON at line %d column %d: %s", name, err->line,
                        err->column, err->text);
    reader rd = {name};
    es_status st = results_from_json(&rd, root, out);
    json_decref(root);
    return st;
}

es_status es_results_read_json(const char *path, es_eval_results **out) {
    if (!path || !out) return es_error(ES_ERR_INVALID_ARG, "results: NULL path");
    FILE *f = fopen(path, "rb");
    if (!f) return es_error(ES_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    json_error_t err;
    json_t *root = json_loadf(f, JSON_REJECT_DUPLICATES, &err);
    fclose(f);
    return parse_root(root, &err, path, out);
}

es_status es_results_parse(const char *json, size_t len, const char *name, es_eval_results **out) {
    if (!json || !out) return es_error(ES_ERR_INVALID_ARG, "results: NULL input");
    json_error_t err;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &err);
    return parse_root(root, &err, name ? name : "(memory)", out);
}

/* ---- summary.csv --------------------------------------------------------------- */

void es_csv_num(FILE *f, double v) {
    if (isfinite(v))
        fprintf(f, ",%.6g", v);
    else
        fputc(',', f);
}

/* A field quoted when it holds a comma, quote or line break (RFC 4180). */
void es_csv_text(FILE *f, const char *s) {
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

es_status es_results_write_csv(const es_eval_results *r, const char *path) {
    if (!r || !path) return es_error(ES_ERR_INVALID_ARG, "results: NULL results or path");
    FILE *f = fopen(path, "w");
    if (!f) return es_error(ES_ERR_IO, "results: cannot create %s: %s", path, strerror(errno));
    fputs("emotion,alpha,n,target_prob_mean,target_prob_sd,target_prob_ci_lo,target_prob_ci_hi,"
          "eas_mean,eas_sd,eas_delta,valence_mean,distinct2_mean,distinct2_sd,rep4_mean,rep4_sd,"
          "degenerate_share,ppl,topic_mean,topic_sd\n",
          f);
    for (int e = 0; e < r->n_emotions; e++)
        for (int a = 0; a < r->n_alphas; a++) {
            const es_eval_cell *c = es_eval_cell_at(r, e, a);
            es_csv_text(f, r->emotions[e]);
            fprintf(f, ",%g,%d", r->alphas[a], c->n);
            es_csv_num(f, c->target_prob.mean);
            es_csv_num(f, c->target_prob.sd);
            es_csv_num(f, c->target_prob.ci_lo);
            es_csv_num(f, c->target_prob.ci_hi);
            es_csv_num(f, c->eas.mean);
            es_csv_num(f, c->eas.sd);
            es_csv_num(f, c->eas_delta);
            es_csv_num(f, c->valence.mean);
            es_csv_num(f, c->distinct2.mean);
            es_csv_num(f, c->distinct2.sd);
            es_csv_num(f, c->rep4.mean);
            es_csv_num(f, c->rep4.sd);
            es_csv_num(f, c->degenerate_share);
            es_csv_num(f, c->ppl);
            es_csv_num(f, c->topic.mean);
            es_csv_num(f, c->topic.sd);
            fputc('\n', f);
        }
    bool failed = ferror(f) != 0;
    if (fclose(f) != 0 || failed) return es_error(ES_ERR_IO, "results: cannot write %s", path);
    return ES_OK;
}

/* ---- compare ----------------------------------------------------------------- */

static const char *or_dash(const char *s) {
    return s && *s ? s : "-";
}

static void cmp_row(FILE *out, const char *what, const char *a, const char *b) {
    /* long values (paths) keep their last 30 characters */
    const char *va = or_dash(a), *vb = or_dash(b);
    size_t la = strlen(va), lb = strlen(vb);
    fprintf(out, "%-16s %s%-30.30s %s%-30.30s%s\n", what, la > 30 ? "..." : "",
            la > 30 ? va + la - 27 : va, lb > 30 ? "..." : "", lb > 30 ? vb + lb - 27 : vb,
            (a && b && strcmp(a, b)) || (!a) != (!b) ? "  *" : "");
}

static void fmt_num(char *buf, size_t n, double v, const char *fmt) {
    if (isfinite(v))
        snprintf(buf, n, fmt, v);
    else
        snprintf(buf, n, "-");
}

/* union of the alphas of a and b, ascending (at most n_a + n_b) */
static int alpha_union(const es_eval_results *a, const es_eval_results *b, double *out) {
    int n = 0;
    for (int k = 0; k < 2; k++) {
        const es_eval_results *r = k ? b : a;
        for (int i = 0; i < r->n_alphas; i++) {
            int found = 0;
            for (int j = 0; j < n; j++)
                found |= fabs(out[j] - r->alphas[i]) <= 1e-9 * ES_MAX(1.0, fabs(out[j]));
            if (!found) out[n++] = r->alphas[i];
        }
    }
    for (int i = 1; i < n; i++) /* insertion sort: n is small */
        for (int j = i; j > 0 && out[j] < out[j - 1]; j--) {
            double t = out[j];
            out[j] = out[j - 1];
            out[j - 1] = t;
        }
    return n;
}

es_status es_results_compare(const es_eval_results *a, const char *name_a, const es_eval_results *b,
                             const char *name_b, FILE *out) {
    if (!a || !b || !out) return es_error(ES_ERR_INVALID_ARG, "compare: NULL argument");
    char sa[64], sb[64];
    fprintf(out, "A: %s\nB: %s\n\n", or_dash(name_a), or_dash(name_b));
    fprintf(out, "%-16s %-30s %-30s\n", "", "A", "B");
    cmp_row(out, "model", a->settings.model_name ? a->settings.model_name : a->settings.model_path,
            b->settings.model_name ? b->settings.model_name : b->settings.model_path);
    snprintf(sa, sizeof sa, "%.12s", or_dash(a->settings.model_sha256));
    snprintf(sb, sizeof sb, "%.12s", or_dash(b->settings.model_sha256));
    cmp_row(out, "model sha256", sa, sb);
    cmp_row(out, "ev file", a->settings.ev_path, b->settings.ev_path);
    snprintf(sa, sizeof sa, "%.12s", or_dash(a->settings.ev_sha256));
    snprintf(sb, sizeof sb, "%.12s", or_dash(b->settings.ev_sha256));
    cmp_row(out, "ev sha256", sa, sb);
    cmp_row(out, "method", a->settings.method, b->settings.method);
    cmp_row(out, "hook", a->settings.hook, b->settings.hook);
    cmp_row(out, "layers", a->settings.layers, b->settings.layers);
    cmp_row(out, "scorer", a->settings.scorer, b->settings.scorer);
    snprintf(sa, sizeof sa, "%d", a->n_records);
    snprintf(sb, sizeof sb, "%d", b->n_records);
    cmp_row(out, "responses", sa, sb);
    fputs("(* = differs)\n\n", out);

    size_t n_union = (size_t)a->n_alphas + (size_t)b->n_alphas;
    double *alphas = es_calloc(n_union, sizeof *alphas);
    if (!alphas) return ES_ERR_NOMEM;
    int na = alpha_union(a, b, alphas);

    fputs("mean target-emotion probability (A | B) per alpha; slope and R^2 of the linear fit\n",
          out);
    fprintf(out, "%-12s", "emotion");
    for (int i = 0; i < na; i++) {
        char h[32];
        snprintf(h, sizeof h, "a=%g", alphas[i]);
        fprintf(out, " %15s", h);
    }
    fprintf(out, " %15s %15s\n", "slope", "R^2");
    /* rows: emotions of A, then those only in B */
    for (int k = 0; k < 2; k++) {
        const es_eval_results *r = k ? b : a;
        for (int e = 0; e < r->n_emotions; e++) {
            const char *name = r->emotions[e];
            if (k == 1 && index_of_name(a->emotions, a->n_emotions, name) >= 0) continue;
            int ea = index_of_name(a->emotions, a->n_emotions, name);
            int eb = index_of_name(b->emotions, b->n_emotions, name);
            fprintf(out, "%-12.12s", name);
            for (int i = 0; i < na; i++) {
                int ia = ea >= 0 ? index_of_alpha(a, alphas[i]) : -1;
                int ib = eb >= 0 ? index_of_alpha(b, alphas[i]) : -1;
                fmt_num(sa, sizeof sa, ia >= 0 ? es_eval_cell_at(a, ea, ia)->target_prob.mean : NAN,
                        "%.3f");
                fmt_num(sb, sizeof sb, ib >= 0 ? es_eval_cell_at(b, eb, ib)->target_prob.mean : NAN,
                        "%.3f");
                char cell[160];
                snprintf(cell, sizeof cell, "%s|%s", sa, sb);
                fprintf(out, " %15s", cell);
            }
            char cell[160];
            fmt_num(sa, sizeof sa, ea >= 0 ? a->linearity[ea].slope : NAN, "%.3f");
            fmt_num(sb, sizeof sb, eb >= 0 ? b->linearity[eb].slope : NAN, "%.3f");
            snprintf(cell, sizeof cell, "%s|%s", sa, sb);
            fprintf(out, " %15s", cell);
            fmt_num(sa, sizeof sa, ea >= 0 ? a->linearity[ea].r2 : NAN, "%.3f");
            fmt_num(sb, sizeof sb, eb >= 0 ? b->linearity[eb].r2 : NAN, "%.3f");
            snprintf(cell, sizeof cell, "%s|%s", sa, sb);
            fprintf(out, " %15s\n", cell);
        }
    }
    fputs("\ndegenerate share (A | B) per alpha, over all emotions\n", out);
    fprintf(out, "%-12s", "");
    for (int i = 0; i < na; i++) {
        double v[2];
        for (int k = 0; k < 2; k++) {
            const es_eval_results *r = k ? b : a;
            int ia = index_of_alpha(r, alphas[i]);
            double sum = 0, n = 0;
            for (int e = 0; ia >= 0 && e < r->n_emotions; e++) {
                const es_eval_cell *c = es_eval_cell_at(r, e, ia);
                if (c->n > 0 && isfinite(c->degenerate_share)) {
                    sum += c->degenerate_share * c->n;
                    n += c->n;
                }
            }
            v[k] = n > 0 ? sum / n : NAN;
        }
        fmt_num(sa, sizeof sa, v[0], "%.3f");
        fmt_num(sb, sizeof sb, v[1], "%.3f");
        char cell[160];
        snprintf(cell, sizeof cell, "%s|%s", sa, sb);
        fprintf(out, " %15s", cell);
    }
    fputc('\n', out);
    free(alphas);
    if (ferror(out)) return es_error(ES_ERR_IO, "compare: cannot write the table");
    return ES_OK;
}

es_status es_results_compare_files(const char *path_a, const char *path_b, FILE *out) {
    es_eval_results *a = NULL, *b = NULL;
    es_status st = es_results_read_json(path_a, &a);
    if (st == ES_OK) st = es_results_read_json(path_b, &b);
    if (st == ES_OK) st = es_results_compare(a, path_a, b, path_b, out);
    es_eval_results_free(a);
    es_eval_results_free(b);
    return st;
}
