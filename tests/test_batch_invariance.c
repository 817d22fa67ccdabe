/*
 * test_batch_invariance.c — es_context_params.batch_invariant: a sequence's logits are
 * bit-identical whether it is decoded alone (its prompt in one batch, then one token
 * per step) or in prompt chunks of 3, 5 or 7 tokens beside other sequences with other
 * steering, at any index of batches of 1..9 tokens. On the demo model (Q8_0), its F16
 * version (../shared) and random models of the demo's shape with Q4_0, Q4_K_M and Q6_K
 * weights, with 2 threads, on whatever kernel path the environment selects (the suite
 * runs under ES_NO_AVX512, ES_NO_VNNI and ES_FORCE_SCALAR too). Without batch_invariant
 * the largest difference is printed (the multi-token paths sum in other orders).
 */
#include "emosteer.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef ES_MIN
#define ES_MIN(a, b) ((a) < (b) ? (a) : (b))
#endif

#define N_PROMPT 13
#define N_STEPS 6
#define N_SEQ 4

/* token ids below 8192, the demo's vocabulary */
static const int32_t k_prompt[N_PROMPT] = {1,   450, 5497, 1147, 322, 278, 2030,
                                           471, 263, 1781, 2988, 13,  3750};
static const int32_t k_steps[N_STEPS] = {306, 4966, 1048, 2989, 541, 372};

/* Logits of the reference sequence: [0] after its prompt, [1 + k] after step k. */
typedef struct run {
    float *logits[N_STEPS + 1];
} run;

static void run_free(run *r) {
    for (int i = 0; i <= N_STEPS; i++)
        free(r->logits[i]);
}

static es_steer_set *steering(const es_ev_set *ev, const char *emotion, float alpha) {
    es_steer_set *s = NULL;
    if (!ev || es_steer_set_create(&s) != ES_OK) return NULL;
    es_steer_item it = es_steer_item_default();
    it.vectors = ev;
    it.emotion = emotion;
    it.alpha = alpha;
    if (es_steer_set_add(s, &it) != ES_OK) {
        es_steer_set_free(s);
        return NULL;
    }
    return s;
}

static bool keep(run *r, int slot, const es_context *ctx, int b, int n_vocab) {
    const float *l = es_get_logits(ctx, b);
    if (!l) return false;
    r->logits[slot] = malloc(sizeof(float) * (size_t)n_vocab);
    if (!r->logits[slot]) return false;
    memcpy(r->logits[slot], l, sizeof(float) * (size_t)n_vocab);
    return true;
}

/* The reference sequence alone, in sequence 0. */
static bool alone(es_context *ctx, const es_steer_set *st, int n_vocab, run *r) {
    es_kv_clear(ctx, -1);
    es_context_set_steering(ctx, -1, NULL);
    es_context_set_steering(ctx, 0, st);
    es_context_set_prompt_len(ctx, 0, N_PROMPT);
    int32_t pos[N_PROMPT], seq[N_PROMPT] = {0};
    int8_t lg[N_PROMPT] = {0};
    for (int i = 0; i < N_PROMPT; i++)
        pos[i] = i;
    lg[N_PROMPT - 1] = 1;
    es_batch b = {N_PROMPT, k_prompt, pos, seq, lg};
    if (es_decode(ctx, &b) != ES_OK || !keep(r, 0, ctx, N_PROMPT - 1, n_vocab)) return false;
    for (int k = 0; k < N_STEPS; k++) {
        int32_t p = N_PROMPT + k, s = 0;
        int8_t one = 1;
        es_batch sb = {1, &k_steps[k], &p, &s, &one};
        if (es_decode(ctx, &sb) != ES_OK || !keep(r, 1 + k, ctx, 0, n_vocab)) return false;
    }
    return true;
}

/* The same tokens in sequence 2, mixed: its prompt in chunks of `chunk` after the other
 * sequences' tokens, then each step beside one token of each other sequence, the
 * reference at index (k % 4). */
static bool mixed(es_context *ctx, const es_steer_set *st, const es_steer_set *other, int chunk,
                  int n_vocab, run *r) {
    es_kv_clear(ctx, -1);
    es_context_set_steering(ctx, -1, other);
    es_context_set_steering(ctx, 2, st);
    es_context_set_prompt_len(ctx, -1, -1);
    es_context_set_prompt_len(ctx, 2, N_PROMPT);
    int32_t tok[16], pos[16], seq[16];
    int8_t lg[16];
    int other_pos[N_SEQ] = {0}, done = 0, step = 0, kstep = 0;
    while (done < N_PROMPT || kstep < N_STEPS) {
        int n = 0, ref = -1;
        const int n_other = 1 + step % 3; /* 1..3 other tokens per batch */
        for (int s = 0, placed = 0; s < N_SEQ && placed < n_other; s++) {
            if (s == 2) continue;
            for (int j = 0; j < (step % 2 ? 2 : 1) && n < 9; j++) {
                tok[n] = 100 + 37 * s + other_pos[s];
                pos[n] = other_pos[s]++;
                seq[n] = s;
                lg[n] = 1;
                n++;
            }
            placed++;
        }
        if (done < N_PROMPT) {
            int k = ES_MIN(chunk, N_PROMPT - done);
            for (int j = 0; j < k; j++, done++) {
                tok[n] = k_prompt[done];
                pos[n] = done;
                seq[n] = 2;
                lg[n] = done == N_PROMPT - 1;
                if (lg[n]) ref = n;
                n++;
            }
        } else {
            /* the reference token at index kstep % (n + 1) */
            int at = kstep % (n + 1);
            memmove(tok + at + 1, tok + at, sizeof *tok * (size_t)(n - at));
            memmove(pos + at + 1, pos + at, sizeof *pos * (size_t)(n - at));
            memmove(seq + at + 1, seq + at, sizeof *seq * (size_t)(n - at));
            memmove(lg + at + 1, lg + at, sizeof *lg * (size_t)(n - at));
            tok[at] = k_steps[kstep];
            pos[at] = N_PROMPT + kstep;
            seq[at] = 2;
            lg[at] = 1;
            ref = at;
            n++;
        }
        es_batch b = {n, tok, pos, seq, lg};
        if (es_decode(ctx, &b) != ES_OK) return false;
        if (ref >= 0) {
            int slot = done == N_PROMPT && pos[ref] == N_PROMPT - 1 ? 0 : 1 + kstep++;
            if (!keep(r, slot, ctx, ref, n_vocab)) return false;
        }
        step++;
    }
    return true;
}

static void check_model(const char *name, const char *path, const es_ev_set *ev) {
    es_model *m = NULL;
    es_model_params mp = es_model_default_params();
    if (!CHECK(es_model_load(path, &mp, &m) == ES_OK, "%s: load %s: %s", name, path,
               es_last_error()))
        return;
    es_model_info info;
    es_model_get_info(m, &info);
    const int n_vocab = info.n_vocab;
    es_steer_set *st = steering(ev, "joy", 1.5f), *other = steering(ev, "anger", -2.0f);
    for (int inv = 1; inv >= 0; inv--) {
        es_context_params cp = es_context_default_params();
        cp.n_ctx = 64;
        cp.n_seq_max = N_SEQ;
        cp.n_batch = 32;
        cp.n_threads = 2;
        cp.batch_invariant = inv;
        es_context *ctx = NULL;
        if (!CHECK(es_context_create(m, &cp, &ctx) == ES_OK, "%s: context", name)) break;
        run ref = {0};
        CHECK(alone(ctx, st, n_vocab, &ref), "%s: alone: %s", name, es_last_error());
        static const int chunks[] = {3, 5, 7, 13};
        double worst = 0;
        for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
            run mix = {0};
            if (CHECK(mixed(ctx, st, other, chunks[c], n_vocab, &mix), "%s: mixed: %s", name,
                      es_last_error())) {
                for (int i = 0; i <= N_STEPS; i++) {
                    if (!ref.logits[i] || !mix.logits[i]) continue;
                    double d = es_test_maxdiff(ref.logits[i], mix.logits[i], (size_t)n_vocab, NULL);
                    if (d > worst) worst = d;
                    if (inv)
                        CHECK(memcmp(ref.logits[i], mix.logits[i],
                                     sizeof(float) * (size_t)n_vocab) == 0,
                              "%s: chunk %d, logits %d differ from alone by %.3g", name, chunks[c],
                              i, d);
                }
            }
            run_free(&mix);
        }
        printf("%s, batch_invariant=%d: largest logit difference, mixed vs alone: %.3g\n", name,
               inv, worst);
        run_free(&ref);
        es_context_free(ctx);
    }
    es_steer_set_free(st);
    es_steer_set_free(other);
    es_model_free(m);
}

int main(void) {
    const char *src = es_test_source();
    char path[4096], dir[256];
    snprintf(path, sizeof path, "%s/models/demo-16m.ev.gguf", src);
    es_ev_set *ev = NULL;
    CHECK(es_ev_set_load(path, NULL, &ev) == ES_OK, "load %s: %s", path, es_last_error());
    snprintf(path, sizeof path, "%s/models/demo-16m.q8_0.gguf", src);
    check_model("demo q8_0", path, ev);
    const char *f16 = es_test_shared_path("models/demo-16m.f16.gguf");
    if (f16) check_model("demo f16", f16, ev);
    if (es_test_tmpdir("batchinv", dir, sizeof dir)) {
        static const char *const mixes[] = {"q4_0", "q4_k_m", "q6_k"};
        for (size_t i = 0; i < sizeof mixes / sizeof mixes[0]; i++) {
            es_random_model_params rp = es_random_model_default_params();
            rp.mix = mixes[i];
            rp.n_threads = 2;
            snprintf(path, sizeof path, "%s/%s.gguf", dir, mixes[i]);
            if (CHECK(es_random_model_write(&rp, path, NULL) == ES_OK, "random %s: %s", mixes[i],
                      es_last_error())) {
                char name[64];
                snprintf(name, sizeof name, "random demo-16m %s", mixes[i]);
                check_model(name, path, ev);
                unlink(path);
            }
        }
        es_test_tmpdir_done(dir);
    }
    es_ev_set_free(ev);
    if (!f16) {
        printf("demo f16: ../shared/models/demo-16m.f16.gguf not found\n");
        if (es_test_failed == 0) return ES_TEST_SKIP;
    }
    return es_test_finish();
}
