/*
 * fuzz_wire_claim: the pull-mode pair on the same untrusted bytes:
 * wire_claim_request_decode (POST /v1/claim on the coordinator, from any
 * node) and wire_claim_response_decode (its answer, read by the node), each
 * with the round trip; wire_claim_response_done frees.
 */
#include "fuzz_wire.h"

static void fuzz_request(const uint8_t *buf, size_t size)
{
    struct wire_claim_request a, b;
    struct wire_error err;
    uint8_t *enc;
    size_t len;

    if (wire_claim_request_decode(buf, size, &a, &err) != 0)
        return;
    FUZZ_CHECK(wire_check_segment_id("node_id", a.node_id, NULL) == 0);
    FUZZ_CHECK(a.max_segments >= 1 && a.max_segments <= WIRE_CLAIM_MAX);
    enc = wire_claim_request_encode(&a, &len);
    FUZZ_CHECK(wire_claim_request_decode(enc, len, &b, &err) == 0);
    FUZZ_CHECK(strcmp(a.node_id, b.node_id) == 0 && a.max_segments == b.max_segments);
    free(enc);
}

static void fuzz_response(const uint8_t *buf, size_t size)
{
    struct wire_claim_response a, b;
    struct wire_error err;
    uint8_t *enc;
    size_t len;

    if (wire_claim_response_decode(buf, size, &a, &err) != 0)
        return;
    FUZZ_CHECK(a.n <= WIRE_CLAIM_MAX);
    for (size_t i = 0; i < a.n; i++)
        fuzz_check_assign_valid(&a.assignments[i]);
    enc = wire_claim_response_encode(&a, &len);
    FUZZ_CHECK(wire_claim_response_decode(enc, len, &b, &err) == 0);
    FUZZ_CHECK(a.n == b.n);
    for (size_t i = 0; i < a.n; i++)
        FUZZ_CHECK(fuzz_assign_request_eq(&a.assignments[i], &b.assignments[i]));
    free(enc);
    wire_claim_response_done(&b);
    wire_claim_response_done(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = fuzz_copy(data, size);

    fuzz_request(buf, size);
    fuzz_response(buf, size);
    free(buf);
    return 0;
}
