/*
 * check_farm: the farm's pure draws (node/farm.h). A virtual node's
 * footprints must be reproducible from the seed and the segment id alone,
 * differ from rows x avg_row_size, and follow the log-normal the flags ask
 * for; the simulated invalid files must be the asked-for fraction.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "farm.h"
#include "suite.h"

START_TEST(test_footprint_reproducible)
{
    /* Same seed and id: the same footprint, wherever and whenever. */
    ck_assert_uint_eq(farm_footprint(7, "seg-1", 100000, 1.5, 0.3),
                      farm_footprint(7, "seg-1", 100000, 1.5, 0.3));
    /* Another seed or another id: another draw. */
    ck_assert_uint_ne(farm_footprint(7, "seg-1", 100000, 1.5, 0.3),
                      farm_footprint(8, "seg-1", 100000, 1.5, 0.3));
    ck_assert_uint_ne(farm_footprint(7, "seg-1", 100000, 1.5, 0.3),
                      farm_footprint(7, "seg-2", 100000, 1.5, 0.3));
}
END_TEST

START_TEST(test_footprint_sigma_zero)
{
    /* No spread: exactly raw x median; at least 1 byte; saturates. */
    ck_assert_uint_eq(farm_footprint(1, "a", 100000, 1.5, 0), 150000);
    ck_assert_uint_eq(farm_footprint(1, "a", 0, 1.5, 0), 1);
    ck_assert_uint_eq(farm_footprint(1, "a", UINT64_MAX / 2, 100, 0), UINT64_MAX);
}
END_TEST

START_TEST(test_footprint_distribution)
{
    /* 20,000 ids: the log of footprint / raw has mean log(1.5) and sd 0.3. */
    double sum = 0, sq = 0;
    const int n = 20000;
    char id[32];

    for (int i = 0; i < n; i++) {
        double l;

        snprintf(id, sizeof(id), "seg-%06d", i);
        l = log((double)farm_footprint(3, id, 1000000, 1.5, 0.3) / 1e6);
        sum += l;
        sq += l * l;
    }
    ck_assert_double_eq_tol(sum / n, log(1.5), 0.01);
    ck_assert_double_eq_tol(sqrt(sq / n - (sum / n) * (sum / n)), 0.3, 0.01);
}
END_TEST

START_TEST(test_invalid_fraction)
{
    int hits = 0;
    char id[32];

    for (int i = 0; i < 10000; i++) {
        snprintf(id, sizeof(id), "seg-%06d", i);
        hits += farm_invalid(5, id, 0.1);
        ck_assert(!farm_invalid(5, id, 0));
        ck_assert(farm_invalid(5, id, 1));
    }
    ck_assert_int_gt(hits, 900);
    ck_assert_int_lt(hits, 1100);
}
END_TEST

static Suite *farm_suite(void)
{
    Suite *s = suite_create("farm");
    TCase *tc = tcase_create("footprint");

    tcase_add_test(tc, test_footprint_reproducible);
    tcase_add_test(tc, test_footprint_sigma_zero);
    tcase_add_test(tc, test_footprint_distribution);
    suite_add_tcase(s, tc);
    tc = tcase_create("invalid");
    tcase_add_test(tc, test_invalid_fraction);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return harness_run_suite(farm_suite());
}
