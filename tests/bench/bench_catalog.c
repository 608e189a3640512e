/*
 * bench_catalog: the two catalog backends side by side (issue 22). One
 * real coordinator on SQLite, then one on PostgreSQL (a private server
 * from tests/harness/pg.c, on this machine, fsync on), in one run, each
 * against a `sluice-node farm` of its own, the same size:
 *
 *   1. registration: 10^5 segments in batches of 5,000, one request at a
 *      time, before any node joins; three rounds, each on a fresh catalog
 *      (median);
 *   2. placement: the farm (1,000 virtual nodes) starts; from its start to
 *      every segment LOADED in GET /v1/status, segments/s;
 *   3. restart to serving: the coordinator killed (SIGKILL) and started
 *      again on the same port and catalog: time to /healthz (the model
 *      loaded from the catalog, the lead taken), and to every segment
 *      LOADED again in its status; three times (median).
 *
 * Ratios are PostgreSQL against the SQLite run of the same process. Sizes:
 * 10^5 segments; SLUICE_LONG=1 (without the smoke) or --long: 10^6, one
 * round of each (`meson test --benchmark catalog --test-args=--long`);
 * SLUICE_BENCH_SMOKE=1: 500 segments and 100 nodes, once (about 10 s);
 * SLUICE_CATALOG_SEGMENTS and SLUICE_CATALOG_NODES override. Figures go to
 * stdout (a Markdown table) and bench_catalog.csv; nothing is asserted.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"
#include "pg.h"
#include "scalekit.h"
#include "wire.h"
#include "xmalloc.h"

#define ROUNDS_MAX 3

enum { B_SQLITE, B_PG, B_COUNT };
static const char *const backend_names[B_COUNT] = {"SQLite", "PostgreSQL"};

struct figures {
    bool ok;                     /* the run got through placement */
    double reg_s[ROUNDS_MAX];    /* registration of every segment, per round */
    double place_s;              /* the farm's start to every segment LOADED (or to the stop) */
    uint64_t placed;             /* LOADED when placement ended */
    bool settled;                /* every segment LOADED */
    double health_s[ROUNDS_MAX]; /* kill -9 to /healthz, per restart */
    double reload_s[ROUNDS_MAX]; /* kill -9 to every segment LOADED, per restart (-1: not) */
    uint64_t catalog_bytes;      /* the catalog's size once placed */
};

struct plan {
    uint64_t segs, nodes;
    unsigned rounds; /* registration rounds and restarts */
    double place_timeout_s;
};

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

/* The median of n values (sorted in place); -1 if any is -1 (a round that did not finish). */
static double median(double *v, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        if (v[i] < 0)
            return -1;
    qsort(v, n, sizeof(*v), cmp_double);
    return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The catalog's bytes: the SQLite file and its WAL, or the PostgreSQL database's size. */
static uint64_t catalog_bytes(const char *dir, int backend)
{
    uint64_t bytes = 0;

    if (backend == B_PG) {
        char *uri = harness_coord_catalog(dir);
        long long v = harness_pg_int(uri, "SELECT pg_database_size(current_database())");

        free(uri);
        return v > 0 ? (uint64_t)v : 0;
    }
    for (int i = 0; i < 2; i++) {
        char *path = xasprintf("%s/coord.db%s", dir, i == 0 ? "" : "-wal");
        struct stat sb;

        if (stat(path, &sb) == 0)
            bytes += (uint64_t)sb.st_size;
        free(path);
    }
    return bytes;
}

/* One backend's run: fills f. The coordinator's catalog follows SLUICE_TEST_CATALOG (harness.h). */
static void run_backend(int backend, const struct plan *p, struct figures *f)
{
    char listen[64], conns[64], addr[64], *dir = NULL, *farm_dir = NULL;
    const char *coord_args[] = {listen, conns, "--node-timeout=5s", "--log-level=warn", NULL};
    const char *farm_args[] = {"--listen=127.0.0.1:0", "--log-level=warn", NULL};
    struct harness_proc *coord = NULL, *farm = NULL;
    struct wire_cluster_status st;
    double t0;

    memset(f, 0, sizeof(*f));
    snprintf(listen, sizeof(listen), "--listen=127.0.0.1:%u", scalekit_free_port());
    snprintf(addr, sizeof(addr), "127.0.0.1:%s", strrchr(listen, ':') + 1);
    snprintf(conns, sizeof(conns), "--max-connections=%" PRIu64, p->nodes * 3 + 256);

    /* 1. Registration, a fresh catalog each round; the last one stays for the rest. */
    for (unsigned r = 0; r < p->rounds; r++) {
        if (coord != NULL) {
            harness_proc_free(coord);
            harness_dir_remove(dir);
            free(dir);
        }
        dir = harness_dir_new("sluice-bench-catalog");
        coord = harness_coord_start(dir, coord_args);
        if (coord == NULL)
            goto out;
        t0 = scalekit_now_s();
        if (scalekit_register(addr, p->segs, "bench_catalog") < 0)
            goto out;
        f->reg_s[r] = scalekit_now_s() - t0;
        printf("bench_catalog: %s registration round %u: %.2f s\n", backend_names[backend], r + 1,
               f->reg_s[r]);
        fflush(stdout);
    }

    /* 2. Placement by the farm. */
    farm_dir = xasprintf("%s/farm", dir);
    t0 = scalekit_now_s();
    farm = harness_farm_start(farm_dir, addr, (unsigned)p->nodes, farm_args);
    if (farm == NULL)
        goto out;
    f->settled = scalekit_wait_loaded(addr, p->segs, p->place_timeout_s) >= 0;
    f->place_s = scalekit_now_s() - t0;
    f->placed = harness_cluster_status(addr, &st) == 200 ? st.segments_loaded : 0;
    f->catalog_bytes = catalog_bytes(dir, backend);
    f->ok = true;
    printf("bench_catalog: %s placement: %" PRIu64 " LOADED in %.2f s\n", backend_names[backend],
           f->placed, f->place_s);
    fflush(stdout);

    /* 3. Restarts: kill -9, the same port and catalog. */
    for (unsigned r = 0; r < p->rounds; r++) {
        harness_proc_kill(coord);
        t0 = scalekit_now_s();
        f->health_s[r] = f->reload_s[r] = -1;
        if (harness_proc_restart(coord) < 0)
            break;
        f->health_s[r] = scalekit_now_s() - t0;
        if (f->settled && scalekit_wait_loaded(addr, p->segs, 300) >= 0)
            f->reload_s[r] = scalekit_now_s() - t0;
        printf("bench_catalog: %s restart %u: /healthz %.2f s, every segment LOADED %.2f s\n",
               backend_names[backend], r + 1, f->health_s[r], f->reload_s[r]);
        fflush(stdout);
    }
out:
    if (!f->ok)
        fprintf(stderr, "bench_catalog: the %s run stopped early\n", backend_names[backend]);
    scalekit_stop(coord, farm, !f->ok);
    harness_dir_remove(dir);
    free(dir);
    free(farm_dir);
}

/* "v unit (r x)": a figure with prec decimals, and its ratio to the SQLite one when both are known.
 */
static void cell(char *buf, size_t len, int prec, const char *unit, double v, double base,
                 bool with_ratio)
{
    int n = snprintf(buf, len, "%.*f%s", prec, v, unit);

    if (v < 0)
        snprintf(buf, len, "not reached");
    else if (with_ratio && base > 0 && n > 0 && (size_t)n < len)
        snprintf(buf + n, len - (size_t)n, " (%.2fx)", v / base);
}

int main(int argc, char **argv)
{
    const char *e = getenv("SLUICE_BENCH_SMOKE"), *l = getenv("SLUICE_LONG");
    bool smoke = e != NULL && e[0] == '1', lng = l != NULL && l[0] == '1';
    struct figures f[B_COUNT];
    double reg[B_COUNT], place[B_COUNT], health[B_COUNT], reload[B_COUNT];
    struct harness_pg *pg;
    struct plan p;
    char why[512] = "", a[64], b[64];
    FILE *csv;
    int rc = 0;

    /* tests/run.sh --long runs the smokes with SLUICE_LONG=1: the smoke wins, unless --long. */
    lng = lng && !smoke;
    for (int i = 1; i < argc; i++)
        lng = lng || strcmp(argv[i], "--long") == 0;
    smoke = smoke && !lng;
    p.segs = scalekit_env_u64("SLUICE_CATALOG_SEGMENTS", smoke ? 500 : lng ? 1000000 : 100000);
    p.nodes = scalekit_env_u64("SLUICE_CATALOG_NODES", smoke ? 100 : 1000);
    p.rounds = smoke || lng ? 1 : 3;
    p.place_timeout_s = lng ? 900 : 600;
    harness_client_set(NULL, 120000);
    printf("bench_catalog: %" PRIu64 " segments, %" PRIu64 " virtual nodes, %u round%s%s\n", p.segs,
           p.nodes, p.rounds, p.rounds == 1 ? "" : "s", smoke ? " (smoke)" : "");
    if ((pg = harness_pg_shared(why, sizeof(why))) == NULL) {
        fprintf(stderr, "bench_catalog: no PostgreSQL: %s\n", why);
        return 1;
    }

    unsetenv("SLUICE_TEST_CATALOG");
    run_backend(B_SQLITE, &p, &f[B_SQLITE]);
    setenv("SLUICE_TEST_CATALOG", "postgresql", 1);
    run_backend(B_PG, &p, &f[B_PG]);

    for (int k = 0; k < B_COUNT; k++) {
        reg[k] = f[k].ok ? median(f[k].reg_s, p.rounds) : -1;
        place[k] = f[k].ok ? f[k].place_s : -1;
        health[k] = f[k].ok ? median(f[k].health_s, p.rounds) : -1;
        reload[k] = f[k].ok && f[k].settled ? median(f[k].reload_s, p.rounds) : -1;
        if (!f[k].ok)
            rc = 1;
    }
    printf("\n| figure (%" PRIu64 " segments, %" PRIu64 " virtual nodes%s) | SQLite | "
           "PostgreSQL (ratio to SQLite) |\n|---|---|---|\n",
           p.segs, p.nodes, p.rounds > 1 ? "; medians of 3" : "");
    cell(a, sizeof(a), 0, "/s", reg[0] > 0 ? (double)p.segs / reg[0] : -1, 0, false);
    cell(b, sizeof(b), 0, "/s", reg[1] > 0 ? (double)p.segs / reg[1] : -1,
         reg[0] > 0 ? (double)p.segs / reg[0] : 0, true);
    printf("| registration, segments/s (batches of %d, no node yet) | %s | %s |\n", SCALEKIT_BATCH,
           a, b);
    cell(a, sizeof(a), 0, "/s", place[0] > 0 ? (double)f[0].placed / place[0] : -1, 0, false);
    cell(b, sizeof(b), 0, "/s", place[1] > 0 ? (double)f[1].placed / place[1] : -1,
         place[0] > 0 ? (double)f[0].placed / place[0] : 0, true);
    printf("| placement, segments LOADED/s (the farm's start to %s) | %s | %s |\n",
           f[0].settled && f[1].settled ? "every segment LOADED" : "the end: PARTIAL", a, b);
    cell(a, sizeof(a), 2, " s", health[0], 0, false);
    cell(b, sizeof(b), 2, " s", health[1], health[0], true);
    printf("| restart: kill -9 to /healthz (model loaded, lead taken) | %s | %s |\n", a, b);
    cell(a, sizeof(a), 2, " s", reload[0], 0, false);
    cell(b, sizeof(b), 2, " s", reload[1], reload[0], true);
    printf("| restart: kill -9 to every segment LOADED in its status | %s | %s |\n", a, b);
    cell(a, sizeof(a), 1, " MiB", (double)f[0].catalog_bytes / 1048576.0, 0, false);
    cell(b, sizeof(b), 1, " MiB", (double)f[1].catalog_bytes / 1048576.0,
         (double)f[0].catalog_bytes / 1048576.0, true);
    printf("| catalog size once placed (SQLite file + WAL; pg_database_size) | %s | %s |\n", a, b);

    csv = fopen("bench_catalog.csv", "w");
    if (csv != NULL) {
        fprintf(csv, "backend,segments,nodes,rounds,register_s,register_per_s,place_s,placed,"
                     "place_per_s,restart_health_s,restart_loaded_s,catalog_bytes\n");
        for (int k = 0; k < B_COUNT; k++)
            fprintf(csv,
                    "%s,%" PRIu64 ",%" PRIu64 ",%u,%.3f,%.0f,%.3f,%" PRIu64
                    ",%.0f,%.3f,%.3f,%" PRIu64 "\n",
                    backend_names[k], p.segs, p.nodes, p.rounds, reg[k],
                    reg[k] > 0 ? (double)p.segs / reg[k] : -1, place[k], f[k].placed,
                    place[k] > 0 ? (double)f[k].placed / place[k] : -1, health[k], reload[k],
                    f[k].catalog_bytes);
        fclose(csv);
    }
    harness_pg_stop(pg);
    return rc;
}
