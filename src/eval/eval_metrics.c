/* eval_metrics.c — statistics, fluency and emotion metrics of single responses
 * (definitions in eval_metrics.h). The aggregation into results is eval_summary.c. */
#include "eval_metrics.h"

#include "common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- statistics ---------------------------------------------------------- */

es_stat es_stat_of(const double *x, size_t n) {
    es_stat s = {0, NAN, NAN, NAN, NAN};
    double sum = 0;
    int count = 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(x[i])) {
            sum += x[i];
            count++;
        }
    s.n = count;
    if (count == 0) return s;
    s.mean = sum / count;
    if (count < 2) return s;
    double ss = 0; /* two passes: the sum of squared deviations from the mean */
    for (size_t i = 0; i < n; i++)
        if (isfinite(x[i])) ss += (x[i] - s.mean) * (x[i] - s.mean);
    s.sd = sqrt(ss / (count - 1));
    double half = es_t975(count - 1) * s.sd / sqrt((double)count);
    s.ci_lo = s.mean - half;
    s.ci_hi = s.mean + half;
    return s;
}

double es_t975(int df) {
    /* t(0.975, df) for df = 1..30 */
    static const double table[30] = {
        12.7062047, 4.3026527, 3.1824463, 2.7764451, 2.5705818, 2.4469119, 2.3646243, 2.3060041,
        2.2621572,  2.2281389, 2.2009852, 2.1788128, 2.1603687, 2.1447867, 2.1314495, 2.1199053,
        2.1098156,  2.1009220, 2.0930241, 2.0859634, 2.0796138, 2.0738731, 2.0686576, 2.0638986,
        2.0595386,  2.0555294, 2.0518305, 2.0484071, 2.0452296, 2.0422725,
    };
    if (df < 1) return NAN;
    if (df <= 30) return table[df - 1];
    /* Cornish-Fisher expansion of the t quantile around the normal quantile z
     * (Abramowitz & Stegun 26.7.5); error < 1e-7 for df > 30. */
    const double z = 1.959963984540054;
    const double z2 = z * z, z3 = z2 * z, z5 = z3 * z2, z7 = z5 * z2, z9 = z7 * z2;
    const double g1 = (z3 + z) / 4;
    const double g2 = (5 * z5 + 16 * z3 + 3 * z) / 96;
    const double g3 = (3 * z7 + 19 * z5 + 17 * z3 - 15 * z) / 384;
    const double g4 = (79 * z9 + 776 * z7 + 1482 * z5 - 1920 * z3 - 945 * z) / 92160;
    double v = df;
    return z + g1 / v + g2 / (v * v) + g3 / (v * v * v) + g4 / (v * v * v * v);
}

es_linearity es_linear_fit(const double *x, const double *y, size_t n, double lo, double hi) {
    es_linearity fit = {0, NAN, NAN, NAN};
    double sx = 0, sy = 0;
    int m = 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(x[i]) && isfinite(y[i]) && x[i] >= lo && x[i] <= hi) {
            sx += x[i];
            sy += y[i];
            m++;
        }
    fit.n_points = m;
    if (m < 2) return fit;
    double mx = sx / m, my = sy / m, sxx = 0, sxy = 0, syy = 0, sum_y2 = 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(x[i]) && isfinite(y[i]) && x[i] >= lo && x[i] <= hi) {
            sxx += (x[i] - mx) * (x[i] - mx);
            sxy += (x[i] - mx) * (y[i] - my);
            syy += (y[i] - my) * (y[i] - my);
            sum_y2 += y[i] * y[i];
        }
    if (sxx <= 0) return fit; /* all x equal: no line */
    fit.slope = sxy / sxx;
    fit.intercept = my - fit.slope * mx;
    /* SS_tot below rounding noise (relative 1e-24 of sum y^2) counts as all y equal */
    if (syy > 1e-24 * sum_y2) {
        double ss_res = 0;
        for (size_t i = 0; i < n; i++)
            if (isfinite(x[i]) && isfinite(y[i]) && x[i] >= lo && x[i] <= hi) {
                double r = y[i] - (fit.intercept + fit.slope * x[i]);
                ss_res += r * r;
            }
        fit.r2 = 1.0 - ss_res / syy;
    }
    return fit;
}

/* ---- words and n-grams --------------------------------------------------- */

static bool is_word_byte(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

es_status es_word_hashes(const char *text, uint64_t **words, size_t *n_words) {
    *words = NULL;
    *n_words = 0;
    if (!text) return ES_OK;
    /* count first, then hash: the number of words is at most len/2 + 1 */
    size_t count = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p;) {
        if (!is_word_byte(*p)) {
            p++;
            continue;
        }
        count++;
        while (*p && is_word_byte(*p))
            p++;
    }
    if (count == 0) return ES_OK;
    uint64_t *w = es_calloc(count, sizeof *w);
    if (!w) return ES_ERR_NOMEM;
    size_t k = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p;) {
        if (!is_word_byte(*p)) {
            p++;
            continue;
        }
        uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a 64 */
        for (; *p && is_word_byte(*p); p++) {
            unsigned char c = *p;
            if (c >= 'A' && c <= 'Z') c = (unsigned char)(c - 'A' + 'a');
            h = (h ^ c) * 0x100000001b3ull;
        }
        w[k++] = h;
    }
    *words = w;
    *n_words = k;
    return ES_OK;
}

/* splitmix64 finaliser: spreads the bits of an n-gram's running hash */
static uint64_t mix64(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

/* Appends the hashes of the order-grams of words[n] to grams (capacity checked by
 * the caller). Two n-grams get the same hash iff they have the same words, up to
 * 64-bit collisions (probability ~ m^2 / 2^65 for m n-grams). */
static size_t ngram_hashes(const uint64_t *words, size_t n, int order, uint64_t *grams) {
    if (n < (size_t)order) return 0;
    size_t m = n - (size_t)order + 1;
    for (size_t i = 0; i < m; i++) {
        uint64_t h = 0x9e3779b97f4a7c15ull;
        for (int j = 0; j < order; j++)
            h = mix64(h ^ words[i + (size_t)j]) + (uint64_t)j;
        grams[i] = h;
    }
    return m;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Number of distinct values of v[n] (sorts v). */
static size_t count_distinct(uint64_t *v, size_t n) {
    if (n == 0) return 0;
    qsort(v, n, sizeof *v, cmp_u64);
    size_t d = 1;
    for (size_t i = 1; i < n; i++)
        d += v[i] != v[i - 1];
    return d;
}

/* distinct n-grams / n-grams of a word list; NaN if there are none. */
static es_status distinct_of_words(const uint64_t *words, size_t n, int order, double *out) {
    *out = NAN;
    if (n < (size_t)order) return ES_OK;
    uint64_t *grams = es_calloc(n, sizeof *grams);
    if (!grams) return ES_ERR_NOMEM;
    size_t m = ngram_hashes(words, n, order, grams);
    size_t d = count_distinct(grams, m);
    free(grams);
    *out = (double)d / (double)m;
    return ES_OK;
}

es_status es_distinct_n(const char *text, int order, double *out) {
    if (order < 1 || !out) return es_error(ES_ERR_INVALID_ARG, "distinct-n: order %d < 1", order);
    uint64_t *words;
    size_t n;
    es_status st = es_word_hashes(text, &words, &n);
    if (st != ES_OK) return st;
    st = distinct_of_words(words, n, order, out);
    free(words);
    return st;
}

es_status es_distinct_n_pooled(const char *const *texts, size_t n_texts, int order, double *out) {
    if (order < 1 || !out || (!texts && n_texts))
        return es_error(ES_ERR_INVALID_ARG, "distinct-n: bad arguments (order %d)", order);
    *out = NAN;
    uint64_t *all = NULL;
    size_t n_all = 0, cap = 0;
    for (size_t t = 0; t < n_texts; t++) {
        uint64_t *words;
        size_t n;
        es_status st = es_word_hashes(texts[t], &words, &n);
        if (st != ES_OK) {
            free(all);
            return st;
        }
        if (n >= (size_t)order) {
            size_t need;
            if (!es_add_size(n_all, n, &need)) {
                free(words);
                free(all);
                return es_error(ES_ERR_NOMEM, "distinct-n: too many words");
            }
            if (need > cap) {
                size_t ncap = ES_MAX(need, cap * 2);
                size_t bytes;
                uint64_t *grown =
                    es_mul_size(ncap, sizeof *all, &bytes) ? realloc(all, bytes) : NULL;
                if (!grown) {
                    free(words);
                    free(all);
                    return es_error(ES_ERR_NOMEM, "distinct-n: out of memory for %zu n-grams",
                                    ncap);
                }
                all = grown;
                cap = ncap;
            }
            n_all += ngram_hashes(words, n, order, all + n_all);
        }
        free(words);
    }
    if (n_all) *out = (double)count_distinct(all, n_all) / (double)n_all;
    free(all);
    return ES_OK;
}

es_fluency_params es_fluency_default_params(void) {
    es_fluency_params p = {0.3, 3};
    return p;
}

es_status es_text_fluency_of(const char *text, const es_fluency_params *params,
                             es_text_fluency *out) {
    es_fluency_params p = params ? *params : es_fluency_default_params();
    uint64_t *words;
    size_t n;
    es_status st = es_word_hashes(text, &words, &n);
    if (st != ES_OK) return st;
    es_text_fluency f = {0, NAN, 0.0, false};
    f.n_words = n > (size_t)INT32_MAX ? INT32_MAX : (int)n;
    double d4 = NAN;
    st = distinct_of_words(words, n, 2, &f.distinct2);
    if (st == ES_OK) st = distinct_of_words(words, n, 4, &d4);
    free(words);
    if (st != ES_OK) return st;
    f.rep4 = isnan(d4) ? 0.0 : 1.0 - d4;
    f.degenerate = f.rep4 > p.degenerate_rep4 || f.n_words < p.degenerate_min_words;
    *out = f;
    return ES_OK;
}

/* ---- emotion scores ------------------------------------------------------ */

double es_emotion_eas(const double *scores, int n_labels, int neutral) {
    if (!scores) return NAN;
    double sum = 0;
    for (int i = 0; i < n_labels; i++) {
        if (i == neutral) continue;
        if (!isfinite(scores[i])) return NAN;
        sum += scores[i];
    }
    return sum;
}

const char *const es_eval_lexicon_labels[ES_EMO_N_LABELS] = {
    "anger", "disgust", "fear", "joy", "sadness", ES_EVAL_NEUTRAL,
};

void es_scores_from_lexicon(const es_lexicon_score *s, double prior,
                            double scores[ES_EMO_N_LABELS]) {
    if (!(prior > 0) || !isfinite(prior)) prior = ES_EVAL_LEXICON_PRIOR;
    double total = 0;
    for (int e = 0; e < ES_EMO_COUNT; e++)
        if (isfinite(s->weight[e]) && s->weight[e] > 0) total += s->weight[e];
    for (int e = 0; e < ES_EMO_COUNT; e++)
        scores[e] =
            isfinite(s->weight[e]) && s->weight[e] > 0 ? s->weight[e] / (total + prior) : 0.0;
    scores[ES_EMO_COUNT] = prior / (total + prior);
}

bool es_detect_label_add(const double *scores, int n_labels, int neutral, double *row) {
    double best = 0;
    int n_best = 0;
    if (scores)
        for (int i = 0; i < n_labels; i++) {
            double s = scores[i];
            if (!isfinite(s) || s <= 0) continue;
            if (s > best) {
                best = s;
                n_best = 1;
            } else if (s == best) {
                n_best++;
            }
        }
    if (n_best == 0) { /* unscored or all zero */
        if (neutral < 0 || neutral >= n_labels) return false;
        row[neutral] += 1.0;
        return true;
    }
    for (int i = 0; i < n_labels; i++)
        if (isfinite(scores[i]) && scores[i] == best) row[i] += 1.0 / n_best;
    return true;
}

/* ---- records ------------------------------------------------------------- */

es_gen_record es_gen_record_empty(void) {
    es_gen_record r;
    memset(&r, 0, sizeof r);
    r.n_tokens = -1;
    r.valence = NAN;
    r.ppl = NAN;
    r.topic = NAN;
    return r;
}

void es_gen_record_clear(es_gen_record *rec) {
    if (!rec) return;
    free(rec->emotion);
    free(rec->query_id);
    free(rec->prompt);
    free(rec->response);
    free(rec->scores);
    *rec = es_gen_record_empty();
}

static bool dup_opt(char **dst, const char *src) {
    *dst = NULL;
    if (!src) return true;
    *dst = es_strdup(src);
    return *dst != NULL;
}

es_status es_gen_record_copy(es_gen_record *dst, const es_gen_record *src) {
    es_gen_record r = *src;
    r.emotion = r.query_id = r.prompt = r.response = NULL;
    r.scores = NULL;
    if (src->n_labels < 0 || (src->n_labels > 0 && !src->scores))
        return es_error(ES_ERR_INVALID_ARG, "eval: record with %d labels but no scores",
                        src->n_labels);
    bool ok = dup_opt(&r.emotion, src->emotion) && dup_opt(&r.query_id, src->query_id) &&
              dup_opt(&r.prompt, src->prompt) && dup_opt(&r.response, src->response);
    if (ok && src->n_labels > 0) {
        r.scores = es_calloc((size_t)src->n_labels, sizeof *r.scores);
        if (r.scores) memcpy(r.scores, src->scores, (size_t)src->n_labels * sizeof *r.scores);
        ok = r.scores != NULL;
    }
    if (!ok) {
        es_gen_record_clear(&r);
        return es_error(ES_ERR_NOMEM, "eval: out of memory copying a record");
    }
    *dst = r;
    return ES_OK;
}
