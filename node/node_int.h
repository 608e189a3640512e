/*
 * node_int: the node daemon object's definition, shared by node.c (the
 * daemon) and api.c (its HTTP handlers) and by nothing else. The handlers
 * read the daemon's state and keep their counters in it; a struct private
 * to one file would need an accessor per field for no gain.
 */
#ifndef SLUICE_NODE_NODE_INT_H
#define SLUICE_NODE_NODE_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>

#include "admission.h"
#include "bufpool.h"
#include "clock.h"
#include "damon.h"
#include "epoch.h"
#include "histogram.h"
#include "latency.h"
#include "node.h"
#include "report.h"
#include "sampler.h"
#include "store.h"
#include "strmap.h"
#include "wire.h"
#include "watermark.h"
#include "wss.h"

#define NODE_TICK_MS 100

struct node {
    struct event_base *base;
    struct pool *pool;      /* scans, prechecks, residency */
    struct pool *load_pool; /* segment loads */
    struct store *store;
    struct bufpool *bufpool; /* --io=direct; NULL in mmap mode */
    struct bufpool_stats pool_prev; /* at the last one-second tick */
    double pool_hit_ratio;          /* over the last second with lookups */
    double pool_misses_per_s, pool_read_bytes_per_s, pool_read_latency_s;
    struct http_server *http;
    char bound[128];
    char node_id[WIRE_ID_MAX + 1];
    uint64_t started_mono_ns;
    /* counters, loop thread only */
    uint64_t assign_answers[WIRE_REASON_COUNT_]; /* by reason; NONE = accepted */
    uint64_t stale_batches; /* assignment batches refused whole for a stale epoch (409) */
    uint64_t assign_conflicts, bad_requests;
    uint64_t queries_ok, queries_failed, query_bytes, query_rows;
    unsigned max_queries, queries_in_flight;
    uint64_t queries_refused;
    uint64_t mlock_budget;
    struct histogram query_latency; /* ns, since start */
    /* admission */
    bool admission_on, draining;
    struct admission_config acfg;
    struct admission_state astate;
    struct admission_cost cost;
    /* The adaptive watermark (off: fixed at acfg.high_watermark, or --admit-budget). */
    bool wm_on;
    struct watermark_config wmcfg;
    struct watermark wm;
    struct watermark_view wm_view; /* the last tick's judgement */
    bool capacity_refused;         /* MEM_CAPACITY has refused an assignment ... */
    uint64_t capacity_refused_ms;  /* ... last at this time (demand for the watermark) */
    struct sampler *sampler;
    struct sampler_snapshot snap;
    bool have_snap;
    struct latency *lat;
    struct wss_estimator *wss;
    /* Working-set sources read once a second on the residency worker. */
    char *sys_root;
    char memcg_path[256];      /* as lru_gen prints it; "" when unknown */
    int mglru_r;               /* the last mglru_read(): 0, or why not (-ENOTSUP: no MGLRU) */
    uint64_t mglru_bytes;      /* young-generation bytes (0 unless mglru_r is 0) */
    bool damon_on;             /* --damon and the node's own kdamond runs */
    struct damon_own damon;
    char damon_why[200];       /* why DAMON is off, when --damon asked for it */
    uint64_t damon_bytes;      /* accessed bytes of the node's own pid */
    uint64_t resident_bytes, disk_free_bytes;
    bool residency_running;
    struct wss_touch touched; /* bytes queries touched, per second */
    struct admission_ledger *ledger; /* memory and disk promised to loads in flight */
    struct histogram decision_ns;
    uint64_t shed_total[WIRE_REASON_COUNT_];
    uint64_t gate_closed_total[WIRE_REASON_COUNT_];
    struct event *tick_ev;
    uint64_t ticks;
    uint32_t rng;
    char sources[400];
    /* Why its memory figures are not its own (node_memgroup_check); "" when they are. */
    char memgroup_note[320];
    struct reporter *reporter;
    /* pull mode */
    struct coordclient *claim_client; /* to the leader of the --coordinator list */
    struct event *claim_ev;
    double claim_batch; /* AIMD: +1 after a fully accepted claim, /2 on refusal or pressure */
    bool claim_in_flight;
    uint64_t claimed_total, claim_refused_total;
    /* The coordinator holds node_id for another address: serve nothing (report.h). */
    bool id_conflict;
    char id_conflict_detail[WIRE_DETAIL_MAX + 1];
    /* The highest coordinator epoch seen: batches and answers from a lower one are refused. */
    struct epoch_fence fence;
};

static inline uint64_t node_now_ms(void)
{
    return clock_mono_ns() / 1000000;
}

/* Counts bytes a query touched, in the working-set estimator's window. */
void node_touch(struct node *node, uint64_t bytes);

/* Direct mode's exact footprint: the pool and its tables, every heap, every entry. */
uint64_t node_direct_bytes(struct node *node, const struct store_totals *t);

/* The admission controller's view of the node right now (reads the newest sample). */
void node_signals(struct node *node, struct admission_signals *sig);

/* " mglru=... damon=...": which extra working-set sources the node has, for status. */
void node_wss_sources(const struct node *node, char *buf, size_t len);

/* The watermark in force: the adaptive one when on, else --admit-high-watermark. */
double node_watermark(const struct node *node);

/* The pressure block of a status, a report or an assignment answer. */
void node_fill_pressure(struct node *node, struct wire_pressure *p);

/* Called once per assignment with its outcome, as the single endpoint would answer it. */
typedef void (*node_assign_fn)(struct node *node, int status, enum wire_reason reason,
                              uint32_t retry_ms, const char *detail, void *arg);


/*
 * Decides one assignment: admission (unless the node already holds the
 * segment, which makes this a retry), then the store. fn is called exactly
 * once, possibly before this returns. Used by the push endpoints and by
 * pull-mode claims alike.
 */
void node_assign(struct node *node, const struct wire_assign_request *m, node_assign_fn fn,
                 void *arg);

#endif
