/*
 * cmd_chat.c — `emosteer chat`: an interactive multi-turn conversation in the model's
 * chat format, optionally steered. Each turn re-renders the whole conversation and
 * decodes only the tokens the KV cache does not already hold.
 *
 * Input lines are user turns; "/exit" or end of input quits, "/reset" forgets the
 * history, "/steer E=A,..." changes the steering strengths (with --ev).
 */
#include "cli.h"
#include "gen_util.h"
#include "opts.h"
#include "steer_opts.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct chat_opts {
    cli_runtime_opts rt;
    es_sampler_params sp;
    long n_predict;
    cli_chat_opts chat;
    cli_steer_opts steer;
} chat_opts;

#define CO(f) offsetof(chat_opts, f)
static const cli_group_use chat_groups[] = {
    {&cli_runtime_group, CO(rt), CLI_RT_BATCH},
    {&cli_chat_group, CO(chat), CLI_CHAT_FLAG},
    {&cli_n_predict_group, CO(n_predict), 0},
    {&cli_sampling_group, CO(sp), 0},
    {&cli_steer_group, CO(steer), 0},
};

static void chat_init(void *p) {
    chat_opts *o = p;
    cli_runtime_init(&o->rt);
    o->rt.n_ctx = 0; /* the library default: the trained length, at most 4096 */
    o->sp = es_sampler_default_params();
    o->n_predict = 256;
    cli_steer_init(&o->steer);
}

const cli_command cli_chat_cmd = {
    "chat", "[-m MODEL] [options]",
    "Interactive chat. Type a message and press Enter; /exit (or end of input) quits,\n"
    "/reset starts over, /steer E=A,... changes steering strengths (needs --ev).",
    NULL, sizeof(chat_opts), chat_init, chat_groups, sizeof chat_groups / sizeof chat_groups[0], 0,
};

static bool print_piece(void *user, int index, const char *text, size_t len) {
    (void)user, (void)index;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return true;
}

typedef struct history {
    es_chat_msg *msgs; /* [n] (role static, content malloc'ed) */
    size_t n, cap;
} history;

static bool history_add(history *h, const char *role, const char *content) {
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 8;
        es_chat_msg *m = realloc(h->msgs, cap * sizeof *m);
        if (!m) return false;
        h->msgs = m;
        h->cap = cap;
    }
    char *c = es_strdup_cli(content);
    if (!c) return false;
    h->msgs[h->n++] = (es_chat_msg){role, c};
    return true;
}

static void history_clear(history *h, size_t keep) {
    while (h->n > keep) free((char *)h->msgs[--h->n].content);
}

int cmd_chat(int argc, char **argv) {
    chat_opts o;
    int rc = cli_opts_parse(&cli_chat_cmd, &o, argc, argv, NULL);
    if (rc >= 0) return rc;
    const char *model_path = o.rt.model, *system = o.chat.system, *tmpl_name = o.chat.tmpl_name;
    long n_predict = o.n_predict;
    es_sampler_params sp = o.sp;
    cli_steer_opts *so = &o.steer;
    rc = ES_EXIT_FAIL;
    es_model *model = NULL;
    es_context *ctx = NULL;
    es_steer_set *steer = NULL;
    history h = {0};
    int32_t *cached = NULL; /* tokens in the KV cache */
    int n_cached = 0;
    char *line = NULL;
    size_t line_cap = 0;
    es_model_params mp = es_model_default_params();
    if ((rc = cli_steer_build(so, "chat", &steer)) != ES_EXIT_OK) goto done;
    rc = ES_EXIT_FAIL;
    if (es_model_load(model_path, &mp, &model) != ES_OK) {
        cli_fail("loading the model");
        goto done;
    }
    const es_vocab *vocab = es_model_vocab(model);
    if (!vocab) {
        fprintf(stderr, "emosteer: %s has no tokenizer\n", model_path);
        goto done;
    }
    es_chat_format fmt;
    if ((rc = cli_chat_format(model, tmpl_name, false, &fmt)) != ES_EXIT_OK) goto done;
    rc = ES_EXIT_FAIL;
    es_context_params cp = es_context_default_params();
    cp.n_ctx = o.rt.n_ctx;
    cli_runtime_apply(&o.rt, &cp);
    if (es_context_create(model, &cp, &ctx) != ES_OK) {
        cli_fail("creating the context");
        goto done;
    }
    if (steer && es_context_set_steering(ctx, 0, steer) != ES_OK) {
        cli_fail("steering");
        goto done;
    }
    if (system && !history_add(&h, "system", system)) goto done;
    size_t n_keep = h.n;
    bool tty = isatty(STDIN_FILENO);
    fprintf(stderr, "chat: format %s; /exit quits, /reset starts over\n", es_chat_format_name(fmt));
    const char *stops[1] = {es_chat_end_of_turn(fmt)};
    for (;;) {
        if (tty) {
            fputs("\n> ", stdout);
            fflush(stdout);
        }
        ssize_t got = getline(&line, &line_cap, stdin);
        if (got < 0) break;
        while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r')) line[--got] = '\0';
        if (got == 0) continue;
        if (!strcmp(line, "/exit") || !strcmp(line, "/quit")) break;
        if (!strcmp(line, "/reset")) {
            history_clear(&h, n_keep);
            fprintf(stderr, "chat: history cleared\n");
            continue;
        }
        if (!strncmp(line, "/steer ", 7)) {
            if (!so->ev_path) {
                fprintf(stderr, "chat: /steer needs --ev FILE on the command line\n");
                continue;
            }
            es_steer_set *ns = NULL;
            so->steer_spec = line + 7;
            if (cli_steer_build(so, "chat", &ns) == ES_EXIT_OK &&
                es_context_set_steering(ctx, 0, ns) == ES_OK) {
                es_steer_set_free(steer);
                steer = ns;
                fprintf(stderr, "chat: steering %s\n", line + 7);
            } else {
                es_steer_set_free(ns);
            }
            so->steer_spec = NULL;
            continue;
        }
        if (!history_add(&h, "user", line)) goto done;
        int32_t *toks = NULL;
        int n_toks = 0;
        if (cli_tokenize_chat(vocab, fmt, h.msgs, h.n, true, &toks, &n_toks) != ES_EXIT_OK) {
            history_clear(&h, h.n - 1);
            continue;
        }
        int common = 0;
        while (common < n_cached && common < n_toks - 1 && cached[common] == toks[common]) common++;
        es_gen_params gp = es_gen_default_params();
        gp.n_predict = (int)n_predict;
        gp.sampling = sp;
        gp.stops = stops;
        gp.n_stops = stops[0][0] ? 1 : 0;
        gp.n_cached = &common;
        es_gen_output out = {0};
        const int32_t *prompts[1] = {toks};
        es_status st = es_generate(ctx, vocab, prompts, &n_toks, 1, &gp, print_piece, NULL, &out);
        printf("\n");
        fflush(stdout);
        if (st != ES_OK) {
            cli_fail("generating");
            free(toks);
            history_clear(&h, h.n - 1);
            es_kv_clear(ctx, 0);
            n_cached = 0;
            continue;
        }
        /* the cache now holds the prompt and the reply minus its last token */
        free(cached);
        cached = malloc(sizeof *cached * (size_t)(n_toks + out.n_tokens));
        n_cached = 0;
        if (cached) {
            memcpy(cached, toks, sizeof *toks * (size_t)n_toks);
            memcpy(cached + n_toks, out.tokens, sizeof *toks * (size_t)out.n_tokens);
            n_cached = n_toks + (out.n_tokens > 0 ? out.n_tokens - 1 : 0);
        }
        free(toks);
        bool ok = history_add(&h, "assistant", out.text);
        es_gen_output_free(&out);
        if (!ok) goto done;
    }
    rc = ES_EXIT_OK;
done:
    free(line);
    free(cached);
    history_clear(&h, 0);
    free(h.msgs);
    es_context_free(ctx);
    es_steer_set_free(steer);
    es_model_free(model);
    return rc;
}
