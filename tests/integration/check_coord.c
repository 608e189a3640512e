/*
 * check_coord: the coordinator's answers to what operators and nodes do,
 * with a real coordinator and, where placement must really happen, real
 * nodes (tests/harness). Most cases talk to a coordinator alone and send
 * the reports a node would send, from nodes that are not there, so that
 * they can say what no real node says on cue: two processes claiming one
 * node id, a node that moved, a node gone DOWN.
 *
 * Covered (issue 14): an id clash answered 409 without a state change, and a
 * legitimate move still accepted; segments registered before any node
 * joins are placed when the first one does; drain and undrain print the
 * node's real state and fail when it is not the one asked for; `retry`
 * and `wait` with INVALID segments; `import` refusing ids that are too
 * long; `events` paged in SQL; a copy on a SUSPECT node does not count
 * against a live one; `forget` of a DOWN node. Issue 17: a storm of
 * identical refusals is one counted event row per interval. Issue 20:
 * `remove` of a registration; an import registers its good files and names
 * each refused one.
 *
 * With SLUICE_TEST_CATALOG=postgresql every case runs with the catalog in
 * PostgreSQL (one private server for the run, a database per case).
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog.h"
#include "clock.h"
#include "harness.h"
#include "http.h"
#include "pg.h"
#include "mkseg.h"
#include "reason.h"
#include "segfmt.h"
#include "wire.h"
#include "xmalloc.h"
#include "suite.h"

static char *dir, *storage;
static struct harness_proc *coord, *node, *node2;

static void setup(void)
{
    dir = harness_dir_new("sluice-coord-it");
    storage = xasprintf("%s/storage", dir);
    mkdir(storage, 0755);
}

static void teardown(void)
{
    harness_proc_free(node);
    node = NULL;
    harness_proc_free(node2);
    node2 = NULL;
    harness_proc_free(coord);
    coord = NULL;
    harness_dir_remove(dir);
    free(dir);
    free(storage);
}

static void start_coord(const char *const *extra)
{
    coord = harness_coord_start(dir, extra);
    ck_assert_ptr_nonnull(coord);
}

/* Writes a small synthetic segment file <storage>/<name>.seg. */
static void make_segment(const char *name, uint64_t seed)
{
    struct mkseg_spec spec = {.rows = 1024, .row_bytes = 16, .seed = seed};
    char *path = xasprintf("%s/%s.seg", storage, name), detail[256];

    ck_assert_msg(mkseg_write(path, &spec, detail, sizeof(detail)) == 0, "%s",
                  detail);
    free(path);
}

/*
 * Runs `sluice-coord CMD ARGS... --coordinator=ADDR`; returns its exit
 * status and, if out is not NULL, its stdout and stderr (caller frees).
 */
static int ctl(char **out, const char *cmd, const char *a1, const char *a2)
{
    char *co = xasprintf("--coordinator=%s", harness_proc_addr(coord)), *text = NULL;
    const char *argv[6] = {harness_bin("sluice-coord"), cmd, co, NULL, NULL, NULL};
    int n = 3, rc;

    if (a1 != NULL)
        argv[n++] = a1;
    if (a2 != NULL)
        argv[n++] = a2;
    rc = harness_run(argv, &text);
    if (out != NULL)
        *out = text;
    else
        free(text);
    free(co);
    return rc;
}

static bool get_status(struct wire_cluster_status *st)
{
    return harness_cluster_status(harness_proc_addr(coord), st) == 200;
}

/* What fake reports say the node is doing, and why a reported copy failed. */
static enum wire_node_state fake_state = WIRE_NODE_SERVING;
static enum wire_reason fake_reason = WIRE_REASON_NONE;

/*
 * Sends the NodeReport a node would (harness_report_as): from addr, in pull
 * mode if claim, holding seg in state st if seg is not NULL. Returns the
 * HTTP status; *ret_drops (if not NULL) gets how many segments the answer
 * says to drop, *ret_err (if not NULL) the Error of a refusal.
 */
static int fake_report(const char *id, const char *addr, bool claim, const char *seg,
                       enum wire_segment_state st, size_t *ret_drops, struct wire_error *ret_err)
{
    struct harness_fake_report f = {id, addr, claim, fake_state, seg, st, fake_reason};
    struct harness_reply reply;
    int status = harness_report_as(harness_proc_addr(coord), &f, ret_drops, &reply);

    ck_assert_int_gt(status, 0);
    if (ret_err != NULL && status != 200)
        *ret_err = reply.err;
    return status;
}

/* A pull-mode report that must be answered 200. */
static void fake_ok(const char *id, const char *seg, enum wire_segment_state st)
{
    ck_assert_int_eq(fake_report(id, "127.0.0.1:1", true, seg, st, NULL, NULL), 200);
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

static const char *segment_state(const char *id)
{
    static char st[16];
    struct wire_segment_list l;

    segment_get(id, &l);
    snprintf(st, sizeof(st), "%s", l.segments[0].state);
    wire_segment_list_done(&l);
    return st;
}

/* The coordinator's view of one node; false if it does not know it. */
static bool node_info(const char *id, struct wire_node_info *ret, size_t *ret_count)
{
    return harness_node_info(harness_proc_addr(coord), id, ret, ret_count);
}

static const char *node_state_of(const char *id)
{
    static struct wire_node_info ni;

    ck_assert(node_info(id, &ni, NULL));
    return ni.state;
}

static bool node_is_down(void *arg)
{
    struct wire_node_info ni;

    return node_info(arg, &ni, NULL) && strcmp(ni.state, "DOWN") == 0;
}

static struct catalog *open_catalog(void)
{
    char *db = harness_coord_catalog(dir), err[256];
    struct catalog *cat = NULL;

    ck_assert_msg(catalog_open(db, &cat, err, sizeof(err)) == 0, "%s", err);
    free(db);
    return cat;
}

/* ---- defect 9: segments registered before any node joins ---------------- */

START_TEST(test_first_node_places)
{
    uint64_t one = 1;
    char *data = xasprintf("%s/node", dir), *co, *out = NULL;
    const char *args[4];

    start_coord(NULL);
    make_segment("early", 1);
    ck_assert_int_eq(ctl(&out, "import", storage, NULL), 0);
    free(out);
    /* Nothing can take it yet; then the first node joins, and nothing else happens. */
    co = xasprintf("--coordinator=%s", harness_proc_addr(coord));
    args[0] = "--node-id=first";
    args[1] = co;
    args[2] = "--report-interval=200ms";
    args[3] = NULL;
    node = harness_node_start_calm(storage, data, args);
    ck_assert_ptr_nonnull(node);
    ck_assert_msg(harness_settled(harness_proc_addr(coord), one, 15000),
                  "a segment registered before the first node joined was not placed");
    free(co);
    free(data);
}
END_TEST


/* ---- issue 22: a node fences off a deposed coordinator by epoch ----------- */

/* POST /v1/assign/batch of one segment at epoch; the status, and the Error's code and message. */
static int assign_at_epoch(const char *addr, const char *id, uint64_t epoch, struct wire_error *e)
{
    struct wire_assign_request a;
    struct wire_assign_batch b = {.n = 1, .assignments = &a, .epoch = epoch};
    struct http_response r;
    char *uri = xasprintf("file://%s/%s.seg", storage, id);
    uint8_t *body;
    size_t len;
    int status = -1;

    a = harness_assign_request(id, uri, 1024, 16);
    body = wire_assign_batch_encode(&b, &len);
    memset(e, 0, sizeof(*e));
    if (http_fetch(addr, "POST", "/v1/assign/batch", "application/x-protobuf", body, len, NULL,
                   10000, &r) == 0) {
        status = r.status;
        if (status != 200)
            (void)wire_error_decode(r.body, r.body_len, e);
        http_response_done(&r);
    }
    free(body);
    free(uri);
    return status;
}

START_TEST(test_node_epoch_fence)
{
    char *data = xasprintf("%s/node", dir);
    struct wire_error e;

    make_segment("f1", 1);
    make_segment("f2", 2);
    make_segment("f3", 3);
    node = harness_node_start_calm(storage, data, NULL);
    ck_assert_ptr_nonnull(node);
    /* The leader of epoch 5 is obeyed; then a deposed one (epoch 3) is refused whole. */
    ck_assert_int_eq(assign_at_epoch(harness_proc_addr(node), "f1", 5, &e), 200);
    ck_assert_int_eq(assign_at_epoch(harness_proc_addr(node), "f2", 3, &e), 409);
    ck_assert_str_eq(e.code, "stale_epoch");
    ck_assert_msg(strstr(e.message, "epoch 3 is older than epoch 5") != NULL, "%s", e.message);
    ck_assert(harness_node_settled(harness_proc_addr(node), 1, 15000));
    ck_assert_uint_eq(harness_node_count(harness_proc_addr(node), WIRE_SEG_LOADING), 0);
    /* The same leader again, and a coordinator without election (SQLite, epoch 0). */
    ck_assert_int_eq(assign_at_epoch(harness_proc_addr(node), "f2", 5, &e), 200);
    ck_assert_int_eq(assign_at_epoch(harness_proc_addr(node), "f3", 0, &e), 200);
    free(data);
}
END_TEST

/* ---- defect 1: one node id claimed from two addresses -------------------- */

START_TEST(test_id_clash)
{
    const char *extra[] = {"--node-timeout=2s", NULL};
    struct wire_segment_list l;
    struct wire_node_info ni;
    struct wire_error err;
    size_t count = 0;

    start_coord(extra);
    register_one("h", 1);
    fake_ok("n1", "h", WIRE_SEG_LOADED);
    ck_assert_str_eq(segment_state("h"), "LOADED");

    /* Another process claims n1 from another address while n1 reports: 409, nothing changes. */
    fake_reason = WIRE_REASON_SEGMENT_INVALID;
    ck_assert_int_eq(fake_report("n1", "127.0.0.1:2", true, "h", WIRE_SEG_FAILED, NULL, &err),
                     409);
    fake_reason = WIRE_REASON_NONE;
    ck_assert_str_eq(err.code, "node_id_in_use");
    ck_assert_msg(strstr(err.message, "\"n1\"") != NULL && strstr(err.message, "127.0.0.1:1"),
                  "%s", err.message);
    ck_assert(node_info("n1", &ni, &count));
    ck_assert_str_eq(ni.addr, "127.0.0.1:1");
    ck_assert_str_eq(ni.state, "UP");
    ck_assert_uint_eq(count, 1);
    segment_get("h", &l);
    ck_assert_str_eq(l.segments[0].state, "LOADED");
    ck_assert_uint_eq(l.segments[0].n_placements, 1);
    ck_assert_str_eq(l.segments[0].placements[0].node_id, "n1");
    wire_segment_list_done(&l);
    /* Still the first one's: its reports go on being answered. */
    fake_ok("n1", "h", WIRE_SEG_LOADED);
    ck_assert_int_eq(fake_report("n1", "127.0.0.1:2", true, NULL, 0, NULL, &err), 409);

    /* The old address silent past the node timeout: the node moved, and is accepted. */
    ck_assert(harness_wait_until(node_is_down, (char[]){"n1"}, 10000));
    ck_assert_int_eq(fake_report("n1", "127.0.0.1:2", true, "h", WIRE_SEG_LOADED, NULL, NULL),
                     200);
    ck_assert(node_info("n1", &ni, &count));
    ck_assert_str_eq(ni.addr, "127.0.0.1:2");
    ck_assert_str_eq(ni.state, "UP");
    ck_assert_uint_eq(count, 1);
    /* And now the old address is the stranger. */
    ck_assert_int_eq(fake_report("n1", "127.0.0.1:1", true, NULL, 0, NULL, &err), 409);
    ck_assert_msg(strstr(err.message, "127.0.0.1:2") != NULL, "%s", err.message);
}
END_TEST

/* ---- defect 5: drain and undrain say what resulted ------------------------ */

START_TEST(test_drain_real_state)
{
    const char *extra[] = {"--node-timeout=1s", NULL};
    char *out = NULL;

    start_coord(extra);
    fake_state = WIRE_NODE_DRAINING;
    fake_ok("self", NULL, 0);
    fake_state = WIRE_NODE_SERVING;
    fake_ok("up1", NULL, 0);

    /* A node draining by itself stays DRAINING: undrain says so and fails. */
    ck_assert_int_eq(ctl(&out, "undrain", "self", NULL), 1);
    ck_assert_msg(strstr(out, "self: DRAINING") != NULL, "%s", out);
    free(out);
    ck_assert_str_eq(node_state_of("self"), "DRAINING");

    ck_assert_int_eq(ctl(&out, "drain", "up1", NULL), 0);
    ck_assert_msg(strstr(out, "up1: DRAINING") != NULL, "%s", out);
    free(out);
    ck_assert_int_eq(ctl(&out, "undrain", "up1", "--json"), 0);
    ck_assert_msg(strstr(out, "\"state\":\"UP\"") != NULL, "%s", out);
    free(out);

    /* A DOWN node stays DOWN (it is not counted up); the operator's drain holds when it returns. */
    ck_assert(harness_wait_until(node_is_down, (char[]){"up1"}, 10000));
    ck_assert_int_eq(ctl(&out, "drain", "up1", NULL), 0);
    ck_assert_msg(strstr(out, "up1: DOWN") != NULL, "%s", out);
    free(out);
    ck_assert_str_eq(node_state_of("up1"), "DOWN");
    fake_ok("up1", NULL, 0);
    ck_assert_str_eq(node_state_of("up1"), "DRAINING");
    /* Undrain of a DOWN node lifts the drain, but the node is not UP: it fails, saying so. */
    ck_assert(harness_wait_until(node_is_down, (char[]){"up1"}, 10000));
    ck_assert_int_eq(ctl(&out, "undrain", "up1", NULL), 1);
    ck_assert_msg(strstr(out, "up1: DOWN") != NULL, "%s", out);
    free(out);
    fake_ok("up1", NULL, 0);
    ck_assert_str_eq(node_state_of("up1"), "UP");
}
END_TEST

/* ---- defect 6: INVALID is not forever ------------------------------------ */

START_TEST(test_invalid_retry_wait)
{
    char *out = NULL;

    start_coord(NULL);
    fake_ok("f1", NULL, 0);
    fake_ok("f2", NULL, 0);
    register_one("w", 2);
    fake_ok("f1", "w", WIRE_SEG_LOADING);
    fake_ok("f2", "w", WIRE_SEG_LOADING);
    fake_reason = WIRE_REASON_SEGMENT_INVALID;
    fake_ok("f1", "w", WIRE_SEG_FAILED);
    fake_ok("f2", "w", WIRE_SEG_FAILED);
    fake_reason = WIRE_REASON_NONE;
    ck_assert_str_eq(segment_state("w"), "INVALID");

    /* wait: nothing left to place, but not a success; it names the segment. */
    ck_assert_int_eq(ctl(&out, "wait", "--for=2s", NULL), 1);
    ck_assert_msg(strstr(out, "INVALID") != NULL && strstr(out, "w") != NULL, "%s", out);
    free(out);

    /* retry: placeable again. */
    ck_assert_int_eq(ctl(&out, "retry", "w", NULL), 0);
    ck_assert_msg(strstr(out, "w: PENDING") != NULL, "%s", out);
    free(out);
    ck_assert_str_eq(segment_state("w"), "PENDING");
    /* The nodes' earlier verdicts are forgotten: one new failure does not make it INVALID. */
    fake_ok("f1", "w", WIRE_SEG_LOADING);
    fake_reason = WIRE_REASON_SEGMENT_INVALID;
    fake_ok("f1", "w", WIRE_SEG_FAILED);
    fake_reason = WIRE_REASON_NONE;
    ck_assert_str_eq(segment_state("w"), "PENDING");
    {
        struct catalog *cat = open_catalog();
        struct catalog_segment cs;

        ck_assert_int_eq(catalog_get_segment(cat, "w", &cs), 0);
        ck_assert_str_eq(cs.state, "PENDING");
        catalog_close(cat);
    }

    /* Only an INVALID segment can be retried; an unknown one is named. */
    ck_assert_int_eq(ctl(&out, "retry", "w", NULL), 1);
    ck_assert_msg(strstr(out, "PENDING") != NULL, "%s", out);
    free(out);
    ck_assert_int_eq(ctl(&out, "retry", "nosuch", NULL), 1);
    ck_assert_msg(strstr(out, "nosuch") != NULL, "%s", out);
    free(out);
}
END_TEST

/* ---- defect 7: ids longer than the limit ---------------------------------- */

START_TEST(test_import_long_id)
{
    char name[160], *out = NULL;
    struct wire_cluster_status st;

    start_coord(NULL);
    /* Two names that agree on their first 128 bytes, and one good file. */
    memset(name, 'a', 131);
    name[131] = 'x';
    name[132] = '\0';
    make_segment(name, 1);
    name[131] = 'y';
    make_segment(name, 2);
    make_segment("good", 3);
    (void)ctl(&out, "import", storage, NULL);
    ck_assert_msg(strstr(out, name) != NULL || strstr(out, "aaaax.seg") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "128") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "1 registered") != NULL, "%s", out);
    free(out);
    ck_assert(get_status(&st));
    ck_assert_uint_eq(st.segments_total, 1);
    ck_assert_str_eq(segment_state("good"), "PENDING");
}
END_TEST

/* ---- suspected: a copy on a SUSPECT node counted against a live one ------- */

static bool node_is_suspect(void *arg)
{
    struct wire_node_info ni;

    return node_info(arg, &ni, NULL) && strcmp(ni.state, "SUSPECT") == 0;
}

START_TEST(test_suspect_copy)
{
    struct wire_segment_list l;
    size_t drops = 99;

    start_coord(NULL);
    register_one("x", 1);
    fake_ok("f1", "x", WIRE_SEG_LOADED);
    ck_assert_str_eq(segment_state("x"), "LOADED");
    /* f1 takes pushes at an address where nothing listens: its next assignment fails. */
    ck_assert_int_eq(fake_report("f1", "127.0.0.1:1", false, "x", WIRE_SEG_LOADED, NULL, NULL),
                     200);
    register_one("y", 1);
    ck_assert(harness_wait_until(node_is_suspect, (char[]){"f1"}, 10000));

    /* A live node reports a copy: it is kept, not dropped for the one on the SUSPECT node. */
    ck_assert_int_eq(fake_report("f2", "127.0.0.1:1", true, "x", WIRE_SEG_LOADED, &drops, NULL),
                     200);
    ck_assert_uint_eq(drops, 0);
    segment_get("x", &l);
    ck_assert_uint_eq(l.segments[0].n_placements, 2);
    wire_segment_list_done(&l);

    /* f1 comes back: now one copy is surplus, and it is the one that was in doubt. */
    ck_assert_int_eq(fake_report("f1", "127.0.0.1:1", true, "x", WIRE_SEG_LOADED, &drops, NULL),
                     200);
    ck_assert_uint_eq(drops, 1);
    ck_assert_int_eq(fake_report("f2", "127.0.0.1:1", true, "x", WIRE_SEG_LOADED, &drops, NULL),
                     200);
    ck_assert_uint_eq(drops, 0);
    segment_get("x", &l);
    ck_assert_uint_eq(l.segments[0].n_placements, 1);
    ck_assert_str_eq(l.segments[0].placements[0].node_id, "f2");
    wire_segment_list_done(&l);
}
END_TEST

/* ---- defect 3: a new node wakes segments backing off ---------------------- */

static struct harness_proc *start_named_node(const char *id, const char *extra)
{
    char *data = xasprintf("%s/%s", dir, id), *co, *nid;
    const char *args[5];
    struct harness_proc *p;

    co = xasprintf("--coordinator=%s", harness_proc_addr(coord));
    nid = xasprintf("--node-id=%s", id);
    args[0] = nid;
    args[1] = co;
    args[2] = "--report-interval=200ms";
    args[3] = extra;
    args[4] = NULL;
    p = harness_node_start_calm(storage, data, args); /* extra overrides its budget */
    ck_assert_ptr_nonnull(p);
    free(co);
    free(nid);
    free(data);
    return p;
}

static bool backing_off(void *arg)
{
    struct wire_cluster_status st;

    return get_status(&st) && st.segments_backing_off == 1;
}

START_TEST(test_new_node_wakes_backoff)
{
    uint64_t one = 1;
    char *out = NULL;

    start_coord(NULL);
    make_segment("s1", 1);
    /* a refuses every load ("go elsewhere" for 40 s); s1 backs off. */
    node = start_named_node("a", "--admit-budget=1");
    ck_assert_int_eq(ctl(&out, "import", storage, NULL), 0);
    free(out);
    ck_assert(harness_wait_until(backing_off, NULL, 10000));
    /* b joins with room: s1 loads there now, not when a's Retry-After ends. */
    node2 = start_named_node("b", NULL);
    ck_assert_msg(harness_settled(harness_proc_addr(coord), one, 15000),
                  "a segment backing off was not woken by a new node");
}
END_TEST



/* ---- defect 4: events paged in SQL ---------------------------------------- */

/* GET /v1/events with a query string; the caller frees with wire_event_list_done(). */
static void get_events(const char *query, struct wire_event_list *l)
{
    char *suffix = xasprintf("?%s", query);

    ck_assert_int_eq(harness_events(harness_proc_addr(coord), suffix, l), 200);
    free(suffix);
}

START_TEST(test_events_paged)
{
    struct wire_event_list all, page;
    uint64_t before = 0;
    size_t seen = 0, pages = 0;
    char q[96], *out = NULL;

    start_coord(NULL);
    for (int i = 0; i < 23; i++) {
        char id[16];

        snprintf(id, sizeof(id), "n%02d", i);
        fake_ok(id, NULL, 0); /* one "joined" event each */
    }
    get_events("limit=100000", &all);
    ck_assert_uint_ge(all.n, 23);
    ck_assert_uint_eq(all.next_before, 0);
    /* Newest page first, then back by the cursor: every event once, in order. */
    do {
        snprintf(q, sizeof(q), "limit=10%s%" PRIu64, before ? "&before=" : "&x=", before);
        get_events(q, &page);
        ck_assert_uint_le(page.n, 10);
        ck_assert_uint_gt(page.n, 0);
        for (size_t k = 0; k < page.n; k++) {
            /* all is ascending; pages come newest first, each ascending. */
            ck_assert_uint_eq(page.events[k].id, all.events[all.n - seen - page.n + k].id);
        }
        seen += page.n;
        before = page.next_before;
        if (before != 0)
            ck_assert_uint_eq(before, page.events[0].id);
        wire_event_list_done(&page);
        ck_assert_uint_lt(++pages, 10);
    } while (before != 0);
    ck_assert_uint_eq(seen, all.n);
    ck_assert_uint_eq(pages, (all.n + 9) / 10);
    /* Forwards from an id. */
    snprintf(q, sizeof(q), "limit=2&after=%" PRIu64, all.events[0].id);
    get_events(q, &page);
    ck_assert_uint_eq(page.n, 2);
    ck_assert_uint_eq(page.events[0].id, all.events[1].id);
    wire_event_list_done(&page);

    /* The CLI pages the same way. */
    ck_assert_int_eq(ctl(&out, "events", "--limit=3", "--json"), 0);
    snprintf(q, sizeof(q), "\"next_before\":%" PRIu64 "}", all.events[all.n - 3].id);
    ck_assert_msg(strstr(out, q) != NULL, "%s", out);
    free(out);
    snprintf(q, sizeof(q), "--before=%" PRIu64, all.events[all.n - 3].id);
    ck_assert_int_eq(ctl(&out, "events", "--limit=3", q), 0);
    snprintf(q, sizeof(q), "%" PRIu64 " ", all.events[all.n - 4].id);
    ck_assert_msg(strstr(out, q) != NULL, "%s", out);
    free(out);
    wire_event_list_done(&all);
}
END_TEST


/* ---- issue 17: a storm of identical refusals is one counted row ---------- */

/* ---- issue 20 item 2: every refusal recorded with the node's reason and detail ---- */

static bool seg_is_invalid(void *arg)
{
    return strcmp(segment_state(arg), "INVALID") == 0;
}

/* The first event of kind for segment seg (or any, seg NULL) in l; NULL if none. */
static const struct wire_event *find_event(const struct wire_event_list *l, const char *kind,
                                           const char *seg)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->events[i].kind, kind) == 0 &&
            (seg == NULL || strcmp(l->events[i].segment_id, seg) == 0))
            return &l->events[i];
    return NULL;
}

/*
 * A 422 from the node's precheck (the registration says 999 rows, the file
 * has 1024) reaches the operator: a "refused" event with the node's
 * detail, the node's REFUSED count, sluice_coord_refusals_total, and
 * explain. Before, only the node's log said why.
 */
START_TEST(test_refusal_422_detail)
{
    const char *addr;
    char *uri, *out = NULL;
    struct wire_event_list l;
    struct wire_node_info ni;
    const struct wire_event *e;

    start_coord(NULL);
    addr = harness_proc_addr(coord);
    make_segment("good", 1);
    node = start_named_node("a", NULL);
    uri = xasprintf("file://%s/good.seg", storage);
    ck_assert_int_eq(harness_register_one(addr, "bad", uri, 999, 16, 1), 200);
    char bad_id[] = "bad";

    ck_assert_msg(harness_wait_until(seg_is_invalid, bad_id, 15000), "bad did not become INVALID");
    get_events("segment=bad&limit=100", &l);
    e = find_event(&l, "refused", "bad");
    ck_assert_msg(e != NULL, "no refused event for bad");
    ck_assert_int_eq(e->reason, WIRE_REASON_SEGMENT_INVALID);
    ck_assert_uint_eq(e->http_status, 422);
    ck_assert_str_eq(e->node_id, "a");
    ck_assert_msg(strstr(e->detail, "999") != NULL && strstr(e->detail, "1024") != NULL,
                  "refused detail: %s", e->detail);
    e = find_event(&l, "invalid", "bad");
    ck_assert_msg(e != NULL && strstr(e->detail, "1024") != NULL, "invalid detail: %s",
                  e != NULL ? e->detail : "(none)");
    wire_event_list_done(&l);
    ck_assert(node_info("a", &ni, NULL));
    ck_assert_uint_eq(ni.refusals, 1);
    ck_assert_str_eq(ni.last_reason, "SEGMENT_INVALID");
    ck_assert_double_eq(
        harness_metric(addr, "sluice_coord_refusals_total{reason=\"SEGMENT_INVALID\"}"), 1);
    ck_assert_int_eq(ctl(&out, "explain", "bad", NULL), 0);
    ck_assert_msg(strstr(out, "the file says 1024") != NULL, "%s", out);
    free(out);
    free(uri);
}
END_TEST

/* A MEM_CAPACITY refusal's event carries the node's detail (its DETAIL column was empty). */
START_TEST(test_refusal_capacity_detail)
{
    const char *addr;
    char *out = NULL;
    struct wire_event_list l;
    const struct wire_event *e;

    start_coord(NULL);
    addr = harness_proc_addr(coord);
    make_segment("s1", 1);
    node = start_named_node("a", "--admit-budget=1");
    ck_assert_int_eq(ctl(&out, "import", storage, NULL), 0);
    free(out);
    ck_assert(harness_wait_until(backing_off, NULL, 10000));
    get_events("segment=s1&limit=100", &l);
    e = find_event(&l, "refused", "s1");
    ck_assert_msg(e != NULL, "no refused event for s1");
    ck_assert_int_eq(e->reason, WIRE_REASON_MEM_CAPACITY);
    ck_assert_msg(e->detail[0] != '\0', "the refused event has no detail");
    wire_event_list_done(&l);
    ck_assert_double_ge(
        harness_metric(addr, "sluice_coord_refusals_total{reason=\"MEM_CAPACITY\"}"), 1);
}
END_TEST



/*
 * Issue 20 item 9: pointed at the other daemon, each CLI says so (the
 * daemons name themselves in a Server header) instead of printing bytes or
 * "not a valid ClusterStatus protobuf message"; a flag before the command
 * works (item 8).
 */
START_TEST(test_wrong_daemon_named)
{
    const char *argv[6];
    char *out = NULL;
    int rc;

    start_coord(NULL);
    node = start_named_node("a", NULL);
    argv[0] = harness_bin("sluice-coord");
    argv[1] = "--coordinator";
    argv[2] = harness_proc_addr(node);
    argv[3] = "status";
    argv[4] = NULL;
    rc = harness_run(argv, &out);
    ck_assert_msg(rc == 2 && strstr(out, "is a Sluice node, not a coordinator") != NULL,
                  "rc %d: %s", rc, out);
    free(out);
    argv[0] = harness_bin("sluice-node");
    argv[1] = "status";
    argv[2] = "--node";
    argv[3] = harness_proc_addr(coord);
    rc = harness_run(argv, &out);
    ck_assert_msg(rc != 0 && strstr(out, "is a Sluice coordinator, not a node") != NULL,
                  "rc %d: %s", rc, out);
    free(out);
}
END_TEST

static bool n_backing_off(void *arg)
{
    struct wire_cluster_status st;

    return get_status(&st) && st.segments_backing_off == *(uint64_t *)arg;
}

/* Rows and summed count of the events of one kind (and node, if not NULL). */
static void count_events(const struct wire_event_list *l, const char *kind, const char *node_id,
                         size_t *ret_rows, uint64_t *ret_count)
{
    *ret_rows = 0;
    *ret_count = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(l->events[i].kind, kind) != 0 ||
            (node_id != NULL && strcmp(l->events[i].node_id, node_id) != 0))
            continue;
        (*ret_rows)++;
        *ret_count += l->events[i].count;
    }
}

START_TEST(test_refusal_storm)
{
    uint64_t n = 40, count;
    struct wire_event_list l;
    size_t rows;
    char *out = NULL;

    start_coord(NULL);
    for (unsigned i = 0; i < n; i++) {
        char name[16];

        snprintf(name, sizeof(name), "st%02u", i);
        make_segment(name, i + 1);
    }
    /* a refuses every load MEM_CAPACITY with a long Retry-After: each segment once. */
    node = start_named_node("a", "--admit-budget=1");
    ck_assert_int_eq(ctl(&out, "import", storage, NULL), 0);
    free(out);
    ck_assert(harness_wait_until(n_backing_off, &n, 15000));
    get_events("limit=100000", &l);
    /* Every refusal is counted, in a row per interval, not a row each. */
    count_events(&l, "refused", "a", &rows, &count);
    ck_assert_uint_eq(count, n);
    ck_assert_msg(rows >= 1 && rows <= 5, "%zu refusal rows for %" PRIu64 " refusals", rows, n);
    for (size_t i = 0; i < l.n; i++)
        if (strcmp(l.events[i].kind, "refused") == 0)
            ck_assert_str_eq(reason_name(l.events[i].reason), "MEM_CAPACITY");
    count_events(&l, "backoff", NULL, &rows, &count);
    ck_assert_uint_eq(count, n);
    ck_assert_msg(rows >= 1 && rows <= 5, "%zu backoff rows for %" PRIu64 " backoffs", rows, n);
    wire_event_list_done(&l);
    /* The CLI shows the count. */
    ck_assert_int_eq(ctl(&out, "events", "--json", NULL), 0);
    ck_assert_msg(strstr(out, "\"kind\":\"refused\"") != NULL && strstr(out, "\"count\":") != NULL,
                  "%s", out);
    free(out);
    ck_assert_int_eq(ctl(&out, "events", NULL, NULL), 0);
    ck_assert_msg(strstr(out, " alike until ") != NULL, "%s", out);
    free(out);
}
END_TEST

/* ---- issue 17: GET /v1/segments in pages, the CLI following them ---------- */

/* Counts the occurrences of needle in hay. */
static size_t count_of(const char *hay, const char *needle)
{
    size_t n = 0;

    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

START_TEST(test_segments_paged)
{
    char uri_buf[] = "file:///nonexistent/p.seg", *uri = uri_buf, *out = NULL;
    struct wire_segment_list l;
    char after[WIRE_ID_MAX + 1] = "", q[WIRE_ID_MAX + 64];
    size_t seen = 0, pages = 0;

    start_coord(NULL);
    /* 10,050 segments, two batches; ids p-00000 .. p-10049. */
    ck_assert_int_eq(harness_register_ids(harness_proc_addr(coord), "p-", 5, 0, 10000, &uri, 1,
                                          100, 16),
                     200);
    ck_assert_int_eq(harness_register_ids(harness_proc_addr(coord), "p-", 5, 10000, 10050, &uri, 1,
                                          100, 16),
                     200);
    /* Pages of 4,000 in id order, each the cursor of the last. */
    do {
        snprintf(q, sizeof(q), "?limit=4000%s%s", after[0] ? "&after=" : "", after);
        ck_assert_int_eq(harness_segments(harness_proc_addr(coord), q, &l), 200);
        ck_assert_uint_eq(l.total, 10050);
        for (size_t i = 0; i < l.n; i++) {
            char want[16];

            snprintf(want, sizeof(want), "p-%05zu", seen + i);
            ck_assert_str_eq(l.segments[i].spec.segment_id, want);
        }
        seen += l.n;
        if (l.next_after[0] != '\0')
            ck_assert_str_eq(l.next_after, l.segments[l.n - 1].spec.segment_id);
        snprintf(after, sizeof(after), "%s", l.next_after);
        wire_segment_list_done(&l);
        ck_assert_uint_lt(++pages, 5);
    } while (after[0] != '\0');
    ck_assert_uint_eq(seen, 10050);
    ck_assert_uint_eq(pages, 3);
    /* A page is at most 10,000, whatever the limit; the cursor says more follow. */
    ck_assert_int_eq(harness_segments(harness_proc_addr(coord), "?limit=1000000", &l), 200);
    ck_assert_uint_eq(l.n, 10000);
    ck_assert_str_eq(l.next_after, "p-09999");
    wire_segment_list_done(&l);
    /* After an id that is not registered: from the next one. */
    ck_assert_int_eq(harness_segments(harness_proc_addr(coord), "?limit=2&after=p-00004x", &l), 200);
    ck_assert_uint_eq(l.n, 2);
    ck_assert_str_eq(l.segments[0].spec.segment_id, "p-00005");
    wire_segment_list_done(&l);
    /* A state filter pages the same way: nothing is LOADED. */
    ck_assert_int_eq(harness_segments(harness_proc_addr(coord), "?state=LOADED", &l), 200);
    ck_assert_uint_eq(l.n, 0);
    ck_assert_uint_eq(l.total, 0);
    ck_assert_str_eq(l.next_after, "");
    wire_segment_list_done(&l);
    ck_assert_int_eq(harness_segments(harness_proc_addr(coord), "?after=a/b", &l), 400);
    /* The CLI follows the cursor: every segment, one JSON document. */
    ck_assert_int_eq(ctl(&out, "segments", "--limit=1000000", "--json"), 0);
    ck_assert_uint_eq(count_of(out, "\"segment_id\":"), 10050);
    ck_assert_msg(strstr(out, "],\"total\":10050,\"next_after\":\"\"}") != NULL, "%.200s", out);
    ck_assert_ptr_nonnull(strstr(out, "\"segment_id\":\"p-10049\""));
    free(out);
    ck_assert_int_eq(ctl(&out, "segments", "--limit=1500", NULL), 0);
    ck_assert_uint_eq(count_of(out, "\np-"), 1500);
    ck_assert_msg(strstr(out, "(1500 of 10050 shown; use --limit)") != NULL, "%.200s", out);
    free(out);
}
END_TEST

/* ---- suspected: nodes never removed -------------------------------------- */

START_TEST(test_forget_node)
{
    const char *extra[] = {"--node-timeout=1s", NULL};
    struct wire_node_info ni;
    size_t count = 0;
    char *out = NULL;

    start_coord(extra);
    register_one("k", 1);
    fake_ok("gone", "k", WIRE_SEG_LOADED);
    fake_ok("stays", NULL, 0);
    /* Only a DOWN node can be forgotten. */
    ck_assert_int_eq(ctl(&out, "forget", "gone", NULL), 1);
    ck_assert_msg(strstr(out, "UP, not DOWN") != NULL, "%s", out);
    free(out);
    ck_assert(node_info("gone", &ni, &count));

    ck_assert(harness_wait_until(node_is_down, (char[]){"gone"}, 10000));
    fake_ok("stays", NULL, 0);
    ck_assert_int_eq(ctl(&out, "forget", "gone", NULL), 0);
    ck_assert_msg(strstr(out, "gone: forgotten") != NULL, "%s", out);
    free(out);
    ck_assert(!node_info("gone", &ni, &count));
    ck_assert_uint_eq(count, 1);
    {
        struct catalog *cat = open_catalog();
        struct catalog_node cn;

        ck_assert_int_eq(catalog_get_node(cat, "gone", &cn), -ENOENT);
        catalog_close(cat);
    }
    ck_assert_int_eq(ctl(&out, "forget", "gone", NULL), 1); /* unknown now */
    free(out);
    /* The segment it held is placeable, and the id may come back as a new node. */
    ck_assert_str_eq(segment_state("k"), "PENDING");
    fake_ok("gone", "k", WIRE_SEG_LOADED);
    ck_assert_str_eq(segment_state("k"), "LOADED");
    ck_assert(node_info("gone", &ni, &count));
    ck_assert_uint_eq(count, 2);
}
END_TEST

/* ---- issue 20 item 3: a registration taken back; one bad file in an import -- */

static int count_assignment(const struct catalog_assignment *a, void *arg)
{
    (*(int *)arg)++;
    return 0;
}

/*
 * `remove` takes a segment out of the catalog (durable when it answers),
 * out of memory and the placer, records an event, and the node that held
 * it is told to drop it at its next report. Before, nothing could remove a
 * registration.
 */
START_TEST(test_remove_segment)
{
    const char *addr;
    struct wire_cluster_status st;
    struct wire_segment_list l;
    struct wire_event_list evs;
    struct wire_placement_map pm;
    size_t drops = 99;
    char *out = NULL, q[96];

    start_coord(NULL);
    addr = harness_proc_addr(coord);
    register_one("k", 1);
    register_one("waits", 1);
    fake_ok("n1", "k", WIRE_SEG_LOADED);
    ck_assert_str_eq(segment_state("k"), "LOADED");
    ck_assert(harness_metric(addr, "sluice_coord_segments_unplaced") == 1);

    ck_assert_int_eq(harness_placements(addr, "?since=0", &pm), 200);
    snprintf(q, sizeof(q), "?since=%llu&epoch=%016llx", (unsigned long long)pm.version,
             (unsigned long long)pm.epoch);
    wire_placement_map_done(&pm);

    ck_assert_int_eq(ctl(&out, "remove", "nosuch", NULL), 1);
    ck_assert_msg(strstr(out, "\"nosuch\" is not registered") != NULL, "%s", out);
    free(out);
    ck_assert_int_eq(ctl(&out, "remove", "k", NULL), 0);
    ck_assert_msg(strstr(out, "k: removed") != NULL, "%s", out);
    free(out);
    {
        /* Durable before the answer: the row and its assignment are gone. */
        struct catalog *cat = open_catalog();
        struct catalog_segment cs;
        int n = 0;

        ck_assert_int_eq(catalog_get_segment(cat, "k", &cs), -ENOENT);
        ck_assert_int_eq(catalog_foreach_assignment(cat, "k", NULL, count_assignment, &n), 0);
        ck_assert_int_eq(n, 0);
        catalog_close(cat);
    }
    ck_assert_int_eq(harness_segment(addr, "k", &l), 404);
    /* Brokers learn it once, REMOVED with no holders; a full map no longer has it. */
    ck_assert_int_eq(harness_placements(addr, q, &pm), 200);
    ck_assert(!pm.full);
    ck_assert_uint_eq(pm.n_segments, 1);
    ck_assert_str_eq(pm.segments[0].segment_id, "k");
    ck_assert_str_eq(pm.segments[0].state, "REMOVED");
    ck_assert_uint_eq(pm.segments[0].n_nodes, 0);
    wire_placement_map_done(&pm);
    ck_assert_int_eq(harness_placements(addr, "?since=0", &pm), 200);
    ck_assert_uint_eq(pm.n_segments, 1);
    ck_assert_str_eq(pm.segments[0].segment_id, "waits");
    wire_placement_map_done(&pm);
    /* The holder drops it when it reports it next. */
    ck_assert_int_eq(fake_report("n1", "127.0.0.1:1", true, "k", WIRE_SEG_LOADED, &drops, NULL),
                     200);
    ck_assert_uint_eq(drops, 1);
    /* A PENDING one leaves the placer too. */
    ck_assert_int_eq(ctl(NULL, "remove", "waits", NULL), 0);
    ck_assert(harness_metric(addr, "sluice_coord_segments_unplaced") == 0);
    ck_assert(get_status(&st));
    ck_assert_uint_eq(st.segments_total, 0);
    get_events("segment=k", &evs);
    ck_assert_ptr_nonnull(find_event(&evs, "removed", "k"));
    wire_event_list_done(&evs);
    /* Its history stays readable; an id never seen is a failure, as for explain. */
    ck_assert_int_eq(ctl(NULL, "events", "--segment=k", NULL), 0);
    ck_assert_int_eq(ctl(&out, "events", "--segment=nosuch", NULL), 1);
    ck_assert_msg(strstr(out, "\"nosuch\" is not registered and has no events") != NULL, "%s",
                  out);
    free(out);
    /* The id is free: registered anew with other fields. */
    ck_assert_int_eq(harness_register_one(addr, "k", NULL, 555, 16, 1), 200);
    ck_assert_str_eq(segment_state("k"), "PENDING");
}
END_TEST

/*
 * One file that conflicts with its registration does not keep the others
 * out of an import: the good ones are registered, the bad one is named
 * with the field that differs, and the exit code says not all went in.
 * Before, the whole batch was refused and the summary said "0 registered".
 */
START_TEST(test_import_refused_file)
{
    char real[4096], *uri;
    struct wire_cluster_status st;
    char *out = NULL;

    start_coord(NULL);
    make_segment("a", 1);
    make_segment("b", 2);
    make_segment("c", 3);
    ck_assert_ptr_nonnull(realpath(storage, real));
    uri = xasprintf("file://%s/b.seg", real);
    ck_assert_int_eq(harness_register_one(harness_proc_addr(coord), "b", uri, 999, 16, 1), 200);
    free(uri);
    ck_assert_int_eq(ctl(&out, "import", storage, NULL), 1);
    ck_assert_msg(strstr(out, "b.seg: refused") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "another row_count (registered 999, this request 1024)") != NULL,
                  "%s", out);
    ck_assert_msg(strstr(out, "2 registered, 0 already registered, 0 skipped, 1 refused") != NULL,
                  "%s", out);
    /* One summary, not a progress line that repeats it in other words. */
    ck_assert_msg(strstr(out, "files read") == NULL, "%s", out);
    free(out);
    ck_assert(get_status(&st));
    ck_assert_uint_eq(st.segments_total, 3);
    ck_assert_str_eq(segment_state("a"), "PENDING");
    ck_assert_str_eq(segment_state("c"), "PENDING");
}
END_TEST

/* ---- issue 20 item 6: explain in sentences; every node DRAINING said so -- */

/*
 * With its only node DRAINING, a pending segment's explain says so in
 * sentences (no state=... until_ms=...), and status and wait say that no
 * node takes anything new, where they used to say "1/1 nodes up".
 */
START_TEST(test_all_draining_said)
{
    char *out = NULL;

    start_coord(NULL);
    register_one("k", 1);
    fake_state = WIRE_NODE_DRAINING;
    ck_assert_int_eq(fake_report("n1", "127.0.0.1:1", false, NULL, 0, NULL, NULL), 200);
    fake_state = WIRE_NODE_SERVING;
    ck_assert_str_eq(node_state_of("n1"), "DRAINING");

    ck_assert_int_eq(ctl(&out, "explain", "k", NULL), 0);
    ck_assert_msg(strstr(out, "PENDING: 0 of 1 copy held or loading") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "every node is DRAINING; `sluice-coord undrain NODE`") != NULL,
                  "%s", out);
    ck_assert_msg(strstr(out, "  n1 (DRAINING): gets nothing while DRAINING.") != NULL, "%s",
                  out);
    ck_assert_msg(strstr(out, "state=") == NULL && strstr(out, "_ms=") == NULL, "%s", out);
    free(out);
    ck_assert_int_eq(ctl(&out, "status", NULL, NULL), 0);
    ck_assert_msg(strstr(out, "1 up of 1, it is DRAINING: no node takes anything new") != NULL,
                  "%s", out);
    free(out);
    ck_assert_int_eq(ctl(&out, "wait", "--for=200ms", NULL), 4);
    ck_assert_msg(strstr(out, "1/1 nodes up, it is DRAINING") != NULL, "%s", out);
    free(out);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("coord");
    TCase *tc;
    int rc;

    if (harness_pg_mode()) {
        char why[1024] = "";

        if (harness_pg_shared(why, sizeof(why)) == NULL) {
            fprintf(stderr, "check_coord: FAIL: SLUICE_TEST_CATALOG=postgresql but PostgreSQL "
                            "did not start: %s\n", why);
            return 1;
        }
        printf("check_coord: catalog on PostgreSQL\n");
    }
    tc = tcase_create("placement");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_first_node_places);
    tcase_add_test(tc, test_new_node_wakes_backoff);
    tcase_add_test(tc, test_refusal_storm);
    tcase_add_test(tc, test_node_epoch_fence);
    suite_add_tcase(s, tc);
    tc = tcase_create("membership");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_id_clash);
    tcase_add_test(tc, test_drain_real_state);
    tcase_add_test(tc, test_suspect_copy);
    tcase_add_test(tc, test_forget_node);
    suite_add_tcase(s, tc);
    tc = tcase_create("operator");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_invalid_retry_wait);
    tcase_add_test(tc, test_import_long_id);
    tcase_add_test(tc, test_events_paged);
    tcase_add_test(tc, test_refusal_422_detail);
    tcase_add_test(tc, test_refusal_capacity_detail);
    tcase_add_test(tc, test_wrong_daemon_named);
    tcase_add_test(tc, test_segments_paged);
    tcase_add_test(tc, test_remove_segment);
    tcase_add_test(tc, test_import_refused_file);
    tcase_add_test(tc, test_all_draining_said);
    suite_add_tcase(s, tc);
    rc = harness_run_suite(s);
    if (harness_pg_mode())
        harness_pg_stop(harness_pg_shared(NULL, 0));
    return rc;
}
