/* check_strmap: put/get/remove, replacement, growth and iteration. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>

#include "strmap.h"
#include "suite.h"

static int count_cb(const char *key, void *value, void *arg)
{
    (*(uintptr_t *)arg) += (uintptr_t)value;
    return 0;
}

START_TEST(test_basic)
{
    struct strmap *m = strmap_new();
    int a = 1, b = 2;

    ck_assert_ptr_null(strmap_get(m, "x"));
    ck_assert_ptr_null(strmap_put(m, "x", &a));
    ck_assert_ptr_eq(strmap_get(m, "x"), &a);
    ck_assert_ptr_eq(strmap_put(m, "x", &b), &a);
    ck_assert_ptr_eq(strmap_get(m, "x"), &b);
    ck_assert_uint_eq(strmap_count(m), 1);
    ck_assert_ptr_eq(strmap_remove(m, "x"), &b);
    ck_assert_ptr_null(strmap_remove(m, "x"));
    ck_assert_uint_eq(strmap_count(m), 0);
    strmap_free(m);
}
END_TEST

START_TEST(test_growth)
{
    struct strmap *m = strmap_new();
    char key[32];
    uintptr_t sum = 0;

    for (uintptr_t i = 1; i <= 100000; i++) {
        snprintf(key, sizeof(key), "seg-%lu", (unsigned long)i);
        strmap_put(m, key, (void *)i);
    }
    ck_assert_uint_eq(strmap_count(m), 100000);
    ck_assert_ptr_eq(strmap_get(m, "seg-77777"), (void *)(uintptr_t)77777);
    strmap_foreach(m, count_cb, &sum);
    ck_assert_uint_eq(sum, 100000ull * 100001ull / 2);
    for (uintptr_t i = 1; i <= 100000; i += 2) {
        snprintf(key, sizeof(key), "seg-%lu", (unsigned long)i);
        ck_assert_ptr_eq(strmap_remove(m, key), (void *)i);
    }
    ck_assert_uint_eq(strmap_count(m), 50000);
    ck_assert_ptr_null(strmap_get(m, "seg-1"));
    ck_assert_ptr_eq(strmap_get(m, "seg-2"), (void *)(uintptr_t)2);
    strmap_free(m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("strmap");
    TCase *tc = tcase_create("map");

    tcase_add_test(tc, test_basic);
    tcase_add_test(tc, test_growth);
    suite_add_tcase(s, tc);
    return harness_run_suite(s);
}
