/*
 * check_shed: unit tests for node/shed, the choice of the segment shed
 * under sustained memory pressure and the reason it carries. Pure: the
 * candidates and the admission state are built by hand.
 */
#include <check.h>
#include <stdint.h>
#include <string.h>

#include "shed.h"
#include "suite.h"

START_TEST(test_pick_empty)
{
    ck_assert_ptr_null(shed_pick(NULL, 0));
}
END_TEST

/* The least recently queried goes first; never queried (0) before any query. */
START_TEST(test_pick_coldest)
{
    struct shed_candidate c[] = {
        {"a", 5000, 10}, {"b", 1000, 10}, {"c", 3000, 99}, {"d", 0, 1},
    };

    ck_assert_str_eq(shed_pick(c, 4)->id, "d");
    ck_assert_str_eq(shed_pick(c, 3)->id, "b");
}
END_TEST

/* Among equally cold segments, the largest frees most; a full tie keeps the first. */
START_TEST(test_pick_tie_largest)
{
    struct shed_candidate c[] = {
        {"small", 1000, 10}, {"big", 1000, 500}, {"mid", 1000, 200}, {"big2", 1000, 500},
    };

    ck_assert_str_eq(shed_pick(c, 4)->id, "big");
}
END_TEST

/*
 * A segment over its declared limit goes first, however recently queried;
 * among several, the one furthest over. A limit of 0 declares nothing, and
 * a footprint at the limit is not over it.
 */
START_TEST(test_pick_over_limit)
{
    struct shed_candidate c[] = {
        {"cold", 0, 100, 100, 0},        /* never queried, no limit */
        {"at", 9000, 100, 500, 500},     /* exactly at its limit */
        {"over", 9000, 100, 600, 500},   /* 100 over, queried just now */
        {"more", 8000, 100, 1000, 700},  /* 300 over */
    };

    ck_assert(!shed_over_limit(100, 0));
    ck_assert(!shed_over_limit(500, 500));
    ck_assert(shed_over_limit(501, 500));
    ck_assert_str_eq(shed_pick(c, 2)->id, "cold");
    ck_assert_str_eq(shed_pick(c, 3)->id, "over");
    ck_assert_str_eq(shed_pick(c, 4)->id, "more");
}
END_TEST

START_TEST(test_detail_over_limit)
{
    struct shed_candidate cand = {"seg", 0, 10, 3000000, 2000000};
    struct admission_signals sig;
    char buf[200];

    memset(&sig, 0, sizeof(sig));
    sig.full_frac = 0.5;
    shed_detail_over_limit(WIRE_REASON_MEM_CRITICAL, &cand, &sig, buf, sizeof(buf));
    ck_assert_str_eq(buf, "footprint 3000000 over its declared limit 2000000; shed first under "
                          "sustained MEM_CRITICAL (full stall 0.500, refaults 0/s)");
}
END_TEST

static struct admission_state closed_state(bool critical, bool thrashing)
{
    struct admission_config cfg = admission_config_default();
    struct admission_signals sig;
    struct admission_state st;

    memset(&st, 0, sizeof(st));
    memset(&sig, 0, sizeof(sig));
    sig.now_ms = 1000;
    sig.psi_available = true;
    sig.full_frac = critical ? 0.9 : 0;
    sig.refaults_available = true;
    sig.refaults_per_s = thrashing ? 1e9 : 0;
    admission_observe(&cfg, &sig, &st);
    ck_assert(admission_gate_closed(&st, WIRE_REASON_MEM_CRITICAL) == critical);
    ck_assert(admission_gate_closed(&st, WIRE_REASON_MEM_THRASHING) == thrashing);
    return st;
}

/* MEM_CRITICAL while that gate is closed (even with thrashing too), else MEM_THRASHING. */
START_TEST(test_reason)
{
    struct admission_state st;

    st = closed_state(true, false);
    ck_assert_int_eq(shed_reason(&st), WIRE_REASON_MEM_CRITICAL);
    st = closed_state(true, true);
    ck_assert_int_eq(shed_reason(&st), WIRE_REASON_MEM_CRITICAL);
    st = closed_state(false, true);
    ck_assert_int_eq(shed_reason(&st), WIRE_REASON_MEM_THRASHING);
}
END_TEST

/* A fast run to exhaustion sheds under MEM_EXHAUSTION, not under a gate that is open. */
START_TEST(test_reason_fast_run)
{
    struct admission_config cfg = admission_config_default();
    struct admission_signals sig;
    struct admission_state st;
    char buf[160];

    memset(&st, 0, sizeof(st));
    memset(&sig, 0, sizeof(sig));
    sig.now_ms = 1000;
    sig.psi_available = true;
    sig.refaults_available = true;
    sig.limit_bytes = 256ull << 20;
    sig.exhaust_available = true;
    sig.tte_ms = 4000;
    sig.fill_ms = 8000;
    sig.growth_bytes_per_s = 32.0 * 1048576;
    admission_observe(&cfg, &sig, &st);
    ck_assert(admission_should_shed(&cfg, &st, &sig));
    ck_assert_int_eq(shed_reason(&st), WIRE_REASON_MEM_EXHAUSTION);
    shed_detail(WIRE_REASON_MEM_EXHAUSTION, &sig, buf, sizeof(buf));
    ck_assert_str_eq(buf, "shed under a fast run to MEM_EXHAUSTION (time to exhaustion 4.0 s, "
                          "growth 32.0 MiB/s)");
    /* Thrashing that closed but no longer breaches does not name the shed. */
    sig.refaults_per_s = 1e9;
    sig.now_ms = 1100;
    admission_observe(&cfg, &sig, &st);
    sig.refaults_per_s = 0;
    sig.now_ms = 1200;
    admission_observe(&cfg, &sig, &st);
    ck_assert(admission_gate_closed(&st, WIRE_REASON_MEM_THRASHING));
    ck_assert_int_eq(shed_reason(&st), WIRE_REASON_MEM_EXHAUSTION);
}
END_TEST

START_TEST(test_detail)
{
    struct admission_signals sig;
    char buf[160];

    memset(&sig, 0, sizeof(sig));
    sig.full_frac = 0.25;
    sig.refaults_per_s = 1234.4;
    shed_detail(WIRE_REASON_MEM_THRASHING, &sig, buf, sizeof(buf));
    ck_assert_str_eq(buf, "shed under sustained MEM_THRASHING (full stall 0.250, refaults 1234/s)");
}
END_TEST

static Suite *shed_suite(void)
{
    Suite *s = suite_create("shed");
    TCase *tc;

    tc = tcase_create("pick");
    tcase_add_test(tc, test_pick_empty);
    tcase_add_test(tc, test_pick_coldest);
    tcase_add_test(tc, test_pick_tie_largest);
    tcase_add_test(tc, test_pick_over_limit);
    suite_add_tcase(s, tc);
    tc = tcase_create("reason");
    tcase_add_test(tc, test_reason);
    tcase_add_test(tc, test_reason_fast_run);
    tcase_add_test(tc, test_detail);
    tcase_add_test(tc, test_detail_over_limit);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return harness_run_suite(shed_suite());
}
