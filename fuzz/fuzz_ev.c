/*
 * fuzz_ev.c — fuzzes the emotion-vector loader (emosteer GGUF, llama.cpp control
 * vectors, the seed paper's JSON) through es_ev_set_load_memory, and the lexicon:
 * the input as an emotions.tsv and as text to score.
 *
 * Invariants checked (abort on violation): a loaded set has >= 1 emotion, every
 * present vector is finite, and n_layer covers them; a score's valence is in [-1, 1]
 * and its shares are in [0, 1].
 *
 * Seeds: an emosteer multi-emotion GGUF, a control vector and a JSON file, generated
 * into a temporary folder; built in: a small JSON vector file.
 */
#include "emosteer.h"
#include "ev.h"
#include "fuzz_seeds.h"
#include "lexicon.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile uint64_t sink;

static const char k_tsv[] = "happy\tjoy\t1\nsad\tsadness\t1\nangry\tanger\t0.7\nscared\tfear\t1\n"
                            "gross\tdisgust\t1\nawful\tdisgust\t0.5\nawful\tsadness\t0.5\n";
static const char k_vader[] = "happy\t2.7\t0.9\t[1]\nsad\t-2.1\t0.9\t[1]\ngood\t1.9\t1\t[1]\n";

static void check_set(const es_ev_set *s) {
    int n_emo = es_ev_set_n_emotions(s), n_layer = es_ev_set_n_layer(s), d = es_ev_set_n_embd(s);
    if (n_emo < 1 || d < 1) abort();
    for (int e = 0; e < n_emo; e++) {
        const char *name = es_ev_set_emotion(s, e);
        if (!es_ev_name_valid(name) || es_ev_set_find(s, name) != e) abort();
        for (int l = 0; l < n_layer + 2; l++) {
            const float *v = es_ev_set_get(s, name, l);
            if (v == NULL) continue;
            if (l >= n_layer) abort();
            for (int i = 0; i < d; i++)
                if (!isfinite(v[i])) abort();
            sink += (uint64_t)(v[0] > 0) + (uint64_t)(v[d - 1] > 0);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    es_ev_set *s = NULL;
    if (es_ev_set_load_memory(data, size, NULL, &s) == ES_OK) {
        check_set(s);
        es_ev_set_free(s);
    }
    static es_lexicon *lex;
    if (lex == NULL &&
        es_lexicon_load_memory(k_tsv, sizeof k_tsv - 1, k_vader, sizeof k_vader - 1, &lex) != ES_OK)
        abort();
    es_lexicon_score sc;
    if (es_lexicon_score_text(lex, (const char *)data, size, &sc) != ES_OK) abort();
    if (!(sc.valence >= -1.0f && sc.valence <= 1.0f) || sc.n_emotion_words > sc.n_words) abort();
    for (int e = 0; e < ES_EMO_COUNT; e++)
        if (!(sc.share[e] >= 0.0f && sc.share[e] <= 1.0f)) abort();
    es_lexicon *l2 = NULL;
    if (es_lexicon_load_memory((const char *)data, size, k_vader, sizeof k_vader - 1, &l2) ==
        ES_OK) {
        sink += (uint64_t)es_lexicon_n_emotion_words(l2);
        es_lexicon_free(l2);
    }
    return 0;
}

/* ---- seeds ---- */

static char g_seed_dir[64];

static void remove_seeds(void) {
    static const char *const names[] = {"multi.gguf", "cv.gguf", "vec.json"};
    char p[128];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", g_seed_dir, names[i]);
        unlink(p);
    }
    rmdir(g_seed_dir);
}

int es_fuzz_seed_paths(char paths[][4096], int max) {
    snprintf(g_seed_dir, sizeof g_seed_dir, "/tmp/es_fuzz_ev_XXXXXX");
    if (max < 3 || mkdtemp(g_seed_dir) == NULL) return 0;
    atexit(remove_seeds);
    es_ev_set *s = NULL;
    if (es_ev_set_create(4, ES_HOOK_BLOCK_OUT, &s) != ES_OK) return 0;
    float v[4] = {0.5f, -1.0f, 2.0f, 0.25f};
    es_ev_set_put(s, "joy", 1, v);
    es_ev_set_put(s, "joy", 2, v);
    es_ev_set_put(s, "fear", 0, v);
    es_ev_set_set_act_norm(s, 1, 3.0f);
    int n = 0;
    snprintf(paths[n], 4096, "%s/multi.gguf", g_seed_dir);
    if (es_ev_set_save(s, paths[n]) == ES_OK) n++;
    snprintf(paths[n], 4096, "%s/cv.gguf", g_seed_dir);
    if (es_ev_set_export_control_vector(s, "joy", 2.0f, false, paths[n]) == ES_OK) n++;
    es_ev_set_free(s);
    snprintf(paths[n], 4096, "%s/vec.json", g_seed_dir);
    FILE *f = fopen(paths[n], "w");
    if (f) {
        fputs("{\"0\": [[0.1, -0.2, 3e-3]], \"1\": [[1, 2, 3]], \"2\": [[-0.5, 0.5, 0]]}\n", f);
        fclose(f);
        n++;
    }
    return n;
}

const uint8_t *es_fuzz_builtin_seed(size_t *n) {
    static const char seed[] = "{\"1\": [0.5, -2, 3e-2], \"0\": [[1, 2, 3.25]]} I'm not happy, "
                               "but SAD!! happy\tjoy\t1\n";
    *n = sizeof seed - 1;
    return (const uint8_t *)seed;
}
