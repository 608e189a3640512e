/*
 * report: a persistent timer that sends one NodeReport at a time over a
 * keep-alive client. Expected load: one small request per second; a report
 * of N segments is O(N) to build.
 */
#include "report.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "clock.h"
#include "http.h"
#include "log.h"
#include "xmalloc.h"

struct reporter {
    struct event_base *base;
    struct reporter_source src;
    struct http_client *client;
    struct event *timer, *first;
    char *node_id, *advertise, *coordinator;
    bool claim;
    bool in_flight;
    bool was_failing;
    reporter_conflict_cb conflict;
    void *arg;
    struct reporter_stats stats;
};

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
              log_q(r->node_id), log_q(r->advertise), log_q(r->coordinator), log_q(detail));
    if (r->conflict != NULL)
        r->conflict(r->arg, detail);
}

static void reporter_answer_cb(int status, const struct http_client_reply *reply, void *arg)
{
    struct reporter *r = arg;
    struct wire_report_response resp;
    struct wire_error err;

    r->in_flight = false;
    if (status == 409 && reply != NULL) {
        reporter_conflict(r, reply);
        return;
    }
    if (status == 200 && r->stats.in_conflict) {
        r->stats.in_conflict = false;
        log_info("node_id_conflict_resolved", "node_id=%s coordinator=%s", r->node_id,
                 r->coordinator);
        if (r->conflict != NULL)
            r->conflict(r->arg, NULL);
    }
    if (status != 200 || reply == NULL ||
        wire_report_response_decode(reply->body, reply->body_len, &resp, &err) < 0) {
        r->stats.failed++;
        if (!r->was_failing)
            log_warn("report_failed", "coordinator=%s status=%d", r->coordinator, status);
        r->was_failing = true;
        return;
    }
    if (r->was_failing)
        log_info("report_ok", "coordinator=%s", r->coordinator);
    r->was_failing = false;
    r->stats.sent++;
    r->stats.last_ok_mono_ms = clock_mono_ns() / 1000000;
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
    memset(&st, 0, sizeof(st));
    memset(&rep, 0, sizeof(rep));
    r->src.segments(r->arg, &st);
    snprintf(rep.node_id, sizeof(rep.node_id), "%s", r->node_id);
    snprintf(rep.addr, sizeof(rep.addr), "%s", r->advertise);
    r->src.fill(r->arg, &rep.state, &rep.pressure);
    rep.claim = r->claim;
    /* The coordinator knows every URI: leave them out of the heartbeat. */
    for (size_t i = 0; i < st.n_segments; i++) {
        free(st.segments[i].uri);
        st.segments[i].uri = NULL;
    }
    rep.segments = st.segments;
    rep.n_segments = st.n_segments;
    body = wire_node_report_encode(&rep, &len);
    wire_node_status_done(&st);
    if (http_client_request(r->client, EVHTTP_REQ_POST, "/v1/report", WIRE_CONTENT_TYPE, body, len,
                            reporter_answer_cb, r) == 0)
        r->in_flight = true;
    free(body);
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
    r->node_id = xstrdup(cfg->node_id);
    r->advertise = xstrdup(cfg->advertise);
    r->coordinator = xstrdup(cfg->coordinator);
    r->claim = cfg->claim;
    r->conflict = cfg->conflict;
    r->arg = arg;
    /* A report waits at most one interval for its answer. */
    r->client = http_client_new(base, cfg->coordinator,
                                (unsigned)(cfg->interval_ms > 500 ? cfg->interval_ms : 500),
                                cfg->token);
    r->timer = event_new(base, -1, EV_PERSIST, reporter_tick_cb, r);
    event_add(r->timer, &tv);
    /* Report at once, so a new node joins without waiting an interval. */
    r->first = evtimer_new(base, reporter_tick_cb, r);
    evtimer_add(r->first, &now);
    return r;
}

void reporter_free(struct reporter *r)
{
    if (r == NULL)
        return;
    event_free(r->timer);
    event_free(r->first);
    r->in_flight = false;
    http_client_free(r->client);
    free(r->node_id);
    free(r->advertise);
    free(r->coordinator);
    free(r);
}

void reporter_get_stats(const struct reporter *r, struct reporter_stats *ret)
{
    *ret = r->stats;
}
