/*
 * check_hostile: the reliability battery's hostile-input and auth suite
 * (issue 5, items 1-2), against real sluice-node and sluice-coord processes
 * started through tests/harness on 127.0.0.1 port 0.
 *
 *  - auth: both daemons with --token-file; every non-public request without
 *    the token, or with a wrong one, gets 401; /metrics and /healthz stay
 *    open; nodes with the same token report and get segments placed, a node
 *    with another token never joins; the CLI exits 1 without the token and 0
 *    with it.
 *  - battery: one table, one row per malformed or hostile request (the target
 *    daemon, method, path, content type, body or raw bytes, the statuses
 *    accepted, "closed" included). After each row the daemon must still
 *    answer GET /healthz and its state must be what it was before the row.
 *  - slowloris and connection flood, against a node with tight limits.
 *
 * Bodies are encoded here by hand, not with common/wire's encoders, so that
 * the test can send what no encoder would (NUL bytes inside strings, 129-byte
 * ids, truncated or overlong varints) and so that it does not share the code
 * it tests. Every request the suite judges is counted in a tally shared by
 * Check's forked test processes; main() prints
 * "check_hostile: N requests tried, M answered as expected". A row whose
 * answer is wrong does not stop the others: each test fails at its end, with
 * every unexpected answer listed.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "http.h"
#include "mkseg.h"
#include "segfmt.h"
#include "wire.h"
#include "xmalloc.h"
#include "suite.h"

#define CLOSED      (-1) /* expected: the daemon closes without an answer */
#define NO_ANSWER   (-2) /* neither an answer nor a close within the time allowed */
#define RAW_WAIT_MS 3000u
#define TOKEN       "hostile-test-token-0123456789abcdef"

/* ---- the tally, shared by Check's forked test processes ---------------- */

struct tally {
    unsigned tried, ok;
};

static struct tally *tally;
static struct tally local_tally; /* used only if the shared mapping failed */
static char failures[16384];
static size_t failures_len;
static unsigned n_failures;

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Counts one judged request; an unexpected answer is logged and remembered. */
static void verdict(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void verdict(bool ok, const char *fmt, ...)
{
    char line[1024];
    va_list ap;

    tally->tried++;
    if (ok) {
        tally->ok++;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fprintf(stderr, "check_hostile: UNEXPECTED %s\n", line);
    n_failures++;
    if (failures_len < sizeof(failures) - 1) {
        int n =
            snprintf(failures + failures_len, sizeof(failures) - failures_len, "  %.300s\n", line);
        if (n > 0)
            failures_len += (size_t)n;
        if (failures_len >= sizeof(failures))
            failures_len = sizeof(failures) - 1;
    }
}

/* Remembers a failed check that is not an answer to a request (not in the tally). */
static void note_failure(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void note_failure(const char *fmt, ...)
{
    char line[512];
    va_list ap;
    int n;

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fprintf(stderr, "check_hostile: FAILED %s\n", line);
    n_failures++;
    n = snprintf(failures + failures_len, sizeof(failures) - failures_len, "  %s\n", line);
    if (n > 0)
        failures_len += (size_t)n;
    if (failures_len >= sizeof(failures))
        failures_len = sizeof(failures) - 1;
}

static void failures_reset(void)
{
    failures[0] = '\0';
    failures_len = 0;
    n_failures = 0;
}

/* Ends a test: every request judged in it must have been answered as expected. */
static void assert_no_failures(void)
{
    ck_assert_msg(n_failures == 0, "%u unexpected answer(s):\n%s", n_failures, failures);
}

/* ---- a growable buffer and a hand-written protobuf encoder -------------- */

struct buf {
    uint8_t *p;
    size_t len, cap;
};

static void buf_put(struct buf *b, const void *d, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->p = xreallocarray(b->p, b->cap, 1);
    }
    if (n > 0)
        memcpy(b->p + b->len, d, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void buf_puts(struct buf *b, const char *s)
{
    buf_put(b, s, strlen(s));
}

static void buf_fill(struct buf *b, int c, size_t n)
{
    char chunk[4096];

    memset(chunk, c, sizeof(chunk));
    while (n > 0) {
        size_t k = n < sizeof(chunk) ? n : sizeof(chunk);
        buf_put(b, chunk, k);
        n -= k;
    }
}

static void buf_free(struct buf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

static void pb_varint(struct buf *b, uint64_t v)
{
    uint8_t out[10];
    size_t n = 0;

    do {
        out[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v != 0)
            out[n] |= 0x80;
        n++;
    } while (v != 0);
    buf_put(b, out, n);
}

static void pb_u64(struct buf *b, unsigned field, uint64_t v)
{
    pb_varint(b, (uint64_t)field << 3);
    pb_varint(b, v);
}

static void pb_bytes(struct buf *b, unsigned field, const void *d, size_t n)
{
    pb_varint(b, ((uint64_t)field << 3) | 2);
    pb_varint(b, n);
    buf_put(b, d, n);
}

static void pb_str(struct buf *b, unsigned field, const char *s)
{
    pb_bytes(b, field, s, strlen(s));
}

/* ---- fixtures shared by the tests --------------------------------------- */

static char *dir, *storage, *outside, *data;
static struct harness_proc *node, *coord, *node_b, *node_x;

/* Replaces %R (the storage root) and %O (a directory outside it) in s[0, len). */
static char *expand(const char *s, size_t len, size_t *ret_len)
{
    struct buf b = {0};

    for (size_t i = 0; i < len; i++) {
        if (s[i] == '%' && i + 1 < len && (s[i + 1] == 'R' || s[i + 1] == 'O')) {
            buf_puts(&b, s[i + 1] == 'R' ? storage : outside);
            i++;
        } else {
            buf_put(&b, &s[i], 1);
        }
    }
    if (b.p == NULL)
        buf_put(&b, "", 0);
    *ret_len = b.len;
    return (char *)b.p;
}

static void write_segment(const char *path, uint64_t rows, unsigned row_bytes, uint64_t seed)
{
    struct mkseg_spec spec = {.rows = rows, .row_bytes = row_bytes, .seed = seed};
    char detail[256];

    ck_assert_msg(mkseg_write(path, &spec, detail, sizeof(detail)) == 0, "%s", detail);
}

static uint8_t *read_file(const char *path, size_t *ret_len)
{
    struct buf b = {0};
    char chunk[65536];
    size_t n;
    FILE *f = fopen(path, "rb");

    ck_assert_ptr_nonnull(f);
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        buf_put(&b, chunk, n);
    fclose(f);
    *ret_len = b.len;
    return b.p;
}

static void write_file(const char *path, const void *d, size_t n)
{
    FILE *f = fopen(path, "wb");

    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(d, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

static char *write_token_file(const char *name, const char *token)
{
    char *path = xasprintf("%s/%s", dir, name), *line = xasprintf("%s\n", token);

    write_file(path, line, strlen(line));
    free(line);
    return path;
}

/* ---- raw sockets -------------------------------------------------------- */

/* Connects to "127.0.0.1:PORT". Returns a blocking socket or -errno. */
static int raw_connect(const char *addr)
{
    const char *colon = strrchr(addr, ':');
    struct sockaddr_in sa;
    int fd, e;

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)atoi(colon != NULL ? colon + 1 : "0"));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

/* Sends what the peer takes; a peer that closes early is not an error here. */
static void raw_send(int fd, const void *d, size_t len)
{
    const char *p = d;

    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        p += n;
        len -= (size_t)n;
    }
}

/*
 * Reads until the peer closes (EOF or reset: *ret_closed) or timeout_ms
 * passes. Returns what arrived, NUL-terminated, at most 1 MiB; caller frees.
 */
static char *raw_read_all(int fd, unsigned timeout_ms, size_t *ret_len, bool *ret_closed)
{
    uint64_t deadline = now_ms() + timeout_ms;
    struct buf b = {0};
    char chunk[16384];

    *ret_closed = false;
    buf_put(&b, "", 0);
    while (b.len < (1u << 20)) {
        uint64_t t = now_ms();
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        ssize_t n;

        if (t >= deadline)
            break;
        if (poll(&pfd, 1, (int)(deadline - t)) <= 0)
            continue;
        n = recv(fd, chunk, sizeof(chunk), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            *ret_closed = true;
            break;
        }
        buf_put(&b, chunk, (size_t)n);
    }
    *ret_len = b.len;
    return (char *)b.p;
}

/* Status codes of the consecutive HTTP responses at the start of buf. */
static int raw_statuses(const char *buf, size_t len, int *codes, int max)
{
    size_t off = 0;
    int n = 0;

    while (n < max && off + 12 <= len && memcmp(buf + off, "HTTP/1.", 7) == 0) {
        const char *end = memmem(buf + off, len - off, "\r\n\r\n", 4);
        size_t cl = 0;

        codes[n++] = atoi(buf + off + 9);
        if (end == NULL)
            break;
        for (const char *line = buf + off; line < end;) {
            const char *eol = line;

            while (eol < end && !(eol[0] == '\r' && eol[1] == '\n'))
                eol++;
            if (eol - line >= 15 && strncasecmp(line, "Content-Length:", 15) == 0)
                cl = strtoul(line + 15, NULL, 10);
            line = eol + 2;
        }
        off = (size_t)(end - buf) + 4 + cl;
    }
    return n;
}

/*
 * Sends raw bytes on a new connection. Returns the first status, CLOSED if
 * the connection closed with no answer, NO_ANSWER, or -errno of connect.
 * *ret_second gets the status of a second pipelined response, CLOSED if the
 * connection closed after the first, or NO_ANSWER. *ret_text, if not NULL,
 * gets what arrived (caller frees).
 */
static int raw_request(const char *addr, const void *d, size_t len, int *ret_second,
                       char **ret_text)
{
    int fd = raw_connect(addr), codes[2], n;
    bool closed;
    size_t got;
    char *text;

    if (fd < 0)
        return fd;
    raw_send(fd, d, len);
    text = raw_read_all(fd, RAW_WAIT_MS, &got, &closed);
    close(fd);
    n = raw_statuses(text, got, codes, 2);
    if (ret_second != NULL)
        *ret_second = n >= 2 ? codes[1] : closed ? CLOSED : NO_ANSWER;
    if (ret_text != NULL)
        *ret_text = text;
    else
        free(text);
    return n >= 1 ? codes[0] : closed ? CLOSED : NO_ANSWER;
}

/* ---- what the daemons say ----------------------------------------------- */

static bool healthy(const char *addr)
{
    return harness_send(addr, "GET", "/healthz", NULL) == 200;
}

static bool node_status(const char *addr, const char *token, struct wire_node_status *st)
{
    return harness_node_status(addr, token, 10000, st);
}

/*
 * The node's state as one comparable string: every (segment, state, reason)
 * it reports, in id order, except the segment `skip` (NULL: none). NULL if
 * the node did not answer.
 */
static char *node_fingerprint(const char *addr, const char *token, const char *skip)
{
    struct wire_node_status st;
    struct buf b = {0};

    if (!node_status(addr, token, &st))
        return NULL;
    buf_put(&b, "", 0);
    for (size_t i = 0; i < st.n_segments; i++) {
        char item[WIRE_ID_MAX + 64];
        if (skip != NULL && strcmp(st.segments[i].segment_id, skip) == 0)
            continue;
        snprintf(item, sizeof(item), "%s=%s/%s;", st.segments[i].segment_id,
                 wire_segment_state_name(st.segments[i].state),
                 reason_name(st.segments[i].reason));
        buf_puts(&b, item);
    }
    wire_node_status_done(&st);
    return (char *)b.p;
}

/* State and reason of one segment on a node: 0 when it is absent, -1 if the node did not answer. */
static int node_seg(const char *addr, const char *token, const char *id,
                    enum wire_reason *ret_reason)
{
    struct wire_node_status st;
    int s = 0;

    if (!node_status(addr, token, &st))
        return -1;
    for (size_t i = 0; i < st.n_segments; i++) {
        if (strcmp(st.segments[i].segment_id, id) == 0) {
            s = st.segments[i].state;
            if (ret_reason != NULL)
                *ret_reason = st.segments[i].reason;
        }
    }
    wire_node_status_done(&st);
    return s;
}

static bool coord_status(const char *addr, const char *token, struct wire_cluster_status *st)
{
    bool ok;

    harness_client_set(token, 10000);
    ok = harness_cluster_status(addr, st) == 200;
    harness_client_set(NULL, 0);
    return ok;
}

/* Every segment the coordinator lists, asked with token. */
static bool coord_segments(const char *addr, const char *token, struct wire_segment_list *l)
{
    bool ok;

    harness_client_set(token, 10000);
    ok = harness_segments(addr, "?limit=1000000", l) == 200;
    harness_client_set(NULL, 0);
    return ok;
}

/*
 * The coordinator's state as one string: the segment and node counts of GET
 * /v1/status and every segment id of GET /v1/segments. (Counters that move
 * on their own, backing off and in flight, are left out.) NULL on failure.
 */
static char *coord_fingerprint(const char *addr, const char *token)
{
    struct wire_cluster_status st;
    struct wire_segment_list l;
    struct buf b = {0};
    char head[256];

    if (!coord_status(addr, token, &st) || !coord_segments(addr, token, &l))
        return NULL;
    snprintf(head, sizeof(head),
             "total=%" PRIu64 " pending=%" PRIu64 " loaded=%" PRIu64 " invalid=%" PRIu64
             " nodes=%u/%u ids:",
             st.segments_total, st.segments_pending, st.segments_loaded, st.segments_invalid,
             st.nodes_up, st.nodes_total);
    buf_puts(&b, head);
    for (size_t i = 0; i < l.n; i++) {
        buf_puts(&b, l.segments[i].spec.segment_id);
        buf_puts(&b, ",");
    }
    wire_segment_list_done(&l);
    return (char *)b.p;
}

/* The value of one sample line of GET /metrics ("name{labels}"), or -1. */
static double metric(const char *addr, const char *sample)
{
    return harness_metric(addr, sample);
}

/* ---- the battery's table ------------------------------------------------ */

enum target { NODE, COORD };

/* What "state unchanged" means for a row, and any check beyond the status. */
enum after {
    AFTER_SAME,        /* the fingerprint is identical */
    AFTER_FAILED_LOAD, /* see check_failed_load() */
    AFTER_FAST,        /* identical, and answered within 2 s */
    AFTER_PIPELINE,    /* identical; the pipelined garbage gets 400 or a close */
    AFTER_DRAINING,    /* the node says DRAINING (undone afterwards) */
};

struct row;
typedef void (*build_fn)(const struct row *r, struct buf *out);

struct row {
    const char *name;
    enum target target;
    const char *method; /* NULL: the body is raw bytes sent on a new connection */
    const char *path;
    const char *ctype; /* Content-Type, NULL: none */
    build_fn build;
    const char *a; /* builder parameters; alen/blen if they hold NUL bytes */
    size_t alen;
    const char *b;
    size_t blen;
    const char *c;
    uint64_t x, y, z;
    int expect[3];      /* statuses accepted (0 ends the list); CLOSED for a close */
    const char *reason; /* X-Sluice-Reason expected, or NULL */
    const char *detail; /* text the answer's body must contain, or NULL */
    enum after after;
};

static size_t len_a(const struct row *r)
{
    return r->alen != 0 ? r->alen : r->a != NULL ? strlen(r->a) : 0;
}

static size_t len_b(const struct row *r)
{
    return r->blen != 0 ? r->blen : r->b != NULL ? strlen(r->b) : 0;
}

static void bld_none(const struct row *r, struct buf *out)
{
    buf_put(out, "", 0);
}

/* a, as bytes. */
static void bld_bytes(const struct row *r, struct buf *out)
{
    buf_put(out, r->a, len_a(r));
}

/* x zero bytes. */
static void bld_zeros(const struct row *r, struct buf *out)
{
    buf_fill(out, 0, r->x);
}

/* AssignRequest{segment_id: a, uri: b (expanded), row_count: x, avg_row_size: y}. */
static void bld_assign(const struct row *r, struct buf *out)
{
    size_t ulen;
    char *uri = expand(r->b != NULL ? r->b : "", len_b(r), &ulen);

    buf_put(out, "", 0);
    pb_bytes(out, 1, r->a != NULL ? r->a : "", len_a(r));
    pb_bytes(out, 2, uri, ulen);
    pb_u64(out, 3, r->x);
    pb_u64(out, 4, r->y);
    free(uri);
}

/* The same, cut in the middle of the uri string. */
static void bld_assign_cut(const struct row *r, struct buf *out)
{
    bld_assign(r, out);
    out->len /= 2;
}

/* AssignRequest whose uri is y bytes long ("file://%R/" then 'a's). */
static void bld_assign_long_uri(const struct row *r, struct buf *out)
{
    struct buf uri = {0};

    buf_puts(&uri, "file://");
    buf_puts(&uri, storage);
    buf_puts(&uri, "/");
    if (uri.len < r->y)
        buf_fill(&uri, 'a', r->y - uri.len);
    buf_put(out, "", 0);
    pb_str(out, 1, r->a);
    pb_bytes(out, 2, uri.p, uri.len);
    pb_u64(out, 3, 10);
    pb_u64(out, 4, 64);
    buf_free(&uri);
}

/* QueryRequest{segment_ids: a (comma-separated), aggregate: x, column: b, filter: c, lo: y, hi: z}.
 */
static void bld_query(const struct row *r, struct buf *out)
{
    const char *p = r->a != NULL ? r->a : "";

    buf_put(out, "", 0);
    while (*p != '\0') {
        size_t n = strcspn(p, ",");
        pb_bytes(out, 1, p, n);
        p += n + (p[n] == ',');
    }
    pb_u64(out, 2, r->x);
    pb_str(out, 3, r->b != NULL ? r->b : "value");
    if (r->c != NULL) {
        pb_str(out, 4, r->c);
        pb_u64(out, 5, r->y);
        pb_u64(out, 6, r->z);
    }
}

/* QueryRequest over x distinct ids "q0000", "q0001", ... */
static void bld_query_many(const struct row *r, struct buf *out)
{
    buf_put(out, "", 0);
    for (uint64_t i = 0; i < r->x; i++) {
        char id[32];
        snprintf(id, sizeof(id), "q%04" PRIu64, i);
        pb_str(out, 1, id);
    }
    pb_u64(out, 2, WIRE_AGG_SUM);
    pb_str(out, 3, "value");
}

static void pb_spec(struct buf *out, const char *id, size_t id_len, const char *uri, size_t uri_len,
                    uint64_t rows, uint64_t size, uint64_t repl)
{
    struct buf s = {0};

    buf_put(&s, "", 0);
    pb_bytes(&s, 1, id, id_len);
    pb_bytes(&s, 2, uri, uri_len);
    pb_u64(&s, 3, rows);
    pb_u64(&s, 4, size);
    pb_u64(&s, 5, repl);
    pb_bytes(out, 1, s.p, s.len);
    buf_free(&s);
}

/*
 * SegmentBatch from a (alen bytes, NUL bytes allowed): specs separated by
 * ';', fields "id|uri|rows|avg_row_size|replication", uri expanded.
 */
static void bld_batch(const struct row *r, struct buf *out)
{
    const char *p = r->a, *end = r->a + len_a(r);

    buf_put(out, "", 0);
    while (p < end) {
        const char *semi = memchr(p, ';', (size_t)(end - p)), *f[5];
        size_t fl[5];
        const char *spec_end = semi != NULL ? semi : end, *q = p;
        char num[3][32];
        size_t ulen;
        char *uri;

        for (int i = 0; i < 5; i++) {
            const char *bar = i < 4 ? memchr(q, '|', (size_t)(spec_end - q)) : NULL;
            const char *fe = bar != NULL ? bar : spec_end;
            f[i] = q;
            fl[i] = (size_t)(fe - q);
            q = bar != NULL ? bar + 1 : spec_end;
        }
        for (int i = 0; i < 3; i++)
            snprintf(num[i], sizeof(num[i]), "%.*s", (int)fl[i + 2], f[i + 2]);
        uri = expand(f[1], fl[1], &ulen);
        pb_spec(out, f[0], fl[0], uri, ulen, strtoull(num[0], NULL, 10), strtoull(num[1], NULL, 10),
                strtoull(num[2], NULL, 10));
        free(uri);
        p = spec_end + 1;
    }
}

static void bld_batch_cut(const struct row *r, struct buf *out)
{
    bld_batch(r, out);
    out->len /= 2;
}

/* SegmentBatch of x distinct, otherwise valid specs "many-00000", ... */
static void bld_batch_many(const struct row *r, struct buf *out)
{
    buf_put(out, "", 0);
    for (uint64_t i = 0; i < r->x; i++) {
        char id[32], uri[64];
        snprintf(id, sizeof(id), "many-%05" PRIu64, i);
        snprintf(uri, sizeof(uri), "file:///nonexistent/many-%05" PRIu64 ".seg", i);
        pb_spec(out, id, strlen(id), uri, strlen(uri), 100, 64, 1);
    }
}

/* NodeReport{node_id: a, addr: b, state: x, segments: [c with state y] if c}. */
static void bld_report(const struct row *r, struct buf *out)
{
    buf_put(out, "", 0);
    pb_bytes(out, 1, r->a, len_a(r));
    pb_bytes(out, 2, r->b, len_b(r));
    pb_u64(out, 3, r->x);
    if (r->c != NULL) {
        struct buf s = {0};
        buf_put(&s, "", 0);
        pb_str(&s, 1, r->c);
        pb_u64(&s, 2, r->y);
        pb_bytes(out, 5, s.p, s.len);
        buf_free(&s);
    }
}

/* ClaimRequest{node_id: a, max_segments: x}. */
static void bld_claim(const struct row *r, struct buf *out)
{
    buf_put(out, "", 0);
    pb_bytes(out, 1, r->a, len_a(r));
    pb_u64(out, 2, r->x);
}

/* A GET with a header of x bytes. */
static void bld_raw_big_header(const struct row *r, struct buf *out)
{
    buf_puts(out, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ");
    buf_fill(out, 'a', r->x);
    buf_puts(out, "\r\n\r\n");
}

/* A request line of x bytes. */
static void bld_raw_big_line(const struct row *r, struct buf *out)
{
    buf_puts(out, "GET /");
    buf_fill(out, 'a', r->x);
    buf_puts(out, " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
}

#define A16   "aaaaaaaaaaaaaaaa"
#define A128  A16 A16 A16 A16 A16 A16 A16 A16
#define ID129 A128 "a"
#define ID200 A128 A16 A16 A16 A16 "aaaaaaaa"
#define PB    WIRE_CONTENT_TYPE
#define E1(s)                                                                                      \
    {                                                                                              \
        s, 0, 0                                                                                    \
    }
#define E2(s, t)                                                                                   \
    {                                                                                              \
        s, t, 0                                                                                    \
    }
#define E3(s, t, u)                                                                                \
    {                                                                                              \
        s, t, u                                                                                    \
    }
#define RAW_OR_CLOSE E2(400, CLOSED)

/* Bytes that are not a protobuf message of any kind. */
#define GARBAGE "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01\x0a\xff"
/* Strings with NUL bytes inside, and their full lengths. */
#define NUL_ID    "nulid\0/../x"
#define NUL_URI   "file://%R/good2.seg\0/../../etc/passwd"
#define NUL_BATCH "nulbatch\0evil|file:///nonexistent/nb.seg|100|64|1"
#define JUNK      "\x00\x01\x02\xff\xfe\r\n\x00\x00\r\n\r\n"
#define NOT_TLS   "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not TLS either\r\n\r\n"
#define LEN(s)    (sizeof(s) - 1)

static const struct row rows[] = {
    /* ---- node: bodies that are not what they claim to be ---- */
    {"node assign: garbage protobuf", NODE, "POST", "/v1/assign", PB, bld_bytes, .a = GARBAGE,
     .expect = E1(400), .detail = "not a valid"},
    {"node assign: truncated protobuf", NODE, "POST", "/v1/assign", PB, bld_assign_cut,
     .a = "trunc", .b = "file://%R/good2.seg", .x = 500, .y = 32, .expect = E1(400),
     .detail = "not a valid"},
    {"node assign: empty body", NODE, "POST", "/v1/assign", PB, bld_none, .expect = E1(400),
     .detail = "segment_id: empty"},
    {"node assign: wrong Content-Type", NODE, "POST", "/v1/assign", "application/json", bld_bytes,
     .a = "{\"segment_id\":\"x\"}", .expect = E1(415), .detail = "Content-Type"},
    {"node assign: no Content-Type", NODE, "POST", "/v1/assign", NULL, bld_assign, .a = "noct",
     .b = "file://%R/good2.seg", .x = 500, .y = 32, .expect = E1(415)},
    {"node assign: Content-Type with a suffix", NODE, "POST", "/v1/assign",
     "application/x-protobuf-evil", bld_assign, .a = "ctsuffix", .b = "file://%R/good2.seg",
     .x = 500, .y = 32, .expect = E1(415)},
    {"node assign: 5 MiB body", NODE, "POST", "/v1/assign", PB, bld_zeros, .x = 5u << 20,
     .expect = E1(413)},
    {"node assign: segment_id sent as a varint", NODE, "POST", "/v1/assign", PB, bld_bytes,
     .a = "\x08\x05\x12\x04x://", .expect = E1(400)},
    {"node assign: 11-byte varint", NODE, "POST", "/v1/assign", PB, bld_bytes,
     .a = "\x18\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", .expect = E1(400)},
    {"node assign: string length 2^62", NODE, "POST", "/v1/assign", PB, bld_bytes,
     .a = "\x0a\x80\x80\x80\x80\x80\x80\x80\x80\x40xyz", .expect = E1(400)},
    {"node assign: start-group wire type", NODE, "POST", "/v1/assign", PB, bld_bytes,
     .a = "\x0b\x0c", .expect = E1(400)},
    {"node assign: only unknown fields", NODE, "POST", "/v1/assign", PB, bld_bytes,
     .a = "\xf8\x06\x01", .expect = E1(400), .detail = "segment_id: empty"},

    /* ---- node: absurd fields ---- */
    {"node assign: row_count 0", NODE, "POST", "/v1/assign", PB, bld_assign, .a = "rows0",
     .b = "file://%R/good2.seg", .x = 0, .y = 32, .expect = E1(400), .detail = "row_count"},
    {"node assign: row_count 2^63", NODE, "POST", "/v1/assign", PB, bld_assign, .a = "rows63",
     .b = "file://%R/good2.seg", .x = 1ull << 63, .y = 32, .expect = E1(400),
     .detail = "row_count"},
    {"node assign: row_count 2^64-1", NODE, "POST", "/v1/assign", PB, bld_assign, .a = "rowsmax",
     .b = "file://%R/good2.seg", .x = UINT64_MAX, .y = 32, .expect = E1(400),
     .detail = "row_count"},
    {"node assign: avg_row_size 0", NODE, "POST", "/v1/assign", PB, bld_assign, .a = "size0",
     .b = "file://%R/good2.seg", .x = 500, .y = 0, .expect = E1(400), .detail = "avg_row_size"},
    {"node assign: avg_row_size 2^40", NODE, "POST", "/v1/assign", PB, bld_assign, .a = "size40",
     .b = "file://%R/good2.seg", .x = 500, .y = 1ull << 40, .expect = E1(400),
     .detail = "avg_row_size"},
    /* Both at their maxima: a cost of 1.7e19 bytes must not wrap to something small. */
    {"node assign: 10^12 rows x 16 MiB", NODE, "POST", "/v1/assign", PB, bld_assign,
     .a = "hugecost", .b = "file://%R/good2.seg", .x = 1000000000000ull, .y = 16u << 20,
     .expect = E1(429), .reason = "MEM_CAPACITY"},
    {"node assign: empty id", NODE, "POST", "/v1/assign", PB, bld_assign, .a = "",
     .b = "file://%R/good2.seg", .x = 500, .y = 32, .expect = E1(400),
     .detail = "segment_id: empty"},
    {"node assign: 129-byte id", NODE, "POST", "/v1/assign", PB, bld_assign, .a = ID129,
     .b = "file://%R/good2.seg", .x = 500, .y = 32, .expect = E1(400), .detail = "129 bytes"},
    {"node assign: id with '/'", NODE, "POST", "/v1/assign", PB, bld_assign, .a = "a/b",
     .b = "file://%R/good2.seg", .x = 500, .y = 32, .expect = E1(400)},
    {"node assign: id '..'", NODE, "POST", "/v1/assign", PB, bld_assign, .a = "..",
     .b = "file://%R/good2.seg", .x = 500, .y = 32, .expect = E1(400)},
    {"node assign: id '../../etc/passwd'", NODE, "POST", "/v1/assign", PB, bld_assign,
     .a = "../../etc/passwd", .b = "file://%R/good2.seg", .x = 500, .y = 32, .expect = E1(400)},
    /* protobuf-c hands strings over NUL-terminated: "nulid\0..." must not become "nulid". */
    {"node assign: id with a NUL byte", NODE, "POST", "/v1/assign", PB, bld_assign, .a = NUL_ID,
     .alen = LEN(NUL_ID), .b = "file://%R/good2.seg", .x = 500, .y = 32, .expect = E1(400)},
    {"node assign: id with byte 0x01", NODE, "POST", "/v1/assign", PB, bld_assign, .a = "ctl\x01id",
     .b = "file://%R/good2.seg", .x = 500, .y = 32, .expect = E1(400)},
    {"node assign: id with a space", NODE, "POST", "/v1/assign", PB, bld_assign, .a = "a b",
     .b = "file://%R/good2.seg", .x = 500, .y = 32, .expect = E1(400)},
    {"node assign: unicode id", NODE, "POST", "/v1/assign", PB, bld_assign, .a = "s\xc3\xa9gment",
     .b = "file://%R/good2.seg", .x = 500, .y = 32, .expect = E1(400)},
    {"node assign: invalid UTF-8 id", NODE, "POST", "/v1/assign", PB, bld_assign,
     .a = "bad\xff\xfe", .b = "file://%R/good2.seg", .x = 500, .y = 32, .expect = E1(400)},
    {"node assign: id '-rf'", NODE, "POST", "/v1/assign", PB, bld_assign, .a = "-rf",
     .b = "file://%R/good2.seg", .x = 500, .y = 32, .expect = E1(400)},

    /* ---- node: URIs ---- */
    {"node assign: uri with '..'", NODE, "POST", "/v1/assign", PB, bld_assign, .a = "dotdot",
     .b = "file://%R/../storage/good2.seg", .x = 500, .y = 32, .expect = E1(422),
     .reason = "SEGMENT_INVALID", .detail = "'..'"},
    {"node assign: uri with '.'", NODE, "POST", "/v1/assign", PB, bld_assign, .a = "dot",
     .b = "file://%R/./good2.seg", .x = 500, .y = 32, .expect = E1(422),
     .reason = "SEGMENT_INVALID"},
    {"node assign: relative uri", NODE, "POST", "/v1/assign", PB, bld_assign, .a = "rel",
     .b = "file://good2.seg", .x = 500, .y = 32, .expect = E1(400), .detail = "absolute"},
    {"node assign: http:// uri", NODE, "POST", "/v1/assign", PB, bld_assign, .a = "http",
     .b = "http://127.0.0.1:1/good2.seg", .x = 500, .y = 32, .expect = E1(400),
     .detail = "file://"},
    {"node assign: bare path uri", NODE, "POST", "/v1/assign", PB, bld_assign, .a = "bare",
     .b = "%R/good2.seg", .x = 500, .y = 32, .expect = E1(400)},
    {"node assign: uri with %00", NODE, "POST", "/v1/assign", PB, bld_assign, .a = "pct00",
     .b = "file://%R/good2.seg%00.txt", .x = 500, .y = 32, .expect = E1(400), .detail = "percent"},
    {"node assign: uri with %2e%2e", NODE, "POST", "/v1/assign", PB, bld_assign, .a = "pct2e",
     .b = "file://%R/%2e%2e/outside/outside.seg", .x = 10, .y = 64, .expect = E1(400),
     .detail = "percent"},
    {"node assign: uri with a NUL byte", NODE, "POST", "/v1/assign", PB, bld_assign, .a = "nuluri",
     .b = NUL_URI, .blen = LEN(NUL_URI), .x = 500, .y = 32, .expect = E1(400)},
    {"node assign: uri with a newline", NODE, "POST", "/v1/assign", PB, bld_assign, .a = "nl",
     .b = "file://%R/good2.seg\nX-Evil: 1", .x = 500, .y = 32, .expect = E1(400),
     .detail = "control byte"},
    {"node assign: empty uri", NODE, "POST", "/v1/assign", PB, bld_assign, .a = "nouri", .b = "",
     .x = 500, .y = 32, .expect = E1(400), .detail = "uri: empty"},
    {"node assign: 4097-byte uri", NODE, "POST", "/v1/assign", PB, bld_assign_long_uri,
     .a = "longuri", .y = 4097, .expect = E1(400), .detail = "4097 bytes"},
    {"node assign: uri naming a directory/", NODE, "POST", "/v1/assign", PB, bld_assign,
     .a = "dirslash", .b = "file://%R/dir.seg/", .x = 500, .y = 32, .expect = E1(400),
     .detail = "directory"},
    {"node assign: uri naming a directory", NODE, "POST", "/v1/assign", PB, bld_assign, .a = "dir",
     .b = "file://%R/dir.seg", .x = 500, .y = 32, .expect = E1(422), .reason = "SEGMENT_INVALID",
     .detail = "not a regular file"},
    {"node assign: symlink escaping the root", NODE, "POST", "/v1/assign", PB, bld_assign,
     .a = "escape", .b = "file://%R/escape.seg", .x = 10, .y = 64, .expect = E1(422),
     .reason = "SEGMENT_INVALID", .detail = "outside the storage root"},
    {"node assign: file outside the root", NODE, "POST", "/v1/assign", PB, bld_assign,
     .a = "outside", .b = "file://%O/outside.seg", .x = 10, .y = 64, .expect = E1(422),
     .reason = "SEGMENT_INVALID", .detail = "outside the storage root"},
    {"node assign: /dev/zero", NODE, "POST", "/v1/assign", PB, bld_assign, .a = "devzero",
     .b = "file:///dev/zero", .x = 10, .y = 64, .expect = E1(422), .reason = "SEGMENT_INVALID",
     .detail = "outside the storage root"},
    {"node assign: symlink to /dev/zero", NODE, "POST", "/v1/assign", PB, bld_assign,
     .a = "zerolink", .b = "file://%R/zero.seg", .x = 10, .y = 64, .expect = E1(422),
     .reason = "SEGMENT_INVALID", .detail = "outside the storage root"},
    /* Opened with O_NONBLOCK: a FIFO with no writer must not hang a worker. */
    {"node assign: FIFO in the root", NODE, "POST", "/v1/assign", PB, bld_assign, .a = "fifo",
     .b = "file://%R/fifo.seg", .x = 10, .y = 64, .expect = E1(422), .reason = "SEGMENT_INVALID",
     .detail = "not a regular file", .after = AFTER_FAST},
    {"node assign: missing file", NODE, "POST", "/v1/assign", PB, bld_assign, .a = "missing",
     .b = "file://%R/missing.seg", .x = 10, .y = 64, .expect = E1(422), .reason = "SEGMENT_INVALID",
     .detail = "No such file"},
    {"node assign: wrong row_count", NODE, "POST", "/v1/assign", PB, bld_assign, .a = "wrongrows",
     .b = "file://%R/good2.seg", .x = 501, .y = 32, .expect = E1(422), .reason = "SEGMENT_INVALID",
     .detail = "row_count"},
    {"node assign: bad magic", NODE, "POST", "/v1/assign", PB, bld_assign, .a = "junk",
     .b = "file://%R/junk.seg", .x = 10, .y = 64, .expect = E1(422), .reason = "SEGMENT_INVALID",
     .detail = "bad_magic"},
    {"node assign: header only", NODE, "POST", "/v1/assign", PB, bld_assign, .a = "hdronly",
     .b = "file://%R/hdronly.seg", .x = 1000, .y = 64, .expect = E1(422),
     .reason = "SEGMENT_INVALID", .detail = "truncated"},
    {"node assign: file cut short", NODE, "POST", "/v1/assign", PB, bld_assign, .a = "cut",
     .b = "file://%R/cut.seg", .x = 1000, .y = 64, .expect = E1(422), .reason = "SEGMENT_INVALID",
     .detail = "truncated"},
    {"node assign: held id, another uri", NODE, "POST", "/v1/assign", PB, bld_assign, .a = "good",
     .b = "file://%R/good2.seg", .x = 500, .y = 32, .expect = E1(409)},
    /* Accepted (the header is fine), then FAILED by the checksum: see check_failed_load(). */
    {"node assign: a flipped data byte", NODE, "POST", "/v1/assign", PB, bld_assign, .a = "flipped",
     .b = "file://%R/flipped.seg", .x = 1000, .y = 64, .expect = E1(202),
     .after = AFTER_FAILED_LOAD},
    /* A refused retry must leave the FAILED entry as it was ("leaves no trace"). */
    {"node assign: FAILED id again, missing file", NODE, "POST", "/v1/assign", PB, bld_assign,
     .a = "flipped", .b = "file://%R/missing.seg", .x = 1000, .y = 64, .expect = E1(422),
     .reason = "SEGMENT_INVALID"},

    /* ---- node: queries ---- */
    {"node query: aggregate 7", NODE, "POST", "/v1/query", PB, bld_query, .a = "good", .x = 7,
     .expect = E1(400), .detail = "aggregate"},
    {"node query: aggregate 0", NODE, "POST", "/v1/query", PB, bld_query, .a = "good", .x = 0,
     .expect = E1(400), .detail = "aggregate"},
    {"node query: 1025 ids", NODE, "POST", "/v1/query", PB, bld_query_many, .x = 1025,
     .expect = E1(400), .detail = "1024"},
    {"node query: duplicate ids", NODE, "POST", "/v1/query", PB, bld_query, .a = "good,good",
     .x = WIRE_AGG_SUM, .expect = E1(400), .detail = "duplicate"},
    {"node query: no ids", NODE, "POST", "/v1/query", PB, bld_query, .a = "", .x = WIRE_AGG_SUM,
     .expect = E1(400), .detail = "empty"},
    {"node query: unknown segment", NODE, "POST", "/v1/query", PB, bld_query, .a = "good,nope",
     .x = WIRE_AGG_SUM, .expect = E1(404), .detail = "nope"},
    {"node query: a FAILED segment", NODE, "POST", "/v1/query", PB, bld_query, .a = "flipped",
     .x = WIRE_AGG_SUM, .expect = E1(404)},
    {"node query: bytes column", NODE, "POST", "/v1/query", PB, bld_query, .a = "good",
     .x = WIRE_AGG_SUM, .b = "payload", .expect = E1(400)},
    {"node query: column with ';'", NODE, "POST", "/v1/query", PB, bld_query, .a = "good",
     .x = WIRE_AGG_SUM, .b = "val;ue", .expect = E1(400)},
    {"node query: lo > hi", NODE, "POST", "/v1/query", PB, bld_query, .a = "good",
     .x = WIRE_AGG_COUNT, .c = "key", .y = 10, .z = 5, .expect = E1(400), .detail = "greater"},
    {"node query: bad id in the list", NODE, "POST", "/v1/query", PB, bld_query, .a = "good,../x",
     .x = WIRE_AGG_SUM, .expect = E1(400)},
    {"node query: garbage", NODE, "POST", "/v1/query", PB, bld_bytes, .a = GARBAGE,
     .expect = E1(400)},

    /* ---- node: paths and methods ---- */
    {"node DELETE unknown segment", NODE, "DELETE", "/v1/segments/nope", NULL, bld_none,
     .expect = E1(404)},
    {"node DELETE ..", NODE, "DELETE", "/v1/segments/..", NULL, bld_none, .expect = E1(400)},
    {"node DELETE empty id", NODE, "DELETE", "/v1/segments/", NULL, bld_none, .expect = E1(400)},
    {"node DELETE %2F in id", NODE, "DELETE", "/v1/segments/a%2Fb", NULL, bld_none,
     .expect = E1(400)},
    {"node DELETE id/extra", NODE, "DELETE", "/v1/segments/good/extra", NULL, bld_none,
     .expect = E1(400)},
    {"node DELETE 129-byte id", NODE, "DELETE", "/v1/segments/" ID129, NULL, bld_none,
     .expect = E1(400)},
    {"node GET unknown path", NODE, "GET", "/v1/nope", NULL, bld_none, .expect = E1(404)},
    {"node GET /", NODE, "GET", "/", NULL, bld_none, .expect = E1(404)},
    {"node POST /v1/status", NODE, "POST", "/v1/status", PB, bld_none, .expect = E1(405)},
    {"node GET /v1/assign", NODE, "GET", "/v1/assign", NULL, bld_none, .expect = E1(405)},
    {"node GET /v1/segments/good", NODE, "GET", "/v1/segments/good", NULL, bld_none,
     .expect = E1(405)},
    {"node PUT /v1/assign", NODE, "PUT", "/v1/assign", PB, bld_none, .expect = E2(501, 405)},
    {"node GET /healthz%00", NODE, "GET", "/healthz%00", NULL, bld_none, .expect = E1(400)},
    {"node GET /v1/status%00x", NODE, "GET", "/v1/status%00x", NULL, bld_none, .expect = E1(400)},
    {"node DELETE /v1/segments/good%00", NODE, "DELETE", "/v1/segments/good%00", NULL, bld_none,
     .expect = E1(400)},

    /* ---- node: raw bytes ---- */
    {"node raw: HEAD", NODE, NULL, NULL, NULL, bld_bytes,
     .a = "HEAD /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", .expect = E2(501, 405)},
    {"node raw: PATCH", NODE, NULL, NULL, NULL, bld_bytes,
     .a = "PATCH /v1/assign HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
     .expect = E2(501, 405)},
    {"node raw: OPTIONS *", NODE, NULL, NULL, NULL, bld_bytes,
     .a = "OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
     .expect = E3(501, 400, 405)},
    {"node raw: 20 KiB header", NODE, NULL, NULL, NULL, bld_raw_big_header, .x = 20u << 10,
     .expect = E2(431, CLOSED)},
    {"node raw: 20 KiB request line", NODE, NULL, NULL, NULL, bld_raw_big_line, .x = 20u << 10,
     .expect = E2(414, CLOSED)},
    {"node raw: HTTP/0.9 request", NODE, NULL, NULL, NULL, bld_bytes, .a = "GET /healthz\r\n\r\n",
     .expect = RAW_OR_CLOSE},
    {"node raw: garbage request line", NODE, NULL, NULL, NULL, bld_bytes,
     .a = "GARBAGE GARBAGE GARBAGE GARBAGE\r\n\r\n", .expect = RAW_OR_CLOSE},
    {"node raw: binary junk", NODE, NULL, NULL, NULL, bld_bytes, .a = JUNK, .alen = LEN(JUNK),
     .expect = RAW_OR_CLOSE},
    {"node raw: HTTP/2 preface", NODE, NULL, NULL, NULL, bld_bytes,
     .a = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", .expect = E3(400, 501, CLOSED)},
    {"node raw: HTTP/7.0", NODE, NULL, NULL, NULL, bld_bytes,
     .a = "GET /healthz HTTP/7.0\r\nHost: x\r\n\r\n", .expect = RAW_OR_CLOSE},
    {"node raw: header without a colon", NODE, NULL, NULL, NULL, bld_bytes,
     .a = "GET /healthz HTTP/1.1\r\nHost x\r\nJunk\r\n\r\n", .expect = RAW_OR_CLOSE},
    {"node raw: negative Content-Length", NODE, NULL, NULL, NULL, bld_bytes,
     .a = "POST /v1/assign HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
          "Content-Length: -5\r\n\r\n",
     .expect = RAW_OR_CLOSE},
    {"node raw: Content-Length 2^63", NODE, NULL, NULL, NULL, bld_bytes,
     .a = "POST /v1/assign HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
          "Content-Length: 9223372036854775808\r\n\r\n",
     .expect = E3(413, 400, CLOSED)},
    {"node raw: chunk of 2^64-1 bytes", NODE, NULL, NULL, NULL, bld_bytes,
     .a = "POST /v1/assign HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
          "Transfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFF\r\n",
     .expect = E3(413, 400, CLOSED)},
    {"node raw: pipelined garbage after a valid request", NODE, NULL, NULL, NULL, bld_bytes,
     .a = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGARBAGE\x01\xff /// HTTP/9\r\n\r\n",
     .expect = E1(200), .after = AFTER_PIPELINE},
    /* The query string must not turn a drain into an undrain. */
    {"node POST /v1/drain?now=1", NODE, "POST", "/v1/drain?now=1", NULL, bld_none,
     .expect = E1(200), .detail = "DRAINING", .after = AFTER_DRAINING},

    /* ---- coordinator: POST /v1/segments ---- */
    {"coord segments: garbage protobuf", COORD, "POST", "/v1/segments", PB, bld_bytes, .a = GARBAGE,
     .expect = E1(400), .detail = "not a valid"},
    {"coord segments: truncated protobuf", COORD, "POST", "/v1/segments", PB, bld_batch_cut,
     .a = "cut-1|file:///nonexistent/cut-1.seg|100|64|1", .expect = E1(400)},
    {"coord segments: empty body", COORD, "POST", "/v1/segments", PB, bld_none, .expect = E1(400),
     .detail = "segments: empty"},
    {"coord segments: wrong Content-Type", COORD, "POST", "/v1/segments", "text/plain", bld_batch,
     .a = "ct-1|file:///nonexistent/ct-1.seg|100|64|1", .expect = E1(415)},
    {"coord segments: no Content-Type", COORD, "POST", "/v1/segments", NULL, bld_batch,
     .a = "ct-2|file:///nonexistent/ct-2.seg|100|64|1", .expect = E1(415)},
    {"coord segments: 5 MiB body", COORD, "POST", "/v1/segments", PB, bld_zeros, .x = 5u << 20,
     .expect = E1(413)},
    {"coord segments: 10,001 entries", COORD, "POST", "/v1/segments", PB, bld_batch_many,
     .x = 10001, .expect = E1(400), .detail = "10000"},
    {"coord segments: duplicate ids in one batch", COORD, "POST", "/v1/segments", PB, bld_batch,
     .a = "dup-1|file:///nonexistent/dup-1.seg|100|64|1;dup-2|file:///nonexistent/dup-2.seg|100|64|"
          "1;dup-1|file:///nonexistent/dup-1.seg|100|64|1",
     .expect = E1(400), .detail = "segments[2]: duplicate of segments[0]"},
    {"coord segments: replication 17", COORD, "POST", "/v1/segments", PB, bld_batch,
     .a = "repl-0|file:///nonexistent/r0.seg|100|64|1;repl-1|file:///nonexistent/r1.seg|100|64|17",
     .expect = E1(400), .detail = "replication"},
    {"coord segments: re-register with another row_count", COORD, "POST", "/v1/segments", PB,
     bld_batch,
     .a = "fresh-1|file:///nonexistent/fresh-1.seg|100|64|1;c-seg-0|file:///nonexistent/"
          "c-seg-0.seg|101|64|1",
     .expect = E1(409), .detail = "c-seg-0"},
    {"coord segments: re-register with another uri", COORD, "POST", "/v1/segments", PB, bld_batch,
     .a = "c-seg-1|file:///nonexistent/other.seg|100|64|1", .expect = E1(409)},
    {"coord segments: re-register with another replication", COORD, "POST", "/v1/segments", PB,
     bld_batch,
     .a = "fresh-2|file:///nonexistent/fresh-2.seg|100|64|1;c-seg-2|file:///nonexistent/"
          "c-seg-2.seg|100|64|2",
     .expect = E1(409)},
    {"coord segments: row_count 0", COORD, "POST", "/v1/segments", PB, bld_batch,
     .a = "rc0|file:///nonexistent/rc0.seg|0|64|1", .expect = E1(400), .detail = "row_count"},
    {"coord segments: row_count 2^63", COORD, "POST", "/v1/segments", PB, bld_batch,
     .a = "rc63|file:///nonexistent/rc63.seg|9223372036854775808|64|1", .expect = E1(400),
     .detail = "row_count"},
    {"coord segments: avg_row_size 0", COORD, "POST", "/v1/segments", PB, bld_batch,
     .a = "sz0|file:///nonexistent/sz0.seg|100|0|1", .expect = E1(400), .detail = "avg_row_size"},
    {"coord segments: empty id", COORD, "POST", "/v1/segments", PB, bld_batch,
     .a = "|file:///nonexistent/e.seg|100|64|1", .expect = E1(400), .detail = "empty"},
    {"coord segments: 129-byte id", COORD, "POST", "/v1/segments", PB, bld_batch,
     .a = ID129 "|file:///nonexistent/l.seg|100|64|1", .expect = E1(400), .detail = "129 bytes"},
    {"coord segments: id '../x'", COORD, "POST", "/v1/segments", PB, bld_batch,
     .a = "../x|file:///nonexistent/x.seg|100|64|1", .expect = E1(400)},
    {"coord segments: id with a NUL byte", COORD, "POST", "/v1/segments", PB, bld_batch,
     .a = NUL_BATCH, .alen = LEN(NUL_BATCH), .expect = E1(400)},
    {"coord segments: unicode id", COORD, "POST", "/v1/segments", PB, bld_batch,
     .a = "s\xc3\xa9g|file:///nonexistent/u.seg|100|64|1", .expect = E1(400)},
    {"coord segments: http:// uri", COORD, "POST", "/v1/segments", PB, bld_batch,
     .a = "h1|http://127.0.0.1:1/h1.seg|100|64|1", .expect = E1(400)},
    {"coord segments: relative uri", COORD, "POST", "/v1/segments", PB, bld_batch,
     .a = "h2|file://h2.seg|100|64|1", .expect = E1(400)},
    {"coord segments: uri with %00", COORD, "POST", "/v1/segments", PB, bld_batch,
     .a = "h3|file:///nonexistent/h3%00.seg|100|64|1", .expect = E1(400)},
    {"coord segments: uri naming a directory", COORD, "POST", "/v1/segments", PB, bld_batch,
     .a = "h4|file:///nonexistent/|100|64|1", .expect = E1(400)},
    {"coord segments: valid specs then a bad one", COORD, "POST", "/v1/segments", PB, bld_batch,
     .a = "ok-1|file:///nonexistent/ok-1.seg|100|64|1;ok-2|file:///nonexistent/ok-2.seg|100|64|1;"
          "bad-3|file://bad-3.seg|100|64|1",
     .expect = E1(400), .detail = "segments[2]"},

    /* ---- coordinator: claims and reads ---- */
    {"coord claim: max_segments 0", COORD, "POST", "/v1/claim", PB, bld_claim, .a = "nobody",
     .x = 0, .expect = E1(400), .detail = "max_segments"},
    {"coord claim: max_segments 10001", COORD, "POST", "/v1/claim", PB, bld_claim, .a = "nobody",
     .x = 10001, .expect = E1(400), .detail = "max_segments"},
    {"coord claim: unknown node", COORD, "POST", "/v1/claim", PB, bld_claim, .a = "nobody", .x = 5,
     .expect = E1(409)},
    {"coord claim: bad node id", COORD, "POST", "/v1/claim", PB, bld_claim, .a = "../n", .x = 5,
     .expect = E1(400)},
    {"coord claim: garbage", COORD, "POST", "/v1/claim", PB, bld_bytes, .a = GARBAGE,
     .expect = E1(400)},
    {"coord GET unknown segment", COORD, "GET", "/v1/segments/nope", NULL, bld_none,
     .expect = E1(404), .detail = "nope"},
    {"coord GET segment %2e%2e", COORD, "GET", "/v1/segments/%2e%2e", NULL, bld_none,
     .expect = E1(400)},
    {"coord GET segment a/b", COORD, "GET", "/v1/segments/c-seg-0/x", NULL, bld_none,
     .expect = E1(400)},
    {"coord GET segment %00", COORD, "GET", "/v1/segments/c-seg-0%00", NULL, bld_none,
     .expect = E1(400)},
    {"coord GET segments?state=BOGUS", COORD, "GET", "/v1/segments?state=BOGUS", NULL, bld_none,
     .expect = E1(400)},
    {"coord GET segments?state=%ZZ", COORD, "GET", "/v1/segments?state=%ZZ", NULL, bld_none,
     .expect = E1(400)},
    {"coord GET segments?limit=0", COORD, "GET", "/v1/segments?limit=0", NULL, bld_none,
     .expect = E1(400)},
    {"coord GET segments?limit=abc", COORD, "GET", "/v1/segments?limit=abc", NULL, bld_none,
     .expect = E1(400)},
    {"coord GET segments?limit=10^23", COORD, "GET", "/v1/segments?limit=100000000000000000000000",
     NULL, bld_none, .expect = E1(400)},
    {"coord GET events?segment=../x", COORD, "GET", "/v1/events?segment=../x", NULL, bld_none,
     .expect = E1(400)},
    {"coord GET events?limit=-1", COORD, "GET", "/v1/events?limit=-1", NULL, bld_none,
     .expect = E1(400)},
    {"coord drain unknown node", COORD, "POST", "/v1/nodes/nope/drain", NULL, bld_none,
     .expect = E1(404), .detail = "nope"},
    {"coord drain bad node id", COORD, "POST", "/v1/nodes/.bad/drain", NULL, bld_none,
     .expect = E1(400)},
    {"coord drain empty node id", COORD, "POST", "/v1/nodes//drain", NULL, bld_none,
     .expect = E1(400)},
    {"coord drain %2F in node id", COORD, "POST", "/v1/nodes/a%2Fb/drain", NULL, bld_none,
     .expect = E1(400)},
    {"coord drain 200-byte node id", COORD, "POST", "/v1/nodes/" ID200 "/drain", NULL, bld_none,
     .expect = E2(400, 404)},
    {"coord node action unknown", COORD, "POST", "/v1/nodes/nope/explode", NULL, bld_none,
     .expect = E1(404)},
    {"coord GET /v1/nodes/x/drain", COORD, "GET", "/v1/nodes/x/drain", NULL, bld_none,
     .expect = E1(405)},
    {"coord GET unknown path", COORD, "GET", "/v1/nope", NULL, bld_none, .expect = E1(404)},
    {"coord DELETE /v1/status", COORD, "DELETE", "/v1/status", NULL, bld_none, .expect = E1(405)},
    {"coord DELETE unknown segment", COORD, "DELETE", "/v1/segments/nope", NULL, bld_none,
     .expect = E1(404)},
    {"coord DELETE segment/extra", COORD, "DELETE", "/v1/segments/c-seg-0/x", NULL, bld_none,
     .expect = E1(404)},
    {"coord DELETE bad segment id", COORD, "DELETE", "/v1/segments/bad!id", NULL, bld_none,
     .expect = E1(400)},
    {"coord DELETE /v1/segments", COORD, "DELETE", "/v1/segments", NULL, bld_none,
     .expect = E1(405)},
    {"coord PUT /v1/segments", COORD, "PUT", "/v1/segments", PB, bld_none, .expect = E2(501, 405)},
    {"coord GET /v1/status%00", COORD, "GET", "/v1/status%00", NULL, bld_none, .expect = E1(400)},
    {"coord raw: 20 KiB header", COORD, NULL, NULL, NULL, bld_raw_big_header, .x = 20u << 10,
     .expect = E2(431, CLOSED)},
    {"coord raw: 20 KiB request line", COORD, NULL, NULL, NULL, bld_raw_big_line, .x = 20u << 10,
     .expect = E2(414, CLOSED)},
    {"coord raw: HTTP/0.9 request", COORD, NULL, NULL, NULL, bld_bytes,
     .a = "GET /v1/status\r\n\r\n", .expect = RAW_OR_CLOSE},
    {"coord raw: garbage", COORD, NULL, NULL, NULL, bld_bytes, .a = NOT_TLS, .alen = LEN(NOT_TLS),
     .expect = RAW_OR_CLOSE},
    {"coord raw: pipelined garbage after a valid request", COORD, NULL, NULL, NULL, bld_bytes,
     .a = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n\x7f\x7f\x7f BAD\r\n\r\n", .expect = E1(200),
     .after = AFTER_PIPELINE},

    /* ---- coordinator: node reports (last: a wrongly accepted one adds a node) ---- */
    {"coord report: garbage", COORD, "POST", "/v1/report", PB, bld_bytes, .a = GARBAGE,
     .expect = E1(400)},
    {"coord report: addr without a port", COORD, "POST", "/v1/report", PB, bld_report,
     .a = "ghost-1", .b = "nocolon", .x = WIRE_NODE_SERVING, .expect = E1(400), .detail = "addr"},
    {"coord report: empty addr", COORD, "POST", "/v1/report", PB, bld_report, .a = "ghost-2",
     .b = "", .x = WIRE_NODE_SERVING, .expect = E1(400), .detail = "addr"},
    {"coord report: unknown state 9", COORD, "POST", "/v1/report", PB, bld_report, .a = "ghost-3",
     .b = "127.0.0.1:1", .x = 9, .expect = E1(400), .detail = "state"},
    {"coord report: state 0", COORD, "POST", "/v1/report", PB, bld_report, .a = "ghost-4",
     .b = "127.0.0.1:1", .x = 0, .expect = E1(400), .detail = "state"},
    {"coord report: empty node id", COORD, "POST", "/v1/report", PB, bld_report, .a = "",
     .b = "127.0.0.1:1", .x = WIRE_NODE_SERVING, .expect = E1(400)},
    {"coord report: node id '../n'", COORD, "POST", "/v1/report", PB, bld_report, .a = "../n",
     .b = "127.0.0.1:1", .x = WIRE_NODE_SERVING, .expect = E1(400)},
    {"coord report: a segment in state 7", COORD, "POST", "/v1/report", PB, bld_report,
     .a = "ghost-5", .b = "127.0.0.1:1", .x = WIRE_NODE_SERVING, .c = "c-seg-0", .y = 7,
     .expect = E1(400), .detail = "state"},
    {"coord report: 256-byte addr", COORD, "POST", "/v1/report", PB, bld_report, .a = "ghost-6",
     .b = A128 A128 ":1", .x = WIRE_NODE_SERVING, .expect = E1(400), .detail = "addr"},
    /* An addr nobody can connect to must not make a node join (UP, counted, placed on). */
    {"coord report: addr 'x:y'", COORD, "POST", "/v1/report", PB, bld_report, .a = "ghost-7",
     .b = "x:y", .x = WIRE_NODE_SERVING, .expect = E1(400), .detail = "addr"},
    {"coord report: addr port 99999", COORD, "POST", "/v1/report", PB, bld_report, .a = "ghost-8",
     .b = "127.0.0.1:99999", .x = WIRE_NODE_SERVING, .expect = E1(400), .detail = "addr"},
    /* Addrs the wire check lets through and the HTTP client cannot parse: 400, nothing joins. */
    {"coord report: addr 'h:+7001'", COORD, "POST", "/v1/report", PB, bld_report, .a = "ghost-9",
     .b = "h:+7001", .x = WIRE_NODE_SERVING, .expect = E1(400), .detail = "addr"},
    {"coord report: addr 'h:000080'", COORD, "POST", "/v1/report", PB, bld_report, .a = "ghost-10",
     .b = "h:000080", .x = WIRE_NODE_SERVING, .expect = E1(400), .detail = "addr"},
    {"coord report: addr '[]:80'", COORD, "POST", "/v1/report", PB, bld_report, .a = "ghost-11",
     .b = "[]:80", .x = WIRE_NODE_SERVING, .expect = E1(400), .detail = "addr"},
};
#define NROWS (sizeof(rows) / sizeof(rows[0]))

/*
 * Stops a daemon (NULL-safe) and frees it. A clean SIGTERM exit is 0; a
 * crash, or an ASan report or leak in the sanitizer build, is not.
 */
static void stop_checked(struct harness_proc **pp, const char *name)
{
    int rc;

    if (*pp == NULL)
        return;
    rc = harness_proc_stop(*pp);
    if (rc != 0) {
        harness_proc_dump_log(*pp);
        note_failure("%s exited with %d after SIGTERM", name, rc);
    }
    harness_proc_free(*pp);
    *pp = NULL;
}

/*
 * Stops every daemon of a test and removes its directory. Tests call it
 * before their final assertion, because a failed assertion ends a Check
 * test process at once (no teardown, no atexit), which would leave the
 * directory behind; the teardowns call it again, as a no-op, in case a test
 * ended early.
 */
static void cleanup(void)
{
    stop_checked(&node, "sluice-node");
    stop_checked(&node_b, "sluice-node node-b");
    stop_checked(&node_x, "sluice-node node-x");
    stop_checked(&coord, "sluice-coord");
    if (dir != NULL)
        harness_dir_remove(dir);
    free(dir);
    free(storage);
    free(outside);
    free(data);
    dir = storage = outside = data = NULL;
}

/* ---- the battery -------------------------------------------------------- */

static void setup_battery(void)
{
    char *p, *q;
    uint8_t *bytes;
    size_t len;
    struct segment_header hdr;
    struct http_response r;
    char real[PATH_MAX];

    failures_reset();
    dir = harness_dir_new("sluice-hostile");
    p = xasprintf("%s/storage", dir);
    ck_assert_int_eq(mkdir(p, 0755), 0);
    ck_assert_ptr_nonnull(realpath(p, real));
    storage = xstrdup(real);
    free(p);
    outside = xasprintf("%s/outside", dir);
    ck_assert_int_eq(mkdir(outside, 0755), 0);
    data = xasprintf("%s/data", dir);

    /* Good segments, and everything that is not one. */
    p = xasprintf("%s/good.seg", storage);
    write_segment(p, 1000, 64, 1);
    bytes = read_file(p, &len);
    free(p);
    ck_assert_int_eq(segment_parse_header(bytes, len, len, &hdr, NULL, 0), 0);
    p = xasprintf("%s/hdronly.seg", storage);
    write_file(p, bytes, hdr.header_size);
    free(p);
    p = xasprintf("%s/cut.seg", storage);
    write_file(p, bytes, len - 100);
    free(p);
    bytes[hdr.columns[0].offset + 8] ^= 0x40; /* inside the first column's data */
    p = xasprintf("%s/flipped.seg", storage);
    write_file(p, bytes, len);
    free(p);
    free(bytes);
    p = xasprintf("%s/good2.seg", storage);
    write_segment(p, 500, 32, 2);
    free(p);
    p = xasprintf("%s/junk.seg", storage);
    {
        char junk[512];
        memset(junk, 'J', sizeof(junk));
        write_file(p, junk, sizeof(junk));
    }
    free(p);
    p = xasprintf("%s/outside.seg", outside);
    write_segment(p, 10, 64, 3);
    q = xasprintf("%s/escape.seg", storage);
    ck_assert_int_eq(symlink(p, q), 0);
    free(p);
    free(q);
    p = xasprintf("%s/zero.seg", storage);
    ck_assert_int_eq(symlink("/dev/zero", p), 0);
    free(p);
    p = xasprintf("%s/dir.seg", storage);
    ck_assert_int_eq(mkdir(p, 0755), 0);
    free(p);
    p = xasprintf("%s/fifo.seg", storage);
    ck_assert_int_eq(mkfifo(p, 0644), 0);
    free(p);

    {
        const char *args[] = {"--admit-budget=64M", "--disk-reserve=0", "--max-loads=64", NULL};
        node = harness_node_start_calm(storage, data, args);
    }
    ck_assert_ptr_nonnull(node);
    {
        char *body_uri = xasprintf("file://%s/good.seg", storage);
        struct buf b = {0};
        buf_put(&b, "", 0);
        pb_str(&b, 1, "good");
        pb_str(&b, 2, body_uri);
        pb_u64(&b, 3, 1000);
        pb_u64(&b, 4, 64);
        ck_assert_int_eq(http_fetch(harness_proc_addr(node), "POST", "/v1/assign", PB, b.p, b.len,
                                    NULL, 10000, &r),
                         0);
        ck_assert_int_eq(r.status, 202);
        http_response_done(&r);
        buf_free(&b);
        free(body_uri);
    }
    for (int i = 0;
         i < 500 && node_seg(harness_proc_addr(node), NULL, "good", NULL) != WIRE_SEG_LOADED; i++)
        usleep(20000);
    ck_assert_int_eq(node_seg(harness_proc_addr(node), NULL, "good", NULL), WIRE_SEG_LOADED);

    /* A coordinator with no nodes: what is registered stays PENDING, so its state holds still. */
    p = xasprintf("%s/coord", dir);
    coord = harness_coord_start(p, NULL);
    free(p);
    ck_assert_ptr_nonnull(coord);
    {
        static const struct row reg = {
            .a = "c-seg-0|file:///nonexistent/c-seg-0.seg|100|64|1;c-seg-1|file:///nonexistent/"
                 "c-seg-1.seg|100|64|1;c-seg-2|file:///nonexistent/c-seg-2.seg|100|64|1"};
        struct wire_batch_response br;
        struct wire_error err;
        struct buf b = {0};
        bld_batch(&reg, &b);
        ck_assert_int_eq(http_fetch(harness_proc_addr(coord), "POST", "/v1/segments", PB, b.p,
                                    b.len, NULL, 10000, &r),
                         0);
        ck_assert_int_eq(r.status, 200);
        ck_assert_int_eq(wire_batch_response_decode(r.body, r.body_len, &br, &err), 0);
        ck_assert_uint_eq(br.registered, 3);
        http_response_done(&r);
        buf_free(&b);
    }
}

static void teardown_battery(void)
{
    cleanup();
}

static bool status_ok(const struct row *r, int got)
{
    for (int i = 0; i < 3 && r->expect[i] != 0; i++)
        if (r->expect[i] == got)
            return true;
    return false;
}

/*
 * A row that was wrongly accepted starts a load; wait for it to end, so that
 * its LOADING -> LOADED does not show up as a change made by the next row.
 */
static void node_settle(void)
{
    for (int i = 0; i < 500; i++) {
        char *fp = node_fingerprint(harness_proc_addr(node), NULL, NULL);
        bool loading = fp == NULL || strstr(fp, "=LOADING/") != NULL;

        free(fp);
        if (!loading)
            return;
        usleep(20000);
    }
}

static char *fingerprint(const struct row *r, const char *skip)
{
    return r->target == NODE ? node_fingerprint(harness_proc_addr(node), NULL, skip)
                             : coord_fingerprint(harness_proc_addr(coord), NULL);
}

/*
 * What "state unchanged" means for the flipped-byte row: the header is
 * valid, so the node acknowledges (202) and finds the mismatch only while
 * loading. The row must add exactly one entry, (flipped, FAILED,
 * SEGMENT_INVALID), and change nothing else: every other (segment, state,
 * reason) is as before, and no copy of it is left in the data directory.
 * Returns why it is not so, or NULL.
 */
static const char *check_failed_load(const char *before, char *why, size_t why_len)
{
    const char *addr = harness_proc_addr(node);
    enum wire_reason reason = WIRE_REASON_NONE;
    int st = WIRE_SEG_LOADING;
    char *rest, *copy;
    bool same;

    for (int i = 0; i < 1000 && (st = node_seg(addr, NULL, "flipped", &reason)) == WIRE_SEG_LOADING;
         i++)
        usleep(20000);
    if (st != WIRE_SEG_FAILED || reason != WIRE_REASON_SEGMENT_INVALID) {
        snprintf(why, why_len, "flipped is %s/%s, not FAILED/SEGMENT_INVALID",
                 st < 0 ? "(no answer)" : wire_segment_state_name((enum wire_segment_state)st),
                 reason_name(reason));
        return why;
    }
    rest = node_fingerprint(addr, NULL, "flipped");
    same = rest != NULL && strcmp(rest, before) == 0;
    free(rest);
    if (!same) {
        snprintf(why, why_len, "other segments changed");
        return why;
    }
    copy = xasprintf("%s/segments/flipped.seg", data);
    same = access(copy, F_OK) < 0;
    free(copy);
    if (!same) {
        snprintf(why, why_len, "a copy of the corrupt segment stayed in the data directory");
        return why;
    }
    return NULL;
}

/* Sends one row and judges the answer, the daemon's health and its state. */
static void run_row(const struct row *r)
{
    const char *addr = harness_proc_addr(r->target == NODE ? node : coord);
    char *before, *after, *path = NULL, *text = NULL, why[512] = "";
    const char *problem = NULL;
    struct http_response hr;
    struct buf body = {0};
    int got, second = 0;
    uint64_t t0, elapsed;
    size_t plen = 0;

    memset(&hr, 0, sizeof(hr));
    if (r->target == NODE)
        node_settle();
    before = fingerprint(r, NULL);
    ck_assert_msg(before != NULL, "%s: no state before the row", r->name);
    r->build(r, &body);
    t0 = now_ms();
    if (r->method == NULL) {
        got = raw_request(addr, body.p, body.len, &second, &text);
    } else {
        path = expand(r->path, strlen(r->path), &plen);
        got = http_fetch(addr, r->method, path, r->ctype, body.p, body.len, NULL, 15000, &hr);
        if (got == 0) {
            got = hr.status;
            text = xmalloc(hr.body_len + 1);
            memcpy(text, hr.body, hr.body_len + 1);
        } else if (got == -ECONNRESET) {
            got = CLOSED;
        }
    }
    elapsed = now_ms() - t0;

    if (!status_ok(r, got)) {
        snprintf(why, sizeof(why), "status %d", got);
        problem = why;
    } else if (r->reason != NULL && strcmp(hr.reason, r->reason) != 0) {
        snprintf(why, sizeof(why), "X-Sluice-Reason \"%s\", expected %s", hr.reason, r->reason);
        problem = why;
    } else if (r->detail != NULL &&
               (text == NULL || memmem(text, hr.body_len != 0 ? hr.body_len : strlen(text),
                                       r->detail, strlen(r->detail)) == NULL)) {
        snprintf(why, sizeof(why), "answer without \"%s\": %.200s", r->detail,
                 text != NULL ? text : "");
        problem = why;
    } else if (r->after == AFTER_FAST && elapsed > 2000) {
        snprintf(why, sizeof(why), "answered after %" PRIu64 " ms", elapsed);
        problem = why;
    } else if (r->after == AFTER_PIPELINE && second != 400 && second != CLOSED) {
        snprintf(why, sizeof(why), "pipelined garbage got %d, not 400 or a close", second);
        problem = why;
    }
    if (!healthy(addr) && problem == NULL)
        problem = "GET /healthz failed afterwards";
    if (r->after == AFTER_DRAINING) {
        /* Undo whatever the row did, so that later rows meet a serving node. */
        (void)harness_send(addr, "POST", "/v1/undrain", NULL);
    }
    if (problem == NULL && r->after == AFTER_FAILED_LOAD) {
        problem = check_failed_load(before, why, sizeof(why));
    } else if (problem == NULL) {
        after = fingerprint(r, NULL);
        if (after == NULL || strcmp(before, after) != 0) {
            snprintf(why, sizeof(why), "state changed: before \"%.150s\" after \"%.150s\"", before,
                     after != NULL ? after : "(no answer)");
            problem = why;
        }
        free(after);
    }
    if (getenv("HOSTILE_VERBOSE") != NULL) {
        /* Protobuf answers are shown by their message or detail, text ones as they are. */
        struct wire_assign_response ar;
        struct wire_error e;
        const char *shown = text != NULL ? text : "";

        if (strcmp(hr.content_type, PB) == 0 && r->path != NULL &&
            strcmp(r->path, "/v1/assign") == 0 &&
            wire_assign_response_decode(hr.body, hr.body_len, &ar, &e) == 0)
            shown = ar.detail;
        else if (strcmp(hr.content_type, PB) == 0 && got >= 400 &&
                 wire_error_decode(hr.body, hr.body_len, &e) == 0)
            shown = e.message;
        fprintf(stderr, "check_hostile: row [%s] %s: %d %s in %" PRIu64 " ms: %.160s\n",
                r->target == NODE ? "node" : "coord", r->name, got, hr.reason, elapsed, shown);
    }
    verdict(problem == NULL, "[%s] %s: %s (expected %d%s%s)", r->target == NODE ? "node" : "coord",
            r->name, problem != NULL ? problem : "", r->expect[0],
            r->expect[1] != 0 ? " or another listed" : "", r->method == NULL ? ", raw" : "");
    http_response_done(&hr);
    buf_free(&body);
    free(text);
    free(path);
    free(before);
}

START_TEST(test_battery)
{
    unsigned tried0 = tally->tried, ok0 = tally->ok;

    for (size_t i = 0; i < NROWS; i++)
        run_row(&rows[i]);
    fprintf(stderr, "check_hostile: battery: %u rows, %u answered as expected\n",
            tally->tried - tried0, tally->ok - ok0);
    ck_assert_uint_ge(NROWS, 40);
    cleanup();
    assert_no_failures();
}
END_TEST

/* ---- auth --------------------------------------------------------------- */

static char *token_path, *other_token_path;

static void setup_auth(void)
{
    failures_reset();
    dir = harness_dir_new("sluice-hostile-auth");
    storage = xasprintf("%s/storage", dir);
    ck_assert_int_eq(mkdir(storage, 0755), 0);
    token_path = write_token_file("token", TOKEN);
    other_token_path = write_token_file("other-token", "another-token-entirely-0123456789");
}

static void teardown_auth(void)
{
    cleanup();
    free(token_path);
    free(other_token_path);
    token_path = other_token_path = NULL;
}

static struct harness_proc *start_auth_node(const char *id, const char *tokfile)
{
    char *data_dir = xasprintf("%s/%s", dir, id), *nid = xasprintf("--node-id=%s", id);
    char *tf = xasprintf("--token-file=%s", tokfile);
    char *co = xasprintf("--coordinator=%s", harness_proc_addr(coord));
    const char *args[] = {
        nid, tf, co, "--report-interval=250ms", "--admit-budget=1G", "--disk-reserve=0", NULL};
    struct harness_proc *p = harness_node_start_calm(storage, data_dir, args);

    ck_assert_ptr_nonnull(p);
    free(data_dir);
    free(nid);
    free(tf);
    free(co);
    return p;
}

/* One request with a token (NULL: none); judged against want. */
static void auth_expect(const char *who, const char *addr, const char *method, const char *path,
                        const void *body, size_t len, const char *token, int want, const char *what)
{
    struct http_response r;
    char reason[sizeof(r.reason)] = "";
    int got;

    /* A 429 is admission saying "not now" (the host is shared): retried, as a coordinator does. */
    for (int tries = 0;; tries++) {
        got = http_fetch(addr, method, path, body != NULL ? PB : NULL, body, len, token, 10000, &r);
        if (got == 0) {
            got = r.status;
            snprintf(reason, sizeof(reason), "%s", r.reason);
            http_response_done(&r);
        }
        if (got != 429 || want == 429 || tries >= 50)
            break;
        usleep(200 * 1000);
    }
    verdict(got == want, "[%s] auth %s %s, %s: status %d %s, expected %d", who, method, path, what,
            got, reason, want);
}

/* The same request with every kind of wrong token: all 401. */
static void auth_wrong_tokens(const char *who, const char *addr, const char *method,
                              const char *path, const void *body, size_t len)
{
    char same_len[] = TOKEN, shorter[] = TOKEN, *longer = xasprintf("%sx", TOKEN);
    struct buf huge = {0};

    same_len[sizeof(same_len) - 2] ^= 0x01; /* the last character, so a prefix check fails */
    shorter[sizeof(shorter) - 2] = '\0';
    buf_fill(&huge, 'T', 4096);
    auth_expect(who, addr, method, path, body, len, NULL, 401, "no token");
    auth_expect(who, addr, method, path, body, len, same_len, 401, "wrong token, same length");
    auth_expect(who, addr, method, path, body, len, shorter, 401, "the token minus a byte");
    auth_expect(who, addr, method, path, body, len, longer, 401, "the token plus a byte");
    auth_expect(who, addr, method, path, body, len, (const char *)huge.p, 401, "a 4 KiB token");
    free(longer);
    buf_free(&huge);
}

/* Raw Authorization headers the bearer parser must refuse, with WWW-Authenticate. */
static void auth_raw_headers(const char *who, const char *addr)
{
    static const char *const headers[] = {
        "Authorization: Basic " TOKEN "\r\n",        "Authorization: Bearer\r\n",
        "Authorization: Bearer " TOKEN " extra\r\n", "Authorization: " TOKEN "\r\n",
        "X-Authorization: Bearer " TOKEN "\r\n",
    };

    for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
        char *req = xasprintf("GET /v1/status HTTP/1.1\r\nHost: x\r\n%sConnection: close\r\n\r\n",
                              headers[i]);
        char *text = NULL;
        int got = raw_request(addr, req, strlen(req), NULL, &text);
        bool www = text != NULL && strstr(text, "WWW-Authenticate: Bearer") != NULL;

        verdict(got == 401 && www, "[%s] auth raw header \"%.40s\": status %d%s", who, headers[i],
                got, www ? "" : ", no WWW-Authenticate");
        free(text);
        free(req);
    }
}

static void auth_public(const char *who, const char *addr)
{
    auth_expect(who, addr, "GET", "/healthz", NULL, 0, NULL, 200, "public, no token");
    auth_expect(who, addr, "GET", "/metrics", NULL, 0, NULL, 200, "public, no token");
    /* Unknown paths need the token too: no route is revealed. */
    auth_expect(who, addr, "GET", "/v1/nope", NULL, 0, NULL, 401, "unknown path, no token");
    auth_expect(who, addr, "GET", "/v1/nope", NULL, 0, TOKEN, 404, "unknown path, token");
}

struct coord_wait {
    uint32_t nodes_up;
    uint64_t loaded;
};

static bool coord_reached(void *arg)
{
    struct coord_wait *w = arg;
    struct wire_cluster_status st;

    return coord_status(harness_proc_addr(coord), TOKEN, &st) && st.nodes_up >= w->nodes_up &&
           st.segments_loaded >= w->loaded;
}

/* Runs `sluice-coord status --json` with extra (NULL-terminated); returns the exit code. */
static int cli_status(const char *const *extra, char **ret_out)
{
    char *co = xasprintf("--coordinator=%s", harness_proc_addr(coord));
    const char *argv[8] = {harness_bin("sluice-coord"), "status", "--json", co};
    int n = 4, rc;

    for (int i = 0; extra != NULL && extra[i] != NULL && n < 7; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    rc = harness_run(argv, ret_out);
    free(co);
    return rc;
}

START_TEST(test_auth)
{
    char *tf = xasprintf("--token-file=%s", token_path), *p, *out = NULL;
    const char *cargs[] = {tf, NULL};
    struct coord_wait two = {2, 0}, all = {2, 5};
    struct wire_cluster_status st;
    struct buf batch = {0}, assign = {0};
    struct http_response r;
    int rc;

    for (int i = 0; i < 5; i++) {
        p = xasprintf("%s/auth-%d.seg", storage, i);
        write_segment(p, 2000, 32, (uint64_t)i + 10);
        free(p);
    }
    coord = harness_coord_start(dir, cargs);
    ck_assert_ptr_nonnull(coord);
    node = start_auth_node("node-a", token_path);
    node_b = start_auth_node("node-b", token_path);
    node_x = start_auth_node("node-x", other_token_path);

    /* Nodes with the token join; the one with another token never does. */
    ck_assert_msg(harness_wait_until(coord_reached, &two, 15000),
                  "nodes with the token did not join");
    usleep(1500 * 1000); /* six report intervals of node-x */
    ck_assert(coord_status(harness_proc_addr(coord), TOKEN, &st));
    verdict(st.nodes_total == 2, "[coord] a node with another token joined: nodes_total %u",
            st.nodes_total);
    /* ...and says so, counted, in its status and metrics (not once, then silence). */
    {
        struct wire_node_status xs;
        double refused = harness_metric(harness_proc_addr(node_x),
                                        "sluice_node_report_unauthorized_total");

        verdict(refused >= 3, "[node-x] reports refused with 401 counted: %g", refused);
        ck_assert(node_status(harness_proc_addr(node_x), "another-token-entirely-0123456789",
                              &xs));
        verdict(strstr(xs.warnings, "refused by the coordinator with HTTP 401") != NULL &&
                    strstr(xs.warnings, "--token-file") != NULL,
                "[node-x] status does not say its reports are refused: \"%s\"", xs.warnings);
        wire_node_status_done(&xs);
    }

    /* The node: status, assign and public routes. */
    auth_wrong_tokens("node", harness_proc_addr(node), "GET", "/v1/status", NULL, 0);
    auth_expect("node", harness_proc_addr(node), "GET", "/v1/status", NULL, 0, TOKEN, 200,
                "the token");
    buf_put(&assign, "", 0);
    pb_str(&assign, 1, "direct");
    p = xasprintf("file://%s/auth-0.seg", storage);
    pb_str(&assign, 2, p);
    free(p);
    pb_u64(&assign, 3, 2000);
    pb_u64(&assign, 4, 32);
    auth_wrong_tokens("node-x", harness_proc_addr(node_x), "POST", "/v1/assign", assign.p,
                      assign.len);
    auth_expect("node-x", harness_proc_addr(node_x), "POST", "/v1/assign", assign.p, assign.len,
                TOKEN, 401, "the coordinator's token, not its own");
    verdict(node_seg(harness_proc_addr(node_x), "another-token-entirely-0123456789", "direct",
                     NULL) == 0,
            "[node-x] an assignment refused with 401 left a segment behind");
    auth_expect("node-x", harness_proc_addr(node_x), "POST", "/v1/assign", assign.p, assign.len,
                "another-token-entirely-0123456789", 202, "its own token");
    auth_public("node", harness_proc_addr(node));
    auth_raw_headers("node", harness_proc_addr(node));

    /* The coordinator: status, registration and public routes. */
    auth_wrong_tokens("coord", harness_proc_addr(coord), "GET", "/v1/status", NULL, 0);
    {
        static const struct row reg = {
            .a = "auth-0|file://%R/auth-0.seg|2000|32|1;auth-1|file://%R/auth-1.seg|2000|32|1;"
                 "auth-2|file://%R/auth-2.seg|2000|32|1;auth-3|file://%R/auth-3.seg|2000|32|1;"
                 "auth-4|file://%R/auth-4.seg|2000|32|1"};
        bld_batch(&reg, &batch);
    }
    auth_wrong_tokens("coord", harness_proc_addr(coord), "POST", "/v1/segments", batch.p,
                      batch.len);
    ck_assert(coord_status(harness_proc_addr(coord), TOKEN, &st));
    verdict(st.segments_total == 0, "[coord] a registration refused with 401 registered %" PRIu64,
            st.segments_total);
    auth_public("coord", harness_proc_addr(coord));
    auth_raw_headers("coord", harness_proc_addr(coord));
    ck_assert_int_eq(http_fetch(harness_proc_addr(coord), "POST", "/v1/segments", PB, batch.p,
                                batch.len, TOKEN, 10000, &r),
                     0);
    verdict(r.status == 200, "[coord] registration with the token: status %d", r.status);
    http_response_done(&r);

    /* Placement through authenticated assignments and reports. */
    verdict(harness_wait_until(coord_reached, &all, 60000),
            "[coord] the 5 segments were not all LOADED with auth on");
    ck_assert(coord_status(harness_proc_addr(coord), TOKEN, &st));
    verdict(st.segments_loaded == 5 && st.nodes_total == 2,
            "[coord] after placement: %" PRIu64 " loaded, %u nodes", st.segments_loaded,
            st.nodes_total);

    /* The CLI. */
    unsetenv("SLUICE_TOKEN");
    rc = cli_status(NULL, &out);
    verdict(rc == 1 && strstr(out, "401") != NULL && strstr(out, "has none") != NULL &&
                strstr(out, "--token-file") != NULL && strstr(out, "SLUICE_TOKEN") != NULL,
            "[cli] status without a token, and where to give it: exit %d: %s", rc, out);
    free(out);
    setenv("SLUICE_TOKEN", "not-" TOKEN, 1);
    rc = cli_status(NULL, &out);
    verdict(rc == 1 && strstr(out, "401") != NULL && strstr(out, "not this daemon's") != NULL &&
                strstr(out, "--token-file") != NULL,
            "[cli] status with a wrong SLUICE_TOKEN, and where to give it: exit %d: %s", rc, out);
    free(out);
    setenv("SLUICE_TOKEN", TOKEN, 1);
    rc = cli_status(NULL, &out);
    unsetenv("SLUICE_TOKEN");
    verdict(rc == 0 && strstr(out, "\"segments_loaded\":5") != NULL,
            "[cli] status with SLUICE_TOKEN: exit %d: %s", rc, out);
    free(out);
    {
        const char *extra[] = {tf, NULL};
        rc = cli_status(extra, &out);
        verdict(rc == 0 && strstr(out, "\"segments_loaded\":5") != NULL,
                "[cli] status with --token-file: exit %d: %s", rc, out);
        free(out);
    }

    buf_free(&batch);
    buf_free(&assign);
    free(tf);
    cleanup();
    assert_no_failures();
}
END_TEST

/* ---- slowloris and connection flood ------------------------------------- */

static void setup_limits(void)
{
    failures_reset();
    dir = harness_dir_new("sluice-hostile-limits");
    storage = xasprintf("%s/storage", dir);
    data = xasprintf("%s/data", dir);
    ck_assert_int_eq(mkdir(storage, 0755), 0);
}

static void teardown_limits(void)
{
    cleanup();
}

/*
 * Drips `prefix` then 'a's, one byte every 200 ms, until the node closes the
 * connection; healthz is fetched every third byte meanwhile. Returns the ms
 * from connect to the close (0: not closed within 10 s); *ret_ok counts the
 * healthz answers, *ret_tried the fetches.
 */
static uint64_t drip(const char *addr, const char *prefix, unsigned *ret_tried, unsigned *ret_ok)
{
    int fd = raw_connect(addr);
    uint64_t t0 = now_ms(), closed = 0;
    size_t plen = strlen(prefix);

    *ret_tried = *ret_ok = 0;
    ck_assert_int_ge(fd, 0);
    for (size_t i = 0; closed == 0 && now_ms() - t0 < 10000; i++) {
        char c = i < plen ? prefix[i] : 'a';
        struct pollfd pfd = {.fd = fd, .events = POLLIN};

        if (send(fd, &c, 1, MSG_NOSIGNAL) < 0) {
            closed = now_ms();
            break;
        }
        if (poll(&pfd, 1, 200) > 0) {
            char buf[512];
            ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
            if (n <= 0 && !(n < 0 && (errno == EAGAIN || errno == EINTR)))
                closed = now_ms();
        }
        if (i % 3 == 2 && closed == 0) {
            (*ret_tried)++;
            *ret_ok += healthy(addr);
        }
    }
    close(fd);
    return closed != 0 ? closed - t0 : 0;
}

START_TEST(test_slowloris)
{
    const char *args[] = {"--request-timeout=1s", NULL};
    const char *addr;
    unsigned tried, ok;
    uint64_t ms;
    double deadline_closes;

    node = harness_node_start(storage, data, args);
    ck_assert_ptr_nonnull(node);
    addr = harness_proc_addr(node);

    /* Headers that never end. */
    ms = drip(addr, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ", &tried, &ok);
    fprintf(stderr, "check_hostile: slowloris (headers) closed after %" PRIu64 " ms\n", ms);
    verdict(ms >= 900 && ms <= 3000,
            "[node] slowloris in the headers: closed after %" PRIu64 " ms (0: never), expected "
            "1 s + slack",
            ms);
    verdict(tried >= 1 && ok == tried, "[node] healthz during slowloris: %u of %u", ok, tried);
    /* A body that never ends. */
    ms = drip(addr,
              "POST /v1/assign HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
              "application/x-protobuf\r\nContent-Length: 100000\r\n\r\n",
              &tried, &ok);
    fprintf(stderr, "check_hostile: slowloris (body) closed after %" PRIu64 " ms\n", ms);
    verdict(ms >= 900 && ms <= 3000,
            "[node] slowloris in the body: closed after %" PRIu64 " ms (0: never)", ms);
    verdict(tried >= 1 && ok == tried, "[node] healthz during slow body: %u of %u", ok, tried);
    deadline_closes = metric(addr, "sluice_http_connections_total{outcome=\"closed_deadline\"}");
    verdict(deadline_closes >= 2, "[node] closed_deadline counter %.0f, expected >= 2",
            deadline_closes);
    verdict(healthy(addr), "[node] healthz after slowloris");
    cleanup();
    assert_no_failures();
}
END_TEST

#define FLOOD_CONNS 40
#define FLOOD_CAP   16

START_TEST(test_connection_flood)
{
    const char *args[] = {"--max-connections=16", NULL};
    int fds[FLOOD_CONNS];
    uint64_t opened[FLOOD_CONNS], closed[FLOOD_CONNS];
    unsigned prompt = 0, still_open = 0, late = 0;
    double rejected0, rejected1, live;
    const char *addr;
    struct http_response r;
    uint64_t deadline;
    bool served = false;
    int got;

    node = harness_node_start(storage, data, args);
    ck_assert_ptr_nonnull(node);
    addr = harness_proc_addr(node);
    rejected0 = metric(addr, "sluice_http_connections_total{outcome=\"rejected_cap\"}");
    ck_assert(rejected0 >= 0);
    /* Let the node release the connections of the fetches above (a sweep is 250 ms at most). */
    usleep(600 * 1000);

    for (int i = 0; i < FLOOD_CONNS; i++) {
        fds[i] = raw_connect(addr);
        ck_assert_int_ge(fds[i], 0);
        opened[i] = now_ms();
        closed[i] = 0;
    }
    /* Watch for 1.5 s: the ones over the cap see EOF or a reset, the others nothing. */
    deadline = now_ms() + 1500;
    while (now_ms() < deadline) {
        struct pollfd pfd[FLOOD_CONNS];
        int map[FLOOD_CONNS], n = 0;

        for (int i = 0; i < FLOOD_CONNS; i++) {
            if (closed[i] == 0) {
                pfd[n].fd = fds[i];
                pfd[n].events = POLLIN;
                map[n++] = i;
            }
        }
        if (n == 0 || poll(pfd, (nfds_t)n, 50) <= 0)
            continue;
        for (int k = 0; k < n; k++) {
            char c;
            if (pfd[k].revents != 0 && recv(pfd[k].fd, &c, 1, MSG_DONTWAIT) <= 0)
                closed[map[k]] = now_ms();
        }
    }
    for (int i = 0; i < FLOOD_CONNS; i++) {
        if (closed[i] == 0)
            still_open++;
        else if (closed[i] - opened[i] <= 500)
            prompt++;
        else
            late++;
    }
    fprintf(stderr,
            "check_hostile: flood of %d connections, cap %d: %u closed within 500 ms, %u later, "
            "%u held\n",
            FLOOD_CONNS, FLOOD_CAP, prompt, late, still_open);
    verdict(prompt == FLOOD_CONNS - FLOOD_CAP && still_open == FLOOD_CAP && late == 0,
            "[node] flood: %u closed promptly, %u later, %u held; expected %d, 0, %d", prompt, late,
            still_open, FLOOD_CONNS - FLOOD_CAP, FLOOD_CAP);
    /* At the cap, one more is closed too. */
    got = http_fetch(addr, "GET", "/healthz", NULL, NULL, 0, NULL, 3000, &r);
    if (got == 0) {
        got = r.status;
        http_response_done(&r);
    }
    verdict(got == -ECONNRESET, "[node] a request at the cap: %d, expected a close (%d)", got,
            -ECONNRESET);
    for (int i = 0; i < FLOOD_CONNS; i++)
        close(fds[i]);
    /* Once they are gone, the node serves again. */
    deadline = now_ms() + 3000;
    while (!served && now_ms() < deadline) {
        served = healthy(addr);
        if (!served)
            usleep(50000);
    }
    verdict(served, "[node] healthz after the flood");
    rejected1 = metric(addr, "sluice_http_connections_total{outcome=\"rejected_cap\"}");
    verdict(rejected1 - rejected0 >= FLOOD_CONNS - FLOOD_CAP + 1,
            "[node] rejected_cap rose by %.0f, expected >= %d", rejected1 - rejected0,
            FLOOD_CONNS - FLOOD_CAP + 1);
    live = metric(addr, "sluice_http_connections_live");
    verdict(live >= 1 && live <= 2, "[node] %.0f live connections after the flood", live);
    cleanup();
    assert_no_failures();
}
END_TEST

static Suite *hostile_suite(void)
{
    Suite *s = suite_create("hostile");
    TCase *tc;

    tc = tcase_create("auth");
    tcase_add_checked_fixture(tc, setup_auth, teardown_auth);
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, test_auth);
    suite_add_tcase(s, tc);
    tc = tcase_create("battery");
    tcase_add_checked_fixture(tc, setup_battery, teardown_battery);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_battery);
    suite_add_tcase(s, tc);
    tc = tcase_create("slowloris");
    tcase_add_checked_fixture(tc, setup_limits, teardown_limits);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_slowloris);
    suite_add_tcase(s, tc);
    tc = tcase_create("flood");
    tcase_add_checked_fixture(tc, setup_limits, teardown_limits);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_connection_flood);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    int rc;

    /*
     * libevent writes with writev(2): a daemon that closes while a body is
     * still being sent (413) must cost an EPIPE, not this process (http.h).
     */
    signal(SIGPIPE, SIG_IGN);
    /* The daemons and the CLI must not pick up a token from the caller's environment. */
    unsetenv("SLUICE_TOKEN");
    unsetenv("SLUICE_TOKEN_FILE");
    unsetenv("SLUICE_COORDINATOR");
    tally = mmap(NULL, sizeof(*tally), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (tally == MAP_FAILED)
        tally = &local_tally;
    rc = harness_run_suite(hostile_suite());
    fprintf(stderr, "check_hostile: %u requests tried, %u answered as expected\n", tally->tried,
            tally->ok);
    return rc == EXIT_SUCCESS && tally->tried >= 40 ? EXIT_SUCCESS : EXIT_FAILURE;
}
