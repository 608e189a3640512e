/*
 * model: the coordinator's segments and the nodes holding copies of them,
 * in memory so that every request is answered without a query, and written
 * through to the catalog: placement bookkeeping in a group transaction that
 * commits COORD_COMMIT_DELAY_MS later (or at once with coord_flush(), before
 * an answer that must be durable), events in the same transaction. It also
 * applies the plan reconcile_report() made of a node's report.
 *
 * Expected load: one call per assignment answer, per reported change and
 * per registered segment: thousands a second, each O(replication).
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

const char *const coord_seg_state_names[3] = {"PENDING", "LOADED", "INVALID"};

/* ---- catalog write-through ---------------------------------------------- */

/*
 * Commits the group transaction now (before a synchronous acknowledgement).
 * 0, also when none is open, or the negative errno of catalog_commit(): the
 * whole group was then rolled back and must not be acknowledged.
 */
/* Writes one storm interval's count into its row (storm_drain()'s writer). */
static int coord_storm_write(uint64_t row, uint64_t count, int64_t last_wall_ms, void *arg)
{
    struct coord *c = arg;

    coord_check(c, catalog_fold_event(c->cat, row, count, last_wall_ms), "fold event");
    return 0;
}

int coord_flush(struct coord *c)
{
    int r;

    if (!c->txn_open)
        return 0;
    /* Counts folded into storm rows since the last commit go with this one. */
    storm_drain(c->storm, coord_now_ms(), coord_storm_write, c);
    event_del(c->commit_ev);
    c->txn_open = false;
    /*
     * A leader commits only on the connection that holds the lead: one
     * re-opened since (the lock went with the old session) may already
     * serve another leader. Nothing in this group was acknowledged yet.
     */
    if (c->lost_lead || (c->leading && !catalog_leading(c->cat))) {
        catalog_rollback(c->cat);
        storm_reset(c->storm);
        c->catalog_errors++;
        coord_step_down(c, "commit: the catalog connection that held the lead is gone");
        return -ENOLCK;
    }
    r = catalog_commit(c->cat);
    if (r < 0) {
        c->catalog_errors++;
        log_error("catalog_commit_failed", "error=%s", log_q(catalog_errmsg(c->cat)));
        return r;
    }
    c->last_commit_mono_ms = coord_now_ms();
    return r;
}

void coord_commit_cb(evutil_socket_t fd, short what, void *arg)
{
    coord_flush(arg);
}

/* Throws the group transaction away (nothing in it may be kept). */
void coord_rollback(struct coord *c)
{
    if (!c->txn_open)
        return;
    event_del(c->commit_ev);
    c->txn_open = false;
    catalog_rollback(c->cat);
    storm_reset(c->storm); /* their rows are gone */
}

/*
 * Opens the group transaction if needed; it commits a few ms later. 0, or
 * the negative errno of catalog_begin() (writes then go out one by one).
 */
int coord_txn(struct coord *c)
{
    struct timeval tv = {0, COORD_COMMIT_DELAY_MS * 1000};
    int r;

    if (c->txn_open)
        return 0;
    r = catalog_begin_group(c->cat);
    if (r < 0) {
        c->catalog_errors++;
        log_error("catalog_begin_failed", "error=%s", log_q(catalog_errmsg(c->cat)));
        return r;
    }
    c->txn_open = true;
    event_add(c->commit_ev, &tv);
    return 0;
}

void coord_check(struct coord *c, int r, const char *what)
{
    if (r < 0) {
        c->catalog_errors++;
        log_error("catalog_write_failed", "what=%s error=%s", what,
                  log_q(catalog_errmsg(c->cat)));
    }
}

static void coord_event_v(struct coord *c, bool storm, const char *kind, const char *seg,
                          const char *node, enum wire_reason reason, int status, uint32_t retry_ms,
                          const char *fmt, va_list ap)
{
    struct catalog_event e;
    uint64_t now = coord_now_ms(), row = 0;
    int64_t wall = (int64_t)clock_wall_ms();
    int r;

    if (storm && storm_fold(c->storm, kind, node, (int)reason, now, wall, &row)) {
        coord_txn(c); /* the count goes out with the next commit */
        return;
    }
    memset(&e, 0, sizeof(e));
    e.ts_ms = wall;
    snprintf(e.segment_id, sizeof(e.segment_id), "%s", seg != NULL ? seg : "");
    snprintf(e.node_id, sizeof(e.node_id), "%s", node != NULL ? node : "");
    snprintf(e.kind, sizeof(e.kind), "%s", kind);
    if (reason != WIRE_REASON_NONE)
        snprintf(e.reason, sizeof(e.reason), "%s", reason_name(reason));
    e.http_status = status;
    e.retry_after_ms = retry_ms;
    if (fmt != NULL)
        vsnprintf(e.detail, sizeof(e.detail), fmt, ap);
    coord_txn(c);
    r = catalog_add_event_id(c->cat, &e, &row);
    coord_check(c, r, "event");
    if (storm && r == 0)
        storm_open(c->storm, kind, node, (int)reason, now, row);
}

void coord_event(struct coord *c, const char *kind, const char *seg, const char *node,
                 enum wire_reason reason, int status, uint32_t retry_ms, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    coord_event_v(c, false, kind, seg, node, reason, status, retry_ms, fmt, ap);
    va_end(ap);
}

void coord_storm_event(struct coord *c, const char *kind, const char *seg, const char *node,
                       enum wire_reason reason, int status, uint32_t retry_ms, const char *fmt,
                       ...)
{
    va_list ap;

    va_start(ap, fmt);
    coord_event_v(c, true, kind, seg, node, reason, status, retry_ms, fmt, ap);
    va_end(ap);
}

/* ---- segments and holders ----------------------------------------------- */

struct coord_holder *coord_holder_find(struct coord_seg *s, const char *node)
{
    for (unsigned i = 0; i < s->n_holders; i++)
        if (strcmp(s->holders[i].node, node) == 0)
            return &s->holders[i];
    return NULL;
}

unsigned coord_loaded_holders(const struct coord_seg *s, const char *except)
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
unsigned coord_live_loaded(const struct coord *c, const struct coord_seg *s,
                           const char *except)
{
    unsigned n = 0;

    for (unsigned i = 0; i < s->n_holders; i++) {
        const struct coord_node *nd;

        if (s->holders[i].state != WIRE_SEG_LOADED ||
            (except != NULL && strcmp(s->holders[i].node, except) == 0))
            continue;
        nd = strmap_get(c->nodes, s->holders[i].node);
        n += nd != NULL && (nd->state == MEMBERSHIP_UP || nd->state == MEMBERSHIP_DRAINING);
    }
    return n;
}

void coord_holder_add(struct coord *c, struct coord_seg *s, struct coord_node *n,
                      enum wire_segment_state st)
{
    struct coord_holder *h;

    if (s->n_holders == s->cap_holders) {
        /* First as many as the replication asks (10^6 segments of one copy: 144 MB less). */
        s->cap_holders =
            s->cap_holders == 0 && s->replication > 0 ? s->replication : s->cap_holders * 2 + 2;
        s->holders = xreallocarray(s->holders, s->cap_holders, sizeof(*s->holders));
    }
    h = &s->holders[s->n_holders++];
    h->node = n->id;
    h->state = st;
    h->since_ms = coord_now_ms();
    keymap_put(n->held, s);
    n->rows += s->row_count;
    n->loading += st == WIRE_SEG_LOADING;
    /* Judged at the node's next report; a copy too many may make another a surplus. */
    reconcile_mark(n, s->id);
    reconcile_touch(c, s, false);
    coord_placed(c, s);
    coord_txn(c);
    coord_check(c, catalog_put_assignment(c->cat, s->id, n->id, wire_segment_state_name(st),
                                          (int64_t)clock_wall_ms()),
                "assignment");
}

void coord_holder_remove(struct coord *c, struct coord_seg *s, const char *node)
{
    struct coord_node *n = strmap_get(c->nodes, node);

    for (unsigned i = 0; i < s->n_holders; i++) {
        if (strcmp(s->holders[i].node, node) == 0) {
            if (n != NULL && s->holders[i].state == WIRE_SEG_LOADING && n->loading > 0)
                n->loading--;
            s->holders[i] = s->holders[--s->n_holders];
            break;
        }
    }
    if (n != NULL && keymap_remove(n->held, s->id) != NULL)
        n->rows -= s->row_count;
    if (n != NULL)
        reconcile_mark(n, s->id); /* a copy the node still reports is judged again */
    coord_placed(c, s);
    coord_txn(c);
    coord_check(c, catalog_delete_assignment(c->cat, s->id, node), "unassign");
}

void coord_seg_move(struct coord *c, struct coord_seg *s, enum coord_seg_state st)
{
    if (s->state == st)
        return;
    c->counts[s->state]--;
    c->counts[st]++;
    ordset_remove(c->by_state[s->state], s->id);
    ordset_add(c->by_state[st], s);
    s->state = st;
}

void coord_set_seg_state(struct coord *c, struct coord_seg *s, enum coord_seg_state st)
{
    if (s->state == st)
        return;
    log_debug("segment_state", "id=%s transition=\"%s -> %s\"", s->id,
              coord_seg_state_names[s->state], coord_seg_state_names[st]);
    /* Copies of an INVALID segment are dropped, of a valid one kept: judged again. */
    if (s->state == COORD_INVALID || st == COORD_INVALID)
        reconcile_touch(c, s, true);
    coord_seg_move(c, s, st);
    coord_txn(c);
    coord_check(c, catalog_set_segment_state(c->cat, s->id, coord_seg_state_names[st],
                                             (int64_t)coord_wall_of(s->backoff_until_ms)),
                "segment_state");
}

/*
 * Recomputes a segment's state from its holders and tells the placement how
 * many more copies it wants (or that it wants none).
 */
void coord_seg_update(struct coord *c, struct coord_seg *s)
{
    if (s->state == COORD_INVALID)
        return;
    coord_set_seg_state(c, s,
                        coord_loaded_holders(s, NULL) >= s->replication ? COORD_LOADED
                                                                        : COORD_PENDING);
    c->placement->want(c, s);
}

struct coord_seg *coord_seg_alloc(const char *id, const char *uri)
{
    size_t id_len = strlen(id) + 1, uri_len = strlen(uri) + 1;
    /* From the id's offset, not sizeof: the struct's tail padding is where the id goes. */
    struct coord_seg *s = xcalloc(1, offsetof(struct coord_seg, id) + id_len + uri_len);

    memcpy(s->id, id, id_len);
    memcpy(s->id + id_len, uri, uri_len);
    s->table = WIRE_TABLE_DEFAULT;
    return s;
}

const char *coord_seg_reason(const struct coord_seg *s)
{
    return s->last_reason == 0 ? "" : reason_name((enum wire_reason)(s->last_reason - 1));
}

void coord_seg_set_reason(struct coord_seg *s, enum wire_reason r)
{
    /* Out of range: kept as the first name past the table, which reason_name() calls UNKNOWN. */
    s->last_reason = (uint8_t)((unsigned)r < WIRE_REASON_COUNT_ ? r + 1 : WIRE_REASON_COUNT_ + 1);
}

/* The faults of s, made on first need. */
static struct coord_seg_faults *coord_seg_faults(struct coord_seg *s)
{
    if (s->faults == NULL)
        s->faults = xcalloc(1, sizeof(*s->faults));
    return s->faults;
}

const char *coord_seg_refusal(const struct coord_seg *s)
{
    return s->faults != NULL ? s->faults->last_refusal : NULL;
}

void coord_seg_set_refusal(struct coord_seg *s, char *r)
{
    if (r == NULL && s->faults == NULL)
        return;
    free(coord_seg_faults(s)->last_refusal);
    s->faults->last_refusal = r;
}

unsigned coord_seg_invalid_nodes(const struct coord_seg *s, const char (**ret)[WIRE_ID_MAX + 1])
{
    *ret = s->faults != NULL ? (const char(*)[WIRE_ID_MAX + 1])s->faults->invalid_nodes : NULL;
    return s->faults != NULL ? s->faults->n_invalid : 0;
}

void coord_seg_invalid_add(struct coord_seg *s, const char *node)
{
    struct coord_seg_faults *f = coord_seg_faults(s);

    f->invalid_nodes = xreallocarray(f->invalid_nodes, f->n_invalid + 1, sizeof(*f->invalid_nodes));
    snprintf(f->invalid_nodes[f->n_invalid++], sizeof(f->invalid_nodes[0]), "%s", node);
}

void coord_seg_invalid_clear(struct coord_seg *s)
{
    if (s->faults != NULL)
        s->faults->n_invalid = 0;
}

void coord_seg_faults_free(struct coord_seg *s)
{
    if (s->faults == NULL)
        return;
    free(s->faults->invalid_nodes);
    free(s->faults->last_refusal);
    free(s->faults);
    s->faults = NULL;
}

const char *coord_intern_table(struct coord *c, const char *t)
{
    char *v;

    if (t == NULL || t[0] == '\0' || strcmp(t, WIRE_TABLE_DEFAULT) == 0)
        return WIRE_TABLE_DEFAULT;
    if ((v = strmap_get(c->table_names, t)) == NULL) {
        v = xstrdup(t);
        strmap_put(c->table_names, v, v);
    }
    return v;
}

struct coord_seg *coord_seg_new(struct coord *c, const char *id, const char *uri,
                                uint64_t rows, uint64_t size, unsigned replication,
                                enum coord_seg_state st)
{
    struct coord_seg *s = coord_seg_alloc(id, uri);

    s->row_count = rows;
    s->avg_row_size = size;
    s->replication = replication == 0 ? 1 : replication;
    s->state = st;
    keymap_put(c->segs, s);
    ordset_add(c->by_state[st], s);
    c->counts[st]++;
    coord_placed(c, s);
    return s;
}

/* Takes a queued assignment of seg out of a node's next batch (its attempt is aborted). */
static int coord_unqueue(const char *key, void *value, void *arg)
{
    struct coord_node *n = value;
    size_t kept = 0;

    for (size_t i = 0; i < n->n_pending; i++) {
        if (strcmp(n->pending[i].id, arg) != 0)
            n->pending[kept++] = n->pending[i];
        else
            free(n->pending[i].id);
    }
    n->n_pending = kept;
    return 0;
}

void coord_seg_remove(struct coord *c, struct coord_seg *s)
{
    c->placement->forget(c, s);
    reconcile_touch(c, s, true); /* its copies are now of an unknown segment: dropped */
    strmap_foreach(c->nodes, coord_unqueue, s->id);
    for (unsigned i = 0; i < s->n_holders; i++) {
        struct coord_node *n = strmap_get(c->nodes, s->holders[i].node);

        if (n == NULL || keymap_remove(n->held, s->id) == NULL)
            continue;
        n->rows -= s->row_count;
        if (s->holders[i].state == WIRE_SEG_LOADING && n->loading > 0)
            n->loading--;
    }
    c->counts[s->state]--;
    ordset_remove(c->by_state[s->state], s->id);
    keymap_remove(c->segs, s->id);
    s->n_holders = 0;
    s->removed = true;
    coord_placed(c, s);
    if (c->n_removed == c->cap_removed) {
        c->cap_removed = c->cap_removed * 2 + 16;
        c->removed = xreallocarray(c->removed, c->cap_removed, sizeof(*c->removed));
    }
    c->removed[c->n_removed++] = s;
}

void coord_seg_set_table(struct coord *c, struct coord_seg *s, const char *table)
{
    s->table = coord_intern_table(c, table);
}

/* ---- loading from the catalog at start-up ---------------------------------- */

int coord_load_seg(const struct catalog_segment *cs, void *arg)
{
    struct coord *c = arg;
    enum coord_seg_state st = strcmp(cs->state, "LOADED") == 0    ? COORD_LOADED
                              : strcmp(cs->state, "INVALID") == 0 ? COORD_INVALID
                                                                  : COORD_PENDING;

    struct coord_seg *s =
        coord_seg_new(c, cs->id, cs->uri, cs->row_count, cs->avg_row_size, cs->replication, st);

    s->digest = cs->digest;
    coord_seg_set_table(c, s, cs->table);
    s->mem_request_bytes = cs->mem_request_bytes;
    s->mem_limit_bytes = cs->mem_limit_bytes;
    s->footprint_bytes = s->footprint_saved = cs->footprint_bytes;
    return 0;
}
int coord_load_assignment(const struct catalog_assignment *a, void *arg)
{
    struct coord *c = arg;
    struct coord_seg *s = keymap_get(c->segs, a->segment_id);
    struct coord_node *n = strmap_get(c->nodes, a->node_id);
    struct coord_holder *h;

    if (s == NULL || n == NULL ||
        (strcmp(a->state, "LOADING") != 0 && strcmp(a->state, "LOADED") != 0))
        return 0;
    if (s->n_holders == s->cap_holders) {
        /* First as many as the replication asks (10^6 segments of one copy: 144 MB less). */
        s->cap_holders =
            s->cap_holders == 0 && s->replication > 0 ? s->replication : s->cap_holders * 2 + 2;
        s->holders = xreallocarray(s->holders, s->cap_holders, sizeof(*s->holders));
    }
    h = &s->holders[s->n_holders++];
    h->node = n->id;
    h->state = strcmp(a->state, "LOADED") == 0 ? WIRE_SEG_LOADED : WIRE_SEG_LOADING;
    /* Give the node a full report period before its copy counts as lost. */
    h->since_ms = coord_now_ms();
    keymap_put(n->held, s);
    n->rows += s->row_count;
    n->loading += h->state == WIRE_SEG_LOADING;
    return 0;
}

int coord_free_seg(const char *key, void *value, void *arg)
{
    struct coord_seg *s = value;

    free(s->holders);
    coord_seg_faults_free(s);
    free(s);
    return 0;
}

/* ---- applying a node's report (planned by reconcile_report()) -------------- */

static void coord_drop(struct coord_drops *d, const char *id)
{
    if (d->n == d->cap) {
        d->cap = d->cap * 2 + 16;
        d->ids = xreallocarray(d->ids, d->cap, sizeof(*d->ids));
    }
    snprintf(d->ids[d->n++], sizeof(d->ids[0]), "%s", id);
}

/* Records that node found the segment's file bad (distinct nodes, up to the quorum). */
static void coord_invalid_vote(struct coord_seg *s, const char *node)
{
    const char(*votes)[WIRE_ID_MAX + 1];
    unsigned n = coord_seg_invalid_nodes(s, &votes);

    if (reconcile_votes_with(votes, n, node, COORD_INVALID_QUORUM) == n)
        return; /* voted already, or enough remembered to decide */
    coord_seg_invalid_add(s, node);
}

static void coord_drop_extra(struct coord *c, struct coord_seg *s, struct coord_node *n,
                             struct coord_drops *drops)
{
    coord_drop(drops, s->id);
    coord_event(c, "extra_copy", s->id, n->id, WIRE_REASON_NONE, 0, 0,
                "held by enough other nodes; dropped");
}

/* One action of the plan. */
static void coord_apply_one(struct coord *c, struct coord_node *n,
                            const struct reconcile_action *a, struct coord_drops *drops)
{
    const struct wire_segment_status *r = a->rep;
    struct coord_seg *s = a->seg;
    struct coord_holder *h;
    const char(*votes)[WIRE_ID_MAX + 1];

    if (a->revalidate && s->state == COORD_INVALID) {
        log_warn("segment_state", "id=%s transition=\"INVALID -> PENDING\" reason=\"LOADED on %s\"",
                 s->id, n->id);
        coord_set_seg_state(c, s, COORD_PENDING);
        coord_seg_invalid_clear(s);
        coord_event(c, "revalidated", s->id, n->id, WIRE_REASON_NONE, 0, 0,
                    "INVALID, but reported LOADED by the node");
    }
    switch (a->kind) {
    case RECONCILE_STALE:
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
        if (s->state != COORD_INVALID)
            c->placement->exclude(c, s, n->id, coord_now_ms() + COORD_STALE_RETRY_MS);
        return;
    case RECONCILE_DROP:
        coord_drop(drops, r->segment_id);
        return;
    case RECONCILE_EXTRA:
        coord_drop_extra(c, s, n, drops);
        return;
    case RECONCILE_ADOPT:
        if (coord_holder_find(s, n->id) == NULL) { /* not already, from the same report */
            coord_holder_add(c, s, n, r->state);
            coord_event(c, "adopted", s->id, n->id, WIRE_REASON_NONE, 0, 0,
                        "reported %s by the node", wire_segment_state_name(r->state));
        }
        break;
    case RECONCILE_UPDATE:
        h = coord_holder_find(s, n->id);
        if (h != NULL && h->state != r->state) {
            if (h->state == WIRE_SEG_LOADING && n->loading > 0)
                n->loading--;
            n->loading += r->state == WIRE_SEG_LOADING;
            h->state = r->state;
            h->since_ms = coord_now_ms();
            reconcile_touch(c, s, false); /* a LOADED copy more may make another a surplus */
            coord_placed(c, s);
            coord_txn(c);
            coord_check(c, catalog_put_assignment(c->cat, s->id, n->id,
                                                  wire_segment_state_name(r->state),
                                                  (int64_t)clock_wall_ms()),
                        "assignment");
            if (r->state == WIRE_SEG_LOADED)
                coord_event(c, "loaded", s->id, n->id, WIRE_REASON_NONE, 0, 0, NULL);
        }
        break;
    case RECONCILE_KEEP:
        break;
    case RECONCILE_UNHELD:
        coord_drop(drops, s->id); /* clears the node's entry */
        return;
    case RECONCILE_GONE:
        coord_drop(drops, s->id); /* clears the node's entry */
        if (coord_holder_find(s, n->id) == NULL)
            return;
        coord_holder_remove(c, s, n->id);
        coord_seg_set_reason(s, r->reason);
        coord_event(c, r->state == WIRE_SEG_FAILED ? "failed" : "dropped", s->id, n->id,
                    r->reason, 0, (uint32_t)c->cfg.drop_retry_ms, "%s", r->detail);
        if (a->clear_votes)
            coord_seg_invalid_clear(s);
        if (a->vote)
            coord_invalid_vote(s, n->id);
        if (a->invalid) {
            coord_set_seg_state(c, s, COORD_INVALID);
            c->placement->forget(c, s);
            coord_event(c, "invalid", s->id, NULL, WIRE_REASON_SEGMENT_INVALID, 0, 0,
                        "checksum failures on %u nodes", coord_seg_invalid_nodes(s, &votes));
            return;
        }
        coord_seg_update(c, s);
        c->placement->exclude(c, s, n->id, coord_now_ms() + c->cfg.drop_retry_ms);
        return;
    case RECONCILE_LOST:
        if (coord_holder_find(s, n->id) == NULL)
            return;
        coord_event(c, "lost", s->id, n->id, WIRE_REASON_NONE, 0, 0, "not in the node's report");
        coord_holder_remove(c, s, n->id);
        coord_seg_update(c, s);
        return;
    case RECONCILE_KIND_COUNT_:
        return;
    }
    /* KEEP, UPDATE, ADOPT: a LOADED copy's footprint is noted (tables.c). */
    if (r->state == WIRE_SEG_LOADED)
        coord_seg_observe(c, s, r);
    /* A surplus copy is dropped, then the segment's state follows. */
    if (a->surplus && coord_holder_find(s, n->id) != NULL) {
        coord_holder_remove(c, s, n->id);
        coord_drop_extra(c, s, n, drops);
    }
    coord_seg_update(c, s);
}

/*
 * Applies a plan reconcile_report() made for node n's report, in its order:
 * the model, the catalog (in the group transaction), events and the
 * placer follow; drops collects what the node is told to drop.
 */
void coord_report_apply(struct coord *c, struct coord_node *n, const struct reconcile_plan *plan,
                        struct coord_drops *drops)
{
    for (size_t i = 0; i < plan->n; i++)
        coord_apply_one(c, n, &plan->v[i], drops);
}
