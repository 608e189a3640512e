/*
 * tte: time to exhaustion, as pure code. The sampler feeds it one point per
 * sample: the bytes in use that cannot be dropped cheaply (usage plus swap,
 * less inactive page cache), the bytes the node itself holds, and the
 * capacity they are measured against (the memory limit plus the swap the
 * cgroup may use). It fits a least-squares line to the last window of
 * points of (used - self), so that noise of a sample or two does not move
 * the slope much, and answers:
 *   rate   bytes per second that others (not the node) add, from the fit;
 *   tte    (capacity - used) / rate when rate > 0, else "never";
 *   fill   capacity / rate: how long the growth would take to fill the
 *          whole capacity from empty. A long fill time is a slow leak, a
 *          short one a fast run to OOM (admission tells them apart by it).
 * The node's own growth is left out of the rate on purpose: MEM_CAPACITY
 * accounts for what the node admits, and counting its own loads here would
 * make every burst of loading look like a run to OOM.
 *
 * No I/O, no clock, no allocation; one struct tte belongs to one caller
 * (the sampling context). A zeroed struct is an empty estimator.
 */
#ifndef SLUICE_TTE_H
#define SLUICE_TTE_H

#include <stdbool.h>
#include <stdint.h>

#define TTE_POINTS            128
#define TTE_DEFAULT_WINDOW_NS (5ull * 1000000000ull)
/* Fewer points than this in the window give no estimate. */
#define TTE_MIN_POINTS 5
/* "Never": no growth, or no estimate. */
#define TTE_NEVER_MS UINT64_MAX

struct tte_point {
    uint64_t t_ns;
    double others; /* used - self, bytes */
};

struct tte {
    uint64_t window_ns; /* 0 = TTE_DEFAULT_WINDOW_NS */
    struct tte_point pt[TTE_POINTS];
    unsigned head, n; /* ring: pt[(head + i) % TTE_POINTS], i < n, oldest first */
};

struct tte_estimate {
    bool valid;              /* enough points in the window for a fit */
    double rate_bytes_per_s; /* slope of (used - self); may be negative */
    uint64_t headroom_bytes; /* capacity - used, 0 if used >= capacity */
    uint64_t tte_ms;         /* TTE_NEVER_MS unless valid and rate > 0 */
    uint64_t fill_ms;        /* capacity / rate; TTE_NEVER_MS unless valid and rate > 0 */
};

/* Empties t and sets its window (0 = TTE_DEFAULT_WINDOW_NS). */
void tte_init(struct tte *t, uint64_t window_ns);

/*
 * Adds one point and writes the estimate over the window ending at t_ns.
 * A point whose t_ns is not after the newest one restarts the series (the
 * clock went back, or the caller's source changed). capacity 0 or
 * UINT64_MAX (unknown or unlimited) gives an estimate with valid false. ret
 * may be NULL.
 */
void tte_add(struct tte *t, uint64_t t_ns, uint64_t used_bytes, uint64_t self_bytes,
             uint64_t capacity_bytes, struct tte_estimate *ret);

/* Forgets every point (a source went missing); keeps the window. */
void tte_reset(struct tte *t);

#endif
