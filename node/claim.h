/*
 * claim: pull mode's policy (--claim). The node asks the coordinator for at
 * most claim_batch segments at a time and runs each through its own
 * admission, like a push. The batch size is AIMD: +1 after a claim of at
 * least the current batch that was fully accepted, halved (never below 1)
 * after a refusal, and halved on every tick while the node is under
 * pressure (then it claims nothing). Pure: the node passes its state in.
 * Expected load: one call per claim tick (500 ms) and per answered claim.
 */
#ifndef SLUICE_NODE_CLAIM_H
#define SLUICE_NODE_CLAIM_H

#include <stdbool.h>
#include <stddef.h>

#include "admission.h"

#define CLAIM_MAX_BATCH 64 /* segments per claim, at most */
#define CLAIM_MIN_BATCH 1

/*
 * The batch after a claim of n segments of which accepted were accepted,
 * asked while the batch was batch. n == 0 leaves it unchanged.
 */
double claim_after_answers(double batch, size_t n, size_t accepted);

/* Multiplicative decrease: half, never below CLAIM_MIN_BATCH. */
double claim_backoff(double batch);

/*
 * Whether the node should claim nothing now: it is draining, a memory or
 * latency gate (MEM_CRITICAL .. LATENCY_SLO) is closed, or, with a latency
 * SLO set and at least latency_min_queries queries in the last 10 s, the
 * 10 s p99 is over the SLO. The last is stricter than the LATENCY_SLO gate,
 * which also wants p99 over baseline x factor: a pulling node stops asking
 * as soon as it misses its SLO, rather than when it misses it badly.
 */
bool claim_pressure(const struct admission_config *cfg, const struct admission_state *state,
                    const struct admission_signals *sig);

#endif
