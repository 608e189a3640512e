/*
 * bench_admission: how fast the node decides, and how fast it reacts.
 *
 * Part 1, in process: admission_decide() on realistic signals, timed in
 * batches of 1,000 calls; p50 and p99 of the per-decision time over the
 * batches (the clock read is amortised away).
 *
 * Part 2, real processes: a node in its own memory cgroup, probed with an
 * assignment every 10 ms. A child process joins the same cgroup and fills
 * 85 % of its limit with anonymous memory: the time from the child's first
 * allocation to the node's first 429 with a MEM_* reason is the reaction
 * time. Medians over 5 trials; figures to stdout and bench_admission.csv.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "admission.h"
#include "clock.h"
#include "harness.h"
#include "mkseg.h"
#include "segfmt.h"
#include "wire.h"
#include "xmalloc.h"

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

static FILE *csv;

static void part_decision(unsigned batches)
{
    struct admission_config cfg = admission_config_default();
    struct admission_state st;
    struct admission_signals sig;
    struct admission_request req = {64ull << 20, 64ull << 20};
    struct admission_verdict v;
    uint64_t *per = xcalloc(batches, sizeof(*per)), accepted = 0;

    memset(&st, 0, sizeof(st));
    memset(&sig, 0, sizeof(sig));
    sig.psi_available = true;
    sig.refaults_available = true;
    sig.limit_bytes = 8ull << 30;
    sig.wss_bytes = 3ull << 30;
    sig.p99_10s_ms = 20;
    sig.baseline_p99_ms = 15;
    sig.queries_10s = 5000;
    sig.disk_free_bytes = 100ull << 30;
    for (unsigned b = 0; b < batches; b++) {
        uint64_t t0 = clock_mono_ns();
        for (unsigned i = 0; i < 1000; i++) {
            sig.now_ms = (uint64_t)b * 1000 + i;
            sig.some_frac = (double)(i % 7) * 0.001;
            sig.loads_in_flight = i % 3;
            admission_decide(&cfg, &sig, &st, &req, i * 2654435761u, &v);
            accepted += v.accept;
        }
        per[b] = (clock_mono_ns() - t0) / 1000;
    }
    qsort(per, batches, sizeof(*per), cmp_u64);
    printf("part 1: admission_decide, %u batches of 1000 calls (%" PRIu64 " accepted)\n", batches,
           accepted);
    printf("  per decision: p50 %" PRIu64 " ns, p99 %" PRIu64 " ns\n", per[batches / 2],
           per[batches * 99 / 100]);
    fprintf(csv, "decision_ns_p50,%" PRIu64 "\ndecision_ns_p99,%" PRIu64 "\n", per[batches / 2],
            per[batches * 99 / 100]);
    free(per);
}

/* The memory hog: joins the cgroup, then fills bytes of anonymous memory and waits. */
static pid_t start_hog(const char *cgroup, uint64_t bytes, int ready_fd)
{
    pid_t pid = fork();

    if (pid == 0) {
        char *procs = xasprintf("%s/cgroup.procs", cgroup);
        FILE *f = fopen(procs, "w");
        uint64_t t0;
        char *mem;

        if (f == NULL || fprintf(f, "%d\n", (int)getpid()) < 0 || fclose(f) != 0)
            _exit(2);
        t0 = clock_mono_ns();
        if (write(ready_fd, &t0, sizeof(t0)) != sizeof(t0))
            _exit(3);
        mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (mem == MAP_FAILED)
            _exit(4);
        memset(mem, 0x5a, bytes);
        pause();
        _exit(0);
    }
    return pid;
}

static int probe(const char *addr, const char *storage, int n, enum wire_reason *ret_reason)
{
    char id[16], *uri = xasprintf("file://%s/probe.seg", storage);
    struct wire_assign_request m;
    struct wire_assign_response resp;
    int status;

    snprintf(id, sizeof(id), "p%06d", n);
    m = harness_assign_request(id, uri, 256, 16);
    free(uri);
    memset(&resp, 0, sizeof(resp));
    status = harness_assign(addr, &m, &resp, NULL);
    *ret_reason = resp.reason;
    /* Keep the node's committed bytes flat: unload what was accepted. */
    if (status == 202) {
        char path[64];
        snprintf(path, sizeof(path), "/v1/segments/p%06d", n);
        for (int i = 0; i < 50; i++) {
            int s = harness_send(addr, "DELETE", path, NULL);
            if (s == 200 || s == 404)
                break;
            usleep(2000);
        }
    }
    return status;
}

static void part_reaction(const char *dir, unsigned trials)
{
    const uint64_t limit = 256ull << 20;
    char *storage = xasprintf("%s/storage", dir), *data = xasprintf("%s/data", dir);
    char *path = xasprintf("%s/probe.seg", storage), detail[256], why[256];
    struct mkseg_spec spec = {.rows = 256, .row_bytes = 16, .seed = 1};
    const char *args[] = {"--admit-hold-down=1s", "--admit-slow-start=0", NULL};
    uint64_t *ms = xcalloc(trials, sizeof(*ms));
    unsigned done = 0;
    char *cgroup;
    struct harness_proc *node;
    int n = 0;

    mkdir(storage, 0755);
    if (mkseg_write(path, &spec, detail, sizeof(detail)) < 0) {
        fprintf(stderr, "bench: %s\n", detail);
        exit(1);
    }
    cgroup = harness_cgroup_new("sluice-bench", limit, why, sizeof(why));
    if (cgroup == NULL) {
        printf("part 2: SKIPPED: %s\n", why);
        return;
    }
    node = harness_node_start_cg(storage, data, cgroup, args);
    if (node == NULL)
        exit(1);
    for (unsigned t = 0; t < trials; t++) {
        enum wire_reason reason = WIRE_REASON_NONE;
        int fds[2], status = 0;
        uint64_t t0 = 0, first = 0;
        pid_t hog;

        /* Calm first: the node accepts. */
        for (int i = 0; i < 500 && probe(harness_proc_addr(node), storage, n++, &reason) != 202;
             i++)
            usleep(10000);
        if (pipe(fds) < 0)
            exit(1);
        hog = start_hog(cgroup, limit * 85 / 100, fds[1]);
        if (read(fds[0], &t0, sizeof(t0)) != sizeof(t0))
            exit(1);
        close(fds[0]);
        close(fds[1]);
        for (int i = 0; i < 500; i++) {
            status = probe(harness_proc_addr(node), storage, n++, &reason);
            if (status == 429 && reason >= WIRE_REASON_MEM_CRITICAL &&
                reason <= WIRE_REASON_MEM_CAPACITY) {
                first = clock_mono_ns();
                break;
            }
            usleep(10000);
        }
        kill(hog, SIGKILL);
        waitpid(hog, NULL, 0);
        if (first == 0) {
            printf("  trial %u: no MEM_* refusal within 5 s (last HTTP %d)\n", t, status);
            continue;
        }
        ms[done++] = (first - t0) / 1000000;
        printf("  trial %u: first 429 %s after %" PRIu64 " ms\n", t, reason_name(reason),
               (first - t0) / 1000000);
        usleep(1500000); /* hold-down, then the node reopens */
    }
    if (done > 0) {
        qsort(ms, done, sizeof(*ms), cmp_u64);
        printf("part 2: reaction to real memory pressure in a %" PRIu64
               " MiB cgroup: median %" PRIu64 " ms over %u trials (max %" PRIu64 " ms)\n",
               limit >> 20, ms[done / 2], done, ms[done - 1]);
        fprintf(csv, "reaction_ms_median,%" PRIu64 "\nreaction_ms_max,%" PRIu64 "\n", ms[done / 2],
                ms[done - 1]);
    }
    harness_proc_free(node);
    harness_cgroup_remove(cgroup);
    free(cgroup);
    free(ms);
    free(path);
    free(storage);
    free(data);
}

int main(void)
{
    const char *smoke = getenv("SLUICE_BENCH_SMOKE");
    bool is_smoke = smoke != NULL && smoke[0] == '1';
    char *dir = harness_dir_new("sluice-bench-adm");

    csv = fopen("bench_admission.csv", "w");
    if (csv == NULL)
        csv = fopen("/dev/null", "w");
    fprintf(csv, "metric,value\n");
    part_decision(is_smoke ? 200 : 5000);
    part_reaction(dir, is_smoke ? 1 : 5);
    fclose(csv);
    harness_dir_remove(dir);
    free(dir);
    return 0;
}
