/*
 * placer: blind round-robin placement of segments on nodes, as pure logic.
 *
 * Every pending segment is in exactly one place:
 *   urgent FIFO   retry after an answer, woken from a wait, backoff ended;
 *   ready FIFO    newly wanted (served after urgent);
 *   heap          backing off after a full round of refusals, or waiting for
 *                 the earliest Retry-After of the only nodes left for it;
 *   node lists    waiting for a slot on any of its candidate nodes, all of
 *                 which are at max_in_flight_per_node (one link per node, in
 *                 the (segment, node) record);
 *   parked list   no eligible node at all (fewer UP nodes than replicas);
 *   nowhere       every copy it still needs is in flight.
 * Each queue is left only through an event that can change the outcome (an
 * answer, a freed slot, a timer, a membership change), so a tick touches only
 * segments it can act on. A segment holds one small record per node it ever
 * touched: holder, in flight, refused in this round, said 422, excluded
 * until, last answer. Attempts live in a slab; the attempt id carries a
 * sequence number and the slab index, so lookups need no hash and a reused
 * index never matches a stale id.
 *
 * Public functions are not reentrant: callbacks run with p->busy set, and a
 * callback that calls back in gets -EBUSY, so no structure changes under a
 * loop that is walking it.
 */
#include "placer.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "xmalloc.h"

#define NONE32 UINT32_MAX

enum {
    SLOT_HOLDER = 1u << 0,    /* holds it (catalog) or accepted it (202) */
    SLOT_IN_FLIGHT = 1u << 1, /* an attempt is in flight */
    SLOT_REFUSED = 1u << 2,   /* refused in the current round */
    SLOT_INVALID = 1u << 3,   /* answered 422: never asked again */
    SLOT_WAITING = 1u << 4,   /* linked on the node's capacity wait list */
};

enum seg_queue { Q_NONE = 0, Q_URGENT, Q_READY, Q_PARKED, Q_WAIT_CAP, Q_TIMER };

struct seg;

/* What one segment knows about one node. */
struct slot {
    struct seg *seg;            /* owner, for wait-list wake-ups */
    struct slot *wprev, *wnext; /* node's capacity wait list */
    uint64_t excluded_until;    /* not sent before this time */
    uint64_t last_at;           /* when the last answer came */
    uint32_t node;              /* ring index */
    uint32_t attempt;           /* slab index while SLOT_IN_FLIGHT */
    uint32_t last_retry_ms;
    int32_t last_status;
    uint8_t last_outcome; /* 0: none yet, else placer_outcome + 1 */
    uint8_t last_reason;
    uint8_t flags;
};

struct seg {
    const char *id, *uri; /* copies, or the caller's (placer_config.borrow_strings) */
    uint64_t hash, row_count, avg_row_size;
    struct seg *prev, *next; /* urgent, ready or parked list */
    struct slot *slots;
    uint32_t n_slots, cap_slots;
    size_t heap_idx;
    uint64_t wake_at;         /* while Q_TIMER */
    uint32_t round_min_retry; /* earliest Retry-After in this round; UINT32_MAX: none */
    uint32_t rand;            /* random input of the last refusal, for jitter */
    uint16_t wanted;
    uint8_t q;
    bool backoff; /* Q_TIMER for a round backoff, not a retry wait */
};

struct seg_list {
    struct seg *head, *tail;
    size_t n;
};

struct attempt {
    uint64_t id; /* 0 when free */
    struct seg *seg;
    uint32_t node;
    uint32_t prev, next; /* node's in-flight list; next links the free list */
};

struct pnode {
    char *id;
    uint64_t hash;
    enum placer_node_state state;
    uint32_t idx;
    size_t in_flight;
    size_t limit; /* in-flight bound: max_in_flight_per_node unless placer_node_set_limit() */
    uint32_t att_head;
    struct slot *wait_head, *wait_tail;
    size_t n_waiting;
    bool in_wake;
    uint32_t wake_next;
    uint64_t assigned_total;
    uint64_t outcomes_total[PLACER_OUTCOME_COUNT_];
};

struct pmap_ent {
    const char *key; /* points into the value */
    uint64_t hash;
    void *val; /* NULL: empty */
};

/* Open addressing, linear probing, backward-shift deletion, load <= 1/2. */
struct pmap {
    struct pmap_ent *e;
    size_t cap, n;
};

struct placer {
    struct placer_config cfg;
    const struct placer_ops *ops;
    void *ctx;
    bool busy;
    uint64_t now; /* latest now_ms seen, for answers recorded without one */

    struct pmap segs, nodes;
    struct pnode **ring;
    uint32_t n_nodes, cap_nodes;
    uint32_t *marks; /* per ring index: slot index + 1 of the segment being scanned */
    uint32_t cursor;
    uint32_t n_up, n_up_free;
    uint32_t wake_head; /* nodes with freed slots and waiters */

    struct seg_list urgent, ready, parked;
    struct seg **heap;
    size_t heap_n, heap_cap;
    size_t n_wait_cap, n_backoff, n_wait_retry;

    struct attempt *att;
    uint32_t n_att, cap_att, att_free, att_seq;
    size_t in_flight;

    struct placer_stats st; /* the counters; gauges are filled in on demand */
};

/* ---- hash map ---------------------------------------------------------- */

static uint64_t placer_hash(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

static void *pmap_get(const struct pmap *m, const char *key, uint64_t h)
{
    if (m->cap == 0)
        return NULL;
    for (size_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        const struct pmap_ent *e = &m->e[i];

        if (e->val == NULL)
            return NULL;
        if (e->hash == h && strcmp(e->key, key) == 0)
            return e->val;
    }
}

static void pmap_insert(struct pmap_ent *tab, size_t cap, const char *key, uint64_t h, void *val)
{
    size_t i = h & (cap - 1);

    while (tab[i].val != NULL)
        i = (i + 1) & (cap - 1);
    tab[i] = (struct pmap_ent){key, h, val};
}

/* The key must not be present yet. */
static void pmap_put(struct pmap *m, const char *key, uint64_t h, void *val)
{
    if ((m->n + 1) * 2 > m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 16;
        struct pmap_ent *ne = xcalloc(ncap, sizeof(*ne));

        for (size_t i = 0; i < m->cap; i++)
            if (m->e[i].val != NULL)
                pmap_insert(ne, ncap, m->e[i].key, m->e[i].hash, m->e[i].val);
        free(m->e);
        m->e = ne;
        m->cap = ncap;
    }
    pmap_insert(m->e, m->cap, key, h, val);
    m->n++;
}

static void pmap_del(struct pmap *m, const char *key, uint64_t h)
{
    size_t mask = m->cap - 1, i, j;

    if (m->cap == 0)
        return;
    for (i = h & mask;; i = (i + 1) & mask) {
        if (m->e[i].val == NULL)
            return;
        if (m->e[i].hash == h && strcmp(m->e[i].key, key) == 0)
            break;
    }
    /* Shift back every later entry of the cluster that may live at i. */
    for (j = i;;) {
        size_t k;

        j = (j + 1) & mask;
        if (m->e[j].val == NULL)
            break;
        k = m->e[j].hash & mask;
        if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
            continue; /* home between the hole and j: must stay */
        m->e[i] = m->e[j];
        i = j;
    }
    m->e[i] = (struct pmap_ent){NULL, 0, NULL};
    m->n--;
}

/* ---- lists and heap ---------------------------------------------------- */

static void list_push_back(struct seg_list *l, struct seg *s)
{
    s->next = NULL;
    s->prev = l->tail;
    if (l->tail)
        l->tail->next = s;
    else
        l->head = s;
    l->tail = s;
    l->n++;
}

static void list_push_front(struct seg_list *l, struct seg *s)
{
    s->prev = NULL;
    s->next = l->head;
    if (l->head)
        l->head->prev = s;
    else
        l->tail = s;
    l->head = s;
    l->n++;
}

static void list_remove(struct seg_list *l, struct seg *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        l->head = s->next;
    if (s->next)
        s->next->prev = s->prev;
    else
        l->tail = s->prev;
    s->prev = s->next = NULL;
    l->n--;
}

static void heap_set(struct placer *p, size_t i, struct seg *s)
{
    p->heap[i] = s;
    s->heap_idx = i;
}

static void heap_up(struct placer *p, size_t i)
{
    struct seg *s = p->heap[i];

    while (i > 0) {
        size_t parent = (i - 1) / 2;

        if (p->heap[parent]->wake_at <= s->wake_at)
            break;
        heap_set(p, i, p->heap[parent]);
        i = parent;
    }
    heap_set(p, i, s);
}

static void heap_down(struct placer *p, size_t i)
{
    struct seg *s = p->heap[i];

    for (;;) {
        size_t c = 2 * i + 1;

        if (c >= p->heap_n)
            break;
        if (c + 1 < p->heap_n && p->heap[c + 1]->wake_at < p->heap[c]->wake_at)
            c++;
        if (s->wake_at <= p->heap[c]->wake_at)
            break;
        heap_set(p, i, p->heap[c]);
        i = c;
    }
    heap_set(p, i, s);
}

static void heap_push(struct placer *p, struct seg *s)
{
    if (p->heap_n == p->heap_cap) {
        p->heap_cap = p->heap_cap ? p->heap_cap * 2 : 64;
        p->heap = xreallocarray(p->heap, p->heap_cap, sizeof(*p->heap));
    }
    heap_set(p, p->heap_n++, s);
    heap_up(p, p->heap_n - 1);
}

static void heap_remove(struct placer *p, struct seg *s)
{
    size_t i = s->heap_idx;
    struct seg *last = p->heap[--p->heap_n];

    assert(i <= p->heap_n && p->heap[i] == s);
    if (last == s)
        return;
    heap_set(p, i, last);
    if (i > 0 && p->heap[(i - 1) / 2]->wake_at > last->wake_at)
        heap_up(p, i);
    else
        heap_down(p, i);
}

/* ---- nodes ------------------------------------------------------------- */

static bool node_free(const struct placer *p, const struct pnode *n)
{
    return n->state == PLACER_NODE_UP && n->in_flight < n->limit;
}

/* Puts a node with a free slot and waiters on the list the next tick serves. */
static void node_arm_wake(struct placer *p, struct pnode *n)
{
    if (node_free(p, n) && n->n_waiting > 0 && !n->in_wake) {
        n->in_wake = true;
        n->wake_next = p->wake_head;
        p->wake_head = n->idx;
    }
}

/* After a change to a node's state or load: keeps the counters true. */
static void node_account(struct placer *p, struct pnode *n, bool was_up, bool was_free)
{
    p->n_up += (uint32_t)(n->state == PLACER_NODE_UP) - (uint32_t)was_up;
    p->n_up_free += (uint32_t)node_free(p, n) - (uint32_t)was_free;
    node_arm_wake(p, n);
}

static struct pnode *node_find(const struct placer *p, const char *id)
{
    return pmap_get(&p->nodes, id, placer_hash(id));
}

static struct pnode *node_register(struct placer *p, const char *id,
                                   enum placer_node_state state)
{
    struct pnode *n = xcalloc(1, sizeof(*n));

    n->id = xstrdup(id);
    n->hash = placer_hash(id);
    n->state = state;
    n->idx = p->n_nodes;
    n->limit = p->cfg.max_in_flight_per_node;
    n->att_head = NONE32;
    n->wake_next = NONE32;
    if (p->n_nodes == p->cap_nodes) {
        p->cap_nodes = p->cap_nodes ? p->cap_nodes * 2 : 8;
        p->ring = xreallocarray(p->ring, p->cap_nodes, sizeof(*p->ring));
        p->marks = xreallocarray(p->marks, p->cap_nodes, sizeof(*p->marks));
    }
    p->ring[p->n_nodes] = n;
    p->marks[p->n_nodes] = 0;
    p->n_nodes++;
    pmap_put(&p->nodes, n->id, n->hash, n);
    node_account(p, n, false, false);
    return n;
}

/* ---- segments ---------------------------------------------------------- */

static struct slot *slot_find(const struct seg *s, uint32_t node)
{
    for (uint32_t i = 0; i < s->n_slots; i++)
        if (s->slots[i].node == node)
            return &s->slots[i];
    return NULL;
}

static void slots_reserve(struct seg *s, uint32_t n)
{
    /* Wait lists point into the array: it must not move while linked. */
    assert(s->q != Q_WAIT_CAP);
    if (n <= s->cap_slots)
        return;
    s->cap_slots = n < 4 ? 4 : n;
    s->slots = xreallocarray(s->slots, s->cap_slots, sizeof(*s->slots));
}

/* A new slot for a node the segment has none for (the caller knows it has none). */
static struct slot *slot_add(struct seg *s, uint32_t node)
{
    struct slot *sl;

    if (s->n_slots == s->cap_slots)
        slots_reserve(s, s->cap_slots ? s->cap_slots * 2 : 4);
    sl = &s->slots[s->n_slots++];
    memset(sl, 0, sizeof(*sl));
    sl->seg = s;
    sl->node = node;
    sl->attempt = NONE32;
    return sl;
}

static struct slot *slot_get(struct seg *s, uint32_t node)
{
    struct slot *sl = slot_find(s, node);

    return sl != NULL ? sl : slot_add(s, node);
}

static struct placer_segment seg_view(const struct seg *s)
{
    return (struct placer_segment){s->id, s->uri, s->row_count, s->avg_row_size, s->wanted};
}

/* Copies still missing, counting those in flight as on their way. */
static int seg_need(const struct seg *s, unsigned *ret_in_flight)
{
    unsigned have = 0, fl = 0;

    for (uint32_t i = 0; i < s->n_slots; i++) {
        uint8_t f = s->slots[i].flags;

        if (f & (SLOT_HOLDER | SLOT_IN_FLIGHT))
            have++;
        if (f & SLOT_IN_FLIGHT)
            fl++;
    }
    *ret_in_flight = fl;
    return (int)s->wanted - (int)have;
}

static void seg_unqueue(struct placer *p, struct seg *s)
{
    switch ((enum seg_queue)s->q) {
    case Q_NONE:
        break;
    case Q_URGENT:
        list_remove(&p->urgent, s);
        break;
    case Q_READY:
        list_remove(&p->ready, s);
        break;
    case Q_PARKED:
        list_remove(&p->parked, s);
        break;
    case Q_WAIT_CAP:
        for (uint32_t i = 0; i < s->n_slots; i++) {
            struct slot *sl = &s->slots[i];
            struct pnode *n = p->ring[sl->node];

            if (!(sl->flags & SLOT_WAITING))
                continue;
            if (sl->wprev)
                sl->wprev->wnext = sl->wnext;
            else
                n->wait_head = sl->wnext;
            if (sl->wnext)
                sl->wnext->wprev = sl->wprev;
            else
                n->wait_tail = sl->wprev;
            sl->wprev = sl->wnext = NULL;
            sl->flags &= (uint8_t)~SLOT_WAITING;
            n->n_waiting--;
        }
        p->n_wait_cap--;
        break;
    case Q_TIMER:
        heap_remove(p, s);
        if (s->backoff)
            p->n_backoff--;
        else
            p->n_wait_retry--;
        s->backoff = false;
        break;
    }
    s->q = Q_NONE;
}

static void seg_push(struct placer *p, struct seg *s, enum seg_queue q)
{
    assert(s->q == Q_NONE);
    s->q = (uint8_t)q;
    list_push_back(q == Q_URGENT ? &p->urgent : q == Q_READY ? &p->ready : &p->parked, s);
}

static void seg_timer(struct placer *p, struct seg *s, uint64_t at, bool backoff)
{
    assert(s->q == Q_NONE);
    s->q = Q_TIMER;
    s->wake_at = at;
    s->backoff = backoff;
    if (backoff)
        p->n_backoff++;
    else
        p->n_wait_retry++;
    heap_push(p, s);
}

/* Frees an attempt: the node gets its slot back, the pair is no longer in flight. */
static void att_release(struct placer *p, uint32_t ai)
{
    struct attempt *a = &p->att[ai];
    struct pnode *n = p->ring[a->node];
    struct slot *sl = slot_find(a->seg, a->node);
    bool was_up = n->state == PLACER_NODE_UP, was_free = node_free(p, n);

    assert(sl != NULL && (sl->flags & SLOT_IN_FLIGHT) && sl->attempt == ai);
    sl->flags &= (uint8_t)~SLOT_IN_FLIGHT;
    sl->attempt = NONE32;
    if (a->prev != NONE32)
        p->att[a->prev].next = a->next;
    else
        n->att_head = a->next;
    if (a->next != NONE32)
        p->att[a->next].prev = a->prev;
    n->in_flight--;
    p->in_flight--;
    node_account(p, n, was_up, was_free);
    a->id = 0;
    a->seg = NULL;
    a->prev = NONE32;
    a->next = p->att_free;
    p->att_free = ai;
}

/* Frees a segment's memory (and its strings unless they are borrowed). */
static void seg_free(const struct placer *p, struct seg *s)
{
    free(s->slots);
    if (!p->cfg.borrow_strings) {
        free((char *)(uintptr_t)s->uri);
        free((char *)(uintptr_t)s->id);
    }
    free(s);
}

/* Removes a segment for good; its attempts are abandoned (late answers ignored). */
static void seg_drop(struct placer *p, struct seg *s)
{
    seg_unqueue(p, s);
    for (uint32_t i = 0; i < s->n_slots; i++)
        if (s->slots[i].flags & SLOT_IN_FLIGHT)
            att_release(p, s->slots[i].attempt);
    pmap_del(&p->segs, s->id, s->hash);
    seg_free(p, s);
}

/* Starts a fresh round after a backoff: every node may be asked again. */
static void seg_new_round(struct seg *s)
{
    for (uint32_t i = 0; i < s->n_slots; i++)
        s->slots[i].flags &= (uint8_t)~SLOT_REFUSED;
    s->round_min_retry = UINT32_MAX;
}

struct scan {
    uint32_t candidate; /* ring index, or NONE32 */
    unsigned eligible;  /* UP, not holding it, did not say 422 */
    unsigned in_flight, refused, excluded, full;
    uint64_t min_excluded;
};

static void marks_set(struct placer *p, const struct seg *s)
{
    for (uint32_t i = 0; i < s->n_slots; i++)
        p->marks[s->slots[i].node] = i + 1;
}

static void marks_clear(struct placer *p, const struct seg *s)
{
    for (uint32_t i = 0; i < s->n_slots; i++)
        p->marks[s->slots[i].node] = 0;
}

/*
 * Walks the ring from the cursor and sorts the eligible nodes by what stops
 * them from taking the segment now. With stop, returns at the first node
 * that can take it; otherwise (or when there is none) counts all.
 */
static void seg_scan(struct placer *p, const struct seg *s, uint64_t now, bool stop,
                     struct scan *r)
{
    memset(r, 0, sizeof(*r));
    r->candidate = NONE32;
    r->min_excluded = UINT64_MAX;
    marks_set(p, s);
    for (uint32_t k = 0; k < p->n_nodes; k++) {
        uint32_t idx = (p->cursor + k) % p->n_nodes;
        const struct pnode *n = p->ring[idx];
        const struct slot *sl = p->marks[idx] ? &s->slots[p->marks[idx] - 1] : NULL;

        if (n->state != PLACER_NODE_UP)
            continue;
        if (sl && (sl->flags & (SLOT_HOLDER | SLOT_INVALID)))
            continue;
        r->eligible++;
        if (sl && (sl->flags & SLOT_IN_FLIGHT)) {
            r->in_flight++;
        } else if (sl && (sl->flags & SLOT_REFUSED)) {
            r->refused++;
        } else if (sl && sl->excluded_until > now) {
            r->excluded++;
            if (sl->excluded_until < r->min_excluded)
                r->min_excluded = sl->excluded_until;
        } else if (n->in_flight >= n->limit) {
            r->full++;
        } else if (r->candidate == NONE32) {
            r->candidate = idx;
            if (stop)
                break;
        }
    }
    marks_clear(p, s);
}

/*
 * Every eligible node refused in this round: back off until the earliest
 * Retry-After among them, jittered only earlier, never later. Each refusing
 * node also keeps its own exclusion until its own Retry-After, so the fresh
 * round asks only the nodes that said they might take it by then; waiting
 * for the largest would hold a segment for a minute because one full node
 * said "go elsewhere" while another only had its load slots busy for a
 * quarter second. The nodes already jitter their Retry-After: jitter on top
 * of it that could land later only held segments past the time the node
 * named (by up to jitter_percent of it); landing earlier costs nothing, the
 * fresh round then waits for the node's own exclusion to end.
 */
static void seg_backoff(struct placer *p, struct seg *s, uint64_t now, uint64_t cap_at)
{
    uint64_t base = s->round_min_retry != UINT32_MAX ? s->round_min_retry
                                                      : p->cfg.default_retry_ms;
    uint64_t span = base * p->cfg.jitter_percent / 100;
    uint64_t d = base - span + (((uint64_t)s->rand * (span + 1)) >> 32);
    struct placer_segment v = seg_view(s);

    if (d > p->cfg.max_retry_ms)
        d = p->cfg.max_retry_ms;
    /* A node excluded for another reason may come back even sooner. */
    if (cap_at > now && cap_at - now < d)
        d = cap_at - now;
    if (d == 0)
        d = 1;
    seg_timer(p, s, now + d, true);
    p->st.backoffs_total++;
    log_debug("placer_backoff", "segment=%s until_ms=%" PRIu64, s->id, now + d);
    if (p->ops->on_backoff)
        p->ops->on_backoff(p->ctx, &v, now + d);
}

/*
 * No node can take the segment now: put it where the event that can change
 * that will find it. Capacity first (a slot always frees: every attempt ends),
 * then its own attempts, then the earliest Retry-After, then the backoff.
 */
static void seg_wait(struct placer *p, struct seg *s, const struct scan *r, uint64_t now)
{
    assert(s->q == Q_NONE);
    if (r->full > 0) {
        slots_reserve(s, s->n_slots + r->full);
        marks_set(p, s);
        for (uint32_t idx = 0; idx < p->n_nodes; idx++) {
            struct pnode *n = p->ring[idx];
            struct slot *sl = p->marks[idx] ? &s->slots[p->marks[idx] - 1] : NULL;

            if (n->state != PLACER_NODE_UP || n->in_flight < n->limit)
                continue;
            if (sl && ((sl->flags & (SLOT_HOLDER | SLOT_INVALID | SLOT_IN_FLIGHT |
                                     SLOT_REFUSED)) ||
                       sl->excluded_until > now))
                continue;
            if (sl == NULL) {
                /* The marks say it has none: no linear search (1,000 full nodes made it N^2). */
                sl = slot_add(s, idx);
                p->marks[idx] = s->n_slots;
            }
            sl->flags |= SLOT_WAITING;
            sl->wnext = NULL;
            sl->wprev = n->wait_tail;
            if (n->wait_tail)
                n->wait_tail->wnext = sl;
            else
                n->wait_head = sl;
            n->wait_tail = sl;
            n->n_waiting++;
        }
        marks_clear(p, s);
        s->q = Q_WAIT_CAP;
        p->n_wait_cap++;
    } else if (r->in_flight > 0) {
        /* An answer will bring it back. */
    } else if (r->refused > 0) {
        /*
         * Every eligible node refused in this round or is excluded: back off
         * until the earliest of their Retry-Afters, not the excluded ones'.
         */
        seg_backoff(p, s, now, r->excluded > 0 ? r->min_excluded : UINT64_MAX);
    } else if (r->excluded > 0) {
        seg_timer(p, s, r->min_excluded, false);
    } else {
        seg_push(p, s, Q_PARKED);
    }
}

/*
 * After an answer: drop it if done, leave a backoff alone, else queue it for
 * the next tick if some node can take it now, or park it where it belongs.
 */
static void seg_settle(struct placer *p, struct seg *s, uint64_t now)
{
    unsigned fl;
    int need = seg_need(s, &fl);
    struct scan r;

    if (need <= 0 && fl == 0) {
        seg_drop(p, s);
        return;
    }
    if (s->q == Q_TIMER && s->backoff)
        return;
    seg_unqueue(p, s);
    if (need <= 0)
        return;
    seg_scan(p, s, now, true, &r);
    if (r.candidate != NONE32)
        seg_push(p, s, Q_URGENT);
    else
        seg_wait(p, s, &r, now);
}

/* Like seg_settle() without a clock: the next tick sorts it out. */
static void seg_requeue(struct placer *p, struct seg *s)
{
    unsigned fl;
    int need = seg_need(s, &fl);

    if (need <= 0 && fl == 0) {
        seg_drop(p, s);
        return;
    }
    if ((s->q == Q_TIMER && s->backoff) || s->q == Q_URGENT || s->q == Q_READY)
        return;
    seg_unqueue(p, s);
    if (need > 0)
        seg_push(p, s, Q_URGENT);
}

static void seg_fire(struct placer *p, struct seg *s, uint32_t idx)
{
    struct pnode *n = p->ring[idx];
    struct slot *sl = slot_get(s, idx);
    bool was_free = node_free(p, n);
    struct placer_segment v = seg_view(s);
    struct attempt *a;
    uint32_t ai;

    assert(!(sl->flags & (SLOT_IN_FLIGHT | SLOT_HOLDER)));
    if (p->att_free != NONE32) {
        ai = p->att_free;
        p->att_free = p->att[ai].next;
    } else {
        if (p->n_att == p->cap_att) {
            p->cap_att = p->cap_att ? p->cap_att * 2 : 256;
            p->att = xreallocarray(p->att, p->cap_att, sizeof(*p->att));
        }
        ai = p->n_att++;
    }
    if (++p->att_seq == 0)
        p->att_seq = 1;
    a = &p->att[ai];
    a->id = (uint64_t)p->att_seq << 32 | ai;
    a->seg = s;
    a->node = idx;
    a->prev = NONE32;
    a->next = n->att_head;
    if (n->att_head != NONE32)
        p->att[n->att_head].prev = ai;
    n->att_head = ai;
    sl->flags |= SLOT_IN_FLIGHT;
    sl->attempt = ai;
    n->in_flight++;
    p->in_flight++;
    node_account(p, n, true, was_free);
    n->assigned_total++;
    p->st.attempts_total++;
    p->cursor = (idx + 1) % p->n_nodes;
    p->ops->assign(p->ctx, a->id, n->id, &v);
}

/*
 * Fires every copy the segment needs that some node can take now, then
 * parks it. Returns false when the global in-flight bound stopped it (it is
 * then back at the head of the urgent queue).
 */
static bool seg_dispatch(struct placer *p, struct seg *s, uint64_t now, int *fired)
{
    for (;;) {
        unsigned fl;
        int need = seg_need(s, &fl);
        struct scan r;

        if (need <= 0) {
            if (fl == 0)
                seg_drop(p, s);
            return true;
        }
        if (p->in_flight >= p->cfg.max_in_flight_total) {
            s->q = Q_URGENT;
            list_push_front(&p->urgent, s);
            return false;
        }
        seg_scan(p, s, now, true, &r);
        if (r.candidate == NONE32) {
            seg_wait(p, s, &r, now);
            return true;
        }
        seg_fire(p, s, r.candidate);
        (*fired)++;
    }
}

/*
 * New capacity on node n (it came UP, or it accepted a segment): wakes up to
 * budget segments that are backing off and that n could take now, instead
 * of leaving them to wait out a back-off that other nodes' refusals set
 * (minutes at MEM_CAPACITY and DISK_FULL retries). Bounded, so a node that
 * joins while 10^5 segments back off is no stampede: it gets budget of
 * them at once, then one more per segment it accepts (self-clocked by its
 * own answers), and at most PLACER_WAKE_SCAN heap entries are examined per
 * call. A woken segment keeps its round: the nodes that refused it stay
 * excluded until their own Retry-After.
 */
#define PLACER_WAKE_SCAN 256
static void node_wake_backoff(struct placer *p, struct pnode *n, unsigned budget)
{
    size_t i = 0, examined = 0;

    if (n->state != PLACER_NODE_UP)
        return;
    while (budget > 0 && p->n_backoff > 0 && i < p->heap_n && examined < PLACER_WAKE_SCAN) {
        struct seg *s = p->heap[i];
        const struct slot *sl = slot_find(s, n->idx);

        examined++;
        if (!s->backoff ||
            (sl != NULL && ((sl->flags & (SLOT_HOLDER | SLOT_INVALID | SLOT_IN_FLIGHT |
                                          SLOT_REFUSED)) ||
                            sl->excluded_until > p->now))) {
            i++;
            continue;
        }
        /* The heap refills index i: look at it again. */
        seg_unqueue(p, s);
        seg_push(p, s, Q_URGENT);
        p->st.capacity_wakes_total++;
        budget--;
    }
}

/* Changes a node's state with its consequences; see placer_node_set(). */
static void node_change_state(struct placer *p, struct pnode *n, enum placer_node_state st)
{
    enum placer_node_state old = n->state;
    bool was_free = node_free(p, n);

    if (old == st)
        return;
    n->state = st;
    node_account(p, n, old == PLACER_NODE_UP, was_free);
    log_debug("placer_node_state", "node=%s state=%s->%s", n->id, placer_node_state_name(old),
              placer_node_state_name(st));
    if (old == PLACER_NODE_UP) {
        /* Its waiters must look for another node. */
        while (n->wait_head != NULL) {
            struct seg *s = n->wait_head->seg;

            seg_unqueue(p, s);
            seg_push(p, s, Q_URGENT);
        }
    }
    if (st == PLACER_NODE_DOWN || st == PLACER_NODE_SUSPECT) {
        while (n->att_head != NONE32) {
            uint32_t ai = n->att_head;
            struct seg *s = p->att[ai].seg;
            struct slot *sl = slot_find(s, n->idx);

            sl->last_outcome = PLACER_TRANSPORT_ERROR + 1;
            sl->last_status = 0;
            sl->last_reason = WIRE_REASON_NONE;
            sl->last_retry_ms = 0;
            sl->last_at = p->now;
            att_release(p, ai);
            p->st.outcomes_total[PLACER_TRANSPORT_ERROR]++;
            n->outcomes_total[PLACER_TRANSPORT_ERROR]++;
            p->st.aborted_total++;
            seg_requeue(p, s);
        }
    }
    if (st == PLACER_NODE_UP) {
        while (p->parked.head != NULL) {
            struct seg *s = p->parked.head;

            seg_unqueue(p, s);
            seg_push(p, s, Q_URGENT);
        }
        node_wake_backoff(p, n, p->cfg.max_in_flight_per_node);
    }
}

static bool placer_id_ok(const char *id)
{
    size_t len = id ? strnlen(id, WIRE_ID_MAX + 1) : 0;

    return len > 0 && len <= WIRE_ID_MAX;
}

/* ---- public ------------------------------------------------------------ */

struct placer *placer_new(const struct placer_config *cfg, const struct placer_ops *ops,
                          void *ctx)
{
    struct placer *p = xcalloc(1, sizeof(*p));

    assert(ops != NULL && ops->assign != NULL);
    if (cfg)
        p->cfg = *cfg;
    if (p->cfg.max_in_flight_per_node == 0)
        p->cfg.max_in_flight_per_node = 64;
    if (p->cfg.max_in_flight_total == 0)
        p->cfg.max_in_flight_total = 4096;
    if (p->cfg.invalid_quorum == 0)
        p->cfg.invalid_quorum = 2;
    if (p->cfg.jitter_percent == 0)
        p->cfg.jitter_percent = 20;
    if (p->cfg.jitter_percent > 50)
        p->cfg.jitter_percent = 50;
    if (p->cfg.default_retry_ms == 0)
        p->cfg.default_retry_ms = 1000;
    if (p->cfg.max_retry_ms == 0)
        p->cfg.max_retry_ms = 600000;
    if (p->cfg.unexpected_retry_ms == 0)
        p->cfg.unexpected_retry_ms = 30000;
    p->ops = ops;
    p->ctx = ctx;
    p->wake_head = NONE32;
    p->att_free = NONE32;
    return p;
}

void placer_free(struct placer *p)
{
    if (p == NULL)
        return;
    assert(!p->busy);
    for (size_t i = 0; i < p->segs.cap; i++) {
        struct seg *s = p->segs.e[i].val;

        if (s != NULL)
            seg_free(p, s);
    }
    for (uint32_t i = 0; i < p->n_nodes; i++) {
        free(p->ring[i]->id);
        free(p->ring[i]);
    }
    free(p->segs.e);
    free(p->nodes.e);
    free(p->ring);
    free(p->marks);
    free(p->heap);
    free(p->att);
    free(p);
}

int placer_node_set(struct placer *p, const char *node_id, enum placer_node_state state)
{
    struct pnode *n;

    if (!placer_id_ok(node_id) || (unsigned)state >= PLACER_NODE_STATE_COUNT_)
        return -EINVAL;
    if (p->busy)
        return -EBUSY;
    p->busy = true;
    n = node_find(p, node_id);
    if (n == NULL) {
        n = node_register(p, node_id, PLACER_NODE_DOWN);
        log_debug("placer_node_new", "node=%s", n->id);
    }
    node_change_state(p, n, state);
    p->busy = false;
    return 0;
}

/* Renumbers a ring index after the node at removed left the ring. */
static uint32_t placer_renumber(uint32_t idx, uint32_t removed)
{
    return idx != NONE32 && idx > removed ? idx - 1 : idx;
}

int placer_node_remove(struct placer *p, const char *node_id)
{
    struct pnode *n;
    uint32_t k;

    if (!placer_id_ok(node_id))
        return -ENOENT;
    if (p->busy)
        return -EBUSY;
    n = node_find(p, node_id);
    if (n == NULL)
        return -ENOENT;
    if (n->state != PLACER_NODE_DOWN)
        return -EINVAL;
    /* DOWN: no attempts in flight, no waiters (both left with UP). */
    assert(n->att_head == NONE32 && n->n_waiting == 0 && n->in_flight == 0);
    p->busy = true;
    k = n->idx;
    /* Out of the wake chain (a node that left UP may still be on it). */
    if (n->in_wake) {
        uint32_t *pp = &p->wake_head;

        while (*pp != NONE32 && *pp != k)
            pp = &p->ring[*pp]->wake_next;
        if (*pp == k)
            *pp = n->wake_next;
        n->in_wake = false;
    }
    p->wake_head = placer_renumber(p->wake_head, k);
    /* Every segment forgets its record of the node; later nodes move down one. */
    for (size_t i = 0; i < p->segs.cap; i++) {
        struct seg *s = p->segs.e[i].val;
        bool requeue = false;

        if (s == NULL)
            continue;
        if (s->q == Q_WAIT_CAP) {
            seg_unqueue(p, s); /* wait lists point into the slot array */
            requeue = true;
        }
        for (uint32_t j = 0; j < s->n_slots;) {
            if (s->slots[j].node == k) {
                s->slots[j] = s->slots[--s->n_slots];
                requeue = true;
                continue;
            }
            s->slots[j].node = placer_renumber(s->slots[j].node, k);
            j++;
        }
        if (requeue && s->q != Q_TIMER) {
            seg_unqueue(p, s);
            seg_requeue(p, s);
        }
    }
    for (uint32_t a = 0; a < p->n_att; a++)
        if (p->att[a].id != 0)
            p->att[a].node = placer_renumber(p->att[a].node, k);
    for (uint32_t i = k + 1; i < p->n_nodes; i++) {
        p->ring[i - 1] = p->ring[i];
        p->ring[i - 1]->idx = i - 1;
        p->ring[i - 1]->wake_next = placer_renumber(p->ring[i - 1]->wake_next, k);
        p->marks[i - 1] = p->marks[i];
    }
    p->n_nodes--;
    if (p->cursor > k)
        p->cursor--;
    if (p->cursor >= p->n_nodes)
        p->cursor = 0;
    pmap_del(&p->nodes, n->id, n->hash);
    log_debug("placer_node_removed", "node=%s", n->id);
    free(n->id);
    free(n);
    p->busy = false;
    return 0;
}

int placer_want(struct placer *p, const char *seg_id, const char *uri, uint64_t row_count,
                uint64_t avg_row_size, unsigned replicas_wanted, const char *const *holders,
                size_t n_holders)
{
    uint64_t h;
    struct seg *s;
    bool fresh = false;

    if (!placer_id_ok(seg_id) || uri == NULL || strnlen(uri, WIRE_URI_MAX + 1) > WIRE_URI_MAX ||
        replicas_wanted == 0 || replicas_wanted > PLACER_REPLICAS_MAX ||
        (n_holders > 0 && holders == NULL))
        return -EINVAL;
    for (size_t i = 0; i < n_holders; i++)
        if (!placer_id_ok(holders[i]))
            return -EINVAL;
    if (p->busy)
        return -EBUSY;
    p->busy = true;
    h = placer_hash(seg_id);
    s = pmap_get(&p->segs, seg_id, h);
    if (s == NULL) {
        s = xcalloc(1, sizeof(*s));
        s->id = p->cfg.borrow_strings ? seg_id : xstrdup(seg_id);
        s->hash = h;
        s->round_min_retry = UINT32_MAX;
        pmap_put(&p->segs, s->id, h, s);
        fresh = true;
    } else {
        if (!p->cfg.borrow_strings)
            free((char *)(uintptr_t)s->uri);
        if (s->q == Q_WAIT_CAP)
            seg_unqueue(p, s); /* the slot array may grow */
    }
    s->uri = p->cfg.borrow_strings ? uri : xstrdup(uri);
    s->row_count = row_count;
    s->avg_row_size = avg_row_size;
    s->wanted = (uint16_t)replicas_wanted;
    for (uint32_t i = 0; i < s->n_slots; i++)
        s->slots[i].flags &= (uint8_t)~SLOT_HOLDER;
    for (size_t i = 0; i < n_holders; i++) {
        struct pnode *n = node_find(p, holders[i]);

        if (n == NULL)
            n = node_register(p, holders[i], PLACER_NODE_DOWN);
        slot_get(s, n->idx)->flags |= SLOT_HOLDER;
    }
    if (fresh) {
        unsigned fl;

        if (seg_need(s, &fl) <= 0)
            seg_drop(p, s);
        else
            seg_push(p, s, Q_READY);
    } else {
        seg_requeue(p, s);
    }
    p->busy = false;
    return 0;
}

int placer_forget(struct placer *p, const char *seg_id)
{
    struct seg *s;

    if (!placer_id_ok(seg_id))
        return -ENOENT;
    if (p->busy)
        return -EBUSY;
    s = pmap_get(&p->segs, seg_id, placer_hash(seg_id));
    if (s == NULL)
        return -ENOENT;
    p->busy = true;
    seg_drop(p, s);
    p->busy = false;
    return 0;
}

int placer_exclude(struct placer *p, const char *seg_id, const char *node_id, uint64_t until_ms)
{
    struct seg *s;
    struct pnode *n;
    struct slot *sl;
    bool requeue = false;

    if (!placer_id_ok(seg_id) || !placer_id_ok(node_id))
        return -EINVAL;
    if (p->busy)
        return -EBUSY;
    s = pmap_get(&p->segs, seg_id, placer_hash(seg_id));
    n = node_find(p, node_id);
    if (s == NULL || n == NULL)
        return -ENOENT;
    p->busy = true;
    if (s->q == Q_WAIT_CAP) {
        seg_unqueue(p, s); /* the slot array may grow */
        requeue = true;
    }
    sl = slot_get(s, n->idx);
    if (until_ms > sl->excluded_until)
        sl->excluded_until = until_ms;
    if (requeue)
        seg_push(p, s, Q_URGENT);
    p->busy = false;
    return 0;
}

int placer_tick(struct placer *p, uint64_t now_ms)
{
    int fired = 0;

    if (p->busy)
        return -EBUSY;
    p->busy = true;
    if (now_ms > p->now)
        p->now = now_ms;

    /* Backoffs and retry waits that ended. */
    while (p->heap_n > 0 && p->heap[0]->wake_at <= now_ms) {
        struct seg *s = p->heap[0];

        if (s->backoff)
            seg_new_round(s);
        seg_unqueue(p, s);
        seg_push(p, s, Q_URGENT);
    }

    /* Waiters of nodes that got slots back, before anything newer. */
    while (p->wake_head != NONE32) {
        struct pnode *n = p->ring[p->wake_head];
        bool stopped = false;

        p->wake_head = n->wake_next;
        n->in_wake = false;
        /* Each round either fires (a woken segment has n as a candidate) or stops. */
        while (node_free(p, n) && n->wait_head != NULL) {
            struct seg *s = n->wait_head->seg;

            seg_unqueue(p, s);
            if (!seg_dispatch(p, s, now_ms, &fired)) {
                stopped = true;
                break;
            }
        }
        if (stopped) {
            node_arm_wake(p, n); /* serve the rest next tick */
            break;
        }
    }

    for (;;) {
        struct seg *s;

        if (p->in_flight >= p->cfg.max_in_flight_total || p->n_up_free == 0)
            break;
        if (p->urgent.head != NULL)
            s = p->urgent.head;
        else if (p->ready.head != NULL)
            s = p->ready.head;
        else
            break;
        seg_unqueue(p, s);
        if (!seg_dispatch(p, s, now_ms, &fired))
            break;
    }
    p->busy = false;
    return fired;
}

uint64_t placer_next_deadline(const struct placer *p)
{
    bool room = p->in_flight < p->cfg.max_in_flight_total;

    if (room && (p->wake_head != NONE32 ||
                 (p->n_up_free > 0 && (p->urgent.n > 0 || p->ready.n > 0))))
        return 0;
    return p->heap_n > 0 ? p->heap[0]->wake_at : UINT64_MAX;
}

int placer_on_answer(struct placer *p, uint64_t attempt_id, const struct placer_answer *a,
                     uint64_t now_ms, uint32_t random)
{
    uint32_t ai = (uint32_t)attempt_id;
    enum placer_outcome oc;
    enum wire_reason reason;
    struct placer_segment v;
    struct pnode *n;
    struct slot *sl;
    struct seg *s;

    if (a == NULL)
        return -EINVAL;
    if (p->busy)
        return -EBUSY;
    if (attempt_id == 0 || ai >= p->n_att || p->att[ai].id != attempt_id) {
        p->st.late_answers_total++;
        return -ENOENT;
    }
    p->busy = true;
    if (now_ms > p->now)
        p->now = now_ms;
    s = p->att[ai].seg;
    n = p->ring[p->att[ai].node];
    att_release(p, ai);
    sl = slot_find(s, n->idx);
    oc = placer_classify(a->http_status);
    reason = (unsigned)a->reason < WIRE_REASON_COUNT_ ? a->reason : WIRE_REASON_NONE;
    sl->last_outcome = (uint8_t)(oc + 1);
    sl->last_status = a->http_status;
    sl->last_reason = (uint8_t)reason;
    sl->last_retry_ms = 0;
    sl->last_at = now_ms;
    p->st.outcomes_total[oc]++;
    n->outcomes_total[oc]++;
    v = seg_view(s);

    switch (oc) {
    case PLACER_ACCEPTED:
        sl->flags |= SLOT_HOLDER;
        if (p->ops->on_accepted)
            p->ops->on_accepted(p->ctx, &v, n->id);
        /* The node has room: one segment that waits out a back-off may try it. */
        node_wake_backoff(p, n, 1);
        break;
    case PLACER_REFUSED: {
        uint32_t retry = a->retry_after_ms ? a->retry_after_ms : p->cfg.default_retry_ms;

        if (retry > p->cfg.max_retry_ms)
            retry = p->cfg.max_retry_ms;
        sl->last_retry_ms = retry;
        sl->flags |= SLOT_REFUSED;
        if (now_ms + retry > sl->excluded_until)
            sl->excluded_until = now_ms + retry;
        if (retry < s->round_min_retry)
            s->round_min_retry = retry;
        s->rand = random;
        p->st.refused_by_reason_total[reason]++;
        /*
         * A DRAINING refusal says the node takes nothing new; what that
         * does to the node is the daemon's to decide (placer_node_set()).
         */
        if (p->ops->on_refused)
            p->ops->on_refused(p->ctx, &v, n->id, reason, retry);
        break;
    }
    case PLACER_INVALID: {
        unsigned said = 0, quorum = p->cfg.invalid_quorum;

        sl->flags |= SLOT_INVALID;
        for (uint32_t i = 0; i < s->n_slots; i++)
            said += (s->slots[i].flags & SLOT_INVALID) != 0;
        /*
         * Distinct nodes, never fewer than the quorum because fewer are UP
         * now (SUSPECT and DRAINING nodes count): one node that cannot read a
         * file proves nothing about it. Only when fewer nodes than the quorum
         * are not DOWN, which could never reach it, do those decide.
         */
        {
            unsigned alive = 0;
            for (uint32_t i = 0; i < p->n_nodes; i++)
                alive += p->ring[i]->state != PLACER_NODE_DOWN;
            if (alive < quorum)
                quorum = alive > 0 ? alive : 1;
        }
        if (said >= quorum && (p->ops->on_invalid == NULL || p->ops->on_invalid(p->ctx, &v))) {
            p->st.invalid_total++;
            log_debug("placer_invalid", "segment=%s nodes=%u", s->id, said);
            seg_drop(p, s);
            p->busy = false;
            return 0;
        }
        break;
    }
    case PLACER_TRANSPORT_ERROR:
        /*
         * The node's state is not the placer's to change: the daemon sees
         * the transport error it passed in, and decides (placer_node_set()
         * once this call has returned). The segment is queued again below.
         */
        break;
    case PLACER_UNEXPECTED:
    case PLACER_OUTCOME_COUNT_:
        if (now_ms + p->cfg.unexpected_retry_ms > sl->excluded_until)
            sl->excluded_until = now_ms + p->cfg.unexpected_retry_ms;
        if (p->ops->on_unexpected)
            p->ops->on_unexpected(p->ctx, &v, n->id, a->http_status);
        break;
    }
    seg_settle(p, s, now_ms);
    p->busy = false;
    return 0;
}

enum placer_outcome placer_classify(int http_status)
{
    switch (http_status) {
    case 202:
        return PLACER_ACCEPTED;
    case 429:
    case 503:
    case 507:
        return PLACER_REFUSED;
    case 422:
        return PLACER_INVALID;
    default:
        return http_status <= 0 ? PLACER_TRANSPORT_ERROR : PLACER_UNEXPECTED;
    }
}

const char *placer_outcome_name(enum placer_outcome o)
{
    static const char *const names[PLACER_OUTCOME_COUNT_] = {
        "ACCEPTED", "REFUSED", "INVALID", "TRANSPORT_ERROR", "UNEXPECTED",
    };

    return (unsigned)o < PLACER_OUTCOME_COUNT_ ? names[o] : "UNKNOWN";
}

const char *placer_node_state_name(enum placer_node_state s)
{
    static const char *const names[PLACER_NODE_STATE_COUNT_] = {
        "UP", "SUSPECT", "DOWN", "DRAINING",
    };

    return (unsigned)s < PLACER_NODE_STATE_COUNT_ ? names[s] : "UNKNOWN";
}

void placer_get_stats(const struct placer *p, struct placer_stats *ret)
{
    *ret = p->st;
    ret->segments = p->segs.n;
    ret->ready = p->urgent.n + p->ready.n;
    ret->backing_off = p->n_backoff;
    ret->waiting_retry = p->n_wait_retry;
    ret->waiting_capacity = p->n_wait_cap;
    ret->waiting_nodes = p->parked.n;
    ret->in_flight = p->in_flight;
}

size_t placer_node_count(const struct placer *p)
{
    return p->n_nodes;
}

static void node_fill_info(const struct pnode *n, struct placer_node_info *ret)
{
    ret->id = n->id;
    ret->state = n->state;
    ret->in_flight = n->in_flight;
    ret->limit = n->limit;
    ret->waiting = n->n_waiting;
    ret->assigned_total = n->assigned_total;
    memcpy(ret->outcomes_total, n->outcomes_total, sizeof(ret->outcomes_total));
}

int placer_node_set_limit(struct placer *p, const char *node_id, size_t limit)
{
    struct pnode *n;
    bool was_free;

    if (!placer_id_ok(node_id))
        return -EINVAL;
    if (p->busy)
        return -EBUSY;
    n = node_find(p, node_id);
    if (n == NULL)
        return -ENOENT;
    if (limit > p->cfg.max_in_flight_per_node)
        limit = p->cfg.max_in_flight_per_node;
    was_free = node_free(p, n);
    n->limit = limit;
    node_account(p, n, n->state == PLACER_NODE_UP, was_free);
    node_arm_wake(p, n); /* more room: its waiters go first at the next tick */
    return 0;
}

int placer_node_info(const struct placer *p, size_t i, struct placer_node_info *ret)
{
    if (i >= p->n_nodes)
        return -ENOENT;
    node_fill_info(p->ring[i], ret);
    return 0;
}

int placer_node_lookup(const struct placer *p, const char *node_id, struct placer_node_info *ret)
{
    const struct pnode *n = placer_id_ok(node_id) ? node_find(p, node_id) : NULL;

    if (n == NULL)
        return -ENOENT;
    node_fill_info(n, ret);
    return 0;
}

/* Appends to buf, keeping it NUL-terminated; *off may run past len (truncation). */
__attribute__((format(printf, 4, 5))) static void explain_add(char *buf, size_t len, size_t *off,
                                                             const char *fmt, ...)
{
    va_list ap;
    int r;

    if (*off >= len)
        return;
    va_start(ap, fmt);
    r = vsnprintf(buf + *off, len - *off, fmt, ap);
    va_end(ap);
    if (r > 0)
        *off += (size_t)r;
}

/* A span of milliseconds for people: "<1 s", "42 s", "3 min 5 s". */
static const char *explain_span(char *buf, size_t len, uint64_t ms)
{
    if (ms < 1000)
        snprintf(buf, len, "<1 s");
    else if (ms < 120000)
        snprintf(buf, len, "%" PRIu64 " s", (ms + 500) / 1000);
    else
        snprintf(buf, len, "%" PRIu64 " min %" PRIu64 " s", ms / 60000, ms % 60000 / 1000);
    return buf;
}

static unsigned explain_up_nodes(const struct placer *p)
{
    unsigned up = 0;

    for (uint32_t i = 0; i < p->n_nodes; i++)
        up += p->ring[i]->state == PLACER_NODE_UP;
    return up;
}

/* Why no node can take the segment now (Q_PARKED), from the ring's states. */
static void explain_no_node(const struct placer *p, char *buf, size_t len, size_t *off)
{
    unsigned by[PLACER_NODE_STATE_COUNT_] = {0};

    for (uint32_t i = 0; i < p->n_nodes; i++)
        by[p->ring[i]->state]++;
    if (p->n_nodes == 0) {
        explain_add(buf, len, off, "no node has joined yet");
        return;
    }
    if (by[PLACER_NODE_UP] > 0) {
        explain_add(buf, len, off,
                    "each of the %u UP node%s holds it, refused its file, or is not asked "
                    "again yet",
                    by[PLACER_NODE_UP], by[PLACER_NODE_UP] == 1 ? "" : "s");
        return;
    }
    explain_add(buf, len, off, "no node is UP (");
    for (int st = 1, first = 1; st < PLACER_NODE_STATE_COUNT_; st++) {
        if (by[st] == 0)
            continue;
        explain_add(buf, len, off, "%s%u %s", first ? "" : ", ", by[st],
                    placer_node_state_name((enum placer_node_state)st));
        first = 0;
    }
    explain_add(buf, len, off, ")%s",
                by[PLACER_NODE_DRAINING] == p->n_nodes
                    ? ": every node is DRAINING; `sluice-coord undrain NODE` to place again"
                    : "");
}

int placer_explain(const struct placer *p, const char *seg_id, uint64_t now_ms, char *buf,
                   size_t len)
{
    const struct seg *s = placer_id_ok(seg_id) ? pmap_get(&p->segs, seg_id, placer_hash(seg_id))
                                               : NULL;
    unsigned fl, holders = 0, invalid = 0;
    size_t off = 0;
    char t1[32], t2[32];
    int need;

    if (s == NULL)
        return -ENOENT;
    if (len == 0)
        return 0;
    buf[0] = '\0';
    need = seg_need(s, &fl);
    for (uint32_t i = 0; i < s->n_slots; i++) {
        holders += (s->slots[i].flags & SLOT_HOLDER) != 0;
        invalid += (s->slots[i].flags & SLOT_INVALID) != 0;
    }
    explain_add(buf, len, &off, "PENDING: %u of %u cop%s held or loading, %u assignment%s out. ",
                holders, (unsigned)s->wanted, s->wanted == 1 ? "y" : "ies", fl,
                fl == 1 ? "" : "s");
    switch ((enum seg_queue)s->q) {
    case Q_NONE:
        explain_add(buf, len, &off, "Waiting for the nodes' answers.");
        break;
    case Q_URGENT:
    case Q_READY:
        if (explain_up_nodes(p) > 0) {
            explain_add(buf, len, &off, "Queued for the next placement round.");
            break;
        }
        /* Queued, but the round will find no node: say why now. */
        /* fall through */
    case Q_PARKED:
        explain_add(buf, len, &off, "Waiting for a node that can take it: ");
        explain_no_node(p, buf, len, &off);
        explain_add(buf, len, &off, ".");
        break;
    case Q_WAIT_CAP:
        explain_add(buf, len, &off, "Waiting for room: every node that could take it has as "
                                    "many assignments out as its dispatch window allows.");
        break;
    case Q_TIMER:
        explain_add(buf, len, &off,
                    s->backoff ? "Every node refused it in this round; the next round starts "
                                 "in %s."
                               : "The nodes that could take it asked to be asked later; the "
                                 "first may be asked again in %s.",
                    explain_span(t1, sizeof(t1), s->wake_at > now_ms ? s->wake_at - now_ms : 0));
        break;
    }
    if (invalid > 0)
        explain_add(buf, len, &off, " %u node%s refused its file as invalid (422).", invalid,
                    invalid == 1 ? "" : "s");
    (void)need;
    explain_add(buf, len, &off, "\n");
    for (uint32_t idx = 0; idx < p->n_nodes; idx++) {
        const struct pnode *n = p->ring[idx];
        const struct slot *sl = slot_find(s, idx);
        unsigned fls = sl != NULL ? sl->flags : 0;

        explain_add(buf, len, &off, "  %s (%s): ", n->id, placer_node_state_name(n->state));
        if (fls & SLOT_HOLDER) {
            explain_add(buf, len, &off, "holds a copy or is loading it");
        } else if (fls & SLOT_IN_FLIGHT) {
            explain_add(buf, len, &off, "has the assignment, no answer yet");
        } else if (sl != NULL && sl->last_outcome) {
            enum placer_outcome oc = (enum placer_outcome)(sl->last_outcome - 1);
            const char *ago = explain_span(t1, sizeof(t1),
                                           now_ms > sl->last_at ? now_ms - sl->last_at : 0);

            if (oc == PLACER_REFUSED)
                explain_add(buf, len, &off, "refused it %s ago with %s (HTTP %d)", ago,
                            reason_name(sl->last_reason), (int)sl->last_status);
            else if (oc == PLACER_INVALID)
                explain_add(buf, len, &off, "refused its file as invalid (HTTP 422) %s ago; "
                                            "it is not asked again", ago);
            else if (oc == PLACER_TRANSPORT_ERROR)
                explain_add(buf, len, &off, "did not answer, %s ago", ago);
            else if (oc == PLACER_UNEXPECTED)
                explain_add(buf, len, &off, "answered HTTP %d, outside the protocol, %s ago",
                            (int)sl->last_status, ago);
            else
                explain_add(buf, len, &off, "accepted it %s ago", ago);
        } else if (n->state != PLACER_NODE_UP) {
            explain_add(buf, len, &off, "gets nothing while %s",
                        placer_node_state_name(n->state));
        } else {
            explain_add(buf, len, &off, "not asked yet");
        }
        if (sl != NULL && sl->excluded_until > now_ms && !(fls & SLOT_INVALID))
            explain_add(buf, len, &off, "; not asked again for %s",
                        explain_span(t2, sizeof(t2), sl->excluded_until - now_ms));
        if (fls & SLOT_WAITING)
            explain_add(buf, len, &off, "; waiting for room in its window");
        explain_add(buf, len, &off, ".\n");
    }
    return 0;
}
