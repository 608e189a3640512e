/*
 * harness client: the typed HTTP clients of the integration suites and
 * benchmarks (see "typed clients" in harness.h). Each call is one blocking
 * request through http_fetch(); encoding and decoding go through common/wire
 * as in the daemons, so a suite reads and writes C structs only. Load: a
 * handful of calls per test, a few thousand in a benchmark.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"
#include "http.h"
#include "xmalloc.h"

#define HARNESS_CLIENT_TIMEOUT_MS 30000u
#define HARNESS_PATIENCE_MS       120000u

static char *harness_token;
static unsigned harness_timeout_ms = HARNESS_CLIENT_TIMEOUT_MS;

/* The one shape of an encoder and a decoder, so that one exchange serves every message. */
typedef uint8_t *(*harness_encode_fn)(const void *m, size_t *ret_len);
typedef int (*harness_decode_fn)(const void *buf, size_t len, void *ret, struct wire_error *err);

/* Adapters from wire's typed signatures to those shapes (calls through a cast would be UB). */
static uint8_t *enc_assign(const void *m, size_t *n)
{
    return wire_assign_request_encode(m, n);
}
static int dec_assign(const void *b, size_t n, void *r, struct wire_error *e)
{
    return wire_assign_response_decode(b, n, r, e);
}
static uint8_t *enc_query(const void *m, size_t *n)
{
    return wire_query_request_encode(m, n);
}
static int dec_query(const void *b, size_t n, void *r, struct wire_error *e)
{
    return wire_query_response_decode(b, n, r, e);
}
static uint8_t *enc_batch(const void *m, size_t *n)
{
    return wire_segment_batch_encode(m, n);
}
static int dec_batch(const void *b, size_t n, void *r, struct wire_error *e)
{
    return wire_batch_response_decode(b, n, r, e);
}
static uint8_t *enc_report(const void *m, size_t *n)
{
    return wire_node_report_encode(m, n);
}
static int dec_report(const void *b, size_t n, void *r, struct wire_error *e)
{
    return wire_report_response_decode(b, n, r, e);
}
static uint8_t *enc_claim(const void *m, size_t *n)
{
    return wire_claim_request_encode(m, n);
}
static int dec_claim(const void *b, size_t n, void *r, struct wire_error *e)
{
    return wire_claim_response_decode(b, n, r, e);
}
static int dec_table_query(const void *b, size_t n, void *r, struct wire_error *e)
{
    return wire_table_query_response_decode(b, n, r, e);
}
static int dec_placements(const void *b, size_t n, void *r, struct wire_error *e)
{
    return wire_placement_map_decode(b, n, r, e);
}
static int dec_segments(const void *b, size_t n, void *r, struct wire_error *e)
{
    return wire_segment_list_decode(b, n, r, e);
}
static int dec_nodes(const void *b, size_t n, void *r, struct wire_error *e)
{
    return wire_node_list_decode(b, n, r, e);
}
static int dec_events(const void *b, size_t n, void *r, struct wire_error *e)
{
    return wire_event_list_decode(b, n, r, e);
}
static int dec_cluster(const void *b, size_t n, void *r, struct wire_error *e)
{
    return wire_cluster_status_decode(b, n, r, e);
}

void harness_client_set(const char *token, unsigned timeout_ms)
{
    free(harness_token);
    harness_token = token != NULL ? xstrdup(token) : NULL;
    harness_timeout_ms = timeout_ms != 0 ? timeout_ms : HARNESS_CLIENT_TIMEOUT_MS;
}

/*
 * The one exchange: encodes m (encode NULL: no body), sends it, and decodes
 * a typed answer into ret (decisions: refusals that carry X-Sluice-Reason
 * are typed answers too) or an Error into the reply.
 */
static int harness_exchange(const char *addr, const char *method, const char *path,
                            harness_encode_fn encode, const void *m, bool decisions,
                            harness_decode_fn decode, void *ret, struct harness_reply *ret_reply)
{
    struct harness_reply scratch, *reply = ret_reply != NULL ? ret_reply : &scratch;
    struct http_response r;
    uint8_t *body = NULL;
    size_t len = 0;
    bool typed;
    int rc;

    memset(reply, 0, sizeof(*reply));
    if (encode != NULL)
        body = encode(m, &len);
    rc = http_fetch(addr, method, path, body != NULL ? WIRE_CONTENT_TYPE : NULL, body, len,
                    harness_token, harness_timeout_ms, &r);
    free(body);
    if (rc < 0)
        return reply->status = rc;
    reply->status = r.status;
    snprintf(reply->reason, sizeof(reply->reason), "%s", r.reason);
    reply->retry_after_s = r.retry_after_s;
    typed = (r.status >= 200 && r.status < 300) || (decisions && r.reason[0] != '\0');
    if (typed && decode != NULL && ret != NULL) {
        if (decode(r.body, r.body_len, ret, &reply->err) < 0)
            reply->status = -EBADMSG;
    } else if (!typed && strcmp(r.content_type, WIRE_CONTENT_TYPE) == 0 &&
               wire_error_decode(r.body, r.body_len, &reply->err) < 0) {
        memset(&reply->err, 0, sizeof(reply->err));
    }
    http_response_done(&r);
    return reply->status;
}

int harness_assign(const char *addr, const struct wire_assign_request *m,
                   struct wire_assign_response *ret, struct harness_reply *ret_reply)
{
    return harness_exchange(addr, "POST", "/v1/assign", enc_assign, m, true, dec_assign, ret,
                            ret_reply);
}

static unsigned long long harness_client_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000ull + (unsigned long long)ts.tv_nsec / 1000000ull;
}

int harness_assign_patient(const char *addr, const struct wire_assign_request *m,
                           struct wire_assign_response *ret, struct harness_reply *ret_reply)
{
    unsigned long long deadline = harness_client_now_ms() + HARNESS_PATIENCE_MS;
    struct harness_reply scratch, *reply = ret_reply != NULL ? ret_reply : &scratch;
    struct wire_assign_response resp;
    unsigned retries = 0;

    for (;;) {
        int status;
        unsigned long long wait_ms = 250;
        struct timespec ts;

        memset(&resp, 0, sizeof(resp));
        status = harness_assign(addr, m, &resp, reply);
        reply->retries = retries;
        if (status != 429)
            break;
        /* The body's milliseconds, else the header's seconds, else 250 ms. */
        if (resp.retry_after_ms > 0)
            wait_ms = resp.retry_after_ms;
        else if (reply->retry_after_s > 0)
            wait_ms = reply->retry_after_s * 1000ull;
        if (harness_client_now_ms() + wait_ms > deadline)
            break;
        retries++;
        ts.tv_sec = (time_t)(wait_ms / 1000);
        ts.tv_nsec = (long)(wait_ms % 1000) * 1000000L;
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
            ;
    }
    if (ret != NULL)
        *ret = resp;
    return reply->status;
}

struct wire_assign_request harness_assign_request(const char *id, const char *uri,
                                                  uint64_t row_count, uint64_t avg_row_size)
{
    struct wire_assign_request m;

    memset(&m, 0, sizeof(m));
    snprintf(m.segment_id, sizeof(m.segment_id), "%s", id);
    snprintf(m.uri, sizeof(m.uri), "%s", uri);
    m.row_count = row_count;
    m.avg_row_size = avg_row_size;
    return m;
}

int harness_query_one(const char *addr, const char *id, enum wire_aggregate agg, const char *column,
                      struct wire_query_response *ret, struct harness_reply *ret_reply)
{
    char ids[1][WIRE_ID_MAX + 1];
    struct wire_query_request q;

    memset(&q, 0, sizeof(q));
    snprintf(ids[0], sizeof(ids[0]), "%s", id);
    q.n_segments = 1;
    q.segment_ids = ids;
    q.aggregate = agg;
    snprintf(q.column, sizeof(q.column), "%s", column);
    return harness_query(addr, &q, ret, ret_reply);
}

int harness_query(const char *addr, const struct wire_query_request *m,
                  struct wire_query_response *ret, struct harness_reply *ret_reply)
{
    return harness_exchange(addr, "POST", "/v1/query", enc_query, m, false, dec_query, ret,
                            ret_reply);
}

int harness_table_query(const char *addr, const struct wire_query_request *m,
                        struct wire_table_query_response *ret, struct harness_reply *ret_reply)
{
    return harness_exchange(addr, "POST", "/v1/query", enc_query, m, false, dec_table_query, ret,
                            ret_reply);
}

int harness_register(const char *addr, const struct wire_segment_batch *m,
                     struct wire_batch_response *ret, struct harness_reply *ret_reply)
{
    return harness_exchange(addr, "POST", "/v1/segments", enc_batch, m, false, dec_batch, ret,
                            ret_reply);
}

int harness_report(const char *addr, const struct wire_node_report *m,
                   struct wire_report_response *ret, struct harness_reply *ret_reply)
{
    return harness_exchange(addr, "POST", "/v1/report", enc_report, m, false, dec_report, ret,
                            ret_reply);
}

int harness_claim(const char *addr, const struct wire_claim_request *m,
                  struct wire_claim_response *ret, struct harness_reply *ret_reply)
{
    return harness_exchange(addr, "POST", "/v1/claim", enc_claim, m, false, dec_claim, ret,
                            ret_reply);
}

/* A GET of a listing at base + suffix. */
static int harness_get(const char *addr, const char *base, const char *suffix,
                       harness_decode_fn decode, void *ret)
{
    char *path = xasprintf("%s%s", base, suffix != NULL ? suffix : "");
    int status = harness_exchange(addr, "GET", path, NULL, NULL, false, decode, ret, NULL);

    free(path);
    return status;
}

int harness_segments(const char *addr, const char *suffix, struct wire_segment_list *ret)
{
    return harness_get(addr, "/v1/segments", suffix, dec_segments, ret);
}

int harness_placements(const char *addr, const char *suffix, struct wire_placement_map *ret)
{
    return harness_get(addr, "/v1/placements", suffix, dec_placements, ret);
}

int harness_nodes(const char *addr, struct wire_node_list *ret)
{
    return harness_get(addr, "/v1/nodes", NULL, dec_nodes, ret);
}

int harness_events(const char *addr, const char *suffix, struct wire_event_list *ret)
{
    return harness_get(addr, "/v1/events", suffix, dec_events, ret);
}

int harness_cluster_status(const char *addr, struct wire_cluster_status *ret)
{
    return harness_get(addr, "/v1/status", NULL, dec_cluster, ret);
}

int harness_send(const char *addr, const char *method, const char *path,
                 struct harness_reply *ret_reply)
{
    return harness_exchange(addr, method, path, NULL, NULL, false, NULL, NULL, ret_reply);
}

double harness_metric(const char *addr, const char *sample)
{
    struct http_response r;
    size_t n = strlen(sample);
    double v = -1;

    if (http_fetch(addr, "GET", "/metrics", NULL, NULL, 0, harness_token, harness_timeout_ms, &r) <
        0)
        return -1;
    for (const char *line = r.status == 200 ? r.body : NULL; line != NULL && *line != '\0';) {
        if (strncmp(line, sample, n) == 0 && line[n] == ' ') {
            v = strtod(line + n + 1, NULL);
            break;
        }
        line = strchr(line, '\n');
        if (line != NULL)
            line++;
    }
    http_response_done(&r);
    return v;
}

int harness_register_one(const char *addr, const char *segment_id, const char *uri,
                         uint64_t row_count, uint64_t avg_row_size, unsigned replication)
{
    struct wire_segment_spec spec;
    struct wire_segment_batch b = {1, &spec};
    int status;

    memset(&spec, 0, sizeof(spec));
    snprintf(spec.segment_id, sizeof(spec.segment_id), "%s", segment_id);
    spec.uri = uri != NULL ? xstrdup(uri) : xasprintf("file:///nonexistent/%s.seg", segment_id);
    spec.row_count = row_count;
    spec.avg_row_size = avg_row_size;
    spec.replication = replication;
    status = harness_register(addr, &b, NULL, NULL);
    free(spec.uri);
    return status;
}

int harness_register_ids(const char *addr, const char *prefix, int width, int from, int to,
                         char *const *uris, size_t n_uris, uint64_t row_count,
                         uint64_t avg_row_size)
{
    return harness_register_ids_r(addr, prefix, width, from, to, uris, n_uris, row_count,
                                  avg_row_size, 1);
}

int harness_register_ids_r(const char *addr, const char *prefix, int width, int from, int to,
                           char *const *uris, size_t n_uris, uint64_t row_count,
                           uint64_t avg_row_size, unsigned replication)
{
    struct wire_segment_batch b;
    int status;

    b.n = to > from ? (size_t)(to - from) : 0;
    b.specs = xcalloc(b.n + 1, sizeof(*b.specs));
    for (size_t i = 0; i < b.n; i++) {
        struct wire_segment_spec *s = &b.specs[i];
        int k = from + (int)i;

        snprintf(s->segment_id, sizeof(s->segment_id), "%s%0*d", prefix, width, k);
        s->uri = xstrdup(uris[(size_t)k % n_uris]);
        s->row_count = row_count;
        s->avg_row_size = avg_row_size;
        s->replication = replication;
    }
    status = harness_register(addr, &b, NULL, NULL);
    wire_segment_batch_done(&b);
    return status;
}

int harness_segment(const char *addr, const char *segment_id, struct wire_segment_list *ret)
{
    char *suffix = xasprintf("/%s", segment_id);
    int status = harness_segments(addr, suffix, ret);

    free(suffix);
    if (status == 200 &&
        (ret->n != 1 || strcmp(ret->segments[0].spec.segment_id, segment_id) != 0)) {
        wire_segment_list_done(ret);
        status = -ENOENT;
    }
    return status;
}

int harness_report_as(const char *addr, const struct harness_fake_report *f, size_t *ret_drops,
                      struct harness_reply *ret_reply)
{
    struct wire_node_report rep;
    struct wire_segment_status ss;
    struct wire_report_response resp;
    int status;

    memset(&rep, 0, sizeof(rep));
    snprintf(rep.node_id, sizeof(rep.node_id), "%s", f->node_id);
    snprintf(rep.addr, sizeof(rep.addr), "%s", f->addr);
    rep.state = f->state != WIRE_NODE_UNSPECIFIED ? f->state : WIRE_NODE_SERVING;
    rep.claim = f->claim;
    if (f->segment_id != NULL) {
        memset(&ss, 0, sizeof(ss));
        snprintf(ss.segment_id, sizeof(ss.segment_id), "%s", f->segment_id);
        ss.state = f->segment_state;
        ss.reason = f->reason;
        rep.n_segments = 1;
        rep.segments = &ss;
    }
    memset(&resp, 0, sizeof(resp));
    status = harness_report(addr, &rep, &resp, ret_reply);
    if (status == 200 && ret_drops != NULL)
        *ret_drops = resp.n_drop;
    wire_report_response_done(&resp);
    return status;
}

bool harness_node_info(const char *addr, const char *node_id, struct wire_node_info *ret,
                       size_t *ret_count)
{
    struct wire_node_list l;
    bool found = false;

    if (harness_nodes(addr, &l) != 200)
        return false;
    for (size_t i = 0; i < l.n; i++) {
        if (strcmp(l.nodes[i].node_id, node_id) == 0) {
            *ret = l.nodes[i];
            found = true;
        }
    }
    if (ret_count != NULL)
        *ret_count = l.n;
    wire_node_list_done(&l);
    return found;
}

struct harness_settle {
    const char *addr;
    uint64_t n;
};

static bool harness_is_settled(void *arg)
{
    const struct harness_settle *s = arg;
    struct wire_cluster_status st;

    return harness_cluster_status(s->addr, &st) == 200 && st.segments_total == s->n &&
           st.segments_loaded == s->n;
}

bool harness_settled(const char *addr, uint64_t n, unsigned timeout_ms)
{
    struct harness_settle s = {addr, n};

    return harness_wait_until(harness_is_settled, &s, timeout_ms);
}

/* Counts the node's segments in each state; false when it does not answer. */
static bool harness_node_counts(const char *addr, size_t counts[WIRE_SEG_COUNT_])
{
    struct wire_node_status ns;

    memset(counts, 0, sizeof(size_t) * WIRE_SEG_COUNT_);
    if (!harness_node_status(addr, harness_token, harness_timeout_ms, &ns))
        return false;
    for (size_t i = 0; i < ns.n_segments; i++)
        if ((unsigned)ns.segments[i].state < WIRE_SEG_COUNT_)
            counts[ns.segments[i].state]++;
    wire_node_status_done(&ns);
    return true;
}

size_t harness_node_count(const char *addr, enum wire_segment_state st)
{
    size_t counts[WIRE_SEG_COUNT_];

    return harness_node_counts(addr, counts) && (unsigned)st < WIRE_SEG_COUNT_ ? counts[st]
                                                                               : SIZE_MAX;
}

static bool harness_node_is_settled(void *arg)
{
    const struct harness_settle *s = arg;
    size_t counts[WIRE_SEG_COUNT_];

    return harness_node_counts(s->addr, counts) && counts[WIRE_SEG_LOADED] == s->n &&
           counts[WIRE_SEG_LOADING] == 0;
}

bool harness_node_settled(const char *addr, size_t n, unsigned timeout_ms)
{
    struct harness_settle s = {addr, n};

    return harness_wait_until(harness_node_is_settled, &s, timeout_ms);
}

int harness_farm_list(const char *addr, struct harness_vnode **ret, size_t *ret_n)
{
    struct http_response r;
    struct harness_vnode *out = NULL;
    size_t n = 0, cap = 0;
    char *save = NULL;
    int rc;

    rc = http_fetch(addr, "GET", "/v1/farm", NULL, NULL, 0, harness_token, harness_timeout_ms, &r);
    if (rc < 0)
        return rc;
    if (r.status != 200) {
        rc = r.status;
        http_response_done(&r);
        return rc;
    }
    for (char *line = strtok_r(r.body, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        struct harness_vnode v;
        char state[8];

        if (line[0] == '#')
            continue;
        memset(&v, 0, sizeof(v));
        if (sscanf(line,
                   "%128s %63s %7s %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64
                   " %" SCNu64 " %" SCNu64 " %lf",
                   v.id, v.addr, state, &v.loaded, &v.loading, &v.footprint, &v.peak,
                   &v.capacity, &v.accepted, &v.refused, &v.cost_factor) != 11) {
            free(out);
            http_response_done(&r);
            return -EBADMSG;
        }
        v.up = strcmp(state, "up") == 0;
        if (n == cap) {
            cap = cap > 0 ? cap * 2 : 64;
            out = xreallocarray(out, cap, sizeof(*out));
        }
        out[n++] = v;
    }
    http_response_done(&r);
    *ret = out;
    *ret_n = n;
    return 200;
}

int harness_farm_kill(const char *addr, const char *node_id)
{
    struct http_response r;
    char *path = xasprintf("/v1/farm/kill/%s", node_id);
    int rc = http_fetch(addr, "POST", path, NULL, NULL, 0, harness_token, harness_timeout_ms, &r);

    free(path);
    if (rc < 0)
        return rc;
    rc = r.status;
    http_response_done(&r);
    return rc;
}
