/*
 * reconcile: the pure rules by which a node's report is judged against the
 * model (reconcile.c applies them). They touch no loop, catalog or placer,
 * so check_reconcile tests them alone. Counts passed in are the caller's:
 * "live" copies are LOADED copies on nodes that answer (UP or DRAINING,
 * membership_is_live()); a copy on a SUSPECT or DOWN node may be gone.
 */
#ifndef SLUICE_RECONCILE_H
#define SLUICE_RECONCILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Whether a reported copy is another file than the registered segment: its
 * row count differs, or both digests are known and differ. 0 is unknown
 * for either (a LOADING copy, a node or registration from before digests)
 * and is never compared.
 */
bool reconcile_copy_is_stale(uint64_t reg_rows, uint64_t reg_digest, uint64_t rep_rows,
                             uint64_t rep_digest);

/*
 * Whether a copy the model did not know of is adopted: the segment has fewer
 * holders than its replication, or the copy is LOADED and fewer than
 * replication live LOADED copies exist (live_loaded, this node excluded).
 */
bool reconcile_adopt(unsigned n_holders, unsigned replication, bool reported_loaded,
                     unsigned live_loaded);

/*
 * Whether the node's copy is surplus and dropped: more holders than the
 * replication asks, and at least replication live LOADED copies elsewhere
 * (live_loaded_elsewhere counts no copy of this node).
 */
bool reconcile_surplus(unsigned n_holders, unsigned replication, unsigned live_loaded_elsewhere);

/*
 * Whether a copy the model has on the node, missing from its report, is
 * lost: the holder has been in its state for more than grace_ms (a copy
 * assigned since the node built its report is not lost). now_ms >= since_ms.
 */
bool reconcile_is_lost(bool reported, uint64_t now_ms, uint64_t since_ms, uint64_t grace_ms);

/*
 * Distinct nodes whose SEGMENT_INVALID vote makes a segment INVALID: quorum,
 * or all the nodes not DOWN (alive) when fewer (at least 1): a cluster down
 * to one node takes its word rather than reload a corrupt file for ever.
 */
unsigned reconcile_invalid_quorum(size_t alive, unsigned quorum);

#endif
