/*
 * check_tables: tables end to end (issue 18, item 1), with a real
 * coordinator and a real node (tests/harness). `import DIR` files each
 * segment under the directory's base name, `--table` under the one named;
 * `add` without --table under "default", which a later import names;
 * `tables` counts segments, rows, estimated bytes and the fraction LOADED;
 * a bad table name is refused before anything is sent, and a segment's
 * table, once named, does not change.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"
#include "mkseg.h"
#include "segfmt.h"
#include "xmalloc.h"

static char *dir, *storage;
static struct harness_proc *coord, *node;

static void setup(void)
{
    dir = harness_dir_new("sluice-tables-it");
    storage = xasprintf("%s/storage", dir);
    mkdir(storage, 0755);
}

static void teardown(void)
{
    harness_proc_free(node);
    node = NULL;
    harness_proc_free(coord);
    coord = NULL;
    harness_dir_remove(dir);
    free(dir);
    free(storage);
}

/* Writes <storage>/<sub>/<name>.seg, rows x 16 bytes; returns its path (caller frees). */
static char *make_segment(const char *sub, const char *name, uint64_t rows)
{
    struct mkseg_spec spec = {.rows = rows, .row_bytes = 16, .seed = rows};
    char *d = xasprintf("%s/%s", storage, sub), *path = xasprintf("%s/%s.seg", d, name);
    char detail[256];

    mkdir(d, 0755);
    ck_assert_msg(mkseg_write(path, &spec, detail, sizeof(detail)) == 0, "%s",
                  detail);
    free(d);
    return path;
}

/* True when `tables --json` shows every segment LOADED (arg: the count expected). */
static bool tables_loaded(void *arg)
{
    char *out = NULL, want[64];
    bool ok;

    snprintf(want, sizeof(want), "\"segments\":%d,\"segments_loaded\":%d,", *(int *)arg,
             *(int *)arg);
    ok = harness_ctl(coord, &out, "tables", "--json", NULL) == 0 && strstr(out, want) != NULL;
    free(out);
    return ok;
}

START_TEST(test_tables)
{
    char *data = xasprintf("%s/node", dir), *co, *out = NULL, *sales, *logs, *uri, *path;
    const char *args[3];
    int three = 3, two = 2;

    coord = harness_coord_start(dir, NULL);
    ck_assert_ptr_nonnull(coord);
    for (int i = 0; i < 3; i++) {
        char name[16];
        snprintf(name, sizeof(name), "s%d", i);
        free(make_segment("sales", name, 1000 * (uint64_t)(i + 1)));
    }
    free(make_segment("logs", "l0", 500));
    path = make_segment("logs", "l1", 700);
    sales = xasprintf("%s/sales/", storage); /* a trailing slash: still "sales" */
    logs = xasprintf("%s/logs", storage);

    /* l1 first registered alone, without a table: "default". */
    uri = xasprintf("file://%s", path);
    ck_assert_int_eq(harness_ctl(coord, &out, "add", "--id=l1", "--rows=700", "--row-size=16",
                                 uri, NULL),
                     2); /* --uri missing: a usage error */
    free(out);
    co = xasprintf("--uri=%s", uri);
    ck_assert_int_eq(harness_ctl(coord, &out, "add", "--id=l1", "--rows=700", "--row-size=16",
                                 co, NULL),
                     0);
    free(out);
    ck_assert_int_eq(harness_ctl(coord, &out, "tables", NULL), 0);
    ck_assert_msg(strstr(out, "default") != NULL, "%s", out);
    free(out);

    /* Bad names are refused before anything is sent, naming the flag. */
    ck_assert_int_eq(harness_ctl(coord, &out, "import", logs, "--table=a/b", NULL), 2);
    ck_assert_msg(strstr(out, "--table: '/' at offset 1") != NULL, "%s", out);
    free(out);
    ck_assert_int_eq(harness_ctl(coord, &out, "import", logs, "--table=", NULL), 2);
    ck_assert_msg(strstr(out, "--table: empty") != NULL, "%s", out);
    free(out);
    ck_assert_int_eq(harness_ctl(coord, &out, "add", "--id=x", co, "--rows=1", "--row-size=1",
                                 "--table=tab\there", NULL),
                     2);
    ck_assert_msg(strstr(out, "--table: control character") != NULL, "%s", out);
    free(out);

    ck_assert_int_eq(harness_ctl(coord, &out, "import", sales, NULL), 0);
    ck_assert_msg(strstr(out, "into table sales: 3 registered") != NULL, "%s", out);
    free(out);
    /* l1 leaves "default" for the table named; l0 is new. */
    ck_assert_int_eq(harness_ctl(coord, &out, "import", logs, "--table=web logs", "--json", NULL),
                     0);
    ck_assert_msg(strstr(out, "{\"table\":\"web logs\",\"files\":2,\"registered\":2,") != NULL,
                  "%s", out);
    free(out);
    /* Once named, a table is fixed: importing the same files elsewhere is a conflict. */
    ck_assert_int_eq(harness_ctl(coord, &out, "import", logs, "--table=other", NULL), 1);
    ck_assert_msg(strstr(out, "another table") != NULL, "%s", out);
    free(out);
    ck_assert_int_eq(harness_ctl(coord, &out, "explain", "l1", NULL), 0);
    ck_assert_msg(strstr(out, "table web logs") != NULL, "%s", out);
    free(out);

    /* Nothing is placed yet: 0 % LOADED. */
    ck_assert_int_eq(harness_ctl(coord, &out, "tables", "--json", NULL), 0);
    ck_assert_msg(strstr(out, "{\"table\":\"sales\",\"segments\":3,\"segments_loaded\":0,"
                              "\"segments_pending\":3,\"segments_invalid\":0,\"rows\":6000,"
                              "\"bytes\":96000}") != NULL,
                  "%s", out);
    ck_assert_msg(strstr(out, "{\"table\":\"web logs\",\"segments\":2,\"segments_loaded\":0,"
                              "\"segments_pending\":2,\"segments_invalid\":0,\"rows\":1200,"
                              "\"bytes\":19200}") != NULL,
                  "%s", out);
    ck_assert_msg(strstr(out, "\"default\"") == NULL, "default is empty now: %s", out);
    free(out);

    free(co);
    co = xasprintf("--coordinator=%s", harness_proc_addr(coord));
    args[0] = co;
    args[1] = "--report-interval=200ms";
    args[2] = NULL;
    node = harness_node_start_calm(storage, data, args);
    ck_assert_ptr_nonnull(node);
    ck_assert_msg(harness_wait_until(tables_loaded, &three, 20000), "sales not all LOADED");
    ck_assert_msg(harness_wait_until(tables_loaded, &two, 20000), "web logs not all LOADED");
    ck_assert_int_eq(harness_ctl(coord, &out, "tables", NULL), 0);
    ck_assert_msg(strstr(out, "100.0%") != NULL && strstr(out, "web logs") != NULL, "%s", out);
    free(out);

    /* The tables survive a restart of the coordinator (the catalog keeps them). */
    ck_assert_int_eq(harness_proc_restart(coord), 0);
    ck_assert_int_eq(harness_ctl(coord, &out, "tables", "--json", NULL), 0);
    ck_assert_msg(strstr(out, "\"table\":\"sales\",\"segments\":3,") != NULL &&
                      strstr(out, "\"table\":\"web logs\",\"segments\":2,") != NULL,
                  "%s", out);
    free(out);
    free(co);
    free(uri);
    free(path);
    free(sales);
    free(logs);
    free(data);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tables");
    TCase *tc = tcase_create("tables");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_tables);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
