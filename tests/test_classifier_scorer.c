/*
 * test_classifier_scorer.c — es_cls_scorer on the random tiny encoders of ../shared
 * (roberta_cls: anger disgust fear joy neutral sadness surprise; bert_cls: NLI
 * contradiction neutral entailment): mechanics, not accuracy. Rows sum to 1; the
 * emotion classifier's six equal es_classifier_classify's probabilities with surprise
 * left out and renormalised; NLI on one text equals a manual softmax over the six
 * hypotheses' entailment logits (es_classifier_logits with pairs, whose softmax is
 * es_classifier_classify's); the refusals; then `score --classifier` and `eval
 * --classifier` through $ES_BIN.
 */
#include "testutil.h"

#include "emosteer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *k_texts[] = {"I am so happy today!", "This is terrible and I hate it.",
                                "The kettle is on the table."};
#define N_TEXTS 3

static es_classifier *open_cls(const char *rel, es_model **m) {
    es_model_params mp = es_model_default_params();
    es_classifier *c = NULL;
    if (!CHECK(es_model_load(es_test_shared_path(rel), &mp, m) == ES_OK, "%s: %s", rel,
               es_last_error()))
        return NULL;
    if (!CHECK(es_classifier_create(*m, 2, &c) == ES_OK, "classifier %s: %s", rel, es_last_error()))
        return NULL;
    return c;
}

static void test_emotion(void) {
    es_model *m = NULL;
    es_classifier *c = open_cls("fixtures/roberta_cls.f16.gguf", &m);
    es_cls_scorer *s = NULL;
    if (c && CHECK(es_cls_scorer_create_emotion(c, &s) == ES_OK, "create: %s", es_last_error())) {
        CHECK(es_cls_scorer_n_extra(s) == 1 && !strcmp(es_cls_scorer_extra_label(s, 0), "surprise"),
              "extra: %s", es_cls_scorer_extra_label(s, 0));
        const int L = es_classifier_n_labels(c);
        float *p = malloc((size_t)N_TEXTS * L * sizeof *p);
        double probs[N_TEXTS][ES_EMO_N_LABELS], extra[N_TEXTS];
        CHECK(es_classifier_classify(c, k_texts, NULL, N_TEXTS, p) == ES_OK, "classify");
        CHECK(es_cls_scorer_score(s, k_texts, N_TEXTS, &probs[0][0], extra) == ES_OK, "score: %s",
              es_last_error());
        double maxdiff = 0, maxsum = 0;
        for (int i = 0; i < N_TEXTS; i++) {
            double want[ES_EMO_N_LABELS] = {0}, mass = 0, sum = 0, surprise = 0;
            for (int k = 0; k < L; k++) {
                es_emotion e;
                const char *name = es_classifier_label(c, k);
                if (!strcmp(name, "surprise"))
                    surprise = p[i * L + k];
                else if (CHECK(es_emotion_parse(name, &e) == ES_OK, "label %s", name))
                    want[e] = p[i * L + k], mass += p[i * L + k];
            }
            for (int l = 0; l < ES_EMO_N_LABELS; l++) {
                maxdiff = fmax(maxdiff, fabs(probs[i][l] - want[l] / mass));
                sum += probs[i][l];
            }
            maxsum = fmax(maxsum, fabs(sum - 1));
            CHECK(extra[i] == surprise, "text %d: extra surprise %g, classify %g", i, extra[i],
                  surprise);
        }
        printf("emotion classifier: max |p - classify renormalised| = %.3g, max |row sum - 1| = "
               "%.3g\n",
               maxdiff, maxsum);
        CHECK(maxdiff <= 1e-6 && maxsum <= 1e-6, "maxdiff %g, maxsum %g", maxdiff, maxsum);
        free(p);
    }
    es_cls_scorer_free(s);
    s = NULL;
    /* an emotion classifier has no entailment label */
    CHECK(c && es_cls_scorer_create_nli(c, NULL, &s) == ES_ERR_UNSUPPORTED && !s,
          "nli on an emotion classifier");
    CHECK(strstr(es_last_error(), "entailment") != NULL, "message: %s", es_last_error());
    es_classifier_free(c);
    es_model_free(m);
}

static void test_nli(void) {
    es_model *m = NULL;
    es_classifier *c = open_cls("fixtures/bert_cls.f16.gguf", &m);
    es_cls_scorer *s = NULL;
    if (c && CHECK(es_cls_scorer_create_emotion(c, &s) == ES_ERR_UNSUPPORTED,
                   "NLI labels must not map")) {
        CHECK(strstr(es_last_error(), "contradiction, neutral, entailment") != NULL, "message: %s",
              es_last_error());
    }
    CHECK(c && es_cls_scorer_create_nli(c, "no hole", &s) == ES_ERR_INVALID_ARG,
          "template without {}");
    CHECK(c && es_cls_scorer_create_nli(c, "{} and {}", &s) == ES_ERR_INVALID_ARG,
          "template with two {}");
    if (c &&
        CHECK(es_cls_scorer_create_nli(c, NULL, &s) == ES_OK, "create nli: %s", es_last_error())) {
        double probs[N_TEXTS][ES_EMO_N_LABELS], extra[N_TEXTS][ES_EMO_N_LABELS];
        CHECK(es_cls_scorer_score(s, k_texts, N_TEXTS, &probs[0][0], &extra[0][0]) == ES_OK,
              "score: %s", es_last_error());
        double maxsum = 0;
        for (int i = 0; i < N_TEXTS; i++) {
            double sum = 0;
            for (int l = 0; l < ES_EMO_N_LABELS; l++)
                sum += probs[i][l];
            maxsum = fmax(maxsum, fabs(sum - 1));
        }
        /* manual: text 1 against the six documented hypotheses */
        static const char *hyp[ES_EMO_N_LABELS] = {
            "This text expresses anger.",   "This text expresses disgust.",
            "This text expresses fear.",    "This text expresses joy.",
            "This text expresses sadness.", "This text expresses no particular emotion."};
        const char *prem[ES_EMO_N_LABELS];
        for (int l = 0; l < ES_EMO_N_LABELS; l++)
            prem[l] = k_texts[1];
        const int L = es_classifier_n_labels(c), ent = 2; /* contradiction, neutral, entailment */
        CHECK(!strcmp(es_classifier_label(c, ent), "entailment"), "label 2 is %s",
              es_classifier_label(c, ent));
        float logits[ES_EMO_N_LABELS * 3], p[ES_EMO_N_LABELS * 3];
        CHECK(L == 3, "n_labels %d", L);
        CHECK(es_classifier_logits(c, prem, hyp, ES_EMO_N_LABELS, logits) == ES_OK, "logits");
        CHECK(es_classifier_classify(c, prem, hyp, ES_EMO_N_LABELS, p) == ES_OK, "classify");
        double mx = -INFINITY, z = 0, maxdiff = 0, maxent = 0;
        for (int l = 0; l < ES_EMO_N_LABELS; l++)
            mx = fmax(mx, logits[l * 3 + ent]);
        for (int l = 0; l < ES_EMO_N_LABELS; l++)
            z += exp(logits[l * 3 + ent] - mx);
        for (int l = 0; l < ES_EMO_N_LABELS; l++) {
            maxdiff = fmax(maxdiff, fabs(probs[1][l] - exp(logits[l * 3 + ent] - mx) / z));
            maxent =
                fmax(maxent, fabs(extra[1][l] -
                                  p[l * 3 + ent])); /* entail:<label> = classify's P(entailment) */
        }
        printf("nli: max |p - manual softmax of entailment logits| = %.3g, max |entail - classify| "
               "= %.3g, max |row "
               "sum - 1| = %.3g\n",
               maxdiff, maxent, maxsum);
        CHECK(maxdiff <= 1e-6 && maxent <= 1e-6 && maxsum <= 1e-6, "maxdiff %g maxent %g maxsum %g",
              maxdiff, maxent, maxsum);
    }
    es_cls_scorer_free(s);
    es_classifier_free(c);
    es_model_free(m);
}

static void test_synonyms(void) {
    es_emotion e;
    CHECK(es_emotion_parse_synonym("Happiness", &e) == ES_OK && e == ES_EMO_JOY, "happiness");
    CHECK(es_emotion_parse_synonym("SAD", &e) == ES_OK && e == ES_EMO_SADNESS, "sad");
    CHECK(es_emotion_parse_synonym("angry", &e) == ES_OK && e == ES_EMO_ANGER, "angry");
    CHECK(es_emotion_parse_synonym("scared", &e) == ES_OK && e == ES_EMO_FEAR, "scared");
    CHECK(es_emotion_parse_synonym("Neutral", &e) == ES_OK && e == ES_EMO_NEUTRAL, "neutral");
    CHECK(es_emotion_parse_synonym("surprise", &e) == ES_ERR_INVALID_ARG, "surprise");
}

/* ---- the CLI ---- */

static int run_cmd(const char *cmd, char *out, size_t cap) {
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    char sink[4096];
    while (fread(sink, 1, sizeof sink, p) > 0) {
    }
    int status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_cli(const char *bin) {
    char tmp[256], cmd[8192], out[65536], txt[300], roberta[1024], bert[1024], llama[1024];
    snprintf(tmp, sizeof tmp, "/tmp/es_test_cls_scorer_%d", (int)getpid());
    if (!CHECK(mkdir(tmp, 0777) == 0, "mkdir %s", tmp)) return;
    snprintf(roberta, sizeof roberta, "%s", es_test_shared_path("fixtures/roberta_cls.f16.gguf"));
    snprintf(bert, sizeof bert, "%s", es_test_shared_path("fixtures/bert_cls.f16.gguf"));
    snprintf(llama, sizeof llama, "%s", es_test_shared_path("fixtures/llama.f16.gguf"));
    snprintf(txt, sizeof txt, "%s/t.txt", tmp);
    FILE *f = fopen(txt, "w");
    if (f) {
        fputs("I am so happy today!\nThis is terrible.\n", f);
        fclose(f);
    }
    snprintf(cmd, sizeof cmd, "'%s' score --texts '%s' --classifier '%s' 2>/dev/null", bin, txt,
             roberta);
    int rc = run_cmd(cmd, out, sizeof out);
    CHECK(rc == 0, "score --classifier: rc %d", rc);
    CHECK(strstr(out, "\"extra_scores\":{\"surprise\":") != NULL, "no surprise in %s", out);
    CHECK(strstr(out, "\"scorer\":\"classifier (roberta_cls.f16.gguf)\"") != NULL, "scorer in %s",
          out);
    snprintf(cmd, sizeof cmd, "'%s' score --texts '%s' --nli '%s' 2>/dev/null", bin, txt, bert);
    rc = run_cmd(cmd, out, sizeof out);
    CHECK(rc == 0 && strstr(out, "\"entail:joy\"") != NULL, "score --nli: rc %d: %s", rc, out);
    /* a decoder model, the NLI model as an emotion classifier */
    snprintf(cmd, sizeof cmd, "'%s' score --texts '%s' --classifier '%s' 2>&1", bin, txt, llama);
    rc = run_cmd(cmd, out, sizeof out);
    CHECK(rc == 1 && strstr(out, "not an encoder") != NULL, "decoder as --classifier: rc %d: %s",
          rc, out);
    snprintf(cmd, sizeof cmd, "'%s' score --texts '%s' --classifier '%s' 2>&1", bin, txt, bert);
    rc = run_cmd(cmd, out, sizeof out);
    CHECK(rc == 1 && strstr(out, "contradiction, neutral, entailment") != NULL,
          "NLI as --classifier: rc %d: %s", rc, out);
    /* eval on the demo model */
    char model[1024], ev[1024];
    snprintf(model, sizeof model, "%s/models/demo-16m.q8_0.gguf", es_test_source());
    snprintf(ev, sizeof ev, "%s/models/demo-16m.ev.gguf", es_test_source());
    if (access(model, R_OK) == 0 && access(ev, R_OK) == 0) {
        snprintf(cmd, sizeof cmd,
                 "'%s' eval -m '%s' --ev '%s' --emotions joy --alphas 0,2 --n-queries 1 -n 8 "
                 "--classifier '%s' -o "
                 "'%s/ev' 2>&1",
                 bin, model, ev, roberta, tmp);
        rc = run_cmd(cmd, out, sizeof out);
        CHECK(rc == 0, "eval --classifier: rc %d: %s", rc, out);
        char path[512];
        snprintf(path, sizeof path, "%s/ev/results.json", tmp);
        char *res = es_test_read_file(path, NULL);
        CHECK(res && strstr(res, "\"classifier (roberta_cls.f16.gguf)\"") != NULL,
              "results.json names the scorer");
        free(res);
        snprintf(path, sizeof path, "%s/ev/generations.jsonl", tmp);
        res = es_test_read_file(path, NULL);
        CHECK(res && strstr(res, "\"classifier:surprise\"") != NULL,
              "generations.jsonl keeps surprise");
        free(res);
        snprintf(path, sizeof path, "%s/ev/results-lexicon.json", tmp);
        CHECK(access(path, R_OK) == 0, "results-lexicon.json");
    } else {
        printf("no demo model: eval --classifier skipped\n");
    }
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (es_test_failed == 0 && system(cmd) != 0) printf("could not remove %s\n", tmp);
}

int main(void) {
    if (!es_test_shared_path("fixtures/roberta_cls.f16.gguf") ||
        access(es_test_shared_path("fixtures/roberta_cls.f16.gguf"), R_OK) != 0) {
        printf("needs ../shared/fixtures: skipped\n");
        return ES_TEST_SKIP;
    }
    test_synonyms();
    test_emotion();
    test_nli();
    const char *bin = getenv("ES_BIN");
    if (bin && access(bin, X_OK) == 0)
        test_cli(bin);
    else
        printf("no ES_BIN: CLI checks skipped\n");
    return es_test_finish();
}
