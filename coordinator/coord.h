/*
 * coord: the coordinator daemon. It owns the SQLite catalog, the placer, one
 * keep-alive HTTP client per node, and the coordinator endpoints of
 * DESIGN.md section 3:
 *
 *   POST /v1/report                  NodeReport -> ReportResponse (what to drop)
 *   POST /v1/claim                   ClaimRequest -> ClaimResponse (pull mode)
 *   POST /v1/segments                SegmentBatch -> SegmentBatchResponse (durable)
 *   GET  /v1/segments[?state=&limit=], GET /v1/segments/{id} (with explain)
 *   POST /v1/segments/{id}/retry     INVALID -> PENDING; answers "PENDING\n"
 *   GET  /v1/nodes, POST /v1/nodes/{id}/drain, POST /v1/nodes/{id}/undrain
 *                                    answer the node's resulting state, "STATE\n"
 *                                    (a DOWN or SUSPECT node keeps its state; the
 *                                    drain or undrain applies on its next report)
 *   POST /v1/nodes/{id}/forget       a DOWN node leaves memory, catalog and placer
 *   GET  /v1/events[?segment=&limit=], GET /v1/status, GET /metrics, GET /healthz
 *   GET  /v1/placements?since=V      the brokers' placement map (placements.c)
 *   POST /v1/query                   a table query, through the broker's own code (broker.h)
 *
 * It does no memory arithmetic: the placer fires assignments round-robin and
 * trusts each node's answer. Registrations are committed before they are
 * acknowledged; placement bookkeeping is group-committed every few ms.
 */
#ifndef SLUICE_COORD_H
#define SLUICE_COORD_H

#include <stddef.h>
#include <stdint.h>

#include "http.h"

struct event_base;
struct coord;
struct broker_config;

struct coord_config {
    const char *listen;          /* "127.0.0.1:7000" */
    /* The address other coordinators send clients to when this one leads (X-Sluice-Leader);
     * NULL or "": the bound address (a wildcard host replaced by the host name). */
    const char *advertise;
    uint64_t elections;          /* leads taken before (a coordinator made again after a step-down) */
    /*
     * true: made again after a step-down (coordinator/main.c), when the
     * catalog may be unreachable for a while (PostgreSQL restarting). It
     * serves at once as a standby, and opens the catalog and tries the
     * lead from its one-second standby tick, never failing on them.
     * false (a first start): a catalog that cannot be opened or read
     * fails coord_new().
     */
    bool after_step_down;
    const char *db_path;         /* catalog: sqlite:FILE, FILE or postgresql://... */
    const char *token;           /* NULL or "": no auth */
    const char *nodes;           /* optional comma-separated node addresses to adopt */
    uint64_t node_timeout_ms;    /* no report for this long: DOWN */
    uint64_t assign_timeout_ms;  /* an assignment with no answer: transport error */
    unsigned max_in_flight_per_node;
    uint64_t drop_retry_ms;      /* a DROPPED segment does not go back to its node before this */
    uint64_t events_keep;
    struct http_limits limits;
    /*
     * "roundrobin" (Sluice: blind round-robin, nodes decide) or "rowcount":
     * the central row-count scheduler that Sluice is compared against. Each
     * node's capacity in rows is its memory limit (from its reports) divided
     * by bytes_per_row, or set explicitly in node_rows ("id=rows,..."); each
     * segment goes to the node with the fewest rows relative to capacity.
     */
    const char *placement;
    uint64_t bytes_per_row;
    const char *node_rows;
    /*
     * Table queries (POST /v1/query) answered by the coordinator itself,
     * through the broker's code fed from its own placement map (the
     * embedded single-machine default); NULL: none. listen, coordinator,
     * token, server and placements are ignored (the coordinator's own).
     */
    const struct broker_config *broker;
};

struct coord *coord_new(struct event_base *base, const struct coord_config *cfg, char *err,
                        size_t err_len);
const char *coord_bound(const struct coord *c);
/* Commits what is pending and frees everything. NULL-safe. */
void coord_free(struct coord *c);

/*
 * Whether the loop stopped because this coordinator lost the lead (its
 * PostgreSQL connection failed or was re-opened, or a commit found it had):
 * the caller frees it, committing nothing more, and makes a new one on the
 * same address, which starts as a standby (coordinator/main.c).
 */
bool coord_lost_lead(const struct coord *c);

/* Leads this coordinator took, those of cfg->elections included. */
uint64_t coord_elections(const struct coord *c);

#endif
