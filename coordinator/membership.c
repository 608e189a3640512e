/*
 * membership: the nodes the coordinator knows, their address, client and
 * state (UP, SUSPECT, DOWN, DRAINING). coord_node_set_state() is the one
 * setter of a node's state: it logs "old -> new (why)", writes one
 * node_state event and the catalog row, and tells the placer. What answers
 * to assignments say about a node is noted (coord_node_note()) and applied
 * through that setter from the loop, never from inside the placer's call
 * that delivered the answer. Timeouts make a silent node DOWN and place its copies elsewhere; drains are recorded by
 * who asked for them (the operator or the node).
 *
 * Expected load: a few nodes, a timeout scan every COORD_MEMBERSHIP_MS.
 */
#include "coord_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
#include "reason.h"
#include "sluice_config.h"
#include "strmap.h"
#include "wire.h"
#include "xmalloc.h"

/* ---- policy: pure, see membership.h ----------------------------------- */

static const char *const membership_state_names[MEMBERSHIP_STATE_COUNT_] = {
    "UP", "SUSPECT", "DOWN", "DRAINING"};

const char *membership_state_name(enum membership_state s)
{
    return (unsigned)s < MEMBERSHIP_STATE_COUNT_ ? membership_state_names[s] : "?";
}

int membership_state_parse(const char *name, enum membership_state *ret)
{
    for (int i = 0; name != NULL && i < MEMBERSHIP_STATE_COUNT_; i++) {
        if (strcmp(name, membership_state_names[i]) == 0) {
            *ret = (enum membership_state)i;
            return 0;
        }
    }
    return -EINVAL;
}

bool membership_is_live(enum membership_state s)
{
    return s == MEMBERSHIP_UP || s == MEMBERSHIP_DRAINING;
}

enum placer_node_state membership_placer_state(enum membership_state s, bool claim)
{
    if (s == MEMBERSHIP_DOWN)
        return PLACER_NODE_DOWN;
    if (s == MEMBERSHIP_SUSPECT)
        return PLACER_NODE_SUSPECT;
    /* Pull-mode nodes ask for their work; the placer sends them nothing. */
    if (s == MEMBERSHIP_DRAINING || claim)
        return PLACER_NODE_DRAINING;
    return PLACER_NODE_UP;
}

enum membership_state membership_on_report(bool admin_drained, bool self_draining)
{
    return admin_drained || self_draining ? MEMBERSHIP_DRAINING : MEMBERSHIP_UP;
}

enum membership_state membership_on_admin(enum membership_state cur, bool drain,
                                          bool self_draining)
{
    if (drain && cur == MEMBERSHIP_UP)
        return MEMBERSHIP_DRAINING;
    if (!drain && cur == MEMBERSHIP_DRAINING && !self_draining)
        return MEMBERSHIP_UP;
    return cur;
}

enum membership_state membership_on_no_answer(enum membership_state cur)
{
    return cur == MEMBERSHIP_UP ? MEMBERSHIP_SUSPECT : cur;
}

enum membership_state membership_on_answers(enum membership_state cur, bool no_answer,
                                            bool said_draining)
{
    if (cur != MEMBERSHIP_UP)
        return cur;
    if (no_answer)
        return membership_on_no_answer(cur);
    return said_draining ? MEMBERSHIP_DRAINING : cur;
}

bool membership_timed_out(enum membership_state cur, uint64_t now_ms, uint64_t last_seen_ms,
                          uint64_t timeout_ms)
{
    return cur != MEMBERSHIP_DOWN && now_ms > last_seen_ms && now_ms - last_seen_ms > timeout_ms;
}

/* ---- nodes --------------------------------------------------------------- */

enum placer_node_state coord_placer_state(const struct coord_node *n)
{
    return membership_placer_state(n->state, n->claim);
}

/*
 * Who drains a node, as the catalog keeps it (nodes.drained_by): after a
 * restart an operator's drain must still hold, and a node's own drain must
 * end when the node says so.
 */
#define COORD_ADMIN_DRAIN "operator"
#define COORD_SELF_DRAIN  "node"

const char *coord_drain_tag(const struct coord_node *n)
{
    if (n->admin_drained)
        return COORD_ADMIN_DRAIN;
    return n->state == MEMBERSHIP_DRAINING ? COORD_SELF_DRAIN : "";
}

/*
 * Sets a node's state, in the catalog too, and the placer's view of it. With
 * the same state, only re-syncs the placer's view, which also depends on
 * the node's pull mode (coord_placer_state()).
 */
void coord_node_set_state(struct coord *c, struct coord_node *n, enum membership_state state,
                          const char *why)
{
    enum membership_state old = n->state;

    if (old == state) {
        enum placer_node_state want = coord_placer_state(n);
        struct placer_node_info pi;

        if (placer_node_lookup(c->placer, n->id, &pi) < 0 || pi.state != want) {
            placer_node_set(c->placer, n->id, want);
            coord_kick(c); /* what waited for this node goes now */
        }
        return;
    }
    /* First apply the new state, then act on it (bgpd's change_state()). */
    n->state = state;
    /* The one record of the transition: the catalog's setter writes none. */
    log_info("node_state", "node=%s transition=\"%s -> %s (%s)\"", n->id,
             membership_state_name(old), membership_state_name(state), why);
    coord_event(c, "node_state", NULL, n->id, WIRE_REASON_NONE, 0, 0, "%s -> %s (%s)",
                membership_state_name(old), membership_state_name(state), why);
    coord_txn(c);
    coord_check(c, catalog_set_node_state(c->cat, n->id, membership_state_name(state),
                                          coord_drain_tag(n)),
                "node_state");
    /* A node that comes back from DOWN may be a new process: learn its window again. */
    if (state == MEMBERSHIP_DOWN)
        window_init(&n->win);
    /* Its LOADED copies count again: it and the other holders are judged anew (reconcile.h). */
    if (!membership_is_live(old) && membership_is_live(state))
        reconcile_node_back(c, n);
    placer_node_set(c->placer, n->id, coord_placer_state(n));
    coord_window_apply(c, n);
    coord_kick(c);
}

/*
 * Notes what an answer to an assignment said about node_id (COORD_NOTE_*),
 * to be applied by coord_node_notes_apply() from the loop: the answer is
 * delivered inside the placer's own call (placer_on_answer()), or inside
 * the node's HTTP client callback, and the setter calls back into both
 * (tmux's server_client_unref() rule: never act on an object inside its
 * own callback). Notes on one node until then make one transition. A
 * report clears them: the node answers, and says itself whether it drains.
 */
void coord_node_note(struct coord *c, const char *node_id, unsigned note)
{
    struct coord_node *n = strmap_get(c->nodes, node_id);
    struct timeval now = {0, 0};

    if (n == NULL || note == 0)
        return;
    if (n->notes == 0) {
        if (c->n_noted == c->cap_noted) {
            c->cap_noted = c->cap_noted * 2 + 4;
            c->noted = xreallocarray(c->noted, c->cap_noted, sizeof(*c->noted));
        }
        snprintf(c->noted[c->n_noted++], sizeof(c->noted[0]), "%s", n->id);
    }
    n->notes |= note;
    event_add(c->notes_ev, &now);
}

/*
 * Applies the notes through the one setter. Called from the loop (the tick,
 * before the placer fires anything, and notes_ev), outside any callback of
 * the placer or a node's client.
 */
void coord_node_notes_apply(struct coord *c)
{
    /* Taken whole: what the setter causes is noted afresh, for the next pass. */
    char(*ids)[WIRE_ID_MAX + 1] = c->noted;
    size_t n_ids = c->n_noted;

    c->noted = NULL;
    c->n_noted = c->cap_noted = 0;
    for (size_t i = 0; i < n_ids; i++) {
        struct coord_node *n = strmap_get(c->nodes, ids[i]);
        enum membership_state st;
        unsigned notes;

        if (n == NULL || n->notes == 0)
            continue; /* forgotten, or a report came first */
        notes = n->notes;
        n->notes = 0;
        st = membership_on_answers(n->state, notes & COORD_NOTE_NO_ANSWER,
                                   notes & COORD_NOTE_DRAINING);
        if (st == n->state)
            continue;
        if (st == MEMBERSHIP_DRAINING)
            n->self_draining = true; /* its next report says whether it still is */
        coord_node_set_state(c, n, st,
                             st == MEMBERSHIP_SUSPECT ? "an assignment got no answer"
                                                      : "an assignment was refused: DRAINING");
    }
    free(ids);
}

void coord_notes_cb(evutil_socket_t fd, short what, void *arg)
{
    coord_node_notes_apply(arg);
}

int coord_collect_held(const char *key, void *value, void *arg)
{
    struct coord_seg ***list = arg;

    *(*list)++ = value;
    return 0;
}

/* A DOWN node holds nothing for us: its segments are placed elsewhere. */
static void coord_node_lost(struct coord *c, struct coord_node *n)
{
    size_t count = keymap_count(n->held);
    struct coord_seg **segs = xcalloc(count + 1, sizeof(*segs)), **p = segs;

    keymap_foreach(n->held, coord_collect_held, &p);
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
void coord_node_save(struct coord *c, const struct coord_node *n)
{
    struct catalog_node cn;

    memset(&cn, 0, sizeof(cn));
    snprintf(cn.id, sizeof(cn.id), "%s", n->id);
    snprintf(cn.addr, sizeof(cn.addr), "%s", n->addr);
    snprintf(cn.state, sizeof(cn.state), "%s", membership_state_name(n->state));
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
bool coord_id_clash(const struct coord *c, const struct coord_node *n, const char *addr,
                    char *msg, size_t len)
{
    uint64_t now = clock_mono_ns() / 1000000, silent;

    if (addr == NULL || n->addr[0] == '\0' || strcmp(n->addr, addr) == 0 ||
        n->state == MEMBERSHIP_DOWN)
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
bool coord_addr_usable(struct coord *c, const char *addr)
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
struct coord_node *coord_node_get(struct coord *c, const char *id, const char *addr)
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
        n->state = MEMBERSHIP_UP;
        n->held = keymap_new(offsetof(struct coord_seg, id));
        window_init(&n->win);
        n->limit = SIZE_MAX; /* the placer's default until the window is applied */
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
    coord_window_apply(c, n);
    /* New capacity: what was registered before any node could take it goes now. */
    coord_kick(c);
    return n;
}

static int coord_check_timeout(const char *key, void *value, void *arg)
{
    struct coord_node *n = value;
    struct coord *c = arg;
    uint64_t now = clock_mono_ns() / 1000000;

    if (membership_timed_out(n->state, now, n->last_seen_mono_ms, c->cfg.node_timeout_ms)) {
        char why[96];
        snprintf(why, sizeof(why), "no report for %" PRIu64 " ms", now - n->last_seen_mono_ms);
        coord_node_set_state(c, n, MEMBERSHIP_DOWN, why);
        coord_node_lost(c, n);
    }
    return 0;
}

bool coord_lead_check(struct coord *c, const char *why)
{
    int64_t now = (int64_t)(clock_mono_ns() / 1000000);

    if (!c->leading || c->lost_lead)
        return false;
    if (now - c->lead_checked_ms < COORD_LEASE_CHECK_MS)
        return true;
    /* Inside a transaction catalog_leading() makes no round trip: commit the group first. */
    if (c->txn_open && coord_flush(c) < 0 && c->lost_lead)
        return false;
    c->lead_checked_ms = now;
    if (!catalog_leading(c->cat)) {
        coord_step_down(c, why);
        return false;
    }
    return true;
}

void coord_membership_cb(evutil_socket_t fd, short what, void *arg)
{
    struct coord *c = arg;
    int64_t now = (int64_t)(clock_mono_ns() / 1000000);

    strmap_foreach(c->nodes, coord_check_timeout, c);
    /* Once a second: does this coordinator still hold the lead (PostgreSQL)? It says so. */
    if (now - c->lead_checked_ms >= COORD_LEASE_CHECK_MS) {
        if (!coord_lead_check(c, "the catalog connection that holds the lead failed"))
            return;
        if (coord_txn(c) == 0)
            coord_check(c, catalog_heartbeat(c->cat, c->advertise, true, c->lead_epoch,
                                             clock_wall_ms()),
                        "heartbeat");
    }
}

int coord_load_node(const struct catalog_node *cn, void *arg)
{
    struct coord *c = arg;
    struct coord_node *n = xcalloc(1, sizeof(*n));

    snprintf(n->id, sizeof(n->id), "%s", cn->id);
    snprintf(n->addr, sizeof(n->addr), "%s", cn->addr);
    /* Until it reports again, a node is as good as its last state says,
     * and it has node_timeout to report before it is DOWN. */
    if (membership_state_parse(cn->state, &n->state) < 0) {
        /* Not one the coordinator writes: as before, a node that answers. */
        log_warn("node_state_unknown", "node=%s state=%s", log_q(cn->id), log_q(cn->state));
        n->state = MEMBERSHIP_UP;
    }
    n->admin_drained = strcmp(cn->drained_by, COORD_ADMIN_DRAIN) == 0;
    n->self_draining = strcmp(cn->drained_by, COORD_SELF_DRAIN) == 0;
    /* A pull-mode node is sent nothing, also before its first report. */
    n->claim = cn->claim;
    n->last_seen_mono_ms = clock_mono_ns() / 1000000;
    n->last_seen_ms = (uint64_t)cn->last_seen_ms;
    n->held = keymap_new(offsetof(struct coord_seg, id));
    window_init(&n->win);
    n->limit = SIZE_MAX;
    n->client = http_client_new(c->base, n->addr, (unsigned)c->cfg.assign_timeout_ms, c->token);
    strmap_put(c->nodes, n->id, n);
    placer_node_set(c->placer, n->id, coord_placer_state(n));
    coord_window_apply(c, n);
    return 0;
}

int coord_free_node(const char *key, void *value, void *arg)
{
    struct coord_node *n = value;

    http_client_free(n->client);
    keymap_free(n->held);
    intake_done(&n->intake);
    reconcile_node_done(n);
    for (size_t i = 0; i < n->n_pending; i++)
        free(n->pending[i].id);
    free(n->pending);
    free(n);
    return 0;
}
