/*
 * replica: the broker's choice of a replica per segment group, its
 * penalties, and its hedge budget, as pure policy (no I/O, no clock: the
 * caller passes now, in microseconds on a monotonic clock). Nodes are slots
 * 0 .. n-1; the caller maps node ids to slots.
 *
 * Score (lower is better), C3's replica ranking (Suresh, Canini, Schmid,
 * Feldmann, "C3: Cutting Tail Latency in Cloud Data Stores via Adaptive
 * Replica Selection", NSDI 2015, section 4.1), as Elasticsearch's Adaptive
 * Replica Selection uses it:
 *
 *     psi = R - 1/mu + q^3 / mu,     q = 1 + os * n + qbar
 *
 *   R     the broker's EWMA of the node's response time (sent to answered),
 *         or the node's own reported p99 when that is larger: the node sees
 *         every client's queries, so a node this broker stopped sending to
 *         (and so stopped sampling) is still ranked by its own signal;
 *   1/mu  the EWMA of the node's service time (the time it says it spent;
 *         the caller passes the response time when the node does not say);
 *   os    this broker's outstanding requests to the node;
 *   n     the number of brokers (config.clients), C3's concurrency
 *         compensation: the others probably send as much as this one;
 *   qbar  the EWMA of the node's reported in-flight queries.
 *
 * The cube is C3's: a node with a queue pays much more than one without,
 * so load spreads before queues build. EWMAs use alpha = 0.3 (the weight of
 * the newest sample; Elasticsearch's value). A node with no sample yet
 * takes its reported p99 for R and 1/mu (0 before any report), so a new
 * node is tried. Ties go to fewer outstanding requests, then to the first
 * candidate.
 *
 * Penalties: a 429 whose reason is the node's state (LOAD_CONCURRENCY,
 * LATENCY_SLO), a timeout, or a connection error keeps the node out of
 * every choice until its Retry-After (or, without one, config.penalty_us);
 * the caller retries on another replica at once.
 *
 * Hedging ("The Tail at Scale", Dean and Barroso, CACM 2013): a sub-request
 * not answered within the node's recent p95 (over its last
 * REPLICA_WINDOW response times) may be duplicated to another replica. A
 * token bucket bounds the extra requests: each primary request adds
 * config.hedge_percent hundredths of a token, a hedge takes one whole token,
 * and the bucket holds at most config.hedge_burst tokens, starting empty. So
 * at any moment hedges <= primaries * hedge_percent / 100.
 *
 * Expected load: a few calls per sub-request; single-threaded.
 */
#ifndef SLUICE_REPLICA_H
#define SLUICE_REPLICA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REPLICA_WINDOW 64 /* response times kept per node for its p95 */

struct replica_config {
    unsigned clients;       /* n in C3's formula; 0 means 1 */
    uint64_t penalty_us;    /* penalty without a Retry-After; 0 means 1 s */
    unsigned hedge_percent; /* extra requests allowed, in percent; 0 disables hedging */
    unsigned hedge_burst;   /* most hedges saved up; 0 means 10 */
};

/* Why a sub-request failed, for replica_on_failure. */
enum replica_failure {
    REPLICA_FAIL_OVERLOAD, /* 429 LOAD_CONCURRENCY or LATENCY_SLO */
    REPLICA_FAIL_TIMEOUT,
    REPLICA_FAIL_CONNECT,
    REPLICA_FAIL_COUNT_
};

struct replica;

/*
 * Policy for n_nodes slots (n_nodes >= 1), config copied (NULL for the
 * defaults: 1 client, 1 s penalty, 5 % hedges, burst 10). Never fails.
 */
struct replica *replica_new(size_t n_nodes, const struct replica_config *config);
void replica_free(struct replica *r); /* NULL-safe */

/*
 * Makes room for n_nodes slots (a broker learns of nodes as they join);
 * new slots start as a node never seen. Never shrinks.
 */
void replica_resize(struct replica *r, size_t n_nodes);
/* Slots the policy holds. */
size_t replica_size(const struct replica *r);

/* The node's NodeReport: its p99 and its in-flight queries (folded into qbar). */
void replica_on_report(struct replica *r, size_t node, uint64_t p99_us, uint64_t inflight);

/*
 * A sub-request sent to node: one more outstanding. A primary (not a hedge)
 * also refills the hedge bucket.
 */
void replica_on_send(struct replica *r, size_t node, bool hedge);

/*
 * The node answered a sub-request after response_us, of which it spent
 * service_us: one fewer outstanding, the EWMAs and the p95 window updated.
 */
void replica_on_answer(struct replica *r, size_t node, uint64_t response_us, uint64_t service_us);

/*
 * A sub-request failed: one fewer outstanding, and the node is penalised
 * until now_us + retry_after_us (retry_after_us 0: config.penalty_us). A
 * later penalty never shortens an earlier one.
 */
void replica_on_failure(struct replica *r, size_t node, enum replica_failure why, uint64_t now_us,
                        uint64_t retry_after_us);

/*
 * An answer that no longer matters (the hedge's twin answered first, the
 * query gave up): one fewer outstanding, nothing learnt.
 */
void replica_on_cancel(struct replica *r, size_t node);

/* True while node is penalised at now_us. */
bool replica_penalised(const struct replica *r, size_t node, uint64_t now_us);

/* The node's score, psi above, in microseconds (penalties aside). */
double replica_score(const struct replica *r, size_t node);

/*
 * Chooses among candidates[0 .. n-1] (slots) the lowest score of those not
 * penalised at now_us, skipping exclude (a slot already tried for this
 * group; SIZE_MAX for none). Returns 0 with *ret written; -EINVAL for n 0 or
 * a slot out of range; -EBUSY when every candidate is penalised or
 * excluded, with *ret_until (may be NULL) the earliest time a penalised one
 * comes back (0 when only excluded ones were left).
 */
int replica_choose(const struct replica *r, const size_t *candidates, size_t n, size_t exclude,
                   uint64_t now_us, size_t *ret, uint64_t *ret_until);

/*
 * How long to wait for node before a hedge: its p95 over the recent
 * response times, or its reported p99 before it has REPLICA_WINDOW / 4
 * samples; 0 when neither is known (no hedge).
 */
uint64_t replica_hedge_delay_us(const struct replica *r, size_t node);

/*
 * Takes one hedge from the budget. True when there was one (send the
 * hedge, then replica_on_send(..., true)); false when the budget is spent
 * or hedging is disabled.
 */
bool replica_hedge_take(struct replica *r);
/*
 * The same for a hedge sent as n requests (its segments' other replicas
 * are on several nodes): all n tokens or none.
 */
bool replica_hedge_take_n(struct replica *r, unsigned n);

/* Counters for metrics: primaries and hedges sent so far. */
uint64_t replica_primaries(const struct replica *r);
uint64_t replica_hedges(const struct replica *r);

#endif
