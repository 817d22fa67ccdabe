/*
 * http.c — the HTTP side of `emosteer serve`, on libmicrohttpd with one thread per
 * connection: routing, the API key, request bodies (with a size limit), and the
 * answers: JSON, or Server-Sent Events for "stream": true. A connection's thread waits
 * for its job's output; while it waits it watches the socket, so a client that goes
 * away cancels its job and frees the slot.
 */
#include "gen_util.h"
#include "serve.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct srv_http {
    struct MHD_Daemon *d;
    srv_app *app;
    atomic_int in_flight;
};

/* Per request: its body so far. */
typedef struct req_ctx {
    char *body;
    size_t len, cap;
    bool answered; /* a response was queued early (413, 401) */
} req_ctx;

static atomic_ullong g_ids;

static void make_id(char *buf, size_t cap, const char *prefix) {
    unsigned long long n = atomic_fetch_add(&g_ids, 1) + 1;
    unsigned long long t = (unsigned long long)time(NULL);
    snprintf(buf, cap, "%s-%llx%06llx", prefix, t, n & 0xffffff);
}

/* ---- responses ---- */

static enum MHD_Result send_text(struct MHD_Connection *c, int status, const char *type,
                                 const char *text, size_t len, int retry_after) {
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)text, MHD_RESPMEM_MUST_COPY);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, "Access-Control-Allow-Origin", "*");
    if (retry_after > 0) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", retry_after);
        MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, ra);
    }
    if (status == 401) MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result send_json(struct MHD_Connection *c, int status, json_t *o) {
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(9)) : NULL;
    json_decref(o);
    if (!s) return send_text(c, 500, "text/plain", "out of memory\n", 14, 0);
    enum MHD_Result r = send_text(c, status, "application/json", s, strlen(s), 0);
    free(s);
    return r;
}

static enum MHD_Result send_error(struct MHD_Connection *c, const srv_error *e, int retry_after) {
    char *s = srv_error_json(e);
    if (!s) return send_text(c, 500, "text/plain", "out of memory\n", 14, 0);
    enum MHD_Result r = send_text(c, e->status, "application/json", s, strlen(s), retry_after);
    free(s);
    return r;
}

static enum MHD_Result error_reply(struct MHD_Connection *c, int status, const char *type,
                                   const char *code, const char *param, const char *msg) {
    srv_error e;
    srv_error_set(&e, status, type, code, param, "%s", msg);
    return send_error(c, &e, 0);
}

/* ---- GET endpoints ---- */

static enum MHD_Result get_health(srv_http *h, struct MHD_Connection *c) {
    int slots, busy, queued;
    srv_engine_stats(h->app->engine, &slots, &busy, &queued);
    return send_json(c, 200,
                     json_pack("{s:s,s:i,s:i,s:i}", "status", "ok", "slots", slots, "slots_busy",
                               busy, "queued", queued));
}

static enum MHD_Result get_models(srv_http *h, struct MHD_Connection *c) {
    return send_json(c, 200,
                     json_pack("{s:s,s:[{s:s,s:s,s:I,s:s}]}", "object", "list", "data", "id",
                               h->app->model_id, "object", "model", "created",
                               (json_int_t)time(NULL), "owned_by", "emosteer"));
}

static enum MHD_Result get_steering(srv_http *h, struct MHD_Connection *c) {
    const srv_catalog *cat = &h->app->cat;
    json_t *sets = json_array();
    for (int i = 0; i < cat->n_sets; i++) {
        const es_ev_set *ev = cat->sets[i].ev;
        json_t *emo = json_array(), *layers = json_array(), *rec = json_array();
        for (int k = 0; k < es_ev_set_n_emotions(ev); k++)
            json_array_append_new(emo, json_string(es_ev_set_emotion(ev, k)));
        for (int l = 0; l < es_ev_set_n_layer(ev); l++)
            for (int k = 0; k < es_ev_set_n_emotions(ev); k++)
                if (es_ev_set_get(ev, es_ev_set_emotion(ev, k), l)) {
                    json_array_append_new(layers, json_integer(l));
                    break;
                }
        const int32_t *def = NULL;
        int n_def = es_ev_set_default_layers(ev, &def);
        for (int k = 0; k < n_def; k++)
            json_array_append_new(rec, json_integer(def[k]));
        json_array_append_new(
            sets, json_pack("{s:s,s:o,s:s,s:o,s:o,s:i}", "name", cat->sets[i].name, "emotions", emo,
                            "hook", es_hook_name(es_ev_set_hook(ev)), "layers", layers,
                            "recommended_layers", rec, "n_embd", es_ev_set_n_embd(ev)));
    }
    json_t *pos = json_array();
    for (int p = 0; p < ES_STEER_POS_COUNT; p++)
        json_array_append_new(pos, json_string(es_steer_positions_name((es_steer_positions)p)));
    return send_json(c, 200,
                     json_pack("{s:s,s:o,s:f,s:o,s:o}", "object", "steering", "default_set",
                               cat->n_sets ? json_string(cat->sets[0].name) : json_null(),
                               "max_alpha", SRV_MAX_ALPHA, "positions", pos, "sets", sets));
}

/* ---- completions ---- */

/* Whether the client at the other end of c has gone away. */
static bool client_gone(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci) return false;
    struct pollfd p = {.fd = ci->connect_fd, .events = POLLIN | POLLRDHUP};
    if (poll(&p, 1, 0) <= 0) return false;
    if (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) return true;
    if (p.revents & POLLIN) {
        char ch;
        ssize_t n = recv(ci->connect_fd, &ch, 1, MSG_PEEK | MSG_DONTWAIT);
        return n == 0;
    }
    return false;
}

/* What one completion request needs once its body is parsed. */
typedef struct completion {
    srv_http *h;
    struct MHD_Connection *conn;
    srv_job *job;
    bool chat, include_usage;
    char id[48];
    long long created;
    char *steer_canon; /* "" when unsteered */
    /* streaming */
    int phase; /* 0 role chunk, 1 content, 2 final chunk(s), 3 [DONE], 4 end */
    char *pend;
    size_t pend_len, pend_off, pend_cap;
    int quiet_ms; /* since the last event sent: a keep-alive comment goes out at ping_ms */
    char text[4096];
} completion;

/* How long a stream may stay silent (a queued request, a long prompt being read) before a
 * keep-alive comment ": ping" goes out. Well under --timeout, which libmicrohttpd counts from
 * the last byte sent, so a waiting stream is never cut; a client that stops reading still is. */
static int ping_ms(const srv_app *app) {
    int ms = app->timeout_s > 0 ? app->timeout_s * 1000 / 3 : 15000;
    return ms < 200 ? 200 : ms > 15000 ? 15000 : ms;
}

static void completion_free(completion *cp) {
    if (!cp) return;
    srv_job_release(cp->job);
    free(cp->steer_canon);
    free(cp->pend);
    free(cp);
}

static const char *finish_reason(const srv_job_result *r) {
    switch (r->stop) {
    case ES_GEN_STOP_LENGTH:
    case ES_GEN_STOP_CONTEXT: return "length";
    default: return "stop";
    }
}

static json_t *usage_json(const srv_job_result *r) {
    return json_pack("{s:i,s:i,s:i,s:{s:i}}", "prompt_tokens", r->n_prompt, "completion_tokens",
                     r->n_gen, "total_tokens", r->n_prompt + r->n_gen, "prompt_tokens_details",
                     "cached_tokens", r->n_cached);
}

static json_t *steering_json(const completion *cp) {
    if (!cp->steer_canon || !cp->steer_canon[0]) return json_null();
    json_t *o = json_loads(cp->steer_canon, 0, NULL);
    return o ? o : json_null();
}

/* A chunk object with one choice (delta or text) and a finish reason (or null). */
static json_t *chunk_json(const completion *cp, const char *text, size_t len, bool role,
                          const char *finish) {
    json_t *choice;
    if (cp->chat) {
        json_t *delta = json_object();
        if (role) json_object_set_new(delta, "role", json_string("assistant"));
        if (text) json_object_set_new(delta, "content", json_stringn(text, len));
        choice = json_pack("{s:i,s:o,s:n,s:o}", "index", 0, "delta", delta, "logprobs",
                           "finish_reason", finish ? json_string(finish) : json_null());
    } else {
        choice =
            json_pack("{s:i,s:s%,s:n,s:o}", "index", 0, "text", text ? text : "", text ? len : 0,
                      "logprobs", "finish_reason", finish ? json_string(finish) : json_null());
    }
    json_t *o =
        json_pack("{s:s,s:s,s:I,s:s,s:[o]}", "id", cp->id, "object",
                  cp->chat ? "chat.completion.chunk" : "text_completion", "created",
                  (json_int_t)cp->created, "model", cp->h->app->model_id, "choices", choice);
    if (o && cp->include_usage) json_object_set_new(o, "usage", json_null());
    return o;
}

static bool pend_add(completion *cp, const char *s, size_t n) {
    if (cp->pend_len + n > cp->pend_cap) {
        size_t cap = cp->pend_cap ? cp->pend_cap * 2 : 4096;
        while (cap < cp->pend_len + n)
            cap *= 2;
        char *p = realloc(cp->pend, cap);
        if (!p) return false;
        cp->pend = p;
        cp->pend_cap = cap;
    }
    memcpy(cp->pend + cp->pend_len, s, n);
    cp->pend_len += n;
    return true;
}

static bool pend_event(completion *cp, json_t *o) {
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(9)) : NULL;
    json_decref(o);
    if (!s) return false;
    bool ok = pend_add(cp, "data: ", 6) && pend_add(cp, s, strlen(s)) && pend_add(cp, "\n\n", 2);
    free(s);
    return ok;
}

/* Produces the next SSE events into cp->pend (waiting for the job). False: nothing more. */
static bool stream_more(completion *cp) {
    cp->pend_len = cp->pend_off = 0;
    while (cp->pend_len == 0) {
        switch (cp->phase) {
        case 0:
            cp->phase = 1;
            if (cp->chat && !pend_event(cp, chunk_json(cp, "", 0, true, NULL))) return false;
            break;
        case 1: {
            size_t n = 0;
            bool done = srv_job_take(cp->job, cp->text, sizeof cp->text, &n, 100);
            if (n && !pend_event(cp, chunk_json(cp, cp->text, n, false, NULL))) return false;
            cp->quiet_ms = n ? 0 : cp->quiet_ms + 100;
            if (done)
                cp->phase = 2;
            else if (!n && client_gone(cp->conn)) {
                srv_job_cancel(cp->job);
                return false;
            } else if (cp->quiet_ms >= ping_ms(cp->h->app)) {
                cp->quiet_ms = 0;
                if (!pend_add(cp, ": ping\n\n", 8)) return false;
            }
            break;
        }
        case 2: {
            srv_job_result r;
            srv_job_result_get(cp->job, &r);
            cp->phase = 3;
            if (r.failed) {
                srv_error e;
                srv_error_set(&e, 500, "server_error", "generation_failed", NULL,
                              "generation failed: %s", r.error);
                char *s = srv_error_json(&e);
                bool ok = s && pend_add(cp, "data: ", 6) && pend_add(cp, s, strlen(s)) &&
                          pend_add(cp, "\n\n", 2);
                free(s);
                if (!ok) return false;
                break;
            }
            if (!pend_event(cp, chunk_json(cp, NULL, 0, false, finish_reason(&r)))) return false;
            if (cp->include_usage) {
                json_t *o = json_pack("{s:s,s:s,s:I,s:s,s:[],s:o}", "id", cp->id, "object",
                                      cp->chat ? "chat.completion.chunk" : "text_completion",
                                      "created", (json_int_t)cp->created, "model",
                                      cp->h->app->model_id, "choices", "usage", usage_json(&r));
                if (!pend_event(cp, o)) return false;
            }
            break;
        }
        case 3:
            cp->phase = 4;
            if (!pend_add(cp, "data: [DONE]\n\n", 14)) return false;
            break;
        default: return false;
        }
    }
    return true;
}

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    completion *cp = cls;
    if (cp->pend_off == cp->pend_len && !stream_more(cp))
        return cp->phase == 4 ? MHD_CONTENT_READER_END_OF_STREAM
                              : MHD_CONTENT_READER_END_WITH_ERROR;
    size_t n = cp->pend_len - cp->pend_off;
    if (n > max) n = max;
    memcpy(buf, cp->pend + cp->pend_off, n);
    cp->pend_off += n;
    return (ssize_t)n;
}

static void stream_free(void *cls) {
    completion *cp = cls;
    srv_job_cancel(cp->job); /* the client went away before the end: nothing to keep */
    completion_free(cp);
}

/* Waits for the whole text and answers with one JSON object. Nothing is sent while the
 * text is made, so --timeout (libmicrohttpd's idle limit) is lifted meanwhile and set again
 * (which restarts its count) before the answer goes out; a vanished client is noticed by
 * polling its socket. */
static enum MHD_Result answer_whole(completion *cp) {
    struct MHD_Connection *c = cp->conn;
    const unsigned timeout_s = (unsigned)cp->h->app->timeout_s;
    MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, 0u);
    char *text = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (cap - len < sizeof cp->text) {
            cap = cap ? cap * 2 : 2 * sizeof cp->text;
            char *p = realloc(text, cap);
            if (!p) {
                free(text);
                srv_job_cancel(cp->job);
                MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, timeout_s);
                return error_reply(c, 500, "server_error", NULL, NULL, "out of memory");
            }
            text = p;
        }
        size_t n = 0;
        bool done = srv_job_take(cp->job, text + len, cap - len, &n, 100);
        len += n;
        if (done) break;
        if (!n && client_gone(c)) {
            srv_job_cancel(cp->job);
            free(text);
            return MHD_NO; /* nobody to answer */
        }
    }
    MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, timeout_s);
    srv_job_result r;
    srv_job_result_get(cp->job, &r);
    if (r.failed) {
        free(text);
        return error_reply(c, 500, "server_error", "generation_failed", NULL, r.error);
    }
    json_t *choice;
    if (cp->chat)
        choice = json_pack("{s:i,s:{s:s,s:s%},s:n,s:s}", "index", 0, "message", "role", "assistant",
                           "content", text ? text : "", len, "logprobs", "finish_reason",
                           finish_reason(&r));
    else
        choice = json_pack("{s:i,s:s%,s:n,s:s}", "index", 0, "text", text ? text : "", len,
                           "logprobs", "finish_reason", finish_reason(&r));
    free(text);
    json_t *o = json_pack("{s:s,s:s,s:I,s:s,s:[o],s:o,s:o}", "id", cp->id, "object",
                          cp->chat ? "chat.completion" : "text_completion", "created",
                          (json_int_t)cp->created, "model", cp->h->app->model_id, "choices", choice,
                          "usage", usage_json(&r), "steering", steering_json(cp));
    return send_json(c, 200, o);
}

static enum MHD_Result post_completion(srv_http *h, struct MHD_Connection *c, bool chat,
                                       const char *body, size_t len) {
    srv_app *app = h->app;
    srv_request rq;
    srv_error err;
    if (!srv_request_parse(body, len, chat, &app->cat, &rq, &err)) return send_error(c, &err, 0);

    enum MHD_Result ret;
    int32_t *toks = NULL;
    int n_toks = 0;
    es_steer_set *steer = NULL;
    char *canon = NULL;
    completion *cp = NULL;
    const char *stops[SRV_MAX_STOPS + 1];
    size_t n_stops = 0;
    es_status st;
    if (chat) {
        es_chat_msg *msgs = calloc((size_t)rq.n_msgs, sizeof *msgs);
        if (!msgs) {
            ret = error_reply(c, 500, "server_error", NULL, NULL, "out of memory");
            goto done;
        }
        for (int i = 0; i < rq.n_msgs; i++)
            msgs[i] = (es_chat_msg){rq.msgs[i].role, rq.msgs[i].content};
        st = cli_chat_tokens(app->vocab, app->chat_format, msgs, (size_t)rq.n_msgs, true, &toks,
                             &n_toks);
        free(msgs);
        if (st == ES_OK && app->chat_format != ES_CHAT_NONE &&
            es_chat_end_of_turn(app->chat_format)[0])
            stops[n_stops++] = es_chat_end_of_turn(app->chat_format);
    } else {
        st =
            es_tokenize_alloc(app->vocab, rq.prompt, strlen(rq.prompt), true, true, &toks, &n_toks);
    }
    if (st != ES_OK) {
        ret = error_reply(c, 400, "invalid_request_error", "invalid_value",
                          chat ? "messages" : "prompt", es_last_error());
        goto done;
    }
    const int n_ctx = srv_engine_n_ctx(app->engine);
    if (n_toks < 1) {
        ret = error_reply(c, 400, "invalid_request_error", "invalid_value",
                          chat ? "messages" : "prompt", "the prompt is empty (0 tokens)");
        goto done;
    }
    if (n_toks >= n_ctx) {
        char msg[256];
        snprintf(msg, sizeof msg,
                 "the prompt has %d tokens; the context holds %d per request (-c), and at least "
                 "one position must be left to generate",
                 n_toks, n_ctx);
        ret = error_reply(c, 400, "invalid_request_error", "context_length_exceeded",
                          chat ? "messages" : "prompt", msg);
        goto done;
    }
    if (!srv_steer_build(&rq.steer, &app->cat, &steer, &canon, &err)) {
        ret = send_error(c, &err, 0);
        goto done;
    }
    for (int i = 0; i < rq.n_stops; i++)
        stops[n_stops++] = rq.stops[i];

    srv_job_spec spec = {.vocab = app->vocab,
                         .prompt = toks,
                         .n_prompt = n_toks,
                         .steer = steer,
                         .steer_key = canon,
                         .positions = rq.steer.positions};
    spec.gen = es_gen_default_params();
    spec.gen.n_predict = (int)(rq.max_tokens > 0 ? rq.max_tokens : app->n_predict);
    spec.gen.sampling = app->sampling;
    es_sampler_params *sp = &spec.gen.sampling;
    if (rq.has_temp) sp->temp = (float)rq.temp;
    if (rq.has_top_p) sp->top_p = (float)rq.top_p;
    if (rq.has_top_k) sp->top_k = (int)rq.top_k;
    if (rq.has_min_p) sp->min_p = (float)rq.min_p;
    if (rq.has_presence) sp->presence_penalty = (float)rq.presence;
    if (rq.has_frequency) sp->frequency_penalty = (float)rq.frequency;
    if (rq.has_repeat) sp->repeat_penalty = (float)rq.repeat;
    if (rq.has_seed)
        sp->seed = rq.seed;
    else if (!app->seed_given) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        sp->seed = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ull ^ (uint64_t)ts.tv_sec ^
                   (atomic_fetch_add(&g_ids, 1) << 32);
    }
    spec.gen.stop_at_eog = !rq.ignore_eos;
    spec.gen.stops = stops;
    spec.gen.n_stops = n_stops;
    srv_job *job = srv_job_create(&spec);
    if (!job) {
        ret = error_reply(c, 500, "server_error", NULL, NULL, "out of memory");
        goto done;
    }
    steer = NULL; /* the job owns it */
    int retry = 0;
    if (!srv_engine_submit(app->engine, job, &retry)) {
        srv_job_release(job);
        srv_error_set(&err, 503, "server_error", "server_busy", NULL,
                      "every slot is busy and the queue is full; retry in %d s", retry);
        ret = send_error(c, &err, retry);
        goto done;
    }
    cp = calloc(1, sizeof *cp);
    if (!cp) {
        srv_job_cancel(job);
        srv_job_release(job);
        ret = error_reply(c, 500, "server_error", NULL, NULL, "out of memory");
        goto done;
    }
    cp->h = h;
    cp->conn = c;
    cp->job = job;
    cp->chat = chat;
    cp->include_usage = rq.stream && rq.include_usage;
    cp->created = (long long)time(NULL);
    cp->steer_canon = canon;
    canon = NULL;
    make_id(cp->id, sizeof cp->id, chat ? "chatcmpl" : "cmpl");
    if (!rq.stream) {
        ret = answer_whole(cp);
        completion_free(cp);
        goto done;
    }
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, stream_reader, cp, stream_free);
    if (!r) {
        completion_free(cp);
        ret = MHD_NO;
        goto done;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(r, "X-Accel-Buffering", "no"); /* nginx: pass events on at once */
    MHD_add_response_header(r, "Access-Control-Allow-Origin", "*");
    ret = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
done:
    es_steer_set_free(steer);
    free(canon);
    free(toks);
    srv_request_free(&rq);
    return ret;
}

/* ---- dispatch ---- */

static bool key_ok(const srv_app *app, struct MHD_Connection *c) {
    if (!app->api_key) return true;
    const char *auth =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!auth || strncmp(auth, "Bearer ", 7) != 0) return false;
    const char *given = auth + 7, *want = app->api_key;
    size_t gl = strlen(given), wl = strlen(want);
    /* constant time in the key's length: every byte is compared whatever matches */
    unsigned diff = (unsigned)(gl ^ wl);
    for (size_t i = 0; i < wl; i++)
        diff |= (unsigned char)want[i] ^ (unsigned char)(i < gl ? given[i] : 0);
    return diff == 0;
}

/* The endpoints, each with its method: one table for dispatch, 405 and the API key. */
typedef enum {
    EP_NONE,
    EP_PAGE,
    EP_HEALTH,
    EP_MODELS,
    EP_STEERING,
    EP_CHAT,
    EP_COMPLETIONS
} endpoint;

static const struct {
    const char *path;
    endpoint ep;
} k_routes[] = {
    {"/", EP_PAGE},
    {"/index.html", EP_PAGE},
    {"/health", EP_HEALTH},
    {"/v1/models", EP_MODELS},
    {"/models", EP_MODELS},
    {"/v1/steering", EP_STEERING},
    {"/v1/chat/completions", EP_CHAT},
    {"/chat/completions", EP_CHAT},
    {"/v1/completions", EP_COMPLETIONS},
    {"/completions", EP_COMPLETIONS},
};

static endpoint route(const char *url) {
    for (size_t i = 0; i < sizeof k_routes / sizeof k_routes[0]; i++)
        if (!strcmp(url, k_routes[i].path)) return k_routes[i].ep;
    return EP_NONE;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **con_cls) {
    (void)version;
    srv_http *h = cls;
    srv_app *app = h->app;
    req_ctx *rc = *con_cls;
    const bool get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    const bool post = !strcmp(method, "POST");
    const endpoint ep = route(url);
    const bool chat = ep == EP_CHAT, compl = ep == EP_COMPLETIONS;
    if (!rc) { /* the headers have arrived */
        rc = calloc(1, sizeof *rc);
        if (!rc) return MHD_NO;
        *con_cls = rc;
        atomic_fetch_add(&h->in_flight, 1);
        if (!strcmp(method, "OPTIONS")) {
            struct MHD_Response *r = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
            if (!r) return MHD_NO;
            MHD_add_response_header(r, "Access-Control-Allow-Origin", "*");
            MHD_add_response_header(r, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
            MHD_add_response_header(r, "Access-Control-Allow-Headers",
                                    "Authorization, Content-Type");
            enum MHD_Result ret = MHD_queue_response(c, 204, r);
            MHD_destroy_response(r);
            rc->answered = true;
            return ret;
        }
        const bool open = ep == EP_HEALTH || ep == EP_PAGE;
        if (!open && !key_ok(app, c)) {
            rc->answered = true;
            return error_reply(c, 401, "authentication_error", "invalid_api_key", NULL,
                               app->api_key &&
                                       MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                                   MHD_HTTP_HEADER_AUTHORIZATION)
                                   ? "invalid API key"
                                   : "missing API key: send 'Authorization: Bearer KEY'");
        }
        if (post && (chat || compl )) {
            const char *cl =
                MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
            if (cl && strtoull(cl, NULL, 10) > app->max_body) {
                rc->answered = true;
                char msg[160];
                snprintf(msg, sizeof msg,
                         "the body has %s bytes; at most %zu are accepted (--max-body)", cl,
                         app->max_body);
                return error_reply(c, 413, "invalid_request_error", "body_too_large", NULL, msg);
            }
            return MHD_YES; /* the body follows */
        }
        return MHD_YES;
    }
    if (rc->answered) { /* discard what still comes */
        *upload_size = 0;
        return MHD_YES;
    }
    if (*upload_size) {
        if (rc->len + *upload_size > app->max_body) {
            rc->answered = true;
            *upload_size = 0;
            char msg[160];
            snprintf(msg, sizeof msg, "the body is over %zu bytes (--max-body)", app->max_body);
            return error_reply(c, 413, "invalid_request_error", "body_too_large", NULL, msg);
        }
        if (rc->len + *upload_size + 1 > rc->cap) {
            size_t cap = rc->cap ? rc->cap : 4096;
            while (cap < rc->len + *upload_size + 1)
                cap *= 2;
            char *p = realloc(rc->body, cap);
            if (!p) return MHD_NO;
            rc->body = p;
            rc->cap = cap;
        }
        memcpy(rc->body + rc->len, upload, *upload_size);
        rc->len += *upload_size;
        *upload_size = 0;
        return MHD_YES;
    }
    /* the whole request is here */
    if (chat || compl ) {
        if (!post)
            return error_reply(c, 405, "invalid_request_error", "method_not_allowed", NULL,
                               "use POST for this endpoint");
        return post_completion(h, c, chat, rc->body ? rc->body : "", rc->len);
    }
    if (ep != EP_NONE && !get)
        return error_reply(c, 405, "invalid_request_error", "method_not_allowed", NULL,
                           "use GET for this endpoint");
    switch (ep) {
    case EP_PAGE:
        return send_text(c, 200, "text/html; charset=utf-8", srv_playground_html,
                         srv_playground_html_len, 0);
    case EP_HEALTH: return get_health(h, c);
    case EP_MODELS: return get_models(h, c);
    case EP_STEERING: return get_steering(h, c);
    default: break;
    }
    char msg[300];
    snprintf(msg, sizeof msg,
             "no such endpoint: %s %.200s (see GET /v1/models, /v1/steering, POST "
             "/v1/chat/completions, /v1/completions)",
             method, url);
    return error_reply(c, 404, "invalid_request_error", "not_found", NULL, msg);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe) {
    (void)c, (void)toe;
    srv_http *h = cls;
    req_ctx *rc = *con_cls;
    if (!rc) return;
    free(rc->body);
    free(rc);
    *con_cls = NULL;
    atomic_fetch_sub(&h->in_flight, 1);
}

static void log_error(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    fputs("emosteer serve: ", stderr);
    vfprintf(stderr, fmt, ap);
}

es_status srv_http_start(srv_app *app, const char *host, int port, int max_conns, srv_http **out) {
    *out = NULL;
    srv_http *h = calloc(1, sizeof *h);
    if (!h) return es_error(ES_ERR_NOMEM, "serve: out of memory");
    h->app = app;
    atomic_init(&h->in_flight, 0);
    struct sockaddr_in a4;
    struct sockaddr_in6 a6;
    struct sockaddr *sa;
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_ERROR_LOG | MHD_USE_POLL | MHD_USE_ITC;
    memset(&a4, 0, sizeof a4);
    memset(&a6, 0, sizeof a6);
    if (inet_pton(AF_INET, host, &a4.sin_addr) == 1) {
        a4.sin_family = AF_INET;
        a4.sin_port = htons((uint16_t)port);
        sa = (struct sockaddr *)&a4;
    } else if (inet_pton(AF_INET6, host, &a6.sin6_addr) == 1) {
        a6.sin6_family = AF_INET6;
        a6.sin6_port = htons((uint16_t)port);
        sa = (struct sockaddr *)&a6;
        flags |= MHD_USE_IPv6;
    } else {
        free(h);
        return es_error(ES_ERR_INVALID_ARG, "serve: --host '%s' is not an IPv4 or IPv6 address",
                        host);
    }
    h->d = MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, handle, h, MHD_OPTION_EXTERNAL_LOGGER, log_error, NULL,
        MHD_OPTION_SOCK_ADDR, sa, MHD_OPTION_CONNECTION_LIMIT, (unsigned)max_conns,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)app->timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)64 * 1024, MHD_OPTION_NOTIFY_COMPLETED, completed, h, MHD_OPTION_END);
    if (!h->d) {
        free(h);
        return es_error(ES_ERR_IO, "serve: cannot listen on %s:%d (in use, or not allowed)", host,
                        port);
    }
    *out = h;
    return ES_OK;
}

void srv_http_quiesce(srv_http *h) {
    if (!h || !h->d) return;
    MHD_socket s = MHD_quiesce_daemon(h->d);
    if (s != MHD_INVALID_SOCKET) close(s);
}

int srv_http_in_flight(srv_http *h) {
    return h ? atomic_load(&h->in_flight) : 0;
}

void srv_http_stop(srv_http *h) {
    if (!h) return;
    if (h->d) MHD_stop_daemon(h->d);
    free(h);
}
