/*
 * check_mglru: unit tests for node/mglru: the lru_gen/enabled switch, the
 * debugfs lru_gen text (the right memcg, every node, the youngest
 * generations, negative counts, malformed lines), and the reader on fixture
 * trees (absent, disabled, enabled).
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>

#include "fixture_tree.h"
#include "mglru.h"
#include "suite.h"

/* Two memcgs; "/sluice" has two nodes of four generations each. */
static const char lru_gen[] =
    "memcg     1 /\n"
    " node     0\n"
    "          0      60000        100        200 \n"
    "          1      10000         10         20 \n"
    "memcg    47 /sluice\n"
    " node     0\n"
    "          4      40000       1000       2000 \n"
    "          5      20000        100        200 \n"
    "          6       3000         10         20 \n"
    "          7        100          1          2 \n"
    " node     1\n"
    "          4      40000          5          5 \n"
    "          5      20000          5          5 \n"
    "          6       3000         -1          7 \n"
    "          7        100          3          0 \n"
    "memcg    48 /sluice/child\n"
    " node     0\n"
    "          0        100     999999     999999 \n";

START_TEST(test_enabled)
{
    bool on = false;

    ck_assert_int_eq(mglru_parse_enabled("0x0007\n", &on), 0);
    ck_assert(on);
    ck_assert_int_eq(mglru_parse_enabled("0x0006\n", &on), 0);
    ck_assert(!on); /* bit 0 is the main switch */
    ck_assert_int_eq(mglru_parse_enabled("0x0001", &on), 0);
    ck_assert(on);
    on = true;
    ck_assert_int_eq(mglru_parse_enabled("y\n", &on), -EINVAL);
    ck_assert_int_eq(mglru_parse_enabled("", &on), -EINVAL);
    ck_assert_int_eq(mglru_parse_enabled("0x7 junk", &on), -EINVAL);
    ck_assert(on); /* untouched on error */
}
END_TEST

START_TEST(test_parse)
{
    struct mglru_wss w;

    ck_assert_int_eq(mglru_parse(lru_gen, "/sluice", 2, 4096, &w), 0);
    ck_assert_uint_eq(w.nodes, 2);
    ck_assert_uint_eq(w.gens, 8);
    /* Youngest two per node: (10+20 + 1+2) + (0+7 + 3+0) pages (-1 counts as 0). */
    ck_assert_uint_eq(w.young_bytes, (33 + 10) * 4096ull);
    ck_assert_uint_eq(w.total_bytes, (3000 + 300 + 30 + 3 + 10 + 10 + 7 + 3) * 4096ull);
    /* One young generation: the youngest of each node. */
    ck_assert_int_eq(mglru_parse(lru_gen, "/sluice", 1, 4096, &w), 0);
    ck_assert_uint_eq(w.young_bytes, (3 + 3) * 4096ull);
    /* More young generations than there are: all of them. */
    ck_assert_int_eq(mglru_parse(lru_gen, "/sluice", 9, 4096, &w), 0);
    ck_assert_uint_eq(w.young_bytes, w.total_bytes);
    /* The root memcg, and a memcg whose path only starts the same. */
    ck_assert_int_eq(mglru_parse(lru_gen, "/", 1, 4096, &w), 0);
    ck_assert_uint_eq(w.young_bytes, 30 * 4096ull);
    ck_assert_int_eq(mglru_parse(lru_gen, "/sluice/child", 2, 4096, &w), 0);
    ck_assert_uint_eq(w.young_bytes, 1999998 * 4096ull);
}
END_TEST

START_TEST(test_parse_errors)
{
    struct mglru_wss w = {.young_bytes = 77};

    ck_assert_int_eq(mglru_parse(lru_gen, "/other", 2, 4096, &w), -ENOENT);
    ck_assert_int_eq(mglru_parse("", "/", 2, 4096, &w), -ENOENT);
    ck_assert_int_eq(mglru_parse(lru_gen, "/sluice", 0, 4096, &w), -EINVAL);
    ck_assert_int_eq(mglru_parse(lru_gen, "/sluice", 2, 0, &w), -EINVAL);
    /* A generation line before any node, or one that is not four numbers. */
    ck_assert_int_eq(mglru_parse("memcg 1 /\n 1 2 3 4\n", "/", 2, 4096, &w), -EINVAL);
    ck_assert_int_eq(mglru_parse("memcg 1 /\n node 0\n 1 2 x 4\n", "/", 2, 4096, &w), -EINVAL);
    ck_assert_int_eq(mglru_parse("memcg 1 /\n node x\n", "/", 2, 4096, &w), -EINVAL);
    /* Malformed lines of other memcgs are not ours to judge. */
    ck_assert_int_eq(mglru_parse("memcg 2 /x\n node 0\n junk\nmemcg 1 /\n node 0\n 0 1 2 3\n",
                                 "/", 1, 4096, &w),
                     0);
    ck_assert_uint_eq(w.young_bytes, 5 * 4096ull);
    w.young_bytes = 77;
    ck_assert_int_eq(mglru_parse("memcg 1 /\n node 0\n 1 2 x 4\n", "/", 2, 4096, &w), -EINVAL);
    ck_assert_uint_eq(w.young_bytes, 77); /* untouched on error */
}
END_TEST

START_TEST(test_read_fixture)
{
    char root[64];
    struct mglru_wss w;
    long page = sysconf(_SC_PAGESIZE);

    fixture_new(root, sizeof(root), "check_mglru");
    /* No MGLRU (this host's kernel): -ENOTSUP. */
    ck_assert_int_eq(mglru_read(root, "/sluice", 2, &w), -ENOTSUP);
    fixture_put(root, "kernel/mm/lru_gen/enabled", "0x0000\n");
    ck_assert_int_eq(mglru_read(root, "/sluice", 2, &w), -ENOTSUP);
    /* Enabled, but debugfs not mounted. */
    fixture_put(root, "kernel/mm/lru_gen/enabled", "0x0007\n");
    ck_assert_int_eq(mglru_read(root, "/sluice", 2, &w), -ENOENT);
    fixture_put(root, "kernel/debug/lru_gen", lru_gen);
    ck_assert_int_eq(mglru_read(root, "/sluice", 2, &w), 0);
    ck_assert_uint_eq(w.young_bytes, 43 * (uint64_t)page);
    fixture_remove(root);
}
END_TEST

START_TEST(test_memcg_path)
{
    char p[64];

    /* v1 memory controller (this host: hybrid), comounted or alone. */
    ck_assert_int_eq(mglru_memcg_path("9:name=systemd:/\n4:memory:/process_api/1edf\n0::/\n", p,
                                      sizeof(p)),
                     0);
    ck_assert_str_eq(p, "/process_api/1edf");
    ck_assert_int_eq(mglru_memcg_path("3:cpu,memory,pids:/a/b\n", p, sizeof(p)), 0);
    ck_assert_str_eq(p, "/a/b");
    /* "memory" only as a whole controller name. */
    ck_assert_int_eq(mglru_memcg_path("3:memoryx:/no\n0::/v2/path\n", p, sizeof(p)), 0);
    ck_assert_str_eq(p, "/v2/path");
    ck_assert_int_eq(mglru_memcg_path("0::/\n", p, sizeof(p)), 0);
    ck_assert_str_eq(p, "/");
    ck_assert_int_eq(mglru_memcg_path("5:cpu:/x\n", p, sizeof(p)), -ENOENT);
    ck_assert_int_eq(mglru_memcg_path("0::/a/rather/long/path\n", p, 8), -ENAMETOOLONG);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("mglru");
    TCase *tc = tcase_create("mglru");

    tcase_add_test(tc, test_enabled);
    tcase_add_test(tc, test_parse);
    tcase_add_test(tc, test_parse_errors);
    tcase_add_test(tc, test_read_fixture);
    tcase_add_test(tc, test_memcg_path);
    suite_add_tcase(s, tc);
    return harness_run_suite(s);
}
