/*
 * check_ordset: coordinator/ordset alone: order under random adds and
 * removes (checked against qsort), down to a tenth and to none (blocks
 * merging) and back (blocks splitting), seeks after present, absent and
 * out-of-range keys, duplicates refused, absent keys removed as NULL.
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ordset.h"
#include "suite.h"

#define N 5000

static char keys[N][16];
static int in[N]; /* 1: key i is in the set */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Walks the set and compares it with the sorted keys marked in. */
static void check_against_reference(const struct ordset *s)
{
    const char *ref[N];
    size_t n = 0, i = 0;
    struct ordset_pos x;

    for (size_t k = 0; k < N; k++)
        if (in[k])
            ref[n++] = keys[k];
    qsort(ref, n, sizeof(ref[0]), cmp_str);
    ck_assert_uint_eq(ordset_count(s), n);
    for (ordset_after(s, NULL, &x); ordset_value(&x) != NULL; ordset_next(&x), i++) {
        ck_assert_uint_lt(i, n);
        ck_assert_str_eq(ordset_key(&x), ref[i]);
        ck_assert_ptr_eq(ordset_value(&x), ordset_key(&x)); /* the record is its own key */
    }
    ck_assert_uint_eq(i, n);
    /* A seek after each present key lands on the next one. */
    for (size_t k = 0; k + 1 < n; k += 97) {
        ordset_after(s, ref[k], &x);
        ck_assert_ptr_nonnull(ordset_value(&x));
        ck_assert_str_eq(ordset_key(&x), ref[k + 1]);
    }
    if (n > 0) {
        ordset_after(s, ref[n - 1], &x);
        ck_assert_ptr_null(ordset_value(&x));
    }
}

START_TEST(test_random_order)
{
    struct ordset *s = ordset_new(0); /* the records are the key strings */
    uint32_t r = 12345;

    for (size_t k = 0; k < N; k++) {
        r = r * 1103515245u + 12345u;
        snprintf(keys[k], sizeof(keys[k]), "s%08x", r);
        in[k] = 0;
    }
    for (size_t k = 0; k < N; k++) {
        if (ordset_add(s, keys[k]) == 0)
            in[k] = 1;
    }
    check_against_reference(s);
    /* Remove every third, add some back. */
    for (size_t k = 0; k < N; k += 3) {
        if (in[k]) {
            ck_assert_ptr_eq(ordset_remove(s, keys[k]), keys[k]);
            in[k] = 0;
        }
    }
    check_against_reference(s);
    for (size_t k = 0; k < N; k += 6) {
        ck_assert_int_eq(ordset_add(s, keys[k]), 0);
        in[k] = 1;
    }
    check_against_reference(s);
    /* Down to every tenth (blocks merge), then to none, then all in again (blocks split). */
    for (size_t k = 0; k < N; k++) {
        if (in[k] && k % 10 != 0) {
            ck_assert_ptr_eq(ordset_remove(s, keys[k]), keys[k]);
            in[k] = 0;
        }
    }
    check_against_reference(s);
    for (size_t k = 0; k < N; k += 10) {
        if (in[k]) {
            ck_assert_ptr_eq(ordset_remove(s, keys[k]), keys[k]);
            in[k] = 0;
        }
    }
    check_against_reference(s);
    for (size_t k = 0; k < N; k++) {
        ck_assert_int_eq(ordset_add(s, keys[k]), 0);
        in[k] = 1;
    }
    check_against_reference(s);
    ordset_free(s);
}
END_TEST

START_TEST(test_edges)
{
    static char b[] = "b", b2[] = "b", d[] = "d", b1[] = "b1", ba[] = "ba";
    struct ordset *s = ordset_new(0);
    struct ordset_pos x;

    ordset_after(s, NULL, &x);
    ck_assert_ptr_null(ordset_value(&x));
    ck_assert_ptr_null(ordset_key(&x));
    ordset_next(&x); /* a no-op at the end */
    ck_assert_ptr_null(ordset_value(&x));
    ordset_after(s, "a", &x);
    ck_assert_ptr_null(ordset_value(&x));
    ck_assert_ptr_null(ordset_remove(s, "a"));
    ck_assert_int_eq(ordset_add(s, b), 0);
    ck_assert_int_eq(ordset_add(s, d), 0);
    ck_assert_int_eq(ordset_add(s, b2), -EEXIST); /* another record, the same key */
    ck_assert_uint_eq(ordset_count(s), 2);
    /* After an absent key: the next present one; before the first: the first. */
    ordset_after(s, "c", &x);
    ck_assert_str_eq(ordset_key(&x), "d");
    ordset_after(s, "a", &x);
    ck_assert_str_eq(ordset_key(&x), "b");
    ck_assert_ptr_eq(ordset_value(&x), b);
    ordset_after(s, "d", &x);
    ck_assert_ptr_null(ordset_value(&x));
    ordset_after(s, "z", &x);
    ck_assert_ptr_null(ordset_value(&x));
    /* "b" < "b1" < "ba": strcmp's order. */
    ck_assert_int_eq(ordset_add(s, b1), 0);
    ck_assert_int_eq(ordset_add(s, ba), 0);
    ordset_after(s, "b", &x);
    ck_assert_str_eq(ordset_key(&x), "b1");
    ordset_next(&x);
    ck_assert_str_eq(ordset_key(&x), "ba");
    ck_assert_ptr_null(ordset_remove(s, "c"));
    ck_assert_ptr_eq(ordset_remove(s, "d"), d);
    ck_assert_uint_eq(ordset_count(s), 3);
    ordset_free(s);
    ordset_free(NULL);
}
END_TEST

static Suite *ordset_suite(void)
{
    Suite *s = suite_create("ordset");
    TCase *tc = tcase_create("order");

    tcase_add_test(tc, test_random_order);
    tcase_add_test(tc, test_edges);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return harness_run_suite(ordset_suite());
}
