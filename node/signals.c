/*
 * signals: the admission controller's view of the node, from its
 * measurements (see signals.h for the rules). Pure and cheap: a few
 * comparisons per call, called per assignment and per tick.
 */
#include "signals.h"

#include <string.h>

/*
 * Whether the node's memory has room: its own cgroup limit when it has one,
 * the host's MemAvailable otherwise.
 */
static bool signals_room(const struct sampler_snapshot *s)
{
    bool own_limit = s->limit_source == SAMPLER_LIMIT_CGROUP_MAX ||
                     s->limit_source == SAMPLER_LIMIT_CGROUP_HIGH;

    if (own_limit) {
        uint64_t used = s->cg_usage > s->cg_inactive_file ? s->cg_usage - s->cg_inactive_file : 0;
        return used < s->limit_bytes / 10 * 9;
    }
    return (s->have & SAMPLER_HAVE_MEMINFO) && s->mem_available > s->mem_total / 10;
}

void signals_fuse(const struct signals_inputs *in, struct admission_signals *sig)
{
    const struct sampler_snapshot *s = in->snap;
    const struct store_totals *t = in->totals;

    memset(sig, 0, sizeof(*sig));
    sig->now_ms = in->now_ms;
    sig->draining = in->draining;
    if (s != NULL) {
        /*
         * PSI read host-wide (a v1 or hybrid host without the node's own
         * cgroup2 file) measures every tenant, including those stalling
         * against limits of their own. While the node's memory has room, a
         * stall there is a neighbour's: it does not close the node's
         * pressure gates.
         */
        bool neighbours = s->psi_host_wide && signals_room(s);

        sig->psi_available = (s->have & SAMPLER_HAVE_STALL_SOME) != 0 && !neighbours;
        if (sig->psi_available) {
            sig->some_frac = s->some_stall;
            sig->full_frac = s->full_stall;
            sig->some_avg10 = s->some.avg10;
            sig->full_avg10 = s->full.avg10;
        }
        sig->pgscan_per_s = s->pgscan_per_s;
        sig->refaults_available = (s->have & SAMPLER_HAVE_REFAULT_RATE) != 0;
        sig->refaults_per_s = s->refaults_per_s;
        sig->exhaust_available = s->tte_valid;
        sig->tte_ms = s->tte_ms;
        sig->fill_ms = s->fill_ms;
        sig->growth_bytes_per_s = s->growth_bytes_per_s;
        sig->swapins_available = (s->have & SAMPLER_HAVE_SWAPIN_RATE) != 0;
        sig->swapins_per_s = s->swapins_per_s;
        sig->oom_kills_recent = s->oom_kill_recent ? 1 : 0;
        sig->limit_bytes = (s->have & SAMPLER_HAVE_LIMIT) ? s->limit_bytes : 0;
    }
    /*
     * The capacity gate's footprint: the larger of the measured working set
     * and what the node has committed to serve from memory (its mapped
     * segment files and heap indexes). Measurement alone under-counts data
     * the kernel has quietly evicted while no query touched it; those bytes
     * come back, as thrashing, the moment queries do.
     */
    if (in->direct) {
        /*
         * Direct mode knows its memory to the byte: the pool (a fixed
         * charge, allocated at start), and per segment its heap (zone maps,
         * heap columns) and its metadata. No estimate and no page cache:
         * segment data beyond the pool stays on disk, and the latency gate
         * decides how much more of it the node takes.
         */
        sig->wss_bytes = in->direct_bytes;
    } else {
        /*
         * mlock'ed pages (--mlock-budget) can never be reclaimed, whether or
         * not queries touched them lately: they count in full, on top of the
         * measured working set (which may count some of them again: erring
         * on the side of refusing).
         */
        sig->wss_bytes = in->wss_estimate + t->pinned_bytes;
        if (sig->wss_bytes < t->mapped_bytes + t->index_bytes)
            sig->wss_bytes = t->mapped_bytes + t->index_bytes;
        /* A rise in the cgroup counts at once, without waiting for the estimator's tick. */
        if (s != NULL && (s->have & SAMPLER_HAVE_CG_USAGE) && (s->have & SAMPLER_HAVE_CG_STAT) &&
            s->cg_usage > s->cg_inactive_file &&
            s->cg_usage - s->cg_inactive_file > sig->wss_bytes)
            sig->wss_bytes = s->cg_usage - s->cg_inactive_file;
    }
    sig->reserved_bytes = in->reserved_bytes;
    sig->p99_1s_ms = in->p99_1s_ms;
    sig->p99_10s_ms = in->p99_10s_ms;
    sig->baseline_p99_ms = in->baseline_p99_ms;
    sig->queries_10s = in->queries_10s;
    sig->loads_in_flight = (unsigned)t->loads_in_flight;
    sig->disk_free_bytes = in->disk_free_bytes;
}
