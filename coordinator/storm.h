/*
 * storm: folds a storm of identical events into one row per interval, as
 * pure bookkeeping (no I/O, no clock: the caller passes the times).
 *
 * Events of the same kind, node and reason that come within interval_ms of
 * the first of them are "identical" (one node refusing hundreds of segments
 * for LOAD_CONCURRENCY in a second, a round of back-offs): the first one is
 * written as a row, and the rest only count into it. The caller asks
 * storm_fold() whether an event folds; if not, it writes a row and hands
 * its id to storm_open(). Before each commit it writes the counts that
 * changed (storm_drain()), so the catalog is as current as every other
 * event, and intervals that have ended are forgotten there.
 *
 * Expected load: one call per refusal (thousands a second); open intervals
 * are at most nodes x reasons x kinds, each about 100 bytes. O(1) per call,
 * O(open intervals) per drain. Single-threaded.
 */
#ifndef SLUICE_STORM_H
#define SLUICE_STORM_H

#include <stdbool.h>
#include <stdint.h>

struct storm;

/* interval_ms 0 folds nothing (every event is its own row). */
struct storm *storm_new(uint64_t interval_ms);
/* NULL-safe. */
void storm_free(struct storm *s);

/*
 * An event (kind, node, reason) at now_ms (a monotonic time base), wall_ms
 * (what the row stores). If an interval of the same key is open (its first
 * event came less than interval_ms before now_ms), the event is counted in
 * it and true is returned with its row in *ret_row; else false: the caller
 * writes a row and calls storm_open(). kind and node are copied; node may
 * be NULL or "" (no node).
 */
bool storm_fold(struct storm *s, const char *kind, const char *node, int reason, uint64_t now_ms,
                int64_t wall_ms, uint64_t *ret_row);

/* Opens an interval of that key at now_ms, whose first event is row (count 1). */
void storm_open(struct storm *s, const char *kind, const char *node, int reason, uint64_t now_ms,
                uint64_t row);

/*
 * Calls write(row, count, last_wall_ms, arg) for every interval whose count
 * changed since the last drain, and forgets intervals that ended before
 * now_ms (after writing them). A non-zero return from write stops the drain
 * and is returned; that interval stays unwritten.
 */
int storm_drain(struct storm *s, uint64_t now_ms,
                int (*write)(uint64_t row, uint64_t count, int64_t last_wall_ms, void *arg),
                void *arg);

/* Forgets every interval (their rows were rolled back). */
void storm_reset(struct storm *s);

/* Intervals open; events folded (not written as rows) since storm_new(). */
unsigned storm_open_count(const struct storm *s);
uint64_t storm_folded_total(const struct storm *s);

#endif
