/*
 * cmd_bench.c — `emosteer bench`: llama-bench-style throughput of prompt processing
 * (ppN: N tokens in one batch) and generation (tgN: N single-token decodes), as
 * tokens/s mean ± standard deviation over repetitions, one row per test.
 */
#include "cli.h"
#include "opts.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

typedef struct bench_opts {
    cli_runtime_opts rt;
    long n_prompt, n_gen, reps; /* -p, -n, -r */
    int format;                 /* -o: 0 md, 1 csv */
} bench_opts;

static const char *format_choice(int i) {
    static const char *const names[] = {"md", "csv", NULL};
    return i >= 0 && i < 2 ? names[i] : NULL;
}

#define BO(f) offsetof(bench_opts, f)
static const cli_opt bench_own[] = {
    {"-p", "--n-prompt", "N", CLI_LONG, 0, 1 << 16, BO(n_prompt), "prompt tokens, 0 to skip", NULL,
     NULL, CLI_SHOW_DEFAULT, 0},
    {"-n", "--n-gen", "N", CLI_LONG, 0, 1 << 16, BO(n_gen), "generated tokens, 0 to skip", NULL,
     NULL, CLI_SHOW_DEFAULT, 0},
    {"-r", "--repetitions", "REPS", CLI_LONG, 1, 1000, BO(reps), "repetitions", NULL, NULL,
     CLI_SHOW_DEFAULT, 0},
    {"-o", "--output-format", NULL, CLI_CHOICE, 0, 0, BO(format), "output format", format_choice,
     NULL, CLI_SHOW_DEFAULT, 0},
};
static const cli_opt_group bench_group = {"options", bench_own,
                                          sizeof bench_own / sizeof bench_own[0]};

static const cli_group_use bench_groups[] = {
    {&bench_group, 0, 0},
    {&cli_runtime_group, BO(rt), CLI_RT_CTX | CLI_RT_BATCH},
};

static void bench_init(void *p) {
    bench_opts *o = p;
    cli_runtime_init(&o->rt);
    o->n_prompt = 512;
    o->n_gen = 128;
    o->reps = 5;
}

const cli_command cli_bench_cmd = {
    "bench",
    "[-m MODEL] [-p N_PROMPT] [-n N_GEN] [-t THREADS] [-r REPS] [options]",
    "Measures prompt processing (ppN) and generation (tgN) speed like llama-bench.",
    NULL,
    sizeof(bench_opts),
    bench_init,
    bench_groups,
    sizeof bench_groups / sizeof bench_groups[0],
    0,
};

typedef struct run_stats {
    double mean, sd;
} run_stats;

static run_stats stats(const double *v, int n) {
    run_stats s = {0, 0};
    for (int i = 0; i < n; i++)
        s.mean += v[i];
    s.mean /= n;
    for (int i = 0; i < n; i++)
        s.sd += (v[i] - s.mean) * (v[i] - s.mean);
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
    bench_opts o;
    int rc = cli_opts_parse(&cli_bench_cmd, &o, argc, argv, NULL);
    if (rc >= 0) return rc;
    const char *model_path = o.rt.model;
    long n_prompt = o.n_prompt, n_gen = o.n_gen, reps = o.reps;
    bool csv = o.format == 1;
    es_model_params mp = es_model_default_params();
    es_model *model = NULL;
    if (es_model_load(model_path, &mp, &model) != ES_OK) return cli_fail("loading the model");
    es_model_info info;
    es_model_get_info(model, &info);

    es_context_params cp = es_context_default_params();
    long need = n_prompt > n_gen ? n_prompt : n_gen;
    cp.n_ctx = (int)(need + 1);
    cp.n_batch = n_prompt > 1 ? (int)n_prompt : 1;
    cli_runtime_apply(&o.rt, &cp);
    es_context *ctx = NULL;
    if (es_context_create(model, &cp, &ctx) != ES_OK) {
        es_model_free(model);
        return cli_fail("creating the context");
    }
    int32_t *toks = malloc(sizeof *toks * (size_t)(need + 1));
    double *tps = malloc(sizeof *tps * (size_t)reps);
    rc = ES_EXIT_OK;
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
    /* which kernels ran (on stderr with CSV, so the table stays clean) */
    fprintf(csv ? stderr : stdout, "kernels: %s\n", es_kernel_paths());
    if (csv)
        printf("model,size_mib,params,threads,test,tps_mean,tps_sd\n");
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
            printf("%s,%.2f,%llu,%d,%s,%.2f,%.2f\n",
                   info.name && *info.name ? info.name : info.arch, size_mib,
                   (unsigned long long)info.n_params, cp.n_threads, name, s.mean, s.sd);
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
