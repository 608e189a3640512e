/*
 * check_leak: a co-tenant leaking memory in the node's own 256 MiB memory
 * cgroup (issue 21). The node, at default settings, must refuse new
 * segments with MEM_EXHAUSTION before the cgroup counts any oom_kill:
 *  - slow leak (3 MiB/s, so the growth would take 85 s to fill the limit):
 *    refused with the long "go elsewhere" Retry-After (--retry-capacity);
 *  - fast run (48 MiB/s, 5 s to fill): refused with the short pressure
 *    Retry-After, and the node sheds a loaded segment as MEM_EXHAUSTION.
 * Each prints the time from the start of the leak to the first refusal.
 *
 * The co-tenant (harness_cotenant_start) is a forked child that joins the
 * cgroup and touches anonymous memory at the given rate up to a cap well under the limit (so a
 * node that failed to refuse would not take the machine down). In the slow
 * case a ballast of 140 MiB comes first and the test waits until the node
 * sees nothing growing, so that the slow phase starts 100 MiB from the limit
 * and the test stays short (about 25 s in all). Skipped, with the reason,
 * where no memory cgroup can be created.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "harness.h"
#include "mkseg.h"
#include "reason.h"
#include "segfmt.h"
#include "wire.h"
#include "xmalloc.h"
#include "suite.h"

#define MIB (1ull << 20)

static char *dir, *storage, *data, *cgroup;
static struct harness_proc *node;
static int leakers[2];

static void setup(void)
{
    harness_workdir_new("sluice-leak-it", &dir, &storage, &data);
}

static void leak_stop_all(void)
{
    for (size_t i = 0; i < sizeof(leakers) / sizeof(leakers[0]); i++) {
        harness_cotenant_stop(leakers[i]);
        leakers[i] = 0;
    }
}

static void teardown(void)
{
    leak_stop_all();
    ck_assert_int_eq(harness_workdir_done(&node, &cgroup, &dir, &storage, &data), 0);
}

/* Starts a co-tenant in the cgroup (slot i). */
static void leak_start(int i, size_t prefill, double rate, size_t cap)
{
    leakers[i] = harness_cotenant_start(cgroup, prefill, rate, cap, false);
    ck_assert_int_gt(leakers[i], 0);
}

static int probes;

/* Asks the node to take a tiny new segment; returns the status and the answer. */
static int probe(struct wire_assign_response *resp, struct harness_reply *reply)
{
    char id[32], *uri = xasprintf("file://%s/probe.seg", storage);
    struct wire_assign_request m;
    int status;

    snprintf(id, sizeof(id), "p%04d", probes++);
    m = harness_assign_request(id, uri, 1000, 16);
    memset(resp, 0, sizeof(*resp));
    status = harness_assign(harness_proc_addr(node), &m, resp, reply);
    free(uri);
    return status;
}

static void make_seg(const char *id, uint64_t rows, uint64_t seed)
{
    struct mkseg_spec spec = {.rows = rows, .row_bytes = 16, .seed = seed};
    char *path = xasprintf("%s/%s.seg", storage, id), detail[256];

    ck_assert_msg(mkseg_write(path, &spec, detail, sizeof(detail)) == 0, "%s", detail);
    free(path);
}

/* Starts the node in a fresh 256 MiB cgroup; false (test skipped) where none can be made. */
static bool start_node(void)
{
    char why[256];

    cgroup = harness_cgroup_new("sluice-leak", 256 * MIB, why, sizeof(why));
    if (cgroup == NULL) {
        fprintf(stderr, "check_leak: SKIP: %s\n", why);
        return false;
    }
    make_seg("probe", 1000, 1);
    node = harness_node_start_cg(storage, data, cgroup, NULL);
    ck_assert_ptr_nonnull(node);
    return true;
}

/*
 * The ballast is in (usage of at least *arg bytes), nothing grows and
 * MEM_EXHAUSTION is open: the node has settled.
 */
static bool settled(void *arg)
{
    struct wire_node_status st;
    bool ok;

    if (!harness_node_status(harness_proc_addr(node), NULL, 5000, &st))
        return false;
    ok = st.pressure.usage_bytes >= *(uint64_t *)arg &&
         strstr(st.closed_gates, "MEM_EXHAUSTION") == NULL &&
         (!st.pressure.tte_known || st.pressure.tte_ms > 300000);
    wire_node_status_done(&st);
    return ok;
}

/*
 * Probes every 100 ms until a refusal (or timeout_ms); returns the status,
 * the refusal in *resp and the milliseconds since t0_ns in *ret_ms.
 */
static int probe_until_refused(uint64_t t0_ns, unsigned timeout_ms,
                               struct wire_assign_response *resp, uint64_t *ret_ms)
{
    struct harness_reply reply;
    int status = 0;

    while ((clock_mono_ns() - t0_ns) / 1000000 < timeout_ms) {
        status = probe(resp, &reply);
        if (status != 202 && !(status == 429 && resp->reason == WIRE_REASON_LOAD_CONCURRENCY))
            break;
        usleep(100000);
    }
    *ret_ms = (clock_mono_ns() - t0_ns) / 1000000;
    return status;
}

START_TEST(test_slow_leak)
{
    struct wire_assign_response resp;
    uint64_t t0, ms, ballast = 140 * MIB;
    int status;

    if (!start_node())
        return;
    leak_start(0, ballast, 0, ballast);
    ck_assert_msg(harness_wait_until(settled, &ballast, 40000), "the node never settled");
    t0 = clock_mono_ns();
    leak_start(1, 0, 3.0 * MIB, 90 * MIB);
    status = probe_until_refused(t0, 30000, &resp, &ms);
    fprintf(stderr,
            "check_leak: slow leak (3 MiB/s): first refusal %" PRIu64
            " ms after the leak started: HTTP %d %s, Retry-After %u ms: %s\n",
            ms, status, reason_name(resp.reason), resp.retry_after_ms, resp.detail);
    ck_assert_uint_eq(harness_cgroup_oom_kills(cgroup), 0);
    ck_assert_int_eq(status, 429);
    ck_assert_int_eq(resp.reason, WIRE_REASON_MEM_EXHAUSTION);
    ck_assert_msg(strstr(resp.detail, "slow leak, go elsewhere") != NULL, "%s", resp.detail);
    /* --retry-capacity 60 s, jittered by at most 20 %. */
    ck_assert_uint_ge(resp.retry_after_ms, 48000);
    leak_stop_all();
    ck_assert_uint_eq(harness_cgroup_oom_kills(cgroup), 0);
}
END_TEST

static bool shed_exhaustion(void *arg)
{
    struct wire_node_status st;
    bool found = false;

    if (!harness_node_status(harness_proc_addr(node), NULL, 5000, &st))
        return false;
    for (size_t i = 0; i < st.n_segments; i++) {
        if (st.segments[i].state == WIRE_SEG_DROPPED) {
            snprintf(arg, 300, "%.40s %s: %.200s", st.segments[i].segment_id,
                     reason_name(st.segments[i].reason), st.segments[i].detail);
            found |= st.segments[i].reason == WIRE_REASON_MEM_EXHAUSTION;
        }
    }
    wire_node_status_done(&st);
    return found;
}

static bool all_loaded(void *arg)
{
    struct wire_node_status st;
    size_t loaded = 0;

    if (!harness_node_status(harness_proc_addr(node), NULL, 5000, &st))
        return false;
    for (size_t i = 0; i < st.n_segments; i++)
        loaded += st.segments[i].state == WIRE_SEG_LOADED;
    wire_node_status_done(&st);
    return loaded == *(size_t *)arg;
}

START_TEST(test_fast_leak)
{
    struct wire_assign_response resp;
    struct harness_reply reply;
    char dropped[300] = "", *uri;
    size_t two = 2;
    uint64_t t0, ms;
    int status;

    if (!start_node())
        return;
    /* Two loaded segments, one of which the node can shed. */
    make_seg("a", 100000, 2);
    make_seg("b", 100000, 3);
    for (int i = 0; i < 2; i++) {
        struct wire_assign_request m;

        uri = xasprintf("file://%s/%s.seg", storage, i == 0 ? "a" : "b");
        m = harness_assign_request(i == 0 ? "a" : "b", uri, 100000, 16);
        ck_assert_int_eq(harness_assign_patient(harness_proc_addr(node), &m, &resp, &reply), 202);
        free(uri);
    }
    ck_assert(harness_wait_until(all_loaded, &two, 30000));
    t0 = clock_mono_ns();
    leak_start(0, 0, 48.0 * MIB, 170 * MIB);
    status = probe_until_refused(t0, 10000, &resp, &ms);
    fprintf(stderr,
            "check_leak: fast run (48 MiB/s): first refusal %" PRIu64
            " ms after the leak started: HTTP %d %s, Retry-After %u ms: %s\n",
            ms, status, reason_name(resp.reason), resp.retry_after_ms, resp.detail);
    ck_assert_uint_eq(harness_cgroup_oom_kills(cgroup), 0);
    ck_assert_int_eq(status, 429);
    ck_assert_int_eq(resp.reason, WIRE_REASON_MEM_EXHAUSTION);
    ck_assert_msg(strstr(resp.detail, "fast run, shedding") != NULL, "%s", resp.detail);
    ck_assert_uint_lt(resp.retry_after_ms, 48000); /* not the slow leak's "go elsewhere" */
    ck_assert_msg(harness_wait_until(shed_exhaustion, dropped, 10000), "nothing shed (%s)",
                  dropped);
    fprintf(stderr, "check_leak: fast run shed %s\n", dropped);
    leak_stop_all();
    ck_assert_uint_eq(harness_cgroup_oom_kills(cgroup), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("leak");
    TCase *tc = tcase_create("leak");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_slow_leak);
    tcase_add_test(tc, test_fast_leak);
    suite_add_tcase(s, tc);
    return harness_run_suite(s);
}
