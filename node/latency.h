/*
 * latency: the node's query latency over the last minute, as a ring of 1 s
 * slots, each a struct histogram of nanoseconds, plus a slow baseline of the
 * 10 s p99 that the LATENCY_SLO gate compares against.
 *
 * Time is passed in by the caller (CLOCK_MONOTONIC nanoseconds, normally the
 * loop's cached time), so the module never reads a clock and tests can
 * inject any timeline. Slot s holds the queries recorded during second
 * floor(now_ns / 1e9) == s. A slot is reused, and cleared first, when a later
 * second maps onto it; readers only merge slots whose second lies inside the
 * window asked for, so idle gaps of any length need no catch-up work and
 * never resurrect stale data.
 *
 * Baseline: latency_tick(), called about once per second, takes the p99 of
 * the last baseline_window_s complete seconds (the current, partial second
 * excluded, so every tick sees the same amount of time) and, if that window
 * held at least baseline_min_count queries, folds it into an exponential
 * moving average: baseline += alpha * (p99 - baseline). The first qualifying
 * window seeds the baseline. Sparse windows leave it untouched, so a quiet
 * node does not learn a p99 from three queries.
 *
 * Expected load: latency_record() once per query (O(1), no allocation);
 * quantiles and ticks a few times per second (O(window_s * 1152) adds).
 * Memory: LATENCY_SLOTS + 1 histograms of about 9 KiB each.
 *
 * Loop-thread only: no locking; one struct latency must not be used from
 * two threads at once.
 */
#ifndef SLUICE_LATENCY_H
#define SLUICE_LATENCY_H

#include <stdint.h>

/* Number of 1 s slots: the longest window that can be asked for. */
#define LATENCY_SLOTS 60

#define LATENCY_DEFAULT_ALPHA     0.05
#define LATENCY_DEFAULT_MIN_COUNT 20
#define LATENCY_DEFAULT_WINDOW_S  10

struct latency;

struct latency_config {
    double baseline_alpha;       /* EMA weight of a new window, (0, 1]; 0 = default 0.05 */
    uint64_t baseline_min_count; /* queries a window needs to count; 0 = default 20 */
    unsigned baseline_window_s;  /* 1..LATENCY_SLOTS; 0 = default 10 */
};

/*
 * Returns an empty ring. cfg may be NULL for the defaults; out-of-range
 * values are replaced by the defaults. Never fails (allocation is fatal).
 */
struct latency *latency_new(const struct latency_config *cfg);

/* NULL-safe. */
void latency_free(struct latency *l);

/*
 * Records one query that took value_ns, finishing at now_ns. A now_ns older
 * than the newest second already recorded is counted in that newest second
 * (the ring never rewrites the past).
 */
void latency_record(struct latency *l, uint64_t now_ns, uint64_t value_ns);

/*
 * The q-quantile (nearest rank, see histogram_quantile) of the queries
 * recorded in the last window_s seconds: the current, partial second and
 * the window_s - 1 before it. window_s is clamped to 1..LATENCY_SLOTS.
 * Returns 0 when the window holds no query.
 */
uint64_t latency_quantile(struct latency *l, uint64_t now_ns, unsigned window_s, double q);

/* The number of queries in the same window as latency_quantile(). */
uint64_t latency_count(const struct latency *l, uint64_t now_ns, unsigned window_s);

/*
 * Updates the baseline from the baseline_window_s complete seconds before
 * now_ns's second, if they held at least baseline_min_count queries. Call
 * once per second; further calls within the same second do nothing, so a
 * tick can never count one window twice.
 */
void latency_tick(struct latency *l, uint64_t now_ns);

/* The baseline p99 in ns, or 0 while no window has qualified yet. */
uint64_t latency_baseline(const struct latency *l);

#endif
