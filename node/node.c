/*
 * node: the node daemon object. node_new wires the pools, the store, the
 * buffer pool, the sampler and the reporter, and arms the 100 ms tick;
 * node_assign is the one path an assignment takes, pushed or claimed.
 * Expected load: the tick, a residency measurement a second on a worker,
 * and one admission decision per assignment (microseconds).
 */
#include "node.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/http.h>

#include "api.h"
#include "claim.h"
#include "coordlist.h"
#include "log.h"
#include "mglru.h"
#include "sluice_config.h"
#include "node_int.h"
#include "pool.h"
#include "reason.h"
#include "shed.h"
#include "signals.h"
#include "xmalloc.h"

static uint32_t node_random(struct node *node)
{
    node->rng ^= node->rng << 13;
    node->rng ^= node->rng >> 17;
    node->rng ^= node->rng << 5;
    return node->rng;
}

/* Counts bytes a query touched, in the working-set estimator's window. */
void node_touch(struct node *node, uint64_t bytes)
{
    (void)wss_touch_add(&node->touched, node_now_ms() / 1000, bytes);
}

static uint64_t node_touched(struct node *node)
{
    return wss_touch_sum(&node->touched, node_now_ms() / 1000);
}

/* Direct mode's exact footprint: the pool and its tables, every heap, every entry. */
uint64_t node_direct_bytes(struct node *node, const struct store_totals *t)
{
    struct bufpool_stats ps;

    bufpool_stats(node->bufpool, &ps);
    return ps.budget_bytes + ps.overhead_bytes + t->index_bytes + t->meta_bytes;
}

/* The admission controller's view of the node right now. */
void node_signals(struct node *node, struct admission_signals *sig)
{
    uint64_t now_ns = clock_mono_ns();
    struct store_totals t;
    struct signals_inputs in;

    store_totals(node->store, &t);
    /* The newest sample, not the last tick's: sampler_read takes no lock and no syscall. */
    if (node->sampler != NULL && sampler_read(node->sampler, &node->snap) == 0)
        node->have_snap = true;
    memset(&in, 0, sizeof(in));
    in.now_ms = now_ns / 1000000;
    in.draining = node->draining;
    in.snap = node->have_snap ? &node->snap : NULL;
    in.totals = &t;
    in.direct = node->bufpool != NULL;
    if (in.direct)
        in.direct_bytes = node_direct_bytes(node, &t);
    else
        in.wss_estimate = wss_estimate(node->wss);
    in.reserved_bytes = admission_ledger_mem_bytes(node->ledger);
    in.p99_1s_ms = (double)latency_quantile(node->lat, now_ns, 1, 0.99) / 1e6;
    in.p99_10s_ms = (double)latency_quantile(node->lat, now_ns, 10, 0.99) / 1e6;
    in.baseline_p99_ms = (double)latency_baseline(node->lat) / 1e6;
    in.queries_10s = latency_count(node->lat, now_ns, 10);
    in.disk_free_bytes = node->disk_free_bytes;
    signals_fuse(&in, sig);
    sig->admit_watermark = node_watermark(node);
}

/* Processes other than self listed in a cgroup.procs text (one pid a line). */
static size_t node_other_procs(const char *text, long self)
{
    size_t n = 0;

    for (const char *p = text; *p != '\0';) {
        char *end;
        long pid = strtol(p, &end, 10);

        n += end != p && pid > 0 && pid != self;
        p = end + strcspn(end, "\n");
        p += *p == '\n';
    }
    return n;
}

/*
 * Whether the node is alone in its memory group: its cgroup's cgroup.procs
 * lists only itself. If not (other processes, or no memory cgroup found:
 * the host's figures), its usage, limit and working set are the group's
 * and MEM_CAPACITY is judged against what its neighbours use: said once at
 * start (memory_group_shared) and in every status (NodeStatus.warnings).
 */
static void node_memgroup_check(struct node *node)
{
    char *path, text[65536];
    size_t others = 0, n = 0;
    FILE *f;

    node->memgroup_note[0] = '\0';
    if (!node->have_snap || node->snap.cgroup_dir[0] == '\0') {
        snprintf(node->memgroup_note, sizeof(node->memgroup_note),
                 "not alone in its memory group: no memory cgroup of its own was found, so its "
                 "usage and limit are the host's; give each node its own group (README: "
                 "Running a cluster by hand)");
    } else {
        path = xasprintf("%s/cgroup.procs", node->snap.cgroup_dir);
        f = fopen(path, "re");
        if (f != NULL) {
            n = fread(text, 1, sizeof(text) - 1, f);
            fclose(f);
        }
        text[n] = '\0';
        others = node_other_procs(text, (long)getpid());
        if (others > 0)
            snprintf(node->memgroup_note, sizeof(node->memgroup_note),
                     "not alone in its memory group (%s%s: %zu other process%s): its usage, "
                     "limit and working set are the group's, and MEM_CAPACITY is judged against "
                     "what they use; give each node its own group (README: Running a cluster "
                     "by hand)",
                     n == sizeof(text) - 1 ? "at least " : "", path, others,
                     others == 1 ? "" : "es");
        free(path);
    }
    if (node->memgroup_note[0] != '\0')
        log_warn("memory_group_shared", "detail=%s", log_q(node->memgroup_note));
}

/*
 * The extra working-set sources: the memcg path lru_gen names (from
 * <proc_root>/self/cgroup), and with --damon the node's own kdamond. Neither
 * is fatal: status says what is missing and why.
 */
static void node_wss_sources_start(struct node *node, const struct node_config *cfg)
{
    char *path = xasprintf("%s/self/cgroup", cfg->proc_root != NULL ? cfg->proc_root : "/proc");
    char text[4096] = "";
    FILE *f = fopen(path, "re");

    node->sys_root = xstrdup(cfg->sys_root != NULL ? cfg->sys_root : "/sys");
    node->mglru_r = -ENOTSUP;
    if (f != NULL) {
        size_t n = fread(text, 1, sizeof(text) - 1, f);

        text[n] = '\0';
        fclose(f);
        if (mglru_memcg_path(text, node->memcg_path, sizeof(node->memcg_path)) < 0)
            node->memcg_path[0] = '\0';
    }
    free(path);
    if (!cfg->damon)
        return;
    if (damon_start(node->sys_root, getpid(), &node->damon, node->damon_why,
                    sizeof(node->damon_why)) == 0) {
        node->damon_on = true;
        log_info("damon", "kdamond=%s target_pid=%d", log_q(node->damon.dir), (int)getpid());
    } else {
        log_warn("damon_unavailable", "error=%s", log_q(node->damon_why));
    }
}

void node_wss_sources(const struct node *node, char *buf, size_t len)
{
    size_t used = strlen(buf);

    if (used + 1 >= len)
        return;
    if (node->mglru_r == 0)
        snprintf(buf + used, len - used, " mglru=%" PRIu64 "B", node->mglru_bytes);
    else
        snprintf(buf + used, len - used, " mglru=%s",
                 node->mglru_r == -ENOTSUP ? "absent" : strerror(-node->mglru_r));
    used = strlen(buf);
    if (used + 1 >= len)
        return;
    if (node->damon_on)
        snprintf(buf + used, len - used, " damon=%" PRIu64 "B", node->damon_bytes);
    else if (node->damon_why[0] != '\0')
        snprintf(buf + used, len - used, " damon=off (%.150s)", node->damon_why);
    else
        snprintf(buf + used, len - used, " damon=off");
}

/* The watermark in force: the adaptive one, else the configured one. */
double node_watermark(const struct node *node)
{
    return node->wm_on && node->wm.started ? node->wm.current : node->acfg.high_watermark;
}

/* Every tick, after admission observed: judge, step or drop, log a change. */
static void node_watermark_tick(struct node *node, const struct admission_signals *sig)
{
    double before = node_watermark(node), after;

    watermark_judge(&node->wmcfg, &node->acfg, sig, &node->astate, node->capacity_refused,
                    node->capacity_refused_ms, &node->wm_view);
    after = watermark_update(&node->wm, &node->wmcfg, node->wm_view.quiet, node->wm_view.breach,
                             sig->now_ms);
    if (after != before)
        log_info("admit_watermark", "transition=\"%.3f -> %.3f\" why=%s", before, after,
                 log_q(node->wm_view.why));
}

void node_fill_pressure(struct node *node, struct wire_pressure *p)
{
    const struct sampler_snapshot *s = &node->snap;
    struct store_totals t;

    memset(p, 0, sizeof(*p));
    store_totals(node->store, &t);
    p->loads_in_flight = t.loads_in_flight;
    p->queries_in_flight = node->queries_in_flight;
    p->p99_seconds = (double)latency_quantile(node->lat, clock_mono_ns(), 10, 0.99) * 1e-9;
    p->wss_bytes = wss_estimate(node->wss);
    p->pinned_bytes = t.pinned_bytes;
    if (node->have_snap) {
        p->tte_known = s->tte_valid && s->tte_ms != UINT64_MAX;
        p->tte_ms = p->tte_known ? s->tte_ms : 0;
        p->growth_bytes_per_s = s->growth_bytes_per_s;
        p->swapins_per_s = s->swapins_per_s;
        p->some_avg10 = s->some.avg10;
        p->full_avg10 = s->full.avg10;
        p->some_fraction = s->some_stall;
        p->full_fraction = s->full_stall;
        p->usage_bytes = s->cg_usage;
        p->limit_bytes = (s->have & SAMPLER_HAVE_LIMIT) ? s->limit_bytes : 0;
        p->psi_host_wide = s->psi_host_wide;
    }
    p->io_mode = node->bufpool != NULL ? WIRE_IO_DIRECT : WIRE_IO_MMAP;
    if (node->admission_on && node->acfg.budget_bytes == 0)
        p->admit_watermark = node_watermark(node);
    /* Admission off: no load bound to advertise (0: not said). */
    if (node->admission_on)
        p->load_slots = admission_max_loads(&node->acfg, &node->astate, node_now_ms());
    if (node->bufpool != NULL) {
        struct bufpool_stats ps;

        bufpool_stats(node->bufpool, &ps);
        p->pool_bytes = ps.budget_bytes;
        p->pool_hit_ratio = node->pool_hit_ratio;
        /* What the node holds, exactly, against what the cgroup counts. */
        p->wss_bytes = node_direct_bytes(node, &t);
    }
}

struct node_assign_ctx {
    struct node *node;
    char id[WIRE_ID_MAX + 1];
    uint64_t cost, raw; /* what admission counted (pending in the ledger); 0 when skipped */
    node_assign_fn fn;
    void *arg;
};

/* The Retry-After of a refusal that came from the store (after admission). */
static uint32_t node_store_retry_ms(const struct node *node, int status,
                                   enum wire_reason reason)
{
    if (status == 202 || status == 409 || status == 422)
        return 0;
    switch (reason) {
    case WIRE_REASON_DISK_FULL:
        return (uint32_t)node->acfg.retry_disk_ms;
    case WIRE_REASON_MEM_CAPACITY:
        return (uint32_t)node->acfg.retry_capacity_ms;
    case WIRE_REASON_DRAINING:
        return (uint32_t)node->acfg.retry_draining_ms;
    default:
        return 0;
    }
}

static void node_assign_done(int err, const char *detail, void *arg)
{
    struct node_assign_ctx *ctx = arg;
    struct node *node = ctx->node;
    enum wire_reason reason;
    int status = admission_store_answer(err, &reason);

    if (ctx->cost > 0) {
        /* Held until the load ends (node_load_cb), or no longer counted. */
        if (err == 0)
            admission_ledger_commit(node->ledger, ctx->id, ctx->cost, ctx->raw);
        else
            admission_ledger_unpend(node->ledger, ctx->cost);
    }
    if (status == 409)
        node->assign_conflicts++;
    ctx->fn(node, status, reason, node_store_retry_ms(node, status, reason), detail, ctx->arg);
    free(ctx);
}

/*
 * The store asks before a load starts, the file's header read: admission
 * decides MEM_CAPACITY for the heap its in-memory columns certainly take
 * beyond what the request's declared size was costed at, then DISK_FULL,
 * and holds both. Memory first, so that a refusal holds no disk.
 */
static int node_admit_load(void *arg, const char *id, uint64_t file_bytes, uint64_t heap_bytes,
                           int disk_err, uint64_t disk_avail, void *assign_arg, char *detail,
                           size_t len)
{
    struct node *node = arg;
    struct node_assign_ctx *ctx = assign_arg;
    uint64_t extra = 0;
    int r;

    /* Only when the header says more than the cost admitted (admission_heap_admit is 0 else). */
    if (ctx->cost > 0 && heap_bytes > ctx->cost && node->admission_on) {
        struct admission_signals sig;

        node_signals(node, &sig);
        r = admission_heap_admit(&node->acfg, &sig, ctx->cost, heap_bytes, &extra, detail, len);
        if (r < 0) {
            node->capacity_refused = true;
            node->capacity_refused_ms = sig.now_ms;
            return r;
        }
    }
    r = admission_disk_admit(&node->acfg, node->ledger, id, file_bytes, disk_err, disk_avail,
                             detail, len);
    if (r < 0)
        return r;
    if (extra > 0) {
        /* Pending with the rest of its cost: committed or released with it (node_assign_done). */
        admission_ledger_pend(node->ledger, extra);
        ctx->cost += extra;
    }
    return 0;
}

/*
 * Decides one assignment: admission (unless the node already holds the
 * segment, which makes this a retry), then the store. fn is called exactly
 * once, possibly before this returns.
 */
void node_assign(struct node *node, const struct wire_assign_request *m,
                           node_assign_fn fn, void *arg)
{
    struct node_assign_ctx *ctx = xcalloc(1, sizeof(*ctx));

    ctx->node = node;
    ctx->fn = fn;
    ctx->arg = arg;
    snprintf(ctx->id, sizeof(ctx->id), "%s", m->segment_id);
    if (node->id_conflict) {
        char detail[WIRE_DETAIL_MAX + 1];

        snprintf(detail, sizeof(detail), "node id conflict: %.200s", node->id_conflict_detail);
        free(ctx);
        fn(node, 503, WIRE_REASON_DRAINING, (uint32_t)node->acfg.retry_draining_ms, detail, arg);
        return;
    }
    if (!store_holds(node->store, m->segment_id) && (node->admission_on || node->draining)) {
        struct admission_signals sig;
        struct admission_request ar;
        struct admission_verdict v;
        uint64_t t0;

        node_signals(node, &sig);
        ar.cost_bytes = admission_cost_declared(
            admission_cost_estimate(&node->cost, m->row_count, m->avg_row_size),
            m->mem_request_bytes);
        ar.file_bytes = m->row_count * m->avg_row_size;
        t0 = clock_mono_ns();
        if (node->admission_on) {
            admission_decide(&node->acfg, &sig, &node->astate, &ar, node_random(node), &v);
        } else {
            /* Admission off (baseline mode): only draining refuses. */
            memset(&v, 0, sizeof(v));
            v.accept = false;
            v.reason = WIRE_REASON_DRAINING;
            v.retry_after_ms = (uint32_t)node->acfg.retry_draining_ms;
            snprintf(v.detail, sizeof(v.detail), "node is draining");
        }
        histogram_record(&node->decision_ns, clock_mono_ns() - t0);
        if (!v.accept && v.reason == WIRE_REASON_MEM_CAPACITY) {
            node->capacity_refused = true;
            node->capacity_refused_ms = sig.now_ms;
        }
        if (!v.accept) {
            int status = reason_http_status(v.reason);
            log_debug("assign_refused", "id=%s status=%d reason=%s retry_ms=%u detail=%s",
                      log_q(m->segment_id), status, reason_name(v.reason),
                      v.retry_after_ms, log_q(v.detail));
            free(ctx);
            fn(node, status, v.reason, v.retry_after_ms, v.detail, arg);
            return;
        }
        ctx->cost = ar.cost_bytes > 0 ? ar.cost_bytes : 1;
        ctx->raw = ar.file_bytes;
        admission_ledger_pend(node->ledger, ctx->cost);
    }
    store_assign(node->store, m, node_assign_done, ctx);
}

/* A load ended: release its reservation and learn from its real footprint. */
static void node_load_cb(const char *id, bool ok, uint64_t file_bytes, uint64_t index_bytes,
                        void *arg)
{
    struct node *node = arg;
    struct admission_hold h;

    /* The coordinator counts the copy outstanding until a report says how it ended. */
    reporter_soon(node->reporter);
    if (admission_ledger_release(node->ledger, id, &h) < 0 || h.cost == 0)
        return; /* a reload at start-up, or admission was skipped: nothing to learn */
    /* Direct mode holds a segment's heap and header in memory, not its file. */
    if (ok)
        admission_cost_learn(&node->cost, h.raw,
                             node->bufpool != NULL
                                 ? index_bytes + sizeof(struct segment_header)
                                 : file_bytes + index_bytes);
}

/* ---- pull mode -------------------------------------------------------- */

struct node_claim {
    struct node *node;
    size_t n, remaining, accepted;
};

static void node_claim_item_done(struct node *node, int status, enum wire_reason reason,
                                uint32_t retry_ms, const char *detail, void *arg)
{
    struct node_claim *cl = arg;

    if (status == 202)
        cl->accepted++;
    else
        node->claim_refused_total++;
    if (--cl->remaining > 0)
        return;
    node->claim_batch = claim_after_answers(node->claim_batch, cl->n, cl->accepted);
    node->claimed_total += cl->accepted;
    free(cl);
}

static void node_claim_answer_cb(int status, const struct http_client_reply *reply, void *arg)
{
    struct node *node = arg;
    struct wire_claim_response resp;
    struct wire_error err;
    struct node_claim *cl;

    node->claim_in_flight = false;
    (void)coordclient_answer(node->claim_client, status, reply);
    if (status != 200 || reply == NULL ||
        wire_claim_response_decode(reply->body, reply->body_len, &resp, &err) < 0)
        return;
    if (resp.n == 0) {
        wire_claim_response_done(&resp);
        return;
    }
    cl = xcalloc(1, sizeof(*cl));
    cl->node = node;
    cl->n = cl->remaining = resp.n;
    /* Each claimed segment goes through this node's own admission, like a push. */
    for (size_t i = 0, n = resp.n; i < n; i++)
        node_assign(node, &resp.assignments[i], node_claim_item_done, cl);
    wire_claim_response_done(&resp);
}

/* Claims more work while the gates are open and p99 is under the SLO. */
static void node_claim_tick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct node *node = arg;
    struct admission_signals sig;
    struct wire_claim_request req;
    uint8_t *body;
    size_t len;

    if (node->claim_in_flight || node->id_conflict)
        return;
    node_signals(node, &sig);
    if (claim_pressure(&node->acfg, &node->astate, &sig)) {
        node->claim_batch = claim_backoff(node->claim_batch);
        return;
    }
    memset(&req, 0, sizeof(req));
    snprintf(req.node_id, sizeof(req.node_id), "%s", node->node_id);
    req.max_segments = (uint32_t)node->claim_batch;
    body = wire_claim_request_encode(&req, &len);
    if (http_client_request(coordclient_client(node->claim_client), EVHTTP_REQ_POST, "/v1/claim", WIRE_CONTENT_TYPE,
                            body, len, node_claim_answer_cb, node) == 0)
        node->claim_in_flight = true;
    free(body);
}

/* Residency of every mapped segment and free disk, measured on a worker. */
struct node_residency {
    struct node *node;
    struct store_seg **segs;
    size_t n;
    uint64_t resident, disk_free;
    char *segdir;
    /* Extra working-set sources (copies: the worker shares nothing with the loop). */
    const char *sys_root; /* the node's, alive as long as the node */
    char memcg[256];
    int mglru_r;
    struct mglru_wss mglru;
    bool damon_on;
    struct damon_own damon;
    int damon_r;
    struct damon_wss dwss;
    char damon_err[200];
};

static void node_residency_work(void *arg)
{
    struct node_residency *r = arg;
    struct statvfs vfs;

    for (size_t i = 0; i < r->n; i++) {
        const struct segment_header *h = store_seg_header(r->segs[i]);
        const char *base = store_seg_base(r->segs[i]);

        if (base == NULL)
            continue; /* direct mode: nothing mapped */

        /* Mapped columns only: an anonymous column's file pages are never read again. */
        for (unsigned c = 0; c < h->column_count; c++) {
            uint64_t b = 0, start = h->columns[c].offset & ~(uint64_t)4095;
            uint64_t len = h->columns[c].offset + h->columns[c].length - start;

            if ((h->columns[c].flags & SEGMENT_COL_ANON) || h->columns[c].length == 0)
                continue;
            if (wss_resident_bytes(base + start, len, &b) == 0)
                r->resident += b;
        }
    }
    r->disk_free = statvfs(r->segdir, &vfs) == 0 ? (uint64_t)vfs.f_bavail * vfs.f_frsize
                                                 : UINT64_MAX;
    r->mglru_r = r->memcg[0] != '\0'
                     ? mglru_read(r->sys_root, r->memcg, MGLRU_YOUNG_DEFAULT, &r->mglru)
                     : -ENOENT;
    if (r->damon_on)
        r->damon_r = damon_read(&r->damon, &r->dwss, r->damon_err, sizeof(r->damon_err));
}

static void node_residency_done(void *arg)
{
    struct node_residency *r = arg;

    r->node->resident_bytes = r->resident;
    r->node->disk_free_bytes = r->disk_free;
    r->node->mglru_r = r->mglru_r;
    r->node->mglru_bytes = r->mglru_r == 0 ? r->mglru.young_bytes : 0;
    if (r->damon_on && r->node->damon_on) {
        r->node->damon_bytes = r->damon_r == 0 ? r->dwss.accessed_bytes : 0;
        if (r->damon_r == -ESTALE) {
            /* Not ours any more: never write to it again. */
            r->node->damon_on = false;
            r->node->damon.dir[0] = '\0';
            snprintf(r->node->damon_why, sizeof(r->node->damon_why), "%s", r->damon_err);
            log_warn("damon_lost", "error=%s", log_q(r->damon_err));
        }
    }
    r->node->residency_running = false;
    for (size_t i = 0; i < r->n; i++)
        store_seg_unref(r->segs[i]);
    free(r->segs);
    free(r->segdir);
    free(r);
}

/* Once a second: the pool's rates over the last second. */
static void node_pool_tick(struct node *node)
{
    struct bufpool_stats now, *prev = &node->pool_prev;
    uint64_t lookups, reads;

    bufpool_stats(node->bufpool, &now);
    lookups = (now.hits - prev->hits) + (now.misses - prev->misses);
    reads = now.reads - prev->reads;
    if (lookups > 0)
        node->pool_hit_ratio = (double)(now.hits - prev->hits) / (double)lookups;
    node->pool_misses_per_s = (double)(now.misses - prev->misses);
    node->pool_read_bytes_per_s = (double)(now.read_bytes - prev->read_bytes);
    node->pool_read_latency_s = reads > 0 ? (double)(now.read_ns - prev->read_ns) / 1e9 / (double)reads
                                         : 0;
    *prev = now;
}

/* Logs gate transitions ("open -> closed (reason)") and counts closings. */
static void node_note_gates(struct node *node, const bool *before)
{
    for (int g = ADMISSION_GATE_FIRST; g < WIRE_REASON_COUNT_; g++) {
        if (!admission_is_gate((enum wire_reason)g))
            continue;
        bool now = admission_gate_closed(&node->astate, (enum wire_reason)g);
        if (now == before[g])
            continue;
        if (now)
            node->gate_closed_total[g]++;
        log_info("admission_gate", "gate=%s transition=\"%s -> %s\"",
                 reason_name((enum wire_reason)g), before[g] ? "closed" : "open",
                 now ? "closed" : "open");
    }
}

/*
 * Every 100 ms: read the sampler's snapshot, update the working-set
 * estimate, let admission observe, and shed under sustained critical
 * pressure. Every second: the latency baseline and a residency measurement.
 */
static void node_tick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct node *node = arg;
    struct store_totals t;
    struct wss_inputs in;
    uint64_t now_ms = node_now_ms();
    bool before[WIRE_REASON_COUNT_];

    node->ticks++;
    if (node->sampler != NULL && sampler_read(node->sampler, &node->snap) == 0)
        node->have_snap = true;
    store_totals(node->store, &t);
    memset(&in, 0, sizeof(in));
    in.cgroup_usage = WSS_UNKNOWN;
    in.inactive_file = WSS_UNKNOWN;
    if (node->have_snap && (node->snap.have & SAMPLER_HAVE_CG_USAGE) &&
        (node->snap.have & SAMPLER_HAVE_CG_STAT)) {
        in.cgroup_usage = node->snap.cg_usage;
        in.inactive_file = node->snap.cg_inactive_file;
    }
    in.touched = node_touched(node);
    if (in.touched > t.mapped_bytes)
        in.touched = t.mapped_bytes;
    in.resident = node->resident_bytes;
    in.anon = t.index_bytes;
    in.mglru = node->mglru_bytes;
    in.damon = node->damon_bytes;
    wss_update(node->wss, &in, now_ms);
    if (node->admission_on) {
        struct admission_signals sig;

        for (int g = 0; g < WIRE_REASON_COUNT_; g++)
            before[g] = admission_gate_closed(&node->astate, (enum wire_reason)g);
        node_signals(node, &sig);
        admission_observe(&node->acfg, &sig, &node->astate);
        node_note_gates(node, before);
        if (node->wm_on)
            node_watermark_tick(node, &sig);
        if (admission_should_shed(&node->acfg, &node->astate, &sig)) {
            struct shed_candidate cand;
            const char *id = store_coldest(node->store, &cand);
            enum wire_reason why = shed_reason(&node->astate);
            char detail[200];

            if (id != NULL) {
                if (shed_over_limit(cand.footprint, cand.limit)) {
                    /* Taken first because it is over its declared limit: that is its reason. */
                    shed_detail_over_limit(why, &cand, &sig, detail, sizeof(detail));
                    why = WIRE_REASON_OVER_LIMIT;
                } else {
                    shed_detail(why, &sig, detail, sizeof(detail));
                }
                if (store_shed(node->store, id, why, detail) == 0)
                    node->shed_total[why]++;
            }
            admission_note_shed(&node->astate, now_ms);
        }
    }
    if (node->ticks % (1000 / NODE_TICK_MS) == 0)
        store_pin_tick(node->store, now_ms);
    if (node->ticks % (1000 / NODE_TICK_MS) == 0) {
        latency_tick(node->lat, clock_mono_ns());
        if (node->bufpool != NULL)
            node_pool_tick(node);
        if (!node->residency_running) {
            struct node_residency *r = xcalloc(1, sizeof(*r));
            r->node = node;
            r->n = store_loaded_refs(node->store, &r->segs);
            r->segdir = xstrdup(store_segdir(node->store));
            r->sys_root = node->sys_root;
            snprintf(r->memcg, sizeof(r->memcg), "%s", node->memcg_path);
            r->damon_on = node->damon_on;
            r->damon = node->damon;
            node->residency_running = true;
            pool_submit(node->pool, node_residency_work, node_residency_done, r);
        }
    }
}

static void node_report_fill(void *arg, enum wire_node_state *state, struct wire_pressure *p)
{
    struct node *node = arg;

    *state = node->draining ? WIRE_NODE_DRAINING : WIRE_NODE_SERVING;
    node_fill_pressure(node, p);
}

/* The reporter's segments: the store's, each FAILED one with its reason. */
static void node_report_segments(void *arg, struct wire_node_status *ret)
{
    struct node *node = arg;

    store_status(node->store, admission_load_reason, ret);
}

static void node_deleted_cb(int status, const char *detail, void *arg)
{
    char *id = arg;

    if (status != 200 && status != 404)
        log_warn("drop_failed", "id=%s status=%d detail=%s", log_q(id), status, log_q(detail));
    free(id);
}

/* The coordinator's answer says to drop id: unload it like DELETE /v1/segments/id. */
static void node_report_drop(void *arg, const char *id)
{
    struct node *node = arg;

    store_delete(node->store, id, node_deleted_cb, xstrdup(id));
}

/* The reporter's word on this node's id: detail while refused, NULL once accepted. */
static void node_conflict_cb(void *arg, const char *detail)
{
    struct node *node = arg;

    node->id_conflict = detail != NULL;
    snprintf(node->id_conflict_detail, sizeof(node->id_conflict_detail), "%s",
             detail != NULL ? detail : "");
}

/* "<short hostname>-<8 random hex digits>", in the characters an id may use. */
static void node_id_generate(char *ret, size_t len)
{
    char host[256] = "";
    uint32_t rnd = 0;
    size_t n = 0;

    if (gethostname(host, sizeof(host) - 1) < 0)
        host[0] = '\0';
    host[sizeof(host) - 1] = '\0';
    /* The first label, at most 40 characters, anything but [A-Za-z0-9_-] as '-'. */
    for (; host[n] != '\0' && host[n] != '.' && n < 40; n++)
        if (!isalnum((unsigned char)host[n]) && host[n] != '_' && host[n] != '-')
            host[n] = '-';
    host[n] = '\0';
    if (getrandom(&rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
        rnd = (uint32_t)(clock_mono_ns() ^ ((uint64_t)getpid() << 16));
    snprintf(ret, len, "%s-%08x", n > 0 ? host : "node", rnd);
}

/*
 * The node's id when --node-id is not given: read from <data_dir>/node-id,
 * or generated on first start and written there (tmp, fsync, rename, fsync
 * of the directory), so it survives restarts and differs between hosts and
 * data directories. Returns 0, or -errno / -EINVAL with err naming the file.
 */
static int node_id_load(const char *data_dir, char *ret, size_t len, char *err,
                            size_t err_len)
{
    char *path = xasprintf("%s/node-id", data_dir), *tmp = NULL;
    char line[WIRE_ID_MAX + 2] = "";
    struct wire_error we;
    FILE *f = fopen(path, "re");
    int fd = -1, r = 0;

    if (f != NULL) {
        if (fgets(line, sizeof(line), f) == NULL)
            line[0] = '\0';
        fclose(f);
        line[strcspn(line, "\n")] = '\0';
        if (wire_check_segment_id("node id", line, &we) < 0) {
            snprintf(err, err_len, "%s: %s (fix or remove the file, or pass --node-id)", path,
                     we.message);
            r = -EINVAL;
            goto out;
        }
        snprintf(ret, len, "%s", line);
        goto out;
    }
    if (errno != ENOENT) {
        r = -errno;
        snprintf(err, err_len, "%s: %s", path, strerror(errno));
        goto out;
    }
    node_id_generate(line, sizeof(line));
    tmp = xasprintf("%s.tmp", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || dprintf(fd, "%s\n", line) < 0 || fsync(fd) < 0 || rename(tmp, path) < 0) {
        r = -errno;
        snprintf(err, err_len, "cannot write %s: %s", path, strerror(errno));
        (void)unlink(tmp);
        goto out;
    }
    {
        int dfd = open(data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            (void)fsync(dfd);
            close(dfd);
        }
    }
    log_info("node_id_generated", "node_id=%s file=%s", log_q(line), log_q(path));
    snprintf(ret, len, "%s", line);
out:
    if (fd >= 0)
        close(fd);
    free(tmp);
    free(path);
    return r;
}

/*
 * The pool's size in direct mode. 0 asks for the default: half of the memory
 * limit the sampler found, at most 256 MiB, rounded down to a 256 KiB
 * multiple (256 MiB when no limit is known). The half left over holds the
 * process, the segments' heaps and the page cache of loads in flight;
 * admission then counts all of it exactly. An explicit budget at or above the
 * limit can never fit and is refused. Returns 0 and sets *ret_budget, or
 * -EINVAL with err set.
 */
static int node_cache_budget(uint64_t asked, bool have_snap, const struct sampler_snapshot *snap,
                             uint64_t *ret_budget, char *err, size_t err_len)
{
    const uint64_t cap = 256ull << 20, unit = 256ull << 10;
    bool limited = have_snap && (snap->have & SAMPLER_HAVE_LIMIT) && snap->limit_bytes > 0;
    uint64_t b = asked;

    if (asked == 0) {
        b = cap;
        if (limited && snap->limit_bytes / 2 < cap)
            b = snap->limit_bytes / 2 / unit * unit;
    } else if (limited && asked >= snap->limit_bytes) {
        snprintf(err, err_len,
                 "%" PRIu64 " bytes is at or above this node's memory limit (%" PRIu64
                 " bytes): the pool could never fit; lower it, or leave it 0 for half of the limit",
                 asked, snap->limit_bytes);
        return -EINVAL;
    }
    *ret_budget = b;
    return 0;
}

struct node *node_new(struct event_base *base, const struct node_config *cfg, char *err,
                              size_t err_len)
{
    struct node *node = xcalloc(1, sizeof(*node));
    struct coordlist *coordinators = NULL; /* --coordinator, parsed once: each client copies it */
    struct store_config sc = {
        .load_pool = NULL,
        .storage_root = cfg->storage_root,
        .data_dir = cfg->data_dir,
        .mlock_budget = cfg->mlock_budget,
    };
    int r;

    struct sampler_config smc = {
        .proc_root = cfg->proc_root,
        .sys_root = cfg->sys_root,
        .interval_ms = cfg->sample_ms,
        .psi_triggers = cfg->psi_triggers,
    };
    struct timeval tick = {0, NODE_TICK_MS * 1000};
    char serr[256];

    node->base = base;
    node->started_mono_ns = clock_mono_ns();
    node->rng = (uint32_t)(clock_mono_ns() | 1);
    histogram_reset(&node->query_latency);
    histogram_reset(&node->decision_ns);
    node->admission_on = cfg->admission_on;
    node->max_queries = cfg->max_queries > 0 ? cfg->max_queries : 64;
    node->acfg = cfg->admission;
    /* An explicit --admit-budget leaves no watermark to move. */
    node->wm_on = cfg->admission_on && cfg->watermark_adaptive && cfg->admission.budget_bytes == 0 &&
                  cfg->watermark.ceiling > cfg->admission.high_watermark;
    node->wmcfg = cfg->watermark;
    node->wmcfg.base = cfg->admission.high_watermark;
    node->wm_view.why = node->wm_on ? "starting" : "fixed";
    admission_cost_init(&node->cost);
    node->lat = latency_new(NULL);
    node->wss = wss_new(NULL);
    node->ledger = admission_ledger_new();
    node->disk_free_bytes = UINT64_MAX;
    node->pool = pool_new(base, cfg->workers);
    node->load_pool = pool_new_nice(base, cfg->load_workers > 0 ? cfg->load_workers : 2,
                                    cfg->load_nice);
    sc.load_pool = node->load_pool;
    /* The sampler first: direct mode sizes its pool from the memory limit. */
    /* Missing kernel files are not fatal: status says what was found. */
    node->sampler = sampler_start(&smc, serr, sizeof(serr));
    if (node->sampler == NULL) {
        log_warn("sampler_unavailable", "error=%s", log_q(serr));
        snprintf(node->sources, sizeof(node->sources), "sampler=off (%s)", serr);
    } else if (sampler_read(node->sampler, &node->snap) == 0) {
        node->have_snap = true;
        snprintf(node->sources, sizeof(node->sources), "cgroup=%s psi=%.200s%s trigger=%s%s%.100s",
                 sampler_cgroup_mode_name(node->snap.cgroup_mode), node->snap.psi_source,
                 strcmp(node->snap.psi_source, "none") == 0 ? ""
                 : node->snap.psi_host_wide                 ? " (host-wide)"
                                                           : " (cgroup)",
                 sampler_trigger_name(node->snap.trigger),
                 node->snap.trigger_reason[0] != '\0' ? ": " : "", node->snap.trigger_reason);
        log_info("signals", "sources=%s limit=%" PRIu64, log_q(node->sources),
                 node->snap.limit_bytes);
    }
    node_wss_sources_start(node, cfg);
    node_memgroup_check(node);
    if (cfg->io_direct) {
        char perr[200];

        uint64_t budget;

        r = node_cache_budget(cfg->cache_budget, node->have_snap, &node->snap, &budget, perr,
                              sizeof(perr));
        if (r < 0) {
            snprintf(err, err_len, "--cache-budget: %s", perr);
            goto fail;
        }
        r = bufpool_new(budget, BUFPOOL_BLOCK_DEFAULT, BUFPOOL_READAHEAD_DEFAULT,
                        &node->bufpool, perr, sizeof(perr));
        if (r < 0) {
            snprintf(err, err_len, "--cache-budget: %s", perr);
            goto fail;
        }
        sc.bufpool = node->bufpool;
        log_info("io_mode", "mode=direct pool_bytes=%" PRIu64 " block_bytes=%u readahead=%u",
                 budget, BUFPOOL_BLOCK_DEFAULT, BUFPOOL_READAHEAD_DEFAULT);
    }
    node->mlock_budget = cfg->mlock_budget;
    node->store = store_new(node->pool, &sc, err, err_len);
    if (node->store == NULL)
        goto fail;
    store_set_load_cb(node->store, node_load_cb, node);
    store_set_admit(node->store, node_admit_load, node);
    node->tick_ev = event_new(base, -1, EV_PERSIST, node_tick_cb, node);
    event_add(node->tick_ev, &tick);
    node->http = http_server_new(base, &cfg->limits);
    http_server_set_name(node->http, "sluice-node/" SLUICE_VERSION);
    if (cfg->token != NULL && cfg->token[0] != '\0')
        http_server_set_token(node->http, cfg->token);
    r = http_server_bind(node->http, cfg->listen, node->bound, sizeof(node->bound));
    if (r < 0) {
        snprintf(err, err_len, "--listen %s: %s", cfg->listen, strerror(-r));
        goto fail;
    }
    if (cfg->node_id != NULL && cfg->node_id[0] != '\0') {
        struct wire_error we;
        if (wire_check_segment_id("--node-id", cfg->node_id, &we) < 0) {
            snprintf(err, err_len, "%s", we.message);
            goto fail;
        }
        snprintf(node->node_id, sizeof(node->node_id), "%s", cfg->node_id);
    } else if (node_id_load(cfg->data_dir, node->node_id, sizeof(node->node_id), err,
                                err_len) < 0) {
        goto fail;
    }
    /* The newest leader seen, across restarts: an old coordinator stays refused. */
    if (epoch_fence_load(&node->fence, cfg->data_dir, err, err_len) < 0)
        goto fail;
    if (node->fence.highest > 0)
        log_info("epoch_fence", "highest=%" PRIu64 " path=%s", node->fence.highest,
                 node->fence.path);
    api_routes(node);
    if (cfg->coordinator != NULL && cfg->coordinator[0] != '\0' &&
        coordlist_new(cfg->coordinator, &coordinators, err, err_len) < 0)
        goto fail;
    if (coordinators != NULL) {
        struct reporter_config rc = {
            .coordinators = coordinators,
            .node_id = node->node_id,
            .advertise = cfg->advertise != NULL && cfg->advertise[0] != '\0' ? cfg->advertise
                                                                              : node->bound,
            .token = cfg->token,
            .interval_ms = cfg->report_ms,
            .claim = cfg->claim,
            .conflict = node_conflict_cb,
            .fence = &node->fence,
        };
        static const struct reporter_source src = {
            .fill = node_report_fill,
            .segments = node_report_segments,
            .drop = node_report_drop,
        };
        node->reporter = reporter_new(base, &rc, &src, node);
        if (cfg->claim) {
            struct timeval every = {0, 500000};

            node->claim_batch = 1;
            node->claim_client =
                coordclient_new(base, coordlist_copy(coordinators), 5000, cfg->token);
            if (node->claim_client == NULL)
                goto fail;
            node->claim_ev = event_new(base, -1, EV_PERSIST, node_claim_tick_cb, node);
            event_add(node->claim_ev, &every);
        }
    }
    coordlist_free(coordinators);
    return node;
fail:
    coordlist_free(coordinators);
    node_free(node);
    return NULL;
}

const char *node_bound(const struct node *node)
{
    return node->bound;
}

const char *node_id(const struct node *node)
{
    return node->node_id;
}

void node_free(struct node *node)
{
    if (node == NULL)
        return;
    reporter_free(node->reporter);
    node->reporter = NULL; /* loads finishing below ask it for a report (reporter_soon) */
    if (node->claim_ev != NULL)
        event_free(node->claim_ev);
    node->claim_in_flight = false;
    coordclient_free(node->claim_client);
    if (node->tick_ev != NULL)
        event_free(node->tick_ev);
    /*
     * Work in flight finishes first, while the requests it answers still
     * exist: prechecks (which start no load once the store is closing), then
     * loads; only then does the server close its connections.
     */
    store_close(node->store);
    pool_free(node->pool);
    pool_free(node->load_pool);
    http_server_free(node->http);
    sampler_free(node->sampler);
    store_free(node->store);
    bufpool_free(node->bufpool); /* after the store: it closed every pool file */
    latency_free(node->lat);
    wss_free(node->wss);
    /* After the pools: no residency job reads DAMON any more. */
    if (node->damon_on)
        damon_stop(&node->damon);
    free(node->sys_root);
    admission_ledger_free(node->ledger);
    free(node);
}
