/*
 * batch.c — checking an es_batch against its context before es_decode runs it: token
 * ids, sequence ids and positions in range and consecutive per sequence, the batch
 * within n_batch; then the logits buffer grown for the rows that ask for logits.
 */
#include "batch.h"

/* Checks the batch and fills rs.pos, rs.seq, rs.first_pos, rs.out_rows; *n_out gets the
 * number of tokens that want logits. Changes nothing else. */
static es_status check_batch(es_context *ctx, const es_batch *b, int *n_out) {
    const es_config *c = &ctx->model->cfg;
    es_run_state *rs = &ctx->rs;
    const int n_seq = ctx->params.n_seq_max, n_ctx = ctx->params.n_ctx;
    if (!b) return es_error(ES_ERR_INVALID_ARG, "decode: NULL batch");
    if (b->n_tokens < 1)
        return es_error(ES_ERR_INVALID_ARG, "decode: batch of %d tokens", b->n_tokens);
    if (b->n_tokens > ctx->params.n_batch)
        return es_error(ES_ERR_RANGE, "decode: batch of %d tokens exceeds n_batch %d", b->n_tokens,
                        ctx->params.n_batch);
    if (!b->token) return es_error(ES_ERR_INVALID_ARG, "decode: batch has no token array");

    /* first_pos doubles as "next expected position" while scanning */
    int32_t *next = rs->first_pos;
    for (int s = 0; s < n_seq; s++)
        next[s] = -1;
    for (int i = 0; i < b->n_tokens; i++) {
        const int32_t tok = b->token[i];
        if (tok < 0 || tok >= c->n_vocab)
            return es_error(ES_ERR_RANGE,
                            "decode: token %d (batch index %d) is outside the vocabulary [0, %d)",
                            tok, i, c->n_vocab);
        const int32_t s = b->seq ? b->seq[i] : 0;
        if (s < 0 || s >= n_seq)
            return es_error(ES_ERR_RANGE,
                            "decode: sequence id %d (batch index %d) is outside [0, %d)", s, i,
                            n_seq);
        int32_t p;
        if (next[s] < 0) { /* first token of this sequence in the batch */
            p = b->pos ? b->pos[i] : ctx->kv_len[s];
            if (p < 0 || p > ctx->kv_len[s])
                return es_error(
                    ES_ERR_RANGE,
                    "decode: position %d (batch index %d) of sequence %d must be in [0, %d] "
                    "(its cached length)",
                    p, i, s, ctx->kv_len[s]);
        } else {
            p = b->pos ? b->pos[i] : next[s];
            if (p != next[s])
                return es_error(
                    ES_ERR_RANGE,
                    "decode: position %d (batch index %d) of sequence %d does not follow "
                    "position %d",
                    p, i, s, next[s] - 1);
        }
        if (p >= n_ctx)
            return es_error(ES_ERR_RANGE,
                            "decode: context full: position %d of sequence %d, n_ctx is %d", p, s,
                            n_ctx);
        rs->pos[i] = p;
        rs->seq[i] = s;
        next[s] = p + 1;
    }
    /* first position per sequence: the smallest in the batch (positions ascend) */
    for (int s = 0; s < n_seq; s++)
        rs->first_pos[s] = -1;
    for (int i = b->n_tokens - 1; i >= 0; i--)
        rs->first_pos[rs->seq[i]] = rs->pos[i];

    int n = 0;
    for (int i = 0; i < b->n_tokens; i++) {
        const bool want = b->logits ? b->logits[i] != 0 : i == b->n_tokens - 1;
        if (want) rs->out_rows[n++] = i;
    }
    *n_out = n;
    return ES_OK;
}

/* Grows the logits buffer to at least `rows` rows. */
static es_status reserve_logits(es_context *ctx, int rows) {
    if (rows <= ctx->logits_cap) return ES_OK;
    const size_t n_vocab = (size_t)ctx->model->cfg.n_vocab;
    int cap = ES_MAX(rows, ES_MIN(2 * ctx->logits_cap, ctx->params.n_batch));
    size_t bytes;
    if (!es_mul_size((size_t)cap, n_vocab * sizeof(float), &bytes))
        return es_error(ES_ERR_NOMEM, "decode: logits for %d tokens overflow", cap);
    float *l = es_alloc_aligned(bytes);
    if (!l) return es_error_prefix(ES_ERR_NOMEM, "decode: logits for %d tokens", cap);
    es_free_aligned(ctx->logits);
    ctx->logits = l;
    ctx->logits_cap = cap;
    return ES_OK;
}

es_status es_batch_prepare(es_context *ctx, const es_batch *b, int *n_out) {
    es_status st = check_batch(ctx, b, n_out);
    if (st == ES_OK) st = reserve_logits(ctx, *n_out);
    return st;
}
