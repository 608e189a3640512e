/*
 * report: a persistent timer that sends one NodeReport at a time over a
 * keep-alive client, and the node's side of delta reports (report_state,
 * pure). Expected load: one small request per second; a report of N
 * segments is O(N) to build (a hash per copy), and O(changes) to send.
 */
#include "report.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/random.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "clock.h"
#include "http.h"
#include "coordlist.h"
#include "log.h"
#include "repset.h"
#include "strmap.h"
#include "xmalloc.h"

/* A node whose reports get 401 says so at most this often. */
#define REPORTER_401_LOG_MS 30000

struct reporter {
    struct event_base *base;
    struct reporter_source src;
    struct coordclient *cc; /* to the leader of the --coordinator list */
    struct event *timer, *first;
    char *node_id, *advertise;
    bool claim;
    bool in_flight;
    bool was_failing;
    uint64_t unauthorized_logged_ms; /* monotonic ms of the last report_unauthorized line */
    uint64_t unauthorized_unlogged;  /* 401s since that line */
    reporter_conflict_cb conflict;
    struct epoch_fence *fence; /* borrowed; NULL: no fencing */
    void *arg;
    struct reporter_stats stats;
    struct report_state *rs;
    uint64_t sent_seq; /* the report in flight */
    /* reporter_soon(): the coalescing timer, an ask made while a report was in flight. */
    struct event *soon_ev;
    bool soon_armed, soon_after_answer;
    uint64_t last_sent_ms; /* monotonic ms of the last report sent */
    struct timeval interval; /* of the heartbeat timer, restarted by every report */
};

/* ---- delta reports, the node's side (pure) --------------------------------- */

struct report_state {
    uint64_t incarnation;
    uint64_t seq;          /* the last report built */
    uint64_t acked_seq;    /* the base: 0 none */
    struct repset *acked;  /* the set report acked_seq carried, as rebuilt */
    bool want_full;
    /* The last report built, until it is answered: what it carried. */
    uint64_t pending_seq;
    bool pending_full;
    struct wire_segment_status *segs;
    size_t n_segs;
    char (*removed)[WIRE_ID_MAX + 1];
    size_t n_removed;
    size_t cap_segs; /* of segs, journal mode (repset_export) */
    /*
     * Journal mode (report_build_changes()): what changed since the base,
     * as the source said it, instead of a diff against an acked copy of the
     * set (which journal mode does not keep): carry holds each changed
     * copy's latest status, gone each id that went since (id -> s).
     */
    bool journal;
    struct repset *carry;
    struct strmap *gone;
    struct report_state_stats stats;
};

struct report_state *report_state_new(uint64_t incarnation)
{
    struct report_state *s = xcalloc(1, sizeof(*s));

    /* Any value but 0 (an older node's); a restarted process must not repeat it. */
    while (incarnation == 0)
        if (getrandom(&incarnation, sizeof(incarnation), 0) != sizeof(incarnation))
            incarnation = clock_wall_ms() ^ (clock_mono_ns() << 20);
    s->incarnation = incarnation;
    s->acked = repset_new();
    return s;
}

/* Journal mode: forgets what the base already has (after a whole report, or an acknowledged delta). */
static void report_carry_clear(struct report_state *s)
{
    if (s->carry != NULL)
        repset_clear(s->carry);
    if (s->gone != NULL && strmap_count(s->gone) > 0) {
        strmap_free(s->gone);
        s->gone = strmap_new();
    }
}

static void report_pending_clear(struct report_state *s)
{
    free(s->segs);
    free(s->removed);
    s->segs = NULL;
    s->removed = NULL;
    s->n_segs = s->n_removed = s->cap_segs = 0;
    s->pending_seq = 0;
}

void report_state_free(struct report_state *s)
{
    if (s == NULL)
        return;
    report_pending_clear(s);
    repset_free(s->acked);
    repset_free(s->carry);
    strmap_free(s->gone);
    free(s);
}

uint64_t report_state_incarnation(const struct report_state *s)
{
    return s->incarnation;
}

/* The pending report into rep (its digest already set), without URIs: the coordinator knows them. */
static uint64_t report_finish(struct report_state *s, struct wire_node_report *rep)
{
    for (size_t i = 0; i < s->n_segs; i++)
        s->segs[i].uri = NULL;
    rep->incarnation = s->incarnation;
    rep->seq = s->seq;
    rep->delta = !s->pending_full;
    rep->base_seq = s->pending_full ? 0 : s->acked_seq;
    rep->segments = s->segs;
    rep->n_segments = s->n_segs;
    rep->removed = s->removed;
    rep->n_removed = s->n_removed;
    return s->seq;
}

uint64_t report_build(struct report_state *s, const struct wire_segment_status *cur, size_t n,
                      struct wire_node_report *rep)
{
    report_pending_clear(s);
    s->pending_seq = ++s->seq;
    /* In journal mode there is no acked copy to diff against: this is the whole set. */
    s->pending_full = s->acked_seq == 0 || s->want_full || s->journal;
    if (s->pending_full) {
        report_carry_clear(s); /* the whole set says it all */
        s->segs = xcalloc(n > 0 ? n : 1, sizeof(*s->segs));
        if (n > 0)
            memcpy(s->segs, cur, n * sizeof(*cur));
        s->n_segs = n;
        s->stats.full++;
    } else {
        struct repset_diff d;

        repset_diff(s->acked, cur, n, &d);
        s->segs = xcalloc(d.n_changed > 0 ? d.n_changed : 1, sizeof(*s->segs));
        for (size_t i = 0; i < d.n_changed; i++)
            s->segs[i] = cur[d.changed[i]];
        s->n_segs = d.n_changed;
        s->removed = d.removed;
        s->n_removed = d.n_removed;
        d.removed = NULL;
        repset_diff_done(&d);
        s->stats.delta++;
    }
    repset_digest_of(cur, n, &rep->set_count, &rep->set_hash);
    return report_finish(s, rep);
}

bool report_wants_full(const struct report_state *s)
{
    return s->acked_seq == 0 || s->want_full;
}

/* Collects gone's ids into the pending report's removed list. */
static int report_gone_one(const char *id, void *value, void *arg)
{
    struct report_state *s = arg;

    snprintf(s->removed[s->n_removed++], sizeof(s->removed[0]), "%s", id);
    return 0;
}

uint64_t report_build_changes(struct report_state *s, const struct wire_segment_status *changed,
                              size_t n_changed, const char (*removed)[WIRE_ID_MAX + 1],
                              size_t n_removed, uint64_t set_count, uint64_t set_hash,
                              struct wire_node_report *rep)
{
    size_t n_gone;

    assert(!report_wants_full(s));
    report_pending_clear(s);
    if (s->carry == NULL) {
        s->carry = repset_new();
        s->gone = strmap_new();
    }
    if (!s->journal) {
        /* From now on the source says what changed: the acked copy is not needed. */
        s->journal = true;
        repset_clear(s->acked);
    }
    for (size_t i = 0; i < n_changed; i++) {
        repset_put(s->carry, &changed[i]);
        (void)strmap_remove(s->gone, changed[i].segment_id);
    }
    for (size_t i = 0; i < n_removed; i++) {
        (void)repset_remove(s->carry, removed[i]);
        (void)strmap_put(s->gone, removed[i], s);
    }
    s->pending_seq = ++s->seq;
    s->pending_full = false;
    /* Everything since the base, also what an unanswered report carried. */
    s->n_segs = repset_export(s->carry, &s->segs, &s->cap_segs);
    n_gone = strmap_count(s->gone);
    s->removed = xcalloc(n_gone > 0 ? n_gone : 1, sizeof(*s->removed));
    (void)strmap_foreach(s->gone, report_gone_one, s);
    s->stats.delta++;
    rep->set_count = set_count;
    rep->set_hash = set_hash;
    return report_finish(s, rep);
}

bool report_answered(struct report_state *s, uint64_t seq, const struct wire_report_response *resp)
{
    if (seq == 0 || seq != s->pending_seq)
        return s->want_full; /* not the report in flight */
    if (resp->send_full || resp->ack_seq != seq) {
        s->want_full = true;
        s->stats.full_asked += resp->send_full;
    } else {
        if (s->journal)
            report_carry_clear(s); /* the base has it now; nothing is diffed against it */
        else if (s->pending_full)
            repset_replace(s->acked, s->segs, s->n_segs);
        else
            repset_apply(s->acked, s->segs, s->n_segs,
                         (const char(*)[WIRE_ID_MAX + 1])s->removed, s->n_removed);
        s->acked_seq = seq;
        s->want_full = false;
    }
    report_pending_clear(s);
    return s->want_full;
}

void report_unanswered(struct report_state *s, uint64_t seq)
{
    if (seq != 0 && seq == s->pending_seq)
        report_pending_clear(s);
}

void report_state_get_stats(const struct report_state *s, struct report_state_stats *ret)
{
    *ret = s->stats;
    ret->acked_seq = s->acked_seq;
}

/* ---- the reporter (the loop's side) ----------------------------------------- */

/* A 409: another live process reports under this node id. */
static void reporter_conflict(struct reporter *r, const struct http_client_reply *reply)
{
    struct wire_error e;
    char detail[WIRE_DETAIL_MAX + 1];

    r->stats.conflicts++;
    if (r->stats.in_conflict)
        return;
    r->stats.in_conflict = true;
    if (wire_error_decode(reply->body, reply->body_len, &e) == 0)
        snprintf(detail, sizeof(detail), "%s", e.message);
    else
        snprintf(detail, sizeof(detail), "the coordinator holds node id %s for another address",
                 r->node_id);
    log_error("node_id_conflict",
              "node_id=%s addr=%s coordinator=%s detail=%s action=\"serving nothing until "
              "the coordinator accepts this id; give each node its own --data-dir or --node-id\"",
              log_q(r->node_id), log_q(r->advertise), log_q(coordclient_addr(r->cc)), log_q(detail));
    if (r->conflict != NULL)
        r->conflict(r->arg, detail);
}

/*
 * A 401: the coordinator wants another token. Nothing this node does will
 * change that, so it says so again every REPORTER_401_LOG_MS for as long as
 * it lasts (not once, then silence), with how many reports it lost since.
 */
static void reporter_unauthorized(struct reporter *r)
{
    uint64_t now = clock_mono_ns() / 1000000;

    r->stats.failed++;
    r->stats.unauthorized++;
    r->unauthorized_unlogged++;
    r->was_failing = true;
    if (r->stats.in_unauthorized && now - r->unauthorized_logged_ms < REPORTER_401_LOG_MS)
        return;
    r->stats.in_unauthorized = true;
    log_error("report_unauthorized",
              "coordinator=%s refused=%" PRIu64 " refused_total=%" PRIu64
              " action=\"give this node the coordinator's token: --token-file FILE or "
              "SLUICE_TOKEN, the same as the coordinator's\"",
              coordclient_addr(r->cc), r->unauthorized_unlogged, r->stats.unauthorized);
    r->unauthorized_logged_ms = now;
    r->unauthorized_unlogged = 0;
}

static void reporter_answer(struct reporter *r, int status, const struct http_client_reply *reply);

/* The answer to the report in flight; then an ask made meanwhile is served. */
static void reporter_answer_cb(int status, const struct http_client_reply *reply, void *arg)
{
    struct reporter *r = arg;

    reporter_answer(r, status, reply);
    /* Cancelled: the reporter is being freed (its timers may be gone); ask for nothing. */
    if (status != -ECANCELED && r->soon_after_answer) {
        r->soon_after_answer = false;
        reporter_soon(r);
    }
}

static void reporter_answer(struct reporter *r, int status, const struct http_client_reply *reply)
{
    struct wire_report_response resp;
    struct wire_error err;
    char why[256];

    r->in_flight = false;
    /* A standby's 503 or no answer: the next report goes to the leader or the next address. */
    if (coordclient_answer(r->cc, status, reply) || status == -ECANCELED) {
        report_unanswered(r->rs, r->sent_seq);
        r->stats.failed++;
        return;
    }
    if (status == 409 && reply != NULL) {
        report_unanswered(r->rs, r->sent_seq);
        reporter_conflict(r, reply);
        return;
    }
    if (status == 401) {
        report_unanswered(r->rs, r->sent_seq);
        reporter_unauthorized(r);
        return;
    }
    if (r->stats.in_unauthorized) {
        r->stats.in_unauthorized = false;
        log_info("report_authorized", "coordinator=%s", coordclient_addr(r->cc));
    }
    if (status == 200 && r->stats.in_conflict) {
        r->stats.in_conflict = false;
        log_info("node_id_conflict_resolved", "node_id=%s coordinator=%s", r->node_id,
                 coordclient_addr(r->cc));
        if (r->conflict != NULL)
            r->conflict(r->arg, NULL);
    }
    if (status != 200 || reply == NULL ||
        wire_report_response_decode(reply->body, reply->body_len, &resp, &err) < 0) {
        report_unanswered(r->rs, r->sent_seq);
        r->stats.failed++;
        if (!r->was_failing && status < 0)
            log_warn("report_failed", "coordinator=%s error=%s", coordclient_addr(r->cc),
                     log_q(strerror(-status)));
        else if (!r->was_failing)
            log_warn("report_failed", "coordinator=%s status=%d", coordclient_addr(r->cc), status);
        r->was_failing = true;
        return;
    }
    if (r->fence != NULL && epoch_admit(r->fence, resp.epoch, why, sizeof(why)) < 0) {
        /* A deposed coordinator's answer: act on nothing in it, as if it were lost. */
        report_unanswered(r->rs, r->sent_seq);
        log_warn("report_answer_refused", "coordinator=%s reason=stale_epoch detail=%s",
                 coordclient_addr(r->cc), log_q(why));
        wire_report_response_done(&resp);
        return;
    }
    if (r->was_failing)
        log_info("report_ok", "coordinator=%s", coordclient_addr(r->cc));
    r->was_failing = false;
    r->stats.sent++;
    r->stats.last_ok_mono_ms = clock_mono_ns() / 1000000;
    if (report_answered(r->rs, r->sent_seq, &resp) && resp.send_full)
        log_info("report_full_requested", "coordinator=%s seq=%llu reason=%s", coordclient_addr(r->cc),
                 (unsigned long long)r->sent_seq, log_q(resp.full_reason));
    for (size_t i = 0; i < resp.n_drop; i++) {
        log_info("drop_requested", "id=%s by=coordinator", log_q(resp.drop[i]));
        r->stats.dropped++;
        r->src.drop(r->arg, resp.drop[i]);
    }
    wire_report_response_done(&resp);
}

static void reporter_tick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct reporter *r = arg;
    struct wire_node_status st;
    struct wire_node_report rep;
    uint8_t *body;
    size_t len;

    if (r->in_flight)
        return;
    /* This report carries whatever a pending ask was for. */
    if (r->soon_armed) {
        evtimer_del(r->soon_ev);
        r->soon_armed = false;
    }
    r->last_sent_ms = clock_mono_ns() / 1000000;
    /*
     * Every report is a heartbeat: the periodic one comes an interval after
     * the last report, not on a fixed beat, so a node that reports soon
     * after its loads (3 or 4 times a second while placing) sends no extra
     * one in between (about a third of a placing farm's reports were).
     */
    event_add(r->timer, &r->interval);
    memset(&st, 0, sizeof(st));
    memset(&rep, 0, sizeof(rep));
    snprintf(rep.node_id, sizeof(rep.node_id), "%s", r->node_id);
    snprintf(rep.addr, sizeof(rep.addr), "%s", r->advertise);
    r->src.fill(r->arg, &rep.state, &rep.pressure);
    rep.claim = r->claim;
    if (r->src.changes != NULL) {
        char(*removed)[WIRE_ID_MAX + 1] = NULL;
        size_t n_removed = 0;
        uint64_t count, hash;

        /* Taken also before a whole report: it covers them. */
        r->src.changes(r->arg, &st, &removed, &n_removed, &count, &hash);
        if (!report_wants_full(r->rs)) {
            r->sent_seq = report_build_changes(r->rs, st.segments, st.n_segments,
                                               (const char(*)[WIRE_ID_MAX + 1])removed, n_removed,
                                               count, hash, &rep);
        }
        free(removed);
        wire_node_status_done(&st);
        memset(&st, 0, sizeof(st));
    }
    if (r->src.changes == NULL || report_wants_full(r->rs)) {
        r->src.segments(r->arg, &st);
        /* The whole set, or what changed since the acknowledged base (and no URIs). */
        r->sent_seq = report_build(r->rs, st.segments, st.n_segments, &rep);
    }
    body = wire_node_report_encode(&rep, &len);
    wire_node_status_done(&st);
    if (http_client_request(coordclient_client(r->cc), EVHTTP_REQ_POST, "/v1/report", WIRE_CONTENT_TYPE, body, len,
                            reporter_answer_cb, r) == 0)
        r->in_flight = true;
    else
        report_unanswered(r->rs, r->sent_seq);
    free(body);
}

/* The coalescing timer of reporter_soon() fired. */
static void reporter_soon_cb(evutil_socket_t fd, short what, void *arg)
{
    struct reporter *r = arg;

    r->soon_armed = false;
    if (r->in_flight) {
        r->soon_after_answer = true;
        return;
    }
    r->stats.soon++;
    reporter_tick_cb(fd, what, r);
}

void reporter_soon(struct reporter *r)
{
    uint64_t now, at;
    struct timeval tv;

    if (r == NULL || r->soon_armed)
        return;
    if (r->in_flight) {
        r->soon_after_answer = true; /* the report in flight may have been built before */
        return;
    }
    now = clock_mono_ns() / 1000000;
    at = now + REPORTER_SOON_MS;
    if (r->last_sent_ms != 0 && r->last_sent_ms + REPORTER_MIN_GAP_MS > at)
        at = r->last_sent_ms + REPORTER_MIN_GAP_MS;
    tv.tv_sec = (time_t)((at - now) / 1000);
    tv.tv_usec = (suseconds_t)((at - now) % 1000) * 1000;
    r->soon_armed = true;
    evtimer_add(r->soon_ev, &tv);
}

struct reporter *reporter_new(struct event_base *base, const struct reporter_config *cfg,
                              const struct reporter_source *src, void *arg)
{
    struct reporter *r = xcalloc(1, sizeof(*r));
    struct timeval tv = {(time_t)(cfg->interval_ms / 1000),
                         (suseconds_t)(cfg->interval_ms % 1000) * 1000};
    struct timeval now = {0, 0};
    r->base = base;
    r->src = *src;
    r->interval = tv;
    r->node_id = xstrdup(cfg->node_id);
    r->advertise = xstrdup(cfg->advertise);
    r->claim = cfg->claim;
    r->conflict = cfg->conflict;
    r->fence = cfg->fence;
    r->arg = arg;
    r->rs = report_state_new(0);
    /* A report waits at most one interval for its answer. */
    r->cc = coordclient_new(base, coordlist_copy(cfg->coordinators),
                            (unsigned)(cfg->interval_ms > 500 ? cfg->interval_ms : 500), cfg->token);
    assert(r->cc != NULL);
    r->timer = event_new(base, -1, EV_PERSIST, reporter_tick_cb, r);
    event_add(r->timer, &tv);
    /* Report at once, so a new node joins without waiting an interval. */
    r->first = evtimer_new(base, reporter_tick_cb, r);
    evtimer_add(r->first, &now);
    r->soon_ev = evtimer_new(base, reporter_soon_cb, r);
    return r;
}

void reporter_free(struct reporter *r)
{
    if (r == NULL)
        return;
    event_free(r->timer);
    event_free(r->first);
    event_free(r->soon_ev);
    r->in_flight = false;
    coordclient_free(r->cc);
    report_state_free(r->rs);
    free(r->node_id);
    free(r->advertise);
    free(r);
}

void reporter_get_stats(const struct reporter *r, struct reporter_stats *ret)
{
    struct report_state_stats ss;

    *ret = r->stats;
    report_state_get_stats(r->rs, &ss);
    ret->full = ss.full;
    ret->delta = ss.delta;
    ret->full_asked = ss.full_asked;
}
