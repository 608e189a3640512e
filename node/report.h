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
 *
 * A 401 means the coordinator wants another token: logged as
 * report_unauthorized at once and then every 30 s while it lasts (with the
 * count), report_authorized when it ends; counted in the stats.
 *
 * Delta reports (report_state below, pure, no loop: `sluice-node farm` runs
 * one per virtual node): a report carries only the copies changed since the
 * report the coordinator acknowledged last, plus the digest of the whole
 * set (repset.h); the first report of a process, and any report after the
 * coordinator answered send_full or did not acknowledge (an older
 * coordinator), carries the whole set. The pressure snapshot is in every
 * report.
 *
 * Reports soon after loads end (reporter_soon()): the coordinator counts a
 * copy as outstanding in the node's dispatch window until a report says it
 * is LOADED, so a node that reported only every interval would get one
 * window of work per interval. A load that ends asks for a report; asks are
 * coalesced (the report leaves REPORTER_SOON_MS after the first ask, so the
 * loads of one batch, which end together, go in one delta) and bounded (never
 * sooner than REPORTER_MIN_GAP_MS after the previous report, and one in
 * flight at a time: an ask during a report is served after its answer). An
 * idle node still reports once an interval: every report restarts the
 * interval, so the periodic report is a heartbeat after an interval without
 * one, not an extra report between those asked for soon.
 */
#ifndef SLUICE_REPORT_H
#define SLUICE_REPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "epoch.h"
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
    /*
     * Optional, for a source that knows what changed (`sluice-node farm`):
     * fills ret->segments and ret->n_segments with the copies whose status
     * changed since the previous call (their status now; the reporter
     * frees them), *ret_removed (xmalloc'ed, the reporter frees it) and
     * *ret_n_removed with the ids gone since, and the digest of the whole
     * set (what repset_digest_of() gives for segments()'s list), and
     * forgets them. Then a delta report costs O(changes) instead of
     * listing and diffing the whole set each time; segments() is still
     * asked for a whole report. NULL: every report lists the whole set.
     */
    void (*changes)(void *arg, struct wire_node_status *ret,
                    char (**ret_removed)[WIRE_ID_MAX + 1], size_t *ret_n_removed,
                    uint64_t *ret_set_count, uint64_t *ret_set_hash);
};

/*
 * Called (with the source's arg) when the coordinator starts refusing
 * this node's id (detail: its message) and when it accepts it again (detail
 * NULL). Only on changes.
 */
typedef void (*reporter_conflict_cb)(void *arg, const char *detail);

struct coordlist;

struct reporter_config {
    const struct coordlist *coordinators; /* parsed once by the caller; the reporter copies it */
    const char *node_id;
    const char *advertise;   /* host:port the coordinator uses to reach this node */
    const char *token;
    uint64_t interval_ms;
    bool claim;              /* pull mode */
    reporter_conflict_cb conflict; /* may be NULL */
    /* The node's epoch fence (epoch.h): an answer from a lower epoch is ignored whole,
     * as if lost. NULL: no fencing. */
    struct epoch_fence *fence;
};

/* Starts reporting at once, then every cfg->interval_ms. src is copied; arg is passed to it. */
struct reporter *reporter_new(struct event_base *base, const struct reporter_config *cfg,
                              const struct reporter_source *src, void *arg);
void reporter_free(struct reporter *r);

/* A load ended, or failed: the first ask leaves this long before its report (later ones join). */
#define REPORTER_SOON_MS 20
/* Reports asked for soon are this far apart at least (10 a second while loads end). */
#define REPORTER_MIN_GAP_MS 100

/*
 * Asks for a report soon (see the top of this file): a load ended, so the
 * coordinator may send the next. NULL-safe; cheap to call for every load.
 */
void reporter_soon(struct reporter *r);

struct reporter_stats {
    uint64_t sent, failed, dropped;
    uint64_t conflicts; /* reports answered 409 (id held by another address) */
    bool in_conflict;   /* the last answer was 409 */
    uint64_t unauthorized; /* reports answered 401 (the coordinator wants another token) */
    bool in_unauthorized;  /* the last answer was 401 */
    uint64_t last_ok_mono_ms;
    uint64_t full, delta;   /* reports built whole, and as deltas */
    uint64_t full_asked;    /* answers that asked for the whole set (send_full) */
    uint64_t soon;          /* reports sent because a load ended (reporter_soon()) */
};
void reporter_get_stats(const struct reporter *r, struct reporter_stats *ret);

/* ---- delta reports, the node's side (pure) ---- */

struct report_state;

/* A process's report numbering and acknowledged base; incarnation 0: a random one. */
struct report_state *report_state_new(uint64_t incarnation);
/* NULL-safe. */
void report_state_free(struct report_state *s);
uint64_t report_state_incarnation(const struct report_state *s);

/*
 * Fills rep's list and delta fields (incarnation, seq, delta, base_seq,
 * removed, set digest) for the node's whole set cur[0..n) (each id once;
 * uris are not sent): a delta against the acknowledged base, or the whole
 * set when there is no base or the coordinator asked for it. rep->segments
 * and rep->removed then point into s: valid until the next report_build(),
 * and not freed by the caller (do not call wire_node_report_done on rep).
 * The other fields of rep are the caller's. Numbers the report: its seq.
 */
uint64_t report_build(struct report_state *s, const struct wire_segment_status *cur, size_t n,
                      struct wire_node_report *rep);

/* Whether the next report must be the whole set (no base yet, or the coordinator asked). */
bool report_wants_full(const struct report_state *s);

/*
 * Journal mode, for a source that knows what changed (reporter_source.changes):
 * as report_build, from the copies changed since the previous build
 * (changed[0..n_changed), their status now) and the ids gone
 * (removed[0..n_removed)), with the digest of the whole set given by the
 * source. The delta carries everything changed since the acknowledged
 * base, so what an unanswered report carried goes again; no copy of the
 * acknowledged set is kept. Only while !report_wants_full(): a whole
 * report is report_build() with the whole set. rep as with report_build().
 */
uint64_t report_build_changes(struct report_state *s, const struct wire_segment_status *changed,
                              size_t n_changed, const char (*removed)[WIRE_ID_MAX + 1],
                              size_t n_removed, uint64_t set_count, uint64_t set_hash,
                              struct wire_node_report *rep);

/*
 * The coordinator's answer to report seq (the last built): acknowledged,
 * the set it carried becomes the base of the next delta; send_full, or no
 * acknowledgement (an older coordinator, an ignored report): the next
 * report holds the whole set. Returns true when the next report will be
 * full because of this answer.
 */
bool report_answered(struct report_state *s, uint64_t seq, const struct wire_report_response *resp);

/* Report seq got no answer (transport error, a non-200): the base stays as it was. */
void report_unanswered(struct report_state *s, uint64_t seq);

struct report_state_stats {
    uint64_t full, delta;   /* reports built of each kind */
    uint64_t full_asked;    /* answers that asked for the whole set */
    uint64_t acked_seq;     /* the base of the next delta; 0: none */
};
void report_state_get_stats(const struct report_state *s, struct report_state_stats *ret);

#endif
