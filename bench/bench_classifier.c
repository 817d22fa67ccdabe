/*
 * bench_classifier.c — responses/s of an encoder classifier at the shape of
 * distilroberta-base / a 6-layer BERT (6 layers, d_model 768, 12 heads, FFN 3072,
 * 7 labels, pooler present), on texts of 128 tokens, through es_classifier_classify.
 *
 *   bench_classifier [--threads N] [--texts N] [--tokens T] [--type f16|q8_0|f32] [--keep FILE]
 *
 * The model is a random GGUF written to /tmp (F16 matrices by default, as llama.cpp's
 * converter writes them; a WordPiece vocabulary of [PAD] [UNK] [CLS] [SEP] and the 26
 * letters, word-initial and continued). A text is T − 2 one-letter words, so each row
 * is exactly T tokens. Prints the forward FLOPs per response and the GFLOP/s reached.
 * --keep FILE writes the model to FILE and the texts to FILE.txt (one a line) and keeps both,
 * for llama.cpp's llama-embedding on the same file (bench/compare_classifier.sh).
 */
#include "common.h"
#include "types.h"

#include "emosteer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { N_LAYER = 6, D = 768, N_HEAD = 12, N_FF = 3072, N_POS = 514, N_LABELS = 7 };

static uint64_t rng = 88172645463325252ull;
static float frand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 40) & 0xffffff) / 16777216.0f * 2.0f - 1.0f;
}

/* A random tensor [ne1][ne0] of `type` (scale/sqrt(ne0)), or a constant when fill is set. */
static es_status add(es_gguf_writer *w, const char *name, es_type type, int64_t ne0, int64_t ne1,
                     float scale, bool constant) {
    float *f = malloc((size_t)(ne0 * ne1) * sizeof *f);
    void *q = malloc(es_row_size(type, ne0) * (size_t)ne1 + 64);
    if (!f || !q) return ES_ERR_NOMEM;
    for (int64_t i = 0; i < ne0 * ne1; i++)
        f[i] = constant ? scale : frand() * scale / sqrtf((float)ne0) * 1.7f;
    if (type == ES_TYPE_F32)
        memcpy(q, f, (size_t)(ne0 * ne1) * sizeof *f);
    else
        es_type_get(type)->from_float(f, q, ne0 * ne1);
    int64_t ne[2] = {ne0, ne1};
    es_status st = es_gguf_writer_add_tensor(w, name, type, ne1 > 1 ? 2 : 1, ne, q);
    free(f);
    free(q);
    return st;
}

static es_status write_model(const char *path, es_type mtype) {
    es_gguf_writer *w = es_gguf_writer_new();
    es_gguf_writer_set_str(w, "general.architecture", "bert");
    es_gguf_writer_set_str(w, "general.name", "bench-encoder-6x768");
    es_gguf_writer_set_u32(w, "bert.block_count", N_LAYER);
    es_gguf_writer_set_u32(w, "bert.context_length", N_POS);
    es_gguf_writer_set_u32(w, "bert.embedding_length", D);
    es_gguf_writer_set_u32(w, "bert.feed_forward_length", N_FF);
    es_gguf_writer_set_u32(w, "bert.attention.head_count", N_HEAD);
    es_gguf_writer_set_f32(w, "bert.attention.layer_norm_epsilon", 1e-5f);
    es_gguf_writer_set_bool(w, "bert.attention.causal", false);
    static const char *const labels[N_LABELS] = {"anger",   "disgust", "fear",    "joy",
                                                 "neutral", "sadness", "surprise"};
    es_gguf_writer_set_arr_str(w, "bert.classifier.output_labels", labels, N_LABELS);
    /* vocabulary: 4 specials, "▁a".."▁z", "a".."z" */
    char store[56][8];
    const char *toks[56];
    int32_t types[56];
    static const char *const sp[4] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]"};
    for (int i = 0; i < 4; i++) {
        toks[i] = sp[i];
        types[i] = i == 1 ? 2 : 3;
    }
    for (int i = 0; i < 26; i++) {
        snprintf(store[i], sizeof store[i], "\xE2\x96\x81%c", 'a' + i);
        snprintf(store[26 + i], sizeof store[26 + i], "%c", 'a' + i);
        toks[4 + i] = store[i];
        toks[30 + i] = store[26 + i];
        types[4 + i] = types[30 + i] = 1;
    }
    es_gguf_writer_set_str(w, "tokenizer.ggml.model", "bert");
    es_gguf_writer_set_u32(w, "tokenizer.ggml.token_type_count", 1); /* rows of token_types */
    es_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, 56);
    es_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", ES_GGUF_INT32, types, 56);
    es_gguf_writer_set_u32(w, "tokenizer.ggml.padding_token_id", 0);
    es_gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", 1);
    es_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 2);
    es_gguf_writer_set_u32(w, "tokenizer.ggml.seperator_token_id", 3);
    es_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 3);
    es_status st = add(w, "token_embd.weight", ES_TYPE_F16, D, 56, 0.5f, false);
    if (st == ES_OK) st = add(w, "position_embd.weight", ES_TYPE_F32, D, N_POS, 0.5f, false);
    if (st == ES_OK) st = add(w, "token_types.weight", ES_TYPE_F32, D, 1, 0.5f, false);
    if (st == ES_OK) st = add(w, "token_embd_norm.weight", ES_TYPE_F32, D, 1, 1.0f, true);
    if (st == ES_OK) st = add(w, "token_embd_norm.bias", ES_TYPE_F32, D, 1, 0.0f, true);
    char name[64];
    static const char *const mats[][2] = {{"attn_q", "d"},      {"attn_k", "d"}, {"attn_v", "d"},
                                          {"attn_output", "d"}, {"ffn_up", "f"}, {"ffn_down", "b"}};
    for (int l = 0; st == ES_OK && l < N_LAYER; l++) {
        for (int k = 0; st == ES_OK && k < 6; k++) {
            const int64_t n_in = mats[k][1][0] == 'b' ? N_FF : D,
                          n_out = mats[k][1][0] == 'f' ? N_FF : D;
            snprintf(name, sizeof name, "blk.%d.%s.weight", l, mats[k][0]);
            st = add(w, name, mtype, n_in, n_out, 1.0f, false);
            snprintf(name, sizeof name, "blk.%d.%s.bias", l, mats[k][0]);
            if (st == ES_OK) st = add(w, name, ES_TYPE_F32, n_out, 1, 0.1f, false);
        }
        static const char *const norms[2] = {"attn_output_norm", "layer_output_norm"};
        for (int k = 0; st == ES_OK && k < 2; k++) {
            snprintf(name, sizeof name, "blk.%d.%s.weight", l, norms[k]);
            st = add(w, name, ES_TYPE_F32, D, 1, 1.0f, true);
            snprintf(name, sizeof name, "blk.%d.%s.bias", l, norms[k]);
            if (st == ES_OK) st = add(w, name, ES_TYPE_F32, D, 1, 0.0f, true);
        }
    }
    if (st == ES_OK) st = add(w, "cls.weight", mtype, D, D, 1.0f, false);
    if (st == ES_OK) st = add(w, "cls.bias", ES_TYPE_F32, D, 1, 0.1f, false);
    if (st == ES_OK) st = add(w, "cls.output.weight", ES_TYPE_F16, D, N_LABELS, 1.0f, false);
    if (st == ES_OK) st = add(w, "cls.output.bias", ES_TYPE_F32, N_LABELS, 1, 0.1f, false);
    if (st == ES_OK) st = es_gguf_writer_write(w, path);
    es_gguf_writer_free(w);
    return st;
}

int main(int argc, char **argv) {
    int n_threads = es_cpu_count(), n_texts = 64, T = 128;
    const char *keep = NULL;
    es_type mtype = ES_TYPE_F16;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            n_threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--texts") && i + 1 < argc)
            n_texts = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--tokens") && i + 1 < argc)
            T = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--type") && i + 1 < argc) {
            const char *t = argv[++i];
            mtype = !strcmp(t, "q8_0")  ? ES_TYPE_Q8_0
                    : !strcmp(t, "f32") ? ES_TYPE_F32
                                        : ES_TYPE_F16;
        } else if (!strcmp(argv[i], "--keep") && i + 1 < argc) {
            keep = argv[++i];
        } else {
            fprintf(stderr, "usage: bench_classifier [--threads N] [--texts N] [--tokens T] "
                            "[--type f16|q8_0|f32] [--keep FILE]\n");
            return 2;
        }
    }
    if (n_threads < 1 || n_texts < 1 || T < 3 || T > N_POS) return 2;
    char path[4096];
    if (keep)
        snprintf(path, sizeof path, "%s", keep);
    else
        snprintf(path, sizeof path, "/tmp/bench_classifier_%d.gguf", (int)getpid());
    if (write_model(path, mtype) != ES_OK) {
        fprintf(stderr, "cannot write the model: %s\n", es_last_error());
        return 1;
    }
    es_model *m = NULL;
    es_classifier *c = NULL;
    if (es_model_load(path, NULL, &m) != ES_OK || es_classifier_create(m, n_threads, &c) != ES_OK) {
        fprintf(stderr, "cannot load: %s\n", es_last_error());
        return 1;
    }
    /* texts of T - 2 one-letter words: [CLS] + T - 2 + [SEP] = T tokens */
    char **texts = calloc((size_t)n_texts, sizeof *texts);
    for (int i = 0; i < n_texts; i++) {
        texts[i] = malloc((size_t)(T - 2) * 2 + 1);
        for (int k = 0; k < T - 2; k++) {
            texts[i][2 * k] = (char)('a' + (i * 7 + k * 3) % 26);
            texts[i][2 * k + 1] = ' ';
        }
        texts[i][(T - 2) * 2] = '\0';
    }
    if (keep) {
        char tpath[4200];
        snprintf(tpath, sizeof tpath, "%s.txt", keep);
        FILE *f = fopen(tpath, "w");
        for (int i = 0; f && i < n_texts; i++)
            fprintf(f, "%s\n", texts[i]);
        if (f) fclose(f);
    }
    int32_t *tok = NULL, *ty = NULL;
    int n = 0;
    es_classifier_tokenize(c, texts[0], NULL, &tok, &ty, &n);
    free(tok);
    free(ty);
    float *probs = malloc((size_t)n_texts * N_LABELS * sizeof *probs);
    es_classifier_classify(c, (const char *const *)texts, NULL, ES_MIN(n_texts, 8),
                           probs); /* warm up */
    double best = 1e30;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = es_time_s();
        if (es_classifier_classify(c, (const char *const *)texts, NULL, n_texts, probs) != ES_OK) {
            fprintf(stderr, "classify: %s\n", es_last_error());
            return 1;
        }
        double dt = es_time_s() - t0;
        best = dt < best ? dt : best;
    }
    const double flops = (double)N_LAYER * T * 2.0 * (4.0 * D * D + 2.0 * D * N_FF) +
                         (double)N_LAYER * 2.0 * 2.0 * T * T * D;
    printf("encoder 6x768 (FFN 3072, %s matrices), %d tokens per response (%d from the text), %d "
           "threads:\n",
           es_type_name(mtype), T, n, n_threads);
    printf("  %.1f responses/s  (%d responses in %.3f s, best of 3; %.2f GFLOP per response, %.1f "
           "GFLOP/s)\n",
           n_texts / best, n_texts, best, flops / 1e9, flops * n_texts / best / 1e9);
    printf("  first probs: %.4f %.4f %.4f ...\n", probs[0], probs[1], probs[2]);
    for (int i = 0; i < n_texts; i++)
        free(texts[i]);
    free(texts);
    free(probs);
    es_classifier_free(c);
    es_model_free(m);
    if (!keep) remove(path);
    return 0;
}
