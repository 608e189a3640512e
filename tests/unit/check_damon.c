/*
 * check_damon: unit tests for node/damon on fixture trees only (never the
 * real /sys/kernel/mm/damon): the node's own kdamond is set up with the
 * expected writes where no kdamond exists; any existing kdamond (running or
 * not) is refused and left byte for byte as it was; the tried regions are
 * read and summed; a kdamond that stopped being the node's is neither read
 * nor stopped.
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>

#include "damon.h"
#include "fixture_tree.h"
#include "suite.h"

#define KD "kernel/mm/damon/admin/kdamonds"

static char root[64];

/* What the kernel would have made after the node's writes: kdamond 0's tree. */
static void kdamond_tree(const char *state)
{
    fixture_put(root, KD "/0/state", state);
    fixture_put(root, KD "/0/pid", "4242\n");
    fixture_put(root, KD "/0/contexts/nr_contexts", "0\n");
    fixture_put(root, KD "/0/contexts/0/operations", "paddr\n");
    fixture_put(root, KD "/0/contexts/0/targets/nr_targets", "0\n");
    fixture_put(root, KD "/0/contexts/0/targets/0/pid_target", "0\n");
    fixture_put(root, KD "/0/contexts/0/schemes/nr_schemes", "0\n");
    fixture_put(root, KD "/0/contexts/0/schemes/0/action", "pageout\n");
}

static void region(int i, const char *start, const char *end, const char *acc)
{
    char rel[200];

    snprintf(rel, sizeof(rel), KD "/0/contexts/0/schemes/0/tried_regions/%d/start", i);
    fixture_put(root, rel, start);
    snprintf(rel, sizeof(rel), KD "/0/contexts/0/schemes/0/tried_regions/%d/end", i);
    fixture_put(root, rel, end);
    snprintf(rel, sizeof(rel), KD "/0/contexts/0/schemes/0/tried_regions/%d/nr_accesses", i);
    fixture_put(root, rel, acc);
}

static void setup(void)
{
    fixture_new(root, sizeof(root), "check_damon");
}

static void teardown(void)
{
    fixture_remove(root);
}

#define ck_file(rel, want)                                                                         \
    do {                                                                                           \
        char buf_[256];                                                                            \
        ck_assert_str_eq(fixture_get(root, (rel), buf_, sizeof(buf_)), (want));                    \
    } while (0)

START_TEST(test_absent)
{
    struct damon_own own;
    char err[256] = "";

    ck_assert_int_eq(damon_start(root, 1234, &own, err, sizeof(err)), -ENOTSUP);
    ck_assert_ptr_nonnull(strstr(err, "no DAMON sysfs interface"));
    ck_assert_str_eq(own.dir, "");
}
END_TEST

START_TEST(test_foreign_untouched)
{
    static const char *states[] = {"on\n", "off\n"};
    struct damon_own own;
    char err[256];

    for (int i = 0; i < 2; i++) {
        fixture_put(root, KD "/nr_kdamonds", "1\n");
        kdamond_tree(states[i]);
        fixture_put(root, KD "/0/contexts/0/targets/0/pid_target", "1\n");
        ck_assert_int_eq(damon_start(root, 1234, &own, err, sizeof(err)), -EBUSY);
        ck_assert_msg(strstr(err, "did not create") != NULL, "%s", err);
        /* Nothing written: the machine's kdamond is as it was. */
        ck_file(KD "/nr_kdamonds", "1\n");
        ck_file(KD "/0/state", states[i]);
        ck_file(KD "/0/contexts/0/targets/0/pid_target", "1\n");
        ck_file(KD "/0/contexts/0/operations", "paddr\n");
        /* Stopping what was never started writes nothing either. */
        damon_stop(&own);
        ck_file(KD "/nr_kdamonds", "1\n");
        ck_file(KD "/0/state", states[i]);
    }
}
END_TEST

START_TEST(test_own_lifecycle)
{
    struct damon_own own;
    struct damon_wss w;
    char err[256] = "";

    fixture_put(root, KD "/nr_kdamonds", "0\n");
    kdamond_tree("off\n");
    ck_assert_msg(damon_start(root, 1234, &own, err, sizeof(err)) == 0, "%s", err);
    ck_file(KD "/nr_kdamonds", "1");
    ck_file(KD "/0/contexts/nr_contexts", "1");
    ck_file(KD "/0/contexts/0/operations", "vaddr");
    ck_file(KD "/0/contexts/0/targets/nr_targets", "1");
    ck_file(KD "/0/contexts/0/targets/0/pid_target", "1234");
    ck_file(KD "/0/contexts/0/schemes/nr_schemes", "1");
    ck_file(KD "/0/contexts/0/schemes/0/action", "stat");
    ck_file(KD "/0/state", "on");
    ck_assert_int_eq(own.target, 1234);
    ck_assert_int_eq(own.kdamond_pid, 4242);

    /* Three regions, two accessed; total_bytes (6.6+) is not a region. */
    region(0, "4096\n", "12288\n", "3\n");
    region(1, "12288\n", "20480\n", "0\n");
    region(2, "1048576\n", "2097152\n", "1\n");
    fixture_put(root, KD "/0/contexts/0/schemes/0/tried_regions/total_bytes", "1056768\n");
    ck_assert_msg(damon_read(&own, &w, err, sizeof(err)) == 0, "%s", err);
    ck_file(KD "/0/state", "update_schemes_tried_regions");
    ck_assert_uint_eq(w.regions, 3);
    ck_assert_uint_eq(w.accessed_bytes, 8192 + 1048576);
    ck_assert_uint_eq(w.total_bytes, 8192 + 8192 + 1048576);

    /* A region that ends before it starts is an error. */
    region(3, "9000\n", "100\n", "1\n");
    ck_assert_int_eq(damon_read(&own, &w, err, sizeof(err)), -EIO);
    ck_assert_ptr_nonnull(strstr(err, "end before start"));
    region(3, "9000\n", "9000\n", "1\n");

    damon_stop(&own);
    ck_file(KD "/0/state", "off");
    ck_file(KD "/nr_kdamonds", "0");
    ck_assert_str_eq(own.dir, "");
}
END_TEST

START_TEST(test_no_longer_ours)
{
    struct damon_own own;
    struct damon_wss w;
    char err[256] = "";

    fixture_put(root, KD "/nr_kdamonds", "0\n");
    kdamond_tree("off\n");
    ck_assert_int_eq(damon_start(root, 1234, &own, err, sizeof(err)), 0);
    /* Someone else rebuilt kdamond 0 for another process (or restarted it). */
    fixture_put(root, KD "/0/contexts/0/targets/0/pid_target", "999\n");
    fixture_put(root, KD "/0/state", "on\n");
    ck_assert_int_eq(damon_read(&own, &w, err, sizeof(err)), -ESTALE);
    ck_file(KD "/0/state", "on\n");
    damon_stop(&own);
    ck_file(KD "/0/state", "on\n");
    ck_file(KD "/nr_kdamonds", "1");
    /* The same with only its worker pid changed. */
    fixture_put(root, KD "/nr_kdamonds", "0\n");
    kdamond_tree("off\n");
    ck_assert_int_eq(damon_start(root, 1234, &own, err, sizeof(err)), 0);
    fixture_put(root, KD "/0/pid", "5555\n");
    ck_assert_int_eq(damon_read(&own, &w, err, sizeof(err)), -ESTALE);
    ck_file(KD "/0/state", "on");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("damon");
    TCase *tc = tcase_create("damon");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_absent);
    tcase_add_test(tc, test_foreign_untouched);
    tcase_add_test(tc, test_own_lifecycle);
    tcase_add_test(tc, test_no_longer_ours);
    suite_add_tcase(s, tc);
    return harness_run_suite(s);
}
