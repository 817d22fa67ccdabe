/*
 * fuzz_serve_request.c — fuzzes the server's request parser (server/request.c): the
 * input as the body of /v1/chat/completions and of /v1/completions, against a catalog
 * of one small vector set; a parsed request's steering is then built into a steering
 * set as the server does.
 *
 * Invariants checked (abort on violation): a refusal has status 400 (or 500 for memory),
 * a message and a JSON rendering that parses back; an accepted request has its messages
 * or prompt, roles among system/user/assistant, max_tokens -1 or in range, at most 16
 * stops, sampling values in their ranges, and steering with finite alphas within the
 * limit naming emotions of the set, which builds unless a named layer lacks a vector.
 *
 * Seeds: request bodies in both steering shapes, written into a temporary folder;
 * built in: a chat request.
 */
#include "fuzz_seeds.h"
#include "serve.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static srv_catalog g_cat;
static srv_vset g_set;

static void make_catalog(void) {
    if (g_cat.n_sets) return;
    if (es_ev_set_create(4, ES_HOOK_BLOCK_OUT, &g_set.ev) != ES_OK) abort();
    float v[4] = {0.5f, -1.0f, 2.0f, 0.25f};
    for (int l = 0; l < 4; l++) {
        es_ev_set_put(g_set.ev, "joy", l, v);
        if (l != 3) es_ev_set_put(g_set.ev, "anger", l, v);
    }
    int32_t def[2] = {1, 2};
    es_ev_set_set_default_layers(g_set.ev, def, 2);
    snprintf(g_set.name, sizeof g_set.name, "demo");
    g_cat.sets = &g_set;
    g_cat.n_sets = 1;
    g_cat.n_layer = 6;
}

static void check_error(const srv_error *e) {
    if ((e->status != 400 && e->status != 500) || !e->message[0] || !e->type) abort();
    char *s = srv_error_json(e);
    if (!s) abort();
    json_t *o = json_loads(s, 0, NULL);
    if (!o || !json_is_string(json_object_get(json_object_get(o, "error"), "message"))) abort();
    json_decref(o);
    free(s);
}

static void check_request(const srv_request *r) {
    if (r->chat ? (r->n_msgs < 1 || !r->msgs) : !r->prompt) abort();
    for (int i = 0; i < r->n_msgs; i++) {
        const char *role = r->msgs[i].role;
        if (!role || !r->msgs[i].content ||
            (strcmp(role, "system") && strcmp(role, "user") && strcmp(role, "assistant")))
            abort();
    }
    if (r->max_tokens != -1 && (r->max_tokens < 1 || r->max_tokens > SRV_MAX_TOKENS_LIMIT)) abort();
    if (r->n_stops < 0 || r->n_stops > SRV_MAX_STOPS) abort();
    if (r->has_temp && !(r->temp >= 0 && r->temp <= 2)) abort();
    if (r->has_top_p && !(r->top_p >= 0 && r->top_p <= 1)) abort();
    const srv_steer_req *s = &r->steer;
    if (s->active != (s->n_emotions > 0)) abort();
    for (int k = 0; k < s->n_emotions; k++) {
        if (!isfinite(s->alpha[k]) || fabsf(s->alpha[k]) > SRV_MAX_ALPHA || s->alpha[k] == 0)
            abort();
        if (!es_ev_set_emotion(g_set.ev, s->emotion[k])) abort();
    }
    for (int i = 0; i < s->n_layers; i++)
        if (s->layers[i] < 0 || s->layers[i] >= g_cat.n_layer ||
            (i && s->layers[i] <= s->layers[i - 1]))
            abort();
    es_steer_set *set = NULL;
    char *canon = NULL;
    srv_error e;
    if (srv_steer_build(s, &g_cat, &set, &canon, &e)) {
        if (!canon || (s->active && !set) || (!s->active && set)) abort();
        if (s->active) {
            json_t *c = json_loads(canon, 0, NULL);
            if (!c) abort();
            json_decref(c);
        }
    } else {
        check_error(&e);
    }
    es_steer_set_free(set);
    free(canon);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    make_catalog();
    for (int chat = 0; chat < 2; chat++) {
        srv_request r;
        srv_error e;
        if (srv_request_parse((const char *)data, size, chat, &g_cat, &r, &e)) {
            check_request(&r);
            srv_request_free(&r);
        } else {
            check_error(&e);
        }
    }
    return 0;
}

/* ---- seeds ---- */

static const char *const k_seeds[] = {
    "{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"Be kind.\"},{\"role\":"
    "\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Hi\"}]}],\"max_tokens\":16,"
    "\"temperature\":0.7,\"seed\":5,\"stop\":[\"\\n\"],\"stream\":true,\"stream_options\":{"
    "\"include_usage\":true},\"steering\":{\"emotions\":{\"joy\":1.5,\"anger\":-0.5},\"layers\":"
    "[1,2],\"positions\":\"generated\",\"hook\":\"block_out\",\"preserve_norm\":true}}",
    "{\"prompt\":\"Once upon a time\",\"max_completion_tokens\":8,\"top_p\":0.9,\"steering\":{"
    "\"vectors\":[{\"name\":\"demo:joy\",\"scale\":2,\"layers\":[0,1,2,3],\"algorithm\":"
    "\"direct\",\"apply\":{\"prompt\":\"all\",\"generation\":\"all\"}}]}}",
    "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"steering\":{\"emotions\":{\"joy\":"
    "1e308},\"layers\":\"1-3\",\"set\":\"demo\"},\"n\":2,\"frequency_penalty\":-2}",
};

static char g_seed_dir[64];

static void remove_seeds(void) {
    char p[128];
    for (size_t i = 0; i < sizeof k_seeds / sizeof k_seeds[0]; i++) {
        snprintf(p, sizeof p, "%s/seed%zu.json", g_seed_dir, i);
        unlink(p);
    }
    rmdir(g_seed_dir);
}

int es_fuzz_seed_paths(char paths[][4096], int max) {
    snprintf(g_seed_dir, sizeof g_seed_dir, "/tmp/es_fuzz_req_XXXXXX");
    if (mkdtemp(g_seed_dir) == NULL) return 0;
    atexit(remove_seeds);
    int n = 0;
    for (size_t i = 0; i < sizeof k_seeds / sizeof k_seeds[0] && n < max; i++) {
        snprintf(paths[n], 4096, "%s/seed%zu.json", g_seed_dir, i);
        FILE *f = fopen(paths[n], "w");
        if (!f) continue;
        fputs(k_seeds[i], f);
        fclose(f);
        n++;
    }
    return n;
}

const uint8_t *es_fuzz_builtin_seed(size_t *n) {
    static const char seed[] =
        "{\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"},{\"role\":\"assistant\","
        "\"content\":null},{\"role\":\"developer\",\"content\":\"be brief\"}],\"steering\":{"
        "\"emotions\":{\"fear\":1}}}";
    *n = sizeof seed - 1;
    return (const uint8_t *)seed;
}
