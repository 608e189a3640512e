/*
 * query: block-at-a-time scan over mapped columns. The zone maps classify
 * each 4096-row block of the filter column as outside the range (skipped),
 * inside it (aggregated without testing rows), or straddling it (tested row
 * by row, branch-free so the compiler vectorises it). The loops are the hot
 * path of the node: tests/bench/bench_scan compares them with a plain
 * memory read of the same bytes.
 */
#include "query.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "zonemap.h"

int query_plan_make(const struct segment_header *hdr, enum wire_aggregate aggregate,
                    const char *column, const char *filter_column, int64_t lo, int64_t hi,
                    struct query_plan *ret, char *err, size_t err_len)
{
    struct query_plan plan;
    const struct segment_column *c;

    memset(&plan, 0, sizeof(plan));
    plan.aggregate = aggregate;
    plan.lo = lo;
    plan.hi = hi;
    plan.column = segment_find_column(hdr, column);
    if (plan.column < 0) {
        snprintf(err, err_len, "column: no column \"%s\"", column);
        return -ENOENT;
    }
    c = &hdr->columns[plan.column];
    if (c->type != SEGMENT_INT64 && c->type != SEGMENT_FLOAT64) {
        snprintf(err, err_len, "column: \"%s\" is %s; only int64 and float64 can be aggregated",
                 column, segment_col_type_name(c->type));
        return -EINVAL;
    }
    plan.is_float = c->type == SEGMENT_FLOAT64;
    plan.filter_column = -1;
    if (filter_column != NULL && filter_column[0] != '\0') {
        plan.filter_column = segment_find_column(hdr, filter_column);
        if (plan.filter_column < 0) {
            snprintf(err, err_len, "filter_column: no column \"%s\"", filter_column);
            return -ENOENT;
        }
        if (hdr->columns[plan.filter_column].type != SEGMENT_INT64) {
            snprintf(err, err_len, "filter_column: \"%s\" is %s; filters take int64 columns",
                     filter_column,
                     segment_col_type_name(hdr->columns[plan.filter_column].type));
            return -EINVAL;
        }
    }
    *ret = plan;
    return 0;
}

void query_acc_init(struct query_acc *acc, bool is_float)
{
    memset(acc, 0, sizeof(*acc));
    acc->is_float = is_float;
    acc->imin = INT64_MAX;
    acc->imax = INT64_MIN;
    acc->fmin = INFINITY;
    acc->fmax = -INFINITY;
}

/*
 * The kernels are compiled twice, for baseline x86-64 and for AVX2, and the
 * loader picks one (an ifunc): 64-bit compares only vectorise from AVX2 on,
 * and a portable binary must still run everywhere.
 */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
#define QUERY_KERNEL __attribute__((target_clones("avx2", "default")))
#else
#define QUERY_KERNEL
#endif

/* Rows [0, n) of v, filtered by k in [lo, hi] when k is not NULL. */
QUERY_KERNEL static void query_scan_int(enum wire_aggregate agg, const int64_t *restrict v,
                           const int64_t *restrict k, int64_t lo, int64_t hi, uint64_t n,
                           struct query_acc *acc)
{
    uint64_t matched = 0, sum = 0;
    int64_t mn = INT64_MAX, mx = INT64_MIN;

    if (k == NULL) {
        matched = n;
        switch (agg) {
        case WIRE_AGG_SUM:
            for (uint64_t i = 0; i < n; i++)
                sum += (uint64_t)v[i];
            break;
        case WIRE_AGG_MIN:
            for (uint64_t i = 0; i < n; i++)
                mn = v[i] < mn ? v[i] : mn;
            break;
        case WIRE_AGG_MAX:
            for (uint64_t i = 0; i < n; i++)
                mx = v[i] > mx ? v[i] : mx;
            break;
        default:
            break;
        }
    } else {
        switch (agg) {
        case WIRE_AGG_COUNT:
            for (uint64_t i = 0; i < n; i++)
                matched += (uint64_t)((k[i] >= lo) & (k[i] <= hi));
            break;
        case WIRE_AGG_SUM:
            for (uint64_t i = 0; i < n; i++) {
                uint64_t m = (uint64_t)((k[i] >= lo) & (k[i] <= hi));
                matched += m;
                sum += (uint64_t)v[i] & (0 - m);
            }
            break;
        case WIRE_AGG_MIN:
            for (uint64_t i = 0; i < n; i++) {
                int m = (k[i] >= lo) & (k[i] <= hi);
                int64_t x = m ? v[i] : INT64_MAX;
                matched += (uint64_t)m;
                mn = x < mn ? x : mn;
            }
            break;
        case WIRE_AGG_MAX:
            for (uint64_t i = 0; i < n; i++) {
                int m = (k[i] >= lo) & (k[i] <= hi);
                int64_t x = m ? v[i] : INT64_MIN;
                matched += (uint64_t)m;
                mx = x > mx ? x : mx;
            }
            break;
        default:
            break;
        }
    }
    acc->matched += matched;
    acc->isum += sum;
    acc->imin = mn < acc->imin ? mn : acc->imin;
    acc->imax = mx > acc->imax ? mx : acc->imax;
}

QUERY_KERNEL static void query_scan_float(enum wire_aggregate agg, const double *restrict v,
                             const int64_t *restrict k, int64_t lo, int64_t hi, uint64_t n,
                             struct query_acc *acc)
{
    uint64_t matched = 0, nans = 0;
    double sum = 0.0, mn = INFINITY, mx = -INFINITY;

    for (uint64_t i = 0; i < n; i++) {
        if (k != NULL && !(k[i] >= lo && k[i] <= hi))
            continue;
        matched++;
        switch (agg) {
        case WIRE_AGG_SUM:
            sum += v[i];
            break;
        case WIRE_AGG_MIN:
            /* A NaN compares false: the min skips it and the count remembers it. */
            mn = v[i] < mn ? v[i] : mn;
            nans += v[i] != v[i];
            break;
        case WIRE_AGG_MAX:
            mx = v[i] > mx ? v[i] : mx;
            nans += v[i] != v[i];
            break;
        default:
            break;
        }
    }
    acc->matched += matched;
    acc->fnan += nans;
    acc->fsum += sum;
    acc->fmin = mn < acc->fmin ? mn : acc->fmin;
    acc->fmax = mx > acc->fmax ? mx : acc->fmax;
}

/* Scans rows [start, end) of the segment, with or without the row filter. */
static void query_scan_range(const struct query_plan *plan, const void *base,
                             const struct segment_header *hdr, uint64_t start, uint64_t end,
                             bool filtered, struct query_acc *acc)
{
    const struct segment_column *vc = &hdr->columns[plan->column];
    const int64_t *k = NULL;
    uint64_t n = end - start;

    if (n == 0)
        return;
    if (filtered) {
        k = (const int64_t *)((const char *)base + hdr->columns[plan->filter_column].offset) +
            start;
        acc->bytes_scanned += n * sizeof(int64_t);
    }
    acc->rows_scanned += n;
    if (plan->aggregate != WIRE_AGG_COUNT)
        acc->bytes_scanned += n * vc->width;
    if (plan->is_float)
        query_scan_float(plan->aggregate,
                         (const double *)((const char *)base + vc->offset) + start, k, plan->lo,
                         plan->hi, n, acc);
    else
        query_scan_int(plan->aggregate, (const int64_t *)((const char *)base + vc->offset) + start,
                       k, plan->lo, plan->hi, n, acc);
}

void query_scan(const struct query_plan *plan, const void *base, const struct segment_header *hdr,
                const struct zonemap *zm, struct query_acc *acc)
{
    uint64_t rows = hdr->row_count;
    uint64_t blocks = zonemap_block_count(zm);
    uint64_t run_start = 0;
    bool run_filtered = false;

    if (plan->filter_column < 0) {
        query_scan_range(plan, base, hdr, 0, rows, false, acc);
        return;
    }
    /*
     * Consecutive blocks of the same kind are scanned as one run, so a
     * filter covering most of a segment costs one long loop, not thousands.
     */
    for (uint64_t b = 0; b < blocks; b++) {
        uint64_t start = b * ZONEMAP_BLOCK_ROWS;
        uint64_t end = start + ZONEMAP_BLOCK_ROWS < rows ? start + ZONEMAP_BLOCK_ROWS : rows;
        int64_t mn, mx;
        bool skip = false, filtered = true;

        if (zonemap_int_range(zm, (unsigned)plan->filter_column, b, &mn, &mx)) {
            skip = mx < plan->lo || mn > plan->hi;
            filtered = !(mn >= plan->lo && mx <= plan->hi);
        }
        if (skip || filtered != run_filtered) {
            query_scan_range(plan, base, hdr, run_start, start, run_filtered, acc);
            run_start = skip ? end : start;
            run_filtered = filtered;
        }
        if (skip)
            acc->blocks_skipped++;
    }
    query_scan_range(plan, base, hdr, run_start, rows, run_filtered, acc);
}

void query_acc_merge(struct query_acc *dst, const struct query_acc *src)
{
    dst->matched += src->matched;
    dst->rows_scanned += src->rows_scanned;
    dst->bytes_scanned += src->bytes_scanned;
    dst->blocks_skipped += src->blocks_skipped;
    dst->isum += src->isum;
    dst->imin = src->imin < dst->imin ? src->imin : dst->imin;
    dst->imax = src->imax > dst->imax ? src->imax : dst->imax;
    dst->fnan += src->fnan;
    dst->fsum += src->fsum;
    dst->fmin = src->fmin < dst->fmin ? src->fmin : dst->fmin;
    dst->fmax = src->fmax > dst->fmax ? src->fmax : dst->fmax;
}

void query_acc_result(const struct query_acc *acc, enum wire_aggregate aggregate,
                      struct wire_query_response *ret)
{
    memset(ret, 0, sizeof(*ret));
    ret->rows_matched = acc->matched;
    ret->rows_scanned = acc->rows_scanned;
    ret->bytes_scanned = acc->bytes_scanned;
    ret->blocks_skipped = acc->blocks_skipped;
    ret->is_float = acc->is_float && aggregate != WIRE_AGG_COUNT;
    switch (aggregate) {
    case WIRE_AGG_COUNT:
        ret->int_value = (int64_t)acc->matched;
        break;
    case WIRE_AGG_SUM:
        if (ret->is_float)
            ret->float_value = acc->fsum;
        else
            ret->int_value = (int64_t)acc->isum;
        break;
    case WIRE_AGG_MIN:
        if (acc->matched == 0)
            break;
        if (ret->is_float)
            ret->float_value = acc->fnan == acc->matched ? NAN : acc->fmin;
        else
            ret->int_value = acc->imin;
        break;
    case WIRE_AGG_MAX:
        if (acc->matched == 0)
            break;
        if (ret->is_float)
            ret->float_value = acc->fnan > 0 ? NAN : acc->fmax;
        else
            ret->int_value = acc->imax;
        break;
    default:
        break;
    }
}
