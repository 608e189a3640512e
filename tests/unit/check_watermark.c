/*
 * check_watermark: unit tests for node/watermark: probing upward while
 * quiet, back-off to the base on a breach, the ceiling, a pause in quiet,
 * and the config check.
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>

#include "watermark.h"

static const struct watermark_config cfg = {
    .base = 0.85, .ceiling = 0.95, .step = 0.01, .probe_ms = 1000};

/* Quiet ticks every 100 ms over [from, to). */
static double run(struct watermark *w, uint64_t from, uint64_t to, bool quiet, bool breach)
{
    double v = 0;

    for (uint64_t t = from; t < to; t += 100)
        v = watermark_update(w, &cfg, quiet, breach, t);
    return v;
}

START_TEST(test_probe_up)
{
    struct watermark w = {0};

    ck_assert_double_eq_tol(watermark_update(&w, &cfg, true, false, 0), 0.85, 1e-9);
    /* One step per whole second of quiet: at t = 1000, 2000, 3000. */
    ck_assert_double_eq_tol(run(&w, 100, 1000, true, false), 0.85, 1e-9);
    ck_assert_double_eq_tol(run(&w, 1000, 3100, true, false), 0.88, 1e-9);
}
END_TEST

START_TEST(test_backoff)
{
    struct watermark w = {0};

    run(&w, 0, 5100, true, false);
    ck_assert_double_eq_tol(w.current, 0.90, 1e-9);
    /* One breach: back to the base at once. */
    ck_assert_double_eq_tol(watermark_update(&w, &cfg, false, true, 5100), 0.85, 1e-9);
    ck_assert_uint_eq(w.backoffs, 1);
    /* Probing restarts a full probe_ms after the breach. */
    ck_assert_double_eq_tol(run(&w, 5200, 6100, true, false), 0.85, 1e-9);
    ck_assert_double_eq_tol(run(&w, 6100, 6200, true, false), 0.86, 1e-9);
    /* A breach at the base is not a backoff. */
    w.current = 0.85;
    watermark_update(&w, &cfg, false, true, 7000);
    ck_assert_uint_eq(w.backoffs, 1);
}
END_TEST

START_TEST(test_ceiling_and_pause)
{
    struct watermark w = {0};

    ck_assert_double_eq_tol(run(&w, 0, 60000, true, false), 0.95, 1e-9);
    /* Not quiet (but no breach) holds and restarts the quiet run. */
    w.current = 0.90;
    watermark_update(&w, &cfg, false, false, 60000);
    ck_assert_double_eq_tol(run(&w, 60100, 61000, true, false), 0.90, 1e-9);
    ck_assert_double_eq_tol(run(&w, 61000, 61100, true, false), 0.91, 1e-9);
}
END_TEST

START_TEST(test_config_check)
{
    struct watermark_config c = cfg;
    char err[100];

    ck_assert_int_eq(watermark_config_check(&c, err, sizeof(err)), 0);
    c.ceiling = 0.8;
    ck_assert_int_eq(watermark_config_check(&c, err, sizeof(err)), -EINVAL);
    c = cfg;
    c.step = 0;
    ck_assert_int_eq(watermark_config_check(&c, err, sizeof(err)), -EINVAL);
    c = cfg;
    c.base = 0;
    ck_assert_int_eq(watermark_config_check(&c, err, sizeof(err)), -EINVAL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("watermark");
    TCase *tc = tcase_create("probe_up");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_probe_up);
    suite_add_tcase(s, tc);
    tc = tcase_create("backoff");
    tcase_add_test(tc, test_backoff);
    suite_add_tcase(s, tc);
    tc = tcase_create("ceiling_and_pause");
    tcase_add_test(tc, test_ceiling_and_pause);
    suite_add_tcase(s, tc);
    tc = tcase_create("config_check");
    tcase_add_test(tc, test_config_check);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
