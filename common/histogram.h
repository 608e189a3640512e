/*
 * histogram: a fixed-size log-linear histogram of uint64 values (nanoseconds
 * by convention), in the manner of HdrHistogram.
 *
 * Values below 2^(HISTOGRAM_SUB_BITS + 1) get a bucket each. Above that, each
 * power-of-two range [2^k, 2^(k+1)) is split into 2^HISTOGRAM_SUB_BITS equal
 * sub-buckets, so a bucket is never wider than 2^-HISTOGRAM_SUB_BITS (about 3%)
 * of the values it holds. The top of the range is HISTOGRAM_MAX_VALUE
 * (2^40 - 1 ns, about 18 minutes); larger values are clamped into the last
 * bucket and also counted in `overflow`.
 *
 * The struct is public so that callers can embed it (the node keeps a ring of
 * them, one per 1 s slot); it holds no pointers and needs no cleanup, and an
 * all-zero struct is a valid empty histogram. Not thread-safe: the caller
 * serialises access to one histogram.
 */
#ifndef SLUICE_HISTOGRAM_H
#define SLUICE_HISTOGRAM_H

#include <stddef.h>
#include <stdint.h>

#define HISTOGRAM_SUB_BITS  5
#define HISTOGRAM_MAX_BITS  40
#define HISTOGRAM_MAX_VALUE ((UINT64_C(1) << HISTOGRAM_MAX_BITS) - 1)
/* 2^SUB_BITS exact buckets, then 2^SUB_BITS per power of two up to MAX_BITS. */
#define HISTOGRAM_BUCKETS ((HISTOGRAM_MAX_BITS - HISTOGRAM_SUB_BITS + 1) << HISTOGRAM_SUB_BITS)

struct histogram {
    uint64_t counts[HISTOGRAM_BUCKETS];
    uint64_t total;    /* values recorded, overflowed ones included */
    uint64_t sum;      /* sum of the values as recorded; saturates at UINT64_MAX */
    uint64_t min, max; /* exact; both 0 while total is 0 */
    uint64_t overflow; /* values above HISTOGRAM_MAX_VALUE */
};

/* Empties h. Equivalent to zeroing it. */
void histogram_reset(struct histogram *h);

/* Adds one value. O(1), no allocation, no floating point. */
void histogram_record(struct histogram *h, uint64_t value);

/* Adds every value recorded in src to dst, as if recorded there directly. */
void histogram_merge(struct histogram *dst, const struct histogram *src);

/*
 * Returns the nearest-rank q-quantile: a value in the bucket that holds the
 * value of rank ceil(q * total) (rank at least 1), namely the highest value
 * that bucket can hold, clamped to [min, max]. So the answer errs high by at
 * most 2^-HISTOGRAM_SUB_BITS of the true value, and q = 0 and q = 1 return
 * min and max exactly. q outside [0, 1] (or NaN) is clamped to it. Returns 0
 * for an empty histogram. A rank that falls among overflowed values (but is
 * not the maximum) returns HISTOGRAM_MAX_VALUE. O(HISTOGRAM_BUCKETS).
 */
uint64_t histogram_quantile(const struct histogram *h, double q);

/* HISTOGRAM_BUCKETS, for code that walks counts[]. */
size_t histogram_bucket_count(void);

/*
 * The largest value that bucket i holds (inclusive). Bucket i holds the values
 * from histogram_bucket_upper(i - 1) + 1 (0 for i = 0) to this one; the last
 * bucket also holds the overflowed values. i must be below HISTOGRAM_BUCKETS.
 */
uint64_t histogram_bucket_upper(size_t i);

#endif
