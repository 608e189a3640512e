/*
 * check_signals: unit tests for node/signals, the fusion of the node's
 * measurements into admission signals. Pure: snapshots and store totals
 * are built by hand; no loop, no kernel files.
 */
#include <check.h>
#include <stdint.h>
#include <string.h>

#include "signals.h"
#include "suite.h"

#define MiB (UINT64_C(1) << 20)

static struct sampler_snapshot snap;
static struct store_totals totals;
static struct signals_inputs in;

static void setup(void)
{
    memset(&snap, 0, sizeof(snap));
    memset(&totals, 0, sizeof(totals));
    memset(&in, 0, sizeof(in));
    in.totals = &totals;
    in.snap = &snap;
    in.disk_free_bytes = UINT64_MAX;
    snap.have = SAMPLER_HAVE_STALL_SOME | SAMPLER_HAVE_LIMIT | SAMPLER_HAVE_CG_USAGE |
                SAMPLER_HAVE_CG_STAT | SAMPLER_HAVE_MEMINFO;
    snap.some_stall = 0.30;
    snap.full_stall = 0.10;
    snap.some.avg10 = 12.5;
    snap.full.avg10 = 4.0;
    snap.limit_source = SAMPLER_LIMIT_CGROUP_MAX;
    snap.limit_bytes = 1000 * MiB;
}

/* The node's own cgroup PSI is always its own: the PSI gates see it. */
START_TEST(test_psi_own_cgroup)
{
    struct admission_signals sig;

    snap.psi_host_wide = false;
    snap.cg_usage = 100 * MiB;
    signals_fuse(&in, &sig);
    ck_assert(sig.psi_available);
    ck_assert(sig.some_frac == 0.30 && sig.full_frac == 0.10);
    ck_assert(sig.some_avg10 == 12.5 && sig.full_avg10 == 4.0);
    ck_assert_uint_eq(sig.limit_bytes, 1000 * MiB);
}
END_TEST

/* Host-wide PSI while the node's cgroup has room: a neighbour's stall, ignored. */
START_TEST(test_psi_host_wide_room_is_neighbours)
{
    struct admission_signals sig;

    snap.psi_host_wide = true;
    snap.cg_usage = 950 * MiB;
    snap.cg_inactive_file = 100 * MiB; /* 850 used, under 900 (90%) */
    signals_fuse(&in, &sig);
    ck_assert(!sig.psi_available);
    ck_assert(sig.some_frac == 0 && sig.full_frac == 0 && sig.some_avg10 == 0);
}
END_TEST

/* Host-wide PSI with the cgroup at 90% or more: the stall may be the node's. */
START_TEST(test_psi_host_wide_full_cgroup_counts)
{
    struct admission_signals sig;

    snap.psi_host_wide = true;
    snap.cg_usage = 1000 * MiB;
    snap.cg_inactive_file = 100 * MiB; /* 900 used: not under 900 */
    signals_fuse(&in, &sig);
    ck_assert(sig.psi_available);
    ck_assert(sig.full_frac == 0.10);
}
END_TEST

/* Without a cgroup limit, room is MemAvailable over 10% of MemTotal. */
START_TEST(test_psi_host_wide_memavailable)
{
    struct admission_signals sig;

    snap.psi_host_wide = true;
    snap.limit_source = SAMPLER_LIMIT_MEMTOTAL;
    snap.mem_total = 1000 * MiB;
    snap.mem_available = 101 * MiB;
    signals_fuse(&in, &sig);
    ck_assert(!sig.psi_available);
    snap.mem_available = 100 * MiB; /* exactly 10%: no room */
    signals_fuse(&in, &sig);
    ck_assert(sig.psi_available);
    /* No meminfo at all: room unknown, so the stall counts. */
    snap.mem_available = 900 * MiB;
    snap.have &= ~SAMPLER_HAVE_MEMINFO;
    signals_fuse(&in, &sig);
    ck_assert(sig.psi_available);
}
END_TEST

/* No sample yet: no PSI, no limit; the rest still comes through. */
START_TEST(test_no_snapshot)
{
    struct admission_signals sig;

    in.snap = NULL;
    in.now_ms = 1234;
    in.draining = true;
    in.reserved_bytes = 7 * MiB;
    in.p99_10s_ms = 42.0;
    in.queries_10s = 99;
    in.disk_free_bytes = 5 * MiB;
    totals.loads_in_flight = 3;
    signals_fuse(&in, &sig);
    ck_assert(!sig.psi_available && !sig.refaults_available);
    ck_assert_uint_eq(sig.limit_bytes, 0);
    ck_assert_uint_eq(sig.now_ms, 1234);
    ck_assert(sig.draining);
    ck_assert_uint_eq(sig.reserved_bytes, 7 * MiB);
    ck_assert(sig.p99_10s_ms == 42.0);
    ck_assert_uint_eq(sig.queries_10s, 99);
    ck_assert_uint_eq(sig.loads_in_flight, 3);
    ck_assert_uint_eq(sig.disk_free_bytes, 5 * MiB);
}
END_TEST

/* mmap mode: measured wss + pinned, floored at the committed bytes. */
START_TEST(test_footprint_mmap)
{
    struct admission_signals sig;

    snap.have &= ~SAMPLER_HAVE_CG_USAGE;
    in.wss_estimate = 100 * MiB;
    totals.pinned_bytes = 20 * MiB;
    totals.mapped_bytes = 50 * MiB;
    totals.index_bytes = 10 * MiB;
    signals_fuse(&in, &sig);
    ck_assert_uint_eq(sig.wss_bytes, 120 * MiB);
    /* Evicted but committed data counts: the floor is mapped + index. */
    totals.mapped_bytes = 300 * MiB;
    signals_fuse(&in, &sig);
    ck_assert_uint_eq(sig.wss_bytes, 310 * MiB);
}
END_TEST

/* mmap mode: the cgroup's usage net of inactive file raises it at once. */
START_TEST(test_footprint_cgroup_rise)
{
    struct admission_signals sig;

    in.wss_estimate = 100 * MiB;
    snap.cg_usage = 500 * MiB;
    snap.cg_inactive_file = 150 * MiB;
    signals_fuse(&in, &sig);
    ck_assert_uint_eq(sig.wss_bytes, 350 * MiB);
    /* Without the stat file, usage alone is not trusted. */
    snap.have &= ~SAMPLER_HAVE_CG_STAT;
    signals_fuse(&in, &sig);
    ck_assert_uint_eq(sig.wss_bytes, 100 * MiB);
}
END_TEST

/* Direct mode: the exact footprint, not the estimate, the cgroup or the mappings. */
START_TEST(test_footprint_direct)
{
    struct admission_signals sig;

    in.direct = true;
    in.direct_bytes = 64 * MiB;
    in.wss_estimate = 500 * MiB;
    snap.cg_usage = 900 * MiB;
    totals.mapped_bytes = 800 * MiB;
    totals.pinned_bytes = 8 * MiB;
    signals_fuse(&in, &sig);
    ck_assert_uint_eq(sig.wss_bytes, 64 * MiB);
}
END_TEST

/* Refault rate and oom kills pass through only with their have bits. */
START_TEST(test_refaults_and_oom)
{
    struct admission_signals sig;

    snap.refaults_per_s = 5000;
    snap.oom_kill_recent = true;
    signals_fuse(&in, &sig);
    ck_assert(!sig.refaults_available);
    ck_assert_uint_eq(sig.oom_kills_recent, 1);
    snap.have |= SAMPLER_HAVE_REFAULT_RATE;
    signals_fuse(&in, &sig);
    ck_assert(sig.refaults_available);
    ck_assert(sig.refaults_per_s == 5000);
    ck_assert(!sig.exhaust_available);
    snap.tte_valid = true;
    snap.tte_ms = 5000;
    signals_fuse(&in, &sig);
    ck_assert(sig.exhaust_available);
    ck_assert_uint_eq(sig.tte_ms, 5000);
    snap.have &= ~SAMPLER_HAVE_LIMIT;
    signals_fuse(&in, &sig);
    ck_assert_uint_eq(sig.limit_bytes, 0);
}
END_TEST

static Suite *signals_suite(void)
{
    Suite *s = suite_create("signals");
    struct {
        const char *name;
        const TTest *t;
    } cases[] = {
        {"psi_own_cgroup", test_psi_own_cgroup},
        {"psi_host_wide_room", test_psi_host_wide_room_is_neighbours},
        {"psi_host_wide_full", test_psi_host_wide_full_cgroup_counts},
        {"psi_host_wide_memavailable", test_psi_host_wide_memavailable},
        {"no_snapshot", test_no_snapshot},
        {"footprint_mmap", test_footprint_mmap},
        {"footprint_cgroup_rise", test_footprint_cgroup_rise},
        {"footprint_direct", test_footprint_direct},
        {"refaults_and_oom", test_refaults_and_oom},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        TCase *tc = tcase_create(cases[i].name);
        tcase_add_checked_fixture(tc, setup, NULL);
        tcase_add_test(tc, cases[i].t);
        suite_add_tcase(s, tc);
    }
    return s;
}

int main(void)
{
    return harness_run_suite(signals_suite());
}
