/*
 * request.c — a request body -> srv_request. Every field OpenAI's clients send is
 * checked for its type and range, and every refusal names the field (param) and what
 * was wrong, in OpenAI's error shape. Steering comes in our shape ({"emotions": {...}})
 * or EasySteer's ({"vectors": [{"name", "scale", "layers", ...}]}); see docs/serving.md.
 */
#include "serve.h"
#include "steer_opts.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void srv_error_set(srv_error *e, int status, const char *type, const char *code, const char *param,
                   const char *fmt, ...) {
    e->status = status;
    e->type = type;
    e->code = code;
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
}

char *srv_error_json(const srv_error *e) {
    json_t *o = json_pack("{s:{s:s,s:s,s:o,s:o}}", "error", "message", e->message, "type",
                          e->type ? e->type : "invalid_request_error", "param",
                          e->param[0] ? json_string(e->param) : json_null(), "code",
                          e->code ? json_string(e->code) : json_null());
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return s;
}

static bool bad(srv_error *e, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool bad(srv_error *e, const char *param, const char *fmt, ...) {
    char msg[sizeof e->message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    srv_error_set(e, 400, "invalid_request_error", "invalid_value", param, "%s", msg);
    return false;
}

static const char *type_name(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

static bool wrong_type(srv_error *e, const char *param, const char *want, const json_t *v) {
    srv_error_set(e, 400, "invalid_request_error", "invalid_type", param, "'%s' must be %s, got %s",
                  param, want, type_name(v));
    return false;
}

/* A number field in [lo, hi]; absent or null leaves *has false. */
static bool get_number(const json_t *o, const char *key, double lo, double hi, bool *has,
                       double *out, srv_error *e) {
    json_t *v = json_object_get(o, key);
    *has = false;
    if (!v || json_is_null(v)) return true;
    if (!json_is_number(v)) return wrong_type(e, key, "a number", v);
    double d = json_number_value(v);
    if (!isfinite(d) || d < lo || d > hi)
        return bad(e, key, "'%s' must be in [%g, %g], got %g", key, lo, hi, d);
    *has = true;
    *out = d;
    return true;
}

/* An integer field (an integral number) in [lo, hi]. */
static bool get_integer(const json_t *o, const char *key, double lo, double hi, bool *has,
                        double *out, srv_error *e) {
    json_t *v = json_object_get(o, key);
    *has = false;
    if (!v || json_is_null(v)) return true;
    if (!json_is_number(v)) return wrong_type(e, key, "an integer", v);
    double d = json_is_integer(v) ? (double)json_integer_value(v) : json_real_value(v);
    if (!isfinite(d) || d != floor(d)) return wrong_type(e, key, "an integer", v);
    if (d < lo || d > hi)
        return bad(e, key, "'%s' must be in [%.0f, %.0f], got %.0f", key, lo, hi, d);
    *has = true;
    *out = d;
    return true;
}

static bool get_bool(const json_t *o, const char *key, bool *out, srv_error *e) {
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return true;
    if (!json_is_boolean(v)) return wrong_type(e, key, "a boolean", v);
    *out = json_is_true(v);
    return true;
}

static char *dup_str(const json_t *v) {
    size_t n = json_string_length(v);
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, json_string_value(v), n);
        s[n] = '\0';
    }
    return s;
}

static bool oom(srv_error *e) {
    srv_error_set(e, 500, "server_error", NULL, NULL, "out of memory");
    return false;
}

/* A message's content: a string, or an array of {"type": "text", "text": ...} parts. */
static bool get_content(const json_t *c, const char *role, int i, char **out, srv_error *e) {
    char param[64];
    snprintf(param, sizeof param, "messages[%d].content", i);
    if (json_is_string(c)) {
        if (memchr(json_string_value(c), '\0', json_string_length(c)))
            return bad(e, param, "'%s' holds a NUL character", param);
        return (*out = dup_str(c)) ? true : oom(e);
    }
    if ((!c || json_is_null(c)) && !strcmp(role, "assistant"))
        return (*out = calloc(1, 1)) ? true : oom(e);
    if (!c) return bad(e, param, "'%s' is missing", param);
    if (!json_is_array(c)) return wrong_type(e, param, "a string or an array of text parts", c);
    size_t total = 0, k;
    json_t *part;
    json_array_foreach(c, k, part) {
        json_t *type = json_object_get(part, "type"), *text = json_object_get(part, "text");
        if (!json_is_object(part) || !json_is_string(type))
            return bad(e, param, "'%s[%zu]' must be an object with a \"type\"", param, k);
        if (strcmp(json_string_value(type), "text") != 0)
            return bad(e, param, "'%s[%zu]' is of type '%s': only text parts are supported", param,
                       k, json_string_value(type));
        if (!json_is_string(text))
            return bad(e, param, "'%s[%zu].text' must be a string", param, k);
        total += json_string_length(text);
    }
    char *s = malloc(total + 1), *p = s;
    if (!s) return oom(e);
    json_array_foreach(c, k, part) {
        json_t *text = json_object_get(part, "text");
        memcpy(p, json_string_value(text), json_string_length(text));
        p += json_string_length(text);
    }
    *p = '\0';
    if (strlen(s) != total) {
        free(s);
        return bad(e, param, "'%s' holds a NUL character", param);
    }
    *out = s;
    return true;
}

static bool parse_messages(const json_t *root, srv_request *r, srv_error *e) {
    json_t *m = json_object_get(root, "messages");
    if (!m || json_is_null(m)) return bad(e, "messages", "'messages' is required");
    if (!json_is_array(m)) return wrong_type(e, "messages", "an array of messages", m);
    size_t n = json_array_size(m);
    if (n == 0) return bad(e, "messages", "'messages' is empty: give at least one message");
    if (n > SRV_MAX_MESSAGES)
        return bad(e, "messages", "'messages' has %zu messages; at most %d", n, SRV_MAX_MESSAGES);
    r->msgs = calloc(n, sizeof *r->msgs);
    if (!r->msgs) return oom(e);
    for (size_t i = 0; i < n; i++) {
        json_t *msg = json_array_get(m, i), *role;
        char param[64];
        snprintf(param, sizeof param, "messages[%zu]", i);
        if (!json_is_object(msg)) return wrong_type(e, param, "an object", msg);
        snprintf(param, sizeof param, "messages[%zu].role", i);
        role = json_object_get(msg, "role");
        if (!json_is_string(role))
            return wrong_type(e, param, "a string", role ? role : json_null());
        const char *rs = json_string_value(role);
        const char *as = !strcmp(rs, "developer") ? "system" : rs;
        if (strcmp(as, "system") && strcmp(as, "user") && strcmp(as, "assistant"))
            return bad(
                e, param,
                "'%s' is '%.40s': roles are system, developer, user and assistant (no tools)",
                param, rs);
        if (!(r->msgs[i].role = strdup(as))) return oom(e);
        r->n_msgs = (int)i + 1;
        if (!get_content(json_object_get(msg, "content"), as, (int)i, &r->msgs[i].content, e))
            return false;
    }
    return true;
}

static bool parse_prompt(const json_t *root, srv_request *r, srv_error *e) {
    json_t *p = json_object_get(root, "prompt");
    if (!p || json_is_null(p)) return bad(e, "prompt", "'prompt' is required");
    if (json_is_array(p)) {
        if (json_array_size(p) != 1 || !json_is_string(json_array_get(p, 0)))
            return bad(e, "prompt", "'prompt' as an array must hold exactly one string");
        p = json_array_get(p, 0);
    }
    if (!json_is_string(p)) return wrong_type(e, "prompt", "a string", p);
    if (json_string_length(p) == 0) return bad(e, "prompt", "'prompt' is empty");
    if (memchr(json_string_value(p), '\0', json_string_length(p)))
        return bad(e, "prompt", "'prompt' holds a NUL character");
    return (r->prompt = dup_str(p)) ? true : oom(e);
}

static bool parse_stop(const json_t *root, srv_request *r, srv_error *e) {
    json_t *s = json_object_get(root, "stop");
    if (!s || json_is_null(s)) return true;
    if (json_is_string(s)) {
        if (json_string_length(s) == 0) return true;
        r->stops[r->n_stops++] = dup_str(s);
        return r->stops[0] ? true : oom(e);
    }
    if (!json_is_array(s)) return wrong_type(e, "stop", "a string or an array of strings", s);
    if (json_array_size(s) > SRV_MAX_STOPS)
        return bad(e, "stop", "'stop' has %zu strings; at most %d", json_array_size(s),
                   SRV_MAX_STOPS);
    size_t k;
    json_t *v;
    json_array_foreach(s, k, v) {
        if (!json_is_string(v)) return bad(e, "stop", "'stop[%zu]' must be a string", k);
        if (json_string_length(v) == 0) continue;
        if (!(r->stops[r->n_stops] = dup_str(v))) return oom(e);
        r->n_stops++;
    }
    return true;
}

/* ---- steering ---- */

static void list_emotions(const es_ev_set *ev, char *buf, size_t cap) {
    size_t n = 0;
    buf[0] = '\0';
    for (int k = 0; k < es_ev_set_n_emotions(ev) && n + 1 < cap; k++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%s", k ? ", " : "", es_ev_set_emotion(ev, k));
}

static int find_set(const srv_catalog *cat, const char *name) {
    for (int i = 0; i < cat->n_sets; i++)
        if (!strcmp(cat->sets[i].name, name)) return i;
    return -1;
}

static bool unknown_set(const srv_catalog *cat, const char *param, const char *name, srv_error *e) {
    char names[512];
    size_t n = 0;
    names[0] = '\0';
    for (int i = 0; i < cat->n_sets && n + 1 < sizeof names; i++)
        n +=
            (size_t)snprintf(names + n, sizeof names - n, "%s%s", i ? ", " : "", cat->sets[i].name);
    return bad(e, param, "'%s' names vector set '%.80s', which is not loaded (loaded: %s)", param,
               name, cat->n_sets ? names : "none");
}

/* Adds emotion `name` with alpha to s (an emotion given twice is refused). */
static bool add_emotion(srv_steer_req *s, const srv_catalog *cat, const char *param,
                        const char *name, double alpha, srv_error *e) {
    const es_ev_set *ev = cat->sets[s->set].ev;
    int idx = es_ev_set_find(ev, name);
    if (idx < 0) {
        char names[512];
        list_emotions(ev, names, sizeof names);
        srv_error_set(e, 400, "invalid_request_error", "unknown_emotion", param,
                      "unknown emotion '%.60s' in '%s': vector set '%s' has %s", name, param,
                      cat->sets[s->set].name, names);
        return false;
    }
    if (!isfinite(alpha) || fabs(alpha) > SRV_MAX_ALPHA)
        return bad(e, param, "alpha of '%s' is %g: it must be a finite number in [-%g, %g]", name,
                   alpha, SRV_MAX_ALPHA, SRV_MAX_ALPHA);
    for (int k = 0; k < s->n_emotions; k++)
        if (s->emotion[k] == idx) return bad(e, param, "emotion '%s' is given twice", name);
    if (s->n_emotions >= SRV_MAX_EMOTIONS)
        return bad(e, param, "more than %d emotions", SRV_MAX_EMOTIONS);
    if (alpha == 0) return true;
    s->emotion[s->n_emotions] = idx;
    s->alpha[s->n_emotions] = (float)alpha;
    s->n_emotions++;
    return true;
}

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* layers: [L, ...] or "A-B" or "L,L,..." -> a sorted list without repeats below n_layer. */
static bool parse_layers(const json_t *v, const char *param, const srv_catalog *cat,
                         srv_steer_req *s, srv_error *e) {
    int32_t *list = NULL;
    int n = 0;
    if (json_is_string(v)) { /* "A-B" or "L,L,...", as --layers */
        const char *spec = json_string_value(v);
        es_steer_item it = es_steer_item_default();
        if (!cli_steer_parse_layers(spec, &it, &list))
            return bad(e, param, "'%s' must be a list of layers or \"A-B\", got \"%.40s\"", param,
                       spec);
        if (list) {
            n = it.n_layers;
        } else {
            if (!(list = malloc(sizeof *list * (size_t)(it.layer_last - it.layer_first + 1))))
                return oom(e);
            for (int l = it.layer_first; l <= it.layer_last; l++)
                list[n++] = l;
        }
    } else if (json_is_array(v)) {
        size_t k;
        json_t *x;
        if (json_array_size(v) > ES_EV_MAX_LAYER)
            return bad(e, param, "'%s' has more than %d layers", param, ES_EV_MAX_LAYER);
        list = malloc(sizeof *list * (json_array_size(v) + 1));
        if (!list) return oom(e);
        json_array_foreach(v, k, x) {
            if (!json_is_integer(x)) {
                free(list);
                return bad(e, param, "'%s[%zu]' must be an integer layer", param, k);
            }
            json_int_t l = json_integer_value(x);
            if (l < 0 || l >= ES_EV_MAX_LAYER) {
                free(list);
                return bad(e, param, "'%s[%zu]' is %lld: layers are 0..%d", param, k, (long long)l,
                           cat->n_layer - 1);
            }
            list[n++] = (int32_t)l;
        }
    } else {
        return wrong_type(e, param, "a list of layers or \"A-B\"", v);
    }
    if (n == 0) {
        free(list);
        return bad(e, param, "'%s' is empty", param);
    }
    qsort(list, (size_t)n, sizeof *list, cmp_i32);
    int m = 0;
    for (int k = 0; k < n; k++)
        if (m == 0 || list[m - 1] != list[k]) list[m++] = list[k];
    if (list[m - 1] >= cat->n_layer) {
        int l = list[m - 1];
        free(list);
        return bad(e, param, "'%s' asks for layer %d; the model has layers 0..%d", param, l,
                   cat->n_layer - 1);
    }
    if (s->layers) {
        bool same = s->n_layers == m && !memcmp(s->layers, list, sizeof *list * (size_t)m);
        free(list);
        if (!same) return bad(e, param, "every vector must steer the same layers");
        return true;
    }
    s->layers = list;
    s->n_layers = m;
    return true;
}

static bool get_set_name(const json_t *o, const char *param, const srv_catalog *cat, int *set,
                         srv_error *e) {
    json_t *v = json_object_get(o, "set");
    if (!v || json_is_null(v)) return true;
    if (!json_is_string(v)) return wrong_type(e, param, "a string", v);
    int i = find_set(cat, json_string_value(v));
    if (i < 0) return unknown_set(cat, param, json_string_value(v), e);
    *set = i;
    return true;
}

/* Our shape: {"emotions": {E: alpha}, "set", "layers", "hook", "positions", "preserve_norm"}. */
static bool parse_steer_ours(const json_t *o, const srv_catalog *cat, srv_steer_req *s,
                             srv_error *e) {
    if (!get_set_name(o, "steering.set", cat, &s->set, e)) return false;
    json_t *em = json_object_get(o, "emotions");
    if (em && !json_is_null(em)) {
        if (!json_is_object(em))
            return wrong_type(e, "steering.emotions", "an object of emotion: alpha", em);
        const char *name;
        json_t *a;
        json_object_foreach(em, name, a) {
            char param[128];
            snprintf(param, sizeof param, "steering.emotions.%.60s", name);
            if (!json_is_number(a)) return wrong_type(e, param, "a number", a);
            if (!add_emotion(s, cat, param, name, json_number_value(a), e)) return false;
        }
    }
    json_t *v;
    if ((v = json_object_get(o, "layers")) && !json_is_null(v) &&
        !parse_layers(v, "steering.layers", cat, s, e))
        return false;
    if ((v = json_object_get(o, "hook")) && !json_is_null(v)) {
        es_hook_point hp;
        if (!json_is_string(v)) return wrong_type(e, "steering.hook", "a string", v);
        if (es_hook_parse(json_string_value(v), &hp) != ES_OK)
            return bad(e, "steering.hook",
                       "'steering.hook' is '%.40s': hooks are attn_out, mlp_out, block_out",
                       json_string_value(v));
        s->hook = hp;
    }
    if ((v = json_object_get(o, "positions")) && !json_is_null(v)) {
        es_steer_positions p;
        if (!json_is_string(v)) return wrong_type(e, "steering.positions", "a string", v);
        if (es_steer_positions_parse(json_string_value(v), &p) != ES_OK)
            return bad(
                e, "steering.positions",
                "'steering.positions' is '%.40s': positions are all, prompt, generated, last",
                json_string_value(v));
        s->positions = p;
    }
    return get_bool(o, "preserve_norm", &s->preserve_norm, e);
}

/* EasySteer's shape: {"vectors": [{"name", "scale", "layers", "algorithm", "apply",
 * "normalize"}]}. */
static bool parse_steer_easysteer(const json_t *o, const srv_catalog *cat, srv_steer_req *s,
                                  srv_error *e) {
    json_t *vecs = json_object_get(o, "vectors");
    if (!json_is_array(vecs)) return wrong_type(e, "steering.vectors", "an array", vecs);
    size_t k;
    json_t *v;
    int positions = -1;
    json_array_foreach(vecs, k, v) {
        char param[96];
        snprintf(param, sizeof param, "steering.vectors[%zu]", k);
        if (!json_is_object(v)) return wrong_type(e, param, "an object", v);
        if (json_object_get(v, "source") || json_object_get(v, "data"))
            return bad(e, param,
                       "'%s' gives a 'source' or 'data': this server steers only with the vectors "
                       "it loaded at start; name one with \"name\": \"EMOTION\" (GET /v1/steering "
                       "lists them)",
                       param);
        json_t *name = json_object_get(v, "name");
        snprintf(param, sizeof param, "steering.vectors[%zu].name", k);
        if (!json_is_string(name))
            return wrong_type(e, param, "a string", name ? name : json_null());
        const char *nm = json_string_value(name), *colon = strchr(nm, ':');
        if (colon) { /* SET:EMOTION */
            char set[128];
            snprintf(set, sizeof set, "%.*s", (int)(colon - nm), nm);
            int i = find_set(cat, set);
            if (i < 0) return unknown_set(cat, param, set, e);
            if (k > 0 && i != s->set)
                return bad(e, param, "every vector must come from the same vector set");
            s->set = i;
            nm = colon + 1;
        }
        json_t *alg = json_object_get(v, "algorithm");
        if (alg && !json_is_null(alg) &&
            (!json_is_string(alg) || strcmp(json_string_value(alg), "direct") != 0)) {
            snprintf(param, sizeof param, "steering.vectors[%zu].algorithm", k);
            return bad(e, param, "'%s' must be \"direct\" (adding the vector)", param);
        }
        bool norm = false;
        if (!get_bool(v, "normalize", &norm, e)) return false;
        if (norm)
            return bad(e, "steering.vectors.normalize",
                       "'normalize': true is not supported; use \"preserve_norm\": true");
        double scale = 1.0;
        snprintf(param, sizeof param, "steering.vectors[%zu].scale", k);
        json_t *sc = json_object_get(v, "scale");
        if (sc && !json_is_null(sc) && !json_is_number(sc))
            return wrong_type(e, param, "a number", sc);
        if (sc && json_is_number(sc)) scale = json_number_value(sc);
        if (!add_emotion(s, cat, param, nm, scale, e)) return false;
        json_t *layers = json_object_get(v, "layers");
        snprintf(param, sizeof param, "steering.vectors[%zu].layers", k);
        if (layers && !json_is_null(layers) && !parse_layers(layers, param, cat, s, e))
            return false;
        json_t *apply = json_object_get(v, "apply");
        if (apply && !json_is_null(apply)) {
            snprintf(param, sizeof param, "steering.vectors[%zu].apply", k);
            if (!json_is_object(apply)) return wrong_type(e, param, "an object", apply);
            json_t *pr = json_object_get(apply, "prompt"),
                   *ge = json_object_get(apply, "generation");
            const char *ps = json_is_string(pr) ? json_string_value(pr) : pr ? "?" : "all";
            const char *gs = json_is_string(ge) ? json_string_value(ge) : ge ? "?" : "all";
            int p;
            if (!strcmp(ps, "all") && !strcmp(gs, "all"))
                p = ES_STEER_POS_ALL;
            else if (!strcmp(ps, "all") && !strcmp(gs, "none"))
                p = ES_STEER_POS_PROMPT;
            else if (!strcmp(ps, "none") && !strcmp(gs, "all"))
                p = ES_STEER_POS_GENERATED;
            else
                return bad(e, param,
                           "'%s' must say \"all\" or \"none\" for \"prompt\" and \"generation\"",
                           param);
            if (positions >= 0 && p != positions)
                return bad(e, param, "every vector must apply at the same positions");
            positions = p;
        }
    }
    if (positions >= 0) s->positions = positions;
    return true;
}

static bool parse_steering(const json_t *root, const srv_catalog *cat, srv_steer_req *s,
                           srv_error *e) {
    memset(s, 0, sizeof *s);
    s->hook = ES_HOOK_AUTO;
    s->positions = ES_STEER_POS_ALL;
    json_t *o = json_object_get(root, "steering");
    if (!o || json_is_null(o) || json_is_false(o)) return true;
    if (!json_is_object(o)) return wrong_type(e, "steering", "an object, false or null", o);
    if (json_object_size(o) == 0) return true;
    if (cat->n_sets == 0)
        return bad(e, "steering", "this server has no emotion vectors loaded (start it with --ev)");
    bool ours = json_object_get(o, "emotions") != NULL,
         easy = json_object_get(o, "vectors") != NULL;
    if (ours && easy)
        return bad(e, "steering", "give either \"emotions\" or EasySteer's \"vectors\", not both");
    if (!(easy ? parse_steer_easysteer(o, cat, s, e) : parse_steer_ours(o, cat, s, e)))
        return false;
    s->active = s->n_emotions > 0;
    return true;
}

static bool refuse_unsupported(const json_t *root, srv_error *e) {
    static const char *const keys[] = {"tools", "tool_choice", "functions", "function_call"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        json_t *v = json_object_get(root, keys[i]);
        if (v && !json_is_null(v) && !(json_is_array(v) && json_array_size(v) == 0))
            return bad(e, keys[i], "'%s' is not supported by this server", keys[i]);
    }
    json_t *lp = json_object_get(root, "logprobs");
    if (lp && json_is_true(lp)) return bad(e, "logprobs", "'logprobs' is not supported");
    if (lp && json_is_integer(lp) && json_integer_value(lp) > 0)
        return bad(e, "logprobs", "'logprobs' is not supported");
    json_t *rf = json_object_get(root, "response_format");
    if (rf && json_is_object(rf)) {
        json_t *t = json_object_get(rf, "type");
        if (!json_is_string(t) || strcmp(json_string_value(t), "text") != 0)
            return bad(e, "response_format", "'response_format' other than text is not supported");
    }
    double n;
    bool has;
    if (!get_integer(root, "n", 1, 1, &has, &n, e)) {
        snprintf(e->message, sizeof e->message, "'n' must be 1: one choice per request");
        return false;
    }
    if (json_object_get(root, "echo") && json_is_true(json_object_get(root, "echo")))
        return bad(e, "echo", "'echo' is not supported");
    return true;
}

bool srv_request_parse(const char *body, size_t len, bool chat, const srv_catalog *cat,
                       srv_request *r, srv_error *e) {
    memset(r, 0, sizeof *r);
    memset(e, 0, sizeof *e);
    r->chat = chat;
    r->max_tokens = -1;
    r->steer.hook = ES_HOOK_AUTO;
    json_error_t je;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        bool utf8 = json_error_code(&je) == json_error_invalid_utf8;
        srv_error_set(e, 400, "invalid_request_error", "invalid_json", NULL,
                      "malformed JSON at line %d, column %d (byte %d): %s%s", je.line, je.column,
                      je.position, utf8 ? "invalid UTF-8: " : "", je.text);
        return false;
    }
    bool ok = false;
    if (!json_is_object(root)) {
        wrong_type(e, "body", "a JSON object", root);
        goto done;
    }
    json_t *model = json_object_get(root, "model");
    if (model && !json_is_null(model) && !json_is_string(model)) {
        wrong_type(e, "model", "a string", model);
        goto done;
    }
    if (!refuse_unsupported(root, e)) goto done;
    if (chat ? !parse_messages(root, r, e) : !parse_prompt(root, r, e)) goto done;
    double d;
    bool has;
    if (!get_integer(root, "max_completion_tokens", -1e18, 1e18, &has, &d, e)) goto done;
    if (!has && !get_integer(root, "max_tokens", -1e18, 1e18, &has, &d, e)) goto done;
    if (has) {
        const char *key = json_object_get(root, "max_completion_tokens") &&
                                  !json_is_null(json_object_get(root, "max_completion_tokens"))
                              ? "max_completion_tokens"
                              : "max_tokens";
        if (d < 1 || d > SRV_MAX_TOKENS_LIMIT) {
            bad(e, key, "'%s' must be in [1, %d], got %.0f", key, SRV_MAX_TOKENS_LIMIT, d);
            goto done;
        }
        r->max_tokens = (long)d;
    }
    if (!get_number(root, "temperature", 0, 2, &r->has_temp, &r->temp, e) ||
        !get_number(root, "top_p", 0, 1, &r->has_top_p, &r->top_p, e) ||
        !get_number(root, "min_p", 0, 1, &r->has_min_p, &r->min_p, e) ||
        !get_number(root, "presence_penalty", -2, 2, &r->has_presence, &r->presence, e) ||
        !get_number(root, "frequency_penalty", -2, 2, &r->has_frequency, &r->frequency, e) ||
        !get_number(root, "repeat_penalty", 1e-3, 100, &r->has_repeat, &r->repeat, e))
        goto done;
    if (!get_integer(root, "top_k", 0, 1e9, &r->has_top_k, &d, e)) goto done;
    r->top_k = r->has_top_k ? (long)d : 0;
    json_t *seed = json_object_get(root, "seed");
    if (seed && !json_is_null(seed)) {
        if (!json_is_integer(seed)) {
            wrong_type(e, "seed", "an integer", seed);
            goto done;
        }
        r->has_seed = true;
        r->seed = (uint64_t)json_integer_value(seed);
    }
    if (!parse_stop(root, r, e)) goto done;
    if (!get_bool(root, "stream", &r->stream, e) ||
        !get_bool(root, "ignore_eos", &r->ignore_eos, e))
        goto done;
    json_t *so = json_object_get(root, "stream_options");
    if (so && !json_is_null(so)) {
        if (!json_is_object(so)) {
            wrong_type(e, "stream_options", "an object", so);
            goto done;
        }
        if (!get_bool(so, "include_usage", &r->include_usage, e)) goto done;
    }
    if (!parse_steering(root, cat, &r->steer, e)) goto done;
    ok = true;
done:
    json_decref(root);
    if (!ok) srv_request_free(r);
    return ok;
}

void srv_request_free(srv_request *r) {
    if (!r) return;
    for (int i = 0; i < r->n_msgs; i++) {
        free(r->msgs[i].role);
        free(r->msgs[i].content);
    }
    free(r->msgs);
    free(r->prompt);
    for (int i = 0; i < r->n_stops; i++)
        free(r->stops[i]);
    free(r->steer.layers);
    memset(r, 0, sizeof *r);
}

/* The shortest decimal that reads back as the float f, as a double: alpha 0.8 is echoed and
 * keyed as 0.8, not as 0.800000011920929 (the float's exact value); distinct floats stay
 * distinct. */
static double shortest_double(float f) {
    char buf[32];
    for (int p = 6; p < 9; p++) {
        snprintf(buf, sizeof buf, "%.*g", p, (double)f);
        if (strtof(buf, NULL) == f) return strtod(buf, NULL);
    }
    snprintf(buf, sizeof buf, "%.9g", (double)f);
    return strtod(buf, NULL);
}

bool srv_steer_build(const srv_steer_req *s, const srv_catalog *cat, es_steer_set **out,
                     char **canon, srv_error *e) {
    *out = NULL;
    *canon = NULL;
    if (!s->active) {
        *canon = strdup("");
        return *canon ? true : oom(e);
    }
    const srv_vset *vs = &cat->sets[s->set];
    es_steer_set *set = NULL;
    json_t *emo = json_object(), *layers = json_array();
    json_t *c = json_pack(
        "{s:s,s:o,s:o,s:s,s:s,s:b}", "set", vs->name, "emotions", emo, "layers", layers, "hook",
        es_hook_name(s->hook == ES_HOOK_AUTO ? es_ev_set_hook(vs->ev) : (es_hook_point)s->hook),
        "positions", es_steer_positions_name((es_steer_positions)s->positions), "preserve_norm",
        s->preserve_norm);
    if (!c || es_steer_set_create(&set) != ES_OK) {
        json_decref(c);
        return oom(e);
    }
    es_steer_set_preserve_norm(set, s->preserve_norm);
    bool ok = true;
    for (int k = 0; ok && k < s->n_emotions; k++) {
        const char *name = es_ev_set_emotion(vs->ev, s->emotion[k]);
        es_steer_item it = es_steer_item_default();
        it.vectors = vs->ev;
        it.emotion = name;
        it.alpha = s->alpha[k];
        it.hook = (es_hook_point)s->hook;
        it.positions = (es_steer_positions)s->positions;
        int32_t *list = NULL;
        int missing = -1;
        if (s->layers) {
            for (int i = 0; i < s->n_layers; i++)
                if (!es_ev_set_get(vs->ev, name, s->layers[i])) {
                    bad(e, "steering.layers", "vector set '%s' has no '%s' vector at layer %d",
                        vs->name, name, s->layers[i]);
                    ok = false;
                    break;
                }
            it.layers = s->layers;
            it.n_layers = s->n_layers;
        } else {
            cli_steer_select_layers(vs->ev, NULL, &it, &list, &missing);
        }
        if (ok && es_steer_set_add(set, &it) != ES_OK) {
            srv_error_set(e, 400, "invalid_request_error", "invalid_value", "steering", "%s",
                          es_last_error());
            ok = false;
        }
        if (ok && k == 0) { /* the layers steered (the same for every emotion) */
            if (it.layers)
                for (int i = 0; i < it.n_layers; i++)
                    json_array_append_new(layers, json_integer(it.layers[i]));
            else
                for (int l = 0; l < es_ev_set_n_layer(vs->ev); l++)
                    if (es_ev_set_get(vs->ev, name, l))
                        json_array_append_new(layers, json_integer(l));
        }
        free(list);
        json_object_set_new(emo, name, json_real(shortest_double(s->alpha[k])));
    }
    if (ok) {
        *canon = json_dumps(c, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(9));
        if (!*canon) ok = oom(e);
    }
    json_decref(c);
    if (!ok) {
        es_steer_set_free(set);
        return false;
    }
    *out = set;
    return true;
}
