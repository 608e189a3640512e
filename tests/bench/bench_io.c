/*
 * bench_io: the I/O modes against each other (issue 16), in one run.
 *
 * Part 1, in process, one thread, the node's own scan code:
 *  - cold: a buffer pool much smaller than the file scans sum(value) over a
 *    file none of whose blocks it holds; against a plain O_DIRECT sequential
 *    read (1 MiB reads, one at a time) of the same byte range of the same
 *    file. Target: ratio >= 0.8.
 *  - hot: the same scan with every block in the pool; against a plain read
 *    of as many bytes of ordinary memory. Target: ratio >= 0.8.
 *  Medians of the repetitions; both sides of a ratio run alternately, so a
 *  busy machine slows both.
 *
 * Part 2, a real node per mode (tests/harness), each in a fresh memory
 * cgroup of the same limit, on the same segments: the data is three times
 * the limit, a hot subset a quarter of it. Two closed-loop clients send for
 * a fixed time; 90 % of queries sum one hot segment, 10 % one random cold
 * one. Reported per mode: queries/s, p50/p99, the node's major faults, PSI
 * some/full (the cgroup's memory.pressure, else host-wide /proc/pressure),
 * and the node's memory figure (status wss_bytes: its estimate in mmap mode,
 * its exact count in direct mode) against the cgroup's usage, sampled every
 * 100 ms. Every node runs --admission=off so that all modes hold the same
 * data. Modes: mmap, mmap+mlock (when this sluice-node has --mlock-budget),
 * direct.
 *
 * Output: a table on stdout, bench_io.csv, per-query latencies in
 * bench_io_latency_<mode>.csv and, when gnuplot is present, bench_io.png
 * (latency CDF per mode). Nothing is asserted but the answers.
 * SLUICE_BENCH_SMOKE=1 shrinks everything.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bufpool.h"
#include "clock.h"
#include "baseline.h"
#include "harness.h"
#include "query.h"
#include "mkseg.h"
#include "segfmt.h"
#include "wire.h"
#include "xmalloc.h"
#include "zonemap.h"

struct config {
    uint64_t limit;      /* the cgroup's memory limit */
    uint64_t pool;       /* --cache-budget of direct mode */
    uint64_t mlock;      /* --mlock-budget of mmap+mlock */
    unsigned segs, hot;  /* segments, of which the first hot are hot */
    uint64_t seg_rows;   /* x 16 bytes per row */
    unsigned seconds;    /* workload per mode */
    unsigned reps;       /* part 1 repetitions */
};

static FILE *csv;
static char *dir, *storage;

static char *seg_path(unsigned i)
{
    return xasprintf("%s/s%02u.seg", storage, i);
}

/* ---- part 1 ---------------------------------------------------------- */

/*
 * Reads [off, off + len) of path with O_DIRECT, 1 MiB at a time, into a
 * destination of dst_bytes: 1 MiB reused (the plain read; its buffer stays
 * in the CPU cache), or a region as large as the pool, walked through as the
 * pool's frames are (the data then lands in memory, as it must for a
 * reader that keeps it). Returns seconds.
 */
static double odirect_read(const char *path, uint64_t off, uint64_t len, uint64_t dst_bytes,
                           uint64_t *ret_sum)
{
    const size_t chunk = 1 << 20;
    uint64_t start = off & ~(uint64_t)4095, end = off + len, sum = 0, t0, t1, slot = 0;
    char *buf = NULL;
    int fd = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);

    if (fd < 0 || posix_memalign((void **)&buf, 4096, (size_t)dst_bytes) != 0) {
        fprintf(stderr, "bench_io: O_DIRECT %s: %s\n", path, strerror(errno));
        exit(1);
    }
    memset(buf, 0, (size_t)dst_bytes);
    t0 = clock_mono_ns();
    for (uint64_t o = start; o < end; o += chunk) {
        char *dst = buf + slot * chunk;
        ssize_t n = pread(fd, dst, chunk, (off_t)o);
        if (n <= 0)
            break;
        sum += ((const uint64_t *)dst)[0]; /* the bytes reach the CPU, as the scan's do */
        slot = (slot + 1) % (dst_bytes / chunk);
    }
    t1 = clock_mono_ns();
    close(fd);
    free(buf);
    *ret_sum = sum;
    return (double)(t1 - t0) / 1e9;
}

/* Header, plan (sum of value) and zone maps of a segment file. */
struct opened {
    struct segment_header hdr;
    struct zonemap *zm;
    struct query_plan plan;
};

static void open_segment(const char *path, struct opened *o)
{
    struct stat sb;
    char detail[256] = "", err[128] = "";
    void *base;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0 || fstat(fd, &sb) < 0) {
        fprintf(stderr, "bench_io: %s: %s\n", path, strerror(errno));
        exit(1);
    }
    base = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (base == MAP_FAILED ||
        segment_parse_header(base, (size_t)sb.st_size, (uint64_t)sb.st_size, &o->hdr, detail,
                             sizeof(detail)) < 0 ||
        query_plan_make(&o->hdr, WIRE_AGG_SUM, "value", "", 0, 0, &o->plan, err, sizeof(err)) < 0) {
        fprintf(stderr, "bench_io: %s: cannot open: %s%s\n", path, detail, err);
        exit(1);
    }
    o->zm = zonemap_build(base, &o->hdr);
    munmap(base, (size_t)sb.st_size);
}

static struct bufpool *make_pool(uint64_t bytes)
{
    struct bufpool *p = NULL;
    char err[200];

    /* For experiments: SLUICE_BENCH_BLOCK and SLUICE_BENCH_READAHEAD override the node's. */
    const char *eb = getenv("SLUICE_BENCH_BLOCK"), *er = getenv("SLUICE_BENCH_READAHEAD");
    uint32_t block = eb != NULL ? (uint32_t)strtoul(eb, NULL, 10) : BUFPOOL_BLOCK_DEFAULT;
    unsigned ra = er != NULL ? (unsigned)strtoul(er, NULL, 10) : BUFPOOL_READAHEAD_DEFAULT;

    bytes &= ~(uint64_t)(block - 1);
    if (bufpool_new(bytes, block, ra, &p, err, sizeof(err)) < 0) {
        fprintf(stderr, "bench_io: pool: %s\n", err);
        exit(1);
    }
    return p;
}

/* One pooled scan of sum(value); returns seconds, checks the answer. */
static double pooled_scan(struct bufpool *p, struct bufpool_file *f, const struct opened *o,
                          int64_t want)
{
    struct query_source src = {.pool = p, .file = f};
    struct wire_query_response r;
    struct query_acc acc;
    uint64_t t0, t1;

    query_acc_init(&acc, false);
    t0 = clock_mono_ns();
    if (query_scan_source(&o->plan, &src, &o->hdr, o->zm, &acc) < 0) {
        fprintf(stderr, "bench_io: pooled scan failed\n");
        exit(1);
    }
    t1 = clock_mono_ns();
    query_acc_result(&acc, WIRE_AGG_SUM, &r);
    if (r.int_value != want) {
        fprintf(stderr, "bench_io: pooled scan answered %" PRId64 ", not %" PRId64 "\n",
                r.int_value, want);
        exit(1);
    }
    return (double)(t1 - t0) / 1e9;
}

static int64_t expected_sum(uint64_t seed, uint64_t rows)
{
    uint64_t s = 0;

    for (uint64_t i = 0; i < rows; i++)
        s += (uint64_t)segment_synth_value(seed, i);
    return (int64_t)s;
}

static double cold_ratio, hot_ratio, cold_gbps, odirect_gbps, hot_gbps, mem_gbps;
static double odirect_pool_gbps, cold_ratio_pooldst;

static void part_inprocess(const struct config *c)
{
    uint64_t cold_rows = c->seg_rows * 8, hot_rows = c->seg_rows;
    char *cold_path = xasprintf("%s/cold.seg", dir), *hot_path = xasprintf("%s/hot.seg", dir);
    struct mkseg_spec cold_spec = {.rows = cold_rows, .row_bytes = 16, .seed = 901};
    struct mkseg_spec hot_spec = {.rows = hot_rows, .row_bytes = 16, .seed = 902};
    double *rc = xcalloc(c->reps, sizeof(double)), *rh = xcalloc(c->reps, sizeof(double));
    double *gc = xcalloc(c->reps, sizeof(double)), *go = xcalloc(c->reps, sizeof(double));
    double *gh = xcalloc(c->reps, sizeof(double)), *gm = xcalloc(c->reps, sizeof(double));
    double *gw = xcalloc(c->reps, sizeof(double)), *rw = xcalloc(c->reps, sizeof(double));
    uint64_t cold_pool_bytes;
    struct opened cold, hot;
    struct bufpool *cold_pool, *hot_pool;
    struct bufpool_file *cf, *hf;
    struct bufpool_stats s0, s1;
    char detail[256];
    int64_t cold_want, hot_want;
    uint64_t *mem, col_bytes, sink = 0;

    if (mkseg_write(cold_path, &cold_spec, detail, sizeof(detail)) < 0 ||
        mkseg_write(hot_path, &hot_spec, detail, sizeof(detail)) < 0) {
        fprintf(stderr, "bench_io: %s\n", detail);
        exit(1);
    }
    open_segment(cold_path, &cold);
    open_segment(hot_path, &hot);
    cold_want = expected_sum(901, cold_rows);
    hot_want = expected_sum(902, hot_rows);
    /* Cold: a pool a quarter of the column, so no block survives from one pass to the next. */
    col_bytes = cold.hdr.columns[cold.plan.column].length;
    cold_pool_bytes = col_bytes / 4 > (64ull << 20) ? col_bytes / 4 : (64ull << 20);
    cold_pool_bytes &= ~(uint64_t)((1 << 20) - 1);
    cold_pool = make_pool(cold_pool_bytes);
    if (bufpool_file_open(cold_pool, cold_path, &cf) < 0 ||
        (hot_pool = make_pool(hot.hdr.columns[hot.plan.column].length * 3 / 2 > (96ull << 20)
                                  ? hot.hdr.columns[hot.plan.column].length * 3 / 2
                                  : (96ull << 20)),
         bufpool_file_open(hot_pool, hot_path, &hf) < 0)) {
        fprintf(stderr, "bench_io: %s: no O_DIRECT here\n", dir);
        exit(1);
    }
    mem = xmalloc(hot.hdr.columns[hot.plan.column].length);
    memset(mem, 1, hot.hdr.columns[hot.plan.column].length);
    (void)pooled_scan(hot_pool, hf, &hot, hot_want); /* warms the hot pool */
    bufpool_stats(cold_pool, &s0);
    for (unsigned r = 0; r < c->reps; r++) {
        const struct segment_column *vc = &cold.hdr.columns[cold.plan.column];
        const struct segment_column *hc = &hot.hdr.columns[hot.plan.column];
        uint64_t t0, t1;
        double ts, to;

        ts = pooled_scan(cold_pool, cf, &cold, cold_want);
        to = odirect_read(cold_path, vc->offset, vc->length, 1 << 20, &sink);
        gc[r] = (double)vc->length / ts / 1e9;
        go[r] = (double)vc->length / to / 1e9;
        rc[r] = to / ts;
        to = odirect_read(cold_path, vc->offset, vc->length, cold_pool_bytes, &sink);
        gw[r] = (double)vc->length / to / 1e9;
        rw[r] = to / ts;
        ts = pooled_scan(hot_pool, hf, &hot, hot_want);
        t0 = clock_mono_ns();
        sink += bench_plain_read(mem, hc->length / 8);
        t1 = clock_mono_ns();
        gh[r] = (double)hc->length / ts / 1e9;
        gm[r] = (double)hc->length / ((double)(t1 - t0) / 1e9) / 1e9;
        rh[r] = gh[r] / gm[r];
    }
    bufpool_stats(cold_pool, &s1);
    cold_ratio = bench_median(rc, c->reps);
    hot_ratio = bench_median(rh, c->reps);
    cold_gbps = bench_median(gc, c->reps);
    odirect_pool_gbps = bench_median(gw, c->reps);
    cold_ratio_pooldst = bench_median(rw, c->reps);
    odirect_gbps = bench_median(go, c->reps);
    hot_gbps = bench_median(gh, c->reps);
    mem_gbps = bench_median(gm, c->reps);
    printf("part 1 (one thread, %u reps, medians; sink %" PRIu64 ")\n", c->reps, sink & 1);
    printf("  cold scan through the pool   %6.2f GB/s   plain O_DIRECT read %6.2f GB/s   "
           "ratio %.2f (target >= 0.8)   pool hit ratio %.3f\n",
           cold_gbps, odirect_gbps, cold_ratio,
           (double)(s1.hits - s0.hits) / (double)((s1.hits - s0.hits) + (s1.misses - s0.misses)));
    printf("  the same O_DIRECT reads into a pool-sized region (%" PRIu64 " MiB) %6.2f GB/s   "
           "ratio %.2f\n",
           cold_pool_bytes >> 20, odirect_pool_gbps, cold_ratio_pooldst);
    printf("  hot scan in the pool         %6.2f GB/s   plain memory read   %6.2f GB/s   "
           "ratio %.2f (target >= 0.8)\n",
           hot_gbps, mem_gbps, hot_ratio);
    fprintf(csv, "cold_scan_ratio,%.4f,%.3f,%.3f\n", cold_ratio, cold_gbps, odirect_gbps);
    fprintf(csv, "cold_scan_ratio_pool_sized_dst,%.4f,%.3f,%.3f\n", cold_ratio_pooldst, cold_gbps,
            odirect_pool_gbps);
    fprintf(csv, "hot_scan_ratio,%.4f,%.3f,%.3f\n", hot_ratio, hot_gbps, mem_gbps);
    bufpool_file_close(cf);
    bufpool_file_close(hf);
    bufpool_free(cold_pool);
    bufpool_free(hot_pool);
    zonemap_free(cold.zm);
    zonemap_free(hot.zm);
    unlink(cold_path);
    unlink(hot_path);
    free(cold_path);
    free(hot_path);
    free(mem);
    free(rc);
    free(rh);
    free(gc);
    free(go);
    free(gh);
    free(gm);
    free(gw);
    free(rw);
}

/* ---- part 2 ---------------------------------------------------------- */

struct mode {
    const char *name;
    const char *args[8];
    bool available;
};

struct result {
    double qps, p50_ms, p99_ms, p999_ms;
    uint64_t queries, failed, majflt;
    double some_frac, full_frac;
    bool psi_cgroup;
    double est_mib, usage_mib, est_err; /* means over the run */
    uint64_t max_usage;
    uint64_t max_vmlck_kib; /* the node's VmLck, highest sample */
};

static struct harness_proc *node;
static char *cgroup;
static int64_t *seg_sum;

static int assign(const char *addr, unsigned i, uint64_t rows)
{
    char id[16], *uri;
    struct wire_assign_request m;

    snprintf(id, sizeof(id), "s%02u", i);
    uri = xasprintf("file://%s/%s.seg", storage, id);
    m = harness_assign_request(id, uri, rows, 16);
    free(uri);
    return harness_assign(addr, &m, NULL, NULL);
}

static bool status_of(struct wire_node_status *st)
{
    return harness_node_status(harness_proc_addr(node), NULL, 5000, st);
}

static bool all_loaded(void *arg)
{
    unsigned want = *(unsigned *)arg, loaded = 0;
    struct wire_node_status st;

    if (!status_of(&st))
        return false;
    for (size_t i = 0; i < st.n_segments; i++)
        loaded += st.segments[i].state == WIRE_SEG_LOADED;
    wire_node_status_done(&st);
    return loaded == want;
}

/* Sum of value over segment i; returns latency in ns, or 0 on a wrong or failed answer. */
static uint64_t query_one(unsigned i)
{
    char id[16];
    struct wire_query_response resp;
    uint64_t t0 = clock_mono_ns();
    bool ok;

    snprintf(id, sizeof(id), "s%02u", i);
    ok = harness_query_one(harness_proc_addr(node), id, WIRE_AGG_SUM, "value", &resp, NULL) ==
             200 &&
         resp.int_value == seg_sum[i];
    return ok ? clock_mono_ns() - t0 : 0;
}

struct client {
    const struct config *cfg;
    atomic_bool *stop;
    uint32_t rng;
    uint64_t *lat;
    size_t n, cap, failed;
};

static void *client_main(void *arg)
{
    struct client *c = arg;

    while (!atomic_load(c->stop)) {
        unsigned seg;
        uint64_t ns;

        c->rng ^= c->rng << 13;
        c->rng ^= c->rng >> 17;
        c->rng ^= c->rng << 5;
        if (c->rng % 10 != 0)
            seg = (c->rng >> 8) % c->cfg->hot;
        else
            seg = c->cfg->hot + (c->rng >> 8) % (c->cfg->segs - c->cfg->hot);
        ns = query_one(seg);
        if (ns == 0) {
            c->failed++;
            continue;
        }
        if (c->n == c->cap) {
            c->cap = c->cap ? c->cap * 2 : 4096;
            c->lat = xreallocarray(c->lat, c->cap, sizeof(*c->lat));
        }
        c->lat[c->n++] = ns;
    }
    return NULL;
}

static uint64_t read_majflt(int pid)
{
    char path[64], buf[1024], *p;
    unsigned long long v = 0;
    FILE *f;
    size_t n;

    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    f = fopen(path, "re");
    if (f == NULL)
        return 0;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    p = strrchr(buf, ')');
    /* After "pid (comm)": state ppid pgrp session tty tpgid flags minflt cminflt majflt. */
    if (p == NULL ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %llu", &v) != 1)
        return 0;
    return v;
}

/* total= of the "some" and "full" lines of a PSI file, in microseconds. */
static bool read_psi(const char *path, uint64_t *some, uint64_t *full)
{
    char line[256];
    unsigned long long t;
    FILE *f = fopen(path, "re");

    if (f == NULL)
        return false;
    *some = *full = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        char *tot = strstr(line, "total=");
        if (tot == NULL || sscanf(tot, "total=%llu", &t) != 1)
            continue;
        if (strncmp(line, "some", 4) == 0)
            *some = t;
        else if (strncmp(line, "full", 4) == 0)
            *full = t;
    }
    fclose(f);
    return true;
}

/* VmLck of a process in KiB (0 when unreadable). */
static uint64_t read_vmlck_kib(int pid)
{
    char path[64], line[256];
    unsigned long long v = 0;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    f = fopen(path, "re");
    if (f == NULL)
        return 0;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "VmLck: %llu kB", &v) == 1)
            break;
    fclose(f);
    return v;
}

static uint64_t cg_usage(void)
{
    static const char *names[] = {"memory.current", "memory.usage_in_bytes"};
    unsigned long long v = 0;

    for (int i = 0; i < 2; i++) {
        char *file = xasprintf("%s/%s", cgroup, names[i]);
        FILE *f = fopen(file, "re");
        free(file);
        if (f == NULL)
            continue;
        if (fscanf(f, "%llu", &v) != 1)
            v = 0;
        fclose(f);
        break;
    }
    return v;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

static bool run_mode(const struct config *c, const struct mode *m, struct result *res)
{
    char *data = xasprintf("%s/data-%s", dir, m->name), *psi_path, why[256];
    atomic_bool stop = false;
    struct client cl[2];
    pthread_t th[2];
    uint64_t some0 = 0, full0 = 0, some1 = 0, full1 = 0, t0, t1, maj0, *all;
    double est_sum = 0, usage_sum = 0, err_sum = 0;
    unsigned samples = 0, want = c->segs;
    size_t n = 0;
    FILE *lf;
    char *lname;

    memset(res, 0, sizeof(*res));
    cgroup = harness_cgroup_new("sluice-bench-io", c->limit, why, sizeof(why));
    if (cgroup == NULL) {
        fprintf(stderr, "bench_io: no memory cgroup (%s): part 2 skipped\n", why);
        free(data);
        return false;
    }
    node = harness_node_start_cg(storage, data, cgroup, m->args);
    if (node == NULL) {
        fprintf(stderr, "bench_io: the %s node did not start; mode skipped\n", m->name);
        harness_cgroup_remove(cgroup);
        free(cgroup);
        cgroup = NULL;
        harness_dir_remove(data);
        free(data);
        return false;
    }
    for (unsigned i = 0; i < c->segs; i++) {
        int st;
        while ((st = assign(harness_proc_addr(node), i, c->seg_rows)) == 429)
            usleep(200000);
        if (st != 202) {
            fprintf(stderr, "bench_io: %s: assign s%02u: HTTP %d\n", m->name, i, st);
            exit(1);
        }
    }
    if (!harness_wait_until(all_loaded, &want, 600000)) {
        fprintf(stderr, "bench_io: %s: segments did not all load\n", m->name);
        harness_proc_dump_log(node);
        exit(1);
    }
    /* Warm the hot subset, as a node in service has it. */
    for (int pass = 0; pass < 3; pass++)
        for (unsigned i = 0; i < c->hot; i++)
            (void)query_one(i);
    psi_path = xasprintf("%s/memory.pressure", cgroup);
    res->psi_cgroup = read_psi(psi_path, &some0, &full0);
    if (!res->psi_cgroup) {
        free(psi_path);
        psi_path = xstrdup("/proc/pressure/memory");
        (void)read_psi(psi_path, &some0, &full0);
    }
    maj0 = read_majflt(harness_proc_pid(node));
    t0 = clock_mono_ns();
    for (int i = 0; i < 2; i++) {
        cl[i] = (struct client){.cfg = c, .stop = &stop, .rng = 0x9E3779B9u * (uint32_t)(i + 1)};
        pthread_create(&th[i], NULL, client_main, &cl[i]);
    }
    while (clock_mono_ns() - t0 < (uint64_t)c->seconds * 1000000000ull) {
        struct wire_node_status st;
        uint64_t usage = cg_usage();

        if (status_of(&st)) {
            if (usage > 0) {
                est_sum += (double)st.pressure.wss_bytes;
                usage_sum += (double)usage;
                err_sum += ((double)st.pressure.wss_bytes - (double)usage) / (double)usage;
                samples++;
            }
            wire_node_status_done(&st);
        }
        if (usage > res->max_usage)
            res->max_usage = usage;
        {
            uint64_t lck = read_vmlck_kib(harness_proc_pid(node));
            if (lck > res->max_vmlck_kib)
                res->max_vmlck_kib = lck;
        }
        usleep(100000);
    }
    atomic_store(&stop, true);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    t1 = clock_mono_ns();
    res->majflt = read_majflt(harness_proc_pid(node)) - maj0;
    (void)read_psi(psi_path, &some1, &full1);
    res->some_frac = (double)(some1 - some0) / ((double)(t1 - t0) / 1e3);
    res->full_frac = (double)(full1 - full0) / ((double)(t1 - t0) / 1e3);
    all = xcalloc(cl[0].n + cl[1].n + 1, sizeof(*all));
    for (int i = 0; i < 2; i++) {
        memcpy(all + n, cl[i].lat, cl[i].n * sizeof(*all));
        n += cl[i].n;
        res->failed += cl[i].failed;
        free(cl[i].lat);
    }
    qsort(all, n, sizeof(*all), cmp_u64);
    res->queries = n;
    res->qps = (double)n / ((double)(t1 - t0) / 1e9);
    if (n > 0) {
        res->p50_ms = (double)all[n / 2] / 1e6;
        res->p99_ms = (double)all[n * 99 / 100] / 1e6;
        res->p999_ms = (double)all[n * 999 / 1000] / 1e6;
    }
    if (samples > 0) {
        res->est_mib = est_sum / samples / 1048576.0;
        res->usage_mib = usage_sum / samples / 1048576.0;
        res->est_err = err_sum / samples;
    }
    lname = xasprintf("bench_io_latency_%s.csv", m->name);
    lf = fopen(lname, "w");
    if (lf != NULL) {
        for (size_t i = 0; i < n; i++)
            fprintf(lf, "%.4f,%.6f\n", (double)all[i] / 1e6, (double)(i + 1) / (double)n);
        fclose(lf);
    }
    free(lname);
    free(all);
    free(psi_path);
    if (harness_cgroup_oom_kills(cgroup) > 0)
        fprintf(stderr, "bench_io: %s: %llu oom_kills\n", m->name,
                harness_cgroup_oom_kills(cgroup));
    harness_proc_free(node);
    node = NULL;
    harness_cgroup_remove(cgroup);
    free(cgroup);
    cgroup = NULL;
    harness_dir_remove(data);
    free(data);
    return true;
}

/* Whether this sluice-node has --mlock-budget (the mmap+mlock mode). */
static bool have_mlock(void)
{
    const char *argv[] = {harness_bin("sluice-node"), "serve", "--help", NULL};
    char *out = NULL;
    bool yes;

    (void)harness_run(argv, &out);
    yes = out != NULL && strstr(out, "--mlock-budget") != NULL;
    free(out);
    return yes;
}

static void plot(void)
{
    FILE *g = fopen("bench_io.gp", "w");
    const char *argv[] = {"/usr/bin/gnuplot", "bench_io.gp", NULL};

    if (g == NULL || access("/usr/bin/gnuplot", X_OK) != 0) {
        if (g != NULL)
            fclose(g);
        return;
    }
    fprintf(g, "set terminal pngcairo size 900,500\nset output 'bench_io.png'\n"
               "set datafile separator ','\nset logscale x\nset key bottom right\n"
               "set xlabel 'query latency (ms, log)'\nset ylabel 'fraction of queries'\n"
               "set title 'Query latency CDF by I/O mode (working set > memory limit)'\n"
               "set grid\nplot ");
    {
        const char *modes[] = {"mmap", "mmap_mlock", "direct"};
        bool first = true;
        for (int i = 0; i < 3; i++) {
            char *f = xasprintf("bench_io_latency_%s.csv", modes[i]);
            if (access(f, R_OK) == 0) {
                fprintf(g, "%s'%s' using 1:2 with lines lw 2 title '%s' noenhanced", first ? "" : ", ", f,
                        modes[i]);
                first = false;
            }
            free(f);
        }
    }
    fprintf(g, "\n");
    fclose(g);
    if (harness_run(argv, NULL) != 0)
        fprintf(stderr, "bench_io: gnuplot failed\n");
}

int main(void)
{
    const char *smoke = getenv("SLUICE_BENCH_SMOKE");
    bool is_smoke = smoke != NULL && strcmp(smoke, "1") == 0;
    struct config c = {
        .limit = 256ull << 20, .pool = 160ull << 20, .mlock = 96ull << 20,
        .segs = 12, .hot = 2, .seg_rows = 4u << 20, .seconds = 30, .reps = 7,
    };
    struct mode modes[3] = {
        {"mmap", {"--admission=off", NULL}, true},
        {"mmap_mlock", {"--admission=off", NULL}, false},
        {"direct", {"--admission=off", "--io=direct", NULL}, true},
    };
    struct result res[3];
    char pool_arg[64], mlock_arg[64];
    bool ran[3] = {false, false, false}, mlock_reduced = false;

    harness_client_set(NULL, 60000); /* a query may read a whole segment from disk */
    if (is_smoke)
        c = (struct config){.limit = 128ull << 20, .pool = 64ull << 20, .mlock = 32ull << 20,
                            .segs = 10, .hot = 1, .seg_rows = 2u << 20, .seconds = 4, .reps = 3};
    modes[1].available = have_mlock();
    {
        /*
         * mmap+mlock needs RLIMIT_MEMLOCK above its budget; the nodes inherit
         * ours. The node checks the limit even with CAP_IPC_LOCK (it is the
         * operator's statement), so where the hard limit cannot be raised
         * (no CAP_SYS_RESOURCE, as in a container) the mode runs with a
         * budget just under the limit, and says so.
         */
        struct rlimit rl = {.rlim_cur = c.mlock + (64ull << 20), .rlim_max = c.mlock + (64ull << 20)};
        struct rlimit cur;

        if (modes[1].available && getrlimit(RLIMIT_MEMLOCK, &cur) == 0 &&
            cur.rlim_cur < rl.rlim_cur && setrlimit(RLIMIT_MEMLOCK, &rl) < 0) {
            uint64_t under = cur.rlim_cur > (1ull << 20) ? cur.rlim_cur - (1ull << 20) : 0;

            if (cur.rlim_cur != RLIM_INFINITY && under > 0 && under < c.mlock) {
                mlock_reduced = true;
                fprintf(stderr, "bench_io: cannot raise RLIMIT_MEMLOCK to %llu (%s): mmap+mlock "
                                "runs with --mlock-budget %" PRIu64 " (the limit is %llu)\n",
                        (unsigned long long)rl.rlim_cur, strerror(errno), under,
                        (unsigned long long)cur.rlim_cur);
                c.mlock = under;
            } else if (under == 0) {
                modes[1].available = false;
            }
        }
    }
    snprintf(pool_arg, sizeof(pool_arg), "--cache-budget=%" PRIu64, c.pool);
    snprintf(mlock_arg, sizeof(mlock_arg), "--mlock-budget=%" PRIu64, c.mlock);
    modes[2].args[2] = pool_arg;
    modes[1].args[1] = mlock_arg;
    dir = harness_dir_new("sluice-bench-io");
    storage = xasprintf("%s/storage", dir);
    mkdir(storage, 0755);
    csv = fopen("bench_io.csv", "w");
    if (csv == NULL)
        csv = fopen("/dev/null", "w");
    fprintf(csv, "metric,value,a,b\n");
    if (getenv("SLUICE_BENCH_SKIP_PART1") == NULL)
        part_inprocess(&c);
    if (getenv("SLUICE_BENCH_PART1_ONLY") != NULL)
        return 0;

    seg_sum = xcalloc(c.segs, sizeof(*seg_sum));
    for (unsigned i = 0; i < c.segs; i++) {
        struct mkseg_spec spec = {.rows = c.seg_rows, .row_bytes = 16, .seed = 700 + i};
        char *path = seg_path(i), detail[256];

        if (mkseg_write(path, &spec, detail, sizeof(detail)) < 0) {
            fprintf(stderr, "bench_io: %s\n", detail);
            return 1;
        }
        seg_sum[i] = expected_sum(700 + i, c.seg_rows);
        free(path);
    }
    printf("\npart 2: one node per mode in a %" PRIu64 " MiB memory cgroup; %u segments x %" PRIu64
           " MiB = %" PRIu64 " MiB (value columns %" PRIu64 " MiB), hot subset %u segments; "
           "2 closed-loop clients, 90 %% hot / 10 %% cold, %u s; direct pool %" PRIu64 " MiB\n",
           c.limit >> 20, c.segs, (c.seg_rows * 16) >> 20, (c.segs * c.seg_rows * 16) >> 20,
           (c.segs * c.seg_rows * 8) >> 20, c.hot, c.seconds, c.pool >> 20);
    printf("  mmap+mlock: --mlock-budget %.1f MiB%s\n", (double)c.mlock / 1048576.0,
           mlock_reduced ? " (reduced: RLIMIT_MEMLOCK here cannot be raised)" : "");
    for (int i = 0; i < 3; i++) {
        if (!modes[i].available) {
            printf("  %-10s skipped: this sluice-node has no --mlock-budget, or RLIMIT_MEMLOCK "
                   "allows nothing\n",
                   modes[i].name);
            continue;
        }
        ran[i] = run_mode(&c, &modes[i], &res[i]);
    }
    printf("\n| mode | queries/s | p50 ms | p99 ms | p99.9 ms | failed | major faults | PSI some | "
           "PSI full | node memory figure MiB | cgroup usage MiB | figure vs usage | max usage MiB "
           "| max VmLck MiB |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < 3; i++) {
        if (!ran[i])
            continue;
        printf("| %s | %.1f | %.2f | %.2f | %.2f | %" PRIu64 " | %" PRIu64
               " | %.2f %% | %.2f %% | %.1f | %.1f | %+.0f %% | %.1f | %.1f |\n",
               modes[i].name, res[i].qps, res[i].p50_ms, res[i].p99_ms, res[i].p999_ms,
               res[i].failed, res[i].majflt, res[i].some_frac * 100, res[i].full_frac * 100,
               res[i].est_mib, res[i].usage_mib, res[i].est_err * 100,
               (double)res[i].max_usage / 1048576.0, (double)res[i].max_vmlck_kib / 1024.0);
        fprintf(csv, "mode_%s,%.2f,%.3f,%.3f\n", modes[i].name, res[i].qps, res[i].p50_ms,
                res[i].p99_ms);
        fprintf(csv, "majflt_%s,%" PRIu64 ",%.4f,%.4f\n", modes[i].name, res[i].majflt,
                res[i].some_frac, res[i].full_frac);
        fprintf(csv, "memfigure_%s,%.1f,%.1f,%.4f\n", modes[i].name, res[i].est_mib,
                res[i].usage_mib, res[i].est_err);
    }
    printf("PSI source: %s\n", ran[0] && res[0].psi_cgroup ? "the cgroup's memory.pressure"
                                                            : "host-wide /proc/pressure/memory "
                                                              "(no per-cgroup PSI on this host)");
    if (ran[0] && ran[2])
        printf("p99 direct / p99 mmap = %.2f (target < 1, with 0 major faults in direct: %s)\n",
               res[2].p99_ms / res[0].p99_ms, res[2].majflt == 0 ? "yes" : "no");
    fclose(csv);
    plot();
    harness_dir_remove(dir);
    free(dir);
    free(storage);
    free(seg_sum);
    return 0;
}
