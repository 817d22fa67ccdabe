/*
 * eval_topic.c — topic adherence judged by the --judge model: for a response and its
 * query the judge is asked, in the emotion judge's own prompt form (src/eval/judge.c),
 *     Text: {response}\nAnswer the question about this text with yes or no.\n
 *     Question: Is this text on the topic of "{query}"?
 * (as the user message of its chat template with the generation prompt and thinking
 * off, or as plain text followed by "\nAnswer:"), and the score is
 * P(yes) / (P(yes) + P(no)) of the next token, with the judge's yes/no token sets.
 * Texts are prepared as the judge prepares them (control-token text removed, cut to
 * its text budget; the query to 64 tokens).
 */
#include "eval_cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The prompt tokens of one (response, query). */
static es_status topic_prompt(const eval_job *j, const char *response, const char *query,
                              int32_t **toks, int *n_toks) {
    const es_vocab *vocab = es_model_vocab(j->judge_model);
    es_chat_format fmt = es_judge_chat_format(j->judge);
    char *text = NULL, *q = NULL, *content = NULL;
    es_status st = es_judge_prepare_text(j->judge, response, -1, &text);
    if (st == ES_OK) st = es_judge_prepare_text(j->judge, query, 64, &q);
    if (st == ES_OK && asprintf(&content,
                                "Text: %s\nAnswer the question about this text with yes or "
                                "no.\nQuestion: Is this text on the "
                                "topic of \"%s\"?%s",
                                text, q, fmt == ES_CHAT_NONE ? "\nAnswer:" : "") < 0) {
        content = NULL;
        st = es_error(ES_ERR_NOMEM, "topic: out of memory for a prompt");
    }
    free(text);
    free(q);
    if (st != ES_OK) return st;
    if (fmt == ES_CHAT_NONE) {
        st = es_tokenize_alloc(vocab, content, strlen(content), true, false, toks, n_toks);
        free(content);
        return st;
    }
    es_chat_msg msg = {"user", content};
    es_chat_options opt = es_chat_default_options();
    opt.add_generation_prompt = true;
    opt.thinking = ES_CHAT_THINK_OFF;
    int32_t bos = es_vocab_bos(vocab), eos = es_vocab_eos(vocab);
    opt.bos_text = bos >= 0 ? es_vocab_token_text(vocab, bos) : NULL;
    opt.eos_text = eos >= 0 ? es_vocab_token_text(vocab, eos) : NULL;
    char *rendered = NULL;
    st = es_chat_render_ex(fmt, &msg, 1, &opt, &rendered);
    free(content);
    if (st != ES_OK) return st;
    st = es_tokenize_alloc(vocab, rendered, strlen(rendered), false, true, toks, n_toks);
    free(rendered);
    return st;
}

typedef struct topic_acc {
    const eval_job *j;
    int n_vocab;
    double *out; /* [chunk] */
} topic_acc;

/* P(yes) / (P(yes) + P(no)) from the last token's logits. */
static es_status on_logits(void *user, int seg, int k, const float *logits) {
    (void)k;
    topic_acc *acc = user;
    const int32_t *yes, *no;
    int n_yes, n_no;
    es_judge_answer_ids(acc->j->judge, &yes, &n_yes, &no, &n_no);
    float mx = -INFINITY;
    for (int t = 0; t < acc->n_vocab; t++)
        mx = logits[t] > mx ? logits[t] : mx;
    if (!isfinite(mx)) return es_error(ES_ERR_FORMAT, "topic: the judge gave non-finite logits");
    double p_yes = 0, p_no = 0; /* the shared softmax normaliser cancels */
    for (int i = 0; i < n_yes; i++)
        p_yes += exp((double)logits[yes[i]] - mx);
    for (int i = 0; i < n_no; i++)
        p_no += exp((double)logits[no[i]] - mx);
    acc->out[seg] = p_yes + p_no > 0 ? p_yes / (p_yes + p_no) : 0.5;
    return ES_OK;
}

int eval_judge_topic(eval_job *j, es_context *ctx, const char *const *texts, const int *query,
                     int n, double *out) {
    const int S = (int)j->o->rt.batch; /* the context's sequences */
    int32_t **toks = calloc((size_t)S, sizeof *toks);
    es_tf_seg *segs = calloc((size_t)S, sizeof *segs);
    es_model_info ji;
    es_model_get_info(j->judge_model, &ji);
    int rc = ES_EXIT_OK;
    if (!toks || !segs) {
        fprintf(stderr, "emosteer: out of memory for the topic prompts\n");
        rc = ES_EXIT_FAIL;
    }
    for (int a = 0; rc == ES_EXIT_OK && a < n; a += S) {
        int m = ES_MIN(S, n - a);
        for (int i = 0; i < m && rc == ES_EXIT_OK; i++) {
            int len = 0;
            if (topic_prompt(j, texts[a + i], j->queries[query[a + i]].text, &toks[i], &len) !=
                ES_OK) {
                rc = cli_fail("the topic question");
                break;
            }
            segs[i] = (es_tf_seg){toks[i], len, i, 0, len - 1, len};
        }
        topic_acc acc = {j, ji.n_vocab, out + a};
        for (int i = 0; i < m; i++)
            es_kv_clear(ctx, i);
        if (rc == ES_EXIT_OK &&
            es_tf_decode(ctx, segs, m, es_tf_default_logit_rows(ctx), on_logits, &acc) != ES_OK)
            rc = cli_fail("asking the judge about the topic");
        for (int i = 0; i < m; i++) {
            free(toks[i]);
            toks[i] = NULL;
        }
    }
    free(toks);
    free(segs);
    return rc;
}
