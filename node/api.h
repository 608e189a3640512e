/*
 * api: the node daemon. It owns the worker pool, the store and the HTTP
 * server, and answers the node endpoints of DESIGN.md section 3:
 *
 *   POST   /v1/assign          AssignRequest -> 202 | 409 | 422 | 507 | 400 | 415
 *   DELETE /v1/segments/{id}   200 once the local copy is gone | 404 | 409
 *   POST   /v1/query           QueryRequest -> QueryResponse | 400 | 404 | 429 (too many
 *                               queries in flight: LOAD_CONCURRENCY, Retry-After)
 *   GET    /v1/status          NodeStatus
 *   POST   /v1/drain, /v1/undrain   refuse (503 DRAINING) or accept new assignments
 *   GET    /metrics            Prometheus text (no token)
 *   GET    /healthz            "ok" (no token)
 *
 * Handlers decode, call the store or the scan, encode and reply; file I/O
 * and scans run on the worker pool. Errors carry an Error message body and
 * the same sentence in the X-Sluice-Error header.
 */
#ifndef SLUICE_NODE_API_H
#define SLUICE_NODE_API_H

#include <stddef.h>
#include <stdint.h>

#include "admission.h"
#include "http.h"

struct event_base;
struct node_api;

struct node_config {
    const char *listen;       /* "127.0.0.1:7100"; port 0 picks one */
    const char *node_id;      /* NULL or "": the one kept in <data_dir>/node-id (made once) */
    const char *token;        /* NULL or "": no auth */
    const char *storage_root; /* deep storage that segment URIs point into */
    const char *data_dir;     /* local copies and their metadata */
    uint64_t disk_reserve;    /* bytes of local disk never used for segments */
    unsigned workers;         /* worker threads for scans and quick checks */
    unsigned load_workers;    /* worker threads for segment loads (copy, verify, index) */
    int load_nice;            /* added to the load workers' nice value (0..19) */
    struct http_limits limits;
    struct admission_config admission;
    bool admission_on;        /* false: accept everything (the baseline mode) */
    const char *proc_root;    /* "/proc": where kernel files are read (fixture trees in tests) */
    const char *sys_root;     /* "/sys" */
    unsigned sample_ms;       /* sampler interval */
    bool psi_triggers;
    const char *coordinator;  /* NULL or "": no reports */
    const char *advertise;    /* NULL or "": the bound address */
    uint64_t report_ms;
    bool claim;               /* pull mode */
    unsigned max_queries;     /* queries in flight; more get 429 LOAD_CONCURRENCY */
    bool io_direct;           /* --io=direct: O_DIRECT reads into a buffer pool, no mmap */
    uint64_t cache_budget;    /* --cache-budget: the pool's bytes (direct mode) */
    uint64_t mlock_budget;    /* --mlock-budget bytes pinned (0: none); RLIMIT_MEMLOCK checked */
};

/*
 * Opens the store (queuing the reload of what a previous run had loaded),
 * binds and starts serving on base. Returns NULL with err filled when the
 * directories or the address are unusable.
 */
struct node_api *node_api_new(struct event_base *base, const struct node_config *cfg, char *err,
                              size_t err_len);

/* "host:port" actually bound. */
const char *node_api_bound(const struct node_api *api);
const char *node_api_id(const struct node_api *api);

/* Stops serving, finishes queued jobs and frees everything. NULL-safe. */
void node_api_free(struct node_api *api);

#endif
