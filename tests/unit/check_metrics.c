/*
 * check_metrics: unit tests for common/metrics. Each test builds a buffer
 * and compares it with the exact exposition text Prometheus expects: labelled
 * counters, escaping, special floats and round-tripping doubles, cumulative
 * histogram buckets, and HELP/TYPE written once per family. Invalid names
 * are programming errors and must abort (checked in forked children).
 */
#include <check.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "histogram.h"
#include "metrics.h"
#include "suite.h"

static void test_expect(const struct metrics_buf *b, const char *expected)
{
    ck_assert_str_eq(metrics_buf_data(b), expected);
    ck_assert_uint_eq(metrics_buf_len(b), strlen(expected));
}

START_TEST(test_empty_and_free)
{
    struct metrics_buf *b = metrics_buf_new();

    test_expect(b, "");
    metrics_buf_free(b);
    metrics_buf_free(NULL);
}
END_TEST

START_TEST(test_counter_with_labels)
{
    struct metrics_buf *b = metrics_buf_new();
    const char *name = "sluice_node_admission_rejections_total";

    metrics_family(b, name, "counter", "Queries refused by admission, by reason.");
    metrics_sample_u64(b, name, 3, (const char *const[]){"reason", "MEM_PRESSURE", NULL});
    metrics_sample_u64(b, name, UINT64_MAX, (const char *const[]){"reason", "PSI", NULL});
    metrics_sample_u64(b, name, 0, (const char *const[]){"reason", "CPU", "node", "n1:7070", NULL});
    metrics_family(b, "sluice_node_up", "gauge", "1 while serving.");
    metrics_sample(b, "sluice_node_up", 1, NULL);
    metrics_sample(b, "sluice_node_up", 0, (const char *const[]){NULL});
    test_expect(b, "# HELP sluice_node_admission_rejections_total Queries refused by admission, "
                   "by reason.\n"
                   "# TYPE sluice_node_admission_rejections_total counter\n"
                   "sluice_node_admission_rejections_total{reason=\"MEM_PRESSURE\"} 3\n"
                   "sluice_node_admission_rejections_total{reason=\"PSI\"} 18446744073709551615\n"
                   "sluice_node_admission_rejections_total{reason=\"CPU\",node=\"n1:7070\"} 0\n"
                   "# HELP sluice_node_up 1 while serving.\n"
                   "# TYPE sluice_node_up gauge\n"
                   "sluice_node_up 1\n"
                   "sluice_node_up 0\n");
    metrics_buf_free(b);
}
END_TEST

START_TEST(test_escaping)
{
    struct metrics_buf *b = metrics_buf_new();

    /* HELP escapes \ and newline but not quotes; label values escape all three. */
    metrics_family(b, "m", "gauge", "back\\slash, \"quoted\"\nsecond line");
    metrics_sample(b, "m", 2, (const char *const[]){"path", "C:\\dir \"x\"\nnext", NULL});
    metrics_sample(b, "m", 3, (const char *const[]){"empty", "", NULL});
    metrics_family(b, "no_help", "untyped", NULL);
    metrics_sample(b, "no_help:ratio", 4, NULL);
    test_expect(b, "# HELP m back\\\\slash, \"quoted\"\\nsecond line\n"
                   "# TYPE m gauge\n"
                   "m{path=\"C:\\\\dir \\\"x\\\"\\nnext\"} 2\n"
                   "m{empty=\"\"} 3\n"
                   "# TYPE no_help untyped\n"
                   "no_help:ratio 4\n");
    metrics_buf_free(b);
}
END_TEST

START_TEST(test_special_floats)
{
    struct metrics_buf *b = metrics_buf_new();
    static const double values[] = {
        NAN,  INFINITY, -INFINITY,       0.1,    0.1 + 0.2,          1.0 / 3.0, 100,
        -0.0, 1e21,     1234567890123.0, 2.5e-7, 9007199254740993.0, /* 2^53 + 1 rounds to 2^53 */
    };
    size_t n = sizeof(values) / sizeof(values[0]), i = 0;

    for (size_t j = 0; j < n; j++)
        metrics_sample(b, "a", values[j], NULL);
    test_expect(b, "a NaN\n"
                   "a +Inf\n"
                   "a -Inf\n"
                   "a 0.1\n"
                   "a 0.30000000000000004\n"
                   "a 0.3333333333333333\n"
                   "a 100\n"
                   "a -0\n"
                   "a 1e+21\n"
                   "a 1234567890123\n"
                   "a 2.5e-07\n"
                   "a 9007199254740992\n");
    /* Every value reads back as the same double (strtod takes NaN and +Inf too). */
    for (const char *p = metrics_buf_data(b); (p = strchr(p, ' ')) != NULL; p++, i++) {
        char *end;
        double v = strtod(p + 1, &end);

        ck_assert(*end == '\n');
        ck_assert_uint_lt(i, n);
        if (isnan(values[i]))
            ck_assert(isnan(v));
        else
            ck_assert(v == values[i] && signbit(v) == signbit(values[i]));
    }
    ck_assert_uint_eq(i, n);
    metrics_buf_free(b);
}
END_TEST

START_TEST(test_histogram_default_bounds)
{
    struct metrics_buf *b = metrics_buf_new();
    struct histogram h;
    static const uint64_t ns[] = {
        50000,      100000,          150000,           1000000, 3000000,
        2000000000, 200000000000ull, 2000000000000ull, /* above HISTOGRAM_MAX_VALUE: overflow, +Inf
                                                          only */
    };

    histogram_reset(&h);
    for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++)
        histogram_record(&h, ns[i]);
    metrics_histogram(b, "sluice_node_query_duration_seconds", "Query latency.", &h, 1e-9,
                      (const char *const[]){"endpoint", "query", NULL});
    /* Values equal to a bound count at it (2 / 1e-9 is 1999999999.9999998). */
#define B "sluice_node_query_duration_seconds_bucket{endpoint=\"query\",le="
    test_expect(b, "# HELP sluice_node_query_duration_seconds Query latency.\n"
                   "# TYPE sluice_node_query_duration_seconds histogram\n" B "\"0.0001\"} 2\n" B
                   "\"0.0002\"} 3\n" B "\"0.0005\"} 3\n" B "\"0.001\"} 4\n" B "\"0.002\"} 4\n" B
                   "\"0.005\"} 5\n" B "\"0.01\"} 5\n" B "\"0.02\"} 5\n" B "\"0.05\"} 5\n" B
                   "\"0.1\"} 5\n" B "\"0.2\"} 5\n" B "\"0.5\"} 5\n" B "\"1\"} 5\n" B "\"2\"} 6\n" B
                   "\"5\"} 6\n" B "\"10\"} 6\n" B "\"20\"} 6\n" B "\"50\"} 6\n" B "\"100\"} 6\n" B
                   "\"+Inf\"} 8\n"
                   "sluice_node_query_duration_seconds_sum{endpoint=\"query\"} 2202.0043\n"
                   "sluice_node_query_duration_seconds_count{endpoint=\"query\"} 8\n");
#undef B
    metrics_buf_free(b);
}
END_TEST

START_TEST(test_histogram_custom_bounds)
{
    struct metrics_buf *b = metrics_buf_new();
    struct histogram h;
    static const double bounds[] = {0, 10, 1000};

    histogram_reset(&h);
    /* 1000 shares a 16-wide bucket with 999, so 999 and 1007 both count at 1000. */
    static const uint64_t v[] = {0, 5, 10, 11, 999, 1007, 1008, 5000};
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
        histogram_record(&h, v[i]);
    metrics_histogram_bounds(b, "sluice_node_segment_size_bytes", "Segment sizes.", &h, 1.0, bounds,
                             3, NULL);
    test_expect(b, "# HELP sluice_node_segment_size_bytes Segment sizes.\n"
                   "# TYPE sluice_node_segment_size_bytes histogram\n"
                   "sluice_node_segment_size_bytes_bucket{le=\"0\"} 1\n"
                   "sluice_node_segment_size_bytes_bucket{le=\"10\"} 3\n"
                   "sluice_node_segment_size_bytes_bucket{le=\"1000\"} 6\n"
                   "sluice_node_segment_size_bytes_bucket{le=\"+Inf\"} 8\n"
                   "sluice_node_segment_size_bytes_sum 8040\n"
                   "sluice_node_segment_size_bytes_count 8\n");
    metrics_buf_free(b);
}
END_TEST

START_TEST(test_histogram_empty)
{
    struct metrics_buf *b = metrics_buf_new();
    struct histogram h;
    static const double bounds[] = {0.5};

    histogram_reset(&h);
    metrics_histogram_bounds(b, "e_seconds", "E.", &h, 1e-9, bounds, 1, NULL);
    test_expect(b, "# HELP e_seconds E.\n"
                   "# TYPE e_seconds histogram\n"
                   "e_seconds_bucket{le=\"0.5\"} 0\n"
                   "e_seconds_bucket{le=\"+Inf\"} 0\n"
                   "e_seconds_sum 0\n"
                   "e_seconds_count 0\n");
    metrics_buf_free(b);
}
END_TEST

START_TEST(test_family_once)
{
    struct metrics_buf *b = metrics_buf_new();
    struct histogram h;
    static const double bounds[] = {1};
    static const char *const reasons[] = {"MEM_PRESSURE", "PSI", "QUEUE_FULL"};

    for (size_t i = 0; i < 3; i++) {
        metrics_family(b, "r_total", "counter", "R.");
        metrics_sample_u64(b, "r_total", i, (const char *const[]){"reason", reasons[i], NULL});
    }
    histogram_reset(&h);
    histogram_record(&h, 500000000);
    metrics_histogram_bounds(b, "l_seconds", "L.", &h, 1e-9, bounds, 1,
                             (const char *const[]){"op", "get", NULL});
    metrics_histogram_bounds(b, "l_seconds", "L.", &h, 1e-9, bounds, 1,
                             (const char *const[]){"op", "put", NULL});
    test_expect(b, "# HELP r_total R.\n"
                   "# TYPE r_total counter\n"
                   "r_total{reason=\"MEM_PRESSURE\"} 0\n"
                   "r_total{reason=\"PSI\"} 1\n"
                   "r_total{reason=\"QUEUE_FULL\"} 2\n"
                   "# HELP l_seconds L.\n"
                   "# TYPE l_seconds histogram\n"
                   "l_seconds_bucket{op=\"get\",le=\"1\"} 1\n"
                   "l_seconds_bucket{op=\"get\",le=\"+Inf\"} 1\n"
                   "l_seconds_sum{op=\"get\"} 0.5\n"
                   "l_seconds_count{op=\"get\"} 1\n"
                   "l_seconds_bucket{op=\"put\",le=\"1\"} 1\n"
                   "l_seconds_bucket{op=\"put\",le=\"+Inf\"} 1\n"
                   "l_seconds_sum{op=\"put\"} 0.5\n"
                   "l_seconds_count{op=\"put\"} 1\n");
    metrics_buf_free(b);
}
END_TEST

START_TEST(test_growth)
{
    struct metrics_buf *b = metrics_buf_new();
    char value[32];
    size_t expected_len = 0;

    /* Well past the initial allocation, so the buffer must grow and stay intact. */
    for (int i = 0; i < 5000; i++) {
        snprintf(value, sizeof(value), "v%d", i);
        metrics_sample_u64(b, "g", (uint64_t)i, (const char *const[]){"k", value, NULL});
        expected_len += strlen("g{k=\"\"} \n") + 2 * strlen(value) - 1;
    }
    ck_assert_uint_eq(metrics_buf_len(b), expected_len);
    ck_assert_uint_eq(strlen(metrics_buf_data(b)), expected_len);
    ck_assert(strstr(metrics_buf_data(b), "g{k=\"v4999\"} 4999\n") != NULL);
    metrics_buf_free(b);
}
END_TEST

#ifndef NDEBUG
START_TEST(test_bad_metric_name)
{
    struct metrics_buf *b = metrics_buf_new();

    metrics_sample(b, "1bad", 1, NULL);
}
END_TEST

START_TEST(test_bad_label_name)
{
    struct metrics_buf *b = metrics_buf_new();

    metrics_sample(b, "ok", 1, (const char *const[]){"a:b", "v", NULL});
}
END_TEST

START_TEST(test_family_not_contiguous)
{
    struct metrics_buf *b = metrics_buf_new();

    metrics_family(b, "a", "gauge", "A.");
    metrics_family(b, "b", "gauge", "B.");
    metrics_family(b, "a", "gauge", "A.");
}
END_TEST
#endif

START_TEST(test_one)
{
    struct metrics_buf *b = metrics_buf_new();

    metrics_one_u64(b, "x_bytes", "gauge", "Bytes.", 42);
    metrics_one(b, "y_ratio", "gauge", "A ratio.", 0.5);
    ck_assert_str_eq(metrics_buf_data(b), "# HELP x_bytes Bytes.\n# TYPE x_bytes gauge\nx_bytes 42\n"
                                          "# HELP y_ratio A ratio.\n# TYPE y_ratio gauge\n"
                                          "y_ratio 0.5\n");
    metrics_buf_free(b);
}
END_TEST


/* Writes text into dir/name. */
static void put(const char *dir, const char *name, const char *text)
{
    char path[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

START_TEST(test_process_fixture)
{
    char root[] = "/tmp/check-metrics-proc.XXXXXX", path[512];
    struct metrics_buf *b = metrics_buf_new();
    long tick = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    char stat[512], want[256];

    ck_assert_ptr_nonnull(mkdtemp(root));
    snprintf(path, sizeof(path), "%s/self", root);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/self/fd", root);
    mkdir(path, 0755);
    put(path, "0", "");
    put(path, "1", "");
    put(path, "7", "");
    /* utime 3 s, stime 1.5 s, started 10 s after boot, 1000 pages resident; a comm with ") (". */
    snprintf(stat, sizeof(stat),
             "4242 (sluice) (x)) S 1 4242 4242 0 -1 4194560 100 0 0 0 %ld %ld 0 0 20 0 3 0 %ld "
             "123456789 1000 18446744073709551615\n",
             3 * tick, 3 * tick / 2, 10 * tick);
    snprintf(path, sizeof(path), "%s/self", root);
    put(path, "stat", stat);
    put(path, "limits", "Limit                     Soft Limit           Hard Limit           Units\n"
                        "Max cpu time              unlimited            unlimited            seconds\n"
                        "Max open files            4096                 524288               files\n");
    put(root, "stat", "cpu  1 2 3 4\nintr 0\nbtime 1700000000\nprocesses 9\n");
    metrics_process(b, root);
    ck_assert_msg(strstr(metrics_buf_data(b), "# TYPE process_cpu_seconds_total counter\n"
                                              "process_cpu_seconds_total 4.5\n") != NULL,
                  "%s", metrics_buf_data(b));
    snprintf(want, sizeof(want), "process_resident_memory_bytes %ld\n", 1000 * page);
    ck_assert_ptr_nonnull(strstr(metrics_buf_data(b), want));
    ck_assert_ptr_nonnull(strstr(metrics_buf_data(b), "process_virtual_memory_bytes 123456789\n"));
    ck_assert_ptr_nonnull(strstr(metrics_buf_data(b), "process_start_time_seconds 1700000010\n"));
    ck_assert_ptr_nonnull(strstr(metrics_buf_data(b), "# TYPE process_open_fds gauge\nprocess_open_fds 3\n"));
    ck_assert_ptr_nonnull(strstr(metrics_buf_data(b), "process_max_fds 4096\n"));
    metrics_buf_free(b);
    snprintf(path, sizeof(path), "rm -rf '%s'", root);
    ck_assert_int_eq(system(path), 0);
}
END_TEST

START_TEST(test_process_missing)
{
    struct metrics_buf *b = metrics_buf_new();

    /* Nothing readable: nothing written, rather than zeros that look real. */
    metrics_process(b, "/nonexistent-proc-root");
    ck_assert_str_eq(metrics_buf_data(b), "");
    metrics_buf_free(b);
}
END_TEST

START_TEST(test_process_live)
{
    struct metrics_buf *b = metrics_buf_new();
    const char *d;

    metrics_process(b, "/proc");
    d = metrics_buf_data(b);
    ck_assert_ptr_nonnull(strstr(d, "\nprocess_resident_memory_bytes "));
    ck_assert_ptr_nonnull(strstr(d, "\nprocess_start_time_seconds 1"));
    ck_assert_ptr_nonnull(strstr(d, "\nprocess_open_fds "));
    ck_assert_ptr_nonnull(strstr(d, "\nprocess_max_fds "));
    metrics_buf_free(b);
}
END_TEST

static Suite *metrics_suite(void)
{
    Suite *s = suite_create("metrics");
    const char *ck_fork = getenv("CK_FORK");
    TCase *tc;

    tc = tcase_create("empty_and_free");
    tcase_add_test(tc, test_empty_and_free);
    tcase_add_test(tc, test_one);
    suite_add_tcase(s, tc);
    tc = tcase_create("counter_with_labels");
    tcase_add_test(tc, test_counter_with_labels);
    suite_add_tcase(s, tc);
    tc = tcase_create("escaping");
    tcase_add_test(tc, test_escaping);
    suite_add_tcase(s, tc);
    tc = tcase_create("special_floats");
    tcase_add_test(tc, test_special_floats);
    suite_add_tcase(s, tc);
    tc = tcase_create("histogram");
    tcase_add_test(tc, test_histogram_default_bounds);
    tcase_add_test(tc, test_histogram_custom_bounds);
    tcase_add_test(tc, test_histogram_empty);
    suite_add_tcase(s, tc);
    tc = tcase_create("family_once");
    tcase_add_test(tc, test_family_once);
    suite_add_tcase(s, tc);
    tc = tcase_create("process");
    tcase_add_test(tc, test_process_fixture);
    tcase_add_test(tc, test_process_missing);
    tcase_add_test(tc, test_process_live);
    suite_add_tcase(s, tc);
    tc = tcase_create("growth");
    tcase_add_test(tc, test_growth);
    suite_add_tcase(s, tc);
    /* An abort can only be caught in a forked child, and only with asserts on. */
#ifndef NDEBUG
    if (ck_fork == NULL || strcmp(ck_fork, "no") != 0) {
        tc = tcase_create("invalid_names_abort");
        tcase_add_test_raise_signal(tc, test_bad_metric_name, SIGABRT);
        tcase_add_test_raise_signal(tc, test_bad_label_name, SIGABRT);
        tcase_add_test_raise_signal(tc, test_family_not_contiguous, SIGABRT);
        suite_add_tcase(s, tc);
    }
#else
    (void)ck_fork;
#endif
    return s;
}

int main(void)
{
    return harness_run_suite(metrics_suite());
}
