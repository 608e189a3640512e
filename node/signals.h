/*
 * signals: fuses what the node measures into the admission controller's
 * view (struct admission_signals). Pure: no clock, no kernel, no store; the
 * node reads the sampler, the store totals, the latency ring and the
 * working-set estimator, and passes the values in. Called for every
 * assignment decision and every 100 ms tick.
 *
 * Rules applied (each is tested in tests/unit/check_signals.c):
 *  - PSI read host-wide (no cgroup2 file of the node's own) measures every
 *    tenant. While the node's memory has room (under 90% of its own cgroup
 *    limit, net of inactive file cache; or, without one, MemAvailable over
 *    10% of MemTotal), a host-wide stall is a neighbour's: psi_available is
 *    false and the PSI gates cannot close.
 *  - The capacity footprint (wss_bytes) in mmap mode is the largest of: the
 *    measured working set plus the mlock'ed bytes; the committed bytes
 *    (mapped files + heap indexes); and the cgroup's usage net of inactive
 *    file cache. In direct mode it is the exact footprint, nothing else.
 */
#ifndef SLUICE_NODE_SIGNALS_H
#define SLUICE_NODE_SIGNALS_H

#include <stdbool.h>
#include <stdint.h>

#include "admission.h"
#include "sampler.h"
#include "store.h"

struct signals_inputs {
    uint64_t now_ms;
    bool draining;
    const struct sampler_snapshot *snap; /* NULL: no sample yet */
    const struct store_totals *totals;   /* never NULL */
    bool direct;                         /* --io=direct */
    uint64_t direct_bytes;               /* direct mode: pool + tables + heaps + metadata */
    uint64_t wss_estimate;               /* mmap mode: the working-set estimator's value */
    uint64_t reserved_bytes;             /* cost of loads admitted and still loading */
    double p99_1s_ms, p99_10s_ms, baseline_p99_ms;
    uint64_t queries_10s;
    uint64_t disk_free_bytes; /* UINT64_MAX: unknown */
};

/* Fills *ret (every field) from in. */
void signals_fuse(const struct signals_inputs *in, struct admission_signals *ret);

#endif
