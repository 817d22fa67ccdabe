/* gen_util.c — see gen_util.h. */
#include "gen_util.h"

#include <stdlib.h>
#include <string.h>

int cli_chat_format(const es_model *model, const char *name, bool quiet, es_chat_format *out) {
    if (name) {
        if (es_chat_parse_name(name, out) != ES_OK) return cli_fail("--chat-template");
        return ES_EXIT_OK;
    }
    es_chat_format f = es_chat_detect_model(model); /* template, else by architecture */
    if (f == ES_CHAT_UNKNOWN) {
        if (!quiet)
            fprintf(stderr, "emosteer: the model's chat template is not one emosteer reproduces "
                            "exactly; using plain text (name one with --chat-template)\n");
        f = ES_CHAT_NONE;
    }
    *out = f;
    return ES_EXIT_OK;
}

es_status cli_chat_tokens(const es_vocab *vocab, es_chat_format fmt, const es_chat_msg *msgs,
                          size_t n, bool add_generation_prompt, int32_t **toks, int *n_toks) {
    char *text = NULL;
    bool add_special = fmt == ES_CHAT_NONE;
    if (fmt == ES_CHAT_NONE) { /* the contents joined by newlines, BOS as the vocabulary wants */
        size_t len = 1;
        for (size_t i = 0; i < n; i++)
            len += strlen(msgs[i].content) + 1;
        if (!(text = malloc(len))) return es_error(ES_ERR_NOMEM, "out of memory for the prompt");
        size_t off = 0;
        for (size_t i = 0; i < n; i++) {
            size_t m = strlen(msgs[i].content);
            if (i) text[off++] = '\n';
            memcpy(text + off, msgs[i].content, m);
            off += m;
        }
        text[off] = '\0';
    } else {
        es_chat_options opt = es_chat_default_options();
        opt.add_generation_prompt = add_generation_prompt;
        int32_t bos = es_vocab_bos(vocab), eos = es_vocab_eos(vocab);
        opt.bos_text = bos >= 0 ? es_vocab_token_text(vocab, bos) : NULL;
        opt.eos_text = eos >= 0 ? es_vocab_token_text(vocab, eos) : NULL;
        es_status st = es_chat_render_ex(fmt, msgs, n, &opt, &text);
        if (st != ES_OK) return st;
    }
    es_status st = es_tokenize_alloc(vocab, text, strlen(text), add_special, true, toks, n_toks);
    free(text);
    return st;
}

int cli_tokenize_text(const es_vocab *vocab, const char *text, int32_t **toks, int *n_toks) {
    if (es_tokenize_alloc(vocab, text, strlen(text), true, true, toks, n_toks) != ES_OK)
        return cli_fail("tokenizing");
    return ES_EXIT_OK;
}

int cli_tokenize_chat(const es_vocab *vocab, es_chat_format fmt, const es_chat_msg *msgs, size_t n,
                      bool add_generation_prompt, int32_t **toks, int *n_toks) {
    if (cli_chat_tokens(vocab, fmt, msgs, n, add_generation_prompt, toks, n_toks) != ES_OK)
        return cli_fail(fmt == ES_CHAT_NONE ? "tokenizing" : "rendering the prompt");
    return ES_EXIT_OK;
}

int cli_load_text_model(const char *path, const es_model_params *mp, es_model **model,
                        const es_vocab **vocab) {
    if (es_model_load(path, mp, model) != ES_OK) return cli_fail("loading the model");
    *vocab = es_model_vocab(*model);
    if (!*vocab) {
        fprintf(stderr, "emosteer: %s has no tokenizer\n", path);
        return ES_EXIT_FAIL;
    }
    return ES_EXIT_OK;
}

int cli_judge_open(const char *path, int n_threads, es_model **model, es_judge **judge) {
    es_model_params mp = es_model_default_params();
    if (es_model_load(path, &mp, model) != ES_OK) return cli_fail("loading the judge model");
    es_judge_params jp = es_judge_default_params();
    if (n_threads > 0) jp.n_threads = n_threads;
    if (es_judge_create(*model, &jp, judge) != ES_OK) return cli_fail("the judge model");
    return ES_EXIT_OK;
}

int cli_cls_scorer_open(const char *path, bool nli, const char *nli_template, int n_threads,
                        es_cls_scorer **out) {
    const int nt = n_threads > 0 ? n_threads : es_cpu_count();
    if (es_cls_scorer_load(path, nli, nli_template, nt, out) != ES_OK)
        return cli_fail(nli ? "the NLI model (--nli)" : "the classifier (--classifier)");
    return ES_EXIT_OK;
}
