/*
 * check_replica: coordinator/replica alone, with the clock passed in: the
 * C3 score's value and the order it gives, outstanding requests and
 * reported queues steering away, the node's own p99, penalties until
 * Retry-After and their expiry, the hedge delay at the recent p95, and the
 * hedge budget's bound of 5 % extra requests.
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "replica.h"
#include "suite.h"

static const size_t both[] = {0, 1};

static size_t choose(const struct replica *r, uint64_t now)
{
    size_t got = SIZE_MAX;

    ck_assert_int_eq(replica_choose(r, both, 2, SIZE_MAX, now, &got, NULL), 0);
    return got;
}

/* One answered round trip with these times. */
static void answer(struct replica *r, size_t node, uint64_t resp, uint64_t serv)
{
    replica_on_send(r, node, false);
    replica_on_answer(r, node, resp, serv);
}

START_TEST(test_score_formula_and_order)
{
    struct replica *r = replica_new(2, NULL);

    answer(r, 0, 1000, 800);
    answer(r, 1, 3000, 2500);
    /* Nothing queued: q = 1, so psi = R - S + S = R. */
    ck_assert(replica_score(r, 0) == 1000.0);
    ck_assert(replica_score(r, 1) == 3000.0);
    ck_assert_uint_eq(choose(r, 0), 0);
    /* Node 0 reports 2 queries in flight: q = 3, psi = 1000 - 800 + 27 * 800. */
    replica_on_report(r, 0, 0, 2);
    ck_assert(replica_score(r, 0) == 21800.0);
    ck_assert_uint_eq(choose(r, 0), 1);
    /* The EWMA: 0.3 of the new sample, 0.7 of the old. */
    answer(r, 1, 13000, 2500);
    ck_assert(replica_score(r, 1) == 0.3 * 13000 + 0.7 * 3000);
    replica_free(r);
}
END_TEST

START_TEST(test_outstanding_steers_away)
{
    struct replica_config cfg = {.clients = 3};
    struct replica *r = replica_new(2, &cfg);
    size_t counts[2] = {0, 0};

    /* Node 0 is twice as fast, but a queue to it costs the cube. */
    answer(r, 0, 1000, 1000);
    answer(r, 1, 2000, 2000);
    ck_assert_uint_eq(choose(r, 0), 0);
    replica_on_send(r, 0, false);
    /* q = 1 + 1 * 3 = 4: psi = 64 * 1000 > 2000. */
    ck_assert(replica_score(r, 0) == 64000.0);
    ck_assert_uint_eq(choose(r, 0), 1);
    replica_on_cancel(r, 0);
    ck_assert_uint_eq(choose(r, 0), 0);

    /*
     * Sending to whichever scores best, none answered: the cube of the queue
     * outweighs node 0's speed at once, so they alternate, 0 first, until the
     * queues are long enough ((1 + 3k)^3 ratios near 1) for its 2x speed to
     * earn it one more: 0 at k0 = 5 scores 16^3 * 1000 < 13^3 * 2000.
     */
    for (unsigned i = 0; i < 20; i++) {
        size_t c = choose(r, 0);

        counts[c]++;
        replica_on_send(r, c, false);
    }
    ck_assert_uint_eq(counts[0], 11);
    ck_assert_uint_eq(counts[1], 9);
    replica_free(r);

    /* Cold and equal: ties go to fewer outstanding, then the first. */
    r = replica_new(2, NULL);
    ck_assert_uint_eq(choose(r, 0), 0);
    replica_on_send(r, 0, false);
    ck_assert_uint_eq(choose(r, 0), 1);
    replica_free(r);
}
END_TEST

START_TEST(test_reported_p99)
{
    struct replica *r = replica_new(2, NULL);

    /* Never sampled: its p99 stands for R and S, so a slow one is avoided. */
    replica_on_report(r, 0, 50000, 0);
    replica_on_report(r, 1, 4000, 0);
    ck_assert(replica_score(r, 0) == 50000.0);
    ck_assert_uint_eq(choose(r, 0), 1);
    /* Sampled fast by this broker, but its own p99 (all clients) is worse. */
    answer(r, 0, 1000, 1000);
    ck_assert(replica_score(r, 0) == 50000.0);
    ck_assert_uint_eq(choose(r, 0), 1);
    replica_on_report(r, 0, 500, 0);
    ck_assert(replica_score(r, 0) == 1000.0);
    ck_assert_uint_eq(choose(r, 0), 0);
    replica_free(r);
}
END_TEST

START_TEST(test_penalty_until_retry_after)
{
    struct replica *r = replica_new(2, NULL);
    size_t got;
    uint64_t until = 0;

    answer(r, 0, 1000, 1000);
    answer(r, 1, 9000, 9000);
    replica_on_send(r, 0, false);
    replica_on_failure(r, 0, REPLICA_FAIL_OVERLOAD, 1000000, 2000000);
    ck_assert(replica_penalised(r, 0, 1000000));
    ck_assert_uint_eq(choose(r, 1500000), 1);
    ck_assert_uint_eq(choose(r, 2999999), 1);
    /* Expired at exactly its Retry-After; the outstanding request is gone too. */
    ck_assert(!replica_penalised(r, 0, 3000000));
    ck_assert_uint_eq(choose(r, 3000000), 0);
    ck_assert(replica_score(r, 0) == 1000.0);

    /* A shorter later penalty does not shorten the first. */
    replica_on_failure(r, 0, REPLICA_FAIL_OVERLOAD, 4000000, 5000000);
    replica_on_failure(r, 0, REPLICA_FAIL_CONNECT, 4100000, 100000);
    ck_assert(replica_penalised(r, 0, 8999999));
    ck_assert(!replica_penalised(r, 0, 9000000));

    /* Without Retry-After (a timeout): config.penalty_us, 1 s by default. */
    replica_on_failure(r, 1, REPLICA_FAIL_TIMEOUT, 10000000, 0);
    ck_assert(replica_penalised(r, 1, 10999999));
    ck_assert(!replica_penalised(r, 1, 11000000));

    /* Every candidate penalised: -EBUSY and the earliest return. */
    replica_on_failure(r, 0, REPLICA_FAIL_OVERLOAD, 20000000, 700000);
    replica_on_failure(r, 1, REPLICA_FAIL_OVERLOAD, 20000000, 300000);
    got = 99;
    ck_assert_int_eq(replica_choose(r, both, 2, SIZE_MAX, 20000000, &got, &until), -EBUSY);
    ck_assert_uint_eq(got, 99);
    ck_assert_uint_eq(until, 20300000);
    ck_assert_uint_eq(choose(r, 20300000), 1);
    /* Excluding the one tried: the other, even when it scores worse. */
    ck_assert_int_eq(replica_choose(r, both, 2, 0, 30000000, &got, NULL), 0);
    ck_assert_uint_eq(got, 1);
    until = 5;
    ck_assert_int_eq(replica_choose(r, both, 1, 0, 30000000, &got, &until), -EBUSY);
    ck_assert_uint_eq(until, 0);
    replica_free(r);
}
END_TEST

START_TEST(test_choose_bad_input)
{
    struct replica *r = replica_new(2, NULL);
    const size_t bad[] = {0, 2};
    size_t got = 7;

    ck_assert_int_eq(replica_choose(r, both, 0, SIZE_MAX, 0, &got, NULL), -EINVAL);
    ck_assert_int_eq(replica_choose(r, bad, 2, SIZE_MAX, 0, &got, NULL), -EINVAL);
    ck_assert_uint_eq(got, 7);
    /* An answer never sent does not underflow the outstanding count. */
    replica_on_answer(r, 1, 100, 100);
    replica_on_cancel(r, 1);
    ck_assert(replica_score(r, 1) == 100.0);
    replica_free(r);
    replica_free(NULL);
}
END_TEST

START_TEST(test_hedge_delay_p95)
{
    struct replica *r = replica_new(1, NULL);

    ck_assert_uint_eq(replica_hedge_delay_us(r, 0), 0); /* nothing known: no hedge */
    replica_on_report(r, 0, 7000, 0);
    ck_assert_uint_eq(replica_hedge_delay_us(r, 0), 7000); /* too few samples: p99 */
    /* 1..64 in a scrambled order: p95 by nearest rank is the 61st, 61. */
    for (uint64_t i = 0; i < REPLICA_WINDOW; i++)
        answer(r, 0, (i * 37) % REPLICA_WINDOW + 1, 1);
    ck_assert_uint_eq(replica_hedge_delay_us(r, 0), 61);
    /* The window slides: 64 newer samples of 500 replace them all. */
    for (unsigned i = 0; i < REPLICA_WINDOW - 1; i++)
        answer(r, 0, 500, 1);
    ck_assert_uint_eq(replica_hedge_delay_us(r, 0), 500);
    answer(r, 0, 500, 1);
    ck_assert_uint_eq(replica_hedge_delay_us(r, 0), 500);
    replica_free(r);
}
END_TEST

START_TEST(test_hedge_budget_bound)
{
    struct replica *r = replica_new(2, NULL);
    uint64_t taken = 0;

    /* Empty at the start: no hedge before primaries paid for one. */
    ck_assert(!replica_hedge_take(r));
    /* A hedge wanted after every primary: exactly 5 %, never more. */
    for (unsigned i = 1; i <= 10000; i++) {
        replica_on_send(r, i % 2, false);
        if (replica_hedge_take(r)) {
            replica_on_send(r, (i + 1) % 2, true);
            taken++;
        }
        ck_assert_uint_le(taken * 100, (uint64_t)i * 5);
    }
    ck_assert_uint_eq(taken, 500);
    ck_assert_uint_eq(replica_hedges(r), 500);
    ck_assert_uint_eq(replica_primaries(r), 10000);
    replica_free(r);

    /* Saved up while nothing was slow: at most hedge_burst (10) at once. */
    r = replica_new(1, NULL);
    for (unsigned i = 0; i < 100000; i++)
        replica_on_send(r, 0, false);
    taken = 0;
    while (replica_hedge_take(r))
        taken++;
    ck_assert_uint_eq(taken, 10);
    replica_free(r);

    /* hedge_percent 0: never. */
    {
        struct replica_config cfg = {.hedge_percent = 0};

        r = replica_new(1, &cfg);
        for (unsigned i = 0; i < 1000; i++)
            replica_on_send(r, 0, false);
        ck_assert(!replica_hedge_take(r));
        replica_free(r);
    }
}
END_TEST

/* A hedge of several requests takes all its tokens or none. */
START_TEST(test_hedge_take_n)
{
    struct replica *r = replica_new(2, NULL);

    for (unsigned i = 0; i < 40; i++) /* 40 x 5 hundredths: 2 hedges */
        replica_on_send(r, 0, false);
    ck_assert(!replica_hedge_take_n(r, 3));
    ck_assert(!replica_hedge_take_n(r, 0));
    ck_assert(replica_hedge_take_n(r, 2));
    ck_assert(!replica_hedge_take(r));
    replica_free(r);
}
END_TEST

/* Slots added later start fresh; the old ones keep what they learnt. */
START_TEST(test_resize)
{
    struct replica *r = replica_new(1, NULL);
    size_t cand[2] = {0, 1}, got = 9;

    replica_on_send(r, 0, false);
    replica_on_answer(r, 0, 4000, 3000);
    ck_assert_uint_eq(replica_size(r), 1);
    ck_assert_int_eq(replica_choose(r, cand, 2, SIZE_MAX, 0, &got, NULL), -EINVAL);
    replica_resize(r, 2);
    replica_resize(r, 1); /* never shrinks */
    ck_assert_uint_eq(replica_size(r), 2);
    ck_assert_double_eq(replica_score(r, 1), 0);
    ck_assert_double_gt(replica_score(r, 0), 0);
    ck_assert_int_eq(replica_choose(r, cand, 2, SIZE_MAX, 0, &got, NULL), 0);
    ck_assert_uint_eq(got, 1); /* the new node, never sampled, is tried */
    replica_free(r);
}
END_TEST

static Suite *replica_suite(void)
{
    Suite *s = suite_create("replica");
    TCase *tc;

    tc = tcase_create("score");
    tcase_add_test(tc, test_score_formula_and_order);
    tcase_add_test(tc, test_outstanding_steers_away);
    tcase_add_test(tc, test_reported_p99);
    suite_add_tcase(s, tc);
    tc = tcase_create("penalty");
    tcase_add_test(tc, test_penalty_until_retry_after);
    tcase_add_test(tc, test_choose_bad_input);
    suite_add_tcase(s, tc);
    tc = tcase_create("hedge");
    tcase_add_test(tc, test_hedge_delay_p95);
    tcase_add_test(tc, test_hedge_budget_bound);
    tcase_add_test(tc, test_hedge_take_n);
    tcase_add_test(tc, test_resize);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return harness_run_suite(replica_suite());
}
