/*
 * encoder.c — encoder families: binding the weights (es_encoder_bind) and the forward
 * pass over a padded batch (es_encoder_forward), in f32 with weights read in place.
 * The math is in encoder.h. The real tokens of all rows are packed into one matrix
 * x[N][n_embd], so padding costs nothing in the matrix products; attention runs per
 * (row, head) over the keys of that row only.
 */
#include "encoder.h"

#include "matmul.h"
#include "types.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- binding ---------------------------------------------------------------------- */

/* Rows of tensor `name` (ne[1]) if it exists as a 2-D tensor of n_embd columns, else 0. */
static int64_t tensor_rows(const es_model *m, const char *name) {
    const es_gguf_tensor *t = es_gguf_find_tensor(m->gguf, name);
    if (!t || t->ne[0] != m->cfg.n_embd) return 0;
    return t->ne[1];
}

static es_status bind_table(es_model *m, const char *name, bool required, int64_t max_rows,
                            es_matrix *out) {
    int64_t rows = tensor_rows(m, name);
    if (rows < 1 || rows > max_rows) {
        memset(out, 0, sizeof *out);
        if (!es_gguf_find_tensor(m->gguf, name) && !required) return ES_OK;
        if (!es_gguf_find_tensor(m->gguf, name))
            return es_error(ES_ERR_FORMAT, "model: tensor %s is missing", name);
        return es_error(ES_ERR_FORMAT, "model: tensor %s is not [%d, 1..%lld]", name, m->cfg.n_embd,
                        (long long)max_rows);
    }
    return es_model_bind_matrix(m, name, m->cfg.n_embd, rows, true, out);
}

static es_status bind_encoder_layer(es_model *m, int il, es_encoder_layer *L) {
    const int d = m->cfg.n_embd, f = m->cfg.n_ff;
    char name[96];
    es_status st;
#define MAT(field, fmt, n_in, n_out)                                                               \
    do {                                                                                           \
        snprintf(name, sizeof name, "blk.%d." fmt ".weight", il);                                  \
        if ((st = es_model_bind_matrix(m, name, n_in, n_out, true, &L->field))) return st;         \
    } while (0)
#define VEC(field, fmt, suffix, n, req)                                                            \
    do {                                                                                           \
        snprintf(name, sizeof name, "blk.%d." fmt "." suffix, il);                                 \
        if ((st = es_model_bind_vector(m, name, n, req, &L->field))) return st;                    \
    } while (0)
    MAT(wq, "attn_q", d, d);
    VEC(bq, "attn_q", "bias", d, false);
    MAT(wk, "attn_k", d, d);
    VEC(bk, "attn_k", "bias", d, false);
    MAT(wv, "attn_v", d, d);
    VEC(bv, "attn_v", "bias", d, false);
    MAT(wo, "attn_output", d, d);
    VEC(bo, "attn_output", "bias", d, false);
    VEC(attn_ln_w, "attn_output_norm", "weight", d, true);
    VEC(attn_ln_b, "attn_output_norm", "bias", d, false);
    MAT(w_up, "ffn_up", d, f);
    VEC(b_up, "ffn_up", "bias", f, false);
    MAT(w_down, "ffn_down", f, d);
    VEC(b_down, "ffn_down", "bias", d, false);
    VEC(out_ln_w, "layer_output_norm", "weight", d, true);
    VEC(out_ln_b, "layer_output_norm", "bias", d, false);
#undef MAT
#undef VEC
    return ES_OK;
}

/* bert.classifier.output_labels (string array in id order), else "LABEL_i". */
static es_status read_labels(es_model *m, es_encoder_weights *w) {
    char key[160];
    snprintf(key, sizeof key, "%s.classifier.output_labels", m->arch_name);
    es_gguf_vtype et;
    uint64_t n = 0;
    es_status st = es_gguf_get_arr(m->gguf, key, &et, &n);
    if (st != ES_OK && st != ES_ERR_NOT_FOUND) return es_error_prefix(st, "model");
    bool have = st == ES_OK;
    if (have && et != ES_GGUF_STRING)
        return es_error(ES_ERR_FORMAT, "model: %s is not a string array", key);
    if (have && n != (uint64_t)w->n_labels)
        return es_error(ES_ERR_FORMAT, "model: %s has %llu labels but cls.output has %d rows", key,
                        (unsigned long long)n, w->n_labels);
    if (w->n_labels == 0) return ES_OK;
    w->labels = es_calloc((size_t)w->n_labels, sizeof *w->labels);
    if (!w->labels) return ES_ERR_NOMEM;
    for (int i = 0; i < w->n_labels; i++) {
        char buf[32];
        es_gguf_str s = {0};
        if (have) s = es_gguf_arr_str(m->gguf, key, (uint64_t)i);
        if (!have || !s.ptr) {
            snprintf(buf, sizeof buf, "LABEL_%d", i);
            s.ptr = buf;
            s.len = strlen(buf);
        }
        if (s.len > 4096)
            return es_error(ES_ERR_FORMAT, "model: label %d of %s is longer than 4096 bytes", i,
                            key);
        w->labels[i] = malloc((size_t)s.len + 1);
        if (!w->labels[i]) return ES_ERR_NOMEM;
        memcpy(w->labels[i], s.ptr, (size_t)s.len);
        w->labels[i][s.len] = '\0';
    }
    return ES_OK;
}

es_status es_encoder_bind(es_model *m) {
    es_config *c = &m->cfg;
    es_status st;
    if (c->n_embd % c->n_head != 0 || c->n_q != c->n_embd || c->n_v != c->n_embd ||
        c->n_k != c->n_embd)
        return es_error(ES_ERR_FORMAT, "model: encoder width %d is not %d heads of %d", c->n_embd,
                        c->n_head, c->head_dim);
    es_encoder_weights *w = es_calloc(1, sizeof *w);
    if (!w) return ES_ERR_NOMEM;
    m->enc = w;
    char key[160];
    snprintf(key, sizeof key, "%s.attention.layer_norm_epsilon", m->arch_name);
    float eps = 1e-12f;
    st = es_gguf_get_f32(m->gguf, key, &eps);
    if (st != ES_OK && st != ES_ERR_NOT_FOUND) return es_error_prefix(st, "model");
    if (!(eps >= 0.0f) || !isfinite(eps))
        return es_error(ES_ERR_FORMAT, "model: %s is not a finite eps >= 0", key);
    w->ln_eps = eps;
    c->norm_eps = eps;

    if ((st = bind_table(m, "token_embd.weight", true, INT32_MAX, &w->token_embd))) return st;
    c->n_vocab = (int)w->token_embd.n_out;
    if ((st = bind_table(m, "position_embd.weight", true, 1 << 20, &w->pos_embd))) return st;
    w->n_pos = (int)w->pos_embd.n_out;
    if ((st = bind_table(m, "token_types.weight", false, 1 << 16, &w->type_embd))) return st;
    w->n_types = (int)w->type_embd.n_out;
    if ((st = es_model_bind_vector(m, "token_embd_norm.weight", c->n_embd, true, &w->embd_ln_w)))
        return st;
    if ((st = es_model_bind_vector(m, "token_embd_norm.bias", c->n_embd, false, &w->embd_ln_b)))
        return st;
    w->layers = es_calloc((size_t)c->n_layer, sizeof *w->layers);
    if (!w->layers) return ES_ERR_NOMEM;
    for (int il = 0; il < c->n_layer; il++)
        if ((st = bind_encoder_layer(m, il, &w->layers[il]))) return st;

    /* head: the pooler dense (cls) is optional, cls.output gives the labels */
    if ((st = es_model_bind_matrix(m, "cls.weight", c->n_embd, c->n_embd, false, &w->cls)))
        return st;
    if (w->cls.data && (st = es_model_bind_vector(m, "cls.bias", c->n_embd, false, &w->cls_b)))
        return st;
    int64_t n_labels = tensor_rows(m, "cls.output.weight");
    if (es_gguf_find_tensor(m->gguf, "cls.output.weight") && (n_labels < 1 || n_labels > 65536))
        return es_error(ES_ERR_FORMAT, "model: tensor cls.output.weight is not [%d, 1..65536]",
                        c->n_embd);
    if (n_labels > 0) {
        if ((st = es_model_bind_matrix(m, "cls.output.weight", c->n_embd, n_labels, true,
                                       &w->cls_out)))
            return st;
        if ((st = es_model_bind_vector(m, "cls.output.bias", n_labels, false, &w->cls_out_b)))
            return st;
        w->n_labels = (int)n_labels;
    }
    if ((st = read_labels(m, w))) return st;
    if (c->n_ctx_train > w->n_pos) c->n_ctx_train = w->n_pos;
    return ES_OK;
}

void es_encoder_weights_free(es_encoder_weights *w) {
    if (!w) return;
    for (int i = 0; w->labels && i < w->n_labels; i++)
        free(w->labels[i]);
    free(w->labels);
    free(w->layers);
    free(w);
}

void es_encoder_scratch_free(es_encoder_scratch *s) {
    if (!s) return;
    es_free_aligned(s->mem);
    s->mem = NULL;
    s->size = 0;
}

/* ---- operations -------------------------------------------------------------------- */

/* Rows [r0, r1) of n rows for thread ith of nth. */
static void split_rows(int64_t n, int ith, int nth, int64_t *r0, int64_t *r1) {
    int64_t per = (n + nth - 1) / nth;
    *r0 = ES_MIN(n, per * ith);
    *r1 = ES_MIN(n, *r0 + per);
}

/* Row `row` of a table as floats. */
static void table_row(const es_matrix *t, int64_t row, float *out) {
    const size_t rs = es_row_size(t->type, t->n_in);
    es_type_get(t->type)->to_float((const char *)t->data + (size_t)row * rs, out, t->n_in);
}

/* out = LayerNorm(x (+ bias) (+ res)) · w + b, per row; the statistics in double. */
typedef struct {
    float *out;         /* [n_rows][n] (may equal x) */
    float *x;           /* [n_rows][n], overwritten with the sum when bias/res are given */
    const float *bias;  /* [n] added first, or NULL */
    const float *res;   /* [n_rows][n] added first, or NULL */
    const float *w, *b; /* [n]; b may be NULL */
    int64_t n_rows;
    int n;
    float eps;
} ln_args;

static void layernorm_task(void *p, int ith, int nth) {
    const ln_args *a = p;
    int64_t r0, r1;
    split_rows(a->n_rows, ith, nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        float *x = a->x + r * a->n, *out = a->out + r * a->n;
        if (a->bias)
            for (int i = 0; i < a->n; i++)
                x[i] += a->bias[i];
        if (a->res)
            for (int i = 0; i < a->n; i++)
                x[i] += a->res[r * a->n + i];
        double sum = 0.0;
        for (int i = 0; i < a->n; i++)
            sum += x[i];
        const double mean = sum / a->n;
        double var = 0.0;
        for (int i = 0; i < a->n; i++)
            var += (x[i] - mean) * (x[i] - mean);
        const double inv = 1.0 / sqrt(var / a->n + (double)a->eps);
        for (int i = 0; i < a->n; i++) {
            const float y = (float)((x[i] - mean) * inv) * a->w[i];
            out[i] = a->b ? y + a->b[i] : y;
        }
    }
}

/* y = gelu(y + b), exact GELU 0.5·y·(1 + erf(y/√2)). */
typedef struct {
    float *y;       /* [n_rows][n] */
    const float *b; /* [n] or NULL */
    int64_t n_rows;
    int n;
} gelu_args;

static void gelu_task(void *p, int ith, int nth) {
    const gelu_args *a = p;
    int64_t r0, r1;
    split_rows(a->n_rows, ith, nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        float *y = a->y + r * a->n;
        for (int i = 0; i < a->n; i++) {
            const float v = a->b ? y[i] + a->b[i] : y[i];
            y[i] = 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
        }
    }
}

static void add_bias(float *y, const float *b, int64_t n_rows, int n) {
    if (!b) return;
    for (int64_t r = 0; r < n_rows; r++)
        for (int i = 0; i < n; i++)
            y[r * n + i] += b[i];
}

/* Bidirectional attention within each sequence: out = softmax(scale·q·kᵀ)·v per head. */
typedef struct {
    const float *q, *k, *v; /* [N][d] */
    float *out;             /* [N][d] */
    const int *seq_off;     /* [n_seq + 1] first packed row of each sequence */
    float *scores;          /* [nth][max_len][max_len] */
    int n_seq, n_head, head_dim, d, max_len;
    float scale;
} attn_args;

static void attention_task(void *p, int ith, int nth) {
    const attn_args *a = p;
    int64_t j0, j1;
    split_rows((int64_t)a->n_seq * a->n_head, ith, nth, &j0, &j1);
    float *S = a->scores + (size_t)ith * a->max_len * a->max_len;
    for (int64_t j = j0; j < j1; j++) {
        const int s = (int)(j / a->n_head), h = (int)(j % a->n_head);
        const int off = a->seq_off[s], len = a->seq_off[s + 1] - off;
        const size_t base = (size_t)off * a->d + (size_t)h * a->head_dim;
        es_gemm_nt(len, len, a->head_dim, a->q + base, a->d, a->k + base, a->d, S, len, false);
        for (int i = 0; i < len; i++) {
            float *row = S + (size_t)i * len;
            float mx = -INFINITY;
            for (int t = 0; t < len; t++) {
                row[t] *= a->scale;
                mx = row[t] > mx ? row[t] : mx;
            }
            double sum = 0.0;
            for (int t = 0; t < len; t++) {
                row[t] = expf(row[t] - mx);
                sum += row[t];
            }
            const float inv = (float)(1.0 / sum);
            for (int t = 0; t < len; t++)
                row[t] *= inv;
        }
        es_gemm_nn(len, a->head_dim, len, S, len, a->v + base, a->d, a->out + base, a->d, false);
    }
}

static void run(es_threadpool *tp, es_task_fn fn, void *arg, int64_t work) {
    if (work < 8192 || !tp)
        fn(arg, 0, 1);
    else
        es_threadpool_run(tp, fn, arg);
}

/* ---- forward ------------------------------------------------------------------------ */

/* Carves aligned pieces out of one block: first a sizing pass (base NULL), then the real one. */
typedef struct {
    char *base;
    size_t used;
} carver;

static void *carve(carver *c, size_t bytes) {
    void *p = c->base ? c->base + c->used : NULL;
    c->used += (bytes + 63) & ~(size_t)63;
    return p;
}

static size_t mat_ws(const es_matrix *w, int64_t n_tok) {
    return w->data ? es_matmul_wsize(w->type, w->n_in, n_tok) : 0;
}

/* Copies the packed rows x[N][d] to the padded dst[n_seq][T][d] (pad rows zero). */
static void scatter(float *dst, const float *x, const int *row_of, int64_t N, int n_seq, int T,
                    int d) {
    if (!dst) return;
    memset(dst, 0, (size_t)n_seq * T * d * sizeof *dst);
    for (int64_t r = 0; r < N; r++)
        memcpy(dst + (size_t)row_of[r] * d, x + (size_t)r * d, (size_t)d * sizeof *x);
}

es_status es_encoder_forward(const es_model *m, es_threadpool *tp, es_encoder_scratch *scratch,
                             const int32_t *tokens, const int32_t *types, const int32_t *mask,
                             int n_seq, int T, const es_encoder_out *out) {
    const es_encoder_weights *w = m ? m->enc : NULL;
    if (!w || !scratch || !tokens || !out)
        return es_error(ES_ERR_INVALID_ARG,
                        "encoder: model (an encoder), scratch, tokens and out are required");
    if (n_seq < 1 || T < 1 || (int64_t)n_seq * T > (1 << 24))
        return es_error(ES_ERR_INVALID_ARG,
                        "encoder: %d rows of %d tokens (need >= 1, at most 2^24 tokens)", n_seq, T);
    const es_config *c = &m->cfg;
    const int d = c->n_embd, f = c->n_ff, nh = c->n_head, hd = c->head_dim;

    /* check the batch and count the real tokens */
    int64_t N = 0;
    int max_len = 0;
    for (int s = 0; s < n_seq; s++) {
        int len = 0;
        for (int t = 0; t < T; t++) {
            const size_t i = (size_t)s * T + t;
            const int32_t mk = mask ? mask[i] : 1;
            if (mk != 0 && mk != 1)
                return es_error(ES_ERR_INVALID_ARG, "encoder: mask[%d][%d] = %d (must be 0 or 1)",
                                s, t, mk);
            if (!mk) continue;
            if (tokens[i] < 0 || tokens[i] >= c->n_vocab)
                return es_error(ES_ERR_INVALID_ARG,
                                "encoder: token %d at [%d][%d] is outside the vocabulary of %d",
                                tokens[i], s, t, c->n_vocab);
            const int32_t ty = types ? types[i] : 0;
            if (ty < 0 || ty >= ES_MAX(w->n_types, 1))
                return es_error(ES_ERR_INVALID_ARG,
                                "encoder: token type %d at [%d][%d] (the model has %d)", ty, s, t,
                                ES_MAX(w->n_types, 1));
            len++;
        }
        if (len < 1) return es_error(ES_ERR_INVALID_ARG, "encoder: row %d has no real token", s);
        if (len > w->n_pos)
            return es_error(
                ES_ERR_RANGE,
                "encoder: row %d has %d tokens, more than the %d positions of the model", s, len,
                w->n_pos);
        N += len;
        max_len = ES_MAX(max_len, len);
    }

    /* scratch */
    const int nth = tp ? es_threadpool_size(tp) : 1;
    size_t ws = 0;
    for (int il = 0; il < c->n_layer; il++) {
        const es_encoder_layer *L = &w->layers[il];
        const es_matrix *all[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_up, &L->w_down};
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
            ws = ES_MAX(ws, mat_ws(all[i], N));
    }
    ws = ES_MAX(ws, ES_MAX(mat_ws(&w->cls, n_seq), mat_ws(&w->cls_out, n_seq)));
    const size_t fd = (size_t)N * d * sizeof(float);
    carver cv = {0};
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            if (cv.used > scratch->size) {
                es_free_aligned(scratch->mem);
                scratch->size = 0;
                scratch->mem = es_alloc_aligned(cv.used);
                if (!scratch->mem)
                    return es_error(ES_ERR_NOMEM, "encoder: out of memory for %zu bytes of scratch",
                                    cv.used);
                scratch->size = cv.used;
            }
            cv = (carver){.base = scratch->mem};
        }
        carve(&cv, fd * 6 + (size_t)N * f * sizeof(float));
        carve(&cv, (size_t)nth * max_len * max_len * sizeof(float));
        carve(&cv, (size_t)n_seq * (2 * (size_t)d + ES_MAX(w->n_labels, 1)) * sizeof(float) +
                       d * sizeof(float));
        carve(&cv, ((size_t)N * 4 + n_seq + 1) * sizeof(int));
        carve(&cv, ws);
    }
    cv.used = 0;
    float *x = carve(&cv, fd * 6 + (size_t)N * f * sizeof(float));
    float *q = x + (size_t)N * d, *k = q + (size_t)N * d, *v = k + (size_t)N * d;
    float *att = v + (size_t)N * d, *tmp = att + (size_t)N * d, *ff = tmp + (size_t)N * d;
    float *scores = carve(&cv, (size_t)nth * max_len * max_len * sizeof(float));
    float *h0 =
        carve(&cv, (size_t)n_seq * (2 * (size_t)d + ES_MAX(w->n_labels, 1)) * sizeof(float) +
                       d * sizeof(float));
    float *pooled = h0 + (size_t)n_seq * d, *logits = pooled + (size_t)n_seq * d;
    float *rowbuf = logits + (size_t)n_seq * ES_MAX(w->n_labels, 1);
    int *tok = carve(&cv, ((size_t)N * 4 + n_seq + 1) * sizeof(int));
    int *typ = tok + N, *pos = typ + N, *row_of = pos + N, *seq_off = row_of + N;
    void *wsp = carve(&cv, ws);

    /* pack the real tokens: row r of x is token (s, t) at position pos[r] */
    int64_t r = 0;
    for (int s = 0; s < n_seq; s++) {
        seq_off[s] = (int)r;
        int p = 0;
        for (int t = 0; t < T; t++) {
            const size_t i = (size_t)s * T + t;
            if (mask && !mask[i]) continue;
            tok[r] = tokens[i];
            typ[r] = types ? types[i] : 0;
            pos[r] = p++;
            row_of[r] = (int)i;
            r++;
        }
    }
    seq_off[n_seq] = (int)N;

    /* embeddings */
    for (r = 0; r < N; r++) {
        float *xr = x + (size_t)r * d;
        table_row(&w->token_embd, tok[r], xr);
        table_row(&w->pos_embd, pos[r], rowbuf);
        for (int i = 0; i < d; i++)
            xr[i] += rowbuf[i];
        if (w->n_types > 0) {
            table_row(&w->type_embd, typ[r], rowbuf);
            for (int i = 0; i < d; i++)
                xr[i] += rowbuf[i];
        }
    }
    ln_args ln = {x, x, NULL, NULL, w->embd_ln_w, w->embd_ln_b, N, d, w->ln_eps};
    run(tp, layernorm_task, &ln, N * d);
    scatter(out->emb, x, row_of, N, n_seq, T, d);

    const size_t layer_stride = (size_t)n_seq * T * d;
    for (int il = 0; il < c->n_layer; il++) {
        const es_encoder_layer *L = &w->layers[il];
        /* attention */
        const es_matmul_part qkv[3] = {{L->wq.type, L->wq.data, d, q},
                                       {L->wk.type, L->wk.data, d, k},
                                       {L->wv.type, L->wv.data, d, v}};
        es_matmul_parts(tp, qkv, 3, d, x, N, wsp, false, false);
        add_bias(q, L->bq, N, d);
        add_bias(k, L->bk, N, d);
        add_bias(v, L->bv, N, d);
        attn_args aa = {q, k, v, att, seq_off, scores, n_seq, nh, hd, d, max_len, c->attn_scale};
        run(tp, attention_task, &aa, (int64_t)max_len * max_len * hd * n_seq * nh);
        es_matmul(tp, L->wo.type, L->wo.data, d, d, att, N, tmp, wsp);
        /* x = LayerNorm(x + o + bo) */
        ln = (ln_args){x, tmp, L->bo, x, L->attn_ln_w, L->attn_ln_b, N, d, w->ln_eps};
        run(tp, layernorm_task, &ln, N * d);
        if (out->attn_ln) scatter(out->attn_ln + il * layer_stride, x, row_of, N, n_seq, T, d);
        /* MLP */
        es_matmul(tp, L->w_up.type, L->w_up.data, f, d, x, N, ff, wsp);
        gelu_args ga = {ff, L->b_up, N, f};
        run(tp, gelu_task, &ga, N * f);
        es_matmul(tp, L->w_down.type, L->w_down.data, d, f, ff, N, tmp, wsp);
        ln = (ln_args){x, tmp, L->b_down, x, L->out_ln_w, L->out_ln_b, N, d, w->ln_eps};
        run(tp, layernorm_task, &ln, N * d);
        if (out->hidden) scatter(out->hidden + il * layer_stride, x, row_of, N, n_seq, T, d);
    }

    /* head on the first real token of each row */
    for (int s = 0; s < n_seq; s++)
        memcpy(h0 + (size_t)s * d, x + (size_t)seq_off[s] * d, (size_t)d * sizeof *x);
    if (w->cls.data) {
        es_matmul(tp, w->cls.type, w->cls.data, d, d, h0, n_seq, pooled, wsp);
        add_bias(pooled, w->cls_b, n_seq, d);
        for (size_t i = 0; i < (size_t)n_seq * d; i++)
            pooled[i] = tanhf(pooled[i]);
    } else {
        memcpy(pooled, h0, (size_t)n_seq * d * sizeof *pooled);
    }
    if (out->pooled) memcpy(out->pooled, pooled, (size_t)n_seq * d * sizeof *pooled);
    if (out->logits && w->n_labels > 0) {
        es_matmul(tp, w->cls_out.type, w->cls_out.data, w->n_labels, d, pooled, n_seq, logits, wsp);
        add_bias(logits, w->cls_out_b, n_seq, w->n_labels);
        memcpy(out->logits, logits, (size_t)n_seq * w->n_labels * sizeof *logits);
    }
    return ES_OK;
}
