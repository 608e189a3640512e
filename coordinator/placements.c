/*
 * placements: GET /v1/placements?since=V&epoch=E[&after=ID], the versioned
 * placement map brokers follow (proto PlacementMap). Every change a broker
 * needs to see of a segment (a holder added, removed or LOADED, a new
 * segment, another table) goes through coord_placed(), which logs it in
 * the pure change log (pmap.c) and stamps the segment with its version.
 * A poll since V answers the segments whose last change is after V, each
 * whole (table, LOADED holders, state), so applying an answer twice is
 * harmless (a segment the operator removed comes once more, REMOVED with no
 * holders, and is then gone from full maps); when V is out of the log or of
 * another epoch (a poll naming no epoch, as a broker's first, is of none),
 * or the changes fill more than a page, it answers the full map in id
 * order, a page at a time. Since 0 of this epoch is a delta like any other:
 * an empty catalog's map is version 0, and answering it in full would make
 * a broker that polls before the first registration start over at once. Nodes (address, state, and what their last report said
 * of p99 and queries in flight) travel whole in every answer.
 *
 * Expected load: each broker polls a few times a second; a poll costs the
 * changes since its last (O(changes)), a full page O(page + log n).
 */
#include "coord_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "pbhttp.h"
#include "strmap.h"
#include "wire.h"
#include "xmalloc.h"

void coord_placed(struct coord *c, struct coord_seg *s)
{
    s->pversion = pmap_touch(c->pmap, s);
}

/* One segment as brokers see it: its table, state and LOADED holders. */
static void coord_placed_segment(const struct coord_seg *s, struct wire_placed_segment *d)
{
    memset(d, 0, sizeof(*d));
    snprintf(d->segment_id, sizeof(d->segment_id), "%s", s->id);
    snprintf(d->table, sizeof(d->table), "%s", s->table);
    snprintf(d->state, sizeof(d->state), "%s",
             s->removed ? "REMOVED" : coord_seg_state_names[s->state]);
    d->node_ids = xcalloc(s->n_holders, sizeof(*d->node_ids));
    for (unsigned i = 0; i < s->n_holders; i++)
        if (s->holders[i].state == WIRE_SEG_LOADED)
            snprintf(d->node_ids[d->n_nodes++], sizeof(d->node_ids[0]), "%s",
                     s->holders[i].node);
}

struct coord_delta {
    struct wire_placement_map *out;
    size_t cap;
};

/* A change from the log: taken when it is the segment's last; 1 (stop) past a page. */
static int coord_delta_add(void *item, uint64_t version, void *arg)
{
    struct coord_delta *d = arg;
    const struct coord_seg *s = item;

    if (s->pversion != version)
        return 0;
    if (d->out->n_segments == WIRE_PLACEMENT_PAGE_MAX)
        return 1;
    if (d->out->n_segments == d->cap) {
        d->cap = d->cap * 2 + 16;
        d->out->segments = xreallocarray(d->out->segments, d->cap, sizeof(*d->out->segments));
    }
    coord_placed_segment(s, &d->out->segments[d->out->n_segments++]);
    return 0;
}

static int coord_placed_node(const char *key, void *value, void *arg)
{
    struct wire_placement_map *out = arg;
    const struct coord_node *n = value;
    struct wire_placed_node *d = &out->nodes[out->n_nodes++];

    (void)key;
    snprintf(d->node_id, sizeof(d->node_id), "%s", n->id);
    snprintf(d->addr, sizeof(d->addr), "%s", n->addr);
    snprintf(d->state, sizeof(d->state), "%s", membership_state_name(n->state));
    d->p99_seconds = n->pressure.p99_seconds;
    d->queries_in_flight = n->pressure.queries_in_flight;
    return 0;
}

/* Parses a query parameter of 1..20 decimal digits (base 10) or 1..16 hex digits (base 16). */
static int coord_parse_u64(const char *s, int base, uint64_t *ret)
{
    size_t n = strlen(s);
    unsigned long long v;
    char *end;

    if (n == 0 || n > (base == 16 ? 16u : 20u) ||
        strspn(s, base == 16 ? "0123456789abcdefABCDEF" : "0123456789") != n)
        return -EINVAL;
    errno = 0;
    v = strtoull(s, &end, base);
    if (errno != 0 || *end != '\0')
        return -EINVAL;
    *ret = v;
    return 0;
}

int coord_placements_get(void *arg, uint64_t since, uint64_t epoch, const char *after,
                         struct wire_placement_map *ret)
{
    struct coord *c = arg;
    struct wire_placement_map out;

    memset(&out, 0, sizeof(out));
    if (after != NULL && after[0] == '\0')
        after = NULL;
    out.epoch = c->epoch;
    out.version = pmap_version(c->pmap);
    if (after == NULL && epoch == c->epoch) {
        struct coord_delta d = {.out = &out};

        if (pmap_since(c->pmap, since, coord_delta_add, &d) != 0) {
            /* Out of the log, or more than a page: the full map instead. */
            for (size_t i = 0; i < out.n_segments; i++)
                free(out.segments[i].node_ids);
            free(out.segments);
            out.segments = NULL;
            out.n_segments = 0;
            out.full = true;
        }
    } else {
        out.full = true;
    }
    if (out.full) {
        struct coord_walk w;
        struct coord_seg *s;

        out.segments = xcalloc(WIRE_PLACEMENT_PAGE_MAX, sizeof(*out.segments));
        coord_walk_start(c, -1, after, &w);
        while (out.n_segments < WIRE_PLACEMENT_PAGE_MAX && (s = coord_walk_next(&w)) != NULL)
            coord_placed_segment(s, &out.segments[out.n_segments++]);
        if (out.n_segments == WIRE_PLACEMENT_PAGE_MAX && coord_walk_next(&w) != NULL)
            snprintf(out.next_after, sizeof(out.next_after), "%s",
                     out.segments[out.n_segments - 1].segment_id);
    }
    out.nodes = xcalloc(strmap_count(c->nodes), sizeof(*out.nodes));
    strmap_foreach(c->nodes, coord_placed_node, &out);
    *ret = out;
    return 0;
}

void coord_placements_cb(struct evhttp_request *req, const char *rest, void *arg)
{
    struct coord *c = arg;
    const char *query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
    const char *since_s, *epoch_s, *after;
    struct wire_placement_map out;
    struct wire_error err;
    uint64_t since = 0, epoch = 0;
    struct evkeyvalq q;
    uint8_t *buf;
    size_t len;

    (void)rest;
    memset(&out, 0, sizeof(out));
    evhttp_parse_query_str(query != NULL ? query : "", &q);
    since_s = evhttp_find_header(&q, "since");
    epoch_s = evhttp_find_header(&q, "epoch");
    after = evhttp_find_header(&q, "after");
    if (since_s != NULL && coord_parse_u64(since_s, 10, &since) < 0) {
        pbhttp_reply_error(req, 400, "invalid_field", "since: a version, an integer in 0..2^64-1");
        goto out;
    }
    if (epoch_s != NULL && coord_parse_u64(epoch_s, 16, &epoch) < 0) {
        pbhttp_reply_error(req, 400, "invalid_field",
                           "epoch: 1..16 hex digits, as an earlier answer gave it");
        goto out;
    }
    if (after != NULL && wire_check_segment_id("after", after, &err) < 0) {
        pbhttp_reply_error(req, 400, err.code, err.message);
        goto out;
    }
    (void)coord_placements_get(c, since, epoch, after, &out);
    buf = wire_placement_map_encode(&out, &len);
    pbhttp_reply_msg(req, 200, WIRE_MSG_PLACEMENT_MAP, buf, len);
out:
    wire_placement_map_done(&out);
    evhttp_clear_headers(&q);
}
