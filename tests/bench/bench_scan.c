/*
 * bench_scan: how close the node's scan comes to reading memory.
 *
 * Part 1, in process, one thread: a segment is written, mapped and made hot;
 * then, on the same mapped bytes, the query scan, a plain read loop (sum of
 * 64-bit words) and the same scan through a direct-I/O buffer pool holding
 * the whole file (direct mode with a hot pool) run alternately, and the
 * ratios of the scans' throughputs to the read's are reported (medians over
 * the repetitions). The ratios are immune to how busy the shared machine
 * is, as all sides suffer the same. Once with an int64 value column, once
 * with a float64 one (whose key column is rewritten with random numbers, so
 * that its filtered queries test every row).
 *
 * Part 2, a real node (tests/harness): 1 GiB of LOADED segments, made hot
 * by a first pass of queries, then repeated queries over all of it; the
 * node's own major-fault counter (from /metrics) before and after.
 *
 * Figures are printed and written to bench_scan.csv; nothing is asserted
 * except that the answers are right. SLUICE_BENCH_SMOKE=1 shrinks it;
 * SLUICE_BENCH_PART=1 runs part 1 only.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
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

struct kind {
    const char *name;
    enum wire_aggregate agg;
    const char *column, *filter;
    int64_t lo, hi;
};

static FILE *csv;
static unsigned retries_total; /* assignments retried after a 429 */

/*
 * Rewrites the key column of the segment at path with segment_synth_value
 * (random in [-1e6, 1e6]), in place, before anything maps or reads it. The
 * column CRC goes stale; nothing here verifies it.
 */
static void scramble_keys(const char *path, const struct segment_header *hdr)
{
    const struct segment_column *kc = &hdr->columns[segment_find_column(hdr, "key")];
    int64_t *buf = xcalloc(1 << 16, sizeof(*buf));
    int fd = open(path, O_WRONLY | O_CLOEXEC);

    for (uint64_t r = 0; fd >= 0 && r < hdr->row_count; r += 1 << 16) {
        uint64_t n = hdr->row_count - r < (1 << 16) ? hdr->row_count - r : (1 << 16);
        for (uint64_t i = 0; i < n; i++)
            buf[i] = segment_synth_value(hdr->seed ^ 0x6b6579, r + i);
        if (pwrite(fd, buf, n * 8, (off_t)(kc->offset + r * 8)) != (ssize_t)(n * 8)) {
            close(fd);
            fd = -1;
        }
    }
    if (fd < 0) {
        fprintf(stderr, "bench: cannot rewrite the keys of %s\n", path);
        exit(1);
    }
    close(fd);
    free(buf);
}

/* Maps path and parses its header; exits on failure. */
static void *map_segment(const char *path, struct segment_header *hdr, size_t *ret_len)
{
    char detail[256];
    struct stat sb;
    void *base;
    int fd = open(path, O_RDONLY);

    if (fd < 0 || fstat(fd, &sb) < 0) {
        fprintf(stderr, "bench: cannot open %s\n", path);
        exit(1);
    }
    base = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (base == MAP_FAILED || segment_parse_header(base, (size_t)sb.st_size, (uint64_t)sb.st_size,
                                                   hdr, detail, sizeof(detail)) < 0) {
        fprintf(stderr, "bench: cannot map %s\n", path);
        exit(1);
    }
    *ret_len = (size_t)sb.st_size;
    return base;
}

/*
 * The plain read of one column's bytes where the pool holds them, piece by
 * piece through a cursor: the baseline that shows what the pool's memory
 * itself reads at.
 */
static uint64_t pool_read(struct bufpool *pool, struct bufpool_file *f,
                          const struct segment_column *col)
{
    struct bufpool_cursor c;
    uint64_t sum = 0;

    bufpool_cursor_init(&c, pool, f, col->offset, col->offset + col->length);
    for (uint64_t off = col->offset; off < col->offset + col->length;) {
        const void *p;
        size_t len;

        if (bufpool_cursor_get(&c, off, &p, &len) < 0 || len < 8) {
            fprintf(stderr, "bench: pool read failed\n");
            exit(1);
        }
        len = len < col->offset + col->length - off ? len : col->offset + col->length - off;
        sum += bench_plain_read(p, len / 8);
        off += len;
    }
    bufpool_cursor_done(&c);
    return sum;
}

static bool same_answer(const struct query_acc *a, const struct query_acc *b,
                        enum wire_aggregate agg)
{
    struct wire_query_response x, y;

    query_acc_result(a, agg, &x);
    query_acc_result(b, agg, &y);
    return x.rows_matched == y.rows_matched && x.int_value == y.int_value &&
           memcmp(&x.float_value, &y.float_value, sizeof(double)) == 0;
}

/*
 * Each repetition: the scan over the mapping, the plain read of the same
 * bytes, the scan through a direct-I/O buffer pool that holds the whole
 * file (hot, as a node's pool holds its hot set), and the plain read of the
 * same bytes in the pool's frames. Ratios divide by a read of the same
 * repetition: the mapped bytes', and for the pool also its own bytes'.
 */
static void part_inprocess(const char *dir, uint64_t rows, unsigned reps, bool fl)
{
    /* value is random in [-1e6, 1e6]: filtering on it straddles every block,
     * so the row-by-row filter kernel is what runs. */
    static const struct kind kinds[] = {
        {"sum(value)", WIRE_AGG_SUM, "value", "", 0, 0},
        {"max(value)", WIRE_AGG_MAX, "value", "", 0, 0},
        {"min(value)", WIRE_AGG_MIN, "value", "", 0, 0},
        {"max(key) where value in [0,1e6]", WIRE_AGG_MAX, "key", "value", 0, 1000000},
        {"min(key) where value in [0,1e6]", WIRE_AGG_MIN, "key", "value", 0, 1000000},
        {"sum(key) where value in [0,1e6]", WIRE_AGG_SUM, "key", "value", 0, 1000000},
        {"count where value in [0,1e6]", WIRE_AGG_COUNT, "key", "value", 0, 1000000},
    };
    /*
     * A float64 "value" has one int64 column, the key, which rises with the
     * row: filtering on it would only skip or take whole blocks. So its key
     * column is rewritten in the file with the same random numbers as the
     * int64 value above, and the filtered float queries run the row filter.
     */
    static const struct kind float_kinds[] = {
        {"float sum(value)", WIRE_AGG_SUM, "value", "", 0, 0},
        {"float max(value)", WIRE_AGG_MAX, "value", "", 0, 0},
        {"float min(value)", WIRE_AGG_MIN, "value", "", 0, 0},
        {"float sum(value) where key in [0,1e6]", WIRE_AGG_SUM, "value", "key", 0, 1000000},
        {"float max(value) where key in [0,1e6]", WIRE_AGG_MAX, "value", "key", 0, 1000000},
        {"float min(value) where key in [0,1e6]", WIRE_AGG_MIN, "value", "key", 0, 1000000},
    };
    const struct kind *ks = fl ? float_kinds : kinds;
    size_t nk = fl ? sizeof(float_kinds) / sizeof(float_kinds[0]) : sizeof(kinds) / sizeof(kinds[0]);
    struct mkseg_spec spec = {.rows = rows, .row_bytes = 16, .seed = 7, .float_value = fl};
    char *path = xasprintf("%s/hot.seg", dir);
    struct segment_header hdr;
    struct bufpool *pool = NULL;
    struct bufpool_file *pf = NULL;
    struct zonemap *zm;
    char detail[256];
    size_t len;
    void *base;

    if (mkseg_write(path, &spec, detail, sizeof(detail)) < 0) {
        fprintf(stderr, "bench: %s\n", detail);
        exit(1);
    }
    base = map_segment(path, &hdr, &len);
    if (fl) {
        munmap(base, len);
        scramble_keys(path, &hdr);
        base = map_segment(path, &hdr, &len);
    }
    zm = zonemap_build(base, &hdr);
    /* The pool: the whole file and then some, so every block stays in it. */
    if (bufpool_new(((uint64_t)len + (64u << 20)) & ~(uint64_t)(BUFPOOL_BLOCK_DEFAULT - 1),
                    BUFPOOL_BLOCK_DEFAULT, BUFPOOL_READAHEAD_DEFAULT, &pool, detail,
                    sizeof(detail)) < 0 ||
        bufpool_file_open(pool, path, &pf) < 0) {
        fprintf(stderr, "bench: no buffer pool over %s (O_DIRECT?): %s\n", path, detail);
        exit(1);
    }
    printf("part 1%s: in-process scan, one thread, segment %" PRIu64 " rows x 16 B = %.0f MiB, "
           "%u repetitions, medians; ratio = scan GB/s / plain read GB/s\n",
           fl ? " (float64 value)" : "", rows, (double)len / (1 << 20), reps);
    printf("  %-40s %9s %9s %6s %9s %6s %9s %6s\n", "query", "mmap GB/s", "read GB/s", "ratio",
           "pool GB/s", "ratio", "pool read", "ratio");
    for (size_t k = 0; k < nk; k++) {
        double *ratio = xcalloc(reps, sizeof(double)), *scan_gbs = xcalloc(reps, sizeof(double));
        double *read_gbs = xcalloc(reps, sizeof(double));
        double *pool_ratio = xcalloc(reps, sizeof(double)), *pool_gbs = xcalloc(reps, sizeof(double));
        double *pread_gbs = xcalloc(reps, sizeof(double)), *pool_ratio2 = xcalloc(reps, sizeof(double));
        struct query_source src = {.pool = pool, .file = pf};
        struct query_plan plan;
        volatile uint64_t sink = 0;

        query_plan_make(&hdr, ks[k].agg, ks[k].column, ks[k].filter, ks[k].lo,
                        ks[k].hi, &plan, detail, sizeof(detail));
        for (unsigned r = 0; r < reps + 1; r++) {
            struct query_acc acc, pacc;
            uint64_t t0, t1, t2, t3, t4, bytes = 0;
            const char *first = NULL;

            query_acc_init(&acc, plan.is_float);
            query_acc_init(&pacc, plan.is_float);
            t0 = clock_mono_ns();
            query_scan(&plan, base, &hdr, zm, &acc);
            t1 = clock_mono_ns();
            /* The baseline reads exactly the columns the scan read. */
            for (int c = 0; c < 2; c++) {
                const char *name = c == 0 ? ks[k].column : ks[k].filter;
                int idx = name[0] != '\0' ? segment_find_column(&hdr, name) : -1;
                if (idx < 0 || (c == 0 && ks[k].agg == WIRE_AGG_COUNT))
                    continue;
                first = (const char *)base + hdr.columns[idx].offset;
                sink += bench_plain_read((const uint64_t *)(const void *)first, rows);
                bytes += rows * 8;
            }
            t2 = clock_mono_ns();
            if (query_scan_source(&plan, &src, &hdr, zm, &pacc) < 0 ||
                !same_answer(&acc, &pacc, plan.aggregate)) {
                fprintf(stderr, "bench: %s: the pooled scan failed or answered differently\n",
                        ks[k].name);
                exit(1);
            }
            t3 = clock_mono_ns();
            for (int c = 0; c < 2; c++) {
                const char *name = c == 0 ? ks[k].column : ks[k].filter;
                int idx = name[0] != '\0' ? segment_find_column(&hdr, name) : -1;
                if (idx < 0 || (c == 0 && ks[k].agg == WIRE_AGG_COUNT))
                    continue;
                sink += pool_read(pool, pf, &hdr.columns[idx]);
            }
            t4 = clock_mono_ns();
            if (r == 0)
                continue; /* warm-up: makes every page hot, fills the pool */
            scan_gbs[r - 1] = (double)acc.bytes_scanned / (double)(t1 - t0);
            read_gbs[r - 1] = (double)bytes / (double)(t2 - t1);
            pool_gbs[r - 1] = (double)pacc.bytes_scanned / (double)(t3 - t2);
            ratio[r - 1] = scan_gbs[r - 1] / read_gbs[r - 1];
            pool_ratio[r - 1] = pool_gbs[r - 1] / read_gbs[r - 1];
            pread_gbs[r - 1] = (double)bytes / (double)(t4 - t3);
            pool_ratio2[r - 1] = pool_gbs[r - 1] / pread_gbs[r - 1];
            sink += acc.isum;
        }
        printf("  %-40s %9.2f %9.2f %6.3f %9.2f %6.3f %9.2f %6.3f\n", ks[k].name,
               bench_median(scan_gbs, reps), bench_median(read_gbs, reps), bench_median(ratio, reps),
               bench_median(pool_gbs, reps), bench_median(pool_ratio, reps), bench_median(pread_gbs, reps),
               bench_median(pool_ratio2, reps));
        fprintf(csv, "scan_ratio,%s,%.4f,%.3f,%.3f\n", ks[k].name, bench_median(ratio, reps),
                bench_median(scan_gbs, reps), bench_median(read_gbs, reps));
        fprintf(csv, "pool_hot_scan_ratio,%s,%.4f,%.3f,%.3f\n", ks[k].name,
                bench_median(pool_ratio, reps), bench_median(pool_gbs, reps), bench_median(read_gbs, reps));
        fprintf(csv, "pool_hot_scan_ratio_pool_read,%s,%.4f,%.3f,%.3f\n", ks[k].name,
                bench_median(pool_ratio2, reps), bench_median(pool_gbs, reps), bench_median(pread_gbs, reps));
        (void)sink;
        free(ratio);
        free(scan_gbs);
        free(read_gbs);
        free(pool_ratio);
        free(pool_gbs);
        free(pread_gbs);
        free(pool_ratio2);
    }
    bufpool_file_close(pf);
    bufpool_free(pool);
    zonemap_free(zm);
    munmap(base, len);
    unlink(path);
    free(path);
}

static uint64_t node_metric(const char *addr, const char *name)
{
    double v = harness_metric(addr, name);

    return v >= 0 ? (uint64_t)v : UINT64_MAX;
}

static bool all_loaded(void *arg)
{
    const char *addr = ((void **)arg)[0];
    size_t want = *(size_t *)((void **)arg)[1];

    return harness_node_count(addr, WIRE_SEG_LOADED) == want;
}

/*
 * Assigns one segment as any client should: a 429 is "not now", so wait
 * what Retry-After says and ask again, for up to two minutes
 * (harness_assign_patient). A burst of assignments meets LOAD_CONCURRENCY
 * (--max-loads) this way. Returns 0 once accepted (202), -1 on any other
 * answer.
 */
static int bench_assign(const char *addr, const struct wire_assign_request *m)
{
    struct harness_reply reply;
    int status = harness_assign_patient(addr, m, NULL, &reply);

    retries_total += reply.retries;
    if (status == 202)
        return 0;
    fprintf(stderr, "bench: assign %s: HTTP %d %s%s\n", m->segment_id, status, reply.reason,
            status == 429 ? " (still refused after two minutes)" : "");
    return -1;
}

static void part_node(const char *dir, size_t nsegs, uint64_t rows, unsigned passes)
{
    char *storage = xasprintf("%s/storage", dir), *data = xasprintf("%s/data", dir);
    struct wire_query_request q;
    struct harness_proc *node;
    uint64_t maj0 = 0, maj1, t0 = 0, t1, bytes = 0;
    void *arg[2];

    mkdir(storage, 0755);
    memset(&q, 0, sizeof(q));
    q.n_segments = nsegs;
    q.segment_ids = xcalloc(nsegs, sizeof(*q.segment_ids));
    for (size_t i = 0; i < nsegs; i++) {
        struct mkseg_spec spec = {.rows = rows, .row_bytes = 16, .seed = 100 + i};
        char *path = xasprintf("%s/s%zu.seg", storage, i), detail[256];
        if (mkseg_write(path, &spec, detail, sizeof(detail)) < 0) {
            fprintf(stderr, "bench: %s\n", detail);
            exit(1);
        }
        snprintf(q.segment_ids[i], sizeof(q.segment_ids[i]), "s%zu", i);
        free(path);
    }
    node = harness_node_start(storage, data, NULL);
    if (node == NULL)
        exit(1);
    for (size_t i = 0; i < nsegs; i++) {
        struct wire_assign_request m;
        char uri[WIRE_URI_MAX + 1];

        memset(&m, 0, sizeof(m));
        snprintf(m.segment_id, sizeof(m.segment_id), "s%zu", i);
        snprintf(uri, sizeof(uri), "file://%s/s%zu.seg", storage, i);
        snprintf(m.uri, sizeof(m.uri), "%s", uri);
        m.row_count = rows;
        m.avg_row_size = 16;
        if (bench_assign(harness_proc_addr(node), &m) < 0) {
            fprintf(stderr, "bench: assign s%zu failed\n", i);
            harness_proc_dump_log(node);
            exit(1);
        }
    }
    arg[0] = (void *)(uintptr_t)harness_proc_addr(node);
    arg[1] = &nsegs;
    if (!harness_wait_until(all_loaded, arg, 300000)) {
        fprintf(stderr, "bench: segments did not load\n");
        harness_proc_dump_log(node);
        exit(1);
    }
    q.aggregate = WIRE_AGG_SUM;
    snprintf(q.column, sizeof(q.column), "value");
    snprintf(q.filter_column, sizeof(q.filter_column), "key");
    q.lo = 0;
    q.hi = INT64_MAX;
    for (unsigned pass = 0; pass <= passes; pass++) {
        struct wire_query_response resp;

        if (pass == 1) {
            maj0 = node_metric(harness_proc_addr(node), "sluice_process_major_faults_total");
            t0 = clock_mono_ns();
        }
        if (harness_query(harness_proc_addr(node), &q, &resp, NULL) != 200) {
            fprintf(stderr, "bench: query failed\n");
            exit(1);
        }
        if (pass > 0)
            bytes += resp.bytes_scanned;
    }
    t1 = clock_mono_ns();
    maj1 = node_metric(harness_proc_addr(node), "sluice_process_major_faults_total");
    printf("part 2: node with %zu LOADED segments, %.0f MiB mapped, %u passes over all of it "
           "after one warm-up pass\n",
           nsegs, (double)(nsegs * rows * 16) / (1 << 20), passes);
    printf("  major faults during the passes: %" PRIu64 " (before %" PRIu64 ", after %" PRIu64
           ")\n",
           maj1 - maj0, maj0, maj1);
    printf("  assignments retried after a 429 (honouring Retry-After): %u\n", retries_total);
    printf("  end-to-end scan throughput over HTTP: %.2f GB/s\n",
           (double)bytes / (double)(t1 - t0));
    fprintf(csv, "node_major_faults,%zu segments %.0f MiB,%" PRIu64 ",,\n", nsegs,
            (double)(nsegs * rows * 16) / (1 << 20), maj1 - maj0);
    fprintf(csv, "node_scan_gbps,%u passes,%.3f,,\n", passes, (double)bytes / (double)(t1 - t0));
    harness_proc_free(node);
    free(q.segment_ids);
    free(storage);
    free(data);
}

int main(void)
{
    const char *smoke = getenv("SLUICE_BENCH_SMOKE");
    bool is_smoke = smoke != NULL && smoke[0] == '1';
    char *dir = harness_dir_new("sluice-bench");
    cpu_set_t one;

    harness_client_set(NULL, 60000); /* one query scans every segment */
    csv = fopen("bench_scan.csv", "w");
    if (csv == NULL)
        csv = fopen("/dev/null", "w");
    fprintf(csv, "metric,case,value,scan_gbps,read_gbps\n");
    /* Part 1 measures one core: pin to the CPU we start on. */
    CPU_ZERO(&one);
    CPU_SET(sched_getcpu() >= 0 ? sched_getcpu() : 0, &one);
    sched_setaffinity(0, sizeof(one), &one);
    part_inprocess(dir, is_smoke ? (1u << 20) : (1u << 23), is_smoke ? 3 : 11, false);
    part_inprocess(dir, is_smoke ? (1u << 20) : (1u << 23), is_smoke ? 3 : 11, true);
    /* Part 2: 8 x 128 MiB = 1 GiB (smoke: 4 x 4 MiB). SLUICE_BENCH_PART=1: part 1 only. */
    if (getenv("SLUICE_BENCH_PART") == NULL || strcmp(getenv("SLUICE_BENCH_PART"), "1") != 0)
        part_node(dir, is_smoke ? 4 : 8, is_smoke ? (1u << 18) : (1u << 23), is_smoke ? 3 : 10);
    fclose(csv);
    harness_dir_remove(dir);
    free(dir);
    return 0;
}
