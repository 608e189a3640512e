/*
 * bench_scale: one real coordinator against `sluice-node farm` (issue 17):
 * 1,000 virtual nodes and 10^6 segments (SLUICE_BENCH_SMOKE=1: 100 nodes
 * and 10^5, the CI size of issue 17; SLUICE_SCALE_NODES and
 * SLUICE_SCALE_SEGMENTS override both).
 *
 * In one run, in this order:
 *   1. registration: every segment in batches of 5,000, one request at a
 *      time, as fast as the coordinator answers, before any node joins;
 *   2. the farm starts and joins (every virtual node UP);
 *   3. placement: from the farm's start to every segment LOADED
 *      (GET /v1/status), segments/s end to end;
 *   4. coordinator peak RSS (VmHWM) by then, LOAD_CONCURRENCY (and all)
 *      refusals per placed segment, and the CPU the coordinator and the
 *      farm each spent per placed segment (they share the machine's cores);
 *   5. steady state: coordinator CPU per second over a quiet window with
 *      every virtual node reporting every second;
 *   6. catalog size (the SQLite file and its WAL);
 *   7. a virtual node killed (POST /v1/farm/kill): time until every segment
 *      is LOADED again, against --node-timeout + 2 s;
 *   8. the coordinator killed (SIGKILL) and restarted on the same port:
 *      time to /healthz, and to every segment LOADED again.
 *
 * A sampler thread polls the coordinator's /v1/status and /proc every
 * 250 ms into bench_scale_progress.csv; the figures go to stdout and
 * bench_scale.csv; with gnuplot present, bench_scale.png plots the
 * progress. Figures only: nothing is asserted (a target missed is printed
 * as such).
 */
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "harness.h"
#include "reason.h"
#include "scalekit.h"
#include "wire.h"
#include "xmalloc.h"

#define NODE_TIMEOUT_S 5

static struct harness_proc *coord, *farm;
static char coord_addr[64];
static uint64_t t_start_ns;
static FILE *progress;
static atomic_bool sampler_stop;
static atomic_int phase; /* index into phase_names */
/* The sampler's last answer: a saturated coordinator may leave the main thread's own unanswered. */
static pthread_mutex_t last_lock = PTHREAD_MUTEX_INITIALIZER;
static struct wire_cluster_status last_st;
static const char *const phase_names[] = {"join",      "register", "place", "steady",
                                          "kill-node", "restart",  "done"};

static double since_start_s(void)
{
    return (double)(clock_mono_ns() - t_start_ns) / 1e9;
}

static bool status(struct wire_cluster_status *st)
{
    return harness_cluster_status(coord_addr, st) == 200;
}

/*
 * A phase that did not complete explains itself: what the sampler saw
 * last, the coordinator's CPU so far, and the tails of the coordinator's
 * and the farm's logs, printed at once (the run goes on to its figures).
 */
static void phase_incomplete(const char *what)
{
    struct wire_cluster_status st;
    int pid = coord != NULL ? harness_proc_pid(coord) : -1;

    pthread_mutex_lock(&last_lock);
    st = last_st;
    pthread_mutex_unlock(&last_lock);
    fprintf(stderr,
            "bench_scale: phase %s did not complete at %.1f s: %s; the sampler's last status: "
            "%" PRIu64 " registered, %" PRIu64 " LOADED, %" PRIu64 " PENDING, %" PRIu64
            " in flight, %u nodes UP; coordinator CPU %.2f s so far\n",
            phase_names[atomic_load(&phase)], since_start_s(), what, st.segments_total,
            st.segments_loaded, st.segments_pending, st.assignments_in_flight, st.nodes_up,
            scalekit_proc_cpu_s(pid));
    if (coord != NULL)
        harness_proc_dump_log(coord);
    if (farm != NULL)
        harness_proc_dump_log(farm);
}

static void *sampler_main(void *arg)
{
    (void)arg;
    while (!atomic_load(&sampler_stop)) {
        struct wire_cluster_status st;
        uint64_t hwm, rss;
        int pid = coord != NULL ? harness_proc_pid(coord) : -1;
        double t = since_start_s();
        bool ok = status(&st);

        scalekit_proc_mem(pid, &hwm, &rss);
        if (ok) {
            pthread_mutex_lock(&last_lock);
            last_st = st;
            pthread_mutex_unlock(&last_lock);
            uint64_t refused = 0;

            for (int r = 0; r < WIRE_REASON_COUNT_; r++)
                refused += st.refusals[r];
            fprintf(progress,
                    "%.2f,%s,%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%u,%" PRIu64
                    ",%" PRIu64 ",%.1f,%.2f\n",
                    t, phase_names[atomic_load(&phase)], st.segments_total, st.segments_loaded,
                    st.segments_pending, st.assignments_in_flight, st.nodes_up,
                    st.refusals[WIRE_REASON_LOAD_CONCURRENCY], refused, (double)rss / 1048576.0,
                    scalekit_proc_cpu_s(pid));
            fflush(progress);
        }
        usleep(250000);
    }
    return NULL;
}

static void plot(void)
{
    FILE *g;

    if (access("/usr/bin/gnuplot", X_OK) != 0) {
        fprintf(stderr, "bench_scale: gnuplot missing; no PNG\n");
        return;
    }
    g = popen("/usr/bin/gnuplot", "w");
    if (g == NULL)
        return;
    fprintf(g, "set terminal pngcairo size 900,480 font \",10\"\n"
               "set output 'bench_scale.png'\n"
               "set datafile separator ','\n"
               "set key left top\n"
               "set xlabel 'seconds since the coordinator started (registration, then the farm)'\n"
               "set ylabel 'segments'\n"
               "set y2label 'coordinator RSS (MiB)'\n"
               "set y2tics\n"
               "set ytics nomirror\n"
               "set format y '%%.0s%%c'\n"
               "set grid\n"
               "plot 'bench_scale_progress.csv' every ::1 using 1:3 with lines lw 2 "
               "title 'registered', "
               "'' every ::1 using 1:4 with lines lw 2 title 'LOADED', "
               "'' every ::1 using 1:8 with lines title 'LOAD\\_CONCURRENCY refusals', "
               "'' every ::1 using 1:10 axes x1y2 with lines dt 2 title 'coordinator RSS'\n");
    if (pclose(g) != 0)
        fprintf(stderr, "bench_scale: gnuplot failed\n");
}

int main(void)
{
    bool smoke = getenv("SLUICE_BENCH_SMOKE") != NULL && getenv("SLUICE_BENCH_SMOKE")[0] == '1';
    uint64_t nodes = scalekit_env_u64("SLUICE_SCALE_NODES", smoke ? 100 : 1000);
    /* The smoke (tests/run.sh): 100 nodes place 10^5 in about 30 s. */
    uint64_t segs = scalekit_env_u64("SLUICE_SCALE_SEGMENTS", smoke ? 100000 : 1000000);
    char *dir = harness_dir_new("sluice-bench-scale"), *farm_dir = xasprintf("%s/farm", dir);
    char listen[64], conns[64], nodes_arg[32], *db = xasprintf("%s/coord.db", dir);
    char *wal = xasprintf("%s/coord.db-wal", dir);
    const char *coord_args[] = {listen, conns, "--node-timeout=5s", "--log-level=warn", NULL};
    const char *farm_args[] = {"--listen=127.0.0.1:0", "--log-level=warn", NULL};
    struct wire_cluster_status st;
    struct harness_vnode *v = NULL;
    size_t nv = 0;
    pthread_t sampler;
    double t_join, t_reg, t_loaded, t_farm0 = 0, t_kill = -1, t_health = -1, t_reload = -1;
    double cpu0, cpu1, steady_window = smoke ? 5 : 10, steady_cores, rc_per, lc_per;
    double coord_cpu0 = 0, farm_cpu0 = 0, coord_us = 0, farm_us = 0, reports0, reports = -1;
    uint64_t hwm, rss, refused = 0, db_bytes = 0, victim_segs = 0, placed = 0;
    bool settled;
    struct stat sb;
    FILE *csv;
    int rc = 1;

    snprintf(listen, sizeof(listen), "--listen=127.0.0.1:%u", scalekit_free_port());
    snprintf(conns, sizeof(conns), "--max-connections=%" PRIu64, nodes * 3 + 256);
    snprintf(nodes_arg, sizeof(nodes_arg), "%" PRIu64, nodes);
    harness_client_set(NULL, 120000);
    progress = fopen("bench_scale_progress.csv", "w");
    csv = fopen("bench_scale.csv", "w");
    if (progress == NULL || csv == NULL) {
        perror("bench_scale: csv");
        return 1;
    }
    fprintf(progress, "t_s,phase,registered,loaded,pending,in_flight,nodes_up,"
                      "refusals_load_concurrency,refusals,coord_rss_mib,coord_cpu_s\n");
    printf("bench_scale: %" PRIu64 " virtual nodes, %" PRIu64 " segments%s\n", nodes, segs,
           smoke ? " (smoke)" : "");

    /*
     * 1. The coordinator, and every segment registered before any node
     * joins: registering while 1,000 nodes report and place competes for
     * the same loop (a 10^6 run so placed had its registration reset at
     * 500,000 by a saturated coordinator), and the figures would mix.
     */
    coord = harness_coord_start(dir, coord_args);
    if (coord == NULL)
        goto out;
    snprintf(coord_addr, sizeof(coord_addr), "%s", harness_proc_addr(coord));
    t_start_ns = clock_mono_ns();
    atomic_store(&phase, 1);
    pthread_create(&sampler, NULL, sampler_main, NULL);
    t_reg = scalekit_now_s();
    if (scalekit_register(coord_addr, segs, "bench_scale") < 0)
        goto out_sampler;
    t_reg = scalekit_now_s() - t_reg;

    /* 2. The farm joins; placement is timed from its start to every segment LOADED. */
    t_farm0 = scalekit_now_s();
    atomic_store(&phase, 0);
    coord_cpu0 = scalekit_proc_cpu_s(harness_proc_pid(coord));
    reports0 = harness_metric(coord_addr, "sluice_coord_reports_total");
    farm = harness_farm_start(farm_dir, coord_addr, (unsigned)nodes, farm_args);
    if (farm == NULL)
        goto out_sampler;
    farm_cpu0 = scalekit_proc_cpu_s(harness_proc_pid(farm));
    t_join = scalekit_now_s();
    while (!(status(&st) && st.nodes_up == nodes)) {
        if (scalekit_now_s() - t_join > 120) {
            fprintf(stderr, "bench_scale: only %u of %" PRIu64 " nodes UP after 120 s\n",
                    st.nodes_up, nodes);
            goto out_sampler;
        }
        usleep(100000);
    }
    t_join = scalekit_now_s() - t_join;
    atomic_store(&phase, 2);
    settled = scalekit_wait_loaded(coord_addr, segs, smoke ? 600 : 1500) >= 0;
    t_loaded = scalekit_now_s() - t_farm0;
    coord_us = scalekit_proc_cpu_s(harness_proc_pid(coord)) - coord_cpu0;
    farm_us = scalekit_proc_cpu_s(harness_proc_pid(farm)) - farm_cpu0;
    if (reports0 >= 0)
        reports = harness_metric(coord_addr, "sluice_coord_reports_total") - reports0;
    scalekit_proc_mem(harness_proc_pid(coord), &hwm, &rss);
    if (!status(&st)) {
        pthread_mutex_lock(&last_lock);
        st = last_st;
        pthread_mutex_unlock(&last_lock);
    }
    placed = st.segments_loaded;
    if (!settled) {
        fprintf(stderr,
                "bench_scale: only %" PRIu64 " of %" PRIu64 " segments LOADED after %.0f s "
                "(no progress for 60 s, or the time ran out); the figures below are partial\n",
                placed, segs, t_loaded);
        phase_incomplete("not every segment LOADED");
    }
    for (int r = 0; r < WIRE_REASON_COUNT_; r++)
        refused += st.refusals[r];
    lc_per = (double)st.refusals[WIRE_REASON_LOAD_CONCURRENCY] / (double)(placed > 0 ? placed : 1);
    coord_us = coord_us * 1e6 / (double)(placed > 0 ? placed : 1);
    farm_us = farm_us * 1e6 / (double)(placed > 0 ? placed : 1);
    rc_per = (double)refused / (double)(placed > 0 ? placed : 1);

    /* 5. Steady state: everything LOADED, every node reporting each second. */
    atomic_store(&phase, 3);
    sleep(3);
    cpu0 = scalekit_proc_cpu_s(harness_proc_pid(coord));
    usleep((useconds_t)(steady_window * 1e6));
    cpu1 = scalekit_proc_cpu_s(harness_proc_pid(coord));
    steady_cores = (cpu1 - cpu0) / steady_window;

    /* 6. Catalog size. */
    if (stat(db, &sb) == 0)
        db_bytes += (uint64_t)sb.st_size;
    if (stat(wal, &sb) == 0)
        db_bytes += (uint64_t)sb.st_size;

    /* 7. A virtual node dies. */
    atomic_store(&phase, 4);
    if (settled && harness_farm_list(harness_proc_addr(farm), &v, &nv) == 200 && nv > 1) {
        double t0 = scalekit_now_s();

        victim_segs = v[1].loaded;
        if (harness_farm_kill(harness_proc_addr(farm), v[1].id) == 200) {
            /* LOADED drops once the coordinator has marked it DOWN; then back to all. */
            while (scalekit_now_s() - t0 < NODE_TIMEOUT_S + 60 && status(&st) &&
                   st.segments_loaded == segs)
                usleep(20000);
            if (scalekit_wait_loaded(coord_addr, segs, 120) >= 0)
                t_kill = scalekit_now_s() - t0;
            else
                phase_incomplete("the killed node's segments not all LOADED again");
        }
    }
    free(v);

    /* 8. The coordinator is killed and restarted on the same port. */
    atomic_store(&phase, 5);
    {
        double t0;

        harness_proc_kill(coord);
        t0 = scalekit_now_s();
        if (harness_proc_restart(coord) == 0) {
            t_health = scalekit_now_s() - t0;
            if (settled && scalekit_wait_loaded(coord_addr, segs, 300) >= 0)
                t_reload = scalekit_now_s() - t0;
            else if (settled)
                phase_incomplete("not every segment LOADED again after the restart");
        } else {
            phase_incomplete("the restarted coordinator did not answer /healthz");
        }
    }
    atomic_store(&phase, 6);

    printf("\n| figure | value | target |\n|---|---|---|\n");
    printf("| virtual nodes UP after the farm started | %.1f s | |\n", t_join);
    printf("| registration (batches of %d) | %.1f s, %.0f segments/s | |\n", SCALEKIT_BATCH, t_reg,
           (double)segs / t_reg);
    printf("| placement, the farm's start to %s LOADED | %.1f s, %.0f segments/s "
           "| >= 50,000/s %s |\n",
           settled ? "every segment" : "the end (partial)", t_loaded, (double)placed / t_loaded,
           settled && (double)segs / t_loaded >= 50000 ? "met" : "MISSED");
    if (!settled)
        printf("| segments LOADED when placement stopped | %" PRIu64 " of %" PRIu64 " | |\n",
               placed, segs);
    printf("| coordinator peak RSS (VmHWM) | %.0f MiB | <= 200 MB %s |\n", (double)hwm / 1048576.0,
           hwm <= 200000000 ? "met" : "MISSED");
    printf("| LOAD_CONCURRENCY refusals per placed segment | %.3f | <= 0.2 %s |\n", lc_per,
           lc_per <= 0.2 ? "met" : "MISSED");
    printf("| all refusals per placed segment | %.3f | |\n", rc_per);
    printf("| CPU per placed segment, farm start to all LOADED: coordinator, farm | %.0f us, "
           "%.0f us | |\n",
           coord_us, farm_us);
    /* A report is one HTTP exchange; each round of a node's loads is a report and a batch. */
    printf("| node reports per placed segment, farm start to all LOADED | %.3f | |\n",
           reports >= 0 ? reports / (double)(placed > 0 ? placed : 1) : -1.0);
    printf("| coordinator CPU in steady state (%" PRIu64 " nodes reporting every 1 s, %" PRIu64
           " copies LOADED) | %.3f cores | <= 0.25 %s |\n",
           nodes, placed, steady_cores, steady_cores <= 0.25 ? "met" : "MISSED");
    printf("| catalog size (db + WAL) | %.1f MiB | |\n", (double)db_bytes / 1048576.0);
    printf("| killed virtual node (%" PRIu64 " segments): every segment LOADED again | %.1f s | "
           "<= --node-timeout + 2 s = %d s %s |\n",
           victim_segs, t_kill, NODE_TIMEOUT_S + 2,
           t_kill >= 0 && t_kill <= NODE_TIMEOUT_S + 2 ? "met" : "MISSED");
    printf("| coordinator kill -9 to /healthz | %.2f s | <= 10 s %s |\n", t_health,
           t_health >= 0 && t_health <= 10 ? "met" : "MISSED");
    printf("| coordinator kill -9 to every segment LOADED in its status | %.2f s | |\n", t_reload);
    fprintf(csv,
            "nodes,segments,join_s,register_s,register_per_s,place_s,place_per_s,"
            "peak_rss_bytes,load_concurrency_per_placed,refusals_per_placed,steady_cores,"
            "catalog_bytes,kill_node_s,kill_node_segments,restart_health_s,restart_loaded_s,"
            "coord_us_per_placed,farm_us_per_placed\n");
    fprintf(csv,
            "%" PRIu64 ",%" PRIu64 ",%.2f,%.2f,%.0f,%.2f,%.0f,%" PRIu64 ",%.4f,%.4f,%.4f,%" PRIu64
            ",%.2f,%" PRIu64 ",%.3f,%.3f,%.1f,%.1f\n",
            nodes, segs, t_join, t_reg, (double)segs / t_reg, t_loaded, (double)placed / t_loaded,
            hwm, lc_per, rc_per, steady_cores, db_bytes, t_kill, victim_segs, t_health, t_reload,
            coord_us, farm_us);
    rc = 0;
out_sampler:
    atomic_store(&sampler_stop, true);
    pthread_join(sampler, NULL);
out:
    scalekit_stop(coord, farm, rc != 0);
    fclose(progress);
    fclose(csv);
    if (rc == 0)
        plot();
    harness_dir_remove(dir);
    free(dir);
    free(farm_dir);
    free(db);
    free(wal);
    return rc;
}
