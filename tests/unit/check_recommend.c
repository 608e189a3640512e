/*
 * check_recommend: unit tests for coordinator/recommend, the VPA-style
 * recommender of declared memory per table. Pure: samples built by hand,
 * every figure computed here by hand from the rule in recommend.h.
 */
#include <check.h>
#include <stdint.h>
#include <string.h>

#include "recommend.h"
#include "suite.h"

#define MIB (1024ull * 1024ull)

/* Nearest rank: the smallest value with at least q x n values at or below it. */
START_TEST(test_percentile)
{
    uint64_t v[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    uint64_t one = 42;

    ck_assert_uint_eq(recommend_percentile(v, 10, 0.5), 5);
    ck_assert_uint_eq(recommend_percentile(v, 10, 0.9), 9);
    ck_assert_uint_eq(recommend_percentile(v, 10, 0.95), 10);
    ck_assert_uint_eq(recommend_percentile(v, 10, 1.0), 10);
    ck_assert_uint_eq(recommend_percentile(v, 10, 0.01), 1);
    ck_assert_uint_eq(recommend_percentile(v, 3, 0.5), 2);
    ck_assert_uint_eq(recommend_percentile(&one, 1, 0.9), 42);
}
END_TEST

/* x 1.15, rounded up to 4 KiB pages, capped so that it can be declared. */
START_TEST(test_margin)
{
    ck_assert_uint_eq(recommend_with_margin(0), 0);
    ck_assert_uint_eq(recommend_with_margin(1), 4096);
    ck_assert_uint_eq(recommend_with_margin(100 * MIB), 120586240); /* 115 MiB */
    ck_assert_uint_eq(recommend_with_margin(4096), 8192);            /* 4710.4 -> 2 pages */
    ck_assert_uint_eq(recommend_with_margin(UINT64_MAX), WIRE_MEM_DECLARED_MAX);
    ck_assert_uint_eq(recommend_with_margin(WIRE_MEM_DECLARED_MAX), WIRE_MEM_DECLARED_MAX);
}
END_TEST

/*
 * Twenty segments observed at 1..20 MiB (in shuffled order), each
 * estimated at half its footprint and declaring a request of 10 MiB and a
 * limit of 16 MiB; two more not observed yet.
 */
START_TEST(test_table)
{
    struct recommend_sample s[22];
    struct wire_recommendation r;
    static const int order[20] = {7, 3, 19, 1, 12, 20, 5, 9, 14, 2,
                                  18, 6, 11, 16, 4, 8, 13, 10, 17, 15};

    memset(s, 0, sizeof(s));
    for (int i = 0; i < 20; i++) {
        s[i].observed = (uint64_t)order[i] * MIB;
        s[i].estimate = s[i].observed / 2;
        s[i].request = 10 * MIB;
        s[i].limit = 16 * MIB;
        s[i].over_limit = s[i].observed > s[i].limit;
    }
    s[20].estimate = 7 * MIB; /* registered, not LOADED anywhere yet */
    s[21].estimate = 7 * MIB;
    memset(&r, 0x5a, sizeof(r));
    strcpy(r.table, "sales");
    recommend_table(s, 22, &r);
    ck_assert_str_eq(r.table, "sales");
    ck_assert_uint_eq(r.segments, 22);
    ck_assert_uint_eq(r.observed, 20);
    ck_assert_uint_eq(r.p50_bytes, 10 * MIB);
    ck_assert_uint_eq(r.p90_bytes, 18 * MIB);
    ck_assert_uint_eq(r.p95_bytes, 19 * MIB);
    ck_assert_uint_eq(r.max_bytes, 20 * MIB);
    /* 18 MiB x 1.15 = 21705523.2 -> 21708800 (5300 pages); 19 MiB x 1.15 -> 22913024. */
    ck_assert_uint_eq(r.request_bytes, 21708800);
    ck_assert_uint_eq(r.limit_bytes, 22913024);
    ck_assert_uint_eq(r.declared_request_bytes, 10 * MIB);
    ck_assert_uint_eq(r.declared_limit_bytes, 16 * MIB);
    /* Medians of observed / declared: 10/10 and 10/16; of observed / estimate: 2. */
    ck_assert_double_eq_tol(r.request_ratio, 1.0, 1e-9);
    ck_assert_double_eq_tol(r.limit_ratio, 0.625, 1e-9);
    ck_assert_double_eq_tol(r.estimate_ratio, 2.0, 1e-9);
    /* The median estimate counts the unobserved ones too: of 0.5..10 MiB and 7, 7, the 11th. */
    ck_assert_uint_eq(r.estimate_bytes, 11 * MIB / 2);
    ck_assert_uint_eq(r.over_limit, 4); /* 17..20 MiB */
}
END_TEST

/* Nothing observed, nothing declared: zeros, not garbage; no samples at all likewise. */
START_TEST(test_nothing_observed)
{
    struct recommend_sample s[2] = {{0, 1000, 0, 0, false}, {0, 3000, 0, 0, false}};
    struct wire_recommendation r;

    memset(&r, 0x5a, sizeof(r));
    strcpy(r.table, "t");
    recommend_table(s, 2, &r);
    ck_assert_uint_eq(r.segments, 2);
    ck_assert_uint_eq(r.observed, 0);
    ck_assert_uint_eq(r.p90_bytes, 0);
    ck_assert_uint_eq(r.request_bytes, 0);
    ck_assert_uint_eq(r.limit_bytes, 0);
    ck_assert_uint_eq(r.declared_request_bytes, 0);
    ck_assert_double_eq(r.request_ratio, 0);
    ck_assert_double_eq(r.estimate_ratio, 0);
    ck_assert_uint_eq(r.estimate_bytes, 1000);
    ck_assert_uint_eq(r.over_limit, 0);
    memset(&r, 0x5a, sizeof(r));
    strcpy(r.table, "empty");
    recommend_table(NULL, 0, &r);
    ck_assert_uint_eq(r.segments, 0);
    ck_assert_uint_eq(r.estimate_bytes, 0);
    ck_assert_str_eq(r.table, "empty");
}
END_TEST

/* One observed segment: every percentile is it; declarations only where made. */
START_TEST(test_single)
{
    struct recommend_sample s[2] = {{3 * MIB, 1 * MIB, 0, 4 * MIB, false},
                                    {0, 1 * MIB, 2 * MIB, 0, false}};
    struct wire_recommendation r;

    memset(&r, 0, sizeof(r));
    recommend_table(s, 2, &r);
    ck_assert_uint_eq(r.p50_bytes, 3 * MIB);
    ck_assert_uint_eq(r.p95_bytes, 3 * MIB);
    ck_assert_uint_eq(r.request_bytes, r.limit_bytes);
    ck_assert_uint_eq(r.declared_request_bytes, 2 * MIB); /* from the unobserved one */
    ck_assert_double_eq(r.request_ratio, 0);              /* no observed segment declares one */
    ck_assert_double_eq_tol(r.limit_ratio, 0.75, 1e-9);
    ck_assert_double_eq_tol(r.estimate_ratio, 3.0, 1e-9);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("recommend");
    TCase *tc = tcase_create("recommend");

    tcase_add_test(tc, test_percentile);
    tcase_add_test(tc, test_margin);
    tcase_add_test(tc, test_table);
    tcase_add_test(tc, test_nothing_observed);
    tcase_add_test(tc, test_single);
    suite_add_tcase(s, tc);
    return harness_run_suite(s);
}
