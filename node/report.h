/*
 * report: the node's heartbeat to the coordinator. Every interval it POSTs a
 * NodeReport (state, pressure snapshot, every segment with its state) to
 * /v1/report and unloads what the answer says to drop. One report is in
 * flight at a time; a slow or absent coordinator never blocks the node.
 *
 * A 409 answer means the coordinator holds this node id for a live node at
 * another address. The reporter logs node_id_conflict (once, with the
 * coordinator's message), tells the api through the conflict callback, and
 * keeps reporting: the conflict ends with the first report the coordinator
 * accepts (the other process gone past the node timeout, e.g. this same node
 * restarted on a new address), logged as node_id_conflict_resolved.
 */
#ifndef SLUICE_REPORT_H
#define SLUICE_REPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "wire.h"

struct event_base;
struct store;
struct reporter;

/* Fills the node's state and pressure for a report (the api owns them). */
typedef void (*reporter_fill_cb)(void *arg, enum wire_node_state *state,
                                 struct wire_pressure *pressure);

/*
 * Called (with the fill callback's arg) when the coordinator starts refusing
 * this node's id (detail: its message) and when it accepts it again (detail
 * NULL). Only on changes.
 */
typedef void (*reporter_conflict_cb)(void *arg, const char *detail);

struct reporter_config {
    const char *coordinator; /* host:port */
    const char *node_id;
    const char *advertise;   /* host:port the coordinator uses to reach this node */
    const char *token;
    uint64_t interval_ms;
    bool claim;              /* pull mode */
    reporter_conflict_cb conflict; /* may be NULL */
};

struct reporter *reporter_new(struct event_base *base, struct store *st,
                              const struct reporter_config *cfg, reporter_fill_cb fill,
                              void *fill_arg);
void reporter_free(struct reporter *r);

struct reporter_stats {
    uint64_t sent, failed, dropped;
    uint64_t conflicts; /* reports answered 409 (id held by another address) */
    bool in_conflict;   /* the last answer was 409 */
    uint64_t last_ok_mono_ms;
};
void reporter_get_stats(const struct reporter *r, struct reporter_stats *ret);

#endif
