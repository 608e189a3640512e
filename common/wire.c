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
#include "wirewalk.h"
#include "xmalloc.h"

_Static_assert((int)WIRE_REASON_SEGMENT_INVALID == (int)SLUICE__V1__REASON__SEGMENT_INVALID, "reason enum");
_Static_assert((int)WIRE_REASON_MEM_EXHAUSTION == (int)SLUICE__V1__REASON__MEM_EXHAUSTION, "reason enum");
_Static_assert((int)WIRE_REASON_OVER_LIMIT == (int)SLUICE__V1__REASON__OVER_LIMIT, "reason enum");
_Static_assert((int)WIRE_REASON_DISK_FULL == (int)SLUICE__V1__REASON__DISK_FULL, "reason enum");
_Static_assert((int)WIRE_SEG_DROPPED == (int)SLUICE__V1__SEGMENT_STATE__DROPPED, "segment state enum");
_Static_assert((int)WIRE_AGG_MAX == (int)SLUICE__V1__AGGREGATE__MAX, "aggregate enum");
_Static_assert((int)WIRE_NODE_DRAINING == (int)SLUICE__V1__NODE_STATE__DRAINING_STATE, "node state enum");
_Static_assert((int)WIRE_VERDICT_REJECTED == (int)SLUICE__V1__VERDICT__REJECTED, "verdict enum");

/*
 * Copies a NUL-terminated string into a fixed buffer, truncating if it must
 * at a UTF-8 character boundary: a multi-byte character cut in half would
 * make the copy invalid UTF-8, which every answer refuses to carry as is (a
 * decoded string re-encoded must come back the same).
 */
static void wire_copy_text(char *dst, size_t size, const char *src)
{
    size_t n = strlen(src);

    if (n >= size) {
        n = size - 1;
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static const char *const wire_seg_names[WIRE_SEG_COUNT_] = {"UNSPECIFIED", "LOADING", "LOADED",
                                                            "FAILED", "DROPPED"};

static const char *const wire_agg_names[WIRE_AGG_COUNT_] = {"unspecified", "count", "sum", "min",
                                                            "max"};

const char *wire_segment_state_name(enum wire_segment_state s)
{
    if ((unsigned)s >= WIRE_SEG_COUNT_)
        return "UNKNOWN";
    return wire_seg_names[s];
}

const char *wire_io_mode_name(enum wire_io_mode m)
{
    switch (m) {
    case WIRE_IO_MMAP:
        return "mmap";
    case WIRE_IO_DIRECT:
        return "direct";
    case WIRE_IO_UNSPECIFIED:
        break;
    }
    return "-";
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
    wire_copy_text(err->code, sizeof(err->code), code);
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

int wire_check_addr(const char *field, const char *addr, struct wire_error *err)
{
    const char *colon = strrchr(addr, ':'), *host_end;
    unsigned long port;
    char *end;

    if (colon == NULL || colon == addr)
        return wire_invalid(err, "%s: must be host:port", field);
    port = strtoul(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || port == 0 || port > 65535)
        return wire_invalid(err, "%s: port must be 1..65535", field);
    host_end = colon;
    if (addr[0] == '[') {
        if (colon[-1] != ']')
            return wire_invalid(err, "%s: unterminated [IPv6] host", field);
        for (const char *q = addr + 1; q < colon - 1; q++)
            if (!(((*q >= '0' && *q <= '9') || (*q >= 'a' && *q <= 'f') ||
                   (*q >= 'A' && *q <= 'F') || *q == ':' || *q == '.')))
                return wire_invalid(err, "%s: bad IPv6 host", field);
        return 0;
    }
    for (const char *q = addr; q < host_end; q++)
        if (!((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') ||
              *q == '.' || *q == '-' || *q == '_'))
            return wire_invalid(err, "%s: byte 0x%02x is not allowed in a host name", field,
                                (unsigned char)*q);
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

int wire_check_table(const char *field, const char *name, struct wire_error *err)
{
    size_t n = strlen(name), bad;

    if (n == 0)
        return wire_invalid(err, "%s: empty", field);
    if (n > WIRE_TABLE_MAX)
        return wire_invalid(err, "%s: %zu bytes, the limit is %d", field, n, WIRE_TABLE_MAX);
    if (!wire_utf8_valid(name, n, &bad))
        return wire_invalid(err, "%s: not valid UTF-8 (byte 0x%02x at offset %zu)", field,
                            (unsigned char)name[bad], bad);
    if (name[0] == ' ' || name[n - 1] == ' ')
        return wire_invalid(err, "%s: begins or ends with a space", field);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        /* C1 controls are U+0080..U+009F, encoded 0xC2 0x80..0x9F. */
        bool c1 = c == 0xC2 && i + 1 < n && (unsigned char)name[i + 1] <= 0x9F;

        if (c < 0x20 || c == 0x7F || c1)
            return wire_invalid(err, "%s: control character at offset %zu", field, i);
        if (c == '/')
            return wire_invalid(err, "%s: '/' at offset %zu is not allowed", field, i);
    }
    return 0;
}

int wire_check_mem(const char *prefix, uint64_t request, uint64_t limit, struct wire_error *err)
{
    if (request > WIRE_MEM_DECLARED_MAX)
        return wire_invalid(err, "%smem_request_bytes: %llu is over the limit of %llu", prefix,
                            (unsigned long long)request, WIRE_MEM_DECLARED_MAX);
    if (limit > WIRE_MEM_DECLARED_MAX)
        return wire_invalid(err, "%smem_limit_bytes: %llu is over the limit of %llu", prefix,
                            (unsigned long long)limit, WIRE_MEM_DECLARED_MAX);
    if (limit != 0 && limit < request)
        return wire_invalid(err, "%smem_limit_bytes: %llu is under mem_request_bytes %llu",
                            prefix, (unsigned long long)limit, (unsigned long long)request);
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

/*
 * Size cap, then the walk of wirewalk.c (UTF-8 of every string, split
 * message fields merged, groups skipped), then protobuf-c's unpacker on
 * the normal form. protobuf-c copies what it keeps, so the normal form is
 * freed at once. Returns the message, or NULL with *ret_r and err set.
 */
static void *wire_unpack(const ProtobufCMessageDescriptor *d, const void *buf, size_t len,
                         const char *what, struct wire_error *err, int *ret_r)
{
    uint8_t *norm = NULL;
    size_t nlen = len;
    char msg[sizeof(err->message)];
    ProtobufCMessage *m;
    int r;

    if ((r = wire_check_size(len, err)) < 0) {
        *ret_r = r;
        return NULL;
    }
    r = wirewalk_normalize(d, buf, len, WIREWALK_REQUEST, &norm, &nlen, msg, sizeof(msg));
    if (r == -EINVAL) {
        wire_error_set(err, "invalid_field", "%s", msg);
        *ret_r = r;
        return NULL;
    }
    if (r < 0) {
        *ret_r = wire_bad_message(err, what);
        return NULL;
    }
    m = protobuf_c_message_unpack(d, NULL, nlen, norm != NULL ? norm : buf);
    free(norm);
    if (m == NULL)
        *ret_r = wire_bad_message(err, what);
    return m;
}

/*
 * Packs msg, then makes sure every string in it is valid UTF-8: a string
 * that came from a peer (a detail, a name in a message) is escaped, so no
 * answer carries bytes a standard client refuses to parse.
 */
static uint8_t *wire_pack(const ProtobufCMessage *msg, size_t *ret_len)
{
    size_t n = protobuf_c_message_get_packed_size(msg), nlen = 0;
    uint8_t *buf = xmalloc(n), *norm = NULL;

    *ret_len = protobuf_c_message_pack(msg, buf);
    if (wirewalk_normalize(msg->descriptor, buf, *ret_len, WIREWALK_ANSWER, &norm, &nlen, NULL,
                           0) == 0 &&
        norm != NULL) {
        free(buf);
        buf = norm;
        *ret_len = nlen;
    }
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
    /* A newer peer's mode that this build does not know reads as unspecified. */
    dst->io_mode = p->io_mode == SLUICE__V1__IO_MODE__IO_MMAP     ? WIRE_IO_MMAP
                   : p->io_mode == SLUICE__V1__IO_MODE__IO_DIRECT ? WIRE_IO_DIRECT
                                                                  : WIRE_IO_UNSPECIFIED;
    dst->pool_bytes = p->pool_bytes;
    dst->pool_hit_ratio = p->pool_hit_ratio;
    dst->pinned_bytes = p->pinned_bytes;
    dst->tte_known = p->tte_known;
    dst->tte_ms = p->tte_ms;
    dst->growth_bytes_per_s = p->growth_bytes_per_second;
    dst->swapins_per_s = p->swapins_per_second;
    dst->admit_watermark =
        p->admit_watermark > 0 && p->admit_watermark <= 1 ? p->admit_watermark : 0;
    dst->queries_in_flight = p->queries_in_flight;
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
    dst->io_mode = p->io_mode == WIRE_IO_MMAP     ? SLUICE__V1__IO_MODE__IO_MMAP
                   : p->io_mode == WIRE_IO_DIRECT ? SLUICE__V1__IO_MODE__IO_DIRECT
                                                  : SLUICE__V1__IO_MODE__IO_MODE_UNSPECIFIED;
    dst->pool_bytes = p->pool_bytes;
    dst->pool_hit_ratio = p->pool_hit_ratio;
    dst->pinned_bytes = p->pinned_bytes;
    dst->tte_known = p->tte_known;
    dst->tte_ms = p->tte_ms;
    dst->growth_bytes_per_second = p->growth_bytes_per_s;
    dst->swapins_per_second = p->swapins_per_s;
    dst->admit_watermark = p->admit_watermark;
    dst->queries_in_flight = p->queries_in_flight;
}

/* Validates one unpacked AssignRequest into out; prefix names it in errors ("" or "assignments[3]."). */
static int wire_assign_from_pb(const Sluice__V1__AssignRequest *m, const char *prefix,
                               struct wire_assign_request *out, struct wire_error *err)
{
    char field[64];

    memset(out, 0, sizeof(*out));
    snprintf(field, sizeof(field), "%ssegment_id", prefix);
    if (wire_check_segment_id(field, m->segment_id, err) < 0)
        return -EINVAL;
    snprintf(field, sizeof(field), "%suri", prefix);
    if (wire_check_uri(field, m->uri, err) < 0)
        return -EINVAL;
    if (m->row_count == 0 || m->row_count > WIRE_ROW_COUNT_MAX)
        return wire_invalid(err, "%srow_count: %llu is outside 1..%llu", prefix,
                            (unsigned long long)m->row_count, WIRE_ROW_COUNT_MAX);
    if (m->avg_row_size == 0 || m->avg_row_size > WIRE_ROW_SIZE_MAX)
        return wire_invalid(err, "%savg_row_size: %llu is outside 1..%llu", prefix,
                            (unsigned long long)m->avg_row_size, WIRE_ROW_SIZE_MAX);
    if (wire_check_mem(prefix, m->mem_request_bytes, m->mem_limit_bytes, err) < 0)
        return -EINVAL;
    wire_copy(out->segment_id, sizeof(out->segment_id), m->segment_id);
    wire_copy(out->uri, sizeof(out->uri), m->uri);
    out->row_count = m->row_count;
    out->avg_row_size = m->avg_row_size;
    out->digest = m->digest;
    out->mem_request_bytes = m->mem_request_bytes;
    out->mem_limit_bytes = m->mem_limit_bytes;
    return 0;
}

/* A protobuf view of an assignment (strings borrowed from in). */
static void wire_assign_to_pb(Sluice__V1__AssignRequest *dst, const struct wire_assign_request *in)
{
    sluice__v1__assign_request__init(dst);
    dst->segment_id = (char *)(uintptr_t)in->segment_id;
    dst->uri = (char *)(uintptr_t)in->uri;
    dst->row_count = in->row_count;
    dst->avg_row_size = in->avg_row_size;
    dst->digest = in->digest;
    dst->mem_request_bytes = in->mem_request_bytes;
    dst->mem_limit_bytes = in->mem_limit_bytes;
}

int wire_assign_request_decode(const void *buf, size_t len, struct wire_assign_request *ret,
                               struct wire_error *err)
{
    Sluice__V1__AssignRequest *m;
    struct wire_assign_request out;
    int r;

    m = wire_unpack(&sluice__v1__assign_request__descriptor, buf, len, "AssignRequest", err, &r);
    if (m == NULL)
        return r;
    r = wire_assign_from_pb(m, "", &out, err);
    if (r == 0)
        *ret = out;
    sluice__v1__assign_request__free_unpacked(m, NULL);
    return r;
}

int wire_assign_batch_decode(const void *buf, size_t len, struct wire_assign_batch *ret,
                             struct wire_error *err)
{
    Sluice__V1__AssignBatch *m;
    struct wire_assign_batch out = {0, NULL};
    char prefix[48];
    int r;

    m = wire_unpack(&sluice__v1__assign_batch__descriptor, buf, len, "AssignBatch", err, &r);
    if (m == NULL)
        return r;
    r = -EINVAL;
    if (m->n_assignments == 0) {
        wire_invalid(err, "assignments: empty");
        goto out;
    }
    if (m->n_assignments > WIRE_ASSIGN_BATCH_MAX) {
        wire_invalid(err, "assignments: %zu entries, the limit is %d", m->n_assignments,
                     WIRE_ASSIGN_BATCH_MAX);
        goto out;
    }
    out.assignments = xcalloc(m->n_assignments, sizeof(*out.assignments));
    for (size_t i = 0; i < m->n_assignments; i++) {
        snprintf(prefix, sizeof(prefix), "assignments[%zu].", i);
        if (wire_assign_from_pb(m->assignments[i], prefix, &out.assignments[i], err) < 0) {
            free(out.assignments);
            goto out;
        }
    }
    out.n = m->n_assignments;
    *ret = out;
    r = 0;
out:
    sluice__v1__assign_batch__free_unpacked(m, NULL);
    return r;
}

uint8_t *wire_assign_batch_encode(const struct wire_assign_batch *in, size_t *ret_len)
{
    Sluice__V1__AssignBatch m = SLUICE__V1__ASSIGN_BATCH__INIT;
    Sluice__V1__AssignRequest *as = xcalloc(in->n, sizeof(*as));
    Sluice__V1__AssignRequest **ptrs = xcalloc(in->n, sizeof(*ptrs));
    uint8_t *buf;

    for (size_t i = 0; i < in->n; i++) {
        wire_assign_to_pb(&as[i], &in->assignments[i]);
        ptrs[i] = &as[i];
    }
    m.n_assignments = in->n;
    m.assignments = ptrs;
    buf = wire_pack(&m.base, ret_len);
    free(ptrs);
    free(as);
    return buf;
}

void wire_assign_batch_done(struct wire_assign_batch *m)
{
    if (m == NULL)
        return;
    free(m->assignments);
    memset(m, 0, sizeof(*m));
}

uint8_t *wire_assign_request_encode(const struct wire_assign_request *in, size_t *ret_len)
{
    Sluice__V1__AssignRequest m;

    wire_assign_to_pb(&m, in);
    return wire_pack(&m.base, ret_len);
}

int wire_assign_response_decode(const void *buf, size_t len, struct wire_assign_response *ret,
                                struct wire_error *err)
{
    Sluice__V1__AssignResponse *m;
    struct wire_assign_response out;
    int r;

    m = wire_unpack(&sluice__v1__assign_response__descriptor, buf, len, "AssignResponse", err, &r);
    if (m == NULL)
        return r;
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
    wire_copy_text(out.detail, sizeof(out.detail), m->detail != NULL ? m->detail : "");
    out.status = m->status;
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
    m.status = in->status;
    return wire_pack(&m.base, ret_len);
}

int wire_assign_batch_response_decode(const void *buf, size_t len,
                                      struct wire_assign_batch_response *ret,
                                      struct wire_error *err)
{
    Sluice__V1__AssignBatchResponse *m;
    int r;

    m = wire_unpack(&sluice__v1__assign_batch_response__descriptor, buf, len, "AssignBatchResponse", err, &r);
    if (m == NULL)
        return r;
    memset(ret, 0, sizeof(*ret));
    r = -EINVAL;
    if (m->n_results > WIRE_ASSIGN_BATCH_MAX) {
        wire_invalid(err, "results: %zu entries, the limit is %d", m->n_results,
                     WIRE_ASSIGN_BATCH_MAX);
        goto out;
    }
    ret->results = xcalloc(m->n_results, sizeof(*ret->results));
    for (size_t i = 0; i < m->n_results; i++) {
        const Sluice__V1__AssignResponse *a = m->results[i];
        struct wire_assign_response *d = &ret->results[i];

        if ((unsigned)a->reason >= WIRE_REASON_COUNT_ || (unsigned)a->verdict > WIRE_VERDICT_REJECTED) {
            wire_invalid(err, "results[%zu]: unknown verdict or reason", i);
            wire_assign_batch_response_done(ret);
            goto out;
        }
        d->verdict = (enum wire_verdict)a->verdict;
        d->reason = (enum wire_reason)a->reason;
        d->retry_after_ms = a->retry_after_ms;
        wire_pressure_from_pb(&d->pressure, a->pressure);
        wire_copy_text(d->detail, sizeof(d->detail), a->detail != NULL ? a->detail : "");
        d->status = a->status;
    }
    ret->n = m->n_results;
    r = 0;
out:
    sluice__v1__assign_batch_response__free_unpacked(m, NULL);
    return r;
}

uint8_t *wire_assign_batch_response_encode(const struct wire_assign_batch_response *in,
                                           size_t *ret_len)
{
    Sluice__V1__AssignBatchResponse m = SLUICE__V1__ASSIGN_BATCH_RESPONSE__INIT;
    Sluice__V1__AssignResponse *rs = xcalloc(in->n, sizeof(*rs));
    Sluice__V1__AssignResponse **ptrs = xcalloc(in->n, sizeof(*ptrs));
    Sluice__V1__PressureSnapshot *ps = xcalloc(in->n, sizeof(*ps));
    uint8_t *buf;

    for (size_t i = 0; i < in->n; i++) {
        const struct wire_assign_response *a = &in->results[i];

        sluice__v1__assign_response__init(&rs[i]);
        wire_pressure_to_pb(&ps[i], &a->pressure);
        rs[i].verdict = (Sluice__V1__Verdict)a->verdict;
        rs[i].reason = (Sluice__V1__Reason)a->reason;
        rs[i].retry_after_ms = a->retry_after_ms;
        rs[i].pressure = &ps[i];
        rs[i].detail = (char *)(uintptr_t)a->detail;
        rs[i].status = a->status;
        ptrs[i] = &rs[i];
    }
    m.n_results = in->n;
    m.results = ptrs;
    buf = wire_pack(&m.base, ret_len);
    free(ps);
    free(ptrs);
    free(rs);
    return buf;
}

void wire_assign_batch_response_done(struct wire_assign_batch_response *m)
{
    if (m == NULL)
        return;
    free(m->results);
    memset(m, 0, sizeof(*m));
}

/*
 * The checks of a QueryRequest shared by a node's (segment_ids, no table)
 * and a broker's (a table, no segment_ids); out takes the fields but not
 * the ids.
 */
static int wire_query_from_pb(const Sluice__V1__QueryRequest *m, bool table_query,
                              struct wire_query_request *out, struct wire_error *err)
{
    char field[48];

    if (table_query) {
        if (m->n_segment_ids > 0)
            return wire_invalid(err, "segment_ids: a broker queries every segment of the "
                                     "table; name the table only");
        if (wire_check_table("table", m->table, err) < 0)
            return -EINVAL;
    } else {
        if (m->table[0] != '\0')
            return wire_invalid(err, "table: a node answers for segment_ids; ask a broker "
                                     "(sluice-coord broker) for a table");
        if (m->n_segment_ids == 0)
            return wire_invalid(err, "segment_ids: empty");
        if (m->n_segment_ids > WIRE_QUERY_MAX_SEGMENTS)
            return wire_invalid(err, "segment_ids: %zu ids, the limit is %d",
                                m->n_segment_ids, WIRE_QUERY_MAX_SEGMENTS);
        for (size_t i = 0; i < m->n_segment_ids; i++) {
            snprintf(field, sizeof(field), "segment_ids[%zu]", i);
            if (wire_check_segment_id(field, m->segment_ids[i], err) < 0)
                return -EINVAL;
            /* A duplicate would be counted twice. n <= 1024 keeps this cheap. */
            for (size_t j = 0; j < i; j++)
                if (strcmp(m->segment_ids[i], m->segment_ids[j]) == 0)
                    return wire_invalid(err, "%s: duplicate of segment_ids[%zu]", field, j);
        }
    }
    if (m->aggregate == 0 || (unsigned)m->aggregate >= WIRE_AGG_COUNT_)
        return wire_invalid(err, "aggregate: unknown value %d (count, sum, min, max)",
                            (int)m->aggregate);
    if (wire_check_column("column", m->column, err) < 0)
        return -EINVAL;
    if (m->filter_column[0] != '\0') {
        if (wire_check_column("filter_column", m->filter_column, err) < 0)
            return -EINVAL;
        if (m->lo > m->hi)
            return wire_invalid(err, "lo: %lld is greater than hi %lld", (long long)m->lo,
                                (long long)m->hi);
    }
    out->aggregate = (enum wire_aggregate)m->aggregate;
    wire_copy(out->column, sizeof(out->column), m->column);
    wire_copy(out->filter_column, sizeof(out->filter_column), m->filter_column);
    wire_copy(out->table, sizeof(out->table), m->table);
    out->lo = m->lo;
    out->hi = m->hi;
    out->allow_partial = m->allow_partial;
    out->timeout_ms = m->timeout_ms;
    return 0;
}

int wire_query_request_decode(const void *buf, size_t len, struct wire_query_request *ret,
                              struct wire_error *err)
{
    Sluice__V1__QueryRequest *m;
    struct wire_query_request out;
    int r;

    m = wire_unpack(&sluice__v1__query_request__descriptor, buf, len, "QueryRequest", err, &r);
    if (m == NULL)
        return r;
    memset(&out, 0, sizeof(out));
    r = wire_query_from_pb(m, false, &out, err);
    if (r == 0) {
        out.n_segments = m->n_segment_ids;
        out.segment_ids = xcalloc(m->n_segment_ids, sizeof(*out.segment_ids));
        for (size_t i = 0; i < m->n_segment_ids; i++)
            wire_copy(out.segment_ids[i], sizeof(out.segment_ids[i]), m->segment_ids[i]);
        *ret = out;
    }
    sluice__v1__query_request__free_unpacked(m, NULL);
    return r;
}

int wire_table_query_decode(const void *buf, size_t len, struct wire_query_request *ret,
                            struct wire_error *err)
{
    Sluice__V1__QueryRequest *m;
    struct wire_query_request out;
    int r;

    m = wire_unpack(&sluice__v1__query_request__descriptor, buf, len, "QueryRequest", err, &r);
    if (m == NULL)
        return r;
    memset(&out, 0, sizeof(out));
    r = wire_query_from_pb(m, true, &out, err);
    if (r == 0)
        *ret = out;
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
    m.table = (char *)(uintptr_t)in->table;
    m.allow_partial = in->allow_partial;
    m.timeout_ms = in->timeout_ms;
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

static void wire_query_response_from_pb(struct wire_query_response *ret,
                                        const Sluice__V1__QueryResponse *m)
{
    memset(ret, 0, sizeof(*ret));
    ret->rows_matched = m->rows_matched;
    ret->is_float = m->is_float;
    ret->int_value = m->int_value;
    ret->float_value = m->float_value;
    ret->rows_scanned = m->rows_scanned;
    ret->bytes_scanned = m->bytes_scanned;
    ret->blocks_skipped = m->blocks_skipped;
    ret->service_us = m->service_us;
}

int wire_query_response_decode(const void *buf, size_t len, struct wire_query_response *ret,
                               struct wire_error *err)
{
    Sluice__V1__QueryResponse *m;
    int r;

    m = wire_unpack(&sluice__v1__query_response__descriptor, buf, len, "QueryResponse", err, &r);
    if (m == NULL)
        return r;
    wire_query_response_from_pb(ret, m);
    sluice__v1__query_response__free_unpacked(m, NULL);
    return 0;
}

static void wire_query_response_to_pb(Sluice__V1__QueryResponse *m,
                                      const struct wire_query_response *in)
{
    m->rows_matched = in->rows_matched;
    m->is_float = in->is_float;
    m->int_value = in->int_value;
    m->float_value = in->float_value;
    m->rows_scanned = in->rows_scanned;
    m->bytes_scanned = in->bytes_scanned;
    m->blocks_skipped = in->blocks_skipped;
    m->service_us = in->service_us;
}

uint8_t *wire_query_response_encode(const struct wire_query_response *in, size_t *ret_len)
{
    Sluice__V1__QueryResponse m = SLUICE__V1__QUERY_RESPONSE__INIT;

    wire_query_response_to_pb(&m, in);
    return wire_pack(&m.base, ret_len);
}

/* Copies a repeated string field of segment ids, validating each. */
static int wire_ids_from_pb(const char *field, char **ids, size_t n, size_t max,
                            char (**ret)[WIRE_ID_MAX + 1], struct wire_error *err);

int wire_table_query_response_decode(const void *buf, size_t len,
                                     struct wire_table_query_response *ret,
                                     struct wire_error *err)
{
    Sluice__V1__QueryResponse *m;
    struct wire_table_query_response out;
    int r;

    m = wire_unpack(&sluice__v1__query_response__descriptor, buf, len, "QueryResponse", err, &r);
    if (m == NULL)
        return r;
    memset(&out, 0, sizeof(out));
    r = wire_ids_from_pb("missing_segment_ids", m->missing_segment_ids,
                         m->n_missing_segment_ids, WIRE_SEGMENT_LIST_MAX, &out.missing, err);
    if (r == 0) {
        out.n_missing = m->n_missing_segment_ids;
        wire_query_response_from_pb(&out.result, m);
        out.segments = m->segments;
        out.partial = m->partial;
        out.nodes_asked = m->nodes_asked;
        out.subrequests = m->subrequests;
        out.retries = m->retries;
        out.hedges = m->hedges;
        out.placement_version = m->placement_version;
        *ret = out;
    }
    sluice__v1__query_response__free_unpacked(m, NULL);
    return r;
}

uint8_t *wire_table_query_response_encode(const struct wire_table_query_response *in,
                                          size_t *ret_len)
{
    Sluice__V1__QueryResponse m = SLUICE__V1__QUERY_RESPONSE__INIT;
    char **ids = xcalloc(in->n_missing, sizeof(char *));
    uint8_t *buf;

    wire_query_response_to_pb(&m, &in->result);
    for (size_t i = 0; i < in->n_missing; i++)
        ids[i] = in->missing[i];
    m.n_missing_segment_ids = in->n_missing;
    m.missing_segment_ids = ids;
    m.segments = in->segments;
    m.partial = in->partial;
    m.nodes_asked = in->nodes_asked;
    m.subrequests = in->subrequests;
    m.retries = in->retries;
    m.hedges = in->hedges;
    m.placement_version = in->placement_version;
    buf = wire_pack(&m.base, ret_len);
    free(ids);
    return buf;
}

void wire_table_query_response_done(struct wire_table_query_response *m)
{
    if (m == NULL)
        return;
    free(m->missing);
    memset(m, 0, sizeof(*m));
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
    if (s->uri != NULL && strlen(s->uri) > WIRE_URI_MAX)
        return wire_invalid(err, "segments[%zu].uri: %zu bytes, the limit is %d", i,
                            strlen(s->uri), WIRE_URI_MAX);
    dst->uri = s->uri != NULL && s->uri[0] != '\0' ? xstrdup(s->uri) : NULL;
    wire_copy(dst->segment_id, sizeof(dst->segment_id), s->segment_id);
    dst->state = (enum wire_segment_state)s->state;
    dst->reason = (enum wire_reason)s->reason;
    wire_copy_text(dst->detail, sizeof(dst->detail), s->detail != NULL ? s->detail : "");
    dst->row_count = s->row_count;
    dst->avg_row_size = s->avg_row_size;
    dst->file_bytes = s->file_bytes;
    dst->index_bytes = s->index_bytes;
    dst->last_query_unix_ms = s->last_query_unix_ms;
    dst->digest = s->digest;
    dst->footprint_bytes = s->footprint_bytes;
    dst->mem_request_bytes = s->mem_request_bytes;
    dst->mem_limit_bytes = s->mem_limit_bytes;
    dst->over_limit = s->over_limit;
    return 0;
}

static Sluice__V1__SegmentStatus **wire_statuses_to_pb(const struct wire_segment_status *in,
                                                       size_t n, Sluice__V1__SegmentStatus **ret);

/* A node holds at most this many segments in one status message. */
#define WIRE_STATUS_MAX_SEGMENTS 100000

int wire_node_status_decode(const void *buf, size_t len, struct wire_node_status *ret,
                            struct wire_error *err)
{
    Sluice__V1__NodeStatus *m;
    struct wire_node_status out;
    int r;

    m = wire_unpack(&sluice__v1__node_status__descriptor, buf, len, "NodeStatus", err, &r);
    if (m == NULL)
        return r;
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
        out.n_segments = i;
        if (wire_segment_status_from_pb(&out.segments[i], m->segments[i], i, err) < 0) {
            wire_node_status_done(&out);
            goto out;
        }
    }
    out.n_segments = m->n_segments;
    wire_copy(out.node_id, sizeof(out.node_id), m->node_id);
    out.state = (enum wire_node_state)m->state;
    out.mapped_bytes = m->mapped_bytes;
    out.index_bytes = m->index_bytes;
    wire_pressure_from_pb(&out.pressure, m->pressure);
    wire_copy_text(out.version, sizeof(out.version), m->version != NULL ? m->version : "");
    out.uptime_seconds = m->uptime_seconds;
    wire_copy_text(out.signal_sources, sizeof(out.signal_sources), m->signal_sources);
    out.cost_factor = m->cost_factor;
    for (size_t i = 0, o = 0; i < m->n_closed_gates && o < sizeof(out.closed_gates) - 1; i++) {
        int n = snprintf(out.closed_gates + o, sizeof(out.closed_gates) - o, "%s%s",
                         i > 0 ? " " : "", m->closed_gates[i]);
        if (n < 0)
            break;
        o += (size_t)n;
    }
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
    Sluice__V1__SegmentStatus *segs;
    uint8_t *buf;

    wire_pressure_to_pb(&p, &in->pressure);
    m.node_id = (char *)(uintptr_t)in->node_id;
    m.state = (Sluice__V1__NodeState)in->state;
    m.n_segments = in->n_segments;
    m.segments = wire_statuses_to_pb(in->segments, in->n_segments, &segs);
    m.mapped_bytes = in->mapped_bytes;
    m.index_bytes = in->index_bytes;
    m.pressure = &p;
    m.version = (char *)(uintptr_t)in->version;
    m.uptime_seconds = in->uptime_seconds;
    m.signal_sources = (char *)(uintptr_t)in->signal_sources;
    m.cost_factor = in->cost_factor;
    {
        /* closed_gates travels as a repeated field; here it is space-separated. */
        char gates[sizeof(in->closed_gates)], *save = NULL, *tok;
        char *names[WIRE_REASON_COUNT_];
        size_t n = 0;

        wire_copy_text(gates, sizeof(gates), in->closed_gates);
        for (tok = strtok_r(gates, " ", &save); tok != NULL && n < WIRE_REASON_COUNT_;
             tok = strtok_r(NULL, " ", &save))
            names[n++] = tok;
        m.closed_gates = names;
        m.n_closed_gates = n;
        buf = wire_pack(&m.base, ret_len);
    }
    free(m.segments);
    free(segs);
    return buf;
}

void wire_node_status_done(struct wire_node_status *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->n_segments; i++)
        free(m->segments[i].uri);
    free(m->segments);
    memset(m, 0, sizeof(*m));
}

int wire_error_decode(const void *buf, size_t len, struct wire_error *ret)
{
    Sluice__V1__Error *m;
    struct wire_error ignored;
    int r;

    m = wire_unpack(&sluice__v1__error__descriptor, buf, len, "Error", &ignored, &r);
    if (m == NULL)
        return r == -EINVAL ? -EBADMSG : r;
    wire_copy_text(ret->code, sizeof(ret->code), m->code != NULL ? m->code : "");
    wire_copy_text(ret->message, sizeof(ret->message), m->message != NULL ? m->message : "");
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

/* ---- coordinator API ---------------------------------------------------- */

/* Builds protobuf views of a status array; the caller frees both arrays. */
static Sluice__V1__SegmentStatus **wire_statuses_to_pb(const struct wire_segment_status *in,
                                                       size_t n, Sluice__V1__SegmentStatus **ret)
{
    Sluice__V1__SegmentStatus *segs = xcalloc(n, sizeof(*segs));
    Sluice__V1__SegmentStatus **ptrs = xcalloc(n, sizeof(*ptrs));

    for (size_t i = 0; i < n; i++) {
        sluice__v1__segment_status__init(&segs[i]);
        segs[i].segment_id = (char *)(uintptr_t)in[i].segment_id;
        segs[i].state = (Sluice__V1__SegmentState)in[i].state;
        segs[i].reason = (Sluice__V1__Reason)in[i].reason;
        segs[i].detail = (char *)(uintptr_t)in[i].detail;
        segs[i].row_count = in[i].row_count;
        segs[i].avg_row_size = in[i].avg_row_size;
        segs[i].file_bytes = in[i].file_bytes;
        segs[i].index_bytes = in[i].index_bytes;
        segs[i].uri = (char *)(uintptr_t)(in[i].uri != NULL ? in[i].uri : "");
        segs[i].last_query_unix_ms = in[i].last_query_unix_ms;
        segs[i].digest = in[i].digest;
        segs[i].footprint_bytes = in[i].footprint_bytes;
        segs[i].mem_request_bytes = in[i].mem_request_bytes;
        segs[i].mem_limit_bytes = in[i].mem_limit_bytes;
        segs[i].over_limit = in[i].over_limit;
        ptrs[i] = &segs[i];
    }
    *ret = segs;
    return ptrs;
}

int wire_node_report_decode(const void *buf, size_t len, struct wire_node_report *ret,
                            struct wire_error *err)
{
    Sluice__V1__NodeReport *m;
    struct wire_node_report out;
    int r;

    m = wire_unpack(&sluice__v1__node_report__descriptor, buf, len, "NodeReport", err, &r);
    if (m == NULL)
        return r;
    memset(&out, 0, sizeof(out));
    r = -EINVAL;
    if (wire_check_segment_id("node_id", m->node_id, err) < 0 ||
        wire_copy_checked("addr", out.addr, sizeof(out.addr), m->addr, err) < 0)
        goto out;
    if (wire_check_addr("addr", out.addr, err) < 0)
        goto out;
    if (m->state == 0 || (unsigned)m->state > WIRE_NODE_DRAINING) {
        wire_invalid(err, "state: unknown value %d", (int)m->state);
        goto out;
    }
    if (m->n_segments > WIRE_REPORT_MAX_SEGS) {
        wire_invalid(err, "segments: %zu entries, the limit is %d", m->n_segments,
                     WIRE_REPORT_MAX_SEGS);
        goto out;
    }
    out.segments = xcalloc(m->n_segments, sizeof(*out.segments));
    for (size_t i = 0; i < m->n_segments; i++) {
        out.n_segments = i;
        if (wire_segment_status_from_pb(&out.segments[i], m->segments[i], i, err) < 0) {
            wire_node_report_done(&out);
            goto out;
        }
    }
    out.n_segments = m->n_segments;
    wire_copy(out.node_id, sizeof(out.node_id), m->node_id);
    out.state = (enum wire_node_state)m->state;
    wire_pressure_from_pb(&out.pressure, m->pressure);
    out.uptime_seconds = m->uptime_seconds;
    out.claim = m->claim;
    *ret = out;
    r = 0;
out:
    sluice__v1__node_report__free_unpacked(m, NULL);
    return r;
}

uint8_t *wire_node_report_encode(const struct wire_node_report *in, size_t *ret_len)
{
    Sluice__V1__NodeReport m = SLUICE__V1__NODE_REPORT__INIT;
    Sluice__V1__PressureSnapshot p;
    Sluice__V1__SegmentStatus *segs;
    uint8_t *buf;

    wire_pressure_to_pb(&p, &in->pressure);
    m.node_id = (char *)(uintptr_t)in->node_id;
    m.addr = (char *)(uintptr_t)in->addr;
    m.state = (Sluice__V1__NodeState)in->state;
    m.pressure = &p;
    m.n_segments = in->n_segments;
    m.segments = wire_statuses_to_pb(in->segments, in->n_segments, &segs);
    m.uptime_seconds = in->uptime_seconds;
    m.claim = in->claim;
    buf = wire_pack(&m.base, ret_len);
    free(m.segments);
    free(segs);
    return buf;
}

void wire_node_report_done(struct wire_node_report *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->n_segments; i++)
        free(m->segments[i].uri);
    free(m->segments);
    memset(m, 0, sizeof(*m));
}

/* Copies a repeated string field of segment ids, validating each. */
static int wire_ids_from_pb(const char *field, char **ids, size_t n, size_t max,
                            char (**ret)[WIRE_ID_MAX + 1], struct wire_error *err)
{
    char (*out)[WIRE_ID_MAX + 1];
    char name[64];

    if (n > max)
        return wire_invalid(err, "%s: %zu entries, the limit is %zu", field, n, max);
    out = xcalloc(n, sizeof(*out));
    for (size_t i = 0; i < n; i++) {
        snprintf(name, sizeof(name), "%s[%zu]", field, i);
        if (wire_check_segment_id(name, ids[i], err) < 0) {
            free(out);
            return -EINVAL;
        }
        wire_copy(out[i], sizeof(out[i]), ids[i]);
    }
    *ret = out;
    return 0;
}

int wire_report_response_decode(const void *buf, size_t len, struct wire_report_response *ret,
                                struct wire_error *err)
{
    Sluice__V1__ReportResponse *m;
    int r;

    m = wire_unpack(&sluice__v1__report_response__descriptor, buf, len, "ReportResponse", err, &r);
    if (m == NULL)
        return r;
    memset(ret, 0, sizeof(*ret));
    r = wire_ids_from_pb("drop_segment_ids", m->drop_segment_ids, m->n_drop_segment_ids,
                         WIRE_REPORT_MAX_SEGS, &ret->drop, err);
    if (r == 0)
        ret->n_drop = m->n_drop_segment_ids;
    sluice__v1__report_response__free_unpacked(m, NULL);
    return r;
}

uint8_t *wire_report_response_encode(const struct wire_report_response *in, size_t *ret_len)
{
    Sluice__V1__ReportResponse m = SLUICE__V1__REPORT_RESPONSE__INIT;
    char **ids = xcalloc(in->n_drop, sizeof(char *));
    uint8_t *buf;

    for (size_t i = 0; i < in->n_drop; i++)
        ids[i] = in->drop[i];
    m.n_drop_segment_ids = in->n_drop;
    m.drop_segment_ids = ids;
    buf = wire_pack(&m.base, ret_len);
    free(ids);
    return buf;
}

void wire_report_response_done(struct wire_report_response *m)
{
    if (m == NULL)
        return;
    free(m->drop);
    memset(m, 0, sizeof(*m));
}

int wire_check_segment_spec(const char *field, const struct wire_segment_spec *s,
                            struct wire_error *err)
{
    char name[64];

    snprintf(name, sizeof(name), "%s.segment_id", field);
    if (wire_check_segment_id(name, s->segment_id, err) < 0)
        return -EINVAL;
    snprintf(name, sizeof(name), "%s.uri", field);
    if (wire_check_uri(name, s->uri != NULL ? s->uri : "", err) < 0)
        return -EINVAL;
    if (s->row_count == 0 || s->row_count > WIRE_ROW_COUNT_MAX)
        return wire_invalid(err, "%s.row_count: %llu is outside 1..%llu", field,
                            (unsigned long long)s->row_count, WIRE_ROW_COUNT_MAX);
    if (s->avg_row_size == 0 || s->avg_row_size > WIRE_ROW_SIZE_MAX)
        return wire_invalid(err, "%s.avg_row_size: %llu is outside 1..%llu", field,
                            (unsigned long long)s->avg_row_size, WIRE_ROW_SIZE_MAX);
    if (s->replication > WIRE_REPLICATION_MAX)
        return wire_invalid(err, "%s.replication: %u is outside 1..%d", field, s->replication,
                            WIRE_REPLICATION_MAX);
    snprintf(name, sizeof(name), "%s.table", field);
    if (wire_check_table(name, s->table, err) < 0)
        return -EINVAL;
    snprintf(name, sizeof(name), "%s.", field);
    if (wire_check_mem(name, s->mem_request_bytes, s->mem_limit_bytes, err) < 0)
        return -EINVAL;
    return 0;
}

static void wire_spec_from_pb(struct wire_segment_spec *dst, const Sluice__V1__SegmentSpec *s)
{
    wire_copy(dst->segment_id, sizeof(dst->segment_id), s->segment_id);
    dst->uri = xstrdup(s->uri != NULL ? s->uri : "");
    dst->row_count = s->row_count;
    dst->avg_row_size = s->avg_row_size;
    dst->replication = s->replication == 0 ? 1 : s->replication;
    dst->digest = s->digest;
    /* The caller has checked the length of a peer's table. */
    wire_copy_text(dst->table, sizeof(dst->table),
                   s->table != NULL && s->table[0] != '\0' ? s->table : WIRE_TABLE_DEFAULT);
    dst->mem_request_bytes = s->mem_request_bytes;
    dst->mem_limit_bytes = s->mem_limit_bytes;
}

static void wire_spec_to_pb(Sluice__V1__SegmentSpec *dst, const struct wire_segment_spec *s)
{
    sluice__v1__segment_spec__init(dst);
    dst->segment_id = (char *)(uintptr_t)s->segment_id;
    dst->uri = (char *)(uintptr_t)(s->uri != NULL ? s->uri : "");
    dst->row_count = s->row_count;
    dst->avg_row_size = s->avg_row_size;
    dst->replication = s->replication;
    dst->digest = s->digest;
    dst->table = (char *)(uintptr_t)s->table;
    dst->mem_request_bytes = s->mem_request_bytes;
    dst->mem_limit_bytes = s->mem_limit_bytes;
}

int wire_segment_batch_decode(const void *buf, size_t len, struct wire_segment_batch *ret,
                              struct wire_error *err)
{
    Sluice__V1__SegmentBatch *m;
    struct wire_segment_batch out;
    char field[48];
    int r;

    m = wire_unpack(&sluice__v1__segment_batch__descriptor, buf, len, "SegmentBatch", err, &r);
    if (m == NULL)
        return r;
    memset(&out, 0, sizeof(out));
    r = -EINVAL;
    if (m->n_segments == 0) {
        wire_invalid(err, "segments: empty");
        goto out;
    }
    if (m->n_segments > WIRE_BATCH_MAX) {
        wire_invalid(err, "segments: %zu entries, the limit is %d", m->n_segments,
                     WIRE_BATCH_MAX);
        goto out;
    }
    out.specs = xcalloc(m->n_segments, sizeof(*out.specs));
    for (size_t i = 0; i < m->n_segments; i++) {
        if (m->segments[i]->uri != NULL && strlen(m->segments[i]->uri) > WIRE_URI_MAX) {
            wire_invalid(err, "segments[%zu].uri: %zu bytes, the limit is %d", i,
                         strlen(m->segments[i]->uri), WIRE_URI_MAX);
            wire_segment_batch_done(&out);
            goto out;
        }
        if (strlen(m->segments[i]->segment_id) > WIRE_ID_MAX) {
            snprintf(field, sizeof(field), "segments[%zu].segment_id", i);
            wire_check_segment_id(field, m->segments[i]->segment_id, err);
            wire_segment_batch_done(&out);
            goto out;
        }
        if (strlen(m->segments[i]->table) > WIRE_TABLE_MAX) {
            snprintf(field, sizeof(field), "segments[%zu].table", i);
            wire_check_table(field, m->segments[i]->table, err);
            wire_segment_batch_done(&out);
            goto out;
        }
        wire_spec_from_pb(&out.specs[i], m->segments[i]);
        out.n = i + 1;
        snprintf(field, sizeof(field), "segments[%zu]", i);
        if (wire_check_segment_spec(field, &out.specs[i], err) < 0) {
            wire_segment_batch_done(&out);
            goto out;
        }
    }
    *ret = out;
    r = 0;
out:
    sluice__v1__segment_batch__free_unpacked(m, NULL);
    return r;
}

uint8_t *wire_segment_batch_encode(const struct wire_segment_batch *in, size_t *ret_len)
{
    Sluice__V1__SegmentBatch m = SLUICE__V1__SEGMENT_BATCH__INIT;
    Sluice__V1__SegmentSpec *specs = xcalloc(in->n, sizeof(*specs));
    Sluice__V1__SegmentSpec **ptrs = xcalloc(in->n, sizeof(*ptrs));
    uint8_t *buf;

    for (size_t i = 0; i < in->n; i++) {
        wire_spec_to_pb(&specs[i], &in->specs[i]);
        ptrs[i] = &specs[i];
    }
    m.n_segments = in->n;
    m.segments = ptrs;
    buf = wire_pack(&m.base, ret_len);
    free(ptrs);
    free(specs);
    return buf;
}

void wire_segment_batch_done(struct wire_segment_batch *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->n; i++)
        free(m->specs[i].uri);
    free(m->specs);
    memset(m, 0, sizeof(*m));
}

int wire_batch_response_decode(const void *buf, size_t len, struct wire_batch_response *ret,
                               struct wire_error *err)
{
    Sluice__V1__SegmentBatchResponse *m;
    int r;

    m = wire_unpack(&sluice__v1__segment_batch_response__descriptor, buf, len, "SegmentBatchResponse", err, &r);
    if (m == NULL)
        return r;
    ret->registered = m->registered;
    ret->unchanged = m->unchanged;
    sluice__v1__segment_batch_response__free_unpacked(m, NULL);
    return 0;
}

uint8_t *wire_batch_response_encode(const struct wire_batch_response *in, size_t *ret_len)
{
    Sluice__V1__SegmentBatchResponse m = SLUICE__V1__SEGMENT_BATCH_RESPONSE__INIT;

    m.registered = in->registered;
    m.unchanged = in->unchanged;
    return wire_pack(&m.base, ret_len);
}

/* Listings are answers from our own coordinator to the CLI: bounded, lenient. */

int wire_segment_list_decode(const void *buf, size_t len, struct wire_segment_list *ret,
                             struct wire_error *err)
{
    Sluice__V1__SegmentList *m;
    struct wire_segment_list out;
    int r;

    m = wire_unpack(&sluice__v1__segment_list__descriptor, buf, len, "SegmentList", err, &r);
    if (m == NULL)
        return r;
    if (m->n_segments > WIRE_SEGMENT_LIST_MAX) {
        r = wire_invalid(err, "segments: %zu entries, the limit is %d", m->n_segments,
                         WIRE_SEGMENT_LIST_MAX);
        sluice__v1__segment_list__free_unpacked(m, NULL);
        return r;
    }
    memset(&out, 0, sizeof(out));
    out.segments = xcalloc(m->n_segments, sizeof(*out.segments));
    for (size_t i = 0; i < m->n_segments; i++) {
        const Sluice__V1__SegmentInfo *s = m->segments[i];
        struct wire_segment_info *d = &out.segments[i];

        if (s->spec != NULL) {
            wire_spec_from_pb(&d->spec, s->spec);
        } else {
            d->spec.uri = xstrdup("");
            d->spec.replication = 1;
        }
        wire_copy_text(d->state, sizeof(d->state), s->state);
        d->n_placements = s->n_placements;
        d->placements = xcalloc(s->n_placements, sizeof(*d->placements));
        for (size_t j = 0; j < s->n_placements; j++) {
            snprintf(d->placements[j].node_id, sizeof(d->placements[j].node_id), "%s",
                     s->placements[j]->node_id);
            d->placements[j].state = (unsigned)s->placements[j]->state < WIRE_SEG_COUNT_
                                         ? (enum wire_segment_state)s->placements[j]->state
                                         : WIRE_SEG_UNSPECIFIED;
        }
        d->backoff_until_ms = s->backoff_until_ms;
        wire_copy_text(d->last_reason, sizeof(d->last_reason), s->last_reason);
        d->explain = s->explain[0] != '\0' ? xstrdup(s->explain) : NULL;
        d->footprint_bytes = s->footprint_bytes;
        d->over_limit = s->over_limit;
        out.n = i + 1;
    }
    out.total = m->total;
    wire_copy_text(out.next_after, sizeof(out.next_after), m->next_after);
    *ret = out;
    sluice__v1__segment_list__free_unpacked(m, NULL);
    return 0;
}

uint8_t *wire_segment_list_encode(const struct wire_segment_list *in, size_t *ret_len)
{
    Sluice__V1__SegmentList m = SLUICE__V1__SEGMENT_LIST__INIT;
    Sluice__V1__SegmentInfo *infos = xcalloc(in->n, sizeof(*infos));
    Sluice__V1__SegmentInfo **iptrs = xcalloc(in->n, sizeof(*iptrs));
    Sluice__V1__SegmentSpec *specs = xcalloc(in->n, sizeof(*specs));
    size_t np = 0, k = 0;
    Sluice__V1__Placement *pls, **pptrs;
    uint8_t *buf;

    for (size_t i = 0; i < in->n; i++)
        np += in->segments[i].n_placements;
    pls = xcalloc(np, sizeof(*pls));
    pptrs = xcalloc(np, sizeof(*pptrs));
    for (size_t i = 0; i < in->n; i++) {
        const struct wire_segment_info *s = &in->segments[i];

        sluice__v1__segment_info__init(&infos[i]);
        wire_spec_to_pb(&specs[i], &s->spec);
        infos[i].spec = &specs[i];
        infos[i].state = (char *)(uintptr_t)s->state;
        infos[i].placements = &pptrs[k];
        infos[i].n_placements = s->n_placements;
        for (size_t j = 0; j < s->n_placements; j++, k++) {
            sluice__v1__placement__init(&pls[k]);
            pls[k].node_id = (char *)(uintptr_t)s->placements[j].node_id;
            pls[k].state = (Sluice__V1__SegmentState)s->placements[j].state;
            pptrs[k] = &pls[k];
        }
        infos[i].backoff_until_ms = s->backoff_until_ms;
        infos[i].last_reason = (char *)(uintptr_t)s->last_reason;
        infos[i].explain = (char *)(uintptr_t)(s->explain != NULL ? s->explain : "");
        infos[i].footprint_bytes = s->footprint_bytes;
        infos[i].over_limit = s->over_limit;
        iptrs[i] = &infos[i];
    }
    m.n_segments = in->n;
    m.segments = iptrs;
    m.total = in->total;
    m.next_after = (char *)(uintptr_t)in->next_after;
    buf = wire_pack(&m.base, ret_len);
    free(pptrs);
    free(pls);
    free(specs);
    free(iptrs);
    free(infos);
    return buf;
}

void wire_segment_list_done(struct wire_segment_list *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->n; i++) {
        free(m->segments[i].spec.uri);
        free(m->segments[i].placements);
        free(m->segments[i].explain);
    }
    free(m->segments);
    memset(m, 0, sizeof(*m));
}

int wire_table_list_decode(const void *buf, size_t len, struct wire_table_list *ret,
                           struct wire_error *err)
{
    Sluice__V1__TableList *m;
    int r;

    m = wire_unpack(&sluice__v1__table_list__descriptor, buf, len, "TableList", err, &r);
    if (m == NULL)
        return r;
    if (m->n_tables > WIRE_TABLE_LIST_MAX) {
        r = wire_invalid(err, "tables: %zu entries, the limit is %d", m->n_tables,
                         WIRE_TABLE_LIST_MAX);
        sluice__v1__table_list__free_unpacked(m, NULL);
        return r;
    }
    memset(ret, 0, sizeof(*ret));
    ret->tables = xcalloc(m->n_tables, sizeof(*ret->tables));
    for (size_t i = 0; i < m->n_tables; i++) {
        const Sluice__V1__TableInfo *t = m->tables[i];
        struct wire_table_info *d = &ret->tables[i];

        wire_copy_text(d->table, sizeof(d->table), t->table);
        d->segments = t->segments;
        d->segments_loaded = t->segments_loaded;
        d->segments_pending = t->segments_pending;
        d->segments_invalid = t->segments_invalid;
        d->rows = t->rows;
        d->bytes = t->bytes;
    }
    ret->n = m->n_tables;
    sluice__v1__table_list__free_unpacked(m, NULL);
    return 0;
}

uint8_t *wire_table_list_encode(const struct wire_table_list *in, size_t *ret_len)
{
    Sluice__V1__TableList m = SLUICE__V1__TABLE_LIST__INIT;
    Sluice__V1__TableInfo *infos = xcalloc(in->n, sizeof(*infos));
    Sluice__V1__TableInfo **ptrs = xcalloc(in->n, sizeof(*ptrs));
    uint8_t *buf;

    for (size_t i = 0; i < in->n; i++) {
        const struct wire_table_info *t = &in->tables[i];

        sluice__v1__table_info__init(&infos[i]);
        infos[i].table = (char *)(uintptr_t)t->table;
        infos[i].segments = t->segments;
        infos[i].segments_loaded = t->segments_loaded;
        infos[i].segments_pending = t->segments_pending;
        infos[i].segments_invalid = t->segments_invalid;
        infos[i].rows = t->rows;
        infos[i].bytes = t->bytes;
        ptrs[i] = &infos[i];
    }
    m.n_tables = in->n;
    m.tables = ptrs;
    buf = wire_pack(&m.base, ret_len);
    free(ptrs);
    free(infos);
    return buf;
}

uint8_t *wire_history_list_encode(const struct wire_history_list *in, size_t *ret_len)
{
    Sluice__V1__HistoryList m = SLUICE__V1__HISTORY_LIST__INIT;
    Sluice__V1__NodeHistory *nodes = xcalloc(in->n, sizeof(*nodes));
    Sluice__V1__NodeHistory **nptrs = xcalloc(in->n, sizeof(*nptrs));
    size_t total = 0, k = 0;
    Sluice__V1__HistorySample *samples, **sptrs;
    uint8_t *buf;

    for (size_t i = 0; i < in->n; i++)
        total += in->nodes[i].n;
    samples = xcalloc(total, sizeof(*samples));
    sptrs = xcalloc(total, sizeof(*sptrs));
    for (size_t i = 0; i < in->n; i++) {
        const struct wire_node_history *h = &in->nodes[i];

        sluice__v1__node_history__init(&nodes[i]);
        nodes[i].node_id = (char *)(uintptr_t)h->node_id;
        nodes[i].n_samples = h->n;
        nodes[i].samples = &sptrs[k];
        for (size_t j = 0; j < h->n; j++, k++) {
            const struct wire_history_sample *s = &h->samples[j];

            sluice__v1__history_sample__init(&samples[k]);
            samples[k].ts_ms = s->ts_ms;
            samples[k].usage_bytes = s->usage_bytes;
            samples[k].limit_bytes = s->limit_bytes;
            samples[k].wss_bytes = s->wss_bytes;
            samples[k].some_avg10 = s->some_avg10;
            samples[k].full_avg10 = s->full_avg10;
            samples[k].p99_seconds = s->p99_seconds;
            sptrs[k] = &samples[k];
        }
        nptrs[i] = &nodes[i];
    }
    m.n_nodes = in->n;
    m.nodes = nptrs;
    m.step_ms = in->step_ms;
    buf = wire_pack(&m.base, ret_len);
    free(sptrs);
    free(samples);
    free(nptrs);
    free(nodes);
    return buf;
}

void wire_table_list_done(struct wire_table_list *m)
{
    if (m == NULL)
        return;
    free(m->tables);
    memset(m, 0, sizeof(*m));
}

int wire_recommendation_list_decode(const void *buf, size_t len,
                                    struct wire_recommendation_list *ret, struct wire_error *err)
{
    Sluice__V1__RecommendationList *m;
    int r;

    m = wire_unpack(&sluice__v1__recommendation_list__descriptor, buf, len, "RecommendationList",
                    err, &r);
    if (m == NULL)
        return r;
    if (m->n_recommendations > WIRE_TABLE_LIST_MAX) {
        r = wire_invalid(err, "recommendations: %zu entries, the limit is %d",
                         m->n_recommendations, WIRE_TABLE_LIST_MAX);
        sluice__v1__recommendation_list__free_unpacked(m, NULL);
        return r;
    }
    memset(ret, 0, sizeof(*ret));
    ret->recs = xcalloc(m->n_recommendations, sizeof(*ret->recs));
    for (size_t i = 0; i < m->n_recommendations; i++) {
        const Sluice__V1__Recommendation *p = m->recommendations[i];
        struct wire_recommendation *d = &ret->recs[i];

        wire_copy_text(d->table, sizeof(d->table), p->table);
        d->segments = p->segments;
        d->observed = p->observed;
        d->p50_bytes = p->p50_bytes;
        d->p90_bytes = p->p90_bytes;
        d->p95_bytes = p->p95_bytes;
        d->max_bytes = p->max_bytes;
        d->request_bytes = p->request_bytes;
        d->limit_bytes = p->limit_bytes;
        d->declared_request_bytes = p->declared_request_bytes;
        d->declared_limit_bytes = p->declared_limit_bytes;
        d->request_ratio = p->request_ratio;
        d->limit_ratio = p->limit_ratio;
        d->estimate_bytes = p->estimate_bytes;
        d->estimate_ratio = p->estimate_ratio;
        d->over_limit = p->over_limit;
    }
    ret->n = m->n_recommendations;
    sluice__v1__recommendation_list__free_unpacked(m, NULL);
    return 0;
}

uint8_t *wire_recommendation_list_encode(const struct wire_recommendation_list *in,
                                         size_t *ret_len)
{
    Sluice__V1__RecommendationList m = SLUICE__V1__RECOMMENDATION_LIST__INIT;
    Sluice__V1__Recommendation *recs = xcalloc(in->n, sizeof(*recs));
    Sluice__V1__Recommendation **ptrs = xcalloc(in->n, sizeof(*ptrs));
    uint8_t *buf;

    for (size_t i = 0; i < in->n; i++) {
        const struct wire_recommendation *s = &in->recs[i];
        Sluice__V1__Recommendation *d = &recs[i];

        sluice__v1__recommendation__init(d);
        d->table = (char *)(uintptr_t)s->table;
        d->segments = s->segments;
        d->observed = s->observed;
        d->p50_bytes = s->p50_bytes;
        d->p90_bytes = s->p90_bytes;
        d->p95_bytes = s->p95_bytes;
        d->max_bytes = s->max_bytes;
        d->request_bytes = s->request_bytes;
        d->limit_bytes = s->limit_bytes;
        d->declared_request_bytes = s->declared_request_bytes;
        d->declared_limit_bytes = s->declared_limit_bytes;
        d->request_ratio = s->request_ratio;
        d->limit_ratio = s->limit_ratio;
        d->estimate_bytes = s->estimate_bytes;
        d->estimate_ratio = s->estimate_ratio;
        d->over_limit = s->over_limit;
        ptrs[i] = d;
    }
    m.n_recommendations = in->n;
    m.recommendations = ptrs;
    buf = wire_pack(&m.base, ret_len);
    free(ptrs);
    free(recs);
    return buf;
}

void wire_recommendation_list_done(struct wire_recommendation_list *m)
{
    if (m == NULL)
        return;
    free(m->recs);
    memset(m, 0, sizeof(*m));
}

void wire_placement_map_done(struct wire_placement_map *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->n_segments; i++)
        free(m->segments[i].node_ids);
    free(m->segments);
    free(m->nodes);
    memset(m, 0, sizeof(*m));
}

int wire_placement_map_decode(const void *buf, size_t len, struct wire_placement_map *ret,
                              struct wire_error *err)
{
    Sluice__V1__PlacementMap *m;
    struct wire_placement_map out;
    char field[64];
    int r;

    m = wire_unpack(&sluice__v1__placement_map__descriptor, buf, len, "PlacementMap", err, &r);
    if (m == NULL)
        return r;
    memset(&out, 0, sizeof(out));
    r = -EINVAL;
    if (m->n_segments > WIRE_PLACEMENT_PAGE_MAX) {
        wire_invalid(err, "segments: %zu entries, the limit is %d", m->n_segments,
                     WIRE_PLACEMENT_PAGE_MAX);
        goto out;
    }
    if (m->n_nodes > WIRE_NODE_LIST_MAX) {
        wire_invalid(err, "nodes: %zu entries, the limit is %d", m->n_nodes, WIRE_NODE_LIST_MAX);
        goto out;
    }
    out.epoch = m->epoch;
    out.version = m->version;
    out.full = m->full;
    out.segments = xcalloc(m->n_segments, sizeof(*out.segments));
    for (size_t i = 0; i < m->n_segments; i++) {
        const Sluice__V1__PlacedSegment *p = m->segments[i];
        struct wire_placed_segment *d = &out.segments[i];

        snprintf(field, sizeof(field), "segments[%zu].segment_id", i);
        if (wire_check_segment_id(field, p->segment_id, err) < 0)
            goto out;
        snprintf(field, sizeof(field), "segments[%zu].table", i);
        if (wire_check_table(field, p->table, err) < 0)
            goto out;
        snprintf(field, sizeof(field), "segments[%zu].node_ids", i);
        if (wire_ids_from_pb(field, p->node_ids, p->n_node_ids, WIRE_NODE_LIST_MAX,
                             &d->node_ids, err) < 0)
            goto out;
        d->n_nodes = p->n_node_ids;
        out.n_segments = i + 1;
        wire_copy(d->segment_id, sizeof(d->segment_id), p->segment_id);
        wire_copy(d->table, sizeof(d->table), p->table);
        wire_copy_text(d->state, sizeof(d->state), p->state);
    }
    out.nodes = xcalloc(m->n_nodes, sizeof(*out.nodes));
    for (size_t i = 0; i < m->n_nodes; i++) {
        const Sluice__V1__PlacedNode *p = m->nodes[i];
        struct wire_placed_node *d = &out.nodes[i];

        snprintf(field, sizeof(field), "nodes[%zu].node_id", i);
        if (wire_check_segment_id(field, p->node_id, err) < 0)
            goto out;
        snprintf(field, sizeof(field), "nodes[%zu].addr", i);
        if (wire_check_addr(field, p->addr, err) < 0)
            goto out;
        wire_copy(d->node_id, sizeof(d->node_id), p->node_id);
        wire_copy(d->addr, sizeof(d->addr), p->addr);
        wire_copy_text(d->state, sizeof(d->state), p->state);
        d->p99_seconds = p->p99_seconds;
        d->queries_in_flight = p->queries_in_flight;
        out.n_nodes = i + 1;
    }
    if (m->next_after[0] != '\0' && wire_check_segment_id("next_after", m->next_after, err) < 0)
        goto out;
    wire_copy(out.next_after, sizeof(out.next_after), m->next_after);
    *ret = out;
    memset(&out, 0, sizeof(out));
    r = 0;
out:
    wire_placement_map_done(&out);
    sluice__v1__placement_map__free_unpacked(m, NULL);
    return r;
}

uint8_t *wire_placement_map_encode(const struct wire_placement_map *in, size_t *ret_len)
{
    Sluice__V1__PlacementMap m = SLUICE__V1__PLACEMENT_MAP__INIT;
    Sluice__V1__PlacedSegment *segs = xcalloc(in->n_segments, sizeof(*segs));
    Sluice__V1__PlacedSegment **sptrs = xcalloc(in->n_segments, sizeof(*sptrs));
    Sluice__V1__PlacedNode *nodes = xcalloc(in->n_nodes, sizeof(*nodes));
    Sluice__V1__PlacedNode **nptrs = xcalloc(in->n_nodes, sizeof(*nptrs));
    char ***ids = xcalloc(in->n_segments, sizeof(*ids));
    uint8_t *buf;

    for (size_t i = 0; i < in->n_segments; i++) {
        const struct wire_placed_segment *p = &in->segments[i];

        sluice__v1__placed_segment__init(&segs[i]);
        segs[i].segment_id = (char *)(uintptr_t)p->segment_id;
        segs[i].table = (char *)(uintptr_t)p->table;
        segs[i].state = (char *)(uintptr_t)p->state;
        ids[i] = xcalloc(p->n_nodes, sizeof(char *));
        for (size_t j = 0; j < p->n_nodes; j++)
            ids[i][j] = (char *)(uintptr_t)p->node_ids[j];
        segs[i].n_node_ids = p->n_nodes;
        segs[i].node_ids = ids[i];
        sptrs[i] = &segs[i];
    }
    for (size_t i = 0; i < in->n_nodes; i++) {
        const struct wire_placed_node *p = &in->nodes[i];

        sluice__v1__placed_node__init(&nodes[i]);
        nodes[i].node_id = (char *)(uintptr_t)p->node_id;
        nodes[i].addr = (char *)(uintptr_t)p->addr;
        nodes[i].state = (char *)(uintptr_t)p->state;
        nodes[i].p99_seconds = p->p99_seconds;
        nodes[i].queries_in_flight = p->queries_in_flight;
        nptrs[i] = &nodes[i];
    }
    m.epoch = in->epoch;
    m.version = in->version;
    m.full = in->full;
    m.n_segments = in->n_segments;
    m.segments = sptrs;
    m.n_nodes = in->n_nodes;
    m.nodes = nptrs;
    m.next_after = (char *)(uintptr_t)in->next_after;
    buf = wire_pack(&m.base, ret_len);
    for (size_t i = 0; i < in->n_segments; i++)
        free(ids[i]);
    free(ids);
    free(nptrs);
    free(nodes);
    free(sptrs);
    free(segs);
    return buf;
}

int wire_node_list_decode(const void *buf, size_t len, struct wire_node_list *ret,
                          struct wire_error *err)
{
    Sluice__V1__NodeList *m;
    int r;

    m = wire_unpack(&sluice__v1__node_list__descriptor, buf, len, "NodeList", err, &r);
    if (m == NULL)
        return r;
    if (m->n_nodes > WIRE_NODE_LIST_MAX) {
        r = wire_invalid(err, "nodes: %zu entries, the limit is %d", m->n_nodes,
                         WIRE_NODE_LIST_MAX);
        sluice__v1__node_list__free_unpacked(m, NULL);
        return r;
    }
    memset(ret, 0, sizeof(*ret));
    ret->nodes = xcalloc(m->n_nodes, sizeof(*ret->nodes));
    for (size_t i = 0; i < m->n_nodes; i++) {
        const Sluice__V1__NodeInfo *n = m->nodes[i];
        struct wire_node_info *d = &ret->nodes[i];

        wire_copy_text(d->node_id, sizeof(d->node_id), n->node_id);
        wire_copy_text(d->addr, sizeof(d->addr), n->addr);
        wire_copy_text(d->state, sizeof(d->state), n->state);
        wire_pressure_from_pb(&d->pressure, n->pressure);
        d->segments = n->segments;
        wire_copy_text(d->last_reason, sizeof(d->last_reason), n->last_reason);
        d->last_seen_ms = n->last_seen_ms;
        d->refusals = n->refusals;
    }
    ret->n = m->n_nodes;
    sluice__v1__node_list__free_unpacked(m, NULL);
    return 0;
}

uint8_t *wire_node_list_encode(const struct wire_node_list *in, size_t *ret_len)
{
    Sluice__V1__NodeList m = SLUICE__V1__NODE_LIST__INIT;
    Sluice__V1__NodeInfo *infos = xcalloc(in->n, sizeof(*infos));
    Sluice__V1__NodeInfo **ptrs = xcalloc(in->n, sizeof(*ptrs));
    Sluice__V1__PressureSnapshot *ps = xcalloc(in->n, sizeof(*ps));
    uint8_t *buf;

    for (size_t i = 0; i < in->n; i++) {
        const struct wire_node_info *n = &in->nodes[i];

        sluice__v1__node_info__init(&infos[i]);
        infos[i].node_id = (char *)(uintptr_t)n->node_id;
        infos[i].addr = (char *)(uintptr_t)n->addr;
        infos[i].state = (char *)(uintptr_t)n->state;
        wire_pressure_to_pb(&ps[i], &n->pressure);
        infos[i].pressure = &ps[i];
        infos[i].segments = n->segments;
        infos[i].last_reason = (char *)(uintptr_t)n->last_reason;
        infos[i].last_seen_ms = n->last_seen_ms;
        infos[i].refusals = n->refusals;
        ptrs[i] = &infos[i];
    }
    m.n_nodes = in->n;
    m.nodes = ptrs;
    buf = wire_pack(&m.base, ret_len);
    free(ps);
    free(ptrs);
    free(infos);
    return buf;
}

void wire_node_list_done(struct wire_node_list *m)
{
    if (m == NULL)
        return;
    free(m->nodes);
    memset(m, 0, sizeof(*m));
}

int wire_event_list_decode(const void *buf, size_t len, struct wire_event_list *ret,
                           struct wire_error *err)
{
    Sluice__V1__EventList *m;
    int r;

    m = wire_unpack(&sluice__v1__event_list__descriptor, buf, len, "EventList", err, &r);
    if (m == NULL)
        return r;
    if (m->n_events > WIRE_EVENT_LIST_MAX) {
        r = wire_invalid(err, "events: %zu entries, the limit is %d", m->n_events,
                         WIRE_EVENT_LIST_MAX);
        sluice__v1__event_list__free_unpacked(m, NULL);
        return r;
    }
    memset(ret, 0, sizeof(*ret));
    ret->events = xcalloc(m->n_events, sizeof(*ret->events));
    for (size_t i = 0; i < m->n_events; i++) {
        const Sluice__V1__Event *e = m->events[i];
        struct wire_event *d = &ret->events[i];

        d->id = e->id;
        d->ts_ms = e->ts_ms;
        wire_copy_text(d->segment_id, sizeof(d->segment_id), e->segment_id);
        wire_copy_text(d->node_id, sizeof(d->node_id), e->node_id);
        wire_copy_text(d->kind, sizeof(d->kind), e->kind);
        d->reason = (unsigned)e->reason < WIRE_REASON_COUNT_ ? (enum wire_reason)e->reason
                                                              : WIRE_REASON_NONE;
        d->http_status = e->http_status;
        d->retry_after_ms = e->retry_after_ms;
        wire_copy_text(d->detail, sizeof(d->detail), e->detail);
        d->count = e->count > 0 ? e->count : 1;
        d->last_ts_ms = e->last_ts_ms;
    }
    ret->n = m->n_events;
    ret->next_before = m->next_before;
    sluice__v1__event_list__free_unpacked(m, NULL);
    return 0;
}

uint8_t *wire_event_list_encode(const struct wire_event_list *in, size_t *ret_len)
{
    Sluice__V1__EventList m = SLUICE__V1__EVENT_LIST__INIT;
    Sluice__V1__Event *evs = xcalloc(in->n, sizeof(*evs));
    Sluice__V1__Event **ptrs = xcalloc(in->n, sizeof(*ptrs));
    uint8_t *buf;

    for (size_t i = 0; i < in->n; i++) {
        const struct wire_event *e = &in->events[i];

        sluice__v1__event__init(&evs[i]);
        evs[i].id = e->id;
        evs[i].ts_ms = e->ts_ms;
        evs[i].segment_id = (char *)(uintptr_t)e->segment_id;
        evs[i].node_id = (char *)(uintptr_t)e->node_id;
        evs[i].kind = (char *)(uintptr_t)e->kind;
        evs[i].reason = (Sluice__V1__Reason)e->reason;
        evs[i].http_status = e->http_status;
        evs[i].retry_after_ms = e->retry_after_ms;
        evs[i].detail = (char *)(uintptr_t)e->detail;
        evs[i].count = e->count;
        evs[i].last_ts_ms = e->last_ts_ms;
        ptrs[i] = &evs[i];
    }
    m.n_events = in->n;
    m.events = ptrs;
    m.next_before = in->next_before;
    buf = wire_pack(&m.base, ret_len);
    free(ptrs);
    free(evs);
    return buf;
}

void wire_event_list_done(struct wire_event_list *m)
{
    if (m == NULL)
        return;
    free(m->events);
    memset(m, 0, sizeof(*m));
}

int wire_claim_request_decode(const void *buf, size_t len, struct wire_claim_request *ret,
                              struct wire_error *err)
{
    Sluice__V1__ClaimRequest *m;
    int r;

    m = wire_unpack(&sluice__v1__claim_request__descriptor, buf, len, "ClaimRequest", err, &r);
    if (m == NULL)
        return r;
    r = -EINVAL;
    if (wire_check_segment_id("node_id", m->node_id, err) < 0)
        goto out;
    if (m->max_segments == 0 || m->max_segments > WIRE_CLAIM_MAX) {
        wire_invalid(err, "max_segments: %u is outside 1..%d", m->max_segments, WIRE_CLAIM_MAX);
        goto out;
    }
    wire_copy(ret->node_id, sizeof(ret->node_id), m->node_id);
    ret->max_segments = m->max_segments;
    r = 0;
out:
    sluice__v1__claim_request__free_unpacked(m, NULL);
    return r;
}

uint8_t *wire_claim_request_encode(const struct wire_claim_request *in, size_t *ret_len)
{
    Sluice__V1__ClaimRequest m = SLUICE__V1__CLAIM_REQUEST__INIT;

    m.node_id = (char *)(uintptr_t)in->node_id;
    m.max_segments = in->max_segments;
    return wire_pack(&m.base, ret_len);
}

int wire_claim_response_decode(const void *buf, size_t len, struct wire_claim_response *ret,
                               struct wire_error *err)
{
    Sluice__V1__ClaimResponse *m;
    char field[48];
    int r;

    m = wire_unpack(&sluice__v1__claim_response__descriptor, buf, len, "ClaimResponse", err, &r);
    if (m == NULL)
        return r;
    memset(ret, 0, sizeof(*ret));
    r = -EINVAL;
    if (m->n_assignments > WIRE_CLAIM_MAX) {
        wire_invalid(err, "assignments: %zu entries, the limit is %d", m->n_assignments,
                     WIRE_CLAIM_MAX);
        goto out;
    }
    ret->assignments = xcalloc(m->n_assignments, sizeof(*ret->assignments));
    for (size_t i = 0; i < m->n_assignments; i++) {
        const Sluice__V1__AssignRequest *a = m->assignments[i];
        struct wire_assign_request *d = &ret->assignments[i];

        snprintf(field, sizeof(field), "assignments[%zu].segment_id", i);
        if (wire_check_segment_id(field, a->segment_id, err) < 0 ||
            wire_copy_checked("assignments.uri", d->uri, sizeof(d->uri), a->uri, err) < 0 ||
            wire_check_uri("assignments.uri", d->uri, err) < 0 || a->row_count == 0 ||
            a->avg_row_size == 0) {
            if (a->row_count == 0 || a->avg_row_size == 0)
                wire_invalid(err, "assignments[%zu]: row_count and avg_row_size must be > 0", i);
            wire_claim_response_done(ret);
            goto out;
        }
        snprintf(field, sizeof(field), "assignments[%zu].", i);
        if (wire_check_mem(field, a->mem_request_bytes, a->mem_limit_bytes, err) < 0) {
            wire_claim_response_done(ret);
            goto out;
        }
        wire_copy(d->segment_id, sizeof(d->segment_id), a->segment_id);
        d->row_count = a->row_count;
        d->avg_row_size = a->avg_row_size;
        d->digest = a->digest;
        d->mem_request_bytes = a->mem_request_bytes;
        d->mem_limit_bytes = a->mem_limit_bytes;
        ret->n = i + 1;
    }
    r = 0;
out:
    sluice__v1__claim_response__free_unpacked(m, NULL);
    return r;
}

uint8_t *wire_claim_response_encode(const struct wire_claim_response *in, size_t *ret_len)
{
    Sluice__V1__ClaimResponse m = SLUICE__V1__CLAIM_RESPONSE__INIT;
    Sluice__V1__AssignRequest *as = xcalloc(in->n, sizeof(*as));
    Sluice__V1__AssignRequest **ptrs = xcalloc(in->n, sizeof(*ptrs));
    uint8_t *buf;

    for (size_t i = 0; i < in->n; i++) {
        wire_assign_to_pb(&as[i], &in->assignments[i]);
        ptrs[i] = &as[i];
    }
    m.n_assignments = in->n;
    m.assignments = ptrs;
    buf = wire_pack(&m.base, ret_len);
    free(ptrs);
    free(as);
    return buf;
}

void wire_claim_response_done(struct wire_claim_response *m)
{
    if (m == NULL)
        return;
    free(m->assignments);
    memset(m, 0, sizeof(*m));
}

int wire_cluster_status_decode(const void *buf, size_t len, struct wire_cluster_status *ret,
                               struct wire_error *err)
{
    Sluice__V1__ClusterStatus *m;
    int r;

    m = wire_unpack(&sluice__v1__cluster_status__descriptor, buf, len, "ClusterStatus", err, &r);
    if (m == NULL)
        return r;
    memset(ret, 0, sizeof(*ret));
    ret->segments_total = m->segments_total;
    ret->segments_pending = m->segments_pending;
    ret->segments_loaded = m->segments_loaded;
    ret->segments_invalid = m->segments_invalid;
    ret->segments_backing_off = m->segments_backing_off;
    ret->nodes_up = m->nodes_up;
    ret->nodes_total = m->nodes_total;
    ret->assignments_in_flight = m->assignments_in_flight;
    wire_copy_text(ret->version, sizeof(ret->version), m->version);
    ret->uptime_seconds = m->uptime_seconds;
    ret->assignments_accepted = m->assignments_accepted;
    for (size_t i = 0; i < m->n_refusals; i++) {
        unsigned rr = (unsigned)m->refusals[i]->reason;

        /* A reason this build does not know is not shown, as in every other message. */
        if (rr < WIRE_REASON_COUNT_)
            ret->refusals[rr] += m->refusals[i]->count;
    }
    sluice__v1__cluster_status__free_unpacked(m, NULL);
    return 0;
}

uint8_t *wire_cluster_status_encode(const struct wire_cluster_status *in, size_t *ret_len)
{
    Sluice__V1__ClusterStatus m = SLUICE__V1__CLUSTER_STATUS__INIT;
    Sluice__V1__ReasonCount rc[WIRE_REASON_COUNT_], *rcp[WIRE_REASON_COUNT_];

    m.segments_total = in->segments_total;
    m.segments_pending = in->segments_pending;
    m.segments_loaded = in->segments_loaded;
    m.segments_invalid = in->segments_invalid;
    m.segments_backing_off = in->segments_backing_off;
    m.nodes_up = in->nodes_up;
    m.nodes_total = in->nodes_total;
    m.assignments_in_flight = in->assignments_in_flight;
    m.version = (char *)(uintptr_t)in->version;
    m.uptime_seconds = in->uptime_seconds;
    m.assignments_accepted = in->assignments_accepted;
    for (unsigned i = 0; i < WIRE_REASON_COUNT_; i++) {
        if (in->refusals[i] == 0)
            continue;
        sluice__v1__reason_count__init(&rc[m.n_refusals]);
        rc[m.n_refusals].reason = (Sluice__V1__Reason)i;
        rc[m.n_refusals].count = in->refusals[i];
        rcp[m.n_refusals] = &rc[m.n_refusals];
        m.n_refusals++;
    }
    m.refusals = rcp;
    return wire_pack(&m.base, ret_len);
}
