/*
 * bench_steer.c — what steering and extraction cost, for the record.
 *
 *   bench_steer [-m MODEL] [--ev FILE] [--reps R] [--tokens N] [-t THREADS]
 *
 * (1) Decode: tokens/s of one sequence generating N tokens one es_decode at a time
 *     (after a 16-token prompt), without steering (A) and with a steering set of the
 *     five emotions mixed (joy 1, anger 0.5, sadness -0.5, fear 0.3, disgust 0.2) on
 *     every layer at block_out, ES_STEER_POS_ALL (B). A and B alternate R times in one
 *     run (the machine is shared: interleaving spreads its load over both); reported:
 *     the median tokens/s of each and the median of the per-repetition ratios B/A.
 * (2) Extraction: tokens/s of es_extract_response_means (16 sequences of 16 prompt +
 *     48 response tokens, one batch, block_out) against es_decode of the same tokens in
 *     the same batch (logits of the last token only), interleaved the same way.
 * Run from the repository root (the defaults are relative to it).
 */
#include "common.h"
#include "emosteer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *x, int n) {
    qsort(x, (size_t)n, sizeof *x, cmp_double);
    return n % 2 ? x[n / 2] : 0.5 * (x[n / 2 - 1] + x[n / 2]);
}

#define TRY(expr)                                                                                  \
    do {                                                                                           \
        if ((expr) != ES_OK) {                                                                     \
            fprintf(stderr, "bench_steer: %s: %s\n", #expr, es_last_error());                      \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

/* Generates n_gen tokens after the prompt, one es_decode each (token = a fixed walk
 * over the vocabulary, so both arms do identical work); returns tokens/s. */
static double decode_run(es_context *ctx, const int32_t *prompt, int n_prompt, int n_gen,
                         int n_vocab) {
    TRY(es_kv_clear(ctx, -1));
    es_batch b = {n_prompt, prompt, NULL, NULL, NULL};
    TRY(es_decode(ctx, &b));
    double t0 = es_time_s();
    for (int i = 0; i < n_gen; i++) {
        int32_t tok = (int32_t)((1000 + 37 * i) % n_vocab);
        es_batch one = {1, &tok, NULL, NULL, NULL};
        TRY(es_decode(ctx, &one));
    }
    return n_gen / (es_time_s() - t0);
}

int main(int argc, char **argv) {
    const char *model_path = "models/demo-16m.q8_0.gguf", *ev_path = "models/demo-16m.ev.gguf";
    int reps = 15, n_gen = 128, n_threads = 2;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "-m"))
            model_path = argv[i + 1];
        else if (!strcmp(argv[i], "--ev"))
            ev_path = argv[i + 1];
        else if (!strcmp(argv[i], "--reps"))
            reps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--tokens"))
            n_gen = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-t"))
            n_threads = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "bench_steer: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (reps < 1 || reps > 1000 || n_gen < 1 || n_threads < 1) {
        fprintf(stderr, "bench_steer: bad --reps/--tokens/-t\n");
        return 2;
    }
    es_model *model = NULL;
    es_ev_set *ev = NULL;
    es_steer_set *steer = NULL;
    TRY(es_model_load(model_path, NULL, &model));
    TRY(es_ev_set_load(ev_path, NULL, &ev));
    es_model_info mi;
    es_model_get_info(model, &mi);

    /* five emotions mixed, every layer, block_out, every position */
    static const char *const emos[] = {"joy", "anger", "sadness", "fear", "disgust"};
    static const float alphas[] = {1.0f, 0.5f, -0.5f, 0.3f, 0.2f};
    int32_t all_layers[ES_EV_MAX_LAYER];
    for (int l = 0; l < mi.n_layer; l++)
        all_layers[l] = l;
    TRY(es_steer_set_create(&steer));
    for (int e = 0; e < 5; e++) {
        es_steer_item it = es_steer_item_default();
        it.vectors = ev;
        it.emotion = emos[e];
        it.alpha = alphas[e];
        it.hook = ES_HOOK_BLOCK_OUT;
        it.layers = all_layers;
        it.n_layers = mi.n_layer;
        it.positions = ES_STEER_POS_ALL;
        TRY(es_steer_set_add(steer, &it));
    }

    /* (1) decode */
    es_context_params cp = es_context_default_params();
    cp.n_ctx = 16 + n_gen + 8;
    cp.n_threads = n_threads;
    es_context *plain = NULL, *steered = NULL;
    TRY(es_context_create(model, &cp, &plain));
    TRY(es_context_create(model, &cp, &steered));
    TRY(es_context_set_steering(steered, -1, steer));
    int32_t prompt[16];
    for (int i = 0; i < 16; i++)
        prompt[i] = (int32_t)(100 + 13 * i) % mi.n_vocab;
    decode_run(plain, prompt, 16, n_gen, mi.n_vocab); /* warm up caches and threads */
    decode_run(steered, prompt, 16, n_gen, mi.n_vocab);
    double *a = calloc((size_t)reps, sizeof *a), *b = calloc((size_t)reps, sizeof *b);
    double *r = calloc((size_t)reps, sizeof *r);
    if (!a || !b || !r) return 1;
    for (int k = 0; k < reps; k++) {
        /* alternate which arm goes first so a drift in load favours neither */
        if (k % 2 == 0) {
            a[k] = decode_run(plain, prompt, 16, n_gen, mi.n_vocab);
            b[k] = decode_run(steered, prompt, 16, n_gen, mi.n_vocab);
        } else {
            b[k] = decode_run(steered, prompt, 16, n_gen, mi.n_vocab);
            a[k] = decode_run(plain, prompt, 16, n_gen, mi.n_vocab);
        }
        r[k] = b[k] / a[k];
    }
    double ma = median(a, reps), mb = median(b, reps), mr = median(r, reps);
    printf("model %s (%d layers, d %d), %d threads, %d reps\n", model_path, mi.n_layer, mi.n_embd,
           n_threads, reps);
    printf("decode %d tokens, 1 sequence: plain %.1f tok/s, steered (5 emotions, %d layers, "
           "block_out, all "
           "positions) %.1f tok/s; ratio steered/plain: median of pairs %.4f, of medians %.4f\n",
           n_gen, ma, mi.n_layer, mb, mr, mb / ma);
    es_context_free(plain);
    es_context_free(steered);

    /* (2) extraction vs plain prompt processing */
    enum { NS = 16, NP = 16, NR = 48, NT = NP + NR };
    es_context_params xp = es_context_default_params();
    xp.n_ctx = NT;
    xp.n_seq_max = NS;
    xp.n_batch = NS * NT;
    xp.n_threads = n_threads;
    es_context *xc = NULL;
    TRY(es_context_create(model, &xp, &xc));
    int32_t *toks = malloc(sizeof *toks * NS * NT), *seq = malloc(sizeof *seq * NS * NT);
    float *mean = malloc(sizeof *mean * (size_t)NS * mi.n_layer * mi.n_embd);
    float *norm = malloc(sizeof *norm * (size_t)NS * mi.n_layer);
    es_extract_seq seqs[NS];
    if (!toks || !seq || !mean || !norm) return 1;
    for (int s = 0; s < NS; s++) {
        for (int t = 0; t < NT; t++) {
            toks[s * NT + t] = (int32_t)((7 + 31 * s + 17 * t) % mi.n_vocab);
            seq[s * NT + t] = s;
        }
        seqs[s] = (es_extract_seq){toks + s * NT, NT, NP};
    }
    es_batch full = {NS * NT, toks, NULL, seq, NULL};
    for (int k = 0; k < reps; k++) {
        double t0, t1;
        for (int arm = 0; arm < 2; arm++) {
            bool ext = (arm == 0) == (k % 2 == 0);
            TRY(es_kv_clear(xc, -1));
            t0 = es_time_s();
            if (ext)
                TRY(es_extract_response_means(xc, ES_HOOK_BLOCK_OUT, seqs, NS, mean, norm, NULL));
            else
                TRY(es_decode(xc, &full));
            t1 = es_time_s();
            if (ext)
                b[k] = NS * NT / (t1 - t0);
            else
                a[k] = NS * NT / (t1 - t0);
        }
        r[k] = b[k] / a[k];
    }
    ma = median(a, reps), mb = median(b, reps), mr = median(r, reps);
    printf("extraction, %d sequences x %d tokens (%d response): es_decode %.0f tok/s, "
           "es_extract_response_means %.0f tok/s; ratio extract/decode: median of pairs %.4f, of "
           "medians %.4f\n",
           NS, NT, NR, ma, mb, mr, mb / ma);
    free(toks);
    free(seq);
    free(mean);
    free(norm);
    free(a);
    free(b);
    free(r);
    es_context_free(xc);
    es_steer_set_free(steer);
    es_ev_set_free(ev);
    es_model_free(model);
    return 0;
}
