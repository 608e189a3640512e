/*
 * check_crash_sigstop: a node stalled (issue 5, item 4). SIGSTOP of a node
 * for longer than --node-timeout; its segments must be LOADED elsewhere
 * before SIGCONT, and its copies dropped after.
 *
 * Expected load: two shared cores, well under a minute.
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

/* ---- 3. SIGSTOP longer than --node-timeout -------------------------------- */

START_TEST(test_sigstop)
{
    const int n = 60, victim = 1;
    const char *cargs[] = {"--node-timeout=2s", NULL};
    struct crash_rejoin_wait rw;
    struct strmap *moved = strmap_new();
    size_t held;
    uint64_t t0, t_moved, t_cont, t_rejoined;
    size_t dropped;
    char why[512];

    crash_coord = harness_coord_start(crash_dir, cargs);
    ck_assert_ptr_nonnull(crash_coord);
    for (int i = 0; i < CRASH_NODES; i++)
        crash_start_node(i, harness_proc_addr(crash_coord), NULL);
    crash_place_small(harness_proc_addr(crash_coord), n);
    held = crash_coord_placed_on(harness_proc_addr(crash_coord), "node-1", moved);
    ck_assert_uint_gt(held, 0);

    ck_assert_int_eq(harness_proc_signal(crash_nodes[victim], SIGSTOP), 0);
    t0 = crash_now_ms();
    /* Re-placement happens while the node is still stopped. */
    crash_await_moved(harness_proc_addr(crash_coord), "node-1", victim, n, "stopped");
    t_moved = crash_now_ms() - t0;
    ck_assert_int_eq(harness_proc_signal(crash_nodes[victim], SIGCONT), 0);
    t_cont = crash_now_ms();
    rw.caddr = harness_proc_addr(crash_coord);
    rw.node_id = "node-1";
    rw.node = victim;
    rw.moved = moved;
    ck_assert_msg(harness_wait_until(crash_rejoined, &rw, 30000),
                  "node-1 did not rejoin or still holds %zu moved segments", rw.still_held);
    t_rejoined = crash_now_ms();
    ck_assert_msg(crash_wait_settled(harness_proc_addr(crash_coord), (uint64_t)n, true, 30000, why,
                                     sizeof(why)),
                  "%s", why);
    dropped = crash_coord_events(harness_proc_addr(crash_coord), "extra_copy", "node-1");
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

int main(void)
{
    struct crash_case c = {"sigstop", test_sigstop, 300, 0, NULL, NULL, NULL};

    return crash_main(&c);
}
