/*
 * check_intake: coordinator/intake alone, fed crafted report sequences (no
 * loop, no model): an older node's report is a full one never acknowledged;
 * deltas apply on the acknowledged base only; a lost report (a gap in seq
 * on the same base) applies, a lost answer (another base) asks for the
 * whole set; a digest mismatch asks for it and forgets the base; a
 * coordinator restart (a fresh intake) and a node restart (a new
 * incarnation) ask for it; an older report is ignored and a duplicate is
 * applied once. Last, the node's report_state and the intake run together
 * over random changes, lost requests and lost answers: whenever the intake
 * applies a report, the set it reconciles is the node's.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "intake.h"
#include "report.h"
#include "repset.h"
#include "wire.h"
#include "suite.h"

/* A node's set: ids "s<i>" for i in [0, 64) with present[i]. */
struct truth {
    struct wire_segment_status v[64];
    bool present[64];
};

static void truth_init(struct truth *t, size_t n)
{
    memset(t, 0, sizeof(*t));
    for (size_t i = 0; i < 64; i++) {
        snprintf(t->v[i].segment_id, sizeof(t->v[i].segment_id), "s%zu", i);
        t->v[i].state = WIRE_SEG_LOADED;
        t->v[i].row_count = 10 * (i + 1);
        t->present[i] = i < n;
    }
}

/* The present copies, packed into out; returns how many. */
static size_t truth_list(const struct truth *t, struct wire_segment_status *out)
{
    size_t n = 0;

    for (size_t i = 0; i < 64; i++)
        if (t->present[i])
            out[n++] = t->v[i];
    return n;
}

/* A report of incarnation inc, seq, carrying list[0..n) with the digest of the truth. */
static void craft(struct wire_node_report *rep, const struct truth *t, uint64_t inc, uint64_t seq,
                  bool delta, uint64_t base, struct wire_segment_status *list, size_t n,
                  char (*removed)[WIRE_ID_MAX + 1], size_t n_removed)
{
    struct wire_segment_status all[64];

    memset(rep, 0, sizeof(*rep));
    snprintf(rep->node_id, sizeof(rep->node_id), "n1");
    rep->incarnation = inc;
    rep->seq = seq;
    rep->delta = delta;
    rep->base_seq = base;
    rep->segments = list;
    rep->n_segments = n;
    rep->removed = removed;
    rep->n_removed = n_removed;
    repset_digest_of(all, truth_list(t, all), &rep->set_count, &rep->set_hash);
}

/* A full report of the truth. */
static void full(struct wire_node_report *rep, const struct truth *t, uint64_t inc, uint64_t seq,
                 struct wire_segment_status *buf)
{
    size_t n = truth_list(t, buf);

    craft(rep, t, inc, seq, false, 0, buf, n, NULL, 0);
}

/* Whether the set the intake would reconcile is the truth (by digest). */
static bool rebuilt_is(const struct intake *in, const struct wire_node_report *rep,
                       const struct intake_result *res, const struct truth *t)
{
    struct wire_segment_status *scratch = NULL, all[64];
    size_t cap = 0, n;
    const struct wire_segment_status *set = intake_set(in, rep, res, &scratch, &cap, &n);
    uint64_t c1, h1, c2, h2;

    repset_digest_of(set, n, &c1, &h1);
    repset_digest_of(all, truth_list(t, all), &c2, &h2);
    free(scratch);
    return c1 == c2 && h1 == h2;
}

/* A full report of the truth, taken: FULL, acknowledged, the base, the set the truth. */
static void take_full_ok(struct intake *in, const struct truth *t, uint64_t inc, uint64_t seq)
{
    struct wire_segment_status buf[64];
    struct wire_node_report rep;
    struct intake_result r;

    full(&rep, t, inc, seq, buf);
    intake_take(in, &rep, &r);
    ck_assert_int_eq(r.verdict, INTAKE_FULL);
    ck_assert(r.applied);
    ck_assert_uint_eq(r.ack_seq, seq);
    ck_assert(!r.send_full);
    ck_assert_uint_eq(in->acked_seq, seq);
    ck_assert(rebuilt_is(in, &rep, &r, t));
}

START_TEST(test_legacy)
{
    struct intake in;
    struct truth t;
    struct wire_segment_status buf[64];
    struct wire_node_report rep;
    struct intake_result r;

    intake_init(&in);
    truth_init(&t, 5);
    full(&rep, &t, 0, 0, buf);
    rep.set_count = rep.set_hash = 0; /* an older node sends no digest */
    for (int i = 0; i < 2; i++) {
        intake_take(&in, &rep, &r);
        ck_assert_int_eq(r.verdict, INTAKE_LEGACY);
        ck_assert(r.applied);
        ck_assert_uint_eq(r.ack_seq, 0);
        ck_assert(!r.send_full);
        ck_assert(!r.digest_mismatch);
        ck_assert(rebuilt_is(&in, &rep, &r, &t));
    }
    intake_done(&in);
}
END_TEST

START_TEST(test_full_then_deltas)
{
    struct intake in;
    struct truth t;
    struct wire_segment_status ch[2];
    char rm[1][WIRE_ID_MAX + 1] = {"s4"};
    struct wire_node_report rep;
    struct intake_result r;

    intake_init(&in);
    truth_init(&t, 5);
    take_full_ok(&in, &t, 9, 1);
    /* s1 LOADING -> DROPPED, s7 new, s4 gone. */
    t.v[1].state = WIRE_SEG_DROPPED;
    t.present[7] = true;
    t.present[4] = false;
    ch[0] = t.v[1];
    ch[1] = t.v[7];
    craft(&rep, &t, 9, 2, true, 1, ch, 2, rm, 1);
    intake_take(&in, &rep, &r);
    ck_assert_int_eq(r.verdict, INTAKE_DELTA);
    ck_assert(r.applied);
    ck_assert_uint_eq(r.ack_seq, 2);
    ck_assert(rebuilt_is(&in, &rep, &r, &t));
    /* An empty delta: applied, the same set. */
    craft(&rep, &t, 9, 3, true, 2, NULL, 0, NULL, 0);
    intake_take(&in, &rep, &r);
    ck_assert_int_eq(r.verdict, INTAKE_DELTA);
    ck_assert_uint_eq(r.ack_seq, 3);
    ck_assert(rebuilt_is(&in, &rep, &r, &t));
    intake_done(&in);
    intake_done(NULL);
}
END_TEST

START_TEST(test_lost_reports)
{
    struct intake in;
    struct truth t;
    struct wire_segment_status ch[1];
    struct wire_node_report rep;
    struct intake_result r;

    intake_init(&in);
    truth_init(&t, 3);
    take_full_ok(&in, &t, 9, 1);
    /* Report 2 never arrives; report 3 is on base 1 still: a gap in seq, and exact. */
    t.v[0].footprint_bytes = 1;
    ch[0] = t.v[0];
    craft(&rep, &t, 9, 3, true, 1, ch, 1, NULL, 0);
    intake_take(&in, &rep, &r);
    ck_assert_int_eq(r.verdict, INTAKE_DELTA);
    ck_assert_uint_eq(r.ack_seq, 3);
    ck_assert(rebuilt_is(&in, &rep, &r, &t));
    /* The answer to 3 is lost: the node sends 4 on base 1, not 3: the whole set is asked for. */
    t.v[2].state = WIRE_SEG_FAILED;
    {
        struct wire_segment_status ch2[2] = {t.v[0], t.v[2]};

        craft(&rep, &t, 9, 4, true, 1, ch2, 2, NULL, 0);
        intake_take(&in, &rep, &r);
    }
    ck_assert_int_eq(r.verdict, INTAKE_UNAPPLIED);
    ck_assert(!r.applied);
    ck_assert(r.send_full);
    ck_assert_int_eq(r.why, INTAKE_WHY_BASE);
    ck_assert_str_eq(intake_why_name(r.why), "base");
    ck_assert_uint_eq(r.ack_seq, 0);
    ck_assert(!r.digest_mismatch);
    /* The base is still 3; the full report 5 replaces it. */
    ck_assert_uint_eq(in.acked_seq, 3);
    take_full_ok(&in, &t, 9, 5);
    intake_done(&in);
}
END_TEST

START_TEST(test_digest_mismatch)
{
    struct intake in;
    struct truth t;
    struct wire_segment_status buf[64], ch[1];
    struct wire_node_report rep;
    struct intake_result r;

    intake_init(&in);
    truth_init(&t, 6);
    take_full_ok(&in, &t, 3, 1);
    /* s5 changed on the node, but the delta misses it (a bug, a bit flip): the digests differ. */
    t.v[5].state = WIRE_SEG_DROPPED;
    t.v[0].footprint_bytes = 7;
    ch[0] = t.v[0];
    craft(&rep, &t, 3, 2, true, 1, ch, 1, NULL, 0);
    intake_take(&in, &rep, &r);
    ck_assert_int_eq(r.verdict, INTAKE_UNAPPLIED);
    ck_assert(!r.applied);
    ck_assert(r.digest_mismatch);
    ck_assert(r.send_full);
    ck_assert_int_eq(r.why, INTAKE_WHY_DIGEST);
    ck_assert_uint_eq(r.ack_seq, 0);
    /* The base is forgotten: the next delta, even a right one, is not applied. */
    ck_assert_uint_eq(in.acked_seq, 0);
    craft(&rep, &t, 3, 3, true, 1, NULL, 0, NULL, 0);
    intake_take(&in, &rep, &r);
    ck_assert_int_eq(r.verdict, INTAKE_UNAPPLIED);
    ck_assert_int_eq(r.why, INTAKE_WHY_NO_BASE);
    ck_assert(!r.digest_mismatch);
    /* The full report: applied, the base again. */
    take_full_ok(&in, &t, 3, 4);
    /* A full report whose own digest disagrees: reconciled (the list is the truth), no base. */
    full(&rep, &t, 3, 5, buf);
    rep.set_hash ^= 1;
    intake_take(&in, &rep, &r);
    ck_assert_int_eq(r.verdict, INTAKE_FULL);
    ck_assert(r.applied);
    ck_assert(r.digest_mismatch);
    ck_assert(r.send_full);
    ck_assert_uint_eq(in.acked_seq, 0);
    intake_done(&in);
}
END_TEST

START_TEST(test_coordinator_restart)
{
    struct intake in;
    struct truth t;
    struct wire_node_report rep;
    struct intake_result r;

    /* A coordinator that just started knows no incarnation: a delta gets send_full. */
    intake_init(&in);
    truth_init(&t, 4);
    craft(&rep, &t, 11, 40, true, 39, NULL, 0, NULL, 0);
    intake_take(&in, &rep, &r);
    ck_assert_int_eq(r.verdict, INTAKE_UNAPPLIED);
    ck_assert_int_eq(r.why, INTAKE_WHY_NO_BASE);
    ck_assert(r.send_full);
    ck_assert(!r.applied);
    take_full_ok(&in, &t, 11, 41);
    intake_done(&in);
}
END_TEST

START_TEST(test_node_restart)
{
    struct intake in;
    struct truth t;
    struct wire_node_report rep;
    struct intake_result r;

    intake_init(&in);
    truth_init(&t, 8);
    take_full_ok(&in, &t, 100, 1);
    craft(&rep, &t, 100, 2, true, 1, NULL, 0, NULL, 0);
    intake_take(&in, &rep, &r);
    ck_assert_uint_eq(in.applied_seq, 2);
    /* The node restarts with another set; a delta of the new process is not applied. */
    truth_init(&t, 0);
    t.present[20] = t.present[21] = true;
    craft(&rep, &t, 200, 2, true, 1, NULL, 0, NULL, 0);
    intake_take(&in, &rep, &r);
    ck_assert_int_eq(r.verdict, INTAKE_UNAPPLIED);
    ck_assert_int_eq(r.why, INTAKE_WHY_RESTARTED);
    /* Its full report, seq 1 (below the old process's 2), is taken: the set is the new one. */
    take_full_ok(&in, &t, 200, 1);
    {
        struct wire_segment_status *scratch = NULL;
        size_t cap = 0;
        struct wire_node_report d;
        struct intake_result dr;

        craft(&d, &t, 200, 2, true, 1, NULL, 0, NULL, 0);
        intake_take(&in, &d, &dr);
        ck_assert_int_eq(dr.verdict, INTAKE_DELTA);
        ck_assert_uint_eq(repset_export(in.set, &scratch, &cap), 2);
        free(scratch);
    }
    intake_done(&in);
}
END_TEST

START_TEST(test_reordered_duplicated)
{
    struct intake in;
    struct truth t, old;
    struct wire_segment_status buf[64], ch3[1], ch2[1];
    char rm[1][WIRE_ID_MAX + 1] = {"s1"};
    struct wire_node_report rep2, rep3;
    struct intake_result r;

    intake_init(&in);
    truth_init(&t, 4);
    full(&rep2, &t, 5, 1, buf);
    intake_take(&in, &rep2, &r);
    /* Report 2 (s0 LOADING) and report 3 (s0 LOADED, s1 gone), both on base 1: 3 arrives first. */
    old = t;
    old.v[0].state = WIRE_SEG_LOADING;
    ch2[0] = old.v[0];
    craft(&rep2, &old, 5, 2, true, 1, ch2, 1, NULL, 0);
    t.present[1] = false;
    t.v[0].footprint_bytes = 99;
    ch3[0] = t.v[0];
    craft(&rep3, &t, 5, 3, true, 1, ch3, 1, rm, 1);
    intake_take(&in, &rep3, &r);
    ck_assert_int_eq(r.verdict, INTAKE_DELTA);
    ck_assert(rebuilt_is(&in, &rep3, &r, &t));
    /* The older report 2 comes late: ignored, and the set is still report 3's. */
    intake_take(&in, &rep2, &r);
    ck_assert_int_eq(r.verdict, INTAKE_OLD);
    ck_assert(!r.applied);
    ck_assert(!r.send_full);
    ck_assert_uint_eq(r.ack_seq, 0);
    ck_assert_uint_eq(repset_count(in.set), 3);
    ck_assert_uint_eq(repset_hash(in.set), rep3.set_hash);
    /* Report 3 again: acknowledged again, not applied again. */
    intake_take(&in, &rep3, &r);
    ck_assert_int_eq(r.verdict, INTAKE_DUPLICATE);
    ck_assert(!r.applied);
    ck_assert_uint_eq(r.ack_seq, 3);
    ck_assert(!r.send_full);
    ck_assert_uint_eq(repset_hash(in.set), rep3.set_hash);
    /* An old full report is ignored as well. */
    full(&rep2, &old, 5, 2, buf);
    intake_take(&in, &rep2, &r);
    ck_assert_int_eq(r.verdict, INTAKE_OLD);
    ck_assert_uint_eq(repset_hash(in.set), rep3.set_hash);
    ck_assert_str_eq(intake_verdict_name(INTAKE_OLD), "OLD");
    ck_assert_str_eq(intake_verdict_name(INTAKE_VERDICT_COUNT_), "?");
    intake_done(&in);
}
END_TEST

/*
 * The node's report_state and the coordinator's intake together, through a
 * channel that loses requests and answers at random, over 3,000 rounds of
 * random changes (and one coordinator restart, one node restart): every
 * applied report's set is the node's set when it was built.
 */
START_TEST(test_node_and_coordinator)
{
    struct report_state *node = report_state_new(1);
    struct intake in;
    struct truth t;
    struct wire_segment_status cur[64];
    uint32_t rng = 12345;
    unsigned applied = 0, deltas = 0, fulls = 0;

#define RND() (rng = rng * 1103515245u + 12345u, (rng >> 16) & 0x7fff)
    intake_init(&in);
    truth_init(&t, 20);
    for (int round = 0; round < 3000; round++) {
        struct wire_node_report rep;
        struct intake_result r;
        struct wire_report_response resp;
        uint64_t seq;
        size_t n;

        /* A few changes: a copy appears, goes, or changes state or footprint. */
        for (unsigned k = RND() % 4; k > 0; k--) {
            unsigned i = RND() % 64;

            switch (RND() % 4) {
            case 0: t.present[i] = !t.present[i]; break;
            case 1: t.v[i].state = (enum wire_segment_state)(1 + RND() % 4); break;
            case 2: t.v[i].footprint_bytes = RND(); break;
            default: break;
            }
        }
        if (round == 1000) {
            intake_done(&in); /* the coordinator restarts */
            intake_init(&in);
        }
        if (round == 2000) {
            report_state_free(node); /* the node restarts */
            node = report_state_new(2);
        }
        n = truth_list(&t, cur);
        memset(&rep, 0, sizeof(rep));
        seq = report_build(node, cur, n, &rep);
        if (RND() % 10 == 0) { /* the request is lost */
            report_unanswered(node, seq);
            continue;
        }
        intake_take(&in, &rep, &r);
        if (r.applied) {
            applied++;
            ck_assert(rebuilt_is(&in, &rep, &r, &t));
        }
        deltas += r.verdict == INTAKE_DELTA;
        fulls += r.verdict == INTAKE_FULL;
        ck_assert(!r.digest_mismatch);
        if (RND() % 10 == 0) { /* the answer is lost */
            report_unanswered(node, seq);
            continue;
        }
        memset(&resp, 0, sizeof(resp));
        resp.ack_seq = r.ack_seq;
        resp.send_full = r.send_full;
        report_answered(node, seq, &resp);
    }
#undef RND
    /* Most rounds are deltas; fulls only at the start, after restarts and lost answers. */
    ck_assert_uint_gt(deltas, 2000);
    ck_assert_uint_gt(fulls, 3);
    ck_assert_uint_lt(fulls, 600);
    ck_assert_uint_eq(applied, deltas + fulls);
    report_state_free(node);
    intake_done(&in);
}
END_TEST

static Suite *intake_suite(void)
{
    Suite *s = suite_create("intake");
    TCase *tc;

    tc = tcase_create("apply");
    tcase_add_test(tc, test_legacy);
    tcase_add_test(tc, test_full_then_deltas);
    suite_add_tcase(s, tc);
    tc = tcase_create("lost");
    tcase_add_test(tc, test_lost_reports);
    suite_add_tcase(s, tc);
    tc = tcase_create("digest");
    tcase_add_test(tc, test_digest_mismatch);
    suite_add_tcase(s, tc);
    tc = tcase_create("restart");
    tcase_add_test(tc, test_coordinator_restart);
    tcase_add_test(tc, test_node_restart);
    suite_add_tcase(s, tc);
    tc = tcase_create("order");
    tcase_add_test(tc, test_reordered_duplicated);
    suite_add_tcase(s, tc);
    tc = tcase_create("together");
    tcase_add_test(tc, test_node_and_coordinator);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return harness_run_suite(intake_suite());
}
