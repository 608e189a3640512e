/*
 * check_node: a real sluice-node process driven through tests/harness.
 * Segments are written with `sluice-node mkseg`, assigned over HTTP, and
 * queried; every answer is compared with values this test computes itself
 * from the generator's seed (segment_synth_*), never with what the node says
 * elsewhere. Then the node is killed with SIGKILL and restarted, and must
 * answer the same. The refusal cases must leave the node's state unchanged.
 * The mlock cases run a node with --mlock-budget and sample its VmLck.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "harness.h"
#include "http.h"
#include "pbhttp.h"
#include "segfmt.h"
#include "wire.h"
#include "xmalloc.h"
#include "suite.h"

struct seg_def {
    const char *id;
    uint64_t rows;
    unsigned row_bytes;
    uint64_t seed;
    bool float_value;
};

/* Many narrow rows against few wide ones, and a float column. */
static const struct seg_def segs[] = {
    {"narrow-a", 300000, 16, 11, false},
    {"narrow-b", 200000, 24, 12, false},
    {"wide-a", 3000, 2048, 13, false},
    {"float-a", 50000, 40, 14, true},
};
#define NSEGS (sizeof(segs) / sizeof(segs[0]))

static char *dir, *storage, *data;
static struct harness_proc *node;

static char *seg_path(const char *id)
{
    return xasprintf("%s/%s.seg", storage, id);
}

static void make_segment(const struct seg_def *d)
{
    char *path = seg_path(d->id);
    char *rows = xasprintf("--rows=%" PRIu64, d->rows);
    char *bytes = xasprintf("--row-bytes=%u", d->row_bytes);
    char *seed = xasprintf("--seed=%" PRIu64, d->seed);
    char *out = xasprintf("--out=%s", path);
    const char *argv[] = {harness_bin("sluice-node"), "mkseg", rows, bytes, seed, out,
                          d->float_value ? "--float-value" : NULL, NULL};
    char *output = NULL;
    int rc = harness_run(argv, &output);

    ck_assert_msg(rc == 0, "mkseg failed: %s", output);
    free(output);
    free(path);
    free(rows);
    free(bytes);
    free(seed);
    free(out);
}

static void setup(void)
{
    dir = harness_dir_new("sluice-node-it");
    storage = xasprintf("%s/storage", dir);
    data = xasprintf("%s/data", dir);
    mkdir(storage, 0755);
    for (size_t i = 0; i < NSEGS; i++)
        make_segment(&segs[i]);
    /* Nothing here is about pressure: the machine's own load must not refuse. */
    node = harness_node_start_calm(storage, data, NULL);
    ck_assert_ptr_nonnull(node);
}

static void teardown(void)
{
    /* A clean SIGTERM exit is 0; under ASan a leak would make it 23. */
    int rc = harness_proc_stop(node);

    if (rc != 0)
        harness_proc_dump_log(node);
    ck_assert_int_eq(rc, 0);
    harness_proc_free(node);
    node = NULL;
    harness_dir_remove(dir);
    free(dir);
    free(storage);
    free(data);
}

/* POSTs an AssignRequest; returns the HTTP status and fills *ret and *ret_reply (may be NULL). */
static int assign_raw(const char *id, const char *uri, uint64_t rows, uint64_t row_size,
                      struct wire_assign_response *ret, struct harness_reply *ret_reply)
{
    struct wire_assign_request m = harness_assign_request(id, uri, rows, row_size);
    struct wire_assign_response scratch;
    int status = harness_assign(harness_proc_addr(node), &m, ret != NULL ? ret : &scratch,
                                ret_reply);

    ck_assert_int_gt(status, 0);
    return status;
}

static int assign_seg(const struct seg_def *d)
{
    char *path = seg_path(d->id);
    char *uri = xasprintf("file://%s", path);
    struct wire_assign_response resp;
    int status = assign_raw(d->id, uri, d->rows, d->row_bytes, &resp, NULL);

    free(path);
    free(uri);
    return status;
}

static bool get_status(struct wire_node_status *st)
{
    return harness_node_status(harness_proc_addr(node), NULL, 5000, st);
}

/* State of one segment on the node: 0 when it is absent. */
static enum wire_segment_state seg_state(const char *id)
{
    struct wire_node_status st;
    enum wire_segment_state s = 0;

    ck_assert(get_status(&st));
    for (size_t i = 0; i < st.n_segments; i++)
        if (strcmp(st.segments[i].segment_id, id) == 0)
            s = st.segments[i].state;
    wire_node_status_done(&st);
    return s;
}

static bool all_loaded(void *arg)
{
    size_t want = *(size_t *)arg, loaded = 0;
    struct wire_node_status st;

    if (!get_status(&st))
        return false;
    for (size_t i = 0; i < st.n_segments; i++)
        loaded += st.segments[i].state == WIRE_SEG_LOADED;
    wire_node_status_done(&st);
    return loaded == want;
}

/* Every (id, state, reason) of the node, as one string to compare. */
static char *state_fingerprint(void)
{
    struct wire_node_status st;
    char *s = xstrdup(""), *next;

    ck_assert(get_status(&st));
    for (size_t i = 0; i < st.n_segments; i++) {
        next = xasprintf("%s%s=%d/%d/%" PRIu64 ";", s, st.segments[i].segment_id,
                         st.segments[i].state, st.segments[i].reason, st.segments[i].file_bytes);
        free(s);
        s = next;
    }
    wire_node_status_done(&st);
    return s;
}

static int query(const char *const *ids, size_t n, enum wire_aggregate agg, const char *column,
                 const char *filter, int64_t lo, int64_t hi, struct wire_query_response *ret)
{
    struct wire_query_request q;
    int status;

    memset(&q, 0, sizeof(q));
    q.n_segments = n;
    q.segment_ids = xcalloc(n, sizeof(*q.segment_ids));
    for (size_t i = 0; i < n; i++)
        snprintf(q.segment_ids[i], sizeof(q.segment_ids[i]), "%s", ids[i]);
    q.aggregate = agg;
    snprintf(q.column, sizeof(q.column), "%s", column);
    snprintf(q.filter_column, sizeof(q.filter_column), "%s", filter != NULL ? filter : "");
    q.lo = lo;
    q.hi = hi;
    status = harness_query(harness_proc_addr(node), &q, ret, NULL);
    free(q.segment_ids);
    ck_assert_int_gt(status, 0);
    return status;
}

/* The expected answer, computed row by row from the generator. */
struct expect {
    uint64_t matched;
    uint64_t isum;
    int64_t imin, imax;
    double fsum, fmin, fmax;
};

static void expect_add(struct expect *e, const struct seg_def *d, bool filtered, int64_t lo,
                       int64_t hi)
{
    for (uint64_t r = 0; r < d->rows; r++) {
        int64_t k = segment_synth_key(d->seed, r);
        if (filtered && (k < lo || k > hi))
            continue;
        e->matched++;
        if (d->float_value) {
            double v = segment_synth_fvalue(d->seed, r);
            e->fsum += v;
            e->fmin = v < e->fmin ? v : e->fmin;
            e->fmax = v > e->fmax ? v : e->fmax;
        } else {
            int64_t v = segment_synth_value(d->seed, r);
            e->isum += (uint64_t)v;
            e->imin = v < e->imin ? v : e->imin;
            e->imax = v > e->imax ? v : e->imax;
        }
    }
}

static void expect_init(struct expect *e)
{
    memset(e, 0, sizeof(*e));
    e->imin = INT64_MAX;
    e->imax = INT64_MIN;
    e->fmin = INFINITY;
    e->fmax = -INFINITY;
}

/* Runs count/sum/min/max over the int segments (with and without a filter) and the float one. */
static void check_queries(void)
{
    const char *ints[] = {"narrow-a", "narrow-b", "wide-a"};
    const char *flt[] = {"float-a"};
    struct wire_query_response resp;
    struct expect e;
    /* A range that cuts blocks in the middle, so all three block kinds occur. */
    int64_t lo = 123457, hi = 654321;

    for (int filtered = 0; filtered <= 1; filtered++) {
        expect_init(&e);
        for (size_t i = 0; i < 3; i++)
            expect_add(&e, &segs[i], filtered, lo, hi);
        ck_assert_int_eq(query(ints, 3, WIRE_AGG_COUNT, "value", filtered ? "key" : NULL, lo, hi,
                               &resp),
                         200);
        ck_assert_int_eq(resp.int_value, (int64_t)e.matched);
        ck_assert_uint_eq(resp.rows_matched, e.matched);
        ck_assert_int_eq(query(ints, 3, WIRE_AGG_SUM, "value", filtered ? "key" : NULL, lo, hi,
                               &resp),
                         200);
        ck_assert_int_eq(resp.int_value, (int64_t)e.isum);
        ck_assert(!resp.is_float);
        ck_assert_int_eq(query(ints, 3, WIRE_AGG_MIN, "value", filtered ? "key" : NULL, lo, hi,
                               &resp),
                         200);
        ck_assert_int_eq(resp.int_value, e.imin);
        ck_assert_int_eq(query(ints, 3, WIRE_AGG_MAX, "value", filtered ? "key" : NULL, lo, hi,
                               &resp),
                         200);
        ck_assert_int_eq(resp.int_value, e.imax);
        if (filtered)
            ck_assert_uint_gt(resp.blocks_skipped, 0);
    }
    expect_init(&e);
    expect_add(&e, &segs[3], true, 1000, 150000);
    ck_assert_int_eq(query(flt, 1, WIRE_AGG_SUM, "value", "key", 1000, 150000, &resp), 200);
    ck_assert(resp.is_float);
    ck_assert_uint_eq(resp.rows_matched, e.matched);
    ck_assert_msg(fabs(resp.float_value - e.fsum) <= 1e-9 * fabs(e.fsum) + 1e-6,
                  "float sum %.17g, expected %.17g", resp.float_value, e.fsum);
    ck_assert_int_eq(query(flt, 1, WIRE_AGG_MIN, "value", "key", 1000, 150000, &resp), 200);
    ck_assert_double_eq(resp.float_value, e.fmin);
    ck_assert_int_eq(query(flt, 1, WIRE_AGG_MAX, "value", "key", 1000, 150000, &resp), 200);
    ck_assert_double_eq(resp.float_value, e.fmax);
    /* A range no row falls in: count 0, and min gives 0 by contract. */
    ck_assert_int_eq(query(ints, 3, WIRE_AGG_MIN, "value", "key", -100, -1, &resp), 200);
    ck_assert_uint_eq(resp.rows_matched, 0);
    ck_assert_int_eq(resp.int_value, 0);
}

static void assign_all_and_wait(void)
{
    size_t n = NSEGS;

    /* Like a coordinator: a LOAD_CONCURRENCY refusal is retried shortly after. */
    for (size_t i = 0; i < NSEGS; i++) {
        int status = 0;
        for (int tries = 0; tries < 600; tries++) {
            status = assign_seg(&segs[i]);
            if (status != 429)
                break;
            usleep(50000);
        }
        ck_assert_int_eq(status, 202);
    }
    ck_assert_msg(harness_wait_until(all_loaded, &n, 30000), "segments did not all load");
}

START_TEST(test_load_and_query)
{
    struct wire_node_status st;

    assign_all_and_wait();
    check_queries();
    ck_assert(get_status(&st));
    ck_assert_uint_eq(st.n_segments, NSEGS);
    for (size_t i = 0; i < st.n_segments; i++) {
        ck_assert_uint_gt(st.segments[i].file_bytes, 0);
        ck_assert_uint_gt(st.segments[i].index_bytes, 0);
    }
    ck_assert_uint_gt(st.mapped_bytes, 300000ull * 16);
    wire_node_status_done(&st);
    /* Assigning the same segment again is idempotent. */
    ck_assert_int_eq(assign_seg(&segs[0]), 202);
}
END_TEST

/*
 * A query longer than its timeout_ms: the node stops scanning at the next
 * segment and answers 504 deadline_exceeded; the same query with no
 * deadline answers. Eight segments of 10^6 rows take far longer than 1 ms
 * to sum on any machine (8 * 10^9 rows a second would be needed).
 */
#define DEADLINE_SEGS 8
START_TEST(test_query_deadline)
{
    struct wire_query_request q;
    struct wire_query_response r;
    struct harness_reply rep;
    double failed_before;
    int64_t sum = 0;
    size_t n = NSEGS + DEADLINE_SEGS;

    assign_all_and_wait();
    memset(&q, 0, sizeof(q));
    q.n_segments = DEADLINE_SEGS;
    q.segment_ids = xcalloc(q.n_segments, sizeof(*q.segment_ids));
    for (size_t i = 0; i < DEADLINE_SEGS; i++) {
        struct seg_def d = {q.segment_ids[i], 1000000, 16, 40 + i, false};
        int status = 0;

        snprintf(q.segment_ids[i], sizeof(q.segment_ids[i]), "deadline-%zu", i);
        make_segment(&d);
        for (int tries = 0; tries < 600 && (status = assign_seg(&d)) == 429; tries++)
            usleep(50000);
        ck_assert_int_eq(status, 202);
    }
    ck_assert_msg(harness_wait_until(all_loaded, &n, 30000), "segments did not all load");
    for (size_t i = 0; i < DEADLINE_SEGS; i++) {
        ck_assert_int_eq(harness_query_one(harness_proc_addr(node), q.segment_ids[i],
                                           WIRE_AGG_SUM, "value", &r, NULL),
                         200);
        sum = (int64_t)((uint64_t)sum + (uint64_t)r.int_value);
    }
    q.aggregate = WIRE_AGG_SUM;
    snprintf(q.column, sizeof(q.column), "value");
    failed_before = harness_metric(harness_proc_addr(node),
                                   "sluice_node_queries_total{result=\"error\"}");
    q.timeout_ms = 1;
    ck_assert_msg(harness_query(harness_proc_addr(node), &q, &r, &rep) == 504, "HTTP %d %s",
                  rep.status, rep.err.message);
    ck_assert_str_eq(rep.err.code, "deadline_exceeded");
    ck_assert_msg(strstr(rep.err.message, "timeout_ms") != NULL, "%s", rep.err.message);
    ck_assert(harness_metric(harness_proc_addr(node),
                             "sluice_node_queries_total{result=\"error\"}") ==
              failed_before + 1);
    /* No deadline: the whole scan, the sum of the eight. */
    q.timeout_ms = 0;
    ck_assert_int_eq(harness_query(harness_proc_addr(node), &q, &r, &rep), 200);
    ck_assert_int_eq(r.int_value, sum);
    free(q.segment_ids);
}
END_TEST

START_TEST(test_kill9_and_restart)
{
    size_t n = NSEGS;
    char *before, *after, *tmp_path;
    FILE *f;

    assign_all_and_wait();
    before = state_fingerprint();
    /* A partial copy, as a crash in the middle of a load would leave. */
    tmp_path = xasprintf("%s/segments/partial.seg.tmp", data);
    harness_proc_kill(node);
    f = fopen(tmp_path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("half a segment", f);
    fclose(f);
    ck_assert_int_eq(harness_proc_restart(node), 0);
    ck_assert_msg(harness_wait_until(all_loaded, &n, 30000), "segments did not reload");
    after = state_fingerprint();
    ck_assert_str_eq(before, after);
    ck_assert_int_eq(access(tmp_path, F_OK), -1);
    check_queries();
    free(before);
    free(after);
    free(tmp_path);
}
END_TEST

START_TEST(test_kill9_while_loading)
{
    /* A big segment, killed while it loads: nothing partial may be served. */
    struct seg_def big = {"big", 4000000, 64, 21, false};
    size_t zero = 0;
    char *tmp_path;

    make_segment(&big);
    ck_assert_int_eq(assign_seg(&big), 202);
    harness_proc_kill(node);
    ck_assert_int_eq(harness_proc_restart(node), 0);
    /* Either the load committed before the kill, or nothing of it remains. */
    tmp_path = xasprintf("%s/segments/big.seg.tmp", data);
    ck_assert_int_eq(access(tmp_path, F_OK), -1);
    if (seg_state("big") == 0) {
        ck_assert(harness_wait_until(all_loaded, &zero, 1000));
    } else {
        size_t one = 1;
        ck_assert(harness_wait_until(all_loaded, &one, 30000));
    }
    free(tmp_path);
}
END_TEST

/* *arg segments LOADED, plus "late" if its assignment was accepted before the stop. */
static bool loaded_with_or_without_late(void *arg)
{
    size_t more = *(size_t *)arg + 1;

    return all_loaded(arg) || all_loaded(&more);
}

/* Opens a connection to the node and writes one request; the answer is never read. */
static int send_unread(const char *method, const char *path, const void *body, size_t len)
{
    const char *addr = harness_proc_addr(node), *colon = strrchr(addr, ':');
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    char *head;

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(inet_pton(AF_INET, "127.0.0.1", &a.sin_addr), 1);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    head = xasprintf("%s %s HTTP/1.1\r\nHost: sluice\r\nContent-Type: %s\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     method, path, WIRE_CONTENT_TYPE, len);
    ck_assert_int_eq(write(fd, head, strlen(head)), (ssize_t)strlen(head));
    ck_assert_int_eq(write(fd, body, len), (ssize_t)len);
    free(head);
    return fd;
}

/*
 * SIGTERM while queries and an assignment are still on the workers: the node
 * finishes or refuses them and exits 0 (under ASan a use of a freed request
 * or a leak would make the status non-zero).
 */
START_TEST(test_sigterm_with_work_in_flight)
{
    struct seg_def big = {"big", 4000000, 64, 21, false};
    struct wire_query_request q;
    struct wire_assign_request m;
    size_t n = NSEGS, one = 1 + NSEGS;
    int fds[33], nfd = 0, rc;
    uint8_t *body;
    size_t len;
    char *uri;

    make_segment(&big);
    for (size_t i = 0; i < NSEGS; i++)
        ck_assert_int_eq(assign_seg(&segs[i]), 202);
    ck_assert(harness_wait_until(all_loaded, &n, 30000)); /* --max-loads is 4 */
    ck_assert_int_eq(assign_seg(&big), 202);
    ck_assert(harness_wait_until(all_loaded, &one, 30000));
    memset(&q, 0, sizeof(q));
    q.n_segments = 1;
    q.segment_ids = xcalloc(1, sizeof(*q.segment_ids));
    snprintf(q.segment_ids[0], sizeof(q.segment_ids[0]), "big");
    q.aggregate = WIRE_AGG_SUM;
    snprintf(q.column, sizeof(q.column), "value");
    body = wire_query_request_encode(&q, &len);
    free(q.segment_ids);
    for (int i = 0; i < 32; i++)
        fds[nfd++] = send_unread("POST", "/v1/query", body, len);
    free(body);
    memset(&m, 0, sizeof(m));
    snprintf(m.segment_id, sizeof(m.segment_id), "late");
    uri = seg_path("narrow-a");
    snprintf(m.uri, sizeof(m.uri), "file://%s", uri);
    m.row_count = segs[0].rows;
    m.avg_row_size = segs[0].row_bytes;
    body = wire_assign_request_encode(&m, &len);
    fds[nfd++] = send_unread("POST", "/v1/assign", body, len);
    free(body);
    free(uri);
    usleep(20000); /* read and queued, mostly not yet answered */
    rc = harness_proc_stop(node); /* the connections stay open meanwhile */
    if (rc != 0)
        harness_proc_dump_log(node);
    ck_assert_int_eq(rc, 0);
    for (int i = 0; i < nfd; i++)
        close(fds[i]);
    /* Restarted, it serves what it had loaded (the teardown stops it again). */
    ck_assert_int_eq(harness_proc_restart(node), 0);
    ck_assert(harness_wait_until(loaded_with_or_without_late, &one, 30000));
}
END_TEST

START_TEST(test_refusals_change_nothing)
{
    struct wire_assign_response resp;
    struct harness_reply reply;
    struct http_response hr;
    char *before, *after, *uri, *path, *link;
    static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0x01};
    FILE *f;
    size_t one = 1;

    ck_assert_int_eq(assign_seg(&segs[0]), 202);
    ck_assert(harness_wait_until(all_loaded, &one, 30000));
    before = state_fingerprint();

    /* '..' in the URI. */
    uri = xasprintf("file://%s/../storage/narrow-b.seg", storage);
    ck_assert_int_eq(assign_raw("x1", uri, 200000, 24, &resp, &reply), 422);
    ck_assert_int_eq(resp.reason, WIRE_REASON_SEGMENT_INVALID);
    ck_assert_str_eq(reply.reason, "SEGMENT_INVALID");
    free(uri);
    /* A real file outside the storage root. */
    path = xasprintf("%s/outside.seg", dir);
    {
        const char *argv[] = {harness_bin("sluice-node"), "mkseg", "--rows=10", "--out", path,
                              NULL};
        ck_assert_int_eq(harness_run(argv, NULL), 0);
    }
    uri = xasprintf("file://%s", path);
    ck_assert_int_eq(assign_raw("x2", uri, 10, 64, &resp, NULL), 422);
    ck_assert_msg(strstr(resp.detail, "outside the storage root") != NULL, "%s", resp.detail);
    free(uri);
    /* A symlink inside the root that points outside it. */
    link = xasprintf("%s/escape.seg", storage);
    ck_assert_int_eq(symlink(path, link), 0);
    uri = xasprintf("file://%s", link);
    ck_assert_int_eq(assign_raw("x3", uri, 10, 64, &resp, NULL), 422);
    ck_assert_msg(strstr(resp.detail, "outside the storage root") != NULL, "%s", resp.detail);
    free(uri);
    free(link);
    free(path);
    /* Missing, bad magic, truncated, wrong row_count. */
    uri = xasprintf("file://%s/missing.seg", storage);
    ck_assert_int_eq(assign_raw("x4", uri, 10, 64, &resp, NULL), 422);
    ck_assert_msg(strstr(resp.detail, "No such file") != NULL, "%s", resp.detail);
    free(uri);
    path = xasprintf("%s/junk.seg", storage);
    f = fopen(path, "w");
    fputs("this is not a segment file, not at all, it is far too long to be truncated......."
          "...................................................................",
          f);
    fclose(f);
    uri = xasprintf("file://%s", path);
    ck_assert_int_eq(assign_raw("x5", uri, 10, 64, &resp, NULL), 422);
    ck_assert_msg(strstr(resp.detail, "bad_magic") != NULL, "%s", resp.detail);
    free(uri);
    free(path);
    path = seg_path("narrow-b");
    {
        char *cut = xasprintf("%s/cut.seg", storage);
        char *cmd = xasprintf("head -c 100000 %s > %s", path, cut);
        ck_assert_int_eq(system(cmd), 0);
        uri = xasprintf("file://%s", cut);
        ck_assert_int_eq(assign_raw("x6", uri, 200000, 24, &resp, NULL), 422);
        ck_assert_msg(strstr(resp.detail, "truncated") != NULL, "%s", resp.detail);
        free(uri);
        free(cmd);
        free(cut);
    }
    uri = xasprintf("file://%s", path);
    ck_assert_int_eq(assign_raw("x7", uri, 12345, 24, &resp, NULL), 422);
    ck_assert_msg(strstr(resp.detail, "row_count") != NULL, "%s", resp.detail);
    /* The same id under another URI while it is held: 409. */
    ck_assert_int_eq(assign_raw("narrow-a", uri, 200000, 24, NULL, NULL), 409);
    free(uri);
    free(path);
    /* Malformed bodies: garbage, wrong content type, a field out of range, too large. */
    ck_assert_int_eq(http_fetch(harness_proc_addr(node), "POST", "/v1/assign", WIRE_CONTENT_TYPE,
                                garbage, sizeof(garbage), NULL, 5000, &hr),
                     0);
    ck_assert_int_eq(hr.status, 400);
    http_response_done(&hr);
    ck_assert_int_eq(http_fetch(harness_proc_addr(node), "POST", "/v1/assign", "application/json",
                                "{}", 2, NULL, 5000, &hr),
                     0);
    ck_assert_int_eq(hr.status, 415);
    http_response_done(&hr);
    ck_assert_int_eq(assign_raw("x8", "file:///x", 0, 10, NULL, &reply), 400);
    ck_assert_str_eq(reply.err.message, "row_count: 0 is outside 1..1000000000000");
    {
        size_t big = 5u << 20;
        char *body = xcalloc(1, big);
        ck_assert_int_eq(http_fetch(harness_proc_addr(node), "POST", "/v1/assign",
                                    WIRE_CONTENT_TYPE, body, big, NULL, 10000, &hr),
                         0);
        ck_assert_int_eq(hr.status, 413);
        http_response_done(&hr);
        free(body);
    }
    /* Unknown segments for DELETE and query; a bad id in the path. */
    ck_assert_int_eq(harness_send(harness_proc_addr(node), "DELETE", "/v1/segments/nope", NULL),
                     404);
    ck_assert_int_eq(harness_send(harness_proc_addr(node), "DELETE", "/v1/segments/..", NULL), 400);
    {
        const char *ids[] = {"narrow-a", "nope"};
        struct wire_query_response qr;
        ck_assert_int_eq(query(ids, 2, WIRE_AGG_SUM, "value", NULL, 0, 0, &qr), 404);
        ck_assert_int_eq(query(ids, 1, WIRE_AGG_SUM, "payload", NULL, 0, 0, &qr), 400);
        ck_assert_int_eq(query(ids, 1, WIRE_AGG_SUM, "nocol", NULL, 0, 0, &qr), 400);
    }
    after = state_fingerprint();
    ck_assert_str_eq(before, after);
    free(before);
    free(after);
    /* The node still serves. */
    ck_assert_int_eq(harness_send(harness_proc_addr(node), "GET", "/healthz", NULL), 200);
}
END_TEST

START_TEST(test_checksum_mismatch_fails_load)
{
    /* A flipped data byte passes the header precheck and fails verification. */
    struct wire_node_status st;
    char *path = seg_path("wide-a"), *uri;
    struct stat sb;
    FILE *f;
    int c;

    ck_assert_int_eq(stat(path, &sb), 0);
    f = fopen(path, "r+");
    fseek(f, sb.st_size - 100, SEEK_SET);
    c = fgetc(f);
    fseek(f, sb.st_size - 100, SEEK_SET);
    fputc(c ^ 0x40, f);
    fclose(f);
    uri = xasprintf("file://%s", path);
    ck_assert_int_eq(assign_raw("wide-a", uri, 3000, 2048, NULL, NULL), 202);
    for (int i = 0; i < 500 && seg_state("wide-a") == WIRE_SEG_LOADING; i++)
        usleep(20000);
    ck_assert_int_eq(seg_state("wide-a"), WIRE_SEG_FAILED);
    ck_assert(get_status(&st));
    ck_assert_int_eq(st.segments[0].reason, WIRE_REASON_SEGMENT_INVALID);
    ck_assert_msg(strstr(st.segments[0].detail, "checksum") != NULL, "%s",
                  st.segments[0].detail);
    wire_node_status_done(&st);
    free(uri);
    free(path);
    /* Nothing of it stays in the data directory. */
    path = xasprintf("%s/segments/wide-a.seg", data);
    ck_assert_int_eq(access(path, F_OK), -1);
    free(path);
}
END_TEST

START_TEST(test_delete)
{
    size_t one = 1;
    char *path = xasprintf("%s/segments/narrow-b.seg", data);

    ck_assert_int_eq(assign_seg(&segs[1]), 202);
    ck_assert(harness_wait_until(all_loaded, &one, 30000));
    ck_assert_int_eq(access(path, F_OK), 0);
    ck_assert_int_eq(harness_send(harness_proc_addr(node), "DELETE", "/v1/segments/narrow-b", NULL),
                     200);
    ck_assert_int_eq(seg_state("narrow-b"), 0);
    ck_assert_int_eq(access(path, F_OK), -1);
    /* And it does not come back after a restart. */
    harness_proc_kill(node);
    ck_assert_int_eq(harness_proc_restart(node), 0);
    ck_assert_int_eq(seg_state("narrow-b"), 0);
    free(path);
}
END_TEST

/* The node id in a node's status, or "" when it does not answer. */
static void status_id(const struct harness_proc *p, char *ret, size_t len)
{
    struct wire_node_status st;

    ret[0] = '\0';
    if (harness_node_status(harness_proc_addr(p), NULL, 5000, &st)) {
        snprintf(ret, len, "%s", st.node_id);
        wire_node_status_done(&st);
    }
}

/* First line of a file, or "" when it cannot be read. */
static void read_line(const char *path, char *ret, size_t len)
{
    FILE *f = fopen(path, "re");

    ret[0] = '\0';
    if (f != NULL) {
        if (fgets(ret, (int)len, f) == NULL)
            ret[0] = '\0';
        fclose(f);
    }
    ret[strcspn(ret, "\n")] = '\0';
}

/*
 * Without --node-id a node's id is generated once and kept in its data
 * directory: the same after a restart on another port, different for another
 * data directory; --node-id overrides it and writes nothing.
 */
/*
 * A node that shares its memory group says so, in its status (and in the
 * CLI's) and in its log at start; one alone in a cgroup of its own does not.
 * Before, such nodes silently reported the enclosing group's figures.
 */
START_TEST(test_memory_group_shared)
{
    char *data2 = xasprintf("%s/data2", dir), *data3 = xasprintf("%s/data3", dir), *cg, why[256];
    char *out = NULL, *na;
    struct harness_proc *n2, *n3;
    struct wire_node_status st;

    /* Started by this test process, in its group: not alone. */
    n2 = harness_node_start(storage, data2, NULL);
    ck_assert_ptr_nonnull(n2);
    ck_assert(harness_node_status(harness_proc_addr(n2), NULL, 10000, &st));
    ck_assert_msg(strstr(st.warnings, "not alone in its memory group") != NULL, "%s",
                  st.warnings);
    wire_node_status_done(&st);
    na = xasprintf("--node=%s", harness_proc_addr(n2));
    {
        const char *argv[] = {harness_bin("sluice-node"), "status", na, NULL};

        ck_assert_int_eq(harness_run(argv, &out), 0);
    }
    ck_assert_msg(strstr(out, "\nwarning: not alone in its memory group") != NULL, "%s", out);
    free(out);
    free(na);
    harness_proc_free(n2);
    /* Alone in a group of its own (where this machine lets the test make one). */
    cg = harness_cgroup_new("sluice-alone", 256ull << 20, why, sizeof(why));
    if (cg != NULL) {
        n3 = harness_node_start_cg(storage, data3, cg, NULL);
        ck_assert_ptr_nonnull(n3);
        ck_assert(harness_node_status(harness_proc_addr(n3), NULL, 10000, &st));
        ck_assert_msg(strstr(st.warnings, "not alone") == NULL, "%s", st.warnings);
        wire_node_status_done(&st);
        harness_proc_free(n3);
        harness_cgroup_remove(cg);
        free(cg);
    } else {
        fprintf(stderr, "check_node: no cgroup of its own here (%s): that half skipped\n", why);
    }
    free(data2);
    free(data3);
}
END_TEST

START_TEST(test_node_id_persisted)
{
    char id[WIRE_ID_MAX + 1], again[WIRE_ID_MAX + 1], kept[WIRE_ID_MAX + 2];
    char other[WIRE_ID_MAX + 1], given[WIRE_ID_MAX + 1];
    char *path = xasprintf("%s/node-id", data);
    char *data2 = xasprintf("%s/data2", dir), *data3 = xasprintf("%s/data3", dir);
    char *path3 = xasprintf("%s/node-id", data3);
    const char *const explicit_id[] = {"--node-id=given-1", NULL};
    struct harness_proc *n2, *n3;

    status_id(node, id, sizeof(id));
    ck_assert_str_ne(id, "");
    read_line(path, kept, sizeof(kept));
    ck_assert_str_eq(kept, id);
    ck_assert_msg(strncmp(id, "node-", 5) != 0 || strlen(id) > 10, "id %s looks port-based", id);
    /* Restarted, on a new port: the same id. */
    harness_proc_kill(node);
    ck_assert_int_eq(harness_proc_restart(node), 0);
    status_id(node, again, sizeof(again));
    ck_assert_str_eq(again, id);
    /* Another data directory: another id. */
    n2 = harness_node_start(storage, data2, NULL);
    ck_assert_ptr_nonnull(n2);
    status_id(n2, other, sizeof(other));
    ck_assert_str_ne(other, "");
    ck_assert_str_ne(other, id);
    /* --node-id wins and leaves the directory without a node-id file. */
    n3 = harness_node_start(storage, data3, explicit_id);
    ck_assert_ptr_nonnull(n3);
    status_id(n3, given, sizeof(given));
    ck_assert_str_eq(given, "given-1");
    ck_assert_int_eq(access(path3, F_OK), -1);
    ck_assert_int_eq(harness_proc_stop(n2), 0);
    ck_assert_int_eq(harness_proc_stop(n3), 0);
    harness_proc_free(n2);
    harness_proc_free(n3);
    free(path);
    free(path3);
    free(data2);
    free(data3);
}
END_TEST

/*
 * A fake coordinator on its own thread: answers /v1/report with 409 while
 * fake_conflict is set, else with an empty ReportResponse.
 */
static volatile int fake_conflict, fake_reports;
static struct event_base *fake_base;

static void fake_report_cb(struct evhttp_request *req, const char *rest, void *arg)
{
    struct wire_report_response resp = {0};
    uint8_t *buf;
    size_t len;

    __atomic_add_fetch(&fake_reports, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&fake_conflict, __ATOMIC_SEQ_CST)) {
        pbhttp_reply_error(req, 409, "node_id_conflict",
                           "node_id: \"dup-1\" is reported from 127.0.0.1:9 (seen 0.2 s ago)");
        return;
    }
    buf = wire_report_response_encode(&resp, &len);
    http_reply(req, 200, WIRE_CONTENT_TYPE, buf, len);
    free(buf);
}

static void *fake_loop(void *arg)
{
    event_base_loop(fake_base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

static int fake_reports_now(void)
{
    return __atomic_load_n(&fake_reports, __ATOMIC_SEQ_CST);
}

struct reports_after {
    int n;
};

static bool reports_after(void *arg)
{
    return fake_reports_now() > ((struct reports_after *)arg)->n;
}

/* POSTs an assignment of narrow-a to p; returns the status, *ret_reason the reason. */
static int assign_to(const struct harness_proc *p, enum wire_reason *ret_reason, char *detail,
                     size_t detail_len)
{
    char *uri = xasprintf("file://%s/narrow-a.seg", storage);
    struct wire_assign_request m =
        harness_assign_request("narrow-a", uri, segs[0].rows, segs[0].row_bytes);
    struct wire_assign_response resp;
    int status;

    memset(&resp, 0, sizeof(resp));
    status = harness_assign(harness_proc_addr(p), &m, &resp, NULL);
    ck_assert_int_gt(status, 0);
    *ret_reason = resp.reason;
    snprintf(detail, detail_len, "%s", resp.detail);
    free(uri);
    return status;
}

/*
 * The coordinator answers a node's report with 409 (its id is held by a live
 * node at another address): the node logs node_id_conflict, refuses
 * assignments (503 DRAINING naming the conflict) and queries, and keeps
 * reporting; once a report is accepted it serves again.
 */
START_TEST(test_node_id_conflict)
{
    struct http_server *srv;
    char fake_addr[64], detail[WIRE_DETAIL_MAX + 1], *coord_arg, *data2, *logpath, *log = NULL;
    const char *cat[3];
    const char *args[5];
    struct harness_proc *dup;
    struct reports_after ra;
    enum wire_reason reason;
    pthread_t th;
    int status;

    evthread_use_pthreads();
    fake_base = event_base_new();
    srv = http_server_new(fake_base, NULL);
    ck_assert_int_eq(http_server_bind(srv, "127.0.0.1:0", fake_addr, sizeof(fake_addr)), 0);
    ck_assert_int_eq(http_server_route(srv, HTTP_POST, "/v1/report", false, fake_report_cb, NULL),
                     0);
    __atomic_store_n(&fake_conflict, 1, __ATOMIC_SEQ_CST);
    ck_assert_int_eq(pthread_create(&th, NULL, fake_loop, NULL), 0);

    coord_arg = xasprintf("--coordinator=%s", fake_addr);
    args[0] = coord_arg;
    args[1] = "--node-id=dup-1";
    args[2] = "--report-interval=200ms";
    args[3] = NULL;
    data2 = xasprintf("%s/dup", dir);
    dup = harness_node_start_calm(storage, data2, args);
    ck_assert_ptr_nonnull(dup);
    ra.n = 1;
    ck_assert(harness_wait_until(reports_after, &ra, 10000)); /* two reports refused */

    status = assign_to(dup, &reason, detail, sizeof(detail));
    ck_assert_int_eq(status, 503);
    ck_assert_int_eq(reason, WIRE_REASON_DRAINING);
    ck_assert_msg(strstr(detail, "node id conflict") != NULL && strstr(detail, "127.0.0.1:9"),
                  "%s", detail);
    ck_assert_int_eq(harness_query_one(harness_proc_addr(dup), "narrow-a", WIRE_AGG_COUNT,
                                       "value", NULL, NULL),
                     503);
    logpath = xasprintf("%s/node.log", data2);
    cat[0] = "/bin/cat";
    cat[1] = logpath;
    cat[2] = NULL;
    ck_assert_int_eq(harness_run(cat, &log), 0);
    ck_assert_msg(strstr(log, "event=node_id_conflict") != NULL &&
                      strstr(log, "node_id=dup-1") != NULL,
                  "%s", log);
    free(log);
    log = NULL;

    /* The coordinator accepts the id again: the node serves. */
    __atomic_store_n(&fake_conflict, 0, __ATOMIC_SEQ_CST);
    ra.n = fake_reports_now() + 1;
    ck_assert(harness_wait_until(reports_after, &ra, 10000));
    status = assign_to(dup, &reason, detail, sizeof(detail));
    ck_assert_msg(status == 202, "%d %s", status, detail);
    ck_assert_int_eq(harness_run(cat, &log), 0);
    ck_assert_ptr_nonnull(strstr(log, "event=node_id_conflict_resolved"));
    free(log);

    ck_assert_int_eq(harness_proc_stop(dup), 0);
    harness_proc_free(dup);
    event_base_loopbreak(fake_base);
    pthread_join(th, NULL);
    http_server_free(srv);
    event_base_free(fake_base);
    free(logpath);
    free(coord_arg);
    free(data2);
}
END_TEST

/* The value of the sample whose line starts with prefix in p's /metrics, or -1 if absent. */
static double metric(struct harness_proc *p, const char *prefix)
{
    return harness_metric(harness_proc_addr(p), prefix);
}

static struct harness_proc *reporting_node;

static bool reports_failed(void *arg)
{
    return metric(reporting_node, "sluice_node_reports_total{outcome=\"failed\"}") >= 3;
}

/* Reports the coordinator never answers are counted in /metrics. */
START_TEST(test_report_failures_in_metrics)
{
    char *rdata = xasprintf("%s/reporting", dir);
    const char *args[] = {"--coordinator=127.0.0.1:1", "--report-interval=100ms", NULL};

    reporting_node = harness_node_start(storage, rdata, args);
    ck_assert_ptr_nonnull(reporting_node);
    ck_assert_double_eq(metric(node, "sluice_node_reports_total{outcome=\"failed\"}"), 0);
    ck_assert_msg(harness_wait_until(reports_failed, NULL, 10000),
                  "failed reports never reached /metrics");
    ck_assert_double_eq(metric(reporting_node, "sluice_node_reports_total{outcome=\"ok\"}"), 0);
    ck_assert_double_eq(metric(reporting_node, "sluice_node_report_drops_total"), 0);
    ck_assert_double_eq(metric(reporting_node, "sluice_node_report_age_seconds"), -1);
    ck_assert_int_eq(harness_proc_stop(reporting_node), 0);
    harness_proc_free(reporting_node);
    reporting_node = NULL;
    free(rdata);
}
END_TEST

/* ---- --mlock-budget ------------------------------------------------------ */

#define MLOCK_BUDGET (4u << 20)
#define MLOCK_SEGS   12

static void setup_mlock(void)
{
    const char *args[] = {"--mlock-budget=4M", NULL};

    dir = harness_dir_new("sluice-node-mlock");
    storage = xasprintf("%s/storage", dir);
    data = xasprintf("%s/data", dir);
    mkdir(storage, 0755);
    for (int i = 0; i < MLOCK_SEGS; i++) {
        char id[32];
        struct seg_def d = {id, 65536, 16, (uint64_t)(100 + i), false};

        snprintf(id, sizeof(id), "pin-%02d", i);
        make_segment(&d);
    }
    node = harness_node_start_calm(storage, data, args);
    ck_assert_ptr_nonnull(node);
}

/* VmLck of pid in bytes, or -1. */
static long long vmlck_bytes(int pid)
{
    char path[64], line[256];
    long long kb = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    f = fopen(path, "re");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "VmLck: %lld kB", &kb) == 1)
            break;
    fclose(f);
    return kb < 0 ? -1 : kb * 1024;
}

struct vmlck_sampler {
    int pid;
    volatile bool stop;
    long long max, samples;
};

static void *vmlck_sample(void *arg)
{
    struct vmlck_sampler *s = arg;

    while (!s->stop) {
        long long v = vmlck_bytes(s->pid);
        if (v > s->max)
            s->max = v;
        s->samples++;
        usleep(2000);
    }
    return NULL;
}

static uint64_t node_pinned(void)
{
    struct wire_node_status st;
    uint64_t pinned;

    ck_assert(get_status(&st));
    pinned = st.pressure.pinned_bytes;
    wire_node_status_done(&st);
    return pinned;
}

static bool vmlck_matches_pinned(void *arg)
{
    long long v = vmlck_bytes(harness_proc_pid(node));
    uint64_t pinned = node_pinned();

    *(uint64_t *)arg = pinned;
    return v >= 0 && (uint64_t)v == pinned && pinned > 0;
}

/*
 * 12 MiB of segments against a 4 MiB budget: segments arrive in batches and
 * are queried with shifting favourites (so the pinned set changes), while a
 * thread samples VmLck every 2 ms. It never exceeds the budget, pinning
 * does happen (beyond headers and zone maps), and the node's own figure is
 * what the kernel says.
 */
START_TEST(test_mlock_budget_never_exceeded)
{
    struct vmlck_sampler smp = {.pid = harness_proc_pid(node), .max = -1};
    struct wire_query_response resp;
    pthread_t th;
    uint64_t pinned = 0;
    size_t want;

    ck_assert_int_eq(pthread_create(&th, NULL, vmlck_sample, &smp), 0);
    for (int batch = 0; batch < 3; batch++) {
        for (int i = batch * 4; i < batch * 4 + 4; i++) {
            char id[32];
            struct seg_def d = {id, 65536, 16, (uint64_t)(100 + i), false};

            snprintf(id, sizeof(id), "pin-%02d", i);
            ck_assert_int_eq(assign_seg(&d), 202);
        }
        want = (size_t)(batch + 1) * 4;
        ck_assert(harness_wait_until(all_loaded, &want, 30000));
        /* This batch's favourites: value of its own segments, key of one older one. */
        for (int round = 0; round < 12; round++) {
            for (int i = batch * 4; i < batch * 4 + 4; i++) {
                char id[32];
                const char *ids[1] = {id};

                snprintf(id, sizeof(id), "pin-%02d", i);
                ck_assert_int_eq(query(ids, 1, WIRE_AGG_SUM, "value", NULL, 0, 0, &resp),
                                 200);
            }
            {
                const char *ids[1] = {"pin-00"};
                ck_assert_int_eq(query(ids, 1, WIRE_AGG_MAX, "key", NULL, 0, 0, &resp), 200);
            }
            usleep(100000);
        }
    }
    ck_assert_msg(harness_wait_until(vmlck_matches_pinned, &pinned, 10000),
                  "VmLck %lld never matched the node's pinned_bytes %" PRIu64,
                  vmlck_bytes(harness_proc_pid(node)), pinned);
    smp.stop = true;
    pthread_join(th, NULL);
    fprintf(stderr, "check_node: mlock budget %u, max VmLck %lld over %lld samples, pinned now "
            "%" PRIu64 "\n", MLOCK_BUDGET, smp.max, smp.samples, pinned);
    ck_assert_int_gt(smp.samples, 100);
    ck_assert_int_le(smp.max, MLOCK_BUDGET);
    ck_assert_uint_le(pinned, MLOCK_BUDGET);
    /* 12 headers and zone maps are 96 KiB: more than that means columns were pinned. */
    ck_assert_uint_gt(pinned, 1u << 20);
}
END_TEST

/*
 * A segment whose file holds in-memory columns (copied to the heap by the
 * load) but whose request declares a narrow row is costed at the declared
 * width by the first decision; the header, read before the load starts,
 * says how much heap it will take. A node with a 16 MiB admit budget must
 * refuse a 24 MiB in-memory column with MEM_CAPACITY naming the columns,
 * keep nothing of it, and still take the narrow segment that fits. Before
 * the header was consulted, the wide one was accepted (202) and loaded.
 */
START_TEST(test_heap_columns_counted)
{
    char *path = xasprintf("%s/embed.seg", storage), *uri = xasprintf("file://%s", path);
    char *out = xasprintf("--out=%s", path);
    const char *argv[] = {harness_bin("sluice-node"), "mkseg", "--rows=6000", "--row-bytes=16",
                          "--anon-row-bytes=4096", "--seed=21", out, NULL};
    const char *args[] = {"--admit-budget=16M", NULL};
    struct wire_assign_response resp;
    struct harness_reply rep;
    struct wire_node_status st;
    char *output = NULL;
    int status;

    ck_assert_msg(harness_run(argv, &output) == 0, "mkseg failed: %s", output);
    free(output);
    ck_assert_int_eq(harness_proc_stop(node), 0);
    harness_proc_free(node);
    node = harness_node_start_calm(storage, data, args);
    ck_assert_ptr_nonnull(node);
    /* Declared 16 B a row: 96,000 bytes, far under the budget. */
    status = assign_raw("embed", uri, 6000, 16, &resp, &rep);
    ck_assert_int_eq(status, 429);
    ck_assert_str_eq(rep.reason, "MEM_CAPACITY");
    ck_assert_int_eq(resp.reason, WIRE_REASON_MEM_CAPACITY);
    ck_assert_msg(strstr(resp.detail, "in-memory columns need 24576000 bytes") != NULL, "%s",
                  resp.detail);
    ck_assert(get_status(&st));
    ck_assert_uint_eq(st.n_segments, 0);
    wire_node_status_done(&st);
    ck_assert_int_eq(assign_seg(&segs[1]), 202); /* narrow-b: 4.8 MB */
    free(path);
    free(uri);
    free(out);
}
END_TEST

/* A budget above RLIMIT_MEMLOCK is refused at start, naming the limit and the fix. */
START_TEST(test_mlock_rlimit_refused)
{
    struct rlimit rl;
    char *out = NULL, *sr = xasprintf("--storage-root=%s", storage);
    char *dd = xasprintf("--data-dir=%s/other", dir);
    const char *argv[] = {harness_bin("sluice-node"), "serve", sr, dd, "--listen=127.0.0.1:0",
                          "--mlock-budget=4M", NULL};
    int rc;

    /* This test's own process and its children only (Check forks each test). */
    ck_assert_int_eq(getrlimit(RLIMIT_MEMLOCK, &rl), 0);
    rl.rlim_cur = 1u << 20;
    ck_assert_int_eq(setrlimit(RLIMIT_MEMLOCK, &rl), 0);
    rc = harness_run(argv, &out);
    ck_assert_int_ne(rc, 0);
    ck_assert_msg(strstr(out, "RLIMIT_MEMLOCK") != NULL && strstr(out, "1048576") != NULL &&
                      strstr(out, "ulimit -l") != NULL && strstr(out, "ulimits") != NULL &&
                      strstr(out, "Kubernetes") != NULL,
                  "unclear refusal: %s", out);
    free(out);
    free(sr);
    free(dd);
}
END_TEST

/*
 * Parses one log line as logfmt (key=value, values bare or double-quoted
 * with \\ escapes). Returns the number of fields, or -1 if the line does
 * not parse. *ret_events counts the "event" keys; the value of key want (if
 * not NULL) is unescaped into got.
 */
static int logfmt(const char *line, int *ret_events, const char *want, char *got, size_t got_len)
{
    const char *p = line;
    int n = 0;

    *ret_events = 0;
    while (*p != '\0') {
        char key[64], val[4096];
        size_t k = 0, v = 0;

        while ((*p >= 'a' && *p <= 'z') || *p == '_' || (*p >= '0' && *p <= '9'))
            if (k < sizeof(key) - 1)
                key[k++] = *p++;
            else
                return -1;
        key[k] = '\0';
        if (k == 0 || *p++ != '=')
            return -1;
        if (*p == '"') {
            for (p++; *p != '"'; p++) {
                char c = *p;
                if (c == '\0')
                    return -1;
                if (c == '\\') {
                    c = *++p;
                    if (c == 'n')
                        c = '\n';
                    else if (c == 'r')
                        c = '\r';
                    else if (c == 't')
                        c = '\t';
                    else if (c == 'x') {
                        char hex[3] = {p[1], p[2], '\0'};
                        c = (char)strtol(hex, NULL, 16);
                        p += 2;
                    } else if (c != '"' && c != '\\')
                        return -1;
                }
                if (v < sizeof(val) - 1)
                    val[v++] = c;
            }
            p++;
        } else {
            while (*p != ' ' && *p != '\0') {
                if (*p == '"' || *p == '=')
                    return -1;
                if (v < sizeof(val) - 1)
                    val[v++] = *p;
                p++;
            }
        }
        val[v] = '\0';
        if (*p == ' ')
            p++;
        else if (*p != '\0')
            return -1;
        *ret_events += strcmp(key, "event") == 0;
        if (want != NULL && strcmp(key, want) == 0)
            snprintf(got, got_len, "%s", val);
        n++;
    }
    return n;
}

/*
 * A URI may hold spaces, quotes and "key=" (only control bytes are refused
 * at decode): logged, it stays one value of one line, and reads back as sent.
 */
START_TEST(test_peer_text_quoted_in_log)
{
    char *target = seg_path("narrow-a");
    char *odd = xasprintf("%s/odd name\" event=forged x=1.seg", storage);
    char *uri = xasprintf("file://%s", odd), *logpath = xasprintf("%s/node.log", data);
    char line[8192], got[4096];
    size_t one = 1;
    bool seen = false;
    FILE *f;

    ck_assert_int_eq(link(target, odd), 0);
    ck_assert_int_eq(assign_raw("odd", uri, segs[0].rows, segs[0].row_bytes, NULL, NULL), 202);
    ck_assert(harness_wait_until(all_loaded, &one, 30000));
    f = fopen(logpath, "re");
    ck_assert_ptr_nonnull(f);
    while (fgets(line, sizeof(line), f) != NULL) {
        int events = 0, n;

        line[strcspn(line, "\n")] = '\0';
        if (strncmp(line, "ts=", 3) != 0)
            continue; /* not the node's own (a sanitizer's report, say) */
        got[0] = '\0';
        n = logfmt(line, &events, strstr(line, "NEW -> LOADING") != NULL ? "uri" : NULL, got,
                   sizeof(got));
        ck_assert_msg(n > 0 && events == 1, "not one logfmt record: %s", line);
        if (got[0] != '\0') {
            ck_assert_str_eq(got, uri);
            seen = true;
        }
    }
    fclose(f);
    ck_assert_msg(seen, "no NEW -> LOADING line with the URI");
    free(target);
    free(odd);
    free(uri);
    free(logpath);
}
END_TEST


/* Runs `sluice-node` with args (NULL-terminated); returns its exit status and output. */
static int run_node_cli(const char *const *args, char **ret_out)
{
    const char *argv[16];
    size_t n = 0;

    argv[n++] = harness_bin("sluice-node");
    for (; *args != NULL && n < 15; args++)
        argv[n++] = *args;
    argv[n] = NULL;
    return harness_run(argv, ret_out);
}

/*
 * Issue 20 item 1: flags may follow the positional arguments, and "--" ends
 * the flags, as in sluice-coord. Before, `query narrow-a --node ADDR` stopped
 * reading flags at narrow-a and asked the default 127.0.0.1:7100, and
 * `inspect FILE --verify` said "expected exactly one FILE".
 */
START_TEST(test_cli_flags_anywhere)
{
    const char *addr = harness_proc_addr(node);
    char *path = seg_path("narrow-a"), *out = NULL;
    int rc;

    assign_all_and_wait();
    rc = run_node_cli((const char *[]){"query", "narrow-a", "--node", addr, "--agg", "count",
                                       NULL},
                      &out);
    ck_assert_msg(rc == 0, "query with flags after the id: rc %d: %s", rc, out);
    ck_assert_msg(strstr(out, "count = 300000") != NULL, "%s", out);
    free(out);
    rc = run_node_cli((const char *[]){"query", "--node", addr, "narrow-a", "--agg", "count",
                                       NULL},
                      &out);
    ck_assert_msg(rc == 0 && strstr(out, "count = 300000") != NULL, "rc %d: %s", rc, out);
    free(out);
    /* After "--" everything is an id, even what looks like a flag. */
    rc = run_node_cli((const char *[]){"query", "--node", addr, "--", "--agg", NULL}, &out);
    ck_assert_msg(rc == 1 && strstr(out, "segment_ids[0]") != NULL, "rc %d: %s", rc, out);
    free(out);
    /* A flag before the command, as a global flag. */
    rc = run_node_cli((const char *[]){"--node", addr, "status", NULL}, &out);
    ck_assert_msg(rc == 0 && strstr(out, "narrow-a") != NULL, "rc %d: %s", rc, out);
    free(out);
    rc = run_node_cli((const char *[]){"inspect", path, "--verify", NULL}, &out);
    ck_assert_msg(rc == 0 && strstr(out, "checksums: ok") != NULL, "rc %d: %s", rc, out);
    free(out);
    /* An address that is not HOST:PORT is a usage error, never the default node. */
    rc = run_node_cli((const char *[]){"status", "--node", "127.0.0.1", NULL}, &out);
    ck_assert_msg(rc == 2 && strstr(out, "expected HOST:PORT") != NULL, "rc %d: %s", rc, out);
    free(out);
    free(path);
}
END_TEST

static Suite *node_suite(void)
{
    Suite *s = suite_create("node");
    TCase *tc;

    tc = tcase_create("load_query");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_load_and_query);
    tcase_add_test(tc, test_query_deadline);
    suite_add_tcase(s, tc);
    tc = tcase_create("crash");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_kill9_and_restart);
    tcase_add_test(tc, test_kill9_while_loading);
    tcase_add_test(tc, test_sigterm_with_work_in_flight);
    suite_add_tcase(s, tc);
    tc = tcase_create("refusals");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_refusals_change_nothing);
    tcase_add_test(tc, test_heap_columns_counted);
    tcase_add_test(tc, test_checksum_mismatch_fails_load);
    tcase_add_test(tc, test_delete);
    tcase_add_test(tc, test_report_failures_in_metrics);
    tcase_add_test(tc, test_peer_text_quoted_in_log);
    suite_add_tcase(s, tc);
    tc = tcase_create("cli");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_cli_flags_anywhere);
    suite_add_tcase(s, tc);
    tc = tcase_create("identity");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_node_id_persisted);
    tcase_add_test(tc, test_node_id_conflict);
    tcase_add_test(tc, test_memory_group_shared);
    suite_add_tcase(s, tc);
    tc = tcase_create("mlock");
    tcase_add_checked_fixture(tc, setup_mlock, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_mlock_budget_never_exceeded);
    tcase_add_test(tc, test_mlock_rlimit_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return harness_run_suite(node_suite());
}
