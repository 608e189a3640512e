/*
 * check_watermark: unit tests for node/watermark: probing upward while
 * quiet, back-off to the base on a breach, the ceiling, a pause in quiet,
 * the config check; the judgement (breach, loud signals, demand); and the
 * loop the node runs, admission and watermark together, on simulated time.
 */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "reason.h"
#include "watermark.h"
#include "suite.h"

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

#define GIB (1ull << 30)

/* A calm node with a 10 GiB limit, 5 GiB used, at now. */
static struct admission_signals calm(uint64_t now)
{
    struct admission_signals s;

    memset(&s, 0, sizeof(s));
    s.now_ms = now;
    s.psi_available = true;
    s.refaults_available = true;
    s.limit_bytes = 10 * GIB;
    s.wss_bytes = 5 * GIB;
    s.p99_10s_ms = 10;
    s.queries_10s = 1000;
    s.disk_free_bytes = UINT64_MAX;
    return s;
}

START_TEST(test_judge_breach)
{
    struct admission_config acfg = admission_config_default();
    struct admission_signals s = calm(100000);
    const enum wire_reason loud[] = {WIRE_REASON_MEM_CRITICAL, WIRE_REASON_MEM_EXHAUSTION,
                                     WIRE_REASON_MEM_PRESSURE, WIRE_REASON_MEM_THRASHING,
                                     WIRE_REASON_LATENCY_SLO};
    struct watermark_view v;

    for (size_t i = 0; i < sizeof(loud) / sizeof(loud[0]); i++) {
        struct admission_state st;

        memset(&st, 0, sizeof(st));
        st.gate[loud[i]].closed = true;
        watermark_judge(&cfg, &acfg, &s, &st, true, s.now_ms, &v);
        ck_assert(v.breach);
        ck_assert(!v.quiet);
        ck_assert_str_eq(v.why, reason_name(loud[i]));
    }
    /* A full node (MEM_CAPACITY closed) is what the watermark is for: no breach. */
    {
        struct admission_state st;

        memset(&st, 0, sizeof(st));
        st.gate[WIRE_REASON_MEM_CAPACITY].closed = true;
        st.gate[WIRE_REASON_LOAD_CONCURRENCY].closed = true;
        s.wss_bytes = (uint64_t)(10.0 * GIB * 0.85);
        watermark_judge(&cfg, &acfg, &s, &st, false, 0, &v);
        ck_assert(!v.breach);
        ck_assert(v.quiet);
    }
}
END_TEST

START_TEST(test_judge_demand)
{
    struct admission_config acfg = admission_config_default();
    struct admission_state st;
    struct admission_signals s = calm(100000);
    struct watermark_view v;

    memset(&st, 0, sizeof(st));
    /* Half full, nothing refused: quiet signals but no demand. */
    watermark_judge(&cfg, &acfg, &s, &st, false, 0, &v);
    ck_assert(!v.quiet && !v.breach);
    ck_assert_str_eq(v.why, "no demand");
    /* Within one step (0.01 x 10 GiB) of the admit limit (8.5 GiB): demand. */
    s.wss_bytes = (uint64_t)(10.0 * GIB * 0.84) + 1;
    watermark_judge(&cfg, &acfg, &s, &st, false, 0, &v);
    ck_assert(v.quiet);
    ck_assert_str_eq(v.why, "quiet, at the admit limit");
    /* Loads in flight count with the footprint. */
    s.wss_bytes = 8 * GIB;
    s.reserved_bytes = GIB / 2;
    watermark_judge(&cfg, &acfg, &s, &st, false, 0, &v);
    ck_assert(v.quiet);
    s.reserved_bytes = 0;
    watermark_judge(&cfg, &acfg, &s, &st, false, 0, &v);
    ck_assert(!v.quiet);
    /* The one at the adaptive watermark in force, not the configured one. */
    s.wss_bytes = (uint64_t)(10.0 * GIB * 0.85);
    s.admit_watermark = 0.90;
    watermark_judge(&cfg, &acfg, &s, &st, false, 0, &v);
    ck_assert(!v.quiet);
    ck_assert_str_eq(v.why, "no demand");
    /* A capacity refusal within --retry-capacity (60 s) is demand; an older one is not. */
    watermark_judge(&cfg, &acfg, &s, &st, true, s.now_ms - 59999, &v);
    ck_assert(v.quiet);
    ck_assert_str_eq(v.why, "quiet, capacity refused lately");
    watermark_judge(&cfg, &acfg, &s, &st, true, s.now_ms - 60000, &v);
    ck_assert(!v.quiet);
    /* Demand does not make a loud signal quiet. */
    s.p99_10s_ms = 220;
    watermark_judge(&cfg, &acfg, &s, &st, true, s.now_ms, &v);
    ck_assert(!v.quiet && !v.breach);
    ck_assert_str_eq(v.why, "p99");
    /* No limit known: nothing to probe against. */
    s = calm(100000);
    s.limit_bytes = 0;
    watermark_judge(&cfg, &acfg, &s, &st, false, 0, &v);
    ck_assert(!v.quiet);
    ck_assert_str_eq(v.why, "memory limit unknown");
}
END_TEST

/*
 * The node's loop: every 100 ms the node fills up to the admit limit in
 * force, admission observes, the watermark is judged and updated.
 */
static double loop(struct watermark *w, const struct admission_config *acfg,
                   struct admission_state *st, struct admission_signals *s, uint64_t from,
                   uint64_t to)
{
    struct watermark_view v;

    for (uint64_t t = from; t < to; t += 100) {
        s->now_ms = t;
        s->admit_watermark = w->started ? w->current : 0;
        s->wss_bytes = admission_admit_limit(acfg, s);
        admission_observe(acfg, s, st);
        watermark_judge(&cfg, acfg, s, st, false, 0, &v);
        watermark_update(w, &cfg, v.quiet, v.breach, t);
    }
    return w->current;
}

START_TEST(test_node_loop)
{
    struct admission_config acfg = admission_config_default();
    struct admission_state st;
    struct admission_signals s = calm(0);
    struct watermark w = {0};

    memset(&st, 0, sizeof(st));
    /* Full and quiet: one step per 1 s probe, 0.85 -> 0.95 in 10 s, then held. */
    ck_assert_double_eq_tol(loop(&w, &acfg, &st, &s, 0, 5100), 0.90, 1e-9);
    ck_assert_double_eq_tol(loop(&w, &acfg, &st, &s, 5100, 60000), 0.95, 1e-9);
    /* A memory stall with reclaim closes MEM_PRESSURE: back to 0.85 on that tick. */
    s.some_frac = 0.2;
    s.pgscan_per_s = 1000;
    ck_assert_double_eq_tol(loop(&w, &acfg, &st, &s, 60000, 60100), 0.85, 1e-9);
    ck_assert_uint_eq(w.backoffs, 1);
    ck_assert_double_eq_tol(loop(&w, &acfg, &st, &s, 60100, 61000), 0.85, 1e-9);
    /*
     * Calm again from 61 s (last breach at 60.9 s): the gate reopens after
     * its 5 s hold-down (65.9 s), slow start runs 10 s (last tick 75.8 s),
     * then a full 1 s probe of quiet: the first step comes at 76.8 s.
     */
    s.some_frac = 0;
    s.pgscan_per_s = 0;
    ck_assert_double_eq_tol(loop(&w, &acfg, &st, &s, 61000, 76800), 0.85, 1e-9);
    ck_assert_double_eq_tol(loop(&w, &acfg, &st, &s, 76800, 76900), 0.86, 1e-9);
    ck_assert_uint_eq(w.backoffs, 1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("watermark");
    TCase *tc = tcase_create("probe_up");

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
    tc = tcase_create("judge_breach");
    tcase_add_test(tc, test_judge_breach);
    suite_add_tcase(s, tc);
    tc = tcase_create("judge_demand");
    tcase_add_test(tc, test_judge_demand);
    suite_add_tcase(s, tc);
    tc = tcase_create("node_loop");
    tcase_add_test(tc, test_node_loop);
    suite_add_tcase(s, tc);
    return harness_run_suite(s);
}
