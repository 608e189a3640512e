/*
 * dispatch: the placer's side effects. Assignments the placer fires are
 * queued per node and leave together, up to WIRE_ASSIGN_BATCH_MAX per
 * POST /v1/assign/batch; each answer goes back to the placer. The placer's
 * other callbacks (accepted, refused, backoff, invalid, unexpected) update
 * the model. What an answer says about its node (no answer, 503 DRAINING)
 * is noted for membership (coord_node_note()), which applies it from the
 * loop: nothing here sets a node's state.
 *
 * Each node's dispatch window (window.h) bounds what it has outstanding:
 * assignments in flight plus those it accepted and has not yet reported
 * LOADED. Its answers move the window (202 grows it, 429 cuts it and a
 * Retry-After of the node's own state pauses it), the load slots its
 * answers and reports advertise bound it, and the room left is handed to
 * the placer as the node's in-flight bound (coord_window_apply()).
 *
 * Expected load: thousands of assignments per second, a batch per node per
 * tick.
 */
#include "coord_int.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "catalog.h"
#include "clock.h"
#include "failpoint.h"
#include "log.h"
#include "metrics.h"
#include "pbhttp.h"
#include "placer.h"
#include "reason.h"
#include "sluice_config.h"
#include "strmap.h"
#include "wire.h"
#include "xmalloc.h"

/* ---- placer callbacks ---------------------------------------------------- */

/*
 * Records a refusal as the node gave it, whether or not the placer still
 * waits for that attempt: every 422, 429, 503 and 507 counts for its node
 * (the REFUSED column) and its reason (sluice_coord_refusals_total), and is
 * a "refused" event with the node's reason and detail. A 422 is the
 * precheck's verdict on the file (outside the storage root, rows mismatch,
 * no such file): the detail is the only place the operator learns which.
 */
static void coord_record_refusal(struct coord *c, const char *node_id, const char *seg_id,
                                 const struct placer_answer *ans, const char *detail)
{
    struct coord_node *n = strmap_get(c->nodes, node_id);
    struct coord_seg *s = seg_id != NULL ? keymap_get(c->segs, seg_id) : NULL;
    enum wire_reason reason = ans->reason;

    if (reason == WIRE_REASON_NONE || reason >= WIRE_REASON_COUNT_)
        reason = ans->http_status == 422 ? WIRE_REASON_SEGMENT_INVALID : WIRE_REASON_NONE;
    c->refusals_by_reason[reason]++;
    if (n != NULL) {
        n->refusals++;
        snprintf(n->last_reason, sizeof(n->last_reason), "%s", reason_name(reason));
    }
    if (s != NULL) {
        coord_seg_set_refusal(s, xasprintf("%s: %s%s%s", node_id, reason_name(reason),
                                           detail[0] != '\0' ? ": " : "", detail));
    }
    coord_storm_event(c, "refused", seg_id, node_id, reason, ans->http_status,
                      ans->retry_after_ms, "%s", detail);
}

/*
 * Answers one attempt (for segment seg_id) to the placer, records it if it
 * is a refusal, and notes on the node when it gave no answer at all: status
 * <= 0 for an attempt still live, except -ECANCELED, which is the
 * coordinator cancelling (the node moved), not the node's silence.
 */
static void coord_answer(struct coord *c, const char *node_id, uint64_t attempt_id,
                         const char *seg_id, int status, const struct wire_assign_response *resp,
                         const char *reason_hdr, unsigned retry_after_s)
{
    struct placer_answer ans;
    enum placer_outcome outcome;

    if (c->placer == NULL)
        return; /* shutting down: clients cancel what is in flight */
    memset(&ans, 0, sizeof(ans));
    ans.http_status = status > 0 ? status : 0;
    if (resp != NULL) {
        ans.reason = resp->reason;
        ans.retry_after_ms = resp->retry_after_ms;
    } else if (reason_hdr != NULL) {
        reason_parse(reason_hdr, &ans.reason);
    }
    if (ans.retry_after_ms == 0)
        ans.retry_after_ms = retry_after_s * 1000;
    outcome = placer_classify(ans.http_status);
    c->assign_answers[outcome]++;
    if (outcome == PLACER_REFUSED || outcome == PLACER_INVALID)
        coord_record_refusal(c, node_id, seg_id, &ans, resp != NULL ? resp->detail : "");
    if (placer_on_answer(c->placer, attempt_id, &ans, coord_now_ms(), coord_random(c)) == 0 &&
        outcome == PLACER_TRANSPORT_ERROR && status != -ECANCELED)
        coord_node_note(c, node_id, COORD_NOTE_NO_ANSWER);
}

/* One batch in flight to a node: the attempts it carries, in order, and their window numbers. */
struct coord_batch {
    struct coord *c;
    char node[WIRE_ID_MAX + 1];
    size_t n;
    uint64_t *attempts;
    uint64_t *seqs;
    char (*segs)[WIRE_ID_MAX + 1]; /* the segment of each attempt */
};

/* One answer the node gave, as its window sees it. */
static void coord_window_answer(struct coord *c, struct coord_node *n, uint64_t seq,
                                const struct wire_assign_response *resp)
{
    uint32_t retry;

    if (resp->status == 202) {
        window_on_accept(&n->win, seq);
    } else if (resp->status == 429) {
        retry = resp->retry_after_ms ? resp->retry_after_ms : reason_retry_default_ms(resp->reason);
        if (window_on_refuse(&n->win, seq, resp->reason, retry, coord_now_ms()))
            log_debug("window_cut", "node=%s window=%u", log_q(n->id), window_size(&n->win));
    }
}

void coord_window_apply(struct coord *c, struct coord_node *n)
{
    uint64_t now = coord_now_ms();
    size_t room = window_room(&n->win, n->loading, now);

    if (n->win.paused_until > now &&
        (c->window_wake_ms == 0 || n->win.paused_until < c->window_wake_ms)) {
        c->window_wake_ms = n->win.paused_until;
        coord_kick(c); /* the tick sets its timer for the pause's end */
    }
    if (room == n->limit || c->placer == NULL)
        return;
    if (placer_node_set_limit(c->placer, n->id, room) == 0) {
        if (room > n->limit)
            coord_kick(c);
        n->limit = room;
    }
}

static int coord_window_wake_node(const char *key, void *value, void *arg)
{
    coord_window_apply(arg, value);
    return 0;
}

/* A node's pause ended (or may have): every node's room again, the next pause's end found. */
void coord_window_wake(struct coord *c)
{
    if (c->window_wake_ms == 0 || coord_now_ms() < c->window_wake_ms)
        return;
    c->window_wake_ms = 0;
    strmap_foreach(c->nodes, coord_window_wake_node, c);
}

static void coord_batch_cb(int status, const struct http_client_reply *reply, void *arg)
{
    struct coord_batch *b = arg;
    struct coord *c = b->c;
    struct wire_assign_batch_response resp;
    struct wire_error err;
    bool ok = status == 200 && reply != NULL &&
              wire_assign_batch_response_decode(reply->body, reply->body_len, &resp, &err) == 0;
    struct coord_node *n = c->placer != NULL ? strmap_get(c->nodes, b->node) : NULL;

    /*
     * A node that saw a newer leader's epoch refuses the batch whole: another
     * coordinator leads, this one steps down at once (the lease check missed
     * it: a pause between the check and the send).
     */
    if (status == 409 && c->lead_epoch > 0 && reply != NULL &&
        wire_error_decode(reply->body, reply->body_len, &err) == 0 &&
        strcmp(err.code, "stale_epoch") == 0) {
        char why[WIRE_ID_MAX + sizeof(err.message) + 64];

        snprintf(why, sizeof(why), "node %s refused an assignment batch: stale_epoch: %s",
                 b->node, err.message);
        coord_step_down(c, why);
    }
    if (c->lost_lead) {
        /* Nothing more from a deposed leader: its model is freed with it. */
    } else if (ok && resp.n == b->n) {
        /* The last decision's snapshot is the node's latest word on its load slots. */
        if (n != NULL && b->n > 0)
            window_on_advertise(&n->win, resp.results[b->n - 1].pressure.load_slots);
        for (size_t i = 0; i < b->n; i++) {
            coord_answer(c, b->node, b->attempts[i], b->segs[i], (int)resp.results[i].status,
                         &resp.results[i], NULL, 0);
            if (n != NULL)
                coord_window_answer(c, n, b->seqs[i], &resp.results[i]);
        }
        if (n != NULL)
            coord_window_apply(c, n);
    } else {
        /* No usable answer: every attempt in it failed the same way. */
        for (size_t i = 0; i < b->n; i++)
            coord_answer(c, b->node, b->attempts[i], b->segs[i], status == 200 ? 500 : status,
                         NULL, NULL, 0);
    }
    if (ok)
        wire_assign_batch_response_done(&resp);
    free(b->attempts);
    free(b->seqs);
    free(b->segs);
    free(b);
    if (c->placer != NULL)
        coord_kick(c);
}

/* A request that could not even be queued is answered as a transport error. */
static void coord_batch_failed_cb(evutil_socket_t fd, short what, void *arg)
{
    coord_batch_cb(-EIO, NULL, arg);
}

/*
 * Sends every node's pending assignments, WIRE_ASSIGN_BATCH_MAX per request:
 * one HTTP round trip for hundreds of segments instead of one each. Each
 * assignment is still decided by the node on its own.
 */
static int coord_flush_node(const char *key, void *value, void *arg)
{
    struct coord_node *n = value;
    struct coord *c = arg;

    for (size_t off = 0; off < n->n_pending; off += WIRE_ASSIGN_BATCH_MAX) {
        size_t k = n->n_pending - off < WIRE_ASSIGN_BATCH_MAX ? n->n_pending - off
                                                              : WIRE_ASSIGN_BATCH_MAX;
        struct coord_batch *b = xcalloc(1, sizeof(*b));
        struct wire_assign_batch batch;
        uint8_t *body;
        size_t len;

        b->c = c;
        snprintf(b->node, sizeof(b->node), "%s", n->id);
        b->n = k;
        b->attempts = xcalloc(k, sizeof(*b->attempts));
        b->seqs = xcalloc(k, sizeof(*b->seqs));
        b->segs = xcalloc(k, sizeof(*b->segs));
        batch.n = k;
        batch.epoch = c->lead_epoch;
        batch.assignments = xcalloc(k, sizeof(*batch.assignments));
        for (size_t i = 0; i < k; i++) {
            struct coord_pending *p = &n->pending[off + i];
            struct wire_assign_request *a = &batch.assignments[i];

            b->attempts[i] = p->attempt_id;
            b->seqs[i] = window_on_send(&n->win);
            snprintf(a->segment_id, sizeof(a->segment_id), "%s", p->id);
            snprintf(a->uri, sizeof(a->uri), "%s", p->id + strlen(p->id) + 1);
            a->row_count = p->row_count;
            a->avg_row_size = p->avg_row_size;
            a->digest = p->digest;
            a->mem_request_bytes = p->mem_request_bytes;
            a->mem_limit_bytes = p->mem_limit_bytes;
            memcpy(b->segs[i], a->segment_id, sizeof(b->segs[i]));
            free(p->id);
        }
        body = wire_assign_batch_encode(&batch, &len);
        free(batch.assignments);
        if (n->client == NULL ||
            /* The same assignment again is answered 202: safe to resend on a fresh connection. */
            http_client_request_idempotent(n->client, EVHTTP_REQ_POST, "/v1/assign/batch",
                                           WIRE_CONTENT_TYPE, body, len, coord_batch_cb, b) < 0)
            event_base_once(c->base, -1, EV_TIMEOUT, coord_batch_failed_cb, b, NULL);
        free(body);
    }
    n->n_pending = 0;
    return 0;
}

/* Whether a pending assignment's segment id begins with prefix ("" matches any). */
static int coord_pending_match_cb(const char *key, void *value, void *arg)
{
    const struct coord_node *n = value;
    const char *prefix = arg;

    for (size_t i = 0; i < n->n_pending; i++)
        if (strncmp(n->pending[i].id, prefix, strlen(prefix)) == 0)
            return 1;
    return 0;
}

/*
 * A test tool (docs/DESIGN.md, fencing), inert unless the environment arms
 * it: with SLUICE_FAILPOINT=dispatch-pause[:PREFIX] this process stops
 * itself (SIGSTOP), once, after the lease check passed and before the
 * batches leave, when one of them assigns a segment whose id begins with
 * PREFIX (any segment without one). It reproduces the pause between check
 * and act (a GC pause, a frozen VM) that only the epoch can fence: a test
 * lets the standby lead meanwhile, then continues this one (SIGCONT).
 *
 * The bytes of a batch leave on a later turn of the loop than this check,
 * and on continuing the once-a-second lease check is overdue in that same
 * turn: it may run first, find the session gone and cancel the send (the
 * safe outcome, but not the case under test). So the pause is counted as
 * falling after the check was stamped: on continuing, the lease counts as
 * checked now, as if the process had stopped right at its write to the
 * socket. Only here, only when armed.
 */
static void coord_failpoint_dispatch_pause(struct coord *c)
{
    static bool fired;
    const char *arg;
    char prefix[WIRE_ID_MAX + 1];

    if (fired || !failpoint_active("dispatch-pause", &arg))
        return;
    snprintf(prefix, sizeof(prefix), "%s", arg);
    if (strmap_foreach(c->nodes, coord_pending_match_cb, prefix) == 0)
        return;
    fired = true;
    log_warn("failpoint", "name=dispatch-pause epoch=%llu action=SIGSTOP",
             (unsigned long long)c->lead_epoch);
    raise(SIGSTOP);
    c->lead_checked_ms = (int64_t)(clock_mono_ns() / 1000000);
    log_warn("failpoint", "name=dispatch-pause epoch=%llu action=continued",
             (unsigned long long)c->lead_epoch);
}

void coord_flush_cb(evutil_socket_t fd, short what, void *arg)
{
    struct coord *c = arg;

    /* Acting as the leader: the lease first (a round trip only if the last is a second old). */
    if (!coord_lead_check(c, "dispatch: the catalog connection that holds the lead failed"))
        return;
    coord_failpoint_dispatch_pause(c);
    strmap_foreach(c->nodes, coord_flush_node, c);
}

void coord_op_assign(void *ctx, uint64_t attempt_id, const char *node_id,
                     const struct placer_segment *seg)
{
    struct coord *c = ctx;
    struct coord_node *n = strmap_get(c->nodes, node_id);
    struct coord_pending *p;
    const struct coord_seg *cs;
    struct timeval now = {0, 0};

    if (n == NULL) {
        struct coord_batch *b = xcalloc(1, sizeof(*b));
        b->c = c;
        snprintf(b->node, sizeof(b->node), "%s", node_id);
        b->n = 1;
        b->attempts = xmalloc(sizeof(*b->attempts));
        b->attempts[0] = attempt_id;
        b->segs = xcalloc(1, sizeof(*b->segs));
        snprintf(b->segs[0], sizeof(b->segs[0]), "%s", seg->id);
        event_base_once(c->base, -1, EV_TIMEOUT, coord_batch_failed_cb, b, NULL);
        return;
    }
    if (n->n_pending == n->cap_pending) {
        n->cap_pending = n->cap_pending * 2 + 64;
        n->pending = xreallocarray(n->pending, n->cap_pending, sizeof(*n->pending));
    }
    p = &n->pending[n->n_pending++];
    memset(p, 0, sizeof(*p));
    p->attempt_id = attempt_id;
    /* The model's record says it all (coord_seg_assignment); the placer's word for one it lacks. */
    cs = keymap_get(c->segs, seg->id);
    p->id = xasprintf("%s%c%s", seg->id, '\0', cs != NULL ? coord_seg_uri(cs) : seg->uri);
    p->row_count = cs != NULL ? cs->row_count : seg->row_count;
    p->avg_row_size = cs != NULL ? cs->avg_row_size : seg->avg_row_size;
    if (cs != NULL) {
        p->digest = cs->digest;
        p->mem_request_bytes = cs->mem_request_bytes;
        p->mem_limit_bytes = cs->mem_limit_bytes;
    }
    /* Everything the placer fires in this tick leaves together. */
    event_add(c->flush_ev, &now);
}

void coord_op_accepted(void *ctx, const struct placer_segment *ps, const char *node_id)
{
    struct coord *c = ctx;
    struct coord_seg *s = keymap_get(c->segs, ps->id);
    struct coord_node *n = strmap_get(c->nodes, node_id);

    if (s == NULL || n == NULL || coord_holder_find(s, node_id) != NULL)
        return;
    coord_holder_add(c, s, n, WIRE_SEG_LOADING);
    s->last_reason = 0;
    coord_seg_set_refusal(s, NULL);
}

void coord_op_refused(void *ctx, const struct placer_segment *ps, const char *node_id,
                      enum wire_reason reason, uint32_t retry_ms)
{
    struct coord *c = ctx;
    struct coord_seg *s = keymap_get(c->segs, ps->id);

    /* Counted and recorded with the node's detail when it answered (coord_record_refusal). */
    if (s != NULL)
        coord_seg_set_reason(s, reason);
    /* The node takes nothing new: membership decides what it is now, from the loop. */
    if (reason == WIRE_REASON_DRAINING)
        coord_node_note(c, node_id, COORD_NOTE_DRAINING);
}

void coord_op_backoff(void *ctx, const struct placer_segment *ps, uint64_t until_ms)
{
    struct coord *c = ctx;
    struct coord_seg *s = keymap_get(c->segs, ps->id);
    uint64_t now = coord_now_ms(), wait = until_ms > now ? until_ms - now : 0;

    if (s != NULL)
        s->backoff_until_ms = until_ms;
    coord_storm_event(c, "backoff", ps->id, NULL, WIRE_REASON_NONE, 0, (uint32_t)wait,
                "every node refused; next round in %" PRIu64 " ms", wait);
}

bool coord_op_invalid(void *ctx, const struct placer_segment *ps)
{
    struct coord *c = ctx;
    struct coord_seg *s = keymap_get(c->segs, ps->id);
    unsigned loaded;

    if (s == NULL)
        return true;
    loaded = coord_loaded_holders(s, NULL);
    if (loaded > 0) {
        /* A copy that passed its checksums proves the file good: the 422s are node-local. */
        coord_event(c, "invalid_overruled", s->id, NULL, WIRE_REASON_SEGMENT_INVALID, 422, 0,
                    "refused as invalid by a quorum of nodes, but LOADED on %u; last: %s", loaded,
                    coord_seg_refusal(s) != NULL ? coord_seg_refusal(s) : "");
        return false;
    }
    log_warn("segment_invalid", "id=%s uri=%s", log_q(s->id), log_q(coord_seg_uri(s)));
    coord_set_seg_state(c, s, COORD_INVALID);
    coord_seg_set_reason(s, WIRE_REASON_SEGMENT_INVALID);
    coord_event(c, "invalid", s->id, NULL, WIRE_REASON_SEGMENT_INVALID, 422, 0,
                "refused as invalid by a quorum of nodes; last: %s",
                coord_seg_refusal(s) != NULL ? coord_seg_refusal(s) : "");
    return true;
}

void coord_op_unexpected(void *ctx, const struct placer_segment *ps, const char *node_id,
                         int status)
{
    struct coord *c = ctx;

    coord_event(c, "unexpected", ps->id, node_id, WIRE_REASON_NONE, status, 0,
                "answer outside the protocol");
}

/* ---- the placement interface (struct coord_placement): round robin -------- */

static int coord_rr_start(struct coord *c, const struct coord_config *cfg, char *err, size_t len)
{
    return 0; /* the placer is c->placer, made with the coordinator */
}

static void coord_rr_stop(struct coord *c)
{
}

/* Tells the placer how many more copies the segment wants, or that it wants none. */
static void coord_rr_want(struct coord *c, struct coord_seg *s)
{
    const char *holders[WIRE_REPLICATION_MAX * 2];
    unsigned n = 0;

    if (s->n_holders >= s->replication) {
        placer_forget(c->placer, s->id);
        return;
    }
    for (unsigned i = 0; i < s->n_holders && n < sizeof(holders) / sizeof(holders[0]); i++)
        holders[n++] = s->holders[i].node;
    if (placer_want(c->placer, s->id, coord_seg_uri(s), s->row_count, s->avg_row_size, s->replication,
                    holders, n) < 0)
        log_warn("placer_want_failed", "id=%s", s->id);
    coord_kick(c);
}

static void coord_rr_forget(struct coord *c, struct coord_seg *s)
{
    placer_forget(c->placer, s->id);
}

static void coord_rr_exclude(struct coord *c, struct coord_seg *s, const char *node,
                             uint64_t until_ms)
{
    placer_exclude(c->placer, s->id, node, until_ms);
}

static uint64_t coord_rr_tick(struct coord *c, uint64_t now_ms)
{
    uint64_t next;

    coord_window_wake(c); /* nodes whose pause ended get their room back first */
    placer_tick(c->placer, now_ms);
    next = placer_next_deadline(c->placer);
    return c->window_wake_ms != 0 && c->window_wake_ms < next ? c->window_wake_ms : next;
}

static void coord_rr_placing(const struct coord *c, size_t *in_flight, size_t *unplaced)
{
    struct placer_stats ps;

    placer_get_stats(c->placer, &ps);
    *in_flight = ps.in_flight;
    *unplaced = ps.segments;
}

const struct coord_placement coord_placement_roundrobin = {
    .name = "roundrobin",
    .start = coord_rr_start,
    .stop = coord_rr_stop,
    .want = coord_rr_want,
    .forget = coord_rr_forget,
    .exclude = coord_rr_exclude,
    .tick = coord_rr_tick,
    .placing = coord_rr_placing,
};
