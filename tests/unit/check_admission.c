/*
 * check_admission: unit tests for node/admission. Everything is driven by
 * simulated time (signals.now_ms) and explicit random values, so each
 * expectation is exact: every gate fires with its reason and a Retry-After
 * computed from the documented formula, gates are evaluated in DESIGN.md's
 * order, a square wave of stall does not make the verdict flap, hold-down
 * and slow start run for exactly their configured time, jitter stays within
 * its bounds, the cost model converges and clamps, shedding waits for a
 * sustained breach and respects its cooldown.
 */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "admission.h"
#include "segfmt.h"
#include "suite.h"

#define GIB     (1ull << 30)
#define MIB     (1ull << 20)
#define TICK_MS 100
/* Random values that give jitter factors 0.8, about 1.0 and 1.2. */
#define RND_LO  0u
#define RND_MID (UINT32_MAX / 2u)
#define RND_HI  UINT32_MAX

/* A node at rest: 8 GiB limit (admit limit 6.8 GiB), 1 GiB working set. */
static struct admission_signals test_calm(uint64_t now)
{
    struct admission_signals s;

    memset(&s, 0, sizeof(s));
    s.now_ms = now;
    s.psi_available = true;
    s.refaults_available = true;
    s.limit_bytes = 8 * GIB;
    s.wss_bytes = 1 * GIB;
    s.p99_1s_ms = 10;
    s.p99_10s_ms = 10;
    s.baseline_p99_ms = 10;
    s.queries_10s = 1000;
    s.disk_free_bytes = 100 * GIB;
    return s;
}

static struct admission_request test_req(uint64_t cost, uint64_t file)
{
    struct admission_request r = {.cost_bytes = cost, .file_bytes = file};

    return r;
}

/* Calls admission_observe() every tick for t in [from, to), each with *sig at time t. */
static void test_run(const struct admission_config *cfg, struct admission_signals *sig,
                     struct admission_state *st, uint64_t from, uint64_t to)
{
    for (uint64_t t = from; t < to; t += TICK_MS) {
        sig->now_ms = t;
        admission_observe(cfg, sig, st);
    }
}

static struct admission_verdict test_decide(const struct admission_config *cfg,
                                            const struct admission_signals *sig,
                                            struct admission_state *st,
                                            const struct admission_request *req, uint32_t rnd)
{
    struct admission_verdict v;

    memset(&v, 0x5a, sizeof(v)); /* decide must write every field */
    admission_decide(cfg, sig, st, req, rnd, &v);
    ck_assert_uint_lt(strnlen(v.detail, sizeof(v.detail)), sizeof(v.detail));
    return v;
}

#define ck_assert_detail_has(v, s)                                                                 \
    ck_assert_msg(strstr((v).detail, (s)) != NULL, "detail \"%s\" lacks \"%s\"", (v).detail, (s))

/* Makes gate r (and only r, for a calm node) refuse req. */
static void test_make_bad(enum wire_reason r, struct admission_signals *s,
                          struct admission_request *req)
{
    switch (r) {
    case WIRE_REASON_DRAINING:
        s->draining = true;
        break;
    case WIRE_REASON_MEM_CRITICAL:
        s->full_frac = 0.5;
        break;
    case WIRE_REASON_MEM_PRESSURE:
        s->some_frac = 0.5;
        s->pgscan_per_s = 1000;
        break;
    case WIRE_REASON_MEM_THRASHING:
        s->refaults_per_s = 50000;
        break;
    case WIRE_REASON_MEM_CAPACITY:
        req->cost_bytes = 100 * GIB;
        break;
    case WIRE_REASON_LATENCY_SLO:
        s->p99_10s_ms = 1000;
        break;
    case WIRE_REASON_LOAD_CONCURRENCY:
        s->loads_in_flight = 5;
        break;
    case WIRE_REASON_DISK_FULL:
        req->file_bytes = 1024 * GIB;
        break;
    default:
        ck_abort_msg("not a gate: %d", (int)r);
    }
}

/* The un-jittered Retry-After for each gate as made bad by test_make_bad(). */
static double test_base_retry(enum wire_reason r)
{
    switch (r) {
    case WIRE_REASON_DRAINING:
        return 30000;
    case WIRE_REASON_MEM_CRITICAL:
        return floor(10000 * log(0.5 / 0.01)); /* 10 s x ln(value / exit) */
    case WIRE_REASON_MEM_PRESSURE:
        return floor(10000 * log(0.5 / 0.02));
    case WIRE_REASON_MEM_THRASHING:
        return floor(10000 * log(50000.0 / 1000));
    case WIRE_REASON_MEM_CAPACITY:
        return 60000;
    case WIRE_REASON_LATENCY_SLO:
        return 5000;
    case WIRE_REASON_LOAD_CONCURRENCY:
        return 250;
    case WIRE_REASON_DISK_FULL:
        return 300000;
    default:
        return -1;
    }
}

START_TEST(test_defaults)
{
    struct admission_config c = admission_config_default(), bad;
    char err[200];

    ck_assert_double_eq(c.high_watermark, 0.85);
    ck_assert_double_eq(c.critical_full_enter, 0.05);
    ck_assert_double_eq(c.critical_full_exit, 0.01);
    ck_assert_double_eq(c.pressure_some_enter, 0.10);
    ck_assert_double_eq(c.pressure_some_exit, 0.02);
    ck_assert_double_eq(c.latency_baseline_factor, 2.0);
    ck_assert_int_eq(c.max_loads, 4);
    ck_assert_uint_eq(c.hold_down_ms, 5000);
    ck_assert_uint_eq(c.slow_start_ms, 10000);
    ck_assert_uint_eq(c.retry_capacity_ms, 60000);
    ck_assert_uint_eq(c.disk_reserve_bytes, 256 * MIB);
    ck_assert_uint_eq(c.shed_after_ms, 3000);
    ck_assert_uint_eq(c.shed_cooldown_ms, 5000);
    ck_assert_int_eq(admission_config_check(&c, err, sizeof(err)), 0);
    ck_assert_str_eq(err, "");

    bad = c;
    bad.critical_full_exit = 0.2; /* above enter */
    ck_assert_int_eq(admission_config_check(&bad, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "--critical-full-exit"));
    bad = c;
    bad.max_loads = 0;
    ck_assert_int_eq(admission_config_check(&bad, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "--max-loads"));
    bad = c;
    bad.retry_jitter = 1.0;
    ck_assert_int_eq(admission_config_check(&bad, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "--retry-jitter"));
    bad = c;
    bad.high_watermark = nan("");
    ck_assert_int_eq(admission_config_check(&bad, NULL, 0), -EINVAL);
    bad = c;
    bad.retry_pressure_max_ms = 5000; /* below the 10 s base */
    ck_assert_int_eq(admission_config_check(&bad, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "--retry-pressure-max"));
}
END_TEST

START_TEST(test_calm_accepts)
{
    struct admission_config cfg = admission_config_default();
    struct admission_state st;
    struct admission_signals s = test_calm(1000);
    struct admission_request req = test_req(1 * GIB, 1 * GIB);
    struct admission_verdict v;

    memset(&st, 0, sizeof(st));
    admission_observe(&cfg, &s, &st);
    v = test_decide(&cfg, &s, &st, &req, RND_MID);
    ck_assert(v.accept);
    ck_assert_int_eq(v.reason, WIRE_REASON_NONE);
    ck_assert_uint_eq(v.retry_after_ms, 0);
    ck_assert_detail_has(v, "admitted: cost 1073741824");
    ck_assert_ptr_null(strstr(v.detail, "unavailable"));
    for (int r = ADMISSION_GATE_FIRST; r <= ADMISSION_GATE_LAST; r++)
        ck_assert(!admission_gate_closed(&st, (enum wire_reason)r));
}
END_TEST

/* Each gate alone: its reason, and Retry-After exactly base x 0.8 / x 1.0 / x 1.2. */
START_TEST(test_each_gate_fires)
{
    struct admission_config cfg = admission_config_default();
    const uint32_t rnds[] = {RND_LO, RND_MID, RND_HI};
    const double factors[] = {0.8, 1.0, 1.2};

    for (int r = ADMISSION_GATE_FIRST; r <= ADMISSION_GATE_LAST; r++) {
        for (size_t i = 0; i < 3; i++) {
            struct admission_state st;
            struct admission_signals s = test_calm(500);
            struct admission_request req = test_req(1 * GIB, 1 * GIB);
            struct admission_verdict v;
            double want;

            memset(&st, 0, sizeof(st));
            test_make_bad((enum wire_reason)r, &s, &req);
            admission_observe(&cfg, &s, &st);
            v = test_decide(&cfg, &s, &st, &req, rnds[i]);
            ck_assert_msg(!v.accept, "%s accepted", reason_name((enum wire_reason)r));
            ck_assert_str_eq(reason_name(v.reason), reason_name((enum wire_reason)r));
            want = test_base_retry((enum wire_reason)r) * factors[i];
            ck_assert_msg(fabs((double)v.retry_after_ms - want) <= 1.0, "%s: retry %u, want %.0f",
                          reason_name(v.reason), v.retry_after_ms, want);
            /* Sane: at least a fraction of a second (the header rounds up to 1 s; the
             * body's milliseconds let a coordinator retry a free load slot sooner),
             * at most a few minutes. */
            ck_assert_uint_ge(v.retry_after_ms, 150);
            ck_assert_uint_le(v.retry_after_ms, 360000);
            ck_assert_uint_gt(strlen(v.detail), 10);
        }
    }
}
END_TEST

START_TEST(test_details_name_signals)
{
    struct admission_config cfg = admission_config_default();
    struct admission_state st;
    struct admission_signals s;
    struct admission_request req = test_req(1 * GIB, 1 * GIB);
    struct admission_verdict v;

    cfg.max_loads = 2; /* the expectations below assume two load slots */

    memset(&st, 0, sizeof(st));
    s = test_calm(0);
    s.full_frac = 0.2;
    v = test_decide(&cfg, &s, &st, &req, RND_MID);
    ck_assert_detail_has(v, "full stall fraction 0.2 over enter 0.05 (exit 0.01)");

    memset(&st, 0, sizeof(st));
    s = test_calm(0);
    s.some_avg10 = 25;
    v = test_decide(&cfg, &s, &st, &req, RND_MID);
    ck_assert_int_eq(v.reason, WIRE_REASON_MEM_PRESSURE);
    ck_assert_detail_has(v, "some avg10 25% over enter 20%");
    /* 10 s x ln(25 / 10) is under one time constant: the floor of 10 s. */
    ck_assert_uint_eq(v.retry_after_ms, 10000);

    /* A pressure retry is never shorter than the hold-down still to run. */
    cfg.hold_down_ms = 30000;
    memset(&st, 0, sizeof(st));
    v = test_decide(&cfg, &s, &st, &req, RND_MID);
    ck_assert_uint_eq(v.retry_after_ms, 30000);
    s.some_avg10 = 0;
    s.now_ms = 15000; /* calm for 15 s: 15 s of hold-down left */
    admission_observe(&cfg, &s, &st);
    v = test_decide(&cfg, &s, &st, &req, RND_MID);
    ck_assert_int_eq(v.reason, WIRE_REASON_MEM_PRESSURE);
    ck_assert_uint_eq(v.retry_after_ms, 15000);
    cfg.hold_down_ms = 5000;

    memset(&st, 0, sizeof(st));
    s = test_calm(0);
    s.refaults_per_s = 7000;
    v = test_decide(&cfg, &s, &st, &req, RND_MID);
    ck_assert_detail_has(v, "workingset refaults 7000 pages/s over enter 5000 pages/s");

    memset(&st, 0, sizeof(st));
    s = test_calm(0);
    s.p99_10s_ms = 400;
    s.baseline_p99_ms = 100;
    v = test_decide(&cfg, &s, &st, &req, RND_MID);
    ck_assert_int_eq(v.reason, WIRE_REASON_LATENCY_SLO);
    ck_assert_detail_has(v, "p99 over 10 s 400 ms");
    ck_assert_detail_has(v, "SLO 250 ms");

    memset(&st, 0, sizeof(st));
    s = test_calm(0);
    s.loads_in_flight = 2;
    v = test_decide(&cfg, &s, &st, &req, RND_MID);
    ck_assert_detail_has(v, "2 load(s) in flight, max 2");

    memset(&st, 0, sizeof(st));
    s = test_calm(0);
    s.disk_free_bytes = 1 * GIB;
    v = test_decide(&cfg, &s, &st, &req, RND_MID);
    ck_assert_int_eq(v.reason, WIRE_REASON_DISK_FULL);
    ck_assert_detail_has(v, "file 1073741824 + disk reserve 268435456 > disk free 1073741824");

    /* Extreme values: the detail is truncated, never overrun. */
    memset(&st, 0, sizeof(st));
    s = test_calm(0);
    s.psi_available = false;
    s.refaults_available = false;
    s.wss_bytes = UINT64_MAX;
    s.reserved_bytes = UINT64_MAX;
    s.limit_bytes = UINT64_MAX;
    req = test_req(UINT64_MAX, UINT64_MAX);
    v = test_decide(&cfg, &s, &st, &req, RND_MID);
    ck_assert_int_eq(v.reason, WIRE_REASON_MEM_CAPACITY);
    ck_assert_uint_le(strlen(v.detail), sizeof(v.detail) - 1);
}
END_TEST

/* Gates r..LAST all closed: r decides. So each gate outranks every later one. */
START_TEST(test_gate_order)
{
    struct admission_config cfg = admission_config_default();

    for (int r = ADMISSION_GATE_FIRST; r <= ADMISSION_GATE_LAST; r++) {
        struct admission_state st;
        struct admission_signals s = test_calm(0);
        struct admission_request req = test_req(1 * GIB, 1 * GIB);
        struct admission_verdict v;

        memset(&st, 0, sizeof(st));
        for (int k = r; k <= ADMISSION_GATE_LAST; k++)
            test_make_bad((enum wire_reason)k, &s, &req);
        admission_observe(&cfg, &s, &st);
        v = test_decide(&cfg, &s, &st, &req, RND_MID);
        ck_assert_str_eq(reason_name(v.reason), reason_name((enum wire_reason)r));
        /* Every gate the signals close is shown closed for status. */
        for (int k = r; k <= ADMISSION_GATE_LAST; k++)
            if (k != WIRE_REASON_MEM_CAPACITY && k != WIRE_REASON_DISK_FULL) /* per request */
                ck_assert_msg(admission_gate_closed(&st, (enum wire_reason)k), "%s open",
                              reason_name((enum wire_reason)k));
    }
}
END_TEST

START_TEST(test_draining_wins)
{
    struct admission_config cfg = admission_config_default();
    struct admission_state st;
    struct admission_signals s = test_calm(0);
    struct admission_request req = test_req(1 * GIB, 1 * GIB);
    struct admission_verdict v;

    memset(&st, 0, sizeof(st));
    for (int k = ADMISSION_GATE_FIRST; k <= ADMISSION_GATE_LAST; k++)
        test_make_bad((enum wire_reason)k, &s, &req);
    s.oom_kills_recent = 3;
    test_run(&cfg, &s, &st, 0, 20000);
    v = test_decide(&cfg, &s, &st, &req, RND_MID);
    ck_assert_int_eq(v.reason, WIRE_REASON_DRAINING);
    ck_assert_uint_eq(v.retry_after_ms, 30000);
    ck_assert_str_eq(v.detail, "node is draining");
    /* Undrained, the next gate speaks. */
    s.draining = false;
    v = test_decide(&cfg, &s, &st, &req, RND_MID);
    ck_assert_int_eq(v.reason, WIRE_REASON_MEM_CRITICAL);
}
END_TEST

START_TEST(test_critical_oom)
{
    struct admission_config cfg = admission_config_default();
    struct admission_state st;
    struct admission_signals s = test_calm(0);
    struct admission_request req = test_req(1 * GIB, 1 * GIB);
    struct admission_verdict v;

    memset(&st, 0, sizeof(st));
    s.oom_kills_recent = 1;
    admission_observe(&cfg, &s, &st);
    v = test_decide(&cfg, &s, &st, &req, RND_MID);
    ck_assert_int_eq(v.reason, WIRE_REASON_MEM_CRITICAL);
    ck_assert_uint_eq(v.retry_after_ms, 60000); /* the count lasts a minute */
    ck_assert_detail_has(v, "1 oom_kill event(s) in the last minute");

    cfg.critical_on_oom_kill = false;
    memset(&st, 0, sizeof(st));
    admission_observe(&cfg, &s, &st);
    v = test_decide(&cfg, &s, &st, &req, RND_MID);
    ck_assert(v.accept);
}
END_TEST

START_TEST(test_pressure_needs_reclaim)
{
    struct admission_config cfg = admission_config_default();
    struct admission_state st;
    struct admission_signals s = test_calm(0);
    struct admission_request req = test_req(1 * GIB, 1 * GIB);
    struct admission_verdict v;

    memset(&st, 0, sizeof(st));
    s.some_frac = 0.3; /* stalled, but nothing reclaimed: not memory pressure */
    test_run(&cfg, &s, &st, 0, 2000);
    v = test_decide(&cfg, &s, &st, &req, RND_MID);
    ck_assert(v.accept);
    ck_assert(!admission_gate_closed(&st, WIRE_REASON_MEM_PRESSURE));

    s.pgscan_per_s = 1;
    test_run(&cfg, &s, &st, 2000, 2100);
    ck_assert(admission_gate_closed(&st, WIRE_REASON_MEM_PRESSURE));
    v = test_decide(&cfg, &s, &st, &req, RND_MID);
    ck_assert_int_eq(v.reason, WIRE_REASON_MEM_PRESSURE);
    ck_assert_detail_has(v, "some stall fraction 0.3 over enter 0.1");
    ck_assert_detail_has(v, "pgscan 1/s");
}
END_TEST

START_TEST(test_capacity_reserved)
{
    struct admission_config cfg = admission_config_default();
    struct admission_state st;
    struct admission_signals s = test_calm(0);
    struct admission_request req;
    struct admission_verdict v;
    uint64_t admit = (uint64_t)((double)(10 * GIB) * 0.85);

    memset(&st, 0, sizeof(st));
    s.limit_bytes = 10 * GIB;
    s.wss_bytes = 6 * GIB;
    ck_assert_uint_eq(admission_admit_limit(&cfg, &s), admit);
    /* 6 + 1 = 7 GiB fits under 8.5 GiB without reservations ... */
    req = test_req(1 * GIB, 1 * GIB);
    v = test_decide(&cfg, &s, &st, &req, RND_MID);
    ck_assert(v.accept);
    /* ... but not once 2 GiB of loads are in flight. */
    s.reserved_bytes = 2 * GIB;
    v = test_decide(&cfg, &s, &st, &req, RND_MID);
    ck_assert_int_eq(v.reason, WIRE_REASON_MEM_CAPACITY);
    ck_assert_uint_eq(v.retry_after_ms, 60000);
    ck_assert_detail_has(v, "wss 6442450944 + reserved 2147483648 + cost 1073741824 > admit limit");
    ck_assert_detail_has(v, "(limit 10737418240 x 0.85)");
    /* A smaller segment still fits: capacity is per request, with no hold-down. */
    req = test_req(admit - 8 * GIB, 1 * GIB);
    v = test_decide(&cfg, &s, &st, &req, RND_MID);
    ck_assert(v.accept);
    req.cost_bytes++;
    v = test_decide(&cfg, &s, &st, &req, RND_MID);
    ck_assert_int_eq(v.reason, WIRE_REASON_MEM_CAPACITY);
    ck_assert(!admission_gate_closed(&st, WIRE_REASON_MEM_CAPACITY));

    /* An explicit budget overrides limit x watermark. */
    cfg.budget_bytes = 4 * GIB;
    s.wss_bytes = 3 * GIB;
    s.reserved_bytes = 512 * MIB;
    req = test_req(600 * MIB, 1 * GIB);
    v = test_decide(&cfg, &s, &st, &req, RND_MID);
    ck_assert_int_eq(v.reason, WIRE_REASON_MEM_CAPACITY);
    req.cost_bytes = 512 * MIB;
    v = test_decide(&cfg, &s, &st, &req, RND_MID);
    ck_assert(v.accept);

    /* Full (no headroom at all) closes the gate even before a tick, for any cost. */
    memset(&st, 0, sizeof(st));
    cfg.budget_bytes = 0;
    s.limit_bytes = 10 * GIB;
    s.wss_bytes = admit;
    s.reserved_bytes = 0;
    req = test_req(0, 1 * GIB);
    v = test_decide(&cfg, &s, &st, &req, RND_MID);
    ck_assert_int_eq(v.reason, WIRE_REASON_MEM_CAPACITY);
    ck_assert_detail_has(v, "= 9126805504 reaches admit limit 9126805504");
    ck_assert(admission_gate_closed(&st, WIRE_REASON_MEM_CAPACITY));

    /* Full closes the gate, held down like the others. */
    memset(&st, 0, sizeof(st));
    cfg.budget_bytes = 0;
    s.limit_bytes = 10 * GIB;
    s.wss_bytes = 9 * GIB;
    s.reserved_bytes = 0;
    test_run(&cfg, &s, &st, 1000, 1100);
    ck_assert(admission_gate_closed(&st, WIRE_REASON_MEM_CAPACITY));
    s.wss_bytes = 5 * GIB;
    test_run(&cfg, &s, &st, 1100, 6000);
    req = test_req(1 * MIB, 1 * MIB);
    v = test_decide(&cfg, &s, &st, &req, RND_MID);
    ck_assert_int_eq(v.reason, WIRE_REASON_MEM_CAPACITY);
    ck_assert_detail_has(v, "held closed 100 ms more");
    test_run(&cfg, &s, &st, 6000, 6100);
    ck_assert(!admission_gate_closed(&st, WIRE_REASON_MEM_CAPACITY));
}
END_TEST

START_TEST(test_latency)
{
    struct admission_config cfg = admission_config_default();
    struct admission_state st;
    struct admission_signals s = test_calm(0);
    struct admission_request req = test_req(1 * GIB, 1 * GIB);
    struct admission_verdict v;

    memset(&st, 0, sizeof(st));
    s.p99_10s_ms = 400;
    s.baseline_p99_ms = 300; /* over the SLO but not 2x baseline: the node is always like this */
    test_run(&cfg, &s, &st, 0, 1000);
    ck_assert(test_decide(&cfg, &s, &st, &req, RND_MID).accept);
    s.baseline_p99_ms = 100;
    s.queries_10s = 99; /* too few queries for a p99 */
    test_run(&cfg, &s, &st, 1000, 2000);
    ck_assert(test_decide(&cfg, &s, &st, &req, RND_MID).accept);
    s.queries_10s = 100;
    test_run(&cfg, &s, &st, 2000, 2100);
    v = test_decide(&cfg, &s, &st, &req, RND_MID);
    ck_assert_int_eq(v.reason, WIRE_REASON_LATENCY_SLO);
    ck_assert_uint_eq(v.retry_after_ms, 5000);
    /* Exit is below SLO x 0.8 = 200 ms: 210 ms keeps it closed for good. */
    s.p99_10s_ms = 210;
    test_run(&cfg, &s, &st, 2100, 20000);
    ck_assert(admission_gate_closed(&st, WIRE_REASON_LATENCY_SLO));
    s.p99_10s_ms = 190; /* last breach at 19.9 s: open at 24.9 s */
    test_run(&cfg, &s, &st, 20000, 24900);
    ck_assert(admission_gate_closed(&st, WIRE_REASON_LATENCY_SLO));
    test_run(&cfg, &s, &st, 24900, 25000);
    ck_assert(!admission_gate_closed(&st, WIRE_REASON_LATENCY_SLO));
    /* An unknown baseline leaves the SLO alone to decide. */
    memset(&st, 0, sizeof(st));
    s.p99_10s_ms = 260;
    s.baseline_p99_ms = 0;
    ck_assert_int_eq(test_decide(&cfg, &s, &st, &req, RND_MID).reason, WIRE_REASON_LATENCY_SLO);
    memset(&st, 0, sizeof(st));
    s.baseline_p99_ms = nan("");
    ck_assert_int_eq(test_decide(&cfg, &s, &st, &req, RND_MID).reason, WIRE_REASON_LATENCY_SLO);
    /* SLO 0 disables the gate. */
    cfg.latency_slo_ms = 0;
    memset(&st, 0, sizeof(st));
    s.p99_10s_ms = 1e6;
    test_run(&cfg, &s, &st, 0, 1000);
    ck_assert(test_decide(&cfg, &s, &st, &req, RND_MID).accept);
}
END_TEST

/*
 * Hysteresis: 60 s of a square wave that alternates every 100 ms between
 * above enter and between exit and enter. The gate closes once and stays
 * closed; with one threshold and no hold-down the same wave flaps every tick.
 */
static uint64_t test_square_wave(const struct admission_config *cfg, double hi, double lo,
                                 unsigned *ret_accepts)
{
    struct admission_state st;
    struct admission_signals s = test_calm(0);
    struct admission_request req = test_req(1 * MIB, 1 * MIB);
    uint64_t changes = 0;
    bool was = false;

    memset(&st, 0, sizeof(st));
    *ret_accepts = 0;
    for (unsigned i = 0; i < 600; i++) {
        s.now_ms = (uint64_t)i * TICK_MS;
        s.full_frac = i % 2 == 0 ? hi : lo;
        admission_observe(cfg, &s, &st);
        if (admission_gate_closed(&st, WIRE_REASON_MEM_CRITICAL) != was)
            changes++;
        was = admission_gate_closed(&st, WIRE_REASON_MEM_CRITICAL);
        if (test_decide(cfg, &s, &st, &req, RND_MID).accept)
            (*ret_accepts)++;
    }
    ck_assert_uint_eq(changes, admission_gate_transitions(&st, WIRE_REASON_MEM_CRITICAL));
    return changes;
}

START_TEST(test_hysteresis_square_wave)
{
    struct admission_config cfg = admission_config_default(), naive = cfg;
    unsigned accepts;
    uint64_t n;

    n = test_square_wave(&cfg, 0.08, 0.03, &accepts); /* 0.03 is between exit and enter */
    ck_assert_uint_eq(n, 1);
    ck_assert_uint_eq(accepts, 0);
    n = test_square_wave(&cfg, 0.08, 0.005, &accepts); /* dipping under exit for 100 ms */
    ck_assert_uint_eq(n, 1);
    ck_assert_uint_eq(accepts, 0);

    naive.critical_full_exit = naive.critical_full_enter;
    naive.hold_down_ms = 0;
    n = test_square_wave(&naive, 0.08, 0.03, &accepts);
    ck_assert_uint_eq(n, 600); /* the control: a flap per tick */
    ck_assert_uint_eq(accepts, 300);
}
END_TEST

START_TEST(test_hold_down)
{
    struct admission_config cfg = admission_config_default();
    struct admission_state st;
    struct admission_signals s = test_calm(0);
    struct admission_request req = test_req(1 * MIB, 1 * MIB);
    struct admission_verdict v;

    memset(&st, 0, sizeof(st));
    s.full_frac = 0.2;
    test_run(&cfg, &s, &st, 0, 100); /* last breach at t = 0 */
    s.full_frac = 0.0;
    test_run(&cfg, &s, &st, 100, 3000);
    ck_assert(admission_gate_closed(&st, WIRE_REASON_MEM_CRITICAL));
    s.now_ms = 3000;
    v = test_decide(&cfg, &s, &st, &req, RND_MID);
    ck_assert_int_eq(v.reason, WIRE_REASON_MEM_CRITICAL);
    ck_assert_detail_has(v, "under exit 0.01; held closed 2000 ms more (hold-down)");
    /* A breach at 3 s restarts the hold-down: closed through 7.9 s, open at 8 s. */
    s.full_frac = 0.02; /* over exit only, yet the gate is closed: a breach */
    test_run(&cfg, &s, &st, 3000, 3100);
    s.full_frac = 0.0;
    test_run(&cfg, &s, &st, 3100, 8000);
    ck_assert(admission_gate_closed(&st, WIRE_REASON_MEM_CRITICAL));
    test_run(&cfg, &s, &st, 8000, 8100);
    ck_assert(!admission_gate_closed(&st, WIRE_REASON_MEM_CRITICAL));
    ck_assert_uint_eq(admission_gate_transitions(&st, WIRE_REASON_MEM_CRITICAL), 2);
    ck_assert(test_decide(&cfg, &s, &st, &req, RND_MID).accept);
}
END_TEST

/* Between two ticks (or before the first), decide closes a gate on a fresh breach but never opens
 * one. */
START_TEST(test_decide_closes_not_opens)
{
    struct admission_config cfg = admission_config_default();
    struct admission_state st;
    struct admission_signals s = test_calm(0);
    struct admission_request req = test_req(1 * MIB, 1 * MIB);

    memset(&st, 0, sizeof(st));
    s.refaults_per_s = 9000;
    ck_assert_int_eq(test_decide(&cfg, &s, &st, &req, RND_MID).reason, WIRE_REASON_MEM_THRASHING);
    ck_assert(admission_gate_closed(&st, WIRE_REASON_MEM_THRASHING));
    s.refaults_per_s = 0;
    s.now_ms = 60000;
    ck_assert_int_eq(test_decide(&cfg, &s, &st, &req, RND_MID).reason, WIRE_REASON_MEM_THRASHING);
    admission_observe(&cfg, &s, &st);
    ck_assert(test_decide(&cfg, &s, &st, &req, RND_MID).accept);
}
END_TEST

START_TEST(test_slow_start)
{
    struct admission_config cfg = admission_config_default();
    struct admission_state st;
    struct admission_signals s = test_calm(0);
    struct admission_request req = test_req(1 * MIB, 1 * MIB);
    struct admission_verdict v;

    cfg.max_loads = 2; /* the expectations below assume two load slots */

    memset(&st, 0, sizeof(st));
    ck_assert(!admission_in_slow_start(&cfg, &st, 0)); /* a fresh node starts at full speed */
    s.loads_in_flight = 1;
    ck_assert(test_decide(&cfg, &s, &st, &req, RND_MID).accept);

    s.some_frac = 0.5;
    s.pgscan_per_s = 100;
    test_run(&cfg, &s, &st, 0, 100);
    s.some_frac = 0;
    s.pgscan_per_s = 0;
    test_run(&cfg, &s, &st, 100, 5000);
    ck_assert(admission_gate_closed(&st, WIRE_REASON_MEM_PRESSURE));
    test_run(&cfg, &s, &st, 5000, 5100); /* reopens at 5 s: slow start until 15 s */
    ck_assert(!admission_gate_closed(&st, WIRE_REASON_MEM_PRESSURE));
    ck_assert(admission_in_slow_start(&cfg, &st, 5000));
    ck_assert(admission_in_slow_start(&cfg, &st, 14999));
    ck_assert(!admission_in_slow_start(&cfg, &st, 15000));

    /* One load in flight is the slow-start maximum. */
    s.now_ms = 5000;
    v = test_decide(&cfg, &s, &st, &req, RND_MID);
    ck_assert_int_eq(v.reason, WIRE_REASON_LOAD_CONCURRENCY);
    ck_assert_detail_has(v, "1 load(s) in flight, max 1 during slow start (10000 ms left, then 2)");
    ck_assert(admission_gate_closed(&st, WIRE_REASON_LOAD_CONCURRENCY));
    s.now_ms = 14900;
    ck_assert_int_eq(test_decide(&cfg, &s, &st, &req, RND_MID).reason,
                     WIRE_REASON_LOAD_CONCURRENCY);
    s.loads_in_flight = 0;
    ck_assert(test_decide(&cfg, &s, &st, &req, RND_MID).accept);

    /* Half the headroom: admit 6.8 GiB, used 2.8 GiB, so 4 GiB free and 2 GiB allowed. */
    s.wss_bytes = (uint64_t)((double)(8 * GIB) * 0.85) - 4 * GIB;
    req = test_req(2 * GIB + 1, 1 * MIB);
    s.now_ms = 12000;
    v = test_decide(&cfg, &s, &st, &req, RND_MID);
    ck_assert_int_eq(v.reason, WIRE_REASON_MEM_CAPACITY);
    ck_assert_detail_has(v, "slow start: cost 2147483649 > 0.5 x headroom 4294967296");
    ck_assert_uint_eq(v.retry_after_ms, 3000); /* when slow start ends */
    req.cost_bytes = 2 * GIB;
    ck_assert(test_decide(&cfg, &s, &st, &req, RND_MID).accept);

    /* After slow start: full concurrency and full headroom. */
    s.loads_in_flight = 1;
    test_run(&cfg, &s, &st, 5100, 15100);
    ck_assert(!admission_gate_closed(&st, WIRE_REASON_LOAD_CONCURRENCY));
    req.cost_bytes = 4 * GIB;
    v = test_decide(&cfg, &s, &st, &req, RND_MID);
    ck_assert_msg(v.accept, "%s", v.detail);
    s.loads_in_flight = 2;
    ck_assert_int_eq(test_decide(&cfg, &s, &st, &req, RND_MID).reason,
                     WIRE_REASON_LOAD_CONCURRENCY);
}
END_TEST

/* A fixed xorshift generator so failures reproduce. */
static uint32_t test_rng_state = 0x9E3779B9u;

static uint32_t test_rng(void)
{
    test_rng_state ^= test_rng_state << 13;
    test_rng_state ^= test_rng_state >> 17;
    test_rng_state ^= test_rng_state << 5;
    return test_rng_state;
}

START_TEST(test_jitter)
{
    struct admission_config cfg = admission_config_default();
    struct admission_state st;
    struct admission_signals s = test_calm(0);
    struct admission_request req = test_req(1 * MIB, 1 * MIB);
    uint32_t lo = UINT32_MAX, hi = 0, a, b;

    memset(&st, 0, sizeof(st));
    /* This test fixes its own concurrency settings, whatever the defaults. */
    cfg.max_loads = 2;
    cfg.retry_concurrency_ms = 1000;
    s.loads_in_flight = 2; /* LOAD_CONCURRENCY: base 1000 ms */
    ck_assert_uint_eq(test_decide(&cfg, &s, &st, &req, RND_LO).retry_after_ms, 800);
    ck_assert_uint_eq(test_decide(&cfg, &s, &st, &req, RND_MID).retry_after_ms, 1000);
    ck_assert_uint_eq(test_decide(&cfg, &s, &st, &req, RND_HI).retry_after_ms, 1200);
    for (int i = 0; i < 10000; i++) {
        uint32_t r = test_decide(&cfg, &s, &st, &req, test_rng()).retry_after_ms;

        lo = r < lo ? r : lo;
        hi = r > hi ? r : hi;
    }
    ck_assert_uint_ge(lo, 800);
    ck_assert_uint_le(hi, 1200);
    ck_assert_uint_lt(lo, 810); /* the whole range is used */
    ck_assert_uint_gt(hi, 1190);
    a = test_decide(&cfg, &s, &st, &req, 1000000000u).retry_after_ms;
    b = test_decide(&cfg, &s, &st, &req, 3000000000u).retry_after_ms;
    ck_assert_uint_ne(a, b);
    ck_assert_uint_eq(a, 893); /* 1000 x (1 + 0.2 x (2 x 0.2328 - 1)) */
    cfg.retry_jitter = 0;
    ck_assert_uint_eq(test_decide(&cfg, &s, &st, &req, RND_HI).retry_after_ms, 1000);
}
END_TEST

START_TEST(test_psi_unavailable)
{
    struct admission_config cfg = admission_config_default();
    struct admission_state st;
    struct admission_signals s = test_calm(0);
    struct admission_request req = test_req(1 * GIB, 1 * GIB);
    struct admission_verdict v;

    memset(&st, 0, sizeof(st));
    s.psi_available = false; /* whatever the (stale) PSI fields say */
    s.full_frac = 1;
    s.some_frac = 1;
    s.some_avg10 = 99;
    s.full_avg10 = 99;
    s.pgscan_per_s = 1e6;
    test_run(&cfg, &s, &st, 0, 10000);
    ck_assert_uint_eq(admission_gate_transitions(&st, WIRE_REASON_MEM_CRITICAL), 0);
    ck_assert_uint_eq(admission_gate_transitions(&st, WIRE_REASON_MEM_PRESSURE), 0);
    ck_assert(!admission_should_shed(&cfg, &st, &s));
    v = test_decide(&cfg, &s, &st, &req, RND_MID);
    ck_assert(v.accept);
    ck_assert_detail_has(v, "psi unavailable: stall gates off");
    /* Capacity still works, and says PSI was missing. */
    req.cost_bytes = 6 * GIB;
    v = test_decide(&cfg, &s, &st, &req, RND_MID);
    ck_assert_int_eq(v.reason, WIRE_REASON_MEM_CAPACITY);
    ck_assert_detail_has(v, "psi unavailable");
    /* An oom_kill is not PSI: it still closes MEM_CRITICAL. */
    s.oom_kills_recent = 1;
    admission_observe(&cfg, &s, &st);
    ck_assert(admission_gate_closed(&st, WIRE_REASON_MEM_CRITICAL));
    /* Refaults missing: no thrashing gate; limit unknown: no capacity gate. */
    memset(&st, 0, sizeof(st));
    s = test_calm(0);
    s.refaults_available = false;
    s.refaults_per_s = 1e9;
    s.limit_bytes = 0;
    req.cost_bytes = 1000 * GIB;
    admission_observe(&cfg, &s, &st);
    v = test_decide(&cfg, &s, &st, &req, RND_MID);
    ck_assert(v.accept);
    ck_assert_detail_has(v, "refaults unavailable: MEM_THRASHING off");
    ck_assert_detail_has(v, "memory limit unknown: MEM_CAPACITY off");
}
END_TEST

START_TEST(test_cost_estimate)
{
    struct admission_cost zero, c;

    memset(&zero, 0, sizeof(zero)); /* behaves as 1.0 */
    admission_cost_init(&c);
    ck_assert_double_eq(c.factor, 1.0);
    ck_assert_uint_eq(c.samples, 0);
    ck_assert_uint_eq(admission_cost_estimate(&zero, 1000, 100), 100000);
    ck_assert_uint_eq(admission_cost_estimate(&c, 1000, 100), 100000);
    /* Never row_count alone: a wide-row segment costs more than a narrow one. */
    ck_assert_uint_eq(admission_cost_estimate(&c, 1000, 4096), 4096000);
    ck_assert_uint_eq(admission_cost_estimate(&c, 1000, 0), 1000); /* 0 counts as 1 byte */
    c.factor = 2.5;
    ck_assert_uint_eq(admission_cost_estimate(&c, 1000, 3), 7500);
    c.factor = 1.5;
    ck_assert_uint_eq(admission_cost_estimate(&c, 1, 3), 5); /* rounded up */
    /* Overflow saturates, in the product and in the factor. */
    ck_assert_uint_eq(admission_cost_estimate(&c, UINT64_MAX, 2), UINT64_MAX);
    c.factor = 20;
    ck_assert_uint_eq(admission_cost_estimate(&c, 1000000000000ull, 16ull << 20), UINT64_MAX);
    c.factor = nan("");
    ck_assert_uint_eq(admission_cost_estimate(&c, 10, 10), 100);
}
END_TEST

/*
 * A declared request: admission counts the larger of it and the learnt
 * estimate, so a segment declaring more than its rows suggest is refused
 * where the estimate alone would have fitted, and one declaring less is
 * still counted at its estimate.
 */
START_TEST(test_cost_declared)
{
    struct admission_config cfg = admission_config_default();
    struct admission_signals s = test_calm(0);
    struct admission_state st;
    struct admission_cost c;
    struct admission_request req;
    struct admission_verdict v;
    uint64_t est;

    admission_cost_init(&c);
    c.factor = 2.0;
    est = admission_cost_estimate(&c, 1000000, 100); /* 200 MB */
    ck_assert_uint_eq(est, 200000000);
    ck_assert_uint_eq(admission_cost_declared(est, 0), est);             /* none declared */
    ck_assert_uint_eq(admission_cost_declared(est, 50000000), est);      /* under: the estimate */
    ck_assert_uint_eq(admission_cost_declared(est, 3000000000ull), 3000000000ull);
    ck_assert_uint_eq(admission_cost_declared(UINT64_MAX, 1), UINT64_MAX);

    /* 8 GiB x 0.85 = 6.8 GiB admit limit, 1 GiB used: 5.8 GiB of headroom. */
    memset(&st, 0, sizeof(st));
    req = test_req(admission_cost_declared(est, 0), est);
    v = test_decide(&cfg, &s, &st, &req, RND_MID);
    ck_assert(v.accept);
    memset(&st, 0, sizeof(st));
    req = test_req(admission_cost_declared(est, 6 * GIB), est);
    v = test_decide(&cfg, &s, &st, &req, RND_MID);
    ck_assert(!v.accept);
    ck_assert_int_eq(v.reason, WIRE_REASON_MEM_CAPACITY);
    ck_assert_detail_has(v, "cost 6442450944");
}
END_TEST

START_TEST(test_cost_learn)
{
    struct admission_cost c;

    admission_cost_init(&c);
    admission_cost_learn(&c, 1000, 2000);
    ck_assert_double_eq_tol(c.factor, pow(2, 0.2), 1e-12);
    for (int i = 1; i < 30; i++)
        admission_cost_learn(&c, 1000, 2000);
    ck_assert_uint_eq(c.samples, 30);
    ck_assert_double_eq_tol(c.factor, pow(2, 1 - pow(0.8, 30)), 1e-9);
    ck_assert_double_eq_tol(c.factor, 2.0, 0.01);
    ck_assert_uint_eq(admission_cost_estimate(&c, 1000, 100), (uint64_t)ceil(100000 * c.factor));
    for (int i = 0; i < 100; i++)
        admission_cost_learn(&c, 1000, 500);
    ck_assert_double_eq_tol(c.factor, 0.5, 1e-6);

    /* Outliers clamp at 20 and 1/20: one sample moves the factor by 20^0.2 at most. */
    admission_cost_init(&c);
    admission_cost_learn(&c, 1, 1000000);
    ck_assert_double_eq_tol(c.factor, pow(20, 0.2), 1e-12);
    admission_cost_init(&c);
    admission_cost_learn(&c, 1000000, 1);
    ck_assert_double_eq_tol(c.factor, pow(0.05, 0.2), 1e-12);
    for (int i = 0; i < 500; i++)
        admission_cost_learn(&c, 1, UINT64_MAX);
    ck_assert_double_eq_tol(c.factor, 20.0, 1e-9);

    /* Samples without information are ignored. */
    admission_cost_init(&c);
    admission_cost_learn(&c, 0, 1000);
    admission_cost_learn(&c, 1000, 0);
    ck_assert_uint_eq(c.samples, 0);
    ck_assert_double_eq(c.factor, 1.0);
}
END_TEST

START_TEST(test_shed)
{
    struct admission_config cfg = admission_config_default();
    struct admission_state st;
    struct admission_signals s = test_calm(0);
    uint64_t first = 0;

    /* Thrashing from t = 0: sheds at 3 s, not before; then once per 5 s cooldown. */
    memset(&st, 0, sizeof(st));
    s.refaults_per_s = 20000;
    for (uint64_t t = 0; t <= 20000; t += TICK_MS) {
        s.now_ms = t;
        admission_observe(&cfg, &s, &st);
        if (admission_should_shed(&cfg, &st, &s)) {
            if (first == 0)
                first = t;
            ck_assert_uint_eq((t - first) % 5000, 0);
            admission_note_shed(&st, t);
        }
    }
    ck_assert_uint_eq(first, 3000);
    ck_assert_uint_eq(st.last_shed_ms, 18000); /* 3, 8, 13, 18 s */
    /* Refaults stop: the gate is held closed, but there is nothing left to shed for. */
    s.refaults_per_s = 0;
    test_run(&cfg, &s, &st, 20100, 24000);
    ck_assert(admission_gate_closed(&st, WIRE_REASON_MEM_THRASHING));
    ck_assert(!admission_should_shed(&cfg, &st, &s));

    /* Critical stall for 2.9 s, then a dip under exit: the run restarts, no shed. */
    memset(&st, 0, sizeof(st));
    s = test_calm(0);
    s.full_frac = 0.3;
    test_run(&cfg, &s, &st, 0, 2900);
    ck_assert(!admission_should_shed(&cfg, &st, &s));
    s.full_frac = 0.001;
    test_run(&cfg, &s, &st, 2900, 3000);
    s.full_frac = 0.3; /* a new run from 3 s: sheds at 6 s */
    test_run(&cfg, &s, &st, 3000, 6000);
    ck_assert(!admission_should_shed(&cfg, &st, &s));
    test_run(&cfg, &s, &st, 6000, 6100);
    ck_assert(admission_should_shed(&cfg, &st, &s));
    /* The hold-down keeps the gate closed, but the stall is over: no shed. */
    s.full_frac = 0;
    test_run(&cfg, &s, &st, 6100, 6200);
    ck_assert(admission_gate_closed(&st, WIRE_REASON_MEM_CRITICAL));
    ck_assert(!admission_should_shed(&cfg, &st, &s));

    /* An oom_kill alone closes admission for a minute but sheds nothing. */
    memset(&st, 0, sizeof(st));
    s = test_calm(0);
    s.oom_kills_recent = 1;
    test_run(&cfg, &s, &st, 0, 30000);
    ck_assert(admission_gate_closed(&st, WIRE_REASON_MEM_CRITICAL));
    ck_assert(!admission_should_shed(&cfg, &st, &s));

    /* Pressure (not critical) never sheds; shed_after 0 disables shedding. */
    memset(&st, 0, sizeof(st));
    s = test_calm(0);
    s.some_frac = 0.9;
    s.pgscan_per_s = 1e5;
    test_run(&cfg, &s, &st, 0, 30000);
    ck_assert(!admission_should_shed(&cfg, &st, &s));
    s.refaults_per_s = 1e6;
    test_run(&cfg, &s, &st, 30000, 40000);
    ck_assert(admission_should_shed(&cfg, &st, &s));
    cfg.shed_after_ms = 0;
    ck_assert(!admission_should_shed(&cfg, &st, &s));
}
END_TEST

START_TEST(test_names_and_status)
{
    struct admission_state st;

    memset(&st, 0, sizeof(st));
    st.gate[WIRE_REASON_NONE].closed = true; /* not a gate: never reported */
    ck_assert(!admission_gate_closed(&st, WIRE_REASON_NONE));
    ck_assert(!admission_gate_closed(&st, WIRE_REASON_SEGMENT_INVALID));
    ck_assert_uint_eq(admission_gate_transitions(&st, WIRE_REASON_COUNT_), 0);
}
END_TEST

/* A clock that steps backwards neither opens a gate early nor crashes. */
START_TEST(test_clock_backwards)
{
    struct admission_config cfg = admission_config_default();
    struct admission_state st;
    struct admission_signals s = test_calm(0);

    memset(&st, 0, sizeof(st));
    s.full_frac = 0.2;
    test_run(&cfg, &s, &st, 10000, 10100);
    s.full_frac = 0;
    test_run(&cfg, &s, &st, 0, 9000);
    ck_assert(admission_gate_closed(&st, WIRE_REASON_MEM_CRITICAL));
    test_run(&cfg, &s, &st, 15000, 15100);
    ck_assert(!admission_gate_closed(&st, WIRE_REASON_MEM_CRITICAL));
}
END_TEST

/* A growing co-tenant: time to exhaustion and fill time from the sampler. */
static void test_exhaust(struct admission_signals *s, uint64_t tte_ms, uint64_t fill_ms)
{
    s->exhaust_available = true;
    s->tte_ms = tte_ms;
    s->fill_ms = fill_ms;
    s->growth_bytes_per_s = 1.0 * MIB;
}

START_TEST(test_exhaust_slow_leak)
{
    struct admission_config cfg = admission_config_default();
    struct admission_state st;
    struct admission_signals s = test_calm(0);
    struct admission_request req = test_req(1 * GIB, 1 * GIB);
    struct admission_verdict v;

    memset(&st, 0, sizeof(st));
    /* 40 s left: over the 30 s threshold, admitted. */
    test_exhaust(&s, 40000, 300000);
    test_run(&cfg, &s, &st, 0, 1000);
    v = test_decide(&cfg, &s, &st, &req, RND_MID);
    ck_assert(v.accept);
    /* 20 s left, fill 300 s: a slow leak, refused with --retry-capacity, not shed. */
    test_exhaust(&s, 20000, 300000);
    test_run(&cfg, &s, &st, 1000, 5000);
    v = test_decide(&cfg, &s, &st, &req, RND_MID);
    ck_assert(!v.accept);
    ck_assert_int_eq(v.reason, WIRE_REASON_MEM_EXHAUSTION);
    ck_assert_uint_eq(v.retry_after_ms, cfg.retry_capacity_ms);
    ck_assert_detail_has(v, "time to exhaustion 20.0 s");
    ck_assert_detail_has(v, "slow leak, go elsewhere");
    ck_assert(admission_gate_closed(&st, WIRE_REASON_MEM_EXHAUSTION));
    ck_assert(!admission_should_shed(&cfg, &st, &s));
    /* Without an estimate the half stays off. */
    s.exhaust_available = false;
    memset(&st, 0, sizeof(st));
    test_run(&cfg, &s, &st, 0, 1000);
    ck_assert(!admission_gate_closed(&st, WIRE_REASON_MEM_EXHAUSTION));
}
END_TEST

START_TEST(test_exhaust_fast_run_sheds)
{
    struct admission_config cfg = admission_config_default();
    struct admission_state st;
    struct admission_signals s = test_calm(0);
    struct admission_request req = test_req(1 * GIB, 1 * GIB);
    struct admission_verdict v;

    memset(&st, 0, sizeof(st));
    /* 5 s left, the whole capacity would fill in 12 s: a fast run. */
    test_exhaust(&s, 5000, 12000);
    test_run(&cfg, &s, &st, 0, 100);
    v = test_decide(&cfg, &s, &st, &req, RND_MID);
    ck_assert(!v.accept);
    ck_assert_int_eq(v.reason, WIRE_REASON_MEM_EXHAUSTION);
    ck_assert_uint_eq(v.retry_after_ms, cfg.retry_pressure_ms);
    ck_assert_detail_has(v, "fast run, shedding");
    /* Shed at once, not after --shed-after; then the cooldown holds. */
    ck_assert(admission_should_shed(&cfg, &st, &s));
    admission_note_shed(&st, 0);
    s.now_ms = 1000;
    ck_assert(!admission_should_shed(&cfg, &st, &s));
    s.now_ms = cfg.shed_cooldown_ms;
    ck_assert(admission_should_shed(&cfg, &st, &s));
    /* --exhaust-tte-enter 0 disables the gate. */
    cfg.exhaust_tte_enter_ms = 0;
    memset(&st, 0, sizeof(st));
    test_run(&cfg, &s, &st, 0, 1000);
    ck_assert(!admission_gate_closed(&st, WIRE_REASON_MEM_EXHAUSTION));
}
END_TEST

START_TEST(test_exhaust_hysteresis)
{
    struct admission_config cfg = admission_config_default();
    struct admission_state st;
    struct admission_signals s = test_calm(0);

    memset(&st, 0, sizeof(st));
    /* 45 s (between enter 30 s and exit 60 s) does not close an open gate ... */
    test_exhaust(&s, 45000, 600000);
    test_run(&cfg, &s, &st, 0, 1000);
    ck_assert(!admission_gate_closed(&st, WIRE_REASON_MEM_EXHAUSTION));
    /* ... 25 s does ... */
    test_exhaust(&s, 25000, 600000);
    test_run(&cfg, &s, &st, 1000, 1100);
    ck_assert(admission_gate_closed(&st, WIRE_REASON_MEM_EXHAUSTION));
    /* ... and 45 s keeps it closed however long it lasts. */
    test_exhaust(&s, 45000, 600000);
    test_run(&cfg, &s, &st, 1100, 30000);
    ck_assert(admission_gate_closed(&st, WIRE_REASON_MEM_EXHAUSTION));
    /* Over 60 s: open after the hold-down (last breach at 29.9 s). */
    test_exhaust(&s, 70000, 600000);
    test_run(&cfg, &s, &st, 30000, 29900 + cfg.hold_down_ms);
    ck_assert(admission_gate_closed(&st, WIRE_REASON_MEM_EXHAUSTION));
    test_run(&cfg, &s, &st, 29900 + cfg.hold_down_ms, 30000 + cfg.hold_down_ms);
    ck_assert(!admission_gate_closed(&st, WIRE_REASON_MEM_EXHAUSTION));
    ck_assert_uint_eq(admission_gate_transitions(&st, WIRE_REASON_MEM_EXHAUSTION), 2);
}
END_TEST

START_TEST(test_exhaust_swapin_sustained)
{
    struct admission_config cfg = admission_config_default();
    struct admission_state st;
    struct admission_signals s = test_calm(0);
    struct admission_request req = test_req(1 * GIB, 1 * GIB);
    struct admission_verdict v;

    memset(&st, 0, sizeof(st));
    s.swapins_available = true;
    s.swapins_per_s = 2000;
    /* High from t = 0: not yet sustained at 2.9 s, sustained at 3 s. */
    test_run(&cfg, &s, &st, 0, 3000);
    ck_assert(!admission_gate_closed(&st, WIRE_REASON_MEM_EXHAUSTION));
    test_run(&cfg, &s, &st, 3000, 3100);
    ck_assert(admission_gate_closed(&st, WIRE_REASON_MEM_EXHAUSTION));
    v = test_decide(&cfg, &s, &st, &req, RND_MID);
    ck_assert_int_eq(v.reason, WIRE_REASON_MEM_EXHAUSTION);
    ck_assert_detail_has(v, "swap-in 2000 pages/s (enter 1000, sustained)");
    /* 500/s is under enter but over exit: still sustained. */
    s.swapins_per_s = 500;
    test_run(&cfg, &s, &st, 3100, 20000);
    ck_assert(admission_gate_closed(&st, WIRE_REASON_MEM_EXHAUSTION));
    /* 50/s: reopens after the hold-down. */
    s.swapins_per_s = 50;
    test_run(&cfg, &s, &st, 20000, 20000 + cfg.hold_down_ms + 100);
    ck_assert(!admission_gate_closed(&st, WIRE_REASON_MEM_EXHAUSTION));
    /* A burst shorter than the sustain time never closes it. */
    s.swapins_per_s = 5000;
    test_run(&cfg, &s, &st, 30000, 32000);
    s.swapins_per_s = 0;
    test_run(&cfg, &s, &st, 32000, 40000);
    ck_assert_uint_eq(admission_gate_transitions(&st, WIRE_REASON_MEM_EXHAUSTION), 2);
}
END_TEST

START_TEST(test_exhaust_config_and_names)
{
    struct admission_config cfg = admission_config_default();
    char err[200];

    ck_assert_uint_eq(cfg.exhaust_tte_enter_ms, 30000);
    cfg.exhaust_tte_exit_ms = 10000;
    ck_assert_int_eq(admission_config_check(&cfg, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "--exhaust-tte-exit"));
    cfg = admission_config_default();
    cfg.exhaust_swapin_exit = 5000;
    ck_assert_int_eq(admission_config_check(&cfg, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "--exhaust-swapin-exit"));
    ck_assert(admission_is_gate(WIRE_REASON_MEM_EXHAUSTION));
    ck_assert(admission_is_gate(WIRE_REASON_DISK_FULL));
    ck_assert(!admission_is_gate(WIRE_REASON_SEGMENT_INVALID));
    ck_assert(!admission_is_gate(WIRE_REASON_NONE));
    ck_assert_str_eq(reason_name(WIRE_REASON_MEM_EXHAUSTION), "MEM_EXHAUSTION");
    ck_assert_int_eq(reason_http_status(WIRE_REASON_MEM_EXHAUSTION), 429);
}
END_TEST

START_TEST(test_watermark_in_force)
{
    struct admission_config cfg = admission_config_default();
    struct admission_state st;
    struct admission_signals s = test_calm(0);
    struct admission_request req = test_req(1 * GIB, 1 * GIB);
    struct admission_verdict v;

    memset(&st, 0, sizeof(st));
    s.limit_bytes = 10 * GIB;
    s.wss_bytes = 8 * GIB;
    /* At the configured 0.85 (8.5 GiB) 8 + 1 does not fit ... */
    ck_assert_double_eq(admission_watermark(&cfg, &s), 0.85);
    v = test_decide(&cfg, &s, &st, &req, RND_MID);
    ck_assert_int_eq(v.reason, WIRE_REASON_MEM_CAPACITY);
    ck_assert_detail_has(v, "(limit 10737418240 x 0.85)");
    /* ... at an adaptive 0.95 (9.5 GiB) it does, and the limit says so. */
    s.admit_watermark = 0.95;
    ck_assert_uint_eq(admission_admit_limit(&cfg, &s), (uint64_t)((double)(10 * GIB) * 0.95));
    v = test_decide(&cfg, &s, &st, &req, RND_MID);
    ck_assert(v.accept);
    req.cost_bytes = 2 * GIB;
    v = test_decide(&cfg, &s, &st, &req, RND_MID);
    ck_assert_detail_has(v, "(limit 10737418240 x 0.95)");
    /* Out of range reads as "not given": the configured watermark. */
    s.admit_watermark = 1.5;
    ck_assert_double_eq(admission_watermark(&cfg, &s), 0.85);
    s.admit_watermark = nan("");
    ck_assert_double_eq(admission_watermark(&cfg, &s), 0.85);
    s.admit_watermark = -0.2;
    ck_assert_uint_eq(admission_admit_limit(&cfg, &s), (uint64_t)((double)(10 * GIB) * 0.85));
    /* An explicit budget wins over any watermark. */
    s.admit_watermark = 0.95;
    cfg.budget_bytes = 3 * GIB;
    ck_assert_uint_eq(admission_admit_limit(&cfg, &s), 3 * GIB);
}
END_TEST

START_TEST(test_quiet)
{
    struct admission_config cfg = admission_config_default();
    struct admission_state st;
    struct admission_signals s = test_calm(100000), q;
    const char *why = "unset";

    memset(&st, 0, sizeof(st));
    ck_assert(admission_quiet(&cfg, &s, &st, &why));
    ck_assert_str_eq(why, "unset"); /* untouched when quiet */
    /* Each signal above its exit threshold (below enter) is loud. */
    q = s;
    q.full_frac = cfg.critical_full_exit * 2;
    ck_assert(!admission_quiet(&cfg, &q, &st, &why));
    ck_assert_str_eq(why, "full stall");
    q = s;
    q.oom_kills_recent = 1;
    ck_assert(!admission_quiet(&cfg, &q, &st, &why));
    ck_assert_str_eq(why, "recent oom_kill");
    q = s;
    q.some_frac = cfg.pressure_some_exit * 2;
    q.pgscan_per_s = 10;
    ck_assert(!admission_quiet(&cfg, &q, &st, &why));
    ck_assert_str_eq(why, "memory stall");
    q.pgscan_per_s = 0; /* a stall without reclaim is not our memory */
    ck_assert(admission_quiet(&cfg, &q, &st, NULL));
    q = s;
    q.some_avg10 = cfg.pressure_avg10_exit + 1;
    ck_assert(!admission_quiet(&cfg, &q, &st, &why));
    ck_assert_str_eq(why, "memory stall");
    q.psi_available = false; /* a neighbour's host-wide stall */
    ck_assert(admission_quiet(&cfg, &q, &st, NULL));
    q = s;
    q.refaults_per_s = cfg.thrash_refault_exit + 1;
    ck_assert(!admission_quiet(&cfg, &q, &st, &why));
    ck_assert_str_eq(why, "refaults");
    q = s;
    q.swapins_available = true;
    q.swapins_per_s = cfg.exhaust_swapin_exit + 1;
    ck_assert(!admission_quiet(&cfg, &q, &st, &why));
    ck_assert_str_eq(why, "swap-in");
    q = s;
    q.exhaust_available = true;
    q.tte_ms = cfg.exhaust_tte_exit_ms - 1;
    ck_assert(!admission_quiet(&cfg, &q, &st, &why));
    ck_assert_str_eq(why, "time to exhaustion");
    q.tte_ms = cfg.exhaust_tte_exit_ms;
    ck_assert(admission_quiet(&cfg, &q, &st, NULL));
    q = s;
    q.p99_10s_ms = (double)cfg.latency_slo_ms * cfg.latency_exit_ratio;
    ck_assert(!admission_quiet(&cfg, &q, &st, &why));
    ck_assert_str_eq(why, "p99");
    q.queries_10s = (uint64_t)cfg.latency_min_queries - 1; /* too few to count */
    ck_assert(admission_quiet(&cfg, &q, &st, NULL));
    /* Slow start after a gate reopened is not quiet yet. */
    st.recovered = true;
    st.recovered_ms = s.now_ms - 1000;
    ck_assert(!admission_quiet(&cfg, &s, &st, &why));
    ck_assert_str_eq(why, "slow start");
    st.recovered_ms = s.now_ms - cfg.slow_start_ms;
    ck_assert(admission_quiet(&cfg, &s, &st, NULL));
}
END_TEST

/*
 * DISK_FULL at the precheck: the room measured against the reserve and what
 * loads in flight were promised, held until their load ends.
 */
/*
 * The heap a file's in-memory columns take, beyond the cost the request was
 * admitted at, is judged against the admit limit when the load is about to
 * start; nothing beyond the cost, or no known limit, passes untouched.
 */
START_TEST(test_heap_admit)
{
    struct admission_config cfg = {.budget_bytes = 1000};
    struct admission_signals sig = {.wss_bytes = 300, .reserved_bytes = 100};
    char detail[512];
    uint64_t extra = 7;

    /* Within the cost admitted: nothing more to hold. */
    ck_assert_int_eq(admission_heap_admit(&cfg, &sig, 100, 80, &extra, detail, sizeof(detail)), 0);
    ck_assert_uint_eq(extra, 0);
    /* 600 beyond a cost of 100: 300 + 100 + 500 = 900 <= 1000, held. */
    ck_assert_int_eq(admission_heap_admit(&cfg, &sig, 100, 600, &extra, detail, sizeof(detail)),
                     0);
    ck_assert_uint_eq(extra, 500);
    /* 601 beyond: 300 + 100 + 601 > 1000. */
    ck_assert_int_eq(admission_heap_admit(&cfg, &sig, 100, 701, &extra, detail, sizeof(detail)),
                     -ENOMEM);
    ck_assert_uint_eq(extra, 0);
    ck_assert_msg(strstr(detail, "in-memory columns need 701 bytes, 601 more") != NULL, "%s",
                  detail);
    ck_assert_msg(strstr(detail, "admit limit 1000") != NULL, "%s", detail);
    /* No limit known (no budget, no cgroup limit): never refused here. */
    cfg.budget_bytes = 0;
    ck_assert_int_eq(admission_heap_admit(&cfg, &sig, 100, 1u << 30, &extra, detail,
                                          sizeof(detail)),
                     0);
    ck_assert_uint_eq(extra, 0);
}
END_TEST

START_TEST(test_disk_admit_counts_promised)
{
    struct admission_config cfg = {.disk_reserve_bytes = 100};
    struct admission_ledger *l = admission_ledger_new();
    struct admission_hold h;
    char detail[256];

    ck_assert_int_eq(admission_disk_admit(&cfg, l, "a", 500, 0, 700, detail, sizeof(detail)), 0);
    ck_assert_uint_eq(admission_ledger_disk_bytes(l), 500);
    /* 200 + 100 reserve + 500 promised to a = 800 > 700. */
    ck_assert_int_eq(admission_disk_admit(&cfg, l, "b", 200, 0, 700, detail, sizeof(detail)),
                     -ENOSPC);
    ck_assert_msg(strstr(detail, "500 promised to loads in flight") != NULL, "%s", detail);
    ck_assert_uint_eq(admission_ledger_disk_bytes(l), 500);
    ck_assert_int_eq(admission_ledger_release(l, "b", NULL), -ENOENT);
    /* a's load ends: b fits. */
    ck_assert_int_eq(admission_ledger_release(l, "a", &h), 0);
    ck_assert_uint_eq(h.disk, 500);
    ck_assert_uint_eq(h.cost, 0);
    ck_assert_uint_eq(admission_ledger_disk_bytes(l), 0);
    ck_assert_int_eq(admission_disk_admit(&cfg, l, "b", 200, 0, 700, detail, sizeof(detail)), 0);
    /* Space that could not be measured is not assumed to be there. */
    ck_assert_int_eq(admission_disk_admit(&cfg, l, "c", 1, -EIO, 0, detail, sizeof(detail)),
                     -ENOSPC);
    ck_assert_msg(strstr(detail, strerror(EIO)) != NULL, "%s", detail);
    ck_assert_int_eq(admission_ledger_release(l, "c", NULL), -ENOENT);
    ck_assert_uint_eq(admission_ledger_disk_bytes(l), 200);
    admission_ledger_free(l);
}
END_TEST

/* Memory: counted from the decision, held by the load once the store accepts it. */
START_TEST(test_ledger_memory)
{
    struct admission_ledger *l = admission_ledger_new();
    struct admission_hold h;

    admission_ledger_pend(l, 10);
    admission_ledger_pend(l, 5);
    ck_assert_uint_eq(admission_ledger_mem_bytes(l), 15);
    admission_ledger_unpend(l, 5); /* refused by the store */
    admission_ledger_commit(l, "a", 10, 7);
    ck_assert_uint_eq(admission_ledger_mem_bytes(l), 10);
    ck_assert_int_eq(admission_ledger_release(l, "a", &h), 0);
    ck_assert_uint_eq(h.cost, 10);
    ck_assert_uint_eq(h.raw, 7);
    ck_assert_uint_eq(admission_ledger_mem_bytes(l), 0);
    admission_ledger_free(l);
    admission_ledger_free(NULL);
}
END_TEST

START_TEST(test_store_answer)
{
    enum wire_reason r = WIRE_REASON_MEM_CRITICAL;

    ck_assert_int_eq(admission_store_answer(0, &r), 202);
    ck_assert_int_eq(r, WIRE_REASON_NONE);
    ck_assert_int_eq(admission_store_answer(-ENOSPC, &r), 507);
    ck_assert_int_eq(r, WIRE_REASON_DISK_FULL);
    ck_assert_int_eq(admission_store_answer(-EINVAL, &r), 422);
    ck_assert_int_eq(r, WIRE_REASON_SEGMENT_INVALID);
    ck_assert_int_eq(admission_store_answer(-ESHUTDOWN, &r), 503);
    ck_assert_int_eq(r, WIRE_REASON_DRAINING);
    ck_assert_int_eq(admission_store_answer(-EMFILE, &r), 429);
    ck_assert_int_eq(r, WIRE_REASON_MEM_CAPACITY);
    ck_assert_int_eq(admission_store_answer(-EBUSY, &r), 409);
    ck_assert_int_eq(r, WIRE_REASON_NONE);
    ck_assert_int_eq(admission_store_answer(-EEXIST, &r), 409);
}
END_TEST

/*
 * A failed load's errno, kept by the store, becomes its reported reason
 * here and nowhere else: every format error SEGMENT_INVALID (the coordinator
 * counts these as invalid votes), disk errnos DISK_FULL, this node's
 * shortages MEM_CAPACITY, and a system call's EINVAL or EIO (a short source,
 * a SIGBUS on the local copy) nothing, unlike an assignment's -EINVAL.
 */
START_TEST(test_load_reason)
{
    static const int format[] = {SEGMENT_ETRUNCATED, SEGMENT_EMAGIC, SEGMENT_EVERSION,
                                 SEGMENT_EHEADER,    SEGMENT_ERANGE, SEGMENT_ECHECKSUM};

    for (size_t i = 0; i < sizeof(format) / sizeof(format[0]); i++)
        ck_assert_int_eq(admission_load_reason(-format[i]), WIRE_REASON_SEGMENT_INVALID);
    ck_assert_int_eq(admission_load_reason(-ENOSPC), WIRE_REASON_DISK_FULL);
    ck_assert_int_eq(admission_load_reason(-EDQUOT), WIRE_REASON_DISK_FULL);
    ck_assert_int_eq(admission_load_reason(-ENOMEM), WIRE_REASON_MEM_CAPACITY);
    ck_assert_int_eq(admission_load_reason(-EMFILE), WIRE_REASON_MEM_CAPACITY);
    ck_assert_int_eq(admission_load_reason(-ENFILE), WIRE_REASON_MEM_CAPACITY);
    ck_assert_int_eq(admission_load_reason(-EAGAIN), WIRE_REASON_MEM_CAPACITY);
    ck_assert_int_eq(admission_load_reason(-EIO), WIRE_REASON_NONE);
    ck_assert_int_eq(admission_load_reason(-EINVAL), WIRE_REASON_NONE);
    ck_assert_int_eq(admission_load_reason(-ENOENT), WIRE_REASON_NONE);
    ck_assert_int_eq(admission_load_reason(0), WIRE_REASON_NONE);
}
END_TEST

static Suite *admission_suite(void)
{
    Suite *s = suite_create("admission");
    const struct {
        const char *name;
        const TTest *test;
    } cases[] = {
        {"defaults", test_defaults},
        {"disk_admit_counts_promised", test_disk_admit_counts_promised},
        {"heap_admit", test_heap_admit},
        {"ledger_memory", test_ledger_memory},
        {"store_answer", test_store_answer},
        {"load_reason", test_load_reason},
        {"calm_accepts", test_calm_accepts},
        {"each_gate_fires", test_each_gate_fires},
        {"details_name_signals", test_details_name_signals},
        {"gate_order", test_gate_order},
        {"draining_wins", test_draining_wins},
        {"critical_oom", test_critical_oom},
        {"pressure_needs_reclaim", test_pressure_needs_reclaim},
        {"capacity_reserved", test_capacity_reserved},
        {"latency", test_latency},
        {"hysteresis_square_wave", test_hysteresis_square_wave},
        {"hold_down", test_hold_down},
        {"decide_closes_not_opens", test_decide_closes_not_opens},
        {"slow_start", test_slow_start},
        {"jitter", test_jitter},
        {"psi_unavailable", test_psi_unavailable},
        {"cost_estimate", test_cost_estimate},
        {"cost_declared", test_cost_declared},
        {"cost_learn", test_cost_learn},
        {"shed", test_shed},
        {"names_and_status", test_names_and_status},
        {"clock_backwards", test_clock_backwards},
        {"exhaust_slow_leak", test_exhaust_slow_leak},
        {"exhaust_fast_run_sheds", test_exhaust_fast_run_sheds},
        {"exhaust_hysteresis", test_exhaust_hysteresis},
        {"exhaust_swapin_sustained", test_exhaust_swapin_sustained},
        {"exhaust_config_and_names", test_exhaust_config_and_names},
        {"watermark_in_force", test_watermark_in_force},
        {"quiet", test_quiet},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        TCase *tc = tcase_create(cases[i].name);

        tcase_add_test(tc, cases[i].test);
        suite_add_tcase(s, tc);
    }
    return s;
}

int main(void)
{
    return harness_run_suite(admission_suite());
}
