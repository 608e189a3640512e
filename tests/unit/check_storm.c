/*
 * check_storm: coordinator/storm alone (no loop, no catalog): identical
 * events fold into the first one's row within the interval, a different
 * node, reason or kind opens a row of its own, an ended interval's count is
 * still written once, and a drain writes only what changed.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include "storm.h"
#include "suite.h"

/* What storm_drain() wrote, in order. */
struct written {
    unsigned n;
    uint64_t row[16], count[16];
    int64_t last[16];
};

static int write_cb(uint64_t row, uint64_t count, int64_t last_wall_ms, void *arg)
{
    struct written *w = arg;

    ck_assert_uint_lt(w->n, 16);
    w->row[w->n] = row;
    w->count[w->n] = count;
    w->last[w->n] = last_wall_ms;
    w->n++;
    return 0;
}

/* The count drained for row, 0 if it was not written. */
static uint64_t count_of(const struct written *w, uint64_t row)
{
    for (unsigned i = 0; i < w->n; i++)
        if (w->row[i] == row)
            return w->count[i];
    return 0;
}

START_TEST(test_fold_same_key)
{
    struct storm *s = storm_new(1000);
    struct written w = {0};
    uint64_t row = 0;

    ck_assert(!storm_fold(s, "refused", "n1", 7, 100, 5000, &row));
    storm_open(s, "refused", "n1", 7, 100, 41);
    for (unsigned i = 1; i < 50; i++) {
        row = 0;
        ck_assert(storm_fold(s, "refused", "n1", 7, 100 + i * 10, 5000 + i * 10, &row));
        ck_assert_uint_eq(row, 41);
    }
    ck_assert_uint_eq(storm_folded_total(s), 49);
    ck_assert_int_eq(storm_drain(s, 700, write_cb, &w), 0);
    ck_assert_uint_eq(w.n, 1);
    ck_assert_uint_eq(w.row[0], 41);
    ck_assert_uint_eq(w.count[0], 50);
    ck_assert_int_eq(w.last[0], 5000 + 49 * 10);
    /* Nothing new: nothing written again; the interval is still open. */
    w.n = 0;
    ck_assert_int_eq(storm_drain(s, 800, write_cb, &w), 0);
    ck_assert_uint_eq(w.n, 0);
    ck_assert_uint_eq(storm_open_count(s), 1);
    storm_free(s);
}
END_TEST

START_TEST(test_keys_apart)
{
    struct storm *s = storm_new(1000);
    uint64_t row = 0;

    storm_open(s, "refused", "n1", 7, 0, 1);
    /* Another node, reason or kind is another row. */
    ck_assert(!storm_fold(s, "refused", "n2", 7, 10, 10, &row));
    ck_assert(!storm_fold(s, "refused", "n1", 5, 10, 10, &row));
    ck_assert(!storm_fold(s, "backoff", "n1", 7, 10, 10, &row));
    /* No node and the empty node are the same key. */
    storm_open(s, "backoff", NULL, 0, 0, 2);
    ck_assert(storm_fold(s, "backoff", "", 0, 10, 10, &row));
    ck_assert_uint_eq(row, 2);
    /* A node id that looks like a joined key does not collide. */
    ck_assert(!storm_fold(s, "refused", "n1\x1f" "7", 0, 10, 10, &row));
    storm_free(s);
}
END_TEST

START_TEST(test_interval_ends)
{
    struct storm *s = storm_new(1000);
    struct written w = {0};
    uint64_t row = 0;

    storm_open(s, "refused", "n1", 7, 0, 1);
    ck_assert(storm_fold(s, "refused", "n1", 7, 999, 999, &row));
    /* At start + interval a new interval begins, with a row of its own ... */
    ck_assert(!storm_fold(s, "refused", "n1", 7, 1000, 1000, &row));
    storm_open(s, "refused", "n1", 7, 1000, 2);
    ck_assert(storm_fold(s, "refused", "n1", 7, 1001, 1001, &row));
    ck_assert_uint_eq(row, 2);
    /* ... and the ended one's count, never drained, is still written. */
    ck_assert_int_eq(storm_drain(s, 1002, write_cb, &w), 0);
    ck_assert_uint_eq(w.n, 2);
    ck_assert_uint_eq(count_of(&w, 1), 2);
    ck_assert_uint_eq(count_of(&w, 2), 2);
    /* The ended one is forgotten after its write, the open one kept. */
    ck_assert_uint_eq(storm_open_count(s), 1);
    /* A drain after the end forgets the last one. */
    w.n = 0;
    ck_assert_int_eq(storm_drain(s, 5000, write_cb, &w), 0);
    ck_assert_uint_eq(w.n, 0);
    ck_assert_uint_eq(storm_open_count(s), 0);
    ck_assert(!storm_fold(s, "refused", "n1", 7, 5001, 5001, &row));
    storm_free(s);
}
END_TEST

/* A writer that fails: the drain stops and the count stays owed. */
static int fail_cb(uint64_t row, uint64_t count, int64_t last_wall_ms, void *arg)
{
    return -5;
}

START_TEST(test_failed_write_kept)
{
    struct storm *s = storm_new(1000);
    struct written w = {0};
    uint64_t row;

    storm_open(s, "refused", "n1", 7, 0, 9);
    ck_assert(storm_fold(s, "refused", "n1", 7, 1, 1, &row));
    ck_assert_int_eq(storm_drain(s, 2, fail_cb, NULL), -5);
    ck_assert_int_eq(storm_drain(s, 3, write_cb, &w), 0);
    ck_assert_uint_eq(count_of(&w, 9), 2);
    storm_free(s);
}
END_TEST

START_TEST(test_reset_and_off)
{
    struct storm *s = storm_new(1000);
    struct storm *off = storm_new(0);
    struct written w = {0};
    uint64_t row;

    storm_open(s, "refused", "n1", 7, 0, 9);
    ck_assert(storm_fold(s, "refused", "n1", 7, 1, 1, &row));
    /* After a rollback the row is gone: nothing folds into it or is written. */
    storm_reset(s);
    ck_assert(!storm_fold(s, "refused", "n1", 7, 2, 2, &row));
    ck_assert_int_eq(storm_drain(s, 3, write_cb, &w), 0);
    ck_assert_uint_eq(w.n, 0);
    /* An interval of 0 folds nothing. */
    storm_open(off, "refused", "n1", 7, 0, 9);
    ck_assert(!storm_fold(off, "refused", "n1", 7, 0, 0, &row));
    ck_assert_uint_eq(storm_open_count(off), 0);
    storm_free(s);
    storm_free(off);
    storm_free(NULL);
}
END_TEST

static Suite *storm_suite(void)
{
    Suite *s = suite_create("storm");
    TCase *tc = tcase_create("fold");

    tcase_add_test(tc, test_fold_same_key);
    tcase_add_test(tc, test_keys_apart);
    suite_add_tcase(s, tc);
    tc = tcase_create("interval");
    tcase_add_test(tc, test_interval_ends);
    tcase_add_test(tc, test_failed_write_kept);
    tcase_add_test(tc, test_reset_and_off);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return harness_run_suite(storm_suite());
}
