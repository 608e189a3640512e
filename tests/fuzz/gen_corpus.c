/*
 * gen_corpus: writes the committed seed corpus of the fuzz targets, a
 * handful of valid inputs each, produced by the real encoders (and
 * mkseg_write) so that they follow the formats as they are.
 * Run it after a format change and commit the result:
 *
 *   build-fuzz/tests/fuzz/gen_corpus tests/fuzz/corpus
 *
 * Output: <dir>/<target>/<seed-name>, overwritten; nothing else is touched.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mkseg.h"
#include "segfmt.h"
#include "wire.h"

static const char *root;

static void put(const char *target, const char *name, const void *buf, size_t len)
{
    char path[4096];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", root, target);
    if (mkdir(path, 0755) < 0 && errno != EEXIST) {
        perror(path);
        exit(1);
    }
    snprintf(path, sizeof(path), "%s/%s/%s", root, target, name);
    f = fopen(path, "wb");
    if (f == NULL || fwrite(buf, 1, len, f) != len || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

/* Writes an encoder's output and frees it. */
static void put_owned(const char *target, const char *name, uint8_t *buf, size_t len)
{
    put(target, name, buf, len);
    free(buf);
}

/* fuzz_wire_responses: the first byte picks the decoder. */
static void put_response(unsigned kind, const char *name, uint8_t *buf, size_t len)
{
    uint8_t *out = malloc(len + 1);

    out[0] = (uint8_t)kind;
    memcpy(out + 1, buf, len);
    put("fuzz_wire_responses", name, out, len + 1);
    free(out);
    free(buf);
}

/* put() of a NUL-separated list of strings, the fuzz_config argv format. */
static void put_args(const char *name, const char *const *args)
{
    char buf[1024];
    size_t o = 0;

    for (size_t i = 0; args[i] != NULL; i++) {
        size_t n = strlen(args[i]);

        memcpy(buf + o, args[i], n + 1);
        o += n + 1;
    }
    put("fuzz_config", name, buf, o > 0 ? o - 1 : 0);
}

static const struct wire_pressure pressure = {
    .some_avg10 = 1.5, .full_avg10 = 0.25, .some_fraction = 0.01, .full_fraction = 0.001,
    .usage_bytes = 200u << 20, .limit_bytes = 256u << 20, .wss_bytes = 180u << 20,
    .p99_seconds = 0.012, .loads_in_flight = 2, .psi_host_wide = true,
};

/* Owned-pointer fields of the wire structs are char *, so their seeds are arrays. */
static char bad_uri[] = "file:///srv/segments/bad-1.seg";
static char narrow_uri[] = "file:///srv/s/narrow-01.seg";
static char wide_uri[] = "file:///srv/s/wide-01.seg";
static char explain[] = "node-1: accepted";

static void wire_seeds(void)
{
    size_t len;

    {
        struct wire_assign_request a = {.segment_id = "wide-01",
                                        .uri = "file:///srv/segments/wide-01.seg",
                                        .row_count = 8000,
                                        .avg_row_size = 4096};
        put_owned("fuzz_wire_assign", "wide", wire_assign_request_encode(&a, &len), len);
        snprintf(a.segment_id, sizeof(a.segment_id), "n_2.x");
        snprintf(a.uri, sizeof(a.uri), "file:///a/b/../c.seg");
        a.row_count = 1000000000000ull;
        a.avg_row_size = 16u << 20;
        put_owned("fuzz_wire_assign", "limits", wire_assign_request_encode(&a, &len), len);
    }
    {
        char ids[3][WIRE_ID_MAX + 1] = {"narrow-01", "narrow-02", "wide-07"};
        struct wire_query_request q = {.n_segments = 1, .segment_ids = ids,
                                       .aggregate = WIRE_AGG_COUNT, .column = "value"};
        put_owned("fuzz_wire_query", "count", wire_query_request_encode(&q, &len), len);
        q.n_segments = 3;
        q.aggregate = WIRE_AGG_SUM;
        snprintf(q.filter_column, sizeof(q.filter_column), "key");
        q.lo = -100;
        q.hi = 1000000;
        put_owned("fuzz_wire_query", "sum_filter", wire_query_request_encode(&q, &len), len);
        q.aggregate = WIRE_AGG_MAX;
        q.lo = q.hi = 0;
        put_owned("fuzz_wire_query", "max_point", wire_query_request_encode(&q, &len), len);
    }
    struct wire_segment_status segs[2] = {
        {.segment_id = "wide-01", .state = WIRE_SEG_LOADED, .row_count = 8000,
         .avg_row_size = 4096, .file_bytes = 32u << 20, .index_bytes = 4096,
         .last_query_unix_ms = 1700000000000ull},
        {.segment_id = "bad-1", .state = WIRE_SEG_FAILED, .reason = WIRE_REASON_SEGMENT_INVALID,
         .detail = "header_crc mismatch", .uri = bad_uri},
    };
    {
        struct wire_node_status s = {.node_id = "node-1", .state = WIRE_NODE_SERVING,
                                     .n_segments = 2, .segments = segs,
                                     .mapped_bytes = 32u << 20, .index_bytes = 4096,
                                     .pressure = pressure, .version = "0.1.0",
                                     .uptime_seconds = 77, .signal_sources = "psi=cgroup wss=idle",
                                     .cost_factor = 1.25,
                                     .closed_gates = "MEM_PRESSURE LATENCY_SLO"};
        put_owned("fuzz_wire_node_status", "two_segments", wire_node_status_encode(&s, &len),
                  len);
        memset(&s, 0, sizeof(s));
        s.state = WIRE_NODE_DRAINING;
        put_owned("fuzz_wire_node_status", "empty_draining", wire_node_status_encode(&s, &len),
                  len);
    }
    {
        struct wire_node_report r = {.node_id = "node-2", .addr = "127.0.0.1:7102",
                                     .state = WIRE_NODE_SERVING, .pressure = pressure,
                                     .n_segments = 2, .segments = segs, .uptime_seconds = 5,
                                     .claim = true};
        put_owned("fuzz_wire_node_report", "two_segments", wire_node_report_encode(&r, &len), len);
        r.n_segments = 0;
        r.claim = false;
        r.state = WIRE_NODE_DRAINING;
        snprintf(r.addr, sizeof(r.addr), "[::1]:7100");
        put_owned("fuzz_wire_node_report", "empty_v6", wire_node_report_encode(&r, &len), len);
    }
    {
        struct wire_segment_spec specs[2] = {
            {.segment_id = "narrow-01", .uri = narrow_uri,
             .row_count = 2000000, .avg_row_size = 16, .replication = 1},
            {.segment_id = "wide-01", .uri = wide_uri, .row_count = 8000,
             .avg_row_size = 4096, .replication = 3},
        };
        struct wire_segment_batch b = {.n = 2, .specs = specs};
        put_owned("fuzz_wire_segment_batch", "two", wire_segment_batch_encode(&b, &len), len);
        b.n = 1;
        specs[0].replication = 0;
        put_owned("fuzz_wire_segment_batch", "one_default_repl",
                  wire_segment_batch_encode(&b, &len), len);
    }
    {
        struct wire_claim_request c = {.node_id = "node-3", .max_segments = 4};
        struct wire_assign_request as[2] = {
            {.segment_id = "a", .uri = "file:///x/a.seg", .row_count = 1, .avg_row_size = 1},
            {.segment_id = "wide-02", .uri = "file:///srv/segments/wide-02.seg",
             .row_count = 8000, .avg_row_size = 4096},
        };
        struct wire_claim_response r = {.n = 2, .assignments = as};
        put_owned("fuzz_wire_claim", "request", wire_claim_request_encode(&c, &len), len);
        put_owned("fuzz_wire_claim", "response", wire_claim_response_encode(&r, &len), len);
        r.n = 0;
        put_owned("fuzz_wire_claim", "response_empty", wire_claim_response_encode(&r, &len), len);
    }

    /* fuzz_wire_responses, in the order of its selector. */
    {
        struct wire_assign_response a = {.verdict = WIRE_VERDICT_REJECTED,
                                         .reason = WIRE_REASON_MEM_CAPACITY,
                                         .retry_after_ms = 1500, .pressure = pressure,
                                         .detail = "wss 230M + cost 32M over admit 217M"};
        put_response(0, "0_assign_rejected", wire_assign_response_encode(&a, &len), len);
        a.verdict = WIRE_VERDICT_ACCEPTED;
        a.reason = WIRE_REASON_NONE;
        a.detail[0] = '\0';
        put_response(0, "0_assign_accepted", wire_assign_response_encode(&a, &len), len);
    }
    {
        struct wire_query_response q = {.rows_matched = 10, .is_float = true,
                                        .float_value = -3.5, .rows_scanned = 100,
                                        .bytes_scanned = 1600, .blocks_skipped = 2};
        put_response(1, "1_query", wire_query_response_encode(&q, &len), len);
    }
    {
        char drop[2][WIRE_ID_MAX + 1] = {"wide-01", "narrow-09"};
        struct wire_report_response r = {.n_drop = 2, .drop = drop};
        put_response(2, "2_report_drop", wire_report_response_encode(&r, &len), len);
    }
    {
        struct wire_placement pl[2] = {{.node_id = "node-1", .state = WIRE_SEG_LOADED},
                                       {.node_id = "node-2", .state = WIRE_SEG_LOADING}};
        struct wire_segment_info si[2] = {
            {.spec = {.segment_id = "wide-01", .uri = wide_uri, .row_count = 8000,
                      .avg_row_size = 4096, .replication = 2},
             .state = "LOADED", .n_placements = 2, .placements = pl,
             .last_reason = "MEM_CAPACITY", .explain = explain},
            {.spec = {.segment_id = "narrow-01", .uri = narrow_uri,
                      .row_count = 2000000, .avg_row_size = 16, .replication = 1},
             .state = "PENDING", .backoff_until_ms = 1700000001000ull},
        };
        struct wire_segment_list l = {.n = 2, .segments = si, .total = 24};
        put_response(3, "3_segment_list", wire_segment_list_encode(&l, &len), len);
    }
    {
        struct wire_node_info ni[1] = {{.node_id = "node-1", .addr = "127.0.0.1:7101",
                                        .state = "UP", .pressure = pressure, .segments = 7,
                                        .last_reason = "MEM_CAPACITY",
                                        .last_seen_ms = 1700000000000ull, .refusals = 15}};
        struct wire_node_list l = {.n = 1, .nodes = ni};
        put_response(4, "4_node_list", wire_node_list_encode(&l, &len), len);
    }
    {
        struct wire_event ev[2] = {
            {.id = 1, .ts_ms = 1700000000000ull, .segment_id = "wide-01", .node_id = "node-1",
             .kind = "refused", .reason = WIRE_REASON_MEM_CAPACITY, .http_status = 429,
             .retry_after_ms = 1000, .detail = "over admit"},
            {.id = 2, .ts_ms = 1700000000500ull, .segment_id = "wide-01", .node_id = "node-2",
             .kind = "loaded", .http_status = 200},
        };
        struct wire_event_list l = {.n = 2, .events = ev};
        put_response(5, "5_event_list", wire_event_list_encode(&l, &len), len);
    }
    {
        struct wire_cluster_status c = {.segments_total = 24, .segments_pending = 1,
                                        .segments_loaded = 22, .segments_invalid = 1,
                                        .segments_backing_off = 1, .nodes_up = 3,
                                        .nodes_total = 3, .assignments_in_flight = 1,
                                        .version = "0.1.0", .uptime_seconds = 3600};
        put_response(6, "6_cluster_status", wire_cluster_status_encode(&c, &len), len);
    }
    {
        struct wire_error e = {.code = "invalid_field", .message = "segment_id: empty"};
        put_response(7, "7_error", wire_error_encode(&e, &len), len);
    }
    {
        struct wire_batch_response b = {.registered = 20, .unchanged = 4};
        put_response(8, "8_batch_response", wire_batch_response_encode(&b, &len), len);
    }
}

/* Writes a synthetic segment to a temporary file and copies it into the corpus. */
static void segment_seed(const char *name, const struct mkseg_spec *spec, long flip)
{
    char tmp[] = "/tmp/sluice-gen-corpus-XXXXXX", path[64], detail[256];
    uint8_t *buf;
    FILE *f;
    long n;

    if (mkdtemp(tmp) == NULL) {
        perror("mkdtemp");
        exit(1);
    }
    snprintf(path, sizeof(path), "%s/s.seg", tmp);
    if (mkseg_write(path, spec, detail, sizeof(detail)) < 0) {
        fprintf(stderr, "gen_corpus: %s\n", detail);
        exit(1);
    }
    f = fopen(path, "rb");
    if (f == NULL || fseek(f, 0, SEEK_END) < 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) < 0) {
        perror(path);
        exit(1);
    }
    buf = malloc((size_t)n);
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
        perror(path);
        exit(1);
    }
    fclose(f);
    unlink(path);
    rmdir(tmp);
    if (flip >= 0 && flip < n)
        buf[flip] ^= 0x01; /* a data byte: the header parses, the CRC does not match */
    put("fuzz_segment_header", name, buf, (size_t)n);
    free(buf);
}

static void segment_seeds(void)
{
    struct mkseg_spec s = {.rows = 4, .row_bytes = 16, .seed = 1};

    segment_seed("int_4rows", &s, -1);
    s.float_value = true;
    s.rows = 3;
    s.row_bytes = 16 + 5;
    segment_seed("float_payload_3rows", &s, -1);
    s.rows = 0;
    segment_seed("empty", &s, -1);
    s.rows = 2;
    s.row_bytes = 16;
    s.float_value = false;
    segment_seed("bad_data_crc", &s, 64 + 2 * 96); /* first byte of "key" */
}

static void config_seeds(void)
{
    static const char *const full[] = {
        "--listen", "127.0.0.1:7000", "--name=node-2", "--mode", "pull", "--rows", "5000",
        "--delta=-7", "--count", "-3", "--mem", "64M", "--big=1T", "--timeout", "2s",
        "--ratio=0.5", "--scale", "-1e3", "--verbose", "--no-color", "--", "serve", NULL};
    static const char *const minimal[] = {"--listen=:0", "positional", "--rows", "1", NULL};
    static const char *const help[] = {"--bogus", "--help", NULL};
    static const char *const bools[] = {"--listen", "x", "--verbose=off", "--color=YES",
                                        "--mem=4096KiB", "--timeout=1h", NULL};
    static const char *const size[] = {"512MiB", NULL};
    static const char *const duration[] = {"250ms", NULL};

    put_args("full", full);
    put_args("minimal", minimal);
    put_args("help", help);
    put_args("bools_units", bools);
    put_args("size", size);
    put_args("duration", duration);
}

static void uri_seeds(void)
{
    static const struct {
        const char *name, *text;
    } seeds[] = {
        {"uri", "file:///srv/segments/wide-01.seg"},
        {"uri_dotdot", "file:///srv/segments/../etc/x.seg"},
        {"uri_dot", "file:///srv/./a"},
        {"segment_id", "narrow-01.v2_b"},
        {"column", "payload_1"},
        {"http", "http://host/a"},
    };

    for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++)
        put("fuzz_uri", seeds[i].name, seeds[i].text, strlen(seeds[i].text));
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: gen_corpus DIR (for example tests/fuzz/corpus)\n");
        return 2;
    }
    root = argv[1];
    if (mkdir(root, 0755) < 0 && errno != EEXIST) {
        perror(root);
        return 1;
    }
    wire_seeds();
    segment_seeds();
    config_seeds();
    uri_seeds();
    return 0;
}
