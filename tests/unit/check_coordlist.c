/*
 * check_coordlist: the --coordinator list (common/coordlist): parsing, the
 * rule that picks the next address (a standby's leader first, else the
 * next of the list, round and round; any answer but 503 stays), and the
 * blocking fetch's giving up on a list where nobody answers.
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "coordlist.h"
#include "http.h"
#include "suite.h"

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
    ck_assert(!coordlist_answer(l, 200, NULL));
    ck_assert(!coordlist_answer(l, 404, NULL));
    ck_assert(!coordlist_answer(l, 500, NULL));
    ck_assert(!coordlist_answer(l, 429, "b:2"));
    /* The client gave up on its own request: nothing learnt. */
    ck_assert(!coordlist_answer(l, -ECANCELED, NULL));
    ck_assert_str_eq(coordlist_current(l), "a:1");
    coordlist_free(l);
}
END_TEST

START_TEST(test_round_robin_on_failure)
{
    struct coordlist *l = parse_ok("a:1,b:2,c:3");

    ck_assert(coordlist_answer(l, -ECONNREFUSED, NULL));
    ck_assert_str_eq(coordlist_current(l), "b:2");
    ck_assert(coordlist_answer(l, -ETIMEDOUT, NULL));
    ck_assert_str_eq(coordlist_current(l), "c:3");
    /* A standby that knows no leader (an election under way): next. */
    ck_assert(coordlist_answer(l, 503, NULL));
    ck_assert_str_eq(coordlist_current(l), "a:1");
    /* A standby naming itself is no help either. */
    ck_assert(coordlist_answer(l, 503, "a:1"));
    ck_assert_str_eq(coordlist_current(l), "b:2");
    coordlist_free(l);
}
END_TEST

START_TEST(test_follow_leader)
{
    struct coordlist *l = parse_ok("a:1,b:2,c:3");

    /* A standby names a leader of the list: go there directly. */
    ck_assert(coordlist_answer(l, 503, "c:3"));
    ck_assert_str_eq(coordlist_current(l), "c:3");
    ck_assert(!coordlist_answer(l, 200, NULL));
    /* ... and one outside the list (a new address after a move): followed too. */
    ck_assert(coordlist_answer(l, 503, "d:4"));
    ck_assert_str_eq(coordlist_current(l), "d:4");
    ck_assert_uint_eq(coordlist_count(l), 3);
    /* When it fails, the list resumes where it was left. */
    ck_assert(coordlist_answer(l, -ECONNREFUSED, NULL));
    ck_assert_str_eq(coordlist_current(l), "c:3");
    ck_assert(coordlist_answer(l, -ECONNREFUSED, NULL));
    ck_assert_str_eq(coordlist_current(l), "a:1");
    /* A leader header that is not an address is ignored: the next of the list. */
    ck_assert(coordlist_answer(l, 503, "not an address"));
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
    suite_add_tcase(s, tc);
    return harness_run_suite(s);
}
