/*
 * broker: the query broker, `sluice-coord broker` (DESIGN.md section 5,
 * "Broker"). It follows the coordinator's placement map (GET
 * /v1/placements?since=V, bmap.h), answers POST /v1/query for a table by
 * sending each node one request for the segments chosen there, and merges
 * the answers exactly (merge.h). Replicas are chosen per segment group (the
 * segments whose LOADED holders are the same nodes) by the C3 score of
 * replica.h, or by plain round robin for comparison; a sub-request not
 * answered by its node's recent p95 is hedged to other replicas within the
 * 5 % budget; a 429, 5xx, timeout or connection error penalises the node
 * (until its Retry-After) and sends the segments to another replica at
 * once. A segment no replica answered is an error naming it (503
 * segments_unavailable), or, with allow_partial, listed in a partial
 * answer. Every sub-request carries the time the query has left
 * (QueryRequest.timeout_ms).
 *
 *   POST /v1/query   QueryRequest{table, aggregate, column, filter, allow_partial,
 *                    timeout_ms} -> 200 QueryResponse (merged, with the broker's
 *                    account: segments, missing_segment_ids, partial, nodes_asked,
 *                    subrequests, retries, hedges, placement_version);
 *                    400 bad request (also a column a node refuses), 404 no such
 *                    table, 429 too many queries in flight, 503 not_ready (no
 *                    map yet) or segments_unavailable, 504 deadline_exceeded
 *   GET  /metrics, /healthz (public; the embedded broker of `sluice-coord
 *        serve` has neither: the coordinator's /metrics carries its families)
 *
 * Expected load: hundreds of queries per second over tables of thousands
 * of segments; a query costs O(segments) to plan plus one request per node
 * (more only for retries and hedges). Single-threaded, on the caller's
 * event_base.
 */
#ifndef SLUICE_BROKER_H
#define SLUICE_BROKER_H

#include <stdbool.h>
#include <stdint.h>

#include "http.h"

struct event_base;
struct broker;
struct metrics_buf;
struct wire_placement_map;

/*
 * The placement map from inside the coordinator's own process: fills *ret
 * as GET /v1/placements?since=V&epoch=E[&after=ID] answers (after "" for
 * none). Returns 0. The broker frees *ret with wire_placement_map_done().
 */
typedef int (*broker_placements_fn)(void *arg, uint64_t since, uint64_t epoch, const char *after,
                                    struct wire_placement_map *ret);

struct broker_config {
    const char *listen;          /* "127.0.0.1:7100" */
    const char *coordinator;     /* host:port of the coordinator */
    const char *token;           /* NULL or "": no auth (also sent to the coordinator and nodes) */
    uint64_t poll_ms;            /* placement map poll interval */
    uint64_t query_timeout_ms;   /* a query's deadline when it names none */
    uint64_t attempt_timeout_ms; /* a sub-request unanswered this long failed (timeout) */
    uint64_t penalty_ms;         /* a failed node without a Retry-After sits out this long; 0: 5 s */
    unsigned hedge_percent;      /* extra requests for hedges, percent; 0: no hedging */
    unsigned conns_per_node;     /* keep-alive connections to each node */
    unsigned brokers;            /* brokers sending to the same nodes (C3's n) */
    bool round_robin;            /* replica choice by plain round robin, no hedges */
    struct http_limits limits;
    /*
     * The embedded broker of `sluice-coord serve`: with server set, POST
     * /v1/query is routed on that server (the coordinator's; listen and
     * limits unused, and no /metrics or /healthz of its own: the owner
     * adds broker_metrics() to its own), and with placements set the map
     * comes from that function on every poll instead of HTTP from
     * coordinator (which may then be NULL). The owner frees its server
     * before broker_free().
     */
    struct http_server *server;
    broker_placements_fn placements;
    void *placements_arg;
};

/*
 * The flags a broker takes in both `sluice-coord broker` and `sluice-coord
 * serve` (which answers queries itself through the same code): put
 * BROKER_OPTIONS(a struct broker_flags) in the config_option array and
 * copy the parsed values with broker_flags_apply().
 */
struct broker_flags {
    uint64_t query_timeout, attempt_timeout, penalty;
    int64_t hedge, conns, brokers;
    char *choice;
};

extern const char *const broker_choices[]; /* adaptive, roundrobin */

/* clang-format off */
#define BROKER_OPTIONS(f)                                                                    \
    {"query-timeout", "SLUICE_QUERY_TIMEOUT", CONFIG_DURATION, &(f).query_timeout, "10s",    \
     "A query's deadline when it names none (timeout_ms).", 10, 600000},                     \
    {"attempt-timeout", "SLUICE_ATTEMPT_TIMEOUT", CONFIG_DURATION, &(f).attempt_timeout,     \
     "2s", "A node's request unanswered this long has failed: its segments go to another "   \
     "replica.", 10, 600000},                                                                \
    {"penalty", "SLUICE_PENALTY", CONFIG_DURATION, &(f).penalty, "5s",                       \
     "A node whose request timed out, could not connect or failed without a Retry-After "    \
     "is left out of replica choices this long.", 1, 600000},                                \
    {"hedge-percent", "SLUICE_HEDGE_PERCENT", CONFIG_INT, &(f).hedge, "5",                   \
     "Extra requests allowed for hedges, in percent of requests (0: no hedging).", 0, 50},   \
    {"conns-per-node", "SLUICE_CONNS_PER_NODE", CONFIG_INT, &(f).conns, "4",                 \
     "Keep-alive connections to each node (requests on one go one at a time).", 1, 64},      \
    {"brokers", "SLUICE_BROKERS", CONFIG_INT, &(f).brokers, "1",                             \
     "Brokers sending to the same nodes (n in C3's queue estimate).", 1, 1000},              \
    {"replica-choice", "SLUICE_REPLICA_CHOICE", CONFIG_CHOICE, &(f).choice, "adaptive",      \
     "adaptive: C3 / Adaptive Replica Selection with hedging. roundrobin: plain round "      \
     "robin, no hedging (for comparison).", .choices = broker_choices}
/* clang-format on */

/* Copies the parsed flags into cfg (its other fields untouched). */
void broker_flags_apply(const struct broker_flags *f, struct broker_config *cfg);

/*
 * Binds cfg->listen and starts polling the coordinator. Returns NULL with
 * err written when the address cannot be bound or cfg is unusable.
 */
struct broker *broker_new(struct event_base *base, const struct broker_config *cfg, char *err,
                          size_t err_len);
const char *broker_bound(const struct broker *b);
/* Answers nothing more: queries in flight are dropped with their connections. NULL-safe. */
void broker_free(struct broker *b);

/* Appends the broker's sluice_broker_* families to m (its /metrics, or its owner's). */
void broker_metrics(const struct broker *b, struct metrics_buf *m);

#endif
