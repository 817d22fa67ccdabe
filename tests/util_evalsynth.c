/* util_evalsynth.c — see util_evalsynth.h. */
#include "util_evalsynth.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const es_synth_emotions[5] = {"joy", "anger", "disgust", "fear", "sadness"};
const char *const es_synth_labels[ES_SYNTH_N_LABELS] = {"anger", "disgust", "fear",
                                                        "joy",   "sadness", "neutral"};
const double es_synth_alphas[5] = {-1, 0, 1, 2, 4};

static double uniform(uint64_t *s) { /* xorshift64*, in [0, 1) */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return (double)((*s * 0x2545F4914F6CDD1Dull) >> 11) / 9007199254740992.0;
}

static const char *const openings[5] = {
    "What a wonderful morning, I could not stop smiling at everyone I met.",
    "This is outrageous, they ignored every promise they made to us.",
    "The smell in that kitchen was vile and the counters were sticky with old grease.",
    "I kept hearing footsteps behind me and my heart would not slow down.",
    "The house feels empty now and I miss the sound of her voice.",
};

static char *make_response(int e, double alpha, int q, uint64_t *rng) {
    char buf[1024];
    if (e == 0 && q == 0 && alpha == 1) {
        snprintf(buf, sizeof buf,
                 "<script>alert(1)</script> Tom & Jerry said \"hi\" \xff and left.");
    } else if (alpha >= 4 ||
               (alpha == 2 &&
                uniform(rng) < 0.1 * e)) { /* degenerate: the same phrase again and again */
        const char *w[5] = {"so happy", "so angry", "so gross", "so scared", "so sad"};
        int k = snprintf(buf, sizeof buf, "I am");
        for (int i = 0; i < 6 + (int)(uniform(rng) * 4); i++)
            k += snprintf(buf + k, sizeof buf - (size_t)k, " %s %s", w[e], w[e]);
    } else if (alpha < 0) {
        snprintf(buf, sizeof buf,
                 "The meeting is at ten and the report covers the second quarter, item %d.", q);
    } else {
        snprintf(buf, sizeof buf, "%s Then I walked to the station for query %d.", openings[e], q);
    }
    char *s = malloc(strlen(buf) + 1);
    if (s) strcpy(s, buf);
    return s;
}

es_gen_record *es_synth_records(int n_queries, double slope, uint64_t seed, size_t *n_records) {
    size_t n = (size_t)5 * 5 * (size_t)n_queries, k = 0;
    es_gen_record *recs = calloc(n, sizeof *recs);
    if (!recs) return NULL;
    uint64_t rng = seed | 1;
    for (int e = 0; e < 5; e++)
        for (int a = 0; a < 5; a++)
            for (int q = 0; q < n_queries; q++) {
                double alpha = es_synth_alphas[a];
                es_gen_record *r = &recs[k++];
                *r = es_gen_record_empty();
                char qid[32];
                snprintf(qid, sizeof qid, "neutral-%04d", q);
                r->emotion = malloc(16);
                r->query_id = malloc(32);
                r->prompt = malloc(64);
                r->response = make_response(e, alpha, q, &rng);
                r->scores = calloc(ES_SYNTH_N_LABELS, sizeof *r->scores);
                if (!r->emotion || !r->query_id || !r->prompt || !r->response || !r->scores) {
                    es_synth_records_free(recs, k);
                    return NULL;
                }
                strcpy(r->emotion, es_synth_emotions[e]);
                strcpy(r->query_id, qid);
                snprintf(r->prompt, 64, "Tell me about your plans for day %d.", q);
                r->alpha = alpha;
                r->sample = 0;
                r->seed = seed + k;
                r->n_tokens = 40;
                r->n_labels = ES_SYNTH_N_LABELS;
                /* target share: 0.06 + slope * alpha (flattening above 2), noise +-0.08;
                 * the next emotion in the list gets up to 0.6 x that (confusion), the
                 * others a little, neutral 0.5 x (1 - target) */
                double eff = alpha > 2 ? 2 + 0.3 * (alpha - 2) : alpha;
                double target =
                    fmin(fmax(0.06 + slope * eff + (uniform(&rng) - 0.5) * 0.16, 0), 0.95);
                int tl = -1, cl = -1;
                for (int l = 0; l < ES_SYNTH_N_LABELS; l++) {
                    if (!strcmp(es_synth_labels[l], es_synth_emotions[e])) tl = l;
                    if (!strcmp(es_synth_labels[l], es_synth_emotions[(e + 1) % 5])) cl = l;
                }
                for (int l = 0; l < 5; l++)
                    r->scores[l] = 0.04 * uniform(&rng);
                r->scores[cl] = 0.6 * target * uniform(&rng);
                r->scores[tl] = target;
                r->scores[5] = 0.5 * (1 - target);
                r->valence = (e == 0 ? 0.4 : -0.4) * eff / 2 + (uniform(&rng) - 0.5) * 0.2;
                r->ppl = 18 + 6 * fabs(alpha) + 4 * uniform(&rng);
                r->topic = 0.82 - 0.07 * fabs(alpha) + (uniform(&rng) - 0.5) * 0.1;
            }
    *n_records = k;
    return recs;
}

void es_synth_records_free(es_gen_record *recs, size_t n) {
    if (!recs) return;
    for (size_t i = 0; i < n; i++)
        es_gen_record_clear(&recs[i]);
    free(recs);
}

es_eval_results *es_synth_results(int n_queries, double slope, uint64_t seed, const char *model) {
    size_t n = 0;
    es_gen_record *recs = es_synth_records(n_queries, slope, seed, &n);
    if (!recs) return NULL;
    es_eval_settings set = {0};
    set.model_name = (char *)model;
    set.model_path = (char *)"models/demo-16m.q8_0.gguf";
    set.model_sha256 = (char *)"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    set.ev_path = (char *)"out/ev.gguf";
    set.ev_sha256 = (char *)"fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";
    set.method = (char *)"mean-diff";
    set.hook = (char *)"block_out";
    set.layers = (char *)"2-5";
    set.query_file = (char *)"data/queries/emosteer-queries.json";
    set.scorer = (char *)"lexicon";
    set.created = (char *)"2025-01-01T00:00:00Z";
    set.seed = seed;
    set.n_samples = 1;
    set.max_tokens = 48;
    es_eval_kv extra[2] = {{(char *)"temperature", (char *)"0.7"},
                           {(char *)"note <b>", (char *)"x < y & z"}};
    set.n_extra = 2;
    set.extra = extra;
    es_summary_params p = es_summary_default_params();
    p.samples_per_cell = 2;
    es_eval_results *r = NULL;
    es_status st = es_eval_summarize(recs, n, es_synth_emotions, 5, es_synth_alphas, 5,
                                     es_synth_labels, ES_SYNTH_N_LABELS, &set, &p, &r);
    es_synth_records_free(recs, n);
    return st == ES_OK ? r : NULL;
}
