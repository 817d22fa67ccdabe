/*
 * model_load.c — es_model_load: the model layer's weights and configuration
 * (es_model_open) plus the text layer's vocabulary, so the model layer never needs
 * to know about tokenizers.
 */
#include "model.h"
#include "tokenizer.h"

/* The tokenizer, when the file has one (tokenizer.ggml.model). A tokenizer we do not
 * implement leaves the model usable with token ids. */
static es_status load_vocab(es_model *m) {
    if (es_gguf_find_key(m->gguf, "tokenizer.ggml.model") < 0) return ES_OK;
    es_vocab *v = NULL;
    es_status st = es_vocab_from_gguf(m->gguf, &v);
    if (st == ES_ERR_UNSUPPORTED) return ES_OK;
    if (st != ES_OK) return es_error_prefix(st, "model: tokenizer");
    es_model_attach_vocab(m, v, es_vocab_free);
    return ES_OK;
}

es_status es_model_load(const char *path, const es_model_params *params, es_model **out) {
    if (!out) return es_error(ES_ERR_INVALID_ARG, "model: path and out must not be NULL");
    es_model *m = NULL;
    es_status st = es_model_open(path, params, &m);
    if (st != ES_OK) return st;
    if ((st = load_vocab(m)) != ES_OK) {
        es_model_free(m);
        return st;
    }
    *out = m;
    return ES_OK;
}
