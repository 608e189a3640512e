/*
 * check_pmap: coordinator/pmap alone, the change log behind GET
 * /v1/placements?since=V. A walk since V names every item changed after V
 * once (by the version of its last change), nothing for V = the version,
 * and -ESTALE once changes after V have left the ring or V is from the
 * future. A follower that applies deltas (and falls back to a full copy on
 * -ESTALE) ends equal to the truth after thousands of random changes.
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pmap.h"
#include "suite.h"

struct item {
    int value;
    uint64_t pversion; /* the version of its last touch, as coord_placed keeps it */
};

struct seen {
    struct item *got[64];
    uint64_t versions[64];
    size_t n;
};

/* Takes an entry only when it is its item's last change, as placements.c does. */
static int collect(void *item, uint64_t version, void *arg)
{
    struct seen *s = arg;
    struct item *it = item;

    if (it->pversion != version)
        return 0;
    s->versions[s->n] = version;
    s->got[s->n++] = it;
    return 0;
}

static void touch(struct pmap *p, struct item *it, int value)
{
    it->value = value;
    it->pversion = pmap_touch(p, it);
}

START_TEST(test_since_names_each_change_once)
{
    struct pmap *p = pmap_new(16);
    struct item a = {0}, b = {0}, c = {0};
    struct seen s = {0};

    ck_assert_uint_eq(pmap_version(p), 0);
    ck_assert_int_eq(pmap_since(p, 0, collect, &s), 0);
    ck_assert_uint_eq(s.n, 0);
    touch(p, &a, 1); /* 1 */
    touch(p, &b, 1); /* 2 */
    touch(p, &a, 2); /* 3 */
    touch(p, &c, 1); /* 4 */
    touch(p, &b, 2); /* 5 */
    ck_assert_uint_eq(pmap_version(p), 5);
    /* Since 1: a (last at 3), c (4), b (5), in the order of their last change. */
    ck_assert_int_eq(pmap_since(p, 1, collect, &s), 0);
    ck_assert_uint_eq(s.n, 3);
    ck_assert_ptr_eq(s.got[0], &a);
    ck_assert_ptr_eq(s.got[1], &c);
    ck_assert_ptr_eq(s.got[2], &b);
    ck_assert_uint_eq(s.versions[2], 5);
    /* Since 4: only b. Since 5: nothing. */
    s.n = 0;
    ck_assert_int_eq(pmap_since(p, 4, collect, &s), 0);
    ck_assert_uint_eq(s.n, 1);
    ck_assert_ptr_eq(s.got[0], &b);
    s.n = 0;
    ck_assert_int_eq(pmap_since(p, 5, collect, &s), 0);
    ck_assert_uint_eq(s.n, 0);
    pmap_free(p);
}
END_TEST

START_TEST(test_stale_when_out_of_the_ring)
{
    struct pmap *p = pmap_new(4);
    struct item a = {0};
    struct seen s = {0};

    for (int i = 0; i < 10; i++)
        touch(p, &a, i); /* versions 1..10; the ring keeps 7..10 */
    ck_assert_int_eq(pmap_since(p, 5, collect, &s), -ESTALE); /* 6 is gone */
    ck_assert_int_eq(pmap_since(p, 6, collect, &s), 0);       /* 7..10 are kept */
    ck_assert_uint_eq(s.n, 1);
    ck_assert_int_eq(pmap_since(p, 11, collect, &s), -ESTALE); /* from the future */
    ck_assert_int_eq(pmap_since(p, 0, collect, &s), -ESTALE);  /* 1..6 are gone */
    pmap_free(p);
}
END_TEST

static int stop_at_first(void *item, uint64_t version, void *arg)
{
    (void)item;
    (void)version;
    (*(int *)arg)++;
    return 7;
}

START_TEST(test_callback_stops_the_walk)
{
    struct pmap *p = pmap_new(8);
    struct item a = {0}, b = {0};
    int calls = 0;

    touch(p, &a, 1);
    touch(p, &b, 1);
    ck_assert_int_eq(pmap_since(p, 0, stop_at_first, &calls), 7);
    ck_assert_int_eq(calls, 1);
    pmap_free(p);
}
END_TEST

#define N_ITEMS 40

static int apply(void *item, uint64_t version, void *arg)
{
    int *copy = arg;
    struct item *it = item;

    (void)version;
    copy[it->value >> 16] = it->value; /* the item's slot is in its value's high bits */
    return 0;
}

/*
 * A follower polling at random moments, sometimes after more changes than
 * the ring keeps, applies each delta (whole items, repeated ones harmless)
 * or copies everything on -ESTALE: it always ends equal to the truth.
 */
START_TEST(test_follower_converges)
{
    struct pmap *p = pmap_new(32);
    struct item items[N_ITEMS];
    int copy[N_ITEMS];
    uint64_t seen = 0;
    unsigned rng = 12345, fulls = 0, deltas = 0;

    memset(items, 0, sizeof(items));
    memset(copy, 0, sizeof(copy));
    for (int round = 0; round < 2000; round++) {
        int changes = (int)((rng = rng * 1103515245u + 12345u) >> 16) % 50;

        for (int k = 0; k < changes; k++) {
            size_t i = ((rng = rng * 1103515245u + 12345u) >> 16) % N_ITEMS;

            touch(p, &items[i], (int)(i << 16) | (round & 0xffff));
        }
        if (pmap_since(p, seen, apply, copy) == -ESTALE) {
            for (size_t i = 0; i < N_ITEMS; i++)
                copy[i] = items[i].value;
            fulls++;
        } else {
            deltas++;
        }
        seen = pmap_version(p);
        for (size_t i = 0; i < N_ITEMS; i++)
            ck_assert_int_eq(copy[i], items[i].value);
    }
    /* Both paths were taken. */
    ck_assert_uint_gt(fulls, 10);
    ck_assert_uint_gt(deltas, 10);
    pmap_free(p);
}
END_TEST

static Suite *pmap_suite(void)
{
    Suite *s = suite_create("pmap");
    TCase *tc = tcase_create("since");

    tcase_add_test(tc, test_since_names_each_change_once);
    tcase_add_test(tc, test_stale_when_out_of_the_ring);
    tcase_add_test(tc, test_callback_stops_the_walk);
    suite_add_tcase(s, tc);
    tc = tcase_create("follower");
    tcase_add_test(tc, test_follower_converges);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return harness_run_suite(pmap_suite());
}
