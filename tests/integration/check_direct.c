/*
 * check_direct: `sluice-node serve --io=direct` as real processes.
 *
 *  - a direct-mode node in a 128 MiB memory cgroup holds 512 MiB of segment
 *    data (16 x 32 MiB), four times its limit, and answers every query
 *    exactly (sums computed from the generator, not from the files), with
 *    no oom_kill and its cgroup's usage under the limit throughout: sampled
 *    every 20 ms by a thread, and the kernel's own peak (v1
 *    memory.max_usage_in_bytes, v2 memory.peak) read at the end;
 *  - on a filesystem that refuses O_DIRECT (ramfs, mounted in a private
 *    mount namespace), the node refuses to start and says which path and
 *    which flag;
 *  - a --cache-budget the pool cannot use is a usage error naming the flag.
 */
#define _GNU_SOURCE 1
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "mkseg.h"
#include "segfmt.h"
#include "wire.h"
#include "xmalloc.h"
#include "suite.h"

#define SEGS      16
#define SEG_ROWS  (1u << 20) /* x 32 bytes = 32 MiB */
#define ROW_BYTES 32u
#define LIMIT     (128ull << 20)

static char *dir, *storage, *data, *cgroup;
static struct harness_proc *node;

static void setup(void)
{
    harness_workdir_new("sluice-direct-it", &dir, &storage, &data);
    harness_client_set(NULL, 60000); /* a query over every segment reads them all from disk */
}

static void teardown(void)
{
    ck_assert_int_eq(harness_workdir_done(&node, &cgroup, &dir, &storage, &data), 0);
}

static void make_seg(const char *id, uint64_t rows, uint64_t seed)
{
    struct mkseg_spec spec = {.rows = rows, .row_bytes = ROW_BYTES, .seed = seed};
    char *path = xasprintf("%s/%s.seg", storage, id), detail[256];

    ck_assert_msg(mkseg_write(path, &spec, detail, sizeof(detail)) == 0, "%s", detail);
    free(path);
}

static int assign(const char *id, uint64_t rows, struct wire_assign_response *ret)
{
    char *uri = xasprintf("file://%s/%s.seg", storage, id);
    struct wire_assign_request m = harness_assign_request(id, uri, rows, ROW_BYTES);
    int status;

    memset(ret, 0, sizeof(*ret));
    status = harness_assign(harness_proc_addr(node), &m, ret, NULL);
    ck_assert_int_gt(status, 0);
    free(uri);
    return status;
}

static bool node_status(struct wire_node_status *st)
{
    return harness_node_status(harness_proc_addr(node), NULL, 5000, st);
}

static bool none_loading(void *arg)
{
    return harness_node_count(harness_proc_addr(node), WIRE_SEG_LOADING) == 0;
}

/* One aggregate of "value" over ids, filtered on key in [lo, hi] when filtered. */
static int query(char (*ids)[WIRE_ID_MAX + 1], size_t n, enum wire_aggregate agg, bool filtered,
                 int64_t lo, int64_t hi, struct wire_query_response *ret)
{
    struct wire_query_request q;
    struct harness_reply reply;
    int status;

    memset(&q, 0, sizeof(q));
    q.n_segments = n;
    q.segment_ids = ids;
    q.aggregate = agg;
    snprintf(q.column, sizeof(q.column), "value");
    if (filtered) {
        snprintf(q.filter_column, sizeof(q.filter_column), "key");
        q.lo = lo;
        q.hi = hi;
    }
    status = harness_query(harness_proc_addr(node), &q, ret, &reply);
    ck_assert_int_gt(status, 0);
    if (status != 200)
        fprintf(stderr, "check_direct: query HTTP %d: %s\n", status, reply.err.message);
    return status;
}

/* Expected answers from the generator: sum, count, min, max of value where key in [lo, hi]. */
struct expect {
    uint64_t count, sum;
    int64_t min, max;
};

static void expect_of(uint64_t seed, uint64_t rows, int64_t lo, int64_t hi, struct expect *e)
{
    memset(e, 0, sizeof(*e));
    e->min = INT64_MAX;
    e->max = INT64_MIN;
    for (uint64_t i = 0; i < rows; i++) {
        int64_t k = segment_synth_key(seed, i), v = segment_synth_value(seed, i);
        if (k < lo || k > hi)
            continue;
        e->count++;
        e->sum += (uint64_t)v;
        e->min = v < e->min ? v : e->min;
        e->max = v > e->max ? v : e->max;
    }
}

/* The cgroup's usage, peak and anonymous memory (v1 or v2 file names). */
static unsigned long long cg_read(const char *name_v1, const char *name_v2)
{
    char *file = xasprintf("%s/%s", cgroup, name_v1);
    unsigned long long v = 0;
    FILE *f = fopen(file, "re");

    if (f == NULL) {
        free(file);
        file = xasprintf("%s/%s", cgroup, name_v2);
        f = fopen(file, "re");
    }
    free(file);
    if (f == NULL)
        return 0;
    if (fscanf(f, "%llu", &v) != 1)
        v = 0;
    fclose(f);
    return v;
}

static unsigned long long cg_stat(const char *key_v1, const char *key_v2)
{
    char *file = xasprintf("%s/memory.stat", cgroup), line[256], key[128];
    unsigned long long v = 0, x;
    FILE *f = fopen(file, "re");

    free(file);
    if (f == NULL)
        return 0;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "%127s %llu", key, &x) == 2 &&
            (strcmp(key, key_v1) == 0 || strcmp(key, key_v2) == 0))
            v = x;
    fclose(f);
    return v;
}

struct sampler {
    atomic_bool stop;
    unsigned long long max_usage, max_anon, samples;
};

static void *sampler_main(void *arg)
{
    struct sampler *s = arg;

    while (!atomic_load(&s->stop)) {
        unsigned long long u = cg_read("memory.usage_in_bytes", "memory.current");
        unsigned long long a = cg_stat("rss", "anon");
        if (u > s->max_usage)
            s->max_usage = u;
        if (a > s->max_anon)
            s->max_anon = a;
        s->samples++;
        usleep(20000);
    }
    return NULL;
}

START_TEST(test_holds_four_times_its_limit)
{
    const char *args[] = {"--io=direct", "--cache-budget=48M", "--max-loads=2", NULL};
    char ids[SEGS][WIRE_ID_MAX + 1], why[256];
    struct expect whole[SEGS], part[SEGS];
    struct wire_node_status st;
    struct sampler smp = {0};
    pthread_t th;
    uint64_t total_file = 0;

    cgroup = harness_cgroup_new("sluice-direct", LIMIT, why, sizeof(why));
    if (cgroup == NULL) {
        fprintf(stderr, "check_direct: SKIP test_holds_four_times_its_limit: %s\n", why);
        return;
    }
    for (int i = 0; i < SEGS; i++) {
        snprintf(ids[i], sizeof(ids[i]), "d%02d", i);
        make_seg(ids[i], SEG_ROWS, (uint64_t)i + 100);
        expect_of((uint64_t)i + 100, SEG_ROWS, INT64_MIN, INT64_MAX, &whole[i]);
        /* About a third of the rows, cutting zone-map blocks at both ends. */
        expect_of((uint64_t)i + 100, SEG_ROWS, 1000003, 2500001, &part[i]);
    }
    node = harness_node_start_cg(storage, data, cgroup, args);
    ck_assert_ptr_nonnull(node);
    ck_assert_int_eq(pthread_create(&th, NULL, sampler_main, &smp), 0);
    for (int i = 0; i < SEGS; i++) {
        struct wire_assign_response resp;
        int status, tries = 0;

        /* A client like any other: a refusal's Retry-After is honoured. */
        while ((status = assign(ids[i], SEG_ROWS, &resp)) == 429 && tries++ < 60)
            usleep(resp.retry_after_ms < 2000 ? resp.retry_after_ms * 1000 : 2000000);
        ck_assert_msg(status == 202, "assign %s: HTTP %d %s: %s", ids[i], status,
                      reason_name(resp.reason), resp.detail);
        ck_assert(harness_wait_until(none_loading, NULL, 120000));
        ck_assert_uint_eq(harness_cgroup_oom_kills(cgroup), 0);
    }
    ck_assert(node_status(&st));
    ck_assert_uint_eq(st.n_segments, SEGS);
    for (size_t i = 0; i < st.n_segments; i++) {
        ck_assert_int_eq(st.segments[i].state, WIRE_SEG_LOADED);
        total_file += st.segments[i].file_bytes;
    }
    ck_assert_int_eq(st.pressure.io_mode, WIRE_IO_DIRECT);
    ck_assert_uint_eq(st.pressure.pool_bytes, 48ull << 20);
    ck_assert_uint_eq(st.mapped_bytes, 0);
    /* What the node says it holds: the pool plus small heaps, well under the limit. */
    ck_assert_uint_ge(st.pressure.wss_bytes, 48ull << 20);
    ck_assert_uint_lt(st.pressure.wss_bytes, LIMIT);
    wire_node_status_done(&st);
    ck_assert_uint_ge(total_file, 4 * LIMIT);
    /* Every segment, three passes (the pool holds under a tenth of the data), exact. */
    for (int pass = 0; pass < 3; pass++) {
        for (int i = 0; i < SEGS; i++) {
            struct wire_query_response r;

            ck_assert_int_eq(query(&ids[i], 1, WIRE_AGG_SUM, false, 0, 0, &r), 200);
            ck_assert_int_eq(r.int_value, (int64_t)whole[i].sum);
            ck_assert_uint_eq(r.rows_matched, SEG_ROWS);
            ck_assert_int_eq(query(&ids[i], 1, WIRE_AGG_SUM, true, 1000003, 2500001, &r), 200);
            ck_assert_int_eq(r.int_value, (int64_t)part[i].sum);
            ck_assert_uint_eq(r.rows_matched, part[i].count);
            ck_assert_int_eq(query(&ids[i], 1, WIRE_AGG_MIN, true, 1000003, 2500001, &r), 200);
            ck_assert_int_eq(r.int_value, part[i].min);
            ck_assert_int_eq(query(&ids[i], 1, WIRE_AGG_MAX, pass == 1, 1000003, 2500001, &r),
                             200);
            ck_assert_int_eq(r.int_value, pass == 1 ? part[i].max : whole[i].max);
        }
    }
    {
        /* One query over all 512 MiB at once. */
        struct wire_query_response r;
        uint64_t sum = 0, count = 0;

        for (int i = 0; i < SEGS; i++) {
            sum += part[i].sum;
            count += part[i].count;
        }
        ck_assert_int_eq(query(ids, SEGS, WIRE_AGG_SUM, true, 1000003, 2500001, &r), 200);
        ck_assert_int_eq(r.int_value, (int64_t)sum);
        ck_assert_uint_eq(r.rows_matched, count);
        ck_assert_int_eq(query(ids, SEGS, WIRE_AGG_COUNT, false, 0, 0, &r), 200);
        ck_assert_int_eq(r.int_value, (int64_t)SEGS * SEG_ROWS);
    }
    atomic_store(&smp.stop, true);
    pthread_join(th, NULL);
    {
        unsigned long long peak = cg_read("memory.max_usage_in_bytes", "memory.peak");

        fprintf(stderr,
                "check_direct: 512 MiB held in a 128 MiB cgroup; %llu samples, max usage %llu, "
                "max anon %llu, kernel peak %llu, oom_kills %llu\n",
                smp.samples, smp.max_usage, smp.max_anon, peak, harness_cgroup_oom_kills(cgroup));
        ck_assert_uint_gt(smp.samples, 10);
        ck_assert_uint_lt(smp.max_usage, LIMIT);
        if (peak > 0)
            ck_assert_uint_le(peak, LIMIT);
        /* The node's own memory (not page cache): pool and heaps, under the admit limit. */
        ck_assert_uint_lt(smp.max_anon, LIMIT * 85 / 100);
        ck_assert_uint_ge(smp.max_anon, 48ull << 20);
    }
    ck_assert_uint_eq(harness_cgroup_oom_kills(cgroup), 0);
}
END_TEST

/*
 * ramfs has no O_DIRECT (tmpfs has it since Linux 6.6). A child mounts one on
 * the data dir in a private mount namespace and runs the node there.
 * Returns the child's exit status (77: no mount namespace here).
 */
static int run_on_ramfs(const char *const *argv, char **ret_out)
{
    int pipefd[2], status;
    pid_t pid;

    ck_assert_int_eq(pipe(pipefd), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        char *out = NULL;
        int rc;

        close(pipefd[0]);
        if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
            mount("none", data, "ramfs", 0, NULL) < 0)
            _exit(77);
        rc = harness_run(argv, &out);
        if (out != NULL && write(pipefd[1], out, strlen(out)) < 0)
            rc = 99;
        umount(data);
        _exit(rc < 0 ? 98 : rc);
    }
    close(pipefd[1]);
    {
        char buf[4096];
        size_t len = 0;
        ssize_t n;

        while ((n = read(pipefd[0], buf + len, sizeof(buf) - 1 - len)) > 0)
            len += (size_t)n;
        buf[len] = '\0';
        *ret_out = xstrdup(buf);
    }
    close(pipefd[0]);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    return WEXITSTATUS(status);
}

START_TEST(test_refuses_filesystem_without_odirect)
{
    char *listen = xasprintf("--listen=127.0.0.1:0"), *sr = xasprintf("--storage-root=%s", storage);
    char *dd = xasprintf("--data-dir=%s", data), *segdir = xasprintf("%s/segments", data);
    const char *argv[] = {harness_bin("sluice-node"), "serve", listen, sr, dd, "--io=direct",
                          "--cache-budget=16M", NULL};
    char *out = NULL;
    int rc;

    mkdir(data, 0755);
    rc = run_on_ramfs(argv, &out);
    if (rc == 77) {
        fprintf(stderr, "check_direct: SKIP ramfs: no private mount namespace here\n");
    } else {
        fprintf(stderr, "check_direct: on ramfs the node said: %s", out);
        ck_assert_int_eq(rc, 1);
        ck_assert_ptr_nonnull(strstr(out, "--io=direct"));
        ck_assert_ptr_nonnull(strstr(out, "refuses O_DIRECT"));
        ck_assert_ptr_nonnull(strstr(out, segdir));
    }
    free(out);
    free(listen);
    free(sr);
    free(dd);
    free(segdir);
}
END_TEST

START_TEST(test_bad_cache_budget)
{
    char *sr = xasprintf("--storage-root=%s", storage), *dd = xasprintf("--data-dir=%s", data);
    const char *argv[] = {harness_bin("sluice-node"), "serve", "--listen=127.0.0.1:0", sr, dd,
                          "--io=direct", "--cache-budget=1000000", NULL};
    char *out = NULL;

    ck_assert_int_eq(harness_run(argv, &out), 1);
    ck_assert_ptr_nonnull(strstr(out, "--cache-budget"));
    ck_assert_ptr_nonnull(strstr(out, "not a multiple"));
    free(out);
    free(sr);
    free(dd);
}
END_TEST

/*
 * --cache-budget 0 (the default) sizes the pool from the memory limit: half of
 * 128 MiB is 64 MiB. A budget at the limit could never fit and is refused at
 * start, before anything is allocated (no OOM kill).
 */
START_TEST(test_budget_from_limit)
{
    const char *fits[] = {"--io=direct", NULL};
    const char *too_big[] = {"--io=direct", "--cache-budget=128M", NULL};
    struct wire_node_status st;
    struct harness_proc *refused;
    char why[256];

    cgroup = harness_cgroup_new("sluice-direct", LIMIT, why, sizeof(why));
    if (cgroup == NULL) {
        fprintf(stderr, "check_direct: SKIP test_budget_from_limit: %s\n", why);
        return;
    }
    refused = harness_node_start_cg(storage, data, cgroup, too_big);
    ck_assert_msg(refused == NULL, "a 128M pool in a 128 MiB cgroup started");
    ck_assert_uint_eq(harness_cgroup_oom_kills(cgroup), 0);
    node = harness_node_start_cg(storage, data, cgroup, fits);
    ck_assert_ptr_nonnull(node);
    ck_assert(node_status(&st));
    ck_assert_uint_eq(st.pressure.pool_bytes, 64ull << 20);
    wire_node_status_done(&st);
}
END_TEST

static Suite *direct_suite(void)
{
    Suite *s = suite_create("direct");
    TCase *tc = tcase_create("memory");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_holds_four_times_its_limit);
    tcase_add_test(tc, test_budget_from_limit);
    suite_add_tcase(s, tc);
    tc = tcase_create("refusals");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_refuses_filesystem_without_odirect);
    tcase_add_test(tc, test_bad_cache_budget);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return harness_run_suite(direct_suite());
}
