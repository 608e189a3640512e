/*
 * check_histogram: unit tests for common/histogram. Quantiles are checked
 * against exact nearest-rank quantiles of sorted arrays for several shapes of
 * data, with the documented bound: the answer is never below the true value
 * and never more than 2^-HISTOGRAM_SUB_BITS above it. Also the bucket layout,
 * empty and single-value histograms, merging and the overflow clamp.
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "histogram.h"
#include "suite.h"

/* A fixed xorshift generator so failures reproduce. */
static uint64_t test_rng_state = 0x2545F4914F6CDD1DULL;

static uint64_t test_rng(void)
{
    test_rng_state ^= test_rng_state << 13;
    test_rng_state ^= test_rng_state >> 7;
    test_rng_state ^= test_rng_state << 17;
    return test_rng_state;
}

/* Uniform in (0, 1]. */
static double test_unit(void)
{
    return (double)((test_rng() >> 11) + 1) / 9007199254740992.0;
}

static int test_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* Quantiles as permille, so the exact rank is integer arithmetic. */
static const unsigned test_permille[] = {0, 1, 100, 250, 500, 900, 990, 999, 1000};

/*
 * Records values[0..n) and checks every quantile in test_permille against the
 * sorted array: within [min, max], not below the exact value, at most 2^-5 of
 * it above, and exact at q = 0 and q = 1.
 */
static void test_check_quantiles(uint64_t *values, size_t n)
{
    struct histogram *h = malloc(sizeof(*h));

    ck_assert_ptr_nonnull(h);
    histogram_reset(h);
    for (size_t i = 0; i < n; i++)
        histogram_record(h, values[i]);
    qsort(values, n, sizeof(values[0]), test_cmp_u64);
    ck_assert_uint_eq(h->total, n);
    ck_assert_uint_eq(h->min, values[0]);
    ck_assert_uint_eq(h->max, values[n - 1]);
    for (size_t j = 0; j < sizeof(test_permille) / sizeof(test_permille[0]); j++) {
        unsigned pm = test_permille[j];
        size_t rank = (n * pm + 999) / 1000;
        uint64_t exact, got;

        if (rank < 1)
            rank = 1;
        exact = values[rank - 1];
        got = histogram_quantile(h, pm / 1000.0);
        ck_assert_msg(got >= exact && (got - exact) <= (exact >> HISTOGRAM_SUB_BITS),
                      "q=%u/1000 n=%zu: got %llu, exact %llu", pm, n, (unsigned long long)got,
                      (unsigned long long)exact);
        ck_assert_uint_ge(got, h->min);
        ck_assert_uint_le(got, h->max);
        if (pm == 0)
            ck_assert_uint_eq(got, values[0]);
        if (pm == 1000)
            ck_assert_uint_eq(got, values[n - 1]);
    }
    free(h);
}

START_TEST(test_bucket_layout)
{
    size_t nb = histogram_bucket_count();
    struct histogram *h = malloc(sizeof(*h));

    ck_assert_ptr_nonnull(h);
    ck_assert_uint_eq(nb, HISTOGRAM_BUCKETS);
    ck_assert_uint_eq(nb, 1152);
    ck_assert_uint_eq(histogram_bucket_upper(0), 0);
    ck_assert_uint_eq(histogram_bucket_upper(63), 63);
    ck_assert_uint_eq(histogram_bucket_upper(64), 65);
    ck_assert_uint_eq(histogram_bucket_upper(nb - 1), HISTOGRAM_MAX_VALUE);
    for (size_t i = 0; i < nb; i++) {
        uint64_t upper = histogram_bucket_upper(i);
        uint64_t lower = i == 0 ? 0 : histogram_bucket_upper(i - 1) + 1;
        uint64_t width = upper - lower + 1;

        ck_assert_uint_ge(upper, lower);
        /* Exact below 64, then no wider than 2^-SUB_BITS of the bucket's values. */
        if (i < 64)
            ck_assert_uint_eq(width, 1);
        else
            ck_assert_uint_le(width << HISTOGRAM_SUB_BITS, lower);
        /* Both ends of the bucket land in it. */
        histogram_reset(h);
        histogram_record(h, lower);
        histogram_record(h, upper);
        ck_assert_uint_eq(h->counts[i], 2);
    }
    free(h);
}
END_TEST

START_TEST(test_empty)
{
    struct histogram h, zero;

    memset(&h, 0xa5, sizeof(h));
    histogram_reset(&h);
    memset(&zero, 0, sizeof(zero));
    ck_assert_int_eq(memcmp(&h, &zero, sizeof(h)), 0);
    ck_assert_uint_eq(histogram_quantile(&h, 0.0), 0);
    ck_assert_uint_eq(histogram_quantile(&h, 0.5), 0);
    ck_assert_uint_eq(histogram_quantile(&h, 1.0), 0);
}
END_TEST

START_TEST(test_single_value)
{
    struct histogram h;

    histogram_reset(&h);
    histogram_record(&h, 1234567);
    ck_assert_uint_eq(h.total, 1);
    ck_assert_uint_eq(h.sum, 1234567);
    ck_assert_uint_eq(h.min, 1234567);
    ck_assert_uint_eq(h.max, 1234567);
    /* The bucket is ~38k wide, but min and max pin the answer down. */
    ck_assert_uint_eq(histogram_quantile(&h, 0.0), 1234567);
    ck_assert_uint_eq(histogram_quantile(&h, 0.5), 1234567);
    ck_assert_uint_eq(histogram_quantile(&h, 0.99), 1234567);
    ck_assert_uint_eq(histogram_quantile(&h, 1.0), 1234567);
    /* Out-of-range q is clamped rather than trusted. */
    ck_assert_uint_eq(histogram_quantile(&h, -1.0), 1234567);
    ck_assert_uint_eq(histogram_quantile(&h, 2.0), 1234567);
    ck_assert_uint_eq(histogram_quantile(&h, NAN), 1234567);

    histogram_reset(&h);
    histogram_record(&h, 0);
    ck_assert_uint_eq(h.counts[0], 1);
    ck_assert_uint_eq(histogram_quantile(&h, 0.5), 0);
}
END_TEST

START_TEST(test_small_values_exact)
{
    struct histogram h;

    histogram_reset(&h);
    for (uint64_t v = 1; v <= 50; v++)
        histogram_record(&h, v);
    ck_assert_uint_eq(histogram_quantile(&h, 0.5), 25);
    ck_assert_uint_eq(histogram_quantile(&h, 0.9), 45);
    ck_assert_uint_eq(histogram_quantile(&h, 0.02), 1);
    ck_assert_uint_eq(histogram_quantile(&h, 0.021), 2);
    /* 0.07 * 100 is 7.000000000000001 in binary; the rank is still 7. */
    histogram_reset(&h);
    for (uint64_t v = 1; v <= 100; v++)
        histogram_record(&h, v);
    ck_assert_uint_eq(histogram_quantile(&h, 0.07), 7);
    ck_assert_uint_eq(histogram_quantile(&h, 0.57), 57);
}
END_TEST

START_TEST(test_uniform)
{
    enum { N = 100000 };
    uint64_t *v = malloc(N * sizeof(*v));

    ck_assert_ptr_nonnull(v);
    for (size_t i = 0; i < N; i++)
        v[i] = test_rng() % 1000000000u; /* up to 1 s */
    test_check_quantiles(v, N);
    /* Narrow range with small values, where the exact buckets matter. */
    for (size_t i = 0; i < N; i++)
        v[i] = test_rng() % 200u;
    test_check_quantiles(v, N);
    free(v);
}
END_TEST

START_TEST(test_exponential)
{
    enum { N = 100000 };
    uint64_t *v = malloc(N * sizeof(*v));

    ck_assert_ptr_nonnull(v);
    /* Mean 2 ms with a long tail: what request latencies look like. */
    for (size_t i = 0; i < N; i++)
        v[i] = (uint64_t)(-log(test_unit()) * 2e6);
    test_check_quantiles(v, N);
    /* Log-uniform over 10 decades: every bucket width gets exercised. */
    for (size_t i = 0; i < N; i++)
        v[i] = (uint64_t)pow(10.0, 1.0 + 10.0 * test_unit());
    test_check_quantiles(v, N);
    free(v);
}
END_TEST

START_TEST(test_constant)
{
    enum { N = 1000 };
    uint64_t v[N];
    struct histogram h;

    for (size_t i = 0; i < N; i++)
        v[i] = 5000000;
    test_check_quantiles(v, N);
    histogram_reset(&h);
    for (size_t i = 0; i < N; i++)
        histogram_record(&h, 5000000);
    ck_assert_uint_eq(histogram_quantile(&h, 0.5), 5000000);
    ck_assert_uint_eq(histogram_quantile(&h, 0.999), 5000000);
    ck_assert_uint_eq(h.sum, 5000000000u);
}
END_TEST

START_TEST(test_bimodal)
{
    enum { N = 20000 };
    uint64_t *v = malloc(N * sizeof(*v));

    ck_assert_ptr_nonnull(v);
    /* 95% cache hits around 100 us, 5% misses around 50 ms. */
    for (size_t i = 0; i < N; i++) {
        if (test_rng() % 100 < 95)
            v[i] = 90000 + test_rng() % 20000;
        else
            v[i] = 45000000 + test_rng() % 10000000;
    }
    test_check_quantiles(v, N);
    /* Small N, where a rank lands on a boundary between the modes. */
    for (size_t i = 0; i < 10; i++)
        v[i] = i < 9 ? 100 : 1000000000;
    test_check_quantiles(v, 10);
    free(v);
}
END_TEST

START_TEST(test_merge)
{
    struct histogram *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b)), *all = malloc(sizeof(*all));
    struct histogram *empty = malloc(sizeof(*empty));

    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_ptr_nonnull(all);
    ck_assert_ptr_nonnull(empty);
    histogram_reset(a);
    histogram_reset(b);
    histogram_reset(all);
    histogram_reset(empty);
    for (int i = 0; i < 5000; i++) {
        uint64_t x = test_rng() % 10000000u + 1000;
        uint64_t y = test_rng() >> (test_rng() % 64); /* includes overflow */

        histogram_record(a, x);
        histogram_record(b, y);
        histogram_record(all, x);
        histogram_record(all, y);
    }
    histogram_merge(a, b);
    ck_assert_int_eq(memcmp(a, all, sizeof(*a)), 0);
    /* Merging an empty histogram changes nothing, into one copies. */
    histogram_merge(a, empty);
    ck_assert_int_eq(memcmp(a, all, sizeof(*a)), 0);
    histogram_merge(empty, all);
    ck_assert_int_eq(memcmp(empty, all, sizeof(*a)), 0);
    /* min comes from src when dst's is larger. */
    histogram_reset(a);
    histogram_reset(b);
    histogram_record(a, 500);
    histogram_record(b, 7);
    histogram_merge(a, b);
    ck_assert_uint_eq(a->min, 7);
    ck_assert_uint_eq(a->max, 500);
    ck_assert_uint_eq(a->sum, 507);
    free(a);
    free(b);
    free(all);
    free(empty);
}
END_TEST

START_TEST(test_overflow)
{
    struct histogram h;
    size_t last = histogram_bucket_count() - 1;

    histogram_reset(&h);
    histogram_record(&h, 5);
    histogram_record(&h, HISTOGRAM_MAX_VALUE);
    ck_assert_uint_eq(h.overflow, 0);
    ck_assert_uint_eq(h.counts[last], 1);
    histogram_record(&h, HISTOGRAM_MAX_VALUE + 1);
    histogram_record(&h, UINT64_C(1) << 50);
    histogram_record(&h, UINT64_MAX);
    ck_assert_uint_eq(h.total, 5);
    ck_assert_uint_eq(h.overflow, 3);
    ck_assert_uint_eq(h.counts[last], 4);
    ck_assert_uint_eq(h.max, UINT64_MAX);
    ck_assert_uint_eq(h.sum, UINT64_MAX); /* saturated, not wrapped */
    ck_assert_uint_eq(histogram_quantile(&h, 1.0), UINT64_MAX);
    ck_assert_uint_eq(histogram_quantile(&h, 0.0), 5);
    /* Rank 3 of 5 is an overflowed value: reported as the top of the range. */
    ck_assert_uint_eq(histogram_quantile(&h, 0.5), HISTOGRAM_MAX_VALUE);
}
END_TEST

static Suite *histogram_suite(void)
{
    Suite *s = suite_create("histogram");
    TCase *tc;

    tc = tcase_create("bucket_layout");
    tcase_add_test(tc, test_bucket_layout);
    suite_add_tcase(s, tc);
    tc = tcase_create("empty");
    tcase_add_test(tc, test_empty);
    suite_add_tcase(s, tc);
    tc = tcase_create("single_value");
    tcase_add_test(tc, test_single_value);
    suite_add_tcase(s, tc);
    tc = tcase_create("small_values_exact");
    tcase_add_test(tc, test_small_values_exact);
    suite_add_tcase(s, tc);
    tc = tcase_create("uniform");
    tcase_add_test(tc, test_uniform);
    suite_add_tcase(s, tc);
    tc = tcase_create("exponential");
    tcase_add_test(tc, test_exponential);
    suite_add_tcase(s, tc);
    tc = tcase_create("constant");
    tcase_add_test(tc, test_constant);
    suite_add_tcase(s, tc);
    tc = tcase_create("bimodal");
    tcase_add_test(tc, test_bimodal);
    suite_add_tcase(s, tc);
    tc = tcase_create("merge");
    tcase_add_test(tc, test_merge);
    suite_add_tcase(s, tc);
    tc = tcase_create("overflow");
    tcase_add_test(tc, test_overflow);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return harness_run_suite(histogram_suite());
}
