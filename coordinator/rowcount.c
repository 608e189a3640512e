/*
 * rowcount: the central row-count scheduler Sluice is compared against
 * (--placement rowcount). Each segment goes to the UP node with the fewest
 * rows relative to its capacity in rows (--node-rows, else its memory limit
 * divided by --bytes-per-row), one POST /v1/assign at a time, bounded per
 * node by --max-in-flight. It is a baseline for the benchmarks, not a
 * placement Sluice uses.
 *
 * Expected load: as the placer's; each pick walks every node.
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

/* ---- rowcount placement (the baseline) ------------------------------------ */

void coord_rc_enqueue(struct coord *c, struct coord_seg *s)
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

    if (n->state != MEMBERSHIP_UP || n->claim || cap == 0 || n->client == NULL ||
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
        /* Applied by membership from the loop, not inside the node's client callback. */
        if (status != -ECANCELED)
            coord_node_note(c, n->id, COORD_NOTE_NO_ANSWER);
    } else {
        coord_event(c, "refused", s->id, n->id, WIRE_REASON_NONE, status, 0,
                    "rowcount placement: HTTP %d", status);
    }
    free(a);
    coord_seg_update(c, s);
}

/* Fires what the per-node bounds allow, in queue order. */
void coord_rc_dispatch(struct coord *c)
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
