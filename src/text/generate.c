/*
 * generate.c — the generation loop shared by `generate`, `chat`, `extract` and `eval`:
 * several prompts decoded together, then one token of every unfinished sequence per
 * es_decode step, each sequence with its own sampler, streaming detokenizer and stop
 * strings. See es_generate in emosteer.h.
 */
#include "common.h"
#include "context.h"
#include "strbuf.h"

#include <stdlib.h>
#include <string.h>

es_gen_params es_gen_default_params(void) {
    es_gen_params p;
    memset(&p, 0, sizeof p);
    p.n_predict = 128;
    p.sampling = es_sampler_default_params();
    p.stop_at_eog = true;
    return p;
}

void es_gen_output_free(es_gen_output *out) {
    if (!out) return;
    free(out->text);
    free(out->tokens);
    memset(out, 0, sizeof *out);
}

/* The state of one sequence while it generates (es_gen_seq in emosteer.h). */
struct es_gen_seq {
    es_gen_params p; /* n_predict, stop_at_eog (the stops are copied into `stop`) */
    const es_vocab *vocab;
    es_sampler *sampler;
    es_detok_stream *detok;
    es_stop *stop;
    es_strbuf text;  /* emitted text so far */
    int32_t *tokens; /* [n_predict] generated tokens */
    int n_tokens;
    int32_t pending; /* token sampled but not yet decoded, or -1 */
    bool done, finished;
    es_gen_stop why;
};

static es_status append_text(es_gen_seq *s, const char *p, size_t n) {
    if (n == 0) return ES_OK;
    es_strbuf_append(&s->text, p, n);
    if (s->text.failed)
        return es_error(ES_ERR_NOMEM, "generate: out of memory for %zu bytes of text",
                        s->text.len + n);
    return ES_OK;
}

/* Passes freshly detokenized bytes through the stop-string filter, into the text and
 * the callback. */
static es_status emit(es_gen_seq *s, int index, const char *bytes, size_t n, es_gen_text_fn on_text,
                      void *user) {
    const char *out = bytes;
    size_t out_len = n;
    bool stopped = false;
    if (s->stop) {
        es_status st = es_stop_feed(s->stop, bytes, n, &out, &out_len, &stopped);
        if (st != ES_OK) return st;
    }
    es_status st = append_text(s, out, out_len);
    if (st != ES_OK) return st;
    if (on_text && out_len && !on_text(user, index, out, out_len)) {
        s->done = true;
        s->why = ES_GEN_STOP_CALLER;
    }
    if (stopped && !s->done) {
        s->done = true;
        s->why = ES_GEN_STOP_STRING;
    }
    return ES_OK;
}

es_status es_gen_seq_create(const es_vocab *vocab, const es_gen_params *params, es_gen_seq **out) {
    if (!vocab || !out) return es_error(ES_ERR_INVALID_ARG, "generate: NULL argument");
    *out = NULL;
    es_gen_params p = params ? *params : es_gen_default_params();
    if (p.n_predict < 1)
        return es_error(ES_ERR_INVALID_ARG, "generate: n_predict %d must be >= 1", p.n_predict);
    es_gen_seq *s = es_calloc(1, sizeof *s);
    if (!s) return ES_ERR_NOMEM;
    s->p = p;
    s->p.stops = NULL; /* copied by es_stop_create below; the caller's may go away */
    s->p.n_stops = 0;
    s->p.n_cached = NULL;
    s->vocab = vocab;
    s->pending = -1;
    es_status st = es_sampler_create(&p.sampling, es_vocab_n_tokens(vocab), &s->sampler);
    if (st == ES_OK) st = es_detok_stream_create(vocab, false, &s->detok);
    if (st == ES_OK && p.n_stops) st = es_stop_create(p.stops, p.n_stops, &s->stop);
    if (st == ES_OK && !(s->tokens = es_calloc((size_t)p.n_predict, sizeof *s->tokens)))
        st = ES_ERR_NOMEM;
    if (st != ES_OK) {
        es_gen_seq_free(s);
        return st;
    }
    *out = s;
    return ES_OK;
}

void es_gen_seq_free(es_gen_seq *s) {
    if (!s) return;
    es_sampler_free(s->sampler);
    es_detok_stream_free(s->detok);
    es_stop_free(s->stop);
    es_strbuf_free(&s->text);
    free(s->tokens);
    free(s);
}

es_status es_gen_seq_take(es_gen_seq *s, const float *logits, int kv_len, int n_ctx,
                          es_gen_text_fn on_text, void *user, int index) {
    if (!s || !logits) return es_error(ES_ERR_INVALID_ARG, "generate: NULL argument");
    if (s->done) return es_error(ES_ERR_INVALID_ARG, "generate: sequence %d has ended", index);
    s->pending = -1;
    int32_t tok = es_sampler_sample(s->sampler, logits);
    if (tok < 0) return es_error_prefix((es_status)tok, "generate: sequence %d", index);
    es_sampler_accept(s->sampler, tok);
    if (s->p.stop_at_eog && es_vocab_is_eog(s->vocab, tok)) {
        s->done = true;
        s->why = ES_GEN_STOP_EOG;
        return ES_OK;
    }
    s->tokens[s->n_tokens++] = tok;
    char buf[256];
    size_t n = es_detok_stream_push(s->detok, tok, buf, sizeof buf);
    es_status st = emit(s, index, buf, n, on_text, user);
    if (st != ES_OK || s->done) return st;
    if (s->n_tokens >= s->p.n_predict) {
        s->done = true;
        s->why = ES_GEN_STOP_LENGTH;
    } else if (kv_len + 1 > n_ctx) {
        s->done = true;
        s->why = ES_GEN_STOP_CONTEXT;
    } else {
        s->pending = tok;
    }
    return ES_OK;
}

int32_t es_gen_seq_pending(const es_gen_seq *s) {
    return s && !s->done ? s->pending : -1;
}

bool es_gen_seq_done(const es_gen_seq *s, es_gen_stop *why) {
    if (!s) return true;
    if (why) *why = s->why;
    return s->done;
}

void es_gen_seq_stop(es_gen_seq *s, es_gen_stop why) {
    if (!s || s->done) return;
    s->done = true;
    s->why = why;
    s->pending = -1;
}

es_status es_gen_seq_finish(es_gen_seq *s, es_gen_text_fn on_text, void *user, int index) {
    if (!s) return es_error(ES_ERR_INVALID_ARG, "generate: NULL argument");
    if (s->finished) return ES_OK;
    s->finished = true;
    char buf[256];
    size_t n;
    if (s->why == ES_GEN_STOP_STRING) return ES_OK;
    while ((n = es_detok_stream_flush(s->detok, buf, sizeof buf)) > 0) {
        es_status st = emit(s, index, buf, n, on_text, user);
        if (st != ES_OK) return st;
    }
    if (s->stop && s->why != ES_GEN_STOP_STRING) {
        const char *tail;
        size_t tail_len;
        es_stop_flush(s->stop, &tail, &tail_len);
        es_status st = append_text(s, tail, tail_len);
        if (st != ES_OK) return st;
        if (on_text && tail_len) on_text(user, index, tail, tail_len);
    }
    return ES_OK;
}

const int32_t *es_gen_seq_tokens(const es_gen_seq *s, int *n) {
    if (n) *n = s ? s->n_tokens : 0;
    return s ? s->tokens : NULL;
}

es_status es_generate(es_context *ctx, const es_vocab *vocab, const int32_t *const *prompts,
                      const int *n_prompt, int n, const es_gen_params *params,
                      es_gen_text_fn on_text, void *user, es_gen_output *out) {
    if (!ctx || !vocab || !prompts || !n_prompt || !out || n < 1)
        return es_error(ES_ERR_INVALID_ARG, "generate: NULL argument or no prompt");
    es_gen_params p = params ? *params : es_gen_default_params();
    const int n_seq_max = ctx->params.n_seq_max, n_batch = ctx->params.n_batch;
    const int n_ctx = ctx->params.n_ctx;
    if (p.n_predict < 1)
        return es_error(ES_ERR_INVALID_ARG, "generate: n_predict %d must be >= 1", p.n_predict);
    if (p.first_seq < 0 || p.first_seq + n > n_seq_max)
        return es_error(
            ES_ERR_INVALID_ARG,
            "generate: %d prompts from sequence %d need n_seq_max >= %d (context has %d)", n,
            p.first_seq, p.first_seq + n, n_seq_max);
    for (int i = 0; i < n; i++) {
        if (n_prompt[i] < 1 || !prompts[i])
            return es_error(ES_ERR_INVALID_ARG, "generate: prompt %d is empty", i);
        if (p.n_cached && (p.n_cached[i] < 0 || p.n_cached[i] >= n_prompt[i]))
            return es_error(ES_ERR_INVALID_ARG,
                            "generate: prompt %d: n_cached %d must be in [0, %d)", i, p.n_cached[i],
                            n_prompt[i]);
        if (n_prompt[i] >= n_ctx)
            return es_error(ES_ERR_RANGE, "generate: prompt %d has %d tokens; the context holds %d",
                            i, n_prompt[i], n_ctx);
    }

    es_status st = ES_OK;
    es_gen_seq **seqs = es_calloc((size_t)n, sizeof *seqs);
    int32_t *btok = es_calloc((size_t)n_batch, sizeof *btok);
    int32_t *bpos = es_calloc((size_t)n_batch, sizeof *bpos);
    int32_t *bseq = es_calloc((size_t)n_batch, sizeof *bseq);
    int8_t *blog = es_calloc((size_t)n_batch, sizeof *blog);
    int *bidx = es_calloc((size_t)n_batch, sizeof *bidx); /* prompt index of a logits row */
    if (!seqs || !btok || !bpos || !bseq || !blog || !bidx) {
        st = ES_ERR_NOMEM;
        goto done;
    }
    for (int i = 0; i < n; i++) {
        es_gen_params sp = p;
        sp.sampling.seed = p.sampling.seed + (uint64_t)i;
        if ((st = es_gen_seq_create(vocab, &sp, &seqs[i])) != ES_OK) goto done;
        int seq = p.first_seq + i;
        if (!p.n_cached && (st = es_kv_clear(ctx, seq)) != ES_OK) goto done;
        if ((st = es_context_set_prompt_len(ctx, seq, n_prompt[i])) != ES_OK) goto done;
    }

    /* Prefill: pack the prompts into batches; sample as soon as a prompt's last
     * token has been decoded. */
    int pi = 0, pj = p.n_cached ? p.n_cached[0] : 0; /* next prompt token: prompt pi, position pj */
    while (pi < n) {
        int nb = 0;
        while (pi < n && nb < n_batch) {
            btok[nb] = prompts[pi][pj];
            bpos[nb] = pj;
            bseq[nb] = p.first_seq + pi;
            blog[nb] = pj == n_prompt[pi] - 1;
            bidx[nb] = pi;
            nb++;
            if (++pj == n_prompt[pi]) {
                pi++;
                pj = p.n_cached && pi < n ? p.n_cached[pi] : 0;
            }
        }
        es_batch b = {.n_tokens = nb, .token = btok, .pos = bpos, .seq = bseq, .logits = blog};
        if ((st = es_decode(ctx, &b)) != ES_OK) goto done;
        for (int j = 0; j < nb; j++) {
            if (!blog[j]) continue;
            int i = bidx[j];
            st = es_gen_seq_take(seqs[i], es_get_logits(ctx, j), n_prompt[i], n_ctx, on_text, user,
                                 i);
            if (st != ES_OK) goto done;
        }
    }

    /* Decode: one pending token of every unfinished sequence per step. */
    for (;;) {
        int nb = 0;
        for (int i = 0; i < n && nb < n_batch; i++) {
            int32_t tok = es_gen_seq_pending(seqs[i]);
            if (tok < 0) continue;
            int n_gen;
            es_gen_seq_tokens(seqs[i], &n_gen);
            btok[nb] = tok;
            bpos[nb] = n_prompt[i] + n_gen - 1;
            bseq[nb] = p.first_seq + i;
            blog[nb] = 1;
            bidx[nb] = i;
            nb++;
        }
        if (nb == 0) break;
        es_batch b = {.n_tokens = nb, .token = btok, .pos = bpos, .seq = bseq, .logits = blog};
        if ((st = es_decode(ctx, &b)) != ES_OK) goto done;
        for (int j = 0; j < nb; j++) {
            int i = bidx[j];
            st = es_gen_seq_take(seqs[i], es_get_logits(ctx, j), bpos[j] + 1, n_ctx, on_text, user,
                                 i);
            if (st != ES_OK) goto done;
        }
    }

    for (int i = 0; i < n; i++) {
        if ((st = es_gen_seq_finish(seqs[i], on_text, user, i)) != ES_OK) goto done;
    }
    for (int i = 0; i < n; i++) {
        es_gen_seq *s = seqs[i];
        out[i].text = s->text.data ? s->text.data : es_strdup("");
        out[i].text_len = s->text.len;
        out[i].tokens = s->tokens;
        out[i].n_tokens = s->n_tokens;
        out[i].stop = s->why;
        s->text = (es_strbuf){0};
        s->tokens = NULL;
        if (!out[i].text) st = ES_ERR_NOMEM;
    }

done:
    for (int i = 0; seqs && i < n; i++)
        es_gen_seq_free(seqs[i]);
    free(seqs);
    free(btok);
    free(bpos);
    free(bseq);
    free(blog);
    free(bidx);
    return st;
}
