/*
 * extract.c — emotion-vector extraction (see the "Extraction" section of emosteer.h):
 *   1. es_extract_response_means: teacher forcing with a read hook that averages the
 *      hook activations of each sequence over its response tokens;
 *   2. es_extractor: the per-sample features, and the methods that turn them into one
 *      vector per (emotion, layer): mean_diff, centered, fisher, pca.
 *
 * Everything numeric is accumulated and solved in double. Notation per layer:
 * N samples of width d, classes c = neutral and the K emotions with means mu_c,
 * md_e = mu_e - mu_neutral.
 */
#include "common.h"
#include "context.h"
#include "ev.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------------------ */
/* Methods: names                                                                        */
/* ------------------------------------------------------------------------------------ */

static const char *const method_names[ES_EXTRACT_METHOD_COUNT] = {"mean_diff", "centered", "fisher",
                                                                  "pca"};

const char *es_extract_method_name(es_extract_method m) {
    return (unsigned)m < ES_EXTRACT_METHOD_COUNT ? method_names[m] : "unknown";
}

es_status es_extract_method_parse(const char *name, es_extract_method *out) {
    if (!name || !out) return es_error(ES_ERR_INVALID_ARG, "extract: NULL method name");
    for (int m = 0; m < ES_EXTRACT_METHOD_COUNT; m++) {
        if (!strcmp(name, method_names[m])) {
            *out = (es_extract_method)m;
            return ES_OK;
        }
    }
    return es_error(ES_ERR_INVALID_ARG,
                    "extract: unknown method '%s' (expected mean_diff, centered, fisher or pca)",
                    name);
}

es_extract_params es_extract_default_params(void) {
    es_extract_params p;
    memset(&p, 0, sizeof p);
    p.method = ES_EXTRACT_MEAN_DIFF;
    p.fisher_shrinkage = 0.1f;
    p.pca_max_iter = 1000;
    p.add_base = true;
    return p;
}

/* ------------------------------------------------------------------------------------ */
/* Teacher forcing: mean activation over the response tokens                             */
/* ------------------------------------------------------------------------------------ */

typedef struct resp_acc {
    es_hook_point hp;
    int n_layer, n_embd;
    const es_extract_seq *seqs;
    const int *slot_seq; /* [n_seq_max] sequence index held by each slot, or -1 */
    double *sum;         /* [n_seq_max][n_layer][n_embd] sum of activations */
    double *norm;        /* [n_seq_max][n_layer] sum of L2 norms */
} resp_acc;

static void resp_hook(void *user, es_hook_point hp, int layer, float *x, int n_tokens, int n_embd,
                      const es_batch *b) {
    resp_acc *a = user;
    if (hp != a->hp || layer < 0 || layer >= a->n_layer || n_embd != a->n_embd) return;
    for (int t = 0; t < n_tokens; t++) {
        int slot = b->seq[t];
        int i = a->slot_seq[slot];
        if (i < 0 || b->pos[t] < a->seqs[i].n_prompt) continue;
        const float *xt = x + (size_t)t * (size_t)n_embd;
        double *s = a->sum + ((size_t)slot * (size_t)a->n_layer + (size_t)layer) * (size_t)n_embd;
        double ss = 0;
        for (int k = 0; k < n_embd; k++) {
            s[k] += xt[k];
            ss += (double)xt[k] * xt[k];
        }
        a->norm[(size_t)slot * (size_t)a->n_layer + (size_t)layer] += sqrt(ss);
    }
}

es_status es_extract_response_means(es_context *ctx, es_hook_point hp, const es_extract_seq *seqs,
                                    int n, float *mean, float *norm, int *n_resp) {
    if (!ctx || !seqs || !mean || n < 0)
        return es_error(ES_ERR_INVALID_ARG, "extract: NULL argument or negative count");
    if ((unsigned)hp >= ES_HOOK_COUNT)
        return es_error(ES_ERR_INVALID_ARG, "extract: bad hook %d", (int)hp);
    es_model_info mi;
    es_model_get_info(ctx->model, &mi);
    const int L = mi.n_layer, d = mi.n_embd;
    const int n_seq_max = ctx->params.n_seq_max, n_batch = ctx->params.n_batch;
    for (int i = 0; i < n; i++) {
        const es_extract_seq *s = &seqs[i];
        if (!s->tokens || s->n_tokens < 0 || s->n_prompt < 0 || s->n_prompt > s->n_tokens)
            return es_error(ES_ERR_INVALID_ARG,
                            "extract: sequence %d: prompt length %d outside [0, %d]", i,
                            s->n_prompt, s->n_tokens);
        if (s->n_tokens > ctx->params.n_ctx)
            return es_error(ES_ERR_RANGE,
                            "extract: sequence %d has %d tokens; the context holds %d", i,
                            s->n_tokens, ctx->params.n_ctx);
    }
    const size_t feat = (size_t)L * (size_t)d;
    es_status st = ES_OK;
    int *slot_seq = es_calloc((size_t)n_seq_max, sizeof *slot_seq);
    double *sum = es_calloc((size_t)n_seq_max, feat * sizeof *sum);
    double *nsum = es_calloc((size_t)n_seq_max * (size_t)L, sizeof *nsum);
    int32_t *btok = es_calloc((size_t)n_batch, sizeof *btok);
    int32_t *bpos = es_calloc((size_t)n_batch, sizeof *bpos);
    int32_t *bseq = es_calloc((size_t)n_batch, sizeof *bseq);
    int8_t *blog = es_calloc((size_t)n_batch, sizeof *blog); /* all zero: no logits */
    int *ends = es_calloc((size_t)n_seq_max, sizeof *ends);  /* sequences completed by a batch */
    if (!slot_seq || !sum || !nsum || !btok || !bpos || !bseq || !blog || !ends) {
        st = ES_ERR_NOMEM;
        goto done;
    }
    for (int s = 0; s < n_seq_max; s++)
        slot_seq[s] = -1;

    resp_acc acc = {hp, L, d, seqs, slot_seq, sum, nsum};
    es_hook_fn saved_fn = ctx->hook;
    void *saved_user = ctx->hook_user;
    es_set_hook(ctx, resp_hook, &acc);

    /* Pack the sequences in order; the sequences of one batch are consecutive, so
     * at most n_seq_max of them gives each its own slot i % n_seq_max. */
    int si = 0, sj = 0; /* next token: sequence si, position sj */
    while (st == ES_OK) {
        while (si < n && seqs[si].n_prompt == seqs[si].n_tokens) {
            /* no response: nothing to decode */
            memset(mean + (size_t)si * feat, 0, feat * sizeof *mean);
            if (norm) memset(norm + (size_t)si * (size_t)L, 0, (size_t)L * sizeof *norm);
            if (n_resp) n_resp[si] = 0;
            si++, sj = 0;
        }
        if (si >= n) break;
        int nb = 0, n_ends = 0, first = si;
        while (si < n && nb < n_batch) {
            if (seqs[si].n_prompt == seqs[si].n_tokens) break; /* handled at the next batch */
            if (si - first >= n_seq_max) break;
            int slot = si % n_seq_max;
            if (sj == 0) {
                slot_seq[slot] = si;
                memset(sum + (size_t)slot * feat, 0, feat * sizeof *sum);
                memset(nsum + (size_t)slot * (size_t)L, 0, (size_t)L * sizeof *nsum);
            }
            btok[nb] = seqs[si].tokens[sj];
            bpos[nb] = sj;
            bseq[nb] = slot;
            nb++;
            if (++sj == seqs[si].n_tokens) {
                ends[n_ends++] = si;
                si++, sj = 0;
            }
        }
        es_batch b = {.n_tokens = nb, .token = btok, .pos = bpos, .seq = bseq, .logits = blog};
        if ((st = es_decode(ctx, &b)) != ES_OK) break;
        for (int e = 0; e < n_ends; e++) {
            int i = ends[e], slot = i % n_seq_max;
            int cnt = seqs[i].n_tokens - seqs[i].n_prompt;
            const double *s = sum + (size_t)slot * feat;
            float *m = mean + (size_t)i * feat;
            for (size_t k = 0; k < feat; k++)
                m[k] = (float)(s[k] / cnt);
            if (norm)
                for (int l = 0; l < L; l++)
                    norm[(size_t)i * (size_t)L + (size_t)l] =
                        (float)(nsum[(size_t)slot * (size_t)L + (size_t)l] / cnt);
            if (n_resp) n_resp[i] = cnt;
            slot_seq[slot] = -1;
        }
    }
    es_set_hook(ctx, saved_fn, saved_user);
done:
    free(slot_seq);
    free(sum);
    free(nsum);
    free(btok);
    free(bpos);
    free(bseq);
    free(blog);
    free(ends);
    return st;
}

/* ------------------------------------------------------------------------------------ */
/* The sample collection                                                                 */
/* ------------------------------------------------------------------------------------ */

typedef struct sample {
    int label;   /* emotion index, or -1 = neutral */
    int pair;    /* pairing id (same query) */
    float *mean; /* [n_layer][n_embd] */
    float *norm; /* [n_layer] (zeros when unknown) */
} sample;

struct es_extractor {
    int n_layer, n_embd, n_emotions;
    char **emotions; /* [n_emotions] */
    sample *samples; /* [cap] */
    int n_samples, cap;
};

es_status es_extractor_create(int n_layer, int n_embd, const char *const *emotions, int n_emotions,
                              es_extractor **out) {
    if (!out || (!emotions && n_emotions > 0))
        return es_error(ES_ERR_INVALID_ARG, "extract: NULL argument");
    if (n_layer < 1 || n_layer > ES_EV_MAX_LAYER || n_embd < 1 || n_embd > (1 << 24))
        return es_error(ES_ERR_INVALID_ARG, "extract: bad shape %d layers x %d", n_layer, n_embd);
    if (n_emotions < 1 || n_emotions > 1024)
        return es_error(ES_ERR_INVALID_ARG, "extract: %d emotions (expected 1..1024)", n_emotions);
    for (int e = 0; e < n_emotions; e++) {
        if (!emotions[e] || !es_ev_name_valid(emotions[e]) || !strcmp(emotions[e], "neutral") ||
            !strcmp(emotions[e], "base"))
            return es_error(ES_ERR_INVALID_ARG, "extract: bad emotion name '%s'",
                            emotions[e] ? emotions[e] : "(null)");
        for (int f = 0; f < e; f++)
            if (!strcmp(emotions[e], emotions[f]))
                return es_error(ES_ERR_INVALID_ARG, "extract: emotion '%s' given twice",
                                emotions[e]);
    }
    es_extractor *ex = es_calloc(1, sizeof *ex);
    if (!ex) return ES_ERR_NOMEM;
    ex->n_layer = n_layer;
    ex->n_embd = n_embd;
    ex->emotions = es_calloc((size_t)n_emotions, sizeof *ex->emotions);
    if (!ex->emotions) {
        free(ex);
        return ES_ERR_NOMEM;
    }
    ex->n_emotions = n_emotions;
    for (int e = 0; e < n_emotions; e++) {
        if (!(ex->emotions[e] = es_strdup(emotions[e]))) {
            es_extractor_free(ex);
            return es_error(ES_ERR_NOMEM, "extract: out of memory");
        }
    }
    *out = ex;
    return ES_OK;
}

void es_extractor_free(es_extractor *ex) {
    if (!ex) return;
    for (int e = 0; ex->emotions && e < ex->n_emotions; e++)
        free(ex->emotions[e]);
    free(ex->emotions);
    for (int i = 0; i < ex->n_samples; i++) {
        free(ex->samples[i].mean);
        free(ex->samples[i].norm);
    }
    free(ex->samples);
    free(ex);
}

es_status es_extractor_add(es_extractor *ex, int emotion, int pair, const float *mean,
                           const float *norm) {
    if (!ex || !mean) return es_error(ES_ERR_INVALID_ARG, "extract: NULL argument");
    if (emotion < -1 || emotion >= ex->n_emotions)
        return es_error(ES_ERR_INVALID_ARG, "extract: emotion index %d outside [-1, %d)", emotion,
                        ex->n_emotions);
    if (pair < 0) return es_error(ES_ERR_INVALID_ARG, "extract: pair %d must be >= 0", pair);
    const size_t feat = (size_t)ex->n_layer * (size_t)ex->n_embd;
    for (size_t k = 0; k < feat; k++)
        if (!isfinite(mean[k]))
            return es_error(ES_ERR_FORMAT, "extract: sample value %zu (layer %zu) is not finite", k,
                            k / (size_t)ex->n_embd);
    for (int l = 0; norm && l < ex->n_layer; l++)
        if (!isfinite(norm[l]))
            return es_error(ES_ERR_FORMAT, "extract: norm of layer %d is not finite", l);
    if (ex->n_samples == ex->cap) {
        if (ex->cap > (1 << 28)) return es_error(ES_ERR_NOMEM, "extract: too many samples");
        int cap = ex->cap ? 2 * ex->cap : 64;
        sample *s = realloc(ex->samples, (size_t)cap * sizeof *s);
        if (!s) return es_error(ES_ERR_NOMEM, "extract: out of memory for %d samples", cap);
        ex->samples = s;
        ex->cap = cap;
    }
    sample *s = &ex->samples[ex->n_samples];
    s->label = emotion;
    s->pair = pair;
    s->mean = malloc(feat * sizeof *s->mean);
    s->norm = es_calloc((size_t)ex->n_layer, sizeof *s->norm);
    if (!s->mean || !s->norm) {
        free(s->mean);
        free(s->norm);
        return es_error(ES_ERR_NOMEM, "extract: out of memory for a sample");
    }
    memcpy(s->mean, mean, feat * sizeof *mean);
    if (norm) memcpy(s->norm, norm, (size_t)ex->n_layer * sizeof *norm);
    ex->n_samples++;
    return ES_OK;
}

int es_extractor_n_samples(const es_extractor *ex, int emotion) {
    int c = 0;
    for (int i = 0; ex && i < ex->n_samples; i++)
        c += ex->samples[i].label == emotion;
    return c;
}

/* ------------------------------------------------------------------------------------ */
/* The methods, per layer                                                                */
/* ------------------------------------------------------------------------------------ */

static double dot(const double *a, const double *b, int n) {
    double s = 0;
    for (int i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

/* In-place Cholesky factorisation of the SPD matrix a[n][n] (lower triangle). */
static es_status cholesky(double *a, int n) {
    for (int j = 0; j < n; j++) {
        double djj = a[(size_t)j * n + j] - dot(a + (size_t)j * n, a + (size_t)j * n, j);
        if (!(djj > 0))
            return es_error(ES_ERR_INTERNAL, "extract: fisher system not positive definite");
        djj = sqrt(djj);
        a[(size_t)j * n + j] = djj;
        for (int i = j + 1; i < n; i++)
            a[(size_t)i * n + j] =
                (a[(size_t)i * n + j] - dot(a + (size_t)i * n, a + (size_t)j * n, j)) / djj;
    }
    return ES_OK;
}

/* Solves L L^T z = y in place (y becomes z). */
static void cholesky_solve(const double *l, int n, double *y) {
    for (int i = 0; i < n; i++)
        y[i] = (y[i] - dot(l + (size_t)i * n, y, i)) / l[(size_t)i * n + i];
    for (int i = n - 1; i >= 0; i--) {
        double s = y[i];
        for (int k = i + 1; k < n; k++)
            s -= l[(size_t)k * n + i] * y[k];
        y[i] = s / l[(size_t)i * n + i];
    }
}

static double norm2(const double *a, int n) {
    return sqrt(dot(a, a, n));
}

/* What compute needs besides the samples: class and neutral partners of each sample. */
typedef struct plan {
    int N, d, K;
    int *cls;   /* [N] class: 0 = neutral, 1 + e = emotion e */
    int *count; /* [K + 2] samples per class; K + 1 = every emotion */
    int *nbr;   /* [n_neutral] neutral sample indices sorted by pair */
    int n_neutral;
    int *plo, *phi; /* [N] for an emotional sample: its partners are nbr[plo..phi) */
} plan;

typedef struct pair_key {
    int pair, idx;
} pair_key;

static int cmp_pair(const void *a, const void *b) {
    const pair_key *x = a, *y = b;
    if (x->pair != y->pair) return x->pair < y->pair ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Layer data: x[N][d] samples, mu[K + 2][d] class means (K + 1 = every emotion). */
typedef struct layer_data {
    double *x, *mu;
    double *target; /* [K + 1][d] mean differences: emotion e, then K = base */
} layer_data;

static void layer_load(const es_extractor *ex, const plan *p, int layer, layer_data *ld) {
    const int N = p->N, d = p->d, K = p->K;
    memset(ld->mu, 0, (size_t)(K + 2) * (size_t)d * sizeof *ld->mu);
    for (int i = 0; i < N; i++) {
        const float *m = ex->samples[i].mean + (size_t)layer * (size_t)d;
        double *xi = ld->x + (size_t)i * (size_t)d;
        double *mc = ld->mu + (size_t)p->cls[i] * (size_t)d;
        double *ma = ld->mu + (size_t)(K + 1) * (size_t)d;
        for (int k = 0; k < d; k++) {
            xi[k] = m[k];
            mc[k] += m[k];
            if (p->cls[i] > 0) ma[k] += m[k];
        }
    }
    for (int c = 0; c < K + 2; c++) {
        double *mc = ld->mu + (size_t)c * (size_t)d;
        for (int k = 0; k < d; k++)
            mc[k] /= p->count[c];
    }
    for (int t = 0; t <= K; t++) {
        const double *me = ld->mu + (size_t)(t + 1) * (size_t)d; /* t == K: every emotion */
        double *tg = ld->target + (size_t)t * (size_t)d;
        for (int k = 0; k < d; k++)
            tg[k] = me[k] - ld->mu[k];
    }
}

/* fisher: out[t] = (S_w + lambda I)^-1 target[t] by Woodbury with the N x N Gram
 * matrix of the class-centred samples X (S_w = X^T X / (N - C)):
 *   (lambda I + s X^T X)^-1 v = (v - X^T (X X^T + (lambda/s) I)^-1 X v) / lambda,
 * then rescaled to |target[t]|. */
static es_status fisher(const plan *p, const layer_data *ld, float shrinkage, double *out) {
    const int N = p->N, d = p->d, K = p->K;
    es_status st = ES_OK;
    double *xc = malloc((size_t)N * (size_t)d * sizeof *xc);
    double *g = malloc((size_t)N * (size_t)N * sizeof *g);
    double *y = malloc((size_t)N * sizeof *y);
    if (!xc || !g || !y) {
        st = es_error(ES_ERR_NOMEM, "extract: fisher: out of memory for %d samples x %d", N, d);
        goto done;
    }
    for (int i = 0; i < N; i++) {
        const double *mc = ld->mu + (size_t)p->cls[i] * (size_t)d;
        for (int k = 0; k < d; k++)
            xc[(size_t)i * d + k] = ld->x[(size_t)i * d + k] - mc[k];
    }
    double tr = 0;
    for (int i = 0; i < N; i++) {
        for (int j = 0; j <= i; j++) {
            double v = dot(xc + (size_t)i * d, xc + (size_t)j * d, d);
            g[(size_t)i * N + j] = g[(size_t)j * N + i] = v;
        }
        tr += g[(size_t)i * N + i];
    }
    int n_classes = 0;
    for (int c = 0; c <= K; c++)
        n_classes += p->count[c] > 0;
    const double s = 1.0 / (N - n_classes > 0 ? N - n_classes : 1);
    const double avg_var = s * tr / d; /* trace(S_w) / d */
    const double mu_sq = dot(ld->mu, ld->mu, d) / d;
    const double lambda = (double)shrinkage * avg_var + 1e-6 * avg_var + 1e-9 * mu_sq + 1e-30;
    for (int i = 0; i < N; i++)
        g[(size_t)i * N + i] += lambda / s;
    if ((st = cholesky(g, N)) != ES_OK) goto done;
    for (int t = 0; t <= K; t++) {
        const double *v = ld->target + (size_t)t * d;
        double *w = out + (size_t)t * d;
        for (int i = 0; i < N; i++)
            y[i] = dot(xc + (size_t)i * d, v, d);
        cholesky_solve(g, N, y);
        for (int k = 0; k < d; k++)
            w[k] = v[k];
        for (int i = 0; i < N; i++) {
            const double *xi = xc + (size_t)i * d;
            for (int k = 0; k < d; k++)
                w[k] -= y[i] * xi[k];
        }
        double nw = norm2(w, d), nv = norm2(v, d);
        for (int k = 0; k < d; k++)
            w[k] = nw > 0 ? w[k] * (nv / nw) : 0;
    }
done:
    free(xc);
    free(g);
    free(y);
    return st;
}

/* pca for target t (emotion t, or every emotion when t == K): rows of D are the
 * paired differences; the top eigenvector a of D D^T by power iteration gives
 * u = D^T a / |D^T a|, signed so that u . target >= 0; out = (u . target) u. */
static es_status pca(const es_extractor *ex, const plan *p, const layer_data *ld, int t,
                     int max_iter, double *out) {
    const int N = p->N, d = p->d, K = p->K;
    int P = 0;
    for (int i = 0; i < N; i++)
        if (p->cls[i] > 0 && (t == K || p->cls[i] == 1 + t) && p->phi[i] > p->plo[i]) P++;
    if (P == 0)
        return es_error(ES_ERR_INVALID_ARG,
                        "extract: pca: %s has no sample paired with a neutral one",
                        t == K ? "base" : ex->emotions[t]);
    es_status st = ES_OK;
    double *dm = malloc((size_t)P * (size_t)d * sizeof *dm);
    double *g = malloc((size_t)P * (size_t)P * sizeof *g);
    double *a = malloc((size_t)P * sizeof *a), *b = malloc((size_t)P * sizeof *b);
    if (!dm || !g || !a || !b) {
        st = es_error(ES_ERR_NOMEM, "extract: pca: out of memory for %d pairs x %d", P, d);
        goto done;
    }
    int r = 0;
    for (int i = 0; i < N; i++) {
        if (!(p->cls[i] > 0 && (t == K || p->cls[i] == 1 + t) && p->phi[i] > p->plo[i])) continue;
        double *row = dm + (size_t)r++ * d;
        for (int k = 0; k < d; k++)
            row[k] = 0;
        for (int j = p->plo[i]; j < p->phi[i]; j++) {
            const double *xn = ld->x + (size_t)p->nbr[j] * d;
            for (int k = 0; k < d; k++)
                row[k] += xn[k];
        }
        const double inv = 1.0 / (p->phi[i] - p->plo[i]);
        const double *xi = ld->x + (size_t)i * d;
        for (int k = 0; k < d; k++)
            row[k] = xi[k] - row[k] * inv;
    }
    for (int i = 0; i < P; i++)
        for (int j = 0; j <= i; j++)
            g[(size_t)i * P + j] = g[(size_t)j * P + i] =
                dot(dm + (size_t)i * d, dm + (size_t)j * d, d);
    for (int i = 0; i < P; i++)
        a[i] = 1.0 / sqrt(P);
    for (int it = 0; it < max_iter; it++) {
        for (int i = 0; i < P; i++)
            b[i] = dot(g + (size_t)i * P, a, P);
        double nb = norm2(b, P);
        if (!(nb > 0)) break; /* every difference is zero */
        double change = 0;
        for (int i = 0; i < P; i++) {
            b[i] /= nb;
            change += (b[i] - a[i]) * (b[i] - a[i]);
            a[i] = b[i];
        }
        if (change < 1e-24) break;
    }
    for (int k = 0; k < d; k++)
        out[k] = 0;
    for (int i = 0; i < P; i++)
        for (int k = 0; k < d; k++)
            out[k] += a[i] * dm[(size_t)i * d + k];
    double nu = norm2(out, d);
    const double *tg = ld->target + (size_t)t * d;
    if (nu > 0) {
        for (int k = 0; k < d; k++)
            out[k] /= nu;
        double proj = dot(out, tg, d);
        for (int k = 0; k < d; k++)
            out[k] *= proj; /* sign flips with proj: u . target >= 0 */
    }
done:
    free(dm);
    free(g);
    free(a);
    free(b);
    return st;
}

es_status es_extractor_compute(const es_extractor *ex, const es_extract_params *params,
                               es_hook_point hp, es_ev_set **out) {
    if (!ex || !out) return es_error(ES_ERR_INVALID_ARG, "extract: NULL argument");
    es_extract_params prm = params ? *params : es_extract_default_params();
    if ((unsigned)prm.method >= ES_EXTRACT_METHOD_COUNT)
        return es_error(ES_ERR_INVALID_ARG, "extract: bad method %d", (int)prm.method);
    if (!isfinite(prm.fisher_shrinkage) || prm.fisher_shrinkage < 0)
        return es_error(ES_ERR_INVALID_ARG, "extract: fisher shrinkage %g must be >= 0",
                        (double)prm.fisher_shrinkage);
    const int N = ex->n_samples, d = ex->n_embd, K = ex->n_emotions, L = ex->n_layer;
    plan p = {.N = N, .d = d, .K = K};
    layer_data ld = {0};
    double *vec = NULL; /* [K + 1][d] */
    float *vf = NULL;   /* [d] */
    es_ev_set *set = NULL;
    pair_key *pk = NULL;
    es_status st = ES_OK;
    p.cls = es_calloc((size_t)(N ? N : 1), sizeof *p.cls);
    p.count = es_calloc((size_t)K + 2, sizeof *p.count);
    p.nbr = es_calloc((size_t)(N ? N : 1), sizeof *p.nbr);
    p.plo = es_calloc((size_t)(N ? N : 1), sizeof *p.plo);
    p.phi = es_calloc((size_t)(N ? N : 1), sizeof *p.phi);
    ld.x = es_calloc((size_t)(N ? N : 1), (size_t)d * sizeof *ld.x);
    ld.mu = es_calloc((size_t)K + 2, (size_t)d * sizeof *ld.mu);
    ld.target = es_calloc((size_t)K + 1, (size_t)d * sizeof *ld.target);
    vec = es_calloc((size_t)K + 1, (size_t)d * sizeof *vec);
    vf = es_calloc((size_t)d, sizeof *vf);
    if (!p.cls || !p.count || !p.nbr || !p.plo || !p.phi || !ld.x || !ld.mu || !ld.target || !vec ||
        !vf) {
        st = ES_ERR_NOMEM;
        goto done;
    }
    for (int i = 0; i < N; i++) {
        p.cls[i] = ex->samples[i].label < 0 ? 0 : 1 + ex->samples[i].label;
        p.count[p.cls[i]]++;
        if (p.cls[i] > 0) p.count[K + 1]++;
        if (p.cls[i] == 0) p.nbr[p.n_neutral++] = i;
    }
    if (p.count[0] == 0) {
        st = es_error(ES_ERR_INVALID_ARG, "extract: no neutral samples");
        goto done;
    }
    for (int e = 0; e < K; e++) {
        if (p.count[1 + e] == 0) {
            st = es_error(ES_ERR_INVALID_ARG, "extract: emotion '%s' has no samples",
                          ex->emotions[e]);
            goto done;
        }
    }
    /* neutral partners of each emotional sample: the neutral samples of its pair */
    pk = es_calloc((size_t)(p.n_neutral ? p.n_neutral : 1), sizeof *pk);
    if (!pk) {
        st = ES_ERR_NOMEM;
        goto done;
    }
    for (int j = 0; j < p.n_neutral; j++)
        pk[j] = (pair_key){ex->samples[p.nbr[j]].pair, p.nbr[j]};
    qsort(pk, (size_t)p.n_neutral, sizeof *pk, cmp_pair);
    for (int j = 0; j < p.n_neutral; j++)
        p.nbr[j] = pk[j].idx;
    for (int i = 0; i < N; i++) {
        if (p.cls[i] == 0) continue;
        int pair = ex->samples[i].pair, lo = 0, hi = p.n_neutral;
        while (lo < hi) { /* first neutral with pair >= this pair */
            int mid = lo + (hi - lo) / 2;
            if (pk[mid].pair < pair)
                lo = mid + 1;
            else
                hi = mid;
        }
        p.plo[i] = lo;
        while (hi < p.n_neutral && pk[hi].pair == pair)
            hi++;
        p.phi[i] = hi;
    }

    if ((st = es_ev_set_create(d, hp, &set)) != ES_OK) goto done;
    for (int l = 0; l < L; l++) {
        layer_load(ex, &p, l, &ld);
        switch (prm.method) {
        case ES_EXTRACT_MEAN_DIFF:
            memcpy(vec, ld.target, (size_t)(K + 1) * (size_t)d * sizeof *vec);
            break;
        case ES_EXTRACT_CENTERED: {
            double *common = vec + (size_t)K * d; /* base = the shared part */
            for (int k = 0; k < d; k++)
                common[k] = 0;
            for (int e = 0; e < K; e++)
                for (int k = 0; k < d; k++)
                    common[k] += ld.target[(size_t)e * d + k] / K;
            for (int e = 0; e < K; e++)
                for (int k = 0; k < d; k++)
                    vec[(size_t)e * d + k] = ld.target[(size_t)e * d + k] - common[k];
            break;
        }
        case ES_EXTRACT_FISHER: st = fisher(&p, &ld, prm.fisher_shrinkage, vec); break;
        case ES_EXTRACT_PCA:
            for (int t = 0; t <= K && st == ES_OK; t++)
                if (t < K || prm.add_base)
                    st = pca(ex, &p, &ld, t, prm.pca_max_iter, vec + (size_t)t * d);
            break;
        default: break;
        }
        if (st != ES_OK) {
            es_error_prefix(st, "layer %d", l);
            goto done;
        }
        for (int t = 0; t <= K; t++) {
            if (t == K && !prm.add_base) break;
            for (int k = 0; k < d; k++)
                vf[k] = (float)vec[(size_t)t * d + k];
            if ((st = es_ev_set_put(set, t < K ? ex->emotions[t] : "base", l, vf)) != ES_OK)
                goto done;
        }
        double ns = 0;
        for (int i = 0; i < N; i++)
            ns += ex->samples[i].norm[l];
        if ((st = es_ev_set_set_act_norm(set, l, (float)(ns / N))) != ES_OK) goto done;
    }
    int n_min = p.count[0];
    for (int e = 0; e < K; e++)
        n_min = ES_MIN(n_min, p.count[1 + e]);
    es_ev_meta meta = {.method = es_extract_method_name(prm.method),
                       .token_policy = "response",
                       .n_samples = n_min};
    if ((st = es_ev_set_set_meta(set, &meta)) != ES_OK) goto done;
    *out = set;
    set = NULL;
done:
    es_ev_set_free(set);
    free(pk);
    free(p.cls);
    free(p.count);
    free(p.nbr);
    free(p.plo);
    free(p.phi);
    free(ld.x);
    free(ld.mu);
    free(ld.target);
    free(vec);
    free(vf);
    return st;
}
