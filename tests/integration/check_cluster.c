/*
 * check_cluster: a real coordinator and real nodes, through tests/harness.
 * Placement of 1,000 segments with one node in a small memory cgroup that
 * must refuse; kill -9 of a node (its segments move; the recovery time is
 * printed); kill -9 of the coordinator in the middle of registrations (no
 * acknowledged registration is lost); a drained node gets nothing new; a
 * late 503 DRAINING does not keep an undrained node out of placement.
 *
 * The "coordinator" cases talk to a coordinator alone, in the place of
 * nodes: they send the reports and claims a node would (from nodes that
 * are not there), so that they can say what no real node says on cue. They
 * check what makes a segment INVALID, addresses the HTTP client cannot use,
 * claims durable before they are answered, drain answered 500 when its
 * catalog write fails, a clean shutdown with assignments in flight in
 * rowcount mode, one event per node state change, and a start refused on a
 * catalog that fails to read partway.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <sqlite3.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "catalog.h"
#include "clock.h"
#include "harness.h"
#include "http.h"
#include "mkseg.h"
#include "segfmt.h"
#include "wire.h"
#include "xmalloc.h"
#include "suite.h"

#define MAX_NODES 3

static char *dir, *storage;
static struct harness_proc *coord, *nodes[MAX_NODES];
static char *cgroup;

static void setup(void)
{
    harness_workdir_new("sluice-cluster-it", &dir, &storage, NULL);
}

static void teardown(void)
{
    for (int i = 0; i < MAX_NODES; i++) {
        harness_proc_free(nodes[i]);
        nodes[i] = NULL;
    }
    harness_proc_free(coord);
    coord = NULL;
    harness_workdir_done(NULL, &cgroup, &dir, &storage, NULL);
}

static void make_segments(int n, uint64_t rows, unsigned row_bytes)
{
    for (int i = 0; i < n; i++) {
        struct mkseg_spec spec = {.rows = rows, .row_bytes = row_bytes, .seed = (uint64_t)i};
        char *path = xasprintf("%s/seg-%04d.seg", storage, i), detail[256];
        ck_assert_msg(mkseg_write(path, &spec, detail, sizeof(detail)) == 0, "%s",
                      detail);
        free(path);
    }
}

static void start_coord(const char *const *extra)
{
    coord = harness_coord_start(dir, extra);
    ck_assert_ptr_nonnull(coord);
}

static void start_node_every(int i, const char *cg, const char *interval,
                             const char *const *more)
{
    char *data = xasprintf("%s/node-%d", dir, i), *id = xasprintf("--node-id=node-%d", i);
    char *co = xasprintf("--coordinator=%s", harness_proc_addr(coord));
    char *every = xasprintf("--report-interval=%s", interval);
    const char *args[16] = {id, co, every, NULL};
    int n = 3;

    for (int k = 0; more != NULL && more[k] != NULL && n < 15; k++)
        args[n++] = more[k];
    args[n] = NULL;
    /* A node in a cgroup is there to refuse; the others must not for the machine's load. */
    nodes[i] = cg != NULL ? harness_node_start_cg(storage, data, cg, args)
                          : harness_node_start_calm(storage, data, args);
    ck_assert_ptr_nonnull(nodes[i]);
    free(data);
    free(id);
    free(co);
    free(every);
}

static void start_node(int i, const char *cg, const char *const *more)
{
    start_node_every(i, cg, "100ms", more);
}

static bool get_status(struct wire_cluster_status *st)
{
    return harness_cluster_status(harness_proc_addr(coord), st) == 200;
}

/* A POST without a body to the coordinator; its HTTP status. */
static int post_empty(const char *path)
{
    int status = harness_send(harness_proc_addr(coord), "POST", path, NULL);

    ck_assert_int_gt(status, 0);
    return status;
}

static bool nodes_up(void *arg)
{
    struct wire_cluster_status st;

    return get_status(&st) && st.nodes_up == *(uint32_t *)arg;
}

static bool all_loaded(void *arg)
{
    struct wire_cluster_status st;

    return get_status(&st) && st.segments_total == *(uint64_t *)arg &&
           st.segments_loaded == st.segments_total;
}

static void list_segments(struct wire_segment_list *out)
{
    ck_assert_int_eq(harness_segments(harness_proc_addr(coord), "?limit=1000000", out), 200);
}

/* Segments a node itself says it has LOADED (its own status, not the coordinator's). */
static size_t node_loaded(int i, struct wire_node_status *st)
{
    size_t n = 0;

    if (!harness_node_status(harness_proc_addr(nodes[i]), NULL, 10000, st)) {
        /* Say why the node is gone (an OOM kill shows in the cgroup, an abort in its log). */
        harness_proc_dump_log(nodes[i]);
        if (cgroup != NULL)
            fprintf(stderr, "check_cluster: node-%d unreachable; its cgroup counts %llu oom_kills\n",
                    i, harness_cgroup_oom_kills(cgroup));
        ck_abort_msg("node-%d does not answer", i);
    }
    for (size_t k = 0; k < st->n_segments; k++)
        n += st->segments[k].state == WIRE_SEG_LOADED;
    return n;
}

/* Registers segments [from, to) of `rows` rows in one batch; returns the HTTP status. */
static int register_rows(int from, int to, uint64_t rows)
{
    char **uris = xcalloc((size_t)to, sizeof(*uris));
    int status;

    for (int i = 0; i < to; i++)
        uris[i] = xasprintf("file://%s/seg-%04d.seg", storage, i);
    status = harness_register_ids(harness_proc_addr(coord), "seg-", 4, from, to, uris, (size_t)to,
                                  rows, 16);
    for (int i = 0; i < to; i++)
        free(uris[i]);
    free(uris);
    return status;
}

static int register_range(int from, int to)
{
    return register_rows(from, to, 4096);
}

static int import_all(void)
{
    char *co = xasprintf("--coordinator=%s", harness_proc_addr(coord)), *out = NULL;
    const char *argv[] = {harness_bin("sluice-coord"), "import", storage, co, NULL};
    int rc = harness_run(argv, &out);

    ck_assert_msg(rc == 0, "import failed: %s", out);
    free(out);
    free(co);
    return rc;
}

START_TEST(test_thousand_segments)
{
    /* 1,000 x 256 KiB = 250 MiB over three nodes, one of them capped at 64 MiB. */
    uint64_t n = 1000;
    uint32_t three = 3;
    struct wire_segment_list segs;
    size_t per_node[MAX_NODES] = {0}, from_nodes = 0;
    char why[256];
    struct wire_event_list evs;
    size_t mem_refusals = 0;
    uint64_t t0;

    make_segments((int)n, 16384, 16);
    cgroup = harness_cgroup_new("sluice-small", 64ull << 20, why, sizeof(why));
    if (cgroup == NULL)
        fprintf(stderr, "check_cluster: SKIP small-node cgroup (%s); all nodes unlimited\n", why);
    start_coord(NULL);
    start_node(0, NULL, NULL);
    start_node(1, NULL, NULL);
    start_node(2, cgroup, NULL);
    ck_assert(harness_wait_until(nodes_up, &three, 10000));
    t0 = clock_mono_ns();
    import_all();
    ck_assert_msg(harness_wait_until(all_loaded, &n, 240000), "not all segments LOADED");
    fprintf(stderr, "check_cluster: 1000 segments LOADED in %.1f s\n",
            (double)(clock_mono_ns() - t0) / 1e9);
    /* Each segment on exactly one node, by the coordinator's account. */
    list_segments(&segs);
    ck_assert_uint_eq(segs.n, n);
    for (size_t i = 0; i < segs.n; i++) {
        ck_assert_str_eq(segs.segments[i].state, "LOADED");
        ck_assert_uint_eq(segs.segments[i].n_placements, 1);
        for (int k = 0; k < MAX_NODES; k++) {
            char id[16];
            snprintf(id, sizeof(id), "node-%d", k);
            per_node[k] += strcmp(segs.segments[i].placements[0].node_id, id) == 0;
        }
    }
    wire_segment_list_done(&segs);
    /* And by the nodes' own account: no segment on two nodes. */
    for (int k = 0; k < MAX_NODES; k++) {
        struct wire_node_status st;
        size_t loaded = node_loaded(k, &st);
        ck_assert_uint_eq(loaded, per_node[k]);
        from_nodes += loaded;
        wire_node_status_done(&st);
    }
    ck_assert_uint_eq(from_nodes, n);
    fprintf(stderr, "check_cluster: placement node-0 %zu, node-1 %zu, node-2 (small) %zu\n",
            per_node[0], per_node[1], per_node[2]);
    if (cgroup != NULL) {
        /* The small node refused with a memory reason and took less. */
        ck_assert_int_eq(harness_events(harness_proc_addr(coord), "?limit=100000", &evs), 200);
        size_t by[MAX_NODES][WIRE_REASON_COUNT_] = {{0}};

        for (size_t i = 0; i < evs.n; i++) {
            const struct wire_event *e = &evs.events[i];
            int k = strncmp(e->node_id, "node-", 5) == 0 ? atoi(e->node_id + 5) : -1;

            if (strcmp(e->kind, "refused") != 0 || k < 0 || k >= MAX_NODES ||
                (unsigned)e->reason >= WIRE_REASON_COUNT_)
                continue;
            by[k][e->reason]++;
            /* Any memory reason: the small node may see time to exhaustion first. */
            mem_refusals += k == 2 && (e->reason == WIRE_REASON_MEM_CAPACITY ||
                                       e->reason == WIRE_REASON_MEM_PRESSURE ||
                                       e->reason == WIRE_REASON_MEM_CRITICAL ||
                                       e->reason == WIRE_REASON_MEM_THRASHING ||
                                       e->reason == WIRE_REASON_MEM_EXHAUSTION);
        }
        wire_event_list_done(&evs);
        for (int k = 0; k < 3; k++)
            for (int reason = 1; reason < WIRE_REASON_COUNT_; reason++)
                if (by[k][reason] > 0)
                    fprintf(stderr, "check_cluster: node-%d refused %zu x %s\n", k, by[k][reason],
                            reason_name((enum wire_reason)reason));
        fprintf(stderr, "check_cluster: node-2 memory refusals %zu, oom_kills %llu\n",
                mem_refusals, harness_cgroup_oom_kills(cgroup));
        ck_assert_uint_gt(mem_refusals, 0);
        ck_assert_uint_lt(per_node[2], per_node[0]);
        ck_assert_uint_lt(per_node[2], per_node[1]);
        ck_assert_uint_eq(harness_cgroup_oom_kills(cgroup), 0);
    }
}
END_TEST

START_TEST(test_node_kill9)
{
    uint64_t n = 90;
    uint32_t three = 3, two = 2;
    const char *extra[] = {"--node-timeout=2s", NULL};
    struct wire_node_status st;
    size_t held;
    uint64_t t0;
    double secs;

    make_segments((int)n, 4096, 16);
    start_coord(extra);
    for (int i = 0; i < 3; i++)
        start_node(i, NULL, NULL);
    ck_assert(harness_wait_until(nodes_up, &three, 10000));
    import_all();
    ck_assert(harness_wait_until(all_loaded, &n, 60000));
    held = node_loaded(1, &st);
    wire_node_status_done(&st);
    ck_assert_uint_gt(held, 0);
    t0 = clock_mono_ns();
    harness_proc_kill(nodes[1]);
    /* First the coordinator notices (node timeout), then everything is LOADED again. */
    ck_assert(harness_wait_until(nodes_up, &two, 10000));
    ck_assert(harness_wait_until(all_loaded, &n, 60000));
    secs = (double)(clock_mono_ns() - t0) / 1e9;
    fprintf(stderr, "check_cluster: kill -9 of a node holding %zu segments: all LOADED elsewhere "
                    "after %.2f s (node timeout 2 s)\n",
            held, secs);
    ck_assert_uint_eq(node_loaded(0, &st) + 0, st.n_segments);
    {
        size_t a = st.n_segments, b;
        wire_node_status_done(&st);
        b = node_loaded(2, &st);
        wire_node_status_done(&st);
        ck_assert_uint_eq(a + b, n);
    }
}
END_TEST

START_TEST(test_coord_kill9)
{
    const int total = 400, batch = 50;
    uint64_t n = (uint64_t)total;
    uint32_t three = 3;
    int acked = 0;
    char *db;
    struct catalog *cat;
    char err[256];

    make_segments(total, 4096, 16);
    start_coord(NULL);
    for (int i = 0; i < 3; i++)
        start_node(i, NULL, NULL);
    ck_assert(harness_wait_until(nodes_up, &three, 10000));
    for (int from = 0; from < total; from += batch) {
        int status = register_range(from, from + batch);
        ck_assert_int_eq(status, 200);
        acked = from + batch;
        /* kill -9 in the middle of placement, twice, and carry on. */
        if (from == 100 || from == 250) {
            harness_proc_kill(coord);
            ck_assert_int_eq(harness_proc_restart(coord), 0);
            for (int i = 0; i < 3; i++) {
                /* The coordinator may have moved: nodes learn its new port. */
                char *co = xasprintf("--coordinator=%s", harness_proc_addr(coord));
                const char *args[] = {co, NULL};
                char *data = xasprintf("%s/node-%d", dir, i), *id = xasprintf("--node-id=node-%d", i);
                const char *all[] = {id, co, "--report-interval=100ms", NULL};
                (void)args;
                harness_proc_free(nodes[i]);
                nodes[i] = harness_node_start_calm(storage, data, all);
                ck_assert_ptr_nonnull(nodes[i]);
                free(co);
                free(data);
                free(id);
            }
        }
    }
    ck_assert_int_eq(acked, total);
    ck_assert_msg(harness_wait_until(all_loaded, &n, 120000), "placement did not complete");
    /* Every acknowledged registration is there, and the catalog is sound. */
    harness_proc_stop(coord);
    db = xasprintf("%s/coord.db", dir);
    ck_assert_int_eq(catalog_open(db, &cat, err, sizeof(err)), 0);
    for (int i = 0; i < total; i++) {
        struct catalog_segment s;
        char id[32];
        snprintf(id, sizeof(id), "seg-%04d", i);
        ck_assert_msg(catalog_get_segment(cat, id, &s) == 0, "lost %s", id);
        ck_assert_str_eq(s.state, "LOADED");
    }
    ck_assert_int_eq(catalog_integrity_check(cat, err, sizeof(err)), 0);
    catalog_close(cat);
    free(db);
    fprintf(stderr, "check_cluster: coordinator killed twice during placement: %d of %d "
                    "acknowledged registrations kept, all LOADED\n",
            total, total);
}
END_TEST

START_TEST(test_drain)
{
    uint64_t n = 60;
    uint32_t three = 3;
    struct wire_node_status st;

    make_segments((int)n, 4096, 16);
    start_coord(NULL);
    for (int i = 0; i < 3; i++)
        start_node(i, NULL, NULL);
    ck_assert(harness_wait_until(nodes_up, &three, 10000));
    ck_assert_int_eq(post_empty("/v1/nodes/node-2/drain"), 200);
    ck_assert_int_eq(post_empty("/v1/nodes/nope/drain"), 404);
    import_all();
    ck_assert(harness_wait_until(all_loaded, &n, 60000));
    ck_assert_uint_eq(node_loaded(2, &st), 0);
    ck_assert_uint_eq(st.n_segments, 0);
    wire_node_status_done(&st);
}
END_TEST

START_TEST(test_rowcount_baseline)
{
    /* The baseline scheduler: rows go where rows/capacity is lowest; nodes never refuse. */
    const char *extra[] = {"--placement=rowcount",
                           "--node-rows=node-0=100000,node-1=200000,node-2=300000", NULL};
    const char *off[] = {"--admission=off", NULL};
    uint64_t n = 60;
    uint32_t three = 3;
    uint64_t rows[MAX_NODES] = {0};
    struct wire_segment_list segs;

    make_segments((int)n, 4096, 16);
    start_coord(extra);
    for (int i = 0; i < 3; i++)
        start_node(i, NULL, off);
    ck_assert(harness_wait_until(nodes_up, &three, 10000));
    import_all();
    ck_assert(harness_wait_until(all_loaded, &n, 60000));
    list_segments(&segs);
    for (size_t i = 0; i < segs.n; i++) {
        ck_assert_uint_eq(segs.segments[i].n_placements, 1);
        rows[segs.segments[i].placements[0].node_id[5] - '0'] += segs.segments[i].spec.row_count;
    }
    wire_segment_list_done(&segs);
    fprintf(stderr, "check_cluster: rowcount placement rows %" PRIu64 " / %" PRIu64 " / %" PRIu64
                    " for capacities 1:2:3\n",
            rows[0], rows[1], rows[2]);
    /* 245,760 rows over capacities 100k/200k/300k: each within one segment of its share. */
    for (int k = 0; k < 3; k++) {
        double share = 245760.0 * (k + 1) / 6.0;
        ck_assert_msg(fabs((double)rows[k] - share) <= 4096, "node-%d rows %" PRIu64, k, rows[k]);
    }
}
END_TEST

START_TEST(test_pull_mode)
{
    /* Nodes that claim their work: the coordinator pushes nothing to them. */
    const char *claim[] = {"--claim", NULL};
    uint64_t n = 40;
    uint32_t three = 3;
    size_t from_nodes = 0;

    make_segments((int)n, 4096, 16);
    start_coord(NULL);
    for (int i = 0; i < 3; i++)
        start_node(i, NULL, claim);
    ck_assert(harness_wait_until(nodes_up, &three, 10000));
    import_all();
    ck_assert_msg(harness_wait_until(all_loaded, &n, 60000), "claims did not load everything");
    ck_assert_double_gt(harness_metric(harness_proc_addr(coord), "sluice_coord_claims_total"), 0);
    /* Nothing was pushed. */
    ck_assert_double_eq(harness_metric(harness_proc_addr(coord),
                                       "sluice_coord_assignments_total{outcome=\"ACCEPTED\"}"),
                        0);
    for (int k = 0; k < 3; k++) {
        struct wire_node_status st;
        from_nodes += node_loaded(k, &st);
        wire_node_status_done(&st);
    }
    ck_assert_uint_eq(from_nodes, n);
}
END_TEST

START_TEST(test_late_draining)
{
    /*
     * The node drains, its assignment is answered 503 DRAINING (the placer
     * then takes it for DRAINING on its own), and it undrains before its
     * next report: the coordinator never saw it DRAINING, yet its next
     * SERVING report must bring it back into placement. (Reports every 3 s
     * make it unlikely that one falls between the drain and the refusal; if
     * one does, the case passes without meeting the race.)
     */
    const char *extra[] = {"--node-timeout=30s", NULL};
    const char *more[] = {"--retry-draining=1s", NULL};
    uint64_t n = 1;
    uint32_t one = 1;
    bool refused = false;

    make_segments((int)n, 4096, 16);
    start_coord(extra);
    start_node_every(0, NULL, "3s", more);
    ck_assert(harness_wait_until(nodes_up, &one, 10000));
    ck_assert_int_eq(harness_send(harness_proc_addr(nodes[0]), "POST", "/v1/drain", NULL), 200);
    ck_assert_int_eq(register_range(0, 1), 200);
    for (int i = 0; i < 250 && !refused; i++) {
        struct wire_event_list evs;

        ck_assert_int_eq(harness_events(harness_proc_addr(coord), "?segment=seg-0000", &evs), 200);
        for (size_t k = 0; k < evs.n; k++) {
            if (strcmp(evs.events[k].kind, "refused") != 0 ||
                evs.events[k].reason != WIRE_REASON_DRAINING)
                continue;
            ck_assert_uint_eq(evs.events[k].http_status, 503); /* as the node answered */
            refused = true;
        }
        wire_event_list_done(&evs);
        if (!refused)
            usleep(20000);
    }
    ck_assert_msg(refused, "the draining node never refused seg-0000");
    ck_assert_int_eq(harness_send(harness_proc_addr(nodes[0]), "POST", "/v1/undrain", NULL), 200);
    ck_assert_msg(harness_wait_until(all_loaded, &n, 15000),
                  "seg-0000 not placed on the undrained node");
}
END_TEST

/* ---- a coordinator alone, with reports from nodes that are not there ---- */

/*
 * Sends the NodeReport a node would: SERVING, in pull mode if claim (so the
 * coordinator pushes nothing to addr), holding seg in state st with reason
 * if seg is not NULL. Returns the HTTP status; *ret_drops (if not NULL)
 * gets how many segments the answer tells it to drop, *ret_text the body.
 */
/* What fake reports say the node is doing. */
static enum wire_node_state fake_state = WIRE_NODE_SERVING;

static int fake_report(const char *id, const char *addr, bool claim, const char *seg,
                       enum wire_segment_state st, enum wire_reason reason, size_t *ret_drops,
                       char **ret_text)
{
    struct harness_fake_report f = {id, addr, claim, fake_state, seg, st, reason};
    struct harness_reply reply;
    int status = harness_report_as(harness_proc_addr(coord), &f, ret_drops, &reply);

    if (ret_drops != NULL)
        ck_assert_int_eq(status, 200);
    if (ret_text != NULL)
        *ret_text = xasprintf("%s: %s", reply.err.code, reply.err.message);
    return status;
}

/* The same, for a claim-mode node that expects 200. */
static void fake_ok(const char *id, const char *seg, enum wire_segment_state st,
                    enum wire_reason reason)
{
    ck_assert_int_eq(fake_report(id, "127.0.0.1:1", true, seg, st, reason, NULL, NULL), 200);
}

/* Registers one segment whose file does not exist (nothing reads it here). */
static void register_one(const char *id, unsigned replication)
{
    ck_assert_int_eq(harness_register_one(harness_proc_addr(coord), id, NULL, 100, 16, replication),
                     200);
}

/* The coordinator's record of one segment; the caller frees with wire_segment_list_done(). */
static void segment_get(const char *id, struct wire_segment_list *l)
{
    ck_assert_int_eq(harness_segment(harness_proc_addr(coord), id, l), 200);
}

/* The coordinator's state of one segment ("PENDING", ...). */
static void segment_state(const char *id, char *buf, size_t len)
{
    struct wire_segment_list l;

    segment_get(id, &l);
    snprintf(buf, len, "%s", l.segments[0].state);
    wire_segment_list_done(&l);
}

/* The coordinator's view of one node; false if it does not know it. *ret_count: nodes known. */
static bool node_info(const char *id, struct wire_node_info *ret, size_t *ret_count)
{
    return harness_node_info(harness_proc_addr(coord), id, ret, ret_count);
}

static struct catalog *open_catalog(void)
{
    char *db = xasprintf("%s/coord.db", dir), err[256];
    struct catalog *cat = NULL;

    ck_assert_msg(catalog_open(db, &cat, err, sizeof(err)) == 0, "%s", err);
    free(db);
    return cat;
}

START_TEST(test_invalid_evidence)
{
    char st[16];
    size_t drops = 99;

    start_coord(NULL);
    fake_ok("f1", NULL, 0, 0);
    fake_ok("f2", NULL, 0, 0);
    fake_ok("f3", NULL, 0, 0);

    /* The same node failing twice is one node's word, not two. */
    register_one("v", 3);
    for (int i = 0; i < 2; i++) {
        fake_ok("f1", "v", WIRE_SEG_LOADING, WIRE_REASON_NONE);
        fake_ok("f1", "v", WIRE_SEG_FAILED, WIRE_REASON_SEGMENT_INVALID);
    }
    segment_state("v", st, sizeof(st));
    ck_assert_str_eq(st, "PENDING");

    /* A second node fails, but a third holds a copy that passed its checksums. */
    fake_ok("f2", "v", WIRE_SEG_LOADED, WIRE_REASON_NONE);
    fake_ok("f3", "v", WIRE_SEG_LOADING, WIRE_REASON_NONE);
    fake_ok("f3", "v", WIRE_SEG_FAILED, WIRE_REASON_SEGMENT_INVALID);
    segment_state("v", st, sizeof(st));
    ck_assert_str_eq(st, "PENDING");
    ck_assert_int_eq(fake_report("f2", "127.0.0.1:1", true, "v", WIRE_SEG_LOADED,
                                 WIRE_REASON_NONE, &drops, NULL),
                     200);
    ck_assert_uint_eq(drops, 0);

    /* Two distinct nodes and no good copy: INVALID, and a late copy is dropped. */
    register_one("w", 2);
    fake_ok("f1", "w", WIRE_SEG_LOADING, WIRE_REASON_NONE);
    fake_ok("f3", "w", WIRE_SEG_LOADING, WIRE_REASON_NONE);
    fake_ok("f1", "w", WIRE_SEG_FAILED, WIRE_REASON_SEGMENT_INVALID);
    segment_state("w", st, sizeof(st));
    ck_assert_str_eq(st, "PENDING");
    fake_ok("f3", "w", WIRE_SEG_FAILED, WIRE_REASON_SEGMENT_INVALID);
    segment_state("w", st, sizeof(st));
    ck_assert_str_eq(st, "INVALID");
    ck_assert_int_eq(fake_report("f2", "127.0.0.1:1", true, "w", WIRE_SEG_LOADING,
                                 WIRE_REASON_NONE, &drops, NULL),
                     200);
    ck_assert_uint_eq(drops, 1);

    /* A copy that did load after all proves the file good: PENDING again, kept. */
    ck_assert_int_eq(fake_report("f2", "127.0.0.1:1", true, "w", WIRE_SEG_LOADED,
                                 WIRE_REASON_NONE, &drops, NULL),
                     200);
    ck_assert_uint_eq(drops, 0);
    segment_state("w", st, sizeof(st));
    ck_assert_str_eq(st, "PENDING");
}
END_TEST

START_TEST(test_bad_addr_report)
{
    /* Addresses the wire check lets through and the HTTP client cannot use. */
    static const char *const bad[] = {"h:+7001", "h:000080", "[]:80"};
    struct wire_node_info ni;
    size_t count = 0;
    char *text = NULL;

    start_coord(NULL);
    fake_ok("f1", NULL, 0, 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_int_eq(fake_report("f1", bad[i], true, NULL, 0, 0, NULL, &text), 400);
        ck_assert_msg(strstr(text, "addr") != NULL, "%s: %s", bad[i], text);
        free(text);
        ck_assert_int_eq(fake_report("ghost", bad[i], true, NULL, 0, 0, NULL, NULL), 400);
        ck_assert(node_info("f1", &ni, &count));
        ck_assert_str_eq(ni.addr, "127.0.0.1:1");
        ck_assert_str_eq(ni.state, "UP");
        ck_assert_uint_eq(count, 1);
    }
    /* And in the catalog. */
    ck_assert_int_eq(harness_proc_stop(coord), 0);
    {
        struct catalog *cat = open_catalog();
        struct catalog_node cn;

        ck_assert_int_eq(catalog_get_node(cat, "f1", &cn), 0);
        ck_assert_str_eq(cn.addr, "127.0.0.1:1");
        ck_assert_int_eq(catalog_get_node(cat, "ghost", &cn), -ENOENT);
        catalog_close(cat);
    }
}
END_TEST

static int count_assignment(const struct catalog_assignment *a, void *arg)
{
    *(int *)arg += strcmp(a->node_id, "f1") == 0 && strcmp(a->state, "LOADING") == 0;
    return 0;
}

START_TEST(test_claim_durable)
{
    struct wire_claim_request m = {"f1", 1};
    struct wire_claim_response resp;
    struct catalog *cat;
    int status, rows = 0;

    start_coord(NULL);
    fake_ok("f1", NULL, 0, 0);
    register_one("k1", 1);
    status = harness_claim(harness_proc_addr(coord), &m, &resp, NULL);
    /* Answered: the copy it hands out is on record even if the coordinator dies now. */
    harness_proc_kill(coord);
    ck_assert_int_eq(status, 200);
    ck_assert_uint_eq(resp.n, 1);
    ck_assert_str_eq(resp.assignments[0].segment_id, "k1");
    wire_claim_response_done(&resp);
    cat = open_catalog();
    ck_assert_int_eq(catalog_foreach_assignment(cat, "k1", NULL, count_assignment, &rows), 0);
    catalog_close(cat);
    ck_assert_int_eq(rows, 1);
}
END_TEST

static bool node_on_record(void *arg)
{
    struct catalog *cat = open_catalog();
    struct catalog_node cn;
    bool ok = catalog_get_node(cat, arg, &cn) == 0;

    catalog_close(cat);
    return ok;
}

static const char *node_state_of(const char *id)
{
    static struct wire_node_info ni;

    ck_assert(node_info(id, &ni, NULL));
    return ni.state;
}

/*
 * Who drained a node survives a coordinator restart: a node's own drain ends
 * when the node says so, an operator's holds until undrained.
 */
START_TEST(test_drain_owner_survives_restart)
{
    start_coord(NULL);
    fake_state = WIRE_NODE_DRAINING;
    fake_ok("self", NULL, 0, 0);
    fake_ok("both", NULL, 0, 0);
    fake_state = WIRE_NODE_SERVING;
    fake_ok("oper", NULL, 0, 0);
    ck_assert_int_eq(post_empty("/v1/nodes/oper/drain"), 200);
    ck_assert_int_eq(post_empty("/v1/nodes/both/drain"), 200); /* already draining itself */
    ck_assert_str_eq(node_state_of("self"), "DRAINING");
    ck_assert_str_eq(node_state_of("both"), "DRAINING");
    ck_assert_str_eq(node_state_of("oper"), "DRAINING");
    ck_assert_int_eq(harness_proc_restart(coord), 0);
    /* Every node now reports that it serves. */
    fake_ok("self", NULL, 0, 0);
    fake_ok("both", NULL, 0, 0);
    fake_ok("oper", NULL, 0, 0);
    ck_assert_str_eq(node_state_of("self"), "UP");
    ck_assert_str_eq(node_state_of("both"), "DRAINING");
    ck_assert_str_eq(node_state_of("oper"), "DRAINING");
    ck_assert_int_eq(post_empty("/v1/nodes/both/undrain"), 200);
    ck_assert_str_eq(node_state_of("both"), "UP");
}
END_TEST

/*
 * The node_state events of one node, oldest first, as "detail" lines
 * joined by '\n' into buf; returns how many.
 */
static size_t node_events(const char *id, char *buf, size_t len)
{
    struct wire_event_list l;
    size_t n = 0, off = 0;

    buf[0] = '\0';
    ck_assert_int_eq(harness_events(harness_proc_addr(coord), "?limit=1000", &l), 200);
    for (size_t i = 0; i < l.n; i++) {
        if (strcmp(l.events[i].kind, "node_state") != 0 || strcmp(l.events[i].node_id, id) != 0)
            continue;
        n++;
        off += (size_t)snprintf(buf + off, off < len ? len - off : 0, "%s\n",
                                l.events[i].detail);
    }
    wire_event_list_done(&l);
    return n;
}

/* Each transition is one event, "OLD -> NEW (why)", written by the one setter. */
START_TEST(test_one_event_per_transition)
{
    char text[1024];

    start_coord(NULL);
    fake_ok("f1", NULL, 0, 0);
    ck_assert_int_eq(post_empty("/v1/nodes/f1/drain"), 200);
    ck_assert_int_eq(post_empty("/v1/nodes/f1/undrain"), 200);
    ck_assert_int_eq(node_events("f1", text, sizeof(text)), 3);
    ck_assert_str_eq(text, "joined at 127.0.0.1:1\n"
                           "UP -> DRAINING (drained by the operator)\n"
                           "DRAINING -> UP (undrained by the operator)\n");
}
END_TEST

START_TEST(test_drain_not_saved)
{
    static char f1[] = "f1";
    struct wire_node_info ni;
    struct catalog *cat;

    start_coord(NULL);
    fake_ok("f1", NULL, 0, 0);
    ck_assert(harness_wait_until(node_on_record, f1, 5000));
    /* The node's row goes missing under the coordinator: its state cannot be written. */
    cat = open_catalog();
    ck_assert_int_eq(catalog_delete_node(cat, "f1"), 0);
    ck_assert_int_eq(post_empty("/v1/nodes/f1/drain"), 500);
    ck_assert(node_info("f1", &ni, NULL));
    ck_assert_str_eq(ni.state, "UP");
    /* Put back, it drains and undrains, each durably. */
    {
        struct catalog_node cn;

        memset(&cn, 0, sizeof(cn));
        snprintf(cn.id, sizeof(cn.id), "f1");
        snprintf(cn.addr, sizeof(cn.addr), "127.0.0.1:1");
        snprintf(cn.state, sizeof(cn.state), "UP");
        ck_assert_int_eq(catalog_put_node(cat, &cn), 0);
    }
    ck_assert_int_eq(post_empty("/v1/nodes/f1/drain"), 200);
    ck_assert(node_info("f1", &ni, NULL));
    ck_assert_str_eq(ni.state, "DRAINING");
    {
        struct catalog_node cn;

        ck_assert_int_eq(catalog_get_node(cat, "f1", &cn), 0);
        ck_assert_str_eq(cn.state, "DRAINING");
    }
    ck_assert_int_eq(post_empty("/v1/nodes/f1/undrain"), 200);
    ck_assert(node_info("f1", &ni, NULL));
    ck_assert_str_eq(ni.state, "UP");
    catalog_close(cat);
}
END_TEST

/*
 * A pull-mode node is sent nothing, also right after a coordinator restart,
 * before it reports again: the mode is kept in the catalog. The node's
 * address is a socket of ours that accepts nothing on its own, so any
 * assignment pushed to it shows up as a connection waiting there.
 */
START_TEST(test_claim_survives_restart)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t slen = sizeof(sa);
    char addr[64];
    int lfd, cfd;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(lfd, 0);
    ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(listen(lfd, 16), 0);
    ck_assert_int_eq(getsockname(lfd, (struct sockaddr *)&sa, &slen), 0);
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", (unsigned)ntohs(sa.sin_port));

    start_coord(NULL);
    ck_assert_int_eq(fake_report("c1", addr, true, NULL, 0, 0, NULL, NULL), 200);
    register_one("k1", 1);
    ck_assert_int_eq(harness_proc_restart(coord), 0);
    /* The coordinator used to push within milliseconds of its start. */
    usleep(1000 * 1000);
    cfd = accept(lfd, NULL, NULL);
    ck_assert_msg(cfd < 0 && (errno == EAGAIN || errno == EWOULDBLOCK),
                  "an assignment was pushed to a --claim node after the restart");
    ck_assert_str_eq(node_state_of("c1"), "UP");
    close(lfd);
}
END_TEST

/*
 * Overwrites the first 8 bytes of one leaf page of the segments table, the
 * middle child of its root, as a bad sector or a stray write would.
 */
static void corrupt_segments_leaf(const char *path)
{
    unsigned char *page, junk[8];
    sqlite3_stmt *q;
    sqlite3 *db;
    long long root, psz;
    unsigned ncell, ptr, child;
    int fd;

    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL),
                     SQLITE_OK);
    ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT rootpage FROM sqlite_schema"
                                            " WHERE name = 'segments'", -1, &q, NULL),
                     SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(q), SQLITE_ROW);
    root = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    ck_assert_int_eq(sqlite3_prepare_v2(db, "PRAGMA page_size", -1, &q, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(q), SQLITE_ROW);
    psz = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    sqlite3_close(db);

    page = xmalloc((size_t)psz);
    fd = open(path, O_RDWR | O_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pread(fd, page, (size_t)psz, (root - 1) * psz), psz);
    ck_assert_int_eq(page[0], 0x05); /* an interior table page: the table spans leaves */
    ncell = (unsigned)page[3] << 8 | page[4];
    ck_assert_uint_ge(ncell, 2);
    ptr = (unsigned)page[12 + 2 * (ncell / 2)] << 8 | page[13 + 2 * (ncell / 2)];
    child = (unsigned)page[ptr] << 24 | (unsigned)page[ptr + 1] << 16 |
            (unsigned)page[ptr + 2] << 8 | page[ptr + 3];
    ck_assert_int_eq(pread(fd, page, (size_t)psz, ((long long)child - 1) * psz), psz);
    ck_assert_int_eq(page[0], 0x0d); /* a leaf table page */
    memset(junk, 0xff, sizeof(junk));
    ck_assert_int_eq(pwrite(fd, junk, sizeof(junk), ((long long)child - 1) * psz), 8);
    close(fd);
    free(page);
}

/*
 * A catalog that a read fails on partway (one leaf page of segments
 * overwritten) must stop the start, with the error: a coordinator serving
 * the rows it did read would tell nodes to drop good copies of the rest.
 */
START_TEST(test_start_refused_on_catalog_error)
{
    char *db = xasprintf("%s/coord.db", dir), *log = xasprintf("%s/coord.log", dir), *text;
    struct catalog *cat = open_catalog();
    struct catalog_segment cs;
    FILE *f;
    size_t n;

    ck_assert_int_eq(catalog_begin(cat), 0);
    for (int i = 0; i < 3000; i++) {
        memset(&cs, 0, sizeof(cs));
        snprintf(cs.id, sizeof(cs.id), "seg-%04d", i);
        snprintf(cs.uri, sizeof(cs.uri), "file:///nonexistent/seg-%04d.seg", i);
        cs.row_count = 100;
        cs.avg_row_size = 16;
        cs.replication = 1;
        snprintf(cs.state, sizeof(cs.state), "PENDING");
        cs.created_ms = 1;
        ck_assert_int_eq(catalog_put_segment(cat, &cs), 0);
    }
    ck_assert_int_eq(catalog_commit(cat), 0);
    catalog_close(cat);
    corrupt_segments_leaf(db);

    coord = harness_coord_start(dir, NULL);
    ck_assert_msg(coord == NULL, "the coordinator serves a catalog it could not read");
    f = fopen(log, "re");
    ck_assert_ptr_nonnull(f);
    text = xcalloc(1, 65536);
    n = fread(text, 1, 65535, f);
    fclose(f);
    ck_assert_uint_gt(n, 0);
    ck_assert_msg(strstr(text, "event=start_failed") != NULL &&
                      strstr(text, "refusing to start on a partial catalog") != NULL,
                  "%s", text);
    ck_assert_msg(strstr(text, "catalog_loaded") == NULL, "%s", text);
    free(text);
    free(log);
    free(db);
}
END_TEST

static bool rc_in_flight(void *arg)
{
    struct wire_cluster_status st;

    return get_status(&st) && st.assignments_in_flight == 1;
}

START_TEST(test_rowcount_shutdown)
{
    /* A node that accepts connections and never answers: the assignment stays in flight. */
    const char *extra[] = {"--placement=rowcount", "--node-rows=f1=1000000", NULL};
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    char addr[64];
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    ck_assert_int_ge(fd, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(listen(fd, 16), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", (unsigned)ntohs(sa.sin_port));
    start_coord(extra);
    ck_assert_int_eq(fake_report("f1", addr, false, NULL, 0, 0, NULL, NULL), 200);
    register_one("r1", 1);
    ck_assert(harness_wait_until(rc_in_flight, NULL, 5000));
    /* SIGTERM: the cancelled assignment must not bring the coordinator down. */
    ck_assert_int_eq(harness_proc_stop(coord), 0);
    close(fd);
}
END_TEST


/* POSTs a query for sum(value) of one segment to a node: the HTTP status, or -errno. */
static int node_query_sum(int i, const char *id, struct wire_query_response *ret, char **ret_body)
{
    struct harness_reply reply;
    int status = harness_query_one(harness_proc_addr(nodes[i]), id, WIRE_AGG_SUM, "value", ret,
                                   &reply);

    if (ret_body != NULL)
        *ret_body = reply.err.code[0] != '\0'
                        ? xasprintf("%s: %s", reply.err.code, reply.err.message)
                        : xstrdup("(no error message)");
    return status;
}

/* The coordinator has an event of kind for (segment, node) whose detail holds needle. */
struct fault_event_want {
    const char *kind, *segment, *node, *needle;
};

static bool coord_has_event(void *arg)
{
    const struct fault_event_want *w = arg;
    struct wire_event_list evs;
    bool found = false;

    if (harness_events(harness_proc_addr(coord), "?limit=100000", &evs) == 200) {
        for (size_t k = 0; k < evs.n && !found; k++) {
            const struct wire_event *e = &evs.events[k];
            found = strcmp(e->kind, w->kind) == 0 && strcmp(e->segment_id, w->segment) == 0 &&
                    strcmp(e->node_id, w->node) == 0 && strstr(e->detail, w->needle) != NULL;
        }
        wire_event_list_done(&evs);
    }
    return found;
}

/*
 * Issue 16's defect: a mapped segment file truncated underneath the node.
 * Its next read faults (SIGBUS); the node must answer an error for that
 * segment, stay alive, keep answering for the others, and report the
 * segment FAILED to the coordinator, which hears why.
 */
START_TEST(test_truncated_mapping)
{
    uint64_t n = 2;
    uint32_t one = 1;
    struct wire_query_response resp;
    struct wire_node_status st;
    struct fault_event_want want = {"failed", "seg-0000", "node-0", "SIGBUS"};
    struct stat sb;
    char *path, *body = NULL;
    int64_t expect = 0;
    int status;

    make_segments(2, 20000, 16);
    start_coord(NULL);
    start_node_every(0, NULL, "1s", NULL);
    ck_assert(harness_wait_until(nodes_up, &one, 10000));
    ck_assert_int_eq(register_rows(0, 2, 20000), 200);
    ck_assert_msg(harness_wait_until(all_loaded, &n, 60000), "segments not LOADED");
    /* Both answer before the damage. */
    ck_assert_int_eq(node_query_sum(0, "seg-0000", &resp, NULL), 200);
    ck_assert_int_eq(node_query_sum(0, "seg-0001", &resp, NULL), 200);

    path = xasprintf("%s/node-0/segments/seg-0000.seg", dir);
    ck_assert_int_eq(stat(path, &sb), 0);
    ck_assert_int_eq(truncate(path, sb.st_size / 2), 0);

    /* The column "value" lies in the second half: its pages are gone. */
    status = node_query_sum(0, "seg-0000", &resp, &body);
    if (status < 0)
        harness_proc_dump_log(nodes[0]);
    ck_assert_msg(status >= 400, "query of the truncated segment: status %d (the node died?)",
                  status);
    ck_assert_msg(strstr(body, "seg-0000") != NULL && strstr(body, "SIGBUS") != NULL,
                  "error does not name the segment and the fault: %s", body);
    free(body);

    /* Alive, and the other segment answers exactly. */
    ck_assert_int_eq(node_query_sum(0, "seg-0001", &resp, NULL), 200);
    for (uint64_t row = 0; row < 20000; row++)
        expect += segment_synth_value(1, row);
    ck_assert_int_eq(resp.int_value, expect);

    /* The node's own account: FAILED with the reason (unless already dropped on report). */
    node_loaded(0, &st);
    for (size_t k = 0; k < st.n_segments; k++) {
        if (strcmp(st.segments[k].segment_id, "seg-0000") != 0)
            continue;
        ck_assert_int_eq(st.segments[k].state, WIRE_SEG_FAILED);
        ck_assert_msg(strstr(st.segments[k].detail, "SIGBUS") != NULL, "detail: %s",
                      st.segments[k].detail);
    }
    wire_node_status_done(&st);
    /* A later query is refused at once: the segment is no longer served. */
    status = node_query_sum(0, "seg-0000", &resp, NULL);
    ck_assert_int_eq(status, 404);

    /* And the coordinator heard it, with the reason. */
    ck_assert_msg(harness_wait_until(coord_has_event, &want, 15000),
                  "no 'failed' event for seg-0000 from node-0 at the coordinator");
    free(path);
}
END_TEST

/* ---- digests: a copy is adopted only when it is the registered segment ---- */

/* Writes <d>/<id>.seg: rows rows of 16 bytes, seed seed. */
static void write_seg_file(const char *d, const char *id, uint64_t rows, uint64_t seed)
{
    struct mkseg_spec spec = {.rows = rows, .row_bytes = 16, .seed = seed};
    char *path = xasprintf("%s/%s.seg", d, id), detail[256];

    mkdir(d, 0755);
    ck_assert_msg(mkseg_write(path, &spec, detail, sizeof(detail)) == 0, "%s", detail);
    free(path);
}

/* `sluice-coord import d`: its exit status and output (caller frees). */
static int import_dir(const char *d, char **ret_out)
{
    char *co = xasprintf("--coordinator=%s", harness_proc_addr(coord));
    const char *argv[] = {harness_bin("sluice-coord"), "import", d, co, NULL};
    int rc = harness_run(argv, ret_out);

    free(co);
    return rc;
}

/* COUNT(*) of segment id on node i (rows_matched), or -1 when it does not answer 200. */
static int64_t node_count(int i, const char *id)
{
    struct wire_query_response resp;

    return harness_query_one(harness_proc_addr(nodes[i]), id, WIRE_AGG_COUNT, "value", &resp,
                             NULL) == 200
               ? (int64_t)resp.rows_matched
               : -1;
}

struct want_count {
    const char *id;
    int64_t rows;
    uint64_t segments;
};

/* The coordinator has every segment LOADED and node 0 counts rows in id. */
static bool loaded_with_rows(void *arg)
{
    struct want_count *w = arg;

    return all_loaded(&w->segments) && node_count(0, w->id) == w->rows;
}

/* Events of one kind about a segment, by the coordinator's log. */
static size_t count_events(const char *seg, const char *kind)
{
    struct wire_event_list evs;
    char *suffix = xasprintf("?segment=%s&limit=1000", seg);
    size_t n = 0;

    ck_assert_int_eq(harness_events(harness_proc_addr(coord), suffix, &evs), 200);
    for (size_t i = 0; i < evs.n; i++)
        n += strcmp(evs.events[i].kind, kind) == 0;
    wire_event_list_done(&evs);
    free(suffix);
    return n;
}

/*
 * Issue 14, defect 2: a node holds x with 1,000 rows; a new catalog registers
 * x from another file with 5,000 rows. The node's copy is not adopted: it is
 * dropped, the registered file is loaded, and queries count 5,000 rows.
 */
START_TEST(test_stale_copy_reloaded)
{
    char *old_dir = xasprintf("%s/old", storage), *new_dir = xasprintf("%s/new", storage);
    char *coord2 = xasprintf("%s/coord2", dir), *out = NULL;
    struct want_count w = {"x", 1000, 1};
    uint32_t one = 1;

    write_seg_file(old_dir, "x", 1000, 1);
    write_seg_file(new_dir, "x", 5000, 2);
    start_coord(NULL);
    start_node(0, NULL, NULL);
    ck_assert(harness_wait_until(nodes_up, &one, 10000));
    ck_assert_int_eq(import_dir(old_dir, &out), 0);
    free(out);
    ck_assert(harness_wait_until(loaded_with_rows, &w, 30000));

    /* A new catalog, x registered from the other file before the node reports. */
    harness_proc_free(nodes[0]);
    nodes[0] = NULL;
    harness_proc_free(coord);
    mkdir(coord2, 0755);
    coord = harness_coord_start(coord2, NULL);
    ck_assert_ptr_nonnull(coord);
    ck_assert_int_eq(import_dir(new_dir, &out), 0);
    free(out);
    start_node(0, NULL, NULL);
    w.rows = 5000;
    ck_assert_msg(harness_wait_until(loaded_with_rows, &w, 30000),
                  "x LOADED from the 1,000-row copy (node counts %" PRId64 ")",
                  node_count(0, "x"));
    ck_assert_uint_ge(count_events("x", "stale_copy"), 1);
    ck_assert_uint_eq(count_events("x", "adopted"), 0);
    free(old_dir);
    free(new_dir);
    free(coord2);
}
END_TEST

/* The coordinator's spec and state of one segment. */
static void segment_spec_state(const char *id, struct wire_segment_spec *spec, char *state,
                               size_t len)
{
    struct wire_segment_list l;

    segment_get(id, &l);
    snprintf(state, len, "%s", l.segments[0].state);
    spec->row_count = l.segments[0].spec.row_count;
    spec->digest = l.segments[0].spec.digest;
    wire_segment_list_done(&l);
}

/*
 * Issue 14, defect 6 (the digest part): a segment two nodes found invalid is
 * registered again, and placeable, when import reads a changed file (another
 * digest); the same file again changes nothing; a changed file under a
 * segment that is not INVALID is refused, naming the digest.
 */
START_TEST(test_changed_file_revalidates)
{
    char *d = xasprintf("%s/re", storage), *out = NULL;
    struct wire_segment_spec spec;
    char st[16];
    uint64_t first;

    start_coord(NULL);
    fake_ok("f1", NULL, 0, 0);
    fake_ok("f2", NULL, 0, 0);
    write_seg_file(d, "y", 100, 1);
    ck_assert_int_eq(import_dir(d, &out), 0);
    free(out);
    segment_spec_state("y", &spec, st, sizeof(st));
    ck_assert_uint_ne(spec.digest, 0);
    first = spec.digest;
    fake_ok("f1", "y", WIRE_SEG_LOADING, WIRE_REASON_NONE);
    fake_ok("f1", "y", WIRE_SEG_FAILED, WIRE_REASON_SEGMENT_INVALID);
    fake_ok("f2", "y", WIRE_SEG_LOADING, WIRE_REASON_NONE);
    fake_ok("f2", "y", WIRE_SEG_FAILED, WIRE_REASON_SEGMENT_INVALID);
    segment_spec_state("y", &spec, st, sizeof(st));
    ck_assert_str_eq(st, "INVALID");

    /* The same file again: nothing changes. */
    ck_assert_int_eq(import_dir(d, &out), 0);
    ck_assert_msg(strstr(out, "0 registered, 1 already registered") != NULL, "%s", out);
    free(out);
    segment_spec_state("y", &spec, st, sizeof(st));
    ck_assert_str_eq(st, "INVALID");

    /* A fixed file (250 rows, another digest): registered again and placeable. */
    write_seg_file(d, "y", 250, 7);
    ck_assert_int_eq(import_dir(d, &out), 0);
    ck_assert_msg(strstr(out, "1 registered, 0 already registered") != NULL, "%s", out);
    free(out);
    segment_spec_state("y", &spec, st, sizeof(st));
    ck_assert_str_eq(st, "PENDING");
    ck_assert_uint_eq(spec.row_count, 250);
    ck_assert_uint_ne(spec.digest, first);
    ck_assert_uint_eq(count_events("y", "revalidated"), 1);

    /* Changed again while PENDING: refused, naming the digest; nothing changes. */
    write_seg_file(d, "y", 250, 8);
    ck_assert_int_ne(import_dir(d, &out), 0);
    ck_assert_msg(strstr(out, "digest") != NULL, "%s", out);
    free(out);
    segment_spec_state("y", &spec, st, sizeof(st));
    ck_assert_str_eq(st, "PENDING");
    ck_assert_uint_eq(spec.row_count, 250);
    free(d);
}
END_TEST

/*
 * Issue 14, defect 1, end to end: two real nodes started with one --node-id,
 * in pull mode, so that each could claim work by the id alone. The
 * coordinator answers the second one's reports 409; that node logs
 * node_id_conflict and serves and claims nothing, so every segment has one
 * real copy, on the first node.
 */
START_TEST(test_two_processes_one_id)
{
    uint64_t n = 6;
    uint32_t one = 1;
    char *co = NULL, *data_a = xasprintf("%s/a", dir), *data_b = xasprintf("%s/b", dir);
    char *logpath = xasprintf("%s/node.log", data_b), *log = NULL;
    const char *cat[] = {"/bin/cat", logpath, NULL};
    const char *args[5];
    struct wire_node_status st;
    struct wire_node_info ni;
    size_t count = 0;

    make_segments((int)n, 4096, 16);
    start_coord(NULL);
    co = xasprintf("--coordinator=%s", harness_proc_addr(coord));
    args[0] = "--node-id=dup";
    args[1] = co;
    args[2] = "--report-interval=200ms";
    args[3] = "--claim";
    args[4] = NULL;
    nodes[0] = harness_node_start_calm(storage, data_a, args);
    ck_assert_ptr_nonnull(nodes[0]);
    ck_assert(harness_wait_until(nodes_up, &one, 10000));
    nodes[1] = harness_node_start_calm(storage, data_b, args);
    ck_assert_ptr_nonnull(nodes[1]);
    import_all();
    ck_assert(harness_wait_until(all_loaded, &n, 30000));
    usleep(1500 * 1000); /* several claim and report rounds of the second process */

    ck_assert_uint_eq(node_loaded(0, &st), n);
    wire_node_status_done(&st);
    ck_assert_uint_eq(node_loaded(1, &st), 0);
    ck_assert_uint_eq(st.n_segments, 0);
    wire_node_status_done(&st);
    ck_assert(node_info("dup", &ni, &count));
    ck_assert_str_eq(ni.addr, harness_proc_addr(nodes[0]));
    ck_assert_uint_eq(count, 1);
    ck_assert_int_eq(harness_run(cat, &log), 0);
    ck_assert_msg(strstr(log, "event=node_id_conflict ") != NULL &&
                      strstr(log, harness_proc_addr(nodes[0])) != NULL,
                  "%s", log);
    free(log);
    free(logpath);
    free(co);
    free(data_a);
    free(data_b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cluster");
    TCase *tc;

    tc = tcase_create("placement");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 400);
    tcase_add_test(tc, test_thousand_segments);
    tcase_add_test(tc, test_drain);
    tcase_add_test(tc, test_rowcount_baseline);
    tcase_add_test(tc, test_pull_mode);
    suite_add_tcase(s, tc);
    tc = tcase_create("late_draining");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_late_draining);
    suite_add_tcase(s, tc);
    tc = tcase_create("coordinator");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_invalid_evidence);
    tcase_add_test(tc, test_bad_addr_report);
    tcase_add_test(tc, test_claim_durable);
    tcase_add_test(tc, test_drain_not_saved);
    tcase_add_test(tc, test_one_event_per_transition);
    tcase_add_test(tc, test_start_refused_on_catalog_error);
    tcase_add_test(tc, test_claim_survives_restart);
    tcase_add_test(tc, test_drain_owner_survives_restart);
    tcase_add_test(tc, test_rowcount_shutdown);
    suite_add_tcase(s, tc);
    tc = tcase_create("digest");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_stale_copy_reloaded);
    tcase_add_test(tc, test_changed_file_revalidates);
    suite_add_tcase(s, tc);
    tc = tcase_create("identity");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_two_processes_one_id);
    suite_add_tcase(s, tc);
    tc = tcase_create("failures");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_node_kill9);
    tcase_add_test(tc, test_coord_kill9);
    suite_add_tcase(s, tc);
    tc = tcase_create("mapped_faults");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_truncated_mapping);
    suite_add_tcase(s, tc);
    return harness_run_suite(s);
}
