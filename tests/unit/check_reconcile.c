/*
 * check_reconcile: coordinator/reconcile alone (no loop, no catalog, no
 * placer): the rules (stale copies, adoption of unknown copies, surplus
 * (extra) copies and SUSPECT holders, lost (missing) copies, the INVALID
 * quorum), and the walk of a whole report over a model built in memory:
 * the plan it makes, and that it changes nothing in the model; the
 * incremental walk of a delta (only unsettled and named copies), that it
 * sees what the model's marks say changed, and the check that compares it
 * with the whole walk.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord_int.h"
#include "reconcile.h"
#include "repset.h"
#include "strmap.h"
#include "xmalloc.h"
#include "suite.h"

START_TEST(test_stale_digest)
{
    /* Same rows and digest: the registered file. */
    ck_assert(!reconcile_copy_is_stale(100, 0xabc, 100, 0xabc));
    /* Another digest: another file, dropped and loaded again. */
    ck_assert(reconcile_copy_is_stale(100, 0xabc, 100, 0xdef));
    /* Another row count, whatever the digests. */
    ck_assert(reconcile_copy_is_stale(100, 0xabc, 99, 0xabc));
    ck_assert(reconcile_copy_is_stale(100, 0, 99, 0));
    /* 0 is unknown on either side and is not compared. */
    ck_assert(!reconcile_copy_is_stale(100, 0, 100, 0xdef));
    ck_assert(!reconcile_copy_is_stale(100, 0xabc, 100, 0));
    ck_assert(!reconcile_copy_is_stale(100, 0xabc, 0, 0));
}
END_TEST

START_TEST(test_adopt_when_needed)
{
    /* Fewer holders than the replication: adopted, LOADING or LOADED. */
    ck_assert(reconcile_adopt(0, 1, false, 0));
    ck_assert(reconcile_adopt(1, 2, true, 1));
    /* Enough holders, but some are not live LOADED copies: a LOADED one is adopted. */
    ck_assert(reconcile_adopt(2, 2, true, 1));
    /* ... a LOADING one is not. */
    ck_assert(!reconcile_adopt(2, 2, false, 1));
    /* Enough live LOADED copies: an extra copy, dropped. */
    ck_assert(!reconcile_adopt(2, 2, true, 2));
    ck_assert(!reconcile_adopt(1, 1, true, 1));
}
END_TEST

START_TEST(test_extra_copy)
{
    ck_assert(reconcile_surplus(3, 2, 2));
    ck_assert(reconcile_surplus(2, 1, 1));
    /* Not more holders than asked: kept. */
    ck_assert(!reconcile_surplus(2, 2, 2));
}
END_TEST

START_TEST(test_suspect_holders_do_not_count)
{
    /*
     * Three holders for replication 2, but one of the two others is on a
     * SUSPECT node: the caller counts 1 live LOADED copy elsewhere, and this
     * node keeps its copy (dropping it could leave none).
     */
    ck_assert(!reconcile_surplus(3, 2, 1));
    /* Same with every other holder SUSPECT or DOWN. */
    ck_assert(!reconcile_surplus(3, 1, 0));
    /* A copy reported LOADED is adopted when the known ones sit on SUSPECT nodes. */
    ck_assert(reconcile_adopt(2, 2, true, 0));
}
END_TEST

START_TEST(test_missing_copy)
{
    /* Missing from the report, held longer than the grace: lost. */
    ck_assert(reconcile_is_lost(false, 10000, 6000, 3000));
    /* Within the grace (assigned since the node built its report): not yet. */
    ck_assert(!reconcile_is_lost(false, 9000, 6000, 3000));
    ck_assert(!reconcile_is_lost(false, 6000, 6000, 3000));
    /* Reported: never lost. */
    ck_assert(!reconcile_is_lost(true, 100000, 6000, 3000));
}
END_TEST

START_TEST(test_invalid_quorum)
{
    ck_assert_uint_eq(reconcile_invalid_quorum(5, 2), 2);
    ck_assert_uint_eq(reconcile_invalid_quorum(2, 2), 2);
    /* One node left that is not DOWN: its word decides. */
    ck_assert_uint_eq(reconcile_invalid_quorum(1, 2), 1);
    /* None alive: still one vote is needed, never zero. */
    ck_assert_uint_eq(reconcile_invalid_quorum(0, 2), 1);
}
END_TEST

START_TEST(test_votes_with)
{
    char voters[2][WIRE_ID_MAX + 1] = {"n1", "n2"};

    ck_assert_uint_eq(reconcile_votes_with(voters, 0, "n1", 2), 1);
    ck_assert_uint_eq(reconcile_votes_with(voters, 1, "n2", 2), 2);
    /* Voted already: counted once. */
    ck_assert_uint_eq(reconcile_votes_with(voters, 1, "n1", 2), 1);
    /* Enough remembered to decide: no more are kept. */
    ck_assert_uint_eq(reconcile_votes_with(voters, 2, "n3", 2), 2);
}
END_TEST

/* ---- the walk over a model in memory ---------------------------------------- */

static struct coord model;

static int free_node(const char *key, void *value, void *arg)
{
    struct coord_node *n = value;

    keymap_free(n->held);
    reconcile_node_done(n);
    free(n);
    return 0;
}

static int free_seg(const char *key, void *value, void *arg)
{
    struct coord_seg *s = value;

    free(s->holders);
    coord_seg_faults_free(s);
    free(s);
    return 0;
}

static void model_setup(void)
{
    memset(&model, 0, sizeof(model));
    model.segs = keymap_new(offsetof(struct coord_seg, id));
    model.nodes = strmap_new();
}

static void model_teardown(void)
{
    strmap_foreach(model.nodes, free_node, NULL);
    keymap_foreach(model.segs, free_seg, NULL);
    strmap_free(model.nodes);
    keymap_free(model.segs);
}

static struct coord_node *node(const char *id, enum membership_state st)
{
    struct coord_node *n = xcalloc(1, sizeof(*n));

    snprintf(n->id, sizeof(n->id), "%s", id);
    n->state = st;
    n->held = keymap_new(offsetof(struct coord_seg, id));
    strmap_put(model.nodes, n->id, n);
    return n;
}

static struct coord_seg *seg(const char *id, unsigned replication, enum coord_seg_state st)
{
    struct coord_seg *s = coord_seg_alloc(id, "file:///r.seg");

    s->row_count = 100;
    s->digest = 0xabc;
    s->replication = replication;
    s->state = st;
    keymap_put(model.segs, s);
    return s;
}

static void hold(struct coord_seg *s, struct coord_node *n, enum wire_segment_state st,
                 uint64_t since_ms)
{
    s->holders = xreallocarray(s->holders, s->n_holders + 1, sizeof(*s->holders));
    s->holders[s->n_holders].node = n->id;
    s->holders[s->n_holders].state = st;
    s->holders[s->n_holders].since_ms = since_ms;
    s->n_holders++;
    keymap_put(n->held, s);
}

/* How many nodes found s's file corrupt. */
static unsigned n_invalid_of(const struct coord_seg *s)
{
    const char(*votes)[WIRE_ID_MAX + 1];

    return coord_seg_invalid_nodes(s, &votes);
}

static void vote(struct coord_seg *s, const char *node_id)
{
    coord_seg_invalid_add(s, node_id);
}

static struct wire_segment_status copy(const char *id, enum wire_segment_state st)
{
    struct wire_segment_status r;

    memset(&r, 0, sizeof(r));
    snprintf(r.segment_id, sizeof(r.segment_id), "%s", id);
    r.state = st;
    r.row_count = st == WIRE_SEG_LOADED ? 100 : 0;
    r.digest = st == WIRE_SEG_LOADED ? 0xabc : 0;
    return r;
}

/* The action for segment id (the first), or NULL. */
static const struct reconcile_action *action(const struct reconcile_plan *p, const char *id)
{
    for (size_t i = 0; i < p->n; i++) {
        const char *sid = p->v[i].seg != NULL ? p->v[i].seg->id : p->v[i].rep->segment_id;

        if (strcmp(sid, id) == 0)
            return &p->v[i];
    }
    return NULL;
}

/* A digest of everything in the model the walk must leave alone. */
static uint64_t model_digest(void)
{
    static const char *const ids[] = {"a", "b", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m"};
    uint64_t h = 1469598103934665603ull;

    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        const struct coord_seg *s = keymap_get(model.segs, ids[i]);

        h = (h ^ (s->state + 7 * s->n_holders + 31 * n_invalid_of(s))) * 1099511628211ull;
        for (unsigned j = 0; j < s->n_holders; j++)
            h = (h ^ (s->holders[j].state + s->holders[j].since_ms)) * 1099511628211ull;
    }
    h ^= keymap_count(((const struct coord_node *)strmap_get(model.nodes, "n1"))->held);
    return h;
}

START_TEST(test_walk_plan)
{
    struct coord_node *n1 = node("n1", MEMBERSHIP_UP), *n2 = node("n2", MEMBERSHIP_UP);
    struct coord_seg *b, *d, *e, *f, *g, *k, *l;
    struct wire_segment_status rep[12];
    struct reconcile_plan plan = {NULL, 0, 0};
    const struct reconcile_action *a;
    uint64_t before;

    node("n3", MEMBERSHIP_DOWN);
    seg("a", 1, COORD_PENDING);                       /* not held: adopted */
    b = seg("b", 1, COORD_LOADED);                    /* held by n2: n1's copy is extra */
    hold(b, n2, WIRE_SEG_LOADED, 0);
    d = seg("d", 1, COORD_PENDING);                   /* LOADING -> LOADED */
    hold(d, n1, WIRE_SEG_LOADING, 0);
    e = seg("e", 1, COORD_LOADED);                    /* held twice: n1's is surplus */
    hold(e, n1, WIRE_SEG_LOADED, 0);
    hold(e, n2, WIRE_SEG_LOADED, 0);
    f = seg("f", 1, COORD_LOADED);                    /* not reported, old: lost */
    hold(f, n1, WIRE_SEG_LOADED, 0);
    g = seg("g", 1, COORD_PENDING);                   /* not reported, new: within the grace */
    hold(g, n1, WIRE_SEG_LOADING, 9000);
    seg("h", 1, COORD_PENDING);                       /* another file */
    seg("i", 1, COORD_INVALID);                       /* INVALID, reported LOADED */
    seg("j", 1, COORD_INVALID);                       /* INVALID, reported LOADING */
    k = seg("k", 1, COORD_PENDING);                   /* n2 voted: n1's vote decides */
    hold(k, n1, WIRE_SEG_LOADING, 0);
    vote(k, "n2");
    l = seg("l", 1, COORD_PENDING);                   /* dropped by the node */
    hold(l, n1, WIRE_SEG_LOADING, 0);
    seg("m", 1, COORD_PENDING);                       /* failed, never held */

    rep[0] = copy("a", WIRE_SEG_LOADED);
    rep[1] = copy("b", WIRE_SEG_LOADED);
    rep[2] = copy("c", WIRE_SEG_LOADED); /* unknown */
    rep[3] = copy("d", WIRE_SEG_LOADED);
    rep[4] = copy("e", WIRE_SEG_LOADED);
    rep[5] = copy("h", WIRE_SEG_LOADED);
    rep[5].row_count = 99;
    rep[6] = copy("i", WIRE_SEG_LOADED);
    rep[7] = copy("j", WIRE_SEG_LOADING);
    rep[8] = copy("k", WIRE_SEG_FAILED);
    rep[8].reason = WIRE_REASON_SEGMENT_INVALID;
    rep[9] = copy("l", WIRE_SEG_DROPPED);
    rep[10] = copy("m", WIRE_SEG_FAILED);
    before = model_digest();
    reconcile_report(&model, n1, rep, 11, 10000, &plan);
    /* The walk decides; the model is as it was. */
    ck_assert_uint_eq(model_digest(), before);
    ck_assert_uint_eq(keymap_count(n1->held), 6);

    ck_assert_uint_eq(plan.n, 12);
    ck_assert_str_eq(reconcile_kind_name(action(&plan, "a")->kind), "ADOPT");
    ck_assert_str_eq(reconcile_kind_name(action(&plan, "b")->kind), "EXTRA");
    a = action(&plan, "c");
    ck_assert_int_eq(a->kind, RECONCILE_DROP);
    ck_assert_ptr_null(a->seg);
    ck_assert_ptr_eq(a->rep, &rep[2]);
    a = action(&plan, "d");
    ck_assert_int_eq(a->kind, RECONCILE_UPDATE);
    ck_assert(!a->surplus);
    a = action(&plan, "e");
    ck_assert_int_eq(a->kind, RECONCILE_KEEP);
    ck_assert(a->surplus);
    ck_assert_int_eq(action(&plan, "h")->kind, RECONCILE_STALE);
    a = action(&plan, "i");
    ck_assert_int_eq(a->kind, RECONCILE_ADOPT);
    ck_assert(a->revalidate);
    a = action(&plan, "j");
    ck_assert_int_eq(a->kind, RECONCILE_DROP);
    ck_assert(!a->revalidate);
    a = action(&plan, "k");
    ck_assert_int_eq(a->kind, RECONCILE_GONE);
    ck_assert(a->vote && a->invalid && !a->clear_votes);
    a = action(&plan, "l");
    ck_assert_int_eq(a->kind, RECONCILE_GONE);
    ck_assert(!a->vote && !a->invalid);
    ck_assert_int_eq(action(&plan, "m")->kind, RECONCILE_UNHELD);
    /* The lost copies come last, after every reported one. */
    ck_assert_int_eq(plan.v[11].kind, RECONCILE_LOST);
    ck_assert_ptr_eq(plan.v[11].seg, f);
    ck_assert_ptr_null(action(&plan, "g"));
    ck_assert_int_eq(n_invalid_of(k), 1);
    ck_assert_int_eq(l->n_holders, 1);
    reconcile_plan_done(&plan);
    ck_assert_ptr_null(plan.v);
}
END_TEST

START_TEST(test_walk_votes)
{
    struct coord_node *n1 = node("n1", MEMBERSHIP_UP), *n2 = node("n2", MEMBERSHIP_UP);
    struct coord_seg *p = seg("p", 1, COORD_PENDING), *q = seg("q", 1, COORD_PENDING);
    struct coord_seg *r = seg("r", 2, COORD_PENDING);
    struct wire_segment_status rep[3];
    struct reconcile_plan plan = {NULL, 0, 0};
    const struct reconcile_action *a;

    /* p: LOADED on n2 too: the failure is n1's own, earlier votes are forgotten. */
    hold(p, n1, WIRE_SEG_LOADING, 0);
    hold(p, n2, WIRE_SEG_LOADED, 0);
    vote(p, "n2");
    /* q: the model thought n1's copy LOADED; it failed: that copy proves nothing. */
    hold(q, n1, WIRE_SEG_LOADED, 0);
    /* r: n1 votes again: still one distinct node, no quorum. */
    hold(r, n1, WIRE_SEG_LOADING, 0);
    vote(r, "n1");
    for (int i = 0; i < 3; i++) {
        rep[i] = copy(i == 0 ? "p" : i == 1 ? "q" : "r", WIRE_SEG_FAILED);
        rep[i].reason = WIRE_REASON_SEGMENT_INVALID;
    }
    reconcile_report(&model, n1, rep, 3, 10000, &plan);
    a = action(&plan, "p");
    ck_assert(a->clear_votes && !a->vote && !a->invalid);
    a = action(&plan, "q");
    ck_assert(!a->clear_votes && a->vote && !a->invalid);
    a = action(&plan, "r");
    ck_assert(a->vote && !a->invalid);
    /* With n2 DOWN, n1 is all that is left: its word decides. */
    n2->state = MEMBERSHIP_DOWN;
    reconcile_report(&model, n1, rep + 1, 1, 10000, &plan);
    ck_assert_uint_eq(plan.n, 3); /* q, then p and r, held and not in this report: lost */
    ck_assert_int_eq(plan.v[1].kind, RECONCILE_LOST);
    ck_assert_int_eq(plan.v[2].kind, RECONCILE_LOST);
    a = action(&plan, "q");
    ck_assert(a->vote && a->invalid);
    reconcile_plan_done(&plan);
}
END_TEST

/* ---- the incremental walk ------------------------------------------------------ */

/* A node's set and the delta of one report, built together. */
struct delta {
    struct repset *set;
    struct wire_node_report rep;
    struct wire_segment_status changed[8];
    char removed[8][WIRE_ID_MAX + 1];
};

static void delta_start(struct delta *d)
{
    memset(&d->rep, 0, sizeof(d->rep));
    d->rep.segments = d->changed;
    d->rep.removed = d->removed;
}

static void delta_put(struct delta *d, const char *id, enum wire_segment_state st)
{
    d->changed[d->rep.n_segments] = copy(id, st);
    repset_put(d->set, &d->changed[d->rep.n_segments++]);
}

static void delta_remove(struct delta *d, const char *id)
{
    snprintf(d->removed[d->rep.n_removed++], sizeof(d->removed[0]), "%s", id);
    repset_remove(d->set, id);
}

/* How many copies of n are unsettled. */
static size_t unsettled(const struct coord_node *n)
{
    return n->unsettled != NULL ? strmap_count(n->unsettled) : 0;
}

/* Node n's whole set reconciled and settled, as a full report is (no plan applied: none needed). */
static void settle_whole(struct coord_node *n, const struct repset *set)
{
    struct wire_segment_status *all = NULL;
    struct reconcile_plan plan = {0};
    size_t cap = 0, k = repset_export(set, &all, &cap);

    reconcile_report(&model, n, all, k, 10000, &plan);
    reconcile_settle(&model, n, set, all, k, &plan);
    reconcile_plan_done(&plan);
    free(all);
}

/* The incremental plan of d at now_ms, checked against the whole plan of the same set. */
static bool delta_plan(struct coord_node *n, struct delta *d, uint64_t now_ms,
                       struct reconcile_plan *ret)
{
    struct wire_segment_status *all = NULL;
    struct reconcile_plan whole = {0};
    size_t cap = 0, k = repset_export(d->set, &all, &cap);
    char why[512] = "";
    bool agree;

    reconcile_delta(&model, n, d->set, &d->rep, now_ms, ret);
    reconcile_report(&model, n, all, k, now_ms, &whole);
    agree = reconcile_plans_agree(&whole, ret, why, sizeof(why));
    reconcile_plan_done(&whole);
    free(all);
    return agree;
}

START_TEST(test_incremental_in_proportion)
{
    struct coord_node *n1 = node("n1", MEMBERSHIP_UP);
    struct reconcile_plan plan = {0};
    struct delta d = {repset_new()};
    char id[8];

    /* 100 copies LOADED on n1 and in its set: all settled after a whole reconcile. */
    for (int i = 0; i < 100; i++) {
        struct wire_segment_status r;

        snprintf(id, sizeof(id), "s%03d", i);
        hold(seg(id, 1, COORD_LOADED), n1, WIRE_SEG_LOADED, 0);
        r = copy(id, WIRE_SEG_LOADED);
        repset_put(d.set, &r);
    }
    ck_assert(reconcile_needs_whole(n1));
    settle_whole(n1, d.set);
    ck_assert(!reconcile_needs_whole(n1));
    ck_assert_uint_eq(unsettled(n1), 0);
    /* An empty delta judges nothing. */
    delta_start(&d);
    ck_assert(delta_plan(n1, &d, 11000, &plan));
    ck_assert_uint_eq(plan.n_copies, 0);
    ck_assert_uint_eq(plan.n, 0);
    /* A delta naming one new copy judges that one: adopted. */
    seg("new", 1, COORD_PENDING);
    delta_start(&d);
    delta_put(&d, "new", WIRE_SEG_LOADED);
    ck_assert(delta_plan(n1, &d, 11000, &plan));
    ck_assert_uint_eq(plan.n_copies, 1);
    ck_assert_uint_eq(plan.n, 1);
    ck_assert_int_eq(plan.v[0].kind, RECONCILE_ADOPT);
    /* Until the model holds it, it stays unsettled; once held LOADED, settled. */
    reconcile_settle(&model, n1, d.set, NULL, 0, &plan);
    ck_assert_uint_eq(unsettled(n1), 1);
    hold(keymap_get(model.segs, "new"), n1, WIRE_SEG_LOADED, 11000);
    reconcile_settle(&model, n1, d.set, NULL, 0, &plan);
    ck_assert_uint_eq(unsettled(n1), 0);
    /* A copy the node lost names itself: removed from the set, lost past the grace. */
    delta_start(&d);
    delta_remove(&d, "s007");
    ck_assert(delta_plan(n1, &d, 11000, &plan));
    ck_assert_uint_eq(plan.n, 1);
    ck_assert_int_eq(plan.v[0].kind, RECONCILE_LOST);
    ck_assert_str_eq(plan.v[0].seg->id, "s007");
    reconcile_plan_done(&plan);
    repset_free(d.set);
}
END_TEST

START_TEST(test_incremental_sees_model_changes)
{
    struct coord_node *n1 = node("n1", MEMBERSHIP_UP), *n2 = node("n2", MEMBERSHIP_UP);
    struct coord_seg *a = seg("a", 1, COORD_LOADED), *b = seg("b", 1, COORD_LOADED);
    struct coord_seg *g = seg("g", 1, COORD_PENDING);
    struct reconcile_plan plan = {0};
    struct delta d = {repset_new()};
    struct wire_segment_status r;

    hold(a, n1, WIRE_SEG_LOADED, 0);
    hold(b, n1, WIRE_SEG_LOADED, 0);
    r = copy("a", WIRE_SEG_LOADED);
    repset_put(d.set, &r);
    r = copy("b", WIRE_SEG_LOADED);
    repset_put(d.set, &r);
    settle_whole(n1, d.set);
    ck_assert_uint_eq(unsettled(n1), 0);

    /* Another node's copy of a becomes LOADED (model.c touches a): n1's is a surplus now. */
    hold(a, n2, WIRE_SEG_LOADED, 10500);
    reconcile_touch(&model, a, false);
    /* The model forgets n1's copy of b (a DOWN spell: coord_holder_remove() marks it). */
    b->n_holders = 0;
    keymap_remove(n1->held, "b");
    reconcile_mark(n1, "b");
    /* The placer assigns g to n1 (coord_holder_add() marks it): not reported yet. */
    hold(g, n1, WIRE_SEG_LOADING, 10500);
    reconcile_mark(n1, "g");

    /* The next delta names none of them; each is judged as the whole walk would. */
    delta_start(&d);
    ck_assert(delta_plan(n1, &d, 11000, &plan));
    ck_assert_uint_eq(plan.n_copies, 3);
    ck_assert_int_eq(action(&plan, "a")->kind, RECONCILE_KEEP);
    ck_assert(action(&plan, "a")->surplus);
    ck_assert_int_eq(action(&plan, "b")->kind, RECONCILE_ADOPT);
    ck_assert_ptr_null(action(&plan, "g")); /* within the grace */
    /* g stays unsettled until reported, and is lost once the grace is over. */
    reconcile_settle(&model, n1, d.set, NULL, 0, &plan);
    ck_assert_ptr_nonnull(strmap_get(n1->unsettled, "g"));
    delta_start(&d);
    ck_assert(delta_plan(n1, &d, 14000, &plan));
    ck_assert_int_eq(action(&plan, "g")->kind, RECONCILE_LOST);
    reconcile_plan_done(&plan);
    repset_free(d.set);
}
END_TEST

START_TEST(test_incremental_missed_change_is_caught)
{
    struct coord_node *n1 = node("n1", MEMBERSHIP_UP), *n2 = node("n2", MEMBERSHIP_UP);
    struct coord_seg *a = seg("a", 1, COORD_LOADED);
    struct reconcile_plan plan = {0};
    struct delta d = {repset_new()};
    struct wire_segment_status r;

    hold(a, n1, WIRE_SEG_LOADED, 0);
    r = copy("a", WIRE_SEG_LOADED);
    repset_put(d.set, &r);
    settle_whole(n1, d.set);
    /*
     * A model change that forgot its mark: n2's LOADED copy makes n1's a
     * surplus, but nothing says so. The incremental walk cannot see it, and
     * the comparison with the whole walk (the simulation's invariant) fails.
     */
    hold(a, n2, WIRE_SEG_LOADED, 10500);
    delta_start(&d);
    ck_assert(!delta_plan(n1, &d, 11000, &plan));
    ck_assert_uint_eq(plan.n, 0);
    /* n2 back from SUSPECT: reconciled whole, and its segments' holders touched. */
    reconcile_node_back(&model, n2);
    ck_assert(reconcile_needs_whole(n2));
    ck_assert_ptr_nonnull(strmap_get(n1->unsettled, "a"));
    delta_start(&d);
    ck_assert(delta_plan(n1, &d, 11000, &plan));
    ck_assert(action(&plan, "a")->surplus);
    reconcile_plan_done(&plan);
    repset_free(d.set);
}
END_TEST

START_TEST(test_plans_agree)
{
    struct coord_seg *a = seg("a", 1, COORD_LOADED), *b = seg("b", 1, COORD_LOADED);
    struct wire_segment_status ra = copy("a", WIRE_SEG_LOADED), rb = copy("b", WIRE_SEG_LOADED);
    struct reconcile_action whole[2] = {{.kind = RECONCILE_KEEP, .seg = a, .rep = &ra},
                                        {.kind = RECONCILE_UPDATE, .seg = b, .rep = &rb}};
    struct reconcile_action part[1] = {{.kind = RECONCILE_UPDATE, .seg = b, .rep = &rb}};
    struct reconcile_plan pw = {whole, 2, 2}, pp = {part, 1, 1};
    char why[256] = "";

    /* A KEEP that changes nothing need not be in the incremental plan. */
    ck_assert(reconcile_plans_agree(&pw, &pp, why, sizeof(why)));
    /* A surplus KEEP must. */
    whole[0].surplus = true;
    ck_assert(!reconcile_plans_agree(&pw, &pp, why, sizeof(why)));
    ck_assert_ptr_nonnull(strstr(why, "KEEP of a"));
    whole[0].surplus = false;
    /* Nor may the incremental plan do more, or otherwise. */
    part[0].kind = RECONCILE_ADOPT;
    ck_assert(!reconcile_plans_agree(&pw, &pp, why, sizeof(why)));
    ck_assert_ptr_nonnull(strstr(why, "UPDATE of b"));
    pw.n = 1;
    ck_assert(!reconcile_plans_agree(&pw, &pp, why, sizeof(why)));
    ck_assert_ptr_nonnull(strstr(why, "incremental plan has ADOPT of b"));
}
END_TEST

static Suite *reconcile_suite(void)
{
    Suite *s = suite_create("reconcile");
    TCase *tc;

    tc = tcase_create("stale");
    tcase_add_test(tc, test_stale_digest);
    suite_add_tcase(s, tc);
    tc = tcase_create("adopt");
    tcase_add_test(tc, test_adopt_when_needed);
    suite_add_tcase(s, tc);
    tc = tcase_create("extra");
    tcase_add_test(tc, test_extra_copy);
    tcase_add_test(tc, test_suspect_holders_do_not_count);
    suite_add_tcase(s, tc);
    tc = tcase_create("missing");
    tcase_add_test(tc, test_missing_copy);
    suite_add_tcase(s, tc);
    tc = tcase_create("invalid");
    tcase_add_test(tc, test_invalid_quorum);
    tcase_add_test(tc, test_votes_with);
    suite_add_tcase(s, tc);
    tc = tcase_create("walk");
    tcase_add_checked_fixture(tc, model_setup, model_teardown);
    tcase_add_test(tc, test_walk_plan);
    tcase_add_test(tc, test_walk_votes);
    suite_add_tcase(s, tc);
    tc = tcase_create("incremental");
    tcase_add_checked_fixture(tc, model_setup, model_teardown);
    tcase_add_test(tc, test_incremental_in_proportion);
    tcase_add_test(tc, test_incremental_sees_model_changes);
    tcase_add_test(tc, test_incremental_missed_change_is_caught);
    tcase_add_test(tc, test_plans_agree);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return harness_run_suite(reconcile_suite());
}
