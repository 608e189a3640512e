/*
 * harness: starts real Sluice processes for integration tests. Every process
 * listens on 127.0.0.1 port 0 and lives in a temporary directory; the
 * harness learns its port from --ready-file, waits for /healthz, and stops
 * it (SIGTERM, then SIGKILL after 5 s). Process output goes to a log file in
 * the process's directory; harness_proc_dump_log() prints its tail when a
 * test fails. Every process started is stopped by harness_proc_free(), and
 * harness_dir_remove() deletes a directory tree, so tests always clean up.
 */
#ifndef SLUICE_HARNESS_H
#define SLUICE_HARNESS_H

#include <stdbool.h>
#include <stddef.h>

#include "wire.h"

struct harness_proc;

/* Creates a fresh directory under $TMPDIR (or /tmp). Caller frees the path. */
char *harness_dir_new(const char *prefix);
/* Removes a directory tree (rm -rf). NULL-safe. */
void harness_dir_remove(const char *path);

/* Absolute path of a built binary: "sluice-node" or "sluice-coord". */
const char *harness_bin(const char *name);

/*
 * Starts `sluice-node serve` with the given roots, on 127.0.0.1:0, plus
 * extra_args (NULL-terminated, may be NULL). Returns NULL (and prints the
 * log) if it does not become healthy within 15 s.
 */
struct harness_proc *harness_node_start(const char *storage_root, const char *data_dir,
                                        const char *const *extra_args);

/*
 * The same, for tests that are not about pressure: the node's pressure gates
 * are switched off, so a busy neighbour on a shared machine cannot turn an
 * expected 202 or 422 into a 429. It reads /proc and /sys from empty
 * directories (no PSI, no cgroup, no oom_kill count: MEM_CRITICAL,
 * MEM_PRESSURE and MEM_THRASHING stay open), has a 64 GiB admit budget
 * (MEM_CAPACITY from that alone) and no latency SLO. LOAD_CONCURRENCY,
 * DISK_FULL and DRAINING work as always. extra_args come after these and
 * override them.
 */
struct harness_proc *harness_node_start_calm(const char *storage_root, const char *data_dir,
                                             const char *const *extra_args);

/* The same, with the process placed in a memory cgroup (NULL: none) before exec. */
struct harness_proc *harness_node_start_cg(const char *storage_root, const char *data_dir,
                                           const char *cgroup_dir,
                                           const char *const *extra_args);

/*
 * Starts `sluice-coord serve` on 127.0.0.1:0 with its catalog at
 * <dir>/coord.db, plus extra_args. Restarting it keeps the catalog.
 */
struct harness_proc *harness_coord_start(const char *dir, const char *const *extra_args);

/*
 * Creates a child memory cgroup of this process's own (cgroup v1
 * memory.limit_in_bytes, or v2 memory.max) with the given limit. Returns
 * its path, or NULL with why filled when no cgroup is writable here.
 */
char *harness_cgroup_new(const char *name, unsigned long long limit_bytes, char *why,
                         size_t why_len);
/* oom_kill events counted in the cgroup so far (0 if unknown). */
unsigned long long harness_cgroup_oom_kills(const char *path);
/* Removes a cgroup whose processes have exited. NULL-safe. */
void harness_cgroup_remove(const char *path);

/* "127.0.0.1:PORT" of the running process. */
const char *harness_proc_addr(const struct harness_proc *p);
int harness_proc_pid(const struct harness_proc *p);

/* Sends sig. Returns 0 or -errno. */
int harness_proc_signal(struct harness_proc *p, int sig);
/* SIGKILL and reap. */
void harness_proc_kill(struct harness_proc *p);
/* SIGTERM, wait up to 5 s, then SIGKILL. Returns the exit status or -1 if killed. */
int harness_proc_stop(struct harness_proc *p);
/* Starts the process again with the same arguments (a new port). 0 or -1. */
int harness_proc_restart(struct harness_proc *p);
/* Prints the last lines of the process log to stderr. */
void harness_proc_dump_log(const struct harness_proc *p);
/* Stops the process if it runs and frees p. NULL-safe. */
void harness_proc_free(struct harness_proc *p);

/*
 * Runs a command to completion (argv[0] is a path), capturing stdout and
 * stderr into *ret_output (may be NULL; caller frees). Returns its exit
 * status, or -1 if it could not run or was killed.
 */
int harness_run(const char *const *argv, char **ret_output);

/*
 * Runs `sluice-coord CMD --coordinator=<coord's addr> ARGS...`, the
 * arguments NULL-terminated, like harness_run: returns its exit status and
 * fills *ret_output (may be NULL; caller frees) with stdout and stderr.
 */
int harness_ctl(const struct harness_proc *coord, char **ret_output, const char *cmd, ...)
    __attribute__((sentinel));

/* Polls fn(arg) every 20 ms until it returns true or timeout_ms passes. */
bool harness_wait_until(bool (*fn)(void *), void *arg, unsigned timeout_ms);

/*
 * GET /v1/status of the node at addr (token: NULL for none), waiting at most
 * timeout_ms. Returns true on a 200 whose body decodes; *ret is then owned by
 * the caller (wire_node_status_done). Returns false on a transport error, any
 * other status or a body that does not decode, with *ret untouched.
 */
bool harness_node_status(const char *addr, const char *token, unsigned timeout_ms,
                         struct wire_node_status *ret);

#endif
