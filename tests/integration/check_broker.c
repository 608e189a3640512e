/*
 * check_broker: the query broker end to end (issue 18), with real
 * processes: a coordinator, a broker and three nodes, two tables
 * ("sales", int64 values; "temps", float64 values), every segment on two
 * nodes. Every answer the broker gives is checked against the direct
 * per-segment answers of the nodes: count and int64 sum (wrapping), min
 * and max exactly, the float sum within merge.h's bound.
 *
 * Then the faults, while queries run: one node SIGSTOPped (its requests
 * time out, or are hedged, and go to the other replica: every answer stays
 * right), one node kill -9'd (connection refused: the same), and both at
 * once, when the segments whose two copies are on those two nodes have no
 * replica left: a 503 that names exactly them, or with allow_partial an
 * answer over the others that lists them. The coordinator's node timeout
 * is long, so that the placement map does not move under the test and the
 * broker meets the dead nodes itself.
 *
 * The coordinator answers table queries itself through the same code (the
 * embedded broker, fed from its own placement map): every aggregate of
 * both tables asked of it gives the same answers, and `sluice-coord query
 * --coordinator ADDR` works against it.
 */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "mkseg.h"
#include "xmalloc.h"
#include "suite.h"

#define N_NODES 3
#define N_SALES 6
#define N_TEMPS 4
#define N_SEGS  (N_SALES + N_TEMPS)

static char *dir, *storage;
static struct harness_proc *coord, *broker, *nodes[N_NODES];
/* Where ask() sends table queries: the broker, or the coordinator, which answers them too. */
static const struct harness_proc *asked;

/* What the nodes answer for one segment, queried directly. */
struct truth {
    char id[WIRE_ID_MAX + 1];
    bool is_float;
    uint64_t count;
    int64_t isum, imin, imax;
    double fsum, fmin, fmax;
    int holder[2]; /* node indexes of its two copies */
};
static struct truth truth[N_SEGS];

static void setup(void)
{
    dir = harness_dir_new("sluice-broker-it");
    storage = xasprintf("%s/storage", dir);
    mkdir(storage, 0755);
}

static void teardown(void)
{
    for (int i = 0; i < N_NODES; i++) {
        if (nodes[i] != NULL)
            (void)harness_proc_signal(nodes[i], SIGCONT);
        harness_proc_free(nodes[i]);
        nodes[i] = NULL;
    }
    harness_proc_free(broker);
    broker = NULL;
    harness_proc_free(coord);
    coord = NULL;
    harness_dir_remove(dir);
    free(dir);
    free(storage);
}

static void make_table(const char *table, int n, bool is_float)
{
    char *d = xasprintf("%s/%s", storage, table);
    char detail[256];

    mkdir(d, 0755);
    for (int i = 0; i < n; i++) {
        /* Rows differ per segment; seeds make the values differ too. */
        struct mkseg_spec spec = {.rows = 3000 + 1700 * (uint64_t)i, .row_bytes = 24,
                                  .seed = 100 + (uint64_t)i + (is_float ? 50 : 0),
                                  .float_value = is_float};
        char *path = xasprintf("%s/%s-%d.seg", d, table, i);

        ck_assert_msg(mkseg_write(path, &spec, detail, sizeof(detail)) == 0, "%s", detail);
        free(path);
    }
    free(d);
}

static int node_index(const char *id)
{
    for (int i = 0; i < N_NODES; i++) {
        char want[16];

        snprintf(want, sizeof(want), "bn%d", i);
        if (strcmp(id, want) == 0)
            return i;
    }
    return -1;
}

/* Reads the placement map and asks each segment's first holder for its answers. */
static void learn_truth(void)
{
    struct wire_placement_map pm;
    static const enum wire_aggregate aggs[] = {WIRE_AGG_COUNT, WIRE_AGG_SUM, WIRE_AGG_MIN,
                                               WIRE_AGG_MAX};

    ck_assert_int_eq(harness_placements(harness_proc_addr(coord), "?since=0", &pm), 200);
    ck_assert_uint_eq(pm.n_segments, N_SEGS);
    for (size_t i = 0; i < pm.n_segments; i++) {
        const struct wire_placed_segment *s = &pm.segments[i];
        struct truth *t = &truth[i];

        snprintf(t->id, sizeof(t->id), "%s", s->segment_id);
        ck_assert_uint_eq(s->n_nodes, 2);
        t->holder[0] = node_index(s->node_ids[0]);
        t->holder[1] = node_index(s->node_ids[1]);
        ck_assert_int_ge(t->holder[0], 0);
        ck_assert_int_ge(t->holder[1], 0);
        t->is_float = strcmp(s->table, "temps") == 0;
        for (size_t a = 0; a < 4; a++) {
            struct wire_query_response r;

            ck_assert_int_eq(harness_query_one(harness_proc_addr(nodes[t->holder[0]]), t->id,
                                               aggs[a], "value", &r, NULL),
                             200);
            ck_assert(r.is_float == (t->is_float && aggs[a] != WIRE_AGG_COUNT));
            switch (aggs[a]) {
            case WIRE_AGG_COUNT:
                t->count = (uint64_t)r.int_value;
                break;
            case WIRE_AGG_SUM:
                t->isum = r.int_value;
                t->fsum = r.float_value;
                break;
            case WIRE_AGG_MIN:
                t->imin = r.int_value;
                t->fmin = r.float_value;
                break;
            default:
                t->imax = r.int_value;
                t->fmax = r.float_value;
                break;
            }
        }
    }
    wire_placement_map_done(&pm);
}

/* The expected answer for table over its segments, leaving out those whose copies are all in dead. */
static void expect(const char *table, enum wire_aggregate agg, const bool dead[N_NODES],
                   struct wire_query_response *ret, size_t *ret_missing)
{
    bool fl = strcmp(table, "temps") == 0, first = true;
    uint64_t isum = 0;
    double fsum = 0;

    memset(ret, 0, sizeof(*ret));
    *ret_missing = 0;
    for (size_t i = 0; i < N_SEGS; i++) {
        const struct truth *t = &truth[i];

        if (t->is_float != fl)
            continue;
        if (dead != NULL && dead[t->holder[0]] && dead[t->holder[1]]) {
            (*ret_missing)++;
            continue;
        }
        ret->rows_matched += t->count;
        isum += (uint64_t)t->isum; /* two's complement wrap, as the nodes sum */
        fsum += t->fsum;
        if (agg == WIRE_AGG_MIN) {
            ret->int_value = first || t->imin < ret->int_value ? t->imin : ret->int_value;
            ret->float_value = first || t->fmin < ret->float_value ? t->fmin : ret->float_value;
        } else if (agg == WIRE_AGG_MAX) {
            ret->int_value = first || t->imax > ret->int_value ? t->imax : ret->int_value;
            ret->float_value = first || t->fmax > ret->float_value ? t->fmax : ret->float_value;
        }
        first = false;
    }
    if (agg == WIRE_AGG_COUNT)
        ret->int_value = (int64_t)ret->rows_matched;
    else if (agg == WIRE_AGG_SUM) {
        ret->int_value = (int64_t)isum;
        ret->float_value = fsum;
    }
    ret->is_float = fl && agg != WIRE_AGG_COUNT;
}

static int ask(const char *table, enum wire_aggregate agg, bool partial,
               struct wire_table_query_response *ret, struct harness_reply *rep)
{
    struct wire_query_request q;

    memset(&q, 0, sizeof(q));
    snprintf(q.table, sizeof(q.table), "%s", table);
    q.aggregate = agg;
    snprintf(q.column, sizeof(q.column), "value");
    q.allow_partial = partial;
    q.timeout_ms = 5000;
    return harness_table_query(harness_proc_addr(asked != NULL ? asked : broker), &q, ret, rep);
}

/* One query through the broker, checked against the direct answers. */
static void check_one(const char *table, enum wire_aggregate agg, const bool dead[N_NODES],
                      uint32_t *ret_retries, uint32_t *ret_hedges)
{
    struct wire_table_query_response r;
    struct wire_query_response want;
    struct harness_reply rep;
    size_t missing;
    int st;

    expect(table, agg, dead, &want, &missing);
    ck_assert_uint_eq(missing, 0);
    st = ask(table, agg, false, &r, &rep);
    ck_assert_msg(st == 200, "%s %s: HTTP %d %s", table, wire_aggregate_name(agg), st,
                  rep.err.message);
    ck_assert_uint_eq(r.n_missing, 0);
    ck_assert(!r.partial);
    ck_assert_uint_eq(r.segments, strcmp(table, "temps") == 0 ? N_TEMPS : N_SALES);
    ck_assert_uint_eq(r.result.rows_matched, want.rows_matched);
    ck_assert(r.result.is_float == want.is_float);
    ck_assert_uint_ge(r.subrequests, r.nodes_asked);
    ck_assert_uint_ge(r.nodes_asked, 1);
    ck_assert_uint_gt(r.placement_version, 0);
    if (!want.is_float) {
        ck_assert_msg(r.result.int_value == want.int_value, "%s %s: %lld, direct %lld", table,
                      wire_aggregate_name(agg), (long long)r.result.int_value,
                      (long long)want.int_value);
    } else if (agg == WIRE_AGG_SUM) {
        /* merge.h: within 2 * gamma(n-1) * sum|r_i| of the direct order's sum. */
        double bound = 0;

        for (size_t i = 0; i < N_SEGS; i++)
            bound += truth[i].is_float ? fabs(truth[i].fsum) : 0;
        bound *= 2 * (N_TEMPS * 0x1p-53) / (1 - N_TEMPS * 0x1p-53);
        ck_assert_msg(fabs(r.result.float_value - want.float_value) <= bound, "%.17g vs %.17g",
                      r.result.float_value, want.float_value);
    } else {
        ck_assert_msg(r.result.float_value == want.float_value, "%s: %.17g, direct %.17g",
                      wire_aggregate_name(agg), r.result.float_value, want.float_value);
    }
    if (ret_retries != NULL)
        *ret_retries += r.retries;
    if (ret_hedges != NULL)
        *ret_hedges += r.hedges;
    wire_table_query_response_done(&r);
}

/* Every aggregate of both tables, checked. */
static void check_all(const bool dead[N_NODES], uint32_t *ret_retries, uint32_t *ret_hedges)
{
    static const enum wire_aggregate aggs[] = {WIRE_AGG_COUNT, WIRE_AGG_SUM, WIRE_AGG_MIN,
                                               WIRE_AGG_MAX};

    for (size_t a = 0; a < 4; a++) {
        check_one("sales", aggs[a], dead, ret_retries, ret_hedges);
        check_one("temps", aggs[a], dead, ret_retries, ret_hedges);
    }
}

static bool broker_ready(void *arg)
{
    struct wire_table_query_response r;
    bool ok;

    (void)arg;
    ok = ask("sales", WIRE_AGG_COUNT, false, &r, NULL) == 200;
    if (ok)
        wire_table_query_response_done(&r);
    return ok;
}

START_TEST(test_broker)
{
    char *co, *out = NULL, *sales = xasprintf("%s/sales", storage),
              *temps = xasprintf("%s/temps", storage);
    const char *bargs[] = {"--poll-interval=100ms", "--attempt-timeout=300ms", NULL};
    const char *cargs[] = {"--node-timeout=60s", NULL};
    bool dead[N_NODES] = {false, false, false};
    uint32_t retries = 0, hedges = 0;
    struct wire_table_query_response r;
    struct wire_query_response want;
    struct harness_reply rep;
    size_t missing;
    int stopped, killed;

    make_table("sales", N_SALES, false);
    make_table("temps", N_TEMPS, true);
    coord = harness_coord_start(dir, cargs);
    ck_assert_ptr_nonnull(coord);
    co = xasprintf("--coordinator=%s", harness_proc_addr(coord));
    for (int i = 0; i < N_NODES; i++) {
        char *data = xasprintf("%s/node%d", dir, i), *id = xasprintf("--node-id=bn%d", i);
        const char *args[] = {co, id, "--report-interval=200ms", NULL};

        nodes[i] = harness_node_start_calm(storage, data, args);
        ck_assert_ptr_nonnull(nodes[i]);
        free(data);
        free(id);
    }
    ck_assert_int_eq(harness_ctl(coord, &out, "import", sales, "--replication=2", NULL), 0);
    free(out);
    ck_assert_int_eq(harness_ctl(coord, &out, "import", temps, "--replication=2", NULL), 0);
    free(out);
    ck_assert_msg(harness_settled(harness_proc_addr(coord), N_SEGS, 30000), "not all LOADED");
    learn_truth();
    broker = harness_broker_start(dir, harness_proc_addr(coord), bargs);
    ck_assert_ptr_nonnull(broker);
    ck_assert_msg(harness_wait_until(broker_ready, NULL, 10000), "broker never answered");

    /* All well: every aggregate of both tables equals the direct answers. */
    check_all(NULL, NULL, NULL);
    /*
     * The coordinator answers the same queries itself, through the same
     * code fed from its own placement map: the same answers, and the same
     * metrics in its /metrics.
     */
    asked = coord;
    check_all(NULL, NULL, NULL);
    asked = NULL;
    ck_assert(harness_metric(harness_proc_addr(coord),
                             "sluice_broker_queries_total{outcome=\"ok\"}") == 8);
    ck_assert(harness_metric(harness_proc_addr(coord),
                             "sluice_broker_subrequests_total{kind=\"primary\"}") >= 8);
    /* Bad requests: an unknown table, a column no segment has. */
    ck_assert_int_eq(ask("nope", WIRE_AGG_SUM, false, &r, &rep), 404);
    ck_assert_msg(strstr(rep.err.message, "\"nope\"") != NULL, "%s", rep.err.message);
    {
        struct wire_query_request q;

        memset(&q, 0, sizeof(q));
        snprintf(q.table, sizeof(q.table), "sales");
        q.aggregate = WIRE_AGG_SUM;
        snprintf(q.column, sizeof(q.column), "nosuch");
        ck_assert_int_eq(harness_table_query(harness_proc_addr(broker), &q, &r, &rep), 400);
        ck_assert_msg(strstr(rep.err.message, "nosuch") != NULL, "%s", rep.err.message);
    }

    /* One node stalled (SIGSTOP) while queries run: still right, by retries or hedges. */
    /* The node the broker chose most so far: its favourite, so surely asked again. */
    stopped = 0;
    for (int i = 1; i < N_NODES; i++) {
        char a[80], b[80];

        snprintf(a, sizeof(a), "sluice_broker_replica_choices_total{node=\"bn%d\"}", i);
        snprintf(b, sizeof(b), "sluice_broker_replica_choices_total{node=\"bn%d\"}", stopped);
        if (harness_metric(harness_proc_addr(broker), a) >
            harness_metric(harness_proc_addr(broker), b))
            stopped = i;
    }
    ck_assert_int_eq(harness_proc_signal(nodes[stopped], SIGSTOP), 0);
    for (int round = 0; round < 3; round++)
        check_all(NULL, &retries, &hedges);
    /*
     * Whether the broker asked the stalled node here depends on its scores
     * (C3 may have moved every group away already): no assertion on
     * retries + hedges. The last phase below asks it for certain.
     */
    (void)retries;
    (void)hedges;
    ck_assert_int_eq(harness_proc_signal(nodes[stopped], SIGCONT), 0);

    /* Another node killed (kill -9): the same. */
    killed = (stopped + 1) % N_NODES;
    harness_proc_kill(nodes[killed]);
    dead[killed] = true;
    retries = 0;
    for (int round = 0; round < 3; round++)
        check_all(dead, &retries, NULL);

    /*
     * Both at once: segments whose two copies are on the killed and the
     * stalled node have no replica left. The answer names them (503), or,
     * with allow_partial, covers the rest and lists them.
     */
    ck_assert_int_eq(harness_proc_signal(nodes[stopped], SIGSTOP), 0);
    dead[stopped] = true;
    for (int t = 0; t < 2; t++) {
        const char *table = t == 0 ? "sales" : "temps";
        enum wire_aggregate agg = t == 0 ? WIRE_AGG_SUM : WIRE_AGG_COUNT;
        int st;

        expect(table, agg, dead, &want, &missing);
        st = ask(table, agg, false, &r, &rep);
        if (missing == 0) {
            ck_assert_int_eq(st, 200);
            ck_assert_int_eq(r.result.int_value, want.int_value);
            wire_table_query_response_done(&r);
            continue;
        }
        ck_assert_msg(st == 503, "%s: HTTP %d", table, st);
        ck_assert_str_eq(rep.err.code, "segments_unavailable");
        for (size_t i = 0; i < N_SEGS; i++)
            if (truth[i].is_float == (t == 1) && dead[truth[i].holder[0]] &&
                dead[truth[i].holder[1]])
                ck_assert_msg(strstr(rep.err.message, truth[i].id) != NULL, "%s not named: %s",
                              truth[i].id, rep.err.message);
        st = ask(table, agg, true, &r, &rep);
        ck_assert_int_eq(st, 200);
        ck_assert(r.partial);
        ck_assert_uint_eq(r.n_missing, missing);
        for (size_t m = 0; m < r.n_missing; m++) {
            bool named = false;

            for (size_t i = 0; i < N_SEGS; i++)
                named = named || (strcmp(truth[i].id, r.missing[m]) == 0 &&
                                  dead[truth[i].holder[0]] && dead[truth[i].holder[1]]);
            ck_assert_msg(named, "%s listed missing, but it has a live replica", r.missing[m]);
        }
        ck_assert_int_eq(r.result.int_value, want.int_value);
        ck_assert_uint_eq(r.result.rows_matched, want.rows_matched);
        wire_table_query_response_done(&r);
    }
    ck_assert_int_eq(harness_proc_signal(nodes[stopped], SIGCONT), 0);
    /* The broker's account in /metrics. */
    ck_assert(harness_metric(harness_proc_addr(broker),
                             "sluice_broker_queries_total{outcome=\"ok\"}") >= 24);
    ck_assert(harness_metric(harness_proc_addr(broker),
                             "sluice_broker_queries_total{outcome=\"unavailable\"}") >= 0);
    free(co);
    free(sales);
    free(temps);
}
END_TEST

/* Runs `sluice-coord query ARGS...` (NULL-terminated); its exit code, output in *out. */
static int cli_query(char **out, ...)
{
    const char *argv[16] = {harness_bin("sluice-coord"), "query"};
    size_t n = 2;
    const char *a;
    va_list ap;

    va_start(ap, out);
    while ((a = va_arg(ap, const char *)) != NULL && n < 15)
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    return harness_run(argv, out);
}

/* The CLI: `query` prints the merged value and the account; errors exit 1 naming the table. */
START_TEST(test_cli)
{
    char *out = NULL, *sales = xasprintf("%s/sales", storage), *br, *co;
    const char *cargs[] = {"--node-timeout=60s", NULL};
    struct wire_query_response want;
    char line[64];
    size_t missing;

    make_table("sales", 2, false);
    coord = harness_coord_start(dir, cargs);
    ck_assert_ptr_nonnull(coord);
    co = xasprintf("--coordinator=%s", harness_proc_addr(coord));
    {
        char *data = xasprintf("%s/node0", dir);
        const char *args[] = {co, "--node-id=bn0", "--report-interval=200ms", NULL};

        nodes[0] = harness_node_start_calm(storage, data, args);
        ck_assert_ptr_nonnull(nodes[0]);
        free(data);
    }
    ck_assert_int_eq(harness_ctl(coord, &out, "import", sales, NULL), 0);
    free(out);
    ck_assert(harness_settled(harness_proc_addr(coord), 2, 30000));
    broker = harness_broker_start(dir, harness_proc_addr(coord), NULL);
    ck_assert_ptr_nonnull(broker);
    ck_assert(harness_wait_until(broker_ready, NULL, 10000));
    /* The truth: one node holds both. */
    {
        struct wire_placement_map pm;

        ck_assert_int_eq(harness_placements(harness_proc_addr(coord), "", &pm), 200);
        for (size_t i = 0; i < pm.n_segments; i++) {
            struct wire_query_response r;

            snprintf(truth[i].id, sizeof(truth[i].id), "%s", pm.segments[i].segment_id);
            truth[i].holder[0] = truth[i].holder[1] = 0;
            ck_assert_int_eq(harness_query_one(harness_proc_addr(nodes[0]), truth[i].id,
                                               WIRE_AGG_SUM, "value", &r, NULL),
                             200);
            truth[i].isum = r.int_value;
            truth[i].count = r.rows_matched;
        }
        for (size_t i = pm.n_segments; i < N_SEGS; i++)
            truth[i].is_float = true; /* not of this table */
        wire_placement_map_done(&pm);
    }
    expect("sales", WIRE_AGG_SUM, NULL, &want, &missing);
    br = xasprintf("--broker=%s", harness_proc_addr(broker));
    ck_assert_int_eq(cli_query(&out, br, "--table=sales", "--agg=sum", NULL),
                     0);
    snprintf(line, sizeof(line), "sum = %lld\n", (long long)want.int_value);
    ck_assert_msg(strncmp(out, line, strlen(line)) == 0, "%s", out);
    ck_assert_msg(strstr(out, "table sales: 2 segments") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "nodes asked 1, requests 1, retries 0, hedges 0") != NULL, "%s",
                  out);
    free(out);
    ck_assert_int_eq(cli_query(&out, br, "--table=sales", "--agg=count",
                                 "--filter=key:0:99", "--json", NULL),
                     0);
    ck_assert_msg(strstr(out, "\"segments\":2,") != NULL && strstr(out, "\"int_value\":") != NULL,
                  "%s", out);
    free(out);
    ck_assert_int_eq(cli_query(&out, br, "--table=nope", NULL), 1);
    ck_assert_msg(strstr(out, "HTTP 404 not_found") != NULL, "%s", out);
    free(out);
    ck_assert_int_eq(cli_query(&out, br, "--table=sales", "--filter=key:5",
                                 NULL),
                     2);
    ck_assert_msg(strstr(out, "--filter") != NULL, "%s", out);
    free(out);
    /* The coordinator answers too (--coordinator): the same sum. */
    {
        char *ca = xasprintf("--coordinator=%s", harness_proc_addr(coord));

        ck_assert_int_eq(cli_query(&out, ca, "--table=sales", "--agg=sum", NULL), 0);
        ck_assert_msg(strncmp(out, line, strlen(line)) == 0, "%s", out);
        ck_assert_msg(strstr(out, "table sales: 2 segments") != NULL, "%s", out);
        free(out);
        free(ca);
    }
    /* The coordinator's address where a broker's is wanted: named, a usage error. */
    {
        char *bad = xasprintf("--broker=%s", harness_proc_addr(coord));

        ck_assert_int_eq(cli_query(&out, bad, "--table=sales", NULL), 2);
        ck_assert_msg(strstr(out, "is a Sluice coordinator, not a broker") != NULL, "%s", out);
        free(out);
        free(bad);
    }
    free(br);
    free(co);
    free(sales);
}
END_TEST

static Suite *broker_suite(void)
{
    Suite *s = suite_create("broker");
    TCase *tc = tcase_create("cluster");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, test_broker);
    tcase_add_test(tc, test_cli);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return harness_run_suite(broker_suite());
}
