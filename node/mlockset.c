/*
 * mlockset: the greedy choice of pinned items (see mlockset.h). Expected
 * size: a few columns per segment, up to ~100 K segments; one pass sorts
 * the candidates once, O(n log n), every few seconds on the loop thread.
 */
#include "mlockset.h"

#include <math.h>
#include <stdlib.h>

#include "xmalloc.h"

struct mlockset_region {
    size_t lo, hi; /* the region's items: [lo, hi) */
};

/* Is page p covered by a chosen item of the region [lo, hi)? */
static bool mlockset_covered(const struct mlockset_item *items, size_t lo, size_t hi, uint64_t p)
{
    for (size_t k = lo; k < hi; k++)
        if (items[k].chosen && p >= items[k].first_page && p < items[k].end_page)
            return true;
    return false;
}

/*
 * Pages item i would add: its span less the pages chosen items of its
 * region already cover. Items overlap only on boundary pages, so only the
 * first and last page can be covered already.
 */
static uint64_t mlockset_cost(const struct mlockset_item *items, size_t lo, size_t hi, size_t i)
{
    const struct mlockset_item *it = &items[i];
    uint64_t pages = it->end_page - it->first_page;

    if (pages == 0)
        return 0;
    if (mlockset_covered(items, lo, hi, it->first_page))
        pages--;
    if (it->end_page - 1 != it->first_page && mlockset_covered(items, lo, hi, it->end_page - 1))
        pages--;
    return pages;
}

struct mlockset_cand {
    size_t idx;
    double key;
};

static int mlockset_cmp(const void *a, const void *b)
{
    const struct mlockset_cand *x = a, *y = b;

    if (x->key != y->key)
        return x->key > y->key ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx; /* stable: earlier first */
}

uint64_t mlockset_choose(struct mlockset_item *items, size_t n, uint64_t budget_pages,
                         size_t *ret_must_missing)
{
    size_t *region_lo = xcalloc(n + 1, sizeof(*region_lo)); /* per item: its region's bounds */
    size_t *region_hi = xcalloc(n + 1, sizeof(*region_hi));
    struct mlockset_cand *cand = xcalloc(n + 1, sizeof(*cand));
    size_t ncand = 0, missing = 0;
    uint64_t used = 0;

    for (size_t i = 0; i < n; i++)
        items[i].chosen = false;
    for (size_t lo = 0; lo < n;) {
        size_t hi = lo + 1;
        while (hi < n && items[hi].region == items[lo].region)
            hi++;
        for (size_t k = lo; k < hi; k++) {
            region_lo[k] = lo;
            region_hi[k] = hi;
        }
        lo = hi;
    }
    /* 1. Headers and zone maps, in order, while they fit. */
    for (size_t i = 0; i < n; i++) {
        uint64_t cost;

        if (!items[i].must)
            continue;
        cost = mlockset_cost(items, region_lo[i], region_hi[i], i);
        if (used + cost <= budget_pages) {
            items[i].chosen = true;
            used += cost;
        } else {
            missing++;
        }
    }
    /* 2. The rest by score, the pinned ones a little ahead. */
    for (size_t i = 0; i < n; i++) {
        double score = items[i].score;

        if (items[i].must || !(score > 0) || !isfinite(score))
            continue;
        cand[ncand].idx = i;
        cand[ncand].key = items[i].locked ? score * MLOCKSET_STICKY : score;
        ncand++;
    }
    qsort(cand, ncand, sizeof(*cand), mlockset_cmp);
    for (size_t c = 0; c < ncand; c++) {
        size_t i = cand[c].idx;
        uint64_t cost = mlockset_cost(items, region_lo[i], region_hi[i], i);

        if (used + cost <= budget_pages) {
            items[i].chosen = true;
            used += cost;
        }
    }
    free(region_lo);
    free(region_hi);
    free(cand);
    if (ret_must_missing != NULL)
        *ret_must_missing = missing;
    return used;
}

void mlockset_span(uint64_t offset, uint64_t length, uint64_t page_size, uint64_t *ret_first,
                   uint64_t *ret_end)
{
    if (length == 0) {
        *ret_first = *ret_end = offset / page_size;
        return;
    }
    *ret_first = offset / page_size;
    *ret_end = (offset + length + page_size - 1) / page_size;
}

double mlockset_decay(double score, uint64_t from_ms, uint64_t to_ms, uint64_t half_life_ms)
{
    if (to_ms <= from_ms || half_life_ms == 0)
        return score;
    return score * exp2(-(double)(to_ms - from_ms) / (double)half_life_ms);
}
