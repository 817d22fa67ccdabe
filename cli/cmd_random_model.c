/* cmd_random_model.c — `emosteer random-model --like SHAPE [--type MIX] -o OUT.gguf`:
 * writes a GGUF model with random weights at a real model's shape, for benchmarks
 * without downloads (es_random_model_write does the work). */
#include "cli.h"
#include "opts.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct rm_opts {
    cli_runtime_opts rt; /* only -t */
    int like, mix;       /* --like, --type: indices in es_random_model_likes / _mixes */
    uint64_t seed;       /* --seed */
    const char *out;     /* -o */
    bool quiet;          /* -q */
} rm_opts;

static const char *like_choice(int i) {
    return es_random_model_likes[i];
}
static const char *mix_choice(int i) {
    return es_random_model_mixes[i];
}

#define RO(f) offsetof(rm_opts, f)
static const cli_opt rm_own[] = {
    {NULL, "--like", NULL, CLI_CHOICE, 0, 0, RO(like), "the model shape (required)", like_choice,
     NULL, 0, 0},
    {NULL, "--type", NULL, CLI_CHOICE, 0, 0, RO(mix), "the tensor type mix", mix_choice, NULL,
     CLI_SHOW_DEFAULT, 0},
    {NULL, "--seed", "S", CLI_U64, 0, 0, RO(seed), "random seed", NULL, NULL, CLI_SHOW_DEFAULT, 0},
    {"-o", "--output", "PATH", CLI_PATH, 0, 0, RO(out),
     "the GGUF file to write (required; written atomically)", NULL, NULL, 0, 0},
    {"-q", "--quiet", NULL, CLI_FLAG, 0, 0, RO(quiet), "no progress on stderr", NULL, NULL, 0, 0},
};
static const cli_opt_group rm_group = {"options", rm_own, sizeof rm_own / sizeof rm_own[0]};

static const cli_group_use rm_groups[] = {
    {&rm_group, 0, 0},
    {&cli_runtime_group, RO(rt), CLI_RT_ALL & ~CLI_RT_THREADS},
};

static void rm_init(void *p) {
    rm_opts *o = p;
    es_random_model_params d = es_random_model_default_params();
    cli_runtime_init(&o->rt);
    o->like = -1;
    for (int i = 0; es_random_model_mixes[i]; i++)
        if (!strcmp(es_random_model_mixes[i], d.mix)) o->mix = i;
    o->seed = d.seed;
}

const cli_command cli_random_model_cmd = {
    "random-model",
    "--like SHAPE [--type MIX] [--seed S] [-t N] -o OUT.gguf",
    "Writes a complete GGUF model with random weights at the shape of a real model:\n"
    "real architecture keys, llama.cpp tensor names, a placeholder SentencePiece vocabulary\n"
    "of the real size (<unk> <s> </s>, 256 byte tokens, then t<i>). Matrices and biases\n"
    "are ~N(0, 0.02^2), norm weights 1 + N(0, 0.02^2). For speed benchmarks only: the\n"
    "model's text is noise. The file depends only on SHAPE, MIX and S.\n\n"
    "shapes (--like):\n"
    "  qwen2.5-0.5b   qwen2, 24 layers, d 896, 14 heads (2 KV) of 64, FFN 4864, vocab 151936,\n"
    "                 tied, Q/K/V biases, rope theta 1e6, rms eps 1e-6\n"
    "  llama-3.2-1b   llama, 16 layers, d 2048, 32 heads (8 KV) of 64, FFN 8192, vocab 128256,\n"
    "                 tied, rope theta 500000 with Llama 3 scaling (factor 32), rms eps 1e-5\n"
    "  demo-16m       llama, 8 layers, d 384, 6 heads (2 KV) of 64, FFN 1024, vocab 8192, tied\n"
    "  qwen3-30b-a3b  qwen3moe, 48 layers, d 2048, 32 heads (4 KV) of 128, Q/K norms, 128 experts\n"
    "                 of 768 (top-8), vocab 151936, tied, rope theta 1e6, rms eps 1e-6\n"
    "  qwen3-moe-tiny qwen3moe, 4 layers, d 256, 4 heads (2 KV) of 64, 8 experts of 256 (top-2),\n"
    "                 vocab 2048, tied: a small mixture of experts for tests and benchmarks\n"
    "  minicpm3-4b    minicpm3, 62 layers, d 2560, 40 heads, latent attention (q rank 768, kv "
    "rank\n"
    "                 256, K heads 96 with 32 RoPE'd, V heads 64), FFN 6400, vocab 73448, tied,\n"
    "                 no LongRoPE factors\n\n"
    "  baichuan2-7b   baichuan, 32 layers, d 4096, 32 heads of 128, FFN 11008, vocab 125696,\n"
    "                 untied (NormHead not modelled), RoPE, rms eps 1e-6\n"
    "  qwen2.5-7b     qwen2, 28 layers, d 3584, 28 heads (4 KV) of 128, FFN 18944, vocab 152064,\n"
    "                 untied, Q/K/V biases, rope theta 1e6, rms eps 1e-6\n"
    "  llama-3.1-8b   llama, 32 layers, d 4096, 32 heads (8 KV) of 128, FFN 14336, vocab 128256,\n"
    "                 untied, rope theta 500000 with Llama 3 scaling (factor 8), rms eps 1e-5\n\n"
    "type mixes (--type, default q8_0), as llama-quantize chooses them:\n"
    "  f16            every matrix F16\n"
    "  q8_0           every matrix Q8_0\n"
    "  q4_0           Q4_0; the output (token_embd when tied) Q6_K\n"
    "  q4_k_m         Q4_K; attn_v and ffn_down Q6_K in the first and last eighth of the\n"
    "                 layers and every third layer between; the output Q6_K\n"
    "  q5_k_m         as q4_k_m with Q5_K instead of Q4_K\n"
    "  q6_k           every matrix Q6_K\n"
    "  K-quants need rows of a multiple of 256: others fall back to Q5_0 (for Q4_K),\n"
    "  Q5_1 (Q5_K) or Q8_0 (Q6_K), as llama-quantize does (e.g. every d=896 row of\n"
    "  qwen2.5-0.5b). Norms, biases and rope factors are F32.",
    "-t defaults to every CPU here.",
    sizeof(rm_opts),
    rm_init,
    rm_groups,
    sizeof rm_groups / sizeof rm_groups[0],
    0,
};

static void progress(void *ud, int index, int count, const char *name, es_type type,
                     const int64_t *ne) {
    (void)ud;
    fprintf(stderr, "\r[%d/%d] %-28s %-5s %lld x %lld        ", index + 1, count, name,
            es_type_name(type), (long long)ne[0], (long long)ne[1]);
    if (index + 1 == count) fputc('\n', stderr);
}

int cmd_random_model(int argc, char **argv) {
    const char *cmd = "random-model";
    rm_opts o;
    int rc = cli_opts_parse(&cli_random_model_cmd, &o, argc, argv, NULL);
    if (rc >= 0) return rc;
    es_random_model_params p = es_random_model_default_params();
    p.like = o.like >= 0 ? es_random_model_likes[o.like] : NULL;
    p.mix = es_random_model_mixes[o.mix];
    p.seed = o.seed;
    p.n_threads = o.rt.n_threads > 0 ? o.rt.n_threads : es_cpu_count();
    const char *out = o.out;
    bool quiet = o.quiet;
    if (!p.like) return cli_usage_error(cmd, "--like SHAPE is required");
    if (!out) return cli_usage_error(cmd, "-o OUT.gguf is required");
    if ((rc = cli_check_output_file(cmd, out, "model.gguf")) >= 0) return rc;
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
