/*
 * check_tables: tables end to end (issue 18, item 1), with a real
 * coordinator and a real node (tests/harness).
 *
 * The placement map of an empty catalog (version 0): a broker's delta poll
 * (since=0 with the epoch it was given) is answered as a delta, not as the
 * full map again, so a broker started before anything is registered polls
 * at its interval instead of in a tight loop. `import DIR` files each
 * segment under the directory's base name, `--table` under the one named;
 * `add` without --table under "default", which a later import names;
 * `tables` counts segments, rows, estimated bytes and the fraction LOADED;
 * a bad table name is refused before anything is sent, and a segment's
 * table, once named, does not change.
 *
 * Declared requests and limits (issue 21, item 2): a node refuses, with
 * MEM_CAPACITY, a segment whose declared request does not fit though its
 * row-count estimate would; a LOADED copy over its declared limit is
 * reported over_limit with its footprint and limit, in the node's status
 * and by the coordinator; the coordinator keeps the footprints (they
 * survive its restart), and `recommend` turns them into a request and a
 * limit per table.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "mkseg.h"
#include "segfmt.h"
#include "xmalloc.h"
#include "suite.h"

static char *dir, *storage;
static struct harness_proc *coord, *node, *broker;

static void setup(void)
{
    dir = harness_dir_new("sluice-tables-it");
    storage = xasprintf("%s/storage", dir);
    mkdir(storage, 0755);
}

static void teardown(void)
{
    harness_proc_free(broker);
    broker = NULL;
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

/*
 * GET /v1/placements (issue 18, item 2): the full map from since=0 (the 5
 * LOADED segments of two tables, each on the one node), nothing since its
 * version, one new segment as a delta of exactly that one, the full map
 * again for another epoch, and a 400 naming a bad parameter.
 */
static void check_placements(const char *addr)
{
    struct wire_placement_map pm, d;
    struct harness_reply rep;
    char q[96];
    int sales = 0, logs = 0;

    ck_assert_int_eq(harness_placements(addr, "?since=0", &pm), 200);
    ck_assert(pm.full);
    ck_assert_uint_eq(pm.n_segments, 5);
    ck_assert_uint_eq(pm.n_nodes, 1);
    ck_assert_str_eq(pm.nodes[0].state, "UP");
    ck_assert_str_eq(pm.next_after, "");
    for (size_t i = 0; i < pm.n_segments; i++) {
        sales += strcmp(pm.segments[i].table, "sales") == 0;
        logs += strcmp(pm.segments[i].table, "web logs") == 0;
        ck_assert_str_eq(pm.segments[i].state, "LOADED");
        ck_assert_uint_eq(pm.segments[i].n_nodes, 1);
        ck_assert_str_eq(pm.segments[i].node_ids[0], pm.nodes[0].node_id);
        if (i > 0) /* id order */
            ck_assert_int_lt(strcmp(pm.segments[i - 1].segment_id, pm.segments[i].segment_id), 0);
    }
    ck_assert_int_eq(sales, 3);
    ck_assert_int_eq(logs, 2);

    snprintf(q, sizeof(q), "?since=%llu&epoch=%016llx", (unsigned long long)pm.version,
             (unsigned long long)pm.epoch);
    ck_assert_int_eq(harness_placements(addr, q, &d), 200);
    ck_assert(!d.full);
    ck_assert_uint_eq(d.n_segments, 0);
    ck_assert_uint_eq(d.version, pm.version);
    ck_assert_uint_eq(d.n_nodes, 1);
    wire_placement_map_done(&d);

    ck_assert_int_eq(harness_register_one(addr, "p1", NULL, 10, 16, 1), 200);
    ck_assert_int_eq(harness_placements(addr, q, &d), 200);
    ck_assert(!d.full);
    ck_assert_uint_gt(d.version, pm.version);
    ck_assert_uint_ge(d.n_segments, 1);
    ck_assert_str_eq(d.segments[0].segment_id, "p1");
    ck_assert_str_eq(d.segments[0].table, "default");
    wire_placement_map_done(&d);

    snprintf(q, sizeof(q), "?since=%llu&epoch=%016llx", (unsigned long long)pm.version,
             (unsigned long long)(pm.epoch ^ 2));
    ck_assert_int_eq(harness_placements(addr, q, &d), 200);
    ck_assert(d.full);
    ck_assert_uint_eq(d.n_segments, 6);
    wire_placement_map_done(&d);
    wire_placement_map_done(&pm);

    ck_assert_int_eq(harness_send(addr, "GET", "/v1/placements?since=x", &rep), 400);
    ck_assert_msg(strstr(rep.err.message, "since") != NULL, "%s", rep.err.message);
    ck_assert_int_eq(harness_send(addr, "GET", "/v1/placements?epoch=xyz", &rep), 400);
    ck_assert_msg(strstr(rep.err.message, "epoch") != NULL, "%s", rep.err.message);
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
    check_placements(harness_proc_addr(coord));

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

/*
 * The segment's part of `segments --json` (a SegmentList: from its spec's
 * segment_id to its over_limit), or NULL; the caller frees it.
 */
static char *segment_json(const char *id)
{
    char *out = NULL, *at, *end, *line, key[160];

    if (harness_ctl(coord, &out, "segments", "--json", NULL) != 0) {
        free(out);
        return NULL;
    }
    snprintf(key, sizeof(key), "\"segment_id\":\"%s\"", id);
    at = strstr(out, key);
    end = at != NULL ? strstr(at, "\"over_limit\":") : NULL;
    line = end != NULL ? xasprintf("%.*s", (int)(end - at) + 18, at) : NULL;
    free(out);
    return line;
}

static bool footprint_known(void *arg)
{
    char *line = segment_json(arg);
    bool ok = line != NULL && strstr(line, "\"footprint_bytes\":0,") == NULL &&
              strstr(line, "\"over_limit\":true") != NULL;

    free(line);
    return ok;
}

static bool broker_polled(void *arg)
{
    (void)arg;
    return harness_metric(harness_proc_addr(broker),
                          "sluice_broker_placement_polls_total{outcome=\"full\"}") >= 1;
}

/*
 * An empty catalog: the full map is version 0, and a poll since 0 with that
 * epoch is an (empty) delta. It used to be the full map again, which made a
 * broker started before the first registration start over at once, forever
 * (thousands of full polls a second, each logged).
 */
START_TEST(test_placements_empty)
{
    struct wire_placement_map pm, d;
    const char *args[] = {"--poll-interval=100ms", NULL};
    char q[96];
    double full;

    coord = harness_coord_start(dir, NULL);
    ck_assert_ptr_nonnull(coord);
    ck_assert_int_eq(harness_placements(harness_proc_addr(coord), "?since=0", &pm), 200);
    ck_assert(pm.full);
    ck_assert_uint_eq(pm.version, 0);
    ck_assert_uint_eq(pm.n_segments, 0);
    snprintf(q, sizeof(q), "?since=0&epoch=%016llx", (unsigned long long)pm.epoch);
    ck_assert_int_eq(harness_placements(harness_proc_addr(coord), q, &d), 200);
    ck_assert_msg(!d.full, "a poll since version 0 of epoch %016llx got the full map",
                  (unsigned long long)pm.epoch);
    ck_assert_uint_eq(d.n_segments, 0);
    ck_assert_uint_eq(d.version, 0);
    wire_placement_map_done(&d);
    wire_placement_map_done(&pm);

    broker = harness_broker_start(dir, harness_proc_addr(coord), args);
    ck_assert_ptr_nonnull(broker);
    ck_assert_msg(harness_wait_until(broker_polled, NULL, 10000), "the broker never polled");
    usleep(1000 * 1000); /* ten poll intervals */
    full = harness_metric(harness_proc_addr(broker),
                          "sluice_broker_placement_polls_total{outcome=\"full\"}");
    ck_assert_msg(full == 1, "%.0f full polls of an empty map in a second (one expected)", full);
}
END_TEST

START_TEST(test_declared)
{
    char *data = xasprintf("%s/node", dir), *co, *out = NULL, *wide, *path, *uri, *line;
    const char *args[4];
    struct wire_node_status ns;
    int three = 3;
    bool found = false;

    coord = harness_coord_start(dir, NULL);
    ck_assert_ptr_nonnull(coord);
    co = xasprintf("--coordinator=%s", harness_proc_addr(coord));
    args[0] = co;
    args[1] = "--report-interval=200ms";
    args[2] = "--admit-budget=256M";
    args[3] = NULL;
    node = harness_node_start_calm(storage, data, args);
    ck_assert_ptr_nonnull(node);
    for (int i = 0; i < 3; i++) {
        char name[16];
        snprintf(name, sizeof(name), "w%d", i);
        free(make_segment("wide", name, 2000 * (uint64_t)(i + 1)));
    }
    wide = xasprintf("%s/wide", storage);

    /* A limit under the request is a usage error; over 16 TiB is out of range. */
    ck_assert_int_eq(harness_ctl(coord, &out, "import", wide, "--mem-request=2M",
                                 "--mem-limit=1M", NULL),
                     2);
    ck_assert_msg(strstr(out, "--mem-limit: 1048576 is under --mem-request 2097152") != NULL,
                  "%s", out);
    free(out);
    ck_assert_int_eq(harness_ctl(coord, &out, "import", wide, "--mem-request=17T", NULL), 2);
    free(out);

    /* Every copy is bigger than 8 KiB: all three are over their limit once LOADED. */
    ck_assert_int_eq(harness_ctl(coord, &out, "import", wide, "--mem-request=4K",
                                 "--mem-limit=8K", NULL),
                     0);
    free(out);
    ck_assert_msg(harness_wait_until(tables_loaded, &three, 20000), "wide not all LOADED");
    ck_assert_msg(harness_wait_until(footprint_known, (char[]){"w2"}, 10000),
                  "the coordinator has no footprint, or no over_limit, for w2");
    line = segment_json("w2");
    ck_assert_msg(strstr(line, "\"mem_request_bytes\":4096,\"mem_limit_bytes\":8192}") != NULL,
                  "%s", line);
    free(line);
    ck_assert(harness_node_status(harness_proc_addr(node), NULL, 5000, &ns));
    for (size_t i = 0; i < ns.n_segments; i++) {
        const struct wire_segment_status *st = &ns.segments[i];
        if (strcmp(st->segment_id, "w0") != 0)
            continue;
        found = true;
        /* 2000 rows x 16 B of columns, plus the header and the zone maps. */
        ck_assert_uint_gt(st->footprint_bytes, 32000);
        ck_assert_uint_eq(st->mem_limit_bytes, 8192);
        ck_assert_uint_eq(st->mem_request_bytes, 4096);
        ck_assert(st->over_limit);
    }
    ck_assert(found);
    wire_node_status_done(&ns);
    ck_assert_int_eq(harness_ctl(coord, &out, "explain", "w1", NULL), 0);
    ck_assert_msg(strstr(out, "declared request 4096 B, limit 8192 B") != NULL &&
                      strstr(out, "OVER_LIMIT") != NULL,
                  "%s", out);
    free(out);

    /* recommend: three observed, p90 and p95 the largest (w2), plus 15 %, in pages. */
    ck_assert_int_eq(harness_ctl(coord, &out, "recommend", "--table=wide", "--json", NULL), 0);
    ck_assert_msg(strstr(out, "{\"recommendations\":[{\"table\":\"wide\",\"segments\":3,"
                              "\"observed\":3,") != NULL &&
                      strstr(out, "\"declared_request_bytes\":4096,\"declared_limit_bytes\":8192,") !=
                          NULL &&
                      strstr(out, "\"over_limit\":3}") != NULL,
                  "%s", out);
    free(out);
    ck_assert_int_eq(harness_ctl(coord, &out, "recommend", NULL), 0);
    ck_assert_msg(strstr(out, "wide: --mem-request ") != NULL, "%s", out);
    free(out);
    ck_assert_int_eq(harness_ctl(coord, &out, "recommend", "--table=nope", NULL), 1);
    ck_assert_msg(strstr(out, "table \"nope\" has no segments") != NULL, "%s", out);
    free(out);

    /* A request the admit budget cannot hold is refused, though its rows are few. */
    path = make_segment("big", "huge", 100);
    uri = xasprintf("--uri=file://%s", path);
    ck_assert_int_eq(harness_ctl(coord, &out, "add", "--id=huge", uri, "--rows=100",
                                 "--row-size=16", "--mem-request=1G", NULL),
                     0);
    free(out);
    out = NULL;
    for (int i = 0; i < 100; i++) {
        free(out);
        out = NULL;
        if (harness_ctl(coord, &out, "explain", "huge", NULL) == 0 &&
            strstr(out, "MEM_CAPACITY") != NULL)
            break;
        usleep(100000);
    }
    ck_assert_msg(out != NULL && strstr(out, "MEM_CAPACITY") != NULL, "%s", out);
    free(out);

    /* The footprints are the coordinator's: they survive its restart with no node reporting. */
    harness_proc_free(node);
    node = NULL;
    ck_assert_int_eq(harness_proc_restart(coord), 0);
    line = segment_json("w2");
    ck_assert_msg(line != NULL && strstr(line, "\"footprint_bytes\":0,") == NULL, "%s", line);
    free(line);
    ck_assert_int_eq(harness_ctl(coord, &out, "recommend", "--table=wide", "--json", NULL), 0);
    ck_assert_msg(strstr(out, "\"observed\":3,") != NULL, "%s", out);
    free(out);
    free(uri);
    free(path);
    free(wide);
    free(co);
    free(data);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tables");
    TCase *tc = tcase_create("tables");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_tables);
    tcase_add_test(tc, test_declared);
    tcase_add_test(tc, test_placements_empty);
    suite_add_tcase(s, tc);
    return harness_run_suite(s);
}
