/*
 * bmap: the broker's placement map (see bmap.h). A set of segments is a
 * keymap, id -> segment (the id held in the segment), and a string map,
 * table -> the table's segments (an array sorted by id on first use after
 * a change), whose entry holds the one copy of the table's name. The live set and, during a
 * full refresh, a staging set; nodes live beside both, in slot order.
 */
#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include <stddef.h>

#include "bmap.h"
#include "keymap.h"
#include "strmap.h"
#include "xmalloc.h"

struct bmap_tab {
    char *name; /* owned; its segments' table points here */
    size_t n, cap;
    struct bmap_seg **segs;
    bool dirty; /* not sorted since a segment came in */
};

struct bmap_set {
    struct keymap *by_id;  /* id -> struct bmap_seg (its own id) */
    struct strmap *tables; /* table -> struct bmap_tab */
};

struct bmap {
    struct bmap_set live, *staging;
    uint64_t epoch, version, staging_epoch, staging_version;
    bool ready;
    struct strmap *node_ids; /* id -> struct bmap_node */
    struct bmap_node **nodes;
    size_t n_nodes, cap_nodes;
};

static void bmap_set_init(struct bmap_set *s)
{
    s->by_id = keymap_new(offsetof(struct bmap_seg, id));
    s->tables = strmap_new();
}

static int bmap_free_seg(const char *key, void *value, void *arg)
{
    struct bmap_seg *s = value;

    (void)key;
    (void)arg;
    if (s->slots != &s->one_slot)
        free(s->slots);
    free(s);
    return 0;
}

static int bmap_free_tab(const char *key, void *value, void *arg)
{
    struct bmap_tab *t = value;

    (void)key;
    (void)arg;
    free(t->segs);
    free(t->name);
    free(t);
    return 0;
}

static void bmap_set_done(struct bmap_set *s)
{
    if (s->by_id != NULL)
        keymap_foreach(s->by_id, bmap_free_seg, NULL);
    if (s->tables != NULL)
        strmap_foreach(s->tables, bmap_free_tab, NULL);
    keymap_free(s->by_id);
    strmap_free(s->tables);
    s->by_id = NULL;
    s->tables = NULL;
}

struct bmap *bmap_new(void)
{
    struct bmap *m = xcalloc(1, sizeof(*m));

    bmap_set_init(&m->live);
    m->node_ids = strmap_new();
    return m;
}

void bmap_free(struct bmap *m)
{
    if (m == NULL)
        return;
    bmap_set_done(&m->live);
    if (m->staging != NULL)
        bmap_set_done(m->staging);
    free(m->staging);
    for (size_t i = 0; i < m->n_nodes; i++)
        free(m->nodes[i]);
    free(m->nodes);
    strmap_free(m->node_ids);
    free(m);
}

/* The node called id, given the next slot on first sight. */
static struct bmap_node *bmap_node_get(struct bmap *m, const char *id)
{
    struct bmap_node *n = strmap_get(m->node_ids, id);

    if (n != NULL)
        return n;
    n = xcalloc(1, sizeof(*n));
    snprintf(n->id, sizeof(n->id), "%s", id);
    n->slot = m->n_nodes;
    if (m->n_nodes == m->cap_nodes) {
        m->cap_nodes = m->cap_nodes * 2 + 8;
        m->nodes = xreallocarray(m->nodes, m->cap_nodes, sizeof(*m->nodes));
    }
    m->nodes[m->n_nodes++] = n;
    strmap_put(m->node_ids, n->id, n);
    return n;
}

static struct bmap_tab *bmap_tab_get(struct bmap_set *s, const char *table)
{
    struct bmap_tab *t = strmap_get(s->tables, table);

    if (t == NULL) {
        t = xcalloc(1, sizeof(*t));
        t->name = xstrdup(table);
        strmap_put(s->tables, table, t);
    }
    return t;
}

/* Puts seg in the table called table, and points its table at that table's name. */
static void bmap_tab_add(struct bmap_set *s, struct bmap_seg *seg, const char *table)
{
    struct bmap_tab *t = bmap_tab_get(s, table);

    seg->table = t->name;

    if (t->n == t->cap) {
        t->cap = t->cap * 2 + 16;
        t->segs = xreallocarray(t->segs, t->cap, sizeof(*t->segs));
    }
    t->segs[t->n++] = seg;
    t->dirty = true;
}

/* Takes seg out of its table; a table left empty goes. Linear: tables rarely lose segments. */
static void bmap_tab_remove(struct bmap_set *s, struct bmap_seg *seg)
{
    struct bmap_tab *t = strmap_get(s->tables, seg->table);

    if (t == NULL)
        return;
    for (size_t i = 0; i < t->n; i++) {
        if (t->segs[i] == seg) {
            memmove(&t->segs[i], &t->segs[i + 1], (t->n - i - 1) * sizeof(*t->segs));
            t->n--;
            break;
        }
    }
    if (t->n == 0) {
        strmap_remove(s->tables, seg->table);
        bmap_free_tab(NULL, t, NULL);
    }
}

/* The static name of a segment state: one of the three, or "" for another. */
static const char *bmap_state_name(const char *state)
{
    static const char *const names[] = {"PENDING", "LOADED", "INVALID"};

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(state, names[i]) == 0)
            return names[i];
    return "";
}

/*
 * One segment of an answer into set s, replacing what s had of it; one
 * REMOVED (taken back by the operator) leaves s.
 */
static void bmap_put_seg(struct bmap *m, struct bmap_set *s, const struct wire_placed_segment *p)
{
    struct bmap_seg *seg = keymap_get(s->by_id, p->segment_id);
    size_t id_len;

    if (strcmp(p->state, "REMOVED") == 0) {
        if (seg != NULL) {
            bmap_tab_remove(s, seg);
            keymap_remove(s->by_id, seg->id);
            bmap_free_seg(NULL, seg, NULL);
        }
        return;
    }
    if (seg == NULL) {
        id_len = strnlen(p->segment_id, WIRE_ID_MAX);
        seg = xcalloc(1, sizeof(*seg) + id_len + 1);
        memcpy(seg->id, p->segment_id, id_len);
        keymap_put(s->by_id, seg);
        bmap_tab_add(s, seg, p->table);
    } else if (strcmp(seg->table, p->table) != 0) {
        bmap_tab_remove(s, seg);
        bmap_tab_add(s, seg, p->table);
    }
    seg->state = bmap_state_name(p->state);
    if (seg->slots != &seg->one_slot)
        free(seg->slots);
    seg->slots = p->n_nodes <= 1 ? &seg->one_slot : xcalloc(p->n_nodes, sizeof(*seg->slots));
    seg->n_slots = 0;
    for (size_t i = 0; i < p->n_nodes; i++) {
        size_t slot = bmap_node_get(m, p->node_ids[i])->slot;
        bool dup = false;

        for (size_t j = 0; j < seg->n_slots; j++)
            dup = dup || seg->slots[j] == slot;
        if (!dup)
            seg->slots[seg->n_slots++] = slot;
    }
}

void bmap_full_begin(struct bmap *m)
{
    if (m->staging != NULL)
        bmap_set_done(m->staging);
    else
        m->staging = xcalloc(1, sizeof(*m->staging));
    bmap_set_init(m->staging);
    m->staging_epoch = 0;
    m->staging_version = 0;
}

int bmap_full_end(struct bmap *m)
{
    if (m->staging == NULL)
        return -EINVAL;
    bmap_set_done(&m->live);
    m->live = *m->staging;
    free(m->staging);
    m->staging = NULL;
    m->epoch = m->staging_epoch;
    m->version = m->staging_version;
    m->ready = true;
    return 0;
}

int bmap_apply(struct bmap *m, const struct wire_placement_map *pm)
{
    struct bmap_set *s = &m->live;

    if (pm->full) {
        if (m->staging == NULL)
            return -EINVAL;
        s = m->staging;
        if (m->staging_epoch == 0) { /* the first page */
            m->staging_epoch = pm->epoch;
            m->staging_version = pm->version;
        }
    } else if (pm->epoch != m->epoch || !m->ready) {
        return -ESTALE;
    }
    for (size_t i = 0; i < m->n_nodes; i++)
        m->nodes[i]->state[0] = '\0';
    for (size_t i = 0; i < pm->n_nodes; i++) {
        const struct wire_placed_node *p = &pm->nodes[i];
        struct bmap_node *n = bmap_node_get(m, p->node_id);

        snprintf(n->addr, sizeof(n->addr), "%s", p->addr);
        snprintf(n->state, sizeof(n->state), "%s", p->state);
        n->p99_seconds = p->p99_seconds;
        n->queries_in_flight = p->queries_in_flight;
    }
    for (size_t i = 0; i < pm->n_segments; i++)
        bmap_put_seg(m, s, &pm->segments[i]);
    if (!pm->full)
        m->version = pm->version;
    return 0;
}

uint64_t bmap_epoch(const struct bmap *m)
{
    return m->epoch;
}

uint64_t bmap_version(const struct bmap *m)
{
    return m->version;
}

bool bmap_ready(const struct bmap *m)
{
    return m->ready;
}

static int bmap_cmp_seg(const void *a, const void *b)
{
    return strcmp((*(struct bmap_seg *const *)a)->id, (*(struct bmap_seg *const *)b)->id);
}

size_t bmap_table(struct bmap *m, const char *table, const struct bmap_seg *const **ret)
{
    struct bmap_tab *t = strmap_get(m->live.tables, table);

    *ret = NULL;
    if (t == NULL)
        return 0;
    if (t->dirty) {
        qsort(t->segs, t->n, sizeof(*t->segs), bmap_cmp_seg);
        t->dirty = false;
    }
    *ret = (const struct bmap_seg *const *)t->segs;
    return t->n;
}

size_t bmap_slots(const struct bmap *m)
{
    return m->n_nodes;
}

const struct bmap_node *bmap_node_at(const struct bmap *m, size_t slot)
{
    return slot < m->n_nodes ? m->nodes[slot] : NULL;
}

const struct bmap_node *bmap_node(const struct bmap *m, const char *id)
{
    return strmap_get(m->node_ids, id);
}

size_t bmap_count(const struct bmap *m)
{
    return keymap_count(m->live.by_id);
}
