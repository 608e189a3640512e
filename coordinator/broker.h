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
 *   GET  /metrics, /healthz (public)
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

struct broker_config {
    const char *listen;          /* "127.0.0.1:7100" */
    const char *coordinator;     /* host:port of the coordinator */
    const char *token;           /* NULL or "": no auth (also sent to the coordinator and nodes) */
    uint64_t poll_ms;            /* placement map poll interval */
    uint64_t query_timeout_ms;   /* a query's deadline when it names none */
    uint64_t attempt_timeout_ms; /* a sub-request unanswered this long failed (timeout) */
    unsigned hedge_percent;      /* extra requests for hedges, percent; 0: no hedging */
    unsigned conns_per_node;     /* keep-alive connections to each node */
    unsigned brokers;            /* brokers sending to the same nodes (C3's n) */
    bool round_robin;            /* replica choice by plain round robin, no hedges */
    struct http_limits limits;
};

/*
 * Binds cfg->listen and starts polling the coordinator. Returns NULL with
 * err written when the address cannot be bound or cfg is unusable.
 */
struct broker *broker_new(struct event_base *base, const struct broker_config *cfg, char *err,
                          size_t err_len);
const char *broker_bound(const struct broker *b);
/* Answers nothing more: queries in flight are dropped with their connections. NULL-safe. */
void broker_free(struct broker *b);

#endif
