/*
 * window: a node's dispatch window, as pure policy (no I/O, no clock: the
 * caller passes the times). It plays the part of TCP's congestion window
 * for assignments: how many a node may have outstanding (sent and not yet
 * answered, or accepted and not yet reported LOADED) is learnt from the
 * node's own answers, never from what the coordinator thinks of its memory.
 *
 *   202 (accepted)    grows it: below ssthresh by one per round trip (slow
 *                     start with RFC 3465's limit L = 1: an acceptance grows
 *                     it only if it was sent after the last growth, so the
 *                     probe past the node's capacity overshoots by one, not
 *                     by the half-window that doubling would send), above it
 *                     by 1/window per acceptance (congestion avoidance);
 *   429 (refused)     cuts it in half (ssthresh too), once per round: the
 *                     refusals of assignments sent before the last cut are
 *                     the same congestion and do not cut again;
 *   Retry-After       of a refusal whose reason is the node's state, not the
 *                     segment's (LOAD_CONCURRENCY, the memory-pressure gates,
 *                     LATENCY_SLO) pauses the node: nothing new is sent to it
 *                     before then. MEM_CAPACITY and DISK_FULL depend on the
 *                     segment's size: they cut but do not pause (the placer
 *                     keeps that segment off that node until its Retry-After).
 *
 * Other answers (503 DRAINING, 507, 422, transport errors) leave the window
 * alone: membership and the placer deal with them.
 *
 * The node's advertised load window (its load_slots: loads it allows in
 * flight now, in the pressure snapshot of every answer and report) bounds
 * the window as TCP's receive window bounds the congestion window: room is
 * counted against the smaller of the two, and the window does not grow
 * while the advertised one is the bound (so a later cut halves what the
 * node really took, not a window inflated by acceptances it never limited).
 * A node that loads 4 at a time is so sent 4, not probed with a fifth that
 * it refuses with LOAD_CONCURRENCY (and a Retry-After pause) every few
 * rounds. It is a count of load slots, not memory: memory stays the node's
 * own admission, learnt only from its refusals. 0 (an older node, or one
 * with admission off) bounds nothing.
 *
 * Expected load: one call per answer. The struct is embedded in the
 * coordinator's node; single-threaded.
 */
#ifndef SLUICE_WINDOW_H
#define SLUICE_WINDOW_H

#include <stdbool.h>
#include <stdint.h>

#include "wire.h"

#define WINDOW_INITIAL 2
#define WINDOW_MIN     1
#define WINDOW_MAX     4096

struct window {
    double cwnd, ssthresh;
    uint64_t sent;         /* sequence number of the last send */
    uint64_t recover;      /* sends numbered up to this were out when the window was last cut */
    uint64_t grown;        /* ... when it last grew in slow start */
    uint64_t paused_until; /* caller's time base; nothing is sent before it */
    uint64_t advertised;   /* the node's load_slots last said; 0: none */
    uint64_t accepted_total, refused_total, cuts_total, pauses_total;
};

/* A fresh window: WINDOW_INITIAL, slow start up to WINDOW_MAX, not paused. */
void window_init(struct window *w);

/* The node's load_slots, from the answer or report just received (0: not said). */
void window_on_advertise(struct window *w, uint64_t slots);

/* Numbers one assignment sent to the node; hand the number back with its answer. */
uint64_t window_on_send(struct window *w);

/* The node accepted the assignment numbered seq (202). */
void window_on_accept(struct window *w, uint64_t seq);

/*
 * The node refused an assignment numbered seq with a 429 for reason, with
 * Retry-After retry_ms (0: none), at now_ms. Returns true when this refusal
 * cut the window (the first of its round).
 */
bool window_on_refuse(struct window *w, uint64_t seq, enum wire_reason reason, uint32_t retry_ms,
                      uint64_t now_ms);

/* Whether a refusal for this reason speaks of the node's state (pauses it), not the segment. */
bool window_reason_pauses(enum wire_reason reason);

/*
 * How many more assignments may go to the node at now_ms when outstanding
 * are out already (in flight plus accepted and not yet reported loaded):
 * 0 while paused, else the whole window (bounded by the advertised one)
 * less outstanding (0 if over).
 */
unsigned window_room(const struct window *w, unsigned outstanding, uint64_t now_ms);

/* The whole window, rounded down (at least WINDOW_MIN). */
unsigned window_size(const struct window *w);

#endif
