/* cmd_activations.c — `emosteer activations`: run tokens through a model and write the
 * logits and every hook activation to a GGUF file, with the tensor names and shapes of
 * ../shared/fixtures/NAME.ref.gguf:
 *   tokens        I32 [n_tok]
 *   logits        F32 [n_vocab, n_tok]   (GGUF order, fastest first)
 *   attn_out.i, mlp_out.i, block_out.i   F32 [n_embd, n_tok] for every layer i
 *
 * On an encoder classifier (architecture bert) it writes the keys of the encoder fixtures
 * instead: tokens, token_types (I32 [n_tok]), emb_out, attn_ln.i, hidden.i (F32 [n_embd,
 * n_tok]), pooled [n_embd], class_logits, class_probs [n_labels]; -p/--pair give a text
 * (pair) framed as the classifier frames it, --token-types the segments of --tokens.
 *
 * Layout: options are parsed into act_opts (act_parse, from the tables below), then
 * act_run does the work.
 * The steering flags of steer_opts.c (--ev/--steer, --control-vector[-scaled], ...)
 * are attached to every sequence of the context before the decode. */
#include "cli.h"
#include "opts.h"
#include "steer_opts.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

typedef struct act_opts {
    cli_runtime_opts rt;  /* -m, -t, --kv-type, --numerics */
    cli_int_list tokens;  /* --tokens (malloc'ed) or from --prompt */
    const char *prompt;   /* -p: tokenized with the model's vocabulary (BOS as the vocab asks) */
    const char *out;      /* -o */
    cli_steer_opts steer; /* --ev/--steer/--control-vector... (steer_opts.c) */
    cli_int_list token_types; /* --token-types (encoders; malloc'ed) */
    const char *pair;         /* --pair: second segment for -p (encoders) */
} act_opts;

/* Captured activations: act[hp] is [n_layer][n_tok][n_embd]. */
typedef struct act_capture {
    int n_layer, n_tok, n_embd;
    float *act[ES_HOOK_COUNT];
} act_capture;

#define AO(f) offsetof(act_opts, f)
static const cli_opt act_own[] = {
    {NULL, "--tokens", "LIST", CLI_INT_LIST, 0, 2147483647, AO(tokens), "comma-separated token ids",
     NULL, NULL, 0, 0},
    {"-p", "--prompt", "TEXT", CLI_STR, 0, 0, AO(prompt),
     "text, tokenized with the model's tokenizer instead of --tokens", NULL, NULL, 0, 0},
    {"-o", "--output", "PATH", CLI_PATH, 0, 0, AO(out), "the GGUF file to write", NULL, NULL, 0, 0},
    {NULL, "--token-types", "LIST", CLI_INT_LIST, 0, 65535, AO(token_types),
     "encoders: comma-separated token types (segment ids) of --tokens", NULL, NULL, 0, 0},
    {NULL, "--pair", "TEXT", CLI_STR, 0, 0, AO(pair),
     "encoders: second segment after -p (NLI hypothesis)", NULL, NULL, 0, 0},
};
static const cli_opt_group act_group = {"options", act_own, sizeof act_own / sizeof act_own[0]};

static const cli_group_use act_groups[] = {
    {&act_group, 0, 0},
    {&cli_runtime_group, AO(rt), CLI_RT_CTX | CLI_RT_BATCH},
    {&cli_steer_group, AO(steer), 0},
};

static void act_init(void *p) {
    act_opts *o = p;
    cli_runtime_init(&o->rt);
    cli_steer_init(&o->steer);
}

const cli_command cli_activations_cmd = {
    "activations",
    "[-m MODEL] (--tokens 1,5,9,... | -p TEXT) -o OUT.gguf [options]",
    "Runs the tokens through the model as one batch and writes F32 tensors 'logits'\n"
    "[n_vocab, n_tok] and 'attn_out.i', 'mlp_out.i', 'block_out.i' [n_embd, n_tok] for\n"
    "every layer i, plus 'tokens' (I32), in GGUF.",
    "Steering flags apply to the run; the activations written are the steered ones\n"
    "(block_out.i includes what was added at block i).",
    sizeof(act_opts),
    act_init,
    act_groups,
    sizeof act_groups / sizeof act_groups[0],
    0,
};

/* Returns -1 to go on, or an exit code. */
static int act_parse(int argc, char **argv, act_opts *o) {
    int rc = cli_opts_parse(&cli_activations_cmd, o, argc, argv, NULL);
    if (rc >= 0) return rc;
    if (!o->out) return cli_usage_error("activations", "-o OUT.gguf is required");
    if (!o->tokens.v && !o->prompt) return cli_usage_error("activations", "give --tokens or -p");
    if (o->tokens.v && o->prompt)
        return cli_usage_error("activations", "give --tokens or -p, not both");
    if (o->pair && !o->prompt) return cli_usage_error("activations", "--pair needs -p");
    if (o->token_types.v && !o->tokens.v)
        return cli_usage_error("activations", "--token-types needs --tokens");
    if (o->token_types.v && o->token_types.n != o->tokens.n)
        return cli_usage_error("activations", "--token-types has %d entries for %d tokens",
                               o->token_types.n, o->tokens.n);
    return -1;
}

static void act_hook(void *user, es_hook_point hp, int layer, float *x, int n_tokens, int n_embd,
                     const es_batch *batch) {
    act_capture *c = user;
    (void)batch;
    if (layer < 0 || layer >= c->n_layer || n_tokens != c->n_tok || n_embd != c->n_embd) return;
    memcpy(c->act[hp] + (size_t)layer * n_tokens * n_embd, x,
           (size_t)n_tokens * n_embd * sizeof(float));
}

static es_status tokenize_prompt(const es_model *m, act_opts *o) {
    const es_vocab *v = es_model_vocab(m);
    if (!v) return es_error(ES_ERR_NOT_FOUND, "the model has no tokenizer; use --tokens");
    size_t len = strlen(o->prompt);
    int32_t cap = (int32_t)ES_MIN(len + 8, (size_t)1 << 20), n = 0;
    o->tokens.v = malloc((size_t)cap * sizeof *o->tokens.v);
    if (!o->tokens.v) return es_error(ES_ERR_NOMEM, "out of memory");
    es_status st = es_tokenize(v, o->prompt, len, true, false, o->tokens.v, cap, &n);
    if (st != ES_OK) return st;
    if (n < 1) return es_error(ES_ERR_INVALID_ARG, "the prompt gives no tokens");
    o->tokens.n = n;
    return ES_OK;
}

static es_status write_output(const act_opts *o, const es_model_info *in, const act_capture *cap,
                              const float *logits) {
    es_gguf_writer *w = es_gguf_writer_new();
    if (!w) return es_error(ES_ERR_NOMEM, "out of memory");
    es_status st = es_gguf_writer_set_str(w, "general.architecture", "activations");
    if (st == ES_OK) st = es_gguf_writer_set_str(w, "activations.arch", in->arch);
    if (st == ES_OK) st = es_gguf_writer_set_str(w, "activations.model", o->rt.model);
    int64_t ne_tok[1] = {o->tokens.n};
    int64_t ne_logits[2] = {in->n_vocab, o->tokens.n};
    int64_t ne_act[2] = {in->n_embd, o->tokens.n};
    if (st == ES_OK)
        st = es_gguf_writer_add_tensor(w, "tokens", ES_TYPE_I32, 1, ne_tok, o->tokens.v);
    if (st == ES_OK) st = es_gguf_writer_add_tensor(w, "logits", ES_TYPE_F32, 2, ne_logits, logits);
    for (int l = 0; l < in->n_layer && st == ES_OK; l++)
        for (int hp = 0; hp < ES_HOOK_COUNT && st == ES_OK; hp++) {
            char name[64];
            snprintf(name, sizeof name, "%s.%d", es_hook_name((es_hook_point)hp), l);
            st = es_gguf_writer_add_tensor(w, name, ES_TYPE_F32, 2, ne_act,
                                           cap->act[hp] + (size_t)l * o->tokens.n * in->n_embd);
        }
    if (st == ES_OK) st = es_gguf_writer_write(w, o->out);
    es_gguf_writer_free(w);
    return st;
}

/* ---- encoders: the keys of ../shared/fixtures/{bert,roberta}_cls.ref.gguf ---- */

static es_status write_encoder(const act_opts *o, const es_model_info *in, es_classifier *c,
                               const int32_t *tok, const int32_t *typ, int n,
                               const es_encoder_activations *a, const float *probs) {
    es_gguf_writer *w = es_gguf_writer_new();
    if (!w) return es_error(ES_ERR_NOMEM, "out of memory");
    es_status st = es_gguf_writer_set_str(w, "general.architecture", "activations");
    if (st == ES_OK) st = es_gguf_writer_set_str(w, "activations.arch", in->arch);
    if (st == ES_OK) st = es_gguf_writer_set_str(w, "activations.model", o->rt.model);
    const int L = es_classifier_n_labels(c);
    const char **labels = malloc((size_t)L * sizeof *labels);
    if (!labels) st = es_error(ES_ERR_NOMEM, "out of memory");
    for (int i = 0; st == ES_OK && i < L; i++)
        labels[i] = es_classifier_label(c, i);
    if (st == ES_OK) st = es_gguf_writer_set_arr_str(w, "activations.labels", labels, (uint64_t)L);
    if (st == ES_OK)
        st = es_gguf_writer_set_bool(w, "activations.has_pooler", es_classifier_has_pooler(c));
    free(labels);
    int64_t ne_tok[1] = {n}, ne_act[2] = {in->n_embd, n}, ne_vec[1] = {in->n_embd}, ne_lab[1] = {L};
    if (st == ES_OK) st = es_gguf_writer_add_tensor(w, "tokens", ES_TYPE_I32, 1, ne_tok, tok);
    if (st == ES_OK) st = es_gguf_writer_add_tensor(w, "token_types", ES_TYPE_I32, 1, ne_tok, typ);
    if (st == ES_OK) st = es_gguf_writer_add_tensor(w, "emb_out", ES_TYPE_F32, 2, ne_act, a->emb);
    for (int l = 0; l < in->n_layer && st == ES_OK; l++) {
        char name[64];
        const size_t off = (size_t)l * n * in->n_embd;
        snprintf(name, sizeof name, "attn_ln.%d", l);
        st = es_gguf_writer_add_tensor(w, name, ES_TYPE_F32, 2, ne_act, a->attn_ln + off);
        snprintf(name, sizeof name, "hidden.%d", l);
        if (st == ES_OK)
            st = es_gguf_writer_add_tensor(w, name, ES_TYPE_F32, 2, ne_act, a->hidden + off);
    }
    if (st == ES_OK) st = es_gguf_writer_add_tensor(w, "pooled", ES_TYPE_F32, 1, ne_vec, a->pooled);
    if (st == ES_OK)
        st = es_gguf_writer_add_tensor(w, "class_logits", ES_TYPE_F32, 1, ne_lab, a->logits);
    if (st == ES_OK)
        st = es_gguf_writer_add_tensor(w, "class_probs", ES_TYPE_F32, 1, ne_lab, probs);
    if (st == ES_OK) st = es_gguf_writer_write(w, o->out);
    es_gguf_writer_free(w);
    return st;
}

static int act_run_encoder(act_opts *o, es_model *m, const es_model_info *in, bool steering) {
    if (steering)
        return cli_usage_error("activations",
                               "steering flags do not apply to an encoder classifier");
    es_classifier *c = NULL;
    const int nt = o->rt.n_threads > 0 ? o->rt.n_threads : es_cpu_count();
    if (es_classifier_create(m, nt, &c) != ES_OK) return cli_fail("cannot create the classifier");
    int rc = ES_EXIT_FAIL, n = 0;
    int32_t *tok = NULL, *typ = NULL;
    es_encoder_activations a = {0};
    float *probs = NULL;
    if (o->prompt) {
        if (es_classifier_tokenize(c, o->prompt, o->pair, &tok, &typ, &n) != ES_OK) {
            rc = cli_fail("cannot tokenize the prompt");
            goto done;
        }
    } else {
        n = o->tokens.n;
        tok = malloc((size_t)n * sizeof *tok);
        typ = calloc((size_t)n, sizeof *typ);
        if (!tok || !typ) goto nomem;
        memcpy(tok, o->tokens.v, (size_t)n * sizeof *tok);
        if (o->token_types.v) memcpy(typ, o->token_types.v, (size_t)n * sizeof *typ);
    }
    const int L = es_classifier_n_labels(c);
    a.emb = malloc((size_t)n * in->n_embd * sizeof(float));
    a.attn_ln = malloc((size_t)in->n_layer * n * in->n_embd * sizeof(float));
    a.hidden = malloc((size_t)in->n_layer * n * in->n_embd * sizeof(float));
    a.pooled = malloc((size_t)in->n_embd * sizeof(float));
    a.logits = malloc((size_t)L * sizeof(float));
    probs = malloc((size_t)L * sizeof(float));
    if (!a.emb || !a.attn_ln || !a.hidden || !a.pooled || !a.logits || !probs) goto nomem;
    if (es_classifier_activations(c, tok, typ, NULL, 1, n, &a) != ES_OK) {
        rc = cli_fail("encoder");
        goto done;
    }
    float mx = a.logits[0];
    for (int i = 1; i < L; i++)
        mx = a.logits[i] > mx ? a.logits[i] : mx;
    double sum = 0;
    for (int i = 0; i < L; i++)
        sum += exp((double)a.logits[i] - mx);
    for (int i = 0; i < L; i++)
        probs[i] = (float)(exp((double)a.logits[i] - mx) / sum);
    if (write_encoder(o, in, c, tok, typ, n, &a, probs) != ES_OK) {
        rc = cli_fail("cannot write the output");
        goto done;
    }
    if (!es_classifier_has_pooler(c))
        fprintf(
            stderr,
            "emosteer activations: note: the model has no pooler (cls.weight); its scores lack the "
            "trained pooler\n");
    fprintf(stderr, "emosteer activations: encoder, %d tokens, %d layers, %d labels -> %s\n", n,
            in->n_layer, L, o->out);
    rc = ES_EXIT_OK;
    goto done;
nomem:
    es_error(ES_ERR_NOMEM, "out of memory for the activations");
    rc = cli_fail("activations");
done:
    free(tok);
    free(typ);
    free(a.emb);
    free(a.attn_ln);
    free(a.hidden);
    free(a.pooled);
    free(a.logits);
    free(probs);
    es_classifier_free(c);
    return rc;
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
    if (es_model_load(o->rt.model, NULL, &m) != ES_OK) {
        es_steer_set_free(steer);
        return cli_fail("cannot load the model");
    }
    es_model_info ein;
    es_model_get_info(m, &ein);
    if (ein.is_encoder) { /* encoder classifiers */
        rc = act_run_encoder(o, m, &ein, steer != NULL);
        goto done;
    }
    if (o->token_types.v || o->pair) {
        rc = cli_usage_error("activations", "--token-types and --pair are for encoder models");
        goto done;
    }
    if (o->prompt && tokenize_prompt(m, o) != ES_OK) {
        rc = cli_fail("cannot tokenize the prompt");
        goto done;
    }
    es_model_info in;
    es_model_get_info(m, &in);
    es_context_params cp = es_context_default_params();
    cp.n_ctx = o->tokens.n;
    cp.n_batch = o->tokens.n;
    cli_runtime_apply(&o->rt, &cp);
    if (o->tokens.n > in.n_ctx_train) {
        es_error(ES_ERR_RANGE, "%d tokens exceed the model's context of %d", o->tokens.n,
                 in.n_ctx_train);
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
    cap.n_tok = o->tokens.n;
    cap.n_embd = in.n_embd;
    for (int hp = 0; hp < ES_HOOK_COUNT; hp++) {
        cap.act[hp] = calloc((size_t)in.n_layer * o->tokens.n, (size_t)in.n_embd * sizeof(float));
        if (!cap.act[hp]) {
            es_error(ES_ERR_NOMEM, "out of memory for the activations");
            rc = cli_fail("activations");
            goto done;
        }
    }
    logits = calloc((size_t)o->tokens.n, (size_t)in.n_vocab * sizeof(float));
    want = malloc((size_t)o->tokens.n);
    if (!logits || !want) {
        es_error(ES_ERR_NOMEM, "out of memory for the logits");
        rc = cli_fail("activations");
        goto done;
    }
    memset(want, 1, (size_t)o->tokens.n);
    es_set_hook(ctx, act_hook, &cap);
    es_batch b = {o->tokens.n, o->tokens.v, NULL, NULL, want};
    if (es_decode(ctx, &b) != ES_OK) {
        rc = cli_fail("decode");
        goto done;
    }
    for (int i = 0; i < o->tokens.n; i++)
        memcpy(logits + (size_t)i * in.n_vocab, es_get_logits(ctx, i),
               (size_t)in.n_vocab * sizeof(float));
    if (write_output(o, &in, &cap, logits) != ES_OK) {
        rc = cli_fail("cannot write the output");
        goto done;
    }
    fprintf(stderr, "emosteer activations: %d tokens, %d layers -> %s\n", o->tokens.n, in.n_layer,
            o->out);
    rc = ES_EXIT_OK;
done:
    for (int hp = 0; hp < ES_HOOK_COUNT; hp++)
        free(cap.act[hp]);
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
    cli_opts_free(&cli_activations_cmd, &o);
    return rc;
}
