/*
 * check_membership: the node-state policy of coordinator/membership, alone:
 * no loop, no catalog, no placer. Which state each input leads to, and the
 * names the catalog and the events use.
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>

#include "membership.h"
#include "suite.h"

START_TEST(test_names_round_trip)
{
    enum membership_state s = MEMBERSHIP_DOWN;

    for (int i = 0; i < MEMBERSHIP_STATE_COUNT_; i++) {
        ck_assert_int_eq(membership_state_parse(membership_state_name(i), &s), 0);
        ck_assert_int_eq(s, i);
    }
    ck_assert_str_eq(membership_state_name(MEMBERSHIP_UP), "UP");
    ck_assert_str_eq(membership_state_name(MEMBERSHIP_SUSPECT), "SUSPECT");
    ck_assert_str_eq(membership_state_name(MEMBERSHIP_DOWN), "DOWN");
    ck_assert_str_eq(membership_state_name(MEMBERSHIP_DRAINING), "DRAINING");
    ck_assert_str_eq(membership_state_name(MEMBERSHIP_STATE_COUNT_), "?");
}
END_TEST

START_TEST(test_parse_rejects_and_leaves_output)
{
    enum membership_state s = MEMBERSHIP_SUSPECT;

    ck_assert_int_eq(membership_state_parse("up", &s), -EINVAL);
    ck_assert_int_eq(membership_state_parse("", &s), -EINVAL);
    ck_assert_int_eq(membership_state_parse("UP ", &s), -EINVAL);
    ck_assert_int_eq(membership_state_parse(NULL, &s), -EINVAL);
    ck_assert_int_eq(s, MEMBERSHIP_SUSPECT);
}
END_TEST

START_TEST(test_report)
{
    ck_assert_int_eq(membership_on_report(false, false), MEMBERSHIP_UP);
    ck_assert_int_eq(membership_on_report(true, false), MEMBERSHIP_DRAINING);
    ck_assert_int_eq(membership_on_report(false, true), MEMBERSHIP_DRAINING);
    ck_assert_int_eq(membership_on_report(true, true), MEMBERSHIP_DRAINING);
}
END_TEST

START_TEST(test_admin_drain_only_moves_answering_nodes)
{
    ck_assert_int_eq(membership_on_admin(MEMBERSHIP_UP, true, false), MEMBERSHIP_DRAINING);
    ck_assert_int_eq(membership_on_admin(MEMBERSHIP_DRAINING, true, false), MEMBERSHIP_DRAINING);
    /* A DOWN or SUSPECT node keeps its state; its next report applies the drain. */
    ck_assert_int_eq(membership_on_admin(MEMBERSHIP_DOWN, true, false), MEMBERSHIP_DOWN);
    ck_assert_int_eq(membership_on_admin(MEMBERSHIP_SUSPECT, true, false), MEMBERSHIP_SUSPECT);
}
END_TEST

START_TEST(test_admin_undrain)
{
    ck_assert_int_eq(membership_on_admin(MEMBERSHIP_DRAINING, false, false), MEMBERSHIP_UP);
    /* A node draining itself stays DRAINING whatever the operator undoes. */
    ck_assert_int_eq(membership_on_admin(MEMBERSHIP_DRAINING, false, true), MEMBERSHIP_DRAINING);
    ck_assert_int_eq(membership_on_admin(MEMBERSHIP_UP, false, false), MEMBERSHIP_UP);
    ck_assert_int_eq(membership_on_admin(MEMBERSHIP_DOWN, false, false), MEMBERSHIP_DOWN);
    ck_assert_int_eq(membership_on_admin(MEMBERSHIP_SUSPECT, false, false), MEMBERSHIP_SUSPECT);
}
END_TEST

START_TEST(test_no_answer_only_from_up)
{
    ck_assert_int_eq(membership_on_no_answer(MEMBERSHIP_UP), MEMBERSHIP_SUSPECT);
    ck_assert_int_eq(membership_on_no_answer(MEMBERSHIP_SUSPECT), MEMBERSHIP_SUSPECT);
    ck_assert_int_eq(membership_on_no_answer(MEMBERSHIP_DRAINING), MEMBERSHIP_DRAINING);
    ck_assert_int_eq(membership_on_no_answer(MEMBERSHIP_DOWN), MEMBERSHIP_DOWN);
}
END_TEST

/*
 * What answers said, applied as one transition: three transport errors and
 * a DRAINING refusal from an UP node make it SUSPECT once, not four times.
 */
START_TEST(test_answers_one_transition)
{
    ck_assert_int_eq(membership_on_answers(MEMBERSHIP_UP, true, false), MEMBERSHIP_SUSPECT);
    ck_assert_int_eq(membership_on_answers(MEMBERSHIP_UP, false, true), MEMBERSHIP_DRAINING);
    /* A node that does not answer is not known to drain. */
    ck_assert_int_eq(membership_on_answers(MEMBERSHIP_UP, true, true), MEMBERSHIP_SUSPECT);
    ck_assert_int_eq(membership_on_answers(MEMBERSHIP_UP, false, false), MEMBERSHIP_UP);
    /* Only an UP node moves; a report or the timeout moves the others. */
    ck_assert_int_eq(membership_on_answers(MEMBERSHIP_DRAINING, true, false),
                     MEMBERSHIP_DRAINING);
    ck_assert_int_eq(membership_on_answers(MEMBERSHIP_SUSPECT, false, true), MEMBERSHIP_SUSPECT);
    ck_assert_int_eq(membership_on_answers(MEMBERSHIP_DOWN, true, true), MEMBERSHIP_DOWN);
}
END_TEST

START_TEST(test_timeout)
{
    /* Silent for exactly the timeout is not yet DOWN; one ms more is. */
    ck_assert(!membership_timed_out(MEMBERSHIP_UP, 6000, 1000, 5000));
    ck_assert(membership_timed_out(MEMBERSHIP_UP, 6001, 1000, 5000));
    ck_assert(membership_timed_out(MEMBERSHIP_SUSPECT, 6001, 1000, 5000));
    ck_assert(membership_timed_out(MEMBERSHIP_DRAINING, 6001, 1000, 5000));
    /* DOWN already: no second transition. */
    ck_assert(!membership_timed_out(MEMBERSHIP_DOWN, 60000, 1000, 5000));
    /* A last report "in the future" (loaded at start-up, then a report) is no silence. */
    ck_assert(!membership_timed_out(MEMBERSHIP_UP, 1000, 7000, 5000));
}
END_TEST

START_TEST(test_placer_view)
{
    ck_assert_int_eq(membership_placer_state(MEMBERSHIP_UP, false), PLACER_NODE_UP);
    ck_assert_int_eq(membership_placer_state(MEMBERSHIP_UP, true), PLACER_NODE_DRAINING);
    ck_assert_int_eq(membership_placer_state(MEMBERSHIP_DRAINING, false), PLACER_NODE_DRAINING);
    ck_assert_int_eq(membership_placer_state(MEMBERSHIP_SUSPECT, true), PLACER_NODE_SUSPECT);
    ck_assert_int_eq(membership_placer_state(MEMBERSHIP_DOWN, true), PLACER_NODE_DOWN);
    ck_assert(membership_is_live(MEMBERSHIP_UP));
    ck_assert(membership_is_live(MEMBERSHIP_DRAINING));
    ck_assert(!membership_is_live(MEMBERSHIP_SUSPECT));
    ck_assert(!membership_is_live(MEMBERSHIP_DOWN));
}
END_TEST

static Suite *membership_suite(void)
{
    Suite *s = suite_create("membership");
    TCase *tc;

    tc = tcase_create("names");
    tcase_add_test(tc, test_names_round_trip);
    tcase_add_test(tc, test_parse_rejects_and_leaves_output);
    suite_add_tcase(s, tc);
    tc = tcase_create("report");
    tcase_add_test(tc, test_report);
    suite_add_tcase(s, tc);
    tc = tcase_create("operator");
    tcase_add_test(tc, test_admin_drain_only_moves_answering_nodes);
    tcase_add_test(tc, test_admin_undrain);
    suite_add_tcase(s, tc);
    tc = tcase_create("no_answer");
    tcase_add_test(tc, test_no_answer_only_from_up);
    tcase_add_test(tc, test_answers_one_transition);
    suite_add_tcase(s, tc);
    tc = tcase_create("timeout");
    tcase_add_test(tc, test_timeout);
    suite_add_tcase(s, tc);
    tc = tcase_create("placer_view");
    tcase_add_test(tc, test_placer_view);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return harness_run_suite(membership_suite());
}
