/*
 * api: the coordinator's write endpoints: POST /v1/report, /v1/claim,
 * /v1/segments (registration, durable before it is answered),
 * /v1/segments/{id}/retry, DELETE /v1/segments/{id} and
 * /v1/nodes/{id}/{drain,undrain,forget}, and the
 * routers of /v1/segments and /v1/segments/ (GET goes to views.c). Each
 * handler decodes, calls the model, membership or reconcile, and replies
 * exactly once.
 *
 * Expected load: a report per node per second, registrations in batches of
 * up to 10,000, operator actions rarely.
 */
#include "coord_int.h"

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

/* ---- HTTP helpers -------------------------------------------------------- */

/* The answer to a report: what to drop, and the acknowledgement (intake.h). */
static void coord_report_reply(struct evhttp_request *req, uint64_t epoch,
                               const struct intake_result *in, const struct coord_drops *drops)
{
    struct wire_report_response resp;
    uint8_t *buf;
    size_t len;

    memset(&resp, 0, sizeof(resp));
    resp.n_drop = drops->n;
    resp.drop = drops->ids;
    resp.ack_seq = in->ack_seq;
    resp.send_full = in->send_full;
    resp.epoch = epoch;
    snprintf(resp.full_reason, sizeof(resp.full_reason), "%s", intake_why_name(in->why));
    buf = wire_report_response_encode(&resp, &len);
    pbhttp_reply(req, 200, buf, len);
}

void coord_report_cb(struct evhttp_request *req, const char *rest, void *arg)
{
    struct coord *c = arg;
    struct wire_node_report rep;
    struct coord_drops drops = {0, 0, NULL};
    struct intake_result in;
    struct wire_error err;
    struct coord_node *n;
    const void *body;
    char msg[640]; /* clients keep 255 bytes: the id and the address come first */
    size_t len;

    if (pbhttp_take_body(req, &body, &len) != 0 ||
        pbhttp_decoded(req, wire_node_report_decode(body, len, &rep, &err), &err) != 0)
        return;
    c->reports++;
    n = strmap_get(c->nodes, rep.node_id);
    if (n != NULL && coord_id_clash(c, n, rep.addr, msg, sizeof(msg)) &&
        coord_addr_usable(c, rep.addr)) {
        /* Another process with this id: it gets nothing, and the live node keeps it. */
        c->id_clashes++;
        log_warn("node_id_in_use", "node=%s addr=%s live_addr=%s", log_q(n->id), log_q(rep.addr),
                 log_q(n->addr));
        pbhttp_reply_error(req, 409, "node_id_in_use", msg);
        wire_node_report_done(&rep);
        return;
    }
    n = coord_node_get(c, rep.node_id, rep.addr);
    if (n == NULL || n->client == NULL) {
        pbhttp_reply_error(req, 400, "invalid_field", "addr: cannot be reached as given");
        wire_node_report_done(&rep);
        return;
    }
    /* Delta reports: judged against the node's base before anything is taken from it. */
    intake_take(&n->intake, &rep, &in);
    c->report_verdicts[in.verdict]++;
    c->digest_mismatches += in.digest_mismatch;
    if (in.send_full) {
        c->full_asked[in.why]++;
        log_debug("report_full_asked", "node=%s seq=%llu verdict=%s why=%s", log_q(n->id),
                  (unsigned long long)rep.seq, intake_verdict_name(in.verdict),
                  intake_why_name(in.why));
    }
    if (in.verdict == INTAKE_OLD || in.verdict == INTAKE_DUPLICATE) {
        /* Applied already, or older than a report applied: nothing in it is news. */
        coord_report_reply(req, c->lead_epoch, &in, &drops);
        wire_node_report_done(&rep);
        return;
    }
    n->last_seen_mono_ms = clock_mono_ns() / 1000000;
    n->last_seen_ms = clock_wall_ms();
    n->pressure = rep.pressure;
    window_on_advertise(&n->win, rep.pressure.load_slots);
    history_push(&n->hist, n->last_seen_ms, &rep.pressure);
    n->self_draining = rep.state == WIRE_NODE_DRAINING;
    if (n->claim != rep.claim) {
        n->claim = rep.claim; /* the placer learns it just below */
        coord_node_save(c, n);
    }
    /*
     * The node answers, and says itself whether it drains: what earlier
     * answers said about it (coord_node_note()) is superseded. Also when the
     * state does not change, the setter re-syncs the placer (pull mode).
     */
    n->notes = 0;
    coord_node_set_state(c, n, membership_on_report(n->admin_drained, n->self_draining),
                         n->admin_drained   ? "drained by the operator"
                         : n->self_draining ? "the node is draining"
                                            : "reported");
    /*
     * What the node says it holds (its whole set: the list, or the set
     * rebuilt from its deltas), judged first, then applied. A delta that
     * could not be applied says nothing about copies: the full report asked
     * for will, within a second.
     */
    if (in.applied) {
        size_t n_segs = 0;
        const struct wire_segment_status *segs = NULL;

        /*
         * A delta is judged on what it names and the copies not known settled
         * (reconcile.h); anything else, and a node just back, whole.
         */
        if (in.verdict == INTAKE_DELTA && !reconcile_needs_whole(n)) {
            reconcile_delta(c, n, n->intake.set, &rep, coord_now_ms(), &c->plan);
        } else {
            segs = intake_set(&n->intake, &rep, &in, &c->report_scratch, &c->report_scratch_cap,
                              &n_segs);
            reconcile_report(c, n, segs, n_segs, coord_now_ms(), &c->plan);
            c->reconciled_whole++;
        }
        c->reconciled_copies += segs != NULL ? n_segs : c->plan.n_copies;
        coord_report_apply(c, n, &c->plan, &drops);
        reconcile_settle(c, n, in.verdict == INTAKE_LEGACY ? NULL : n->intake.set, segs, n_segs,
                         &c->plan);
    }
    /* Loads it reported done make room in its window. */
    coord_window_apply(c, n);
    /*
     * A node told to drop a copy deletes it at once: the catalog must not
     * still list that copy if the coordinator dies in the next few ms.
     */
    if (drops.n > 0)
        coord_flush(c);
    /* Drops are acts of the leader: the lease first, as for assignments. */
    if (drops.n > 0 &&
        !coord_lead_check(c, "report: the catalog connection that holds the lead failed")) {
        coord_standby_reply(c, req);
        free(drops.ids);
        wire_node_report_done(&rep);
        return;
    }
    coord_report_reply(req, c->lead_epoch, &in, &drops);
    free(drops.ids);
    wire_node_report_done(&rep);
}

/* ---- /v1/claim (pull mode) ------------------------------------------------ */

struct coord_claim {
    struct coord *c;
    struct coord_node *node;
    struct wire_claim_response resp;
    uint32_t max;
};

static int coord_claim_one(const char *key, void *value, void *arg)
{
    struct coord_claim *cl = arg;
    struct coord_seg *s = value;
    struct wire_assign_request *a;

    if (cl->resp.n >= cl->max)
        return 1;
    if (s->state != COORD_PENDING || s->n_holders >= s->replication ||
        coord_holder_find(s, cl->node->id) != NULL || s->backoff_until_ms > coord_now_ms())
        return 0;
    a = &cl->resp.assignments[cl->resp.n++];
    coord_seg_assignment(s, a);
    coord_holder_add(cl->c, s, cl->node, WIRE_SEG_LOADING);
    coord_event(cl->c, "claimed", s->id, cl->node->id, WIRE_REASON_NONE, 0, 0, NULL);
    return 0;
}

void coord_claim_cb(struct evhttp_request *req, const char *rest, void *arg)
{
    struct coord *c = arg;
    struct wire_claim_request m;
    struct coord_claim cl;
    struct wire_error err;
    const void *body;
    size_t len;
    uint8_t *buf;

    if (pbhttp_take_body(req, &body, &len) != 0 ||
        pbhttp_decoded(req, wire_claim_request_decode(body, len, &m, &err), &err) != 0)
        return;
    cl.node = strmap_get(c->nodes, m.node_id);
    if (cl.node == NULL || cl.node->state != MEMBERSHIP_UP) {
        pbhttp_reply_error(req, 409, "not_up",
                          "node_id: this node has not reported, or is not UP; report first");
        return;
    }
    c->claims++;
    cl.c = c;
    cl.max = m.max_segments;
    cl.resp.n = 0;
    cl.resp.assignments = xcalloc(m.max_segments, sizeof(*cl.resp.assignments));
    keymap_foreach(c->segs, coord_claim_one, &cl);
    for (size_t i = 0; i < cl.resp.n; i++)
        coord_seg_update(c, keymap_get(c->segs, cl.resp.assignments[i].segment_id));
    /*
     * The node starts loading on this answer: its LOADING rows are durable
     * first. (If they are not, the copies in memory are found missing from
     * the node's reports after the grace period and placed again.)
     */
    if (coord_flush(c) < 0) {
        pbhttp_reply_error(req, 500, "catalog", catalog_errmsg(c->cat));
        wire_claim_response_done(&cl.resp);
        return;
    }
    buf = wire_claim_response_encode(&cl.resp, &len);
    pbhttp_reply(req, 200, buf, len);
    wire_claim_response_done(&cl.resp);
}

/* ---- /v1/segments -------------------------------------------------------- */

/* What a registration did to one spec, applied to memory once committed. */
enum coord_reg {
    COORD_REG_NONE = 0,    /* unchanged */
    COORD_REG_NEW,         /* a new segment */
    COORD_REG_DIGEST,      /* unchanged, and its digest learnt (registered before digests) */
    COORD_REG_REVALIDATED, /* INVALID, registered again from a changed file */
    COORD_REG_KIND = 0x0f, /* the bits above */
    COORD_REG_TABLE = 0x10, /* or'ed: moved from the default table to the one named */
    COORD_REG_MEM = 0x20,   /* or'ed: other declared memory */
};

/* An INVALID segment whose file changed (another digest) is placeable again. */
static void coord_seg_revalidate(struct coord *c, struct coord_seg *s,
                                 const struct wire_segment_spec *sp)
{
    uint64_t old = s->digest;

    s->row_count = sp->row_count;
    s->avg_row_size = sp->avg_row_size;
    s->digest = sp->digest;
    coord_seg_invalid_clear(s);
    s->backoff_until_ms = 0;
    log_warn("segment_state",
             "id=%s transition=\"INVALID -> PENDING\" reason=\"file changed: digest %016llx -> "
             "%016llx\"",
             s->id, (unsigned long long)old, (unsigned long long)sp->digest);
    coord_set_seg_state(c, s, COORD_PENDING);
    coord_event(c, "revalidated", s->id, NULL, WIRE_REASON_NONE, 0, 0,
                "registered again from a changed file (digest %016llx -> %016llx)",
                (unsigned long long)old, (unsigned long long)sp->digest);
    coord_seg_update(c, s);
}

/*
 * The 409 of a registration that differs from the registered segment s:
 * names the first field that differs, with both values, and how to change
 * it (remove the segment first).
 */
static void coord_conflict(char *msg, size_t len, size_t i, const struct coord_seg *s,
                           const struct wire_segment_spec *sp, bool same_place, bool new_digest)
{
    int n = snprintf(msg, len, "segments[%zu]: \"%s\" is already registered with another ", i,
                     sp->segment_id);
    size_t off = n > 0 && (size_t)n < len ? (size_t)n : len - 1;

    if (strcmp(coord_seg_uri(s), sp->uri) != 0)
        snprintf(msg + off, len - off, "uri (registered %s, this request %s)", coord_seg_uri(s), sp->uri);
    else if (s->replication != sp->replication)
        snprintf(msg + off, len - off, "replication (registered %u, this request %u)",
                 s->replication, sp->replication);
    else if (!same_place)
        snprintf(msg + off, len - off,
                 "table (registered \"%s\", this request \"%s\"; a segment's table is fixed "
                 "once registered, unless it is \"default\")",
                 s->table, sp->table);
    else if (s->row_count != sp->row_count)
        snprintf(msg + off, len - off, "row_count (registered %" PRIu64 ", this request %" PRIu64
                 ")", s->row_count, sp->row_count);
    else if (s->avg_row_size != sp->avg_row_size)
        snprintf(msg + off, len - off, "avg_row_size (registered %" PRIu64
                 ", this request %" PRIu64 ")", s->avg_row_size, sp->avg_row_size);
    else if (new_digest)
        snprintf(msg + off, len - off, "digest (registered %016" PRIx64 ", this request %016" PRIx64
                 "): the file changed; only an INVALID segment is registered again from a "
                 "changed file", s->digest, sp->digest);
    else
        snprintf(msg + off, len - off, "declaration");
    off = strlen(msg);
    snprintf(msg + off, len - off, "; `sluice-coord remove %s` first to register it anew",
             sp->segment_id);
}

static void coord_register(struct coord *c, struct evhttp_request *req)
{
    struct wire_segment_batch b;
    struct wire_batch_response resp = {0, 0};
    struct wire_error err;
    const void *body;
    size_t len;
    unsigned char *is_new = NULL; /* enum coord_reg, per spec */
    struct strmap *seen = NULL;
    uint8_t *buf;

    if (pbhttp_take_body(req, &body, &len) != 0 ||
        pbhttp_decoded(req, wire_segment_batch_decode(body, len, &b, &err), &err) != 0)
        return;
    /* Durable before acknowledged: one transaction, committed now. */
    coord_flush(c);
    if (catalog_begin_group(c->cat) < 0) {
        pbhttp_reply_error(req, 500, "catalog", catalog_errmsg(c->cat));
        goto out;
    }
    is_new = xcalloc(b.n, sizeof(*is_new));
    seen = strmap_new(); /* new ids in this batch -> index + 1 */
    for (size_t i = 0; i < b.n; i++) {
        const struct wire_segment_spec *sp = &b.specs[i];
        struct coord_seg *s = keymap_get(c->segs, sp->segment_id);
        struct catalog_segment cs;
        char msg[512];
        void *prev;

        if (s != NULL) {
            /* A segment in the default table (registered before tables) takes the one named. */
            bool moved = strcmp(s->table, sp->table) != 0 &&
                         strcmp(s->table, WIRE_TABLE_DEFAULT) == 0;
            bool same_place = strcmp(coord_seg_uri(s), sp->uri) == 0 && s->replication == sp->replication &&
                              (moved || strcmp(s->table, sp->table) == 0);
            bool new_digest = sp->digest != 0 && sp->digest != s->digest;
            /* Declarations are revised, not compared: none (both 0) keeps them. */
            bool new_mem = (sp->mem_request_bytes != 0 || sp->mem_limit_bytes != 0) &&
                           (sp->mem_request_bytes != s->mem_request_bytes ||
                            sp->mem_limit_bytes != s->mem_limit_bytes);
            unsigned changed = (moved ? COORD_REG_TABLE : 0) | (new_mem ? COORD_REG_MEM : 0);

            if (same_place && moved && catalog_set_segment_table(c->cat, s->id, sp->table) < 0)
                goto catalog_failed;
            if (same_place && new_mem &&
                catalog_set_segment_mem(c->cat, s->id, sp->mem_request_bytes,
                                        sp->mem_limit_bytes) < 0)
                goto catalog_failed;
            if (same_place && s->row_count == sp->row_count &&
                s->avg_row_size == sp->avg_row_size && (!new_digest || s->digest == 0)) {
                /* Unchanged; a registration from before digests learns the file's. */
                if (new_digest &&
                    catalog_set_segment_file(c->cat, s->id, s->row_count, s->avg_row_size,
                                             sp->digest, NULL) < 0)
                    goto catalog_failed;
                is_new[i] = (new_digest ? COORD_REG_DIGEST : COORD_REG_NONE) | changed;
                if (changed != 0)
                    resp.registered++;
                else
                    resp.unchanged++;
                continue;
            }
            if (same_place && new_digest && s->state == COORD_INVALID) {
                /* The file changed since two nodes found it bad: validate it again. */
                if (catalog_set_segment_file(c->cat, s->id, sp->row_count, sp->avg_row_size,
                                             sp->digest, "PENDING") < 0)
                    goto catalog_failed;
                is_new[i] = COORD_REG_REVALIDATED | changed;
                resp.registered++;
                continue;
            }
            coord_conflict(msg, sizeof(msg), i, s, sp, same_place, new_digest);
            catalog_rollback(c->cat);
            pbhttp_reply_error(req, 409, "conflict", msg);
            goto out;
        }
        prev = strmap_put(seen, sp->segment_id, (void *)(uintptr_t)(i + 1));
        if (prev != NULL) {
            snprintf(msg, sizeof(msg), "segments[%zu]: duplicate of segments[%zu]", i,
                     (size_t)(uintptr_t)prev - 1);
            catalog_rollback(c->cat);
            pbhttp_reply_error(req, 400, "invalid_field", msg);
            goto out;
        }
        memset(&cs, 0, sizeof(cs));
        snprintf(cs.id, sizeof(cs.id), "%s", sp->segment_id);
        snprintf(cs.uri, sizeof(cs.uri), "%s", sp->uri);
        cs.row_count = sp->row_count;
        cs.avg_row_size = sp->avg_row_size;
        cs.digest = sp->digest;
        cs.replication = sp->replication;
        snprintf(cs.table, sizeof(cs.table), "%s", sp->table);
        cs.mem_request_bytes = sp->mem_request_bytes;
        cs.mem_limit_bytes = sp->mem_limit_bytes;
        snprintf(cs.state, sizeof(cs.state), "PENDING");
        cs.created_ms = (int64_t)clock_wall_ms();
        if (catalog_put_segment(c->cat, &cs) < 0) {
            snprintf(msg, sizeof(msg), "segments[%zu]: %s", i, catalog_errmsg(c->cat));
            catalog_rollback(c->cat);
            pbhttp_reply_error(req, 500, "catalog", msg);
            goto out;
        }
        is_new[i] = COORD_REG_NEW;
        resp.registered++;
    }
    if (catalog_commit(c->cat) < 0) {
        c->catalog_errors++;
        pbhttp_reply_error(req, 500, "catalog", catalog_errmsg(c->cat));
        goto out;
    }
    /* Committed: now the segments exist for placement. */
    for (size_t i = 0; i < b.n; i++) {
        const struct wire_segment_spec *sp = &b.specs[i];
        struct coord_seg *s;

        if (is_new[i] & COORD_REG_TABLE) {
            s = keymap_get(c->segs, sp->segment_id);
            log_info("segment_table", "id=%s old=%s new=%s", s->id, log_q(s->table),
                     log_q(sp->table));
            coord_seg_set_table(c, s, sp->table);
            coord_placed(c, s);
        }
        if (is_new[i] & COORD_REG_MEM) {
            s = keymap_get(c->segs, sp->segment_id);
            s->mem_request_bytes = sp->mem_request_bytes;
            s->mem_limit_bytes = sp->mem_limit_bytes;
        }
        switch (is_new[i] & COORD_REG_KIND) {
        case COORD_REG_NEW:
            s = coord_seg_new(c, sp->segment_id, sp->uri, sp->row_count, sp->avg_row_size,
                              sp->replication, COORD_PENDING);
            s->digest = sp->digest;
            coord_seg_set_table(c, s, sp->table);
            coord_placed(c, s);
            s->mem_request_bytes = sp->mem_request_bytes;
            s->mem_limit_bytes = sp->mem_limit_bytes;
            coord_seg_update(c, s);
            break;
        case COORD_REG_DIGEST:
            s = keymap_get(c->segs, sp->segment_id);
            s->digest = sp->digest;
            reconcile_touch(c, s, true); /* a copy of another file is stale now */
            break;
        case COORD_REG_REVALIDATED:
            coord_seg_revalidate(c, keymap_get(c->segs, sp->segment_id), sp);
            break;
        default:
            break;
        }
    }
    c->registered += resp.registered;
    buf = wire_batch_response_encode(&resp, &len);
    pbhttp_reply(req, 200, buf, len);
    goto out;
catalog_failed:
    catalog_rollback(c->cat);
    pbhttp_reply_error(req, 500, "catalog", catalog_errmsg(c->cat));
out:
    strmap_free(seen);
    free(is_new);
    wire_segment_batch_done(&b);
}

void coord_segments_cb(struct evhttp_request *req, const char *rest, void *arg)
{
    struct coord *c = arg;

    if (evhttp_request_get_command(req) == EVHTTP_REQ_POST) {
        coord_register(c, req);
        return;
    }
    coord_list_segments(c, req);
}

/* ---- operator actions: durable before they are answered -------------------- */

/* The registered segment id, or NULL once 404 is answered. */
static struct coord_seg *coord_seg_or_404(struct coord *c, struct evhttp_request *req,
                                          const char *id)
{
    struct coord_seg *s = keymap_get(c->segs, id);
    char msg[WIRE_ID_MAX + 64];

    if (s == NULL) {
        snprintf(msg, sizeof(msg), "segment \"%s\" is not registered", id);
        pbhttp_reply_error(req, 404, "not_found", msg);
    }
    return s;
}

/*
 * Opens an operator's change: what is pending is committed first, and the
 * change gets a transaction of its own. 0 with the catalog error count in
 * *ret_errors, or -EIO once 500 is answered.
 */
static int coord_admin_begin(struct coord *c, struct evhttp_request *req, uint64_t *ret_errors)
{
    if (coord_flush(c) < 0 || coord_txn(c) < 0) {
        pbhttp_reply_error(req, 500, "catalog", catalog_errmsg(c->cat));
        return -EIO;
    }
    *ret_errors = c->catalog_errors;
    return 0;
}

/*
 * Commits it: 0, or -EIO when a write in it failed or the commit did (all
 * of it rolled back, 500 answered); the caller then undoes its change in
 * memory and answers nothing more.
 */
static int coord_admin_commit(struct coord *c, struct evhttp_request *req, uint64_t errors)
{
    if (c->catalog_errors != errors)
        coord_rollback(c);
    if (c->catalog_errors != errors || coord_flush(c) < 0) {
        pbhttp_reply_error(req, 500, "catalog", catalog_errmsg(c->cat));
        return -EIO;
    }
    return 0;
}

/*
 * POST /v1/segments/{id}/retry: an INVALID segment becomes PENDING again,
 * the nodes' earlier verdicts and its registered digest forgotten (after its
 * file was fixed). Durable
 * before it is answered "PENDING\n"; 404 unknown, 409 not INVALID (the
 * message names its state), 500 the catalog write failed (nothing changed).
 */
static void coord_retry(struct coord *c, struct evhttp_request *req, const char *id)
{
    struct coord_seg *s = coord_seg_or_404(c, req, id);
    uint64_t errors, digest;
    char msg[256];

    if (s == NULL)
        return;
    if (s->state != COORD_INVALID) {
        snprintf(msg, sizeof(msg), "segment \"%s\" is %s, not INVALID: only an INVALID segment "
                 "can be retried", id, coord_seg_state_names[s->state]);
        pbhttp_reply_error(req, 409, "not_invalid", msg);
        return;
    }
    if (coord_admin_begin(c, req, &errors) < 0)
        return;
    digest = s->digest;
    coord_set_seg_state(c, s, COORD_PENDING);
    /* The fixed file is taken as it is: its digest is learnt again at the next import. */
    s->digest = 0;
    coord_check(c, catalog_set_segment_file(c->cat, s->id, s->row_count, s->avg_row_size, 0, NULL),
                "segment_file");
    coord_event(c, "retry", s->id, NULL, WIRE_REASON_NONE, 0, 0,
                "INVALID -> PENDING: retried by the operator");
    if (coord_admin_commit(c, req, errors) < 0) {
        coord_seg_move(c, s, COORD_INVALID);
        s->digest = digest;
        return;
    }
    log_info("segment_state", "id=%s transition=\"INVALID -> PENDING\" reason=\"retried by the "
             "operator\"", s->id);
    coord_seg_invalid_clear(s);
    s->last_reason = 0;
    coord_seg_set_refusal(s, NULL);
    s->backoff_until_ms = 0;
    coord_seg_update(c, s);
    http_reply_text(req, 200, "%s\n", coord_seg_state_names[s->state]);
}

/*
 * DELETE /v1/segments/{id}: the operator takes a registration back. The
 * segment leaves the catalog (its row and, by cascade, its assignments;
 * events stay, they are history) in a transaction committed before the
 * answer, then memory and the placement (coord_seg_remove()). Every node
 * still holding a copy is told to drop it in the answer to its next report,
 * as for any segment the coordinator does not know, also one that was DOWN
 * meanwhile. Answers "REMOVED\n"; 404 unknown; 409 while the row-count
 * baseline has an assignment of it in flight (it holds the segment until
 * the answer); 500 the catalog write failed (nothing removed).
 */
static void coord_remove(struct coord *c, struct evhttp_request *req, const char *id)
{
    struct coord_seg *s = coord_seg_or_404(c, req, id);
    unsigned holders;
    uint64_t errors;
    char msg[256];
    int r;

    if (s == NULL)
        return;
    if (s->rc_in_flight > 0) {
        snprintf(msg, sizeof(msg), "segment \"%s\" has an assignment in flight (--placement="
                 "rowcount); remove it again once it is answered", id);
        pbhttp_reply_error(req, 409, "in_flight", msg);
        return;
    }
    if (coord_admin_begin(c, req, &errors) < 0)
        return;
    holders = s->n_holders;
    r = catalog_delete_segment(c->cat, s->id); /* and, by cascade, its assignments */
    if (r < 0 && r != -ENOENT)
        coord_check(c, r, "remove_segment");
    coord_event(c, "removed", s->id, NULL, WIRE_REASON_NONE, 0, 0,
                "removed by the operator (was %s); %u holder%s told to drop it",
                coord_seg_state_names[s->state], holders, holders == 1 ? "" : "s");
    if (coord_admin_commit(c, req, errors) < 0)
        return;
    log_info("segment_removed", "id=%s state=%s holders=%u", s->id,
             coord_seg_state_names[s->state], holders);
    coord_seg_remove(c, s);
    http_reply_text(req, 200, "REMOVED\n");
}

void coord_segment_cb(struct evhttp_request *req, const char *rest, void *arg)
{
    struct coord *c = arg;
    struct wire_error err;

    if (evhttp_request_get_command(req) == EVHTTP_REQ_DELETE) {
        char id[WIRE_ID_MAX + 1];

        if (strlen(rest) > WIRE_ID_MAX || strchr(rest, '/') != NULL) {
            pbhttp_reply_error(req, 404, "not_found", "expected DELETE /v1/segments/{id}");
            return;
        }
        snprintf(id, sizeof(id), "%s", rest);
        if (wire_check_segment_id("segment id in path", id, &err) < 0) {
            pbhttp_reply_error(req, 400, err.code, err.message);
            return;
        }
        coord_remove(c, req, id);
        return;
    }
    if (evhttp_request_get_command(req) == EVHTTP_REQ_POST) {
        const char *slash = strchr(rest, '/');
        char id[WIRE_ID_MAX + 1];

        if (slash == NULL || strcmp(slash, "/retry") != 0 ||
            (size_t)(slash - rest) > WIRE_ID_MAX) {
            pbhttp_reply_error(req, 404, "not_found", "expected POST /v1/segments/{id}/retry");
            return;
        }
        snprintf(id, sizeof(id), "%.*s", (int)(slash - rest), rest);
        if (wire_check_segment_id("segment id in path", id, &err) < 0) {
            pbhttp_reply_error(req, 400, err.code, err.message);
            return;
        }
        coord_retry(c, req, id);
        return;
    }
    coord_show_segment(c, req, rest);
}

/*
 * POST /v1/nodes/{id}/forget: a DOWN node (silent for --node-timeout at
 * least) leaves memory, the catalog (its row and assignments; events stay,
 * they are history) and the placer's ring, which every placement scan
 * walks. Answers "FORGOTTEN\n" once durable; 409 (naming its state) for a
 * node that is not DOWN; 500 if the catalog write fails (nothing removed).
 * If the node reports again it joins as a new node.
 */
static void coord_forget(struct coord *c, struct evhttp_request *req, struct coord_node *n)
{
    uint64_t errors, down_ms = clock_mono_ns() / 1000000 - n->last_seen_mono_ms;
    char msg[256];
    int r;

    if (n->state != MEMBERSHIP_DOWN) {
        snprintf(msg, sizeof(msg), "node \"%s\" is %s, not DOWN: only a node that has not "
                 "reported for --node-timeout can be forgotten", n->id, membership_state_name(n->state));
        pbhttp_reply_error(req, 409, "not_down", msg);
        return;
    }
    if (coord_admin_begin(c, req, &errors) < 0)
        return;
    r = catalog_delete_node(c->cat, n->id); /* and, by cascade, its assignments */
    if (r < 0 && r != -ENOENT)
        coord_check(c, r, "forget_node");
    coord_event(c, "node_forgotten", NULL, n->id, WIRE_REASON_NONE, 0, 0,
                "forgotten by the operator, silent for %" PRIu64 " ms", down_ms);
    if (coord_admin_commit(c, req, errors) < 0)
        return;
    log_info("node_forgotten", "node=%s silent_ms=%" PRIu64, n->id, down_ms);
    /* Copies it was still listed with (a catalog from before a crash) are placed again. */
    {
        size_t count = keymap_count(n->held);
        struct coord_seg **segs = xcalloc(count + 1, sizeof(*segs)), **p = segs;

        keymap_foreach(n->held, coord_collect_held, &p);
        for (size_t i = 0; i < count; i++) {
            for (unsigned k = 0; k < segs[i]->n_holders; k++) {
                if (strcmp(segs[i]->holders[k].node, n->id) == 0) {
                    segs[i]->holders[k] = segs[i]->holders[--segs[i]->n_holders];
                    break;
                }
            }
        }
        strmap_remove(c->nodes, n->id);
        placer_node_remove(c->placer, n->id);
        for (size_t i = 0; i < count; i++)
            coord_seg_update(c, segs[i]);
        free(segs);
    }
    coord_free_node(n->id, n, NULL);
    http_reply_text(req, 200, "FORGOTTEN\n");
}

void coord_node_action_cb(struct evhttp_request *req, const char *rest, void *arg)
{
    struct coord *c = arg;
    char id[WIRE_ID_MAX + 1], msg[256];
    const char *slash = strchr(rest, '/');
    struct coord_node *n;
    enum membership_state old, next;
    struct wire_error err;
    uint64_t errors;
    bool was_drained;

    if (slash == NULL || (size_t)(slash - rest) > WIRE_ID_MAX ||
        (strcmp(slash, "/drain") != 0 && strcmp(slash, "/undrain") != 0 &&
         strcmp(slash, "/forget") != 0)) {
        pbhttp_reply_error(req, 404, "not_found",
                           "expected /v1/nodes/{id}/drain, /undrain or /forget");
        return;
    }
    snprintf(id, sizeof(id), "%.*s", (int)(slash - rest), rest);
    if (wire_check_segment_id("node id in path", id, &err) < 0) {
        pbhttp_reply_error(req, 400, err.code, err.message);
        return;
    }
    n = strmap_get(c->nodes, id);
    if (n == NULL) {
        snprintf(msg, sizeof(msg), "node \"%s\" is not known", id);
        pbhttp_reply_error(req, 404, "not_found", msg);
        return;
    }
    if (strcmp(slash, "/forget") == 0) {
        coord_forget(c, req, n);
        return;
    }
    /*
     * Durable before acknowledged: what is pending is committed first, then
     * this change goes in a transaction of its own; if that does not
     * commit, the change is undone in memory and the answer is 500.
     */
    if (coord_admin_begin(c, req, &errors) < 0)
        return;
    was_drained = n->admin_drained;
    old = n->state;
    /*
     * The operator's drain is recorded whatever the state. It changes the
     * state only of a node that answers: UP becomes DRAINING, and DRAINING
     * becomes UP unless the node drains itself. A DOWN or SUSPECT node
     * keeps its state (it gets nothing new either way, and must not look
     * up); its next report makes it DRAINING or UP as recorded.
     */
    n->admin_drained = strcmp(slash, "/drain") == 0;
    next = membership_on_admin(n->state, n->admin_drained, n->self_draining);
    if (next != n->state)
        coord_node_set_state(c, n, next,
                             n->admin_drained ? "drained by the operator"
                                              : "undrained by the operator");
    /* Who drains it is saved even when the state stays (a node already draining itself). */
    coord_check(c, catalog_set_node_state(c->cat, n->id, membership_state_name(n->state),
                                          coord_drain_tag(n)),
                "node_state");
    if (c->catalog_errors != errors)
        coord_rollback(c); /* a write failed: commit none of it */
    if (c->catalog_errors != errors || coord_flush(c) < 0) {
        log_warn("node_state_not_saved", "node=%s transition=\"%s -> %s\" error=%s", n->id,
                 membership_state_name(old), membership_state_name(n->state),
                 log_q(catalog_errmsg(c->cat)));
        n->admin_drained = was_drained;
        n->state = old;
        placer_node_set(c->placer, n->id, coord_placer_state(n));
        coord_kick(c);
        pbhttp_reply_error(req, 500, "catalog", catalog_errmsg(c->cat));
        return;
    }
    http_reply_text(req, 200, "%s\n", membership_state_name(n->state));
}
