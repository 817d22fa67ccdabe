/*
 * serve.h — `emosteer serve`: an OpenAI-compatible HTTP server in which every request
 * carries its own steering (docs/serving.md). Like the CLI it uses only the public
 * header. Three parts:
 *   request.c  a request body (JSON) -> srv_request, every field checked, errors in
 *              OpenAI's shape (pure: the fuzz target fuzz/fuzz_serve_request.c drives it);
 *   engine.c   the slots and the one decode loop: continuous batching, chunked prompts,
 *              prefix reuse, per-sequence steering and sampling, cancellation;
 *   http.c     libmicrohttpd: routing, API key, bodies, JSON and SSE responses;
 *   serve_main.c  options, loading, signals.
 */
#ifndef ES_SERVE_H
#define ES_SERVE_H

#include "emosteer.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SRV_MAX_STOPS 16
#define SRV_MAX_EMOTIONS 32
#define SRV_MAX_MESSAGES 4096
#define SRV_MAX_ALPHA 100.0
#define SRV_MAX_TOKENS_LIMIT 1000000

/* An error answer: HTTP status and OpenAI's {"error": {message, type, param, code}}. */
typedef struct srv_error {
    int status;
    const char *type; /* "invalid_request_error", "authentication_error", ... (static) */
    const char *code; /* static, or NULL */
    char param[64];   /* the field at fault, or "" */
    char message[768];
} srv_error;

void srv_error_set(srv_error *e, int status, const char *type, const char *code, const char *param,
                   const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* The JSON text of an error (malloc'ed). */
char *srv_error_json(const srv_error *e);

/* The vector sets the server loaded at start (the only vectors a request can use). */
typedef struct srv_vset {
    char name[128];
    es_ev_set *ev;
} srv_vset;

typedef struct srv_catalog {
    srv_vset *sets;
    int n_sets;
    int n_layer; /* the model's blocks: requested layers must be below it */
} srv_catalog;

/* A parsed request. Strings are owned (srv_request_free). */
typedef struct srv_msg {
    char *role; /* "system", "user" or "assistant" ("developer" arrives as "system") */
    char *content;
} srv_msg;

typedef struct srv_steer_req {
    bool active;                   /* false: unsteered */
    int set;                       /* index into the catalog */
    int n_emotions;                /* emotions with alpha != 0 */
    int emotion[SRV_MAX_EMOTIONS]; /* index in the set */
    float alpha[SRV_MAX_EMOTIONS];
    int32_t *layers; /* explicit layers (malloc'ed), or NULL: the set's recommended ones */
    int n_layers;
    int hook;      /* es_hook_point, ES_HOOK_AUTO = the vectors' own */
    int positions; /* es_steer_positions */
    bool preserve_norm;
} srv_steer_req;

typedef struct srv_request {
    bool chat;     /* /v1/chat/completions (else /v1/completions) */
    srv_msg *msgs; /* chat */
    int n_msgs;
    char *prompt;    /* completions */
    long max_tokens; /* -1: the server's default */
    bool has_temp, has_top_p, has_top_k, has_min_p, has_seed, has_presence, has_frequency,
        has_repeat;
    double temp, top_p, min_p, presence, frequency, repeat;
    long top_k;
    uint64_t seed;
    char *stops[SRV_MAX_STOPS];
    int n_stops;
    bool stream, include_usage;
    bool ignore_eos; /* llama.cpp's extension: keep going past end-of-generation tokens */
    srv_steer_req steer;
} srv_request;

/* Parses and checks a request body. Returns true, or false with *err filled (status
 * 400 for everything the client got wrong). */
bool srv_request_parse(const char *body, size_t len, bool chat, const srv_catalog *cat,
                       srv_request *out, srv_error *err);
void srv_request_free(srv_request *r);

/* The steering set a request asks for (NULL when unsteered), and a canonical text of
 * it (for the response and for deciding whether a slot's KV cache can be reused).
 * False with *err on failure (e.g. a requested layer the set lacks). */
bool srv_steer_build(const srv_steer_req *s, const srv_catalog *cat, es_steer_set **out,
                     char **canon_json, srv_error *err);

/* ---- engine ---- */

typedef struct srv_engine srv_engine;
typedef struct srv_job srv_job;

typedef struct srv_engine_params {
    int n_parallel; /* slots */
    int n_queue;    /* jobs that may wait for a slot */
    int n_ctx;      /* positions per slot */
    int n_batch;    /* tokens per decode step */
    int n_chunk;    /* most prompt tokens of one job per step */
    int n_threads;
    es_kv_type kv_type;
    es_numerics numerics; /* the context is batch-invariant whatever this says */
} srv_engine_params;

es_status srv_engine_create(es_model *model, const srv_engine_params *p, srv_engine **out);
/* Stops accepting (submit then fails), lets running and queued jobs finish, joins the
 * loop. */
void srv_engine_shutdown(srv_engine *e);
/* Shuts down if not yet done, then frees. */
void srv_engine_free(srv_engine *e);
int srv_engine_n_ctx(const srv_engine *e);
void srv_engine_stats(srv_engine *e, int *slots, int *busy, int *queued);

/* What a job is asked to do. Everything is copied by srv_job_create. */
typedef struct srv_job_spec {
    const es_vocab *vocab;
    const int32_t *prompt;
    int n_prompt;
    es_gen_params gen;     /* n_predict, sampling, stops, stop_at_eog */
    es_steer_set *steer;   /* or NULL; owned by the job once srv_job_create succeeds */
    const char *steer_key; /* canonical steering text ("" unsteered) */
    int positions;         /* es_steer_positions of the steering */
} srv_job_spec;

/* NULL when out of memory (spec->gen was checked by the request parser, its defaults at
 * start). */
srv_job *srv_job_create(const srv_job_spec *spec);
/* Drops the caller's reference (cancelling the job if it has not ended). */
void srv_job_release(srv_job *j);
/* Queues the job. False when the engine does not accept it (every slot busy and the
 * queue full, or shutting down): then *retry_after gets seconds to suggest. */
bool srv_engine_submit(srv_engine *e, srv_job *j, int *retry_after);
/* Asks the engine to end the job (the client went away). */
void srv_job_cancel(srv_job *j);

/* What a job has produced since the last call: up to cap bytes of new text go to buf
 * (*n), waiting at most timeout_ms for something to happen. Returns true when the job
 * has ended and every byte has been taken. */
typedef struct srv_job_result {
    es_gen_stop stop;
    bool failed;
    char error[512];
    int n_prompt, n_cached, n_gen;
} srv_job_result;

bool srv_job_take(srv_job *j, char *buf, size_t cap, size_t *n, int timeout_ms);
void srv_job_result_get(srv_job *j, srv_job_result *r);

/* ---- the HTTP side ---- */

typedef struct srv_app {
    es_model *model;
    const es_vocab *vocab;
    es_chat_format chat_format;
    const char *model_id;
    srv_catalog cat;
    srv_engine *engine;
    const char *api_key; /* or NULL */
    size_t max_body;
    int timeout_s;
    int n_predict;              /* default max_tokens */
    es_sampler_params sampling; /* defaults of a request */
    bool seed_given;            /* --seed: requests without one use it, else a fresh one each */
} srv_app;

typedef struct srv_http srv_http;

/* Starts listening (host:port) with libmicrohttpd, one thread per connection. */
es_status srv_http_start(srv_app *app, const char *host, int port, int max_conns, srv_http **out);
/* Stops accepting new connections (the listening socket is closed). */
void srv_http_quiesce(srv_http *h);
/* Requests being handled now. */
int srv_http_in_flight(srv_http *h);
void srv_http_stop(srv_http *h);

/* The playground page (server/playground.html, embedded at build time). */
extern const char srv_playground_html[];
extern const size_t srv_playground_html_len;

#endif
