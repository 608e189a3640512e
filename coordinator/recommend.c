/*
 * recommend: the VPA-style recommender of declared memory per table
 * (contract and the choice of percentiles in recommend.h). Expected load: one
 * call per table per `sluice-coord recommend`; O(n log n) in the table's
 * segments, for the sorts.
 */
#include "recommend.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "xmalloc.h"

uint64_t recommend_percentile(const uint64_t *sorted, size_t n, double q)
{
    double rank = ceil(q * (double)n);
    size_t i = rank < 1 ? 0 : (size_t)rank - 1;

    return sorted[i < n ? i : n - 1];
}

uint64_t recommend_with_margin(uint64_t v)
{
    double d = ceil((double)v * (1.0 + RECOMMEND_MARGIN));
    uint64_t r;

    if (v == 0)
        return 0;
    if (d >= (double)WIRE_MEM_DECLARED_MAX)
        return WIRE_MEM_DECLARED_MAX;
    r = (uint64_t)d;
    return (r + RECOMMEND_ROUND_BYTES - 1) / RECOMMEND_ROUND_BYTES * RECOMMEND_ROUND_BYTES;
}

static int recommend_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return (x > y) - (x < y);
}

static int recommend_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

/* The median of n values (sorted here); 0 for none. */
static uint64_t recommend_median_u64(uint64_t *v, size_t n)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof(*v), recommend_cmp_u64);
    return recommend_percentile(v, n, 0.5);
}

static double recommend_median_double(double *v, size_t n)
{
    double rank;

    if (n == 0)
        return 0;
    qsort(v, n, sizeof(*v), recommend_cmp_double);
    rank = ceil(0.5 * (double)n);
    return v[rank < 1 ? 0 : (size_t)rank - 1];
}

/*
 * The median of observed / other over the samples that have both (other
 * picks the figure: 0 request, 1 limit, 2 estimate); 0 for none.
 */
static double recommend_ratio(const struct recommend_sample *s, size_t n, int other,
                              double *scratch)
{
    size_t k = 0;

    for (size_t i = 0; i < n; i++) {
        uint64_t d = other == 0 ? s[i].request : other == 1 ? s[i].limit : s[i].estimate;
        if (s[i].observed > 0 && d > 0)
            scratch[k++] = (double)s[i].observed / (double)d;
    }
    return recommend_median_double(scratch, k);
}

/* The median of one declared figure (0 request, 1 limit, 2 estimate) over those that have it. */
static uint64_t recommend_declared(const struct recommend_sample *s, size_t n, int which,
                                   uint64_t *scratch)
{
    size_t k = 0;

    for (size_t i = 0; i < n; i++) {
        uint64_t d = which == 0 ? s[i].request : which == 1 ? s[i].limit : s[i].estimate;
        if (d > 0)
            scratch[k++] = d;
    }
    return recommend_median_u64(scratch, k);
}

void recommend_table(const struct recommend_sample *s, size_t n,
                     struct wire_recommendation *ret)
{
    uint64_t *obs = xcalloc(n + 1, sizeof(*obs));
    double *ratios = xcalloc(n + 1, sizeof(*ratios));
    char table[sizeof(ret->table)];
    size_t k = 0;

    memcpy(table, ret->table, sizeof(table));
    memset(ret, 0, sizeof(*ret));
    memcpy(ret->table, table, sizeof(table));
    ret->segments = n;
    for (size_t i = 0; i < n; i++) {
        if (s[i].observed > 0)
            obs[k++] = s[i].observed;
        ret->over_limit += s[i].over_limit;
    }
    ret->observed = k;
    if (k > 0) {
        qsort(obs, k, sizeof(*obs), recommend_cmp_u64);
        ret->p50_bytes = recommend_percentile(obs, k, 0.5);
        ret->p90_bytes = recommend_percentile(obs, k, RECOMMEND_REQUEST_PERCENTILE);
        ret->p95_bytes = recommend_percentile(obs, k, RECOMMEND_LIMIT_PERCENTILE);
        ret->max_bytes = obs[k - 1];
        ret->request_bytes = recommend_with_margin(ret->p90_bytes);
        ret->limit_bytes = recommend_with_margin(ret->p95_bytes);
    }
    ret->declared_request_bytes = recommend_declared(s, n, 0, obs);
    ret->declared_limit_bytes = recommend_declared(s, n, 1, obs);
    ret->estimate_bytes = recommend_declared(s, n, 2, obs);
    ret->request_ratio = recommend_ratio(s, n, 0, ratios);
    ret->limit_ratio = recommend_ratio(s, n, 1, ratios);
    ret->estimate_ratio = recommend_ratio(s, n, 2, ratios);
    free(obs);
    free(ratios);
}
