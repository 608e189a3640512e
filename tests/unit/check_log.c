/*
 * check_log: the one quoting function for log values (log_quote, log_q),
 * and what log_write puts on stderr: one line per call, whatever the values
 * hold. Peer text (ids, URIs, details) reaches the logs only through these.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "suite.h"

static const char *q(const char *s)
{
    static char buf[256];

    return log_quote(buf, sizeof(buf), s);
}

START_TEST(test_bare)
{
    /* What ids, numbers and plain paths look like: unchanged, no quotes. */
    ck_assert_str_eq(q("seg-0001"), "seg-0001");
    ck_assert_str_eq(q("file:///data/a.seg"), "file:///data/a.seg");
    ck_assert_str_eq(q("127.0.0.1:7100"), "127.0.0.1:7100");
    ck_assert_str_eq(q("-1"), "-1");
}
END_TEST

START_TEST(test_quoted)
{
    ck_assert_str_eq(q(""), "\"\"");
    ck_assert_str_eq(q(NULL), "\"\"");
    ck_assert_str_eq(q("no such file"), "\"no such file\"");
    ck_assert_str_eq(q("a=b"), "\"a=b\"");
    ck_assert_str_eq(q("say \"hi\""), "\"say \\\"hi\\\"\"");
    ck_assert_str_eq(q("C:\\x"), "\"C:\\\\x\"");
}
END_TEST

START_TEST(test_control_bytes)
{
    ck_assert_str_eq(q("a\nb"), "\"a\\nb\"");
    ck_assert_str_eq(q("a\r\tb"), "\"a\\r\\tb\"");
    ck_assert_str_eq(q("\x01\x1f\x7f"), "\"\\x01\\x1f\\x7f\"");
    /* Bytes above ASCII (UTF-8 or not) are escaped too: the log stays ASCII. */
    ck_assert_str_eq(q("caf\xc3\xa9"), "\"caf\\xc3\\xa9\"");
}
END_TEST

/* A forged field or line stays inside one quoted value. */
START_TEST(test_forgery)
{
    const char *evil = "x.seg level=error event=admin\nts=2026 level=info event=forged";
    const char *r = q(evil);

    ck_assert_ptr_null(strchr(r, '\n'));
    ck_assert_str_eq(r, "\"x.seg level=error event=admin\\nts=2026 level=info event=forged\"");
}
END_TEST

START_TEST(test_truncation)
{
    char buf[12];
    char tiny[4];

    /* Too long to be bare: quoted and cut with "...". */
    ck_assert_str_eq(log_quote(buf, sizeof(buf), "abcdefghijklmnop"), "\"abcdef...\"");
    ck_assert_uint_lt(strlen(buf), sizeof(buf));
    /* An escape is never cut in half. */
    ck_assert_str_eq(log_quote(buf, sizeof(buf), "abcde\x01zzzzzz"), "\"abcde...\"");
    /* Exactly fitting: no dots. */
    ck_assert_str_eq(log_quote(buf, sizeof(buf), "a b c d e"), "\"a b c d e\"");
    ck_assert_str_eq(log_quote(tiny, sizeof(tiny), "abcdef"), "\".\"");
    ck_assert_str_eq(log_quote(tiny, 3, "abcdef"), "\"\"");
    tiny[0] = 'x';
    ck_assert_str_eq(log_quote(tiny, 2, "abcdef"), "");
    /* log_q has room for a whole URI, however escaped. */
    {
        char uri[1025];
        const char *r;

        memset(uri, '\n', 1024);
        uri[1024] = '\0';
        r = log_q(uri);
        /* 797 whole "\n" escapes: 1 + 1594 + 3 + 1 bytes, and the NUL. */
        ck_assert_uint_eq(strlen(r), LOG_QUOTE_MAX - 1);
        ck_assert_str_eq(r + strlen(r) - 6, "\\n...\"");
    }
}
END_TEST

/* Runs log_write with stderr on a pipe; returns what it wrote (static). */
static const char *captured(const char *id, const char *uri)
{
    static char out[4096];
    int fds[2], saved;
    ssize_t n;

    ck_assert_int_eq(pipe(fds), 0);
    saved = dup(STDERR_FILENO);
    ck_assert_int_ge(saved, 0);
    ck_assert_int_ge(dup2(fds[1], STDERR_FILENO), 0);
    log_info("segment_state", "id=%s uri=%s", log_q(id), log_q(uri));
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(fds[1]);
    n = read(fds[0], out, sizeof(out) - 1);
    close(fds[0]);
    ck_assert_int_gt(n, 0);
    out[n] = '\0';
    return out;
}

START_TEST(test_one_line)
{
    const char *line = captured("s1", "file:///d/a\nts=x level=error event=forged.seg");
    const char *nl = strchr(line, '\n');

    ck_assert_ptr_nonnull(nl);
    ck_assert_int_eq(nl[1], '\0'); /* exactly one line */
    ck_assert_ptr_nonnull(strstr(line, " event=segment_state id=s1 uri=\"file:///d/a\\nts=x "));
    /* A value that skipped log_q is still kept on its line. */
    {
        int fds[2], saved;
        char out[512];
        ssize_t n;

        ck_assert_int_eq(pipe(fds), 0);
        saved = dup(STDERR_FILENO);
        dup2(fds[1], STDERR_FILENO);
        log_info("raw", "detail=%s", "a\nb\rc");
        dup2(saved, STDERR_FILENO);
        close(saved);
        close(fds[1]);
        n = read(fds[0], out, sizeof(out) - 1);
        close(fds[0]);
        ck_assert_int_gt(n, 0);
        out[n] = '\0';
        ck_assert_ptr_nonnull(strstr(out, "detail=a?b?c\n"));
        ck_assert_int_eq(out[n - 1], '\n');
        ck_assert_ptr_eq(strchr(out, '\n'), out + n - 1);
    }
}
END_TEST

static Suite *log_suite(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("quote");

    tcase_add_test(tc, test_bare);
    tcase_add_test(tc, test_quoted);
    tcase_add_test(tc, test_control_bytes);
    tcase_add_test(tc, test_forgery);
    tcase_add_test(tc, test_truncation);
    suite_add_tcase(s, tc);
    tc = tcase_create("write");
    tcase_add_test(tc, test_one_line);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return harness_run_suite(log_suite());
}
