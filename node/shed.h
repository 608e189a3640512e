/*
 * shed: which segment the node sheds, and why, once admission says to
 * (admission_should_shed: MEM_CRITICAL or MEM_THRASHING held for
 * --shed-after, or a fast run to MEM_EXHAUSTION). Pure: the store lists its LOADED segments as candidates,
 * the node passes the admission state. Called at most once per 100 ms tick.
 */
#ifndef SLUICE_NODE_SHED_H
#define SLUICE_NODE_SHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "admission.h"

struct shed_candidate {
    const char *id;
    uint64_t last_query_ms; /* 0: never queried */
    uint64_t bytes;         /* what shedding it frees (its mapping) */
    uint64_t footprint;     /* its observed footprint (store_seg_footprint) */
    uint64_t limit;         /* its declared mem_limit_bytes; 0: none */
};

/* True when a declared limit (not 0) is exceeded: the segment is OVER_LIMIT. */
bool shed_over_limit(uint64_t footprint, uint64_t limit);

/*
 * The candidate to shed. Segments over their declared limit go first, as
 * Kubernetes evicts pods over their requests first: they broke their word,
 * the others did not. Among those, the one furthest over (footprint minus
 * limit). Otherwise the one queried least recently (never queried first);
 * among equals, the largest, which frees most; among those, the first
 * listed. NULL when n is 0.
 */
const struct shed_candidate *shed_pick(const struct shed_candidate *c, size_t n);

/*
 * The sentence a segment shed for being over its limit carries: "footprint
 * F over its declared limit L; shed first under sustained <reason> (...)".
 */
void shed_detail_over_limit(enum wire_reason why, const struct shed_candidate *c,
                            const struct admission_signals *sig, char *buf, size_t len);

/*
 * Why admission_should_shed() said to shed: MEM_CRITICAL while that gate is
 * closed; else MEM_THRASHING while it is closed and breaching; else
 * MEM_EXHAUSTION while that is closed (a fast run); else MEM_THRASHING.
 */
enum wire_reason shed_reason(const struct admission_state *state);

/*
 * The sentence the shed segment carries: "shed under sustained <reason> (...)",
 * or for MEM_EXHAUSTION "shed under a fast run to MEM_EXHAUSTION (...)".
 */
void shed_detail(enum wire_reason why, const struct admission_signals *sig, char *buf,
                 size_t len);

#endif
