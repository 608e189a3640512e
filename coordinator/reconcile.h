/*
 * reconcile: how a node's report is judged against the model, as pure
 * code. reconcile_report() walks one report and returns a plan: what to do
 * with each reported copy (adopt, drop, record a new state, take an invalid
 * vote) and which copies the model has on the node are lost. It reads the
 * model and changes nothing in it; the coordinator applies the plan after
 * the walk (coord_report_apply() in model.c), so no decision in one report
 * sees another's effect half done. No loop, catalog or placer: check_reconcile
 * builds a model in memory and tests the walk and the rules alone.
 *
 * Counts in the rules are the caller's: "live" copies are LOADED copies on
 * nodes that answer (UP or DRAINING, membership_is_live()); a copy on a
 * SUSPECT or DOWN node may be gone.
 */
#ifndef SLUICE_RECONCILE_H
#define SLUICE_RECONCILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "repset.h"
#include "wire.h"

struct coord;
struct coord_node;
struct coord_seg;

/* What is done with one reported copy, or with a copy the report lacks. */
enum reconcile_kind {
    RECONCILE_KEEP,    /* known, same state: the segment's state is recomputed */
    RECONCILE_UPDATE,  /* known, new state (LOADING -> LOADED): recorded */
    RECONCILE_ADOPT,   /* unknown to the model, and the segment needs it: adopted */
    RECONCILE_EXTRA,   /* unknown to the model, enough copies elsewhere: dropped */
    RECONCILE_STALE,   /* another file than the registered one: dropped, asked again later */
    RECONCILE_DROP,    /* an unknown or INVALID segment: dropped */
    RECONCILE_GONE,    /* reported FAILED or DROPPED: the holder goes, the node retries later */
    RECONCILE_UNHELD,  /* FAILED or DROPPED, a copy the model did not have: cleared */
    RECONCILE_LOST,    /* held by the model, missing from the report past the grace */
    RECONCILE_KIND_COUNT_
};

struct reconcile_action {
    enum reconcile_kind kind;
    struct coord_seg *seg;                /* NULL for DROP of an unknown segment */
    const struct wire_segment_status *rep; /* the reported copy; NULL for LOST */
    bool revalidate;  /* INVALID, but reported LOADED: PENDING again, first */
    bool surplus;     /* KEEP/UPDATE: more copies than asked, this one dropped after */
    bool vote;        /* GONE as FAILED SEGMENT_INVALID: the node's invalid vote */
    bool invalid;     /* ... and with it the quorum is reached: INVALID */
    bool clear_votes; /* ... but a LOADED copy proves the failures local: forgotten */
};

/*
 * A plan: actions in report order, then the lost copies. Owned by the caller.
 * An incremental plan (reconcile_delta()) also holds the copies it judged:
 * copies[0..n_copies), found[i] false for an id the node's set lacks.
 */
struct reconcile_plan {
    struct reconcile_action *v;
    size_t n, cap;
    struct wire_segment_status *copies;
    bool *found;
    size_t n_copies, cap_copies;
};

/*
 * Judges the report of node n (segs[0..n_segs)) against the model c at
 * now_ms (coord_now_ms()), writing the actions into *ret (emptied first;
 * it may hold a previous plan's storage). Reads c, n and the segments only:
 * nothing in them changes. Actions point into the model and into segs:
 * valid until either changes. A segment reported twice gets an action
 * each, judged on the same model.
 */
void reconcile_report(const struct coord *c, const struct coord_node *n,
                      const struct wire_segment_status *segs, size_t n_segs, uint64_t now_ms,
                      struct reconcile_plan *ret);

/*
 * ---- Incremental reconciliation ----
 *
 * A full reconcile of a node's whole set every report costs O(copies); in
 * a quiet cluster almost every copy is "settled": in the node's set as
 * LOADED, held by the model on that node as LOADED, of a segment that is
 * not INVALID, not stale, not a surplus. Judging a settled copy gives a
 * KEEP that changes nothing. So each node keeps the ids of the copies that
 * are not known to be settled (n->unsettled), and a delta report is judged
 * on those plus the ids the delta names: work in proportion to the change.
 *
 * A settled copy stays settled until the node's set changes (the delta
 * names it) or the model changes something its judgement reads; each such
 * change marks the copy (reconcile_mark(), reconcile_touch()) where it is
 * made:
 *   - a holder added or removed on the node, a holder's state changed, a
 *     segment's state changed (INVALID and back), a segment removed or its
 *     registered file learnt (model.c, api.c): every holder of the segment
 *     is marked, since the count of copies and their states decide surplus;
 *   - a node that becomes live again (UP or DRAINING after SUSPECT or
 *     DOWN): its own next report is reconciled whole, and the segments it
 *     holds with more copies than asked are marked on their holders, since
 *     its LOADED copies count for their surplus again (membership.c).
 * Copies the model holds on the node that its set lacks stay unsettled
 * until they are reported or found lost after the grace.
 * A full report, a node's first report, and every report of an older node
 * are reconciled whole (reconcile_report()), and the unsettled set is then
 * rebuilt from scratch. The simulation (tests/sim) checks at every delta
 * that the incremental plan does exactly what a full reconcile would.
 */

/* Marks node n's copy of seg_id to be judged at n's next report. */
void reconcile_mark(struct coord_node *n, const char *seg_id);

/*
 * Marks s on every node the model has as its holder (see above): always
 * when all, else only when s has more holders than its replication (when a
 * change of one copy may make another a surplus).
 */
void reconcile_touch(const struct coord *c, const struct coord_seg *s, bool all);

/*
 * Node n became live again (UP or DRAINING after SUSPECT or DOWN): its next
 * applied report is reconciled whole, and its segments with more holders
 * than their replication are touched.
 */
void reconcile_node_back(struct coord *c, struct coord_node *n);

/* Whether node n's next applied report must be reconciled whole. */
bool reconcile_needs_whole(const struct coord_node *n);

/*
 * The incremental walk: judges node n's unsettled copies and the ids its
 * delta rep names (changed and removed), against the node's rebuilt set,
 * at now_ms. Marks rep's ids on n first (so an id is judged once). Reads
 * the model as reconcile_report() does; the plan's actions point into the
 * plan's own copies.
 */
void reconcile_delta(const struct coord *c, struct coord_node *n, const struct repset *set,
                     const struct wire_node_report *rep, uint64_t now_ms,
                     struct reconcile_plan *ret);

/*
 * After the plan was applied: the unsettled set of n, rebuilt from scratch
 * after a whole reconcile (segs[0..n_segs), the set reconciled; set, the
 * node's rebuilt set), or, after reconcile_delta(), the judged copies that
 * are now settled taken out of it (segs NULL).
 */
void reconcile_settle(const struct coord *c, struct coord_node *n, const struct repset *set,
                      const struct wire_segment_status *segs, size_t n_segs,
                      const struct reconcile_plan *plan);

/* Whether the reported copy r (NULL: the node's set lacks seg_id) of node n is settled. */
bool reconcile_settled(const struct coord *c, const struct coord_node *n, const char *seg_id,
                       const struct wire_segment_status *r);

/* Frees n's unsettled set (its node is freed); NULL-safe. */
void reconcile_node_done(struct coord_node *n);

/*
 * Whether two plans for the same report do the same: every action but a
 * KEEP that changes nothing (not surplus, not revalidated) in one is in the
 * other, with the same kind, segment and flags. For the simulation's check
 * of reconcile_delta() against reconcile_report(); on false, why names the
 * first difference.
 */
bool reconcile_plans_agree(const struct reconcile_plan *whole, const struct reconcile_plan *part,
                           char *why, size_t len);

/* Frees the plan's storage and empties it. NULL-safe. */
void reconcile_plan_done(struct reconcile_plan *p);

/* "KEEP", "UPDATE", ...; "?" out of range. */
const char *reconcile_kind_name(enum reconcile_kind k);

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
 * The distinct nodes that have voted a segment INVALID once node's vote is
 * counted: voters (the n_voters remembered, up to remember_max of them)
 * plus node unless it has voted already, or the list is full.
 */
unsigned reconcile_votes_with(const char (*voters)[WIRE_ID_MAX + 1], unsigned n_voters, const char *node,
                              unsigned remember_max);

/*
 * Distinct nodes whose SEGMENT_INVALID vote makes a segment INVALID: quorum,
 * or all the nodes not DOWN (alive) when fewer (at least 1): a cluster down
 * to one node takes its word rather than reload a corrupt file for ever.
 */
unsigned reconcile_invalid_quorum(size_t alive, unsigned quorum);

#endif
