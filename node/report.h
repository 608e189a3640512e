/*
 * report: the node's heartbeat to the coordinator. Every interval it POSTs a
 * NodeReport (state, pressure snapshot, every segment with its state) to
 * /v1/report and hands what the answer says to drop back to its source. One
 * report is in flight at a time; a slow or absent coordinator never blocks
 * the node.
 *
 * What a report says comes from a struct reporter_source: the daemon's
 * store (node.c), or one virtual node of `sluice-node farm` (farm.c), so
 * both report exactly alike.
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
struct reporter;

/*
 * The contents of a report, asked for at each tick (with the arg given to
 * reporter_new()), and where the coordinator's drops go.
 */
struct reporter_source {
    /* Fills the node's state and pressure. */
    void (*fill)(void *arg, enum wire_node_state *state, struct wire_pressure *pressure);
    /*
     * Fills ret->segments and ret->n_segments with every segment the node
     * holds, as store_status() does; the reporter frees them
     * (wire_node_status_done) and sends no URI.
     */
    void (*segments)(void *arg, struct wire_node_status *ret);
    /* The coordinator's answer says to drop id (already logged as drop_requested). */
    void (*drop)(void *arg, const char *id);
};

/*
 * Called (with the source's arg) when the coordinator starts refusing
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

/* Starts reporting at once, then every cfg->interval_ms. src is copied; arg is passed to it. */
struct reporter *reporter_new(struct event_base *base, const struct reporter_config *cfg,
                              const struct reporter_source *src, void *arg);
void reporter_free(struct reporter *r);

struct reporter_stats {
    uint64_t sent, failed, dropped;
    uint64_t conflicts; /* reports answered 409 (id held by another address) */
    bool in_conflict;   /* the last answer was 409 */
    uint64_t last_ok_mono_ms;
};
void reporter_get_stats(const struct reporter *r, struct reporter_stats *ret);

#endif
