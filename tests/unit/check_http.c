/*
 * check_http: unit tests for common/http. Each test starts a real server on
 * 127.0.0.1 port 0 whose event loop runs in a thread of the test process,
 * and talks to it with raw sockets (to control every byte), http_fetch(), or
 * an http_client on the test thread's own event_base. Limits are set small
 * so that the cap, the deadline and the size checks run in well under a
 * second. Server state is only read from its own loop thread, through
 * in_loop(), or after the loop has stopped.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/thread.h>

#include "http.h"
#include "suite.h"

#define TOKEN "s3cret-token"

struct fixture {
    struct event_base *base;
    struct http_server *srv;
    pthread_t thread;
    char addr[64];
    uint16_t port;
    struct evhttp_request *stash[8]; /* held by the /hang handler; loop thread only */
    size_t nstash;
    struct http_server_stats stats; /* filled by in_loop(f, snapshot_stats) */
};

static int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};

    nanosleep(&ts, NULL);
}

/* Open descriptors of this process, to prove that closed connections are released. */
static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;

    ck_assert_ptr_nonnull(d);
    while (readdir(d) != NULL)
        n++;
    closedir(d);
    return n;
}

/* Handlers. */

static void h_hello(struct evhttp_request *req, const char *rest, void *arg)
{
    http_reply_text(req, 200, "hello");
}

static void h_rest(struct evhttp_request *req, const char *rest, void *arg)
{
    http_reply(req, 200, "application/octet-stream", rest, strlen(rest));
}

static void h_upload(struct evhttp_request *req, const char *rest, void *arg)
{
    http_reply_text(req, 200, "%zu", evbuffer_get_length(evhttp_request_get_input_buffer(req)));
}

static void h_busy(struct evhttp_request *req, const char *rest, void *arg)
{
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);

    evhttp_add_header(out, "X-Sluice-Reason", "MEM_PRESSURE");
    evhttp_add_header(out, "Retry-After", "7");
    http_reply_text(req, 503, "busy\n");
}

static void h_hang(struct evhttp_request *req, const char *rest, void *arg)
{
    struct fixture *f = arg;

    ck_assert_uint_lt(f->nstash, sizeof(f->stash) / sizeof(f->stash[0]));
    f->stash[f->nstash++] = req;
}

/* Fixture: a server whose loop runs in a thread. */

static void *loop_thread(void *arg)
{
    struct fixture *f = arg;

    event_base_dispatch(f->base);
    return NULL;
}

static void fixture_start(struct fixture *f, const struct http_limits *limits)
{
    memset(f, 0, sizeof(*f));
    f->base = event_base_new();
    ck_assert_ptr_nonnull(f->base);
    f->srv = http_server_new(f->base, limits);
    ck_assert_ptr_nonnull(f->srv);
    ck_assert_int_eq(http_server_route(f->srv, HTTP_GET, "/hello", false, h_hello, f), 0);
    ck_assert_int_eq(http_server_route(f->srv, HTTP_GET, "/items/", true, h_rest, f), 0);
    ck_assert_int_eq(http_server_route(f->srv, HTTP_POST, "/upload", false, h_upload, f), 0);
    ck_assert_int_eq(http_server_route(f->srv, HTTP_GET, "/busy", false, h_busy, f), 0);
    ck_assert_int_eq(http_server_route(f->srv, HTTP_GET, "/hang", false, h_hang, f), 0);
    ck_assert_int_eq(http_server_route_public(f->srv, HTTP_GET, "/healthz", false, h_hello, f), 0);
    ck_assert_int_eq(http_server_bind(f->srv, "127.0.0.1:0", f->addr, sizeof(f->addr)), 0);
    ck_assert_int_eq(strncmp(f->addr, "127.0.0.1:", 10), 0);
    f->port = (uint16_t)atoi(f->addr + 10);
    ck_assert_uint_ne(f->port, 0);
    ck_assert_int_eq(pthread_create(&f->thread, NULL, loop_thread, f), 0);
}

struct loop_call {
    struct fixture *f;
    void (*fn)(struct fixture *);
    bool done;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

static void loop_call_cb(evutil_socket_t fd, short what, void *arg)
{
    struct loop_call *c = arg;

    c->fn(c->f);
    pthread_mutex_lock(&c->mu);
    c->done = true;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

/* Runs fn(f) on the server's loop thread and waits for it. */
static void in_loop(struct fixture *f, void (*fn)(struct fixture *))
{
    struct loop_call c = {.f = f, .fn = fn};
    struct timeval now = {0, 0};

    pthread_mutex_init(&c.mu, NULL);
    pthread_cond_init(&c.cv, NULL);
    ck_assert_int_eq(event_base_once(f->base, -1, EV_TIMEOUT, loop_call_cb, &c, &now), 0);
    pthread_mutex_lock(&c.mu);
    while (!c.done)
        pthread_cond_wait(&c.cv, &c.mu);
    pthread_mutex_unlock(&c.mu);
    pthread_mutex_destroy(&c.mu);
    pthread_cond_destroy(&c.cv);
}

static void snapshot_stats(struct fixture *f)
{
    http_server_get_stats(f->srv, &f->stats);
}

/* Answers every request the /hang handler held back. */
static void release_stash(struct fixture *f)
{
    for (size_t i = 0; i < f->nstash; i++)
        http_reply_text(f->stash[i], 200, "late");
    f->nstash = 0;
}

static void fixture_stop(struct fixture *f)
{
    in_loop(f, release_stash);
    in_loop(f, snapshot_stats);
    event_base_loopexit(f->base, NULL);
    pthread_join(f->thread, NULL);
    http_server_free(f->srv);
    event_base_free(f->base);
}

/* Raw sockets. */

static int raw_connect(uint16_t port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    ck_assert_int_ge(fd, 0);
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    return fd;
}

static void raw_send(int fd, const void *buf, size_t len)
{
    const char *p = buf;

    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

        ck_assert_int_gt(n, 0);
        p += n;
        len -= (size_t)n;
    }
}

/*
 * Reads until the peer closes or timeout_ms passes; returns the bytes read
 * (NUL-terminated) and sets *ret_closed if EOF (or a reset) was seen.
 */
static size_t raw_read(int fd, char *buf, size_t cap, unsigned timeout_ms, bool *ret_closed)
{
    int64_t end = mono_ms() + timeout_ms;
    size_t got = 0;

    *ret_closed = false;
    while (got + 1 < cap) {
        int64_t left = end - mono_ms();
        struct pollfd p = {.fd = fd, .events = POLLIN};
        ssize_t n;

        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            break;
        n = recv(fd, buf + got, cap - 1 - got, 0);
        if (n <= 0) {
            *ret_closed = true;
            break;
        }
        got += (size_t)n;
    }
    buf[got] = '\0';
    return got;
}

/* Milliseconds until the peer closes fd, or -1 after timeout_ms. */
static int64_t raw_wait_closed(int fd, unsigned timeout_ms)
{
    int64_t start = mono_ms();
    char buf[4096];
    bool closed;

    raw_read(fd, buf, sizeof(buf), timeout_ms, &closed);
    return closed ? mono_ms() - start : -1;
}

static bool raw_is_open(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};

    return poll(&p, 1, 0) == 0;
}

static int fetch(const struct fixture *f, const char *method, const char *path, const char *token,
                 struct http_response *r)
{
    return http_fetch(f->addr, method, path, NULL, NULL, 0, token, 2000, r);
}

static int fetch_status(const struct fixture *f, const char *method, const char *path,
                        const char *token)
{
    struct http_response r;
    int status, rc = fetch(f, method, path, token, &r);

    if (rc < 0)
        return rc;
    status = r.status;
    http_response_done(&r);
    return status;
}

/* Tests. */

START_TEST(test_routing)
{
    struct fixture f;
    struct http_response r;
    char buf[2048];
    bool closed;
    int fd;

    fixture_start(&f, NULL);
    ck_assert_int_eq(fetch(&f, "GET", "/hello", NULL, &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "hello");
    ck_assert_uint_eq(r.body_len, 5);
    ck_assert_str_eq(r.content_type, "text/plain; charset=utf-8");
    http_response_done(&r);
    ck_assert_ptr_null(r.body);

    ck_assert_int_eq(fetch(&f, "GET", "/items/abc?q=1", NULL, &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "abc");
    http_response_done(&r);
    ck_assert_int_eq(fetch(&f, "GET", "/items/", NULL, &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_uint_eq(r.body_len, 0);
    http_response_done(&r);

    ck_assert_int_eq(fetch(&f, "GET", "/nope", NULL, &r), 0);
    ck_assert_int_eq(r.status, 404);
    ck_assert_str_eq(r.content_type, "application/x-protobuf"); /* an Error, like every other */
    http_response_done(&r);
    ck_assert_int_eq(fetch_status(&f, "GET", "/hello/", NULL), 404);
    ck_assert_int_eq(fetch_status(&f, "GET", "/items", NULL), 404);
    ck_assert_int_eq(fetch_status(&f, "DELETE", "/hello", NULL), 405);
    ck_assert_int_eq(fetch_status(&f, "POST", "/items/x", NULL), 405);
    /* Methods outside GET/POST/DELETE never reach routing: the framer refuses them (501). */
    ck_assert_int_eq(fetch_status(&f, "PUT", "/hello", NULL), 501);

    /* 405 names the allowed methods. */
    fd = raw_connect(f.port);
    raw_send(fd, "DELETE /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 54);
    raw_read(fd, buf, sizeof(buf), 2000, &closed);
    close(fd);
    ck_assert_msg(strncmp(buf, "HTTP/1.1 405", 12) == 0, "got: %s", buf);
    ck_assert_ptr_nonnull(strstr(buf, "\r\nAllow: GET\r\n"));

    /* Reason and Retry-After reach the client. */
    ck_assert_int_eq(fetch(&f, "GET", "/busy", NULL, &r), 0);
    ck_assert_int_eq(r.status, 503);
    ck_assert_str_eq(r.reason, "MEM_PRESSURE");
    ck_assert_uint_eq(r.retry_after_s, 7);
    http_response_done(&r);

    fixture_stop(&f);
    ck_assert_uint_eq(f.stats.requests, 10);
    ck_assert_uint_eq(f.stats.responses_2xx, 3);
    ck_assert_uint_eq(f.stats.responses_4xx, 6);
    ck_assert_uint_eq(f.stats.responses_5xx, 2); /* 503 and the framer's 501 */
}
END_TEST

START_TEST(test_route_errors)
{
    struct event_base *base = event_base_new();
    struct http_server *srv = http_server_new(base, NULL);

    ck_assert_int_eq(http_server_route(srv, HTTP_GET, "nopath", false, h_hello, NULL), -EINVAL);
    ck_assert_int_eq(http_server_route(srv, 0, "/a", false, h_hello, NULL), -EINVAL);
    ck_assert_int_eq(http_server_route(srv, EVHTTP_REQ_PUT, "/a", false, h_hello, NULL), -EINVAL);
    ck_assert_int_eq(http_server_route(srv, HTTP_GET, "/a", false, NULL, NULL), -EINVAL);
    ck_assert_int_eq(http_server_route(srv, HTTP_GET, "/a", false, h_hello, NULL), 0);
    ck_assert_int_eq(http_server_route(srv, HTTP_GET | HTTP_POST, "/a", false, h_hello, NULL),
                     -EEXIST);
    ck_assert_int_eq(http_server_route(srv, HTTP_POST, "/a", false, h_hello, NULL), 0);
    ck_assert_int_eq(http_server_route(srv, HTTP_GET, "/a", true, h_hello, NULL), 0);
    ck_assert_int_eq(http_server_set_token(srv, "has space"), -EINVAL);
    ck_assert_int_eq(http_server_set_token(srv, "ok"), 0);
    ck_assert_int_eq(http_server_set_token(srv, NULL), 0);
    http_server_free(srv);
    http_server_free(NULL);
    event_base_free(base);
}
END_TEST

START_TEST(test_bind)
{
    struct event_base *base = event_base_new();
    struct http_server *srv = http_server_new(base, NULL);
    char addr[64], again[80], tiny[4];
    int r;

    ck_assert_int_eq(http_server_bind(srv, "127.0.0.1", addr, sizeof(addr)), -EINVAL);
    ck_assert_int_eq(http_server_bind(srv, "127.0.0.1:99999", addr, sizeof(addr)), -EINVAL);
    ck_assert_int_eq(http_server_bind(srv, "::1:80", addr, sizeof(addr)), -EINVAL);
    ck_assert_int_eq(http_server_bind(srv, ":80", addr, sizeof(addr)), -EINVAL);
    ck_assert_int_eq(http_server_bind(srv, "127.0.0.1:0", tiny, sizeof(tiny)), -ENOSPC);
    ck_assert_int_eq(http_server_bind(srv, "127.0.0.1:0", addr, sizeof(addr)), 0);
    ck_assert_int_eq(strncmp(addr, "127.0.0.1:", 10), 0);
    ck_assert_int_gt(atoi(addr + 10), 0);
    /* The same port twice fails with a negative errno. */
    ck_assert_int_lt(http_server_bind(srv, addr, again, sizeof(again)), 0);
    r = http_server_bind(srv, "[::1]:0", again, sizeof(again));
    if (r == 0) {
        ck_assert_int_eq(strncmp(again, "[::1]:", 6), 0);
        ck_assert_int_gt(atoi(again + 6), 0);
    } else {
        ck_assert_int_lt(r, 0); /* no IPv6 loopback in this sandbox */
    }
    http_server_free(srv);
    event_base_free(base);
}
END_TEST

START_TEST(test_body_limit)
{
    struct http_limits lim = http_limits_default();
    struct fixture f;
    struct http_response r;
    static char big[4096];
    char req[4096], buf[2048];
    bool closed;
    int fd, n;

    lim.max_body = 1024;
    fixture_start(&f, &lim);
    memset(big, 'b', sizeof(big));
    ck_assert_int_eq(http_fetch(f.addr, "POST", "/upload", "text/plain", big, 1024, NULL, 2000, &r),
                     0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "1024");
    http_response_done(&r);

    /* Content-Length over the limit: evhttp answers 413 before reading the body. */
    ck_assert_int_eq(http_fetch(f.addr, "POST", "/upload", "text/plain", big, 1025, NULL, 2000, &r),
                     0);
    ck_assert_int_eq(r.status, 413);
    http_response_done(&r);
    ck_assert_int_eq(
        http_fetch(f.addr, "POST", "/upload", "text/plain", big, sizeof(big), NULL, 2000, &r), 0);
    ck_assert_int_eq(r.status, 413);
    http_response_done(&r);

    /* Chunked: a chunk that would take the body over the limit gets 413 as well. */
    n = snprintf(req, sizeof(req),
                 "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "200\r\n%.512s\r\n401\r\n",
                 big);
    fd = raw_connect(f.port);
    raw_send(fd, req, (size_t)n);
    raw_send(fd, big, 1025);
    raw_read(fd, buf, sizeof(buf), 2000, &closed);
    close(fd);
    ck_assert_msg(strncmp(buf, "HTTP/1.1 413", 12) == 0, "got: %s", buf);
    ck_assert(closed);

    /* Chunked under the limit is delivered whole. */
    fd = raw_connect(f.port);
    n = snprintf(req, sizeof(req),
                 "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                 "Connection: close\r\n\r\na\r\n0123456789\r\n5\r\nabcde\r\n0\r\n\r\n");
    raw_send(fd, req, (size_t)n);
    raw_read(fd, buf, sizeof(buf), 2000, &closed);
    close(fd);
    ck_assert_msg(strncmp(buf, "HTTP/1.1 200", 12) == 0, "got: %s", buf);
    ck_assert_ptr_nonnull(strstr(buf, "\r\n\r\n15"));

    /* The server keeps serving. */
    ck_assert_int_eq(http_fetch(f.addr, "POST", "/upload", NULL, "x", 1, NULL, 2000, &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "1");
    http_response_done(&r);
    fixture_stop(&f);
}
END_TEST

START_TEST(test_header_limit)
{
    struct http_limits lim = http_limits_default();
    struct fixture f;
    static char req[8192];
    char buf[2048];
    bool closed;
    int fd, n;

    lim.max_headers = 1024;
    fixture_start(&f, &lim);
    n = snprintf(req, sizeof(req), "GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: %0*d\r\n\r\n", 2000,
                 0);
    fd = raw_connect(f.port);
    raw_send(fd, req, (size_t)n);
    raw_read(fd, buf, sizeof(buf), 2000, &closed);
    close(fd);
    /* The framer answers 431 with an Error and closes the connection. */
    ck_assert_msg(strncmp(buf, "HTTP/1.1 431", 12) == 0, "got: %s", buf);
    ck_assert_ptr_nonnull(strstr(buf, "\r\nContent-Type: application/x-protobuf\r\n"));
    ck_assert_ptr_nonnull(strstr(buf, "\r\nX-Sluice-Error: headers: more than 1024 bytes\r\n"));
    ck_assert(closed);

    /* Just under the limit is fine. */
    n = snprintf(req, sizeof(req),
                 "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: %0*d\r\n\r\n", 900,
                 0);
    fd = raw_connect(f.port);
    raw_send(fd, req, (size_t)n);
    raw_read(fd, buf, sizeof(buf), 2000, &closed);
    close(fd);
    ck_assert_msg(strncmp(buf, "HTTP/1.1 200", 12) == 0, "got: %s", buf);
    ck_assert_int_eq(fetch_status(&f, "GET", "/hello", NULL), 200);
    fixture_stop(&f);
}
END_TEST

START_TEST(test_nul_in_uri)
{
    struct fixture f;

    fixture_start(&f, NULL);
    ck_assert_int_eq(fetch_status(&f, "GET", "/hello%00", NULL), 400);
    ck_assert_int_eq(fetch_status(&f, "GET", "/items/a%00b", NULL), 400);
    ck_assert_int_eq(fetch_status(&f, "GET", "/hello?x=%00", NULL), 400);
    ck_assert_int_eq(fetch_status(&f, "GET", "/items/a%01b", NULL), 200);
    fixture_stop(&f);
}
END_TEST

START_TEST(test_token)
{
    struct fixture f;
    char buf[2048];
    bool closed;
    int fd;

    fixture_start(&f, NULL);
    ck_assert_int_eq(http_server_set_token(f.srv, TOKEN), 0); /* loop idle: no request yet */
    ck_assert_int_eq(fetch_status(&f, "GET", "/hello", NULL), 401);
    ck_assert_int_eq(fetch_status(&f, "GET", "/hello", "s3cret-tokeX"), 401);
    ck_assert_int_eq(fetch_status(&f, "GET", "/hello", "s3cret"), 401);
    ck_assert_int_eq(fetch_status(&f, "GET", "/hello", TOKEN "x"), 401);
    ck_assert_int_eq(fetch_status(&f, "GET", "/hello", TOKEN), 200);
    ck_assert_int_eq(fetch_status(&f, "GET", "/healthz", NULL), 200);
    /* Unknown paths do not leak to unauthenticated clients. */
    ck_assert_int_eq(fetch_status(&f, "GET", "/nope", NULL), 401);
    ck_assert_int_eq(fetch_status(&f, "GET", "/nope", TOKEN), 404);

    fd = raw_connect(f.port);
    raw_send(fd, "GET /hello HTTP/1.1\r\nHost: x\r\nAuthorization: Basic Zm9v\r\n\r\n", 59);
    raw_read(fd, buf, sizeof(buf), 500, &closed);
    close(fd);
    ck_assert_msg(strncmp(buf, "HTTP/1.1 401", 12) == 0, "got: %s", buf);
    ck_assert_ptr_nonnull(strstr(buf, "\r\nWWW-Authenticate: Bearer realm=\"sluice\"\r\n"));
    fixture_stop(&f);
}
END_TEST

START_TEST(test_connection_cap)
{
    struct http_limits lim = http_limits_default();
    struct fixture f;
    int fds[4], extra, status = -1, fds_before = count_fds();
    int64_t closed_after, start;

    lim.max_connections = 4;
    fixture_start(&f, &lim);
    for (int i = 0; i < 4; i++)
        fds[i] = raw_connect(f.port);
    extra = raw_connect(f.port);
    closed_after = raw_wait_closed(extra, 2000);
    close(extra);
    ck_assert_int_ge(closed_after, 0);
    ck_assert_int_lt(closed_after, 500);
    for (int i = 0; i < 4; i++)
        ck_assert(raw_is_open(fds[i]));

    in_loop(&f, snapshot_stats);
    ck_assert_uint_eq(f.stats.connections_live, 4);
    ck_assert_uint_eq(f.stats.connections_rejected_cap, 1);

    /* Free two slots; new connections are served once the server has seen the closes. */
    close(fds[0]);
    close(fds[1]);
    start = mono_ms();
    while (mono_ms() - start < 2000) {
        status = fetch_status(&f, "GET", "/hello", NULL);
        if (status == 200)
            break;
        sleep_ms(10);
    }
    ck_assert_int_eq(status, 200);
    ck_assert_int_lt(mono_ms() - start, 1000);
    ck_assert(raw_is_open(fds[2]));
    ck_assert(raw_is_open(fds[3]));
    close(fds[2]);
    close(fds[3]);

    /* Every server-side socket is released once the peers have gone. */
    start = mono_ms();
    do {
        sleep_ms(20);
        in_loop(&f, snapshot_stats);
    } while (f.stats.connections_live > 0 && mono_ms() - start < 2000);
    ck_assert_uint_eq(f.stats.connections_live, 0);
    fixture_stop(&f);
    ck_assert_uint_ge(f.stats.connections_accepted, 6);
    ck_assert_uint_eq(f.stats.connections_closed_deadline, 0);
    ck_assert_int_eq(count_fds(), fds_before);
}
END_TEST

START_TEST(test_slowloris)
{
    struct http_limits lim = http_limits_default();
    struct fixture f;
    const char *head = "GET /hello HTTP/1.1\r\nHost: x\r\nX-Drip: ";
    char buf[2048];
    int64_t start, closed_at = -1;
    bool fetched = false, closed;
    int fd;

    lim.request_timeout_ms = 500;
    fixture_start(&f, &lim);
    fd = raw_connect(f.port);
    start = mono_ms();
    raw_send(fd, head, strlen(head));
    while (mono_ms() - start < 3000) {
        struct pollfd p = {.fd = fd, .events = POLLIN};

        if (send(fd, "a", 1, MSG_NOSIGNAL) != 1) {
            closed_at = mono_ms() - start;
            break;
        }
        if (poll(&p, 1, 100) > 0 && recv(fd, buf, sizeof(buf), 0) <= 0) {
            closed_at = mono_ms() - start;
            break;
        }
        if (!fetched && mono_ms() - start >= 200) {
            /* A well-behaved client is served while the drip goes on. */
            ck_assert_int_eq(fetch_status(&f, "GET", "/hello", NULL), 200);
            fetched = true;
        }
    }
    close(fd);
    ck_assert(fetched);
    ck_assert_int_ge(closed_at, 450);
    ck_assert_int_le(closed_at, 1500);

    /* The deadline also runs from the previous answer on a kept-alive connection. */
    fd = raw_connect(f.port);
    raw_send(fd, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", 32);
    raw_read(fd, buf, sizeof(buf), 200, &closed);
    ck_assert_msg(strncmp(buf, "HTTP/1.1 200", 12) == 0, "got: %s", buf);
    ck_assert(!closed);
    start = mono_ms();
    closed_at = raw_wait_closed(fd, 3000);
    close(fd);
    ck_assert_int_ge(closed_at, 250);
    ck_assert_int_le(closed_at, 1500);
    fixture_stop(&f);
    ck_assert_uint_eq(f.stats.connections_closed_deadline, 2);
}
END_TEST

struct keepalive_state {
    struct event_base *base;
    unsigned done, ok;
    char expect[50][16];
};

struct keepalive_req {
    struct keepalive_state *st;
    int i;
};

static void keepalive_cb(int status, const struct http_client_reply *reply, void *arg)
{
    struct keepalive_req *kr = arg;
    struct keepalive_state *st = kr->st;
    const char *want = st->expect[kr->i];

    if (status == 200 && reply->body_len == strlen(want) &&
        memcmp(reply->body, want, reply->body_len) == 0 && reply->headers != NULL)
        st->ok++;
    if (++st->done == 50)
        event_base_loopbreak(st->base);
}

START_TEST(test_client_keepalive)
{
    struct fixture f;
    struct keepalive_state st = {0};
    struct keepalive_req reqs[50];
    struct http_client *c;

    fixture_start(&f, NULL);
    st.base = event_base_new();
    c = http_client_new(st.base, f.addr, 5000, NULL);
    ck_assert_ptr_nonnull(c);
    for (int i = 0; i < 50; i++) {
        char path[32];

        snprintf(st.expect[i], sizeof(st.expect[i]), "n%d", i * 7);
        snprintf(path, sizeof(path), "/items/%s", st.expect[i]);
        reqs[i].st = &st;
        reqs[i].i = i;
        ck_assert_int_eq(
            http_client_request(c, EVHTTP_REQ_GET, path, NULL, NULL, 0, keepalive_cb, &reqs[i]), 0);
    }
    ck_assert_uint_eq(http_client_pending(c), 50);
    ck_assert_uint_eq(st.done, 0); /* never called from inside http_client_request */
    event_base_dispatch(st.base);
    ck_assert_uint_eq(st.done, 50);
    ck_assert_uint_eq(st.ok, 50);
    ck_assert_uint_eq(http_client_pending(c), 0);
    http_client_free(c);
    event_base_free(st.base);
    fixture_stop(&f);
    ck_assert_uint_eq(f.stats.connections_accepted, 1); /* one kept-alive connection */
    ck_assert_uint_eq(f.stats.requests, 50);
    ck_assert_uint_eq(f.stats.responses_2xx, 50);
}
END_TEST

struct one_state {
    struct event_base *base;
    int status;
    int calls;
    int64_t at;
};

static void one_cb(int status, const struct http_client_reply *reply, void *arg)
{
    struct one_state *st = arg;

    st->status = status;
    st->calls++;
    st->at = mono_ms();
    ck_assert_ptr_nonnull(reply->body);
    if (status < 0)
        ck_assert_ptr_null(reply->headers);
    event_base_loopbreak(st->base);
}

START_TEST(test_client_timeout)
{
    struct fixture f;
    struct one_state st = {0};
    struct http_client *c;
    int64_t start;

    fixture_start(&f, NULL);
    st.base = event_base_new();
    c = http_client_new(st.base, f.addr, 300, NULL);
    start = mono_ms();
    ck_assert_int_eq(http_client_request(c, EVHTTP_REQ_GET, "/hang", NULL, NULL, 0, one_cb, &st),
                     0);
    event_base_dispatch(st.base);
    ck_assert_int_eq(st.calls, 1);
    ck_assert_int_eq(st.status, -ETIMEDOUT);
    ck_assert_int_ge(st.at - start, 250);
    ck_assert_int_lt(st.at - start, 1500);

    /* The client stays usable after a timeout. */
    ck_assert_int_eq(http_client_request(c, EVHTTP_REQ_GET, "/hello", NULL, NULL, 0, one_cb, &st),
                     0);
    event_base_dispatch(st.base);
    ck_assert_int_eq(st.calls, 2);
    ck_assert_int_eq(st.status, 200);
    http_client_free(c);
    event_base_free(st.base);
    fixture_stop(&f);
}
END_TEST

struct cancel_state {
    struct http_client *client;
    int statuses[4];
    int calls;
};

static void cancel_cb(int status, const struct http_client_reply *reply, void *arg)
{
    struct cancel_state *st = arg;

    ck_assert_int_lt(st->calls, 4);
    st->statuses[st->calls++] = status;
}

static void free_in_cb(int status, const struct http_client_reply *reply, void *arg)
{
    struct cancel_state *st = arg;

    st->statuses[st->calls++] = status;
    if (st->calls == 1) {
        http_client_free(st->client);
        /* The second request was cancelled inside the call above. */
        ck_assert_int_eq(st->calls, 2);
    }
}

START_TEST(test_client_free_in_flight)
{
    struct fixture f;
    struct cancel_state st = {0};
    struct event_base *base;
    struct timeval tick = {0, 50000};

    fixture_start(&f, NULL);
    base = event_base_new();

    /* Freed from outside: every pending callback runs inside http_client_free. */
    st.client = http_client_new(base, f.addr, 2000, NULL);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(
            http_client_request(st.client, EVHTTP_REQ_GET, "/hang", NULL, NULL, 0, cancel_cb, &st),
            0);
    event_base_loopexit(base, &tick);
    event_base_dispatch(base); /* let them reach the server */
    ck_assert_int_eq(st.calls, 0);
    http_client_free(st.client);
    ck_assert_int_eq(st.calls, 3);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(st.statuses[i], -ECANCELED);

    /* Freed from inside a callback: the release is deferred to the loop. */
    memset(&st, 0, sizeof(st));
    st.client = http_client_new(base, f.addr, 2000, NULL);
    ck_assert_int_eq(
        http_client_request(st.client, EVHTTP_REQ_GET, "/hello", NULL, NULL, 0, free_in_cb, &st),
        0);
    ck_assert_int_eq(
        http_client_request(st.client, EVHTTP_REQ_GET, "/hello", NULL, NULL, 0, free_in_cb, &st),
        0);
    /* Until the first answer (a busy machine may take longer than one tick), at most 5 s. */
    for (int64_t start = mono_ms(); st.calls == 0 && mono_ms() - start < 5000;) {
        event_base_loopexit(base, &tick);
        event_base_dispatch(base);
    }
    ck_assert_int_eq(st.calls, 2);
    ck_assert_int_eq(st.statuses[0], 200);
    ck_assert_int_eq(st.statuses[1], -ECANCELED);
    event_base_free(base);
    fixture_stop(&f);
}
END_TEST


/*
 * A scripted HTTP/1.1 peer on a raw socket, in a thread: it answers "ok"
 * to each request, except as its mode says. It asserts nothing (Check
 * asserts belong to the test thread); the test reads its counters after
 * joining it.
 */
enum script_mode {
    SCRIPT_CLOSE_SECOND, /* first connection: answer one request, read the next, close */
    SCRIPT_SLOW,         /* answer every request delay_ms after reading it */
};

struct script_srv {
    int lfd;
    char addr[64];
    enum script_mode mode;
    unsigned delay_ms;
    int accepted, requests, answered;
    pthread_t th;
};

/* Reads one request (headers and Content-Length body); false on EOF or 3 s of silence. */
static bool script_read_request(int fd)
{
    char buf[8192];
    size_t got = 0;
    char *end;
    size_t need;

    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        ssize_t n;

        buf[got] = '\0';
        end = strstr(buf, "\r\n\r\n");
        if (end != NULL) {
            const char *cl = strcasestr(buf, "Content-Length:");

            need = (size_t)(end + 4 - buf) + (cl != NULL && cl < end ? strtoul(cl + 15, NULL, 10)
                                                                     : 0);
            if (got >= need)
                return true;
        }
        if (got + 1 >= sizeof(buf) || poll(&p, 1, 3000) <= 0)
            return false;
        n = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);
        if (n <= 0)
            return false;
        got += (size_t)n;
    }
}

static void script_answer(int fd)
{
    static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2"
                             "\r\n\r\nok";

    (void)!send(fd, ok, sizeof(ok) - 1, MSG_NOSIGNAL);
}

static void *script_thread(void *arg)
{
    struct script_srv *sv = arg;

    for (;;) {
        struct pollfd p = {.fd = sv->lfd, .events = POLLIN};
        int fd;

        if (poll(&p, 1, 3000) <= 0)
            break;
        fd = accept(sv->lfd, NULL, NULL);
        if (fd < 0)
            break;
        sv->accepted++;
        while (script_read_request(fd)) {
            sv->requests++;
            if (sv->mode == SCRIPT_CLOSE_SECOND && sv->accepted == 1 && sv->requests == 2)
                break; /* closes just as the second request arrives */
            if (sv->mode == SCRIPT_SLOW)
                sleep_ms(sv->delay_ms);
            script_answer(fd);
            sv->answered++;
        }
        close(fd);
        if (sv->mode == SCRIPT_SLOW)
            break;
    }
    return NULL;
}

static void script_start(struct script_srv *sv, enum script_mode mode, unsigned delay_ms)
{
    struct sockaddr_in sin = {.sin_family = AF_INET};
    socklen_t len = sizeof(sin);

    memset(sv, 0, sizeof(*sv));
    sv->mode = mode;
    sv->delay_ms = delay_ms;
    sv->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(sv->lfd, 0);
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    ck_assert_int_eq(bind(sv->lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    ck_assert_int_eq(listen(sv->lfd, 8), 0);
    ck_assert_int_eq(getsockname(sv->lfd, (struct sockaddr *)&sin, &len), 0);
    snprintf(sv->addr, sizeof(sv->addr), "127.0.0.1:%u", (unsigned)ntohs(sin.sin_port));
    ck_assert_int_eq(pthread_create(&sv->th, NULL, script_thread, sv), 0);
}

/* Stops the peer (its poll wakes and accept fails at once) instead of waiting out its 3 s. */
static void script_join(struct script_srv *sv)
{
    shutdown(sv->lfd, SHUT_RDWR);
    pthread_join(sv->th, NULL);
    close(sv->lfd);
}

/* Sends one request and runs the loop until its answer; returns the status. */
static int one_request(struct http_client *c, struct one_state *st, bool idempotent,
                       enum evhttp_cmd_type method, const char *path)
{
    int calls = st->calls;

    if (idempotent)
        ck_assert_int_eq(http_client_request_idempotent(c, method, path, NULL, NULL, 0, one_cb,
                                                        st),
                         0);
    else
        ck_assert_int_eq(http_client_request(c, method, path, NULL, NULL, 0, one_cb, st), 0);
    event_base_dispatch(st->base);
    ck_assert_int_eq(st->calls, calls + 1);
    return st->status;
}

/*
 * Issue 14, suspected: the peer closes an idle keep-alive connection just as
 * the next request goes out. A request safe to send twice is sent again on
 * a fresh connection; a plain POST is not (the peer may have acted on it).
 */
START_TEST(test_client_retry_fresh_connection)
{
    struct script_srv sv;
    struct one_state st = {0};
    struct http_client *c;
    int status;

    st.base = event_base_new();

    script_start(&sv, SCRIPT_CLOSE_SECOND, 0);
    c = http_client_new(st.base, sv.addr, 3000, NULL);
    ck_assert_int_eq(one_request(c, &st, false, EVHTTP_REQ_GET, "/a"), 200);
    ck_assert_int_eq(one_request(c, &st, false, EVHTTP_REQ_GET, "/b"), 200);
    http_client_free(c);
    script_join(&sv);
    ck_assert_int_eq(sv.accepted, 2);
    ck_assert_int_eq(sv.requests, 3); /* /b twice */

    script_start(&sv, SCRIPT_CLOSE_SECOND, 0);
    c = http_client_new(st.base, sv.addr, 3000, NULL);
    ck_assert_int_eq(one_request(c, &st, false, EVHTTP_REQ_POST, "/a"), 200);
    ck_assert_int_eq(one_request(c, &st, true, EVHTTP_REQ_POST, "/assign"), 200);
    http_client_free(c);
    script_join(&sv);
    ck_assert_int_eq(sv.accepted, 2);

    script_start(&sv, SCRIPT_CLOSE_SECOND, 0);
    c = http_client_new(st.base, sv.addr, 3000, NULL);
    ck_assert_int_eq(one_request(c, &st, false, EVHTTP_REQ_POST, "/a"), 200);
    status = one_request(c, &st, false, EVHTTP_REQ_POST, "/report");
    ck_assert_msg(status == -ECONNRESET || status == -EIO, "status %d", status);
    http_client_free(c);
    script_join(&sv);
    ck_assert_int_eq(sv.accepted, 1);
    event_base_free(st.base);
}
END_TEST

struct two_state {
    struct event_base *base;
    int status[2];
    int calls;
};

static void two_cb(int status, const struct http_client_reply *reply, void *arg)
{
    struct two_state *st = arg;

    st->status[st->calls++] = status;
    if (st->calls == 2)
        event_base_loopbreak(st->base);
}

/*
 * Issue 14, suspected: the deadline of a request waiting behind a slow one
 * on the single connection started when it was queued, so it timed out for
 * the slow one's sake (and the coordinator marked a healthy node SUSPECT).
 * Each answer takes 700 ms of a 1000 ms deadline: the second, sent when the
 * first is answered, is answered in time.
 */
START_TEST(test_client_deadline_from_send)
{
    struct script_srv sv;
    struct two_state st = {0};
    struct http_client *c;

    st.base = event_base_new();
    script_start(&sv, SCRIPT_SLOW, 700);
    c = http_client_new(st.base, sv.addr, 1000, NULL);
    ck_assert_int_eq(http_client_request(c, EVHTTP_REQ_GET, "/1", NULL, NULL, 0, two_cb, &st), 0);
    ck_assert_int_eq(http_client_request(c, EVHTTP_REQ_GET, "/2", NULL, NULL, 0, two_cb, &st), 0);
    event_base_dispatch(st.base);
    ck_assert_int_eq(st.calls, 2);
    ck_assert_int_eq(st.status[0], 200);
    ck_assert_int_eq(st.status[1], 200);
    http_client_free(c);
    script_join(&sv);
    ck_assert_int_eq(sv.answered, 2);

    /* A peer that does not answer in time: what waits behind fails with it. */
    event_base_free(st.base);
    memset(&st, 0, sizeof(st));
    st.base = event_base_new();
    script_start(&sv, SCRIPT_SLOW, 1500);
    c = http_client_new(st.base, sv.addr, 1000, NULL);
    ck_assert_int_eq(http_client_request(c, EVHTTP_REQ_GET, "/1", NULL, NULL, 0, two_cb, &st), 0);
    ck_assert_int_eq(http_client_request(c, EVHTTP_REQ_GET, "/2", NULL, NULL, 0, two_cb, &st), 0);
    event_base_dispatch(st.base);
    ck_assert_int_eq(st.calls, 2);
    ck_assert_int_eq(st.status[0], -ETIMEDOUT);
    ck_assert_int_eq(st.status[1], -ETIMEDOUT);
    http_client_free(c);
    script_join(&sv);
    ck_assert_int_eq(sv.requests, 1); /* the second was never sent */
    event_base_free(st.base);
}
END_TEST

START_TEST(test_fetch_errors)
{
    struct sockaddr_in sin = {.sin_family = AF_INET};
    socklen_t len = sizeof(sin);
    struct http_response r = {.status = 12345};
    char addr[64];
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int64_t start;

    /* A port that was free a moment ago: nothing listens there. */
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    close(fd);
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", (unsigned)ntohs(sin.sin_port));

    start = mono_ms();
    ck_assert_int_eq(http_fetch(addr, "GET", "/", NULL, NULL, 0, NULL, 2000, &r), -ECONNREFUSED);
    ck_assert_int_lt(mono_ms() - start, 1000);
    ck_assert_int_eq(r.status, 12345); /* untouched on failure */
    ck_assert_int_eq(http_fetch(addr, "PATCH", "/", NULL, NULL, 0, NULL, 2000, &r), -EINVAL);
    ck_assert_int_eq(http_fetch("nope", "GET", "/", NULL, NULL, 0, NULL, 2000, &r), -EINVAL);
    ck_assert_int_eq(http_fetch(addr, "GET", "nope", NULL, NULL, 0, NULL, 2000, &r), -EINVAL);
    http_response_done(NULL);
}
END_TEST

START_TEST(test_accept_backoff)
{
    struct fixture f;
    struct rlimit old, low;
    struct sockaddr_in sin = {.sin_family = AF_INET};
    char buf[2048];
    bool closed;
    int fd;

    fixture_start(&f, NULL);
    sin.sin_port = htons(f.port);
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    /* fd is the lowest free descriptor: with this limit accept(2) gets EMFILE. */
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
    low = old;
    low.rlim_cur = (rlim_t)fd + 1;
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    sleep_ms(100);
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &old), 0);

    /* Accepting resumes after the back-off and the queued connection is served. */
    raw_send(fd, "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 51);
    raw_read(fd, buf, sizeof(buf), 3000, &closed);
    close(fd);
    ck_assert_msg(strncmp(buf, "HTTP/1.1 200", 12) == 0, "got: %s", buf);
    fixture_stop(&f);
    ck_assert_uint_ge(f.stats.accept_backoffs, 1);
}
END_TEST

/*
 * The framer: a request with two Content-Length headers is refused with an
 * Error and the connection closed, so the request sent behind it never runs
 * (it would be counted in stats.requests). A well-framed pair runs both.
 */
START_TEST(test_framing_smuggle)
{
    static const char smuggled[] = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
    struct fixture f;
    char req[512], buf[4096];
    bool closed;
    int fd, n;

    fixture_start(&f, NULL);
    n = snprintf(req, sizeof(req),
                 "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
                 "Content-Length: %zu\r\n\r\n%s",
                 sizeof(smuggled) - 1, smuggled);
    fd = raw_connect(f.port);
    raw_send(fd, req, (size_t)n);
    raw_read(fd, buf, sizeof(buf), 2000, &closed);
    close(fd);
    ck_assert_msg(strncmp(buf, "HTTP/1.1 400", 12) == 0, "got: %s", buf);
    ck_assert_ptr_nonnull(strstr(buf, "\r\nX-Sluice-Error: Content-Length: sent more than once\r\n"));
    ck_assert_ptr_nonnull(strstr(buf, "\r\nContent-Type: application/x-protobuf\r\n"));
    ck_assert_ptr_null(strstr(buf + 12, "HTTP/1.1 "));
    ck_assert(closed);

    /* A chunk size written as 0x0, with the same request behind it. */
    n = snprintf(req, sizeof(req),
                 "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "0x0\r\n\r\n%s", smuggled);
    fd = raw_connect(f.port);
    raw_send(fd, req, (size_t)n);
    raw_read(fd, buf, sizeof(buf), 2000, &closed);
    close(fd);
    ck_assert_msg(strncmp(buf, "HTTP/1.1 400", 12) == 0, "got: %s", buf);
    ck_assert_ptr_null(strstr(buf + 12, "HTTP/1.1 "));
    ck_assert(closed);

    /* Control: well framed, both run on the one connection. */
    n = snprintf(req, sizeof(req), "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nab%s",
                 smuggled);
    fd = raw_connect(f.port);
    raw_send(fd, req, (size_t)n);
    raw_read(fd, buf, sizeof(buf), 500, &closed);
    close(fd);
    ck_assert_msg(strncmp(buf, "HTTP/1.1 200", 12) == 0, "got: %s", buf);
    ck_assert_ptr_nonnull(strstr(buf + 12, "HTTP/1.1 200"));
    fixture_stop(&f);
    ck_assert_uint_eq(f.stats.requests, 2); /* only the control pair was routed */
}
END_TEST

static Suite *http_suite(void)
{
    Suite *s = suite_create("http");
    const struct {
        const char *name;
        const TTest *test;
    } cases[] = {
        {"routing", test_routing},
        {"route_errors", test_route_errors},
        {"bind", test_bind},
        {"body_limit", test_body_limit},
        {"header_limit", test_header_limit},
        {"nul_in_uri", test_nul_in_uri},
        {"framing_smuggle", test_framing_smuggle},
        {"token", test_token},
        {"connection_cap", test_connection_cap},
        {"slowloris", test_slowloris},
        {"client_keepalive", test_client_keepalive},
        {"client_timeout", test_client_timeout},
        {"client_free_in_flight", test_client_free_in_flight},
        {"client_retry_fresh_connection", test_client_retry_fresh_connection},
        {"client_deadline_from_send", test_client_deadline_from_send},
        {"fetch_errors", test_fetch_errors},
        {"accept_backoff", test_accept_backoff},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        TCase *tc = tcase_create(cases[i].name);

        tcase_set_timeout(tc, 30);
        tcase_add_test(tc, cases[i].test);
        suite_add_tcase(s, tc);
    }
    return s;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    /* The server loop runs in a thread and is stopped from the test thread. */
    if (evthread_use_pthreads() != 0)
        return EXIT_FAILURE;
    return harness_run_suite(http_suite());
}
