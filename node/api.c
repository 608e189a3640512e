/*
 * api: HTTP handlers of the node. Thin: each decodes with common/wire,
 * calls the store or queues a scan on the pool, and answers exactly once.
 * Expected load: thousands of queries per second at most; a query's scan
 * runs on a worker, so the loop only parses, resolves ids and replies.
 */
#include "api.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "clock.h"
#include "histogram.h"
#include "log.h"
#include "metrics.h"
#include "pool.h"
#include "query.h"
#include "sluice_config.h"
#include "store.h"
#include "wire.h"
#include "xmalloc.h"

struct node_api {
    struct event_base *base;
    struct pool *pool;
    struct store *store;
    struct http_server *http;
    char bound[128];
    char node_id[WIRE_ID_MAX + 1];
    uint64_t started_mono_ns;
    /* counters, loop thread only */
    uint64_t assign_answers[WIRE_REASON_COUNT_]; /* by reason; NONE = accepted */
    uint64_t assign_conflicts, bad_requests;
    uint64_t queries_ok, queries_failed, query_bytes, query_rows;
    struct histogram query_latency; /* ns, since start */
};

/* Answers with an Error body; the message also goes in X-Sluice-Error. */
static void api_reply_error(struct node_api *api, struct evhttp_request *req, int status,
                            const char *code, const char *message)
{
    struct wire_error e;
    uint8_t *buf;
    size_t len;
    char hdr[256];

    snprintf(e.code, sizeof(e.code), "%s", code);
    snprintf(e.message, sizeof(e.message), "%s", message);
    /* Header values must not carry line breaks or control bytes. */
    snprintf(hdr, sizeof(hdr), "%s", message);
    for (char *p = hdr; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20)
            *p = ' ';
    evhttp_add_header(evhttp_request_get_output_headers(req), "X-Sluice-Error", hdr);
    buf = wire_error_encode(&e, &len);
    http_reply(req, status, WIRE_CONTENT_TYPE, buf, len);
    free(buf);
    if (status == 400 || status == 415)
        api->bad_requests++;
}

/* Returns the request body as one contiguous block (evhttp capped its size). */
static const void *api_body(struct evhttp_request *req, size_t *ret_len)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);

    *ret_len = evbuffer_get_length(in);
    if (*ret_len == 0)
        return "";
    return evbuffer_pullup(in, -1);
}

/* Requires the protobuf content type; answers 415 otherwise. */
static bool api_check_content_type(struct node_api *api, struct evhttp_request *req)
{
    const char *ct = evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");
    char msg[160];

    if (ct != NULL && strncmp(ct, WIRE_CONTENT_TYPE, strlen(WIRE_CONTENT_TYPE)) == 0 &&
        (ct[strlen(WIRE_CONTENT_TYPE)] == '\0' || ct[strlen(WIRE_CONTENT_TYPE)] == ';'))
        return true;
    snprintf(msg, sizeof(msg), "Content-Type: expected %s, got %.80s", WIRE_CONTENT_TYPE,
             ct != NULL ? ct : "none");
    api_reply_error(api, req, 415, "unsupported_media_type", msg);
    return false;
}

static void api_fill_pressure(const struct node_api *api, struct wire_pressure *p)
{
    struct store_totals t;

    memset(p, 0, sizeof(*p));
    store_totals(api->store, &t);
    p->loads_in_flight = t.loads_in_flight;
    p->p99_seconds = (double)histogram_quantile(&api->query_latency, 0.99) * 1e-9;
}

struct api_assign_ctx {
    struct node_api *api;
    struct evhttp_request *req;
};

static void api_assign_done(int status, enum wire_reason reason, const char *detail, void *arg)
{
    struct api_assign_ctx *ctx = arg;
    struct node_api *api = ctx->api;
    struct wire_assign_response resp;
    uint8_t *buf;
    size_t len;

    if (status == 409) {
        api->assign_conflicts++;
        api_reply_error(api, ctx->req, 409, "conflict", detail);
        free(ctx);
        return;
    }
    memset(&resp, 0, sizeof(resp));
    resp.verdict = status == 202 ? WIRE_VERDICT_ACCEPTED : WIRE_VERDICT_REJECTED;
    resp.reason = reason;
    api_fill_pressure(api, &resp.pressure);
    snprintf(resp.detail, sizeof(resp.detail), "%s", detail);
    if (status != 202)
        evhttp_add_header(evhttp_request_get_output_headers(ctx->req), "X-Sluice-Reason",
                          wire_reason_name(reason));
    api->assign_answers[reason < WIRE_REASON_COUNT_ ? reason : 0]++;
    buf = wire_assign_response_encode(&resp, &len);
    http_reply(ctx->req, status, WIRE_CONTENT_TYPE, buf, len);
    free(buf);
    free(ctx);
}

static void api_assign_cb(struct evhttp_request *req, const char *rest, void *arg)
{
    struct node_api *api = arg;
    struct wire_assign_request m;
    struct api_assign_ctx *ctx;
    struct wire_error err;
    const void *body;
    size_t len;
    int r;

    if (!api_check_content_type(api, req))
        return;
    body = api_body(req, &len);
    r = wire_assign_request_decode(body, len, &m, &err);
    if (r < 0) {
        api_reply_error(api, req, r == -EMSGSIZE ? 413 : 400, err.code, err.message);
        return;
    }
    ctx = xmalloc(sizeof(*ctx));
    ctx->api = api;
    ctx->req = req;
    store_assign(api->store, &m, api_assign_done, ctx);
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
};

static void api_query_work(void *arg)
{
    struct api_query_job *job = arg;

    for (size_t i = 0; i < job->n; i++)
        query_scan(&job->plans[i], store_seg_base(job->segs[i]), store_seg_header(job->segs[i]),
                   store_seg_index(job->segs[i]), &job->acc);
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

    query_acc_result(&job->acc, job->aggregate, &resp);
    buf = wire_query_response_encode(&resp, &len);
    http_reply(job->req, 200, WIRE_CONTENT_TYPE, buf, len);
    free(buf);
    for (size_t i = 0; i < job->n; i++)
        store_seg_touch(job->segs[i], now_ms);
    api->queries_ok++;
    api->query_bytes += resp.bytes_scanned;
    api->query_rows += resp.rows_scanned;
    histogram_record(&api->query_latency, clock_mono_ns() - job->start_ns);
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

    if (!api_check_content_type(api, req))
        return;
    body = api_body(req, &len);
    r = wire_query_request_decode(body, len, &q, &err);
    if (r < 0) {
        api->queries_failed++;
        api_reply_error(api, req, r == -EMSGSIZE ? 413 : 400, err.code, err.message);
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
    st.state = WIRE_NODE_SERVING;
    store_status(api->store, &st);
    api_fill_pressure(api, &st.pressure);
    snprintf(st.version, sizeof(st.version), "%s", SLUICE_VERSION);
    st.uptime_seconds = (clock_mono_ns() - api->started_mono_ns) / 1000000000ull;
    buf = wire_node_status_encode(&st, &len);
    http_reply(req, 200, WIRE_CONTENT_TYPE, buf, len);
    free(buf);
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
    metrics_family(m, "sluice_node_mapped_bytes", "gauge",
                   "Bytes of local segment copies mapped into memory (file-backed).");
    metrics_sample_u64(m, "sluice_node_mapped_bytes", t.mapped_bytes, NULL);
    metrics_family(m, "sluice_node_index_bytes", "gauge",
                   "Heap bytes of zone-map indexes (anonymous memory).");
    metrics_sample_u64(m, "sluice_node_index_bytes", t.index_bytes, NULL);
    metrics_family(m, "sluice_node_loads_in_flight", "gauge",
                   "Assignments being checked or loaded.");
    metrics_sample_u64(m, "sluice_node_loads_in_flight", t.loads_in_flight, NULL);
    metrics_family(m, "sluice_node_loads_total", "counter", "Finished segment loads by result.");
    {
        const char *ok[] = {"result", "ok", NULL}, *failed[] = {"result", "failed", NULL};
        metrics_sample_u64(m, "sluice_node_loads_total", t.loads_ok_total, ok);
        metrics_sample_u64(m, "sluice_node_loads_total", t.loads_failed_total, failed);
    }
    metrics_family(m, "sluice_node_copied_bytes_total", "counter",
                   "Bytes copied from the storage root into the data directory.");
    metrics_sample_u64(m, "sluice_node_copied_bytes_total", t.copied_bytes_total, NULL);
    metrics_family(m, "sluice_node_unloads_total", "counter", "Segments deleted from this node.");
    metrics_sample_u64(m, "sluice_node_unloads_total", t.deletes_total, NULL);
    metrics_family(m, "sluice_node_assignments_total", "counter",
                   "Answers to assignments: accepted, or refused with a reason.");
    for (int r = 0; r < WIRE_REASON_COUNT_; r++) {
        const char *labels[] = {"verdict", r == 0 ? "accepted" : "rejected", "reason",
                                wire_reason_name((enum wire_reason)r), NULL};
        if (r == 0 || api->assign_answers[r] > 0)
            metrics_sample_u64(m, "sluice_node_assignments_total", api->assign_answers[r], labels);
    }
    metrics_family(m, "sluice_node_bad_requests_total", "counter",
                   "Requests refused as malformed (400, 415).");
    metrics_sample_u64(m, "sluice_node_bad_requests_total", api->bad_requests, NULL);
    metrics_family(m, "sluice_node_queries_total", "counter", "Queries by result.");
    {
        const char *ok[] = {"result", "ok", NULL}, *failed[] = {"result", "error", NULL};
        metrics_sample_u64(m, "sluice_node_queries_total", api->queries_ok, ok);
        metrics_sample_u64(m, "sluice_node_queries_total", api->queries_failed, failed);
    }
    metrics_family(m, "sluice_node_query_scanned_bytes_total", "counter",
                   "Column bytes read by query scans.");
    metrics_sample_u64(m, "sluice_node_query_scanned_bytes_total", api->query_bytes, NULL);
    metrics_family(m, "sluice_node_query_scanned_rows_total", "counter",
                   "Rows visited by query scans (zone-map skips excluded).");
    metrics_sample_u64(m, "sluice_node_query_scanned_rows_total", api->query_rows, NULL);
    metrics_histogram(m, "sluice_node_query_duration_seconds",
                      "Query latency from request to reply.", &api->query_latency, 1e-9, NULL);

    metrics_family(m, "sluice_http_connections_live", "gauge", "Open HTTP connections.");
    metrics_sample_u64(m, "sluice_http_connections_live", hs.connections_live, NULL);
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
    metrics_family(m, "sluice_process_resident_bytes", "gauge", "Resident set size.");
    metrics_sample_u64(m, "sluice_process_resident_bytes", api_rss_bytes(), NULL);
    metrics_family(m, "sluice_process_major_faults_total", "counter",
                   "Page faults that needed I/O (getrusage ru_majflt).");
    metrics_sample_u64(m, "sluice_process_major_faults_total", (uint64_t)ru.ru_majflt, NULL);
    metrics_family(m, "sluice_process_minor_faults_total", "counter",
                   "Page faults served without I/O (getrusage ru_minflt).");
    metrics_sample_u64(m, "sluice_process_minor_faults_total", (uint64_t)ru.ru_minflt, NULL);
    metrics_family(m, "sluice_process_cpu_seconds_total", "counter", "User and system CPU time.");
    metrics_sample(m, "sluice_process_cpu_seconds_total",
                   (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
                       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6,
                   NULL);

    http_reply(req, 200, "text/plain; version=0.0.4", metrics_buf_data(m), metrics_buf_len(m));
    metrics_buf_free(m);
}

struct node_api *node_api_new(struct event_base *base, const struct node_config *cfg, char *err,
                              size_t err_len)
{
    struct node_api *api = xcalloc(1, sizeof(*api));
    struct store_config sc = {
        .storage_root = cfg->storage_root,
        .data_dir = cfg->data_dir,
        .disk_reserve = cfg->disk_reserve,
    };
    int r;

    api->base = base;
    api->started_mono_ns = clock_mono_ns();
    histogram_reset(&api->query_latency);
    api->pool = pool_new(base, cfg->workers);
    api->store = store_new(api->pool, &sc, err, err_len);
    if (api->store == NULL)
        goto fail;
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
    } else {
        const char *port = strrchr(api->bound, ':');
        snprintf(api->node_id, sizeof(api->node_id), "node-%s", port != NULL ? port + 1 : "0");
    }
    http_server_route(api->http, HTTP_POST, "/v1/assign", false, api_assign_cb, api);
    http_server_route(api->http, HTTP_DELETE, "/v1/segments/", true, api_delete_cb, api);
    http_server_route(api->http, HTTP_POST, "/v1/query", false, api_query_cb, api);
    http_server_route(api->http, HTTP_GET, "/v1/status", false, api_status_cb, api);
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

void node_api_free(struct node_api *api)
{
    if (api == NULL)
        return;
    http_server_free(api->http);
    pool_free(api->pool);
    store_free(api->store);
    free(api);
}
