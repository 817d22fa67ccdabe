/*
 * test_scorers.c — evaluation scorers besides the judge:
 *   1. helpers: UTF-8 complete prefix, cosine;
 *   2. labelled TSV parsing (comments, CRLF, per-class cap, errors) and validation
 *      metrics against hand-computed accuracy / F1 / confusion with a fake scorer;
 *      the lexicon scorer validated on tests/data/labelled_sentences.tsv (printed);
 *   3. embeddings on the llama and qwen2 fixtures: mean pooling equals a manual
 *      per-token average from es_decode with a hook, batch = alone, identical texts
 *      give cosine 1, empty text gives zeros, max_tokens truncation;
 *   4. perplexity: batched pairs equal a manual token-by-token computation, a greedy
 *      continuation beats its shuffled version, argument errors.
 */
#include "emosteer.h"
#include "scorers.h"
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Hidden states (magnitude ~10) agree to float rounding: batches of >= 16 tokens take the
 * AVX-512 broadcast tile, smaller ones the dot-product tile, whose sums round differently
 * (measured up to 1.1e-5). */
#define TOL 5e-5

/* ---- 1. helpers ---- */

static void test_helpers(void) {
    CHECK(es_utf8_complete_prefix("abc", 3) == 3, "ascii");
    CHECK(es_utf8_complete_prefix("a\xC3\xA9", 3) == 3, "complete 2-byte char");
    CHECK(es_utf8_complete_prefix("a\xC3\xA9", 2) == 1, "cut 2-byte char");
    CHECK(es_utf8_complete_prefix("a\xE2\x82\xAC", 3) == 1, "cut 3-byte char");
    CHECK(es_utf8_complete_prefix("a\xF0\x9F\x98\x80", 5) == 5, "complete 4-byte char");
    CHECK(es_utf8_complete_prefix("a\xF0\x9F\x98\x80", 4) == 1, "cut 4-byte char");
    CHECK(es_utf8_complete_prefix("\x80\x80", 2) == 2, "stray continuation bytes kept");
    CHECK(es_utf8_complete_prefix("", 0) == 0, "empty");
    float a[3] = {1, 2, 3}, b[3] = {-2, 1, 0}, z[3] = {0, 0, 0}, c[3] = {2, 4, 6};
    CHECK(fabs(es_cosine(a, a, 3) - 1) < 1e-12, "cos(a, a) = 1");
    CHECK(fabs(es_cosine(a, c, 3) - 1) < 1e-12, "cos(a, 2a) = 1");
    CHECK(fabs(es_cosine(a, b, 3)) < 1e-12, "orthogonal");
    CHECK(es_cosine(a, z, 3) == 0 && es_cosine(NULL, a, 3) == 0 && es_cosine(a, a, 0) == 0,
          "degenerate");
}

/* ---- 2. labelled sentences and validation ---- */

typedef struct fake_scorer {
    const int *pred; /* predicted label per text, indexed by the text's first char - 'a' */
} fake_scorer;

static es_status fake_probs(void *user, const char *const *texts, int n, double *probs) {
    fake_scorer *f = user;
    for (int i = 0; i < n; i++) {
        int p = f->pred[texts[i][0] - 'a'];
        for (int l = 0; l < ES_EMO_N_LABELS; l++)
            probs[i * ES_EMO_N_LABELS + l] = l == p ? 0.5 : 0.1;
    }
    return ES_OK;
}

static void test_labelled(void) {
    const char *tsv = "# comment\r\n\nanger\ta one\r\njoy\tb two\njoy\tc three\nneutral\td four\n"
                      "anger\te five\nsadness\tf six";
    es_labelled set;
    es_status st = es_labelled_parse(tsv, strlen(tsv), "mem", 0, &set);
    CHECK(st == ES_OK && set.n == 6, "parse: %s, n %d", es_last_error(), set.n);
    if (st != ES_OK) return;
    CHECK(!strcmp(set.texts[0], "a one") && set.labels[0] == 0, "line 1 '%s' %d", set.texts[0],
          set.labels[0]);
    CHECK(!strcmp(set.texts[5], "f six") && set.labels[5] == 4, "last line without newline");
    CHECK(set.labels[3] == ES_EMO_NEUTRAL, "neutral label");

    /* predictions: a->anger(ok) b->joy(ok) c->anger(x) d->joy(x) e->anger(ok) f->sadness(ok) */
    int pred[6] = {0, 3, 0, 3, 0, 4};
    fake_scorer f = {pred};
    es_validation v;
    st = es_validate_scorer(fake_probs, &f, &set, &v);
    CHECK(st == ES_OK, "validate: %s", es_last_error());
    CHECK(v.n == 6 && fabs(v.accuracy - 4.0 / 6) < 1e-12, "accuracy %.4f", v.accuracy);
    /* anger: tp 2, fp 1 (c), fn 0 -> 4/5; joy: tp 1, fp 1 (d), fn 1 (c) -> 2/4;
       sadness 1; neutral: tp 0, fn 1 -> 0; disgust, fear: NaN */
    CHECK(fabs(v.f1[0] - 0.8) < 1e-12 && fabs(v.f1[3] - 0.5) < 1e-12 && fabs(v.f1[4] - 1) < 1e-12 &&
              v.f1[5] == 0 && isnan(v.f1[1]) && isnan(v.f1[2]),
          "f1 %.3f %.3f %.3f %.3f %.3f %.3f", v.f1[0], v.f1[1], v.f1[2], v.f1[3], v.f1[4], v.f1[5]);
    CHECK(fabs(v.macro_f1 - (0.8 + 0.5 + 1 + 0) / 4) < 1e-12, "macro f1 %.4f", v.macro_f1);
    CHECK(v.confusion[3][0] == 1 && v.confusion[5][3] == 1 && v.confusion[0][0] == 2, "confusion");
    es_labelled_clear(&set);

    st = es_labelled_parse(tsv, strlen(tsv), "mem", 1, &set);
    CHECK(st == ES_OK && set.n == 4, "max_per_class 1 keeps 4, got %d", set.n);
    if (st == ES_OK) CHECK(!strcmp(set.texts[1], "b two"), "first joy kept");
    es_labelled_clear(&set);

    const char *bad1 = "anger\tok\nhappy\tno such label\n";
    st = es_labelled_parse(bad1, strlen(bad1), "bad1", 0, &set);
    CHECK(st == ES_ERR_FORMAT && strstr(es_last_error(), "bad1:2"), "unknown label: %s",
          es_last_error());
    const char *bad2 = "anger no tab\n";
    st = es_labelled_parse(bad2, strlen(bad2), "bad2", 0, &set);
    CHECK(st == ES_ERR_FORMAT && strstr(es_last_error(), "bad2:1"), "missing tab: %s",
          es_last_error());
    CHECK(es_labelled_load("/nonexistent/x.tsv", 0, &set) == ES_ERR_IO, "missing file");
    es_emotion lab = ES_EMO_ANGER;
    CHECK(es_emotion_parse("neutral", &lab) == ES_OK && lab == 5, "parse neutral");
    CHECK(es_emotion_parse("joyful", &lab) == ES_ERR_INVALID_ARG, "parse bad label");
    CHECK(!strcmp(es_emotion_name(2), "fear") && !strcmp(es_emotion_name(9), "unknown"), "names");

    /* the lexicon on the labelled sentences */
    char dir[1024], tsv_path[1024];
    snprintf(dir, sizeof dir, "%s/data/lexicon", es_test_source());
    snprintf(tsv_path, sizeof tsv_path, "%s/tests/data/labelled_sentences.tsv", es_test_source());
    es_lexicon *lex = NULL;
    if (es_lexicon_load(dir, &lex) != ES_OK) {
        printf("lexicon: not found in %s, skipped (%s)\n", dir, es_last_error());
        return;
    }
    st = es_validate_tsv(tsv_path, 0, es_lexicon_label_probs, lex, &v);
    CHECK(st == ES_OK && v.n >= 60, "lexicon validation: %s (n %d)", es_last_error(), v.n);
    if (st == ES_OK) {
        printf("lexicon on %d labelled sentences: accuracy %.3f, macro F1 %.3f, F1", v.n,
               v.accuracy, v.macro_f1);
        for (int l = 0; l < ES_EMO_N_LABELS; l++)
            printf(" %s %.2f", es_emotion_name(l), v.f1[l]);
        printf("\n");
        CHECK(v.accuracy > 0.5, "the lexicon should be well above chance (1/6): %.3f", v.accuracy);
    }
    es_lexicon_free(lex);
}

/* ---- 3. embeddings ---- */

typedef struct capture {
    int layer, n_embd;
    float *rows; /* [cap][n_embd] */
    int n, cap;
} capture;

static void capture_hook(void *user, es_hook_point hp, int layer, float *x, int n_tokens,
                         int n_embd, const es_batch *b) {
    capture *c = user;
    if (hp != ES_HOOK_BLOCK_OUT || layer != c->layer) return;
    for (int t = 0; t < n_tokens && c->n < c->cap; t++, c->n++)
        memcpy(c->rows + (size_t)c->n * n_embd, x + (size_t)t * n_embd,
               (size_t)n_embd * sizeof(float));
}

/* Mean of block_out(layer) over the tokens of text (BOS excluded), decoded alone. */
static void manual_embed(es_model *m, const char *text, int layer, int max_tokens, float *out) {
    es_model_info mi;
    es_model_get_info(m, &mi);
    const es_vocab *v = es_model_vocab(m);
    int32_t toks[512];
    int32_t n = 0;
    es_tokenize(v, text, strlen(text), true, false, toks, 512, &n);
    if (n > max_tokens) n = max_tokens;
    es_context_params cp = es_context_default_params();
    cp.n_ctx = 256;
    es_context *ctx = NULL;
    es_context_create(m, &cp, &ctx);
    capture c = {layer, mi.n_embd, calloc((size_t)n * mi.n_embd, sizeof(float)), 0, n};
    es_set_hook(ctx, capture_hook, &c);
    es_batch b = {.n_tokens = n, .token = toks};
    CHECK(es_decode(ctx, &b) == ES_OK, "manual decode: %s", es_last_error());
    int skip = toks[0] == es_vocab_bos(v) ? 1 : 0;
    for (int i = 0; i < mi.n_embd; i++) {
        double s = 0;
        for (int t = skip; t < n; t++)
            s += c.rows[(size_t)t * mi.n_embd + i];
        out[i] = n > skip ? (float)(s / (n - skip)) : 0.0f;
    }
    free(c.rows);
    es_context_free(ctx);
}

static void test_embed(const char *fixture) {
    const char *path = es_test_shared_path(fixture);
    es_model *m = NULL;
    es_model_params mp = es_model_default_params();
    if (!path || es_model_load(path, &mp, &m) != ES_OK) {
        printf("embed: %s not available, skipped\n", fixture);
        return;
    }
    es_model_info mi;
    es_model_get_info(m, &mi);
    const int d = mi.n_embd;
    CHECK(es_embed_default_layer(mi.n_layer) == 2, "default layer of 3 is 2");
    CHECK(es_embed_default_layer(24) == 16 && es_embed_default_layer(1) == 0,
          "default layer formula");
    const char *texts[] = {"The cat sat on the mat and purred.",   "I am so angry right now!",
                           "The cat sat on the mat and purred.",   "",
                           "Quarterly revenue rose by 4 percent.", "\xff\xfe odd \x80 bytes"};
    const int n = 6;
    es_context_params cp = es_context_default_params();
    cp.n_ctx = 128;
    cp.n_seq_max = 4; /* 6 texts: two groups */
    cp.n_batch = 16;  /* texts split across batches */
    es_context *ctx = NULL;
    CHECK(es_context_create(m, &cp, &ctx) == ES_OK, "context");
    float *emb = calloc((size_t)n * d, sizeof *emb), *one = calloc((size_t)d, sizeof *one);
    float *ref = calloc((size_t)d, sizeof *ref);
    for (int layer = 1; layer <= 2; layer++) {
        es_embed_params ep = es_embed_default_params();
        if (layer == 1) ep.layer = 1; /* layer 2: the default */
        es_status st = es_embed_texts(ctx, texts, n, &ep, emb);
        CHECK(st == ES_OK, "embed: %s", es_last_error());
        double md_manual = 0, md_alone = 0;
        for (int i = 0; i < n; i++) {
            manual_embed(m, texts[i], layer, 1 << 20, ref);
            md_manual = fmax(md_manual, es_test_maxdiff(emb + (size_t)i * d, ref, (size_t)d, NULL));
            CHECK(es_embed_texts(ctx, &texts[i], 1, &ep, one) == ES_OK, "embed alone");
            md_alone = fmax(md_alone, es_test_maxdiff(emb + (size_t)i * d, one, (size_t)d, NULL));
        }
        printf("%s layer %d: embed vs manual mean pooling max diff %.3g, batch vs alone %.3g\n",
               fixture, layer, md_manual, md_alone);
        CHECK(md_manual < TOL, "mean pooling vs manual: %g", md_manual);
        CHECK(md_alone < TOL, "batch vs alone: %g", md_alone);
        double c_same = es_cosine(emb, emb + 2 * (size_t)d, d);
        double c_diff = es_cosine(emb, emb + (size_t)d, d);
        printf("  cosine identical %.8f, different %.4f\n", c_same, c_diff);
        CHECK(fabs(c_same - 1) < 1e-6, "identical texts: cosine %.8f", c_same);
        CHECK(c_diff < 1 - 1e-6, "different texts: cosine %.6f", c_diff);
        bool zero = true;
        for (int i = 0; i < d; i++)
            zero = zero && emb[3 * (size_t)d + i] == 0;
        CHECK(zero, "empty text embeds to zeros");
        for (int i = 0; i < n * d; i++)
            if (!isfinite(emb[i])) {
                CHECK(false, "non-finite embedding at %d", i);
                break;
            }
    }
    /* truncation */
    es_embed_params ep = es_embed_default_params();
    ep.max_tokens = 5;
    CHECK(es_embed_texts(ctx, texts, 1, &ep, one) == ES_OK, "embed truncated");
    manual_embed(m, texts[0], 2, 5, ref);
    double md = es_test_maxdiff(one, ref, (size_t)d, NULL);
    CHECK(md < TOL, "max_tokens 5 vs manual over 5 tokens: %g", md);
    /* errors */
    ep = es_embed_default_params();
    ep.layer = mi.n_layer;
    CHECK(es_embed_texts(ctx, texts, 1, &ep, one) == ES_ERR_INVALID_ARG, "layer out of range");
    const char *null_text[] = {NULL};
    CHECK(es_embed_texts(ctx, null_text, 1, NULL, one) == ES_ERR_INVALID_ARG, "NULL text");
    CHECK(es_embed_texts(ctx, texts, 0, NULL, NULL) == ES_OK, "n = 0");
    free(emb), free(one), free(ref);
    es_context_free(ctx);
    es_model_free(m);
}

/* ---- 4. perplexity ---- */

/* Mean NLL of resp given prompt, one token at a time in a fresh context. */
static double manual_nll(es_model *m, const int32_t *prompt, int np, const int32_t *resp, int nr) {
    es_model_info mi;
    es_model_get_info(m, &mi);
    es_context_params cp = es_context_default_params();
    cp.n_ctx = 128;
    es_context *ctx = NULL;
    es_context_create(m, &cp, &ctx);
    es_batch b = {.n_tokens = np, .token = prompt};
    es_decode(ctx, &b);
    double nll = 0;
    for (int t = 0; t < nr; t++) {
        const float *lg = es_get_logits(ctx, t == 0 ? np - 1 : 0);
        double mx = -INFINITY, s = 0;
        for (int i = 0; i < mi.n_vocab; i++)
            mx = fmax(mx, lg[i]);
        for (int i = 0; i < mi.n_vocab; i++)
            s += exp(lg[i] - mx);
        nll += mx + log(s) - lg[resp[t]];
        es_batch one = {.n_tokens = 1, .token = &resp[t]};
        es_decode(ctx, &one);
    }
    es_context_free(ctx);
    return nll / nr;
}

static void test_ppl(const char *fixture) {
    const char *path = es_test_shared_path(fixture);
    es_model *m = NULL;
    es_model_params mp = es_model_default_params();
    if (!path || es_model_load(path, &mp, &m) != ES_OK) {
        printf("ppl: %s not available, skipped\n", fixture);
        return;
    }
    es_model_info mi;
    es_model_get_info(m, &mi);
    enum { NP = 5, NG = 12 };
    int32_t prompts[NP][8], resps[NP][NG];
    int np[NP] = {1, 3, 8, 5, 2}, nr[NP] = {12, 7, 1, 0, 10};
    uint32_t r = 12345;
    for (int i = 0; i < NP; i++) {
        for (int k = 0; k < 8; k++)
            prompts[i][k] = (int32_t)((r = r * 1103515245u + 12345u) >> 8) % mi.n_vocab;
        for (int k = 0; k < NG; k++)
            resps[i][k] = (int32_t)((r = r * 1103515245u + 12345u) >> 8) % mi.n_vocab;
        prompts[i][0] = 1; /* BOS */
    }
    es_ppl_pair pairs[NP];
    for (int i = 0; i < NP; i++)
        pairs[i] = (es_ppl_pair){prompts[i], np[i], resps[i], nr[i]};
    es_context_params cp = es_context_default_params();
    cp.n_ctx = 64;
    cp.n_seq_max = 2; /* 5 pairs: three groups */
    cp.n_batch = 9;   /* pairs split across batches */
    es_context *ctx = NULL;
    CHECK(es_context_create(m, &cp, &ctx) == ES_OK, "context");
    double nll[NP], ppl[NP];
    es_status st = es_score_ppl(ctx, pairs, NP, nll, ppl);
    CHECK(st == ES_OK, "ppl: %s", es_last_error());
    double md = 0;
    for (int i = 0; i < NP; i++) {
        if (nr[i] == 0) {
            CHECK(isnan(nll[i]) && isnan(ppl[i]), "empty response gives NaN");
            continue;
        }
        double ref = manual_nll(m, prompts[i], np[i], resps[i], nr[i]);
        md = fmax(md, fabs(ref - nll[i]));
        CHECK(fabs(ppl[i] - exp(nll[i])) < 1e-9 * ppl[i], "ppl = exp(nll)");
    }
    printf("%s: batched ppl vs token-by-token mean NLL max diff %.3g (nll[0] %.4f)\n", fixture, md,
           nll[0]);
    CHECK(md < TOL, "ppl vs manual: %g", md);

    /* greedy continuation vs shuffled */
    es_gen_params gp = es_gen_default_params();
    gp.n_predict = NG;
    gp.sampling.temp = 0;
    gp.stop_at_eog = false;
    const int32_t *pp[1] = {prompts[2]};
    int pn[1] = {8};
    es_gen_output out;
    memset(&out, 0, sizeof out);
    st = es_generate(ctx, es_model_vocab(m), pp, pn, 1, &gp, NULL, NULL, &out);
    CHECK(st == ES_OK && out.n_tokens == NG, "greedy generation: %s (%d tokens)", es_last_error(),
          out.n_tokens);
    if (st == ES_OK && out.n_tokens >= 2) {
        int32_t shuf[NG];
        for (int k = 0; k < out.n_tokens; k++)
            shuf[k] = out.tokens[(k * 5 + 3) % out.n_tokens];
        es_ppl_pair g2[2] = {{prompts[2], 8, out.tokens, out.n_tokens},
                             {prompts[2], 8, shuf, out.n_tokens}};
        double gn[2], gppl[2];
        CHECK(es_score_ppl(ctx, g2, 2, gn, gppl) == ES_OK, "ppl greedy");
        printf("%s: greedy continuation ppl %.3f, shuffled %.3f\n", fixture, gppl[0], gppl[1]);
        CHECK(gppl[0] < gppl[1], "greedy %.3f should beat shuffled %.3f", gppl[0], gppl[1]);
    }
    es_gen_output_free(&out);

    /* errors */
    int32_t bad = mi.n_vocab;
    es_ppl_pair e1 = {prompts[0], 1, &bad, 1};
    CHECK(es_score_ppl(ctx, &e1, 1, nll, NULL) == ES_ERR_INVALID_ARG, "token out of range");
    es_ppl_pair e2 = {prompts[0], 0, resps[0], 1};
    CHECK(es_score_ppl(ctx, &e2, 1, nll, NULL) == ES_ERR_INVALID_ARG, "empty prompt");
    int32_t *longr = calloc(100, sizeof *longr);
    es_ppl_pair e3 = {prompts[0], 1, longr, 100};
    CHECK(es_score_ppl(ctx, &e3, 1, nll, NULL) == ES_ERR_RANGE, "longer than the context: %s",
          es_last_error());
    free(longr);
    es_context_free(ctx);
    es_model_free(m);
}

int main(void) {
    test_helpers();
    test_labelled();
    if (!es_test_shared()) {
        printf("shared folder not found: model tests skipped\n");
        return es_test_finish();
    }
    test_embed("fixtures/llama.f16.gguf");
    test_embed("fixtures/qwen2.f16.gguf");
    test_ppl("fixtures/llama.f16.gguf");
    test_ppl("fixtures/qwen2.f16.gguf");
    return es_test_finish();
}
