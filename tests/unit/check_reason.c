/*
 * check_reason: the one reason table: names both ways, the HTTP status each
 * reason travels with, and the default Retry-After of each.
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>

#include "reason.h"
#include "suite.h"

/* The proto's names (sluice.v1.Reason, REASON_NONE shortened) and statuses. */
static const struct {
    enum wire_reason r;
    const char *name;
    int status;
    uint32_t retry_ms;
} want[] = {
    {WIRE_REASON_NONE, "NONE", 429, 0},
    {WIRE_REASON_DRAINING, "DRAINING", 503, 30000},
    {WIRE_REASON_MEM_CRITICAL, "MEM_CRITICAL", 429, 10000},
    {WIRE_REASON_MEM_PRESSURE, "MEM_PRESSURE", 429, 10000},
    {WIRE_REASON_MEM_THRASHING, "MEM_THRASHING", 429, 10000},
    {WIRE_REASON_MEM_CAPACITY, "MEM_CAPACITY", 429, 60000},
    {WIRE_REASON_LATENCY_SLO, "LATENCY_SLO", 429, 5000},
    {WIRE_REASON_LOAD_CONCURRENCY, "LOAD_CONCURRENCY", 429, 250},
    {WIRE_REASON_DISK_FULL, "DISK_FULL", 507, 300000},
    {WIRE_REASON_SEGMENT_INVALID, "SEGMENT_INVALID", 422, 0},
    {WIRE_REASON_MEM_EXHAUSTION, "MEM_EXHAUSTION", 429, 60000},
    {WIRE_REASON_OVER_LIMIT, "OVER_LIMIT", 429, 0},
};

START_TEST(test_names)
{
    ck_assert_int_eq(sizeof(want) / sizeof(want[0]), WIRE_REASON_COUNT_);
    for (unsigned i = 0; i < WIRE_REASON_COUNT_; i++) {
        ck_assert_int_eq(want[i].r, (int)i);
        ck_assert_str_eq(reason_name(want[i].r), want[i].name);
    }
    ck_assert_str_eq(reason_name(WIRE_REASON_COUNT_), "UNKNOWN");
    ck_assert_str_eq(reason_name((enum wire_reason)-1), "UNKNOWN");
}
END_TEST

START_TEST(test_parse)
{
    enum wire_reason r;

    for (unsigned i = 0; i < WIRE_REASON_COUNT_; i++) {
        r = WIRE_REASON_COUNT_;
        ck_assert_int_eq(reason_parse(want[i].name, &r), 0);
        ck_assert_int_eq(r, want[i].r);
    }
    r = WIRE_REASON_DISK_FULL;
    ck_assert_int_eq(reason_parse("mem_pressure", &r), -EINVAL);
    ck_assert_int_eq(reason_parse("UNKNOWN", &r), -EINVAL);
    ck_assert_int_eq(reason_parse("", &r), -EINVAL);
    ck_assert_int_eq(reason_parse("DISK_FULL ", &r), -EINVAL);
    ck_assert_int_eq(reason_parse(NULL, &r), -EINVAL);
    ck_assert_int_eq(r, WIRE_REASON_DISK_FULL); /* untouched on failure */
}
END_TEST

START_TEST(test_http_status)
{
    for (unsigned i = 0; i < WIRE_REASON_COUNT_; i++)
        ck_assert_msg(reason_http_status(want[i].r) == want[i].status, "%s: %d, want %d",
                      want[i].name, reason_http_status(want[i].r), want[i].status);
    ck_assert_int_eq(reason_http_status((enum wire_reason)77), 429);
}
END_TEST

START_TEST(test_retry_default)
{
    for (unsigned i = 0; i < WIRE_REASON_COUNT_; i++)
        ck_assert_msg(reason_retry_default_ms(want[i].r) == want[i].retry_ms, "%s: %u, want %u",
                      want[i].name, reason_retry_default_ms(want[i].r), want[i].retry_ms);
    ck_assert_uint_eq(reason_retry_default_ms((enum wire_reason)77), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("reason");
    TCase *names = tcase_create("names");
    TCase *status = tcase_create("status");

    tcase_add_test(names, test_names);
    tcase_add_test(names, test_parse);
    tcase_add_test(status, test_http_status);
    tcase_add_test(status, test_retry_default);
    suite_add_tcase(s, names);
    suite_add_tcase(s, status);
    return harness_run_suite(s);
}
