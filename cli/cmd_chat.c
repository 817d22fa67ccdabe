/*
 * cmd_chat.c — `emosteer chat`: an interactive multi-turn conversation in the model's
 * chat format, optionally steered. Each turn re-renders the whole conversation and
 * decodes only the tokens the KV cache does not already hold (the longest common prefix
 * of the cached tokens and the new prompt), so the cache always matches the history.
 *
 * Input lines are user turns; lines starting with '/' are commands (CHAT_COMMANDS
 * below, also /help and the --help epilog); unknown commands never reach the model.
 * Ctrl-C (SIGINT) stops the reply being generated and keeps the part shown in the
 * history; Ctrl-C at the prompt, two during one reply, or end of input quits (exit 0).
 * A history that no longer fits the context loses its oldest turns (never the system
 * message), with a note on stderr.
 */
#include "cli.h"
#include "gen_util.h"
#include "opts.h"
#include "steer_opts.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
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
    {&cli_runtime_group, CO(rt), CLI_RT_BATCH}, {&cli_chat_group, CO(chat), CLI_CHAT_FLAG},
    {&cli_n_predict_group, CO(n_predict), 0},   {&cli_sampling_group, CO(sp), 0},
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

/* What /help prints; the --help epilog adds how Ctrl-C and a full context behave. */
#define CHAT_COMMANDS                                                                              \
    "commands (a line starting with '/'; others are messages to the model):\n"                     \
    "  /help              this list\n"                                                             \
    "  /exit, /quit       quit (so do end of input and Ctrl-C at the prompt)\n"                    \
    "  /reset             forget the conversation (the system message stays)\n"                    \
    "  /steer E=A[,E=A]   steer with these emotions of --ev, e.g. /steer joy=1.5\n"                \
    "  /steer off         stop steering with --ev's emotions (control vectors stay)\n"             \
    "  //TEXT             send the message /TEXT\n"

const cli_command cli_chat_cmd = {
    "chat",
    "[-m MODEL] [options]",
    "Interactive chat. Type a message and press Enter; the reply is printed as it is\n"
    "generated. With --ev and no --steer the chat starts unsteered and /steer turns\n"
    "steering on.",
    CHAT_COMMANDS
    "\n"
    "Ctrl-C stops the reply being generated and returns to the prompt; the part of the\n"
    "reply already shown stays in the history. Ctrl-C at the prompt (or twice during a\n"
    "reply) quits. When the conversation leaves fewer than min(-n, a quarter of -c)\n"
    "positions for the reply, its oldest turns (a message and its reply) are dropped,\n"
    "never the system message, with a note on stderr. After /steer the next message\n"
    "re-reads the whole conversation with the new steering.",
    sizeof(chat_opts),
    chat_init,
    chat_groups,
    sizeof chat_groups / sizeof chat_groups[0],
    0,
};

/* SIGINTs since the last prompt (0, 1, or 2 = more than one). Set only by on_sigint;
 * the main loop reads it and resets it before each reply. */
static volatile sig_atomic_t g_sigint;

static void on_sigint(int sig) {
    (void)sig;
    g_sigint = g_sigint ? 2 : 1;
}

/* What the user has seen of the reply being generated. */
typedef struct reply_view {
    size_t shown; /* bytes of the reply printed so far */
} reply_view;

/* es_gen_text_fn: prints a piece, or stops the reply once Ctrl-C was pressed (that
 * piece and later ones are not printed). */
static bool print_piece(void *user, int index, const char *text, size_t len) {
    reply_view *v = user;
    (void)index;
    if (g_sigint) return false;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    v->shown += len;
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
    while (h->n > keep)
        free((char *)h->msgs[--h->n].content);
}

/* Drops the oldest turn after the first `keep` messages: a user message and the
 * assistant reply after it. Returns false when only the last message is left. */
static bool history_drop_oldest(history *h, size_t keep) {
    if (h->n < keep + 2) return false;
    size_t k = h->n - keep - 1 >= 2 && !strcmp(h->msgs[keep + 1].role, "assistant") ? 2 : 1;
    for (size_t i = keep; i < keep + k; i++)
        free((char *)h->msgs[i].content);
    memmove(h->msgs + keep, h->msgs + keep + k, (h->n - keep - k) * sizeof *h->msgs);
    h->n -= k;
    return true;
}

/* Tokenizes the history with the generation prompt, dropping its oldest turns until
 * the prompt leaves `reserve` positions of n_ctx for the reply (or no turn is left to
 * drop). Returns an exit code; ES_EXIT_USAGE when even the last message alone does not
 * fit (after a note; the caller drops that message). */
static int fit_prompt(const es_vocab *vocab, es_chat_format fmt, history *h, size_t keep, int n_ctx,
                      int reserve, int32_t **toks, int *n_toks) {
    int dropped = 0;
    for (;;) {
        if (cli_tokenize_chat(vocab, fmt, h->msgs, h->n, true, toks, n_toks) != ES_EXIT_OK)
            return ES_EXIT_FAIL;
        if (*n_toks + reserve <= n_ctx) break;
        if (!history_drop_oldest(h, keep)) break;
        free(*toks);
        *toks = NULL;
        dropped++;
    }
    if (dropped == 1)
        fprintf(stderr, "chat: dropped the oldest turn to fit the context (%d positions)\n", n_ctx);
    if (dropped > 1)
        fprintf(stderr, "chat: dropped the %d oldest turns to fit the context (%d positions)\n",
                dropped, n_ctx);
    if (*n_toks >= n_ctx) {
        fprintf(stderr,
                "chat: this message makes a prompt of %d tokens; the context holds %d: not sent\n",
                *n_toks, n_ctx);
        free(*toks);
        *toks = NULL;
        return ES_EXIT_USAGE;
    }
    return ES_EXIT_OK;
}

/* Applies "/steer SPEC" (or "/steer off": spec NULL): rebuilds the steering from the
 * command line's flags with SPEC as --steer. On success so->steer_spec = spec (which
 * the caller keeps alive) and true; else a note has been printed and nothing changed. */
static bool chat_steer(es_context *ctx, cli_steer_opts *so, const char *spec,
                       es_steer_set **steer) {
    const char *ev_path = so->ev_path, *old_spec = so->steer_spec;
    es_steer_set *ns = NULL;
    so->steer_spec = spec;
    if (!spec) so->ev_path = NULL; /* cli_steer_build wants --ev and --steer together */
    int rc = cli_steer_build(so, "chat", &ns);
    so->ev_path = ev_path;
    if (rc == ES_EXIT_OK && es_context_set_steering(ctx, 0, ns) == ES_OK) {
        es_steer_set_free(*steer);
        *steer = ns;
        if (spec)
            fprintf(stderr, "chat: steering %s\n", spec);
        else
            fprintf(stderr, "chat: unsteered by --ev%s\n", ns ? " (control vectors stay)" : "");
        return true;
    }
    if (rc == ES_EXIT_OK) cli_fail("steering");
    es_steer_set_free(ns);
    so->steer_spec = old_spec;
    return false;
}

/* The note for --ev without --steer: unsteered, and the emotions /steer can use. */
static int note_unsteered(const char *ev_path) {
    es_ev_set *ev = NULL;
    if (es_ev_set_load(ev_path, NULL, &ev) != ES_OK) return cli_fail(ev_path);
    fprintf(stderr,
            "chat: unsteered; /steer EMOTION=ALPHA[,...] turns steering on (%s has:", ev_path);
    for (int k = 0; k < es_ev_set_n_emotions(ev); k++)
        fprintf(stderr, " %s", es_ev_set_emotion(ev, k));
    fprintf(stderr, ")\n");
    es_ev_set_free(ev);
    return ES_EXIT_OK;
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
    int32_t *cached = NULL; /* [n_cached] tokens in the KV cache */
    int n_cached = 0;
    char *line = NULL, *steer_spec = NULL; /* steer_spec: the latest /steer's (malloc'ed) */
    size_t line_cap = 0;
    struct sigaction old_int, act;
    bool handler_set = false;
    sigset_t sigint_set, old_mask;
    sigemptyset(&sigint_set);
    sigaddset(&sigint_set, SIGINT);
    pthread_sigmask(SIG_SETMASK, NULL, &old_mask);

    es_model_params mp = es_model_default_params();
    bool unsteered_ev = so->ev_path && !so->steer_spec; /* --ev alone: /steer turns it on */
    const char *ev_path = so->ev_path;
    if (unsteered_ev) so->ev_path = NULL;
    rc = cli_steer_build(so, "chat", &steer);
    so->ev_path = ev_path;
    if (rc != ES_EXIT_OK) goto done;
    if (unsteered_ev && (rc = note_unsteered(ev_path)) != ES_EXIT_OK) goto done;
    rc = ES_EXIT_FAIL;
    const es_vocab *vocab = NULL;
    if (cli_load_text_model(model_path, &mp, &model, &vocab) != ES_EXIT_OK) goto done;
    es_chat_format fmt;
    if ((rc = cli_chat_format(model, tmpl_name, false, &fmt)) != ES_EXIT_OK) goto done;
    rc = ES_EXIT_FAIL;
    es_context_params cp = es_context_default_params();
    cp.n_ctx = cli_runtime_ctx("chat", o.rt.n_ctx, model);
    cli_runtime_apply(&o.rt, &cp);
    /* The context's worker threads inherit SIGINT blocked, so that it always reaches the
     * main thread (and interrupts its read of stdin); until the handler is in place it
     * waits. */
    pthread_sigmask(SIG_BLOCK, &sigint_set, NULL);
    if (es_context_create(model, &cp, &ctx) != ES_OK) {
        cli_fail("creating the context");
        goto done;
    }
    int n_ctx = es_context_n_ctx(ctx);
    int reserve = (int)ES_MIN(n_predict, (long)(n_ctx / 4));
    if (steer && es_context_set_steering(ctx, 0, steer) != ES_OK) {
        cli_fail("steering");
        goto done;
    }
    if (system && !history_add(&h, "system", system)) goto done;
    size_t n_keep = h.n;

    /* no SA_RESTART: Ctrl-C at the prompt must interrupt getline */
    memset(&act, 0, sizeof act);
    act.sa_handler = on_sigint;
    sigemptyset(&act.sa_mask);
    act.sa_flags = 0;
    sigaction(SIGINT, &act, &old_int);
    handler_set = true;
    g_sigint = 0;
    pthread_sigmask(SIG_UNBLOCK, &sigint_set, NULL);

    bool tty = isatty(STDIN_FILENO);
    fprintf(stderr,
            "chat: format %s, %d positions; /help lists the commands, /exit or Ctrl-C quits\n",
            es_chat_format_name(fmt), n_ctx);
    if (steer && so->steer_spec) fprintf(stderr, "chat: steering %s\n", so->steer_spec);
    const char *stops[1] = {es_chat_end_of_turn(fmt)};
    for (;;) {
        if (tty) {
            fputs("\n> ", stdout);
            fflush(stdout);
        }
        errno = 0;
        ssize_t got = g_sigint ? -1 : getline(&line, &line_cap, stdin);
        if (got < 0) {
            if (g_sigint) { /* Ctrl-C at the prompt */
                if (tty) fputs("\n", stdout);
                break;
            }
            if (errno == EINTR) { /* another signal */
                clearerr(stdin);
                continue;
            }
            if (tty) fputs("\n", stdout);
            break; /* end of input */
        }
        while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r'))
            line[--got] = '\0';
        if (got == 0) continue;
        const char *message = line;
        if (line[0] == '/' && line[1] == '/') {
            message = line + 1; /* "//TEXT" sends "/TEXT" */
        } else if (line[0] == '/') {
            size_t wlen = strcspn(line, " \t");
            const char *arg = line + wlen + strspn(line + wlen, " \t");
            char word[16] = "";
            if (wlen < sizeof word) {
                memcpy(word, line, wlen);
                word[wlen] = '\0';
            }
            if (!strcmp(word, "/steer")) {
                if (!so->ev_path) {
                    fprintf(stderr, "chat: /steer needs --ev FILE on the command line\n");
                } else if (!*arg) {
                    fprintf(stderr, "chat: /steer wants EMOTION=ALPHA[,...] or off; now %s%s\n",
                            so->steer_spec ? "steering " : "unsteered",
                            so->steer_spec ? so->steer_spec : "");
                } else {
                    bool off = !strcmp(arg, "off");
                    char *spec = off ? NULL : es_strdup_cli(arg);
                    if (!off && !spec) goto done;
                    if (chat_steer(ctx, so, spec, &steer)) {
                        free(steer_spec);
                        steer_spec = spec;
                        n_cached = 0; /* re-read the conversation with the new steering */
                    } else {
                        free(spec);
                    }
                }
                continue;
            }
            bool known = !strcmp(word, "/help") || !strcmp(word, "/exit") ||
                         !strcmp(word, "/quit") || !strcmp(word, "/reset");
            if (!known) {
                fprintf(stderr, "chat: unknown command %.*s; /help lists them\n",
                        (int)ES_MIN(wlen, 64), line);
                continue;
            }
            if (*arg) {
                fprintf(stderr, "chat: %s takes no arguments\n", word);
                continue;
            }
            if (!strcmp(word, "/help")) {
                fputs(CHAT_COMMANDS, stdout);
                fflush(stdout);
                continue;
            }
            if (!strcmp(word, "/reset")) {
                history_clear(&h, n_keep);
                fprintf(stderr, "chat: history cleared\n");
                continue;
            }
            break; /* /exit, /quit */
        }
        if (!history_add(&h, "user", message)) goto done;
        int32_t *toks = NULL;
        int n_toks = 0;
        int fit = fit_prompt(vocab, fmt, &h, n_keep, n_ctx, reserve, &toks, &n_toks);
        if (fit != ES_EXIT_OK) {
            history_clear(&h, h.n - 1);
            continue;
        }
        int common = 0;
        while (common < n_cached && common < n_toks - 1 && cached[common] == toks[common])
            common++;
        es_gen_params gp = es_gen_default_params();
        gp.n_predict = (int)n_predict;
        gp.sampling = sp;
        gp.stops = stops;
        gp.n_stops = stops[0][0] ? 1 : 0;
        gp.n_cached = &common;
        es_gen_output out = {0};
        const int32_t *prompts[1] = {toks};
        reply_view view = {0};
        g_sigint = 0;
        es_status st = es_generate(ctx, vocab, prompts, &n_toks, 1, &gp, print_piece, &view, &out);
        clearerr(stdout); /* a write cut short by Ctrl-C */
        printf("\n");
        fflush(stdout);
        if (st != ES_OK) {
            cli_fail("generating");
            free(toks);
            history_clear(&h, h.n - 1);
            es_kv_clear(ctx, 0);
            n_cached = 0;
            if (g_sigint > 1) break;
            g_sigint = 0;
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
        bool stopped = g_sigint > 0;
        if (out.stop == ES_GEN_STOP_CONTEXT)
            fprintf(stderr,
                    "chat: the reply stopped: the context (%d positions) is full; the oldest turns "
                    "are dropped for the next message\n",
                    n_ctx);
        if (stopped && view.shown < out.text_len)
            out.text[view.shown] = '\0'; /* keep what was shown */
        bool ok = history_add(&h, "assistant", out.text);
        es_gen_output_free(&out);
        if (!ok) goto done;
        if (g_sigint > 1) break; /* Ctrl-C twice during the reply */
        if (stopped)
            fprintf(
                stderr,
                "chat: reply stopped; what was shown stays in the history (Ctrl-C again quits)\n");
        g_sigint = 0;
    }
    rc = ES_EXIT_OK;
done:
    if (handler_set) sigaction(SIGINT, &old_int, NULL);
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    free(line);
    free(steer_spec);
    free(cached);
    history_clear(&h, 0);
    free(h.msgs);
    es_context_free(ctx);
    es_steer_set_free(steer);
    es_model_free(model);
    return rc;
}
