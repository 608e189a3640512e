/*
 * ctl (node): inspect, assign, query, status. Each parses its flags with
 * cli_parse, makes at most one request with cli_call, and prints the answer.
 */
#include "ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "http.h"
#include "reason.h"
#include "segfmt.h"
#include "wire.h"
#include "xmalloc.h"

#define N_OPTS(a) (sizeof(a) / sizeof((a)[0]))

/*
 * The row size of the segment at uri, read from its header when uri is a
 * file:// URI this machine can read. Prints why not and returns -1 otherwise.
 */
static int nodectl_row_size(const char *uri, int64_t *ret_row_size)
{
    struct segment_header hdr;
    char detail[512];

    if (strncmp(uri, "file://", 7) != 0) {
        fprintf(stderr, "sluice-node assign: --row-size is required: --uri is not a file:// "
                        "URI this machine can read\n");
        return -1;
    }
    if (segment_read_header(uri + 7, &hdr, detail, sizeof(detail)) < 0) {
        fprintf(stderr, "sluice-node assign: --row-size is required when the file cannot be "
                        "read here: %s\n",
                detail);
        return -1;
    }
    *ret_row_size = (int64_t)(segment_row_bytes(&hdr) > 0 ? segment_row_bytes(&hdr) : 1);
    return 0;
}

static int nodectl_inspect(int argc, char **argv)
{
    bool verify = false;
    const struct config_option opts[] = {
        {"verify", NULL, CONFIG_BOOL, &verify, "false",
         "Also check every column's crc32c (reads the whole file)."},
    };
    struct segment_header hdr;
    char detail[512];
    struct stat sb;
    void *base = MAP_FAILED;
    int next, fd, r;

    cli_parse("sluice-node", opts, N_OPTS(opts), argc, argv, &next,
              "sluice-node inspect [--verify] FILE",
              "Print a segment file's header; exit 1 if it is invalid.", 1, 1);
    fd = open(argv[next], O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &sb) < 0) {
        fprintf(stderr, "sluice-node inspect: %s: %s\n", argv[next], strerror(errno));
        if (fd >= 0)
            close(fd);
        return 1;
    }
    if (!S_ISREG(sb.st_mode)) {
        fprintf(stderr, "sluice-node inspect: %s: %s, not a segment file\n", argv[next],
                S_ISDIR(sb.st_mode) ? "a directory" : "not a regular file");
        close(fd);
        return 1;
    }
    if (sb.st_size > 0)
        base = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (sb.st_size > 0 && base == MAP_FAILED) {
        fprintf(stderr, "sluice-node inspect: %s: %s\n", argv[next], strerror(errno));
        return 1;
    }
    r = segment_parse_header(base == MAP_FAILED ? "" : base, (size_t)sb.st_size,
                             (uint64_t)sb.st_size, &hdr, detail, sizeof(detail));
    if (r == 0) {
        segment_print_header(stdout, &hdr);
        if (verify)
            r = segment_verify(base, &hdr, detail, sizeof(detail));
        if (r == 0 && verify)
            printf("checksums: ok\n");
    }
    if (r < 0)
        fprintf(stderr, "sluice-node inspect: %s: %s: %s\n", argv[next], segment_error_name(r),
                detail);
    if (base != MAP_FAILED)
        munmap(base, (size_t)sb.st_size);
    return r < 0 ? 1 : 0;
}

static int nodectl_assign(int argc, char **argv)
{
    char *node = NULL, *id = NULL, *uri = NULL, *token_file = NULL, *token;
    int64_t rows = 0, row_size = 0;
    const struct config_option opts[] = {
        {"node", "SLUICE_NODE", CONFIG_STRING, &node, "127.0.0.1:7100", "Node address."},
        {"id", NULL, CONFIG_STRING, &id, NULL, "Segment id.", .required = true},
        {"uri", NULL, CONFIG_STRING, &uri, NULL, "file:/// URI inside the node's storage root.",
         .required = true},
        {"rows", NULL, CONFIG_INT, &rows, NULL, "Row count (must match the file).", 1,
         (int64_t)WIRE_ROW_COUNT_MAX, .required = true},
        {"row-size", NULL, CONFIG_INT, &row_size, "0",
         "Average row size in bytes; 0: read from the file's header when --uri names a file "
         "this machine can read, else required.",
         0, (int64_t)WIRE_ROW_SIZE_MAX},
        CLI_TOKEN_OPTION(token_file),
    };
    struct wire_assign_request m;
    struct wire_assign_response resp;
    struct http_response hr;
    struct wire_error err;
    uint8_t *body;
    size_t len;
    int next, r, rc = 1;

    cli_parse("sluice-node", opts, N_OPTS(opts), argc, argv, &next,
              "sluice-node assign --id ID --uri URI --rows N [--row-size B] [--node ADDR]",
              "Assign one segment to a node directly (no coordinator).", 0, 0);
    cli_check_addr("sluice-node", "assign", "--node", node, "127.0.0.1:7100");
    if (strlen(id) > WIRE_ID_MAX || strlen(uri) > WIRE_URI_MAX) {
        fprintf(stderr, "sluice-node assign: --id or --uri too long\n");
        config_free_strings(opts, N_OPTS(opts));
        return CLI_EXIT_USAGE;
    }
    if (row_size == 0 && nodectl_row_size(uri, &row_size) < 0) {
        config_free_strings(opts, N_OPTS(opts));
        return CLI_EXIT_USAGE;
    }
    token = cli_load_token("sluice-node", token_file);
    memset(&m, 0, sizeof(m));
    snprintf(m.segment_id, sizeof(m.segment_id), "%s", id);
    snprintf(m.uri, sizeof(m.uri), "%s", uri);
    m.row_count = (uint64_t)rows;
    m.avg_row_size = (uint64_t)row_size;
    body = wire_assign_request_encode(&m, &len);
    r = cli_call("sluice-node", "assign", "sluice-node", node, "POST", "/v1/assign", body, len, token, 30000, &hr);
    free(body);
    if (r < 0)
        goto out;
    if (wire_assign_response_decode(hr.body, hr.body_len, &resp, &err) == 0) {
        printf("%s: HTTP %d %s%s%s%s%s\n", id, hr.status,
               resp.verdict == WIRE_VERDICT_ACCEPTED ? "ACCEPTED" : "REJECTED",
               resp.reason != WIRE_REASON_NONE ? " " : "",
               resp.reason != WIRE_REASON_NONE ? reason_name(resp.reason) : "",
               resp.detail[0] != '\0' ? ": " : "", resp.detail);
        rc = resp.verdict == WIRE_VERDICT_ACCEPTED ? 0 : 1;
    } else {
        cli_print_error("sluice-node", "assign", &hr);
    }
    http_response_done(&hr);
out:
    free(token);
    config_free_strings(opts, N_OPTS(opts));
    return rc;
}

static int nodectl_query(int argc, char **argv)
{
    char *node = NULL, *agg = NULL, *column = NULL, *filter = NULL, *token_file = NULL, *token;
    int64_t lo = 0, hi = 0;
    static const char *const aggs[] = {"count", "sum", "min", "max", NULL};
    const struct config_option opts[] = {
        {"node", "SLUICE_NODE", CONFIG_STRING, &node, "127.0.0.1:7100", "Node address."},
        {"agg", NULL, CONFIG_CHOICE, &agg, "sum", "Aggregate.", .choices = aggs},
        {"column", NULL, CONFIG_STRING, &column, "value", "Aggregated column."},
        {"filter-column", NULL, CONFIG_STRING, &filter, "", "int64 column to filter on."},
        {"lo", NULL, CONFIG_INT, &lo, "-9223372036854775808", "Filter lower bound (inclusive).",
         INT64_MIN, INT64_MAX},
        {"hi", NULL, CONFIG_INT, &hi, "9223372036854775807", "Filter upper bound (inclusive).",
         INT64_MIN, INT64_MAX},
        CLI_TOKEN_OPTION(token_file),
    };
    struct wire_query_request q;
    struct wire_query_response resp;
    struct http_response hr;
    struct wire_error err;
    uint8_t *body;
    size_t len;
    int next, r, rc = 1;

    cli_parse("sluice-node", opts, N_OPTS(opts), argc, argv, &next,
              "sluice-node query [--agg A] [--column C] [--filter-column F --lo L --hi H] ID...",
              "Run an aggregate over segments loaded on a node.", 1, -1);
    cli_check_addr("sluice-node", "query", "--node", node, "127.0.0.1:7100");
    token = cli_load_token("sluice-node", token_file);
    memset(&q, 0, sizeof(q));
    q.n_segments = (size_t)(argc - next);
    q.segment_ids = xcalloc(q.n_segments, sizeof(*q.segment_ids));
    for (size_t i = 0; i < q.n_segments; i++)
        snprintf(q.segment_ids[i], sizeof(q.segment_ids[i]), "%s", argv[next + (int)i]);
    wire_aggregate_parse(agg, &q.aggregate);
    snprintf(q.column, sizeof(q.column), "%s", column);
    snprintf(q.filter_column, sizeof(q.filter_column), "%s", filter);
    q.lo = lo;
    q.hi = hi;
    body = wire_query_request_encode(&q, &len);
    free(q.segment_ids);
    r = cli_call("sluice-node", "query", "sluice-node", node, "POST", "/v1/query", body, len, token, 60000, &hr);
    free(body);
    if (r < 0)
        goto out;
    if (hr.status == 200 && wire_query_response_decode(hr.body, hr.body_len, &resp, &err) == 0) {
        if (resp.is_float)
            printf("%s = %.17g", agg, resp.float_value);
        else
            printf("%s = %" PRId64, agg, resp.int_value);
        printf("  (rows matched %" PRIu64 ", scanned %" PRIu64 ", bytes %" PRIu64
               ", blocks skipped %" PRIu64 ")\n",
               resp.rows_matched, resp.rows_scanned, resp.bytes_scanned, resp.blocks_skipped);
        rc = 0;
    } else {
        cli_print_error("sluice-node", "query", &hr);
    }
    http_response_done(&hr);
out:
    free(token);
    config_free_strings(opts, N_OPTS(opts));
    return rc;
}

static int nodectl_status(int argc, char **argv)
{
    char *node = NULL, *token_file = NULL, *token;
    const struct config_option opts[] = {
        {"node", "SLUICE_NODE", CONFIG_STRING, &node, "127.0.0.1:7100", "Node address."},
        CLI_TOKEN_OPTION(token_file),
    };
    struct wire_node_status st;
    struct http_response hr;
    struct wire_error err;
    int next, r, rc = 1;

    cli_parse("sluice-node", opts, N_OPTS(opts), argc, argv, &next,
              "sluice-node status [--node ADDR]", "Show a node's segments and their states.", 0,
              0);
    cli_check_addr("sluice-node", "status", "--node", node, "127.0.0.1:7100");
    token = cli_load_token("sluice-node", token_file);
    r = cli_call("sluice-node", "status", "sluice-node", node, "GET", "/v1/status", NULL, 0, token, 10000, &hr);
    if (r < 0)
        goto out;
    if (hr.status == 200 && wire_node_status_decode(hr.body, hr.body_len, &st, &err) == 0) {
        printf("node %s  %s  version %s  up %" PRIu64 "s  mapped %" PRIu64 " B  heap %" PRIu64
               " B  pinned %" PRIu64 " B\n",
               st.node_id, wire_node_state_name(st.state), st.version, st.uptime_seconds,
               st.mapped_bytes, st.index_bytes, st.pressure.pinned_bytes);
        printf("signals: %s\ncost factor %.3f; closed gates: %s\n", st.signal_sources,
               st.cost_factor,
               st.closed_gates[0] != '\0'          ? st.closed_gates
               : st.state == WIRE_NODE_DRAINING ? "none, but DRAINING: every assignment is refused"
                                                : "none");
        for (const char *w = st.warnings; *w != '\0';) {
            size_t n = strcspn(w, "\n");

            printf("warning: %.*s\n", (int)n, w);
            w += n + (w[n] == '\n');
        }
        if (st.pressure.admit_watermark > 0)
            printf("admit watermark in force: %.3f of the memory limit\n",
                   st.pressure.admit_watermark);
        if (st.pressure.io_mode == WIRE_IO_DIRECT)
            printf("io: direct  pool %" PRIu64 " B  hit ratio %.1f%%  held exactly %" PRIu64
                   " B\n",
                   st.pressure.pool_bytes, st.pressure.pool_hit_ratio * 100, st.pressure.wss_bytes);
        else
            printf("io: %s\n", wire_io_mode_name(st.pressure.io_mode));
        printf("%-24s %-8s %12s %10s %14s %10s  %s\n", "SEGMENT", "STATE", "ROWS", "ROW_SIZE",
               "FILE_BYTES", "HEAP", "REASON / DETAIL");
        for (size_t i = 0; i < st.n_segments; i++) {
            const struct wire_segment_status *s = &st.segments[i];
            printf("%-24s %-8s %12" PRIu64 " %10" PRIu64 " %14" PRIu64 " %10" PRIu64 "  %s%s%s\n",
                   s->segment_id, wire_segment_state_name(s->state), s->row_count,
                   s->avg_row_size, s->file_bytes, s->index_bytes,
                   s->reason != WIRE_REASON_NONE ? reason_name(s->reason) : "",
                   s->detail[0] != '\0' ? " " : "", s->detail);
        }
        wire_node_status_done(&st);
        rc = 0;
    } else {
        cli_print_error("sluice-node", "status", &hr);
    }
    http_response_done(&hr);
out:
    free(token);
    config_free_strings(opts, N_OPTS(opts));
    return rc;
}


static const struct cli_command nodectl_cmds[] = {
    {"inspect", nodectl_inspect, "print a segment file's header (--verify checks checksums)"},
    {"assign", nodectl_assign, "assign a segment to a running node"},
    {"query", nodectl_query, "run an aggregate on a running node"},
    {"status", nodectl_status, "show a running node's segments"},
};

bool nodectl_is_command(const char *name)
{
    return cli_command_find(nodectl_cmds, N_OPTS(nodectl_cmds), name) != NULL;
}

int nodectl_main(int argc, char **argv)
{
    return cli_command_run(NULL, nodectl_cmds, N_OPTS(nodectl_cmds), argc, argv);
}

void nodectl_usage(FILE *out)
{
    cli_command_usage(out, nodectl_cmds, N_OPTS(nodectl_cmds), 11);
}
