/*
 * cmd_perplexity.c — `emosteer perplexity`: perplexity of a text file, computed the
 * standard way (as llama.cpp's llama-perplexity does): tokenize the whole file with
 * BOS, cut it into non-overlapping chunks of n_ctx tokens, replace each chunk's first
 * token by BOS, run the chunk, and score the second half of it (each position j in
 * [n_ctx/2, n_ctx-1) predicting token j+1). PPL = exp(mean negative log-likelihood).
 */
#include "cli.h"
#include "opts.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

typedef struct ppl_opts {
    cli_runtime_opts rt;
    const char *file; /* -f */
    long max_chunks;  /* --chunks, -1 = all */
} ppl_opts;

#define PO(f) offsetof(ppl_opts, f)
static const cli_opt ppl_own[] = {
    {"-f", "--file", "FILE", CLI_PATH, 0, 0, PO(file), "text file to score (required)", NULL, NULL,
     0, 0},
    {NULL, "--chunks", "N", CLI_LONG, 1, 1 << 30, PO(max_chunks), "score only the first N chunks",
     NULL, NULL, 0, 0},
};
static const cli_opt_group ppl_group = {"options", ppl_own, sizeof ppl_own / sizeof ppl_own[0]};

static const cli_group_use ppl_groups[] = {
    {&ppl_group, 0, 0},
    {&cli_runtime_group, PO(rt), CLI_RT_BATCH},
    {&cli_check_finite_group, PO(rt), 0},
};

static void ppl_init(void *p) {
    ppl_opts *o = p;
    cli_runtime_init(&o->rt);
    o->rt.n_ctx = 512;
    o->max_chunks = -1;
}

const cli_command cli_perplexity_cmd = {
    "perplexity",
    "[-m MODEL] -f FILE [-c N_CTX] [-t THREADS] [--chunks N]",
    "Perplexity of FILE under the model (llama.cpp's method: non-overlapping chunks of\n"
    "N_CTX (-c) tokens, first token of each chunk replaced by BOS, second half scored).",
    NULL,
    sizeof(ppl_opts),
    ppl_init,
    ppl_groups,
    sizeof ppl_groups / sizeof ppl_groups[0],
    0,
};

/* Log-softmax probability of `target` under logits[n]. */
static double log_prob(const float *logits, int n, int target) {
    float mx = logits[0];
    for (int i = 1; i < n; i++)
        mx = logits[i] > mx ? logits[i] : mx;
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += exp((double)logits[i] - mx);
    return (double)logits[target] - mx - log(sum);
}

int cmd_perplexity(int argc, char **argv) {
    ppl_opts o;
    int rc = cli_opts_parse(&cli_perplexity_cmd, &o, argc, argv, NULL);
    if (rc >= 0) return rc;
    const char *model_path = o.rt.model, *file = o.file;
    long n_ctx = o.rt.n_ctx, max_chunks = o.max_chunks;
    if (!file) return cli_usage_error("perplexity", "no input file: give one with -f FILE");

    size_t text_len = 0;
    char *text = NULL;
    if ((rc = cli_read_text("perplexity", file, &text, &text_len)) != ES_EXIT_OK) return rc;
    es_model_params mp = es_model_default_params();
    mp.check_finite = o.rt.check_finite;
    es_model *model = NULL;
    if (es_model_load(model_path, &mp, &model) != ES_OK) {
        free(text);
        return cli_fail("loading the model");
    }
    es_model_info info;
    es_model_get_info(model, &info);
    n_ctx = cli_runtime_ctx("perplexity", (int)n_ctx, model);
    const es_vocab *vocab = es_model_vocab(model);
    rc = ES_EXIT_FAIL;
    int32_t *toks = NULL;
    es_context *ctx = NULL;
    int8_t *want = NULL;
    if (!vocab) {
        fprintf(stderr, "emosteer: the model has no tokenizer\n");
        goto done;
    }
    int32_t n_tok = 0;
    size_t cap = text_len + 16;
    if (cap > INT32_MAX) {
        fprintf(stderr, "emosteer: '%s' is too large (%zu bytes)\n", file, text_len);
        goto done;
    }
    toks = malloc(sizeof *toks * cap);
    if (!toks ||
        es_tokenize(vocab, text, text_len, true, false, toks, (int32_t)cap, &n_tok) != ES_OK) {
        cli_fail("tokenizing the file");
        goto done;
    }
    long n_chunk = n_tok / n_ctx;
    if (max_chunks > 0 && max_chunks < n_chunk) n_chunk = max_chunks;
    if (n_chunk < 1) {
        fprintf(stderr, "emosteer: '%s' has %d tokens, fewer than one chunk of %ld\n", file, n_tok,
                n_ctx);
        goto done;
    }
    es_context_params cp = es_context_default_params();
    cp.n_ctx = (int)n_ctx;
    cp.n_batch = (int)n_ctx;
    cli_runtime_apply(&o.rt, &cp);
    if (es_context_create(model, &cp, &ctx) != ES_OK) {
        cli_fail("creating the context");
        goto done;
    }
    want = malloc((size_t)n_ctx);
    if (!want) goto done;
    int first = (int)n_ctx / 2;
    for (int j = 0; j < n_ctx; j++)
        want[j] = j >= first && j < n_ctx - 1;
    fprintf(stderr, "perplexity: %d tokens, %ld chunks of %ld, scoring the second half of each\n",
            n_tok, n_chunk, n_ctx);
    double nll = 0, nll2 = 0;
    long count = 0;
    double t0 = es_time_s();
    int32_t bos = es_vocab_bos(vocab);
    for (long c = 0; c < n_chunk; c++) {
        int32_t *chunk = toks + c * n_ctx;
        int32_t saved = chunk[0];
        if (bos >= 0) chunk[0] = bos;
        es_kv_clear(ctx, -1);
        es_batch b = {.n_tokens = (int)n_ctx, .token = chunk, .logits = want};
        es_status st = es_decode(ctx, &b);
        chunk[0] = saved;
        if (st != ES_OK) {
            cli_fail("running the model");
            goto done;
        }
        for (int j = first; j < n_ctx - 1; j++) {
            double lp = log_prob(es_get_logits(ctx, j), info.n_vocab, chunk[j + 1]);
            nll -= lp;
            nll2 += lp * lp;
            count++;
        }
        fprintf(stderr, "[%ld]%.4f,", c + 1, exp(nll / (double)count));
        if (c == 0) {
            double dt = es_time_s() - t0;
            fprintf(stderr, " (%.2f s per chunk, ETA %.1f s) ", dt, dt * (double)(n_chunk - 1));
        }
    }
    fprintf(stderr, "\n");
    double mean = nll / (double)count;
    double var = nll2 / (double)count - mean * mean;
    double err = count > 1 && var > 0 ? sqrt(var / (double)(count - 1)) : 0;
    printf("Final estimate: PPL = %.4f +/- %.5f\n", exp(mean), exp(mean) * err);
    fprintf(stderr, "perplexity: %ld tokens scored in %.2f s\n", count, es_time_s() - t0);
    rc = ES_EXIT_OK;
done:
    free(want);
    es_context_free(ctx);
    free(toks);
    free(text);
    es_model_free(model);
    return rc;
}
