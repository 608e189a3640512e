/*
 * check_coordlist: the --coordinator list (common/coordlist): parsing, the
 * rule that picks the next address (a standby's leader first, else the
 * next of the list, round and round; any answer but a standby's 503
 * stays), and the
 * blocking fetch's giving up on a list where nobody answers, and its
 * telling a standby's 503 from a leader's own (two fake coordinators on
 * 127.0.0.1 port 0, one thread each, one canned answer each).
 */
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "coordlist.h"
#include "http.h"
#include "suite.h"
#include "wire.h"

static struct coordlist *parse_ok(const char *csv)
{
    struct coordlist *l = NULL;
    char err[256] = "";

    ck_assert_msg(coordlist_new(csv, &l, err, sizeof(err)) == 0, "%s: %s", csv, err);
    return l;
}

START_TEST(test_parse)
{
    struct coordlist *l = parse_ok("127.0.0.1:7000, 127.0.0.1:7001 ,[::1]:7002");
    char err[256] = "";
    struct coordlist *bad = NULL;

    ck_assert_uint_eq(coordlist_count(l), 3);
    ck_assert_str_eq(coordlist_at(l, 0), "127.0.0.1:7000");
    ck_assert_str_eq(coordlist_at(l, 1), "127.0.0.1:7001");
    ck_assert_str_eq(coordlist_at(l, 2), "[::1]:7002");
    ck_assert_ptr_null(coordlist_at(l, 3));
    ck_assert_str_eq(coordlist_current(l), "127.0.0.1:7000");
    coordlist_free(l);
    l = parse_ok("c1:7000");
    ck_assert_uint_eq(coordlist_count(l), 1);
    coordlist_free(l);

    ck_assert_int_eq(coordlist_new("127.0.0.1:7000,,127.0.0.1:7001", &bad, err, sizeof(err)),
                     -EINVAL);
    ck_assert_str_eq(err, "--coordinator \"127.0.0.1:7000,,127.0.0.1:7001\": element 2 is empty");
    ck_assert_int_eq(coordlist_new("127.0.0.1:7000,nope", &bad, err, sizeof(err)), -EINVAL);
    ck_assert_str_eq(err, "--coordinator \"nope\" is not an address: expected HOST:PORT");
    ck_assert_int_eq(coordlist_new("http://a:1", &bad, err, sizeof(err)), -EINVAL);
    ck_assert_int_eq(coordlist_new("", &bad, err, sizeof(err)), -EINVAL);
    ck_assert_int_eq(coordlist_new("a:1,a:2,a:3,a:4,a:5,a:6,a:7,a:8,a:9,a:10,a:11,a:12,a:13,"
                                   "a:14,a:15,a:16,a:17",
                                   &bad, err, sizeof(err)),
                     -E2BIG);
    ck_assert_ptr_null(bad);
}
END_TEST

START_TEST(test_leader_stays)
{
    struct coordlist *l = parse_ok("a:1,b:2");

    /* Any answer but 503 is the leader's, errors too: stay. */
    ck_assert(!coordlist_answer(l, 200, NULL, NULL));
    ck_assert(!coordlist_answer(l, 404, NULL, NULL));
    ck_assert(!coordlist_answer(l, 500, NULL, NULL));
    ck_assert(!coordlist_answer(l, 429, "b:2", NULL));
    /* A 503 of the leader's own (not a standby's: no leader named, another code): stay. */
    ck_assert(!coordlist_answer(l, 503, NULL, "segments_unavailable"));
    ck_assert(!coordlist_answer(l, 503, "", "not_ready"));
    ck_assert(!coordlist_answer(l, 503, NULL, NULL));
    /* The client gave up on its own request: nothing learnt. */
    ck_assert(!coordlist_answer(l, -ECANCELED, NULL, NULL));
    ck_assert_str_eq(coordlist_current(l), "a:1");
    coordlist_free(l);
}
END_TEST

START_TEST(test_round_robin_on_failure)
{
    struct coordlist *l = parse_ok("a:1,b:2,c:3");

    ck_assert(coordlist_answer(l, -ECONNREFUSED, NULL, NULL));
    ck_assert_str_eq(coordlist_current(l), "b:2");
    ck_assert(coordlist_answer(l, -ETIMEDOUT, NULL, NULL));
    ck_assert_str_eq(coordlist_current(l), "c:3");
    /* A standby that knows no leader (an election under way): next. */
    ck_assert(coordlist_answer(l, 503, NULL, "standby"));
    ck_assert_str_eq(coordlist_current(l), "a:1");
    /* A standby naming itself is no help either. */
    ck_assert(coordlist_answer(l, 503, "a:1", "standby"));
    ck_assert_str_eq(coordlist_current(l), "b:2");
    coordlist_free(l);
}
END_TEST

START_TEST(test_follow_leader)
{
    struct coordlist *l = parse_ok("a:1,b:2,c:3");

    /* A standby names a leader of the list: go there directly. */
    ck_assert(coordlist_answer(l, 503, "c:3", "standby"));
    ck_assert_str_eq(coordlist_current(l), "c:3");
    ck_assert(!coordlist_answer(l, 200, NULL, NULL));
    /* The header alone makes a standby's answer (its place in the list is taken). */
    ck_assert(coordlist_answer(l, 503, "b:2", NULL));
    ck_assert_str_eq(coordlist_current(l), "b:2");
    ck_assert(coordlist_answer(l, 503, "c:3", NULL));
    ck_assert_str_eq(coordlist_current(l), "c:3");
    /* ... and one outside the list (a new address after a move): followed too. */
    ck_assert(coordlist_answer(l, 503, "d:4", "standby"));
    ck_assert_str_eq(coordlist_current(l), "d:4");
    ck_assert_uint_eq(coordlist_count(l), 3);
    /* When it fails, the list resumes where it was left. */
    ck_assert(coordlist_answer(l, -ECONNREFUSED, NULL, NULL));
    ck_assert_str_eq(coordlist_current(l), "c:3");
    ck_assert(coordlist_answer(l, -ECONNREFUSED, NULL, NULL));
    ck_assert_str_eq(coordlist_current(l), "a:1");
    /* A leader header that is not an address is ignored: the next of the list. */
    ck_assert(coordlist_answer(l, 503, "not an address", "standby"));
    ck_assert_str_eq(coordlist_current(l), "b:2");
    coordlist_free(l);
}
END_TEST

START_TEST(test_fetch_nobody)
{
    /* Two closed ports on 127.0.0.1 (port 1 and 2 need root to listen: nobody does). */
    struct coordlist *l = parse_ok("127.0.0.1:1,127.0.0.1:2");
    struct http_response r;

    ck_assert_int_eq(coordlist_fetch(l, "GET", "/healthz", NULL, NULL, 0, NULL, 600, &r),
                     -ECONNREFUSED);
    coordlist_free(l);
}
END_TEST

/* A fake coordinator: every request gets the same 503 with an Error of code, maybe a leader. */
struct fake {
    int fd;
    pthread_t thread;
    char addr[32];
    char *resp;
    size_t resp_len;
    atomic_int requests;
};

static void *fake_main(void *arg)
{
    struct fake *f = arg;
    int c;

    while ((c = accept(f->fd, NULL, NULL)) >= 0) {
        char buf[4096];
        size_t got = 0;
        ssize_t r;

        /* Requests without a body (GET): the head ends the request. */
        while (got < sizeof(buf) - 1 && (r = read(c, buf + got, sizeof(buf) - 1 - got)) > 0) {
            got += (size_t)r;
            buf[got] = '\0';
            if (strstr(buf, "\r\n\r\n") != NULL)
                break;
        }
        atomic_fetch_add(&f->requests, 1);
        ck_assert_int_eq(write(c, f->resp, f->resp_len), (ssize_t)f->resp_len);
        close(c);
    }
    return NULL;
}

static void fake_start(struct fake *f)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);

    memset(f, 0, sizeof(*f));
    f->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(f->fd, 0);
    ck_assert_int_eq(bind(f->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(listen(f->fd, 16), 0);
    ck_assert_int_eq(getsockname(f->fd, (struct sockaddr *)&sa, &len), 0);
    snprintf(f->addr, sizeof(f->addr), "127.0.0.1:%u", ntohs(sa.sin_port));
}

/* Its answer (set before fake_run): 503, an Error of code, X-Sluice-Leader leader if not NULL. */
static void fake_answer(struct fake *f, const char *code, const char *leader)
{
    struct wire_error e;
    uint8_t *body;
    size_t len;
    char head[512];
    int n;

    snprintf(e.code, sizeof(e.code), "%s", code);
    snprintf(e.message, sizeof(e.message), "%s from %s", code, f->addr);
    body = wire_error_encode(&e, &len);
    n = snprintf(head, sizeof(head),
                 "HTTP/1.1 503 Service Unavailable\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                 "Connection: close\r\n%s%s%s\r\n",
                 WIRE_CONTENT_TYPE, len, leader != NULL ? COORDLIST_LEADER_HEADER ": " : "",
                 leader != NULL ? leader : "", leader != NULL ? "\r\n" : "");
    f->resp_len = (size_t)n + len;
    f->resp = malloc(f->resp_len);
    memcpy(f->resp, head, (size_t)n);
    memcpy(f->resp + n, body, len);
    free(body);
    ck_assert_int_eq(pthread_create(&f->thread, NULL, fake_main, f), 0);
}

static void fake_stop(struct fake *f)
{
    shutdown(f->fd, SHUT_RDWR);
    pthread_join(f->thread, NULL);
    close(f->fd);
    free(f->resp);
}

/*
 * The leader answers 503 for a reason of its own (a query whose segments
 * are unavailable, the broker not ready): that is the leader's answer, given
 * back at once, not taken for a standby's (which would send the client to
 * the standby, which names the leader, and so on until the deadline).
 */
START_TEST(test_fetch_leader_503)
{
    struct fake lead, standby;
    struct coordlist *l;
    struct http_response r;
    struct wire_error e;
    char csv[80];

    fake_start(&lead);
    fake_start(&standby);
    fake_answer(&lead, "segments_unavailable", NULL);
    fake_answer(&standby, "standby", lead.addr);
    /* The standby first: its 503 names the leader, followed at once. */
    snprintf(csv, sizeof(csv), "%s,%s", standby.addr, lead.addr);
    l = parse_ok(csv);
    ck_assert_int_eq(coordlist_fetch(l, "GET", "/v1/tables/t/query", NULL, NULL, 0, NULL, 2000, &r),
                     0);
    ck_assert_int_eq(r.status, 503);
    ck_assert_int_eq(wire_error_decode(r.body, r.body_len, &e), 0);
    ck_assert_str_eq(e.code, "segments_unavailable");
    ck_assert_int_eq(atomic_load(&standby.requests), 1);
    ck_assert_int_eq(atomic_load(&lead.requests), 1);
    ck_assert_str_eq(coordlist_current(l), lead.addr);
    http_response_done(&r);
    coordlist_free(l);
    fake_stop(&lead);
    fake_stop(&standby);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("coordlist");
    TCase *tc;

    tc = tcase_create("parse");
    tcase_add_test(tc, test_parse);
    suite_add_tcase(s, tc);
    tc = tcase_create("policy");
    tcase_add_test(tc, test_leader_stays);
    tcase_add_test(tc, test_round_robin_on_failure);
    tcase_add_test(tc, test_follow_leader);
    suite_add_tcase(s, tc);
    tc = tcase_create("fetch");
    tcase_add_test(tc, test_fetch_nobody);
    tcase_add_test(tc, test_fetch_leader_503);
    suite_add_tcase(s, tc);
    return harness_run_suite(s);
}
