/*
 * recommend: a per-table recommendation of declared memory, from the
 * footprints nodes observed, in the manner of the Kubernetes Vertical Pod
 * Autoscaler's recommender. Pure: samples in, numbers out; no I/O, no clock.
 *
 * VPA sets a container's request at the 90th percentile of its usage
 * histogram (targetCPUPercentile 0.9) and its upper bound at the 95th
 * (upperBoundCPUPercentile 0.95), each with a 15 % safety margin
 * (recommendationMarginFraction 0.15), and for memory it takes peaks.
 * Here the population is a table's segments, and each sample is a segment's
 * peak footprint (the largest any of its LOADED copies reported): the
 * recommended per-segment request is p90 x 1.15, so that admission reserves
 * enough for nine segments in ten with room for the next one's growth, and
 * the limit p95 x 1.15, so that a segment is flagged OVER_LIMIT (and shed
 * first) only when it is bigger than nearly every other segment of its table
 * and then some. Percentiles are nearest-rank (always a value observed), and
 * values are rounded up to whole 4 KiB pages and capped at
 * WIRE_MEM_DECLARED_MAX, so a recommendation can always be declared as is.
 *
 * A table of segments of very different sizes gets one request for all of
 * them: the ratios say how far off that is (estimate_ratio compares the
 * row-count estimate, rows x avg_row_size, with what was observed).
 */
#ifndef SLUICE_RECOMMEND_H
#define SLUICE_RECOMMEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire.h"

#define RECOMMEND_REQUEST_PERCENTILE 0.90
#define RECOMMEND_LIMIT_PERCENTILE   0.95
#define RECOMMEND_MARGIN             0.15
#define RECOMMEND_ROUND_BYTES        4096u

/* One segment of a table. */
struct recommend_sample {
    uint64_t observed;         /* peak footprint reported; 0: none yet (not counted) */
    uint64_t estimate;         /* rows x avg_row_size */
    uint64_t request, limit;   /* declared; 0: none */
    bool over_limit;           /* a node reported it over its limit */
};

/*
 * The nearest-rank q-quantile (0 < q <= 1) of n > 0 ascending values: the
 * smallest value with at least q x n values at or below it.
 */
uint64_t recommend_percentile(const uint64_t *sorted, size_t n, double q);

/* v x (1 + RECOMMEND_MARGIN), rounded up to RECOMMEND_ROUND_BYTES, capped. 0 stays 0. */
uint64_t recommend_with_margin(uint64_t v);

/*
 * Fills every field of *ret but the table from n samples (n may be 0). With
 * nothing observed, the percentiles, the recommendation and the ratios are
 * 0. Ratios are medians (nearest rank) over the observed segments that have
 * the other figure: observed / declared request, observed / declared limit,
 * observed / estimate. declared_*_bytes and estimate_bytes are medians over
 * every segment that has one.
 */
void recommend_table(const struct recommend_sample *s, size_t n,
                     struct wire_recommendation *ret);

#endif
