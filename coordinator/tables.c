/*
 * tables: the coordinator's per-table views, GET /v1/tables and GET
 * /v1/recommendations, and the per-segment figures they are made of. A
 * table is a name every segment carries (SegmentSpec.table; "default" for
 * segments registered without one). /v1/tables sums, per table, its
 * segments by state, its rows and its registered size estimate (rows x
 * avg_row_size), from the model in memory; /v1/recommendations hands each
 * table's segments to the pure recommender (recommend.c). Both change
 * nothing. coord_seg_observe keeps each segment's peak footprint from the
 * nodes' reports (catalog column segments.footprint_bytes).
 *
 * Expected load: an operator or a script now and then. One walk over every
 * segment per request, O(segments + tables log tables): a million segments
 * take tens of milliseconds, like GET /v1/segments.
 */
#include "coord_int.h"

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/queue.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pbhttp.h"
#include "recommend.h"
#include "strmap.h"
#include "wire.h"
#include "xmalloc.h"

struct coord_tables {
    struct strmap *by_name; /* table -> index + 1 in list */
    struct wire_table_list list;
    size_t cap;
};

/* Adds one segment to its table's sums, making the entry on first sight. */
static int coord_table_add(const char *key, void *value, void *arg)
{
    struct coord_tables *t = arg;
    const struct coord_seg *s = value;
    uintptr_t at = (uintptr_t)strmap_get(t->by_name, s->table);
    struct wire_table_info *ti;
    uint64_t bytes;

    if (at == 0) {
        if (t->list.n == t->cap) {
            t->cap = t->cap * 2 + 16;
            t->list.tables = xreallocarray(t->list.tables, t->cap, sizeof(*t->list.tables));
        }
        ti = &t->list.tables[t->list.n++];
        memset(ti, 0, sizeof(*ti));
        snprintf(ti->table, sizeof(ti->table), "%s", s->table);
        strmap_put(t->by_name, s->table, (void *)(uintptr_t)t->list.n);
    } else {
        ti = &t->list.tables[at - 1];
    }
    ti->segments++;
    ti->segments_loaded += s->state == COORD_LOADED;
    ti->segments_pending += s->state == COORD_PENDING;
    ti->segments_invalid += s->state == COORD_INVALID;
    ti->rows += s->row_count;
    /* Both factors are capped (10^12 rows, 16 MiB): saturate rather than wrap. */
    bytes = s->row_count > UINT64_MAX / s->avg_row_size ? UINT64_MAX
                                                        : s->row_count * s->avg_row_size;
    ti->bytes = ti->bytes > UINT64_MAX - bytes ? UINT64_MAX : ti->bytes + bytes;
    return 0;
}

static int coord_cmp_table(const void *a, const void *b)
{
    return strcmp(((const struct wire_table_info *)a)->table,
                  ((const struct wire_table_info *)b)->table);
}

void coord_tables_cb(struct evhttp_request *req, const char *rest, void *arg)
{
    struct coord *c = arg;
    struct coord_tables t;
    uint8_t *buf;
    size_t len;

    (void)rest;
    memset(&t, 0, sizeof(t));
    t.by_name = strmap_new();
    keymap_foreach(c->segs, coord_table_add, &t);
    qsort(t.list.tables, t.list.n, sizeof(*t.list.tables), coord_cmp_table);
    buf = wire_table_list_encode(&t.list, &len);
    wire_table_list_done(&t.list);
    strmap_free(t.by_name);
    pbhttp_reply_msg(req, 200, WIRE_MSG_TABLE_LIST, buf, len);
}

void coord_seg_assignment(const struct coord_seg *s, struct wire_assign_request *ret)
{
    memset(ret, 0, sizeof(*ret));
    snprintf(ret->segment_id, sizeof(ret->segment_id), "%s", s->id);
    snprintf(ret->uri, sizeof(ret->uri), "%s", coord_seg_uri(s));
    ret->row_count = s->row_count;
    ret->avg_row_size = s->avg_row_size;
    ret->digest = s->digest;
    ret->mem_request_bytes = s->mem_request_bytes;
    ret->mem_limit_bytes = s->mem_limit_bytes;
}

void coord_seg_observe(struct coord *c, struct coord_seg *s, const struct wire_segment_status *r)
{
    if (r->over_limit != s->over_limit) {
        log_info("segment_over_limit", "id=%s over_limit=%s footprint=%llu limit=%llu", s->id,
                 r->over_limit ? "true" : "false", (unsigned long long)r->footprint_bytes,
                 (unsigned long long)r->mem_limit_bytes);
        s->over_limit = r->over_limit;
    }
    if (r->footprint_bytes <= s->footprint_bytes)
        return;
    s->footprint_bytes = r->footprint_bytes;
    /* Peaks only grow: written when new, or 1/16 over what is stored. */
    if (s->footprint_saved != 0 &&
        s->footprint_bytes - s->footprint_saved <= s->footprint_saved / 16)
        return;
    if (coord_txn(c) < 0)
        return;
    coord_check(c, catalog_set_segment_footprint(c->cat, s->id, s->footprint_bytes),
                "segment_footprint");
    s->footprint_saved = s->footprint_bytes;
}

struct coord_recs {
    const char *only; /* one table, or NULL for all */
    struct strmap *by_name; /* table -> index + 1 in tables */
    struct {
        char name[WIRE_TABLE_MAX + 1];
        struct recommend_sample *s;
        size_t n, cap;
    } *tables;
    size_t n, cap;
};

/* Adds one segment's figures to its table's samples. */
static int coord_rec_add(const char *key, void *value, void *arg)
{
    struct coord_recs *rs = arg;
    const struct coord_seg *s = value;
    uintptr_t at;
    struct recommend_sample *x;

    if (rs->only != NULL && strcmp(rs->only, s->table) != 0)
        return 0;
    at = (uintptr_t)strmap_get(rs->by_name, s->table);
    if (at == 0) {
        if (rs->n == rs->cap) {
            rs->cap = rs->cap * 2 + 16;
            rs->tables = xreallocarray(rs->tables, rs->cap, sizeof(*rs->tables));
        }
        memset(&rs->tables[rs->n], 0, sizeof(rs->tables[rs->n]));
        snprintf(rs->tables[rs->n].name, sizeof(rs->tables[rs->n].name), "%s", s->table);
        at = ++rs->n;
        strmap_put(rs->by_name, s->table, (void *)at);
    }
    if (rs->tables[at - 1].n == rs->tables[at - 1].cap) {
        rs->tables[at - 1].cap = rs->tables[at - 1].cap * 2 + 64;
        rs->tables[at - 1].s = xreallocarray(rs->tables[at - 1].s, rs->tables[at - 1].cap,
                                             sizeof(*rs->tables[at - 1].s));
    }
    x = &rs->tables[at - 1].s[rs->tables[at - 1].n++];
    x->observed = s->footprint_bytes;
    x->estimate = s->row_count > UINT64_MAX / s->avg_row_size ? UINT64_MAX
                                                              : s->row_count * s->avg_row_size;
    x->request = s->mem_request_bytes;
    x->limit = s->mem_limit_bytes;
    x->over_limit = s->over_limit;
    return 0;
}

static int coord_cmp_rec(const void *a, const void *b)
{
    return strcmp(((const struct wire_recommendation *)a)->table,
                  ((const struct wire_recommendation *)b)->table);
}

void coord_recommendations_cb(struct evhttp_request *req, const char *rest, void *arg)
{
    struct coord *c = arg;
    struct coord_recs rs;
    struct wire_recommendation_list out = {0, NULL};
    struct wire_error err;
    struct evkeyvalq q;
    const char *query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
    char msg[WIRE_TABLE_MAX + 64];
    uint8_t *buf;
    size_t len;

    (void)rest;
    memset(&rs, 0, sizeof(rs));
    TAILQ_INIT(&q);
    if (evhttp_parse_query_str(query != NULL ? query : "", &q) < 0) {
        pbhttp_reply_error(req, 400, "invalid_field", "query: not a valid query string");
        return;
    }
    rs.only = evhttp_find_header(&q, "table");
    if (rs.only != NULL && wire_check_table("table", rs.only, &err) < 0) {
        pbhttp_reply_error(req, 400, err.code, err.message);
        goto out;
    }
    rs.by_name = strmap_new();
    keymap_foreach(c->segs, coord_rec_add, &rs);
    if (rs.only != NULL && rs.n == 0) {
        snprintf(msg, sizeof(msg), "table \"%s\" has no segments", rs.only);
        pbhttp_reply_error(req, 404, "not_found", msg);
        goto out;
    }
    out.n = rs.n;
    out.recs = xcalloc(rs.n + 1, sizeof(*out.recs));
    for (size_t i = 0; i < rs.n; i++) {
        snprintf(out.recs[i].table, sizeof(out.recs[i].table), "%s", rs.tables[i].name);
        recommend_table(rs.tables[i].s, rs.tables[i].n, &out.recs[i]);
    }
    qsort(out.recs, out.n, sizeof(*out.recs), coord_cmp_rec);
    buf = wire_recommendation_list_encode(&out, &len);
    pbhttp_reply_msg(req, 200, WIRE_MSG_RECOMMENDATION_LIST, buf, len);
out:
    wire_recommendation_list_done(&out);
    for (size_t i = 0; i < rs.n; i++)
        free(rs.tables[i].s);
    free(rs.tables);
    strmap_free(rs.by_name);
    evhttp_clear_headers(&q);
}
