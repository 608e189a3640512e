/*
 * check_crash: the reliability battery's crash, stall, partition and
 * overload cases (issue 5, items 3-5), against real daemons started through
 * tests/harness.
 *
 *  - coordinator: a client thread registers segments in small batches while
 *    the coordinator is killed with SIGKILL at random moments and restarted
 *    on the same --db and the same port (picked here, so nodes keep
 *    reporting to one address). No acknowledged registration may be lost,
 *    the catalog must pass PRAGMA integrity_check after every restart, and
 *    placement must complete with no segment on two nodes.
 *  - node: nodes load 64 MiB segments and one of them is killed with SIGKILL
 *    in the middle of a load, again and again. A query thread checks every
 *    answer against values computed here from the generator's seed, so a
 *    partially copied segment that was served would show; no *.tmp file may
 *    survive a restart, and the coordinator must reconcile.
 *  - stall: SIGSTOP of a node for longer than --node-timeout; its segments
 *    must be LOADED elsewhere before SIGCONT, and its copies dropped after.
 *  - partition: one node in its own network namespace behind a veth pair,
 *    cut off with iptables inside that namespace, then healed (SKIP where
 *    namespaces cannot be made). Addresses are a private /30 that exists
 *    only between the veth ends; nothing leaves the machine.
 *  - overload: open-loop query load at 2x and 4x a node's measured capacity.
 *    Beyond --max-queries in flight the node must answer 429
 *    LOAD_CONCURRENCY; admitted queries stay fast and correct, and the RSS
 *    stays flat.
 *
 * Expected load: two shared cores. Rates, sizes and durations are bounded
 * so the normal run takes a few minutes; SLUICE_LONG=1 runs 1,000
 * coordinator kills instead of 100 and 60 node kill rounds instead of 20.
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
#include "harness.h"
#include "http.h"
#include "mkseg.h"
#include "segfmt.h"
#include "strmap.h"
#include "wire.h"
#include "xmalloc.h"

#define NODES 3

static char *dir, *storage;
static struct harness_proc *coord, *nodes[NODES];
static bool long_run;
static uint64_t rng_state;

/* ---- small helpers ------------------------------------------------------- */

static uint64_t now_ms(void)
{
    return clock_mono_ns() / 1000000ull;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* xorshift64*: random delays only. The seed is printed so a run can be replayed. */
static uint32_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 2685821657736338717ull) >> 32);
}

static void rnd_seed(const char *what)
{
    const char *env = getenv("SLUICE_CRASH_SEED");

    rng_state = env != NULL ? strtoull(env, NULL, 0) : (clock_mono_ns() ^ (uint64_t)getpid());
    if (rng_state == 0)
        rng_state = 1;
    fprintf(stderr, "check_crash: %s: SLUICE_CRASH_SEED=%" PRIu64 "\n", what, rng_state);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* The q-quantile (0..1) of n sorted values. */
static uint64_t quantile(const uint64_t *v, size_t n, double q)
{
    size_t i;

    if (n == 0)
        return 0;
    i = (size_t)(q * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

/* A free TCP port on host, found by binding port 0 and letting it go again. */
static int free_port(const char *host)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;

    if (fd < 0)
        return -1;
    inet_pton(AF_INET, host, &a.sin_addr);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static void ns_node_stop(void);

/*
 * Fixtures. A failed assertion ends a Check test process with _exit(), so
 * neither a checked teardown nor atexit() runs; what must not outlive a
 * failure is therefore made and removed by unchecked fixtures, which run in
 * the parent: the temporary directory here, the network namespace in
 * ns_setup/ns_teardown. Daemons die with the test process (PDEATHSIG).
 */
static void dir_setup(void)
{
    const char *l = getenv("SLUICE_LONG");

    long_run = l != NULL && l[0] != '\0' && strcmp(l, "0") != 0;
    dir = harness_dir_new("sluice-crash-it");
    storage = xasprintf("%s/storage", dir);
    mkdir(storage, 0755);
    /* A stopped or partitioned daemon answers nothing: wait 10 s, not the harness's 30. */
    harness_client_set(NULL, 10000);
}

static void dir_teardown(void)
{
    harness_dir_remove(dir);
    free(dir);
    free(storage);
    dir = storage = NULL;
}

/* Checked teardown: stops what the test started, in the test process. */
static void procs_teardown(void)
{
    /* A node left stopped would ignore SIGTERM: wake it first. */
    for (int i = 0; i < NODES; i++)
        if (nodes[i] != NULL)
            harness_proc_signal(nodes[i], SIGCONT);
    for (int i = 0; i < NODES; i++) {
        harness_proc_free(nodes[i]);
        nodes[i] = NULL;
    }
    harness_proc_free(coord);
    coord = NULL;
    ns_node_stop();
}

/* Writes <storage>/<name>.seg; returns its file:// URI (caller frees). */
static char *write_seg(const char *name, uint64_t rows, unsigned row_bytes, uint64_t seed)
{
    struct mkseg_spec spec = {.rows = rows, .row_bytes = row_bytes, .seed = seed};
    char *path = xasprintf("%s/%s.seg", storage, name), *uri, detail[256];

    ck_assert_msg(mkseg_write(path, &spec, detail, sizeof(detail)) == 0, "%s", detail);
    uri = xasprintf("file://%s", path);
    free(path);
    return uri;
}

/* sum(value) over every row, from the generator, never from a node. */
static int64_t synth_sum(uint64_t seed, uint64_t rows)
{
    int64_t s = 0;

    for (uint64_t r = 0; r < rows; r++)
        s += segment_synth_value(seed, r);
    return s;
}

/* ---- coordinator API ----------------------------------------------------- */

static bool coord_status(const char *addr, struct wire_cluster_status *st)
{
    return harness_cluster_status(addr, st) == 200;
}

static bool coord_segments(const char *addr, struct wire_segment_list *out)
{
    return harness_segments(addr, "?limit=1000000", out) == 200;
}

/* The coordinator's state for node id ("UP", "DOWN", ...), or "" if unknown. */
static void coord_node_state(const char *addr, const char *id, char *state, size_t len)
{
    struct wire_node_info ni;

    snprintf(state, len, "%s", harness_node_info(addr, id, &ni, NULL) ? ni.state : "");
}

/*
 * Registers ids <prefix><from..to-1>, id k pointing at uris[k % n_uris].
 * Returns the HTTP status, or a negative errno when no answer came.
 */
static int register_ids(const char *addr, const char *prefix, int from, int to, char *const *uris,
                        int n_uris, uint64_t rows, uint64_t row_size)
{
    return harness_register_ids(addr, prefix, 6, from, to, uris, (size_t)n_uris, rows, row_size);
}

/* Events of one kind about one node in the coordinator's log. */
static size_t coord_events(const char *addr, const char *kind, const char *node_id)
{
    struct wire_event_list evs;
    size_t n = 0;

    if (harness_events(addr, "?limit=100000", &evs) == 200) {
        for (size_t i = 0; i < evs.n; i++)
            n += strcmp(evs.events[i].kind, kind) == 0 &&
                 strcmp(evs.events[i].node_id, node_id) == 0;
        wire_event_list_done(&evs);
    }
    return n;
}

/* ---- node API ------------------------------------------------------------ */

static bool node_status_at(const char *addr, struct wire_node_status *st, unsigned timeout_ms)
{
    return harness_node_status(addr, NULL, timeout_ms, st);
}

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

/* sum(value) of one segment. Returns the HTTP status or a negative errno. */
static int query_sum(const char *addr, const char *id, struct wire_query_response *ret)
{
    return harness_query_one(addr, id, WIRE_AGG_SUM, "value", ret, NULL);
}

/* ---- the cluster as the nodes see it ------------------------------------ */

/* Address of node i: a harness process, or (partition case) the netns node. */
static char ns_node_addr[64];

static const char *node_addr(int i)
{
    if (nodes[i] != NULL)
        return harness_proc_addr(nodes[i]);
    return ns_node_addr;
}

/*
 * What the nodes themselves hold: segment id -> bit mask, bits 0..7 for "on
 * node i in any state", bits 8..15 for "LOADED on node i".
 */
struct nodeview {
    struct strmap *held;
    size_t entries; /* distinct ids */
    size_t dups;    /* ids on more than one node */
    size_t unloaded;
    char dup_example[WIRE_ID_MAX + 64];
};

static int nodeview_count_cb(const char *key, void *value, void *arg)
{
    struct nodeview *v = arg;
    uintptr_t m = (uintptr_t)value, any = m & 0xff, loaded = (m >> 8) & 0xff;

    if (__builtin_popcountl(any) > 1) {
        if (v->dups++ == 0)
            snprintf(v->dup_example, sizeof(v->dup_example), "%s (node mask 0x%lx)", key,
                     (unsigned long)any);
    }
    v->unloaded += loaded != any;
    return 0;
}

/* Collects every node's own status; skip_mask leaves nodes out (stopped, cut off). */
static bool nodeview_fetch(struct nodeview *v, unsigned skip_mask)
{
    memset(v, 0, sizeof(*v));
    v->held = strmap_new();
    for (int i = 0; i < NODES; i++) {
        struct wire_node_status st;

        if (skip_mask & (1u << i))
            continue;
        if (!node_status_at(node_addr(i), &st, 5000))
            return false;
        for (size_t k = 0; k < st.n_segments; k++) {
            const struct wire_segment_status *s = &st.segments[k];
            uintptr_t m = (uintptr_t)strmap_get(v->held, s->segment_id);
            if (s->state != WIRE_SEG_LOADING && s->state != WIRE_SEG_LOADED)
                continue;
            m |= 1u << i;
            if (s->state == WIRE_SEG_LOADED)
                m |= 1u << (8 + i);
            strmap_put(v->held, s->segment_id, (void *)m);
        }
        wire_node_status_done(&st);
    }
    v->entries = strmap_count(v->held);
    strmap_foreach(v->held, nodeview_count_cb, v);
    return true;
}

static void nodeview_done(struct nodeview *v)
{
    strmap_free(v->held);
    v->held = NULL;
}

/*
 * The cluster has settled on n segments: the coordinator counts n, all
 * LOADED; every node answers, together they hold exactly n ids, each LOADED
 * on exactly one node; and (when check_placements) the coordinator's
 * placement of every segment is that node. why says what is still wrong.
 */
static bool cluster_settled(const char *caddr, uint64_t n, bool check_placements, char *why,
                            size_t why_len)
{
    struct wire_cluster_status cs;
    struct wire_segment_list sl;
    struct nodeview v;
    bool ok = false;

    if (!coord_status(caddr, &cs)) {
        snprintf(why, why_len, "coordinator status unavailable");
        return false;
    }
    if (cs.segments_total != n || cs.segments_loaded != n) {
        snprintf(why, why_len, "coordinator: %" PRIu64 " of %" PRIu64 " LOADED (want %" PRIu64 ")",
                 cs.segments_loaded, cs.segments_total, n);
        return false;
    }
    if (!nodeview_fetch(&v, 0)) {
        snprintf(why, why_len, "a node did not answer GET /v1/status");
        nodeview_done(&v);
        return false;
    }
    if (v.entries != n || v.dups != 0 || v.unloaded != 0) {
        snprintf(why, why_len,
                 "nodes hold %zu ids (want %" PRIu64 "), %zu on two nodes (%s), %zu "
                 "not LOADED",
                 v.entries, n, v.dups, v.dups ? v.dup_example : "-", v.unloaded);
        goto out;
    }
    if (check_placements) {
        if (!coord_segments(caddr, &sl)) {
            snprintf(why, why_len, "coordinator segment list unavailable");
            goto out;
        }
        ok = true;
        for (size_t i = 0; i < sl.n && ok; i++) {
            const struct wire_segment_info *s = &sl.segments[i];
            uintptr_t m = (uintptr_t)strmap_get(v.held, s->spec.segment_id);
            char want[16];
            if (s->n_placements != 1 || m == 0) {
                snprintf(why, why_len, "%s: %zu placements at the coordinator, node mask 0x%lx",
                         s->spec.segment_id, s->n_placements, (unsigned long)m);
                ok = false;
                break;
            }
            snprintf(want, sizeof(want), "node-%d", __builtin_ctzl(m & 0xff));
            if (strcmp(s->placements[0].node_id, want) != 0) {
                snprintf(why, why_len, "%s: the coordinator says %s, the nodes say %s",
                         s->spec.segment_id, s->placements[0].node_id, want);
                ok = false;
            }
        }
        wire_segment_list_done(&sl);
        goto out;
    }
    ok = true;
out:
    nodeview_done(&v);
    return ok;
}

/* Polls cluster_settled until it holds or timeout_ms passes. */
static bool wait_settled(const char *caddr, uint64_t n, bool check_placements, unsigned timeout_ms,
                         char *why, size_t why_len)
{
    uint64_t deadline = now_ms() + timeout_ms;

    for (;;) {
        if (cluster_settled(caddr, n, check_placements, why, why_len))
            return true;
        if (now_ms() >= deadline)
            return false;
        sleep_ms(100);
    }
}

/*
 * Nodes run with --admission=off: on a shared machine other tenants' memory
 * pressure shows in host-wide PSI and would close the MEM_* gates, and what
 * this suite checks (crashes, stalls, partitions) must not depend on that.
 * Admission has its own suites.
 */
static void start_node(int i, const char *caddr, const char *const *more)
{
    char *data = xasprintf("%s/node-%d", dir, i), *id = xasprintf("--node-id=node-%d", i);
    char *co = xasprintf("--coordinator=%s", caddr);
    const char *args[16] = {id, co, "--report-interval=250ms", "--admission=off", NULL};
    int n = 4;

    for (int k = 0; more != NULL && more[k] != NULL && n < 15; k++)
        args[n++] = more[k];
    args[n] = NULL;
    nodes[i] = harness_node_start(storage, data, args);
    ck_assert_msg(nodes[i] != NULL, "node-%d did not start", i);
    free(data);
    free(id);
    free(co);
}

/* ---- 1. coordinator kill -9 loop ----------------------------------------- */

#define REG_BATCH   4
#define SMALL_FILES 4
#define SMALL_ROWS  256

struct reg_client {
    const char *addr;
    char *const *uris;
    unsigned pause_ms; /* between batches */
    int max_ids;       /* past this, acknowledged batches are sent again instead of new ones */
    atomic_bool stop;
    /* Written by the client thread only; read after join. */
    int next; /* ids [0, next) were acknowledged */
    unsigned long posts, refused, errors_5xx, unexpected;
    int unexpected_status;
};

/*
 * Registers batches of fresh ids forever; a batch that gets no 200 is sent
 * again, unchanged, until it does (a retried registration is answered 200
 * with "unchanged"), so every id below `next` was acknowledged exactly as
 * sent and no id above it was ever sent.
 */
static void *reg_client_main(void *arg)
{
    struct reg_client *rc = arg;

    while (!atomic_load(&rc->stop)) {
        int from = rc->next, to = from + REG_BATCH;
        uint64_t give_up = 0;

        /* Enough ids: retried registrations keep the path busy without growing the catalog. */
        if (rc->next >= rc->max_ids) {
            from = rc->next - REG_BATCH;
            to = rc->next;
        }

        for (;;) {
            int st = register_ids(rc->addr, "c", from, to, rc->uris, SMALL_FILES, SMALL_ROWS, 16);
            rc->posts++;
            if (st == 200)
                break;
            if (st < 0)
                rc->refused++;
            else if (st >= 500)
                rc->errors_5xx++;
            else {
                rc->unexpected++;
                rc->unexpected_status = st;
            }
            /* Once told to stop, the last batch still gets 60 s to be acknowledged. */
            if (atomic_load(&rc->stop)) {
                if (give_up == 0)
                    give_up = now_ms() + 60000;
                else if (now_ms() > give_up)
                    return NULL;
            }
            sleep_ms(10);
        }
        rc->next = to;
        sleep_ms(rc->pause_ms);
    }
    return NULL;
}

static int print_event_cb(const struct catalog_event *e, void *arg)
{
    fprintf(stderr, "  %" PRId64 " %s node=%s reason=%s status=%d detail=\"%s\"\n", e->ts_ms,
            e->kind, e->node_id, e->reason, e->http_status, e->detail);
    (void)arg;
    return 0;
}

/* On a failure: the segment's history from the catalog, and the log's lines that name it. */
static void print_history(struct catalog *cat, const char *id, const char *log)
{
    FILE *f = fopen(log, "re");
    char line[1024];

    fprintf(stderr, "check_crash: events of %s in the catalog:\n", id);
    catalog_foreach_event(cat, id, 0, 0, print_event_cb, NULL);
    fprintf(stderr, "check_crash: lines of %s about %s or the catalog:\n", log, id);
    while (f != NULL && fgets(line, sizeof(line), f) != NULL)
        if (strstr(line, id) != NULL || strstr(line, "catalog_commit") != NULL ||
            strstr(line, "catalog_write") != NULL || strstr(line, "level=error") != NULL)
            fputs(line, stderr);
    if (f != NULL)
        fclose(f);
}

/*
 * Watches the nodes while the coordinator is being killed. Nodes never die
 * here, so a segment that a node once held must stay on some node: a copy
 * may move (a duplicate is dropped once another copy is LOADED), but a
 * segment missing from every node in two polls in a row means the cluster
 * dropped its only live copy.
 */
struct vanish {
    bool present, missing_once, counted;
};

struct monitor {
    atomic_bool stop;
    struct strmap *seen; /* id -> struct vanish (owned) */
    unsigned long polls, vanished;
    char example[WIRE_ID_MAX + 1];
};

struct monitor_pass {
    struct monitor *m;
    struct strmap *now;
};

static int monitor_check_cb(const char *key, void *value, void *arg)
{
    struct monitor_pass *p = arg;
    struct vanish *v = value;

    if (strmap_get(p->now, key) != NULL) {
        v->missing_once = false;
        return 0;
    }
    if (v->missing_once && !v->counted) {
        v->counted = true;
        if (p->m->vanished++ == 0)
            snprintf(p->m->example, sizeof(p->m->example), "%s", key);
    }
    v->missing_once = true;
    return 0;
}

static int monitor_add_cb(const char *key, void *value, void *arg)
{
    struct monitor *m = arg;

    if (strmap_get(m->seen, key) == NULL)
        strmap_put(m->seen, key, xcalloc(1, sizeof(struct vanish)));
    (void)value;
    return 0;
}

static int monitor_free_cb(const char *key, void *value, void *arg)
{
    free(value);
    return 0;
}

static void *monitor_main(void *arg)
{
    struct monitor *m = arg;

    while (!atomic_load(&m->stop)) {
        struct monitor_pass p = {m, strmap_new()};
        bool all = true;

        for (int i = 0; i < NODES && all; i++) {
            struct wire_node_status st;
            if (!node_status_at(node_addr(i), &st, 5000)) {
                all = false;
                break;
            }
            for (size_t k = 0; k < st.n_segments; k++)
                if (st.segments[k].state == WIRE_SEG_LOADING ||
                    st.segments[k].state == WIRE_SEG_LOADED)
                    strmap_put(p.now, st.segments[k].segment_id, (void *)1);
            wire_node_status_done(&st);
        }
        if (all) {
            m->polls++;
            strmap_foreach(m->seen, monitor_check_cb, &p);
            strmap_foreach(p.now, monitor_add_cb, m);
        }
        strmap_free(p.now);
        sleep_ms(150);
    }
    return NULL;
}

/* Lines of a log file that contain needle (the first one copied into first). */
static unsigned count_log(const char *path, const char *needle, char *first, size_t len)
{
    FILE *f = fopen(path, "re");
    char line[1024];
    unsigned n = 0;

    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        if (strstr(line, needle) != NULL && n++ == 0 && first != NULL)
            snprintf(first, len, "%s", line);
    }
    if (f != NULL)
        fclose(f);
    return n;
}

/* PRAGMA integrity_check of the catalog, next to the running coordinator. */
static int catalog_check(const char *db, char *err, size_t err_len)
{
    struct catalog *cat;
    int r = catalog_open(db, &cat, err, err_len);

    if (r < 0)
        return r;
    r = catalog_integrity_check(cat, err, err_len);
    catalog_close(cat);
    return r;
}

struct assign_check {
    struct strmap *held; /* from the nodes */
    unsigned long checked, mismatched;
    char example[400];
    char example_id[WIRE_ID_MAX + 1];
};

static int assign_check_cb(const struct catalog_assignment *a, void *arg)
{
    struct assign_check *ac = arg;
    uintptr_t m = (uintptr_t)strmap_get(ac->held, a->segment_id);
    char want[16];

    snprintf(want, sizeof(want), "node-%d", m ? __builtin_ctzl(m & 0xff) : -1);
    ac->checked++;
    if (strcmp(a->state, "LOADED") != 0 || strcmp(a->node_id, want) != 0) {
        if (ac->mismatched++ == 0) {
            snprintf(ac->example, sizeof(ac->example), "%s: catalog %s on %s, nodes say %s",
                     a->segment_id, a->state, a->node_id, want);
            snprintf(ac->example_id, sizeof(ac->example_id), "%s", a->segment_id);
        }
    }
    return 0;
}

START_TEST(test_coord_kill_loop)
{
    const int kills = long_run ? 1000 : 100;
    int port = free_port("127.0.0.1"), k, failures = 0;
    char caddr[64], listen[80], *uris[SMALL_FILES], *db, err[256], why[512], first_failure[300];
    const char *cargs[] = {listen, NULL};
    struct reg_client rc;
    struct monitor mon;
    pthread_t th, mth;
    unsigned long lost = 0;
    struct catalog *cat;
    struct nodeview v;
    struct assign_check ac;
    uint64_t t0, restart_ms = 0;

    rnd_seed("coordinator kill loop");
    ck_assert_int_gt(port, 0);
    snprintf(caddr, sizeof(caddr), "127.0.0.1:%d", port);
    snprintf(listen, sizeof(listen), "--listen=%s", caddr);
    first_failure[0] = '\0';
    for (int i = 0; i < SMALL_FILES; i++) {
        char name[32];
        snprintf(name, sizeof(name), "small-%d", i);
        uris[i] = write_seg(name, SMALL_ROWS, 16, 500 + (uint64_t)i);
    }
    db = xasprintf("%s/coord.db", dir);
    coord = harness_coord_start(dir, cargs);
    ck_assert_ptr_nonnull(coord);
    ck_assert_str_eq(harness_proc_addr(coord), caddr);
    for (int i = 0; i < NODES; i++)
        start_node(i, caddr, NULL);

    memset(&rc, 0, sizeof(rc));
    rc.addr = caddr;
    rc.uris = uris;
    /*
     * Each restart reloads the whole catalog, and GET /v1/segments must stay
     * under the 4 MiB body limit: the long run stops at 15,000 segments.
     */
    rc.pause_ms = long_run ? 45 : 15;
    rc.max_ids = long_run ? 15000 : INT_MAX;
    atomic_init(&rc.stop, false);
    ck_assert_int_eq(pthread_create(&th, NULL, reg_client_main, &rc), 0);
    memset(&mon, 0, sizeof(mon));
    atomic_init(&mon.stop, false);
    mon.seen = strmap_new();
    ck_assert_int_eq(pthread_create(&mth, NULL, monitor_main, &mon), 0);
    t0 = now_ms();
    for (k = 0; k < kills; k++) {
        uint64_t r0;
        int rs;

        sleep_ms(20 + rnd() % 281);
        harness_proc_kill(coord);
        r0 = now_ms();
        rs = harness_proc_restart(coord);
        restart_ms += now_ms() - r0;
        if (rs < 0) {
            atomic_store(&rc.stop, true);
            atomic_store(&mon.stop, true);
            ck_abort_msg("the coordinator did not come back after kill %d", k + 1);
        }
        /* The restarted coordinator's catalog, checked while it serves. */
        if (catalog_check(db, err, sizeof(err)) < 0) {
            if (failures++ == 0)
                snprintf(first_failure, sizeof(first_failure), "after kill %d: %s", k + 1, err);
        }
    }
    atomic_store(&rc.stop, true);
    pthread_join(th, NULL);
    fprintf(stderr,
            "check_crash: %d kills in %.1f s (restart %.0f ms on average); client: %lu "
            "posts, %lu without answer, %lu 5xx\n",
            kills, (double)(now_ms() - t0) / 1000.0, (double)restart_ms / kills, rc.posts,
            rc.refused, rc.errors_5xx);
    ck_assert_msg(rc.unexpected == 0, "%lu registrations answered %d", rc.unexpected,
                  rc.unexpected_status);
    ck_assert_int_gt(rc.next, 0);

    /* Placement completes, each segment on exactly one node, views agree. */
    t0 = now_ms();
    if (!wait_settled(caddr, (uint64_t)rc.next, true, 180000, why, sizeof(why))) {
        atomic_store(&mon.stop, true);
        harness_proc_dump_log(coord);
        ck_abort_msg("placement did not complete: %s", why);
    }
    atomic_store(&mon.stop, true);
    pthread_join(mth, NULL);
    fprintf(stderr,
            "check_crash: %d segments LOADED, one node each, the coordinator agreeing, %.1f s "
            "after the last kill; %lu polls of the nodes saw %lu segments vanish from every "
            "node\n",
            rc.next, (double)(now_ms() - t0) / 1000.0, mon.polls, mon.vanished);

    /* Then read the catalog itself: every acknowledged id, and where it is. */
    ck_assert_int_eq(harness_proc_stop(coord), 0);
    ck_assert(nodeview_fetch(&v, 0));
    ck_assert_int_eq(catalog_open(db, &cat, err, sizeof(err)), 0);
    for (int i = 0; i < rc.next; i++) {
        struct catalog_segment s;
        char id[32];
        snprintf(id, sizeof(id), "c%06d", i);
        if (catalog_get_segment(cat, id, &s) < 0) {
            if (lost++ == 0)
                fprintf(stderr, "check_crash: acknowledged %s is not in the catalog\n", id);
        } else {
            ck_assert_str_eq(s.state, "LOADED");
            ck_assert_uint_eq(s.row_count, SMALL_ROWS);
        }
    }
    {
        uint64_t total = 0;
        ck_assert_int_eq(catalog_count_segments(cat, NULL, &total), 0);
        ck_assert_uint_eq(total, (uint64_t)rc.next);
    }
    memset(&ac, 0, sizeof(ac));
    ac.held = v.held;
    ck_assert_int_eq(catalog_foreach_assignment(cat, NULL, NULL, assign_check_cb, &ac), 0);
    if (ac.mismatched > 0 || mon.vanished > 0) {
        char *log = xasprintf("%s/coord.log", dir);
        print_history(cat, ac.mismatched > 0 ? ac.example_id : mon.example, log);
        free(log);
    }
    if (catalog_integrity_check(cat, err, sizeof(err)) < 0 && failures++ == 0)
        snprintf(first_failure, sizeof(first_failure), "at the end: %s", err);
    catalog_close(cat);
    nodeview_done(&v);

    fprintf(stderr,
            "check_crash: coordinator kills %d, acknowledged registrations %d, lost %lu, "
            "integrity failures %d\n",
            kills, rc.next, lost, failures);
    ck_assert_msg(failures == 0, "catalog integrity: %s", first_failure);
    ck_assert_uint_eq(lost, 0);
    ck_assert_msg(ac.checked == (unsigned long)rc.next && ac.mismatched == 0,
                  "catalog assignments: %lu for %d segments, %lu differ from the nodes (%s)",
                  ac.checked, rc.next, ac.mismatched, ac.example);
    /* Every write the coordinator made reached the catalog (a failed group commit is logged). */
    {
        char *log = xasprintf("%s/coord.log", dir), first[1024] = "";
        unsigned errors = count_log(log, "level=error", first, sizeof(first));
        ck_assert_msg(errors == 0, "the coordinator logged %u errors, the first: %s", errors,
                      first);
        free(log);
    }
    ck_assert_msg(mon.vanished == 0,
                  "%lu segments vanished from every node while the coordinator was being killed "
                  "(first: %s): a coordinator crash made the cluster drop a segment's only live "
                  "copy",
                  mon.vanished, mon.example);
    strmap_foreach(mon.seen, monitor_free_cb, NULL);
    strmap_free(mon.seen);
    for (int i = 0; i < SMALL_FILES; i++)
        free(uris[i]);
    free(db);
}
END_TEST

/* ---- 2. node kill -9 while loading --------------------------------------- */

#define BIG_FILES 3
#define BIG_ROWS  (4ull << 20) /* x 16 B = 64 MiB */

struct big_truth {
    int64_t sum[BIG_FILES];
};

/* Queries every known segment on every live node and checks each 200. */
struct querier {
    pthread_mutex_t mu;
    char addr[NODES][64]; /* "" while the node is down */
    atomic_int n_ids;
    atomic_bool stop;
    const struct big_truth *truth;
    unsigned long ok, absent, wrong, other;
    char wrong_detail[256];
};

static void *querier_main(void *arg)
{
    struct querier *q = arg;

    while (!atomic_load(&q->stop)) {
        int n = atomic_load(&q->n_ids);
        for (int i = 0; i < NODES && !atomic_load(&q->stop); i++) {
            char addr[64];
            pthread_mutex_lock(&q->mu);
            snprintf(addr, sizeof(addr), "%s", q->addr[i]);
            pthread_mutex_unlock(&q->mu);
            if (addr[0] == '\0')
                continue;
            for (int k = 0; k < n && !atomic_load(&q->stop); k++) {
                struct wire_query_response resp;
                char id[32];
                int st;
                snprintf(id, sizeof(id), "big%06d", k);
                st = query_sum(addr, id, &resp);
                if (st == 200) {
                    int64_t want = q->truth->sum[k % BIG_FILES];
                    if (resp.rows_matched != BIG_ROWS || resp.int_value != want) {
                        if (q->wrong++ == 0)
                            snprintf(q->wrong_detail, sizeof(q->wrong_detail),
                                     "%s on %s: %" PRIu64 " rows, sum %" PRId64 "; want %" PRIu64
                                     " rows, sum %" PRId64,
                                     id, addr, resp.rows_matched, resp.int_value,
                                     (uint64_t)BIG_ROWS, want);
                    } else {
                        q->ok++;
                        sleep_ms(5); /* a scan costs a few ms of a shared core */
                    }
                } else if (st == 404) {
                    q->absent++;
                } else if (st > 0) {
                    q->other++;
                }
            }
        }
        sleep_ms(20);
    }
    return NULL;
}

/* Files under d named *.tmp, and how many of them were last written before before_ns. */
static int count_tmp(const char *d, int64_t before_ns, int *ret_old, char *example, size_t len)
{
    DIR *dd = opendir(d);
    struct dirent *de;
    int n = 0;

    *ret_old = 0;
    if (dd == NULL)
        return 0;
    while ((de = readdir(dd)) != NULL) {
        size_t l = strlen(de->d_name);
        struct stat sb;
        char *p;
        if (l < 4 || strcmp(de->d_name + l - 4, ".tmp") != 0)
            continue;
        n++;
        p = xasprintf("%s/%s", d, de->d_name);
        if (stat(p, &sb) == 0 &&
            (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec < before_ns) {
            if ((*ret_old)++ == 0 && example != NULL)
                snprintf(example, len, "%s", p);
        }
        free(p);
    }
    closedir(dd);
    return n;
}

static int64_t wall_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Whether node i reports a segment LOADING within timeout_ms (0: asks once). */
static bool node_loading(int i, unsigned timeout_ms)
{
    uint64_t deadline = now_ms() + timeout_ms;

    for (;;) {
        struct wire_node_status st;
        bool loading = false;
        if (node_status_at(node_addr(i), &st, 2000)) {
            for (size_t k = 0; k < st.n_segments; k++)
                loading |= st.segments[k].state == WIRE_SEG_LOADING;
            wire_node_status_done(&st);
            if (loading)
                return true;
        }
        if (now_ms() >= deadline)
            return false;
        sleep_ms(2);
    }
}

/* A node reporting a segment LOADING within timeout_ms (asked from a random one on), or -1. */
static int find_loading(unsigned timeout_ms)
{
    uint64_t deadline = now_ms() + timeout_ms;
    int first = (int)(rnd() % NODES);

    while (now_ms() < deadline) {
        for (int j = 0; j < NODES; j++) {
            int i = (first + j) % NODES;
            if (node_loading(i, 0))
                return i;
        }
        sleep_ms(2);
    }
    return -1;
}

struct kill_stats {
    int kills, while_loading, with_tmp, leftovers, reload_kills;
    int per_node[NODES];
    char leftover[512];
};

/*
 * kill -9 of node i, a pause, and a restart on the same data dir; then no
 * *.tmp the killed process wrote may be left (files written since the
 * restart belong to new loads).
 */
static void kill_restart(struct querier *q, int i, struct kill_stats *ks)
{
    char *segdir = xasprintf("%s/node-%d/segments", dir, i);
    int64_t killed_at;
    int old = 0;

    harness_proc_kill(nodes[i]);
    killed_at = wall_ns();
    ks->kills++;
    ks->per_node[i]++;
    pthread_mutex_lock(&q->mu);
    q->addr[i][0] = '\0';
    pthread_mutex_unlock(&q->mu);
    ks->with_tmp += count_tmp(segdir, INT64_MAX, &old, NULL, 0) > 0;
    sleep_ms(rnd() % 200);
    ck_assert_int_eq(harness_proc_restart(nodes[i]), 0);
    count_tmp(segdir, killed_at, &old, ks->leftover, sizeof(ks->leftover));
    ks->leftovers += old;
    pthread_mutex_lock(&q->mu);
    snprintf(q->addr[i], sizeof(q->addr[i]), "%s", node_addr(i));
    pthread_mutex_unlock(&q->mu);
    free(segdir);
}

START_TEST(test_node_kill_loading)
{
    const int iterations = long_run ? 60 : 20;
    const char *cargs[] = {"--node-timeout=3s", NULL};
    const char *nargs[] = {"--load-workers=2", NULL};
    char *uris[BIG_FILES], why[512];
    struct big_truth truth;
    struct kill_stats ks;
    struct querier q;
    pthread_t th;
    int registered = 0;
    uint64_t t0;

    rnd_seed("node kill while loading");
    memset(&ks, 0, sizeof(ks));
    for (int i = 0; i < BIG_FILES; i++) {
        char name[32];
        snprintf(name, sizeof(name), "big-%d", i);
        uris[i] = write_seg(name, BIG_ROWS, 16, 900 + (uint64_t)i);
        truth.sum[i] = synth_sum(900 + (uint64_t)i, BIG_ROWS);
    }
    coord = harness_coord_start(dir, cargs);
    ck_assert_ptr_nonnull(coord);
    for (int i = 0; i < NODES; i++)
        start_node(i, harness_proc_addr(coord), nargs);

    memset(&q, 0, sizeof(q));
    pthread_mutex_init(&q.mu, NULL);
    for (int i = 0; i < NODES; i++)
        snprintf(q.addr[i], sizeof(q.addr[i]), "%s", node_addr(i));
    q.truth = &truth;
    ck_assert_int_eq(pthread_create(&th, NULL, querier_main, &q), 0);

    t0 = now_ms();
    for (int it = 0; it < iterations; it++) {
        int victim;

        /* One new 64 MiB segment; kill whichever node is copying or verifying. */
        ck_assert_int_eq(register_ids(harness_proc_addr(coord), "big", registered, registered + 1,
                                      uris, BIG_FILES, BIG_ROWS, 16),
                         200);
        registered++;
        atomic_store(&q.n_ids, registered);
        victim = find_loading(10000);
        ks.while_loading += victim >= 0;
        if (victim < 0)
            victim = it % NODES;
        sleep_ms(rnd() % 40);
        kill_restart(&q, victim, &ks);
        /* Every other time, kill it again while it re-verifies what it had. */
        if (rnd() % 2 == 0 && node_loading(victim, 300)) {
            sleep_ms(rnd() % 20);
            kill_restart(&q, victim, &ks);
            ks.reload_kills++;
            ks.while_loading++;
        }
    }
    fprintf(stderr,
            "check_crash: %d node kills (node-0 %d, node-1 %d, node-2 %d) in %.1f s: %d while "
            "a load was reported (%d of them during the reload after a restart), %d with a "
            "partial *.tmp on disk\n",
            ks.kills, ks.per_node[0], ks.per_node[1], ks.per_node[2],
            (double)(now_ms() - t0) / 1000.0, ks.while_loading, ks.reload_kills, ks.with_tmp);

    t0 = now_ms();
    if (!wait_settled(harness_proc_addr(coord), (uint64_t)registered, true, 240000, why,
                      sizeof(why))) {
        atomic_store(&q.stop, true);
        pthread_join(th, NULL);
        harness_proc_dump_log(coord);
        ck_abort_msg("the coordinator did not reconcile: %s", why);
    }
    fprintf(stderr,
            "check_crash: %d segments of 64 MiB LOADED, one node each, %.1f s after the "
            "last kill\n",
            registered, (double)(now_ms() - t0) / 1000.0);
    atomic_store(&q.stop, true);
    pthread_join(th, NULL);
    pthread_mutex_destroy(&q.mu);

    /* Every LOADED copy answers right; no partial file anywhere. */
    for (int i = 0; i < NODES; i++) {
        struct wire_node_status st;
        char *segdir = xasprintf("%s/node-%d/segments", dir, i);
        int old;
        ck_assert(node_status_at(node_addr(i), &st, 5000));
        for (size_t k = 0; k < st.n_segments; k++) {
            struct wire_query_response resp;
            int idx = atoi(st.segments[k].segment_id + 3);
            ck_assert_int_eq(st.segments[k].state, WIRE_SEG_LOADED);
            ck_assert_int_eq(query_sum(node_addr(i), st.segments[k].segment_id, &resp), 200);
            ck_assert_uint_eq(resp.rows_matched, BIG_ROWS);
            ck_assert_int_eq(resp.int_value, truth.sum[idx % BIG_FILES]);
        }
        wire_node_status_done(&st);
        ck_assert_int_eq(count_tmp(segdir, INT64_MAX, &old, NULL, 0), 0);
        free(segdir);
    }
    fprintf(stderr,
            "check_crash: queries during the kills: %lu correct, %lu not served (404), "
            "%lu other, %lu wrong; *.tmp left by a killed node after its restart: %d\n",
            q.ok, q.absent, q.other, q.wrong, ks.leftovers);
    ck_assert_msg(q.wrong == 0, "a partial or wrong segment was served: %s", q.wrong_detail);
    ck_assert_msg(ks.leftovers == 0, "partial file survived a restart: %s", ks.leftover);
    ck_assert_uint_gt(q.ok, 0);
    ck_assert_int_gt(ks.while_loading, ks.kills / 2);
    for (int i = 0; i < BIG_FILES; i++)
        free(uris[i]);
}
END_TEST

/* ---- 3. SIGSTOP longer than --node-timeout -------------------------------- */

/* Segments that the coordinator places on node `id` (ids copied into *ret). */
static size_t coord_placed_on(const char *caddr, const char *id, struct strmap *ret)
{
    struct wire_segment_list sl;
    size_t n = 0;

    if (!coord_segments(caddr, &sl))
        return SIZE_MAX;
    for (size_t i = 0; i < sl.n; i++) {
        for (size_t p = 0; p < sl.segments[i].n_placements; p++) {
            if (strcmp(sl.segments[i].placements[p].node_id, id) == 0) {
                n++;
                if (ret != NULL)
                    strmap_put(ret, sl.segments[i].spec.segment_id, (void *)1);
            }
        }
    }
    wire_segment_list_done(&sl);
    return n;
}

struct moved_wait {
    const char *caddr, *node_id;
    uint64_t n;
    char why[256];
};

/* The node is DOWN and every segment is LOADED, none of them on it. */
static bool moved_away(void *arg)
{
    struct moved_wait *w = arg;
    struct wire_cluster_status cs;
    char state[16];
    size_t on = SIZE_MAX;
    bool st_ok;

    coord_node_state(w->caddr, w->node_id, state, sizeof(state));
    st_ok = coord_status(w->caddr, &cs);
    if (st_ok)
        on = coord_placed_on(w->caddr, w->node_id, NULL);
    snprintf(w->why, sizeof(w->why),
             "%s is %s; coordinator %s: %" PRIu64 " of %" PRIu64 " LOADED, %zu still placed on it",
             w->node_id, state[0] ? state : "unknown", st_ok ? "answers" : "does not answer",
             st_ok ? cs.segments_loaded : 0, st_ok ? cs.segments_total : 0, on);
    return strcmp(state, "DOWN") == 0 && st_ok && cs.segments_loaded == w->n &&
           cs.segments_total == w->n && on == 0;
}

struct rejoin_wait {
    const char *caddr, *node_id;
    int node;
    struct strmap *moved;
    size_t still_held;
};

/* The node is UP again and holds none of the segments that moved away. */
static bool rejoined(void *arg)
{
    struct rejoin_wait *w = arg;
    struct wire_node_status st;
    char state[16];

    coord_node_state(w->caddr, w->node_id, state, sizeof(state));
    if (strcmp(state, "UP") != 0 || !node_status_at(node_addr(w->node), &st, 2000))
        return false;
    w->still_held = 0;
    for (size_t k = 0; k < st.n_segments; k++)
        w->still_held += strmap_get(w->moved, st.segments[k].segment_id) != NULL;
    wire_node_status_done(&st);
    return w->still_held == 0;
}

/* Registers n small segments (ids s000000..) and waits until all are LOADED. */
static void place_small(const char *caddr, int n)
{
    char *uris[2], why[512];

    uris[0] = write_seg("tiny-0", 4096, 16, 71);
    uris[1] = write_seg("tiny-1", 4096, 16, 72);
    ck_assert_int_eq(register_ids(caddr, "s", 0, n, uris, 2, 4096, 16), 200);
    ck_assert_msg(wait_settled(caddr, (uint64_t)n, true, 60000, why, sizeof(why)), "%s", why);
    free(uris[0]);
    free(uris[1]);
}

START_TEST(test_sigstop)
{
    const int n = 60, victim = 1;
    const char *cargs[] = {"--node-timeout=2s", NULL};
    struct moved_wait mw;
    struct rejoin_wait rw;
    struct strmap *moved = strmap_new();
    size_t held;
    uint64_t t0, t_moved, t_cont, t_rejoined;
    size_t dropped;
    char why[512];

    coord = harness_coord_start(dir, cargs);
    ck_assert_ptr_nonnull(coord);
    for (int i = 0; i < NODES; i++)
        start_node(i, harness_proc_addr(coord), NULL);
    place_small(harness_proc_addr(coord), n);
    held = coord_placed_on(harness_proc_addr(coord), "node-1", moved);
    ck_assert_uint_gt(held, 0);

    ck_assert_int_eq(harness_proc_signal(nodes[victim], SIGSTOP), 0);
    t0 = now_ms();
    mw.caddr = harness_proc_addr(coord);
    mw.node_id = "node-1";
    mw.n = (uint64_t)n;
    /* Re-placement happens while the node is still stopped. */
    if (!harness_wait_until(moved_away, &mw, 30000)) {
        harness_proc_signal(nodes[victim], SIGCONT);
        harness_proc_dump_log(coord);
        ck_abort_msg("the stopped node's segments were not LOADED elsewhere within 30 s: %s",
                     mw.why);
    }
    t_moved = now_ms() - t0;
    /* The others hold everything, once each, while node-1 is still stopped. */
    {
        struct nodeview v;
        ck_assert(nodeview_fetch(&v, 1u << victim));
        ck_assert_uint_eq(v.entries, (size_t)n);
        ck_assert_uint_eq(v.dups, 0);
        nodeview_done(&v);
    }
    ck_assert_int_eq(harness_proc_signal(nodes[victim], SIGCONT), 0);
    t_cont = now_ms();
    rw.caddr = harness_proc_addr(coord);
    rw.node_id = "node-1";
    rw.node = victim;
    rw.moved = moved;
    ck_assert_msg(harness_wait_until(rejoined, &rw, 30000),
                  "node-1 did not rejoin or still holds %zu moved segments", rw.still_held);
    t_rejoined = now_ms();
    ck_assert_msg(
        wait_settled(harness_proc_addr(coord), (uint64_t)n, true, 30000, why, sizeof(why)), "%s",
        why);
    dropped = coord_events(harness_proc_addr(coord), "extra_copy", "node-1");
    fprintf(stderr,
            "check_crash: SIGSTOP of a node holding %zu of %d segments: LOADED elsewhere "
            "%.2f s after the stop (node timeout 2 s); after SIGCONT it rejoined and "
            "dropped its %zu stale copies in %.3f s\n",
            held, n, (double)t_moved / 1000.0, dropped, (double)(t_rejoined - t_cont) / 1000.0);
    /* The coordinator itself told it to drop them, one by one. */
    ck_assert_uint_eq(dropped, held);
    strmap_free(moved);
}
END_TEST

/* ---- 4. partition through a network namespace ---------------------------- */

#define NS_HOST_IP "10.213.7.1"
#define NS_NODE_IP "10.213.7.2"

static char ns_name[32], veth_host[16], veth_ns[16], ns_skip[512];
static bool ns_created, veth_created;
static pid_t ns_pid = -1;

static const char *find_tool(const char *name)
{
    static char buf[4][64];
    static int next;
    const char *dirs[] = {"/usr/sbin", "/sbin", "/usr/bin", "/bin"};
    char *b = buf[next++ % 4];

    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        snprintf(b, sizeof(buf[0]), "%s/%s", dirs[i], name);
        if (access(b, X_OK) == 0)
            return b;
    }
    return NULL;
}

/* Runs a tool with up to 10 arguments; returns its exit status, output in *out. */
static int run_tool(char **out, const char *tool, ...)
{
    const char *argv[12];
    va_list ap;
    int n = 0;

    argv[n++] = find_tool(tool);
    if (argv[0] == NULL) {
        if (out != NULL)
            *out = xasprintf("%s not found", tool);
        return -1;
    }
    va_start(ap, tool);
    for (const char *a; n < 11 && (a = va_arg(ap, const char *)) != NULL;)
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    return harness_run(argv, out);
}

/* Stops the namespaced node (test process). */
static void ns_node_stop(void)
{
    if (ns_pid > 0) {
        kill(ns_pid, SIGKILL);
        while (waitpid(ns_pid, NULL, 0) < 0 && errno == EINTR)
            ;
        ns_pid = -1;
    }
}

/* Removes the namespace and the veth pair (parent process). */
static void ns_delete(void)
{
    char *out = NULL;

    if (ns_created) {
        ns_created = false;
        if (run_tool(&out, "ip", "netns", "del", ns_name, NULL) != 0)
            fprintf(stderr, "check_crash: ip netns del %s: %s\n", ns_name, out);
        free(out);
        out = NULL;
    }
    if (veth_created) {
        veth_created = false;
        /* Deleting the namespace deleted its end, and with it this one; make sure. */
        run_tool(&out, "ip", "link", "del", veth_host, NULL);
        free(out);
    }
}

/* Runs `ip ...`; on failure describes it in why and returns false. */
static bool ip_ok(char *why, size_t len, const char *a1, const char *a2, const char *a3,
                  const char *a4, const char *a5, const char *a6, const char *a7, const char *a8)
{
    char *out = NULL;
    int rc = run_tool(&out, "ip", a1, a2, a3, a4, a5, a6, a7, a8, NULL);

    if (rc != 0)
        snprintf(why, len, "ip %s %s %s %s: exit %d: %.200s", a1, a2 ? a2 : "", a3 ? a3 : "",
                 a4 ? a4 : "", rc, out != NULL ? out : "");
    free(out);
    return rc == 0;
}

/*
 * Removes what an earlier run of this suite left behind when it was killed
 * before its clean-up (a Check timeout is SIGKILL): namespaces named after a
 * test process that no longer exists.
 */
static void ns_remove_stale(void)
{
    DIR *d = opendir("/run/netns");
    struct dirent *de;

    if (d == NULL)
        return;
    while ((de = readdir(d)) != NULL) {
        int pid;
        char *out = NULL, name[NAME_MAX + 1], veth[16];
        if (sscanf(de->d_name, "sluice-crash-%d", &pid) != 1 || pid <= 0 ||
            (kill(pid, 0) == 0 || errno != ESRCH))
            continue;
        snprintf(name, sizeof(name), "%s", de->d_name);
        snprintf(veth, sizeof(veth), "slc%dh", pid % 1000000);
        fprintf(stderr, "check_crash: removing stale namespace %s\n", name);
        run_tool(&out, "ip", "netns", "del", name, NULL);
        free(out);
        out = NULL;
        run_tool(&out, "ip", "link", "del", veth, NULL);
        free(out);
    }
    closedir(d);
}

/* Creates the namespace and the veth pair; false (with why) where this machine cannot. */
static bool ns_create(char *why, size_t len)
{
    char *out = NULL;
    bool ok;

    if (geteuid() != 0) {
        snprintf(why, len, "not root");
        return false;
    }
    if (find_tool("ip") == NULL || find_tool("iptables") == NULL) {
        snprintf(why, len, "ip or iptables (iproute2, iptables) not installed");
        return false;
    }
    ns_remove_stale();
    if (run_tool(&out, "ip", "-4", "addr", "show", NULL) != 0 || strstr(out, "10.213.7.") != NULL) {
        snprintf(why, len, "10.213.7.0/30 is already in use on this machine");
        free(out);
        return false;
    }
    free(out);
    snprintf(ns_name, sizeof(ns_name), "sluice-crash-%d", (int)getpid());
    snprintf(veth_host, sizeof(veth_host), "slc%dh", (int)getpid() % 1000000);
    snprintf(veth_ns, sizeof(veth_ns), "slc%dn", (int)getpid() % 1000000);
    if (!ip_ok(why, len, "netns", "add", ns_name, NULL, NULL, NULL, NULL, NULL))
        return false;
    ns_created = true;
    if (!ip_ok(why, len, "link", "add", veth_host, "type", "veth", "peer", "name", veth_ns))
        return false;
    veth_created = true;
    ok = ip_ok(why, len, "link", "set", veth_ns, "netns", ns_name, NULL, NULL, NULL) &&
         ip_ok(why, len, "addr", "add", NS_HOST_IP "/30", "dev", veth_host, NULL, NULL, NULL) &&
         ip_ok(why, len, "link", "set", veth_host, "up", NULL, NULL, NULL, NULL) &&
         ip_ok(why, len, "-n", ns_name, "addr", "add", NS_NODE_IP "/30", "dev", veth_ns, NULL) &&
         ip_ok(why, len, "-n", ns_name, "link", "set", veth_ns, "up", NULL, NULL) &&
         ip_ok(why, len, "-n", ns_name, "link", "set", "lo", "up", NULL, NULL);
    return ok;
}

/* Unchecked fixture (parent): the namespace, or why there is none (ns_skip). */
static void ns_setup(void)
{
    ns_skip[0] = '\0';
    if (!ns_create(ns_skip, sizeof(ns_skip))) {
        if (ns_skip[0] == '\0')
            snprintf(ns_skip, sizeof(ns_skip), "unknown failure");
        ns_delete();
    }
}

static void ns_teardown(void)
{
    ns_delete();
}

/* iptables inside the namespace: -A or -D of the two DROP rules on its veth end. */
static int ns_cut(const char *op)
{
    char *out = NULL;
    int rc = run_tool(&out, "ip", "netns", "exec", ns_name, find_tool("iptables"), op, "INPUT",
                      "-i", veth_ns, "-j", "DROP", NULL);

    if (rc == 0) {
        free(out);
        out = NULL;
        rc = run_tool(&out, "ip", "netns", "exec", ns_name, find_tool("iptables"), op, "OUTPUT",
                      "-o", veth_ns, "-j", "DROP", NULL);
    }
    if (rc != 0)
        fprintf(stderr, "check_crash: iptables %s in %s: exit %d: %s\n", op, ns_name, rc, out);
    free(out);
    return rc;
}

/*
 * Starts sluice-node inside the namespace: the child joins it with
 * setns(2) before exec, so nothing but its network changes.
 */
static bool ns_node_start(const char *caddr, char *why, size_t len)
{
    char *data = xasprintf("%s/node-2", dir), *ready = xasprintf("%s/node-2/ready", dir);
    char *log = xasprintf("%s/node-2/node.log", dir), *nspath = xasprintf("/run/netns/%s", ns_name);
    char *a_root = xasprintf("--storage-root=%s", storage),
         *a_data = xasprintf("--data-dir=%s", data);
    char *a_ready = xasprintf("--ready-file=%s", ready),
         *a_co = xasprintf("--coordinator=%s", caddr);
    const char *argv[] = {harness_bin("sluice-node"),
                          "serve",
                          "--listen=" NS_NODE_IP ":0",
                          a_root,
                          a_data,
                          a_ready,
                          a_co,
                          "--node-id=node-2",
                          "--report-interval=250ms",
                          "--admission=off",
                          NULL};
    char *bin = xstrdup(argv[0]);
    uint64_t deadline;
    bool ok = false;
    pid_t pid;

    argv[0] = bin;
    mkdir(data, 0755);
    unlink(ready);
    fflush(NULL);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int fd = open(nspath, O_RDONLY | O_CLOEXEC);
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (fd < 0 || setns(fd, CLONE_NEWNET) < 0)
            _exit(126);
        fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
        }
        execv(bin, (char *const *)(uintptr_t)argv);
        _exit(127);
    }
    setpgid(pid, pid);
    ns_pid = pid;
    deadline = now_ms() + 15000;
    while (now_ms() < deadline && !ok) {
        FILE *f = fopen(ready, "re");
        if (f != NULL) {
            if (fgets(ns_node_addr, sizeof(ns_node_addr), f) != NULL) {
                struct http_response r;
                ns_node_addr[strcspn(ns_node_addr, "\r\n")] = '\0';
                if (http_fetch(ns_node_addr, "GET", "/healthz", NULL, NULL, 0, NULL, 1000, &r) ==
                    0) {
                    ok = r.status == 200;
                    http_response_done(&r);
                }
            }
            fclose(f);
        }
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            ns_pid = -1;
            break;
        }
        if (!ok)
            sleep_ms(20);
    }
    if (!ok)
        snprintf(why, len, "the namespaced node did not become healthy (log %s)", log);
    free(data);
    free(ready);
    free(log);
    free(nspath);
    free(a_root);
    free(a_data);
    free(a_ready);
    free(a_co);
    free(bin);
    return ok;
}

START_TEST(test_partition_netns)
{
    const int n = 60, victim = 2;
    char why[512], caddr[64], listen[80];
    const char *cargs[] = {listen, "--node-timeout=2s", NULL};
    struct moved_wait mw;
    struct rejoin_wait rw;
    struct strmap *moved = NULL;
    struct http_response r;
    size_t held;
    uint64_t t0, t_moved, t_heal, t_rejoined;
    size_t dropped;
    int port;

    ns_node_addr[0] = '\0';
    if (ns_skip[0] != '\0') {
        fprintf(stderr,
                "check_crash: SKIP partition test: cannot create a network namespace "
                "here (%s)\n",
                ns_skip);
        return;
    }
    /* The coordinator listens on the host end of the veth pair. */
    port = free_port(NS_HOST_IP);
    ck_assert_int_gt(port, 0);
    snprintf(caddr, sizeof(caddr), NS_HOST_IP ":%d", port);
    snprintf(listen, sizeof(listen), "--listen=%s", caddr);
    coord = harness_coord_start(dir, cargs);
    ck_assert_ptr_nonnull(coord);
    start_node(0, caddr, NULL);
    start_node(1, caddr, NULL);
    ck_assert_msg(ns_node_start(caddr, why, sizeof(why)), "%s", why);
    place_small(caddr, n);
    moved = strmap_new();
    held = coord_placed_on(caddr, "node-2", moved);
    ck_assert_uint_gt(held, 0);

    /* Cut: nothing in or out of the namespace's veth end. */
    ck_assert_int_eq(ns_cut("-A"), 0);
    t0 = now_ms();
    ck_assert_int_lt(http_fetch(ns_node_addr, "GET", "/healthz", NULL, NULL, 0, NULL, 300, &r), 0);
    mw.caddr = caddr;
    mw.node_id = "node-2";
    mw.n = (uint64_t)n;
    if (!harness_wait_until(moved_away, &mw, 30000)) {
        harness_proc_dump_log(coord);
        ck_abort_msg("the cut-off node's segments were not LOADED elsewhere within 30 s: %s",
                     mw.why);
    }
    t_moved = now_ms() - t0;
    {
        struct nodeview v;
        ck_assert(nodeview_fetch(&v, 1u << victim));
        ck_assert_uint_eq(v.entries, (size_t)n);
        ck_assert_uint_eq(v.dups, 0);
        nodeview_done(&v);
    }
    /* Heal. */
    ck_assert_int_eq(ns_cut("-D"), 0);
    t_heal = now_ms();
    rw.caddr = caddr;
    rw.node_id = "node-2";
    rw.node = victim;
    rw.moved = moved;
    ck_assert_msg(harness_wait_until(rejoined, &rw, 30000),
                  "node-2 did not rejoin or still holds %zu moved segments", rw.still_held);
    t_rejoined = now_ms();
    ck_assert_msg(wait_settled(caddr, (uint64_t)n, true, 30000, why, sizeof(why)), "%s", why);
    dropped = coord_events(caddr, "extra_copy", "node-2");
    fprintf(stderr,
            "check_crash: partition (netns %s, iptables DROP) of a node holding %zu of %d "
            "segments: LOADED elsewhere %.2f s after the cut; healed: rejoined and "
            "dropped its %zu stale copies in %.2f s\n",
            ns_name, held, n, (double)t_moved / 1000.0, dropped,
            (double)(t_rejoined - t_heal) / 1000.0);
    ck_assert_uint_eq(dropped, held);
    strmap_free(moved);
}
END_TEST

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
        sleep_ms(500);
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
        qsort(wsvc[w], wn[w], sizeof(uint64_t), cmp_u64);
        wp99[nw++] = quantile(wsvc[w], wn[w], 0.99);
        free(wsvc[w]);
    }
    qsort(wp99, nw, sizeof(wp99[0]), cmp_u64);
    ph->win_p99 = quantile(wp99, nw, 0.50);
    qsort(all, n, sizeof(*all), cmp_u64);
    qsort(svc, n, sizeof(*svc), cmp_u64);
    ph->due_p50 = quantile(all, n, 0.50);
    ph->due_p99 = quantile(all, n, 0.99);
    ph->p50 = quantile(svc, n, 0.50);
    ph->p99 = quantile(svc, n, 0.99);
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

    if (!node_status_at(node_addr(0), &st, 2000))
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
    char *uri, *data = xasprintf("%s/node-0", dir), *req, maxq[32], workers[32];
    const char *nargs[] = {workers, maxq, "--admission=off", NULL};
    struct sockaddr_in sa = {.sin_family = AF_INET};
    struct phase ph[2];
    uint64_t lat[OVL_SEQ_RUNS * OVL_SEQ_N], run_p99[OVL_SEQ_RUNS], seq_p50, seq_p99, rss0, rss1;
    uint64_t refused0 = 0, refused1 = 0;
    bool has_refused = false;
    int64_t want = synth_sum(1234, OVL_ROWS);
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
    uri = write_seg("hot", OVL_ROWS, 16, 1234);
    nodes[0] = harness_node_start(storage, data, nargs);
    ck_assert_ptr_nonnull(nodes[0]);
    ck_assert_int_eq(node_assign(node_addr(0), "hot", uri, OVL_ROWS, 16), 202);
    ck_assert(harness_wait_until(hot_loaded, NULL, 30000));
    req = query_request_text("hot", &req_len);
    ck_assert_int_eq(sscanf(strrchr(node_addr(0), ':') + 1, "%d", &port), 1);
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
        qsort(lat + r * OVL_SEQ_N, OVL_SEQ_N, sizeof(lat[0]), cmp_u64);
        run_p99[r] = quantile(lat + r * OVL_SEQ_N, OVL_SEQ_N, 0.99);
    }
    qsort(run_p99, OVL_SEQ_RUNS, sizeof(run_p99[0]), cmp_u64);
    seq_p99 = quantile(run_p99, OVL_SEQ_RUNS, 0.50);
    qsort(lat, OVL_SEQ_RUNS * OVL_SEQ_N, sizeof(lat[0]), cmp_u64);
    seq_p50 = quantile(lat, OVL_SEQ_RUNS * OVL_SEQ_N, 0.50);
    /* Capacity: every worker busy with one scan after another. */
    capacity = OVL_WORKERS * 1e9 / (double)seq_p50;
    if (capacity > 1000)
        capacity = 1000; /* bounds the generator on a shared machine */
    rss0 = node_rss(node_addr(0));
    fprintf(stderr,
            "check_crash: overload: unloaded p50 %.2f ms, p99 %.2f ms (median of 5 runs); capacity "
            "~%.0f "
            "queries/s (%d workers, --max-queries=%d); RSS %.1f MiB\n",
            seq_p50 / 1e6, seq_p99 / 1e6, capacity, OVL_WORKERS, OVL_MAXQ, rss0 / 1048576.0);

    for (int i = 0; i < 2; i++) {
        double factor = i == 0 ? 2.0 : 4.0;
        run_phase(node_addr(0), &sa, req, req_len, want, capacity * factor, OVL_SECONDS, &ph[i]);
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
    rss1 = node_rss(node_addr(0));
    /* The node counts every refusal it sends, and nothing else. */
    if (has_refused) {
        ck_assert(node_metric(node_addr(0), "sluice_node_queries_refused_total", &refused1));
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

        ck_assert_int_eq(harness_proc_stop(nodes[0]), 0);
        harness_proc_free(nodes[0]);
        nodes[0] = harness_node_start(storage, data, dargs);
        ck_assert_ptr_nonnull(nodes[0]);
        ck_assert(harness_wait_until(hot_loaded, NULL, 30000));
        ck_assert_int_eq(sscanf(strrchr(node_addr(0), ':') + 1, "%d", &port), 1);
        sa.sin_port = htons((uint16_t)port);
        run_phase(node_addr(0), &sa, req, req_len, want, capacity * 4.0, 5, &dp);
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

static TCase *crash_tcase(Suite *s, const char *name, const TTest *test, int timeout)
{
    TCase *tc = tcase_create(name);

    tcase_add_unchecked_fixture(tc, dir_setup, dir_teardown);
    tcase_add_checked_fixture(tc, NULL, procs_teardown);
    tcase_set_timeout(tc, timeout);
    tcase_add_test(tc, test);
    suite_add_tcase(s, tc);
    return tc;
}

int main(void)
{
    Suite *s = suite_create("crash");
    const char *l = getenv("SLUICE_LONG");
    bool lr = l != NULL && l[0] != '\0' && strcmp(l, "0") != 0;
    SRunner *sr;
    int failed;

    crash_tcase(s, "coordinator_kill9", test_coord_kill_loop, lr ? 3600 : 600);
    crash_tcase(s, "node_kill9_loading", test_node_kill_loading, lr ? 1800 : 600);
    crash_tcase(s, "sigstop", test_sigstop, 300);
    tcase_add_unchecked_fixture(crash_tcase(s, "partition_netns", test_partition_netns, 300),
                                ns_setup, ns_teardown);
    crash_tcase(s, "overload", test_overload, 300);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
