/*
 * judge.c — zero-shot emotion judge: yes/no questions to any GGUF model, scored by the
 * next-token probabilities of "yes" and "no" (the method is described in emosteer.h).
 *
 * Batching. The prompts of one text differ only after the text, so they form a small
 * tree: the tokens all 18 prompts of a text share (template, text, instruction), then
 * per wording the tokens its 6 questions share ("Does this text express"), then each
 * question's end. Each text gets its own sequence; its shared prefix is decoded once,
 * then each wording's part as a continuation of it, then each question's end as a
 * continuation of that: es_decode drops the positions a sequence had cached after the
 * first position of its new tokens, so a later branch replaces an earlier one. Up to
 * n_seq texts go side by side, every step decoding the same branch for all of them in
 * one batch, with logits at each sequence's last token only.
 */
#include "judge.h"

#include "common.h"
#include "scorers.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_LABELS ES_EMO_N_LABELS
#define N_WORDINGS ES_JUDGE_N_WORDINGS
#define N_PROMPTS (N_LABELS * N_WORDINGS)
#define BYTES_PER_TOKEN 32    /* bytes of a text looked at per token of the budget */
#define MAX_TEXT_TOKENS 32768 /* largest max_text_tokens accepted */

struct es_judge {
    es_model *model;       /* borrowed */
    const es_vocab *vocab; /* borrowed from the model */
    es_context *ctx;       /* owned */
    es_chat_format fmt;    /* ES_CHAT_NONE = plain text */
    int n_vocab;           /* logits per row */
    int n_ctx;             /* positions per sequence of ctx */
    int n_seq;             /* sequences of ctx */
    int text_tokens;       /* text budget actually used (max_text_tokens, maybe cut to fit) */
    int32_t *yes, *no;     /* [n_yes], [n_no] answer token ids */
    int n_yes, n_no;
};

/* ------------------------------------------------------------------------------------ */
/* Labels and questions                                                                  */
/* ------------------------------------------------------------------------------------ */

/* Wordings of the question: "%s" is the emotion name; neutral has its own sentence. */
static const char *const q_emotion[N_WORDINGS] = {
    "Does the speaker of this text feel %s?",
    "Does this text express %s?",
    "Is the emotion of this text %s?",
};
static const char *const q_neutral[N_WORDINGS] = {
    "Does the speaker of this text feel no particular emotion?",
    "Does this text express no particular emotion?",
    "Is this text emotionally neutral?",
};

void es_judge_question(es_emotion label, int wording, char *buf, size_t cap) {
    if (!buf || cap == 0) return;
    if ((int)label < 0 || (int)label >= N_LABELS || wording < 0 || wording >= N_WORDINGS) {
        buf[0] = '\0';
        return;
    }
    if (label == ES_EMO_NEUTRAL)
        snprintf(buf, cap, "%s", q_neutral[wording]);
    else
        snprintf(buf, cap, q_emotion[wording], es_emotion_name(label));
}

/* ------------------------------------------------------------------------------------ */
/* Params, answer tokens                                                                 */
/* ------------------------------------------------------------------------------------ */

es_judge_params es_judge_default_params(void) {
    es_judge_params p;
    memset(&p, 0, sizeof p);
    p.chat_format = ES_CHAT_AUTO;
    p.max_text_tokens = 256;
    p.n_seq = 8;
    p.n_batch = 512;
    p.n_threads = 0;
    return p;
}

/* Whether the piece of token t reads `word` (ASCII letters) in any case, with at most
 * one leading space. */
static bool piece_is_word(const es_vocab *v, int32_t t, const char *word) {
    char buf[16];
    int32_t n = es_token_to_piece(v, t, buf, (int32_t)sizeof buf, false);
    if (n <= 0) return false;
    const char *s = buf;
    if (*s == ' ') s++, n--;
    size_t w = strlen(word);
    if ((size_t)n != w) return false;
    for (size_t i = 0; i < w; i++)
        if (tolower((unsigned char)s[i]) != word[i]) return false;
    return true;
}

static bool ids_contain(const int32_t *ids, int n, int32_t t) {
    for (int i = 0; i < n; i++)
        if (ids[i] == t) return true;
    return false;
}

/* Fallback for vocabularies without a whole "yes"/"no" token: the first token (that is
 * not only spaces) of each spelling. */
static es_status first_tokens(const es_vocab *v, const char *const *spellings, int n_sp,
                              int32_t *ids, int *n_ids) {
    for (int k = 0; k < n_sp; k++) {
        int32_t toks[16], n = 0;
        es_status st =
            es_tokenize(v, spellings[k], strlen(spellings[k]), false, false, toks, 16, &n);
        if (st == ES_ERR_RANGE) continue; /* a spelling of more than 16 tokens: skip it */
        if (st != ES_OK) return st;
        for (int i = 0; i < n; i++) {
            char buf[32];
            int32_t len = es_token_to_piece(v, toks[i], buf, (int32_t)sizeof buf, false);
            bool blank = true;
            for (int32_t c = 0; c < len; c++)
                if (buf[c] != ' ') blank = false;
            if (len <= 0 || blank) continue;
            if (!ids_contain(ids, *n_ids, toks[i])) ids[(*n_ids)++] = toks[i];
            break;
        }
    }
    return ES_OK;
}

static es_status find_answer_ids(es_judge *j) {
    const es_vocab *v = j->vocab;
    int32_t nv = es_vocab_n_tokens(v);
    if (nv > j->n_vocab) nv = j->n_vocab; /* only ids that have logits */
    int cap_yes = 8, cap_no = 8;
    j->yes = malloc((size_t)cap_yes * sizeof *j->yes);
    j->no = malloc((size_t)cap_no * sizeof *j->no);
    if (!j->yes || !j->no) return es_error(ES_ERR_NOMEM, "judge: out of memory for answer tokens");
    for (int32_t t = 0; t < nv; t++) {
        if (es_vocab_is_control(v, t)) continue;
        int32_t **ids = NULL;
        int *n = NULL, *cap = NULL;
        if (piece_is_word(v, t, "yes"))
            ids = &j->yes, n = &j->n_yes, cap = &cap_yes;
        else if (piece_is_word(v, t, "no"))
            ids = &j->no, n = &j->n_no, cap = &cap_no;
        else
            continue;
        if (*n == *cap) {
            int32_t *grown = realloc(*ids, (size_t)*cap * 2 * sizeof **ids);
            if (!grown) return es_error(ES_ERR_NOMEM, "judge: out of memory for answer tokens");
            *ids = grown;
            *cap *= 2;
        }
        (*ids)[(*n)++] = t;
    }
    if (j->n_yes == 0 || j->n_no == 0) {
        static const char *const yes_sp[] = {"yes", "Yes"}, *const no_sp[] = {"no", "No"};
        j->n_yes = j->n_no = 0; /* both from the fallback: comparable spellings */
        es_status st = first_tokens(v, yes_sp, 2, j->yes, &j->n_yes);
        if (st == ES_OK) st = first_tokens(v, no_sp, 2, j->no, &j->n_no);
        if (st != ES_OK) return st;
        for (int i = 0; i < j->n_yes; i++) {
            if (j->yes[i] >= j->n_vocab || ids_contain(j->no, j->n_no, j->yes[i]))
                return es_error(ES_ERR_UNSUPPORTED,
                                "judge: the vocabulary has no distinct yes/no tokens");
        }
        for (int i = 0; i < j->n_no; i++)
            if (j->no[i] >= j->n_vocab)
                return es_error(ES_ERR_UNSUPPORTED,
                                "judge: the vocabulary has no distinct yes/no tokens");
    }
    if (j->n_yes == 0 || j->n_no == 0)
        return es_error(ES_ERR_UNSUPPORTED, "judge: the vocabulary has no tokens for yes/no");
    return ES_OK;
}

/* ------------------------------------------------------------------------------------ */
/* Prompts                                                                               */
/* ------------------------------------------------------------------------------------ */

es_status es_judge_prepare_text(const es_judge *j, const char *text, int max_tokens, char **out) {
    if (!j || !text || !out) return es_error(ES_ERR_INVALID_ARG, "judge: NULL argument");
    if (max_tokens < 0) max_tokens = j->text_tokens;
    const bool chat = j->fmt != ES_CHAT_NONE;
    size_t len = strlen(text);
    size_t max_bytes = (size_t)max_tokens * BYTES_PER_TOKEN;
    bool changed = false;
    if (len > max_bytes) {
        len = es_utf8_complete_prefix(text, max_bytes);
        changed = true;
    }
    int32_t *toks = NULL;
    int n = 0;
    es_status st = es_tokenize_alloc(j->vocab, text, len, false, chat, &toks, &n);
    if (st != ES_OK) return es_error_prefix(st, "judge: text");
    /* keep the first max_tokens tokens that are not control tokens */
    int kept = 0;
    for (int i = 0; i < n && kept < max_tokens; i++) {
        if (chat && es_vocab_is_control(j->vocab, toks[i])) {
            changed = true;
            continue;
        }
        toks[kept++] = toks[i];
    }
    if (kept < n) changed = true;
    char *s = NULL;
    if (!changed) {
        s = malloc(len + 1);
        if (s)
            memcpy(s, text, len), s[len] = '\0';
        else
            st = es_error(ES_ERR_NOMEM, "judge: out of memory for a text");
    } else {
        size_t slen = 0;
        st = es_detokenize(j->vocab, toks, kept, true, &s, &slen);
        if (st == ES_OK) s[es_utf8_complete_prefix(s, slen)] = '\0';
    }
    free(toks);
    if (st != ES_OK) return st;
    *out = s;
    return ES_OK;
}

/* Prompt tokens of an already prepared text. */
static es_status build_prompt(const es_judge *j, const char *text, es_emotion label, int wording,
                              int32_t **toks, int *n_toks) {
    static const char head[] = "Text: ",
                      mid[] = "\nAnswer the question about this text with yes or no.\nQuestion: ",
                      plain_end[] = "\nAnswer:";
    char question[128];
    es_judge_question(label, wording, question, sizeof question);
    size_t lt = strlen(text), lq = strlen(question);
    size_t total = sizeof head + lt + sizeof mid + lq + sizeof plain_end;
    char *content = malloc(total);
    if (!content) return es_error(ES_ERR_NOMEM, "judge: out of memory for a prompt");
    snprintf(content, total, "%s%s%s%s%s", head, text, mid, question,
             j->fmt == ES_CHAT_NONE ? plain_end : "");
    es_status st;
    if (j->fmt == ES_CHAT_NONE) {
        st = es_tokenize_alloc(j->vocab, content, strlen(content), true, false, toks, n_toks);
        free(content);
        return st;
    }
    es_chat_msg msg = {"user", content};
    es_chat_options opt = es_chat_default_options();
    opt.add_generation_prompt = true;
    opt.thinking = ES_CHAT_THINK_OFF;
    int32_t bos = es_vocab_bos(j->vocab), eos = es_vocab_eos(j->vocab);
    opt.bos_text = bos >= 0 ? es_vocab_token_text(j->vocab, bos) : NULL;
    opt.eos_text = eos >= 0 ? es_vocab_token_text(j->vocab, eos) : NULL;
    char *rendered = NULL;
    st = es_chat_render_ex(j->fmt, &msg, 1, &opt, &rendered);
    free(content);
    if (st != ES_OK) return es_error_prefix(st, "judge: chat template");
    st = es_tokenize_alloc(j->vocab, rendered, strlen(rendered), false, true, toks, n_toks);
    free(rendered);
    return st;
}

es_status es_judge_prompt_tokens(const es_judge *j, const char *text, es_emotion label, int wording,
                                 int32_t **toks, int *n_toks) {
    if (!j || !text || !toks || !n_toks)
        return es_error(ES_ERR_INVALID_ARG, "judge: NULL argument");
    if ((int)label < 0 || (int)label >= N_LABELS || wording < 0 || wording >= N_WORDINGS)
        return es_error(ES_ERR_INVALID_ARG, "judge: label %d / wording %d out of range", (int)label,
                        wording);
    char *prepared = NULL;
    es_status st = es_judge_prepare_text(j, text, -1, &prepared);
    if (st != ES_OK) return st;
    st = build_prompt(j, prepared, label, wording, toks, n_toks);
    free(prepared);
    return st;
}

/* The N_PROMPTS prompts of one text (prompt p = label p / N_WORDINGS, wording
 * p % N_WORDINGS), all fitting the context: the text budget shrinks if needed. */
typedef struct text_prompts {
    int32_t *toks[N_PROMPTS]; /* owned */
    int len[N_PROMPTS];
    int prefix;            /* leading tokens all prompts share, < every len */
    int group[N_WORDINGS]; /* leading tokens the prompts of a wording share, >= prefix and
                              < the length of each of them */
} text_prompts;

/* Length of the common prefix of the prompts p0, p0 + step, ... (below n), at most
 * each length - 1 so that every prompt keeps its last token. */
static int common_prefix(const text_prompts *tp, int p0, int step, int n) {
    int pre = tp->len[p0] - 1;
    for (int p = p0 + step; p < n; p += step) {
        int k = 0, lim = ES_MIN(pre, tp->len[p] - 1);
        while (k < lim && tp->toks[p][k] == tp->toks[p0][k])
            k++;
        pre = k;
    }
    return ES_MAX(pre, 0);
}

static void text_prompts_free(text_prompts *tp) {
    for (int p = 0; p < N_PROMPTS; p++)
        free(tp->toks[p]), tp->toks[p] = NULL;
}

static es_status make_text_prompts(const es_judge *j, const char *text, text_prompts *tp) {
    memset(tp, 0, sizeof *tp);
    int budget = j->text_tokens;
    for (int attempt = 0; attempt < 4; attempt++) {
        char *prepared = NULL;
        es_status st = es_judge_prepare_text(j, text, budget, &prepared);
        if (st != ES_OK) return st;
        int longest = 0;
        for (int p = 0; p < N_PROMPTS && st == ES_OK; p++) {
            st = build_prompt(j, prepared, p / N_WORDINGS, p % N_WORDINGS, &tp->toks[p],
                              &tp->len[p]);
            if (st == ES_OK) longest = ES_MAX(longest, tp->len[p]);
        }
        free(prepared);
        if (st != ES_OK) {
            text_prompts_free(tp);
            return st;
        }
        if (longest <= j->n_ctx) {
            tp->prefix = common_prefix(tp, 0, 1, N_PROMPTS);
            for (int w = 0; w < N_WORDINGS; w++)
                tp->group[w] = ES_MAX(common_prefix(tp, w, N_WORDINGS, N_PROMPTS), tp->prefix);
            return ES_OK;
        }
        /* the text took more tokens inside the prompt than alone: cut it further */
        text_prompts_free(tp);
        budget -= (longest - j->n_ctx) + 8;
        if (budget < 0) budget = 0;
    }
    return es_error(ES_ERR_RANGE, "judge: a prompt does not fit the judge's context of %d tokens",
                    j->n_ctx);
}

/* ------------------------------------------------------------------------------------ */
/* Create / free                                                                         */
/* ------------------------------------------------------------------------------------ */

es_status es_judge_create(es_model *model, const es_judge_params *params, es_judge **out) {
    if (!model || !out) return es_error(ES_ERR_INVALID_ARG, "judge: NULL argument");
    es_judge_params p = params ? *params : es_judge_default_params();
    if ((int)p.chat_format < ES_CHAT_AUTO || (int)p.chat_format >= ES_CHAT_FORMAT_COUNT ||
        p.chat_format == ES_CHAT_UNKNOWN)
        return es_error(ES_ERR_INVALID_ARG, "judge: bad chat_format %d", (int)p.chat_format);
    if (p.max_text_tokens < 1 || p.max_text_tokens > MAX_TEXT_TOKENS)
        return es_error(ES_ERR_INVALID_ARG, "judge: max_text_tokens %d outside [1, %d]",
                        p.max_text_tokens, MAX_TEXT_TOKENS);
    if (p.n_seq < 1 || p.n_seq > 256)
        return es_error(ES_ERR_INVALID_ARG, "judge: n_seq %d outside [1, 256]", p.n_seq);
    if (p.n_batch < 1 || p.n_batch > 65536)
        return es_error(ES_ERR_INVALID_ARG, "judge: n_batch %d outside [1, 65536]", p.n_batch);
    if (p.n_threads < 0 || p.n_threads > 1024)
        return es_error(ES_ERR_INVALID_ARG, "judge: n_threads %d outside [0, 1024]", p.n_threads);
    const es_vocab *vocab = es_model_vocab(model);
    if (!vocab) return es_error(ES_ERR_UNSUPPORTED, "judge: the model has no tokenizer");

    es_judge *j = es_calloc(1, sizeof *j);
    if (!j) return ES_ERR_NOMEM;
    es_model_info mi;
    es_model_get_info(model, &mi);
    j->model = model;
    j->vocab = vocab;
    j->n_vocab = mi.n_vocab;
    j->n_seq = p.n_seq;
    if (p.chat_format != ES_CHAT_AUTO) {
        j->fmt = p.chat_format;
    } else {
        j->fmt = es_chat_detect(es_model_chat_template(model));
        if (j->fmt == ES_CHAT_UNKNOWN) j->fmt = ES_CHAT_NONE;
    }
    es_status st = find_answer_ids(j);

    /* context length: the longest prompt around an empty text, plus the text budget
     * and some slack for tokens merging differently inside the prompt */
    int overhead = 0;
    for (int q = 0; q < N_PROMPTS && st == ES_OK; q++) {
        int32_t *toks = NULL;
        int n = 0;
        st = build_prompt(j, "", q / N_WORDINGS, q % N_WORDINGS, &toks, &n);
        free(toks);
        overhead = ES_MAX(overhead, n);
    }
    if (st == ES_OK) {
        int budget = p.max_text_tokens, slack = budget / 4 + 16;
        long need = (long)overhead + budget + slack;
        if (need > mi.n_ctx_train) {
            budget = (int)(((long)mi.n_ctx_train - overhead - 16) * 4 / 5);
            if (budget < 1)
                st = es_error(
                    ES_ERR_UNSUPPORTED,
                    "judge: the model's context of %d tokens is too short for prompts of %d",
                    mi.n_ctx_train, overhead);
            need = mi.n_ctx_train;
        }
        j->text_tokens = budget;
        j->n_ctx = (int)need;
    }
    if (st == ES_OK) {
        es_context_params cp = es_context_default_params();
        cp.n_ctx = j->n_ctx;
        cp.n_seq_max = p.n_seq;
        cp.n_batch = p.n_batch;
        if (p.n_threads > 0) cp.n_threads = p.n_threads;
        st = es_context_create(model, &cp, &j->ctx);
    }
    if (st != ES_OK) {
        es_judge_free(j);
        return st;
    }
    *out = j;
    return ES_OK;
}

void es_judge_free(es_judge *judge) {
    if (!judge) return;
    es_context_free(judge->ctx);
    free(judge->yes);
    free(judge->no);
    free(judge);
}

es_chat_format es_judge_chat_format(const es_judge *judge) {
    return judge ? judge->fmt : ES_CHAT_NONE;
}

void es_judge_answer_ids(const es_judge *j, const int32_t **yes, int *n_yes, const int32_t **no,
                         int *n_no) {
    if (yes) *yes = j ? j->yes : NULL;
    if (n_yes) *n_yes = j ? j->n_yes : 0;
    if (no) *no = j ? j->no : NULL;
    if (n_no) *n_no = j ? j->n_no : 0;
}

es_context *es_judge_context(const es_judge *j) {
    return j ? j->ctx : NULL;
}

/* ------------------------------------------------------------------------------------ */
/* Scoring                                                                               */
/* ------------------------------------------------------------------------------------ */

/* log sum_i exp(x[ids[i]]) (all ids when ids is NULL), in double. */
static double log_sum_exp(const float *x, const int32_t *ids, int n) {
    double m = -INFINITY;
    for (int i = 0; i < n; i++) {
        double v = x[ids ? ids[i] : i];
        if (v > m) m = v;
    }
    if (!isfinite(m)) return m;
    double s = 0;
    for (int i = 0; i < n; i++)
        s += exp((double)x[ids ? ids[i] : i] - m);
    return m + log(s);
}

typedef struct score_run {
    const es_judge *j;
    double *s, *mass; /* [n][N_LABELS][N_WORDINGS] of the whole call */
    int first_text;   /* text index of slot 0 */
    int prompt;       /* the question being decoded */
} score_run;

static es_status on_answer_logits(void *user, int seg, int k, const float *logits) {
    score_run *r = user;
    const es_judge *j = r->j;
    double lse_y = log_sum_exp(logits, j->yes, j->n_yes);
    double lse_n = log_sum_exp(logits, j->no, j->n_no);
    double lse = log_sum_exp(logits, NULL, j->n_vocab);
    if (!isfinite(lse_y) || !isfinite(lse_n) || !isfinite(lse))
        return es_error(ES_ERR_FORMAT, "judge: non-finite logits for text %d, question %d",
                        r->first_text + seg, r->prompt);
    size_t at = (size_t)(r->first_text + seg) * N_PROMPTS + (size_t)r->prompt;
    r->s[at] = 1.0 / (1.0 + exp(lse_n - lse_y));
    if (r->mass) r->mass[at] = exp(lse_y - lse) + exp(lse_n - lse);
    (void)k;
    return ES_OK;
}

es_status es_judge_score_raw(es_judge *j, const char *const *texts, int n, double *s,
                             double *mass) {
    if (!j || (!texts && n > 0) || (!s && n > 0) || n < 0)
        return es_error(ES_ERR_INVALID_ARG, "judge: NULL argument or negative count");
    for (int i = 0; i < n; i++)
        if (!texts[i]) return es_error(ES_ERR_INVALID_ARG, "judge: text %d is NULL", i);
    text_prompts *tp = es_calloc((size_t)j->n_seq, sizeof *tp);
    es_tf_seg *segs = es_calloc((size_t)j->n_seq, sizeof *segs);
    if (!tp || !segs) {
        free(tp);
        free(segs);
        return ES_ERR_NOMEM;
    }
    es_status st = ES_OK;
    score_run run = {j, s, mass, 0, 0};
    for (int first = 0; first < n && st == ES_OK; first += j->n_seq) {
        int m = ES_MIN(j->n_seq, n - first);
        int built = 0;
        for (; built < m && st == ES_OK; built++) {
            st = make_text_prompts(j, texts[first + built], &tp[built]);
            if (st != ES_OK) st = es_error_prefix(st, "text %d", first + built);
        }
        if (st != ES_OK) built--; /* the failed one freed its own prompts */
        if (st == ES_OK) st = es_kv_clear(j->ctx, -1);
        /* the shared prefixes */
        for (int t = 0; t < m && st == ES_OK; t++)
            segs[t] = (es_tf_seg){tp[t].toks[0], tp[t].prefix, t, 0, 0, 0};
        if (st == ES_OK) st = es_tf_decode(j->ctx, segs, m, j->n_seq, NULL, NULL);
        /* per wording: its shared part, then each question's end */
        run.first_text = first;
        for (int w = 0; w < N_WORDINGS && st == ES_OK; w++) {
            for (int t = 0; t < m; t++) {
                int pre = tp[t].prefix;
                segs[t] = (es_tf_seg){tp[t].toks[w] + pre, tp[t].group[w] - pre, t, pre, 0, 0};
            }
            st = es_tf_decode(j->ctx, segs, m, j->n_seq, NULL, NULL);
            for (int l = 0; l < N_LABELS && st == ES_OK; l++) {
                int q = l * N_WORDINGS + w;
                for (int t = 0; t < m; t++) {
                    int g = tp[t].group[w], len = tp[t].len[q] - g;
                    segs[t] = (es_tf_seg){tp[t].toks[q] + g, len, t, g, len - 1, len};
                }
                run.prompt = q;
                st = es_tf_decode(j->ctx, segs, m, j->n_seq, on_answer_logits, &run);
            }
        }
        for (int t = 0; t < built; t++)
            text_prompts_free(&tp[t]);
    }
    free(tp);
    free(segs);
    return st;
}

es_status es_judge_score_ex(es_judge *judge, const char *const *texts, int n, double *probs,
                            double *entail, double *yes_no_mass) {
    if (!judge || (!texts && n > 0) || (!probs && n > 0) || n < 0)
        return es_error(ES_ERR_INVALID_ARG, "judge: NULL argument or negative count");
    if (n == 0) return ES_OK;
    size_t cells;
    if (!es_mul_size((size_t)n, N_PROMPTS, &cells))
        return es_error(ES_ERR_NOMEM, "judge: %d texts", n);
    double *s = es_calloc(cells, sizeof *s);
    double *mass = yes_no_mass ? es_calloc(cells, sizeof *mass) : NULL;
    if (!s || (yes_no_mass && !mass)) {
        free(s);
        free(mass);
        return ES_ERR_NOMEM;
    }
    es_status st = es_judge_score_raw(judge, texts, n, s, mass);
    for (int i = 0; i < n && st == ES_OK; i++) {
        double e[N_LABELS], sum = 0, msum = 0;
        for (int l = 0; l < N_LABELS; l++) {
            double acc = 0;
            for (int w = 0; w < N_WORDINGS; w++) {
                size_t at = (size_t)i * N_PROMPTS + (size_t)l * N_WORDINGS + (size_t)w;
                acc += s[at];
                if (mass) msum += mass[at];
            }
            e[l] = acc / N_WORDINGS;
            sum += e[l];
        }
        for (int l = 0; l < N_LABELS; l++) {
            /* every score is a sigmoid, so sum > 0 unless all underflowed */
            probs[(size_t)i * N_LABELS + (size_t)l] = sum > 0 ? e[l] / sum : 1.0 / N_LABELS;
            if (entail) entail[(size_t)i * N_LABELS + (size_t)l] = e[l];
        }
        if (yes_no_mass) yes_no_mass[i] = msum / N_PROMPTS;
    }
    free(s);
    free(mass);
    return st;
}

es_status es_judge_score(es_judge *judge, const char *const *texts, int n, double *probs) {
    return es_judge_score_ex(judge, texts, n, probs, NULL, NULL);
}

es_status es_judge_label_probs(void *judge, const char *const *texts, int n, double *probs) {
    return es_judge_score(judge, texts, n, probs);
}
