/*
 * tables: the coordinator's per-table view, GET /v1/tables. A table is a
 * name every segment carries (SegmentSpec.table; "default" for segments
 * registered without one); the answer sums, per table, its segments by
 * state, its rows and its registered size estimate (rows x avg_row_size),
 * from the model in memory. It changes nothing.
 *
 * Expected load: an operator or a script now and then. One walk over every
 * segment per request, O(segments + tables log tables): a million segments
 * take tens of milliseconds, like GET /v1/segments.
 */
#include "coord_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pbhttp.h"
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
    strmap_foreach(c->segs, coord_table_add, &t);
    qsort(t.list.tables, t.list.n, sizeof(*t.list.tables), coord_cmp_table);
    buf = wire_table_list_encode(&t.list, &len);
    wire_table_list_done(&t.list);
    strmap_free(t.by_name);
    pbhttp_reply_msg(req, 200, WIRE_MSG_TABLE_LIST, buf, len);
}
