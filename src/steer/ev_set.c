/*
 * ev_set.c — the in-memory emotion-vector set: named vectors per layer at one hook,
 * with metadata, activation norms and recommended layers (es_ev_set_* in emosteer.h;
 * the files it is read from and written to are ev_file.c).
 */
#include "ev_set.h"
#include "ev.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- names and small helpers ---- */

bool es_ev_name_valid(const char *name) {
    if (name == NULL) return false;
    size_t n = strlen(name);
    if (n == 0 || n > ES_EV_MAX_NAME) return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-';
        if (!ok) return false;
    }
    return true;
}

es_status es_ev_check_name(const char *name) {
    if (!es_ev_name_valid(name))
        return es_error(ES_ERR_INVALID_ARG,
                        "ev: emotion name '%.64s' is not 1..%d characters of [A-Za-z0-9_-]",
                        name ? name : "(null)", ES_EV_MAX_NAME);
    return ES_OK;
}

long es_ev_first_nonfinite(const float *v, int n) {
    for (int i = 0; i < n; i++)
        if (!isfinite(v[i])) return i;
    return -1;
}

es_status es_ev_copy_str(char **dst, const char *src) {
    char *s = es_strdup(src ? src : "");
    if (s == NULL) return es_error(ES_ERR_NOMEM, "ev: out of memory copying metadata");
    free(*dst);
    *dst = s;
    return ES_OK;
}

/* ---- the set ---- */

es_status es_ev_set_create(int n_embd, es_hook_point hp, es_ev_set **out) {
    if (out == NULL) return es_error(ES_ERR_INVALID_ARG, "ev: out is NULL");
    if (n_embd <= 0 || n_embd > (1 << 24))
        return es_error(ES_ERR_INVALID_ARG, "ev: n_embd %d is outside [1, 16777216]", n_embd);
    if ((int)hp < 0 || hp >= ES_HOOK_COUNT)
        return es_error(ES_ERR_INVALID_ARG, "ev: hook point %d is not a hook", (int)hp);
    es_ev_set *s = es_calloc(1, sizeof *s);
    if (s == NULL) return ES_ERR_NOMEM;
    s->n_embd = n_embd;
    s->hook = hp;
    s->method = es_strdup("");
    s->source_model = es_strdup("");
    s->query_set = es_strdup("");
    s->token_policy = es_strdup("");
    s->note = es_strdup("");
    if (!s->method || !s->source_model || !s->query_set || !s->token_policy || !s->note) {
        es_ev_set_free(s);
        return es_error(ES_ERR_NOMEM, "ev: out of memory creating a set");
    }
    *out = s;
    return ES_OK;
}

static void free_emotion(ev_emotion *e, int cap_layer) {
    if (e->layer)
        for (int l = 0; l < cap_layer; l++)
            free(e->layer[l]);
    free(e->layer);
    free(e->name);
}

void es_ev_set_free(es_ev_set *set) {
    if (set == NULL) return;
    for (int i = 0; i < set->n_emo; i++)
        free_emotion(&set->emo[i], set->cap_layer);
    free(set->emo);
    free(set->act_norm);
    free(set->method);
    free(set->source_model);
    free(set->query_set);
    free(set->token_policy);
    free(set->note);
    free(set->default_layers);
    free(set);
}

/* Grows every layer array to hold `layer`. */
static es_status grow_layers(es_ev_set *s, int layer) {
    if (layer < s->cap_layer) return ES_OK;
    int cap = s->cap_layer ? s->cap_layer : 8;
    while (cap <= layer)
        cap *= 2;
    if (cap > ES_EV_MAX_LAYER) cap = ES_EV_MAX_LAYER;
    float *norm = realloc(s->act_norm, (size_t)cap * sizeof *norm);
    if (norm == NULL) return es_error(ES_ERR_NOMEM, "ev: out of memory growing to %d layers", cap);
    memset(norm + s->cap_layer, 0, (size_t)(cap - s->cap_layer) * sizeof *norm);
    s->act_norm = norm;
    for (int i = 0; i < s->n_emo; i++) {
        float **l = realloc(s->emo[i].layer, (size_t)cap * sizeof *l);
        if (l == NULL) return es_error(ES_ERR_NOMEM, "ev: out of memory growing to %d layers", cap);
        memset(l + s->cap_layer, 0, (size_t)(cap - s->cap_layer) * sizeof *l);
        s->emo[i].layer = l;
    }
    s->cap_layer = cap;
    return ES_OK;
}

int es_ev_set_find(const es_ev_set *set, const char *emotion) {
    if (set == NULL || emotion == NULL) return -1;
    for (int i = 0; i < set->n_emo; i++)
        if (strcmp(set->emo[i].name, emotion) == 0) return i;
    return -1;
}

/* Index of `emotion`, adding it (with no layers) if new. */
static es_status find_or_add(es_ev_set *s, const char *emotion, int *idx) {
    int i = es_ev_set_find(s, emotion);
    if (i >= 0) {
        *idx = i;
        return ES_OK;
    }
    es_status st = es_ev_check_name(emotion);
    if (st != ES_OK) return st;
    if (s->n_emo == s->cap_emo) {
        int cap = s->cap_emo ? s->cap_emo * 2 : 8;
        ev_emotion *e = realloc(s->emo, (size_t)cap * sizeof *e);
        if (e == NULL) return es_error(ES_ERR_NOMEM, "ev: out of memory adding an emotion");
        s->emo = e;
        s->cap_emo = cap;
    }
    ev_emotion e = {0};
    e.name = es_strdup(emotion);
    e.layer = es_calloc(s->cap_layer ? (size_t)s->cap_layer : 1, sizeof *e.layer);
    if (e.name == NULL || e.layer == NULL) {
        free(e.name);
        free(e.layer);
        return es_error(ES_ERR_NOMEM, "ev: out of memory adding an emotion");
    }
    s->emo[s->n_emo] = e;
    *idx = s->n_emo++;
    return ES_OK;
}

es_status es_ev_set_put(es_ev_set *set, const char *emotion, int layer, const float *v) {
    if (set == NULL || v == NULL) return es_error(ES_ERR_INVALID_ARG, "ev: put: NULL argument");
    es_status st = es_ev_check_name(emotion);
    if (st != ES_OK) return st;
    if (layer < 0 || layer >= ES_EV_MAX_LAYER)
        return es_error(ES_ERR_INVALID_ARG, "ev: layer %d of '%s' is outside [0, %d)", layer,
                        emotion, ES_EV_MAX_LAYER);
    long bad = es_ev_first_nonfinite(v, set->n_embd);
    if (bad >= 0)
        return es_error(ES_ERR_FORMAT, "ev: '%s' layer %d: value %ld is %g (not finite)", emotion,
                        layer, bad, (double)v[bad]);
    float *copy = malloc((size_t)set->n_embd * sizeof *copy);
    if (copy == NULL) return es_error(ES_ERR_NOMEM, "ev: out of memory copying a vector");
    memcpy(copy, v, (size_t)set->n_embd * sizeof *copy);
    int idx = -1;
    if ((st = grow_layers(set, layer)) != ES_OK ||
        (st = find_or_add(set, emotion, &idx)) != ES_OK) {
        free(copy);
        return st;
    }
    free(set->emo[idx].layer[layer]);
    set->emo[idx].layer[layer] = copy;
    return ES_OK;
}

int es_ev_set_n_embd(const es_ev_set *set) {
    return set ? set->n_embd : 0;
}
es_hook_point es_ev_set_hook(const es_ev_set *set) {
    return set ? set->hook : ES_HOOK_BLOCK_OUT;
}
int es_ev_set_n_emotions(const es_ev_set *set) {
    return set ? set->n_emo : 0;
}

int es_ev_set_n_layer(const es_ev_set *set) {
    if (set == NULL) return 0;
    int n = 0;
    for (int i = 0; i < set->n_emo; i++)
        for (int l = set->cap_layer - 1; l >= n; l--)
            if (set->emo[i].layer[l]) {
                n = l + 1;
                break;
            }
    return n;
}

const char *es_ev_set_emotion(const es_ev_set *set, int i) {
    if (set == NULL || i < 0 || i >= set->n_emo) return NULL;
    return set->emo[i].name;
}

const float *es_ev_set_get(const es_ev_set *set, const char *emotion, int layer) {
    int i = es_ev_set_find(set, emotion);
    if (i < 0 || layer < 0 || layer >= set->cap_layer) return NULL;
    return set->emo[i].layer[layer];
}

es_status es_ev_set_rename(es_ev_set *set, const char *emotion, const char *new_name) {
    if (set == NULL) return es_error(ES_ERR_INVALID_ARG, "ev: rename: set is NULL");
    int i = es_ev_set_find(set, emotion);
    if (i < 0)
        return es_error(ES_ERR_NOT_FOUND, "ev: no emotion '%.64s' to rename",
                        emotion ? emotion : "(null)");
    es_status st = es_ev_check_name(new_name);
    if (st != ES_OK) return st;
    int j = es_ev_set_find(set, new_name);
    if (j == i) return ES_OK;
    if (j >= 0) return es_error(ES_ERR_INVALID_ARG, "ev: emotion '%s' already exists", new_name);
    return es_ev_copy_str(&set->emo[i].name, new_name);
}

es_status es_ev_set_merge(es_ev_set *dst, const es_ev_set *src) {
    if (dst == NULL || src == NULL) return es_error(ES_ERR_INVALID_ARG, "ev: merge: NULL set");
    if (dst->n_embd != src->n_embd)
        return es_error(ES_ERR_INVALID_ARG, "ev: merge: width %d differs from %d", src->n_embd,
                        dst->n_embd);
    if (dst->hook != src->hook)
        return es_error(ES_ERR_INVALID_ARG, "ev: merge: hook %s differs from %s",
                        es_hook_name(src->hook), es_hook_name(dst->hook));
    for (int i = 0; i < src->n_emo; i++)
        for (int l = 0; l < src->cap_layer; l++)
            if (src->emo[i].layer[l]) {
                es_status st = es_ev_set_put(dst, src->emo[i].name, l, src->emo[i].layer[l]);
                if (st != ES_OK) return st;
            }
    for (int l = 0; l < src->cap_layer; l++)
        if (src->act_norm[l] > 0 && es_ev_set_act_norm(dst, l) == 0) {
            es_status st = es_ev_set_set_act_norm(dst, l, src->act_norm[l]);
            if (st != ES_OK) return st;
        }
    return ES_OK;
}

void es_ev_set_get_meta(const es_ev_set *set, es_ev_meta *meta) {
    if (set == NULL || meta == NULL) return;
    meta->method = set->method;
    meta->source_model = set->source_model;
    meta->query_set = set->query_set;
    meta->token_policy = set->token_policy;
    meta->note = set->note;
    meta->n_samples = set->n_samples;
}

es_status es_ev_set_set_meta(es_ev_set *set, const es_ev_meta *meta) {
    if (set == NULL || meta == NULL) return es_error(ES_ERR_INVALID_ARG, "ev: set_meta: NULL");
    if (meta->n_samples < 0)
        return es_error(ES_ERR_INVALID_ARG, "ev: n_samples %d is negative", meta->n_samples);
    es_status st;
    if ((st = es_ev_copy_str(&set->method, meta->method)) != ES_OK ||
        (st = es_ev_copy_str(&set->source_model, meta->source_model)) != ES_OK ||
        (st = es_ev_copy_str(&set->query_set, meta->query_set)) != ES_OK ||
        (st = es_ev_copy_str(&set->token_policy, meta->token_policy)) != ES_OK ||
        (st = es_ev_copy_str(&set->note, meta->note)) != ES_OK)
        return st;
    set->n_samples = meta->n_samples;
    return ES_OK;
}

es_status es_ev_set_set_act_norm(es_ev_set *set, int layer, float norm) {
    if (set == NULL) return es_error(ES_ERR_INVALID_ARG, "ev: set_act_norm: set is NULL");
    if (layer < 0 || layer >= ES_EV_MAX_LAYER)
        return es_error(ES_ERR_INVALID_ARG, "ev: layer %d is outside [0, %d)", layer,
                        ES_EV_MAX_LAYER);
    if (!isfinite(norm) || norm < 0)
        return es_error(ES_ERR_INVALID_ARG,
                        "ev: activation norm %g of layer %d is not a finite "
                        "value >= 0",
                        (double)norm, layer);
    es_status st = grow_layers(set, layer);
    if (st != ES_OK) return st;
    set->act_norm[layer] = norm;
    return ES_OK;
}

float es_ev_set_act_norm(const es_ev_set *set, int layer) {
    if (set == NULL || layer < 0 || layer >= set->cap_layer) return 0.0f;
    return set->act_norm[layer];
}

es_status es_ev_set_set_default_layers(es_ev_set *set, const int32_t *layers, int n) {
    if (set == NULL || (n > 0 && layers == NULL))
        return es_error(ES_ERR_INVALID_ARG, "ev: set_default_layers: NULL argument");
    if (n < 0 || n > ES_EV_MAX_LAYER)
        return es_error(ES_ERR_INVALID_ARG, "ev: %d default layers is outside [0, %d]", n,
                        ES_EV_MAX_LAYER);
    for (int i = 0; i < n; i++) {
        if (layers[i] < 0 || layers[i] >= ES_EV_MAX_LAYER)
            return es_error(ES_ERR_INVALID_ARG, "ev: default layer %d is outside [0, %d)",
                            (int)layers[i], ES_EV_MAX_LAYER);
        if (i > 0 && layers[i] <= layers[i - 1])
            return es_error(ES_ERR_INVALID_ARG, "ev: default layers must increase: %d after %d",
                            (int)layers[i], (int)layers[i - 1]);
    }
    int32_t *copy = NULL;
    if (n > 0) {
        copy = es_calloc((size_t)n, sizeof *copy);
        if (copy == NULL) return es_error(ES_ERR_NOMEM, "ev: out of memory for default layers");
        memcpy(copy, layers, (size_t)n * sizeof *copy);
    }
    free(set->default_layers);
    set->default_layers = copy;
    set->n_default_layers = n;
    return ES_OK;
}

int es_ev_set_default_layers(const es_ev_set *set, const int32_t **layers) {
    if (layers) *layers = set ? set->default_layers : NULL;
    return set ? set->n_default_layers : 0;
}

int es_ev_recommended_layers(int n_layer, int32_t *out, int cap) {
    if (n_layer < 1) return 0;
    /* the block_out layers from 1/4 up to 5/8 of the depth (demo-16m, 8 blocks: 2..4;
     * docs/steering-demo.md): past the embedding-dominated first blocks, before the
     * blocks that specialise in the next token */
    int first = n_layer / 4, last = (5 * n_layer) / 8 - 1;
    if (last < first) last = first;
    if (last > n_layer - 1) last = n_layer - 1;
    int n = last - first + 1;
    for (int i = 0; i < n && i < cap && out; i++)
        out[i] = first + i;
    return n;
}
