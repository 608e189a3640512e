/*
 * check_swap: the sampler's swap signals on a real swap file (issue 21).
 * Where `swapon` on a file works (root with CAP_SYS_ADMIN, a filesystem that
 * supports swap files, no seccomp filter against swapon(2)), a 64 MiB swap
 * file is enabled for the test only, a node runs in a 48 MiB memory cgroup,
 * and a co-tenant in that cgroup holds 80 MiB and keeps touching it, so that
 * pages go out to swap and come back. The node's /metrics must then show the
 * cgroup's swap in use, the swap its memory may use, and swap-ins. Where
 * swapon is refused (a container, an unprivileged run) the test prints why
 * and skips. The swap file is always switched off and removed, after the
 * co-tenant is gone. About 10 s.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/swap.h>
#include <unistd.h>

#include "harness.h"
#include "xmalloc.h"
#include "suite.h"

#define MIB (1ull << 20)

static char *dir, *swapfile, *cgroup;
static bool swap_on;
static struct harness_proc *node;
static int cotenant;

static void teardown(void)
{
    int rc;

    harness_cotenant_stop(cotenant);
    cotenant = 0;
    rc = node != NULL ? harness_proc_stop(node) : 0;
    if (rc != 0)
        harness_proc_dump_log(node);
    harness_proc_free(node);
    node = NULL;
    if (swap_on && swapoff(swapfile) < 0)
        fprintf(stderr, "check_swap: swapoff %s: %s\n", swapfile, strerror(errno));
    swap_on = false;
    harness_cgroup_remove(cgroup);
    free(cgroup);
    cgroup = NULL;
    harness_dir_remove(dir);
    free(dir);
    free(swapfile);
    ck_assert_int_eq(rc, 0);
}

/* Makes and enables the swap file; false with why printed when it cannot. */
static bool swap_setup(void)
{
    const char *mkswap[] = {"/sbin/mkswap", NULL, NULL};
    char buf[1 << 16];
    char *out = NULL;
    int fd;

    dir = harness_dir_new("sluice-swap-it");
    swapfile = xasprintf("%s/swapfile", dir);
    fd = open(swapfile, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    ck_assert_int_ge(fd, 0);
    memset(buf, 0, sizeof(buf));
    for (unsigned i = 0; i < 64 * MIB / sizeof(buf); i++)
        ck_assert_int_eq(write(fd, buf, sizeof(buf)), (ssize_t)sizeof(buf));
    ck_assert_int_eq(fsync(fd), 0);
    close(fd);
    mkswap[1] = swapfile;
    if (access(mkswap[0], X_OK) != 0)
        mkswap[0] = "/usr/sbin/mkswap";
    if (harness_run(mkswap, &out) != 0) {
        fprintf(stderr, "check_swap: SKIP: mkswap failed: %s\n", out != NULL ? out : "");
        free(out);
        return false;
    }
    free(out);
    if (swapon(swapfile, 0) < 0) {
        fprintf(stderr, "check_swap: SKIP: swapon(%s): %s (no swap file here)\n", swapfile,
                strerror(errno));
        return false;
    }
    swap_on = true;
    return true;
}

struct want {
    const char *sample;
    double above;
    double seen; /* the largest value seen */
};

static bool metric_above(void *arg)
{
    struct want *w = arg;
    double v = harness_metric(harness_proc_addr(node), w->sample);

    if (v > w->seen)
        w->seen = v;
    return v > w->above;
}

START_TEST(test_real_swap)
{
    char why[256], *storage, *data;
    struct want used = {"sluice_node_swap_bytes", 0, -1}, cap = {"sluice_node_swap_limit_bytes", 0, -1};
    struct want in = {"sluice_node_swapins_per_second", 0, -1};

    if (!swap_setup())
        return;
    cgroup = harness_cgroup_new("sluice-swap", 48 * MIB, why, sizeof(why));
    if (cgroup == NULL) {
        fprintf(stderr, "check_swap: SKIP: %s\n", why);
        return;
    }
    storage = xasprintf("%s/storage", dir);
    data = xasprintf("%s/data", dir);
    mkdir(storage, 0755);
    node = harness_node_start_cg(storage, data, cgroup, NULL);
    ck_assert_ptr_nonnull(node);
    cotenant = harness_cotenant_start(cgroup, 0, 40.0 * MIB, 80 * MIB, true);
    ck_assert_int_gt(cotenant, 0);
    ck_assert_msg(harness_wait_until(metric_above, &used, 20000), "swap used %.0f", used.seen);
    ck_assert_msg(harness_wait_until(metric_above, &cap, 5000), "swap limit %.0f", cap.seen);
    ck_assert_msg(harness_wait_until(metric_above, &in, 20000), "swap-ins %.1f/s", in.seen);
    fprintf(stderr,
            "check_swap: 80 MiB touched in a 48 MiB cgroup: swap used %.1f MiB of %.1f MiB "
            "usable, swap-ins up to %.0f pages/s\n",
            used.seen / (double)MIB, cap.seen / (double)MIB, in.seen);
    ck_assert_double_le(cap.seen, 64.0 * MIB);
    ck_assert_uint_eq(harness_cgroup_oom_kills(cgroup), 0);
    free(storage);
    free(data);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("swap");
    TCase *tc = tcase_create("swap");

    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_real_swap);
    suite_add_tcase(s, tc);
    return harness_run_suite(s);
}
