/*
 * check_catalog: unit tests for coordinator/catalog. Every TCase gets a
 * fresh mkdtemp directory (on the real file system, so fsync is real) with
 * its own database. Besides the API, the tests look at the file directly
 * through a second, raw SQLite connection: pragmas, schema version, rows
 * the API would refuse to write. The durability test forks a child that
 * commits and then dies by SIGKILL without closing, and reopens the file in
 * the parent; the migration test builds a version 1 database through
 * catalog_create_at_version and fills it with raw SQL as version 1 knew it.
 *
 * The temporary directory is created and removed by an unchecked fixture,
 * which runs in the parent process, so it is removed even when a test fails.
 *
 * The catalog contract (every TCase that goes through the API alone) runs
 * twice: on SQLite (argument "sqlite", the meson test 'catalog') and on
 * PostgreSQL ("postgresql", 'catalog-pg'), where main() starts a private
 * server (tests/harness/pg.c) and each TCase gets a fresh database. The
 * PostgreSQL run adds what only it has (its schema version table, a
 * foreign database, migrations from v1) and `catalog copy` both ways. If
 * the server cannot start, 'catalog-pg' fails, saying why: it never skips.
 */
#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "catalog.h"
#include "harness.h"
#include "pg.h"
#include "suite.h"

static char test_dir[256];
static char test_db[512];
static struct harness_pg *test_pg; /* the server of the PostgreSQL run */

static void test_setup(void)
{
    const char *tmp = getenv("TMPDIR");

    snprintf(test_dir, sizeof(test_dir), "%s/check_catalog.XXXXXX",
             tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    if (mkdtemp(test_dir) == NULL) {
        perror("mkdtemp");
        abort();
    }
    snprintf(test_db, sizeof(test_db), "%s/catalog.db", test_dir);
}

static int test_rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void test_teardown(void)
{
    nftw(test_dir, test_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* The same, and test_db is a fresh PostgreSQL database (test_dir stays for other files). */
static void test_setup_pg(void)
{
    char why[512] = "";
    char *uri;

    test_setup();
    uri = harness_pg_new_db(test_pg, why, sizeof(why));
    if (uri == NULL) {
        fprintf(stderr, "check_catalog: no fresh PostgreSQL database: %s\n", why);
        abort();
    }
    snprintf(test_db, sizeof(test_db), "%s", uri);
    free(uri);
}

/* ---- helpers ---- */

static struct catalog *test_open(void)
{
    struct catalog *c = NULL;
    char err[512] = "";
    int r = catalog_open(test_db, &c, err, sizeof(err));

    ck_assert_msg(r == 0, "catalog_open: %d %s", r, err);
    ck_assert_ptr_nonnull(c);
    return c;
}

static struct catalog *test_open_keep(uint64_t keep)
{
    struct catalog_options opts = {.events_keep = keep};
    struct catalog *c = NULL;
    char err[512] = "";
    int r = catalog_open_with(test_db, &opts, &c, err, sizeof(err));

    ck_assert_msg(r == 0, "catalog_open_with: %d %s", r, err);
    return c;
}

static struct catalog_segment test_segment(const char *id, uint64_t rows)
{
    struct catalog_segment s = {
        .row_count = rows, .avg_row_size = 48, .replication = 1, .created_ms = 1000};

    snprintf(s.id, sizeof(s.id), "%s", id);
    snprintf(s.uri, sizeof(s.uri), "file:///data/%s.seg", id);
    snprintf(s.state, sizeof(s.state), "PENDING");
    return s;
}

static struct catalog_node test_node(const char *id, const char *state)
{
    struct catalog_node n = {.last_seen_ms = 5000, .created_ms = 4000};

    snprintf(n.id, sizeof(n.id), "%s", id);
    snprintf(n.addr, sizeof(n.addr), "127.0.0.1:%d", 7000 + (int)strlen(id));
    snprintf(n.state, sizeof(n.state), "%s", state);
    return n;
}

static void test_put_segment(struct catalog *c, const char *id, uint64_t rows)
{
    struct catalog_segment s = test_segment(id, rows);
    int r = catalog_put_segment(c, &s);

    ck_assert_msg(r == 0, "put_segment %s: %d %s", id, r, catalog_errmsg(c));
}

static void test_put_node(struct catalog *c, const char *id)
{
    struct catalog_node n = test_node(id, "UP");
    int r = catalog_put_node(c, &n);

    ck_assert_msg(r == 0, "put_node %s: %d %s", id, r, catalog_errmsg(c));
}

static void test_add_event(struct catalog *c, const char *seg, const char *kind, int64_t ts)
{
    struct catalog_event e = {.ts_ms = ts};
    int r;

    snprintf(e.segment_id, sizeof(e.segment_id), "%s", seg);
    snprintf(e.kind, sizeof(e.kind), "%s", kind);
    r = catalog_add_event(c, &e);
    ck_assert_msg(r == 0, "add_event: %d %s", r, catalog_errmsg(c));
}

static uint64_t test_count_segments(struct catalog *c, const char *state)
{
    uint64_t n = UINT64_MAX;
    int r = catalog_count_segments(c, state, &n);

    ck_assert_msg(r == 0, "count_segments: %d %s", r, catalog_errmsg(c));
    return n;
}

/* Collects up to 64 rows of any kind into a fixed array. */
struct test_rows {
    int n;
    struct catalog_assignment asg[64];
    struct catalog_event ev[64];
    struct catalog_node node[64];
    char seg_ids[64][WIRE_ID_MAX + 1];
};

static int test_asg_cb(const struct catalog_assignment *a, void *arg)
{
    struct test_rows *t = arg;

    ck_assert_int_lt(t->n, 64);
    t->asg[t->n++] = *a;
    return 0;
}

static int test_ev_cb(const struct catalog_event *e, void *arg)
{
    struct test_rows *t = arg;

    ck_assert_int_lt(t->n, 64);
    t->ev[t->n++] = *e;
    return 0;
}

static int test_node_cb(const struct catalog_node *n, void *arg)
{
    struct test_rows *t = arg;

    ck_assert_int_lt(t->n, 64);
    t->node[t->n++] = *n;
    return 0;
}

static int test_seg_cb(const struct catalog_segment *s, void *arg)
{
    struct test_rows *t = arg;

    ck_assert_int_lt(t->n, 64);
    snprintf(t->seg_ids[t->n++], sizeof(t->seg_ids[0]), "%s", s->id);
    return 0;
}

static int test_count_assignments(struct catalog *c, const char *seg, const char *node)
{
    static struct test_rows t;
    int r;

    t.n = 0;
    r = catalog_foreach_assignment(c, seg, node, test_asg_cb, &t);
    ck_assert_msg(r == 0, "foreach_assignment: %d %s", r, catalog_errmsg(c));
    return t.n;
}

static int test_count_events(struct catalog *c)
{
    static struct test_rows t;
    int r;

    t.n = 0;
    r = catalog_foreach_event(c, NULL, 0, 0, test_ev_cb, &t);
    ck_assert_msg(r == 0, "foreach_event: %d %s", r, catalog_errmsg(c));
    return t.n;
}

/* A second, raw connection to the same file. */
static sqlite3 *test_raw_open(void)
{
    sqlite3 *db = NULL;

    ck_assert_int_eq(sqlite3_open(test_db, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    return db;
}

static void test_raw_exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);

    ck_assert_msg(rc == SQLITE_OK, "%s: %s", sql, msg != NULL ? msg : "?");
    sqlite3_free(msg);
}

/* Runs sql and returns the first column of the first row as an integer. */
static int64_t test_raw_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *s = NULL;
    int64_t v;

    ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK, "%s: %s", sql,
                  sqlite3_errmsg(db));
    ck_assert_msg(sqlite3_step(s) == SQLITE_ROW, "%s: no row", sql);
    v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

static double test_now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- tests ---- */

/* Rows as schema version 1 knew them (after a node 'n1'): the migration tests' input. */
#define TEST_V1_ROWS                                                                               \
    "INSERT INTO segments (id, uri, row_count, avg_row_size, state,"                               \
    "  backoff_until_ms, created_ms)"                                                              \
    "  VALUES ('s1', 'file:///d/s1.seg', 1000, 48, 'LOADED', 0, 200),"                             \
    "         ('s2', 'file:///d/s2.seg', 77, 16, 'PENDING', 9999, 201);"                           \
    "INSERT INTO assignments VALUES ('s1', 'n1', 'LOADED', 300);"                                  \
    "INSERT INTO events (ts_ms, segment_id, node_id, kind, http_status)"                           \
    "  VALUES (400, 's1', 'n1', 'accepted', 202);"

START_TEST(test_fresh_open)
{
    struct catalog *c = test_open();
    struct catalog_settings s;
    sqlite3 *db;

    ck_assert_int_eq(catalog_schema_version(c), CATALOG_SCHEMA_VERSION);
    ck_assert_int_eq(CATALOG_SCHEMA_VERSION, 7);
    ck_assert_int_eq(catalog_settings(c, &s), 0);
    ck_assert_str_eq(s.journal_mode, "wal");
    ck_assert_int_eq(s.synchronous, 2); /* FULL */
    ck_assert_int_eq(s.foreign_keys, 1);
    ck_assert_int_eq(s.busy_timeout_ms, 5000);
    ck_assert_uint_eq(test_count_segments(c, NULL), 0);

    /* What is on disk, seen by another connection. */
    db = test_raw_open();
    ck_assert_int_eq(test_raw_int(db, "PRAGMA user_version"), CATALOG_SCHEMA_VERSION);
    ck_assert_int_eq(test_raw_int(db, "PRAGMA application_id"), 0x534C4345);
    ck_assert_int_eq(test_raw_int(db, "SELECT count(*) FROM sqlite_schema WHERE type = 'table'"
                                      " AND name IN ('nodes', 'segments', 'assignments',"
                                      " 'events')"),
                     4);
    ck_assert_int_eq(test_raw_int(db, "SELECT count(*) FROM sqlite_schema WHERE type = 'index'"
                                      " AND name IN ('segments_state', 'assignments_node',"
                                      " 'events_segment')"),
                     3);
    sqlite3_close(db);
    catalog_close(c);
    catalog_close(NULL);
}
END_TEST

START_TEST(test_open_errors)
{
    static char sentinel_byte;
    struct catalog *sentinel = (struct catalog *)(void *)&sentinel_byte;
    struct catalog *c = sentinel; /* must stay unwritten on failure */
    char err[512] = "";
    char path[600];
    FILE *f;

    ck_assert_int_eq(catalog_open("", &c, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_eq(c, sentinel);

    snprintf(path, sizeof(path), "%s/no/such/dir/catalog.db", test_dir);
    ck_assert_int_lt(catalog_open(path, &c, err, sizeof(err)), 0);
    ck_assert_ptr_eq(c, sentinel);
    ck_assert_msg(strstr(err, "no/such/dir") != NULL, "message names the path: %s", err);

    /* A file that is not a database. */
    f = fopen(test_db, "w");
    ck_assert_ptr_nonnull(f);
    for (int i = 0; i < 512; i++)
        fputs("not a database ", f);
    fclose(f);
    ck_assert_int_eq(catalog_open(test_db, &c, err, sizeof(err)), -EBADMSG);
    ck_assert_ptr_eq(c, sentinel);
    ck_assert_msg(strstr(err, "not a database") != NULL, "%s", err);
}
END_TEST

START_TEST(test_foreign_database)
{
    struct catalog *c = NULL;
    char err[512] = "";
    sqlite3 *db = test_raw_open();

    /* Some other program's database: version 0 but not empty. */
    test_raw_exec(db, "CREATE TABLE nodes (x)");
    sqlite3_close(db);
    ck_assert_int_eq(catalog_open(test_db, &c, err, sizeof(err)), -EBADMSG);
    ck_assert_ptr_null(c);
    ck_assert_msg(strstr(err, "not a Sluice catalog") != NULL, "%s", err);
    db = test_raw_open();
    ck_assert_int_eq(test_raw_int(db, "PRAGMA user_version"), 0);
    ck_assert_int_eq(test_raw_int(db, "SELECT count(*) FROM sqlite_schema"), 1);
    sqlite3_close(db);
}
END_TEST

START_TEST(test_migrate_from_v1)
{
    struct catalog *c;
    struct catalog_segment g;
    struct test_rows t = {0};
    char err[512] = "";
    sqlite3 *db;
    int r;

    r = catalog_create_at_version(test_db, 1, err, sizeof(err));
    ck_assert_msg(r == 0, "create v1: %d %s", r, err);

    /* Version 1 as it was: no replication column, no events_segment index. */
    db = test_raw_open();
    ck_assert_int_eq(test_raw_int(db, "PRAGMA user_version"), 1);
    ck_assert_int_eq(test_raw_int(db, "SELECT count(*) FROM pragma_table_info('segments')"
                                      " WHERE name = 'replication'"),
                     0);
    ck_assert_int_eq(test_raw_int(db, "SELECT count(*) FROM sqlite_schema"
                                      " WHERE name = 'events_segment'"),
                     0);
    test_raw_exec(db, "PRAGMA foreign_keys = ON;"
                      "INSERT INTO nodes VALUES ('n1', '10.0.0.1:7070', 'UP', 111, NULL, 100);"
                      TEST_V1_ROWS);
    sqlite3_close(db);

    c = test_open();
    ck_assert_int_eq(catalog_schema_version(c), CATALOG_SCHEMA_VERSION);
    ck_assert_int_eq(catalog_get_segment(c, "s2", &g), 0);
    ck_assert_str_eq(g.uri, "file:///d/s2.seg");
    ck_assert_uint_eq(g.row_count, 77);
    ck_assert_uint_eq(g.avg_row_size, 16);
    ck_assert_uint_eq(g.replication, 1); /* the v2 default for old rows */
    ck_assert_str_eq(g.state, "PENDING");
    ck_assert_int_eq(g.backoff_until_ms, 9999);
    ck_assert_int_eq(g.created_ms, 201);
    ck_assert_uint_eq(test_count_segments(c, "LOADED"), 1);
    ck_assert_int_eq(catalog_foreach_assignment(c, NULL, "n1", test_asg_cb, &t), 0);
    ck_assert_int_eq(t.n, 1);
    ck_assert_str_eq(t.asg[0].segment_id, "s1");
    ck_assert_int_eq(t.asg[0].updated_ms, 300);
    t.n = 0;
    ck_assert_int_eq(catalog_foreach_event(c, "s1", 0, 0, test_ev_cb, &t), 0);
    ck_assert_int_eq(t.n, 1);
    ck_assert_str_eq(t.ev[0].kind, "accepted");
    ck_assert_int_eq(t.ev[0].http_status, 202);
    ck_assert_int_eq(catalog_integrity_check(c, err, sizeof(err)), 0);
    catalog_close(c);

    db = test_raw_open();
    ck_assert_int_eq(test_raw_int(db, "SELECT count(*) FROM sqlite_schema"
                                      " WHERE name = 'events_segment'"),
                     1);
    sqlite3_close(db);

    /* The hook refuses to go backwards. */
    ck_assert_int_eq(catalog_create_at_version(test_db, 1, err, sizeof(err)), -EEXIST);
    ck_assert_int_eq(catalog_create_at_version(test_db, CATALOG_SCHEMA_VERSION + 1, err, sizeof(err)), -EINVAL);
}
END_TEST

/*
 * v3: who drains a node leaves last_reason for a column of its own, and
 * pull mode is kept. Rows as version 2 wrote them: the drain tags in
 * last_reason, and a DRAINING row older than the tags (no reason: an
 * operator's drain).
 */
START_TEST(test_migrate_from_v2)
{
    struct catalog *c;
    struct catalog_node g;
    char err[512] = "";
    sqlite3 *db;
    int r;

    r = catalog_create_at_version(test_db, 2, err, sizeof(err));
    ck_assert_msg(r == 0, "create v2: %d %s", r, err);
    db = test_raw_open();
    test_raw_exec(db, "INSERT INTO nodes VALUES"
                      "  ('adm', 'h:1', 'DRAINING', 1, 'ADMIN_DRAIN', 1),"
                      "  ('old', 'h:2', 'DRAINING', 1, NULL, 1),"
                      "  ('own', 'h:3', 'DRAINING', 1, 'SELF_DRAIN', 1),"
                      "  ('up', 'h:4', 'UP', 1, NULL, 1),"
                      "  ('sus', 'h:5', 'SUSPECT', 1, 'timeout', 1);");
    sqlite3_close(db);

    c = test_open();
    ck_assert_int_eq(catalog_schema_version(c), CATALOG_SCHEMA_VERSION);
    ck_assert_int_eq(catalog_get_node(c, "adm", &g), 0);
    ck_assert_str_eq(g.drained_by, "operator");
    ck_assert_str_eq(g.last_reason, "");
    ck_assert(!g.claim);
    ck_assert_int_eq(catalog_get_node(c, "old", &g), 0);
    ck_assert_str_eq(g.drained_by, "operator");
    ck_assert_int_eq(catalog_get_node(c, "own", &g), 0);
    ck_assert_str_eq(g.drained_by, "node");
    ck_assert_str_eq(g.last_reason, "");
    ck_assert_str_eq(g.state, "DRAINING");
    ck_assert_int_eq(catalog_get_node(c, "up", &g), 0);
    ck_assert_str_eq(g.drained_by, "");
    ck_assert_int_eq(catalog_get_node(c, "sus", &g), 0);
    ck_assert_str_eq(g.drained_by, "");
    ck_assert_str_eq(g.last_reason, "timeout");

    /* Pull mode and the drainer round-trip; a bad drainer is refused. */
    g = test_node("cl", "UP");
    g.claim = true;
    ck_assert_int_eq(catalog_put_node(c, &g), 0);
    ck_assert_int_eq(catalog_get_node(c, "cl", &g), 0);
    ck_assert(g.claim);
    ck_assert_int_eq(catalog_set_node_state(c, "cl", "DRAINING", "node"), 0);
    ck_assert_int_eq(catalog_get_node(c, "cl", &g), 0);
    ck_assert_str_eq(g.drained_by, "node");
    ck_assert(g.claim); /* a state change leaves pull mode alone */
    snprintf(g.drained_by, sizeof(g.drained_by), "someone");
    ck_assert_int_eq(catalog_put_node(c, &g), -EINVAL);
    ck_assert_int_eq(catalog_set_node_state(c, "cl", "DRAINING", "ADMIN_DRAIN"), -EINVAL);
    ck_assert_int_eq(catalog_integrity_check(c, err, sizeof(err)), 0);
    catalog_close(c);
}
END_TEST

/*
 * v4: segments carry the file's digest; rows from before get 0 (unknown),
 * and catalog_set_segment_file records a changed file (and, on request, its
 * new state).
 */
START_TEST(test_migrate_from_v3)
{
    struct catalog *c;
    struct catalog_segment g;
    char err[512] = "";
    sqlite3 *db;
    int r;

    r = catalog_create_at_version(test_db, 3, err, sizeof(err));
    ck_assert_msg(r == 0, "create v3: %d %s", r, err);
    db = test_raw_open();
    test_raw_exec(db, "INSERT INTO segments (id, uri, row_count, avg_row_size, state,"
                      "  backoff_until_ms, created_ms, replication)"
                      "  VALUES ('s1', 'file:///d/s1.seg', 1000, 48, 'INVALID', 5000, 200, 2);");
    sqlite3_close(db);

    c = test_open();
    ck_assert_int_eq(catalog_schema_version(c), CATALOG_SCHEMA_VERSION);
    ck_assert_int_eq(catalog_get_segment(c, "s1", &g), 0);
    ck_assert_uint_eq(g.digest, 0);
    ck_assert_uint_eq(g.replication, 2);
    /* The digest alone: state and back-off stay. */
    ck_assert_int_eq(catalog_set_segment_file(c, "s1", 1000, 48, 0xfedcba9876543210ull, NULL), 0);
    ck_assert_int_eq(catalog_get_segment(c, "s1", &g), 0);
    ck_assert_uint_eq(g.digest, 0xfedcba9876543210ull);
    ck_assert_str_eq(g.state, "INVALID");
    ck_assert_int_eq(g.backoff_until_ms, 5000);
    /* A changed file: new fields, PENDING, no back-off. */
    ck_assert_int_eq(catalog_set_segment_file(c, "s1", 5000, 40, 42, "PENDING"), 0);
    ck_assert_int_eq(catalog_get_segment(c, "s1", &g), 0);
    ck_assert_uint_eq(g.row_count, 5000);
    ck_assert_uint_eq(g.avg_row_size, 40);
    ck_assert_uint_eq(g.digest, 42);
    ck_assert_str_eq(g.state, "PENDING");
    ck_assert_int_eq(g.backoff_until_ms, 0);
    ck_assert_int_eq(catalog_set_segment_file(c, "nope", 1, 1, 1, NULL), -ENOENT);
    ck_assert_int_eq(catalog_set_segment_file(c, "s1", 0, 1, 1, NULL), -EINVAL);
    ck_assert_int_eq(catalog_set_segment_file(c, "s1", 1, 1, 1, "GONE"), -EINVAL);
    ck_assert_int_eq(catalog_integrity_check(c, err, sizeof(err)), 0);
    catalog_close(c);
}
END_TEST

/*
 * v6: segments belong to a table; rows from before get "default". A
 * registration that names another table is a conflict; catalog_set_segment_table
 * files a segment under another one; bad names are refused before SQLite.
 */
START_TEST(test_migrate_from_v5)
{
    struct catalog *c;
    struct catalog_segment g, s;
    char err[512] = "";
    sqlite3 *db;
    int r;

    r = catalog_create_at_version(test_db, 5, err, sizeof(err));
    ck_assert_msg(r == 0, "create v5: %d %s", r, err);
    db = test_raw_open();
    ck_assert_int_eq(test_raw_int(db, "SELECT count(*) FROM pragma_table_info('segments')"
                                      " WHERE name = 'table_name'"),
                     0);
    test_raw_exec(db, "INSERT INTO segments (id, uri, row_count, avg_row_size, state,"
                      "  backoff_until_ms, created_ms, replication, digest)"
                      "  VALUES ('old', 'file:///d/old.seg', 1000, 48, 'LOADED', 0, 200, 1, 7);");
    sqlite3_close(db);

    c = test_open();
    ck_assert_int_eq(catalog_schema_version(c), CATALOG_SCHEMA_VERSION);
    ck_assert_int_eq(catalog_get_segment(c, "old", &g), 0);
    ck_assert_str_eq(g.table, "default");
    ck_assert_uint_eq(g.digest, 7);
    ck_assert_str_eq(g.state, "LOADED");

    /* A new segment keeps its table; "" is the default table. */
    s = test_segment("new", 10);
    snprintf(s.table, sizeof(s.table), "ventes été");
    ck_assert_int_eq(catalog_put_segment(c, &s), 0);
    ck_assert_int_eq(catalog_get_segment(c, "new", &g), 0);
    ck_assert_str_eq(g.table, "ventes été");
    ck_assert_int_eq(catalog_put_segment(c, &s), 0); /* a retry: the same */
    snprintf(s.table, sizeof(s.table), "other");
    ck_assert_int_eq(catalog_put_segment(c, &s), -EEXIST);
    ck_assert_ptr_nonnull(strstr(catalog_errmsg(c), "table"));
    s = test_segment("plain", 10);
    ck_assert_int_eq(catalog_put_segment(c, &s), 0);
    ck_assert_int_eq(catalog_get_segment(c, "plain", &g), 0);
    ck_assert_str_eq(g.table, "default");

    /* Moving a segment; bad names change nothing. */
    ck_assert_int_eq(catalog_set_segment_table(c, "old", "t1"), 0);
    ck_assert_int_eq(catalog_get_segment(c, "old", &g), 0);
    ck_assert_str_eq(g.table, "t1");
    ck_assert_int_eq(catalog_set_segment_table(c, "nope", "t1"), -ENOENT);
    ck_assert_int_eq(catalog_set_segment_table(c, "old", ""), -EINVAL);
    ck_assert_int_eq(catalog_set_segment_table(c, "old", "a/b"), -EINVAL);
    ck_assert_int_eq(catalog_set_segment_table(c, "old", "tab\there"), -EINVAL);
    ck_assert_int_eq(catalog_set_segment_table(c, "old", "bad\xff"), -EINVAL);
    ck_assert_ptr_nonnull(strstr(catalog_errmsg(c), "UTF-8"));
    s = test_segment("bad", 10);
    memset(s.table, 'x', WIRE_TABLE_MAX + 1); /* no terminator within the field's room */
    ck_assert_int_eq(catalog_put_segment(c, &s), -EINVAL);
    ck_assert_int_eq(catalog_get_segment(c, "bad", &g), -ENOENT);
    ck_assert_int_eq(catalog_get_segment(c, "old", &g), 0);
    ck_assert_str_eq(g.table, "t1");
    ck_assert_int_eq(catalog_integrity_check(c, err, sizeof(err)), 0);
    catalog_close(c);
}
END_TEST

/*
 * v7: segments carry declared memory and the footprint nodes observed; rows
 * from before have none (0). Both are set on their own, and checked first.
 */
START_TEST(test_migrate_from_v6)
{
    struct catalog *c;
    struct catalog_segment g, s;
    char err[512] = "";
    sqlite3 *db;
    int r;

    r = catalog_create_at_version(test_db, 6, err, sizeof(err));
    ck_assert_msg(r == 0, "create v6: %d %s", r, err);
    db = test_raw_open();
    test_raw_exec(db, "INSERT INTO segments (id, uri, row_count, avg_row_size, state,"
                      "  backoff_until_ms, created_ms, replication, digest, table_name)"
                      "  VALUES ('old', 'file:///d/old.seg', 1000, 48, 'LOADED', 0, 200, 1, 7,"
                      "          'sales');");
    sqlite3_close(db);

    c = test_open();
    ck_assert_int_eq(catalog_schema_version(c), CATALOG_SCHEMA_VERSION);
    ck_assert_int_eq(catalog_get_segment(c, "old", &g), 0);
    ck_assert_str_eq(g.table, "sales");
    ck_assert_uint_eq(g.mem_request_bytes, 0);
    ck_assert_uint_eq(g.mem_limit_bytes, 0);
    ck_assert_uint_eq(g.footprint_bytes, 0);

    ck_assert_int_eq(catalog_set_segment_mem(c, "old", 1000, 5000), 0);
    ck_assert_int_eq(catalog_set_segment_footprint(c, "old", 4321), 0);
    ck_assert_int_eq(catalog_get_segment(c, "old", &g), 0);
    ck_assert_uint_eq(g.mem_request_bytes, 1000);
    ck_assert_uint_eq(g.mem_limit_bytes, 5000);
    ck_assert_uint_eq(g.footprint_bytes, 4321);
    ck_assert_str_eq(g.state, "LOADED"); /* nothing else moved */
    ck_assert_int_eq(catalog_set_segment_mem(c, "old", 5000, 1000), -EINVAL);
    ck_assert_ptr_nonnull(strstr(catalog_errmsg(c), "mem_limit_bytes"));
    ck_assert_int_eq(catalog_set_segment_mem(c, "old", WIRE_MEM_DECLARED_MAX + 1, 0), -EINVAL);
    ck_assert_int_eq(catalog_set_segment_mem(c, "nope", 1, 2), -ENOENT);
    ck_assert_int_eq(catalog_set_segment_footprint(c, "old", UINT64_MAX), -EINVAL);
    ck_assert_int_eq(catalog_set_segment_footprint(c, "nope", 1), -ENOENT);
    ck_assert_int_eq(catalog_get_segment(c, "old", &g), 0);
    ck_assert_uint_eq(g.mem_request_bytes, 1000);
    ck_assert_uint_eq(g.footprint_bytes, 4321);

    /* A new segment with its declarations; a bad pair is refused, nothing stored. */
    s = test_segment("new", 10);
    s.mem_request_bytes = 64;
    s.mem_limit_bytes = 128;
    ck_assert_int_eq(catalog_put_segment(c, &s), 0);
    ck_assert_int_eq(catalog_get_segment(c, "new", &g), 0);
    ck_assert_uint_eq(g.mem_request_bytes, 64);
    ck_assert_uint_eq(g.mem_limit_bytes, 128);
    s = test_segment("bad", 10);
    s.mem_request_bytes = 128;
    s.mem_limit_bytes = 64;
    ck_assert_int_eq(catalog_put_segment(c, &s), -EINVAL);
    ck_assert_int_eq(catalog_get_segment(c, "bad", &g), -ENOENT);
    ck_assert_int_eq(catalog_integrity_check(c, err, sizeof(err)), 0);
    catalog_close(c);
}
END_TEST

START_TEST(test_future_version)
{
    struct catalog *c = test_open();
    char err[512] = "";
    sqlite3 *db;

    test_put_segment(c, "s1", 10);
    catalog_close(c);
    db = test_raw_open();
    test_raw_exec(db, "PRAGMA user_version = 99");
    sqlite3_close(db);

    c = NULL;
    ck_assert_int_eq(catalog_open(test_db, &c, err, sizeof(err)), -EPROTONOSUPPORT);
    ck_assert_ptr_null(c);
    ck_assert_msg(strstr(err, "version 99") != NULL, "names the database's version: %s", err);
    ck_assert_msg(strstr(err, "version 7") != NULL, "names the known version: %s", err);

    /* Left untouched. */
    db = test_raw_open();
    ck_assert_int_eq(test_raw_int(db, "PRAGMA user_version"), 99);
    ck_assert_int_eq(test_raw_int(db, "SELECT count(*) FROM segments"), 1);
    sqlite3_close(db);
}
END_TEST

/*
 * v5: an event row stands for a count of identical events (a storm);
 * rows from before stand for one. catalog_fold_event sets the count.
 */
START_TEST(test_migrate_from_v4)
{
    struct catalog *c;
    struct catalog_event e = {.ts_ms = 7, .http_status = 429};
    struct test_rows t = {0};
    uint64_t id = 0;
    char err[512] = "";
    sqlite3 *db;
    int r;

    r = catalog_create_at_version(test_db, 4, err, sizeof(err));
    ck_assert_msg(r == 0, "create v4: %d %s", r, err);
    db = test_raw_open();
    test_raw_exec(db, "INSERT INTO events (ts_ms, node_id, kind, reason, http_status)"
                      "  VALUES (5, 'n1', 'refused', 'LOAD_CONCURRENCY', 429);");
    sqlite3_close(db);

    c = test_open();
    ck_assert_int_eq(catalog_schema_version(c), CATALOG_SCHEMA_VERSION);
    snprintf(e.node_id, sizeof(e.node_id), "n1");
    snprintf(e.kind, sizeof(e.kind), "refused");
    snprintf(e.reason, sizeof(e.reason), "LOAD_CONCURRENCY");
    ck_assert_int_eq(catalog_add_event_id(c, &e, &id), 0);
    ck_assert_uint_eq(id, 2);
    ck_assert_int_eq(catalog_fold_event(c, id, 113, 900), 0);
    /* A trimmed row: nothing to do, no error. */
    ck_assert_int_eq(catalog_fold_event(c, 99, 2, 900), 0);
    ck_assert_int_eq(catalog_fold_event(c, 0, 2, 900), -EINVAL);
    ck_assert_int_eq(catalog_fold_event(c, id, 0, 900), -EINVAL);
    ck_assert_int_eq(catalog_fold_event(c, id, 5, -1), -EINVAL);
    ck_assert_int_eq(catalog_foreach_event(c, NULL, 0, 0, test_ev_cb, &t), 0);
    ck_assert_int_eq(t.n, 2);
    ck_assert_uint_eq(t.ev[0].count, 1); /* from before the migration */
    ck_assert_int_eq(t.ev[0].last_ts_ms, 0);
    ck_assert_uint_eq(t.ev[1].count, 113);
    ck_assert_int_eq(t.ev[1].last_ts_ms, 900);
    ck_assert_int_eq(catalog_integrity_check(c, err, sizeof(err)), 0);
    catalog_close(c);
}
END_TEST

START_TEST(test_reopen_preserves)
{
    struct catalog *c = test_open();
    struct catalog_segment s = test_segment("seg-a.1", 123456), g;
    struct catalog_node n = test_node("node_1", "DRAINING"), gn;
    struct catalog_event e = {.ts_ms = 42, .http_status = 429, .retry_after_ms = 1500};
    struct test_rows t = {0};

    s.replication = 3;
    s.avg_row_size = 4096;
    snprintf(s.state, sizeof(s.state), "INVALID");
    s.backoff_until_ms = 777;
    ck_assert_int_eq(catalog_put_segment(c, &s), 0);
    snprintf(n.last_reason, sizeof(n.last_reason), "operator");
    ck_assert_int_eq(catalog_put_node(c, &n), 0);
    ck_assert_int_eq(catalog_put_assignment(c, "seg-a.1", "node_1", "FAILED", 99), 0);
    snprintf(e.segment_id, sizeof(e.segment_id), "seg-a.1");
    snprintf(e.node_id, sizeof(e.node_id), "node_1");
    snprintf(e.kind, sizeof(e.kind), "refused");
    snprintf(e.reason, sizeof(e.reason), "MEM_PRESSURE");
    snprintf(e.detail, sizeof(e.detail), "rss 91%% of limit, \"quoted\"");
    ck_assert_int_eq(catalog_add_event(c, &e), 0);
    catalog_close(c);

    c = test_open();
    ck_assert_int_eq(catalog_get_segment(c, "seg-a.1", &g), 0);
    ck_assert_str_eq(g.id, "seg-a.1");
    ck_assert_str_eq(g.uri, "file:///data/seg-a.1.seg");
    ck_assert_uint_eq(g.row_count, 123456);
    ck_assert_uint_eq(g.avg_row_size, 4096);
    ck_assert_uint_eq(g.replication, 3);
    ck_assert_str_eq(g.state, "INVALID");
    ck_assert_int_eq(g.backoff_until_ms, 777);
    ck_assert_int_eq(g.created_ms, 1000);

    ck_assert_int_eq(catalog_get_node(c, "node_1", &gn), 0);
    ck_assert_str_eq(gn.addr, "127.0.0.1:7006");
    ck_assert_str_eq(gn.state, "DRAINING");
    ck_assert_str_eq(gn.last_reason, "operator");
    ck_assert_int_eq(gn.last_seen_ms, 5000);
    ck_assert_int_eq(gn.created_ms, 4000);

    ck_assert_int_eq(catalog_foreach_assignment(c, "seg-a.1", "node_1", test_asg_cb, &t), 0);
    ck_assert_int_eq(t.n, 1);
    ck_assert_str_eq(t.asg[0].state, "FAILED");
    ck_assert_int_eq(t.asg[0].updated_ms, 99);

    t.n = 0;
    ck_assert_int_eq(catalog_foreach_event(c, NULL, 0, 0, test_ev_cb, &t), 0);
    ck_assert_int_eq(t.n, 1);
    ck_assert_uint_eq(t.ev[0].id, 1);
    ck_assert_int_eq(t.ev[0].ts_ms, 42);
    ck_assert_str_eq(t.ev[0].segment_id, "seg-a.1");
    ck_assert_str_eq(t.ev[0].node_id, "node_1");
    ck_assert_str_eq(t.ev[0].kind, "refused");
    ck_assert_str_eq(t.ev[0].reason, "MEM_PRESSURE");
    ck_assert_int_eq(t.ev[0].http_status, 429);
    ck_assert_int_eq(t.ev[0].retry_after_ms, 1500);
    ck_assert_str_eq(t.ev[0].detail, "rss 91% of limit, \"quoted\"");
    ck_assert_uint_eq(t.ev[0].count, 1);
    catalog_close(c);
}
END_TEST

START_TEST(test_segment_idempotent)
{
    struct catalog *c = test_open();
    struct catalog_segment s = test_segment("s1", 100), g;

    ck_assert_int_eq(catalog_put_segment(c, &s), 0);
    ck_assert_int_eq(catalog_set_segment_state(c, "s1", "LOADED", 0), 0);

    /* A retried registration: same definition, stale state and timestamp. */
    s.created_ms = 2000;
    ck_assert_int_eq(catalog_put_segment(c, &s), 0);
    ck_assert_int_eq(catalog_get_segment(c, "s1", &g), 0);
    ck_assert_str_eq(g.state, "LOADED");
    ck_assert_int_eq(g.created_ms, 1000);

    s = test_segment("s1", 100);
    snprintf(s.uri, sizeof(s.uri), "file:///elsewhere.seg");
    ck_assert_int_eq(catalog_put_segment(c, &s), -EEXIST);
    ck_assert_msg(strstr(catalog_errmsg(c), "uri") != NULL, "%s", catalog_errmsg(c));

    s = test_segment("s1", 101);
    ck_assert_int_eq(catalog_put_segment(c, &s), -EEXIST);
    ck_assert_msg(strstr(catalog_errmsg(c), "row_count") != NULL, "%s", catalog_errmsg(c));

    s = test_segment("s1", 100);
    s.replication = 2;
    ck_assert_int_eq(catalog_put_segment(c, &s), -EEXIST);
    ck_assert_msg(strstr(catalog_errmsg(c), "replication") != NULL, "%s", catalog_errmsg(c));

    ck_assert_int_eq(catalog_get_segment(c, "s1", &g), 0);
    ck_assert_str_eq(g.uri, "file:///data/s1.seg");
    ck_assert_uint_eq(g.row_count, 100);
    ck_assert_uint_eq(g.replication, 1);
    ck_assert_uint_eq(test_count_segments(c, NULL), 1);

    /* The same inside a transaction: the conflict does not spoil the batch. */
    ck_assert_int_eq(catalog_begin(c), 0);
    test_put_segment(c, "s2", 5);
    s = test_segment("s1", 999);
    ck_assert_int_eq(catalog_put_segment(c, &s), -EEXIST);
    test_put_segment(c, "s3", 5);
    ck_assert_int_eq(catalog_commit(c), 0);
    ck_assert_uint_eq(test_count_segments(c, NULL), 3);
    ck_assert_uint_eq(test_count_segments(c, "PENDING"), 2);
    catalog_close(c);
}
END_TEST

START_TEST(test_assignment_unknown_refs)
{
    struct catalog *c = test_open();

    test_put_segment(c, "s1", 10);
    test_put_node(c, "n1");

    ck_assert_int_eq(catalog_put_assignment(c, "nope", "n1", "LOADING", 1), -ENOENT);
    ck_assert_msg(strstr(catalog_errmsg(c), "segment 'nope'") != NULL, "%s", catalog_errmsg(c));
    ck_assert_int_eq(catalog_put_assignment(c, "s1", "ghost", "LOADING", 1), -ENOENT);
    ck_assert_msg(strstr(catalog_errmsg(c), "node 'ghost'") != NULL, "%s", catalog_errmsg(c));
    ck_assert_int_eq(test_count_assignments(c, NULL, NULL), 0);

    /* Inside a transaction: the failure writes nothing, the good rows commit. */
    ck_assert_int_eq(catalog_begin(c), 0);
    ck_assert_int_eq(catalog_put_assignment(c, "s1", "n1", "LOADING", 1), 0);
    ck_assert_int_eq(catalog_put_assignment(c, "s1", "ghost", "LOADING", 1), -ENOENT);
    ck_assert_int_eq(catalog_commit(c), 0);
    ck_assert_int_eq(test_count_assignments(c, NULL, NULL), 1);
    ck_assert_int_eq(test_count_assignments(c, NULL, "ghost"), 0);

    /* Upsert moves the state on; delete removes it once. */
    ck_assert_int_eq(catalog_put_assignment(c, "s1", "n1", "LOADED", 7), 0);
    {
        struct test_rows t = {0};
        ck_assert_int_eq(catalog_foreach_assignment(c, "s1", NULL, test_asg_cb, &t), 0);
        ck_assert_int_eq(t.n, 1);
        ck_assert_str_eq(t.asg[0].state, "LOADED");
        ck_assert_int_eq(t.asg[0].updated_ms, 7);
    }
    ck_assert_int_eq(catalog_delete_assignment(c, "s1", "n1"), 0);
    ck_assert_int_eq(catalog_delete_assignment(c, "s1", "n1"), -ENOENT);
    ck_assert_int_eq(test_count_assignments(c, NULL, NULL), 0);
    catalog_close(c);
}
END_TEST

START_TEST(test_invalid_input)
{
    struct catalog *c = test_open();
    struct catalog_segment s, g;
    struct catalog_node n;
    struct catalog_event e = {.ts_ms = 1};
    char long_id[WIRE_ID_MAX + 2];
    uint64_t cnt = 12345;

    test_put_segment(c, "s1", 10);
    test_put_node(c, "n1");
    ck_assert_int_eq(catalog_put_assignment(c, "s1", "n1", "LOADING", 1), 0);

    /* States. */
    ck_assert_int_eq(catalog_set_segment_state(c, "s1", "LOADING", 0), -EINVAL);
    ck_assert_msg(strstr(catalog_errmsg(c), "unknown state 'LOADING'") != NULL, "%s",
                  catalog_errmsg(c));
    ck_assert_int_eq(catalog_set_segment_state(c, "s1", "loaded", 0), -EINVAL);
    ck_assert_int_eq(catalog_set_segment_state(c, "s1", NULL, 0), -EINVAL);
    ck_assert_int_eq(catalog_set_segment_state(c, "s1", "LOADED", -1), -EINVAL);
    ck_assert_int_eq(catalog_set_node_state(c, "n1", "PENDING", NULL), -EINVAL);
    ck_assert_int_eq(catalog_set_node_state(c, "n1", "DOWN", "bad reason"), -EINVAL);
    ck_assert_int_eq(catalog_put_assignment(c, "s1", "n1", "UP", 2), -EINVAL);
    ck_assert_int_eq(catalog_count_segments(c, "DOWN", &cnt), -EINVAL);
    ck_assert_uint_eq(cnt, 12345); /* not written on failure */
    ck_assert_int_eq(catalog_foreach_segment(c, "", test_seg_cb, NULL), -EINVAL);

    /* Ids. */
    memset(long_id, 'a', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    ck_assert_int_eq(catalog_get_segment(c, "", &g), -EINVAL);
    ck_assert_int_eq(catalog_get_segment(c, ".hidden", &g), -EINVAL);
    ck_assert_int_eq(catalog_get_segment(c, "a/b", &g), -EINVAL);
    ck_assert_msg(strstr(catalog_errmsg(c), "0x2f") != NULL, "%s", catalog_errmsg(c));
    ck_assert_int_eq(catalog_get_segment(c, long_id, &g), -EINVAL);
    ck_assert_int_eq(catalog_get_segment(c, NULL, &g), -EINVAL);
    long_id[WIRE_ID_MAX] = '\0'; /* exactly the limit is fine */
    s = test_segment(long_id, 1);
    ck_assert_int_eq(catalog_put_segment(c, &s), 0);

    /* Segment fields. */
    s = test_segment("s2", 0);
    ck_assert_int_eq(catalog_put_segment(c, &s), -EINVAL);
    s = test_segment("s2", 1);
    s.replication = 17;
    ck_assert_int_eq(catalog_put_segment(c, &s), -EINVAL);
    s = test_segment("s2", 1);
    s.replication = 0;
    ck_assert_int_eq(catalog_put_segment(c, &s), -EINVAL);
    s = test_segment("s2", 1);
    s.avg_row_size = WIRE_ROW_SIZE_MAX + 1;
    ck_assert_int_eq(catalog_put_segment(c, &s), -EINVAL);
    s = test_segment("s2", 1);
    s.uri[0] = '\0';
    ck_assert_int_eq(catalog_put_segment(c, &s), -EINVAL);
    s = test_segment("s2", 1);
    s.uri[8] = '\n';
    ck_assert_int_eq(catalog_put_segment(c, &s), -EINVAL);
    s = test_segment("s2", 1);
    snprintf(s.state, sizeof(s.state), "LOADING");
    ck_assert_int_eq(catalog_put_segment(c, &s), -EINVAL);
    s = test_segment("s2", 1);
    memset(s.id, 'x', sizeof(s.id)); /* not terminated */
    ck_assert_int_eq(catalog_put_segment(c, &s), -EINVAL);

    /* Node fields. */
    n = test_node("n2", "UP");
    snprintf(n.addr, sizeof(n.addr), "a b:1");
    ck_assert_int_eq(catalog_put_node(c, &n), -EINVAL);
    n = test_node("n2", "LOADED");
    ck_assert_int_eq(catalog_put_node(c, &n), -EINVAL);

    /* Event fields. */
    ck_assert_int_eq(catalog_add_event(c, &e), -EINVAL); /* no kind */
    snprintf(e.kind, sizeof(e.kind), "Refused");
    ck_assert_int_eq(catalog_add_event(c, &e), -EINVAL);
    snprintf(e.kind, sizeof(e.kind), "refused");
    e.http_status = 42;
    ck_assert_int_eq(catalog_add_event(c, &e), -EINVAL);
    e.http_status = 503;
    snprintf(e.node_id, sizeof(e.node_id), "-n");
    ck_assert_int_eq(catalog_add_event(c, &e), -EINVAL);
    e.node_id[0] = '\0';
    e.retry_after_ms = -5;
    ck_assert_int_eq(catalog_add_event(c, &e), -EINVAL);

    /* Nothing changed. */
    ck_assert_int_eq(catalog_get_segment(c, "s1", &g), 0);
    ck_assert_str_eq(g.state, "PENDING");
    ck_assert_int_eq(catalog_get_node(c, "n1", &n), 0);
    ck_assert_str_eq(n.state, "UP");
    ck_assert_uint_eq(test_count_segments(c, NULL), 2);
    ck_assert_int_eq(catalog_get_node(c, "n2", &n), -ENOENT);
    ck_assert_int_eq(test_count_events(c), 0);
    {
        struct test_rows t = {0};
        ck_assert_int_eq(catalog_foreach_assignment(c, NULL, NULL, test_asg_cb, &t), 0);
        ck_assert_int_eq(t.n, 1);
        ck_assert_str_eq(t.asg[0].state, "LOADING");
    }
    /* Not found is not invalid. */
    ck_assert_int_eq(catalog_set_segment_state(c, "zz", "LOADED", 0), -ENOENT);
    ck_assert_int_eq(catalog_set_node_state(c, "zz", "DOWN", NULL), -ENOENT);
    ck_assert_int_eq(catalog_get_node(c, "zz", &n), -ENOENT);
    catalog_close(c);
}
END_TEST

/* The schema refuses on its own what the C layer refuses first. */
START_TEST(test_schema_constraints)
{
    struct catalog *c = test_open();
    sqlite3 *db;
    const char *bad[] = {
        "INSERT INTO segments (id, uri, row_count, avg_row_size, state)"
        " VALUES ('x', 'u', 1, 1, 'BOGUS')",
        "INSERT INTO segments (id, uri, row_count, avg_row_size, state)"
        " VALUES ('x', 'u', 0, 1, 'PENDING')",
        "INSERT INTO segments (id, uri, row_count, avg_row_size, state, replication)"
        " VALUES ('x', 'u', 1, 1, 'PENDING', 17)",
        "INSERT INTO segments (id, uri, row_count, avg_row_size, state)"
        " VALUES ('x', 'u', 'many', 1, 'PENDING')", /* STRICT */
        "INSERT INTO nodes (id, addr, state) VALUES ('n', 'a', 'LOADED')",
        "INSERT INTO assignments VALUES ('nope', 'nope', 'LOADING', 0)",
        "INSERT INTO assignments VALUES (NULL, NULL, 'LOADING', 0)",
    };

    catalog_close(c);
    db = test_raw_open();
    test_raw_exec(db, "PRAGMA foreign_keys = ON");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(sqlite3_exec(db, bad[i], NULL, NULL, NULL) != SQLITE_OK, "accepted: %s",
                      bad[i]);
    ck_assert_int_eq(test_raw_int(db, "SELECT (SELECT count(*) FROM segments) +"
                                      " (SELECT count(*) FROM nodes) +"
                                      " (SELECT count(*) FROM assignments)"),
                     0);
    sqlite3_close(db);
}
END_TEST

START_TEST(test_cascade_delete)
{
    struct catalog *c = test_open();
    const char *segs[] = {"s1", "s2"}, *nodes[] = {"n1", "n2"};
    struct test_rows t = {0};

    for (int i = 0; i < 2; i++) {
        test_put_segment(c, segs[i], 10);
        test_put_node(c, nodes[i]);
    }
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++)
            ck_assert_int_eq(catalog_put_assignment(c, segs[i], nodes[j], "LOADED", 1), 0);
    test_add_event(c, "s1", "loaded", 5);
    ck_assert_int_eq(test_count_assignments(c, NULL, NULL), 4);

    ck_assert_int_eq(catalog_delete_segment(c, "s1"), 0);
    ck_assert_int_eq(test_count_assignments(c, NULL, NULL), 2);
    ck_assert_int_eq(test_count_assignments(c, "s1", NULL), 0);
    ck_assert_int_eq(catalog_delete_node(c, "n2"), 0);
    ck_assert_int_eq(catalog_foreach_assignment(c, NULL, NULL, test_asg_cb, &t), 0);
    ck_assert_int_eq(t.n, 1);
    ck_assert_str_eq(t.asg[0].segment_id, "s2");
    ck_assert_str_eq(t.asg[0].node_id, "n1");

    ck_assert_int_eq(catalog_delete_segment(c, "s1"), -ENOENT);
    ck_assert_int_eq(catalog_delete_node(c, "n2"), -ENOENT);
    ck_assert_int_eq(test_count_events(c), 1); /* history stays */
    ck_assert_int_eq(catalog_integrity_check(c, NULL, 0), 0);
    catalog_close(c);
}
END_TEST

START_TEST(test_event_retention)
{
    struct catalog *c = test_open_keep(5);
    struct test_rows t = {0};

    /* Trims every min(1000, keep) = 5 appends. */
    for (int i = 1; i <= 20; i++)
        test_add_event(c, "s1", "refused", i);
    ck_assert_int_eq(catalog_foreach_event(c, NULL, 0, 0, test_ev_cb, &t), 0);
    ck_assert_int_eq(t.n, 5);
    for (int i = 0; i < 5; i++) {
        ck_assert_uint_eq(t.ev[i].id, 16 + i);
        ck_assert_int_eq(t.ev[i].ts_ms, 16 + i);
    }

    for (int i = 21; i <= 23; i++)
        test_add_event(c, "s1", "refused", i);
    ck_assert_int_eq(test_count_events(c), 8); /* over the bound until the next trim */
    ck_assert_int_eq(catalog_trim_events(c), 0);
    t.n = 0;
    ck_assert_int_eq(catalog_foreach_event(c, NULL, 0, 0, test_ev_cb, &t), 0);
    ck_assert_int_eq(t.n, 5);
    ck_assert_uint_eq(t.ev[0].id, 19);
    ck_assert_uint_eq(t.ev[4].id, 23);
    catalog_close(c);

    /* Reopening trims, and ids continue after the trimmed ones (AUTOINCREMENT). */
    c = test_open_keep(2);
    ck_assert_int_eq(test_count_events(c), 2);
    test_add_event(c, "s1", "loaded", 24);
    t.n = 0;
    ck_assert_int_eq(catalog_foreach_event(c, NULL, 23, 0, test_ev_cb, &t), 0);
    ck_assert_int_eq(t.n, 1);
    ck_assert_uint_eq(t.ev[0].id, 24);
    catalog_close(c);
}
END_TEST


/* Issue 14 defect 4: the newest page first, limited in SQL, paged backwards by id. */
START_TEST(test_event_before)
{
    struct catalog *c = test_open();
    struct test_rows t = {0};

    for (int i = 1; i <= 10; i++)
        test_add_event(c, i % 2 ? "odd" : "even", "accepted", 100 + i);
    /* The newest three, newest first. */
    ck_assert_int_eq(catalog_foreach_event_before(c, NULL, 0, 3, test_ev_cb, &t), 0);
    ck_assert_int_eq(t.n, 3);
    ck_assert_uint_eq(t.ev[0].id, 10);
    ck_assert_uint_eq(t.ev[1].id, 9);
    ck_assert_uint_eq(t.ev[2].id, 8);
    /* The next page back starts below the oldest of this one. */
    t.n = 0;
    ck_assert_int_eq(catalog_foreach_event_before(c, NULL, 8, 3, test_ev_cb, &t), 0);
    ck_assert_int_eq(t.n, 3);
    ck_assert_uint_eq(t.ev[0].id, 7);
    ck_assert_uint_eq(t.ev[2].id, 5);
    t.n = 0;
    ck_assert_int_eq(catalog_foreach_event_before(c, NULL, 3, 5, test_ev_cb, &t), 0);
    ck_assert_int_eq(t.n, 2);
    ck_assert_uint_eq(t.ev[1].id, 1);
    /* One segment's, newest first. */
    t.n = 0;
    ck_assert_int_eq(catalog_foreach_event_before(c, "even", 10, 2, test_ev_cb, &t), 0);
    ck_assert_int_eq(t.n, 2);
    ck_assert_str_eq(t.ev[0].segment_id, "even");
    ck_assert_uint_eq(t.ev[0].id, 8);
    ck_assert_uint_eq(t.ev[1].id, 6);
    /* A limit is required; a bad id is refused. */
    ck_assert_int_eq(catalog_foreach_event_before(c, NULL, 0, 0, test_ev_cb, &t), -EINVAL);
    ck_assert_int_eq(catalog_foreach_event_before(c, "../x", 0, 1, test_ev_cb, &t), -EINVAL);
    catalog_close(c);
}
END_TEST

START_TEST(test_event_query)
{
    struct catalog *c = test_open();
    struct test_rows t = {0};

    for (int i = 1; i <= 10; i++)
        test_add_event(c, i % 2 ? "odd" : "even", "accepted", 100 + i);
    /* Pagination: after id 3, two at a time. */
    ck_assert_int_eq(catalog_foreach_event(c, NULL, 3, 2, test_ev_cb, &t), 0);
    ck_assert_int_eq(t.n, 2);
    ck_assert_uint_eq(t.ev[0].id, 4);
    ck_assert_uint_eq(t.ev[1].id, 5);
    /* One segment's events, in order. */
    t.n = 0;
    ck_assert_int_eq(catalog_foreach_event(c, "even", 0, 0, test_ev_cb, &t), 0);
    ck_assert_int_eq(t.n, 5);
    for (int i = 0; i < 5; i++) {
        ck_assert_str_eq(t.ev[i].segment_id, "even");
        ck_assert_uint_eq(t.ev[i].id, 2 + 2 * i);
    }
    t.n = 0;
    ck_assert_int_eq(catalog_foreach_event(c, "even", 6, 1, test_ev_cb, &t), 0);
    ck_assert_int_eq(t.n, 1);
    ck_assert_uint_eq(t.ev[0].id, 8);
    t.n = 0;
    ck_assert_int_eq(catalog_foreach_event(c, "none", 0, 0, test_ev_cb, &t), 0);
    ck_assert_int_eq(t.n, 0);
    catalog_close(c);
}
END_TEST

START_TEST(test_node_state)
{
    struct catalog *c = test_open();
    struct catalog_node n = test_node("n1", "UP"), g;
    struct test_rows t = {0};

    ck_assert_int_eq(catalog_put_node(c, &n), 0);
    ck_assert_int_eq(catalog_set_node_state(c, "n1", "SUSPECT", "operator"), 0);
    ck_assert_int_eq(catalog_get_node(c, "n1", &g), 0);
    ck_assert_str_eq(g.state, "SUSPECT");
    ck_assert_str_eq(g.drained_by, "operator");
    ck_assert_int_eq(g.last_seen_ms, 5000); /* only the node's own reports move it */
    ck_assert_int_eq(catalog_set_node_state(c, "n1", "DOWN", NULL), 0);
    ck_assert_int_eq(catalog_get_node(c, "n1", &g), 0);
    ck_assert_str_eq(g.state, "DOWN");
    ck_assert_str_eq(g.drained_by, "");
    /* The coordinator's setter writes the one event of a transition, not the catalog. */
    ck_assert_int_eq(catalog_foreach_event(c, NULL, 0, 0, test_ev_cb, &t), 0);
    ck_assert_int_eq(t.n, 0);

    /* Re-registration upserts but keeps created_ms. */
    n = test_node("n1", "UP");
    snprintf(n.addr, sizeof(n.addr), "10.1.1.1:9");
    n.created_ms = 777777;
    n.last_seen_ms = 12000;
    ck_assert_int_eq(catalog_put_node(c, &n), 0);
    ck_assert_int_eq(catalog_get_node(c, "n1", &g), 0);
    ck_assert_str_eq(g.addr, "10.1.1.1:9");
    ck_assert_str_eq(g.state, "UP");
    ck_assert_int_eq(g.last_seen_ms, 12000);
    ck_assert_int_eq(g.created_ms, 4000);

    test_put_node(c, "a0");
    t.n = 0;
    ck_assert_int_eq(catalog_foreach_node(c, test_node_cb, &t), 0);
    ck_assert_int_eq(t.n, 2);
    ck_assert_str_eq(t.node[0].id, "a0");
    ck_assert_str_eq(t.node[1].id, "n1");
    catalog_close(c);
}
END_TEST

struct test_reentry {
    struct catalog *c;
    int seen;
    int inner;
};

static int test_reentry_cb(const struct catalog_segment *s, void *arg)
{
    struct test_reentry *t = arg;
    struct catalog_segment g;

    t->inner = catalog_get_segment(t->c, s->id, &g);
    return ++t->seen == 2 ? 7 : 0;
}

START_TEST(test_foreach)
{
    struct catalog *c = test_open();
    struct test_reentry re = {.c = c};
    struct test_rows t = {0};

    test_put_segment(c, "c", 1);
    test_put_segment(c, "a", 1);
    test_put_segment(c, "b", 1);
    ck_assert_int_eq(catalog_set_segment_state(c, "b", "LOADED", 0), 0);

    ck_assert_int_eq(catalog_foreach_segment(c, NULL, test_seg_cb, &t), 0);
    ck_assert_int_eq(t.n, 3);
    ck_assert_str_eq(t.seg_ids[0], "a");
    ck_assert_str_eq(t.seg_ids[1], "b");
    ck_assert_str_eq(t.seg_ids[2], "c");
    t.n = 0;
    ck_assert_int_eq(catalog_foreach_segment(c, "PENDING", test_seg_cb, &t), 0);
    ck_assert_int_eq(t.n, 2);
    ck_assert_str_eq(t.seg_ids[1], "c");

    /* The callback's value stops the walk; calls from inside are refused. */
    ck_assert_int_eq(catalog_foreach_segment(c, NULL, test_reentry_cb, &re), 7);
    ck_assert_int_eq(re.seen, 2);
    ck_assert_int_eq(re.inner, -EBUSY);
    /* And the catalog works again afterwards. */
    ck_assert_uint_eq(test_count_segments(c, "LOADED"), 1);
    catalog_close(c);
}
END_TEST

START_TEST(test_batch_10000)
{
    struct catalog *c = test_open();
    char id[32];
    double t0, t1, t2;
    int r;

    t0 = test_now_s();
    ck_assert_int_eq(catalog_begin(c), 0);
    for (int i = 0; i < 10000; i++) {
        struct catalog_segment s;

        snprintf(id, sizeof(id), "batch-%05d", i);
        s = test_segment(id, (uint64_t)i + 1);
        r = catalog_put_segment(c, &s);
        ck_assert_msg(r == 0, "put %s: %d %s", id, r, catalog_errmsg(c));
    }
    ck_assert_int_eq(catalog_commit(c), 0);
    t1 = test_now_s();

    /* For comparison: one transaction (and one fsync) per segment. */
    for (int i = 0; i < 100; i++) {
        snprintf(id, sizeof(id), "single-%03d", i);
        test_put_segment(c, id, 1);
    }
    t2 = test_now_s();
    printf("catalog: 10000 segment inserts in one transaction: %.1f ms (%.1f us each);"
           " 100 autocommit inserts: %.1f ms (%.2f ms each)\n",
           (t1 - t0) * 1e3, (t1 - t0) * 1e6 / 10000, (t2 - t1) * 1e3, (t2 - t1) * 1e3 / 100);
    fflush(stdout);

    ck_assert_uint_eq(test_count_segments(c, NULL), 10100);
    catalog_close(c);
    c = test_open();
    ck_assert_uint_eq(test_count_segments(c, "PENDING"), 10100);
    {
        struct catalog_segment g;
        ck_assert_int_eq(catalog_get_segment(c, "batch-09999", &g), 0);
        ck_assert_uint_eq(g.row_count, 10000);
    }
    catalog_close(c);
}
END_TEST

START_TEST(test_rollback)
{
    struct catalog *c = test_open();
    struct catalog_segment g;
    struct catalog_node n;

    ck_assert_int_eq(catalog_commit(c), -EINVAL);
    ck_assert_int_eq(catalog_begin(c), 0);
    ck_assert_int_eq(catalog_begin(c), -EALREADY);
    test_put_segment(c, "s1", 10);
    test_put_node(c, "n1");
    ck_assert_int_eq(catalog_put_assignment(c, "s1", "n1", "LOADING", 1), 0);
    test_add_event(c, "s1", "accepted", 1);
    ck_assert_uint_eq(test_count_segments(c, NULL), 1); /* visible inside */
    catalog_rollback(c);
    catalog_rollback(c); /* no transaction: nothing happens */

    ck_assert_uint_eq(test_count_segments(c, NULL), 0);
    ck_assert_int_eq(catalog_get_segment(c, "s1", &g), -ENOENT);
    ck_assert_int_eq(catalog_get_node(c, "n1", &n), -ENOENT);
    ck_assert_int_eq(test_count_assignments(c, NULL, NULL), 0);
    ck_assert_int_eq(test_count_events(c), 0);

    /* Closing with a transaction open loses it too. */
    ck_assert_int_eq(catalog_begin(c), 0);
    test_put_segment(c, "s2", 10);
    catalog_close(c);
    c = test_open();
    ck_assert_uint_eq(test_count_segments(c, NULL), 0);
    /* And the catalog still works. */
    test_put_segment(c, "s3", 10);
    ck_assert_uint_eq(test_count_segments(c, NULL), 1);
    catalog_close(c);
}
END_TEST

START_TEST(test_integrity_check)
{
    struct catalog *c = test_open();
    char err[256] = "untouched";

    for (int i = 0; i < 50; i++) {
        char id[16];
        snprintf(id, sizeof(id), "s%d", i);
        test_put_segment(c, id, 1);
    }
    test_put_node(c, "n1");
    ck_assert_int_eq(catalog_put_assignment(c, "s1", "n1", "LOADED", 1), 0);
    ck_assert_int_eq(catalog_integrity_check(c, err, sizeof(err)), 0);
    ck_assert_str_eq(err, "untouched");
    catalog_close(c);

    /* A dangling reference written behind the catalog's back is found. */
    {
        sqlite3 *db = test_raw_open();
        test_raw_exec(db, "PRAGMA foreign_keys = OFF;"
                          "INSERT INTO assignments VALUES ('s2', 'ghost', 'LOADED', 1)");
        sqlite3_close(db);
    }
    c = test_open();
    ck_assert_int_eq(catalog_integrity_check(c, err, sizeof(err)), -EBADMSG);
    ck_assert_msg(strstr(err, "assignments") != NULL && strstr(err, "nodes") != NULL, "%s", err);
    catalog_close(c);
}
END_TEST

/*
 * A call of several statements is one unit. With events_keep 1 every
 * catalog_add_event inserts and then trims; a trigger (fault injection) makes
 * the trim's delete fail after the insert succeeded: the insert must be
 * undone, alone or inside the caller's transaction.
 */
START_TEST(test_call_atomic)
{
    struct catalog *c = test_open_keep(1);
    struct catalog_event e = {.ts_ms = 10};
    sqlite3 *db;
    int r;

    snprintf(e.kind, sizeof(e.kind), "failed");
    ck_assert_int_eq(catalog_add_event(c, &e), 0);
    db = test_raw_open();
    test_raw_exec(db, "CREATE TRIGGER inject BEFORE DELETE ON events"
                      " BEGIN SELECT RAISE(ABORT, 'injected'); END");
    sqlite3_close(db);

    r = catalog_add_event(c, &e);
    ck_assert_int_eq(r, -EINVAL);
    ck_assert_msg(strstr(catalog_errmsg(c), "injected") != NULL, "%s", catalog_errmsg(c));
    ck_assert_int_eq(test_count_events(c), 1);

    ck_assert_int_eq(catalog_begin(c), 0);
    test_put_segment(c, "s1", 1);
    ck_assert_int_eq(catalog_add_event(c, &e), -EINVAL);
    ck_assert_int_eq(test_count_events(c), 1);
    test_put_segment(c, "s2", 1);
    ck_assert_int_eq(catalog_commit(c), 0);
    ck_assert_uint_eq(test_count_segments(c, NULL), 2);
    ck_assert_int_eq(test_count_events(c), 1);
    catalog_close(c);
}
END_TEST

/*
 * The child commits, starts one more transaction that it never commits, and
 * dies by SIGKILL without closing anything: no checkpoint, no cleanup.
 */
START_TEST(test_durability_kill)
{
    struct catalog *c;
    struct catalog_segment g;
    struct catalog_node n;
    char wal[600];
    struct stat st;
    int status = 0;
    pid_t pid;

    fflush(NULL);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct catalog *cc = NULL;

        if (catalog_open(test_db, &cc, NULL, 0) != 0 || catalog_begin(cc) != 0)
            _exit(10);
        for (int i = 0; i < 500; i++) {
            struct catalog_segment s;
            char id[16];

            snprintf(id, sizeof(id), "k%d", i);
            s = test_segment(id, 1);
            if (catalog_put_segment(cc, &s) != 0)
                _exit(11);
        }
        if (catalog_commit(cc) != 0)
            _exit(12);
        {
            struct catalog_node nn = test_node("n1", "UP");
            if (catalog_put_node(cc, &nn) != 0 ||
                catalog_put_assignment(cc, "k7", "n1", "LOADING", 3) != 0)
                _exit(13);
        }
        if (catalog_begin(cc) != 0)
            _exit(14);
        {
            struct catalog_segment s = test_segment("lost", 1);
            if (catalog_put_segment(cc, &s) != 0)
                _exit(15);
        }
        kill(getpid(), SIGKILL);
        _exit(16);
    }
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "child status 0x%x", status);

    /* The committed pages are still only in the WAL: recovery is exercised. */
    snprintf(wal, sizeof(wal), "%s-wal", test_db);
    ck_assert_int_eq(stat(wal, &st), 0);
    ck_assert_int_gt(st.st_size, 0);

    c = test_open();
    ck_assert_uint_eq(test_count_segments(c, NULL), 500);
    ck_assert_int_eq(catalog_get_segment(c, "k499", &g), 0);
    ck_assert_int_eq(catalog_get_segment(c, "lost", &g), -ENOENT);
    ck_assert_int_eq(catalog_get_node(c, "n1", &n), 0);
    ck_assert_int_eq(test_count_assignments(c, "k7", "n1"), 1);
    ck_assert_int_eq(catalog_integrity_check(c, NULL, 0), 0);
    catalog_close(c);
}
END_TEST
/* The catalog holds only UTF-8; a row written before that rule is reported, naming it. */
START_TEST(test_utf8)
{
    struct catalog *c = test_open();
    struct catalog_segment seg = test_segment("u1", 10);
    struct catalog_event ev = {.ts_ms = 7};
    struct test_rows t = {0};
    sqlite3 *db;

    snprintf(seg.uri, sizeof(seg.uri), "file:///data/\xff\xfe.seg");
    ck_assert_int_eq(catalog_put_segment(c, &seg), -EINVAL);
    ck_assert_str_eq(catalog_errmsg(c),
                     "segment uri: not valid UTF-8 (byte 0xff at offset 13)");
    ck_assert_uint_eq(test_count_segments(c, NULL), 0);

    /* An event's detail is free text: escaped, not refused (cut inside a character too). */
    snprintf(ev.segment_id, sizeof(ev.segment_id), "u1");
    snprintf(ev.kind, sizeof(ev.kind), "refused");
    snprintf(ev.detail, sizeof(ev.detail), "peer said \xff and \xc3");
    ck_assert_int_eq(catalog_add_event(c, &ev), 0);
    ck_assert_int_eq(catalog_foreach_event(c, NULL, 0, 0, test_ev_cb, &t), 0);
    ck_assert_int_eq(t.n, 1);
    ck_assert_str_eq(t.ev[0].detail, "peer said \\xFF and \\xC3");

    /* A row an older build stored: foreach fails, naming the segment and the column. */
    test_put_segment(c, "good", 10);
    test_put_segment(c, "old", 10);
    catalog_close(c);
    db = test_raw_open();
    test_raw_exec(db, "UPDATE segments SET uri = CAST(X'66696C653A2F2F2F78FF2E736567' AS TEXT)"
                      " WHERE id = 'old'");
    sqlite3_close(db);
    c = test_open();
    t.n = 0;
    ck_assert_int_eq(catalog_foreach_segment(c, NULL, test_seg_cb, &t), -EILSEQ);
    ck_assert_str_eq(catalog_errmsg(c),
                     "segment 'old': stored uri is not valid UTF-8 (byte 0xff at offset 9)");
    /* And the same for its id. */
    catalog_close(c);
    db = test_raw_open();
    test_raw_exec(db, "UPDATE segments SET uri = 'file:///x.seg', id = CAST(X'6F6CFF' AS TEXT)"
                      " WHERE id = 'old'");
    sqlite3_close(db);
    c = test_open();
    ck_assert_int_eq(catalog_foreach_segment(c, NULL, test_seg_cb, &t), -EILSEQ);
    ck_assert_str_eq(catalog_errmsg(c),
                     "segment 'ol\\xFF': stored id is not valid UTF-8 (byte 0xff at offset 2)");
    catalog_close(c);
}
END_TEST


/* ---- PostgreSQL only ---- */

/* Runs SQL on test_db through a connection of its own. */
static void test_pg_exec(const char *sql)
{
    char why[512] = "";

    ck_assert_msg(harness_pg_exec(test_db, sql, why, sizeof(why)) == 0, "%s", why);
}

START_TEST(test_pg_fresh_open)
{
    struct catalog *c = test_open();
    struct catalog_settings st;
    struct test_rows t = {0};

    ck_assert_int_eq(catalog_schema_version(c), CATALOG_SCHEMA_VERSION);
    ck_assert_int_eq(catalog_settings(c, &st), 0);
    ck_assert_str_eq(st.journal_mode, "wal");
    ck_assert_int_eq(st.synchronous, 2);
    ck_assert_int_eq(st.foreign_keys, 1);
    ck_assert_int_eq(st.busy_timeout_ms, 5000);
    /* What the server holds, seen by another connection. */
    ck_assert_int_eq(harness_pg_int(test_db, "SELECT user_version FROM sluice_catalog"),
                     CATALOG_SCHEMA_VERSION);
    ck_assert_int_eq(harness_pg_int(test_db, "SELECT application_id FROM sluice_catalog"),
                     0x534C4345);
    ck_assert_int_eq(harness_pg_int(test_db, "SELECT count(*) FROM pg_tables WHERE tablename IN"
                                             " ('nodes', 'segments', 'assignments', 'events')"),
                     4);
    /* 64-bit columns: a digest with the top bit set and times past 2^31 survive. */
    {
        struct catalog_segment sg = test_segment("big", 1), g;

        sg.digest = 0xfedcba9876543210ull;
        sg.created_ms = 1700000000000;
        ck_assert_int_eq(catalog_put_segment(c, &sg), 0);
        ck_assert_int_eq(catalog_get_segment(c, "big", &g), 0);
        ck_assert_uint_eq(g.digest, 0xfedcba9876543210ull);
        ck_assert_int_eq(g.created_ms, 1700000000000);
    }
    /* Ids order by bytes, as in SQLite (the columns use collation "C"). */
    test_put_segment(c, "b", 1);
    test_put_segment(c, "B", 1);
    test_put_segment(c, "a", 1);
    test_put_segment(c, "_", 1);
    ck_assert_int_eq(catalog_foreach_segment(c, NULL, test_seg_cb, &t), 0);
    ck_assert_int_eq(t.n, 5);
    ck_assert_str_eq(t.seg_ids[0], "B");
    ck_assert_str_eq(t.seg_ids[1], "_");
    ck_assert_str_eq(t.seg_ids[2], "a");
    ck_assert_str_eq(t.seg_ids[3], "b");
    ck_assert_str_eq(t.seg_ids[4], "big");
    catalog_close(c);
}
END_TEST

START_TEST(test_pg_open_errors)
{
    struct catalog *c = NULL;
    char err[512] = "";
    const char *uri = "postgresql://sluice:s3cret@127.0.0.1:1/nowhere";

    ck_assert_int_lt(catalog_open(uri, &c, err, sizeof(err)), 0);
    ck_assert_ptr_null(c);
    ck_assert_msg(strstr(err, "127.0.0.1:1/nowhere") != NULL, "names the server: %s", err);
    ck_assert_msg(strstr(err, "s3cret") == NULL, "the password is not shown: %s", err);
    ck_assert_msg(strstr(err, "sluice:***@") != NULL, "%s", err);
}
END_TEST

START_TEST(test_pg_foreign_database)
{
    struct catalog *c = NULL;
    char err[512] = "";

    test_pg_exec("CREATE TABLE nodes (x INTEGER)");
    ck_assert_int_eq(catalog_open(test_db, &c, err, sizeof(err)), -EBADMSG);
    ck_assert_ptr_null(c);
    ck_assert_msg(strstr(err, "not a Sluice catalog") != NULL, "%s", err);
    ck_assert_int_eq(harness_pg_int(test_db, "SELECT count(*) FROM pg_tables"
                                             " WHERE schemaname = current_schema()"),
                     1);
}
END_TEST

START_TEST(test_pg_future_version)
{
    struct catalog *c = test_open();
    char err[512] = "";

    test_put_segment(c, "s1", 1);
    catalog_close(c);
    test_pg_exec("UPDATE sluice_catalog SET user_version = 99");
    c = NULL;
    ck_assert_int_eq(catalog_open(test_db, &c, err, sizeof(err)), -EPROTONOSUPPORT);
    ck_assert_ptr_null(c);
    ck_assert_msg(strstr(err, "newer") != NULL, "%s", err);
    ck_assert_int_eq(harness_pg_int(test_db, "SELECT user_version FROM sluice_catalog"), 99);
    ck_assert_int_eq(harness_pg_int(test_db, "SELECT count(*) FROM segments"), 1);
}
END_TEST

/* Every migration runs on PostgreSQL too: rows as version 1 wrote them come out at v7. */
START_TEST(test_pg_migrate_from_v1)
{
    struct catalog *c;
    struct catalog_segment g;
    struct catalog_node n;
    struct test_rows t = {0};
    char err[512] = "";
    int r;

    r = catalog_create_at_version(test_db, 1, err, sizeof(err));
    ck_assert_msg(r == 0, "create v1: %d %s", r, err);
    ck_assert_int_eq(harness_pg_int(test_db, "SELECT user_version FROM sluice_catalog"), 1);
    ck_assert_int_eq(harness_pg_int(test_db, "SELECT count(*) FROM information_schema.columns"
                                             " WHERE table_name = 'segments'"
                                             " AND column_name = 'replication'"),
                     0);
    test_pg_exec("INSERT INTO nodes VALUES ('n1', '10.0.0.1:7070', 'DRAINING', 111,"
                 "  'ADMIN_DRAIN', 100);"
                 TEST_V1_ROWS);
    ck_assert_int_eq(catalog_create_at_version(test_db, 1, err, sizeof(err)), 0);

    c = test_open();
    ck_assert_int_eq(catalog_schema_version(c), CATALOG_SCHEMA_VERSION);
    ck_assert_int_eq(catalog_get_segment(c, "s2", &g), 0);
    ck_assert_uint_eq(g.row_count, 77);
    ck_assert_uint_eq(g.replication, 1);       /* v2 */
    ck_assert_uint_eq(g.digest, 0);            /* v4 */
    ck_assert_str_eq(g.table, "default");      /* v6 */
    ck_assert_uint_eq(g.mem_limit_bytes, 0);   /* v7 */
    ck_assert_int_eq(g.backoff_until_ms, 9999);
    ck_assert_int_eq(catalog_get_node(c, "n1", &n), 0);
    ck_assert_str_eq(n.drained_by, "operator"); /* v3 moved the tag out of last_reason */
    ck_assert_str_eq(n.last_reason, "");
    ck_assert_int_eq(catalog_foreach_event(c, "s1", 0, 0, test_ev_cb, &t), 0);
    ck_assert_int_eq(t.n, 1);
    ck_assert_uint_eq(t.ev[0].count, 1); /* v5 */
    ck_assert_int_eq(catalog_integrity_check(c, err, sizeof(err)), 0);
    /* Events added after the migration continue the ids. */
    test_add_event(c, "s1", "loaded", 500);
    t.n = 0;
    ck_assert_int_eq(catalog_foreach_event(c, NULL, 0, 0, test_ev_cb, &t), 0);
    ck_assert_int_eq(t.n, 2);
    ck_assert_uint_gt(t.ev[1].id, t.ev[0].id);
    catalog_close(c);
    ck_assert_int_eq(catalog_create_at_version(test_db, 1, err, sizeof(err)), -EEXIST);
}
END_TEST

/* A broken assignment inside a transaction: PostgreSQL would abort it; the savepoint keeps it. */
START_TEST(test_pg_txn_survives_refusal)
{
    struct catalog *c = test_open();

    test_put_node(c, "n1");
    ck_assert_int_eq(catalog_begin(c), 0);
    test_put_segment(c, "s1", 1);
    ck_assert_int_eq(catalog_put_assignment(c, "nope", "n1", "LOADING", 1), -ENOENT);
    ck_assert_str_eq(catalog_errmsg(c), "assignment: segment 'nope' not found");
    ck_assert_int_eq(catalog_put_assignment(c, "s1", "n1", "LOADING", 2), 0);
    ck_assert_int_eq(catalog_commit(c), 0);
    ck_assert_int_eq(test_count_assignments(c, "s1", "n1"), 1);
    ck_assert_uint_eq(test_count_segments(c, NULL), 1);
    catalog_close(c);
}
END_TEST

/*
 * Leading: one of two catalogs on one database takes the lead (epoch 1);
 * the other waits; when the leader's connection is cut, it no longer leads,
 * and the other takes over at epoch 2. On SQLite: leads at once, epoch 0.
 */
START_TEST(test_pg_lead)
{
    struct catalog *a = test_open(), *b = test_open();
    char lite[600], err[512] = "";
    struct catalog *l;
    uint64_t ea = 99, eb = 99;

    ck_assert_int_eq(catalog_lead(a, "a:1", &ea), 1);
    ck_assert_uint_eq(ea, 1);
    ck_assert(catalog_leading(a));
    ck_assert_int_eq(catalog_lead(b, "b:2", &eb), 0);
    ck_assert_uint_eq(eb, 99); /* not written when not leading */
    ck_assert(!catalog_leading(b));
    /* The leader's writes go on while it leads. */
    test_put_segment(a, "s1", 1);
    ck_assert(catalog_leading(a));

    /* Its session ends (a server-side cut, as a network loss would): the lock goes with it. */
    test_pg_exec("SELECT pg_terminate_backend(pid) FROM pg_locks"
                 " WHERE locktype = 'advisory' AND granted");
    ck_assert(!catalog_leading(a));
    ck_assert(!catalog_leading(a)); /* and stays deposed, though its connection is back */
    ck_assert_int_eq(catalog_lead(b, "b:2", &eb), 1);
    ck_assert_uint_eq(eb, 2);
    ck_assert(catalog_leading(b));
    ck_assert_int_eq(harness_pg_int(test_db, "SELECT epoch FROM sluice_catalog"), 2);
    catalog_close(a);
    catalog_close(b);

    snprintf(lite, sizeof(lite), "%s/lite.db", test_dir);
    ck_assert_int_eq(catalog_open(lite, &l, err, sizeof(err)), 0);
    ck_assert_int_eq(catalog_lead(l, "l:3", &ea), 1);
    ck_assert_uint_eq(ea, 0);
    ck_assert(catalog_leading(l));
    catalog_close(l);
}
END_TEST

/*
 * A group (catalog_begin_group) of every kind of write, on both backends:
 * all of it is there after the commit, in order, events with the ids
 * add_event_id gave, ascending; a read inside the group sees its writes;
 * a second group continues the ids.
 */
START_TEST(test_group)
{
    struct catalog *c = test_open();
    struct catalog_segment g;
    struct catalog_node gn;
    struct test_rows t = {0};
    uint64_t ids[6] = {0};
    char id[16];

    test_put_node(c, "n1");
    ck_assert_int_eq(catalog_begin_group(c), 0);
    for (int i = 0; i < 3; i++) {
        snprintf(id, sizeof(id), "s%d", i);
        test_put_segment(c, id, 10 + (uint64_t)i);
        ck_assert_int_eq(catalog_put_assignment(c, id, "n1", "LOADING", 100 + i), 0);
    }
    test_put_segment(c, "s1", 11); /* a retried registration: the same fields */
    for (int i = 0; i < 3; i++) {
        struct catalog_event e = {.ts_ms = 200 + i};

        snprintf(e.segment_id, sizeof(e.segment_id), "s%d", i);
        snprintf(e.kind, sizeof(e.kind), "loaded");
        ck_assert_int_eq(catalog_add_event_id(c, &e, &ids[i]), 0);
        if (i > 0)
            ck_assert_uint_gt(ids[i], ids[i - 1]);
    }
    ck_assert_int_eq(catalog_fold_event(c, ids[0], 7, 250), 0);
    ck_assert_int_eq(catalog_put_assignment(c, "s0", "n1", "LOADED", 300), 0);
    ck_assert_int_eq(catalog_delete_assignment(c, "s2", "n1"), 0);
    ck_assert_int_eq(catalog_set_segment_state(c, "s0", "LOADED", 0), 0);
    ck_assert_int_eq(catalog_set_node_state(c, "n1", "DRAINING", "operator"), 0);
    ck_assert_int_eq(catalog_set_segment_footprint(c, "s1", 4096), 0);
    /* A read in the middle sees what the group wrote before it. */
    ck_assert_int_eq(catalog_get_segment(c, "s0", &g), 0);
    ck_assert_str_eq(g.state, "LOADED");
    ck_assert_int_eq(catalog_set_segment_table(c, "s1", "orders"), 0);
    ck_assert_int_eq(catalog_commit(c), 0);

    ck_assert_uint_eq(test_count_segments(c, NULL), 3);
    ck_assert_uint_eq(test_count_segments(c, "LOADED"), 1);
    ck_assert_int_eq(catalog_get_segment(c, "s1", &g), 0);
    ck_assert_uint_eq(g.row_count, 11);
    ck_assert_uint_eq(g.footprint_bytes, 4096);
    ck_assert_str_eq(g.table, "orders");
    ck_assert_int_eq(catalog_get_node(c, "n1", &gn), 0);
    ck_assert_str_eq(gn.state, "DRAINING");
    ck_assert_int_eq(catalog_foreach_assignment(c, NULL, NULL, test_asg_cb, &t), 0);
    ck_assert_int_eq(t.n, 2);
    ck_assert_str_eq(t.asg[0].segment_id, "s0");
    ck_assert_str_eq(t.asg[0].state, "LOADED");
    ck_assert_int_eq(t.asg[0].updated_ms, 300);
    ck_assert_str_eq(t.asg[1].segment_id, "s1");
    ck_assert_str_eq(t.asg[1].state, "LOADING");
    t.n = 0;
    ck_assert_int_eq(catalog_foreach_event(c, NULL, 0, 0, test_ev_cb, &t), 0);
    ck_assert_int_eq(t.n, 3);
    for (int i = 0; i < 3; i++) {
        ck_assert_uint_eq(t.ev[i].id, ids[i]);
        ck_assert_int_eq(t.ev[i].ts_ms, 200 + i);
    }
    ck_assert_uint_eq(t.ev[0].count, 7);
    ck_assert_int_eq(t.ev[0].last_ts_ms, 250);

    /* The next group goes on from there, and so does a write outside any. */
    ck_assert_int_eq(catalog_begin_group(c), 0);
    {
        struct catalog_event e = {.ts_ms = 400};

        snprintf(e.kind, sizeof(e.kind), "node_state");
        ck_assert_int_eq(catalog_add_event_id(c, &e, &ids[3]), 0);
        ck_assert_int_eq(catalog_commit(c), 0);
        ck_assert_int_eq(catalog_add_event_id(c, &e, &ids[4]), 0);
        ck_assert_int_eq(catalog_begin_group(c), 0);
        ck_assert_int_eq(catalog_add_event_id(c, &e, &ids[5]), 0);
        ck_assert_int_eq(catalog_commit(c), 0);
    }
    ck_assert_uint_gt(ids[3], ids[2]);
    ck_assert_uint_gt(ids[4], ids[3]);
    ck_assert_uint_gt(ids[5], ids[4]);
    ck_assert_int_eq(test_count_events(c), 6);
    catalog_close(c);
}
END_TEST

/* Fills a group whose middle write the database refuses, on PostgreSQL. */
static void test_pg_group_fill(struct catalog *c, int round)
{
    char id[32];

    for (int i = 0; i < 50; i++) {
        struct catalog_event e = {.ts_ms = 1 + i};

        snprintf(id, sizeof(id), "r%d-%d", round, i);
        test_put_segment(c, id, 5);
        ck_assert_int_eq(catalog_put_assignment(c, id, "n1", "LOADING", 10), 0);
        snprintf(e.segment_id, sizeof(e.segment_id), "%s", id);
        snprintf(e.kind, sizeof(e.kind), "accepted");
        ck_assert_int_eq(catalog_add_event(c, &e), 0);
    }
}

/*
 * PostgreSQL: a write the database refuses inside a group is reported by
 * the commit, and the whole group is rolled back: an assignment to a
 * missing node (a foreign key), a segment registered again with another
 * uri (named in the message). The catalog goes on: the next group commits.
 */
START_TEST(test_pg_group_refusal)
{
    struct catalog *c = test_open();
    struct catalog_segment s = test_segment("old", 5);

    test_put_node(c, "n1");
    test_put_segment(c, "old", 5);

    ck_assert_int_eq(catalog_begin_group(c), 0);
    test_pg_group_fill(c, 0);
    /* Sent, not answered: the call cannot know. */
    ck_assert_int_eq(catalog_put_assignment(c, "r0-1", "nope", "LOADING", 11), 0);
    test_pg_group_fill(c, 1);
    ck_assert_int_lt(catalog_commit(c), 0);
    ck_assert_msg(strstr(catalog_errmsg(c), "foreign key") != NULL, "%s", catalog_errmsg(c));
    ck_assert_uint_eq(test_count_segments(c, NULL), 1);
    ck_assert_int_eq(test_count_assignments(c, NULL, NULL), 0);
    ck_assert_int_eq(test_count_events(c), 0);

    ck_assert_int_eq(catalog_begin_group(c), 0);
    test_pg_group_fill(c, 2);
    snprintf(s.uri, sizeof(s.uri), "file:///elsewhere.seg");
    ck_assert_int_eq(catalog_put_segment(c, &s), 0);
    test_pg_group_fill(c, 3);
    ck_assert_int_lt(catalog_commit(c), 0);
    ck_assert_msg(strstr(catalog_errmsg(c), "segment 'old' already exists with a different uri") !=
                      NULL, "%s", catalog_errmsg(c));
    ck_assert_uint_eq(test_count_segments(c, NULL), 1);

    ck_assert_int_eq(catalog_begin_group(c), 0);
    test_pg_group_fill(c, 4);
    ck_assert_msg(catalog_commit(c) == 0, "%s", catalog_errmsg(c));
    ck_assert_uint_eq(test_count_segments(c, NULL), 51);
    ck_assert_int_eq(test_count_assignments(c, NULL, "n1"), 50);
    ck_assert_int_eq(test_count_events(c), 50);
    catalog_close(c);
}
END_TEST

/*
 * PostgreSQL: the catalog's backend is killed in the middle of a group. The
 * commit fails, nothing of the group is in the database, and the catalog
 * reconnects: the next group commits.
 */
START_TEST(test_pg_group_killed)
{
    struct catalog *c = test_open();

    test_put_node(c, "n1");
    ck_assert_int_eq(catalog_begin_group(c), 0);
    test_pg_group_fill(c, 0);
    test_pg_exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                 " WHERE datname = current_database() AND pid <> pg_backend_pid()");
    /* Calls after the cut may already see it (-EIO) or not; the commit must. */
    for (int i = 0; i < 50; i++)
        (void)catalog_put_assignment(c, "r0-1", "n1", "LOADED", 20 + i);
    ck_assert_int_lt(catalog_commit(c), 0);
    ck_assert_int_eq(harness_pg_int(test_db, "SELECT count(*) FROM segments"), 0);
    ck_assert_int_eq(harness_pg_int(test_db, "SELECT count(*) FROM events"), 0);

    ck_assert_int_eq(catalog_begin_group(c), 0);
    test_pg_group_fill(c, 1);
    ck_assert_int_eq(catalog_commit(c), 0);
    ck_assert_int_eq(harness_pg_int(test_db, "SELECT count(*) FROM segments"), 50);
    ck_assert_int_eq(harness_pg_int(test_db, "SELECT count(*) FROM assignments"), 50);
    ck_assert_int_eq(harness_pg_int(test_db, "SELECT count(*) FROM events"), 50);
    catalog_close(c);
}
END_TEST

/* ---- catalog copy (both backends: SQLite file -> PostgreSQL -> SQLite file) ---- */

/* Fills a catalog with one of everything, fields away from their defaults. */
static void test_fill(struct catalog *c)
{
    struct catalog_segment s = test_segment("s1", 1234);
    struct catalog_node n = test_node("n1", "DRAINING");
    struct catalog_event e = {.ts_ms = 77, .http_status = 429, .count = 5, .last_ts_ms = 99};

    s.replication = 2;
    s.digest = 0x8000000000000001ull;
    s.backoff_until_ms = 4242;
    s.mem_request_bytes = 1 << 20;
    s.mem_limit_bytes = 2 << 20;
    s.footprint_bytes = 3 << 20;
    snprintf(s.table, sizeof(s.table), "orders");
    snprintf(s.state, sizeof(s.state), "LOADED");
    ck_assert_int_eq(catalog_put_segment(c, &s), 0);
    test_put_segment(c, "s2", 10);
    n.claim = true;
    snprintf(n.drained_by, sizeof(n.drained_by), "node");
    ck_assert_int_eq(catalog_put_node(c, &n), 0);
    test_put_node(c, "n2");
    ck_assert_int_eq(catalog_put_assignment(c, "s1", "n1", "LOADED", 31), 0);
    ck_assert_int_eq(catalog_put_assignment(c, "s1", "n2", "LOADING", 32), 0);
    snprintf(e.segment_id, sizeof(e.segment_id), "s1");
    snprintf(e.kind, sizeof(e.kind), "refused");
    snprintf(e.reason, sizeof(e.reason), "MEM_PRESSURE");
    snprintf(e.detail, sizeof(e.detail), "said \"no\"");
    ck_assert_int_eq(catalog_add_event(c, &e), 0);
    test_add_event(c, "s2", "accepted", 78);
}

/* What test_fill wrote, read back from another catalog. */
static void test_check_filled(struct catalog *c)
{
    struct catalog_counts n;
    struct catalog_segment g;
    struct catalog_node gn;
    struct test_rows t = {0};

    ck_assert_int_eq(catalog_counts(c, &n), 0);
    ck_assert_uint_eq(n.segments, 2);
    ck_assert_uint_eq(n.nodes, 2);
    ck_assert_uint_eq(n.assignments, 2);
    ck_assert_uint_eq(n.events, 2);
    ck_assert_int_eq(catalog_get_segment(c, "s1", &g), 0);
    ck_assert_uint_eq(g.row_count, 1234);
    ck_assert_uint_eq(g.replication, 2);
    ck_assert_uint_eq(g.digest, 0x8000000000000001ull);
    ck_assert_int_eq(g.backoff_until_ms, 4242);
    ck_assert_uint_eq(g.mem_request_bytes, 1 << 20);
    ck_assert_uint_eq(g.mem_limit_bytes, 2 << 20);
    ck_assert_uint_eq(g.footprint_bytes, 3 << 20);
    ck_assert_str_eq(g.table, "orders");
    ck_assert_str_eq(g.state, "LOADED");
    ck_assert_int_eq(catalog_get_node(c, "n1", &gn), 0);
    ck_assert(gn.claim);
    ck_assert_str_eq(gn.drained_by, "node");
    ck_assert_str_eq(gn.state, "DRAINING");
    ck_assert_int_eq(gn.created_ms, 4000);
    ck_assert_int_eq(catalog_foreach_assignment(c, "s1", NULL, test_asg_cb, &t), 0);
    ck_assert_int_eq(t.n, 2);
    ck_assert_str_eq(t.asg[1].node_id, "n2");
    ck_assert_str_eq(t.asg[1].state, "LOADING");
    ck_assert_int_eq(t.asg[1].updated_ms, 32);
    t.n = 0;
    ck_assert_int_eq(catalog_foreach_event(c, NULL, 0, 0, test_ev_cb, &t), 0);
    ck_assert_int_eq(t.n, 2);
    ck_assert_str_eq(t.ev[0].kind, "refused");
    ck_assert_uint_eq(t.ev[0].count, 5);
    ck_assert_int_eq(t.ev[0].last_ts_ms, 99);
    ck_assert_int_eq(t.ev[0].http_status, 429);
    ck_assert_str_eq(t.ev[0].detail, "said \"no\"");
    ck_assert_str_eq(t.ev[1].segment_id, "s2");
}

START_TEST(test_copy)
{
    char src[600], back[600], err[1024] = "";
    struct catalog *a, *b, *c;
    struct catalog_counts n;

    snprintf(src, sizeof(src), "sqlite:%s/src.db", test_dir);
    snprintf(back, sizeof(back), "%s/back.db", test_dir);
    ck_assert_int_eq(catalog_open(src, &a, err, sizeof(err)), 0);
    test_fill(a);
    b = test_open(); /* the PostgreSQL database */
    ck_assert_msg(catalog_copy(a, b, &n, err, sizeof(err)) == 0, "%s", err);
    ck_assert_uint_eq(n.segments, 2);
    ck_assert_uint_eq(n.events, 2);
    test_check_filled(b);

    /* A non-empty target is refused, and left as it was. */
    ck_assert_int_eq(catalog_copy(a, b, NULL, err, sizeof(err)), -ENOTEMPTY);
    ck_assert_msg(strstr(err, "not empty (2 segments, 2 nodes, 2 assignments, 2 events)") != NULL,
                  "%s", err);
    test_check_filled(b);

    /* And back, into a new SQLite file. */
    ck_assert_int_eq(catalog_open(back, &c, err, sizeof(err)), 0);
    ck_assert_msg(catalog_copy(b, c, NULL, err, sizeof(err)) == 0, "%s", err);
    test_check_filled(c);
    catalog_close(c);
    catalog_close(b);
    catalog_close(a);
}
END_TEST

/* The command: exit 0 and the counts; a second run finds the target full: exit 1, unchanged. */
START_TEST(test_copy_cli)
{
    char src[600], err[512] = "", *out = NULL;
    const char *argv[] = {harness_bin("sluice-coord"), "catalog", "copy", "--from", src, "--to",
                          test_db, NULL};
    struct catalog *a;
    int rc;

    snprintf(src, sizeof(src), "sqlite:%s/src.db", test_dir);
    ck_assert_int_eq(catalog_open(src, &a, err, sizeof(err)), 0);
    test_fill(a);
    catalog_close(a);

    rc = harness_run(argv, &out);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    ck_assert_msg(strstr(out, "2 segments, 2 nodes, 2 assignments, 2 events (counts checked)") !=
                      NULL,
                  "%s", out);
    free(out);
    rc = harness_run(argv, &out);
    ck_assert_msg(rc == 1, "exit %d: %s", rc, out);
    ck_assert_msg(strstr(out, "is not empty") != NULL && strstr(out, "refusing") != NULL, "%s",
                  out);
    free(out);
    a = test_open();
    test_check_filled(a);
    catalog_close(a);

    /* Usage: no --to. */
    argv[5] = NULL;
    rc = harness_run(argv, &out);
    ck_assert_msg(rc == 2, "exit %d: %s", rc, out);
    free(out);
}
END_TEST

/* One TCase per behaviour, each with its own temp dir (and, on PostgreSQL, database). */
static void test_add_with(Suite *s, const char *name, const TTest *test, bool pg)
{
    TCase *tc = tcase_create(name);

    tcase_add_unchecked_fixture(tc, pg ? test_setup_pg : test_setup, test_teardown);
    tcase_add_test(tc, test);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
}

static void test_add(Suite *s, const char *name, const TTest *test)
{
    test_add_with(s, name, test, false);
}

/* The contract: TCases that use the catalog's API alone, run on both backends. */
static void test_add_contract(Suite *s, bool pg)
{
    test_add_with(s, "reopen_preserves", test_reopen_preserves, pg);
    test_add_with(s, "segment_idempotent", test_segment_idempotent, pg);
    test_add_with(s, "assignment_unknown_refs", test_assignment_unknown_refs, pg);
    test_add_with(s, "invalid_input", test_invalid_input, pg);
    test_add_with(s, "cascade_delete", test_cascade_delete, pg);
    test_add_with(s, "event_retention", test_event_retention, pg);
    test_add_with(s, "event_query", test_event_query, pg);
    test_add_with(s, "event_before", test_event_before, pg);
    test_add_with(s, "node_state", test_node_state, pg);
    test_add_with(s, "foreach", test_foreach, pg);
    test_add_with(s, "batch_10000", test_batch_10000, pg);
    test_add_with(s, "rollback", test_rollback, pg);
    test_add_with(s, "group", test_group, pg);
}

static Suite *catalog_suite(void)
{
    Suite *s = suite_create("catalog");

    test_add(s, "fresh_open", test_fresh_open);
    test_add(s, "open_errors", test_open_errors);
    test_add(s, "foreign_database", test_foreign_database);
    test_add(s, "migrate_from_v1", test_migrate_from_v1);
    test_add(s, "future_version", test_future_version);
    test_add(s, "migrate_from_v2", test_migrate_from_v2);
    test_add(s, "migrate_from_v3", test_migrate_from_v3);
    test_add(s, "migrate_from_v4", test_migrate_from_v4);
    test_add(s, "migrate_from_v5", test_migrate_from_v5);
    test_add(s, "migrate_from_v6", test_migrate_from_v6);
    test_add_contract(s, false);
    test_add(s, "schema_constraints", test_schema_constraints);
    test_add(s, "integrity_check", test_integrity_check);
    test_add(s, "call_atomic", test_call_atomic);
    test_add(s, "durability_kill", test_durability_kill);
    test_add(s, "utf8", test_utf8);
    return s;
}

static Suite *catalog_pg_suite(void)
{
    Suite *s = suite_create("catalog-pg");

    test_add_with(s, "pg_fresh_open", test_pg_fresh_open, true);
    test_add_with(s, "pg_open_errors", test_pg_open_errors, true);
    test_add_with(s, "pg_foreign_database", test_pg_foreign_database, true);
    test_add_with(s, "pg_future_version", test_pg_future_version, true);
    test_add_with(s, "pg_migrate_from_v1", test_pg_migrate_from_v1, true);
    test_add_with(s, "pg_txn_survives_refusal", test_pg_txn_survives_refusal, true);
    test_add_with(s, "pg_lead", test_pg_lead, true);
    test_add_with(s, "pg_group_refusal", test_pg_group_refusal, true);
    test_add_with(s, "pg_group_killed", test_pg_group_killed, true);
    test_add_contract(s, true);
    test_add_with(s, "copy", test_copy, true);
    test_add_with(s, "copy_cli", test_copy_cli, true);
    return s;
}

/* argv[1]: "sqlite", "postgresql", or nothing for both. */
int main(int argc, char **argv)
{
    bool lite = argc < 2 || strcmp(argv[1], "sqlite") == 0;
    bool pg = argc < 2 || strcmp(argv[1], "postgresql") == 0;
    int rc = EXIT_SUCCESS;

    if (!lite && !pg) {
        fprintf(stderr, "usage: check_catalog [sqlite|postgresql]\n");
        return 2;
    }
    if (pg) {
        char why[1024] = "";
        double t0 = test_now_s();

        test_pg = harness_pg_start(why, sizeof(why));
        if (test_pg == NULL) {
            fprintf(stderr, "check_catalog: FAIL: PostgreSQL did not start, so the catalog "
                            "contract was not checked on it: %s\n", why);
            return EXIT_FAILURE;
        }
        printf("catalog-pg: private PostgreSQL up in %.2f s\n", test_now_s() - t0);
        fflush(stdout);
    }
    if (lite && harness_run_suite(catalog_suite()) != EXIT_SUCCESS)
        rc = EXIT_FAILURE;
    if (pg && harness_run_suite(catalog_pg_suite()) != EXIT_SUCCESS)
        rc = EXIT_FAILURE;
    harness_pg_stop(test_pg);
    return rc;
}
