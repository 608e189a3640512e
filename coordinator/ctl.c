/*
 * ctl: admin commands. Each one parses its flags with common/config, makes
 * one or a few blocking HTTP calls (common/http's http_fetch) and renders the
 * answer. Expected load: a person or a script; `import` streams thousands
 * of segment headers in batches, `wait` polls once a second.
 */
#include "ctl.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "clock.h"
#include "config.h"
#include "http.h"
#include "wirejson.h"
#include "segfmt.h"
#include "xmalloc.h"

#define N_OPTS(a) (sizeof(a) / sizeof((a)[0]))

/* Flags every admin command takes. */
struct ctl_common {
    char *coordinator;
    char *token_file;
    bool json;
    uint64_t timeout_ms;
    char *token;
};

#define CTL_COMMON_OPTS(c)                                                                    \
    {"coordinator", "SLUICE_COORDINATOR", CONFIG_STRING, &(c).coordinator, "127.0.0.1:7000",  \
     "Coordinator address, or several comma-separated (the leader among them is followed)."}, \
        CLI_TOKEN_OPTION((c).token_file),                                                     \
        {"json", NULL, CONFIG_BOOL, &(c).json, "false", "Print one JSON document."},          \
        {"timeout", "SLUICE_TIMEOUT", CONFIG_DURATION, &(c).timeout_ms, "10s",                \
         "Time allowed for each request to the coordinator.", 100, 3600000}

/*
 * --json prints what the endpoint answers with Accept: application/json:
 * the message, re-encoded and turned into JSON by the daemons' own encoder
 * (common/wirejson), one line. Frees buf.
 */
static void ctl_json_msg(FILE *out, enum wire_msg m, uint8_t *buf, size_t len)
{
    char *json;
    size_t jlen;

    if (wirejson_encode(m, buf, len, 0, &json, &jlen) == 0) {
        fwrite(json, 1, jlen, out);
        fputc('\n', out);
        free(json);
    }
    free(buf);
}

/* Prints, on one line, and frees an object a command built with json_pack. */
static void ctl_json_obj(json_t *j)
{
    if (j != NULL)
        json_dumpf(j, stdout, JSON_COMPACT);
    fputc('\n', stdout);
    json_decref(j);
}

/* Bytes for people: 512B, 1.5K, 2.0G. */
static const char *ctl_bytes(char *buf, size_t len, uint64_t v)
{
    static const char units[] = "BKMGTP";
    double d = (double)v;
    int u = 0;

    while (d >= 1024 && u < 5) {
        d /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, len, "%" PRIu64 "B", v);
    else
        snprintf(buf, len, "%.1f%c", d, units[u]);
    return buf;
}

/* "refusals: 0.12 per placed segment (LOAD_CONCURRENCY 0.10, MEM_CAPACITY 0.02)". */
static void ctl_print_refusal_rates(FILE *out, const struct wire_cluster_status *st)
{
    uint64_t total = 0;
    double placed = (double)st->assignments_accepted;

    for (int r = 1; r < WIRE_REASON_COUNT_; r++)
        total += st->refusals[r];
    fprintf(out, "placed:   %" PRIu64 " assignments accepted, %" PRIu64 " refused", st->assignments_accepted,
            total);
    if (st->assignments_accepted == 0 || total == 0) {
        fputc('\n', out);
        return;
    }
    fprintf(out, ": %.2f per placed segment (", (double)total / placed);
    for (int r = 1, first = 1; r < WIRE_REASON_COUNT_; r++) {
        if (st->refusals[r] == 0)
            continue;
        fprintf(out, "%s%s %.2f", first ? "" : ", ", reason_name((enum wire_reason)r),
                (double)st->refusals[r] / placed);
        first = 0;
    }
    fputs(")\n", out);
}

/*
 * What DRAINING nodes mean for placement, after the count of nodes up
 * (which counts them: they answer): "" when none drains.
 */
static const char *ctl_draining_note(const struct wire_cluster_status *st)
{
    static char buf[160];

    if (st->nodes_draining == 0)
        buf[0] = '\0';
    else if (st->nodes_draining >= st->nodes_up)
        snprintf(buf, sizeof(buf), ", %s DRAINING: no node takes anything new "
                 "(`sluice-coord undrain NODE`)", st->nodes_up == 1 ? "it is" : "all are");
    else
        snprintf(buf, sizeof(buf), ", of which %u DRAINING (they take nothing new)",
                 st->nodes_draining);
    return buf;
}

void ctl_print_status(FILE *out, const struct wire_cluster_status *st, bool json)
{
    size_t len;

    if (json) {
        uint8_t *buf = wire_cluster_status_encode(st, &len);

        ctl_json_msg(out, WIRE_MSG_CLUSTER_STATUS, buf, len);
        return;
    }
    fprintf(out, "sluice-coord %s, up %" PRIu64 "s\n", st->version, st->uptime_seconds);
    fprintf(out, "leader:   %s, epoch %" PRIu64 "%s\n", st->leader[0] != '\0' ? st->leader : "-",
            st->leader_epoch, st->leader_epoch == 0 ? " (SQLite: no election)" : "");
    for (size_t i = 0; i < st->n_coordinators; i++)
        fprintf(out, "          %-7s %s, seen %.1fs ago\n", st->coordinators[i].role,
                st->coordinators[i].addr, (double)st->coordinators[i].seen_ms_ago / 1000.0);
    fprintf(out, "nodes:    %u up of %u%s\n", st->nodes_up, st->nodes_total,
            ctl_draining_note(st));
    fprintf(out,
            "segments: %" PRIu64 " total, %" PRIu64 " loaded, %" PRIu64 " pending (%" PRIu64
            " backing off), %" PRIu64 " invalid\n",
            st->segments_total, st->segments_loaded, st->segments_pending,
            st->segments_backing_off, st->segments_invalid);
    fprintf(out, "assignments in flight: %" PRIu64 "\n", st->assignments_in_flight);
    ctl_print_refusal_rates(out, st);
}

void ctl_print_nodes(FILE *out, const struct wire_node_list *nodes, bool json)
{
    char b1[16], b2[16], b3[16];
    size_t len;

    if (json) {
        uint8_t *buf = wire_node_list_encode(nodes, &len);

        ctl_json_msg(out, WIRE_MSG_NODE_LIST, buf, len);
        return;
    }
    fprintf(out, "%-16s %-21s %-8s %6s %8s %8s %5s %8s %8s %7s %8s %8s %-6s %8s %5s %7s  %s\n",
            "NODE", "ADDR", "STATE", "SEGS", "USAGE", "LIMIT", "WMARK", "WSS", "PINNED", "PSI10", "P99_MS",
            "REFUSED", "IO", "POOL", "HIT%", "TTE", "LAST_REASON");
    for (size_t i = 0; i < nodes->n; i++) {
        const struct wire_node_info *n = &nodes->nodes[i];
        char b4[16], b5[16], hit[16], tte[24], wm[16];
        bool direct = n->pressure.io_mode == WIRE_IO_DIRECT;

        if (n->pressure.admit_watermark > 0)
            snprintf(wm, sizeof(wm), "%.2f", n->pressure.admit_watermark);
        else
            snprintf(wm, sizeof(wm), "-");

        snprintf(hit, sizeof(hit), "%.1f", n->pressure.pool_hit_ratio * 100);
        if (n->pressure.tte_known)
            snprintf(tte, sizeof(tte), "%.1fs", (double)n->pressure.tte_ms / 1000.0);
        else
            snprintf(tte, sizeof(tte), "-");
        fprintf(out,
                "%-16s %-21s %-8s %6u %8s %8s %5s %8s %8s %6.1f%% %8.1f %8" PRIu64
                " %-6s %8s %5s %7s  %s\n",
                n->node_id, n->addr, n->state, n->segments,
                ctl_bytes(b1, sizeof(b1), n->pressure.usage_bytes),
                n->pressure.limit_bytes ? ctl_bytes(b2, sizeof(b2), n->pressure.limit_bytes) : "-",
                wm,
                ctl_bytes(b3, sizeof(b3), n->pressure.wss_bytes),
                ctl_bytes(b5, sizeof(b5), n->pressure.pinned_bytes), n->pressure.some_avg10,
                n->pressure.p99_seconds * 1e3, n->refusals, wire_io_mode_name(n->pressure.io_mode),
                direct ? ctl_bytes(b4, sizeof(b4), n->pressure.pool_bytes) : "-",
                direct ? hit : "-", tte, n->last_reason[0] != '\0' ? n->last_reason : "-");
    }
}

/* Segments a page of `segments` asks for: small enough for any answer to stay under the 4 MiB cap. */
#define CTL_SEGMENT_PAGE 1000

static void ctl_segments_header(FILE *out)
{
    fprintf(out, "%-24s %-8s %12s %9s %9s  %-30s %s\n", "SEGMENT", "STATE", "ROWS", "ROW_SIZE",
            "EST_SIZE", "NODES", "LAST_REASON");
}

/* One page's rows of the segments table. */
static void ctl_segments_rows(FILE *out, const struct wire_segment_list *segs)
{
    char b1[16];

    for (size_t i = 0; i < segs->n; i++) {
        const struct wire_segment_info *s = &segs->segments[i];
        char nodes[256] = "";
        size_t o = 0;

        for (size_t j = 0; j < s->n_placements && o < sizeof(nodes) - 1; j++) {
            int r = snprintf(nodes + o, sizeof(nodes) - o, "%s%s(%s)", j ? "," : "",
                             s->placements[j].node_id,
                             wire_segment_state_name(s->placements[j].state));
            if (r < 0)
                break;
            o += (size_t)r;
        }
        fprintf(out, "%-24s %-8s %12" PRIu64 " %9" PRIu64 " %9s  %-30s %s\n", s->spec.segment_id,
                s->state, s->spec.row_count, s->spec.avg_row_size,
                ctl_bytes(b1, sizeof(b1), s->spec.row_count * s->spec.avg_row_size),
                nodes[0] != '\0' ? nodes : "-", s->last_reason[0] != '\0' ? s->last_reason : "-");
    }
}

/*
 * One page's segments as JSON array elements (their SegmentInfo JSON, comma
 * separated, a comma first unless first), so that pages stream into one
 * document without the whole list in memory.
 */
static void ctl_segments_json_items(FILE *out, const struct wire_segment_list *segs, bool first)
{
    size_t len, jlen;
    uint8_t *buf = wire_segment_list_encode(segs, &len);
    char *text = NULL;
    json_t *doc = NULL, *arr;
    size_t i;
    json_t *el;

    if (wirejson_encode(WIRE_MSG_SEGMENT_LIST, buf, len, 0, &text, &jlen) == 0)
        doc = json_loadb(text, jlen, 0, NULL);
    arr = json_object_get(doc, "segments");
    json_array_foreach(arr, i, el) {
        if (!first || i > 0)
            fputc(',', out);
        json_dumpf(el, out, JSON_COMPACT);
    }
    json_decref(doc);
    free(text);
    free(buf);
}

void ctl_print_segments(FILE *out, const struct wire_segment_list *segs, bool json)
{
    size_t len;

    if (json) {
        uint8_t *buf = wire_segment_list_encode(segs, &len);

        ctl_json_msg(out, WIRE_MSG_SEGMENT_LIST, buf, len);
        return;
    }
    ctl_segments_header(out);
    ctl_segments_rows(out, segs);
    if (segs->total > segs->n)
        fprintf(out, "(%zu of %" PRIu64 " shown; use --limit)\n", segs->n, segs->total);
}

void ctl_print_tables(FILE *out, const struct wire_table_list *tl, bool json)
{
    char b1[16];

    if (json) {
        size_t len;
        uint8_t *buf = wire_table_list_encode(tl, &len);

        ctl_json_msg(out, WIRE_MSG_TABLE_LIST, buf, len);
        return;
    }
    fprintf(out, "%-24s %9s %7s %9s %9s %15s %9s\n", "TABLE", "SEGMENTS", "LOADED", "PENDING",
            "INVALID", "ROWS", "BYTES");
    for (size_t i = 0; i < tl->n; i++) {
        const struct wire_table_info *t = &tl->tables[i];
        fprintf(out, "%-24s %9" PRIu64 " %6.1f%% %9" PRIu64 " %9" PRIu64 " %15" PRIu64 " %9s\n",
                t->table, t->segments,
                t->segments ? 100.0 * (double)t->segments_loaded / (double)t->segments : 0.0,
                t->segments_pending, t->segments_invalid, t->rows,
                ctl_bytes(b1, sizeof(b1), t->bytes));
    }
    if (tl->n == 0)
        fputs("(no segments registered)\n", out);
}

/* "1.25x", or "-" when there was nothing to compare. */
static const char *ctl_ratio(char *buf, size_t len, double r)
{
    if (r > 0)
        snprintf(buf, len, "%.2fx", r);
    else
        snprintf(buf, len, "-");
    return buf;
}

void ctl_print_recommendations(FILE *out, const struct wire_recommendation_list *l, bool json)
{
    if (json) {
        size_t len;
        uint8_t *buf = wire_recommendation_list_encode(l, &len);

        ctl_json_msg(out, WIRE_MSG_RECOMMENDATION_LIST, buf, len);
        return;
    }
    fprintf(out, "%-20s %5s %5s %8s %8s %8s  %9s %9s  %14s %14s %14s %5s\n", "TABLE", "SEGS",
            "OBS", "P50", "P90", "P95", "REQUEST", "LIMIT", "DECL_REQ(OBS/)", "DECL_LIM(OBS/)",
            "ROW_EST(OBS/)", "OVER");
    for (size_t i = 0; i < l->n; i++) {
        const struct wire_recommendation *r = &l->recs[i];
        char b[8][16], x[3][16], d[3][32];

        snprintf(d[0], sizeof(d[0]), "%s %s",
                 r->declared_request_bytes ? ctl_bytes(b[5], sizeof(b[5]), r->declared_request_bytes)
                                           : "-",
                 ctl_ratio(x[0], sizeof(x[0]), r->request_ratio));
        snprintf(d[1], sizeof(d[1]), "%s %s",
                 r->declared_limit_bytes ? ctl_bytes(b[6], sizeof(b[6]), r->declared_limit_bytes)
                                         : "-",
                 ctl_ratio(x[1], sizeof(x[1]), r->limit_ratio));
        snprintf(d[2], sizeof(d[2]), "%s %s", ctl_bytes(b[7], sizeof(b[7]), r->estimate_bytes),
                 ctl_ratio(x[2], sizeof(x[2]), r->estimate_ratio));
        fprintf(out, "%-20s %5" PRIu64 " %5" PRIu64 " %8s %8s %8s  %9s %9s  %14s %14s %14s %5" PRIu64
                     "\n",
                r->table, r->segments, r->observed, ctl_bytes(b[0], sizeof(b[0]), r->p50_bytes),
                ctl_bytes(b[1], sizeof(b[1]), r->p90_bytes),
                ctl_bytes(b[2], sizeof(b[2]), r->p95_bytes),
                r->observed ? ctl_bytes(b[3], sizeof(b[3]), r->request_bytes) : "-",
                r->observed ? ctl_bytes(b[4], sizeof(b[4]), r->limit_bytes) : "-", d[0], d[1],
                d[2], r->over_limit);
    }
    for (size_t i = 0; i < l->n; i++)
        if (l->recs[i].observed > 0)
            fprintf(out, "%s: --mem-request %" PRIu64 " --mem-limit %" PRIu64 "\n",
                    l->recs[i].table, l->recs[i].request_bytes, l->recs[i].limit_bytes);
    if (l->n == 0)
        fputs("(no segments registered)\n", out);
}

static const char *ctl_time(char *buf, size_t len, uint64_t ms)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(buf, len, "%H:%M:%S", &tm);
    return buf;
}

void ctl_print_events(FILE *out, const struct wire_event_list *evs, bool json)
{
    char tb[16];
    size_t len;

    if (json) {
        uint8_t *buf = wire_event_list_encode(evs, &len);

        ctl_json_msg(out, WIRE_MSG_EVENT_LIST, buf, len);
        return;
    }
    fprintf(out, "%-8s %-10s %-24s %-16s %-10s %-17s %5s %8s %6s  %s\n", "ID", "TIME(UTC)",
            "SEGMENT", "NODE", "KIND", "REASON", "HTTP", "RETRY_MS", "COUNT", "DETAIL");
    for (size_t i = 0; i < evs->n; i++) {
        const struct wire_event *e = &evs->events[i];
        char tl[16];

        fprintf(out, "%-8" PRIu64 " %-10s %-24s %-16s %-10s %-17s %5u %8u %6" PRIu64 "  %s", e->id,
                ctl_time(tb, sizeof(tb), e->ts_ms), e->segment_id[0] ? e->segment_id : "-",
                e->node_id[0] ? e->node_id : "-", e->kind,
                e->reason != WIRE_REASON_NONE ? reason_name(e->reason) : "-", e->http_status,
                e->retry_after_ms, e->count > 0 ? e->count : 1, e->detail);
        /* A storm row: the segment and detail are its first event's. */
        if (e->count > 1)
            fprintf(out, "%s(%" PRIu64 " alike until %s; segment and detail of the first)",
                    e->detail[0] ? " " : "", e->count,
                    ctl_time(tl, sizeof(tl), e->last_ts_ms ? e->last_ts_ms : e->ts_ms));
        fputc('\n', out);
    }
    if (evs->next_before != 0)
        fprintf(out, "(older events: --before %" PRIu64 ")\n", evs->next_before);
}

void ctl_print_explain(FILE *out, const struct wire_segment_info *s, bool json)
{
    if (json) {
        /* GET /v1/segments/{id} answers a SegmentList of one. */
        struct wire_segment_list one = {1, (struct wire_segment_info *)(uintptr_t)s, 1};

        ctl_print_segments(out, &one, true);
        return;
    }
    fprintf(out,
            "segment %s: %s, %" PRIu64 " rows x %" PRIu64 " B, replication %u\n  table %s\n"
            "  uri %s\n  digest %016" PRIx64 "%s\n",
            s->spec.segment_id, s->state, s->spec.row_count, s->spec.avg_row_size,
            s->spec.replication, s->spec.table, s->spec.uri, s->spec.digest,
            s->spec.digest == 0 ? " (unknown: registered without one)" : "");
    if (s->spec.mem_request_bytes != 0 || s->spec.mem_limit_bytes != 0 || s->footprint_bytes != 0)
        fprintf(out,
                "  memory: declared request %" PRIu64 " B, limit %" PRIu64
                " B (0: none); observed footprint %" PRIu64 " B%s\n",
                s->spec.mem_request_bytes, s->spec.mem_limit_bytes, s->footprint_bytes,
                s->over_limit ? " OVER_LIMIT" : "");
    for (size_t j = 0; j < s->n_placements; j++)
        fprintf(out, "  on %s: %s\n", s->placements[j].node_id,
                wire_segment_state_name(s->placements[j].state));
    if (s->explain != NULL && s->explain[0] != '\0')
        fprintf(out, "%s\n", s->explain);
}

/* ---- commands ----------------------------------------------------------- */

/* cli_parse for sluice-coord: positional is the exact count of arguments, or -1 for any. */
static void ctl_parse(const struct config_option *opts, size_t n, int argc, char **argv,
                      int *ret_next, const char *usage, const char *desc, int positional)
{
    cli_parse("sluice-coord", opts, n, argc, argv, ret_next, usage, desc,
              positional < 0 ? 0 : positional, positional);
}

static void ctl_load_token(struct ctl_common *c)
{
    c->token = cli_load_token("sluice-coord", c->token_file);
}

/*
 * One request to the coordinator. Returns CTL_EXIT_OK with *resp filled
 * when it answered, whatever the status, or prints why not and returns the
 * exit code.
 */
static int ctl_send(const struct ctl_common *c, const char *cmd, const char *method,
                    const char *path, const void *body, size_t len, struct http_response *resp)
{
    int r;

    cli_check_coordinators("sluice-coord", cmd, c->coordinator);
    r = cli_call("sluice-coord", cmd, "sluice-coord", c->coordinator, method, path, body, len,
                 c->token, (unsigned)c->timeout_ms, resp);
    if (r == -EPROTOTYPE)
        return CTL_EXIT_USAGE; /* another daemon's address: a usage error */
    if (r < 0)
        return CTL_EXIT_UNREACHABLE;
    return CTL_EXIT_OK;
}

/* The same, with CTL_EXIT_OK only for a 2xx; any other answer is printed (exit 1). */
static int ctl_call(const struct ctl_common *c, const char *cmd, const char *method,
                    const char *path, const void *body, size_t len, struct http_response *resp)
{
    int rc = ctl_send(c, cmd, method, path, body, len, resp);

    if (rc != CTL_EXIT_OK || (resp->status >= 200 && resp->status < 300))
        return rc;
    cli_print_error("sluice-coord", cmd, resp);
    http_response_done(resp);
    return CTL_EXIT_FAILED;
}

static int ctl_bad_answer(const char *cmd, const struct wire_error *err)
{
    fprintf(stderr, "sluice-coord %s: unreadable answer: %s\n", cmd, err->message);
    return CTL_EXIT_FAILED;
}

/* --mem-request and --mem-limit of add and import: declared memory per segment. */
#define CTL_MEM_OPTS(req, lim)                                                                \
    {"mem-request", NULL, CONFIG_SIZE, &(req), "0",                                           \
     "Declared memory request per segment: admission counts at least this. 0: none.", 0,      \
     (int64_t)WIRE_MEM_DECLARED_MAX},                                                         \
        {"mem-limit", NULL, CONFIG_SIZE, &(lim), "0",                                         \
         "Declared memory limit per segment: a copy over it is OVER_LIMIT, shed first. 0: "   \
         "none.",                                                                             \
         0, (int64_t)WIRE_MEM_DECLARED_MAX}

/* A limit under the request is a usage error, named by its flags. 0 or -EINVAL. */
static int ctl_check_mem(const char *cmd, uint64_t request, uint64_t limit)
{
    if (limit != 0 && limit < request) {
        fprintf(stderr,
                "sluice-coord %s: --mem-limit: %" PRIu64 " is under --mem-request %" PRIu64 "\n",
                cmd, limit, request);
        return -EINVAL;
    }
    return 0;
}

static int cmd_status(int argc, char **argv)
{
    struct ctl_common c = {0};
    const struct config_option opts[] = {CTL_COMMON_OPTS(c)};
    struct wire_cluster_status st;
    struct http_response r;
    struct wire_error err;
    int next, rc;

    ctl_parse(opts, N_OPTS(opts), argc, argv, &next, "sluice-coord status [--json]",
              "Show the cluster: segments by state, nodes up.", 0);
    ctl_load_token(&c);
    rc = ctl_call(&c, "status", "GET", "/v1/status", NULL, 0, &r);
    if (rc == CTL_EXIT_OK) {
        if (wire_cluster_status_decode(r.body, r.body_len, &st, &err) == 0)
            ctl_print_status(stdout, &st, c.json);
        else
            rc = ctl_bad_answer("status", &err);
        http_response_done(&r);
    }
    free(c.token);
    config_free_strings(opts, N_OPTS(opts));
    return rc;
}

static int cmd_nodes(int argc, char **argv)
{
    struct ctl_common c = {0};
    const struct config_option opts[] = {CTL_COMMON_OPTS(c)};
    struct wire_node_list nodes;
    struct http_response r;
    struct wire_error err;
    int next, rc;

    ctl_parse(opts, N_OPTS(opts), argc, argv, &next, "sluice-coord nodes [--json]",
              "List nodes: state, pressure, working set, p99, segments, last refusal reason.", 0);
    ctl_load_token(&c);
    rc = ctl_call(&c, "nodes", "GET", "/v1/nodes", NULL, 0, &r);
    if (rc == CTL_EXIT_OK) {
        if (wire_node_list_decode(r.body, r.body_len, &nodes, &err) == 0) {
            ctl_print_nodes(stdout, &nodes, c.json);
            wire_node_list_done(&nodes);
        } else {
            rc = ctl_bad_answer("nodes", &err);
        }
        http_response_done(&r);
    }
    free(c.token);
    config_free_strings(opts, N_OPTS(opts));
    return rc;
}

static int cmd_segments(int argc, char **argv)
{
    struct ctl_common c = {0};
    char *state = NULL;
    int64_t limit = 0;
    static const char *const states[] = {"all", "PENDING", "LOADED", "INVALID", NULL};
    const struct config_option opts[] = {
        CTL_COMMON_OPTS(c),
        {"state", NULL, CONFIG_CHOICE, &state, "all", "Only segments in this state.",
         .choices = states},
        {"limit", NULL, CONFIG_INT, &limit, "1000", "Show at most this many.", 1, 1000000},
    };
    struct wire_segment_list segs;
    struct http_response r;
    struct wire_error err;
    char path[320], after[WIRE_ID_MAX + 1] = "";
    uint64_t shown = 0, total = 0;
    bool first = true;
    int next, rc = CTL_EXIT_OK;

    ctl_parse(opts, N_OPTS(opts), argc, argv, &next,
              "sluice-coord segments [--state S] [--limit N] [--json]",
              "List segments with their state and the nodes holding them, in id order "
              "(fetched a page at a time).",
              0);
    ctl_load_token(&c);
    /* Page after page, each one request, until --limit or the end: no answer is large. */
    while (shown < (uint64_t)limit) {
        uint64_t page = (uint64_t)limit - shown < CTL_SEGMENT_PAGE ? (uint64_t)limit - shown
                                                                   : CTL_SEGMENT_PAGE;
        bool more;

        snprintf(path, sizeof(path), "/v1/segments?limit=%" PRIu64 "%s%s%s%s", page,
                 strcmp(state, "all") != 0 ? "&state=" : "",
                 strcmp(state, "all") != 0 ? state : "", after[0] ? "&after=" : "", after);
        rc = ctl_call(&c, "segments", "GET", path, NULL, 0, &r);
        if (rc != CTL_EXIT_OK)
            break;
        if (wire_segment_list_decode(r.body, r.body_len, &segs, &err) < 0) {
            rc = ctl_bad_answer("segments", &err);
            http_response_done(&r);
            break;
        }
        http_response_done(&r);
        if (first) {
            total = segs.total;
            if (c.json)
                fputs("{\"segments\":[", stdout);
            else
                ctl_segments_header(stdout);
        }
        if (c.json)
            ctl_segments_json_items(stdout, &segs, first);
        else
            ctl_segments_rows(stdout, &segs);
        first = false;
        shown += segs.n;
        snprintf(after, sizeof(after), "%s", segs.next_after);
        more = segs.next_after[0] != '\0' && segs.n > 0;
        wire_segment_list_done(&segs);
        if (!more)
            break;
    }
    if (!first && c.json)
        /* The pages as one SegmentList; next_after says where --limit stopped it. */
        printf("],\"total\":%" PRIu64 ",\"next_after\":\"%s\"}\n", total, after);
    else if (!first && total > shown)
        printf("(%" PRIu64 " of %" PRIu64 " shown; use --limit)\n", shown, total);
    free(c.token);
    config_free_strings(opts, N_OPTS(opts));
    return rc;
}

static int cmd_tables(int argc, char **argv)
{
    struct ctl_common c = {0};
    const struct config_option opts[] = {CTL_COMMON_OPTS(c)};
    struct wire_table_list tl;
    struct http_response r;
    struct wire_error err;
    int next, rc;

    ctl_parse(opts, N_OPTS(opts), argc, argv, &next, "sluice-coord tables [--json]",
              "List tables: segments, rows, estimated bytes, and the fraction LOADED.", 0);
    ctl_load_token(&c);
    rc = ctl_call(&c, "tables", "GET", "/v1/tables", NULL, 0, &r);
    if (rc == CTL_EXIT_OK) {
        if (wire_table_list_decode(r.body, r.body_len, &tl, &err) == 0) {
            ctl_print_tables(stdout, &tl, c.json);
            wire_table_list_done(&tl);
        } else {
            rc = ctl_bad_answer("tables", &err);
        }
        http_response_done(&r);
    }
    free(c.token);
    config_free_strings(opts, N_OPTS(opts));
    return rc;
}

/* Appends s to buf percent-encoded (every byte but [A-Za-z0-9._~-]). */
static void ctl_url_encode(char *buf, size_t len, const char *s)
{
    size_t o = strlen(buf);

    for (; *s != '\0' && o + 4 < len; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            ch == '.' || ch == '_' || ch == '~' || ch == '-')
            buf[o++] = (char)ch;
        else
            o += (size_t)snprintf(buf + o, len - o, "%%%02X", ch);
    }
    buf[o] = '\0';
}

static int cmd_recommend(int argc, char **argv)
{
    struct ctl_common c = {0};
    char *table = NULL;
    const struct config_option opts[] = {
        CTL_COMMON_OPTS(c),
        {"table", NULL, CONFIG_STRING, &table, NULL, "Only this table."},
    };
    struct wire_recommendation_list l;
    struct http_response r;
    struct wire_error err;
    char path[WIRE_TABLE_MAX * 3 + 64] = "/v1/recommendations";
    int next, rc;

    ctl_parse(opts, N_OPTS(opts), argc, argv, &next, "sluice-coord recommend [--table T] [--json]",
              "Recommend a per-segment --mem-request and --mem-limit for each table from the "
              "footprints nodes observed (p90 and p95, plus 15 %), and say how far the "
              "declared values and the row-count estimate are from what was observed.",
              0);
    if (table != NULL) {
        if (wire_check_table("--table", table, &err) < 0) {
            fprintf(stderr, "sluice-coord recommend: %s\n", err.message);
            config_free_strings(opts, N_OPTS(opts));
            return CTL_EXIT_USAGE;
        }
        strcat(path, "?table=");
        ctl_url_encode(path, sizeof(path), table);
    }
    ctl_load_token(&c);
    rc = ctl_call(&c, "recommend", "GET", path, NULL, 0, &r);
    if (rc == CTL_EXIT_OK) {
        if (wire_recommendation_list_decode(r.body, r.body_len, &l, &err) == 0) {
            ctl_print_recommendations(stdout, &l, c.json);
            wire_recommendation_list_done(&l);
        } else {
            rc = ctl_bad_answer("recommend", &err);
        }
        http_response_done(&r);
    }
    free(c.token);
    config_free_strings(opts, N_OPTS(opts));
    return rc;
}

/* Registers a batch; prints nothing on success. */
static int ctl_register(const struct ctl_common *c, const char *cmd,
                        const struct wire_segment_batch *b, struct wire_batch_response *ret)
{
    struct http_response r;
    struct wire_error err;
    size_t len;
    uint8_t *body = wire_segment_batch_encode(b, &len);
    int rc = ctl_call(c, cmd, "POST", "/v1/segments", body, len, &r);

    free(body);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (wire_batch_response_decode(r.body, r.body_len, ret, &err) < 0)
        rc = ctl_bad_answer(cmd, &err);
    http_response_done(&r);
    return rc;
}

static int cmd_add(int argc, char **argv)
{
    struct ctl_common c = {0};
    char *id = NULL, *uri = NULL, *table = NULL;
    int64_t rows = 0, row_size = 0, replication = 0;
    uint64_t mem_request = 0, mem_limit = 0;
    const struct config_option opts[] = {
        CTL_COMMON_OPTS(c),
        {"id", NULL, CONFIG_STRING, &id, NULL, "Segment id.", .required = true},
        {"uri", NULL, CONFIG_STRING, &uri, NULL, "file:/// URI of the segment file.",
         .required = true},
        {"rows", NULL, CONFIG_INT, &rows, NULL, "Row count.", 1, (int64_t)WIRE_ROW_COUNT_MAX,
         .required = true},
        {"row-size", NULL, CONFIG_INT, &row_size, NULL, "Average row size in bytes.", 1,
         (int64_t)WIRE_ROW_SIZE_MAX, .required = true},
        {"replication", NULL, CONFIG_INT, &replication, "1", "Copies to place.", 1,
         WIRE_REPLICATION_MAX},
        {"table", NULL, CONFIG_STRING, &table, WIRE_TABLE_DEFAULT,
         "Table the segment belongs to."},
        CTL_MEM_OPTS(mem_request, mem_limit),
    };
    struct wire_segment_spec spec;
    struct wire_segment_batch b = {1, &spec};
    struct wire_batch_response br;
    struct wire_error err;
    int next, rc;

    ctl_parse(opts, N_OPTS(opts), argc, argv, &next,
              "sluice-coord add --id ID --uri URI --rows N --row-size B [--replication R] "
              "[--table T] [--mem-request B] [--mem-limit B]",
              "Register one segment.", 0);
    memset(&spec, 0, sizeof(spec));
    if (strlen(id) > WIRE_ID_MAX) {
        fprintf(stderr, "sluice-coord add: --id: longer than %d bytes\n", WIRE_ID_MAX);
        return CTL_EXIT_USAGE;
    }
    snprintf(spec.segment_id, sizeof(spec.segment_id), "%s", id);
    spec.uri = uri;
    spec.row_count = (uint64_t)rows;
    spec.avg_row_size = (uint64_t)row_size;
    spec.replication = (uint32_t)replication;
    spec.mem_request_bytes = mem_request;
    spec.mem_limit_bytes = mem_limit;
    if (ctl_check_mem("add", mem_request, mem_limit) < 0) {
        config_free_strings(opts, N_OPTS(opts));
        return CTL_EXIT_USAGE;
    }
    if (wire_check_table("--table", table, &err) < 0 ||
        (snprintf(spec.table, sizeof(spec.table), "%s", table) >= 0 &&
         wire_check_segment_spec("segment", &spec, &err) < 0)) {
        fprintf(stderr, "sluice-coord add: %s\n", err.message);
        config_free_strings(opts, N_OPTS(opts));
        return CTL_EXIT_USAGE;
    }
    ctl_load_token(&c);
    rc = ctl_register(&c, "add", &b, &br);
    if (rc == CTL_EXIT_OK && c.json) {
        size_t len;
        uint8_t *buf = wire_batch_response_encode(&br, &len);

        ctl_json_msg(stdout, WIRE_MSG_SEGMENT_BATCH_RESPONSE, buf, len);
    } else if (rc == CTL_EXIT_OK) {
        printf("%s: %s\n", spec.segment_id,
               br.registered ? "registered" : "already registered (unchanged)");
    }
    free(c.token);
    config_free_strings(opts, N_OPTS(opts));
    return rc;
}

/* Reads a segment file's header into a spec. Returns 0 or prints why not. */
static int ctl_read_spec(const char *path, struct wire_segment_spec *spec)
{
    struct segment_header hdr;
    char detail[512], real[4096];
    uint64_t row_bytes;

    if (segment_read_header(path, &hdr, detail, sizeof(detail)) < 0) {
        fprintf(stderr, "sluice-coord import: %s: skipped: %s\n", path, detail);
        return -1;
    }
    if (hdr.row_count == 0) {
        fprintf(stderr, "sluice-coord import: %s: skipped: no rows\n", path);
        return -1;
    }
    row_bytes = segment_row_bytes(&hdr);
    if (realpath(path, real) == NULL)
        snprintf(real, sizeof(real), "%s", path);
    spec->uri = xasprintf("file://%s", real);
    spec->row_count = hdr.row_count;
    spec->avg_row_size = row_bytes > 0 ? row_bytes : 1;
    spec->digest = segment_digest(&hdr);
    return 0;
}

/*
 * The table of `import DIR` without --table: the directory's base name
 * (trailing slashes ignored; ".", ".." and the like resolved first). 0, or
 * -EINVAL when there is none (the root).
 */
static int ctl_dir_table(const char *dir, char *buf, size_t len)
{
    char real[4096], *copy = xstrdup(dir), *base;
    size_t n = strlen(copy);
    int r = 0;

    while (n > 1 && copy[n - 1] == '/')
        copy[--n] = '\0';
    base = strrchr(copy, '/') != NULL ? strrchr(copy, '/') + 1 : copy;
    if ((strcmp(base, ".") == 0 || strcmp(base, "..") == 0 || base[0] == '\0') &&
        realpath(dir, real) != NULL)
        base = strrchr(real, '/') + 1;
    if (base[0] == '\0' || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
        r = -EINVAL;
    else
        snprintf(buf, len, "%s", base);
    free(copy);
    return r;
}

/*
 * Registers one batch of import. A segment the coordinator refuses on its
 * own (a 409 or 400 whose message starts "segments[i]") is reported by file
 * name with the coordinator's reason, counted in *refused and taken out of
 * the batch, and the rest is sent again: one bad file does not keep the
 * good ones out (a batch is one transaction on the coordinator). Returns
 * CTL_EXIT_OK, also when some were refused, or the exit code of any other
 * failure (printed).
 */
static int ctl_import_batch(const struct ctl_common *c, const char *dir,
                            struct wire_segment_batch *b, uint64_t *registered,
                            uint64_t *unchanged, uint64_t *refused)
{
    while (b->n > 0) {
        struct http_response r;
        struct wire_batch_response br;
        struct wire_error err;
        size_t len, k;
        uint8_t *body = wire_segment_batch_encode(b, &len);
        int rc = ctl_send(c, "import", "POST", "/v1/segments", body, len, &r), used = 0;

        free(body);
        if (rc != CTL_EXIT_OK)
            return rc;
        if (r.status == 200) {
            if (wire_batch_response_decode(r.body, r.body_len, &br, &err) < 0)
                rc = ctl_bad_answer("import", &err);
            else
                *registered += br.registered, *unchanged += br.unchanged;
            http_response_done(&r);
            return rc;
        }
        if ((r.status != 409 && r.status != 400) ||
            wire_error_decode(r.body, r.body_len, &err) < 0 ||
            sscanf(err.message, "segments[%zu]: %n", &k, &used) != 1 || used == 0 || k >= b->n) {
            cli_print_error("sluice-coord", "import", &r);
            http_response_done(&r);
            return CTL_EXIT_FAILED;
        }
        fprintf(stderr, "sluice-coord import: %s/%s.seg: refused (HTTP %d %s): %s\n", dir,
                b->specs[k].segment_id, r.status, err.code, err.message + used);
        http_response_done(&r);
        (*refused)++;
        free(b->specs[k].uri);
        memmove(&b->specs[k], &b->specs[k + 1], (b->n - k - 1) * sizeof(b->specs[0]));
        b->n--;
    }
    return CTL_EXIT_OK;
}

static int ctl_cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmd_import(int argc, char **argv)
{
    struct ctl_common c = {0};
    char *table_opt = NULL;
    int64_t replication = 0, batch = 0;
    uint64_t mem_request = 0, mem_limit = 0;
    const struct config_option opts[] = {
        CTL_COMMON_OPTS(c),
        {"replication", NULL, CONFIG_INT, &replication, "1", "Copies of each segment.", 1,
         WIRE_REPLICATION_MAX},
        {"batch", NULL, CONFIG_INT, &batch, "1000", "Segments registered per request.", 1,
         WIRE_BATCH_MAX},
        {"table", NULL, CONFIG_STRING, &table_opt, NULL,
         "Table of every segment imported (default: the directory's base name)."},
        CTL_MEM_OPTS(mem_request, mem_limit),
    };
    struct wire_segment_batch b = {0, NULL};
    char table[WIRE_TABLE_MAX + 1];
    struct wire_error terr;
    uint64_t registered = 0, unchanged = 0, skipped = 0, refused = 0;
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    const char *dir;
    int next, rc = CTL_EXIT_OK;
    DIR *d;

    ctl_parse(opts, N_OPTS(opts), argc, argv, &next,
              "sluice-coord import DIR [--table T] [--mem-request B] [--mem-limit B] "
              "[--replication R] [--batch N] [--json]",
              "Register every *.seg file in DIR (the id is the file name without .seg), "
              "reading row count and row size from each header. A file the coordinator "
              "refuses is named with its reason and the others are registered; exits 1 if "
              "any was refused.",
              1);
    dir = argv[next];
    if (ctl_check_mem("import", mem_request, mem_limit) < 0) {
        config_free_strings(opts, N_OPTS(opts));
        return CTL_EXIT_USAGE;
    }
    if (table_opt != NULL) {
        if (wire_check_table("--table", table_opt, &terr) < 0) {
            fprintf(stderr, "sluice-coord import: %s\n", terr.message);
            config_free_strings(opts, N_OPTS(opts));
            return CTL_EXIT_USAGE;
        }
        snprintf(table, sizeof(table), "%s", table_opt);
    } else if (ctl_dir_table(dir, table, sizeof(table)) < 0 ||
               wire_check_table("table", table, &terr) < 0) {
        /* The root has no name; a name that is no table name says why. */
        fprintf(stderr,
                "sluice-coord import: %s: the directory's name is no table name (%s); "
                "give --table\n",
                dir, ctl_dir_table(dir, table, sizeof(table)) < 0 ? "it has none" : terr.message);
        config_free_strings(opts, N_OPTS(opts));
        return CTL_EXIT_USAGE;
    }
    d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "sluice-coord import: %s: %s\n", dir, strerror(errno));
        config_free_strings(opts, N_OPTS(opts));
        return CTL_EXIT_USAGE;
    }
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len > 4 && strcmp(de->d_name + len - 4, ".seg") == 0 && de->d_name[0] != '.') {
            if (n == cap) {
                cap = cap * 2 + 64;
                names = xreallocarray(names, cap, sizeof(*names));
            }
            names[n++] = xstrdup(de->d_name);
        }
    }
    closedir(d);
    qsort(names, n, sizeof(*names), ctl_cmp_str);
    ctl_load_token(&c);
    b.specs = xcalloc((size_t)batch, sizeof(*b.specs));
    for (size_t i = 0; i <= n && rc == CTL_EXIT_OK; i++) {
        if (i < n) {
            struct wire_segment_spec *s = &b.specs[b.n];
            char *path = xasprintf("%s/%s", dir, names[i]);
            struct wire_error err;

            memset(s, 0, sizeof(*s));
            s->replication = (uint32_t)replication;
            snprintf(s->table, sizeof(s->table), "%s", table);
            s->mem_request_bytes = mem_request;
            s->mem_limit_bytes = mem_limit;
            if (strlen(names[i]) - 4 > WIRE_ID_MAX) {
                /* Never truncated: two long names would become one id. */
                fprintf(stderr,
                        "sluice-coord import: %s: skipped: the id (the file name without .seg) "
                        "is %zu bytes, longer than the limit of %d\n",
                        path, strlen(names[i]) - 4, WIRE_ID_MAX);
                skipped++;
            } else if (snprintf(s->segment_id, sizeof(s->segment_id), "%.*s",
                                (int)(strlen(names[i]) - 4), names[i]) < 0 ||
                       ctl_read_spec(path, s) < 0) {
                skipped++;
            } else if (wire_check_segment_spec(names[i], s, &err) < 0) {
                fprintf(stderr, "sluice-coord import: skipped: %s\n", err.message);
                free(s->uri);
                skipped++;
            } else {
                b.n++;
            }
            free(path);
        }
        if (b.n == (size_t)batch || (i == n && b.n > 0)) {
            rc = ctl_import_batch(&c, dir, &b, &registered, &unchanged, &refused);
            for (size_t k = 0; k < b.n; k++)
                free(b.specs[k].uri);
            b.n = 0;
            /* Progress between batches; the summary below says the last word. */
            if (!c.json && i < n)
                fprintf(stderr, "import: %zu of %zu files read so far\n", i + 1, n);
        }
    }
    if (c.json)
        ctl_json_obj(json_pack("{s:s,s:I,s:I,s:I,s:I,s:I}", "table", table, "files",
                               (json_int_t)n, "registered", (json_int_t)registered, "unchanged",
                               (json_int_t)unchanged, "skipped", (json_int_t)skipped, "refused",
                               (json_int_t)refused));
    else if (rc == CTL_EXIT_OK)
        printf("imported %s into table %s: %" PRIu64 " registered, %" PRIu64
               " already registered, %" PRIu64 " skipped, %" PRIu64 " refused\n",
               dir, table, registered, unchanged, skipped, refused);
    /* Every file was tried; one the coordinator refused is not a success. */
    if (rc == CTL_EXIT_OK && refused > 0)
        rc = CTL_EXIT_FAILED;
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    free(b.specs);
    free(c.token);
    config_free_strings(opts, N_OPTS(opts));
    return rc;
}

/*
 * Whether the state a node action left is the one asked for, and if not,
 * why, for people. drain asks that the node gets nothing new: DRAINING, or
 * DOWN or SUSPECT (nothing is sent to them; the drain is recorded and the
 * node is DRAINING when it reports again). undrain asks for UP.
 */
static bool ctl_action_done(const char *action, const char *state, const char **ret_note)
{
    bool drain = strcmp(action, "drain") == 0;

    *ret_note = NULL;
    if (drain) {
        if (strcmp(state, "DOWN") == 0 || strcmp(state, "SUSPECT") == 0)
            *ret_note = "drain recorded: it is DRAINING when it reports again";
        return strcmp(state, "DRAINING") == 0 || strcmp(state, "DOWN") == 0 ||
               strcmp(state, "SUSPECT") == 0;
    }
    if (strcmp(state, "DRAINING") == 0)
        *ret_note = "the node drains itself; it is UP when it stops";
    else if (strcmp(state, "DOWN") == 0 || strcmp(state, "SUSPECT") == 0)
        *ret_note = "drain lifted: it is UP when it reports again";
    return strcmp(state, "UP") == 0;
}

static int ctl_node_action(int argc, char **argv, const char *action)
{
    struct ctl_common c = {0};
    const struct config_option opts[] = {CTL_COMMON_OPTS(c)};
    struct http_response r;
    struct wire_error err;
    char usage[96], path[256], state[16];
    const char *note;
    int next, rc;
    bool done;

    snprintf(usage, sizeof(usage), "sluice-coord %s NODE", action);
    ctl_parse(opts, N_OPTS(opts), argc, argv, &next, usage,
              strcmp(action, "drain") == 0
                  ? "Stop placing segments on NODE (what it holds stays until moved). Prints "
                    "the node's resulting state; a DOWN node stays DOWN and is DRAINING when "
                    "it reports again."
                  : "Place segments on NODE again. Prints the node's resulting state and "
                    "exits 1 unless it is UP (a node draining itself stays DRAINING).",
              1);
    if (wire_check_segment_id("NODE", argv[next], &err) < 0) {
        fprintf(stderr, "sluice-coord %s: %s\n", action, err.message);
        config_free_strings(opts, N_OPTS(opts));
        return CTL_EXIT_USAGE;
    }
    ctl_load_token(&c);
    snprintf(path, sizeof(path), "/v1/nodes/%s/%s", argv[next], action);
    rc = ctl_call(&c, action, "POST", path, NULL, 0, &r);
    if (rc == CTL_EXIT_OK) {
        /* The answer is the node's state after the action, "STATE\n". */
        wire_utf8_escape(state, sizeof(state), r.body, strcspn(r.body, " \r\n"));
        done = ctl_action_done(action, state, &note);
        if (c.json) {
            ctl_json_obj(json_pack("{s:s,s:s,s:s,s:b}", "node", argv[next], "action", action,
                                   "state", state, "done", done));
        } else {
            printf("%s: %s%s%s%s\n", argv[next], state, note != NULL ? " (" : "",
                   note != NULL ? note : "", note != NULL ? ")" : "");
        }
        if (!done) {
            fprintf(stderr, "sluice-coord %s: %s is %s, not %s\n", action, argv[next], state,
                    strcmp(action, "drain") == 0 ? "DRAINING" : "UP");
            rc = CTL_EXIT_FAILED;
        }
        http_response_done(&r);
    }
    free(c.token);
    config_free_strings(opts, N_OPTS(opts));
    return rc;
}

/* An admin action on one named segment or node: retry, remove, forget. */
struct ctl_id_action {
    const char *name, *usage, *desc;
    const char *arg;      /* "SEGMENT" or "NODE" */
    const char *key;      /* its JSON key: "segment" or "node" */
    const char *method;   /* "POST" or "DELETE" */
    const char *path, *path_tail; /* the id goes between them */
    /* Printed "<id>: <done>" and JSON {key, done: true}; NULL: the answer's state, {key, state}. */
    const char *done;
};

static int ctl_id_action_run(const struct ctl_id_action *a, int argc, char **argv)
{
    struct ctl_common c = {0};
    const struct config_option opts[] = {CTL_COMMON_OPTS(c)};
    struct http_response r;
    struct wire_error err;
    char path[256], state[16];
    const char *id;
    int next, rc;

    ctl_parse(opts, N_OPTS(opts), argc, argv, &next, a->usage, a->desc, 1);
    id = argv[next];
    if (wire_check_segment_id(a->arg, id, &err) < 0) {
        fprintf(stderr, "sluice-coord %s: %s\n", a->name, err.message);
        config_free_strings(opts, N_OPTS(opts));
        return CTL_EXIT_USAGE;
    }
    ctl_load_token(&c);
    snprintf(path, sizeof(path), "%s%s%s", a->path, id, a->path_tail);
    rc = ctl_call(&c, a->name, a->method, path, NULL, 0, &r);
    if (rc == CTL_EXIT_OK) {
        wire_utf8_escape(state, sizeof(state), r.body, strcspn(r.body, " \r\n"));
        if (c.json && a->done != NULL)
            ctl_json_obj(json_pack("{s:s,s:b}", a->key, id, a->done, 1));
        else if (c.json)
            ctl_json_obj(json_pack("{s:s,s:s}", a->key, id, "state", state));
        else
            printf("%s: %s\n", id, a->done != NULL ? a->done : state);
        http_response_done(&r);
    }
    free(c.token);
    config_free_strings(opts, N_OPTS(opts));
    return rc;
}

static int cmd_retry(int argc, char **argv)
{
    static const struct ctl_id_action a = {
        "retry", "sluice-coord retry SEGMENT [--json]",
        "Make an INVALID segment placeable again (PENDING), after its file was fixed; the "
        "nodes' earlier verdicts are forgotten. Exits 1 if it is not INVALID.",
        "SEGMENT", "segment", "POST", "/v1/segments/", "/retry", NULL};

    return ctl_id_action_run(&a, argc, argv);
}

static int cmd_remove(int argc, char **argv)
{
    static const struct ctl_id_action a = {
        "remove", "sluice-coord remove SEGMENT [--json]",
        "Take a registration back: the segment leaves the catalog (its events stay) and every "
        "node holding a copy drops it at its next report. Its file is not touched. Exits 1 if "
        "it is not registered.",
        "SEGMENT", "segment", "DELETE", "/v1/segments/", "", "removed"};

    return ctl_id_action_run(&a, argc, argv);
}

static int cmd_forget(int argc, char **argv)
{
    static const struct ctl_id_action a = {
        "forget", "sluice-coord forget NODE [--json]",
        "Remove a DOWN node (silent for --node-timeout) from the coordinator's memory, catalog "
        "and placement ring. Exits 1 if it is not DOWN. If it reports again, it joins as a new "
        "node.",
        "NODE", "node", "POST", "/v1/nodes/", "/forget", "forgotten"};

    return ctl_id_action_run(&a, argc, argv);
}

static int cmd_drain(int argc, char **argv)
{
    return ctl_node_action(argc, argv, "drain");
}

static int cmd_undrain(int argc, char **argv)
{
    return ctl_node_action(argc, argv, "undrain");
}

/*
 * For a command that found nothing about segment id: CTL_EXIT_FAILED,
 * saying so, when the coordinator does not know the id either; else OK.
 */
static int ctl_segment_unknown(const struct ctl_common *c, const char *cmd, const char *id)
{
    struct http_response r;
    char path[256];
    int rc;

    snprintf(path, sizeof(path), "/v1/segments/%s", id);
    rc = ctl_send(c, cmd, "GET", path, NULL, 0, &r);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (r.status == 404) {
        fprintf(stderr, "sluice-coord %s: segment \"%s\" is not registered and has no events\n",
                cmd, id);
        rc = CTL_EXIT_FAILED;
    }
    http_response_done(&r);
    return rc;
}

static int cmd_events(int argc, char **argv)
{
    struct ctl_common c = {0};
    char *segment = NULL;
    int64_t limit = 0, before = 0, after = 0;
    const struct config_option opts[] = {
        CTL_COMMON_OPTS(c),
        {"segment", NULL, CONFIG_STRING, &segment, "", "Only events of this segment."},
        {"limit", NULL, CONFIG_INT, &limit, "100", "Events shown (one page).", 1, 100000},
        {"before", NULL, CONFIG_INT, &before, "0",
         "Page back: the newest events older than this event id (0: the newest).", 0,
         INT64_MAX},
        {"after", NULL, CONFIG_INT, &after, "0",
         "Page forward: the oldest events newer than this event id (0: off).", 0, INT64_MAX},
    };
    struct wire_event_list evs;
    struct http_response r;
    struct wire_error err;
    char path[320];
    int next, rc;

    ctl_parse(opts, N_OPTS(opts), argc, argv, &next,
              "sluice-coord events [--segment ID] [--limit N] [--before ID | --after ID] [--json]",
              "Placement history: refusals with their reasons, acceptances, node state changes. "
              "Shows the newest page; the next older one is --before the id it names.",
              0);
    if (segment[0] != '\0' && wire_check_segment_id("--segment", segment, &err) < 0) {
        fprintf(stderr, "sluice-coord events: %s\n", err.message);
        config_free_strings(opts, N_OPTS(opts));
        return CTL_EXIT_USAGE;
    }
    if (before > 0 && after > 0) {
        fprintf(stderr, "sluice-coord events: --before, --after: give at most one\n");
        config_free_strings(opts, N_OPTS(opts));
        return CTL_EXIT_USAGE;
    }
    ctl_load_token(&c);
    snprintf(path, sizeof(path), "/v1/events?limit=%" PRId64 "%s%s", limit,
             segment[0] != '\0' ? "&segment=" : "", segment);
    if (before > 0 || after > 0)
        snprintf(path + strlen(path), sizeof(path) - strlen(path), "&%s=%" PRId64,
                 before > 0 ? "before" : "after", before > 0 ? before : after);
    rc = ctl_call(&c, "events", "GET", path, NULL, 0, &r);
    if (rc == CTL_EXIT_OK) {
        if (wire_event_list_decode(r.body, r.body_len, &evs, &err) == 0) {
            ctl_print_events(stdout, &evs, c.json);
            /* No events, and no such segment: a mistyped id, as `explain` says (exit 1). */
            if (evs.n == 0 && segment[0] != '\0' && before == 0 && after == 0)
                rc = ctl_segment_unknown(&c, "events", segment);
            wire_event_list_done(&evs);
        } else {
            rc = ctl_bad_answer("events", &err);
        }
        http_response_done(&r);
    }
    free(c.token);
    config_free_strings(opts, N_OPTS(opts));
    return rc;
}

static int cmd_explain(int argc, char **argv)
{
    struct ctl_common c = {0};
    const struct config_option opts[] = {CTL_COMMON_OPTS(c)};
    struct wire_segment_list segs;
    struct http_response r;
    struct wire_error err;
    char path[256];
    int next, rc;

    ctl_parse(opts, N_OPTS(opts), argc, argv, &next, "sluice-coord explain SEGMENT [--json]",
              "Why a segment is where it is, or why it is still pending: each node's last "
              "answer.",
              1);
    if (wire_check_segment_id("SEGMENT", argv[next], &err) < 0) {
        fprintf(stderr, "sluice-coord explain: %s\n", err.message);
        config_free_strings(opts, N_OPTS(opts));
        return CTL_EXIT_USAGE;
    }
    ctl_load_token(&c);
    snprintf(path, sizeof(path), "/v1/segments/%s", argv[next]);
    rc = ctl_call(&c, "explain", "GET", path, NULL, 0, &r);
    if (rc == CTL_EXIT_OK) {
        if (wire_segment_list_decode(r.body, r.body_len, &segs, &err) == 0 && segs.n == 1) {
            ctl_print_explain(stdout, &segs.segments[0], c.json);
            wire_segment_list_done(&segs);
        } else {
            rc = ctl_bad_answer("explain", &err);
        }
        http_response_done(&r);
    }
    free(c.token);
    config_free_strings(opts, N_OPTS(opts));
    return rc;
}

/*
 * Every placeable segment is LOADED, but some are INVALID: that is not a
 * success. Names them (the first few) and says how to go on. CTL_EXIT_FAILED.
 */
static int ctl_report_invalid(const struct ctl_common *c, const struct wire_cluster_status *st)
{
    struct wire_segment_list segs;
    struct http_response r;
    struct wire_error err;

    fprintf(stderr, "sluice-coord wait: %" PRIu64 " segment%s INVALID (no node could read %s "
                    "file; fix it, then `sluice-coord retry SEGMENT`)",
            st->segments_invalid, st->segments_invalid == 1 ? "" : "s",
            st->segments_invalid == 1 ? "its" : "their");
    if (ctl_call(c, "wait", "GET", "/v1/segments?state=INVALID&limit=20", NULL, 0, &r) ==
        CTL_EXIT_OK) {
        if (wire_segment_list_decode(r.body, r.body_len, &segs, &err) == 0) {
            for (size_t i = 0; i < segs.n; i++)
                fprintf(stderr, "%s%s", i == 0 ? ": " : ", ", segs.segments[i].spec.segment_id);
            if (segs.total > segs.n)
                fprintf(stderr, ", ... (%" PRIu64 " in all)", segs.total);
            wire_segment_list_done(&segs);
        }
        http_response_done(&r);
    }
    fputc('\n', stderr);
    return CTL_EXIT_FAILED;
}

static int cmd_wait(int argc, char **argv)
{
    struct ctl_common c = {0};
    uint64_t wait_ms = 0;
    const struct config_option opts[] = {
        CTL_COMMON_OPTS(c),
        {"for", NULL, CONFIG_DURATION, &wait_ms, "10m",
         "Give up after this long (exit 4).", 100, 86400000},
    };
    struct wire_cluster_status st;
    uint64_t deadline;
    int next, rc = CTL_EXIT_TIMEOUT;

    ctl_parse(opts, N_OPTS(opts), argc, argv, &next, "sluice-coord wait [--for DURATION]",
              "Wait until every placeable segment is LOADED, showing progress. INVALID "
              "segments are not placeable: if any are left, exits 1 naming them.",
              0);
    ctl_load_token(&c);
    deadline = clock_mono_ns() / 1000000 + wait_ms;
    for (;;) {
        struct http_response r;
        struct wire_error err;
        int crc = ctl_call(&c, "wait", "GET", "/v1/status", NULL, 0, &r);

        if (crc != CTL_EXIT_OK) {
            rc = crc;
            break;
        }
        crc = wire_cluster_status_decode(r.body, r.body_len, &st, &err);
        http_response_done(&r);
        if (crc < 0) {
            rc = ctl_bad_answer("wait", &err);
            break;
        }
        if (!c.json)
            fprintf(stderr, "wait: %" PRIu64 "/%" PRIu64 " loaded, %" PRIu64 " pending (%" PRIu64
                            " backing off), %" PRIu64 " invalid, %u/%u nodes up%s\n",
                    st.segments_loaded, st.segments_total - st.segments_invalid,
                    st.segments_pending, st.segments_backing_off, st.segments_invalid,
                    st.nodes_up, st.nodes_total, ctl_draining_note(&st));
        if (st.segments_pending == 0 && st.segments_loaded + st.segments_invalid ==
                                            st.segments_total) {
            rc = st.segments_invalid > 0 ? ctl_report_invalid(&c, &st) : CTL_EXIT_OK;
            break;
        }
        if (clock_mono_ns() / 1000000 >= deadline)
            break;
        usleep(1000000);
    }
    if (c.json && (rc == CTL_EXIT_OK || rc == CTL_EXIT_TIMEOUT))
        ctl_print_status(stdout, &st, true);
    if (rc == CTL_EXIT_TIMEOUT)
        fprintf(stderr, "sluice-coord wait: gave up after %" PRIu64 " ms\n", wait_ms);
    free(c.token);
    config_free_strings(opts, N_OPTS(opts));
    return rc;
}

/*
 * --filter COL:LO:HI (LO and HI inclusive int64 bounds, either may be
 * negative) into q. 0, or -EINVAL with msg naming the problem.
 */
int ctl_parse_filter(const char *s, struct wire_query_request *q, char *msg, size_t len)
{
    const char *c1 = strchr(s, ':'), *c2;
    char col[WIRE_COLUMN_MAX + 1], *end;
    long long lo, hi;
    struct wire_error err;

    if (c1 == NULL || (c2 = strchr(c1 + 2, ':')) == NULL || c1[1] == '\0') {
        snprintf(msg, len, "--filter: \"%.100s\" is not COLUMN:LO:HI", s);
        return -EINVAL;
    }
    snprintf(col, sizeof(col), "%.*s", (int)(c1 - s), s);
    if ((size_t)(c1 - s) >= sizeof(col) || wire_check_column("--filter column", col, &err) < 0) {
        snprintf(msg, len, "%s", (size_t)(c1 - s) >= sizeof(col) ? "--filter: column too long"
                                                                  : err.message);
        return -EINVAL;
    }
    errno = 0;
    lo = strtoll(c1 + 1, &end, 10);
    if (errno != 0 || end != c2 || end == c1 + 1) {
        snprintf(msg, len, "--filter: LO \"%.*s\" is not an int64", (int)(c2 - c1 - 1), c1 + 1);
        return -EINVAL;
    }
    hi = strtoll(c2 + 1, &end, 10);
    if (errno != 0 || *end != '\0' || end == c2 + 1) {
        snprintf(msg, len, "--filter: HI \"%.60s\" is not an int64", c2 + 1);
        return -EINVAL;
    }
    if (lo > hi) {
        snprintf(msg, len, "--filter: LO %lld is greater than HI %lld", lo, hi);
        return -EINVAL;
    }
    snprintf(q->filter_column, sizeof(q->filter_column), "%s", col);
    q->lo = lo;
    q->hi = hi;
    return 0;
}

void ctl_print_query(FILE *out, const struct wire_table_query_response *r, const char *agg,
                     const char *table, bool json)
{
    if (json) {
        size_t len = 0;
        uint8_t *buf = wire_table_query_response_encode(r, &len);

        ctl_json_msg(out, WIRE_MSG_QUERY_RESPONSE, buf, len);
        return;
    }
    if (r->result.is_float)
        fprintf(out, "%s = %.17g\n", agg, r->result.float_value);
    else
        fprintf(out, "%s = %" PRId64 "\n", agg, r->result.int_value);
    fprintf(out,
            "table %s: %" PRIu32 " segments, rows matched %" PRIu64 ", scanned %" PRIu64
            ", bytes %" PRIu64 "\n",
            table, r->segments, r->result.rows_matched, r->result.rows_scanned,
            r->result.bytes_scanned);
    fprintf(out,
            "nodes asked %" PRIu32 ", requests %" PRIu32 ", retries %" PRIu32 ", hedges %" PRIu32
            ", placement version %" PRIu64 "\n",
            r->nodes_asked, r->subrequests, r->retries, r->hedges, r->placement_version);
    if (r->partial) {
        fprintf(out, "PARTIAL: %zu segments missing:", r->n_missing);
        for (size_t i = 0; i < r->n_missing; i++)
            fprintf(out, " %s", r->missing[i]);
        fputc('\n', out);
    }
}

static int cmd_query(int argc, char **argv)
{
    char *broker = NULL, *token_file = NULL, *table = NULL, *agg = NULL, *column = NULL,
         *filter = NULL, *token = NULL, *coordinator = NULL;
    static const char *const aggs[] = {"count", "sum", "min", "max", NULL};
    bool json = false, partial = false;
    uint64_t timeout_ms = 0;
    const struct config_option opts[] = {
        {"broker", "SLUICE_BROKER", CONFIG_STRING, &broker, "127.0.0.1:7200",
         "Broker address (sluice-coord broker)."},
        {"coordinator", NULL, CONFIG_STRING, &coordinator, "",
         "Ask this coordinator instead of a broker: it answers table queries itself, "
         "through the same code."},
        CLI_TOKEN_OPTION(token_file),
        {"json", NULL, CONFIG_BOOL, &json, "false", "Print one JSON document."},
        {"table", NULL, CONFIG_STRING, &table, NULL, "Table to query.", .required = true},
        {"agg", NULL, CONFIG_CHOICE, &agg, "sum", "Aggregate.", .choices = aggs},
        {"column", NULL, CONFIG_STRING, &column, "value", "Aggregated column."},
        {"filter", NULL, CONFIG_STRING, &filter, "",
         "Rows whose int64 column COL lies in [LO, HI]: COL:LO:HI."},
        {"allow-partial", NULL, CONFIG_BOOL, &partial, "false",
         "Answer without segments no replica answered, listing them (else an error)."},
        {"timeout", "SLUICE_TIMEOUT", CONFIG_DURATION, &timeout_ms, "10s",
         "The query's deadline (the broker's sub-requests carry what is left of it).", 10,
         600000},
    };
    struct wire_query_request q;
    struct wire_table_query_response tr;
    struct http_response r;
    struct wire_error err;
    char msg[256];
    uint8_t *body;
    size_t len;
    int next, rc;

    ctl_parse(opts, N_OPTS(opts), argc, argv, &next,
              "sluice-coord query [--broker ADDR | --coordinator ADDR] --table T "
              "[--agg count|sum|min|max] [--column C] [--filter COL:LO:HI] [--allow-partial] "
              "[--json]",
              "Query a table through a broker (or --coordinator, which answers itself): the "
              "merged aggregate, rows scanned, nodes asked, retries and hedges.",
              0);
    memset(&q, 0, sizeof(q));
    if (wire_check_table("--table", table, &err) < 0 ||
        wire_check_column("--column", column, &err) < 0) {
        fprintf(stderr, "sluice-coord query: %s\n", err.message);
        rc = CTL_EXIT_USAGE;
        goto out;
    }
    if (filter[0] != '\0' && ctl_parse_filter(filter, &q, msg, sizeof(msg)) < 0) {
        fprintf(stderr, "sluice-coord query: %s\n", msg);
        rc = CTL_EXIT_USAGE;
        goto out;
    }
    snprintf(q.table, sizeof(q.table), "%s", table);
    snprintf(q.column, sizeof(q.column), "%s", column);
    (void)wire_aggregate_parse(agg, &q.aggregate);
    q.allow_partial = partial;
    q.timeout_ms = (uint32_t)timeout_ms;
    if (coordinator[0] != '\0')
        cli_check_addr("sluice-coord", "query", "--coordinator", coordinator, "127.0.0.1:7000");
    else
        cli_check_addr("sluice-coord", "query", "--broker", broker, "127.0.0.1:7200");
    token = cli_load_token("sluice-coord", token_file);
    body = wire_query_request_encode(&q, &len);
    rc = cli_call("sluice-coord", "query", coordinator[0] != '\0' ? "sluice-coord" : "sluice-broker",
                  coordinator[0] != '\0' ? coordinator : broker, "POST", "/v1/query", body, len,
                  token, (unsigned)timeout_ms + 2000, &r);
    free(body);
    if (rc == -EPROTOTYPE) {
        rc = CTL_EXIT_USAGE;
        goto out;
    }
    if (rc < 0) {
        rc = CTL_EXIT_UNREACHABLE;
        goto out;
    }
    if (r.status != 200) {
        cli_print_error("sluice-coord", "query", &r);
        rc = CTL_EXIT_FAILED;
    } else if (wire_table_query_response_decode(r.body, r.body_len, &tr, &err) < 0) {
        rc = ctl_bad_answer("query", &err);
    } else {
        ctl_print_query(stdout, &tr, agg, table, json);
        wire_table_query_response_done(&tr);
        rc = CTL_EXIT_OK;
    }
    http_response_done(&r);
out:
    free(token);
    config_free_strings(opts, N_OPTS(opts));
    return rc;
}

static const struct cli_command ctl_cmds[] = {
    {"status", cmd_status, "cluster summary"},
    {"nodes", cmd_nodes, "nodes with state, pressure, WSS, p99, segments, last refusal"},
    {"segments", cmd_segments, "segments with state and placement"},
    {"tables", cmd_tables, "tables: segments, rows, bytes, fraction LOADED"},
    {"recommend", cmd_recommend, "recommended memory request and limit per table"},
    {"add", cmd_add, "register one segment"},
    {"import", cmd_import, "register every segment file in a directory"},
    {"drain", cmd_drain, "stop placing on a node"},
    {"undrain", cmd_undrain, "place on a node again"},
    {"events", cmd_events, "refusal and placement history"},
    {"explain", cmd_explain, "why a segment is where it is, or still pending"},
    {"wait", cmd_wait, "wait until every placeable segment is LOADED"},
    {"retry", cmd_retry, "make an INVALID segment placeable again"},
    {"remove", cmd_remove, "take a segment's registration back; its holders drop it"},
    {"forget", cmd_forget, "remove a DOWN node for good"},
    {"query", cmd_query, "query a table (--broker ADDR, or --coordinator ADDR)"},
};

bool ctl_is_command(const char *name)
{
    return cli_command_find(ctl_cmds, N_OPTS(ctl_cmds), name) != NULL;
}

void ctl_usage(FILE *out)
{
    cli_command_usage(out, ctl_cmds, N_OPTS(ctl_cmds), 9);
}

int ctl_main(int argc, char **argv)
{
    return cli_command_run("sluice-coord", ctl_cmds, N_OPTS(ctl_cmds), argc, argv);
}
