/*
 * api: the node's HTTP handlers, the endpoints of DESIGN.md section 3:
 *
 *   POST   /v1/assign          AssignRequest -> 202 | 409 | 422 | 507 | 400 | 415
 *   POST   /v1/assign/batch    AssignBatch -> 200 AssignBatchResponse (one answer each)
 *   DELETE /v1/segments/{id}   200 once the local copy is gone | 404 | 409
 *   POST   /v1/query           QueryRequest -> QueryResponse | 400 | 404 | 429 (too many
 *                               queries in flight: LOAD_CONCURRENCY, Retry-After)
 *   GET    /v1/status          NodeStatus
 *   POST   /v1/drain, /v1/undrain   refuse (503 DRAINING) or accept new assignments
 *   GET    /metrics            Prometheus text (no token)
 *   GET    /healthz            "ok" (no token)
 *
 * Handlers decode, call the node (admission, then the store) or queue a
 * scan, encode and reply; file I/O and scans run on the worker pool. Errors
 * carry an Error message body and the same sentence in the X-Sluice-Error
 * header.
 */
#ifndef SLUICE_NODE_API_H
#define SLUICE_NODE_API_H

#include "wire.h"

struct evhttp_request;
struct node;

/* Routes every endpoint above on the node's HTTP server. Called once, by node_new. */
void api_routes(struct node *node);

/*
 * Answers req with resp as POST /v1/assign does: HTTP status resp->status
 * and the encoded AssignResponse; a refusal also carries its detail in
 * X-Sluice-Error, its reason in X-Sluice-Reason and, when resp has one, a
 * Retry-After in whole seconds (rounded up). Used by the node's handlers and
 * by the farm's virtual nodes (farm.c), which answer alike.
 */
void api_assign_send(struct evhttp_request *req, const struct wire_assign_response *resp);

#endif
