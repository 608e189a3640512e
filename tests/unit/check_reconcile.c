/*
 * check_reconcile: the rules of coordinator/reconcile alone (no loop, no
 * catalog, no placer): stale copies, adoption of unknown copies, surplus
 * (extra) copies and SUSPECT holders, lost (missing) copies, the INVALID
 * quorum.
 */
#include <check.h>
#include <stdlib.h>

#include "reconcile.h"

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
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(reconcile_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
