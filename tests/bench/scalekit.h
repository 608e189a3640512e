/*
 * scalekit: what the coordinator-scale benchmarks share (bench_scale,
 * bench_catalog): a free port to restart a coordinator on, a process's
 * memory and CPU from /proc, registering n synthetic segments in batches,
 * and waiting for every one of them LOADED in the coordinator's status.
 * Figures only: nothing here asserts.
 */
#ifndef SLUICE_SCALEKIT_H
#define SLUICE_SCALEKIT_H

#include <stdbool.h>
#include <stdint.h>

struct harness_proc;

/* Segments per registration request. */
#define SCALEKIT_BATCH 5000

/* Monotonic seconds. */
double scalekit_now_s(void);

/* A free 127.0.0.1 port (bound and released), so a coordinator can restart on it. Exits on failure.
 */
unsigned scalekit_free_port(void);

/* VmHWM and VmRSS of pid in bytes, from /proc; 0 when unknown. */
void scalekit_proc_mem(int pid, uint64_t *hwm, uint64_t *rss);

/* User + system CPU seconds of pid, from /proc/<pid>/stat; -1 when unknown. */
double scalekit_proc_cpu_s(int pid);

/* The environment variable name as an integer, dflt when unset or empty. */
uint64_t scalekit_env_u64(const char *name, uint64_t dflt);

/*
 * Registers segments seg-0000000 .. seg-<n-1> (1,000 rows of 1,000 bytes,
 * replication 1, files that need not exist) with the coordinator at addr
 * in batches of SCALEKIT_BATCH, one request at a time. 0, or -1 (printed,
 * with who as the prefix) on the first answer that is not 200.
 */
int scalekit_register(const char *addr, uint64_t n, const char *who);

/*
 * Polls the coordinator at addr until it counts n segments, all LOADED;
 * the time waited, or -1 after timeout_s, or once the LOADED count has not
 * grown for 60 s (a coordinator that cannot keep up: the caller reports
 * what it measured instead of holding the machine).
 */
double scalekit_wait_loaded(const char *addr, uint64_t n, double timeout_s);

/*
 * Stops and frees the coordinator and the farm (either may be NULL), their
 * logs' tails printed first when the run failed.
 */
void scalekit_stop(struct harness_proc *coord, struct harness_proc *farm, bool failed);

#endif
