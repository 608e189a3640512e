/*
 * api: HTTP handlers of the node. Thin: each decodes with common/wire,
 * calls the node (admission, then the store) or queues a scan on the pool,
 * maps the outcome to a status and answers exactly once.
 * Expected load: thousands of queries per second at most; a query's scan
 * runs on a worker, so the loop only parses, resolves ids and replies.
 */
#include "api.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "log.h"
#include "metrics.h"
#include "node_int.h"
#include "pbhttp.h"
#include "pool.h"
#include "query.h"
#include "reason.h"
#include "sluice_config.h"
#include "xmalloc.h"

/* Answers with an Error body, counting malformed requests. */
static void api_reply_error(struct node *node, struct evhttp_request *req, int status,
                            const char *code, const char *message)
{
    pbhttp_reply_error(req, status, code, message);
    if (status == 400 || status == 415)
        node->bad_requests++;
}

/* Counts a malformed request answered by the decode preamble; passes status on. */
static int api_counted(struct node *node, int status)
{
    if (status == 400 || status == 415)
        node->bad_requests++;
    return status;
}

/* Fills a response body for an outcome. */
static void api_assign_response(struct node *node, int status, enum wire_reason reason,
                                uint32_t retry_ms, const char *detail,
                                struct wire_assign_response *resp)
{
    memset(resp, 0, sizeof(*resp));
    resp->verdict = status == 202 ? WIRE_VERDICT_ACCEPTED : WIRE_VERDICT_REJECTED;
    resp->reason = reason;
    resp->retry_after_ms = retry_ms;
    node_fill_pressure(node, &resp->pressure);
    snprintf(resp->detail, sizeof(resp->detail), "%s", detail);
    resp->status = (uint32_t)status;
    node->assign_answers[reason < WIRE_REASON_COUNT_ ? reason : 0]++;
}

void api_assign_send(struct evhttp_request *req, const struct wire_assign_response *resp)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    uint8_t *buf;
    size_t len;

    if (resp->status != 202) {
        pbhttp_set_error_header(req, resp->detail);
        evhttp_add_header(h, "X-Sluice-Reason", reason_name(resp->reason));
        if (resp->retry_after_ms > 0) {
            char ra[16];
            snprintf(ra, sizeof(ra), "%u", (resp->retry_after_ms + 999) / 1000);
            evhttp_add_header(h, "Retry-After", ra);
        }
    }
    buf = wire_assign_response_encode(resp, &len);
    http_reply(req, (int)resp->status, WIRE_CONTENT_TYPE, buf, len);
    free(buf);
}

/* Answers an assignment; refusals carry the reason and a Retry-After. */
static void api_assign_reply(struct node *node, struct evhttp_request *req, int status,
                             enum wire_reason reason, uint32_t retry_ms, const char *detail)
{
    struct wire_assign_response resp;

    api_assign_response(node, status, reason, retry_ms, detail, &resp);
    api_assign_send(req, &resp);
}

/* The single endpoint's answer. */
static void api_assign_single_done(struct node *node, int status, enum wire_reason reason,
                                   uint32_t retry_ms, const char *detail, void *arg)
{
    struct evhttp_request *req = arg;

    /* Every decision, 409 included, is an AssignResponse, as in the batch. */
    api_assign_reply(node, req, status, reason, retry_ms, detail);
}

static void api_assign_cb(struct evhttp_request *req, const char *rest, void *arg)
{
    struct node *node = arg;
    struct wire_assign_request m;
    struct wire_error err;
    const void *body;
    size_t len;

    if (api_counted(node, pbhttp_take_body(req, &body, &len)) != 0 ||
        api_counted(node, pbhttp_decoded(req, wire_assign_request_decode(body, len, &m, &err), &err)) != 0)
        return;
    node_assign(node, &m, api_assign_single_done, req);
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

static void api_batch_item_done(struct node *node, int status, enum wire_reason reason,
                                uint32_t retry_ms, const char *detail, void *arg)
{
    struct api_batch_item *it = arg;
    struct api_batch *b = it->batch;
    uint8_t *buf;
    size_t len;

    api_assign_response(node, status, reason, retry_ms, detail, &b->resp.results[it->index]);
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
    struct node *node = arg;
    struct wire_assign_batch m;
    struct wire_error err;
    char why[256];
    struct api_batch *b;
    const void *body;
    size_t len, n;

    if (api_counted(node, pbhttp_take_body(req, &body, &len)) != 0 ||
        api_counted(node, pbhttp_decoded(req, wire_assign_batch_decode(body, len, &m, &err), &err)) != 0)
        return;
    if (epoch_admit(&node->fence, m.epoch, why, sizeof(why)) < 0) {
        node->stale_batches++;
        log_warn("assign_refused", "reason=stale_epoch n=%zu detail=%s", m.n, log_q(why));
        pbhttp_reply_error(req, 409, "stale_epoch", why);
        wire_assign_batch_done(&m);
        return;
    }
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
        node_assign(node, &m.assignments[i], api_batch_item_done, &b->items[i]);
    wire_assign_batch_done(&m);
}

static void api_drain_cb(struct evhttp_request *req, const char *rest, void *arg)
{
    struct node *node = arg;
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    bool drain = path != NULL && strcmp(path, "/v1/drain") == 0;

    if (node->draining != drain)
        log_info("node_state", "node=%s transition=\"%s -> %s\" reason=\"operator\"",
                 node->node_id, node->draining ? "DRAINING" : "SERVING",
                 drain ? "DRAINING" : "SERVING");
    node->draining = drain;
    http_reply_text(req, 200, "%s\n", drain ? "DRAINING" : "SERVING");
}

struct api_delete_ctx {
    struct node *node;
    struct evhttp_request *req;
};

static void api_delete_done(int status, const char *detail, void *arg)
{
    struct api_delete_ctx *ctx = arg;

    if (status == 200)
        http_reply_text(ctx->req, 200, "deleted\n");
    else
        api_reply_error(ctx->node, ctx->req, status,
                        status == 404   ? "not_found"
                        : status == 409 ? "conflict"
                                        : "internal",
                        detail);
    free(ctx);
}

static void api_delete_cb(struct evhttp_request *req, const char *rest, void *arg)
{
    struct node *node = arg;
    struct api_delete_ctx *ctx;
    struct wire_error err;

    if (wire_check_segment_id("segment id in path", rest, &err) < 0) {
        api_reply_error(node, req, 400, err.code, err.message);
        return;
    }
    ctx = xmalloc(sizeof(*ctx));
    ctx->node = node;
    ctx->req = req;
    store_delete(node->store, rest, api_delete_done, ctx);
}

/* A query in flight: the referenced segments, their plans, and the result. */
struct api_query_job {
    struct node *node;
    struct evhttp_request *req;
    uint64_t start_ns;
    enum wire_aggregate aggregate;
    size_t n;
    struct store_seg **segs;
    struct query_plan *plans;
    struct query_acc acc;
    size_t cur;         /* the segment being scanned */
    bool faulted;       /* reading segs[cur] faulted (SIGBUS) */
    uint64_t deadline_ns; /* the asker's timeout_ms from start_ns; 0: none */
    bool expired;         /* the deadline passed before the scan ended (it stopped) */
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
        /*
         * Nobody waits for an answer past the asker's deadline: do not
         * scan for it, before the first segment (a query that waited in
         * the queue) nor between two (a query longer than its timeout_ms).
         */
        if (job->deadline_ns != 0 && clock_mono_ns() > job->deadline_ns) {
            job->expired = true;
            return;
        }
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
    struct node *node = job->node;
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

        (void)store_fail(node->store, id, job->fault_detail);
        snprintf(msg, sizeof(msg), "segment %s: %s; it is FAILED on this node", id,
                 job->fault_detail);
        log_warn("query_fault", "segment=%s detail=%s", log_q(id), log_q(job->fault_detail));
        node->queries_failed++;
        node->queries_in_flight--;
        api_reply_error(node, job->req, 500, "segment_failed", msg);
        api_query_job_free(job);
        return;
    }
    if (job->expired) {
        node->queries_failed++;
        node->queries_in_flight--;
        api_reply_error(node, job->req, 504, "deadline_exceeded",
                        job->cur == 0
                            ? "timeout_ms: the asker's deadline passed before the scan began"
                            : "timeout_ms: the asker's deadline passed during the scan; it "
                              "stopped");
        api_query_job_free(job);
        return;
    }
    query_acc_result(&job->acc, job->aggregate, &resp);
    resp.service_us = (clock_mono_ns() - job->start_ns) / 1000;
    buf = wire_query_response_encode(&resp, &len);
    http_reply(job->req, 200, WIRE_CONTENT_TYPE, buf, len);
    free(buf);
    for (size_t i = 0; i < job->n; i++) {
        store_seg_touch(job->segs[i], now_ms);
        /* COUNT reads only the filter column. */
        store_seg_record_query(job->segs[i],
                               job->aggregate == WIRE_AGG_COUNT ? -1 : job->plans[i].column,
                               job->plans[i].filter_column, node_now_ms());
    }
    node->queries_ok++;
    node->queries_in_flight--;
    node->query_bytes += resp.bytes_scanned;
    node->query_rows += resp.rows_scanned;
    {
        uint64_t now = clock_mono_ns();
        histogram_record(&node->query_latency, now - job->start_ns);
        latency_record(node->lat, now, now - job->start_ns);
    }
    node_touch(node, resp.bytes_scanned);
    api_query_job_free(job);
}

static void api_query_cb(struct evhttp_request *req, const char *rest, void *arg)
{
    struct node *node = arg;
    struct api_query_job *job = NULL;
    struct wire_query_request q;
    struct wire_error err;
    const void *body;
    char msg[256];
    size_t len;
    int r;

    if (api_counted(node, pbhttp_take_body(req, &body, &len)) != 0)
        return;
    if (node->id_conflict) {
        node->queries_refused++;
        snprintf(msg, sizeof(msg), "node id conflict: %.200s", node->id_conflict_detail);
        api_reply_error(node, req, 503, "node_id_conflict", msg);
        return;
    }
    /*
     * A bounded queue: beyond max_queries in flight, refuse at once rather
     * than let every admitted query wait behind an unbounded backlog.
     */
    if (node->queries_in_flight >= node->max_queries) {
        node->queries_refused++;
        snprintf(msg, sizeof(msg), "%u queries in flight, the limit is %u (--max-queries)",
                 node->queries_in_flight, node->max_queries);
        evhttp_add_header(evhttp_request_get_output_headers(req), "X-Sluice-Reason",
                          reason_name(WIRE_REASON_LOAD_CONCURRENCY));
        evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "1");
        api_reply_error(node, req, 429, "overloaded", msg);
        return;
    }
    if (api_counted(node, pbhttp_decoded(req, wire_query_request_decode(body, len, &q, &err), &err)) !=
        0) {
        node->queries_failed++;
        return;
    }
    job = xcalloc(1, sizeof(*job));
    job->node = node;
    job->req = req;
    job->start_ns = clock_mono_ns();
    job->deadline_ns = q.timeout_ms != 0 ? job->start_ns + (uint64_t)q.timeout_ms * 1000000 : 0;
    job->aggregate = q.aggregate;
    job->segs = xcalloc(q.n_segments, sizeof(*job->segs));
    job->plans = xcalloc(q.n_segments, sizeof(*job->plans));
    for (size_t i = 0; i < q.n_segments; i++) {
        struct store_seg *seg = store_get_loaded(node->store, q.segment_ids[i], msg, sizeof(msg));

        if (seg == NULL) {
            node->queries_failed++;
            api_reply_error(node, req, 404, "not_found", msg);
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
            node->queries_failed++;
            api_reply_error(node, req, 400, "invalid_field", full);
            goto fail;
        }
    }
    query_acc_init(&job->acc, job->plans[0].is_float);
    wire_query_request_done(&q);
    node->queries_in_flight++;
    pool_submit(node->pool, api_query_work, api_query_done, job);
    return;
fail:
    wire_query_request_done(&q);
    api_query_job_free(job);
}

/* Appends how the watermark is set: " watermark=adaptive 0.85..0.95 (why)" or "=fixed". */
static void api_watermark_sources(struct node *node, char *buf, size_t len)
{
    size_t used = strlen(buf);

    if (!node->admission_on || used + 1 >= len)
        return;
    if (node->acfg.budget_bytes > 0)
        snprintf(buf + used, len - used, " watermark=off (--admit-budget)");
    else if (node->wm_on)
        snprintf(buf + used, len - used, " watermark=adaptive %.3g..%.3g (%s)",
                 node->wmcfg.base, node->wmcfg.ceiling, node->wm_view.why);
    else
        snprintf(buf + used, len - used, " watermark=fixed %.3g", node->acfg.high_watermark);
}

/* NodeStatus.warnings: what the operator should know, one sentence a line. */
static void api_warnings(const struct node *node, char *buf, size_t len)
{
    struct reporter_stats rs = {0};
    size_t o = 0;

    buf[0] = '\0';
    if (node->reporter != NULL)
        reporter_get_stats(node->reporter, &rs);
    if (rs.in_unauthorized)
        o += (size_t)snprintf(buf + o, len - o,
                              "reports refused by the coordinator with HTTP 401 (%" PRIu64
                              " so far): give this node the coordinator's token "
                              "(--token-file FILE or SLUICE_TOKEN)\n",
                              rs.unauthorized);
    if (node->memgroup_note[0] != '\0' && o < len)
        o += (size_t)snprintf(buf + o, len - o, "%s\n", node->memgroup_note);
    (void)o;
}

static void api_status_cb(struct evhttp_request *req, const char *rest, void *arg)
{
    struct node *node = arg;
    struct wire_node_status st;
    uint8_t *buf;
    size_t len;

    memset(&st, 0, sizeof(st));
    snprintf(st.node_id, sizeof(st.node_id), "%s", node->node_id);
    st.state = node->draining ? WIRE_NODE_DRAINING : WIRE_NODE_SERVING;
    store_status(node->store, admission_load_reason, &st);
    node_fill_pressure(node, &st.pressure);
    snprintf(st.version, sizeof(st.version), "%s", SLUICE_VERSION);
    snprintf(st.signal_sources, sizeof(st.signal_sources), "%.400s wss=%s admission=%s", node->sources,
             wss_source_name(wss_source(node->wss)), node->admission_on ? "on" : "off");
    node_wss_sources(node, st.signal_sources, sizeof(st.signal_sources));
    api_watermark_sources(node, st.signal_sources, sizeof(st.signal_sources));
    st.cost_factor = node->cost.factor > 0 ? node->cost.factor : 1.0;
    for (int g = ADMISSION_GATE_FIRST, o = 0; g < WIRE_REASON_COUNT_; g++) {
        if (admission_gate_closed(&node->astate, (enum wire_reason)g) && o < 200)
            o += snprintf(st.closed_gates + o, sizeof(st.closed_gates) - (size_t)o, "%s%s",
                          o > 0 ? " " : "", reason_name((enum wire_reason)g));
    }
    st.uptime_seconds = (clock_mono_ns() - node->started_mono_ns) / 1000000000ull;
    api_warnings(node, st.warnings, sizeof(st.warnings));
    buf = wire_node_status_encode(&st, &len);
    pbhttp_reply_msg(req, 200, WIRE_MSG_NODE_STATUS, buf, len);
    wire_node_status_done(&st);
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

/*
 * Swap and time to exhaustion (node/tte.c), as MEM_EXHAUSTION sees them. The
 * two estimates are +Inf while nothing grows and absent until the sampler
 * has enough samples.
 */
static void api_metrics_exhaustion(struct metrics_buf *m, const struct sampler_snapshot *sn,
                                   bool have)
{
    bool est = have && sn->tte_valid;

    metrics_one(m, "sluice_node_swapins_per_second", "gauge",
                "Pages read back from swap per second (the cgroup's workingset_refault_anon, "
                "else the host's pswpin).",
                have ? sn->swapins_per_s : 0);
    metrics_one_u64(m, "sluice_node_swap_limit_bytes", "gauge",
                    "Swap the node's memory may use: min(cgroup swap limit, SwapTotal); 0 "
                    "without swap.",
                    have ? sn->exhaust_swap_cap : 0);
    if (!est)
        return;
    metrics_one(m, "sluice_node_memory_growth_bytes_per_second", "gauge",
                "Growth of others' memory (usage + swap - inactive file - the node's own "
                "resident bytes) over the last 5 s.",
                sn->growth_bytes_per_s);
    metrics_one(m, "sluice_node_exhaustion_seconds", "gauge",
                "Estimated time until that growth exhausts the limit plus usable swap (+Inf: "
                "not growing).",
                sn->tte_ms == UINT64_MAX ? INFINITY : (double)sn->tte_ms / 1e3);
    metrics_one(m, "sluice_node_fill_seconds", "gauge",
                "Time that growth would take to fill the whole limit plus swap (+Inf: not "
                "growing); under --exhaust-fast-fill it is a fast run.",
                sn->fill_ms == UINT64_MAX ? INFINITY : (double)sn->fill_ms / 1e3);
}

/* The I/O mode and, in direct mode, the buffer pool's families. */
static void api_metrics_pool(struct node *node, struct metrics_buf *m,
                             const struct store_totals *t)
{
    struct bufpool_stats ps;

    metrics_family(m, "sluice_node_io_mode", "gauge", "1 for the I/O mode this node runs in.");
    {
        const char *mm[] = {"mode", "mmap", NULL}, *dm[] = {"mode", "direct", NULL};
        metrics_sample_u64(m, "sluice_node_io_mode", node->bufpool == NULL ? 1 : 0, mm);
        metrics_sample_u64(m, "sluice_node_io_mode", node->bufpool != NULL ? 1 : 0, dm);
    }
    if (node->bufpool == NULL)
        return;
    bufpool_stats(node->bufpool, &ps);
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
                node->pool_hit_ratio);
    metrics_one(m, "sluice_node_pool_read_latency_seconds", "gauge",
                "Mean latency of the pool's reads over the last second.",
                node->pool_read_latency_s);
    metrics_one_u64(m, "sluice_node_direct_memory_bytes", "gauge",
                    "What a direct-mode node holds, exactly: pool, its tables, heaps, metadata.",
                    node_direct_bytes(node, t));
}

static void api_metrics_cb(struct evhttp_request *req, const char *rest, void *arg)
{
    struct node *node = arg;
    struct metrics_buf *m = metrics_buf_new();
    struct http_server_stats hs;
    struct store_totals t;
    struct rusage ru;

    store_totals(node->store, &t);
    http_server_get_stats(node->http, &hs);
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
    api_metrics_pool(node, m, &t);
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
                    "The --mlock-budget (0: nothing is pinned).", node->mlock_budget);
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
        if (r == 0 || node->assign_answers[r] > 0)
            metrics_sample_u64(m, "sluice_node_assignments_total", node->assign_answers[r], labels);
    }
    metrics_one_u64(m, "sluice_node_bad_requests_total", "counter",
                    "Requests refused as malformed (400, 415).", node->bad_requests);
    metrics_one_u64(m, "sluice_node_leader_epoch", "gauge",
                    "The highest coordinator epoch this node has seen (0: none, or SQLite).",
                    node->fence.highest);
    metrics_family(m, "sluice_node_coordinator_refusals_total", "counter",
                   "Messages from a coordinator refused whole, by reason and message: an "
                   "assignment batch (409) or a report answer (ignored) of an epoch older than "
                   "sluice_node_leader_epoch, from a deposed leader.");
    {
        const char *batch[] = {"reason", "stale_epoch", "message", "assign_batch", NULL};
        const char *answer[] = {"reason", "stale_epoch", "message", "report_answer", NULL};

        /* The fence counts both; only api.c refuses batches (the rest are report answers). */
        metrics_sample_u64(m, "sluice_node_coordinator_refusals_total", node->stale_batches,
                           batch);
        metrics_sample_u64(m, "sluice_node_coordinator_refusals_total",
                           node->fence.refused - node->stale_batches, answer);
    }
    metrics_family(m, "sluice_node_queries_total", "counter", "Queries by result.");
    {
        const char *ok[] = {"result", "ok", NULL}, *failed[] = {"result", "error", NULL};
        metrics_sample_u64(m, "sluice_node_queries_total", node->queries_ok, ok);
        metrics_sample_u64(m, "sluice_node_queries_total", node->queries_failed, failed);
    }
    metrics_one_u64(m, "sluice_node_queries_refused_total", "counter",
                    "Queries refused with 429 LOAD_CONCURRENCY (--max-queries in flight).",
                    node->queries_refused);
    metrics_one_u64(m, "sluice_node_queries_in_flight", "gauge", "Queries being scanned.",
                    node->queries_in_flight);
    metrics_one_u64(m, "sluice_node_query_scanned_bytes_total", "counter",
                    "Column bytes read by query scans.", node->query_bytes);
    metrics_one_u64(m, "sluice_node_query_scanned_rows_total", "counter",
                    "Rows visited by query scans (zone-map skips excluded).", node->query_rows);
    metrics_histogram(m, "sluice_node_query_duration_seconds",
                      "Query latency from request to reply.", &node->query_latency, 1e-9, NULL);

    /* The signals admission decides on, as it sees them now. */
    {
        struct admission_signals sig;
        const struct sampler_snapshot *sn = &node->snap;

        node_signals(node, &sig);
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
                        "Working-set estimate (measured, smoothed).", wss_estimate(node->wss));
        metrics_one_u64(m, "sluice_node_admission_footprint_bytes", "gauge",
                        "What the capacity gate counts: max(working set, committed bytes).",
                        sig.wss_bytes);
        metrics_one_u64(m, "sluice_node_admission_reserved_bytes", "gauge",
                        "Estimated memory of loads admitted and still loading.",
                        sig.reserved_bytes);
        metrics_one_u64(m, "sluice_node_admission_limit_bytes", "gauge",
                        "Admit limit (memory limit x high watermark, or the budget).",
                        admission_admit_limit(&node->acfg, &sig));
        metrics_one(m, "sluice_node_admission_watermark_ratio", "gauge",
                    "Admit watermark in force, as a fraction of the memory limit (the adaptive "
                    "one when on).",
                    node_watermark(node));
        metrics_one(m, "sluice_node_admission_watermark_ceiling_ratio", "gauge",
                    "Highest watermark the adaptive one may reach (the base when off).",
                    node->wm_on ? node->wmcfg.ceiling : node->acfg.high_watermark);
        metrics_one_u64(m, "sluice_node_admission_watermark_backoffs_total", "counter",
                        "Times a breach dropped the adaptive watermark back to the base.",
                        node->wm.backoffs);
        metrics_one_u64(m, "sluice_node_resident_bytes", "gauge",
                        "Resident bytes of mapped segments (mincore).", node->resident_bytes);
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
        api_metrics_exhaustion(m, sn, node->have_snap);
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
                           admission_gate_closed(&node->astate, (enum wire_reason)g), labels);
    }
    metrics_family(m, "sluice_node_admission_gate_closings_total", "counter",
                   "Times each gate closed.");
    for (int g = ADMISSION_GATE_FIRST; g < WIRE_REASON_COUNT_; g++) {
        if (!admission_is_gate((enum wire_reason)g))
            continue;
        const char *labels[] = {"reason", reason_name((enum wire_reason)g), NULL};
        metrics_sample_u64(m, "sluice_node_admission_gate_closings_total",
                           node->gate_closed_total[g], labels);
    }
    metrics_family(m, "sluice_node_admission_rejections_total", "counter",
                   "Assignments refused, by reason.");
    for (int r = 1; r < WIRE_REASON_COUNT_; r++) {
        const char *labels[] = {"reason", reason_name((enum wire_reason)r), NULL};
        metrics_sample_u64(m, "sluice_node_admission_rejections_total", node->assign_answers[r],
                           labels);
    }
    metrics_histogram(m, "sluice_node_admission_decision_seconds",
                      "Time to decide an assignment (admission_decide).", &node->decision_ns, 1e-9,
                      NULL);
    metrics_one(m, "sluice_node_admission_cost_factor", "gauge",
                "Learned footprint / (rows x avg_row_size) of loaded segments.",
                node->cost.factor > 0 ? node->cost.factor : 1.0);
    metrics_family(m, "sluice_node_shed_total", "counter",
                   "Segments shed (DROPPED) under sustained pressure, by reason.");
    for (int r = WIRE_REASON_MEM_CRITICAL; r < WIRE_REASON_COUNT_; r++) {
        const char *labels[] = {"reason", reason_name((enum wire_reason)r), NULL};

        /* OVER_LIMIT: shed first, for being over a declared limit. */
        if (r > WIRE_REASON_MEM_THRASHING && r != WIRE_REASON_MEM_EXHAUSTION &&
            r != WIRE_REASON_OVER_LIMIT)
            continue;
        metrics_sample_u64(m, "sluice_node_shed_total", node->shed_total[r], labels);
    }
    metrics_one_u64(m, "sluice_node_claimed_total", "counter",
                    "Pull mode: segments claimed from the coordinator and accepted.",
                    node->claimed_total);
    metrics_one(m, "sluice_node_claim_batch", "gauge", "Pull mode: the current claim size (AIMD).",
                node->claim_batch);
    metrics_one_u64(m, "sluice_node_id_conflict", "gauge",
                    "1 while the coordinator holds this node's id for another address (the "
                    "node serves nothing).",
                    node->id_conflict);
    metrics_one_u64(m, "sluice_node_draining", "gauge", "1 while the node is draining.",
                    node->draining);
    {
        struct reporter_stats rs = {0};
        const char *ok[] = {"outcome", "ok", NULL}, *failed[] = {"outcome", "failed", NULL};

        if (node->reporter != NULL)
            reporter_get_stats(node->reporter, &rs);
        metrics_family(m, "sluice_node_reports_total", "counter",
                       "Reports to the coordinator, by outcome (failed: no answer, an error "
                       "status or an answer that did not decode).");
        metrics_sample_u64(m, "sluice_node_reports_total", rs.sent, ok);
        metrics_sample_u64(m, "sluice_node_reports_total", rs.failed, failed);
        metrics_one_u64(m, "sluice_node_report_unauthorized_total", "counter",
                        "Reports the coordinator answered 401 (this node's token is not "
                        "its); also counted as failed.",
                        rs.unauthorized);
        metrics_one_u64(m, "sluice_node_report_drops_total", "counter",
                        "Segments the coordinator's answers told this node to drop.", rs.dropped);
        {
            const char *full[] = {"kind", "full", NULL}, *delta[] = {"kind", "delta", NULL};

            metrics_family(m, "sluice_node_reports_built_total", "counter",
                           "Reports built, by kind: full (the whole set) or delta (the changes "
                           "since the acknowledged report).");
            metrics_sample_u64(m, "sluice_node_reports_built_total", rs.full, full);
            metrics_sample_u64(m, "sluice_node_reports_built_total", rs.delta, delta);
        }
        metrics_one_u64(m, "sluice_node_full_reports_asked_total", "counter",
                        "Answers of the coordinator that asked for the whole set.",
                        rs.full_asked);
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

    metrics_process(m, "/proc");
    http_reply(req, 200, "text/plain; version=0.0.4", metrics_buf_data(m), metrics_buf_len(m));
    metrics_buf_free(m);
}

void api_routes(struct node *node)
{
    http_server_route(node->http, HTTP_POST, "/v1/assign", false, api_assign_cb, node);
    http_server_route(node->http, HTTP_POST, "/v1/assign/batch", false, api_assign_batch_cb, node);
    http_server_route(node->http, HTTP_DELETE, "/v1/segments/", true, api_delete_cb, node);
    http_server_route(node->http, HTTP_POST, "/v1/query", false, api_query_cb, node);
    http_server_route(node->http, HTTP_GET, "/v1/status", false, api_status_cb, node);
    http_server_route(node->http, HTTP_POST, "/v1/drain", false, api_drain_cb, node);
    http_server_route(node->http, HTTP_POST, "/v1/undrain", false, api_drain_cb, node);
    http_server_route_public(node->http, HTTP_GET, "/metrics", false, api_metrics_cb, node);
    http_server_route_public(node->http, HTTP_GET, "/healthz", false, api_healthz_cb, node);
}
