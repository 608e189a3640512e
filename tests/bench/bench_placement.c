/*
 * bench_placement: segments placed per second, end to end, against the
 * fastest evhttp can answer on this machine in the same run.
 *
 * Ceiling: three in-process evhttp servers answering 202 with an empty body,
 * driven through the same keep-alive client the coordinator uses (one
 * connection per server, 64 requests queued per server).
 * Sluice: a real coordinator and three real nodes with --admission=off
 * (they accept everything); segments are registered in batches of 5,000.
 * "Placed" stops the clock when every segment has been accepted by a node
 * (sluice_coord_segments_unplaced is 0); "loaded" when every segment is
 * LOADED (each node copied, verified and indexed its share), reported
 * alongside.
 * Rounds alternate ceiling and Sluice; figures are medians over the rounds
 * (5, or 1 with SLUICE_BENCH_SMOKE=1, which also shrinks the count).
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
#include "baseline.h"
#include "harness.h"
#include "http.h"
#include "mkseg.h"
#include "segfmt.h"
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

/* One sample of the coordinator's metrics page, by its exact series name; 0 if absent. */
static uint64_t coord_metric(const char *addr, const char *series)
{
    double v = harness_metric(addr, series);

    return v > 0 ? (uint64_t)v : 0;
}

/* Whether every one of n registered segments has been accepted by a node. */
static bool all_placed(const char *addr, uint64_t n)
{
    return coord_metric(addr, "sluice_coord_registered_total") >= n &&
           coord_metric(addr, "sluice_coord_segments_unplaced") == 0;
}

struct sluice_figures {
    double placed_per_s, loaded_per_s;
};

static struct sluice_figures run_sluice(const char *parent, int round, uint64_t n)
{
    char *dir = xasprintf("%s/round-%d", parent, round);
    char *storage = xasprintf("%s/storage", dir), *file = xasprintf("%s/one.seg", storage);
    struct mkseg_spec spec = {.rows = 1000, .row_bytes = 16, .seed = 1};
    struct harness_proc *coord, *nodes[3];
    struct sluice_figures f;
    char detail[256];
    uint64_t t0, t1, t2;
    const size_t batch = 5000;

    mkdir(dir, 0755);
    mkdir(storage, 0755);
    if (mkseg_write(file, &spec, detail, sizeof(detail)) < 0)
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
        if (harness_register(harness_proc_addr(coord), &b, NULL, NULL) != 200) {
            fprintf(stderr, "bench: registration failed\n");
            exit(1);
        }
        wire_segment_batch_done(&b);
    }
    /*
     * Polled every 5 ms: a 0.5 % error on a one-second run, and light
     * enough. (A node's report can settle a placement before its 202 is
     * read, so the ACCEPTED counter alone may stay short of n.)
     */
    for (int i = 0; i < 12000 && !all_placed(harness_proc_addr(coord), n); i++)
        usleep(5000);
    t1 = clock_mono_ns();
    for (int i = 0; i < 24000 && coord_metric(harness_proc_addr(coord),
                                              "sluice_coord_segments{state=\"LOADED\"}") < n;
         i++)
        usleep(5000);
    t2 = clock_mono_ns();
    for (int k = 0; k < 3; k++)
        harness_proc_kill(nodes[k]);
    for (int k = 0; k < 3; k++)
        harness_proc_free(nodes[k]);
    harness_proc_free(coord);
    free(storage);
    free(file);
    free(dir);
    f.placed_per_s = (double)n / ((double)(t1 - t0) / 1e9);
    f.loaded_per_s = (double)n / ((double)(t2 - t0) / 1e9);
    return f;
}

int main(void)
{
    const char *smoke = getenv("SLUICE_BENCH_SMOKE");
    bool is_smoke = smoke != NULL && smoke[0] == '1';
    uint64_t n = is_smoke ? 2000 : 20000;
    enum { MAX_ROUNDS = 5 };
    int rounds = is_smoke ? 1 : MAX_ROUNDS;
    char *dir = harness_dir_new("sluice-bench-place");
    double ceiling[MAX_ROUNDS], placed[MAX_ROUNDS], loaded[MAX_ROUNDS];
    double ratio[MAX_ROUNDS], loaded_ratio[MAX_ROUNDS];

    harness_client_set(NULL, 60000); /* a batch of 10,000 registrations */
    csv = fopen("bench_placement.csv", "w");
    if (csv == NULL)
        csv = fopen("/dev/null", "w");
    fprintf(csv, "round,ceiling_per_s,placed_per_s,loaded_per_s,ratio\n");
    for (int r = 0; r < rounds; r++) {
        struct sluice_figures f;

        ceiling[r] = run_ceiling(n);
        f = run_sluice(dir, r + 1, n);
        placed[r] = f.placed_per_s;
        loaded[r] = f.loaded_per_s;
        ratio[r] = placed[r] / ceiling[r];
        loaded_ratio[r] = loaded[r] / ceiling[r];
        printf("  round %d: ceiling %.0f/s, placed %.0f/s, loaded %.0f/s, ratio %.3f\n", r + 1,
               ceiling[r], placed[r], loaded[r], ratio[r]);
        fprintf(csv, "%d,%.0f,%.0f,%.0f,%.4f\n", r + 1, ceiling[r], placed[r], loaded[r],
                ratio[r]);
    }
    printf("placement: %" PRIu64 " segments over 3 real nodes (admission off), median of %d\n", n,
           rounds);
    printf("  Sluice placed (every segment accepted by a node): %.0f segments/s\n",
           bench_median(placed, (size_t)rounds));
    printf("  Sluice loaded (every segment LOADED):             %.0f segments/s\n",
           bench_median(loaded, (size_t)rounds));
    printf("  evhttp hello ceiling (same client, 3 servers):    %.0f requests/s\n",
           bench_median(ceiling, (size_t)rounds));
    printf("  ratio placed/ceiling: %.3f  loaded/ceiling: %.3f\n", bench_median(ratio, (size_t)rounds),
           bench_median(loaded_ratio, (size_t)rounds));
    fclose(csv);
    harness_dir_remove(dir);
    free(dir);
    return 0;
}
