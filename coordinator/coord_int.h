/*
 * coord_int: the coordinator daemon's private header. One struct coord is
 * shared by the files below, each of which holds one role; this header maps
 * every role to its file (in the manner of OpenBSD's httpd.h), so that a
 * reader finds where a thing is done from here. Nothing outside
 * coordinator/ includes it but the unit suite of a pure walk over the
 * model (check_reconcile, which builds a model in memory): the public
 * contract is coord.h.
 *
 * Everything runs on the one event loop thread; no function here is
 * thread-safe. Functions that write the catalog do so inside the group
 * transaction (coord_txn()), committed a few ms later or by coord_flush().
 */
#ifndef SLUICE_COORD_INT_H
#define SLUICE_COORD_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <event2/event.h>
#include <event2/http.h>

#include "catalog.h"
#include "coord.h"
#include "history.h"
#include "http.h"
#include "intake.h"
#include "keymap.h"
#include "membership.h"
#include "ordset.h"
#include "pmap.h"
#include "placer.h"
#include "reconcile.h"
#include "storm.h"
#include "strmap.h"
#include "window.h"
#include "wire.h"

/* A copy the node has not reported yet is not "lost" before this. */
#define COORD_REPORT_GRACE_MS 3000
#define COORD_COMMIT_DELAY_MS 5
#define COORD_MEMBERSHIP_MS   250
/*
 * The leader's lease: a round trip on the connection that holds the lead
 * (catalog_leading) younger than this lets it act (send assignments or
 * drops) without another. PostgreSQL ends the session after 5 s idle
 * (CAT_LEAD_LEASE), so a check this recent proves the lock still held.
 */
#define COORD_LEASE_CHECK_MS 1000
/*
 * A coordinator that stepped down tries the lock again only after this:
 * two of a standby's one-second tries, so that a standby that is up takes
 * the lead first instead of the deposed one taking it straight back (a
 * session ended by pg_terminate_backend, a flaky connection).
 */
#define COORD_STEPDOWN_HOLD_MS 2000
/*
 * Distinct nodes that must find a segment's file bad before it is INVALID:
 * one node that cannot read it may be the one at fault. Only a cluster of a
 * single node, which could never reach the quorum, takes its word alone.
 */
#define COORD_INVALID_QUORUM 2
/* A stale copy's node is asked for the segment again after this (it unlinks first). */
#define COORD_STALE_RETRY_MS 2000
/*
 * Identical events (kind, node, reason) within this long of the first are
 * one row with a count: a storm of refusals costs a row per node and reason
 * per second, not a row per segment.
 */
#define COORD_STORM_MS 1000
/* `sluice-coord status` lists the coordinators heard from within this long. */
#define COORD_SEEN_MS 10000

enum coord_seg_state { COORD_PENDING, COORD_LOADED, COORD_INVALID };

/*
 * One copy of a segment on a node. node borrows its node's id: a node
 * outlives its holders (coord_forget() takes them out before it frees the
 * node), so 10^6 copies do not carry 10^6 copies of the node's name.
 */
struct coord_holder {
    const char *node;              /* the holding struct coord_node's id */
    enum wire_segment_state state; /* LOADING or LOADED */
    uint64_t since_ms;             /* coord_now_ms() of the last change */
};

/*
 * A registered segment: the one record every map, set and list points at
 * (c->segs, the state sets, each holder node's held map, the change log),
 * none of which copies its id. One allocation holds the record, its id and
 * its uri (coord_seg_alloc()); the table name is interned (one copy per
 * table, coord_intern_table()) and last_reason is a byte. About 150
 * bytes a segment with a 12-byte id and a 32-byte uri (DESIGN.md §8): the
 * fields are ordered and narrowed, and what few segments have is kept
 * apart (struct coord_seg_faults), so that the record, id and uri fit a
 * 160-byte malloc chunk, not 208.
 */
struct coord_seg {
    const char *table; /* interned (coord_intern_table()); never NULL, set by coord_seg_set_table() */
    uint64_t row_count, avg_row_size;
    uint64_t digest; /* content digest the registration carried; 0: unknown */
    uint64_t mem_request_bytes, mem_limit_bytes; /* declared; 0: none */
    uint64_t footprint_bytes; /* largest a LOADED copy reported (coord_seg_observe) */
    uint64_t footprint_saved; /* what the catalog holds of it */
    uint64_t backoff_until_ms;  /* coord_now_ms() time base; 0: none */
    uint64_t pversion;       /* placement map version of its last change (coord_placed) */
    struct coord_holder *holders;
    struct coord_seg_faults *faults; /* owned; NULL: none (most segments) */
    /* Narrow counts: at most one holder or assignment per node (10,000). */
    uint16_t n_holders, cap_holders;
    uint16_t rc_in_flight;   /* rowcount placement: assignments awaiting an answer */
    uint8_t replication;     /* 1..WIRE_REPLICATION_MAX */
    uint8_t state;           /* enum coord_seg_state */
    uint8_t last_reason;     /* enum wire_reason + 1; 0: none (coord_seg_reason()) */
    bool over_limit : 1;     /* the last LOADED report said over_limit */
    bool rc_queued : 1;      /* rowcount placement: in its queue */
    bool removed : 1;        /* taken back by the operator: out of every map, kept for pmap */
    char id[];               /* NUL-terminated, then the uri (coord_seg_uri()) */
};

_Static_assert(WIRE_REPLICATION_MAX <= UINT8_MAX && WIRE_NODE_LIST_MAX <= UINT16_MAX &&
                   WIRE_REASON_COUNT_ + 1 <= UINT8_MAX,
               "struct coord_seg's narrow counts");

/*
 * What few segments have, kept out of the record (coord_seg.faults, made on
 * first need): the last refusal a node answered for it, "node: REASON: the
 * node's detail", and the distinct nodes whose load found its file corrupt.
 */
struct coord_seg_faults {
    char *last_refusal;                     /* owned; NULL: none */
    char (*invalid_nodes)[WIRE_ID_MAX + 1]; /* owned */
    unsigned n_invalid;
};

/* model.c: a segment's reason and faults, through these only */
/* The last reason's name (reason_name()), "" for none. */
const char *coord_seg_reason(const struct coord_seg *s);
/* Sets the last reason; WIRE_REASON_NONE is kept as "NONE", as reason_name() names it. */
void coord_seg_set_reason(struct coord_seg *s, enum wire_reason r);
/* The last refusal, or NULL. */
const char *coord_seg_refusal(const struct coord_seg *s);
/* Replaces the last refusal with r (owned from here; NULL: none). */
void coord_seg_set_refusal(struct coord_seg *s, char *r);
/* The distinct nodes that found the file corrupt: their count, *ret their ids. */
unsigned coord_seg_invalid_nodes(const struct coord_seg *s, const char (**ret)[WIRE_ID_MAX + 1]);
/* Appends node to them (the caller checked it is not there yet). */
void coord_seg_invalid_add(struct coord_seg *s, const char *node);
/* Forgets them. */
void coord_seg_invalid_clear(struct coord_seg *s);
/* Frees the faults (the record's own free does it). */
void coord_seg_faults_free(struct coord_seg *s);

/* A segment's uri: it follows the id in the record's one allocation. */
static inline const char *coord_seg_uri(const struct coord_seg *s)
{
    return s->id + strlen(s->id) + 1;
}

/*
 * An assignment the placer fired, waiting to go out in its node's next
 * batch. Compact, not a struct wire_assign_request (over 4 KiB with its uri
 * buffer): a node's queue keeps its capacity, and 1,000 nodes' queues of 64
 * such requests were up to 275 MB. The request is built when the batch is
 * encoded (coord_flush_cb).
 */
struct coord_pending {
    uint64_t attempt_id;
    uint64_t row_count, avg_row_size, digest;
    uint64_t mem_request_bytes, mem_limit_bytes;
    char *id; /* owned: the segment id, its NUL, then the uri */
};

struct coord_node {
    char id[WIRE_ID_MAX + 1];
    char addr[WIRE_ADDR_MAX + 1];
    enum membership_state state; /* its one setter: coord_node_set_state() */
    uint64_t last_seen_mono_ms;
    uint64_t last_seen_ms;
    struct wire_pressure pressure;
    char last_reason[32];
    uint64_t refusals;
    bool admin_drained, self_draining, claim;
    unsigned notes;         /* COORD_NOTE_*: what answers said, not yet applied */
    uint64_t rows;          /* rows of the segments it holds or is loading */
    unsigned loading;       /* holders LOADING here: accepted, not yet reported LOADED */
    struct window win;      /* dispatch window (window.h), applied by coord_window_apply() */
    size_t limit;           /* the in-flight bound last given to the placer */
    struct coord_pending *pending; /* assignments waiting for the next batch */
    size_t n_pending, cap_pending;
    unsigned rc_in_flight;  /* rowcount placement: assignments awaiting an answer */
    struct http_client *client;
    struct keymap *held; /* segment id -> struct coord_seg (its own id: no key copy) */
    struct history hist; /* its reports, for GET /v1/history (web.c) */
    struct intake intake; /* delta reports: its base and rebuilt set (intake.h) */
    /* Incremental reconciliation (reconcile.h): ids of copies not known settled -> n. */
    struct strmap *unsettled;
    bool settled_known; /* false: the next applied report is reconciled whole */
};

struct coord {
    struct event_base *base;
    struct coord_config cfg;
    char *token, *db_path;
    /* The catalog as given (db_path: the same, redacted, for logs); cat is NULL only in one
     * made again after a step-down that has not opened it yet (coord_catalog_open). */
    char *locator;
    struct catalog *cat;
    /* The leader epoch this coordinator took (0 on SQLite: no election), sent with every
     * assignment batch and report answer; lost_lead: the lead went, the loop stops. */
    uint64_t lead_epoch;
    bool lost_lead;
    int64_t lead_checked_ms; /* monotonic: the last catalog_leading() */
    /* leading: the model is loaded and this coordinator places; else a standby, which answers
     * every request but /healthz, /readyz and /metrics with 503 naming leader. */
    bool leading, standby_failing;
    char advertise[WIRE_ADDR_MAX + 1]; /* where clients are sent when this one leads */
    char leader[WIRE_ADDR_MAX + 1];    /* a standby: the leader's address, from the catalog */
    uint64_t leader_epoch;             /* a standby: the leader's epoch, from the catalog */
    uint64_t elections;                /* leads taken by this process */
    uint64_t last_commit_mono_ms;      /* coord_now_ms() of the last catalog commit; 0: none */
    struct event *lead_ev;             /* a standby's try every second */
    uint64_t lead_hold_until_ms;       /* after a step-down: no try before (coord_now_ms) */
    struct placer *placer;
    struct storm *storm; /* refusal and back-off storms folded into counted rows */
    struct http_server *http;
    struct keymap *segs;  /* id -> struct coord_seg (its own id: no key copy) */
    struct strmap *table_names; /* table name -> its one interned copy (coord_intern_table()) */
    struct ordset *by_state[3]; /* each state's segments in id order, for paged listings */
    struct strmap *nodes; /* id -> struct coord_node */
    struct event *tick_ev, *membership_ev, *commit_ev, *flush_ev, *notes_ev;
    /* nodes with notes, applied from the loop (coord_node_notes_apply()) */
    char (*noted)[WIRE_ID_MAX + 1];
    size_t n_noted, cap_noted;
    bool txn_open;
    char bound[128];
    uint64_t started_mono_ns;
    uint32_t rng;
    uint64_t window_wake_ms; /* earliest end of a node's pause (coord_now_ms()); 0: none */
    /* counters */
    uint64_t reports, registered, assign_answers[6], catalog_errors, claims, id_clashes;
    uint64_t counts[3]; /* segments by coord_seg_state */
    /* Reports by intake verdict, digest mismatches, full sets asked for by why. */
    uint64_t report_verdicts[INTAKE_VERDICT_COUNT_], digest_mismatches;
    uint64_t full_asked[INTAKE_WHY_COUNT_];
    struct wire_segment_status *report_scratch; /* a node's rebuilt set, for reconcile */
    size_t report_scratch_cap;
    struct reconcile_plan plan; /* a report's plan, its storage kept from one to the next */
    /* Reports reconciled whole, and copies judged by reconcile (whole or incremental). */
    uint64_t reconciled_whole, reconciled_copies;
    /* Every refusal answered (422, 429, 503, 507), by reason: sluice_coord_refusals_total. */
    uint64_t refusals_by_reason[WIRE_REASON_COUNT_];
    const struct coord_placement *placement; /* --placement, chosen at start */
    struct coord_rowcount *rowcount;          /* the baseline's state (rowcount.c) */
    struct pmap *pmap;   /* the placement map's change log (placements.c) */
    struct broker *broker; /* POST /v1/query, answered through the broker's code; NULL: none */
    /* Removed segments: the change log points at them until the coordinator stops. */
    struct coord_seg **removed;
    size_t n_removed, cap_removed;
    uint64_t epoch;      /* this run's placement map epoch: another after a restart */
};

struct coord_drops {
    size_t n, cap;
    char (*ids)[WIRE_ID_MAX + 1];
};


/* coord.c: wiring (start-up, the tick, shutdown), leading and standing by, the one time base */
uint64_t coord_now_ms(void);
/* Stops leading at once: logs lead_lost, stops the loop (coord_lost_lead()); idempotent. */
void coord_step_down(struct coord *c, const char *why);
/* A standby's answer: 503 Error "standby" naming the leader (X-Sluice-Leader) if known. */
void coord_standby_reply(struct coord *c, struct evhttp_request *req);
uint64_t coord_wall_of(uint64_t mono_ms);
uint32_t coord_random(struct coord *c);
void coord_kick(struct coord *c);

/* model.c: segments and holders in memory, written through to the catalog */
extern const char *const coord_seg_state_names[3];
int coord_flush(struct coord *c);
void coord_commit_cb(evutil_socket_t fd, short what, void *arg);
void coord_rollback(struct coord *c);
int coord_txn(struct coord *c);
void coord_check(struct coord *c, int r, const char *what);
void coord_event(struct coord *c, const char *kind, const char *seg, const char *node,
                 enum wire_reason reason, int status, uint32_t retry_ms, const char *fmt, ...)
    __attribute__((format(printf, 8, 9)));
/*
 * The same for events that come in storms ("refused", "backoff"): one of the
 * same kind, node and reason within COORD_STORM_MS of the first is counted
 * into the first one's row instead of written (its segment and detail are
 * then not kept).
 */
void coord_storm_event(struct coord *c, const char *kind, const char *seg, const char *node,
                       enum wire_reason reason, int status, uint32_t retry_ms, const char *fmt,
                       ...) __attribute__((format(printf, 8, 9)));
struct coord_holder *coord_holder_find(struct coord_seg *s, const char *node);
unsigned coord_loaded_holders(const struct coord_seg *s, const char *except);
unsigned coord_live_loaded(const struct coord *c, const struct coord_seg *s,
                           const char *except);
void coord_holder_add(struct coord *c, struct coord_seg *s, struct coord_node *n,
                      enum wire_segment_state st);
void coord_holder_remove(struct coord *c, struct coord_seg *s, const char *node);
void coord_set_seg_state(struct coord *c, struct coord_seg *s, enum coord_seg_state st);
/* The in-memory half of a state change (counts, by_state), without the catalog or a log line. */
void coord_seg_move(struct coord *c, struct coord_seg *s, enum coord_seg_state st);
void coord_seg_update(struct coord *c, struct coord_seg *s);
/*
 * A zeroed segment record holding id and uri (both valid, checked by the
 * caller) in one allocation, table WIRE_TABLE_DEFAULT, last_reason "", in
 * no map: coord_seg_new() and the tests that build a model by hand. Freed
 * by coord_free_seg().
 */
struct coord_seg *coord_seg_alloc(const char *id, const char *uri);
/* The one copy of table name t ("" or NULL: WIRE_TABLE_DEFAULT), kept until the coordinator stops. */
const char *coord_intern_table(struct coord *c, const char *t);
struct coord_seg *coord_seg_new(struct coord *c, const char *id, const char *uri,
                                uint64_t rows, uint64_t size, unsigned replication,
                                enum coord_seg_state st);
/*
 * The in-memory half of a removal, once the catalog has forgotten s: the
 * placement forgets it, queued assignments of it are dropped, its holders'
 * nodes stop counting it, and it leaves c->segs and the state sets. Brokers
 * see it once more, REMOVED with no holders (coord_placed); s itself is
 * kept in c->removed, which the change log may point at, until the
 * coordinator stops. Nodes that still hold a copy are told to drop it by
 * reconcile (an unknown segment) at their next report.
 */
void coord_seg_remove(struct coord *c, struct coord_seg *s);
/* Sets s->table (a valid name; "" or NULL: WIRE_TABLE_DEFAULT), interned. Memory only. */
void coord_seg_set_table(struct coord *c, struct coord_seg *s, const char *table);
int coord_load_seg(const struct catalog_segment *cs, void *arg);
int coord_load_assignment(const struct catalog_assignment *a, void *arg);
int coord_free_seg(const char *key, void *value, void *arg);
void coord_report_apply(struct coord *c, struct coord_node *n, const struct reconcile_plan *plan,
                        struct coord_drops *drops);

/* membership.c: nodes, their state (one setter), timeouts, drains */
/* What an answer to an assignment said about its node (struct coord_node.notes). */
#define COORD_NOTE_NO_ANSWER 1u /* a transport error: no HTTP answer */
#define COORD_NOTE_DRAINING  2u /* refused 503 DRAINING */
void coord_node_note(struct coord *c, const char *node_id, unsigned note);
void coord_node_notes_apply(struct coord *c);
void coord_notes_cb(evutil_socket_t fd, short what, void *arg);
enum placer_node_state coord_placer_state(const struct coord_node *n);
const char *coord_drain_tag(const struct coord_node *n);
void coord_node_set_state(struct coord *c, struct coord_node *n, enum membership_state state,
                          const char *why);
int coord_collect_held(const char *key, void *value, void *arg);
void coord_node_save(struct coord *c, const struct coord_node *n);
bool coord_id_clash(const struct coord *c, const struct coord_node *n, const char *addr,
                    char *msg, size_t len);
bool coord_addr_usable(struct coord *c, const char *addr);
struct coord_node *coord_node_get(struct coord *c, const char *id, const char *addr);
void coord_membership_cb(evutil_socket_t fd, short what, void *arg);
/*
 * Before acting as the leader: true when this coordinator leads and its
 * lease holds (a catalog_leading() round trip within COORD_LEASE_CHECK_MS,
 * made now when the last is older, the open group of writes committed
 * first); otherwise false, after stepping down with why when the lead was
 * lost here (a standby or one already deposed gets false with no step-down).
 */
bool coord_lead_check(struct coord *c, const char *why);
int coord_load_node(const struct catalog_node *cn, void *arg);
int coord_free_node(const char *key, void *value, void *arg);

/* dispatch.c: the placer's callbacks, per-node queues, /v1/assign/batch, windows */
void coord_window_apply(struct coord *c, struct coord_node *n);
void coord_window_wake(struct coord *c);
void coord_flush_cb(evutil_socket_t fd, short what, void *arg);
void coord_op_assign(void *ctx, uint64_t attempt_id, const char *node_id,
                     const struct placer_segment *seg);
void coord_op_accepted(void *ctx, const struct placer_segment *ps, const char *node_id);
void coord_op_refused(void *ctx, const struct placer_segment *ps, const char *node_id,
                      enum wire_reason reason, uint32_t retry_ms);
void coord_op_backoff(void *ctx, const struct placer_segment *ps, uint64_t until_ms);
bool coord_op_invalid(void *ctx, const struct placer_segment *ps);
void coord_op_unexpected(void *ctx, const struct placer_segment *ps, const char *node_id,
                         int status);

/*
 * The placement policy, one interface chosen at start (--placement): how the
 * segments that want copies get them. Node state reaches the placer through
 * membership in either policy; these calls are about segments. The model,
 * reconcile's plan and the views call through c->placement, never on a
 * policy by name.
 */
struct coord_placement {
    const char *name; /* as --placement names it */
    /* Sets up its state from cfg: 0, or -EINVAL with err written. */
    int (*start)(struct coord *c, const struct coord_config *cfg, char *err, size_t len);
    /* Frees its state; called once the nodes' clients are gone. */
    void (*stop)(struct coord *c);
    /* s (not INVALID) changed: it wants replication - holders more copies, maybe none. */
    void (*want)(struct coord *c, struct coord_seg *s);
    /* s became INVALID: place no copy of it. */
    void (*forget)(struct coord *c, struct coord_seg *s);
    /* Send s to node no sooner than until_ms (coord_now_ms() time base). */
    void (*exclude)(struct coord *c, struct coord_seg *s, const char *node, uint64_t until_ms);
    /* Fires what is due at now_ms; returns when it next has work, UINT64_MAX: on a kick only. */
    uint64_t (*tick)(struct coord *c, uint64_t now_ms);
    /* Assignments in flight, and segments (or copies) still to be placed. */
    void (*placing)(const struct coord *c, size_t *in_flight, size_t *unplaced);
};

/* dispatch.c: Sluice's placement, the placer (blind round robin) */
extern const struct coord_placement coord_placement_roundrobin;
/* rowcount.c: the row-count baseline scheduler Sluice is compared against */
extern const struct coord_placement coord_placement_rowcount;

/* reconcile.c: one node's report against the model, pure: see reconcile.h */
/* intake.c: delta reports, a node's acknowledged base and rebuilt set, pure: see intake.h */

/* api.c: the write endpoints */
void coord_report_cb(struct evhttp_request *req, const char *rest, void *arg);
void coord_claim_cb(struct evhttp_request *req, const char *rest, void *arg);
void coord_segments_cb(struct evhttp_request *req, const char *rest, void *arg);
void coord_segment_cb(struct evhttp_request *req, const char *rest, void *arg); /* GET, POST .../retry, DELETE */
void coord_node_action_cb(struct evhttp_request *req, const char *rest, void *arg);

/* views.c: the read endpoints */
void coord_seg_info(const struct coord *c, const struct coord_seg *s,
                    struct wire_segment_info *d, bool explain);
void coord_list_segments(struct coord *c, struct evhttp_request *req);
/* Every segment (state < 0) or one state's, in id order after `after` (NULL: from the first). */
struct coord_walk {
    struct ordset_pos at[3];
};
void coord_walk_start(const struct coord *c, int state, const char *after, struct coord_walk *w);
struct coord_seg *coord_walk_next(struct coord_walk *w); /* NULL at the end */
void coord_show_segment(struct coord *c, struct evhttp_request *req, const char *id);
void coord_nodes_cb(struct evhttp_request *req, const char *rest, void *arg);
void coord_events_cb(struct evhttp_request *req, const char *rest, void *arg);

/* placements.c: GET /v1/placements, the brokers' versioned placement map */
/* Kept changes; a broker further behind gets the full map. */
#define COORD_PMAP_LOG 65536
/* How often the embedded broker re-reads the map (a call, so it can be often). */
#define COORD_BROKER_POLL_MS 100
/* What brokers see of s changed (holders, table, registration): a new version. */
void coord_placed(struct coord *c, struct coord_seg *s);
void coord_placements_cb(struct evhttp_request *req, const char *rest, void *arg);
/*
 * The answer GET /v1/placements?since&epoch&after gives (after NULL or ""
 * for none), into *ret (freed with wire_placement_map_done): the
 * embedded broker's source (broker.h broker_placements_fn; arg is the
 * coord). Returns 0.
 */
int coord_placements_get(void *arg, uint64_t since, uint64_t epoch, const char *after,
                         struct wire_placement_map *ret);

/* tables.c: per-table views, and the footprints the recommendations are made of */
void coord_tables_cb(struct evhttp_request *req, const char *rest, void *arg);
void coord_recommendations_cb(struct evhttp_request *req, const char *rest, void *arg);
/*
 * Takes note of a LOADED copy's report: the segment's footprint is the
 * largest reported (written to the catalog when it first grows by more than
 * 1/16, so a steady cluster writes nothing), over_limit the latest.
 */
void coord_seg_observe(struct coord *c, struct coord_seg *s, const struct wire_segment_status *r);
/* The assignment of s (its declared memory included). */
void coord_seg_assignment(const struct coord_seg *s, struct wire_assign_request *ret);
void coord_status_cb(struct evhttp_request *req, const char *rest, void *arg);
void coord_healthz_cb(struct evhttp_request *req, const char *rest, void *arg);
void coord_readyz_cb(struct evhttp_request *req, const char *rest, void *arg);
void coord_metrics_cb(struct evhttp_request *req, const char *rest, void *arg);

/* web.c: the status page (GET /) and the history it draws (GET /v1/history) */
void coord_page_cb(struct evhttp_request *req, const char *rest, void *arg);
void coord_history_cb(struct evhttp_request *req, const char *rest, void *arg);

#endif
