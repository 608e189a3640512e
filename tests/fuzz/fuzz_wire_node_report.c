/*
 * fuzz_wire_node_report: wire_node_report_decode on untrusted bytes (the body
 * of POST /v1/nodes/report on the coordinator, sent by any node), the round
 * trip, and wire_node_report_done.
 */
#include "fuzz_wire.h"

static bool report_eq(const struct wire_node_report *a, const struct wire_node_report *b)
{
    return strcmp(a->node_id, b->node_id) == 0 && strcmp(a->addr, b->addr) == 0 &&
           a->state == b->state && fuzz_pressure_eq(&a->pressure, &b->pressure) &&
           fuzz_segment_statuses_eq(a->segments, a->n_segments, b->segments, b->n_segments) &&
           a->uptime_seconds == b->uptime_seconds && a->claim == b->claim;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct wire_node_report a, b;
    struct wire_error err;
    uint8_t *buf = fuzz_copy(data, size), *enc;
    size_t len;

    if (wire_node_report_decode(buf, size, &a, &err) == 0) {
        FUZZ_CHECK(wire_check_segment_id("node_id", a.node_id, NULL) == 0);
        FUZZ_CHECK(strchr(a.addr, ':') != NULL);
        FUZZ_CHECK(a.state == WIRE_NODE_SERVING || a.state == WIRE_NODE_DRAINING);
        FUZZ_CHECK(a.n_segments <= WIRE_REPORT_MAX_SEGS);
        for (size_t i = 0; i < a.n_segments; i++) {
            FUZZ_CHECK(wire_check_segment_id("id", a.segments[i].segment_id, NULL) == 0);
            FUZZ_CHECK(a.segments[i].state > WIRE_SEG_UNSPECIFIED &&
                       a.segments[i].state < WIRE_SEG_COUNT_);
            FUZZ_CHECK((unsigned)a.segments[i].reason < WIRE_REASON_COUNT_);
            FUZZ_CHECK(a.segments[i].uri == NULL || strlen(a.segments[i].uri) <= WIRE_URI_MAX);
        }
        enc = wire_node_report_encode(&a, &len);
        FUZZ_CHECK(wire_node_report_decode(enc, len, &b, &err) == 0);
        FUZZ_CHECK(report_eq(&a, &b));
        free(enc);
        wire_node_report_done(&b);
        wire_node_report_done(&a);
    }
    free(buf);
    return 0;
}
