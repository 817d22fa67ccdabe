/* gen_util.c — see gen_util.h. */
#include "gen_util.h"

#include <stdlib.h>
#include <string.h>

int cli_chat_format(const es_model *model, const char *name, bool quiet, es_chat_format *out) {
    if (name) {
        if (es_chat_parse_name(name, out) != ES_OK) return cli_fail("--chat-template");
        return ES_EXIT_OK;
    }
    const char *tmpl = es_model_chat_template(model);
    es_chat_format f = es_chat_detect(tmpl);
    if (f == ES_CHAT_UNKNOWN) {
        if (!quiet)
            fprintf(stderr, "emosteer: the model's chat template is not one emosteer reproduces "
                            "exactly; using plain text (name one with --chat-template)\n");
        f = ES_CHAT_NONE;
    }
    *out = f;
    return ES_EXIT_OK;
}

static int tokenize(const es_vocab *vocab, const char *text, bool add_special, int32_t **toks,
                    int *n_toks) {
    if (es_tokenize_alloc(vocab, text, strlen(text), add_special, true, toks, n_toks) != ES_OK)
        return cli_fail("tokenizing");
    return ES_EXIT_OK;
}

int cli_tokenize_text(const es_vocab *vocab, const char *text, int32_t **toks, int *n_toks) {
    return tokenize(vocab, text, true, toks, n_toks);
}

int cli_tokenize_chat(const es_vocab *vocab, es_chat_format fmt, const es_chat_msg *msgs,
                      size_t n, bool add_generation_prompt, int32_t **toks, int *n_toks) {
    if (fmt == ES_CHAT_NONE) {
        size_t len = 1;
        for (size_t i = 0; i < n; i++) len += strlen(msgs[i].content) + 1;
        char *text = malloc(len);
        if (!text) return cli_fail("rendering the prompt");
        text[0] = '\0';
        for (size_t i = 0; i < n; i++) {
            if (i) strcat(text, "\n");
            strcat(text, msgs[i].content);
        }
        int rc = tokenize(vocab, text, true, toks, n_toks);
        free(text);
        return rc;
    }
    es_chat_options opt = es_chat_default_options();
    opt.add_generation_prompt = add_generation_prompt;
    int32_t bos = es_vocab_bos(vocab), eos = es_vocab_eos(vocab);
    opt.bos_text = bos >= 0 ? es_vocab_token_text(vocab, bos) : NULL;
    opt.eos_text = eos >= 0 ? es_vocab_token_text(vocab, eos) : NULL;
    char *text = NULL;
    if (es_chat_render_ex(fmt, msgs, n, &opt, &text) != ES_OK) return cli_fail("rendering the prompt");
    int rc = tokenize(vocab, text, false, toks, n_toks);
    free(text);
    return rc;
}

void cli_sampling_help(FILE *f) {
    fprintf(f, "sampling:\n"
               "  --temp T             temperature, 0 = greedy (default 0.8)\n"
               "  --top-k K            keep the K most likely tokens, 0 = off (default 40)\n"
               "  --top-p P            nucleus sampling mass, 1 = off (default 0.95)\n"
               "  --min-p P            drop tokens below P x the top probability (default 0.05)\n"
               "  --repeat-penalty R   penalise repeated tokens, 1 = off (default 1.0)\n"
               "  --repeat-last-n N    how many recent tokens the penalties see (default 64)\n"
               "  --presence-penalty X, --frequency-penalty X   (default 0)\n"
               "  -s, --seed S         random seed (default 42): the same seed gives the same text\n");
}

int cli_sampling_parse_arg(es_sampler_params *p, const char *cmd, int argc, char **argv, int *i) {
    const char *a = argv[*i];
    const char *v = *i + 1 < argc ? argv[*i + 1] : NULL;
    static const char *const flags[] = {"--temp", "--top-k", "--top-p", "--min-p",
                                        "--repeat-penalty", "--repeat-last-n",
                                        "--presence-penalty", "--frequency-penalty", "--seed", "-s"};
    size_t k;
    for (k = 0; k < sizeof flags / sizeof flags[0]; k++)
        if (!strcmp(a, flags[k])) break;
    if (k == sizeof flags / sizeof flags[0]) return 0;
    if (!v) {
        cli_usage_error(cmd, "%s needs a value", a);
        return -1;
    }
    double d;
    long l;
    bool ok = true;
    switch (k) {
    case 0: ok = cli_parse_float(v, 0, 100, &d), p->temp = (float)d; break;
    case 1: ok = cli_parse_int(v, 0, 1 << 30, &l), p->top_k = (int)l; break;
    case 2: ok = cli_parse_float(v, 0, 1, &d), p->top_p = (float)d; break;
    case 3: ok = cli_parse_float(v, 0, 1, &d), p->min_p = (float)d; break;
    case 4: ok = cli_parse_float(v, 1e-3, 100, &d), p->repeat_penalty = (float)d; break;
    case 5: ok = cli_parse_int(v, 0, 1 << 20, &l), p->penalty_last_n = (int)l; break;
    case 6: ok = cli_parse_float(v, -100, 100, &d), p->presence_penalty = (float)d; break;
    case 7: ok = cli_parse_float(v, -100, 100, &d), p->frequency_penalty = (float)d; break;
    default: {
        char *end;
        unsigned long long s = strtoull(v, &end, 10);
        ok = *v && !*end && *v != '-';
        p->seed = s;
    }
    }
    if (!ok) {
        cli_usage_error(cmd, "bad value '%s' for %s", v, a);
        return -1;
    }
    (*i)++;
    return 1;
}
