/*
 * check_crash_coord: the coordinator killed (issue 5, item 3). A client
 * thread registers segments in small batches while the coordinator is
 * killed with SIGKILL at random moments and restarted on the same --db and
 * the same port (picked here, so nodes keep reporting to one address). No
 * acknowledged registration may be lost, the catalog must pass PRAGMA
 * integrity_check after every restart, and placement must complete with no
 * segment on two nodes.
 *
 * Expected load: two shared cores; 100 kills, 1,000 with SLUICE_LONG=1.
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
            int st =
                crash_register_ids(rc->addr, "c", from, to, rc->uris, SMALL_FILES, SMALL_ROWS, 16);
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
                    give_up = crash_now_ms() + 60000;
                else if (crash_now_ms() > give_up)
                    return NULL;
            }
            crash_sleep_ms(10);
        }
        rc->next = to;
        crash_sleep_ms(rc->pause_ms);
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

        for (int i = 0; i < CRASH_NODES && all; i++) {
            struct wire_node_status st;
            if (!crash_node_status_at(crash_node_addr(i), &st, 5000)) {
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
        crash_sleep_ms(150);
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
    const int kills = crash_long_run ? 1000 : 100;
    int port = crash_free_port("127.0.0.1"), k, failures = 0;
    char caddr[64], listen[80], *uris[SMALL_FILES], *db, err[256], why[512], first_failure[300];
    const char *cargs[] = {listen, NULL};
    struct reg_client rc;
    struct monitor mon;
    pthread_t th, mth;
    unsigned long lost = 0;
    struct catalog *cat;
    struct crash_nodeview v;
    struct assign_check ac;
    uint64_t t0, restart_ms = 0;

    crash_rnd_seed("coordinator kill loop");
    ck_assert_int_gt(port, 0);
    snprintf(caddr, sizeof(caddr), "127.0.0.1:%d", port);
    snprintf(listen, sizeof(listen), "--listen=%s", caddr);
    first_failure[0] = '\0';
    for (int i = 0; i < SMALL_FILES; i++) {
        char name[32];
        snprintf(name, sizeof(name), "small-%d", i);
        uris[i] = crash_write_seg(name, SMALL_ROWS, 16, 500 + (uint64_t)i);
    }
    db = xasprintf("%s/coord.db", crash_dir);
    crash_coord = harness_coord_start(crash_dir, cargs);
    ck_assert_ptr_nonnull(crash_coord);
    ck_assert_str_eq(harness_proc_addr(crash_coord), caddr);
    for (int i = 0; i < CRASH_NODES; i++)
        crash_start_node(i, caddr, NULL);

    memset(&rc, 0, sizeof(rc));
    rc.addr = caddr;
    rc.uris = uris;
    /*
     * Each restart reloads the whole catalog, and GET /v1/segments must stay
     * under the 4 MiB body limit: the long run stops at 15,000 segments.
     */
    rc.pause_ms = crash_long_run ? 45 : 15;
    rc.max_ids = crash_long_run ? 15000 : INT_MAX;
    atomic_init(&rc.stop, false);
    ck_assert_int_eq(pthread_create(&th, NULL, reg_client_main, &rc), 0);
    memset(&mon, 0, sizeof(mon));
    atomic_init(&mon.stop, false);
    mon.seen = strmap_new();
    ck_assert_int_eq(pthread_create(&mth, NULL, monitor_main, &mon), 0);
    t0 = crash_now_ms();
    for (k = 0; k < kills; k++) {
        uint64_t r0;
        int rs;

        crash_sleep_ms(20 + crash_rnd() % 281);
        harness_proc_kill(crash_coord);
        r0 = crash_now_ms();
        rs = harness_proc_restart(crash_coord);
        restart_ms += crash_now_ms() - r0;
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
            kills, (double)(crash_now_ms() - t0) / 1000.0, (double)restart_ms / kills, rc.posts,
            rc.refused, rc.errors_5xx);
    ck_assert_msg(rc.unexpected == 0, "%lu registrations answered %d", rc.unexpected,
                  rc.unexpected_status);
    ck_assert_int_gt(rc.next, 0);

    /* Placement completes, each segment on exactly one node, views agree. */
    t0 = crash_now_ms();
    if (!crash_wait_settled(caddr, (uint64_t)rc.next, true, 180000, why, sizeof(why))) {
        atomic_store(&mon.stop, true);
        harness_proc_dump_log(crash_coord);
        ck_abort_msg("placement did not complete: %s", why);
    }
    atomic_store(&mon.stop, true);
    pthread_join(mth, NULL);
    fprintf(stderr,
            "check_crash: %d segments LOADED, one node each, the coordinator agreeing, %.1f s "
            "after the last kill; %lu polls of the nodes saw %lu segments vanish from every "
            "node\n",
            rc.next, (double)(crash_now_ms() - t0) / 1000.0, mon.polls, mon.vanished);

    /* Then read the catalog itself: every acknowledged id, and where it is. */
    ck_assert_int_eq(harness_proc_stop(crash_coord), 0);
    ck_assert(crash_nodeview_fetch(&v, 0));
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
        char *log = xasprintf("%s/coord.log", crash_dir);
        print_history(cat, ac.mismatched > 0 ? ac.example_id : mon.example, log);
        free(log);
    }
    if (catalog_integrity_check(cat, err, sizeof(err)) < 0 && failures++ == 0)
        snprintf(first_failure, sizeof(first_failure), "at the end: %s", err);
    catalog_close(cat);
    crash_nodeview_done(&v);

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
        char *log = xasprintf("%s/coord.log", crash_dir), first[1024] = "";
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

int main(void)
{
    struct crash_case c = {"coordinator_kill9", test_coord_kill_loop, 600, 3600, NULL, NULL, NULL};

    return crash_main(&c);
}
