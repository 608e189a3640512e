/*
 * crash: the shared setup of the fault suites, one per fault (coordinator
 * kill, node kill, SIGSTOP, partition, overload). Each suite is one test in
 * its own process: crash_main() runs it with an unchecked fixture that makes
 * crash_dir (with crash_storage for segment files) in the parent, and a
 * checked teardown that stops what the test started. Daemons die with the
 * test process (PDEATHSIG) if an assertion ends it first.
 *
 * Nodes run with --admission=off: on a shared machine other tenants' memory
 * pressure shows in host-wide PSI and would close the MEM_* gates, and what
 * these suites check must not depend on that. Admission has its own suites.
 */
#ifndef SLUICE_CRASH_H
#define SLUICE_CRASH_H

#include <check.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "harness.h"
#include "strmap.h"
#include "wire.h"

#define CRASH_NODES 3

/* The test's directory and its storage root (segment files). */
extern char *crash_dir, *crash_storage;
/* What the test started; crash_procs_teardown() stops them. */
extern struct harness_proc *crash_coord, *crash_nodes[CRASH_NODES];
/* SLUICE_LONG=1: the long run (more kills, more rounds). */
extern bool crash_long_run;
/* Address of a node started outside the harness (the partition's netns node); "" if none. */
extern char crash_ns_node_addr[64];

/* Monotonic milliseconds. */
uint64_t crash_now_ms(void);
void crash_sleep_ms(unsigned ms);
/* Random delays only (xorshift64*), seeded by crash_rnd_seed(), which prints the seed. */
uint32_t crash_rnd(void);
/* Seeds crash_rnd() from SLUICE_CRASH_SEED, or the clock and pid, and prints it for a replay. */
void crash_rnd_seed(const char *what);
/* qsort comparison of uint64_t. */
int crash_cmp_u64(const void *a, const void *b);
/* The q-quantile (0..1) of n sorted values; 0 when n is 0. */
uint64_t crash_quantile(const uint64_t *v, size_t n, double q);
/* A free TCP port on host, found by binding port 0 and letting it go again; -1 on failure. */
int crash_free_port(const char *host);

/* Fixtures (crash_main adds them): the directory in the parent, the processes in the test. */
void crash_dir_setup(void);
void crash_dir_teardown(void);
void crash_procs_teardown(void);

/* Writes <storage>/<name>.seg; returns its file:// URI (caller frees). */
char *crash_write_seg(const char *name, uint64_t rows, unsigned row_bytes, uint64_t seed);
/* sum(value) over every row, from the generator, never from a node. */
int64_t crash_synth_sum(uint64_t seed, uint64_t rows);

/* The coordinator at addr: status, every segment, one node's state ("" if unknown). */
bool crash_coord_status(const char *addr, struct wire_cluster_status *st);
bool crash_coord_segments(const char *addr, struct wire_segment_list *out);
void crash_coord_node_state(const char *addr, const char *id, char *state, size_t len);
/*
 * Registers ids <prefix><from..to-1> (six digits), id k pointing at
 * uris[k % n_uris]. Returns the HTTP status, or a negative errno.
 */
int crash_register_ids(const char *addr, const char *prefix, int from, int to, char *const *uris,
                       int n_uris, uint64_t rows, uint64_t row_size);
/* Events of one kind about one node in the coordinator's log; 0 if it does not answer. */
size_t crash_coord_events(const char *addr, const char *kind, const char *node_id);

/* A node's own status (harness_node_status). */
bool crash_node_status_at(const char *addr, struct wire_node_status *st, unsigned timeout_ms);
/* sum(value) of one segment. Returns the HTTP status or a negative errno. */
int crash_query_sum(const char *addr, const char *id, struct wire_query_response *ret);
/* Address of node i: a harness process, or (partition case) crash_ns_node_addr. */
const char *crash_node_addr(int i);

/*
 * What the nodes themselves hold: segment id -> bit mask, bits 0..7 for "on
 * node i in any state", bits 8..15 for "LOADED on node i".
 */
struct crash_nodeview {
    struct strmap *held;
    unsigned replication; /* copies each id should have */
    size_t entries;       /* distinct ids */
    size_t dups;          /* ids on more than `replication` nodes */
    size_t unloaded;      /* ids held, on some node, not LOADED */
    size_t short_;        /* ids LOADED on fewer than `replication` nodes */
    char dup_example[WIRE_ID_MAX + 64];
};

/*
 * Collects every node's own status; skip_mask leaves nodes out (stopped, cut
 * off). Counts against replication 1.
 */
bool crash_nodeview_fetch(struct crash_nodeview *v, unsigned skip_mask);
/* The same, counting against replication copies of each id. */
bool crash_nodeview_fetch_r(struct crash_nodeview *v, unsigned skip_mask, unsigned replication);
void crash_nodeview_done(struct crash_nodeview *v);

/*
 * The cluster has settled on n segments: the coordinator counts n, all
 * LOADED; every node answers, together they hold exactly n ids, each LOADED
 * on exactly one node; and (when check_placements) the coordinator's
 * placement of every segment is that node. why says what is still wrong.
 */
bool crash_cluster_settled(const char *caddr, uint64_t n, bool check_placements, char *why,
                           size_t why_len);
/*
 * The same with replication copies of each segment: each LOADED on exactly
 * that many nodes, and (check_placements) the coordinator's placements of
 * it are those nodes.
 */
bool crash_cluster_settled_r(const char *caddr, uint64_t n, unsigned replication,
                             bool check_placements, char *why, size_t why_len);
/* Polls crash_cluster_settled() every 100 ms until it holds or timeout_ms passes. */
bool crash_wait_settled(const char *caddr, uint64_t n, bool check_placements, unsigned timeout_ms,
                        char *why, size_t why_len);
/* The same for crash_cluster_settled_r(). */
bool crash_wait_settled_r(const char *caddr, uint64_t n, unsigned replication,
                          bool check_placements, unsigned timeout_ms, char *why, size_t why_len);
/* Starts crash_nodes[i] ("node-<i>", reports to caddr every 250 ms, admission off) plus more. */
void crash_start_node(int i, const char *caddr, const char *const *more);

/* Segments that the coordinator places on node id (ids copied into *ret, may be NULL); SIZE_MAX if
 * it does not answer. */
size_t crash_coord_placed_on(const char *caddr, const char *id, struct strmap *ret);

/* crash_moved_away(): node_id is DOWN and all n segments are LOADED, none on it; why says what is
 * not. */
struct crash_moved_wait {
    const char *caddr, *node_id;
    uint64_t n;
    char why[256];
};
bool crash_moved_away(void *arg);

/* crash_rejoined(): node_id is UP again and node (its index) holds none of the segments in moved.
 */
struct crash_rejoin_wait {
    const char *caddr, *node_id;
    int node;
    struct strmap *moved;
    size_t still_held;
};
bool crash_rejoined(void *arg);

/*
 * Waits up to 30 s until node_id (index victim, stopped or cut off: "what")
 * is DOWN and the other nodes hold all n segments LOADED, once each; fails
 * the test otherwise. (The checked teardown wakes a stopped node.)
 */
void crash_await_moved(const char *caddr, const char *node_id, int victim, int n, const char *what);

/* Registers n small segments (ids s000000..) and waits until the cluster has settled on them. */
void crash_place_small(const char *caddr, int n);

/* One fault suite: its name, its one test, and what it adds to the shared fixtures. */
struct crash_case {
    const char *name;
    const TTest *test;
    int timeout, long_timeout; /* seconds; long_timeout (0: timeout) under SLUICE_LONG */
    SFun setup, teardown;      /* extra unchecked fixture (parent), may be NULL */
    SFun procs_teardown;       /* extra checked teardown (test process), may be NULL */
};

/*
 * A TCase of its own for test, with the shared fixtures (the directory in
 * the parent, the processes' teardown in the test) and timeout in seconds.
 */
TCase *crash_tcase(Suite *s, const char *name, const TTest *test, int timeout);

/* Runs the suite; returns the process's exit status (0: passed). */
int crash_main(const struct crash_case *c);

#endif
