/*
 * shed: which segment the node sheds, and why, once admission says to
 * (admission_should_shed: MEM_CRITICAL or MEM_THRASHING held for
 * --shed-after, or a fast run to MEM_EXHAUSTION). Pure: the store lists its LOADED segments as candidates,
 * the node passes the admission state. Called at most once per 100 ms tick.
 */
#ifndef SLUICE_NODE_SHED_H
#define SLUICE_NODE_SHED_H

#include <stddef.h>
#include <stdint.h>

#include "admission.h"

struct shed_candidate {
    const char *id;
    uint64_t last_query_ms; /* 0: never queried */
    uint64_t bytes;         /* what shedding it frees (its mapping) */
};

/*
 * The candidate to shed: the one queried least recently (never queried
 * first); among equals, the largest, which frees most; among those, the
 * first listed. NULL when n is 0.
 */
const struct shed_candidate *shed_pick(const struct shed_candidate *c, size_t n);

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
