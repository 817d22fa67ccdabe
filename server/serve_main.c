/*
 * serve_main.c — `emosteer serve`: options, loading the model and the vector sets,
 * starting the engine and the HTTP side, and the orderly end on SIGINT/SIGTERM (stop
 * accepting, let the requests in flight finish, exit 0).
 */
#include "gen_util.h"
#include "opts.h"
#include "serve.h"

#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SRV_MAX_SETS 16

typedef struct serve_opts {
    cli_runtime_opts rt;
    es_sampler_params sp;
    long n_predict;
    cli_strs ev;         /* --ev, repeatable */
    const char *host;    /* --host */
    int port;            /* --port */
    int parallel;        /* --parallel */
    int queue;           /* --queue */
    int chunk;           /* --chunk */
    const char *api_key; /* --api-key */
    const char *api_key_file;
    long max_body;         /* --max-body */
    int timeout;           /* --timeout */
    const char *tmpl_name; /* --chat-template */
    const char *alias;     /* --alias */
    bool seed_given;       /* set when -s/--seed appears (see serve_main) */
} serve_opts;

#define SO(f) offsetof(serve_opts, f)
static const cli_opt serve_own[] = {
    {NULL, "--ev", "FILE", CLI_STRS, 0, 0, SO(ev),
     "emotion vectors to offer (repeatable; default with the demo model: its own; else "
     "MODEL-STEM.ev.gguf beside the model when it exists)",
     NULL, NULL, 0, 0},
    {NULL, "--host", "ADDR", CLI_STR, 0, 0, SO(host), "address to listen on", NULL, NULL,
     CLI_SHOW_DEFAULT, 0},
    {NULL, "--port", "N", CLI_INT, 0, 65535, SO(port), "port to listen on (0: any free one)", NULL,
     NULL, CLI_SHOW_DEFAULT, 0},
    {"-np", "--parallel", "N", CLI_INT, 1, 256, SO(parallel),
     "requests decoded together (slots, one sequence each)", NULL, NULL, CLI_SHOW_DEFAULT, 0},
    {NULL, "--queue", "N", CLI_INT, 0, 100000, SO(queue),
     "requests that may wait for a slot; past it: 503", NULL, NULL, CLI_SHOW_DEFAULT, 0},
    {NULL, "--chunk", "N", CLI_INT, 1, 1 << 20, SO(chunk),
     "most prompt tokens of one request per decode step", NULL, NULL, CLI_SHOW_DEFAULT, 0},
    {NULL, "--api-key", "KEY", CLI_STR, 0, 0, SO(api_key),
     "require 'Authorization: Bearer KEY' (not for /health and /)", NULL, NULL, 0, 0},
    {NULL, "--api-key-file", "FILE", CLI_PATH, 0, 0, SO(api_key_file),
     "read the key from FILE (its first line)", NULL, NULL, 0, 0},
    {NULL, "--max-body", "BYTES", CLI_LONG, 64, 1L << 30, SO(max_body),
     "largest request body; past it: 413", NULL, NULL, CLI_SHOW_DEFAULT, 0},
    {NULL, "--timeout", "S", CLI_INT, 1, 86400, SO(timeout),
     "seconds a stalled client may keep its connection idle", NULL, NULL, CLI_SHOW_DEFAULT, 0},
    {NULL, "--chat-template", "NAME", CLI_STR, 0, 0, SO(tmpl_name),
     "chat format of /v1/chat/completions (default: the model's own)", NULL, NULL, 0, 0},
    {NULL, "--alias", "NAME", CLI_STR, 0, 0, SO(alias),
     "model id in the answers (default: the model file's name without .gguf)", NULL, NULL, 0, 0},
};
static const cli_opt_group serve_group = {"options", serve_own,
                                          sizeof serve_own / sizeof serve_own[0]};

static const cli_group_use serve_groups[] = {
    {&serve_group, 0, 0},
    {&cli_runtime_group, SO(rt), CLI_RT_BATCH | CLI_RT_INVARIANT}, /* always invariant */
    {&cli_n_predict_group, SO(n_predict), 0},
    {&cli_sampling_group, SO(sp), 0},
};

static void serve_init(void *p) {
    serve_opts *o = p;
    cli_runtime_init(&o->rt);
    o->sp = es_sampler_default_params();
    o->n_predict = 256;
    o->host = "127.0.0.1";
    o->port = 8080;
    o->parallel = 4;
    o->queue = 16;
    o->chunk = 256;
    o->max_body = 1L << 20;
    o->timeout = 30;
}

const cli_command cli_serve_cmd = {
    "serve",
    "[-m MODEL] [--ev FILE]... [--host ADDR] [--port N] [--parallel N] [options]",
    "An OpenAI-compatible server (POST /v1/chat/completions, /v1/completions; GET /v1/models,\n"
    "/v1/steering, /health; a playground page at /) in which every request carries its own\n"
    "emotions: \"steering\": {\"emotions\": {\"joy\": 1.5}} in the body (docs/serving.md).\n"
    "Requests are decoded together in one continuously batched loop, batch-invariant: a\n"
    "request's text does not depend on the others.",
    "example: emosteer serve --port 8080 &\n"
    "  curl -s localhost:8080/v1/chat/completions -d '{\"messages\":[{\"role\":\"user\",\n"
    "    \"content\":\"The letter "
    "arrived\"}],\"max_tokens\":32,\"steering\":{\"emotions\":{\"joy\":1.5}}}'\n\n"
    "SIGINT or SIGTERM: stop accepting, finish the requests in flight, exit 0.",
    sizeof(serve_opts),
    serve_init,
    serve_groups,
    sizeof serve_groups / sizeof serve_groups[0],
    0,
};

/* The vectors that go with a model when no --ev is given: STEM.ev.gguf beside it, STEM
 * being the file name without ".gguf" and without a last ".QUANT" part
 * (demo-16m.q8_0.gguf -> demo-16m.ev.gguf), then MODEL-without-.gguf.ev.gguf. */
static bool default_ev(const char *model, char *buf, size_t cap) {
    char stem[PATH_MAX];
    snprintf(stem, sizeof stem, "%s", model);
    size_t n = strlen(stem);
    if (n > 5 && !strcmp(stem + n - 5, ".gguf")) stem[n - 5] = '\0';
    snprintf(buf, cap, "%s.ev.gguf", stem);
    if (access(buf, R_OK) == 0) return true;
    char *dot = strrchr(stem, '.'), *slash = strrchr(stem, '/');
    if (dot && (!slash || dot > slash)) {
        *dot = '\0';
        snprintf(buf, cap, "%s.ev.gguf", stem);
        if (access(buf, R_OK) == 0) return true;
    }
    return false;
}

/* A vector set's name: its file name without ".gguf" / ".json". */
static void set_name(const char *path, char *buf, size_t cap) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    snprintf(buf, cap, "%s", base);
    size_t n = strlen(buf);
    if (n > 5 && !strcmp(buf + n - 5, ".gguf"))
        buf[n - 5] = '\0';
    else if (n > 5 && !strcmp(buf + n - 5, ".json"))
        buf[n - 5] = '\0';
}

static int read_key_file(const char *path, char **key) {
    char *text = NULL;
    size_t len = 0;
    int rc = cli_read_text("serve", path, &text, &len);
    if (rc != ES_EXIT_OK) return rc;
    text[strcspn(text, "\r\n")] = '\0';
    if (!text[0]) {
        free(text);
        fprintf(stderr, "emosteer serve: --api-key-file %s: the first line is empty\n", path);
        return ES_EXIT_USAGE;
    }
    *key = text;
    return ES_EXIT_OK;
}

int cmd_serve(int argc, char **argv) {
    serve_opts o;
    int rc = cli_opts_parse(&cli_serve_cmd, &o, argc, argv, NULL);
    if (rc >= 0) return rc;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-s") || !strcmp(argv[i], "--seed")) o.seed_given = true;
    if (o.api_key && o.api_key_file)
        return cli_usage_error("serve", "give --api-key or --api-key-file, not both");
    if (o.api_key && !o.api_key[0]) return cli_usage_error("serve", "--api-key is empty");

    rc = ES_EXIT_FAIL;
    es_model *model = NULL;
    const es_vocab *vocab = NULL;
    srv_vset sets[SRV_MAX_SETS];
    int n_sets = 0;
    char *key = NULL;
    srv_engine *engine = NULL;
    srv_http *http = NULL;
    sigset_t sigs;
    memset(sets, 0, sizeof sets);
    if (o.api_key_file && (rc = read_key_file(o.api_key_file, &key)) != ES_EXIT_OK) goto done;
    rc = ES_EXIT_FAIL;

    es_model_params mp = es_model_default_params();
    mp.check_finite = o.rt.check_finite;
    if (cli_load_text_model(o.rt.model, &mp, &model, &vocab) != ES_EXIT_OK) goto done;
    es_model_info info;
    es_model_get_info(model, &info);

    /* the vector sets: --ev, else the ones beside the model */
    char def_path[PATH_MAX];
    const char *paths[SRV_MAX_SETS];
    int n_paths = 0;
    for (int i = 0; i < o.ev.n && n_paths < SRV_MAX_SETS; i++)
        paths[n_paths++] = o.ev.v[i];
    if (o.ev.n == 0 && default_ev(o.rt.model, def_path, sizeof def_path))
        paths[n_paths++] = def_path;
    for (int i = 0; i < n_paths; i++) {
        srv_vset *s = &sets[n_sets];
        if (es_ev_set_load(paths[i], NULL, &s->ev) != ES_OK) {
            cli_fail("--ev");
            goto done;
        }
        n_sets++;
        set_name(paths[i], s->name, sizeof s->name);
        for (int k = 0; k < n_sets - 1; k++)
            if (!strcmp(sets[k].name, s->name)) {
                fprintf(stderr, "emosteer serve: two vector sets are named '%s' (%s)\n", s->name,
                        paths[i]);
                rc = ES_EXIT_USAGE;
                goto done;
            }
        if (es_ev_set_n_embd(s->ev) != info.n_embd) {
            fprintf(stderr,
                    "emosteer serve: --ev %s holds vectors of width %d; the model's hidden size is "
                    "%d (vectors of another model?)\n",
                    paths[i], es_ev_set_n_embd(s->ev), info.n_embd);
            goto done;
        }
        if (es_ev_set_n_layer(s->ev) > info.n_layer) {
            fprintf(stderr,
                    "emosteer serve: --ev %s has vectors up to layer %d; the model has %d layers\n",
                    paths[i], es_ev_set_n_layer(s->ev) - 1, info.n_layer);
            goto done;
        }
    }

    es_chat_format fmt;
    if (cli_chat_format(model, o.tmpl_name, false, &fmt) != ES_EXIT_OK) goto done;

    char model_id[256];
    if (o.alias)
        snprintf(model_id, sizeof model_id, "%s", o.alias);
    else
        set_name(o.rt.model, model_id, sizeof model_id);

    srv_engine_params ep = {.n_parallel = o.parallel,
                            .n_queue = o.queue,
                            .n_ctx = cli_runtime_ctx("serve", o.rt.n_ctx, model),
                            .n_chunk = o.chunk,
                            .n_threads = o.rt.n_threads,
                            .kv_type = (es_kv_type)o.rt.kv_type,
                            .numerics = (es_numerics)o.rt.numerics};
    /* a step holds one token per generating request plus prompt chunks */
    ep.n_batch = o.chunk + o.parallel;
    if (ep.n_batch > ep.n_ctx + o.parallel) ep.n_batch = ep.n_ctx + o.parallel;
    if (srv_engine_create(model, &ep, &engine) != ES_OK) {
        cli_fail("creating the slots");
        goto done;
    }

    srv_app app = {.model = model,
                   .vocab = vocab,
                   .chat_format = fmt,
                   .model_id = model_id,
                   .cat = {.sets = sets, .n_sets = n_sets, .n_layer = info.n_layer},
                   .engine = engine,
                   .api_key = key ? key : o.api_key,
                   .max_body = (size_t)o.max_body,
                   .timeout_s = o.timeout,
                   .n_predict = (int)o.n_predict,
                   .sampling = o.sp,
                   .seed_given = o.seed_given};
    es_sampler *probe = NULL; /* the defaults must make a sampler */
    if (es_sampler_create(&o.sp, es_vocab_n_tokens(vocab), &probe) != ES_OK) {
        rc = cli_fail("sampling options");
        goto done;
    }
    es_sampler_free(probe);

    /* SIGINT/SIGTERM are taken by sigwait below; every thread inherits the mask */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    int max_conns = o.parallel + o.queue + 64;
    if (srv_http_start(&app, o.host, o.port, max_conns, &http) != ES_OK) {
        cli_fail("listening");
        goto done;
    }
    fprintf(stderr, "emosteer serve: %s (%s), %d slot%s of %d positions, %d vector set%s", model_id,
            es_chat_format_name(fmt), o.parallel, o.parallel == 1 ? "" : "s", ep.n_ctx, n_sets,
            n_sets == 1 ? "" : "s");
    for (int i = 0; i < n_sets; i++)
        fprintf(stderr, "%s%s", i ? ", " : " (", sets[i].name);
    fprintf(stderr, "%s; listening on http://%s:%d%s\n", n_sets ? ")" : "", o.host, o.port,
            app.api_key ? " (API key required)" : "");
    int sig = 0;
    sigwait(&sigs, &sig);
    fprintf(stderr, "emosteer serve: %s: finishing the requests in flight\n",
            sig == SIGINT ? "SIGINT" : "SIGTERM");
    srv_http_quiesce(http);
    srv_engine_shutdown(engine); /* every submitted job runs to its end */
    /* let the connections send what their jobs made (at most 10 s) */
    for (int i = 0; i < 1000 && srv_http_in_flight(http) > 0; i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    rc = ES_EXIT_OK;
done:
    srv_http_stop(http);
    srv_engine_free(engine);
    for (int i = 0; i < n_sets; i++)
        es_ev_set_free(sets[i].ev);
    es_model_free(model);
    free(key);
    if (rc == ES_EXIT_OK) fprintf(stderr, "emosteer serve: stopped\n");
    return rc;
}
