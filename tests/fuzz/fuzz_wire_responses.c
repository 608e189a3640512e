/*
 * fuzz_wire_responses: the decoders of answers, which the CLI and the
 * daemons read from a peer: the first input byte picks the message (modulo
 * the number of kinds), the rest is its body. Each accepted body must
 * survive a round trip; every *_done is called so that leaks show.
 *
 *   0 AssignResponse   3 SegmentList   6 ClusterStatus
 *   1 QueryResponse    4 NodeList      7 Error
 *   2 ReportResponse   5 EventList     8 SegmentBatchResponse
 */
#include "fuzz_wire.h"

enum { KIND_COUNT = 9 };

static void assign_response(const uint8_t *buf, size_t size)
{
    struct wire_assign_response a, b;
    struct wire_error err;
    uint8_t *enc;
    size_t len;

    if (wire_assign_response_decode(buf, size, &a, &err) != 0)
        return;
    FUZZ_CHECK(a.verdict == WIRE_VERDICT_ACCEPTED || a.verdict == WIRE_VERDICT_REJECTED);
    FUZZ_CHECK((unsigned)a.reason < WIRE_REASON_COUNT_);
    enc = wire_assign_response_encode(&a, &len);
    FUZZ_CHECK(wire_assign_response_decode(enc, len, &b, &err) == 0);
    FUZZ_CHECK(a.verdict == b.verdict && a.reason == b.reason &&
               a.retry_after_ms == b.retry_after_ms &&
               fuzz_pressure_eq(&a.pressure, &b.pressure) && strcmp(a.detail, b.detail) == 0);
    free(enc);
}

static void query_response(const uint8_t *buf, size_t size)
{
    struct wire_query_response a, b;
    struct wire_error err;
    uint8_t *enc;
    size_t len;

    if (wire_query_response_decode(buf, size, &a, &err) != 0)
        return;
    enc = wire_query_response_encode(&a, &len);
    FUZZ_CHECK(wire_query_response_decode(enc, len, &b, &err) == 0);
    FUZZ_CHECK(a.rows_matched == b.rows_matched && a.is_float == b.is_float &&
               a.int_value == b.int_value && fuzz_same_double(a.float_value, b.float_value) &&
               a.rows_scanned == b.rows_scanned && a.bytes_scanned == b.bytes_scanned &&
               a.blocks_skipped == b.blocks_skipped);
    free(enc);
}

static void report_response(const uint8_t *buf, size_t size)
{
    struct wire_report_response a, b;
    struct wire_error err;
    uint8_t *enc;
    size_t len;

    if (wire_report_response_decode(buf, size, &a, &err) != 0)
        return;
    FUZZ_CHECK(a.n_drop <= WIRE_REPORT_MAX_SEGS);
    for (size_t i = 0; i < a.n_drop; i++)
        FUZZ_CHECK(wire_check_segment_id("drop", a.drop[i], NULL) == 0);
    enc = wire_report_response_encode(&a, &len);
    FUZZ_CHECK(wire_report_response_decode(enc, len, &b, &err) == 0);
    FUZZ_CHECK(a.n_drop == b.n_drop);
    for (size_t i = 0; i < a.n_drop; i++)
        FUZZ_CHECK(strcmp(a.drop[i], b.drop[i]) == 0);
    free(enc);
    wire_report_response_done(&b);
    wire_report_response_done(&a);
}

static bool segment_info_eq(const struct wire_segment_info *a, const struct wire_segment_info *b)
{
    struct wire_segment_spec spec = a->spec;

    if (!fuzz_segment_spec_eq(&spec, &b->spec) || strcmp(a->state, b->state) != 0 ||
        a->n_placements != b->n_placements || a->backoff_until_ms != b->backoff_until_ms ||
        strcmp(a->last_reason, b->last_reason) != 0 || !fuzz_str_eq(a->explain, b->explain))
        return false;
    for (size_t j = 0; j < a->n_placements; j++)
        if (strcmp(a->placements[j].node_id, b->placements[j].node_id) != 0 ||
            a->placements[j].state != b->placements[j].state)
            return false;
    return true;
}

static void segment_list(const uint8_t *buf, size_t size)
{
    struct wire_segment_list a, b;
    struct wire_error err;
    uint8_t *enc;
    size_t len;

    if (wire_segment_list_decode(buf, size, &a, &err) != 0)
        return;
    for (size_t i = 0; i < a.n; i++) {
        FUZZ_CHECK(a.segments[i].spec.uri != NULL);
        for (size_t j = 0; j < a.segments[i].n_placements; j++)
            FUZZ_CHECK((unsigned)a.segments[i].placements[j].state < WIRE_SEG_COUNT_);
    }
    enc = wire_segment_list_encode(&a, &len);
    FUZZ_CHECK(wire_segment_list_decode(enc, len, &b, &err) == 0);
    FUZZ_CHECK(a.n == b.n && a.total == b.total);
    for (size_t i = 0; i < a.n; i++)
        FUZZ_CHECK(segment_info_eq(&a.segments[i], &b.segments[i]));
    free(enc);
    wire_segment_list_done(&b);
    wire_segment_list_done(&a);
}

static void node_list(const uint8_t *buf, size_t size)
{
    struct wire_node_list a, b;
    struct wire_error err;
    uint8_t *enc;
    size_t len;

    if (wire_node_list_decode(buf, size, &a, &err) != 0)
        return;
    enc = wire_node_list_encode(&a, &len);
    FUZZ_CHECK(wire_node_list_decode(enc, len, &b, &err) == 0);
    FUZZ_CHECK(a.n == b.n);
    for (size_t i = 0; i < a.n; i++) {
        const struct wire_node_info *x = &a.nodes[i], *y = &b.nodes[i];

        FUZZ_CHECK(strcmp(x->node_id, y->node_id) == 0 && strcmp(x->addr, y->addr) == 0 &&
                   strcmp(x->state, y->state) == 0 &&
                   fuzz_pressure_eq(&x->pressure, &y->pressure) && x->segments == y->segments &&
                   strcmp(x->last_reason, y->last_reason) == 0 &&
                   x->last_seen_ms == y->last_seen_ms && x->refusals == y->refusals);
    }
    free(enc);
    wire_node_list_done(&b);
    wire_node_list_done(&a);
}

static void event_list(const uint8_t *buf, size_t size)
{
    struct wire_event_list a, b;
    struct wire_error err;
    uint8_t *enc;
    size_t len;

    if (wire_event_list_decode(buf, size, &a, &err) != 0)
        return;
    for (size_t i = 0; i < a.n; i++)
        FUZZ_CHECK((unsigned)a.events[i].reason < WIRE_REASON_COUNT_);
    enc = wire_event_list_encode(&a, &len);
    FUZZ_CHECK(wire_event_list_decode(enc, len, &b, &err) == 0);
    FUZZ_CHECK(a.n == b.n);
    for (size_t i = 0; i < a.n; i++) {
        const struct wire_event *x = &a.events[i], *y = &b.events[i];

        FUZZ_CHECK(x->id == y->id && x->ts_ms == y->ts_ms &&
                   strcmp(x->segment_id, y->segment_id) == 0 &&
                   strcmp(x->node_id, y->node_id) == 0 && strcmp(x->kind, y->kind) == 0 &&
                   x->reason == y->reason && x->http_status == y->http_status &&
                   x->retry_after_ms == y->retry_after_ms && strcmp(x->detail, y->detail) == 0);
    }
    free(enc);
    wire_event_list_done(&b);
    wire_event_list_done(&a);
}

static void cluster_status(const uint8_t *buf, size_t size)
{
    struct wire_cluster_status a, b;
    struct wire_error err;
    uint8_t *enc;
    size_t len;

    if (wire_cluster_status_decode(buf, size, &a, &err) != 0)
        return;
    enc = wire_cluster_status_encode(&a, &len);
    FUZZ_CHECK(wire_cluster_status_decode(enc, len, &b, &err) == 0);
    FUZZ_CHECK(a.segments_total == b.segments_total && a.segments_pending == b.segments_pending &&
               a.segments_loaded == b.segments_loaded &&
               a.segments_invalid == b.segments_invalid &&
               a.segments_backing_off == b.segments_backing_off && a.nodes_up == b.nodes_up &&
               a.nodes_total == b.nodes_total &&
               a.assignments_in_flight == b.assignments_in_flight &&
               strcmp(a.version, b.version) == 0 && a.uptime_seconds == b.uptime_seconds);
    free(enc);
}

static void error_message(const uint8_t *buf, size_t size)
{
    struct wire_error a, b;
    uint8_t *enc;
    size_t len;

    if (wire_error_decode(buf, size, &a) != 0)
        return;
    enc = wire_error_encode(&a, &len);
    FUZZ_CHECK(wire_error_decode(enc, len, &b) == 0);
    FUZZ_CHECK(strcmp(a.code, b.code) == 0 && strcmp(a.message, b.message) == 0);
    free(enc);
}

static void batch_response(const uint8_t *buf, size_t size)
{
    struct wire_batch_response a, b;
    struct wire_error err;
    uint8_t *enc;
    size_t len;

    if (wire_batch_response_decode(buf, size, &a, &err) != 0)
        return;
    enc = wire_batch_response_encode(&a, &len);
    FUZZ_CHECK(wire_batch_response_decode(enc, len, &b, &err) == 0);
    FUZZ_CHECK(a.registered == b.registered && a.unchanged == b.unchanged);
    free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static void (*const kinds[KIND_COUNT])(const uint8_t *, size_t) = {
        assign_response, query_response, report_response, segment_list,  node_list,
        event_list,      cluster_status, error_message,   batch_response,
    };
    uint8_t *buf;

    if (size < 1)
        return 0;
    buf = fuzz_copy(data + 1, size - 1);
    kinds[data[0] % KIND_COUNT](buf, size - 1);
    free(buf);
    return 0;
}
