/*
 * harness suite: runs one Check suite as a test program's whole main()
 * (see suite.h). Called once per test process.
 */
#include <stdlib.h>

#include "suite.h"

int harness_run_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
