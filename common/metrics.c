/*
 * metrics: Prometheus text exposition into a growable buffer. Expected load:
 * one buffer per scrape (every 10-15 s), a few hundred lines, so clarity wins
 * over speed: families are remembered in a plain array searched linearly,
 * and doubles are formatted by trying 15, 16, then 17 significant digits.
 *
 * Formatting uses snprintf("%g") and strtod, which follow LC_NUMERIC; the
 * daemons never call setlocale(), so the decimal point is always '.'.
 */
#include "metrics.h"

#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <unistd.h>

#include "xmalloc.h"

struct metrics_family_seen {
    char *name;
    char *type;
};

struct metrics_buf {
    char *data; /* always NUL-terminated */
    size_t len, cap;
    struct metrics_family_seen *families;
    size_t nfamilies, cap_families;
};

/* 1-2-5 steps from 100 us to 100 s, in seconds. */
static const double metrics_latency_bounds[] = {
    0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1,
    0.2,    0.5,    1,      2,     5,     10,    20,   50,   100,
};

struct metrics_buf *metrics_buf_new(void)
{
    struct metrics_buf *b = xcalloc(1, sizeof(*b));

    b->cap = 4096;
    b->data = xmalloc(b->cap);
    b->data[0] = '\0';
    return b;
}

void metrics_buf_free(struct metrics_buf *b)
{
    if (b == NULL)
        return;
    for (size_t i = 0; i < b->nfamilies; i++) {
        free(b->families[i].name);
        free(b->families[i].type);
    }
    free(b->families);
    free(b->data);
    free(b);
}

const char *metrics_buf_data(const struct metrics_buf *b)
{
    return b->data;
}

size_t metrics_buf_len(const struct metrics_buf *b)
{
    return b->len;
}

/* Makes room for extra more bytes plus the terminating NUL. */
static void metrics_reserve(struct metrics_buf *b, size_t extra)
{
    size_t need = b->len + extra + 1;

    if (need <= b->cap)
        return;
    while (b->cap < need)
        b->cap *= 2;
    b->data = xreallocarray(b->data, b->cap, 1);
}

static void metrics_append(struct metrics_buf *b, const char *s, size_t n)
{
    metrics_reserve(b, n);
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void metrics_puts(struct metrics_buf *b, const char *s)
{
    metrics_append(b, s, strlen(s));
}

static void metrics_putc(struct metrics_buf *b, char c)
{
    metrics_append(b, &c, 1);
}

/* Appends text escaped for a HELP line (\\, \n) or also for a label value (\"). */
static void metrics_put_escaped(struct metrics_buf *b, const char *s, bool quote)
{
    for (; *s != '\0'; s++) {
        if (*s == '\\')
            metrics_puts(b, "\\\\");
        else if (*s == '\n')
            metrics_puts(b, "\\n");
        else if (*s == '"' && quote)
            metrics_puts(b, "\\\"");
        else
            metrics_putc(b, *s);
    }
}

/*
 * [a-zA-Z_:][a-zA-Z0-9_:]* for metric names; label names allow no ':'. Only
 * called from assert(), hence unused under NDEBUG.
 */
__attribute__((unused)) static bool metrics_name_valid(const char *s, bool colon)
{
    if (s == NULL || *s == '\0' || (*s >= '0' && *s <= '9'))
        return false;
    for (; *s != '\0'; s++) {
        char c = *s;

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || (c == ':' && colon)))
            return false;
    }
    return true;
}

/* Formats v as Prometheus reads it: NaN, +Inf, -Inf, or a round-tripping %g. */
static void metrics_format_double(char *out, size_t len, double v)
{
    if (isnan(v)) {
        snprintf(out, len, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(out, len, "%s", v > 0 ? "+Inf" : "-Inf");
        return;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(out, len, "%.*g", prec, v);
        if (strtod(out, NULL) == v)
            return;
    }
}

/*
 * Writes name+suffix, the labels (plus le="..." when le is not NULL), a space
 * and value, and ends the line.
 */
static void metrics_line(struct metrics_buf *b, const char *name, const char *suffix,
                         const char *const *labels, const char *le, const char *value)
{
    bool any = false;

    assert(metrics_name_valid(name, true));
    metrics_puts(b, name);
    metrics_puts(b, suffix);
    for (size_t i = 0; labels != NULL && labels[i] != NULL; i += 2) {
        assert(metrics_name_valid(labels[i], false));
        assert(labels[i + 1] != NULL && "labels must come in name, value pairs");
        assert((le == NULL || strcmp(labels[i], "le") != 0) && "le is the bucket label");
        metrics_putc(b, any ? ',' : '{');
        any = true;
        metrics_puts(b, labels[i]);
        metrics_puts(b, "=\"");
        metrics_put_escaped(b, labels[i + 1], true);
        metrics_putc(b, '"');
    }
    if (le != NULL) {
        metrics_putc(b, any ? ',' : '{');
        any = true;
        metrics_puts(b, "le=\"");
        metrics_puts(b, le);
        metrics_putc(b, '"');
    }
    if (any)
        metrics_putc(b, '}');
    metrics_putc(b, ' ');
    metrics_puts(b, value);
    metrics_putc(b, '\n');
}

void metrics_family(struct metrics_buf *b, const char *name, const char *type, const char *help)
{
    struct metrics_family_seen *f;

    assert(metrics_name_valid(name, true));
    assert(strcmp(type, "counter") == 0 || strcmp(type, "gauge") == 0 ||
           strcmp(type, "histogram") == 0 || strcmp(type, "summary") == 0 ||
           strcmp(type, "untyped") == 0);
    for (size_t i = 0; i < b->nfamilies; i++) {
        if (strcmp(b->families[i].name, name) == 0) {
            assert(i == b->nfamilies - 1 && "a family's samples must be contiguous");
            assert(strcmp(b->families[i].type, type) == 0 && "family declared with two types");
            return;
        }
    }
    if (b->nfamilies == b->cap_families) {
        b->cap_families = b->cap_families == 0 ? 32 : 2 * b->cap_families;
        b->families = xreallocarray(b->families, b->cap_families, sizeof(*b->families));
    }
    f = &b->families[b->nfamilies++];
    f->name = xstrdup(name);
    f->type = xstrdup(type);

    if (help != NULL) {
        metrics_puts(b, "# HELP ");
        metrics_puts(b, name);
        metrics_putc(b, ' ');
        metrics_put_escaped(b, help, false);
        metrics_putc(b, '\n');
    }
    metrics_puts(b, "# TYPE ");
    metrics_puts(b, name);
    metrics_putc(b, ' ');
    metrics_puts(b, type);
    metrics_putc(b, '\n');
}

void metrics_sample(struct metrics_buf *b, const char *name, double value,
                    const char *const *labels)
{
    char v[64];

    metrics_format_double(v, sizeof(v), value);
    metrics_line(b, name, "", labels, NULL, v);
}

void metrics_sample_u64(struct metrics_buf *b, const char *name, uint64_t value,
                        const char *const *labels)
{
    char v[32];

    snprintf(v, sizeof(v), "%" PRIu64, value);
    metrics_line(b, name, "", labels, NULL, v);
}

/*
 * The largest raw (unscaled) value at or below bound, forgiving the rounding
 * of the division (0.0001 / 1e-9 is 100000.00000000001). Returns false when
 * no value is, that is when bound is negative.
 */
static bool metrics_raw_bound(double bound, double scale, uint64_t *ret_raw)
{
    double x = bound / scale, diff;
    uint64_t nearest;

    if (x < 0)
        return false;
    if (x >= 9223372036854775808.0) { /* 2^63: beyond any bucket */
        *ret_raw = UINT64_MAX;
        return true;
    }
    nearest = (uint64_t)(x + 0.5);
    diff = (double)nearest - x;
    if (diff < 0)
        diff = -diff;
    *ret_raw = diff <= x * 1e-9 ? nearest : (uint64_t)x;
    return true;
}

void metrics_histogram_bounds(struct metrics_buf *b, const char *name, const char *help,
                              const struct histogram *h, double scale, const double *bounds,
                              size_t nbounds, const char *const *labels)
{
    size_t nb = histogram_bucket_count(), i = 0;
    uint64_t cumulative = 0, raw;
    char le[64], v[64];

    assert(scale > 0 && isfinite(scale));
    metrics_family(b, name, "histogram", help);
    for (size_t j = 0; j < nbounds; j++) {
        assert(isfinite(bounds[j]) && (j == 0 || bounds[j] > bounds[j - 1]));
        /* Take every bucket whose lowest value is at or below the bound. */
        if (metrics_raw_bound(bounds[j], scale, &raw)) {
            while (i < nb && (i == 0 || histogram_bucket_upper(i - 1) < raw)) {
                cumulative += h->counts[i];
                if (i == nb - 1)
                    cumulative -= h->overflow; /* above every finite bound */
                i++;
            }
        }
        metrics_format_double(le, sizeof(le), bounds[j]);
        snprintf(v, sizeof(v), "%" PRIu64, cumulative);
        metrics_line(b, name, "_bucket", labels, le, v);
    }
    snprintf(v, sizeof(v), "%" PRIu64, h->total);
    metrics_line(b, name, "_bucket", labels, "+Inf", v);
    metrics_format_double(v, sizeof(v), (double)h->sum * scale);
    metrics_line(b, name, "_sum", labels, NULL, v);
    snprintf(v, sizeof(v), "%" PRIu64, h->total);
    metrics_line(b, name, "_count", labels, NULL, v);
}

void metrics_histogram(struct metrics_buf *b, const char *name, const char *help,
                       const struct histogram *h, double scale, const char *const *labels)
{
    metrics_histogram_bounds(b, name, help, h, scale, metrics_latency_bounds,
                             sizeof(metrics_latency_bounds) / sizeof(metrics_latency_bounds[0]),
                             labels);
}

void metrics_one(struct metrics_buf *b, const char *name, const char *type, const char *help,
                 double value)
{
    metrics_family(b, name, type, help);
    metrics_sample(b, name, value, NULL);
}

void metrics_one_u64(struct metrics_buf *b, const char *name, const char *type, const char *help,
                     uint64_t value)
{
    metrics_family(b, name, type, help);
    metrics_sample_u64(b, name, value, NULL);
}

/* Reads all of path (at most len - 1 bytes) into buf. 0 or -1. */
static int metrics_read_file(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "re");
    size_t n;

    if (f == NULL)
        return -1;
    n = fread(buf, 1, len - 1, f);
    fclose(f);
    buf[n] = '\0';
    return n > 0 ? 0 : -1;
}

void metrics_process(struct metrics_buf *b, const char *proc_root)
{
    char path[4096], buf[8192];
    long tick = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    unsigned long long utime, stime, start, vsize;
    long long rss;
    const char *p;
    DIR *d;

    snprintf(path, sizeof(path), "%s/self/stat", proc_root);
    /* Fields after "(comm)", which may hold spaces and parentheses: state is field 3. */
    if (tick > 0 && metrics_read_file(path, buf, sizeof(buf)) == 0 &&
        (p = strrchr(buf, ')')) != NULL &&
        sscanf(p + 1,
               " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d %*d"
               " %llu %llu %lld",
               &utime, &stime, &start, &vsize, &rss) == 5) {
        char sbuf[16384];
        const char *bt;

        metrics_one(b, "process_cpu_seconds_total", "counter",
                    "Total user and system CPU time spent in seconds.",
                    (double)(utime + stime) / (double)tick);
        metrics_one_u64(b, "process_resident_memory_bytes", "gauge",
                        "Resident memory size in bytes.",
                        rss > 0 ? (uint64_t)rss * (uint64_t)page : 0);
        metrics_one_u64(b, "process_virtual_memory_bytes", "gauge",
                        "Virtual memory size in bytes.", vsize);
        snprintf(path, sizeof(path), "%s/stat", proc_root);
        if (metrics_read_file(path, sbuf, sizeof(sbuf)) == 0 &&
            (bt = strstr(sbuf, "\nbtime ")) != NULL)
            metrics_one(b, "process_start_time_seconds", "gauge",
                        "Start time of the process since unix epoch in seconds.",
                        (double)strtoull(bt + 7, NULL, 10) + (double)start / (double)tick);
    }
    snprintf(path, sizeof(path), "%s/self/fd", proc_root);
    if ((d = opendir(path)) != NULL) {
        uint64_t n = 0;
        struct dirent *e;

        while ((e = readdir(d)) != NULL)
            n += e->d_name[0] != '.';
        closedir(d);
        metrics_one_u64(b, "process_open_fds", "gauge", "Number of open file descriptors.", n);
    }
    snprintf(path, sizeof(path), "%s/self/limits", proc_root);
    if (metrics_read_file(path, buf, sizeof(buf)) == 0 &&
        (p = strstr(buf, "Max open files")) != NULL) {
        unsigned long long soft;

        if (sscanf(p + strlen("Max open files"), " %llu", &soft) == 1)
            metrics_one_u64(b, "process_max_fds", "gauge",
                            "Maximum number of open file descriptors.", soft);
    }
}
