/*
 * scorers.c — model-based evaluation signals besides the judge: teacher forcing of
 * token segments (shared with src/judge.c), text embeddings by mean pooling of hidden
 * states, response perplexity, and validation of a scorer on labelled sentences.
 */
#include "scorers.h"

#include "file.h"

#include "common.h"
#include "context.h"
#include "eval_metrics.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TSV_BYTES ((size_t)64 << 20)

/* ------------------------------------------------------------------------------------ */
/* Small helpers                                                                         */
/* ------------------------------------------------------------------------------------ */

size_t es_utf8_complete_prefix(const char *s, size_t len) {
    /* look back over at most 3 continuation bytes for the last lead byte */
    size_t i = len, back = 0;
    while (i > 0 && back < 4 && ((unsigned char)s[i - 1] & 0xC0) == 0x80)
        i--, back++;
    if (i == 0) return len; /* only continuation bytes: nothing to complete */
    unsigned char lead = (unsigned char)s[i - 1];
    size_t need = lead < 0x80             ? 1
                  : (lead & 0xE0) == 0xC0 ? 2
                  : (lead & 0xF0) == 0xE0 ? 3
                  : (lead & 0xF8) == 0xF0 ? 4
                                          : 1;
    size_t have = len - (i - 1);
    return have < need ? i - 1 : len;
}

double es_cosine(const float *a, const float *b, int n) {
    if (!a || !b || n < 1) return 0;
    double ab = 0, aa = 0, bb = 0;
    for (int i = 0; i < n; i++) {
        ab += (double)a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += (double)b[i] * b[i];
    }
    if (aa <= 0 || bb <= 0) return 0;
    return ab / (sqrt(aa) * sqrt(bb));
}

/* ------------------------------------------------------------------------------------ */
/* Teacher forcing of token segments                                                     */
/* ------------------------------------------------------------------------------------ */

int es_tf_default_logit_rows(const es_context *ctx) {
    es_model_info mi;
    es_model_get_info(ctx->model, &mi);
    size_t row = (size_t)(mi.n_vocab > 0 ? mi.n_vocab : 1) * sizeof(float);
    size_t rows = ((size_t)128 << 20) / row;
    if (rows < 8) rows = 8;
    if (rows > (size_t)ctx->params.n_batch) rows = (size_t)ctx->params.n_batch;
    return (int)rows;
}

es_status es_tf_decode(es_context *ctx, const es_tf_seg *segs, int n_segs, int max_logit_rows,
                       es_tf_logits_fn fn, void *user) {
    if (!ctx || (!segs && n_segs > 0) || n_segs < 0 || max_logit_rows < 1)
        return es_error(ES_ERR_INVALID_ARG, "scorer: bad teacher-forcing arguments");
    const int n_batch = ctx->params.n_batch, n_ctx = ctx->params.n_ctx;
    for (int i = 0; i < n_segs; i++) {
        const es_tf_seg *g = &segs[i];
        if (g->len < 0 || (g->len > 0 && !g->tok) || g->slot < 0 ||
            g->slot >= ctx->params.n_seq_max || g->pos0 < 0 || g->pos0 > n_ctx - g->len ||
            g->logits_lo < 0 || g->logits_hi > g->len)
            return es_error(ES_ERR_RANGE,
                            "scorer: segment %d (sequence %d, %d tokens at %d) does not fit "
                            "the context (%d sequences of %d)",
                            i, g->slot, g->len, g->pos0, ctx->params.n_seq_max, n_ctx);
        if (g->logits_lo < g->logits_hi && !fn)
            return es_error(ES_ERR_INVALID_ARG, "scorer: logits wanted without a callback");
        for (int k = 0; k < i; k++)
            if (segs[k].slot == g->slot && segs[k].len > 0 && g->len > 0)
                return es_error(ES_ERR_INVALID_ARG, "scorer: segments %d and %d share sequence %d",
                                k, i, g->slot);
    }
    int32_t *btok = es_calloc((size_t)n_batch, sizeof *btok);
    int32_t *bpos = es_calloc((size_t)n_batch, sizeof *bpos);
    int32_t *bseq = es_calloc((size_t)n_batch, sizeof *bseq);
    int8_t *blog = es_calloc((size_t)n_batch, sizeof *blog);
    int *row_seg = es_calloc((size_t)n_batch, sizeof *row_seg); /* batch index -> segment, k */
    int *row_k = es_calloc((size_t)n_batch, sizeof *row_k);
    es_status st = ES_OK;
    if (!btok || !bpos || !bseq || !blog || !row_seg || !row_k) st = ES_ERR_NOMEM;
    int si = 0, k = 0; /* next token: segment si, token k */
    while (st == ES_OK) {
        while (si < n_segs && k >= segs[si].len)
            si++, k = 0;
        if (si >= n_segs) break;
        int nb = 0, n_rows = 0;
        while (si < n_segs && nb < n_batch) {
            const es_tf_seg *g = &segs[si];
            if (k >= g->len) {
                si++, k = 0;
                continue;
            }
            bool want = k >= g->logits_lo && k < g->logits_hi;
            if (want && n_rows == max_logit_rows) break;
            btok[nb] = g->tok[k];
            bpos[nb] = g->pos0 + k;
            bseq[nb] = g->slot;
            blog[nb] = want;
            if (want) row_seg[n_rows] = si, row_k[n_rows] = k, n_rows++;
            nb++, k++;
        }
        if (nb == 0) break;
        es_batch b = {.n_tokens = nb, .token = btok, .pos = bpos, .seq = bseq, .logits = blog};
        if ((st = es_decode(ctx, &b)) != ES_OK) break;
        /* rows were recorded in batch order; find each row's batch index again */
        for (int i = 0, r = 0; i < nb && r < n_rows && st == ES_OK; i++) {
            if (!blog[i]) continue;
            const float *lg = es_get_logits(ctx, i);
            if (!lg)
                st = es_error(ES_ERR_INTERNAL, "scorer: no logits for batch token %d", i);
            else
                st = fn(user, row_seg[r], row_k[r], lg);
            r++;
        }
    }
    free(btok);
    free(bpos);
    free(bseq);
    free(blog);
    free(row_seg);
    free(row_k);
    return st;
}

/* ------------------------------------------------------------------------------------ */
/* Embeddings                                                                            */
/* ------------------------------------------------------------------------------------ */

es_embed_params es_embed_default_params(void) {
    es_embed_params p;
    memset(&p, 0, sizeof p);
    p.layer = -1;
    p.hook = ES_HOOK_BLOCK_OUT;
    p.max_tokens = 512;
    return p;
}

int es_embed_default_layer(int n_layer) {
    if (n_layer < 1) return 0;
    int l = (2 * n_layer) / 3;
    return l > n_layer - 1 ? n_layer - 1 : l;
}

typedef struct embed_acc {
    es_hook_point hp;
    int layer, n_embd;
    const int *skip; /* [n_seq_max] positions below this are not pooled (BOS) */
    double *sum;     /* [n_seq_max][n_embd] */
} embed_acc;

static void embed_hook(void *user, es_hook_point hp, int layer, float *x, int n_tokens, int n_embd,
                       const es_batch *b) {
    embed_acc *a = user;
    if (hp != a->hp || layer != a->layer || n_embd != a->n_embd) return;
    for (int t = 0; t < n_tokens; t++) {
        int slot = b->seq[t];
        if (b->pos[t] < a->skip[slot]) continue;
        const float *xt = x + (size_t)t * (size_t)n_embd;
        double *s = a->sum + (size_t)slot * (size_t)n_embd;
        for (int i = 0; i < n_embd; i++)
            s[i] += xt[i];
    }
}

es_status es_embed_texts(es_context *ctx, const char *const *texts, int n,
                         const es_embed_params *params, float *out) {
    if (!ctx || (!texts && n > 0) || (!out && n > 0) || n < 0)
        return es_error(ES_ERR_INVALID_ARG, "embed: NULL argument or negative count");
    es_embed_params p = params ? *params : es_embed_default_params();
    es_model_info mi;
    es_model_get_info(ctx->model, &mi);
    if (p.layer == -1) p.layer = es_embed_default_layer(mi.n_layer);
    if (p.layer < 0 || p.layer >= mi.n_layer)
        return es_error(ES_ERR_INVALID_ARG, "embed: layer %d outside [0, %d)", p.layer, mi.n_layer);
    if ((unsigned)p.hook >= ES_HOOK_COUNT)
        return es_error(ES_ERR_INVALID_ARG, "embed: bad hook %d", (int)p.hook);
    if (p.max_tokens < 1)
        return es_error(ES_ERR_INVALID_ARG, "embed: max_tokens %d < 1", p.max_tokens);
    const es_vocab *vocab = es_model_vocab(ctx->model);
    if (!vocab) return es_error(ES_ERR_UNSUPPORTED, "embed: the model has no tokenizer");
    for (int i = 0; i < n; i++)
        if (!texts[i]) return es_error(ES_ERR_INVALID_ARG, "embed: text %d is NULL", i);
    const int S = ctx->params.n_seq_max, d = mi.n_embd;
    const int max_tok = ES_MIN(p.max_tokens, ctx->params.n_ctx);
    const int32_t bos = es_vocab_bos(vocab);

    int32_t **toks = es_calloc((size_t)S, sizeof *toks);
    int *skip = es_calloc((size_t)S, sizeof *skip);
    double *sum = es_calloc((size_t)S * (size_t)d, sizeof *sum);
    es_tf_seg *segs = es_calloc((size_t)S, sizeof *segs);
    float *res = es_calloc((size_t)n * (size_t)d + 1, sizeof *res); /* written to out on success */
    if (!toks || !skip || !sum || !segs || !res) {
        free(toks), free(skip), free(sum), free(segs), free(res);
        return ES_ERR_NOMEM;
    }
    embed_acc acc = {p.hook, p.layer, d, skip, sum};
    es_hook_fn saved_fn = ctx->hook;
    void *saved_user = ctx->hook_user;
    es_set_hook(ctx, embed_hook, &acc);
    es_status st = ES_OK;
    for (int first = 0; first < n && st == ES_OK; first += S) {
        int m = ES_MIN(S, n - first);
        for (int t = 0; t < m && st == ES_OK; t++) {
            const char *text = texts[first + t];
            int nt = 0;
            /* at most 64 bytes per token are looked at */
            size_t len = strlen(text), cap = (size_t)max_tok * 64;
            st = es_tokenize_alloc(vocab, text, len < cap ? len : cap, true, false, &toks[t], &nt);
            if (st != ES_OK) {
                st = es_error_prefix(st, "embed: text %d", first + t);
                break;
            }
            if (nt > max_tok) nt = max_tok;
            skip[t] = nt > 0 && toks[t][0] == bos ? 1 : 0;
            segs[t] = (es_tf_seg){toks[t], nt > skip[t] ? nt : 0, t, 0, 0, 0};
        }
        memset(sum, 0, (size_t)S * (size_t)d * sizeof *sum);
        if (st == ES_OK) st = es_kv_clear(ctx, -1);
        if (st == ES_OK) st = es_tf_decode(ctx, segs, m, 1, NULL, NULL);
        for (int t = 0; t < m && st == ES_OK; t++) {
            int cnt = segs[t].len - skip[t];
            float *o = res + (size_t)(first + t) * (size_t)d;
            const double *s = sum + (size_t)t * (size_t)d;
            for (int i = 0; i < d; i++)
                o[i] = cnt > 0 ? (float)(s[i] / cnt) : 0.0f;
        }
        for (int t = 0; t < S; t++)
            free(toks[t]), toks[t] = NULL;
    }
    es_set_hook(ctx, saved_fn, saved_user);
    if (st == ES_OK && n > 0) memcpy(out, res, (size_t)n * (size_t)d * sizeof *out);
    free(toks), free(skip), free(sum), free(segs), free(res);
    return st;
}

/* ------------------------------------------------------------------------------------ */
/* Perplexity                                                                            */
/* ------------------------------------------------------------------------------------ */

typedef struct ppl_run {
    const int32_t *const *seq; /* [m] prompt + response tokens of each segment */
    int n_vocab;
    double *nll; /* [m] summed NLL */
} ppl_run;

static es_status on_ppl_logits(void *user, int seg, int k, const float *logits) {
    ppl_run *r = user;
    double m = -INFINITY;
    for (int i = 0; i < r->n_vocab; i++)
        if (logits[i] > m) m = logits[i];
    double s = 0;
    for (int i = 0; i < r->n_vocab; i++)
        s += exp((double)logits[i] - m);
    r->nll[seg] += m + log(s) - (double)logits[r->seq[seg][k + 1]];
    return ES_OK;
}

es_status es_score_ppl(es_context *ctx, const es_ppl_pair *pairs, int n, double *mean_nll,
                       double *ppl) {
    if (!ctx || (!pairs && n > 0) || (!mean_nll && n > 0) || n < 0)
        return es_error(ES_ERR_INVALID_ARG, "ppl: NULL argument or negative count");
    es_model_info mi;
    es_model_get_info(ctx->model, &mi);
    for (int i = 0; i < n; i++) {
        const es_ppl_pair *q = &pairs[i];
        if (q->n_prompt < 1 || !q->prompt || q->n_response < 0 ||
            (q->n_response > 0 && !q->response))
            return es_error(ES_ERR_INVALID_ARG,
                            "ppl: pair %d: needs >= 1 prompt token and a response "
                            "(%d prompt, %d response tokens)",
                            i, q->n_prompt, q->n_response);
        if (q->n_prompt > ctx->params.n_ctx - q->n_response)
            return es_error(ES_ERR_RANGE, "ppl: pair %d has %d + %d tokens; the context holds %d",
                            i, q->n_prompt, q->n_response, ctx->params.n_ctx);
        for (int k = 0; k < q->n_prompt + q->n_response; k++) {
            int32_t t = k < q->n_prompt ? q->prompt[k] : q->response[k - q->n_prompt];
            if (t < 0 || t >= mi.n_vocab)
                return es_error(ES_ERR_INVALID_ARG, "ppl: pair %d: token %d at %d outside [0, %d)",
                                i, t, k, mi.n_vocab);
        }
    }
    const int S = ctx->params.n_seq_max;
    int32_t **seq = es_calloc((size_t)S, sizeof *seq);
    double *nll = es_calloc((size_t)S, sizeof *nll);
    double *res = es_calloc((size_t)n + 1, sizeof *res);
    es_tf_seg *segs = es_calloc((size_t)S, sizeof *segs);
    if (!seq || !nll || !res || !segs) {
        free(seq), free(nll), free(res), free(segs);
        return ES_ERR_NOMEM;
    }
    ppl_run run = {(const int32_t *const *)seq, mi.n_vocab, nll};
    const int rows = es_tf_default_logit_rows(ctx);
    es_status st = ES_OK;
    for (int first = 0; first < n && st == ES_OK; first += S) {
        int m = ES_MIN(S, n - first);
        for (int t = 0; t < m; t++) {
            const es_ppl_pair *q = &pairs[first + t];
            nll[t] = 0;
            if (q->n_response == 0) {
                segs[t] = (es_tf_seg){NULL, 0, t, 0, 0, 0};
                continue;
            }
            int len = q->n_prompt + q->n_response;
            seq[t] = malloc((size_t)len * sizeof *seq[t]);
            if (!seq[t]) {
                st = es_error(ES_ERR_NOMEM, "ppl: out of memory for %d tokens", len);
                break;
            }
            memcpy(seq[t], q->prompt, (size_t)q->n_prompt * sizeof *seq[t]);
            memcpy(seq[t] + q->n_prompt, q->response, (size_t)q->n_response * sizeof *seq[t]);
            /* logits of tokens n_prompt - 1 .. len - 2 predict the response tokens */
            segs[t] = (es_tf_seg){seq[t], len, t, 0, q->n_prompt - 1, len - 1};
        }
        if (st == ES_OK) st = es_kv_clear(ctx, -1);
        if (st == ES_OK) st = es_tf_decode(ctx, segs, m, rows, on_ppl_logits, &run);
        for (int t = 0; t < m && st == ES_OK; t++) {
            int nr = pairs[first + t].n_response;
            res[first + t] = nr > 0 ? nll[t] / nr : NAN;
        }
        for (int t = 0; t < S; t++)
            free(seq[t]), seq[t] = NULL;
    }
    if (st == ES_OK) {
        for (int i = 0; i < n; i++) {
            mean_nll[i] = res[i];
            if (ppl) ppl[i] = exp(res[i]);
        }
    }
    free(seq), free(nll), free(res), free(segs);
    return st;
}

/* ------------------------------------------------------------------------------------ */
/* Labelled sentences and validation                                                     */
/* ------------------------------------------------------------------------------------ */

void es_labelled_clear(es_labelled *set) {
    if (!set) return;
    for (int i = 0; set->texts && i < set->n; i++)
        free(set->texts[i]);
    free(set->texts);
    free(set->labels);
    memset(set, 0, sizeof *set);
}

es_status es_labelled_parse(const char *data, size_t len, const char *name, int max_per_class,
                            es_labelled *out) {
    if ((!data && len > 0) || !out || max_per_class < 0)
        return es_error(ES_ERR_INVALID_ARG, "labelled: bad arguments");
    if (!name) name = "labelled";
    es_labelled set = {0, NULL, NULL};
    int cap = 0, per_class[ES_EMO_N_LABELS] = {0};
    es_status st = ES_OK;
    size_t at = 0;
    for (int line = 1; at < len && st == ES_OK; line++) {
        const char *s = data + at;
        const char *nl = memchr(s, '\n', len - at);
        size_t n = nl ? (size_t)(nl - s) : len - at;
        at += n + (nl ? 1 : 0);
        if (n > 0 && s[n - 1] == '\r') n--;
        if (n == 0 || s[0] == '#') continue;
        const char *tab = memchr(s, '\t', n);
        if (!tab) {
            st = es_error(ES_ERR_FORMAT, "%s:%d: expected label<TAB>text", name, line);
            break;
        }
        char label_name[32];
        size_t ll = (size_t)(tab - s);
        int label = -1;
        if (ll < sizeof label_name) {
            memcpy(label_name, s, ll);
            label_name[ll] = '\0';
            for (int l = 0; l < ES_EMO_N_LABELS; l++)
                if (!strcmp(label_name, es_emotion_name((es_emotion)l))) label = l;
        }
        if (label < 0) {
            st = es_error(ES_ERR_FORMAT, "%s:%d: unknown label '%.*s'", name, line,
                          (int)ES_MIN(ll, 32), s);
            break;
        }
        if (max_per_class > 0 && per_class[label] >= max_per_class) continue;
        if (set.n == INT32_MAX / 2) {
            st = es_error(ES_ERR_FORMAT, "%s: too many lines", name);
            break;
        }
        if (set.n == cap) {
            int nc = cap ? cap * 2 : 64;
            char **nt = realloc(set.texts, (size_t)nc * sizeof *nt);
            if (nt) set.texts = nt;
            es_emotion *nlab = nt ? realloc(set.labels, (size_t)nc * sizeof *nlab) : NULL;
            if (nlab) set.labels = nlab;
            if (!nt || !nlab) {
                st = es_error(ES_ERR_NOMEM, "%s: out of memory", name);
                break;
            }
            cap = nc;
        }
        size_t tl = n - ll - 1;
        char *text = malloc(tl + 1);
        if (!text) {
            st = es_error(ES_ERR_NOMEM, "%s: out of memory", name);
            break;
        }
        memcpy(text, tab + 1, tl);
        text[tl] = '\0';
        set.texts[set.n] = text;
        set.labels[set.n] = (es_emotion)label;
        set.n++;
        per_class[label]++;
    }
    if (st != ES_OK) {
        es_labelled_clear(&set);
        return st;
    }
    *out = set;
    return ES_OK;
}

es_status es_labelled_load(const char *path, int max_per_class, es_labelled *out) {
    if (!path || !out) return es_error(ES_ERR_INVALID_ARG, "labelled: NULL argument");
    char *data = NULL;
    size_t len = 0;
    es_status st = es_file_read(path, MAX_TSV_BYTES, &data, &len);
    if (st != ES_OK) return es_error_prefix(st, "labelled");
    st = es_labelled_parse(data, len, path, max_per_class, out);
    free(data);
    return st;
}

es_status es_validate_scorer(es_label_scorer_fn fn, void *user, const es_labelled *set,
                             es_validation *out) {
    if (!fn || !set || !out || set->n < 0 || (set->n > 0 && (!set->texts || !set->labels)))
        return es_error(ES_ERR_INVALID_ARG, "validate: bad arguments");
    for (int i = 0; i < set->n; i++)
        if ((int)set->labels[i] < 0 || (int)set->labels[i] >= ES_EMO_N_LABELS || !set->texts[i])
            return es_error(ES_ERR_INVALID_ARG, "validate: sentence %d has label %d or no text", i,
                            (int)set->labels[i]);
    double *probs = es_calloc((size_t)set->n * ES_EMO_N_LABELS + 1, sizeof *probs);
    if (!probs) return ES_ERR_NOMEM;
    es_status st = fn(user, (const char *const *)set->texts, set->n, probs);
    if (st != ES_OK) {
        free(probs);
        return st;
    }
    es_validation v;
    memset(&v, 0, sizeof v);
    v.n = set->n;
    int correct = 0;
    for (int i = 0; i < set->n; i++) {
        const double *p = probs + (size_t)i * ES_EMO_N_LABELS;
        int best = 0;
        for (int l = 1; l < ES_EMO_N_LABELS; l++)
            if (p[l] > p[best]) best = l;
        v.confusion[set->labels[i]][best]++;
        correct += best == (int)set->labels[i];
    }
    v.accuracy = set->n > 0 ? (double)correct / set->n : NAN;
    double f1_sum = 0;
    int n_f1 = 0;
    for (int l = 0; l < ES_EMO_N_LABELS; l++) {
        int tp = v.confusion[l][l], fp = 0, fn_ = 0;
        for (int k = 0; k < ES_EMO_N_LABELS; k++) {
            if (k == l) continue;
            fp += v.confusion[k][l];
            fn_ += v.confusion[l][k];
        }
        int den = 2 * tp + fp + fn_;
        v.f1[l] = den > 0 ? 2.0 * tp / den : NAN;
        if (den > 0) f1_sum += v.f1[l], n_f1++;
    }
    v.macro_f1 = n_f1 > 0 ? f1_sum / n_f1 : NAN;
    free(probs);
    *out = v;
    return ES_OK;
}

es_status es_validate_tsv(const char *path, int max_per_class, es_label_scorer_fn fn, void *user,
                          es_validation *out) {
    es_labelled set;
    es_status st = es_labelled_load(path, max_per_class, &set);
    if (st != ES_OK) return st;
    st = es_validate_scorer(fn, user, &set, out);
    es_labelled_clear(&set);
    return st;
}

es_status es_lexicon_label_probs(void *lexicon, const char *const *texts, int n, double *probs) {
    if (!lexicon || (!texts && n > 0) || (!probs && n > 0) || n < 0)
        return es_error(ES_ERR_INVALID_ARG, "lexicon: NULL argument or negative count");
    for (int i = 0; i < n; i++) {
        if (!texts[i]) return es_error(ES_ERR_INVALID_ARG, "lexicon: text %d is NULL", i);
        es_lexicon_score sc;
        es_status st = es_lexicon_score_text(lexicon, texts[i], strlen(texts[i]), &sc);
        if (st != ES_OK) return st;
        es_scores_from_lexicon(&sc, ES_EVAL_LEXICON_PRIOR, probs + (size_t)i * ES_EMO_N_LABELS);
    }
    return ES_OK;
}
