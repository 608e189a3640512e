/*
 * check_farm: `sluice-node farm` (the test tool of issue 17) against a real
 * coordinator, through tests/harness. A farm of virtual nodes runs the
 * node's admission code on simulated capacities and seeded footprints; the
 * coordinator cannot tell its nodes from real ones.
 *
 * Covered: 2,000 segments at replication 2 on 20 virtual nodes are all
 * LOADED with both copies on two different live nodes, and no virtual node
 * ever held more than its capacity while the cost model learnt the
 * footprints; a killed virtual node's segments are LOADED elsewhere; with
 * less capacity than data, MEM_CAPACITY refuses what does not fit and no
 * virtual node goes over its capacity; nodes that load 4 at a time and
 * advertise it (load_slots) are sent no more than 4 outstanding, so 500
 * segments are placed without one LOAD_CONCURRENCY refusal, and their
 * delta reports (built from what changed) never disagree with the digest;
 * a coordinator killed and restarted on the same port, whose catalog load
 * outlasts --node-timeout (a failpoint sleeps, as 10^6 assignments did in
 * bench_scale), marks no node DOWN and loses no copy: every node has the
 * node timeout from the end of the load; bad flags are refused at start.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "crash.h"
#include "harness.h"
#include "wire.h"
#include "xmalloc.h"
#include "suite.h"

#define ROWS     1000
#define ROW_SIZE 100 /* 100 KB a segment by rows x avg_row_size */

static char *dir;
static struct harness_proc *coord, *farm;

static uint64_t now_ms(void)
{
    return clock_mono_ns() / 1000000;
}

static void setup(void)
{
    const char *coord_args[] = {"--node-timeout=2s", NULL};

    dir = harness_dir_new("sluice-farm-it");
    coord = harness_coord_start(dir, coord_args);
    ck_assert_ptr_nonnull(coord);
}

static void teardown(void)
{
    harness_proc_free(farm);
    farm = NULL;
    harness_proc_free(coord);
    coord = NULL;
    harness_dir_remove(dir);
    free(dir);
}

static void start_farm(unsigned nodes, const char *const *extra)
{
    char *fdir = xasprintf("%s/farm", dir);

    farm = harness_farm_start(fdir, harness_proc_addr(coord), nodes, extra);
    free(fdir);
    ck_assert_ptr_nonnull(farm);
}

/* Registers seg-0000 .. seg-<n-1> with the given replication, in one batch. */
static void register_segments(int n, unsigned replication)
{
    struct wire_segment_batch b;
    struct harness_reply rep;
    int status;

    b.n = (size_t)n;
    b.specs = xcalloc(b.n, sizeof(*b.specs));
    for (int i = 0; i < n; i++) {
        struct wire_segment_spec *s = &b.specs[i];

        snprintf(s->segment_id, sizeof(s->segment_id), "seg-%04d", i);
        s->uri = xasprintf("file:///farm/seg-%04d.seg", i);
        s->row_count = ROWS;
        s->avg_row_size = ROW_SIZE;
        s->replication = replication;
    }
    status = harness_register(harness_proc_addr(coord), &b, NULL, &rep);
    wire_segment_batch_done(&b);
    ck_assert_msg(status == 200, "register: %d %s", status, rep.err.message);
}

static void list_farm(struct harness_vnode **ret, size_t *ret_n)
{
    int status = harness_farm_list(harness_proc_addr(farm), ret, ret_n);

    ck_assert_msg(status == 200, "GET /v1/farm: %d", status);
}

static const struct harness_vnode *find_vnode(const struct harness_vnode *v, size_t n,
                                              const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].id, id) == 0)
            return &v[i];
    return NULL;
}

/*
 * Every registered segment has `replication` LOADED copies, each on a
 * different virtual node that is up (dead: a node id that must hold none).
 * Returns the number of copies seen.
 */
static size_t check_placements(int n, unsigned replication, const char *dead)
{
    struct harness_vnode *v;
    size_t nv, copies = 0, segs = 0;
    char after[WIRE_ID_MAX + 1] = "";

    list_farm(&v, &nv);
    for (;;) {
        struct wire_segment_list l;
        char *suffix = xasprintf("?limit=1000%s%s", after[0] ? "&after=" : "", after);
        int status = harness_segments(harness_proc_addr(coord), suffix, &l);

        free(suffix);
        ck_assert_int_eq(status, 200);
        for (size_t i = 0; i < l.n; i++) {
            const struct wire_segment_info *si = &l.segments[i];
            size_t loaded = 0;

            segs++;
            for (size_t p = 0; p < si->n_placements; p++) {
                const struct harness_vnode *hv = find_vnode(v, nv, si->placements[p].node_id);

                if (si->placements[p].state != WIRE_SEG_LOADED)
                    continue;
                loaded++;
                ck_assert_msg(hv != NULL && hv->up, "%s LOADED on %s, not a live virtual node",
                              si->spec.segment_id, si->placements[p].node_id);
                ck_assert_msg(dead == NULL || strcmp(hv->id, dead) != 0, "%s still on %s",
                              si->spec.segment_id, dead);
                for (size_t q = 0; q < p; q++)
                    ck_assert_msg(si->placements[q].state != WIRE_SEG_LOADED ||
                                      strcmp(si->placements[q].node_id, hv->id) != 0,
                                  "%s twice on %s", si->spec.segment_id, hv->id);
            }
            ck_assert_msg(loaded == replication, "%s: %zu LOADED copies, want %u",
                          si->spec.segment_id, loaded, replication);
            copies += loaded;
        }
        snprintf(after, sizeof(after), "%s", l.next_after);
        wire_segment_list_done(&l);
        if (after[0] == '\0')
            break;
    }
    ck_assert_int_eq(segs, n);
    free(v);
    return copies;
}

START_TEST(test_place_and_kill)
{
    /*
     * The coordinator keeps an accepted assignment outstanding until a
     * report says LOADED: short reports and 16 loads a node keep this
     * test to seconds.
     */
    const char *extra[] = {
        "--capacity=64M",          "--capacity-spread=0.25", "--footprint-ratio=1.5",
        "--footprint-sigma=0.3",   "--load-time=10ms",       "--seed=7",
        "--report-interval=200ms", "--max-loads=16",         NULL};
    struct harness_vnode *v;
    size_t nv, loaded = 0, up = 0, learnt = 0;
    double log_factor = 0;
    uint64_t t0;
    const char *victim;

    start_farm(20, extra);
    register_segments(2000, 2);
    t0 = now_ms();
    ck_assert_msg(harness_settled(harness_proc_addr(coord), 2000, 60000),
                  "2,000 segments not all LOADED");
    fprintf(stderr, "check_farm: 4,000 copies on 20 virtual nodes LOADED in %.1f s\n",
            (double)(now_ms() - t0) / 1000.0);
    ck_assert_uint_eq(check_placements(2000, 2, NULL), 4000);
    list_farm(&v, &nv);
    ck_assert_uint_eq(nv, 20);
    for (size_t i = 0; i < nv; i++) {
        loaded += v[i].loaded;
        ck_assert_msg(v[i].peak <= v[i].capacity, "%s held %" PRIu64 " bytes, capacity %" PRIu64,
                      v[i].id, v[i].peak, v[i].capacity);
        if (v[i].loaded >= 20) {
            log_factor += log(v[i].cost_factor);
            learnt++;
        }
    }
    ck_assert_uint_eq(loaded, 4000);
    /*
     * Footprints are 1.5 x rows x avg_row_size (sigma 0.3): the node's cost
     * model learnt it. Each node's EWMA wanders by about 0.1 in log; their
     * geometric mean by about 0.025.
     */
    ck_assert_uint_ge(learnt, 15);
    ck_assert_msg(fabs(log_factor / (double)learnt - log(1.5)) < 0.1, "mean cost factor %.3f",
                  exp(log_factor / (double)learnt));

    /* A virtual node dies: its copies come back elsewhere after --node-timeout. */
    victim = v[3].id;
    ck_assert_uint_gt(v[3].loaded, 0);
    ck_assert_int_eq(harness_farm_kill(harness_proc_addr(farm), victim), 200);
    t0 = now_ms();
    for (;;) {
        struct wire_node_info ni;

        ck_assert_msg(now_ms() - t0 < 60000, "%s never DOWN", victim);
        if (harness_node_info(harness_proc_addr(coord), victim, &ni, NULL) &&
            strcmp(ni.state, "DOWN") == 0)
            break;
        usleep(1000 * 50);
    }
    ck_assert_msg(harness_settled(harness_proc_addr(coord), 2000, 60000),
                  "the dead node's segments were not LOADED again");
    fprintf(stderr,
            "check_farm: %" PRIu64 " copies of a killed virtual node LOADED elsewhere "
            "%.1f s after the kill (--node-timeout=2s)\n",
            v[3].loaded, (double)(now_ms() - t0) / 1000.0);
    ck_assert_uint_eq(check_placements(2000, 2, victim), 4000);
    free(v);
    list_farm(&v, &nv);
    loaded = 0;
    for (size_t i = 0; i < nv; i++) {
        up += v[i].up;
        loaded += v[i].loaded;
        ck_assert_msg(v[i].peak <= v[i].capacity, "%s over its capacity", v[i].id);
    }
    ck_assert_uint_eq(up, 19);
    ck_assert_uint_eq(loaded, 4000);
    free(v);
}
END_TEST

START_TEST(test_capacity)
{
    /* 5 x 16 MiB x 0.85 admits about 68 MiB; 1,000 segments of ~150 KB need 150 MB. */
    const char *extra[] = {"--capacity=16M", "--footprint-ratio=1.5", "--load-time=5ms",
                           "--report-interval=200ms", NULL};
    struct harness_vnode *v;
    size_t nv, loaded = 0;
    uint64_t refused = 0, footprint = 0, capacity = 0;
    struct wire_cluster_status st;

    start_farm(5, extra);
    register_segments(1000, 1);
    /* Wait until placement stops making progress: every node full. */
    for (int quiet = 0, i = 0; quiet < 10 && i < 600; i++) {
        size_t now = 0;

        list_farm(&v, &nv);
        for (size_t k = 0; k < nv; k++)
            now += v[k].loaded + v[k].loading;
        quiet = now == loaded ? quiet + 1 : 0;
        loaded = now;
        free(v);
        usleep(1000 * 200);
    }
    list_farm(&v, &nv);
    loaded = 0;
    for (size_t i = 0; i < nv; i++) {
        loaded += v[i].loaded;
        refused += v[i].refused;
        footprint += v[i].footprint;
        capacity += v[i].capacity;
        ck_assert_msg(v[i].peak <= v[i].capacity, "%s held %" PRIu64 " of %" PRIu64, v[i].id,
                      v[i].peak, v[i].capacity);
    }
    /* Full: over half the capacity is used, yet far from all 1,000 fit. */
    ck_assert_uint_gt(footprint, capacity / 2);
    ck_assert_uint_gt(loaded, 200);
    ck_assert_uint_lt(loaded, 700);
    ck_assert_uint_gt(refused, 0);
    ck_assert_int_eq(harness_cluster_status(harness_proc_addr(coord), &st), 200);
    ck_assert_uint_gt(st.refusals[WIRE_REASON_MEM_CAPACITY], 0);
    ck_assert_uint_eq(st.segments_loaded, loaded);
    free(v);
}
END_TEST

/*
 * The coordinator's dispatch window stays within the load slots each
 * virtual node advertises (--max-loads 4): before, it grew to a fifth
 * outstanding every few rounds, and each fifth was a 429 LOAD_CONCURRENCY
 * (and a Retry-After pause of the node).
 */
START_TEST(test_load_window)
{
    const char *extra[] = {"--load-time=20ms", "--report-interval=200ms", "--max-loads=4", NULL};
    struct wire_cluster_status st;
    uint64_t refused = 0;

    start_farm(5, extra);
    register_segments(500, 1);
    ck_assert_msg(harness_settled(harness_proc_addr(coord), 500, 60000),
                  "500 segments not all LOADED");
    ck_assert_int_eq(harness_cluster_status(harness_proc_addr(coord), &st), 200);
    for (int r = 0; r < WIRE_REASON_COUNT_; r++)
        refused += st.refusals[r];
    ck_assert_uint_eq(st.segments_loaded, 500);
    ck_assert_msg(st.refusals[WIRE_REASON_LOAD_CONCURRENCY] == 0,
                  "%" PRIu64 " LOAD_CONCURRENCY refusals placing 500 segments",
                  st.refusals[WIRE_REASON_LOAD_CONCURRENCY]);
    ck_assert_uint_eq(refused, 0);
    /* The farm's deltas (built from its changes, not a diff) agree with the set each time. */
    ck_assert_double_gt(harness_metric(harness_proc_addr(coord),
                                       "sluice_coord_reports_by_kind_total{kind=\"delta\"}"),
                        100);
    ck_assert_double_eq(
        harness_metric(harness_proc_addr(coord), "sluice_coord_report_digest_mismatches_total"), 0);
}
END_TEST

/*
 * The restarted coordinator's load takes longer than --node-timeout
 * (SLUICE_FAILPOINT=load-pause): no node is DOWN for the time the load
 * took, so no copy is written lost and placed again. Before the fix the
 * nodes' clocks started when their rows were read, and the first
 * membership tick after the load found every node silent.
 */
START_TEST(test_restart_slow_load)
{
    const char *extra[] = {"--load-time=10ms", "--report-interval=1s", NULL};
    int port = crash_free_port("127.0.0.1");
    char listen[64];
    const char *coord_args[] = {listen, "--node-timeout=2s", NULL};
    struct wire_event_list evs;
    size_t lost = 0;
    uint64_t t0;

    ck_assert_int_gt(port, 0);
    snprintf(listen, sizeof(listen), "--listen=127.0.0.1:%d", port);
    harness_proc_free(coord); /* the fixture's, on port 0: this one restarts on its port */
    coord = harness_coord_start(dir, coord_args);
    ck_assert_ptr_nonnull(coord);
    start_farm(4, extra);
    register_segments(200, 1);
    ck_assert_msg(harness_settled(harness_proc_addr(coord), 200, 60000),
                  "200 segments not all LOADED");
    /*
     * The farm is stopped across the restart and for 0.5 s after it, so no
     * report waits in the listener's backlog to be served before the first
     * membership tick (1,000 nodes' reports in bench_scale could not all be).
     */
    ck_assert_int_eq(kill(harness_proc_pid(farm), SIGSTOP), 0);
    harness_proc_kill(coord);
    setenv("SLUICE_FAILPOINT", "load-pause:3000", 1);
    ck_assert_int_eq(harness_proc_restart(coord), 0);
    unsetenv("SLUICE_FAILPOINT");
    usleep(500 * 1000);
    ck_assert_int_eq(kill(harness_proc_pid(farm), SIGCONT), 0);
    /* Past a node timeout after the load: every node has reported since. */
    t0 = now_ms();
    while (now_ms() - t0 < 3000)
        usleep(100 * 1000);
    ck_assert_int_eq(harness_events(harness_proc_addr(coord), "?limit=100000", &evs), 200);
    for (size_t i = 0; i < evs.n; i++)
        if (strcmp(evs.events[i].kind, "lost") == 0 && lost++ == 0)
            fprintf(stderr, "check_farm: %s lost on %s: %s\n", evs.events[i].segment_id,
                    evs.events[i].node_id, evs.events[i].detail);
    wire_event_list_done(&evs);
    ck_assert_msg(lost == 0, "%zu copies written lost after a restart whose load took 3 s",
                  lost);
    ck_assert_msg(harness_settled(harness_proc_addr(coord), 200, 60000),
                  "200 segments not all LOADED after the restart");
    ck_assert_uint_eq(check_placements(200, 1, NULL), 200);
}
END_TEST

START_TEST(test_bad_flags)
{
    const char *bin = harness_bin("sluice-node");
    const char *prefix[] = {bin, "farm", "--coordinator=127.0.0.1:1", "--node-prefix=a/b", NULL};
    const char *nodes[] = {bin, "farm", "--coordinator=127.0.0.1:1", "--nodes=0", NULL};
    const char *nocoord[] = {bin, "farm", "--nodes=2", NULL};
    char *out = NULL;

    ck_assert_int_eq(harness_run(prefix, &out), 2);
    ck_assert_ptr_nonnull(strstr(out, "--node-prefix"));
    free(out);
    ck_assert_int_eq(harness_run(nodes, &out), 2);
    ck_assert_ptr_nonnull(strstr(out, "--nodes"));
    free(out);
    ck_assert_int_eq(harness_run(nocoord, &out), 2);
    ck_assert_ptr_nonnull(strstr(out, "--coordinator"));
    free(out);
}
END_TEST

static Suite *farm_suite(void)
{
    Suite *s = suite_create("farm");
    TCase *tc = tcase_create("place");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, test_place_and_kill);
    suite_add_tcase(s, tc);
    tc = tcase_create("capacity");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, test_capacity);
    suite_add_tcase(s, tc);
    tc = tcase_create("window");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_load_window);
    suite_add_tcase(s, tc);
    tc = tcase_create("restart");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_restart_slow_load);
    suite_add_tcase(s, tc);
    tc = tcase_create("flags");
    tcase_add_test(tc, test_bad_flags);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return harness_run_suite(farm_suite());
}
