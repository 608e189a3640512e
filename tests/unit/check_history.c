/*
 * check_history: the per-node ring behind GET /v1/history. One sample per
 * step at most, bounded, oldest first, and only the window asked for.
 */
#include <check.h>
#include <stdint.h>

#include "history.h"
#include "suite.h"

static struct wire_pressure pressure(uint64_t usage)
{
    struct wire_pressure p = {0};

    p.usage_bytes = usage;
    p.limit_bytes = 1000;
    p.wss_bytes = usage / 2;
    p.some_avg10 = 1.5;
    p.full_avg10 = 0.5;
    p.p99_seconds = 0.002;
    return p;
}

START_TEST(test_one_sample_per_step)
{
    static struct history h;
    static struct wire_history_sample out[HISTORY_SAMPLES];
    struct wire_pressure p;

    for (uint64_t t = 0; t < 10000; t += 500) { /* a report every 500 ms for 10 s */
        p = pressure(t);
        history_push(&h, 1000000 + t, &p);
    }
    ck_assert_uint_eq(h.n, 5); /* 0, 2, 4, 6, 8 s */
    ck_assert_uint_eq(history_copy(&h, 1010000, 600000, out), 5);
    ck_assert_uint_eq(out[0].ts_ms, 1000000);
    ck_assert_uint_eq(out[1].usage_bytes, 2000);
    ck_assert_uint_eq(out[4].ts_ms, 1008000);
    ck_assert_uint_eq(out[4].wss_bytes, 4000);
    ck_assert_uint_eq(out[4].limit_bytes, 1000);
    ck_assert(out[4].p99_seconds == 0.002 && out[4].some_avg10 == 1.5 && out[4].full_avg10 == 0.5);
    /* Only the last 3 s. */
    ck_assert_uint_eq(history_copy(&h, 1010000, 3000, out), 1);
    ck_assert_uint_eq(out[0].ts_ms, 1008000);
}
END_TEST

START_TEST(test_bounded_oldest_goes)
{
    static struct history h;
    static struct wire_history_sample out[HISTORY_SAMPLES];
    struct wire_pressure p;
    uint64_t t = 0;

    for (unsigned i = 0; i < HISTORY_SAMPLES + 7; i++, t += HISTORY_STEP_MS) {
        p = pressure(i);
        history_push(&h, t, &p);
    }
    ck_assert_uint_eq(h.n, HISTORY_SAMPLES);
    ck_assert_uint_eq(history_copy(&h, t, UINT64_MAX / 2, out), HISTORY_SAMPLES);
    ck_assert_uint_eq(out[0].usage_bytes, 7); /* the 7 oldest went */
    ck_assert_uint_eq(out[HISTORY_SAMPLES - 1].usage_bytes, HISTORY_SAMPLES + 6);
    for (unsigned i = 1; i < HISTORY_SAMPLES; i++)
        ck_assert_uint_eq(out[i].ts_ms - out[i - 1].ts_ms, HISTORY_STEP_MS);
}
END_TEST

START_TEST(test_clock_back)
{
    static struct history h;
    struct wire_pressure p = pressure(1);

    history_push(&h, 50000, &p);
    history_push(&h, 20000, &p); /* the wall clock stepped back: still recorded */
    ck_assert_uint_eq(h.n, 2);
    history_push(&h, 21000, &p); /* within a step of the newest */
    ck_assert_uint_eq(h.n, 2);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("history");
    TCase *tc = tcase_create("ring");

    tcase_add_test(tc, test_one_sample_per_step);
    tcase_add_test(tc, test_bounded_oldest_goes);
    tcase_add_test(tc, test_clock_back);
    suite_add_tcase(s, tc);
    return harness_run_suite(s);
}
