/* queries.c — query-set files (EmotionQuery and emosteer shapes) and prompt files
 * (see queries.h). */
#include "queries.h"

#include "file.h"

#include "common.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NAME 63
#define MAX_QUERY_BYTES 65536
#define MAX_QUERIES_PER_LIST 1000000

static const char *json_kind(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER:
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

static bool name_valid(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > MAX_NAME) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

void es_query_set_free(es_query_set *qs) {
    if (!qs) return;
    for (int i = 0; i < qs->n_lists; i++) {
        es_query_list *l = &qs->lists[i];
        for (int k = 0; k < l->n; k++) {
            free(l->queries[k].id);
            free(l->queries[k].text);
        }
        free(l->queries);
        free(l->emotion);
        free(l->system);
        free(l->prefix);
    }
    free(qs->lists);
    free(qs->source);
    free(qs->description);
    free(qs);
}

const es_query_list *es_query_set_find(const es_query_set *qs, const char *emotion) {
    if (!qs || !emotion) return NULL;
    for (int i = 0; i < qs->n_lists; i++)
        if (!strcmp(qs->lists[i].emotion, emotion)) return &qs->lists[i];
    return NULL;
}

/* Appends an empty list named `name` (checked) to qs; returns it via *out. */
static es_status add_list(es_query_set *qs, const char *where, const char *name,
                          es_query_list **out) {
    if (!name_valid(name))
        return es_error(ES_ERR_FORMAT,
                        "%s: %s\"%.80s\": names must be 1..%d characters of A-Z a-z 0-9 _ -",
                        qs->source, where, name, MAX_NAME);
    size_t bytes;
    if (!es_mul_size((size_t)qs->n_lists + 1, sizeof *qs->lists, &bytes) || qs->n_lists >= 100000)
        return es_error(ES_ERR_FORMAT, "%s: too many lists", qs->source);
    es_query_list *grown = realloc(qs->lists, bytes);
    if (!grown) return es_error(ES_ERR_NOMEM, "%s: out of memory", qs->source);
    qs->lists = grown;
    es_query_list *l = &qs->lists[qs->n_lists];
    memset(l, 0, sizeof *l);
    if (!(l->emotion = es_strdup(name))) return ES_ERR_NOMEM;
    qs->n_lists++;
    *out = l;
    return ES_OK;
}

/* Fills list l from a JSON array of strings; `where` is the JSON path prefix. */
static es_status read_list(es_query_set *qs, es_query_list *l, const char *where, json_t *arr) {
    if (!json_is_array(arr))
        return es_error(ES_ERR_FORMAT, "%s: %s%s: expected an array of strings, got %s", qs->source,
                        where, l->emotion, json_kind(arr));
    size_t n = json_array_size(arr);
    if (n == 0)
        return es_error(ES_ERR_FORMAT, "%s: %s%s: empty list", qs->source, where, l->emotion);
    if (n > MAX_QUERIES_PER_LIST)
        return es_error(ES_ERR_FORMAT, "%s: %s%s: %zu queries, more than %d", qs->source, where,
                        l->emotion, n, MAX_QUERIES_PER_LIST);
    l->queries = es_calloc(n, sizeof *l->queries);
    if (!l->queries) return ES_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(arr, i);
        const char *s = json_is_string(v) ? json_string_value(v) : NULL;
        size_t len = s ? json_string_length(v) : 0;
        if (!s || len == 0 || strlen(s) != len)
            return es_error(ES_ERR_FORMAT,
                            "%s: %s%s[%zu]: expected a non-empty string without NUL, got %s",
                            qs->source, where, l->emotion, i, s ? "an empty string" : json_kind(v));
        if (len > MAX_QUERY_BYTES)
            return es_error(ES_ERR_FORMAT, "%s: %s%s[%zu]: %zu bytes, more than %d", qs->source,
                            where, l->emotion, i, len, MAX_QUERY_BYTES);
        char id[MAX_NAME + 16];
        snprintf(id, sizeof id, "%s-%04zu", l->emotion, i);
        es_query *q = &l->queries[i];
        q->id = es_strdup(id);
        q->text = es_strdup(s);
        l->n = (int)i + 1;
        if (!q->id || !q->text) return ES_ERR_NOMEM;
        for (size_t k = 0; k < i; k++)
            if (!strcmp(l->queries[k].text, s)) {
                l->n_duplicates++;
                break;
            }
    }
    return ES_OK;
}

static es_status read_instruction(es_query_set *qs, es_query_list *l, json_t *obj) {
    if (!json_is_object(obj))
        return es_error(ES_ERR_FORMAT,
                        "%s: instructions.%s: expected an object with \"system\" and/or "
                        "\"prefix\", got %s",
                        qs->source, l->emotion, json_kind(obj));
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        char **dst = !strcmp(key, "system")   ? &l->system
                     : !strcmp(key, "prefix") ? &l->prefix
                                              : NULL;
        if (!dst)
            return es_error(
                ES_ERR_FORMAT,
                "%s: instructions.%s.%.60s: unknown key (expected \"system\" or \"prefix\")",
                qs->source, l->emotion, key);
        if (!json_is_string(v) || json_string_length(v) == 0 ||
            json_string_length(v) > MAX_QUERY_BYTES ||
            strlen(json_string_value(v)) != json_string_length(v))
            return es_error(
                ES_ERR_FORMAT, "%s: instructions.%s.%s: expected a non-empty string, got %s",
                qs->source, l->emotion, key, json_is_string(v) ? "a bad string" : json_kind(v));
        if (!(*dst = es_strdup(json_string_value(v)))) return ES_ERR_NOMEM;
    }
    return ES_OK;
}

static es_status parse_emosteer(es_query_set *qs, json_t *root) {
    qs->format = ES_QUERY_FORMAT_EMOSTEER;
    json_t *fmt = json_object_get(root, "format");
    if (fmt && !json_is_string(fmt))
        return es_error(ES_ERR_FORMAT, "%s: format: expected a string, got %s", qs->source,
                        json_kind(fmt));
    if (fmt && strcmp(json_string_value(fmt), "emosteer-queries/1"))
        return es_error(ES_ERR_UNSUPPORTED, "%s: format \"%.60s\" is not emosteer-queries/1",
                        qs->source, json_string_value(fmt));
    json_t *desc = json_object_get(root, "description");
    if (desc && json_is_string(desc) && !(qs->description = es_strdup(json_string_value(desc))))
        return ES_ERR_NOMEM;
    json_t *queries = json_object_get(root, "queries");
    if (!json_is_object(queries))
        return es_error(ES_ERR_FORMAT,
                        "%s: queries: expected an object of name -> array of strings, got %s",
                        qs->source, json_kind(queries));
    const char *key;
    json_t *v;
    es_status st;
    json_object_foreach(queries, key, v) {
        es_query_list *l;
        if ((st = add_list(qs, "queries.", key, &l)) != ES_OK) return st;
        if ((st = read_list(qs, l, "queries.", v)) != ES_OK) return st;
    }
    json_t *ins = json_object_get(root, "instructions");
    if (ins && !json_is_null(ins)) {
        if (!json_is_object(ins))
            return es_error(ES_ERR_FORMAT, "%s: instructions: expected an object, got %s",
                            qs->source, json_kind(ins));
        json_object_foreach(ins, key, v) {
            es_query_list *l = (es_query_list *)es_query_set_find(qs, key);
            if (!l && (st = add_list(qs, "instructions.", key, &l)) != ES_OK) return st;
            if ((st = read_instruction(qs, l, v)) != ES_OK) return st;
        }
    }
    if (qs->n_lists == 0) return es_error(ES_ERR_FORMAT, "%s: queries: no lists", qs->source);
    return ES_OK;
}

static es_status parse_emotionquery(es_query_set *qs, json_t *root) {
    qs->format = ES_QUERY_FORMAT_EMOTIONQUERY;
    const char *key;
    json_t *v;
    es_status st;
    json_object_foreach(root, key, v) {
        es_query_list *l;
        if ((st = add_list(qs, "", key, &l)) != ES_OK) return st;
        if ((st = read_list(qs, l, "", v)) != ES_OK) return st;
    }
    if (qs->n_lists == 0)
        return es_error(ES_ERR_FORMAT, "%s: no query lists (empty object)", qs->source);
    return ES_OK;
}

/* A top-level array of strings (EmotionQuery+): one list named ES_QUERY_LIST_NAME. */
static es_status parse_list(es_query_set *qs, json_t *root) {
    qs->format = ES_QUERY_FORMAT_LIST;
    es_query_list *l;
    es_status st = add_list(qs, "", ES_QUERY_LIST_NAME, &l);
    return st != ES_OK ? st : read_list(qs, l, "", root);
}

es_status es_query_set_parse(const char *json, size_t len, const char *name, es_query_set **out) {
    if (!json || !out) return es_error(ES_ERR_INVALID_ARG, "queries: NULL input");
    if (!name) name = "(memory)";
    json_error_t err;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &err);
    if (!root)
        return es_error(ES_ERR_FORMAT, "%s: invalid JSON at line %d column %d: %s", name, err.line,
                        err.column, err.text);
    es_status st;
    es_query_set *qs = es_calloc(1, sizeof *qs);
    if (!qs || !(qs->source = es_strdup(name))) {
        st = es_error(ES_ERR_NOMEM, "%s: out of memory", name);
        goto done;
    }
    if (json_is_array(root)) {
        st = parse_list(qs, root);
        goto done;
    }
    if (!json_is_object(root)) {
        st = es_error(ES_ERR_FORMAT,
                      "%s: expected a JSON object or an array of queries at the top level, got %s",
                      name, json_kind(root));
        goto done;
    }
    st = json_object_get(root, "queries") ? parse_emosteer(qs, root) : parse_emotionquery(qs, root);
done:
    json_decref(root);
    if (st != ES_OK) {
        if (st == ES_ERR_NOMEM && !strstr(es_last_error(), name))
            es_error(st, "%s: out of memory", name);
        es_query_set_free(qs);
        return st;
    }
    *out = qs;
    return ES_OK;
}

/* Reads a whole file (at most 1 GiB). */
static es_status read_file(const char *path, char **data, size_t *len) {
    return es_file_read(path, (size_t)1 << 30, data, len);
}

es_status es_query_set_load(const char *path, es_query_set **out) {
    if (!path || !out) return es_error(ES_ERR_INVALID_ARG, "queries: NULL path");
    char *data;
    size_t len;
    es_status st = read_file(path, &data, &len);
    if (st != ES_OK) return st;
    st = es_query_set_parse(data, len, path, out);
    free(data);
    return st;
}

void es_prompts_free(char **prompts, int n) {
    if (!prompts) return;
    for (int i = 0; i < n; i++)
        free(prompts[i]);
    free(prompts);
}

es_status es_prompts_load(const char *path, char ***prompts, int *n) {
    if (!path || !prompts || !n) return es_error(ES_ERR_INVALID_ARG, "prompts: NULL argument");
    char *data;
    size_t len;
    es_status st = read_file(path, &data, &len);
    if (st != ES_OK) return st;
    char **list = NULL;
    int count = 0, line_no = 0;
    size_t cap = 0;
    for (char *p = data; p < data + len;) {
        char *nl = memchr(p, '\n', (size_t)(data + len - p));
        char *end = nl ? nl : data + len;
        line_no++;
        size_t l = (size_t)(end - p);
        if (l && p[l - 1] == '\r') l--;
        if (memchr(p, '\0', l)) {
            st = es_error(ES_ERR_FORMAT, "%s:%d: NUL byte in line", path, line_no);
            goto fail;
        }
        bool blank = true;
        for (size_t i = 0; i < l; i++)
            blank &= p[i] == ' ' || p[i] == '\t';
        if (!blank && p[0] != '#') {
            if (l > MAX_QUERY_BYTES) {
                st = es_error(ES_ERR_FORMAT, "%s:%d: line of %zu bytes, more than %d", path,
                              line_no, l, MAX_QUERY_BYTES);
                goto fail;
            }
            if ((size_t)count == cap) {
                cap = cap ? cap * 2 : 64;
                char **grown =
                    cap <= (size_t)INT32_MAX / 2 ? realloc(list, cap * sizeof *list) : NULL;
                if (!grown) {
                    st = es_error(ES_ERR_NOMEM, "%s: out of memory", path);
                    goto fail;
                }
                list = grown;
            }
            char *s = malloc(l + 1);
            if (!s) {
                st = es_error(ES_ERR_NOMEM, "%s: out of memory", path);
                goto fail;
            }
            memcpy(s, p, l);
            s[l] = '\0';
            list[count++] = s;
        }
        p = nl ? nl + 1 : data + len;
    }
    free(data);
    if (count == 0) {
        es_prompts_free(list, count);
        return es_error(ES_ERR_FORMAT, "%s: no prompts", path);
    }
    *prompts = list;
    *n = count;
    return ES_OK;
fail:
    free(data);
    es_prompts_free(list, count);
    return st;
}
