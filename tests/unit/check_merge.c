/*
 * check_merge: coordinator/merge alone. Each aggregate merged from pieces
 * (one node's answer over several segments) equals what the direct
 * per-segment answers give: counts and int64 sums exactly (with
 * wrap-around), min and max with NaN greatest, float sums bit for bit with
 * one piece per segment and within the documented bound when pieces group
 * segments; missing segments named, bad pieces refused without
 * a change.
 */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "merge.h"
#include "suite.h"

static struct wire_query_response ians(uint64_t matched, int64_t v)
{
    struct wire_query_response r;

    memset(&r, 0, sizeof(r));
    r.rows_matched = matched;
    r.rows_scanned = matched * 2;
    r.bytes_scanned = matched * 16;
    r.blocks_skipped = 1;
    r.int_value = v;
    return r;
}

static struct wire_query_response fans(uint64_t matched, double v)
{
    struct wire_query_response r = ians(matched, 0);

    r.is_float = true;
    r.float_value = v;
    return r;
}

static void add_ok(struct merge *m, struct wire_query_response r, const size_t *segs, size_t n)
{
    ck_assert_int_eq(merge_add(m, &r, segs, n), 0);
}

static struct wire_query_response result(const struct merge *m)
{
    struct wire_query_response r;

    ck_assert_int_eq(merge_result(m, false, &r), 0);
    return r;
}

/* A node's float sum over segments: added to +0.0 in the request's order. */
static double fold(const double *s, const size_t *segs, size_t n)
{
    double acc = +0.0;

    for (size_t i = 0; i < n; i++)
        acc += s[segs[i]];
    return acc;
}

START_TEST(test_count_and_counters)
{
    struct merge *m = merge_new(WIRE_AGG_COUNT, 5);
    const size_t a[] = {0, 2}, b[] = {1}, c[] = {3, 4};
    struct wire_query_response r;

    add_ok(m, ians(7, 7), a, 2);
    add_ok(m, ians(0, 0), b, 1);
    add_ok(m, ians(1000, 1000), c, 2);
    r = result(m);
    ck_assert_int_eq(r.int_value, 1007);
    ck_assert_uint_eq(r.rows_matched, 1007);
    ck_assert_uint_eq(r.rows_scanned, 2014);
    ck_assert_uint_eq(r.bytes_scanned, 1007 * 16);
    ck_assert_uint_eq(r.blocks_skipped, 3);
    ck_assert(!r.is_float);
    merge_free(m);
}
END_TEST

START_TEST(test_int_sum_wraps)
{
    /* INT64_MAX + 1 + INT64_MAX + (-5): what a node summing the rows gives. */
    struct merge *m = merge_new(WIRE_AGG_SUM, 4);
    const size_t a[] = {0}, b[] = {1, 3}, c[] = {2};
    uint64_t direct = 0;
    const int64_t per_seg[] = {INT64_MAX, 1, INT64_MAX, -5};

    for (size_t i = 0; i < 4; i++)
        direct += (uint64_t)per_seg[i];
    add_ok(m, ians(1, INT64_MAX), a, 1);
    add_ok(m, ians(2, (int64_t)((uint64_t)1 + (uint64_t)-5)), b, 2);
    ck_assert(!merge_complete(m));
    add_ok(m, ians(1, INT64_MAX), c, 1);
    ck_assert(merge_complete(m));
    ck_assert_int_eq(result(m).int_value, (int64_t)direct);
    ck_assert_int_eq(result(m).int_value, -6); /* 2*(2^63-1) + 1 - 5 mod 2^64 */
    merge_free(m);

    /* One step past INT64_MAX wraps to INT64_MIN. */
    m = merge_new(WIRE_AGG_SUM, 2);
    add_ok(m, ians(1, INT64_MAX), a, 1);
    add_ok(m, ians(1, 1), b, 1);
    ck_assert_int_eq(result(m).int_value, INT64_MIN);
    merge_free(m);
}
END_TEST

START_TEST(test_min_max_int)
{
    /* A piece without matched rows answers 0; it must not win the min. */
    struct merge *mn = merge_new(WIRE_AGG_MIN, 3), *mx = merge_new(WIRE_AGG_MAX, 3);
    const size_t a[] = {0}, b[] = {1}, c[] = {2};

    add_ok(mn, ians(3, 5), a, 1);
    add_ok(mn, ians(0, 0), b, 1);
    add_ok(mn, ians(2, 9), c, 1);
    ck_assert_int_eq(result(mn).int_value, 5);
    add_ok(mx, ians(3, -5), a, 1);
    add_ok(mx, ians(0, 0), b, 1);
    add_ok(mx, ians(2, -9), c, 1);
    ck_assert_int_eq(result(mx).int_value, -5);
    merge_free(mn);
    merge_free(mx);

    /* No matched row anywhere: 0, as a node answers. */
    mn = merge_new(WIRE_AGG_MIN, 1);
    add_ok(mn, ians(0, 0), a, 1);
    ck_assert_int_eq(result(mn).int_value, 0);
    ck_assert_uint_eq(result(mn).rows_matched, 0);
    merge_free(mn);
}
END_TEST

START_TEST(test_min_max_float_nan)
{
    const size_t a[] = {0}, b[] = {1}, c[] = {2};
    struct merge *mn = merge_new(WIRE_AGG_MIN, 3), *mx = merge_new(WIRE_AGG_MAX, 3);
    struct wire_query_response r;

    /* Segment 1's rows are all NaN: its MIN is NaN, but others have numbers. */
    add_ok(mn, fans(2, -1.5), a, 1);
    add_ok(mn, fans(4, NAN), b, 1);
    add_ok(mn, fans(0, 0.0), c, 1);
    r = result(mn);
    ck_assert(r.is_float);
    ck_assert(r.float_value == -1.5);
    /* MAX is NaN as soon as one segment's is. */
    add_ok(mx, fans(2, INFINITY), a, 1);
    add_ok(mx, fans(4, NAN), b, 1);
    add_ok(mx, fans(1, 3.0), c, 1);
    ck_assert(isnan(result(mx).float_value));
    merge_free(mn);
    merge_free(mx);

    /* MIN is NaN only when every matched row is. */
    mn = merge_new(WIRE_AGG_MIN, 2);
    add_ok(mn, fans(1, NAN), a, 1);
    add_ok(mn, fans(3, NAN), b, 1);
    ck_assert(isnan(result(mn).float_value));
    merge_free(mn);
    /* MAX over numbers and -inf. */
    mx = merge_new(WIRE_AGG_MAX, 2);
    add_ok(mx, fans(1, -INFINITY), a, 1);
    add_ok(mx, fans(1, -7.25), b, 1);
    ck_assert(result(mx).float_value == -7.25);
    merge_free(mx);
}
END_TEST

/* Per-segment sums of very different magnitudes, where order matters. */
static void fill_sums(double *s, size_t n, unsigned seed)
{
    srand(seed);
    for (size_t i = 0; i < n; i++) {
        double mag = ldexp(1.0, (rand() % 80) - 20);
        s[i] = (rand() % 2 ? mag : -mag) * ((double)rand() / RAND_MAX + 0.5);
    }
}

START_TEST(test_float_sum_per_segment_bit_exact)
{
    /*
     * One piece per segment, arriving in a shuffled order (replicas answer
     * when they answer): bit for bit the direct fold in the query's order.
     */
    enum { N = 64 };
    double s[N];
    size_t all[N], order[N];

    for (size_t i = 0; i < N; i++)
        all[i] = i;
    for (unsigned seed = 1; seed <= 200; seed++) {
        struct merge *m = merge_new(WIRE_AGG_SUM, N);
        double direct, got;

        fill_sums(s, N, seed);
        direct = fold(s, all, N);
        for (size_t i = 0; i < N; i++)
            order[i] = i;
        for (size_t i = N - 1; i > 0; i--) {
            size_t j = (size_t)rand() % (i + 1), t = order[i];

            order[i] = order[j];
            order[j] = t;
        }
        for (size_t i = 0; i < N; i++)
            add_ok(m, fans(1, s[order[i]]), &all[order[i]], 1);
        got = result(m).float_value;
        ck_assert_mem_eq(&got, &direct, sizeof(got));
        merge_free(m);

        /* One piece over all of them: the node's own answer, unchanged. */
        m = merge_new(WIRE_AGG_SUM, N);
        add_ok(m, fans(N, direct), all, N);
        got = result(m).float_value;
        ck_assert_mem_eq(&got, &direct, sizeof(got));
        merge_free(m);
    }
}
END_TEST

START_TEST(test_float_sum_grouped_bound)
{
    /*
     * Pieces over several segments (alternate segments, or runs): another
     * summation order. The answer is the pieces' sums added in the order of
     * their first segments, within 2 * gamma(n-1) * sum|r_i| of the direct
     * fold, and some seeds do differ (the bound, not equality, is the contract).
     */
    enum { N = 32 };
    double s[N];
    size_t even[N / 2], odd[N / 2], all[N];
    unsigned differ = 0;
    const double u = ldexp(1.0, -53), gamma = (N - 1) * u / (1 - (N - 1) * u);

    for (size_t i = 0; i < N; i++)
        all[i] = i;
    for (size_t i = 0; i < N / 2; i++) {
        even[i] = 2 * i;
        odd[i] = 2 * i + 1;
    }
    for (unsigned seed = 1; seed <= 500; seed++) {
        struct merge *m = merge_new(WIRE_AGG_SUM, N);
        double direct, got, abs_sum = 0, p0, p1;

        fill_sums(s, N, seed);
        for (size_t i = 0; i < N; i++)
            abs_sum += fabs(s[i]);
        direct = fold(s, all, N);
        add_ok(m, fans(N / 2, fold(s, odd, N / 2)), odd, N / 2);
        add_ok(m, fans(N / 2, fold(s, even, N / 2)), even, N / 2);
        got = result(m).float_value;
        ck_assert(got == (+0.0 + fold(s, even, N / 2)) + fold(s, odd, N / 2));
        ck_assert(fabs(got - direct) <= 2 * gamma * abs_sum);
        differ += got != direct;
        merge_free(m);

        /* Two runs, [0, 10) and [10, N), the second arriving first. */
        m = merge_new(WIRE_AGG_SUM, N);
        p0 = fold(s, all, 10);
        p1 = fold(s, all + 10, N - 10);
        add_ok(m, fans(N - 10, p1), all + 10, N - 10);
        add_ok(m, fans(10, p0), all, 10);
        got = result(m).float_value;
        ck_assert(got == (+0.0 + p0) + p1);
        ck_assert(fabs(got - direct) <= 2 * gamma * abs_sum);
        differ += got != direct;
        merge_free(m);
    }
    ck_assert_uint_gt(differ, 0);

    /* By hand: runs {0} and {1, 2} over 2^53, 1, 1 regroup the additions. */
    {
        struct merge *m = merge_new(WIRE_AGG_SUM, 3);
        const size_t a[] = {0}, bc[] = {1, 2};
        const double big = ldexp(1.0, 53);

        add_ok(m, fans(1, big), a, 1);
        add_ok(m, fans(2, 2.0), bc, 2);
        ck_assert(result(m).float_value == big + 2.0);
        ck_assert(((+0.0 + big) + 1.0) + 1.0 == big); /* the direct fold */
        merge_free(m);
    }
}
END_TEST

START_TEST(test_float_sum_special)
{
    const size_t a[] = {0}, b[] = {1};
    struct merge *m = merge_new(WIRE_AGG_SUM, 2);

    add_ok(m, fans(1, INFINITY), a, 1);
    add_ok(m, fans(1, -INFINITY), b, 1);
    ck_assert(isnan(result(m).float_value));
    merge_free(m);
    /* -0.0 + -0.0 from +0.0: +0.0, as a node's lanes start at +0.0. */
    m = merge_new(WIRE_AGG_SUM, 2);
    add_ok(m, fans(1, -0.0), a, 1);
    add_ok(m, fans(1, -0.0), b, 1);
    ck_assert(!signbit(result(m).float_value));
    merge_free(m);
}
END_TEST

START_TEST(test_missing_and_partial)
{
    struct merge *m = merge_new(WIRE_AGG_SUM, 6);
    const size_t a[] = {0, 3}, b[] = {5};
    size_t miss[8];
    struct wire_query_response r;

    add_ok(m, ians(2, 10), a, 2);
    add_ok(m, ians(1, 5), b, 1);
    ck_assert(!merge_complete(m));
    r.int_value = 99;
    ck_assert_int_eq(merge_result(m, false, &r), -ENODATA);
    ck_assert_int_eq(r.int_value, 99); /* untouched */
    ck_assert_uint_eq(merge_missing(m, miss, 8), 3);
    ck_assert_uint_eq(miss[0], 1);
    ck_assert_uint_eq(miss[1], 2);
    ck_assert_uint_eq(miss[2], 4);
    /* A short buffer still gets the count. */
    ck_assert_uint_eq(merge_missing(m, miss, 1), 3);
    ck_assert_uint_eq(miss[0], 1);
    ck_assert_int_eq(merge_result(m, true, &r), 0);
    ck_assert_int_eq(r.int_value, 15);
    ck_assert_uint_eq(r.rows_matched, 3);
    merge_free(m);
}
END_TEST

START_TEST(test_empty)
{
    struct merge *m = merge_new(WIRE_AGG_SUM, 0);
    struct wire_query_response r;
    const size_t a[] = {0};

    ck_assert(merge_complete(m));
    ck_assert_uint_eq(merge_missing(m, NULL, 0), 0);
    r = result(m);
    ck_assert_int_eq(r.int_value, 0);
    ck_assert_uint_eq(r.rows_matched, 0);
    ck_assert_uint_eq(r.rows_scanned, 0);
    r = ians(1, 1);
    ck_assert_int_eq(merge_add(m, &r, a, 1), -EINVAL); /* no segment 0 */
    merge_free(m);
    merge_free(NULL);
}
END_TEST

START_TEST(test_bad_pieces_change_nothing)
{
    struct merge *m = merge_new(WIRE_AGG_SUM, 4);
    const size_t a[] = {0, 1}, unsorted[] = {3, 2}, dup[] = {2, 2}, past[] = {2, 4},
                 over[] = {1, 2};
    struct wire_query_response r = ians(2, 40), f = fans(1, 1.0), partial;

    add_ok(m, r, a, 2);
    ck_assert_int_eq(merge_add(m, &r, unsorted, 2), -EINVAL);
    ck_assert_int_eq(merge_add(m, &r, dup, 2), -EINVAL);
    ck_assert_int_eq(merge_add(m, &r, past, 2), -EINVAL);
    ck_assert_int_eq(merge_add(m, &r, a, 0), -EINVAL);
    ck_assert_int_eq(merge_add(m, &f, past, 1), -EINVAL); /* float after int */
    ck_assert_int_eq(merge_add(m, &r, over, 2), -EEXIST); /* segment 1 again (a hedge) */
    ck_assert_int_eq(merge_result(m, true, &partial), 0);
    ck_assert_int_eq(partial.int_value, 40);
    ck_assert_uint_eq(partial.rows_matched, 2);
    ck_assert_uint_eq(merge_missing(m, NULL, 0), 2); /* 2 and 3 still missing */
    merge_free(m);

    /* COUNT answers are never float. */
    m = merge_new(WIRE_AGG_COUNT, 1);
    ck_assert_int_eq(merge_add(m, &f, a, 1), -EINVAL);
    merge_free(m);
}
END_TEST

static Suite *merge_suite(void)
{
    Suite *s = suite_create("merge");
    TCase *tc;

    tc = tcase_create("count");
    tcase_add_test(tc, test_count_and_counters);
    suite_add_tcase(s, tc);
    tc = tcase_create("int_sum");
    tcase_add_test(tc, test_int_sum_wraps);
    suite_add_tcase(s, tc);
    tc = tcase_create("min_max");
    tcase_add_test(tc, test_min_max_int);
    tcase_add_test(tc, test_min_max_float_nan);
    suite_add_tcase(s, tc);
    tc = tcase_create("float_sum");
    tcase_add_test(tc, test_float_sum_per_segment_bit_exact);
    tcase_add_test(tc, test_float_sum_grouped_bound);
    tcase_add_test(tc, test_float_sum_special);
    suite_add_tcase(s, tc);
    tc = tcase_create("missing");
    tcase_add_test(tc, test_missing_and_partial);
    tcase_add_test(tc, test_empty);
    tcase_add_test(tc, test_bad_pieces_change_nothing);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return harness_run_suite(merge_suite());
}
