/*
 * fuzz_wire_query: wire_query_request_decode on untrusted bytes (the body of
 * POST /v1/query on a node), the round trip, and wire_query_request_done.
 */
#include "fuzz_wire.h"

static void check_valid(const struct wire_query_request *q)
{
    FUZZ_CHECK(q->n_segments >= 1 && q->n_segments <= WIRE_QUERY_MAX_SEGMENTS);
    for (size_t i = 0; i < q->n_segments; i++)
        FUZZ_CHECK(wire_check_segment_id("id", q->segment_ids[i], NULL) == 0);
    FUZZ_CHECK(q->aggregate > WIRE_AGG_UNSPECIFIED && q->aggregate < WIRE_AGG_COUNT_);
    FUZZ_CHECK(wire_check_column("column", q->column, NULL) == 0);
    if (q->filter_column[0] != '\0') {
        FUZZ_CHECK(wire_check_column("filter_column", q->filter_column, NULL) == 0);
        FUZZ_CHECK(q->lo <= q->hi);
    }
}

static bool query_eq(const struct wire_query_request *a, const struct wire_query_request *b)
{
    if (a->n_segments != b->n_segments || a->aggregate != b->aggregate ||
        strcmp(a->column, b->column) != 0 || strcmp(a->filter_column, b->filter_column) != 0 ||
        a->lo != b->lo || a->hi != b->hi)
        return false;
    for (size_t i = 0; i < a->n_segments; i++)
        if (strcmp(a->segment_ids[i], b->segment_ids[i]) != 0)
            return false;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct wire_query_request a, b;
    struct wire_error err;
    uint8_t *buf = fuzz_copy(data, size), *enc;
    size_t len;

    if (wire_query_request_decode(buf, size, &a, &err) == 0) {
        check_valid(&a);
        enc = wire_query_request_encode(&a, &len);
        FUZZ_CHECK(wire_query_request_decode(enc, len, &b, &err) == 0);
        FUZZ_CHECK(query_eq(&a, &b));
        free(enc);
        wire_query_request_done(&b);
        wire_query_request_done(&a);
        FUZZ_CHECK(a.segment_ids == NULL && a.n_segments == 0);
    }
    free(buf);
    return 0;
}
