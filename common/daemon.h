/*
 * daemon: start-up chores and the main loop that both daemons (and, for the
 * token, the admin CLI) share.
 */
#ifndef SLUICE_DAEMON_H
#define SLUICE_DAEMON_H

#include <stddef.h>

/*
 * Loads the cluster token: from the file at path when path is neither NULL
 * nor "" (its first line), else from $SLUICE_TOKEN. *ret_token is a new
 * string, or NULL when neither gives one (no auth). Returns 0, or -errno
 * with err naming the file and the problem (unreadable, empty).
 */
int daemon_load_token(const char *path, char **ret_token, char *err, size_t err_len);

/* Runs the event loop until SIGTERM or SIGINT (each logged), then returns. */
struct event_base;
void daemon_run(struct event_base *base);

/* Writes "host:port\n" to path atomically (tmp + rename). 0 or -errno. */
int daemon_write_ready(const char *path, const char *bound);

#endif
