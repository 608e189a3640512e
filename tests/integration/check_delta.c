/*
 * check_delta: delta reports (issue 17, item 1) with a real coordinator.
 *
 * Real nodes and coordinator: after its first full report each node sends
 * deltas; a coordinator killed and restarted on the same port has no base,
 * asks each node for its whole set once and keeps every copy where it was;
 * a node restarted with three copies fewer sends its new set whole, and the
 * three are found lost and loaded again.
 *
 * A node that is not there, built on the node's own report_state
 * (node/report.c), says on cue what a real one says only by bad luck: a
 * lost report (a gap in seq on the same base: applied) and a lost answer
 * (a delta on an older base: the whole set asked for); a delta whose digest
 * disagrees (not applied, the whole set asked for); a report repeated
 * (acknowledged, applied once) and an older one arriving late (ignored: a
 * copy it still lists is not adopted again); a delta of a new incarnation
 * (the node restarted) and the restarted node's different set.
 *
 * Shared setup from tests/harness/crash.c: the directory, a fixed port, the
 * node's start. About 20 s.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crash.h"
#include "harness.h"
#include "report.h"
#include "strmap.h"
#include "wire.h"
#include "xmalloc.h"
#include "suite.h"

static char caddr[64];

/* Starts the coordinator on a fixed port, so that it can be restarted where nodes report. */
static void start_coord(void)
{
    static char listen[80];
    static const char *args[] = {listen, NULL};
    int port = crash_free_port("127.0.0.1");

    ck_assert_int_gt(port, 0);
    snprintf(caddr, sizeof(caddr), "127.0.0.1:%d", port);
    snprintf(listen, sizeof(listen), "--listen=%s", caddr);
    crash_coord = harness_coord_start(crash_dir, args);
    ck_assert_ptr_nonnull(crash_coord);
}

static double metric(const char *sample)
{
    return harness_metric(caddr, sample);
}

#define KIND(k)   "sluice_coord_reports_by_kind_total{kind=\"" k "\"}"
#define ASKED(r)  "sluice_coord_full_reports_asked_total{reason=\"" r "\"}"
#define MISMATCH  "sluice_coord_report_digest_mismatches_total"

struct metric_wait {
    const char *sample;
    double at_least;
};

static bool metric_reached(void *arg)
{
    const struct metric_wait *w = arg;

    return metric(w->sample) >= w->at_least;
}

static void wait_metric(const char *sample, double at_least)
{
    struct metric_wait w = {sample, at_least};

    ck_assert_msg(harness_wait_until(metric_reached, &w, 20000), "%s stayed at %g, want >= %g",
                  sample, metric(sample), at_least);
}

/* Events of kind about segment seg on node (NULL: any node). */
static size_t events_of(const char *seg, const char *kind, const char *node)
{
    struct wire_event_list l;
    char q[160];
    size_t n = 0;

    snprintf(q, sizeof(q), "?segment=%s&limit=1000", seg);
    ck_assert_int_eq(harness_events(caddr, q, &l), 200);
    for (size_t i = 0; i < l.n; i++)
        n += strcmp(l.events[i].kind, kind) == 0 &&
             (node == NULL || strcmp(l.events[i].node_id, node) == 0);
    wire_event_list_done(&l);
    return n;
}

/* ---- real nodes --------------------------------------------------------------- */

#define REAL_SEGS 30

static void seg_id(int i, char *buf, size_t len)
{
    snprintf(buf, len, "s%06d", i);
}

/* Up to three ids of a strmap (strmap_foreach). */
struct pick {
    char ids[3][16];
    int n;
};

static int pick_cb(const char *key, void *value, void *arg)
{
    struct pick *p = arg;

    if (p->n < 3)
        snprintf(p->ids[p->n++], sizeof(p->ids[0]), "%s", key);
    return 0;
}

static bool picked(const struct pick *p, const char *id)
{
    for (int i = 0; i < p->n; i++)
        if (strcmp(p->ids[i], id) == 0)
            return true;
    return false;
}

START_TEST(test_real_nodes)
{
    char nlisten[80], why[512], path[512], id[16], node[16];
    const char *nargs[] = {nlisten, NULL};
    int nport = crash_free_port("127.0.0.1");
    size_t before[CRASH_NODES];
    struct strmap *held = strmap_new();
    struct pick p = {.n = 0};
    double full, asked_no_base;

    start_coord();
    ck_assert_int_gt(nport, 0);
    snprintf(nlisten, sizeof(nlisten), "--listen=127.0.0.1:%d", nport);
    /* node-0 on a fixed port: restarted, it comes back where the coordinator knows it. */
    crash_start_node(0, caddr, nargs);
    for (int i = 1; i < CRASH_NODES; i++)
        crash_start_node(i, caddr, NULL);
    crash_place_small(caddr, REAL_SEGS);
    /* Each node's first report is whole, the ones after it deltas. */
    wait_metric(KIND("delta"), 3 * CRASH_NODES);
    ck_assert_double_ge(metric(KIND("full")), CRASH_NODES);
    ck_assert_double_eq(metric(KIND("legacy")), 0);
    ck_assert_double_eq(metric(MISMATCH), 0);
    for (int i = 0; i < CRASH_NODES; i++) {
        snprintf(node, sizeof(node), "node-%d", i);
        before[i] = crash_coord_placed_on(caddr, node, NULL);
        ck_assert_uint_gt(before[i], 0);
    }

    /* kill -9 and restart: no base, each node's whole set asked for once, then deltas again. */
    harness_proc_kill(crash_coord);
    ck_assert_int_eq(harness_proc_restart(crash_coord), 0);
    wait_metric(ASKED("no_base"), CRASH_NODES);
    wait_metric(KIND("full"), CRASH_NODES);
    wait_metric(KIND("delta"), 2 * CRASH_NODES);
    ck_assert_double_eq(metric(MISMATCH), 0);
    ck_assert_msg(crash_wait_settled(caddr, REAL_SEGS, true, 30000, why, sizeof(why)), "%s", why);
    for (int i = 0; i < CRASH_NODES; i++) {
        snprintf(node, sizeof(node), "node-%d", i);
        ck_assert_uint_eq(crash_coord_placed_on(caddr, node, NULL), before[i]);
    }
    for (int i = 0; i < REAL_SEGS; i++) {
        seg_id(i, id, sizeof(id));
        ck_assert_uint_eq(events_of(id, "lost", NULL), 0);
    }

    /* node-0 restarts without three of its copies: its new set comes whole, the three are lost. */
    full = metric(KIND("full"));
    asked_no_base = metric(ASKED("no_base"));
    ck_assert_uint_eq(crash_coord_placed_on(caddr, "node-0", held), before[0]);
    strmap_foreach(held, pick_cb, &p);
    harness_proc_stop(crash_nodes[0]);
    for (int i = 0; i < p.n; i++) {
        snprintf(path, sizeof(path), "%s/node-0/segments/%s.meta", crash_dir, p.ids[i]);
        ck_assert_int_eq(unlink(path), 0);
        snprintf(path, sizeof(path), "%s/node-0/segments/%s.seg", crash_dir, p.ids[i]);
        ck_assert_int_eq(unlink(path), 0);
    }
    ck_assert_int_eq(harness_proc_restart(crash_nodes[0]), 0);
    wait_metric(KIND("full"), full + 1);
    ck_assert_msg(crash_wait_settled(caddr, REAL_SEGS, true, 30000, why, sizeof(why)), "%s", why);
    for (int i = 0; i < REAL_SEGS; i++) {
        seg_id(i, id, sizeof(id));
        ck_assert_uint_eq(events_of(id, "lost", "node-0"), picked(&p, id) ? 1 : 0);
    }
    /* The restarted node began with a full report: nothing was asked for. */
    ck_assert_double_eq(metric(ASKED("no_base")), asked_no_base);
    ck_assert_double_eq(metric(ASKED("restarted")), 0);
    ck_assert_double_eq(metric(MISMATCH), 0);
    strmap_free(held);
}
END_TEST

/* ---- a node that is not there ----------------------------------------------- */

#define FAKE_ID "fake-1"

/* A node's set and its report numbering (the node's own code). */
struct fake {
    struct report_state *rs;
    struct wire_segment_status v[16];
    size_t n;
};

static void fake_init(struct fake *f)
{
    memset(f, 0, sizeof(*f));
    f->rs = report_state_new(0);
}

/* Sets the copy of seg to state st (reason r), adding it if new. */
static void fake_set(struct fake *f, const char *seg, enum wire_segment_state st,
                     enum wire_reason r)
{
    size_t i;

    for (i = 0; i < f->n && strcmp(f->v[i].segment_id, seg) != 0; i++)
        ;
    if (i == f->n) {
        ck_assert_uint_lt(f->n, 16);
        memset(&f->v[i], 0, sizeof(f->v[i]));
        snprintf(f->v[i].segment_id, sizeof(f->v[i].segment_id), "%s", seg);
        f->v[i].row_count = 100;
        f->v[i].avg_row_size = 16;
        f->n++;
    }
    f->v[i].state = st;
    f->v[i].reason = r;
}

/* Builds the next report (pull mode: the coordinator pushes nothing to 127.0.0.1:1). */
static uint64_t fake_build(struct fake *f, struct wire_node_report *rep)
{
    memset(rep, 0, sizeof(*rep));
    snprintf(rep->node_id, sizeof(rep->node_id), FAKE_ID);
    snprintf(rep->addr, sizeof(rep->addr), "127.0.0.1:1");
    rep->state = WIRE_NODE_SERVING;
    rep->claim = true;
    return report_build(f->rs, f->v, f->n, rep);
}

/* Sends rep; the answer must be 200. The caller frees *resp (wire_report_response_done). */
static void send_report(const struct wire_node_report *rep, struct wire_report_response *resp)
{
    struct harness_reply reply;

    memset(resp, 0, sizeof(*resp));
    ck_assert_int_eq(harness_report(caddr, rep, resp, &reply), 200);
}

/* Builds, sends and takes the answer as the node does; returns the answer's ack_seq. */
static uint64_t fake_round(struct fake *f, bool *ret_send_full)
{
    struct wire_node_report rep;
    struct wire_report_response resp;
    uint64_t seq = fake_build(f, &rep), ack;

    send_report(&rep, &resp);
    report_answered(f->rs, seq, &resp);
    ack = resp.ack_seq;
    if (ret_send_full != NULL)
        *ret_send_full = resp.send_full;
    wire_report_response_done(&resp);
    return ack;
}

/* A copy of a built report, to send again later (free with wire_node_report_done). */
static void report_copy(struct wire_node_report *dst, const struct wire_node_report *src)
{
    *dst = *src;
    dst->segments = xcalloc(src->n_segments + 1, sizeof(*dst->segments));
    if (src->n_segments > 0)
        memcpy(dst->segments, src->segments, src->n_segments * sizeof(*src->segments));
    dst->removed = xcalloc(src->n_removed + 1, sizeof(*dst->removed));
    if (src->n_removed > 0)
        memcpy(dst->removed, src->removed, src->n_removed * sizeof(*src->removed));
}

/* Whether the coordinator has a copy of seg on the fake node. */
static bool on_fake(const char *seg)
{
    struct wire_segment_list l;
    bool on = false;

    ck_assert_int_eq(harness_segment(caddr, seg, &l), 200);
    for (size_t i = 0; i < l.segments[0].n_placements; i++)
        on = on || strcmp(l.segments[0].placements[i].node_id, FAKE_ID) == 0;
    wire_segment_list_done(&l);
    return on;
}

/* A coordinator with segments a..f registered (one copy each; no file: nothing reads them). */
static void start_with_segments(void)
{
    start_coord();
    for (char c = 'a'; c <= 'f'; c++) {
        char id[2] = {c, 0};

        ck_assert_int_eq(harness_register_one(caddr, id, NULL, 100, 16, 1), 200);
    }
}

/*
 * A coordinator with segments a..f, and the fake node's first report (the
 * whole set: the ids of `held`, each LOADED) acknowledged.
 */
static void fake_start(struct fake *f, const char *held)
{
    start_with_segments();
    fake_init(f);
    for (const char *c = held; *c != '\0'; c++) {
        char id[2] = {*c, 0};

        fake_set(f, id, WIRE_SEG_LOADED, WIRE_REASON_NONE);
    }
    ck_assert_uint_eq(fake_round(f, NULL), 1);
}

START_TEST(test_lost_reports)
{
    struct fake f;
    struct wire_node_report rep;
    struct wire_report_response resp;
    bool full;
    uint64_t seq;

    fake_start(&f, "ab");
    ck_assert(on_fake("a") && on_fake("b"));

    /* Report 2 (c) is lost on the way; report 3 (c, d) is on base 1 too: applied. */
    fake_set(&f, "c", WIRE_SEG_LOADED, WIRE_REASON_NONE);
    seq = fake_build(&f, &rep);
    report_unanswered(f.rs, seq);
    fake_set(&f, "d", WIRE_SEG_LOADING, WIRE_REASON_NONE);
    seq = fake_build(&f, &rep);
    ck_assert(rep.delta);
    ck_assert_uint_eq(rep.seq, 3);
    ck_assert_uint_eq(rep.base_seq, 1);
    send_report(&rep, &resp);
    ck_assert_uint_eq(resp.ack_seq, 3);
    ck_assert(!resp.send_full);
    report_answered(f.rs, seq, &resp);
    wire_report_response_done(&resp);
    ck_assert(on_fake("c") && on_fake("d"));

    /* Report 4 (b DROPPED) is applied, but its answer is lost: report 5 is on base 3. */
    fake_set(&f, "b", WIRE_SEG_DROPPED, WIRE_REASON_MEM_CRITICAL);
    seq = fake_build(&f, &rep);
    send_report(&rep, &resp);
    ck_assert_uint_eq(resp.ack_seq, 4);
    wire_report_response_done(&resp);
    report_unanswered(f.rs, seq);
    ck_assert(!on_fake("b"));
    seq = fake_build(&f, &rep);
    ck_assert_uint_eq(rep.base_seq, 3);
    send_report(&rep, &resp);
    ck_assert(resp.send_full);
    ck_assert_str_eq(resp.full_reason, "base");
    ck_assert_uint_eq(resp.ack_seq, 0);
    report_answered(f.rs, seq, &resp);
    wire_report_response_done(&resp);
    /* The whole set, then deltas again. */
    seq = fake_build(&f, &rep);
    ck_assert(!rep.delta);
    send_report(&rep, &resp);
    ck_assert_uint_eq(resp.ack_seq, seq);
    report_answered(f.rs, seq, &resp);
    wire_report_response_done(&resp);
    fake_set(&f, "d", WIRE_SEG_LOADED, WIRE_REASON_NONE);
    ck_assert_uint_eq(fake_round(&f, &full), 7);
    ck_assert(!full);
    ck_assert(on_fake("a") && !on_fake("b") && on_fake("c") && on_fake("d"));
    ck_assert_double_eq(metric(ASKED("base")), 1);
    ck_assert_double_eq(metric(KIND("full")), 2);
    ck_assert_double_eq(metric(KIND("delta")), 3);
    ck_assert_double_eq(metric(KIND("unapplied")), 1);
    ck_assert_double_eq(metric(MISMATCH), 0);
    report_state_free(f.rs);
}
END_TEST

START_TEST(test_digest_mismatch)
{
    struct fake f;
    struct wire_node_report rep;
    struct wire_report_response resp;
    uint64_t seq;

    fake_start(&f, "a");
    /* A delta whose digest is not the set the coordinator rebuilds: e is not adopted. */
    fake_set(&f, "e", WIRE_SEG_LOADED, WIRE_REASON_NONE);
    seq = fake_build(&f, &rep);
    ck_assert(rep.delta);
    rep.set_hash ^= 1;
    send_report(&rep, &resp);
    ck_assert(resp.send_full);
    ck_assert_str_eq(resp.full_reason, "digest");
    ck_assert_uint_eq(resp.ack_seq, 0);
    report_answered(f.rs, seq, &resp);
    wire_report_response_done(&resp);
    ck_assert(!on_fake("e"));
    ck_assert(on_fake("a"));
    ck_assert_double_eq(metric(MISMATCH), 1);
    ck_assert_double_eq(metric(ASKED("digest")), 1);
    /* The full report that follows is: e adopted. */
    seq = fake_build(&f, &rep);
    ck_assert(!rep.delta);
    send_report(&rep, &resp);
    ck_assert_uint_eq(resp.ack_seq, seq);
    ck_assert(!resp.send_full);
    wire_report_response_done(&resp);
    ck_assert(on_fake("e"));
    ck_assert_double_eq(metric(MISMATCH), 1);
    report_state_free(f.rs);
}
END_TEST

START_TEST(test_reordered_duplicated)
{
    struct fake f;
    struct wire_node_report rep, first, second;
    struct wire_report_response resp;
    uint64_t seq;

    start_with_segments();
    fake_init(&f);
    fake_set(&f, "a", WIRE_SEG_LOADED, WIRE_REASON_NONE);
    fake_set(&f, "b", WIRE_SEG_LOADED, WIRE_REASON_NONE);
    seq = fake_build(&f, &rep);
    report_copy(&first, &rep);
    send_report(&rep, &resp);
    report_answered(f.rs, seq, &resp);
    wire_report_response_done(&resp);
    /* Report 2: a shed. Applied once: a dropped, one event. */
    fake_set(&f, "a", WIRE_SEG_DROPPED, WIRE_REASON_MEM_CRITICAL);
    seq = fake_build(&f, &rep);
    report_copy(&second, &rep);
    send_report(&rep, &resp);
    ck_assert_uint_eq(resp.ack_seq, 2);
    ck_assert_uint_eq(resp.n_drop, 1);
    report_answered(f.rs, seq, &resp);
    wire_report_response_done(&resp);
    ck_assert(!on_fake("a"));
    ck_assert_uint_eq(events_of("a", "dropped", FAKE_ID), 1);
    /* Report 2 again (an HTTP retry): acknowledged again, not applied again. */
    send_report(&second, &resp);
    ck_assert_uint_eq(resp.ack_seq, 2);
    ck_assert(!resp.send_full);
    ck_assert_uint_eq(resp.n_drop, 0);
    wire_report_response_done(&resp);
    ck_assert_uint_eq(events_of("a", "dropped", FAKE_ID), 1);
    ck_assert_double_eq(metric(KIND("duplicate")), 1);
    /* Report 1 arrives late: ignored; a, which it lists LOADED, is not adopted again. */
    send_report(&first, &resp);
    ck_assert_uint_eq(resp.ack_seq, 0);
    ck_assert(!resp.send_full);
    ck_assert_uint_eq(resp.n_drop, 0);
    wire_report_response_done(&resp);
    ck_assert(!on_fake("a"));
    ck_assert(on_fake("b"));
    ck_assert_uint_eq(events_of("a", "adopted", FAKE_ID), 1);
    ck_assert_double_eq(metric(KIND("old")), 1);
    /* And the node goes on with deltas on report 2. */
    ck_assert_uint_eq(fake_round(&f, NULL), 3);
    wire_node_report_done(&first);
    wire_node_report_done(&second);
    report_state_free(f.rs);
}
END_TEST

START_TEST(test_node_restart)
{
    struct fake f;
    struct report_state *old;
    struct wire_node_report rep;
    struct wire_report_response resp;

    fake_start(&f, "abc");
    ck_assert_uint_eq(fake_round(&f, NULL), 2);
    /* Past the grace a copy the model has must be reported in. */
    usleep(3200 * 1000);
    /* The node restarts holding c and d. A delta of the new process (its full report lost). */
    old = f.rs;
    f.rs = report_state_new(0);
    f.n = 0;
    fake_set(&f, "c", WIRE_SEG_LOADED, WIRE_REASON_NONE);
    fake_set(&f, "d", WIRE_SEG_LOADED, WIRE_REASON_NONE);
    report_build(old, f.v, f.n, &rep);
    ck_assert(rep.delta);
    rep.incarnation = report_state_incarnation(f.rs);
    snprintf(rep.node_id, sizeof(rep.node_id), FAKE_ID);
    snprintf(rep.addr, sizeof(rep.addr), "127.0.0.1:1");
    rep.state = WIRE_NODE_SERVING;
    rep.claim = true;
    send_report(&rep, &resp);
    ck_assert(resp.send_full);
    ck_assert_str_eq(resp.full_reason, "restarted");
    wire_report_response_done(&resp);
    ck_assert(on_fake("a") && on_fake("b")); /* nothing taken from that delta */
    report_state_free(old);
    /* Its full report: a and b lost, c kept, d adopted. */
    ck_assert_uint_eq(fake_round(&f, NULL), 1);
    ck_assert(!on_fake("a") && !on_fake("b"));
    ck_assert(on_fake("c") && on_fake("d"));
    ck_assert_uint_eq(events_of("a", "lost", FAKE_ID), 1);
    ck_assert_uint_eq(events_of("c", "lost", FAKE_ID), 0);
    ck_assert_double_eq(metric(ASKED("restarted")), 1);
    report_state_free(f.rs);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("delta");

    crash_tcase(s, "real_nodes", test_real_nodes, 180);
    crash_tcase(s, "lost", test_lost_reports, 60);
    crash_tcase(s, "digest", test_digest_mismatch, 60);
    crash_tcase(s, "order", test_reordered_duplicated, 60);
    crash_tcase(s, "restart", test_node_restart, 60);
    return harness_run_suite(s);
}
