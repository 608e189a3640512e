/*
 * repset: a set of reported copies with an order-independent digest (see
 * repset.h). Each copy is kept compact (its numbers, its detail only when
 * there is one), not as a struct wire_segment_status of some 500 bytes: a
 * coordinator keeps one set per node, 10^6 copies in all at the scale we aim
 * for. Expected load: on a node, one diff per report; on the coordinator, one
 * apply and one export per report.
 */
#include "repset.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "strmap.h"
#include "xmalloc.h"

struct repset_entry {
    uint64_t hash;
    uint64_t row_count, avg_row_size, file_bytes, index_bytes, digest;
    uint64_t footprint_bytes, mem_request_bytes, mem_limit_bytes;
    char *detail; /* NULL: empty */
    uint8_t state, reason;
    bool over_limit;
};

struct repset {
    struct strmap *map; /* id -> struct repset_entry */
    uint64_t hash;      /* sum of the entries' hashes */
};

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

uint64_t repset_entry_hash(const struct wire_segment_status *e)
{
    /* Little-endian numbers, then id and detail with their NULs: the same bytes on every host. */
    uint8_t buf[11 * 8 + WIRE_ID_MAX + 1 + WIRE_DETAIL_MAX + 1];
    const uint64_t nums[11] = {(uint64_t)e->state,  (uint64_t)e->reason, e->over_limit,
                               e->row_count,        e->avg_row_size,     e->file_bytes,
                               e->index_bytes,      e->digest,           e->footprint_bytes,
                               e->mem_request_bytes, e->mem_limit_bytes};
    size_t o = 0, l;

    for (size_t i = 0; i < 11; i++, o += 8)
        put64(buf + o, nums[i]);
    l = strnlen(e->segment_id, WIRE_ID_MAX);
    memcpy(buf + o, e->segment_id, l);
    o += l;
    buf[o++] = 0;
    l = strnlen(e->detail, WIRE_DETAIL_MAX);
    memcpy(buf + o, e->detail, l);
    o += l;
    buf[o++] = 0;
    return XXH3_64bits(buf, o);
}

void repset_digest_of(const struct wire_segment_status *v, size_t n, uint64_t *ret_count,
                      uint64_t *ret_hash)
{
    uint64_t h = 0;

    for (size_t i = 0; i < n; i++)
        h += repset_entry_hash(&v[i]);
    *ret_count = n;
    *ret_hash = h;
}

struct repset *repset_new(void)
{
    struct repset *s = xcalloc(1, sizeof(*s));

    s->map = strmap_new();
    return s;
}

static int entry_free(const char *key, void *value, void *arg)
{
    struct repset_entry *e = value;

    free(e->detail);
    free(e);
    return 0;
}

void repset_clear(struct repset *s)
{
    strmap_foreach(s->map, entry_free, NULL);
    strmap_free(s->map);
    s->map = strmap_new();
    s->hash = 0;
}

void repset_free(struct repset *s)
{
    if (s == NULL)
        return;
    strmap_foreach(s->map, entry_free, NULL);
    strmap_free(s->map);
    free(s);
}

size_t repset_count(const struct repset *s)
{
    return strmap_count(s->map);
}

uint64_t repset_hash(const struct repset *s)
{
    return s->hash;
}

void repset_put(struct repset *s, const struct wire_segment_status *st)
{
    struct repset_entry *e = strmap_get(s->map, st->segment_id);

    if (e == NULL) {
        e = xcalloc(1, sizeof(*e));
        strmap_put(s->map, st->segment_id, e);
    } else {
        s->hash -= e->hash;
        free(e->detail);
    }
    e->hash = repset_entry_hash(st);
    s->hash += e->hash;
    e->row_count = st->row_count;
    e->avg_row_size = st->avg_row_size;
    e->file_bytes = st->file_bytes;
    e->index_bytes = st->index_bytes;
    e->digest = st->digest;
    e->footprint_bytes = st->footprint_bytes;
    e->mem_request_bytes = st->mem_request_bytes;
    e->mem_limit_bytes = st->mem_limit_bytes;
    e->detail = st->detail[0] != '\0' ? xstrdup(st->detail) : NULL;
    e->state = (uint8_t)st->state;
    e->reason = (uint8_t)st->reason;
    e->over_limit = st->over_limit;
}

bool repset_remove(struct repset *s, const char *id)
{
    struct repset_entry *e = strmap_remove(s->map, id);

    if (e == NULL)
        return false;
    s->hash -= e->hash;
    free(e->detail);
    free(e);
    return true;
}

void repset_replace(struct repset *s, const struct wire_segment_status *v, size_t n)
{
    repset_clear(s);
    for (size_t i = 0; i < n; i++)
        repset_put(s, &v[i]);
}

size_t repset_apply(struct repset *s, const struct wire_segment_status *changed, size_t n_changed,
                    const char (*removed)[WIRE_ID_MAX + 1], size_t n_removed)
{
    size_t unknown = 0;

    for (size_t i = 0; i < n_removed; i++)
        unknown += !repset_remove(s, removed[i]);
    for (size_t i = 0; i < n_changed; i++)
        repset_put(s, &changed[i]);
    return unknown;
}

/* The walk that finds what the set holds and cur lacks. */
struct diff_walk {
    struct strmap *cur; /* ids of cur */
    struct repset_diff *d;
    size_t cap;
};

static int diff_removed(const char *key, void *value, void *arg)
{
    struct diff_walk *w = arg;

    if (strmap_get(w->cur, key) != NULL)
        return 0;
    if (w->d->n_removed == w->cap) {
        w->cap = w->cap * 2 + 16;
        w->d->removed = xreallocarray(w->d->removed, w->cap, sizeof(*w->d->removed));
    }
    snprintf(w->d->removed[w->d->n_removed++], sizeof(w->d->removed[0]), "%s", key);
    return 0;
}

void repset_diff(const struct repset *s, const struct wire_segment_status *cur, size_t n,
                 struct repset_diff *ret)
{
    size_t found = 0;

    memset(ret, 0, sizeof(*ret));
    ret->changed = xcalloc(n > 0 ? n : 1, sizeof(*ret->changed));
    for (size_t i = 0; i < n; i++) {
        const struct repset_entry *e = strmap_get(s->map, cur[i].segment_id);

        found += e != NULL;
        if (e == NULL || e->hash != repset_entry_hash(&cur[i]))
            ret->changed[ret->n_changed++] = i;
    }
    /* Every copy of the set is in cur: nothing was removed (the usual case, no second map). */
    if (found != repset_count(s)) {
        struct diff_walk w = {strmap_new(), ret, 0};

        for (size_t i = 0; i < n; i++)
            strmap_put(w.cur, cur[i].segment_id, w.cur); /* any non-NULL: present */
        strmap_foreach(s->map, diff_removed, &w);
        strmap_free(w.cur);
    }
}

void repset_diff_done(struct repset_diff *d)
{
    if (d == NULL)
        return;
    free(d->changed);
    free(d->removed);
    memset(d, 0, sizeof(*d));
}

struct export_walk {
    struct wire_segment_status *v;
    size_t n;
};

/* Writes entry e of id key into *d. */
static void entry_out(const char *key, const struct repset_entry *e, struct wire_segment_status *d)
{

    /* Both fit: ids are checked on the wire, details were copied from a detail field. */
    memcpy(d->segment_id, key, strnlen(key, WIRE_ID_MAX) + 1);
    d->segment_id[WIRE_ID_MAX] = '\0';
    if (e->detail != NULL)
        memcpy(d->detail, e->detail, strnlen(e->detail, WIRE_DETAIL_MAX) + 1);
    else
        d->detail[0] = '\0';
    d->detail[WIRE_DETAIL_MAX] = '\0';
    d->state = (enum wire_segment_state)e->state;
    d->reason = (enum wire_reason)e->reason;
    d->row_count = e->row_count;
    d->avg_row_size = e->avg_row_size;
    d->file_bytes = e->file_bytes;
    d->index_bytes = e->index_bytes;
    d->uri = NULL;
    d->last_query_unix_ms = 0;
    d->digest = e->digest;
    d->footprint_bytes = e->footprint_bytes;
    d->mem_request_bytes = e->mem_request_bytes;
    d->mem_limit_bytes = e->mem_limit_bytes;
    d->over_limit = e->over_limit;
}

static int export_one(const char *key, void *value, void *arg)
{
    struct export_walk *w = arg;

    entry_out(key, value, &w->v[w->n++]);
    return 0;
}

bool repset_has(const struct repset *s, const char *id)
{
    return strmap_get(s->map, id) != NULL;
}

bool repset_get(const struct repset *s, const char *id, struct wire_segment_status *ret)
{
    const struct repset_entry *e = strmap_get(s->map, id);

    if (e == NULL)
        return false;
    entry_out(id, e, ret);
    return true;
}

size_t repset_export(const struct repset *s, struct wire_segment_status **v, size_t *cap)
{
    struct export_walk w;
    size_t n = repset_count(s);

    if (n > *cap || *v == NULL) {
        *cap = n > 16 ? n : 16;
        *v = xreallocarray(*v, *cap, sizeof(**v));
    }
    w.v = *v;
    w.n = 0;
    strmap_foreach(s->map, export_one, &w);
    return w.n;
}
