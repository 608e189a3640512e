/*
 * reconcile: one node's report judged against the model, as a plan (see
 * reconcile.h). Each reported copy is kept, recorded in a new state,
 * adopted, dropped (stale, extra, of an unknown or INVALID segment) or
 * counted as a vote that the file is invalid; copies the model has on the
 * node that the report lacks are found lost (after a grace period). The
 * walk reads the model only: model.c applies the plan.
 *
 * Expected load: one report per node per second, each listing every copy
 * the node holds (up to tens of thousands): one hash lookup per copy.
 */
#include "coord_int.h"
#include "reconcile.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "repset.h"
#include "strmap.h"
#include "wire.h"
#include "xmalloc.h"

/* ---- the walk: reads the model, writes the plan ---------------------------- */

static struct reconcile_action *plan_add(struct reconcile_plan *p, enum reconcile_kind kind,
                                         struct coord_seg *s,
                                         const struct wire_segment_status *r)
{
    struct reconcile_action *a;

    if (p->n == p->cap) {
        p->cap = p->cap * 2 + 16;
        p->v = xreallocarray(p->v, p->cap, sizeof(*p->v));
    }
    a = &p->v[p->n++];
    memset(a, 0, sizeof(*a));
    a->kind = kind;
    a->seg = s;
    a->rep = r;
    return a;
}

static const struct coord_holder *holder_of(const struct coord_seg *s, const char *node)
{
    for (unsigned i = 0; i < s->n_holders; i++)
        if (strcmp(s->holders[i].node, node) == 0)
            return &s->holders[i];
    return NULL;
}

static int count_alive(const char *key, void *value, void *arg)
{
    *(size_t *)arg += ((const struct coord_node *)value)->state != MEMBERSHIP_DOWN;
    return 0;
}

/* What a FAILED or DROPPED copy the model had does: the holder goes, maybe a vote. */
static void judge_gone(const struct coord *c, const struct coord_node *n, struct coord_seg *s,
                       const struct wire_segment_status *r, struct reconcile_plan *p)
{
    struct reconcile_action *a = plan_add(p, RECONCILE_GONE, s, r);
    size_t alive = 0;
    const char(*votes)[WIRE_ID_MAX + 1];
    unsigned n_votes;

    if (r->state != WIRE_SEG_FAILED || r->reason != WIRE_REASON_SEGMENT_INVALID)
        return;
    /*
     * Distinct nodes, and none holding a copy that passed its checksums
     * (such a copy proves the failures so far node-local: they are
     * forgotten). This node's own copy does not count: it failed.
     */
    if (coord_loaded_holders(s, n->id) > 0) {
        a->clear_votes = true;
        return;
    }
    a->vote = true;
    strmap_foreach(c->nodes, count_alive, &alive);
    n_votes = coord_seg_invalid_nodes(s, &votes);
    a->invalid = reconcile_votes_with(votes, n_votes, n->id, COORD_INVALID_QUORUM) >=
                 reconcile_invalid_quorum(alive, COORD_INVALID_QUORUM);
}

/*
 * The segments a report names, by address, for the lost-copy walk: one
 * allocation per report (open addressing, at most half full) instead of a
 * map entry per copy.
 */
struct seen {
    const struct coord_seg **v;
    size_t mask;
};

static void seen_init(struct seen *t, size_t n)
{
    size_t cap = 16;

    while (cap < 2 * n)
        cap <<= 1;
    t->v = xcalloc(cap, sizeof(*t->v));
    t->mask = cap - 1;
}

static size_t seen_slot(const struct seen *t, const struct coord_seg *s)
{
    uint64_t x = (uint64_t)(uintptr_t)s;
    size_t i;

    x = (x ^ (x >> 33)) * 0xff51afd7ed558ccdULL;
    for (i = (size_t)(x ^ (x >> 33)) & t->mask; t->v[i] != NULL && t->v[i] != s;
         i = (i + 1) & t->mask)
        ;
    return i;
}

static void seen_add(struct seen *t, const struct coord_seg *s)
{
    t->v[seen_slot(t, s)] = s;
}

static bool seen_has(const struct seen *t, const struct coord_seg *s)
{
    return t->v[seen_slot(t, s)] == s;
}

/* One reported copy, of segment s (NULL: unknown to the model). */
static void judge_copy(const struct coord *c, const struct coord_node *n, struct coord_seg *s,
                       const struct wire_segment_status *r, struct reconcile_plan *p)
{
    bool held = r->state == WIRE_SEG_LOADING || r->state == WIRE_SEG_LOADED;
    bool revalidate = false, invalid;
    const struct coord_holder *h;
    struct reconcile_action *a;

    if (s != NULL && held &&
        reconcile_copy_is_stale(s->row_count, s->digest, r->row_count, r->digest)) {
        plan_add(p, RECONCILE_STALE, s, r);
        return;
    }
    /*
     * A copy that passed its checksums (one that was LOADING when the
     * verdict came) proves an INVALID segment's file good.
     */
    invalid = s != NULL && s->state == COORD_INVALID;
    if (invalid && r->state == WIRE_SEG_LOADED) {
        revalidate = true;
        invalid = false;
    }
    if (s == NULL || invalid) {
        plan_add(p, RECONCILE_DROP, s, r);
        return;
    }
    h = holder_of(s, n->id);
    if (!held) {
        if (r->state == WIRE_SEG_FAILED || r->state == WIRE_SEG_DROPPED) {
            if (h == NULL)
                plan_add(p, RECONCILE_UNHELD, s, r);
            else
                judge_gone(c, n, s, r, p);
        }
        return;
    }
    if (h == NULL) {
        /* Adopt a copy we did not know of, if the segment needs it. */
        a = plan_add(p,
                     reconcile_adopt(s->n_holders, s->replication, r->state == WIRE_SEG_LOADED,
                                     coord_live_loaded(c, s, NULL))
                         ? RECONCILE_ADOPT
                         : RECONCILE_EXTRA,
                     s, r);
        /* Adopted because fewer than asked are held or live: never a surplus (see reconcile.h). */
        a->revalidate = revalidate;
        return;
    }
    a = plan_add(p, h->state != r->state ? RECONCILE_UPDATE : RECONCILE_KEEP, s, r);
    a->revalidate = revalidate;
    /* A surplus copy (the segment is LOADED enough on live nodes elsewhere) is dropped. */
    a->surplus = reconcile_surplus(s->n_holders, s->replication, coord_live_loaded(c, s, n->id));
}

struct missing {
    const struct coord_node *node;
    const struct seen *reported;
    uint64_t now_ms;
    struct reconcile_plan *plan;
};

static int judge_missing(const char *key, void *value, void *arg)
{
    struct missing *m = arg;
    struct coord_seg *s = value;
    const struct coord_holder *h = holder_of(s, m->node->id);

    if (h != NULL &&
        reconcile_is_lost(seen_has(m->reported, s), m->now_ms, h->since_ms, COORD_REPORT_GRACE_MS))
        plan_add(m->plan, RECONCILE_LOST, s, NULL);
    return 0;
}

void reconcile_report(const struct coord *c, const struct coord_node *n,
                      const struct wire_segment_status *segs, size_t n_segs, uint64_t now_ms,
                      struct reconcile_plan *ret)
{
    struct seen reported;
    struct missing m = {n, &reported, now_ms, ret};

    ret->n = 0;
    if (ret->cap < n_segs) { /* one action per copy, as a rule: one allocation */
        ret->cap = n_segs + 16;
        ret->v = xreallocarray(ret->v, ret->cap, sizeof(*ret->v));
    }
    seen_init(&reported, n_segs);
    for (size_t i = 0; i < n_segs; i++) {
        struct coord_seg *s = keymap_get(c->segs, segs[i].segment_id);

        if (s != NULL)
            seen_add(&reported, s);
        judge_copy(c, n, s, &segs[i], ret);
    }
    /* What the model has on the node and the report lacks: lost. */
    keymap_foreach(n->held, judge_missing, &m);
    free(reported.v);
}

void reconcile_plan_done(struct reconcile_plan *p)
{
    if (p == NULL)
        return;
    free(p->v);
    free(p->copies);
    free(p->found);
    memset(p, 0, sizeof(*p));
}

/* ---- incremental reconciliation (see reconcile.h) --------------------------- */

void reconcile_mark(struct coord_node *n, const char *seg_id)
{
    if (n->unsettled == NULL)
        n->unsettled = strmap_new();
    (void)strmap_put(n->unsettled, seg_id, n); /* any non-NULL value: present */
}

void reconcile_touch(const struct coord *c, const struct coord_seg *s, bool all)
{
    if (!all && s->n_holders <= s->replication)
        return;
    for (unsigned i = 0; i < s->n_holders; i++) {
        struct coord_node *n = strmap_get(c->nodes, s->holders[i].node);

        if (n != NULL)
            reconcile_mark(n, s->id);
    }
}

static int touch_held(const char *key, void *value, void *arg)
{
    reconcile_touch(arg, value, false);
    return 0;
}

void reconcile_node_back(struct coord *c, struct coord_node *n)
{
    n->settled_known = false;
    keymap_foreach(n->held, touch_held, c);
}

bool reconcile_needs_whole(const struct coord_node *n)
{
    return !n->settled_known;
}

bool reconcile_settled(const struct coord *c, const struct coord_node *n, const char *seg_id,
                       const struct wire_segment_status *r)
{
    const struct coord_seg *s = keymap_get(c->segs, seg_id);
    const struct coord_holder *h = s != NULL ? holder_of(s, n->id) : NULL;

    if (r == NULL)
        return h == NULL; /* held and not reported: lost after the grace */
    return h != NULL && s->state != COORD_INVALID && r->state == WIRE_SEG_LOADED &&
           h->state == WIRE_SEG_LOADED &&
           !reconcile_copy_is_stale(s->row_count, s->digest, r->row_count, r->digest) &&
           !reconcile_surplus(s->n_holders, s->replication, coord_live_loaded(c, s, n->id));
}

/* Copies every unsettled id of a node, with its copy from the node's set, into the plan. */
struct cand_walk {
    struct reconcile_plan *p;
    const struct repset *set;
};

static int cand_add(const char *key, void *value, void *arg)
{
    struct cand_walk *w = arg;
    struct reconcile_plan *p = w->p;
    struct wire_segment_status *r = &p->copies[p->n_copies];

    p->found[p->n_copies] = repset_get(w->set, key, r);
    if (!p->found[p->n_copies]) {
        memset(r, 0, sizeof(*r));
        snprintf(r->segment_id, sizeof(r->segment_id), "%s", key);
    }
    p->n_copies++;
    return 0;
}

void reconcile_delta(const struct coord *c, struct coord_node *n, const struct repset *set,
                     const struct wire_node_report *rep, uint64_t now_ms,
                     struct reconcile_plan *ret)
{
    struct cand_walk w = {ret, set};
    size_t k;

    for (size_t i = 0; i < rep->n_segments; i++)
        reconcile_mark(n, rep->segments[i].segment_id);
    for (size_t i = 0; i < rep->n_removed; i++)
        reconcile_mark(n, rep->removed[i]);
    k = n->unsettled != NULL ? strmap_count(n->unsettled) : 0;
    ret->n = 0;
    ret->n_copies = 0;
    if (ret->cap < k) {
        ret->cap = k + 16;
        ret->v = xreallocarray(ret->v, ret->cap, sizeof(*ret->v));
    }
    if (ret->cap_copies < k || ret->copies == NULL) {
        ret->cap_copies = k + 16;
        ret->copies = xreallocarray(ret->copies, ret->cap_copies, sizeof(*ret->copies));
        ret->found = xreallocarray(ret->found, ret->cap_copies, sizeof(*ret->found));
    }
    if (k > 0)
        strmap_foreach(n->unsettled, cand_add, &w);
    for (size_t i = 0; i < ret->n_copies; i++) {
        const struct wire_segment_status *r = &ret->copies[i];
        struct coord_seg *s = keymap_get(c->segs, r->segment_id);
        const struct coord_holder *h;

        if (ret->found[i]) {
            judge_copy(c, n, s, r, ret);
            continue;
        }
        /* Not in the node's set: lost if the model holds it there past the grace. */
        h = s != NULL ? holder_of(s, n->id) : NULL;
        if (h != NULL && reconcile_is_lost(false, now_ms, h->since_ms, COORD_REPORT_GRACE_MS))
            plan_add(ret, RECONCILE_LOST, s, NULL);
    }
}

/* A whole reconcile's held walk: held copies the node's set lacks stay unsettled. */
struct held_walk {
    struct coord_node *n;
    const struct repset *set;
};

static int settle_held(const char *key, void *value, void *arg)
{
    struct held_walk *w = arg;

    if (!repset_has(w->set, key))
        reconcile_mark(w->n, key);
    return 0;
}

void reconcile_settle(const struct coord *c, struct coord_node *n, const struct repset *set,
                      const struct wire_segment_status *segs, size_t n_segs,
                      const struct reconcile_plan *plan)
{
    if (set == NULL) {
        /* An older node's report: no set kept, every report reconciled whole. */
        reconcile_node_done(n);
        return;
    }
    if (segs != NULL) {
        struct held_walk w = {n, set};

        reconcile_node_done(n);
        for (size_t i = 0; i < n_segs; i++)
            if (!reconcile_settled(c, n, segs[i].segment_id, &segs[i]))
                reconcile_mark(n, segs[i].segment_id);
        keymap_foreach(n->held, settle_held, &w);
        n->settled_known = true;
        return;
    }
    for (size_t i = 0; i < plan->n_copies && n->unsettled != NULL; i++) {
        const struct wire_segment_status *r = &plan->copies[i];

        if (reconcile_settled(c, n, r->segment_id, plan->found[i] ? r : NULL))
            (void)strmap_remove(n->unsettled, r->segment_id);
    }
}

void reconcile_node_done(struct coord_node *n)
{
    if (n == NULL)
        return;
    strmap_free(n->unsettled);
    n->unsettled = NULL;
    n->settled_known = false;
}

/* An action that changes nothing when applied: a KEEP, neither surplus nor revalidated. */
static bool action_idle(const struct reconcile_action *a)
{
    return a->kind == RECONCILE_KEEP && !a->surplus && !a->revalidate;
}

static bool actions_equal(const struct reconcile_action *a, const struct reconcile_action *b)
{
    if (a->kind != b->kind || a->seg != b->seg || a->surplus != b->surplus ||
        a->revalidate != b->revalidate || a->vote != b->vote || a->invalid != b->invalid ||
        a->clear_votes != b->clear_votes || (a->rep == NULL) != (b->rep == NULL))
        return false;
    return a->rep == NULL || (a->rep->state == b->rep->state &&
                              strcmp(a->rep->segment_id, b->rep->segment_id) == 0);
}

/* Every busy action of x has its own equal in y; else why names the first without. */
static bool plan_covered(const struct reconcile_plan *x, const struct reconcile_plan *y,
                         const char *xname, char *why, size_t len)
{
    bool *used = xcalloc(y->n + 1, sizeof(*used));
    bool ok = true;

    for (size_t i = 0; i < x->n && ok; i++) {
        size_t j;

        if (action_idle(&x->v[i]))
            continue;
        for (j = 0; j < y->n; j++)
            if (!used[j] && actions_equal(&x->v[i], &y->v[j]))
                break;
        if (j < y->n) {
            used[j] = true;
            continue;
        }
        ok = false;
        snprintf(why, len, "%s plan has %s of %s (surplus %d) that the other lacks", xname,
                 reconcile_kind_name(x->v[i].kind),
                 x->v[i].rep != NULL ? x->v[i].rep->segment_id
                 : x->v[i].seg != NULL ? x->v[i].seg->id
                                       : "?",
                 x->v[i].surplus);
    }
    free(used);
    return ok;
}

bool reconcile_plans_agree(const struct reconcile_plan *whole, const struct reconcile_plan *part,
                           char *why, size_t len)
{
    return plan_covered(whole, part, "the whole", why, len) &&
           plan_covered(part, whole, "the incremental", why, len);
}

const char *reconcile_kind_name(enum reconcile_kind k)
{
    static const char *const names[RECONCILE_KIND_COUNT_] = {
        "KEEP", "UPDATE", "ADOPT", "EXTRA", "STALE", "DROP", "GONE", "UNHELD", "LOST"};

    return (unsigned)k < RECONCILE_KIND_COUNT_ ? names[k] : "?";
}

/* ---- the rules: see reconcile.h -------------------------------------------- */

bool reconcile_copy_is_stale(uint64_t reg_rows, uint64_t reg_digest, uint64_t rep_rows,
                             uint64_t rep_digest)
{
    return (rep_rows != 0 && rep_rows != reg_rows) ||
           (rep_digest != 0 && reg_digest != 0 && rep_digest != reg_digest);
}

bool reconcile_adopt(unsigned n_holders, unsigned replication, bool reported_loaded,
                     unsigned live_loaded)
{
    return n_holders < replication || (reported_loaded && live_loaded < replication);
}

bool reconcile_surplus(unsigned n_holders, unsigned replication, unsigned live_loaded_elsewhere)
{
    return n_holders > replication && live_loaded_elsewhere >= replication;
}

bool reconcile_is_lost(bool reported, uint64_t now_ms, uint64_t since_ms, uint64_t grace_ms)
{
    return !reported && now_ms - since_ms > grace_ms;
}

unsigned reconcile_invalid_quorum(size_t alive, unsigned quorum)
{
    if (alive == 0)
        alive = 1;
    return alive < quorum ? (unsigned)alive : quorum;
}

unsigned reconcile_votes_with(const char (*voters)[WIRE_ID_MAX + 1], unsigned n_voters,
                              const char *node, unsigned remember_max)
{
    for (unsigned i = 0; i < n_voters; i++)
        if (strcmp(voters[i], node) == 0)
            return n_voters;
    return n_voters >= remember_max ? n_voters : n_voters + 1;
}
