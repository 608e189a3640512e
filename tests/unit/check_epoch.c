/*
 * check_epoch: the node's fence against a deposed coordinator (node/epoch):
 * a higher epoch is taken, an equal one accepted, a lower one refused with
 * both epochs named, and epoch 0 (no election, SQLite) always accepted
 * without lowering anything.
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "epoch.h"
#include "suite.h"

START_TEST(test_higher_taken)
{
    struct epoch_fence f = {0};
    char why[256] = "";

    ck_assert_int_eq(epoch_admit(&f, 3, why, sizeof(why)), 0);
    ck_assert_uint_eq(f.highest, 3);
    ck_assert_int_eq(epoch_admit(&f, 3, why, sizeof(why)), 0);
    ck_assert_int_eq(epoch_admit(&f, 7, why, sizeof(why)), 0);
    ck_assert_uint_eq(f.highest, 7);
    ck_assert_uint_eq(f.refused, 0);
    ck_assert_str_eq(why, "");
}
END_TEST

START_TEST(test_lower_refused)
{
    struct epoch_fence f = {0};
    char why[256] = "";

    ck_assert_int_eq(epoch_admit(&f, 5, why, sizeof(why)), 0);
    ck_assert_int_eq(epoch_admit(&f, 4, why, sizeof(why)), -ESTALE);
    ck_assert_str_eq(why, "coordinator epoch 4 is older than epoch 5, the newest leader this "
                          "node has seen: refused from a deposed coordinator");
    ck_assert_uint_eq(f.highest, 5); /* a refusal lowers nothing */
    ck_assert_uint_eq(f.refused, 1);
    ck_assert_int_eq(epoch_admit(&f, 1, NULL, 0), -ESTALE);
    ck_assert_uint_eq(f.refused, 2);
    /* The new leader's next message still passes. */
    ck_assert_int_eq(epoch_admit(&f, 5, why, sizeof(why)), 0);
}
END_TEST

START_TEST(test_zero_unfenced)
{
    struct epoch_fence f = {0};

    ck_assert_int_eq(epoch_admit(&f, 0, NULL, 0), 0);
    ck_assert_uint_eq(f.highest, 0);
    ck_assert_int_eq(epoch_admit(&f, 9, NULL, 0), 0);
    ck_assert_int_eq(epoch_admit(&f, 0, NULL, 0), 0);
    ck_assert_uint_eq(f.highest, 9);
    ck_assert_uint_eq(f.refused, 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("epoch");
    TCase *tc = tcase_create("admit");

    tcase_add_test(tc, test_higher_taken);
    tcase_add_test(tc, test_lower_refused);
    tcase_add_test(tc, test_zero_unfenced);
    suite_add_tcase(s, tc);
    return harness_run_suite(s);
}
