/*
 * check_tte: unit tests for node/tte on synthetic series, 100 ms apart: a
 * slow leak, a fast fill, a flat series with noise, a series where only the
 * node itself grows, swap counted in the capacity or not, a clock that goes
 * back, and an unknown capacity. Expected values follow from the documented
 * formulas: tte = (capacity - used) / rate, fill = capacity / rate.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include "tte.h"
#include "suite.h"

#define MiB (UINT64_C(1) << 20)
#define MS  UINT64_C(1000000)

/* Feeds n points 100 ms apart growing by rate bytes/s from used0; returns the last estimate. */
static struct tte_estimate feed(struct tte *t, unsigned n, uint64_t used0, double rate,
                                uint64_t capacity)
{
    struct tte_estimate e = {0};

    for (unsigned i = 0; i < n; i++) {
        uint64_t used = used0 + (uint64_t)(rate * (double)i / 10.0);

        tte_add(t, (uint64_t)(i + 1) * 100 * MS, used, 0, capacity, &e);
    }
    return e;
}

START_TEST(test_slow_leak)
{
    struct tte t;
    /* 256 MiB, 1 MiB/s from 128 MiB: after 5 s, 128 + 4.9 MiB used. */
    struct tte_estimate e;

    tte_init(&t, 0);
    e = feed(&t, 50, 128 * MiB, (double)MiB, 256 * MiB);
    ck_assert(e.valid);
    ck_assert_double_eq_tol(e.rate_bytes_per_s, (double)MiB, 0.01 * (double)MiB);
    /* headroom = 256 - 128 - 4.9 = 123.1 MiB -> ~123 s */
    ck_assert_uint_ge(e.tte_ms, 121000);
    ck_assert_uint_le(e.tte_ms, 125000);
    /* fill = 256 s */
    ck_assert_uint_ge(e.fill_ms, 254000);
    ck_assert_uint_le(e.fill_ms, 258000);
}
END_TEST

START_TEST(test_fast_fill)
{
    struct tte t;
    struct tte_estimate e;

    tte_init(&t, 0);
    /* 20 MiB/s from 100 MiB for 1 s (10 points): 118 MiB used, 138 MiB left. */
    e = feed(&t, 10, 100 * MiB, 20.0 * (double)MiB, 256 * MiB);
    ck_assert(e.valid);
    ck_assert_double_eq_tol(e.rate_bytes_per_s, 20.0 * (double)MiB, 0.01 * (double)MiB);
    ck_assert_uint_ge(e.tte_ms, 6800);
    ck_assert_uint_le(e.tte_ms, 7000);
    ck_assert_uint_ge(e.fill_ms, 12700);
    ck_assert_uint_le(e.fill_ms, 12900);
}
END_TEST

START_TEST(test_noise_flat)
{
    struct tte t;
    struct tte_estimate e = {0};

    tte_init(&t, 0);
    /* Flat 200 MiB with +-4 MiB alternating noise: the fit's slope stays tiny. */
    for (unsigned i = 0; i < 50; i++) {
        uint64_t used = 200 * MiB + ((i % 2) ? 4 * MiB : 0) - ((i % 2) ? 0 : 4 * MiB);

        tte_add(&t, (uint64_t)(i + 1) * 100 * MS, used, 0, 256 * MiB, &e);
    }
    ck_assert(e.valid);
    ck_assert_double_lt(e.rate_bytes_per_s, 0.2 * (double)MiB);
    /* One spike of +30 MiB at the end does not make a run to OOM of it. */
    tte_add(&t, 51 * 100 * MS, 230 * MiB, 0, 256 * MiB, &e);
    ck_assert(e.valid);
    ck_assert_uint_gt(e.tte_ms, 30000);
}
END_TEST

START_TEST(test_self_growth_excluded)
{
    struct tte t;
    struct tte_estimate e = {0};

    tte_init(&t, 0);
    /* The node loads 50 MiB/s; nobody else grows: no exhaustion estimate. */
    for (unsigned i = 0; i < 20; i++) {
        uint64_t self = 10 * MiB + (uint64_t)i * 5 * MiB;

        tte_add(&t, (uint64_t)(i + 1) * 100 * MS, 50 * MiB + self, self, 256 * MiB, &e);
    }
    ck_assert(e.valid);
    ck_assert_double_eq_tol(e.rate_bytes_per_s, 0.0, 1.0);
    ck_assert_uint_eq(e.tte_ms, TTE_NEVER_MS);
    ck_assert_uint_eq(e.fill_ms, TTE_NEVER_MS);
}
END_TEST

START_TEST(test_swap_capacity)
{
    struct tte a, b;
    struct tte_estimate ea, eb;

    tte_init(&a, 0);
    tte_init(&b, 0);
    /* Same growth; swap absent (capacity = limit) or 256 MiB of swap allowed. */
    ea = feed(&a, 20, 200 * MiB, 4.0 * (double)MiB, 256 * MiB);
    eb = feed(&b, 20, 200 * MiB, 4.0 * (double)MiB, 512 * MiB);
    ck_assert(ea.valid && eb.valid);
    /* used = 207.6 MiB: 48.4 MiB left -> ~12.1 s; with swap 304.4 MiB -> ~76.1 s. */
    ck_assert_uint_ge(ea.tte_ms, 11900);
    ck_assert_uint_le(ea.tte_ms, 12300);
    ck_assert_uint_ge(eb.tte_ms, 75800);
    ck_assert_uint_le(eb.tte_ms, 76400);
}
END_TEST

START_TEST(test_shrinking_and_full)
{
    struct tte t;
    struct tte_estimate e;

    tte_init(&t, 0);
    e = feed(&t, 20, 200 * MiB, -2.0 * (double)MiB, 256 * MiB);
    ck_assert(e.valid);
    ck_assert_double_lt(e.rate_bytes_per_s, 0);
    ck_assert_uint_eq(e.tte_ms, TTE_NEVER_MS);
    /* Over capacity and growing: zero headroom, tte 0. */
    tte_init(&t, 0);
    e = feed(&t, 20, 300 * MiB, (double)MiB, 256 * MiB);
    ck_assert_uint_eq(e.headroom_bytes, 0);
    ck_assert_uint_eq(e.tte_ms, 0);
}
END_TEST

START_TEST(test_too_few_points_and_reset)
{
    struct tte t;
    struct tte_estimate e;

    tte_init(&t, 0);
    e = feed(&t, TTE_MIN_POINTS - 1, 100 * MiB, (double)MiB, 256 * MiB);
    ck_assert(!e.valid);
    ck_assert_uint_eq(e.tte_ms, TTE_NEVER_MS);
    e = feed(&t, 10, 100 * MiB, (double)MiB, 256 * MiB);
    /* feed restarts at t = 100 ms: the clock went back, so the series restarted. */
    ck_assert_uint_eq(t.n, 10);
    ck_assert(e.valid);
    /* Unknown or unlimited capacity: no estimate. */
    tte_init(&t, 0);
    e = feed(&t, 10, 100 * MiB, (double)MiB, UINT64_MAX);
    ck_assert(!e.valid);
    e = feed(&t, 10, 100 * MiB, (double)MiB, 0);
    ck_assert(!e.valid);
}
END_TEST

START_TEST(test_window)
{
    struct tte t;
    struct tte_estimate e = {0};

    /* 1 s window: a leak that stopped 2 s ago no longer counts. */
    tte_init(&t, 1000 * MS);
    for (unsigned i = 0; i < 60; i++) {
        uint64_t used = i < 30 ? 100 * MiB + (uint64_t)i * MiB : 130 * MiB;

        tte_add(&t, (uint64_t)(i + 1) * 100 * MS, used, 0, 256 * MiB, &e);
    }
    ck_assert(e.valid);
    ck_assert_uint_le(t.n, 11);
    ck_assert_double_eq_tol(e.rate_bytes_per_s, 0.0, 1.0);
}
END_TEST

static Suite *tte_suite(void)
{
    Suite *s = suite_create("tte");
    struct {
        const char *name;
        const TTest *test;
    } tests[] = {
        {"slow_leak", test_slow_leak},
        {"fast_fill", test_fast_fill},
        {"noise_flat", test_noise_flat},
        {"self_growth_excluded", test_self_growth_excluded},
        {"swap_capacity", test_swap_capacity},
        {"shrinking_and_full", test_shrinking_and_full},
        {"too_few_points_and_reset", test_too_few_points_and_reset},
        {"window", test_window},
    };

    for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
        TCase *tc = tcase_create(tests[i].name);

        tcase_add_test(tc, tests[i].test);
        suite_add_tcase(s, tc);
    }
    return s;
}

int main(void)
{
    return harness_run_suite(tte_suite());
}
