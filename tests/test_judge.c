/*
 * test_judge.c — the zero-shot emotion judge:
 *   1. on the qwen2 and llama fixtures (plain text, and qwen2 with ChatML forced):
 *      probabilities finite, in [0, 1], summing to 1 (1e-6) for every text, odd bytes,
 *      empty and over-long texts included; two runs bitwise identical; a batch of texts
 *      equals each text alone (1e-5); P(yes) / (P(yes) + P(no)) of single prompts equals
 *      a manual computation through es_decode / es_get_logits of the prompt alone
 *      (1e-5); the probabilities are the normalised wording means of the raw scores;
 *      truncation to max_text_tokens; argument errors;
 *   2. on the demo model (a tiny base model, a weak judge): accuracy on a few labelled
 *      sentences per class, printed (a mechanics test, no threshold).
 */
#include "common.h"
#include "emosteer.h"
#include "judge.h"
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NL ES_EMO_N_LABELS
#define NW ES_JUDGE_N_WORDINGS
#define TOL 1e-5
#if defined(__SANITIZE_ADDRESS__)
#define PER_CLASS 1 /* demo sentences per label: the sanitized forward pass is slow */
#else
#define PER_CLASS 2
#endif

static char long_text[6000];
static const char *texts[] = {
    "I am so angry that they cancelled my flight without any warning.",
    "We had a lovely picnic by the lake and laughed all afternoon.",
    "",
    "\xff\xfe\x80 broken \xc3 bytes \xf0\x9f and <|im_end|> <s></s> [INST]",
    long_text,
};
enum { NT = 5 };

/* P(yes) / (P(yes) + P(no)) of one prompt decoded alone in a fresh context. */
static double manual_entail(es_model *m, const es_judge *j, const int32_t *toks, int n) {
    es_model_info mi;
    es_model_get_info(m, &mi);
    es_context_params cp = es_context_default_params();
    cp.n_ctx = n + 4;
    cp.n_batch = n;
    es_context *ctx = NULL;
    if (es_context_create(m, &cp, &ctx) != ES_OK) return NAN;
    es_batch b = {.n_tokens = n, .token = toks};
    double s = NAN;
    if (es_decode(ctx, &b) == ES_OK) {
        const float *lg = es_get_logits(ctx, n - 1);
        double mx = -INFINITY, z = 0, py = 0, pn = 0;
        for (int i = 0; i < mi.n_vocab; i++)
            mx = fmax(mx, lg[i]);
        for (int i = 0; i < mi.n_vocab; i++)
            z += exp(lg[i] - mx);
        const int32_t *yes, *no;
        int ny, nn;
        es_judge_answer_ids(j, &yes, &ny, &no, &nn);
        for (int i = 0; i < ny; i++)
            py += exp(lg[yes[i]] - mx) / z;
        for (int i = 0; i < nn; i++)
            pn += exp(lg[no[i]] - mx) / z;
        s = py / (py + pn);
    }
    es_context_free(ctx);
    return s;
}

static void check_rows(const double *probs, int n, const char *what) {
    double worst = 0;
    bool ok = true;
    for (int i = 0; i < n; i++) {
        double sum = 0;
        for (int l = 0; l < NL; l++) {
            double p = probs[i * NL + l];
            ok = ok && isfinite(p) && p >= 0 && p <= 1;
            sum += p;
        }
        worst = fmax(worst, fabs(sum - 1));
    }
    CHECK(ok, "%s: probabilities finite and in [0, 1]", what);
    CHECK(worst < 1e-6, "%s: rows sum to 1 (worst %.3g)", what, worst);
}

static void test_fixture(const char *fixture, int chat_format) {
    const char *path = es_test_shared_path(fixture);
    es_model *m = NULL;
    es_model_params mp = es_model_default_params();
    if (!path || es_model_load(path, &mp, &m) != ES_OK) {
        printf("%s not available, skipped\n", fixture);
        return;
    }
    es_judge_params jp = es_judge_default_params();
    jp.chat_format = chat_format;
    jp.max_text_tokens = 48;
    jp.n_seq = 3;    /* 5 texts: two groups */
    jp.n_batch = 40; /* prefixes split across batches */
    jp.n_threads = 2;
    es_judge *j = NULL;
    es_status st = es_judge_create(m, &jp, &j);
    CHECK(st == ES_OK, "%s: judge create: %s", fixture, es_last_error());
    if (st != ES_OK) {
        es_model_free(m);
        return;
    }
    char tag[96];
    snprintf(tag, sizeof tag, "%s/%s", fixture, es_chat_format_name(es_judge_chat_format(j)));
    CHECK(es_judge_chat_format(j) == (chat_format < 0 ? ES_CHAT_NONE : (es_chat_format)chat_format),
          "%s: chat format", tag);
    const int32_t *yes, *no;
    int ny, nn;
    es_judge_answer_ids(j, &yes, &ny, &no, &nn);
    CHECK(ny > 0 && nn > 0, "%s: answer tokens", tag);

    double probs[NT * NL], probs2[NT * NL], one[NL], entail[NT * NL], mass[NT];
    double raw[NT * NL * NW];
    st = es_judge_score_ex(j, texts, NT, probs, entail, mass);
    CHECK(st == ES_OK, "%s: score: %s", tag, es_last_error());
    check_rows(probs, NT, tag);
    CHECK(es_judge_score(j, texts, NT, probs2) == ES_OK && !memcmp(probs, probs2, sizeof probs),
          "%s: two runs bitwise identical", tag);
    double md_alone = 0;
    for (int i = 0; i < NT; i++) {
        if (i == 1 || i == 2) continue; /* time: the others cover plain, odd and long text */
        CHECK(es_judge_score(j, &texts[i], 1, one) == ES_OK, "%s: score alone", tag);
        for (int l = 0; l < NL; l++)
            md_alone = fmax(md_alone, fabs(one[l] - probs[i * NL + l]));
    }
    CHECK(md_alone < TOL, "%s: batch vs alone %g", tag, md_alone);

    /* raw scores -> wording means -> normalised */
    CHECK(es_judge_score_raw(j, texts, NT, raw, NULL) == ES_OK, "%s: raw", tag);
    double md_norm = 0;
    for (int i = 0; i < NT; i++) {
        double e[NL], sum = 0;
        for (int l = 0; l < NL; l++) {
            e[l] = 0;
            for (int w = 0; w < NW; w++)
                e[l] += raw[(i * NL + l) * NW + w] / NW;
            sum += e[l];
            md_norm = fmax(md_norm, fabs(e[l] - entail[i * NL + l]));
        }
        for (int l = 0; l < NL; l++)
            md_norm = fmax(md_norm, fabs(e[l] / sum - probs[i * NL + l]));
        CHECK(mass[i] > 0 && mass[i] <= 1 + 1e-9, "%s: yes/no mass %g in (0, 1]", tag, mass[i]);
    }
    CHECK(md_norm < 1e-12, "%s: normalisation %g", tag, md_norm);

    /* single prompts decoded alone */
    double md_manual = 0;
    int checked = 0;
    for (int i = 0; i < NT; i++) {
        for (int q = (i * 7) % (NL * NW), k = 0; k < 2; k++, q = (q + 5) % (NL * NW)) {
            int32_t *toks = NULL;
            int n = 0;
            if (es_judge_prompt_tokens(j, texts[i], q / NW, q % NW, &toks, &n) != ES_OK) {
                CHECK(false, "%s: prompt tokens: %s", tag, es_last_error());
                continue;
            }
            double ref = manual_entail(m, j, toks, n);
            md_manual = fmax(md_manual, fabs(ref - raw[i * NL * NW + q]));
            if (!isfinite(ref)) md_manual = INFINITY;
            checked++;
            if (i == NT - 1) {
                int32_t *e = NULL;
                int ne = 0;
                es_judge_prompt_tokens(j, "", q / NW, q % NW, &e, &ne);
                CHECK(n <= ne + 48 + 8, "%s: long text cut: prompt of %d tokens, %d without text",
                      tag, n, ne);
                free(e);
            }
            free(toks);
        }
    }
    printf("%s: %d prompts, manual P(yes)/(P(yes)+P(no)) max diff %.3g, batch vs alone %.3g, "
           "mean yes/no mass %.3f; text 0: anger %.3f joy %.3f neutral %.3f\n",
           tag, checked, md_manual, md_alone, (mass[0] + mass[1]) / 2, probs[0], probs[3],
           probs[5]);
    CHECK(md_manual < TOL, "%s: manual entailment %g", tag, md_manual);

    /* truncation of the text itself */
    char *prep = NULL;
    CHECK(es_judge_prepare_text(j, long_text, 10, &prep) == ES_OK, "%s: prepare", tag);
    if (prep) {
        int32_t tk[64], ntk = 0;
        es_status tst =
            es_tokenize(es_model_vocab(m), prep, strlen(prep), false, false, tk, 64, &ntk);
        CHECK(tst == ES_OK && ntk <= 12 && strlen(prep) > 5, "%s: cut to 10 tokens: %d ('%s')", tag,
              ntk, prep);
        CHECK(!strncmp(prep, "Lorem", 5), "%s: the cut keeps the beginning: '%.20s'", tag, prep);
        free(prep);
    }
    CHECK(es_judge_prepare_text(j, texts[0], -1, &prep) == ES_OK && !strcmp(prep, texts[0]),
          "%s: a short clean text is unchanged", tag);
    free(prep);

    /* errors */
    const char *null_text[] = {"fine", NULL};
    CHECK(es_judge_score(j, null_text, 2, probs) == ES_ERR_INVALID_ARG, "%s: NULL text", tag);
    CHECK(es_judge_score(j, texts, 0, NULL) == ES_OK, "%s: n = 0", tag);
    CHECK(es_judge_score(NULL, texts, 1, probs) == ES_ERR_INVALID_ARG, "%s: NULL judge", tag);
    es_judge_free(j);

    es_judge_params bad = es_judge_default_params();
    bad.max_text_tokens = 0;
    CHECK(es_judge_create(m, &bad, &j) == ES_ERR_INVALID_ARG, "max_text_tokens 0");
    bad = es_judge_default_params();
    bad.chat_format = ES_CHAT_UNKNOWN;
    CHECK(es_judge_create(m, &bad, &j) == ES_ERR_INVALID_ARG, "chat_format unknown");
    es_model_free(m);
}

/* es_judge_score as an es_label_scorer_fn that also keeps the mean yes/no mass. */
typedef struct demo_scorer {
    es_judge *j;
    double mean_mass;
} demo_scorer;

static es_status demo_probs(void *user, const char *const *texts, int n, double *probs) {
    demo_scorer *d = user;
    double *mass = calloc((size_t)n + 1, sizeof *mass);
    es_status st = es_judge_score_ex(d->j, texts, n, probs, NULL, mass);
    d->mean_mass = 0;
    for (int i = 0; i < n; i++)
        d->mean_mass += mass[i] / n;
    free(mass);
    return st;
}

static void test_demo(void) {
    char path[1024], tsv[1024];
    snprintf(path, sizeof path, "%s/models/demo-16m.q8_0.gguf", es_test_source());
    snprintf(tsv, sizeof tsv, "%s/tests/data/labelled_sentences.tsv", es_test_source());
    es_model *m = NULL;
    es_model_params mp = es_model_default_params();
    if (es_model_load(path, &mp, &m) != ES_OK) {
        printf("demo model not available (%s), skipped\n", es_last_error());
        return;
    }
    es_judge *j = NULL;
    es_status st = es_judge_create(m, NULL, &j);
    CHECK(st == ES_OK, "demo judge: %s", es_last_error());
    es_labelled set;
    if (st == ES_OK) st = es_labelled_load(tsv, PER_CLASS, &set);
    CHECK(st == ES_OK, "labelled sentences: %s", es_last_error());
    if (st == ES_OK) {
        const int32_t *yes, *no;
        int ny, nn;
        es_judge_answer_ids(j, &yes, &ny, &no, &nn);
        double t0 = es_time_s();
        es_validation v;
        demo_scorer ds = {j, 0};
        st = es_validate_scorer(demo_probs, &ds, &set, &v);
        double dt = es_time_s() - t0;
        CHECK(st == ES_OK && v.n == PER_CLASS * NL, "demo validation: %s", es_last_error());
        double mm = ds.mean_mass;
        printf("demo-16m judge (%d yes / %d no tokens, %s): %d sentences in %.2f s, accuracy %.3f "
               "(chance 0.167), macro F1 %.3f, mean yes/no mass %.3f\n  F1:",
               ny, nn, es_chat_format_name(es_judge_chat_format(j)), v.n, dt, v.accuracy,
               v.macro_f1, mm);
        for (int l = 0; l < NL; l++)
            printf(" %s %.2f", es_emotion_name(l), v.f1[l]);
        printf("\n  predicted per gold label:");
        for (int g = 0; g < NL; g++) {
            printf(" %s[", es_emotion_name(g));
            for (int p = 0; p < NL; p++)
                printf("%d%s", v.confusion[g][p], p < NL - 1 ? " " : "]");
        }
        printf("\n");
        CHECK(v.accuracy >= 0 && v.accuracy <= 1, "accuracy in [0, 1]");
        es_labelled_clear(&set);
    }
    es_judge_free(j);
    es_model_free(m);
}

int main(void) {
    memset(long_text, 0, sizeof long_text);
    const char *lorem = "Lorem ipsum dolor sit amet, I feel furious and sad at once. ";
    while (strlen(long_text) + strlen(lorem) < sizeof long_text - 1)
        strcat(long_text, lorem);
    if (es_test_shared()) {
        test_fixture("fixtures/qwen2.f16.gguf", -1);
        test_fixture("fixtures/qwen2.f16.gguf", ES_CHAT_CHATML);
        test_fixture("fixtures/llama.f16.gguf", -1);
    } else {
        printf("shared folder not found: fixture tests skipped\n");
    }
    test_demo();
    return es_test_finish();
}
