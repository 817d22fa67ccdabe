/* eval_io.c — generations.jsonl (records, the resumable log) and UTF-8 sanitising
 * (see eval_io.h). results.json, summary.csv and compare are in eval_results.c. */
#include "eval_io.h"

#include "utf8.h"

#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- UTF-8 --------------------------------------------------------------- */

/* ---- one record <-> JSON ------------------------------------------------- */

static json_t *num_or_null(double v) {
    return isfinite(v) ? json_real(v) : json_null();
}

/* Sets obj[key] = a sanitised copy of s. */
static bool set_text(json_t *obj, const char *key, const char *s) {
    char *clean = es_utf8_sanitize(s);
    if (!clean) return false;
    bool ok = json_object_set_new(obj, key, json_string(clean)) == 0;
    free(clean);
    return ok;
}

es_status es_gen_record_to_json(const es_gen_record *rec, const char *const *labels, int n_labels,
                                char **out) {
    if (!rec || !out || (n_labels && !labels))
        return es_error(ES_ERR_INVALID_ARG, "genlog: NULL record or labels");
    if (!rec->emotion || !*rec->emotion || !rec->query_id || !isfinite(rec->alpha) ||
        rec->sample < 0)
        return es_error(
            ES_ERR_INVALID_ARG,
            "genlog: record needs an emotion, a query id, a finite alpha and sample >= 0 "
            "(got %s, %s, %g, %d)",
            rec->emotion ? rec->emotion : "NULL", rec->query_id ? rec->query_id : "NULL",
            rec->alpha, rec->sample);
    if (rec->scores && rec->n_labels != n_labels)
        return es_error(ES_ERR_INVALID_ARG, "genlog: record has %d scores but %d labels",
                        rec->n_labels, n_labels);
    json_t *o = json_object();
    bool ok = o != NULL;
    ok = ok && set_text(o, "emotion", rec->emotion);
    ok = ok && json_object_set_new(o, "alpha", json_real(rec->alpha)) == 0;
    ok = ok && set_text(o, "query_id", rec->query_id);
    ok = ok && json_object_set_new(o, "sample", json_integer(rec->sample)) == 0;
    if (ok && rec->seed <= (uint64_t)INT64_MAX) {
        ok = json_object_set_new(o, "seed", json_integer((json_int_t)rec->seed)) == 0;
    } else if (ok) {
        char buf[32];
        snprintf(buf, sizeof buf, "%" PRIu64, rec->seed);
        ok = json_object_set_new(o, "seed", json_string(buf)) == 0;
    }
    ok = ok && set_text(o, "prompt", rec->prompt);
    ok = ok && set_text(o, "response", rec->response);
    if (ok && rec->n_tokens >= 0)
        ok = json_object_set_new(o, "n_tokens", json_integer(rec->n_tokens)) == 0;
    if (ok && rec->scores) {
        json_t *sc = json_object();
        ok = sc && json_object_set_new(o, "scores", sc) == 0;
        for (int i = 0; ok && i < n_labels; i++) {
            char *name = es_utf8_sanitize(labels[i]);
            ok = name && json_object_set_new(sc, name, num_or_null(rec->scores[i])) == 0;
            free(name);
        }
    }
    ok = ok && json_object_set_new(o, "valence", num_or_null(rec->valence)) == 0;
    ok = ok && json_object_set_new(o, "ppl", num_or_null(rec->ppl)) == 0;
    ok = ok && json_object_set_new(o, "topic", num_or_null(rec->topic)) == 0;
    char *text = ok ? json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(10)) : NULL;
    json_decref(o);
    if (!text) return es_error(ES_ERR_NOMEM, "genlog: out of memory writing a record");
    *out = es_strdup(text); /* json_dumps memory belongs to jansson's allocator */
    free(text);
    return *out ? ES_OK : ES_ERR_NOMEM;
}

static es_status rec_err(const char *key, const char *what) {
    return es_error(ES_ERR_FORMAT, "\"%s\": %s", key, what);
}

/* obj[key] as a string copy. Required keys must exist; optional ones may be absent
 * (then *out stays NULL). */
static es_status get_str(json_t *obj, const char *key, bool required, char **out) {
    json_t *v = json_object_get(obj, key);
    if (!v) return required ? rec_err(key, "missing") : ES_OK;
    if (!json_is_string(v)) return rec_err(key, "expected a string");
    *out = es_strdup(json_string_value(v));
    return *out ? ES_OK : ES_ERR_NOMEM;
}

/* obj[key] as a number: null -> NaN; absent -> NaN unless required. */
static es_status get_num(json_t *obj, const char *key, bool required, double *out) {
    json_t *v = json_object_get(obj, key);
    *out = NAN;
    if (!v) return required ? rec_err(key, "missing") : ES_OK;
    if (json_is_null(v) && !required) return ES_OK;
    if (!json_is_number(v))
        return rec_err(key, required ? "expected a number" : "expected a number or null");
    *out = json_number_value(v);
    return ES_OK;
}

static es_status get_int(json_t *obj, const char *key, bool required, json_int_t lo, json_int_t hi,
                         json_int_t *out) {
    json_t *v = json_object_get(obj, key);
    if (!v) return required ? rec_err(key, "missing") : ES_OK;
    if (!json_is_integer(v)) return rec_err(key, "expected an integer");
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi)
        return es_error(ES_ERR_FORMAT,
                        "\"%s\": %" JSON_INTEGER_FORMAT " out of range %" JSON_INTEGER_FORMAT
                        "..%" JSON_INTEGER_FORMAT,
                        key, x, lo, hi);
    *out = x;
    return ES_OK;
}

/* Scores, valence, topic and perplexity are computed in float and double: allow their
 * rounding at the ends of the ranges. */
#define ES_SCORE_SLACK 1e-6

static bool in_range(double v, double lo, double hi) {
    return v >= lo - ES_SCORE_SLACK && v <= hi + ES_SCORE_SLACK;
}

static es_status parse_record(json_t *o, const char *const *labels, int n_labels,
                              es_gen_record *r) {
    if (!json_is_object(o)) return es_error(ES_ERR_FORMAT, "expected a JSON object");
    es_status st;
    if ((st = get_str(o, "emotion", true, &r->emotion)) != ES_OK) return st;
    if (!*r->emotion) return rec_err("emotion", "empty");
    if ((st = get_num(o, "alpha", true, &r->alpha)) != ES_OK) return st;
    if (!isfinite(r->alpha)) return rec_err("alpha", "not finite");
    if ((st = get_str(o, "query_id", true, &r->query_id)) != ES_OK) return st;
    json_int_t x = 0;
    if ((st = get_int(o, "sample", true, 0, INT32_MAX, &x)) != ES_OK) return st;
    r->sample = (int)x;
    json_t *seed = json_object_get(o, "seed");
    if (seed && json_is_string(seed)) {
        const char *s = json_string_value(seed);
        char *end;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (!*s || *s == '-' || *end || errno) return rec_err("seed", "not a decimal integer");
        r->seed = v;
    } else {
        x = 0;
        if ((st = get_int(o, "seed", false, 0, INT64_MAX, &x)) != ES_OK) return st;
        r->seed = (uint64_t)x;
    }
    if ((st = get_str(o, "prompt", false, &r->prompt)) != ES_OK) return st;
    if ((st = get_str(o, "response", true, &r->response)) != ES_OK) return st;
    x = -1;
    if ((st = get_int(o, "n_tokens", false, -1, INT32_MAX, &x)) != ES_OK) return st;
    r->n_tokens = (int)x;
    json_t *sc = json_object_get(o, "scores");
    if (sc && !json_is_null(sc)) {
        if (!json_is_object(sc)) return rec_err("scores", "expected an object");
        const char *k;
        json_t *v;
        json_object_foreach(sc, k, v) {
            if (!json_is_number(v) && !json_is_null(v))
                return es_error(ES_ERR_FORMAT, "\"scores\".\"%s\": expected a number or null", k);
            if (json_is_number(v) && !in_range(json_number_value(v), 0, 1))
                return es_error(ES_ERR_FORMAT,
                                "\"scores\".\"%s\": %g is not a probability in [0, 1]", k,
                                json_number_value(v));
        }
        if (n_labels > 0) {
            r->scores = es_calloc((size_t)n_labels, sizeof *r->scores);
            if (!r->scores) return ES_ERR_NOMEM;
            r->n_labels = n_labels;
            for (int i = 0; i < n_labels; i++) {
                json_t *v2 = json_object_get(sc, labels[i]);
                r->scores[i] = v2 && json_is_number(v2) ? json_number_value(v2) : NAN;
            }
        }
    }
    if ((st = get_num(o, "valence", false, &r->valence)) != ES_OK) return st;
    if (!isnan(r->valence) && !in_range(r->valence, -1, 1))
        return es_error(ES_ERR_FORMAT, "\"valence\": %g is outside [-1, 1]", r->valence);
    if ((st = get_num(o, "ppl", false, &r->ppl)) != ES_OK) return st;
    if (!isnan(r->ppl) && !(r->ppl >= 1 - ES_SCORE_SLACK && isfinite(r->ppl)))
        return es_error(ES_ERR_FORMAT, "\"ppl\": %g is not a perplexity (>= 1)", r->ppl);
    if ((st = get_num(o, "topic", false, &r->topic)) != ES_OK) return st;
    if (!isnan(r->topic) && !in_range(r->topic, -1, 1))
        return es_error(ES_ERR_FORMAT, "\"topic\": %g is outside [-1, 1]", r->topic);
    return ES_OK;
}

/* As es_gen_record_from_json; *syntax tells whether a failure was the JSON itself (what
 * a write cut short leaves) rather than a complete object that breaks the format. */
static es_status record_from_json(const char *line, size_t len, const char *const *labels,
                                  int n_labels, es_gen_record *rec, bool *syntax) {
    *syntax = false;
    json_error_t err;
    json_t *o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &err);
    if (!o) {
        *syntax = true;
        return es_error(ES_ERR_FORMAT, "invalid JSON at column %d: %s", err.column, err.text);
    }
    es_gen_record r = es_gen_record_empty();
    es_status st = parse_record(o, labels, n_labels, &r);
    json_decref(o);
    if (st != ES_OK) {
        es_gen_record_clear(&r);
        return st;
    }
    *rec = r;
    return ES_OK;
}

es_status es_gen_record_from_json(const char *line, size_t len, const char *const *labels,
                                  int n_labels, es_gen_record *rec) {
    if (!line || !rec || n_labels < 0 || (n_labels && !labels))
        return es_error(ES_ERR_INVALID_ARG, "genlog: bad arguments");
    bool syntax;
    return record_from_json(line, len, labels, n_labels, rec, &syntax);
}

/* ---- the log --------------------------------------------------------------- */

struct es_genlog {
    char *path;
    FILE *file; /* open for appending, or NULL */
    int n_labels;
    char **labels;       /* [n_labels] */
    es_gen_record *recs; /* [n_recs] */
    size_t n_recs, cap_recs;
    size_t *slots;             /* [n_slots] open-addressing table of record index + 1 (0 = empty) */
    size_t n_slots;            /* power of two, >= 2 * n_recs */
    bool last_line_terminated; /* the last good line read ends with '\n' */
    es_genlog_info info;
};

/* alpha rounded to 9 significant digits, with -0 folded into 0 */
static double alpha_key(double a) {
    char buf[32];
    snprintf(buf, sizeof buf, "%.9g", a);
    double v = strtod(buf, NULL);
    return v == 0 ? 0.0 : v;
}

static uint64_t fnv1a(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

/* Hash of a key from its text form (the same on every machine): emotion, alpha as
 * "%.9g" after rounding, query id and sample, each followed by a NUL. */
static uint64_t key_hash(const char *emotion, double alpha, const char *query_id, int sample) {
    char num[64];
    uint64_t h = 0xcbf29ce484222325ull;
    h = fnv1a(h, emotion, strlen(emotion) + 1);
    int n = snprintf(num, sizeof num, "%.9g", alpha_key(alpha));
    h = fnv1a(h, num, (size_t)n + 1);
    h = fnv1a(h, query_id, strlen(query_id) + 1);
    n = snprintf(num, sizeof num, "%d", sample);
    h = fnv1a(h, num, (size_t)n + 1);
    return h;
}

uint64_t es_eval_seed(uint64_t base, const char *emotion, double alpha, const char *query_id,
                      int sample) {
    uint64_t h = key_hash(emotion ? emotion : "", alpha, query_id ? query_id : "", sample) ^ base;
    /* splitmix64 finaliser */
    h += 0x9e3779b97f4a7c15ull;
    h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
    h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
    return h ^ (h >> 31);
}

static bool key_equal(const es_gen_record *r, const char *emotion, double alpha,
                      const char *query_id, int sample) {
    return r->sample == sample && !strcmp(r->emotion, emotion) && !strcmp(r->query_id, query_id) &&
           alpha_key(r->alpha) == alpha_key(alpha);
}

/* Index of the record with this key, or SIZE_MAX; *slot gets where it is or would go. */
static size_t find_key(const es_genlog *log, const char *emotion, double alpha,
                       const char *query_id, int sample, size_t *slot) {
    if (!log->n_slots) return SIZE_MAX;
    size_t mask = log->n_slots - 1;
    for (size_t i = key_hash(emotion, alpha, query_id, sample) & mask;; i = (i + 1) & mask) {
        if (!log->slots[i]) {
            if (slot) *slot = i;
            return SIZE_MAX;
        }
        const es_gen_record *r = &log->recs[log->slots[i] - 1];
        if (key_equal(r, emotion, alpha, query_id, sample)) {
            if (slot) *slot = i;
            return log->slots[i] - 1;
        }
    }
}

/* Makes room for one more record in the array and the table. */
static es_status reserve_one(es_genlog *log) {
    if (log->n_recs == log->cap_recs) {
        size_t cap = log->cap_recs ? log->cap_recs * 2 : 64, bytes;
        if (!es_mul_size(cap, sizeof *log->recs, &bytes))
            return es_error(ES_ERR_NOMEM, "genlog: too many records");
        es_gen_record *grown = realloc(log->recs, bytes);
        if (!grown) return es_error(ES_ERR_NOMEM, "genlog: out of memory for %zu records", cap);
        log->recs = grown;
        log->cap_recs = cap;
    }
    if (2 * (log->n_recs + 1) > log->n_slots) {
        size_t n_slots = log->n_slots ? log->n_slots * 2 : 128;
        size_t *slots = es_calloc(n_slots, sizeof *slots);
        if (!slots) return ES_ERR_NOMEM;
        size_t mask = n_slots - 1;
        for (size_t k = 0; k < log->n_recs; k++) {
            const es_gen_record *r = &log->recs[k];
            size_t i = key_hash(r->emotion, r->alpha, r->query_id, r->sample) & mask;
            while (slots[i])
                i = (i + 1) & mask;
            slots[i] = k + 1;
        }
        free(log->slots);
        log->slots = slots;
        log->n_slots = n_slots;
    }
    return ES_OK;
}

/* Takes ownership of *rec (moves it into the log) if its key is new; returns false if
 * the key was present (rec untouched). */
static es_status insert_record(es_genlog *log, es_gen_record *rec, bool *inserted) {
    *inserted = false;
    es_status st = reserve_one(log);
    if (st != ES_OK) return st;
    size_t slot;
    if (find_key(log, rec->emotion, rec->alpha, rec->query_id, rec->sample, &slot) != SIZE_MAX)
        return ES_OK;
    log->recs[log->n_recs] = *rec;
    log->slots[slot] = ++log->n_recs;
    log->info.n_records = log->n_recs;
    *inserted = true;
    return ES_OK;
}

void es_genlog_free(es_genlog *log) {
    if (!log) return;
    if (log->file) fclose(log->file);
    for (size_t i = 0; i < log->n_recs; i++)
        es_gen_record_clear(&log->recs[i]);
    for (int i = 0; i < log->n_labels; i++)
        free(log->labels[i]);
    free(log->labels);
    free(log->recs);
    free(log->slots);
    free(log->path);
    free(log);
}

static bool is_blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n') return false;
    return true;
}

/* Reads the existing file into log. */
static es_status read_lines(es_genlog *log, FILE *f) {
    char *line = NULL;
    size_t cap = 0, offset = 0, line_no = 0;
    ssize_t got;
    /* a line that failed to parse: fatal only if a non-blank line follows it */
    size_t bad_line = 0, bad_offset = 0, bad_len = 0;
    char bad_msg[512] = "";
    es_status st = ES_OK;
    while ((got = getline(&line, &cap, f)) > 0) {
        size_t n = (size_t)got;
        line_no++;
        if (is_blank(line, n)) {
            offset += n;
            continue;
        }
        if (bad_line) break; /* a non-blank line after a bad one: the bad one is corrupt */
        log->info.n_lines_read++;
        size_t body = n;
        while (body && (line[body - 1] == '\n' || line[body - 1] == '\r'))
            body--;
        es_gen_record rec;
        bool syntax;
        st = record_from_json(line, body, (const char *const *)log->labels, log->n_labels, &rec,
                              &syntax);
        /* only a last line that is not valid JSON and has no newline can be a write cut
         * short; a complete line that breaks the format is an error wherever it is */
        if (st == ES_ERR_FORMAT && (!syntax || line[n - 1] == '\n')) break;
        if (st == ES_ERR_FORMAT) {
            bad_line = line_no;
            bad_offset = offset;
            bad_len = n;
            snprintf(bad_msg, sizeof bad_msg, "%s", es_last_error());
            offset += n;
            st = ES_OK;
            continue;
        }
        if (st != ES_OK) break;
        bool inserted;
        if ((st = insert_record(log, &rec, &inserted)) != ES_OK) {
            es_gen_record_clear(&rec);
            break;
        }
        if (!inserted) {
            log->info.n_duplicates++;
            es_gen_record_clear(&rec);
        }
        offset += n;
        log->info.valid_bytes = offset;
        log->last_line_terminated = line[n - 1] == '\n';
    }
    bool read_error = ferror(f) != 0;
    free(line);
    if (st != ES_OK) return es_error_prefix(st, "%s:%zu", log->path, line_no);
    if (read_error) return es_error(ES_ERR_IO, "genlog: cannot read %s", log->path);
    if (bad_line && got > 0) /* loop left early: a good line followed the bad one */
        return es_error(ES_ERR_FORMAT, "%s:%zu: %s", log->path, bad_line, bad_msg);
    if (bad_line) {
        log->info.dropped_bytes = bad_len;
        log->info.valid_bytes = bad_offset;
    }
    return ES_OK;
}

es_status es_genlog_open(const char *path, const char *const *labels, int n_labels, bool writable,
                         es_genlog **out) {
    if (!path || !out || n_labels < 0 || n_labels > 4096 || (n_labels && !labels))
        return es_error(ES_ERR_INVALID_ARG, "genlog: bad arguments (path %s, %d labels)",
                        path ? path : "NULL", n_labels);
    es_genlog *log = es_calloc(1, sizeof *log);
    if (!log) return ES_ERR_NOMEM;
    es_status st = ES_ERR_NOMEM;
    log->path = es_strdup(path);
    log->labels = es_calloc((size_t)n_labels + 1, sizeof *log->labels);
    if (!log->path || !log->labels) goto fail;
    for (int i = 0; i < n_labels; i++) {
        if (!labels[i] || !(log->labels[i] = es_strdup(labels[i]))) goto fail;
        log->n_labels = i + 1;
    }
    FILE *f = fopen(path, "rb");
    if (f) {
        st = read_lines(log, f);
        fclose(f);
        if (st != ES_OK) goto fail;
    } else if (errno != ENOENT) {
        st = es_error(ES_ERR_IO, "genlog: cannot open %s: %s", path, strerror(errno));
        goto fail;
    }
    if (writable) {
        int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd < 0) {
            st = es_error(ES_ERR_IO, "genlog: cannot open %s for writing: %s", path,
                          strerror(errno));
            goto fail;
        }
        /* cut the broken tail; end the last good line with a newline if it lacks one */
        bool need_newline = log->info.valid_bytes > 0 && !log->last_line_terminated;
        if (ftruncate(fd, (off_t)log->info.valid_bytes) != 0 ||
            (need_newline && write(fd, "\n", 1) != 1)) {
            st = es_error(ES_ERR_IO, "genlog: cannot truncate %s to %zu bytes: %s", path,
                          log->info.valid_bytes, strerror(errno));
            close(fd);
            goto fail;
        }
        log->info.valid_bytes += need_newline;
        log->file = fdopen(fd, "a");
        if (!log->file) {
            st = es_error(ES_ERR_IO, "genlog: cannot open %s: %s", path, strerror(errno));
            close(fd);
            goto fail;
        }
    }
    *out = log;
    return ES_OK;
fail:
    if (st == ES_ERR_NOMEM && !*es_last_error()) es_error(st, "genlog: out of memory");
    es_genlog_free(log);
    return st;
}

void es_genlog_get_info(const es_genlog *log, es_genlog_info *info) {
    *info = log->info;
}

const es_gen_record *es_genlog_records(const es_genlog *log) {
    return log->recs;
}

bool es_genlog_done(const es_genlog *log, const char *emotion, double alpha, const char *query_id,
                    int sample) {
    if (!log || !emotion || !query_id) return false;
    return find_key(log, emotion, alpha, query_id, sample, NULL) != SIZE_MAX;
}

es_status es_genlog_append(es_genlog *log, const es_gen_record *rec) {
    if (!log || !rec) return es_error(ES_ERR_INVALID_ARG, "genlog: NULL log or record");
    char *line;
    es_status st =
        es_gen_record_to_json(rec, (const char *const *)log->labels, log->n_labels, &line);
    if (st != ES_OK) return st;
    if (es_genlog_done(log, rec->emotion, rec->alpha, rec->query_id, rec->sample)) {
        free(line);
        return es_error(ES_ERR_INVALID_ARG, "genlog: %s already has (%s, alpha %g, %s, sample %d)",
                        log->path, rec->emotion, rec->alpha, rec->query_id, rec->sample);
    }
    es_gen_record copy = es_gen_record_empty();
    if ((st = es_gen_record_copy(&copy, rec)) != ES_OK || (st = reserve_one(log)) != ES_OK) {
        es_gen_record_clear(&copy);
        free(line);
        return st;
    }
    if (log->file) {
        size_t n = strlen(line);
        line[n] = '\n'; /* overwrite the NUL: one write of the line and its newline */
        bool ok = fwrite(line, 1, n + 1, log->file) == n + 1 && fflush(log->file) == 0;
        if (!ok) {
            free(line);
            es_gen_record_clear(&copy);
            return es_error(ES_ERR_IO, "genlog: cannot write to %s: %s", log->path,
                            strerror(errno));
        }
        log->info.valid_bytes += n + 1;
    }
    free(line);
    bool inserted;
    if ((st = insert_record(log, &copy, &inserted)) != ES_OK || !inserted) {
        es_gen_record_clear(&copy);
        return st != ES_OK ? st : es_error(ES_ERR_INTERNAL, "genlog: key vanished");
    }
    return ES_OK;
}
