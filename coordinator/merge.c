/*
 * merge: folds the nodes' partial answers into a table query's answer.
 * Counters, int64 sums (uint64_t arithmetic: wrap-around is defined) and
 * min/max fold as they arrive; float sums are kept per piece, at the index
 * of the piece's first segment, and added in that order only when the
 * answer is asked for, so the answer does not depend on which node (or
 * hedge) answered first. See merge.h for what the answer equals.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "merge.h"
#include "xmalloc.h"

struct merge {
    enum wire_aggregate aggregate;
    size_t n;
    bool *covered;      /* per segment */
    bool *piece_at;     /* per segment: a piece starts here */
    double *piece_fsum; /* per segment: that piece's float sum */
    bool typed, is_float;
    uint64_t matched, rows_scanned, bytes_scanned, blocks_skipped;
    uint64_t isum;
    bool have_value; /* some piece matched a row: the min/max below are set */
    int64_t imin, imax;
    double fmin, fmax;
};

struct merge *merge_new(enum wire_aggregate aggregate, size_t n_segments)
{
    struct merge *m = xcalloc(1, sizeof(*m));
    size_t n = n_segments ? n_segments : 1;

    m->aggregate = aggregate;
    m->n = n_segments;
    m->covered = xcalloc(n, sizeof(*m->covered));
    m->piece_at = xcalloc(n, sizeof(*m->piece_at));
    m->piece_fsum = xcalloc(n, sizeof(*m->piece_fsum));
    return m;
}

void merge_free(struct merge *m)
{
    if (!m)
        return;
    free(m->covered);
    free(m->piece_at);
    free(m->piece_fsum);
    free(m);
}

/* a < b with NaN greater than every number (node/query.h's order). */
static bool merge_fless(double a, double b)
{
    if (isnan(a))
        return false;
    if (isnan(b))
        return true;
    return a < b;
}

int merge_add(struct merge *m, const struct wire_query_response *r, const size_t *segs, size_t n)
{
    bool is_float = r->is_float && m->aggregate != WIRE_AGG_COUNT;

    if (n == 0 || (r->is_float && m->aggregate == WIRE_AGG_COUNT))
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (segs[i] >= m->n || (i > 0 && segs[i] <= segs[i - 1]))
            return -EINVAL;
    }
    if (m->typed && is_float != m->is_float)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (m->covered[segs[i]])
            return -EEXIST;
    }

    /* Checked: now apply. */
    m->typed = true;
    m->is_float = is_float;
    for (size_t i = 0; i < n; i++)
        m->covered[segs[i]] = true;
    m->matched += r->rows_matched;
    m->rows_scanned += r->rows_scanned;
    m->bytes_scanned += r->bytes_scanned;
    m->blocks_skipped += r->blocks_skipped;
    if (m->aggregate == WIRE_AGG_SUM) {
        if (is_float) {
            m->piece_at[segs[0]] = true;
            m->piece_fsum[segs[0]] = r->float_value;
        } else {
            m->isum += (uint64_t)r->int_value;
        }
    }
    if (r->rows_matched > 0) {
        if (!m->have_value) {
            m->imin = m->imax = r->int_value;
            m->fmin = m->fmax = r->float_value;
            m->have_value = true;
        } else {
            m->imin = r->int_value < m->imin ? r->int_value : m->imin;
            m->imax = r->int_value > m->imax ? r->int_value : m->imax;
            m->fmin = merge_fless(r->float_value, m->fmin) ? r->float_value : m->fmin;
            m->fmax = merge_fless(m->fmax, r->float_value) ? r->float_value : m->fmax;
        }
    }
    return 0;
}

bool merge_complete(const struct merge *m)
{
    return merge_missing(m, NULL, 0) == 0;
}

size_t merge_missing(const struct merge *m, size_t *ret, size_t max)
{
    size_t k = 0;

    for (size_t i = 0; i < m->n; i++) {
        if (m->covered[i])
            continue;
        if (k < max)
            ret[k] = i;
        k++;
    }
    return k;
}

int merge_result(const struct merge *m, bool allow_partial, struct wire_query_response *ret)
{
    struct wire_query_response r;
    double fsum = +0.0;

    if (!allow_partial && !merge_complete(m))
        return -ENODATA;
    memset(&r, 0, sizeof(r));
    r.rows_matched = m->matched;
    r.rows_scanned = m->rows_scanned;
    r.bytes_scanned = m->bytes_scanned;
    r.blocks_skipped = m->blocks_skipped;
    r.is_float = m->is_float;
    switch (m->aggregate) {
    case WIRE_AGG_COUNT:
        r.int_value = (int64_t)m->matched;
        break;
    case WIRE_AGG_SUM:
        if (m->is_float) {
            for (size_t i = 0; i < m->n; i++) {
                if (m->piece_at[i])
                    fsum += m->piece_fsum[i];
            }
            r.float_value = fsum;
        } else {
            r.int_value = (int64_t)m->isum;
        }
        break;
    case WIRE_AGG_MIN:
    case WIRE_AGG_MAX:
        if (!m->have_value)
            break;
        if (m->is_float)
            r.float_value = m->aggregate == WIRE_AGG_MIN ? m->fmin : m->fmax;
        else
            r.int_value = m->aggregate == WIRE_AGG_MIN ? m->imin : m->imax;
        break;
    default:
        break;
    }
    *ret = r;
    return 0;
}
