/* cmd_activations.c — `emosteer activations`: run tokens through a model and write the
 * logits and every hook activation to a GGUF file, with the tensor names and shapes of
 * ../shared/fixtures/NAME.ref.gguf:
 *   tokens        I32 [n_tok]
 *   logits        F32 [n_vocab, n_tok]   (GGUF order, fastest first)
 *   attn_out.i, mlp_out.i, block_out.i   F32 [n_embd, n_tok] for every layer i
 *
 * Layout: options are parsed into act_opts (act_parse), then act_run does the work.
 * The steering flags of steer_opts.c (--ev/--steer, --control-vector[-scaled], ...)
 * are attached to every sequence of the context before the decode. */
#include "cli.h"
#include "steer_opts.h"

#include <stdlib.h>
#include <string.h>

typedef struct act_opts {
    const char *model;    /* -m */
    int32_t *tokens;      /* --tokens (malloc'ed) or from --prompt */
    int n_tokens;
    const char *prompt;   /* -p: tokenized with the model's vocabulary (BOS as the vocab asks) */
    const char *out;      /* -o */
    int n_threads;        /* -t */
    cli_steer_opts steer; /* --ev/--steer/--control-vector... (steer_opts.c) */
} act_opts;

/* Captured activations: act[hp] is [n_layer][n_tok][n_embd]. */
typedef struct act_capture {
    int n_layer, n_tok, n_embd;
    float *act[ES_HOOK_COUNT];
} act_capture;

static void act_help(FILE *f) {
    fprintf(f, "usage: emosteer activations [-m MODEL] (--tokens 1,5,9,... | -p TEXT) -o OUT.gguf [-t N]\n\n"
               "Runs the tokens through the model as one batch and writes F32 tensors 'logits'\n"
               "[n_vocab, n_tok] and 'attn_out.i', 'mlp_out.i', 'block_out.i' [n_embd, n_tok] for\n"
               "every layer i, plus 'tokens' (I32), in GGUF.\n\n"
               "options:\n"
               "  -m, --model PATH     model (default %s)\n"
               "      --tokens LIST    comma-separated token ids\n"
               "  -p, --prompt TEXT    text, tokenized with the model's tokenizer instead of --tokens\n"
               "  -o, --output PATH    the GGUF file to write\n"
               "  -t, --threads N      worker threads (default: CPUs, at most 8)\n"
               "  -h, --help           this help\n\n"
               "Steering flags apply to the run; the activations written are the steered ones\n"
               "(block_out.i includes what was added at block i).\n\n",
               cli_default_model());
    cli_steer_help(f);
}

/* Returns -1 to go on, or an exit code. */
static int act_parse(int argc, char **argv, act_opts *o) {
    memset(o, 0, sizeof *o);
    o->model = cli_default_model();
    o->n_threads = es_context_default_params().n_threads;
    cli_steer_init(&o->steer);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const bool has_val = i + 1 < argc;
        int r;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            act_help(stdout);
            return ES_EXIT_OK;
        } else if ((r = cli_steer_parse_arg(&o->steer, "activations", argc, argv, &i)) != 0) {
            if (r < 0) return ES_EXIT_USAGE;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!has_val) return cli_usage_error("activations", "%s needs a path", a);
            o->model = argv[++i];
        } else if (!strcmp(a, "--tokens")) {
            if (!has_val) return cli_usage_error("activations", "--tokens needs a list");
            free(o->tokens);
            o->tokens = NULL;
            if (!cli_parse_int_list(argv[++i], &o->tokens, &o->n_tokens) || o->n_tokens < 1)
                return cli_usage_error("activations", "bad token list '%s'", argv[i]);
        } else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) {
            if (!has_val) return cli_usage_error("activations", "%s needs text", a);
            o->prompt = argv[++i];
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            if (!has_val) return cli_usage_error("activations", "%s needs a path", a);
            o->out = argv[++i];
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            long v;
            if (!has_val || !cli_parse_int(argv[++i], 1, 512, &v))
                return cli_usage_error("activations", "%s needs a number in [1, 512]", a);
            o->n_threads = (int)v;
        } else {
            return cli_usage_error("activations", "unknown option '%s'", a);
        }
    }
    if (!o->out) return cli_usage_error("activations", "-o OUT.gguf is required");
    if (!o->tokens && !o->prompt) return cli_usage_error("activations", "give --tokens or -p");
    if (o->tokens && o->prompt) return cli_usage_error("activations", "give --tokens or -p, not both");
    return -1;
}

static void act_hook(void *user, es_hook_point hp, int layer, float *x, int n_tokens, int n_embd,
                     const es_batch *batch) {
    act_capture *c = user;
    (void)batch;
    if (layer < 0 || layer >= c->n_layer || n_tokens != c->n_tok || n_embd != c->n_embd) return;
    memcpy(c->act[hp] + (size_t)layer * n_tokens * n_embd, x, (size_t)n_tokens * n_embd * sizeof(float));
}

static es_status tokenize_prompt(const es_model *m, act_opts *o) {
    const es_vocab *v = es_model_vocab(m);
    if (!v) return es_error(ES_ERR_NOT_FOUND, "the model has no tokenizer; use --tokens");
    size_t len = strlen(o->prompt);
    int32_t cap = (int32_t)ES_MIN(len + 8, (size_t)1 << 20), n = 0;
    o->tokens = malloc((size_t)cap * sizeof *o->tokens);
    if (!o->tokens) return es_error(ES_ERR_NOMEM, "out of memory");
    es_status st = es_tokenize(v, o->prompt, len, true, false, o->tokens, cap, &n);
    if (st != ES_OK) return st;
    if (n < 1) return es_error(ES_ERR_INVALID_ARG, "the prompt gives no tokens");
    o->n_tokens = n;
    return ES_OK;
}

static es_status write_output(const act_opts *o, const es_model_info *in, const act_capture *cap,
                              const float *logits) {
    es_gguf_writer *w = es_gguf_writer_new();
    if (!w) return es_error(ES_ERR_NOMEM, "out of memory");
    es_status st = es_gguf_writer_set_str(w, "general.architecture", "activations");
    if (st == ES_OK) st = es_gguf_writer_set_str(w, "activations.arch", in->arch);
    if (st == ES_OK) st = es_gguf_writer_set_str(w, "activations.model", o->model);
    int64_t ne_tok[1] = {o->n_tokens};
    int64_t ne_logits[2] = {in->n_vocab, o->n_tokens};
    int64_t ne_act[2] = {in->n_embd, o->n_tokens};
    if (st == ES_OK) st = es_gguf_writer_add_tensor(w, "tokens", ES_TYPE_I32, 1, ne_tok, o->tokens);
    if (st == ES_OK) st = es_gguf_writer_add_tensor(w, "logits", ES_TYPE_F32, 2, ne_logits, logits);
    for (int l = 0; l < in->n_layer && st == ES_OK; l++)
        for (int hp = 0; hp < ES_HOOK_COUNT && st == ES_OK; hp++) {
            char name[64];
            snprintf(name, sizeof name, "%s.%d", es_hook_name((es_hook_point)hp), l);
            st = es_gguf_writer_add_tensor(w, name, ES_TYPE_F32, 2, ne_act,
                                           cap->act[hp] + (size_t)l * o->n_tokens * in->n_embd);
        }
    if (st == ES_OK) st = es_gguf_writer_write(w, o->out);
    es_gguf_writer_free(w);
    return st;
}

static int act_run(act_opts *o) {
    int rc = ES_EXIT_FAIL;
    es_model *m = NULL;
    es_context *ctx = NULL;
    act_capture cap = {0};
    float *logits = NULL;
    int8_t *want = NULL;
    es_steer_set *steer = NULL;
    if ((rc = cli_steer_build(&o->steer, "activations", &steer)) != ES_EXIT_OK) return rc;
    rc = ES_EXIT_FAIL;
    if (es_model_load(o->model, NULL, &m) != ES_OK) {
        es_steer_set_free(steer);
        return cli_fail("cannot load the model");
    }
    if (o->prompt && tokenize_prompt(m, o) != ES_OK) {
        rc = cli_fail("cannot tokenize the prompt");
        goto done;
    }
    es_model_info in;
    es_model_get_info(m, &in);
    es_context_params cp = es_context_default_params();
    cp.n_ctx = o->n_tokens;
    cp.n_batch = o->n_tokens;
    cp.n_threads = o->n_threads;
    if (o->n_tokens > in.n_ctx_train) {
        es_error(ES_ERR_RANGE, "%d tokens exceed the model's context of %d", o->n_tokens, in.n_ctx_train);
        rc = cli_fail("too many tokens");
        goto done;
    }
    if (es_context_create(m, &cp, &ctx) != ES_OK) {
        rc = cli_fail("cannot create a context");
        goto done;
    }
    if (steer && es_context_set_steering(ctx, -1, steer) != ES_OK) {
        rc = cli_fail("steering");
        goto done;
    }
    cap.n_layer = in.n_layer;
    cap.n_tok = o->n_tokens;
    cap.n_embd = in.n_embd;
    for (int hp = 0; hp < ES_HOOK_COUNT; hp++) {
        cap.act[hp] = calloc((size_t)in.n_layer * o->n_tokens, (size_t)in.n_embd * sizeof(float));
        if (!cap.act[hp]) {
            es_error(ES_ERR_NOMEM, "out of memory for the activations");
            rc = cli_fail("activations");
            goto done;
        }
    }
    logits = calloc((size_t)o->n_tokens, (size_t)in.n_vocab * sizeof(float));
    want = malloc((size_t)o->n_tokens);
    if (!logits || !want) {
        es_error(ES_ERR_NOMEM, "out of memory for the logits");
        rc = cli_fail("activations");
        goto done;
    }
    memset(want, 1, (size_t)o->n_tokens);
    es_set_hook(ctx, act_hook, &cap);
    es_batch b = {o->n_tokens, o->tokens, NULL, NULL, want};
    if (es_decode(ctx, &b) != ES_OK) {
        rc = cli_fail("decode");
        goto done;
    }
    for (int i = 0; i < o->n_tokens; i++)
        memcpy(logits + (size_t)i * in.n_vocab, es_get_logits(ctx, i), (size_t)in.n_vocab * sizeof(float));
    if (write_output(o, &in, &cap, logits) != ES_OK) {
        rc = cli_fail("cannot write the output");
        goto done;
    }
    fprintf(stderr, "emosteer activations: %d tokens, %d layers -> %s\n", o->n_tokens, in.n_layer, o->out);
    rc = ES_EXIT_OK;
done:
    for (int hp = 0; hp < ES_HOOK_COUNT; hp++) free(cap.act[hp]);
    free(logits);
    free(want);
    es_context_free(ctx);
    es_model_free(m);
    es_steer_set_free(steer);
    return rc;
}

int cmd_activations(int argc, char **argv) {
    act_opts o;
    int rc = act_parse(argc, argv, &o);
    if (rc < 0) rc = act_run(&o);
    free(o.tokens);
    return rc;
}
