/*
 * check_window: coordinator/window alone, as pure policy: slow start and
 * congestion avoidance on acceptances, one cut per round of refusals, the
 * Retry-After pause for the node's own state and not for a segment's size,
 * the room left for a node with assignments outstanding, and the node's
 * advertised load slots as a bound (the receive window).
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include "window.h"
#include "suite.h"

/* Sends one assignment and has it accepted: one round trip. */
static void round_trip(struct window *w)
{
    window_on_accept(w, window_on_send(w));
}

START_TEST(test_slow_start)
{
    struct window w;
    uint64_t a, b;

    window_init(&w);
    ck_assert_uint_eq(window_size(&w), WINDOW_INITIAL);
    /* Two sent together and both accepted: one round trip, one more. */
    a = window_on_send(&w);
    b = window_on_send(&w);
    window_on_accept(&w, a);
    window_on_accept(&w, b);
    ck_assert_uint_eq(window_size(&w), WINDOW_INITIAL + 1);
    /* An acceptance of something sent before the growth does not grow it again. */
    a = window_on_send(&w);
    round_trip(&w);
    ck_assert_uint_eq(window_size(&w), WINDOW_INITIAL + 2);
    window_on_accept(&w, a);
    ck_assert_uint_eq(window_size(&w), WINDOW_INITIAL + 2);
    for (unsigned i = 0; i < 10000; i++)
        round_trip(&w);
    ck_assert_uint_eq(window_size(&w), WINDOW_MAX); /* never past the cap */
    ck_assert_uint_eq(w.accepted_total, 10000 + 4);
}
END_TEST

START_TEST(test_cut_once_per_round)
{
    struct window w;
    uint64_t seq[8];

    window_init(&w);
    for (unsigned i = 0; i < 15; i++)
        round_trip(&w);
    ck_assert_uint_eq(window_size(&w), 17);
    /* Eight sent at once; the node takes two and refuses six. */
    for (unsigned i = 0; i < 8; i++)
        seq[i] = window_on_send(&w);
    window_on_accept(&w, seq[0]);
    window_on_accept(&w, seq[1]);
    ck_assert_uint_eq(window_size(&w), 18);
    ck_assert(window_on_refuse(&w, seq[2], WIRE_REASON_LOAD_CONCURRENCY, 250, 1000));
    ck_assert_uint_eq(window_size(&w), 9);
    /* The rest of that round is the same congestion: no further cut. */
    for (unsigned i = 3; i < 8; i++)
        ck_assert(!window_on_refuse(&w, seq[i], WIRE_REASON_LOAD_CONCURRENCY, 250, 1000));
    ck_assert_uint_eq(window_size(&w), 9);
    ck_assert_uint_eq(w.cuts_total, 1);
    ck_assert_uint_eq(w.refused_total, 6);
    /* Above ssthresh (9) it grows by one per window's worth of acceptances. */
    for (unsigned i = 0; i < 9; i++)
        round_trip(&w);
    ck_assert_uint_eq(window_size(&w), 9); /* 9 + 9 x 1/9.x: just under 10 */
    round_trip(&w);
    ck_assert_uint_eq(window_size(&w), 10);
    /* A refusal of something sent after the cut is a new round: it cuts again. */
    seq[0] = window_on_send(&w);
    ck_assert(window_on_refuse(&w, seq[0], WIRE_REASON_LOAD_CONCURRENCY, 250, 2000));
    ck_assert_uint_eq(window_size(&w), 5);
    ck_assert_uint_eq(w.cuts_total, 2);
}
END_TEST

START_TEST(test_floor)
{
    struct window w;

    window_init(&w);
    for (unsigned i = 0; i < 20; i++)
        window_on_refuse(&w, window_on_send(&w), WIRE_REASON_MEM_PRESSURE, 0, 0);
    ck_assert_uint_eq(window_size(&w), WINDOW_MIN);
    ck_assert(w.cwnd >= WINDOW_MIN);
    /* From the floor it still grows. */
    round_trip(&w);
    ck_assert_uint_eq(window_size(&w), WINDOW_MIN + 1);
}
END_TEST

START_TEST(test_pause_honours_retry_after)
{
    struct window w;

    window_init(&w);
    ck_assert_uint_eq(window_room(&w, 0, 1000), WINDOW_INITIAL);
    /* LOAD_CONCURRENCY, Retry-After 250 ms: nothing new before 1250. */
    window_on_refuse(&w, window_on_send(&w), WIRE_REASON_LOAD_CONCURRENCY, 250, 1000);
    ck_assert_uint_eq(window_room(&w, 0, 1000), 0);
    ck_assert_uint_eq(window_room(&w, 0, 1249), 0);
    ck_assert_uint_eq(window_room(&w, 0, 1250), 1);
    /* A shorter Retry-After later never shortens the pause. */
    window_on_refuse(&w, window_on_send(&w), WIRE_REASON_MEM_PRESSURE, 5000, 1100);
    window_on_refuse(&w, window_on_send(&w), WIRE_REASON_LOAD_CONCURRENCY, 10, 1200);
    ck_assert_uint_eq(w.paused_until, 6100);
    ck_assert_uint_eq(w.pauses_total, 2);
}
END_TEST

START_TEST(test_segment_reasons_do_not_pause)
{
    struct window w;

    /* MEM_CAPACITY and DISK_FULL depend on the segment: cut, no pause. */
    window_init(&w);
    for (unsigned i = 0; i < 6; i++)
        round_trip(&w);
    ck_assert(window_on_refuse(&w, window_on_send(&w), WIRE_REASON_MEM_CAPACITY, 60000, 1000));
    ck_assert_uint_eq(w.paused_until, 0);
    ck_assert_uint_eq(window_room(&w, 0, 1000), 4);
    window_on_refuse(&w, window_on_send(&w), WIRE_REASON_DISK_FULL, 300000, 1000);
    ck_assert_uint_eq(w.paused_until, 0);
    ck_assert(!window_reason_pauses(WIRE_REASON_MEM_CAPACITY));
    ck_assert(!window_reason_pauses(WIRE_REASON_DISK_FULL));
    ck_assert(!window_reason_pauses(WIRE_REASON_DRAINING));
    ck_assert(!window_reason_pauses(WIRE_REASON_SEGMENT_INVALID));
    ck_assert(window_reason_pauses(WIRE_REASON_LOAD_CONCURRENCY));
    ck_assert(window_reason_pauses(WIRE_REASON_MEM_CRITICAL));
    ck_assert(window_reason_pauses(WIRE_REASON_MEM_EXHAUSTION));
    ck_assert(window_reason_pauses(WIRE_REASON_LATENCY_SLO));
}
END_TEST

START_TEST(test_room)
{
    struct window w;

    window_init(&w);
    for (unsigned i = 0; i < 6; i++)
        round_trip(&w);
    ck_assert_uint_eq(window_size(&w), 8);
    /* Outstanding: in flight plus accepted and not yet reported loaded. */
    ck_assert_uint_eq(window_room(&w, 0, 0), 8);
    ck_assert_uint_eq(window_room(&w, 5, 0), 3);
    ck_assert_uint_eq(window_room(&w, 8, 0), 0);
    ck_assert_uint_eq(window_room(&w, 50, 0), 0); /* over it after a cut: nothing, not a wrap */
}
END_TEST

/*
 * A node that loads 4 at a time and says so: room never passes 4 whatever
 * the window learnt, the window stops growing there (no fifth to be refused
 * with LOAD_CONCURRENCY), follows a smaller slot count (the node's slow
 * start) and a 0 (not said) bounds nothing.
 */
START_TEST(test_advertised_slots)
{
    struct window w;

    window_init(&w);
    window_on_advertise(&w, 4);
    for (unsigned i = 0; i < 20; i++)
        round_trip(&w);
    ck_assert_uint_eq(window_size(&w), 4); /* grew to the node's bound, not past it */
    ck_assert_uint_eq(window_room(&w, 0, 0), 4);
    ck_assert_uint_eq(window_room(&w, 3, 0), 1);
    ck_assert_uint_eq(window_room(&w, 4, 0), 0);
    window_on_advertise(&w, 1);
    ck_assert_uint_eq(window_room(&w, 0, 0), 1);
    ck_assert_uint_eq(window_size(&w), 4); /* what was learnt is kept */
    window_on_advertise(&w, 0);
    for (unsigned i = 0; i < 4; i++)
        round_trip(&w);
    ck_assert_uint_eq(window_size(&w), 8);
    ck_assert_uint_eq(window_room(&w, 0, 0), 8);
    /* A window cut below the advertised bound is the bound. */
    window_on_advertise(&w, 16);
    ck_assert(window_on_refuse(&w, window_on_send(&w), WIRE_REASON_MEM_CAPACITY, 0, 0));
    ck_assert_uint_eq(window_room(&w, 0, 0), 4);
}
END_TEST

static Suite *window_suite(void)
{
    Suite *s = suite_create("window");
    TCase *tc = tcase_create("grow");

    tcase_add_test(tc, test_slow_start);
    suite_add_tcase(s, tc);
    tc = tcase_create("cut");
    tcase_add_test(tc, test_cut_once_per_round);
    tcase_add_test(tc, test_floor);
    suite_add_tcase(s, tc);
    tc = tcase_create("pause");
    tcase_add_test(tc, test_pause_honours_retry_after);
    tcase_add_test(tc, test_segment_reasons_do_not_pause);
    suite_add_tcase(s, tc);
    tc = tcase_create("room");
    tcase_add_test(tc, test_room);
    tcase_add_test(tc, test_advertised_slots);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return harness_run_suite(window_suite());
}
