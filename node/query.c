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

#include "bufpool.h"
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

/*
 * Independent accumulators per loop. A 64-bit min or max has no single AVX2
 * instruction: it is a compare and a blend, about five cycles of latency, so
 * one accumulator vector would leave the loop latency-bound at well under
 * memory speed. Sixteen lanes are four independent AVX2 vectors (gcc unrolls
 * the inner loop and SLP-vectorises it), enough to cover the latency.
 */
#define QUERY_LANES 16

/* Rows [0, n) of v, filtered by k in [lo, hi] when k is not NULL. */
QUERY_KERNEL static void query_scan_int(enum wire_aggregate agg, const int64_t *restrict v,
                           const int64_t *restrict k, int64_t lo, int64_t hi, uint64_t n,
                           struct query_acc *acc)
{
    uint64_t matched = 0, sum = 0, i = 0;
    int64_t mn = INT64_MAX, mx = INT64_MIN;
    int64_t lane[QUERY_LANES];
    uint64_t lane_n[QUERY_LANES];

    if (k == NULL) {
        matched = n;
        switch (agg) {
        case WIRE_AGG_SUM:
            for (i = 0; i < n; i++)
                sum += (uint64_t)v[i];
            break;
        case WIRE_AGG_MIN:
            for (int j = 0; j < QUERY_LANES; j++)
                lane[j] = INT64_MAX;
            for (i = 0; i + QUERY_LANES <= n; i += QUERY_LANES)
                for (int j = 0; j < QUERY_LANES; j++)
                    lane[j] = v[i + j] < lane[j] ? v[i + j] : lane[j];
            for (; i < n; i++)
                mn = v[i] < mn ? v[i] : mn;
            for (int j = 0; j < QUERY_LANES; j++)
                mn = lane[j] < mn ? lane[j] : mn;
            break;
        case WIRE_AGG_MAX:
            for (int j = 0; j < QUERY_LANES; j++)
                lane[j] = INT64_MIN;
            for (i = 0; i + QUERY_LANES <= n; i += QUERY_LANES)
                for (int j = 0; j < QUERY_LANES; j++)
                    lane[j] = v[i + j] > lane[j] ? v[i + j] : lane[j];
            for (; i < n; i++)
                mx = v[i] > mx ? v[i] : mx;
            for (int j = 0; j < QUERY_LANES; j++)
                mx = lane[j] > mx ? lane[j] : mx;
            break;
        default:
            break;
        }
    } else {
        switch (agg) {
        case WIRE_AGG_COUNT:
            for (int j = 0; j < QUERY_LANES; j++)
                lane_n[j] = 0;
            for (i = 0; i + QUERY_LANES <= n; i += QUERY_LANES)
                for (int j = 0; j < QUERY_LANES; j++)
                    lane_n[j] += (uint64_t)((k[i + j] >= lo) & (k[i + j] <= hi));
            for (; i < n; i++)
                matched += (uint64_t)((k[i] >= lo) & (k[i] <= hi));
            for (int j = 0; j < QUERY_LANES; j++)
                matched += lane_n[j];
            break;
        case WIRE_AGG_SUM:
            for (i = 0; i < n; i++) {
                uint64_t m = (uint64_t)((k[i] >= lo) & (k[i] <= hi));
                matched += m;
                sum += (uint64_t)v[i] & (0 - m);
            }
            break;
        case WIRE_AGG_MIN:
            for (int j = 0; j < QUERY_LANES; j++) {
                lane[j] = INT64_MAX;
                lane_n[j] = 0;
            }
            for (i = 0; i + QUERY_LANES <= n; i += QUERY_LANES) {
                for (int j = 0; j < QUERY_LANES; j++) {
                    /* Masks, not a conditional load, so that gcc if-converts it. */
                    uint64_t m = (uint64_t)((k[i + j] >= lo) & (k[i + j] <= hi));
                    uint64_t mask = 0 - m;
                    int64_t x = (int64_t)(((uint64_t)v[i + j] & mask) |
                                          ((uint64_t)INT64_MAX & ~mask));
                    lane_n[j] += m;
                    lane[j] = x < lane[j] ? x : lane[j];
                }
            }
            for (; i < n; i++) {
                int m = (k[i] >= lo) & (k[i] <= hi);
                int64_t x = m ? v[i] : INT64_MAX;
                matched += (uint64_t)m;
                mn = x < mn ? x : mn;
            }
            for (int j = 0; j < QUERY_LANES; j++) {
                matched += lane_n[j];
                mn = lane[j] < mn ? lane[j] : mn;
            }
            break;
        case WIRE_AGG_MAX:
            for (int j = 0; j < QUERY_LANES; j++) {
                lane[j] = INT64_MIN;
                lane_n[j] = 0;
            }
            for (i = 0; i + QUERY_LANES <= n; i += QUERY_LANES) {
                for (int j = 0; j < QUERY_LANES; j++) {
                    /* Masks, not a conditional load, so that gcc if-converts it. */
                    uint64_t m = (uint64_t)((k[i + j] >= lo) & (k[i + j] <= hi));
                    uint64_t mask = 0 - m;
                    int64_t x = (int64_t)(((uint64_t)v[i + j] & mask) |
                                          ((uint64_t)INT64_MIN & ~mask));
                    lane_n[j] += m;
                    lane[j] = x > lane[j] ? x : lane[j];
                }
            }
            for (; i < n; i++) {
                int m = (k[i] >= lo) & (k[i] <= hi);
                int64_t x = m ? v[i] : INT64_MIN;
                matched += (uint64_t)m;
                mx = x > mx ? x : mx;
            }
            for (int j = 0; j < QUERY_LANES; j++) {
                matched += lane_n[j];
                mx = lane[j] > mx ? lane[j] : mx;
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

/*
 * The float kernels are written with GCC's generic vectors (clang has them
 * too): four doubles per vector, four vectors for QUERY_LANES lanes. gcc does
 * not vectorise `m ? v[i] : 0.0` or a float compare-and-select with a side
 * count by itself; with explicit vectors the AVX2 clone gets one compare
 * and one blend per four rows, and the baseline clone the same in halves.
 * Lane j of vector q is lane 4q + j: the layout of a plain array.
 */
typedef double query_vf __attribute__((vector_size(32)));
typedef int64_t query_vi __attribute__((vector_size(32)));
#define QUERY_VEC  4                          /* rows per vector */
#define QUERY_NVEC (QUERY_LANES / QUERY_VEC) /* vectors per step */

/*
 * Macros, not functions: a function passing 32-byte vectors by value would
 * have an ABI that depends on the clone being compiled.
 */
/* Loads the QUERY_VEC values at p into the vector dst. */
#define QUERY_LOAD(dst, p) memcpy(&(dst), (p), sizeof(dst))
/* Where mask (all ones), a; elsewhere b; a and b are query_vf. */
#define QUERY_SELECT(mask, a, b)                                                                   \
    ((query_vf)(((query_vi)(a) & (mask)) | ((query_vi)(b) & ~(mask))))

/*
 * The float sum of one segment runs in QUERY_LANES lanes: the matched row r
 * (numbered from the segment's first row) is added to lane r % QUERY_LANES,
 * in row order, each lane an IEEE double starting at +0.0; the segment's sum
 * is then the lanes added pairwise (query_fold_lanes). A row-order sum has
 * one dependent add per row (about four cycles, a third of memory speed);
 * the lanes are independent, nothing is reassociated, so the AVX2 and
 * baseline clones give the same bits. The lanes belong to the segment scan
 * (query_scan_source), so the answer depends on the rows alone, never on
 * how they are cut into zone-map runs or pool blocks. An unmatched row adds
 * +0.0 in the vector loop and nothing in the scalar ones: the same, because
 * a lane that starts at +0.0 is never -0.0 under round-to-nearest (x + -x is
 * +0.0), and y + +0.0 is y for any other y.
 */
QUERY_KERNEL static void query_sum_float(const double *restrict v, const int64_t *restrict k,
                                         int64_t lo, int64_t hi, uint64_t n, uint64_t row0,
                                         double *restrict lanes, struct query_acc *acc)
{
    query_vf lane[QUERY_NVEC];
    query_vi cnt[QUERY_NVEC], vlo = {lo, lo, lo, lo}, vhi = {hi, hi, hi, hi};
    uint64_t matched = 0, i = 0;

    /* Rows up to the first one of lane 0, one at a time. */
    for (; i < n && (row0 + i) % QUERY_LANES != 0; i++) {
        if (k != NULL && !(k[i] >= lo && k[i] <= hi))
            continue;
        matched++;
        lanes[(row0 + i) % QUERY_LANES] += v[i];
    }
    memcpy(lane, lanes, sizeof(lane));
    memset(cnt, 0, sizeof(cnt));
    if (k == NULL) {
        for (; i + QUERY_LANES <= n; i += QUERY_LANES)
            for (int q = 0; q < QUERY_NVEC; q++)
            {
                query_vf x;

                QUERY_LOAD(x, v + i + q * QUERY_VEC);
                lane[q] += x;
            }
        matched = i; /* every row so far, the head's and the loop's */
    } else {
        for (; i + QUERY_LANES <= n; i += QUERY_LANES) {
            for (int q = 0; q < QUERY_NVEC; q++) {
                query_vi kk, m;
                query_vf x;

                QUERY_LOAD(kk, k + i + q * QUERY_VEC);
                QUERY_LOAD(x, v + i + q * QUERY_VEC);
                m = (kk >= vlo) & (kk <= vhi);
                cnt[q] -= m;
                lane[q] += (query_vf)((query_vi)x & m);
            }
        }
        for (int q = 0; q < QUERY_NVEC; q++)
            for (int j = 0; j < QUERY_VEC; j++)
                matched += (uint64_t)cnt[q][j];
    }
    memcpy(lanes, lane, sizeof(lane));
    /* The tail: row0 + i is a multiple of QUERY_LANES here (or i == n). */
    for (int j = 0; i < n; i++, j++) {
        if (k != NULL && !(k[i] >= lo && k[i] <= hi))
            continue;
        matched++;
        lanes[j] += v[i];
    }
    acc->matched += matched;
}

/* The segment's float sum from its lanes: adjacent pairs, then pairs of pairs. */
static double query_fold_lanes(const double *lanes)
{
    double t[QUERY_LANES];

    memcpy(t, lanes, sizeof(t));
    for (int w = QUERY_LANES / 2; w >= 1; w /= 2)
        for (int j = 0; j < w; j++)
            t[j] = t[2 * j] + t[2 * j + 1];
    return t[0];
}

/*
 * Float min and max in QUERY_LANES independent lanes, each with the row
 * loop's rule (a NaN compares false, so the min or max skips it). Lanes
 * change which row wins only among values that compare equal yet differ,
 * i.e. +0.0 and -0.0, where the row loop keeps the first; so when the answer
 * is a zero, the first zero matched in row order is taken again, and the
 * result is exactly the row loop's. NaN rows are only flagged in the loop
 * (a compare and an or per vector) and counted exactly afterwards, in the
 * rare run that has one. Unmatched rows become -inf, which never wins.
 */
QUERY_KERNEL static void query_minmax_float(bool is_min, const double *restrict v,
                                            const int64_t *restrict k, int64_t lo, int64_t hi,
                                            uint64_t n, struct query_acc *acc)
{
    /*
     * One loop for both: a min is the negated max of the negated values
     * (negation flips the sign bit, exactly, NaN stays NaN), so the min's
     * values pass through an xor with the sign bit on the way in and out.
     */
    int64_t f = is_min ? INT64_MIN : 0;
    double best = -INFINITY;
    query_vf lane[QUERY_NVEC], vnone = {best, best, best, best};
    query_vi cnt[QUERY_NVEC], nan[QUERY_NVEC], flip = {f, f, f, f};
    query_vi vlo = {lo, lo, lo, lo}, vhi = {hi, hi, hi, hi};
    uint64_t matched = 0, nans = 0, i = 0;

    for (int q = 0; q < QUERY_NVEC; q++) {
        lane[q] = vnone;
        cnt[q] = nan[q] = (query_vi){0, 0, 0, 0};
    }
    if (k == NULL) {
        for (; i + QUERY_LANES <= n; i += QUERY_LANES) {
            for (int q = 0; q < QUERY_NVEC; q++) {
                query_vf x;

                QUERY_LOAD(x, v + i + q * QUERY_VEC);
                x = (query_vf)((query_vi)x ^ flip);
                nan[q] |= x != x;
                lane[q] = QUERY_SELECT(x > lane[q], x, lane[q]);
            }
        }
    } else {
        for (; i + QUERY_LANES <= n; i += QUERY_LANES) {
            for (int q = 0; q < QUERY_NVEC; q++) {
                query_vi kk, m;
                query_vf x;

                QUERY_LOAD(kk, k + i + q * QUERY_VEC);
                QUERY_LOAD(x, v + i + q * QUERY_VEC);
                m = (kk >= vlo) & (kk <= vhi);
                x = QUERY_SELECT(m, (query_vf)((query_vi)x ^ flip), vnone);
                cnt[q] -= m;
                nan[q] |= x != x;
                lane[q] = QUERY_SELECT(x > lane[q], x, lane[q]);
            }
        }
    }
    for (int q = 0; q < QUERY_NVEC; q++) {
        for (int j = 0; j < QUERY_VEC; j++) {
            matched += k == NULL ? 0 : (uint64_t)cnt[q][j];
            nans |= (uint64_t)nan[q][j];
            best = lane[q][j] > best ? lane[q][j] : best;
        }
    }
    if (is_min)
        best = -best;
    if (k == NULL)
        matched = i;
    if (nans != 0) {
        /* Some matched row in the lanes is a NaN: count them, exactly. */
        nans = 0;
        for (uint64_t r = 0; r < i; r++)
            nans += (k == NULL || (k[r] >= lo && k[r] <= hi)) && v[r] != v[r];
    }
    if (best == 0.0) {
        /* Which zero: the first one matched, in row order. */
        for (uint64_t r = 0; r < i; r++) {
            if ((k == NULL || (k[r] >= lo && k[r] <= hi)) && v[r] == 0.0) {
                best = v[r];
                break;
            }
        }
    }
    for (; i < n; i++) {
        if (k != NULL && !(k[i] >= lo && k[i] <= hi))
            continue;
        matched++;
        nans += v[i] != v[i];
        if (is_min)
            best = v[i] < best ? v[i] : best;
        else
            best = v[i] > best ? v[i] : best;
    }
    acc->matched += matched;
    acc->fnan += nans;
    if (is_min)
        acc->fmin = best < acc->fmin ? best : acc->fmin;
    else
        acc->fmax = best > acc->fmax ? best : acc->fmax;
}

/*
 * Rows [0, n) of a float column, the first being row row0 of its segment;
 * lanes are the segment's float-sum lanes. COUNT never comes here (it reads
 * no float).
 */
static void query_scan_float(enum wire_aggregate agg, const double *v, const int64_t *k,
                             int64_t lo, int64_t hi, uint64_t n, uint64_t row0, double *lanes,
                             struct query_acc *acc)
{
    if (agg == WIRE_AGG_SUM)
        query_sum_float(v, k, lo, hi, n, row0, lanes, acc);
    else
        query_minmax_float(agg == WIRE_AGG_MIN, v, k, lo, hi, n, acc);
}

/* Scans rows [start, end) of the segment, with or without the row filter. */
static void query_scan_range(const struct query_plan *plan, const void *base,
                             const struct segment_header *hdr, uint64_t start, uint64_t end,
                             bool filtered, double *lanes, struct query_acc *acc)
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
    if (plan->is_float && plan->aggregate != WIRE_AGG_COUNT)
        query_scan_float(plan->aggregate,
                         (const double *)((const char *)base + vc->offset) + start, k, plan->lo,
                         plan->hi, n, start, lanes, acc);
    else
        query_scan_int(plan->aggregate, (const int64_t *)((const char *)base + vc->offset) + start,
                       k, plan->lo, plan->hi, n, acc);
}

/*
 * One segment scan: the pool's readers (one per column it reads) and the
 * float sum's lanes.
 */
struct query_cursors {
    const struct query_source *src;
    struct bufpool_cursor value, filter;
    bool value_open, filter_open;
    double lanes[QUERY_LANES];
};

static int query_get(struct query_cursors *qc, struct bufpool_cursor *c, bool *open,
                     const struct segment_column *col, uint64_t row, const void **ret,
                     uint64_t *ret_rows)
{
    size_t len;
    int r;

    if (!*open) {
        bufpool_cursor_init(c, qc->src->pool, qc->src->file, col->offset,
                            col->offset + col->length);
        *open = true;
    }
    r = bufpool_cursor_get(c, col->offset + row * col->width, ret, &len);
    if (r < 0)
        return r;
    *ret_rows = len / col->width;
    return *ret_rows > 0 ? 0 : -EIO;
}

/*
 * Rows [start, end) through the pool: piece by piece, each piece as long as
 * both columns' pinned blocks allow (8-byte values never straddle a block).
 */
static int query_scan_range_pooled(const struct query_plan *plan, struct query_cursors *qc,
                                   const struct segment_header *hdr, uint64_t start, uint64_t end,
                                   bool filtered, struct query_acc *acc)
{
    const struct segment_column *vc = &hdr->columns[plan->column];
    const struct segment_column *kc = filtered ? &hdr->columns[plan->filter_column] : NULL;
    bool need_value = plan->aggregate != WIRE_AGG_COUNT;
    uint64_t n = end - start;

    if (n == 0)
        return 0;
    if (filtered)
        acc->bytes_scanned += n * sizeof(int64_t);
    acc->rows_scanned += n;
    if (need_value)
        acc->bytes_scanned += n * vc->width;
    if (!need_value && !filtered) {
        acc->matched += n; /* count(*): no bytes needed */
        return 0;
    }
    for (uint64_t row = start; row < end;) {
        const void *v = NULL, *k = NULL;
        uint64_t m = end - row, got;
        int r;

        if (need_value) {
            r = query_get(qc, &qc->value, &qc->value_open, vc, row, &v, &got);
            if (r < 0)
                return r;
            m = got < m ? got : m;
        }
        if (filtered) {
            r = query_get(qc, &qc->filter, &qc->filter_open, kc, row, &k, &got);
            if (r < 0)
                return r;
            m = got < m ? got : m;
        }
        if (plan->is_float && plan->aggregate != WIRE_AGG_COUNT)
            query_scan_float(plan->aggregate, v, k, plan->lo, plan->hi, m, row, qc->lanes, acc);
        else
            query_scan_int(plan->aggregate, v, k, plan->lo, plan->hi, m, acc);
        row += m;
    }
    return 0;
}

static int query_scan_part(const struct query_plan *plan, struct query_cursors *qc,
                           const struct segment_header *hdr, uint64_t start, uint64_t end,
                           bool filtered, struct query_acc *acc)
{
    if (qc->src->base != NULL) {
        query_scan_range(plan, qc->src->base, hdr, start, end, filtered, qc->lanes, acc);
        return 0;
    }
    return query_scan_range_pooled(plan, qc, hdr, start, end, filtered, acc);
}

static int query_scan_runs(const struct query_plan *plan, struct query_cursors *qc,
                           const struct segment_header *hdr, const struct zonemap *zm,
                           struct query_acc *acc)
{
    uint64_t rows = hdr->row_count;
    uint64_t blocks = zonemap_block_count(zm);
    uint64_t run_start = 0;
    bool run_filtered = false;
    int r;

    if (plan->filter_column < 0)
        return query_scan_part(plan, qc, hdr, 0, rows, false, acc);
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
            r = query_scan_part(plan, qc, hdr, run_start, start, run_filtered, acc);
            if (r < 0)
                return r;
            run_start = skip ? end : start;
            run_filtered = filtered;
        }
        if (skip)
            acc->blocks_skipped++;
    }
    return query_scan_part(plan, qc, hdr, run_start, rows, run_filtered, acc);
}

int query_scan_source(const struct query_plan *plan, const struct query_source *src,
                      const struct segment_header *hdr, const struct zonemap *zm,
                      struct query_acc *acc)
{
    struct query_cursors qc;
    int r;

    memset(&qc, 0, sizeof(qc));
    qc.src = src;
    r = query_scan_runs(plan, &qc, hdr, zm, acc);
    /* The segment's float sum joins the sums of the segments before it. */
    if (r == 0 && plan->is_float && plan->aggregate == WIRE_AGG_SUM)
        acc->fsum += query_fold_lanes(qc.lanes);
    if (qc.value_open)
        bufpool_cursor_done(&qc.value);
    if (qc.filter_open)
        bufpool_cursor_done(&qc.filter);
    return r;
}

void query_scan(const struct query_plan *plan, const void *base, const struct segment_header *hdr,
                const struct zonemap *zm, struct query_acc *acc)
{
    struct query_source src = {.base = base};

    (void)query_scan_source(plan, &src, hdr, zm, acc);
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
