/*
 * farm: N virtual nodes on one event loop (see farm.h). Every virtual node
 * owns an HTTP server, a reporter, a map of the segments it holds and the
 * admission state, cost model and ledger a real node keeps. One loading
 * queue serves the whole farm: --load-time is the same for every load, so
 * the queue is in completion order and one timer, armed for its head, ends
 * every load.
 *
 * Each virtual node also keeps its set as a report lists it (a repset, so
 * the set's digest is kept as it changes) and the ids changed since its
 * last report: its reports are built from those (reporter_source.changes),
 * not by listing and diffing every copy it holds.
 *
 * Expected load: 10^6 segments over 1,000 virtual nodes; an assignment
 * costs a hash lookup and one admission decision (hundreds of ns), a report
 * O(changes since the last), a whole report O(segments held), a tick
 * (every 100 ms) one admission_observe() per virtual node.
 */
#include "farm.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

#include "admission.h"
#include "api.h"
#include "cli.h"
#include "clock.h"
#include "config.h"
#include "coordlist.h"
#include "daemon.h"
#include "http.h"
#include "log.h"
#include "pbhttp.h"
#include "reason.h"
#include "report.h"
#include "repset.h"
#include "signals.h"
#include "sluice_config.h"
#include "strmap.h"
#include "wire.h"
#include "xmalloc.h"

#define N_OPTS(a)    (sizeof(a) / sizeof((a)[0]))
#define FARM_TICK_MS 100
/* Descriptors one virtual node may hold: its listener, the coordinator's
 * connection to it, its own connection to the coordinator, and slack. */
#define FARM_FDS_PER_NODE 4

struct farm;
struct farm_vnode;

/*
 * A segment a virtual node holds, LOADING or LOADED. Its owner is its
 * virtual node's map, except for one dropped while LOADING (gone): that one
 * has left the map and is owned by the loading queue, which frees it.
 */
struct farm_seg {
    struct farm_vnode *vnode;
    struct farm_seg *next_loading; /* the farm's loading queue */
    enum wire_segment_state state;
    bool gone; /* dropped while LOADING: out of the map */
    uint64_t row_count, avg_row_size, digest;
    uint64_t mem_request, mem_limit;
    uint64_t footprint; /* what it holds once LOADED */
    uint64_t done_ms;   /* when its load ends */
    char id[];
};

struct farm_vnode {
    struct farm *farm;
    char id[WIRE_ID_MAX + 1];
    char addr[64];
    bool dead;
    struct http_server *http;
    struct reporter *reporter;
    struct strmap *segs; /* id -> struct farm_seg */
    struct repset *cur;  /* the set as a report lists it, with its digest */
    struct strmap *dirty; /* ids changed (or gone) since the last report (-> the vnode) */
    uint64_t capacity;
    uint64_t footprint, peak; /* LOADED footprints now, and the most ever */
    unsigned loading;
    struct admission_state astate;
    struct admission_cost cost;
    struct admission_ledger *ledger;
    uint32_t rng;
    uint64_t accepted, refused;
    struct epoch_fence fence; /* the highest coordinator epoch seen (memory only) */
};

struct farm {
    struct event_base *base;
    struct admission_config acfg;
    uint64_t seed;
    double fp_median, fp_sigma, invalid_fraction;
    uint64_t load_ms;
    size_t n;
    struct farm_vnode *vnodes;
    struct strmap *by_id; /* node id -> struct farm_vnode */
    struct farm_seg *load_head, *load_tail;
    struct event *load_ev, *tick_ev;
    struct http_server *ctl;
    char ctl_addr[128];
    struct coordlist *coordinators; /* --coordinator, parsed once: each reporter copies it */
    char *token;
    uint64_t report_ms;
};

/* ---- pure draws ------------------------------------------------------- */

/* splitmix64: a good 64-bit mix of a counter. */
static uint64_t farm_mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* FNV-1a of id, mixed with seed and a stream number (one per kind of draw). */
static uint64_t farm_hash(uint64_t seed, const char *id, uint64_t stream)
{
    uint64_t h = 0xcbf29ce484222325ULL;

    for (const unsigned char *p = (const unsigned char *)id; *p != '\0'; p++)
        h = (h ^ *p) * 0x100000001b3ULL;
    return farm_mix(h ^ farm_mix(seed ^ farm_mix(stream)));
}

/* A uniform double in (0, 1) from the top 53 bits of x. */
static double farm_unit(uint64_t x)
{
    return ((double)(x >> 11) + 0.5) / 9007199254740992.0;
}

uint64_t farm_footprint(uint64_t seed, const char *id, uint64_t raw, double median, double sigma)
{
    double u1 = farm_unit(farm_hash(seed, id, 1)), u2 = farm_unit(farm_hash(seed, id, 2));
    double z = sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2); /* Box-Muller */
    double v = (double)(raw > 0 ? raw : 1) * median * exp(sigma * z);

    if (!(v >= 1.0))
        return 1;
    if (v >= 18446744073709549568.0)
        return UINT64_MAX;
    return (uint64_t)v;
}

bool farm_invalid(uint64_t seed, const char *id, double fraction)
{
    return fraction > 0 && farm_unit(farm_hash(seed, id, 3)) < fraction;
}

/* ---- one virtual node ------------------------------------------------- */

static uint32_t farm_random(struct farm_vnode *v)
{
    v->rng ^= v->rng << 13;
    v->rng ^= v->rng >> 17;
    v->rng ^= v->rng << 5;
    return v->rng;
}

static uint64_t farm_now_ms(void)
{
    return clock_mono_ns() / 1000000;
}

/*
 * The admission signals of a virtual node, through the node's own fusion:
 * no sampler snapshot (no PSI, no refaults, no time to exhaustion), the
 * LOADED footprints as mapped bytes, the ledger's reservations, and the
 * capacity as the memory limit.
 */
static void farm_signals(const struct farm_vnode *v, struct admission_signals *sig)
{
    struct store_totals t;
    struct signals_inputs in;

    memset(&t, 0, sizeof(t));
    t.mapped_bytes = v->footprint;
    t.loads_in_flight = v->loading;
    memset(&in, 0, sizeof(in));
    in.now_ms = farm_now_ms();
    in.totals = &t;
    in.reserved_bytes = admission_ledger_mem_bytes(v->ledger);
    in.disk_free_bytes = UINT64_MAX;
    signals_fuse(&in, sig);
    sig->limit_bytes = v->capacity;
}

static void farm_fill_pressure(const struct farm_vnode *v, struct wire_pressure *p)
{
    memset(p, 0, sizeof(*p));
    p->usage_bytes = v->footprint;
    p->wss_bytes = v->footprint;
    p->limit_bytes = v->capacity;
    p->loads_in_flight = v->loading;
    p->load_slots = admission_max_loads(&v->farm->acfg, &v->astate, farm_now_ms());
    p->io_mode = WIRE_IO_MMAP;
    if (v->farm->acfg.budget_bytes == 0)
        p->admit_watermark = v->farm->acfg.high_watermark;
}

/* A held segment as a report lists it. */
static void farm_seg_status(const struct farm_seg *s, struct wire_segment_status *o)
{
    memset(o, 0, sizeof(*o));
    memcpy(o->segment_id, s->id, strlen(s->id) + 1); /* checked on the wire: fits */
    o->state = s->state;
    o->row_count = s->row_count;
    o->avg_row_size = s->avg_row_size;
    o->digest = s->digest;
    o->file_bytes = s->row_count * s->avg_row_size;
    o->mem_request_bytes = s->mem_request;
    o->mem_limit_bytes = s->mem_limit;
    if (s->state == WIRE_SEG_LOADED) {
        o->footprint_bytes = s->footprint;
        o->over_limit = s->mem_limit > 0 && s->footprint > s->mem_limit;
    }
}

/* The segment's status changed (or it is new): the set and the next report learn it. */
static void farm_seg_changed(struct farm_vnode *v, const struct farm_seg *s)
{
    struct wire_segment_status st;

    farm_seg_status(s, &st);
    repset_put(v->cur, &st);
    (void)strmap_put(v->dirty, s->id, v);
}

/* The segment left the virtual node. */
static void farm_seg_gone(struct farm_vnode *v, const char *id)
{
    (void)repset_remove(v->cur, id);
    (void)strmap_put(v->dirty, id, v);
}

/* Puts a segment at the tail of the loading queue and arms the timer if it is the head. */
static void farm_load_start(struct farm *f, struct farm_seg *s)
{
    s->done_ms = farm_now_ms() + f->load_ms;
    s->next_loading = NULL;
    if (f->load_tail != NULL)
        f->load_tail->next_loading = s;
    else
        f->load_head = s;
    f->load_tail = s;
    if (f->load_head == s) {
        struct timeval tv = {(time_t)(f->load_ms / 1000), (suseconds_t)(f->load_ms % 1000) * 1000};
        evtimer_add(f->load_ev, &tv);
    }
}

/*
 * Decides one assignment as node_assign() does: a segment already held is a
 * retry (202 without admission, 409 if held with other contents), else the
 * admission decision, then the "store": 422 for the simulated invalid
 * files, else LOADING. Fills *ret as the single endpoint would answer.
 */
static void farm_assign(struct farm_vnode *v, const struct wire_assign_request *m,
                        struct wire_assign_response *ret)
{
    struct farm *f = v->farm;
    struct farm_seg *s = strmap_get(v->segs, m->segment_id);
    enum wire_reason reason = WIRE_REASON_NONE;
    uint32_t retry_ms = 0;
    int status = 202;

    memset(ret, 0, sizeof(*ret));
    if (s != NULL) {
        if (s->row_count != m->row_count || s->avg_row_size != m->avg_row_size ||
            s->digest != m->digest) {
            status = 409;
            snprintf(ret->detail, sizeof(ret->detail),
                     "segment %s is held here with other contents", m->segment_id);
        }
    } else {
        struct admission_signals sig;
        struct admission_request ar;
        struct admission_verdict verdict;
        uint64_t raw = m->row_count * m->avg_row_size;

        farm_signals(v, &sig);
        ar.cost_bytes = admission_cost_declared(
            admission_cost_estimate(&v->cost, m->row_count, m->avg_row_size), m->mem_request_bytes);
        ar.file_bytes = raw;
        admission_decide(&f->acfg, &sig, &v->astate, &ar, farm_random(v), &verdict);
        if (!verdict.accept) {
            status = reason_http_status(verdict.reason);
            reason = verdict.reason;
            retry_ms = verdict.retry_after_ms;
            snprintf(ret->detail, sizeof(ret->detail), "%s", verdict.detail);
        } else if (farm_invalid(f->seed, m->segment_id, f->invalid_fraction)) {
            status = 422;
            reason = WIRE_REASON_SEGMENT_INVALID;
            snprintf(ret->detail, sizeof(ret->detail),
                     "farm: segment %s is one of the simulated invalid files", m->segment_id);
        } else {
            size_t idlen = strlen(m->segment_id);
            uint64_t cost = ar.cost_bytes > 0 ? ar.cost_bytes : 1;

            s = xcalloc(1, sizeof(*s) + idlen + 1);
            memcpy(s->id, m->segment_id, idlen + 1);
            s->vnode = v;
            s->state = WIRE_SEG_LOADING;
            s->row_count = m->row_count;
            s->avg_row_size = m->avg_row_size;
            s->digest = m->digest;
            s->mem_request = m->mem_request_bytes;
            s->mem_limit = m->mem_limit_bytes;
            s->footprint = farm_footprint(f->seed, m->segment_id, raw, f->fp_median, f->fp_sigma);
            (void)strmap_put(v->segs, s->id, s);
            admission_ledger_pend(v->ledger, cost);
            admission_ledger_commit(v->ledger, s->id, cost, raw);
            v->loading++;
            farm_seg_changed(v, s);
            farm_load_start(f, s);
        }
    }
    if (status == 202)
        v->accepted++;
    else
        v->refused++;
    ret->verdict = status == 202 ? WIRE_VERDICT_ACCEPTED : WIRE_VERDICT_REJECTED;
    ret->reason = reason;
    ret->retry_after_ms = retry_ms;
    ret->status = (uint32_t)status;
    farm_fill_pressure(v, &ret->pressure);
}

/* Ends every load that is due: LOADED with its footprint, the cost model learns. */
static void farm_load_cb(evutil_socket_t fd, short what, void *arg)
{
    struct farm *f = arg;
    uint64_t now = farm_now_ms();
    struct farm_seg *s;

    (void)fd;
    (void)what;
    while ((s = f->load_head) != NULL && s->done_ms <= now) {
        struct farm_vnode *v = s->vnode;
        struct admission_hold h;

        f->load_head = s->next_loading;
        if (f->load_head == NULL)
            f->load_tail = NULL;
        if (v->dead) {
            if (s->gone)
                free(s);
            continue; /* the rest stay in the dead node's map until farm_free() */
        }
        v->loading--;
        if (s->gone) {
            (void)admission_ledger_release(v->ledger, s->id, NULL);
            free(s);
            continue;
        }
        if (admission_ledger_release(v->ledger, s->id, &h) == 0 && h.cost > 0)
            admission_cost_learn(&v->cost, h.raw, s->footprint);
        s->state = WIRE_SEG_LOADED;
        farm_seg_changed(v, s);
        reporter_soon(v->reporter); /* as a real node does when a load ends */
        v->footprint += s->footprint;
        if (v->footprint > v->peak)
            v->peak = v->footprint;
    }
    if (s != NULL) {
        uint64_t wait = s->done_ms - now;
        struct timeval tv = {(time_t)(wait / 1000), (suseconds_t)(wait % 1000) * 1000};
        evtimer_add(f->load_ev, &tv);
    }
}

/* The admission tick: only admission_observe() reopens a gate. */
static void farm_tick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct farm *f = arg;

    (void)fd;
    (void)what;
    for (size_t i = 0; i < f->n; i++) {
        struct farm_vnode *v = &f->vnodes[i];
        struct admission_signals sig;

        if (v->dead)
            continue;
        farm_signals(v, &sig);
        admission_observe(&f->acfg, &sig, &v->astate);
    }
}

static void farm_assign_cb(struct evhttp_request *req, const char *rest, void *arg)
{
    struct farm_vnode *v = arg;
    struct wire_assign_request m;
    struct wire_assign_response resp;
    struct wire_error err;
    const void *body;
    size_t len;

    (void)rest;
    if (pbhttp_take_body(req, &body, &len) != 0 ||
        pbhttp_decoded(req, wire_assign_request_decode(body, len, &m, &err), &err) != 0)
        return;
    farm_assign(v, &m, &resp);
    api_assign_send(req, &resp);
}

static void farm_assign_batch_cb(struct evhttp_request *req, const char *rest, void *arg)
{
    struct farm_vnode *v = arg;
    struct wire_assign_batch m;
    struct wire_assign_batch_response resp;
    struct wire_error err;
    const void *body;
    uint8_t *buf;
    size_t len;

    (void)rest;
    if (pbhttp_take_body(req, &body, &len) != 0 ||
        pbhttp_decoded(req, wire_assign_batch_decode(body, len, &m, &err), &err) != 0)
        return;
    /* A deposed coordinator's batch is refused whole, as a real node does (node/api.c). */
    if (epoch_admit(&v->fence, m.epoch, err.message, sizeof(err.message)) < 0) {
        pbhttp_reply_error(req, 409, "stale_epoch", err.message);
        wire_assign_batch_done(&m);
        return;
    }
    resp.n = m.n;
    resp.results = xcalloc(m.n > 0 ? m.n : 1, sizeof(*resp.results));
    for (size_t i = 0; i < m.n; i++)
        farm_assign(v, &m.assignments[i], &resp.results[i]);
    wire_assign_batch_done(&m);
    buf = wire_assign_batch_response_encode(&resp, &len);
    http_reply(req, 200, WIRE_CONTENT_TYPE, buf, len);
    free(buf);
    wire_assign_batch_response_done(&resp);
}

static void farm_healthz_cb(struct evhttp_request *req, const char *rest, void *arg)
{
    (void)rest;
    (void)arg;
    http_reply_text(req, 200, "ok\n");
}

/* ---- the reporter's source -------------------------------------------- */

static void farm_report_fill(void *arg, enum wire_node_state *state, struct wire_pressure *p)
{
    struct farm_vnode *v = arg;

    *state = WIRE_NODE_SERVING;
    farm_fill_pressure(v, p);
}

static void farm_report_segments(void *arg, struct wire_node_status *ret)
{
    struct farm_vnode *v = arg;
    size_t cap = 0;

    ret->segments = NULL;
    ret->n_segments = repset_export(v->cur, &ret->segments, &cap);
}

struct farm_changes {
    struct farm_vnode *v;
    struct wire_node_status *st;
    char (*removed)[WIRE_ID_MAX + 1];
    size_t n_removed;
};

static int farm_change_one(const char *id, void *value, void *arg)
{
    struct farm_changes *ch = arg;

    if (repset_get(ch->v->cur, id, &ch->st->segments[ch->st->n_segments]))
        ch->st->n_segments++;
    else
        snprintf(ch->removed[ch->n_removed++], sizeof(ch->removed[0]), "%s", id);
    return 0;
}

static void farm_report_changes(void *arg, struct wire_node_status *ret,
                                char (**ret_removed)[WIRE_ID_MAX + 1], size_t *ret_n_removed,
                                uint64_t *ret_set_count, uint64_t *ret_set_hash)
{
    struct farm_vnode *v = arg;
    size_t n = strmap_count(v->dirty);
    struct farm_changes ch = {v, ret, xcalloc(n > 0 ? n : 1, sizeof(*ch.removed)), 0};

    ret->segments = xcalloc(n > 0 ? n : 1, sizeof(*ret->segments));
    ret->n_segments = 0;
    (void)strmap_foreach(v->dirty, farm_change_one, &ch);
    if (n > 0) {
        strmap_free(v->dirty);
        v->dirty = strmap_new();
    }
    *ret_removed = ch.removed;
    *ret_n_removed = ch.n_removed;
    *ret_set_count = repset_count(v->cur);
    *ret_set_hash = repset_hash(v->cur);
}

/* The coordinator's drop: LOADED memory is freed at once, a load in flight when it ends. */
static void farm_report_drop(void *arg, const char *id)
{
    struct farm_vnode *v = arg;
    struct farm_seg *s = strmap_get(v->segs, id);

    if (s == NULL)
        return;
    (void)strmap_remove(v->segs, id);
    farm_seg_gone(v, id);
    if (s->state == WIRE_SEG_LOADING) {
        s->gone = true; /* the loading queue owns it now */
        return;
    }
    v->footprint -= s->footprint;
    free(s);
}

static const struct reporter_source farm_source = {
    .fill = farm_report_fill,
    .segments = farm_report_segments,
    .drop = farm_report_drop,
    .changes = farm_report_changes,
};

/* ---- the control server ----------------------------------------------- */

/*
 * GET /v1/farm: a header line, then per virtual node
 * "id addr state loaded loading footprint_bytes peak_bytes capacity_bytes
 * accepted refused cost_factor", state "up" or "dead".
 */
static void farm_list_cb(struct evhttp_request *req, const char *rest, void *arg)
{
    struct farm *f = arg;
    struct evbuffer *b = evbuffer_new();

    (void)rest;
    evbuffer_add_printf(b, "# id addr state loaded loading footprint_bytes peak_bytes "
                           "capacity_bytes accepted refused cost_factor\n");
    for (size_t i = 0; i < f->n; i++) {
        const struct farm_vnode *v = &f->vnodes[i];
        size_t held = v->dead ? 0 : strmap_count(v->segs);

        evbuffer_add_printf(
            b, "%s %s %s %zu %u %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %.3f\n",
            v->id, v->addr, v->dead ? "dead" : "up", held >= v->loading ? held - v->loading : 0,
            v->dead ? 0 : v->loading, v->footprint, v->peak, v->capacity, v->accepted, v->refused,
            v->cost.factor > 0 ? v->cost.factor : 1.0);
    }
    http_reply(req, 200, "text/plain; charset=utf-8", evbuffer_pullup(b, -1),
               evbuffer_get_length(b));
    evbuffer_free(b);
}

/* Stops a virtual node as kill -9 would: no goodbye, its port and reports just stop. */
static void farm_kill(struct farm_vnode *v)
{
    reporter_free(v->reporter);
    v->reporter = NULL;
    http_server_free(v->http);
    v->http = NULL;
    v->dead = true;
    v->loading = 0;
    v->footprint = 0;
}

static void farm_kill_cb(struct evhttp_request *req, const char *rest, void *arg)
{
    struct farm *f = arg;
    struct farm_vnode *v = strmap_get(f->by_id, rest);

    if (v == NULL) {
        pbhttp_reply_error(req, 404, "not_found", "no virtual node with that id");
        return;
    }
    if (!v->dead) {
        log_info("vnode_killed", "node_id=%s addr=%s segments=%zu", v->id, v->addr,
                 strmap_count(v->segs));
        farm_kill(v);
    }
    http_reply_text(req, 200, "killed %s\n", v->id);
}

/* ---- start and stop --------------------------------------------------- */

/*
 * Raises the soft RLIMIT_NOFILE to the hard one and checks that it covers
 * want descriptors. 0, or -EMFILE with err naming both figures.
 */
static int farm_fd_limit(uint64_t want, char *err, size_t len)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
        snprintf(err, len, "cannot read RLIMIT_NOFILE: %s", strerror(errno));
        return -errno;
    }
    if (rl.rlim_cur != rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
        (void)getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        snprintf(err, len,
                 "--nodes needs about %" PRIu64 " open files, and RLIMIT_NOFILE allows %llu "
                 "(hard limit %llu): raise it (ulimit -n) or run fewer virtual nodes",
                 want, (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max);
        return -EMFILE;
    }
    return 0;
}

static int farm_free_seg(const char *id, void *value, void *arg)
{
    (void)id;
    (void)arg;
    free(value);
    return 0;
}

static void farm_free(struct farm *f)
{
    if (f == NULL)
        return;
    for (size_t i = 0; i < f->n; i++) {
        struct farm_vnode *v = &f->vnodes[i];

        reporter_free(v->reporter);
        http_server_free(v->http);
    }
    /* The queue owns only the segments dropped while loading; the maps own the rest. */
    while (f->load_head != NULL) {
        struct farm_seg *s = f->load_head;

        f->load_head = s->next_loading;
        if (s->gone)
            free(s);
    }
    for (size_t i = 0; i < f->n; i++) {
        struct farm_vnode *v = &f->vnodes[i];

        if (v->segs != NULL)
            (void)strmap_foreach(v->segs, farm_free_seg, NULL);
        strmap_free(v->segs);
        repset_free(v->cur);
        strmap_free(v->dirty);
        admission_ledger_free(v->ledger);
    }
    if (f->load_ev != NULL)
        event_free(f->load_ev);
    if (f->tick_ev != NULL)
        event_free(f->tick_ev);
    http_server_free(f->ctl);
    strmap_free(f->by_id);
    coordlist_free(f->coordinators);
    free(f->token);
    free(f->vnodes);
    free(f);
}

/* One virtual node's first report, staggered so that N nodes do not report in step. */
static void farm_report_start_cb(evutil_socket_t fd, short what, void *arg)
{
    struct farm_vnode *v = arg;
    struct farm *f = v->farm;
    struct reporter_config rc = {
        .coordinators = f->coordinators,
        .node_id = v->id,
        .advertise = v->addr,
        .token = f->token,
        .interval_ms = f->report_ms,
        .fence = &v->fence,
    };

    (void)fd;
    (void)what;
    if (v->dead || v->reporter != NULL)
        return;
    v->reporter = reporter_new(f->base, &rc, &farm_source, v);
}

/* What `sluice-node farm` was asked for. */
struct farm_config {
    size_t nodes;
    uint64_t seed;
    const char *coordinator, *listen, *prefix, *token;
    uint64_t capacity;
    double capacity_spread, fp_median, fp_sigma, invalid_fraction;
    uint64_t load_ms, report_ms;
    struct admission_config acfg;
    struct http_limits limits;
};

/* Starts every virtual node and the control server. NULL with err filled on failure. */
static struct farm *farm_new(struct event_base *base, const struct farm_config *cfg, char *err,
                             size_t err_len)
{
    struct farm *f = xcalloc(1, sizeof(*f));
    struct timeval tick = {0, FARM_TICK_MS * 1000};
    char ctl_bound[128];
    int width = 4, r;

    for (size_t k = cfg->nodes; k >= 10000; k /= 10)
        width++;
    f->base = base;
    f->acfg = cfg->acfg;
    f->seed = cfg->seed;
    f->fp_median = cfg->fp_median;
    f->fp_sigma = cfg->fp_sigma;
    f->invalid_fraction = cfg->invalid_fraction;
    f->load_ms = cfg->load_ms;
    f->report_ms = cfg->report_ms;
    if (coordlist_new(cfg->coordinator, &f->coordinators, err, err_len) < 0)
        goto fail;
    f->token = cfg->token != NULL ? xstrdup(cfg->token) : NULL;
    f->by_id = strmap_new();
    f->load_ev = evtimer_new(base, farm_load_cb, f);
    f->tick_ev = event_new(base, -1, EV_PERSIST, farm_tick_cb, f);
    if (farm_fd_limit((uint64_t)cfg->nodes * FARM_FDS_PER_NODE + 64, err, err_len) < 0)
        goto fail;
    f->vnodes = xcalloc(cfg->nodes, sizeof(*f->vnodes));
    for (size_t i = 0; i < cfg->nodes; i++) {
        struct farm_vnode *v = &f->vnodes[i];
        double u;
        char num[24];

        f->n = i + 1;
        v->farm = f;
        snprintf(num, sizeof(num), "%0*zu", width & 15, i);
        snprintf(v->id, sizeof(v->id), "%.100s-%s", cfg->prefix, num);
        u = farm_unit(farm_hash(cfg->seed, v->id, 4));
        v->capacity =
            (uint64_t)((double)cfg->capacity * (1.0 + cfg->capacity_spread * (2.0 * u - 1.0)));
        v->segs = strmap_new();
        v->cur = repset_new();
        v->dirty = strmap_new();
        v->ledger = admission_ledger_new();
        admission_cost_init(&v->cost);
        v->rng = (uint32_t)farm_mix(cfg->seed ^ (uint64_t)i) | 1u;
        v->http = http_server_new(base, &cfg->limits);
        http_server_set_name(v->http, "sluice-node/" SLUICE_VERSION);
        if (cfg->token != NULL)
            http_server_set_token(v->http, cfg->token);
        r = http_server_bind(v->http, "127.0.0.1:0", v->addr, sizeof(v->addr));
        if (r < 0) {
            snprintf(err, err_len, "virtual node %s: cannot listen on 127.0.0.1:0: %s", v->id,
                     strerror(-r));
            goto fail;
        }
        http_server_route(v->http, HTTP_POST, "/v1/assign", false, farm_assign_cb, v);
        http_server_route(v->http, HTTP_POST, "/v1/assign/batch", false, farm_assign_batch_cb, v);
        http_server_route_public(v->http, HTTP_GET, "/healthz", false, farm_healthz_cb, v);
        if (strmap_put(f->by_id, v->id, v) != NULL) {
            snprintf(err, err_len, "--node-prefix %s gives two nodes the id %s", cfg->prefix,
                     v->id);
            goto fail;
        }
    }
    f->ctl = http_server_new(base, &cfg->limits);
    http_server_set_name(f->ctl, "sluice-node-farm/" SLUICE_VERSION);
    if (cfg->token != NULL)
        http_server_set_token(f->ctl, cfg->token);
    r = http_server_bind(f->ctl, cfg->listen, ctl_bound, sizeof(ctl_bound));
    if (r < 0) {
        snprintf(err, err_len, "--listen %s: %s", cfg->listen, strerror(-r));
        goto fail;
    }
    http_server_route(f->ctl, HTTP_GET, "/v1/farm", false, farm_list_cb, f);
    http_server_route(f->ctl, HTTP_POST, "/v1/farm/kill/", true, farm_kill_cb, f);
    http_server_route_public(f->ctl, HTTP_GET, "/healthz", false, farm_healthz_cb, f);
    snprintf(f->ctl_addr, sizeof(f->ctl_addr), "%s", ctl_bound);
    /* First reports spread over one interval. */
    for (size_t i = 0; i < f->n; i++) {
        uint64_t at = cfg->report_ms * i / f->n;
        struct timeval tv = {(time_t)(at / 1000), (suseconds_t)(at % 1000) * 1000};

        if (event_base_once(base, -1, EV_TIMEOUT, farm_report_start_cb, &f->vnodes[i], &tv) < 0)
            fatal("event_base_once", NULL);
    }
    event_add(f->tick_ev, &tick);
    return f;
fail:
    farm_free(f);
    return NULL;
}

int farm_main(int argc, char **argv)
{
    struct daemon_server_flags srv = {0};
    int64_t nodes = 0, seed = 0;
    char *listen = NULL, *coordinator = NULL, *prefix = NULL;
    uint64_t capacity = 0, load_ms = 0, report_ms = 0;
    double spread = 0, median = 0, sigma = 0, invalid = 0;
    struct farm_config fc;
    const struct config_option opts[] = {
        {"nodes", "SLUICE_FARM_NODES", CONFIG_INT, &nodes, "10",
         "Virtual nodes to run, each on its own 127.0.0.1 port.", 1, 20000},
        {"seed", "SLUICE_FARM_SEED", CONFIG_INT, &seed, "1",
         "Seed of every draw (footprints, capacities, invalid files, Retry-After jitter).", 0,
         INT64_MAX},
        {"coordinator", "SLUICE_COORDINATOR", CONFIG_STRING, &coordinator, NULL,
         "Coordinator every virtual node reports to (host:port; several, comma-separated, to "
         "follow the leader among them).", .required = true},
        {"listen", "SLUICE_LISTEN", CONFIG_STRING, &listen, "127.0.0.1:7199",
         "Control server: /healthz, GET /v1/farm, POST /v1/farm/kill/{id} (port 0 picks one)."},
        {"node-prefix", "SLUICE_FARM_NODE_PREFIX", CONFIG_STRING, &prefix, "farm",
         "Virtual node ids are <prefix>-<number> (farm-0000, farm-0001, ...)."},
        {"capacity", "SLUICE_FARM_CAPACITY", CONFIG_SIZE, &capacity, "8G",
         "Simulated memory limit of each virtual node.", 1 << 20, INT64_MAX},
        {"capacity-spread", NULL, CONFIG_DOUBLE, &spread, "0",
         "Each node's capacity is drawn uniformly within +/- this fraction of --capacity.",
         .dmin = 0, .dmax = 0.9},
        {"footprint-ratio", NULL, CONFIG_DOUBLE, &median, "1.5",
         "Median of a loaded segment's footprint / (rows x avg_row_size).", .dmin = 0.01,
         .dmax = 100},
        {"footprint-sigma", NULL, CONFIG_DOUBLE, &sigma, "0.3",
         "Log-normal sigma of that ratio (0: every segment exactly at the median).", .dmin = 0,
         .dmax = 3},
        {"invalid-fraction", NULL, CONFIG_DOUBLE, &invalid, "0",
         "Fraction of segment ids answered 422 SEGMENT_INVALID, as files that do not verify.",
         .dmin = 0, .dmax = 1},
        {"load-time", "SLUICE_FARM_LOAD_TIME", CONFIG_DURATION, &load_ms, "20ms",
         "How long a simulated load stays LOADING.", 0, 3600000},
        {"report-interval", "SLUICE_REPORT_INTERVAL", CONFIG_DURATION, &report_ms, "1s",
         "How often each virtual node reports.", 100, 60000},
        {"max-loads", "SLUICE_MAX_LOADS", CONFIG_INT, &fc.acfg.max_loads, "4",
         "Loads in flight per virtual node; more get LOAD_CONCURRENCY.", 1, 1024},
        {"admit-high-watermark", "SLUICE_ADMIT_HIGH_WATERMARK", CONFIG_DOUBLE,
         &fc.acfg.high_watermark, "0.85", "Admit limit as a fraction of the capacity.",
         .dmin = 0.05, .dmax = 1.0},
        {"retry-concurrency", NULL, CONFIG_DURATION, &fc.acfg.retry_concurrency_ms, "250ms",
         "Retry-After of LOAD_CONCURRENCY.", 100, 3600000},
        {"retry-capacity", NULL, CONFIG_DURATION, &fc.acfg.retry_capacity_ms, "60s",
         "Retry-After of MEM_CAPACITY.", 100, 3600000},
        DAEMON_SERVER_OPTIONS(srv),
    };
    struct event_base *base = NULL;
    struct farm *f = NULL;
    char *token = NULL;
    char err[512], fields[600] = "";
    int next, rc = 1;

    memset(&fc, 0, sizeof(fc));
    fc.acfg = admission_config_default();
    cli_parse("sluice-node", opts, N_OPTS(opts), argc, argv, &next, "sluice-node farm [flags]",
              "A test tool: run --nodes virtual nodes in one process, each with its own port "
              "and node id, reporting to --coordinator. Each runs the node's admission code on "
              "a simulated capacity and seeded segment footprints, and keeps no segment data.",
              0, 0);
    {
        char aerr[256];

        if (admission_config_check(&fc.acfg, aerr, sizeof(aerr)) < 0) {
            fprintf(stderr, "sluice-node farm: %s\n", aerr);
            exit(CLI_EXIT_USAGE);
        }
    }
    if (prefix[0] == '\0' || strlen(prefix) > 100 ||
        strspn(prefix, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") !=
            strlen(prefix)) {
        fprintf(stderr, "sluice-node farm: --node-prefix must be 1 to 100 of [A-Za-z0-9._-]\n");
        exit(CLI_EXIT_USAGE);
    }
    base = daemon_init("sluice-node farm", &srv, &token);
    fc.nodes = (size_t)nodes;
    fc.seed = (uint64_t)seed;
    fc.coordinator = coordinator;
    fc.listen = listen;
    fc.prefix = prefix;
    fc.token = token;
    fc.capacity = capacity;
    fc.capacity_spread = spread;
    fc.fp_median = median;
    fc.fp_sigma = sigma;
    fc.invalid_fraction = invalid;
    fc.load_ms = load_ms;
    fc.report_ms = report_ms;
    fc.limits = daemon_server_limits(&srv);
    f = farm_new(base, &fc, err, sizeof(err));
    if (f != NULL)
        snprintf(fields, sizeof(fields), "role=farm nodes=%zu first=%s coordinator=%s seed=%" PRIu64,
                 f->n, f->vnodes[0].addr, coordinator, fc.seed);
    rc = daemon_serve(base, &srv, f != NULL ? f->ctl_addr : NULL, err, fields);
    farm_free(f);
    daemon_done(base, token);
    config_free_strings(opts, N_OPTS(opts));
    return rc;
}
