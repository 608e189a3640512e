/*
 * node: the node daemon object. It owns the worker pools, the store, the
 * buffer pool (direct mode), the sampler, the working-set and latency
 * estimators, the reporter and pull-mode claims, and the 100 ms tick that
 * lets admission observe and sheds under sustained pressure. The HTTP
 * handlers are in api.c; the policy it applies is pure, in admission.c,
 * signals.c, shed.c and claim.c.
 *
 * Expected load: one tick every 100 ms, one residency measurement a second
 * on a worker, and per request only what the handlers ask of it.
 */
#ifndef SLUICE_NODE_NODE_H
#define SLUICE_NODE_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "admission.h"
#include "http.h"
#include "watermark.h"

struct event_base;
struct node;

struct node_config {
    const char *listen;       /* "127.0.0.1:7100"; port 0 picks one */
    const char *node_id;      /* NULL or "": the one kept in <data_dir>/node-id (made once) */
    const char *token;        /* NULL or "": no auth */
    const char *storage_root; /* deep storage that segment URIs point into */
    const char *data_dir;     /* local copies and their metadata */
    uint64_t disk_reserve;    /* bytes of local disk never used for segments; admission
                                 decides with admission.disk_reserve_bytes, set alike */
    unsigned workers;         /* worker threads for scans and quick checks */
    unsigned load_workers;    /* worker threads for segment loads (copy, verify, index) */
    int load_nice;            /* added to the load workers' nice value (0..19) */
    struct http_limits limits;
    struct admission_config admission;
    bool admission_on;        /* false: accept everything (the baseline mode) */
    /* --admit-watermark-adaptive: probe the watermark (base: admission.high_watermark) */
    bool watermark_adaptive;
    struct watermark_config watermark; /* checked by watermark_config_check() */
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
    bool damon;               /* --damon: the node's own kdamond as a working-set source */
};

/*
 * Opens the store (queuing the reload of what a previous run had loaded),
 * binds and starts serving on base. Returns NULL with err filled when the
 * directories or the address are unusable.
 */
struct node *node_new(struct event_base *base, const struct node_config *cfg, char *err,
                      size_t err_len);

/* "host:port" actually bound. */
const char *node_bound(const struct node *node);
const char *node_id(const struct node *node);

/* Stops serving, finishes queued jobs and frees everything. NULL-safe. */
void node_free(struct node *node);

#endif
