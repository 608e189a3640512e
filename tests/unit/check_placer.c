/*
 * check_placer: unit tests for coordinator/placer against a fake transport.
 * The fake records every assignment the placer fires and every callback it
 * makes; tests answer recorded assignments by index, with a status, reason,
 * Retry-After, time and random input of their choosing, so each behaviour
 * of the brief (round-robin order, refusals, backoff and jitter, transport
 * errors, replicas, holders, INVALID quorum, node states, in-flight bounds,
 * exclusions, explain) is checked on exact values. A scale case places
 * 100000 segments and prints its timing.
 */
#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "placer.h"
#include "suite.h"

enum test_ev_type { EV_ACCEPTED, EV_REFUSED, EV_BACKOFF, EV_INVALID, EV_UNEXPECTED };

struct test_call {
    uint64_t id;
    char node[16];
    char seg[32];
    bool answered;
};

struct test_ev {
    enum test_ev_type type;
    char seg[32];
    char node[16];
    enum wire_reason reason;
    uint32_t retry;
    uint64_t until;
    int status;
};

struct test_fake {
    struct test_call *calls;
    size_t n_calls, cap_calls, next_unanswered;
    struct test_ev *evs;
    size_t n_evs, cap_evs;
};

static struct test_fake fake;
static struct placer *test_p; /* the placer under test, for the reentry check */
static bool test_invalid_agree = true; /* what on_invalid answers */
static const char *test_assigned_id, *test_assigned_uri; /* the strings the last assign saw */

static void test_copy(char *dst, size_t len, const char *src)
{
    snprintf(dst, len, "%s", src ? src : "");
}

static struct test_ev *test_ev_add(enum test_ev_type type, const struct placer_segment *seg,
                                   const char *node)
{
    struct test_ev *e;

    if (fake.n_evs == fake.cap_evs) {
        fake.cap_evs = fake.cap_evs ? fake.cap_evs * 2 : 64;
        fake.evs = realloc(fake.evs, fake.cap_evs * sizeof(*fake.evs));
        ck_assert_ptr_nonnull(fake.evs);
    }
    e = &fake.evs[fake.n_evs++];
    memset(e, 0, sizeof(*e));
    e->type = type;
    test_copy(e->seg, sizeof(e->seg), seg ? seg->id : NULL);
    test_copy(e->node, sizeof(e->node), node);
    return e;
}

static void test_assign(void *ctx, uint64_t attempt_id, const char *node_id,
                        const struct placer_segment *seg)
{
    struct test_call *c;

    if (fake.n_calls == fake.cap_calls) {
        fake.cap_calls = fake.cap_calls ? fake.cap_calls * 2 : 256;
        fake.calls = realloc(fake.calls, fake.cap_calls * sizeof(*fake.calls));
        ck_assert_ptr_nonnull(fake.calls);
    }
    c = &fake.calls[fake.n_calls++];
    c->id = attempt_id;
    test_copy(c->node, sizeof(c->node), node_id);
    test_copy(c->seg, sizeof(c->seg), seg->id);
    c->answered = false;
    test_assigned_id = seg->id;
    test_assigned_uri = seg->uri;
}

static void test_on_accepted(void *ctx, const struct placer_segment *seg, const char *node)
{
    test_ev_add(EV_ACCEPTED, seg, node);
}

static void test_on_refused(void *ctx, const struct placer_segment *seg, const char *node,
                            enum wire_reason reason, uint32_t retry)
{
    struct test_ev *e = test_ev_add(EV_REFUSED, seg, node);

    e->reason = reason;
    e->retry = retry;
}

static void test_on_backoff(void *ctx, const struct placer_segment *seg, uint64_t until)
{
    test_ev_add(EV_BACKOFF, seg, NULL)->until = until;
}

static bool test_on_invalid(void *ctx, const struct placer_segment *seg)
{
    test_ev_add(EV_INVALID, seg, NULL);
    /* Callbacks must not reenter. */
    ck_assert_int_eq(placer_tick(test_p, 0), -EBUSY);
    ck_assert_int_eq(placer_want(test_p, "r", "file:///r", 1, 1, 1, NULL, 0), -EBUSY);
    return test_invalid_agree;
}

static void test_on_unexpected(void *ctx, const struct placer_segment *seg, const char *node,
                               int status)
{
    test_ev_add(EV_UNEXPECTED, seg, node)->status = status;
}

static const struct placer_ops test_ops = {
    .assign = test_assign,
    .on_accepted = test_on_accepted,
    .on_refused = test_on_refused,
    .on_backoff = test_on_backoff,
    .on_invalid = test_on_invalid,
    .on_unexpected = test_on_unexpected,
};

static struct placer *test_placer(const struct placer_config *cfg)
{
    free(fake.calls);
    free(fake.evs);
    memset(&fake, 0, sizeof(fake));
    test_invalid_agree = true;
    test_p = placer_new(cfg, &test_ops, NULL);
    return test_p;
}

static void test_done(struct placer *p)
{
    placer_free(p);
    test_p = NULL;
    free(fake.calls);
    free(fake.evs);
    memset(&fake, 0, sizeof(fake));
}

static void test_nodes(struct placer *p, const char *const *ids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(placer_node_set(p, ids[i], PLACER_NODE_UP), 0);
}

static const char *const abc[] = {"a", "b", "c"};

static void test_want(struct placer *p, const char *id, unsigned replicas)
{
    ck_assert_int_eq(placer_want(p, id, "file:///data/x.seg", 1000, 64, replicas, NULL, 0), 0);
}

static void test_want_n(struct placer *p, unsigned from, unsigned n)
{
    char id[32];

    for (unsigned i = from; i < from + n; i++) {
        snprintf(id, sizeof(id), "s%u", i);
        test_want(p, id, 1);
    }
}

static int test_answer(struct placer *p, size_t call, int status, enum wire_reason reason,
                       uint32_t retry, uint64_t now, uint32_t rnd)
{
    struct placer_answer a = {status, reason, retry};

    ck_assert_uint_lt(call, fake.n_calls);
    ck_assert(!fake.calls[call].answered);
    fake.calls[call].answered = true;
    return placer_on_answer(p, fake.calls[call].id, &a, now, rnd);
}

static size_t test_calls_to(const char *node, size_t from)
{
    size_t n = 0;

    for (size_t i = from; i < fake.n_calls; i++)
        n += strcmp(fake.calls[i].node, node) == 0;
    return n;
}

static size_t test_evs_of(enum test_ev_type type)
{
    size_t n = 0;

    for (size_t i = 0; i < fake.n_evs; i++)
        n += fake.evs[i].type == type;
    return n;
}

/* Answers every unanswered call: 202, except refusals from node `refuser`. */
static void test_answer_all(struct placer *p, uint64_t now, const char *refuser)
{
    for (size_t i = fake.next_unanswered; i < fake.n_calls; i++) {
        if (fake.calls[i].answered)
            continue;
        if (refuser && strcmp(fake.calls[i].node, refuser) == 0)
            ck_assert_int_eq(
                test_answer(p, i, 429, WIRE_REASON_MEM_CAPACITY, 30000, now, 0x80000000u), 0);
        else
            ck_assert_int_eq(test_answer(p, i, 202, WIRE_REASON_NONE, 0, now, 0), 0);
    }
    fake.next_unanswered = fake.n_calls;
}

static struct placer_stats test_stats(const struct placer *p)
{
    struct placer_stats st;

    placer_get_stats(p, &st);
    return st;
}

static enum placer_node_state test_node_state(const struct placer *p, const char *id)
{
    struct placer_node_info ni;

    ck_assert_int_eq(placer_node_lookup(p, id, &ni), 0);
    return ni.state;
}

START_TEST(test_round_robin)
{
    struct placer *p = test_placer(NULL);
    char id[32];
    int ticks = 0;

    test_nodes(p, abc, 3);
    test_want_n(p, 0, 300);
    ck_assert_uint_eq(test_stats(p).ready, 300);
    while (test_stats(p).segments > 0) {
        int fired = placer_tick(p, 1000);

        ck_assert_int_gt(fired, 0);
        ck_assert_int_le(fired, 3 * 64);
        test_answer_all(p, 1000, NULL);
        ck_assert_int_lt(++ticks, 10);
    }
    /* First tick: 64 per node, then the rest. */
    ck_assert_int_eq(ticks, 2);
    ck_assert_uint_eq(fake.n_calls, 300);
    for (size_t i = 0; i < 300; i++) {
        snprintf(id, sizeof(id), "s%zu", i);
        ck_assert_str_eq(fake.calls[i].seg, id);
        ck_assert_str_eq(fake.calls[i].node, abc[i % 3]);
    }
    ck_assert_uint_eq(test_calls_to("a", 0), 100);
    ck_assert_uint_eq(test_calls_to("b", 0), 100);
    ck_assert_uint_eq(test_calls_to("c", 0), 100);
    ck_assert_uint_eq(test_evs_of(EV_ACCEPTED), 300);
    ck_assert_uint_eq(test_stats(p).outcomes_total[PLACER_ACCEPTED], 300);
    ck_assert_uint_eq(test_stats(p).in_flight, 0);
    ck_assert_uint_eq(placer_next_deadline(p), UINT64_MAX);
    test_done(p);
}
END_TEST

START_TEST(test_one_refuses)
{
    struct placer *p = test_placer(NULL);
    size_t before;

    test_nodes(p, abc, 3);
    test_want_n(p, 0, 30);
    for (int i = 0; i < 5 && test_stats(p).segments > 0; i++) {
        placer_tick(p, 1000);
        test_answer_all(p, 1000, "a");
    }
    ck_assert_uint_eq(test_stats(p).segments, 0);
    ck_assert_uint_eq(test_evs_of(EV_REFUSED), 10);
    ck_assert_uint_eq(test_evs_of(EV_ACCEPTED), 30);
    for (size_t i = 0; i < fake.n_evs; i++) {
        const struct test_ev *e = &fake.evs[i];

        if (e->type == EV_REFUSED) {
            ck_assert_str_eq(e->node, "a");
            ck_assert_int_eq(e->reason, WIRE_REASON_MEM_CAPACITY);
            ck_assert_uint_eq(e->retry, 30000);
        } else {
            ck_assert_int_eq(e->type, EV_ACCEPTED);
            ck_assert_str_ne(e->node, "a");
        }
    }
    ck_assert_uint_eq(test_calls_to("a", 0), 10);
    ck_assert_uint_eq(test_calls_to("b", 0), 15);
    ck_assert_uint_eq(test_calls_to("c", 0), 15);
    ck_assert_uint_eq(fake.n_calls, 40);
    ck_assert_uint_eq(test_stats(p).refused_by_reason_total[WIRE_REASON_MEM_CAPACITY], 10);
    ck_assert_uint_eq(test_evs_of(EV_BACKOFF), 0);
    /* Blind: a refusal excludes that segment only, new ones still go to a. */
    before = fake.n_calls;
    test_want_n(p, 100, 3);
    ck_assert_int_eq(placer_tick(p, 1000), 3);
    ck_assert_uint_eq(test_calls_to("a", before), 1);
    test_done(p);
}
END_TEST

/* a, b and c refuse s0 with 1000, 3000 and 2000 ms; the last answer carries rnd. */
static struct placer *test_refuse_round(uint32_t rnd, uint64_t *ret_until)
{
    struct placer *p = test_placer(NULL);

    test_nodes(p, abc, 3);
    test_want(p, "s0", 1);
    ck_assert_int_eq(placer_tick(p, 1000), 1);
    ck_assert_str_eq(fake.calls[0].node, "a");
    ck_assert_int_eq(test_answer(p, 0, 429, WIRE_REASON_MEM_PRESSURE, 1000, 1000, 7), 0);
    ck_assert_int_eq(placer_tick(p, 1000), 1);
    ck_assert_str_eq(fake.calls[1].node, "b");
    ck_assert_int_eq(test_answer(p, 1, 429, WIRE_REASON_LATENCY_SLO, 3000, 1000, 7), 0);
    ck_assert_uint_eq(test_evs_of(EV_BACKOFF), 0);
    ck_assert_int_eq(placer_tick(p, 1000), 1);
    ck_assert_str_eq(fake.calls[2].node, "c");
    ck_assert_int_eq(test_answer(p, 2, 507, WIRE_REASON_DISK_FULL, 2000, 1000, rnd), 0);
    ck_assert_uint_eq(test_evs_of(EV_BACKOFF), 1);
    ck_assert_int_eq(fake.evs[fake.n_evs - 1].type, EV_BACKOFF);
    *ret_until = fake.evs[fake.n_evs - 1].until;
    ck_assert_uint_eq(test_stats(p).backing_off, 1);
    ck_assert_uint_eq(test_stats(p).backoffs_total, 1);
    ck_assert_uint_eq(placer_next_deadline(p), *ret_until);
    return p;
}

START_TEST(test_all_refuse_backoff)
{
    static const struct {
        uint32_t rnd;
        uint64_t until;
    } cases[] = {{0, 1000 + 800}, {0x80000000u, 1000 + 900}, {UINT32_MAX, 1000 + 1000}};
    uint64_t until;
    struct placer *p;

    /* The backoff ends at the earliest Retry-After (a's 1000 ms), up to 20 % earlier. */
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        p = test_refuse_round(cases[i].rnd, &until);
        ck_assert_uint_ge(until, 1000 + 800);
        ck_assert_uint_le(until, 1000 + 1000);
        ck_assert_uint_eq(until, cases[i].until);
        test_done(p);
    }

    /* Nothing before the backoff ends, a fresh round after it (at a's own retry). */
    p = test_refuse_round(UINT32_MAX, &until);
    ck_assert_int_eq(placer_tick(p, 1001), 0);
    ck_assert_int_eq(placer_tick(p, until - 1), 0);
    ck_assert_uint_eq(fake.n_calls, 3);
    ck_assert_int_eq(placer_tick(p, until), 1);
    ck_assert_uint_eq(test_stats(p).backing_off, 0);
    ck_assert_str_eq(fake.calls[3].node, "a");
    ck_assert_int_eq(test_answer(p, 3, 202, WIRE_REASON_NONE, 0, until, 0), 0);
    ck_assert_uint_eq(test_stats(p).segments, 0);
    test_done(p);

    /*
     * Jitter below the earliest Retry-After: the fresh round waits for a's own
     * retry (2000); b and c stay excluded until theirs (4000 and 3000).
     */
    p = test_refuse_round(0, &until);
    ck_assert_uint_eq(until, 1800);
    ck_assert_int_eq(placer_tick(p, 1799), 0);
    ck_assert_int_eq(placer_tick(p, 1800), 0);
    ck_assert_uint_eq(placer_next_deadline(p), 2000);
    ck_assert_int_eq(placer_tick(p, 2000), 1);
    ck_assert_str_eq(fake.calls[3].node, "a");
    /* a refuses again, for 100 ms: that is now the earliest chance (80 ms with jitter). */
    ck_assert_int_eq(test_answer(p, 3, 429, WIRE_REASON_MEM_PRESSURE, 100, 2000, 0), 0);
    ck_assert_uint_eq(test_stats(p).backing_off, 1);
    ck_assert_uint_eq(placer_next_deadline(p), 2080);
    ck_assert_int_eq(placer_tick(p, 2080), 0); /* a itself is excluded until 2100 */
    ck_assert_uint_eq(placer_next_deadline(p), 2100);
    ck_assert_int_eq(placer_tick(p, 2100), 1);
    ck_assert_str_eq(fake.calls[4].node, "a");
    test_done(p);
}
END_TEST


/*
 * Issue 14, suspected: the nodes jitter their Retry-After already, so the
 * back-off must never end after the earliest one a node named (it once
 * ended 7.5 s past it). Whatever the random input, the segment is asked
 * again no later than the refusing node's own retry time.
 */
START_TEST(test_backoff_never_past_retry)
{
    static const uint32_t rnds[] = {0, 1, 0x40000000u, 0x80000000u, 0xc0000000u, UINT32_MAX};

    for (size_t i = 0; i < sizeof(rnds) / sizeof(rnds[0]); i++) {
        struct placer *p = test_placer(NULL);
        uint64_t until;

        test_nodes(p, abc, 1);
        test_want(p, "s0", 1);
        ck_assert_int_eq(placer_tick(p, 5000), 1);
        ck_assert_int_eq(test_answer(p, 0, 429, WIRE_REASON_MEM_CAPACITY, 37500, 5000, rnds[i]),
                         0);
        ck_assert_uint_eq(test_evs_of(EV_BACKOFF), 1);
        until = fake.evs[fake.n_evs - 1].until;
        ck_assert_uint_le(until, 5000 + 37500);
        ck_assert_uint_ge(until, 5000 + 30000);
        /* Asked again exactly at the node's own retry time, not later. */
        ck_assert_int_eq(placer_tick(p, 5000 + 37499), 0);
        ck_assert_int_eq(placer_tick(p, 5000 + 37500), 1);
        test_done(p);
    }
}
END_TEST

/*
 * Defect 3 of issue 14: a node that turns UP wakes segments that wait out a
 * back-off set by other nodes' refusals, bounded: max_in_flight_per_node of
 * them at once, then one more per segment it accepts.
 */
START_TEST(test_capacity_wakes_backoff)
{
    struct placer_config cfg = {.max_in_flight_per_node = 2};
    struct placer *p = test_placer(&cfg);
    size_t before;

    ck_assert_int_eq(placer_node_set(p, "a", PLACER_NODE_UP), 0);
    test_want_n(p, 0, 5);
    /* a refuses all five for 40 s: each backs off. */
    for (int round = 0; round < 5 && test_stats(p).backing_off < 5; round++) {
        placer_tick(p, 1000);
        for (size_t i = fake.next_unanswered; i < fake.n_calls; i++)
            ck_assert_int_eq(test_answer(p, i, 429, WIRE_REASON_MEM_CAPACITY, 40000, 1000,
                                         0x80000000u),
                             0);
        fake.next_unanswered = fake.n_calls;
    }
    ck_assert_uint_eq(test_stats(p).backing_off, 5);
    ck_assert_uint_eq(fake.n_calls, 5);

    /* b joins with room: two go to it now, not 40 s later, and the rest wait. */
    ck_assert_int_eq(placer_node_set(p, "b", PLACER_NODE_UP), 0);
    ck_assert_uint_eq(placer_next_deadline(p), 0);
    before = fake.n_calls;
    ck_assert_int_eq(placer_tick(p, 2000), 2);
    ck_assert_uint_eq(test_calls_to("b", before), 2);
    ck_assert_uint_eq(test_stats(p).backing_off, 3);
    ck_assert_uint_eq(test_stats(p).capacity_wakes_total, 2);

    /* b accepts one: one more is woken; a refusal from b wakes none. */
    ck_assert_int_eq(test_answer(p, before, 202, WIRE_REASON_NONE, 0, 2000, 0), 0);
    ck_assert_uint_eq(test_stats(p).backing_off, 2);
    ck_assert_int_eq(placer_tick(p, 2000), 1);
    ck_assert_str_eq(fake.calls[fake.n_calls - 1].node, "b");
    ck_assert_int_eq(test_answer(p, before + 1, 429, WIRE_REASON_MEM_CAPACITY, 40000, 2000,
                                 0x80000000u),
                     0);
    ck_assert_uint_eq(test_stats(p).backing_off, 3);
    ck_assert_int_eq(placer_tick(p, 2000), 0);
    ck_assert_uint_eq(test_stats(p).capacity_wakes_total, 3);
    test_done(p);
}
END_TEST


/*
 * Issue 14, suspected: nodes were never removed, and every placement scan
 * walks the ring. A DOWN node can be removed: the ring shrinks, the other
 * nodes' records for each segment survive the renumbering, a holder flag
 * on the removed node no longer counts, and only a DOWN node can go.
 */
START_TEST(test_node_remove)
{
    static const char *const abcd[] = {"a", "b", "c", "d"};
    struct placer *p = test_placer(NULL);
    struct placer_node_info ni;
    const char *held_by_b[] = {"b"};
    char buf[2048];
    size_t before;

    test_nodes(p, abcd, 4);
    /* s0: a refuses it for 30 s; then it goes to b. */
    test_want(p, "s0", 1);
    ck_assert_int_eq(placer_tick(p, 1000), 1);
    ck_assert_str_eq(fake.calls[0].node, "a");
    ck_assert_int_eq(test_answer(p, 0, 429, WIRE_REASON_MEM_CAPACITY, 30000, 1000, 0), 0);
    /* s1: held by b, wants two copies; c is excluded for it until 50000. */
    ck_assert_int_eq(placer_want(p, "s1", "file:///x", 10, 10, 2, held_by_b, 1), 0);
    ck_assert_int_eq(placer_exclude(p, "s1", "c", 50000), 0);

    ck_assert_int_eq(placer_node_remove(p, "b"), -EINVAL); /* UP */
    ck_assert_int_eq(placer_node_remove(p, "nope"), -ENOENT);
    ck_assert_int_eq(placer_node_set(p, "b", PLACER_NODE_DOWN), 0);
    ck_assert_int_eq(placer_node_remove(p, "b"), 0);
    ck_assert_uint_eq(placer_node_count(p), 3);
    ck_assert_int_eq(placer_node_lookup(p, "b", &ni), -ENOENT);
    ck_assert_int_eq(placer_node_info(p, 1, &ni), 0);
    ck_assert_str_eq(ni.id, "c");
    ck_assert_int_eq(placer_node_info(p, 2, &ni), 0);
    ck_assert_str_eq(ni.id, "d");
    ck_assert_int_eq(placer_explain(p, "s1", 2000, buf, sizeof(buf)), 0);
    ck_assert_ptr_null(strstr(buf, "  b ("));
    ck_assert_ptr_nonnull(strstr(buf, "PENDING: 0 of 2 copies held or loading"));
    ck_assert_ptr_nonnull(strstr(buf, "  c (UP): not asked yet; not asked again for 48 s.\n"));

    /* The records moved with their nodes: s0 avoids a, s1 avoids c; both want d. */
    before = fake.n_calls;
    placer_tick(p, 2000);
    for (size_t i = before; i < fake.n_calls; i++) {
        if (strcmp(fake.calls[i].seg, "s0") == 0)
            ck_assert_str_ne(fake.calls[i].node, "a");
        else
            ck_assert_str_ne(fake.calls[i].node, "c");
    }
    ck_assert_uint_ge(test_calls_to("d", before), 1);
    /* A later node of that name is a new node, at the end of the ring. */
    ck_assert_int_eq(placer_node_set(p, "b", PLACER_NODE_UP), 0);
    ck_assert_int_eq(placer_node_info(p, 3, &ni), 0);
    ck_assert_str_eq(ni.id, "b");
    ck_assert_uint_eq(ni.assigned_total, 0);
    test_done(p);
}
END_TEST

START_TEST(test_transport_error)
{
    struct placer *p = test_placer(NULL);
    size_t before;

    test_nodes(p, abc, 3);
    test_want_n(p, 0, 3);
    ck_assert_int_eq(placer_tick(p, 1000), 3);
    ck_assert_str_eq(fake.calls[0].node, "a");
    ck_assert_int_eq(test_answer(p, 0, 0, WIRE_REASON_NONE, 0, 1000, 0), 0);
    /* The placer changes nothing about the node: that is the daemon's to decide. */
    ck_assert_int_eq(test_node_state(p, "a"), PLACER_NODE_UP);
    ck_assert_uint_eq(test_stats(p).in_flight, 2);
    ck_assert_uint_eq(test_stats(p).aborted_total, 0);
    ck_assert_uint_eq(fake.n_evs, 0);
    ck_assert_uint_eq(test_stats(p).outcomes_total[PLACER_TRANSPORT_ERROR], 1);
    ck_assert_uint_eq(test_stats(p).ready, 1);
    /* The daemon marks it SUSPECT before its next tick: s0 goes on to b. */
    ck_assert_int_eq(placer_node_set(p, "a", PLACER_NODE_SUSPECT), 0);
    ck_assert_int_eq(placer_tick(p, 1000), 1);
    ck_assert_str_eq(fake.calls[3].seg, "s0");
    ck_assert_str_eq(fake.calls[3].node, "b");
    before = fake.n_calls;
    test_want_n(p, 10, 6);
    ck_assert_int_eq(placer_tick(p, 1000), 6);
    ck_assert_uint_eq(test_calls_to("a", before), 0);
    ck_assert_uint_eq(test_calls_to("b", before), 3);
    ck_assert_uint_eq(test_calls_to("c", before), 3);
    test_done(p);
}
END_TEST

/* A DRAINING node's transport error leaves it DRAINING: its other attempts stay in flight. */
START_TEST(test_transport_error_keeps_state)
{
    struct placer *p = test_placer(NULL);
    static const char *const a[] = {"a"};

    test_nodes(p, a, 1);
    test_want_n(p, 0, 2);
    ck_assert_int_eq(placer_tick(p, 1000), 2);
    ck_assert_int_eq(placer_node_set(p, "a", PLACER_NODE_DRAINING), 0);
    ck_assert_int_eq(test_answer(p, 0, 0, WIRE_REASON_NONE, 0, 1000, 0), 0);
    ck_assert_int_eq(test_node_state(p, "a"), PLACER_NODE_DRAINING);
    ck_assert_uint_eq(test_stats(p).in_flight, 1);
    ck_assert_int_eq(test_answer(p, 1, 202, WIRE_REASON_NONE, 0, 1000, 0), 0);
    ck_assert_uint_eq(test_evs_of(EV_ACCEPTED), 1);
    test_done(p);
}
END_TEST

START_TEST(test_unexpected_status)
{
    struct placer *p = test_placer(NULL);

    test_nodes(p, abc, 2);
    test_want(p, "s0", 1);
    ck_assert_int_eq(placer_tick(p, 1000), 1);
    ck_assert_int_eq(test_answer(p, 0, 500, WIRE_REASON_NONE, 0, 1000, 0), 0);
    ck_assert_uint_eq(test_evs_of(EV_UNEXPECTED), 1);
    ck_assert_int_eq(fake.evs[0].status, 500);
    ck_assert_int_eq(test_node_state(p, "a"), PLACER_NODE_UP);
    ck_assert_int_eq(placer_tick(p, 1000), 1);
    ck_assert_str_eq(fake.calls[1].node, "b");
    /* b answers 400: a is excluded for 30 s, so s0 waits for that. */
    ck_assert_int_eq(test_answer(p, 1, 400, WIRE_REASON_NONE, 0, 2000, 0), 0);
    ck_assert_uint_eq(test_stats(p).waiting_retry, 1);
    ck_assert_uint_eq(placer_next_deadline(p), 31000);
    ck_assert_int_eq(placer_tick(p, 30999), 0);
    ck_assert_int_eq(placer_tick(p, 31000), 1);
    ck_assert_str_eq(fake.calls[2].node, "a");
    ck_assert_uint_eq(test_stats(p).outcomes_total[PLACER_UNEXPECTED], 2);
    test_done(p);
}
END_TEST

START_TEST(test_replicas)
{
    struct placer *p = test_placer(NULL);
    static const char *const ab[] = {"a", "b"};

    test_nodes(p, abc, 3);
    for (int i = 0; i < 10; i++) {
        char id[32];

        snprintf(id, sizeof(id), "r%d", i);
        test_want(p, id, 3);
    }
    ck_assert_int_eq(placer_tick(p, 1000), 30);
    for (size_t i = 0; i < 30; i += 3) {
        ck_assert_str_eq(fake.calls[i].seg, fake.calls[i + 2].seg);
        ck_assert_str_ne(fake.calls[i].node, fake.calls[i + 1].node);
        ck_assert_str_ne(fake.calls[i].node, fake.calls[i + 2].node);
        ck_assert_str_ne(fake.calls[i + 1].node, fake.calls[i + 2].node);
    }
    test_answer_all(p, 1000, NULL);
    ck_assert_uint_eq(test_stats(p).segments, 0);
    test_done(p);

    /* Two UP nodes: two copies, the third waits for a node. */
    p = test_placer(NULL);
    test_nodes(p, ab, 2);
    ck_assert_int_eq(placer_node_set(p, "c", PLACER_NODE_DOWN), 0);
    test_want(p, "r0", 3);
    ck_assert_int_eq(placer_tick(p, 1000), 2);
    ck_assert_str_eq(fake.calls[0].node, "a");
    ck_assert_str_eq(fake.calls[1].node, "b");
    test_answer_all(p, 1000, NULL);
    ck_assert_int_eq(placer_tick(p, 1000), 0);
    ck_assert_uint_eq(test_stats(p).waiting_nodes, 1);
    ck_assert_uint_eq(test_stats(p).segments, 1);
    ck_assert_int_eq(placer_node_set(p, "c", PLACER_NODE_UP), 0);
    ck_assert_uint_eq(test_stats(p).waiting_nodes, 0);
    ck_assert_int_eq(placer_tick(p, 1000), 1);
    ck_assert_str_eq(fake.calls[2].node, "c");
    test_answer_all(p, 1000, NULL);
    ck_assert_uint_eq(test_stats(p).segments, 0);
    test_done(p);
}
END_TEST

START_TEST(test_holders)
{
    struct placer *p = test_placer(NULL);
    static const char *const hb[] = {"b"};
    static const char *const hac[] = {"a", "c"};
    char id[32];

    test_nodes(p, abc, 3);
    for (int i = 0; i < 9; i++) {
        snprintf(id, sizeof(id), "h%d", i);
        ck_assert_int_eq(placer_want(p, id, "file:///x", 1, 1, 2, hb, 1), 0);
    }
    ck_assert_int_eq(placer_tick(p, 1000), 9);
    ck_assert_uint_eq(test_calls_to("b", 0), 0);
    ck_assert_uint_eq(test_calls_to("a", 0) + test_calls_to("c", 0), 9);
    /* Already satisfied: not kept, nothing fired. */
    ck_assert_int_eq(placer_want(p, "full", "file:///x", 1, 1, 2, hac, 2), 0);
    ck_assert_int_eq(placer_explain(p, "full", 0, id, sizeof(id)), -ENOENT);
    /* Unknown holders are registered DOWN and never chosen either. */
    {
        static const char *const hz[] = {"z"};

        ck_assert_int_eq(placer_want(p, "hz", "file:///x", 1, 1, 1, hz, 1), 0);
        ck_assert_int_eq(test_node_state(p, "z"), PLACER_NODE_DOWN);
        ck_assert_uint_eq(test_stats(p).segments, 9);
        ck_assert_int_eq(placer_node_set(p, "z", PLACER_NODE_UP), 0);
        ck_assert_int_eq(placer_want(p, "hz2", "file:///x", 1, 1, 2, hz, 1), 0);
        ck_assert_int_eq(placer_tick(p, 1000), 1);
        ck_assert_str_ne(fake.calls[9].node, "z");
    }
    ck_assert_int_eq(placer_want(p, "bad", "file:///x", 1, 1, 0, NULL, 0), -EINVAL);
    ck_assert_int_eq(placer_want(p, "", "file:///x", 1, 1, 1, NULL, 0), -EINVAL);
    test_done(p);
}
END_TEST

START_TEST(test_want_update)
{
    struct placer *p = test_placer(NULL);
    static const char *const ha[] = {"a"};

    test_nodes(p, abc, 3);
    test_want(p, "s0", 1);
    test_want(p, "s0", 1);
    ck_assert_uint_eq(test_stats(p).ready, 1);
    ck_assert_int_eq(placer_tick(p, 1000), 1);
    /* Again while in flight: no duplicate. */
    test_want(p, "s0", 1);
    ck_assert_int_eq(placer_tick(p, 1000), 0);
    /* More replicas: one more copy, elsewhere. */
    test_want(p, "s0", 2);
    ck_assert_int_eq(placer_tick(p, 1000), 1);
    ck_assert_str_eq(fake.calls[1].node, "b");
    ck_assert_int_eq(test_answer(p, 0, 202, WIRE_REASON_NONE, 0, 1000, 0), 0);
    /* The catalog says a holds it: b's copy is still in flight, no third. */
    ck_assert_int_eq(placer_want(p, "s0", "file:///y", 1, 1, 2, ha, 1), 0);
    ck_assert_int_eq(placer_tick(p, 1000), 0);
    ck_assert_int_eq(test_answer(p, 1, 202, WIRE_REASON_NONE, 0, 1000, 0), 0);
    ck_assert_uint_eq(test_stats(p).segments, 0);
    ck_assert_uint_eq(fake.n_calls, 2);
    /* Forget aborts the attempt; its answer is late. */
    test_want(p, "s1", 1);
    ck_assert_int_eq(placer_tick(p, 1000), 1);
    ck_assert_int_eq(placer_forget(p, "s1"), 0);
    ck_assert_int_eq(placer_forget(p, "s1"), -ENOENT);
    ck_assert_uint_eq(test_stats(p).in_flight, 0);
    ck_assert_int_eq(test_answer(p, 2, 202, WIRE_REASON_NONE, 0, 1000, 0), -ENOENT);
    ck_assert_uint_eq(test_evs_of(EV_ACCEPTED), 2);
    test_done(p);
}
END_TEST

START_TEST(test_invalid_quorum)
{
    struct placer *p = test_placer(NULL);
    static const char *const x[] = {"x"};
    char buf[64];

    test_nodes(p, abc, 3);
    test_want(p, "s0", 1);
    ck_assert_int_eq(placer_tick(p, 1000), 1);
    ck_assert_int_eq(test_answer(p, 0, 422, WIRE_REASON_SEGMENT_INVALID, 0, 1000, 0), 0);
    ck_assert_uint_eq(test_evs_of(EV_INVALID), 0);
    ck_assert_int_eq(placer_tick(p, 1000), 1);
    ck_assert_str_eq(fake.calls[1].node, "b");
    ck_assert_int_eq(test_answer(p, 1, 422, WIRE_REASON_SEGMENT_INVALID, 0, 1000, 0), 0);
    ck_assert_uint_eq(test_evs_of(EV_INVALID), 1);
    ck_assert_str_eq(fake.evs[0].seg, "s0");
    ck_assert_int_eq(placer_explain(p, "s0", 0, buf, sizeof(buf)), -ENOENT);
    ck_assert_uint_eq(test_stats(p).invalid_total, 1);
    ck_assert_uint_eq(test_stats(p).outcomes_total[PLACER_INVALID], 2);
    ck_assert_int_eq(placer_tick(p, 1000), 0);
    ck_assert_uint_eq(test_calls_to("c", 0), 0);
    test_done(p);

    /* A cluster of one node: its word is enough. */
    p = test_placer(NULL);
    test_nodes(p, x, 1);
    test_want(p, "s1", 1);
    ck_assert_int_eq(placer_tick(p, 1000), 1);
    ck_assert_int_eq(test_answer(p, 0, 422, WIRE_REASON_SEGMENT_INVALID, 0, 1000, 0), 0);
    ck_assert_uint_eq(test_evs_of(EV_INVALID), 1);
    ck_assert_uint_eq(test_stats(p).segments, 0);
    test_done(p);

    /* One node UP of three: its 422 alone is no quorum, however few are UP. */
    p = test_placer(NULL);
    test_nodes(p, abc, 3);
    ck_assert_int_eq(placer_node_set(p, "b", PLACER_NODE_DOWN), 0);
    ck_assert_int_eq(placer_node_set(p, "c", PLACER_NODE_SUSPECT), 0);
    test_want(p, "s2", 1);
    ck_assert_int_eq(placer_tick(p, 1000), 1);
    ck_assert_str_eq(fake.calls[0].node, "a");
    ck_assert_int_eq(test_answer(p, 0, 422, WIRE_REASON_SEGMENT_INVALID, 0, 1000, 0), 0);
    ck_assert_uint_eq(test_evs_of(EV_INVALID), 0);
    ck_assert_uint_eq(test_stats(p).segments, 1);
    ck_assert_uint_eq(test_stats(p).waiting_nodes, 1);
    ck_assert_int_eq(placer_tick(p, 1000), 0); /* a is not asked again */
    /* A second node says so too: now it is. */
    ck_assert_int_eq(placer_node_set(p, "b", PLACER_NODE_UP), 0);
    ck_assert_int_eq(placer_tick(p, 1000), 1);
    ck_assert_str_eq(fake.calls[1].node, "b");
    ck_assert_int_eq(test_answer(p, 1, 422, WIRE_REASON_SEGMENT_INVALID, 0, 1000, 0), 0);
    ck_assert_uint_eq(test_evs_of(EV_INVALID), 1);
    ck_assert_uint_eq(test_stats(p).segments, 0);
    test_done(p);

    /* Two of three nodes DOWN: the one left decides (no verdict would ever come). */
    p = test_placer(NULL);
    test_nodes(p, abc, 3);
    ck_assert_int_eq(placer_node_set(p, "b", PLACER_NODE_DOWN), 0);
    ck_assert_int_eq(placer_node_set(p, "c", PLACER_NODE_DOWN), 0);
    test_want(p, "s3", 1);
    ck_assert_int_eq(placer_tick(p, 1000), 1);
    ck_assert_int_eq(test_answer(p, 0, 422, WIRE_REASON_SEGMENT_INVALID, 0, 1000, 0), 0);
    ck_assert_uint_eq(test_evs_of(EV_INVALID), 1);
    ck_assert_uint_eq(test_stats(p).segments, 0);
    test_done(p);
}
END_TEST

START_TEST(test_invalid_overruled)
{
    struct placer *p = test_placer(NULL);
    static const char *const abcd[] = {"a", "b", "c", "d"};
    char buf[512];

    /* The daemon knows a good copy: a quorum of 422s is node-local, the segment stays. */
    test_invalid_agree = false;
    test_nodes(p, abcd, 4);
    test_want(p, "s0", 1);
    ck_assert_int_eq(placer_tick(p, 1000), 1);
    ck_assert_int_eq(test_answer(p, 0, 422, WIRE_REASON_SEGMENT_INVALID, 0, 1000, 0), 0);
    ck_assert_int_eq(placer_tick(p, 1000), 1);
    ck_assert_int_eq(test_answer(p, 1, 422, WIRE_REASON_SEGMENT_INVALID, 0, 1000, 0), 0);
    ck_assert_uint_eq(test_evs_of(EV_INVALID), 1);
    ck_assert_uint_eq(test_stats(p).invalid_total, 0);
    ck_assert_uint_eq(test_stats(p).segments, 1);
    ck_assert_int_eq(placer_explain(p, "s0", 1000, buf, sizeof(buf)), 0);
    ck_assert_ptr_nonnull(strstr(buf, " 2 nodes refused its file as invalid (422)."));
    /* The next node is asked; the two that said 422 never again. */
    ck_assert_int_eq(placer_tick(p, 1000), 1);
    ck_assert_str_eq(fake.calls[2].node, "c");
    ck_assert_int_eq(test_answer(p, 2, 202, WIRE_REASON_NONE, 0, 1000, 0), 0);
    ck_assert_uint_eq(test_evs_of(EV_ACCEPTED), 1);
    ck_assert_uint_eq(test_stats(p).segments, 0);
    ck_assert_uint_eq(test_calls_to("a", 0) + test_calls_to("b", 0), 2);
    test_done(p);
}
END_TEST

START_TEST(test_skip_states)
{
    struct placer *p = test_placer(NULL);
    static const char *const e[] = {"e"};
    size_t before;

    ck_assert_int_eq(placer_node_set(p, "a", PLACER_NODE_DRAINING), 0);
    ck_assert_int_eq(placer_node_set(p, "b", PLACER_NODE_DOWN), 0);
    ck_assert_int_eq(placer_node_set(p, "c", PLACER_NODE_UP), 0);
    ck_assert_int_eq(placer_node_set(p, "d", PLACER_NODE_SUSPECT), 0);
    test_nodes(p, e, 1);
    ck_assert_int_eq(placer_node_set(p, "c", (enum placer_node_state)99), -EINVAL);
    test_want_n(p, 0, 6);
    ck_assert_int_eq(placer_tick(p, 1000), 6);
    ck_assert_uint_eq(test_calls_to("c", 0), 3);
    ck_assert_uint_eq(test_calls_to("e", 0), 3);
    /* 503 DRAINING from e: reported, but e's state is the daemon's to change. */
    for (size_t i = 0; i < 6; i++) {
        if (strcmp(fake.calls[i].node, "e") == 0)
            ck_assert_int_eq(test_answer(p, i, 503, WIRE_REASON_DRAINING, 0, 1000, 0), 0);
    }
    ck_assert_int_eq(test_node_state(p, "e"), PLACER_NODE_UP);
    /* The daemon agrees: e takes nothing more, its segments go to c. */
    ck_assert_int_eq(placer_node_set(p, "e", PLACER_NODE_DRAINING), 0);
    ck_assert_uint_eq(test_evs_of(EV_REFUSED), 3);
    ck_assert_uint_eq(fake.evs[0].retry, 1000); /* no Retry-After: the default */
    before = fake.n_calls;
    test_want_n(p, 10, 4);
    ck_assert_int_eq(placer_tick(p, 1000), 7);
    ck_assert_uint_eq(test_calls_to("c", before), 7);
    test_done(p);
}
END_TEST

START_TEST(test_per_node_cap)
{
    struct placer_config cfg = {.max_in_flight_per_node = 2};
    struct placer *p = test_placer(&cfg);
    static const char *const a[] = {"a"};
    struct placer_node_info ni;

    test_nodes(p, a, 1);
    test_want_n(p, 0, 10);
    ck_assert_int_eq(placer_tick(p, 1000), 2);
    ck_assert_int_eq(placer_tick(p, 1000), 0);
    ck_assert_int_eq(placer_node_info(p, 0, &ni), 0);
    ck_assert_uint_eq(ni.in_flight, 2);
    ck_assert_uint_eq(test_stats(p).in_flight, 2);
    ck_assert_uint_eq(placer_next_deadline(p), UINT64_MAX);
    ck_assert_int_eq(test_answer(p, 0, 202, WIRE_REASON_NONE, 0, 1000, 0), 0);
    ck_assert_uint_eq(placer_next_deadline(p), 0);
    ck_assert_int_eq(placer_tick(p, 1000), 1);
    ck_assert_str_eq(fake.calls[2].seg, "s2");
    for (int i = 0; i < 20 && test_stats(p).segments > 0; i++) {
        test_answer_all(p, 1000, NULL);
        ck_assert_int_le(placer_tick(p, 1000), 2);
        ck_assert_uint_le(test_stats(p).in_flight, 2);
    }
    ck_assert_uint_eq(fake.n_calls, 10);
    test_done(p);

    /* The global bound. */
    cfg = (struct placer_config){.max_in_flight_total = 3};
    p = test_placer(&cfg);
    test_nodes(p, abc, 2);
    test_want_n(p, 0, 10);
    ck_assert_int_eq(placer_tick(p, 1000), 3);
    ck_assert_int_eq(placer_tick(p, 1000), 0);
    ck_assert_int_eq(test_answer(p, 1, 202, WIRE_REASON_NONE, 0, 1000, 0), 0);
    ck_assert_int_eq(placer_tick(p, 1000), 1);
    test_done(p);
}
END_TEST

/* The daemon's window sets a node's bound: 0 sends nothing, raising it wakes its waiters. */
START_TEST(test_node_limit)
{
    struct placer_config cfg = {.max_in_flight_per_node = 8};
    struct placer *p = test_placer(&cfg);
    static const char *const a[] = {"a"};
    struct placer_node_info ni;

    test_nodes(p, a, 1);
    ck_assert_int_eq(placer_node_set_limit(p, "a", 0), 0);
    test_want_n(p, 0, 5);
    ck_assert_int_eq(placer_tick(p, 1000), 0);
    ck_assert_uint_eq(test_stats(p).ready, 5);
    ck_assert_uint_eq(placer_next_deadline(p), UINT64_MAX);
    ck_assert_int_eq(placer_node_set_limit(p, "a", 2), 0);
    ck_assert_uint_eq(placer_next_deadline(p), 0);
    ck_assert_int_eq(placer_tick(p, 1000), 2);
    ck_assert_int_eq(placer_tick(p, 1000), 0);
    /* Lowered under what is in flight: those stay, nothing new goes. */
    ck_assert_int_eq(placer_node_set_limit(p, "a", 1), 0);
    ck_assert_int_eq(test_answer(p, 0, 202, WIRE_REASON_NONE, 0, 1000, 0), 0);
    ck_assert_int_eq(placer_tick(p, 1000), 0);
    ck_assert_int_eq(test_answer(p, 1, 202, WIRE_REASON_NONE, 0, 1000, 0), 0);
    ck_assert_int_eq(placer_tick(p, 1000), 1);
    /* Never above max_in_flight_per_node. */
    ck_assert_int_eq(placer_node_set_limit(p, "a", 1000), 0);
    ck_assert_int_eq(placer_node_lookup(p, "a", &ni), 0);
    ck_assert_uint_eq(ni.limit, 8);
    ck_assert_int_eq(placer_node_set_limit(p, "zz", 1), -ENOENT);
    ck_assert_int_eq(placer_node_set_limit(p, "", 1), -EINVAL);
    test_done(p);
}
END_TEST

START_TEST(test_capacity_wait)
{
    struct placer_config cfg = {.max_in_flight_per_node = 1};
    struct placer *p = test_placer(&cfg);
    static const char *const ab[] = {"a", "b"};

    /* s1 and s2 may only go to a, which takes one at a time; b stays free. */
    test_nodes(p, ab, 2);
    test_want_n(p, 0, 3);
    ck_assert_int_eq(placer_exclude(p, "s1", "b", 1000000), 0);
    ck_assert_int_eq(placer_exclude(p, "s2", "b", 1000000), 0);
    ck_assert_int_eq(placer_tick(p, 1000), 1);
    ck_assert_str_eq(fake.calls[0].node, "a");
    ck_assert_uint_eq(test_stats(p).waiting_capacity, 2);
    ck_assert_int_eq(placer_tick(p, 1000), 0);
    ck_assert_int_eq(test_answer(p, 0, 202, WIRE_REASON_NONE, 0, 1000, 0), 0);
    ck_assert_int_eq(placer_tick(p, 1000), 1);
    ck_assert_str_eq(fake.calls[1].seg, "s1");
    ck_assert_str_eq(fake.calls[1].node, "a");
    ck_assert_uint_eq(test_stats(p).waiting_capacity, 1);
    /* a goes away: its waiter moves on and finds nothing but its exclusion. */
    ck_assert_int_eq(placer_node_set(p, "a", PLACER_NODE_DOWN), 0);
    ck_assert_uint_eq(test_stats(p).waiting_capacity, 0);
    ck_assert_int_eq(placer_tick(p, 1000), 0);
    ck_assert_uint_eq(test_stats(p).waiting_retry, 2);
    ck_assert_uint_eq(placer_next_deadline(p), 1000000);
    test_done(p);
}
END_TEST

START_TEST(test_node_down_in_flight)
{
    struct placer *p = test_placer(NULL);
    static const char *const ab[] = {"a", "b"};

    test_nodes(p, ab, 2);
    test_want_n(p, 0, 2);
    ck_assert_int_eq(placer_tick(p, 1000), 2);
    ck_assert_str_eq(fake.calls[0].node, "a");
    ck_assert_int_eq(placer_node_set(p, "a", PLACER_NODE_DOWN), 0);
    ck_assert_uint_eq(test_stats(p).in_flight, 1);
    ck_assert_uint_eq(test_stats(p).aborted_total, 1);
    ck_assert_int_eq(placer_tick(p, 1000), 1);
    ck_assert_str_eq(fake.calls[2].seg, "s0");
    ck_assert_str_eq(fake.calls[2].node, "b");
    /* The late 202 from a is ignored. */
    ck_assert_int_eq(test_answer(p, 0, 202, WIRE_REASON_NONE, 0, 1100, 0), -ENOENT);
    ck_assert_uint_eq(test_evs_of(EV_ACCEPTED), 0);
    ck_assert_uint_eq(test_stats(p).late_answers_total, 1);
    ck_assert_int_eq(test_answer(p, 2, 202, WIRE_REASON_NONE, 0, 1100, 0), 0);
    ck_assert_uint_eq(test_evs_of(EV_ACCEPTED), 1);
    ck_assert_str_eq(fake.evs[0].node, "b");
    /* SUSPECT aborts too; DRAINING keeps the attempt. */
    test_want(p, "s5", 1);
    ck_assert_int_eq(placer_tick(p, 1000), 1);
    ck_assert_int_eq(placer_node_set(p, "b", PLACER_NODE_DRAINING), 0);
    ck_assert_uint_eq(test_stats(p).in_flight, 2);
    ck_assert_int_eq(placer_node_set(p, "b", PLACER_NODE_SUSPECT), 0);
    ck_assert_uint_eq(test_stats(p).in_flight, 0);
    ck_assert_uint_eq(test_stats(p).aborted_total, 3);
    ck_assert_int_eq(placer_tick(p, 1000), 0);
    ck_assert_uint_eq(test_stats(p).ready, 2);
    test_done(p);
}
END_TEST

START_TEST(test_exclusion)
{
    struct placer *p = test_placer(NULL);
    static const char *const ab[] = {"a", "b"};

    test_nodes(p, ab, 2);
    test_want_n(p, 0, 2);
    ck_assert_int_eq(placer_exclude(p, "s0", "a", 5000), 0);
    ck_assert_int_eq(placer_exclude(p, "s0", "a", 3000), 0); /* never shortens */
    ck_assert_int_eq(placer_exclude(p, "nope", "a", 5000), -ENOENT);
    ck_assert_int_eq(placer_exclude(p, "s0", "zz", 5000), -ENOENT);
    ck_assert_int_eq(placer_tick(p, 1000), 2);
    ck_assert_str_eq(fake.calls[0].seg, "s0");
    ck_assert_str_eq(fake.calls[0].node, "b");
    ck_assert_str_eq(fake.calls[1].seg, "s1");
    ck_assert_str_eq(fake.calls[1].node, "a");
    /*
     * b refuses for 1 s while a is excluded until 5000: s0 backs off until
     * b's Retry-After (the earliest), not a's exclusion; b is asked again.
     */
    ck_assert_int_eq(test_answer(p, 0, 429, WIRE_REASON_MEM_PRESSURE, 1000, 1000, 0), 0);
    ck_assert_uint_eq(test_evs_of(EV_BACKOFF), 1);
    ck_assert_uint_eq(fake.evs[fake.n_evs - 1].until, 1000 + 800);
    ck_assert_int_eq(placer_tick(p, 1800), 0);                /* b excluded until 2000 */
    ck_assert_uint_eq(placer_next_deadline(p), 2000);
    ck_assert_int_eq(placer_tick(p, 2000), 1);
    ck_assert_str_eq(fake.calls[2].seg, "s0");
    ck_assert_str_eq(fake.calls[2].node, "b");
    /* b refuses again for longer: now a's exclusion (5000) comes first. */
    ck_assert_int_eq(test_answer(p, 2, 429, WIRE_REASON_MEM_PRESSURE, 9000, 2000, 0), 0);
    ck_assert_uint_eq(placer_next_deadline(p), 5000);
    ck_assert_int_eq(placer_tick(p, 4999), 0);
    ck_assert_int_eq(placer_tick(p, 5000), 1);
    ck_assert_str_eq(fake.calls[3].seg, "s0");
    ck_assert_str_eq(fake.calls[3].node, "a");
    /*
     * A refusal's Retry-After excludes the pair the same way. Both nodes have
     * refused in this round: the backoff ends at the earliest Retry-After
     * (b's 1000 ms), and a stays excluded for its 60 s.
     */
    ck_assert_int_eq(test_answer(p, 3, 429, WIRE_REASON_MEM_CAPACITY, 60000, 5000, 0), 0);
    ck_assert_uint_eq(placer_next_deadline(p), 11000); /* b's 9000 ms from 2000 */
    ck_assert_int_eq(placer_tick(p, 11000), 1);
    ck_assert_str_eq(fake.calls[4].seg, "s0");
    ck_assert_str_eq(fake.calls[4].node, "b");
    test_done(p);
}
END_TEST

START_TEST(test_explain)
{
    struct placer *p = test_placer(NULL);
    char buf[2048], small[16];

    test_nodes(p, abc, 3);
    test_want(p, "s0", 1);
    ck_assert_int_eq(placer_tick(p, 1000), 1);
    ck_assert_int_eq(test_answer(p, 0, 429, WIRE_REASON_MEM_PRESSURE, 2000, 1000, 0), 0);
    ck_assert_int_eq(placer_tick(p, 1000), 1);
    ck_assert_int_eq(test_answer(p, 1, 429, WIRE_REASON_LATENCY_SLO, 5000, 1000, 0), 0);
    ck_assert_int_eq(placer_tick(p, 1000), 1);
    /* Sentences, with spans from now (1500 ms: half a second after the answers). */
    ck_assert_int_eq(placer_explain(p, "s0", 1500, buf, sizeof(buf)), 0);
    ck_assert_ptr_nonnull(strstr(buf, "PENDING: 0 of 1 copy held or loading, 1 assignment out. "
                                      "Waiting for the nodes' answers.\n"));
    ck_assert_ptr_nonnull(strstr(buf, "  a (UP): refused it <1 s ago with MEM_PRESSURE (HTTP "
                                      "429); not asked again for 2 s.\n"));
    ck_assert_ptr_nonnull(strstr(buf, "  b (UP): refused it <1 s ago with LATENCY_SLO (HTTP "
                                      "429); not asked again for 5 s.\n"));
    ck_assert_ptr_nonnull(strstr(buf, "  c (UP): has the assignment, no answer yet.\n"));
    ck_assert_ptr_null(strstr(buf, "_ms="));
    ck_assert_int_eq(test_answer(p, 2, 507, WIRE_REASON_DISK_FULL, 1000, 1000, 0x80000000u), 0);
    ck_assert_int_eq(placer_explain(p, "s0", 1000, buf, sizeof(buf)), 0);
    ck_assert_ptr_nonnull(strstr(buf, "Every node refused it in this round; the next round "
                                      "starts in <1 s."));
    ck_assert_ptr_nonnull(strstr(buf, "  c (UP): refused it <1 s ago with DISK_FULL (HTTP 507)"));
    ck_assert_int_eq(placer_explain(p, "s0", 1000, small, sizeof(small)), 0);
    ck_assert_uint_eq(strlen(small), sizeof(small) - 1);
    ck_assert_int_eq(placer_explain(p, "nope", 0, buf, sizeof(buf)), -ENOENT);
    /* Every node DRAINING: said so, with what to do. */
    test_want(p, "s9", 1);
    for (size_t i = 0; i < 3; i++)
        ck_assert_int_eq(placer_node_set(p, abc[i], PLACER_NODE_DRAINING), 0);
    placer_tick(p, 70000);
    ck_assert_int_eq(placer_explain(p, "s9", 70000, buf, sizeof(buf)), 0);
    ck_assert_msg(strstr(buf, "no node is UP (3 DRAINING): every node is DRAINING") != NULL,
                  "%s", buf);
    ck_assert_ptr_nonnull(strstr(buf, "  a (DRAINING): gets nothing while DRAINING.\n"));
    test_done(p);
}
END_TEST

START_TEST(test_reentry)
{
    struct placer *p = test_placer(NULL);
    static const char *const x[] = {"x"};

    /* on_invalid tries to tick from inside the callback and gets -EBUSY. */
    test_nodes(p, x, 1);
    test_want(p, "s0", 1);
    ck_assert_int_eq(placer_tick(p, 1000), 1);
    ck_assert_int_eq(test_answer(p, 0, 422, WIRE_REASON_SEGMENT_INVALID, 0, 1000, 0), 0);
    ck_assert_uint_eq(test_evs_of(EV_INVALID), 1);
    test_done(p);
}
END_TEST

/*
 * borrow_strings: the placer hands back the caller's own id and uri (no
 * copy); by default it hands back its copies, so the caller's buffers may
 * change after placer_want().
 */
START_TEST(test_borrow_strings)
{
    struct placer_config cfg = {.borrow_strings = true};
    static const char *const x[] = {"x"};
    char id[16] = "s-borrowed", uri[32] = "file:///data/b.seg";
    char uri2[32] = "file:///data/b2.seg";
    struct placer *p = test_placer(&cfg);

    test_nodes(p, x, 1);
    ck_assert_int_eq(placer_want(p, id, uri, 10, 10, 1, NULL, 0), 0);
    /* Wanted again with another uri: the new one is borrowed in its place. */
    ck_assert_int_eq(placer_want(p, id, uri2, 10, 10, 1, NULL, 0), 0);
    ck_assert_int_eq(placer_tick(p, 1000), 1);
    ck_assert_ptr_eq(test_assigned_id, id);
    ck_assert_ptr_eq(test_assigned_uri, uri2);
    ck_assert_int_eq(placer_forget(p, id), 0);
    test_done(p);

    p = test_placer(NULL);
    test_nodes(p, x, 1);
    ck_assert_int_eq(placer_want(p, id, uri, 10, 10, 1, NULL, 0), 0);
    memset(id, 'z', 8);
    memset(uri, 'z', 8);
    ck_assert_int_eq(placer_tick(p, 1000), 1);
    ck_assert_ptr_ne(test_assigned_id, id);
    ck_assert_str_eq(test_assigned_id, "s-borrowed");
    ck_assert_str_eq(test_assigned_uri, "file:///data/b.seg");
    test_done(p);
}
END_TEST

/*
 * Random operations against a mirror of what the placer was told, checking
 * every assignment as it is fired: to an UP node under its bound, never to a
 * holder, a node that said 422, an excluded pair or a pair in flight. Then
 * everything comes UP and accepts, and every segment must get placed.
 */
enum { RN_NODES = 5, RN_SEGS = 40, RN_CAP = 3, RN_TOTAL = 10, RN_CALLS = 1 << 16 };

struct rn_call {
    uint64_t id;
    int seg, node;
    bool live;
};

static struct {
    enum placer_node_state state[RN_NODES];
    bool holder[RN_SEGS][RN_NODES], invalid[RN_SEGS][RN_NODES];
    uint64_t excluded[RN_SEGS][RN_NODES];
    struct rn_call calls[RN_CALLS];
    size_t n_calls;
    uint64_t now;
    uint64_t rng;
} rn;

static uint32_t rn_rand(void)
{
    rn.rng ^= rn.rng << 13;
    rn.rng ^= rn.rng >> 7;
    rn.rng ^= rn.rng << 17;
    return (uint32_t)(rn.rng >> 16);
}

static int rn_index(const char *id)
{
    return atoi(id + 1);
}

/* Node number i's id, "n<i>" (valid until the next call). */
static const char *rn_name(int node)
{
    static char id[16];

    snprintf(id, sizeof(id), "n%d", node);
    return id;
}

static size_t rn_live_on(int node)
{
    size_t n = 0;

    for (size_t i = 0; i < rn.n_calls; i++)
        n += rn.calls[i].live && rn.calls[i].node == node;
    return n;
}

static void rn_kill(int seg, int node)
{
    for (size_t i = 0; i < rn.n_calls; i++)
        if (rn.calls[i].live && (seg < 0 || rn.calls[i].seg == seg) &&
            (node < 0 || rn.calls[i].node == node))
            rn.calls[i].live = false;
}

static void rn_assign(void *ctx, uint64_t id, const char *node_id,
                      const struct placer_segment *seg)
{
    int node = rn_index(node_id), sg = rn_index(seg->id);
    size_t live = 0, same_pair = 0;

    ck_assert_int_eq(rn.state[node], PLACER_NODE_UP);
    ck_assert(!rn.holder[sg][node]);
    ck_assert(!rn.invalid[sg][node]);
    ck_assert_uint_le(rn.excluded[sg][node], rn.now);
    /* Plain loops: each ck_assert is a write to Check's log. */
    for (size_t i = 0; i < rn.n_calls; i++) {
        live += rn.calls[i].live;
        same_pair += rn.calls[i].live && rn.calls[i].seg == sg && rn.calls[i].node == node;
    }
    ck_assert_uint_eq(same_pair, 0);
    ck_assert_uint_lt(live, RN_TOTAL);
    ck_assert_uint_lt(rn_live_on(node), RN_CAP);
    ck_assert_uint_lt(rn.n_calls, RN_CALLS);
    rn.calls[rn.n_calls++] = (struct rn_call){id, sg, node, true};
}

static void rn_on_accepted(void *ctx, const struct placer_segment *seg, const char *node)
{
    rn.holder[rn_index(seg->id)][rn_index(node)] = true;
}

static bool rn_on_invalid(void *ctx, const struct placer_segment *seg)
{
    rn_kill(rn_index(seg->id), -1);
    return true;
}

static const struct placer_ops rn_ops = {
    .assign = rn_assign,
    .on_accepted = rn_on_accepted,
    .on_invalid = rn_on_invalid,
};

static void rn_want(struct placer *p, int sg)
{
    char id[16], names[RN_NODES][16], buf[8];
    const char *holders[RN_NODES];
    size_t nh = 0;

    snprintf(id, sizeof(id), "s%d", sg);
    if (placer_explain(p, id, 0, buf, sizeof(buf)) == -ENOENT) {
        /* Unknown to the placer (never wanted, or dropped): it remembers nothing. */
        memset(rn.excluded[sg], 0, sizeof(rn.excluded[sg]));
        memset(rn.invalid[sg], 0, sizeof(rn.invalid[sg]));
    }
    for (int n = 0; n < RN_NODES; n++) {
        rn.holder[sg][n] = rn_rand() % 5 == 0;
        if (rn.holder[sg][n]) {
            snprintf(names[nh], sizeof(names[nh]), "n%d", n);
            holders[nh] = names[nh];
            nh++;
        }
    }
    ck_assert_int_eq(placer_want(p, id, "file:///x", 1, 1, 1 + rn_rand() % 3, holders, nh), 0);
}

static void rn_answer(struct placer *p, size_t i, bool accept_only)
{
    static const int statuses[] = {202, 202, 202, 429, 503, 507, 422, 0, 500};
    static const enum wire_reason reasons[] = {WIRE_REASON_MEM_PRESSURE, WIRE_REASON_DRAINING,
                                               WIRE_REASON_MEM_CAPACITY};
    struct rn_call *c = &rn.calls[i];
    struct placer_answer a = {accept_only ? 202 : statuses[rn_rand() % 9], WIRE_REASON_NONE,
                              rn_rand() % 3 * 1500};
    bool live = c->live;
    int r;

    if (a.http_status == 429 || a.http_status == 503 || a.http_status == 507)
        a.reason = reasons[rn_rand() % 3];
    c->live = false;
    r = placer_on_answer(p, c->id, &a, rn.now, rn_rand());
    ck_assert_int_eq(r, live ? 0 : -ENOENT);
    if (!live)
        return;
    switch (placer_classify(a.http_status)) {
    case PLACER_REFUSED: {
        uint64_t until = rn.now + (a.retry_after_ms ? a.retry_after_ms : 1000);

        if (until > rn.excluded[c->seg][c->node])
            rn.excluded[c->seg][c->node] = until;
        /* As the coordinator's membership does, once the answer is handled. */
        if (a.reason == WIRE_REASON_DRAINING && rn.state[c->node] == PLACER_NODE_UP) {
            ck_assert_int_eq(placer_node_set(p, rn_name(c->node), PLACER_NODE_DRAINING), 0);
            rn.state[c->node] = PLACER_NODE_DRAINING;
        }
        break;
    }
    case PLACER_TRANSPORT_ERROR:
        if (rn.state[c->node] == PLACER_NODE_UP) {
            ck_assert_int_eq(placer_node_set(p, rn_name(c->node), PLACER_NODE_SUSPECT), 0);
            rn.state[c->node] = PLACER_NODE_SUSPECT;
            rn_kill(-1, c->node);
        }
        break;
    case PLACER_UNEXPECTED:
        if (rn.now + 30000 > rn.excluded[c->seg][c->node])
            rn.excluded[c->seg][c->node] = rn.now + 30000;
        break;
    case PLACER_INVALID:
        rn.invalid[c->seg][c->node] = true;
        break;
    default:
        break;
    }
}

START_TEST(test_random_invariants)
{
    struct placer_config cfg = {.max_in_flight_per_node = RN_CAP,
                                .max_in_flight_total = RN_TOTAL};
    struct placer *p;
    char id[16];
    int rounds = 0;

    memset(&rn, 0, sizeof(rn));
    rn.rng = 0x9E3779B97F4A7C15ull;
    rn.now = 1000;
    p = placer_new(&cfg, &rn_ops, NULL);
    for (int n = 0; n < RN_NODES; n++) {
        snprintf(id, sizeof(id), "n%d", n);
        ck_assert_int_eq(placer_node_set(p, id, PLACER_NODE_UP), 0);
    }
    for (int step = 0; step < 20000 && rn.n_calls < RN_CALLS - 100; step++) {
        uint32_t op = rn_rand() % 100;

        rn.now += rn_rand() % 200;
        if (op < 15) {
            rn_want(p, (int)(rn_rand() % RN_SEGS));
        } else if (op < 45) {
            ck_assert_int_ge(placer_tick(p, rn.now), 0);
        } else if (op < 85) {
            if (rn.n_calls > 0)
                rn_answer(p, rn.n_calls - 1 - rn_rand() % (rn.n_calls < 20 ? rn.n_calls : 20),
                          false);
        } else if (op < 93) {
            int n = (int)(rn_rand() % RN_NODES);
            enum placer_node_state st = rn_rand() % 2 ? PLACER_NODE_UP : rn_rand() % 3 + 1;

            snprintf(id, sizeof(id), "n%d", n);
            ck_assert_int_eq(placer_node_set(p, id, st), 0);
            rn.state[n] = st;
            if (st == PLACER_NODE_DOWN || st == PLACER_NODE_SUSPECT)
                rn_kill(-1, n);
        } else if (op < 97) {
            int sg = (int)(rn_rand() % RN_SEGS), n = (int)(rn_rand() % RN_NODES);
            char nid[16];
            uint64_t until;
            int r;

            snprintf(id, sizeof(id), "s%d", sg);
            snprintf(nid, sizeof(nid), "n%d", n);
            until = rn.now + rn_rand() % 5000;
            r = placer_exclude(p, id, nid, until);
            ck_assert(r == 0 || r == -ENOENT);
            if (r == 0 && until > rn.excluded[sg][n])
                rn.excluded[sg][n] = until;
        } else {
            int sg = (int)(rn_rand() % RN_SEGS);
            int r;

            snprintf(id, sizeof(id), "s%d", sg);
            r = placer_forget(p, id);
            ck_assert(r == 0 || r == -ENOENT);
            rn_kill(sg, -1);
        }
    }
    ck_assert_uint_gt(rn.n_calls, 1000);

    /* Liveness: all UP, all accept, time moves past every exclusion. */
    for (int n = 0; n < RN_NODES; n++) {
        snprintf(id, sizeof(id), "n%d", n);
        ck_assert_int_eq(placer_node_set(p, id, PLACER_NODE_UP), 0);
        rn.state[n] = PLACER_NODE_UP;
    }
    for (;;) {
        struct placer_stats st;

        placer_get_stats(p, &st);
        if (st.segments == 0)
            break;
        ck_assert_int_lt(++rounds, 1000);
        rn.now += 700000;
        ck_assert_int_ge(placer_tick(p, rn.now), 0);
        for (size_t i = 0; i < rn.n_calls; i++)
            if (rn.calls[i].live)
                rn_answer(p, i, true);
    }
    placer_free(p);
}
END_TEST

static double test_now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

START_TEST(test_scale)
{
    enum { N = 100000 };
    struct placer *p = test_placer(NULL);
    double t0, t_want, t_answer = 0, tick_total = 0, tick_max = 0, first = 0, last = 0;
    int ticks = 0, bad = 0;
    char id[32];

    test_nodes(p, abc, 3);
    /* No ck_assert per call in here: each one is a write(2) to Check's log. */
    fake.cap_calls = N;
    fake.calls = malloc(N * sizeof(*fake.calls));
    ck_assert_ptr_nonnull(fake.calls);
    t0 = test_now_s();
    for (unsigned i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "s%u", i);
        bad += placer_want(p, id, "file:///data/x.seg", 1000, 64, 1, NULL, 0) != 0;
    }
    t_want = test_now_s() - t0;
    while (test_stats(p).segments > 0 && ticks < 10 * N) {
        double t = test_now_s(), d;
        int fired = placer_tick(p, 1000);
        size_t from = fake.n_calls - (size_t)(fired > 0 ? fired : 0);

        d = test_now_s() - t;
        bad += fired <= 0;
        tick_total += d;
        if (d > tick_max)
            tick_max = d;
        if (ticks == 0)
            first = d;
        last = d;
        ticks++;
        t = test_now_s();
        for (size_t i = from; i < fake.n_calls; i++) {
            struct placer_answer a = {202, WIRE_REASON_NONE, 0};

            bad += placer_on_answer(p, fake.calls[i].id, &a, 1000, 0) != 0;
        }
        t_answer += test_now_s() - t;
    }
    ck_assert_int_eq(bad, 0);
    ck_assert_uint_eq(test_stats(p).segments, 0);
    ck_assert_uint_eq(fake.n_calls, N);
    ck_assert_uint_eq(test_evs_of(EV_ACCEPTED), N);
    ck_assert_uint_eq(test_calls_to("a", 0), 33334);
    ck_assert_uint_eq(test_calls_to("b", 0), 33333);
    ck_assert_uint_eq(test_calls_to("c", 0), 33333);
    ck_assert_int_eq(ticks, (N + 191) / 192);
    printf("placer scale: %d segments, 3 nodes: want %.3f s, answers %.3f s, %d ticks, "
           "tick total %.3f s, mean %.1f us, first %.1f us, last %.1f us, max %.1f us\n",
           N, t_want, t_answer, ticks, tick_total, tick_total / ticks * 1e6, first * 1e6,
           last * 1e6, tick_max * 1e6);
    test_done(p);
}
END_TEST

static Suite *placer_suite(void)
{
    const struct {
        const char *name;
        const TTest *test;
    } cases[] = {
        {"round_robin", test_round_robin},
        {"one_refuses", test_one_refuses},
        {"all_refuse_backoff", test_all_refuse_backoff},
        {"backoff_never_past_retry", test_backoff_never_past_retry},
        {"capacity_wakes_backoff", test_capacity_wakes_backoff},
        {"node_remove", test_node_remove},
        {"transport_error", test_transport_error},
        {"transport_error_keeps_state", test_transport_error_keeps_state},
        {"unexpected_status", test_unexpected_status},
        {"replicas", test_replicas},
        {"holders", test_holders},
        {"want_update", test_want_update},
        {"invalid_quorum", test_invalid_quorum},
        {"invalid_overruled", test_invalid_overruled},
        {"skip_states", test_skip_states},
        {"per_node_cap", test_per_node_cap},
        {"capacity_wait", test_capacity_wait},
        {"node_limit", test_node_limit},
        {"node_down_in_flight", test_node_down_in_flight},
        {"exclusion", test_exclusion},
        {"explain", test_explain},
        {"reentry", test_reentry},
        {"borrow_strings", test_borrow_strings},
        {"random_invariants", test_random_invariants},
        {"scale", test_scale},
    };
    Suite *s = suite_create("placer");

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        TCase *tc = tcase_create(cases[i].name);

        tcase_add_test(tc, cases[i].test);
        if (strcmp(cases[i].name, "scale") == 0)
            tcase_set_timeout(tc, 120);
        suite_add_tcase(s, tc);
    }
    return s;
}

int main(void)
{
    return harness_run_suite(placer_suite());
}
