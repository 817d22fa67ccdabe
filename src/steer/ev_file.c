/*
 * ev_file.c — emotion-vector sets in files (formats in ev.h): emosteer's .ev.gguf
 * load and save, llama.cpp/repeng control vectors (import and export), the seed
 * paper's JSON (import), and the detection of which one a file is.
 */
#include "ev.h"
#include "ev_set.h"

#include "gguf.h"
#include "types.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EV_FORMAT_VERSION 1

/* ---- shared parsing helpers ---- */

/* Parses a whole decimal string "0".."99999" (no sign, no leading zeros) into *out. */
static bool parse_layer_number(const char *s, size_t len, int *out) {
    if (len == 0 || len > 5) return false;
    if (len > 1 && s[0] == '0') return false;
    int v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

/* Copies the elements of a 1-D F32/F16 tensor of width n_embd into out, checking shape
 * and finiteness. what: the tensor name for messages. */
static es_status tensor_to_f32(const es_gguf_tensor *t, int n_embd, float *out) {
    for (int d = 1; d < ES_GGUF_MAX_DIMS; d++)
        if (t->ne[d] != 1)
            return es_error(ES_ERR_FORMAT, "ev: tensor %s has shape [%lld, %lld, ...], want [%d]",
                            t->name, (long long)t->ne[0], (long long)t->ne[1], n_embd);
    if (t->ne[0] != n_embd)
        return es_error(ES_ERR_FORMAT, "ev: tensor %s has width %lld, want %d", t->name,
                        (long long)t->ne[0], n_embd);
    if (t->type == ES_TYPE_F32) {
        memcpy(out, t->data, (size_t)n_embd * sizeof(float));
    } else if (t->type == ES_TYPE_F16) {
        const unsigned char *p = t->data;
        for (int i = 0; i < n_embd; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * (size_t)i, 2);
            out[i] = es_fp16_to_fp32(h);
        }
    } else {
        return es_error(ES_ERR_UNSUPPORTED, "ev: tensor %s has type %s, want F32 or F16", t->name,
                        es_type_name(t->type));
    }
    long bad = es_ev_first_nonfinite(out, n_embd);
    if (bad >= 0)
        return es_error(ES_ERR_FORMAT, "ev: tensor %s: value %ld is %g (not finite)", t->name, bad,
                        (double)out[bad]);
    return ES_OK;
}

/* Width of the first tensor whose name starts with prefix, or an error. */
static es_status first_width(const es_gguf *g, const char *prefix, int *n_embd) {
    size_t plen = strlen(prefix);
    for (int64_t i = 0; i < es_gguf_n_tensors(g); i++) {
        const es_gguf_tensor *t = es_gguf_tensor_at(g, i);
        if (strncmp(t->name, prefix, plen) != 0) continue;
        if (t->ne[0] <= 0 || t->ne[0] > (1 << 24))
            return es_error(ES_ERR_FORMAT, "ev: tensor %s has width %lld", t->name,
                            (long long)t->ne[0]);
        *n_embd = (int)t->ne[0];
        return ES_OK;
    }
    return es_error(ES_ERR_FORMAT, "ev: no tensor named %s*", prefix);
}

/* ---- GGUF: emosteer format ---- */

static char *dup_key_str(const es_gguf *g, const char *key) {
    char *s = es_gguf_get_str_dup(g, key);
    return s ? s : es_strdup("");
}

static es_status load_ours(const es_gguf *g, es_ev_set **out) {
    es_status st;
    uint32_t version = 0, n_embd = 0, layer_count = 0, n_samples = 0;
    if ((st = es_gguf_get_u32(g, "emosteer.format_version", &version)) != ES_OK)
        return es_error_prefix(st, "ev: emosteer.format_version");
    if (version != EV_FORMAT_VERSION)
        return es_error(ES_ERR_UNSUPPORTED, "ev: emosteer.format_version %u (this build reads %d)",
                        version, EV_FORMAT_VERSION);
    if ((st = es_gguf_get_u32(g, "emosteer.n_embd", &n_embd)) != ES_OK)
        return es_error_prefix(st, "ev: emosteer.n_embd");
    if (n_embd == 0 || n_embd > (1u << 24))
        return es_error(ES_ERR_FORMAT, "ev: emosteer.n_embd %u is outside [1, 16777216]", n_embd);
    if ((st = es_gguf_get_u32(g, "emosteer.layer_count", &layer_count)) != ES_OK)
        return es_error_prefix(st, "ev: emosteer.layer_count");
    if (layer_count > ES_EV_MAX_LAYER)
        return es_error(ES_ERR_FORMAT, "ev: emosteer.layer_count %u exceeds %d", layer_count,
                        ES_EV_MAX_LAYER);
    st = es_gguf_get_u32(g, "emosteer.n_samples", &n_samples);
    if (st != ES_OK && st != ES_ERR_NOT_FOUND) return es_error_prefix(st, "ev: emosteer.n_samples");
    if (n_samples > INT32_MAX)
        return es_error(ES_ERR_FORMAT, "ev: emosteer.n_samples %u is too large", n_samples);
    es_gguf_str hook_s;
    if ((st = es_gguf_get_str(g, "emosteer.hook", &hook_s)) != ES_OK)
        return es_error_prefix(st, "ev: emosteer.hook");
    char hook_name[32];
    if (hook_s.len >= sizeof hook_name)
        return es_error(ES_ERR_FORMAT, "ev: emosteer.hook is %llu bytes long",
                        (unsigned long long)hook_s.len);
    memcpy(hook_name, hook_s.ptr, hook_s.len);
    hook_name[hook_s.len] = '\0';
    es_hook_point hook;
    if ((st = es_hook_parse(hook_name, &hook)) != ES_OK)
        return es_error_prefix(st, "ev: emosteer.hook");

    es_gguf_vtype et;
    uint64_t n_emo = 0;
    if ((st = es_gguf_get_arr(g, "emosteer.emotions", &et, &n_emo)) != ES_OK)
        return es_error_prefix(st, "ev: emosteer.emotions");
    if (et != ES_GGUF_STRING || n_emo == 0 || n_emo > 4096)
        return es_error(ES_ERR_FORMAT,
                        "ev: emosteer.emotions must list 1..4096 names (type %d, "
                        "%llu entries)",
                        (int)et, (unsigned long long)n_emo);

    es_ev_set *s = NULL;
    if ((st = es_ev_set_create((int)n_embd, hook, &s)) != ES_OK) return st;
    float *buf = malloc((size_t)n_embd * sizeof *buf);
    char **names = es_calloc(n_emo, sizeof *names);
    bool *seen = es_calloc(n_emo, sizeof *seen);
    if (buf == NULL || names == NULL || seen == NULL) {
        st = es_error(ES_ERR_NOMEM, "ev: out of memory loading");
        goto fail;
    }
    for (uint64_t i = 0; i < n_emo; i++) {
        es_gguf_str e = es_gguf_arr_str(g, "emosteer.emotions", i);
        if (e.ptr == NULL || e.len > ES_EV_MAX_NAME || memchr(e.ptr, 0, e.len) != NULL) {
            st = es_error(ES_ERR_FORMAT, "ev: emosteer.emotions[%llu] is not a valid name",
                          (unsigned long long)i);
            goto fail;
        }
        names[i] = malloc(e.len + 1);
        if (names[i] == NULL) {
            st = es_error(ES_ERR_NOMEM, "ev: out of memory loading");
            goto fail;
        }
        memcpy(names[i], e.ptr, e.len);
        names[i][e.len] = '\0';
        if (!es_ev_name_valid(names[i])) {
            st = es_error(ES_ERR_FORMAT, "ev: emosteer.emotions[%llu] '%s' is not a valid name",
                          (unsigned long long)i, names[i]);
            goto fail;
        }
        for (uint64_t j = 0; j < i; j++)
            if (strcmp(names[i], names[j]) == 0) {
                st = es_error(ES_ERR_FORMAT, "ev: emotion '%s' is listed twice", names[i]);
                goto fail;
            }
    }
    char *layout = es_gguf_get_str_dup(g, "emosteer.tensors");
    bool directions = layout != NULL && strcmp(layout, "direction") == 0;
    if (layout != NULL && !directions && strcmp(layout, "ev") != 0) {
        st = es_error(ES_ERR_FORMAT, "ev: emosteer.tensors '%.32s' is not 'ev' or 'direction'",
                      layout);
        free(layout);
        goto fail;
    }
    free(layout);
    if (directions && n_emo != 1) {
        st = es_error(ES_ERR_FORMAT,
                      "ev: emosteer.tensors 'direction' needs exactly 1 emotion, "
                      "not %llu",
                      (unsigned long long)n_emo);
        goto fail;
    }
    for (int64_t ti = 0; ti < es_gguf_n_tensors(g); ti++) {
        const es_gguf_tensor *t = es_gguf_tensor_at(g, ti);
        const char *prefix = directions ? "direction." : "ev.";
        if (strncmp(t->name, prefix, strlen(prefix)) != 0) continue;
        const char *e = t->name + strlen(prefix);
        const char *dot = directions ? e - 1 : strrchr(e, '.');
        int layer;
        if (dot == NULL || (!directions && dot == e) ||
            !parse_layer_number(dot + 1, strlen(dot + 1), &layer)) {
            st = es_error(ES_ERR_FORMAT, "ev: tensor name %s is not %s", t->name,
                          directions ? "direction.<layer>" : "ev.<emotion>.<layer>");
            goto fail;
        }
        if (directions && layer == 0) {
            st = es_error(ES_ERR_FORMAT,
                          "ev: tensor direction.0: direction tensors start at layer 1");
            goto fail;
        }
        uint64_t k = 0;
        while (
            !directions && k < n_emo &&
            !(strlen(names[k]) == (size_t)(dot - e) && memcmp(names[k], e, (size_t)(dot - e)) == 0))
            k++;
        if (k == n_emo) {
            st = es_error(ES_ERR_FORMAT, "ev: tensor %s belongs to no emotion of emosteer.emotions",
                          t->name);
            goto fail;
        }
        if (layer >= (int)layer_count) {
            st = es_error(ES_ERR_FORMAT, "ev: tensor %s: layer %d >= emosteer.layer_count %u",
                          t->name, layer, layer_count);
            goto fail;
        }
        if (es_ev_set_get(s, names[k], layer) != NULL) {
            st = es_error(ES_ERR_FORMAT, "ev: tensor %s appears twice", t->name);
            goto fail;
        }
        if ((st = tensor_to_f32(t, (int)n_embd, buf)) != ES_OK) goto fail;
        if ((st = es_ev_set_put(s, names[k], layer, buf)) != ES_OK) goto fail;
        seen[k] = true;
    }
    for (uint64_t i = 0; i < n_emo; i++)
        if (!seen[i]) {
            st = es_error(ES_ERR_FORMAT, "ev: emotion '%s' has no %s tensor", names[i],
                          directions ? "direction.<layer>" : "ev.<emotion>.<layer>");
            goto fail;
        }
    /* keep the listed order, which may differ from the tensor order */
    for (uint64_t i = 0; i < n_emo; i++) {
        int cur = es_ev_set_find(s, names[i]);
        ev_emotion tmp = s->emo[i];
        s->emo[i] = s->emo[cur];
        s->emo[cur] = tmp;
    }
    if (es_gguf_find_key(g, "emosteer.act_norm") >= 0 && layer_count > 0) {
        float *norm = es_calloc(layer_count, sizeof *norm);
        if (norm == NULL) {
            st = es_error(ES_ERR_NOMEM, "ev: out of memory loading");
            goto fail;
        }
        st = es_gguf_arr_to_f32(g, "emosteer.act_norm", norm, layer_count);
        for (uint32_t l = 0; st == ES_OK && l < layer_count; l++)
            if (norm[l] != 0) st = es_ev_set_set_act_norm(s, (int)l, norm[l]);
        free(norm);
        if (st != ES_OK) {
            es_error_prefix(st, "ev: emosteer.act_norm");
            goto fail;
        }
    }
    if (es_gguf_find_key(g, "emosteer.default_layers") >= 0) {
        es_gguf_vtype dt;
        uint64_t n_def = 0;
        st = es_gguf_get_arr(g, "emosteer.default_layers", &dt, &n_def);
        if (st == ES_OK && (n_def > layer_count || n_def > ES_EV_MAX_LAYER))
            st = es_error(ES_ERR_FORMAT, "ev: %llu default layers exceed layer_count %u",
                          (unsigned long long)n_def, layer_count);
        int32_t *def = st == ES_OK ? es_calloc(n_def ? n_def : 1, sizeof *def) : NULL;
        if (st == ES_OK && def == NULL) st = es_error(ES_ERR_NOMEM, "ev: out of memory loading");
        if (st == ES_OK) st = es_gguf_arr_to_i32(g, "emosteer.default_layers", def, n_def);
        for (uint64_t i = 0; st == ES_OK && i < n_def; i++)
            if (def[i] < 0 || (uint32_t)def[i] >= layer_count)
                st = es_error(ES_ERR_FORMAT, "ev: default layer %d is outside [0, %u)", (int)def[i],
                              layer_count);
        if (st == ES_OK) st = es_ev_set_set_default_layers(s, def, (int)n_def);
        free(def);
        if (st != ES_OK) {
            es_error_prefix(st, "ev: emosteer.default_layers");
            goto fail;
        }
    }
    char *meta_s[5] = {dup_key_str(g, "emosteer.method"), dup_key_str(g, "emosteer.source_model"),
                       dup_key_str(g, "emosteer.query_set"),
                       dup_key_str(g, "emosteer.token_policy"), dup_key_str(g, "emosteer.note")};
    es_ev_meta meta = {meta_s[0], meta_s[1], meta_s[2], meta_s[3], meta_s[4], (int)n_samples};
    st = ES_OK;
    for (int i = 0; i < 5; i++)
        if (meta_s[i] == NULL) st = es_error(ES_ERR_NOMEM, "ev: out of memory loading");
    if (st == ES_OK) st = es_ev_set_set_meta(s, &meta);
    for (int i = 0; i < 5; i++)
        free(meta_s[i]);
    if (st != ES_OK) goto fail;
    for (uint64_t i = 0; i < n_emo; i++)
        free(names[i]);
    free(names);
    free(seen);
    free(buf);
    *out = s;
    return ES_OK;
fail:
    if (names)
        for (uint64_t i = 0; i < n_emo; i++)
            free(names[i]);
    free(names);
    free(seen);
    free(buf);
    es_ev_set_free(s);
    return st;
}

/* ---- GGUF: llama.cpp control vector ---- */

static es_status load_control_vector(const es_gguf *g, const char *name, es_ev_set **out) {
    int n_embd = 0;
    es_status st = first_width(g, "direction.", &n_embd);
    if (st != ES_OK) return st;
    char *stored = es_gguf_get_str_dup(g, "emosteer.cv_emotion");
    const char *use = name ? name : (stored && es_ev_name_valid(stored) ? stored : "direction");
    es_ev_set *s = NULL;
    float *buf = malloc((size_t)n_embd * sizeof *buf);
    if (buf == NULL) {
        free(stored);
        return es_error(ES_ERR_NOMEM, "ev: out of memory loading");
    }
    if ((st = es_ev_check_name(use)) != ES_OK ||
        (st = es_ev_set_create(n_embd, ES_HOOK_BLOCK_OUT, &s)) != ES_OK)
        goto done;
    for (int64_t ti = 0; ti < es_gguf_n_tensors(g); ti++) {
        const es_gguf_tensor *t = es_gguf_tensor_at(g, ti);
        if (strncmp(t->name, "direction.", 10) != 0) continue;
        int layer;
        if (!parse_layer_number(t->name + 10, strlen(t->name + 10), &layer)) {
            st = es_error(ES_ERR_FORMAT, "ev: tensor name %s is not direction.<layer>", t->name);
            goto done;
        }
        if (layer == 0) {
            st = es_error(ES_ERR_FORMAT, "ev: tensor direction.0: control vectors start at layer 1 "
                                         "(llama.cpp never steers block 0)");
            goto done;
        }
        if (layer >= ES_EV_MAX_LAYER) {
            st = es_error(ES_ERR_FORMAT, "ev: tensor %s: layer %d exceeds %d", t->name, layer,
                          ES_EV_MAX_LAYER - 1);
            goto done;
        }
        if (es_ev_set_get(s, use, layer) != NULL) {
            st = es_error(ES_ERR_FORMAT, "ev: tensor %s appears twice", t->name);
            goto done;
        }
        if ((st = tensor_to_f32(t, n_embd, buf)) != ES_OK) goto done;
        if ((st = es_ev_set_put(s, use, layer, buf)) != ES_OK) goto done;
    }
    char *hint = es_gguf_get_str_dup(g, "controlvector.model_hint");
    char *note = es_gguf_get_str_dup(g, "emosteer.note");
    es_ev_meta meta = {"control_vector", hint ? hint : "", "", "", note ? note : "", 0};
    st = es_ev_set_set_meta(s, &meta);
    free(hint);
    free(note);
done:
    free(buf);
    free(stored);
    if (st != ES_OK) {
        es_ev_set_free(s);
        return st;
    }
    *out = s;
    return ES_OK;
}

static es_status load_gguf(const es_gguf *g, const char *name, es_ev_set **out) {
    if (es_gguf_find_key(g, "emosteer.emotions") >= 0) return load_ours(g, out);
    for (int64_t i = 0; i < es_gguf_n_tensors(g); i++)
        if (strncmp(es_gguf_tensor_at(g, i)->name, "direction.", 10) == 0)
            return load_control_vector(g, name, out);
    return es_error(ES_ERR_FORMAT, "ev: GGUF file has neither emosteer.emotions nor direction.N "
                                   "tensors: not an emotion-vector or control-vector file");
}

/* ---- JSON: the seed paper's vectors ---- */

static es_status load_json(json_t *root, const char *name, es_ev_set **out) {
    if (!json_is_object(root))
        return es_error(ES_ERR_FORMAT,
                        "ev: JSON: top level is not an object {\"0\": [[...]], ...}");
    size_t n_layer = json_object_size(root);
    if (n_layer == 0) return es_error(ES_ERR_FORMAT, "ev: JSON: the object has no layers");
    if (n_layer > ES_EV_MAX_LAYER)
        return es_error(ES_ERR_FORMAT, "ev: JSON: %zu layers exceed %d", n_layer, ES_EV_MAX_LAYER);
    /* each layer's list of numbers, indexed by layer */
    json_t **rows = es_calloc(n_layer, sizeof *rows);
    if (rows == NULL) return es_error(ES_ERR_NOMEM, "ev: out of memory loading JSON");
    es_status st = ES_OK;
    const char *key;
    json_t *val;
    size_t width = 0;
    json_object_foreach(root, key, val) {
        int layer;
        if (!parse_layer_number(key, strlen(key), &layer)) {
            st = es_error(ES_ERR_FORMAT, "ev: JSON: key \"%.32s\" is not a layer number", key);
            goto done;
        }
        if ((size_t)layer >= n_layer) {
            st = es_error(ES_ERR_FORMAT,
                          "ev: JSON: layer %d given but layers 0..%zu expected (a "
                          "layer is missing)",
                          layer, n_layer - 1);
            goto done;
        }
        json_t *row = val;
        if (json_is_array(row) && json_array_size(row) >= 1 &&
            json_is_array(json_array_get(row, 0))) {
            if (json_array_size(row) != 1) {
                st = es_error(ES_ERR_FORMAT, "ev: JSON: layer %d holds %zu vectors, want 1", layer,
                              json_array_size(row));
                goto done;
            }
            row = json_array_get(row, 0);
        }
        if (!json_is_array(row) || json_array_size(row) == 0) {
            st = es_error(ES_ERR_FORMAT, "ev: JSON: layer %d is not a non-empty list of numbers",
                          layer);
            goto done;
        }
        if (width == 0) width = json_array_size(row);
        if (json_array_size(row) != width) {
            st = es_error(ES_ERR_FORMAT, "ev: JSON: layer %d has width %zu, other layers %zu",
                          layer, json_array_size(row), width);
            goto done;
        }
        rows[layer] = row;
    }
    if (width > (1u << 24)) {
        st = es_error(ES_ERR_FORMAT, "ev: JSON: width %zu is too large", width);
        goto done;
    }
    for (size_t l = 0; l < n_layer; l++)
        if (rows[l] == NULL) {
            st = es_error(ES_ERR_FORMAT, "ev: JSON: layer %zu is missing", l);
            goto done;
        }
    es_ev_set *s = NULL;
    if ((st = es_ev_check_name(name)) != ES_OK ||
        (st = es_ev_set_create((int)width, ES_HOOK_ATTN_OUT, &s)) != ES_OK)
        goto done;
    float *buf = malloc(width * sizeof *buf);
    if (buf == NULL) st = es_error(ES_ERR_NOMEM, "ev: out of memory loading JSON");
    for (size_t l = 0; st == ES_OK && l < n_layer; l++) {
        for (size_t i = 0; i < width; i++) {
            json_t *x = json_array_get(rows[l], i);
            double d;
            if (json_is_real(x)) {
                d = json_real_value(x);
            } else if (json_is_integer(x)) {
                d = (double)json_integer_value(x);
            } else {
                st = es_error(ES_ERR_FORMAT, "ev: JSON: layer %zu value %zu is not a number", l, i);
                break;
            }
            float f = (float)d;
            if (!isfinite(f)) {
                st = es_error(ES_ERR_FORMAT,
                              "ev: JSON: layer %zu value %zu (%g) is not a finite "
                              "float",
                              l, i, d);
                break;
            }
            buf[i] = f;
        }
        if (st == ES_OK) st = es_ev_set_put(s, name, (int)l, buf);
    }
    free(buf);
    if (st == ES_OK) {
        es_ev_meta meta = {"paper_json", "", "", "", "", 0};
        st = es_ev_set_set_meta(s, &meta);
    }
    if (st != ES_OK) {
        es_ev_set_free(s);
        goto done;
    }
    *out = s;
done:
    free(rows);
    return st;
}

/* ---- loading: format detection ---- */

static bool looks_gguf(const void *data, size_t size) {
    return size >= 4 && memcmp(data, "GGUF", 4) == 0;
}

static bool looks_json(const unsigned char *p, size_t size) {
    size_t i = 0;
    while (i < size && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))
        i++;
    return i < size && p[i] == '{';
}

es_status es_ev_set_load_memory(const void *data, size_t size, const char *name, es_ev_set **out) {
    if (data == NULL || out == NULL) return es_error(ES_ERR_INVALID_ARG, "ev: load: NULL argument");
    if (looks_gguf(data, size)) {
        es_gguf *g = NULL;
        es_status st = es_gguf_open_memory(data, size, &g);
        if (st != ES_OK) return st;
        st = load_gguf(g, name, out);
        es_gguf_close(g);
        return st;
    }
    if (looks_json(data, size)) {
        json_error_t jerr;
        json_t *root = json_loadb(data, size, JSON_REJECT_DUPLICATES, &jerr);
        if (root == NULL)
            return es_error(ES_ERR_FORMAT, "ev: JSON: %s (line %d, column %d)", jerr.text,
                            jerr.line, jerr.column);
        es_status st = load_json(root, name ? name : "direction", out);
        json_decref(root);
        return st;
    }
    return es_error(ES_ERR_FORMAT, "ev: input is neither GGUF nor a JSON object");
}

/* The emotion name implied by a path: last "_"-separated word of the file name
 * without extension. Writes into buf (size n). */
static void name_from_path(const char *path, char *buf, size_t n) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *end = strrchr(base, '.');
    if (end == NULL || end == base) end = base + strlen(base);
    const char *start = base;
    for (const char *p = base; p < end; p++)
        if (*p == '_') start = p + 1;
    size_t len = (size_t)(end - start);
    if (len >= n) len = n - 1;
    memcpy(buf, start, len);
    buf[len] = '\0';
}

es_status es_ev_set_load(const char *path, const char *name, es_ev_set **out) {
    if (path == NULL || out == NULL) return es_error(ES_ERR_INVALID_ARG, "ev: load: NULL argument");
    FILE *f = fopen(path, "rb");
    if (f == NULL) return es_error(ES_ERR_IO, "ev: cannot open %s: %s", path, strerror(errno));
    unsigned char head[64];
    size_t nh = fread(head, 1, sizeof head, f);
    fclose(f);
    char derived[ES_EV_MAX_NAME + 16];
    name_from_path(path, derived, sizeof derived);
    es_status st;
    if (looks_gguf(head, nh)) {
        es_gguf *g = NULL;
        if ((st = es_gguf_open(path, &g)) != ES_OK) return st;
        const char *use = name;
        if (use == NULL && es_gguf_find_key(g, "emosteer.cv_emotion") < 0) use = derived;
        if (use != NULL && !es_ev_name_valid(use) && es_gguf_find_key(g, "emosteer.emotions") < 0) {
            es_gguf_close(g);
            return es_error(ES_ERR_INVALID_ARG,
                            "ev: %s: emotion name '%s' (from the file name) is "
                            "not valid; pass a name",
                            path, use);
        }
        st = load_gguf(g, use, out);
        es_gguf_close(g);
    } else if (looks_json(head, nh)) {
        const char *use = name ? name : derived;
        if (!es_ev_name_valid(use))
            return es_error(ES_ERR_INVALID_ARG,
                            "ev: %s: emotion name '%s' (from the file name) is "
                            "not valid; pass a name",
                            path, use);
        json_error_t jerr;
        json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
        if (root == NULL)
            return es_error(ES_ERR_FORMAT, "ev: %s: JSON: %s (line %d, column %d)", path, jerr.text,
                            jerr.line, jerr.column);
        st = load_json(root, use, out);
        json_decref(root);
    } else {
        return es_error(ES_ERR_FORMAT, "ev: %s is neither GGUF nor a JSON object", path);
    }
    if (st != ES_OK) return es_error_prefix(st, "%s", path);
    return ES_OK;
}

/* ---- saving ---- */

static es_status add_vec(es_gguf_writer *w, const char *name, const float *v, int n_embd) {
    int64_t ne[1] = {n_embd};
    return es_gguf_writer_add_tensor(w, name, ES_TYPE_F32, 1, ne, v);
}

es_status es_ev_set_save(const es_ev_set *set, const char *path) {
    if (set == NULL || path == NULL) return es_error(ES_ERR_INVALID_ARG, "ev: save: NULL argument");
    if (set->n_emo == 0) return es_error(ES_ERR_INVALID_ARG, "ev: save: the set has no emotions");
    es_gguf_writer *w = es_gguf_writer_new();
    if (w == NULL) return es_error(ES_ERR_NOMEM, "ev: out of memory saving");
    int n_layer = es_ev_set_n_layer(set);
    /* llama.cpp rejects any tensor not named direction.N (N >= 1), so the
     * llama.cpp-readable layout holds nothing else */
    bool directions = set->n_emo == 1 && set->hook == ES_HOOK_BLOCK_OUT &&
                      (set->cap_layer == 0 || set->emo[0].layer[0] == NULL);
    uint32_t n_dir = 0;
    if (directions)
        for (int l = 1; l < n_layer; l++)
            n_dir += set->emo[0].layer[l] != NULL;
    const char **names = es_calloc((size_t)set->n_emo, sizeof *names);
    float *norms = es_calloc(n_layer ? (size_t)n_layer : 1, sizeof *norms);
    es_status st = (names && norms) ? ES_OK : es_error(ES_ERR_NOMEM, "ev: out of memory saving");
    for (int i = 0; st == ES_OK && i < set->n_emo; i++)
        names[i] = set->emo[i].name;
    for (int l = 0; st == ES_OK && l < n_layer; l++)
        norms[l] = set->act_norm[l];
#define TRY(expr)                                                                                  \
    if (st == ES_OK) st = (expr)
    TRY(es_gguf_writer_set_str(w, "general.architecture", "controlvector"));
    TRY(es_gguf_writer_set_str(w, "controlvector.model_hint", set->source_model));
    TRY(es_gguf_writer_set_u32(w, "controlvector.layer_count", n_dir));
    TRY(es_gguf_writer_set_u32(w, "emosteer.format_version", EV_FORMAT_VERSION));
    TRY(es_gguf_writer_set_str(w, "emosteer.tensors", directions ? "direction" : "ev"));
    TRY(es_gguf_writer_set_arr_str(w, "emosteer.emotions", names, (uint64_t)set->n_emo));
    TRY(es_gguf_writer_set_str(w, "emosteer.hook", es_hook_name(set->hook)));
    TRY(es_gguf_writer_set_u32(w, "emosteer.n_embd", (uint32_t)set->n_embd));
    TRY(es_gguf_writer_set_u32(w, "emosteer.layer_count", (uint32_t)n_layer));
    TRY(es_gguf_writer_set_str(w, "emosteer.method", set->method));
    TRY(es_gguf_writer_set_str(w, "emosteer.source_model", set->source_model));
    TRY(es_gguf_writer_set_str(w, "emosteer.query_set", set->query_set));
    TRY(es_gguf_writer_set_str(w, "emosteer.token_policy", set->token_policy));
    TRY(es_gguf_writer_set_str(w, "emosteer.note", set->note));
    TRY(es_gguf_writer_set_u32(w, "emosteer.n_samples", (uint32_t)set->n_samples));
    if (n_layer > 0)
        TRY(es_gguf_writer_set_arr(w, "emosteer.act_norm", ES_GGUF_FLOAT32, norms,
                                   (uint64_t)n_layer));
    if (set->n_default_layers > 0)
        TRY(es_gguf_writer_set_arr(w, "emosteer.default_layers", ES_GGUF_INT32, set->default_layers,
                                   (uint64_t)set->n_default_layers));
    char tname[96];
    for (int i = 0; st == ES_OK && i < set->n_emo; i++)
        for (int l = 0; st == ES_OK && l < n_layer; l++) {
            const float *v = set->emo[i].layer[l];
            if (v == NULL) continue;
            if (directions)
                snprintf(tname, sizeof tname, "direction.%d", l);
            else
                snprintf(tname, sizeof tname, "ev.%s.%d", set->emo[i].name, l);
            st = add_vec(w, tname, v, set->n_embd);
        }
    TRY(es_gguf_writer_write(w, path));
#undef TRY
    free(names);
    free(norms);
    es_gguf_writer_free(w);
    return st;
}

es_status es_ev_set_export_control_vector(const es_ev_set *set, const char *emotion, float scale,
                                          bool force, const char *path) {
    if (set == NULL || path == NULL)
        return es_error(ES_ERR_INVALID_ARG, "ev: export: NULL argument");
    int e = es_ev_set_find(set, emotion);
    if (e < 0)
        return es_error(ES_ERR_NOT_FOUND, "ev: export: no emotion '%.64s' in the set",
                        emotion ? emotion : "(null)");
    if (!isfinite(scale))
        return es_error(ES_ERR_INVALID_ARG, "ev: export: scale %g is not finite", (double)scale);
    char note[512] = "";
    if (set->hook != ES_HOOK_BLOCK_OUT) {
        if (!force)
            return es_error(
                ES_ERR_UNSUPPORTED,
                "ev: export: '%s' was measured at hook %s, but a llama.cpp control "
                "vector is added to the block output (block_out); the hook differs, so "
                "llama.cpp would steer differently (force the export to write it anyway)",
                set->emo[e].name, es_hook_name(set->hook));
        snprintf(note, sizeof note,
                 "forced export: vectors measured at %s are applied by llama.cpp "
                 "at block_out; ",
                 es_hook_name(set->hook));
    }
    const float *v0 = set->emo[e].layer[0];
    if (set->cap_layer > 0 && v0 != NULL) {
        bool nonzero = false;
        for (int i = 0; i < set->n_embd; i++)
            nonzero |= v0[i] != 0.0f;
        if (nonzero) {
            if (!force)
                return es_error(
                    ES_ERR_UNSUPPORTED,
                    "ev: export: '%s' has a nonzero vector at layer 0, which a llama.cpp "
                    "control vector cannot hold (llama.cpp never steers block 0; force "
                    "the export to drop it)",
                    set->emo[e].name);
            size_t len = strlen(note);
            snprintf(note + len, sizeof note - len, "layer 0 vector dropped; ");
        }
    }
    int n_layer = es_ev_set_n_layer(set);
    uint32_t n_dir = 0;
    for (int l = 1; l < n_layer; l++)
        n_dir += set->emo[e].layer[l] != NULL;
    if (n_dir == 0)
        return es_error(ES_ERR_UNSUPPORTED, "ev: export: '%s' has no vector at layers >= 1",
                        set->emo[e].name);
    es_gguf_writer *w = es_gguf_writer_new();
    float *buf = malloc((size_t)set->n_embd * sizeof *buf);
    es_status st = (w && buf) ? ES_OK : es_error(ES_ERR_NOMEM, "ev: out of memory exporting");
#define TRY(expr)                                                                                  \
    if (st == ES_OK) st = (expr)
    TRY(es_gguf_writer_set_str(w, "general.architecture", "controlvector"));
    TRY(es_gguf_writer_set_str(w, "controlvector.model_hint", set->source_model));
    TRY(es_gguf_writer_set_u32(w, "controlvector.layer_count", n_dir));
    TRY(es_gguf_writer_set_str(w, "emosteer.cv_emotion", set->emo[e].name));
    TRY(es_gguf_writer_set_f32(w, "emosteer.cv_scale", scale));
    TRY(es_gguf_writer_set_str(w, "emosteer.cv_hook", es_hook_name(set->hook)));
    TRY(es_gguf_writer_set_str(w, "emosteer.note", note));
    char tname[32];
    for (int l = 1; st == ES_OK && l < n_layer; l++) {
        const float *v = set->emo[e].layer[l];
        if (v == NULL) continue;
        for (int i = 0; i < set->n_embd; i++)
            buf[i] = scale * v[i];
        long bad = es_ev_first_nonfinite(buf, set->n_embd);
        if (bad >= 0) {
            st = es_error(ES_ERR_INVALID_ARG,
                          "ev: export: scale %g makes layer %d value %ld "
                          "overflow",
                          (double)scale, l, bad);
            break;
        }
        snprintf(tname, sizeof tname, "direction.%d", l);
        st = add_vec(w, tname, buf, set->n_embd);
    }
    TRY(es_gguf_writer_write(w, path));
#undef TRY
    free(buf);
    es_gguf_writer_free(w);
    return st;
}
