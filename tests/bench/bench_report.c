/*
 * bench_report: the coordinator's CPU per NodeReport of a node holding 1,000
 * segments, full against delta (issue 17, item 1).
 *
 * A real coordinator with 1,000 segments registered, and a node that is not
 * there (pull mode, so nothing is pushed to it) holding all of them LOADED,
 * its reports built by the node's own report_state (node/report.c) and sent
 * one at a time, as a node does. The coordinator's CPU (utime + stime from
 * /proc/<pid>/stat) over a run of reports, divided by their number:
 *   legacy     full reports of an older node (no incarnation): today's cost
 *   full       full reports with the digest (every answer asks for the next
 *              whole: the cost of a report after a mismatch or a restart)
 *   delta-0    deltas with nothing changed: a steady node
 *   delta-10   deltas with 10 copies changed (1 %)
 * Figures are medians over the rounds (3; 1 and fewer reports with
 * SLUICE_BENCH_SMOKE=1), printed and written to bench_report.csv. Nothing is
 * asserted.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "baseline.h"
#include "clock.h"
#include "harness.h"
#include "report.h"
#include "wire.h"
#include "xmalloc.h"

#define SEGS 1000

enum kind { LEGACY, FULL, DELTA0, DELTA10, KINDS };
static const char *const kind_names[KINDS] = {"legacy", "full", "delta-0", "delta-10"};

/* utime + stime of pid, in seconds. */
static double cpu_seconds(int pid)
{
    char path[64], buf[1024], *p;
    unsigned long long ut = 0, st = 0;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    f = fopen(path, "re");
    if (f == NULL)
        return 0;
    if (fgets(buf, sizeof(buf), f) == NULL)
        buf[0] = '\0';
    fclose(f);
    p = strrchr(buf, ')'); /* the command may hold spaces */
    if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut,
                            &st) != 2)
        return 0;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Sends reports of kind k; returns the coordinator's CPU seconds per report. */
static double run(const char *addr, int pid, struct wire_segment_status *v, enum kind k, int n)
{
    struct report_state *rs = report_state_new(0);
    struct wire_report_response resp;
    struct wire_node_report rep;
    struct harness_reply reply;
    double c0 = 0;

    /* The first report of a process is whole: send it before the clock starts. */
    for (int i = -1; i < n; i++) {
        uint64_t seq;

        if (i == 0)
            c0 = cpu_seconds(pid);
        if (k == DELTA10)
            for (int j = 0; j < 10; j++)
                v[(i * 10 + j + SEGS) % SEGS].footprint_bytes += 4096;
        memset(&rep, 0, sizeof(rep));
        snprintf(rep.node_id, sizeof(rep.node_id), "bench-node");
        snprintf(rep.addr, sizeof(rep.addr), "127.0.0.1:1");
        rep.state = WIRE_NODE_SERVING;
        rep.claim = true;
        rep.pressure.usage_bytes = 1;
        seq = report_build(rs, v, SEGS, &rep);
        if (k == LEGACY) {
            rep.incarnation = rep.seq = rep.set_count = rep.set_hash = 0;
            rep.delta = false;
        }
        memset(&resp, 0, sizeof(resp));
        if (harness_report(addr, &rep, &resp, &reply) != 200) {
            fprintf(stderr, "bench_report: report answered %d\n", reply.status);
            exit(1);
        }
        if (k == FULL)
            resp.send_full = true; /* every report whole */
        report_answered(rs, seq, &resp);
        wire_report_response_done(&resp);
    }
    report_state_free(rs);
    return (cpu_seconds(pid) - c0) / n;
}

int main(void)
{
    const char *smoke = getenv("SLUICE_BENCH_SMOKE");
    bool short_run = smoke != NULL && smoke[0] != '\0' && strcmp(smoke, "0") != 0;
    int rounds = short_run ? 1 : 3, n = short_run ? 30 : 400;
    char *dir = harness_dir_new("sluice-bench-report");
    struct harness_proc *coord = harness_coord_start(dir, NULL);
    static char uri[] = "file:///srv/segments/bench.seg";
    char *uris[1] = {uri};
    struct wire_segment_status *v = xcalloc(SEGS, sizeof(*v));
    double per[KINDS][3];
    FILE *csv;

    if (coord == NULL) {
        fprintf(stderr, "bench_report: the coordinator did not start\n");
        return 1;
    }
    if (harness_register_ids(harness_proc_addr(coord), "seg-", 5, 0, SEGS, uris, 1, 100, 16) !=
        200) {
        fprintf(stderr, "bench_report: registration failed\n");
        return 1;
    }
    for (int i = 0; i < SEGS; i++) {
        snprintf(v[i].segment_id, sizeof(v[i].segment_id), "seg-%05d", i);
        v[i].state = WIRE_SEG_LOADED;
        v[i].row_count = 100;
        v[i].avg_row_size = 16;
        v[i].file_bytes = 1 << 20;
        v[i].footprint_bytes = 1 << 20;
    }
    csv = fopen("bench_report.csv", "w");
    if (csv == NULL)
        csv = fopen("/dev/null", "w");
    fprintf(csv, "round,kind,segments,reports,cpu_us_per_report\n");
    for (int r = 0; r < rounds; r++) {
        for (int k = 0; k < KINDS; k++) {
            per[k][r] = run(harness_proc_addr(coord), harness_proc_pid(coord), v, (enum kind)k, n);
            fprintf(csv, "%d,%s,%d,%d,%.1f\n", r + 1, kind_names[k], SEGS, n, per[k][r] * 1e6);
        }
    }
    printf("coordinator CPU per report, %d segments on the node, %d reports x %d rounds "
           "(median):\n", SEGS, n, rounds);
    for (int k = 0; k < KINDS; k++) {
        double m = bench_median(per[k], (size_t)rounds);

        printf("  %-9s %8.1f us/report  %6.3f us/segment\n", kind_names[k], m * 1e6,
               m * 1e6 / SEGS);
    }
    fclose(csv);
    free(v);
    harness_proc_free(coord);
    harness_dir_remove(dir);
    free(dir);
    return 0;
}
