/*
 * membership: a node's state as the coordinator holds it, and the pure
 * rules that move it. The state has one owner, coord_node_set_state() in
 * membership.c, which applies a new state, then logs "old -> new (why)",
 * writes one node_state event and the catalog row, and tells the placer.
 * The placer never sets it: what an answer says about a node (no answer,
 * 503 DRAINING) is noted, and applied from the loop through that setter.
 * The functions declared here decide; they touch no loop, catalog or
 * placer, so check_membership tests them alone.
 *
 *   UP        reports, is sent assignments
 *   SUSPECT   an assignment got no answer; sent nothing until it reports
 *   DOWN      no report for --node-timeout; its copies are placed elsewhere
 *   DRAINING  drained by the operator or by itself; sent nothing new
 */
#ifndef SLUICE_MEMBERSHIP_H
#define SLUICE_MEMBERSHIP_H

#include <stdbool.h>
#include <stdint.h>

#include "placer.h"

enum membership_state {
    MEMBERSHIP_UP,
    MEMBERSHIP_SUSPECT,
    MEMBERSHIP_DOWN,
    MEMBERSHIP_DRAINING,
    MEMBERSHIP_STATE_COUNT_
};

/* "UP", "SUSPECT", "DOWN", "DRAINING"; "?" for a value out of range. */
const char *membership_state_name(enum membership_state s);

/* The state named (exactly, as the catalog stores it): 0, or -EINVAL and *ret untouched. */
int membership_state_parse(const char *name, enum membership_state *ret);

/* Whether the node answers: UP or DRAINING (what a surplus is judged against). */
bool membership_is_live(enum membership_state s);

/*
 * What the placer is told: DOWN and SUSPECT as they are; a DRAINING node,
 * and a pull-mode (claim) node of any live state, as DRAINING (it is sent
 * nothing); else UP.
 */
enum placer_node_state membership_placer_state(enum membership_state s, bool claim);

/* The state a report puts a node in: DRAINING if the operator or the node drains it, else UP. */
enum membership_state membership_on_report(bool admin_drained, bool self_draining);

/*
 * The state after the operator drains (drain true) or undrains a node in
 * state cur. Only a node that answers changes: UP becomes DRAINING on a
 * drain; DRAINING becomes UP on an undrain unless the node drains itself.
 * A DOWN or SUSPECT node keeps its state (its next report applies it).
 */
enum membership_state membership_on_admin(enum membership_state cur, bool drain,
                                          bool self_draining);

/* The state after an assignment got no answer: SUSPECT from UP, else unchanged. */
enum membership_state membership_on_no_answer(enum membership_state cur);

/*
 * The state after what answers to assignments said since the coordinator
 * last acted on them (any number of each, applied as one transition): an
 * assignment got no answer (no_answer), or was refused 503 DRAINING
 * (said_draining). From UP: SUSPECT if any got no answer (a node that does
 * not answer is not known to be draining), else DRAINING if one said so.
 * Any other state is kept: a report or the timeout moves it.
 */
enum membership_state membership_on_answers(enum membership_state cur, bool no_answer,
                                            bool said_draining);

/*
 * Whether a node not DOWN, last heard from at last_seen_ms, is DOWN at now_ms
 * (one monotonic time base): silent for more than timeout_ms.
 */
bool membership_timed_out(enum membership_state cur, uint64_t now_ms, uint64_t last_seen_ms,
                          uint64_t timeout_ms);

#endif
