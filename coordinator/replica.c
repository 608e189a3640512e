/*
 * replica: C3 / Adaptive Replica Selection scores, penalties and the hedge
 * budget (see replica.h for the formula and its sources). Times are
 * integers in microseconds; EWMAs are doubles. The hedge bucket counts
 * hundredths of a hedge in an integer, so the 5 % bound is exact, with no
 * rounding drift over millions of requests.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "replica.h"
#include "xmalloc.h"

#define REPLICA_ALPHA 0.3 /* weight of the newest sample in each EWMA */

struct replica_node {
    bool sampled; /* R and S hold at least one answer */
    double r_ewma, s_ewma;
    bool reported;
    double qbar;     /* EWMA of reported in-flight queries */
    uint64_t p99_us; /* last reported */
    uint64_t outstanding;
    uint64_t penalty_until;
    uint64_t window[REPLICA_WINDOW]; /* recent response times, a ring */
    size_t n_window, next_window;
};

struct replica {
    struct replica_config cfg;
    size_t n;
    struct replica_node *nodes;
    uint64_t tokens; /* hundredths of a hedge */
    uint64_t primaries, hedges;
};

struct replica *replica_new(size_t n_nodes, const struct replica_config *config)
{
    struct replica *r = xcalloc(1, sizeof(*r));

    if (config)
        r->cfg = *config;
    else
        r->cfg.hedge_percent = 5;
    if (r->cfg.clients == 0)
        r->cfg.clients = 1;
    if (r->cfg.penalty_us == 0)
        r->cfg.penalty_us = 1000000;
    if (r->cfg.hedge_burst == 0)
        r->cfg.hedge_burst = 10;
    r->n = n_nodes ? n_nodes : 1;
    r->nodes = xcalloc(r->n, sizeof(*r->nodes));
    return r;
}

void replica_resize(struct replica *r, size_t n_nodes)
{
    if (n_nodes <= r->n)
        return;
    r->nodes = xreallocarray(r->nodes, n_nodes, sizeof(*r->nodes));
    memset(&r->nodes[r->n], 0, (n_nodes - r->n) * sizeof(*r->nodes));
    r->n = n_nodes;
}

size_t replica_size(const struct replica *r)
{
    return r->n;
}

void replica_free(struct replica *r)
{
    if (!r)
        return;
    free(r->nodes);
    free(r);
}

static double replica_ewma(double old, double sample)
{
    return REPLICA_ALPHA * sample + (1.0 - REPLICA_ALPHA) * old;
}

void replica_on_report(struct replica *r, size_t node, uint64_t p99_us, uint64_t inflight)
{
    struct replica_node *nd = &r->nodes[node];

    nd->p99_us = p99_us;
    nd->qbar = nd->reported ? replica_ewma(nd->qbar, (double)inflight) : (double)inflight;
    nd->reported = true;
}

void replica_on_send(struct replica *r, size_t node, bool hedge)
{
    uint64_t cap = (uint64_t)r->cfg.hedge_burst * 100;

    r->nodes[node].outstanding++;
    if (hedge) {
        r->hedges++;
        return;
    }
    r->primaries++;
    r->tokens += r->cfg.hedge_percent;
    if (r->tokens > cap)
        r->tokens = cap;
}

/* One fewer outstanding; an answer never counted as sent is not an underflow. */
static void replica_done(struct replica_node *nd)
{
    if (nd->outstanding > 0)
        nd->outstanding--;
}

void replica_on_answer(struct replica *r, size_t node, uint64_t response_us, uint64_t service_us)
{
    struct replica_node *nd = &r->nodes[node];

    replica_done(nd);
    if (nd->sampled) {
        nd->r_ewma = replica_ewma(nd->r_ewma, (double)response_us);
        nd->s_ewma = replica_ewma(nd->s_ewma, (double)service_us);
    } else {
        nd->r_ewma = (double)response_us;
        nd->s_ewma = (double)service_us;
        nd->sampled = true;
    }
    nd->window[nd->next_window] = response_us;
    nd->next_window = (nd->next_window + 1) % REPLICA_WINDOW;
    if (nd->n_window < REPLICA_WINDOW)
        nd->n_window++;
}

void replica_on_failure(struct replica *r, size_t node, enum replica_failure why, uint64_t now_us,
                        uint64_t retry_after_us)
{
    struct replica_node *nd = &r->nodes[node];
    uint64_t until = now_us + (retry_after_us ? retry_after_us : r->cfg.penalty_us);

    (void)why; /* every failure the broker passes here penalises alike */
    replica_done(nd);
    if (until > nd->penalty_until)
        nd->penalty_until = until;
}

void replica_on_cancel(struct replica *r, size_t node)
{
    replica_done(&r->nodes[node]);
}

bool replica_penalised(const struct replica *r, size_t node, uint64_t now_us)
{
    return now_us < r->nodes[node].penalty_until;
}

double replica_score(const struct replica *r, size_t node)
{
    const struct replica_node *nd = &r->nodes[node];
    double p99 = (double)nd->p99_us;
    double resp = nd->sampled ? nd->r_ewma : p99;
    double serv = nd->sampled ? nd->s_ewma : p99;
    double q = 1.0 + (double)nd->outstanding * r->cfg.clients + nd->qbar;

    if (p99 > resp)
        resp = p99;
    /* C3: psi = R - 1/mu + q^3 / mu, with 1/mu the service time. */
    return resp - serv + q * q * q * serv;
}

int replica_choose(const struct replica *r, const size_t *candidates, size_t n, size_t exclude,
                   uint64_t now_us, size_t *ret, uint64_t *ret_until)
{
    size_t best = SIZE_MAX;
    double best_score = 0;
    uint64_t until = 0;

    if (n == 0)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (candidates[i] >= r->n)
            return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        size_t c = candidates[i];
        const struct replica_node *nd = &r->nodes[c];
        double s;

        if (c == exclude)
            continue;
        if (replica_penalised(r, c, now_us)) {
            if (until == 0 || nd->penalty_until < until)
                until = nd->penalty_until;
            continue;
        }
        s = replica_score(r, c);
        if (best == SIZE_MAX || s < best_score ||
            (s == best_score && nd->outstanding < r->nodes[best].outstanding)) {
            best = c;
            best_score = s;
        }
    }
    if (best == SIZE_MAX) {
        if (ret_until)
            *ret_until = until;
        return -EBUSY;
    }
    *ret = best;
    return 0;
}

static int replica_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

uint64_t replica_hedge_delay_us(const struct replica *r, size_t node)
{
    const struct replica_node *nd = &r->nodes[node];
    uint64_t v[REPLICA_WINDOW];
    size_t k;

    if (nd->n_window < REPLICA_WINDOW / 4)
        return nd->p99_us;
    memcpy(v, nd->window, nd->n_window * sizeof(v[0]));
    qsort(v, nd->n_window, sizeof(v[0]), replica_cmp_u64);
    /* Nearest rank: the smallest value with at least 95 % at or below it. */
    k = (nd->n_window * 95 + 99) / 100;
    return v[k - 1];
}

bool replica_hedge_take(struct replica *r)
{
    return replica_hedge_take_n(r, 1);
}

bool replica_hedge_take_n(struct replica *r, unsigned n)
{
    if (r->cfg.hedge_percent == 0 || n == 0 || r->tokens < (uint64_t)n * 100)
        return false;
    r->tokens -= (uint64_t)n * 100;
    return true;
}

uint64_t replica_primaries(const struct replica *r)
{
    return r->primaries;
}

uint64_t replica_hedges(const struct replica *r)
{
    return r->hedges;
}
