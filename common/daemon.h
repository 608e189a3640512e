/*
 * daemon: start-up chores and the main loop that both daemons (and, for the
 * token, the admin CLI) share.
 */
#ifndef SLUICE_DAEMON_H
#define SLUICE_DAEMON_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "http.h"

/*
 * Loads the cluster token: from the file at path when path is neither NULL
 * nor "" (its first line), else from $SLUICE_TOKEN. *ret_token is a new
 * string, or NULL when neither gives one (no auth). Returns 0, or -errno
 * with err naming the file and the problem (unreadable, empty).
 */
int daemon_load_token(const char *path, char **ret_token, char *err, size_t err_len);

struct event_base;
struct daemon_server_flags;

/*
 * The start of both daemons' `serve`, once their flags are parsed: sets the
 * log level from f->log_level, loads the cluster token (f->token_file, else
 * $SLUICE_TOKEN; a file that cannot be read or is empty prints
 * "<prog>: --token-file ...: <problem>" and exits 2), ignores SIGPIPE (a
 * peer may close first), makes libevent thread-safe and creates the one
 * event_base of the process. Returns the base; *ret_token is the token or
 * NULL (no auth), the caller's to free. Failing to create the base is fatal.
 */
struct event_base *daemon_init(const char *prog, const struct daemon_server_flags *f,
                               char **ret_token);

/* Runs the event loop until SIGTERM or SIGINT (each logged), then returns. */
void daemon_run(struct event_base *base);

/*
 * The rest of both daemons' `serve`, once their daemon object is made.
 * bound is its address, or NULL if making it failed with err: then
 * start_failed is logged with err and 1 returned. Otherwise writes
 * f->ready_file if set (start_failed and 1 if it cannot), logs
 * "listening addr=<bound> <fields> version=...", runs the loop until
 * SIGTERM or SIGINT, logs "stopped addr=<bound> <fields>" and returns 0.
 * fields is the daemon's own key=value text for those two lines.
 */
int daemon_serve(struct event_base *base, const struct daemon_server_flags *f, const char *bound,
                 const char *err, const char *fields);

/* Frees what daemon_init made (base and token may be NULL). */
void daemon_done(struct event_base *base, char *token);

/* Writes "host:port\n" to path atomically (tmp + rename). 0 or -errno. */
int daemon_write_ready(const char *path, const char *bound);

/*
 * The flags every daemon's HTTP server takes, with the same names, defaults
 * and limits in both: declare a struct daemon_server_flags, put
 * DAEMON_SERVER_OPTIONS(that struct) in the config_option array, and turn
 * the parsed values into limits with daemon_server_limits().
 */
struct daemon_server_flags {
    uint64_t max_body, max_headers, idle_ms, request_ms;
    int64_t max_conns;
    char *token_file, *ready_file, *log_level;
};

extern const char *const daemon_log_levels[]; /* debug, info, warn, error */

/* clang-format off */
#define DAEMON_SERVER_OPTIONS(f)                                                             \
    {"max-body", "SLUICE_MAX_BODY", CONFIG_SIZE, &(f).max_body, "4M",                        \
     "Largest request body; larger ones get 413.", 1024, 4 << 20},                           \
    {"max-headers", "SLUICE_MAX_HEADERS", CONFIG_SIZE, &(f).max_headers, "16K",              \
     "Largest request line plus headers.", 1024, 1 << 20},                                   \
    {"max-connections", "SLUICE_MAX_CONNECTIONS", CONFIG_INT, &(f).max_conns, "1024",        \
     "Open connections; more are closed at accept.", 1, 1000000},                            \
    {"idle-timeout", "SLUICE_IDLE_TIMEOUT", CONFIG_DURATION, &(f).idle_ms, "30s",            \
     "Close a connection idle for this long.", 100, 86400000},                               \
    {"request-timeout", "SLUICE_REQUEST_TIMEOUT", CONFIG_DURATION, &(f).request_ms, "10s",   \
     "A request must arrive whole within this (defeats slow senders).", 100, 3600000},       \
    {"token-file", "SLUICE_TOKEN_FILE", CONFIG_STRING, &(f).token_file, "",                  \
     "File holding the cluster token (else $SLUICE_TOKEN; none: no auth)."},                 \
    {"ready-file", "SLUICE_READY_FILE", CONFIG_STRING, &(f).ready_file, "",                  \
     "Write the bound host:port here once serving."},                                        \
    {"log-level", "SLUICE_LOG_LEVEL", CONFIG_CHOICE, &(f).log_level, "info",                 \
     "Lowest level logged.", .choices = daemon_log_levels}
/* clang-format on */

/* The server limits the parsed flags ask for. */
struct http_limits daemon_server_limits(const struct daemon_server_flags *f);

#endif
