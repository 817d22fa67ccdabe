/*
 * steer.c — steering sets and their application in the forward pass.
 *
 * A steering set (es_steer_set) is a list of items, each holding copies of the
 * selected layers' vectors of one emotion, with alpha, hook and position policy.
 * Attaching a set to a context compiles it (steer_compiled): per (hook, policy) a
 * [n_layer][n_embd] table of combined vectors sum_k alpha_k * v_k plus a per-layer
 * bit mask of the policies present. es_steer_apply then adds, per token, the rows of
 * the policies that hold for that token: one pass over the batch per steered layer.
 */
#include "steer.h"

#include "common.h"
#include "context.h"

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
    it.hook = -1;
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

int es_steer_set_n_items(const es_steer_set *set) { return set ? set->n_items : 0; }

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
                return es_error(ES_ERR_INVALID_ARG, "steer: layer %d of '%s' is negative or too "
                                "large", (int)l, e);
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
                return es_error(ES_ERR_NOT_FOUND, "steer: emotion '%s' has no vector at layer %d "
                                "(range %d..%d)", e, l, first, last);
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
        return es_error(ES_ERR_NOT_FOUND, "steer: no emotion '%.64s' in the vector set", it->emotion);
    if (!isfinite(it->alpha))
        return es_error(ES_ERR_INVALID_ARG, "steer: alpha %g of '%s' is not finite",
                        (double)it->alpha, it->emotion);
    if (it->hook < -1 || it->hook >= ES_HOOK_COUNT)
        return es_error(ES_ERR_INVALID_ARG, "steer: hook %d of '%s' is not a hook point", it->hook,
                        it->emotion);
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
    item.hook = it->hook < 0 ? es_ev_set_hook(ev) : (es_hook_point)it->hook;
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
            for (int j = 0; j < set->n_embd; j++) out[j] += it->alpha * v[j];
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

/* ---- compiled sets and the per-context state ---- */

typedef struct steer_compiled {
    int refs;           /* sequences using it */
    bool preserve_norm;
    float *vec[ES_HOOK_COUNT][ES_STEER_POS_COUNT]; /* [n_layer][n_embd] combined, or NULL */
    uint8_t *mask[ES_HOOK_COUNT]; /* [n_layer] bit p: vec[hp][p] has a row at this layer */
} steer_compiled;

struct es_steer_state {
    int n_seq, n_layer, n_embd;
    steer_compiled **seq;      /* [n_seq] shared, NULL = not steered */
    int32_t *prompt_len;       /* [n_seq] set by the caller, -1 = automatic */
    int32_t *auto_prompt_len;  /* [n_seq] from the latest batch holding position 0;
                                  INT32_MAX = not seen (every position is prompt) */
    uint8_t *active[ES_HOOK_COUNT]; /* [n_layer] some sequence steers here */
    int32_t *last_idx;         /* [n_seq] scratch: last batch index of each sequence */
    int32_t *has_pos0;         /* [n_seq] scratch: the batch holds position 0 */
};

static void compiled_free(steer_compiled *c) {
    if (c == NULL) return;
    for (int h = 0; h < ES_HOOK_COUNT; h++) {
        for (int p = 0; p < ES_STEER_POS_COUNT; p++) free(c->vec[h][p]);
        free(c->mask[h]);
    }
    free(c);
}

static void compiled_release(steer_compiled *c) {
    if (c && --c->refs == 0) compiled_free(c);
}

static es_status compile(const es_steer_set *set, int n_layer, int n_embd, steer_compiled **out) {
    if (set->n_items > 0 && set->n_embd != n_embd)
        return es_error(ES_ERR_INVALID_ARG, "steer: vectors have width %d but the model's n_embd "
                        "is %d", set->n_embd, n_embd);
    for (int k = 0; k < set->n_items; k++)
        for (int i = 0; i < set->items[k].n_layers; i++)
            if (set->items[k].layers[i] >= n_layer)
                return es_error(ES_ERR_INVALID_ARG, "steer: '%s' steers layer %d but the model has "
                                "%d layers (0..%d)", set->items[k].emotion,
                                (int)set->items[k].layers[i], n_layer, n_layer - 1);
    steer_compiled *c = es_calloc(1, sizeof *c);
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
                    st = es_error(ES_ERR_FORMAT, "steer: the combined vector at %s layer %d "
                                  "(positions %s) has a non-finite value at %d (alpha too large?)",
                                  es_hook_name((es_hook_point)h), l,
                                  es_steer_positions_name((es_steer_positions)p), j);
                    break;
                }
        }
    }
    if (st != ES_OK) {
        compiled_free(c);
        return st;
    }
    *out = c;
    return ES_OK;
}

es_status es_steer_state_create(int n_seq, int n_layer, int n_embd, struct es_steer_state **out) {
    if (out == NULL || n_seq <= 0 || n_layer <= 0 || n_embd <= 0)
        return es_error(ES_ERR_INVALID_ARG, "steer: state of %d sequences, %d layers, width %d",
                        n_seq, n_layer, n_embd);
    struct es_steer_state *st = es_calloc(1, sizeof *st);
    if (st == NULL) return ES_ERR_NOMEM;
    st->n_seq = n_seq;
    st->n_layer = n_layer;
    st->n_embd = n_embd;
    st->seq = es_calloc((size_t)n_seq, sizeof *st->seq);
    st->prompt_len = es_calloc((size_t)n_seq, sizeof *st->prompt_len);
    st->auto_prompt_len = es_calloc((size_t)n_seq, sizeof *st->auto_prompt_len);
    st->last_idx = es_calloc((size_t)n_seq, sizeof *st->last_idx);
    st->has_pos0 = es_calloc((size_t)n_seq, sizeof *st->has_pos0);
    bool ok = st->seq && st->prompt_len && st->auto_prompt_len && st->last_idx && st->has_pos0;
    for (int h = 0; h < ES_HOOK_COUNT; h++)
        ok = ok && (st->active[h] = es_calloc((size_t)n_layer, 1)) != NULL;
    if (!ok) {
        es_steer_state_free(st);
        return es_error(ES_ERR_NOMEM, "steer: out of memory creating the state");
    }
    for (int s = 0; s < n_seq; s++) {
        st->prompt_len[s] = -1;
        st->auto_prompt_len[s] = INT32_MAX;
    }
    *out = st;
    return ES_OK;
}

void es_steer_state_free(struct es_steer_state *st) {
    if (st == NULL) return;
    if (st->seq)
        for (int s = 0; s < st->n_seq; s++) compiled_release(st->seq[s]);
    free(st->seq);
    free(st->prompt_len);
    free(st->auto_prompt_len);
    free(st->last_idx);
    free(st->has_pos0);
    for (int h = 0; h < ES_HOOK_COUNT; h++) free(st->active[h]);
    free(st);
}

/* Recomputes the per-layer "some sequence steers here" flags. */
static void refresh_active(struct es_steer_state *st) {
    for (int h = 0; h < ES_HOOK_COUNT; h++) {
        memset(st->active[h], 0, (size_t)st->n_layer);
        for (int s = 0; s < st->n_seq; s++) {
            const steer_compiled *c = st->seq[s];
            if (c == NULL || c->mask[h] == NULL) continue;
            for (int l = 0; l < st->n_layer; l++) st->active[h][l] |= c->mask[h][l];
        }
    }
}

es_status es_steer_state_attach(struct es_steer_state *st, int seq, const es_steer_set *set) {
    if (st == NULL) return es_error(ES_ERR_INVALID_ARG, "steer: attach: state is NULL");
    if (seq >= st->n_seq)
        return es_error(ES_ERR_RANGE, "steer: sequence %d is outside [0, %d)", seq, st->n_seq);
    steer_compiled *c = NULL;
    if (set != NULL && set->n_items > 0) {
        es_status s = compile(set, st->n_layer, st->n_embd, &c);
        if (s != ES_OK) return s;
    }
    int s0 = seq < 0 ? 0 : seq, s1 = seq < 0 ? st->n_seq : seq + 1;
    for (int s = s0; s < s1; s++) {
        compiled_release(st->seq[s]);
        st->seq[s] = c;
        if (c) c->refs++;
    }
    refresh_active(st);
    return ES_OK;
}

es_status es_steer_state_set_prompt_len(struct es_steer_state *st, int seq, int n_prompt) {
    if (st == NULL) return es_error(ES_ERR_INVALID_ARG, "steer: prompt_len: state is NULL");
    if (seq >= st->n_seq)
        return es_error(ES_ERR_RANGE, "steer: sequence %d is outside [0, %d)", seq, st->n_seq);
    int s0 = seq < 0 ? 0 : seq, s1 = seq < 0 ? st->n_seq : seq + 1;
    for (int s = s0; s < s1; s++) st->prompt_len[s] = n_prompt < 0 ? -1 : n_prompt;
    return ES_OK;
}

bool es_steer_active(const struct es_steer_state *st, es_hook_point hp, int layer) {
    return st != NULL && (int)hp >= 0 && hp < ES_HOOK_COUNT && layer >= 0 && layer < st->n_layer &&
           st->active[hp][layer] != 0;
}

/* x[n] += v[n] */
static void vec_add(float *restrict x, const float *restrict v, int n) {
    for (int i = 0; i < n; i++) x[i] += v[i];
}

static double vec_norm(const float *x, int n) {
    double s = 0.0;
    for (int i = 0; i < n; i++) s += (double)x[i] * x[i];
    return sqrt(s);
}

void es_steer_apply(struct es_steer_state *st, es_hook_point hp, int layer, float *x, int n_tokens,
                    int n_embd, const es_batch *batch) {
    if (st == NULL || x == NULL || batch == NULL || n_tokens <= 0 || n_embd != st->n_embd) return;
    /* one pass over the batch: last token of each sequence, and whether the batch
     * (re)starts a sequence at position 0, which fixes its automatic prompt length */
    for (int s = 0; s < st->n_seq; s++) {
        st->last_idx[s] = -1;
        st->has_pos0[s] = 0;
    }
    for (int t = 0; t < n_tokens; t++) {
        int s = batch->seq ? batch->seq[t] : 0;
        if (s < 0 || s >= st->n_seq) continue;
        st->last_idx[s] = t;
        if (batch->pos && batch->pos[t] == 0) st->has_pos0[s] = 1;
    }
    for (int s = 0; s < st->n_seq; s++)
        if (st->has_pos0[s] && batch->pos)
            st->auto_prompt_len[s] = batch->pos[st->last_idx[s]] + 1;

    if (!es_steer_active(st, hp, layer)) return;
    for (int t = 0; t < n_tokens; t++) {
        int s = batch->seq ? batch->seq[t] : 0;
        if (s < 0 || s >= st->n_seq) continue;
        const steer_compiled *c = st->seq[s];
        if (c == NULL || c->mask[hp] == NULL) continue;
        unsigned m = c->mask[hp][layer];
        if (m == 0) continue;
        int32_t pos = batch->pos ? batch->pos[t] : 0;
        int32_t n_prompt = st->prompt_len[s] >= 0 ? st->prompt_len[s] : st->auto_prompt_len[s];
        unsigned want = 1u << ES_STEER_POS_ALL;
        want |= pos < n_prompt ? 1u << ES_STEER_POS_PROMPT : 1u << ES_STEER_POS_GENERATED;
        if (st->last_idx[s] == t) want |= 1u << ES_STEER_POS_LAST;
        m &= want;
        if (m == 0) continue;
        float *xt = x + (size_t)t * n_embd;
        double before = c->preserve_norm ? vec_norm(xt, n_embd) : 0.0;
        for (int p = 0; p < ES_STEER_POS_COUNT; p++)
            if (m & (1u << p)) vec_add(xt, c->vec[hp][p] + (size_t)layer * n_embd, n_embd);
        if (c->preserve_norm) {
            double after = vec_norm(xt, n_embd);
            if (after > 0.0) {
                float scale = (float)(before / after);
                for (int i = 0; i < n_embd; i++) xt[i] *= scale;
            }
        }
    }
}

/* ---- public setters on a context ---- */

static es_status ensure_state(es_context *ctx) {
    if (ctx->steer != NULL) return ES_OK;
    return es_steer_state_create(ctx->params.n_seq_max, ctx->model->cfg.n_layer,
                                 ctx->model->cfg.n_embd, &ctx->steer);
}

es_status es_context_set_steering(es_context *ctx, int seq, const es_steer_set *set) {
    if (ctx == NULL) return es_error(ES_ERR_INVALID_ARG, "steer: context is NULL");
    if (seq >= ctx->params.n_seq_max)
        return es_error(ES_ERR_RANGE, "steer: sequence %d is outside [0, %d)", seq,
                        ctx->params.n_seq_max);
    if (set == NULL && ctx->steer == NULL) return ES_OK;
    es_status st = ensure_state(ctx);
    if (st != ES_OK) return st;
    return es_steer_state_attach(ctx->steer, seq, set);
}

es_status es_context_set_prompt_len(es_context *ctx, int seq, int n_prompt) {
    if (ctx == NULL) return es_error(ES_ERR_INVALID_ARG, "steer: context is NULL");
    if (seq >= ctx->params.n_seq_max)
        return es_error(ES_ERR_RANGE, "steer: sequence %d is outside [0, %d)", seq,
                        ctx->params.n_seq_max);
    es_status st = ensure_state(ctx);
    if (st != ES_OK) return st;
    return es_steer_state_set_prompt_len(ctx->steer, seq, n_prompt);
}
