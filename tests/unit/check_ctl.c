/*
 * check_ctl: the admin CLI's output formats. Tables must show what an
 * operator needs (state, pressure, last refusal reason); --json must be one
 * line, the document the endpoint answers with Accept: application/json
 * (the encoder itself is tested in check_wirejson).
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "suite.h"

/* Renders into a string with open_memstream. */
#define RENDER(buf, call)                                                                      \
    do {                                                                                       \
        size_t len_;                                                                           \
        FILE *f_ = open_memstream(&(buf), &len_);                                              \
        call;                                                                                  \
        fclose(f_);                                                                            \
    } while (0)

static struct wire_node_info node(const char *id, const char *state, const char *reason)
{
    struct wire_node_info n;

    memset(&n, 0, sizeof(n));
    snprintf(n.node_id, sizeof(n.node_id), "%s", id);
    snprintf(n.addr, sizeof(n.addr), "127.0.0.1:7101");
    snprintf(n.state, sizeof(n.state), "%s", state);
    snprintf(n.last_reason, sizeof(n.last_reason), "%s", reason);
    n.segments = 12;
    n.refusals = 3;
    n.pressure.usage_bytes = 512ull << 20;
    n.pressure.limit_bytes = 1ull << 30;
    n.pressure.wss_bytes = 300ull << 20;
    n.pressure.some_avg10 = 12.5;
    n.pressure.p99_seconds = 0.0042;
    n.pressure.tte_known = true;
    n.pressure.tte_ms = 23456;
    return n;
}

START_TEST(test_nodes_table)
{
    struct wire_node_info ns[2] = {node("node-a", "UP", "MEM_CAPACITY"), node("node-b", "DOWN", "")};
    struct wire_node_list l = {2, ns};
    char *out = NULL;

    RENDER(out, ctl_print_nodes(f_, &l, false));
    ck_assert_ptr_nonnull(strstr(out, "NODE"));
    ck_assert_ptr_nonnull(strstr(out, "LAST_REASON"));
    ck_assert_ptr_nonnull(strstr(out, "node-a"));
    ck_assert_ptr_nonnull(strstr(out, "MEM_CAPACITY"));
    ck_assert_ptr_nonnull(strstr(out, "512.0M"));
    ck_assert_ptr_nonnull(strstr(out, "1.0G"));
    ck_assert_ptr_nonnull(strstr(out, "12.5%"));
    ck_assert_ptr_nonnull(strstr(out, "4.2")); /* p99 in ms */
    ck_assert_ptr_nonnull(strstr(out, "TTE"));
    ck_assert_ptr_nonnull(strstr(out, "23.5s")); /* time to exhaustion */
    /* node-b has no last reason: a dash, not an empty column. */
    ck_assert_ptr_nonnull(strstr(strstr(out, "node-b"), " -\n"));
    free(out);
}
END_TEST

START_TEST(test_nodes_json)
{
    struct wire_node_info ns[1] = {node("node-\"q\"", "UP", "LATENCY_SLO")};
    struct wire_node_list l = {1, ns};
    char *out = NULL;

    RENDER(out, ctl_print_nodes(f_, &l, true));
    ck_assert_ptr_nonnull(strstr(out, "{\"nodes\":[{\"node_id\":\"node-\\\"q\\\"\""));
    ck_assert_ptr_nonnull(strstr(out, "\"last_reason\":\"LATENCY_SLO\""));
    ck_assert_ptr_nonnull(strstr(out, "\"limit_bytes\":1073741824"));
    ck_assert_ptr_nonnull(strstr(out, "\"segments\":12"));
    ck_assert_str_eq(out + strlen(out) - 3, "]}\n");
    ck_assert_ptr_eq(strchr(out, '\n'), out + strlen(out) - 1); /* one line */
    free(out);
}
END_TEST

START_TEST(test_segments)
{
    struct wire_placement pl[2] = {{"node-a", WIRE_SEG_LOADED}, {"node-b", WIRE_SEG_LOADING}};
    static char uri[] = "file:///s/x.seg";
    struct wire_segment_info si;
    struct wire_segment_list l = {1, &si, 5};
    char *out = NULL;

    memset(&si, 0, sizeof(si));
    snprintf(si.spec.segment_id, sizeof(si.spec.segment_id), "x");
    si.spec.uri = uri;
    si.spec.row_count = 1000;
    si.spec.avg_row_size = 4096;
    si.spec.replication = 2;
    snprintf(si.state, sizeof(si.state), "PENDING");
    si.placements = pl;
    si.n_placements = 2;
    snprintf(si.last_reason, sizeof(si.last_reason), "MEM_PRESSURE");
    RENDER(out, ctl_print_segments(f_, &l, false));
    ck_assert_ptr_nonnull(strstr(out, "node-a(LOADED),node-b(LOADING)"));
    ck_assert_ptr_nonnull(strstr(out, "3.9M")); /* 1000 x 4096 */
    ck_assert_ptr_nonnull(strstr(out, "(1 of 5 shown; use --limit)"));
    free(out);
    RENDER(out, ctl_print_segments(f_, &l, true));
    ck_assert_ptr_nonnull(strstr(out, "{\"segments\":[{\"spec\":{\"segment_id\":\"x\""));
    ck_assert_ptr_nonnull(strstr(out, "\"placements\":[{\"node_id\":\"node-a\",\"state\":\"LOADED\"}"));
    ck_assert_ptr_nonnull(strstr(out, "],\"total\":5,\"next_after\":\"\"}\n"));
    ck_assert_ptr_nonnull(strstr(out, "\"replication\":2"));
    free(out);
    si.explain = (char *)(uintptr_t) "node-a: refused MEM_CAPACITY until 12:00";
    RENDER(out, ctl_print_explain(f_, &si, false));
    ck_assert_ptr_nonnull(strstr(out, "segment x: PENDING, 1000 rows x 4096 B, replication 2"));
    ck_assert_ptr_nonnull(strstr(out, "on node-b: LOADING"));
    ck_assert_ptr_nonnull(strstr(out, "refused MEM_CAPACITY"));
    free(out);
    RENDER(out, ctl_print_explain(f_, &si, true));
    /* What GET /v1/segments/x answers: a SegmentList of one, with the explanation. */
    ck_assert_ptr_nonnull(strstr(out, "{\"segments\":[{\"spec\":{\"segment_id\":\"x\""));
    ck_assert_ptr_nonnull(strstr(out, "\"explain\":\"node-a: refused MEM_CAPACITY until 12:00\","
                                      "\"footprint_bytes\":0,\"over_limit\":false}],\"total\":1,"
                                      "\"next_after\":\"\"}"));
    free(out);
}
END_TEST

START_TEST(test_events_and_status)
{
    struct wire_event e;
    struct wire_event_list l = {1, &e};
    struct wire_cluster_status st;
    char *out = NULL;

    memset(&e, 0, sizeof(e));
    e.id = 42;
    e.ts_ms = 3600000; /* 01:00:00 UTC */
    snprintf(e.segment_id, sizeof(e.segment_id), "s1");
    snprintf(e.node_id, sizeof(e.node_id), "node-c");
    snprintf(e.kind, sizeof(e.kind), "refused");
    e.reason = WIRE_REASON_MEM_THRASHING;
    e.http_status = 429;
    e.retry_after_ms = 12000;
    snprintf(e.detail, sizeof(e.detail), "line\nbreak");
    RENDER(out, ctl_print_events(f_, &l, false));
    ck_assert_ptr_nonnull(strstr(out, "01:00:00"));
    ck_assert_ptr_nonnull(strstr(out, "MEM_THRASHING"));
    ck_assert_ptr_nonnull(strstr(out, "12000      1  line"));
    ck_assert_ptr_null(strstr(out, "alike"));
    free(out);
    /* A storm row: its count, and until when. */
    e.count = 113;
    e.last_ts_ms = 3600000 + 61000;
    RENDER(out, ctl_print_events(f_, &l, false));
    ck_assert_msg(strstr(out, "12000    113  line\nbreak (113 alike until 01:01:01") != NULL, "%s",
                  out);
    free(out);
    RENDER(out, ctl_print_events(f_, &l, true));
    ck_assert_ptr_nonnull(strstr(out, "\"reason\":\"MEM_THRASHING\""));
    /* Field-number order: detail is 9, count 10, last_ts_ms 11. */
    ck_assert_ptr_nonnull(
        strstr(out, "\"detail\":\"line\\nbreak\",\"count\":113,\"last_ts_ms\":3661000}"));
    free(out);
    memset(&st, 0, sizeof(st));
    st.segments_total = 10;
    st.segments_loaded = 7;
    st.segments_pending = 2;
    st.segments_invalid = 1;
    st.nodes_up = 2;
    st.nodes_total = 3;
    snprintf(st.version, sizeof(st.version), "0.1.0");
    RENDER(out, ctl_print_status(f_, &st, false));
    ck_assert_ptr_nonnull(strstr(out, "nodes:    2 up of 3"));
    ck_assert_ptr_nonnull(strstr(out, "10 total, 7 loaded, 2 pending (0 backing off), 1 invalid"));
    ck_assert_ptr_nonnull(strstr(out, "placed:   0 assignments accepted, 0 refused\n"));
    free(out);
    /* Refusals per placed segment, by reason. */
    st.assignments_accepted = 24;
    st.refusals[WIRE_REASON_LOAD_CONCURRENCY] = 3;
    st.refusals[WIRE_REASON_MEM_CAPACITY] = 3;
    RENDER(out, ctl_print_status(f_, &st, false));
    ck_assert_msg(strstr(out, "placed:   24 assignments accepted, 6 refused: 0.25 per placed "
                              "segment (MEM_CAPACITY 0.12, LOAD_CONCURRENCY 0.12)\n") != NULL,
                  "%s", out);
    free(out);
    RENDER(out, ctl_print_status(f_, &st, true));
    ck_assert_msg(strstr(out, "\"assignments_accepted\":24,\"refusals\":[{\"reason\":"
                              "\"MEM_CAPACITY\",\"count\":3},{\"reason\":\"LOAD_CONCURRENCY\","
                              "\"count\":3}],\"nodes_draining\":0,\"leader\":\"\","
                              "\"leader_epoch\":0,\"coordinators\":[]}") != NULL,
                  "%s", out);
    free(out);
    RENDER(out, ctl_print_status(f_, &st, true));
    ck_assert_ptr_nonnull(strstr(out, "{\"segments_total\":10,\"segments_pending\":2,"
                                      "\"segments_loaded\":7,\"segments_invalid\":1,"
                                      "\"nodes_up\":2,\"nodes_total\":3,"));
    free(out);
}
END_TEST

START_TEST(test_tables)
{
    struct wire_table_info ts[2];
    struct wire_table_list l = {2, ts};
    char *out = NULL;

    memset(ts, 0, sizeof(ts));
    snprintf(ts[0].table, sizeof(ts[0].table), "default");
    ts[0].segments = 4;
    ts[0].segments_loaded = 3;
    ts[0].segments_pending = 1;
    ts[0].rows = 4000;
    ts[0].bytes = 3ull << 30;
    snprintf(ts[1].table, sizeof(ts[1].table), "ventes \"été\"");
    ts[1].segments = 3;
    ts[1].segments_invalid = 3;
    ts[1].rows = 7;
    ts[1].bytes = 700;
    RENDER(out, ctl_print_tables(f_, &l, false));
    ck_assert_ptr_nonnull(strstr(out, "TABLE"));
    ck_assert_ptr_nonnull(strstr(out, "LOADED"));
    /* default: 3 of 4 loaded is 75 %, 3 GiB estimated. */
    ck_assert_ptr_nonnull(strstr(out, "75.0%"));
    ck_assert_ptr_nonnull(strstr(out, "3.0G"));
    ck_assert_ptr_nonnull(strstr(out, "0.0%"));
    ck_assert_ptr_nonnull(strstr(out, "700B"));
    free(out);
    RENDER(out, ctl_print_tables(f_, &l, true));
    ck_assert_ptr_nonnull(strstr(out, "{\"tables\":[{\"table\":\"default\",\"segments\":4,"
                                      "\"segments_loaded\":3,\"segments_pending\":1,"
                                      "\"segments_invalid\":0,\"rows\":4000,"
                                      "\"bytes\":3221225472}"));
    ck_assert_ptr_nonnull(strstr(out, "\"table\":\"ventes \\\"été\\\"\""));
    ck_assert_ptr_nonnull(strstr(out, "\"segments_invalid\":3"));
    free(out);
    l.n = 0;
    RENDER(out, ctl_print_tables(f_, &l, true));
    ck_assert_str_eq(out, "{\"tables\":[]}\n");
    free(out);
}
END_TEST

/* A broker's answer: the value, the account, and the missing segments of a partial one. */
START_TEST(test_query)
{
    struct wire_table_query_response r;
    char missing[2][WIRE_ID_MAX + 1] = {"s3", "s7"};
    char *out = NULL;

    memset(&r, 0, sizeof(r));
    r.result.int_value = -42;
    r.result.rows_matched = 10;
    r.result.rows_scanned = 20;
    r.segments = 9;
    r.nodes_asked = 3;
    r.subrequests = 4;
    r.retries = 1;
    r.hedges = 1;
    r.placement_version = 77;
    RENDER(out, ctl_print_query(f_, &r, "sum", "t", false));
    ck_assert_str_eq(out, "sum = -42\n"
                          "table t: 9 segments, rows matched 10, scanned 20, bytes 0\n"
                          "nodes asked 3, requests 4, retries 1, hedges 1, placement version 77\n");
    free(out);
    r.partial = true;
    r.n_missing = 2;
    r.missing = missing;
    r.result.is_float = true;
    r.result.float_value = 0.5;
    RENDER(out, ctl_print_query(f_, &r, "max", "t", false));
    ck_assert_msg(strncmp(out, "max = 0.5\n", 10) == 0, "%s", out);
    ck_assert_msg(strstr(out, "PARTIAL: 2 segments missing: s3 s7\n") != NULL, "%s", out);
    free(out);
    RENDER(out, ctl_print_query(f_, &r, "max", "t", true));
    ck_assert_msg(strstr(out, "\"missing_segment_ids\":[\"s3\",\"s7\"],\"partial\":true") !=
                      NULL,
                  "%s", out);
    free(out);
}
END_TEST

/* --filter COL:LO:HI, negative bounds included; each bad form named. */
START_TEST(test_query_filter)
{
    struct wire_query_request q;
    char msg[256];

    memset(&q, 0, sizeof(q));
    ck_assert_int_eq(ctl_parse_filter("key:-5:100", &q, msg, sizeof(msg)), 0);
    ck_assert_str_eq(q.filter_column, "key");
    ck_assert_int_eq(q.lo, -5);
    ck_assert_int_eq(q.hi, 100);
    ck_assert_int_eq(ctl_parse_filter("key:-9:-9", &q, msg, sizeof(msg)), 0);
    ck_assert_int_eq(q.hi, -9);
    ck_assert_int_eq(ctl_parse_filter("key", &q, msg, sizeof(msg)), -EINVAL);
    ck_assert_msg(strstr(msg, "is not COLUMN:LO:HI") != NULL, "%s", msg);
    ck_assert_int_eq(ctl_parse_filter("key:x:5", &q, msg, sizeof(msg)), -EINVAL);
    ck_assert_msg(strstr(msg, "LO \"x\"") != NULL, "%s", msg);
    ck_assert_int_eq(ctl_parse_filter("key:1:5z", &q, msg, sizeof(msg)), -EINVAL);
    ck_assert_msg(strstr(msg, "HI \"5z\"") != NULL, "%s", msg);
    ck_assert_int_eq(ctl_parse_filter("key:6:5", &q, msg, sizeof(msg)), -EINVAL);
    ck_assert_msg(strstr(msg, "LO 6 is greater than HI 5") != NULL, "%s", msg);
    ck_assert_int_eq(ctl_parse_filter("k-y:1:5", &q, msg, sizeof(msg)), -EINVAL);
    ck_assert_msg(strstr(msg, "--filter column") != NULL, "%s", msg);
    ck_assert_str_eq(q.filter_column, "key"); /* unchanged by the refusals */
}
END_TEST

START_TEST(test_recommendations)
{
    struct wire_recommendation rs[2];
    struct wire_recommendation_list l = {2, rs};
    char *out = NULL;

    memset(rs, 0, sizeof(rs));
    snprintf(rs[0].table, sizeof(rs[0].table), "sales");
    rs[0].segments = 20;
    rs[0].observed = 18;
    rs[0].p50_bytes = 10ull << 20;
    rs[0].p90_bytes = 18ull << 20;
    rs[0].p95_bytes = 19ull << 20;
    rs[0].max_bytes = 20ull << 20;
    rs[0].request_bytes = 21708800;
    rs[0].limit_bytes = 22913024;
    rs[0].declared_request_bytes = 10ull << 20;
    rs[0].request_ratio = 1.0;
    rs[0].estimate_bytes = 5ull << 20;
    rs[0].estimate_ratio = 2.0;
    rs[0].over_limit = 4;
    snprintf(rs[1].table, sizeof(rs[1].table), "new");
    rs[1].segments = 3;
    RENDER(out, ctl_print_recommendations(f_, &l, false));
    ck_assert_ptr_nonnull(strstr(out, "REQUEST"));
    ck_assert_ptr_nonnull(strstr(out, "20.7M")); /* the recommended request */
    ck_assert_ptr_nonnull(strstr(out, "10.0M 1.00x"));
    ck_assert_ptr_nonnull(strstr(out, "5.0M 2.00x"));
    ck_assert_ptr_nonnull(strstr(out, "sales: --mem-request 21708800 --mem-limit 22913024\n"));
    ck_assert_ptr_null(strstr(out, "new: --mem-request")); /* nothing observed: nothing to say */
    free(out);
    RENDER(out, ctl_print_recommendations(f_, &l, true));
    ck_assert_ptr_nonnull(strstr(out, "{\"recommendations\":[{\"table\":\"sales\",\"segments\":20,"
                                      "\"observed\":18,\"p50_bytes\":10485760,"
                                      "\"p90_bytes\":18874368,\"p95_bytes\":19922944,"
                                      "\"max_bytes\":20971520,\"request_bytes\":21708800,"
                                      "\"limit_bytes\":22913024,"));
    ck_assert_ptr_nonnull(strstr(out, "\"estimate_ratio\":2"));
    ck_assert_ptr_nonnull(strstr(out, "\"over_limit\":4}"));
    free(out);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ctl");
    TCase *tc = tcase_create("formats");

    tcase_add_test(tc, test_nodes_table);
    tcase_add_test(tc, test_nodes_json);
    tcase_add_test(tc, test_segments);
    tcase_add_test(tc, test_events_and_status);
    tcase_add_test(tc, test_tables);
    tcase_add_test(tc, test_recommendations);
    tcase_add_test(tc, test_query);
    tcase_add_test(tc, test_query_filter);
    suite_add_tcase(s, tc);
    return harness_run_suite(s);
}
