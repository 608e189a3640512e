/*
 * check_ha: two coordinators on one PostgreSQL catalog (issue 22), real
 * processes: the one that leads serves; the other is a standby that answers
 * every request but /healthz, /readyz and /metrics with 503 naming the
 * leader (X-Sluice-Leader); clients given both addresses (a node, the CLI)
 * reach the leader; kill -9 of the leader makes the standby lead, and the
 * node follows it while it goes on answering queries.
 *
 * One private PostgreSQL server (tests/harness/pg.c) for the run, a
 * database per case. The long fail-over loop (bulk registration, SIGSTOP,
 * a PostgreSQL restart) is elsewhere; these cases take seconds.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "harness.h"
#include "http.h"
#include "mkseg.h"
#include "pg.h"
#include "suite.h"
#include "wire.h"
#include "xmalloc.h"
#include "suite.h"

static char *dir, *storage, *uri;
static struct harness_proc *coord_a, *coord_b, *node;

static void setup(void)
{
    char why[1024] = "";
    struct harness_pg *pg = harness_pg_shared(why, sizeof(why));

    ck_assert_msg(pg != NULL, "PostgreSQL did not start: %s", why);
    dir = harness_dir_new("sluice-ha-it");
    uri = harness_pg_dir_db(dir, why, sizeof(why));
    ck_assert_msg(uri != NULL, "%s", why);
    storage = xasprintf("%s/storage", dir);
    mkdir(storage, 0755);
}

static void teardown(void)
{
    harness_proc_free(node);
    node = NULL;
    harness_proc_free(coord_a);
    coord_a = NULL;
    harness_proc_free(coord_b);
    coord_b = NULL;
    harness_dir_remove(dir);
    free(dir);
    free(storage);
    free(uri);
}

/* Starts a coordinator on the shared catalog, its files in dir/name. */
static struct harness_proc *start_coord(const char *name)
{
    char *d = xasprintf("%s/%s", dir, name);
    const char *extra[] = {"--node-timeout=3s", NULL};
    struct harness_proc *p;

    mkdir(d, 0755);
    p = harness_coord_start_on(d, uri, extra);
    free(d);
    ck_assert_ptr_nonnull(p);
    return p;
}

static bool ready(void *arg);

/* Coordinator a, leading (ready), then b, its standby; their addresses into a and b. */
static void start_pair(char *a, char *b, size_t len)
{
    coord_a = start_coord("a");
    snprintf(a, len, "%s", harness_proc_addr(coord_a));
    ck_assert(harness_wait_until(ready, a, 10000));
    coord_b = start_coord("b");
    snprintf(b, len, "%s", harness_proc_addr(coord_b));
}

/* GET path of addr: the status, the leader header into leader (may be NULL), the Error code. */
static int get(const char *addr, const char *path, char *leader, char *code)
{
    struct http_response r;
    struct wire_error e;
    int status;

    ck_assert_int_eq(http_fetch(addr, "GET", path, NULL, NULL, 0, NULL, 5000, &r), 0);
    status = r.status;
    if (leader != NULL)
        snprintf(leader, 256, "%s", r.leader);
    if (code != NULL) {
        code[0] = '\0';
        if (status >= 400 && wire_error_decode(r.body, r.body_len, &e) == 0)
            snprintf(code, 64, "%s", e.code);
    }
    http_response_done(&r);
    return status;
}

static bool ready(void *arg)
{
    return get(arg, "/readyz", NULL, NULL) == 200;
}

/* `sluice-coord status --coordinator=LIST`: its exit status, its output into *out. */
static int status_cli(const char *list, char **out)
{
    char *co = xasprintf("--coordinator=%s", list);
    const char *argv[] = {harness_bin("sluice-coord"), "status", co, "--timeout=5s", NULL};
    int rc = harness_run(argv, out);

    free(co);
    return rc;
}

START_TEST(test_standby_answers)
{
    char leader[256], code[64], *out = NULL, *both;
    char a[128], b[128];

    start_pair(a, b, sizeof(a));

    /* The standby: alive, not ready, and every other request 503 naming the leader. */
    ck_assert_int_eq(get(b, "/healthz", NULL, NULL), 200);
    ck_assert_int_eq(get(b, "/readyz", leader, code), 503);
    ck_assert_str_eq(leader, a);
    ck_assert_str_eq(code, "standby");
    ck_assert_int_eq(get(b, "/v1/segments", leader, code), 503);
    ck_assert_str_eq(leader, a);
    ck_assert_str_eq(code, "standby");
    ck_assert_int_eq(get(b, "/v1/no-such-endpoint", leader, code), 503);
    ck_assert_int_eq(get(b, "/metrics", NULL, NULL), 200);
    /* The leader serves. */
    ck_assert_int_eq(get(a, "/readyz", leader, NULL), 200);
    ck_assert_str_eq(leader, "");
    ck_assert_int_eq(get(a, "/v1/segments", NULL, NULL), 200);

    /* Metrics of both. */
    ck_assert(harness_metric(a, "sluice_coord_is_leader") == 1);
    ck_assert(harness_metric(a, "sluice_coord_leader_epoch") == 1);
    ck_assert(harness_metric(a, "sluice_coord_elections_total") == 1);
    ck_assert(harness_metric(a, "sluice_coord_catalog_commit_age_seconds") >= 0);
    ck_assert(harness_metric(b, "sluice_coord_is_leader") == 0);
    ck_assert(harness_metric(b, "sluice_coord_leader_epoch") == 1);
    ck_assert(harness_metric(b, "sluice_coord_elections_total") == 0);

    /* The CLI given the standby first reaches the leader; given the standby alone it follows. */
    both = xasprintf("%s,%s", b, a);
    ck_assert_msg(status_cli(both, &out) == 0, "%s", out);
    {
        char *want_leader = xasprintf("leader:   %s, epoch 1\n", a);
        char *want_standby = xasprintf("standby %s, seen", b);

        ck_assert_msg(strstr(out, want_leader) != NULL, "%s", out);
        ck_assert_msg(strstr(out, want_standby) != NULL, "%s", out);
        free(want_leader);
        free(want_standby);
    }
    free(out);
    ck_assert_msg(status_cli(b, &out) == 0, "%s", out);
    free(out);
    /* A list with a bad element is a usage error, before any request. */
    ck_assert_int_eq(status_cli("127.0.0.1:1,nope", &out), 2);
    ck_assert_msg(strstr(out, "\"nope\" is not an address") != NULL, "%s", out);
    free(out);
    free(both);
}
END_TEST

/* The coordinator at arg lists the node "n1" UP. */
static bool node_up_at(void *arg)
{
    struct wire_node_info ni;

    return harness_node_info(arg, "n1", &ni, NULL) && strcmp(ni.state, "UP") == 0;
}

START_TEST(test_failover_node_follows)
{
    struct mkseg_spec spec = {.rows = 1024, .row_bytes = 16, .seed = 7};
    char *path = xasprintf("%s/h1.seg", storage), *seg_uri = xasprintf("file://%s", path);
    char *data = xasprintf("%s/node", dir), *list, detail[256], leader[256];
    char a[128], b[128];
    struct wire_query_response q;
    uint64_t t0, took_ms;

    ck_assert_msg(mkseg_write(path, &spec, detail, sizeof(detail)) == 0, "%s", detail);
    start_pair(a, b, sizeof(a));
    ck_assert_int_eq(get(b, "/readyz", NULL, NULL), 503);

    /* The node is given the standby first: its reports must reach the leader. */
    list = xasprintf("--coordinator=%s,%s", b, a);
    {
        const char *extra[] = {list, "--node-id=n1", "--report-interval=200ms", NULL};

        node = harness_node_start_calm(storage, data, extra);
    }
    ck_assert_ptr_nonnull(node);
    ck_assert(harness_wait_until(node_up_at, a, 10000));
    ck_assert_int_eq(harness_register_one(a, "h1", seg_uri, 1024, 16, 1), 200);
    ck_assert(harness_settled(a, 1, 15000));

    /* kill -9 of the leader: the standby leads, the node follows, queries go on. */
    harness_proc_kill(coord_a);
    t0 = clock_mono_ns();
    ck_assert_int_eq(harness_query_one(harness_proc_addr(node), "h1", WIRE_AGG_COUNT, "value",
                                       &q, NULL),
                     200);
    ck_assert_uint_eq(q.rows_matched, 1024);
    ck_assert(harness_wait_until(ready, b, 10000));
    took_ms = (clock_mono_ns() - t0) / 1000000;
    printf("check_ha: the standby led %" PRIu64 " ms after kill -9 of the leader\n", took_ms);
    ck_assert_uint_lt(took_ms, 5000);
    ck_assert_int_eq(get(b, "/readyz", leader, NULL), 200);
    ck_assert(harness_metric(b, "sluice_coord_leader_epoch") == 2);
    ck_assert(harness_metric(b, "sluice_coord_elections_total") == 1);
    ck_assert(harness_wait_until(node_up_at, b, 10000));
    ck_assert(harness_settled(b, 1, 15000));
    ck_assert_int_eq(harness_query_one(harness_proc_addr(node), "h1", WIRE_AGG_COUNT, "value",
                                       &q, NULL),
                     200);
    ck_assert_uint_eq(q.rows_matched, 1024);
    free(list);
    free(data);
    free(path);
    free(seg_uri);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ha");
    TCase *tc;
    char why[1024] = "";

    /* One server for every case, started before the runner forks. */
    if (harness_pg_shared(why, sizeof(why)) == NULL) {
        fprintf(stderr, "check_ha: FAIL: PostgreSQL did not start: %s\n", why);
        return 1;
    }
    tc = tcase_create("standby");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_standby_answers);
    tcase_add_test(tc, test_failover_node_follows);
    suite_add_tcase(s, tc);
    return harness_run_suite(s);
}
