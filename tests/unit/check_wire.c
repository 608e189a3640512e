/*
 * check_wire: every field validation of the wire decoders, plus round trips.
 * Each refused input must come back with the error naming its field.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"
#include "suite.h"

static struct wire_assign_request valid_assign(void)
{
    struct wire_assign_request r;

    memset(&r, 0, sizeof(r));
    strcpy(r.segment_id, "seg-0001.a_b");
    strcpy(r.uri, "file:///srv/segments/seg-0001.seg");
    r.row_count = 1000;
    r.avg_row_size = 64;
    return r;
}

/* Encodes m, decodes it, and returns the decoder's result and message. */
static int assign_roundtrip(const struct wire_assign_request *m, struct wire_assign_request *out,
                            struct wire_error *err)
{
    size_t len;
    uint8_t *buf = wire_assign_request_encode(m, &len);
    int r = wire_assign_request_decode(buf, len, out, err);

    free(buf);
    return r;
}

static void expect_assign_invalid(struct wire_assign_request m, const char *field_prefix)
{
    struct wire_assign_request out;
    struct wire_error err;
    int r = assign_roundtrip(&m, &out, &err);

    ck_assert_int_eq(r, -EINVAL);
    ck_assert_str_eq(err.code, "invalid_field");
    ck_assert_msg(strncmp(err.message, field_prefix, strlen(field_prefix)) == 0,
                  "message \"%s\" does not start with \"%s\"", err.message, field_prefix);
}

START_TEST(test_assign_roundtrip)
{
    struct wire_assign_request m = valid_assign(), out;
    struct wire_error err;

    ck_assert_int_eq(assign_roundtrip(&m, &out, &err), 0);
    ck_assert_str_eq(out.segment_id, "seg-0001.a_b");
    ck_assert_str_eq(out.uri, "file:///srv/segments/seg-0001.seg");
    ck_assert_uint_eq(out.row_count, 1000);
    ck_assert_uint_eq(out.avg_row_size, 64);
}
END_TEST

START_TEST(test_assign_segment_id)
{
    struct wire_assign_request m = valid_assign();

    m.segment_id[0] = '\0';
    expect_assign_invalid(m, "segment_id: empty");
    m = valid_assign();
    strcpy(m.segment_id, ".hidden");
    expect_assign_invalid(m, "segment_id: must not start with '.'");
    m = valid_assign();
    strcpy(m.segment_id, "-flag");
    expect_assign_invalid(m, "segment_id: must not start with '-'");
    m = valid_assign();
    strcpy(m.segment_id, "a/b");
    expect_assign_invalid(m, "segment_id: byte 0x2f at offset 1");
    m = valid_assign();
    strcpy(m.segment_id, "a b");
    expect_assign_invalid(m, "segment_id: byte 0x20");
    m = valid_assign();
    strcpy(m.segment_id, "caf\xc3\xa9");
    expect_assign_invalid(m, "segment_id: byte 0xc3");
}
END_TEST

START_TEST(test_assign_segment_id_length)
{
    struct wire_assign_request m = valid_assign(), out;
    struct wire_error err;
    /* Build by hand: the C struct cannot hold an overlong id. */
    char *long_id = malloc(WIRE_ID_MAX + 2);

    memset(long_id, 'x', WIRE_ID_MAX + 1);
    long_id[WIRE_ID_MAX + 1] = '\0';
    ck_assert_int_eq(wire_check_segment_id("segment_id", long_id, &err), -EINVAL);
    ck_assert_str_eq(err.message, "segment_id: 129 bytes, the limit is 128");
    long_id[WIRE_ID_MAX] = '\0';
    ck_assert_int_eq(wire_check_segment_id("segment_id", long_id, &err), 0);
    memcpy(m.segment_id, long_id, WIRE_ID_MAX + 1);
    ck_assert_int_eq(assign_roundtrip(&m, &out, &err), 0);
    ck_assert_uint_eq(strlen(out.segment_id), WIRE_ID_MAX);
    free(long_id);
}
END_TEST

START_TEST(test_assign_uri)
{
    static const struct {
        const char *uri, *msg;
    } cases[] = {
        {"", "uri: empty"},
        {"http://x/y", "uri: only file:// URIs are supported"},
        {"file://relative/x", "uri: path must be absolute"},
        {"file:///srv/a%00b", "uri: percent-encoding is not supported"},
        {"file:///srv/a\tb", "uri: control byte 0x09"},
        {"file:///srv/dir/", "uri: names a directory"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct wire_assign_request m = valid_assign();
        snprintf(m.uri, sizeof(m.uri), "%s", cases[i].uri);
        expect_assign_invalid(m, cases[i].msg);
    }
}
END_TEST

START_TEST(test_assign_uri_allowed)
{
    struct wire_error err;

    /* Dots inside names are fine; only whole '.' and '..' components are not. */
    ck_assert_int_eq(wire_check_uri("uri", "file:///srv/a..b/.hidden/x.seg", &err), 0);
    ck_assert_int_eq(wire_check_uri("uri", "file:///srv//double//slash", &err), 0);
    /* Syntax allows them; the node refuses them as outside its storage root. */
    ck_assert_int_eq(wire_check_uri("uri", "file:///srv/../etc/passwd", &err), 0);
    ck_assert(wire_uri_has_dot_component("file:///srv/../etc/passwd"));
    ck_assert(wire_uri_has_dot_component("file:///srv/.."));
    ck_assert(wire_uri_has_dot_component("file:///srv/./x"));
    ck_assert(!wire_uri_has_dot_component("file:///srv/a..b/.hidden/x.seg"));
    ck_assert(!wire_uri_has_dot_component("file:///srv/x"));
}
END_TEST

START_TEST(test_assign_counts)
{
    struct wire_assign_request m = valid_assign();

    m.row_count = 0;
    expect_assign_invalid(m, "row_count: 0 is outside 1..1000000000000");
    m = valid_assign();
    m.row_count = WIRE_ROW_COUNT_MAX + 1;
    expect_assign_invalid(m, "row_count: 1000000000001 is outside");
    m = valid_assign();
    m.row_count = UINT64_MAX;
    expect_assign_invalid(m, "row_count: 18446744073709551615");
    m = valid_assign();
    m.avg_row_size = 0;
    expect_assign_invalid(m, "avg_row_size: 0 is outside");
    m = valid_assign();
    m.avg_row_size = WIRE_ROW_SIZE_MAX + 1;
    expect_assign_invalid(m, "avg_row_size: 16777217 is outside");
}
END_TEST

START_TEST(test_garbage_and_size)
{
    struct wire_assign_request out;
    struct wire_error err;
    static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x12};
    static const uint8_t truncated[] = {0x0a, 0x20, 'a', 'b'}; /* field 1, length 32, 2 bytes */
    uint8_t *big;

    ck_assert_int_eq(wire_assign_request_decode(garbage, sizeof(garbage), &out, &err), -EBADMSG);
    ck_assert_str_eq(err.code, "bad_message");
    ck_assert_int_eq(wire_assign_request_decode(truncated, sizeof(truncated), &out, &err),
                     -EBADMSG);
    /* Empty body: a message with every field at its default, so segment_id is empty. */
    ck_assert_int_eq(wire_assign_request_decode("", 0, &out, &err), -EINVAL);
    ck_assert_str_eq(err.message, "segment_id: empty");
    big = calloc(1, WIRE_MAX_BODY + 1);
    ck_assert_int_eq(wire_assign_request_decode(big, WIRE_MAX_BODY + 1, &out, &err), -EMSGSIZE);
    ck_assert_str_eq(err.code, "too_large");
    free(big);
}
END_TEST

static struct wire_query_request valid_query(char (*ids)[WIRE_ID_MAX + 1], size_t n)
{
    struct wire_query_request q;

    memset(&q, 0, sizeof(q));
    q.n_segments = n;
    q.segment_ids = ids;
    q.aggregate = WIRE_AGG_SUM;
    strcpy(q.column, "value");
    strcpy(q.filter_column, "key");
    q.lo = -5;
    q.hi = 100;
    return q;
}

static int query_roundtrip(const struct wire_query_request *m, struct wire_query_request *out,
                           struct wire_error *err)
{
    size_t len;
    uint8_t *buf = wire_query_request_encode(m, &len);
    int r = wire_query_request_decode(buf, len, out, err);

    free(buf);
    return r;
}

static void expect_query_invalid(const struct wire_query_request *m, const char *prefix)
{
    struct wire_query_request out;
    struct wire_error err;

    ck_assert_int_eq(query_roundtrip(m, &out, &err), -EINVAL);
    ck_assert_msg(strncmp(err.message, prefix, strlen(prefix)) == 0,
                  "message \"%s\" does not start with \"%s\"", err.message, prefix);
}

START_TEST(test_query_roundtrip)
{
    char ids[2][WIRE_ID_MAX + 1] = {"a", "b"};
    struct wire_query_request q = valid_query(ids, 2), out;
    struct wire_error err;

    ck_assert_int_eq(query_roundtrip(&q, &out, &err), 0);
    ck_assert_uint_eq(out.n_segments, 2);
    ck_assert_str_eq(out.segment_ids[1], "b");
    ck_assert_int_eq(out.aggregate, WIRE_AGG_SUM);
    ck_assert_str_eq(out.filter_column, "key");
    ck_assert_int_eq(out.lo, -5);
    ck_assert_int_eq(out.hi, 100);
    wire_query_request_done(&out);
    ck_assert_ptr_null(out.segment_ids);
}
END_TEST

START_TEST(test_query_invalid)
{
    char ids[3][WIRE_ID_MAX + 1] = {"a", "b", "a"};
    char bad[1][WIRE_ID_MAX + 1] = {"../x"};
    struct wire_query_request q;

    q = valid_query(ids, 0);
    expect_query_invalid(&q, "segment_ids: empty");
    q = valid_query(ids, 3);
    expect_query_invalid(&q, "segment_ids[2]: duplicate of segment_ids[0]");
    q = valid_query(bad, 1);
    expect_query_invalid(&q, "segment_ids[0]: must not start with '.'");
    q = valid_query(ids, 1);
    q.aggregate = WIRE_AGG_UNSPECIFIED;
    expect_query_invalid(&q, "aggregate: unknown value 0");
    q.aggregate = (enum wire_aggregate)17;
    expect_query_invalid(&q, "aggregate: unknown value 17");
    q = valid_query(ids, 1);
    q.column[0] = '\0';
    expect_query_invalid(&q, "column: empty");
    strcpy(q.column, "val-ue");
    expect_query_invalid(&q, "column: byte 0x2d");
    q = valid_query(ids, 1);
    strcpy(q.filter_column, "k;");
    expect_query_invalid(&q, "filter_column: byte 0x3b");
    q = valid_query(ids, 1);
    q.lo = 10;
    q.hi = 9;
    expect_query_invalid(&q, "lo: 10 is greater than hi 9");
}
END_TEST

START_TEST(test_query_no_filter_ignores_bounds)
{
    char ids[1][WIRE_ID_MAX + 1] = {"a"};
    struct wire_query_request q = valid_query(ids, 1), out;
    struct wire_error err;

    q.filter_column[0] = '\0';
    q.lo = 10;
    q.hi = 9;
    ck_assert_int_eq(query_roundtrip(&q, &out, &err), 0);
    ck_assert_str_eq(out.filter_column, "");
    wire_query_request_done(&out);
}
END_TEST

START_TEST(test_query_too_many)
{
    size_t n = WIRE_QUERY_MAX_SEGMENTS + 1;
    char(*ids)[WIRE_ID_MAX + 1] = calloc(n, sizeof(*ids));
    struct wire_query_request q;

    for (size_t i = 0; i < n; i++)
        snprintf(ids[i], sizeof(ids[i]), "s%zu", i);
    q = valid_query(ids, n);
    expect_query_invalid(&q, "segment_ids: 1025 ids, the limit is 1024");
    free(ids);
}
END_TEST

/* A broker's query names a table and no segments; a node's the reverse. */
START_TEST(test_table_query)
{
    char ids[1][WIRE_ID_MAX + 1] = {"a"};
    struct wire_query_request q = valid_query(ids, 0), out;
    struct wire_error err;
    uint8_t *buf;
    size_t len;

    strcpy(q.table, "web logs");
    q.allow_partial = true;
    q.timeout_ms = 1500;
    buf = wire_query_request_encode(&q, &len);
    ck_assert_int_eq(wire_table_query_decode(buf, len, &out, &err), 0);
    ck_assert_str_eq(out.table, "web logs");
    ck_assert(out.allow_partial);
    ck_assert_uint_eq(out.timeout_ms, 1500);
    ck_assert_uint_eq(out.n_segments, 0);
    ck_assert_int_eq(out.hi, 100);
    /* A node refuses a table query, naming the field. */
    ck_assert_int_eq(wire_query_request_decode(buf, len, &out, &err), -EINVAL);
    ck_assert_msg(strncmp(err.message, "table: ", 7) == 0, "%s", err.message);
    free(buf);
    /* A broker refuses segment ids, and a bad or empty table. */
    q = valid_query(ids, 1);
    strcpy(q.table, "t");
    buf = wire_query_request_encode(&q, &len);
    ck_assert_int_eq(wire_table_query_decode(buf, len, &out, &err), -EINVAL);
    ck_assert_msg(strncmp(err.message, "segment_ids: ", 13) == 0, "%s", err.message);
    free(buf);
    q = valid_query(ids, 0);
    strcpy(q.table, "a/b");
    buf = wire_query_request_encode(&q, &len);
    ck_assert_int_eq(wire_table_query_decode(buf, len, &out, &err), -EINVAL);
    ck_assert_msg(strncmp(err.message, "table: ", 7) == 0, "%s", err.message);
    free(buf);
    q.table[0] = '\0';
    buf = wire_query_request_encode(&q, &len);
    ck_assert_int_eq(wire_table_query_decode(buf, len, &out, &err), -EINVAL);
    ck_assert_msg(strncmp(err.message, "table: ", 7) == 0, "%s", err.message);
    free(buf);
}
END_TEST

START_TEST(test_table_query_response)
{
    struct wire_table_query_response r, out;
    char missing[2][WIRE_ID_MAX + 1] = {"s1", "s9"};
    struct wire_error err;
    uint8_t *buf;
    size_t len;

    memset(&r, 0, sizeof(r));
    r.result.rows_matched = 7;
    r.result.int_value = -3;
    r.segments = 12;
    r.n_missing = 2;
    r.missing = missing;
    r.partial = true;
    r.nodes_asked = 3;
    r.subrequests = 5;
    r.retries = 1;
    r.hedges = 1;
    r.placement_version = 99;
    buf = wire_table_query_response_encode(&r, &len);
    ck_assert_int_eq(wire_table_query_response_decode(buf, len, &out, &err), 0);
    ck_assert_int_eq(out.result.int_value, -3);
    ck_assert_uint_eq(out.segments, 12);
    ck_assert_uint_eq(out.n_missing, 2);
    ck_assert_str_eq(out.missing[1], "s9");
    ck_assert(out.partial);
    ck_assert_uint_eq(out.subrequests, 5);
    ck_assert_uint_eq(out.placement_version, 99);
    wire_table_query_response_done(&out);
    free(buf);
}
END_TEST

START_TEST(test_placement_map)
{
    struct wire_placement_map m, out;
    struct wire_placed_segment segs[2];
    struct wire_placed_node nodes[1];
    char holders[2][WIRE_ID_MAX + 1] = {"n1", "n2"};
    struct wire_error err;
    uint8_t *buf;
    size_t len;

    memset(&m, 0, sizeof(m));
    memset(segs, 0, sizeof(segs));
    memset(nodes, 0, sizeof(nodes));
    strcpy(segs[0].segment_id, "a");
    strcpy(segs[0].table, "t");
    strcpy(segs[0].state, "LOADED");
    segs[0].n_nodes = 2;
    segs[0].node_ids = holders;
    strcpy(segs[1].segment_id, "b");
    strcpy(segs[1].table, "u");
    strcpy(segs[1].state, "PENDING");
    strcpy(nodes[0].node_id, "n1");
    strcpy(nodes[0].addr, "127.0.0.1:9");
    strcpy(nodes[0].state, "UP");
    nodes[0].p99_seconds = 0.25;
    nodes[0].queries_in_flight = 4;
    m.epoch = 0xfeedull << 40;
    m.version = 17;
    m.full = true;
    m.n_segments = 2;
    m.segments = segs;
    m.n_nodes = 1;
    m.nodes = nodes;
    strcpy(m.next_after, "b");
    buf = wire_placement_map_encode(&m, &len);
    ck_assert_int_eq(wire_placement_map_decode(buf, len, &out, &err), 0);
    ck_assert_uint_eq(out.epoch, m.epoch);
    ck_assert_uint_eq(out.version, 17);
    ck_assert(out.full);
    ck_assert_uint_eq(out.n_segments, 2);
    ck_assert_uint_eq(out.segments[0].n_nodes, 2);
    ck_assert_str_eq(out.segments[0].node_ids[1], "n2");
    ck_assert_str_eq(out.segments[1].table, "u");
    ck_assert_uint_eq(out.segments[1].n_nodes, 0);
    ck_assert_str_eq(out.nodes[0].addr, "127.0.0.1:9");
    ck_assert_uint_eq(out.nodes[0].queries_in_flight, 4);
    ck_assert_str_eq(out.next_after, "b");
    wire_placement_map_done(&out);
    free(buf);
    /* A bad holder id is refused with its path. */
    strcpy(holders[1], "../x");
    buf = wire_placement_map_encode(&m, &len);
    ck_assert_int_eq(wire_placement_map_decode(buf, len, &out, &err), -EINVAL);
    ck_assert_msg(strncmp(err.message, "segments[0].node_ids[1]", 23) == 0, "%s", err.message);
    free(buf);
}
END_TEST

START_TEST(test_assign_response)
{
    struct wire_assign_response m, out;
    struct wire_error err;
    size_t len;
    uint8_t *buf;

    memset(&m, 0, sizeof(m));
    m.verdict = WIRE_VERDICT_REJECTED;
    m.reason = WIRE_REASON_MEM_PRESSURE;
    m.retry_after_ms = 12000;
    m.pressure.some_avg10 = 12.5;
    m.pressure.wss_bytes = 1u << 30;
    m.pressure.psi_host_wide = true;
    m.pressure.load_slots = 4;
    strcpy(m.detail, "psi some 12.5%");
    buf = wire_assign_response_encode(&m, &len);
    ck_assert_int_eq(wire_assign_response_decode(buf, len, &out, &err), 0);
    free(buf);
    ck_assert_int_eq(out.reason, WIRE_REASON_MEM_PRESSURE);
    ck_assert_uint_eq(out.retry_after_ms, 12000);
    ck_assert_double_eq(out.pressure.some_avg10, 12.5);
    ck_assert_uint_eq(out.pressure.wss_bytes, 1u << 30);
    ck_assert(out.pressure.psi_host_wide);
    ck_assert_uint_eq(out.pressure.load_slots, 4);
    ck_assert_str_eq(out.detail, "psi some 12.5%");

    m.reason = (enum wire_reason)99;
    buf = wire_assign_response_encode(&m, &len);
    ck_assert_int_eq(wire_assign_response_decode(buf, len, &out, &err), -EINVAL);
    ck_assert_str_eq(err.message, "reason: unknown value 99");
    free(buf);
    m.reason = WIRE_REASON_NONE;
    m.verdict = WIRE_VERDICT_UNSPECIFIED;
    buf = wire_assign_response_encode(&m, &len);
    ck_assert_int_eq(wire_assign_response_decode(buf, len, &out, &err), -EINVAL);
    ck_assert_str_eq(err.message, "verdict: unknown value 0");
    free(buf);
}
END_TEST

START_TEST(test_node_status)
{
    struct wire_segment_status segs[2];
    struct wire_node_status m, out;
    struct wire_error err;
    size_t len;
    uint8_t *buf;

    memset(&m, 0, sizeof(m));
    memset(segs, 0, sizeof(segs));
    strcpy(m.node_id, "node-1");
    m.state = WIRE_NODE_SERVING;
    strcpy(segs[0].segment_id, "s0");
    segs[0].state = WIRE_SEG_LOADED;
    segs[0].file_bytes = 4096;
    segs[0].footprint_bytes = 5000;
    segs[0].mem_request_bytes = 1000;
    segs[0].mem_limit_bytes = 4000;
    segs[0].over_limit = true;
    strcpy(segs[1].segment_id, "s1");
    segs[1].state = WIRE_SEG_FAILED;
    segs[1].reason = WIRE_REASON_SEGMENT_INVALID;
    strcpy(segs[1].detail, "checksum");
    m.segments = segs;
    m.n_segments = 2;
    m.mapped_bytes = 4096;
    strcpy(m.closed_gates, "MEM_CAPACITY DISK_FULL");
    strcpy(m.warnings, "first sentence, with spaces\nsecond one\n");
    buf = wire_node_status_encode(&m, &len);
    ck_assert_int_eq(wire_node_status_decode(buf, len, &out, &err), 0);
    free(buf);
    ck_assert_str_eq(out.node_id, "node-1");
    /* Repeated strings: one item per gate, one per line, joined back the same way. */
    ck_assert_str_eq(out.closed_gates, "MEM_CAPACITY DISK_FULL");
    ck_assert_str_eq(out.warnings, "first sentence, with spaces\nsecond one");
    ck_assert_uint_eq(out.n_segments, 2);
    ck_assert_int_eq(out.segments[1].reason, WIRE_REASON_SEGMENT_INVALID);
    ck_assert_str_eq(out.segments[1].detail, "checksum");
    ck_assert_uint_eq(out.segments[0].file_bytes, 4096);
    ck_assert_uint_eq(out.segments[0].footprint_bytes, 5000);
    ck_assert_uint_eq(out.segments[0].mem_request_bytes, 1000);
    ck_assert_uint_eq(out.segments[0].mem_limit_bytes, 4000);
    ck_assert(out.segments[0].over_limit);
    ck_assert(!out.segments[1].over_limit);
    wire_node_status_done(&out);

    segs[1].state = (enum wire_segment_state)42;
    buf = wire_node_status_encode(&m, &len);
    ck_assert_int_eq(wire_node_status_decode(buf, len, &out, &err), -EINVAL);
    ck_assert_str_eq(err.message, "segments[1].state: unknown value 42");
    free(buf);
    segs[1].state = WIRE_SEG_LOADED;
    strcpy(segs[1].segment_id, "");
    buf = wire_node_status_encode(&m, &len);
    ck_assert_int_eq(wire_node_status_decode(buf, len, &out, &err), -EINVAL);
    ck_assert_str_eq(err.message, "segments[1].segment_id: empty");
    free(buf);
}
END_TEST

START_TEST(test_names)
{
    enum wire_aggregate a;

    ck_assert_int_eq(wire_aggregate_parse("max", &a), 0);
    ck_assert_int_eq(a, WIRE_AGG_MAX);
    ck_assert_int_eq(wire_aggregate_parse("unspecified", &a), -EINVAL);
    ck_assert_str_eq(wire_segment_state_name(WIRE_SEG_LOADED), "LOADED");
}
END_TEST

START_TEST(test_node_report)
{
    struct wire_segment_status segs[1];
    struct wire_node_report m, out;
    struct wire_error err;
    size_t len;
    uint8_t *buf;

    memset(&m, 0, sizeof(m));
    memset(segs, 0, sizeof(segs));
    strcpy(m.node_id, "n1");
    strcpy(m.addr, "127.0.0.1:7101");
    m.state = WIRE_NODE_SERVING;
    m.pressure.wss_bytes = 123;
    strcpy(segs[0].segment_id, "s");
    segs[0].state = WIRE_SEG_DROPPED;
    segs[0].reason = WIRE_REASON_MEM_CRITICAL;
    m.segments = segs;
    m.n_segments = 1;
    m.claim = true;
    buf = wire_node_report_encode(&m, &len);
    ck_assert_int_eq(wire_node_report_decode(buf, len, &out, &err), 0);
    free(buf);
    ck_assert_str_eq(out.addr, "127.0.0.1:7101");
    ck_assert_uint_eq(out.pressure.wss_bytes, 123);
    ck_assert_int_eq(out.segments[0].reason, WIRE_REASON_MEM_CRITICAL);
    ck_assert(out.claim);
    wire_node_report_done(&out);

    strcpy(m.addr, "nocolon");
    buf = wire_node_report_encode(&m, &len);
    ck_assert_int_eq(wire_node_report_decode(buf, len, &out, &err), -EINVAL);
    ck_assert_str_eq(err.message, "addr: must be host:port");
    free(buf);
    strcpy(m.addr, "h:1");
    m.state = WIRE_NODE_UNSPECIFIED;
    buf = wire_node_report_encode(&m, &len);
    ck_assert_int_eq(wire_node_report_decode(buf, len, &out, &err), -EINVAL);
    ck_assert_str_eq(err.message, "state: unknown value 0");
    free(buf);
    m.state = WIRE_NODE_SERVING;
    strcpy(m.node_id, "bad id");
    buf = wire_node_report_encode(&m, &len);
    ck_assert_int_eq(wire_node_report_decode(buf, len, &out, &err), -EINVAL);
    ck_assert_str_eq(err.message, "node_id: byte 0x20 at offset 3 is not one of [A-Za-z0-9._-]");
    free(buf);
}
END_TEST

static int batch_roundtrip(struct wire_segment_spec *specs, size_t n, struct wire_error *err)
{
    struct wire_segment_batch b = {n, specs}, out;
    size_t len;
    uint8_t *buf = wire_segment_batch_encode(&b, &len);
    int r = wire_segment_batch_decode(buf, len, &out, err);

    free(buf);
    if (r == 0)
        wire_segment_batch_done(&out);
    return r;
}

START_TEST(test_segment_batch)
{
    static char uri_ok[] = "file:///s/a.seg", uri_s3[] = "s3://bucket/x";
    struct wire_segment_spec specs[2];
    struct wire_segment_batch b, out;
    struct wire_error err;
    size_t len;
    uint8_t *buf;

    memset(specs, 0, sizeof(specs));
    strcpy(specs[0].segment_id, "a");
    specs[0].uri = uri_ok;
    specs[0].row_count = 10;
    specs[0].avg_row_size = 16;
    specs[1] = specs[0];
    strcpy(specs[1].segment_id, "b");
    specs[1].replication = 3;
    b.n = 2;
    b.specs = specs;
    buf = wire_segment_batch_encode(&b, &len);
    ck_assert_int_eq(wire_segment_batch_decode(buf, len, &out, &err), 0);
    free(buf);
    ck_assert_uint_eq(out.n, 2);
    ck_assert_uint_eq(out.specs[0].replication, 1); /* 0 means 1 */
    ck_assert_uint_eq(out.specs[1].replication, 3);
    ck_assert_str_eq(out.specs[1].uri, "file:///s/a.seg");
    wire_segment_batch_done(&out);

    ck_assert_int_eq(batch_roundtrip(specs, 0, &err), -EINVAL);
    ck_assert_str_eq(err.message, "segments: empty");
    specs[1].replication = 17;
    ck_assert_int_eq(batch_roundtrip(specs, 2, &err), -EINVAL);
    ck_assert_str_eq(err.message, "segments[1].replication: 17 is outside 1..16");
    specs[1].replication = 1;
    specs[1].row_count = 0;
    ck_assert_int_eq(batch_roundtrip(specs, 2, &err), -EINVAL);
    ck_assert_str_eq(err.message, "segments[1].row_count: 0 is outside 1..1000000000000");
    specs[1].row_count = 5;
    specs[1].uri = uri_s3;
    ck_assert_int_eq(batch_roundtrip(specs, 2, &err), -EINVAL);
    ck_assert_str_eq(err.message, "segments[1].uri: only file:// URIs are supported");
}
END_TEST

/* SegmentSpec.table: "" decodes as "default"; every bad name is refused naming the field. */
START_TEST(test_segment_table)
{
    static char uri_ok[] = "file:///s/a.seg";
    static const struct {
        const char *name, *message;
    } bad[] = {
        {"a/b", "segments[0].table: '/' at offset 1 is not allowed"},
        {"tab\there", "segments[0].table: control character at offset 3"},
        {"del\x7f", "segments[0].table: control character at offset 3"},
        {"c1\xc2\x85", "segments[0].table: control character at offset 2"},
        {" lead", "segments[0].table: begins or ends with a space"},
        {"trail ", "segments[0].table: begins or ends with a space"},
    };
    struct wire_segment_spec spec;
    struct wire_segment_batch b = {1, &spec}, out;
    struct wire_error err;
    char long_name[WIRE_TABLE_MAX + 2];
    size_t len;
    uint8_t *buf;

    memset(&spec, 0, sizeof(spec));
    strcpy(spec.segment_id, "a");
    spec.uri = uri_ok;
    spec.row_count = 10;
    spec.avg_row_size = 16;
    buf = wire_segment_batch_encode(&b, &len);
    ck_assert_int_eq(wire_segment_batch_decode(buf, len, &out, &err), 0);
    free(buf);
    ck_assert_str_eq(out.specs[0].table, "default");
    wire_segment_batch_done(&out);
    strcpy(spec.table, "ventes été 2026");
    buf = wire_segment_batch_encode(&b, &len);
    ck_assert_int_eq(wire_segment_batch_decode(buf, len, &out, &err), 0);
    free(buf);
    ck_assert_str_eq(out.specs[0].table, "ventes été 2026");
    wire_segment_batch_done(&out);

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(spec.table, sizeof(spec.table), "%s", bad[i].name);
        ck_assert_int_eq(batch_roundtrip(&spec, 1, &err), -EINVAL);
        ck_assert_str_eq(err.code, "invalid_field");
        ck_assert_str_eq(err.message, bad[i].message);
    }
    /* Too long: refused before it is copied (the struct holds at most the limit). */
    memset(long_name, 't', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    ck_assert_int_eq(wire_check_table("table", long_name, &err), -EINVAL);
    ck_assert_str_eq(err.message, "table: 129 bytes, the limit is 128");
    long_name[WIRE_TABLE_MAX] = '\0';
    ck_assert_int_eq(wire_check_table("table", long_name, &err), 0);
    ck_assert_int_eq(wire_check_table("--table", "", &err), -EINVAL);
    ck_assert_str_eq(err.message, "--table: empty");
    ck_assert_int_eq(wire_check_table("t", "bad\xff", &err), -EINVAL);
    ck_assert_str_eq(err.message, "t: not valid UTF-8 (byte 0xff at offset 3)");
}
END_TEST

/* Declared memory, in a registration, an assignment and a claim: checked alike. */
START_TEST(test_declared_mem)
{
    static char uri_ok[] = "file:///s/a.seg";
    struct wire_segment_spec spec;
    struct wire_assign_request a, aout;
    struct wire_claim_response cr = {1, &a}, crout;
    struct wire_segment_batch b = {1, &spec}, out;
    struct wire_error err;
    size_t len;
    uint8_t *buf;

    memset(&spec, 0, sizeof(spec));
    strcpy(spec.segment_id, "a");
    spec.uri = uri_ok;
    spec.row_count = 10;
    spec.avg_row_size = 16;
    spec.mem_request_bytes = 1 << 20;
    spec.mem_limit_bytes = 2 << 20;
    buf = wire_segment_batch_encode(&b, &len);
    ck_assert_int_eq(wire_segment_batch_decode(buf, len, &out, &err), 0);
    free(buf);
    ck_assert_uint_eq(out.specs[0].mem_request_bytes, 1 << 20);
    ck_assert_uint_eq(out.specs[0].mem_limit_bytes, 2 << 20);
    wire_segment_batch_done(&out);
    spec.mem_limit_bytes = 4096;
    ck_assert_int_eq(batch_roundtrip(&spec, 1, &err), -EINVAL);
    ck_assert_str_eq(err.message,
                     "segments[0].mem_limit_bytes: 4096 is under mem_request_bytes 1048576");
    spec.mem_limit_bytes = 0; /* a request alone */
    ck_assert_int_eq(batch_roundtrip(&spec, 1, &err), 0);
    spec.mem_request_bytes = WIRE_MEM_DECLARED_MAX + 1;
    ck_assert_int_eq(batch_roundtrip(&spec, 1, &err), -EINVAL);
    ck_assert_str_eq(err.message, "segments[0].mem_request_bytes: 17592186044417 is over the "
                                  "limit of 17592186044416");
    spec.mem_request_bytes = 0;
    spec.mem_limit_bytes = WIRE_MEM_DECLARED_MAX; /* a limit alone, at the maximum */
    ck_assert_int_eq(batch_roundtrip(&spec, 1, &err), 0);

    memset(&a, 0, sizeof(a));
    strcpy(a.segment_id, "a");
    strcpy(a.uri, "file:///s/a.seg");
    a.row_count = 10;
    a.avg_row_size = 16;
    a.mem_request_bytes = 300;
    a.mem_limit_bytes = 600;
    buf = wire_assign_request_encode(&a, &len);
    ck_assert_int_eq(wire_assign_request_decode(buf, len, &aout, &err), 0);
    free(buf);
    ck_assert_uint_eq(aout.mem_request_bytes, 300);
    ck_assert_uint_eq(aout.mem_limit_bytes, 600);
    buf = wire_claim_response_encode(&cr, &len);
    ck_assert_int_eq(wire_claim_response_decode(buf, len, &crout, &err), 0);
    free(buf);
    ck_assert_uint_eq(crout.assignments[0].mem_limit_bytes, 600);
    wire_claim_response_done(&crout);
    a.mem_limit_bytes = 200;
    buf = wire_assign_request_encode(&a, &len);
    ck_assert_int_eq(wire_assign_request_decode(buf, len, &aout, &err), -EINVAL);
    ck_assert_str_eq(err.message, "mem_limit_bytes: 200 is under mem_request_bytes 300");
    free(buf);
    buf = wire_claim_response_encode(&cr, &len);
    ck_assert_int_eq(wire_claim_response_decode(buf, len, &crout, &err), -EINVAL);
    ck_assert_str_eq(err.message,
                     "assignments[0].mem_limit_bytes: 200 is under mem_request_bytes 300");
    free(buf);
}
END_TEST

START_TEST(test_claim)
{
    struct wire_claim_request c = {"n1", 0}, out;
    struct wire_error err;
    size_t len;
    uint8_t *buf = wire_claim_request_encode(&c, &len);

    ck_assert_int_eq(wire_claim_request_decode(buf, len, &out, &err), -EINVAL);
    ck_assert_str_eq(err.message, "max_segments: 0 is outside 1..1000");
    free(buf);
    c.max_segments = 8;
    buf = wire_claim_request_encode(&c, &len);
    ck_assert_int_eq(wire_claim_request_decode(buf, len, &out, &err), 0);
    ck_assert_uint_eq(out.max_segments, 8);
    free(buf);
}
END_TEST

/* Refusals by reason and storm counts survive the wire; 0 entries are not sent. */
START_TEST(test_status_and_event_counts)
{
    struct wire_cluster_status st, got;
    struct wire_event ev;
    struct wire_event_list l = {1, &ev, 0}, lg;
    struct wire_error err;
    size_t len;
    uint8_t *buf;

    memset(&st, 0, sizeof(st));
    st.assignments_accepted = 24;
    st.refusals[WIRE_REASON_LOAD_CONCURRENCY] = 3;
    st.refusals[WIRE_REASON_MEM_EXHAUSTION] = 1;
    buf = wire_cluster_status_encode(&st, &len);
    ck_assert_int_eq(wire_cluster_status_decode(buf, len, &got, &err), 0);
    free(buf);
    ck_assert_uint_eq(got.assignments_accepted, 24);
    ck_assert_uint_eq(got.refusals[WIRE_REASON_LOAD_CONCURRENCY], 3);
    ck_assert_uint_eq(got.refusals[WIRE_REASON_MEM_EXHAUSTION], 1);
    ck_assert_uint_eq(got.refusals[WIRE_REASON_MEM_CAPACITY], 0);
    memset(&ev, 0, sizeof(ev));
    snprintf(ev.kind, sizeof(ev.kind), "refused");
    ev.count = 113;
    ev.last_ts_ms = 99;
    buf = wire_event_list_encode(&l, &len);
    ck_assert_int_eq(wire_event_list_decode(buf, len, &lg, &err), 0);
    free(buf);
    ck_assert_uint_eq(lg.events[0].count, 113);
    ck_assert_uint_eq(lg.events[0].last_ts_ms, 99);
    wire_event_list_done(&lg);
    /* An event from an older coordinator has no count: it is one event. */
    ev.count = 0;
    buf = wire_event_list_encode(&l, &len);
    ck_assert_int_eq(wire_event_list_decode(buf, len, &lg, &err), 0);
    free(buf);
    ck_assert_uint_eq(lg.events[0].count, 1);
    wire_event_list_done(&lg);
}
END_TEST

START_TEST(test_list_caps)
{
    /* Empty entries cost two bytes on the wire and hundreds in memory: capped first. */
    size_t n = WIRE_EVENT_LIST_MAX + 1, len = 2 * n;
    uint8_t *buf = malloc(len);
    struct wire_event_list evs;
    struct wire_segment_list segs;
    struct wire_error err;
    static const uint8_t no_spec[] = {0x0a, 0x00};

    for (size_t i = 0; i < n; i++) {
        buf[2 * i] = 0x0a;
        buf[2 * i + 1] = 0x00;
    }
    ck_assert_int_eq(wire_event_list_decode(buf, len, &evs, &err), -EINVAL);
    ck_assert_str_eq(err.message, "events: 100001 entries, the limit is 100000");
    free(buf);
    /* A segment without a spec still decodes to replication 1, as wire.h promises. */
    ck_assert_int_eq(wire_segment_list_decode(no_spec, sizeof(no_spec), &segs, &err), 0);
    ck_assert_uint_eq(segs.n, 1);
    ck_assert_uint_eq(segs.segments[0].spec.replication, 1);
    wire_segment_list_done(&segs);
}
END_TEST

/* A valid NodeReport with wss_bytes 123, encoded; extra is appended as raw fields. */
static uint8_t *report_plus(const uint8_t *extra, size_t extra_len, size_t *ret_len)
{
    struct wire_node_report m;
    size_t len;
    uint8_t *buf, *out;

    memset(&m, 0, sizeof(m));
    strcpy(m.node_id, "n1");
    strcpy(m.addr, "127.0.0.1:7101");
    m.state = WIRE_NODE_SERVING;
    m.pressure.wss_bytes = 123;
    m.pressure.usage_bytes = 456;
    buf = wire_node_report_encode(&m, &len);
    out = malloc(len + extra_len);
    memcpy(out, buf, len);
    memcpy(out + len, extra, extra_len);
    free(buf);
    *ret_len = len + extra_len;
    return out;
}

START_TEST(test_walk_utf8_nested)
{
    /* segments: {segment_id "s", state LOADED, detail 0xff 0xfe}, twice. */
    static const uint8_t seg[] = {0x2a, 0x09, 0x0a, 0x01, 's',  0x10, 0x02,
                                  0x22, 0x02, 0xff, 0xfe};
    uint8_t two[2 * sizeof(seg)];
    struct wire_node_report out;
    struct wire_error err;
    size_t len;
    uint8_t *buf;

    memcpy(two, seg, sizeof(seg));
    memcpy(two + sizeof(seg), seg, sizeof(seg));
    two[sizeof(seg) + 9] = 'x'; /* the first one valid, the second not */
    two[sizeof(seg) + 10] = 'y';
    buf = report_plus(two, sizeof(two), &len);
    /* the valid one second: the error names index 0 */
    ck_assert_int_eq(wire_node_report_decode(buf, len, &out, &err), -EINVAL);
    ck_assert_str_eq(err.code, "invalid_field");
    ck_assert_str_eq(err.message, "segments[0].detail: not valid UTF-8 (byte 0xff at offset 0)");
    free(buf);

    /* a top-level string: addr (field 2) sent again with an overlong '/' */
    {
        static const uint8_t addr[] = {0x12, 0x06, 'h', 0xc0, 0xaf, ':', '1', '2'};
        buf = report_plus(addr, sizeof(addr), &len);
        ck_assert_int_eq(wire_node_report_decode(buf, len, &out, &err), -EINVAL);
        ck_assert_str_eq(err.message, "addr: not valid UTF-8 (byte 0xc0 at offset 1)");
        free(buf);
    }
    /* a NUL inside a string is still refused, now with its path */
    {
        static const uint8_t nul[] = {0x0a, 0x03, 'n', 0x00, '1'};
        buf = report_plus(nul, sizeof(nul), &len);
        ck_assert_int_eq(wire_node_report_decode(buf, len, &out, &err), -EINVAL);
        ck_assert_str_eq(err.message, "node_id: contains a NUL byte at offset 1");
        free(buf);
    }
}
END_TEST

START_TEST(test_walk_split_message)
{
    /* pressure (field 4) again, with only limit_bytes (field 6) = 7 */
    static const uint8_t part[] = {0x22, 0x02, 0x30, 0x07};
    struct wire_node_report out;
    struct wire_error err;
    size_t len;
    uint8_t *buf = report_plus(part, sizeof(part), &len);

    ck_assert_int_eq(wire_node_report_decode(buf, len, &out, &err), 0);
    ck_assert_uint_eq(out.pressure.limit_bytes, 7);
    ck_assert_uint_eq(out.pressure.usage_bytes, 456); /* from the first part */
    ck_assert_uint_eq(out.pressure.wss_bytes, 123);
    wire_node_report_done(&out);
    free(buf);
}
END_TEST

START_TEST(test_walk_groups)
{
    /* field 99 as a group holding a varint and a nested group 5, at the top level */
    static const uint8_t grp[] = {0x9b, 0x06, 0x08, 0x01, 0x2b, 0x10, 0x05, 0x2c, 0x9c, 0x06};
    /* and inside pressure: {field 20 group, empty} */
    static const uint8_t sub[] = {0x22, 0x04, 0xa3, 0x01, 0xa4, 0x01};
    static const uint8_t open[] = {0x9b, 0x06, 0x08, 0x01};
    static const uint8_t wrong_end[] = {0x9b, 0x06, 0xa4, 0x01};
    struct wire_node_report out;
    struct wire_error err;
    size_t len;
    uint8_t *buf;

    buf = report_plus(grp, sizeof(grp), &len);
    ck_assert_int_eq(wire_node_report_decode(buf, len, &out, &err), 0);
    ck_assert_str_eq(out.node_id, "n1");
    wire_node_report_done(&out);
    free(buf);
    buf = report_plus(sub, sizeof(sub), &len);
    ck_assert_int_eq(wire_node_report_decode(buf, len, &out, &err), 0);
    ck_assert_uint_eq(out.pressure.wss_bytes, 123);
    wire_node_report_done(&out);
    free(buf);
    buf = report_plus(open, sizeof(open), &len);
    ck_assert_int_eq(wire_node_report_decode(buf, len, &out, &err), -EBADMSG);
    ck_assert_str_eq(err.code, "bad_message");
    free(buf);
    buf = report_plus(wrong_end, sizeof(wrong_end), &len);
    ck_assert_int_eq(wire_node_report_decode(buf, len, &out, &err), -EBADMSG);
    free(buf);
}
END_TEST

START_TEST(test_walk_answer_escaped)
{
    struct wire_assign_response m, out;
    struct wire_error err;
    size_t len;
    uint8_t *buf;

    memset(&m, 0, sizeof(m));
    m.verdict = WIRE_VERDICT_REJECTED;
    m.reason = WIRE_REASON_SEGMENT_INVALID;
    m.status = 422;
    snprintf(m.detail, sizeof(m.detail), "uri file:///a\xff\xfe\xc3\xa9: no such file");
    buf = wire_assign_response_encode(&m, &len);
    ck_assert_int_eq(wire_assign_response_decode(buf, len, &out, &err), 0);
    ck_assert_str_eq(out.detail, "uri file:///a\\xFF\\xFE\xc3\xa9: no such file");
    free(buf);
}
END_TEST

START_TEST(test_utf8)
{
    char esc[16];
    size_t bad = 99;

    ck_assert(wire_utf8_valid("a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 10, NULL));
    ck_assert(!wire_utf8_valid("\xc0\x80", 2, &bad)); /* overlong NUL */
    ck_assert_uint_eq(bad, 0);
    ck_assert(!wire_utf8_valid("ab\xed\xa0\x80", 5, &bad)); /* surrogate */
    ck_assert_uint_eq(bad, 2);
    ck_assert(!wire_utf8_valid("\xf4\x90\x80\x80", 4, NULL)); /* past U+10FFFF */
    ck_assert(!wire_utf8_valid("\xe2\x82", 2, NULL));          /* truncated */
    ck_assert(!wire_utf8_valid("a\0b", 3, &bad));
    ck_assert_uint_eq(bad, 1);
    ck_assert_uint_eq(wire_utf8_escape(esc, sizeof(esc), "a\xff\xc3\xa9", 4), 7);
    ck_assert_str_eq(esc, "a\\xFF\xc3\xa9");
    /* truncation never splits an escape */
    ck_assert_uint_eq(wire_utf8_escape(esc, 4, "a\xff", 2), 1);
    ck_assert_str_eq(esc, "a");
}
END_TEST

static Suite *wire_suite(void)
{
    Suite *s = suite_create("wire");
    TCase *tc;

    tc = tcase_create("assign");
    tcase_add_test(tc, test_assign_roundtrip);
    tcase_add_test(tc, test_assign_segment_id);
    tcase_add_test(tc, test_assign_segment_id_length);
    tcase_add_test(tc, test_assign_uri);
    tcase_add_test(tc, test_assign_uri_allowed);
    tcase_add_test(tc, test_assign_counts);
    suite_add_tcase(s, tc);
    tc = tcase_create("bytes");
    tcase_add_test(tc, test_garbage_and_size);
    suite_add_tcase(s, tc);
    tc = tcase_create("query");
    tcase_add_test(tc, test_query_roundtrip);
    tcase_add_test(tc, test_query_invalid);
    tcase_add_test(tc, test_query_no_filter_ignores_bounds);
    tcase_add_test(tc, test_query_too_many);
    tcase_add_test(tc, test_table_query);
    tcase_add_test(tc, test_table_query_response);
    tcase_add_test(tc, test_placement_map);
    suite_add_tcase(s, tc);
    tc = tcase_create("responses");
    tcase_add_test(tc, test_assign_response);
    tcase_add_test(tc, test_node_status);
    tcase_add_test(tc, test_names);
    suite_add_tcase(s, tc);
    tc = tcase_create("coordinator");
    tcase_add_test(tc, test_node_report);
    tcase_add_test(tc, test_segment_batch);
    tcase_add_test(tc, test_segment_table);
    tcase_add_test(tc, test_declared_mem);
    tcase_add_test(tc, test_claim);
    tcase_add_test(tc, test_list_caps);
    tcase_add_test(tc, test_status_and_event_counts);
    suite_add_tcase(s, tc);
    tc = tcase_create("walk");
    tcase_add_test(tc, test_walk_utf8_nested);
    tcase_add_test(tc, test_walk_split_message);
    tcase_add_test(tc, test_walk_groups);
    tcase_add_test(tc, test_walk_answer_escaped);
    tcase_add_test(tc, test_utf8);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return harness_run_suite(wire_suite());
}
