/*
 * check_report: the node's side of delta reports (report_state in
 * node/report.c), no loop: the first report is the whole set, an
 * acknowledged one becomes the base of deltas that carry only changes and
 * removals, an unanswered one leaves the base as it was, and send_full or
 * an answer without an acknowledgement (an older coordinator) makes the next
 * report whole again. Journal mode (a source that says what changed): a
 * delta carries every change since the base, again after a lost report,
 * an id gone and back is a change and not a removal, and the source's
 * digest is what goes. The reporter itself, with a loop: freeing it while a
 * report is in flight and a report is asked for soon, and a report asked
 * for soon restarting the periodic heartbeat.
 */
#include <check.h>
#include <malloc.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "clock.h"
#include "coordlist.h"
#include "http.h"
#include "pbhttp.h"
#include "report.h"
#include "repset.h"
#include "wire.h"
#include "suite.h"

static char uri[] = "file:///srv/x";

static struct wire_segment_status *make(size_t n)
{
    struct wire_segment_status *v = calloc(n, sizeof(*v));

    for (size_t i = 0; i < n; i++) {
        snprintf(v[i].segment_id, sizeof(v[i].segment_id), "s%zu", i);
        v[i].state = WIRE_SEG_LOADED;
        v[i].row_count = 100 + i;
        v[i].avg_row_size = 8;
        v[i].uri = uri; /* never sent */
    }
    return v;
}

/* Whether rep's list names id. */
static bool rep_names(const struct wire_node_report *rep, const char *id)
{
    for (size_t i = 0; i < rep->n_segments; i++)
        if (strcmp(rep->segments[i].segment_id, id) == 0)
            return true;
    return false;
}

static struct wire_report_response ack(uint64_t seq)
{
    struct wire_report_response r;

    memset(&r, 0, sizeof(r));
    r.ack_seq = seq;
    return r;
}

static void assert_digest(const struct wire_node_report *rep, const struct wire_segment_status *v,
                          size_t n)
{
    uint64_t c, h;

    repset_digest_of(v, n, &c, &h);
    ck_assert_uint_eq(rep->set_count, c);
    ck_assert_uint_eq(rep->set_hash, h);
}

START_TEST(test_first_full_then_delta)
{
    struct report_state *s = report_state_new(0);
    struct wire_segment_status *v = make(10);
    struct wire_report_response a;
    struct wire_node_report rep;
    uint64_t seq;

    ck_assert_uint_ne(report_state_incarnation(s), 0);
    memset(&rep, 0, sizeof(rep));
    seq = report_build(s, v, 10, &rep);
    ck_assert_uint_eq(seq, 1);
    ck_assert_uint_eq(rep.seq, 1);
    ck_assert_uint_eq(rep.incarnation, report_state_incarnation(s));
    ck_assert(!rep.delta);
    ck_assert_uint_eq(rep.base_seq, 0);
    ck_assert_uint_eq(rep.n_segments, 10);
    ck_assert_uint_eq(rep.n_removed, 0);
    for (size_t i = 0; i < rep.n_segments; i++)
        ck_assert_ptr_null(rep.segments[i].uri);
    assert_digest(&rep, v, 10);
    a = ack(1);
    ck_assert(!report_answered(s, 1, &a));

    /* Nothing changed: an empty delta on base 1, with the whole set's digest. */
    seq = report_build(s, v, 10, &rep);
    ck_assert_uint_eq(seq, 2);
    ck_assert(rep.delta);
    ck_assert_uint_eq(rep.base_seq, 1);
    ck_assert_uint_eq(rep.n_segments, 0);
    ck_assert_uint_eq(rep.n_removed, 0);
    assert_digest(&rep, v, 10);
    a = ack(2);
    report_answered(s, 2, &a);

    /* s3 LOADED -> DROPPED, s9 gone: one copy and one removal. */
    v[3].state = WIRE_SEG_DROPPED;
    v[3].reason = WIRE_REASON_MEM_CRITICAL;
    seq = report_build(s, v, 9, &rep);
    ck_assert(rep.delta);
    ck_assert_uint_eq(rep.base_seq, 2);
    ck_assert_uint_eq(rep.n_segments, 1);
    ck_assert_str_eq(rep.segments[0].segment_id, "s3");
    ck_assert_int_eq(rep.segments[0].state, WIRE_SEG_DROPPED);
    ck_assert_ptr_null(rep.segments[0].uri);
    ck_assert_uint_eq(rep.n_removed, 1);
    ck_assert_str_eq(rep.removed[0], "s9");
    assert_digest(&rep, v, 9);
    report_state_free(s);
    report_state_free(NULL);
    free(v);
}
END_TEST

START_TEST(test_unanswered_keeps_base)
{
    struct report_state *s = report_state_new(77);
    struct wire_segment_status *v = make(5);
    struct wire_report_response a = ack(1);
    struct wire_node_report rep;
    struct report_state_stats st;

    memset(&rep, 0, sizeof(rep));
    ck_assert_uint_eq(report_state_incarnation(s), 77);
    report_build(s, v, 5, &rep);
    report_answered(s, 1, &a);
    /* Report 2 changes s0 and is lost. */
    v[0].footprint_bytes = 4096;
    report_build(s, v, 5, &rep);
    ck_assert_uint_eq(rep.n_segments, 1);
    report_unanswered(s, 2);
    /* Report 3, still on base 1, carries s0 again and s1's change too. */
    v[1].footprint_bytes = 8192;
    report_build(s, v, 5, &rep);
    ck_assert_uint_eq(rep.seq, 3);
    ck_assert(rep.delta);
    ck_assert_uint_eq(rep.base_seq, 1);
    ck_assert_uint_eq(rep.n_segments, 2);
    report_state_get_stats(s, &st);
    ck_assert_uint_eq(st.full, 1);
    ck_assert_uint_eq(st.delta, 2);
    ck_assert_uint_eq(st.acked_seq, 1);
    report_state_free(s);
    free(v);
}
END_TEST

START_TEST(test_journal)
{
    struct report_state *s = report_state_new(5);
    struct wire_segment_status *v = make(4);
    const char gone[1][WIRE_ID_MAX + 1] = {"s3"};
    const char back[1][WIRE_ID_MAX + 1] = {"s0"};
    struct wire_report_response a = ack(1);
    struct wire_node_report rep;
    struct report_state_stats st;

    memset(&rep, 0, sizeof(rep));
    ck_assert(report_wants_full(s));
    report_build(s, v, 4, &rep);
    ck_assert(!rep.delta);
    report_answered(s, 1, &a);
    ck_assert(!report_wants_full(s));

    /* s1 changed: a delta of one, with the digest the source gave. */
    v[1].footprint_bytes = 4096;
    report_build_changes(s, &v[1], 1, NULL, 0, 4, 0xabcdef, &rep);
    ck_assert(rep.delta);
    ck_assert_uint_eq(rep.seq, 2);
    ck_assert_uint_eq(rep.base_seq, 1);
    ck_assert_uint_eq(rep.n_segments, 1);
    ck_assert_str_eq(rep.segments[0].segment_id, "s1");
    ck_assert_uint_eq(rep.segments[0].footprint_bytes, 4096);
    ck_assert_ptr_null(rep.segments[0].uri);
    ck_assert_uint_eq(rep.n_removed, 0);
    ck_assert_uint_eq(rep.set_count, 4);
    ck_assert_uint_eq(rep.set_hash, 0xabcdef);
    /* Lost: the next carries s1 again, with s2's change and s3 gone. */
    report_unanswered(s, 2);
    v[2].state = WIRE_SEG_DROPPED;
    report_build_changes(s, &v[2], 1, gone, 1, 3, 1, &rep);
    ck_assert_uint_eq(rep.seq, 3);
    ck_assert_uint_eq(rep.base_seq, 1);
    ck_assert_uint_eq(rep.n_segments, 2);
    ck_assert(rep_names(&rep, "s1") && rep_names(&rep, "s2"));
    ck_assert_uint_eq(rep.n_removed, 1);
    ck_assert_str_eq(rep.removed[0], "s3");
    /* Acknowledged: the base has all that; the next names only what follows. */
    a = ack(3);
    ck_assert(!report_answered(s, 3, &a));
    report_build_changes(s, NULL, 0, NULL, 0, 3, 1, &rep);
    ck_assert_uint_eq(rep.base_seq, 3);
    ck_assert_uint_eq(rep.n_segments, 0);
    ck_assert_uint_eq(rep.n_removed, 0);
    report_unanswered(s, 4);
    /* s0 gone, then back before an answer: a change, not a removal. */
    report_build_changes(s, NULL, 0, back, 1, 2, 1, &rep);
    ck_assert_uint_eq(rep.n_removed, 1);
    report_unanswered(s, 5);
    report_build_changes(s, &v[0], 1, NULL, 0, 3, 1, &rep);
    ck_assert_uint_eq(rep.n_removed, 0);
    ck_assert_uint_eq(rep.n_segments, 1);
    ck_assert_str_eq(rep.segments[0].segment_id, "s0");
    /* send_full: the next is whole, and a delta after its acknowledgement starts afresh. */
    a = ack(6);
    a.send_full = true;
    ck_assert(report_answered(s, 6, &a));
    ck_assert(report_wants_full(s));
    report_build(s, v, 3, &rep);
    ck_assert(!rep.delta);
    ck_assert_uint_eq(rep.n_segments, 3);
    a = ack(7);
    report_answered(s, 7, &a);
    report_build_changes(s, NULL, 0, NULL, 0, 3, 1, &rep);
    ck_assert(rep.delta);
    ck_assert_uint_eq(rep.base_seq, 7);
    ck_assert_uint_eq(rep.n_segments, 0);
    report_state_get_stats(s, &st);
    ck_assert_uint_eq(st.full, 2);
    ck_assert_uint_eq(st.delta, 6);
    report_state_free(s);
    free(v);
}
END_TEST

START_TEST(test_send_full)
{
    struct report_state *s = report_state_new(5);
    struct wire_segment_status *v = make(4);
    struct wire_report_response a = ack(1);
    struct wire_node_report rep;
    struct report_state_stats st;

    memset(&rep, 0, sizeof(rep));
    report_build(s, v, 4, &rep);
    report_answered(s, 1, &a);
    report_build(s, v, 4, &rep);
    ck_assert(rep.delta);
    /* The coordinator lost its base (it restarted): the next report is whole. */
    a = ack(0);
    a.send_full = true;
    ck_assert(report_answered(s, 2, &a));
    report_build(s, v, 4, &rep);
    ck_assert(!rep.delta);
    ck_assert_uint_eq(rep.seq, 3);
    ck_assert_uint_eq(rep.n_segments, 4);
    /* Acknowledged with send_full still (its digest disagreed): whole again. */
    a = ack(3);
    a.send_full = true;
    ck_assert(report_answered(s, 3, &a));
    report_build(s, v, 4, &rep);
    ck_assert(!rep.delta);
    a = ack(4);
    ck_assert(!report_answered(s, 4, &a));
    report_build(s, v, 4, &rep);
    ck_assert(rep.delta);
    ck_assert_uint_eq(rep.base_seq, 4);
    report_state_get_stats(s, &st);
    ck_assert_uint_eq(st.full_asked, 2);
    report_state_free(s);
    free(v);
}
END_TEST

START_TEST(test_older_coordinator)
{
    struct report_state *s = report_state_new(5);
    struct wire_segment_status *v = make(3);
    struct wire_report_response a = ack(0); /* no ack_seq: a coordinator from before deltas */
    struct wire_node_report rep;

    memset(&rep, 0, sizeof(rep));
    for (uint64_t i = 1; i <= 3; i++) {
        report_build(s, v, 3, &rep);
        ck_assert(!rep.delta);
        ck_assert_uint_eq(rep.n_segments, 3);
        ck_assert(report_answered(s, i, &a));
    }
    /* An answer to another report than the one in flight changes nothing. */
    report_build(s, v, 3, &rep);
    a = ack(3);
    ck_assert(report_answered(s, 3, &a));
    a = ack(4);
    ck_assert(!report_answered(s, 4, &a));
    report_build(s, v, 3, &rep);
    ck_assert(rep.delta);
    ck_assert_uint_eq(rep.base_seq, 4);
    report_state_free(s);
    free(v);
}
END_TEST

static void no_fill(void *arg, enum wire_node_state *state, struct wire_pressure *pressure)
{
    (void)arg;
    (void)pressure;
    *state = WIRE_NODE_SERVING;
}

static void no_segments(void *arg, struct wire_node_status *ret)
{
    (void)arg;
    (void)ret;
}

/*
 * A node stopping while its report is in flight (a coordinator that has
 * not answered) and a load has just ended (reporter_soon asked for the
 * next): freeing the reporter cancels the request, and the cancelled
 * answer must not re-arm the timer reporter_free() has already freed.
 * It did (check_node's id-conflict test crashed on SIGTERM when
 * MALLOC_PERTURB_ was set); freed memory is filled here so that a use
 * after free faults instead of passing by luck.
 */
/* The --coordinator list of one address, as the daemon parses it once. */
static struct coordlist *coordinators_of(const char *addr)
{
    struct coordlist *l = NULL;
    char err[256] = "";

    ck_assert_msg(coordlist_new(addr, &l, err, sizeof(err)) == 0, "%s", err);
    return l;
}

START_TEST(test_free_with_report_in_flight)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    struct reporter_source src = {.fill = no_fill, .segments = no_segments};
    struct reporter_config cfg = {.node_id = "n1", .advertise = "127.0.0.1:1",
                                  .interval_ms = 60000};
    struct timeval tick = {0, 200000};
    struct reporter_stats st;
    struct event_base *base = event_base_new();
    struct reporter *r;
    char addr[64];
    struct coordlist *cl;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    /* A coordinator that accepts connections (the kernel's backlog) and never answers. */
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(listen(fd, 8), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", (unsigned)ntohs(sa.sin_port));
    cl = coordinators_of(addr);
    cfg.coordinators = cl;
    r = reporter_new(base, &cfg, &src, NULL);
    coordlist_free(cl);
    ck_assert_ptr_nonnull(r);
    event_base_loopexit(base, &tick);
    event_base_dispatch(base); /* the first report goes out, and stays unanswered */
    reporter_get_stats(r, &st);
    ck_assert_uint_eq(st.sent + st.failed, 0);
    reporter_soon(r); /* a load ended during the report */
    mallopt(M_PERTURB, 0xa5);
    reporter_free(r);
    mallopt(M_PERTURB, 0);
    event_base_free(base);
    close(fd);
}
END_TEST

/* A coordinator that acknowledges every report, counting them and noting when the last came. */
static unsigned acked_reports;
static uint64_t last_report_ns;

static void ack_report_cb(struct evhttp_request *req, const char *rest, void *arg)
{
    struct wire_node_report rep;
    struct wire_report_response resp;
    struct wire_error err;
    const void *body;
    uint8_t *buf;
    size_t len;

    (void)rest;
    (void)arg;
    if (pbhttp_take_body(req, &body, &len) != 0 ||
        pbhttp_decoded(req, wire_node_report_decode(body, len, &rep, &err), &err) != 0)
        return;
    acked_reports++;
    last_report_ns = clock_mono_ns();
    memset(&resp, 0, sizeof(resp));
    resp.ack_seq = rep.seq;
    wire_node_report_done(&rep);
    buf = wire_report_response_encode(&resp, &len);
    pbhttp_reply(req, 200, buf, len);
}

static void run_for_ms(struct event_base *base, unsigned ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};

    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
}

/*
 * Every report is a heartbeat: a report asked for soon (a load ended)
 * restarts the interval, so the periodic one comes an interval after it,
 * not on the fixed beat in between (a placing farm sent about a third of
 * its reports so). Interval 2 s: the first report at once, one asked for at
 * 0.5 s, and then nothing before 2.5 s (the old beat sent one at 2 s).
 */
START_TEST(test_soon_restarts_heartbeat)
{
    struct http_limits lim = http_limits_default();
    struct event_base *base = event_base_new();
    struct http_server *srv = http_server_new(base, &lim);
    struct reporter_source src = {.fill = no_fill, .segments = no_segments};
    struct reporter_config cfg = {.node_id = "n1", .advertise = "127.0.0.1:1",
                                  .interval_ms = 2000};
    struct reporter *r;
    uint64_t soon_ns, t0;
    char addr[64];
    struct coordlist *cl;

    acked_reports = 0;
    ck_assert_int_eq(http_server_bind(srv, "127.0.0.1:0", addr, sizeof(addr)), 0);
    ck_assert_int_eq(
        http_server_route(srv, HTTP_POST, "/v1/report", false, ack_report_cb, NULL), 0);
    cl = coordinators_of(addr);
    cfg.coordinators = cl;
    t0 = clock_mono_ns();
    r = reporter_new(base, &cfg, &src, NULL);
    coordlist_free(cl);
    run_for_ms(base, 500);
    ck_assert_uint_eq(acked_reports, 1); /* the first, at once */
    soon_ns = clock_mono_ns();
    reporter_soon(r);
    /* Until 2.3 s after the start: the one asked for, and no periodic one at 2 s. */
    run_for_ms(base, (unsigned)(2300 - (soon_ns - t0) / 1000000));
    ck_assert_uint_eq(acked_reports, 2);
    /* The heartbeat comes an interval after the report asked for soon. */
    for (int i = 0; i < 100 && acked_reports < 3; i++)
        run_for_ms(base, 100);
    ck_assert_uint_eq(acked_reports, 3);
    ck_assert_uint_ge(last_report_ns - soon_ns, 2000ull * 1000000);
    reporter_free(r);
    http_server_free(srv);
    event_base_free(base);
}
END_TEST

static Suite *report_suite(void)
{
    Suite *s = suite_create("report");
    TCase *tc;

    tc = tcase_create("delta");
    tcase_add_test(tc, test_first_full_then_delta);
    tcase_add_test(tc, test_unanswered_keeps_base);
    tcase_add_test(tc, test_journal);
    suite_add_tcase(s, tc);
    tc = tcase_create("full");
    tcase_add_test(tc, test_send_full);
    tcase_add_test(tc, test_older_coordinator);
    suite_add_tcase(s, tc);
    tc = tcase_create("reporter");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_free_with_report_in_flight);
    tcase_add_test(tc, test_soon_restarts_heartbeat);
    suite_add_tcase(s, tc);
    return s;
}


int main(void)
{
    return harness_run_suite(report_suite());
}
