/*
 * catalog: the coordinator's durable state in one SQLite database or one
 * PostgreSQL database (the same API and contract on both; coordinator/sqldb
 * holds the difference). It holds nodes, segments, assignments of segments
 * to nodes, and a bounded log of events. Whatever a catalog call reported as
 * done is on disk: SQLite runs in WAL mode with synchronous=FULL,
 * PostgreSQL with synchronous_commit=on (and fsync=on, checked at open), so
 * a committed transaction survives kill -9 (and, given honest fsync, power
 * loss). The coordinator must answer a peer OK only after the call (or
 * catalog_commit) returned 0.
 *
 * Expected load: registrations arrive in bulk (thousands of segments per
 * import), so callers batch them between catalog_begin and catalog_commit
 * (one fsync per batch, "group commit"). Outside an explicit transaction
 * every call is its own transaction and costs one fsync.
 *
 * Threading: single-threaded. The catalog belongs to the coordinator's event
 * loop thread and must not be used from any other. Calls block for the time
 * of an fsync, or up to 5 s if another process holds the write lock.
 *
 * Errors: functions return 0 or a negative errno, and after a failure
 * catalog_errmsg() says what went wrong in a sentence:
 *   -EINVAL  an argument is malformed (bad id, unknown state, out of range)
 *            or a schema constraint refused it; nothing was changed;
 *   -ENOENT  the row (or, for an assignment, its segment or node) is absent;
 *   -EEXIST  a segment with this id exists with different fields;
 *   -EBUSY   the database is locked by another process, or the call was
 *            made from inside a catalog_foreach_* callback;
 *   -ENOSPC, -EROFS, -EBADMSG (corrupt or not a database), -EIO: storage.
 * Arguments are validated before SQLite is touched: a call that fails with
 * -EINVAL has changed nothing, inside a transaction or not.
 *
 * Identifiers (segment and node ids) follow the wire rules: 1..WIRE_ID_MAX
 * bytes of [A-Za-z0-9._-], not starting with '.' or '-'. States are the
 * upper-case names listed with each struct; an unknown name is -EINVAL.
 */
#ifndef SLUICE_CATALOG_H
#define SLUICE_CATALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire.h"

/* The schema version this build creates and understands. */
#define CATALOG_SCHEMA_VERSION 7

#define CATALOG_EVENTS_KEEP_DEFAULT 100000u
#define CATALOG_BUSY_TIMEOUT_MS     5000
#define CATALOG_STATE_MAX           15  /* longest state name is 8 bytes */
#define CATALOG_ADDR_MAX            255 /* "host:port" of a node */
#define CATALOG_KIND_MAX            31  /* event kind: [a-z_] */
#define CATALOG_REASON_MAX          63  /* [A-Za-z0-9._-], e.g. "MEM_PRESSURE" */
#define CATALOG_REPLICATION_MAX     16

/* Opaque; one per database connection. */
struct catalog;

/* A segment. state: "PENDING", "LOADED" or "INVALID". */
struct catalog_segment {
    char id[WIRE_ID_MAX + 1];
    char uri[WIRE_URI_MAX + 1];
    uint64_t row_count;    /* 1..WIRE_ROW_COUNT_MAX */
    uint64_t avg_row_size; /* 1..WIRE_ROW_SIZE_MAX */
    unsigned replication;  /* 1..CATALOG_REPLICATION_MAX */
    char state[CATALOG_STATE_MAX + 1];
    int64_t backoff_until_ms; /* wall clock; 0: no back-off */
    int64_t created_ms;       /* wall clock, as given by the caller */
    uint64_t digest;          /* content digest of the file (segment_digest); 0: unknown */
    char table[WIRE_TABLE_MAX + 1]; /* wire_check_table; "" is stored as WIRE_TABLE_DEFAULT */
    uint64_t mem_request_bytes, mem_limit_bytes; /* declared (wire_check_mem); 0: none */
    uint64_t footprint_bytes; /* largest footprint a node observed; 0: none yet */
};

/* A query node. state: "UP", "SUSPECT", "DOWN" or "DRAINING". */
struct catalog_node {
    char id[WIRE_ID_MAX + 1];
    char addr[CATALOG_ADDR_MAX + 1]; /* printable, no spaces */
    char state[CATALOG_STATE_MAX + 1];
    int64_t last_seen_ms;                     /* 0: never */
    char last_reason[CATALOG_REASON_MAX + 1]; /* "": none */
    int64_t created_ms;                       /* kept from the first put */
    bool claim;                               /* pull mode: it claims its work */
    char drained_by[CATALOG_STATE_MAX + 1];   /* "", "operator" or "node" */
};

/* Segment on node. state: "LOADING", "LOADED", "FAILED" or "DROPPED". */
struct catalog_assignment {
    char segment_id[WIRE_ID_MAX + 1];
    char node_id[WIRE_ID_MAX + 1];
    char state[CATALOG_STATE_MAX + 1];
    int64_t updated_ms;
};

/*
 * An event. kind is a short [a-z_] word ("refused", "accepted", "loaded",
 * "failed", "dropped", "node_state", "invalid", ...). Empty strings and zero
 * numbers mean "none" and are stored as NULL. Events are history, not
 * references: they outlive the segments and nodes they name.
 */
struct catalog_event {
    uint64_t id; /* set by the catalog; ignored by add */
    int64_t ts_ms;
    char segment_id[WIRE_ID_MAX + 1]; /* "" or a valid id */
    char node_id[WIRE_ID_MAX + 1];    /* "" or a valid id */
    char kind[CATALOG_KIND_MAX + 1];  /* required */
    char reason[CATALOG_REASON_MAX + 1];
    int http_status;        /* 0 or 100..599 */
    int64_t retry_after_ms; /* 0 or positive */
    char detail[WIRE_DETAIL_MAX + 1];
    uint64_t count;     /* identical events this row stands for; add takes 0 as 1 */
    int64_t last_ts_ms; /* the last of them (0: none but the first) */
};

struct catalog_options {
    /* Events kept; older ones are trimmed. 0 means CATALOG_EVENTS_KEEP_DEFAULT. */
    uint64_t events_keep;
};

/*
 * Connection settings as read back from SQLite, for tests and /status. On
 * PostgreSQL: "wal", 2 when synchronous_commit is on, 1 (foreign keys are
 * always enforced), and lock_timeout in ms.
 */
struct catalog_settings {
    char journal_mode[16]; /* "wal" */
    int synchronous;       /* 2 == FULL */
    int foreign_keys;      /* 1 */
    int busy_timeout_ms;
};

/*
 * path is a locator (sqldb_parse): "sqlite:FILE", a bare FILE, or a libpq URI
 * "postgresql://..." whose database exists.
 * Opens (creating if needed) the database at path, applies the pragmas and
 * checks that each took effect, and migrates the schema to
 * CATALOG_SCHEMA_VERSION, one transaction per migration. A database written
 * by a newer build (user_version > CATALOG_SCHEMA_VERSION) is refused with
 * -EPROTONOSUPPORT and left untouched. On failure err (if not NULL) holds a
 * sentence and *ret is not written. The caller frees with catalog_close().
 * catalog_open is catalog_open_with(path, NULL, ...).
 */
int catalog_open(const char *path, struct catalog **ret, char *err, size_t err_len);
int catalog_open_with(const char *path, const struct catalog_options *opts, struct catalog **ret,
                      char *err, size_t err_len);

/*
 * Closes the database. An open explicit transaction is rolled back: what was
 * not committed is lost. NULL-safe. Must not be called from a callback.
 */
void catalog_close(struct catalog *c);

/* The message of the last failed call on c; "" if none. Owned by c. */
const char *catalog_errmsg(const struct catalog *c);

/* PRAGMA user_version of the open database (CATALOG_SCHEMA_VERSION), or -errno. */
int catalog_schema_version(struct catalog *c);

/* Reads back journal_mode, synchronous, foreign_keys and busy_timeout. */
int catalog_settings(struct catalog *c, struct catalog_settings *ret);

/*
 * Explicit transaction (BEGIN IMMEDIATE). Nothing is durable until
 * catalog_commit returns 0; if it fails the whole batch has been rolled back
 * and must not be acknowledged. catalog_begin inside a transaction is
 * -EALREADY; catalog_commit outside one is -EINVAL. A call that fails
 * inside the transaction (-EINVAL, -EEXIST, -ENOENT) undoes only its own
 * changes; the transaction goes on. If instead a storage error made SQLite
 * abort the whole transaction, every later call fails with -EIO until
 * catalog_commit (which then returns -EIO) or catalog_rollback ends it.
 * catalog_rollback outside a transaction does nothing.
 */
int catalog_begin(struct catalog *c);
/*
 * The same, for a group of writes that stands or falls as a whole (the
 * coordinator's group commit, a registration batch). On PostgreSQL the
 * writes are pipelined: each call validates its arguments and returns 0;
 * its statement is sent without waiting for the answer (the rows of the
 * frequent writes, segments, assignments, segment states and footprints
 * and events, wait in the catalog and go as one multi-row statement per
 * table, up to 1,024 rows, before any other statement and at the commit),
 * and catalog_commit sends COMMIT behind them and reads every answer: the
 * group costs about one round trip, not one per row. A write the database
 * refuses (a constraint; an assignment whose segment or node is missing; a
 * segment registered again with other fields, whose message names the
 * field) is then reported by catalog_commit, which rolls the whole group
 * back (nothing in it may be acknowledged), not by the call; and a write
 * to a row that is missing (set_*_state, set_segment_*, delete_*) is not
 * reported (-ENOENT) but changes nothing. A read inside the group waits for
 * the writes before it (one round trip). Events get ids reserved 256 at a
 * time (so a process leaves gaps, and the trim keeps slightly fewer than
 * events_keep). On SQLite statements run in-process and each call reports
 * as inside catalog_begin, but without the savepoint around a call of two
 * statements (an event whose trim then fails stays added): callers must
 * handle a refused write either way (log it; acknowledge nothing the failed
 * commit held).
 */
int catalog_begin_group(struct catalog *c);
int catalog_commit(struct catalog *c);
void catalog_rollback(struct catalog *c);

/*
 * Inserts a segment. If the id exists with the same uri, row_count,
 * avg_row_size, replication, digest and table, this is a retried registration and returns
 * 0 without changing the stored row (its state may have moved on);
 * otherwise -EEXIST and catalog_errmsg() names the first differing field.
 */
int catalog_put_segment(struct catalog *c, const struct catalog_segment *s);
/* Copies the segment into *ret; -ENOENT if absent. */
int catalog_get_segment(struct catalog *c, const char *id, struct catalog_segment *ret);
/*
 * Records that a segment's file changed or that its digest is now known:
 * sets row_count, avg_row_size and digest and, when state is not NULL, the
 * state (and clears the back-off). 0, -EINVAL (a value out of range),
 * -ENOENT (no such segment) or a catalog error.
 */
int catalog_set_segment_file(struct catalog *c, const char *id, uint64_t row_count,
                             uint64_t avg_row_size, uint64_t digest, const char *state);
int catalog_set_segment_state(struct catalog *c, const char *id, const char *state,
                              int64_t backoff_until_ms);
/*
 * Files a segment under another table (wire_check_table). 0, -EINVAL (a bad
 * name), -ENOENT (no such segment) or a catalog error.
 */
int catalog_set_segment_table(struct catalog *c, const char *id, const char *table);
/*
 * Sets a segment's declared memory (wire_check_mem: each at most
 * WIRE_MEM_DECLARED_MAX, a limit not under the request; 0 is none). 0,
 * -EINVAL, -ENOENT or a catalog error.
 */
int catalog_set_segment_mem(struct catalog *c, const char *id, uint64_t request, uint64_t limit);
/* Records the footprint nodes observed for a segment. 0, -EINVAL (over INT64_MAX), -ENOENT. */
int catalog_set_segment_footprint(struct catalog *c, const char *id, uint64_t bytes);
/* Deletes the segment and (ON DELETE CASCADE) its assignments; -ENOENT if absent. */
int catalog_delete_segment(struct catalog *c, const char *id);
/* *ret = number of segments, of one state if state is not NULL. */
int catalog_count_segments(struct catalog *c, const char *state, uint64_t *ret);

/* Inserts or replaces a node by id; created_ms of an existing node is kept. */
int catalog_put_node(struct catalog *c, const struct catalog_node *n);
int catalog_get_node(struct catalog *c, const char *id, struct catalog_node *ret);
/*
 * Sets the node's state and who drains it: drained_by is NULL or "" (no
 * one), "operator" or "node"; anything else is -EINVAL. -ENOENT if the node
 * is absent. It records no event: the coordinator's one state setter writes
 * the single "node_state" event of each transition, with the why that only
 * it knows. last_seen_ms and last_reason are left alone.
 */
int catalog_set_node_state(struct catalog *c, const char *id, const char *state,
                           const char *drained_by);
/* Deletes the node and (ON DELETE CASCADE) its assignments; -ENOENT if absent. */
int catalog_delete_node(struct catalog *c, const char *id);

/*
 * Inserts or updates (state, updated_ms) the assignment of segment to node.
 * -ENOENT, with nothing written, if the segment or the node is absent.
 */
int catalog_put_assignment(struct catalog *c, const char *segment_id, const char *node_id,
                           const char *state, int64_t now_ms);
int catalog_delete_assignment(struct catalog *c, const char *segment_id, const char *node_id);

/*
 * Appends an event and trims the log to the newest events_keep entries,
 * cheaply: every min(1000, events_keep) appends, delete the ids at or below
 * newest - events_keep. Between trims the log may exceed the bound by that
 * interval. catalog_trim_events() trims now.
 */
int catalog_add_event(struct catalog *c, const struct catalog_event *e);
/* The same, and writes the new row's id to *ret_id (if not NULL) on success. */
int catalog_add_event_id(struct catalog *c, const struct catalog_event *e, uint64_t *ret_id);
/*
 * Sets the count and last_ts_ms of event id: the row now stands for count
 * identical events (a storm folded into it). 0 also when the row is gone
 * (trimmed: history only); -EINVAL for id or count 0 or over 2^63-1 or a
 * negative last_ts_ms, with nothing written.
 */
int catalog_fold_event(struct catalog *c, uint64_t id, uint64_t count, int64_t last_ts_ms);
int catalog_trim_events(struct catalog *c);

/*
 * Iteration. The callback gets a row that is valid only during the call
 * (copy what you keep) and returns 0 to go on; any other value stops the
 * walk and is returned by foreach. The callback must not call the catalog
 * (such calls return -EBUSY): collect first, then act. Order: segments,
 * nodes and assignments by id; events by id ascending.
 */
int catalog_foreach_segment(struct catalog *c, const char *state,
                            int (*cb)(const struct catalog_segment *s, void *arg), void *arg);
int catalog_foreach_node(struct catalog *c, int (*cb)(const struct catalog_node *n, void *arg),
                         void *arg);
/* segment_id and node_id filter when not NULL. */
int catalog_foreach_assignment(struct catalog *c, const char *segment_id, const char *node_id,
                               int (*cb)(const struct catalog_assignment *a, void *arg), void *arg);
/* Events with id > after_id, of one segment if segment_id is not NULL, at most limit (0: all). */
int catalog_foreach_event(struct catalog *c, const char *segment_id, uint64_t after_id,
                          unsigned limit, int (*cb)(const struct catalog_event *e, void *arg),
                          void *arg);
/*
 * The newest events with id < before_id (0: no bound), of one segment if
 * segment_id is not NULL, NEWEST FIRST, at most limit (1 or more; 0 is
 * -EINVAL). Reads only the rows it returns (an index range scan), so a page
 * costs O(limit) whatever the size of the log: the way to page backwards
 * from the newest event is before_id = the smallest id of the last page.
 */
int catalog_foreach_event_before(struct catalog *c, const char *segment_id, uint64_t before_id,
                                 unsigned limit,
                                 int (*cb)(const struct catalog_event *e, void *arg), void *arg);

/*
 * Runs PRAGMA integrity_check and PRAGMA foreign_key_check. 0 if both are
 * clean; otherwise -EBADMSG and err (if not NULL) holds the first problem.
 */
int catalog_integrity_check(struct catalog *c, char *err, size_t err_len);

/*
 * Test hook: creates the database at path, or migrates it, to exactly
 * version (1..CATALOG_SCHEMA_VERSION) with the same pragmas and migrations
 * as catalog_open, then closes it. Lets tests build an old database and
 * check that catalog_open migrates it. -EEXIST if the database is already
 * past version; -EINVAL if version is out of range.
 */
int catalog_create_at_version(const char *path, int version, char *err, size_t err_len);

/* ---- leading: several coordinators on one PostgreSQL catalog ---- */

/*
 * Tries once to take the lead. PostgreSQL: the session-level advisory lock
 * of the catalog on this connection (the one every write goes through); if
 * it is taken, the catalog's epoch is incremented and addr (the address
 * clients are sent to, --advertise) recorded as the leader's in one
 * transaction, the epoch written to *ret_epoch, and 1 returned; 0 if
 * another coordinator holds the lock. SQLite: 1 at once with epoch 0 (the
 * file has one writer; no election, no fencing). Negative errno on a
 * failure (the lock, if it was taken, is given back). Must not be called
 * inside a transaction (-EALREADY).
 */
int catalog_lead(struct catalog *c, const char *addr, uint64_t *ret_epoch);

/* The last coordinator that took the lead: its epoch and its address. */
struct catalog_leader {
    uint64_t epoch;
    char addr[256]; /* "": none yet */
};

/*
 * Reads the leader as the catalog records it (PostgreSQL; SQLite: epoch 0
 * and no address). It may name a leader that has since died: the lock,
 * not this row, says who leads. 0 or a negative errno.
 */
int catalog_leader(struct catalog *c, struct catalog_leader *ret);

/*
 * Records that the coordinator at addr is alive now (now_ms, wall clock),
 * leading at epoch or a standby, in sluice_coordinators (one row per
 * address, replaced). PostgreSQL only; SQLite: 0, nothing written. Inside
 * the caller's transaction if one is open. 0 or a negative errno.
 */
int catalog_heartbeat(struct catalog *c, const char *addr, bool leading, uint64_t epoch,
                      uint64_t now_ms);

struct catalog_coordinator {
    char addr[256];
    char role[16]; /* "leader" or "standby", as it last said */
    uint64_t epoch;
    uint64_t seen_ms; /* wall clock of its last heartbeat */
};

/*
 * Calls cb for each coordinator whose last heartbeat is at or after
 * since_ms, in address order; a non-zero return from cb stops the walk and
 * is returned. PostgreSQL only (SQLite: none). 0 or a negative errno.
 */
int catalog_foreach_coordinator(struct catalog *c, uint64_t since_ms,
                                int (*cb)(const struct catalog_coordinator *, void *), void *arg);

/*
 * Whether this catalog still leads: on PostgreSQL a round trip on the
 * connection that holds the lock; false if it failed or the connection was
 * re-opened since catalog_lead (the lock went with the old session). Inside
 * an explicit transaction it answers from the last statement. Always true
 * on SQLite.
 */
bool catalog_leading(struct catalog *c);

/* ---- catalog_copy.c: between backends ---- */

/* Row counts of a catalog. */
struct catalog_counts {
    uint64_t segments, nodes, assignments, events;
};

/* Counts every table's rows (a full walk of each: for copies and checks, not hot paths). */
int catalog_counts(struct catalog *c, struct catalog_counts *ret);

/*
 * Copies every row of from into to (SQLite into PostgreSQL, or any other
 * pair), in one transaction of to: nodes, segments (state, back-off,
 * digest, table, memory and footprint kept), assignments, then events in id
 * order (to gives them new ids; their contents and counts are kept). to
 * must be empty: otherwise -ENOTEMPTY and nothing is written. After the
 * copy the counts of both are compared inside the transaction; if they
 * differ it is rolled back and the result is -EIO. Open to with an
 * events_keep of at least from's event count, or the copy trims them. On
 * success *ret (if not NULL) holds the counts copied; on failure err holds
 * a sentence.
 */
int catalog_copy(struct catalog *from, struct catalog *to, struct catalog_counts *ret, char *err,
                 size_t err_len);

#endif
