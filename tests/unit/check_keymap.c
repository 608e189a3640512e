/*
 * check_keymap: coordinator/keymap alone, on records that hold their key:
 * lookups of present and absent keys, growth from 16 slots through 8,000
 * records, replacement of a record with the same key, removals (each
 * checked against a reference under random adds and removes, which
 * exercises the backward shift across wrapped clusters), a walk that names
 * every record once with its own key, and the slots given back when a map
 * drains.
 */
#include <check.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keymap.h"
#include "suite.h"

#define N 8000

struct rec {
    int tag;
    char key[24];
};

static struct rec recs[N];
static int in[N]; /* 1: recs[i] is in the map */

static int count_walk(const char *key, void *record, void *arg)
{
    const struct rec *r = record;
    size_t *n = arg;

    ck_assert_ptr_eq(key, r->key); /* the record's own key, not a copy */
    ck_assert_int_eq(in[r->tag], 1);
    (*n)++;
    return 0;
}

static int stop_at_second(const char *key, void *record, void *arg)
{
    int *seen = arg;

    return ++*seen == 2 ? 42 : 0;
}

START_TEST(test_lookup_and_growth)
{
    struct keymap *m = keymap_new(offsetof(struct rec, key));
    size_t walked = 0;
    int seen = 0;

    memset(in, 0, sizeof(in));
    ck_assert_ptr_null(keymap_get(m, "seg-0000001"));
    for (int i = 0; i < N; i++) {
        recs[i].tag = i;
        snprintf(recs[i].key, sizeof(recs[i].key), "seg-%07d", i);
        ck_assert_ptr_null(keymap_put(m, &recs[i]));
        in[i] = 1;
        ck_assert_uint_eq(keymap_count(m), (size_t)i + 1);
    }
    for (int i = 0; i < N; i++)
        ck_assert_ptr_eq(keymap_get(m, recs[i].key), &recs[i]);
    ck_assert_ptr_null(keymap_get(m, "seg-9999999"));
    ck_assert_ptr_null(keymap_get(m, ""));
    ck_assert_ptr_null(keymap_get(m, "seg-000000")); /* a prefix of present keys */
    ck_assert_int_eq(keymap_foreach(m, count_walk, &walked), 0);
    ck_assert_uint_eq(walked, N);
    ck_assert_int_eq(keymap_foreach(m, stop_at_second, &seen), 42);
    ck_assert_int_eq(seen, 2);
    keymap_free(m);
    keymap_free(NULL);
}
END_TEST

START_TEST(test_replace)
{
    struct keymap *m = keymap_new(offsetof(struct rec, key));
    struct rec a = {1, "same"}, b = {2, "same"}, c = {3, "other"};

    ck_assert_ptr_null(keymap_put(m, &a));
    ck_assert_ptr_null(keymap_put(m, &c));
    ck_assert_ptr_eq(keymap_put(m, &b), &a); /* the one it replaced */
    ck_assert_uint_eq(keymap_count(m), 2);
    ck_assert_ptr_eq(keymap_get(m, "same"), &b);
    ck_assert_ptr_eq(keymap_remove(m, "same"), &b);
    ck_assert_ptr_null(keymap_remove(m, "same"));
    ck_assert_ptr_eq(keymap_get(m, "other"), &c);
    ck_assert_uint_eq(keymap_count(m), 1);
    keymap_free(m);
}
END_TEST

/* Random adds and removes against in[]; every key looked up after each burst. */
START_TEST(test_random_remove)
{
    struct keymap *m = keymap_new(offsetof(struct rec, key));
    uint32_t x = 12345;
    size_t n = 0, walked = 0;

    memset(in, 0, sizeof(in));
    for (int i = 0; i < N; i++) {
        recs[i].tag = i;
        snprintf(recs[i].key, sizeof(recs[i].key), "k%x", (unsigned)i * 2654435761u);
    }
    for (int round = 0; round < 24; round++) {
        for (int k = 0; k < 1000; k++) {
            int i;

            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            i = (int)(x % (round < 12 ? N : N / 8)); /* later rounds churn a hot eighth */
            if (in[i]) {
                ck_assert_ptr_eq(keymap_remove(m, recs[i].key), &recs[i]);
                in[i] = 0;
                n--;
            } else {
                ck_assert_ptr_null(keymap_put(m, &recs[i]));
                in[i] = 1;
                n++;
            }
        }
        ck_assert_uint_eq(keymap_count(m), n);
        for (int i = 0; i < N; i++)
            ck_assert_ptr_eq(keymap_get(m, recs[i].key), in[i] ? &recs[i] : NULL);
    }
    ck_assert_int_eq(keymap_foreach(m, count_walk, &walked), 0);
    ck_assert_uint_eq(walked, n);
    /* Drained: every record removed, every lookup misses, the map still works. */
    for (int i = 0; i < N; i++)
        if (in[i]) {
            ck_assert_ptr_eq(keymap_remove(m, recs[i].key), &recs[i]);
            in[i] = 0;
        }
    ck_assert_uint_eq(keymap_count(m), 0);
    for (int i = 0; i < N; i++)
        ck_assert_ptr_null(keymap_get(m, recs[i].key));
    ck_assert_ptr_null(keymap_put(m, &recs[7]));
    ck_assert_ptr_eq(keymap_get(m, recs[7].key), &recs[7]);
    keymap_free(m);
}
END_TEST

static Suite *keymap_suite(void)
{
    Suite *s = suite_create("keymap");
    TCase *tc = tcase_create("map");

    tcase_add_test(tc, test_lookup_and_growth);
    tcase_add_test(tc, test_replace);
    tcase_add_test(tc, test_random_remove);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return harness_run_suite(keymap_suite());
}
