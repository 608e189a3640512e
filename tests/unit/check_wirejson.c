/*
 * check_wirejson: the one JSON encoder of both daemons and the CLI. Each
 * test encodes a message with common/wire's encoders (or hand-made
 * protobuf bytes, for what those never write) and compares the JSON text
 * exactly: escaping, 64-bit integers, fixed64 digests, doubles and their
 * non-finite values, enum names and unknown numbers, repeated and nested
 * messages, defaults for what the encoding leaves out; and the Accept
 * negotiation.
 */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"
#include "wirejson.h"
#include "suite.h"

/* Encodes buf (*len bytes, freed) as type m, compact; the JSON, to be freed. */
static char *json_of(enum wire_msg m, uint8_t *buf, const size_t *len)
{
    char *out = NULL;
    size_t n = 0;

    ck_assert_int_eq(wirejson_encode(m, buf, *len, 0, &out, &n), 0);
    ck_assert_uint_eq(n, strlen(out));
    free(buf);
    return out;
}

/* The same for hand-made protobuf bytes (what common/wire's encoders never write). */
static char *json_of_raw(enum wire_msg m, const uint8_t *raw, size_t len)
{
    uint8_t *buf = malloc(len);

    memcpy(buf, raw, len);
    return json_of(m, buf, &len);
}

START_TEST(test_escaping)
{
    struct wire_error e;
    size_t len;
    char *j;

    snprintf(e.code, sizeof(e.code), "invalid_field");
    snprintf(e.message, sizeof(e.message), "a\"b\\c\n\x01/\xc3\xa9");
    j = json_of(WIRE_MSG_ERROR, wire_error_encode(&e, &len), &len);
    ck_assert_str_eq(j, "{\"code\":\"invalid_field\",\"message\":\"a\\\"b\\\\c\\n\\u0001/\xc3\xa9\"}");
    free(j);
}
END_TEST

START_TEST(test_invalid_utf8_escaped)
{
    /* Error{message: "x\xff"}: field 2, length 2. */
    static const uint8_t raw[] = {0x12, 0x02, 'x', 0xff};
    char *j = json_of_raw(WIRE_MSG_ERROR, raw, sizeof(raw));

    ck_assert_str_eq(j, "{\"code\":\"\",\"message\":\"x\\\\xFF\"}");
    free(j);
}
END_TEST

START_TEST(test_integers_and_doubles)
{
    struct wire_query_response q = {0};
    size_t len;
    char *j;

    q.rows_matched = UINT64_MAX;           /* past jansson's int64: a string */
    q.int_value = INT64_MIN;
    q.rows_scanned = (1ull << 53) + 1;     /* exact, not through a double */
    q.bytes_scanned = (uint64_t)INT64_MAX; /* the largest integer written as one */
    q.is_float = true;
    q.float_value = 0.0042;
    j = json_of(WIRE_MSG_QUERY_RESPONSE, wire_query_response_encode(&q, &len), &len);
    ck_assert_str_eq(j, "{\"rows_matched\":\"18446744073709551615\",\"is_float\":true,"
                        "\"int_value\":-9223372036854775808,\"float_value\":0.0042,"
                        "\"rows_scanned\":9007199254740993,"
                        "\"bytes_scanned\":9223372036854775807,\"blocks_skipped\":0,"
                        "\"service_us\":0,\"segments\":0,\"missing_segment_ids\":[],"
                        "\"partial\":false,\"nodes_asked\":0,\"subrequests\":0,"
                        "\"retries\":0,\"hedges\":0,\"placement_version\":0}");
    free(j);
    q.float_value = NAN;
    j = json_of(WIRE_MSG_QUERY_RESPONSE, wire_query_response_encode(&q, &len), &len);
    ck_assert_ptr_nonnull(strstr(j, "\"float_value\":\"NaN\""));
    free(j);
    q.float_value = -INFINITY;
    j = json_of(WIRE_MSG_QUERY_RESPONSE, wire_query_response_encode(&q, &len), &len);
    ck_assert_ptr_nonnull(strstr(j, "\"float_value\":\"-Infinity\""));
    free(j);
}
END_TEST

START_TEST(test_enums)
{
    struct wire_event ev[2];
    struct wire_event_list l = {2, ev, 7};
    /* EventList{events: [Event{reason: 99}]}: a number the proto does not name. */
    static const uint8_t raw[] = {0x0a, 0x02, 0x30, 99};
    size_t len;
    char *j;

    memset(ev, 0, sizeof(ev));
    ev[0].id = 1;
    ev[0].reason = WIRE_REASON_MEM_CAPACITY;
    ev[1].id = 2;
    ev[1].reason = WIRE_REASON_NONE;
    j = json_of(WIRE_MSG_EVENT_LIST, wire_event_list_encode(&l, &len), &len);
    ck_assert_ptr_nonnull(strstr(j, "{\"id\":1,\"ts_ms\":0,\"segment_id\":\"\",\"node_id\":\"\","
                                    "\"kind\":\"\",\"reason\":\"MEM_CAPACITY\""));
    ck_assert_ptr_nonnull(strstr(j, "\"id\":2,\"ts_ms\":0,\"segment_id\":\"\",\"node_id\":\"\","
                                    "\"kind\":\"\",\"reason\":\"REASON_NONE\""));
    ck_assert_str_eq(j + strlen(j) - strlen("],\"next_before\":7}"), "],\"next_before\":7}");
    free(j);
    j = json_of_raw(WIRE_MSG_EVENT_LIST, raw, sizeof(raw));
    ck_assert_ptr_nonnull(strstr(j, "\"reason\":99,"));
    free(j);
}
END_TEST

START_TEST(test_repeated_and_nested)
{
    struct wire_placement pl[2] = {{"node-a", WIRE_SEG_LOADED}, {"node-b", WIRE_SEG_LOADING}};
    static char uri[] = "file:///s/x.seg";
    struct wire_segment_info si[2];
    struct wire_segment_list l = {2, si, 9};
    size_t len;
    char *j;

    memset(si, 0, sizeof(si));
    snprintf(si[0].spec.segment_id, sizeof(si[0].spec.segment_id), "x");
    si[0].spec.uri = uri;
    si[0].spec.row_count = 1000;
    si[0].spec.avg_row_size = 64;
    si[0].spec.replication = 2;
    si[0].spec.digest = 0x0123456789abcdefull;
    snprintf(si[0].spec.table, sizeof(si[0].spec.table), "sales");
    snprintf(si[0].state, sizeof(si[0].state), "PENDING");
    si[0].placements = pl;
    si[0].n_placements = 2;
    snprintf(si[1].spec.segment_id, sizeof(si[1].spec.segment_id), "y");
    si[1].spec.uri = uri;
    si[1].spec.replication = 1;
    j = json_of(WIRE_MSG_SEGMENT_LIST, wire_segment_list_encode(&l, &len), &len);
    ck_assert_str_eq(j, "{\"segments\":["
                        "{\"spec\":{\"segment_id\":\"x\",\"uri\":\"file:///s/x.seg\","
                        "\"row_count\":1000,\"avg_row_size\":64,\"replication\":2,"
                        "\"digest\":\"0123456789abcdef\",\"table\":\"sales\","
                        "\"mem_request_bytes\":0,\"mem_limit_bytes\":0},"
                        "\"state\":\"PENDING\","
                        "\"placements\":[{\"node_id\":\"node-a\",\"state\":\"LOADED\"},"
                        "{\"node_id\":\"node-b\",\"state\":\"LOADING\"}],"
                        "\"backoff_until_ms\":0,\"last_reason\":\"\",\"explain\":\"\","
                        "\"footprint_bytes\":0,\"over_limit\":false},"
                        "{\"spec\":{\"segment_id\":\"y\",\"uri\":\"file:///s/x.seg\","
                        "\"row_count\":0,\"avg_row_size\":0,\"replication\":1,"
                        "\"digest\":\"0000000000000000\",\"table\":\"\","
                        "\"mem_request_bytes\":0,\"mem_limit_bytes\":0},\"state\":\"\","
                        "\"placements\":[],"
                        "\"backoff_until_ms\":0,\"last_reason\":\"\",\"explain\":\"\","
                        "\"footprint_bytes\":0,\"over_limit\":false}],"
                        "\"total\":9,\"next_after\":\"\"}");
    free(j);
}
END_TEST

START_TEST(test_absent_message_has_defaults)
{
    /* NodeList{nodes: [NodeInfo{node_id: "n"}]}: no pressure at all. */
    static const uint8_t raw[] = {0x0a, 0x03, 0x0a, 0x01, 'n'};
    char *j = json_of_raw(WIRE_MSG_NODE_LIST, raw, sizeof(raw));

    ck_assert_ptr_nonnull(strstr(j, "{\"nodes\":[{\"node_id\":\"n\",\"addr\":\"\",\"state\":\"\","
                                    "\"pressure\":{\"some_avg10\":0.0,"));
    ck_assert_ptr_nonnull(strstr(j, "\"io_mode\":\"IO_MODE_UNSPECIFIED\""));
    ck_assert_ptr_nonnull(strstr(j, "\"tte_known\":false,\"tte_ms\":0,"));
    ck_assert_ptr_nonnull(strstr(j, "},\"segments\":0,\"last_reason\":\"\",\"last_seen_ms\":0,"
                                    "\"refusals\":0}]}"));
    free(j);
}
END_TEST

START_TEST(test_pretty_and_errors)
{
    struct wire_cluster_status st = {0};
    static const uint8_t bad[] = {0xff, 0xff, 0xff};
    char *out = NULL;
    size_t len, n;
    uint8_t *buf;

    st.nodes_up = 3;
    buf = wire_cluster_status_encode(&st, &len);
    ck_assert_int_eq(wirejson_encode(WIRE_MSG_CLUSTER_STATUS, buf, len, WIREJSON_PRETTY, &out, &n), 0);
    ck_assert_ptr_nonnull(strstr(out, "{\n  \"segments_total\": 0,\n"));
    ck_assert_ptr_nonnull(strstr(out, "\n  \"nodes_up\": 3,\n"));
    free(out);
    free(buf);
    out = NULL;
    ck_assert_int_eq(wirejson_encode(WIRE_MSG_CLUSTER_STATUS, bad, sizeof(bad), 0, &out, &n), -EBADMSG);
    ck_assert_ptr_null(out);
    ck_assert_int_eq(wirejson_encode(WIRE_MSG_COUNT_, "", 0, 0, &out, &n), -EINVAL);
    ck_assert_str_eq(wire_msg_name(WIRE_MSG_NODE_LIST), "NodeList");
}
END_TEST

START_TEST(test_accept)
{
    ck_assert(wirejson_accepted("application/json"));
    ck_assert(wirejson_accepted("text/html, Application/JSON;q=0.9"));
    ck_assert(wirejson_accepted("application/x-protobuf;q=0.5, application/json"));
    ck_assert(wirejson_accepted("application/json, application/x-protobuf"));
    ck_assert(!wirejson_accepted(NULL));
    ck_assert(!wirejson_accepted("*/*"));
    ck_assert(!wirejson_accepted("application/json;q=0"));
    ck_assert(!wirejson_accepted("application/jsonx"));
    ck_assert(!wirejson_accepted("application/json; q=0.2, application/x-protobuf"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("wirejson");
    TCase *tc = tcase_create("encode");
    TCase *ta = tcase_create("accept");

    tcase_add_test(tc, test_escaping);
    tcase_add_test(tc, test_invalid_utf8_escaped);
    tcase_add_test(tc, test_integers_and_doubles);
    tcase_add_test(tc, test_enums);
    tcase_add_test(tc, test_repeated_and_nested);
    tcase_add_test(tc, test_absent_message_has_defaults);
    tcase_add_test(tc, test_pretty_and_errors);
    suite_add_tcase(s, tc);
    tcase_add_test(ta, test_accept);
    suite_add_tcase(s, ta);
    return harness_run_suite(s);
}
