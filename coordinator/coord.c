/*
 * coord: the coordinator daemon's wiring. coord_new() opens the catalog,
 * rebuilds the in-memory model from it (refusing to start on any read
 * error), starts the placer (or the row-count baseline), binds the HTTP
 * server and routes each endpoint to its role's file (see coord_int.h); the
 * tick runs the placement's deadlines. coord_free() undoes it all.
 *
 * The roles themselves are elsewhere: model.c (segments, holders, the
 * catalog write-through), membership.c (nodes and their state), reconcile.c
 * (reports), dispatch.c (the placer's callbacks and the batches to nodes),
 * rowcount.c (the baseline), api.c (write endpoints), views.c (reads).
 *
 * Expected load: a few nodes reporting every second, registrations in
 * batches of up to 10,000, and thousands of assignments per second in
 * flight through the placer.
 */
#include "coord_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "broker.h"
#include "catalog.h"
#include "clock.h"
#include "coordlist.h"
#include "failpoint.h"
#include "log.h"
#include "metrics.h"
#include "pbhttp.h"
#include "placer.h"
#include "reason.h"
#include "sqldb.h"
#include "sluice_config.h"
#include "strmap.h"
#include "wire.h"
#include "xmalloc.h"

/*
 * The coordinator's one time base for deadlines: back-offs, exclusions, the
 * report grace and the placer's now are on the monotonic clock, so that a
 * step of the wall clock (NTP, an operator) moves none of them. Wall time
 * is only stored (catalog rows, events) and shown, converted by
 * coord_wall_of().
 */
uint64_t coord_now_ms(void)
{
    return clock_mono_ns() / 1000000;
}

/* A coord_now_ms() deadline as wall-clock ms, to store or show; 0 stays 0 (none). */
uint64_t coord_wall_of(uint64_t mono_ms)
{
    uint64_t now = coord_now_ms();

    if (mono_ms == 0 || mono_ms <= now)
        return 0;
    return clock_wall_ms() + (mono_ms - now);
}

uint32_t coord_random(struct coord *c)
{
    /* xorshift32: jitter only, not security. */
    c->rng ^= c->rng << 13;
    c->rng ^= c->rng >> 17;
    c->rng ^= c->rng << 5;
    return c->rng;
}
/* ---- ticking ------------------------------------------------------------- */

static void coord_tick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct coord *c = arg;
    uint64_t now = coord_now_ms(), next;

    /* What answers said about nodes first: nothing is fired at a node gone silent. */
    coord_node_notes_apply(c);
    next = c->placement->tick(c, now);
    if (next != UINT64_MAX) {
        uint64_t delay = next > now ? next - now : 0;
        struct timeval tv = {(time_t)(delay / 1000), (suseconds_t)(delay % 1000) * 1000};
        event_add(c->tick_ev, &tv);
    }
}

void coord_kick(struct coord *c)
{
    struct timeval zero = {0, 0};

    event_add(c->tick_ev, &zero);
}
static int coord_want_pending(const char *key, void *value, void *arg)
{
    coord_seg_update(arg, value);
    return 0;
}

/* The placement --placement names; the placer (round robin) when none or unknown. */
static const struct coord_placement *coord_placement_named(const char *name)
{
    static const struct coord_placement *const all[] = {&coord_placement_roundrobin,
                                                        &coord_placement_rowcount};

    for (size_t i = 0; name != NULL && i < sizeof(all) / sizeof(all[0]); i++)
        if (strcmp(name, all[i]->name) == 0)
            return all[i];
    return &coord_placement_roundrobin;
}

static const struct placer_ops coord_placer_ops = {
    .assign = coord_op_assign,
    .on_accepted = coord_op_accepted,
    .on_refused = coord_op_refused,
    .on_backoff = coord_op_backoff,
    .on_invalid = coord_op_invalid,
    .on_unexpected = coord_op_unexpected,
};
/* ---- leading and standing by ---------------------------------------------- */

/* The address clients are sent to: --advertise, else the bound one (a wildcard host: ours). */
static void coord_set_advertise(struct coord *c, const char *advertise)
{
    char host[200] = "";
    const char *colon = strrchr(c->bound, ':');

    if (advertise != NULL && advertise[0] != '\0') {
        snprintf(c->advertise, sizeof(c->advertise), "%s", advertise);
        return;
    }
    if (colon != NULL && (strncmp(c->bound, "0.0.0.0:", 8) == 0 ||
                          strncmp(c->bound, "[::]:", 5) == 0) &&
        gethostname(host, sizeof(host) - 1) == 0 && host[0] != '\0') {
        snprintf(c->advertise, sizeof(c->advertise), "%s%s", host, colon);
        return;
    }
    snprintf(c->advertise, sizeof(c->advertise), "%s", c->bound);
}

/* The wall clock in ms, for heartbeats (seen by other machines). */
static uint64_t coord_wall_now(void)
{
    return clock_wall_ms();
}

/* Starts one node's silence from now (coord_restart_node_clocks()). */
static int coord_restart_node_clock(const char *key, void *value, void *arg)
{
    ((struct coord_node *)value)->last_seen_mono_ms = *(const uint64_t *)arg;
    return 0;
}

/*
 * Every node has node_timeout from the end of the load to report, not from
 * when its row was read: the assignments are read after the nodes, and at
 * 10^6 copies that took 3 to 7 s of a 5 s --node-timeout, so the first
 * membership tick found every node silent, marked it DOWN and wrote every
 * copy it held lost, one catalog write each, in one callback, the loop
 * blocked for minutes while the nodes' reports waited (bench_scale, phase
 * 8). SLUICE_FAILPOINT=load-pause:MS sleeps MS before it, as a slow load.
 */
static void coord_restart_node_clocks(struct coord *c)
{
    const char *arg;
    uint64_t now;

    if (failpoint_active("load-pause", &arg))
        usleep((useconds_t)strtoul(arg, NULL, 10) * 1000);
    now = clock_mono_ns() / 1000000;
    strmap_foreach(c->nodes, coord_restart_node_clock, &now);
}

/*
 * This coordinator took the lead: rebuild the in-memory view from the
 * catalog, then ask the placer for what is missing. Any read that fails
 * refuses the lead: a partial view would tell the nodes to drop the good
 * copies of every segment it failed to load.
 */
static int coord_take_lead(struct coord *c, char *err, size_t err_len)
{
    struct timeval tick = {0, COORD_MEMBERSHIP_MS * 1000};
    int r;

    c->elections++;
    if (c->lead_epoch > 0)
        log_info("leading", "epoch=%llu addr=%s catalog=%s", (unsigned long long)c->lead_epoch,
                 c->advertise, c->db_path);
    c->lead_checked_ms = (int64_t)(clock_mono_ns() / 1000000);
    if ((r = catalog_foreach_segment(c->cat, NULL, coord_load_seg, c)) < 0 ||
        (r = catalog_foreach_node(c->cat, coord_load_node, c)) < 0 ||
        (r = catalog_foreach_assignment(c->cat, NULL, NULL, coord_load_assignment, c)) < 0) {
        snprintf(err, err_len, "catalog %s: %s (%s); refusing to start on a partial catalog",
                 c->db_path, catalog_errmsg(c->cat), strerror(-r));
        return r;
    }
    c->leading = true;
    keymap_foreach(c->segs, coord_want_pending, c);
    if ((r = coord_txn(c)) == 0)
        r = catalog_heartbeat(c->cat, c->advertise, true, c->lead_epoch, coord_wall_now());
    if (r == 0)
        r = coord_flush(c);
    if (r < 0) {
        c->leading = false;
        snprintf(err, err_len, "catalog %s: %s (%s)", c->db_path, catalog_errmsg(c->cat),
                 strerror(-r));
        return r;
    }
    coord_restart_node_clocks(c);
    log_info("catalog_loaded", "db=%s segments=%zu nodes=%zu loaded=%" PRIu64
             " pending=%" PRIu64 " invalid=%" PRIu64,
             c->db_path, keymap_count(c->segs), strmap_count(c->nodes),
             c->counts[COORD_LOADED], c->counts[COORD_PENDING], c->counts[COORD_INVALID]);
    event_add(c->membership_ev, &tick);
    coord_kick(c);
    return 0;
}

void coord_step_down(struct coord *c, const char *why)
{
    if (c->lost_lead)
        return;
    log_error("lead_lost", "epoch=%llu catalog=%s reason=%s action=\"standby (the model is "
              "rebuilt when this coordinator leads again)\"",
              (unsigned long long)c->lead_epoch, c->db_path, log_q(why));
    c->lost_lead = true;
    c->leading = false;
    event_base_loopbreak(c->base);
}

/*
 * A coordinator made again after a step-down opens its catalog from its
 * standby tick: PostgreSQL may be restarting, and until it answers this
 * coordinator stays a standby on its address (a failure is logged once).
 */
static int coord_catalog_open(struct coord *c)
{
    struct catalog_options copts = {.events_keep = c->cfg.events_keep};
    char err[512];
    int r;

    if (c->cat != NULL)
        return 0;
    r = catalog_open_with(c->locator, &copts, &c->cat, err, sizeof(err));
    if (r < 0) {
        if (!c->standby_failing)
            log_warn("standby_catalog_failed", "catalog=%s error=%s retry=1s", c->db_path,
                     log_q(err));
        c->standby_failing = true;
        return r;
    }
    log_info("catalog_opened", "catalog=%s (a standby after a step-down)", c->db_path);
    return 0;
}

/* A standby's second: try the lead; else learn who leads, and say this one is alive. */
static void coord_lead_cb(evutil_socket_t fd, short what, void *arg)
{
    struct coord *c = arg;
    struct catalog_leader who;
    char err[512];
    int r;

    if (c->leading || c->lost_lead)
        return;
    if (coord_catalog_open(c) < 0)
        return;
    /* Just deposed: a standby that is up leads first (COORD_STEPDOWN_HOLD_MS). */
    r = coord_now_ms() < c->lead_hold_until_ms ? 0
                                               : catalog_lead(c->cat, c->advertise, &c->lead_epoch);
    if (r == 1) {
        event_del(c->lead_ev);
        if (coord_take_lead(c, err, sizeof(err)) < 0) {
            log_error("lead_load_failed", "error=%s", log_q(err));
            coord_step_down(c, "the catalog could not be loaded");
        }
        return;
    }
    if (r == 0 && (r = catalog_leader(c->cat, &who)) == 0) {
        if (strcmp(who.addr, c->leader) != 0)
            log_info("standby", "leader=%s epoch=%llu retry=1s", who.addr[0] != '\0' ? who.addr : "-",
                     (unsigned long long)who.epoch);
        snprintf(c->leader, sizeof(c->leader), "%s", who.addr);
        c->leader_epoch = who.epoch;
        r = catalog_heartbeat(c->cat, c->advertise, false, 0, coord_wall_now());
        if (r == 0)
            c->last_commit_mono_ms = coord_now_ms();
    }
    if (r < 0 && !c->standby_failing)
        log_warn("standby_catalog_failed", "catalog=%s error=%s retry=1s", c->db_path,
                 log_q(catalog_errmsg(c->cat)));
    c->standby_failing = r < 0;
}

void coord_standby_reply(struct coord *c, struct evhttp_request *req)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    char msg[2 * WIRE_ADDR_MAX + 256];
    bool named = c->leader[0] != '\0' && strcmp(c->leader, c->advertise) != 0;

    if (named) {
        evhttp_add_header(h, COORDLIST_LEADER_HEADER, c->leader);
        snprintf(msg, sizeof(msg),
                 "this coordinator (%s) is a standby: the leader is at %s (X-Sluice-Leader); "
                 "give clients every coordinator, --coordinator A,B",
                 c->advertise, c->leader);
    } else {
        snprintf(msg, sizeof(msg),
                 "this coordinator (%s) is a standby and knows no leader yet (an election takes "
                 "about a second): retry, or give clients every coordinator, --coordinator A,B",
                 c->advertise);
    }
    evhttp_add_header(h, "Retry-After", "1");
    pbhttp_reply_error(req, 503, COORDLIST_STANDBY_CODE, msg);
}

/* Every request of a standby but /healthz, /readyz and /metrics: 503 naming the leader. */
static bool coord_gate_cb(struct evhttp_request *req, const char *path, void *arg)
{
    struct coord *c = arg;

    if (c->leading || strcmp(path, "/healthz") == 0 || strcmp(path, "/readyz") == 0 ||
        strcmp(path, "/metrics") == 0)
        return false;
    coord_standby_reply(c, req);
    return true;
}

struct coord *coord_new(struct event_base *base, const struct coord_config *cfg, char *err,
                        size_t err_len)
{
    struct coord *c = xcalloc(1, sizeof(*c));
    struct catalog_options copts = {.events_keep = cfg->events_keep};
    struct placer_config pcfg = {.max_in_flight_per_node = cfg->max_in_flight_per_node,
                                 .invalid_quorum = COORD_INVALID_QUORUM,
                                 .borrow_strings = true}; /* the segment records' own */
    struct timeval second = {1, 0};
    char shown[256];
    int r;

    c->base = base;
    c->cfg = *cfg;
    c->token = cfg->token != NULL && cfg->token[0] != '\0' ? xstrdup(cfg->token) : NULL;
    c->cfg.token = c->token;
    c->cfg.nodes = NULL;
    c->cfg.listen = NULL;
    c->cfg.advertise = NULL;
    c->elections = cfg->elections;
    /* As shown in logs and errors: a PostgreSQL URI's password is masked. */
    sqldb_redact(cfg->db_path, shown, sizeof(shown));
    c->db_path = xstrdup(shown);
    c->cfg.db_path = c->db_path;
    c->locator = xstrdup(cfg->db_path);
    c->started_mono_ns = clock_mono_ns();
    c->rng = (uint32_t)(clock_mono_ns() | 1);
    c->storm = storm_new(COORD_STORM_MS);
    c->pmap = pmap_new(COORD_PMAP_LOG);
    /* Not 0 (a broker's "none yet"), and another on every start. */
    c->epoch = (clock_wall_ms() << 16) ^ (uint64_t)getpid() ^ clock_mono_ns();
    c->epoch |= 1;
    c->segs = keymap_new(offsetof(struct coord_seg, id));
    c->table_names = strmap_new();
    for (int i = 0; i < 3; i++)
        c->by_state[i] = ordset_new(offsetof(struct coord_seg, id));
    c->nodes = strmap_new();
    c->tick_ev = event_new(base, -1, 0, coord_tick_cb, c);
    c->commit_ev = event_new(base, -1, 0, coord_commit_cb, c);
    c->membership_ev = event_new(base, -1, EV_PERSIST, coord_membership_cb, c);
    c->flush_ev = event_new(base, -1, 0, coord_flush_cb, c);
    c->notes_ev = event_new(base, -1, 0, coord_notes_cb, c);
    c->lead_ev = event_new(base, -1, EV_PERSIST, coord_lead_cb, c);
    c->placer = placer_new(&pcfg, &coord_placer_ops, c);
    c->cfg.placement = NULL; /* borrowed: the placement keeps what it needs */
    c->cfg.node_rows = NULL;
    c->placement = coord_placement_named(cfg->placement);
    if (c->placement->start(c, cfg, err, err_len) < 0)
        goto fail;
    /* After a step-down the catalog is opened from the loop (coord_catalog_open). */
    if (!cfg->after_step_down &&
        (r = catalog_open_with(cfg->db_path, &copts, &c->cat, err, err_len)) < 0)
        goto fail;
    /*
     * Serve first: a standby answers too (503 naming the leader, /healthz,
     * /readyz, /metrics), and its address is what it advertises.
     */
    c->http = http_server_new(base, &cfg->limits);
    http_server_set_name(c->http, "sluice-coord/" SLUICE_VERSION);
    if (c->token != NULL)
        http_server_set_token(c->http, c->token);
    r = http_server_bind(c->http, cfg->listen, c->bound, sizeof(c->bound));
    if (r < 0) {
        snprintf(err, err_len, "--listen %s: %s", cfg->listen, strerror(-r));
        goto fail;
    }
    coord_set_advertise(c, cfg->advertise);
    http_server_set_gate(c->http, coord_gate_cb, c);
    http_server_route(c->http, HTTP_POST, "/v1/report", false, coord_report_cb, c);
    http_server_route(c->http, HTTP_POST, "/v1/claim", false, coord_claim_cb, c);
    http_server_route(c->http, HTTP_GET | HTTP_POST, "/v1/segments", false, coord_segments_cb, c);
    http_server_route(c->http, HTTP_GET | HTTP_POST | HTTP_DELETE, "/v1/segments/", true,
                      coord_segment_cb, c);
    http_server_route(c->http, HTTP_GET, "/v1/nodes", false, coord_nodes_cb, c);
    http_server_route(c->http, HTTP_POST, "/v1/nodes/", true, coord_node_action_cb, c);
    http_server_route(c->http, HTTP_GET, "/v1/events", false, coord_events_cb, c);
    http_server_route(c->http, HTTP_GET, "/v1/tables", false, coord_tables_cb, c);
    http_server_route(c->http, HTTP_GET, "/v1/placements", false, coord_placements_cb, c);
    http_server_route(c->http, HTTP_GET, "/v1/history", false, coord_history_cb, c);
    http_server_route_public(c->http, HTTP_GET, "/", false, coord_page_cb, c);
    http_server_route(c->http, HTTP_GET, "/v1/recommendations", false, coord_recommendations_cb, c);
    http_server_route(c->http, HTTP_GET, "/v1/status", false, coord_status_cb, c);
    http_server_route_public(c->http, HTTP_GET, "/metrics", false, coord_metrics_cb, c);
    http_server_route_public(c->http, HTTP_GET, "/healthz", false, coord_healthz_cb, c);
    http_server_route_public(c->http, HTTP_GET, "/readyz", false, coord_readyz_cb, c);
    if (cfg->broker != NULL) {
        struct broker_config bcfg = *cfg->broker;

        bcfg.listen = NULL;
        bcfg.coordinator = NULL;
        bcfg.token = c->token;
        bcfg.server = c->http;
        bcfg.placements = coord_placements_get;
        bcfg.placements_arg = c;
        if (bcfg.poll_ms == 0)
            bcfg.poll_ms = COORD_BROKER_POLL_MS;
        c->broker = broker_new(base, &bcfg, err, err_len);
        if (c->broker == NULL)
            goto fail;
    }
    c->cfg.broker = NULL; /* borrowed: the broker copied what it needs */
    /*
     * Several coordinators may share a PostgreSQL catalog: one leads. The
     * first try is made here, so that a lone coordinator (and every one on
     * SQLite, which leads at once with epoch 0) starts leading, or fails
     * to start on a catalog it cannot read. A standby tries again every
     * second from the loop (coord_lead_cb). One made again after a
     * step-down opens the catalog there too, as soon as the loop runs, and
     * tries the lock after COORD_STEPDOWN_HOLD_MS: whatever fails then
     * (PostgreSQL still down, the load) leaves it a standby on its address
     * instead of ending the process.
     */
    if (cfg->after_step_down) {
        c->lead_hold_until_ms = coord_now_ms() + COORD_STEPDOWN_HOLD_MS;
        log_info("standby", "catalog=%s addr=%s retry=1s (after a step-down)", c->db_path,
                 c->advertise);
        event_add(c->lead_ev, &second);
        event_active(c->lead_ev, EV_TIMEOUT, 1);
        return c;
    }
    r = catalog_lead(c->cat, c->advertise, &c->lead_epoch);
    if (r < 0) {
        snprintf(err, err_len, "catalog %s: taking the lead: %s", c->db_path,
                 catalog_errmsg(c->cat));
        goto fail;
    }
    if (r == 1) {
        if (coord_take_lead(c, err, err_len) < 0)
            goto fail;
    } else {
        log_info("standby", "catalog=%s addr=%s retry=1s (another coordinator leads)", c->db_path,
                 c->advertise);
        coord_lead_cb(-1, 0, c);
        event_add(c->lead_ev, &second);
    }
    return c;
fail:
    coord_free(c);
    return NULL;
}

const char *coord_bound(const struct coord *c)
{
    return c->bound;
}

/* Frees an interned table name (strmap_foreach over c->table_names). */
static int coord_free_value(const char *key, void *value, void *arg)
{
    (void)key;
    (void)arg;
    free(value);
    return 0;
}

void coord_free(struct coord *c)
{
    if (c == NULL)
        return;
    http_server_free(c->http);
    /* After the server, whose requests its queries were (broker.h). */
    broker_free(c->broker);
    /* Clients cancel their requests; the placer must not see those answers. */
    placer_free(c->placer);
    c->placer = NULL;
    if (c->nodes != NULL)
        strmap_foreach(c->nodes, coord_free_node, NULL);
    /* A deposed leader commits nothing more: the new one owns the catalog. */
    if (c->cat != NULL && c->lost_lead)
        coord_rollback(c);
    else if (c->cat != NULL)
        coord_flush(c);
    catalog_close(c->cat);
    storm_free(c->storm);
    pmap_free(c->pmap);
    if (c->segs != NULL)
        keymap_foreach(c->segs, coord_free_seg, NULL);
    for (size_t i = 0; i < c->n_removed; i++)
        coord_free_seg(NULL, c->removed[i], NULL);
    free(c->removed);
    keymap_free(c->segs);
    if (c->table_names != NULL)
        strmap_foreach(c->table_names, coord_free_value, NULL);
    strmap_free(c->table_names);
    for (int i = 0; i < 3; i++)
        ordset_free(c->by_state[i]);
    strmap_free(c->nodes);
    if (c->placement != NULL)
        c->placement->stop(c);
    if (c->tick_ev != NULL)
        event_free(c->tick_ev);
    if (c->commit_ev != NULL)
        event_free(c->commit_ev);
    if (c->membership_ev != NULL)
        event_free(c->membership_ev);
    if (c->flush_ev != NULL)
        event_free(c->flush_ev);
    if (c->notes_ev != NULL)
        event_free(c->notes_ev);
    if (c->lead_ev != NULL)
        event_free(c->lead_ev);
    free(c->noted);
    free(c->report_scratch);
    reconcile_plan_done(&c->plan);
    free(c->token);
    free(c->db_path);
    free(c->locator);
    free(c);
}

bool coord_lost_lead(const struct coord *c)
{
    return c != NULL && c->lost_lead;
}

uint64_t coord_elections(const struct coord *c)
{
    return c != NULL ? c->elections : 0;
}
