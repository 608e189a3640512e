/*
 * check_framer: the strict request framing in front of evhttp. Each input is
 * fed whole and again one byte at a time, and both must agree: how many
 * requests pass, and the status of the refusal. What passes is the input's
 * prefix, unchanged.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "framer.h"
#include "suite.h"

#define GET "GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n"

struct outcome {
    int passed;  /* requests passed on */
    int status;  /* 0, or the refusal's status */
    size_t out;  /* bytes passed on */
    char msg[160];
};

static struct outcome feed(const char *in, size_t len, size_t step, size_t max_body)
{
    struct framer *f = framer_new(max_body, 16384);
    struct evbuffer *src = evbuffer_new(), *dst = evbuffer_new();
    struct outcome o = {0};

    for (size_t off = 0; off < len; off += step) {
        size_t n = len - off < step ? len - off : step;
        int r;

        evbuffer_add(src, in + off, n);
        r = framer_feed(f, src, dst);
        ck_assert_uint_eq(evbuffer_get_length(src), 0); /* every byte is taken */
        if (r == -EPROTO) {
            ck_assert(framer_failed(f));
            ck_assert_int_eq(o.status, 0); /* refused once */
            o.status = framer_status(f);
            snprintf(o.msg, sizeof(o.msg), "%s", framer_message(f));
        } else {
            ck_assert_int_ge(r, 0);
        }
    }
    o.passed = (int)framer_passed(f);
    o.out = evbuffer_get_length(dst);
    ck_assert_msg(o.out <= len && (o.out == 0 || memcmp(evbuffer_pullup(dst, -1), in, o.out) == 0),
                  "what passed is not the input's prefix");
    evbuffer_free(src);
    evbuffer_free(dst);
    framer_free(f);
    return o;
}

/* Feeds whole and byte by byte; both must give passed and status. */
static struct outcome expect(const char *in, size_t len, int passed, int status)
{
    struct outcome whole = feed(in, len, len > 0 ? len : 1, 1024);
    struct outcome bytes = feed(in, len, 1, 1024);

    ck_assert_msg(whole.passed == passed && whole.status == status,
                  "%.60s: passed %d status %d (%s), want %d %d", in, whole.passed, whole.status,
                  whole.msg, passed, status);
    ck_assert_int_eq(bytes.passed, whole.passed);
    ck_assert_int_eq(bytes.status, whole.status);
    ck_assert_uint_eq(bytes.out, whole.out);
    return whole;
}

#define EXPECT(s, passed, status) expect((s), sizeof(s) - 1, (passed), (status))

START_TEST(test_well_framed)
{
    struct outcome o;

    o = EXPECT(GET GET, 2, 0);
    ck_assert_uint_eq(o.out, 2 * strlen(GET));
    EXPECT("POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc" GET, 2, 0);
    EXPECT("POST /a HTTP/1.1\r\ncontent-length:  3 \r\n\r\nabc", 1, 0);
    EXPECT("POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0A\r\n"
           "0123456789\r\n0\r\n\r\n" GET, 2, 0);
    EXPECT("DELETE /v1/segments/x?y=1 HTTP/1.0\r\nExpect: 100-continue\r\n\r\n", 1, 0);
    /* Incomplete: nothing passes yet, nothing is refused. */
    o = EXPECT("POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nab", 0, 0);
    ck_assert_uint_eq(o.out, 0);
    EXPECT(GET "GET /b HTTP/1.1\r\n", 1, 0);
}
END_TEST

START_TEST(test_smuggling)
{
    struct outcome o;

    /* The first of them passes nothing of the second: the stream ends at the refusal. */
    o = EXPECT(GET "POST /a HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: 5\r\n\r\n" GET, 1,
               400);
    ck_assert_str_eq(o.msg, "Content-Length: sent more than once");
    ck_assert_uint_eq(o.out, strlen(GET));
    EXPECT("POST /a HTTP/1.1\r\nContent-Length: +0\r\n\r\n" GET, 0, 400);
    EXPECT("POST /a HTTP/1.1\r\nContent-Length: 0x0\r\n\r\n" GET, 0, 400);
    EXPECT("POST /a HTTP/1.1\r\nContent-Length: 12345678901234567890\r\n\r\n", 0, 400);
    EXPECT("POST /a HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 0, 400);
    EXPECT("POST /a HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 0, 400);
    EXPECT("POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
           0, 400);
    for (int i = 0; i < 5; i++) {
        static const char *const sizes[] = {"0x0", "+0", "-0", " 0", "0;ext"};
        char buf[256];
        int n = snprintf(buf, sizeof(buf),
                         "POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n%s\r\n\r\n" GET,
                         sizes[i]);

        o = expect(buf, (size_t)n, 0, 400);
        ck_assert_msg(strncmp(o.msg, "chunk size: ", 12) == 0, "%s", o.msg);
    }
    EXPECT("POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n0\r\n\r\n", 0, 400);
    EXPECT("POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: y\r\n\r\n", 0, 400);
}
END_TEST

START_TEST(test_head_syntax)
{
    static const char nul[] = "GET / HTTP/1.1\0junk\r\n\r\n";
    struct outcome o;

    o = expect(nul, sizeof(nul) - 1, 0, 400);
    ck_assert_str_eq(o.msg, "request line: NUL byte at offset 14");
    EXPECT("GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n", 0, 400);        /* obs-fold */
    EXPECT("GET / HTTP/1.1\r\nX : a\r\n\r\n", 0, 400);             /* space before ':' */
    EXPECT("GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", 0, 400);           /* bare CR */
    EXPECT("GET / HTTP/1.1\nX: a\r\n\r\n", 0, 400);                /* bare LF */
    EXPECT("GET / HTTP/1.2\r\n\r\n", 0, 400);
    EXPECT("GET  / HTTP/1.1\r\n\r\n", 0, 400);
    EXPECT("GET /a b HTTP/1.1\r\n\r\n", 0, 400);
    EXPECT("GET //h:1/a HTTP/1.1\r\n\r\n", 0, 400);
    EXPECT("GET /a#b HTTP/1.1\r\n\r\n", 0, 400);
    EXPECT("GET http://h/a HTTP/1.1\r\n\r\n", 0, 400);
    EXPECT("\r\n" GET, 0, 400);
    EXPECT("PUT / HTTP/1.1\r\n\r\n", 0, 501);
    EXPECT("GET / HTTP/1.1\r\nExpect: 200-ok\r\n\r\n", 0, 417);
}
END_TEST

START_TEST(test_sizes)
{
    char *big = malloc(20000);
    size_t n;
    struct outcome o;

    /* A request line of FRAMER_LINE_MAX bytes: 414, also before its end arrives. */
    n = (size_t)snprintf(big, 20000, "GET /%0*d", (int)FRAMER_LINE_MAX, 0);
    o = expect(big, n, 0, 414);
    /* A header line as long: 431. */
    n = (size_t)snprintf(big, 20000, "GET / HTTP/1.1\r\nX: %0*d\r\n\r\n", (int)FRAMER_LINE_MAX, 0);
    expect(big, n, 0, 431);
    /* More than 100 fields. */
    n = (size_t)snprintf(big, 20000, "GET / HTTP/1.1\r\n");
    for (unsigned i = 0; i <= FRAMER_HEADER_COUNT_MAX; i++)
        n += (size_t)snprintf(big + n, 20000 - n, "X%u: v\r\n", i);
    n += (size_t)snprintf(big + n, 20000 - n, "\r\n");
    expect(big, n, 0, 431);
    /* 100 fields is fine. */
    n = (size_t)snprintf(big, 20000, "GET / HTTP/1.1\r\n");
    for (unsigned i = 1; i < FRAMER_HEADER_COUNT_MAX; i++)
        n += (size_t)snprintf(big + n, 20000 - n, "X%u: v\r\n", i);
    n += (size_t)snprintf(big + n, 20000 - n, "Host: x\r\n\r\n");
    expect(big, n, 1, 0);
    /* More head than max_headers (16384) in short lines. */
    n = (size_t)snprintf(big, 20000, "GET / HTTP/1.1\r\n");
    for (unsigned i = 0; i < 80; i++)
        n += (size_t)snprintf(big + n, 20000 - n, "X%u: %0*d\r\n", i, 200, 0);
    n += (size_t)snprintf(big + n, 20000 - n, "\r\n");
    expect(big, n, 0, 431);
    /* Bodies over max_body (1024 here): by Content-Length, and by the chunks' sum. */
    o = EXPECT("POST /a HTTP/1.1\r\nContent-Length: 1025\r\n\r\n", 0, 413);
    ck_assert_str_eq(o.msg, "body: 1025 bytes, the limit is 1024");
    EXPECT("POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n200\r\n", 0, 0);
    n = (size_t)snprintf(big, 20000, "POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                                     "200\r\n%0512d\r\n200\r\n%0512d\r\n1\r\n",
                         0, 0);
    expect(big, n, 0, 413);
    free(big);
}
END_TEST

static Suite *framer_suite(void)
{
    Suite *s = suite_create("framer");
    TCase *tc;

    tc = tcase_create("well_framed");
    tcase_add_test(tc, test_well_framed);
    suite_add_tcase(s, tc);
    tc = tcase_create("smuggling");
    tcase_add_test(tc, test_smuggling);
    suite_add_tcase(s, tc);
    tc = tcase_create("head_syntax");
    tcase_add_test(tc, test_head_syntax);
    suite_add_tcase(s, tc);
    tc = tcase_create("sizes");
    tcase_add_test(tc, test_sizes);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return harness_run_suite(framer_suite());
}
