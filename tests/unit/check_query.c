/*
 * check_query: the scan and the zone maps against a naive row-by-row
 * computation over the same mapped segment, for every aggregate and for
 * ranges that skip, take and cut blocks.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bufpool.h"
#include "query.h"
#include "mkseg.h"
#include "segfmt.h"
#include "xmalloc.h"
#include "zonemap.h"
#include "suite.h"

struct mapped {
    char dir[64];
    void *base;
    size_t len;
    struct segment_header hdr;
    struct zonemap *zm;
};

static void map_segment(struct mapped *m, uint64_t rows, unsigned row_bytes, bool fl, uint64_t seed)
{
    struct mkseg_spec spec = {.rows = rows, .row_bytes = row_bytes, .seed = seed,
                                .float_value = fl};
    char path[128], detail[256];
    struct stat sb;
    int fd;

    snprintf(m->dir, sizeof(m->dir), "/tmp/check_query-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(m->dir));
    snprintf(path, sizeof(path), "%s/s.seg", m->dir);
    ck_assert_int_eq(mkseg_write(path, &spec, detail, sizeof(detail)), 0);
    fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    fstat(fd, &sb);
    m->len = (size_t)sb.st_size;
    /* Private and writable: a test may plant values (NaN) the generator never makes. */
    m->base = mmap(NULL, m->len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    close(fd);
    unlink(path);
    rmdir(m->dir);
    ck_assert_ptr_ne(m->base, MAP_FAILED);
    ck_assert_int_eq(segment_parse_header(m->base, m->len, m->len, &m->hdr, detail,
                                          sizeof(detail)),
                     0);
    m->zm = zonemap_build(m->base, &m->hdr);
}

static void unmap_segment(struct mapped *m)
{
    zonemap_free(m->zm);
    munmap(m->base, m->len);
}

static void run(struct mapped *m, enum wire_aggregate agg, const char *filter, int64_t lo,
                int64_t hi, struct wire_query_response *ret)
{
    struct query_plan plan;
    struct query_acc acc;
    char err[128];

    ck_assert_int_eq(query_plan_make(&m->hdr, agg, "value", filter, lo, hi, &plan, err,
                                     sizeof(err)),
                     0);
    query_acc_init(&acc, plan.is_float);
    query_scan(&plan, m->base, &m->hdr, m->zm, &acc);
    query_acc_result(&acc, agg, ret);
}

/* Naive answer from the generator, not from the file. */
static void naive_int(uint64_t seed, uint64_t rows, bool filtered, int64_t lo, int64_t hi,
                      uint64_t *count, int64_t *sum, int64_t *mn, int64_t *mx)
{
    uint64_t s = 0;

    *count = 0;
    *mn = INT64_MAX;
    *mx = INT64_MIN;
    for (uint64_t r = 0; r < rows; r++) {
        int64_t k = segment_synth_key(seed, r), v = segment_synth_value(seed, r);
        if (filtered && (k < lo || k > hi))
            continue;
        (*count)++;
        s += (uint64_t)v;
        *mn = v < *mn ? v : *mn;
        *mx = v > *mx ? v : *mx;
    }
    *sum = (int64_t)s;
    if (*count == 0)
        *mn = *mx = 0;
}

START_TEST(test_int_ranges)
{
    struct mapped m;
    const uint64_t rows = 50000, seed = 5;
    /* keys run 0..~200000: below, inside one block, across blocks, above, everything. */
    static const int64_t ranges[][2] = {
        {-10, -1}, {0, 0}, {5, 1000}, {16000, 17000}, {16384, 32767},
        {100, 150000}, {199990, 300000}, {INT64_MIN, INT64_MAX}, {400000, 500000},
    };

    map_segment(&m, rows, 32, false, seed);
    ck_assert_uint_eq(zonemap_block_count(m.zm), (rows + ZONEMAP_BLOCK_ROWS - 1) /
                                                     ZONEMAP_BLOCK_ROWS);
    for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++) {
        struct wire_query_response c, s, mn, mx;
        uint64_t count;
        int64_t sum, emin, emax;

        naive_int(seed, rows, true, ranges[i][0], ranges[i][1], &count, &sum, &emin, &emax);
        run(&m, WIRE_AGG_COUNT, "key", ranges[i][0], ranges[i][1], &c);
        run(&m, WIRE_AGG_SUM, "key", ranges[i][0], ranges[i][1], &s);
        run(&m, WIRE_AGG_MIN, "key", ranges[i][0], ranges[i][1], &mn);
        run(&m, WIRE_AGG_MAX, "key", ranges[i][0], ranges[i][1], &mx);
        ck_assert_int_eq(c.int_value, (int64_t)count);
        ck_assert_uint_eq(s.rows_matched, count);
        ck_assert_int_eq(s.int_value, sum);
        ck_assert_int_eq(mn.int_value, emin);
        ck_assert_int_eq(mx.int_value, emax);
    }
    unmap_segment(&m);
}
END_TEST

/*
 * The kernels' multi-lane loops (16 rows at a time) and their tails: a
 * filter on the random "value" column straddles every block, so the row
 * filter runs over whole segments of lengths that are not multiples of 16.
 */
START_TEST(test_int_lanes_and_tails)
{
    static const uint64_t lens[] = {1, 15, 16, 17, 4095, 4096, 4097, 10007};
    static const int64_t ranges[][2] = {{0, 1000000}, {-500000, 500000}, {999990, 1000000},
                                        {-2000000, -1500000}};

    for (size_t l = 0; l < sizeof(lens) / sizeof(lens[0]); l++) {
        struct mapped m;
        uint64_t seed = 40 + l;

        map_segment(&m, lens[l], 16, false, seed);
        for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++) {
            struct wire_query_response c, s, mn, mx, umn, umx;
            uint64_t count = 0, usum = 0;
            int64_t emin = INT64_MAX, emax = INT64_MIN, amin = INT64_MAX, amax = INT64_MIN;

            for (uint64_t r = 0; r < lens[l]; r++) {
                int64_t v = segment_synth_value(seed, r);
                amin = v < amin ? v : amin;
                amax = v > amax ? v : amax;
                if (v < ranges[i][0] || v > ranges[i][1])
                    continue;
                count++;
                usum += (uint64_t)v;
                emin = v < emin ? v : emin;
                emax = v > emax ? v : emax;
            }
            run(&m, WIRE_AGG_COUNT, "value", ranges[i][0], ranges[i][1], &c);
            run(&m, WIRE_AGG_SUM, "value", ranges[i][0], ranges[i][1], &s);
            run(&m, WIRE_AGG_MIN, "value", ranges[i][0], ranges[i][1], &mn);
            run(&m, WIRE_AGG_MAX, "value", ranges[i][0], ranges[i][1], &mx);
            run(&m, WIRE_AGG_MIN, NULL, 0, 0, &umn);
            run(&m, WIRE_AGG_MAX, NULL, 0, 0, &umx);
            ck_assert_int_eq(c.int_value, (int64_t)count);
            ck_assert_int_eq(s.int_value, (int64_t)usum);
            ck_assert_uint_eq(mn.rows_matched, count);
            ck_assert_uint_eq(mx.rows_matched, count);
            ck_assert_int_eq(mn.int_value, count > 0 ? emin : 0);
            ck_assert_int_eq(mx.int_value, count > 0 ? emax : 0);
            ck_assert_int_eq(umn.int_value, amin);
            ck_assert_int_eq(umx.int_value, amax);
        }
        unmap_segment(&m);
    }
}
END_TEST

START_TEST(test_zone_maps_skip)
{
    struct mapped m;
    struct wire_query_response r;
    uint64_t blocks;

    map_segment(&m, 40000, 16, false, 9);
    blocks = zonemap_block_count(m.zm);
    /* keys of block b lie in [4*4096*b, 4*4096*(b+1)): a range inside block 2. */
    run(&m, WIRE_AGG_SUM, "key", 4 * 4096 * 2 + 10, 4 * 4096 * 2 + 20, &r);
    ck_assert_uint_eq(r.blocks_skipped, blocks - 1);
    ck_assert_uint_eq(r.rows_scanned, ZONEMAP_BLOCK_ROWS);
    /* Everything: no block skipped, rows read without the row filter. */
    run(&m, WIRE_AGG_SUM, "key", INT64_MIN, INT64_MAX, &r);
    ck_assert_uint_eq(r.blocks_skipped, 0);
    ck_assert_uint_eq(r.rows_scanned, 40000);
    ck_assert_uint_eq(r.bytes_scanned, 40000 * 8);
    /* COUNT without a filter reads no column at all. */
    run(&m, WIRE_AGG_COUNT, "", 0, 0, &r);
    ck_assert_int_eq(r.int_value, 40000);
    ck_assert_uint_eq(r.bytes_scanned, 0);
    unmap_segment(&m);
}
END_TEST

START_TEST(test_float)
{
    struct mapped m;
    struct wire_query_response s, mn, mx;
    double sum = 0, emin = INFINITY, emax = -INFINITY;
    const uint64_t rows = 30000, seed = 3;

    map_segment(&m, rows, 24, true, seed);
    for (uint64_t r = 0; r < rows; r++) {
        int64_t k = segment_synth_key(seed, r);
        double v = segment_synth_fvalue(seed, r);
        if (k < 1000 || k > 90000)
            continue;
        sum += v;
        emin = v < emin ? v : emin;
        emax = v > emax ? v : emax;
    }
    run(&m, WIRE_AGG_SUM, "key", 1000, 90000, &s);
    run(&m, WIRE_AGG_MIN, "key", 1000, 90000, &mn);
    run(&m, WIRE_AGG_MAX, "key", 1000, 90000, &mx);
    ck_assert(s.is_float);
    ck_assert_msg(fabs(s.float_value - sum) < 1e-6 * fabs(sum) + 1e-6, "%.17g vs %.17g",
                  s.float_value, sum);
    ck_assert_double_eq(mn.float_value, emin);
    ck_assert_double_eq(mx.float_value, emax);
    unmap_segment(&m);
}
END_TEST

/* Overwrites row r of the float "value" column. */
static void set_fvalue(struct mapped *m, uint64_t r, double v)
{
    int c = segment_find_column(&m->hdr, "value");

    ck_assert_int_ge(c, 0);
    memcpy((char *)m->base + m->hdr.columns[c].offset + r * sizeof(double), &v, sizeof(v));
}

/*
 * NaN follows PostgreSQL: greater than every number. MAX is NaN once a
 * matched row is; MIN skips NaN unless every matched row is NaN; SUM is NaN;
 * COUNT counts the rows. Filtered and unfiltered kernels, and the merge.
 */
START_TEST(test_float_nan)
{
    struct mapped m;
    struct wire_query_response r;
    struct query_plan plan;
    struct query_acc a, b;
    const uint64_t rows = 10000, seed = 5;
    double emin = INFINITY;
    int64_t k3;
    char err[128];

    map_segment(&m, rows, 16, true, seed);
    for (uint64_t i = 0; i < 4; i++)
        set_fvalue(&m, i, NAN);
    set_fvalue(&m, 9000, NAN);
    for (uint64_t i = 4; i < rows; i++)
        if (i != 9000)
            emin = fmin(emin, segment_synth_fvalue(seed, i));
    k3 = segment_synth_key(seed, 3);

    /* Four matched rows, all NaN (the node answered MIN = +inf, MAX = -inf). */
    run(&m, WIRE_AGG_MIN, "key", 0, k3, &r);
    ck_assert_uint_eq(r.rows_matched, 4);
    ck_assert(r.is_float && isnan(r.float_value));
    run(&m, WIRE_AGG_MAX, "key", 0, k3, &r);
    ck_assert(isnan(r.float_value));
    run(&m, WIRE_AGG_SUM, "key", 0, k3, &r);
    ck_assert(isnan(r.float_value));
    run(&m, WIRE_AGG_COUNT, "key", 0, k3, &r);
    ck_assert_int_eq(r.int_value, 4);

    /* A mix, unfiltered: MIN is the least number, MAX and SUM are NaN. */
    run(&m, WIRE_AGG_MIN, "", 0, 0, &r);
    ck_assert_uint_eq(r.rows_matched, rows);
    ck_assert_double_eq(r.float_value, emin);
    run(&m, WIRE_AGG_MAX, "", 0, 0, &r);
    ck_assert(isnan(r.float_value));
    run(&m, WIRE_AGG_SUM, "", 0, 0, &r);
    ck_assert(isnan(r.float_value));

    /* The same mix through the filtered kernel (the range cuts blocks). */
    run(&m, WIRE_AGG_MIN, "key", 1, INT64_MAX, &r);
    ck_assert_double_eq(r.float_value, emin);
    run(&m, WIRE_AGG_MAX, "key", 1, INT64_MAX, &r);
    ck_assert(isnan(r.float_value));

    /* Merging a segment's numbers with another's NaN rows keeps the rule. */
    ck_assert_int_eq(query_plan_make(&m.hdr, WIRE_AGG_MIN, "value", "key", k3 + 1, INT64_MAX,
                                     &plan, err, sizeof(err)),
                     0);
    query_acc_init(&a, true);
    query_scan(&plan, m.base, &m.hdr, m.zm, &a);
    plan.lo = 0;
    plan.hi = k3;
    query_acc_init(&b, true);
    query_scan(&plan, m.base, &m.hdr, m.zm, &b);
    query_acc_merge(&a, &b);
    query_acc_result(&a, WIRE_AGG_MIN, &r);
    ck_assert_double_eq(r.float_value, emin);
    plan.aggregate = WIRE_AGG_MAX;
    query_acc_init(&a, true);
    query_scan(&plan, m.base, &m.hdr, m.zm, &a);
    query_acc_result(&a, WIRE_AGG_MAX, &r);
    ck_assert(isnan(r.float_value));
    unmap_segment(&m);
}
END_TEST

/*
 * Float min and max run in lanes; the answer must still be the row loop's,
 * bit for bit: among +0.0 and -0.0 (equal to <) the first matched row's zero,
 * whichever lane it falls in, and a row-by-row reference elsewhere.
 */
START_TEST(test_float_lanes_exact)
{
    struct mapped m;
    struct wire_query_response r;
    const uint64_t rows = 1000, seed = 9;

    map_segment(&m, rows, 16, true, seed);
    /* Every value positive, then zeros of both signs: -0.0 first (row 37). */
    for (uint64_t i = 0; i < rows; i++)
        set_fvalue(&m, i, fabs(segment_synth_fvalue(seed, i)) + 1.0);
    set_fvalue(&m, 37, -0.0);
    set_fvalue(&m, 50, 0.0);
    set_fvalue(&m, 998, -0.0);
    run(&m, WIRE_AGG_MIN, "", 0, 0, &r);
    ck_assert(r.float_value == 0.0 && signbit(r.float_value));
    set_fvalue(&m, 20, 0.0); /* now +0.0 comes first, in another lane */
    run(&m, WIRE_AGG_MIN, "", 0, 0, &r);
    ck_assert(r.float_value == 0.0 && !signbit(r.float_value));
    /* Filtered: rows from 30 on, so row 20's +0.0 is out and row 37's -0.0 is first. */
    run(&m, WIRE_AGG_MIN, "key", segment_synth_key(seed, 30), INT64_MAX, &r);
    ck_assert(r.float_value == 0.0 && signbit(r.float_value));
    /* Max over all-negative values with zeros on top, the mirror case. */
    for (uint64_t i = 0; i < rows; i++)
        set_fvalue(&m, i, -fabs(segment_synth_fvalue(seed, i)) - 1.0);
    set_fvalue(&m, 3, 0.0);
    set_fvalue(&m, 18, -0.0);
    run(&m, WIRE_AGG_MAX, "", 0, 0, &r);
    ck_assert(r.float_value == 0.0 && !signbit(r.float_value));
    set_fvalue(&m, 3, -1.5);
    run(&m, WIRE_AGG_MAX, "", 0, 0, &r);
    ck_assert(r.float_value == 0.0 && signbit(r.float_value));
    /* Random values and every tail length: the row-by-row reference. */
    for (uint64_t i = 0; i < rows; i++)
        set_fvalue(&m, i, segment_synth_fvalue(seed, i));
    for (uint64_t lo_row = 0; lo_row < 40; lo_row += 3) {
        int64_t lo = segment_synth_key(seed, lo_row);
        double emin = INFINITY, emax = -INFINITY;

        for (uint64_t i = lo_row; i < rows; i++) {
            double x = segment_synth_fvalue(seed, i);
            emin = x < emin ? x : emin;
            emax = x > emax ? x : emax;
        }
        run(&m, WIRE_AGG_MIN, "key", lo, INT64_MAX, &r);
        ck_assert_double_eq(r.float_value, emin);
        run(&m, WIRE_AGG_MAX, "key", lo, INT64_MAX, &r);
        ck_assert_double_eq(r.float_value, emax);
    }
    unmap_segment(&m);
}
END_TEST

/*
 * The float sum's specified order (query.h): per segment, matched row r goes
 * to lane r % 16, lanes fold pairwise, segment sums add in the query's
 * order. Values of wildly different magnitudes make every order give other
 * bits, so the reference below is the only one that matches.
 */
static double ref_fold(const double *lanes)
{
    double t[16];

    memcpy(t, lanes, sizeof(t));
    for (int w = 8; w >= 1; w /= 2)
        for (int j = 0; j < w; j++)
            t[j] = t[2 * j] + t[2 * j + 1];
    return t[0];
}

/* The specified sum of rows of m whose key lies in [lo, hi] (all rows when !filtered). */
static double ref_sum(const struct mapped *m, bool filtered, int64_t lo, int64_t hi,
                      double *ret_row_order)
{
    const struct segment_column *vc = &m->hdr.columns[segment_find_column(&m->hdr, "value")];
    const struct segment_column *kc = &m->hdr.columns[segment_find_column(&m->hdr, "key")];
    double lanes[16] = {0}, row_order = 0;

    for (uint64_t r = 0; r < m->hdr.row_count; r++) {
        double v;
        int64_t k;

        memcpy(&v, (const char *)m->base + vc->offset + r * 8, 8);
        memcpy(&k, (const char *)m->base + kc->offset + r * 8, 8);
        if (filtered && (k < lo || k > hi))
            continue;
        lanes[r % 16] += v;
        row_order += v;
    }
    *ret_row_order = row_order;
    return ref_fold(lanes);
}

/* Wild magnitudes: 1e16, tiny fractions, negative giants, -0.0. */
static void plant_wild(struct mapped *m, uint64_t seed)
{
    for (uint64_t i = 0; i < m->hdr.row_count; i++) {
        double x = segment_synth_fvalue(seed, i);
        switch (i % 7) {
        case 0:
            x *= 1e13;
            break;
        case 3:
            x = -x * 1e12;
            break;
        case 5:
            x = -0.0;
            break;
        default:
            x /= 3.0;
        }
        set_fvalue(m, i, x);
    }
}

START_TEST(test_float_sum_order)
{
    static const uint64_t lens[] = {1, 15, 17, 4097, 20011};
    int differs = 0;

    for (size_t l = 0; l < sizeof(lens) / sizeof(lens[0]); l++) {
        struct mapped m;
        uint64_t seed = 60 + l;

        map_segment(&m, lens[l], 16, true, seed);
        plant_wild(&m, seed);
        /* No filter; a filter that cuts blocks at odd rows; one row; every row. */
        for (int f = 0; f < 4; f++) {
            int64_t lo = f == 1   ? segment_synth_key(seed, lens[l] / 3)
                         : f == 2 ? segment_synth_key(seed, lens[l] - 1)
                                  : INT64_MIN;
            int64_t hi = f == 1 ? segment_synth_key(seed, lens[l] - 1 - lens[l] / 5) : INT64_MAX;
            struct wire_query_response r;
            double row_order, want = ref_sum(&m, f > 0, lo, hi, &row_order);

            run(&m, WIRE_AGG_SUM, f > 0 ? "key" : "", lo, hi, &r);
            ck_assert_msg(memcmp(&r.float_value, &want, sizeof(double)) == 0,
                          "rows %" PRIu64 " filter %d: %a, specified %a (row order %a)", lens[l],
                          f, r.float_value, want, row_order);
            differs += memcmp(&row_order, &want, sizeof(double)) != 0;
        }
        unmap_segment(&m);
    }
    ck_assert_int_gt(differs, 5); /* the data does tell the orders apart */
}
END_TEST

/*
 * One scan over two segments, and each segment into its own accumulator
 * merged in the same order (as a broker merges nodes' answers), give the
 * same bits; a sum of nothing but -0.0 is +0.0, as a row-order sum from
 * +0.0 would be.
 */
START_TEST(test_float_sum_merge)
{
    struct mapped a, b;
    struct query_plan pa, pb;
    struct query_acc one, sa, sb;
    struct wire_query_response r1, r2;
    double ra, rb, ignored, want;
    char err[128];

    map_segment(&a, 9001, 16, true, 71);
    map_segment(&b, 7013, 16, true, 72);
    plant_wild(&a, 71);
    plant_wild(&b, 72);
    ck_assert_int_eq(query_plan_make(&a.hdr, WIRE_AGG_SUM, "value", "", 0, 0, &pa, err,
                                     sizeof(err)), 0);
    ck_assert_int_eq(query_plan_make(&b.hdr, WIRE_AGG_SUM, "value", "", 0, 0, &pb, err,
                                     sizeof(err)), 0);
    query_acc_init(&one, true);
    query_scan(&pa, a.base, &a.hdr, a.zm, &one);
    query_scan(&pb, b.base, &b.hdr, b.zm, &one);
    query_acc_init(&sa, true);
    query_acc_init(&sb, true);
    query_scan(&pa, a.base, &a.hdr, a.zm, &sa);
    query_scan(&pb, b.base, &b.hdr, b.zm, &sb);
    query_acc_merge(&sa, &sb);
    query_acc_result(&one, WIRE_AGG_SUM, &r1);
    query_acc_result(&sa, WIRE_AGG_SUM, &r2);
    ra = ref_sum(&a, false, 0, 0, &ignored);
    rb = ref_sum(&b, false, 0, 0, &ignored);
    want = ra + rb;
    ck_assert(memcmp(&r1.float_value, &want, sizeof(double)) == 0);
    ck_assert(memcmp(&r2.float_value, &want, sizeof(double)) == 0);
    ck_assert_uint_eq(r1.rows_matched, 9001 + 7013);
    for (uint64_t i = 0; i < 9001; i++)
        set_fvalue(&a, i, -0.0);
    run(&a, WIRE_AGG_SUM, "", 0, 0, &r1);
    ck_assert(r1.float_value == 0.0 && !signbit(r1.float_value));
    unmap_segment(&a);
    unmap_segment(&b);
}
END_TEST

START_TEST(test_plan_errors)
{
    struct mapped m;
    struct query_plan plan;
    char err[128];

    map_segment(&m, 100, 40, false, 1);
    ck_assert_int_eq(query_plan_make(&m.hdr, WIRE_AGG_SUM, "nope", "", 0, 0, &plan, err,
                                     sizeof(err)),
                     -ENOENT);
    ck_assert_str_eq(err, "column: no column \"nope\"");
    ck_assert_int_eq(query_plan_make(&m.hdr, WIRE_AGG_SUM, "payload", "", 0, 0, &plan, err,
                                     sizeof(err)),
                     -EINVAL);
    ck_assert_str_eq(err, "column: \"payload\" is bytes; only int64 and float64 can be aggregated");
    ck_assert_int_eq(query_plan_make(&m.hdr, WIRE_AGG_SUM, "value", "payload", 0, 0, &plan, err,
                                     sizeof(err)),
                     -EINVAL);
    ck_assert_int_eq(query_plan_make(&m.hdr, WIRE_AGG_SUM, "value", "ghost", 0, 0, &plan, err,
                                     sizeof(err)),
                     -ENOENT);
    ck_assert_str_eq(err, "filter_column: no column \"ghost\"");
    unmap_segment(&m);
}
END_TEST

START_TEST(test_merge)
{
    struct query_acc a, b;
    struct wire_query_response r;

    query_acc_init(&a, false);
    query_acc_init(&b, false);
    a.matched = 2;
    a.isum = 10;
    a.imin = -3;
    a.imax = 7;
    b.matched = 1;
    b.isum = (uint64_t)-20;
    b.imin = -9;
    b.imax = 1;
    query_acc_merge(&a, &b);
    query_acc_result(&a, WIRE_AGG_SUM, &r);
    ck_assert_int_eq(r.int_value, -10);
    query_acc_result(&a, WIRE_AGG_MIN, &r);
    ck_assert_int_eq(r.int_value, -9);
    query_acc_result(&a, WIRE_AGG_MAX, &r);
    ck_assert_int_eq(r.int_value, 7);
    query_acc_result(&a, WIRE_AGG_COUNT, &r);
    ck_assert_int_eq(r.int_value, 3);
}
END_TEST

/*
 * Direct I/O: the same scans through a buffer pool eight times smaller than
 * the file (4 KiB blocks, so columns start mid-block and every run crosses
 * many blocks) answer exactly what the scans of the mapping answer.
 */
static void pooled_vs_mapped(bool fl, unsigned row_bytes)
{
    const uint64_t rows = 120000, seed = 9;
    struct mkseg_spec spec = {.rows = rows, .row_bytes = row_bytes, .seed = seed,
                                .float_value = fl};
    static const int64_t ranges[][2] = {
        {-10, -1}, {5, 1000}, {16384, 32767}, {100, 150000}, {INT64_MIN, INT64_MAX},
    };
    static const enum wire_aggregate aggs[] = {WIRE_AGG_COUNT, WIRE_AGG_SUM, WIRE_AGG_MIN,
                                               WIRE_AGG_MAX};
    char dir[] = "check_query-XXXXXX", path[64], detail[256], err[128];
    struct segment_header hdr;
    struct bufpool *pool;
    struct bufpool_file *f;
    struct bufpool_stats ps;
    struct zonemap *zm;
    struct stat sb;
    void *base;
    int fd;

    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/s.seg", dir);
    ck_assert_int_eq(mkseg_write(path, &spec, detail, sizeof(detail)), 0);
    fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(fstat(fd, &sb), 0);
    base = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    ck_assert_ptr_ne(base, MAP_FAILED);
    ck_assert_int_eq(segment_parse_header(base, (size_t)sb.st_size, (uint64_t)sb.st_size, &hdr,
                                          detail, sizeof(detail)),
                     0);
    zm = zonemap_build(base, &hdr);
    ck_assert_int_eq(bufpool_new(64 * 4096, 4096, 4, &pool, err, sizeof(err)), 0);
    ck_assert_uint_gt((uint64_t)sb.st_size, 8 * 64 * 4096);
    ck_assert_int_eq(bufpool_file_open(pool, path, &f), 0);
    for (size_t a = 0; a < 4; a++) {
        for (size_t i = 0; i <= sizeof(ranges) / sizeof(ranges[0]); i++) {
            const char *filter = i < sizeof(ranges) / sizeof(ranges[0]) ? "key" : "";
            int64_t lo = filter[0] ? ranges[i][0] : 0, hi = filter[0] ? ranges[i][1] : 0;
            struct query_source src = {.pool = pool, .file = f};
            struct wire_query_response want, got;
            struct query_plan plan;
            struct query_acc am, ap;

            ck_assert_int_eq(query_plan_make(&hdr, aggs[a], "value", filter, lo, hi, &plan, err,
                                             sizeof(err)),
                             0);
            query_acc_init(&am, plan.is_float);
            query_acc_init(&ap, plan.is_float);
            query_scan(&plan, base, &hdr, zm, &am);
            ck_assert_int_eq(query_scan_source(&plan, &src, &hdr, zm, &ap), 0);
            query_acc_result(&am, aggs[a], &want);
            query_acc_result(&ap, aggs[a], &got);
            ck_assert_uint_eq(got.rows_matched, want.rows_matched);
            ck_assert_uint_eq(got.rows_scanned, want.rows_scanned);
            ck_assert_uint_eq(got.blocks_skipped, want.blocks_skipped);
            ck_assert_int_eq(got.int_value, want.int_value);
            ck_assert(memcmp(&got.float_value, &want.float_value, sizeof(double)) == 0);
        }
    }
    bufpool_stats(pool, &ps);
    ck_assert_uint_gt(ps.misses, 0);
    ck_assert_uint_eq(ps.pinned_frames, 0);
    bufpool_file_close(f);
    bufpool_free(pool);
    zonemap_free(zm);
    munmap(base, (size_t)sb.st_size);
    unlink(path);
    rmdir(dir);
}

START_TEST(test_pooled_int)
{
    pooled_vs_mapped(false, 24);
}
END_TEST

START_TEST(test_pooled_float)
{
    pooled_vs_mapped(true, 40);
}
END_TEST

static Suite *query_suite(void)
{
    Suite *s = suite_create("query");
    TCase *tc = tcase_create("scan");

    tcase_add_test(tc, test_int_ranges);
    tcase_add_test(tc, test_int_lanes_and_tails);
    tcase_add_test(tc, test_zone_maps_skip);
    tcase_add_test(tc, test_float);
    tcase_add_test(tc, test_float_nan);
    tcase_add_test(tc, test_float_lanes_exact);
    tcase_add_test(tc, test_float_sum_order);
    tcase_add_test(tc, test_float_sum_merge);
    suite_add_tcase(s, tc);
    tc = tcase_create("pooled");
    tcase_add_test(tc, test_pooled_int);
    tcase_add_test(tc, test_pooled_float);
    suite_add_tcase(s, tc);
    tc = tcase_create("plan");
    tcase_add_test(tc, test_plan_errors);
    tcase_add_test(tc, test_merge);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return harness_run_suite(query_suite());
}
