/* hello.c — built by install_test.sh against the installed emosteer.h and libemosteer.a
 * (through pkg-config): loads a model, tokenizes a text and decodes it. */
#include <emosteer.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    es_model *m = NULL;
    if (es_model_load(argv[1], NULL, &m) != ES_OK) {
        fprintf(stderr, "hello: %s\n", es_last_error());
        return 1;
    }
    es_model_info info;
    es_model_get_info(m, &info);
    const char *text = "Hello";
    int32_t *toks = NULL;
    int n = 0;
    es_context *ctx = NULL;
    es_context_params cp = es_context_default_params();
    cp.n_ctx = 64;
    int rc = 1;
    if (es_tokenize_alloc(es_model_vocab(m), text, strlen(text), true, false, &toks, &n) == ES_OK &&
        es_context_create(m, &cp, &ctx) == ES_OK) {
        es_batch b = {n, toks, NULL, NULL, NULL};
        if (es_decode(ctx, &b) == ES_OK && es_get_logits(ctx, n - 1)) rc = 0;
    }
    if (rc)
        fprintf(stderr, "hello: %s\n", es_last_error());
    else
        printf("hello: %s, %d layers, %d tokens decoded (%s)\n", info.arch, info.n_layer, n,
               es_type_name(ES_TYPE_Q8_0));
    free(toks);
    es_context_free(ctx);
    es_model_free(m);
    return rc;
}
