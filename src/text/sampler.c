/*
 * sampler.c — picking the next token from logits.
 *
 * One call of es_sampler_sample:
 *   1. work = logits with the penalties of the last penalty_last_n accepted tokens
 *      (repeat: positive logits divided, negative multiplied; frequency: minus
 *      count * f; presence: minus p once);
 *   2. temp <= 0: the argmax (ties -> lowest id);
 *   3. otherwise the candidates are the top_k best tokens (all finite ones without
 *      top_k), best first with ties broken by lower id; top-p keeps the shortest
 *      best-first prefix whose probability mass (softmax at T = 1 over the top-k set)
 *      reaches top_p; min-p keeps tokens with p >= min_p * p_max;
 *   4. a draw from softmax(work / temp) over the survivors with xoshiro256**.
 *
 * Top-p and min-p both keep a best-first prefix of the same order, so the result is
 * the shorter of the two prefixes whatever order they run in. We use that to avoid a
 * full sort of a 150k vocabulary: top-k is a heap selection (O(n log k)), min-p is one
 * filtering pass, and top-p without top-k buckets the tokens by logit and sorts only
 * the bucket where the mass crosses top_p.
 */
#include "common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct cand {
    float logit;
    int32_t id;
    double w; /* exp(logit - max logit), filled when top-p or min-p needs it */
} cand;

/* Buckets of the linear-time top-p selection. */
#define TOP_P_BUCKETS 4096

struct es_sampler {
    es_sampler_params p;
    int32_t n_vocab;
    uint64_t rng[4];                   /* xoshiro256** state */
    int32_t *history;                  /* [penalty_last_n] ring buffer of accepted tokens */
    int32_t n_history;                 /* valid entries in history */
    int32_t history_pos;               /* next slot to write */
    int32_t *count;                    /* [n_vocab] occurrences of each token in history */
    float *work;                       /* [n_vocab] penalised logits */
    cand *cands;                       /* [n_vocab] candidate tokens */
    double bucket_mass[TOP_P_BUCKETS]; /* scratch of top_p_unsorted */
};

/* ---- random numbers: splitmix64 seeds xoshiro256** ---- */

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}

static uint64_t xoshiro_next(uint64_t s[4]) {
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* Uniform in [0, 1) with 53 random bits. */
static double rng_uniform(uint64_t s[4]) {
    return (double)(xoshiro_next(s) >> 11) * 0x1.0p-53;
}

static void rng_seed(es_sampler *s) {
    uint64_t x = s->p.seed;
    for (int i = 0; i < 4; i++)
        s->rng[i] = splitmix64(&x);
}

/* ---- parameters ---- */

es_sampler_params es_sampler_default_params(void) {
    es_sampler_params p = {
        .temp = 0.8f,
        .top_k = 40,
        .top_p = 0.95f,
        .min_p = 0.05f,
        .repeat_penalty = 1.0f,
        .frequency_penalty = 0.0f,
        .presence_penalty = 0.0f,
        .penalty_last_n = 64,
        .seed = ES_SAMPLER_DEFAULT_SEED,
    };
    return p;
}

static es_status check_params(const es_sampler_params *p, int32_t n_vocab) {
    if (n_vocab < 1)
        return es_error(ES_ERR_INVALID_ARG, "sampler: n_vocab %d must be >= 1", (int)n_vocab);
    if (isnan(p->temp) || isinf(p->temp))
        return es_error(ES_ERR_INVALID_ARG, "sampler: temp %g is not a finite number",
                        (double)p->temp);
    if (p->top_k < 0)
        return es_error(ES_ERR_INVALID_ARG, "sampler: top_k %d must be >= 0 (0 = off)", p->top_k);
    if (!(p->top_p >= 0.0f && p->top_p <= 1.0f))
        return es_error(ES_ERR_INVALID_ARG, "sampler: top_p %g must be in [0, 1] (1 = off)",
                        (double)p->top_p);
    if (!(p->min_p >= 0.0f && p->min_p <= 1.0f))
        return es_error(ES_ERR_INVALID_ARG, "sampler: min_p %g must be in [0, 1] (0 = off)",
                        (double)p->min_p);
    if (!(p->repeat_penalty > 0.0f) || isinf(p->repeat_penalty))
        return es_error(ES_ERR_INVALID_ARG,
                        "sampler: repeat_penalty %g must be finite and > 0 (1 = off)",
                        (double)p->repeat_penalty);
    if (isnan(p->frequency_penalty) || isinf(p->frequency_penalty))
        return es_error(ES_ERR_INVALID_ARG, "sampler: frequency_penalty %g is not a finite number",
                        (double)p->frequency_penalty);
    if (isnan(p->presence_penalty) || isinf(p->presence_penalty))
        return es_error(ES_ERR_INVALID_ARG, "sampler: presence_penalty %g is not a finite number",
                        (double)p->presence_penalty);
    if (p->penalty_last_n < 0)
        return es_error(ES_ERR_INVALID_ARG, "sampler: penalty_last_n %d must be >= 0 (0 = off)",
                        p->penalty_last_n);
    return ES_OK;
}

es_status es_sampler_create(const es_sampler_params *p, int32_t n_vocab, es_sampler **out) {
    if (!p || !out) return es_error(ES_ERR_INVALID_ARG, "sampler: NULL params or output pointer");
    es_status st = check_params(p, n_vocab);
    if (st != ES_OK) return st;
    es_sampler *s = es_calloc(1, sizeof(*s));
    if (!s) return ES_ERR_NOMEM;
    s->p = *p;
    s->n_vocab = n_vocab;
    s->count = es_calloc((size_t)n_vocab, sizeof(*s->count));
    s->work = es_calloc((size_t)n_vocab, sizeof(*s->work));
    s->cands = es_calloc((size_t)n_vocab, sizeof(*s->cands));
    if (p->penalty_last_n > 0)
        s->history = es_calloc((size_t)p->penalty_last_n, sizeof(*s->history));
    if (!s->count || !s->work || !s->cands || (p->penalty_last_n > 0 && !s->history)) {
        es_sampler_free(s);
        return es_error(ES_ERR_NOMEM, "sampler: out of memory for a vocabulary of %d",
                        (int)n_vocab);
    }
    rng_seed(s);
    *out = s;
    return ES_OK;
}

void es_sampler_free(es_sampler *s) {
    if (!s) return;
    free(s->history);
    free(s->count);
    free(s->work);
    free(s->cands);
    free(s);
}

void es_sampler_reset(es_sampler *s) {
    if (!s) return;
    for (int32_t i = 0; i < s->n_history; i++)
        s->count[s->history[i]] = 0;
    s->n_history = 0;
    s->history_pos = 0;
    rng_seed(s);
}

void es_sampler_accept(es_sampler *s, int32_t tok) {
    if (!s || tok < 0 || tok >= s->n_vocab || s->p.penalty_last_n == 0) return;
    int32_t cap = s->p.penalty_last_n;
    if (s->n_history == cap) {
        s->count[s->history[s->history_pos]]--; /* the oldest token leaves the window */
    } else {
        s->n_history++;
    }
    s->history[s->history_pos] = tok;
    s->count[tok]++;
    s->history_pos = (s->history_pos + 1) % cap;
}

/* ---- penalties ---- */

void es_sampler_apply_penalties(const es_sampler *s, float *logits) {
    if (!s || !logits) return;
    const es_sampler_params *p = &s->p;
    if (p->repeat_penalty == 1.0f && p->frequency_penalty == 0.0f && p->presence_penalty == 0.0f)
        return;
    /* each distinct token once: mark visited counts by negating them, then restore */
    int32_t *count = s->count;
    for (int32_t i = 0; i < s->n_history; i++) {
        int32_t t = s->history[i];
        int32_t c = count[t];
        if (c <= 0) continue; /* already done */
        float v = logits[t];
        v = v > 0.0f ? v / p->repeat_penalty : v * p->repeat_penalty;
        v -= (float)c * p->frequency_penalty + p->presence_penalty;
        logits[t] = v;
        count[t] = -c;
    }
    for (int32_t i = 0; i < s->n_history; i++) {
        int32_t t = s->history[i];
        if (count[t] < 0) count[t] = -count[t];
    }
}

/* ---- candidate ordering: better = larger logit, then lower id ---- */

static bool better(cand a, cand b) {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

static int cmp_cand_desc(const void *pa, const void *pb) {
    cand a = *(const cand *)pa, b = *(const cand *)pb;
    if (better(a, b)) return -1;
    if (better(b, a)) return 1;
    return 0;
}

/* Min-heap by `better` (the worst candidate on top). */
static void heap_sift_down(cand *h, size_t n, size_t i) {
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && better(h[w], h[l])) w = l;
        if (r < n && better(h[w], h[r])) w = r;
        if (w == i) return;
        cand t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}

static void heap_sift_up(cand *h, size_t i) {
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!better(h[parent], h[i])) return;
        cand t = h[i];
        h[i] = h[parent];
        h[parent] = t;
        i = parent;
    }
}

/* Moves the k best of c[0..n) to c[0..k), sorted best first. O(n log k). */
static void select_top(cand *c, size_t n, size_t k) {
    if (k >= n / 2) { /* a heap would not save much: sort everything */
        qsort(c, n, sizeof(*c), cmp_cand_desc);
        return;
    }
    size_t h = 0;
    for (size_t i = 0; i < n; i++) {
        cand x = c[i];
        if (h < k) {
            c[i] = c[h]; /* c[h] is not yet in the heap and lies at or before i */
            c[h] = x;
            heap_sift_up(c, h);
            h++;
        } else if (better(x, c[0])) {
            c[i] = c[0];
            c[0] = x;
            heap_sift_down(c, k, 0);
        }
    }
    qsort(c, k, sizeof(*c), cmp_cand_desc);
}

/* Top-p over unsorted candidates c[0..n) with weights w, in linear time: bucket the
 * tokens by logit (a token never lands in a later bucket than a worse one), add the
 * bucket masses best first until they reach target, keep every earlier bucket whole
 * and sort only the bucket where the mass crosses. Returns the new count; the kept
 * tokens are moved to the front (not in order, except within the crossing bucket). */
static size_t bucket_of(float logit, double lmax, double scale) {
    size_t b = (size_t)((lmax - (double)logit) * scale);
    return b < TOP_P_BUCKETS ? b : TOP_P_BUCKETS - 1;
}

static size_t top_p_unsorted(es_sampler *s, cand *c, size_t n, double lmax, double target) {
    double lmin = lmax;
    for (size_t i = 0; i < n; i++)
        if (c[i].logit < lmin) lmin = c[i].logit;
    const double range = lmax - lmin;
    const double scale = range > 0.0 ? (TOP_P_BUCKETS - 1) / range : 0.0;
    double *mass = s->bucket_mass;
    memset(mass, 0, sizeof(s->bucket_mass));
    for (size_t i = 0; i < n; i++)
        mass[bucket_of(c[i].logit, lmax, scale)] += c[i].w;

    size_t cross = TOP_P_BUCKETS;
    double before = 0.0; /* mass of the buckets before `cross` */
    for (size_t b = 0; b < TOP_P_BUCKETS; b++) {
        if (before + mass[b] >= target) {
            cross = b;
            break;
        }
        before += mass[b];
    }
    if (cross == TOP_P_BUCKETS) return n; /* all of them stay below target: keep all */

    /* move earlier buckets to the front, then the crossing bucket */
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (bucket_of(c[i].logit, lmax, scale) < cross) {
            cand t = c[m];
            c[m++] = c[i];
            c[i] = t;
        }
    }
    size_t q = m;
    for (size_t i = m; i < n; i++) {
        if (bucket_of(c[i].logit, lmax, scale) == cross) {
            cand t = c[q];
            c[q++] = c[i];
            c[i] = t;
        }
    }
    qsort(c + m, q - m, sizeof(*c), cmp_cand_desc);
    double acc = before;
    for (size_t i = m; i < q; i++) {
        acc += c[i].w;
        if (acc >= target) return i + 1;
    }
    return q; /* rounding: the bucket sum reached target but the walk did not */
}

/* ---- sampling ---- */

int32_t es_sampler_sample(es_sampler *s, const float *logits) {
    if (!s || !logits) return es_error(ES_ERR_INVALID_ARG, "sampler: NULL sampler or logits");
    const es_sampler_params *p = &s->p;
    const int32_t n_vocab = s->n_vocab;
    float *work = s->work;

    memcpy(work, logits, (size_t)n_vocab * sizeof(*work));
    es_sampler_apply_penalties(s, work);

    /* collect the finite candidates; find the best */
    cand *c = s->cands;
    size_t n = 0;
    cand best = {-INFINITY, -1, 0.0};
    for (int32_t i = 0; i < n_vocab; i++) {
        float v = work[i];
        if (isnan(v) || v == INFINITY)
            return es_error(ES_ERR_FORMAT, "sampler: logit of token %d is %s", (int)i,
                            isnan(v) ? "NaN" : "+inf");
        if (v == -INFINITY) continue;
        cand x = {v, i, 0.0};
        c[n++] = x;
        if (best.id < 0 || better(x, best)) best = x;
    }
    if (n == 0) return es_error(ES_ERR_FORMAT, "sampler: no token has a finite logit");
    if (p->temp <= 0.0f || n == 1) return best.id;

    /* top-k */
    bool sorted = false;
    if (p->top_k > 0 && (size_t)p->top_k < n) {
        select_top(c, n, (size_t)p->top_k);
        n = (size_t)p->top_k;
        sorted = true;
    }

    /* T = 1 weights relative to the best token, and their sum over the top-k set
     * (the normaliser of top-p) */
    const double lmax = best.logit;
    const bool use_top_p = p->top_p < 1.0f;
    double z = 0.0;
    if (use_top_p || p->min_p > 0.0f) {
        for (size_t i = 0; i < n; i++) {
            c[i].w = exp((double)c[i].logit - lmax);
            z += c[i].w;
        }
    }

    /* min-p: a best-first prefix, found in one pass without sorting */
    if (p->min_p > 0.0f) {
        size_t m = 0;
        for (size_t i = 0; i < n; i++)
            if (c[i].w >= (double)p->min_p) c[m++] = c[i];
        n = m; /* the best token always stays: w = 1 >= min_p */
    }

    /* top-p: the shortest best-first prefix with mass >= top_p * z */
    if (use_top_p && n > 1) {
        const double target = (double)p->top_p * z;
        if (sorted) {
            double mass = 0.0;
            for (size_t i = 0; i < n; i++) {
                mass += c[i].w;
                if (mass >= target) {
                    n = i + 1;
                    break;
                }
            }
        } else {
            n = top_p_unsorted(s, c, n, lmax, target);
        }
    }

    /* softmax at temperature temp over the survivors, and a draw */
    const double inv_t = 1.0 / (double)p->temp;
    double sum = 0.0;
    for (size_t i = 0; i < n; i++)
        sum += exp(((double)c[i].logit - lmax) * inv_t);
    double u = rng_uniform(s->rng) * sum;
    double acc = 0.0;
    for (size_t i = 0; i < n; i++) {
        acc += exp(((double)c[i].logit - lmax) * inv_t);
        if (u < acc) return c[i].id;
    }
    return c[n - 1].id; /* rounding left u at the very top */
}
