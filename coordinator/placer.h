/*
 * placer: the coordinator's assignment policy, as pure event-driven logic.
 *
 * Blind round-robin: each segment that wants copies is fired at the next node
 * in ring order (order of first registration) that is UP, does not hold the
 * segment, is not excluded for it and has room under the per-node in-flight
 * bound. The placer does no memory arithmetic and infers nothing about a
 * node's capacity; it trusts each node's answer. A refusal sends the segment
 * to the next node; when every eligible UP node has refused it in the
 * current round, the segment backs off until the earliest Retry-After among
 * them (jittered earlier, never later) and then starts a fresh round; every
 * refusing node stays excluded for that segment until its own Retry-After.
 * New capacity (a node coming UP, a node accepting) wakes a bounded number
 * of backing-off segments that the node could take. 422 from a quorum of
 * distinct nodes (invalid_quorum, or every node when the cluster has fewer)
 * makes the segment INVALID unless the daemon knows a good copy. No answer at
 * all (timeout, connection error) moves the attempt on.
 *
 * The placer never changes a node's state: only placer_node_set() does,
 * called by the daemon, whose membership owns that fact. An answer that
 * says something about the node (no answer at all, 503 DRAINING) is seen by
 * the daemon, which passed it in; the daemon applies what follows from it
 * after placer_on_answer() has returned, before the next placer_tick().
 *
 * No I/O, no clock, no randomness of its own: the daemon passes now_ms (a
 * monotonic clock: every deadline here is relative to it, and a wall-clock
 * step must not move them) and a random u32 in, receives assignments through placer_ops.assign and learns
 * what happened through the other callbacks. Single-threaded. The placer
 * holds only segments that still want copies (fed from the catalog and from
 * node reports); a segment is dropped silently once enough copies are held
 * or accepted and nothing is in flight for it.
 *
 * Expected load: up to 10^5..10^6 pending segments and tens to hundreds of
 * nodes. Segments and nodes are found through hash maps, ready segments sit
 * in FIFOs, timed waits in a min-heap and capacity waits on per-node lists,
 * so a tick costs O(work done), not O(segments). Memory is about 200 bytes
 * per pending segment plus ~64 bytes per (segment, node) pair it touched.
 */
#ifndef SLUICE_PLACER_H
#define SLUICE_PLACER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire.h"

struct placer;

#define PLACER_REPLICAS_MAX 64

enum placer_node_state {
    PLACER_NODE_UP = 0,
    PLACER_NODE_SUSPECT, /* missed a request or a report: gets nothing */
    PLACER_NODE_DOWN,    /* gone: gets nothing; also used for removal */
    PLACER_NODE_DRAINING, /* alive, answers in flight, gets nothing new */
    PLACER_NODE_STATE_COUNT_
};

/* How the placer classifies an answer (see placer_classify()). */
enum placer_outcome {
    PLACER_ACCEPTED = 0,     /* 202 */
    PLACER_REFUSED,          /* 429, 503, 507 */
    PLACER_INVALID,          /* 422 */
    PLACER_TRANSPORT_ERROR,  /* no HTTP answer: timeout, connection error */
    PLACER_UNEXPECTED,       /* any other status (400, 401, 500, 200, ...) */
    PLACER_OUTCOME_COUNT_
};

struct placer_config {
    unsigned max_in_flight_per_node; /* 0: 64 */
    unsigned max_in_flight_total;    /* 0: 4096 */
    unsigned invalid_quorum;         /* distinct nodes answering 422; 0: 2 (see on_invalid) */
    unsigned jitter_percent;         /* backoff jitter, earlier only; 0: 20, capped at 50 */
    uint32_t default_retry_ms;       /* refusal without Retry-After; 0: 1000 */
    uint32_t max_retry_ms;           /* cap on a peer's Retry-After and on a backoff; 0: 600000 */
    uint32_t unexpected_retry_ms;    /* exclusion after an unexpected status; 0: 30000 */
    /*
     * The segment id and uri given to placer_want() stay valid, unchanged,
     * until the placer forgets the segment or is freed (the coordinator's
     * segment records do): they are borrowed, not copied (at 10^6 pending
     * segments, about 80 MB less).
     */
    bool borrow_strings;
};

/* A segment as shown to the transport and the callbacks: valid during the call only. */
struct placer_segment {
    const char *id;
    const char *uri;
    uint64_t row_count;
    uint64_t avg_row_size;
    unsigned replicas_wanted;
};

/* What a node answered to one attempt, filled in by the daemon. */
struct placer_answer {
    int http_status;         /* 202, 429, ...; 0 when no HTTP answer came (timeout, connect) */
    enum wire_reason reason; /* body or X-Sluice-Reason; WIRE_REASON_NONE when absent */
    uint32_t retry_after_ms; /* 0 when absent */
};

/*
 * The daemon's side. assign is required, every callback may be NULL. None of
 * them may call back into the placer (such calls fail with -EBUSY). Node and
 * segment strings are valid during the call only.
 */
struct placer_ops {
    /*
     * Fire one assignment. The daemon must later call placer_on_answer()
     * exactly once for attempt_id (with http_status 0 on timeout or error),
     * unless the placer aborts the attempt first (the node went DOWN or
     * SUSPECT, or the segment was forgotten or found INVALID); answers to
     * aborted attempts are ignored. Never call placer_on_answer() from here.
     */
    void (*assign)(void *ctx, uint64_t attempt_id, const char *node_id,
                   const struct placer_segment *seg);
    /* 202: the daemon records the assignment LOADING. */
    void (*on_accepted)(void *ctx, const struct placer_segment *seg, const char *node_id);
    /* 429/503/507; retry_after_ms as used (defaulted, capped). */
    void (*on_refused)(void *ctx, const struct placer_segment *seg, const char *node_id,
                       enum wire_reason reason, uint32_t retry_after_ms);
    /* Every eligible UP node refused in this round: nothing is sent before until_ms. */
    void (*on_backoff)(void *ctx, const struct placer_segment *seg, uint64_t until_ms);
    /*
     * invalid_quorum distinct nodes answered 422 (every node of the ring, if
     * it has fewer). Return true to agree: the placer forgets the segment.
     * Return false when a copy is known good, so the failures are local to
     * those nodes: the segment stays pending and they are not asked again.
     * NULL agrees.
     */
    bool (*on_invalid)(void *ctx, const struct placer_segment *seg);
    /* A status outside the protocol: the pair is excluded for unexpected_retry_ms. */
    void (*on_unexpected)(void *ctx, const struct placer_segment *seg, const char *node_id,
                          int http_status);
};

struct placer_stats {
    size_t segments;         /* pending: want more copies or have attempts in flight */
    size_t ready;            /* queued for the next tick */
    size_t backing_off;      /* every eligible node refused: waiting out the backoff */
    size_t waiting_retry;    /* the only eligible nodes are excluded until a Retry-After */
    size_t waiting_capacity; /* every candidate node is at its in-flight bound */
    size_t waiting_nodes;    /* no eligible node at all (e.g. fewer UP nodes than replicas) */
    size_t in_flight;        /* attempts */
    uint64_t attempts_total;
    uint64_t outcomes_total[PLACER_OUTCOME_COUNT_]; /* aborted attempts count as TRANSPORT_ERROR */
    uint64_t refused_by_reason_total[WIRE_REASON_COUNT_];
    uint64_t aborted_total;  /* attempts failed because their node went DOWN/SUSPECT */
    uint64_t late_answers_total; /* answers to unknown or aborted attempts, ignored */
    uint64_t backoffs_total;
    uint64_t invalid_total;  /* segments declared INVALID (on_invalid agreed) */
    uint64_t capacity_wakes_total; /* backoffs ended early by new capacity on a node */
};

struct placer_node_info {
    const char *id; /* valid until the next call that changes the placer */
    enum placer_node_state state;
    size_t in_flight;
    size_t limit;   /* its in-flight bound (placer_node_set_limit()) */
    size_t waiting; /* segments waiting for a slot on this node */
    uint64_t assigned_total;
    uint64_t outcomes_total[PLACER_OUTCOME_COUNT_];
};

/* cfg may be NULL (all defaults). ops and ctx are borrowed for the placer's life. */
struct placer *placer_new(const struct placer_config *cfg, const struct placer_ops *ops,
                          void *ctx);
/* Frees everything; in-flight attempts are forgotten without callbacks. NULL-safe. */
void placer_free(struct placer *p);

/*
 * Adds a node or changes its state. A new node joins the ring at its end, in
 * any state; a node leaves it only through placer_node_remove(). Going DOWN or SUSPECT
 * aborts the node's attempts in flight as transport errors: their segments
 * are tried elsewhere and late answers are ignored. Going DRAINING keeps attempts in flight. Coming UP wakes segments
 * that had no eligible node, and up to max_in_flight_per_node segments
 * backing off that this node could take (each later 202 from it wakes one
 * more). Returns 0, -EINVAL (bad id or state), -EBUSY.
 */
int placer_node_set(struct placer *p, const char *node_id, enum placer_node_state state);

/*
 * Sets the node's in-flight bound (at most max_in_flight_per_node, which is
 * its bound until this is called): the daemon's dispatch window for it.
 * 0 sends it nothing new; attempts in flight stay. Raising it lets the
 * node's waiting segments go first at the next tick. Returns 0, -EINVAL
 * (bad id), -ENOENT (unknown node), -EBUSY.
 */
int placer_node_set_limit(struct placer *p, const char *node_id, size_t limit);

/*
 * Removes a DOWN node for good: from the ring (the nodes after it keep their
 * order), the name map and every pending segment's record (its refusals,
 * exclusions, 422 and holder flags); a segment that counted it as a holder
 * wants a copy again. A node of that id registered later is a new node.
 * Costs O(pending segments x their records): an operator's act, not a hot
 * path. Returns 0, -ENOENT (unknown), -EINVAL (not DOWN), -EBUSY.
 */
int placer_node_remove(struct placer *p, const char *node_id);

/*
 * Asks for replicas_wanted (1..PLACER_REPLICAS_MAX) copies of a segment, of
 * which holders (nodes with it LOADING or LOADED; unknown ones are registered
 * DOWN) already have n_holders; they are never chosen. Calling it again for
 * a pending segment replaces its description and holder set (the catalog is
 * the truth, copies accepted meanwhile should be among the holders) and
 * keeps its attempts in flight, exclusions, round and backoff: no duplicate
 * work. A segment that needs nothing more is not kept. Strings are copied,
 * unless placer_config.borrow_strings.
 * Returns 0, -EINVAL (bad id, uri or count) or -EBUSY.
 */
int placer_want(struct placer *p, const char *seg_id, const char *uri, uint64_t row_count,
                uint64_t avg_row_size, unsigned replicas_wanted, const char *const *holders,
                size_t n_holders);

/* Drops a segment and aborts its attempts (late answers are ignored). 0, -ENOENT, -EBUSY. */
int placer_forget(struct placer *p, const char *seg_id);

/*
 * The segment is not sent to the node before until_ms (e.g. the node DROPPED
 * it while shedding, with a Retry-After). Call after placer_want(); a later
 * exclusion never shortens an earlier one. 0, -ENOENT (segment or node
 * unknown), -EINVAL, -EBUSY.
 */
int placer_exclude(struct placer *p, const char *seg_id, const char *node_id, uint64_t until_ms);

/*
 * Ends backoffs and retry waits that expired at now_ms and fires as many
 * assignments as the in-flight bounds allow, through ops->assign. The only
 * function that calls assign. Returns the number fired, or -EBUSY.
 */
int placer_tick(struct placer *p, uint64_t now_ms);

/*
 * When the next tick has work: 0 when it could fire now, else the earliest
 * end of a backoff or retry wait, UINT64_MAX when only answers or membership
 * changes can create work.
 */
uint64_t placer_next_deadline(const struct placer *p);

/*
 * Records the answer to an attempt and calls the matching callback. The
 * segment's next attempt is queued, never fired from here; random feeds the
 * backoff jitter. The node's state is left as it is, whatever the answer:
 * after a 0 return for a transport error (placer_classify()) or a 503
 * DRAINING, the daemon decides what the node is now and says so through
 * placer_node_set() before its next placer_tick() (else the segment may be
 * sent to the same node again). Returns 0, -ENOENT for an unknown or
 * aborted attempt (ignored, counted as late: it says nothing new about the
 * node), -EINVAL (a NULL answer), -EBUSY.
 */
int placer_on_answer(struct placer *p, uint64_t attempt_id, const struct placer_answer *a,
                     uint64_t now_ms, uint32_t random);

/* PLACER_ACCEPTED for 202, ... ; PLACER_TRANSPORT_ERROR for 0 (or any status <= 0). */
enum placer_outcome placer_classify(int http_status);
const char *placer_outcome_name(enum placer_outcome o);       /* "ACCEPTED", ... */
const char *placer_node_state_name(enum placer_node_state s); /* "UP", ... */

void placer_get_stats(const struct placer *p, struct placer_stats *ret);
size_t placer_node_count(const struct placer *p);
/* Node i in ring order. 0 or -ENOENT. */
int placer_node_info(const struct placer *p, size_t i, struct placer_node_info *ret);
/* 0 or -ENOENT. */
int placer_node_lookup(const struct placer *p, const char *node_id,
                       struct placer_node_info *ret);

/*
 * Writes why a segment is pending into buf, in sentences for people
 * (always NUL-terminated, truncated if needed): a first line with the
 * copies held and out and what it waits for (the nodes' answers, the next
 * round "in 42 s", a node that can take it, naming what the nodes are when
 * none is UP, e.g. every node DRAINING), then one line per node, "  id
 * (STATE): ...", with its role (holds it, has the assignment) or its last
 * answer (what and how long ago) and how long it is not asked again.
 * now_ms is the placer's clock. 0 or -ENOENT.
 */
int placer_explain(const struct placer *p, const char *seg_id, uint64_t now_ms, char *buf,
                   size_t len);

#endif
