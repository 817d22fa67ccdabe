/*
 * test_sampler.c — token sampling: validation, greedy, determinism, top-k/top-p/min-p
 * sets against a brute-force reference, penalties, and empirical frequencies against
 * softmax(logits / T).
 */
#include "emosteer.h"
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A small deterministic generator for test data (not the sampler's). */
static uint64_t test_rng = 0x12345678u;
static double test_uniform(void) {
    test_rng = test_rng * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(test_rng >> 11) * 0x1.0p-53;
}
static float test_normal(void) {
    double u1 = test_uniform(), u2 = test_uniform();
    if (u1 < 1e-300) u1 = 1e-300;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static es_sampler *make(es_sampler_params p, int32_t n_vocab) {
    es_sampler *s = NULL;
    es_status st = es_sampler_create(&p, n_vocab, &s);
    CHECK(st == ES_OK, "create: %s", es_last_error());
    return s;
}

static es_sampler_params plain(float temp) {
    es_sampler_params p = es_sampler_default_params();
    p.temp = temp;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    return p;
}

static int32_t argmax(const float *x, int32_t n) {
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

/* ---- reference: which tokens may be drawn, with which probability ---- */

typedef struct ref_cand {
    float logit;
    int32_t id;
} ref_cand;

static int ref_cmp(const void *pa, const void *pb) {
    const ref_cand *a = pa, *b = pb;
    if (a->logit != b->logit) return a->logit > b->logit ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

/* Fills prob[n] with the final distribution of the brute-force pipeline: full sort,
 * top-k, top-p over the top-k mass, min-p, softmax(l / T). */
static void reference_probs(const float *logits, int32_t n, const es_sampler_params *p,
                            double *prob) {
    ref_cand *c = malloc((size_t)n * sizeof(*c));
    for (int32_t i = 0; i < n; i++)
        c[i] = (ref_cand){logits[i], i};
    qsort(c, (size_t)n, sizeof(*c), ref_cmp);
    int32_t k = n;
    if (p->top_k > 0 && p->top_k < k) k = p->top_k;
    double lmax = c[0].logit, z = 0;
    for (int32_t i = 0; i < k; i++)
        z += exp(c[i].logit - lmax);
    int32_t keep = k;
    if (p->top_p < 1.0f) {
        double mass = 0;
        for (int32_t i = 0; i < k; i++) {
            mass += exp(c[i].logit - lmax);
            if (mass >= p->top_p * z) {
                keep = i + 1;
                break;
            }
        }
    }
    if (p->min_p > 0.0f) {
        int32_t m = 0;
        while (m < keep && exp(c[m].logit - lmax) >= p->min_p)
            m++;
        keep = m;
    }
    for (int32_t i = 0; i < n; i++)
        prob[i] = 0;
    double sum = 0;
    for (int32_t i = 0; i < keep; i++)
        sum += exp((c[i].logit - lmax) / p->temp);
    for (int32_t i = 0; i < keep; i++)
        prob[c[i].id] = exp((c[i].logit - lmax) / p->temp) / sum;
    free(c);
}

/* Draws `draws` tokens and compares the frequencies with reference_probs: every drawn
 * token must be allowed, and Pearson's chi-square over the allowed tokens (pooling
 * those with expected count < 5) must stay below a generous bound. */
static void check_distribution(const char *what, const float *logits, int32_t n,
                               es_sampler_params p, int draws) {
    double *prob = calloc((size_t)n, sizeof(*prob));
    int *count = calloc((size_t)n, sizeof(*count));
    reference_probs(logits, n, &p, prob);
    es_sampler *s = make(p, n);
    int bad = 0;
    for (int d = 0; d < draws; d++) {
        int32_t t = es_sampler_sample(s, logits);
        if (t < 0 || t >= n || prob[t] == 0) {
            bad++;
            continue;
        }
        count[t]++;
    }
    double chi2 = 0, pooled_e = 0, pooled_o = 0, max_dev = 0;
    int cells = 0;
    for (int32_t i = 0; i < n; i++) {
        if (prob[i] == 0) continue;
        double e = prob[i] * draws, o = count[i];
        double dev = fabs(o / draws - prob[i]);
        if (dev > max_dev) max_dev = dev;
        if (e < 5) {
            pooled_e += e;
            pooled_o += o;
            continue;
        }
        chi2 += (o - e) * (o - e) / e;
        cells++;
    }
    if (pooled_e > 0) {
        chi2 += (pooled_o - pooled_e) * (pooled_o - pooled_e) / pooled_e;
        cells++;
    }
    int df = cells > 1 ? cells - 1 : 1;
    /* mean df, sd sqrt(2 df): allow 6 sd above the mean (p < 1e-6 for a correct sampler) */
    double bound = df + 6 * sqrt(2.0 * df) + 10;
    printf("%s: %d draws, %d cells, chi2 %.1f (bound %.1f), max |freq - p| %.4f, disallowed draws "
           "%d\n",
           what, draws, cells, chi2, bound, max_dev, bad);
    CHECK(bad == 0, "%s: %d draws outside the allowed set", what, bad);
    CHECK(chi2 < bound, "%s: chi2 %.1f >= %.1f", what, chi2, bound);
    CHECK(max_dev < 0.02, "%s: max |freq - p| %.4f", what, max_dev);
    es_sampler_free(s);
    free(prob);
    free(count);
}

static void test_validation(void) {
    static const struct {
        const char *field;
        int which;
    } bad[] = {{"temp", 0},
               {"temp", 1},
               {"top_k", 2},
               {"top_p", 3},
               {"top_p", 4},
               {"min_p", 5},
               {"repeat_penalty", 6},
               {"repeat_penalty", 7},
               {"frequency_penalty", 8},
               {"presence_penalty", 9},
               {"penalty_last_n", 10}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        es_sampler_params p = es_sampler_default_params();
        switch (bad[i].which) {
        case 0: p.temp = NAN; break;
        case 1: p.temp = INFINITY; break;
        case 2: p.top_k = -1; break;
        case 3: p.top_p = 1.5f; break;
        case 4: p.top_p = NAN; break;
        case 5: p.min_p = -0.1f; break;
        case 6: p.repeat_penalty = 0.0f; break;
        case 7: p.repeat_penalty = NAN; break;
        case 8: p.frequency_penalty = NAN; break;
        case 9: p.presence_penalty = -INFINITY; break;
        case 10: p.penalty_last_n = -1; break;
        }
        es_sampler *s = (es_sampler *)&p; /* must stay untouched */
        es_status st = es_sampler_create(&p, 10, &s);
        CHECK(st == ES_ERR_INVALID_ARG && s == (es_sampler *)&p &&
                  strstr(es_last_error(), bad[i].field),
              "bad %s (case %d) refused naming it: %s", bad[i].field, bad[i].which,
              es_last_error());
    }
    es_sampler_params p = es_sampler_default_params();
    es_sampler *s = NULL;
    CHECK(es_sampler_create(&p, 0, &s) == ES_ERR_INVALID_ARG && strstr(es_last_error(), "n_vocab"),
          "n_vocab 0");
    CHECK(es_sampler_create(NULL, 10, &s) == ES_ERR_INVALID_ARG, "NULL params");
    CHECK(p.temp == 0.8f && p.top_k == 40 && p.top_p == 0.95f && p.min_p == 0.05f &&
              p.repeat_penalty == 1.0f && p.penalty_last_n == 64 &&
              p.seed == ES_SAMPLER_DEFAULT_SEED,
          "defaults");
    es_sampler_free(NULL);
}

static void test_greedy(void) {
    enum { N = 1000 };
    static float logits[N];
    es_sampler_params p = es_sampler_default_params();
    p.temp = 0.0f;
    es_sampler *g = make(p, N);
    p.temp = 0.8f;
    p.top_k = 1;
    es_sampler *k1 = make(p, N);
    int agree = 0, agree_k1 = 0;
    for (int trial = 0; trial < 100; trial++) {
        for (int i = 0; i < N; i++)
            logits[i] = 3.0f * test_normal();
        int32_t want = argmax(logits, N);
        agree += es_sampler_sample(g, logits) == want;
        agree_k1 += es_sampler_sample(k1, logits) == want;
    }
    CHECK(agree == 100, "greedy = argmax in %d of 100", agree);
    CHECK(agree_k1 == 100, "top_k = 1 = argmax in %d of 100", agree_k1);
    /* ties go to the lowest id, for greedy and for top_k = 1 */
    for (int i = 0; i < N; i++)
        logits[i] = 0.0f;
    logits[700] = 5.0f;
    logits[300] = 5.0f;
    logits[900] = 5.0f;
    CHECK(es_sampler_sample(g, logits) == 300, "greedy tie -> lowest id");
    CHECK(es_sampler_sample(k1, logits) == 300, "top_k=1 tie -> lowest id");
    /* -inf tokens are never chosen, NaN and +inf are errors, all -inf is an error */
    for (int i = 0; i < N; i++)
        logits[i] = -INFINITY;
    logits[5] = -100.0f;
    CHECK(es_sampler_sample(g, logits) == 5, "only finite token");
    logits[7] = NAN;
    int32_t r = es_sampler_sample(g, logits);
    CHECK(r == ES_ERR_FORMAT && strstr(es_last_error(), "7"), "NaN logit -> error naming it: %d %s",
          r, es_last_error());
    logits[7] = INFINITY;
    CHECK(es_sampler_sample(g, logits) == ES_ERR_FORMAT, "+inf logit -> error");
    for (int i = 0; i < N; i++)
        logits[i] = -INFINITY;
    CHECK(es_sampler_sample(k1, logits) == ES_ERR_FORMAT, "all -inf -> error");
    CHECK(es_sampler_sample(NULL, logits) == ES_ERR_INVALID_ARG, "NULL sampler");
    es_sampler_free(g);
    es_sampler_free(k1);
}

static void test_seeds(void) {
    enum { N = 50, DRAWS = 200 };
    float logits[N];
    for (int i = 0; i < N; i++)
        logits[i] = test_normal();
    es_sampler_params p = plain(1.0f);
    p.seed = 7;
    es_sampler *a = make(p, N), *b = make(p, N);
    p.seed = 8;
    es_sampler *c = make(p, N);
    int32_t seq_a[DRAWS];
    int same_ab = 0, same_ac = 0, same_reset = 0;
    for (int d = 0; d < DRAWS; d++) {
        seq_a[d] = es_sampler_sample(a, logits);
        same_ab += seq_a[d] == es_sampler_sample(b, logits);
        same_ac += seq_a[d] == es_sampler_sample(c, logits);
    }
    es_sampler_reset(a);
    for (int d = 0; d < DRAWS; d++)
        same_reset += seq_a[d] == es_sampler_sample(a, logits);
    CHECK(same_ab == DRAWS, "same seed, same draws: %d of %d", same_ab, DRAWS);
    CHECK(same_reset == DRAWS, "reset replays the draws: %d of %d", same_reset, DRAWS);
    CHECK(same_ac < DRAWS / 2, "another seed differs: %d of %d equal", same_ac, DRAWS);
    es_sampler_free(a);
    es_sampler_free(b);
    es_sampler_free(c);
}

static void test_truncation(void) {
    /* p = 0.5, 0.3, 0.15, 0.05 */
    const float logits[4] = {logf(0.5f), logf(0.3f), logf(0.15f), logf(0.05f)};
    static const struct {
        float top_p, min_p;
        int top_k;
        int allowed; /* bit i: token i may be drawn */
    } cases[] = {
        {0.75f, 0.0f, 0, 0x3},  {0.85f, 0.0f, 0, 0x7}, {0.0f, 0.0f, 0, 0x1}, {0.99f, 0.0f, 0, 0xF},
        {1.0f, 0.25f, 0, 0x7},  {1.0f, 0.5f, 0, 0x3},  {1.0f, 0.0f, 2, 0x3}, {0.85f, 0.5f, 0, 0x3},
        {0.75f, 0.25f, 0, 0x3}, {0.9f, 0.0f, 2, 0x3},  {1.0f, 0.0f, 3, 0x7}, {1.0f, 1.0f, 0, 0x1},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        es_sampler_params p = plain(1.0f);
        p.top_p = cases[c].top_p;
        p.min_p = cases[c].min_p;
        p.top_k = cases[c].top_k;
        es_sampler *s = make(p, 4);
        int seen = 0;
        for (int d = 0; d < 4000; d++) {
            int32_t t = es_sampler_sample(s, logits);
            if (t >= 0 && t < 4) seen |= 1 << t;
        }
        CHECK(seen == cases[c].allowed, "top_p %.2f min_p %.2f top_k %d: drew set 0x%x, want 0x%x",
              (double)cases[c].top_p, (double)cases[c].min_p, cases[c].top_k, seen,
              cases[c].allowed);
        es_sampler_free(s);
    }
    es_sampler_params p = plain(1.0f);
    p.top_p = 0.75f;
    check_distribution("top_p 0.75 on (.5 .3 .15 .05)", logits, 4, p, 20000);
    p = plain(1.0f);
    p.min_p = 0.25f;
    check_distribution("min_p 0.25 on (.5 .3 .15 .05)", logits, 4, p, 20000);
}

static void test_penalties(void) {
    es_sampler_params p = plain(0.0f);
    p.repeat_penalty = 2.0f;
    p.frequency_penalty = 0.1f;
    p.presence_penalty = 0.5f;
    p.penalty_last_n = 3;
    es_sampler *s = make(p, 5);
    es_sampler_accept(s, 0);
    es_sampler_accept(s, 1);
    es_sampler_accept(s, 0);
    es_sampler_accept(s, -1); /* ignored */
    es_sampler_accept(s, 5);  /* ignored */
    float x[5] = {2.0f, -1.0f, 0.5f, 3.0f, -0.5f};
    es_sampler_apply_penalties(s, x);
    const float want[5] = {2.0f / 2 - 2 * 0.1f - 0.5f, -1.0f * 2 - 0.1f - 0.5f, 0.5f, 3.0f, -0.5f};
    double md = es_test_maxdiff(x, want, 5, NULL);
    printf("penalties: max |got - want| %.3g\n", md);
    CHECK(md < 1e-6, "penalised logits (max diff %g)", md);
    /* the window holds 3 tokens: after 2, 3, 4 the old ones are forgotten */
    es_sampler_accept(s, 2);
    es_sampler_accept(s, 3);
    es_sampler_accept(s, 4);
    float y[5] = {2.0f, -1.0f, 0.5f, 3.0f, -0.5f};
    es_sampler_apply_penalties(s, y);
    const float want2[5] = {2.0f, -1.0f, 0.5f / 2 - 0.6f, 3.0f / 2 - 0.6f, -0.5f * 2 - 0.6f};
    md = es_test_maxdiff(y, want2, 5, NULL);
    CHECK(md < 1e-6, "window of 3 (max diff %g)", md);
    es_sampler_reset(s);
    float z[5] = {2.0f, -1.0f, 0.5f, 3.0f, -0.5f};
    es_sampler_apply_penalties(s, z);
    CHECK(z[3] == 3.0f && z[4] == -0.5f, "reset clears the history");
    es_sampler_free(s);

    /* greedy follows the penalised logits: divide positive, multiply negative */
    p = plain(0.0f);
    p.repeat_penalty = 1.5f;
    s = make(p, 2);
    const float pos[2] = {2.0f, 1.5f};   /* 2 / 1.5 = 1.33 < 1.5 */
    const float neg[2] = {-1.0f, -1.2f}; /* -1 * 1.5 = -1.5 < -1.2 */
    CHECK(es_sampler_sample(s, pos) == 0 && es_sampler_sample(s, neg) == 0, "before accept");
    es_sampler_accept(s, 0);
    CHECK(es_sampler_sample(s, pos) == 1, "positive logit divided");
    CHECK(es_sampler_sample(s, neg) == 1, "negative logit multiplied");
    es_sampler_free(s);
    p.repeat_penalty = 1.1f; /* -1.1 > -1.2: token 0 still wins */
    s = make(p, 2);
    es_sampler_accept(s, 0);
    CHECK(es_sampler_sample(s, neg) == 0, "mild penalty keeps the token");
    es_sampler_free(s);
    /* penalty_last_n = 0 disables */
    p.repeat_penalty = 10.0f;
    p.penalty_last_n = 0;
    s = make(p, 2);
    es_sampler_accept(s, 0);
    CHECK(es_sampler_sample(s, pos) == 0, "penalty_last_n = 0 is off");
    es_sampler_free(s);
}

static void test_frequencies(void) {
    const float logits[6] = {1.0f, 2.0f, 0.5f, -1.0f, 1.5f, 0.0f};
    check_distribution("softmax T=0.7", logits, 6, plain(0.7f), 20000);
    check_distribution("softmax T=1.5", logits, 6, plain(1.5f), 20000);
    es_sampler_params p = plain(1.0f);
    p.top_k = 3;
    check_distribution("top_k 3, T=1", logits, 6, p, 20000);
    /* the defaults on a 64-token vocabulary */
    float l64[64];
    for (int i = 0; i < 64; i++)
        l64[i] = 1.5f * test_normal();
    check_distribution("defaults, 64 tokens", l64, 64, es_sampler_default_params(), 20000);

    /* top-p without top-k takes the bucketed path: compare whole distributions */
    enum { M = 3000 };
    static float lm[M], lq[M];
    for (int i = 0; i < M; i++) {
        lm[i] = 2.0f * test_normal();
        lq[i] = roundf(lm[i] * 2.0f) / 2.0f; /* many ties */
    }
    p = plain(0.9f);
    p.top_p = 0.9f;
    check_distribution("top_p 0.9, 3000 tokens", lm, M, p, 20000);
    p.min_p = 0.02f;
    check_distribution("top_p 0.9 + min_p 0.02, 3000 tokens", lm, M, p, 20000);
    p = plain(1.0f);
    p.top_p = 0.7f;
    check_distribution("top_p 0.7, 3000 tied tokens", lq, M, p, 20000);
}

/* A 150k vocabulary: the chosen sets equal the brute-force reference, and the time
 * per sample stays small. */
static void test_large_vocab(void) {
    enum { N = 151936 };
    float *logits = malloc(N * sizeof(float));
    for (int i = 0; i < N; i++)
        logits[i] = 2.5f * test_normal();
    static const struct {
        const char *what;
        int top_k;
        float top_p, min_p;
    } cfgs[] = {
        {"defaults (k 40, p .95, min_p .05)", 40, 0.95f, 0.05f},
        {"top_p 0.9 alone", 0, 0.9f, 0.0f},
        {"min_p 0.01 alone", 0, 1.0f, 0.01f},
        {"top_p 0.5 + min_p 0.001", 0, 0.5f, 0.001f},
    };
    double *prob = malloc(N * sizeof(double));
    for (size_t c = 0; c < sizeof cfgs / sizeof cfgs[0]; c++) {
        es_sampler_params p = es_sampler_default_params();
        p.top_k = cfgs[c].top_k;
        p.top_p = cfgs[c].top_p;
        p.min_p = cfgs[c].min_p;
        reference_probs(logits, N, &p, prob);
        int allowed = 0;
        for (int i = 0; i < N; i++)
            allowed += prob[i] > 0;
        es_sampler *s = make(p, N);
        enum { DRAWS = 100 };
        int bad = 0;
        double t0 = now_s();
        for (int d = 0; d < DRAWS; d++) {
            int32_t t = es_sampler_sample(s, logits);
            bad += t < 0 || prob[t] == 0;
        }
        double ms = (now_s() - t0) * 1e3 / DRAWS;
        printf("vocab %d, %s: %d tokens allowed, %.2f ms per sample\n", N, cfgs[c].what, allowed,
               ms);
        CHECK(bad == 0, "%s: %d draws outside the reference set", cfgs[c].what, bad);
        es_sampler_free(s);
    }
    free(prob);
    free(logits);
}

int main(void) {
    test_validation();
    test_greedy();
    test_seeds();
    test_truncation();
    test_penalties();
    test_frequencies();
    test_large_vocab();
    return es_test_finish();
}
