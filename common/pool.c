/*
 * pool: worker threads with a mutex-protected FIFO of jobs and a second FIFO
 * of finished jobs that an eventfd hands back to the event loop. Expected
 * load: tens of jobs per second (segment loads), up to thousands per second
 * for query scans; one mutex round trip per job each way is negligible next
 * to the work itself.
 */
#include "pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "xmalloc.h"

struct pool_job {
    pool_work_fn work;
    pool_done_fn done;
    void *arg;
    struct pool_job *next;
};

struct pool_queue {
    struct pool_job *head, *tail;
};

struct pool {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct pool_queue todo; /* guarded by lock */
    struct pool_queue done; /* guarded by lock */
    bool stopping;          /* guarded by lock */
    size_t pending;         /* loop thread only */
    int efd;
    struct event *ev;
    unsigned nthreads;
    int nice; /* added to each worker's nice value at start */
    pthread_t *threads;
};

static void pool_queue_push(struct pool_queue *q, struct pool_job *j)
{
    j->next = NULL;
    if (q->tail != NULL)
        q->tail->next = j;
    else
        q->head = j;
    q->tail = j;
}

static struct pool_job *pool_queue_pop(struct pool_queue *q)
{
    struct pool_job *j = q->head;

    if (j != NULL) {
        q->head = j->next;
        if (q->head == NULL)
            q->tail = NULL;
    }
    return j;
}

static void pool_notify(struct pool *p)
{
    uint64_t one = 1;

    /* EAGAIN means the counter is already non-zero: the loop will wake. */
    while (write(p->efd, &one, sizeof(one)) < 0 && errno == EINTR)
        ;
}

static void *pool_worker(void *arg)
{
    struct pool *p = arg;
    struct pool_job *j;

    /*
     * Linux: PRIO_PROCESS with a thread id reads and sets that one thread's
     * nice value; setpriority sets it outright, so the increment is added to
     * what the thread inherited (a node started at nice 15 loads at 19, never
     * at a higher priority than its loop).
     */
    if (p->nice != 0) {
        int cur, want;

        errno = 0;
        cur = getpriority(PRIO_PROCESS, (id_t)gettid());
        want = errno == 0 ? cur + p->nice : p->nice;
        if (want > 19)
            want = 19;
        if (errno != 0 || setpriority(PRIO_PROCESS, (id_t)gettid(), want) < 0)
            log_warn("pool_nice", "nice=+%d errno=%d: workers keep the default priority",
                     p->nice, errno);
    }
    for (;;) {
        pthread_mutex_lock(&p->lock);
        while ((j = pool_queue_pop(&p->todo)) == NULL && !p->stopping)
            pthread_cond_wait(&p->cond, &p->lock);
        pthread_mutex_unlock(&p->lock);
        if (j == NULL)
            return NULL;
        j->work(j->arg);
        pthread_mutex_lock(&p->lock);
        pool_queue_push(&p->done, j);
        pthread_mutex_unlock(&p->lock);
        pool_notify(p);
    }
}

/* Runs the done functions of finished jobs on the loop thread. */
static void pool_done_cb(evutil_socket_t fd, short what, void *arg)
{
    struct pool *p = arg;
    struct pool_queue q;
    struct pool_job *j;
    uint64_t n;

    while (read(fd, &n, sizeof(n)) < 0 && errno == EINTR)
        ;
    pthread_mutex_lock(&p->lock);
    q = p->done;
    p->done.head = p->done.tail = NULL;
    pthread_mutex_unlock(&p->lock);
    while ((j = pool_queue_pop(&q)) != NULL) {
        p->pending--;
        if (j->done != NULL)
            j->done(j->arg);
        free(j);
    }
}

struct pool *pool_new(struct event_base *base, unsigned nthreads)
{
    return pool_new_nice(base, nthreads, 0);
}

struct pool *pool_new_nice(struct event_base *base, unsigned nthreads, int nice)
{
    struct pool *p = xcalloc(1, sizeof(*p));

    if (nthreads < 1)
        nthreads = 1;
    if (nthreads > 64)
        nthreads = 64;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (p->efd < 0)
        fatal("pool_eventfd", "errno=%d", errno);
    p->ev = event_new(base, p->efd, EV_READ | EV_PERSIST, pool_done_cb, p);
    if (p->ev == NULL || event_add(p->ev, NULL) < 0)
        fatal("pool_event", "event_new failed");
    p->nthreads = nthreads;
    p->nice = nice;
    p->threads = xcalloc(nthreads, sizeof(*p->threads));
    for (unsigned i = 0; i < nthreads; i++) {
        int r = pthread_create(&p->threads[i], NULL, pool_worker, p);
        if (r != 0)
            fatal("pool_thread", "errno=%d", r);
    }
    return p;
}

void pool_submit(struct pool *p, pool_work_fn work, pool_done_fn done, void *arg)
{
    struct pool_job *j = xmalloc(sizeof(*j));

    j->work = work;
    j->done = done;
    j->arg = arg;
    p->pending++;
    pthread_mutex_lock(&p->lock);
    pool_queue_push(&p->todo, j);
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
}

size_t pool_pending(const struct pool *p)
{
    return p->pending;
}

void pool_free(struct pool *p)
{
    struct pool_job *j;

    if (p == NULL)
        return;
    /* Workers drain the queue before they see stopping with nothing left. */
    pthread_mutex_lock(&p->lock);
    p->stopping = true;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    for (unsigned i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    while ((j = pool_queue_pop(&p->done)) != NULL) {
        if (j->done != NULL)
            j->done(j->arg);
        free(j);
    }
    event_free(p->ev);
    close(p->efd);
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->lock);
    free(p->threads);
    free(p);
}
