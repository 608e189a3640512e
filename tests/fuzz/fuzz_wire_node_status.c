/*
 * fuzz_wire_node_status: wire_node_status_decode on untrusted bytes (a node's
 * GET /v1/status answer, read by the coordinator and the CLI), the round
 * trip, and wire_node_status_done. closed_gates is not compared: the struct
 * holds it space-separated and the encoder re-splits it, so a gate name with
 * a space in it, or more than WIRE_REASON_COUNT_ of them, cannot survive.
 */
#include "fuzz_wire.h"

static bool status_eq(const struct wire_node_status *a, const struct wire_node_status *b)
{
    return strcmp(a->node_id, b->node_id) == 0 && a->state == b->state &&
           fuzz_segment_statuses_eq(a->segments, a->n_segments, b->segments, b->n_segments) &&
           a->mapped_bytes == b->mapped_bytes && a->index_bytes == b->index_bytes &&
           fuzz_pressure_eq(&a->pressure, &b->pressure) && strcmp(a->version, b->version) == 0 &&
           a->uptime_seconds == b->uptime_seconds &&
           strcmp(a->signal_sources, b->signal_sources) == 0 &&
           fuzz_same_double(a->cost_factor, b->cost_factor);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct wire_node_status a, b;
    struct wire_error err;
    uint8_t *buf = fuzz_copy(data, size), *enc;
    size_t len;

    if (wire_node_status_decode(buf, size, &a, &err) == 0) {
        FUZZ_CHECK(a.node_id[0] == '\0' || wire_check_segment_id("node_id", a.node_id, NULL) == 0);
        FUZZ_CHECK(a.state <= WIRE_NODE_DRAINING);
        for (size_t i = 0; i < a.n_segments; i++) {
            FUZZ_CHECK(wire_check_segment_id("id", a.segments[i].segment_id, NULL) == 0);
            FUZZ_CHECK(a.segments[i].state > WIRE_SEG_UNSPECIFIED &&
                       a.segments[i].state < WIRE_SEG_COUNT_);
            FUZZ_CHECK((unsigned)a.segments[i].reason < WIRE_REASON_COUNT_);
        }
        enc = wire_node_status_encode(&a, &len);
        FUZZ_CHECK(wire_node_status_decode(enc, len, &b, &err) == 0);
        FUZZ_CHECK(status_eq(&a, &b));
        free(enc);
        wire_node_status_done(&b);
        wire_node_status_done(&a);
    }
    free(buf);
    return 0;
}
