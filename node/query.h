/*
 * query: the scan. An aggregate (count, sum, min, max) of one int64 or
 * float64 column over the rows whose int64 filter column lies in [lo, hi],
 * over mapped segments, or over blocks of the direct-I/O buffer pool (the
 * only path here that does I/O, through bufpool cursors). No allocation; the
 * worker pool calls query_scan() once per segment and the results merge in
 * a query_acc. Integer sums wrap (two's complement), as they would in SQL
 * engines without overflow checks.
 *
 * A float sum is IEEE double arithmetic in one fixed order, so every answer
 * is exactly reproducible, and the same in mmap and direct mode, on any CPU
 * and build (no fused or reassociated arithmetic): within a segment, the
 * matched row numbered r from the segment's first row is added to lane
 * r % 16, in row order, each of the 16 lanes starting at +0.0; the lanes
 * are then added pairwise, ((l0 + l1) + (l2 + l3)) + ... as a balanced tree;
 * the segments' sums are added to +0.0 in the order the query names the
 * segments. (Lanes keep the scan at memory speed: a sum in row order waits
 * for one add per row. The rounding is pairwise-like, no worse than the
 * row order's.) Merging per-segment accumulators with query_acc_merge in
 * that order gives the same bits as one scan over the segments.
 *
 * NaN follows PostgreSQL (and Oracle's BINARY_DOUBLE, DuckDB): NaN is one
 * value, greater than every number including +inf. So over the matched rows
 * MAX is NaN as soon as one is NaN; MIN skips NaN unless every row is NaN;
 * SUM is IEEE arithmetic, NaN as soon as one is NaN (or +inf meets -inf);
 * COUNT counts NaN rows like any other. MIN and MAX stay consistent with an
 * ORDER BY of the same column. The kernels only count NaN rows next to their
 * plain compares (v != v), which keeps them branch-free.
 */
#ifndef SLUICE_QUERY_H
#define SLUICE_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "segfmt.h"
#include "wire.h"

struct bufpool;
struct bufpool_file;
struct zonemap;

/*
 * Where a scan finds a segment's column bytes: its mapping (base), or, in
 * direct I/O mode (base NULL), the buffer pool, which reads the blocks a
 * scan needs and pins them while the kernels run over them.
 */
struct query_source {
    const void *base;
    struct bufpool *pool;
    struct bufpool_file *file;
};

struct query_plan {
    enum wire_aggregate aggregate;
    int column;        /* index into the segment's columns */
    int filter_column; /* -1 without a filter */
    int64_t lo, hi;
    bool is_float;
};

struct query_acc {
    bool is_float;
    uint64_t matched;
    uint64_t rows_scanned, bytes_scanned, blocks_skipped;
    uint64_t isum; /* wrapping sum of int64 values */
    int64_t imin, imax;
    double fsum, fmin, fmax; /* fmin and fmax over the non-NaN values */
    uint64_t fnan;           /* matched NaN rows (counted for MIN and MAX) */
};

/*
 * Resolves column names against one segment's header. Returns 0, -ENOENT
 * when a column does not exist, or -EINVAL when a type does not fit (the
 * aggregated column must be int64 or float64, the filter column int64); err
 * names the column and the segment's type.
 */
int query_plan_make(const struct segment_header *hdr, enum wire_aggregate aggregate,
                    const char *column, const char *filter_column, int64_t lo, int64_t hi,
                    struct query_plan *ret, char *err, size_t err_len);

void query_acc_init(struct query_acc *acc, bool is_float);

/* Adds one segment's rows to acc. base is the mapped file, zm its index. */
void query_scan(const struct query_plan *plan, const void *base, const struct segment_header *hdr,
                const struct zonemap *zm, struct query_acc *acc);

/*
 * The same over either source. With the pool, the result is identical to a
 * scan of the mapped file, row for row. Returns 0, or the negated errno of a
 * failed read (-EIO, -ENODATA for a file shorter than its header says);
 * acc is then incomplete and must not be answered.
 */
int query_scan_source(const struct query_plan *plan, const struct query_source *src,
                      const struct segment_header *hdr, const struct zonemap *zm,
                      struct query_acc *acc);

/*
 * Folds src into dst (same is_float). The float sum is dst's plus src's, so
 * merging one accumulator per segment in the query's order is bit for bit
 * one scan over the segments in that order.
 */
void query_acc_merge(struct query_acc *dst, const struct query_acc *src);

/* The answer for aggregate; min/max over no rows give 0; NaN as the file comment says. */
void query_acc_result(const struct query_acc *acc, enum wire_aggregate aggregate,
                      struct wire_query_response *ret);

#endif
