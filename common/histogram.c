/*
 * histogram: log-linear buckets. Expected load: histogram_record runs once
 * per query on the request path, so it is a count-leading-zeros, a shift and
 * a few adds; quantiles and merges run a few times per second over ~1150
 * buckets, on the sampler or at scrape time.
 *
 * Bucket layout, with S = HISTOGRAM_SUB_BITS: a value v below 2^(S+1) goes to
 * bucket v. Otherwise let k be the index of v's highest set bit and
 * shift = k - S; v goes to bucket (shift << S) + (v >> shift), where
 * v >> shift is in [2^S, 2^(S+1)). That makes the index monotonic in v and
 * every bucket of the power-of-two range k exactly 2^shift wide.
 */
#include "histogram.h"

#include <assert.h>
#include <string.h>

#define SUB_COUNT (UINT64_C(1) << HISTOGRAM_SUB_BITS)

/* Maps a value no larger than HISTOGRAM_MAX_VALUE to its bucket. */
static inline size_t histogram_index(uint64_t v)
{
    unsigned shift;

    if (v < 2 * SUB_COUNT)
        return (size_t)v;
    shift = (unsigned)(63 - __builtin_clzll(v)) - HISTOGRAM_SUB_BITS;
    return ((size_t)shift << HISTOGRAM_SUB_BITS) + (size_t)(v >> shift);
}

/* The width shift of bucket i: buckets below 2 * SUB_COUNT are one wide. */
static unsigned histogram_bucket_shift(size_t i)
{
    size_t group = i >> HISTOGRAM_SUB_BITS;

    return group == 0 ? 0 : (unsigned)(group - 1);
}

void histogram_reset(struct histogram *h)
{
    memset(h, 0, sizeof(*h));
}

void histogram_record(struct histogram *h, uint64_t value)
{
    size_t i;

    if (value > HISTOGRAM_MAX_VALUE) {
        h->overflow++;
        i = HISTOGRAM_BUCKETS - 1;
    } else {
        i = histogram_index(value);
    }
    h->counts[i]++;
    if (h->total == 0 || value < h->min)
        h->min = value;
    if (value > h->max)
        h->max = value;
    h->total++;
    if (__builtin_add_overflow(h->sum, value, &h->sum))
        h->sum = UINT64_MAX;
}

void histogram_merge(struct histogram *dst, const struct histogram *src)
{
    if (src->total == 0)
        return;
    for (size_t i = 0; i < HISTOGRAM_BUCKETS; i++)
        dst->counts[i] += src->counts[i];
    if (dst->total == 0 || src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
    dst->total += src->total;
    dst->overflow += src->overflow;
    if (__builtin_add_overflow(dst->sum, src->sum, &dst->sum))
        dst->sum = UINT64_MAX;
}

uint64_t histogram_quantile(const struct histogram *h, double q)
{
    uint64_t rank, seen = 0;

    if (h->total == 0)
        return 0;
    if (!(q > 0.0)) {
        rank = 1; /* also NaN */
    } else if (q >= 1.0) {
        rank = h->total;
    } else {
        double r = q * (double)h->total;

        /*
         * ceil(r), except that a product a rounding step above an integer
         * (0.07 * 100 is 7.000000000000001) counts as that integer, so that
         * q = 0.999 means what it says in decimal.
         */
        rank = (uint64_t)r;
        if ((double)rank < r && r - (double)rank > r * 1e-12)
            rank++;
        if (rank < 1)
            rank = 1;
        if (rank > h->total)
            rank = h->total;
    }
    /* The extremes are known exactly, including an overflowed maximum. */
    if (rank == 1)
        return h->min;
    if (rank == h->total)
        return h->max;
    for (size_t i = 0; i < HISTOGRAM_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            uint64_t v = histogram_bucket_upper(i);

            if (v > h->max)
                v = h->max;
            if (v < h->min)
                v = h->min;
            return v;
        }
    }
    /* Unreachable while the counts add up to total. */
    assert(0 && "histogram counts do not add up to total");
    return h->max;
}

size_t histogram_bucket_count(void)
{
    return HISTOGRAM_BUCKETS;
}

uint64_t histogram_bucket_upper(size_t i)
{
    unsigned shift;
    uint64_t lower;

    assert(i < HISTOGRAM_BUCKETS);
    shift = histogram_bucket_shift(i);
    lower = (uint64_t)(i - ((size_t)shift << HISTOGRAM_SUB_BITS)) << shift;
    return lower + (UINT64_C(1) << shift) - 1;
}
