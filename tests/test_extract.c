/*
 * test_extract.c — emotion-vector extraction:
 *   1. the methods on synthetic samples with known answers: mean_diff is the class
 *      mean difference; fisher matches a brute-force d x d solve of
 *      (S_w + lambda I)^-1 dmu (also with N << d, where it goes through Woodbury) and,
 *      without shrinkage, the analytic Sigma^-1 dmu; pca recovers a planted direction
 *      with the right sign and length; centered sums to zero over the emotions; bad
 *      input is refused. Pairs files: malformed lines fail naming the line.
 *   2. teacher forcing on the llama fixture: es_extract_response_means with several
 *      sequences per batch (and sequences split across batches) equals each sequence
 *      run alone with a read hook and averaged by hand; then `emosteer extract --pairs`
 *      writes exactly the brute-force mean differences (within 1e-5).
 *   3. `emosteer extract` ($ES_BIN) on the demo model: 2 emotions, 4 queries, -n 8
 *      gives a loadable file with joy, anger, base on 8 layers; hostile input exits
 *      with clear messages.
 *   4. resume: a run stopped with --stop-after, its checkpoint torn in the middle of a
 *      record, then --resume reuses the intact records and gives the same vectors.
 * The CLI parts are skipped when $ES_BIN has no `extract` command yet.
 */
#include "emosteer.h"
#include "extract.h"
#include "testutil.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char g_dir[] = "/tmp/es_test_extract_XXXXXX";

/* ---- small helpers ---------------------------------------------------------------------- */

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static double urand(void) {
    g_rng ^= g_rng << 13, g_rng ^= g_rng >> 7, g_rng ^= g_rng << 17;
    return ((g_rng >> 11) + 0.5) / 9007199254740992.0;
}
static double nrand(void) {
    return sqrt(-2 * log(urand())) * cos(6.283185307179586 * urand());
}

static double cosine(const double *a, const double *b, int n) {
    double ab = 0, aa = 0, bb = 0;
    for (int i = 0; i < n; i++)
        ab += a[i] * b[i], aa += a[i] * a[i], bb += b[i] * b[i];
    return ab / sqrt(aa * bb);
}

static double vnorm(const double *a, int n) {
    double s = 0;
    for (int i = 0; i < n; i++)
        s += a[i] * a[i];
    return sqrt(s);
}

static void to_double(const float *f, double *d, int n) {
    for (int i = 0; i < n; i++)
        d[i] = f[i];
}

/* Solves a[n][n] x = b by Gaussian elimination with partial pivoting (in place). */
static void solve_dense(double *a, double *b, int n) {
    for (int c = 0; c < n; c++) {
        int p = c;
        for (int r = c + 1; r < n; r++)
            if (fabs(a[r * n + c]) > fabs(a[p * n + c])) p = r;
        for (int k = 0; k < n; k++) {
            double t = a[c * n + k];
            a[c * n + k] = a[p * n + k], a[p * n + k] = t;
        }
        double t = b[c];
        b[c] = b[p], b[p] = t;
        for (int r = c + 1; r < n; r++) {
            double f = a[r * n + c] / a[c * n + c];
            for (int k = c; k < n; k++)
                a[r * n + k] -= f * a[c * n + k];
            b[r] -= f * b[c];
        }
    }
    for (int r = n - 1; r >= 0; r--) {
        for (int k = r + 1; k < n; k++)
            b[r] -= a[r * n + k] * b[k];
        b[r] /= a[r * n + r];
    }
}

/* Runs a shell command; its stdout+stderr go to *out (static buffer). Returns the exit code. */
static int run(char **out, const char *fmt, ...) {
    static char buf[1 << 16];
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    strncat(cmd, " 2>&1", sizeof cmd - strlen(cmd) - 1);
    FILE *p = popen(cmd, "r");
    buf[0] = '\0';
    if (!p) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, p);
    buf[n] = '\0';
    int status = pclose(p);
    if (out) *out = buf;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* Max |a - b| over every emotion and layer of two sets (infinite if they differ in shape). */
static double set_maxdiff(const es_ev_set *a, const es_ev_set *b) {
    if (es_ev_set_n_emotions(a) != es_ev_set_n_emotions(b) ||
        es_ev_set_n_layer(a) != es_ev_set_n_layer(b) || es_ev_set_n_embd(a) != es_ev_set_n_embd(b))
        return INFINITY;
    double worst = 0;
    for (int e = 0; e < es_ev_set_n_emotions(a); e++)
        for (int l = 0; l < es_ev_set_n_layer(a); l++) {
            const char *name = es_ev_set_emotion(a, e);
            const float *va = es_ev_set_get(a, name, l), *vb = es_ev_set_get(b, name, l);
            if (!va || !vb) return INFINITY;
            double d = es_test_maxdiff(va, vb, (size_t)es_ev_set_n_embd(a), NULL);
            if (d > worst) worst = d;
        }
    return worst;
}

/* ---- 1. methods on synthetic data ---------------------------------------------------------- */

/* Adds n samples of class `label` (pair = i) drawn as mu + A z, z ~ N(0, I); A [d][d]. */
static void add_gaussian(es_extractor *ex, int label, int n, int d, const double *mu,
                         const double *A) {
    float *x = malloc((size_t)d * sizeof *x);
    double *z = malloc((size_t)d * sizeof *z);
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < d; k++)
            z[k] = nrand();
        for (int r = 0; r < d; r++) {
            double s = mu[r];
            for (int k = 0; k < d; k++)
                s += A[r * d + k] * z[k];
            x[r] = (float)s;
        }
        es_extractor_add(ex, label, i, x, NULL);
    }
    free(x);
    free(z);
}

/* An anisotropic mixing matrix: a rotation-ish mix with scales spread over 30x. */
static void make_mixing(double *A, int d) {
    for (int r = 0; r < d; r++)
        for (int k = 0; k < d; k++)
            A[r * d + k] = (r == k ? 1.0 : 0.0) + 0.3 * sin(1.7 * r + 0.9 * k);
    for (int k = 0; k < d; k++) {
        double s = 0.2 + 6.0 * k / (d > 1 ? d - 1 : 1);
        for (int r = 0; r < d; r++)
            A[r * d + k] *= s;
    }
}

/* Brute force: w = (S_w + lambda I)^-1 dmu from the samples (class-centred, 2 classes),
 * lambda = shrink * trace(S_w) / d. Samples are read back from their generator. */
static void fisher_brute(const double *x, const int *cls, int N, int d, double shrink, double *w) {
    double mu[2][256] = {{0}};
    int cnt[2] = {0, 0};
    for (int i = 0; i < N; i++) {
        cnt[cls[i]]++;
        for (int k = 0; k < d; k++)
            mu[cls[i]][k] += x[i * d + k];
    }
    for (int c = 0; c < 2; c++)
        for (int k = 0; k < d; k++)
            mu[c][k] /= cnt[c];
    double *S = calloc((size_t)d * d, sizeof *S);
    for (int i = 0; i < N; i++)
        for (int r = 0; r < d; r++)
            for (int k = 0; k < d; k++)
                S[r * d + k] +=
                    (x[i * d + r] - mu[cls[i]][r]) * (x[i * d + k] - mu[cls[i]][k]) / (N - 2);
    double tr = 0;
    for (int k = 0; k < d; k++)
        tr += S[k * d + k];
    for (int k = 0; k < d; k++)
        S[k * d + k] += shrink * tr / d;
    for (int k = 0; k < d; k++)
        w[k] = mu[1][k] - mu[0][k];
    solve_dense(S, w, d);
    free(S);
}

static void test_fisher_case(int d, int n_per_class, double shrink, const char *what) {
    double *A = malloc((size_t)d * d * sizeof *A), mu0[256], mu1[256];
    make_mixing(A, d);
    for (int k = 0; k < d; k++)
        mu0[k] = 2.0 * sin(k), mu1[k] = mu0[k] + 1.5 * cos(0.5 * k);
    const char *emo[] = {"joy"};
    es_extractor *ex = NULL;
    es_extractor_create(1, d, emo, 1, &ex);
    uint64_t seed = g_rng;
    add_gaussian(ex, -1, n_per_class, d, mu0, A);
    add_gaussian(ex, 0, n_per_class, d, mu1, A);
    /* the same samples again, for the brute force */
    g_rng = seed;
    int N = 2 * n_per_class;
    double *x = malloc((size_t)N * d * sizeof *x), z[256];
    int *cls = malloc((size_t)N * sizeof *cls);
    for (int i = 0; i < N; i++) {
        const double *mu = i < n_per_class ? mu0 : mu1;
        cls[i] = i >= n_per_class;
        for (int k = 0; k < d; k++)
            z[k] = nrand();
        for (int r = 0; r < d; r++) {
            double s = mu[r];
            for (int k = 0; k < d; k++)
                s += A[r * d + k] * z[k];
            x[i * d + r] = (float)s; /* as stored */
        }
    }
    es_extract_params p = es_extract_default_params();
    p.method = ES_EXTRACT_FISHER;
    p.fisher_shrinkage = (float)shrink;
    es_ev_set *set = NULL, *md = NULL;
    CHECK(es_extractor_compute(ex, &p, ES_HOOK_BLOCK_OUT, &set) == ES_OK, "fisher %s: %s", what,
          es_last_error());
    p.method = ES_EXTRACT_MEAN_DIFF;
    CHECK(es_extractor_compute(ex, &p, ES_HOOK_BLOCK_OUT, &md) == ES_OK, "mean_diff: %s",
          es_last_error());
    if (set && md) {
        double w[256], brute[256], dm[256], truth[256];
        to_double(es_ev_set_get(set, "joy", 0), w, d);
        to_double(es_ev_set_get(md, "joy", 0), dm, d);
        fisher_brute(x, cls, N, d, shrink, brute);
        double c = cosine(w, brute, d);
        printf("fisher %s (d %d, N %d, shrinkage %g): cos to brute force %.8f, |w| %.5f "
               "|mean_diff| %.5f, "
               "cos to mean_diff %.3f\n",
               what, d, N, shrink, c, vnorm(w, d), vnorm(dm, d), cosine(w, dm, d));
        CHECK(c > 0.99999, "fisher %s: cosine %.8f to the brute-force direction", what, c);
        CHECK(fabs(vnorm(w, d) - vnorm(dm, d)) < 1e-4 * vnorm(dm, d),
              "fisher %s: not rescaled to |mean_diff|", what);
        /* base = the pooled emotions = joy here */
        const float *b = es_ev_set_get(set, "base", 0);
        CHECK(b && es_test_maxdiff(b, es_ev_set_get(set, "joy", 0), (size_t)d, NULL) < 1e-5,
              "fisher %s: base", what);
        if (N > 20 * d && shrink == 0) {
            /* analytic: Sigma = A A^T, dmu = mu1 - mu0 */
            double *S = calloc((size_t)d * d, sizeof *S);
            for (int r = 0; r < d; r++)
                for (int k = 0; k < d; k++)
                    for (int m = 0; m < d; m++)
                        S[r * d + k] += A[r * d + m] * A[k * d + m];
            for (int k = 0; k < d; k++)
                truth[k] = mu1[k] - mu0[k];
            solve_dense(S, truth, d);
            free(S);
            double ca = cosine(w, truth, d), cm = cosine(dm, truth, d);
            printf("fisher %s: cos to analytic Sigma^-1 dmu %.5f (mean_diff: %.3f)\n", what, ca,
                   cm);
            CHECK(ca > 0.99, "fisher %s: cosine %.5f to the analytic direction", what, ca);
            CHECK(cm < 0.95, "fisher %s: test too easy: mean_diff already at cosine %.3f", what,
                  cm);
        }
    }
    es_ev_set_free(set);
    es_ev_set_free(md);
    es_extractor_free(ex);
    free(A);
    free(x);
    free(cls);
}

static void test_mean_diff_centered(void) {
    const int d = 16, K = 3, n = 50;
    const char *emo[] = {"joy", "anger", "fear"};
    es_extractor *ex = NULL;
    CHECK(es_extractor_create(2, d, emo, K, &ex) == ES_OK, "create: %s", es_last_error());
    double sum[4][2][16] = {{{0}}};
    int cnt[4] = {0};
    float x[2 * 16], nrm[2] = {3.0f, 5.0f};
    for (int i = 0; i < n * (K + 1); i++) {
        int label = i % (K + 1) - 1;
        for (int l = 0; l < 2; l++)
            for (int k = 0; k < d; k++) {
                x[l * d + k] = (float)(10.0 + (label + 1) * sin(k + l) + (l + 1) * nrand());
                sum[label + 1][l][k] += x[l * d + k];
            }
        cnt[label + 1]++;
        CHECK(es_extractor_add(ex, label, i / (K + 1), x, nrm) == ES_OK, "add: %s",
              es_last_error());
    }
    CHECK(es_extractor_n_samples(ex, -1) == n && es_extractor_n_samples(ex, 2) == n,
          "sample counts");
    es_extract_params p = es_extract_default_params();
    es_ev_set *md = NULL, *ce = NULL;
    CHECK(es_extractor_compute(ex, &p, ES_HOOK_ATTN_OUT, &md) == ES_OK, "mean_diff: %s",
          es_last_error());
    p.method = ES_EXTRACT_CENTERED;
    CHECK(es_extractor_compute(ex, &p, ES_HOOK_ATTN_OUT, &ce) == ES_OK, "centered: %s",
          es_last_error());
    if (!md || !ce) return;
    double worst = 0, worst_sum = 0, worst_base = 0;
    for (int l = 0; l < 2; l++) {
        for (int k = 0; k < d; k++) {
            double mn = sum[0][l][k] / cnt[0], s = 0, all = 0;
            for (int e = 0; e < K; e++) {
                double want = sum[e + 1][l][k] / cnt[e + 1] - mn;
                worst = fmax(worst, fabs(es_ev_set_get(md, emo[e], l)[k] - want));
                s += es_ev_set_get(ce, emo[e], l)[k];
                all += sum[e + 1][l][k];
            }
            worst_sum = fmax(worst_sum, fabs(s));
            worst_base =
                fmax(worst_base, fabs(es_ev_set_get(md, "base", l)[k] - (all / (K * n) - mn)));
        }
    }
    printf("mean_diff max error %.2e, base %.2e; centered: max |sum over emotions| %.2e\n", worst,
           worst_base, worst_sum);
    CHECK(worst < 1e-5, "mean_diff differs from the class means by %.2e", worst);
    CHECK(worst_base < 1e-5, "mean_diff base differs by %.2e", worst_base);
    CHECK(worst_sum < 1e-5, "centered vectors sum to %.2e, not 0", worst_sum);
    /* centered base = the mean of the raw mean differences; joy = md_joy - that */
    double wc = 0;
    for (int l = 0; l < 2; l++)
        for (int k = 0; k < d; k++) {
            double avg = 0;
            for (int e = 0; e < K; e++)
                avg += es_ev_set_get(md, emo[e], l)[k] / K;
            wc = fmax(wc, fabs(es_ev_set_get(ce, "base", l)[k] - avg));
            wc = fmax(
                wc, fabs(es_ev_set_get(ce, "joy", l)[k] - (es_ev_set_get(md, "joy", l)[k] - avg)));
        }
    CHECK(wc < 1e-5, "centered joy/base differ by %.2e", wc);
    es_ev_meta m;
    es_ev_set_get_meta(ce, &m);
    CHECK(!strcmp(m.method, "centered") && !strcmp(m.token_policy, "response") && m.n_samples == n,
          "meta: %s %s %d", m.method, m.token_policy, m.n_samples);
    CHECK(fabsf(es_ev_set_act_norm(md, 0) - 3.0f) < 1e-6 &&
              fabsf(es_ev_set_act_norm(md, 1) - 5.0f) < 1e-6,
          "act_norm %g %g", (double)es_ev_set_act_norm(md, 0), (double)es_ev_set_act_norm(md, 1));
    CHECK(es_ev_set_hook(md) == ES_HOOK_ATTN_OUT && es_ev_set_n_emotions(md) == 4 &&
              !strcmp(es_ev_set_emotion(md, 3), "base"),
          "set shape");
    es_ev_set_free(md);
    es_ev_set_free(ce);
    es_extractor_free(ex);
}

static void test_pca(void) {
    const int d = 32, n = 60;
    const char *emo[] = {"sadness", "joy"};
    es_extractor *ex = NULL;
    es_extractor_create(1, d, emo, 2, &ex);
    double u[32], u2[32];
    for (int k = 0; k < d; k++)
        u[k] = sin(0.37 * k + 1), u2[k] = cos(0.91 * k);
    double nu = vnorm(u, d), nu2 = vnorm(u2, d);
    for (int k = 0; k < d; k++)
        u[k] /= nu, u2[k] /= nu2;
    float xn[32], xe[32];
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < d; k++)
            xn[k] = (float)(3 * nrand() + 5);
        /* sadness: the neutral sample shifted by -(2 + 0.5 z) u plus small noise */
        double a = -(2.0 + 0.5 * nrand());
        for (int k = 0; k < d; k++)
            xe[k] = (float)(xn[k] + a * u[k] + 0.05 * nrand());
        es_extractor_add(ex, -1, i, xn, NULL);
        es_extractor_add(ex, 0, i, xe, NULL);
        double b = 1.0 + 0.3 * nrand();
        for (int k = 0; k < d; k++)
            xe[k] = (float)(xn[k] + b * u2[k] + 0.05 * nrand());
        es_extractor_add(ex, 1, i, xe, NULL);
    }
    es_extract_params p = es_extract_default_params();
    p.method = ES_EXTRACT_PCA;
    es_ev_set *set = NULL, *md = NULL;
    CHECK(es_extractor_compute(ex, &p, ES_HOOK_BLOCK_OUT, &set) == ES_OK, "pca: %s",
          es_last_error());
    p.method = ES_EXTRACT_MEAN_DIFF;
    es_extractor_compute(ex, &p, ES_HOOK_BLOCK_OUT, &md);
    if (set && md) {
        double v[32], m[32], v2[32];
        to_double(es_ev_set_get(set, "sadness", 0), v, d);
        to_double(es_ev_set_get(md, "sadness", 0), m, d);
        to_double(es_ev_set_get(set, "joy", 0), v2, d);
        double c = cosine(v, u, d), c2 = cosine(v2, u2, d);
        double proj_v = 0, proj_m = 0;
        for (int k = 0; k < d; k++)
            proj_v += v[k] * v[k] / vnorm(v, d), proj_m += m[k] * v[k] / vnorm(v, d);
        printf(
            "pca: cos(sadness, -u) %.5f, cos(joy, u2) %.5f, projection %.5f vs mean_diff's %.5f\n",
            -c, c2, proj_v, proj_m);
        CHECK(c < -0.99, "pca: sadness direction cosine %.5f to -u", c);
        CHECK(c2 > 0.99, "pca: joy direction cosine %.5f to u2", c2);
        CHECK(fabs(proj_v - proj_m) < 1e-4 * fabs(proj_m),
              "pca: length %.6f, mean_diff projection %.6f", proj_v, proj_m);
        CHECK(cosine(v, m, d) > 0, "pca: sign not aligned with mean_diff");
    }
    es_ev_set_free(set);
    es_ev_set_free(md);
    /* no pairs: an emotional sample whose pair has no neutral sample */
    es_extractor *ex2 = NULL;
    es_extractor_create(1, d, emo, 1, &ex2);
    es_extractor_add(ex2, -1, 0, xn, NULL);
    es_extractor_add(ex2, 0, 1, xe, NULL);
    p.method = ES_EXTRACT_PCA;
    set = NULL;
    CHECK(es_extractor_compute(ex2, &p, ES_HOOK_BLOCK_OUT, &set) == ES_ERR_INVALID_ARG && !set,
          "pca without pairs must fail");
    CHECK(strstr(es_last_error(), "sadness") != NULL, "message names the emotion: %s",
          es_last_error());
    es_extractor_free(ex2);
    es_extractor_free(ex);
}

static void test_refusals(void) {
    const char *bad1[] = {"joy", "neutral"}, *bad2[] = {"joy", "joy"}, *bad3[] = {"a b"};
    es_extractor *ex = NULL;
    CHECK(es_extractor_create(1, 4, bad1, 2, &ex) == ES_ERR_INVALID_ARG, "'neutral' as an emotion");
    CHECK(es_extractor_create(1, 4, bad2, 2, &ex) == ES_ERR_INVALID_ARG, "duplicate emotion");
    CHECK(es_extractor_create(1, 4, bad3, 1, &ex) == ES_ERR_INVALID_ARG, "bad name");
    CHECK(es_extractor_create(0, 4, bad1, 1, &ex) == ES_ERR_INVALID_ARG, "0 layers");
    const char *emo[] = {"joy", "fear"};
    CHECK(es_extractor_create(1, 4, emo, 2, &ex) == ES_OK, "create");
    float v[4] = {1, 2, 3, 4}, nan4[4] = {1, NAN, 0, 0};
    CHECK(es_extractor_add(ex, 2, 0, v, NULL) == ES_ERR_INVALID_ARG, "emotion index out of range");
    CHECK(es_extractor_add(ex, 0, -1, v, NULL) == ES_ERR_INVALID_ARG, "negative pair");
    CHECK(es_extractor_add(ex, 0, 0, nan4, NULL) == ES_ERR_FORMAT, "NaN sample");
    es_extractor_add(ex, -1, 0, v, NULL);
    es_extractor_add(ex, 0, 0, v, NULL);
    es_ev_set *set = NULL;
    CHECK(es_extractor_compute(ex, NULL, ES_HOOK_BLOCK_OUT, &set) == ES_ERR_INVALID_ARG,
          "fear has no samples");
    CHECK(strstr(es_last_error(), "fear") != NULL, "message names fear: %s", es_last_error());
    es_extractor_free(ex);
    es_extract_method m;
    CHECK(es_extract_method_parse("fisher", &m) == ES_OK && m == ES_EXTRACT_FISHER, "parse fisher");
    CHECK(es_extract_method_parse("lda", &m) == ES_ERR_INVALID_ARG, "parse lda");
    CHECK(!strcmp(es_extract_method_name(ES_EXTRACT_PCA), "pca"), "name pca");
}

static void test_pairs_parse(void) {
    static const struct {
        const char *text, *want;
    } bad[] = {
        {"", "no pairs"},
        {"\n  \n", "no pairs"},
        {"{\"query\":\"q\",\"emotion\":\"joy\",\"neutral\":\"a\",\"emotional\":\"b\"}\n{\"query\": "
         "1}\n",
         ":2: "},
        {"{\"query\":\"q\",\"emotion\":\"joy\",\"neutral\":\"a\",\"emotional\":\"b\"}\n\n[1,2]\n",
         ":3: expected a JSON object"},
        {"{\"query\":\"q\",\"emotion\":\"joy\",\"neutral\":\"a\"}\n", ":1: missing \"emotional\""},
        {"{\"query\":\"q\",\"emotion\":\"joy\",\"neutral\":\"\",\"emotional\":\"b\"}",
         ":1: \"neutral\" is empty"},
        {"{\"query\":\"q\",\"emotion\":\"neutral\",\"neutral\":\"a\",\"emotional\":\"b\"}",
         ":1: emotion 'neutral'"},
        {"{\"query\":\"q\",\"emotion\":\"j oy\",\"neutral\":\"a\",\"emotional\":\"b\"}",
         ":1: emotion 'j oy'"},
        {"{\"query\":\"q\",\"emotion\":\"joy\",\"neutral\":\"a\",\"emotional\":\"b\"",
         ":1: not valid JSON"},
        {"{\"query\":\"q\",\"query\":\"r\",\"emotion\":\"joy\",\"neutral\":\"a\",\"emotional\":"
         "\"b\"}",
         ":1: not valid JSON"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        es_extract_pair *p = NULL;
        int n = 0;
        es_status st = es_extract_pairs_parse(bad[i].text, strlen(bad[i].text), "p.jsonl", &p, &n);
        CHECK(st == ES_ERR_FORMAT && !p, "bad pairs %zu accepted (%d)", i, (int)st);
        CHECK(strstr(es_last_error(), bad[i].want) != NULL,
              "bad pairs %zu: message '%s' lacks '%s'", i, es_last_error(), bad[i].want);
    }
    const char *good =
        "{\"query\":\"Q1\",\"emotion\":\"joy\",\"neutral\":\"n1\",\"emotional\":\"e1\",\"x\":3}\r\n"
        "\n{\"query\":\"Q2\",\"emotion\":\"fear\",\"neutral\":\"n2\",\"emotional\":\"e2\"}";
    es_extract_pair *p = NULL;
    int n = 0;
    CHECK(es_extract_pairs_parse(good, strlen(good), "g", &p, &n) == ES_OK && n == 2,
          "good pairs: %s", es_last_error());
    if (p && n == 2)
        CHECK(!strcmp(p[1].emotion, "fear") && !strcmp(p[1].emotional, "e2") && p[1].line == 3 &&
                  p[0].line == 1,
              "pair fields");
    es_extract_pairs_free(p, n);
}

/* ---- 2. teacher forcing on the llama fixture --------------------------------------------------
 */

typedef struct brute_hook {
    es_hook_point hp;
    int n_prompt, n_layer, n_embd;
    double *sum;  /* [n_layer][n_embd] */
    double *norm; /* [n_layer] */
} brute_hook;

static void brute_fn(void *user, es_hook_point hp, int layer, float *x, int n_tokens, int n_embd,
                     const es_batch *b) {
    brute_hook *h = user;
    if (hp != h->hp) return;
    for (int t = 0; t < n_tokens; t++) {
        if (b->pos[t] < h->n_prompt) continue;
        double ss = 0;
        for (int k = 0; k < n_embd; k++) {
            h->sum[layer * n_embd + k] += x[t * n_embd + k];
            ss += (double)x[t * n_embd + k] * x[t * n_embd + k];
        }
        h->norm[layer] += sqrt(ss);
    }
}

/* Runs one sequence alone and averages the hook activations of its response by hand. */
static void brute_means(es_model *model, es_hook_point hp, const int32_t *tok, int n_tok,
                        int n_prompt, double *mean, double *norm) {
    es_model_info mi;
    es_model_get_info(model, &mi);
    es_context_params cp = es_context_default_params();
    cp.n_ctx = 256;
    cp.n_threads = 1;
    es_context *ctx = NULL;
    es_context_create(model, &cp, &ctx);
    brute_hook h = {hp, n_prompt, mi.n_layer, mi.n_embd, mean, norm};
    memset(mean, 0, sizeof *mean * (size_t)mi.n_layer * mi.n_embd);
    memset(norm, 0, sizeof *norm * (size_t)mi.n_layer);
    es_set_hook(ctx, brute_fn, &h);
    es_batch b = {.n_tokens = n_tok, .token = tok};
    CHECK(es_decode(ctx, &b) == ES_OK, "brute decode: %s", es_last_error());
    int cnt = n_tok - n_prompt;
    for (int i = 0; i < mi.n_layer * mi.n_embd; i++)
        mean[i] /= cnt;
    for (int l = 0; l < mi.n_layer; l++)
        norm[l] /= cnt;
    es_context_free(ctx);
}

static const char *k_queries_json =
    "{\"format\": \"emosteer-queries/1\", \"queries\": {\"joy\": [\"When did you laugh last?\"]},"
    " \"instructions\": {\"joy\": {\"prefix\": \"I feel so happy!\", \"system\": \"Be joyful.\"},"
    " \"anger\": {\"prefix\": \"I am furious.\", \"system\": \"Be angry.\"},"
    " \"neutral\": {\"prefix\": \"Plainly:\", \"system\": \"Be plain.\"}}}";

static const struct {
    const char *query, *emotion, *neutral, *emotional;
} k_pairs[] = {
    {"How was your day?", "joy", "It was fine, thanks.",
     "It was wonderful, the best day in years!"},
    {"What happened at work?", "anger", "We had a meeting about the budget.",
     "They cut my budget again, unbelievable."},
    {"How is the weather?", "joy", "Cloudy with some rain later on.",
     "Sunny and bright, I love it so much!"},
    {"Did the parcel arrive?", "anger", "Yes, it came this morning.",
     "No! Three weeks late and nobody answers."},
    {"What did you cook?", "joy", "Pasta with tomato sauce.",
     "My grandmother's recipe, and everyone cheered!"},
};
#define N_PAIRS (int)(sizeof k_pairs / sizeof k_pairs[0])

static void test_teacher_forcing(const char *bin) {
    const char *path = es_test_shared_path("fixtures/llama.f16.gguf");
    if (!path || access(path, R_OK) != 0) {
        printf("skip teacher forcing: no fixtures/llama.f16.gguf\n");
        return;
    }
    es_model_params mp = es_model_default_params();
    es_model *model = NULL;
    if (!CHECK(es_model_load(path, &mp, &model) == ES_OK, "load: %s", es_last_error())) return;
    es_model_info mi;
    es_model_get_info(model, &mi);
    const es_vocab *vocab = es_model_vocab(model);
    const int L = mi.n_layer, d = mi.n_embd, S = 2 * N_PAIRS;
    const char *prefix[3] = {"Plainly:", "I feel so happy!", "I am furious."};

    /* the samples the CLI builds: per pair, neutral then emotional, base-model prompts */
    int32_t *full[2 * N_PAIRS];
    int n_full[2 * N_PAIRS], n_prompt[2 * N_PAIRS], label[2 * N_PAIRS];
    for (int p = 0; p < N_PAIRS; p++)
        for (int c = 0; c < 2; c++) {
            int s = 2 * p + c, e = !c ? -1 : !strcmp(k_pairs[p].emotion, "joy") ? 0 : 1;
            int32_t *pt = NULL, *rt = NULL;
            int np = 0, nr = 0;
            CHECK(es_extract_prompt(vocab, ES_CHAT_NONE, NULL, prefix[e + 1], k_pairs[p].query, &pt,
                                    &np) == ES_OK,
                  "prompt: %s", es_last_error());
            CHECK(es_extract_tokenize_response(vocab, c ? k_pairs[p].emotional : k_pairs[p].neutral,
                                               &rt, &nr) == ES_OK,
                  "response: %s", es_last_error());
            full[s] = malloc((size_t)(np + nr) * sizeof *full[s]);
            memcpy(full[s], pt, (size_t)np * sizeof *pt);
            memcpy(full[s] + np, rt, (size_t)nr * sizeof *rt);
            n_full[s] = np + nr, n_prompt[s] = np, label[s] = e;
            free(pt);
            free(rt);
        }
    /* brute force: each sequence alone */
    double *bm = malloc((size_t)S * L * d * sizeof *bm), *bn = malloc((size_t)S * L * sizeof *bn);
    double *bm_attn = malloc((size_t)S * L * d * sizeof *bm_attn),
           *bn_attn = malloc((size_t)S * L * sizeof *bn_attn);
    for (int s = 0; s < S; s++) {
        brute_means(model, ES_HOOK_BLOCK_OUT, full[s], n_full[s], n_prompt[s],
                    bm + (size_t)s * L * d, bn + (size_t)s * L);
        brute_means(model, ES_HOOK_ATTN_OUT, full[s], n_full[s], n_prompt[s],
                    bm_attn + (size_t)s * L * d, bn_attn + (size_t)s * L);
    }

    /* library: several sequences per batch, small n_batch so sequences split across batches;
     * plus a sequence without response (zeros) and one made only of response */
    for (int variant = 0; variant < 2; variant++) {
        es_context_params cp = es_context_default_params();
        cp.n_ctx = 128;
        cp.n_seq_max = variant ? 3 : 4;
        cp.n_batch = variant ? 512 : 17;
        cp.n_threads = 2;
        es_context *ctx = NULL;
        es_context_create(model, &cp, &ctx);
        es_extract_seq seqs[2 * N_PAIRS + 1];
        for (int s = 0; s < S; s++)
            seqs[s] = (es_extract_seq){full[s], n_full[s], n_prompt[s]};
        seqs[S] = (es_extract_seq){full[0], n_prompt[0], n_prompt[0]}; /* no response */
        float *mean = malloc((size_t)(S + 1) * L * d * sizeof *mean),
              *norm = malloc((size_t)(S + 1) * L * sizeof *norm);
        int n_resp[2 * N_PAIRS + 1];
        es_hook_point hp = variant ? ES_HOOK_ATTN_OUT : ES_HOOK_BLOCK_OUT;
        const double *rm = variant ? bm_attn : bm, *rn = variant ? bn_attn : bn;
        CHECK(es_extract_response_means(ctx, hp, seqs, S + 1, mean, norm, n_resp) == ES_OK,
              "response means: %s", es_last_error());
        double worst = 0, worst_n = 0;
        for (int s = 0; s < S; s++) {
            for (int i = 0; i < L * d; i++)
                worst = fmax(worst, fabs(mean[(size_t)s * L * d + i] - rm[(size_t)s * L * d + i]));
            for (int l = 0; l < L; l++)
                worst_n = fmax(worst_n, fabs(norm[s * L + l] - rn[s * L + l]));
            CHECK(n_resp[s] == n_full[s] - n_prompt[s], "n_resp %d", s);
        }
        bool zeros = n_resp[S] == 0;
        for (int i = 0; i < L * d; i++)
            zeros &= mean[(size_t)S * L * d + i] == 0;
        printf("teacher forcing (%s, n_seq_max %d, n_batch %d): max |mean - brute force| %.2e, "
               "norm %.2e\n",
               es_hook_name(hp), cp.n_seq_max, cp.n_batch, worst, worst_n);
        CHECK(worst < 1e-5 && worst_n < 1e-4,
              "batched means differ from the brute force: %.2e / %.2e", worst, worst_n);
        CHECK(zeros, "a sequence without response gives zeros");
        /* the hook is restored, the KV cache is usable */
        CHECK(es_decode(ctx, &(es_batch){.n_tokens = 1, .token = full[0]}) == ES_OK,
              "decode after: %s", es_last_error());
        free(mean);
        free(norm);
        es_context_free(ctx);
    }

    /* the CLI with --pairs: EV = mean(emotional of e) - mean(every neutral) */
    if (bin) {
        char qpath[512], ppath[512], opath[512];
        snprintf(qpath, sizeof qpath, "%s/q.json", g_dir);
        snprintf(ppath, sizeof ppath, "%s/pairs.jsonl", g_dir);
        snprintf(opath, sizeof opath, "%s/pairs.ev.gguf", g_dir);
        write_text(qpath, k_queries_json);
        FILE *f = fopen(ppath, "wb");
        for (int p = 0; p < N_PAIRS; p++)
            fprintf(f,
                    "{\"query\": \"%s\", \"emotion\": \"%s\", \"neutral\": \"%s\", \"emotional\": "
                    "\"%s\"}\n",
                    k_pairs[p].query, k_pairs[p].emotion, k_pairs[p].neutral, k_pairs[p].emotional);
        fclose(f);
        char *out = NULL;
        int rc =
            run(&out, "'%s' extract -m '%s' --queries '%s' --pairs '%s' --batch 3 -t 2 -o '%s'",
                bin, path, qpath, ppath, opath);
        CHECK(rc == 0, "extract --pairs exit %d: %s", rc, out);
        es_ev_set *set = NULL;
        if (rc == 0 &&
            CHECK(es_ev_set_load(opath, NULL, &set) == ES_OK, "load: %s", es_last_error())) {
            const char *emo[2] = {"joy", "anger"};
            double worst = 0, worst_norm = 0;
            for (int l = 0; l < L; l++) {
                for (int k = 0; k < d; k++) {
                    double neu = 0, em[2] = {0, 0}, all = 0;
                    int cn = 0, ce[2] = {0, 0};
                    for (int s = 0; s < S; s++) {
                        double v = bm[(size_t)s * L * d + (size_t)l * d + k];
                        if (label[s] < 0)
                            neu += v, cn++;
                        else
                            em[label[s]] += v, ce[label[s]]++, all += v;
                    }
                    for (int e = 0; e < 2; e++) {
                        const float *got = es_ev_set_get(set, emo[e], l);
                        double want = em[e] / ce[e] - neu / cn;
                        worst = fmax(worst, got ? fabs(got[k] - want) : INFINITY);
                    }
                    const float *gb = es_ev_set_get(set, "base", l);
                    worst = fmax(worst,
                                 gb ? fabs(gb[k] - (all / (ce[0] + ce[1]) - neu / cn)) : INFINITY);
                }
                double an = 0;
                for (int s = 0; s < S; s++)
                    an += bn[s * L + l] / S;
                worst_norm = fmax(worst_norm, fabs(es_ev_set_act_norm(set, l) - an) / an);
            }
            printf("extract --pairs on llama fixture: max |EV - brute force| %.2e, act_norm rel. "
                   "error %.2e\n",
                   worst, worst_norm);
            CHECK(worst < 1e-5, "CLI EV differs from the brute force by %.2e", worst);
            CHECK(worst_norm < 1e-5, "act_norm differs by %.2e", worst_norm);
            es_ev_meta m;
            es_ev_set_get_meta(set, &m);
            CHECK(es_ev_set_n_emotions(set) == 3 && !strcmp(es_ev_set_emotion(set, 0), "joy") &&
                      !strcmp(es_ev_set_emotion(set, 2), "base") && es_ev_set_n_layer(set) == L,
                  "pairs set shape");
            CHECK(!strcmp(m.query_set, "pairs:pairs.jsonl") && !strcmp(m.source_model, mi.name) &&
                      m.n_samples == 2,
                  "pairs meta: %s / %s / %d", m.query_set, m.source_model, m.n_samples);
            es_ev_set_free(set);
        }
        /* a malformed line is reported with its number */
        f = fopen(ppath, "ab");
        fprintf(f, "{\"query\": \"x\", \"emotion\": \"joy\"}\n");
        fclose(f);
        rc = run(&out, "'%s' extract -m '%s' --queries '%s' --pairs '%s' -o '%s'", bin, path, qpath,
                 ppath, opath);
        char want[600];
        snprintf(want, sizeof want, "pairs.jsonl:%d: missing \"neutral\"", N_PAIRS + 1);
        CHECK(rc == 1 && strstr(out, want), "malformed pairs line: exit %d: %s", rc, out);
    }
    for (int s = 0; s < S; s++)
        free(full[s]);
    free(bm);
    free(bn);
    free(bm_attn);
    free(bn_attn);
    es_model_free(model);
}

/* ---- 3. + 4. the CLI on the demo model --------------------------------------------------------
 */

static void test_cli_demo(const char *bin) {
    char model[1024], out1[512], out2[512], partial[600], qbad[512];
    snprintf(model, sizeof model, "%s/models/demo-16m.q8_0.gguf", es_test_source());
    if (access(model, R_OK) != 0) {
        printf("skip CLI demo: no %s\n", model);
        return;
    }
    snprintf(out1, sizeof out1, "%s/demo.ev.gguf", g_dir);
    snprintf(out2, sizeof out2, "%s/demo2.ev.gguf", g_dir);
    snprintf(partial, sizeof partial, "%s.partial", out2);
    char *out = NULL;
    int rc = run(&out, "'%s' extract -m '%s' --emotions joy,anger --n-queries 4 -n 8 -t 2 -o '%s'",
                 bin, model, out1);
    CHECK(rc == 0, "extract exit %d: %s", rc, out);
    es_ev_set *a = NULL, *b = NULL;
    if (rc == 0 && CHECK(es_ev_set_load(out1, NULL, &a) == ES_OK, "load: %s", es_last_error())) {
        es_ev_meta m;
        es_ev_set_get_meta(a, &m);
        printf("demo: %d emotions, %d layers, n_embd %d, hook %s, method %s, source '%s', query "
               "set '%s', n_samples %d\n",
               es_ev_set_n_emotions(a), es_ev_set_n_layer(a), es_ev_set_n_embd(a),
               es_hook_name(es_ev_set_hook(a)), m.method, m.source_model, m.query_set, m.n_samples);
        CHECK(es_ev_set_n_emotions(a) == 3 && es_ev_set_find(a, "joy") == 0 &&
                  es_ev_set_find(a, "anger") == 1 && es_ev_set_find(a, "base") == 2,
              "emotions");
        CHECK(es_ev_set_n_layer(a) == 8 && es_ev_set_n_embd(a) == 384 &&
                  es_ev_set_hook(a) == ES_HOOK_BLOCK_OUT,
              "shape");
        CHECK(!strcmp(m.method, "mean_diff") && !strcmp(m.token_policy, "response") &&
                  m.n_samples == 4 && !strcmp(m.query_set, "emosteer-queries.json"),
              "meta");
        bool ok = true;
        for (int l = 0; l < 8; l++)
            ok &= es_ev_set_act_norm(a, l) > 0 && es_ev_set_get(a, "joy", l) != NULL;
        CHECK(ok, "every layer has a vector and an activation norm");
        CHECK(access(out1, R_OK) == 0 && !strstr(out, "partial"), "no partial file left behind");
    }
    /* hostile input */
    rc = run(&out, "'%s' extract -m '%s' --emotions joy,surprise -o '%s'", bin, model, out2);
    CHECK(rc == 1 && strstr(out, "unknown emotion 'surprise'") &&
              strstr(out, "available: anger, disgust, fear, joy, sadness"),
          "unknown emotion: exit %d: %s", rc, out);
    rc = run(&out, "'%s' extract -m '%s' --n-queries 0 -o '%s'", bin, model, out2);
    CHECK(rc == 2 && strstr(out, "--n-queries"), "--n-queries 0: exit %d: %s", rc, out);
    rc = run(&out, "'%s' extract -m '%s' --method lda -o '%s'", bin, model, out2);
    CHECK(rc == 2 && strstr(out, "lda"), "--method lda: exit %d: %s", rc, out);
    rc = run(&out, "'%s' extract -m '%s'", bin, model);
    CHECK(rc == 2 && strstr(out, "-o"), "no output: exit %d: %s", rc, out);
    snprintf(qbad, sizeof qbad, "%s/empty.json", g_dir);
    write_text(qbad, "");
    rc = run(&out, "'%s' extract -m '%s' --queries '%s' -o '%s'", bin, model, qbad, out2);
    CHECK(rc == 1 && strstr(out, "empty.json"), "empty query file: exit %d: %s", rc, out);
    write_text(qbad, "{\"joy\": [\"ok\", 3]}");
    rc = run(&out, "'%s' extract -m '%s' --queries '%s' -o '%s'", bin, model, qbad, out2);
    CHECK(rc == 1 && strstr(out, "empty.json") && strstr(out, "joy[1]"),
          "malformed query file: exit %d: %s", rc, out);
    CHECK(access(out2, F_OK) != 0, "no output after failures");

    /* 4. resume: stop early (batch 4: 8 of 12 samples), tear the last record, resume */
    rc = run(&out,
             "'%s' extract -m '%s' --emotions joy,anger --n-queries 4 -n 8 --batch 4 --stop-after "
             "5 -t 2 -o '%s'",
             bin, model, out2);
    CHECK(rc == 0 && strstr(out, "stopped after 8 of 12 samples"), "--stop-after: exit %d: %s", rc,
          out);
    CHECK(access(partial, R_OK) == 0 && access(out2, F_OK) != 0, "checkpoint kept, no output yet");
    FILE *f = fopen(partial, "r+b");
    long size = 0;
    if (f) {
        fseek(f, 0, SEEK_END);
        size = ftell(f);
        fclose(f);
        CHECK(truncate(partial, size - 100) == 0, "truncate");
    }
    /* other settings are refused */
    rc = run(&out, "'%s' extract -m '%s' --emotions joy,anger --n-queries 4 -n 9 --resume -o '%s'",
             bin, model, out2);
    CHECK(rc == 1 && strstr(out, "other settings") && strstr(out, "n_predict=8"),
          "resume with other -n: exit %d: %s", rc, out);
    /* batch 4, not 3: the Q8_0 matmul takes a per-row dot-product path below 4 tokens
     * per step whose float summation order differs from the tiled path, enough to flip a
     * sampled token on this model (see the closing note of the engine-speed issue) */
    rc = run(&out,
             "'%s' extract -m '%s' --emotions joy,anger --n-queries 4 -n 8 --batch 4 -t 2 --resume "
             "-o '%s'",
             bin, model, out2);
    CHECK(rc == 0 && strstr(out, "resumed 7 samples") && strstr(out, "5 to compute"),
          "resume: exit %d: %s", rc, out);
    CHECK(access(partial, F_OK) != 0, "checkpoint removed after success");
    if (a && rc == 0 &&
        CHECK(es_ev_set_load(out2, NULL, &b) == ES_OK, "load resumed: %s", es_last_error())) {
        double diff = set_maxdiff(a, b);
        printf("resumed run vs uninterrupted run (other batch sizes): max difference %.2e\n", diff);
        CHECK(diff < 1e-4, "resumed vectors differ by %.2e", diff);
    }
    es_ev_set_free(a);
    es_ev_set_free(b);
}

int main(void) {
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_mean_diff_centered();
    test_fisher_case(6, 400, 0.1, "d << N");
    test_fisher_case(6, 400, 0.0, "no shrinkage");
    test_fisher_case(64, 12, 0.1, "N << d (Woodbury)");
    test_pca();
    test_refusals();
    test_pairs_parse();

    /* the CLI parts need a binary that knows `extract` */
    const char *bin = getenv("ES_BIN");
    char *out = NULL;
    if (bin && run(&out, "'%s' extract --help", bin) != 0) {
        printf("skip CLI parts: %s has no extract command yet\n", bin);
        bin = NULL;
    }
    if (es_test_shared())
        test_teacher_forcing(bin);
    else
        printf("skip teacher forcing: no shared folder\n");
    if (bin) test_cli_demo(bin);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
    return es_test_finish();
}
