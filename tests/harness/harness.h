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
#include <stdint.h>

#include "wire.h"

struct harness_proc;

/* Creates a fresh directory under $TMPDIR (or /tmp). Caller frees the path. */
char *harness_dir_new(const char *prefix);
/* Removes a directory tree (rm -rf). NULL-safe. */
void harness_dir_remove(const char *path);

/*
 * The working directory most node suites set up: a fresh directory (as
 * harness_dir_new) with storage/ made in it; *ret_data, if asked for, is
 * <dir>/data, not made (the node makes it). The caller frees the strings,
 * with harness_workdir_done().
 */
void harness_workdir_new(const char *prefix, char **ret_dir, char **ret_storage, char **ret_data);

/*
 * Its end. Stops *node if there is one (printing its log if it exits
 * non-zero) and frees it; removes the memory cgroup *cgroup and the
 * directory *dir; frees the strings. Every pointer given (each may be NULL,
 * as may what it points at) is left NULL. Returns the node's exit status,
 * 0 without one, for the caller to assert once all is clean.
 */
int harness_workdir_done(struct harness_proc **node, char **cgroup, char **dir, char **storage,
                         char **data);

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
 * <dir>/coord.db (or, with SLUICE_TEST_CATALOG=postgresql, the database of
 * dir on a private PostgreSQL: tests/harness/pg.h), plus extra_args.
 * Restarting it keeps the catalog.
 */
struct harness_proc *harness_coord_start(const char *dir, const char *const *extra_args);
/*
 * The same with --catalog=catalog given, whatever SLUICE_TEST_CATALOG says:
 * several coordinators on one catalog (leader and standbys), each with its
 * own dir for its log and ready file.
 */
struct harness_proc *harness_coord_start_on(const char *dir, const char *catalog,
                                            const char *const *extra_args);
/* The catalog locator harness_coord_start(dir) uses; the caller frees it. */
char *harness_coord_catalog(const char *dir);

/*
 * Starts `sluice-node farm` (the test tool: --nodes virtual nodes in one
 * process, reporting to coordinator) with its control server on
 * 127.0.0.1:0 and its log in dir, plus extra_args. harness_proc_addr() is
 * the control server's address.
 */
struct harness_proc *harness_farm_start(const char *dir, const char *coordinator, unsigned nodes,
                                        const char *const *extra_args);

/* One virtual node, as GET /v1/farm lists it. */
struct harness_vnode {
    char id[WIRE_ID_MAX + 1];
    char addr[64];
    bool up;
    uint64_t loaded, loading;
    uint64_t footprint, peak, capacity; /* bytes: LOADED now, the most ever, the limit */
    uint64_t accepted, refused;
    double cost_factor;
};

/*
 * GET /v1/farm of the farm whose control server is at addr: *ret (caller
 * frees) gets *ret_n virtual nodes. Returns 200, another status, or a
 * negative errno; -EBADMSG when a line does not parse.
 */
int harness_farm_list(const char *addr, struct harness_vnode **ret, size_t *ret_n);

/* POST /v1/farm/kill/<node_id>: the HTTP status or a negative errno. */
int harness_farm_kill(const char *addr, const char *node_id);

/*
 * Starts `sluice-coord broker` on 127.0.0.1:0 following the coordinator at
 * coord_addr, its log and ready file in dir, plus extra_args.
 */
struct harness_proc *harness_broker_start(const char *dir, const char *coord_addr,
                                          const char *const *extra_args);

/*
 * Creates a child memory cgroup of this process's own (cgroup v1
 * memory.limit_in_bytes, or v2 memory.max) with the given limit. Returns
 * its path, or NULL with why filled when no cgroup is writable here.
 */
char *harness_cgroup_new(const char *name, unsigned long long limit_bytes, char *why,
                         size_t why_len);
/*
 * Creates a child cpu cgroup of this process's own, named name-<pid>: on
 * cgroup v1 in the cpu controller's hierarchy (mounted as cpu, cpu,cpuacct
 * or cpuacct,cpu), else on v2 where the cpu controller is enabled. Not
 * limited until harness_cpu_cgroup_limit(). Returns its path (*ret_v2 says
 * which version), or NULL with why filled when no cpu controller is
 * writable here. harness_cgroup_remove() removes it once empty.
 */
char *harness_cpu_cgroup_new(const char *name, bool *ret_v2, char *why, size_t why_len);
/*
 * Limits the cpu cgroup to percent of one CPU over period_us
 * (cpu.cfs_quota_us and cpu.cfs_period_us on v1, cpu.max on v2); percent 0
 * removes the limit. Returns 0 or a negative errno.
 */
int harness_cpu_cgroup_limit(const char *path, bool v2, unsigned percent, unsigned period_us);
/* Moves process pid (all its threads) into the cgroup. Returns 0 or a negative errno. */
int harness_cgroup_move(const char *path, int pid);
/* oom_kill events counted in the cgroup so far (0 if unknown). */
unsigned long long harness_cgroup_oom_kills(const char *path);
/* Removes a cgroup whose processes have exited. NULL-safe. */
void harness_cgroup_remove(const char *path);

/*
 * Starts a co-tenant for memory tests: a forked child that joins the memory
 * cgroup at path (cgroup.procs) and touches anonymous memory, prefill bytes
 * at once, then rate bytes a second up to cap (whole MiB), then holds it;
 * with retouch it also writes one byte of every page it holds every 100 ms
 * (reading back whatever was swapped out). Returns its pid, or -errno when
 * it cannot fork. Stop it with harness_cotenant_stop().
 */
int harness_cotenant_start(const char *path, size_t prefill, double rate, size_t cap,
                           bool retouch);
/* SIGKILL and reap a co-tenant. Ignores pid <= 0. */
void harness_cotenant_stop(int pid);

/* "127.0.0.1:PORT" of the running process. */
const char *harness_proc_addr(const struct harness_proc *p);
int harness_proc_pid(const struct harness_proc *p);

/* Sends sig. Returns 0 or -errno. */
int harness_proc_signal(struct harness_proc *p, int sig);
/*
 * Whether the process still runs: false once it has exited (it is reaped
 * here, which signal 0 alone would not see: a zombie takes signals).
 */
bool harness_proc_alive(struct harness_proc *p);
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

/* ---- typed clients (client.c) -------------------------------------------
 *
 * One function per request the suites send, so that no suite keeps its own
 * HTTP client. Each sends one request to addr ("127.0.0.1:PORT") with the
 * token and timeout of harness_client_set(), and returns the HTTP status,
 * or a negative errno when no answer came (-ECONNREFUSED, -ETIMEDOUT, ...),
 * or -EBADMSG when an answer of the typed kind does not decode.
 *
 * The typed answer (*ret, may be NULL) is decoded from a 2xx answer and,
 * for the assignment endpoints, from every decision (an answer that carries
 * X-Sluice-Reason is an AssignResponse); the caller then owns it (the
 * matching wire_*_done). Any other answer leaves *ret untouched and its
 * Error, if it carries one, goes to ret_reply->err.
 */
struct harness_reply {
    int status;              /* what the call returned */
    char reason[32];         /* X-Sluice-Reason; "" if absent */
    unsigned retry_after_s;  /* Retry-After; 0 if absent */
    struct wire_error err;   /* the Error body of a refusal; code "" if none */
    unsigned retries;        /* 429s that harness_assign_patient() waited out */
};

/*
 * The bearer token (NULL: none; copied) and timeout (0: 30 s) of every typed
 * call that follows in this process.
 */
void harness_client_set(const char *token, unsigned timeout_ms);

/* POST /v1/assign of the node at addr. */
int harness_assign(const char *addr, const struct wire_assign_request *m,
                   struct wire_assign_response *ret, struct harness_reply *ret_reply);
/*
 * The same, as a coordinator would and for a test that is not about
 * pressure: a 429 (a gate closed by a busy machine, or LOAD_CONCURRENCY) is
 * asked again after its Retry-After (the body's milliseconds, else the
 * header's seconds, else 250 ms) for up to two minutes, so that the answer
 * is the one the test is about. Any other answer is returned at once.
 */
int harness_assign_patient(const char *addr, const struct wire_assign_request *m,
                           struct wire_assign_response *ret, struct harness_reply *ret_reply);
/* An AssignRequest for id at uri (digest unknown), to pass to harness_assign(). */
struct wire_assign_request harness_assign_request(const char *id, const char *uri,
                                                  uint64_t row_count, uint64_t avg_row_size);
/* POST /v1/query of the node at addr. */
int harness_query(const char *addr, const struct wire_query_request *m,
                  struct wire_query_response *ret, struct harness_reply *ret_reply);
/* A query of agg over column of the one segment id (no filter), as harness_query(). */
int harness_query_one(const char *addr, const char *id, enum wire_aggregate agg,
                      const char *column, struct wire_query_response *ret,
                      struct harness_reply *ret_reply);
/* POST /v1/query of the broker at addr: m names a table. */
int harness_table_query(const char *addr, const struct wire_query_request *m,
                        struct wire_table_query_response *ret, struct harness_reply *ret_reply);
/* GET /v1/placements<suffix> ("?since=3&epoch=..", "") of the coordinator at addr. */
int harness_placements(const char *addr, const char *suffix, struct wire_placement_map *ret);
/* POST /v1/segments (register a batch) of the coordinator at addr. */
int harness_register(const char *addr, const struct wire_segment_batch *m,
                     struct wire_batch_response *ret, struct harness_reply *ret_reply);
/* POST /v1/report of the coordinator at addr. */
int harness_report(const char *addr, const struct wire_node_report *m,
                   struct wire_report_response *ret, struct harness_reply *ret_reply);
/* POST /v1/claim of the coordinator at addr. */
int harness_claim(const char *addr, const struct wire_claim_request *m,
                  struct wire_claim_response *ret, struct harness_reply *ret_reply);
/* GET /v1/segments<suffix> ("?limit=10", "/seg-1", "") of the coordinator at addr. */
int harness_segments(const char *addr, const char *suffix, struct wire_segment_list *ret);
/* GET /v1/nodes of the coordinator at addr. */
int harness_nodes(const char *addr, struct wire_node_list *ret);
/* GET /v1/events<suffix> ("?limit=1000&segment=x", "") of the coordinator at addr. */
int harness_events(const char *addr, const char *suffix, struct wire_event_list *ret);
/* GET /v1/status of the coordinator at addr. */
int harness_cluster_status(const char *addr, struct wire_cluster_status *ret);
/* A request without a body (POST /v1/drain, DELETE /v1/segments/x, GET /healthz). */
int harness_send(const char *addr, const char *method, const char *path,
                 struct harness_reply *ret_reply);

/*
 * The value of the sample line "<sample> <value>" of GET /metrics at addr
 * (sample with its labels, as printed), or -1 when the line is absent or no
 * answer came.
 */
double harness_metric(const char *addr, const char *sample);

/*
 * Registers one segment (replication copies of uri, row_count rows of
 * avg_row_size bytes) with the coordinator at addr; uri NULL names a file
 * that does not exist (for a test in which no node reads it). Returns as
 * harness_register().
 */
int harness_register_one(const char *addr, const char *segment_id, const char *uri,
                         uint64_t row_count, uint64_t avg_row_size, unsigned replication);

/*
 * Registers segments k = from..to-1 in one batch, one copy each: id k is
 * prefix and k in width digits ("seg-" and 4: "seg-0042"), its file
 * uris[k % n_uris]. Returns as harness_register().
 */
int harness_register_ids(const char *addr, const char *prefix, int width, int from, int to,
                         char *const *uris, size_t n_uris, uint64_t row_count,
                         uint64_t avg_row_size);
/* The same, replication copies of each. */
int harness_register_ids_r(const char *addr, const char *prefix, int width, int from, int to,
                           char *const *uris, size_t n_uris, uint64_t row_count,
                           uint64_t avg_row_size, unsigned replication);

/* GET /v1/segments/<id>: as harness_segments(), and -ENOENT unless it lists exactly that one. */
int harness_segment(const char *addr, const char *segment_id, struct wire_segment_list *ret);

/*
 * What a node that is not there reports to the coordinator, so that a test
 * can say on cue what no real node says: the node's id and address, pull
 * mode (claim: the coordinator pushes nothing to addr), its state
 * (0: SERVING), and one segment it holds (segment_id NULL: none).
 */
struct harness_fake_report {
    const char *node_id, *addr;
    bool claim;
    enum wire_node_state state;
    const char *segment_id;
    enum wire_segment_state segment_state;
    enum wire_reason reason;
};

/*
 * Sends that report to the coordinator at addr. Returns as harness_report();
 * *ret_drops (may be NULL) gets how many segments a 200 answer drops.
 */
int harness_report_as(const char *addr, const struct harness_fake_report *f, size_t *ret_drops,
                      struct harness_reply *ret_reply);

/* The coordinator's record of node_id (false: unknown); *ret_count (may be NULL): nodes known. */
bool harness_node_info(const char *addr, const char *node_id, struct wire_node_info *ret,
                       size_t *ret_count);

/*
 * Settled: waits up to timeout_ms until the coordinator at addr counts n
 * segments and all of them LOADED. False when the time ran out.
 */
bool harness_settled(const char *addr, uint64_t n, unsigned timeout_ms);

/*
 * Settled, on one node: waits up to timeout_ms until the node at addr
 * reports exactly n segments LOADED and none LOADING.
 */
bool harness_node_settled(const char *addr, size_t n, unsigned timeout_ms);

/* Segments the node at addr reports in state st; SIZE_MAX when it does not answer. */
size_t harness_node_count(const char *addr, enum wire_segment_state st);

#endif
