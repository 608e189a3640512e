/*
 * fuzz_wire_assign: wire_assign_request_decode on untrusted bytes (the body
 * of POST /v1/segments/assign on a node), then the round trip: what decoded
 * must encode and decode again to the same request.
 */
#include "fuzz_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct wire_assign_request a, b;
    struct wire_error err;
    uint8_t *buf = fuzz_copy(data, size), *enc;
    size_t len;

    if (wire_assign_request_decode(buf, size, &a, &err) == 0) {
        fuzz_check_assign_valid(&a);
        FUZZ_CHECK(a.row_count <= WIRE_ROW_COUNT_MAX && a.avg_row_size <= WIRE_ROW_SIZE_MAX);
        enc = wire_assign_request_encode(&a, &len);
        FUZZ_CHECK(wire_assign_request_decode(enc, len, &b, &err) == 0);
        FUZZ_CHECK(fuzz_assign_request_eq(&a, &b));
        free(enc);
    } else {
        FUZZ_CHECK(memchr(err.code, '\0', sizeof(err.code)) != NULL);
        FUZZ_CHECK(memchr(err.message, '\0', sizeof(err.message)) != NULL);
    }
    free(buf);
    return 0;
}
