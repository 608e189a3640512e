/*
 * coord: the coordinator's event-loop half. In memory it mirrors the catalog
 * (segments with their holders, nodes with their last report) so that every
 * request is answered without a query; the catalog is written through, in
 * group-committed transactions for placement bookkeeping and synchronously
 * for registrations, which are acknowledged only once durable.
 *
 * Expected load: a few nodes reporting every second, registrations in
 * batches of up to 10,000, and thousands of assignments per second in
 * flight through the placer.
 */
#include "coord.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "catalog.h"
#include "clock.h"
#include "log.h"
#include "metrics.h"
#include "pbhttp.h"
#include "placer.h"
#include "sluice_config.h"
#include "strmap.h"
#include "wire.h"
#include "xmalloc.h"

/* A copy the node has not reported yet is not "lost" before this. */
#define COORD_REPORT_GRACE_MS 3000
#define COORD_COMMIT_DELAY_MS 5
#define COORD_MEMBERSHIP_MS   250
/*
 * Distinct nodes that must find a segment's file bad before it is INVALID:
 * one node that cannot read it may be the one at fault. Only a cluster of a
 * single node, which could never reach the quorum, takes its word alone.
 */
#define COORD_INVALID_QUORUM 2
/* A stale copy's node is asked for the segment again after this (it unlinks first). */
#define COORD_STALE_RETRY_MS 2000

enum coord_seg_state { COORD_PENDING, COORD_LOADED, COORD_INVALID };
static const char *const coord_seg_state_names[] = {"PENDING", "LOADED", "INVALID"};

struct coord_holder {
    char node[WIRE_ID_MAX + 1];
    enum wire_segment_state state; /* LOADING or LOADED */
    uint64_t since_ms;             /* coord_now_ms() of the last change */
};

struct coord_seg {
    char id[WIRE_ID_MAX + 1];
    char *uri;
    uint64_t row_count, avg_row_size;
    uint64_t digest; /* content digest the registration carried; 0: unknown */
    unsigned replication;
    enum coord_seg_state state;
    struct coord_holder *holders;
    unsigned n_holders, cap_holders;
    uint64_t backoff_until_ms;  /* coord_now_ms() time base; 0: none */
    char last_reason[32];
    char (*invalid_nodes)[WIRE_ID_MAX + 1]; /* distinct nodes whose load found it corrupt */
    unsigned n_invalid;
    unsigned rc_in_flight;   /* rowcount mode: assignments awaiting an answer */
    bool rc_queued;          /* rowcount mode: in the queue */
};

/* An assignment the placer fired, waiting to go out in its node's next batch. */
struct coord_pending {
    uint64_t attempt_id;
    struct wire_assign_request req;
};

struct coord_node {
    char id[WIRE_ID_MAX + 1];
    char addr[WIRE_ADDR_MAX + 1];
    char state[16]; /* UP, SUSPECT, DOWN, DRAINING */
    uint64_t last_seen_mono_ms;
    uint64_t last_seen_ms;
    struct wire_pressure pressure;
    char last_reason[32];
    uint64_t refusals;
    bool admin_drained, self_draining, claim;
    uint64_t rows;          /* rows of the segments it holds or is loading */
    struct coord_pending *pending; /* assignments waiting for the next batch */
    size_t n_pending, cap_pending;
    unsigned rc_in_flight;  /* rowcount mode: assignments awaiting an answer */
    struct http_client *client;
    struct strmap *held; /* segment id -> struct coord_seg */
};

struct coord {
    struct event_base *base;
    struct coord_config cfg;
    char *token, *db_path;
    struct catalog *cat;
    struct placer *placer;
    struct http_server *http;
    struct strmap *segs;  /* id -> struct coord_seg */
    struct strmap *nodes; /* id -> struct coord_node */
    struct event *tick_ev, *membership_ev, *commit_ev, *flush_ev;
    bool txn_open;
    char bound[128];
    uint64_t started_mono_ns;
    uint32_t rng;
    /* counters */
    uint64_t reports, registered, assign_answers[6], catalog_errors, claims, id_clashes;
    uint64_t counts[3]; /* segments by coord_seg_state */
    /* rowcount (baseline) mode */
    bool rowcount;
    struct coord_seg **rc_queue;
    size_t rc_head, rc_n, rc_cap;
    struct strmap *node_rows; /* id -> capacity in rows (as uintptr_t) */
};

/*
 * The coordinator's one time base for deadlines: back-offs, exclusions, the
 * report grace and the placer's now are on the monotonic clock, so that a
 * step of the wall clock (NTP, an operator) moves none of them. Wall time
 * is only stored (catalog rows, events) and shown, converted by
 * coord_wall_of().
 */
static uint64_t coord_now_ms(void)
{
    return clock_mono_ns() / 1000000;
}

/* A coord_now_ms() deadline as wall-clock ms, to store or show; 0 stays 0 (none). */
static uint64_t coord_wall_of(uint64_t mono_ms)
{
    uint64_t now = coord_now_ms();

    if (mono_ms == 0 || mono_ms <= now)
        return 0;
    return clock_wall_ms() + (mono_ms - now);
}

static uint32_t coord_random(struct coord *c)
{
    /* xorshift32: jitter only, not security. */
    c->rng ^= c->rng << 13;
    c->rng ^= c->rng >> 17;
    c->rng ^= c->rng << 5;
    return c->rng;
}

/* ---- catalog write-through ---------------------------------------------- */

/*
 * Commits the group transaction now (before a synchronous acknowledgement).
 * 0, also when none is open, or the negative errno of catalog_commit(): the
 * whole group was then rolled back and must not be acknowledged.
 */
static int coord_flush(struct coord *c)
{
    int r;

    if (!c->txn_open)
        return 0;
    event_del(c->commit_ev);
    c->txn_open = false;
    r = catalog_commit(c->cat);
    if (r < 0) {
        c->catalog_errors++;
        log_error("catalog_commit_failed", "error=%s", log_q(catalog_errmsg(c->cat)));
    }
    return r;
}

static void coord_commit_cb(evutil_socket_t fd, short what, void *arg)
{
    coord_flush(arg);
}

/* Throws the group transaction away (nothing in it may be kept). */
static void coord_rollback(struct coord *c)
{
    if (!c->txn_open)
        return;
    event_del(c->commit_ev);
    c->txn_open = false;
    catalog_rollback(c->cat);
}

/*
 * Opens the group transaction if needed; it commits a few ms later. 0, or
 * the negative errno of catalog_begin() (writes then go out one by one).
 */
static int coord_txn(struct coord *c)
{
    struct timeval tv = {0, COORD_COMMIT_DELAY_MS * 1000};
    int r;

    if (c->txn_open)
        return 0;
    r = catalog_begin(c->cat);
    if (r < 0) {
        c->catalog_errors++;
        log_error("catalog_begin_failed", "error=%s", log_q(catalog_errmsg(c->cat)));
        return r;
    }
    c->txn_open = true;
    event_add(c->commit_ev, &tv);
    return 0;
}

static void coord_check(struct coord *c, int r, const char *what)
{
    if (r < 0) {
        c->catalog_errors++;
        log_error("catalog_write_failed", "what=%s error=%s", what,
                  log_q(catalog_errmsg(c->cat)));
    }
}

static void coord_event(struct coord *c, const char *kind, const char *seg, const char *node,
                        enum wire_reason reason, int status, uint32_t retry_ms, const char *fmt,
                        ...) __attribute__((format(printf, 8, 9)));

static void coord_event(struct coord *c, const char *kind, const char *seg, const char *node,
                        enum wire_reason reason, int status, uint32_t retry_ms, const char *fmt,
                        ...)
{
    struct catalog_event e;
    va_list ap;

    memset(&e, 0, sizeof(e));
    e.ts_ms = (int64_t)clock_wall_ms();
    snprintf(e.segment_id, sizeof(e.segment_id), "%s", seg != NULL ? seg : "");
    snprintf(e.node_id, sizeof(e.node_id), "%s", node != NULL ? node : "");
    snprintf(e.kind, sizeof(e.kind), "%s", kind);
    if (reason != WIRE_REASON_NONE)
        snprintf(e.reason, sizeof(e.reason), "%s", reason_name(reason));
    e.http_status = status;
    e.retry_after_ms = retry_ms;
    if (fmt != NULL) {
        va_start(ap, fmt);
        vsnprintf(e.detail, sizeof(e.detail), fmt, ap);
        va_end(ap);
    }
    coord_txn(c);
    coord_check(c, catalog_add_event(c->cat, &e), "event");
}

/* ---- segments and holders ----------------------------------------------- */

static struct coord_holder *coord_holder_find(struct coord_seg *s, const char *node)
{
    for (unsigned i = 0; i < s->n_holders; i++)
        if (strcmp(s->holders[i].node, node) == 0)
            return &s->holders[i];
    return NULL;
}

static unsigned coord_loaded_holders(const struct coord_seg *s, const char *except)
{
    unsigned n = 0;

    for (unsigned i = 0; i < s->n_holders; i++)
        n += s->holders[i].state == WIRE_SEG_LOADED &&
             (except == NULL || strcmp(s->holders[i].node, except) != 0);
    return n;
}

/*
 * LOADED copies on nodes that are UP or DRAINING (answering), except on
 * node except: what a surplus is judged against. A copy on a SUSPECT or
 * DOWN node may be gone; dropping a live copy for it could leave none.
 */
static unsigned coord_live_loaded(const struct coord *c, const struct coord_seg *s,
                                  const char *except)
{
    unsigned n = 0;

    for (unsigned i = 0; i < s->n_holders; i++) {
        const struct coord_node *nd;

        if (s->holders[i].state != WIRE_SEG_LOADED ||
            (except != NULL && strcmp(s->holders[i].node, except) == 0))
            continue;
        nd = strmap_get(c->nodes, s->holders[i].node);
        n += nd != NULL && (strcmp(nd->state, "UP") == 0 || strcmp(nd->state, "DRAINING") == 0);
    }
    return n;
}

static void coord_holder_add(struct coord *c, struct coord_seg *s, struct coord_node *n,
                             enum wire_segment_state st)
{
    struct coord_holder *h;

    if (s->n_holders == s->cap_holders) {
        s->cap_holders = s->cap_holders * 2 + 2;
        s->holders = xreallocarray(s->holders, s->cap_holders, sizeof(*s->holders));
    }
    h = &s->holders[s->n_holders++];
    snprintf(h->node, sizeof(h->node), "%s", n->id);
    h->state = st;
    h->since_ms = coord_now_ms();
    strmap_put(n->held, s->id, s);
    n->rows += s->row_count;
    coord_txn(c);
    coord_check(c, catalog_put_assignment(c->cat, s->id, n->id, wire_segment_state_name(st),
                                          (int64_t)clock_wall_ms()),
                "assignment");
}

static void coord_holder_remove(struct coord *c, struct coord_seg *s, const char *node)
{
    struct coord_node *n = strmap_get(c->nodes, node);

    for (unsigned i = 0; i < s->n_holders; i++) {
        if (strcmp(s->holders[i].node, node) == 0) {
            s->holders[i] = s->holders[--s->n_holders];
            break;
        }
    }
    if (n != NULL && strmap_remove(n->held, s->id) != NULL)
        n->rows -= s->row_count;
    coord_txn(c);
    coord_check(c, catalog_delete_assignment(c->cat, s->id, node), "unassign");
}

static void coord_set_seg_state(struct coord *c, struct coord_seg *s, enum coord_seg_state st)
{
    if (s->state == st)
        return;
    c->counts[s->state]--;
    c->counts[st]++;
    log_debug("segment_state", "id=%s transition=\"%s -> %s\"", s->id,
              coord_seg_state_names[s->state], coord_seg_state_names[st]);
    s->state = st;
    coord_txn(c);
    coord_check(c, catalog_set_segment_state(c->cat, s->id, coord_seg_state_names[st],
                                             (int64_t)coord_wall_of(s->backoff_until_ms)),
                "segment_state");
}

static void coord_kick(struct coord *c);
static void coord_rc_enqueue(struct coord *c, struct coord_seg *s);

/*
 * Recomputes a segment's state from its holders and tells the placer how
 * many more copies it wants (or that it wants none).
 */
static void coord_seg_update(struct coord *c, struct coord_seg *s)
{
    const char *holders[WIRE_REPLICATION_MAX * 2];
    unsigned n = 0;

    if (s->state == COORD_INVALID)
        return;
    coord_set_seg_state(c, s,
                        coord_loaded_holders(s, NULL) >= s->replication ? COORD_LOADED
                                                                        : COORD_PENDING);
    if (c->rowcount) {
        if (s->n_holders + s->rc_in_flight < s->replication && !s->rc_queued)
            coord_rc_enqueue(c, s);
        coord_kick(c);
        return;
    }
    if (s->n_holders >= s->replication) {
        placer_forget(c->placer, s->id);
        return;
    }
    for (unsigned i = 0; i < s->n_holders && n < sizeof(holders) / sizeof(holders[0]); i++)
        holders[n++] = s->holders[i].node;
    if (placer_want(c->placer, s->id, s->uri, s->row_count, s->avg_row_size, s->replication,
                    holders, n) < 0)
        log_warn("placer_want_failed", "id=%s", s->id);
    coord_kick(c);
}

static struct coord_seg *coord_seg_new(struct coord *c, const char *id, const char *uri,
                                       uint64_t rows, uint64_t size, unsigned replication,
                                       enum coord_seg_state st)
{
    struct coord_seg *s = xcalloc(1, sizeof(*s));

    snprintf(s->id, sizeof(s->id), "%s", id);
    s->uri = xstrdup(uri);
    s->row_count = rows;
    s->avg_row_size = size;
    s->replication = replication == 0 ? 1 : replication;
    s->state = st;
    strmap_put(c->segs, s->id, s);
    c->counts[st]++;
    return s;
}

/* ---- nodes --------------------------------------------------------------- */

static enum placer_node_state coord_placer_state(const struct coord_node *n)
{
    if (strcmp(n->state, "DOWN") == 0)
        return PLACER_NODE_DOWN;
    if (strcmp(n->state, "SUSPECT") == 0)
        return PLACER_NODE_SUSPECT;
    /* Pull-mode nodes ask for their work; the placer sends them nothing. */
    if (strcmp(n->state, "DRAINING") == 0 || n->claim)
        return PLACER_NODE_DRAINING;
    return PLACER_NODE_UP;
}

/*
 * Who drains a node, as the catalog keeps it (nodes.drained_by): after a
 * restart an operator's drain must still hold, and a node's own drain must
 * end when the node says so.
 */
#define COORD_ADMIN_DRAIN "operator"
#define COORD_SELF_DRAIN  "node"

static const char *coord_drain_tag(const struct coord_node *n)
{
    if (n->admin_drained)
        return COORD_ADMIN_DRAIN;
    return strcmp(n->state, "DRAINING") == 0 ? COORD_SELF_DRAIN : "";
}

/*
 * Sets a node's state, in the catalog too, and the placer's view of it. With
 * the same state, only re-syncs the placer, which may have changed its mind
 * on its own (a 503 DRAINING answer makes it DRAINING there).
 */
static void coord_node_set_state(struct coord *c, struct coord_node *n, const char *state,
                                 const char *why)
{
    if (strcmp(n->state, state) == 0) {
        enum placer_node_state want = coord_placer_state(n);
        struct placer_node_info pi;

        if (placer_node_lookup(c->placer, n->id, &pi) < 0 || pi.state != want) {
            placer_node_set(c->placer, n->id, want);
            coord_kick(c); /* what waited for this node goes now */
        }
        return;
    }
    /* The one record of the transition: the catalog's setter writes none. */
    log_info("node_state", "node=%s transition=\"%s -> %s (%s)\"", n->id, n->state, state, why);
    coord_event(c, "node_state", NULL, n->id, WIRE_REASON_NONE, 0, 0, "%s -> %s (%s)", n->state,
                state, why);
    snprintf(n->state, sizeof(n->state), "%s", state);
    coord_txn(c);
    coord_check(c, catalog_set_node_state(c->cat, n->id, state, coord_drain_tag(n)),
                "node_state");
    placer_node_set(c->placer, n->id, coord_placer_state(n));
    coord_kick(c);
}

static int coord_collect_held(const char *key, void *value, void *arg)
{
    struct coord_seg ***list = arg;

    *(*list)++ = value;
    return 0;
}

/* A DOWN node holds nothing for us: its segments are placed elsewhere. */
static void coord_node_lost(struct coord *c, struct coord_node *n)
{
    size_t count = strmap_count(n->held);
    struct coord_seg **segs = xcalloc(count + 1, sizeof(*segs)), **p = segs;

    strmap_foreach(n->held, coord_collect_held, &p);
    for (size_t i = 0; i < count; i++) {
        coord_event(c, "lost", segs[i]->id, n->id, WIRE_REASON_NONE, 0, 0, "node %s is DOWN",
                    n->id);
        coord_holder_remove(c, segs[i], n->id);
        coord_seg_update(c, segs[i]);
    }
    free(segs);
}

/*
 * Writes the node's row: whatever changes how the coordinator treats it
 * (address, state, who drains it, pull mode) must survive a restart.
 */
static void coord_node_save(struct coord *c, const struct coord_node *n)
{
    struct catalog_node cn;

    memset(&cn, 0, sizeof(cn));
    snprintf(cn.id, sizeof(cn.id), "%s", n->id);
    snprintf(cn.addr, sizeof(cn.addr), "%s", n->addr);
    snprintf(cn.state, sizeof(cn.state), "%s", n->state);
    snprintf(cn.drained_by, sizeof(cn.drained_by), "%s", coord_drain_tag(n));
    cn.claim = n->claim;
    cn.last_seen_ms = (int64_t)clock_wall_ms();
    coord_txn(c);
    coord_check(c, catalog_put_node(c->cat, &cn), "node");
}

/*
 * True when a report of n's id from addr clashes with the live node n: the
 * address differs, and n is not DOWN and reported within the node timeout.
 * Such a report is another process claiming the id (two nodes started with
 * one --node-id), not the node having moved: a node that moved is silent at
 * its old address, so once that address has been silent for the node
 * timeout (or n is DOWN) the report is taken as a move. msg names the id
 * and the other address (see the 409 contract in proto/sluice.proto).
 */
static bool coord_id_clash(const struct coord *c, const struct coord_node *n, const char *addr,
                           char *msg, size_t len)
{
    uint64_t now = clock_mono_ns() / 1000000, silent;

    if (addr == NULL || n->addr[0] == '\0' || strcmp(n->addr, addr) == 0 ||
        strcmp(n->state, "DOWN") == 0)
        return false;
    silent = now > n->last_seen_mono_ms ? now - n->last_seen_mono_ms : 0;
    if (silent > c->cfg.node_timeout_ms)
        return false;
    snprintf(msg, len,
             "node_id \"%s\" is in use by a live node at %s (last report %" PRIu64
             " ms ago); each node needs its own id",
             n->id, n->addr, silent);
    return true;
}

/* Whether the HTTP client can use addr (the wire check is looser: "h:+7001"). */
static bool coord_addr_usable(struct coord *c, const char *addr)
{
    struct http_client *client = http_client_new(c->base, addr, 1000, NULL);

    http_client_free(client);
    return client != NULL;
}

/*
 * The node with this id, created (UP) or moved to addr if needed. NULL when
 * addr is one the HTTP client cannot use; nothing has changed then. The
 * caller has ruled out an id clash (coord_id_clash()).
 */
static struct coord_node *coord_node_get(struct coord *c, const char *id, const char *addr)
{
    struct coord_node *n = strmap_get(c->nodes, id);
    struct http_client *client;

    if (n != NULL && (addr == NULL || strcmp(n->addr, addr) == 0))
        return n;
    /* The wire check is looser than the client's parser ("h:+7001"): parse first. */
    client = http_client_new(c->base, addr, (unsigned)c->cfg.assign_timeout_ms, c->token);
    if (client == NULL)
        return NULL;
    if (n == NULL) {
        n = xcalloc(1, sizeof(*n));
        snprintf(n->id, sizeof(n->id), "%s", id);
        snprintf(n->state, sizeof(n->state), "UP");
        n->held = strmap_new();
        strmap_put(c->nodes, n->id, n);
        log_info("node_joined", "node=%s addr=%s", log_q(id), log_q(addr));
        coord_event(c, "node_state", NULL, id, WIRE_REASON_NONE, 0, 0, "joined at %s", addr);
    } else {
        log_info("node_moved", "node=%s from=%s to=%s", log_q(id), log_q(n->addr), log_q(addr));
    }
    snprintf(n->addr, sizeof(n->addr), "%s", addr);
    if (n->client != NULL) {
        /* In-flight requests fail with -ECANCELED: they are retried elsewhere. */
        struct http_client *old = n->client;
        n->client = NULL;
        http_client_free(old);
    }
    n->client = client;
    coord_node_save(c, n);
    placer_node_set(c->placer, n->id, coord_placer_state(n));
    /* New capacity: what was registered before any node could take it goes now. */
    coord_kick(c);
    return n;
}

/* ---- placer callbacks ---------------------------------------------------- */

/* Answers one attempt to the placer. */
static void coord_answer(struct coord *c, uint64_t attempt_id, int status,
                         const struct wire_assign_response *resp, const char *reason_hdr,
                         unsigned retry_after_s)
{
    struct placer_answer ans;

    if (c->placer == NULL)
        return; /* shutting down: clients cancel what is in flight */
    memset(&ans, 0, sizeof(ans));
    ans.http_status = status > 0 ? status : 0;
    if (resp != NULL) {
        ans.reason = resp->reason;
        ans.retry_after_ms = resp->retry_after_ms;
    } else if (reason_hdr != NULL) {
        reason_parse(reason_hdr, &ans.reason);
    }
    if (ans.retry_after_ms == 0)
        ans.retry_after_ms = retry_after_s * 1000;
    c->assign_answers[placer_classify(ans.http_status)]++;
    placer_on_answer(c->placer, attempt_id, &ans, coord_now_ms(), coord_random(c));
}

/* One batch in flight to a node: the attempts it carries, in order. */
struct coord_batch {
    struct coord *c;
    size_t n;
    uint64_t *attempts;
};

static void coord_batch_cb(int status, const struct http_client_reply *reply, void *arg)
{
    struct coord_batch *b = arg;
    struct coord *c = b->c;
    struct wire_assign_batch_response resp;
    struct wire_error err;
    bool ok = status == 200 && reply != NULL &&
              wire_assign_batch_response_decode(reply->body, reply->body_len, &resp, &err) == 0;

    if (ok && resp.n == b->n) {
        for (size_t i = 0; i < b->n; i++)
            coord_answer(c, b->attempts[i], (int)resp.results[i].status, &resp.results[i], NULL,
                         0);
    } else {
        /* No usable answer: every attempt in it failed the same way. */
        for (size_t i = 0; i < b->n; i++)
            coord_answer(c, b->attempts[i], status == 200 ? 500 : status, NULL, NULL, 0);
    }
    if (ok)
        wire_assign_batch_response_done(&resp);
    free(b->attempts);
    free(b);
    if (c->placer != NULL)
        coord_kick(c);
}

/* A request that could not even be queued is answered as a transport error. */
static void coord_batch_failed_cb(evutil_socket_t fd, short what, void *arg)
{
    coord_batch_cb(-EIO, NULL, arg);
}

/*
 * Sends every node's pending assignments, WIRE_ASSIGN_BATCH_MAX per request:
 * one HTTP round trip for hundreds of segments instead of one each. Each
 * assignment is still decided by the node on its own.
 */
static int coord_flush_node(const char *key, void *value, void *arg)
{
    struct coord_node *n = value;
    struct coord *c = arg;

    for (size_t off = 0; off < n->n_pending; off += WIRE_ASSIGN_BATCH_MAX) {
        size_t k = n->n_pending - off < WIRE_ASSIGN_BATCH_MAX ? n->n_pending - off
                                                              : WIRE_ASSIGN_BATCH_MAX;
        struct coord_batch *b = xcalloc(1, sizeof(*b));
        struct wire_assign_batch batch;
        uint8_t *body;
        size_t len;

        b->c = c;
        b->n = k;
        b->attempts = xcalloc(k, sizeof(*b->attempts));
        batch.n = k;
        batch.assignments = xcalloc(k, sizeof(*batch.assignments));
        for (size_t i = 0; i < k; i++) {
            b->attempts[i] = n->pending[off + i].attempt_id;
            batch.assignments[i] = n->pending[off + i].req;
        }
        body = wire_assign_batch_encode(&batch, &len);
        free(batch.assignments);
        if (n->client == NULL ||
            /* The same assignment again is answered 202: safe to resend on a fresh connection. */
            http_client_request_idempotent(n->client, EVHTTP_REQ_POST, "/v1/assign/batch",
                                           WIRE_CONTENT_TYPE, body, len, coord_batch_cb, b) < 0)
            event_base_once(c->base, -1, EV_TIMEOUT, coord_batch_failed_cb, b, NULL);
        free(body);
    }
    n->n_pending = 0;
    return 0;
}

static void coord_flush_cb(evutil_socket_t fd, short what, void *arg)
{
    struct coord *c = arg;

    strmap_foreach(c->nodes, coord_flush_node, c);
}

static void coord_op_assign(void *ctx, uint64_t attempt_id, const char *node_id,
                            const struct placer_segment *seg)
{
    struct coord *c = ctx;
    struct coord_node *n = strmap_get(c->nodes, node_id);
    struct coord_pending *p;
    struct timeval now = {0, 0};

    if (n == NULL) {
        struct coord_batch *b = xcalloc(1, sizeof(*b));
        b->c = c;
        b->n = 1;
        b->attempts = xmalloc(sizeof(*b->attempts));
        b->attempts[0] = attempt_id;
        event_base_once(c->base, -1, EV_TIMEOUT, coord_batch_failed_cb, b, NULL);
        return;
    }
    if (n->n_pending == n->cap_pending) {
        n->cap_pending = n->cap_pending * 2 + 64;
        n->pending = xreallocarray(n->pending, n->cap_pending, sizeof(*n->pending));
    }
    p = &n->pending[n->n_pending++];
    p->attempt_id = attempt_id;
    memset(&p->req, 0, sizeof(p->req));
    snprintf(p->req.segment_id, sizeof(p->req.segment_id), "%s", seg->id);
    snprintf(p->req.uri, sizeof(p->req.uri), "%s", seg->uri);
    p->req.row_count = seg->row_count;
    p->req.avg_row_size = seg->avg_row_size;
    {
        const struct coord_seg *cs = strmap_get(c->segs, seg->id);
        p->req.digest = cs != NULL ? cs->digest : 0;
    }
    /* Everything the placer fires in this tick leaves together. */
    event_add(c->flush_ev, &now);
}

static void coord_op_accepted(void *ctx, const struct placer_segment *ps, const char *node_id)
{
    struct coord *c = ctx;
    struct coord_seg *s = strmap_get(c->segs, ps->id);
    struct coord_node *n = strmap_get(c->nodes, node_id);

    if (s == NULL || n == NULL || coord_holder_find(s, node_id) != NULL)
        return;
    coord_holder_add(c, s, n, WIRE_SEG_LOADING);
    s->last_reason[0] = '\0';
}

static void coord_op_refused(void *ctx, const struct placer_segment *ps, const char *node_id,
                             enum wire_reason reason, uint32_t retry_ms)
{
    struct coord *c = ctx;
    struct coord_seg *s = strmap_get(c->segs, ps->id);
    struct coord_node *n = strmap_get(c->nodes, node_id);

    if (n != NULL) {
        n->refusals++;
        snprintf(n->last_reason, sizeof(n->last_reason), "%s", reason_name(reason));
    }
    if (s != NULL)
        snprintf(s->last_reason, sizeof(s->last_reason), "%s", reason_name(reason));
    /* The status the reason travels with (DESIGN.md's table). */
    coord_event(c, "refused", ps->id, node_id, reason, reason_http_status(reason), retry_ms, NULL);
}

static void coord_op_backoff(void *ctx, const struct placer_segment *ps, uint64_t until_ms)
{
    struct coord *c = ctx;
    struct coord_seg *s = strmap_get(c->segs, ps->id);
    uint64_t now = coord_now_ms(), wait = until_ms > now ? until_ms - now : 0;

    if (s != NULL)
        s->backoff_until_ms = until_ms;
    coord_event(c, "backoff", ps->id, NULL, WIRE_REASON_NONE, 0, (uint32_t)wait,
                "every node refused; next round in %" PRIu64 " ms", wait);
}

static bool coord_op_invalid(void *ctx, const struct placer_segment *ps)
{
    struct coord *c = ctx;
    struct coord_seg *s = strmap_get(c->segs, ps->id);
    unsigned loaded;

    if (s == NULL)
        return true;
    loaded = coord_loaded_holders(s, NULL);
    if (loaded > 0) {
        /* A copy that passed its checksums proves the file good: the 422s are node-local. */
        coord_event(c, "invalid_overruled", s->id, NULL, WIRE_REASON_SEGMENT_INVALID, 422, 0,
                    "refused as invalid by a quorum of nodes, but LOADED on %u", loaded);
        return false;
    }
    log_warn("segment_invalid", "id=%s uri=%s", log_q(s->id), log_q(s->uri));
    coord_set_seg_state(c, s, COORD_INVALID);
    snprintf(s->last_reason, sizeof(s->last_reason), "SEGMENT_INVALID");
    coord_event(c, "invalid", s->id, NULL, WIRE_REASON_SEGMENT_INVALID, 422, 0,
                "refused as invalid by a quorum of nodes");
    return true;
}

static void coord_op_suspect(void *ctx, const char *node_id)
{
    struct coord *c = ctx;
    struct coord_node *n = strmap_get(c->nodes, node_id);

    if (n != NULL && strcmp(n->state, "UP") == 0)
        coord_node_set_state(c, n, "SUSPECT", "an assignment got no answer");
}

static void coord_op_unexpected(void *ctx, const struct placer_segment *ps, const char *node_id,
                                int status)
{
    struct coord *c = ctx;

    coord_event(c, "unexpected", ps->id, node_id, WIRE_REASON_NONE, status, 0,
                "answer outside the protocol");
}

/* ---- rowcount placement (the baseline) ------------------------------------ */

static void coord_rc_enqueue(struct coord *c, struct coord_seg *s)
{
    if (c->rc_n == c->rc_cap) {
        size_t cap = c->rc_cap * 2 + 64;
        struct coord_seg **q = xcalloc(cap, sizeof(*q));
        for (size_t i = 0; i < c->rc_n; i++)
            q[i] = c->rc_queue[(c->rc_head + i) % c->rc_cap];
        free(c->rc_queue);
        c->rc_queue = q;
        c->rc_cap = cap;
        c->rc_head = 0;
    }
    c->rc_queue[(c->rc_head + c->rc_n++) % c->rc_cap] = s;
    s->rc_queued = true;
}

/* A node's capacity in rows: configured, else memory limit / bytes per row; 0 unknown. */
static uint64_t coord_rc_capacity(const struct coord *c, const struct coord_node *n)
{
    uintptr_t rows = c->node_rows != NULL ? (uintptr_t)strmap_get(c->node_rows, n->id) : 0;

    if (rows > 0)
        return rows;
    if (n->pressure.limit_bytes > 0 && c->cfg.bytes_per_row > 0)
        return n->pressure.limit_bytes / c->cfg.bytes_per_row;
    return 0;
}

struct coord_rc_pick {
    const struct coord *c;
    const struct coord_seg *s;
    struct coord_node *best;
    double best_ratio;
};

/* The God equation: the node with the fewest rows relative to its capacity. */
static int coord_rc_consider(const char *key, void *value, void *arg)
{
    struct coord_rc_pick *pk = arg;
    struct coord_node *n = value;
    uint64_t cap = coord_rc_capacity(pk->c, n);
    double ratio;

    if (strcmp(n->state, "UP") != 0 || n->claim || cap == 0 || n->client == NULL ||
        n->rc_in_flight >= pk->c->cfg.max_in_flight_per_node ||
        strmap_get(n->held, pk->s->id) != NULL)
        return 0;
    ratio = (double)(n->rows + pk->s->row_count) / (double)cap;
    if (pk->best == NULL || ratio < pk->best_ratio ||
        (ratio == pk->best_ratio && strcmp(n->id, pk->best->id) < 0)) {
        pk->best = n;
        pk->best_ratio = ratio;
    }
    return 0;
}

struct coord_rc_attempt {
    struct coord *c;
    struct coord_seg *s;
    struct coord_node *n;
    uint64_t rows;
};

static void coord_rc_answer_cb(int status, const struct http_client_reply *reply, void *arg)
{
    struct coord_rc_attempt *a = arg;
    struct coord *c = a->c;
    struct coord_seg *s = a->s;
    struct coord_node *n = a->n;

    if (c->placer == NULL) {
        /* coord_free(): the client cancels what is in flight; nothing is left to update. */
        free(a);
        return;
    }
    s->rc_in_flight--;
    n->rc_in_flight--;
    n->rows -= a->rows; /* counted while in flight; the holder counts it from now */
    if (status == 202) {
        if (coord_holder_find(s, n->id) == NULL)
            coord_holder_add(c, s, n, WIRE_SEG_LOADING);
    } else if (status <= 0) {
        if (strcmp(n->state, "UP") == 0)
            coord_node_set_state(c, n, "SUSPECT", "an assignment got no answer");
    } else {
        coord_event(c, "refused", s->id, n->id, WIRE_REASON_NONE, status, 0,
                    "rowcount placement: HTTP %d", status);
    }
    free(a);
    coord_seg_update(c, s);
}

/* Fires what the per-node bounds allow, in queue order. */
static void coord_rc_dispatch(struct coord *c)
{
    size_t n = c->rc_n;

    while (n-- > 0 && c->rc_n > 0) {
        struct coord_seg *s = c->rc_queue[c->rc_head];
        struct coord_rc_pick pk = {c, s, NULL, 0};
        struct coord_rc_attempt *a;
        struct wire_assign_request m;
        uint8_t *body;
        size_t len;

        c->rc_head = (c->rc_head + 1) % c->rc_cap;
        c->rc_n--;
        s->rc_queued = false;
        if (s->state == COORD_INVALID || s->n_holders + s->rc_in_flight >= s->replication)
            continue;
        strmap_foreach(c->nodes, coord_rc_consider, &pk);
        if (pk.best == NULL) {
            coord_rc_enqueue(c, s); /* no node can take it now: try again later */
            continue;
        }
        a = xmalloc(sizeof(*a));
        a->c = c;
        a->s = s;
        a->n = pk.best;
        a->rows = s->row_count;
        memset(&m, 0, sizeof(m));
        snprintf(m.segment_id, sizeof(m.segment_id), "%s", s->id);
        snprintf(m.uri, sizeof(m.uri), "%s", s->uri);
        m.row_count = s->row_count;
        m.avg_row_size = s->avg_row_size;
        m.digest = s->digest;
        body = wire_assign_request_encode(&m, &len);
        if (http_client_request_idempotent(pk.best->client, EVHTTP_REQ_POST, "/v1/assign",
                                           WIRE_CONTENT_TYPE, body, len, coord_rc_answer_cb,
                                           a) == 0) {
            s->rc_in_flight++;
            pk.best->rc_in_flight++;
            pk.best->rows += a->rows;
        } else {
            free(a);
            coord_rc_enqueue(c, s);
        }
        free(body);
        if (s->n_holders + s->rc_in_flight < s->replication)
            coord_rc_enqueue(c, s);
    }
}

/* ---- ticking ------------------------------------------------------------- */

static void coord_tick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct coord *c = arg;
    uint64_t now = coord_now_ms(), next;

    if (c->rowcount) {
        struct timeval again = {0, 200000};
        coord_rc_dispatch(c);
        /* Queued segments with no node able to take them are retried periodically. */
        if (c->rc_n > 0)
            event_add(c->tick_ev, &again);
        return;
    }

    placer_tick(c->placer, now);
    next = placer_next_deadline(c->placer);
    if (next != UINT64_MAX) {
        uint64_t delay = next > now ? next - now : 0;
        struct timeval tv = {(time_t)(delay / 1000), (suseconds_t)(delay % 1000) * 1000};
        event_add(c->tick_ev, &tv);
    }
}

static void coord_kick(struct coord *c)
{
    struct timeval zero = {0, 0};

    event_add(c->tick_ev, &zero);
}

static int coord_check_timeout(const char *key, void *value, void *arg)
{
    struct coord_node *n = value;
    struct coord *c = arg;
    uint64_t now = clock_mono_ns() / 1000000;

    if (strcmp(n->state, "DOWN") != 0 && now - n->last_seen_mono_ms > c->cfg.node_timeout_ms) {
        char why[96];
        snprintf(why, sizeof(why), "no report for %" PRIu64 " ms", now - n->last_seen_mono_ms);
        coord_node_set_state(c, n, "DOWN", why);
        coord_node_lost(c, n);
    }
    return 0;
}

static void coord_membership_cb(evutil_socket_t fd, short what, void *arg)
{
    struct coord *c = arg;

    strmap_foreach(c->nodes, coord_check_timeout, c);
}

/* ---- HTTP helpers -------------------------------------------------------- */

static int coord_decode_fail(struct evhttp_request *req, int r, const struct wire_error *err)
{
    pbhttp_reply_error(req, r == -EMSGSIZE ? 413 : 400, err->code, err->message);
    return r;
}

/* ---- /v1/report ---------------------------------------------------------- */

struct coord_drops {
    size_t n, cap;
    char (*ids)[WIRE_ID_MAX + 1];
};

static void coord_drop(struct coord_drops *d, const char *id)
{
    if (d->n == d->cap) {
        d->cap = d->cap * 2 + 16;
        d->ids = xreallocarray(d->ids, d->cap, sizeof(*d->ids));
    }
    snprintf(d->ids[d->n++], sizeof(d->ids[0]), "%s", id);
}

struct coord_missing {
    struct coord *c;
    struct strmap *reported;
    struct coord_node *node;
    struct coord_seg **lost;
    size_t n_lost;
};

static int coord_find_missing(const char *key, void *value, void *arg)
{
    struct coord_missing *m = arg;
    struct coord_seg *s = value;
    struct coord_holder *h = coord_holder_find(s, m->node->id);

    if (strmap_get(m->reported, key) == NULL && h != NULL &&
        coord_now_ms() - h->since_ms > COORD_REPORT_GRACE_MS)
        m->lost[m->n_lost++] = s;
    return 0;
}

/* Records that node found the segment's file bad; returns the distinct nodes so far. */
static unsigned coord_invalid_vote(struct coord_seg *s, const char *node)
{
    for (unsigned i = 0; i < s->n_invalid; i++)
        if (strcmp(s->invalid_nodes[i], node) == 0)
            return s->n_invalid;
    if (s->n_invalid >= COORD_INVALID_QUORUM)
        return s->n_invalid; /* enough remembered to decide */
    s->invalid_nodes = xreallocarray(s->invalid_nodes, s->n_invalid + 1, sizeof(*s->invalid_nodes));
    snprintf(s->invalid_nodes[s->n_invalid], sizeof(s->invalid_nodes[0]), "%s", node);
    return ++s->n_invalid;
}

static int coord_count_alive(const char *key, void *value, void *arg)
{
    *(size_t *)arg += strcmp(((const struct coord_node *)value)->state, "DOWN") != 0;
    return 0;
}

/*
 * Two distinct nodes, or all the nodes that are not DOWN when fewer are
 * (a cluster down to one node takes its word rather than reload a corrupt
 * file every --drop-retry for ever).
 */
static unsigned coord_invalid_quorum(const struct coord *c)
{
    size_t alive = 0;

    strmap_foreach(c->nodes, coord_count_alive, &alive);
    if (alive == 0)
        alive = 1;
    return alive < COORD_INVALID_QUORUM ? (unsigned)alive : COORD_INVALID_QUORUM;
}

/*
 * A reported copy is another file than the registered segment: its row
 * count differs, or both digests are known and differ (0 is unknown: a
 * LOADING copy, or a node or registration from before digests).
 */
static bool coord_copy_is_stale(const struct coord_seg *s, const struct wire_segment_status *r)
{
    return (r->row_count != 0 && r->row_count != s->row_count) ||
           (r->digest != 0 && s->digest != 0 && r->digest != s->digest);
}

/* Reconciles one reported segment; may add it to the drop list. */
static void coord_reconcile(struct coord *c, struct coord_node *n,
                            const struct wire_segment_status *r, struct coord_drops *drops)
{
    struct coord_seg *s = strmap_get(c->segs, r->segment_id);
    struct coord_holder *h;

    if (s != NULL && (r->state == WIRE_SEG_LOADING || r->state == WIRE_SEG_LOADED) &&
        coord_copy_is_stale(s, r)) {
        /* Not the registered segment: drop it, and load the registered one again. */
        if (coord_holder_find(s, n->id) != NULL)
            coord_holder_remove(c, s, n->id);
        coord_drop(drops, s->id);
        coord_event(c, "stale_copy", s->id, n->id, WIRE_REASON_NONE, 0, 0,
                    "the node's copy has %llu rows, digest %016llx; registered: %llu rows, "
                    "digest %016llx; dropped",
                    (unsigned long long)r->row_count, (unsigned long long)r->digest,
                    (unsigned long long)s->row_count, (unsigned long long)s->digest);
        coord_seg_update(c, s);
        /* Asked again once the node has unlinked the copy (it does on this answer). */
        if (s->state != COORD_INVALID && !c->rowcount)
            placer_exclude(c->placer, s->id, n->id, coord_now_ms() + COORD_STALE_RETRY_MS);
        return;
    }
    if (s != NULL && s->state == COORD_INVALID && r->state == WIRE_SEG_LOADED) {
        /*
         * A copy that passed its checksums (one that was LOADING when the
         * verdict came) proves the file good: the failures were node-local.
         */
        log_warn("segment_state", "id=%s transition=\"INVALID -> PENDING\" reason=\"LOADED on %s\"",
                 s->id, n->id);
        coord_set_seg_state(c, s, COORD_PENDING);
        s->n_invalid = 0;
        coord_event(c, "revalidated", s->id, n->id, WIRE_REASON_NONE, 0, 0,
                    "INVALID, but reported LOADED by the node");
    }
    if (s == NULL || s->state == COORD_INVALID) {
        coord_drop(drops, r->segment_id);
        return;
    }
    h = coord_holder_find(s, n->id);
    switch (r->state) {
    case WIRE_SEG_LOADING:
    case WIRE_SEG_LOADED:
        if (h == NULL) {
            /* Adopt a copy we did not know of, if the segment needs it. */
            if (s->n_holders < s->replication ||
                (r->state == WIRE_SEG_LOADED && coord_live_loaded(c, s, NULL) < s->replication)) {
                coord_holder_add(c, s, n, r->state);
                coord_event(c, "adopted", s->id, n->id, WIRE_REASON_NONE, 0, 0,
                            "reported %s by the node", wire_segment_state_name(r->state));
            } else {
                coord_drop(drops, s->id);
                coord_event(c, "extra_copy", s->id, n->id, WIRE_REASON_NONE, 0, 0,
                            "held by enough other nodes; dropped");
                return;
            }
        } else if (h->state != r->state) {
            h->state = r->state;
            h->since_ms = coord_now_ms();
            coord_txn(c);
            coord_check(c, catalog_put_assignment(c->cat, s->id, n->id,
                                                  wire_segment_state_name(r->state),
                                                  (int64_t)clock_wall_ms()),
                        "assignment");
            if (r->state == WIRE_SEG_LOADED)
                coord_event(c, "loaded", s->id, n->id, WIRE_REASON_NONE, 0, 0, NULL);
        }
        /* A surplus copy (the segment is LOADED enough on live nodes elsewhere) is dropped. */
        if (s->n_holders > s->replication && coord_live_loaded(c, s, n->id) >= s->replication) {
            coord_holder_remove(c, s, n->id);
            coord_drop(drops, s->id);
            coord_event(c, "extra_copy", s->id, n->id, WIRE_REASON_NONE, 0, 0,
                        "held by enough other nodes; dropped");
        }
        break;
    case WIRE_SEG_FAILED:
    case WIRE_SEG_DROPPED:
        coord_drop(drops, s->id); /* clears the node's entry */
        if (h == NULL)
            return;
        coord_holder_remove(c, s, n->id);
        snprintf(s->last_reason, sizeof(s->last_reason), "%s", reason_name(r->reason));
        coord_event(c, r->state == WIRE_SEG_FAILED ? "failed" : "dropped", s->id, n->id,
                    r->reason, 0, (uint32_t)c->cfg.drop_retry_ms, "%s", r->detail);
        /*
         * Distinct nodes, and none holding a copy that passed its checksums
         * (such a copy proves the failures so far node-local: they are
         * forgotten).
         */
        if (r->state == WIRE_SEG_FAILED && r->reason == WIRE_REASON_SEGMENT_INVALID &&
            coord_loaded_holders(s, NULL) > 0)
            s->n_invalid = 0;
        else if (r->state == WIRE_SEG_FAILED && r->reason == WIRE_REASON_SEGMENT_INVALID &&
                 coord_invalid_vote(s, n->id) >= coord_invalid_quorum(c)) {
            coord_set_seg_state(c, s, COORD_INVALID);
            placer_forget(c->placer, s->id);
            coord_event(c, "invalid", s->id, NULL, WIRE_REASON_SEGMENT_INVALID, 0, 0,
                        "checksum failures on %u nodes", s->n_invalid);
            return;
        }
        coord_seg_update(c, s);
        placer_exclude(c->placer, s->id, n->id, coord_now_ms() + c->cfg.drop_retry_ms);
        return;
    default:
        return;
    }
    coord_seg_update(c, s);
}

static void coord_report_cb(struct evhttp_request *req, const char *rest, void *arg)
{
    struct coord *c = arg;
    struct wire_node_report rep;
    struct wire_report_response resp;
    struct coord_drops drops = {0, 0, NULL};
    struct coord_missing miss;
    struct wire_error err;
    struct coord_node *n;
    const void *body;
    char msg[640]; /* clients keep 255 bytes: the id and the address come first */
    size_t len;
    int r;

    if (!pbhttp_check_content_type(req))
        return;
    body = pbhttp_body(req, &len);
    r = wire_node_report_decode(body, len, &rep, &err);
    if (r < 0) {
        coord_decode_fail(req, r, &err);
        return;
    }
    c->reports++;
    n = strmap_get(c->nodes, rep.node_id);
    if (n != NULL && coord_id_clash(c, n, rep.addr, msg, sizeof(msg)) &&
        coord_addr_usable(c, rep.addr)) {
        /* Another process with this id: it gets nothing, and the live node keeps it. */
        c->id_clashes++;
        log_warn("node_id_in_use", "node=%s addr=%s live_addr=%s", log_q(n->id), log_q(rep.addr),
                 log_q(n->addr));
        pbhttp_reply_error(req, 409, "node_id_in_use", msg);
        wire_node_report_done(&rep);
        return;
    }
    n = coord_node_get(c, rep.node_id, rep.addr);
    if (n == NULL || n->client == NULL) {
        pbhttp_reply_error(req, 400, "invalid_field", "addr: cannot be reached as given");
        wire_node_report_done(&rep);
        return;
    }
    n->last_seen_mono_ms = clock_mono_ns() / 1000000;
    n->last_seen_ms = clock_wall_ms();
    n->pressure = rep.pressure;
    n->self_draining = rep.state == WIRE_NODE_DRAINING;
    if (n->claim != rep.claim) {
        n->claim = rep.claim; /* the placer learns it just below */
        coord_node_save(c, n);
    }
    /*
     * Also when the state does not change: that re-syncs the placer, which
     * marks a node DRAINING on its own when an answer says 503 DRAINING. Such
     * an answer can arrive late, after the node's SERVING report.
     */
    if (n->admin_drained || n->self_draining)
        coord_node_set_state(c, n, "DRAINING", n->admin_drained ? "drained by the operator"
                                                                : "the node is draining");
    else
        coord_node_set_state(c, n, "UP", "reported");
    /* What the node says it holds. */
    miss.reported = strmap_new();
    for (size_t i = 0; i < rep.n_segments; i++) {
        strmap_put(miss.reported, rep.segments[i].segment_id, &rep.segments[i]);
        coord_reconcile(c, n, &rep.segments[i], &drops);
    }
    /* What we think it holds and it does not report: lost. */
    miss.c = c;
    miss.node = n;
    miss.n_lost = 0;
    miss.lost = xcalloc(strmap_count(n->held) + 1, sizeof(*miss.lost));
    strmap_foreach(n->held, coord_find_missing, &miss);
    for (size_t i = 0; i < miss.n_lost; i++) {
        coord_event(c, "lost", miss.lost[i]->id, n->id, WIRE_REASON_NONE, 0, 0,
                    "not in the node's report");
        coord_holder_remove(c, miss.lost[i], n->id);
        coord_seg_update(c, miss.lost[i]);
    }
    free(miss.lost);
    strmap_free(miss.reported);
    /*
     * A node told to drop a copy deletes it at once: the catalog must not
     * still list that copy if the coordinator dies in the next few ms.
     */
    if (drops.n > 0)
        coord_flush(c);
    resp.n_drop = drops.n;
    resp.drop = drops.ids;
    {
        uint8_t *buf = wire_report_response_encode(&resp, &len);
        pbhttp_reply(req, 200, buf, len);
    }
    free(drops.ids);
    wire_node_report_done(&rep);
}

/* ---- /v1/claim (pull mode) ------------------------------------------------ */

struct coord_claim {
    struct coord *c;
    struct coord_node *node;
    struct wire_claim_response resp;
    uint32_t max;
};

static int coord_claim_one(const char *key, void *value, void *arg)
{
    struct coord_claim *cl = arg;
    struct coord_seg *s = value;
    struct wire_assign_request *a;

    if (cl->resp.n >= cl->max)
        return 1;
    if (s->state != COORD_PENDING || s->n_holders >= s->replication ||
        coord_holder_find(s, cl->node->id) != NULL || s->backoff_until_ms > coord_now_ms())
        return 0;
    a = &cl->resp.assignments[cl->resp.n++];
    memset(a, 0, sizeof(*a));
    snprintf(a->segment_id, sizeof(a->segment_id), "%s", s->id);
    snprintf(a->uri, sizeof(a->uri), "%s", s->uri);
    a->row_count = s->row_count;
    a->avg_row_size = s->avg_row_size;
    a->digest = s->digest;
    coord_holder_add(cl->c, s, cl->node, WIRE_SEG_LOADING);
    coord_event(cl->c, "claimed", s->id, cl->node->id, WIRE_REASON_NONE, 0, 0, NULL);
    return 0;
}

static void coord_claim_cb(struct evhttp_request *req, const char *rest, void *arg)
{
    struct coord *c = arg;
    struct wire_claim_request m;
    struct coord_claim cl;
    struct wire_error err;
    const void *body;
    size_t len;
    uint8_t *buf;
    int r;

    if (!pbhttp_check_content_type(req))
        return;
    body = pbhttp_body(req, &len);
    r = wire_claim_request_decode(body, len, &m, &err);
    if (r < 0) {
        coord_decode_fail(req, r, &err);
        return;
    }
    cl.node = strmap_get(c->nodes, m.node_id);
    if (cl.node == NULL || strcmp(cl.node->state, "UP") != 0) {
        pbhttp_reply_error(req, 409, "not_up",
                          "node_id: this node has not reported, or is not UP; report first");
        return;
    }
    c->claims++;
    cl.c = c;
    cl.max = m.max_segments;
    cl.resp.n = 0;
    cl.resp.assignments = xcalloc(m.max_segments, sizeof(*cl.resp.assignments));
    strmap_foreach(c->segs, coord_claim_one, &cl);
    for (size_t i = 0; i < cl.resp.n; i++)
        coord_seg_update(c, strmap_get(c->segs, cl.resp.assignments[i].segment_id));
    /*
     * The node starts loading on this answer: its LOADING rows are durable
     * first. (If they are not, the copies in memory are found missing from
     * the node's reports after the grace period and placed again.)
     */
    if (coord_flush(c) < 0) {
        pbhttp_reply_error(req, 500, "catalog", catalog_errmsg(c->cat));
        wire_claim_response_done(&cl.resp);
        return;
    }
    buf = wire_claim_response_encode(&cl.resp, &len);
    pbhttp_reply(req, 200, buf, len);
    wire_claim_response_done(&cl.resp);
}

/* ---- /v1/segments -------------------------------------------------------- */

/* What a registration did to one spec, applied to memory once committed. */
enum coord_reg {
    COORD_REG_NONE = 0,    /* unchanged */
    COORD_REG_NEW,         /* a new segment */
    COORD_REG_DIGEST,      /* unchanged, and its digest learnt (registered before digests) */
    COORD_REG_REVALIDATED, /* INVALID, registered again from a changed file */
};

/* An INVALID segment whose file changed (another digest) is placeable again. */
static void coord_seg_revalidate(struct coord *c, struct coord_seg *s,
                                 const struct wire_segment_spec *sp)
{
    uint64_t old = s->digest;

    s->row_count = sp->row_count;
    s->avg_row_size = sp->avg_row_size;
    s->digest = sp->digest;
    s->n_invalid = 0;
    s->backoff_until_ms = 0;
    log_warn("segment_state",
             "id=%s transition=\"INVALID -> PENDING\" reason=\"file changed: digest %016llx -> "
             "%016llx\"",
             s->id, (unsigned long long)old, (unsigned long long)sp->digest);
    coord_set_seg_state(c, s, COORD_PENDING);
    coord_event(c, "revalidated", s->id, NULL, WIRE_REASON_NONE, 0, 0,
                "registered again from a changed file (digest %016llx -> %016llx)",
                (unsigned long long)old, (unsigned long long)sp->digest);
    coord_seg_update(c, s);
}

static void coord_register(struct coord *c, struct evhttp_request *req)
{
    struct wire_segment_batch b;
    struct wire_batch_response resp = {0, 0};
    struct wire_error err;
    const void *body;
    size_t len;
    unsigned char *is_new = NULL; /* enum coord_reg, per spec */
    struct strmap *seen = NULL;
    uint8_t *buf;
    int r;

    if (!pbhttp_check_content_type(req))
        return;
    body = pbhttp_body(req, &len);
    r = wire_segment_batch_decode(body, len, &b, &err);
    if (r < 0) {
        coord_decode_fail(req, r, &err);
        return;
    }
    /* Durable before acknowledged: one transaction, committed now. */
    coord_flush(c);
    if (catalog_begin(c->cat) < 0) {
        pbhttp_reply_error(req, 500, "catalog", catalog_errmsg(c->cat));
        goto out;
    }
    is_new = xcalloc(b.n, sizeof(*is_new));
    seen = strmap_new(); /* new ids in this batch -> index + 1 */
    for (size_t i = 0; i < b.n; i++) {
        const struct wire_segment_spec *sp = &b.specs[i];
        struct coord_seg *s = strmap_get(c->segs, sp->segment_id);
        struct catalog_segment cs;
        char msg[512];
        void *prev;

        if (s != NULL) {
            bool same_place = strcmp(s->uri, sp->uri) == 0 && s->replication == sp->replication;
            bool new_digest = sp->digest != 0 && sp->digest != s->digest;

            if (same_place && s->row_count == sp->row_count &&
                s->avg_row_size == sp->avg_row_size && (!new_digest || s->digest == 0)) {
                /* Unchanged; a registration from before digests learns the file's. */
                if (new_digest &&
                    catalog_set_segment_file(c->cat, s->id, s->row_count, s->avg_row_size,
                                             sp->digest, NULL) < 0)
                    goto catalog_failed;
                is_new[i] = new_digest ? COORD_REG_DIGEST : COORD_REG_NONE;
                resp.unchanged++;
                continue;
            }
            if (same_place && new_digest && s->state == COORD_INVALID) {
                /* The file changed since two nodes found it bad: validate it again. */
                if (catalog_set_segment_file(c->cat, s->id, sp->row_count, sp->avg_row_size,
                                             sp->digest, "PENDING") < 0)
                    goto catalog_failed;
                is_new[i] = COORD_REG_REVALIDATED;
                resp.registered++;
                continue;
            }
            snprintf(msg, sizeof(msg),
                     "segments[%zu]: \"%s\" is already registered with another %s", i,
                     sp->segment_id,
                     strcmp(s->uri, sp->uri) != 0   ? "uri"
                     : s->replication != sp->replication ? "replication"
                     : new_digest                   ? "file (digest); only an INVALID segment "
                                                      "is registered again from a changed file"
                                                    : "row_count or avg_row_size");
            catalog_rollback(c->cat);
            pbhttp_reply_error(req, 409, "conflict", msg);
            goto out;
        }
        prev = strmap_put(seen, sp->segment_id, (void *)(uintptr_t)(i + 1));
        if (prev != NULL) {
            snprintf(msg, sizeof(msg), "segments[%zu]: duplicate of segments[%zu]", i,
                     (size_t)(uintptr_t)prev - 1);
            catalog_rollback(c->cat);
            pbhttp_reply_error(req, 400, "invalid_field", msg);
            goto out;
        }
        memset(&cs, 0, sizeof(cs));
        snprintf(cs.id, sizeof(cs.id), "%s", sp->segment_id);
        snprintf(cs.uri, sizeof(cs.uri), "%s", sp->uri);
        cs.row_count = sp->row_count;
        cs.avg_row_size = sp->avg_row_size;
        cs.digest = sp->digest;
        cs.replication = sp->replication;
        snprintf(cs.state, sizeof(cs.state), "PENDING");
        cs.created_ms = (int64_t)clock_wall_ms();
        if (catalog_put_segment(c->cat, &cs) < 0) {
            snprintf(msg, sizeof(msg), "segments[%zu]: %s", i, catalog_errmsg(c->cat));
            catalog_rollback(c->cat);
            pbhttp_reply_error(req, 500, "catalog", msg);
            goto out;
        }
        is_new[i] = COORD_REG_NEW;
        resp.registered++;
    }
    if (catalog_commit(c->cat) < 0) {
        c->catalog_errors++;
        pbhttp_reply_error(req, 500, "catalog", catalog_errmsg(c->cat));
        goto out;
    }
    /* Committed: now the segments exist for placement. */
    for (size_t i = 0; i < b.n; i++) {
        const struct wire_segment_spec *sp = &b.specs[i];
        struct coord_seg *s;

        switch (is_new[i]) {
        case COORD_REG_NEW:
            s = coord_seg_new(c, sp->segment_id, sp->uri, sp->row_count, sp->avg_row_size,
                              sp->replication, COORD_PENDING);
            s->digest = sp->digest;
            coord_seg_update(c, s);
            break;
        case COORD_REG_DIGEST:
            ((struct coord_seg *)strmap_get(c->segs, sp->segment_id))->digest = sp->digest;
            break;
        case COORD_REG_REVALIDATED:
            coord_seg_revalidate(c, strmap_get(c->segs, sp->segment_id), sp);
            break;
        default:
            break;
        }
    }
    c->registered += resp.registered;
    buf = wire_batch_response_encode(&resp, &len);
    pbhttp_reply(req, 200, buf, len);
    goto out;
catalog_failed:
    catalog_rollback(c->cat);
    pbhttp_reply_error(req, 500, "catalog", catalog_errmsg(c->cat));
out:
    strmap_free(seen);
    free(is_new);
    wire_segment_batch_done(&b);
}

static void coord_seg_info(const struct coord *c, const struct coord_seg *s,
                           struct wire_segment_info *d, bool explain)
{
    memset(d, 0, sizeof(*d));
    snprintf(d->spec.segment_id, sizeof(d->spec.segment_id), "%s", s->id);
    d->spec.uri = s->uri; /* borrowed: the caller must not free it */
    d->spec.row_count = s->row_count;
    d->spec.avg_row_size = s->avg_row_size;
    d->spec.replication = s->replication;
    d->spec.digest = s->digest;
    snprintf(d->state, sizeof(d->state), "%s", coord_seg_state_names[s->state]);
    d->n_placements = s->n_holders;
    d->placements = xcalloc(s->n_holders, sizeof(*d->placements));
    for (unsigned i = 0; i < s->n_holders; i++) {
        snprintf(d->placements[i].node_id, sizeof(d->placements[i].node_id), "%s",
                 s->holders[i].node);
        d->placements[i].state = s->holders[i].state;
    }
    d->backoff_until_ms = coord_wall_of(s->backoff_until_ms);
    snprintf(d->last_reason, sizeof(d->last_reason), "%s", s->last_reason);
    if (explain) {
        char buf[4096];
        if (s->state == COORD_LOADED)
            snprintf(buf, sizeof(buf), "LOADED on %u node(s), as its replication %u asks",
                     coord_loaded_holders(s, NULL), s->replication);
        else if (s->state == COORD_INVALID)
            snprintf(buf, sizeof(buf), "INVALID: nodes found the file unreadable or corrupt "
                                       "(see events); it will not be placed");
        else if (placer_explain(c->placer, s->id, buf, sizeof(buf)) < 0)
            snprintf(buf, sizeof(buf), "PENDING: %u cop%s loading, waiting for the nodes' "
                                       "reports", s->n_holders, s->n_holders == 1 ? "y" : "ies");
        d->explain = xstrdup(buf);
    }
}

struct coord_list {
    const struct coord *c;
    int state; /* -1: all */
    struct coord_seg **segs;
    size_t n;
};

static int coord_collect_seg(const char *key, void *value, void *arg)
{
    struct coord_list *l = arg;
    struct coord_seg *s = value;

    if (l->state < 0 || (int)s->state == l->state)
        l->segs[l->n++] = s;
    return 0;
}

static int coord_cmp_seg(const void *a, const void *b)
{
    return strcmp((*(struct coord_seg *const *)a)->id, (*(struct coord_seg *const *)b)->id);
}

static void coord_list_segments(struct coord *c, struct evhttp_request *req)
{
    struct evkeyvalq q;
    const char *state, *limit_s;
    struct coord_list l = {c, -1, NULL, 0};
    struct wire_segment_list out;
    unsigned long limit = 1000;
    uint8_t *buf;
    size_t len;

    evhttp_parse_query_str(evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req)) != NULL
                               ? evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req))
                               : "",
                           &q);
    state = evhttp_find_header(&q, "state");
    limit_s = evhttp_find_header(&q, "limit");
    if (state != NULL) {
        for (int i = 0; i < 3; i++)
            if (strcmp(state, coord_seg_state_names[i]) == 0)
                l.state = i;
        if (l.state < 0) {
            pbhttp_reply_error(req, 400, "invalid_field", "state: one of PENDING, LOADED, INVALID");
            goto out;
        }
    }
    if (limit_s != NULL) {
        char *end;
        limit = strtoul(limit_s, &end, 10);
        if (*end != '\0' || limit == 0 || limit > 1000000) {
            pbhttp_reply_error(req, 400, "invalid_field", "limit: an integer in 1..1000000");
            goto out;
        }
    }
    l.segs = xcalloc(strmap_count(c->segs) + 1, sizeof(*l.segs));
    strmap_foreach(c->segs, coord_collect_seg, &l);
    qsort(l.segs, l.n, sizeof(*l.segs), coord_cmp_seg);
    memset(&out, 0, sizeof(out));
    out.total = l.n;
    out.n = l.n < limit ? l.n : limit;
    out.segments = xcalloc(out.n, sizeof(*out.segments));
    for (size_t i = 0; i < out.n; i++)
        coord_seg_info(c, l.segs[i], &out.segments[i], false);
    buf = wire_segment_list_encode(&out, &len);
    for (size_t i = 0; i < out.n; i++)
        free(out.segments[i].placements);
    free(out.segments);
    free(l.segs);
    pbhttp_reply(req, 200, buf, len);
out:
    evhttp_clear_headers(&q);
}

static void coord_segments_cb(struct evhttp_request *req, const char *rest, void *arg)
{
    struct coord *c = arg;

    if (evhttp_request_get_command(req) == EVHTTP_REQ_POST) {
        coord_register(c, req);
        return;
    }
    coord_list_segments(c, req);
}

/*
 * POST /v1/segments/{id}/retry: an INVALID segment becomes PENDING again,
 * the nodes' earlier verdicts and its registered digest forgotten (after its
 * file was fixed). Durable
 * before it is answered "PENDING\n"; 404 unknown, 409 not INVALID (the
 * message names its state), 500 the catalog write failed (nothing changed).
 */
static void coord_retry(struct coord *c, struct evhttp_request *req, const char *id)
{
    struct coord_seg *s = strmap_get(c->segs, id);
    uint64_t errors, digest;
    char msg[256];

    if (s == NULL) {
        snprintf(msg, sizeof(msg), "segment \"%s\" is not registered", id);
        pbhttp_reply_error(req, 404, "not_found", msg);
        return;
    }
    if (s->state != COORD_INVALID) {
        snprintf(msg, sizeof(msg), "segment \"%s\" is %s, not INVALID: only an INVALID segment "
                 "can be retried", id, coord_seg_state_names[s->state]);
        pbhttp_reply_error(req, 409, "not_invalid", msg);
        return;
    }
    if (coord_flush(c) < 0 || coord_txn(c) < 0) {
        pbhttp_reply_error(req, 500, "catalog", catalog_errmsg(c->cat));
        return;
    }
    errors = c->catalog_errors;
    digest = s->digest;
    coord_set_seg_state(c, s, COORD_PENDING);
    /* The fixed file is taken as it is: its digest is learnt again at the next import. */
    s->digest = 0;
    coord_check(c, catalog_set_segment_file(c->cat, s->id, s->row_count, s->avg_row_size, 0, NULL),
                "segment_file");
    coord_event(c, "retry", s->id, NULL, WIRE_REASON_NONE, 0, 0,
                "INVALID -> PENDING: retried by the operator");
    if (c->catalog_errors != errors)
        coord_rollback(c);
    if (c->catalog_errors != errors || coord_flush(c) < 0) {
        c->counts[COORD_PENDING]--;
        c->counts[COORD_INVALID]++;
        s->state = COORD_INVALID;
        s->digest = digest;
        pbhttp_reply_error(req, 500, "catalog", catalog_errmsg(c->cat));
        return;
    }
    log_info("segment_state", "id=%s transition=\"INVALID -> PENDING\" reason=\"retried by the "
             "operator\"", s->id);
    s->n_invalid = 0;
    s->last_reason[0] = '\0';
    s->backoff_until_ms = 0;
    coord_seg_update(c, s);
    http_reply_text(req, 200, "%s\n", coord_seg_state_names[s->state]);
}

static void coord_segment_cb(struct evhttp_request *req, const char *rest, void *arg)
{
    struct coord *c = arg;
    struct wire_segment_list out;
    struct wire_segment_info info;
    struct wire_error err;
    struct coord_seg *s;
    char msg[256];
    uint8_t *buf;
    size_t len;

    if (evhttp_request_get_command(req) == EVHTTP_REQ_POST) {
        const char *slash = strchr(rest, '/');
        char id[WIRE_ID_MAX + 1];

        if (slash == NULL || strcmp(slash, "/retry") != 0 ||
            (size_t)(slash - rest) > WIRE_ID_MAX) {
            pbhttp_reply_error(req, 404, "not_found", "expected POST /v1/segments/{id}/retry");
            return;
        }
        snprintf(id, sizeof(id), "%.*s", (int)(slash - rest), rest);
        if (wire_check_segment_id("segment id in path", id, &err) < 0) {
            pbhttp_reply_error(req, 400, err.code, err.message);
            return;
        }
        coord_retry(c, req, id);
        return;
    }
    if (wire_check_segment_id("segment id in path", rest, &err) < 0) {
        pbhttp_reply_error(req, 400, err.code, err.message);
        return;
    }
    s = strmap_get(c->segs, rest);
    if (s == NULL) {
        snprintf(msg, sizeof(msg), "segment \"%s\" is not registered", rest);
        pbhttp_reply_error(req, 404, "not_found", msg);
        return;
    }
    coord_seg_info(c, s, &info, true);
    out.n = 1;
    out.total = 1;
    out.segments = &info;
    buf = wire_segment_list_encode(&out, &len);
    free(info.placements);
    free(info.explain);
    pbhttp_reply(req, 200, buf, len);
}

/* ---- /v1/nodes ----------------------------------------------------------- */

static int coord_collect_node(const char *key, void *value, void *arg)
{
    struct wire_node_list *l = arg;
    struct coord_node *n = value;
    struct wire_node_info *d = &l->nodes[l->n++];

    memset(d, 0, sizeof(*d));
    snprintf(d->node_id, sizeof(d->node_id), "%s", n->id);
    snprintf(d->addr, sizeof(d->addr), "%s", n->addr);
    snprintf(d->state, sizeof(d->state), "%s", n->state);
    d->pressure = n->pressure;
    d->segments = (uint32_t)strmap_count(n->held);
    snprintf(d->last_reason, sizeof(d->last_reason), "%s", n->last_reason);
    d->last_seen_ms = n->last_seen_ms;
    d->refusals = n->refusals;
    return 0;
}

static int coord_cmp_node(const void *a, const void *b)
{
    return strcmp(((const struct wire_node_info *)a)->node_id,
                  ((const struct wire_node_info *)b)->node_id);
}

static void coord_nodes_cb(struct evhttp_request *req, const char *rest, void *arg)
{
    struct coord *c = arg;
    struct wire_node_list l;
    uint8_t *buf;
    size_t len;

    l.n = 0;
    l.nodes = xcalloc(strmap_count(c->nodes) + 1, sizeof(*l.nodes));
    strmap_foreach(c->nodes, coord_collect_node, &l);
    qsort(l.nodes, l.n, sizeof(*l.nodes), coord_cmp_node);
    buf = wire_node_list_encode(&l, &len);
    free(l.nodes);
    pbhttp_reply(req, 200, buf, len);
}

/*
 * POST /v1/nodes/{id}/forget: a DOWN node (silent for --node-timeout at
 * least) leaves memory, the catalog (its row and assignments; events stay,
 * they are history) and the placer's ring, which every placement scan
 * walks. Answers "FORGOTTEN\n" once durable; 409 (naming its state) for a
 * node that is not DOWN; 500 if the catalog write fails (nothing removed).
 * If the node reports again it joins as a new node.
 */
static void coord_forget(struct coord *c, struct evhttp_request *req, struct coord_node *n)
{
    uint64_t errors, down_ms = clock_mono_ns() / 1000000 - n->last_seen_mono_ms;
    char msg[256];
    int r;

    if (strcmp(n->state, "DOWN") != 0) {
        snprintf(msg, sizeof(msg), "node \"%s\" is %s, not DOWN: only a node that has not "
                 "reported for --node-timeout can be forgotten", n->id, n->state);
        pbhttp_reply_error(req, 409, "not_down", msg);
        return;
    }
    if (coord_flush(c) < 0 || coord_txn(c) < 0) {
        pbhttp_reply_error(req, 500, "catalog", catalog_errmsg(c->cat));
        return;
    }
    errors = c->catalog_errors;
    r = catalog_delete_node(c->cat, n->id); /* and, by cascade, its assignments */
    if (r < 0 && r != -ENOENT)
        coord_check(c, r, "forget_node");
    coord_event(c, "node_forgotten", NULL, n->id, WIRE_REASON_NONE, 0, 0,
                "forgotten by the operator, silent for %" PRIu64 " ms", down_ms);
    if (c->catalog_errors != errors)
        coord_rollback(c);
    if (c->catalog_errors != errors || coord_flush(c) < 0) {
        pbhttp_reply_error(req, 500, "catalog", catalog_errmsg(c->cat));
        return;
    }
    log_info("node_forgotten", "node=%s silent_ms=%" PRIu64, n->id, down_ms);
    /* Copies it was still listed with (a catalog from before a crash) are placed again. */
    {
        size_t count = strmap_count(n->held);
        struct coord_seg **segs = xcalloc(count + 1, sizeof(*segs)), **p = segs;

        strmap_foreach(n->held, coord_collect_held, &p);
        for (size_t i = 0; i < count; i++) {
            for (unsigned k = 0; k < segs[i]->n_holders; k++) {
                if (strcmp(segs[i]->holders[k].node, n->id) == 0) {
                    segs[i]->holders[k] = segs[i]->holders[--segs[i]->n_holders];
                    break;
                }
            }
        }
        strmap_remove(c->nodes, n->id);
        placer_node_remove(c->placer, n->id);
        for (size_t i = 0; i < count; i++)
            coord_seg_update(c, segs[i]);
        free(segs);
    }
    http_client_free(n->client);
    strmap_free(n->held);
    free(n->pending);
    free(n);
    http_reply_text(req, 200, "FORGOTTEN\n");
}

static void coord_node_action_cb(struct evhttp_request *req, const char *rest, void *arg)
{
    struct coord *c = arg;
    char id[WIRE_ID_MAX + 1], msg[256];
    const char *slash = strchr(rest, '/');
    struct coord_node *n;
    char old[sizeof(n->state)];
    struct wire_error err;
    uint64_t errors;
    bool was_drained;

    if (slash == NULL || (size_t)(slash - rest) > WIRE_ID_MAX ||
        (strcmp(slash, "/drain") != 0 && strcmp(slash, "/undrain") != 0 &&
         strcmp(slash, "/forget") != 0)) {
        pbhttp_reply_error(req, 404, "not_found",
                           "expected /v1/nodes/{id}/drain, /undrain or /forget");
        return;
    }
    snprintf(id, sizeof(id), "%.*s", (int)(slash - rest), rest);
    if (wire_check_segment_id("node id in path", id, &err) < 0) {
        pbhttp_reply_error(req, 400, err.code, err.message);
        return;
    }
    n = strmap_get(c->nodes, id);
    if (n == NULL) {
        snprintf(msg, sizeof(msg), "node \"%s\" is not known", id);
        pbhttp_reply_error(req, 404, "not_found", msg);
        return;
    }
    if (strcmp(slash, "/forget") == 0) {
        coord_forget(c, req, n);
        return;
    }
    /*
     * Durable before acknowledged: what is pending is committed first, then
     * this change goes in a transaction of its own; if that does not
     * commit, the change is undone in memory and the answer is 500.
     */
    if (coord_flush(c) < 0 || coord_txn(c) < 0) {
        pbhttp_reply_error(req, 500, "catalog", catalog_errmsg(c->cat));
        return;
    }
    errors = c->catalog_errors;
    was_drained = n->admin_drained;
    snprintf(old, sizeof(old), "%s", n->state);
    /*
     * The operator's drain is recorded whatever the state. It changes the
     * state only of a node that answers: UP becomes DRAINING, and DRAINING
     * becomes UP unless the node drains itself. A DOWN or SUSPECT node
     * keeps its state (it gets nothing new either way, and must not look
     * up); its next report makes it DRAINING or UP as recorded.
     */
    n->admin_drained = strcmp(slash, "/drain") == 0;
    if (n->admin_drained && strcmp(n->state, "UP") == 0)
        coord_node_set_state(c, n, "DRAINING", "drained by the operator");
    else if (!n->admin_drained && strcmp(n->state, "DRAINING") == 0 && !n->self_draining)
        coord_node_set_state(c, n, "UP", "undrained by the operator");
    /* Who drains it is saved even when the state stays (a node already draining itself). */
    coord_check(c, catalog_set_node_state(c->cat, n->id, n->state, coord_drain_tag(n)),
                "node_state");
    if (c->catalog_errors != errors)
        coord_rollback(c); /* a write failed: commit none of it */
    if (c->catalog_errors != errors || coord_flush(c) < 0) {
        log_warn("node_state_not_saved", "node=%s transition=\"%s -> %s\" error=%s", n->id,
                 old, n->state, log_q(catalog_errmsg(c->cat)));
        n->admin_drained = was_drained;
        snprintf(n->state, sizeof(n->state), "%s", old);
        placer_node_set(c->placer, n->id, coord_placer_state(n));
        coord_kick(c);
        pbhttp_reply_error(req, 500, "catalog", catalog_errmsg(c->cat));
        return;
    }
    http_reply_text(req, 200, "%s\n", n->state);
}

/* ---- /v1/events, /v1/status, /metrics ------------------------------------- */

struct coord_evlist {
    struct wire_event_list l;
    size_t cap;
};

static int coord_collect_event(const struct catalog_event *e, void *arg)
{
    struct coord_evlist *el = arg;
    struct wire_event *d;

    if (el->l.n == el->cap) {
        el->cap = el->cap * 2 + 64;
        el->l.events = xreallocarray(el->l.events, el->cap, sizeof(*el->l.events));
    }
    d = &el->l.events[el->l.n++];
    memset(d, 0, sizeof(*d));
    d->id = e->id;
    d->ts_ms = (uint64_t)e->ts_ms;
    snprintf(d->segment_id, sizeof(d->segment_id), "%s", e->segment_id);
    snprintf(d->node_id, sizeof(d->node_id), "%s", e->node_id);
    snprintf(d->kind, sizeof(d->kind), "%s", e->kind);
    if (e->reason[0] == '\0' || reason_parse(e->reason, &d->reason) < 0)
        d->reason = WIRE_REASON_NONE;
    d->http_status = (uint32_t)e->http_status;
    d->retry_after_ms = (uint32_t)e->retry_after_ms;
    snprintf(d->detail, sizeof(d->detail), "%s", e->detail);
    return 0;
}

/* A decimal event id from a query parameter: 1..INT64_MAX, digits only. 0 or -EINVAL. */
static int coord_parse_event_id(const char *v, uint64_t *ret)
{
    unsigned long long n;
    char *end;

    if (v == NULL || *v < '0' || *v > '9')
        return -EINVAL;
    errno = 0;
    n = strtoull(v, &end, 10);
    if (errno != 0 || *end != '\0' || n == 0 || n > INT64_MAX)
        return -EINVAL;
    *ret = n;
    return 0;
}

/*
 * GET /v1/events: one page, limited in SQL (see EventList in the proto).
 * Newest first from the catalog, reversed into ascending order here; one
 * row more than the page is read to know whether an older page exists.
 */
static void coord_events_cb(struct evhttp_request *req, const char *rest, void *arg)
{
    struct coord *c = arg;
    struct coord_evlist el = {{0, NULL, 0}, 0};
    const char *seg, *limit_s, *before_s, *after_s, *query;
    unsigned long limit = 100;
    struct evkeyvalq q;
    struct wire_error err;
    uint64_t after = 0, before = 0;
    uint8_t *buf;
    size_t len;
    int r;

    query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
    evhttp_parse_query_str(query != NULL ? query : "", &q);
    seg = evhttp_find_header(&q, "segment");
    limit_s = evhttp_find_header(&q, "limit");
    before_s = evhttp_find_header(&q, "before");
    after_s = evhttp_find_header(&q, "after");
    if (seg != NULL && wire_check_segment_id("segment", seg, &err) < 0) {
        pbhttp_reply_error(req, 400, err.code, err.message);
        goto out;
    }
    if (limit_s != NULL) {
        char *end;
        limit = strtoul(limit_s, &end, 10);
        if (*end != '\0' || limit == 0 || limit > 100000) {
            pbhttp_reply_error(req, 400, "invalid_field", "limit: an integer in 1..100000");
            goto out;
        }
    }
    if ((before_s != NULL && coord_parse_event_id(before_s, &before) < 0) ||
        (after_s != NULL && coord_parse_event_id(after_s, &after) < 0)) {
        pbhttp_reply_error(req, 400, "invalid_field",
                           before_s != NULL && coord_parse_event_id(before_s, &before) < 0
                               ? "before: an event id, an integer in 1..2^63-1"
                               : "after: an event id, an integer in 1..2^63-1");
        goto out;
    }
    if (before_s != NULL && after_s != NULL) {
        pbhttp_reply_error(req, 400, "invalid_field", "before, after: give at most one");
        goto out;
    }
    coord_flush(c);
    if (after_s != NULL) {
        r = catalog_foreach_event(c->cat, seg, after, (unsigned)limit, coord_collect_event, &el);
    } else {
        r = catalog_foreach_event_before(c->cat, seg, before, (unsigned)limit + 1,
                                         coord_collect_event, &el);
        if (r == 0 && el.l.n > limit) {
            el.l.n = limit;
            el.l.next_before = el.l.events[limit - 1].id;
        }
        for (size_t k = 0; r == 0 && k < el.l.n / 2; k++) {
            struct wire_event t = el.l.events[k];

            el.l.events[k] = el.l.events[el.l.n - 1 - k];
            el.l.events[el.l.n - 1 - k] = t;
        }
    }
    if (r < 0) {
        wire_event_list_done(&el.l);
        pbhttp_reply_error(req, 500, "catalog", catalog_errmsg(c->cat));
        goto out;
    }
    buf = wire_event_list_encode(&el.l, &len);
    wire_event_list_done(&el.l);
    pbhttp_reply(req, 200, buf, len);
out:
    evhttp_clear_headers(&q);
}

static int coord_count_up(const char *key, void *value, void *arg)
{
    const struct coord_node *n = value;

    *(uint32_t *)arg += strcmp(n->state, "UP") == 0 || strcmp(n->state, "DRAINING") == 0;
    return 0;
}

static int coord_sum_rc_in_flight(const char *key, void *value, void *arg)
{
    *(size_t *)arg += ((const struct coord_node *)value)->rc_in_flight;
    return 0;
}

/*
 * Assignments in flight, and segments still waiting to be placed (queued, or
 * with an assignment in flight; unplaced may be NULL), from whichever placer
 * is running. The rowcount baseline counts a segment once per copy it is
 * missing.
 */
static void coord_placing(const struct coord *c, const struct placer_stats *ps,
                          size_t *in_flight, size_t *unplaced)
{
    size_t rc = 0;

    if (!c->rowcount) {
        *in_flight = ps->in_flight;
        if (unplaced != NULL)
            *unplaced = ps->segments;
        return;
    }
    strmap_foreach(c->nodes, coord_sum_rc_in_flight, &rc);
    *in_flight = rc;
    if (unplaced != NULL)
        *unplaced = c->rc_n + rc;
}

static void coord_status_fill(struct coord *c, struct wire_cluster_status *st)
{
    size_t in_flight;
    struct placer_stats ps;

    memset(st, 0, sizeof(*st));
    placer_get_stats(c->placer, &ps);
    st->segments_total = strmap_count(c->segs);
    st->segments_pending = c->counts[COORD_PENDING];
    st->segments_loaded = c->counts[COORD_LOADED];
    st->segments_invalid = c->counts[COORD_INVALID];
    st->segments_backing_off = ps.backing_off + ps.waiting_retry;
    st->nodes_total = (uint32_t)strmap_count(c->nodes);
    strmap_foreach(c->nodes, coord_count_up, &st->nodes_up);
    coord_placing(c, &ps, &in_flight, NULL);
    st->assignments_in_flight = in_flight;
    snprintf(st->version, sizeof(st->version), "%s", SLUICE_VERSION);
    st->uptime_seconds = (clock_mono_ns() - c->started_mono_ns) / 1000000000ull;
}

static void coord_status_cb(struct evhttp_request *req, const char *rest, void *arg)
{
    struct wire_cluster_status st;
    uint8_t *buf;
    size_t len;

    coord_status_fill(arg, &st);
    buf = wire_cluster_status_encode(&st, &len);
    pbhttp_reply(req, 200, buf, len);
}

static void coord_healthz_cb(struct evhttp_request *req, const char *rest, void *arg)
{
    http_reply_text(req, 200, "ok\n");
}

static int coord_metrics_node(const char *key, void *value, void *arg)
{
    const struct coord_node *n = value;
    const char *labels[] = {"node", n->id, "state", n->state, NULL};

    metrics_sample_u64(arg, "sluice_coord_node_segments", strmap_count(n->held), labels);
    return 0;
}

static void coord_metrics_cb(struct evhttp_request *req, const char *rest, void *arg)
{
    struct coord *c = arg;
    struct metrics_buf *m = metrics_buf_new();
    struct wire_cluster_status st;
    struct placer_stats ps;
    struct http_server_stats hs;
    size_t in_flight, unplaced;

    coord_status_fill(c, &st);
    placer_get_stats(c->placer, &ps);
    http_server_get_stats(c->http, &hs);
    metrics_family(m, "sluice_coord_segments", "gauge", "Registered segments by state.");
    for (int i = 0; i < 3; i++) {
        const char *labels[] = {"state", coord_seg_state_names[i], NULL};
        metrics_sample_u64(m, "sluice_coord_segments", c->counts[i], labels);
    }
    metrics_one_u64(m, "sluice_coord_segments_backing_off", "gauge",
                    "Pending segments waiting out a Retry-After.", st.segments_backing_off);
    metrics_one_u64(m, "sluice_coord_nodes_up", "gauge", "Nodes UP or DRAINING.", st.nodes_up);
    metrics_family(m, "sluice_coord_node_segments", "gauge", "Segments held per node.");
    strmap_foreach(c->nodes, coord_metrics_node, m);
    coord_placing(c, &ps, &in_flight, &unplaced);
    metrics_one_u64(m, "sluice_coord_segments_unplaced", "gauge",
                    "Segments waiting for a node to accept them (queued or in flight).",
                    unplaced);
    metrics_one_u64(m, "sluice_coord_assignments_in_flight", "gauge",
                    "Assignments awaiting an answer.", in_flight);
    metrics_family(m, "sluice_coord_assignments_total", "counter",
                   "Answers to assignments by outcome.");
    for (int i = 0; i < PLACER_OUTCOME_COUNT_; i++) {
        const char *labels[] = {"outcome", placer_outcome_name((enum placer_outcome)i), NULL};
        metrics_sample_u64(m, "sluice_coord_assignments_total", ps.outcomes_total[i], labels);
    }
    metrics_family(m, "sluice_coord_refusals_total", "counter", "Node refusals by reason.");
    for (int r = 1; r < WIRE_REASON_COUNT_; r++) {
        const char *labels[] = {"reason", reason_name((enum wire_reason)r), NULL};
        metrics_sample_u64(m, "sluice_coord_refusals_total", ps.refused_by_reason_total[r],
                           labels);
    }
    metrics_one_u64(m, "sluice_coord_late_answers_total", "counter",
                    "Answers that came after the segment's placement was settled otherwise "
                    "(a node report, a timeout); ignored.",
                    ps.late_answers_total);
    metrics_one_u64(m, "sluice_coord_backoffs_total", "counter",
                    "Rounds in which every node refused a segment.", ps.backoffs_total);
    metrics_one_u64(m, "sluice_coord_capacity_wakes_total", "counter",
                    "Back-offs ended early because a node came UP or accepted a segment.",
                    ps.capacity_wakes_total);
    metrics_one_u64(m, "sluice_coord_reports_total", "counter", "Node reports received.",
                    c->reports);
    metrics_one_u64(m, "sluice_coord_registered_total", "counter", "Segments registered.",
                    c->registered);
    metrics_one_u64(m, "sluice_coord_claims_total", "counter", "Pull-mode claims served.",
                    c->claims);
    metrics_one_u64(m, "sluice_coord_node_id_conflicts_total", "counter",
                    "Reports refused (409) because a live node at another address has their "
                    "node id.",
                    c->id_clashes);
    metrics_one_u64(m, "sluice_coord_catalog_errors_total", "counter", "Failed catalog writes.",
                    c->catalog_errors);
    metrics_one_u64(m, "sluice_http_connections_live", "gauge", "Open HTTP connections.",
                    hs.connections_live);
    http_reply(req, 200, "text/plain; version=0.0.4", metrics_buf_data(m), metrics_buf_len(m));
    metrics_buf_free(m);
}

/* ---- start-up ------------------------------------------------------------ */

static int coord_load_seg(const struct catalog_segment *cs, void *arg)
{
    struct coord *c = arg;
    enum coord_seg_state st = strcmp(cs->state, "LOADED") == 0    ? COORD_LOADED
                              : strcmp(cs->state, "INVALID") == 0 ? COORD_INVALID
                                                                  : COORD_PENDING;

    coord_seg_new(c, cs->id, cs->uri, cs->row_count, cs->avg_row_size, cs->replication, st)
        ->digest = cs->digest;
    return 0;
}

static int coord_load_node(const struct catalog_node *cn, void *arg)
{
    struct coord *c = arg;
    struct coord_node *n = xcalloc(1, sizeof(*n));

    snprintf(n->id, sizeof(n->id), "%s", cn->id);
    snprintf(n->addr, sizeof(n->addr), "%s", cn->addr);
    /* Until it reports again, a node is as good as its last state says,
     * and it has node_timeout to report before it is DOWN. */
    snprintf(n->state, sizeof(n->state), "%s", cn->state);
    n->admin_drained = strcmp(cn->drained_by, COORD_ADMIN_DRAIN) == 0;
    n->self_draining = strcmp(cn->drained_by, COORD_SELF_DRAIN) == 0;
    /* A pull-mode node is sent nothing, also before its first report. */
    n->claim = cn->claim;
    n->last_seen_mono_ms = clock_mono_ns() / 1000000;
    n->last_seen_ms = (uint64_t)cn->last_seen_ms;
    n->held = strmap_new();
    n->client = http_client_new(c->base, n->addr, (unsigned)c->cfg.assign_timeout_ms, c->token);
    strmap_put(c->nodes, n->id, n);
    placer_node_set(c->placer, n->id, coord_placer_state(n));
    return 0;
}

static int coord_load_assignment(const struct catalog_assignment *a, void *arg)
{
    struct coord *c = arg;
    struct coord_seg *s = strmap_get(c->segs, a->segment_id);
    struct coord_node *n = strmap_get(c->nodes, a->node_id);
    struct coord_holder *h;

    if (s == NULL || n == NULL ||
        (strcmp(a->state, "LOADING") != 0 && strcmp(a->state, "LOADED") != 0))
        return 0;
    if (s->n_holders == s->cap_holders) {
        s->cap_holders = s->cap_holders * 2 + 2;
        s->holders = xreallocarray(s->holders, s->cap_holders, sizeof(*s->holders));
    }
    h = &s->holders[s->n_holders++];
    snprintf(h->node, sizeof(h->node), "%s", n->id);
    h->state = strcmp(a->state, "LOADED") == 0 ? WIRE_SEG_LOADED : WIRE_SEG_LOADING;
    /* Give the node a full report period before its copy counts as lost. */
    h->since_ms = coord_now_ms();
    strmap_put(n->held, s->id, s);
    n->rows += s->row_count;
    return 0;
}

static int coord_want_pending(const char *key, void *value, void *arg)
{
    coord_seg_update(arg, value);
    return 0;
}

static const struct placer_ops coord_placer_ops = {
    .assign = coord_op_assign,
    .on_accepted = coord_op_accepted,
    .on_refused = coord_op_refused,
    .on_backoff = coord_op_backoff,
    .on_invalid = coord_op_invalid,
    .on_node_suspect = coord_op_suspect,
    .on_unexpected = coord_op_unexpected,
};

struct coord *coord_new(struct event_base *base, const struct coord_config *cfg, char *err,
                        size_t err_len)
{
    struct coord *c = xcalloc(1, sizeof(*c));
    struct catalog_options copts = {.events_keep = cfg->events_keep};
    struct placer_config pcfg = {.max_in_flight_per_node = cfg->max_in_flight_per_node,
                                 .invalid_quorum = COORD_INVALID_QUORUM};
    struct timeval tick = {0, COORD_MEMBERSHIP_MS * 1000};
    int r;

    c->base = base;
    c->cfg = *cfg;
    c->token = cfg->token != NULL && cfg->token[0] != '\0' ? xstrdup(cfg->token) : NULL;
    c->cfg.token = c->token;
    c->cfg.nodes = NULL;
    c->cfg.listen = NULL;
    c->db_path = xstrdup(cfg->db_path);
    c->cfg.db_path = c->db_path;
    c->started_mono_ns = clock_mono_ns();
    c->rng = (uint32_t)(clock_mono_ns() | 1);
    c->segs = strmap_new();
    c->nodes = strmap_new();
    c->tick_ev = event_new(base, -1, 0, coord_tick_cb, c);
    c->commit_ev = event_new(base, -1, 0, coord_commit_cb, c);
    c->membership_ev = event_new(base, -1, EV_PERSIST, coord_membership_cb, c);
    c->flush_ev = event_new(base, -1, 0, coord_flush_cb, c);
    c->placer = placer_new(&pcfg, &coord_placer_ops, c);
    c->rowcount = cfg->placement != NULL && strcmp(cfg->placement, "rowcount") == 0;
    c->cfg.placement = NULL;
    c->cfg.node_rows = NULL;
    if (cfg->node_rows != NULL && cfg->node_rows[0] != '\0') {
        char *list = xstrdup(cfg->node_rows), *save = NULL;

        c->node_rows = strmap_new();
        for (char *tok = strtok_r(list, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
            char *eq = strchr(tok, '='), *end = NULL;
            unsigned long long rows = eq != NULL ? strtoull(eq + 1, &end, 10) : 0;
            if (eq == NULL || end == eq + 1 || *end != '\0' || rows == 0) {
                snprintf(err, err_len, "--node-rows: \"%s\" is not id=rows", tok);
                free(list);
                goto fail;
            }
            *eq = '\0';
            strmap_put(c->node_rows, tok, (void *)(uintptr_t)rows);
        }
        free(list);
    }
    if (c->rowcount)
        log_info("placement", "mode=rowcount bytes_per_row=%" PRIu64
                 " note=\"the central row-count scheduler, for comparison only\"",
                 cfg->bytes_per_row);
    r = catalog_open_with(cfg->db_path, &copts, &c->cat, err, err_len);
    if (r < 0)
        goto fail;
    /*
     * Rebuild the in-memory view, then ask the placer for what is missing.
     * Any read that fails refuses the start: a partial view would tell the
     * nodes to drop the good copies of every segment it failed to load.
     */
    if ((r = catalog_foreach_segment(c->cat, NULL, coord_load_seg, c)) < 0 ||
        (r = catalog_foreach_node(c->cat, coord_load_node, c)) < 0 ||
        (r = catalog_foreach_assignment(c->cat, NULL, NULL, coord_load_assignment, c)) < 0) {
        snprintf(err, err_len, "catalog %s: %s (%s); refusing to start on a partial catalog",
                 cfg->db_path, catalog_errmsg(c->cat), strerror(-r));
        goto fail;
    }
    strmap_foreach(c->segs, coord_want_pending, c);
    if ((r = coord_flush(c)) < 0) {
        snprintf(err, err_len, "catalog %s: %s (%s)", cfg->db_path, catalog_errmsg(c->cat),
                 strerror(-r));
        goto fail;
    }
    log_info("catalog_loaded", "db=%s segments=%zu nodes=%zu loaded=%" PRIu64
             " pending=%" PRIu64 " invalid=%" PRIu64,
             cfg->db_path, strmap_count(c->segs), strmap_count(c->nodes),
             c->counts[COORD_LOADED], c->counts[COORD_PENDING], c->counts[COORD_INVALID]);
    c->http = http_server_new(base, &cfg->limits);
    if (c->token != NULL)
        http_server_set_token(c->http, c->token);
    r = http_server_bind(c->http, cfg->listen, c->bound, sizeof(c->bound));
    if (r < 0) {
        snprintf(err, err_len, "--listen %s: %s", cfg->listen, strerror(-r));
        goto fail;
    }
    http_server_route(c->http, HTTP_POST, "/v1/report", false, coord_report_cb, c);
    http_server_route(c->http, HTTP_POST, "/v1/claim", false, coord_claim_cb, c);
    http_server_route(c->http, HTTP_GET | HTTP_POST, "/v1/segments", false, coord_segments_cb, c);
    http_server_route(c->http, HTTP_GET | HTTP_POST, "/v1/segments/", true, coord_segment_cb, c);
    http_server_route(c->http, HTTP_GET, "/v1/nodes", false, coord_nodes_cb, c);
    http_server_route(c->http, HTTP_POST, "/v1/nodes/", true, coord_node_action_cb, c);
    http_server_route(c->http, HTTP_GET, "/v1/events", false, coord_events_cb, c);
    http_server_route(c->http, HTTP_GET, "/v1/status", false, coord_status_cb, c);
    http_server_route_public(c->http, HTTP_GET, "/metrics", false, coord_metrics_cb, c);
    http_server_route_public(c->http, HTTP_GET, "/healthz", false, coord_healthz_cb, c);
    event_add(c->membership_ev, &tick);
    coord_kick(c);
    return c;
fail:
    coord_free(c);
    return NULL;
}

const char *coord_bound(const struct coord *c)
{
    return c->bound;
}

static int coord_free_seg(const char *key, void *value, void *arg)
{
    struct coord_seg *s = value;

    free(s->uri);
    free(s->holders);
    free(s->invalid_nodes);
    free(s);
    return 0;
}

static int coord_free_node(const char *key, void *value, void *arg)
{
    struct coord_node *n = value;

    http_client_free(n->client);
    strmap_free(n->held);
    free(n->pending);
    free(n);
    return 0;
}

void coord_free(struct coord *c)
{
    if (c == NULL)
        return;
    http_server_free(c->http);
    /* Clients cancel their requests; the placer must not see those answers. */
    placer_free(c->placer);
    c->placer = NULL;
    if (c->nodes != NULL)
        strmap_foreach(c->nodes, coord_free_node, NULL);
    if (c->cat != NULL)
        coord_flush(c);
    catalog_close(c->cat);
    if (c->segs != NULL)
        strmap_foreach(c->segs, coord_free_seg, NULL);
    strmap_free(c->segs);
    strmap_free(c->nodes);
    strmap_free(c->node_rows);
    free(c->rc_queue);
    if (c->tick_ev != NULL)
        event_free(c->tick_ev);
    if (c->commit_ev != NULL)
        event_free(c->commit_ev);
    if (c->membership_ev != NULL)
        event_free(c->membership_ev);
    if (c->flush_ev != NULL)
        event_free(c->flush_ev);
    free(c->token);
    free(c->db_path);
    free(c);
}
