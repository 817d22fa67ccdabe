/* test_eval_metrics.c — the evaluation metrics against hand-computed values:
 * statistics and t quantiles, least squares, word tokens, distinct-2, rep-4,
 * degenerate responses, EAS, detected labels, and es_eval_summarize on a small
 * synthetic run whose every number is worked out in the comments. */
#include "eval_metrics.h"
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static double worst; /* largest |got - want| of all near() checks */

static bool near(double got, double want, double tol) {
    double d = fabs(got - want);
    if (isnan(got) || isnan(want)) d = isnan(got) && isnan(want) ? 0 : INFINITY;
    if (d > worst && d < INFINITY) worst = d;
    return d <= tol;
}
#define NEAR(got, want, tol, what)                                                                 \
    CHECK(near((got), (want), (tol)), "%s: got %.9g want %.9g", what, (double)(got), (double)(want))

static void test_stats(void) {
    /* mean 5, sample sd sqrt(32/7) = 2.1380899, t(7) = 2.3646243,
     * half-width 2.3646243 * 2.1380899 / sqrt(8) = 1.7874880 */
    double x[] = {2, 4, 4, NAN, 4, 5, 5, 7, INFINITY, 9};
    es_stat s = es_stat_of(x, 10);
    CHECK(s.n == 8, "n %d", s.n);
    NEAR(s.mean, 5.0, 1e-12, "mean");
    NEAR(s.sd, 2.138089935299395, 1e-12, "sd");
    NEAR(s.ci_lo, 3.2125120451713745, 1e-6, "ci_lo");
    NEAR(s.ci_hi, 6.7874879548286255, 1e-6, "ci_hi");
    double one = 3.5;
    s = es_stat_of(&one, 1);
    CHECK(s.n == 1 && s.mean == 3.5 && isnan(s.sd) && isnan(s.ci_lo), "n=1: mean %g sd %g", s.mean,
          s.sd);
    s = es_stat_of(NULL, 0);
    CHECK(s.n == 0 && isnan(s.mean), "n=0");

    NEAR(es_t975(1), 12.7062047, 1e-7, "t975(1)");
    NEAR(es_t975(10), 2.2281389, 1e-7, "t975(10)");
    NEAR(es_t975(30), 2.0422725, 1e-7, "t975(30)");
    NEAR(es_t975(31), 2.0395134, 1e-6, "t975(31)");
    NEAR(es_t975(60), 2.0002978, 1e-6, "t975(60)");
    NEAR(es_t975(120), 1.9799304, 1e-6, "t975(120)");
    NEAR(es_t975(100000), 1.959987, 1e-5, "t975(1e5)");
    CHECK(isnan(es_t975(0)), "t975(0) is NaN");
}

static void test_fit(void) {
    /* exact line on [0, 2]: slope 0.15, intercept 0.2, R^2 1 */
    double a[] = {-1, 0, 1, 2, 4}, y[] = {0.1, 0.2, 0.35, 0.5, 0.9};
    es_linearity f = es_linear_fit(a, y, 5, 0, 2);
    CHECK(f.n_points == 3, "points %d", f.n_points);
    NEAR(f.slope, 0.15, 1e-12, "slope [0,2]");
    NEAR(f.intercept, 0.2, 1e-12, "intercept [0,2]");
    NEAR(f.r2, 1.0, 1e-12, "r2 [0,2]");
    /* all five: slope 0.16148649, intercept 0.21621622, R^2 0.98457322 */
    f = es_linear_fit(a, y, 5, -INFINITY, INFINITY);
    NEAR(f.slope, 0.16148648648648647, 1e-12, "slope all");
    NEAR(f.intercept, 0.2162162162162162, 1e-12, "intercept all");
    NEAR(f.r2, 0.984573221180364, 1e-12, "r2 all");
    /* (0,0) (1,1) (2,1): slope 1/2, intercept 1/6, SS_res 1/6, SS_tot 2/3, R^2 0.75 */
    double a2[] = {0, 1, 2}, y2[] = {0, 1, 1};
    f = es_linear_fit(a2, y2, 3, 0, 2);
    NEAR(f.slope, 0.5, 1e-12, "slope 3pt");
    NEAR(f.intercept, 1.0 / 6, 1e-12, "intercept 3pt");
    NEAR(f.r2, 0.75, 1e-12, "r2 3pt");
    /* flat y: slope 0, R^2 undefined; one point: nothing */
    double y3[] = {0.4, 0.4, 0.4};
    f = es_linear_fit(a2, y3, 3, 0, 2);
    CHECK(fabs(f.slope) < 1e-12 && isnan(f.r2), "flat: slope %g r2 %g", f.slope, f.r2);
    f = es_linear_fit(a2, y3, 3, 0.5, 1.5);
    CHECK(f.n_points == 1 && isnan(f.slope), "one point: slope %g", f.slope);
}

static void test_words(void) {
    uint64_t *w = NULL, *w2 = NULL;
    size_t n = 0, n2 = 0;
    CHECK(es_word_hashes("Don't STOP!!", &w, &n) == ES_OK && n == 3, "Don't STOP!!: %zu words", n);
    CHECK(es_word_hashes("don t stop", &w2, &n2) == ES_OK && n2 == 3, "don t stop");
    CHECK(n == 3 && n2 == 3 && !memcmp(w, w2, 3 * sizeof *w), "case folding and splitting");
    free(w);
    free(w2);
    CHECK(es_word_hashes("Café au lait, 42x!", &w, &n) == ES_OK && n == 4,
          "UTF-8 word stays one: %zu", n);
    free(w);
    CHECK(es_word_hashes("... !!! ---", &w, &n) == ES_OK && n == 0 && !w, "punctuation only");
    CHECK(es_word_hashes(NULL, &w, &n) == ES_OK && n == 0, "NULL text");
}

static void test_fluency(void) {
    es_text_fluency f = {0, 0, 0, false};
    /* the cat the cat the dog: bigrams the-cat cat-the the-cat cat-the the-dog -> 3/5;
     * 4-grams: 3 distinct of 3 -> rep-4 0 */
    CHECK(es_text_fluency_of("The cat, the cat; the DOG.", NULL, &f) == ES_OK, "fluency 1");
    CHECK(f.n_words == 6, "words %d", f.n_words);
    NEAR(f.distinct2, 0.6, 1e-12, "distinct2 cat");
    NEAR(f.rep4, 0.0, 1e-12, "rep4 cat");
    CHECK(!f.degenerate, "cat is not degenerate");
    /* a b c d x3: 9 4-grams, 4 distinct -> rep-4 5/9; 11 bigrams, 4 distinct */
    CHECK(es_text_fluency_of("a b c d a b c d a b c d", NULL, &f) == ES_OK, "fluency 2");
    NEAR(f.rep4, 5.0 / 9, 1e-12, "rep4 abcd");
    NEAR(f.distinct2, 4.0 / 11, 1e-12, "distinct2 abcd");
    CHECK(f.degenerate, "abcd x3 is degenerate");
    /* words one..ten then one two three four again: 11 4-grams, 10 distinct -> 1/11,
     * below the 0.3 threshold */
    CHECK(es_text_fluency_of("one two three four five six seven eight nine ten one two three four",
                             NULL, &f) == ES_OK,
          "fluency 3");
    NEAR(f.rep4, 1.0 / 11, 1e-12, "rep4 one..ten");
    CHECK(!f.degenerate, "one..ten not degenerate");
    es_fluency_params strict = {0.05, 3};
    CHECK(es_text_fluency_of("one two three four five six seven eight nine ten one two three four",
                             &strict, &f) == ES_OK &&
              f.degenerate,
          "threshold 0.05 makes it degenerate");
    CHECK(es_text_fluency_of("Hello there", NULL, &f) == ES_OK && f.n_words == 2 && f.degenerate &&
              f.distinct2 == 1.0 && f.rep4 == 0.0,
          "two words: degenerate, distinct2 %g", f.distinct2);
    CHECK(es_text_fluency_of("", NULL, &f) == ES_OK && f.n_words == 0 && f.degenerate &&
              isnan(f.distinct2),
          "empty: degenerate, distinct2 NaN");
    CHECK(es_text_fluency_of("no no no no no no no no", NULL, &f) == ES_OK && f.degenerate,
          "no x8");
    NEAR(f.rep4, 0.8, 1e-12, "rep4 no x8 (5 4-grams, 1 distinct)");

    double d = 0;
    const char *texts[] = {"a b", "A B!", "b a", "", "c"};
    /* bigrams never span texts: ab ab ba -> 2/3 */
    CHECK(es_distinct_n_pooled(texts, 5, 2, &d) == ES_OK, "pooled");
    NEAR(d, 2.0 / 3, 1e-12, "pooled distinct-2");
    CHECK(es_distinct_n_pooled(texts, 5, 1, &d) == ES_OK, "pooled 1");
    NEAR(d, 3.0 / 7, 1e-12, "pooled distinct-1 (a b a b b a c: 3 of 7)");
    CHECK(es_distinct_n("x y x y", 2, &d) == ES_OK, "distinct_n");
    NEAR(d, 2.0 / 3, 1e-12, "distinct-2 x y x y");
    CHECK(es_distinct_n("x", 0, &d) == ES_ERR_INVALID_ARG, "order 0 rejected");
}

static void test_emotion(void) {
    double sc[] = {0.1, 0.2, 0.3, 0.4};
    NEAR(es_emotion_eas(sc, 4, 3), 0.6, 1e-12, "EAS without neutral (index 3)");
    NEAR(es_emotion_eas(sc, 4, -1), 1.0, 1e-12, "EAS no neutral label");
    CHECK(isnan(es_emotion_eas(NULL, 4, 3)), "EAS unscored is NaN");

    double row[4] = {0};
    double tie[] = {0.4, 0.4, 0.1, 0.1};
    CHECK(es_detect_label_add(tie, 4, 3, row), "tie added");
    CHECK(row[0] == 0.5 && row[1] == 0.5 && row[2] == 0 && row[3] == 0, "tie split %g %g", row[0],
          row[1]);
    double zero[] = {0, 0, 0, 0};
    CHECK(es_detect_label_add(zero, 4, 3, row) && row[3] == 1, "all zero counts as neutral");
    CHECK(es_detect_label_add(NULL, 4, 3, row) && row[3] == 2, "unscored counts as neutral");
    CHECK(!es_detect_label_add(zero, 4, -1, row), "no neutral label: nothing added");
    CHECK(es_detect_label_add(sc, 4, 3, row) && row[3] == 3, "neutral may win");
    /* lexicon adapter: joy 2, anger 1, prior 1 -> joy 0.5, anger 0.25, neutral 0.25 */
    es_lexicon_score ls;
    memset(&ls, 0, sizeof ls);
    ls.weight[ES_EMO_JOY] = 2;
    ls.weight[ES_EMO_ANGER] = 1;
    double lx[ES_EMO_N_LABELS];
    es_scores_from_lexicon(&ls, 0, lx);
    CHECK(!strcmp(es_eval_lexicon_labels[ES_EMO_JOY], "joy") &&
              !strcmp(es_eval_lexicon_labels[5], "neutral"),
          "lexicon label order");
    NEAR(lx[ES_EMO_JOY], 0.5, 1e-12, "lexicon joy");
    NEAR(lx[ES_EMO_ANGER], 0.25, 1e-12, "lexicon anger");
    NEAR(lx[5], 0.25, 1e-12, "lexicon neutral");
    NEAR(es_emotion_eas(lx, 6, 5), 0.75, 1e-12, "lexicon EAS = W/(W+prior)");
    memset(&ls, 0, sizeof ls);
    es_scores_from_lexicon(&ls, 2.0, lx);
    CHECK(lx[5] == 1.0 && lx[0] == 0 && lx[3] == 0, "no emotion words: all neutral");
    double e3[] = {0, 0.9, NAN, 0.1};
    CHECK(es_detect_label_add(e3, 4, 3, row) && row[1] == 1.5, "NaN ignored, top label 1");
}

/* The synthetic run (labels anger, joy, neutral; alphas 0, 1, 2; two queries):
 *   joy   at alpha a: joy = 0.1 + 0.2a +- 0.05 (q1 +, q2 -), neutral = 1 - joy.
 *         mean 0.1 + 0.2a, sd sqrt(2 * 0.05^2 / 1) = 0.0707107; EAS = joy;
 *         delta-EAS at 2 = 0.4; fit slope 0.2, intercept 0.1, R^2 1.
 *   anger at alphas 0, 1, 2: anger = 0.1, 0.3, 0.2 (both queries), neutral = rest.
 *         fit slope 0.05, intercept 0.15, R^2 0.25 (SS_res .015, SS_tot .02).
 *         at alpha 2 q2 answers "no no no no no no no no": rep-4 0.8, degenerate.
 *   detected: joy q1 at alpha 2 (0.55 > 0.45) is joy; everything else neutral.
 *         accuracy at 0: 0/4; at 2: 1/4.
 *   ppl 10 and 40 in every cell -> geometric mean 20. topic 0.9 and 0.7 -> 0.8.
 *   one extra "fear" record is outside the emotion list -> n_ignored 1. */
static void test_summarize(void) {
    const char *labels[] = {"anger", "joy", "neutral"};
    const char *emotions[] = {"joy", "anger"};
    double alphas[] = {2, 0, 1}; /* sorted by the summarizer */
    es_gen_record recs[13];
    double scores[13][3];
    int n = 0;
    for (int a = 0; a <= 2; a++)
        for (int q = 0; q < 2; q++) {
            double joy = 0.1 + 0.2 * a + (q == 0 ? 0.05 : -0.05);
            double anger = a == 0 ? 0.1 : a == 1 ? 0.3 : 0.2;
            for (int e = 0; e < 2; e++) {
                es_gen_record *r = &recs[n];
                *r = es_gen_record_empty();
                r->emotion = (char *)(e == 0 ? "joy" : "anger");
                r->alpha = a;
                r->query_id = (char *)(q == 0 ? "q1" : "q2");
                r->prompt = (char *)"How was your day?";
                r->response = (char *)(e == 1 && a == 2 && q == 1
                                           ? "no no no no no no no no"
                                           : "It was a fine day at the lake with friends.");
                r->n_labels = 3;
                r->scores = scores[n];
                scores[n][0] = e == 0 ? 0 : anger;
                scores[n][1] = e == 0 ? joy : 0;
                scores[n][2] = 1 - scores[n][0] - scores[n][1];
                r->ppl = q == 0 ? 10 : 40;
                r->topic = q == 0 ? 0.9 : 0.7;
                r->valence = e == 0 ? 0.5 : -0.5;
                n++;
            }
        }
    recs[n] = es_gen_record_empty();
    recs[n].emotion = (char *)"fear";
    recs[n].alpha = 1;
    recs[n].query_id = (char *)"q1";
    recs[n].response = (char *)"x";
    n++;

    es_eval_settings set = {0};
    set.model_name = (char *)"synthetic";
    set.seed = 7;
    es_eval_results *r = NULL;
    es_status st =
        es_eval_summarize(recs, (size_t)n, emotions, 2, alphas, 3, labels, 3, &set, NULL, &r);
    CHECK(st == ES_OK, "summarize: %s", es_last_error());
    if (st != ES_OK) return;
    CHECK(r->n_emotions == 2 && r->n_alphas == 3 && r->n_labels == 3 && r->neutral == 2, "shape");
    CHECK(r->alphas[0] == 0 && r->alphas[1] == 1 && r->alphas[2] == 2, "alphas sorted");
    CHECK(r->emotion_label[0] == 1 && r->emotion_label[1] == 0, "emotion -> label");
    CHECK(r->n_records == 13 && r->n_ignored == 1, "records %d ignored %d", r->n_records,
          r->n_ignored);
    CHECK(r->settings.model_name && !strcmp(r->settings.model_name, "synthetic") &&
              r->settings.seed == 7,
          "settings copied");
    for (int a = 0; a < 3; a++) {
        es_eval_cell *j = es_eval_cell_at(r, 0, a), *g = es_eval_cell_at(r, 1, a);
        CHECK(j->n == 2 && g->n == 2, "cell sizes");
        NEAR(j->target_prob.mean, 0.1 + 0.2 * a, 1e-12, "joy mean");
        NEAR(j->target_prob.sd, 0.07071067811865475, 1e-12, "joy sd");
        /* CI half-width t(1) * sd / sqrt(2) = 12.7062047 * 0.05 */
        NEAR(j->target_prob.ci_hi - j->target_prob.mean, 12.7062047 * 0.05, 1e-9, "joy ci");
        NEAR(j->eas.mean, 0.1 + 0.2 * a, 1e-12, "joy EAS");
        NEAR(j->eas_delta, 0.2 * a, 1e-12, "joy delta-EAS");
        NEAR(g->target_prob.mean, a == 0 ? 0.1 : a == 1 ? 0.3 : 0.2, 1e-12, "anger mean");
        NEAR(g->target_prob.sd, 0.0, 1e-12, "anger sd");
        NEAR(j->ppl, 20.0, 1e-9, "geometric mean ppl");
        NEAR(j->topic.mean, 0.8, 1e-12, "topic");
        NEAR(j->valence.mean, 0.5, 1e-12, "valence");
        NEAR(j->degenerate_share, 0.0, 0, "joy degenerate");
        NEAR(g->degenerate_share, a == 2 ? 0.5 : 0.0, 0, "anger degenerate");
        NEAR(g->rep4.mean, a == 2 ? 0.4 : 0.0, 1e-12, "anger rep4 mean (0.8 + 0)/2");
        NEAR(j->n_words.mean, 10, 0, "words");
    }
    NEAR(r->linearity[0].slope, 0.2, 1e-12, "joy slope");
    NEAR(r->linearity[0].intercept, 0.1, 1e-12, "joy intercept");
    NEAR(r->linearity[0].r2, 1.0, 1e-12, "joy R2");
    NEAR(r->linearity[1].slope, 0.05, 1e-12, "anger slope");
    NEAR(r->linearity[1].intercept, 0.15, 1e-12, "anger intercept");
    NEAR(r->linearity[1].r2, 0.25, 1e-12, "anger R2");
    NEAR(r->linearity_eas[0].slope, 0.2, 1e-12, "joy EAS slope");
    /* confusion at alpha 2: joy row = {anger 0, joy 1, neutral 1}; anger row = {0, 0, 2} */
    const double *jr = es_eval_confusion_row(r, 2, 0), *ar = es_eval_confusion_row(r, 2, 1);
    CHECK(jr[0] == 0 && jr[1] == 1 && jr[2] == 1, "joy row at 2: %g %g %g", jr[0], jr[1], jr[2]);
    CHECK(ar[0] == 0 && ar[1] == 0 && ar[2] == 2, "anger row at 2: %g %g %g", ar[0], ar[1], ar[2]);
    NEAR(r->accuracy[0], 0.0, 0, "accuracy at 0");
    NEAR(r->accuracy[2], 0.25, 1e-12, "accuracy at 2");
    CHECK(r->n_samples == 6, "one sample per cell: %d", r->n_samples);
    CHECK(r->n_samples == 6 && r->samples[2].emotion == 0 && r->samples[2].alpha == 2 &&
              r->samples[2].detected == 1 && near(r->samples[2].target_prob, 0.55, 1e-12),
          "sample joy@2 detected joy");
    es_eval_results_free(r);

    /* emotions and alphas collected from the records */
    r = NULL;
    st = es_eval_summarize(recs, (size_t)n, NULL, 0, NULL, 0, labels, 3, NULL, NULL, &r);
    CHECK(st == ES_OK && r->n_emotions == 3 && !strcmp(r->emotions[2], "fear") && r->n_alphas == 3,
          "collected axes");
    if (r) {
        es_eval_cell *fear = es_eval_cell_at(r, 2, 1);
        CHECK(fear->n == 1 && isnan(fear->target_prob.mean) && fear->degenerate_share == 1.0,
              "unscored fear cell: n %d", fear->n);
        CHECK(es_eval_cell_at(r, 2, 0)->n == 0 && isnan(es_eval_cell_at(r, 2, 0)->degenerate_share),
              "empty cell stays NaN");
        CHECK(r->emotion_label[2] == -1, "fear has no label");
    }
    es_eval_results_free(r);

    /* errors */
    r = NULL;
    double dup[] = {1, 1};
    CHECK(es_eval_summarize(recs, (size_t)n, emotions, 2, dup, 2, labels, 3, NULL, NULL, &r) ==
                  ES_ERR_INVALID_ARG &&
              !r,
          "repeated alpha rejected");
    CHECK(es_eval_summarize(recs, (size_t)n, emotions, 2, alphas, 3, labels, 2, NULL, NULL, &r) ==
                  ES_ERR_INVALID_ARG &&
              strstr(es_last_error(), "has 3 scores"),
          "label count mismatch names the record: %s", es_last_error());
    CHECK(es_eval_summarize(NULL, 0, NULL, 0, NULL, 0, NULL, 0, NULL, NULL, &r) ==
              ES_ERR_INVALID_ARG,
          "nothing to summarise");
}

int main(void) {
    test_stats();
    test_fit();
    test_words();
    test_fluency();
    test_emotion();
    test_summarize();
    printf("max |got - want| over numeric checks: %.3g\n", worst);
    return es_test_finish();
}
