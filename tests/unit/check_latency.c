/*
 * check_latency: unit tests for node/latency. Time is injected as plain
 * nanosecond values, so every window and every expiry is exact. Values below
 * 64 ns get a histogram bucket each, so quantiles of such data are exact
 * nearest-rank quantiles and can be written out by hand; one test uses
 * realistic microsecond values and the histogram's documented bound instead.
 * The baseline tests recompute the expected moving average with the same
 * recurrence the header documents, step by step.
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "histogram.h"
#include "latency.h"
#include "suite.h"

#define S(x) ((uint64_t)(x)*UINT64_C(1000000000))

/* Second 100 holds 1..10, second 101 holds 11..20, second 102 holds 21..30. */
static struct latency *test_three_seconds(void)
{
    struct latency *l = latency_new(NULL);

    for (uint64_t v = 1; v <= 30; v++)
        latency_record(l, S(100 + (v - 1) / 10) + v * 1000, v);
    return l;
}

START_TEST(test_window_quantiles)
{
    struct latency *l = test_three_seconds();
    uint64_t now = S(102) + 500000000; /* in the middle of second 102 */

    /* 1 s: the current partial second only, 21..30. */
    ck_assert_uint_eq(latency_count(l, now, 1), 10);
    ck_assert_uint_eq(latency_quantile(l, now, 1, 0.0), 21);
    ck_assert_uint_eq(latency_quantile(l, now, 1, 0.5), 25);
    ck_assert_uint_eq(latency_quantile(l, now, 1, 0.99), 30);
    /* 2 s: 11..30, rank ceil(0.5 * 20) = 10 -> 20; rank ceil(0.25 * 20) = 5 -> 15. */
    ck_assert_uint_eq(latency_count(l, now, 2), 20);
    ck_assert_uint_eq(latency_quantile(l, now, 2, 0.5), 20);
    ck_assert_uint_eq(latency_quantile(l, now, 2, 0.25), 15);
    ck_assert_uint_eq(latency_quantile(l, now, 2, 0.0), 11);
    /* 3 s and 10 s: all thirty values; rank ceil(0.9 * 30) = 27. */
    ck_assert_uint_eq(latency_count(l, now, 3), 30);
    ck_assert_uint_eq(latency_count(l, now, 10), 30);
    ck_assert_uint_eq(latency_quantile(l, now, 10, 0.9), 27);
    ck_assert_uint_eq(latency_quantile(l, now, 10, 0.5), 15);
    ck_assert_uint_eq(latency_quantile(l, now, 10, 0.0), 1);
    ck_assert_uint_eq(latency_quantile(l, now, 10, 1.0), 30);
    /* Asked at second 101, second 102 is in the future and not included. */
    ck_assert_uint_eq(latency_count(l, S(101), 10), 20);
    ck_assert_uint_eq(latency_quantile(l, S(101), 10, 1.0), 20);
    /* Windows outside 1..LATENCY_SLOTS are clamped, not rejected. */
    ck_assert_uint_eq(latency_count(l, now, 0), 10);
    ck_assert_uint_eq(latency_count(l, now, 1000), 30);
    latency_free(l);
}
END_TEST

START_TEST(test_realistic_values)
{
    struct latency *l = latency_new(NULL);
    uint64_t now = S(5000);

    /* 1000 queries: 990 at about 1 ms, 10 at 50..59 ms (the p99 tail). */
    for (uint64_t i = 0; i < 990; i++)
        latency_record(l, now, 1000000 + i * 100);
    for (uint64_t i = 0; i < 10; i++)
        latency_record(l, now, 50000000 + i * 1000000);
    /* Exact p99 is rank 990, the largest of the fast ones: 1098900 ns. */
    uint64_t p99 = latency_quantile(l, now, 1, 0.99);
    ck_assert_uint_ge(p99, 1098900);
    ck_assert_uint_le(p99, 1098900 + (1098900 >> HISTOGRAM_SUB_BITS));
    /* Rank 991 is the first slow one. */
    uint64_t p991 = latency_quantile(l, now, 1, 0.991);
    ck_assert_uint_ge(p991, 50000000);
    ck_assert_uint_le(p991, 50000000 + (50000000 >> HISTOGRAM_SUB_BITS));
    ck_assert_uint_eq(latency_quantile(l, now, 1, 1.0), 59000000);
    latency_free(l);
}
END_TEST

START_TEST(test_expiry)
{
    struct latency *l = latency_new(NULL);

    latency_record(l, S(100), 7);
    /* Still inside a 10 s window 9 s later, gone at 10 s. */
    ck_assert_uint_eq(latency_count(l, S(109) + 999999999, 10), 1);
    ck_assert_uint_eq(latency_count(l, S(110), 10), 0);
    ck_assert_uint_eq(latency_quantile(l, S(110), 10, 0.99), 0);
    /* Exactly LATENCY_SLOTS seconds later the slot index repeats: no resurrection. */
    ck_assert_uint_eq(latency_count(l, S(100 + LATENCY_SLOTS), LATENCY_SLOTS), 0);
    ck_assert_uint_eq(latency_count(l, S(100 + LATENCY_SLOTS - 1), LATENCY_SLOTS), 1);

    /* A new query after the ring wrapped clears the old slot before use. */
    latency_record(l, S(100 + LATENCY_SLOTS), 9);
    ck_assert_uint_eq(latency_count(l, S(100 + LATENCY_SLOTS), LATENCY_SLOTS), 1);
    ck_assert_uint_eq(latency_quantile(l, S(100 + LATENCY_SLOTS), LATENCY_SLOTS, 0.0), 9);

    /* An idle hour, then one query: only it is seen, in every window. */
    latency_record(l, S(3700), 11);
    ck_assert_uint_eq(latency_count(l, S(3700), LATENCY_SLOTS), 1);
    ck_assert_uint_eq(latency_quantile(l, S(3700), LATENCY_SLOTS, 0.0), 11);
    ck_assert_uint_eq(latency_quantile(l, S(3700), LATENCY_SLOTS, 1.0), 11);
    latency_free(l);
}
END_TEST

START_TEST(test_out_of_order)
{
    struct latency *l = latency_new(NULL);

    latency_record(l, S(50), 3);
    /* A stale timestamp lands in the newest second, never in the past. */
    latency_record(l, S(20), 4);
    ck_assert_uint_eq(latency_count(l, S(50), 1), 2);
    ck_assert_uint_eq(latency_count(l, S(20), 1), 0);
    ck_assert_uint_eq(latency_quantile(l, S(50), 1, 1.0), 4);
    latency_free(l);
}
END_TEST

/* Records n queries of value v during second sec. */
static void test_fill(struct latency *l, uint64_t sec, unsigned n, uint64_t v)
{
    for (unsigned i = 0; i < n; i++)
        latency_record(l, S(sec) + i, v);
}

START_TEST(test_baseline_converges)
{
    struct latency_config cfg = {.baseline_alpha = 0.05};
    struct latency *l = latency_new(&cfg);
    double expect;
    uint64_t sec;

    ck_assert_uint_eq(latency_baseline(l), 0);
    /* 20 s of 1000 ns: the first qualifying tick seeds, the rest agree. */
    for (sec = 0; sec < 20; sec++) {
        test_fill(l, sec, 100, 1000);
        latency_tick(l, S(sec + 1));
    }
    ck_assert_uint_eq(latency_baseline(l), 1000);
    /*
     * Then 2000 ns. Already after one second of it, the 10 s window's rank-990
     * query is a slow one, so every tick sees p99 = 2000 and the baseline
     * follows baseline += 0.05 * (2000 - baseline).
     */
    expect = 1000.0;
    for (int k = 1; k <= 100; k++, sec++) {
        test_fill(l, sec, 100, 2000);
        latency_tick(l, S(sec + 1));
        expect += 0.05 * (2000.0 - expect);
        ck_assert_uint_eq(latency_baseline(l), (uint64_t)llround(expect));
        if (k == 1)
            ck_assert_uint_eq(latency_baseline(l), 1050);
    }
    /* 1000 * 0.95^100 = 5.92: close to, but not yet at, the new level. */
    ck_assert_uint_eq(latency_baseline(l), 1994);
    latency_free(l);
}
END_TEST

START_TEST(test_baseline_sparse)
{
    struct latency *l = latency_new(NULL); /* min_count 20, 10 s window */
    uint64_t sec;

    /* A sparse start never seeds: 1 query/s is 10 per window. */
    for (sec = 0; sec < 30; sec++) {
        test_fill(l, sec, 1, 5000000);
        latency_tick(l, S(sec + 1));
    }
    ck_assert_uint_eq(latency_baseline(l), 0);
    /* Seed at 1000 ns with busy seconds, once the slow ones left the window. */
    for (sec = 40; sec < 60; sec++) {
        test_fill(l, sec, 50, 1000);
        latency_tick(l, S(sec + 1));
    }
    ck_assert_uint_eq(latency_baseline(l), 1000);
    /* Idle, then slow but sparse: the baseline must not move at all. */
    for (; sec < 90; sec++)
        latency_tick(l, S(sec + 1));
    for (; sec < 130; sec++) {
        test_fill(l, sec, 1, 900000000);
        latency_tick(l, S(sec + 1));
    }
    ck_assert_uint_eq(latency_baseline(l), 1000);
    /* 19 in a window is still below 20; 20 is enough. */
    test_fill(l, sec, 19 - 9, 900000000); /* 9 sparse ones are still in the window */
    latency_tick(l, S(sec + 1));
    ck_assert_uint_eq(latency_count(l, S(sec), 10), 19);
    ck_assert_uint_eq(latency_baseline(l), 1000);
    sec++;
    test_fill(l, sec, 2, 900000000); /* window now: 8 + 10 + 2 = 20 */
    latency_tick(l, S(sec + 1));
    ck_assert_uint_eq(latency_count(l, S(sec), 10), 20);
    ck_assert_uint_gt(latency_baseline(l), 1000);
    latency_free(l);
}
END_TEST

START_TEST(test_tick_once_per_second)
{
    struct latency_config cfg = {.baseline_alpha = 0.5, .baseline_min_count = 1};
    struct latency *l = latency_new(&cfg);

    test_fill(l, 10, 5, 40);
    latency_tick(l, S(11));
    ck_assert_uint_eq(latency_baseline(l), 40);
    test_fill(l, 11, 50, 60);
    latency_tick(l, S(12));
    /* p99 of {5 x 40, 50 x 60} = 60: 40 + 0.5 * 20. */
    ck_assert_uint_eq(latency_baseline(l), 50);
    /* Repeated ticks within the same second, or an older one, change nothing. */
    latency_tick(l, S(12) + 1);
    latency_tick(l, S(12) + 999999999);
    latency_tick(l, S(5));
    ck_assert_uint_eq(latency_baseline(l), 50);
    latency_tick(l, S(13));
    ck_assert_uint_eq(latency_baseline(l), 55);
    latency_free(l);
}
END_TEST

START_TEST(test_config_defaults)
{
    /* Out-of-range values fall back to the defaults: alpha 0.05, min 20. */
    struct latency_config cfg = {.baseline_alpha = 7.0, .baseline_window_s = 999};
    struct latency *l = latency_new(&cfg);

    test_fill(l, 0, 19, 30);
    latency_tick(l, S(1));
    ck_assert_uint_eq(latency_baseline(l), 0);
    test_fill(l, 1, 20, 30);
    latency_tick(l, S(2));
    ck_assert_uint_eq(latency_baseline(l), 30);
    test_fill(l, 2, 100, 50);
    latency_tick(l, S(3));
    ck_assert_uint_eq(latency_baseline(l), 31); /* 30 + 0.05 * 20 */
    latency_free(l);
    latency_free(NULL);
}
END_TEST

static void test_add(Suite *s, const char *name, const TTest *test)
{
    TCase *tc = tcase_create(name);

    tcase_add_test(tc, test);
    suite_add_tcase(s, tc);
}

static Suite *latency_suite(void)
{
    Suite *s = suite_create("latency");

    test_add(s, "window_quantiles", test_window_quantiles);
    test_add(s, "realistic_values", test_realistic_values);
    test_add(s, "expiry", test_expiry);
    test_add(s, "out_of_order", test_out_of_order);
    test_add(s, "baseline_converges", test_baseline_converges);
    test_add(s, "baseline_sparse", test_baseline_sparse);
    test_add(s, "tick_once_per_second", test_tick_once_per_second);
    test_add(s, "config_defaults", test_config_defaults);
    return s;
}

int main(void)
{
    return harness_run_suite(latency_suite());
}
