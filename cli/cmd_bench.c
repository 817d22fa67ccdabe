/*
 * cmd_bench.c — `emosteer bench`: llama-bench-style throughput of prompt processing
 * (ppN: N tokens in one batch) and generation (tgN: N single-token decodes), as
 * tokens/s mean ± standard deviation over repetitions, one row per test.
 */
#include "cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void help(void) {
    printf("usage: emosteer bench [-m MODEL] [-p N_PROMPT] [-n N_GEN] [-t THREADS] [-r REPS]\n"
           "                      [--kv-type f32|f16] [--numerics fast|llamacpp]\n\n"
           "Measures prompt processing (ppN) and generation (tgN) speed like llama-bench.\n\n"
           "  -m MODEL     GGUF model (default: %s)\n"
           "  -p N         prompt tokens, 0 to skip (default 512)\n"
           "  -n N         generated tokens, 0 to skip (default 128)\n"
           "  -t THREADS   worker threads (default: all cores, at most 8)\n"
           "  -r REPS      repetitions (default 5)\n"
           "  -o md|csv    output format (default md)\n"
           "  --kv-type T  KV cache type: f32 (default, exact) or f16 (llama.cpp's)\n"
           "  --numerics N fast (default) or llamacpp (quantized sums in llama.cpp's order\n"
           "               everywhere; slower Q8_0 prompts on VNNI CPUs)\n",
           cli_default_model());
}

typedef struct run_stats {
    double mean, sd;
} run_stats;

static run_stats stats(const double *v, int n) {
    run_stats s = {0, 0};
    for (int i = 0; i < n; i++) s.mean += v[i];
    s.mean /= n;
    for (int i = 0; i < n; i++) s.sd += (v[i] - s.mean) * (v[i] - s.mean);
    s.sd = n > 1 ? sqrt(s.sd / (n - 1)) : 0;
    return s;
}

/* One repetition: returns tokens/s, or negative on failure. */
static double run_once(es_context *ctx, const int32_t *toks, int n_prompt, int n_gen) {
    es_kv_clear(ctx, -1);
    double t0 = es_time_s();
    if (n_prompt > 0) {
        es_batch b = {.n_tokens = n_prompt, .token = toks};
        if (es_decode(ctx, &b) != ES_OK) return -1;
        return n_prompt / (es_time_s() - t0);
    }
    /* tg: start from an empty cache, like llama-bench, one token at a time */
    for (int i = 0; i < n_gen; i++) {
        es_batch b = {.n_tokens = 1, .token = &toks[i]};
        if (es_decode(ctx, &b) != ES_OK) return -1;
    }
    return n_gen / (es_time_s() - t0);
}

int cmd_bench(int argc, char **argv) {
    const char *model_path = NULL;
    long n_prompt = 512, n_gen = 128, n_threads = 0, reps = 5;
    es_kv_type kv_type = ES_KV_F32;
    es_numerics numerics = ES_NUMERICS_FAST;
    bool csv = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            help();
            return ES_EXIT_OK;
        } else if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && v) {
            model_path = v, i++;
        } else if ((!strcmp(a, "-p") || !strcmp(a, "--n-prompt")) && v) {
            if (!cli_parse_int(v, 0, 1 << 16, &n_prompt))
                return cli_usage_error("bench", "-p wants a token count, got '%s'", v);
            i++;
        } else if ((!strcmp(a, "-n") || !strcmp(a, "--n-gen")) && v) {
            if (!cli_parse_int(v, 0, 1 << 16, &n_gen))
                return cli_usage_error("bench", "-n wants a token count, got '%s'", v);
            i++;
        } else if ((!strcmp(a, "-t") || !strcmp(a, "--threads")) && v) {
            if (!cli_parse_int(v, 1, 1024, &n_threads))
                return cli_usage_error("bench", "-t wants a thread count >= 1, got '%s'", v);
            i++;
        } else if ((!strcmp(a, "-r") || !strcmp(a, "--repetitions")) && v) {
            if (!cli_parse_int(v, 1, 1000, &reps))
                return cli_usage_error("bench", "-r wants a count >= 1, got '%s'", v);
            i++;
        } else if (!strcmp(a, "--kv-type") && v) {
            if (es_kv_type_parse(v, &kv_type) != ES_OK)
                return cli_usage_error("bench", "--kv-type wants f32 or f16, got '%s'", v);
            i++;
        } else if (!strcmp(a, "--numerics") && v) {
            if (es_numerics_parse(v, &numerics) != ES_OK)
                return cli_usage_error("bench", "--numerics wants fast or llamacpp, got '%s'", v);
            i++;
        } else if (!strcmp(a, "-o") && v) {
            if (strcmp(v, "md") && strcmp(v, "csv"))
                return cli_usage_error("bench", "-o wants md or csv, got '%s'", v);
            csv = !strcmp(v, "csv");
            i++;
        } else {
            return cli_usage_error("bench", "unknown or incomplete option '%s'", a);
        }
    }
    if (!model_path) model_path = cli_default_model();
    es_model_params mp = es_model_default_params();
    es_model *model = NULL;
    if (es_model_load(model_path, &mp, &model) != ES_OK) return cli_fail("loading the model");
    es_model_info info;
    es_model_get_info(model, &info);

    es_context_params cp = es_context_default_params();
    long need = n_prompt > n_gen ? n_prompt : n_gen;
    cp.n_ctx = (int)(need + 1);
    cp.n_batch = n_prompt > 1 ? (int)n_prompt : 1;
    if (n_threads > 0) cp.n_threads = (int)n_threads;
    cp.kv_type = kv_type;
    cp.numerics = numerics;
    es_context *ctx = NULL;
    if (es_context_create(model, &cp, &ctx) != ES_OK) {
        es_model_free(model);
        return cli_fail("creating the context");
    }
    int32_t *toks = malloc(sizeof *toks * (size_t)(need + 1));
    double *tps = malloc(sizeof *tps * (size_t)reps);
    int rc = ES_EXIT_OK;
    if (!toks || !tps) {
        rc = ES_EXIT_FAIL;
        goto done;
    }
    uint64_t r = 0x2545F4914F6CDD1Dull;
    for (long i = 0; i <= need; i++) {
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        toks[i] = (int32_t)(r % (uint64_t)info.n_vocab);
    }
    double size_mib = (double)info.weight_bytes / (1024.0 * 1024.0);
    if (csv) printf("model,size_mib,params,threads,test,tps_mean,tps_sd\n");
    else {
        printf("| model | size | params | backend | threads | test | t/s |\n");
        printf("| --- | ---: | ---: | --- | ---: | ---: | ---: |\n");
    }
    for (int test = 0; test < 2; test++) {
        long n = test == 0 ? n_prompt : n_gen;
        if (n == 0) continue;
        /* one warm-up run, then the measured repetitions */
        if (run_once(ctx, toks, test == 0 ? (int)n : 0, test == 0 ? 0 : (int)n) < 0) {
            rc = cli_fail("running the model");
            goto done;
        }
        for (long k = 0; k < reps; k++)
            tps[k] = run_once(ctx, toks, test == 0 ? (int)n : 0, test == 0 ? 0 : (int)n);
        run_stats s = stats(tps, (int)reps);
        char name[32];
        snprintf(name, sizeof name, "%s%ld", test == 0 ? "pp" : "tg", n);
        if (csv)
            printf("%s,%.2f,%llu,%d,%s,%.2f,%.2f\n", info.name && *info.name ? info.name : info.arch,
                   size_mib, (unsigned long long)info.n_params, cp.n_threads, name, s.mean, s.sd);
        else
            printf("| %s %s | %.2f MiB | %.2f M | CPU | %d | %s | %.2f ± %.2f |\n", info.arch,
                   info.name ? info.name : "", size_mib, (double)info.n_params / 1e6, cp.n_threads,
                   name, s.mean, s.sd);
        fflush(stdout);
    }
done:
    free(tps);
    free(toks);
    es_context_free(ctx);
    es_model_free(model);
    return rc;
}
