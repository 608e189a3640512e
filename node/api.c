/*
 * api: HTTP handlers of the node. Thin: each decodes with common/wire,
 * calls the store or queues a scan on the pool, and answers exactly once.
 * Expected load: thousands of queries per second at most; a query's scan
 * runs on a worker, so the loop only parses, resolves ids and replies.
 */
#include "api.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "admission.h"
#include "bufpool.h"
#include "clock.h"
#include "histogram.h"
#include "latency.h"
#include "log.h"
#include "metrics.h"
#include "pbhttp.h"
#include "pool.h"
#include "query.h"
#include "report.h"
#include "sampler.h"
#include "sluice_config.h"
#include "store.h"
#include "strmap.h"
#include "wire.h"
#include "wss.h"
#include "xmalloc.h"

#include <sys/statvfs.h>

#define API_TICK_MS     100

struct node_api {
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
    struct sampler *sampler;
    struct sampler_snapshot snap;
    bool have_snap;
    struct latency *lat;
    struct wss_estimator *wss;
    uint64_t resident_bytes, disk_free_bytes;
    bool residency_running;
    struct wss_touch touched; /* bytes queries touched, per second */
    struct strmap *reservations; /* segment id -> heap uint64_t cost */
    uint64_t reserved_bytes;
    struct histogram decision_ns;
    uint64_t shed_total[WIRE_REASON_COUNT_];
    uint64_t gate_closed_total[WIRE_REASON_COUNT_];
    struct event *tick_ev;
    uint64_t ticks;
    uint32_t rng;
    char sources[400];
    struct reporter *reporter;
    /* pull mode */
    struct http_client *claim_client;
    struct event *claim_ev;
    double claim_batch; /* AIMD: +1 after a fully accepted claim, /2 on refusal or pressure */
    bool claim_in_flight;
    uint64_t claimed_total, claim_refused_total;
    /* The coordinator holds node_id for another address: serve nothing (report.h). */
    bool id_conflict;
    char id_conflict_detail[WIRE_DETAIL_MAX + 1];
};

static uint32_t api_random(struct node_api *api)
{
    api->rng ^= api->rng << 13;
    api->rng ^= api->rng >> 17;
    api->rng ^= api->rng << 5;
    return api->rng;
}

static uint64_t api_now_ms(void)
{
    return clock_mono_ns() / 1000000;
}

/* Counts bytes a query touched, in the working-set estimator's window. */
static void api_touch(struct node_api *api, uint64_t bytes)
{
    (void)wss_touch_add(&api->touched, api_now_ms() / 1000, bytes);
}

static uint64_t api_touched(struct node_api *api)
{
    return wss_touch_sum(&api->touched, api_now_ms() / 1000);
}

/* Direct mode's exact footprint: the pool and its tables, every heap, every entry. */
static uint64_t api_direct_bytes(struct node_api *api, const struct store_totals *t)
{
    struct bufpool_stats ps;

    bufpool_stats(api->bufpool, &ps);
    return ps.budget_bytes + ps.overhead_bytes + t->index_bytes + t->meta_bytes;
}

/* The admission controller's view of the node right now. */
static void api_signals(struct node_api *api, struct admission_signals *sig)
{
    const struct sampler_snapshot *s = &api->snap;
    uint64_t now_ns = clock_mono_ns();
    struct store_totals t;

    memset(sig, 0, sizeof(*sig));
    store_totals(api->store, &t);
    /* The newest sample, not the last tick's: sampler_read takes no lock and no syscall. */
    if (api->sampler != NULL && sampler_read(api->sampler, &api->snap) == 0)
        api->have_snap = true;
    sig->now_ms = now_ns / 1000000;
    sig->draining = api->draining;
    if (api->have_snap) {
        /*
         * PSI read host-wide (a v1 or hybrid host without the node's own
         * cgroup2 file) measures every tenant, including those stalling
         * against limits of their own. While the node's memory has room, a
         * stall there is a neighbour's: it does not close the node's
         * pressure gates. The node's memory is its own cgroup's limit, or
         * for a node without one, the host's (MemAvailable).
         */
        bool own_limit = s->limit_source == SAMPLER_LIMIT_CGROUP_MAX ||
                         s->limit_source == SAMPLER_LIMIT_CGROUP_HIGH;
        bool room, neighbours;

        if (own_limit) {
            uint64_t used =
                s->cg_usage > s->cg_inactive_file ? s->cg_usage - s->cg_inactive_file : 0;
            room = used < s->limit_bytes / 10 * 9;
        } else {
            room = (s->have & SAMPLER_HAVE_MEMINFO) && s->mem_available > s->mem_total / 10;
        }
        neighbours = s->psi_host_wide && room;

        sig->psi_available = (s->have & SAMPLER_HAVE_STALL_SOME) != 0 && !neighbours;
        if (sig->psi_available) {
            sig->some_frac = s->some_stall;
            sig->full_frac = s->full_stall;
            sig->some_avg10 = s->some.avg10;
            sig->full_avg10 = s->full.avg10;
        }
        sig->pgscan_per_s = s->pgscan_per_s;
        sig->refaults_available = (s->have & SAMPLER_HAVE_REFAULT_RATE) != 0;
        sig->refaults_per_s = s->refaults_per_s;
        sig->exhaust_available = s->tte_valid;
        sig->tte_ms = s->tte_ms;
        sig->fill_ms = s->fill_ms;
        sig->growth_bytes_per_s = s->growth_bytes_per_s;
        sig->swapins_available = (s->have & SAMPLER_HAVE_SWAPIN_RATE) != 0;
        sig->swapins_per_s = s->swapins_per_s;
        sig->oom_kills_recent = s->oom_kill_recent ? 1 : 0;
        sig->limit_bytes = (s->have & SAMPLER_HAVE_LIMIT) ? s->limit_bytes : 0;
    }
    /*
     * The capacity gate's footprint: the larger of the measured working set
     * and what the node has committed to serve from memory (its mapped
     * segment files and heap indexes). Measurement alone under-counts data
     * the kernel has quietly evicted while no query touched it; those bytes
     * come back, as thrashing, the moment queries do.
     */
    if (api->bufpool != NULL) {
        /*
         * Direct mode knows its memory to the byte: the pool (a fixed
         * charge, allocated at start), and per segment its heap (zone maps,
         * heap columns) and its metadata. No estimate and no page cache:
         * segment data beyond the pool stays on disk, and the latency gate
         * decides how much more of it the node takes.
         */
        sig->wss_bytes = api_direct_bytes(api, &t);
    } else {
        sig->wss_bytes = wss_estimate(api->wss);
        /*
         * mlock'ed pages (--mlock-budget) can never be reclaimed, whether or
         * not queries touched them lately: they count in full, on top of the
         * measured working set (which may count some of them again: erring
         * on the side of refusing).
         */
        sig->wss_bytes += t.pinned_bytes;
        if (sig->wss_bytes < t.mapped_bytes + t.index_bytes)
            sig->wss_bytes = t.mapped_bytes + t.index_bytes;
    }
    /* A rise in the cgroup counts at once, without waiting for the estimator's tick. */
    if (api->bufpool == NULL && api->have_snap && (s->have & SAMPLER_HAVE_CG_USAGE) && (s->have & SAMPLER_HAVE_CG_STAT) &&
        s->cg_usage > s->cg_inactive_file && s->cg_usage - s->cg_inactive_file > sig->wss_bytes)
        sig->wss_bytes = s->cg_usage - s->cg_inactive_file;
    sig->reserved_bytes = api->reserved_bytes;
    sig->p99_1s_ms = (double)latency_quantile(api->lat, now_ns, 1, 0.99) / 1e6;
    sig->p99_10s_ms = (double)latency_quantile(api->lat, now_ns, 10, 0.99) / 1e6;
    sig->baseline_p99_ms = (double)latency_baseline(api->lat) / 1e6;
    sig->queries_10s = latency_count(api->lat, now_ns, 10);
    sig->loads_in_flight = (unsigned)t.loads_in_flight;
    sig->disk_free_bytes = api->disk_free_bytes;
}

/* Answers with an Error body, counting malformed requests. */
static void api_reply_error(struct node_api *api, struct evhttp_request *req, int status,
                            const char *code, const char *message)
{
    pbhttp_reply_error(req, status, code, message);
    if (status == 400 || status == 415)
        api->bad_requests++;
}

/* Counts a malformed request answered by the decode preamble; passes status on. */
static int api_counted(struct node_api *api, int status)
{
    if (status == 400 || status == 415)
        api->bad_requests++;
    return status;
}

static void api_fill_pressure(struct node_api *api, struct wire_pressure *p)
{
    const struct sampler_snapshot *s = &api->snap;
    struct store_totals t;

    memset(p, 0, sizeof(*p));
    store_totals(api->store, &t);
    p->loads_in_flight = t.loads_in_flight;
    p->p99_seconds = (double)latency_quantile(api->lat, clock_mono_ns(), 10, 0.99) * 1e-9;
    p->wss_bytes = wss_estimate(api->wss);
    p->pinned_bytes = t.pinned_bytes;
    if (api->have_snap) {
        p->tte_known = s->tte_valid && s->tte_ms != UINT64_MAX;
        p->tte_ms = p->tte_known ? s->tte_ms : 0;
        p->growth_bytes_per_s = s->growth_bytes_per_s;
        p->swapins_per_s = s->swapins_per_s;
        p->some_avg10 = s->some.avg10;
        p->full_avg10 = s->full.avg10;
        p->some_fraction = s->some_stall;
        p->full_fraction = s->full_stall;
        p->usage_bytes = s->cg_usage;
        p->limit_bytes = (s->have & SAMPLER_HAVE_LIMIT) ? s->limit_bytes : 0;
        p->psi_host_wide = s->psi_host_wide;
    }
    p->io_mode = api->bufpool != NULL ? WIRE_IO_DIRECT : WIRE_IO_MMAP;
    if (api->bufpool != NULL) {
        struct bufpool_stats ps;

        bufpool_stats(api->bufpool, &ps);
        p->pool_bytes = ps.budget_bytes;
        p->pool_hit_ratio = api->pool_hit_ratio;
        /* What the node holds, exactly, against what the cgroup counts. */
        p->wss_bytes = api_direct_bytes(api, &t);
    }
}

/* A reservation of estimated memory for a load in flight. */
struct api_reservation {
    uint64_t cost; /* what admission counted */
    uint64_t raw;  /* rows x avg_row_size, for learning the cost factor */
};

/* Called once per assignment with its outcome, as the single endpoint would answer it. */
typedef void (*api_assign_fn)(struct node_api *api, int status, enum wire_reason reason,
                              uint32_t retry_ms, const char *detail, void *arg);

struct api_assign_ctx {
    struct node_api *api;
    char id[WIRE_ID_MAX + 1];
    struct api_reservation res; /* zero when admission was skipped */
    api_assign_fn fn;
    void *arg;
};

/* Fills a response body for an outcome. */
static void api_assign_response(struct node_api *api, int status, enum wire_reason reason,
                                uint32_t retry_ms, const char *detail,
                                struct wire_assign_response *resp)
{
    memset(resp, 0, sizeof(*resp));
    resp->verdict = status == 202 ? WIRE_VERDICT_ACCEPTED : WIRE_VERDICT_REJECTED;
    resp->reason = reason;
    resp->retry_after_ms = retry_ms;
    api_fill_pressure(api, &resp->pressure);
    snprintf(resp->detail, sizeof(resp->detail), "%s", detail);
    resp->status = (uint32_t)status;
    api->assign_answers[reason < WIRE_REASON_COUNT_ ? reason : 0]++;
}

/* Answers an assignment; refusals carry the reason and a Retry-After. */
static void api_assign_reply(struct node_api *api, struct evhttp_request *req, int status,
                             enum wire_reason reason, uint32_t retry_ms, const char *detail)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    struct wire_assign_response resp;
    uint8_t *buf;
    size_t len;

    api_assign_response(api, status, reason, retry_ms, detail, &resp);
    if (status != 202) {
        pbhttp_set_error_header(req, detail);
        evhttp_add_header(h, "X-Sluice-Reason", reason_name(reason));
        if (retry_ms > 0) {
            char ra[16];
            snprintf(ra, sizeof(ra), "%u", (retry_ms + 999) / 1000);
            evhttp_add_header(h, "Retry-After", ra);
        }
    }
    buf = wire_assign_response_encode(&resp, &len);
    http_reply(req, status, WIRE_CONTENT_TYPE, buf, len);
    free(buf);
}

/* The Retry-After of a refusal that came from the store (after admission). */
static uint32_t api_store_retry_ms(const struct node_api *api, int status,
                                   enum wire_reason reason)
{
    if (status == 202 || status == 409 || status == 422)
        return 0;
    switch (reason) {
    case WIRE_REASON_DISK_FULL:
        return (uint32_t)api->acfg.retry_disk_ms;
    case WIRE_REASON_MEM_CAPACITY:
        return (uint32_t)api->acfg.retry_capacity_ms;
    case WIRE_REASON_DRAINING:
        return (uint32_t)api->acfg.retry_draining_ms;
    default:
        return 0;
    }
}

static void api_assign_done(int status, enum wire_reason reason, const char *detail, void *arg)
{
    struct api_assign_ctx *ctx = arg;
    struct node_api *api = ctx->api;

    if (ctx->res.cost > 0) {
        if (status == 202) {
            /* Held until the load ends (api_load_cb). */
            struct api_reservation *r = xmalloc(sizeof(*r));
            *r = ctx->res;
            free(strmap_put(api->reservations, ctx->id, r));
        } else {
            api->reserved_bytes -= ctx->res.cost;
        }
    }
    if (status == 409)
        api->assign_conflicts++;
    ctx->fn(api, status, reason, api_store_retry_ms(api, status, reason), detail, ctx->arg);
    free(ctx);
}

/*
 * Decides one assignment: admission (unless the node already holds the
 * segment, which makes this a retry), then the store. fn is called exactly
 * once, possibly before this returns.
 */
static void api_assign_one(struct node_api *api, const struct wire_assign_request *m,
                           api_assign_fn fn, void *arg)
{
    struct api_assign_ctx *ctx = xcalloc(1, sizeof(*ctx));

    ctx->api = api;
    ctx->fn = fn;
    ctx->arg = arg;
    snprintf(ctx->id, sizeof(ctx->id), "%s", m->segment_id);
    if (api->id_conflict) {
        char detail[WIRE_DETAIL_MAX + 1];

        snprintf(detail, sizeof(detail), "node id conflict: %.200s", api->id_conflict_detail);
        free(ctx);
        fn(api, 503, WIRE_REASON_DRAINING, (uint32_t)api->acfg.retry_draining_ms, detail, arg);
        return;
    }
    if (!store_holds(api->store, m->segment_id) && (api->admission_on || api->draining)) {
        struct admission_signals sig;
        struct admission_request ar;
        struct admission_verdict v;
        uint64_t t0;

        api_signals(api, &sig);
        ar.cost_bytes = admission_cost_estimate(&api->cost, m->row_count, m->avg_row_size);
        ar.file_bytes = m->row_count * m->avg_row_size;
        t0 = clock_mono_ns();
        if (api->admission_on) {
            admission_decide(&api->acfg, &sig, &api->astate, &ar, api_random(api), &v);
        } else {
            /* Admission off (baseline mode): only draining refuses. */
            memset(&v, 0, sizeof(v));
            v.accept = false;
            v.reason = WIRE_REASON_DRAINING;
            v.retry_after_ms = (uint32_t)api->acfg.retry_draining_ms;
            snprintf(v.detail, sizeof(v.detail), "node is draining");
        }
        histogram_record(&api->decision_ns, clock_mono_ns() - t0);
        if (!v.accept) {
            int status = reason_http_status(v.reason);
            log_debug("assign_refused", "id=%s status=%d reason=%s retry_ms=%u detail=%s",
                      log_q(m->segment_id), status, reason_name(v.reason),
                      v.retry_after_ms, log_q(v.detail));
            free(ctx);
            fn(api, status, v.reason, v.retry_after_ms, v.detail, arg);
            return;
        }
        ctx->res.cost = ar.cost_bytes > 0 ? ar.cost_bytes : 1;
        ctx->res.raw = ar.file_bytes;
        api->reserved_bytes += ctx->res.cost;
    }
    store_assign(api->store, m, api_assign_done, ctx);
}

/* The single endpoint's answer. */
static void api_assign_single_done(struct node_api *api, int status, enum wire_reason reason,
                                   uint32_t retry_ms, const char *detail, void *arg)
{
    struct evhttp_request *req = arg;

    /* Every decision, 409 included, is an AssignResponse, as in the batch. */
    api_assign_reply(api, req, status, reason, retry_ms, detail);
}

static void api_assign_cb(struct evhttp_request *req, const char *rest, void *arg)
{
    struct node_api *api = arg;
    struct wire_assign_request m;
    struct wire_error err;
    const void *body;
    size_t len;

    if (api_counted(api, pbhttp_take_body(req, &body, &len)) != 0 ||
        api_counted(api, pbhttp_decoded(req, wire_assign_request_decode(body, len, &m, &err), &err)) != 0)
        return;
    api_assign_one(api, &m, api_assign_single_done, req);
}

/* A batch in flight: it answers once every assignment in it is decided. */
struct api_batch {
    struct evhttp_request *req;
    size_t n, remaining;
    struct wire_assign_batch_response resp;
    struct api_batch_item {
        struct api_batch *batch;
        size_t index;
    } * items;
};

static void api_batch_item_done(struct node_api *api, int status, enum wire_reason reason,
                                uint32_t retry_ms, const char *detail, void *arg)
{
    struct api_batch_item *it = arg;
    struct api_batch *b = it->batch;
    uint8_t *buf;
    size_t len;

    api_assign_response(api, status, reason, retry_ms, detail, &b->resp.results[it->index]);
    if (--b->remaining > 0)
        return;
    buf = wire_assign_batch_response_encode(&b->resp, &len);
    http_reply(b->req, 200, WIRE_CONTENT_TYPE, buf, len);
    free(buf);
    wire_assign_batch_response_done(&b->resp);
    free(b->items);
    free(b);
}

static void api_assign_batch_cb(struct evhttp_request *req, const char *rest, void *arg)
{
    struct node_api *api = arg;
    struct wire_assign_batch m;
    struct wire_error err;
    struct api_batch *b;
    const void *body;
    size_t len, n;

    if (api_counted(api, pbhttp_take_body(req, &body, &len)) != 0 ||
        api_counted(api, pbhttp_decoded(req, wire_assign_batch_decode(body, len, &m, &err), &err)) != 0)
        return;
    n = m.n;
    b = xcalloc(1, sizeof(*b));
    b->req = req;
    b->n = b->remaining = n;
    b->resp.n = n;
    b->resp.results = xcalloc(n, sizeof(*b->resp.results));
    b->items = xcalloc(n, sizeof(*b->items));
    for (size_t i = 0; i < n; i++) {
        b->items[i].batch = b;
        b->items[i].index = i;
    }
    /* The last answer may come before the loop ends and frees b: use m and n only. */
    for (size_t i = 0; i < n; i++)
        api_assign_one(api, &m.assignments[i], api_batch_item_done, &b->items[i]);
    wire_assign_batch_done(&m);
}

/* A load ended: release its reservation and learn from its real footprint. */
static void api_load_cb(const char *id, bool ok, uint64_t file_bytes, uint64_t index_bytes,
                        void *arg)
{
    struct node_api *api = arg;
    struct api_reservation *r = strmap_remove(api->reservations, id);

    if (r == NULL)
        return;
    api->reserved_bytes -= r->cost;
    /* Direct mode holds a segment's heap and header in memory, not its file. */
    if (ok)
        admission_cost_learn(&api->cost, r->raw,
                             api->bufpool != NULL
                                 ? index_bytes + sizeof(struct segment_header)
                                 : file_bytes + index_bytes);
    free(r);
}

/* ---- pull mode -------------------------------------------------------- */

#define API_CLAIM_MAX_BATCH 64

struct api_claim {
    struct node_api *api;
    size_t n, remaining, accepted;
};

static void api_claim_item_done(struct node_api *api, int status, enum wire_reason reason,
                                uint32_t retry_ms, const char *detail, void *arg)
{
    struct api_claim *cl = arg;

    if (status == 202)
        cl->accepted++;
    else
        api->claim_refused_total++;
    if (--cl->remaining > 0)
        return;
    /* Additive increase when everything fitted, multiplicative decrease otherwise. */
    if (cl->accepted == cl->n && cl->n >= (size_t)api->claim_batch)
        api->claim_batch = api->claim_batch + 1 > API_CLAIM_MAX_BATCH ? API_CLAIM_MAX_BATCH
                                                                       : api->claim_batch + 1;
    else if (cl->accepted < cl->n)
        api->claim_batch = api->claim_batch / 2 < 1 ? 1 : api->claim_batch / 2;
    api->claimed_total += cl->accepted;
    free(cl);
}

static void api_claim_answer_cb(int status, const struct http_client_reply *reply, void *arg)
{
    struct node_api *api = arg;
    struct wire_claim_response resp;
    struct wire_error err;
    struct api_claim *cl;

    api->claim_in_flight = false;
    if (status != 200 || reply == NULL ||
        wire_claim_response_decode(reply->body, reply->body_len, &resp, &err) < 0)
        return;
    if (resp.n == 0) {
        wire_claim_response_done(&resp);
        return;
    }
    cl = xcalloc(1, sizeof(*cl));
    cl->api = api;
    cl->n = cl->remaining = resp.n;
    /* Each claimed segment goes through this node's own admission, like a push. */
    for (size_t i = 0, n = resp.n; i < n; i++)
        api_assign_one(api, &resp.assignments[i], api_claim_item_done, cl);
    wire_claim_response_done(&resp);
}

/* Claims more work while the gates are open and p99 is under the SLO. */
static void api_claim_tick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct node_api *api = arg;
    struct admission_signals sig;
    struct wire_claim_request req;
    bool pressure = api->draining;
    uint8_t *body;
    size_t len;

    if (api->claim_in_flight || api->id_conflict)
        return;
    api_signals(api, &sig);
    for (int g = WIRE_REASON_MEM_CRITICAL; g <= WIRE_REASON_LATENCY_SLO; g++)
        pressure |= admission_gate_closed(&api->astate, (enum wire_reason)g);
    if (api->acfg.latency_slo_ms > 0 && sig.queries_10s >= (uint64_t)api->acfg.latency_min_queries &&
        sig.p99_10s_ms > (double)api->acfg.latency_slo_ms)
        pressure = true;
    if (pressure) {
        api->claim_batch = api->claim_batch / 2 < 1 ? 1 : api->claim_batch / 2;
        return;
    }
    memset(&req, 0, sizeof(req));
    snprintf(req.node_id, sizeof(req.node_id), "%s", api->node_id);
    req.max_segments = (uint32_t)api->claim_batch;
    body = wire_claim_request_encode(&req, &len);
    if (http_client_request(api->claim_client, EVHTTP_REQ_POST, "/v1/claim", WIRE_CONTENT_TYPE,
                            body, len, api_claim_answer_cb, api) == 0)
        api->claim_in_flight = true;
    free(body);
}

static void api_drain_cb(struct evhttp_request *req, const char *rest, void *arg)
{
    struct node_api *api = arg;
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    bool drain = path != NULL && strcmp(path, "/v1/drain") == 0;

    if (api->draining != drain)
        log_info("node_state", "node=%s transition=\"%s -> %s\" reason=\"operator\"",
                 api->node_id, api->draining ? "DRAINING" : "SERVING",
                 drain ? "DRAINING" : "SERVING");
    api->draining = drain;
    http_reply_text(req, 200, "%s\n", drain ? "DRAINING" : "SERVING");
}

struct api_delete_ctx {
    struct node_api *api;
    struct evhttp_request *req;
};

static void api_delete_done(int status, const char *detail, void *arg)
{
    struct api_delete_ctx *ctx = arg;

    if (status == 200)
        http_reply_text(ctx->req, 200, "deleted\n");
    else
        api_reply_error(ctx->api, ctx->req, status,
                        status == 404   ? "not_found"
                        : status == 409 ? "conflict"
                                        : "internal",
                        detail);
    free(ctx);
}

static void api_delete_cb(struct evhttp_request *req, const char *rest, void *arg)
{
    struct node_api *api = arg;
    struct api_delete_ctx *ctx;
    struct wire_error err;

    if (wire_check_segment_id("segment id in path", rest, &err) < 0) {
        api_reply_error(api, req, 400, err.code, err.message);
        return;
    }
    ctx = xmalloc(sizeof(*ctx));
    ctx->api = api;
    ctx->req = req;
    store_delete(api->store, rest, api_delete_done, ctx);
}

/* A query in flight: the referenced segments, their plans, and the result. */
struct api_query_job {
    struct node_api *api;
    struct evhttp_request *req;
    uint64_t start_ns;
    enum wire_aggregate aggregate;
    size_t n;
    struct store_seg **segs;
    struct query_plan *plans;
    struct query_acc acc;
    size_t cur;         /* the segment being scanned */
    bool faulted;       /* reading segs[cur] faulted (SIGBUS) */
    char fault_detail[200];
};

/* Scans segs[job->cur] into job->acc (under store_seg_read's fault guard). */
static void api_query_scan_one(void *arg)
{
    struct api_query_job *job = arg;
    size_t i = job->cur;

    query_scan(&job->plans[i], store_seg_base(job->segs[i]), store_seg_header(job->segs[i]),
               store_seg_index(job->segs[i]), &job->acc);
}

/*
 * Direct mode: no mapping, so no fault to guard; a failed read is an error
 * code, and fails the segment the same way a fault does in mmap mode.
 */
static bool api_query_scan_direct(struct api_query_job *job)
{
    struct store_seg *seg = job->segs[job->cur];
    struct query_source src;
    int r;

    store_seg_source(seg, &src);
    r = query_scan_source(&job->plans[job->cur], &src, store_seg_header(seg),
                          store_seg_index(seg), &job->acc);
    if (r < 0)
        snprintf(job->fault_detail, sizeof(job->fault_detail),
                 "reading the local copy with O_DIRECT failed: %s", strerror(-r));
    return r == 0;
}

static void api_query_work(void *arg)
{
    struct api_query_job *job = arg;

    for (job->cur = 0; job->cur < job->n; job->cur++) {
        if (store_seg_base(job->segs[job->cur]) == NULL) {
            if (!api_query_scan_direct(job)) {
                job->faulted = true;
                return;
            }
            continue;
        }
        if (store_seg_read(job->segs[job->cur], api_query_scan_one, job, job->fault_detail,
                           sizeof(job->fault_detail)) < 0) {
            job->faulted = true;
            return;
        }
    }
}

static void api_query_job_free(struct api_query_job *job)
{
    for (size_t i = 0; i < job->n; i++)
        store_seg_unref(job->segs[i]);
    free(job->segs);
    free(job->plans);
    free(job);
}

static void api_query_done(void *arg)
{
    struct api_query_job *job = arg;
    struct node_api *api = job->api;
    struct wire_query_response resp;
    uint64_t now_ms = clock_wall_ms();
    uint8_t *buf;
    size_t len;

    if (job->faulted) {
        /*
         * The segment's local copy is unreadable: it is FAILED from now on
         * (the coordinator hears so and places it again), and this query
         * gets an error that names it. The node and its other segments
         * carry on.
         */
        const char *id = store_seg_id(job->segs[job->cur]);
        char msg[300];

        (void)store_fail(api->store, id, job->fault_detail);
        snprintf(msg, sizeof(msg), "segment %s: %s; it is FAILED on this node", id,
                 job->fault_detail);
        log_warn("query_fault", "segment=%s detail=%s", log_q(id), log_q(job->fault_detail));
        api->queries_failed++;
        api->queries_in_flight--;
        api_reply_error(api, job->req, 500, "segment_failed", msg);
        api_query_job_free(job);
        return;
    }
    query_acc_result(&job->acc, job->aggregate, &resp);
    buf = wire_query_response_encode(&resp, &len);
    http_reply(job->req, 200, WIRE_CONTENT_TYPE, buf, len);
    free(buf);
    for (size_t i = 0; i < job->n; i++) {
        store_seg_touch(job->segs[i], now_ms);
        /* COUNT reads only the filter column. */
        store_seg_record_query(job->segs[i],
                               job->aggregate == WIRE_AGG_COUNT ? -1 : job->plans[i].column,
                               job->plans[i].filter_column, api_now_ms());
    }
    api->queries_ok++;
    api->queries_in_flight--;
    api->query_bytes += resp.bytes_scanned;
    api->query_rows += resp.rows_scanned;
    {
        uint64_t now = clock_mono_ns();
        histogram_record(&api->query_latency, now - job->start_ns);
        latency_record(api->lat, now, now - job->start_ns);
    }
    api_touch(api, resp.bytes_scanned);
    api_query_job_free(job);
}

static void api_query_cb(struct evhttp_request *req, const char *rest, void *arg)
{
    struct node_api *api = arg;
    struct api_query_job *job = NULL;
    struct wire_query_request q;
    struct wire_error err;
    const void *body;
    char msg[256];
    size_t len;
    int r;

    if (api_counted(api, pbhttp_take_body(req, &body, &len)) != 0)
        return;
    if (api->id_conflict) {
        api->queries_refused++;
        snprintf(msg, sizeof(msg), "node id conflict: %.200s", api->id_conflict_detail);
        api_reply_error(api, req, 503, "node_id_conflict", msg);
        return;
    }
    /*
     * A bounded queue: beyond max_queries in flight, refuse at once rather
     * than let every admitted query wait behind an unbounded backlog.
     */
    if (api->queries_in_flight >= api->max_queries) {
        api->queries_refused++;
        snprintf(msg, sizeof(msg), "%u queries in flight, the limit is %u (--max-queries)",
                 api->queries_in_flight, api->max_queries);
        evhttp_add_header(evhttp_request_get_output_headers(req), "X-Sluice-Reason",
                          reason_name(WIRE_REASON_LOAD_CONCURRENCY));
        evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "1");
        api_reply_error(api, req, 429, "overloaded", msg);
        return;
    }
    if (api_counted(api, pbhttp_decoded(req, wire_query_request_decode(body, len, &q, &err), &err)) !=
        0) {
        api->queries_failed++;
        return;
    }
    job = xcalloc(1, sizeof(*job));
    job->api = api;
    job->req = req;
    job->start_ns = clock_mono_ns();
    job->aggregate = q.aggregate;
    job->segs = xcalloc(q.n_segments, sizeof(*job->segs));
    job->plans = xcalloc(q.n_segments, sizeof(*job->plans));
    for (size_t i = 0; i < q.n_segments; i++) {
        struct store_seg *seg = store_get_loaded(api->store, q.segment_ids[i], msg, sizeof(msg));

        if (seg == NULL) {
            api->queries_failed++;
            api_reply_error(api, req, 404, "not_found", msg);
            goto fail;
        }
        job->segs[job->n++] = seg;
        r = query_plan_make(store_seg_header(seg), q.aggregate, q.column, q.filter_column, q.lo,
                            q.hi, &job->plans[i], msg, sizeof(msg));
        if (r == 0 && i > 0 && job->plans[i].is_float != job->plans[0].is_float) {
            snprintf(msg, sizeof(msg), "column: \"%s\" has different types in %s and %s",
                     q.column, q.segment_ids[0], q.segment_ids[i]);
            r = -EINVAL;
        }
        if (r < 0) {
            char full[300];
            snprintf(full, sizeof(full), "segment %s: %s", q.segment_ids[i], msg);
            api->queries_failed++;
            api_reply_error(api, req, 400, "invalid_field", full);
            goto fail;
        }
    }
    query_acc_init(&job->acc, job->plans[0].is_float);
    wire_query_request_done(&q);
    api->queries_in_flight++;
    pool_submit(api->pool, api_query_work, api_query_done, job);
    return;
fail:
    wire_query_request_done(&q);
    api_query_job_free(job);
}

static void api_status_cb(struct evhttp_request *req, const char *rest, void *arg)
{
    struct node_api *api = arg;
    struct wire_node_status st;
    uint8_t *buf;
    size_t len;

    memset(&st, 0, sizeof(st));
    snprintf(st.node_id, sizeof(st.node_id), "%s", api->node_id);
    st.state = api->draining ? WIRE_NODE_DRAINING : WIRE_NODE_SERVING;
    store_status(api->store, &st);
    api_fill_pressure(api, &st.pressure);
    snprintf(st.version, sizeof(st.version), "%s", SLUICE_VERSION);
    snprintf(st.signal_sources, sizeof(st.signal_sources), "%.400s wss=%s admission=%s", api->sources,
             wss_source_name(wss_source(api->wss)), api->admission_on ? "on" : "off");
    st.cost_factor = api->cost.factor > 0 ? api->cost.factor : 1.0;
    for (int g = ADMISSION_GATE_FIRST, o = 0; g < WIRE_REASON_COUNT_; g++) {
        if (admission_gate_closed(&api->astate, (enum wire_reason)g) && o < 200)
            o += snprintf(st.closed_gates + o, sizeof(st.closed_gates) - (size_t)o, "%s%s",
                          o > 0 ? " " : "", reason_name((enum wire_reason)g));
    }
    st.uptime_seconds = (clock_mono_ns() - api->started_mono_ns) / 1000000000ull;
    buf = wire_node_status_encode(&st, &len);
    http_reply(req, 200, WIRE_CONTENT_TYPE, buf, len);
    free(buf);
    wire_node_status_done(&st);
}

/* Residency of every mapped segment and free disk, measured on a worker. */
struct api_residency {
    struct node_api *api;
    struct store_seg **segs;
    size_t n;
    uint64_t resident, disk_free;
    char *segdir;
};

static void api_residency_work(void *arg)
{
    struct api_residency *r = arg;
    struct statvfs vfs;

    for (size_t i = 0; i < r->n; i++) {
        const struct segment_header *h = store_seg_header(r->segs[i]);
        const char *base = store_seg_base(r->segs[i]);

        if (base == NULL)
            continue; /* direct mode: nothing mapped */

        /* Mapped columns only: an anonymous column's file pages are never read again. */
        for (unsigned c = 0; c < h->column_count; c++) {
            uint64_t b = 0, start = h->columns[c].offset & ~(uint64_t)4095;
            uint64_t len = h->columns[c].offset + h->columns[c].length - start;

            if ((h->columns[c].flags & SEGMENT_COL_ANON) || h->columns[c].length == 0)
                continue;
            if (wss_resident_bytes(base + start, len, &b) == 0)
                r->resident += b;
        }
    }
    r->disk_free = statvfs(r->segdir, &vfs) == 0 ? (uint64_t)vfs.f_bavail * vfs.f_frsize
                                                 : UINT64_MAX;
}

static void api_residency_done(void *arg)
{
    struct api_residency *r = arg;

    r->api->resident_bytes = r->resident;
    r->api->disk_free_bytes = r->disk_free;
    r->api->residency_running = false;
    for (size_t i = 0; i < r->n; i++)
        store_seg_unref(r->segs[i]);
    free(r->segs);
    free(r->segdir);
    free(r);
}

/* Once a second: the pool's rates over the last second. */
static void api_pool_tick(struct node_api *api)
{
    struct bufpool_stats now, *prev = &api->pool_prev;
    uint64_t lookups, reads;

    bufpool_stats(api->bufpool, &now);
    lookups = (now.hits - prev->hits) + (now.misses - prev->misses);
    reads = now.reads - prev->reads;
    if (lookups > 0)
        api->pool_hit_ratio = (double)(now.hits - prev->hits) / (double)lookups;
    api->pool_misses_per_s = (double)(now.misses - prev->misses);
    api->pool_read_bytes_per_s = (double)(now.read_bytes - prev->read_bytes);
    api->pool_read_latency_s = reads > 0 ? (double)(now.read_ns - prev->read_ns) / 1e9 / (double)reads
                                         : 0;
    *prev = now;
}

/* Logs gate transitions ("open -> closed (reason)") and counts closings. */
static void api_note_gates(struct node_api *api, const bool *before)
{
    for (int g = ADMISSION_GATE_FIRST; g < WIRE_REASON_COUNT_; g++) {
        if (!admission_is_gate((enum wire_reason)g))
            continue;
        bool now = admission_gate_closed(&api->astate, (enum wire_reason)g);
        if (now == before[g])
            continue;
        if (now)
            api->gate_closed_total[g]++;
        log_info("admission_gate", "gate=%s transition=\"%s -> %s\"",
                 reason_name((enum wire_reason)g), before[g] ? "closed" : "open",
                 now ? "closed" : "open");
    }
}

/*
 * Every 100 ms: read the sampler's snapshot, update the working-set
 * estimate, let admission observe, and shed under sustained critical
 * pressure. Every second: the latency baseline and a residency measurement.
 */
static void api_tick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct node_api *api = arg;
    struct store_totals t;
    struct wss_inputs in;
    uint64_t now_ms = api_now_ms();
    bool before[WIRE_REASON_COUNT_];

    api->ticks++;
    if (api->sampler != NULL && sampler_read(api->sampler, &api->snap) == 0)
        api->have_snap = true;
    store_totals(api->store, &t);
    memset(&in, 0, sizeof(in));
    in.cgroup_usage = WSS_UNKNOWN;
    in.inactive_file = WSS_UNKNOWN;
    if (api->have_snap && (api->snap.have & SAMPLER_HAVE_CG_USAGE) &&
        (api->snap.have & SAMPLER_HAVE_CG_STAT)) {
        in.cgroup_usage = api->snap.cg_usage;
        in.inactive_file = api->snap.cg_inactive_file;
    }
    in.touched = api_touched(api);
    if (in.touched > t.mapped_bytes)
        in.touched = t.mapped_bytes;
    in.resident = api->resident_bytes;
    in.anon = t.index_bytes;
    wss_update(api->wss, &in, now_ms);
    if (api->admission_on) {
        struct admission_signals sig;

        for (int g = 0; g < WIRE_REASON_COUNT_; g++)
            before[g] = admission_gate_closed(&api->astate, (enum wire_reason)g);
        api_signals(api, &sig);
        admission_observe(&api->acfg, &sig, &api->astate);
        api_note_gates(api, before);
        if (admission_should_shed(&api->acfg, &api->astate, &sig)) {
            const char *id = store_coldest(api->store);
            enum wire_reason why =
                admission_gate_closed(&api->astate, WIRE_REASON_MEM_CRITICAL)
                    ? WIRE_REASON_MEM_CRITICAL
                    : WIRE_REASON_MEM_THRASHING;
            char detail[160];

            if (id != NULL) {
                snprintf(detail, sizeof(detail),
                         "shed under sustained %s (full stall %.3f, refaults %.0f/s)",
                         reason_name(why), sig.full_frac, sig.refaults_per_s);
                if (store_shed(api->store, id, why, detail) == 0)
                    api->shed_total[why]++;
            }
            admission_note_shed(&api->astate, now_ms);
        }
    }
    if (api->ticks % (1000 / API_TICK_MS) == 0)
        store_pin_tick(api->store, now_ms);
    if (api->ticks % (1000 / API_TICK_MS) == 0) {
        latency_tick(api->lat, clock_mono_ns());
        if (api->bufpool != NULL)
            api_pool_tick(api);
        if (!api->residency_running) {
            struct api_residency *r = xcalloc(1, sizeof(*r));
            r->api = api;
            r->n = store_loaded_refs(api->store, &r->segs);
            r->segdir = xstrdup(store_segdir(api->store));
            api->residency_running = true;
            pool_submit(api->pool, api_residency_work, api_residency_done, r);
        }
    }
}

static void api_report_fill(void *arg, enum wire_node_state *state, struct wire_pressure *p)
{
    struct node_api *api = arg;

    *state = api->draining ? WIRE_NODE_DRAINING : WIRE_NODE_SERVING;
    api_fill_pressure(api, p);
}

/* The reporter's word on this node's id: detail while refused, NULL once accepted. */
static void api_conflict_cb(void *arg, const char *detail)
{
    struct node_api *api = arg;

    api->id_conflict = detail != NULL;
    snprintf(api->id_conflict_detail, sizeof(api->id_conflict_detail), "%s",
             detail != NULL ? detail : "");
}

static void api_healthz_cb(struct evhttp_request *req, const char *rest, void *arg)
{
    http_reply_text(req, 200, "ok\n");
}

/* Resident set size from /proc/self/statm (procfs: no disk I/O). */
static uint64_t api_rss_bytes(void)
{
    unsigned long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "re");

    if (f == NULL)
        return 0;
    if (fscanf(f, "%lu %lu", &size, &resident) != 2)
        resident = 0;
    fclose(f);
    return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* The I/O mode and, in direct mode, the buffer pool's families. */
static void api_metrics_pool(struct node_api *api, struct metrics_buf *m,
                             const struct store_totals *t)
{
    struct bufpool_stats ps;

    metrics_family(m, "sluice_node_io_mode", "gauge", "1 for the I/O mode this node runs in.");
    {
        const char *mm[] = {"mode", "mmap", NULL}, *dm[] = {"mode", "direct", NULL};
        metrics_sample_u64(m, "sluice_node_io_mode", api->bufpool == NULL ? 1 : 0, mm);
        metrics_sample_u64(m, "sluice_node_io_mode", api->bufpool != NULL ? 1 : 0, dm);
    }
    if (api->bufpool == NULL)
        return;
    bufpool_stats(api->bufpool, &ps);
    metrics_one_u64(m, "sluice_node_pool_bytes", "gauge",
                    "Buffer pool frame memory (--cache-budget), allocated once at start.",
                    ps.budget_bytes);
    metrics_one_u64(m, "sluice_node_pool_overhead_bytes", "gauge",
                    "Heap of the buffer pool's tables beside its frames.", ps.overhead_bytes);
    metrics_one_u64(m, "sluice_node_pool_used_bytes", "gauge",
                    "Pool frames holding a block or a read in flight.",
                    ps.frames_used * ps.block_bytes);
    metrics_one_u64(m, "sluice_node_pool_pinned_frame_bytes", "gauge",
                    "Pool frames pinned by running scans.", ps.pinned_frames * ps.block_bytes);
    metrics_one_u64(m, "sluice_node_pool_hits_total", "counter",
                    "Block lookups answered from the pool.", ps.hits);
    metrics_one_u64(m, "sluice_node_pool_misses_total", "counter",
                    "Block lookups that had to read from disk.", ps.misses);
    metrics_one_u64(m, "sluice_node_pool_evictions_total", "counter",
                    "Blocks evicted from the pool.", ps.evictions);
    metrics_one_u64(m, "sluice_node_pool_reads_total", "counter", "O_DIRECT block reads.",
                    ps.reads);
    metrics_one_u64(m, "sluice_node_pool_read_bytes_total", "counter",
                    "Bytes read with O_DIRECT into the pool.", ps.read_bytes);
    metrics_one(m, "sluice_node_pool_read_seconds_total", "counter",
                "Summed latency of the pool's reads (divide by reads_total for the mean).",
                (double)ps.read_ns / 1e9);
    metrics_one_u64(m, "sluice_node_pool_read_errors_total", "counter",
                    "Pool reads that failed.", ps.read_errors);
    metrics_one(m, "sluice_node_pool_hit_ratio", "gauge",
                "Share of block lookups answered from the pool over the last second.",
                api->pool_hit_ratio);
    metrics_one(m, "sluice_node_pool_read_latency_seconds", "gauge",
                "Mean latency of the pool's reads over the last second.",
                api->pool_read_latency_s);
    metrics_one_u64(m, "sluice_node_direct_memory_bytes", "gauge",
                    "What a direct-mode node holds, exactly: pool, its tables, heaps, metadata.",
                    api_direct_bytes(api, t));
}

static void api_metrics_cb(struct evhttp_request *req, const char *rest, void *arg)
{
    struct node_api *api = arg;
    struct metrics_buf *m = metrics_buf_new();
    struct http_server_stats hs;
    struct store_totals t;
    struct rusage ru;

    store_totals(api->store, &t);
    http_server_get_stats(api->http, &hs);
    getrusage(RUSAGE_SELF, &ru);

    metrics_family(m, "sluice_node_segments", "gauge", "Segments on this node by state.");
    for (int s = WIRE_SEG_LOADING; s < WIRE_SEG_COUNT_; s++) {
        const char *labels[] = {"state", wire_segment_state_name((enum wire_segment_state)s),
                                NULL};
        metrics_sample_u64(m, "sluice_node_segments", t.segments[s], labels);
    }
    metrics_one_u64(m, "sluice_node_mapped_bytes", "gauge",
                    "Bytes of local segment copies mapped into memory (file-backed).",
                    t.mapped_bytes);
    metrics_one_u64(m, "sluice_node_index_bytes", "gauge",
                    "Heap bytes of zone-map indexes (anonymous memory).", t.index_bytes);
    api_metrics_pool(api, m, &t);
    metrics_one_u64(m, "sluice_node_loads_in_flight", "gauge",
                    "Assignments being checked or loaded.", t.loads_in_flight);
    metrics_family(m, "sluice_node_loads_total", "counter", "Finished segment loads by result.");
    {
        const char *ok[] = {"result", "ok", NULL}, *failed[] = {"result", "failed", NULL};
        metrics_sample_u64(m, "sluice_node_loads_total", t.loads_ok_total, ok);
        metrics_sample_u64(m, "sluice_node_loads_total", t.loads_failed_total, failed);
    }
    metrics_one_u64(m, "sluice_node_copied_bytes_total", "counter",
                    "Bytes copied from the storage root into the data directory.",
                    t.copied_bytes_total);
    metrics_one_u64(m, "sluice_node_unloads_total", "counter", "Segments deleted from this node.",
                    t.deletes_total);
    metrics_one_u64(m, "sluice_node_pinned_bytes", "gauge",
                    "Segment memory mlock'ed under --mlock-budget (headers, zone maps, hot "
                    "columns), in whole pages.",
                    t.pinned_bytes);
    metrics_one_u64(m, "sluice_node_mlock_budget_bytes", "gauge",
                    "The --mlock-budget (0: nothing is pinned).", api->mlock_budget);
    metrics_one_u64(m, "sluice_node_mlock_refused_total", "counter",
                    "mlock calls the kernel refused (the choice was then kept smaller).",
                    t.pin_failures_total);
    metrics_one_u64(m, "sluice_node_segment_faults_total", "counter",
                    "LOADED segments failed because a read of their mapping faulted (SIGBUS: "
                    "the local copy shrank or its disk failed).",
                    t.faults_total);
    metrics_family(m, "sluice_node_assignments_total", "counter",
                   "Answers to assignments: accepted, or refused with a reason.");
    for (int r = 0; r < WIRE_REASON_COUNT_; r++) {
        const char *labels[] = {"verdict", r == 0 ? "accepted" : "rejected", "reason",
                                reason_name((enum wire_reason)r), NULL};
        if (r == 0 || api->assign_answers[r] > 0)
            metrics_sample_u64(m, "sluice_node_assignments_total", api->assign_answers[r], labels);
    }
    metrics_one_u64(m, "sluice_node_bad_requests_total", "counter",
                    "Requests refused as malformed (400, 415).", api->bad_requests);
    metrics_family(m, "sluice_node_queries_total", "counter", "Queries by result.");
    {
        const char *ok[] = {"result", "ok", NULL}, *failed[] = {"result", "error", NULL};
        metrics_sample_u64(m, "sluice_node_queries_total", api->queries_ok, ok);
        metrics_sample_u64(m, "sluice_node_queries_total", api->queries_failed, failed);
    }
    metrics_one_u64(m, "sluice_node_queries_refused_total", "counter",
                    "Queries refused with 429 LOAD_CONCURRENCY (--max-queries in flight).",
                    api->queries_refused);
    metrics_one_u64(m, "sluice_node_queries_in_flight", "gauge", "Queries being scanned.",
                    api->queries_in_flight);
    metrics_one_u64(m, "sluice_node_query_scanned_bytes_total", "counter",
                    "Column bytes read by query scans.", api->query_bytes);
    metrics_one_u64(m, "sluice_node_query_scanned_rows_total", "counter",
                    "Rows visited by query scans (zone-map skips excluded).", api->query_rows);
    metrics_histogram(m, "sluice_node_query_duration_seconds",
                      "Query latency from request to reply.", &api->query_latency, 1e-9, NULL);

    /* The signals admission decides on, as it sees them now. */
    {
        struct admission_signals sig;
        const struct sampler_snapshot *sn = &api->snap;

        api_signals(api, &sig);
        metrics_family(m, "sluice_node_psi_stall_fraction", "gauge",
                       "Memory stall fraction over the last sample interval (PSI total= deltas).");
        {
            const char *some[] = {"kind", "some", NULL}, *full[] = {"kind", "full", NULL};
            metrics_sample(m, "sluice_node_psi_stall_fraction", sig.some_frac, some);
            metrics_sample(m, "sluice_node_psi_stall_fraction", sig.full_frac, full);
        }
        metrics_family(m, "sluice_node_psi_avg10_percent", "gauge", "PSI memory avg10.");
        {
            const char *some[] = {"kind", "some", NULL}, *full[] = {"kind", "full", NULL};
            metrics_sample(m, "sluice_node_psi_avg10_percent", sig.some_avg10, some);
            metrics_sample(m, "sluice_node_psi_avg10_percent", sig.full_avg10, full);
        }
        metrics_family(m, "sluice_node_psi_stall_seconds_total", "counter",
                       "Cumulative memory stall time (PSI total=).");
        {
            const char *some[] = {"kind", "some", NULL}, *full[] = {"kind", "full", NULL};
            metrics_sample(m, "sluice_node_psi_stall_seconds_total",
                           (double)sn->some.total_us * 1e-6, some);
            metrics_sample(m, "sluice_node_psi_stall_seconds_total",
                           (double)sn->full.total_us * 1e-6, full);
        }
        metrics_one_u64(m, "sluice_node_memory_usage_bytes", "gauge", "Memory cgroup usage.",
                        sn->cg_usage);
        metrics_one_u64(m, "sluice_node_memory_limit_bytes", "gauge",
                        "Effective memory limit: min(cgroup max/high, MemTotal).", sig.limit_bytes);
        metrics_one_u64(m, "sluice_node_memory_inactive_file_bytes", "gauge",
                        "The cgroup's inactive page cache.", sn->cg_inactive_file);
        metrics_one_u64(m, "sluice_node_wss_bytes", "gauge",
                        "Working-set estimate (measured, smoothed).", wss_estimate(api->wss));
        metrics_one_u64(m, "sluice_node_admission_footprint_bytes", "gauge",
                        "What the capacity gate counts: max(working set, committed bytes).",
                        sig.wss_bytes);
        metrics_one_u64(m, "sluice_node_admission_reserved_bytes", "gauge",
                        "Estimated memory of loads admitted and still loading.",
                        sig.reserved_bytes);
        metrics_one_u64(m, "sluice_node_admission_limit_bytes", "gauge",
                        "Admit limit (memory limit x high watermark, or the budget).",
                        admission_admit_limit(&api->acfg, &sig));
        metrics_one_u64(m, "sluice_node_resident_bytes", "gauge",
                        "Resident bytes of mapped segments (mincore).", api->resident_bytes);
        metrics_one(m, "sluice_node_refaults_per_second", "gauge",
                    "Workingset refaults per second.", sig.refaults_per_s);
        metrics_one(m, "sluice_node_pgscan_per_second", "gauge",
                    "Pages scanned by reclaim per second.", sig.pgscan_per_s);
        metrics_one_u64(m, "sluice_node_swap_bytes", "gauge", "Swap used by the cgroup.",
                        sn->cg_swap);
        metrics_family(m, "sluice_node_swap_pages_per_second", "gauge", "Host swap-in/out rates.");
        {
            const char *in[] = {"direction", "in", NULL}, *out[] = {"direction", "out", NULL};
            metrics_sample(m, "sluice_node_swap_pages_per_second", sn->pswpin_per_s, in);
            metrics_sample(m, "sluice_node_swap_pages_per_second", sn->pswpout_per_s, out);
        }
        metrics_one_u64(m, "sluice_node_oom_kills_total", "counter",
                        "oom_kill events counted by the cgroup (or host).", sn->oom_kill);
        metrics_family(m, "sluice_node_query_p99_seconds", "gauge", "Query p99 by window.");
        {
            const char *w1[] = {"window", "1s", NULL}, *w10[] = {"window", "10s", NULL};
            const char *wb[] = {"window", "baseline", NULL};
            metrics_sample(m, "sluice_node_query_p99_seconds", sig.p99_1s_ms * 1e-3, w1);
            metrics_sample(m, "sluice_node_query_p99_seconds", sig.p99_10s_ms * 1e-3, w10);
            metrics_sample(m, "sluice_node_query_p99_seconds", sig.baseline_p99_ms * 1e-3, wb);
        }
    }
    metrics_family(m, "sluice_node_admission_gate_closed", "gauge",
                   "1 while an admission gate is closed.");
    for (int g = ADMISSION_GATE_FIRST; g < WIRE_REASON_COUNT_; g++) {
        if (!admission_is_gate((enum wire_reason)g))
            continue;
        const char *labels[] = {"reason", reason_name((enum wire_reason)g), NULL};
        metrics_sample_u64(m, "sluice_node_admission_gate_closed",
                           admission_gate_closed(&api->astate, (enum wire_reason)g), labels);
    }
    metrics_family(m, "sluice_node_admission_gate_closings_total", "counter",
                   "Times each gate closed.");
    for (int g = ADMISSION_GATE_FIRST; g < WIRE_REASON_COUNT_; g++) {
        if (!admission_is_gate((enum wire_reason)g))
            continue;
        const char *labels[] = {"reason", reason_name((enum wire_reason)g), NULL};
        metrics_sample_u64(m, "sluice_node_admission_gate_closings_total",
                           api->gate_closed_total[g], labels);
    }
    metrics_family(m, "sluice_node_admission_rejections_total", "counter",
                   "Assignments refused, by reason.");
    for (int r = 1; r < WIRE_REASON_COUNT_; r++) {
        const char *labels[] = {"reason", reason_name((enum wire_reason)r), NULL};
        metrics_sample_u64(m, "sluice_node_admission_rejections_total", api->assign_answers[r],
                           labels);
    }
    metrics_histogram(m, "sluice_node_admission_decision_seconds",
                      "Time to decide an assignment (admission_decide).", &api->decision_ns, 1e-9,
                      NULL);
    metrics_one(m, "sluice_node_admission_cost_factor", "gauge",
                "Learned footprint / (rows x avg_row_size) of loaded segments.",
                api->cost.factor > 0 ? api->cost.factor : 1.0);
    metrics_family(m, "sluice_node_shed_total", "counter",
                   "Segments shed (DROPPED) under sustained pressure, by reason.");
    for (int r = WIRE_REASON_MEM_CRITICAL; r <= WIRE_REASON_MEM_THRASHING; r++) {
        const char *labels[] = {"reason", reason_name((enum wire_reason)r), NULL};
        metrics_sample_u64(m, "sluice_node_shed_total", api->shed_total[r], labels);
    }
    metrics_one_u64(m, "sluice_node_claimed_total", "counter",
                    "Pull mode: segments claimed from the coordinator and accepted.",
                    api->claimed_total);
    metrics_one(m, "sluice_node_claim_batch", "gauge", "Pull mode: the current claim size (AIMD).",
                api->claim_batch);
    metrics_one_u64(m, "sluice_node_id_conflict", "gauge",
                    "1 while the coordinator holds this node's id for another address (the "
                    "node serves nothing).",
                    api->id_conflict);
    metrics_one_u64(m, "sluice_node_draining", "gauge", "1 while the node is draining.",
                    api->draining);
    {
        struct reporter_stats rs = {0};
        const char *ok[] = {"outcome", "ok", NULL}, *failed[] = {"outcome", "failed", NULL};

        if (api->reporter != NULL)
            reporter_get_stats(api->reporter, &rs);
        metrics_family(m, "sluice_node_reports_total", "counter",
                       "Reports to the coordinator, by outcome (failed: no answer, an error "
                       "status or an answer that did not decode).");
        metrics_sample_u64(m, "sluice_node_reports_total", rs.sent, ok);
        metrics_sample_u64(m, "sluice_node_reports_total", rs.failed, failed);
        metrics_one_u64(m, "sluice_node_report_drops_total", "counter",
                        "Segments the coordinator's answers told this node to drop.", rs.dropped);
        if (rs.last_ok_mono_ms > 0)
            metrics_one(m, "sluice_node_report_age_seconds", "gauge",
                        "Seconds since the last report the coordinator answered.",
                        (double)(clock_mono_ns() / 1000000 - rs.last_ok_mono_ms) / 1000.0);
    }

    metrics_one_u64(m, "sluice_http_connections_live", "gauge", "Open HTTP connections.",
                    hs.connections_live);
    metrics_family(m, "sluice_http_connections_total", "counter",
                   "Accepted HTTP connections, and those closed by the cap or the deadline.");
    {
        const char *acc[] = {"outcome", "accepted", NULL};
        const char *cap[] = {"outcome", "rejected_cap", NULL};
        const char *dl[] = {"outcome", "closed_deadline", NULL};
        metrics_sample_u64(m, "sluice_http_connections_total", hs.connections_accepted, acc);
        metrics_sample_u64(m, "sluice_http_connections_total", hs.connections_rejected_cap, cap);
        metrics_sample_u64(m, "sluice_http_connections_total", hs.connections_closed_deadline,
                           dl);
    }
    metrics_family(m, "sluice_http_responses_total", "counter", "HTTP responses by class.");
    {
        const char *c2[] = {"class", "2xx", NULL}, *c4[] = {"class", "4xx", NULL};
        const char *c5[] = {"class", "5xx", NULL};
        metrics_sample_u64(m, "sluice_http_responses_total", hs.responses_2xx, c2);
        metrics_sample_u64(m, "sluice_http_responses_total", hs.responses_4xx, c4);
        metrics_sample_u64(m, "sluice_http_responses_total", hs.responses_5xx, c5);
    }
    metrics_one_u64(m, "sluice_process_resident_bytes", "gauge", "Resident set size.",
                    api_rss_bytes());
    metrics_one_u64(m, "sluice_process_major_faults_total", "counter",
                    "Page faults that needed I/O (getrusage ru_majflt).", (uint64_t)ru.ru_majflt);
    metrics_one_u64(m, "sluice_process_minor_faults_total", "counter",
                    "Page faults served without I/O (getrusage ru_minflt).",
                    (uint64_t)ru.ru_minflt);
    metrics_one(m, "sluice_process_cpu_seconds_total", "counter", "User and system CPU time.",
                (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
                    (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6);

    http_reply(req, 200, "text/plain; version=0.0.4", metrics_buf_data(m), metrics_buf_len(m));
    metrics_buf_free(m);
}

/* "<short hostname>-<8 random hex digits>", in the characters an id may use. */
static void api_node_id_generate(char *ret, size_t len)
{
    char host[256] = "";
    uint32_t rnd = 0;
    size_t n = 0;

    if (gethostname(host, sizeof(host) - 1) < 0)
        host[0] = '\0';
    host[sizeof(host) - 1] = '\0';
    /* The first label, at most 40 characters, anything but [A-Za-z0-9_-] as '-'. */
    for (; host[n] != '\0' && host[n] != '.' && n < 40; n++)
        if (!isalnum((unsigned char)host[n]) && host[n] != '_' && host[n] != '-')
            host[n] = '-';
    host[n] = '\0';
    if (getrandom(&rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
        rnd = (uint32_t)(clock_mono_ns() ^ ((uint64_t)getpid() << 16));
    snprintf(ret, len, "%s-%08x", n > 0 ? host : "node", rnd);
}

/*
 * The node's id when --node-id is not given: read from <data_dir>/node-id,
 * or generated on first start and written there (tmp, fsync, rename, fsync
 * of the directory), so it survives restarts and differs between hosts and
 * data directories. Returns 0, or -errno / -EINVAL with err naming the file.
 */
static int api_node_id_load(const char *data_dir, char *ret, size_t len, char *err,
                            size_t err_len)
{
    char *path = xasprintf("%s/node-id", data_dir), *tmp = NULL;
    char line[WIRE_ID_MAX + 2] = "";
    struct wire_error we;
    FILE *f = fopen(path, "re");
    int fd = -1, r = 0;

    if (f != NULL) {
        if (fgets(line, sizeof(line), f) == NULL)
            line[0] = '\0';
        fclose(f);
        line[strcspn(line, "\n")] = '\0';
        if (wire_check_segment_id("node id", line, &we) < 0) {
            snprintf(err, err_len, "%s: %s (fix or remove the file, or pass --node-id)", path,
                     we.message);
            r = -EINVAL;
            goto out;
        }
        snprintf(ret, len, "%s", line);
        goto out;
    }
    if (errno != ENOENT) {
        r = -errno;
        snprintf(err, err_len, "%s: %s", path, strerror(errno));
        goto out;
    }
    api_node_id_generate(line, sizeof(line));
    tmp = xasprintf("%s.tmp", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || dprintf(fd, "%s\n", line) < 0 || fsync(fd) < 0 || rename(tmp, path) < 0) {
        r = -errno;
        snprintf(err, err_len, "cannot write %s: %s", path, strerror(errno));
        (void)unlink(tmp);
        goto out;
    }
    {
        int dfd = open(data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            (void)fsync(dfd);
            close(dfd);
        }
    }
    log_info("node_id_generated", "node_id=%s file=%s", log_q(line), log_q(path));
    snprintf(ret, len, "%s", line);
out:
    if (fd >= 0)
        close(fd);
    free(tmp);
    free(path);
    return r;
}

struct node_api *node_api_new(struct event_base *base, const struct node_config *cfg, char *err,
                              size_t err_len)
{
    struct node_api *api = xcalloc(1, sizeof(*api));
    struct store_config sc = {
        .load_pool = NULL,
        .storage_root = cfg->storage_root,
        .data_dir = cfg->data_dir,
        .disk_reserve = cfg->disk_reserve,
        .mlock_budget = cfg->mlock_budget,
    };
    int r;

    struct sampler_config smc = {
        .proc_root = cfg->proc_root,
        .sys_root = cfg->sys_root,
        .interval_ms = cfg->sample_ms,
        .psi_triggers = cfg->psi_triggers,
    };
    struct timeval tick = {0, API_TICK_MS * 1000};
    char serr[256];

    api->base = base;
    api->started_mono_ns = clock_mono_ns();
    api->rng = (uint32_t)(clock_mono_ns() | 1);
    histogram_reset(&api->query_latency);
    histogram_reset(&api->decision_ns);
    api->admission_on = cfg->admission_on;
    api->max_queries = cfg->max_queries > 0 ? cfg->max_queries : 64;
    api->acfg = cfg->admission;
    admission_cost_init(&api->cost);
    api->lat = latency_new(NULL);
    api->wss = wss_new(NULL);
    api->reservations = strmap_new();
    api->disk_free_bytes = UINT64_MAX;
    api->pool = pool_new(base, cfg->workers);
    api->load_pool = pool_new_nice(base, cfg->load_workers > 0 ? cfg->load_workers : 2,
                                    cfg->load_nice);
    sc.load_pool = api->load_pool;
    if (cfg->io_direct) {
        char perr[200];

        r = bufpool_new(cfg->cache_budget, BUFPOOL_BLOCK_DEFAULT, BUFPOOL_READAHEAD_DEFAULT,
                        &api->bufpool, perr, sizeof(perr));
        if (r < 0) {
            snprintf(err, err_len, "--cache-budget: %s", perr);
            goto fail;
        }
        sc.bufpool = api->bufpool;
        log_info("io_mode", "mode=direct pool_bytes=%" PRIu64 " block_bytes=%u readahead=%u",
                 cfg->cache_budget, BUFPOOL_BLOCK_DEFAULT, BUFPOOL_READAHEAD_DEFAULT);
    }
    api->mlock_budget = cfg->mlock_budget;
    api->store = store_new(api->pool, &sc, err, err_len);
    if (api->store == NULL)
        goto fail;
    store_set_load_cb(api->store, api_load_cb, api);
    /* Missing kernel files are not fatal: status says what was found. */
    api->sampler = sampler_start(&smc, serr, sizeof(serr));
    if (api->sampler == NULL) {
        log_warn("sampler_unavailable", "error=%s", log_q(serr));
        snprintf(api->sources, sizeof(api->sources), "sampler=off (%s)", serr);
    } else if (sampler_read(api->sampler, &api->snap) == 0) {
        api->have_snap = true;
        snprintf(api->sources, sizeof(api->sources), "cgroup=%s psi=%.200s%s trigger=%s%s%.100s",
                 sampler_cgroup_mode_name(api->snap.cgroup_mode), api->snap.psi_source,
                 strcmp(api->snap.psi_source, "none") == 0 ? ""
                 : api->snap.psi_host_wide                 ? " (host-wide)"
                                                           : " (cgroup)",
                 sampler_trigger_name(api->snap.trigger),
                 api->snap.trigger_reason[0] != '\0' ? ": " : "", api->snap.trigger_reason);
        log_info("signals", "sources=%s limit=%" PRIu64, log_q(api->sources),
                 api->snap.limit_bytes);
    }
    api->tick_ev = event_new(base, -1, EV_PERSIST, api_tick_cb, api);
    event_add(api->tick_ev, &tick);
    api->http = http_server_new(base, &cfg->limits);
    if (cfg->token != NULL && cfg->token[0] != '\0')
        http_server_set_token(api->http, cfg->token);
    r = http_server_bind(api->http, cfg->listen, api->bound, sizeof(api->bound));
    if (r < 0) {
        snprintf(err, err_len, "--listen %s: %s", cfg->listen, strerror(-r));
        goto fail;
    }
    if (cfg->node_id != NULL && cfg->node_id[0] != '\0') {
        struct wire_error we;
        if (wire_check_segment_id("--node-id", cfg->node_id, &we) < 0) {
            snprintf(err, err_len, "%s", we.message);
            goto fail;
        }
        snprintf(api->node_id, sizeof(api->node_id), "%s", cfg->node_id);
    } else if (api_node_id_load(cfg->data_dir, api->node_id, sizeof(api->node_id), err,
                                err_len) < 0) {
        goto fail;
    }
    http_server_route(api->http, HTTP_POST, "/v1/assign", false, api_assign_cb, api);
    http_server_route(api->http, HTTP_POST, "/v1/assign/batch", false, api_assign_batch_cb, api);
    http_server_route(api->http, HTTP_DELETE, "/v1/segments/", true, api_delete_cb, api);
    http_server_route(api->http, HTTP_POST, "/v1/query", false, api_query_cb, api);
    http_server_route(api->http, HTTP_GET, "/v1/status", false, api_status_cb, api);
    http_server_route(api->http, HTTP_POST, "/v1/drain", false, api_drain_cb, api);
    http_server_route(api->http, HTTP_POST, "/v1/undrain", false, api_drain_cb, api);
    if (cfg->coordinator != NULL && cfg->coordinator[0] != '\0') {
        struct reporter_config rc = {
            .coordinator = cfg->coordinator,
            .node_id = api->node_id,
            .advertise = cfg->advertise != NULL && cfg->advertise[0] != '\0' ? cfg->advertise
                                                                              : api->bound,
            .token = cfg->token,
            .interval_ms = cfg->report_ms,
            .claim = cfg->claim,
            .conflict = api_conflict_cb,
        };
        api->reporter = reporter_new(base, api->store, &rc, api_report_fill, api);
        if (cfg->claim) {
            struct timeval every = {0, 500000};
            api->claim_batch = 1;
            api->claim_client = http_client_new(base, cfg->coordinator, 5000, cfg->token);
            api->claim_ev = event_new(base, -1, EV_PERSIST, api_claim_tick_cb, api);
            event_add(api->claim_ev, &every);
        }
    }
    http_server_route_public(api->http, HTTP_GET, "/metrics", false, api_metrics_cb, api);
    http_server_route_public(api->http, HTTP_GET, "/healthz", false, api_healthz_cb, api);
    return api;
fail:
    node_api_free(api);
    return NULL;
}

const char *node_api_bound(const struct node_api *api)
{
    return api->bound;
}

const char *node_api_id(const struct node_api *api)
{
    return api->node_id;
}

static int api_free_reservation(const char *key, void *value, void *arg)
{
    free(value);
    return 0;
}

void node_api_free(struct node_api *api)
{
    if (api == NULL)
        return;
    reporter_free(api->reporter);
    if (api->claim_ev != NULL)
        event_free(api->claim_ev);
    api->claim_in_flight = false;
    http_client_free(api->claim_client);
    if (api->tick_ev != NULL)
        event_free(api->tick_ev);
    /*
     * Work in flight finishes first, while the requests it answers still
     * exist: prechecks (which start no load once the store is closing), then
     * loads; only then does the server close its connections.
     */
    store_close(api->store);
    pool_free(api->pool);
    pool_free(api->load_pool);
    http_server_free(api->http);
    sampler_free(api->sampler);
    store_free(api->store);
    bufpool_free(api->bufpool); /* after the store: it closed every pool file */
    latency_free(api->lat);
    wss_free(api->wss);
    if (api->reservations != NULL)
        strmap_foreach(api->reservations, api_free_reservation, NULL);
    strmap_free(api->reservations);
    free(api);
}
