/*
 * check_pool: work runs off the loop thread, done runs on it, every job
 * completes exactly once, and pool_free() finishes what is queued.
 */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include <event2/event.h>

#include "pool.h"
#include "suite.h"

struct job {
    pthread_t loop;
    pthread_t worker;
    int value;
    int *done_count;
    struct event_base *base;
    int total;
};

static void work(void *arg)
{
    struct job *j = arg;

    j->worker = pthread_self();
    j->value *= 2;
}

static void done(void *arg)
{
    struct job *j = arg;

    ck_assert(pthread_equal(pthread_self(), j->loop));
    ck_assert(!pthread_equal(j->worker, j->loop));
    if (++*j->done_count == j->total)
        event_base_loopexit(j->base, NULL);
}

START_TEST(test_jobs_complete_on_loop)
{
    struct event_base *base = event_base_new();
    struct pool *p = pool_new(base, 3);
    struct job jobs[200];
    int count = 0;

    for (int i = 0; i < 200; i++) {
        jobs[i] = (struct job){pthread_self(), pthread_self(), i, &count, base, 200};
        pool_submit(p, work, done, &jobs[i]);
    }
    ck_assert_uint_eq(pool_pending(p), 200);
    event_base_dispatch(base);
    ck_assert_int_eq(count, 200);
    ck_assert_uint_eq(pool_pending(p), 0);
    for (int i = 0; i < 200; i++)
        ck_assert_int_eq(jobs[i].value, 2 * i);
    pool_free(p);
    event_base_free(base);
}
END_TEST

static void count_done(void *arg)
{
    (*(int *)arg)++;
}

static void noop(void *arg)
{
}

START_TEST(test_free_drains)
{
    struct event_base *base = event_base_new();
    struct pool *p = pool_new(base, 1);
    int count = 0;

    for (int i = 0; i < 50; i++)
        pool_submit(p, noop, count_done, &count);
    /* The loop never ran: pool_free() must still finish every job. */
    pool_free(p);
    ck_assert_int_eq(count, 50);
    event_base_free(base);
}
END_TEST

static void read_nice(void *arg)
{
    int *v = arg;

    *v = getpriority(PRIO_PROCESS, (id_t)gettid());
}

/* pool_new_nice lowers its workers' priority, and only theirs. */
START_TEST(test_nice_workers)
{
    struct event_base *base = event_base_new();
    int before = getpriority(PRIO_PROCESS, (id_t)gettid());
    int plain = 100, niced = 100;
    struct pool *p = pool_new(base, 1), *q = pool_new_nice(base, 1, 7);
    int want = before + 7 > 19 ? 19 : before + 7;

    pool_submit(p, read_nice, NULL, &plain);
    pool_submit(q, read_nice, NULL, &niced);
    pool_free(p);
    pool_free(q);
    ck_assert_int_eq(plain, before);
    ck_assert_int_eq(niced, want);
    ck_assert_int_eq(getpriority(PRIO_PROCESS, (id_t)gettid()), before);
    event_base_free(base);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pool");
    TCase *tc = tcase_create("jobs");

    tcase_add_test(tc, test_jobs_complete_on_loop);
    tcase_add_test(tc, test_free_drains);
    tcase_add_test(tc, test_nice_workers);
    suite_add_tcase(s, tc);
    return harness_run_suite(s);
}
