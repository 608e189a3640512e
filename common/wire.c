/*
 * wire: pack and unpack proto/sluice.proto messages, with a size cap before
 * unpacking and a validation of every field after it. protobuf-c structs are
 * created and freed only in this file. Expected load: one decode per HTTP
 * request (thousands per second on the coordinator's bulk paths), so nothing
 * here allocates beyond what protobuf-c itself needs.
 */
#include "wire.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * protobuf-c takes char * for fields it only reads, and its generated
 * initialisers cast away const themselves: -Wcast-qual has nothing to say here.
 */
#pragma GCC diagnostic ignored "-Wcast-qual"

#include "sluice.pb-c.h"
#include "xmalloc.h"

_Static_assert((int)WIRE_REASON_SEGMENT_INVALID == (int)SLUICE__V1__REASON__SEGMENT_INVALID, "reason enum");
_Static_assert((int)WIRE_REASON_DISK_FULL == (int)SLUICE__V1__REASON__DISK_FULL, "reason enum");
_Static_assert((int)WIRE_SEG_DROPPED == (int)SLUICE__V1__SEGMENT_STATE__DROPPED, "segment state enum");
_Static_assert((int)WIRE_AGG_MAX == (int)SLUICE__V1__AGGREGATE__MAX, "aggregate enum");
_Static_assert((int)WIRE_NODE_DRAINING == (int)SLUICE__V1__NODE_STATE__DRAINING_STATE, "node state enum");
_Static_assert((int)WIRE_VERDICT_REJECTED == (int)SLUICE__V1__VERDICT__REJECTED, "verdict enum");

static const char *const wire_reason_names[WIRE_REASON_COUNT_] = {
    "NONE",         "DRAINING",    "MEM_CRITICAL",     "MEM_PRESSURE", "MEM_THRASHING",
    "MEM_CAPACITY", "LATENCY_SLO", "LOAD_CONCURRENCY", "DISK_FULL",    "SEGMENT_INVALID",
};

static const char *const wire_seg_names[WIRE_SEG_COUNT_] = {"UNSPECIFIED", "LOADING", "LOADED",
                                                            "FAILED", "DROPPED"};

static const char *const wire_agg_names[WIRE_AGG_COUNT_] = {"unspecified", "count", "sum", "min",
                                                            "max"};

const char *wire_reason_name(enum wire_reason r)
{
    if ((unsigned)r >= WIRE_REASON_COUNT_)
        return "UNKNOWN";
    return wire_reason_names[r];
}

int wire_reason_parse(const char *s, enum wire_reason *ret)
{
    for (unsigned i = 0; i < WIRE_REASON_COUNT_; i++) {
        if (strcmp(s, wire_reason_names[i]) == 0) {
            *ret = (enum wire_reason)i;
            return 0;
        }
    }
    return -EINVAL;
}

const char *wire_segment_state_name(enum wire_segment_state s)
{
    if ((unsigned)s >= WIRE_SEG_COUNT_)
        return "UNKNOWN";
    return wire_seg_names[s];
}

const char *wire_node_state_name(enum wire_node_state s)
{
    switch (s) {
    case WIRE_NODE_SERVING:
        return "SERVING";
    case WIRE_NODE_DRAINING:
        return "DRAINING";
    case WIRE_NODE_UNSPECIFIED:
        break;
    }
    return "UNSPECIFIED";
}

const char *wire_aggregate_name(enum wire_aggregate a)
{
    if ((unsigned)a >= WIRE_AGG_COUNT_)
        return "unknown";
    return wire_agg_names[a];
}

int wire_aggregate_parse(const char *s, enum wire_aggregate *ret)
{
    for (unsigned i = 1; i < WIRE_AGG_COUNT_; i++) {
        if (strcmp(s, wire_agg_names[i]) == 0) {
            *ret = (enum wire_aggregate)i;
            return 0;
        }
    }
    return -EINVAL;
}

void wire_error_set(struct wire_error *err, const char *code, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL)
        return;
    snprintf(err->code, sizeof(err->code), "%s", code);
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
}

static int wire_invalid(struct wire_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int wire_invalid(struct wire_error *err, const char *fmt, ...)
{
    va_list ap;

    if (err != NULL) {
        snprintf(err->code, sizeof(err->code), "invalid_field");
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof(err->message), fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

int wire_check_segment_id(const char *field, const char *id, struct wire_error *err)
{
    size_t n = strlen(id);

    if (n == 0)
        return wire_invalid(err, "%s: empty", field);
    if (n > WIRE_ID_MAX)
        return wire_invalid(err, "%s: %zu bytes, the limit is %d", field, n, WIRE_ID_MAX);
    if (id[0] == '.' || id[0] == '-')
        return wire_invalid(err, "%s: must not start with '%c'", field, id[0]);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return wire_invalid(err, "%s: byte 0x%02x at offset %zu is not one of [A-Za-z0-9._-]",
                                field, c, i);
    }
    return 0;
}

int wire_check_uri(const char *field, const char *uri, struct wire_error *err)
{
    static const char prefix[] = "file://";
    size_t n = strlen(uri);
    const char *path, *p;

    if (n == 0)
        return wire_invalid(err, "%s: empty", field);
    if (n > WIRE_URI_MAX)
        return wire_invalid(err, "%s: %zu bytes, the limit is %d", field, n, WIRE_URI_MAX);
    if (strncmp(uri, prefix, sizeof(prefix) - 1) != 0)
        return wire_invalid(err, "%s: only file:// URIs are supported", field);
    path = uri + sizeof(prefix) - 1;
    if (path[0] != '/')
        return wire_invalid(err, "%s: path must be absolute (file:///...)", field);
    for (p = path; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20 || c == 0x7f)
            return wire_invalid(err, "%s: control byte 0x%02x in path", field, c);
        if (c == '%')
            return wire_invalid(err, "%s: percent-encoding is not supported", field);
    }
    if (path[n - (size_t)(path - uri) - 1] == '/')
        return wire_invalid(err, "%s: names a directory, not a file", field);
    return 0;
}

bool wire_uri_has_dot_component(const char *uri)
{
    const char *p = strstr(uri, "://");

    for (p = p != NULL ? p + 3 : uri; *p != '\0';) {
        const char *end;
        size_t len;

        while (*p == '/')
            p++;
        end = strchr(p, '/');
        len = end != NULL ? (size_t)(end - p) : strlen(p);
        if ((len == 2 && p[0] == '.' && p[1] == '.') || (len == 1 && p[0] == '.'))
            return true;
        p += len;
    }
    return false;
}

int wire_check_column(const char *field, const char *name, struct wire_error *err)
{
    size_t n = strlen(name);

    if (n == 0)
        return wire_invalid(err, "%s: empty", field);
    if (n > WIRE_COLUMN_MAX)
        return wire_invalid(err, "%s: %zu bytes, the limit is %d", field, n, WIRE_COLUMN_MAX);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_'))
            return wire_invalid(err, "%s: byte 0x%02x at offset %zu is not one of [A-Za-z0-9_]",
                                field, c, i);
    }
    return 0;
}

/* Copies a validated-length string; the caller has checked strlen < size. */
static void wire_copy(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src != NULL ? src : "");
}

/* Copies a string that a peer controls, refusing it if it does not fit. */
static int wire_copy_checked(const char *field, char *dst, size_t size, const char *src,
                             struct wire_error *err)
{
    size_t n = src != NULL ? strlen(src) : 0;

    if (n >= size)
        return wire_invalid(err, "%s: %zu bytes, the limit is %zu", field, n, size - 1);
    memcpy(dst, src != NULL ? src : "", n + 1);
    return 0;
}

static int wire_check_size(size_t len, struct wire_error *err)
{
    if (len > WIRE_MAX_BODY) {
        wire_error_set(err, "too_large", "body: %zu bytes, the limit is %u", len, WIRE_MAX_BODY);
        return -EMSGSIZE;
    }
    return 0;
}

static int wire_bad_message(struct wire_error *err, const char *what)
{
    wire_error_set(err, "bad_message", "body: not a valid %s protobuf message", what);
    return -EBADMSG;
}

static uint8_t *wire_pack(const ProtobufCMessage *msg, size_t *ret_len)
{
    size_t n = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = xmalloc(n);

    *ret_len = protobuf_c_message_pack(msg, buf);
    return buf;
}

static void wire_pressure_from_pb(struct wire_pressure *dst, const Sluice__V1__PressureSnapshot *p)
{
    memset(dst, 0, sizeof(*dst));
    if (p == NULL)
        return;
    dst->some_avg10 = p->some_avg10;
    dst->full_avg10 = p->full_avg10;
    dst->some_fraction = p->some_fraction;
    dst->full_fraction = p->full_fraction;
    dst->usage_bytes = p->usage_bytes;
    dst->limit_bytes = p->limit_bytes;
    dst->wss_bytes = p->wss_bytes;
    dst->p99_seconds = p->p99_seconds;
    dst->loads_in_flight = p->loads_in_flight;
    dst->psi_host_wide = p->psi_host_wide;
}

static void wire_pressure_to_pb(Sluice__V1__PressureSnapshot *dst, const struct wire_pressure *p)
{
    sluice__v1__pressure_snapshot__init(dst);
    dst->some_avg10 = p->some_avg10;
    dst->full_avg10 = p->full_avg10;
    dst->some_fraction = p->some_fraction;
    dst->full_fraction = p->full_fraction;
    dst->usage_bytes = p->usage_bytes;
    dst->limit_bytes = p->limit_bytes;
    dst->wss_bytes = p->wss_bytes;
    dst->p99_seconds = p->p99_seconds;
    dst->loads_in_flight = p->loads_in_flight;
    dst->psi_host_wide = p->psi_host_wide;
}

int wire_assign_request_decode(const void *buf, size_t len, struct wire_assign_request *ret,
                               struct wire_error *err)
{
    Sluice__V1__AssignRequest *m;
    struct wire_assign_request out;
    int r;

    if ((r = wire_check_size(len, err)) < 0)
        return r;
    m = sluice__v1__assign_request__unpack(NULL, len, buf);
    if (m == NULL)
        return wire_bad_message(err, "AssignRequest");
    memset(&out, 0, sizeof(out));
    if ((r = wire_check_segment_id("segment_id", m->segment_id, err)) < 0 ||
        (r = wire_check_uri("uri", m->uri, err)) < 0)
        goto out;
    if (m->row_count == 0 || m->row_count > WIRE_ROW_COUNT_MAX) {
        r = wire_invalid(err, "row_count: %llu is outside 1..%llu",
                         (unsigned long long)m->row_count, WIRE_ROW_COUNT_MAX);
        goto out;
    }
    if (m->avg_row_size == 0 || m->avg_row_size > WIRE_ROW_SIZE_MAX) {
        r = wire_invalid(err, "avg_row_size: %llu is outside 1..%llu",
                         (unsigned long long)m->avg_row_size, WIRE_ROW_SIZE_MAX);
        goto out;
    }
    wire_copy(out.segment_id, sizeof(out.segment_id), m->segment_id);
    wire_copy(out.uri, sizeof(out.uri), m->uri);
    out.row_count = m->row_count;
    out.avg_row_size = m->avg_row_size;
    *ret = out;
    r = 0;
out:
    sluice__v1__assign_request__free_unpacked(m, NULL);
    return r;
}

uint8_t *wire_assign_request_encode(const struct wire_assign_request *in, size_t *ret_len)
{
    Sluice__V1__AssignRequest m = SLUICE__V1__ASSIGN_REQUEST__INIT;

    m.segment_id = (char *)(uintptr_t)in->segment_id;
    m.uri = (char *)(uintptr_t)in->uri;
    m.row_count = in->row_count;
    m.avg_row_size = in->avg_row_size;
    return wire_pack(&m.base, ret_len);
}

int wire_assign_response_decode(const void *buf, size_t len, struct wire_assign_response *ret,
                                struct wire_error *err)
{
    Sluice__V1__AssignResponse *m;
    struct wire_assign_response out;
    int r;

    if ((r = wire_check_size(len, err)) < 0)
        return r;
    m = sluice__v1__assign_response__unpack(NULL, len, buf);
    if (m == NULL)
        return wire_bad_message(err, "AssignResponse");
    memset(&out, 0, sizeof(out));
    r = -EINVAL;
    if ((unsigned)m->verdict > WIRE_VERDICT_REJECTED || m->verdict == 0) {
        wire_invalid(err, "verdict: unknown value %d", (int)m->verdict);
        goto out;
    }
    if ((unsigned)m->reason >= WIRE_REASON_COUNT_) {
        wire_invalid(err, "reason: unknown value %d", (int)m->reason);
        goto out;
    }
    out.verdict = (enum wire_verdict)m->verdict;
    out.reason = (enum wire_reason)m->reason;
    out.retry_after_ms = m->retry_after_ms;
    wire_pressure_from_pb(&out.pressure, m->pressure);
    /* The detail is for people: a long one is cut, not refused. */
    snprintf(out.detail, sizeof(out.detail), "%s", m->detail != NULL ? m->detail : "");
    *ret = out;
    r = 0;
out:
    sluice__v1__assign_response__free_unpacked(m, NULL);
    return r;
}

uint8_t *wire_assign_response_encode(const struct wire_assign_response *in, size_t *ret_len)
{
    Sluice__V1__AssignResponse m = SLUICE__V1__ASSIGN_RESPONSE__INIT;
    Sluice__V1__PressureSnapshot p;

    wire_pressure_to_pb(&p, &in->pressure);
    m.verdict = (Sluice__V1__Verdict)in->verdict;
    m.reason = (Sluice__V1__Reason)in->reason;
    m.retry_after_ms = in->retry_after_ms;
    m.pressure = &p;
    m.detail = (char *)(uintptr_t)in->detail;
    return wire_pack(&m.base, ret_len);
}

int wire_query_request_decode(const void *buf, size_t len, struct wire_query_request *ret,
                              struct wire_error *err)
{
    Sluice__V1__QueryRequest *m;
    struct wire_query_request out;
    char field[48];
    int r;

    if ((r = wire_check_size(len, err)) < 0)
        return r;
    m = sluice__v1__query_request__unpack(NULL, len, buf);
    if (m == NULL)
        return wire_bad_message(err, "QueryRequest");
    memset(&out, 0, sizeof(out));
    r = -EINVAL;
    if (m->n_segment_ids == 0) {
        wire_invalid(err, "segment_ids: empty");
        goto out;
    }
    if (m->n_segment_ids > WIRE_QUERY_MAX_SEGMENTS) {
        wire_invalid(err, "segment_ids: %zu ids, the limit is %d", m->n_segment_ids,
                     WIRE_QUERY_MAX_SEGMENTS);
        goto out;
    }
    for (size_t i = 0; i < m->n_segment_ids; i++) {
        snprintf(field, sizeof(field), "segment_ids[%zu]", i);
        if (wire_check_segment_id(field, m->segment_ids[i], err) < 0)
            goto out;
        /* A duplicate would be counted twice. n <= 1024 keeps this cheap. */
        for (size_t j = 0; j < i; j++) {
            if (strcmp(m->segment_ids[i], m->segment_ids[j]) == 0) {
                wire_invalid(err, "%s: duplicate of segment_ids[%zu]", field, j);
                goto out;
            }
        }
    }
    if (m->aggregate == 0 || (unsigned)m->aggregate >= WIRE_AGG_COUNT_) {
        wire_invalid(err, "aggregate: unknown value %d (count, sum, min, max)", (int)m->aggregate);
        goto out;
    }
    if (wire_check_column("column", m->column, err) < 0)
        goto out;
    if (m->filter_column[0] != '\0') {
        if (wire_check_column("filter_column", m->filter_column, err) < 0)
            goto out;
        if (m->lo > m->hi) {
            wire_invalid(err, "lo: %lld is greater than hi %lld", (long long)m->lo,
                         (long long)m->hi);
            goto out;
        }
    }
    out.n_segments = m->n_segment_ids;
    out.segment_ids = xcalloc(m->n_segment_ids, sizeof(*out.segment_ids));
    for (size_t i = 0; i < m->n_segment_ids; i++)
        wire_copy(out.segment_ids[i], sizeof(out.segment_ids[i]), m->segment_ids[i]);
    out.aggregate = (enum wire_aggregate)m->aggregate;
    wire_copy(out.column, sizeof(out.column), m->column);
    wire_copy(out.filter_column, sizeof(out.filter_column), m->filter_column);
    out.lo = m->lo;
    out.hi = m->hi;
    *ret = out;
    r = 0;
out:
    sluice__v1__query_request__free_unpacked(m, NULL);
    return r;
}

uint8_t *wire_query_request_encode(const struct wire_query_request *in, size_t *ret_len)
{
    Sluice__V1__QueryRequest m = SLUICE__V1__QUERY_REQUEST__INIT;
    char **ids = xcalloc(in->n_segments, sizeof(char *));
    uint8_t *buf;

    for (size_t i = 0; i < in->n_segments; i++)
        ids[i] = in->segment_ids[i];
    m.n_segment_ids = in->n_segments;
    m.segment_ids = ids;
    m.aggregate = (Sluice__V1__Aggregate)in->aggregate;
    m.column = (char *)(uintptr_t)in->column;
    m.filter_column = (char *)(uintptr_t)in->filter_column;
    m.lo = in->lo;
    m.hi = in->hi;
    buf = wire_pack(&m.base, ret_len);
    free(ids);
    return buf;
}

void wire_query_request_done(struct wire_query_request *m)
{
    if (m == NULL)
        return;
    free(m->segment_ids);
    memset(m, 0, sizeof(*m));
}

int wire_query_response_decode(const void *buf, size_t len, struct wire_query_response *ret,
                               struct wire_error *err)
{
    Sluice__V1__QueryResponse *m;
    int r;

    if ((r = wire_check_size(len, err)) < 0)
        return r;
    m = sluice__v1__query_response__unpack(NULL, len, buf);
    if (m == NULL)
        return wire_bad_message(err, "QueryResponse");
    memset(ret, 0, sizeof(*ret));
    ret->rows_matched = m->rows_matched;
    ret->is_float = m->is_float;
    ret->int_value = m->int_value;
    ret->float_value = m->float_value;
    ret->rows_scanned = m->rows_scanned;
    ret->bytes_scanned = m->bytes_scanned;
    ret->blocks_skipped = m->blocks_skipped;
    sluice__v1__query_response__free_unpacked(m, NULL);
    return 0;
}

uint8_t *wire_query_response_encode(const struct wire_query_response *in, size_t *ret_len)
{
    Sluice__V1__QueryResponse m = SLUICE__V1__QUERY_RESPONSE__INIT;

    m.rows_matched = in->rows_matched;
    m.is_float = in->is_float;
    m.int_value = in->int_value;
    m.float_value = in->float_value;
    m.rows_scanned = in->rows_scanned;
    m.bytes_scanned = in->bytes_scanned;
    m.blocks_skipped = in->blocks_skipped;
    return wire_pack(&m.base, ret_len);
}

static int wire_segment_status_from_pb(struct wire_segment_status *dst,
                                       const Sluice__V1__SegmentStatus *s, size_t i,
                                       struct wire_error *err)
{
    char field[48];

    snprintf(field, sizeof(field), "segments[%zu].segment_id", i);
    if (wire_check_segment_id(field, s->segment_id, err) < 0)
        return -EINVAL;
    if (s->state == 0 || (unsigned)s->state >= WIRE_SEG_COUNT_)
        return wire_invalid(err, "segments[%zu].state: unknown value %d", i, (int)s->state);
    if ((unsigned)s->reason >= WIRE_REASON_COUNT_)
        return wire_invalid(err, "segments[%zu].reason: unknown value %d", i, (int)s->reason);
    snprintf(field, sizeof(field), "segments[%zu].uri", i);
    if (wire_copy_checked(field, dst->uri, sizeof(dst->uri), s->uri, err) < 0)
        return -EINVAL;
    wire_copy(dst->segment_id, sizeof(dst->segment_id), s->segment_id);
    dst->state = (enum wire_segment_state)s->state;
    dst->reason = (enum wire_reason)s->reason;
    snprintf(dst->detail, sizeof(dst->detail), "%s", s->detail != NULL ? s->detail : "");
    dst->row_count = s->row_count;
    dst->avg_row_size = s->avg_row_size;
    dst->file_bytes = s->file_bytes;
    dst->index_bytes = s->index_bytes;
    dst->last_query_unix_ms = s->last_query_unix_ms;
    return 0;
}

/* A node holds at most this many segments in one status message. */
#define WIRE_STATUS_MAX_SEGMENTS 100000

int wire_node_status_decode(const void *buf, size_t len, struct wire_node_status *ret,
                            struct wire_error *err)
{
    Sluice__V1__NodeStatus *m;
    struct wire_node_status out;
    int r;

    if ((r = wire_check_size(len, err)) < 0)
        return r;
    m = sluice__v1__node_status__unpack(NULL, len, buf);
    if (m == NULL)
        return wire_bad_message(err, "NodeStatus");
    memset(&out, 0, sizeof(out));
    r = -EINVAL;
    if (m->node_id[0] != '\0' && wire_check_segment_id("node_id", m->node_id, err) < 0)
        goto out;
    if ((unsigned)m->state > WIRE_NODE_DRAINING) {
        wire_invalid(err, "state: unknown value %d", (int)m->state);
        goto out;
    }
    if (m->n_segments > WIRE_STATUS_MAX_SEGMENTS) {
        wire_invalid(err, "segments: %zu entries, the limit is %d", m->n_segments,
                     WIRE_STATUS_MAX_SEGMENTS);
        goto out;
    }
    out.segments = xcalloc(m->n_segments, sizeof(*out.segments));
    for (size_t i = 0; i < m->n_segments; i++) {
        if (wire_segment_status_from_pb(&out.segments[i], m->segments[i], i, err) < 0) {
            free(out.segments);
            goto out;
        }
    }
    out.n_segments = m->n_segments;
    wire_copy(out.node_id, sizeof(out.node_id), m->node_id);
    out.state = (enum wire_node_state)m->state;
    out.mapped_bytes = m->mapped_bytes;
    out.index_bytes = m->index_bytes;
    wire_pressure_from_pb(&out.pressure, m->pressure);
    snprintf(out.version, sizeof(out.version), "%s", m->version != NULL ? m->version : "");
    out.uptime_seconds = m->uptime_seconds;
    *ret = out;
    r = 0;
out:
    sluice__v1__node_status__free_unpacked(m, NULL);
    return r;
}

uint8_t *wire_node_status_encode(const struct wire_node_status *in, size_t *ret_len)
{
    Sluice__V1__NodeStatus m = SLUICE__V1__NODE_STATUS__INIT;
    Sluice__V1__PressureSnapshot p;
    Sluice__V1__SegmentStatus *segs = xcalloc(in->n_segments, sizeof(*segs));
    Sluice__V1__SegmentStatus **ptrs = xcalloc(in->n_segments, sizeof(*ptrs));
    uint8_t *buf;

    for (size_t i = 0; i < in->n_segments; i++) {
        const struct wire_segment_status *s = &in->segments[i];

        sluice__v1__segment_status__init(&segs[i]);
        segs[i].segment_id = (char *)(uintptr_t)s->segment_id;
        segs[i].state = (Sluice__V1__SegmentState)s->state;
        segs[i].reason = (Sluice__V1__Reason)s->reason;
        segs[i].detail = (char *)(uintptr_t)s->detail;
        segs[i].row_count = s->row_count;
        segs[i].avg_row_size = s->avg_row_size;
        segs[i].file_bytes = s->file_bytes;
        segs[i].index_bytes = s->index_bytes;
        segs[i].uri = (char *)(uintptr_t)s->uri;
        segs[i].last_query_unix_ms = s->last_query_unix_ms;
        ptrs[i] = &segs[i];
    }
    wire_pressure_to_pb(&p, &in->pressure);
    m.node_id = (char *)(uintptr_t)in->node_id;
    m.state = (Sluice__V1__NodeState)in->state;
    m.n_segments = in->n_segments;
    m.segments = ptrs;
    m.mapped_bytes = in->mapped_bytes;
    m.index_bytes = in->index_bytes;
    m.pressure = &p;
    m.version = (char *)(uintptr_t)in->version;
    m.uptime_seconds = in->uptime_seconds;
    buf = wire_pack(&m.base, ret_len);
    free(ptrs);
    free(segs);
    return buf;
}

void wire_node_status_done(struct wire_node_status *m)
{
    if (m == NULL)
        return;
    free(m->segments);
    memset(m, 0, sizeof(*m));
}

int wire_error_decode(const void *buf, size_t len, struct wire_error *ret)
{
    Sluice__V1__Error *m;

    if (len > WIRE_MAX_BODY)
        return -EMSGSIZE;
    m = sluice__v1__error__unpack(NULL, len, buf);
    if (m == NULL)
        return -EBADMSG;
    snprintf(ret->code, sizeof(ret->code), "%s", m->code != NULL ? m->code : "");
    snprintf(ret->message, sizeof(ret->message), "%s", m->message != NULL ? m->message : "");
    sluice__v1__error__free_unpacked(m, NULL);
    return 0;
}

uint8_t *wire_error_encode(const struct wire_error *in, size_t *ret_len)
{
    Sluice__V1__Error m = SLUICE__V1__ERROR__INIT;

    m.code = (char *)(uintptr_t)in->code;
    m.message = (char *)(uintptr_t)in->message;
    return wire_pack(&m.base, ret_len);
}
