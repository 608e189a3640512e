/*
 * wss: residency syscalls, the smoothed working-set estimator and a
 * read-only DAMON probe. Expected load: the sampler updates the estimator
 * once per tick (100 ms) and refreshes residency per segment every few
 * seconds; the probe runs once at start-up when DAMON is asked for.
 */
#include "wss.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "xmalloc.h"

/* cachestat(2) is 451 in the unified syscall table, on every arch but alpha. */
#if !defined(__NR_cachestat) && !defined(__alpha__)
#define __NR_cachestat 451
#endif

/* The kernel's struct cachestat_range and struct cachestat (uapi/linux/mman.h). */
struct wss_cachestat_range {
    uint64_t off;
    uint64_t len;
};

struct wss_cachestat {
    uint64_t nr_cache;
    uint64_t nr_dirty;
    uint64_t nr_writeback;
    uint64_t nr_evicted;
    uint64_t nr_recently_evicted;
};

#define WSS_MINCORE_VEC   4096
#define WSS_DAMON_MAX     1024
#define WSS_DAMON_FILE_SZ 64

static size_t wss_page_size(void)
{
    long ps = sysconf(_SC_PAGESIZE);

    return ps > 0 ? (size_t)ps : 4096;
}

int wss_resident_bytes(const void *addr, size_t len, uint64_t *ret)
{
    unsigned char vec[WSS_MINCORE_VEC];
    size_t ps = wss_page_size(), pages, done = 0;
    uintptr_t base = (uintptr_t)addr;
    uint64_t resident = 0;

    if (base % ps != 0 || len > UINTPTR_MAX - base - (ps - 1))
        return -EINVAL;
    pages = (len + ps - 1) / ps;
    while (done < pages) {
        size_t n = pages - done < WSS_MINCORE_VEC ? pages - done : WSS_MINCORE_VEC;

        if (mincore((void *)(base + done * ps), n * ps, vec) < 0)
            return -errno;
        for (size_t i = 0; i < n; i++)
            resident += vec[i] & 1;
        done += n;
    }
    *ret = resident * ps;
    return 0;
}

int wss_cachestat_bytes(int fd, uint64_t off, uint64_t len, uint64_t *ret_cached)
{
#ifdef __NR_cachestat
    struct wss_cachestat_range range = {.off = off, .len = len};
    struct wss_cachestat cs;

    memset(&cs, 0, sizeof(cs));
    if (syscall(__NR_cachestat, fd, &range, &cs, 0) < 0)
        return -errno;
    *ret_cached = cs.nr_cache * wss_page_size();
    return 0;
#else
    return -ENOSYS;
#endif
}

const char *wss_source_name(enum wss_source src)
{
    switch (src) {
    case WSS_SOURCE_NONE:
        return "none";
    case WSS_SOURCE_CGROUP:
        return "cgroup";
    case WSS_SOURCE_TOUCHED:
        return "touched";
    case WSS_SOURCE_RESIDENT:
        return "resident";
    case WSS_SOURCE_MGLRU:
        return "mglru";
    case WSS_SOURCE_DAMON:
        return "damon";
    }
    return "unknown";
}

struct wss_estimator {
    double tau_ms;
    double rise_alpha;
    double value; /* the smoothed estimate, bytes */
    uint64_t raw;
    uint64_t last_ms;
    enum wss_source source;
    int started;
};

struct wss_estimator *wss_new(const struct wss_config *cfg)
{
    struct wss_estimator *est = xcalloc(1, sizeof(*est));

    est->tau_ms = WSS_DEFAULT_DECAY_TAU_MS;
    est->rise_alpha = WSS_DEFAULT_RISE_ALPHA;
    if (cfg != NULL) {
        if (cfg->decay_tau_ms > 0)
            est->tau_ms = (double)cfg->decay_tau_ms;
        if (cfg->rise_alpha > 0.0 && cfg->rise_alpha <= 1.0)
            est->rise_alpha = cfg->rise_alpha;
    }
    return est;
}

void wss_free(struct wss_estimator *est)
{
    free(est);
}

/* Converts a non-negative byte count held in a double, saturating. */
static uint64_t wss_round(double v)
{
    if (!(v > 0.0))
        return 0;
    if (v >= 18446744073709551615.0)
        return UINT64_MAX;
    return (uint64_t)(v + 0.5);
}

uint64_t wss_update(struct wss_estimator *est, const struct wss_inputs *in, uint64_t now_ms)
{
    uint64_t raw = 0, res;
    enum wss_source src = WSS_SOURCE_NONE;

    if (in->cgroup_usage != WSS_UNKNOWN && in->inactive_file != WSS_UNKNOWN) {
        uint64_t cg =
            in->cgroup_usage > in->inactive_file ? in->cgroup_usage - in->inactive_file : 0;

        if (cg > raw) {
            raw = cg;
            src = WSS_SOURCE_CGROUP;
        }
    }
    if (in->touched > raw) {
        raw = in->touched;
        src = WSS_SOURCE_TOUCHED;
    }
    if (__builtin_add_overflow(in->resident, in->anon, &res))
        res = UINT64_MAX;
    if (res > raw) {
        raw = res;
        src = WSS_SOURCE_RESIDENT;
    }
    if (in->mglru > raw) {
        raw = in->mglru;
        src = WSS_SOURCE_MGLRU;
    }
    if (in->damon > raw) {
        raw = in->damon;
        src = WSS_SOURCE_DAMON;
    }

    if (!est->started) {
        est->value = (double)raw;
        est->started = 1;
    } else if ((double)raw >= est->value) {
        if (est->rise_alpha >= 1.0)
            est->value = (double)raw;
        else
            est->value += est->rise_alpha * ((double)raw - est->value);
    } else {
        double dt = now_ms > est->last_ms ? (double)(now_ms - est->last_ms) : 0.0;

        est->value -= -expm1(-dt / est->tau_ms) * (est->value - (double)raw);
    }
    est->raw = raw;
    est->source = src;
    est->last_ms = now_ms;
    return wss_round(est->value);
}

uint64_t wss_estimate(const struct wss_estimator *est)
{
    return wss_round(est->value);
}

uint64_t wss_raw(const struct wss_estimator *est)
{
    return est->raw;
}

enum wss_source wss_source(const struct wss_estimator *est)
{
    return est->source;
}

/*
 * Reads a small sysfs file into buf (NUL-terminated, trailing newline
 * removed). Returns 0 or a negative errno.
 */
static int wss_read_small(const char *path, char *buf, size_t size)
{
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return -errno;
    do
        n = read(fd, buf, size - 1);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        int r = -errno;

        close(fd);
        return r;
    }
    close(fd);
    buf[n] = '\0';
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    return 0;
}

int wss_damon_probe(const char *sys_root, struct wss_damon_info *ret)
{
    char path[PATH_MAX], buf[WSS_DAMON_FILE_SZ], *end;
    struct wss_damon_info info = {0};
    unsigned long n;
    int r;

    if (snprintf(path, sizeof(path), "%s/kernel/mm/damon/admin/kdamonds/nr_kdamonds", sys_root) >=
        (int)sizeof(path))
        return -ENAMETOOLONG;
    r = wss_read_small(path, buf, sizeof(buf));
    if (r == -ENOENT || r == -ENOTDIR) {
        *ret = info;
        return 0;
    }
    if (r < 0)
        return r;
    errno = 0;
    n = strtoul(buf, &end, 10);
    if (errno != 0 || end == buf || *end != '\0' || buf[0] == '-' || n > UINT_MAX)
        return -EIO;
    info.present = true;
    info.nr_kdamonds = (unsigned)n;
    for (unsigned i = 0; i < info.nr_kdamonds && i < WSS_DAMON_MAX; i++) {
        if (snprintf(path, sizeof(path), "%s/kernel/mm/damon/admin/kdamonds/%u/state", sys_root,
                     i) >= (int)sizeof(path))
            return -ENAMETOOLONG;
        r = wss_read_small(path, buf, sizeof(buf));
        if (r < 0)
            return r;
        if (strcmp(buf, "on") == 0)
            info.nr_running++;
        else if (strcmp(buf, "off") != 0)
            return -EIO;
    }
    *ret = info;
    return info.nr_running > 0 ? -EBUSY : 0;
}

unsigned wss_touch_add(struct wss_touch *t, uint64_t now_s, uint64_t bytes)
{
    unsigned cleared = 0;

    if (now_s > t->second && now_s - t->second >= WSS_TOUCH_SLOTS) {
        /* Every slot is older than the window: clear each once and jump. */
        memset(t->slot, 0, sizeof(t->slot));
        t->second = now_s;
        t->slot[now_s % WSS_TOUCH_SLOTS] = bytes;
        return WSS_TOUCH_SLOTS;
    }
    while (t->second < now_s) {
        t->second++;
        t->slot[t->second % WSS_TOUCH_SLOTS] = 0;
        cleared++;
    }
    t->slot[t->second % WSS_TOUCH_SLOTS] += bytes;
    return cleared;
}

uint64_t wss_touch_sum(struct wss_touch *t, uint64_t now_s)
{
    uint64_t sum = 0;

    (void)wss_touch_add(t, now_s, 0);
    for (unsigned i = 0; i < WSS_TOUCH_SLOTS; i++)
        sum += t->slot[i];
    return sum;
}
