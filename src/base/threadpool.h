/*
 * threadpool.h — a fixed pool of worker threads that run one task at a time on all
 * threads, the caller included, and return when every thread is done. Kernels are
 * written as fn(arg, ith, nth) and split their work by ith; the pool knows nothing
 * of the math.
 */
#ifndef ES_THREADPOOL_H
#define ES_THREADPOOL_H

typedef struct es_threadpool es_threadpool;

/* fn is called once with each ith in [0, nth). */
typedef void (*es_task_fn)(void *arg, int ith, int nth);

/* Creates a pool of n_threads (>= 1; the caller is thread 0, so n_threads - 1 workers
 * are started). NULL on failure (es_last_error says why). */
es_threadpool *es_threadpool_create(int n_threads);
void es_threadpool_free(es_threadpool *tp);
int es_threadpool_size(const es_threadpool *tp);

/* Runs fn on every thread and waits. Not reentrant: fn must not call run again.
 * tp may be NULL: fn(arg, 0, 1) runs on the caller.
 * Each ith runs exactly once, but not necessarily on its own thread: when a worker is
 * late (descheduled on a busy machine), the caller runs that share itself after its
 * own, so fn must never wait for another share to make progress. */
void es_threadpool_run(es_threadpool *tp, es_task_fn fn, void *arg);

#endif /* ES_THREADPOOL_H */
