/*
 * views: the coordinator's read endpoints: GET /v1/segments[/{id}],
 * /v1/nodes, /v1/events, /v1/status, /metrics and /healthz. They read the
 * model and membership in memory (events from the catalog, one page in SQL)
 * and change nothing.
 *
 * Expected load: operators and scripts polling, a scrape every few seconds.
 */
#include "broker.h"
#include "coord_int.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
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
#include "log.h"
#include "metrics.h"
#include "pbhttp.h"
#include "placer.h"
#include "reason.h"
#include "sluice_config.h"
#include "strmap.h"
#include "wire.h"
#include "xmalloc.h"

void coord_seg_info(const struct coord *c, const struct coord_seg *s,
                    struct wire_segment_info *d, bool explain)
{
    memset(d, 0, sizeof(*d));
    snprintf(d->spec.segment_id, sizeof(d->spec.segment_id), "%s", s->id);
    d->spec.uri = (char *)(uintptr_t)coord_seg_uri(s); /* borrowed: the caller must not free it */
    d->spec.row_count = s->row_count;
    d->spec.avg_row_size = s->avg_row_size;
    d->spec.replication = s->replication;
    d->spec.digest = s->digest;
    snprintf(d->spec.table, sizeof(d->spec.table), "%s", s->table);
    d->spec.mem_request_bytes = s->mem_request_bytes;
    d->spec.mem_limit_bytes = s->mem_limit_bytes;
    d->footprint_bytes = s->footprint_bytes;
    d->over_limit = s->over_limit;
    snprintf(d->state, sizeof(d->state), "%s", coord_seg_state_names[s->state]);
    d->n_placements = s->n_holders;
    d->placements = xcalloc(s->n_holders, sizeof(*d->placements));
    for (unsigned i = 0; i < s->n_holders; i++) {
        snprintf(d->placements[i].node_id, sizeof(d->placements[i].node_id), "%s",
                 s->holders[i].node);
        d->placements[i].state = s->holders[i].state;
    }
    d->backoff_until_ms = coord_wall_of(s->backoff_until_ms);
    snprintf(d->last_reason, sizeof(d->last_reason), "%s", coord_seg_reason(s));
    if (explain) {
        char buf[4096];
        if (s->state == COORD_LOADED)
            snprintf(buf, sizeof(buf), "LOADED on %u node(s), as its replication %u asks",
                     coord_loaded_holders(s, NULL), s->replication);
        else if (s->state == COORD_INVALID && coord_seg_refusal(s) != NULL)
            snprintf(buf, sizeof(buf),
                     "INVALID: nodes refused the file as unreadable or wrong; the last said "
                     "(node: reason: detail) %s. It will not be placed: fix the file or its "
                     "registration, then `sluice-coord retry %s`.",
                     coord_seg_refusal(s), s->id);
        else if (s->state == COORD_INVALID)
            snprintf(buf, sizeof(buf),
                     "INVALID: nodes found the file unreadable or corrupt when loading it (see "
                     "`sluice-coord events --segment %s`); it will not be placed.",
                     s->id);
        else if (placer_explain(c->placer, s->id, coord_now_ms(), buf, sizeof(buf)) < 0)
            snprintf(buf, sizeof(buf), "PENDING: %u cop%s loading, waiting for the nodes' "
                                       "reports", s->n_holders, s->n_holders == 1 ? "y" : "ies");
        if (s->state == COORD_PENDING && coord_seg_refusal(s) != NULL) {
            size_t used = strlen(buf);

            snprintf(buf + used, sizeof(buf) - used, "%sLast refusal (node: reason: detail): %s",
                     used > 0 && buf[used - 1] != '\n' ? "\n" : "", coord_seg_refusal(s));
        }
        d->explain = xstrdup(buf);
    }
}

/* The largest page GET /v1/segments answers; a larger limit is taken as this. */
#define COORD_SEGMENT_PAGE_MAX 10000

/*
 * A walk over one state's ordered set, or a merge of the three in id
 * order: each step is O(1) (three compares at most), so a page costs
 * O(limit) after an O(log n) seek.
 */
void coord_walk_start(const struct coord *c, int state, const char *after,
                             struct coord_walk *w)
{
    for (int i = 0; i < 3; i++) {
        if (state < 0 || state == i)
            ordset_after(c->by_state[i], after, &w->at[i]);
        else
            w->at[i].s = NULL; /* the end */
    }
}

/* The next segment in id order, or NULL at the end. */
struct coord_seg *coord_walk_next(struct coord_walk *w)
{
    int best = -1;
    struct coord_seg *s;

    for (int i = 0; i < 3; i++)
        if (ordset_value(&w->at[i]) != NULL &&
            (best < 0 || strcmp(ordset_key(&w->at[i]), ordset_key(&w->at[best])) < 0))
            best = i;
    if (best < 0)
        return NULL;
    s = ordset_value(&w->at[best]);
    ordset_next(&w->at[best]);
    return s;
}

void coord_list_segments(struct coord *c, struct evhttp_request *req)
{
    struct evkeyvalq q;
    const char *state_s, *limit_s, *after;
    struct wire_segment_list out;
    struct wire_error err;
    struct coord_walk w;
    struct coord_seg *s;
    unsigned long limit = 1000;
    int state = -1;
    uint8_t *buf;
    size_t len;

    evhttp_parse_query_str(evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req)) != NULL
                               ? evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req))
                               : "",
                           &q);
    state_s = evhttp_find_header(&q, "state");
    limit_s = evhttp_find_header(&q, "limit");
    after = evhttp_find_header(&q, "after");
    if (state_s != NULL) {
        for (int i = 0; i < 3; i++)
            if (strcmp(state_s, coord_seg_state_names[i]) == 0)
                state = i;
        if (state < 0) {
            pbhttp_reply_error(req, 400, "invalid_field", "state: one of PENDING, LOADED, INVALID");
            goto out;
        }
    }
    if (limit_s != NULL) {
        char *end;
        limit = strtoul(limit_s, &end, 10);
        if (*end != '\0' || limit == 0 || limit > 1000000) {
            pbhttp_reply_error(req, 400, "invalid_field", "limit: an integer in 1..1000000");
            goto out;
        }
    }
    if (after != NULL && wire_check_segment_id("after", after, &err) < 0) {
        pbhttp_reply_error(req, 400, err.code, err.message);
        goto out;
    }
    if (limit > COORD_SEGMENT_PAGE_MAX)
        limit = COORD_SEGMENT_PAGE_MAX;
    memset(&out, 0, sizeof(out));
    out.total = state < 0 ? keymap_count(c->segs) : c->counts[state];
    out.segments = xcalloc(limit, sizeof(*out.segments));
    coord_walk_start(c, state, after, &w);
    while (out.n < limit && (s = coord_walk_next(&w)) != NULL)
        coord_seg_info(c, s, &out.segments[out.n++], false);
    /* More after this page: its last id is the cursor. */
    if (out.n == limit && coord_walk_next(&w) != NULL)
        snprintf(out.next_after, sizeof(out.next_after), "%s",
                 out.segments[out.n - 1].spec.segment_id);
    buf = wire_segment_list_encode(&out, &len);
    for (size_t i = 0; i < out.n; i++)
        free(out.segments[i].placements);
    free(out.segments);
    pbhttp_reply_msg(req, 200, WIRE_MSG_SEGMENT_LIST, buf, len);
out:
    evhttp_clear_headers(&q);
}

/* GET /v1/segments/{id}: one segment, with why it is where it is (explain). */
void coord_show_segment(struct coord *c, struct evhttp_request *req, const char *id)
{
    struct wire_segment_list out;
    struct wire_segment_info info;
    struct wire_error err;
    struct coord_seg *s;
    char msg[256];
    uint8_t *buf;
    size_t len;

    if (wire_check_segment_id("segment id in path", id, &err) < 0) {
        pbhttp_reply_error(req, 400, err.code, err.message);
        return;
    }
    s = keymap_get(c->segs, id);
    if (s == NULL) {
        snprintf(msg, sizeof(msg), "segment \"%s\" is not registered", id);
        pbhttp_reply_error(req, 404, "not_found", msg);
        return;
    }
    coord_seg_info(c, s, &info, true);
    memset(&out, 0, sizeof(out));
    out.n = 1;
    out.total = 1;
    out.segments = &info;
    buf = wire_segment_list_encode(&out, &len);
    free(info.placements);
    free(info.explain);
    pbhttp_reply_msg(req, 200, WIRE_MSG_SEGMENT_LIST, buf, len);
}

/* ---- /v1/nodes ----------------------------------------------------------- */

static int coord_collect_node(const char *key, void *value, void *arg)
{
    struct wire_node_list *l = arg;
    struct coord_node *n = value;
    struct wire_node_info *d = &l->nodes[l->n++];

    memset(d, 0, sizeof(*d));
    snprintf(d->node_id, sizeof(d->node_id), "%s", n->id);
    snprintf(d->addr, sizeof(d->addr), "%s", n->addr);
    snprintf(d->state, sizeof(d->state), "%s", membership_state_name(n->state));
    d->pressure = n->pressure;
    d->segments = (uint32_t)keymap_count(n->held);
    snprintf(d->last_reason, sizeof(d->last_reason), "%s", n->last_reason);
    d->last_seen_ms = n->last_seen_ms;
    d->refusals = n->refusals;
    return 0;
}

static int coord_cmp_node(const void *a, const void *b)
{
    return strcmp(((const struct wire_node_info *)a)->node_id,
                  ((const struct wire_node_info *)b)->node_id);
}

void coord_nodes_cb(struct evhttp_request *req, const char *rest, void *arg)
{
    struct coord *c = arg;
    struct wire_node_list l;
    uint8_t *buf;
    size_t len;

    l.n = 0;
    l.nodes = xcalloc(strmap_count(c->nodes) + 1, sizeof(*l.nodes));
    strmap_foreach(c->nodes, coord_collect_node, &l);
    qsort(l.nodes, l.n, sizeof(*l.nodes), coord_cmp_node);
    buf = wire_node_list_encode(&l, &len);
    free(l.nodes);
    pbhttp_reply_msg(req, 200, WIRE_MSG_NODE_LIST, buf, len);
}
/* ---- /v1/events, /v1/status, /metrics ------------------------------------- */

struct coord_evlist {
    struct wire_event_list l;
    size_t cap;
};

static int coord_collect_event(const struct catalog_event *e, void *arg)
{
    struct coord_evlist *el = arg;
    struct wire_event *d;

    if (el->l.n == el->cap) {
        el->cap = el->cap * 2 + 64;
        el->l.events = xreallocarray(el->l.events, el->cap, sizeof(*el->l.events));
    }
    d = &el->l.events[el->l.n++];
    memset(d, 0, sizeof(*d));
    d->id = e->id;
    d->ts_ms = (uint64_t)e->ts_ms;
    snprintf(d->segment_id, sizeof(d->segment_id), "%s", e->segment_id);
    snprintf(d->node_id, sizeof(d->node_id), "%s", e->node_id);
    snprintf(d->kind, sizeof(d->kind), "%s", e->kind);
    if (e->reason[0] == '\0' || reason_parse(e->reason, &d->reason) < 0)
        d->reason = WIRE_REASON_NONE;
    d->http_status = (uint32_t)e->http_status;
    d->retry_after_ms = (uint32_t)e->retry_after_ms;
    snprintf(d->detail, sizeof(d->detail), "%s", e->detail);
    d->count = e->count;
    d->last_ts_ms = (uint64_t)e->last_ts_ms;
    return 0;
}

/* A decimal event id from a query parameter: 1..INT64_MAX, digits only. 0 or -EINVAL. */
static int coord_parse_event_id(const char *v, uint64_t *ret)
{
    unsigned long long n;
    char *end;

    if (v == NULL || *v < '0' || *v > '9')
        return -EINVAL;
    errno = 0;
    n = strtoull(v, &end, 10);
    if (errno != 0 || *end != '\0' || n == 0 || n > INT64_MAX)
        return -EINVAL;
    *ret = n;
    return 0;
}

/*
 * GET /v1/events: one page, limited in SQL (see EventList in the proto).
 * Newest first from the catalog, reversed into ascending order here; one
 * row more than the page is read to know whether an older page exists.
 */
void coord_events_cb(struct evhttp_request *req, const char *rest, void *arg)
{
    struct coord *c = arg;
    struct coord_evlist el = {{0, NULL, 0}, 0};
    const char *seg, *limit_s, *before_s, *after_s, *query;
    unsigned long limit = 100;
    struct evkeyvalq q;
    struct wire_error err;
    uint64_t after = 0, before = 0;
    uint8_t *buf;
    size_t len;
    int r;

    query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
    evhttp_parse_query_str(query != NULL ? query : "", &q);
    seg = evhttp_find_header(&q, "segment");
    limit_s = evhttp_find_header(&q, "limit");
    before_s = evhttp_find_header(&q, "before");
    after_s = evhttp_find_header(&q, "after");
    if (seg != NULL && wire_check_segment_id("segment", seg, &err) < 0) {
        pbhttp_reply_error(req, 400, err.code, err.message);
        goto out;
    }
    if (limit_s != NULL) {
        char *end;
        limit = strtoul(limit_s, &end, 10);
        if (*end != '\0' || limit == 0 || limit > 100000) {
            pbhttp_reply_error(req, 400, "invalid_field", "limit: an integer in 1..100000");
            goto out;
        }
    }
    if ((before_s != NULL && coord_parse_event_id(before_s, &before) < 0) ||
        (after_s != NULL && coord_parse_event_id(after_s, &after) < 0)) {
        pbhttp_reply_error(req, 400, "invalid_field",
                           before_s != NULL && coord_parse_event_id(before_s, &before) < 0
                               ? "before: an event id, an integer in 1..2^63-1"
                               : "after: an event id, an integer in 1..2^63-1");
        goto out;
    }
    if (before_s != NULL && after_s != NULL) {
        pbhttp_reply_error(req, 400, "invalid_field", "before, after: give at most one");
        goto out;
    }
    coord_flush(c);
    if (after_s != NULL) {
        r = catalog_foreach_event(c->cat, seg, after, (unsigned)limit, coord_collect_event, &el);
    } else {
        r = catalog_foreach_event_before(c->cat, seg, before, (unsigned)limit + 1,
                                         coord_collect_event, &el);
        if (r == 0 && el.l.n > limit) {
            el.l.n = limit;
            el.l.next_before = el.l.events[limit - 1].id;
        }
        for (size_t k = 0; r == 0 && k < el.l.n / 2; k++) {
            struct wire_event t = el.l.events[k];

            el.l.events[k] = el.l.events[el.l.n - 1 - k];
            el.l.events[el.l.n - 1 - k] = t;
        }
    }
    if (r < 0) {
        wire_event_list_done(&el.l);
        pbhttp_reply_error(req, 500, "catalog", catalog_errmsg(c->cat));
        goto out;
    }
    buf = wire_event_list_encode(&el.l, &len);
    wire_event_list_done(&el.l);
    pbhttp_reply_msg(req, 200, WIRE_MSG_EVENT_LIST, buf, len);
out:
    evhttp_clear_headers(&q);
}

static int coord_count_up(const char *key, void *value, void *arg)
{
    const struct coord_node *n = value;
    struct wire_cluster_status *st = arg;

    st->nodes_up += n->state == MEMBERSHIP_UP || n->state == MEMBERSHIP_DRAINING;
    st->nodes_draining += n->state == MEMBERSHIP_DRAINING;
    return 0;
}

static void coord_status_fill(struct coord *c, struct wire_cluster_status *st)
{
    size_t in_flight, unplaced;
    struct placer_stats ps;

    memset(st, 0, sizeof(*st));
    placer_get_stats(c->placer, &ps);
    st->segments_total = keymap_count(c->segs);
    st->segments_pending = c->counts[COORD_PENDING];
    st->segments_loaded = c->counts[COORD_LOADED];
    st->segments_invalid = c->counts[COORD_INVALID];
    st->segments_backing_off = ps.backing_off + ps.waiting_retry;
    st->nodes_total = (uint32_t)strmap_count(c->nodes);
    strmap_foreach(c->nodes, coord_count_up, st);
    c->placement->placing(c, &in_flight, &unplaced);
    st->assignments_in_flight = in_flight;
    snprintf(st->version, sizeof(st->version), "%s", SLUICE_VERSION);
    st->uptime_seconds = (clock_mono_ns() - c->started_mono_ns) / 1000000000ull;
    st->assignments_accepted = ps.outcomes_total[PLACER_ACCEPTED];
    memcpy(st->refusals, ps.refused_by_reason_total, sizeof(st->refusals));
    snprintf(st->leader, sizeof(st->leader), "%s", c->advertise);
    st->leader_epoch = c->lead_epoch;
}

/* A coordinator heard from recently, into the status (catalog_foreach_coordinator). */
static int coord_status_seen(const struct catalog_coordinator *cc, void *arg)
{
    struct wire_cluster_status *st = arg;
    uint64_t now = clock_wall_ms();
    struct wire_coord_seen *o;

    if (st->n_coordinators == WIRE_COORDS_MAX)
        return 1;
    o = &st->coordinators[st->n_coordinators++];
    snprintf(o->addr, sizeof(o->addr), "%s", cc->addr);
    snprintf(o->role, sizeof(o->role), "%s", cc->role);
    o->seen_ms_ago = now > cc->seen_ms ? now - cc->seen_ms : 0;
    return 0;
}

void coord_status_cb(struct evhttp_request *req, const char *rest, void *arg)
{
    struct wire_cluster_status st;
    uint8_t *buf;
    size_t len;

    struct coord *c = arg;
    int r;

    coord_status_fill(c, &st);
    /* The standbys (and this leader) heard from in the last 10 s; a read error leaves none. */
    r = catalog_foreach_coordinator(c->cat, clock_wall_ms() - COORD_SEEN_MS, coord_status_seen,
                                    &st);
    if (r < 0)
        log_warn("status_coordinators_failed", "error=%s", log_q(catalog_errmsg(c->cat)));
    buf = wire_cluster_status_encode(&st, &len);
    pbhttp_reply_msg(req, 200, WIRE_MSG_CLUSTER_STATUS, buf, len);
}

void coord_healthz_cb(struct evhttp_request *req, const char *rest, void *arg)
{
    http_reply_text(req, 200, "ok\n");
}

/* Ready: leading (the model loaded, placing). A standby is alive but not ready. */
void coord_readyz_cb(struct evhttp_request *req, const char *rest, void *arg)
{
    struct coord *c = arg;

    if (!c->leading) {
        coord_standby_reply(c, req);
        return;
    }
    http_reply_text(req, 200, "ready\n");
}

static int coord_metrics_node(const char *key, void *value, void *arg)
{
    const struct coord_node *n = value;
    const char *labels[] = {"node", n->id, "state", membership_state_name(n->state), NULL};

    metrics_sample_u64(arg, "sluice_coord_node_segments", keymap_count(n->held), labels);
    return 0;
}

static int coord_metrics_window(const char *key, void *value, void *arg)
{
    const struct coord_node *n = value;
    const char *labels[] = {"node", n->id, NULL};

    metrics_sample_u64(arg, "sluice_coord_node_window", window_size(&n->win), labels);
    return 0;
}

void coord_metrics_cb(struct evhttp_request *req, const char *rest, void *arg)
{
    struct coord *c = arg;
    struct metrics_buf *m = metrics_buf_new();
    struct wire_cluster_status st;
    struct placer_stats ps;
    struct http_server_stats hs;
    size_t in_flight, unplaced;

    coord_status_fill(c, &st);
    placer_get_stats(c->placer, &ps);
    http_server_get_stats(c->http, &hs);
    metrics_family(m, "sluice_coord_segments", "gauge", "Registered segments by state.");
    for (int i = 0; i < 3; i++) {
        const char *labels[] = {"state", coord_seg_state_names[i], NULL};
        metrics_sample_u64(m, "sluice_coord_segments", c->counts[i], labels);
    }
    metrics_one_u64(m, "sluice_coord_segments_backing_off", "gauge",
                    "Pending segments waiting out a Retry-After.", st.segments_backing_off);
    metrics_one_u64(m, "sluice_coord_is_leader", "gauge",
                    "1 when this coordinator leads (places, answers); 0 a standby.", c->leading);
    metrics_one_u64(m, "sluice_coord_leader_epoch", "gauge",
                    "The leader epoch: this coordinator's when it leads, else the leader's as the "
                    "catalog says (0: SQLite, no election).",
                    c->leading ? c->lead_epoch : c->leader_epoch);
    metrics_one_u64(m, "sluice_coord_elections_total", "counter",
                    "Times this process took the lead.", c->elections);
    metrics_one(m, "sluice_coord_catalog_commit_age_seconds", "gauge",
                "Seconds since this coordinator last committed to the catalog (a leader commits "
                "at least every second; a standby heartbeats); -1: never.",
                c->last_commit_mono_ms == 0
                    ? -1.0
                    : (double)(coord_now_ms() - c->last_commit_mono_ms) / 1000.0);
    metrics_one_u64(m, "sluice_coord_nodes_up", "gauge", "Nodes UP or DRAINING.", st.nodes_up);
    metrics_one_u64(m, "sluice_coord_nodes_draining", "gauge",
                    "Nodes DRAINING: they answer, but take nothing new.", st.nodes_draining);
    metrics_family(m, "sluice_coord_node_segments", "gauge", "Segments held per node.");
    strmap_foreach(c->nodes, coord_metrics_node, m);
    c->placement->placing(c, &in_flight, &unplaced);
    metrics_one_u64(m, "sluice_coord_segments_unplaced", "gauge",
                    "Segments waiting for a node to accept them (queued or in flight).",
                    unplaced);
    metrics_one_u64(m, "sluice_coord_assignments_in_flight", "gauge",
                    "Assignments awaiting an answer.", in_flight);
    metrics_family(m, "sluice_coord_assignments_total", "counter",
                   "Answers to assignments by outcome.");
    for (int i = 0; i < PLACER_OUTCOME_COUNT_; i++) {
        const char *labels[] = {"outcome", placer_outcome_name((enum placer_outcome)i), NULL};
        metrics_sample_u64(m, "sluice_coord_assignments_total", ps.outcomes_total[i], labels);
    }
    metrics_family(m, "sluice_coord_refusals_total", "counter",
                   "Node refusals by reason: every 422, 429, 503 and 507 answer to an "
                   "assignment, late ones included.");
    for (int r = 1; r < WIRE_REASON_COUNT_; r++) {
        const char *labels[] = {"reason", reason_name((enum wire_reason)r), NULL};
        metrics_sample_u64(m, "sluice_coord_refusals_total", c->refusals_by_reason[r], labels);
    }
    metrics_family(m, "sluice_coord_refusals_per_placed_segment", "gauge",
                   "Refusals by reason per assignment accepted, since start (0 before any).");
    for (int r = 1; r < WIRE_REASON_COUNT_; r++) {
        const char *labels[] = {"reason", reason_name((enum wire_reason)r), NULL};
        uint64_t placed = ps.outcomes_total[PLACER_ACCEPTED];

        metrics_sample(m, "sluice_coord_refusals_per_placed_segment",
                              placed ? (double)ps.refused_by_reason_total[r] / (double)placed : 0,
                              labels);
    }
    metrics_family(m, "sluice_coord_node_window", "gauge",
                   "Each node's dispatch window: assignments it may have outstanding.");
    strmap_foreach(c->nodes, coord_metrics_window, m);
    metrics_one_u64(m, "sluice_coord_late_answers_total", "counter",
                    "Answers that came after the segment's placement was settled otherwise "
                    "(a node report, a timeout); ignored.",
                    ps.late_answers_total);
    metrics_one_u64(m, "sluice_coord_backoffs_total", "counter",
                    "Rounds in which every node refused a segment.", ps.backoffs_total);
    metrics_one_u64(m, "sluice_coord_capacity_wakes_total", "counter",
                    "Back-offs ended early because a node came UP or accepted a segment.",
                    ps.capacity_wakes_total);
    metrics_one_u64(m, "sluice_coord_reports_total", "counter", "Node reports received.",
                    c->reports);
    metrics_family(m, "sluice_coord_reports_by_kind_total", "counter",
                   "Node reports by what was done with them: full, delta, legacy (an older "
                   "node's full report), duplicate, old (ignored), unapplied (a delta that "
                   "could not be applied).");
    for (int v = 0; v < INTAKE_VERDICT_COUNT_; v++) {
        char kind[16];
        const char *labels[] = {"kind", kind, NULL};

        snprintf(kind, sizeof(kind), "%s", intake_verdict_name((enum intake_verdict)v));
        for (char *p = kind; *p != '\0'; p++)
            *p = (char)tolower((unsigned char)*p);
        metrics_sample_u64(m, "sluice_coord_reports_by_kind_total", c->report_verdicts[v], labels);
    }
    metrics_one_u64(m, "sluice_coord_report_digest_mismatches_total", "counter",
                    "Reports whose set digest disagreed with the set the coordinator rebuilt.",
                    c->digest_mismatches);
    metrics_family(m, "sluice_coord_full_reports_asked_total", "counter",
                   "Answers that asked a node for its whole set, by reason: no_base, restarted, "
                   "base, digest.");
    for (int w = 1; w < INTAKE_WHY_COUNT_; w++) {
        const char *labels[] = {"reason", intake_why_name((enum intake_why)w), NULL};

        metrics_sample_u64(m, "sluice_coord_full_reports_asked_total", c->full_asked[w], labels);
    }
    metrics_one_u64(m, "sluice_coord_registered_total", "counter", "Segments registered.",
                    c->registered);
    metrics_one_u64(m, "sluice_coord_claims_total", "counter", "Pull-mode claims served.",
                    c->claims);
    metrics_one_u64(m, "sluice_coord_node_id_conflicts_total", "counter",
                    "Reports refused (409) because a live node at another address has their "
                    "node id.",
                    c->id_clashes);
    metrics_one_u64(m, "sluice_coord_catalog_errors_total", "counter", "Failed catalog writes.",
                    c->catalog_errors);
    metrics_one_u64(m, "sluice_coord_events_folded_total", "counter",
                    "Events counted into an identical event's row instead of written (storms).",
                    storm_folded_total(c->storm));
    metrics_one_u64(m, "sluice_http_connections_live", "gauge", "Open HTTP connections.",
                    hs.connections_live);
    if (c->broker != NULL)
        broker_metrics(c->broker, m); /* its queries: the same families as a broker's */
    metrics_process(m, "/proc");
    http_reply(req, 200, "text/plain; version=0.0.4", metrics_buf_data(m), metrics_buf_len(m));
    metrics_buf_free(m);
}
