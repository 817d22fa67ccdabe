/* cmd_random_model.c — `emosteer random-model --like SHAPE [--type MIX] -o OUT.gguf`:
 * writes a GGUF model with random weights at a real model's shape, for benchmarks
 * without downloads (es_random_model_write does the work). */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

static void random_model_help(FILE *f) {
    fprintf(
        f,
        "usage: emosteer random-model --like SHAPE [--type MIX] [--seed S] [-t N] -o OUT.gguf\n\n"
        "Writes a complete GGUF model with random weights at the shape of a real model:\n"
        "real architecture keys, llama.cpp tensor names, a placeholder SentencePiece vocabulary\n"
        "of the real size (<unk> <s> </s>, 256 byte tokens, then t<i>). Matrices and biases\n"
        "are ~N(0, 0.02^2), norm weights 1 + N(0, 0.02^2). For speed benchmarks only: the\n"
        "model's text is noise. The file depends only on SHAPE, MIX and S.\n\n"
        "shapes (--like):\n"
        "  qwen2.5-0.5b   qwen2, 24 layers, d 896, 14 heads (2 KV) of 64, FFN 4864, vocab 151936,\n"
        "                 tied, Q/K/V biases, rope theta 1e6, rms eps 1e-6\n"
        "  llama-3.2-1b   llama, 16 layers, d 2048, 32 heads (8 KV) of 64, FFN 8192, vocab "
        "128256,\n"
        "                 tied, rope theta 500000 with Llama 3 scaling (factor 32), rms eps 1e-5\n"
        "  demo-16m       llama, 8 layers, d 384, 6 heads (2 KV) of 64, FFN 1024, vocab 8192, "
        "tied\n\n"
        "type mixes (--type, default q8_0), as llama-quantize chooses them:\n"
        "  f16            every matrix F16\n"
        "  q8_0           every matrix Q8_0\n"
        "  q4_0           Q4_0; token_embd (the tied output) Q6_K\n"
        "  q4_k_m         Q4_K; attn_v and ffn_down Q6_K in the first and last eighth of the\n"
        "                 layers and every third layer between; token_embd Q6_K\n"
        "  q5_k_m         as q4_k_m with Q5_K instead of Q4_K\n"
        "  q6_k           every matrix Q6_K\n"
        "  K-quants need rows of a multiple of 256: others fall back to Q5_0 (for Q4_K),\n"
        "  Q5_1 (Q5_K) or Q8_0 (Q6_K), as llama-quantize does (e.g. every d=896 row of\n"
        "  qwen2.5-0.5b). Norms, biases and rope factors are F32.\n\n"
        "options:\n"
        "  --like SHAPE       the model shape (required)\n"
        "  --type MIX         the tensor type mix (default q8_0)\n"
        "  --seed S           random seed (default 1)\n"
        "  -t, --threads N    threads for generating and quantizing (default: all CPUs)\n"
        "  -o, --output PATH  the GGUF file to write (required; written atomically)\n"
        "  -q, --quiet        no progress on stderr\n"
        "  -h, --help         this help\n");
}

static bool in_list(const char *s, const char *const *list) {
    for (int i = 0; list[i]; i++)
        if (!strcmp(s, list[i])) return true;
    return false;
}

static void progress(void *ud, int index, int count, const char *name, es_type type,
                     const int64_t *ne) {
    (void)ud;
    fprintf(stderr, "\r[%d/%d] %-28s %-5s %lld x %lld        ", index + 1, count, name,
            es_type_name(type), (long long)ne[0], (long long)ne[1]);
    if (index + 1 == count) fputc('\n', stderr);
}

int cmd_random_model(int argc, char **argv) {
    const char *cmd = "random-model";
    es_random_model_params p = es_random_model_default_params();
    p.like = NULL;
    p.n_threads = es_cpu_count();
    const char *out = NULL;
    bool quiet = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const bool has_val = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            random_model_help(stdout);
            return ES_EXIT_OK;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            quiet = true;
        } else if (!strcmp(a, "--like") && has_val) {
            p.like = argv[++i];
            if (!in_list(p.like, es_random_model_likes))
                return cli_usage_error(
                    cmd, "unknown shape '%s' (qwen2.5-0.5b, llama-3.2-1b, demo-16m)", p.like);
        } else if (!strcmp(a, "--type") && has_val) {
            p.mix = argv[++i];
            if (!in_list(p.mix, es_random_model_mixes))
                return cli_usage_error(
                    cmd, "unknown type mix '%s' (f16, q8_0, q4_0, q4_k_m, q5_k_m, q6_k)", p.mix);
        } else if (!strcmp(a, "--seed") && has_val) {
            long v;
            if (!cli_parse_int(argv[++i], 0, 2147483647L, &v))
                return cli_usage_error(cmd, "--seed wants an integer 0..2147483647, not '%s'",
                                       argv[i]);
            p.seed = (uint64_t)v;
        } else if ((!strcmp(a, "-t") || !strcmp(a, "--threads")) && has_val) {
            long v;
            if (!cli_parse_int(argv[++i], 1, 512, &v))
                return cli_usage_error(cmd, "--threads wants an integer 1..512, not '%s'", argv[i]);
            p.n_threads = (int)v;
        } else if ((!strcmp(a, "-o") || !strcmp(a, "--output")) && has_val) {
            out = argv[++i];
        } else {
            return cli_usage_error(cmd, "unknown option or missing value: '%s'", a);
        }
    }
    if (!p.like) return cli_usage_error(cmd, "--like SHAPE is required");
    if (!out) return cli_usage_error(cmd, "-o OUT.gguf is required");
    if (!quiet) p.progress = progress;

    const double t0 = es_time_s();
    uint64_t n_params = 0;
    if (es_random_model_write(&p, out, &n_params) != ES_OK) {
        if (!quiet) fputc('\n', stderr);
        return cli_fail("random-model");
    }
    printf("wrote %s: %s shape, %s mix, %.1fM parameters, seed %llu, %.1f s\n", out, p.like, p.mix,
           (double)n_params / 1e6, (unsigned long long)p.seed, es_time_s() - t0);
    return ES_EXIT_OK;
}
