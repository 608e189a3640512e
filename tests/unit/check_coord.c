/*
 * check_coord: the coordinator object in this process, on 127.0.0.1 port 0,
 * its event loop on a thread of its own, with the clocks replaced through
 * clock_set_source(). What it checks needs a clock no real process can be
 * given on cue: the wall clock stepping back (or forward) an hour while the
 * coordinator runs must move none of its deadlines.
 *
 * The catalog is prepared before the start: node n1 (pull mode, so nothing
 * is pushed to its address, which nothing listens on) holds s1 LOADING.
 * After the step, n1 reports without s1: within the report grace (3 s on
 * the monotonic clock) its copy must still be counted, as it is without
 * any step. Segments s2..s5 are pending, for a push-mode node.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "catalog.h"
#include "clock.h"
#include "coord.h"
#include "http.h"
#include "wire.h"
#include "xmalloc.h"
#include "suite.h"

#define HOUR_MS 3600000ll

static _Atomic long long wall_offset_ms;

static uint64_t test_wall_ms(void)
{
    return (uint64_t)((long long)clock_real_wall_ms() + atomic_load(&wall_offset_ms));
}

static const struct clock_source test_clock = {NULL, test_wall_ms};

static char dir[] = "/tmp/check-coord-XXXXXX";
static char db[64];
static struct event_base *base;
static struct coord *coord;
static struct event *stop_ev;
static atomic_bool stop_loop;
static pthread_t loop_thread;

static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
    if (atomic_load(&stop_loop))
        event_base_loopbreak(base);
}

static void *loop_main(void *arg)
{
    event_base_dispatch(base);
    return NULL;
}

/* The catalog as a coordinator would have left it: n1 holds s1 LOADING. */
static void prepare_catalog(void)
{
    struct catalog *cat = NULL;
    struct catalog_node n;
    struct catalog_segment s;
    char err[256];

    ck_assert_msg(catalog_open(db, &cat, err, sizeof(err)) == 0, "%s", err);
    memset(&n, 0, sizeof(n));
    snprintf(n.id, sizeof(n.id), "n1");
    snprintf(n.addr, sizeof(n.addr), "127.0.0.1:1");
    snprintf(n.state, sizeof(n.state), "UP");
    n.claim = true;
    n.last_seen_ms = 1;
    n.created_ms = 1;
    ck_assert_int_eq(catalog_put_node(cat, &n), 0);
    memset(&s, 0, sizeof(s));
    snprintf(s.id, sizeof(s.id), "s1");
    snprintf(s.uri, sizeof(s.uri), "file:///nonexistent/s1.seg");
    s.row_count = 100;
    s.avg_row_size = 16;
    s.replication = 1;
    snprintf(s.state, sizeof(s.state), "PENDING");
    s.created_ms = 1;
    ck_assert_int_eq(catalog_put_segment(cat, &s), 0);
    ck_assert_int_eq(catalog_put_assignment(cat, "s1", "n1", "LOADING", 1), 0);
    /* Pending, for a push-mode node to be sent (n1 pulls, and is sent nothing). */
    for (int i = 2; i <= 5; i++) {
        snprintf(s.id, sizeof(s.id), "s%d", i);
        snprintf(s.uri, sizeof(s.uri), "file:///nonexistent/s%d.seg", i);
        ck_assert_int_eq(catalog_put_segment(cat, &s), 0);
    }
    catalog_close(cat);
}

static void setup(void)
{
    struct coord_config cfg;
    struct timeval tick = {0, 10000};
    char err[512] = "";

    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(db, sizeof(db), "%s/coord.db", dir);
    prepare_catalog();
    atomic_store(&wall_offset_ms, 0);
    clock_set_source(&test_clock);
    memset(&cfg, 0, sizeof(cfg));
    cfg.listen = "127.0.0.1:0";
    cfg.db_path = db;
    cfg.node_timeout_ms = 60000;
    cfg.assign_timeout_ms = 1000;
    cfg.max_in_flight_per_node = 4;
    cfg.drop_retry_ms = 1000;
    cfg.limits = http_limits_default();
    base = event_base_new();
    ck_assert_ptr_nonnull(base);
    coord = coord_new(base, &cfg, err, sizeof(err));
    ck_assert_msg(coord != NULL, "coord_new: %s", err);
    atomic_store(&stop_loop, false);
    stop_ev = event_new(base, -1, EV_PERSIST, stop_cb, NULL);
    event_add(stop_ev, &tick);
    ck_assert_int_eq(pthread_create(&loop_thread, NULL, loop_main, NULL), 0);
}

static void teardown(void)
{
    char cmd[128];

    atomic_store(&stop_loop, true);
    pthread_join(loop_thread, NULL);
    event_free(stop_ev);
    coord_free(coord);
    event_base_free(base);
    clock_set_source(NULL);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(dir, sizeof(dir), "/tmp/check-coord-XXXXXX");
}

/* A report from id at addr, holding nothing. */
static void report_from(const char *id, const char *addr, bool claim)
{
    struct wire_node_report rep;
    struct http_response r;
    uint8_t *body;
    size_t len;

    memset(&rep, 0, sizeof(rep));
    snprintf(rep.node_id, sizeof(rep.node_id), "%s", id);
    snprintf(rep.addr, sizeof(rep.addr), "%s", addr);
    rep.state = WIRE_NODE_SERVING;
    rep.claim = claim;
    body = wire_node_report_encode(&rep, &len);
    ck_assert_int_eq(http_fetch(coord_bound(coord), "POST", "/v1/report", WIRE_CONTENT_TYPE, body,
                                len, NULL, 5000, &r),
                     0);
    free(body);
    ck_assert_int_eq(r.status, 200);
    http_response_done(&r);
}

/* n1's report, in pull mode, holding nothing. */
static void report_empty(void)
{
    report_from("n1", "127.0.0.1:1", true);
}

/* node's state as GET /v1/nodes shows it. */
static void node_state(const char *node, char *ret, size_t len)
{
    struct wire_node_list l;
    struct http_response r;
    struct wire_error err;

    ck_assert_int_eq(http_fetch(coord_bound(coord), "GET", "/v1/nodes", NULL, NULL, 0, NULL, 5000,
                                &r),
                     0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(wire_node_list_decode(r.body, r.body_len, &l, &err), 0);
    http_response_done(&r);
    snprintf(ret, len, "?");
    for (size_t i = 0; i < l.n; i++)
        if (strcmp(l.nodes[i].node_id, node) == 0)
            snprintf(ret, len, "%s", l.nodes[i].state);
    wire_node_list_done(&l);
}

/* node_state events for node whose detail starts with prefix, folded ones counted. */
static size_t node_transitions(const char *node, const char *prefix)
{
    struct wire_event_list l;
    struct http_response r;
    struct wire_error err;
    size_t n = 0;

    ck_assert_int_eq(http_fetch(coord_bound(coord), "GET", "/v1/events?limit=1000", NULL, NULL, 0,
                                NULL, 5000, &r),
                     0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(wire_event_list_decode(r.body, r.body_len, &l, &err), 0);
    http_response_done(&r);
    for (size_t i = 0; i < l.n; i++)
        if (strcmp(l.events[i].kind, "node_state") == 0 &&
            strcmp(l.events[i].node_id, node) == 0 &&
            strncmp(l.events[i].detail, prefix, strlen(prefix)) == 0)
            n += l.events[i].count; /* identical events folded into one row count each */
    wire_event_list_done(&l);
    return n;
}

/* How many nodes the coordinator counts as holding s1. */
static size_t s1_placements(void)
{
    struct wire_segment_list l;
    struct http_response r;
    struct wire_error err;
    size_t n;

    ck_assert_int_eq(http_fetch(coord_bound(coord), "GET", "/v1/segments/s1", NULL, NULL, 0, NULL,
                                5000, &r),
                     0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(wire_segment_list_decode(r.body, r.body_len, &l, &err), 0);
    http_response_done(&r);
    ck_assert_uint_eq(l.n, 1);
    n = l.segments[0].n_placements;
    if (n > 0) {
        ck_assert_str_eq(l.segments[0].placements[0].node_id, "n1");
        ck_assert_int_eq(l.segments[0].placements[0].state, WIRE_SEG_LOADING);
    }
    wire_segment_list_done(&l);
    return n;
}

START_TEST(test_no_step)
{
    report_empty();
    ck_assert_uint_eq(s1_placements(), 1);
}
END_TEST

/* The wall clock steps back an hour: the copy is still within its grace. */
START_TEST(test_wall_steps_back)
{
    atomic_store(&wall_offset_ms, -HOUR_MS);
    report_empty();
    ck_assert_uint_eq(s1_placements(), 1);
}
END_TEST

/* And forward an hour: the grace has not passed either. */
START_TEST(test_wall_steps_forward)
{
    atomic_store(&wall_offset_ms, HOUR_MS);
    report_empty();
    ck_assert_uint_eq(s1_placements(), 1);
}
END_TEST

/*
 * n2 pushes, at an address nothing listens on: the batch of s2..s5 sent to
 * it gets no answer (connection refused). The placer reports it and leaves
 * n2 alone; membership makes n2 SUSPECT, once, with one event, and no
 * assignment is sent to it afterwards.
 */
START_TEST(test_no_answer_one_transition)
{
    char state[16] = "";

    report_from("n2", "127.0.0.1:1", false);
    for (int i = 0; i < 500; i++) {
        node_state("n2", state, sizeof(state));
        if (strcmp(state, "UP") != 0)
            break;
        usleep(10000);
    }
    ck_assert_str_eq(state, "SUSPECT");
    /* Let any late effect of the other answers in that batch land. */
    usleep(200000);
    node_state("n2", state, sizeof(state));
    ck_assert_str_eq(state, "SUSPECT");
    ck_assert_uint_eq(node_transitions("n2", "UP -> SUSPECT"), 1);
    ck_assert_uint_eq(node_transitions("n2", "SUSPECT -> "), 0);
    /* Its next report makes it UP again, once. */
    report_from("n2", "127.0.0.1:1", true);
    node_state("n2", state, sizeof(state));
    ck_assert_str_eq(state, "UP");
    ck_assert_uint_eq(node_transitions("n2", "SUSPECT -> UP"), 1);
}
END_TEST

/*
 * The placement is chosen at start, and its own options are checked by it:
 * --placement=rowcount with a --node-rows that is not id=rows refuses the
 * start, naming the bad entry.
 */
START_TEST(test_rowcount_bad_rows)
{
    char tmp[] = "/tmp/check-coord-rc-XXXXXX", path[64], cmd[128], err[512] = "";
    struct coord_config cfg;
    struct event_base *b = event_base_new();
    struct coord *rc;

    ck_assert_ptr_nonnull(mkdtemp(tmp));
    snprintf(path, sizeof(path), "%s/coord.db", tmp);
    memset(&cfg, 0, sizeof(cfg));
    cfg.listen = "127.0.0.1:0";
    cfg.db_path = path;
    cfg.node_timeout_ms = 60000;
    cfg.assign_timeout_ms = 1000;
    cfg.limits = http_limits_default();
    cfg.placement = "rowcount";
    cfg.node_rows = "a=10,b";
    rc = coord_new(b, &cfg, err, sizeof(err));
    ck_assert_ptr_null(rc);
    ck_assert_str_eq(err, "--node-rows: \"b\" is not id=rows");
    cfg.node_rows = "a=10,b=20";
    rc = coord_new(b, &cfg, err, sizeof(err));
    ck_assert_msg(rc != NULL, "%s", err);
    coord_free(rc);
    event_base_free(b);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

static Suite *coord_suite(void)
{
    Suite *s = suite_create("coord");
    TCase *tc = tcase_create("clock");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_no_step);
    tcase_add_test(tc, test_wall_steps_back);
    tcase_add_test(tc, test_wall_steps_forward);
    suite_add_tcase(s, tc);
    tc = tcase_create("membership");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_no_answer_one_transition);
    suite_add_tcase(s, tc);
    tc = tcase_create("placement");
    tcase_add_test(tc, test_rowcount_bad_rows);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return harness_run_suite(coord_suite());
}
