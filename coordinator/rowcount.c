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

/* The baseline's own state (struct coord.rowcount). */
struct coord_rowcount {
    struct coord_seg **queue; /* ring of segments that want a copy */
    size_t head, n, cap;
    struct strmap *node_rows; /* id -> capacity in rows (as uintptr_t) */
};

static void coord_rc_enqueue(struct coord *c, struct coord_seg *s)
{
    struct coord_rowcount *rc = c->rowcount;

    if (rc->n == rc->cap) {
        size_t cap = rc->cap * 2 + 64;
        struct coord_seg **q = xcalloc(cap, sizeof(*q));
        for (size_t i = 0; i < rc->n; i++)
            q[i] = rc->queue[(rc->head + i) % rc->cap];
        free(rc->queue);
        rc->queue = q;
        rc->cap = cap;
        rc->head = 0;
    }
    rc->queue[(rc->head + rc->n++) % rc->cap] = s;
    s->rc_queued = true;
}

/* A node's capacity in rows: configured, else memory limit / bytes per row; 0 unknown. */
static uint64_t coord_rc_capacity(const struct coord *c, const struct coord_node *n)
{
    const struct strmap *node_rows = c->rowcount->node_rows;
    uintptr_t rows = node_rows != NULL ? (uintptr_t)strmap_get(node_rows, n->id) : 0;

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
        keymap_get(n->held, pk->s->id) != NULL)
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
static void coord_rc_dispatch(struct coord *c)
{
    struct coord_rowcount *rc = c->rowcount;
    size_t n = rc->n;

    while (n-- > 0 && rc->n > 0) {
        struct coord_seg *s = rc->queue[rc->head];
        struct coord_rc_pick pk = {c, s, NULL, 0};
        struct coord_rc_attempt *a;
        struct wire_assign_request m;
        uint8_t *body;
        size_t len;

        rc->head = (rc->head + 1) % rc->cap;
        rc->n--;
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
        coord_seg_assignment(s, &m);
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

/* ---- the placement interface (struct coord_placement) ---------------------- */

/* Parses --node-rows ("id=rows,..."), if given, and logs the mode. */
static int coord_rc_start(struct coord *c, const struct coord_config *cfg, char *err, size_t len)
{
    struct coord_rowcount *rc = xcalloc(1, sizeof(*rc));

    c->rowcount = rc;
    if (cfg->node_rows != NULL && cfg->node_rows[0] != '\0') {
        char *list = xstrdup(cfg->node_rows), *save = NULL;

        rc->node_rows = strmap_new();
        for (char *tok = strtok_r(list, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
            char *eq = strchr(tok, '='), *end = NULL;
            unsigned long long rows = eq != NULL ? strtoull(eq + 1, &end, 10) : 0;
            if (eq == NULL || end == eq + 1 || *end != '\0' || rows == 0) {
                snprintf(err, len, "--node-rows: \"%s\" is not id=rows", tok);
                free(list);
                return -EINVAL;
            }
            *eq = '\0';
            strmap_put(rc->node_rows, tok, (void *)(uintptr_t)rows);
        }
        free(list);
    }
    log_info("placement", "mode=rowcount bytes_per_row=%" PRIu64
             " note=\"the central row-count scheduler, for comparison only\"",
             cfg->bytes_per_row);
    return 0;
}

static void coord_rc_stop(struct coord *c)
{
    struct coord_rowcount *rc = c->rowcount;

    if (rc == NULL)
        return;
    strmap_free(rc->node_rows);
    free(rc->queue);
    free(rc);
    c->rowcount = NULL;
}

/* A segment that is missing copies (counting those in flight) joins the queue. */
static void coord_rc_want(struct coord *c, struct coord_seg *s)
{
    if (s->n_holders + s->rc_in_flight < s->replication && !s->rc_queued)
        coord_rc_enqueue(c, s);
    coord_kick(c);
}

/* The baseline keeps no exclusions: it only takes the segment out of its queue. */
static void coord_rc_forget(struct coord *c, struct coord_seg *s)
{
    struct coord_rowcount *rc = c->rowcount;
    size_t kept = 0;

    if (!s->rc_queued)
        return;
    for (size_t i = 0; i < rc->n; i++) {
        struct coord_seg *q = rc->queue[(rc->head + i) % rc->cap];

        if (q != s)
            rc->queue[(rc->head + kept++) % rc->cap] = q;
    }
    rc->n = kept;
    s->rc_queued = false;
}

static void coord_rc_exclude(struct coord *c, struct coord_seg *s, const char *node,
                             uint64_t until_ms)
{
}

/* Queued segments that no node could take are tried again every 200 ms. */
static uint64_t coord_rc_tick(struct coord *c, uint64_t now_ms)
{
    coord_rc_dispatch(c);
    return c->rowcount->n > 0 ? now_ms + 200 : UINT64_MAX;
}

static int coord_sum_rc_in_flight(const char *key, void *value, void *arg)
{
    *(size_t *)arg += ((const struct coord_node *)value)->rc_in_flight;
    return 0;
}

/* A segment counts once per copy it is missing: queued, or in flight. */
static void coord_rc_placing(const struct coord *c, size_t *in_flight, size_t *unplaced)
{
    size_t rc = 0;

    strmap_foreach(c->nodes, coord_sum_rc_in_flight, &rc);
    *in_flight = rc;
    *unplaced = c->rowcount->n + rc;
}

const struct coord_placement coord_placement_rowcount = {
    .name = "rowcount",
    .start = coord_rc_start,
    .stop = coord_rc_stop,
    .want = coord_rc_want,
    .forget = coord_rc_forget,
    .exclude = coord_rc_exclude,
    .tick = coord_rc_tick,
    .placing = coord_rc_placing,
};
