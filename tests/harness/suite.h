/*
 * harness suite: the one main() body of every Check suite (tests/unit,
 * tests/integration, tests/harness/crash.c), so that no suite carries its
 * own copy of Check's runner boilerplate. Links only Check; unit suites use
 * it without the process harness.
 */
#ifndef SLUICE_HARNESS_SUITE_H
#define SLUICE_HARNESS_SUITE_H

#include <check.h>

/*
 * Runs every test case of `s` (CK_NORMAL output; CK_RUN_CASE and the other
 * CK_* environment variables select cases as Check documents) and frees
 * the runner, which frees `s`. Returns EXIT_SUCCESS when no test failed,
 * EXIT_FAILURE otherwise: main()'s exit status.
 */
int harness_run_suite(Suite *s);

#endif
