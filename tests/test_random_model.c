/*
 * test_random_model.c — the random-weights GGUF generator (es_random_model_write, emosteer.h):
 * a demo-16m-shaped model in the q4_k_m mix has the real hparams, llama.cpp's tensor
 * names and shapes, llama-quantize's type choices (with the K-quant fallbacks for
 * 384-wide rows), values of the promised distribution, is the same file for 1 and 2
 * threads, and loads and runs in the engine.
 */
#include "gguf.h"
#include "quants_k.h"
#include "random_model.h"
#include "testutil.h"
#include "types.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void check_u32(const es_gguf *g, const char *key, uint32_t want) {
    uint32_t v = 0;
    es_status st = es_gguf_get_u32(g, key, &v);
    CHECK(st == ES_OK && v == want, "%s = %u (status %d), want %u", key, v, st, want);
}

static void check_type(const es_gguf *g, const char *name, int type, int64_t ne0, int64_t ne1) {
    const es_gguf_tensor *t = es_gguf_find_tensor(g, name);
    if (!CHECK(t, "tensor %s missing", name)) return;
    CHECK((int)t->type == type && t->ne[0] == ne0 && t->ne[1] == ne1,
          "%s: %s [%lld, %lld], want %s [%lld, %lld]", name, es_type_name(t->type),
          (long long)t->ne[0], (long long)t->ne[1], es_type_name(type), (long long)ne0,
          (long long)ne1);
}

/* Mean and standard deviation of a tensor, dequantized. */
static void tensor_stats(const es_gguf_tensor *t, double *mean, double *sd) {
    const int64_t n = t->ne[0] * t->ne[1];
    float *f = malloc(sizeof *f * (size_t)n);
    es_type_get(t->type)->to_float(t->data, f, n);
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < n; i++) {
        s += f[i];
        s2 += (double)f[i] * f[i];
    }
    *mean = s / (double)n;
    *sd = sqrt(fmax(s2 / (double)n - *mean * *mean, 0));
    free(f);
}

static void check_file(const char *path) {
    es_gguf *g = NULL;
    if (!CHECK(es_gguf_open(path, &g) == ES_OK, "open %s: %s", path, es_last_error())) return;
    char *arch = es_gguf_get_str_dup(g, "general.architecture");
    CHECK(arch && !strcmp(arch, "llama"), "architecture %s", arch ? arch : "(none)");
    free(arch);
    check_u32(g, "llama.block_count", 8);
    check_u32(g, "llama.embedding_length", 384);
    check_u32(g, "llama.feed_forward_length", 1024);
    check_u32(g, "llama.attention.head_count", 6);
    check_u32(g, "llama.attention.head_count_kv", 2);
    check_u32(g, "general.file_type", 15);
    es_gguf_vtype et;
    uint64_t n_tok = 0;
    CHECK(es_gguf_get_arr(g, "tokenizer.ggml.tokens", &et, &n_tok) == ES_OK && n_tok == 8192,
          "vocabulary of %llu tokens", (unsigned long long)n_tok);
    es_gguf_str t259 = es_gguf_arr_str(g, "tokenizer.ggml.tokens", 259);
    es_gguf_str t3 = es_gguf_arr_str(g, "tokenizer.ggml.tokens", 3);
    CHECK(t259.len == 4 && !memcmp(t259.ptr, "t259", 4) && t3.len == 6 &&
              !memcmp(t3.ptr, "<0x00>", 6),
          "token pieces");
    CHECK(es_gguf_n_tensors(g) == 2 + 8 * 9, "%lld tensors, want 74",
          (long long)es_gguf_n_tensors(g));
    CHECK(!es_gguf_find_tensor(g, "output.weight"), "output.weight present in a tied model");

    /* the q4_k_m mix: rows of 384 cannot be K-quants (Q4_K -> Q5_0, Q6_K -> Q8_0);
     * ffn_down rows are 1024: Q6_K in layers 0, 3, 6, 7 (use_more_bits), else Q4_K */
    check_type(g, "token_embd.weight", ES_TYPE_Q8_0, 384, 8192);
    check_type(g, "output_norm.weight", ES_TYPE_F32, 384, 1);
    check_type(g, "blk.0.attn_q.weight", ES_TYPE_Q5_0, 384, 384);
    check_type(g, "blk.0.attn_k.weight", ES_TYPE_Q5_0, 384, 128);
    check_type(g, "blk.0.attn_v.weight", ES_TYPE_Q8_0, 384, 128);
    check_type(g, "blk.1.attn_v.weight", ES_TYPE_Q5_0, 384, 128);
    check_type(g, "blk.2.attn_output.weight", ES_TYPE_Q5_0, 384, 384);
    check_type(g, "blk.2.ffn_gate.weight", ES_TYPE_Q5_0, 384, 1024);
    const int more_bits[8] = {1, 0, 0, 1, 0, 0, 1, 1};
    for (int l = 0; l < 8; l++) {
        char name[64];
        snprintf(name, sizeof name, "blk.%d.ffn_down.weight", l);
        check_type(g, name, more_bits[l] ? ES_TYPE_Q6_K : ES_TYPE_Q4_K, 1024, 384);
    }

    /* values: matrices ~N(0, 0.02²), norms ~1 */
    const char *mats[] = {"token_embd.weight", "blk.0.attn_q.weight", "blk.1.ffn_down.weight",
                          "blk.3.ffn_down.weight"};
    for (size_t i = 0; i < ES_ARRAY_LEN(mats); i++) {
        double mean, sd;
        tensor_stats(es_gguf_find_tensor(g, mats[i]), &mean, &sd);
        printf("%-24s mean %+.5f sd %.5f\n", mats[i], mean, sd);
        CHECK(fabs(mean) < 0.001 && fabs(sd - 0.02) < 0.001, "%s: mean %g sd %g, want 0, 0.02",
              mats[i], mean, sd);
    }
    double mean, sd;
    tensor_stats(es_gguf_find_tensor(g, "blk.5.ffn_norm.weight"), &mean, &sd);
    CHECK(fabs(mean - 1) < 0.005 && fabs(sd - 0.02) < 0.003, "ffn_norm: mean %g sd %g", mean, sd);

    /* a K-quant tensor read by the scalar reference directly */
    const es_gguf_tensor *down = es_gguf_find_tensor(g, "blk.3.ffn_down.weight");
    float row[1024];
    es_to_float_q6_K_ref(down->data, row, 1024);
    double s2 = 0;
    for (int i = 0; i < 1024; i++)
        s2 += (double)row[i] * row[i];
    CHECK(fabs(sqrt(s2 / 1024) - 0.02) < 0.003, "ffn_down row 0 rms %g", sqrt(s2 / 1024));
    es_gguf_close(g);
}

/* The model loads and produces finite logits. */
static void check_runs(const char *path) {
    es_model *model = NULL;
    es_model_params mp = es_model_default_params();
    if (!CHECK(es_model_load(path, &mp, &model) == ES_OK, "load: %s", es_last_error())) return;
    es_context_params cp = es_context_default_params();
    cp.n_ctx = 64;
    cp.n_threads = 2;
    es_context *ctx = NULL;
    if (CHECK(es_context_create(model, &cp, &ctx) == ES_OK, "context: %s", es_last_error())) {
        const int32_t toks[6] = {1, 300, 301, 4000, 8191, 42};
        es_batch b = {6, toks, NULL, NULL, NULL};
        if (CHECK(es_decode(ctx, &b) == ES_OK, "decode: %s", es_last_error())) {
            const float *logits = es_get_logits(ctx, 5);
            bool finite = logits != NULL;
            double amax = 0;
            for (int i = 0; finite && i < 8192; i++) {
                finite = isfinite(logits[i]);
                amax = fmax(amax, fabs(logits[i]));
            }
            printf("random model runs: max |logit| %.4f\n", amax);
            CHECK(finite && amax > 0, "logits not finite or all zero");
        }
        es_context_free(ctx);
    }
    es_model_free(model);
}

int main(void) {
    char dir[] = "/tmp/es_random_model_XXXXXX";
    if (!mkdtemp(dir)) {
        printf("cannot create a temporary folder\n");
        return 1;
    }
    char p1[128], p2[128];
    snprintf(p1, sizeof p1, "%s/a.gguf", dir);
    snprintf(p2, sizeof p2, "%s/b.gguf", dir);

    es_random_model_params rp = es_random_model_default_params();
    rp.like = "demo-16m";
    rp.mix = "q4_k_m";
    rp.seed = 7;
    rp.n_threads = 2;
    uint64_t n_params = 0;
    const double t0 = es_time_s();
    es_status st = es_random_model_write(&rp, p1, &n_params);
    CHECK(st == ES_OK, "write: %s", es_last_error());
    printf("demo-16m q4_k_m: %.2fM parameters in %.2f s\n", (double)n_params / 1e6,
           es_time_s() - t0);
    CHECK(n_params ==
              8192ull * 384 + 384 + 8 * (2 * 384 + 384 * 384 * 2 + 384 * 128 * 2 + 3 * 384 * 1024),
          "parameter count %llu", (unsigned long long)n_params);
    rp.n_threads = 1;
    CHECK(es_random_model_write(&rp, p2, NULL) == ES_OK, "write (1 thread): %s", es_last_error());

    size_t n1 = 0, n2 = 0;
    char *a = es_test_read_file(p1, &n1), *b = es_test_read_file(p2, &n2);
    CHECK(a && b && n1 == n2 && !memcmp(a, b, n1),
          "1 and 2 threads give different files (%zu, %zu bytes)", n1, n2);
    free(a);
    free(b);

    rp.like = "gpt-17";
    CHECK(es_random_model_write(&rp, p2, NULL) == ES_ERR_INVALID_ARG, "unknown shape accepted");
    rp.like = "demo-16m";
    rp.mix = "q3_k_s";
    CHECK(es_random_model_write(&rp, p2, NULL) == ES_ERR_INVALID_ARG, "unknown mix accepted");

    if (st == ES_OK) {
        check_file(p1);
        check_runs(p1);
    }
    unlink(p1);
    unlink(p2);
    rmdir(dir);
    return es_test_finish();
}
