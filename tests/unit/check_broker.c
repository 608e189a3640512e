/*
 * check_broker: coordinator/broker's hedging, in one process on one
 * event_base (libevent's way: real sockets on 127.0.0.1, port 0). A fake
 * coordinator serves a placement map of one segment on two fake nodes: A,
 * which reports a p99 of 1 ms, and B, which reports 2 s, so C3's score
 * sends every primary to A. A answers 111, B 222, so an answer says which
 * node's copy it is. After warm-up queries (A's p95 known, the hedge
 * bucket filled), A holds the next request unanswered: the hedge at A's
 * p95 goes to B and its answer is the one used. Then the same with
 * hedging off, where the query waits for --attempt-timeout and retries.
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <event2/http.h>

#include "broker.h"
#include "http.h"
#include "pbhttp.h"
#include "suite.h"
#include "wire.h"

#define WARMUP 24 /* queries before the stall: more than REPLICA_WINDOW / 4 samples */

struct fake_node {
    struct http_server *srv;
    char bound[64];
    int64_t value;
    bool hold;                  /* keep requests unanswered */
    struct evhttp_request *held; /* the one kept (at most one in these tests) */
    unsigned asked;
};

static struct event_base *base;
static struct http_server *coord;
static char coord_bound[64];
static struct fake_node fa, fb;
static struct broker *broker;
static struct http_client *client;

/* GET /v1/placements: the whole map for since=0 (one page), else no change. */
static void coord_placements_cb(struct evhttp_request *req, const char *rest, void *arg)
{
    struct wire_placement_map pm;
    struct wire_placed_segment s;
    struct wire_placed_node n[2];
    uint8_t *buf;
    size_t len;

    (void)rest;
    (void)arg;
    memset(&pm, 0, sizeof(pm));
    memset(&s, 0, sizeof(s));
    memset(n, 0, sizeof(n));
    pm.epoch = 7;
    pm.version = 1;
    pm.full = strstr(evhttp_request_get_uri(req), "since=0") != NULL;
    strcpy(s.segment_id, "s1");
    strcpy(s.table, "t");
    strcpy(s.state, "LOADED");
    s.node_ids = calloc(2, sizeof(*s.node_ids));
    strcpy(s.node_ids[0], "a");
    strcpy(s.node_ids[1], "b");
    s.n_nodes = 2;
    pm.segments = &s;
    pm.n_segments = pm.full ? 1 : 0;
    strcpy(n[0].node_id, "a");
    strcpy(n[0].addr, fa.bound);
    strcpy(n[0].state, "UP");
    n[0].p99_seconds = 0.001;
    strcpy(n[1].node_id, "b");
    strcpy(n[1].addr, fb.bound);
    strcpy(n[1].state, "UP");
    n[1].p99_seconds = 2.0;
    pm.nodes = n;
    pm.n_nodes = 2;
    buf = wire_placement_map_encode(&pm, &len);
    free(s.node_ids);
    pbhttp_reply_msg(req, 200, WIRE_MSG_PLACEMENT_MAP, buf, len);
}

static void fake_answer(struct evhttp_request *req, int64_t value)
{
    struct wire_query_response r;
    uint8_t *buf;
    size_t len;

    memset(&r, 0, sizeof(r));
    r.int_value = value;
    r.rows_matched = 1;
    r.rows_scanned = 1;
    r.service_us = 20;
    buf = wire_query_response_encode(&r, &len);
    http_reply(req, 200, WIRE_CONTENT_TYPE, buf, len);
    free(buf);
}

static void fake_query_cb(struct evhttp_request *req, const char *rest, void *arg)
{
    struct fake_node *f = arg;

    (void)rest;
    f->asked++;
    if (f->hold && f->held == NULL) {
        f->held = req;
        return;
    }
    fake_answer(req, f->value);
}

static void fake_start(struct fake_node *f, int64_t value)
{
    memset(f, 0, sizeof(*f));
    f->value = value;
    f->srv = http_server_new(base, NULL);
    ck_assert_ptr_nonnull(f->srv);
    ck_assert_int_eq(http_server_bind(f->srv, "127.0.0.1:0", f->bound, sizeof(f->bound)), 0);
    ck_assert_int_eq(http_server_route(f->srv, HTTP_POST, "/v1/query", false, fake_query_cb, f),
                     0);
}

/* What the client got back. */
struct got {
    bool done;
    int status;
    struct wire_table_query_response r;
    char text[16384];
};

static void got_cb(int status, const struct http_client_reply *reply, void *arg)
{
    struct got *g = arg;
    struct wire_error err;

    g->done = true;
    g->status = status;
    if (status == 200 && reply->content_type != NULL &&
        strcmp(reply->content_type, WIRE_CONTENT_TYPE) == 0) {
        ck_assert_int_eq(wire_table_query_response_decode(reply->body, reply->body_len, &g->r,
                                                          &err),
                         0);
    } else if (reply != NULL) {
        size_t n = reply->body_len < sizeof(g->text) - 1 ? reply->body_len : sizeof(g->text) - 1;

        memcpy(g->text, reply->body, n);
        g->text[n] = '\0';
    }
}

/* Runs the loop until g is answered. */
static void wait_for(struct got *g)
{
    while (!g->done)
        ck_assert_int_ge(event_base_loop(base, EVLOOP_ONCE), 0);
}

/* Sends a COUNT query of table t to the broker and waits for its answer. */
static void ask(struct got *g)
{
    struct wire_query_request q;
    uint8_t *buf;
    size_t len;

    memset(g, 0, sizeof(*g));
    memset(&q, 0, sizeof(q));
    strcpy(q.table, "t");
    strcpy(q.column, "value");
    q.aggregate = WIRE_AGG_SUM;
    q.timeout_ms = 10000;
    buf = wire_query_request_encode(&q, &len);
    ck_assert_int_eq(http_client_request(client, EVHTTP_REQ_POST, "/v1/query", WIRE_CONTENT_TYPE,
                                         buf, len, got_cb, g),
                     0);
    free(buf);
    wait_for(g);
}

/* The value of one sample in the broker's /metrics (-1 if absent). */
static double metric(const char *sample)
{
    struct got g;
    const char *at;

    memset(&g, 0, sizeof(g));
    ck_assert_int_eq(http_client_request(client, EVHTTP_REQ_GET, "/metrics", NULL, NULL, 0,
                                         got_cb, &g),
                     0);
    wait_for(&g);
    ck_assert_int_eq(g.status, 200);
    at = strstr(g.text, sample);
    if (at == NULL || at[strlen(sample)] != ' ')
        return -1;
    return strtod(at + strlen(sample) + 1, NULL);
}

static void start(unsigned hedge_percent)
{
    struct broker_config cfg;
    char err[256];
    struct got g;

    base = event_base_new();
    ck_assert_ptr_nonnull(base);
    coord = http_server_new(base, NULL);
    ck_assert_int_eq(http_server_bind(coord, "127.0.0.1:0", coord_bound, sizeof(coord_bound)), 0);
    ck_assert_int_eq(
        http_server_route(coord, HTTP_GET, "/v1/placements", false, coord_placements_cb, NULL), 0);
    fake_start(&fa, 111);
    fake_start(&fb, 222);
    memset(&cfg, 0, sizeof(cfg));
    cfg.listen = "127.0.0.1:0";
    cfg.coordinator = coord_bound;
    cfg.poll_ms = 50;
    cfg.query_timeout_ms = 10000;
    cfg.attempt_timeout_ms = 1500;
    cfg.penalty_ms = 60000;
    cfg.hedge_percent = hedge_percent;
    cfg.conns_per_node = 2;
    cfg.brokers = 1;
    broker = broker_new(base, &cfg, err, sizeof(err));
    ck_assert_msg(broker != NULL, "%s", err);
    client = http_client_new(base, broker_bound(broker), 20000, NULL);
    ck_assert_ptr_nonnull(client);
    /* Until the broker has the map: 503 not_ready before. */
    do {
        ask(&g);
        if (g.status == 200)
            wire_table_query_response_done(&g.r);
    } while (g.status == 503);
    ck_assert_int_eq(g.status, 200);
    /*
     * Warm-up: every primary goes to A (B's reported 2 s is the floor of
     * its R). An answer slower than A's p95 may be hedged to B here (5 % of
     * them by definition), so either copy's answer is right.
     */
    for (int i = 0; i < WARMUP; i++) {
        ask(&g);
        ck_assert_int_eq(g.status, 200);
        ck_assert(g.r.result.int_value == 111 || g.r.result.int_value == 222);
        wire_table_query_response_done(&g.r);
    }
}

static void stop(void)
{
    if (fa.held != NULL)
        fake_answer(fa.held, fa.value); /* late: the broker only learns from it */
    http_client_free(client);
    broker_free(broker);
    http_server_free(fa.srv);
    http_server_free(fb.srv);
    http_server_free(coord);
    (void)event_base_loop(base, EVLOOP_NONBLOCK);
    event_base_free(base);
}

/* A stalled primary: the hedge to B answers, and B's answer is the one used. */
START_TEST(test_hedge_wins)
{
    struct got g;

    double won, lost, hedges;
    unsigned b_asked;

    start(50);
    won = metric("sluice_broker_hedges_total{outcome=\"won\"}");
    lost = metric("sluice_broker_hedges_total{outcome=\"lost\"}");
    hedges = metric("sluice_broker_subrequests_total{kind=\"hedge\"}");
    b_asked = fb.asked;
    fa.hold = true;
    ask(&g);
    ck_assert_int_eq(g.status, 200);
    ck_assert_int_eq(g.r.result.int_value, 222);
    ck_assert_uint_eq(g.r.hedges, 1);
    ck_assert_uint_eq(g.r.retries, 0);
    ck_assert_uint_eq(g.r.subrequests, 2);
    ck_assert_ptr_nonnull(fa.held);
    ck_assert_uint_eq(fb.asked, b_asked + 1);
    wire_table_query_response_done(&g.r);
    ck_assert(metric("sluice_broker_hedges_total{outcome=\"won\"}") == won + 1);
    ck_assert(metric("sluice_broker_hedges_total{outcome=\"lost\"}") == lost);
    ck_assert(metric("sluice_broker_subrequests_total{kind=\"hedge\"}") == hedges + 1);
    ck_assert(metric("sluice_broker_retries_total{reason=\"timeout\"}") == 0);
    stop();
}
END_TEST

/* No hedging: the stalled primary times out (--attempt-timeout), then B answers as a retry. */
START_TEST(test_no_hedge_waits_for_timeout)
{
    struct got g;

    start(0);
    fa.hold = true;
    ask(&g);
    ck_assert_int_eq(g.status, 200);
    ck_assert_int_eq(g.r.result.int_value, 222);
    ck_assert_uint_eq(g.r.hedges, 0);
    ck_assert_uint_eq(g.r.retries, 1);
    wire_table_query_response_done(&g.r);
    ck_assert(metric("sluice_broker_hedges_total{outcome=\"won\"}") == 0);
    ck_assert(metric("sluice_broker_retries_total{reason=\"timeout\"}") == 1);
    stop();
}
END_TEST

static Suite *broker_suite(void)
{
    Suite *s = suite_create("broker");
    TCase *tc = tcase_create("hedge");

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_hedge_wins);
    tcase_add_test(tc, test_no_hedge_waits_for_timeout);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return harness_run_suite(broker_suite());
}
