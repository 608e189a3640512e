/*
 * check_ordset: coordinator/ordset alone: order under random adds and
 * removes (checked against qsort), seeks after present, absent and
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

    for (size_t k = 0; k < N; k++)
        if (in[k])
            ref[n++] = keys[k];
    qsort(ref, n, sizeof(ref[0]), cmp_str);
    ck_assert_uint_eq(ordset_count(s), n);
    for (const struct ordset_node *x = ordset_after(s, NULL); x != NULL; x = ordset_next(x), i++) {
        ck_assert_uint_lt(i, n);
        ck_assert_str_eq(ordset_key(x), ref[i]);
        ck_assert_str_eq(ordset_value(x), ordset_key(x));
    }
    ck_assert_uint_eq(i, n);
    /* A seek after each present key lands on the next one. */
    for (size_t k = 0; k + 1 < n; k += 97) {
        const struct ordset_node *x = ordset_after(s, ref[k]);

        ck_assert_ptr_nonnull(x);
        ck_assert_str_eq(ordset_key(x), ref[k + 1]);
    }
    if (n > 0)
        ck_assert_ptr_null(ordset_after(s, ref[n - 1]));
}

START_TEST(test_random_order)
{
    struct ordset *s = ordset_new(42);
    uint32_t r = 12345;

    for (size_t k = 0; k < N; k++) {
        r = r * 1103515245u + 12345u;
        snprintf(keys[k], sizeof(keys[k]), "s%08x", r);
        in[k] = 0;
    }
    for (size_t k = 0; k < N; k++) {
        if (ordset_add(s, keys[k], keys[k]) == 0)
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
        ck_assert_int_eq(ordset_add(s, keys[k], keys[k]), 0);
        in[k] = 1;
    }
    check_against_reference(s);
    ordset_free(s);
}
END_TEST

START_TEST(test_edges)
{
    struct ordset *s = ordset_new(0);
    const struct ordset_node *x;

    ck_assert_ptr_null(ordset_after(s, NULL));
    ck_assert_ptr_null(ordset_after(s, "a"));
    ck_assert_ptr_null(ordset_remove(s, "a"));
    ck_assert_int_eq(ordset_add(s, "b", (void *)1), 0);
    ck_assert_int_eq(ordset_add(s, "d", (void *)2), 0);
    ck_assert_int_eq(ordset_add(s, "b", (void *)3), -EEXIST);
    ck_assert_uint_eq(ordset_count(s), 2);
    /* After an absent key: the next present one; before the first: the first. */
    x = ordset_after(s, "c");
    ck_assert_str_eq(ordset_key(x), "d");
    x = ordset_after(s, "a");
    ck_assert_str_eq(ordset_key(x), "b");
    ck_assert_ptr_eq(ordset_value(x), (void *)1);
    ck_assert_ptr_null(ordset_after(s, "d"));
    ck_assert_ptr_null(ordset_after(s, "z"));
    /* "b" < "b1" < "ba": strcmp's order. */
    ck_assert_int_eq(ordset_add(s, "b1", NULL), 0);
    ck_assert_int_eq(ordset_add(s, "ba", NULL), 0);
    x = ordset_after(s, "b");
    ck_assert_str_eq(ordset_key(x), "b1");
    ck_assert_str_eq(ordset_key(ordset_next(x)), "ba");
    ck_assert_ptr_null(ordset_remove(s, "c"));
    ck_assert_ptr_eq(ordset_remove(s, "d"), (void *)2);
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
