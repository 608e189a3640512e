/*
 * repset: a set of reported copies with an order-independent digest (see
 * repset.h). A coordinator keeps one set per node, 10^6 copies in all at
 * the scale we aim for, so each copy is one packed allocation, not a struct
 * wire_segment_status of some 500 bytes nor a chained map entry plus a
 * fixed record (about 170 bytes a copy before): its id with its NUL, a
 * byte of flags, its state, reason and numbers as LEB128 varints, the
 * content digest as 8 raw bytes when it is not 0 and the detail with its
 * NUL when there is one. With an 11-byte id that is about 40 bytes (a
 * 48-byte malloc chunk), found through a keymap (keymap.h: one pointer a
 * slot, the id read from the packed copy, 11 to 21 bytes a copy), so the
 * order of a walk depends on the ids and the history of puts and removes
 * only, never on addresses. A copy's hash is not kept: a replace or remove
 * computes the old one again (the set's sum needs it), and a diff compares
 * packed bytes, which hold exactly the fields the hash covers. Expected
 * load: on a node, one diff per report; on the coordinator, one apply and
 * one export per report.
 */
#include "repset.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "keymap.h"
#include "strmap.h"
#include "xmalloc.h"

/* The flags byte of a packed copy. */
enum {
    PACK_OVER_LIMIT = 1,
    PACK_DIGEST = 2, /* 8 bytes of digest follow the varints; else it is 0 */
    PACK_DETAIL = 4, /* the detail follows, NUL-terminated; else it is "" */
};

/* The numbers packed as varints, in this order (state and reason first). */
#define PACK_NUMS 9
/* id + NUL, flags, varints, digest, detail + NUL */
#define PACK_MAX (WIRE_ID_MAX + 1 + 1 + PACK_NUMS * 10 + 8 + WIRE_DETAIL_MAX + 1)

/* A packed copy begins with its id (its keymap key). */
#define PACK_ID_OFFSET 0

struct repset {
    struct keymap *map; /* id -> packed copy */
    uint64_t hash;      /* sum of the copies' hashes */
};

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
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

static const char *pack_id(const uint8_t *p)
{
    return (const char *)p + PACK_ID_OFFSET;
}

static size_t put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;

    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

static uint64_t get_varint(const uint8_t **p)
{
    uint64_t v = 0;

    for (unsigned shift = 0;; shift += 7) {
        uint8_t b = *(*p)++;

        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return v;
    }
}

/* Packs copy e (its uri and last_query_unix_ms left out) into buf[PACK_MAX]: its length. */
static size_t pack_into(const struct wire_segment_status *e, uint8_t *buf)
{
    uint8_t *flags;
    const uint64_t nums[PACK_NUMS] = {(uint32_t)e->state,   (uint32_t)e->reason,
                                      e->row_count,         e->avg_row_size,
                                      e->file_bytes,        e->index_bytes,
                                      e->footprint_bytes,   e->mem_request_bytes,
                                      e->mem_limit_bytes};
    size_t o = PACK_ID_OFFSET, l = strnlen(e->segment_id, WIRE_ID_MAX);

    memcpy(buf + o, e->segment_id, l);
    o += l;
    buf[o++] = 0;
    flags = &buf[o++];
    *flags = (e->over_limit ? PACK_OVER_LIMIT : 0) | (e->digest != 0 ? PACK_DIGEST : 0) |
             (e->detail[0] != '\0' ? PACK_DETAIL : 0);
    for (size_t i = 0; i < PACK_NUMS; i++)
        o += put_varint(buf + o, nums[i]);
    if (e->digest != 0) {
        put64(buf + o, e->digest);
        o += 8;
    }
    if (e->detail[0] != '\0') {
        l = strnlen(e->detail, WIRE_DETAIL_MAX);
        memcpy(buf + o, e->detail, l);
        o += l;
        buf[o++] = 0;
    }
    return o;
}

/* One allocation holding copy e packed. */
static uint8_t *pack(const struct wire_segment_status *e)
{
    uint8_t buf[PACK_MAX];
    size_t o = pack_into(e, buf);

    return memcpy(xmalloc(o), buf, o);
}

/* The length of packed copy p, read from its own bytes (the format delimits itself). */
static size_t pack_len(const uint8_t *p)
{
    const uint8_t *q = p + PACK_ID_OFFSET + strlen(pack_id(p)) + 1;
    uint8_t flags = *q++;

    for (size_t i = 0; i < PACK_NUMS; i++)
        (void)get_varint(&q);
    if (flags & PACK_DIGEST)
        q += 8;
    if (flags & PACK_DETAIL)
        q += strlen((const char *)q) + 1;
    return (size_t)(q - p);
}

/* Writes packed copy p into *d, as repset_export() writes it. */
static void unpack(const uint8_t *p, struct wire_segment_status *d)
{
    const char *id = pack_id(p);
    size_t l = strlen(id); /* fits: ids are checked on the wire and packed with their NUL */
    const uint8_t *q = (const uint8_t *)id + l + 1;
    uint8_t flags = *q++;
    uint64_t nums[PACK_NUMS];

    memcpy(d->segment_id, id, l + 1);
    for (size_t i = 0; i < PACK_NUMS; i++)
        nums[i] = get_varint(&q);
    d->state = (enum wire_segment_state)nums[0];
    d->reason = (enum wire_reason)nums[1];
    d->row_count = nums[2];
    d->avg_row_size = nums[3];
    d->file_bytes = nums[4];
    d->index_bytes = nums[5];
    d->footprint_bytes = nums[6];
    d->mem_request_bytes = nums[7];
    d->mem_limit_bytes = nums[8];
    d->digest = 0;
    if (flags & PACK_DIGEST) {
        d->digest = get64(q);
        q += 8;
    }
    d->detail[0] = '\0';
    if (flags & PACK_DETAIL)
        memcpy(d->detail, q, strlen((const char *)q) + 1);
    d->over_limit = (flags & PACK_OVER_LIMIT) != 0;
    d->uri = NULL;
    d->last_query_unix_ms = 0;
}

/* A packed copy's hash (repset_entry_hash() of what it holds): not stored, 8 bytes a copy less. */
static uint64_t pack_hash(const uint8_t *p)
{
    struct wire_segment_status e;

    unpack(p, &e);
    return repset_entry_hash(&e);
}

struct repset *repset_new(void)
{
    struct repset *s = xcalloc(1, sizeof(*s));

    s->map = keymap_new(PACK_ID_OFFSET);
    return s;
}

static int pack_free(const char *key, void *record, void *arg)
{
    free(record);
    return 0;
}

void repset_clear(struct repset *s)
{
    keymap_foreach(s->map, pack_free, NULL);
    keymap_free(s->map);
    s->map = keymap_new(PACK_ID_OFFSET);
    s->hash = 0;
}

void repset_free(struct repset *s)
{
    if (s == NULL)
        return;
    keymap_foreach(s->map, pack_free, NULL);
    keymap_free(s->map);
    free(s);
}

size_t repset_count(const struct repset *s)
{
    return keymap_count(s->map);
}

uint64_t repset_hash(const struct repset *s)
{
    return s->hash;
}

void repset_put(struct repset *s, const struct wire_segment_status *st)
{
    uint64_t h = repset_entry_hash(st);
    uint8_t *old = keymap_put(s->map, pack(st));

    if (old != NULL) {
        s->hash -= pack_hash(old);
        free(old);
    }
    s->hash += h;
}

bool repset_remove(struct repset *s, const char *id)
{
    uint8_t *e = keymap_remove(s->map, id);

    if (e == NULL)
        return false;
    s->hash -= pack_hash(e);
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
    struct strmap *ids; /* ids of cur */
    struct repset_diff *d;
    size_t cap;
};

static int diff_removed(const char *key, void *record, void *arg)
{
    struct diff_walk *w = arg;

    if (strmap_get(w->ids, key) != NULL)
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
    struct diff_walk w = {0};

    memset(ret, 0, sizeof(*ret));
    ret->changed = xcalloc(n > 0 ? n : 1, sizeof(*ret->changed));
    for (size_t i = 0; i < n; i++) {
        const uint8_t *e = keymap_get(s->map, cur[i].segment_id);
        uint8_t buf[PACK_MAX];
        size_t l;

        found += e != NULL;
        /* Held otherwise: its packed bytes differ (every field the hash covers is packed). */
        if (e == NULL || (l = pack_into(&cur[i], buf)) != pack_len(e) || memcmp(e, buf, l) != 0)
            ret->changed[ret->n_changed++] = i;
    }
    /* Every copy of the set is in cur: nothing was removed (the usual case, no second map). */
    if (found == keymap_count(s->map))
        return;
    w.ids = strmap_new();
    w.d = ret;
    for (size_t i = 0; i < n; i++)
        strmap_put(w.ids, cur[i].segment_id, w.ids); /* any non-NULL: present */
    keymap_foreach(s->map, diff_removed, &w);
    strmap_free(w.ids);
}

void repset_diff_done(struct repset_diff *d)
{
    if (d == NULL)
        return;
    free(d->changed);
    free(d->removed);
    memset(d, 0, sizeof(*d));
}

bool repset_has(const struct repset *s, const char *id)
{
    return keymap_get(s->map, id) != NULL;
}

bool repset_get(const struct repset *s, const char *id, struct wire_segment_status *ret)
{
    const uint8_t *e = keymap_get(s->map, id);

    if (e == NULL)
        return false;
    unpack(e, ret);
    return true;
}

struct export_walk {
    struct wire_segment_status *v;
    size_t n;
};

static int export_one(const char *key, void *record, void *arg)
{
    struct export_walk *w = arg;

    unpack(record, &w->v[w->n++]);
    return 0;
}

size_t repset_export(const struct repset *s, struct wire_segment_status **v, size_t *cap)
{
    struct export_walk w;
    size_t n = keymap_count(s->map);

    if (n > *cap || *v == NULL) {
        *cap = n > 16 ? n : 16;
        *v = xreallocarray(*v, *cap, sizeof(**v));
    }
    w.v = *v;
    w.n = 0;
    keymap_foreach(s->map, export_one, &w);
    return w.n;
}
