/*
 * shed: the choice of the segment to shed under sustained memory pressure
 * (see shed.h). Pure: a linear pass over the LOADED segments, once a tick
 * at most, and only while shedding.
 */
#include "shed.h"

#include <math.h>
#include <stdio.h>

#include "reason.h"

bool shed_over_limit(uint64_t footprint, uint64_t limit)
{
    return limit > 0 && footprint > limit;
}

const struct shed_candidate *shed_pick(const struct shed_candidate *c, size_t n)
{
    const struct shed_candidate *best = NULL, *over = NULL;

    for (size_t k = 0; k < n; k++) {
        if (shed_over_limit(c[k].footprint, c[k].limit) &&
            (over == NULL ||
             c[k].footprint - c[k].limit > over->footprint - over->limit))
            over = &c[k];
        if (best == NULL || c[k].last_query_ms < best->last_query_ms ||
            (c[k].last_query_ms == best->last_query_ms && c[k].bytes > best->bytes))
            best = &c[k];
    }
    return over != NULL ? over : best;
}

enum wire_reason shed_reason(const struct admission_state *state)
{
    if (admission_gate_closed(state, WIRE_REASON_MEM_CRITICAL))
        return WIRE_REASON_MEM_CRITICAL;
    /* Thrashing sheds only while breaching; a closed exhaustion gate otherwise means a fast run. */
    if (admission_gate_closed(state, WIRE_REASON_MEM_THRASHING) &&
        state->gate[WIRE_REASON_MEM_THRASHING].breaching)
        return WIRE_REASON_MEM_THRASHING;
    if (admission_gate_closed(state, WIRE_REASON_MEM_EXHAUSTION))
        return WIRE_REASON_MEM_EXHAUSTION;
    return WIRE_REASON_MEM_THRASHING;
}

void shed_detail_over_limit(enum wire_reason why, const struct shed_candidate *c,
                            const struct admission_signals *sig, char *buf, size_t len)
{
    snprintf(buf, len,
             "footprint %llu over its declared limit %llu; shed first under sustained %s "
             "(full stall %.3f, refaults %.0f/s)",
             (unsigned long long)c->footprint, (unsigned long long)c->limit, reason_name(why),
             sig->full_frac, sig->refaults_per_s);
}

void shed_detail(enum wire_reason why, const struct admission_signals *sig, char *buf, size_t len)
{
    if (why == WIRE_REASON_MEM_EXHAUSTION)
        snprintf(buf, len,
                 "shed under a fast run to MEM_EXHAUSTION (time to exhaustion %.1f s, growth "
                 "%.1f MiB/s)",
                 sig->tte_ms == UINT64_MAX ? INFINITY : (double)sig->tte_ms / 1e3,
                 sig->growth_bytes_per_s / 1048576.0);
    else
        snprintf(buf, len, "shed under sustained %s (full stall %.3f, refaults %.0f/s)",
                 reason_name(why), sig->full_frac, sig->refaults_per_s);
}
