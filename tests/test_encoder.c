/*
 * test_encoder.c — the encoder classifiers (architecture "bert") against the float64
 * Hugging Face references of ../shared/fixtures (bert_cls, roberta_cls; README section
 * "Encoder classifiers"): tokens from the texts, emb_out, attn_ln.i, hidden.i, pooled,
 * class_logits, class_probs, the padded batch rows (batch.*) and each row alone, with
 * 1 and 2 threads; bert_cls also without its pooler (class_logits.no_pooler) on a copy
 * without cls.weight/cls.bias. The whole program runs again under ES_FORCE_SCALAR=1
 * (a child process), so scalar and SIMD kernels are both checked.
 */
#include "testutil.h"

#include "emosteer.h"

#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define TOL 1e-4
#define DMAX(a, b) ((a) > (b) ? (a) : (b))

typedef struct ref {
    es_gguf *g;
} ref;

static const void *ref_data(const ref *r, const char *name, int64_t *count) {
    const es_gguf_tensor *t = es_gguf_find_tensor(r->g, name);
    CHECK(t != NULL, "reference tensor %s is missing", name);
    if (!t) return NULL;
    int64_t n = 1;
    for (int d = 0; d < t->n_dims; d++)
        n *= t->ne[d];
    if (count) *count = n;
    return t->data;
}

static char *ref_str(const ref *r, const char *key) {
    return es_gguf_get_str_dup(r->g, key);
}

/* Compares n floats, prints the max diff and where; returns it. */
static double cmp(const char *what, const char *fx, const float *got, const float *want, size_t n) {
    size_t where = 0;
    double md = es_test_maxdiff(got, want, n, &where);
    CHECK(md <= TOL, "%s %s: max diff %.3g at %zu (got %g want %g)", fx, what, md, where,
          got[where], want[where]);
    return md;
}

typedef struct worst {
    double emb, attn, hidden, pooled, logits, probs, batch_pooled, batch_logits, alone;
} worst;

static void run_fixture(const char *fx, bool bert, int n_threads, worst *wst) {
    char path[512], refp[512];
    snprintf(path, sizeof path, "fixtures/%s.f16.gguf", fx);
    snprintf(refp, sizeof refp, "%s", es_test_shared_path(path));
    snprintf(path, sizeof path, "fixtures/%s.ref.gguf", fx);
    ref r = {0};
    if (!CHECK(es_gguf_open(es_test_shared_path(path), &r.g) == ES_OK, "open %s: %s", path,
               es_last_error()))
        return;
    es_model *m = NULL;
    if (!CHECK(es_model_load(refp, NULL, &m) == ES_OK, "load %s: %s", refp, es_last_error())) {
        es_gguf_close(r.g);
        return;
    }
    es_model_info info;
    es_model_get_info(m, &info);
    CHECK(info.is_encoder && info.has_pooler && info.n_labels == (bert ? 3 : 7),
          "%s info: encoder %d pooler %d "
          "labels %d",
          fx, info.is_encoder, info.has_pooler, info.n_labels);
    es_classifier *c = NULL;
    if (!CHECK(es_classifier_create(m, n_threads, &c) == ES_OK, "classifier: %s", es_last_error()))
        goto done;
    const int d = info.n_embd, L = es_classifier_n_labels(c), NL = info.n_layer;
    CHECK(es_classifier_has_pooler(c), "%s has its pooler", fx);
    static const char *const bert_labels[] = {"contradiction", "neutral", "entailment"};
    static const char *const rob_labels[] = {"anger",   "disgust", "fear",    "joy",
                                             "neutral", "sadness", "surprise"};
    for (int i = 0; i < L; i++)
        CHECK(!strcmp(es_classifier_label(c, i), bert ? bert_labels[i] : rob_labels[i]),
              "%s label %d: %s", fx, i, es_classifier_label(c, i));

    /* tokens from the text */
    int64_t T = 0;
    const int32_t *want_tok = ref_data(&r, "tokens", &T);
    const int32_t *want_typ = bert ? ref_data(&r, "token_types", NULL) : NULL;
    char *ta = ref_str(&r, bert ? "reference.text_a" : "reference.text");
    char *tb = bert ? ref_str(&r, "reference.text_b") : NULL;
    int32_t *tok = NULL, *typ = NULL;
    int nt = 0;
    CHECK(ta && es_classifier_tokenize(c, ta, tb, &tok, &typ, &nt) == ES_OK, "tokenize: %s",
          es_last_error());
    CHECK(nt == T && want_tok && !memcmp(tok, want_tok, (size_t)T * 4),
          "%s tokens from the text (%d, want %d)", fx, nt, (int)T);
    if (want_typ)
        CHECK(nt == T && !memcmp(typ, want_typ, (size_t)T * 4), "%s token types from the text", fx);

    /* single sequence: every reference tensor */
    float *emb = malloc((size_t)T * d * 4), *attn = malloc((size_t)NL * T * d * 4);
    float *hid = malloc((size_t)NL * T * d * 4), *pooled = malloc((size_t)d * 4),
          *logits = malloc((size_t)L * 4);
    es_encoder_activations out = {emb, attn, hid, pooled, logits};
    es_status st = es_classifier_activations(c, want_tok, want_typ, NULL, 1, (int)T, &out);
    if (CHECK(st == ES_OK, "%s activations: %s", fx, es_last_error())) {
        wst->emb =
            DMAX(wst->emb, cmp("emb_out", fx, emb, ref_data(&r, "emb_out", NULL), (size_t)T * d));
        for (int l = 0; l < NL; l++) {
            char name[32];
            snprintf(name, sizeof name, "attn_ln.%d", l);
            wst->attn = DMAX(wst->attn, cmp(name, fx, attn + (size_t)l * T * d,
                                            ref_data(&r, name, NULL), (size_t)T * d));
            snprintf(name, sizeof name, "hidden.%d", l);
            wst->hidden = DMAX(wst->hidden, cmp(name, fx, hid + (size_t)l * T * d,
                                                ref_data(&r, name, NULL), (size_t)T * d));
        }
        wst->pooled =
            DMAX(wst->pooled, cmp("pooled", fx, pooled, ref_data(&r, "pooled", NULL), (size_t)d));
        wst->logits = DMAX(wst->logits, cmp("class_logits", fx, logits,
                                            ref_data(&r, "class_logits", NULL), (size_t)L));
    }
    if (bert) { /* all token types 0: the reference's class_logits.type0 */
        es_encoder_activations o0 = {.logits = logits};
        if (CHECK(es_classifier_activations(c, want_tok, NULL, NULL, 1, (int)T, &o0) == ES_OK,
                  "type0"))
            cmp("class_logits.type0", fx, logits, ref_data(&r, "class_logits.type0", NULL),
                (size_t)L);
    }

    /* the classifier API on the texts */
    float probs[2 * 16];
    const char *texts[2] = {
        ta, ref_str(&r, bert ? "reference.text_batch1_a" : "reference.text_batch1")};
    const char *pairs[2] = {tb, bert ? ref_str(&r, "reference.text_batch1_b") : NULL};
    st = es_classifier_classify(c, texts, bert ? pairs : NULL, 2, probs);
    if (CHECK(st == ES_OK, "%s classify: %s", fx, es_last_error())) {
        wst->probs = DMAX(wst->probs, cmp("class_probs", fx, probs,
                                          ref_data(&r, "class_probs", NULL), (size_t)L));
        const float *bp = ref_data(&r, "batch.class_probs", NULL);
        wst->probs = DMAX(wst->probs,
                          cmp("batch.class_probs[1] (classify)", fx, probs + L, bp + L, (size_t)L));
    }

    /* the padded batch, then each row alone */
    int64_t BT = 0;
    const int32_t *btok = ref_data(&r, "batch.tokens", &BT);
    const int32_t *bmask = ref_data(&r, "batch.attention_mask", NULL);
    const int32_t *btyp = bert ? ref_data(&r, "batch.token_types", NULL) : NULL;
    const int Tb = (int)(BT / 2);
    float bpooled[2 * 1024], blogits[2 * 16];
    es_encoder_activations ob = {.pooled = bpooled, .logits = blogits};
    st = es_classifier_activations(c, btok, btyp, bmask, 2, Tb, &ob);
    if (CHECK(st == ES_OK && d <= 1024, "%s batch: %s", fx, es_last_error())) {
        wst->batch_pooled =
            DMAX(wst->batch_pooled, cmp("batch.pooled", fx, bpooled,
                                        ref_data(&r, "batch.pooled", NULL), (size_t)2 * d));
        wst->batch_logits =
            DMAX(wst->batch_logits, cmp("batch.class_logits", fx, blogits,
                                        ref_data(&r, "batch.class_logits", NULL), (size_t)2 * L));
    }
    for (int row = 0; row < 2; row++) {
        int len = 0;
        while (len < Tb && bmask[row * Tb + len])
            len++;
        es_encoder_activations oa = {.logits = blogits};
        st = es_classifier_activations(c, btok + row * Tb, btyp ? btyp + row * Tb : NULL, NULL, 1,
                                       len, &oa);
        if (CHECK(st == ES_OK, "%s row %d alone: %s", fx, row, es_last_error()))
            wst->alone = DMAX(wst->alone,
                              cmp("batch row alone", fx, blogits,
                                  (const float *)ref_data(&r, "batch.class_logits", NULL) + row * L,
                                  (size_t)L));
    }

    /* errors */
    int32_t bad = info.n_vocab;
    es_encoder_activations oe = {.logits = blogits};
    CHECK(es_classifier_activations(c, &bad, NULL, NULL, 1, 1, &oe) == ES_ERR_INVALID_ARG,
          "token out of range");
    int32_t zero = 0;
    CHECK(es_classifier_activations(c, want_tok, NULL, &zero, 1, 1, &oe) == ES_ERR_INVALID_ARG,
          "row of padding");

    free((void *)texts[1]);
    free((void *)pairs[1]);
    free(ta);
    free(tb);
    free(tok);
    free(typ);
    free(emb);
    free(attn);
    free(hid);
    free(pooled);
    free(logits);
done:
    es_classifier_free(c);
    es_model_free(m);
    es_gguf_close(r.g);
}

/* bert_cls copied without cls.weight / cls.bias: classifier(h[CLS]) = class_logits.no_pooler. */
static void test_no_pooler(void) {
    /* the copy renames the two tensors in place (same lengths), which the loader ignores */
    size_t len = 0;
    char *bytes = es_test_read_file(es_test_shared_path("fixtures/bert_cls.f16.gguf"), &len);
    if (!CHECK(bytes != NULL, "read bert_cls")) return;
    static const char *const names[][2] = {
        {"\x0a\0\0\0\0\0\0\0cls.weight", "\x0a\0\0\0\0\0\0\0cls.wxight"},
        {"\x08\0\0\0\0\0\0\0cls.bias", "\x08\0\0\0\0\0\0\0cls.bixs"}};
    int renamed = 0;
    for (int k = 0; k < 2; k++) {
        const size_t n = 8 + strlen(names[k][0] + 8);
        for (size_t i = 0; i + n <= len; i++)
            if (!memcmp(bytes + i, names[k][0], n)) {
                memcpy(bytes + i, names[k][1], n);
                renamed++;
                break;
            }
    }
    CHECK(renamed == 2, "renamed %d of the 2 pooler tensors", renamed);
    char path[] = "/tmp/es_test_encoder_XXXXXX";
    int fd = mkstemp(path);
    es_status st = fd >= 0 && write(fd, bytes, len) == (ssize_t)len ? ES_OK : ES_ERR_IO;
    if (fd >= 0) close(fd);
    free(bytes);
    es_model *m = NULL;
    es_classifier *c = NULL;
    if (CHECK(st == ES_OK && es_model_load(path, NULL, &m) == ES_OK, "load copy: %s",
              es_last_error()) &&
        CHECK(es_classifier_create(m, 1, &c) == ES_OK, "classifier")) {
        CHECK(!es_classifier_has_pooler(c), "copy without cls.weight has no pooler");
        ref r = {0};
        if (CHECK(es_gguf_open(es_test_shared_path("fixtures/bert_cls.ref.gguf"), &r.g) == ES_OK,
                  "ref")) {
            int64_t T = 0;
            const int32_t *tok = ref_data(&r, "tokens", &T);
            float logits[3];
            es_encoder_activations o = {.logits = logits};
            if (CHECK(es_classifier_activations(c, tok, ref_data(&r, "token_types", NULL), NULL, 1,
                                                (int)T, &o) == ES_OK,
                      "no pooler: %s", es_last_error())) {
                double md = cmp("class_logits.no_pooler", "bert_cls", logits,
                                ref_data(&r, "class_logits.no_pooler", NULL), 3);
                printf("bert_cls without pooler: class_logits.no_pooler max diff %.2e\n", md);
            }
            es_gguf_close(r.g);
        }
    }
    es_classifier_free(c);
    es_model_free(m);
    unlink(path);
}

static void test_not_classifier(void) {
    es_model *m = NULL;
    es_classifier *c = NULL;
    CHECK(es_classifier_create(NULL, 1, &c) == ES_ERR_INVALID_ARG, "NULL model");
    if (es_model_load(es_test_shared_path("fixtures/llama.f16.gguf"), NULL, &m) == ES_OK) {
        CHECK(es_classifier_create(m, 1, &c) == ES_ERR_UNSUPPORTED && !c,
              "a decoder is no classifier");
        es_model_free(m);
    }
}

static int rerun_scalar(char **argv) {
    pid_t pid = fork();
    if (pid == 0) {
        setenv("ES_FORCE_SCALAR", "1", 1);
        execl("/proc/self/exe", argv[0], (char *)NULL);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

int main(int argc, char **argv) {
    (void)argc;
    if (!es_test_shared()) {
        printf("no shared data folder: skipped\n");
        return ES_TEST_SKIP;
    }
    const char *scalar = getenv("ES_FORCE_SCALAR");
    printf("kernels: %s\n", scalar ? "scalar (ES_FORCE_SCALAR)" : "default");
    static const struct {
        const char *name;
        bool bert;
    } fx[] = {{"bert_cls", true}, {"roberta_cls", false}};
    for (size_t i = 0; i < 2; i++) {
        worst w = {0};
        for (int nt = 1; nt <= 2; nt++)
            run_fixture(fx[i].name, fx[i].bert, nt, &w);
        printf("%-11s max diff (1 and 2 threads): emb %.2e attn_ln %.2e hidden %.2e pooled %.2e "
               "logits %.2e "
               "probs %.2e | batch pooled %.2e logits %.2e | rows alone %.2e\n",
               fx[i].name, w.emb, w.attn, w.hidden, w.pooled, w.logits, w.probs, w.batch_pooled,
               w.batch_logits, w.alone);
    }
    test_no_pooler();
    test_not_classifier();
    if (!scalar) CHECK(rerun_scalar(argv) == 0, "the same checks under ES_FORCE_SCALAR=1");
    return es_test_finish();
}
