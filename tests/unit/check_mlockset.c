/*
 * check_mlockset: the --mlock-budget chooser. The budget is never exceeded
 * (pages shared by two items count once), headers and zone maps go first,
 * columns follow query frequency and the choice moves when it changes, a
 * pinned column is sticky against a near tie, and decay halves a score per
 * half-life.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>

#include "mlockset.h"
#include "suite.h"

#define PAGE 4096

/* Pages the chosen items cover, counting each (region, page) once. */
static uint64_t covered_pages(const struct mlockset_item *it, size_t n)
{
    uint64_t total = 0;

    for (size_t i = 0; i < n; i++) {
        if (!it[i].chosen)
            continue;
        for (uint64_t p = it[i].first_page; p < it[i].end_page; p++) {
            bool seen = false;
            for (size_t j = 0; j < i && !seen; j++)
                seen = it[j].chosen && it[j].region == it[i].region && p >= it[j].first_page &&
                       p < it[j].end_page;
            total += !seen;
        }
    }
    return total;
}

/*
 * Segment s as the store describes it: header [0, 4160) and two columns of
 * 8 * rows bytes laid out after it at 64-byte alignment (boundary pages
 * shared), zone maps in their own region of zm_pages pages.
 */
static size_t add_segment(struct mlockset_item *it, size_t n, uint64_t s, uint64_t rows,
                          double score_key, double score_value)
{
    uint64_t off = 4160, len = rows * 8;

    it[n] = (struct mlockset_item){.region = 2 * s, .must = true};
    mlockset_span(0, 4160, PAGE, &it[n].first_page, &it[n].end_page);
    n++;
    it[n] = (struct mlockset_item){.region = 2 * s, .score = score_key};
    mlockset_span(off, len, PAGE, &it[n].first_page, &it[n].end_page);
    n++;
    it[n] = (struct mlockset_item){.region = 2 * s, .score = score_value};
    mlockset_span(off + len, len, PAGE, &it[n].first_page, &it[n].end_page);
    n++;
    it[n] = (struct mlockset_item){.region = 2 * s + 1, .must = true, .first_page = 0,
                                   .end_page = 1};
    return n + 1;
}

START_TEST(test_span)
{
    uint64_t f, e;

    mlockset_span(0, 4160, PAGE, &f, &e);
    ck_assert_uint_eq(f, 0);
    ck_assert_uint_eq(e, 2);
    mlockset_span(4160, 8192, PAGE, &f, &e);
    ck_assert_uint_eq(f, 1);
    ck_assert_uint_eq(e, 4);
    mlockset_span(8192, 0, PAGE, &f, &e);
    ck_assert_uint_eq(e - f, 0);
}
END_TEST

START_TEST(test_budget_respected)
{
    struct mlockset_item it[4 * 50];
    size_t n = 0, missing = 99;

    for (uint64_t s = 0; s < 50; s++)
        n = add_segment(it, n, s, 1000 + 37 * s, 1.0 + (double)s, 2.0 + (double)s);
    /* Every budget from nothing to everything: never more pages than the budget. */
    for (uint64_t budget = 0; budget < 1200; budget += 7) {
        uint64_t used = mlockset_choose(it, n, budget, &missing);
        ck_assert_uint_le(used, budget);
        ck_assert_uint_eq(covered_pages(it, n), used);
    }
}
END_TEST

START_TEST(test_must_first)
{
    struct mlockset_item it[8];
    size_t n = 0, missing = 99;
    uint64_t used;

    n = add_segment(it, n, 0, 4096, 100.0, 100.0);
    n = add_segment(it, n, 1, 4096, 100.0, 100.0);
    /* Headers (2 pages each) and zone maps (1 page each): 6 pages, then room for nothing else. */
    used = mlockset_choose(it, n, 7, &missing);
    ck_assert_uint_eq(missing, 0);
    ck_assert(it[0].chosen && it[3].chosen && it[4].chosen && it[7].chosen);
    ck_assert(!it[1].chosen && !it[2].chosen && !it[5].chosen && !it[6].chosen);
    ck_assert_uint_eq(used, 6);
    /* A budget below the must items: as many as fit, the rest counted as missing. */
    used = mlockset_choose(it, n, 4, &missing);
    ck_assert_uint_le(used, 4);
    ck_assert_uint_eq(missing, 1);
}
END_TEST

START_TEST(test_follows_frequency)
{
    struct mlockset_item it[8];
    size_t n = 0;
    /* One column of 4096 rows is 8 pages (+1 shared); must items take 6 pages. */
    uint64_t budget = 6 + 9;

    n = add_segment(it, n, 0, 4096, 1.0, 50.0);
    n = add_segment(it, n, 1, 4096, 5.0, 2.0);
    mlockset_choose(it, n, budget, NULL);
    ck_assert(it[2].chosen);                          /* segment 0's value: most queried */
    ck_assert(!it[1].chosen && !it[5].chosen && !it[6].chosen);
    /* Frequencies change: segment 1's key becomes the hot one. */
    for (size_t i = 0; i < n; i++)
        it[i].locked = it[i].chosen;
    it[2].score = 3.0;
    it[5].score = 40.0;
    mlockset_choose(it, n, budget, NULL);
    ck_assert(it[5].chosen);
    ck_assert(!it[2].chosen);
    /* A cold column is never pinned, even with room to spare. */
    it[1].score = 0.0;
    mlockset_choose(it, n, 1000, NULL);
    ck_assert(!it[1].chosen);
    ck_assert(it[2].chosen && it[5].chosen && it[6].chosen);
}
END_TEST

START_TEST(test_sticky)
{
    struct mlockset_item it[4];
    size_t n = add_segment(it, 0, 0, 4096, 10.0, 11.0);
    uint64_t budget = 3 + 9;

    /* The pinned key keeps its pin against a value only 10 % hotter ... */
    it[1].locked = true;
    mlockset_choose(it, n, budget, NULL);
    ck_assert(it[1].chosen && !it[2].chosen);
    /* ... but not against one 50 % hotter. */
    it[2].score = 15.0;
    mlockset_choose(it, n, budget, NULL);
    ck_assert(!it[1].chosen && it[2].chosen);
}
END_TEST

START_TEST(test_decay)
{
    ck_assert_double_eq_tol(mlockset_decay(8.0, 1000, 1000 + 60000, 60000), 4.0, 1e-9);
    ck_assert_double_eq_tol(mlockset_decay(8.0, 1000, 1000 + 180000, 60000), 1.0, 1e-9);
    ck_assert_double_eq_tol(mlockset_decay(8.0, 5000, 1000, 60000), 8.0, 1e-12);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("mlockset");
    TCase *tc;

    tc = tcase_create("span");
    tcase_add_test(tc, test_span);
    suite_add_tcase(s, tc);
    tc = tcase_create("budget");
    tcase_add_test(tc, test_budget_respected);
    tcase_add_test(tc, test_must_first);
    suite_add_tcase(s, tc);
    tc = tcase_create("frequency");
    tcase_add_test(tc, test_follows_frequency);
    tcase_add_test(tc, test_sticky);
    tcase_add_test(tc, test_decay);
    suite_add_tcase(s, tc);
    return harness_run_suite(s);
}
