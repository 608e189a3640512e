/*
 * check_claim: unit tests for node/claim, pull mode's AIMD batch sizing
 * and the pressure that stops claims. Pure: no loop, no coordinator.
 */
#include <check.h>
#include <stdint.h>
#include <string.h>

#include "claim.h"
#include "suite.h"

/* +1 only when a claim of the whole batch was all accepted, capped at the max. */
START_TEST(test_additive_increase)
{
    ck_assert(claim_after_answers(1, 1, 1) == 2);
    ck_assert(claim_after_answers(5, 5, 5) == 6);
    ck_assert(claim_after_answers(5, 7, 7) == 6);
    /* The coordinator had fewer than asked: all fitted, but the batch was not tested. */
    ck_assert(claim_after_answers(5, 3, 3) == 5);
    ck_assert(claim_after_answers(CLAIM_MAX_BATCH, CLAIM_MAX_BATCH, CLAIM_MAX_BATCH) ==
              CLAIM_MAX_BATCH);
    ck_assert(claim_after_answers(CLAIM_MAX_BATCH - 0.5, 64, 64) == CLAIM_MAX_BATCH);
}
END_TEST

/* Any refusal halves the batch, never below 1. */
START_TEST(test_multiplicative_decrease)
{
    ck_assert(claim_after_answers(8, 8, 7) == 4);
    ck_assert(claim_after_answers(8, 2, 0) == 4);
    ck_assert(claim_after_answers(1, 1, 0) == 1);
    ck_assert(claim_after_answers(3, 3, 2) == 1.5);
    ck_assert(claim_backoff(10) == 5);
    ck_assert(claim_backoff(1.5) == 1);
    ck_assert(claim_after_answers(7, 0, 0) == 7);
}
END_TEST

static struct admission_config cfg;
static struct admission_state st;
static struct admission_signals sig;

static void setup(void)
{
    cfg = admission_config_default();
    cfg.latency_slo_ms = 100;
    cfg.latency_min_queries = 20;
    memset(&st, 0, sizeof(st));
    memset(&sig, 0, sizeof(sig));
    sig.now_ms = 1000;
}

START_TEST(test_no_pressure)
{
    sig.queries_10s = 1000;
    sig.p99_10s_ms = 100; /* at the SLO, not over it */
    ck_assert(!claim_pressure(&cfg, &st, &sig));
}
END_TEST

START_TEST(test_draining)
{
    sig.draining = true;
    ck_assert(claim_pressure(&cfg, &st, &sig));
}
END_TEST

/* p99 over the SLO stops claims once enough queries make it meaningful. */
START_TEST(test_latency)
{
    sig.p99_10s_ms = 150;
    sig.queries_10s = 19;
    ck_assert(!claim_pressure(&cfg, &st, &sig));
    sig.queries_10s = 20;
    ck_assert(claim_pressure(&cfg, &st, &sig));
    cfg.latency_slo_ms = 0; /* no SLO: latency never stops claims */
    ck_assert(!claim_pressure(&cfg, &st, &sig));
}
END_TEST

/* A closed memory gate stops claims; a closed DISK_FULL or concurrency gate does not. */
START_TEST(test_gates)
{
    struct admission_signals s = sig;

    s.psi_available = true;
    s.full_frac = 0.9;
    admission_observe(&cfg, &s, &st);
    ck_assert(admission_gate_closed(&st, WIRE_REASON_MEM_CRITICAL));
    ck_assert(claim_pressure(&cfg, &st, &sig));

    memset(&st, 0, sizeof(st));
    s = sig;
    s.disk_free_bytes = 0;
    admission_observe(&cfg, &s, &st);
    ck_assert(admission_gate_closed(&st, WIRE_REASON_DISK_FULL));
    ck_assert(!claim_pressure(&cfg, &st, &sig));
}
END_TEST

static Suite *claim_suite(void)
{
    Suite *s = suite_create("claim");
    TCase *tc;

    tc = tcase_create("aimd");
    tcase_add_test(tc, test_additive_increase);
    tcase_add_test(tc, test_multiplicative_decrease);
    suite_add_tcase(s, tc);
    tc = tcase_create("pressure");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_no_pressure);
    tcase_add_test(tc, test_draining);
    tcase_add_test(tc, test_latency);
    tcase_add_test(tc, test_gates);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return harness_run_suite(claim_suite());
}
