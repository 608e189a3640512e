/*
 * crash: what the fault suites (check_crash_coord, check_crash_node,
 * check_crash_sigstop, check_crash_partition, check_crash_overload) share:
 * a temporary directory with segment files, a coordinator and CRASH_NODES
 * nodes started through the harness, the cluster as the coordinator and as
 * the nodes see it, "settled" in the strict sense of these suites (every
 * segment LOADED on exactly one node, by both accounts), and the one Check
 * runner. Load: a few calls a second while a fault is under way.
 */
#include "crash.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "mkseg.h"
#include "segfmt.h"
#include "xmalloc.h"
#include "suite.h"

char *crash_dir, *crash_storage;
struct harness_proc *crash_coord, *crash_nodes[CRASH_NODES];
bool crash_long_run;
static uint64_t crash_rng_state;

/* ---- small helpers ------------------------------------------------------- */

uint64_t crash_now_ms(void)
{
    return clock_mono_ns() / 1000000ull;
}

void crash_sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* xorshift64*: random delays only. The seed is printed so a run can be replayed. */
uint32_t crash_rnd(void)
{
    crash_rng_state ^= crash_rng_state >> 12;
    crash_rng_state ^= crash_rng_state << 25;
    crash_rng_state ^= crash_rng_state >> 27;
    return (uint32_t)((crash_rng_state * 2685821657736338717ull) >> 32);
}

void crash_rnd_seed(const char *what)
{
    const char *env = getenv("SLUICE_CRASH_SEED");

    crash_rng_state = env != NULL ? strtoull(env, NULL, 0) : (clock_mono_ns() ^ (uint64_t)getpid());
    if (crash_rng_state == 0)
        crash_rng_state = 1;
    fprintf(stderr, "check_crash: %s: SLUICE_CRASH_SEED=%" PRIu64 "\n", what, crash_rng_state);
}

int crash_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* The q-quantile (0..1) of n sorted values. */
uint64_t crash_quantile(const uint64_t *v, size_t n, double q)
{
    size_t i;

    if (n == 0)
        return 0;
    i = (size_t)(q * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

/* A free TCP port on host, found by binding port 0 and letting it go again. */
int crash_free_port(const char *host)
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

/*
 * Fixtures. A failed assertion ends a Check test process with _exit(), so
 * neither a checked teardown nor atexit() runs; what must not outlive a
 * failure is therefore made and removed by unchecked fixtures, which run in
 * the parent: the temporary directory here, the network namespace in
 * ns_setup/ns_teardown. Daemons die with the test process (PDEATHSIG).
 */
void crash_dir_setup(void)
{
    const char *l = getenv("SLUICE_LONG");

    crash_long_run = l != NULL && l[0] != '\0' && strcmp(l, "0") != 0;
    crash_dir = harness_dir_new("sluice-crash-it");
    crash_storage = xasprintf("%s/storage", crash_dir);
    mkdir(crash_storage, 0755);
    /* A stopped or partitioned daemon answers nothing: wait 10 s, not the harness's 30. */
    harness_client_set(NULL, 10000);
}

void crash_dir_teardown(void)
{
    harness_dir_remove(crash_dir);
    free(crash_dir);
    free(crash_storage);
    crash_dir = crash_storage = NULL;
}

/* Checked teardown: stops what the test started, in the test process. */
void crash_procs_teardown(void)
{
    /* A node left stopped would ignore SIGTERM: wake it first. */
    for (int i = 0; i < CRASH_NODES; i++)
        if (crash_nodes[i] != NULL)
            harness_proc_signal(crash_nodes[i], SIGCONT);
    for (int i = 0; i < CRASH_NODES; i++) {
        harness_proc_free(crash_nodes[i]);
        crash_nodes[i] = NULL;
    }
    harness_proc_free(crash_coord);
    crash_coord = NULL;
}

/* Writes <storage>/<name>.seg; returns its file:// URI (caller frees). */
char *crash_write_seg(const char *name, uint64_t rows, unsigned row_bytes, uint64_t seed)
{
    struct mkseg_spec spec = {.rows = rows, .row_bytes = row_bytes, .seed = seed};
    char *path = xasprintf("%s/%s.seg", crash_storage, name), *uri, detail[256];

    ck_assert_msg(mkseg_write(path, &spec, detail, sizeof(detail)) == 0, "%s", detail);
    uri = xasprintf("file://%s", path);
    free(path);
    return uri;
}

/* sum(value) over every row, from the generator, never from a node. */
int64_t crash_synth_sum(uint64_t seed, uint64_t rows)
{
    int64_t s = 0;

    for (uint64_t r = 0; r < rows; r++)
        s += segment_synth_value(seed, r);
    return s;
}

/* ---- coordinator API ----------------------------------------------------- */

bool crash_coord_status(const char *addr, struct wire_cluster_status *st)
{
    return harness_cluster_status(addr, st) == 200;
}

bool crash_coord_segments(const char *addr, struct wire_segment_list *out)
{
    return harness_segments(addr, "?limit=1000000", out) == 200;
}

/* The coordinator's state for node id ("UP", "DOWN", ...), or "" if unknown. */
void crash_coord_node_state(const char *addr, const char *id, char *state, size_t len)
{
    struct wire_node_info ni;

    snprintf(state, len, "%s", harness_node_info(addr, id, &ni, NULL) ? ni.state : "");
}

/*
 * Registers ids <prefix><from..to-1>, id k pointing at uris[k % n_uris].
 * Returns the HTTP status, or a negative errno when no answer came.
 */
int crash_register_ids(const char *addr, const char *prefix, int from, int to, char *const *uris,
                       int n_uris, uint64_t rows, uint64_t row_size)
{
    return harness_register_ids(addr, prefix, 6, from, to, uris, (size_t)n_uris, rows, row_size);
}

/* Events of one kind about one node in the coordinator's log. */
size_t crash_coord_events(const char *addr, const char *kind, const char *node_id)
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

bool crash_node_status_at(const char *addr, struct wire_node_status *st, unsigned timeout_ms)
{
    return harness_node_status(addr, NULL, timeout_ms, st);
}

/* sum(value) of one segment. Returns the HTTP status or a negative errno. */
int crash_query_sum(const char *addr, const char *id, struct wire_query_response *ret)
{
    return harness_query_one(addr, id, WIRE_AGG_SUM, "value", ret, NULL);
}

/* ---- the cluster as the nodes see it ------------------------------------ */

/* Address of node i: a harness process, or (partition case) the netns node. */
char crash_ns_node_addr[64];

const char *crash_node_addr(int i)
{
    if (crash_nodes[i] != NULL)
        return harness_proc_addr(crash_nodes[i]);
    return crash_ns_node_addr;
}

static int crash_nodeview_count_cb(const char *key, void *value, void *arg)
{
    struct crash_nodeview *v = arg;
    uintptr_t m = (uintptr_t)value, any = m & 0xff, loaded = (m >> 8) & 0xff;

    if (__builtin_popcountl(any) > (int)v->replication) {
        if (v->dups++ == 0)
            snprintf(v->dup_example, sizeof(v->dup_example), "%s (node mask 0x%lx)", key,
                     (unsigned long)any);
    }
    v->unloaded += loaded != any;
    v->short_ += __builtin_popcountl(loaded) < (int)v->replication;
    return 0;
}

/* Collects every node's own status; skip_mask leaves nodes out (stopped, cut off). */
bool crash_nodeview_fetch(struct crash_nodeview *v, unsigned skip_mask)
{
    return crash_nodeview_fetch_r(v, skip_mask, 1);
}

bool crash_nodeview_fetch_r(struct crash_nodeview *v, unsigned skip_mask, unsigned replication)
{
    memset(v, 0, sizeof(*v));
    v->replication = replication;
    v->held = strmap_new();
    for (int i = 0; i < CRASH_NODES; i++) {
        struct wire_node_status st;

        if (skip_mask & (1u << i))
            continue;
        if (!crash_node_status_at(crash_node_addr(i), &st, 5000))
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
    strmap_foreach(v->held, crash_nodeview_count_cb, v);
    return true;
}

void crash_nodeview_done(struct crash_nodeview *v)
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
bool crash_cluster_settled(const char *caddr, uint64_t n, bool check_placements, char *why,
                           size_t why_len)
{
    return crash_cluster_settled_r(caddr, n, 1, check_placements, why, why_len);
}

bool crash_cluster_settled_r(const char *caddr, uint64_t n, unsigned replication,
                             bool check_placements, char *why, size_t why_len)
{
    struct wire_cluster_status cs;
    struct wire_segment_list sl;
    struct crash_nodeview v;
    bool ok = false;

    if (!crash_coord_status(caddr, &cs)) {
        snprintf(why, why_len, "coordinator status unavailable");
        return false;
    }
    if (cs.segments_total != n || cs.segments_loaded != n) {
        snprintf(why, why_len, "coordinator: %" PRIu64 " of %" PRIu64 " LOADED (want %" PRIu64 ")",
                 cs.segments_loaded, cs.segments_total, n);
        return false;
    }
    if (!crash_nodeview_fetch_r(&v, 0, replication)) {
        snprintf(why, why_len, "a node did not answer GET /v1/status");
        crash_nodeview_done(&v);
        return false;
    }
    if (v.entries != n || v.dups != 0 || v.unloaded != 0 || v.short_ != 0) {
        snprintf(why, why_len,
                 "nodes hold %zu ids (want %" PRIu64 "), %zu on more than %u nodes (%s), %zu "
                 "not LOADED, %zu LOADED on fewer than %u",
                 v.entries, n, v.dups, replication, v.dups ? v.dup_example : "-", v.unloaded,
                 v.short_, replication);
        goto out;
    }
    if (check_placements) {
        if (!crash_coord_segments(caddr, &sl)) {
            snprintf(why, why_len, "coordinator segment list unavailable");
            goto out;
        }
        ok = true;
        for (size_t i = 0; i < sl.n && ok; i++) {
            const struct wire_segment_info *s = &sl.segments[i];
            uintptr_t m = (uintptr_t)strmap_get(v.held, s->spec.segment_id), placed = 0;
            int node;

            if (s->n_placements != replication || m == 0) {
                snprintf(why, why_len, "%s: %zu placements at the coordinator, node mask 0x%lx",
                         s->spec.segment_id, s->n_placements, (unsigned long)m);
                ok = false;
                break;
            }
            for (size_t p = 0; p < s->n_placements; p++)
                if (sscanf(s->placements[p].node_id, "node-%d", &node) == 1 && node >= 0 &&
                    node < CRASH_NODES)
                    placed |= 1u << node;
            if (placed != (m & 0xff)) {
                snprintf(why, why_len,
                         "%s: the coordinator places it on nodes 0x%lx, the nodes hold it on 0x%lx",
                         s->spec.segment_id, (unsigned long)placed, (unsigned long)(m & 0xff));
                ok = false;
            }
        }
        wire_segment_list_done(&sl);
        goto out;
    }
    ok = true;
out:
    crash_nodeview_done(&v);
    return ok;
}

/* Polls cluster_settled until it holds or timeout_ms passes. */
bool crash_wait_settled(const char *caddr, uint64_t n, bool check_placements, unsigned timeout_ms,
                        char *why, size_t why_len)
{
    return crash_wait_settled_r(caddr, n, 1, check_placements, timeout_ms, why, why_len);
}

bool crash_wait_settled_r(const char *caddr, uint64_t n, unsigned replication,
                          bool check_placements, unsigned timeout_ms, char *why, size_t why_len)
{
    uint64_t deadline = crash_now_ms() + timeout_ms;

    for (;;) {
        if (crash_cluster_settled_r(caddr, n, replication, check_placements, why, why_len))
            return true;
        if (crash_now_ms() >= deadline)
            return false;
        crash_sleep_ms(100);
    }
}

/*
 * Nodes run with --admission=off: on a shared machine other tenants' memory
 * pressure shows in host-wide PSI and would close the MEM_* gates, and what
 * this suite checks (crashes, stalls, partitions) must not depend on that.
 * Admission has its own suites.
 */
void crash_start_node(int i, const char *caddr, const char *const *more)
{
    char *data = xasprintf("%s/node-%d", crash_dir, i), *id = xasprintf("--node-id=node-%d", i);
    char *co = xasprintf("--coordinator=%s", caddr);
    const char *args[16] = {id, co, "--report-interval=250ms", "--admission=off", NULL};
    int n = 4;

    for (int k = 0; more != NULL && more[k] != NULL && n < 15; k++)
        args[n++] = more[k];
    args[n] = NULL;
    crash_nodes[i] = harness_node_start(crash_storage, data, args);
    ck_assert_msg(crash_nodes[i] != NULL, "node-%d did not start", i);
    free(data);
    free(id);
    free(co);
}

/* ---- SIGSTOP and partition: segments moved away and back ------------------ */

/* Segments that the coordinator places on node `id` (ids copied into *ret). */
size_t crash_coord_placed_on(const char *caddr, const char *id, struct strmap *ret)
{
    struct wire_segment_list sl;
    size_t n = 0;

    if (!crash_coord_segments(caddr, &sl))
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

/* The node is DOWN and every segment is LOADED, none of them on it. */
bool crash_moved_away(void *arg)
{
    struct crash_moved_wait *w = arg;
    struct wire_cluster_status cs;
    char state[16];
    size_t on = SIZE_MAX;
    bool st_ok;

    crash_coord_node_state(w->caddr, w->node_id, state, sizeof(state));
    st_ok = crash_coord_status(w->caddr, &cs);
    if (st_ok)
        on = crash_coord_placed_on(w->caddr, w->node_id, NULL);
    snprintf(w->why, sizeof(w->why),
             "%s is %s; coordinator %s: %" PRIu64 " of %" PRIu64 " LOADED, %zu still placed on it",
             w->node_id, state[0] ? state : "unknown", st_ok ? "answers" : "does not answer",
             st_ok ? cs.segments_loaded : 0, st_ok ? cs.segments_total : 0, on);
    return strcmp(state, "DOWN") == 0 && st_ok && cs.segments_loaded == w->n &&
           cs.segments_total == w->n && on == 0;
}

/* The node is UP again and holds none of the segments that moved away. */
bool crash_rejoined(void *arg)
{
    struct crash_rejoin_wait *w = arg;
    struct wire_node_status st;
    char state[16];

    crash_coord_node_state(w->caddr, w->node_id, state, sizeof(state));
    if (strcmp(state, "UP") != 0 || !crash_node_status_at(crash_node_addr(w->node), &st, 2000))
        return false;
    w->still_held = 0;
    for (size_t k = 0; k < st.n_segments; k++)
        w->still_held += strmap_get(w->moved, st.segments[k].segment_id) != NULL;
    wire_node_status_done(&st);
    return w->still_held == 0;
}

void crash_await_moved(const char *caddr, const char *node_id, int victim, int n, const char *what)
{
    struct crash_moved_wait mw = {.caddr = caddr, .node_id = node_id, .n = (uint64_t)n};
    struct crash_nodeview v;

    if (!harness_wait_until(crash_moved_away, &mw, 30000)) {
        harness_proc_dump_log(crash_coord);
        ck_abort_msg("the %s node's segments were not LOADED elsewhere within 30 s: %s", what,
                     mw.why);
    }
    /* The others hold everything, once each, while the victim is still out. */
    ck_assert(crash_nodeview_fetch(&v, 1u << victim));
    ck_assert_uint_eq(v.entries, (size_t)n);
    ck_assert_uint_eq(v.dups, 0);
    crash_nodeview_done(&v);
}

/* Registers n small segments (ids s000000..) and waits until all are LOADED. */
void crash_place_small(const char *caddr, int n)
{
    char *uris[2], why[512];

    uris[0] = crash_write_seg("tiny-0", 4096, 16, 71);
    uris[1] = crash_write_seg("tiny-1", 4096, 16, 72);
    ck_assert_int_eq(crash_register_ids(caddr, "s", 0, n, uris, 2, 4096, 16), 200);
    ck_assert_msg(crash_wait_settled(caddr, (uint64_t)n, true, 60000, why, sizeof(why)), "%s", why);
    free(uris[0]);
    free(uris[1]);
}

TCase *crash_tcase(Suite *s, const char *name, const TTest *test, int timeout)
{
    TCase *tc = tcase_create(name);

    tcase_add_unchecked_fixture(tc, crash_dir_setup, crash_dir_teardown);
    tcase_add_checked_fixture(tc, NULL, crash_procs_teardown);
    tcase_set_timeout(tc, timeout);
    tcase_add_test(tc, test);
    suite_add_tcase(s, tc);
    return tc;
}

int crash_main(const struct crash_case *c)
{
    Suite *s = suite_create(c->name);
    const char *l = getenv("SLUICE_LONG");
    bool lr = l != NULL && l[0] != '\0' && strcmp(l, "0") != 0;
    TCase *tc;

    tc = crash_tcase(s, c->name, c->test, lr && c->long_timeout > 0 ? c->long_timeout : c->timeout);
    if (c->setup != NULL || c->teardown != NULL)
        tcase_add_unchecked_fixture(tc, c->setup, c->teardown);
    if (c->procs_teardown != NULL)
        tcase_add_checked_fixture(tc, NULL, c->procs_teardown);
    return harness_run_suite(s);
}
