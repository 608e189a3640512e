/*
 * broker: scatter-gather queries over a table (see broker.h for the
 * endpoints). Three parts:
 *
 *  - the poller keeps bmap (the placement map) in step with the
 *    coordinator: a delta since the map's version every --poll-interval, a
 *    full refresh in pages when the coordinator says so;
 *  - a query (struct bq) copies its table's segments and their candidate
 *    replicas out of the map, then plans: segments with the same candidates
 *    form a group, each group gets one replica (replica_choose, C3's score,
 *    or round robin), and each chosen node gets one request for all its
 *    segments, in the query's order (chunks of 1,024);
 *  - each request is an attempt of a "cover" (struct bq_cover: a set of
 *    segments answered together). A cover is done when its primary request
 *    answers, or when every piece of its hedge answers (a hedge sends the
 *    same segments to other replicas, one request per node); the first to
 *    finish is merged, the other's answer is only learnt from. A cover
 *    whose primary and hedge both failed is planned again over the
 *    replicas not yet tried; a segment with none left is missing.
 *
 * Lifetimes: a sub-request (struct bsub) is freed by its HTTP callback,
 * which libevent calls exactly once (with -ECANCELED when the client is
 * freed). A cover or query that finishes first leaves its sub-requests
 * orphaned (sub->cv NULL): their answers still feed the replica policy,
 * nothing else. A query is freed once answered.
 */
#include "broker.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "bmap.h"
#include "clock.h"
#include "coordlist.h"
#include "histogram.h"
#include "log.h"
#include "merge.h"
#include "metrics.h"
#include "pbhttp.h"
#include "reason.h"
#include "replica.h"
#include "sluice_config.h"
#include "strmap.h"
#include "wire.h"
#include "xmalloc.h"

#define BROKER_MAX_QUERIES  4096 /* queries in flight; more get 429 */
#define BROKER_MAX_CANDS    WIRE_REPLICATION_MAX
#define BROKER_MAX_TIMEOUT  600000 /* the longest timeout_ms a query may ask, ms */
/*
 * A node that timed out, refused the connection or failed without a
 * Retry-After is left out of choices this long, unless --penalty says
 * otherwise: a stalled or dead process seldom recovers within a second,
 * and the coordinator's --node-timeout (5 s) takes it out of the map by
 * then anyway.
 */
#define BROKER_PENALTY_MS   5000

enum bq_outcome {
    BQ_OK,
    BQ_PARTIAL,
    BQ_UNAVAILABLE,
    BQ_TIMEOUT,
    BQ_BAD_REQUEST,
    BQ_NOT_FOUND,
    BQ_OVERLOADED,
    BQ_OUTCOME_COUNT_
};
static const char *const bq_outcome_names[BQ_OUTCOME_COUNT_] = {
    "ok", "partial", "unavailable", "timeout", "bad_request", "not_found", "overloaded"};

/* Why a sub-request failed (sluice_broker_retries_total{reason}). */
enum bsub_fail { BF_OVERLOAD, BF_TIMEOUT, BF_CONNECT, BF_NOT_HELD, BF_FAILED, BF_COUNT_ };
static const char *const bsub_fail_names[BF_COUNT_] = {"overload", "timeout", "connect",
                                                       "not_held", "failed"};

enum bsub_kind { BK_PRIMARY, BK_RETRY, BK_HEDGE, BK_COUNT_ };
static const char *const bsub_kind_names[BK_COUNT_] = {"primary", "retry", "hedge"};

enum hedge_outcome { HO_WON, HO_LOST, HO_FAILED, HO_DENIED, HO_COUNT_ };
static const char *const hedge_outcome_names[HO_COUNT_] = {"won", "lost", "failed", "denied"};

/* What the broker keeps per node slot. */
struct broker_node {
    char addr[WIRE_ADDR_MAX + 1];
    struct http_client **clients; /* cfg.conns_per_node of them, made on first use */
    uint64_t choices;             /* sub-requests sent here */
};

struct bq;
struct bq_cover;
struct bsub;

/* One request of a hedge: its segments and, once it came, its answer. */
struct bq_piece {
    struct bsub *s; /* NULL once it ended */
    size_t n;
    size_t *idx;
    struct wire_query_response answer;
};

struct bsub {
    struct broker *b;
    struct bq_cover *cv; /* NULL: orphaned (its cover or query is done) */
    size_t slot;
    enum bsub_kind kind;
    bool accounted; /* the replica policy has heard how it ended */
    size_t n;
    size_t *idx; /* query segment indexes, increasing */
    uint64_t sent_us;
    struct event *timeout_ev;
};

struct bq_cover {
    struct bq *q;
    size_t n;
    size_t *idx;              /* the segments it covers, in query order */
    struct bsub *primary;     /* NULL once it ended */
    bool primary_failed;
    struct bq_piece *pieces;  /* the hedge's requests */
    size_t n_pieces, pieces_ok;
    bool hedged, hedge_failed;
    bool done;
    struct event *hedge_ev;
};

/* A segment of the query: its id and candidate replicas, copied from the map. */
struct bq_seg {
    char id[WIRE_ID_MAX + 1];
    size_t n_cand;
    size_t cand[BROKER_MAX_CANDS];
    uint32_t tried; /* bit i: cand[i] was asked */
};

struct bq {
    struct broker *b;
    struct bq *prev, *next;
    struct evhttp_request *req;
    struct wire_query_request ask; /* the table query; segment ids are per sub-request */
    uint64_t start_us, deadline_us;
    size_t n;
    struct bq_seg *segs;
    struct merge *merge;
    struct bq_cover **covers;
    size_t n_covers, cap_covers, active;
    bool *asked; /* per slot: sent at least one sub-request */
    size_t n_asked_slots;
    uint32_t nodes_asked, subrequests, retries, hedges;
    uint64_t version;
    char why[160]; /* the last failure, for an error that names missing segments */
    struct event *deadline_ev;
    bool answered;
};

struct broker {
    struct event_base *base;
    struct broker_config cfg;
    char *token, *coordinator;
    struct http_server *http;
    bool own_http;  /* false: the coordinator's server (embedded) */
    char bound[128];
    struct coordclient *coord; /* to the leader of the --coordinator list */
    struct event *poll_ev;
    bool refreshing;
    uint64_t refresh_epoch;
    char after[WIRE_ID_MAX + 1];
    bool poll_failing;
    struct bmap *map;
    struct replica *rep;
    struct broker_node *nodes;
    size_t n_nodes;
    uint64_t rr;
    struct bq *queries; /* in flight, a list */
    size_t n_queries;
    /* metrics */
    struct histogram latency; /* ns */
    struct histogram fanout;  /* nodes asked per query */
    uint64_t outcomes[BQ_OUTCOME_COUNT_], fails[BF_COUNT_], kinds[BK_COUNT_];
    uint64_t hedge_outcomes[HO_COUNT_];
    uint64_t polls_delta, polls_full, polls_failed;
};

static uint64_t broker_now_us(void)
{
    return clock_mono_ns() / 1000;
}

/* ---- nodes ----------------------------------------------------------------- */

static void broker_node_clients_free(struct broker_node *bn, unsigned k)
{
    if (bn->clients == NULL)
        return;
    for (unsigned i = 0; i < k; i++)
        http_client_free(bn->clients[i]);
    free(bn->clients);
    bn->clients = NULL;
}

/*
 * After the map changed: a slot for every node, the replica policy as wide,
 * each node's reported p99 and queries in flight, and new clients for a
 * node that moved.
 */
static void broker_sync_nodes(struct broker *b)
{
    size_t n = bmap_slots(b->map);

    if (n > b->n_nodes) {
        b->nodes = xreallocarray(b->nodes, n, sizeof(*b->nodes));
        memset(&b->nodes[b->n_nodes], 0, (n - b->n_nodes) * sizeof(*b->nodes));
        b->n_nodes = n;
        replica_resize(b->rep, n);
    }
    for (size_t i = 0; i < n; i++) {
        const struct bmap_node *mn = bmap_node_at(b->map, i);
        struct broker_node *bn = &b->nodes[i];

        if (strcmp(bn->addr, mn->addr) != 0) {
            broker_node_clients_free(bn, b->cfg.conns_per_node);
            snprintf(bn->addr, sizeof(bn->addr), "%s", mn->addr);
        }
        if (mn->state[0] != '\0')
            replica_on_report(b->rep, i, (uint64_t)(mn->p99_seconds * 1e6),
                              mn->queries_in_flight);
    }
}

/* A node worth asking: known to the coordinator, with an address, and not DOWN. */
static bool broker_node_usable(const struct broker *b, size_t slot)
{
    const struct bmap_node *mn = bmap_node_at(b->map, slot);

    return mn != NULL && mn->state[0] != '\0' && strcmp(mn->state, "DOWN") != 0 &&
           mn->addr[0] != '\0';
}

/* The least busy of the node's connections (made on first use); NULL for a bad address. */
static struct http_client *broker_client(struct broker *b, size_t slot)
{
    struct broker_node *bn = &b->nodes[slot];
    struct http_client *best = NULL;

    if (bn->clients == NULL) {
        bn->clients = xcalloc(b->cfg.conns_per_node, sizeof(*bn->clients));
        for (unsigned i = 0; i < b->cfg.conns_per_node; i++)
            bn->clients[i] = http_client_new(b->base, bn->addr,
                                             (unsigned)(BROKER_MAX_TIMEOUT + 1000), b->token);
    }
    for (unsigned i = 0; i < b->cfg.conns_per_node; i++)
        if (bn->clients[i] != NULL &&
            (best == NULL || http_client_pending(bn->clients[i]) < http_client_pending(best)))
            best = bn->clients[i];
    return best;
}

/* ---- answering a query ------------------------------------------------------ */

static void bq_free(struct bq *q);

/* Orphans a sub-request: its answer will feed the replica policy only. */
static void bsub_orphan(struct bsub *s)
{
    if (s == NULL)
        return;
    s->cv = NULL;
    if (s->timeout_ev != NULL)
        event_del(s->timeout_ev);
}

static void bq_cover_close(struct bq_cover *cv)
{
    cv->done = true;
    if (cv->q->active > 0)
        cv->q->active--;
    if (cv->hedge_ev != NULL)
        event_del(cv->hedge_ev);
    bsub_orphan(cv->primary);
    cv->primary = NULL;
    for (size_t i = 0; i < cv->n_pieces; i++) {
        bsub_orphan(cv->pieces[i].s);
        cv->pieces[i].s = NULL;
    }
}

/* "a, b, c and 4 more" of the missing segments, into buf. */
static void bq_missing_list(const struct bq *q, const size_t *miss, size_t n, char *buf,
                            size_t len)
{
    size_t used = 0, i;

    buf[0] = '\0';
    for (i = 0; i < n && used + 8 < len; i++) {
        int w = snprintf(buf + used, len - used, "%s%s", i > 0 ? ", " : "", q->segs[miss[i]].id);

        if (w < 0 || (size_t)w >= len - used || used + (size_t)w > len - 24) {
            buf[used] = '\0';
            break;
        }
        used += (size_t)w;
    }
    if (i < n)
        snprintf(buf + used, len - used, " and %zu more", n - i);
}

static void bq_finish(struct bq *q, enum bq_outcome outcome)
{
    struct broker *b = q->b;

    q->answered = true;
    b->outcomes[outcome]++;
    histogram_record(&b->latency, (broker_now_us() - q->start_us) * 1000);
    if (q->nodes_asked > 0)
        histogram_record(&b->fanout, q->nodes_asked);
    bq_free(q);
}

static void bq_error(struct bq *q, int status, const char *code, enum bq_outcome outcome,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void bq_error(struct bq *q, int status, const char *code, enum bq_outcome outcome,
                     const char *fmt, ...)
{
    char msg[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    pbhttp_reply_error(q->req, status, code, msg);
    bq_finish(q, outcome);
}

/*
 * Answers the query: merged over every segment, or, with segments missing,
 * a partial answer (allow_partial) or an error naming them.
 */
static void bq_answer(struct bq *q, bool timed_out)
{
    struct wire_table_query_response out;
    size_t *miss = xcalloc(q->n ? q->n : 1, sizeof(*miss));
    size_t n_miss = merge_missing(q->merge, miss, q->n);
    char list[200];
    uint8_t *buf;
    size_t len;

    if (n_miss > 0 && !q->ask.allow_partial) {
        bq_missing_list(q, miss, n_miss, list, sizeof(list));
        if (timed_out)
            bq_error(q, 504, "deadline_exceeded", BQ_TIMEOUT,
                     "%zu of %zu segments of table \"%s\" unanswered within the query's "
                     "%" PRIu64 " ms: %s",
                     n_miss, q->n, q->ask.table, (q->deadline_us - q->start_us) / 1000, list);
        else
            bq_error(q, 503, "segments_unavailable", BQ_UNAVAILABLE,
                     "%zu of %zu segments of table \"%s\" have no replica that answered "
                     "(%s): %s",
                     n_miss, q->n, q->ask.table, q->why[0] ? q->why : "none LOADED", list);
        free(miss);
        return;
    }
    memset(&out, 0, sizeof(out));
    if (merge_result(q->merge, true, &out.result) < 0) {
        free(miss);
        bq_error(q, 500, "merge", BQ_UNAVAILABLE, "merging the nodes' answers failed");
        return;
    }
    out.result.service_us = 0;
    out.segments = (uint32_t)q->n;
    out.n_missing = n_miss;
    out.missing = xcalloc(n_miss ? n_miss : 1, sizeof(*out.missing));
    for (size_t i = 0; i < n_miss; i++)
        snprintf(out.missing[i], sizeof(out.missing[i]), "%s", q->segs[miss[i]].id);
    out.partial = n_miss > 0;
    out.nodes_asked = q->nodes_asked;
    out.subrequests = q->subrequests;
    out.retries = q->retries;
    out.hedges = q->hedges;
    out.placement_version = q->version;
    buf = wire_table_query_response_encode(&out, &len);
    wire_table_query_response_done(&out);
    free(miss);
    pbhttp_reply_msg(q->req, 200, WIRE_MSG_QUERY_RESPONSE, buf, len);
    bq_finish(q, n_miss > 0 ? BQ_PARTIAL : BQ_OK);
}

/* Answers once every segment is covered, or once nothing is left in flight. */
static void bq_check(struct bq *q)
{
    if (q->answered)
        return;
    if (merge_complete(q->merge) || q->active == 0)
        bq_answer(q, false);
}

static void bsub_timeout_cb(evutil_socket_t fd, short what, void *arg);
static void bsub_answer_cb(int status, const struct http_client_reply *reply, void *arg);
static void bq_cover_hedge_cb(evutil_socket_t fd, short what, void *arg);

/* Sends one sub-request for segments idx[0..n) to slot; false when it could not be queued. */
static bool bsub_send(struct bq *q, struct bq_cover *cv, size_t slot, const size_t *idx, size_t n,
                      enum bsub_kind kind, struct bsub **ret)
{
    struct broker *b = q->b;
    struct http_client *client = broker_client(b, slot);
    struct wire_query_request m = q->ask;
    uint64_t now = broker_now_us(), left_us, wait_us;
    struct bsub *s;
    struct timeval tv;
    uint8_t *buf;
    size_t len;
    int r;

    if (client == NULL)
        return false;
    m.table[0] = '\0';
    m.allow_partial = false;
    m.n_segments = n;
    m.segment_ids = xcalloc(n, sizeof(*m.segment_ids));
    for (size_t i = 0; i < n; i++)
        memcpy(m.segment_ids[i], q->segs[idx[i]].id, sizeof(m.segment_ids[i]));
    left_us = q->deadline_us > now ? q->deadline_us - now : 1000;
    m.timeout_ms = (uint32_t)((left_us + 999) / 1000);
    buf = wire_query_request_encode(&m, &len);
    free(m.segment_ids);
    s = xcalloc(1, sizeof(*s));
    s->b = b;
    s->cv = cv;
    s->slot = slot;
    s->kind = kind;
    s->n = n;
    s->idx = xcalloc(n, sizeof(*s->idx));
    memcpy(s->idx, idx, n * sizeof(*idx));
    s->sent_us = now;
    r = http_client_request(client, EVHTTP_REQ_POST, "/v1/query", WIRE_CONTENT_TYPE, buf, len,
                            bsub_answer_cb, s);
    free(buf);
    if (r < 0) {
        free(s->idx);
        free(s);
        return false;
    }
    replica_on_send(b->rep, slot, kind == BK_HEDGE);
    b->nodes[slot].choices++;
    b->kinds[kind]++;
    q->subrequests++;
    q->retries += kind == BK_RETRY;
    q->hedges += kind == BK_HEDGE;
    if (slot < q->n_asked_slots && !q->asked[slot]) {
        q->asked[slot] = true;
        q->nodes_asked++;
    }
    /* Every segment asked there is tried there. */
    for (size_t i = 0; i < n; i++) {
        struct bq_seg *sg = &q->segs[idx[i]];

        for (size_t c = 0; c < sg->n_cand; c++)
            if (sg->cand[c] == slot)
                sg->tried |= 1u << c;
    }
    wait_us = b->cfg.attempt_timeout_ms * 1000;
    if (wait_us > left_us)
        wait_us = left_us;
    s->timeout_ev = evtimer_new(b->base, bsub_timeout_cb, s);
    tv.tv_sec = (time_t)(wait_us / 1000000);
    tv.tv_usec = (suseconds_t)(wait_us % 1000000);
    evtimer_add(s->timeout_ev, &tv);
    *ret = s;
    return true;
}

/* The candidates of segment i not tried yet on nodes worth asking, into out; their count. */
static size_t bq_untried(const struct bq *q, size_t i, size_t *out)
{
    const struct bq_seg *sg = &q->segs[i];
    size_t k = 0;

    for (size_t c = 0; c < sg->n_cand; c++)
        if (!(sg->tried & (1u << c)) && broker_node_usable(q->b, sg->cand[c]))
            out[k++] = sg->cand[c];
    return k;
}

/*
 * One replica for a group of segments whose untried candidates are cand[0
 * .. k): C3's best not penalised (or, as a last resort, the best penalised
 * one: a penalty keeps a node out of choices, but a segment with no other
 * replica left is still asked), or the next in round-robin order. For a
 * hedge (hedge true), no penalised node and no round robin: SIZE_MAX.
 */
static size_t bq_choose(struct broker *b, const size_t *cand, size_t k, bool hedge)
{
    size_t got = SIZE_MAX;

    if (b->cfg.round_robin && !hedge)
        return cand[b->rr++ % k];
    if (replica_choose(b->rep, cand, k, SIZE_MAX, broker_now_us(), &got, NULL) == 0)
        return got;
    if (hedge)
        return SIZE_MAX;
    got = cand[0];
    for (size_t i = 1; i < k; i++)
        if (replica_score(b->rep, cand[i]) < replica_score(b->rep, got))
            got = cand[i];
    return got;
}

/* A plan: per chosen slot, the segments it gets (query indexes, increasing). */
struct bq_plan {
    size_t n_slots;
    size_t *slot;
    size_t **idx;
    size_t *n_idx;
};

static void bq_plan_done(struct bq_plan *p)
{
    for (size_t i = 0; i < p->n_slots; i++)
        free(p->idx[i]);
    free(p->slot);
    free(p->idx);
    free(p->n_idx);
    memset(p, 0, sizeof(*p));
}

static size_t bq_plan_bucket(struct bq_plan *p, size_t slot, size_t cap)
{
    for (size_t i = 0; i < p->n_slots; i++)
        if (p->slot[i] == slot)
            return i;
    p->slot = xreallocarray(p->slot, p->n_slots + 1, sizeof(*p->slot));
    p->idx = xreallocarray(p->idx, p->n_slots + 1, sizeof(*p->idx));
    p->n_idx = xreallocarray(p->n_idx, p->n_slots + 1, sizeof(*p->n_idx));
    p->slot[p->n_slots] = slot;
    p->idx[p->n_slots] = xcalloc(cap, sizeof(size_t));
    p->n_idx[p->n_slots] = 0;
    return p->n_slots++;
}

static int bq_cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;

    return x < y ? -1 : x > y;
}

/*
 * Plans segments idx[0..n): groups by their untried candidates (the same
 * set, in any order, is one group), one replica per group, segments
 * gathered per chosen node. Segments with no candidate left go to
 * *ret_lost (may be NULL: then a hedge, which gives up on any). Returns
 * false only for a hedge that cannot cover every segment.
 */
static bool bq_plan_make(struct bq *q, const size_t *idx, size_t n, bool hedge,
                         struct bq_plan *ret, size_t *ret_lost)
{
    struct strmap *groups = strmap_new();
    size_t cand[BROKER_MAX_CANDS], lost = 0;
    char key[BROKER_MAX_CANDS * 21 + 1];
    bool ok = true;

    memset(ret, 0, sizeof(*ret));
    for (size_t i = 0; i < n && ok; i++) {
        size_t k = bq_untried(q, idx[i], cand), used = 0;
        uintptr_t chosen;

        if (k == 0) {
            lost++;
            ok = !hedge;
            continue;
        }
        qsort(cand, k, sizeof(cand[0]), bq_cmp_size);
        for (size_t c = 0; c < k; c++)
            used += (size_t)snprintf(key + used, sizeof(key) - used, "%zu,", cand[c]);
        chosen = (uintptr_t)strmap_get(groups, key);
        if (chosen == 0) {
            size_t slot = bq_choose(q->b, cand, k, hedge);

            if (slot == SIZE_MAX) {
                ok = false;
                continue;
            }
            chosen = slot + 1;
            strmap_put(groups, key, (void *)chosen);
        }
        {
            size_t bkt = bq_plan_bucket(ret, chosen - 1, n);

            ret->idx[bkt][ret->n_idx[bkt]++] = idx[i];
        }
    }
    strmap_free(groups);
    if (ret_lost != NULL)
        *ret_lost = lost;
    if (!ok)
        bq_plan_done(ret);
    return ok;
}

static struct bq_cover *bq_cover_new(struct bq *q, const size_t *idx, size_t n)
{
    struct bq_cover *cv = xcalloc(1, sizeof(*cv));

    cv->q = q;
    cv->n = n;
    cv->idx = xcalloc(n, sizeof(*cv->idx));
    memcpy(cv->idx, idx, n * sizeof(*idx));
    if (q->n_covers == q->cap_covers) {
        q->cap_covers = q->cap_covers * 2 + 8;
        q->covers = xreallocarray(q->covers, q->cap_covers, sizeof(*q->covers));
    }
    q->covers[q->n_covers++] = cv;
    q->active++;
    return cv;
}

/*
 * When to hedge a cover sent to slot. "The Tail at Scale" hedges at the
 * 95th percentile of the class of requests, not of the node asked: a slow
 * node's own p95 is long, and a request sent to it would wait that long
 * for its hedge. So: the sooner of the node's recent p95 and, for the
 * cover's segment whose other replicas are slowest, the best p95 among
 * them (as before when some segment has no other replica known). 0: none.
 */
static uint64_t bq_cover_hedge_delay(const struct bq_cover *cv, size_t slot)
{
    struct broker *b = cv->q->b;
    uint64_t own = replica_hedge_delay_us(b->rep, slot), worst = 0;

    for (size_t i = 0; i < cv->n; i++) {
        const struct bq_seg *sg = &cv->q->segs[cv->idx[i]];
        uint64_t best = 0;

        for (size_t c = 0; c < sg->n_cand; c++) {
            uint64_t d;

            if (sg->cand[c] == slot || !broker_node_usable(b, sg->cand[c]))
                continue;
            d = replica_hedge_delay_us(b->rep, sg->cand[c]);
            if (d != 0 && (best == 0 || d < best))
                best = d;
        }
        if (best == 0)
            return own;
        if (best > worst)
            worst = best;
    }
    return own != 0 && own < worst ? own : worst;
}

/* Arms the hedge of a cover whose primary went to slot (bq_cover_hedge_delay). */
static void bq_cover_arm_hedge(struct bq_cover *cv, size_t slot)
{
    struct broker *b = cv->q->b;
    uint64_t delay;
    struct timeval tv;

    if (b->cfg.round_robin || b->cfg.hedge_percent == 0)
        return;
    delay = bq_cover_hedge_delay(cv, slot);
    if (delay == 0)
        return;
    cv->hedge_ev = evtimer_new(b->base, bq_cover_hedge_cb, cv);
    tv.tv_sec = (time_t)(delay / 1000000);
    tv.tv_usec = (suseconds_t)(delay % 1000000);
    evtimer_add(cv->hedge_ev, &tv);
}

/*
 * Sends segments idx[0..n) as new covers, one per node chosen (chunks of
 * WIRE_QUERY_MAX_SEGMENTS), kind BK_PRIMARY or BK_RETRY. Segments with no
 * replica left are missing (they stay uncovered in the merge).
 */
static void bq_dispatch(struct bq *q, const size_t *idx, size_t n, enum bsub_kind kind)
{
    struct bq_plan p;

    (void)bq_plan_make(q, idx, n, false, &p, NULL);
    for (size_t i = 0; i < p.n_slots; i++) {
        for (size_t at = 0; at < p.n_idx[i]; at += WIRE_QUERY_MAX_SEGMENTS) {
            size_t m = p.n_idx[i] - at;
            struct bq_cover *cv;
            struct bsub *s;

            if (m > WIRE_QUERY_MAX_SEGMENTS)
                m = WIRE_QUERY_MAX_SEGMENTS;
            qsort(p.idx[i] + at, m, sizeof(size_t), bq_cmp_size);
            cv = bq_cover_new(q, p.idx[i] + at, m);
            if (!bsub_send(q, cv, p.slot[i], cv->idx, cv->n, kind, &s)) {
                snprintf(q->why, sizeof(q->why), "node %.40s: cannot send to %.60s",
                         bmap_node_at(q->b->map, p.slot[i])->id, q->b->nodes[p.slot[i]].addr);
                cv->done = true;
                q->active--;
                continue;
            }
            cv->primary = s;
            bq_cover_arm_hedge(cv, p.slot[i]);
        }
    }
    bq_plan_done(&p);
}

/* Both the primary and the hedge of cv failed: its segments go to replicas not tried yet. */
static void bq_cover_retry(struct bq_cover *cv)
{
    struct bq *q = cv->q;

    bq_cover_close(cv);
    if (!q->answered)
        bq_dispatch(q, cv->idx, cv->n, BK_RETRY);
}

static void bq_cover_hedge_cb(evutil_socket_t fd, short what, void *arg)
{
    struct bq_cover *cv = arg;
    struct bq *q = cv->q;
    struct broker *b = q->b;
    struct bq_plan p;
    size_t k = 0;

    (void)fd;
    (void)what;
    if (cv->done || cv->primary == NULL || cv->hedged || q->answered)
        return;
    if (!bq_plan_make(q, cv->idx, cv->n, true, &p, NULL))
        return; /* no other replica for some segment: nothing to hedge with */
    for (size_t i = 0; i < p.n_slots; i++)
        k += (p.n_idx[i] + WIRE_QUERY_MAX_SEGMENTS - 1) / WIRE_QUERY_MAX_SEGMENTS;
    if (!replica_hedge_take_n(b->rep, (unsigned)k)) {
        b->hedge_outcomes[HO_DENIED]++;
        bq_plan_done(&p);
        return;
    }
    cv->hedged = true;
    cv->pieces = xcalloc(k, sizeof(*cv->pieces));
    for (size_t i = 0; i < p.n_slots; i++) {
        for (size_t at = 0; at < p.n_idx[i]; at += WIRE_QUERY_MAX_SEGMENTS) {
            size_t m = p.n_idx[i] - at;
            struct bsub *s = NULL;

            if (m > WIRE_QUERY_MAX_SEGMENTS)
                m = WIRE_QUERY_MAX_SEGMENTS;
            qsort(p.idx[i] + at, m, sizeof(size_t), bq_cmp_size);
            if (!bsub_send(q, cv, p.slot[i], p.idx[i] + at, m, BK_HEDGE, &s)) {
                cv->hedge_failed = true;
                continue;
            }
            cv->pieces[cv->n_pieces].s = s;
            cv->pieces[cv->n_pieces].n = m;
            cv->pieces[cv->n_pieces].idx = xcalloc(m, sizeof(size_t));
            memcpy(cv->pieces[cv->n_pieces].idx, p.idx[i] + at, m * sizeof(size_t));
            cv->n_pieces++;
        }
    }
    bq_plan_done(&p);
    if (cv->n_pieces == 0)
        cv->hedge_failed = true;
}

/* A sub-request of cv failed (why); the cover waits for its other attempt, or retries. */
static void bq_sub_failed(struct bq_cover *cv, struct bsub *s, enum bsub_fail why,
                          const char *detail)
{
    struct bq *q = cv->q;
    const struct bmap_node *mn = bmap_node_at(q->b->map, s->slot);

    q->b->fails[why]++;
    snprintf(q->why, sizeof(q->why), "last failure: node %.40s: %.90s",
             mn != NULL ? mn->id : "?", detail);
    if (s == cv->primary) {
        cv->primary = NULL;
        cv->primary_failed = true;
    } else {
        for (size_t i = 0; i < cv->n_pieces; i++)
            if (cv->pieces[i].s == s)
                cv->pieces[i].s = NULL;
        if (!cv->hedge_failed)
            q->b->hedge_outcomes[HO_FAILED]++;
        cv->hedge_failed = true;
    }
    bsub_orphan(s);
    if (cv->primary_failed && (!cv->hedged || cv->hedge_failed)) {
        bq_cover_retry(cv);
        bq_check(q);
    }
}

/*
 * A node's answer r for sub-request s of cv: merged if s is the primary, or
 * the last piece of a hedge whose every piece answered first. False when
 * the merge refused it (the column's type differs between segments).
 */
static bool bq_sub_ok(struct bq_cover *cv, struct bsub *s, const struct wire_query_response *r)
{
    struct bq *q = cv->q;

    if (s == cv->primary) {
        cv->primary = NULL;
        if (merge_add(q->merge, r, cv->idx, cv->n) == -EINVAL)
            return false;
        if (cv->hedged && !cv->hedge_failed)
            q->b->hedge_outcomes[HO_LOST]++;
        bq_cover_close(cv);
        bq_check(q);
        return true;
    }
    for (size_t i = 0; i < cv->n_pieces; i++) {
        if (cv->pieces[i].s == s) {
            cv->pieces[i].s = NULL;
            cv->pieces[i].answer = *r;
            cv->pieces_ok++;
        }
    }
    bsub_orphan(s);
    if (cv->hedge_failed || cv->pieces_ok < cv->n_pieces)
        return true;
    /* Every piece answered before the primary: the hedge won. */
    for (size_t i = 0; i < cv->n_pieces; i++)
        if (merge_add(q->merge, &cv->pieces[i].answer, cv->pieces[i].idx, cv->pieces[i].n) ==
            -EINVAL)
            return false;
    q->b->hedge_outcomes[HO_WON]++;
    bq_cover_close(cv);
    bq_check(q);
    return true;
}

/* The outcome of a failed answer, from its status and headers. */
static enum bsub_fail bsub_classify(int status, const struct http_client_reply *reply,
                                    uint64_t *ret_retry_us, char *detail, size_t len)
{
    struct wire_error err;

    *ret_retry_us = 0;
    if (status < 0) {
        snprintf(detail, len, "%s", strerror(-status));
        return status == -ETIMEDOUT ? BF_TIMEOUT : BF_CONNECT;
    }
    memset(&err, 0, sizeof(err));
    if (reply != NULL && wire_error_decode(reply->body, reply->body_len, &err) == 0)
        snprintf(detail, len, "HTTP %d %.31s: %.180s", status, err.code, err.message);
    else
        snprintf(detail, len, "HTTP %d", status);
    if (reply != NULL && reply->retry_after_s > 0)
        *ret_retry_us = (uint64_t)reply->retry_after_s * 1000000;
    if (status == 429 || status == 503)
        return BF_OVERLOAD;
    if (status == 504)
        return BF_TIMEOUT;
    if (status == 404)
        return BF_NOT_HELD;
    return BF_FAILED;
}

static void bsub_free(struct bsub *s)
{
    if (s->timeout_ev != NULL)
        event_free(s->timeout_ev);
    free(s->idx);
    free(s);
}

/* No answer within the attempt timeout: a failure now, whatever comes later. */
static void bsub_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    struct bsub *s = arg;
    struct broker *b = s->b;
    char detail[64];

    (void)fd;
    (void)what;
    if (!s->accounted) {
        s->accounted = true;
        replica_on_failure(b->rep, s->slot, REPLICA_FAIL_TIMEOUT, broker_now_us(), 0);
    }
    if (s->cv != NULL) {
        snprintf(detail, sizeof(detail), "no answer within %" PRIu64 " ms",
                 (broker_now_us() - s->sent_us) / 1000);
        bq_sub_failed(s->cv, s, BF_TIMEOUT, detail);
    }
}

static void bsub_answer_cb(int status, const struct http_client_reply *reply, void *arg)
{
    struct bsub *s = arg;
    struct broker *b = s->b;
    uint64_t now = broker_now_us(), retry_us;
    struct wire_query_response r;
    struct wire_error err;
    enum bsub_fail why;
    char detail[256];

    if (status == -ECANCELED) { /* the broker is going away */
        bsub_free(s);
        return;
    }
    if (status == 200 && wire_query_response_decode(reply->body, reply->body_len, &r, &err) == 0) {
        if (!s->accounted)
            replica_on_answer(b->rep, s->slot, now - s->sent_us,
                              r.service_us != 0 ? r.service_us : now - s->sent_us);
        s->accounted = true;
        if (s->cv != NULL && !bq_sub_ok(s->cv, s, &r)) {
            struct bq *q = s->cv->q;

            bq_error(q, 400, "invalid_field", BQ_BAD_REQUEST,
                     "column: \"%s\" is int64 in some segments of table \"%s\" and float64 in "
                     "others",
                     q->ask.column, q->ask.table);
        }
        bsub_free(s);
        return;
    }
    if (status == 200)
        snprintf(detail, sizeof(detail), "an answer that is not a QueryResponse: %.180s",
                 err.message);
    if (status == 200) {
        why = BF_FAILED;
        retry_us = 0;
    } else {
        why = bsub_classify(status, reply, &retry_us, detail, sizeof(detail));
    }
    if (!s->accounted) {
        s->accounted = true;
        if (why == BF_NOT_HELD)
            replica_on_cancel(b->rep, s->slot); /* a stale map, not a slow node */
        else
            replica_on_failure(b->rep, s->slot,
                               why == BF_OVERLOAD  ? REPLICA_FAIL_OVERLOAD
                               : why == BF_TIMEOUT ? REPLICA_FAIL_TIMEOUT
                                                   : REPLICA_FAIL_CONNECT,
                               now, retry_us);
    }
    if (s->cv != NULL) {
        /* A query the node found malformed is the asker's error, not the node's. */
        if (status == 400) {
            struct bq *q = s->cv->q;
            struct wire_error e;

            memset(&e, 0, sizeof(e));
            (void)wire_error_decode(reply->body, reply->body_len, &e);
            bq_error(q, 400, e.code[0] ? e.code : "invalid_field", BQ_BAD_REQUEST, "%s",
                     e.message[0] ? e.message : detail);
        } else {
            bq_sub_failed(s->cv, s, why, detail);
        }
    }
    bsub_free(s);
}

static void bq_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    struct bq *q = arg;

    (void)fd;
    (void)what;
    if (!q->answered)
        bq_answer(q, true);
}

static void bq_free(struct bq *q)
{
    struct broker *b = q->b;

    for (size_t i = 0; i < q->n_covers; i++) {
        struct bq_cover *cv = q->covers[i];

        if (!cv->done)
            bq_cover_close(cv);
        if (cv->hedge_ev != NULL)
            event_free(cv->hedge_ev);
        for (size_t j = 0; j < cv->n_pieces; j++)
            free(cv->pieces[j].idx);
        free(cv->pieces);
        free(cv->idx);
        free(cv);
    }
    free(q->covers);
    if (q->deadline_ev != NULL)
        event_free(q->deadline_ev);
    if (q->prev != NULL)
        q->prev->next = q->next;
    else
        b->queries = q->next;
    if (q->next != NULL)
        q->next->prev = q->prev;
    b->n_queries--;
    merge_free(q->merge);
    free(q->segs);
    free(q->asked);
    free(q);
}

/* POST /v1/query: a table query. */
static void broker_query_cb(struct evhttp_request *req, const char *rest, void *arg)
{
    struct broker *b = arg;
    const struct bmap_seg *const *segs;
    struct wire_query_request ask;
    struct wire_error err;
    const void *body;
    size_t len, n, *all;
    uint64_t timeout_ms;
    struct timeval tv;
    struct bq *q;

    (void)rest;
    if (pbhttp_take_body(req, &body, &len) != 0 ||
        pbhttp_decoded(req, wire_table_query_decode(body, len, &ask, &err), &err) != 0) {
        b->outcomes[BQ_BAD_REQUEST]++;
        return;
    }
    if (b->n_queries >= BROKER_MAX_QUERIES) {
        b->outcomes[BQ_OVERLOADED]++;
        evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "1");
        pbhttp_reply_error(req, 429, "overloaded", "too many queries in flight at this broker");
        return;
    }
    if (!bmap_ready(b->map)) {
        b->outcomes[BQ_UNAVAILABLE]++;
        pbhttp_reply_error(req, 503, "not_ready",
                           "no placement map from the coordinator yet (GET /v1/placements)");
        return;
    }
    n = bmap_table(b->map, ask.table, &segs);
    if (n == 0) {
        char msg[256];

        b->outcomes[BQ_NOT_FOUND]++;
        snprintf(msg, sizeof(msg),
                 "table: \"%.128s\" has no segments in the placement map (sluice-coord tables)",
                 ask.table);
        pbhttp_reply_error(req, 404, "not_found", msg);
        return;
    }
    q = xcalloc(1, sizeof(*q));
    q->b = b;
    q->req = req;
    q->ask = ask;
    q->start_us = broker_now_us();
    timeout_ms = ask.timeout_ms != 0 ? ask.timeout_ms : b->cfg.query_timeout_ms;
    if (timeout_ms > BROKER_MAX_TIMEOUT)
        timeout_ms = BROKER_MAX_TIMEOUT;
    q->deadline_us = q->start_us + timeout_ms * 1000;
    q->version = bmap_version(b->map);
    q->n = n;
    q->segs = xcalloc(n, sizeof(*q->segs));
    all = xcalloc(n, sizeof(*all));
    for (size_t i = 0; i < n; i++) {
        struct bq_seg *sg = &q->segs[i];

        snprintf(sg->id, sizeof(sg->id), "%s", segs[i]->id);
        sg->n_cand = segs[i]->n_slots < BROKER_MAX_CANDS ? segs[i]->n_slots : BROKER_MAX_CANDS;
        memcpy(sg->cand, segs[i]->slots, sg->n_cand * sizeof(sg->cand[0]));
        all[i] = i;
    }
    q->n_asked_slots = b->n_nodes;
    q->asked = xcalloc(b->n_nodes ? b->n_nodes : 1, sizeof(*q->asked));
    q->merge = merge_new(ask.aggregate, n);
    q->next = b->queries;
    if (b->queries != NULL)
        b->queries->prev = q;
    b->queries = q;
    b->n_queries++;
    q->deadline_ev = evtimer_new(b->base, bq_deadline_cb, q);
    tv.tv_sec = (time_t)(timeout_ms / 1000);
    tv.tv_usec = (suseconds_t)(timeout_ms % 1000) * 1000;
    evtimer_add(q->deadline_ev, &tv);
    bq_dispatch(q, all, n, BK_PRIMARY);
    free(all);
    /* Nothing to ask (no segment has a LOADED replica): answered now. */
    bq_check(q);
}

/* ---- following the placement map --------------------------------------------- */

static void broker_poll_cb(evutil_socket_t fd, short what, void *arg);

static void broker_poll_later(struct broker *b, uint64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};

    evtimer_add(b->poll_ev, &tv);
}

static void broker_poll_failed(struct broker *b, const char *what)
{
    b->polls_failed++;
    if (!b->poll_failing)
        log_warn("placements_failed", "coordinator=%s error=%s", coordclient_addr(b->coord), log_q(what));
    b->poll_failing = true;
    broker_poll_later(b, b->cfg.poll_ms);
}

static void broker_poll_apply(struct broker *b, struct wire_placement_map *pm);

static void broker_poll_answer_cb(int status, const struct http_client_reply *reply, void *arg)
{
    struct broker *b = arg;
    struct wire_placement_map pm;
    struct wire_error err;
    char what[300];

    if (status == -ECANCELED)
        return;
    /* A standby's 503 or no answer: the next poll goes to the leader or the next address. */
    (void)coordclient_answer(b->coord, status, reply);
    if (status != 200) {
        if (status < 0)
            snprintf(what, sizeof(what), "%s", strerror(-status));
        else
            snprintf(what, sizeof(what), "HTTP %d", status);
        broker_poll_failed(b, what);
        return;
    }
    if (wire_placement_map_decode(reply->body, reply->body_len, &pm, &err) < 0) {
        broker_poll_failed(b, err.message);
        return;
    }
    broker_poll_apply(b, &pm);
}

/* One answer of the placement map, applied (and freed); the next poll scheduled. */
static void broker_poll_apply(struct broker *b, struct wire_placement_map *pmp)
{
    struct wire_placement_map pm = *pmp;

    if (b->poll_failing)
        log_info("placements_ok", "coordinator=%s", coordclient_addr(b->coord));
    b->poll_failing = false;
    if (pm.full && (!b->refreshing || pm.epoch != b->refresh_epoch)) {
        /* The coordinator sends everything (restart, too far behind): start over. */
        bmap_full_begin(b->map);
        b->refreshing = true;
        b->refresh_epoch = pm.epoch;
    }
    if (!pm.full && b->refreshing) { /* cannot be: a full refresh asks with since=0 */
        wire_placement_map_done(&pm);
        broker_poll_later(b, 0);
        return;
    }
    if (bmap_apply(b->map, &pm) == -ESTALE) {
        b->refreshing = false;
        bmap_full_begin(b->map);
        b->refreshing = true;
        b->refresh_epoch = 0;
        b->after[0] = '\0';
        wire_placement_map_done(&pm);
        broker_poll_later(b, 0);
        return;
    }
    if (pm.full) {
        b->polls_full++;
        if (pm.next_after[0] != '\0') {
            snprintf(b->after, sizeof(b->after), "%s", pm.next_after);
            broker_sync_nodes(b);
            wire_placement_map_done(&pm);
            broker_poll_later(b, 0);
            return;
        }
        (void)bmap_full_end(b->map);
        b->refreshing = false;
        b->after[0] = '\0';
        log_info("placements_full", "epoch=%016" PRIx64 " version=%" PRIu64 " segments=%zu",
                 bmap_epoch(b->map), bmap_version(b->map), bmap_count(b->map));
        broker_sync_nodes(b);
        wire_placement_map_done(&pm);
        broker_poll_later(b, 0); /* the changes made while the pages came */
        return;
    }
    b->polls_delta++;
    broker_sync_nodes(b);
    wire_placement_map_done(&pm);
    broker_poll_later(b, b->cfg.poll_ms);
}

static void broker_poll_cb(evutil_socket_t fd, short what, void *arg)
{
    struct broker *b = arg;
    char path[WIRE_ID_MAX + 96];
    int r;

    (void)fd;
    (void)what;
    if (b->refreshing || !bmap_ready(b->map)) {
        if (!b->refreshing) {
            bmap_full_begin(b->map);
            b->refreshing = true;
            b->refresh_epoch = 0;
            b->after[0] = '\0';
        }
        if (b->after[0] != '\0')
            snprintf(path, sizeof(path), "/v1/placements?since=0&after=%s", b->after);
        else
            snprintf(path, sizeof(path), "/v1/placements?since=0");
    } else {
        snprintf(path, sizeof(path), "/v1/placements?since=%" PRIu64 "&epoch=%016" PRIx64,
                 bmap_version(b->map), bmap_epoch(b->map));
    }
    if (b->cfg.placements != NULL) {
        /* Embedded: the coordinator's own map, by a call, not HTTP to itself. */
        struct wire_placement_map pm;
        bool full = b->refreshing || !bmap_ready(b->map);

        memset(&pm, 0, sizeof(pm));
        (void)b->cfg.placements(b->cfg.placements_arg, full ? 0 : bmap_version(b->map),
                                full ? 0 : bmap_epoch(b->map), full ? b->after : "", &pm);
        broker_poll_apply(b, &pm);
        return;
    }
    r = http_client_request(coordclient_client(b->coord), EVHTTP_REQ_GET, path, NULL, NULL, 0,
                            broker_poll_answer_cb,
                            b);
    if (r < 0)
        broker_poll_failed(b, strerror(-r));
}

/* ---- metrics and health --------------------------------------------------------- */

static void broker_healthz_cb(struct evhttp_request *req, const char *rest, void *arg)
{
    (void)rest;
    (void)arg;
    http_reply_text(req, 200, "ok\n");
}

void broker_metrics(const struct broker *b, struct metrics_buf *m)
{
    static const double fanout_bounds[] = {1, 2, 3, 4, 6, 8, 12, 16, 32, 64, 128};

    metrics_family(m, "sluice_broker_queries_total", "counter",
                   "Table queries answered, by outcome.");
    for (int i = 0; i < BQ_OUTCOME_COUNT_; i++)
        metrics_sample_u64(m, "sluice_broker_queries_total", b->outcomes[i],
                           (const char *const[]){"outcome", bq_outcome_names[i], NULL});
    metrics_histogram(m, "sluice_broker_query_duration_seconds",
                      "Table query latency, arrival to answer.", &b->latency, 1e-9, NULL);
    metrics_histogram_bounds(m, "sluice_broker_fanout_nodes", "Distinct nodes asked per query.",
                             &b->fanout, 1, fanout_bounds,
                             sizeof(fanout_bounds) / sizeof(fanout_bounds[0]), NULL);
    metrics_family(m, "sluice_broker_subrequests_total", "counter",
                   "Requests sent to nodes: primary, retry (after a failure), hedge.");
    for (int i = 0; i < BK_COUNT_; i++)
        metrics_sample_u64(m, "sluice_broker_subrequests_total", b->kinds[i],
                           (const char *const[]){"kind", bsub_kind_names[i], NULL});
    metrics_family(m, "sluice_broker_retries_total", "counter",
                   "Requests to nodes that failed, by reason; their segments go to another "
                   "replica.");
    for (int i = 0; i < BF_COUNT_; i++)
        metrics_sample_u64(m, "sluice_broker_retries_total", b->fails[i],
                           (const char *const[]){"reason", bsub_fail_names[i], NULL});
    metrics_family(m, "sluice_broker_hedges_total", "counter",
                   "Hedges after a node's recent p95: won, lost, failed, or denied (budget).");
    for (int i = 0; i < HO_COUNT_; i++)
        metrics_sample_u64(m, "sluice_broker_hedges_total", b->hedge_outcomes[i],
                           (const char *const[]){"outcome", hedge_outcome_names[i], NULL});
    metrics_family(m, "sluice_broker_replica_choices_total", "counter",
                   "Requests sent to each node (replica choices, hedges and retries included).");
    for (size_t i = 0; i < b->n_nodes; i++) {
        const struct bmap_node *mn = bmap_node_at(b->map, i);

        if (b->nodes[i].choices > 0 || (mn != NULL && mn->state[0] != '\0'))
            metrics_sample_u64(m, "sluice_broker_replica_choices_total", b->nodes[i].choices,
                               (const char *const[]){"node", mn->id, NULL});
    }
    metrics_one_u64(m, "sluice_broker_queries_in_flight", "gauge", "Table queries in flight.",
                    b->n_queries);
    metrics_one_u64(m, "sluice_broker_placement_version", "gauge",
                    "Version of the placement map the broker holds.", bmap_version(b->map));
    metrics_one_u64(m, "sluice_broker_placement_segments", "gauge",
                    "Segments in the broker's placement map.", bmap_count(b->map));
    metrics_family(m, "sluice_broker_placement_polls_total", "counter",
                   "Polls of GET /v1/placements: delta, full (pages), failed.");
    metrics_sample_u64(m, "sluice_broker_placement_polls_total", b->polls_delta,
                       (const char *const[]){"outcome", "delta", NULL});
    metrics_sample_u64(m, "sluice_broker_placement_polls_total", b->polls_full,
                       (const char *const[]){"outcome", "full", NULL});
    metrics_sample_u64(m, "sluice_broker_placement_polls_total", b->polls_failed,
                       (const char *const[]){"outcome", "failed", NULL});
}

static void broker_metrics_cb(struct evhttp_request *req, const char *rest, void *arg)
{
    struct broker *b = arg;
    struct metrics_buf *m = metrics_buf_new();
    struct http_server_stats hs;

    (void)rest;
    http_server_get_stats(b->http, &hs);
    broker_metrics(b, m);
    metrics_one_u64(m, "sluice_http_connections_live", "gauge", "Open HTTP connections.",
                    hs.connections_live);
    metrics_process(m, "/proc");
    http_reply(req, 200, "text/plain; version=0.0.4", metrics_buf_data(m), metrics_buf_len(m));
    metrics_buf_free(m);
}

/* ---- start and stop ------------------------------------------------------------ */

struct broker *broker_new(struct event_base *base, const struct broker_config *cfg, char *err,
                          size_t err_len)
{
    struct broker *b = xcalloc(1, sizeof(*b));
    struct replica_config rcfg;
    struct coordlist *l = NULL;
    int r;

    b->base = base;
    b->cfg = *cfg;
    b->token = cfg->token != NULL && cfg->token[0] != '\0' ? xstrdup(cfg->token) : NULL;
    b->cfg.token = b->token;
    b->cfg.listen = NULL;
    if (cfg->placements == NULL) {
        if (cfg->coordinator == NULL) {
            snprintf(err, err_len, "--coordinator: required");
            goto fail;
        }
        if (coordlist_new(cfg->coordinator, &l, err, err_len) < 0)
            goto fail;
    }
    b->coordinator = xstrdup(cfg->placements != NULL ? "in-process" : cfg->coordinator);
    b->cfg.coordinator = b->coordinator;
    if (b->cfg.conns_per_node == 0)
        b->cfg.conns_per_node = 1;
    if (b->cfg.poll_ms == 0)
        b->cfg.poll_ms = 250;
    memset(&rcfg, 0, sizeof(rcfg));
    rcfg.clients = cfg->brokers;
    rcfg.penalty_us = (cfg->penalty_ms != 0 ? cfg->penalty_ms : BROKER_PENALTY_MS) * 1000;
    rcfg.hedge_percent = cfg->round_robin ? 0 : cfg->hedge_percent;
    b->rep = replica_new(1, &rcfg);
    b->map = bmap_new();
    if (cfg->placements == NULL) {
        b->coord = coordclient_new(base, l, 10000, b->token);
        if (b->coord == NULL) {
            snprintf(err, err_len, "--coordinator %s: not a usable address", b->coordinator);
            goto fail;
        }
    }
    b->poll_ev = evtimer_new(base, broker_poll_cb, b);
    if (cfg->server != NULL) {
        /* Embedded in the coordinator: its server, its /metrics and /healthz. */
        b->http = cfg->server;
        if (http_server_route(b->http, HTTP_POST, "/v1/query", false, broker_query_cb, b) < 0) {
            snprintf(err, err_len, "POST /v1/query is already routed on this server");
            b->http = NULL;
            goto fail;
        }
        broker_poll_later(b, 0);
        return b;
    }
    b->own_http = true;
    b->http = http_server_new(base, &cfg->limits);
    http_server_set_name(b->http, "sluice-broker/" SLUICE_VERSION);
    if (b->token != NULL)
        http_server_set_token(b->http, b->token);
    r = http_server_bind(b->http, cfg->listen, b->bound, sizeof(b->bound));
    if (r < 0) {
        snprintf(err, err_len, "--listen %s: %s", cfg->listen, strerror(-r));
        goto fail;
    }
    http_server_route(b->http, HTTP_POST, "/v1/query", false, broker_query_cb, b);
    http_server_route_public(b->http, HTTP_GET, "/metrics", false, broker_metrics_cb, b);
    http_server_route_public(b->http, HTTP_GET, "/healthz", false, broker_healthz_cb, b);
    broker_poll_later(b, 0);
    return b;
fail:
    broker_free(b);
    return NULL;
}

const char *const broker_choices[] = {"adaptive", "roundrobin", NULL};

void broker_flags_apply(const struct broker_flags *f, struct broker_config *cfg)
{
    cfg->query_timeout_ms = f->query_timeout;
    cfg->attempt_timeout_ms = f->attempt_timeout;
    cfg->penalty_ms = f->penalty;
    cfg->hedge_percent = (unsigned)f->hedge;
    cfg->conns_per_node = (unsigned)f->conns;
    cfg->brokers = (unsigned)f->brokers;
    cfg->round_robin = f->choice != NULL && strcmp(f->choice, "roundrobin") == 0;
}

const char *broker_bound(const struct broker *b)
{
    return b->bound;
}

void broker_free(struct broker *b)
{
    if (b == NULL)
        return;
    /*
     * Queries first (their requests are dropped with the server: the
     * embedded broker's owner freed its server already), then the clients.
     */
    if (b->own_http)
        http_server_free(b->http);
    while (b->queries != NULL)
        bq_free(b->queries);
    for (size_t i = 0; i < b->n_nodes; i++)
        broker_node_clients_free(&b->nodes[i], b->cfg.conns_per_node);
    free(b->nodes);
    coordclient_free(b->coord);
    if (b->poll_ev != NULL)
        event_free(b->poll_ev);
    bmap_free(b->map);
    replica_free(b->rep);
    free(b->token);
    free(b->coordinator);
    free(b);
}
