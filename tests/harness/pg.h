/*
 * harness pg: a private PostgreSQL server for tests. It runs Debian's
 * binaries (/usr/lib/postgresql/15/bin, or SLUICE_PG_BIN) from a fresh
 * temporary directory: initdb, then pg_ctl start listening on 127.0.0.1 on a
 * free port, its unix socket in that directory, fsync on (what the catalog
 * demands). PostgreSQL refuses to run as root, so as root every command runs
 * as the `postgres` user the package creates (runuser -u postgres --) in a
 * directory that user owns. harness_pg_stop() stops it (immediate mode) and
 * removes the directory; if the process that started it exits without
 * that, an atexit handler does it (in that process only, not in the forked
 * children Check runs tests in).
 */
#ifndef SLUICE_HARNESS_PG_H
#define SLUICE_HARNESS_PG_H

#include <stdbool.h>
#include <stddef.h>

struct harness_pg;

/*
 * Starts a server. NULL with why filled (the binaries missing, initdb or
 * pg_ctl failing, with the tail of their log) when it cannot.
 */
struct harness_pg *harness_pg_start(char *why, size_t why_len);

/* Stops the server and removes its directory. NULL-safe. */
void harness_pg_stop(struct harness_pg *pg);

/*
 * Stops the server (immediate mode: a crash, its sessions cut), leaves it
 * down for down_ms, and starts it again on the same port and data (a
 * server restart, with crash recovery). 0 or -1.
 */
int harness_pg_restart(struct harness_pg *pg, unsigned down_ms);

/*
 * Creates an empty database and returns its connection URI
 * ("postgresql://postgres@127.0.0.1:PORT/NAME"), which the caller frees;
 * NULL with why filled on failure.
 */
char *harness_pg_new_db(struct harness_pg *pg, char *why, size_t why_len);

/*
 * The integration suites' switch: SLUICE_TEST_CATALOG=postgresql makes
 * harness_coord_start() give each coordinator directory its own database on
 * one shared private server instead of <dir>/coord.db. harness_pg_mode()
 * says whether it is on. harness_pg_shared() starts that server once per
 * process tree (call it from main() before the runner forks, so that all
 * tests share it; a test process that finds none starts its own) and
 * returns it, or NULL with why filled.
 */
bool harness_pg_mode(void);
struct harness_pg *harness_pg_shared(char *why, size_t why_len);

/*
 * The database of a coordinator directory (created if missing; named after
 * the directory, which is unique): its URI, which the caller frees, or
 * NULL with why filled.
 */
char *harness_pg_dir_db(const char *dir, char *why, size_t why_len);

/* Runs an SQL script on the database at uri. 0, or -1 with why filled. */
int harness_pg_exec(const char *uri, const char *sql, char *why, size_t why_len);

/* Runs a query and returns the first column of its first row as an integer (-1 on error). */
long long harness_pg_int(const char *uri, const char *sql);

#endif
