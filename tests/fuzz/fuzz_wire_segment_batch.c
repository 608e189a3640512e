/*
 * fuzz_wire_segment_batch: wire_segment_batch_decode on untrusted bytes (the
 * body of POST /v1/segments on the coordinator, from `sluice-coord import`),
 * the round trip, and wire_segment_batch_done.
 */
#include "fuzz_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct wire_segment_batch a, b;
    struct wire_error err;
    uint8_t *buf = fuzz_copy(data, size), *enc;
    size_t len;

    if (wire_segment_batch_decode(buf, size, &a, &err) == 0) {
        FUZZ_CHECK(a.n >= 1 && a.n <= WIRE_BATCH_MAX);
        for (size_t i = 0; i < a.n; i++) {
            FUZZ_CHECK(wire_check_segment_spec("spec", &a.specs[i], NULL) == 0);
            FUZZ_CHECK(a.specs[i].replication >= 1 &&
                       a.specs[i].replication <= WIRE_REPLICATION_MAX);
        }
        enc = wire_segment_batch_encode(&a, &len);
        FUZZ_CHECK(wire_segment_batch_decode(enc, len, &b, &err) == 0);
        FUZZ_CHECK(a.n == b.n);
        for (size_t i = 0; i < a.n; i++)
            FUZZ_CHECK(fuzz_segment_spec_eq(&a.specs[i], &b.specs[i]));
        free(enc);
        wire_segment_batch_done(&b);
        wire_segment_batch_done(&a);
    }
    free(buf);
    return 0;
}
