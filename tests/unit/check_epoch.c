/*
 * check_epoch: the node's fence against a deposed coordinator (node/epoch):
 * a higher epoch is taken, an equal one accepted, a lower one refused with
 * both epochs named, and epoch 0 (no election, SQLite) always accepted
 * without lowering anything; the fence kept in a file survives a restart
 * (a new fence loaded from it refuses what the old one would), and a file
 * that is not a number refuses the start.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "epoch.h"
#include "suite.h"

/* Reads a small file into buf; "" if it cannot. */
static void slurp(const char *path, char *buf, size_t size)
{
    FILE *f = fopen(path, "re");
    size_t n = f != NULL ? fread(buf, 1, size - 1, f) : 0;

    buf[n] = '\0';
    if (f != NULL)
        fclose(f);
}

START_TEST(test_persisted)
{
    char dir[] = "/tmp/check_epoch_XXXXXX", path[600], text[64], err[600] = "";
    struct epoch_fence f = {0}, again = {0};

    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/epoch", dir);
    /* No file yet: a node that never saw an election. */
    ck_assert_int_eq(epoch_fence_load(&f, dir, err, sizeof(err)), 0);
    ck_assert_uint_eq(f.highest, 0);
    ck_assert_int_eq(access(path, F_OK), -1);
    ck_assert_int_eq(epoch_admit(&f, 4, NULL, 0), 0);
    slurp(path, text, sizeof(text));
    ck_assert_str_eq(text, "4\n");
    /* A lower or equal epoch writes nothing; epoch 0 neither. */
    ck_assert_int_eq(epoch_admit(&f, 2, NULL, 0), -ESTALE);
    ck_assert_int_eq(epoch_admit(&f, 0, NULL, 0), 0);
    slurp(path, text, sizeof(text));
    ck_assert_str_eq(text, "4\n");
    ck_assert_int_eq(epoch_admit(&f, 6, NULL, 0), 0);
    ck_assert_uint_eq(f.save_failed, 0);

    /* The node restarts: the new fence refuses the old leader at once. */
    ck_assert_int_eq(epoch_fence_load(&again, dir, err, sizeof(err)), 0);
    ck_assert_uint_eq(again.highest, 6);
    ck_assert_int_eq(epoch_admit(&again, 5, NULL, 0), -ESTALE);
    ck_assert_int_eq(epoch_admit(&again, 6, NULL, 0), 0);

    /* A file that is not a number: the start is refused, naming it. */
    {
        FILE *w = fopen(path, "we");

        ck_assert_ptr_nonnull(w);
        fputs("six\n", w);
        fclose(w);
    }
    memset(&again, 0, sizeof(again));
    ck_assert_int_eq(epoch_fence_load(&again, dir, err, sizeof(err)), -EINVAL);
    ck_assert_msg(strstr(err, path) != NULL && strstr(err, "not an epoch") != NULL, "%s", err);
    unlink(path);
    rmdir(dir);
}
END_TEST

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
    tc = tcase_create("persisted");
    tcase_add_test(tc, test_persisted);
    suite_add_tcase(s, tc);
    return harness_run_suite(s);
}
