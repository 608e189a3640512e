/*
 * pool: a small fixed pool of worker threads for blocking work (copying and
 * verifying segment files, building indexes, scanning). A job's work function
 * runs on a worker; its done function then runs on the event loop thread, so
 * done callbacks may touch loop-owned state and answer HTTP requests. Nothing
 * blocking ever runs in a libevent callback.
 *
 * Jobs run in submission order per worker; there is no ordering between
 * workers. The pool owns no job memory: the arg passed to pool_submit() stays
 * the caller's and is typically freed in the done function.
 */
#ifndef SLUICE_POOL_H
#define SLUICE_POOL_H

#include <stddef.h>

struct event_base;
struct pool;

typedef void (*pool_work_fn)(void *arg);
typedef void (*pool_done_fn)(void *arg);

/* Starts nthreads workers (1..64) and hooks completions into base. */
struct pool *pool_new(struct event_base *base, unsigned nthreads);
/*
 * The same, with every worker's nice value raised by nice (0..19) so that
 * background work (segment loads) yields the CPU to the event loop and to
 * queries. If the kernel refuses, the workers run at the default priority.
 */
struct pool *pool_new_nice(struct event_base *base, unsigned nthreads, int nice);

/*
 * Queues a job. work runs on a worker thread and must not touch loop-owned
 * state; done (may be NULL) runs later on the loop thread. Never fails.
 */
void pool_submit(struct pool *p, pool_work_fn work, pool_done_fn done, void *arg);

/* Jobs queued or running, as seen from the loop thread. */
size_t pool_pending(const struct pool *p);

/*
 * Finishes every queued job (work, then done, on the calling thread for the
 * done part), joins the workers and frees the pool. NULL-safe. Must be called
 * from the loop thread, outside any done callback.
 */
void pool_free(struct pool *p);

#endif
