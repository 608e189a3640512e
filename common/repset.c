/*
 * repset: a set of reported copies with an order-independent digest (see
 * repset.h). A coordinator keeps one set per node, 10^6 copies in all at
 * the scale we aim for, so each copy is one packed allocation, not a struct
 * wire_segment_status of some 500 bytes nor a chained map entry plus a
 * fixed record (about 170 bytes a copy before): its hash, its id with its
 * NUL, a byte of flags, its state, reason and numbers as LEB128 varints,
 * the content digest as 8 raw bytes when it is not 0 and the detail with
 * its NUL when there is one. With an 11-byte id that is about 50 bytes (a
 * 64-byte malloc chunk); the table holds one pointer a slot, open
 * addressing with linear probing and backward-shift deletion, grown at a
 * load of 3/4 and halved below 3/16 (11 to 21 bytes a copy after growing). Slots are found by XXH3 of
 * the id, so the order of a walk depends on the ids and the history of
 * puts and removes only, never on addresses. Expected load: on a node, one
 * diff per report; on the coordinator, one apply and one export per report.
 */
#include "repset.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "strmap.h"
#include "xmalloc.h"

#define REPSET_MIN_SLOTS 16

/* The flags byte of a packed copy. */
enum {
    PACK_OVER_LIMIT = 1,
    PACK_DIGEST = 2, /* 8 bytes of digest follow the varints; else it is 0 */
    PACK_DETAIL = 4, /* the detail follows, NUL-terminated; else it is "" */
};

/* The numbers packed as varints, in this order (state and reason first). */
#define PACK_NUMS 9
/* hash, id + NUL, flags, varints, digest, detail + NUL */
#define PACK_MAX (8 + WIRE_ID_MAX + 1 + 1 + PACK_NUMS * 10 + 8 + WIRE_DETAIL_MAX + 1)

struct repset {
    uint8_t **slots; /* packed copies; NULL: empty slot */
    size_t cap;      /* a power of two */
    size_t n;
    uint64_t hash; /* sum of the copies' hashes */
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

/* A packed copy's parts: its hash and its id (the key). */
static uint64_t pack_hash(const uint8_t *p)
{
    return get64(p);
}

static const char *pack_id(const uint8_t *p)
{
    return (const char *)p + 8;
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

/* One allocation holding copy e (its uri and last_query_unix_ms left out) and its hash. */
static uint8_t *pack(const struct wire_segment_status *e, uint64_t hash)
{
    uint8_t buf[PACK_MAX], *flags;
    const uint64_t nums[PACK_NUMS] = {(uint32_t)e->state,   (uint32_t)e->reason,
                                      e->row_count,         e->avg_row_size,
                                      e->file_bytes,        e->index_bytes,
                                      e->footprint_bytes,   e->mem_request_bytes,
                                      e->mem_limit_bytes};
    size_t o = 8, l = strnlen(e->segment_id, WIRE_ID_MAX);

    put64(buf, hash);
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
    return memcpy(xmalloc(o), buf, o);
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

static size_t slot_of(const struct repset *s, const char *id)
{
    return (size_t)XXH3_64bits(id, strlen(id)) & (s->cap - 1);
}

/* The slot holding id, or the empty slot where it would go. */
static size_t find(const struct repset *s, const char *id)
{
    size_t i = slot_of(s, id);

    while (s->slots[i] != NULL && strcmp(pack_id(s->slots[i]), id) != 0)
        i = (i + 1) & (s->cap - 1);
    return i;
}

static void set_slots(struct repset *s, size_t cap)
{
    uint8_t **old = s->slots;
    size_t old_cap = s->cap;

    s->slots = xcalloc(cap, sizeof(*s->slots));
    s->cap = cap;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i] != NULL)
            s->slots[find(s, pack_id(old[i]))] = old[i];
    free(old);
}

struct repset *repset_new(void)
{
    struct repset *s = xcalloc(1, sizeof(*s));

    set_slots(s, REPSET_MIN_SLOTS);
    return s;
}

void repset_clear(struct repset *s)
{
    for (size_t i = 0; i < s->cap; i++)
        free(s->slots[i]);
    free(s->slots);
    s->slots = NULL;
    s->cap = 0;
    s->n = 0;
    s->hash = 0;
    set_slots(s, REPSET_MIN_SLOTS);
}

void repset_free(struct repset *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->cap; i++)
        free(s->slots[i]);
    free(s->slots);
    free(s);
}

size_t repset_count(const struct repset *s)
{
    return s->n;
}

uint64_t repset_hash(const struct repset *s)
{
    return s->hash;
}

void repset_put(struct repset *s, const struct wire_segment_status *st)
{
    uint64_t h = repset_entry_hash(st);
    size_t i;

    if ((s->n + 1) * 4 > s->cap * 3)
        set_slots(s, s->cap * 2);
    i = find(s, st->segment_id);
    if (s->slots[i] != NULL) {
        s->hash -= pack_hash(s->slots[i]);
        free(s->slots[i]);
    } else {
        s->n++;
    }
    s->slots[i] = pack(st, h);
    s->hash += h;
}

bool repset_remove(struct repset *s, const char *id)
{
    size_t i = find(s, id), j = i;

    if (s->slots[i] == NULL)
        return false;
    s->hash -= pack_hash(s->slots[i]);
    free(s->slots[i]);
    s->slots[i] = NULL;
    s->n--;
    /* Backward shift: move up every later copy of the run that may sit in the hole. */
    for (;;) {
        size_t home;

        j = (j + 1) & (s->cap - 1);
        if (s->slots[j] == NULL)
            break;
        home = slot_of(s, pack_id(s->slots[j]));
        /* j's home is cyclically in (i, j]: it stays; else it moves into the hole at i. */
        if (((j - home) & (s->cap - 1)) < ((j - i) & (s->cap - 1)))
            continue;
        s->slots[i] = s->slots[j];
        s->slots[j] = NULL;
        i = j;
    }
    if (s->cap > REPSET_MIN_SLOTS && s->n * 16 < s->cap * 3)
        set_slots(s, s->cap / 2);
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

/* The packed copy with this id, or NULL. */
static const uint8_t *lookup(const struct repset *s, const char *id)
{
    return s->slots[find(s, id)];
}

void repset_diff(const struct repset *s, const struct wire_segment_status *cur, size_t n,
                 struct repset_diff *ret)
{
    size_t found = 0, cap = 0;
    struct strmap *ids;

    memset(ret, 0, sizeof(*ret));
    ret->changed = xcalloc(n > 0 ? n : 1, sizeof(*ret->changed));
    for (size_t i = 0; i < n; i++) {
        const uint8_t *e = lookup(s, cur[i].segment_id);

        found += e != NULL;
        if (e == NULL || pack_hash(e) != repset_entry_hash(&cur[i]))
            ret->changed[ret->n_changed++] = i;
    }
    /* Every copy of the set is in cur: nothing was removed (the usual case, no second map). */
    if (found == s->n)
        return;
    ids = strmap_new();
    for (size_t i = 0; i < n; i++)
        strmap_put(ids, cur[i].segment_id, ids); /* any non-NULL: present */
    for (size_t i = 0; i < s->cap; i++) {
        const char *id;

        if (s->slots[i] == NULL || strmap_get(ids, (id = pack_id(s->slots[i]))) != NULL)
            continue;
        if (ret->n_removed == cap) {
            cap = cap * 2 + 16;
            ret->removed = xreallocarray(ret->removed, cap, sizeof(*ret->removed));
        }
        snprintf(ret->removed[ret->n_removed++], sizeof(ret->removed[0]), "%s", id);
    }
    strmap_free(ids);
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
    return lookup(s, id) != NULL;
}

bool repset_get(const struct repset *s, const char *id, struct wire_segment_status *ret)
{
    const uint8_t *e = lookup(s, id);

    if (e == NULL)
        return false;
    unpack(e, ret);
    return true;
}

size_t repset_export(const struct repset *s, struct wire_segment_status **v, size_t *cap)
{
    size_t n = 0;

    if (s->n > *cap || *v == NULL) {
        *cap = s->n > 16 ? s->n : 16;
        *v = xreallocarray(*v, *cap, sizeof(**v));
    }
    for (size_t i = 0; i < s->cap; i++)
        if (s->slots[i] != NULL)
            unpack(s->slots[i], &(*v)[n++]);
    return n;
}
