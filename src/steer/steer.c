/*
 * steer.c — steering sets: lists of items, each holding copies of the selected
 * layers' vectors of one emotion, with alpha, hook and position policy. Attaching a
 * set to a context compiles it into the model layer's es_steer_compiled
 * (model/steer_state.h), which the forward pass applies.
 */
#include "steer.h"
#include "common.h"
#include "context.h"
#include "ev.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- steering sets ---- */

typedef struct steer_item {
    char emotion[ES_EV_MAX_NAME + 1];
    es_hook_point hook;
    es_steer_positions positions;
    float alpha;
    int n_layers;
    int32_t *layers; /* [n_layers] distinct, in selection order */
    float *vecs;     /* [n_layers][n_embd] the emotion's unscaled vectors */
} steer_item;

struct es_steer_set {
    int n_embd; /* width of every item (0 while empty) */
    bool preserve_norm;
    steer_item *items; /* [n_items] */
    int n_items, cap_items;
};

static const char *const k_pos_names[ES_STEER_POS_COUNT] = {"all", "prompt", "generated", "last"};

const char *es_steer_positions_name(es_steer_positions p) {
    return ((int)p >= 0 && p < ES_STEER_POS_COUNT) ? k_pos_names[p] : "unknown";
}

es_status es_steer_positions_parse(const char *name, es_steer_positions *out) {
    if (name == NULL || out == NULL) return es_error(ES_ERR_INVALID_ARG, "steer: positions: NULL");
    for (int p = 0; p < ES_STEER_POS_COUNT; p++)
        if (strcmp(name, k_pos_names[p]) == 0) {
            *out = (es_steer_positions)p;
            return ES_OK;
        }
    return es_error(ES_ERR_INVALID_ARG,
                    "steer: positions '%.64s' is not one of all, prompt, generated, last", name);
}

es_steer_item es_steer_item_default(void) {
    es_steer_item it;
    memset(&it, 0, sizeof it);
    it.alpha = 1.0f;
    it.hook = ES_HOOK_AUTO;
    it.layer_first = -1;
    it.layer_last = -1;
    it.layers = NULL;
    it.n_layers = 0;
    it.positions = ES_STEER_POS_ALL;
    return it;
}

es_status es_steer_set_create(es_steer_set **out) {
    if (out == NULL) return es_error(ES_ERR_INVALID_ARG, "steer: out is NULL");
    es_steer_set *s = es_calloc(1, sizeof *s);
    if (s == NULL) return ES_ERR_NOMEM;
    *out = s;
    return ES_OK;
}

void es_steer_set_free(es_steer_set *set) {
    if (set == NULL) return;
    for (int i = 0; i < set->n_items; i++) {
        free(set->items[i].layers);
        free(set->items[i].vecs);
    }
    free(set->items);
    free(set);
}

void es_steer_set_preserve_norm(es_steer_set *set, bool on) {
    if (set) set->preserve_norm = on;
}

int es_steer_set_n_items(const es_steer_set *set) {
    return set ? set->n_items : 0;
}

/* Fills layers[] (capacity cap) with the selection of `it` over emotion `e` of ev.
 * Returns the count in *n. */
static es_status select_layers(const es_steer_item *it, const es_ev_set *ev, int32_t *layers,
                               int cap, int *n) {
    const char *e = it->emotion;
    int n_layer = es_ev_set_n_layer(ev);
    int k = 0;
    if (it->layers != NULL) {
        if (it->n_layers <= 0 || it->n_layers > cap)
            return es_error(ES_ERR_INVALID_ARG, "steer: layer list of '%s' has %d entries", e,
                            it->n_layers);
        for (int i = 0; i < it->n_layers; i++) {
            int32_t l = it->layers[i];
            if (l < 0 || l >= ES_EV_MAX_LAYER)
                return es_error(ES_ERR_INVALID_ARG,
                                "steer: layer %d of '%s' is negative or too "
                                "large",
                                (int)l, e);
            if (es_ev_set_get(ev, e, l) == NULL)
                return es_error(ES_ERR_NOT_FOUND, "steer: emotion '%s' has no vector at layer %d",
                                e, (int)l);
            for (int j = 0; j < k; j++)
                if (layers[j] == l)
                    return es_error(ES_ERR_INVALID_ARG, "steer: layer %d of '%s' is listed twice",
                                    (int)l, e);
            layers[k++] = l;
        }
        *n = k;
        return ES_OK;
    }
    bool expl = it->layer_first >= 0 || it->layer_last >= 0;
    int first = it->layer_first >= 0 ? it->layer_first : 0;
    int last = it->layer_last >= 0 ? it->layer_last : n_layer - 1;
    if (it->layer_first < -1 || it->layer_last < -1 || first > last)
        return es_error(ES_ERR_INVALID_ARG, "steer: layer range %d..%d of '%s' is empty or bad",
                        it->layer_first, it->layer_last, e);
    for (int l = first; l <= last; l++) {
        if (es_ev_set_get(ev, e, l) == NULL) {
            if (expl)
                return es_error(ES_ERR_NOT_FOUND,
                                "steer: emotion '%s' has no vector at layer %d "
                                "(range %d..%d)",
                                e, l, first, last);
            continue;
        }
        if (k == cap) return es_error(ES_ERR_INTERNAL, "steer: layer selection overflow");
        layers[k++] = l;
    }
    if (k == 0)
        return es_error(ES_ERR_NOT_FOUND, "steer: emotion '%s' has no vector in layers %d..%d", e,
                        first, last);
    *n = k;
    return ES_OK;
}

es_status es_steer_set_add(es_steer_set *set, const es_steer_item *it) {
    if (set == NULL || it == NULL || it->vectors == NULL || it->emotion == NULL)
        return es_error(ES_ERR_INVALID_ARG, "steer: add: NULL set, item, vectors or emotion");
    const es_ev_set *ev = it->vectors;
    if (es_ev_set_find(ev, it->emotion) < 0)
        return es_error(ES_ERR_NOT_FOUND, "steer: no emotion '%.64s' in the vector set",
                        it->emotion);
    if (!isfinite(it->alpha))
        return es_error(ES_ERR_INVALID_ARG, "steer: alpha %g of '%s' is not finite",
                        (double)it->alpha, it->emotion);
    if ((int)it->hook < ES_HOOK_AUTO || (int)it->hook >= ES_HOOK_COUNT)
        return es_error(ES_ERR_INVALID_ARG, "steer: hook %d of '%s' is not a hook point",
                        (int)it->hook, it->emotion);
    if ((int)it->positions < 0 || it->positions >= ES_STEER_POS_COUNT)
        return es_error(ES_ERR_INVALID_ARG, "steer: positions %d of '%s' is not a policy",
                        (int)it->positions, it->emotion);
    int n_embd = es_ev_set_n_embd(ev);
    if (set->n_items > 0 && n_embd != set->n_embd)
        return es_error(ES_ERR_INVALID_ARG, "steer: '%s' has width %d but the set's items have %d",
                        it->emotion, n_embd, set->n_embd);
    int cap = it->layers ? (it->n_layers > 0 ? it->n_layers : 1) : ES_MAX(es_ev_set_n_layer(ev), 1);
    if (it->layers && it->n_layers > ES_EV_MAX_LAYER)
        return es_error(ES_ERR_INVALID_ARG, "steer: layer list of '%s' has %d entries", it->emotion,
                        it->n_layers);
    steer_item item;
    memset(&item, 0, sizeof item);
    item.layers = es_calloc((size_t)cap, sizeof *item.layers);
    if (item.layers == NULL) return ES_ERR_NOMEM;
    es_status st = select_layers(it, ev, item.layers, cap, &item.n_layers);
    if (st != ES_OK) {
        free(item.layers);
        return st;
    }
    size_t n_vals;
    if (!es_mul_size((size_t)item.n_layers, (size_t)n_embd, &n_vals) ||
        (item.vecs = es_calloc(n_vals, sizeof *item.vecs)) == NULL) {
        free(item.layers);
        return es_error(ES_ERR_NOMEM, "steer: out of memory copying %d layers of '%s'",
                        item.n_layers, it->emotion);
    }
    for (int i = 0; i < item.n_layers; i++)
        memcpy(item.vecs + (size_t)i * n_embd, es_ev_set_get(ev, it->emotion, item.layers[i]),
               (size_t)n_embd * sizeof(float));
    snprintf(item.emotion, sizeof item.emotion, "%s", it->emotion);
    item.hook = it->hook == ES_HOOK_AUTO ? es_ev_set_hook(ev) : it->hook;
    item.positions = it->positions;
    item.alpha = it->alpha;
    if (set->n_items == set->cap_items) {
        int ncap = set->cap_items ? set->cap_items * 2 : 4;
        steer_item *items = realloc(set->items, (size_t)ncap * sizeof *items);
        if (items == NULL) {
            free(item.layers);
            free(item.vecs);
            return es_error(ES_ERR_NOMEM, "steer: out of memory adding an item");
        }
        set->items = items;
        set->cap_items = ncap;
    }
    set->items[set->n_items++] = item;
    set->n_embd = n_embd;
    return ES_OK;
}

/* Adds the items of `set` at (hp, p) and layer `layer` into out[n_embd] (zeroed by
 * the caller). Returns the number of items that contributed. */
static int accumulate(const es_steer_set *set, es_hook_point hp, int layer, es_steer_positions p,
                      float *out) {
    int hits = 0;
    for (int k = 0; k < set->n_items; k++) {
        const steer_item *it = &set->items[k];
        if (it->hook != hp || it->positions != p) continue;
        for (int i = 0; i < it->n_layers; i++) {
            if (it->layers[i] != layer) continue;
            const float *v = it->vecs + (size_t)i * set->n_embd;
            for (int j = 0; j < set->n_embd; j++)
                out[j] += it->alpha * v[j];
            hits++;
        }
    }
    return hits;
}

es_status es_steer_set_combined(const es_steer_set *set, es_hook_point hp, int layer,
                                es_steer_positions p, float *out, int n_embd) {
    if (set == NULL || out == NULL) return es_error(ES_ERR_INVALID_ARG, "steer: combined: NULL");
    if ((int)hp < 0 || hp >= ES_HOOK_COUNT || (int)p < 0 || p >= ES_STEER_POS_COUNT)
        return es_error(ES_ERR_INVALID_ARG, "steer: combined: bad hook %d or positions %d", (int)hp,
                        (int)p);
    if (set->n_items == 0 || n_embd != set->n_embd)
        return es_error(set->n_items ? ES_ERR_INVALID_ARG : ES_ERR_NOT_FOUND,
                        "steer: combined: width %d, set width %d (%d items)", n_embd, set->n_embd,
                        set->n_items);
    memset(out, 0, (size_t)n_embd * sizeof *out);
    if (accumulate(set, hp, layer, p, out) == 0)
        return es_error(ES_ERR_NOT_FOUND, "steer: no item adds at %s layer %d positions %s",
                        es_hook_name(hp), layer, es_steer_positions_name(p));
    return ES_OK;
}

/* ---- compiling a set for a context ---- */

static es_status compile(const es_steer_set *set, int n_layer, int n_embd,
                         es_steer_compiled **out) {
    if (set->n_items > 0 && set->n_embd != n_embd)
        return es_error(ES_ERR_INVALID_ARG,
                        "steer: vectors have width %d but the model's n_embd "
                        "is %d",
                        set->n_embd, n_embd);
    for (int k = 0; k < set->n_items; k++)
        for (int i = 0; i < set->items[k].n_layers; i++)
            if (set->items[k].layers[i] >= n_layer)
                return es_error(ES_ERR_INVALID_ARG,
                                "steer: '%s' steers layer %d but the model has "
                                "%d layers (0..%d)",
                                set->items[k].emotion, (int)set->items[k].layers[i], n_layer,
                                n_layer - 1);
    es_steer_compiled *c = es_calloc(1, sizeof *c);
    if (c == NULL) return ES_ERR_NOMEM;
    c->refs = 0;
    c->preserve_norm = set->preserve_norm;
    size_t table;
    if (!es_mul_size((size_t)n_layer, (size_t)n_embd, &table)) {
        free(c);
        return es_error(ES_ERR_NOMEM, "steer: table size overflows");
    }
    es_status st = ES_OK;
    for (int k = 0; st == ES_OK && k < set->n_items; k++) {
        const steer_item *it = &set->items[k];
        int h = it->hook, p = it->positions;
        if (c->mask[h] == NULL && (c->mask[h] = es_calloc((size_t)n_layer, 1)) == NULL)
            st = ES_ERR_NOMEM;
        if (st == ES_OK && c->vec[h][p] == NULL &&
            (c->vec[h][p] = es_calloc(table, sizeof(float))) == NULL)
            st = ES_ERR_NOMEM;
        for (int i = 0; st == ES_OK && i < it->n_layers; i++) {
            int l = it->layers[i];
            if (c->mask[h][l] & (1u << p)) continue; /* row already summed */
            float *row = c->vec[h][p] + (size_t)l * n_embd;
            accumulate(set, (es_hook_point)h, l, (es_steer_positions)p, row);
            c->mask[h][l] |= (uint8_t)(1u << p);
            for (int j = 0; j < n_embd; j++)
                if (!isfinite(row[j])) {
                    st = es_error(ES_ERR_FORMAT,
                                  "steer: the combined vector at %s layer %d "
                                  "(positions %s) has a non-finite value at %d (alpha too large?)",
                                  es_hook_name((es_hook_point)h), l,
                                  es_steer_positions_name((es_steer_positions)p), j);
                    break;
                }
        }
    }
    if (st != ES_OK) {
        es_steer_compiled_free(c);
        return st;
    }
    *out = c;
    return ES_OK;
}

/* ---- public setter on a context ---- */

es_status es_steer_state_attach_set(struct es_steer_state *st, int seq, const es_steer_set *set) {
    if (st == NULL) return es_error(ES_ERR_INVALID_ARG, "steer: attach: state is NULL");
    if (seq >= es_steer_state_n_seq(st))
        return es_error(ES_ERR_RANGE, "steer: sequence %d is outside [0, %d)", seq,
                        es_steer_state_n_seq(st));
    es_steer_compiled *c = NULL;
    if (set != NULL && set->n_items > 0) {
        es_status s = compile(set, es_steer_state_n_layer(st), es_steer_state_n_embd(st), &c);
        if (s != ES_OK) return s;
    }
    return es_steer_state_attach(st, seq, c);
}

es_status es_context_set_steering(es_context *ctx, int seq, const es_steer_set *set) {
    if (ctx == NULL) return es_error(ES_ERR_INVALID_ARG, "steer: context is NULL");
    if (seq >= ctx->params.n_seq_max)
        return es_error(ES_ERR_RANGE, "steer: sequence %d is outside [0, %d)", seq,
                        ctx->params.n_seq_max);
    if (set == NULL && ctx->steer == NULL) return ES_OK;
    struct es_steer_state *state = NULL;
    es_status st = es_context_steer_state(ctx, &state);
    if (st != ES_OK) return st;
    return es_steer_state_attach_set(state, seq, set);
}
