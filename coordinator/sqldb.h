/*
 * sqldb: the thin SQL layer under the catalog. One connection to either
 * SQLite (a file) or PostgreSQL (a libpq connection URI), with the same
 * calls: execute a script, prepare a statement, bind, step through rows,
 * read columns. The catalog writes its SQL once, in the dialect the two
 * share; what they do not share is rewritten here, for PostgreSQL, by one
 * small table of rules (sqldb_translate): `?N` placeholders become `$N`,
 * INTEGER becomes BIGINT (SQLite's integers are 64-bit), TEXT gets the
 * byte-order collation "C" (SQLite's BINARY, so ORDER BY id is the same on
 * both), AUTOINCREMENT keys become identity columns, STRICT and WITHOUT
 * ROWID go, BEGIN IMMEDIATE is BEGIN, and PRAGMA statements are dropped.
 * Anything else (PRAGMAs read back, the schema version) the caller asks for
 * per backend with sqldb_kind().
 *
 * Expected load: the catalog's, one statement at a time on the event loop
 * thread; PostgreSQL statements are one round trip each (prepared once, run
 * with text parameters), and a query's rows arrive in one result. Writes
 * inside a transaction can instead be deferred (sqldb_step_deferred): on
 * PostgreSQL they are sent in pipeline mode without waiting, and the next
 * statement that wants an answer (COMMIT, a query) is sent behind them and
 * collects every answer in the same round trip.
 *
 * A PostgreSQL connection that breaks outside a transaction is re-opened by
 * the next sqldb_step or sqldb_exec (its statements are prepared again, the
 * session settings applied again); sqldb_generation() counts the
 * connections, so a caller that holds session state (an advisory lock)
 * learns that it lost it. Inside a transaction a broken connection fails
 * the transaction: sqldb_txn() says SQLDB_TXN_FAILED until it is ended.
 *
 * Errors: negative errno, and sqldb_errmsg() holds the server's sentence:
 *   -EINVAL constraint or data error; -EBUSY locked (SQLite busy, PostgreSQL
 *   lock timeout, serialization failure, deadlock); -ENOSPC; -EROFS;
 *   -EACCES; -EBADMSG (corrupt, not a database); -ENOMEM; -EIO (anything
 *   else, a broken connection among them).
 * Threading: single-threaded, like the catalog.
 */
#ifndef SLUICE_SQLDB_H
#define SLUICE_SQLDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum sqldb_kind {
    SQLDB_SQLITE,
    SQLDB_POSTGRESQL,
};

/* Where the connection stands with respect to a transaction. */
enum sqldb_txn {
    SQLDB_TXN_NONE,   /* autocommit: no transaction open */
    SQLDB_TXN_ACTIVE, /* inside a transaction that can go on */
    SQLDB_TXN_FAILED, /* inside a transaction the server aborted: only a rollback helps */
};

/* sqldb_step's results besides errors. */
#define SQLDB_DONE 0
#define SQLDB_ROW  1

#define SQLDB_PARAMS_MAX 16

struct sqldb;
struct sqldb_stmt;

/*
 * Splits a catalog locator: "sqlite:PATH", a bare PATH (SQLite), or a
 * libpq URI "postgresql://..." / "postgres://...". *ret_target is PATH for
 * SQLite, the whole URI for PostgreSQL. -EINVAL for "" or "sqlite:" with no
 * path.
 */
int sqldb_parse(const char *locator, enum sqldb_kind *ret_kind, const char **ret_target);

/*
 * The locator as it may be logged: a PostgreSQL URI's password (in the
 * user-info part or a password= parameter) is replaced by "***".
 */
void sqldb_redact(const char *locator, char *buf, size_t size);

/*
 * Opens a connection (a SQLite file is created if missing). On PostgreSQL
 * it sets client_encoding UTF8, synchronous_commit on and a 5 s lock
 * timeout for the session. On failure err holds a sentence naming the
 * target (redacted) and *ret is not written.
 */
int sqldb_open(const char *locator, struct sqldb **ret, char *err, size_t err_len);
/* Closes the connection; statements must be finalized first. NULL-safe. */
void sqldb_close(struct sqldb *db);

enum sqldb_kind sqldb_kind(const struct sqldb *db);
/* The message of the last failure; "" if none. Owned by db. */
const char *sqldb_errmsg(const struct sqldb *db);
/* Whether the last failure was a foreign key violation. */
bool sqldb_error_foreign_key(const struct sqldb *db);
enum sqldb_txn sqldb_txn(const struct sqldb *db);
/* Rows changed by the last INSERT, UPDATE or DELETE stepped to its end. */
uint64_t sqldb_changes(const struct sqldb *db);
/* 1 for the first connection, +1 each time PostgreSQL's was re-opened. */
unsigned sqldb_generation(const struct sqldb *db);

/*
 * Runs a script of one or more statements without parameters, discarding
 * rows. sql is translated for PostgreSQL first.
 */
int sqldb_exec(struct sqldb *db, const char *sql);

/*
 * Prepares one statement (translated for PostgreSQL). Parameters are
 * numbered from 1; at most SQLDB_PARAMS_MAX. The statement belongs to db
 * and is freed by sqldb_finalize, before sqldb_close.
 */
int sqldb_prepare(struct sqldb *db, const char *sql, struct sqldb_stmt **ret);
void sqldb_finalize(struct sqldb_stmt *s);

/* Binding: valid until sqldb_reset; text is copied for PostgreSQL, referenced for SQLite
 * (it must live until the statement is reset). */
void sqldb_bind_int64(struct sqldb_stmt *s, int i, int64_t v);
void sqldb_bind_text(struct sqldb_stmt *s, int i, const char *v);
void sqldb_bind_null(struct sqldb_stmt *s, int i);

/* Runs the statement or moves to its next row: SQLDB_ROW, SQLDB_DONE or -errno. */
int sqldb_step(struct sqldb_stmt *s);
/*
 * Runs a statement that returns no rows without waiting for its answer:
 * PostgreSQL inside a transaction sends it in pipeline mode and returns
 * SQLDB_DONE at once (sqldb_changes() is then not its count). Its failure
 * is reported by the next call that waits (sqldb_step, sqldb_exec or
 * sqldb_sync), which fails with the first failure of the pipeline; the
 * server has then aborted the transaction (sqldb_txn says FAILED, only a
 * rollback helps). Outside a transaction, and on SQLite, it is sqldb_step.
 * Every SQLDB_PIPE_MAX (4096) deferred statements the answers so far are
 * read (one round trip), so that they do not pile up in memory. The
 * bindings may be reset as soon as it returns.
 */
int sqldb_step_deferred(struct sqldb_stmt *s);
/* Waits for every deferred statement: 0, or the first failure among them (see above). */
int sqldb_sync(struct sqldb *db);

/* Forgets the rows and the bindings; the statement can be bound and stepped again. */
void sqldb_reset(struct sqldb_stmt *s);

/* Columns of the current row, numbered from 0. */
bool sqldb_column_null(struct sqldb_stmt *s, int i);
int64_t sqldb_column_int64(struct sqldb_stmt *s, int i);
/* The bytes of a text column (NULL for SQL NULL) and their number; valid until the next step. */
const char *sqldb_column_text(struct sqldb_stmt *s, int i, size_t *ret_len);
const char *sqldb_column_name(struct sqldb_stmt *s, int i);

/*
 * The PostgreSQL form of a statement or script written in the shared
 * dialect (see the top of this file); a copy the caller frees. Exposed for
 * tests.
 */
char *sqldb_translate(const char *sql);

#endif
