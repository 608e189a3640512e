/*
 * metrics: a writer for the Prometheus text exposition format, version 0.0.4
 * (Content-Type: text/plain; version=0.0.4; charset=utf-8).
 *
 * Nothing is registered ahead of time: at scrape time the daemon walks its
 * own state and writes each family into a fresh metrics_buf, then sends
 * metrics_buf_data(). Naming follows DESIGN.md section 6: a sluice_ prefix,
 * base units (_bytes, _seconds), counters ending in _total, reasons as labels.
 *
 * Usage, one family at a time (the format requires a family's samples to be
 * contiguous):
 *
 *     metrics_family(b, "sluice_node_rejections_total", "counter", "Requests refused.");
 *     metrics_sample_u64(b, "sluice_node_rejections_total", n,
 *                        (const char *const[]){"reason", "MEM_PRESSURE", NULL});
 *
 * Metric and label names are written by our own code, not by peers, so an
 * invalid one is a programming error and fails an assert(); label values and
 * help text may be anything and are escaped. Allocation failure is fatal
 * (xmalloc). Not thread-safe; one buffer per scrape.
 */
#ifndef SLUICE_METRICS_H
#define SLUICE_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "histogram.h"

struct metrics_buf;

/* Creates an empty buffer. Never returns NULL. */
struct metrics_buf *metrics_buf_new(void);
/* Frees b and its text. NULL is a no-op. */
void metrics_buf_free(struct metrics_buf *b);
/* The text so far, NUL-terminated, owned by b, valid until the next write. */
const char *metrics_buf_data(const struct metrics_buf *b);
/* strlen(metrics_buf_data(b)). */
size_t metrics_buf_len(const struct metrics_buf *b);

/*
 * Writes "# HELP name help" (unless help is NULL) and "# TYPE name type" the
 * first time name is seen in b; later calls with the same name write nothing,
 * so a loop may declare the family before each sample. type is "counter",
 * "gauge", "histogram", "summary" or "untyped". Declaring a family again
 * after another one has started, or with a different type, fails an assert.
 */
void metrics_family(struct metrics_buf *b, const char *name, const char *type, const char *help);

/*
 * Writes one sample line: name{k1="v1",...} value. labels is NULL or a
 * NULL-terminated array of name, value pairs. value may be NaN or infinite
 * (written NaN, +Inf, -Inf); finite values are written with the fewest
 * digits (15 to 17) that read back as the same double.
 */
void metrics_sample(struct metrics_buf *b, const char *name, double value,
                    const char *const *labels);

/* As metrics_sample, with the value written as an exact decimal integer. */
void metrics_sample_u64(struct metrics_buf *b, const char *name, uint64_t value,
                        const char *const *labels);

/*
 * Writes a whole histogram family: HELP and TYPE, then cumulative
 * name_bucket{...,le="x"} lines, name_sum and name_count. Values in h are
 * multiplied by scale (1e-9 turns nanoseconds into seconds). The bounds are
 * the latency set 0.0001, 0.0002, 0.0005, 0.001, ..., 50, 100 (1-2-5 steps
 * from 100 us to 100 s, in scaled units), then +Inf. A histogram bucket that
 * straddles a bound counts as at or below it, so a bucket line may include
 * values up to 2^-HISTOGRAM_SUB_BITS above its bound; overflowed values are
 * counted in +Inf only. labels as for metrics_sample, and may not use "le".
 */
/*
 * A family with a single unlabelled sample, the common case: metrics_family()
 * followed by one metrics_sample()/metrics_sample_u64() of the same name.
 */
void metrics_one(struct metrics_buf *b, const char *name, const char *type, const char *help,
                 double value);
void metrics_one_u64(struct metrics_buf *b, const char *name, const char *type, const char *help,
                     uint64_t value);

void metrics_histogram(struct metrics_buf *b, const char *name, const char *help,
                       const struct histogram *h, double scale, const char *const *labels);

/*
 * As metrics_histogram, with the caller's bounds (in scaled units, finite
 * and strictly increasing; +Inf is always added), for histograms that are
 * not latencies.
 */
void metrics_histogram_bounds(struct metrics_buf *b, const char *name, const char *help,
                              const struct histogram *h, double scale, const double *bounds,
                              size_t nbounds, const char *const *labels);

/*
 * Writes the standard process families that Prometheus client libraries
 * export, read from proc_root ("/proc", or a fixture tree in tests):
 * process_cpu_seconds_total (user + system, <proc>/self/stat),
 * process_resident_memory_bytes and process_virtual_memory_bytes
 * (<proc>/self/stat), process_open_fds (entries of <proc>/self/fd, as
 * client_golang counts them), process_max_fds (the soft "Max open files" of
 * <proc>/self/limits) and process_start_time_seconds (Unix time: btime of
 * <proc>/stat plus the start in <proc>/self/stat). A family whose source
 * cannot be read is left out rather than written as 0.
 */
void metrics_process(struct metrics_buf *b, const char *proc_root);

#endif
