/*
 * cmd_generate.c — `emosteer generate`: continue a prompt (or answer it through the
 * model's chat template with --chat), streaming tokens to stdout as they come,
 * optionally steered with emotion vectors or llama.cpp control vectors.
 */
#include "cli.h"
#include "gen_util.h"
#include "steer_opts.h"

#include <stdlib.h>
#include <string.h>

static void help(void) {
    printf("usage: emosteer generate [-m MODEL] -p TEXT [options]\n\n"
           "Generates a continuation of TEXT and streams it to stdout.\n\n"
           "  -m MODEL             GGUF model (default: %s)\n"
           "  -p, --prompt TEXT    the prompt\n"
           "  -f, --file FILE      read the prompt from FILE\n"
           "  -n, --n-predict N    tokens to generate (default 128)\n"
           "  -c, --ctx-size N     context length (default 2048)\n"
           "  -t, --threads N      worker threads (default: all cores, at most 8)\n"
           "  --kv-type T          KV cache type: f32 (default, exact) or f16 (half the memory,\n"
           "                       attention computed as llama.cpp does)\n"
           "  --numerics N         fast (default) or llamacpp: quantized sums in llama.cpp's\n"
           "                       order everywhere (with --kv-type f16: its logits)\n"
           "  --chat               treat the prompt as a user message in the model's chat format\n"
           "  -sys, --system TEXT  system message (implies --chat)\n"
           "  --chat-template NAME chat format: llama3, chatml, qwen3, gemma, phi3, mistral,\n"
           "                       llama2, minicpm, none (default: the model's own)\n"
           "  --stop TEXT          stop when TEXT is generated (repeatable)\n"
           "  --ignore-eos         keep going past end-of-generation tokens\n"
           "  --no-display-prompt  print only the generated text\n\n",
           cli_default_model());
    cli_sampling_help(stdout);
    printf("\n");
    cli_steer_help(stdout);
    printf("\nexample: emosteer generate -p \"The letter arrived and\" --ev models/demo-16m.ev.gguf "
           "--steer joy=1.5\n");
}

static bool print_piece(void *user, int index, const char *text, size_t len) {
    (void)user, (void)index;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return true;
}

static char *read_file_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (n + 1 == cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) free(buf);
            buf = nb;
        }
    }
    fclose(f);
    if (buf) buf[n] = '\0';
    return buf;
}

int cmd_generate(int argc, char **argv) {
    const char *model_path = NULL, *prompt = NULL, *prompt_file = NULL, *system = NULL;
    const char *tmpl_name = NULL;
    long n_predict = 128, n_ctx = 2048, n_threads = 0;
    es_kv_type kv_type = ES_KV_F32;
    es_numerics numerics = ES_NUMERICS_FAST;
    bool chat = false, ignore_eos = false, show_prompt = true;
    const char *stops[16];
    size_t n_stops = 0;
    es_sampler_params sp = es_sampler_default_params();
    cli_steer_opts so;
    cli_steer_init(&so);

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int r;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            help();
            return ES_EXIT_OK;
        }
        if ((r = cli_steer_parse_arg(&so, "generate", argc, argv, &i)) != 0) {
            if (r < 0) return ES_EXIT_USAGE;
            continue;
        }
        if ((r = cli_sampling_parse_arg(&sp, "generate", argc, argv, &i)) != 0) {
            if (r < 0) return ES_EXIT_USAGE;
            continue;
        }
        if (!strcmp(a, "--chat")) chat = true;
        else if (!strcmp(a, "--ignore-eos")) ignore_eos = true;
        else if (!strcmp(a, "--no-display-prompt")) show_prompt = false;
        else if (!v) return cli_usage_error("generate", "unknown or incomplete option '%s'", a);
        else if (!strcmp(a, "-m") || !strcmp(a, "--model")) model_path = v, i++;
        else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) prompt = v, i++;
        else if (!strcmp(a, "-f") || !strcmp(a, "--file")) prompt_file = v, i++;
        else if (!strcmp(a, "-sys") || !strcmp(a, "--system")) system = v, chat = true, i++;
        else if (!strcmp(a, "--chat-template")) tmpl_name = v, chat = true, i++;
        else if (!strcmp(a, "--stop")) {
            if (n_stops == sizeof stops / sizeof stops[0])
                return cli_usage_error("generate", "at most 16 --stop strings");
            stops[n_stops++] = v, i++;
        } else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) {
            if (!cli_parse_int(v, 1, 1 << 20, &n_predict))
                return cli_usage_error("generate", "-n wants a token count >= 1, got '%s'", v);
            i++;
        } else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) {
            if (!cli_parse_int(v, 8, 1 << 22, &n_ctx))
                return cli_usage_error("generate", "-c wants a context length >= 8, got '%s'", v);
            i++;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (!cli_parse_int(v, 1, 512, &n_threads))
                return cli_usage_error("generate", "-t wants a thread count >= 1, got '%s'", v);
            i++;
        } else if (!strcmp(a, "--kv-type")) {
            if (es_kv_type_parse(v, &kv_type) != ES_OK)
                return cli_usage_error("generate", "--kv-type wants f32 or f16, got '%s'", v);
            i++;
        } else if (!strcmp(a, "--numerics")) {
            if (es_numerics_parse(v, &numerics) != ES_OK)
                return cli_usage_error("generate", "--numerics wants fast or llamacpp, got '%s'", v);
            i++;
        } else {
            return cli_usage_error("generate", "unknown option '%s'", a);
        }
    }
    char *file_text = NULL;
    if (prompt_file) {
        if (!(file_text = read_file_text(prompt_file))) {
            fprintf(stderr, "emosteer: cannot read '%s': %m\n", prompt_file);
            return ES_EXIT_FAIL;
        }
        prompt = file_text;
    }
    if (!prompt) {
        free(file_text);
        return cli_usage_error("generate", "no prompt: give one with -p TEXT or -f FILE");
    }
    if (!model_path) model_path = cli_default_model();

    int rc = ES_EXIT_FAIL;
    es_model *model = NULL;
    es_context *ctx = NULL;
    es_steer_set *steer = NULL;
    int32_t *toks = NULL;
    int n_toks = 0;
    es_gen_output out = {0};
    es_model_params mp = es_model_default_params();
    if ((rc = cli_steer_build(&so, "generate", &steer)) != ES_EXIT_OK) goto done;
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
    es_chat_format fmt = ES_CHAT_NONE;
    if (chat) {
        if ((rc = cli_chat_format(model, tmpl_name, false, &fmt)) != ES_EXIT_OK) goto done;
        rc = ES_EXIT_FAIL;
        es_chat_msg msgs[2];
        size_t n_msgs = 0;
        if (system) msgs[n_msgs++] = (es_chat_msg){"system", system};
        msgs[n_msgs++] = (es_chat_msg){"user", prompt};
        if (cli_tokenize_chat(vocab, fmt, msgs, n_msgs, true, &toks, &n_toks) != ES_EXIT_OK) goto done;
        if (fmt != ES_CHAT_NONE && es_chat_end_of_turn(fmt)[0] && n_stops < 16)
            stops[n_stops++] = es_chat_end_of_turn(fmt);
    } else if (cli_tokenize_text(vocab, prompt, &toks, &n_toks) != ES_EXIT_OK) {
        goto done;
    }
    es_context_params cp = es_context_default_params();
    cp.n_ctx = (int)n_ctx;
    if (n_threads > 0) cp.n_threads = (int)n_threads;
    cp.kv_type = kv_type;
    cp.numerics = numerics;
    if (n_toks + 1 > cp.n_batch) cp.n_batch = n_toks + 1;
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
done:
    es_gen_output_free(&out);
    free(toks);
    es_context_free(ctx);
    es_steer_set_free(steer);
    es_model_free(model);
    free(file_text);
    return rc;
}
