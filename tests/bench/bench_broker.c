/*
 * bench_broker: the query broker with one slow node (issue 18). Three real
 * nodes, a table of segments each on two of them (replication 2), two
 * brokers on the same coordinator: one with adaptive replica choice and
 * hedging (the default), one with --replica-choice=roundrobin.
 *
 * "Slow" is node 2 CPU-throttled in a cpu cgroup of its own, made below
 * this process's own group: cpu.cfs_quota_us of cpu.cfs_period_us on
 * cgroup v1, cpu.max on v2 (SLOW_PERCENT of one CPU). Where no cpu
 * controller is writable, a thread stalls it instead with SIGSTOP and
 * SIGCONT on the same duty cycle. The output says which.
 *
 * In one run, SLUICE_BROKER_REPEATS times (3; smoke 1), each phase
 * measured for a fixed time after a warm-up:
 *   direct      the nodes queried directly, each on its share of the table
 *               (every segment once, on one of its holders, balanced),
 *               THR_CLIENTS keep-alive clients per node: the sum of the
 *               nodes' throughput, rows scanned per second;
 *   broker      the adaptive broker, 3 * THR_CLIENTS clients, no slow node:
 *               table queries per second times the table's rows;
 *   lat-fast    p50/p99 of table queries through the adaptive broker, no
 *               slow node, LAT_CLIENTS clients (the baseline);
 *   lat-fast-rr the same through the round-robin broker;
 *   lat-slow-rr the round-robin broker with node 2 slow;
 *   lat-slow    the adaptive broker with node 2 slow.
 * The figures are the medians over the repeats; the ratios are against
 * the baseline of the same run: adaptive slow p99 / no-slow p99 (target <=
 * 1.5), round-robin slow p99 / adaptive slow p99 (target >= 3), broker
 * rows/s / direct rows/s (target >= 0.8). Every answer is checked against
 * the table's count; a wrong or failed answer is counted and printed.
 *
 * Output: stdout, bench_broker.csv (one line per phase and repeat) and
 * bench_broker_latency.csv (every latency of the last repeat's latency
 * phases, for the CDF), and with gnuplot bench_broker.png. Figures only,
 * nothing asserted: a target missed is printed as such.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "baseline.h"
#include "clock.h"
#include "harness.h"
#include "mkseg.h"
#include "wire.h"
#include "xmalloc.h"

#define N_NODES      3
#define SLOW         2   /* the node made slow */
#define SLOW_PERIOD  100 /* ms */
#define SLOW_PERCENT 10  /* of one CPU, or of the time not stopped */
#define THR_CLIENTS  2   /* per node, throughput phases */
#define LAT_CLIENTS  2   /* latency phases */
#define MAX_PHASE_LAT 400000

enum phase { PH_DIRECT, PH_BROKER, PH_LAT_FAST, PH_LAT_FAST_RR, PH_LAT_SLOW_RR, PH_LAT_SLOW, PH_N };
static const char *const phase_names[PH_N] = {"direct",      "broker",      "lat-fast",
                                              "lat-fast-rr", "lat-slow-rr", "lat-slow"};

static struct harness_proc *coord, *nodes[N_NODES], *adaptive, *roundrobin;
static const char *table_name = "bench";
static uint64_t table_rows, table_sum; /* rows, and the SUM every answer must give (mod 2^64) */

/* ---- a blocking keep-alive HTTP/1.1 client (one per thread) ------------------ */

struct kconn {
    char host[64];
    unsigned port;
    int fd;
    char *buf;
    size_t cap;
};

static void kconn_init(struct kconn *k, const char *addr)
{
    const char *colon = strrchr(addr, ':');

    memset(k, 0, sizeof(*k));
    snprintf(k->host, sizeof(k->host), "%.*s", (int)(colon - addr), addr);
    k->port = (unsigned)atoi(colon + 1);
    k->fd = -1;
    k->cap = 1 << 16;
    k->buf = xmalloc(k->cap);
}

static void kconn_close(struct kconn *k)
{
    if (k->fd >= 0)
        close(k->fd);
    k->fd = -1;
}

static void kconn_done(struct kconn *k)
{
    kconn_close(k);
    free(k->buf);
}

static int kconn_open(struct kconn *k)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)k->port)};
    int one = 1;

    inet_pton(AF_INET, k->host, &a.sin_addr);
    k->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (k->fd < 0)
        return -errno;
    setsockopt(k->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(k->fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        int e = -errno;

        kconn_close(k);
        return e;
    }
    return 0;
}

/*
 * POSTs body to /v1/query and reads the answer: its status, the body at
 * *ret_body (in k's buffer, until the next call), its length. Negative
 * errno when the connection failed (then it is reopened next time).
 */
static int kconn_post(struct kconn *k, const void *body, size_t len, const void **ret_body,
                      size_t *ret_len)
{
    char head[256];
    size_t got = 0, need = 0, hlen = 0, clen = 0;
    int n, status = 0;

    if (k->fd < 0 && kconn_open(k) < 0)
        return -ECONNREFUSED;
    n = snprintf(head, sizeof(head),
                 "POST /v1/query HTTP/1.1\r\nHost: %s:%u\r\nContent-Type: %s\r\n"
                 "Content-Length: %zu\r\n\r\n",
                 k->host, k->port, WIRE_CONTENT_TYPE, len);
    if (write(k->fd, head, (size_t)n) != n || write(k->fd, body, len) != (ssize_t)len) {
        kconn_close(k);
        return -EPIPE;
    }
    for (;;) {
        ssize_t r;

        if (got == k->cap) {
            k->cap *= 2;
            k->buf = xreallocarray(k->buf, k->cap, 1);
        }
        r = read(k->fd, k->buf + got, k->cap - got);
        if (r <= 0) {
            kconn_close(k);
            return -ECONNRESET;
        }
        got += (size_t)r;
        if (hlen == 0) {
            char *end = memmem(k->buf, got, "\r\n\r\n", 4), *cl;

            if (end == NULL)
                continue;
            hlen = (size_t)(end - k->buf) + 4;
            *end = '\0';
            status = atoi(k->buf + 9);
            cl = strcasestr(k->buf, "\r\nContent-Length:");
            clen = cl != NULL ? strtoull(cl + 17, NULL, 10) : 0;
            need = hlen + clen;
            if (strcasestr(k->buf, "\r\nConnection: close") != NULL)
                status = -status; /* read the body, then reopen */
        }
        if (got >= need)
            break;
    }
    *ret_body = k->buf + hlen;
    *ret_len = clen;
    if (status < 0) {
        kconn_close(k);
        status = -status;
    }
    return status;
}

/* ---- the slow node -------------------------------------------------------------- */

static char *slow_cg;        /* the cpu cgroup, or NULL: SIGSTOP/SIGCONT */
static bool slow_v2;
static const char *slow_how = "none";
static atomic_bool slow_on, stopper_quit;
static pthread_t stopper;

/* A cpu cgroup of the node's own, below ours; else the SIGSTOP fallback. */
static void slow_setup(int pid)
{
    char why[300];
    int r;

    slow_cg = harness_cpu_cgroup_new("sluice-bench-broker", &slow_v2, why, sizeof(why));
    if (slow_cg != NULL) {
        if ((r = harness_cpu_cgroup_limit(slow_cg, slow_v2, 0, SLOW_PERIOD * 1000)) < 0 ||
            (r = harness_cgroup_move(slow_cg, pid)) < 0) {
            snprintf(why, sizeof(why), "%s: %s", slow_cg, strerror(-r));
            harness_cgroup_remove(slow_cg);
            free(slow_cg);
            slow_cg = NULL;
        }
    }
    if (slow_cg == NULL) {
        fprintf(stderr, "bench_broker: no cpu cgroup (%s); SIGSTOP/SIGCONT instead\n", why);
        slow_how = "SIGSTOP/SIGCONT";
        return;
    }
    slow_how = slow_v2 ? "cgroup v2 cpu.max" : "cgroup v1 cpu.cfs_quota_us";
}

/* Removes the cgroup once the node in it has exited. */
static void slow_teardown(void)
{
    harness_cgroup_remove(slow_cg);
    free(slow_cg);
}

/* The fallback: stopped for (100 - SLOW_PERCENT) % of every period while slow_on. */
static void *stopper_main(void *arg)
{
    int pid = *(int *)arg;

    while (!atomic_load(&stopper_quit)) {
        if (!atomic_load(&slow_on)) {
            usleep(10000);
            continue;
        }
        kill(pid, SIGSTOP);
        usleep((useconds_t)(SLOW_PERIOD * (100 - SLOW_PERCENT) * 10));
        kill(pid, SIGCONT);
        usleep((useconds_t)(SLOW_PERIOD * SLOW_PERCENT * 10));
    }
    kill(pid, SIGCONT);
    return NULL;
}

static void slow_set(bool on)
{
    atomic_store(&slow_on, on);
    if (slow_cg != NULL)
        (void)harness_cpu_cgroup_limit(slow_cg, slow_v2, on ? SLOW_PERCENT : 0,
                                       SLOW_PERIOD * 1000);
}

/* ---- load ------------------------------------------------------------------------ */

/* What one client thread does in a phase. */
struct client {
    pthread_t th;
    const char *addr;
    uint8_t *body; /* the request */
    size_t len;
    bool table;    /* a table query through a broker (else a node's share) */
    uint64_t want; /* the SUM the answer must give (mod 2^64) */
    uint64_t rows_per; /* rows a query scans */
    double until;  /* stop sending after this (monotonic seconds) */
    double measure_from;
    /* results */
    uint64_t ok, bad, rows;
    double *lat; /* seconds, of answers after measure_from */
    size_t n_lat, cap_lat;
    char last_error[200];
};

static double now_s(void)
{
    return (double)clock_mono_ns() / 1e9;
}

static void *client_main(void *arg)
{
    struct client *c = arg;
    struct kconn k;

    kconn_init(&k, c->addr);
    for (;;) {
        double t0 = now_s(), t1;
        const void *body = "";
        size_t len = 0;
        int st;
        bool good = false;

        if (t0 >= c->until)
            break;
        st = kconn_post(&k, c->body, c->len, &body, &len);
        t1 = now_s();
        if (st == 200) {
            struct wire_error err;

            if (c->table) {
                struct wire_table_query_response r;

                if (wire_table_query_response_decode(body, len, &r, &err) == 0) {
                    good = (uint64_t)r.result.int_value == c->want && !r.partial;
                    if (!good)
                        snprintf(c->last_error, sizeof(c->last_error),
                                 "sum %" PRId64 ", want %" PRId64, r.result.int_value,
                                 (int64_t)c->want);
                    wire_table_query_response_done(&r);
                }
            } else {
                struct wire_query_response r;

                if (wire_query_response_decode(body, len, &r, &err) == 0)
                    good = (uint64_t)r.int_value == c->want;
            }
        } else {
            struct wire_error e;

            memset(&e, 0, sizeof(e));
            if (st > 0)
                (void)wire_error_decode(body, len, &e);
            snprintf(c->last_error, sizeof(c->last_error), "HTTP %d %.31s: %.150s", st, e.code,
                     e.message);
        }
        if (t0 < c->measure_from)
            continue;
        if (!good) {
            c->bad++;
            continue;
        }
        c->ok++;
        c->rows += c->rows_per;
        if (c->n_lat < c->cap_lat)
            c->lat[c->n_lat++] = t1 - t0;
    }
    kconn_done(&k);
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* One phase's figures. */
struct result {
    double qps, rows_per_s, p50, p99, p999, max;
    uint64_t ok, bad;
    double *lat; /* sorted, n_lat */
    size_t n_lat;
    char last_error[200];
};

/* Runs clients[0..n) for warm + secs seconds; latencies and counts from after warm-up. */
static void run_clients(struct client *cl, size_t n, double warm, double secs, struct result *ret)
{
    double t0 = now_s();

    memset(ret, 0, sizeof(*ret));
    for (size_t i = 0; i < n; i++) {
        cl[i].measure_from = t0 + warm;
        cl[i].until = t0 + warm + secs;
        cl[i].cap_lat = MAX_PHASE_LAT;
        cl[i].lat = xcalloc(cl[i].cap_lat, sizeof(double));
        pthread_create(&cl[i].th, NULL, client_main, &cl[i]);
    }
    ret->lat = xcalloc(MAX_PHASE_LAT * n, sizeof(double));
    for (size_t i = 0; i < n; i++) {
        pthread_join(cl[i].th, NULL);
        ret->ok += cl[i].ok;
        ret->bad += cl[i].bad;
        ret->rows_per_s += (double)cl[i].rows;
        memcpy(ret->lat + ret->n_lat, cl[i].lat, cl[i].n_lat * sizeof(double));
        ret->n_lat += cl[i].n_lat;
        if (cl[i].last_error[0] != '\0')
            snprintf(ret->last_error, sizeof(ret->last_error), "%s", cl[i].last_error);
        free(cl[i].lat);
    }
    ret->qps = (double)ret->ok / secs;
    ret->rows_per_s /= secs;
    qsort(ret->lat, ret->n_lat, sizeof(double), cmp_double);
    if (ret->n_lat > 0) {
        ret->p50 = ret->lat[(size_t)(0.50 * (double)(ret->n_lat - 1))];
        ret->p99 = ret->lat[(size_t)ceil(0.99 * (double)(ret->n_lat - 1))];
        ret->p999 = ret->lat[(size_t)ceil(0.999 * (double)(ret->n_lat - 1))];
        ret->max = ret->lat[ret->n_lat - 1];
    }
}

static uint8_t *table_query(size_t *len)
{
    struct wire_query_request q;

    memset(&q, 0, sizeof(q));
    snprintf(q.table, sizeof(q.table), "%s", table_name);
    snprintf(q.column, sizeof(q.column), "value");
    q.aggregate = WIRE_AGG_SUM;
    q.timeout_ms = 10000;
    return wire_query_request_encode(&q, len);
}

/* Table queries through the broker at addr by n clients. */
static void phase_broker(const char *addr, size_t n, double warm, double secs, struct result *ret)
{
    struct client *cl = xcalloc(n, sizeof(*cl));
    size_t len;
    uint8_t *body = table_query(&len);

    for (size_t i = 0; i < n; i++) {
        cl[i].addr = addr;
        cl[i].body = body;
        cl[i].len = len;
        cl[i].table = true;
        cl[i].want = table_sum;
        cl[i].rows_per = table_rows;
    }
    run_clients(cl, n, warm, secs, ret);
    free(body);
    free(cl);
}

/* Each node's share of the table: every segment once, on the holder with the fewest so far. */
struct share {
    struct wire_query_request q;
    uint64_t sum, rows;
    uint8_t *body;
    size_t len;
};
static struct share shares[N_NODES];

static int node_index(const char *id)
{
    return (id[0] == 'b' && id[1] == 'n' && id[2] >= '0' && id[2] < '0' + N_NODES && !id[3])
               ? id[2] - '0'
               : -1;
}

static int make_shares(void)
{
    struct wire_placement_map pm;
    size_t n = 0;

    if (harness_placements(harness_proc_addr(coord), "?since=0", &pm) != 200)
        return -EIO;
    for (int i = 0; i < N_NODES; i++) {
        memset(&shares[i], 0, sizeof(shares[i]));
        shares[i].q.segment_ids = xcalloc(pm.n_segments, sizeof(*shares[i].q.segment_ids));
        shares[i].q.aggregate = WIRE_AGG_SUM;
        snprintf(shares[i].q.column, sizeof(shares[i].q.column), "value");
    }
    for (size_t s = 0; s < pm.n_segments; s++) {
        int best = -1;

        for (size_t h = 0; h < pm.segments[s].n_nodes; h++) {
            int i = node_index(pm.segments[s].node_ids[h]);

            if (i >= 0 && (best < 0 || shares[i].q.n_segments < shares[best].q.n_segments))
                best = i;
        }
        if (best < 0) {
            wire_placement_map_done(&pm);
            return -ENOENT;
        }
        memcpy(shares[best].q.segment_ids[shares[best].q.n_segments++],
               pm.segments[s].segment_id, sizeof(shares[0].q.segment_ids[0]));
        n++;
    }
    wire_placement_map_done(&pm);
    for (int i = 0; i < N_NODES; i++) {
        struct wire_query_response r;
        struct harness_reply rep;

        if (shares[i].q.n_segments == 0)
            continue;
        if (harness_query(harness_proc_addr(nodes[i]), &shares[i].q, &r, &rep) != 200)
            return -EIO;
        shares[i].sum = (uint64_t)r.int_value;
        shares[i].rows = r.rows_scanned;
        shares[i].body = wire_query_request_encode(&shares[i].q, &shares[i].len);
    }
    return (int)n;
}

/* Every node hammered on its share by THR_CLIENTS clients at once. */
static void phase_direct(double warm, double secs, struct result *ret)
{
    struct client cl[N_NODES * THR_CLIENTS];
    size_t n = 0;

    memset(cl, 0, sizeof(cl));
    for (int i = 0; i < N_NODES; i++)
        for (int c = 0; c < THR_CLIENTS && shares[i].body != NULL; c++, n++) {
            cl[n].addr = harness_proc_addr(nodes[i]);
            cl[n].body = shares[i].body;
            cl[n].len = shares[i].len;
            cl[n].want = shares[i].sum;
            cl[n].rows_per = shares[i].rows;
        }
    run_clients(cl, n, warm, secs, ret);
    ret->qps = ret->rows_per_s / (double)table_rows; /* table queries' worth */
}

/* ---- output ------------------------------------------------------------------------ */

static void plot(void)
{
    FILE *g;

    if (access("/usr/bin/gnuplot", X_OK) != 0) {
        fprintf(stderr, "bench_broker: gnuplot missing; no PNG\n");
        return;
    }
    g = popen("/usr/bin/gnuplot", "w");
    if (g == NULL)
        return;
    fprintf(g, "set terminal pngcairo size 900,480 font \",10\"\n"
               "set output 'bench_broker.png'\n"
               "set datafile separator ','\n"
               "set key right bottom\n"
               "set logscale x\n"
               "set xlabel 'table query latency through the broker (ms, log scale)'\n"
               "set ylabel 'fraction of queries answered'\n"
               "set yrange [0:1]\n"
               "set grid\n"
               "plot 'bench_broker_latency.csv' using ($1 == 0 ? $2 : 1/0):3 with lines lw 2 "
               "title 'no slow node (adaptive)', "
               "'' using ($1 == 1 ? $2 : 1/0):3 with lines lw 2 title 'node 2 slow, round robin', "
               "'' using ($1 == 2 ? $2 : 1/0):3 with lines lw 2 "
               "title 'node 2 slow, adaptive + hedging'\n");
    if (pclose(g) != 0)
        fprintf(stderr, "bench_broker: gnuplot failed\n");
}

/* The CDF of one latency phase into the latency CSV, as series k (thinned to ~2,000 points). */
static void cdf_write(FILE *f, int k, const struct result *r)
{
    size_t step = r->n_lat / 2000 + 1;

    for (size_t i = 0; i < r->n_lat; i += step)
        fprintf(f, "%d,%.4f,%.5f\n", k, r->lat[i] * 1e3, (double)(i + 1) / (double)r->n_lat);
    if (r->n_lat > 0)
        fprintf(f, "%d,%.4f,1\n", k, r->lat[r->n_lat - 1] * 1e3);
}

static uint64_t env_u64(const char *name, uint64_t dflt)
{
    const char *v = getenv(name);

    return v != NULL && v[0] != '\0' ? strtoull(v, NULL, 10) : dflt;
}

static bool broker_answers(void *arg)
{
    struct wire_query_request q;
    struct wire_table_query_response r;

    memset(&q, 0, sizeof(q));
    snprintf(q.table, sizeof(q.table), "%s", table_name);
    snprintf(q.column, sizeof(q.column), "value");
    q.aggregate = WIRE_AGG_SUM;
    if (harness_table_query(harness_proc_addr(arg), &q, &r, NULL) != 200)
        return false;
    wire_table_query_response_done(&r);
    return true;
}

int main(void)
{
    bool smoke = getenv("SLUICE_BENCH_SMOKE") != NULL && getenv("SLUICE_BENCH_SMOKE")[0] == '1';
    unsigned repeats = (unsigned)env_u64("SLUICE_BROKER_REPEATS", smoke ? 1 : 3);
    double secs = (double)env_u64("SLUICE_BROKER_SECONDS", smoke ? 2 : 8), warm = smoke ? 0.5 : 1;
    unsigned n_segs = (unsigned)env_u64("SLUICE_BROKER_SEGMENTS", smoke ? 6 : 12);
    uint64_t seg_rows = env_u64("SLUICE_BROKER_ROWS", smoke ? 400000 : 1000000);
    char *dir = harness_dir_new("sluice-bench-broker"), *storage = xasprintf("%s/bench", dir);
    const char *cargs[] = {"--node-timeout=60s", "--log-level=warn", NULL};
    const char *bargs_a[] = {"--poll-interval=100ms", "--log-level=warn", NULL};
    const char *bargs_r[] = {"--poll-interval=100ms", "--log-level=warn",
                             "--replica-choice=roundrobin", NULL};
    double fig[PH_N][3][16];
    struct result last[PH_N];
    char detail[256], *co = NULL, *out = NULL;
    FILE *csv = NULL, *lcsv = NULL;
    int rc = 1, slow_pid;

    double t_start = now_s();

    memset(last, 0, sizeof(last));
    if (repeats < 1 || repeats > 16) {
        fprintf(stderr, "bench_broker: SLUICE_BROKER_REPEATS: 1..16\n");
        return 2;
    }
    mkdir(storage, 0755);
    for (unsigned i = 0; i < n_segs; i++) {
        struct mkseg_spec spec = {.rows = seg_rows, .row_bytes = 16, .seed = 1000 + i};
        char *path = xasprintf("%s/bench-%02u.seg", storage, i);

        if (mkseg_write(path, &spec, detail, sizeof(detail)) < 0) {
            fprintf(stderr, "bench_broker: mkseg: %s\n", detail);
            goto out;
        }
        free(path);
    }
    table_rows = seg_rows * n_segs;
    coord = harness_coord_start(dir, cargs);
    if (coord == NULL)
        goto out;
    co = xasprintf("--coordinator=%s", harness_proc_addr(coord));
    for (int i = 0; i < N_NODES; i++) {
        char *data = xasprintf("%s/node%d", dir, i), *id = xasprintf("--node-id=bn%d", i);
        const char *args[] = {co, id, "--report-interval=200ms", "--log-level=warn", NULL};

        nodes[i] = harness_node_start_calm(dir, data, args);
        free(data);
        free(id);
        if (nodes[i] == NULL)
            goto out;
    }
    if (harness_ctl(coord, &out, "import", storage, "--replication=2", NULL) != 0) {
        fprintf(stderr, "bench_broker: import: %s\n", out);
        goto out;
    }
    if (!harness_settled(harness_proc_addr(coord), n_segs, 60000)) {
        fprintf(stderr, "bench_broker: not every segment LOADED twice\n");
        goto out;
    }
    /* LOADED on both holders: settled counts a segment once one copy is. */
    for (int tries = 0;; tries++) {
        struct wire_placement_map pm;
        bool all = true;

        if (harness_placements(harness_proc_addr(coord), "?since=0", &pm) != 200)
            goto out;
        for (size_t s = 0; s < pm.n_segments; s++)
            all = all && pm.segments[s].n_nodes == 2;
        wire_placement_map_done(&pm);
        if (all)
            break;
        if (tries > 300) {
            fprintf(stderr, "bench_broker: not every segment on two nodes\n");
            goto out;
        }
        usleep(100000);
    }
    if (make_shares() != (int)n_segs) {
        fprintf(stderr, "bench_broker: could not split the table over the nodes\n");
        goto out;
    }
    table_sum = 0;
    for (int i = 0; i < N_NODES; i++)
        table_sum += shares[i].sum;
    adaptive = harness_broker_start(dir, harness_proc_addr(coord), bargs_a);
    roundrobin = harness_broker_start(dir, harness_proc_addr(coord), bargs_r);
    if (adaptive == NULL || roundrobin == NULL ||
        !harness_wait_until(broker_answers, adaptive, 10000) ||
        !harness_wait_until(broker_answers, roundrobin, 10000)) {
        fprintf(stderr, "bench_broker: a broker never answered\n");
        goto out;
    }
    slow_pid = harness_proc_pid(nodes[SLOW]);
    slow_setup(slow_pid);
    if (slow_cg == NULL)
        pthread_create(&stopper, NULL, stopper_main, &slow_pid);
    printf("bench_broker: %d nodes, replication 2, %u segments of %" PRIu64
           " rows (%" PRIu64 " rows a query), node %d slow: %d %% of one CPU every %d ms by %s; "
           "%u repeats of %.0f s a phase\n",
           N_NODES, n_segs, seg_rows, table_rows, SLOW, SLOW_PERCENT, SLOW_PERIOD, slow_how,
           repeats, secs);
    csv = fopen("bench_broker.csv", "w");
    lcsv = fopen("bench_broker_latency.csv", "w");
    if (csv == NULL || lcsv == NULL) {
        perror("bench_broker: csv");
        goto out;
    }
    fprintf(csv, "repeat,phase,queries_per_s,rows_per_s,p50_ms,p99_ms,p999_ms,max_ms,ok,bad,"
                 "slow_by\n");
    for (unsigned rep = 0; rep < repeats; rep++) {
        for (int ph = 0; ph < PH_N; ph++) {
            struct result r;

            slow_set(ph == PH_LAT_SLOW_RR || ph == PH_LAT_SLOW);
            switch (ph) {
            case PH_DIRECT:
                phase_direct(warm, secs, &r);
                break;
            case PH_BROKER:
                phase_broker(harness_proc_addr(adaptive), N_NODES * THR_CLIENTS, warm, secs, &r);
                break;
            case PH_LAT_FAST:
            case PH_LAT_SLOW:
                phase_broker(harness_proc_addr(adaptive), LAT_CLIENTS, warm, secs, &r);
                break;
            default:
                phase_broker(harness_proc_addr(roundrobin), LAT_CLIENTS, warm, secs, &r);
                break;
            }
            slow_set(false);
            fig[ph][0][rep] = r.p99;
            fig[ph][1][rep] = r.rows_per_s;
            fig[ph][2][rep] = r.p50;
            printf("  repeat %u %-12s %8.1f q/s %7.1f Mrows/s  p50 %7.2f ms  p99 %7.2f ms  "
                   "p99.9 %7.2f ms  max %7.2f ms  ok %" PRIu64 " bad %" PRIu64 "%s%s\n",
                   rep + 1, phase_names[ph], r.qps, r.rows_per_s / 1e6, r.p50 * 1e3,
                   r.p99 * 1e3, r.p999 * 1e3, r.max * 1e3, r.ok, r.bad,
                   r.bad > 0 ? "  last error: " : "", r.bad > 0 ? r.last_error : "");
            fprintf(csv, "%u,%s,%.1f,%.0f,%.3f,%.3f,%.3f,%.3f,%" PRIu64 ",%" PRIu64 ",%s\n",
                    rep + 1, phase_names[ph], r.qps, r.rows_per_s, r.p50 * 1e3, r.p99 * 1e3,
                    r.p999 * 1e3, r.max * 1e3, r.ok, r.bad, slow_how);
            fflush(stdout);
            free(last[ph].lat);
            last[ph] = r;
        }
    }
    cdf_write(lcsv, 0, &last[PH_LAT_FAST]);
    cdf_write(lcsv, 1, &last[PH_LAT_SLOW_RR]);
    cdf_write(lcsv, 2, &last[PH_LAT_SLOW]);
    fclose(lcsv);
    lcsv = NULL;
    {
        double p99[PH_N], tput[PH_N], p50[PH_N];

        for (int ph = 0; ph < PH_N; ph++) {
            p99[ph] = bench_median(fig[ph][0], repeats);
            tput[ph] = bench_median(fig[ph][1], repeats);
            p50[ph] = bench_median(fig[ph][2], repeats);
        }
        printf("medians over %u repeats (slow node by %s):\n", repeats, slow_how);
        printf("  p99 no slow node, adaptive      %8.2f ms (p50 %.2f)\n", p99[PH_LAT_FAST] * 1e3,
               p50[PH_LAT_FAST] * 1e3);
        printf("  p99 no slow node, round robin   %8.2f ms (p50 %.2f)\n",
               p99[PH_LAT_FAST_RR] * 1e3, p50[PH_LAT_FAST_RR] * 1e3);
        printf("  p99 slow node, round robin      %8.2f ms (p50 %.2f)\n",
               p99[PH_LAT_SLOW_RR] * 1e3, p50[PH_LAT_SLOW_RR] * 1e3);
        printf("  p99 slow node, adaptive+hedging %8.2f ms (p50 %.2f)\n", p99[PH_LAT_SLOW] * 1e3,
               p50[PH_LAT_SLOW] * 1e3);
        printf("  adaptive slow p99 / no-slow p99  %6.2f  (target <= 1.5: %s)\n",
               p99[PH_LAT_SLOW] / p99[PH_LAT_FAST],
               p99[PH_LAT_SLOW] <= 1.5 * p99[PH_LAT_FAST] ? "met" : "MISSED");
        printf("  round-robin p99 / adaptive p99   %6.2f  (target >= 3: %s)\n",
               p99[PH_LAT_SLOW_RR] / p99[PH_LAT_SLOW],
               p99[PH_LAT_SLOW_RR] >= 3 * p99[PH_LAT_SLOW] ? "met" : "MISSED");
        printf("  broker / direct throughput       %6.2f  (%.1f against %.1f Mrows/s; target >= "
               "0.8: %s)\n",
               tput[PH_BROKER] / tput[PH_DIRECT], tput[PH_BROKER] / 1e6, tput[PH_DIRECT] / 1e6,
               tput[PH_BROKER] >= 0.8 * tput[PH_DIRECT] ? "met" : "MISSED");
        fprintf(csv, "median,p99_fast_ms,%.3f\nmedian,p99_fast_rr_ms,%.3f\n"
                     "median,p99_slow_rr_ms,%.3f\nmedian,p99_slow_adaptive_ms,%.3f\n"
                     "median,throughput_ratio,%.3f\n",
                p99[PH_LAT_FAST] * 1e3, p99[PH_LAT_FAST_RR] * 1e3, p99[PH_LAT_SLOW_RR] * 1e3,
                p99[PH_LAT_SLOW] * 1e3, tput[PH_BROKER] / tput[PH_DIRECT]);
    }
    fprintf(csv, "hedges_won,%.0f\nhedges_denied,%.0f\n",
            harness_metric(harness_proc_addr(adaptive),
                           "sluice_broker_hedges_total{outcome=\"won\"}"),
            harness_metric(harness_proc_addr(adaptive),
                           "sluice_broker_hedges_total{outcome=\"denied\"}"));
    printf("adaptive broker: hedges won %.0f, lost %.0f, denied %.0f; retries (timeout) %.0f\n",
           harness_metric(harness_proc_addr(adaptive), "sluice_broker_hedges_total{outcome=\"won\"}"),
           harness_metric(harness_proc_addr(adaptive), "sluice_broker_hedges_total{outcome=\"lost\"}"),
           harness_metric(harness_proc_addr(adaptive),
                          "sluice_broker_hedges_total{outcome=\"denied\"}"),
           harness_metric(harness_proc_addr(adaptive),
                          "sluice_broker_retries_total{reason=\"timeout\"}"));
    plot();
    printf("bench_broker: %.1f s in all\n", now_s() - t_start);
    rc = 0;
out:
    atomic_store(&stopper_quit, true);
    if (slow_cg == NULL && stopper != 0)
        pthread_join(stopper, NULL);
    if (csv != NULL)
        fclose(csv);
    if (lcsv != NULL)
        fclose(lcsv);
    harness_proc_free(adaptive);
    harness_proc_free(roundrobin);
    for (int i = 0; i < N_NODES; i++)
        harness_proc_free(nodes[i]);
    harness_proc_free(coord);
    slow_teardown();
    for (int ph = 0; ph < PH_N; ph++)
        free(last[ph].lat);
    for (int i = 0; i < N_NODES; i++) {
        free(shares[i].q.segment_ids);
        free(shares[i].body);
    }
    harness_dir_remove(dir);
    free(dir);
    free(storage);
    free(co);
    free(out);
    return rc;
}
