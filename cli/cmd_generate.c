/*
 * cmd_generate.c — `emosteer generate`: continue a prompt (or answer it through the
 * model's chat template with --chat), streaming tokens to stdout as they come,
 * optionally steered with emotion vectors or llama.cpp control vectors.
 */
#include "cli.h"
#include "gen_util.h"
#include "opts.h"
#include "steer_opts.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

typedef struct gen_opts {
    cli_runtime_opts rt;
    es_sampler_params sp;
    long n_predict;
    cli_chat_opts chat;
    cli_steer_opts steer;
    const char *prompt, *prompt_file; /* -p, -f */
    cli_strs stops;                   /* --stop */
    bool ignore_eos, no_display_prompt;
} gen_opts;

#define GO(f) offsetof(gen_opts, f)
static const cli_opt gen_own[] = {
    {"-p", "--prompt", "TEXT", CLI_STR, 0, 0, GO(prompt), "the prompt", NULL, NULL, 0, 0},
    {"-f", "--file", "FILE", CLI_PATH, 0, 0, GO(prompt_file), "read the prompt from FILE", NULL,
     NULL, 0, 0},
    {NULL, "--stop", "TEXT", CLI_STRS, 0, 0, GO(stops),
     "stop when TEXT is generated (repeatable, at most 16)", NULL, NULL, 0, 0},
    {NULL, "--ignore-eos", NULL, CLI_FLAG, 0, 0, GO(ignore_eos),
     "keep going past end-of-generation tokens", NULL, NULL, 0, 0},
    {NULL, "--no-display-prompt", NULL, CLI_FLAG, 0, 0, GO(no_display_prompt),
     "print only the generated text", NULL, NULL, 0, 0},
};
static const cli_opt_group gen_group = {"options", gen_own, sizeof gen_own / sizeof gen_own[0]};

static const cli_group_use gen_groups[] = {
    {&gen_group, 0, 0},
    {&cli_runtime_group, GO(rt), CLI_RT_BATCH},
    {&cli_check_finite_group, GO(rt), 0},
    {&cli_n_predict_group, GO(n_predict), 0},
    {&cli_sampling_group, GO(sp), 0},
    {&cli_chat_group, GO(chat), 0},
    {&cli_steer_group, GO(steer), 0},
};

static void gen_init(void *p) {
    gen_opts *o = p;
    cli_runtime_init(&o->rt);
    o->sp = es_sampler_default_params();
    o->n_predict = 128;
    cli_steer_init(&o->steer);
}

const cli_command cli_generate_cmd = {
    "generate",
    "[-m MODEL] -p TEXT [options]",
    "Generates a continuation of TEXT and streams it to stdout.",
    "example: emosteer generate -p \"The letter arrived and\" --ev models/demo-16m.ev.gguf --steer "
    "joy=1.5\n\n"
    "exit status: 0 done (-n tokens, end of generation or a --stop string), 1 failure, 2 usage "
    "error,\n"
    "3 stopped because the context (-c) is full: the text printed so far is kept.",
    sizeof(gen_opts),
    gen_init,
    gen_groups,
    sizeof gen_groups / sizeof gen_groups[0],
    0,
};

static bool print_piece(void *user, int index, const char *text, size_t len) {
    (void)user, (void)index;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return true;
}

int cmd_generate(int argc, char **argv) {
    gen_opts o;
    int rc = cli_opts_parse(&cli_generate_cmd, &o, argc, argv, NULL);
    if (rc >= 0) return rc;
    const char *model_path = o.rt.model, *prompt = o.prompt, *prompt_file = o.prompt_file;
    const char *system = o.chat.system, *tmpl_name = o.chat.tmpl_name;
    long n_predict = o.n_predict;
    bool chat = o.chat.chat || system || tmpl_name, ignore_eos = o.ignore_eos,
         show_prompt = !o.no_display_prompt;
    const char *stops[CLI_MAX_STRS + 1];
    size_t n_stops = 0;
    for (int i = 0; i < o.stops.n; i++)
        stops[n_stops++] = o.stops.v[i];
    es_sampler_params sp = o.sp;

    char *file_text = NULL;
    if (prompt_file) {
        size_t len;
        if ((rc = cli_read_text("generate", prompt_file, &file_text, &len)) != ES_EXIT_OK)
            return rc;
        prompt = file_text;
    }
    if (!prompt) {
        free(file_text);
        return cli_usage_error("generate", "no prompt: give one with -p TEXT or -f FILE");
    }

    rc = ES_EXIT_FAIL;
    es_model *model = NULL;
    es_context *ctx = NULL;
    es_steer_set *steer = NULL;
    int32_t *toks = NULL;
    int n_toks = 0;
    es_gen_output out = {0};
    es_model_params mp = es_model_default_params();
    mp.check_finite = o.rt.check_finite;
    if ((rc = cli_steer_build(&o.steer, "generate", &steer)) != ES_EXIT_OK) goto done;
    rc = ES_EXIT_FAIL;
    const es_vocab *vocab = NULL;
    if (cli_load_text_model(model_path, &mp, &model, &vocab) != ES_EXIT_OK) goto done;
    es_chat_format fmt = ES_CHAT_NONE;
    if (chat) {
        if ((rc = cli_chat_format(model, tmpl_name, false, &fmt)) != ES_EXIT_OK) goto done;
        rc = ES_EXIT_FAIL;
        es_chat_msg msgs[2];
        size_t n_msgs = 0;
        if (system) msgs[n_msgs++] = (es_chat_msg){"system", system};
        msgs[n_msgs++] = (es_chat_msg){"user", prompt};
        if (cli_tokenize_chat(vocab, fmt, msgs, n_msgs, true, &toks, &n_toks) != ES_EXIT_OK)
            goto done;
        if (fmt != ES_CHAT_NONE && es_chat_end_of_turn(fmt)[0])
            stops[n_stops++] = es_chat_end_of_turn(fmt);
    } else if (cli_tokenize_text(vocab, prompt, &toks, &n_toks) != ES_EXIT_OK) {
        goto done;
    }
    es_context_params cp = es_context_default_params();
    cp.n_ctx = cli_runtime_ctx("generate", o.rt.n_ctx, model);
    cli_runtime_apply(&o.rt, &cp);
    /* before the context is made and the prompt echoed: generation needs one free position */
    if (n_toks >= cp.n_ctx) {
        fprintf(stderr,
                "emosteer generate: the prompt has %d tokens; the context holds %d (-c)%s\n",
                n_toks, cp.n_ctx, o.rt.n_ctx ? "" : ", the model's trained length");
        goto done;
    }
    if (n_toks + 1 > cp.n_batch) cp.n_batch = ES_MIN(n_toks + 1, cp.n_ctx);
    if (es_context_create(model, &cp, &ctx) != ES_OK) {
        cli_fail("creating the context");
        goto done;
    }
    if (steer && es_context_set_steering(ctx, 0, steer) != ES_OK) {
        cli_fail("steering");
        goto done;
    }
    es_gen_params gp = es_gen_default_params();
    gp.n_predict = (int)n_predict;
    gp.sampling = sp;
    gp.stops = stops;
    gp.n_stops = n_stops;
    gp.stop_at_eog = !ignore_eos;
    if (show_prompt && !chat) {
        fputs(prompt, stdout);
        fflush(stdout);
    }
    const int32_t *prompts[1] = {toks};
    double t0 = es_time_s();
    if (es_generate(ctx, vocab, prompts, &n_toks, 1, &gp, print_piece, NULL, &out) != ES_OK) {
        printf("\n");
        cli_fail("generating");
        goto done;
    }
    double dt = es_time_s() - t0;
    printf("\n");
    fflush(stdout);
    fprintf(stderr, "generate: %d prompt tokens, %d generated in %.2f s (%.1f tok/s overall)\n",
            n_toks, out.n_tokens, dt, dt > 0 ? (n_toks + out.n_tokens) / dt : 0.0);
    rc = ES_EXIT_OK;
    if (out.stop == ES_GEN_STOP_CONTEXT) {
        fprintf(
            stderr,
            "emosteer generate: stopped: the context (%d positions) is full; give a larger -c\n",
            es_context_n_ctx(ctx));
        rc = ES_EXIT_CTX_FULL;
    }
done:
    es_gen_output_free(&out);
    free(toks);
    es_context_free(ctx);
    es_steer_set_free(steer);
    es_model_free(model);
    free(file_text);
    return rc;
}
