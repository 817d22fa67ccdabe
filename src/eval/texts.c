/* texts.c — texts scored outside `eval` (`emosteer score`): reading a .txt or .jsonl
 * file, writing each line back with its label probabilities, and the per-group means
 * (see emosteer.h, "Evaluation: scoring texts"). */
#include "eval_io.h"

#include "common.h"
#include "file.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TEXT_FILE ((size_t)1 << 30)
#define MAX_TEXTS 10000000

/* Keys that hold one value per line or a measurement, never a grouping. */
static const char *const not_group_keys[] = {
    "text",   "response", "output", "prompt", "query",   "query_id", "id",     "seed",
    "sample", "n_tokens", "ppl",    "topic",  "valence", "scores",   "scorer", "line"};

struct es_text_set {
    char *path;
    bool jsonl;           /* a .jsonl file (else one text per line) */
    const char *text_key; /* "text", "response" or "output" (the first line's); NULL for .txt */
    int n;
    char **texts;  /* [n] owned */
    int *line;     /* [n] 1-based line numbers */
    json_t **objs; /* [n] the parsed lines (NULL for a .txt file) */
};

void es_text_set_free(es_text_set *t) {
    if (!t) return;
    for (int i = 0; i < t->n; i++) {
        free(t->texts[i]);
        if (t->objs) json_decref(t->objs[i]);
    }
    free(t->texts);
    free(t->line);
    free(t->objs);
    free(t->path);
    free(t);
}

static bool ends_with(const char *s, const char *tail) {
    size_t a = strlen(s), b = strlen(tail);
    return a >= b && !strcmp(s + a - b, tail);
}

static es_status grow(es_text_set *t, int *cap) {
    if (t->n < *cap) return ES_OK;
    if (t->n >= MAX_TEXTS)
        return es_error(ES_ERR_FORMAT, "%s: more than %d texts", t->path, MAX_TEXTS);
    int nc = *cap ? 2 * *cap : 256;
    char **tx = realloc(t->texts, (size_t)nc * sizeof *tx);
    if (tx) t->texts = tx;
    int *ln = realloc(t->line, (size_t)nc * sizeof *ln);
    if (ln) t->line = ln;
    json_t **ob = t->jsonl ? realloc(t->objs, (size_t)nc * sizeof *ob) : NULL;
    if (ob) t->objs = ob;
    if (!tx || !ln || (t->jsonl && !ob))
        return es_error(ES_ERR_NOMEM, "%s: out of memory", t->path);
    *cap = nc;
    return ES_OK;
}

/* One JSONL line: an object with a string "text", "response" or "output" (the first
 * key of the file decides; every line must have it). */
static es_status add_json_line(es_text_set *t, const char *p, size_t l, int line_no, int *cap) {
    json_error_t err;
    json_t *o = json_loadb(p, l, JSON_REJECT_DUPLICATES, &err);
    if (!o)
        return es_error(ES_ERR_FORMAT, "%s:%d: invalid JSON at column %d: %s", t->path, line_no,
                        err.column, err.text);
    if (!json_is_object(o)) {
        json_decref(o);
        return es_error(ES_ERR_FORMAT, "%s:%d: expected a JSON object", t->path, line_no);
    }
    static const char *const keys[] = {"text", "response", "output"};
    if (!t->text_key)
        for (int k = 0; k < 3 && !t->text_key; k++)
            if (json_object_get(o, keys[k])) t->text_key = keys[k];
    json_t *v = t->text_key ? json_object_get(o, t->text_key) : NULL;
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v)) {
        json_decref(o);
        return es_error(
            ES_ERR_FORMAT,
            "%s:%d: no string field \"%s\" (a line needs \"text\", \"response\" or \"output\")",
            t->path, line_no, t->text_key ? t->text_key : "text");
    }
    es_status st = grow(t, cap);
    if (st == ES_OK && !(t->texts[t->n] = es_strdup(json_string_value(v))))
        st = es_error(ES_ERR_NOMEM, "%s: out of memory", t->path);
    if (st != ES_OK) {
        json_decref(o);
        return st;
    }
    t->line[t->n] = line_no;
    t->objs[t->n++] = o;
    return ES_OK;
}

es_status es_text_set_load(const char *path, es_text_set **out) {
    if (!path || !out) return es_error(ES_ERR_INVALID_ARG, "texts: NULL path");
    char *data;
    size_t len;
    es_status st = es_file_read(path, MAX_TEXT_FILE, &data, &len);
    if (st != ES_OK) return st;
    es_text_set *t = es_calloc(1, sizeof *t);
    if (!t || !(t->path = es_strdup(path))) {
        free(data);
        free(t);
        return es_error(ES_ERR_NOMEM, "%s: out of memory", path);
    }
    t->jsonl = ends_with(path, ".jsonl") || ends_with(path, ".json");
    int cap = 0, line_no = 0;
    for (char *p = data; st == ES_OK && p < data + len;) {
        char *nl = memchr(p, '\n', (size_t)(data + len - p));
        size_t l = (size_t)((nl ? nl : data + len) - p);
        line_no++;
        if (l && p[l - 1] == '\r') l--;
        bool blank = true;
        for (size_t i = 0; i < l && blank; i++)
            blank = p[i] == ' ' || p[i] == '\t';
        if (memchr(p, '\0', l)) {
            st = es_error(ES_ERR_FORMAT, "%s:%d: NUL byte in line", path, line_no);
        } else if (!blank && t->jsonl) {
            st = add_json_line(t, p, l, line_no, &cap);
        } else if (!blank) {
            if ((st = grow(t, &cap)) == ES_OK && !(t->texts[t->n] = strndup(p, l)))
                st = es_error(ES_ERR_NOMEM, "%s: out of memory", path);
            if (st == ES_OK) t->line[t->n++] = line_no;
        }
        p = nl ? nl + 1 : data + len;
    }
    free(data);
    if (st == ES_OK && t->n == 0) st = es_error(ES_ERR_FORMAT, "%s: no texts", path);
    if (st != ES_OK) {
        es_text_set_free(t);
        return st;
    }
    *out = t;
    return ES_OK;
}

int es_text_set_n(const es_text_set *t) {
    return t ? t->n : 0;
}

const char *const *es_text_set_texts(const es_text_set *t) {
    return t ? (const char *const *)t->texts : NULL;
}

const char *es_text_set_text_key(const es_text_set *t) {
    return t ? t->text_key : NULL;
}

/* The value of key on line i as a grouping string into buf: a string as it is, an
 * integer in decimal, a real as %.9g (as alphas are keyed); "" when absent or of
 * another type. Returns false for a value that cannot group (object, array, bool). */
static bool field_value(const es_text_set *t, int i, const char *key, char *buf, size_t cap) {
    json_t *v = t->objs ? json_object_get(t->objs[i], key) : NULL;
    buf[0] = '\0';
    if (!v || json_is_null(v)) return true;
    if (json_is_string(v))
        snprintf(buf, cap, "%s", json_string_value(v));
    else if (json_is_integer(v))
        snprintf(buf, cap, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        snprintf(buf, cap, "%.9g", json_real_value(v) == 0 ? 0.0 : json_real_value(v));
    else
        return false;
    return true;
}

es_status es_text_set_group_keys(const es_text_set *t, int max_distinct, char ***keys,
                                 int *n_keys) {
    if (!t || !keys || !n_keys) return es_error(ES_ERR_INVALID_ARG, "texts: NULL argument");
    *keys = NULL;
    *n_keys = 0;
    if (!t->objs) return ES_OK;
    /* candidates: the keys of the lines, in order of first appearance */
    json_t *seen = json_object();
    char **out = NULL;
    int n = 0;
    es_status st = seen ? ES_OK : ES_ERR_NOMEM;
    for (int i = 0; st == ES_OK && i < t->n; i++) {
        const char *key;
        json_t *v;
        json_object_foreach(t->objs[i], key, v) {
            bool skip = false;
            for (size_t k = 0; k < sizeof not_group_keys / sizeof *not_group_keys; k++)
                skip |= !strcmp(key, not_group_keys[k]);
            json_t *mark = json_object_get(seen, key);
            if (!mark) {
                mark = json_object();
                if (!mark || json_object_set_new(seen, key, mark) != 0) {
                    st = ES_ERR_NOMEM;
                    break;
                }
                if (skip || json_is_object(v) || json_is_array(v) || json_is_boolean(v))
                    json_object_set_new(mark, "\x01no", json_true());
            }
            char buf[256];
            if (json_object_get(mark, "\x01no")) continue;
            if (!field_value(t, i, key, buf, sizeof buf) ||
                (int)json_object_size(mark) > max_distinct) {
                json_object_set_new(mark, "\x01no", json_true());
                continue;
            }
            json_object_set_new(mark, buf, json_true());
        }
    }
    const char *key;
    json_t *mark;
    json_object_foreach(seen, key, mark) {
        if (st != ES_OK) break;
        if (json_object_get(mark, "\x01no") || (int)json_object_size(mark) > max_distinct) continue;
        char **g = realloc(out, (size_t)(n + 1) * sizeof *out);
        if (!g || !(g[n] = es_strdup(key))) {
            if (g) out = g;
            st = ES_ERR_NOMEM;
            break;
        }
        out = g;
        n++;
    }
    json_decref(seen);
    if (st != ES_OK) {
        for (int k = 0; k < n; k++)
            free(out[k]);
        free(out);
        return es_error(ES_ERR_NOMEM, "texts: out of memory");
    }
    *keys = out;
    *n_keys = n;
    return ES_OK;
}

es_status es_text_set_write_scores(const es_text_set *t, const double *probs, const char *scorer,
                                   FILE *f) {
    return es_text_set_write_scores_ex(t, probs, scorer, NULL, 0, NULL, f);
}

es_status es_text_set_write_scores_ex(const es_text_set *t, const double *probs, const char *scorer,
                                      const char *const *extra_names, int n_extra,
                                      const double *extra, FILE *f) {
    if (!t || !probs || !f || n_extra < 0 || (n_extra > 0 && (!extra_names || !extra)))
        return es_error(ES_ERR_INVALID_ARG, "texts: NULL argument");
    for (int i = 0; i < t->n; i++) {
        json_t *o = t->objs ? json_deep_copy(t->objs[i]) : json_object(), *sc = json_object();
        bool ok = o && sc;
        if (ok && !t->objs) {
            char *clean = es_utf8_sanitize(t->texts[i]);
            ok = clean && json_object_set_new(o, "line", json_integer(t->line[i])) == 0 &&
                 json_object_set_new(o, "text", json_string(clean)) == 0;
            free(clean);
        }
        for (int k = 0; ok && k < ES_EMO_N_LABELS; k++) {
            double p = probs[(size_t)i * ES_EMO_N_LABELS + (size_t)k];
            ok = json_object_set_new(sc, es_emotion_name((es_emotion)k),
                                     isfinite(p) ? json_real(p) : json_null()) == 0;
        }
        ok = ok && json_object_set(o, "scores", sc) == 0;
        if (ok) json_object_del(o, "extra_scores"); /* a stale one from an earlier scorer */
        if (ok && n_extra > 0) {
            json_t *ex = json_object();
            ok = ex && json_object_set_new(o, "extra_scores", ex) == 0;
            for (int k = 0; ok && k < n_extra; k++) {
                double p = extra[(size_t)i * n_extra + (size_t)k];
                ok = json_object_set_new(ex, extra_names[k],
                                         isfinite(p) ? json_real(p) : json_null()) == 0;
            }
        }
        ok = ok && (!scorer || json_object_set_new(o, "scorer", json_string(scorer)) == 0);
        /* the precision generations.jsonl has, so eval's scores and these compare as text */
        char *line = ok ? json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(10)) : NULL;
        json_decref(sc);
        json_decref(o);
        if (!line)
            return es_error(ES_ERR_NOMEM, "texts: out of memory writing line %d", t->line[i]);
        ok = fputs(line, f) >= 0 && fputc('\n', f) != EOF;
        free(line);
        if (!ok) return es_error(ES_ERR_IO, "texts: cannot write the scores: %s", strerror(errno));
    }
    return fflush(f) == 0
               ? ES_OK
               : es_error(ES_ERR_IO, "texts: cannot write the scores: %s", strerror(errno));
}

/* ---- the summary -------------------------------------------------------------- */

void es_score_summary_free(es_score_summary *s) {
    if (!s) return;
    for (int g = 0; g < s->n_groups; g++) {
        for (int k = 0; k < s->n_keys; k++)
            free(s->groups[g].values[k]);
        free(s->groups[g].values);
    }
    for (int k = 0; k < s->n_keys; k++)
        free(s->keys[k]);
    free(s->keys);
    free(s->groups);
    free(s);
}

/* Orders two grouping values: numerically when both are numbers, else as bytes. */
static int value_cmp(const char *a, const char *b) {
    char *ea, *eb;
    double x = strtod(a, &ea), y = strtod(b, &eb);
    if (*a && *b && !*ea && !*eb && x != y) return x < y ? -1 : 1;
    return strcmp(a, b);
}

static _Thread_local int n_keys_sort; /* qsort has no user pointer: per thread, so
                                         es_score_summarize is reentrant across threads */
static int group_cmp(const void *pa, const void *pb) {
    const es_score_group *a = pa, *b = pb;
    for (int k = 0; k < n_keys_sort; k++) {
        int c = value_cmp(a->values[k], b->values[k]);
        if (c) return c;
    }
    return 0;
}

es_status es_score_summarize(const es_text_set *t, const double *probs, const char *const *keys,
                             int n_keys, es_score_summary **out) {
    if (!t || !probs || !out || n_keys < 0 || (n_keys && !keys))
        return es_error(ES_ERR_INVALID_ARG, "texts: NULL argument");
    es_score_summary *s = es_calloc(1, sizeof *s);
    es_status st = s ? ES_OK : ES_ERR_NOMEM;
    if (st == ES_OK && n_keys && !(s->keys = es_calloc((size_t)n_keys, sizeof *s->keys)))
        st = ES_ERR_NOMEM;
    for (int k = 0; st == ES_OK && k < n_keys; k++, s->n_keys++)
        if (!(s->keys[k] = es_strdup(keys[k]))) st = ES_ERR_NOMEM;
    if (s) s->emotion_key = -1;
    for (int k = 0; st == ES_OK && k < n_keys; k++)
        if (!strcmp(keys[k], "emotion")) s->emotion_key = k;
    /* [n] the group of each text; groups found by a linear search of the (few) groups */
    char buf[256];
    for (int i = 0; st == ES_OK && i < t->n; i++) {
        int g = 0;
        for (; g < s->n_groups; g++) {
            bool same = true;
            for (int k = 0; k < n_keys && same; k++) {
                field_value(t, i, keys[k], buf, sizeof buf);
                same = !strcmp(buf, s->groups[g].values[k]);
            }
            if (same) break;
        }
        if (g == s->n_groups) {
            if (s->n_groups >= 100000) {
                es_score_summary_free(s);
                return es_error(ES_ERR_RANGE, "%s: more than 100000 groups: group by fewer fields",
                                t->path);
            }
            es_score_group *grown = realloc(s->groups, (size_t)(g + 1) * sizeof *grown);
            if (!grown) {
                st = ES_ERR_NOMEM;
                break;
            }
            s->groups = grown;
            es_score_group *x = &s->groups[g];
            memset(x, 0, sizeof *x);
            s->n_groups++;
            if (n_keys && !(x->values = es_calloc((size_t)n_keys, sizeof *x->values))) {
                st = ES_ERR_NOMEM;
                break;
            }
            for (int k = 0; k < n_keys && st == ES_OK; k++) {
                field_value(t, i, keys[k], buf, sizeof buf);
                if (!(x->values[k] = es_strdup(buf))) st = ES_ERR_NOMEM;
            }
        }
        if (st != ES_OK) break;
        es_score_group *x = &s->groups[g];
        const double *p = probs + (size_t)i * ES_EMO_N_LABELS;
        x->n++;
        for (int k = 0; k < ES_EMO_N_LABELS; k++)
            x->mean[k] += p[k];
    }
    if (st != ES_OK) {
        es_score_summary_free(s);
        return es_error(ES_ERR_NOMEM, "texts: out of memory summarising");
    }
    for (int g = 0; g < s->n_groups; g++) {
        es_score_group *x = &s->groups[g];
        x->eas = 0;
        for (int k = 0; k < ES_EMO_N_LABELS; k++) {
            x->mean[k] /= x->n;
            if (k != ES_EMO_NEUTRAL) x->eas += x->mean[k];
        }
        es_emotion e;
        x->target = NAN;
        if (s->emotion_key >= 0 && es_emotion_parse(x->values[s->emotion_key], &e) == ES_OK &&
            e != ES_EMO_NEUTRAL)
            x->target = x->mean[e];
    }
    es_error_clear();
    n_keys_sort = n_keys;
    qsort(s->groups, (size_t)s->n_groups, sizeof *s->groups, group_cmp);
    *out = s;
    return ES_OK;
}

es_status es_score_summary_write_csv(const es_score_summary *s, FILE *f) {
    if (!s || !f) return es_error(ES_ERR_INVALID_ARG, "texts: NULL summary or file");
    for (int k = 0; k < s->n_keys; k++) {
        es_csv_text(f, s->keys[k]);
        fputc(',', f);
    }
    fputs("n", f);
    for (int k = 0; k < ES_EMO_N_LABELS; k++)
        fprintf(f, ",%s", es_emotion_name((es_emotion)k));
    fputs(",eas,target_prob\n", f);
    for (int g = 0; g < s->n_groups; g++) {
        const es_score_group *x = &s->groups[g];
        for (int k = 0; k < s->n_keys; k++) {
            es_csv_text(f, x->values[k]);
            fputc(',', f);
        }
        fprintf(f, "%d", x->n);
        for (int k = 0; k < ES_EMO_N_LABELS; k++)
            es_csv_num(f, x->mean[k]);
        es_csv_num(f, x->eas);
        es_csv_num(f, x->target);
        fputc('\n', f);
    }
    return ferror(f) || fflush(f)
               ? es_error(ES_ERR_IO, "texts: cannot write the summary: %s", strerror(errno))
               : ES_OK;
}

es_status es_score_summary_write_json(const es_score_summary *s, FILE *f) {
    if (!s || !f) return es_error(ES_ERR_INVALID_ARG, "texts: NULL summary or file");
    json_t *root = json_object(), *keys = json_array(), *groups = json_array();
    bool ok = root && keys && groups;
    ok = ok && json_object_set_new(root, "format", json_string("emosteer-score-summary/1")) == 0;
    ok = ok && json_object_set(root, "group_by", keys) == 0 &&
         json_object_set(root, "groups", groups) == 0;
    for (int k = 0; ok && k < s->n_keys; k++)
        ok = json_array_append_new(keys, json_string(s->keys[k])) == 0;
    for (int g = 0; ok && g < s->n_groups; g++) {
        const es_score_group *x = &s->groups[g];
        json_t *o = json_object(), *m = json_object();
        ok = o && m && json_array_append_new(groups, o) == 0;
        if (!ok) {
            json_decref(o);
            json_decref(m);
            break;
        }
        for (int k = 0; ok && k < s->n_keys; k++)
            ok = json_object_set_new(o, s->keys[k], json_string(x->values[k])) == 0;
        ok = ok && json_object_set_new(o, "n", json_integer(x->n)) == 0;
        ok = ok && json_object_set_new(o, "mean", m) == 0;
        for (int k = 0; ok && k < ES_EMO_N_LABELS; k++)
            ok = json_object_set_new(m, es_emotion_name((es_emotion)k), json_real(x->mean[k])) == 0;
        ok = ok && json_object_set_new(o, "eas", json_real(x->eas)) == 0;
        ok = ok &&
             json_object_set_new(o, "target_prob",
                                 isfinite(x->target) ? json_real(x->target) : json_null()) == 0;
    }
    ok = ok && json_dumpf(root, f, JSON_INDENT(2) | JSON_REAL_PRECISION(10)) == 0 &&
         fputc('\n', f) != EOF;
    json_decref(keys);
    json_decref(groups);
    json_decref(root);
    if (!ok || fflush(f) != 0) return es_error(ES_ERR_IO, "texts: cannot write the summary");
    return ES_OK;
}
