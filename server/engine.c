/*
 * engine.c — the slots and the one decode loop of `emosteer serve`.
 *
 * Every running request (a job) is one sequence of one es_context, in a slot. Each step
 * the loop builds one es_decode batch: the pending token of every generating job, then
 * chunks of the prompts of newly admitted jobs (at most n_chunk tokens of one job per
 * step, so the others keep streaming while a long prompt is read). A queued job joins at
 * the next step a slot is free. Each sequence has its own steering
 * (es_context_set_steering), sampler, stop strings and text stream (es_gen_seq).
 *
 * A slot keeps its KV cache after its job ends, with the tokens it holds and the
 * steering they were computed under; a new job goes to the free slot whose cache shares
 * the longest usable prefix with its prompt, and only the rest is computed (a chat that
 * resends its history computes only the new turn). The context is batch-invariant, so
 * none of this changes any job's numbers.
 *
 * Locking: the engine mutex guards the queue, the slots' job pointers and the counters;
 * each job's mutex guards its output. The loop never holds the engine mutex while it
 * decodes.
 */
#include "serve.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct srv_job {
    atomic_int refs;
    atomic_bool cancelled;
    /* the spec (immutable once submitted) */
    int32_t *prompt;
    int n_prompt;
    es_steer_set *steer;
    char *steer_key;
    int positions;
    /* output, under m */
    pthread_mutex_t m;
    pthread_cond_t cv;
    char *out;
    size_t out_len, out_cap, out_taken;
    bool ended;
    srv_job_result res;
    /* the loop's own */
    es_gen_seq *gs;
    int next; /* next prompt token to decode */
};

typedef struct slot {
    srv_job *job;    /* NULL: free */
    int32_t *kv_tok; /* the tokens in this sequence's KV cache */
    int n_kv;
    char *key;          /* steering those tokens were computed under ("" none) */
    int key_prompt_len; /* the prompt length of the job that filled it */
    uint64_t last_used;
} slot;

struct srv_engine {
    es_context *ctx;
    srv_engine_params p;
    int n_ctx;
    pthread_t thread;
    bool started;
    pthread_mutex_t m;
    pthread_cond_t cv;
    srv_job **queue; /* FIFO of the jobs not in a slot yet: up to n_parallel + n_queue (when the
                        requests for free slots come faster than the loop takes them) */
    int q_len;
    slot *slots;
    int n_busy;
    bool stopping;
    uint64_t clock;
    int rr; /* round-robin start for prompt chunks */
    int32_t *btok, *bpos, *bseq;
    int8_t *blog;
    int *bslot;
};

/* ---- jobs ---- */

srv_job *srv_job_create(const srv_job_spec *spec) {
    srv_job *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    atomic_init(&j->refs, 1);
    atomic_init(&j->cancelled, false);
    pthread_mutex_init(&j->m, NULL);
    pthread_cond_init(&j->cv, NULL);
    j->n_prompt = spec->n_prompt;
    j->prompt = malloc(sizeof *j->prompt * (size_t)(spec->n_prompt > 0 ? spec->n_prompt : 1));
    j->steer = spec->steer;
    j->steer_key = strdup(spec->steer_key ? spec->steer_key : "");
    j->positions = spec->positions;
    j->res.n_prompt = spec->n_prompt;
    /* the sampler, stop strings (copied) and text stream, made here so that a bad
     * setting fails the request before it is queued */
    if (!j->prompt || !j->steer_key ||
        es_gen_seq_create(spec->vocab, &spec->gen, &j->gs) != ES_OK) {
        j->steer = NULL; /* the caller still owns it on failure */
        srv_job_release(j);
        return NULL;
    }
    memcpy(j->prompt, spec->prompt, sizeof *j->prompt * (size_t)spec->n_prompt);
    return j;
}

static void job_free(srv_job *j) {
    free(j->prompt);
    es_steer_set_free(j->steer);
    free(j->steer_key);
    free(j->out);
    es_gen_seq_free(j->gs);
    pthread_mutex_destroy(&j->m);
    pthread_cond_destroy(&j->cv);
    free(j);
}

void srv_job_release(srv_job *j) {
    if (!j) return;
    atomic_store(&j->cancelled, true); /* harmless once ended */
    if (atomic_fetch_sub(&j->refs, 1) == 1) job_free(j);
}

void srv_job_cancel(srv_job *j) {
    if (j) atomic_store(&j->cancelled, true);
}

static bool job_append(srv_job *j, const char *text, size_t len) {
    pthread_mutex_lock(&j->m);
    bool ok = true;
    if (j->out_len + len + 1 > j->out_cap) {
        size_t cap = j->out_cap ? j->out_cap : 256;
        while (cap < j->out_len + len + 1)
            cap *= 2;
        char *p = realloc(j->out, cap);
        if (!p)
            ok = false;
        else {
            j->out = p;
            j->out_cap = cap;
        }
    }
    if (ok) {
        memcpy(j->out + j->out_len, text, len);
        j->out_len += len;
        pthread_cond_broadcast(&j->cv);
    }
    pthread_mutex_unlock(&j->m);
    return ok;
}

static bool on_text(void *user, int index, const char *text, size_t len) {
    (void)index;
    srv_job *j = user;
    return job_append(j, text, len) && !atomic_load(&j->cancelled);
}

/* Marks a job ended (result filled by the caller under nothing: only the loop writes it). */
static void job_end(srv_job *j, const char *error) {
    pthread_mutex_lock(&j->m);
    if (error) {
        j->res.failed = true;
        snprintf(j->res.error, sizeof j->res.error, "%s", error);
    }
    if (j->gs) {
        es_gen_seq_done(j->gs, &j->res.stop);
        es_gen_seq_tokens(j->gs, &j->res.n_gen);
    }
    j->ended = true;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->m);
}

bool srv_job_take(srv_job *j, char *buf, size_t cap, size_t *n, int timeout_ms) {
    pthread_mutex_lock(&j->m);
    if (j->out_taken == j->out_len && !j->ended && timeout_ms > 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += timeout_ms / 1000;
        ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&j->cv, &j->m, &ts);
    }
    size_t k = j->out_len - j->out_taken;
    if (k > cap) k = cap;
    /* never split a UTF-8 character between two takes */
    if (k < j->out_len - j->out_taken)
        while (k > 0 && ((unsigned char)j->out[j->out_taken + k] & 0xC0) == 0x80)
            k--;
    if (k) memcpy(buf, j->out + j->out_taken, k);
    j->out_taken += k;
    *n = k;
    bool done = j->ended && j->out_taken == j->out_len;
    pthread_mutex_unlock(&j->m);
    return done;
}

void srv_job_result_get(srv_job *j, srv_job_result *r) {
    pthread_mutex_lock(&j->m);
    *r = j->res;
    pthread_mutex_unlock(&j->m);
}

/* ---- the engine ---- */

static void *loop(void *arg);

es_status srv_engine_create(es_model *model, const srv_engine_params *p, srv_engine **out) {
    *out = NULL;
    srv_engine *e = calloc(1, sizeof *e);
    if (!e) return es_error(ES_ERR_NOMEM, "serve: out of memory");
    e->p = *p;
    es_context_params cp = es_context_default_params();
    cp.n_ctx = p->n_ctx;
    cp.n_seq_max = p->n_parallel;
    cp.n_batch = p->n_batch;
    if (p->n_threads > 0) cp.n_threads = p->n_threads;
    cp.kv_type = p->kv_type;
    cp.numerics = p->numerics;
    cp.batch_invariant = true;
    es_status st = es_context_create(model, &cp, &e->ctx);
    if (st != ES_OK) {
        free(e);
        return st;
    }
    e->n_ctx = es_context_n_ctx(e->ctx);
    pthread_mutex_init(&e->m, NULL);
    pthread_cond_init(&e->cv, NULL);
    /* srv_engine_submit admits n_parallel + n_queue jobs in all, and every one of them may
     * still be here before the loop has moved any into a slot */
    e->queue = calloc((size_t)p->n_parallel + (size_t)p->n_queue + 1, sizeof *e->queue);
    e->slots = calloc((size_t)p->n_parallel, sizeof *e->slots);
    e->btok = calloc((size_t)p->n_batch, sizeof *e->btok);
    e->bpos = calloc((size_t)p->n_batch, sizeof *e->bpos);
    e->bseq = calloc((size_t)p->n_batch, sizeof *e->bseq);
    e->blog = calloc((size_t)p->n_batch, sizeof *e->blog);
    e->bslot = calloc((size_t)p->n_batch, sizeof *e->bslot);
    bool ok = e->queue && e->slots && e->btok && e->bpos && e->bseq && e->blog && e->bslot;
    for (int i = 0; ok && i < p->n_parallel; i++) {
        e->slots[i].kv_tok = malloc(sizeof(int32_t) * (size_t)e->n_ctx);
        e->slots[i].key = strdup("");
        ok = e->slots[i].kv_tok && e->slots[i].key;
    }
    if (ok && pthread_create(&e->thread, NULL, loop, e) == 0)
        e->started = true;
    else
        ok = false;
    if (!ok) {
        srv_engine_free(e);
        return es_error(ES_ERR_NOMEM, "serve: out of memory for %d slots", p->n_parallel);
    }
    *out = e;
    return ES_OK;
}

int srv_engine_n_ctx(const srv_engine *e) {
    return e->n_ctx;
}

void srv_engine_stats(srv_engine *e, int *slots, int *busy, int *queued) {
    pthread_mutex_lock(&e->m);
    *slots = e->p.n_parallel;
    *busy = e->n_busy;
    *queued = e->q_len;
    pthread_mutex_unlock(&e->m);
}

bool srv_engine_submit(srv_engine *e, srv_job *j, int *retry_after) {
    pthread_mutex_lock(&e->m);
    bool ok = !e->stopping && e->n_busy + e->q_len < e->p.n_parallel + e->p.n_queue;
    if (ok) {
        atomic_fetch_add(&j->refs, 1);
        e->queue[e->q_len++] = j;
        pthread_cond_signal(&e->cv);
    } else {
        *retry_after = e->stopping ? 5 : 1 + e->q_len / (e->p.n_parallel > 0 ? e->p.n_parallel : 1);
    }
    pthread_mutex_unlock(&e->m);
    return ok;
}

void srv_engine_shutdown(srv_engine *e) {
    if (!e || !e->started) return;
    pthread_mutex_lock(&e->m);
    e->stopping = true;
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->m);
    pthread_join(e->thread, NULL);
    e->started = false;
}

void srv_engine_free(srv_engine *e) {
    if (!e) return;
    srv_engine_shutdown(e);
    for (int i = 0; e->slots && i < e->p.n_parallel; i++) {
        free(e->slots[i].kv_tok);
        free(e->slots[i].key);
    }
    free(e->slots);
    free(e->queue);
    free(e->btok);
    free(e->bpos);
    free(e->bseq);
    free(e->blog);
    free(e->bslot);
    es_context_free(e->ctx);
    pthread_mutex_destroy(&e->m);
    pthread_cond_destroy(&e->cv);
    free(e);
}

/* How much of slot s's cache job j can use: the common prefix of the tokens, if they were
 * computed under the same steering at the same positions (at most n_prompt - 1: the last
 * prompt token is always decoded, for its logits). */
static int reusable(const slot *s, const srv_job *j) {
    if (strcmp(s->key, j->steer_key) != 0) return 0;
    int n = s->n_kv < j->n_prompt - 1 ? s->n_kv : j->n_prompt - 1, k = 0;
    while (k < n && s->kv_tok[k] == j->prompt[k])
        k++;
    if (!j->steer_key[0] || j->positions == ES_STEER_POS_ALL) return k;
    /* prompt / generated: what was generated before is prompt now, steered differently */
    if (j->positions == ES_STEER_POS_PROMPT || j->positions == ES_STEER_POS_GENERATED)
        return k < s->key_prompt_len ? k : s->key_prompt_len;
    return 0; /* last: which token is last depends on the batches */
}

/* Puts job j into a free slot (the engine mutex is held). False if the job failed. */
static bool admit(srv_engine *e, srv_job *j) {
    int best = -1, best_reuse = -1;
    for (int i = 0; i < e->p.n_parallel; i++) {
        slot *s = &e->slots[i];
        if (s->job) continue;
        int r = reusable(s, j);
        if (r > best_reuse || (r == best_reuse && s->last_used < e->slots[best].last_used)) {
            best = i;
            best_reuse = r;
        }
    }
    slot *s = &e->slots[best];
    const char *err = NULL;
    char msg[512];
    if (best_reuse == 0) es_kv_clear(e->ctx, best);
    if (es_context_set_steering(e->ctx, best, j->steer) != ES_OK ||
        es_context_set_prompt_len(e->ctx, best, j->n_prompt) != ES_OK) {
        snprintf(msg, sizeof msg, "%s", es_last_error());
        err = msg;
    }
    if (err) {
        job_end(j, err);
        srv_job_release(j);
        return false;
    }
    char *key = strdup(j->steer_key);
    if (key) {
        free(s->key);
        s->key = key;
    } else {
        best_reuse = 0;
        s->key[0] = '\0';
    }
    s->n_kv = best_reuse;
    s->key_prompt_len = j->n_prompt;
    s->job = j;
    s->last_used = ++e->clock;
    j->next = best_reuse;
    j->res.n_cached = best_reuse;
    e->n_busy++;
    return true;
}

/* Ends the job of slot i (the engine mutex is NOT held). */
static void finish_slot(srv_engine *e, int i, const char *error) {
    slot *s = &e->slots[i];
    srv_job *j = s->job;
    if (!error && es_gen_seq_finish(j->gs, on_text, j, 0) != ES_OK) error = es_last_error();
    if (error) { /* what is in the cache may be half a batch: forget it */
        es_kv_clear(e->ctx, i);
        s->n_kv = 0;
        s->key[0] = '\0';
    }
    job_end(j, error);
    pthread_mutex_lock(&e->m);
    s->job = NULL;
    e->n_busy--;
    pthread_mutex_unlock(&e->m);
    srv_job_release(j);
}

/* Records the decoded tokens of batch entries [b0, b1) and hands their logits on; the
 * batch decoded started at entry `base` (logits row b - base). */
static void after_decode(srv_engine *e, int b0, int b1, int base) {
    for (int b = b0; b < b1; b++) {
        slot *s = &e->slots[e->bslot[b]];
        s->kv_tok[s->n_kv++] = e->btok[b];
    }
    for (int b = b0; b < b1; b++) {
        if (!e->blog[b]) continue;
        int i = e->bslot[b];
        slot *s = &e->slots[i];
        srv_job *j = s->job;
        if (!j) continue;
        if (es_gen_seq_take(j->gs, es_get_logits(e->ctx, b - base), s->n_kv, e->n_ctx, on_text, j,
                            0) != ES_OK)
            finish_slot(e, i, es_last_error());
        else if (es_gen_seq_done(j->gs, NULL))
            finish_slot(e, i, NULL);
    }
}

/* One decode step over every busy slot. */
static void step(srv_engine *e) {
    const int np = e->p.n_parallel;
    /* cancelled jobs end here (their cache stays usable) */
    for (int i = 0; i < np; i++) {
        srv_job *j = e->slots[i].job;
        if (j && atomic_load(&j->cancelled)) {
            es_gen_seq_stop(j->gs, ES_GEN_STOP_CALLER);
            finish_slot(e, i, NULL);
        }
    }
    int nb = 0;
    for (int i = 0; i < np; i++) { /* one token of every generating job */
        srv_job *j = e->slots[i].job;
        if (!j || j->next < j->n_prompt) continue;
        int32_t tok = es_gen_seq_pending(j->gs);
        if (tok < 0) continue;
        e->btok[nb] = tok;
        e->bpos[nb] = e->slots[i].n_kv;
        e->bseq[nb] = i;
        e->blog[nb] = 1;
        e->bslot[nb] = i;
        nb++;
    }
    for (int r = 0; r < np && nb < e->p.n_batch; r++) { /* then prompt chunks */
        int i = (e->rr + r) % np;
        srv_job *j = e->slots[i].job;
        if (!j || j->next >= j->n_prompt) continue;
        int k = j->n_prompt - j->next;
        if (k > e->p.n_chunk && j->positions != ES_STEER_POS_LAST) k = e->p.n_chunk;
        if (k > e->p.n_batch - nb) k = e->p.n_batch - nb;
        for (int t = 0; t < k; t++, nb++) {
            e->btok[nb] = j->prompt[j->next];
            e->bpos[nb] = j->next;
            e->bseq[nb] = i;
            e->blog[nb] = j->next == j->n_prompt - 1;
            e->bslot[nb] = i;
            j->next++;
        }
    }
    e->rr = (e->rr + 1) % np;
    if (nb == 0) return;
    es_batch b = {
        .n_tokens = nb, .token = e->btok, .pos = e->bpos, .seq = e->bseq, .logits = e->blog};
    if (es_decode(e->ctx, &b) == ES_OK) {
        after_decode(e, 0, nb, 0);
        return;
    }
    /* Some sequence failed (e.g. steering so strong the hidden states overflow): decode
     * each sequence's part alone, and fail only the ones that fail. Batch invariance
     * makes this give the same numbers. */
    for (int b0 = 0; b0 < nb;) {
        int b1 = b0;
        while (b1 < nb && e->bslot[b1] == e->bslot[b0])
            b1++;
        /* the entries of one slot are contiguous except a generating token + its own
         * prompt, which cannot both occur */
        es_batch sb = {.n_tokens = b1 - b0,
                       .token = e->btok + b0,
                       .pos = e->bpos + b0,
                       .seq = e->bseq + b0,
                       .logits = e->blog + b0};
        if (es_decode(e->ctx, &sb) == ES_OK) {
            after_decode(e, b0, b1, b0);
        } else if (e->slots[e->bslot[b0]].job) {
            finish_slot(e, e->bslot[b0], es_last_error());
        }
        b0 = b1;
    }
}

static void *loop(void *arg) {
    srv_engine *e = arg;
    pthread_mutex_lock(&e->m);
    for (;;) {
        while (e->q_len > 0 && e->n_busy < e->p.n_parallel) {
            srv_job *j = e->queue[0];
            memmove(e->queue, e->queue + 1, sizeof *e->queue * (size_t)--e->q_len);
            if (atomic_load(&j->cancelled)) {
                job_end(j, NULL);
                srv_job_release(j);
                continue;
            }
            admit(e, j);
        }
        if (e->n_busy == 0) {
            if (e->stopping && e->q_len == 0) break;
            pthread_cond_wait(&e->cv, &e->m);
            continue;
        }
        pthread_mutex_unlock(&e->m);
        step(e);
        pthread_mutex_lock(&e->m);
    }
    pthread_mutex_unlock(&e->m);
    return NULL;
}
