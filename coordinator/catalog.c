/*
 * catalog: the coordinator's durable state on SQLite or PostgreSQL, through
 * sqldb (the SQL is written once, in the dialect both share; sqldb
 * translates it for PostgreSQL, and the few things that differ, the schema
 * version and the settings read back, are chosen by backend here). One
 * connection, used from the event loop thread only. Every statement is
 * prepared once at open and reset after each use, so no call leaves a
 * read transaction open behind it. Arguments are validated in C before any
 * statement runs; the schema repeats the important rules (CHECK, NOT NULL,
 * FOREIGN KEY) as a second line of defence against other writers.
 *
 * Expected load: bursts of thousands of segment registrations per import,
 * batched by the caller into one transaction; a few assignment and event
 * writes per second in steady state; events capped at events_keep rows.
 *
 * Schema changes are an ordered list of migrations, indexed by the version
 * they start from; each runs in its own BEGIN IMMEDIATE transaction together
 * with the PRAGMA user_version bump, so a crash mid-migration leaves the
 * previous version intact. Never edit a released migration: append one.
 */
#include "catalog.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "sqldb.h"
#include "strmap.h"
#include "xmalloc.h"

/* "SLCE": marks the file as a Sluice catalog (PRAGMA application_id). */
#define CATALOG_APPLICATION_ID 0x534C4345
#define CATALOG_TRIM_EVERY     1000u

/*
 * catalog_migrations[v] takes the schema from version v to v + 1. v1 is the
 * base tables; v2 adds segments.replication (existing rows get 1) and the
 * events-by-segment index used by catalog_foreach_event; v3 adds
 * nodes.claim (pull mode, which changes how the coordinator treats a node,
 * so it must survive a restart) and nodes.drained_by, which until then was
 * kept as a tag in last_reason ("ADMIN_DRAIN", "SELF_DRAIN", or nothing on
 * a DRAINING row older than the tags: an operator's drain); v4 adds
 * segments.digest, the file's content digest (0, unknown, for rows from
 * before: such a segment learns its digest when it is imported again); v5
 * adds events.count and events.last_ts_ms, so that a storm of identical
 * events (one node refusing many segments for one reason) is one row with
 * a count (rows from before are single events: count 1); v6 adds
 * segments.table_name, the table a segment belongs to ('default' for rows
 * from before tables), and an index by table; v7 adds the declared
 * segments.mem_request_bytes and mem_limit_bytes and the observed
 * segments.footprint_bytes (0, none, for rows from before).
 */
static const char *const catalog_migrations[] = {
    /* 0 -> 1 */
    "PRAGMA application_id = 1397506885;" /* CATALOG_APPLICATION_ID */
    "CREATE TABLE nodes ("
    "  id TEXT NOT NULL PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 128),"
    "  addr TEXT NOT NULL,"
    "  state TEXT NOT NULL CHECK (state IN ('UP', 'SUSPECT', 'DOWN', 'DRAINING')),"
    "  last_seen_ms INTEGER,"
    "  last_reason TEXT,"
    "  created_ms INTEGER"
    ") STRICT;"
    "CREATE TABLE segments ("
    "  id TEXT NOT NULL PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 128),"
    "  uri TEXT NOT NULL,"
    "  row_count INTEGER NOT NULL CHECK (row_count > 0),"
    "  avg_row_size INTEGER NOT NULL CHECK (avg_row_size > 0),"
    "  state TEXT NOT NULL CHECK (state IN ('PENDING', 'LOADED', 'INVALID')),"
    "  backoff_until_ms INTEGER NOT NULL DEFAULT 0,"
    "  created_ms INTEGER"
    ") STRICT;"
    "CREATE INDEX segments_state ON segments (state, id);"
    "CREATE TABLE assignments ("
    "  segment_id TEXT NOT NULL REFERENCES segments (id) ON DELETE CASCADE,"
    "  node_id TEXT NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,"
    "  state TEXT NOT NULL CHECK (state IN ('LOADING', 'LOADED', 'FAILED', 'DROPPED')),"
    "  updated_ms INTEGER,"
    "  PRIMARY KEY (segment_id, node_id)"
    ") STRICT, WITHOUT ROWID;"
    "CREATE INDEX assignments_node ON assignments (node_id);"
    "CREATE TABLE events ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  ts_ms INTEGER NOT NULL,"
    "  segment_id TEXT,"
    "  node_id TEXT,"
    "  kind TEXT NOT NULL,"
    "  reason TEXT,"
    "  http_status INTEGER,"
    "  retry_after_ms INTEGER,"
    "  detail TEXT"
    ") STRICT;",
    /* 1 -> 2 */
    "ALTER TABLE segments ADD COLUMN replication INTEGER NOT NULL DEFAULT 1"
    "  CHECK (replication BETWEEN 1 AND 16);"
    "CREATE INDEX events_segment ON events (segment_id, id);",
    /* 2 -> 3 */
    "ALTER TABLE nodes ADD COLUMN claim INTEGER NOT NULL DEFAULT 0 CHECK (claim IN (0, 1));"
    "ALTER TABLE nodes ADD COLUMN drained_by TEXT CHECK (drained_by IN ('operator', 'node'));"
    "UPDATE nodes SET drained_by = 'operator', last_reason = NULL"
    "  WHERE last_reason = 'ADMIN_DRAIN' OR (state = 'DRAINING' AND last_reason IS NULL);"
    "UPDATE nodes SET drained_by = 'node', last_reason = NULL WHERE last_reason = 'SELF_DRAIN';",
    /* 3 -> 4 */
    "ALTER TABLE segments ADD COLUMN digest INTEGER NOT NULL DEFAULT 0;",
    /* 4 -> 5 */
    "ALTER TABLE events ADD COLUMN count INTEGER NOT NULL DEFAULT 1 CHECK (count >= 1);"
    "ALTER TABLE events ADD COLUMN last_ts_ms INTEGER;",
    /* 5 -> 6 */
    "ALTER TABLE segments ADD COLUMN table_name TEXT NOT NULL DEFAULT 'default'"
    "  CHECK (length(table_name) BETWEEN 1 AND 128);"
    "CREATE INDEX segments_table ON segments (table_name, id);",
    /* 6 -> 7 */
    "ALTER TABLE segments ADD COLUMN mem_request_bytes INTEGER NOT NULL DEFAULT 0"
    "  CHECK (mem_request_bytes >= 0);"
    "ALTER TABLE segments ADD COLUMN mem_limit_bytes INTEGER NOT NULL DEFAULT 0"
    "  CHECK (mem_limit_bytes = 0 OR mem_limit_bytes >= mem_request_bytes);"
    "ALTER TABLE segments ADD COLUMN footprint_bytes INTEGER NOT NULL DEFAULT 0"
    "  CHECK (footprint_bytes >= 0);",
};

_Static_assert(sizeof(catalog_migrations) / sizeof(catalog_migrations[0]) == CATALOG_SCHEMA_VERSION,
               "one migration per schema version");
_Static_assert(CATALOG_APPLICATION_ID == 1397506885, "application_id in migration 1");
_Static_assert(WIRE_ID_MAX == 128, "CHECK (length(id) ...) in migration 1");
_Static_assert(CATALOG_REPLICATION_MAX == 16, "CHECK (replication ...) in migration 2");
_Static_assert(WIRE_TABLE_MAX == 128, "CHECK (length(table_name) ...) in migration 6");

enum catalog_stmt {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_SAVEPOINT,
    ST_RELEASE,
    ST_ROLLBACK_TO,
    ST_SEG_INSERT,
    ST_SEG_GET,
    ST_SEG_EXISTS,
    ST_SEG_SET_STATE,
    ST_SEG_SET_FILE,
    ST_SEG_SET_TABLE,
    ST_SEG_SET_MEM,
    ST_SEG_SET_FOOTPRINT,
    ST_SEG_DELETE,
    ST_SEG_ALL,
    ST_SEG_BY_STATE,
    ST_SEG_COUNT,
    ST_SEG_COUNT_STATE,
    ST_NODE_UPSERT,
    ST_NODE_GET,
    ST_NODE_EXISTS,
    ST_NODE_SET_STATE,
    ST_NODE_DELETE,
    ST_NODE_ALL,
    ST_ASG_UPSERT,
    ST_ASG_DELETE,
    ST_ASG_ALL,
    ST_ASG_BY_SEG,
    ST_ASG_BY_NODE,
    ST_ASG_BY_BOTH,
    ST_EV_INSERT,
    ST_EV_FOLD,
    ST_EV_TRIM,
    ST_EV_ALL,
    ST_EV_BY_SEG,
    ST_EV_BEFORE,
    ST_EV_BEFORE_SEG,
    ST_EV_RESERVE, /* PostgreSQL only, from here on */
    ST_SEG_ROWS,
    ST_ASG_ROWS,
    ST_STATE_ROWS,
    ST_FOOT_ROWS,
    ST_EV_ROWS,
    ST_COUNT_
};

/* The tables whose rows a group sends together, in the order they are sent. */
enum { CAT_ROWS_SEG, CAT_ROWS_ASG, CAT_ROWS_STATE, CAT_ROWS_FOOT, CAT_ROWS_EV, CAT_ROWS_KINDS };

/* Event ids a group reserves at a time on PostgreSQL (ST_EV_RESERVE). */
#define CAT_EV_RESERVE 256

#define SEG_COLS                                                                                   \
    "id, uri, row_count, avg_row_size, replication, state, backoff_until_ms, created_ms, digest," \
    " table_name, mem_request_bytes, mem_limit_bytes, footprint_bytes"
#define NODE_COLS "id, addr, state, last_seen_ms, last_reason, created_ms, claim, drained_by"
#define ASG_COLS  "segment_id, node_id, state, updated_ms"
#define EV_COLS                                                                                    \
    "id, ts_ms, segment_id, node_id, kind, reason, http_status, retry_after_ms, detail, count,"    \
    " last_ts_ms"

static const char *const catalog_sql[ST_COUNT_] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_SAVEPOINT] = "SAVEPOINT catalog_op",
    [ST_RELEASE] = "RELEASE catalog_op",
    [ST_ROLLBACK_TO] = "ROLLBACK TO catalog_op",
    [ST_SEG_INSERT] = "INSERT INTO segments (" SEG_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9,"
                      " ?10, ?11, ?12, ?13) ON CONFLICT (id) DO NOTHING",
    [ST_SEG_GET] = "SELECT " SEG_COLS " FROM segments WHERE id = ?1",
    [ST_SEG_EXISTS] = "SELECT 1 FROM segments WHERE id = ?1",
    [ST_SEG_SET_STATE] = "UPDATE segments SET state = ?2, backoff_until_ms = ?3 WHERE id = ?1",
    [ST_SEG_SET_FILE] = "UPDATE segments SET row_count = ?2, avg_row_size = ?3, digest = ?4,"
                        " state = coalesce(?5, state),"
                        " backoff_until_ms = CASE WHEN ?5 IS NULL THEN backoff_until_ms ELSE 0 END"
                        " WHERE id = ?1",
    [ST_SEG_SET_TABLE] = "UPDATE segments SET table_name = ?2 WHERE id = ?1",
    [ST_SEG_SET_MEM] = "UPDATE segments SET mem_request_bytes = ?2, mem_limit_bytes = ?3"
                       " WHERE id = ?1",
    [ST_SEG_SET_FOOTPRINT] = "UPDATE segments SET footprint_bytes = ?2 WHERE id = ?1",
    [ST_SEG_DELETE] = "DELETE FROM segments WHERE id = ?1",
    [ST_SEG_ALL] = "SELECT " SEG_COLS " FROM segments ORDER BY id",
    [ST_SEG_BY_STATE] = "SELECT " SEG_COLS " FROM segments WHERE state = ?1 ORDER BY id",
    [ST_SEG_COUNT] = "SELECT count(*) FROM segments",
    [ST_SEG_COUNT_STATE] = "SELECT count(*) FROM segments WHERE state = ?1",
    [ST_NODE_UPSERT] = "INSERT INTO nodes (" NODE_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
                       " ON CONFLICT (id) DO UPDATE SET addr = excluded.addr,"
                       " state = excluded.state, last_seen_ms = excluded.last_seen_ms,"
                       " last_reason = excluded.last_reason, claim = excluded.claim,"
                       " drained_by = excluded.drained_by",
    [ST_NODE_GET] = "SELECT " NODE_COLS " FROM nodes WHERE id = ?1",
    [ST_NODE_EXISTS] = "SELECT 1 FROM nodes WHERE id = ?1",
    [ST_NODE_SET_STATE] = "UPDATE nodes SET state = ?2, drained_by = ?3 WHERE id = ?1",
    [ST_NODE_DELETE] = "DELETE FROM nodes WHERE id = ?1",
    [ST_NODE_ALL] = "SELECT " NODE_COLS " FROM nodes ORDER BY id",
    [ST_ASG_UPSERT] = "INSERT INTO assignments (" ASG_COLS ") VALUES (?1, ?2, ?3, ?4)"
                      " ON CONFLICT (segment_id, node_id) DO UPDATE SET"
                      " state = excluded.state, updated_ms = excluded.updated_ms",
    [ST_ASG_DELETE] = "DELETE FROM assignments WHERE segment_id = ?1 AND node_id = ?2",
    [ST_ASG_ALL] = "SELECT " ASG_COLS " FROM assignments ORDER BY segment_id, node_id",
    [ST_ASG_BY_SEG] = "SELECT " ASG_COLS " FROM assignments WHERE segment_id = ?1"
                      " ORDER BY node_id",
    [ST_ASG_BY_NODE] = "SELECT " ASG_COLS " FROM assignments WHERE node_id = ?1"
                       " ORDER BY segment_id",
    [ST_ASG_BY_BOTH] = "SELECT " ASG_COLS " FROM assignments WHERE segment_id = ?1"
                       " AND node_id = ?2",
    [ST_EV_INSERT] = "INSERT INTO events (ts_ms, segment_id, node_id, kind, reason, http_status,"
                     " retry_after_ms, detail, count, last_ts_ms)"
                     " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) RETURNING id",
    [ST_EV_FOLD] = "UPDATE events SET count = ?2, last_ts_ms = ?3 WHERE id = ?1",
    /* Ids are dense (only this statement deletes, and only the oldest), so
     * id arithmetic keeps exactly the newest ?1 without counting rows. */
    [ST_EV_TRIM] = "DELETE FROM events WHERE id <= (SELECT max(id) FROM events) - ?1",
    [ST_EV_ALL] = "SELECT " EV_COLS " FROM events WHERE id > ?1 ORDER BY id LIMIT ?2",
    [ST_EV_BY_SEG] = "SELECT " EV_COLS " FROM events WHERE segment_id = ?1 AND id > ?2"
                     " ORDER BY id LIMIT ?3",
    /* Newest first, through the primary key or events_segment: O(limit), not O(table). */
    [ST_EV_BEFORE] = "SELECT " EV_COLS " FROM events WHERE id < ?1 ORDER BY id DESC LIMIT ?2",
    [ST_EV_BEFORE_SEG] = "SELECT " EV_COLS " FROM events WHERE segment_id = ?1 AND id < ?2"
                         " ORDER BY id DESC LIMIT ?3",
    /*
     * A group's rows on PostgreSQL, one statement per table for up to
     * CAT_ROWS_MAX rows: each parameter is an array literal of one column
     * (lower-case type names: sqldb's rules rewrite only the upper-case
     * ones). A retried registration (the same fields) changes nothing, as
     * ST_SEG_INSERT; a conflicting one fails the statement, and so the
     * group, with a sentence that names the first differing field (a cast
     * of that sentence to a number is how plain SQL raises an error). A key
     * comes at most once in a statement (ON CONFLICT DO UPDATE and UPDATE
     * ... FROM want that): cat_rows_add sends the rows before a repeat.
     */
    [ST_SEG_ROWS] =
        "INSERT INTO segments (" SEG_COLS ") SELECT * FROM unnest(?1::text[], ?2::text[],"
        " ?3::bigint[], ?4::bigint[], ?5::bigint[], ?6::text[], ?7::bigint[], ?8::bigint[],"
        " ?9::bigint[], ?10::text[], ?11::bigint[], ?12::bigint[], ?13::bigint[])"
        " ON CONFLICT (id) DO UPDATE SET row_count ="
        " CAST('segment ''' || excluded.id || ''' already exists with a different ' ||"
        " CASE WHEN segments.uri <> excluded.uri THEN 'uri'"
        " WHEN segments.row_count <> excluded.row_count THEN 'row_count'"
        " WHEN segments.avg_row_size <> excluded.avg_row_size THEN 'avg_row_size'"
        " WHEN segments.replication <> excluded.replication THEN 'replication'"
        " WHEN segments.digest <> excluded.digest THEN 'digest' ELSE 'table' END AS INTEGER)"
        " WHERE segments.uri <> excluded.uri OR segments.row_count <> excluded.row_count"
        " OR segments.avg_row_size <> excluded.avg_row_size"
        " OR segments.replication <> excluded.replication OR segments.digest <> excluded.digest"
        " OR segments.table_name <> excluded.table_name",
    [ST_ASG_ROWS] = "INSERT INTO assignments (" ASG_COLS ") SELECT * FROM unnest(?1::text[],"
                    " ?2::text[], ?3::text[], ?4::bigint[])"
                    " ON CONFLICT (segment_id, node_id) DO UPDATE SET"
                    " state = excluded.state, updated_ms = excluded.updated_ms",
    [ST_STATE_ROWS] = "UPDATE segments SET state = r.state, backoff_until_ms = r.backoff_until_ms"
                      " FROM unnest(?1::text[], ?2::text[], ?3::bigint[])"
                      " AS r (id, state, backoff_until_ms) WHERE segments.id = r.id COLLATE \"C\"",
    [ST_FOOT_ROWS] = "UPDATE segments SET footprint_bytes = r.footprint_bytes"
                     " FROM unnest(?1::text[], ?2::bigint[]) AS r (id, footprint_bytes)"
                     " WHERE segments.id = r.id COLLATE \"C\"",
    /* Ids reserved beforehand (ST_EV_RESERVE), so that add_event_id answers at once. */
    [ST_EV_ROWS] = "INSERT INTO events (" EV_COLS ") SELECT * FROM unnest(?1::bigint[],"
                   " ?2::bigint[], ?3::text[], ?4::text[], ?5::text[], ?6::text[], ?7::bigint[],"
                   " ?8::bigint[], ?9::text[], ?10::bigint[], ?11::bigint[])",
    /* Sequence values are never handed out twice, whatever becomes of the transaction. */
    [ST_EV_RESERVE] = "SELECT nextval(pg_get_serial_sequence('events', 'id'))"
                      " FROM generate_series(1, 256)",
};
_Static_assert(CAT_EV_RESERVE == 256, "generate_series(1, 256) in ST_EV_RESERVE");

static const char *const catalog_segment_states[] = {"PENDING", "LOADED", "INVALID", NULL};
static const char *const catalog_node_states[] = {"UP", "SUSPECT", "DOWN", "DRAINING", NULL};
static const char *const catalog_drainers[] = {"", "operator", "node", NULL};
static const char *const catalog_assignment_states[] = {"LOADING", "LOADED", "FAILED", "DROPPED",
                                                        NULL};

struct catalog {
    struct sqldb *db;
    unsigned lead_gen; /* PostgreSQL: the connection that took the lead; 0: not leading */
    bool ha_ready;     /* PostgreSQL: cat_ha_schema() done */
    struct sqldb_stmt *stmt[ST_COUNT_];
    bool in_txn;     /* between catalog_begin and catalog_commit/rollback */
    bool group;      /* ... opened by catalog_begin_group */
    bool txn_failed; /* SQLite rolled the explicit transaction back under us */
    bool iterating;  /* inside a catalog_foreach_* callback */
    uint64_t events_keep;
    uint64_t last_event_id; /* rowid of the last event inserted */
    /* PostgreSQL: event ids reserved for groups, ev_ids[ev_next..ev_n) unused yet */
    uint64_t ev_ids[CAT_EV_RESERVE];
    unsigned ev_next, ev_n;
    struct cat_rows *rows; /* PostgreSQL: [CAT_ROWS_KINDS], a group's rows not sent yet */
    bool rows_waiting;
    unsigned trim_every;
    unsigned since_trim;
    char err[512];
    /* Scratch rows: ret_ outputs are written only on success, and foreach
     * hands these to callbacks. */
    struct catalog_segment seg;
    struct catalog_node node;
    struct catalog_assignment asg;
    struct catalog_event ev;
};

/* Records the message of a failure and returns r (a negative errno). */
static int cat_fail(struct catalog *c, int r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int cat_fail(struct catalog *c, int r, const char *fmt, ...)
{
    char quoted[600];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(c->err, sizeof(c->err), fmt, ap);
    va_end(ap);
    log_debug("catalog_error", "errno=%d msg=%s", -r, log_quote(quoted, sizeof(quoted), c->err));
    return r;
}

/* Puts a prefix before the message already recorded (which may not be an argument of cat_fail). */
static int cat_prefix(struct catalog *c, int r, const char *prefix)
{
    char msg[sizeof(c->err)];

    snprintf(msg, sizeof(msg), "%s", c->err);
    return cat_fail(c, r, "%s: %s", prefix, msg);
}

/*
 * Records a failure of the database (rc: a negative errno from sqldb; a
 * stray SQLDB_ROW is -EIO). If it rolled the caller's explicit transaction
 * back (SQLite after an I/O error or a full disk), the transaction is
 * marked failed so that nothing after it pretends to be part of it; one
 * PostgreSQL aborted (sqldb_txn says FAILED) is caught by cat_enter.
 */
static int cat_db_fail(struct catalog *c, int rc, const char *what)
{
    int r = cat_fail(c, rc < 0 ? rc : -EIO, "%s: %s", what,
                     rc < 0 ? sqldb_errmsg(c->db) : "unexpected row");

    if (c->in_txn && sqldb_txn(c->db) == SQLDB_TXN_NONE)
        c->txn_failed = true;
    return r;
}

static void cat_done(struct sqldb_stmt *s)
{
    sqldb_reset(s);
}

/* Steps a statement that returns no rows, then resets it. */
static int cat_step_done(struct catalog *c, struct sqldb_stmt *s, const char *what)
{
    int rc = sqldb_step(s);
    int r = 0;

    if (rc != SQLDB_DONE)
        r = cat_db_fail(c, rc, what);
    cat_done(s);
    return r;
}

/*
 * Whether writes go out without waiting for their answers: a group
 * (catalog_begin_group) on PostgreSQL, where they are pipelined and
 * answered at commit.
 */
static bool cat_deferred(const struct catalog *c)
{
    return c->group && c->in_txn && sqldb_kind(c->db) == SQLDB_POSTGRESQL;
}

/*
 * Runs a write of one row (an UPDATE or DELETE by key, an upsert), then
 * resets it: 1 if it ran and changed no row, 0 if it changed one or was
 * deferred (its count is not known: a group does not report missing rows),
 * or a negative errno.
 */
static int cat_write(struct catalog *c, struct sqldb_stmt *s, const char *what)
{
    int rc, r;

    if (cat_deferred(c)) {
        rc = sqldb_step_deferred(s);
        cat_done(s);
        return rc < 0 ? cat_db_fail(c, rc, what) : 0;
    }
    if ((r = cat_step_done(c, s, what)) < 0)
        return r;
    return sqldb_changes(c->db) == 0 ? 1 : 0;
}

/* ---- a group's rows, one statement per table (PostgreSQL) ---- */

/* Rows of one table a statement carries at most. */
#define CAT_ROWS_MAX 1024

/*
 * The rows of one table waiting in a group: each column an array literal
 * being built ("{a,b,c" until sent), and the keys already in it.
 */
struct cat_rows {
    enum catalog_stmt stmt;
    int ncols;
    bool keyed; /* a key may come once per statement */
    unsigned n;
    struct cat_text {
        char *p;
        size_t len, cap;
    } col[13];
    struct strmap *keys;
};

static void cat_text_add(struct cat_text *t, const char *s, size_t n)
{
    if (t->len + n + 2 > t->cap) {
        t->cap = (t->len + n + 2) * 2;
        t->p = xreallocarray(t->p, t->cap, 1);
    }
    memcpy(t->p + t->len, s, n);
    t->len += n;
    t->p[t->len] = '\0';
}

/* Starts the next element of a column: "{" before the first, "," before the others. */
static void cat_rows_next(struct cat_rows *b, int col)
{
    cat_text_add(&b->col[col], b->col[col].len == 0 ? "{" : ",", 1);
}

/* A text element (NULL: SQL NULL), quoted, with '"' and '\' escaped. */
static void cat_rows_text(struct cat_rows *b, int col, const char *v)
{
    struct cat_text *t = &b->col[col];

    cat_rows_next(b, col);
    if (v == NULL) {
        cat_text_add(t, "NULL", 4);
        return;
    }
    cat_text_add(t, "\"", 1);
    for (const char *p = v; *p != '\0';) {
        size_t n = strcspn(p, "\"\\");

        cat_text_add(t, p, n);
        p += n;
        if (*p != '\0') {
            cat_text_add(t, "\\", 1);
            cat_text_add(t, p++, 1);
        }
    }
    cat_text_add(t, "\"", 1);
}

/* "" is NULL, as cat_bind_opt_text stores it. */
static void cat_rows_opt_text(struct cat_rows *b, int col, const char *v)
{
    cat_rows_text(b, col, v == NULL || v[0] == '\0' ? NULL : v);
}

static void cat_rows_int(struct cat_rows *b, int col, int64_t v)
{
    char num[24];

    cat_rows_next(b, col);
    cat_text_add(&b->col[col], num, (size_t)snprintf(num, sizeof(num), "%" PRId64, v));
}

/* 0 is NULL, as cat_bind_opt_int stores it. */
static void cat_rows_opt_int(struct cat_rows *b, int col, int64_t v)
{
    if (v != 0) {
        cat_rows_int(b, col, v);
        return;
    }
    cat_rows_next(b, col);
    cat_text_add(&b->col[col], "NULL", 4);
}

/* Forgets the rows (sent, or rolled back with their group). */
static void cat_rows_clear(struct cat_rows *b)
{
    for (int i = 0; i < b->ncols; i++)
        b->col[i].len = 0;
    b->n = 0;
    if (b->keys != NULL && strmap_count(b->keys) > 0) {
        strmap_free(b->keys);
        b->keys = strmap_new();
    }
}

/* Forgets every table's waiting rows (their group was rolled back). */
static void cat_rows_discard(struct catalog *c)
{
    if (!c->rows_waiting)
        return;
    for (int k = 0; k < CAT_ROWS_KINDS; k++)
        cat_rows_clear(&c->rows[k]);
    c->rows_waiting = false;
}

/* PostgreSQL: the rows of each table, empty. */
static void cat_rows_init(struct catalog *c)
{
    static const struct {
        enum catalog_stmt stmt;
        int ncols;
        bool keyed;
    } kinds[CAT_ROWS_KINDS] = {
        [CAT_ROWS_SEG] = {ST_SEG_ROWS, 13, true},
        [CAT_ROWS_ASG] = {ST_ASG_ROWS, 4, true},
        [CAT_ROWS_STATE] = {ST_STATE_ROWS, 3, true},
        [CAT_ROWS_FOOT] = {ST_FOOT_ROWS, 2, true},
        [CAT_ROWS_EV] = {ST_EV_ROWS, 11, false},
    };

    c->rows = xcalloc(CAT_ROWS_KINDS, sizeof(*c->rows));
    for (int k = 0; k < CAT_ROWS_KINDS; k++) {
        c->rows[k].stmt = kinds[k].stmt;
        c->rows[k].ncols = kinds[k].ncols;
        c->rows[k].keyed = kinds[k].keyed;
        c->rows[k].keys = kinds[k].keyed ? strmap_new() : NULL;
    }
}

static void cat_rows_free(struct catalog *c)
{
    if (c->rows == NULL)
        return;
    for (int k = 0; k < CAT_ROWS_KINDS; k++) {
        for (int i = 0; i < c->rows[k].ncols; i++)
            free(c->rows[k].col[i].p);
        strmap_free(c->rows[k].keys);
    }
    free(c->rows);
}

/*
 * Sends every table's waiting rows, in an order the foreign keys accept
 * (segments, then assignments, states, footprints and events); the answers come with
 * the commit. 0 or the negative errno of the send.
 */
static int cat_rows_flush(struct catalog *c)
{
    int r = 0;

    if (!c->rows_waiting)
        return 0;
    c->rows_waiting = false;
    for (int k = 0; k < CAT_ROWS_KINDS; k++) {
        struct cat_rows *b = &c->rows[k];
        struct sqldb_stmt *q = c->stmt[b->stmt];
        int rc;

        if (b->n == 0)
            continue;
        for (int i = 0; i < b->ncols; i++) {
            cat_text_add(&b->col[i], "}", 1);
            sqldb_bind_text(q, i + 1, b->col[i].p);
        }
        rc = sqldb_step_deferred(q);
        cat_done(q);
        cat_rows_clear(b);
        if (rc < 0 && r == 0)
            r = cat_db_fail(c, rc, "write a group's rows");
    }
    return r;
}

/*
 * Makes room for one more row of kind k whose key is key (NULL: none):
 * sends what waits first if the key is there already or the statement is
 * full. 0 or a negative errno.
 */
static int cat_rows_room(struct catalog *c, int k, const char *key)
{
    struct cat_rows *b = &c->rows[k];
    int r;

    if (b->n >= CAT_ROWS_MAX || (b->keyed && strmap_get(b->keys, key) != NULL))
        if ((r = cat_rows_flush(c)) < 0)
            return r;
    if (b->keyed)
        strmap_put(b->keys, key, b);
    b->n++;
    c->rows_waiting = true;
    return 0;
}

/* Runs a cached statement without touching c->err (used while cleaning up). */
static int cat_run_quiet(struct catalog *c, enum catalog_stmt i)
{
    int rc = sqldb_step(c->stmt[i]);

    sqldb_reset(c->stmt[i]);
    return rc;
}

/* The entry check of a call that adds to a group's rows (cat_rows_room): they wait. */
static int cat_enter_rows(struct catalog *c)
{
    assert(c != NULL);
    if (c->iterating)
        return cat_fail(c, -EBUSY, "catalog called from inside a foreach callback");
    if (c->in_txn && sqldb_txn(c->db) == SQLDB_TXN_FAILED)
        c->txn_failed = true;
    if (c->txn_failed)
        return cat_fail(c, -EIO,
                        "the transaction was aborted by an earlier storage error;"
                        " roll it back");
    return 0;
}

/*
 * Common entry check of every other public call but close/errmsg/rollback:
 * a group's waiting rows are sent first, so that every statement runs in
 * the order of the calls.
 */
static int cat_enter(struct catalog *c)
{
    int r;

    if ((r = cat_enter_rows(c)) < 0)
        return r;
    return cat_rows_flush(c);
}

/* ---- validation: done before any statement runs ---- */

static int cat_check_id(struct catalog *c, const char *what, const char *id)
{
    size_t n;

    if (id == NULL)
        return cat_fail(c, -EINVAL, "%s: missing", what);
    n = strnlen(id, WIRE_ID_MAX + 1);
    if (n == 0)
        return cat_fail(c, -EINVAL, "%s: empty", what);
    if (n > WIRE_ID_MAX)
        return cat_fail(c, -EINVAL, "%s: longer than %d bytes", what, WIRE_ID_MAX);
    if (id[0] == '.' || id[0] == '-')
        return cat_fail(c, -EINVAL, "%s: must not start with '%c'", what, id[0]);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)id[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-'))
            return cat_fail(c, -EINVAL,
                            "%s: byte 0x%02x at offset %zu is not one of [A-Za-z0-9._-]", what, ch,
                            i);
    }
    return 0;
}

/* An optional id: "" is allowed and means none. */
static int cat_check_opt_id(struct catalog *c, const char *what, const char *id)
{
    return id[0] == '\0' ? 0 : cat_check_id(c, what, id);
}

static int cat_check_state(struct catalog *c, const char *what, const char *state,
                           const char *const *names)
{
    if (state == NULL)
        return cat_fail(c, -EINVAL, "%s: missing", what);
    for (size_t i = 0; names[i] != NULL; i++)
        if (strcmp(state, names[i]) == 0)
            return 0;
    /* Print at most 16 bytes of it: it is unchecked input. */
    return cat_fail(c, -EINVAL, "%s: unknown state '%.16s'", what, state);
}

/*
 * A string of at most max bytes whose bytes are accepted by ok(); the
 * buffer may be a fixed-size struct field, so read no further than max + 1.
 */
static int cat_check_chars(struct catalog *c, const char *what, const char *s, size_t min,
                           size_t max, bool (*ok)(unsigned char), const char *allowed)
{
    size_t n;

    if (s == NULL)
        return cat_fail(c, -EINVAL, "%s: missing", what);
    n = strnlen(s, max + 1);
    if (n < min)
        return cat_fail(c, -EINVAL, "%s: empty", what);
    if (n > max)
        return cat_fail(c, -EINVAL, "%s: longer than %zu bytes", what, max);
    for (size_t i = 0; i < n; i++)
        if (!ok((unsigned char)s[i]))
            return cat_fail(c, -EINVAL, "%s: byte 0x%02x at offset %zu is not one of %s", what,
                            (unsigned char)s[i], i, allowed);
    /* Every client reads these back as proto3 strings: they must be UTF-8. */
    if (!wire_utf8_valid(s, n, &n))
        return cat_fail(c, -EINVAL, "%s: not valid UTF-8 (byte 0x%02x at offset %zu)", what,
                        (unsigned char)s[n], n);
    return 0;
}

static bool cat_kind_char(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || ch == '_';
}

static bool cat_reason_char(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '.' || ch == '_' || ch == '-';
}

static bool cat_graph_char(unsigned char ch)
{
    return ch > 0x20 && ch < 0x7f;
}

static bool cat_text_char(unsigned char ch)
{
    return ch >= 0x20 && ch != 0x7f;
}

static bool cat_any_char(unsigned char ch)
{
    return ch != 0;
}

static int cat_check_ms(struct catalog *c, const char *what, int64_t ms)
{
    if (ms < 0)
        return cat_fail(c, -EINVAL, "%s: %lld is negative", what, (long long)ms);
    return 0;
}

/* ---- binding and reading ---- */

static void cat_bind_text(struct sqldb_stmt *s, int i, const char *v)
{
    sqldb_bind_text(s, i, v);
}

/* "" is stored as NULL. */
static void cat_bind_opt_text(struct sqldb_stmt *s, int i, const char *v)
{
    if (v == NULL || v[0] == '\0')
        sqldb_bind_null(s, i);
    else
        sqldb_bind_text(s, i, v);
}

/* 0 is stored as NULL. */
static void cat_bind_opt_int(struct sqldb_stmt *s, int i, int64_t v)
{
    if (v == 0)
        sqldb_bind_null(s, i);
    else
        sqldb_bind_int64(s, i, v);
}

/* Copies a text column (NULL reads as ""); a value too long for buf is corruption. */
static int cat_col_text(struct catalog *c, struct sqldb_stmt *s, int i, char *buf, size_t size)
{
    const char *t;
    size_t n;

    if (sqldb_column_null(s, i)) {
        buf[0] = '\0';
        return 0;
    }
    t = sqldb_column_text(s, i, &n);
    if (t == NULL)
        return cat_fail(c, -ENOMEM, "out of memory reading column %s", sqldb_column_name(s, i));
    if (n >= size)
        return cat_fail(c, -EBADMSG, "stored %s has %zu bytes, more than %zu",
                        sqldb_column_name(s, i), n, size - 1);
    memcpy(buf, t, n);
    buf[n] = '\0';
    /* Written before the catalog checked UTF-8: neither served as is nor skipped. */
    if (!wire_utf8_valid(buf, n, &n))
        return cat_fail(c, -EILSEQ, "stored %s is not valid UTF-8 (byte 0x%02x at offset %zu)",
                        sqldb_column_name(s, i), (unsigned char)buf[n], n);
    return 0;
}

/* An event's detail: free text, so a stored one that is not UTF-8 is escaped, not refused. */
static int cat_col_detail(struct catalog *c, struct sqldb_stmt *s, int i, char *buf, size_t size)
{
    size_t n;
    const char *t = sqldb_column_null(s, i) ? NULL : sqldb_column_text(s, i, &n);

    if (t == NULL) {
        buf[0] = '\0';
        return 0;
    }
    wire_utf8_escape(buf, size, t, n);
    return 0;
}

/* Names the row (its id, escaped) in the message of a failed read. */
static int cat_row_fail(struct catalog *c, int r, const char *what, struct sqldb_stmt *s)
{
    size_t n = 0;
    const char *id = sqldb_column_text(s, 0, &n);
    char esc[WIRE_ID_MAX + 1], prefix[WIRE_ID_MAX + 32];

    wire_utf8_escape(esc, sizeof(esc), id != NULL ? id : "", n);
    snprintf(prefix, sizeof(prefix), "%s '%s'", what, esc);
    return cat_prefix(c, r, prefix);
}

static int cat_read_segment(struct catalog *c, struct sqldb_stmt *s, struct catalog_segment *g)
{
    int r;

    if ((r = cat_col_text(c, s, 0, g->id, sizeof(g->id))) < 0 ||
        (r = cat_col_text(c, s, 1, g->uri, sizeof(g->uri))) < 0 ||
        (r = cat_col_text(c, s, 5, g->state, sizeof(g->state))) < 0 ||
        (r = cat_col_text(c, s, 9, g->table, sizeof(g->table))) < 0)
        return cat_row_fail(c, r, "segment", s);
    g->row_count = (uint64_t)sqldb_column_int64(s, 2);
    g->avg_row_size = (uint64_t)sqldb_column_int64(s, 3);
    g->replication = (unsigned)(int)sqldb_column_int64(s, 4);
    g->backoff_until_ms = sqldb_column_int64(s, 6);
    g->created_ms = sqldb_column_int64(s, 7);
    g->digest = (uint64_t)sqldb_column_int64(s, 8);
    g->mem_request_bytes = (uint64_t)sqldb_column_int64(s, 10);
    g->mem_limit_bytes = (uint64_t)sqldb_column_int64(s, 11);
    g->footprint_bytes = (uint64_t)sqldb_column_int64(s, 12);
    return 0;
}

static int cat_read_node(struct catalog *c, struct sqldb_stmt *s, struct catalog_node *n)
{
    int r;

    if ((r = cat_col_text(c, s, 0, n->id, sizeof(n->id))) < 0 ||
        (r = cat_col_text(c, s, 1, n->addr, sizeof(n->addr))) < 0 ||
        (r = cat_col_text(c, s, 2, n->state, sizeof(n->state))) < 0 ||
        (r = cat_col_text(c, s, 4, n->last_reason, sizeof(n->last_reason))) < 0 ||
        (r = cat_col_text(c, s, 7, n->drained_by, sizeof(n->drained_by))) < 0)
        return cat_row_fail(c, r, "node", s);
    n->last_seen_ms = sqldb_column_int64(s, 3);
    n->created_ms = sqldb_column_int64(s, 5);
    n->claim = (int)sqldb_column_int64(s, 6) != 0;
    return 0;
}

static int cat_read_assignment(struct catalog *c, struct sqldb_stmt *s, struct catalog_assignment *a)
{
    int r;

    if ((r = cat_col_text(c, s, 0, a->segment_id, sizeof(a->segment_id))) < 0 ||
        (r = cat_col_text(c, s, 1, a->node_id, sizeof(a->node_id))) < 0 ||
        (r = cat_col_text(c, s, 2, a->state, sizeof(a->state))) < 0)
        return r;
    a->updated_ms = sqldb_column_int64(s, 3);
    return 0;
}

static int cat_read_event(struct catalog *c, struct sqldb_stmt *s, struct catalog_event *e)
{
    int r;

    if ((r = cat_col_text(c, s, 2, e->segment_id, sizeof(e->segment_id))) < 0 ||
        (r = cat_col_text(c, s, 3, e->node_id, sizeof(e->node_id))) < 0 ||
        (r = cat_col_text(c, s, 4, e->kind, sizeof(e->kind))) < 0 ||
        (r = cat_col_text(c, s, 5, e->reason, sizeof(e->reason))) < 0 ||
        (r = cat_col_detail(c, s, 8, e->detail, sizeof(e->detail))) < 0)
        return r;
    e->id = (uint64_t)sqldb_column_int64(s, 0);
    e->ts_ms = sqldb_column_int64(s, 1);
    e->http_status = (int)sqldb_column_int64(s, 6);
    e->retry_after_ms = sqldb_column_int64(s, 7);
    e->count = (uint64_t)sqldb_column_int64(s, 9);
    e->last_ts_ms = sqldb_column_int64(s, 10);
    return 0;
}

/* ---- one call, one unit ---- */

/*
 * A call that runs several statements makes them one unit: its own
 * transaction outside catalog_begin, a savepoint inside it, so that a
 * failure halfway leaves the caller's transaction as it was before the call.
 */
static int cat_op_begin(struct catalog *c)
{
    return cat_step_done(c, c->stmt[c->in_txn ? ST_SAVEPOINT : ST_BEGIN], "begin");
}

static void cat_op_abort(struct catalog *c)
{
    if (sqldb_txn(c->db) == SQLDB_TXN_NONE) {
        /* SQLite has already rolled back everything, the caller's work too. */
        if (c->in_txn)
            c->txn_failed = true;
        return;
    }
    if (c->in_txn) {
        cat_run_quiet(c, ST_ROLLBACK_TO);
        cat_run_quiet(c, ST_RELEASE);
    } else {
        cat_run_quiet(c, ST_ROLLBACK);
    }
}

/* Ends the unit: commits (or releases) if r >= 0, rolls back otherwise. Returns r or the commit
 * error. */
static int cat_op_end(struct catalog *c, int r)
{
    if (r >= 0) {
        int rc = cat_run_quiet(c, c->in_txn ? ST_RELEASE : ST_COMMIT);
        if (rc == SQLDB_DONE)
            return r;
        r = cat_db_fail(c, rc, "commit");
    }
    cat_op_abort(c);
    return r;
}

/* ---- open, migrate, close ---- */

/* Runs a one-off statement (settings, migrations) and returns the first column of its first row. */
static int cat_query_int(struct catalog *c, const char *sql, int64_t *ret)
{
    struct sqldb_stmt *s = NULL;
    int rc, r = 0;

    rc = sqldb_prepare(c->db, sql, &s);
    if (rc < 0)
        return cat_db_fail(c, rc, sql);
    rc = sqldb_step(s);
    if (rc == SQLDB_ROW)
        *ret = sqldb_column_int64(s, 0);
    else if (rc == SQLDB_DONE)
        r = cat_fail(c, -EIO, "%s: returned no row", sql);
    else
        r = cat_db_fail(c, rc, sql);
    sqldb_finalize(s);
    return r;
}

static int cat_query_text(struct catalog *c, const char *sql, char *buf, size_t size)
{
    struct sqldb_stmt *s = NULL;
    int rc, r = 0;

    rc = sqldb_prepare(c->db, sql, &s);
    if (rc < 0)
        return cat_db_fail(c, rc, sql);
    rc = sqldb_step(s);
    if (rc == SQLDB_ROW)
        r = cat_col_text(c, s, 0, buf, size);
    else if (rc == SQLDB_DONE)
        r = cat_fail(c, -EIO, "%s: returned no row", sql);
    else
        r = cat_db_fail(c, rc, sql);
    sqldb_finalize(s);
    return r;
}

static int cat_exec(struct catalog *c, const char *sql)
{
    int r = sqldb_exec(c->db, sql);

    if (r < 0)
        return cat_fail(c, r, "%s", sqldb_errmsg(c->db));
    return 0;
}

/* Sets a pragma and reads it back: a pragma SQLite ignores must not go unnoticed. */
static int cat_pragma_int(struct catalog *c, const char *name, int64_t value)
{
    char sql[96];
    int64_t got = -1;
    int r;

    snprintf(sql, sizeof(sql), "PRAGMA %s = %lld", name, (long long)value);
    if ((r = cat_exec(c, sql)) < 0)
        return r;
    snprintf(sql, sizeof(sql), "PRAGMA %s", name);
    if ((r = cat_query_int(c, sql, &got)) < 0)
        return r;
    if (got != value)
        return cat_fail(c, -EIO, "PRAGMA %s = %lld did not take effect (it reads %lld)", name,
                        (long long)value, (long long)got);
    return 0;
}

static bool cat_pg(const struct catalog *c)
{
    return sqldb_kind(c->db) == SQLDB_POSTGRESQL;
}

/*
 * PostgreSQL has no user_version or application_id: a one-row table,
 * sluice_catalog, holds both (created with the schema, by migration 0 -> 1).
 * Its absence reads as version 0, application id 0.
 */
#define CAT_PG_META_EXISTS                                                                         \
    "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()"                          \
    " AND tablename = 'sluice_catalog'"
#define CAT_PG_META_CREATE                                                                         \
    "CREATE TABLE sluice_catalog (application_id INTEGER NOT NULL, user_version INTEGER NOT NULL,"  \
    " epoch INTEGER NOT NULL DEFAULT 0);"                                                          \
    "INSERT INTO sluice_catalog VALUES (1397506885, 0, 0);"

/* The schema version (PRAGMA user_version on SQLite). */
static int cat_version(struct catalog *c, int64_t *ret)
{
    int64_t meta = 0;
    int r;

    if (!cat_pg(c))
        return cat_query_int(c, "PRAGMA user_version", ret);
    if ((r = cat_query_int(c, CAT_PG_META_EXISTS, &meta)) < 0)
        return r;
    if (meta == 0) {
        *ret = 0;
        return 0;
    }
    return cat_query_int(c, "SELECT user_version FROM sluice_catalog", ret);
}

/*
 * Reads what tells a Sluice catalog from anything else: schema version,
 * application id, and how many schema objects exist.
 */
static int cat_identify(struct catalog *c, int64_t *version, int64_t *app_id, int64_t *objects)
{
    int r;

    if ((r = cat_version(c, version)) < 0)
        return r;
    if (!cat_pg(c)) {
        if ((r = cat_query_int(c, "PRAGMA application_id", app_id)) < 0 ||
            (r = cat_query_int(c, "SELECT count(*) FROM sqlite_schema", objects)) < 0)
            return r;
        return 0;
    }
    *app_id = 0;
    if (*version > 0 &&
        (r = cat_query_int(c, "SELECT application_id FROM sluice_catalog", app_id)) < 0)
        return r;
    return cat_query_int(c, "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()",
                         objects);
}

/* PostgreSQL: a commit must reach disk before it returns, as with SQLite's synchronous=FULL. */
static int cat_pg_settings(struct catalog *c, const char *shown)
{
    char sync[32] = "", fsync[32] = "";
    int r;

    if ((r = cat_query_text(c, "SHOW synchronous_commit", sync, sizeof(sync))) < 0 ||
        (r = cat_query_text(c, "SHOW fsync", fsync, sizeof(fsync))) < 0)
        return cat_prefix(c, r, shown);
    if (strcmp(fsync, "on") != 0)
        return cat_fail(c, -EIO,
                        "%s: the server runs with fsync = %s; a committed write would not"
                        " survive a crash, refusing to use it",
                        shown, fsync);
    if (strcmp(sync, "off") == 0 || strcmp(sync, "local") == 0)
        return cat_fail(c, -EIO, "%s: synchronous_commit = %s did not take the value on", shown,
                        sync);
    return 0;
}

/*
 * Opens the connection and applies the settings. The schema version and the
 * application id are checked first, before anything writes to the database, so
 * a database from a newer build or another program is left untouched.
 */
static int cat_connect(struct catalog *c, const char *path)
{
    char mode[16] = "", shown[256];
    int64_t version = 0, app_id = 0, objects = 0;
    int r;

    sqldb_redact(path, shown, sizeof(shown));
    if ((r = sqldb_open(path, &c->db, c->err, sizeof(c->err))) < 0)
        return r;
    if ((r = cat_identify(c, &version, &app_id, &objects)) < 0)
        return cat_prefix(c, r, shown);
    if (version > CATALOG_SCHEMA_VERSION)
        return cat_fail(c, -EPROTONOSUPPORT,
                        "%s: database schema version %lld is newer than version %d, the newest"
                        " this build knows; refusing to open it",
                        shown, (long long)version, CATALOG_SCHEMA_VERSION);
    if (version < 0 || (version == 0 && (app_id != 0 || objects != 0)) ||
        (version > 0 && app_id != CATALOG_APPLICATION_ID))
        return cat_fail(c, -EBADMSG,
                        "%s: not a Sluice catalog (user_version %lld, application_id %lld,"
                        " %lld schema objects)",
                        shown, (long long)version, (long long)app_id, (long long)objects);
    if (cat_pg(c))
        return cat_pg_settings(c, shown);

    if ((r = cat_pragma_int(c, "foreign_keys", 1)) < 0 ||
        (r = cat_pragma_int(c, "synchronous", 2 /* FULL */)) < 0 ||
        (r = cat_pragma_int(c, "busy_timeout", CATALOG_BUSY_TIMEOUT_MS)) < 0)
        return r;
    if ((r = cat_query_text(c, "PRAGMA journal_mode = WAL", mode, sizeof(mode))) < 0)
        return r;
    if (strcasecmp(mode, "wal") != 0)
        return cat_fail(c, -EIO, "%s: PRAGMA journal_mode = WAL did not take effect (it is %s)",
                        path, mode);
    return 0;
}

/* Takes the migration lock: SQLite's write lock; on PostgreSQL a transaction-level advisory lock. */
static int cat_migrate_begin(struct catalog *c)
{
    int r;

    if ((r = cat_exec(c, "BEGIN IMMEDIATE")) < 0 || !cat_pg(c))
        return r;
    return cat_exec(c, "SELECT pg_advisory_xact_lock(1397506885)");
}

/* Applies migrations until the schema is at target, one transaction each. */
static int cat_migrate(struct catalog *c, int target)
{
    for (;;) {
        char bump[64];
        int64_t v = 0;
        int r;

        if ((r = cat_migrate_begin(c)) < 0)
            goto fail;
        /* Read again under the write lock, in case another process migrated. */
        if ((r = cat_version(c, &v)) < 0)
            goto fail;
        if (v >= target) {
            cat_exec(c, "ROLLBACK");
            return 0;
        }
        if (v < 0 || v >= CATALOG_SCHEMA_VERSION) {
            r = cat_fail(c, -EPROTONOSUPPORT, "schema version %lld changed under us", (long long)v);
            goto fail;
        }
        snprintf(bump, sizeof(bump),
                 cat_pg(c) ? "UPDATE sluice_catalog SET user_version = %lld"
                           : "PRAGMA user_version = %lld",
                 (long long)v + 1);
        if ((v == 0 && cat_pg(c) && (r = cat_exec(c, CAT_PG_META_CREATE)) < 0) ||
            (r = cat_exec(c, catalog_migrations[v])) < 0 || (r = cat_exec(c, bump)) < 0 ||
            (r = cat_exec(c, "COMMIT")) < 0) {
            char what[64];

            snprintf(what, sizeof(what), "migration %lld -> %lld", (long long)v, (long long)v + 1);
            cat_prefix(c, r, what);
            goto fail;
        }
        log_debug("catalog_migrated", "from=%lld to=%lld", (long long)v, (long long)v + 1);
        continue;
    fail:
        if (sqldb_txn(c->db) != SQLDB_TXN_NONE)
            (void)sqldb_exec(c->db, "ROLLBACK");
        return r;
    }
}

static int cat_prepare_all(struct catalog *c)
{
    for (int i = 0; i < ST_COUNT_; i++) {
        int rc;

        if (i >= ST_EV_RESERVE && !cat_pg(c))
            continue; /* PostgreSQL's SQL, and used there only */
        rc = sqldb_prepare(c->db, catalog_sql[i], &c->stmt[i]);
        if (rc < 0)
            return cat_db_fail(c, rc, catalog_sql[i]);
    }
    if (cat_pg(c))
        cat_rows_init(c);
    return 0;
}

/* Frees c and its connection; the transaction, if any, is rolled back by the server. */
static void cat_free(struct catalog *c)
{
    for (int i = 0; i < ST_COUNT_; i++)
        sqldb_finalize(c->stmt[i]);
    sqldb_close(c->db);
    cat_rows_free(c);
    free(c);
}

static void cat_copy_err(const struct catalog *c, char *err, size_t err_len)
{
    if (err != NULL && err_len > 0)
        snprintf(err, err_len, "%s", c->err);
}

int catalog_open_with(const char *path, const struct catalog_options *opts, struct catalog **ret,
                      char *err, size_t err_len)
{
    struct catalog *c = xcalloc(1, sizeof(*c));
    uint64_t keep =
        opts != NULL && opts->events_keep > 0 ? opts->events_keep : CATALOG_EVENTS_KEEP_DEFAULT;
    int r;

    assert(ret != NULL);
    if (path == NULL || path[0] == '\0') {
        r = cat_fail(c, -EINVAL, "catalog path: empty");
        goto fail;
    }
    if (keep > INT64_MAX)
        keep = INT64_MAX;
    c->events_keep = keep;
    c->trim_every = keep < CATALOG_TRIM_EVERY ? (unsigned)keep : CATALOG_TRIM_EVERY;
    if ((r = cat_connect(c, path)) < 0 || (r = cat_migrate(c, CATALOG_SCHEMA_VERSION)) < 0 ||
        (r = cat_prepare_all(c)) < 0 || (r = catalog_trim_events(c)) < 0)
        goto fail;
    c->err[0] = '\0';
    *ret = c;
    return 0;
fail:
    cat_copy_err(c, err, err_len);
    cat_free(c);
    return r;
}

int catalog_open(const char *path, struct catalog **ret, char *err, size_t err_len)
{
    return catalog_open_with(path, NULL, ret, err, err_len);
}

int catalog_create_at_version(const char *path, int version, char *err, size_t err_len)
{
    struct catalog *c = xcalloc(1, sizeof(*c));
    int64_t v = 0;
    int r;

    if (path == NULL || path[0] == '\0') {
        r = cat_fail(c, -EINVAL, "catalog path: empty");
        goto out;
    }
    if (version < 1 || version > CATALOG_SCHEMA_VERSION) {
        r = cat_fail(c, -EINVAL, "version %d is outside 1..%d", version, CATALOG_SCHEMA_VERSION);
        goto out;
    }
    if ((r = cat_connect(c, path)) < 0 || (r = cat_migrate(c, version)) < 0 ||
        (r = cat_version(c, &v)) < 0)
        goto out;
    if (v != version) {
        char shown[256];

        sqldb_redact(path, shown, sizeof(shown));
        r = cat_fail(c, -EEXIST, "%s: already at schema version %lld, not %d", shown,
                     (long long)v, version);
    }
out:
    if (r < 0)
        cat_copy_err(c, err, err_len);
    cat_free(c);
    return r;
}

void catalog_close(struct catalog *c)
{
    if (c == NULL)
        return;
    assert(!c->iterating);
    if (c->in_txn && sqldb_txn(c->db) != SQLDB_TXN_NONE)
        cat_run_quiet(c, ST_ROLLBACK);
    cat_free(c);
}

const char *catalog_errmsg(const struct catalog *c)
{
    return c != NULL ? c->err : "no catalog";
}

int catalog_schema_version(struct catalog *c)
{
    int64_t v = 0;
    int r;

    if ((r = cat_enter(c)) < 0 || (r = cat_version(c, &v)) < 0)
        return r;
    return (int)v;
}

int catalog_settings(struct catalog *c, struct catalog_settings *ret)
{
    struct catalog_settings s = {0};
    int64_t sync = 0, fk = 0, busy = 0;
    int r;

    if ((r = cat_enter(c)) < 0)
        return r;
    if (cat_pg(c)) {
        char psync[32] = "", timeout[32] = "";

        /* PostgreSQL's equivalents: its write-ahead log; synchronous_commit on is FULL;
         * foreign keys are always enforced; lock_timeout stands for busy_timeout. */
        if ((r = cat_query_text(c, "SHOW synchronous_commit", psync, sizeof(psync))) < 0 ||
            (r = cat_query_text(c, "SHOW lock_timeout", timeout, sizeof(timeout))) < 0)
            return r;
        snprintf(s.journal_mode, sizeof(s.journal_mode), "wal");
        s.synchronous = strcmp(psync, "off") != 0 && strcmp(psync, "local") != 0 ? 2 : 0;
        s.foreign_keys = 1;
        s.busy_timeout_ms = (int)strtol(timeout, NULL, 10) * (strstr(timeout, "ms") ? 1 : 1000);
        *ret = s;
        return 0;
    }
    if ((r = cat_query_text(c, "PRAGMA journal_mode", s.journal_mode, sizeof(s.journal_mode))) <
            0 ||
        (r = cat_query_int(c, "PRAGMA synchronous", &sync)) < 0 ||
        (r = cat_query_int(c, "PRAGMA foreign_keys", &fk)) < 0 ||
        (r = cat_query_int(c, "PRAGMA busy_timeout", &busy)) < 0)
        return r;
    s.synchronous = (int)sync;
    s.foreign_keys = (int)fk;
    s.busy_timeout_ms = (int)busy;
    *ret = s;
    return 0;
}

/* ---- transactions ---- */

int catalog_begin(struct catalog *c)
{
    int r;

    if ((r = cat_enter(c)) < 0)
        return r;
    if (c->in_txn)
        return cat_fail(c, -EALREADY, "begin: a transaction is already open");
    if ((r = cat_step_done(c, c->stmt[ST_BEGIN], "begin")) < 0)
        return r;
    c->in_txn = true;
    c->group = false;
    c->txn_failed = false;
    return 0;
}

int catalog_begin_group(struct catalog *c)
{
    int r;

    if ((r = catalog_begin(c)) < 0)
        return r;
    c->group = true;
    return 0;
}

int catalog_commit(struct catalog *c)
{
    int rc, r = 0;

    assert(c != NULL);
    if (c->iterating)
        return cat_fail(c, -EBUSY, "catalog called from inside a foreach callback");
    if (!c->in_txn)
        return cat_fail(c, -EINVAL, "commit: no transaction is open");
    if (!c->txn_failed && (rc = cat_rows_flush(c)) < 0) {
        r = cat_fail(c, rc, "commit: %s; nothing was committed", sqldb_errmsg(c->db));
    } else if (c->txn_failed) {
        r = cat_fail(c, -EIO,
                     "commit: the transaction was aborted by an earlier storage error;"
                     " nothing was committed");
    } else if (sqldb_txn(c->db) != SQLDB_TXN_ACTIVE) {
        /* PostgreSQL aborted it (COMMIT would quietly roll it back) or the connection broke. */
        r = cat_fail(c, -EIO, "commit: the transaction was aborted by the database: %s;"
                              " nothing was committed", sqldb_errmsg(c->db));
    } else if ((rc = cat_run_quiet(c, ST_COMMIT)) != SQLDB_DONE) {
        r = cat_fail(c, rc < 0 ? rc : -EIO, "commit: %s; nothing was committed",
                     sqldb_errmsg(c->db));
    }
    if (sqldb_txn(c->db) != SQLDB_TXN_NONE)
        cat_run_quiet(c, ST_ROLLBACK);
    c->in_txn = false;
    c->group = false;
    c->txn_failed = false;
    cat_rows_discard(c);
    return r;
}

void catalog_rollback(struct catalog *c)
{
    if (c == NULL || !c->in_txn)
        return;
    if (c->iterating) {
        cat_fail(c, -EBUSY, "catalog called from inside a foreach callback");
        return;
    }
    if (sqldb_txn(c->db) != SQLDB_TXN_NONE)
        cat_run_quiet(c, ST_ROLLBACK);
    c->in_txn = false;
    c->group = false;
    c->txn_failed = false;
    cat_rows_discard(c);
}

/* ---- segments ---- */

/* A table name by the wire's rule (the buffer may be a struct field: read at most max + 1). */
static int cat_check_table(struct catalog *c, const char *table)
{
    struct wire_error err;

    if (table == NULL)
        return cat_fail(c, -EINVAL, "segment table: missing");
    if (strnlen(table, WIRE_TABLE_MAX + 1) > WIRE_TABLE_MAX)
        return cat_fail(c, -EINVAL, "segment table: longer than %d bytes", WIRE_TABLE_MAX);
    if (wire_check_table("segment table", table, &err) < 0)
        return cat_fail(c, -EINVAL, "%s", err.message);
    return 0;
}

/* Declared memory by the wire's rule. */
static int cat_check_mem(struct catalog *c, uint64_t request, uint64_t limit)
{
    struct wire_error err;

    if (wire_check_mem("segment ", request, limit, &err) < 0)
        return cat_fail(c, -EINVAL, "%s", err.message);
    return 0;
}

/* The table a segment is stored under: "" is the default table. */
static const char *cat_table(const struct catalog_segment *s)
{
    return s->table[0] != '\0' ? s->table : WIRE_TABLE_DEFAULT;
}

static int cat_check_segment(struct catalog *c, const struct catalog_segment *s)
{
    int r;

    if ((r = cat_check_id(c, "segment id", s->id)) < 0 ||
        (r = cat_check_chars(c, "segment uri", s->uri, 1, WIRE_URI_MAX, cat_text_char,
                             "printable bytes")) < 0 ||
        (r = cat_check_state(c, "segment state", s->state, catalog_segment_states)) < 0 ||
        (r = cat_check_ms(c, "segment backoff_until_ms", s->backoff_until_ms)) < 0 ||
        (r = cat_check_ms(c, "segment created_ms", s->created_ms)) < 0)
        return r;
    if (s->row_count < 1 || s->row_count > WIRE_ROW_COUNT_MAX)
        return cat_fail(c, -EINVAL, "segment row_count: %llu is outside 1..%llu",
                        (unsigned long long)s->row_count, (unsigned long long)WIRE_ROW_COUNT_MAX);
    if (s->avg_row_size < 1 || s->avg_row_size > WIRE_ROW_SIZE_MAX)
        return cat_fail(c, -EINVAL, "segment avg_row_size: %llu is outside 1..%llu",
                        (unsigned long long)s->avg_row_size, (unsigned long long)WIRE_ROW_SIZE_MAX);
    if (s->replication < 1 || s->replication > CATALOG_REPLICATION_MAX)
        return cat_fail(c, -EINVAL, "segment replication: %u is outside 1..%d", s->replication,
                        CATALOG_REPLICATION_MAX);
    if ((r = cat_check_mem(c, s->mem_request_bytes, s->mem_limit_bytes)) < 0)
        return r;
    if (s->footprint_bytes > INT64_MAX)
        return cat_fail(c, -EINVAL, "segment footprint_bytes: %llu is out of range",
                        (unsigned long long)s->footprint_bytes);
    if (s->table[0] != '\0')
        return cat_check_table(c, s->table);
    return 0;
}

/* The existing row with s's id: same registration (0) or a conflicting one (-EEXIST)? */
static int cat_segment_compare(struct catalog *c, const struct catalog_segment *s)
{
    struct sqldb_stmt *q = c->stmt[ST_SEG_GET];
    const char *field = NULL;
    int rc, r = 0;

    cat_bind_text(q, 1, s->id);
    rc = sqldb_step(q);
    if (rc == SQLDB_ROW)
        r = cat_read_segment(c, q, &c->seg);
    else if (rc == SQLDB_DONE)
        r = cat_fail(c, -EIO, "segment '%s' neither inserted nor found", s->id);
    else
        r = cat_db_fail(c, rc, "get segment");
    cat_done(q);
    if (r < 0)
        return r;
    if (strcmp(c->seg.uri, s->uri) != 0)
        field = "uri";
    else if (c->seg.row_count != s->row_count)
        field = "row_count";
    else if (c->seg.avg_row_size != s->avg_row_size)
        field = "avg_row_size";
    else if (c->seg.replication != s->replication)
        field = "replication";
    else if (c->seg.digest != s->digest)
        field = "digest";
    else if (strcmp(c->seg.table, cat_table(s)) != 0)
        field = "table";
    if (field != NULL)
        return cat_fail(c, -EEXIST, "segment '%s' already exists with a different %s", s->id,
                        field);
    return 0;
}

/*
 * Where a row's values go: a statement's parameters (value i is parameter
 * i + 1), or a group's rows (b not NULL; value i is column base + i).
 */
struct cat_sink {
    struct sqldb_stmt *q;
    struct cat_rows *b;
    int base;
};

static void cat_sink_text(struct cat_sink *k, int i, const char *v)
{
    if (k->b != NULL)
        cat_rows_text(k->b, k->base + i, v);
    else
        cat_bind_text(k->q, i + 1, v);
}

static void cat_sink_int(struct cat_sink *k, int i, int64_t v)
{
    if (k->b != NULL)
        cat_rows_int(k->b, k->base + i, v);
    else
        sqldb_bind_int64(k->q, i + 1, v);
}

/* "" is stored as NULL. */
static void cat_sink_opt_text(struct cat_sink *k, int i, const char *v)
{
    if (k->b != NULL)
        cat_rows_opt_text(k->b, k->base + i, v);
    else
        cat_bind_opt_text(k->q, i + 1, v);
}

/* 0 is stored as NULL. */
static void cat_sink_opt_int(struct cat_sink *k, int i, int64_t v)
{
    if (k->b != NULL)
        cat_rows_opt_int(k->b, k->base + i, v);
    else
        cat_bind_opt_int(k->q, i + 1, v);
}

/* A segment's values in SEG_COLS order. */
static void cat_segment_values(const struct catalog_segment *s, struct cat_sink *k)
{
    cat_sink_text(k, 0, s->id);
    cat_sink_text(k, 1, s->uri);
    cat_sink_int(k, 2, (int64_t)s->row_count);
    cat_sink_int(k, 3, (int64_t)s->avg_row_size);
    cat_sink_int(k, 4, s->replication);
    cat_sink_text(k, 5, s->state);
    cat_sink_int(k, 6, s->backoff_until_ms);
    cat_sink_int(k, 7, s->created_ms);
    cat_sink_int(k, 8, (int64_t)s->digest);
    cat_sink_text(k, 9, cat_table(s));
    cat_sink_int(k, 10, (int64_t)s->mem_request_bytes);
    cat_sink_int(k, 11, (int64_t)s->mem_limit_bytes);
    cat_sink_int(k, 12, (int64_t)s->footprint_bytes);
}

int catalog_put_segment(struct catalog *c, const struct catalog_segment *s)
{
    struct sqldb_stmt *q = c->stmt[ST_SEG_INSERT];
    bool unit;
    int r;

    if ((r = cat_enter_rows(c)) < 0 || (r = cat_check_segment(c, s)) < 0)
        return r;
    /* In a group it stands or falls with the group: no savepoint, no answer awaited. */
    if (cat_deferred(c)) {
        struct cat_sink rows = {NULL, &c->rows[CAT_ROWS_SEG], 0};

        if ((r = cat_rows_room(c, CAT_ROWS_SEG, s->id)) < 0)
            return r;
        cat_segment_values(s, &rows);
        return 0;
    }
    /*
     * SQLite undoes a failed statement alone, and a conflict changes
     * nothing: inside a group (whose failure the caller handles as a
     * whole) the savepoint is not needed.
     */
    unit = !c->group;
    if ((r = cat_rows_flush(c)) < 0 || (unit && (r = cat_op_begin(c)) < 0))
        return r;
    cat_segment_values(s, &(struct cat_sink){q, NULL, 0});
    r = cat_step_done(c, q, "insert segment");
    if (r == 0 && sqldb_changes(c->db) == 0)
        r = cat_segment_compare(c, s);
    return unit ? cat_op_end(c, r) : r;
}

int catalog_get_segment(struct catalog *c, const char *id, struct catalog_segment *ret)
{
    struct sqldb_stmt *q = c->stmt[ST_SEG_GET];
    int rc, r;

    if ((r = cat_enter(c)) < 0 || (r = cat_check_id(c, "segment id", id)) < 0)
        return r;
    cat_bind_text(q, 1, id);
    rc = sqldb_step(q);
    if (rc == SQLDB_ROW)
        r = cat_read_segment(c, q, &c->seg);
    else if (rc == SQLDB_DONE)
        r = cat_fail(c, -ENOENT, "segment '%s' not found", id);
    else
        r = cat_db_fail(c, rc, "get segment");
    cat_done(q);
    if (r == 0)
        *ret = c->seg;
    return r;
}

int catalog_set_segment_state(struct catalog *c, const char *id, const char *state,
                              int64_t backoff_until_ms)
{
    struct sqldb_stmt *q = c->stmt[ST_SEG_SET_STATE];
    int r;

    if ((r = cat_enter_rows(c)) < 0 || (r = cat_check_id(c, "segment id", id)) < 0 ||
        (r = cat_check_state(c, "segment state", state, catalog_segment_states)) < 0 ||
        (r = cat_check_ms(c, "backoff_until_ms", backoff_until_ms)) < 0)
        return r;
    if (cat_deferred(c)) {
        struct cat_rows *b = &c->rows[CAT_ROWS_STATE];

        if ((r = cat_rows_room(c, CAT_ROWS_STATE, id)) < 0)
            return r;
        cat_rows_text(b, 0, id);
        cat_rows_text(b, 1, state);
        cat_rows_int(b, 2, backoff_until_ms);
        return 0;
    }
    if ((r = cat_rows_flush(c)) < 0)
        return r;
    cat_bind_text(q, 1, id);
    cat_bind_text(q, 2, state);
    sqldb_bind_int64(q, 3, backoff_until_ms);
    if ((r = cat_write(c, q, "set segment state")) <= 0)
        return r;
    return cat_fail(c, -ENOENT, "segment '%s' not found", id);
}

int catalog_set_segment_file(struct catalog *c, const char *id, uint64_t row_count,
                             uint64_t avg_row_size, uint64_t digest, const char *state)
{
    struct sqldb_stmt *q = c->stmt[ST_SEG_SET_FILE];
    int r;

    if ((r = cat_enter(c)) < 0 || (r = cat_check_id(c, "segment id", id)) < 0 ||
        (state != NULL &&
         (r = cat_check_state(c, "segment state", state, catalog_segment_states)) < 0))
        return r;
    if (row_count < 1 || row_count > WIRE_ROW_COUNT_MAX)
        return cat_fail(c, -EINVAL, "segment row_count: %llu is outside 1..%llu",
                        (unsigned long long)row_count, (unsigned long long)WIRE_ROW_COUNT_MAX);
    if (avg_row_size < 1 || avg_row_size > WIRE_ROW_SIZE_MAX)
        return cat_fail(c, -EINVAL, "segment avg_row_size: %llu is outside 1..%llu",
                        (unsigned long long)avg_row_size, (unsigned long long)WIRE_ROW_SIZE_MAX);
    cat_bind_text(q, 1, id);
    sqldb_bind_int64(q, 2, (int64_t)row_count);
    sqldb_bind_int64(q, 3, (int64_t)avg_row_size);
    sqldb_bind_int64(q, 4, (int64_t)digest);
    if (state != NULL)
        cat_bind_text(q, 5, state);
    else
        sqldb_bind_null(q, 5);
    if ((r = cat_write(c, q, "set segment file")) <= 0)
        return r;
    return cat_fail(c, -ENOENT, "segment '%s' not found", id);
}

int catalog_set_segment_table(struct catalog *c, const char *id, const char *table)
{
    struct sqldb_stmt *q = c->stmt[ST_SEG_SET_TABLE];
    int r;

    if ((r = cat_enter(c)) < 0 || (r = cat_check_id(c, "segment id", id)) < 0 ||
        (r = cat_check_table(c, table)) < 0)
        return r;
    cat_bind_text(q, 1, id);
    cat_bind_text(q, 2, table);
    if ((r = cat_write(c, q, "set segment table")) <= 0)
        return r;
    return cat_fail(c, -ENOENT, "segment '%s' not found", id);
}

int catalog_set_segment_mem(struct catalog *c, const char *id, uint64_t request, uint64_t limit)
{
    struct sqldb_stmt *q = c->stmt[ST_SEG_SET_MEM];
    int r;

    if ((r = cat_enter(c)) < 0 || (r = cat_check_id(c, "segment id", id)) < 0 ||
        (r = cat_check_mem(c, request, limit)) < 0)
        return r;
    cat_bind_text(q, 1, id);
    sqldb_bind_int64(q, 2, (int64_t)request);
    sqldb_bind_int64(q, 3, (int64_t)limit);
    if ((r = cat_write(c, q, "set segment mem")) <= 0)
        return r;
    return cat_fail(c, -ENOENT, "segment '%s' not found", id);
}

int catalog_set_segment_footprint(struct catalog *c, const char *id, uint64_t bytes)
{
    struct sqldb_stmt *q = c->stmt[ST_SEG_SET_FOOTPRINT];
    int r;

    if ((r = cat_enter_rows(c)) < 0 || (r = cat_check_id(c, "segment id", id)) < 0)
        return r;
    if (bytes > INT64_MAX)
        return cat_fail(c, -EINVAL, "segment footprint_bytes: %llu is out of range",
                        (unsigned long long)bytes);
    if (cat_deferred(c)) {
        if ((r = cat_rows_room(c, CAT_ROWS_FOOT, id)) < 0)
            return r;
        cat_rows_text(&c->rows[CAT_ROWS_FOOT], 0, id);
        cat_rows_int(&c->rows[CAT_ROWS_FOOT], 1, (int64_t)bytes);
        return 0;
    }
    if ((r = cat_rows_flush(c)) < 0)
        return r;
    cat_bind_text(q, 1, id);
    sqldb_bind_int64(q, 2, (int64_t)bytes);
    if ((r = cat_write(c, q, "set segment footprint")) <= 0)
        return r;
    return cat_fail(c, -ENOENT, "segment '%s' not found", id);
}

int catalog_delete_segment(struct catalog *c, const char *id)
{
    struct sqldb_stmt *q = c->stmt[ST_SEG_DELETE];
    int r;

    if ((r = cat_enter(c)) < 0 || (r = cat_check_id(c, "segment id", id)) < 0)
        return r;
    cat_bind_text(q, 1, id);
    if ((r = cat_write(c, q, "delete segment")) <= 0)
        return r;
    return cat_fail(c, -ENOENT, "segment '%s' not found", id);
}

int catalog_count_segments(struct catalog *c, const char *state, uint64_t *ret)
{
    struct sqldb_stmt *q;
    uint64_t n = 0;
    int rc, r;

    if ((r = cat_enter(c)) < 0)
        return r;
    if (state != NULL &&
        (r = cat_check_state(c, "segment state", state, catalog_segment_states)) < 0)
        return r;
    q = c->stmt[state != NULL ? ST_SEG_COUNT_STATE : ST_SEG_COUNT];
    if (state != NULL)
        cat_bind_text(q, 1, state);
    rc = sqldb_step(q);
    if (rc == SQLDB_ROW)
        n = (uint64_t)sqldb_column_int64(q, 0);
    else
        r = cat_db_fail(c, rc, "count segments");
    cat_done(q);
    if (r == 0)
        *ret = n;
    return r;
}

int catalog_foreach_segment(struct catalog *c, const char *state,
                            int (*cb)(const struct catalog_segment *s, void *arg), void *arg)
{
    struct sqldb_stmt *q;
    int rc, r;

    assert(cb != NULL);
    if ((r = cat_enter(c)) < 0)
        return r;
    if (state != NULL &&
        (r = cat_check_state(c, "segment state", state, catalog_segment_states)) < 0)
        return r;
    q = c->stmt[state != NULL ? ST_SEG_BY_STATE : ST_SEG_ALL];
    if (state != NULL)
        cat_bind_text(q, 1, state);
    c->iterating = true;
    while ((rc = sqldb_step(q)) == SQLDB_ROW) {
        if ((r = cat_read_segment(c, q, &c->seg)) != 0 || (r = cb(&c->seg, arg)) != 0)
            break;
    }
    c->iterating = false;
    if (r == 0 && rc != SQLDB_DONE)
        r = cat_db_fail(c, rc, "list segments");
    cat_done(q);
    return r;
}

/* ---- nodes ---- */

int catalog_put_node(struct catalog *c, const struct catalog_node *n)
{
    struct sqldb_stmt *q = c->stmt[ST_NODE_UPSERT];
    int r;

    if ((r = cat_enter(c)) < 0 || (r = cat_check_id(c, "node id", n->id)) < 0 ||
        (r = cat_check_chars(c, "node addr", n->addr, 1, CATALOG_ADDR_MAX, cat_graph_char,
                             "printable bytes other than space")) < 0 ||
        (r = cat_check_state(c, "node state", n->state, catalog_node_states)) < 0 ||
        (r = cat_check_chars(c, "node last_reason", n->last_reason, 0, CATALOG_REASON_MAX,
                             cat_reason_char, "[A-Za-z0-9._-]")) < 0 ||
        (r = cat_check_state(c, "node drained_by", n->drained_by, catalog_drainers)) < 0 ||
        (r = cat_check_ms(c, "node last_seen_ms", n->last_seen_ms)) < 0 ||
        (r = cat_check_ms(c, "node created_ms", n->created_ms)) < 0)
        return r;
    cat_bind_text(q, 1, n->id);
    cat_bind_text(q, 2, n->addr);
    cat_bind_text(q, 3, n->state);
    sqldb_bind_int64(q, 4, n->last_seen_ms);
    cat_bind_opt_text(q, 5, n->last_reason);
    sqldb_bind_int64(q, 6, n->created_ms);
    sqldb_bind_int64(q, 7, n->claim ? 1 : 0);
    cat_bind_opt_text(q, 8, n->drained_by);
    r = cat_write(c, q, "put node");
    return r < 0 ? r : 0;
}

int catalog_get_node(struct catalog *c, const char *id, struct catalog_node *ret)
{
    struct sqldb_stmt *q = c->stmt[ST_NODE_GET];
    int rc, r;

    if ((r = cat_enter(c)) < 0 || (r = cat_check_id(c, "node id", id)) < 0)
        return r;
    cat_bind_text(q, 1, id);
    rc = sqldb_step(q);
    if (rc == SQLDB_ROW)
        r = cat_read_node(c, q, &c->node);
    else if (rc == SQLDB_DONE)
        r = cat_fail(c, -ENOENT, "node '%s' not found", id);
    else
        r = cat_db_fail(c, rc, "get node");
    cat_done(q);
    if (r == 0)
        *ret = c->node;
    return r;
}

int catalog_set_node_state(struct catalog *c, const char *id, const char *state,
                           const char *drained_by)
{
    struct sqldb_stmt *q = c->stmt[ST_NODE_SET_STATE];
    int r;

    if (drained_by == NULL)
        drained_by = "";
    if ((r = cat_enter(c)) < 0 || (r = cat_check_id(c, "node id", id)) < 0 ||
        (r = cat_check_state(c, "node state", state, catalog_node_states)) < 0 ||
        (r = cat_check_state(c, "drained_by", drained_by, catalog_drainers)) < 0)
        return r;
    cat_bind_text(q, 1, id);
    cat_bind_text(q, 2, state);
    cat_bind_opt_text(q, 3, drained_by);
    if ((r = cat_write(c, q, "set node state")) <= 0)
        return r;
    return cat_fail(c, -ENOENT, "node '%s' not found", id);
}

int catalog_delete_node(struct catalog *c, const char *id)
{
    struct sqldb_stmt *q = c->stmt[ST_NODE_DELETE];
    int r;

    if ((r = cat_enter(c)) < 0 || (r = cat_check_id(c, "node id", id)) < 0)
        return r;
    cat_bind_text(q, 1, id);
    if ((r = cat_write(c, q, "delete node")) <= 0)
        return r;
    return cat_fail(c, -ENOENT, "node '%s' not found", id);
}

int catalog_foreach_node(struct catalog *c, int (*cb)(const struct catalog_node *n, void *arg),
                         void *arg)
{
    struct sqldb_stmt *q = c->stmt[ST_NODE_ALL];
    int rc, r;

    assert(cb != NULL);
    if ((r = cat_enter(c)) < 0)
        return r;
    c->iterating = true;
    while ((rc = sqldb_step(q)) == SQLDB_ROW) {
        if ((r = cat_read_node(c, q, &c->node)) != 0 || (r = cb(&c->node, arg)) != 0)
            break;
    }
    c->iterating = false;
    if (r == 0 && rc != SQLDB_DONE)
        r = cat_db_fail(c, rc, "list nodes");
    cat_done(q);
    return r;
}

/* ---- assignments ---- */

/* Whether the row named id exists, through ST_SEG_EXISTS or ST_NODE_EXISTS. */
static int cat_exists(struct catalog *c, enum catalog_stmt i, const char *id, bool *ret)
{
    struct sqldb_stmt *q = c->stmt[i];
    int rc, r = 0;

    cat_bind_text(q, 1, id);
    rc = sqldb_step(q);
    if (rc == SQLDB_ROW || rc == SQLDB_DONE)
        *ret = rc == SQLDB_ROW;
    else
        r = cat_db_fail(c, rc, "lookup");
    cat_done(q);
    return r;
}

int catalog_put_assignment(struct catalog *c, const char *segment_id, const char *node_id,
                           const char *state, int64_t now_ms)
{
    struct sqldb_stmt *q = c->stmt[ST_ASG_UPSERT];
    bool seg = false, node = false, fk;
    /* A failed statement aborts a PostgreSQL transaction: fence it with a savepoint there
     * (a group, which stands or falls as a whole, needs none). */
    bool deferred = cat_deferred(c);
    bool unit = cat_pg(c) && c->in_txn && !deferred;
    int rc, r;

    if ((r = cat_enter_rows(c)) < 0 || (r = cat_check_id(c, "segment id", segment_id)) < 0 ||
        (r = cat_check_id(c, "node id", node_id)) < 0 ||
        (r = cat_check_state(c, "assignment state", state, catalog_assignment_states)) < 0 ||
        (r = cat_check_ms(c, "now_ms", now_ms)) < 0)
        return r;
    if (deferred) {
        struct cat_rows *b = &c->rows[CAT_ROWS_ASG];
        char key[2 * WIRE_ID_MAX + 2];

        snprintf(key, sizeof(key), "%s/%s", segment_id, node_id); /* '/' is in no id */
        if ((r = cat_rows_room(c, CAT_ROWS_ASG, key)) < 0)
            return r;
        cat_rows_text(b, 0, segment_id);
        cat_rows_text(b, 1, node_id);
        cat_rows_text(b, 2, state);
        cat_rows_int(b, 3, now_ms);
        return 0;
    }
    if ((r = cat_rows_flush(c)) < 0 || (unit && (r = cat_op_begin(c)) < 0))
        return r;
    cat_bind_text(q, 1, segment_id);
    cat_bind_text(q, 2, node_id);
    cat_bind_text(q, 3, state);
    sqldb_bind_int64(q, 4, now_ms);
    rc = sqldb_step(q);
    cat_done(q);
    fk = rc < 0 && sqldb_error_foreign_key(c->db);
    r = rc == SQLDB_DONE ? 0 : cat_db_fail(c, rc, "put assignment");
    if (unit)
        r = cat_op_end(c, r);
    if (!fk)
        return r;
    /* The statement was undone; say which side is missing. */
    if ((r = cat_exists(c, ST_SEG_EXISTS, segment_id, &seg)) < 0 ||
        (r = cat_exists(c, ST_NODE_EXISTS, node_id, &node)) < 0)
        return r;
    if (!seg)
        return cat_fail(c, -ENOENT, "assignment: segment '%s' not found", segment_id);
    if (!node)
        return cat_fail(c, -ENOENT, "assignment: node '%s' not found", node_id);
    return cat_fail(c, -EINVAL, "put assignment: FOREIGN KEY constraint failed");
}

int catalog_delete_assignment(struct catalog *c, const char *segment_id, const char *node_id)
{
    struct sqldb_stmt *q = c->stmt[ST_ASG_DELETE];
    int r;

    if ((r = cat_enter(c)) < 0 || (r = cat_check_id(c, "segment id", segment_id)) < 0 ||
        (r = cat_check_id(c, "node id", node_id)) < 0)
        return r;
    cat_bind_text(q, 1, segment_id);
    cat_bind_text(q, 2, node_id);
    if ((r = cat_write(c, q, "delete assignment")) <= 0)
        return r;
    return cat_fail(c, -ENOENT, "assignment of '%s' to '%s' not found", segment_id, node_id);
}

int catalog_foreach_assignment(struct catalog *c, const char *segment_id, const char *node_id,
                               int (*cb)(const struct catalog_assignment *a, void *arg), void *arg)
{
    enum catalog_stmt i;
    struct sqldb_stmt *q;
    int rc, r;

    assert(cb != NULL);
    if ((r = cat_enter(c)) < 0)
        return r;
    if ((segment_id != NULL && (r = cat_check_id(c, "segment id", segment_id)) < 0) ||
        (node_id != NULL && (r = cat_check_id(c, "node id", node_id)) < 0))
        return r;
    if (segment_id != NULL && node_id != NULL)
        i = ST_ASG_BY_BOTH;
    else if (segment_id != NULL)
        i = ST_ASG_BY_SEG;
    else if (node_id != NULL)
        i = ST_ASG_BY_NODE;
    else
        i = ST_ASG_ALL;
    q = c->stmt[i];
    if (i == ST_ASG_BY_BOTH) {
        cat_bind_text(q, 1, segment_id);
        cat_bind_text(q, 2, node_id);
    } else if (i != ST_ASG_ALL) {
        cat_bind_text(q, 1, segment_id != NULL ? segment_id : node_id);
    }
    c->iterating = true;
    while ((rc = sqldb_step(q)) == SQLDB_ROW) {
        if ((r = cat_read_assignment(c, q, &c->asg)) != 0 || (r = cb(&c->asg, arg)) != 0)
            break;
    }
    c->iterating = false;
    if (r == 0 && rc != SQLDB_DONE)
        r = cat_db_fail(c, rc, "list assignments");
    cat_done(q);
    return r;
}

/* ---- events ---- */

static int cat_check_event(struct catalog *c, const struct catalog_event *e)
{
    int r;

    if ((r = cat_check_ms(c, "event ts_ms", e->ts_ms)) < 0 ||
        (r = cat_check_opt_id(c, "event segment_id", e->segment_id)) < 0 ||
        (r = cat_check_opt_id(c, "event node_id", e->node_id)) < 0 ||
        (r = cat_check_chars(c, "event kind", e->kind, 1, CATALOG_KIND_MAX, cat_kind_char,
                             "[a-z_]")) < 0 ||
        (r = cat_check_chars(c, "event reason", e->reason, 0, CATALOG_REASON_MAX, cat_reason_char,
                             "[A-Za-z0-9._-]")) < 0 ||
        (r = cat_check_chars(c, "event detail", e->detail, 0, WIRE_DETAIL_MAX, cat_any_char,
                             "non-NUL bytes")) < 0 ||
        (r = cat_check_ms(c, "event retry_after_ms", e->retry_after_ms)) < 0 ||
        (r = cat_check_ms(c, "event last_ts_ms", e->last_ts_ms)) < 0)
        return r;
    if (e->count > INT64_MAX)
        return cat_fail(c, -EINVAL, "event count: %" PRIu64 " is over 2^63-1", e->count);
    if (e->http_status != 0 && (e->http_status < 100 || e->http_status > 599))
        return cat_fail(c, -EINVAL, "event http_status: %d is outside 100..599", e->http_status);
    return 0;
}

static int cat_trim_events(struct catalog *c)
{
    struct sqldb_stmt *q = c->stmt[ST_EV_TRIM];
    int r;

    c->since_trim = 0;
    sqldb_bind_int64(q, 1, (int64_t)c->events_keep);
    r = cat_write(c, q, "trim events");
    return r < 0 ? r : 0;
}

/*
 * A group's next event id on PostgreSQL, from ids reserved CAT_EV_RESERVE
 * at a time (one round trip, which also collects the answers pending).
 * Ids stay in insertion order for one writer; the ones a process never
 * uses are gaps, so the trim keeps a little fewer than events_keep.
 */
static int cat_event_id(struct catalog *c, uint64_t *ret)
{
    struct sqldb_stmt *q = c->stmt[ST_EV_RESERVE];
    int rc, r = 0;

    if (c->ev_next == c->ev_n) {
        c->ev_next = c->ev_n = 0;
        while ((rc = sqldb_step(q)) == SQLDB_ROW && c->ev_n < CAT_EV_RESERVE)
            c->ev_ids[c->ev_n++] = (uint64_t)sqldb_column_int64(q, 0);
        if (rc != SQLDB_DONE)
            r = cat_db_fail(c, rc, "reserve event ids");
        cat_done(q);
        if (r < 0 || c->ev_n == 0) {
            c->ev_n = 0;
            return r < 0 ? r : cat_fail(c, -EIO, "reserve event ids: none returned");
        }
    }
    *ret = c->ev_ids[c->ev_next++];
    return 0;
}

/* An event's values in EV_COLS order, but the id. */
static void cat_event_values(const struct catalog_event *e, struct cat_sink *k)
{
    cat_sink_int(k, 0, e->ts_ms);
    cat_sink_opt_text(k, 1, e->segment_id);
    cat_sink_opt_text(k, 2, e->node_id);
    cat_sink_text(k, 3, e->kind);
    cat_sink_opt_text(k, 4, e->reason);
    cat_sink_opt_int(k, 5, e->http_status);
    cat_sink_opt_int(k, 6, e->retry_after_ms);
    cat_sink_opt_text(k, 7, e->detail);
    cat_sink_int(k, 8, e->count > 0 ? (int64_t)e->count : 1);
    cat_sink_opt_int(k, 9, e->last_ts_ms);
}

/* Inserts a validated event and trims every trim_every inserts; the caller provides the unit. */
static int cat_insert_event(struct catalog *c, const struct catalog_event *e)
{
    struct sqldb_stmt *q = c->stmt[ST_EV_INSERT];
    int rc, r = 0;

    if (cat_deferred(c)) {
        struct cat_sink rows = {NULL, &c->rows[CAT_ROWS_EV], 1};
        uint64_t id = 0;

        if ((r = cat_event_id(c, &id)) < 0 || (r = cat_rows_room(c, CAT_ROWS_EV, NULL)) < 0)
            return r;
        cat_rows_int(rows.b, 0, (int64_t)id);
        cat_event_values(e, &rows);
        c->last_event_id = id;
        if (++c->since_trim < c->trim_every)
            return 0;
        /* The trim reads the newest id: the rows go first. */
        if ((r = cat_rows_flush(c)) < 0)
            return r;
        return cat_trim_events(c);
    }
    c->ev_next = c->ev_n = 0; /* a later reserved id would sort before this row */
    cat_event_values(e, &(struct cat_sink){q, NULL, 0});
    rc = sqldb_step(q);
    if (rc == SQLDB_ROW)
        c->last_event_id = (uint64_t)sqldb_column_int64(q, 0);
    else
        r = cat_db_fail(c, rc < 0 ? rc : -EIO, "add event");
    cat_done(q);
    if (r < 0)
        return r;
    if (++c->since_trim >= c->trim_every)
        r = cat_trim_events(c);
    return r;
}

int catalog_add_event(struct catalog *c, const struct catalog_event *e)
{
    return catalog_add_event_id(c, e, NULL);
}

int catalog_add_event_id(struct catalog *c, const struct catalog_event *e, uint64_t *ret_id)
{
    struct catalog_event fixed;
    int r;

    /* A detail cut short inside a character, or quoting a peer: escaped, not refused. */
    if (e != NULL && !wire_utf8_valid(e->detail, strnlen(e->detail, sizeof(e->detail)), NULL)) {
        fixed = *e;
        wire_utf8_escape(fixed.detail, sizeof(fixed.detail), e->detail,
                         strnlen(e->detail, sizeof(e->detail)));
        e = &fixed;
    }
    if ((r = cat_enter_rows(c)) < 0 || (r = cat_check_event(c, e)) < 0)
        return r;
    /* The group is the unit (on SQLite each statement is atomic by itself). */
    if (c->group && c->in_txn)
        r = cat_insert_event(c, e);
    else if ((r = cat_rows_flush(c)) == 0 && (r = cat_op_begin(c)) == 0)
        r = cat_op_end(c, cat_insert_event(c, e));
    if (r == 0 && ret_id != NULL)
        *ret_id = c->last_event_id;
    return r;
}

int catalog_fold_event(struct catalog *c, uint64_t id, uint64_t count, int64_t last_ts_ms)
{
    struct sqldb_stmt *q;
    int r;

    if ((r = cat_enter(c)) < 0)
        return r;
    if (id == 0 || id > INT64_MAX || count == 0 || count > INT64_MAX)
        return cat_fail(c, -EINVAL, "fold event: id %" PRIu64 " or count %" PRIu64
                                    " is outside 1..2^63-1", id, count);
    if ((r = cat_check_ms(c, "event last_ts_ms", last_ts_ms)) < 0)
        return r;
    q = c->stmt[ST_EV_FOLD];
    sqldb_bind_int64(q, 1, (int64_t)id);
    sqldb_bind_int64(q, 2, (int64_t)count);
    cat_bind_opt_int(q, 3, last_ts_ms);
    r = cat_write(c, q, "fold event");
    return r < 0 ? r : 0;
}

int catalog_trim_events(struct catalog *c)
{
    int r;

    if ((r = cat_enter(c)) < 0)
        return r;
    return cat_trim_events(c);
}

int catalog_foreach_event(struct catalog *c, const char *segment_id, uint64_t after_id,
                          unsigned limit, int (*cb)(const struct catalog_event *e, void *arg),
                          void *arg)
{
    struct sqldb_stmt *q;
    int64_t after = after_id > INT64_MAX ? INT64_MAX : (int64_t)after_id;
    int64_t lim = limit == 0 ? INT64_MAX : (int64_t)limit; /* LIMIT -1 is SQLite's only */
    int rc, r;

    assert(cb != NULL);
    if ((r = cat_enter(c)) < 0)
        return r;
    if (segment_id != NULL && (r = cat_check_id(c, "segment id", segment_id)) < 0)
        return r;
    if (segment_id != NULL) {
        q = c->stmt[ST_EV_BY_SEG];
        cat_bind_text(q, 1, segment_id);
        sqldb_bind_int64(q, 2, after);
        sqldb_bind_int64(q, 3, lim);
    } else {
        q = c->stmt[ST_EV_ALL];
        sqldb_bind_int64(q, 1, after);
        sqldb_bind_int64(q, 2, lim);
    }
    c->iterating = true;
    while ((rc = sqldb_step(q)) == SQLDB_ROW) {
        if ((r = cat_read_event(c, q, &c->ev)) != 0 || (r = cb(&c->ev, arg)) != 0)
            break;
    }
    c->iterating = false;
    if (r == 0 && rc != SQLDB_DONE)
        r = cat_db_fail(c, rc, "list events");
    cat_done(q);
    return r;
}

int catalog_foreach_event_before(struct catalog *c, const char *segment_id, uint64_t before_id,
                                 unsigned limit,
                                 int (*cb)(const struct catalog_event *e, void *arg), void *arg)
{
    struct sqldb_stmt *q;
    int64_t before = before_id == 0 || before_id > INT64_MAX ? INT64_MAX
                                                                    : (int64_t)before_id;
    int rc, r;

    assert(cb != NULL);
    if ((r = cat_enter(c)) < 0)
        return r;
    if (limit == 0)
        return cat_fail(c, -EINVAL, "events: limit must be at least 1");
    if (segment_id != NULL && (r = cat_check_id(c, "segment id", segment_id)) < 0)
        return r;
    if (segment_id != NULL) {
        q = c->stmt[ST_EV_BEFORE_SEG];
        cat_bind_text(q, 1, segment_id);
        sqldb_bind_int64(q, 2, before);
        sqldb_bind_int64(q, 3, (int64_t)limit);
    } else {
        q = c->stmt[ST_EV_BEFORE];
        sqldb_bind_int64(q, 1, before);
        sqldb_bind_int64(q, 2, (int64_t)limit);
    }
    c->iterating = true;
    while ((rc = sqldb_step(q)) == SQLDB_ROW) {
        if ((r = cat_read_event(c, q, &c->ev)) != 0 || (r = cb(&c->ev, arg)) != 0)
            break;
    }
    c->iterating = false;
    if (r == 0 && rc != SQLDB_DONE)
        r = cat_db_fail(c, rc, "list events");
    cat_done(q);
    return r;
}

/* ---- checks ---- */

/*
 * PostgreSQL enforces its foreign keys always and checks its pages with
 * checksums as it reads them; what is left to check is the same question
 * SQLite's foreign_key_check answers, asked in SQL, with the same columns
 * (child table, -, parent table).
 */
#define CAT_FK_CHECK_SQL                                                                           \
    "SELECT 'assignments', NULL, 'segments' FROM assignments a WHERE NOT EXISTS"                   \
    " (SELECT 1 FROM segments s WHERE s.id = a.segment_id) UNION ALL"                              \
    " SELECT 'assignments', NULL, 'nodes' FROM assignments a WHERE NOT EXISTS"                      \
    " (SELECT 1 FROM nodes n WHERE n.id = a.node_id) LIMIT 1"

int catalog_integrity_check(struct catalog *c, char *err, size_t err_len)
{
    struct sqldb_stmt *q = NULL;
    char first[256] = "ok", child[32] = "", parent[32] = "";
    int rc, r;

    if ((r = cat_enter(c)) < 0 ||
        (!cat_pg(c) &&
         (r = cat_query_text(c, "PRAGMA integrity_check", first, sizeof(first))) < 0))
        goto out;
    if (strcmp(first, "ok") != 0) {
        r = cat_fail(c, -EBADMSG, "integrity_check: %s", first);
        goto out;
    }
    rc = sqldb_prepare(c->db, cat_pg(c) ? CAT_FK_CHECK_SQL : "PRAGMA foreign_key_check", &q);
    if (rc < 0) {
        r = cat_db_fail(c, rc, "foreign_key_check");
        goto out;
    }
    rc = sqldb_step(q);
    if (rc == SQLDB_ROW) {
        (void)cat_col_text(c, q, 0, child, sizeof(child));
        (void)cat_col_text(c, q, 2, parent, sizeof(parent));
        r = cat_fail(c, -EBADMSG, "foreign_key_check: a row of %s refers to a missing row of %s",
                     child, parent);
    } else if (rc != SQLDB_DONE) {
        r = cat_db_fail(c, rc, "foreign_key_check");
    }
out:
    sqldb_finalize(q);
    if (r < 0)
        cat_copy_err(c, err, err_len);
    return r;
}

/* ---- leading ---- */

/* How long a leader's session may sit idle before PostgreSQL ends it (catalog_lead). */
#define CAT_LEAD_LEASE "5s"

/* The lead's advisory lock key: the application id + 1 (the id itself is the migration lock's,
 * which a second process opening the catalog takes while the leader runs). */
#define CAT_LEAD_KEY "1397506886"

/*
 * PostgreSQL: what election needs beyond the schema: the epoch and the
 * leader's address in sluice_catalog, and sluice_coordinators, where every
 * coordinator says it is alive once a second. Catalogs made before these
 * (the first PostgreSQL build) gain them here, once per process, under the
 * migration lock, so that two coordinators starting together do not race
 * their DDL.
 */
static int cat_ha_schema(struct catalog *c)
{
    int r;

    if (c->ha_ready)
        return 0;
    if ((r = cat_exec(c, "BEGIN")) < 0 ||
        (r = cat_exec(c, "SELECT pg_advisory_xact_lock(1397506885)")) < 0 ||
        (r = cat_exec(c, "ALTER TABLE sluice_catalog ADD COLUMN IF NOT EXISTS epoch"
                         " BIGINT NOT NULL DEFAULT 0")) < 0 ||
        (r = cat_exec(c, "ALTER TABLE sluice_catalog ADD COLUMN IF NOT EXISTS leader"
                         " TEXT NOT NULL DEFAULT ''")) < 0 ||
        (r = cat_exec(c, "CREATE TABLE IF NOT EXISTS sluice_coordinators (addr TEXT PRIMARY KEY,"
                         " role TEXT NOT NULL, epoch BIGINT NOT NULL, seen_ms BIGINT NOT NULL)")) <
            0 ||
        (r = cat_exec(c, "COMMIT")) < 0) {
        if (sqldb_txn(c->db) != SQLDB_TXN_NONE)
            (void)sqldb_exec(c->db, "ROLLBACK");
        return r;
    }
    c->ha_ready = true;
    return 0;
}

/* The entry of the election calls: 1 PostgreSQL, ready; 0 SQLite (nothing to do); or -errno. */
static int cat_ha_enter(struct catalog *c)
{
    int r;

    if ((r = cat_enter(c)) < 0)
        return r;
    if (!cat_pg(c))
        return 0;
    if ((r = cat_ha_schema(c)) < 0)
        return r;
    return 1;
}

int catalog_lead(struct catalog *c, const char *addr, uint64_t *ret_epoch)
{
    struct sqldb_stmt *s = NULL;
    int64_t got = 0, epoch = 0;
    int r, rc;

    if ((r = cat_enter(c)) < 0)
        return r;
    if (!cat_pg(c)) {
        *ret_epoch = 0;
        return 1;
    }
    if (c->in_txn)
        return cat_fail(c, -EALREADY, "lead: a transaction is open");
    if ((r = cat_ha_schema(c)) < 0)
        return r;
    if ((r = cat_query_int(c, "SELECT CASE WHEN pg_try_advisory_lock(" CAT_LEAD_KEY
                              ") THEN 1 ELSE 0 END", &got)) < 0)
        return r;
    if (got == 0)
        return 0;
    /*
     * The lock is the lead only while this session lives, and a leader that
     * stops answering but keeps its TCP connection (SIGSTOP, a machine
     * frozen under its hypervisor) would hold it for ever. PostgreSQL 14 and
     * later end a session idle for CAT_LEAD_LEASE, in a transaction or not,
     * and with it the lock: a standby then takes over. A leader touches its
     * connection every second (the lead check, the heartbeat), so only one
     * whose loop has stopped for that long is ended, and it steps down when
     * it runs again. Older servers refuse the settings: there the lead lasts
     * as long as the session.
     */
    (void)sqldb_exec(c->db, "SET idle_session_timeout = '" CAT_LEAD_LEASE "'");
    (void)sqldb_exec(c->db, "SET idle_in_transaction_session_timeout = '" CAT_LEAD_LEASE "'");
    /* The epoch and the address clients are sent to change together. */
    if ((r = cat_exec(c, "BEGIN")) < 0)
        goto fail;
    rc = sqldb_prepare(c->db, "UPDATE sluice_catalog SET epoch = epoch + 1, leader = ?1"
                              " RETURNING epoch", &s);
    if (rc < 0) {
        r = cat_db_fail(c, rc, "lead");
        goto fail;
    }
    sqldb_bind_text(s, 1, addr != NULL ? addr : "");
    rc = sqldb_step(s);
    if (rc != SQLDB_ROW) {
        r = cat_db_fail(c, rc, "lead: UPDATE sluice_catalog");
        goto fail;
    }
    epoch = sqldb_column_int64(s, 0);
    sqldb_finalize(s);
    s = NULL;
    if ((r = cat_exec(c, "COMMIT")) < 0)
        goto fail;
    c->lead_gen = sqldb_generation(c->db);
    *ret_epoch = (uint64_t)epoch;
    return 1;
fail:
    sqldb_finalize(s);
    if (sqldb_txn(c->db) != SQLDB_TXN_NONE)
        (void)sqldb_exec(c->db, "ROLLBACK");
    (void)sqldb_exec(c->db, "SELECT pg_advisory_unlock(" CAT_LEAD_KEY ")");
    return r;
}

int catalog_leader(struct catalog *c, struct catalog_leader *ret)
{
    struct catalog_leader out = {0};
    struct sqldb_stmt *s = NULL;
    int r, rc;

    if ((r = cat_ha_enter(c)) <= 0) {
        if (r == 0)
            *ret = out;
        return r;
    }
    rc = sqldb_prepare(c->db, "SELECT epoch, leader FROM sluice_catalog", &s);
    if (rc < 0)
        return cat_db_fail(c, rc, "leader");
    rc = sqldb_step(s);
    if (rc == SQLDB_ROW) {
        out.epoch = (uint64_t)sqldb_column_int64(s, 0);
        r = cat_col_text(c, s, 1, out.addr, sizeof(out.addr));
    } else {
        r = cat_db_fail(c, rc, "leader: SELECT sluice_catalog");
    }
    sqldb_finalize(s);
    if (r == 0)
        *ret = out;
    return r;
}

int catalog_heartbeat(struct catalog *c, const char *addr, bool leading, uint64_t epoch,
                      uint64_t now_ms)
{
    struct sqldb_stmt *s = NULL;
    int r, rc;

    if ((r = cat_ha_enter(c)) <= 0)
        return r;
    rc = sqldb_prepare(c->db, "INSERT INTO sluice_coordinators (addr, role, epoch, seen_ms)"
                              " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (addr) DO UPDATE SET"
                              " role = excluded.role, epoch = excluded.epoch,"
                              " seen_ms = excluded.seen_ms", &s);
    if (rc < 0)
        return cat_db_fail(c, rc, "heartbeat");
    sqldb_bind_text(s, 1, addr);
    sqldb_bind_text(s, 2, leading ? "leader" : "standby");
    sqldb_bind_int64(s, 3, (int64_t)epoch);
    sqldb_bind_int64(s, 4, (int64_t)now_ms);
    r = cat_step_done(c, s, "heartbeat");
    sqldb_finalize(s);
    return r;
}

int catalog_foreach_coordinator(struct catalog *c, uint64_t since_ms,
                                int (*cb)(const struct catalog_coordinator *, void *), void *arg)
{
    struct sqldb_stmt *s = NULL;
    int r, rc;

    if ((r = cat_ha_enter(c)) <= 0)
        return r;
    rc = sqldb_prepare(c->db, "SELECT addr, role, epoch, seen_ms FROM sluice_coordinators"
                              " WHERE seen_ms >= ?1 ORDER BY addr", &s);
    if (rc < 0)
        return cat_db_fail(c, rc, "coordinators");
    sqldb_bind_int64(s, 1, (int64_t)since_ms);
    while ((rc = sqldb_step(s)) == SQLDB_ROW) {
        struct catalog_coordinator one = {0};

        if ((r = cat_col_text(c, s, 0, one.addr, sizeof(one.addr))) < 0 ||
            (r = cat_col_text(c, s, 1, one.role, sizeof(one.role))) < 0)
            break;
        one.epoch = (uint64_t)sqldb_column_int64(s, 2);
        one.seen_ms = (uint64_t)sqldb_column_int64(s, 3);
        c->iterating = true;
        r = cb(&one, arg);
        c->iterating = false;
        if (r != 0)
            break;
    }
    if (r == 0 && rc != SQLDB_DONE)
        r = cat_db_fail(c, rc, "coordinators");
    sqldb_finalize(s);
    return r;
}

bool catalog_leading(struct catalog *c)
{
    int64_t one = 0;

    if (!cat_pg(c))
        return true;
    if (c->lead_gen == 0 || c->iterating)
        return false;
    if (!c->in_txn && cat_query_int(c, "SELECT 1", &one) < 0)
        return false;
    return sqldb_generation(c->db) == c->lead_gen && sqldb_txn(c->db) != SQLDB_TXN_FAILED;
}
