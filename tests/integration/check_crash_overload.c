/*
 * check_crash_overload: a node overloaded (issue 5, item 5). Open-loop query
 * load at 2x and 4x a node's measured capacity. Beyond --max-queries in
 * flight the node must answer 429 LOAD_CONCURRENCY; admitted queries stay
 * fast and correct, and the RSS stays flat.
 *
 * Expected load: two shared cores, about a minute.
 * Shared setup: tests/harness/crash.h.
 */
#include <arpa/inet.h>
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "catalog.h"
#include "clock.h"
#include "crash.h"
#include "harness.h"
#include "http.h"
#include "segfmt.h"
#include "strmap.h"
#include "wire.h"
#include "xmalloc.h"

static uint8_t *query_body(const char *id, size_t *ret_len)
{
    struct wire_query_request q;
    uint8_t *body;

    memset(&q, 0, sizeof(q));
    q.n_segments = 1;
    q.segment_ids = xcalloc(1, sizeof(*q.segment_ids));
    snprintf(q.segment_ids[0], sizeof(q.segment_ids[0]), "%s", id);
    q.aggregate = WIRE_AGG_SUM;
    snprintf(q.column, sizeof(q.column), "value");
    body = wire_query_request_encode(&q, ret_len);
    free(q.segment_ids);
    return body;
}

/* ---- 5. overload ----------------------------------------------------------- */

#define OVL_ROWS     (8ull << 20) /* x 16 B: a 64 MiB value column, a few ms per scan */
#define OVL_WORKERS  1            /* one scanning core; the other runs the generator */
#define OVL_MAXQ     (2 * OVL_WORKERS)
#define OVL_THREADS  4
#define OVL_CONNS    32 /* per thread */
#define OVL_SECONDS  10
#define OVL_RESP_MAX 8192
#define OVL_SEQ_RUNS 5
#define OVL_SEQ_N    100

/* One keep-alive connection of the load generator. */
struct lconn {
    int fd;
    bool busy;
    uint64_t sched_ns; /* when the request was due */
    uint64_t sent_ns;  /* when it went out */
    size_t len;
    char buf[OVL_RESP_MAX];
};

struct lresult {
    uint64_t *lat_ok, *svc_ok; /* from due time, from send time */
    uint8_t *win_ok;           /* the 1-s window of the phase it was due in */
    size_t n_ok, cap_ok;
    unsigned long n_429, n_429_conc, n_429_no_retry, n_other, n_err, n_wrong, n_late;
    unsigned long sent, dropped;
    int other_status;
};

struct lthread {
    struct sockaddr_in sa;
    const char *req;
    size_t req_len;
    double rate; /* requests per second, this thread */
    uint64_t start_ns, end_ns;
    int64_t want_sum;
    struct lresult res;
};

static int lconn_open(const struct sockaddr_in *sa)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

    if (fd < 0)
        return -1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/*
 * Parses a response in buf[0..len): 1 when complete (status, X-Sluice-Reason,
 * whether Retry-After is present, and the body filled), 0 when more bytes are
 * needed, -1 when malformed.
 */
static int http_parse(const char *buf, size_t len, int *status, char *reason, bool *has_retry,
                      const char **body, size_t *body_len)
{
    const char *end = memmem(buf, len, "\r\n\r\n", 4), *p;
    size_t hdr, clen = 0;

    if (end == NULL)
        return len >= OVL_RESP_MAX ? -1 : 0;
    hdr = (size_t)(end - buf) + 4;
    if (sscanf(buf, "HTTP/1.%*d %d", status) != 1)
        return -1;
    reason[0] = '\0';
    *has_retry = false;
    for (p = memchr(buf, '\n', hdr); p != NULL && p < end; p = memchr(p, '\n', (size_t)(end - p))) {
        p++;
        if (strncasecmp(p, "Content-Length:", 15) == 0)
            clen = strtoul(p + 15, NULL, 10);
        else if (strncasecmp(p, "X-Sluice-Reason:", 16) == 0)
            sscanf(p + 16, " %31[A-Z_]", reason);
        else if (strncasecmp(p, "Retry-After:", 12) == 0)
            *has_retry = true;
    }
    if (hdr + clen > OVL_RESP_MAX)
        return -1;
    if (len < hdr + clen)
        return 0;
    *body = buf + hdr;
    *body_len = clen;
    return 1;
}

/* A complete answer on c: classify it, check a 200's value. */
static void lthread_answer(struct lthread *t, struct lconn *c, int status, const char *reason,
                           bool has_retry, const char *body, size_t body_len)
{
    uint64_t now = clock_mono_ns();
    struct lresult *r = &t->res;

    if (status == 200) {
        struct wire_query_response resp;
        struct wire_error err;
        if (wire_query_response_decode(body, body_len, &resp, &err) < 0 ||
            resp.rows_matched != OVL_ROWS || resp.int_value != t->want_sum)
            r->n_wrong++;
        if (r->n_ok == r->cap_ok) {
            r->cap_ok = r->cap_ok * 2 + 1024;
            r->lat_ok = xreallocarray(r->lat_ok, r->cap_ok, sizeof(*r->lat_ok));
            r->svc_ok = xreallocarray(r->svc_ok, r->cap_ok, sizeof(*r->svc_ok));
            r->win_ok = xreallocarray(r->win_ok, r->cap_ok, sizeof(*r->win_ok));
        }
        r->win_ok[r->n_ok] = (uint8_t)((c->sched_ns - t->start_ns) / 1000000000ull);
        r->lat_ok[r->n_ok] = now - c->sched_ns;
        r->svc_ok[r->n_ok++] = now - c->sent_ns;
    } else if (status == 429) {
        r->n_429++;
        r->n_429_conc += strcmp(reason, "LOAD_CONCURRENCY") == 0;
        r->n_429_no_retry += !has_retry;
    } else {
        r->n_other++;
        r->other_status = status;
    }
}

/* Reads what arrived on a busy connection. */
static void lthread_read(struct lthread *t, struct lconn *c)
{
    char reason[32];
    const char *body;
    size_t blen;
    bool retry;
    int status, pr;
    ssize_t got = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, MSG_DONTWAIT);

    if (got < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (got <= 0) {
        t->res.n_err++;
        close(c->fd);
        c->fd = -1;
        c->busy = false;
        return;
    }
    c->len += (size_t)got;
    pr = http_parse(c->buf, c->len, &status, reason, &retry, &body, &blen);
    if (pr == 0)
        return;
    if (pr < 0) {
        t->res.n_err++;
        close(c->fd);
        c->fd = -1;
    } else {
        lthread_answer(t, c, status, reason, retry, body, blen);
    }
    c->busy = false;
}

/*
 * Open loop: request k is due at start + k / rate whatever happened to the
 * earlier ones. A due request goes out on an idle connection; when all are
 * busy it waits (and counts as late). The thread sleeps in ppoll until the
 * next request is due or an answer arrives; it never spins.
 */
static void *lthread_main(void *arg)
{
    struct lthread *t = arg;
    struct lconn *conns = xcalloc(OVL_CONNS, sizeof(*conns));
    struct pollfd pfd[OVL_CONNS];
    int idx[OVL_CONNS];
    uint64_t interval = (uint64_t)(1e9 / t->rate), k = 0, drain_until = t->end_ns + 5000000000ull;

    for (int i = 0; i < OVL_CONNS; i++)
        conns[i].fd = -1;
    for (;;) {
        uint64_t now = clock_mono_ns(), wait_ns;
        struct timespec ts;
        int np = 0;

        while (now < t->end_ns && t->start_ns + k * interval <= now) {
            struct lconn *c = NULL;
            for (int i = 0; i < OVL_CONNS && c == NULL; i++)
                if (!conns[i].busy)
                    c = &conns[i];
            if (c == NULL)
                break;
            k++;
            if (c->fd < 0 && (c->fd = lconn_open(&t->sa)) < 0) {
                t->res.n_err++;
                continue;
            }
            c->sched_ns = t->start_ns + (k - 1) * interval;
            c->sent_ns = clock_mono_ns();
            t->res.n_late += c->sent_ns - c->sched_ns > 2000000;
            if (send(c->fd, t->req, t->req_len, MSG_NOSIGNAL) != (ssize_t)t->req_len) {
                t->res.n_err++;
                close(c->fd);
                c->fd = -1;
                continue;
            }
            c->busy = true;
            c->len = 0;
            t->res.sent++;
        }
        for (int i = 0; i < OVL_CONNS; i++) {
            if (conns[i].busy) {
                pfd[np].fd = conns[i].fd;
                pfd[np].events = POLLIN;
                idx[np++] = i;
            }
        }
        if (now >= t->end_ns && (np == 0 || now >= drain_until))
            break;
        if (now >= t->end_ns || np == OVL_CONNS)
            wait_ns = 10000000; /* nothing to send until an answer frees a connection */
        else {
            uint64_t due = t->start_ns + k * interval;
            wait_ns = due > now ? due - now : 0;
        }
        ts.tv_sec = (time_t)(wait_ns / 1000000000ull);
        ts.tv_nsec = (long)(wait_ns % 1000000000ull);
        if (ppoll(pfd, (nfds_t)np, &ts, NULL) <= 0)
            continue;
        for (int j = 0; j < np; j++)
            if (pfd[j].revents & (POLLIN | POLLHUP | POLLERR))
                lthread_read(t, &conns[idx[j]]);
    }
    /* What was due but never sent (every connection busy to the end). */
    t->res.dropped = k > t->res.sent ? (unsigned long)(k - t->res.sent) : 0;
    {
        uint64_t due = (t->end_ns - t->start_ns + interval - 1) / interval;
        if (due > k)
            t->res.dropped += (unsigned long)(due - k);
    }
    for (int i = 0; i < OVL_CONNS; i++) {
        if (conns[i].busy)
            t->res.n_err++;
        if (conns[i].fd >= 0)
            close(conns[i].fd);
    }
    free(conns);
    return NULL;
}

static char *query_request_text(const char *id, size_t *ret_len)
{
    size_t blen;
    uint8_t *body = query_body(id, &blen);
    char *hdr = xasprintf("POST /v1/query HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: %s\r\n"
                          "Content-Length: %zu\r\n\r\n",
                          WIRE_CONTENT_TYPE, blen);
    size_t hlen = strlen(hdr);
    char *req = xmalloc(hlen + blen);

    memcpy(req, hdr, hlen);
    memcpy(req + hlen, body, blen);
    *ret_len = hlen + blen;
    free(hdr);
    free(body);
    return req;
}

/* One unlabelled sample from the node's /metrics; false if it is not there. */
static bool node_metric(const char *addr, const char *name, uint64_t *ret)
{
    double v = harness_metric(addr, name);

    if (v < 0)
        return false;
    *ret = (uint64_t)v;
    return true;
}

/* sluice_process_resident_bytes; 0 if absent. */
static uint64_t node_rss(const char *addr)
{
    uint64_t v = 0;

    node_metric(addr, "sluice_process_resident_bytes", &v);
    return v;
}

struct phase {
    double rate;
    unsigned long sent, ok, n429, conc, no_retry, other, err, wrong, late, dropped;
    int other_status;
    uint64_t p50, p99;         /* admitted, from send to answer */
    uint64_t win_p99;          /* median over 1-s windows of the admitted p99 */
    uint64_t due_p50, due_p99; /* admitted, from when it was due (open loop) */
    uint64_t rss_max;
};

static void run_phase(const char *addr, const struct sockaddr_in *sa, const char *req,
                      size_t req_len, int64_t want, double rate, unsigned secs, struct phase *ph)
{
    struct lthread t[OVL_THREADS];
    pthread_t th[OVL_THREADS];
    uint64_t start = clock_mono_ns() + 50000000ull, *all = NULL, *svc = NULL;
    uint64_t *wsvc[OVL_SECONDS] = {NULL}, wp99[OVL_SECONDS];
    size_t n = 0, wn[OVL_SECONDS] = {0}, nw = 0;

    memset(ph, 0, sizeof(*ph));
    ph->rate = rate;
    for (int i = 0; i < OVL_THREADS; i++) {
        memset(&t[i], 0, sizeof(t[i]));
        t[i].sa = *sa;
        t[i].req = req;
        t[i].req_len = req_len;
        t[i].rate = rate / OVL_THREADS;
        /* Staggered so the threads' arrivals interleave. */
        t[i].start_ns = start + (uint64_t)(1e9 / rate) * (uint64_t)i;
        t[i].end_ns = start + secs * 1000000000ull;
        t[i].want_sum = want;
        ck_assert_int_eq(pthread_create(&th[i], NULL, lthread_main, &t[i]), 0);
    }
    /* Sample the RSS while the load runs. */
    while (clock_mono_ns() < start + secs * 1000000000ull) {
        uint64_t rss = node_rss(addr);
        if (rss > ph->rss_max)
            ph->rss_max = rss;
        crash_sleep_ms(500);
    }
    for (int i = 0; i < OVL_THREADS; i++) {
        struct lresult *r = &t[i].res;
        pthread_join(th[i], NULL);
        all = xreallocarray(all, n + r->n_ok + 1, sizeof(*all));
        svc = xreallocarray(svc, n + r->n_ok + 1, sizeof(*svc));
        memcpy(all + n, r->lat_ok, r->n_ok * sizeof(*all));
        memcpy(svc + n, r->svc_ok, r->n_ok * sizeof(*svc));
        n += r->n_ok;
        for (size_t j = 0; j < r->n_ok; j++) {
            unsigned w = r->win_ok[j] < OVL_SECONDS ? r->win_ok[j] : OVL_SECONDS - 1;
            wsvc[w] = xreallocarray(wsvc[w], wn[w] + 1, sizeof(uint64_t));
            wsvc[w][wn[w]++] = r->svc_ok[j];
        }
        ph->sent += r->sent;
        ph->ok += r->n_ok;
        ph->n429 += r->n_429;
        ph->conc += r->n_429_conc;
        ph->no_retry += r->n_429_no_retry;
        ph->other += r->n_other;
        if (r->n_other)
            ph->other_status = r->other_status;
        ph->err += r->n_err;
        ph->wrong += r->n_wrong;
        ph->late += r->n_late;
        ph->dropped += r->dropped;
        free(r->lat_ok);
        free(r->svc_ok);
        free(r->win_ok);
    }
    for (int w = 0; w < OVL_SECONDS; w++) {
        if (wn[w] == 0)
            continue;
        qsort(wsvc[w], wn[w], sizeof(uint64_t), crash_cmp_u64);
        wp99[nw++] = crash_quantile(wsvc[w], wn[w], 0.99);
        free(wsvc[w]);
    }
    qsort(wp99, nw, sizeof(wp99[0]), crash_cmp_u64);
    ph->win_p99 = crash_quantile(wp99, nw, 0.50);
    qsort(all, n, sizeof(*all), crash_cmp_u64);
    qsort(svc, n, sizeof(*svc), crash_cmp_u64);
    ph->due_p50 = crash_quantile(all, n, 0.50);
    ph->due_p99 = crash_quantile(all, n, 0.99);
    ph->p50 = crash_quantile(svc, n, 0.50);
    ph->p99 = crash_quantile(svc, n, 0.99);
    free(all);
    free(svc);
}

/* POSTs an assignment straight to a node; returns the HTTP status. */
static int node_assign(const char *addr, const char *id, const char *uri, uint64_t rows,
                       uint64_t row_size)
{
    struct wire_assign_request m = harness_assign_request(id, uri, rows, row_size);

    return harness_assign(addr, &m, NULL, NULL);
}

static bool hot_loaded(void *arg)
{
    struct wire_node_status st;
    bool ok = false;

    if (!crash_node_status_at(crash_node_addr(0), &st, 2000))
        return false;
    for (size_t k = 0; k < st.n_segments; k++)
        ok |= strcmp(st.segments[k].segment_id, "hot") == 0 &&
              st.segments[k].state == WIRE_SEG_LOADED;
    wire_node_status_done(&st);
    (void)arg;
    return ok;
}

START_TEST(test_overload)
{
    char *uri, *data = xasprintf("%s/node-0", crash_dir), *req, maxq[32], workers[32];
    const char *nargs[] = {workers, maxq, "--admission=off", NULL};
    struct sockaddr_in sa = {.sin_family = AF_INET};
    struct phase ph[2];
    uint64_t lat[OVL_SEQ_RUNS * OVL_SEQ_N], run_p99[OVL_SEQ_RUNS], seq_p50, seq_p99, rss0, rss1;
    uint64_t refused0 = 0, refused1 = 0;
    bool has_refused = false;
    int64_t want = crash_synth_sum(1234, OVL_ROWS);
    double capacity;
    size_t req_len;
    int fd, port;

    snprintf(workers, sizeof(workers), "--workers=%d", OVL_WORKERS);
    snprintf(maxq, sizeof(maxq), "--max-queries=%d", OVL_MAXQ);
#ifdef __SANITIZE_ADDRESS__
    {
        /*
         * Under ASan freed memory sits in a quarantine of up to 256 MiB,
         * which would read as RSS growth; a small one keeps the RSS bound
         * meaningful (and still catches use-after-free of recent frees).
         */
        const char *old = getenv("ASAN_OPTIONS");
        char *opts = xasprintf("%s%squarantine_size_mb=4", old != NULL ? old : "",
                               old != NULL && old[0] != '\0' ? ":" : "");
        setenv("ASAN_OPTIONS", opts, 1);
        free(opts);
    }
#endif
    uri = crash_write_seg("hot", OVL_ROWS, 16, 1234);
    crash_nodes[0] = harness_node_start(crash_storage, data, nargs);
    ck_assert_ptr_nonnull(crash_nodes[0]);
    ck_assert_int_eq(node_assign(crash_node_addr(0), "hot", uri, OVL_ROWS, 16), 202);
    ck_assert(harness_wait_until(hot_loaded, NULL, 30000));
    req = query_request_text("hot", &req_len);
    ck_assert_int_eq(sscanf(strrchr(crash_node_addr(0), ':') + 1, "%d", &port), 1);
    sa.sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);

    /*
     * Unloaded: one query at a time on one keep-alive connection, 5 runs
     * of 100 after a warm-up; p50 over all, p99 the median of the runs'.
     */
    fd = lconn_open(&sa);
    ck_assert_int_ge(fd, 0);
    for (int i = -50; i < OVL_SEQ_RUNS * OVL_SEQ_N; i++) {
        char buf[OVL_RESP_MAX], reason[32];
        const char *body;
        size_t len = 0, blen;
        bool retry;
        int status = 0, pr = 0;
        uint64_t t0 = clock_mono_ns();
        struct wire_query_response resp;
        struct wire_error err;

        ck_assert_int_eq(send(fd, req, req_len, MSG_NOSIGNAL), (ssize_t)req_len);
        while (pr == 0) {
            ssize_t got = recv(fd, buf + len, sizeof(buf) - len, 0);
            ck_assert_int_gt(got, 0);
            len += (size_t)got;
            pr = http_parse(buf, len, &status, reason, &retry, &body, &blen);
        }
        ck_assert_int_eq(pr, 1);
        ck_assert_int_eq(status, 200);
        ck_assert_int_eq(wire_query_response_decode(body, blen, &resp, &err), 0);
        ck_assert_int_eq(resp.int_value, want);
        if (i >= 0)
            lat[i] = clock_mono_ns() - t0;
    }
    close(fd);
    for (int r = 0; r < OVL_SEQ_RUNS; r++) {
        qsort(lat + r * OVL_SEQ_N, OVL_SEQ_N, sizeof(lat[0]), crash_cmp_u64);
        run_p99[r] = crash_quantile(lat + r * OVL_SEQ_N, OVL_SEQ_N, 0.99);
    }
    qsort(run_p99, OVL_SEQ_RUNS, sizeof(run_p99[0]), crash_cmp_u64);
    seq_p99 = crash_quantile(run_p99, OVL_SEQ_RUNS, 0.50);
    qsort(lat, OVL_SEQ_RUNS * OVL_SEQ_N, sizeof(lat[0]), crash_cmp_u64);
    seq_p50 = crash_quantile(lat, OVL_SEQ_RUNS * OVL_SEQ_N, 0.50);
    /* Capacity: every worker busy with one scan after another. */
    capacity = OVL_WORKERS * 1e9 / (double)seq_p50;
    if (capacity > 1000)
        capacity = 1000; /* bounds the generator on a shared machine */
    rss0 = node_rss(crash_node_addr(0));
    fprintf(stderr,
            "check_crash: overload: unloaded p50 %.2f ms, p99 %.2f ms (median of 5 runs); capacity "
            "~%.0f "
            "queries/s (%d workers, --max-queries=%d); RSS %.1f MiB\n",
            seq_p50 / 1e6, seq_p99 / 1e6, capacity, OVL_WORKERS, OVL_MAXQ, rss0 / 1048576.0);

    for (int i = 0; i < 2; i++) {
        double factor = i == 0 ? 2.0 : 4.0;
        run_phase(crash_node_addr(0), &sa, req, req_len, want, capacity * factor, OVL_SECONDS,
                  &ph[i]);
        fprintf(stderr,
                "check_crash: overload %.0fx (%.0f/s for %d s): sent %lu (late > 2 ms %lu, "
                "never sent %lu); 200 %lu: p50 %.2f ms, p99 %.2f ms, median of 1-s p99s %.2f ms "
                "(from due time: p50 "
                "%.2f, p99 %.2f); 429 %lu (LOAD_CONCURRENCY %lu); other %lu, errors %lu, "
                "wrong %lu; RSS max %.1f MiB\n",
                factor, ph[i].rate, OVL_SECONDS, ph[i].sent, ph[i].late, ph[i].dropped, ph[i].ok,
                ph[i].p50 / 1e6, ph[i].p99 / 1e6, ph[i].win_p99 / 1e6, ph[i].due_p50 / 1e6,
                ph[i].due_p99 / 1e6, ph[i].n429, ph[i].conc, ph[i].other, ph[i].err, ph[i].wrong,
                ph[i].rss_max / 1048576.0);
    }
    rss1 = node_rss(crash_node_addr(0));
    /* The node counts every refusal it sends, and nothing else. */
    if (has_refused) {
        ck_assert(node_metric(crash_node_addr(0), "sluice_node_queries_refused_total", &refused1));
        ck_assert_uint_eq(refused1 - refused0, ph[0].n429 + ph[1].n429);
    }
    fprintf(stderr,
            "check_crash: overload: RSS before %.1f MiB, max under load %.1f MiB, after "
            "%.1f MiB; admitted p99 at 4x is %.2fx the unloaded p99 (median of 1-s p99s: %.2fx)\n",
            rss0 / 1048576.0,
            (ph[0].rss_max > ph[1].rss_max ? ph[0].rss_max : ph[1].rss_max) / 1048576.0,
            rss1 / 1048576.0, (double)ph[1].p99 / (double)seq_p99,
            (double)ph[1].win_p99 / (double)seq_p99);

    for (int i = 0; i < 2; i++) {
        ck_assert_uint_eq(ph[i].wrong, 0);
        ck_assert_msg(ph[i].other == 0, "%lu answers with status %d", ph[i].other,
                      ph[i].other_status);
        ck_assert_uint_eq(ph[i].err, 0);
        ck_assert_uint_eq(ph[i].no_retry, 0);
        ck_assert_uint_eq(ph[i].n429, ph[i].conc);
        ck_assert_uint_gt(ph[i].ok, 0);
        ck_assert_uint_le(ph[i].rss_max, rss0 + (64ull << 20));
    }
    ck_assert_uint_gt(ph[1].conc, 0);
    ck_assert_uint_le(rss1, rss0 + (64ull << 20));
    /*
     * For contrast, the same 4x load on the same node with the default
     * --max-queries (64): admitted queries now queue behind up to 63 others.
     * Printed, not asserted.
     */
    {
        const char *dargs[] = {workers, "--admission=off", NULL};
        struct phase dp;

        ck_assert_int_eq(harness_proc_stop(crash_nodes[0]), 0);
        harness_proc_free(crash_nodes[0]);
        crash_nodes[0] = harness_node_start(crash_storage, data, dargs);
        ck_assert_ptr_nonnull(crash_nodes[0]);
        ck_assert(harness_wait_until(hot_loaded, NULL, 30000));
        ck_assert_int_eq(sscanf(strrchr(crash_node_addr(0), ':') + 1, "%d", &port), 1);
        sa.sin_port = htons((uint16_t)port);
        run_phase(crash_node_addr(0), &sa, req, req_len, want, capacity * 4.0, 5, &dp);
        fprintf(stderr,
                "check_crash: overload 4x with the default --max-queries=64 (5 s, for "
                "contrast): 200 %lu, p50 %.2f ms, p99 %.2f ms; 429 %lu; wrong %lu\n",
                dp.ok, dp.p50 / 1e6, dp.p99 / 1e6, dp.n429, dp.wrong);
        ck_assert_uint_eq(dp.wrong, 0);
    }
    /*
     * Admitted queries wait behind at most --max-queries - --workers
     * others, so their p99 stays near the unloaded one, where an unbounded
     * queue at 4x would grow by seconds. The machine is shared (other
     * tenants, and the generator on the same two cores), so the assertion
     * takes the median of the ten 1-s p99s and allows 50 ms of scheduling
     * noise on top of 2x the unloaded p99 (a 64-deep queue of these scans
     * would add ~150 ms); the plain ratio is printed above.
     */
    ck_assert_msg(ph[1].win_p99 <= 2 * seq_p99 + 50000000ull,
                  "admitted p99 at 4x (median of 1-s windows) %.2f ms > 2 x unloaded p99 %.2f ms "
                  "+ 50 ms",
                  ph[1].win_p99 / 1e6, seq_p99 / 1e6);
    free(req);
    free(uri);
    free(data);
}
END_TEST

int main(void)
{
    struct crash_case c = {"overload", test_overload, 300, 0, NULL, NULL, NULL};

    return crash_main(&c);
}
