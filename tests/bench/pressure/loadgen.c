/*
 * loadgen: open-loop query load on a Sluice cluster, for tests/bench/pressure.
 *
 * Every 1/rate seconds (on a fixed schedule, whether or not earlier queries
 * have answered) it picks a random LOADED segment from the coordinator's
 * listing (refreshed every 2 s), sends sum(value) over a key range to the
 * node holding it, and records the latency from the scheduled send time to
 * the answer, so queueing counts. One line per query goes to --out:
 *   t_ms,segment,node,status,latency_ms
 * where t_ms is the completion time since start and status is the HTTP
 * status, or 0 for a timeout or connection error. A node with more than
 * --max-pending queries queued is skipped (counted as status -1).
 * Bounded: it stops after --duration seconds.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <event2/http.h>

#include "clock.h"
#include "config.h"
#include "http.h"
#include "strmap.h"
#include "wire.h"
#include "xmalloc.h"

struct lg_node {
    char id[WIRE_ID_MAX + 1];
    char addr[WIRE_ADDR_MAX + 1];
    struct http_client *client;
};

struct lg {
    struct event_base *base;
    char *coordinator, *token;
    double rate;
    uint64_t duration_ms, start_ns, next_ns, sent;
    unsigned max_pending;
    FILE *out;
    struct strmap *nodes; /* id -> lg_node */
    char (*seg_ids)[WIRE_ID_MAX + 1];
    char (*seg_nodes)[WIRE_ID_MAX + 1];
    size_t n_segs;
    uint64_t rng;
    struct event *tick, *refresh;
};

struct lg_query {
    struct lg *lg;
    uint64_t sched_ns;
    char seg[WIRE_ID_MAX + 1];
    char node[WIRE_ID_MAX + 1];
};

static uint64_t lg_rand(struct lg *g)
{
    g->rng ^= g->rng << 13;
    g->rng ^= g->rng >> 7;
    g->rng ^= g->rng << 17;
    return g->rng;
}

/* Refreshes the node addresses and the LOADED segments with their holders. */
static void lg_refresh(struct lg *g)
{
    struct http_response r;
    struct wire_node_list nl;
    struct wire_segment_list sl;
    struct wire_error err;

    if (http_fetch(g->coordinator, "GET", "/v1/nodes", NULL, NULL, 0, g->token, 2000, &r) == 0) {
        if (r.status == 200 && wire_node_list_decode(r.body, r.body_len, &nl, &err) == 0) {
            for (size_t i = 0; i < nl.n; i++) {
                struct lg_node *n = strmap_get(g->nodes, nl.nodes[i].node_id);
                if (n != NULL && strcmp(n->addr, nl.nodes[i].addr) == 0)
                    continue;
                if (n == NULL) {
                    n = xcalloc(1, sizeof(*n));
                    snprintf(n->id, sizeof(n->id), "%s", nl.nodes[i].node_id);
                    strmap_put(g->nodes, n->id, n);
                } else {
                    http_client_free(n->client);
                }
                snprintf(n->addr, sizeof(n->addr), "%s", nl.nodes[i].addr);
                n->client = http_client_new(g->base, n->addr, 2000, g->token);
            }
            wire_node_list_done(&nl);
        }
        http_response_done(&r);
    }
    if (http_fetch(g->coordinator, "GET", "/v1/segments?state=LOADED&limit=1000000", NULL, NULL, 0,
                   g->token, 5000, &r) == 0) {
        if (r.status == 200 && wire_segment_list_decode(r.body, r.body_len, &sl, &err) == 0) {
            free(g->seg_ids);
            free(g->seg_nodes);
            g->seg_ids = xcalloc(sl.n + 1, sizeof(*g->seg_ids));
            g->seg_nodes = xcalloc(sl.n + 1, sizeof(*g->seg_nodes));
            g->n_segs = 0;
            for (size_t i = 0; i < sl.n; i++) {
                if (sl.segments[i].n_placements == 0)
                    continue;
                snprintf(g->seg_ids[g->n_segs], sizeof(g->seg_ids[0]), "%s",
                         sl.segments[i].spec.segment_id);
                snprintf(g->seg_nodes[g->n_segs], sizeof(g->seg_nodes[0]), "%s",
                         sl.segments[i].placements[0].node_id);
                g->n_segs++;
            }
            wire_segment_list_done(&sl);
        }
        http_response_done(&r);
    }
}

static void lg_done_cb(int status, const struct http_client_reply *reply, void *arg)
{
    struct lg_query *q = arg;
    struct lg *g = q->lg;
    uint64_t now = clock_mono_ns();

    fprintf(g->out, "%" PRIu64 ",%s,%s,%d,%.3f\n", (now - g->start_ns) / 1000000, q->seg, q->node,
            status > 0 ? status : 0, (double)(now - q->sched_ns) / 1e6);
    free(q);
}

static void lg_send(struct lg *g, uint64_t sched_ns)
{
    struct wire_query_request req;
    char ids[1][WIRE_ID_MAX + 1];
    struct lg_query *q;
    struct lg_node *n;
    uint8_t *body;
    size_t len, k;

    if (g->n_segs == 0)
        return;
    k = lg_rand(g) % g->n_segs;
    n = strmap_get(g->nodes, g->seg_nodes[k]);
    if (n == NULL || n->client == NULL)
        return;
    g->sent++;
    if (http_client_pending(n->client) >= g->max_pending) {
        fprintf(g->out, "%" PRIu64 ",%s,%s,-1,0\n", (clock_mono_ns() - g->start_ns) / 1000000,
                g->seg_ids[k], n->id);
        return;
    }
    q = xcalloc(1, sizeof(*q));
    q->lg = g;
    q->sched_ns = sched_ns;
    snprintf(q->seg, sizeof(q->seg), "%s", g->seg_ids[k]);
    snprintf(q->node, sizeof(q->node), "%s", n->id);
    memset(&req, 0, sizeof(req));
    snprintf(ids[0], sizeof(ids[0]), "%s", g->seg_ids[k]);
    req.n_segments = 1;
    req.segment_ids = ids;
    req.aggregate = WIRE_AGG_SUM;
    snprintf(req.column, sizeof(req.column), "value");
    snprintf(req.filter_column, sizeof(req.filter_column), "key");
    req.lo = (int64_t)(lg_rand(g) % 1000000);
    req.hi = req.lo + 4000000;
    body = wire_query_request_encode(&req, &len);
    if (http_client_request(n->client, EVHTTP_REQ_POST, "/v1/query", WIRE_CONTENT_TYPE, body, len,
                            lg_done_cb, q) < 0)
        lg_done_cb(-EIO, NULL, q);
    free(body);
}

/* Sends every query whose scheduled time has come: open loop. */
static void lg_tick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct lg *g = arg;
    uint64_t now = clock_mono_ns(), step = (uint64_t)(1e9 / g->rate);

    if (now - g->start_ns >= g->duration_ms * 1000000ull) {
        event_base_loopexit(g->base, NULL);
        return;
    }
    while (g->next_ns <= now) {
        lg_send(g, g->next_ns);
        g->next_ns += step;
    }
}

static void lg_refresh_cb(evutil_socket_t fd, short what, void *arg)
{
    lg_refresh(arg);
}

static int lg_free_node(const char *key, void *value, void *arg)
{
    struct lg_node *n = value;

    http_client_free(n->client);
    free(n);
    return 0;
}

int main(int argc, char **argv)
{
    struct lg g;
    char *out = NULL, err[256];
    double rate = 0;
    uint64_t duration = 0;
    int64_t max_pending = 0;
    const struct config_option opts[] = {
        {"coordinator", "SLUICE_COORDINATOR", CONFIG_STRING, &g.coordinator, "127.0.0.1:7000",
         "Coordinator address."},
        {"rate", NULL, CONFIG_DOUBLE, &rate, "50", "Queries per second.", .dmin = 0.1,
         .dmax = 100000},
        {"duration", NULL, CONFIG_DURATION, &duration, "60s", "Stop after this long.", 100,
         3600000},
        {"max-pending", NULL, CONFIG_INT, &max_pending, "200",
         "Queries queued per node beyond which a query is skipped.", 1, 100000},
        {"out", NULL, CONFIG_STRING, &out, NULL, "CSV file of every query.", .required = true},
    };
    struct timeval tick = {0, 2000}, refresh = {2, 0};
    int next;

    memset(&g, 0, sizeof(g));
    if (config_parse(opts, sizeof(opts) / sizeof(opts[0]), argc, argv, &next, err, sizeof(err)) !=
        0) {
        config_usage(stderr, "loadgen --out FILE [--rate R] [--duration D]",
                     "Open-loop query load on a Sluice cluster.", opts,
                     sizeof(opts) / sizeof(opts[0]));
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    g.token = getenv("SLUICE_TOKEN");
    g.rate = rate;
    g.duration_ms = duration;
    g.max_pending = (unsigned)max_pending;
    g.rng = 0x9E3779B97F4A7C15ull;
    g.out = fopen(out, "w");
    if (g.out == NULL) {
        fprintf(stderr, "loadgen: %s: %s\n", out, strerror(errno));
        return 1;
    }
    fprintf(g.out, "t_ms,segment,node,status,latency_ms\n");
    g.base = event_base_new();
    g.nodes = strmap_new();
    lg_refresh(&g);
    g.start_ns = g.next_ns = clock_mono_ns();
    g.tick = event_new(g.base, -1, EV_PERSIST, lg_tick_cb, &g);
    g.refresh = event_new(g.base, -1, EV_PERSIST, lg_refresh_cb, &g);
    event_add(g.tick, &tick);
    event_add(g.refresh, &refresh);
    event_base_dispatch(g.base);
    event_free(g.tick);
    event_free(g.refresh);
    strmap_foreach(g.nodes, lg_free_node, NULL);
    strmap_free(g.nodes);
    free(g.seg_ids);
    free(g.seg_nodes);
    event_base_free(g.base);
    fclose(g.out);
    fprintf(stderr, "loadgen: %" PRIu64 " queries scheduled\n", g.sent);
    config_free_strings(opts, sizeof(opts) / sizeof(opts[0]));
    return 0;
}
