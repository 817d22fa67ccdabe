/*
 * bench_steer_study.c — where does steering the demo model work? For each hook/layer
 * selection, emotion and alpha, generates sampled continuations of the held-out prompts
 * (tests/util_steer_study.h: every prompt x sample, temp 0.8, fixed seeds shared by all
 * cells) and prints the mean lexicon target share and mean rep-4 as markdown tables.
 *
 *   bench_steer_study [--ev FILE] [--attn-ev FILE] [--configs "block_out:3;attn_out:2-4;..."]
 *                     [--emotions joy,anger,...] [--alphas -1,0,1,2] [--samples S]
 *                     [--prompts-max N] [-n N] [--norms]
 *
 * Layer selections: "all", "A-B" or "L,L,...". hook block_out uses --ev, attn_out --attn-ev;
 * block_out_c / attn_out_c their centered versions (v_e - base, see centered_from).
 * Run from the repository root (the defaults are relative to it).
 */
#include "util_steer_study.h"

#include "common.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ALPHAS 16
#define MAX_EMOS 8
#define MAX_CONFIGS 64

typedef struct config {
    char hook[16];
    char layers[32];
    int32_t list[64];
    int n_list; /* 0 = all */
} config;

static int parse_floats(const char *s, float *out, int cap) {
    int n = 0;
    char *dup = es_strdup(s), *save = NULL;
    for (char *t = strtok_r(dup, ",", &save); t && n < cap; t = strtok_r(NULL, ",", &save))
        out[n++] = strtof(t, NULL);
    free(dup);
    return n;
}

static bool parse_layers(const char *spec, int n_layer, config *c) {
    snprintf(c->layers, sizeof c->layers, "%s", spec);
    c->n_list = 0;
    if (!strcmp(spec, "all")) return true;
    int a, b;
    if (!strchr(spec, ',') && sscanf(spec, "%d-%d", &a, &b) == 2) {
        if (a < 0 || b < a || b >= n_layer) return false;
        for (int l = a; l <= b; l++)
            c->list[c->n_list++] = l;
        return true;
    }
    char *dup = es_strdup(spec), *save = NULL;
    for (char *t = strtok_r(dup, ",", &save); t && c->n_list < 64; t = strtok_r(NULL, ",", &save)) {
        int l = atoi(t);
        if (l < 0 || l >= n_layer) {
            free(dup);
            return false;
        }
        c->list[c->n_list++] = l;
    }
    free(dup);
    return c->n_list > 0;
}

static void print_norms(const es_ev_set *ev, const char *const *emos, int n_emos) {
    printf("\n|v_l| / act_norm_l at hook %s:\n\n| emotion |", es_hook_name(es_ev_set_hook(ev)));
    int L = es_ev_set_n_layer(ev), d = es_ev_set_n_embd(ev);
    for (int l = 0; l < L; l++)
        printf(" L%d |", l);
    printf("\n|---|");
    for (int l = 0; l < L; l++)
        printf("---|");
    printf("\n| act_norm |");
    for (int l = 0; l < L; l++)
        printf(" %.1f |", es_ev_set_act_norm(ev, l));
    printf("\n");
    for (int e = 0; e < n_emos; e++) {
        printf("| %s |", emos[e]);
        for (int l = 0; l < L; l++) {
            const float *v = es_ev_set_get(ev, emos[e], l);
            double s = 0;
            for (int i = 0; v && i < d; i++)
                s += (double)v[i] * v[i];
            double an = es_ev_set_act_norm(ev, l);
            printf(" %.3f |", an > 0 ? sqrt(s) / an : NAN);
        }
        printf("\n");
    }
}

/* The centered set (ES_EXTRACT_CENTERED) from a mean_diff set: v_e - base at every
 * layer, where base (all emotions pooled against neutral) equals the mean of the
 * emotions' mean_diff vectors when every class has the same number of samples. Prints
 * how far base is from that mean. */
static es_ev_set *centered_from(const es_ev_set *md, const char *const *emos, int n_emos) {
    int d = es_ev_set_n_embd(md), L = es_ev_set_n_layer(md);
    es_ev_set *c = NULL;
    if (es_ev_set_create(d, es_ev_set_hook(md), &c) != ES_OK) return NULL;
    float *v = malloc((size_t)d * sizeof *v);
    double worst = 0, scale = 0;
    for (int l = 0; l < L; l++) {
        const float *base = es_ev_set_get(md, "base", l);
        if (!base) continue;
        for (int i = 0; i < d; i++) {
            double m = 0;
            int k = 0;
            for (int e = 0; e < es_ev_set_n_emotions(md); e++) {
                const char *name = es_ev_set_emotion(md, e);
                if (strcmp(name, "base") && es_ev_set_get(md, name, l))
                    m += es_ev_set_get(md, name, l)[i], k++;
            }
            m /= k;
            if (fabs(m - base[i]) > worst) worst = fabs(m - base[i]);
            if (fabs(base[i]) > scale) scale = fabs(base[i]);
        }
        for (int e = 0; e < n_emos; e++) {
            const float *ve = es_ev_set_get(md, emos[e], l);
            if (!ve) continue;
            for (int i = 0; i < d; i++)
                v[i] = ve[i] - base[i];
            es_ev_set_put(c, emos[e], l, v);
        }
        es_ev_set_set_act_norm(c, l, es_ev_set_act_norm(md, l));
    }
    fprintf(stderr, "centered %s: max |base - mean of emotions| %.2e (max |base| %.2e)\n",
            es_hook_name(es_ev_set_hook(md)), worst, scale);
    free(v);
    return c;
}

int main(int argc, char **argv) {
    const char *ev_path = "models/demo-16m.ev.gguf", *attn_path = "models/demo-16m.attn.ev.gguf";
    const char *configs =
        "block_out:3;block_out:2-4;block_out:all;attn_out:3;attn_out:2-4;attn_out:all";
    const char *emotions = "joy,anger,sadness,fear,disgust";
    float alphas[MAX_ALPHAS];
    int n_alphas = parse_floats("-1,0,0.5,1,1.5,2,3,4", alphas, MAX_ALPHAS);
    bool norms = false;
    es_study_params sp = es_study_default_params();
    sp.model = "models/demo-16m.q8_0.gguf";
    sp.prompts = "data/queries/heldout-prompts.txt";
    sp.lexicon = "data/lexicon";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--norms")) {
            norms = true;
            continue;
        }
        if (!v) {
            fprintf(stderr,
                    "bench_steer_study: bad or incomplete option %s (see the file header)\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "--ev"))
            ev_path = v;
        else if (!strcmp(a, "--attn-ev"))
            attn_path = v;
        else if (!strcmp(a, "--configs"))
            configs = v;
        else if (!strcmp(a, "--emotions"))
            emotions = v;
        else if (!strcmp(a, "--alphas"))
            n_alphas = parse_floats(v, alphas, MAX_ALPHAS);
        else if (!strcmp(a, "--samples"))
            sp.n_samples = atoi(v);
        else if (!strcmp(a, "--prompts-max"))
            sp.max_prompts = atoi(v);
        else if (!strcmp(a, "-n"))
            sp.n_predict = atoi(v);
        else if (!strcmp(a, "-m"))
            sp.model = v;
        else if (!strcmp(a, "-t"))
            sp.n_threads = atoi(v);
        else {
            fprintf(stderr, "bench_steer_study: unknown option %s\n", a);
            return 2;
        }
    }
    const char *emos[MAX_EMOS];
    int n_emos = 0;
    char *emo_dup = es_strdup(emotions), *save = NULL;
    for (char *t = strtok_r(emo_dup, ",", &save); t && n_emos < MAX_EMOS;
         t = strtok_r(NULL, ",", &save))
        emos[n_emos++] = t;
    es_study *st = NULL;
    es_ev_set *ev[4] = {NULL, NULL, NULL, NULL}; /* block_out, attn_out, their centered sets */
    if (es_study_create(&sp, &st) != ES_OK || es_ev_set_load(ev_path, NULL, &ev[0]) != ES_OK ||
        es_ev_set_load(attn_path, NULL, &ev[1]) != ES_OK) {
        fprintf(stderr, "bench_steer_study: %s\n", es_last_error());
        return 1;
    }
    ev[2] = centered_from(ev[0], emos, n_emos);
    ev[3] = centered_from(ev[1], emos, n_emos);
    if (norms) {
        print_norms(ev[0], emos, n_emos);
        print_norms(ev[1], emos, n_emos);
    }
    config cfg[MAX_CONFIGS];
    int n_cfg = 0;
    char *cfg_dup = es_strdup(configs);
    save = NULL;
    for (char *t = strtok_r(cfg_dup, ";", &save); t && n_cfg < MAX_CONFIGS;
         t = strtok_r(NULL, ";", &save)) {
        char *colon = strchr(t, ':');
        if (!colon) continue;
        *colon = '\0';
        config *c = &cfg[n_cfg];
        snprintf(c->hook, sizeof c->hook, "%s", t);
        if ((strcmp(t, "block_out") && strcmp(t, "attn_out") && strcmp(t, "block_out_c") &&
             strcmp(t, "attn_out_c")) ||
            !parse_layers(colon + 1, es_study_n_layer(st), c)) {
            fprintf(stderr, "bench_steer_study: bad config %s:%s\n", t, colon + 1);
            return 2;
        }
        n_cfg++;
    }
    printf("\nsteering study: %d prompts x %d samples, %d tokens, temp %.2f, seed %llu; target = "
           "mean lexicon "
           "label probability of the steered emotion; rep4 = mean rep-4\n",
           es_study_n_prompts(st), sp.n_samples, sp.n_predict, sp.temp,
           (unsigned long long)sp.seed);
    double t0 = es_time_s();
    es_study_cell base;
    if (es_study_run(st, NULL, &base) != ES_OK) {
        fprintf(stderr, "bench_steer_study: %s\n", es_last_error());
        return 1;
    }
    printf("unsteered (%.1f s): rep4 %.3f, degenerate %.3f, labels:", es_time_s() - t0, base.rep4,
           base.degenerate);
    for (int k = 0; k <= ES_EMO_COUNT; k++)
        printf(" %s %.4f", es_emotion_name(k), base.label[k]);
    printf("\nexample: %s\n\n", base.example);
    free(base.example);

    printf("| hook | layers | emotion |");
    for (int a = 0; a < n_alphas; a++)
        printf(" a=%g |", alphas[a]);
    printf(" rep4 at each alpha |\n|---|---|---|");
    for (int a = 0; a < n_alphas; a++)
        printf("---|");
    printf("---|\n");
    fflush(stdout);
    for (int c = 0; c < n_cfg; c++) {
        const char *h = cfg[c].hook;
        const es_ev_set *set = !strcmp(h, "block_out")     ? ev[0]
                               : !strcmp(h, "attn_out")    ? ev[1]
                               : !strcmp(h, "block_out_c") ? ev[2]
                                                           : ev[3];
        for (int e = 0; e < n_emos; e++) {
            es_emotion emo;
            if (es_emotion_parse(emos[e], &emo) != ES_OK) {
                fprintf(stderr, "bench_steer_study: %s\n", es_last_error());
                return 2;
            }
            double target[MAX_ALPHAS], rep4[MAX_ALPHAS];
            for (int a = 0; a < n_alphas; a++) {
                es_study_cell cell;
                es_steer_set *ss = NULL;
                if (alphas[a] != 0.0f &&
                    es_study_steer(set, emos[e], alphas[a], cfg[c].n_list ? cfg[c].list : NULL,
                                   cfg[c].n_list, &ss) != ES_OK) {
                    fprintf(stderr, "bench_steer_study: %s\n", es_last_error());
                    return 1;
                }
                if (alphas[a] == 0.0f) {
                    target[a] = base.label[emo];
                    rep4[a] = base.rep4;
                } else if (es_study_run(st, ss, &cell) != ES_OK) {
                    fprintf(stderr, "bench_steer_study: %s\n", es_last_error());
                    return 1;
                } else {
                    target[a] = cell.label[emo];
                    rep4[a] = cell.rep4;
                    if (alphas[a] == alphas[n_alphas - 1] && getenv("STUDY_EXAMPLES"))
                        fprintf(stderr, "[%s %s %s a=%g] %s\n", cfg[c].hook, cfg[c].layers, emos[e],
                                alphas[a], cell.example);
                    free(cell.example);
                }
                es_steer_set_free(ss);
            }
            printf("| %s | %s | %s |", cfg[c].hook, cfg[c].layers, emos[e]);
            for (int a = 0; a < n_alphas; a++)
                printf(" %.4f |", target[a]);
            printf(" ");
            for (int a = 0; a < n_alphas; a++)
                printf("%s%.2f", a ? " " : "", rep4[a]);
            printf(" |\n");
            fflush(stdout);
        }
    }
    fprintf(stderr, "bench_steer_study: %.1f s\n", es_time_s() - t0);
    for (int i = 0; i < 4; i++)
        es_ev_set_free(ev[i]);
    es_study_free(st);
    free(cfg_dup);
    free(emo_dup);
    return 0;
}
