/*
 * reconcile: one node's report against the model. Each reported copy is
 * adopted, kept, dropped (stale, extra, of an unknown or INVALID segment)
 * or counted as a vote that the file is invalid; copies the model has on
 * the node that the report lacks are found lost (after a grace period).
 *
 * Expected load: one report per node per second, each listing every copy
 * the node holds (up to tens of thousands).
 */
#include "coord_int.h"
#include "reconcile.h"

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

static void coord_drop(struct coord_drops *d, const char *id)
{
    if (d->n == d->cap) {
        d->cap = d->cap * 2 + 16;
        d->ids = xreallocarray(d->ids, d->cap, sizeof(*d->ids));
    }
    snprintf(d->ids[d->n++], sizeof(d->ids[0]), "%s", id);
}

int coord_find_missing(const char *key, void *value, void *arg)
{
    struct coord_missing *m = arg;
    struct coord_seg *s = value;
    struct coord_holder *h = coord_holder_find(s, m->node->id);

    if (h != NULL && reconcile_is_lost(strmap_get(m->reported, key) != NULL, coord_now_ms(),
                                       h->since_ms, COORD_REPORT_GRACE_MS))
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
    *(size_t *)arg += ((const struct coord_node *)value)->state != MEMBERSHIP_DOWN;
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
    return reconcile_invalid_quorum(alive, COORD_INVALID_QUORUM);
}

/*
 * A reported copy is another file than the registered segment: its row
 * count differs, or both digests are known and differ (0 is unknown: a
 * LOADING copy, or a node or registration from before digests).
 */
static bool coord_copy_is_stale(const struct coord_seg *s, const struct wire_segment_status *r)
{
    return reconcile_copy_is_stale(s->row_count, s->digest, r->row_count, r->digest);
}

/* Reconciles one reported segment; may add it to the drop list. */
void coord_reconcile(struct coord *c, struct coord_node *n,
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
            if (reconcile_adopt(s->n_holders, s->replication, r->state == WIRE_SEG_LOADED,
                                coord_live_loaded(c, s, NULL))) {
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
        if (reconcile_surplus(s->n_holders, s->replication, coord_live_loaded(c, s, n->id))) {
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

/* ---- policy: pure, see reconcile.h --------------------------------------- */

bool reconcile_copy_is_stale(uint64_t reg_rows, uint64_t reg_digest, uint64_t rep_rows,
                             uint64_t rep_digest)
{
    return (rep_rows != 0 && rep_rows != reg_rows) ||
           (rep_digest != 0 && reg_digest != 0 && rep_digest != reg_digest);
}

bool reconcile_adopt(unsigned n_holders, unsigned replication, bool reported_loaded,
                     unsigned live_loaded)
{
    return n_holders < replication || (reported_loaded && live_loaded < replication);
}

bool reconcile_surplus(unsigned n_holders, unsigned replication, unsigned live_loaded_elsewhere)
{
    return n_holders > replication && live_loaded_elsewhere >= replication;
}

bool reconcile_is_lost(bool reported, uint64_t now_ms, uint64_t since_ms, uint64_t grace_ms)
{
    return !reported && now_ms - since_ms > grace_ms;
}

unsigned reconcile_invalid_quorum(size_t alive, unsigned quorum)
{
    if (alive == 0)
        alive = 1;
    return alive < quorum ? (unsigned)alive : quorum;
}
