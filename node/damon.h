/*
 * damon: the node's own DAMON monitor (opt-in, --damon), a working-set
 * source. damon_start() sets up, through DAMON's sysfs admin tree
 * (<sys_root>/kernel/mm/damon/admin/kdamonds), one kdamond with one "vaddr"
 * context whose one target is the node's own pid, and one "stat" scheme
 * (matching every region, acting on none) whose tried regions the node reads;
 * damon_read() asks the kdamond to refresh them
 * ("update_schemes_tried_regions", Linux 6.2+) and sums the bytes of the
 * regions accessed in the last aggregation interval; damon_stop() turns it
 * off and removes it.
 *
 * Ownership. Writing kdamonds/nr_kdamonds rebuilds every kdamond directory
 * (and the kernel refuses with EBUSY while any runs), so the node can only
 * make a kdamond of its own where there is none at all: with any kdamond
 * present it refuses (-EBUSY) and touches nothing. Before every later write
 * it checks that kdamond 0 is still the one it made (its target is the
 * node's pid and its worker pid the one it started); if not, it stops using
 * DAMON (-ESTALE) and writes nothing more.
 *
 * All paths hang off sys_root so tests use fixture trees (a test creates the
 * directories the kernel would create after each nr_* write). Blocking file
 * I/O: call at start, once a second from a worker, and at stop.
 */
#ifndef SLUICE_NODE_DAMON_H
#define SLUICE_NODE_DAMON_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define DAMON_PATH_MAX 512

/* The kdamond the node made; embed it zeroed. */
struct damon_own {
    char dir[DAMON_PATH_MAX + 8]; /* <sys_root>/kernel/mm/damon/admin/kdamonds/0; "" when none */
    pid_t target;             /* the node's pid, as written to pid_target */
    long kdamond_pid;         /* kdamonds/0/pid after "on" (-1 on a fixture that says so) */
};

struct damon_wss {
    uint64_t accessed_bytes; /* regions with nr_accesses > 0 */
    uint64_t total_bytes;    /* every region of the target */
    unsigned regions;
};

/*
 * Sets up and starts the node's own kdamond monitoring pid. Returns 0 with
 * *own filled, or: -ENOTSUP (no DAMON sysfs tree), -EBUSY (some kdamond
 * exists: nothing written), another -errno from a write (what was written is
 * undone as far as it can be). err names the problem.
 */
int damon_start(const char *sys_root, pid_t pid, struct damon_own *own, char *err,
                size_t err_len);

/*
 * Refreshes and reads the tried regions of the node's kdamond. Returns 0,
 * -ESTALE (kdamond 0 is no longer the node's: nothing written), or another
 * -errno. err names the problem.
 */
int damon_read(const struct damon_own *own, struct damon_wss *ret, char *err, size_t err_len);

/* Turns the node's kdamond off and removes it, if it is still the node's. NULL-safe. */
void damon_stop(struct damon_own *own);

#endif
