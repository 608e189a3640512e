/*
 * check_failover: two coordinators on one PostgreSQL catalog, three real
 * nodes that follow the leader (issue 22, "Done when"). PostgreSQL is a
 * private server per test (tests/harness/pg.c, started in the parent so
 * that a failed assertion cannot leave it behind). Segments are small
 * (256 rows), replication 2; nodes report every 250 ms and know both
 * coordinators (--coordinator=A,B).
 *
 *   kill_loop: while a client registers batches (retrying each through
 *     either coordinator until one answers 200) and the nodes load them,
 *     the leader is killed with SIGKILL; the standby must lead within 5 s
 *     (printed); the killed one is started again as the new standby. Then
 *     every acknowledged registration is in the catalog and nothing else,
 *     and every segment is LOADED on exactly two nodes, where the leader
 *     places it. 20 times, alternating which coordinator dies (200 with
 *     SLUICE_LONG=1, as tests/run.sh --long sets).
 *   sigstop: the leader is stopped (SIGSTOP) while it places; the standby
 *     leads once PostgreSQL ends the stopped leader's session, and settles
 *     the placement; the old leader is continued (SIGCONT): it steps down
 *     (503 as a standby), and the placement is unchanged. Messages the
 *     nodes refused by epoch meanwhile are counted from their logs and
 *     printed (none: the old leader's lease check before it sends finds
 *     its session gone).
 *   fence: the leader stops itself right after its lease check passed and
 *     before its batch leaves (SLUICE_FAILPOINT=dispatch-pause:p, armed
 *     for coordinator 0 only, fired by the first batch of the segments
 *     p0000NN registered after the first 40 settled); the standby leads,
 *     every node sees its epoch, the placement settles; SIGCONT: the nodes
 *     refuse the old leader's batches by epoch (counted from their
 *     /metrics, at least one), it steps down (503, lead_lost; the reason
 *     is printed), and the placement is unchanged.
 *   terminate: the leader's catalog session is ended by
 *     pg_terminate_backend while a client registers: the leader steps down
 *     (alive, a standby: 503), the standby leads with the next epoch
 *     (printed, bounded by 10 s), every acknowledged registration is in
 *     the catalog and nothing else, every segment LOADED on exactly two.
 *   pg_restart: PostgreSQL itself is restarted (immediate stop, 2 s
 *     down, start) while a client registers and the leader places: both
 *     coordinators stay alive on their addresses (the leader steps down
 *     and stands by until the catalog answers again), a new election is
 *     won (the epoch rises; the time is printed, bounded by 15 s), every
 *     registration acknowledged before and after the restart is in the
 *     catalog, and every segment ends LOADED on exactly two nodes.
 *
 * Expected load: two shared cores, about a minute in all (the loop's
 * iterations a few seconds each). Shared setup: tests/harness/crash.h.
 */
#include <check.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crash.h"
#include "harness.h"
#include "pg.h"
#include "strmap.h"
#include "suite.h"
#include "wire.h"
#include "xmalloc.h"

#define REPLICATION 2
#define BATCH       8
#define TAKEOVER_MS 5000
#define ROWS        256
#define PG_DOWN_MS  2000

/* The test's PostgreSQL and its catalog database: made in the parent (unchecked fixture). */
static struct harness_pg *pg;
static char *catalog_uri;
/* The two coordinators, their fixed addresses, and the list the nodes are given. */
static struct harness_proc *coords[2];
static char caddr[2][64], clist[160];
static char *uris[4];

static void pg_setup(void)
{
    char why[512] = "";

    pg = harness_pg_start(why, sizeof(why));
    if (pg == NULL) {
        fprintf(stderr, "check_failover: no PostgreSQL: %s\n", why);
        abort();
    }
    catalog_uri = harness_pg_new_db(pg, why, sizeof(why));
    if (catalog_uri == NULL) {
        fprintf(stderr, "check_failover: %s\n", why);
        abort();
    }
}

static void pg_teardown(void)
{
    harness_pg_stop(pg);
    pg = NULL;
    free(catalog_uri);
    catalog_uri = NULL;
}

/* Checked teardown (the test process): the coordinators (a stopped one woken first). */
static void coords_teardown(void)
{
    for (int i = 0; i < 2; i++) {
        if (coords[i] != NULL)
            harness_proc_signal(coords[i], SIGCONT);
        harness_proc_free(coords[i]);
        coords[i] = NULL;
    }
    for (int i = 0; i < 4; i++) {
        free(uris[i]);
        uris[i] = NULL;
    }
}

/* Starts coordinator i on its fixed port; it leads or stands by. */
static void coord_start(int i)
{
    char *dir = xasprintf("%s/coord-%d", crash_dir, i), listen[80];
    const char *args[] = {listen, "--node-timeout=3s", "--assign-timeout=2s", NULL};

    snprintf(listen, sizeof(listen), "--listen=%s", caddr[i]);
    coords[i] = harness_coord_start_on(dir, catalog_uri, args);
    ck_assert_msg(coords[i] != NULL, "coordinator %d did not start", i);
    free(dir);
}

/*
 * Ports for both coordinators, the small segment files, both coordinators
 * and three nodes; coordinator 0 with SLUICE_FAILPOINT=failpoint0 when not
 * NULL (set in this process's environment for its fork only).
 */
static void cluster_start_fp(const char *failpoint0)
{
    for (int i = 0; i < 2; i++) {
        int port = crash_free_port("127.0.0.1");

        ck_assert_int_gt(port, 0);
        snprintf(caddr[i], sizeof(caddr[i]), "127.0.0.1:%d", port);
    }
    snprintf(clist, sizeof(clist), "%s,%s", caddr[0], caddr[1]);
    for (int i = 0; i < 4; i++) {
        char name[16];

        snprintf(name, sizeof(name), "small-%d", i);
        uris[i] = crash_write_seg(name, ROWS, 16, 100 + (uint64_t)i);
    }
    /* The first one leads: start it alone and wait, then the standby. */
    if (failpoint0 != NULL)
        ck_assert_int_eq(setenv("SLUICE_FAILPOINT", failpoint0, 1), 0);
    coord_start(0);
    unsetenv("SLUICE_FAILPOINT");
    coord_start(1);
    for (int i = 0; i < CRASH_NODES; i++)
        crash_start_node(i, clist, NULL);
}

static void cluster_start(void)
{
    cluster_start_fp(NULL);
}

/* GET /readyz of coordinator i: true on 200 (the leader; a standby answers 503). */
static bool coord_ready(int i)
{
    struct harness_reply rep;

    return coords[i] != NULL && harness_send(caddr[i], "GET", "/readyz", &rep) == 200;
}

/* The leading coordinator's index, or -1 when neither leads. */
static int leader(void)
{
    for (int i = 0; i < 2; i++)
        if (coord_ready(i))
            return i;
    return -1;
}

/* Waits up to timeout_ms until coordinator i leads; the milliseconds waited, or -1. */
static int64_t await_lead(int i, unsigned timeout_ms)
{
    uint64_t t0 = crash_now_ms();

    while (crash_now_ms() - t0 < timeout_ms) {
        if (coord_ready(i))
            return (int64_t)(crash_now_ms() - t0);
        crash_sleep_ms(20);
    }
    return -1;
}

/* The leader's epoch, from the catalog. */
static long long catalog_epoch(void)
{
    return harness_pg_int(catalog_uri, "SELECT epoch FROM sluice_catalog");
}

/* ---- the registering client ---------------------------------------------- */

struct reg_client {
    pthread_t thread;
    atomic_bool stop;
    int cap;  /* new ids up to this; past it the last batch is sent again */
    int next; /* ids [0, next) were acknowledged (written by the thread; read after join) */
    int cur;  /* the coordinator it asks first */
    unsigned long posts, not_acked;
    bool gave_up;
};

/*
 * Registers batches of fresh ids f000000.. (replication 2); a batch that gets
 * no 200 is sent again, unchanged, to the other coordinator and back, until
 * one acknowledges it, so that every id below `next` was acknowledged and no
 * id above it was ever sent. Once told to stop, the last batch still gets
 * 30 s.
 */
static void *reg_client_main(void *arg)
{
    struct reg_client *rc = arg;

    while (!atomic_load(&rc->stop)) {
        int from = rc->next, to = from + BATCH;
        uint64_t give_up = 0;

        if (rc->next >= rc->cap) {
            from = rc->next - BATCH;
            to = rc->next;
        }
        for (;;) {
            int st = harness_register_ids_r(caddr[rc->cur], "f", 6, from, to, uris, 4, ROWS, 16,
                                            REPLICATION);

            rc->posts++;
            if (st == 200)
                break;
            rc->not_acked++;
            rc->cur ^= 1;
            if (atomic_load(&rc->stop)) {
                if (give_up == 0)
                    give_up = crash_now_ms() + 30000;
                else if (crash_now_ms() > give_up) {
                    rc->gave_up = true;
                    return NULL;
                }
            }
            crash_sleep_ms(10);
        }
        if (to > rc->next)
            rc->next = to;
        crash_sleep_ms(5);
    }
    return NULL;
}

static void reg_client_start(struct reg_client *rc, int first, int cap, int cur)
{
    memset(rc, 0, sizeof(*rc));
    rc->next = first;
    rc->cap = cap;
    rc->cur = cur;
    ck_assert_int_eq(pthread_create(&rc->thread, NULL, reg_client_main, rc), 0);
}

static void reg_client_stop(struct reg_client *rc)
{
    atomic_store(&rc->stop, true);
    pthread_join(rc->thread, NULL);
    ck_assert_msg(!rc->gave_up, "a registration batch from f%06d got no 200 in 30 s", rc->next);
}

/*
 * Every acknowledged id f000000..f<n-1> is in the catalog the leader at addr
 * serves, and nothing else is.
 */
static void check_acked(const char *addr, int n)
{
    struct wire_segment_list sl;
    struct strmap *ids = strmap_new();

    ck_assert_msg(crash_coord_segments(addr, &sl), "the leader's segment list");
    for (size_t i = 0; i < sl.n; i++)
        strmap_put(ids, sl.segments[i].spec.segment_id, (void *)1);
    for (int k = 0; k < n; k++) {
        char id[16];

        snprintf(id, sizeof(id), "f%06d", k);
        ck_assert_msg(strmap_get(ids, id) != NULL,
                      "%s was acknowledged and is not in the catalog (%zu segments there)", id,
                      sl.n);
    }
    ck_assert_msg(sl.n == (size_t)n, "the catalog holds %zu segments, %d acknowledged", sl.n, n);
    wire_segment_list_done(&sl);
    strmap_free(ids);
}

/* Waits until the cluster has settled on n segments at replication 2, under the leader i. */
static void await_settled(int i, int n, unsigned timeout_ms)
{
    char why[512] = "";

    ck_assert_msg(crash_wait_settled_r(caddr[i], (uint64_t)n, REPLICATION, true, timeout_ms, why,
                                       sizeof(why)),
                  "not settled on %d segments at replication %d under coordinator %d: %s", n,
                  REPLICATION, i, why);
}

/* ---- kill -9 of the leader, in a loop -------------------------------------- */

START_TEST(test_kill_loop)
{
    int iterations = crash_long_run ? 200 : 20, per_iteration = 6 * BATCH, lead = 0, n = 0;
    uint64_t *took = xcalloc((size_t)iterations, sizeof(*took)), t_start = crash_now_ms();
    long long epoch0;

    crash_rnd_seed("check_failover kill_loop");
    cluster_start();
    ck_assert_msg(await_lead(0, 10000) >= 0, "coordinator 0 does not lead");
    ck_assert_msg(!coord_ready(1), "both coordinators say they lead");
    epoch0 = catalog_epoch();
    ck_assert_int_gt(epoch0, 0);

    for (int it = 0; it < iterations; it++) {
        int other = lead ^ 1;
        struct reg_client rc;
        int64_t ms;

        reg_client_start(&rc, n, n + per_iteration, lead);
        crash_sleep_ms(100 + crash_rnd() % 400);
        harness_proc_kill(coords[lead]);
        ms = await_lead(other, 15000);
        ck_assert_msg(ms >= 0, "iteration %d: coordinator %d did not lead within 15 s", it, other);
        took[it] = (uint64_t)ms;
        printf("check_failover: iteration %d: coordinator %d killed, %d leads after %" PRId64
               " ms\n",
               it, lead, other, ms);
        fflush(stdout);
        ck_assert_msg(ms <= TAKEOVER_MS, "iteration %d: the standby took %" PRId64 " ms to lead",
                      it, ms);
        ck_assert_int_eq(catalog_epoch(), epoch0 + it + 1);
        ck_assert_int_eq(harness_proc_restart(coords[lead]), 0);
        crash_sleep_ms(200);
        reg_client_stop(&rc);
        n = rc.next;
        ck_assert_msg(!coord_ready(lead), "iteration %d: the restarted coordinator leads too", it);
        check_acked(caddr[other], n);
        await_settled(other, n, 30000);
        lead = other;
    }
    qsort(took, (size_t)iterations, sizeof(*took), crash_cmp_u64);
    printf("check_failover: %d kills, %d segments: take-over median %" PRIu64 " ms, max %" PRIu64
           " ms; %.1f s in all\n",
           iterations, n, crash_quantile(took, (size_t)iterations, 0.5), took[iterations - 1],
           (double)(crash_now_ms() - t_start) / 1000.0);
    free(took);
}
END_TEST

/* ---- SIGSTOP of the leader, then SIGCONT ------------------------------------ */

/* Lines of a process's log that contain what (0 when it cannot be read). */
static size_t log_count(const char *path, const char *what)
{
    FILE *f = fopen(path, "re");
    char line[2048];
    size_t n = 0;

    while (f != NULL && fgets(line, sizeof(line), f) != NULL)
        n += strstr(line, what) != NULL;
    if (f != NULL)
        fclose(f);
    return n;
}

/* The text after "reason=" of the first line of a log that contains what ("" if none). */
static void log_reason(const char *path, const char *what, char *buf, size_t len)
{
    FILE *f = fopen(path, "re");
    char line[2048];

    buf[0] = '\0';
    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        const char *r = strstr(line, what) != NULL ? strstr(line, "reason=") : NULL;

        if (r != NULL) {
            snprintf(buf, len, "%s", r + strlen("reason="));
            buf[strcspn(buf, "\n")] = '\0';
            break;
        }
    }
    if (f != NULL)
        fclose(f);
}

/* Stale-epoch refusals logged by the three nodes so far (assignments and report answers). */
static size_t nodes_stale_epoch(void)
{
    size_t n = 0;

    for (int i = 0; i < CRASH_NODES; i++) {
        char *log = xasprintf("%s/node-%d/node.log", crash_dir, i);

        n += log_count(log, "reason=stale_epoch");
        free(log);
    }
    return n;
}

/* Segment id -> its placement, "node-0,node-2" (sorted), from the coordinator at addr. */
static struct strmap *placement_of(const char *addr)
{
    struct wire_segment_list sl;
    struct strmap *m = strmap_new();

    ck_assert_msg(crash_coord_segments(addr, &sl), "segment list of %s", addr);
    for (size_t i = 0; i < sl.n; i++) {
        unsigned mask = 0;
        int node;
        char buf[64] = "";

        for (size_t p = 0; p < sl.segments[i].n_placements; p++)
            if (sscanf(sl.segments[i].placements[p].node_id, "node-%d", &node) == 1 && node >= 0 &&
                node < CRASH_NODES)
                mask |= 1u << node;
        for (int k = 0; k < CRASH_NODES; k++)
            if (mask & (1u << k))
                snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "%snode-%d",
                         buf[0] != '\0' ? "," : "", k);
        strmap_put(m, sl.segments[i].spec.segment_id, xstrdup(buf));
    }
    wire_segment_list_done(&sl);
    return m;
}

static int placement_cmp_cb(const char *key, void *value, void *arg)
{
    struct strmap *other = arg;
    const char *there = strmap_get(other, key);

    ck_assert_msg(there != NULL && strcmp(there, value) == 0,
                  "%s was placed on %s and is now on %s", key, (const char *)value,
                  there != NULL ? there : "nothing");
    return 0;
}

static int placement_free_cb(const char *key, void *value, void *arg)
{
    free(value);
    return 0;
}

static void placement_free(struct strmap *m)
{
    strmap_foreach(m, placement_free_cb, NULL);
    strmap_free(m);
}

/* Waits up to 10 s until coordinator i answers GET /v1/status as a standby (503). */
static void await_standby(int i)
{
    struct harness_reply rep;
    int st;

    for (int waited = 0;
         (st = harness_send(caddr[i], "GET", "/v1/status", &rep)) != 503 && waited < 10000;
         waited += 50)
        crash_sleep_ms(50);
    if (st != 503)
        harness_proc_dump_log(coords[i]);
    ck_assert_msg(st == 503, "the old leader answers GET /v1/status with %d, not 503", st);
}

/* Coordinator 1 still leads, settles n segments, and each is where before says (freed). */
static void check_placement_unchanged(struct strmap *before, int n)
{
    struct strmap *after;

    ck_assert_msg(leader() == 1, "coordinator 1 no longer leads");
    await_settled(1, n, 10000);
    after = placement_of(caddr[1]);
    ck_assert_uint_eq(strmap_count(after), strmap_count(before));
    strmap_foreach(before, placement_cmp_cb, after);
    placement_free(before);
    placement_free(after);
}

START_TEST(test_sigstop)
{
    int n = 40, more = 160;
    size_t refused0;
    struct strmap *before;
    int64_t ms;

    cluster_start();
    ck_assert_msg(await_lead(0, 10000) >= 0, "coordinator 0 does not lead");
    ck_assert_int_eq(harness_register_ids_r(caddr[0], "f", 6, 0, n, uris, 4, ROWS, 16, REPLICATION),
                     200);
    await_settled(0, n, 30000);

    /* More to place, and the leader stopped while it places them. */
    ck_assert_int_eq(
        harness_register_ids_r(caddr[0], "f", 6, n, n + more, uris, 4, ROWS, 16, REPLICATION), 200);
    n += more;
    crash_sleep_ms(150);
    refused0 = nodes_stale_epoch();
    ck_assert_int_eq(harness_proc_signal(coords[0], SIGSTOP), 0);
    ms = await_lead(1, 30000);
    ck_assert_msg(ms >= 0, "the standby did not lead within 30 s of the leader's SIGSTOP");
    printf("check_failover: sigstop: the leader stopped, the standby leads after %" PRId64 " ms\n",
           ms);
    await_settled(1, n, 30000);
    before = placement_of(caddr[1]);

    /* The old leader wakes up believing it leads. */
    ck_assert_int_eq(harness_proc_signal(coords[0], SIGCONT), 0);
    for (int waited = 0; coord_ready(0) && waited < 10000; waited += 50)
        crash_sleep_ms(50);
    ck_assert_msg(!coord_ready(0), "the old leader still says it leads 10 s after SIGCONT");
    /* It serves again, as a standby (it may be re-opening its listener). */
    await_standby(0);
    crash_sleep_ms(1500); /* several report rounds */
    printf("check_failover: sigstop: the nodes refused %zu messages by epoch after SIGCONT\n",
           nodes_stale_epoch() - refused0);
    check_placement_unchanged(before, n);
}
END_TEST

/* ---- the pause between the lease check and the send: fenced by epoch ------- */

#define STALE_BATCHES \
    "sluice_node_coordinator_refusals_total{reason=\"stale_epoch\",message=\"assign_batch\"}"

/* Whether process pid is stopped (state T in /proc/<pid>/stat). */
static bool proc_stopped(int pid)
{
    char path[64], buf[256], *paren;
    FILE *f;
    size_t len;

    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    if ((f = fopen(path, "re")) == NULL)
        return false;
    len = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[len] = '\0';
    paren = strrchr(buf, ')');
    return paren != NULL && paren[1] == ' ' && paren[2] == 'T';
}

/* A node metric summed over the three nodes (a node that does not answer counts 0). */
static double nodes_metric_sum(const char *sample)
{
    double sum = 0;

    for (int i = 0; i < CRASH_NODES; i++) {
        double v = harness_metric(crash_node_addr(i), sample);

        sum += v > 0 ? v : 0;
    }
    return sum;
}

/* Waits up to timeout_ms until every node has seen epoch; true if they have. */
static bool await_nodes_epoch(long long epoch, unsigned timeout_ms)
{
    uint64_t t0 = crash_now_ms();

    do {
        int seen = 0;

        for (int i = 0; i < CRASH_NODES; i++)
            seen += harness_metric(crash_node_addr(i), "sluice_node_leader_epoch") == (double)epoch;
        if (seen == CRASH_NODES)
            return true;
        crash_sleep_ms(50);
    } while (crash_now_ms() - t0 < timeout_ms);
    return false;
}

/*
 * The leader passes its lease check and is paused before its batch leaves
 * (SLUICE_FAILPOINT=dispatch-pause:p, coordinator/dispatch.c): the case the
 * lease check cannot cover, which the epoch must. The standby leads and
 * places the same segments; the nodes see its epoch; then the old leader
 * continues, sends what it had decided, and the nodes refuse it by epoch.
 */
START_TEST(test_fence)
{
    int n = 40, more = 12, pid;
    long long epoch0;
    double refused;
    struct strmap *before;
    char *log, why[512];
    int64_t ms;

    cluster_start_fp("dispatch-pause:p");
    pid = harness_proc_pid(coords[0]);
    ck_assert_msg(await_lead(0, 10000) >= 0, "coordinator 0 does not lead");
    ck_assert_int_eq(harness_register_ids_r(caddr[0], "f", 6, 0, n, uris, 4, ROWS, 16, REPLICATION),
                     200);
    await_settled(0, n, 30000);
    epoch0 = catalog_epoch();
    ck_assert_msg(await_nodes_epoch(epoch0, 10000), "the nodes did not all see epoch %lld", epoch0);
    ck_assert_int_eq(nodes_metric_sum(STALE_BATCHES), 0);

    /* Committed before the answer; the first batch carrying one stops the leader. */
    ck_assert_int_eq(
        harness_register_ids_r(caddr[0], "p", 6, n, n + more, uris, 4, ROWS, 16, REPLICATION), 200);
    n += more;
    for (int waited = 0; !proc_stopped(pid) && waited < 10000; waited += 20)
        crash_sleep_ms(20);
    ck_assert_msg(proc_stopped(pid), "coordinator 0 did not stop at its dispatch-pause failpoint");
    ms = await_lead(1, 30000);
    ck_assert_msg(ms >= 0, "the standby did not lead within 30 s of the leader's pause");
    ck_assert_int_eq(catalog_epoch(), epoch0 + 1);
    ck_assert_msg(await_nodes_epoch(epoch0 + 1, 15000), "the nodes did not all see epoch %lld",
                  epoch0 + 1);
    await_settled(1, n, 30000);
    before = placement_of(caddr[1]);
    printf("check_failover: fence: the leader paused between lease check and send; the standby "
           "leads after %" PRId64 " ms, epoch %lld -> %lld\n",
           ms, epoch0, epoch0 + 1);

    /* The old leader goes on with the send it had decided on. */
    ck_assert_int_eq(harness_proc_signal(coords[0], SIGCONT), 0);
    for (int waited = 0; nodes_metric_sum(STALE_BATCHES) == 0 && waited < 10000; waited += 50)
        crash_sleep_ms(50);
    refused = nodes_metric_sum(STALE_BATCHES);
    if (refused < 1) {
        harness_proc_dump_log(coords[0]);
        for (int i = 0; i < CRASH_NODES; i++)
            harness_proc_dump_log(crash_nodes[i]);
    }
    ck_assert_msg(refused >= 1, "no node refused the old leader's assignment batch by epoch");
    /* It stepped down: a standby on its address. */
    await_standby(0);
    log = xasprintf("%s/coord-0/coord.log", crash_dir);
    log_reason(log, "event=lead_lost", why, sizeof(why));
    ck_assert_msg(why[0] != '\0', "coordinator 0 logged no lead_lost");
    ck_assert_msg(log_count(log, "action=continued") == 1, "coordinator 0 never continued");
    free(log);
    printf("check_failover: fence: after SIGCONT the nodes refused %.0f assignment batches of "
           "epoch %lld; the old leader stepped down: %s\n",
           refused, epoch0, why);
    check_placement_unchanged(before, n);
}
END_TEST

/* ---- the leader's catalog session ended by PostgreSQL ------------------------ */

/*
 * The cluster, n segments registered through coordinator 0 (the leader),
 * and rc registering more from f<n> on (up to 40 batches), for 200 ms.
 * Returns the leader's epoch.
 */
static long long cluster_registering(int n, struct reg_client *rc)
{
    long long epoch;

    cluster_start();
    ck_assert_msg(await_lead(0, 10000) >= 0, "coordinator 0 does not lead");
    epoch = catalog_epoch();
    ck_assert_int_eq(harness_register_ids_r(caddr[0], "f", 6, 0, n, uris, 4, ROWS, 16, REPLICATION),
                     200);
    reg_client_start(rc, n, n + 40 * BATCH, 0);
    crash_sleep_ms(200);
    return epoch;
}

/* Ends the session that holds the lead's advisory lock (CAT_LEAD_KEY); the sessions ended. */
#define TERMINATE_LEADER_SQL                                                                    \
    "SELECT count(pg_terminate_backend(pid)) FROM pg_locks WHERE locktype = 'advisory' AND "     \
    "granted AND classid = 0 AND objid = 1397506886 AND objsubid = 1"

/*
 * An operator (or a failing-over pooler) ends the leader's catalog session
 * with pg_terminate_backend while a client registers: the leader steps
 * down (it stays up, a standby), the standby leads with the next epoch,
 * every acknowledged registration is in the catalog and placed.
 */
START_TEST(test_terminate)
{
    int n = 40;
    struct reg_client rc;
    long long epoch0;
    char *log;
    int64_t ms;

    epoch0 = cluster_registering(n, &rc);
    ck_assert_int_eq(harness_pg_int(catalog_uri, TERMINATE_LEADER_SQL), 1);
    ms = await_lead(1, 10000);
    printf("check_failover: terminate: the leader's session ended, the standby leads after %" PRId64
           " ms\n",
           ms);
    fflush(stdout);
    if (ms < 0) {
        harness_proc_dump_log(coords[0]);
        harness_proc_dump_log(coords[1]);
    }
    ck_assert_msg(ms >= 0, "the standby did not lead within 10 s of pg_terminate_backend");
    ck_assert_int_eq(catalog_epoch(), epoch0 + 1);
    await_standby(0);
    ck_assert_msg(harness_proc_alive(coords[0]), "coordinator 0 exited");
    log = xasprintf("%s/coord-0/coord.log", crash_dir);
    ck_assert_msg(log_count(log, "event=lead_lost") == 1, "coordinator 0 logged no lead_lost");
    free(log);
    reg_client_stop(&rc);
    n = rc.next;
    check_acked(caddr[1], n);
    await_settled(1, n, 30000);
    ck_assert_msg(leader() == 1, "coordinator 1 no longer leads");
}
END_TEST

/* ---- PostgreSQL restarted under the leader ---------------------------------- */

START_TEST(test_pg_restart)
{
    int n = 40, lead = -1;
    struct reg_client rc;
    struct harness_reply rep;
    long long epoch0;
    uint64_t t0;
    int64_t ms = -1;

    /*
     * While a client registers and the leader places, the server crashes
     * and stays down for PG_DOWN_MS (longer than the leader's one-second
     * lead check, so that it finds the server gone, not already back).
     */
    epoch0 = cluster_registering(n, &rc);
    ck_assert_int_eq(harness_pg_restart(pg, PG_DOWN_MS), 0);
    /* A new election (the epoch rises), and then exactly one of them ready. */
    t0 = crash_now_ms();
    while (crash_now_ms() - t0 < 15000) {
        if (catalog_epoch() > epoch0 && coord_ready(0) != coord_ready(1)) {
            lead = leader();
            break;
        }
        crash_sleep_ms(50);
    }
    if (lead >= 0)
        ms = (int64_t)(crash_now_ms() - t0);
    printf("check_failover: pg_restart: PostgreSQL down %d ms; coordinator %d leads %" PRId64
           " ms after it is back\n",
           PG_DOWN_MS, lead, ms);
    fflush(stdout);
    /* Both still run: the one that led stepped down and stood by on its address. */
    for (int i = 0; i < 2; i++) {
        if (!harness_proc_alive(coords[i]))
            harness_proc_dump_log(coords[i]);
        ck_assert_msg(harness_proc_alive(coords[i]),
                      "coordinator %d exited after PostgreSQL restarted", i);
    }
    ck_assert_msg(lead >= 0, "no new leader 15 s after PostgreSQL restarted (epoch %lld, was %lld)",
                  catalog_epoch(), epoch0);
    reg_client_stop(&rc);
    n = rc.next;
    /* A batch acknowledged after the restart, through the new leader. */
    ck_assert_int_eq(harness_register_ids_r(caddr[lead], "f", 6, n, n + BATCH, uris, 4, ROWS, 16,
                                            REPLICATION),
                     200);
    n += BATCH;
    check_acked(caddr[lead], n);
    await_settled(lead, n, 30000);
    /* The other one serves as a standby on its address. */
    ck_assert_int_eq(harness_send(caddr[lead ^ 1], "GET", "/readyz", &rep), 503);
}
END_TEST

/* One test case with the shared fixtures plus its own PostgreSQL and coordinators. */
static void add_case(Suite *s, const char *name, const TTest *test, int timeout)
{
    TCase *tc = crash_tcase(s, name, test, timeout);

    tcase_add_unchecked_fixture(tc, pg_setup, pg_teardown);
    tcase_add_checked_fixture(tc, NULL, coords_teardown);
}

int main(void)
{
    const char *l = getenv("SLUICE_LONG");
    bool lr = l != NULL && l[0] != '\0' && strcmp(l, "0") != 0;
    Suite *s = suite_create("failover");

    add_case(s, "kill_loop", test_kill_loop, lr ? 3600 : 600);
    add_case(s, "sigstop", test_sigstop, 300);
    add_case(s, "fence", test_fence, 120);
    add_case(s, "terminate", test_terminate, 120);
    add_case(s, "pg_restart", test_pg_restart, 120);
    return harness_run_suite(s);
}
