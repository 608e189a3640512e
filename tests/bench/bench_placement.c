/*
 * bench_placement: segments placed per second, end to end, against the
 * fastest evhttp can answer on this machine in the same run.
 *
 * Ceiling: three in-process evhttp servers answering 202 with an empty body,
 * driven through the same keep-alive client the coordinator uses (one
 * connection per server, 64 requests queued per server).
 * Sluice: a real coordinator and three real nodes with --admission=off
 * (they accept everything); segments are registered in batches of 5,000 and
 * the clock stops when the coordinator has seen every assignment accepted
 * (sluice_coord_assignments_total{outcome="ACCEPTED"}).
 * Figures: placed/s, ceiling requests/s, their ratio. SLUICE_BENCH_SMOKE=1
 * shrinks it.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/http.h>

#include "clock.h"
#include "harness.h"
#include "http.h"
#include "segment.h"
#include "wire.h"
#include "xmalloc.h"

static FILE *csv;

/* ---- ceiling ------------------------------------------------------------- */

static void hello_cb(struct evhttp_request *req, const char *rest, void *arg)
{
    http_reply(req, 202, WIRE_CONTENT_TYPE, "", 0);
}

struct ceiling {
    struct event_base *base;
    uint64_t remaining, sent, total;
    struct http_client *clients[3];
    uint8_t *body;
    size_t len;
};

static void ceiling_cb(int status, const struct http_client_reply *reply, void *arg)
{
    struct ceiling *c = *(struct ceiling **)arg;

    if (--c->remaining == 0)
        event_base_loopexit(c->base, NULL);
}

static struct ceiling *ceiling_self;

static void ceiling_send(struct ceiling *c, int k)
{
    http_client_request(c->clients[k], EVHTTP_REQ_POST, "/v1/assign", WIRE_CONTENT_TYPE, c->body,
                        c->len, ceiling_cb, &ceiling_self);
    c->sent++;
}

static void ceiling_refill(evutil_socket_t fd, short what, void *arg)
{
    struct ceiling *c = arg;

    /* Keep 64 requests queued per server until every request is sent. */
    for (int k = 0; k < 3; k++)
        while (http_client_pending(c->clients[k]) < 64 && c->sent < c->total)
            ceiling_send(c, k);
}

static double run_ceiling(uint64_t n)
{
    struct event_base *base = event_base_new();
    struct http_limits lim = http_limits_default();
    struct http_server *srv[3];
    struct wire_assign_request m;
    struct ceiling c;
    struct event *tick;
    struct timeval tv = {0, 200};
    char bound[3][64];
    uint64_t t0, t1;

    memset(&c, 0, sizeof(c));
    memset(&m, 0, sizeof(m));
    snprintf(m.segment_id, sizeof(m.segment_id), "seg-000000");
    snprintf(m.uri, sizeof(m.uri), "file:///tmp/storage/seg-000000.seg");
    m.row_count = 1000;
    m.avg_row_size = 16;
    c.body = wire_assign_request_encode(&m, &c.len);
    c.base = base;
    c.remaining = n;
    c.total = n;
    ceiling_self = &c;
    for (int k = 0; k < 3; k++) {
        srv[k] = http_server_new(base, &lim);
        http_server_bind(srv[k], "127.0.0.1:0", bound[k], sizeof(bound[k]));
        http_server_route(srv[k], HTTP_POST, "/v1/assign", false, hello_cb, NULL);
        c.clients[k] = http_client_new(base, bound[k], 10000, NULL);
    }
    tick = event_new(base, -1, EV_PERSIST, ceiling_refill, &c);
    event_add(tick, &tv);
    t0 = clock_mono_ns();
    event_base_dispatch(base);
    t1 = clock_mono_ns();
    event_free(tick);
    for (int k = 0; k < 3; k++) {
        http_client_free(c.clients[k]);
        http_server_free(srv[k]);
    }
    free(c.body);
    event_base_free(base);
    return (double)n / ((double)(t1 - t0) / 1e9);
}

/* ---- Sluice ------------------------------------------------------------- */

static uint64_t coord_accepted(const char *addr)
{
    static const char key[] = "sluice_coord_assignments_total{outcome=\"ACCEPTED\"} ";
    struct http_response r;
    uint64_t v = 0;
    char *p;

    if (http_fetch(addr, "GET", "/metrics", NULL, NULL, 0, NULL, 5000, &r) < 0)
        return 0;
    p = strstr(r.body, key);
    if (p != NULL)
        v = strtoull(p + sizeof(key) - 1, NULL, 10);
    http_response_done(&r);
    return v;
}

static double run_sluice(const char *dir, uint64_t n)
{
    char *storage = xasprintf("%s/storage", dir), *file = xasprintf("%s/one.seg", storage);
    struct segment_spec spec = {.rows = 1000, .row_bytes = 16, .seed = 1};
    struct harness_proc *coord, *nodes[3];
    char detail[256];
    uint64_t t0, t1;
    const size_t batch = 5000;

    mkdir(storage, 0755);
    if (segment_write_synthetic(file, &spec, detail, sizeof(detail)) < 0)
        exit(1);
    coord = harness_coord_start(dir, (const char *[]){"--log-level=warn", NULL});
    if (coord == NULL)
        exit(1);
    for (int k = 0; k < 3; k++) {
        char *data = xasprintf("%s/node-%d", dir, k), *id = xasprintf("--node-id=node-%d", k);
        char *co = xasprintf("--coordinator=%s", harness_proc_addr(coord));
        const char *args[] = {id, co, "--admission=off", "--log-level=warn", "--workers=1", NULL};
        nodes[k] = harness_node_start(storage, data, args);
        if (nodes[k] == NULL)
            exit(1);
        free(data);
        free(id);
        free(co);
    }
    usleep(1500000); /* every node has reported */
    t0 = clock_mono_ns();
    for (uint64_t from = 0; from < n; from += batch) {
        struct wire_segment_batch b;
        struct http_response r;
        uint8_t *body;
        size_t len;

        b.n = from + batch <= n ? batch : n - from;
        b.specs = xcalloc(b.n, sizeof(*b.specs));
        for (size_t i = 0; i < b.n; i++) {
            snprintf(b.specs[i].segment_id, sizeof(b.specs[i].segment_id), "seg-%06" PRIu64,
                     from + i);
            b.specs[i].uri = xasprintf("file://%s", file);
            b.specs[i].row_count = 1000;
            b.specs[i].avg_row_size = 16;
            b.specs[i].replication = 1;
        }
        body = wire_segment_batch_encode(&b, &len);
        if (http_fetch(harness_proc_addr(coord), "POST", "/v1/segments", WIRE_CONTENT_TYPE, body,
                       len, NULL, 60000, &r) < 0 ||
            r.status != 200) {
            fprintf(stderr, "bench: registration failed\n");
            exit(1);
        }
        http_response_done(&r);
        free(body);
        wire_segment_batch_done(&b);
    }
    for (int i = 0; i < 60000 && coord_accepted(harness_proc_addr(coord)) < n; i++)
        usleep(1000);
    t1 = clock_mono_ns();
    for (int k = 0; k < 3; k++)
        harness_proc_kill(nodes[k]);
    for (int k = 0; k < 3; k++)
        harness_proc_free(nodes[k]);
    harness_proc_free(coord);
    free(storage);
    free(file);
    return (double)n / ((double)(t1 - t0) / 1e9);
}

int main(void)
{
    const char *smoke = getenv("SLUICE_BENCH_SMOKE");
    bool is_smoke = smoke != NULL && smoke[0] == '1';
    uint64_t n = is_smoke ? 2000 : 20000;
    char *dir = harness_dir_new("sluice-bench-place");
    double ceiling, placed;

    csv = fopen("bench_placement.csv", "w");
    if (csv == NULL)
        csv = fopen("/dev/null", "w");
    ceiling = run_ceiling(n);
    placed = run_sluice(dir, n);
    printf("placement: %" PRIu64 " segments over 3 real nodes (admission off)\n", n);
    printf("  Sluice end to end:   %.0f segments/s (registration + placement + 202s)\n", placed);
    printf("  evhttp hello ceiling: %.0f requests/s (same client, 3 servers)\n", ceiling);
    printf("  ratio: %.3f\n", placed / ceiling);
    fprintf(csv, "metric,value\nplaced_per_s,%.0f\nceiling_per_s,%.0f\nratio,%.4f\n", placed,
            ceiling, placed / ceiling);
    fclose(csv);
    harness_dir_remove(dir);
    free(dir);
    return 0;
}
