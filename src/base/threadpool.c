/*
 * threadpool.c — a fixed pool of workers that run one task at a time on every thread.
 *
 * Hand-off: es_threadpool_run publishes (fn, arg) and bumps a generation counter;
 * workers spin on that counter for a short while (decode calls run hundreds of times
 * per token, so the next task usually comes within microseconds), then spin with
 * sched_yield, then sleep on a condition variable. A worker announces that it is going
 * to sleep (n_sleeping) before re-checking the generation under the mutex, and run()
 * reads n_sleeping after bumping the generation (both sequentially consistent), so a
 * wake-up is never lost.
 *
 * Shares: each ith of a run is claimed exactly once, by a compare-and-swap of
 * claim[ith] from the previous generation to the current one. Worker ith claims its
 * own share when it sees the new generation; the caller runs share 0 and then, if a
 * worker has not claimed its share within a quarter of the time share 0 took (5 to
 * 200 us; a worker that is not running by then is descheduled because the machine is
 * busier than the pool), claims and runs it itself. So a run never waits long for a
 * thread the kernel has not scheduled. Completion: n_done counts finished
 * shares; the caller spins until all are done.
 */
#include "threadpool.h"

#include "common.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

#define ES_TP_PAUSE_SPINS 2000      /* pause-spins before a waiting thread starts to yield */
#define ES_TP_SPIN_NS 200000LL      /* idle workers yield-spin this long, then sleep */
#define ES_TP_STEAL_MIN_NS 5000LL   /* the caller runs unclaimed shares after waiting */
#define ES_TP_STEAL_MAX_NS 200000LL /* a quarter of its own share's time, within these */
#define ES_TP_YIELD_NS 2000000LL    /* the caller yields while waiting longer than this */

struct es_threadpool {
    int n_threads;      /* including the caller */
    pthread_t *threads; /* [n_threads - 1] workers */
    int n_started;      /* workers actually started */
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    _Atomic(es_task_fn) fn; /* current task */
    _Atomic(void *) arg;
    atomic_uint generation; /* bumped once per run */
    atomic_uint *claim;     /* [n_threads] generation for which share ith was claimed */
    atomic_int n_done;      /* shares 1.. finished in the current generation */
    atomic_int n_sleeping;  /* workers in (or about to enter) cond_wait */
    atomic_bool stop;
};

typedef struct {
    es_threadpool *tp;
    int ith;
} worker_arg;

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Claims share ith of generation g; true if this thread is the one to run it. */
static bool claim_share(es_threadpool *tp, int ith, unsigned g) {
    unsigned expect = g - 1;
    return atomic_compare_exchange_strong(&tp->claim[ith], &expect, g);
}

/* Runs share ith of the current task and counts it done. */
static void run_share(es_threadpool *tp, int ith) {
    es_task_fn fn = atomic_load_explicit(&tp->fn, memory_order_relaxed);
    void *arg = atomic_load_explicit(&tp->arg, memory_order_relaxed);
    fn(arg, ith, tp->n_threads);
    atomic_fetch_add_explicit(&tp->n_done, 1, memory_order_release);
}

/* Waits until the generation differs from `seen` (or stop); returns the new one.
 * Spins with pause first, then with sched_yield (so that a thread we share a core
 * with can run), then sleeps. */
static unsigned wait_for_work(es_threadpool *tp, unsigned seen) {
    long long t0 = 0;
    for (int i = 0;; i++) {
        unsigned g = atomic_load_explicit(&tp->generation, memory_order_acquire);
        if (g != seen || atomic_load_explicit(&tp->stop, memory_order_acquire)) return g;
        if (i < ES_TP_PAUSE_SPINS) {
            cpu_relax();
            continue;
        }
        sched_yield();
        long long t = now_ns();
        if (t0 == 0)
            t0 = t;
        else if (t - t0 > ES_TP_SPIN_NS)
            break;
    }
    pthread_mutex_lock(&tp->mutex);
    atomic_fetch_add(&tp->n_sleeping, 1);
    unsigned g;
    while ((g = atomic_load(&tp->generation)) == seen && !atomic_load(&tp->stop))
        pthread_cond_wait(&tp->cond, &tp->mutex);
    atomic_fetch_sub(&tp->n_sleeping, 1);
    pthread_mutex_unlock(&tp->mutex);
    return g;
}

static void *worker_main(void *p) {
    worker_arg wa = *(worker_arg *)p;
    free(p);
    es_threadpool *tp = wa.tp;
    unsigned seen = 0; /* the generation at creation: a run may start before this thread does */
    for (;;) {
        seen = wait_for_work(tp, seen);
        if (atomic_load_explicit(&tp->stop, memory_order_acquire)) break;
        /* the caller may have run our share already (we were late) */
        if (claim_share(tp, wa.ith, seen)) run_share(tp, wa.ith);
    }
    return NULL;
}

static void wake_all(es_threadpool *tp) {
    if (atomic_load(&tp->n_sleeping) > 0) {
        pthread_mutex_lock(&tp->mutex);
        pthread_cond_broadcast(&tp->cond);
        pthread_mutex_unlock(&tp->mutex);
    }
}

es_threadpool *es_threadpool_create(int n_threads) {
    if (n_threads < 1 || n_threads > 1024) {
        es_error(ES_ERR_INVALID_ARG, "threadpool: n_threads %d is outside [1, 1024]", n_threads);
        return NULL;
    }
    es_threadpool *tp = es_calloc(1, sizeof *tp);
    if (!tp) return NULL;
    tp->n_threads = n_threads;
    pthread_mutex_init(&tp->mutex, NULL);
    pthread_cond_init(&tp->cond, NULL);
    atomic_init(&tp->fn, NULL);
    atomic_init(&tp->arg, NULL);
    atomic_init(&tp->generation, 0);
    atomic_init(&tp->n_done, 0);
    atomic_init(&tp->n_sleeping, 0);
    atomic_init(&tp->stop, false);
    tp->claim = es_calloc((size_t)n_threads, sizeof *tp->claim);
    if (!tp->claim) {
        es_threadpool_free(tp);
        return NULL;
    }
    for (int i = 0; i < n_threads; i++)
        atomic_init(&tp->claim[i], 0);
    if (n_threads > 1) {
        tp->threads = es_calloc((size_t)n_threads - 1, sizeof *tp->threads);
        if (!tp->threads) {
            es_threadpool_free(tp);
            return NULL;
        }
    }
    for (int i = 1; i < n_threads; i++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (!wa) {
            es_error(ES_ERR_NOMEM, "threadpool: out of memory starting worker %d", i);
            es_threadpool_free(tp);
            return NULL;
        }
        wa->tp = tp;
        wa->ith = i;
        int rc = pthread_create(&tp->threads[i - 1], NULL, worker_main, wa);
        if (rc != 0) {
            free(wa);
            es_error(ES_ERR_NOMEM, "threadpool: cannot start worker %d of %d (error %d)", i,
                     n_threads - 1, rc);
            es_threadpool_free(tp);
            return NULL;
        }
        tp->n_started++;
    }
    return tp;
}

void es_threadpool_free(es_threadpool *tp) {
    if (!tp) return;
    atomic_store(&tp->stop, true);
    pthread_mutex_lock(&tp->mutex);
    pthread_cond_broadcast(&tp->cond);
    pthread_mutex_unlock(&tp->mutex);
    for (int i = 0; i < tp->n_started; i++)
        pthread_join(tp->threads[i], NULL);
    pthread_cond_destroy(&tp->cond);
    pthread_mutex_destroy(&tp->mutex);
    free(tp->threads);
    free(tp->claim);
    free(tp);
}

int es_threadpool_size(const es_threadpool *tp) {
    return tp ? tp->n_threads : 1;
}

void es_threadpool_run(es_threadpool *tp, es_task_fn fn, void *arg) {
    if (!tp || tp->n_threads == 1) {
        fn(arg, 0, 1);
        return;
    }
    const int nth = tp->n_threads;
    atomic_store_explicit(&tp->fn, fn, memory_order_relaxed);
    atomic_store_explicit(&tp->arg, arg, memory_order_relaxed);
    atomic_store_explicit(&tp->n_done, 0, memory_order_relaxed);
    /* seq_cst: publishes fn/arg/n_done, and pairs with n_sleeping in wait_for_work */
    const unsigned g = atomic_fetch_add(&tp->generation, 1) + 1;
    wake_all(tp);

    const long long t_start = now_ns();
    fn(arg, 0, nth);
    const long long t0 = now_ns();
    long long steal_ns = (t0 - t_start) / 4;
    steal_ns =
        steal_ns < ES_TP_STEAL_MIN_NS ? ES_TP_STEAL_MIN_NS : ES_MIN(steal_ns, ES_TP_STEAL_MAX_NS);

    /* Spin (no yield: under load a yield gives the CPU away for a whole time slice)
     * until the workers are done; run the shares nobody claimed after steal_ns;
     * yield only if a worker that claimed its share is descheduled for long. */
    bool stolen = false;
    for (int i = 0; atomic_load_explicit(&tp->n_done, memory_order_acquire) < nth - 1; i++) {
        cpu_relax();
        if ((i & 63) != 63) continue;
        const long long dt = now_ns() - t0;
        if (!stolen && dt > steal_ns) {
            for (int ith = 1; ith < nth; ith++)
                if (claim_share(tp, ith, g)) run_share(tp, ith);
            stolen = true;
        } else if (dt > ES_TP_YIELD_NS) {
            sched_yield();
        }
    }
}
