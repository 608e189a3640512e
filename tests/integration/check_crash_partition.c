/*
 * check_crash_partition: a node cut off (issue 5, item 4). One node in its
 * own network namespace behind a veth pair, cut off with iptables inside
 * that namespace, then healed (SKIP where namespaces cannot be made).
 * Addresses are a private /30 that exists only between the veth ends;
 * nothing leaves the machine.
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
    char *data = xasprintf("%s/node-2", crash_dir),
         *ready = xasprintf("%s/node-2/ready", crash_dir);
    char *log = xasprintf("%s/node-2/node.log", crash_dir),
         *nspath = xasprintf("/run/netns/%s", ns_name);
    char *a_root = xasprintf("--storage-root=%s", crash_storage),
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
    deadline = crash_now_ms() + 15000;
    while (crash_now_ms() < deadline && !ok) {
        FILE *f = fopen(ready, "re");
        if (f != NULL) {
            if (fgets(crash_ns_node_addr, sizeof(crash_ns_node_addr), f) != NULL) {
                struct http_response r;
                crash_ns_node_addr[strcspn(crash_ns_node_addr, "\r\n")] = '\0';
                if (http_fetch(crash_ns_node_addr, "GET", "/healthz", NULL, NULL, 0, NULL, 1000,
                               &r) == 0) {
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
            crash_sleep_ms(20);
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
    struct crash_rejoin_wait rw;
    struct strmap *moved = NULL;
    struct http_response r;
    size_t held;
    uint64_t t0, t_moved, t_heal, t_rejoined;
    size_t dropped;
    int port;

    crash_ns_node_addr[0] = '\0';
    if (ns_skip[0] != '\0') {
        fprintf(stderr,
                "check_crash: SKIP partition test: cannot create a network namespace "
                "here (%s)\n",
                ns_skip);
        return;
    }
    /* The coordinator listens on the host end of the veth pair. */
    port = crash_free_port(NS_HOST_IP);
    ck_assert_int_gt(port, 0);
    snprintf(caddr, sizeof(caddr), NS_HOST_IP ":%d", port);
    snprintf(listen, sizeof(listen), "--listen=%s", caddr);
    crash_coord = harness_coord_start(crash_dir, cargs);
    ck_assert_ptr_nonnull(crash_coord);
    crash_start_node(0, caddr, NULL);
    crash_start_node(1, caddr, NULL);
    ck_assert_msg(ns_node_start(caddr, why, sizeof(why)), "%s", why);
    crash_place_small(caddr, n);
    moved = strmap_new();
    held = crash_coord_placed_on(caddr, "node-2", moved);
    ck_assert_uint_gt(held, 0);

    /* Cut: nothing in or out of the namespace's veth end. */
    ck_assert_int_eq(ns_cut("-A"), 0);
    t0 = crash_now_ms();
    ck_assert_int_lt(
        http_fetch(crash_ns_node_addr, "GET", "/healthz", NULL, NULL, 0, NULL, 300, &r), 0);
    crash_await_moved(caddr, "node-2", victim, n, "cut-off");
    t_moved = crash_now_ms() - t0;
    /* Heal. */
    ck_assert_int_eq(ns_cut("-D"), 0);
    t_heal = crash_now_ms();
    rw.caddr = caddr;
    rw.node_id = "node-2";
    rw.node = victim;
    rw.moved = moved;
    ck_assert_msg(harness_wait_until(crash_rejoined, &rw, 30000),
                  "node-2 did not rejoin or still holds %zu moved segments", rw.still_held);
    t_rejoined = crash_now_ms();
    ck_assert_msg(crash_wait_settled(caddr, (uint64_t)n, true, 30000, why, sizeof(why)), "%s", why);
    dropped = crash_coord_events(caddr, "extra_copy", "node-2");
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

int main(void)
{
    struct crash_case c = {"partition_netns", test_partition_netns, 300,         0,
                           ns_setup,          ns_teardown,          ns_node_stop};

    return crash_main(&c);
}
