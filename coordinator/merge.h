/*
 * merge: the broker's exact merging of partial aggregate answers, as pure
 * code (no I/O, no clock). A query over a table names its segments in one
 * order, the query's order (0 .. n-1); the broker sends each node the
 * segments it chose there, in that order, and each node answers one
 * wire_query_response over them (a "piece"). merge folds the pieces into
 * the answer the table query gives, and remembers which segments no piece
 * covered, for an error or a partial answer that names them.
 *
 * What the merged answer equals, for the direct per-segment answers r_i
 * (one query per segment i, on any replica):
 *
 *   COUNT, rows_matched, rows_scanned, bytes_scanned, blocks_skipped:
 *       the sum of the r_i's, exactly.
 *   SUM of an int64 column: the sum of the r_i's modulo 2^64 (two's
 *       complement wrap-around, as node/query.c sums a segment's rows), so
 *       exactly the direct answer, whatever the grouping and the order.
 *   MIN, MAX: the least / greatest r_i over the segments that matched at
 *       least one row (a piece with rows_matched 0 has no value), with NaN
 *       greater than every number, as node/query.h orders it: MAX is NaN as
 *       soon as one r_i is NaN, MIN is NaN only when every one is. Equal
 *       under ==; the sign of a zero may differ (-0.0 == +0.0). Over no
 *       matched row at all, 0 (as a node answers).
 *   SUM of a float64 column: node/query.c sums a segment in 16 lanes by row
 *       number and the segments of one request in the request's order,
 *       starting at +0.0. merge adds the pieces' sums to +0.0 in the order
 *       of each piece's first segment, whatever order they arrive in. So:
 *       - when every piece covers one segment (or one piece covers them
 *         all), the answer is bit for bit ((+0.0 + r_0) + r_1) + ... +
 *         r_{n-1}, the answer of one node scanning all the segments in the
 *         query's order;
 *       - otherwise (a node sums its run from +0.0, so even consecutive
 *         runs regroup the additions), it is another binary summation tree
 *         over the same r_i: |merged - direct| <= 2 * gamma(n-1) * sum|r_i|,
 *         with gamma(k) = k*u / (1 - k*u), u = 2^-53 (Higham, "Accuracy and
 *         Stability of Numerical Algorithms", 2nd ed., section 4.2: each
 *         order is within gamma(n-1) * sum|r_i| of the real sum).
 *       NaN and infinities follow IEEE arithmetic, as in a node.
 *
 * Expected load: one merge per table query, one merge_add per node answer;
 * O(n) memory in the query's segment count. Single-threaded.
 */
#ifndef SLUICE_MERGE_H
#define SLUICE_MERGE_H

#include <stdbool.h>
#include <stddef.h>

#include "wire.h"

struct merge;

/*
 * A merge for a query of aggregate over n_segments segments (0 allowed: an
 * empty table answers count 0, sum 0). Never fails (xmalloc).
 */
struct merge *merge_new(enum wire_aggregate aggregate, size_t n_segments);
void merge_free(struct merge *m); /* NULL-safe */

/*
 * Folds one node's answer r over the segments whose query indexes are
 * segs[0 .. n-1] (the node was asked for them in the query's order, so segs
 * is strictly increasing). Returns 0; -EINVAL when n is 0, segs is not
 * strictly increasing or names an index past the query's, or r's is_float
 * differs from a piece already added (COUNT answers are never float);
 * -EEXIST when a segment is already covered (of a hedged request only the
 * first answer counts: the caller drops the other). On error nothing changes.
 */
int merge_add(struct merge *m, const struct wire_query_response *r, const size_t *segs, size_t n);

/* True when every segment of the query is covered by a piece. */
bool merge_complete(const struct merge *m);

/*
 * The segments no piece covers: their query indexes, in increasing order,
 * written to ret (up to max of them). Returns how many are missing, which
 * may be more than max.
 */
size_t merge_missing(const struct merge *m, size_t *ret, size_t max);

/*
 * The merged answer, as the file comment defines it. Returns 0 with *ret
 * written; -ENODATA when segments are missing and allow_partial is false
 * (ret untouched: the caller names them from merge_missing). With
 * allow_partial, the answer over the covered segments only, and the caller
 * must say which are missing.
 */
int merge_result(const struct merge *m, bool allow_partial, struct wire_query_response *ret);

#endif
