/*
 * wss: the node's working-set size, the memory it would need to keep to
 * serve its current load without refaulting.
 *
 * No single kernel number is the working set, so the estimator takes the
 * largest of three lower bounds, each wrong in its own way:
 *   cgroup    usage - inactive_file: charged memory minus the page cache the
 *             kernel itself considers cold (too high right after a scan that
 *             activated pages; unknown without a memory cgroup);
 *   touched   bytes the node's queries touched in the last window, from its
 *             own accounting (blind to memory the node did not count);
 *   resident  resident bytes of the mapped segments (cachestat(2), else
 *             mincore(2)) plus the anonymous bytes the node holds (indexes):
 *             what is in memory now, hot or not.
 * The raw maximum is smoothed asymmetrically: a rise is taken at once (or
 * with a high alpha), a fall decays with a time constant (default 30 s), so
 * one quiet interval does not make the node look empty and invite load it
 * would have to evict its working set for.
 *
 * Residency helpers read the page cache state of one mapping or one file;
 * they are blocking syscalls proportional to the range (one byte per page for
 * mincore), so run them on the sampler thread or a worker, not on the loop.
 *
 * DAMON is opt-in and only probed here: wss_damon_probe() reads the DAMON
 * sysfs admin tree and reports how many kdamonds exist and run. The node's
 * own kdamond (--damon) is node/damon.h's; the multigen LRU's young
 * generations are node/mglru.h's. Both arrive here as inputs.
 *
 * The estimator is not thread-safe; the residency helpers and the probe keep
 * no state and are.
 */
#ifndef SLUICE_WSS_H
#define SLUICE_WSS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* An input the caller does not know (no memory cgroup, no memory.stat). */
#define WSS_UNKNOWN UINT64_MAX

#define WSS_DEFAULT_DECAY_TAU_MS 30000
#define WSS_DEFAULT_RISE_ALPHA   1.0

/*
 * Counts the resident pages of [addr, addr + len) with mincore(2) and
 * returns their size in bytes in *ret. addr must be page-aligned; len is
 * rounded up to whole pages. Works in chunks through a fixed 4 KiB vector, so
 * a terabyte mapping needs no large allocation (one syscall per 16 MiB with
 * 4 KiB pages). Returns 0, -EINVAL (addr not aligned, or addr + len wraps) or
 * -ENOMEM (part of the range is not mapped).
 */
int wss_resident_bytes(const void *addr, size_t len, uint64_t *ret);

/*
 * The page-cache bytes of [off, off + len) of the file open as fd, via
 * cachestat(2) (Linux 6.5+): nr_cache pages times the page size. len 0 means
 * to the end of the file. Returns 0, -ENOSYS (kernel too old, or a seccomp
 * filter refuses it) or -EOPNOTSUPP (hugetlbfs), on which callers fall back
 * to mmap + wss_resident_bytes(), or another negative errno (-EBADF...).
 */
int wss_cachestat_bytes(int fd, uint64_t off, uint64_t len, uint64_t *ret_cached);

enum wss_source {
    WSS_SOURCE_NONE = 0, /* no update yet, or every input was zero/unknown */
    WSS_SOURCE_CGROUP,   /* usage - inactive_file */
    WSS_SOURCE_TOUCHED,  /* bytes touched by queries in the last window */
    WSS_SOURCE_RESIDENT, /* resident segment bytes + anonymous bytes */
    WSS_SOURCE_MGLRU,    /* the memcg's youngest multigen-LRU generations (node/mglru.h) */
    WSS_SOURCE_DAMON,    /* regions of the node's own pid DAMON saw accessed (node/damon.h) */
};

/* "none", "cgroup", "touched", "resident", "mglru", "damon". */
const char *wss_source_name(enum wss_source src);

struct wss_config {
    uint64_t decay_tau_ms; /* time constant of a fall; 0 = 30000 */
    double rise_alpha;     /* weight of a rise per update, (0, 1]; 0 = 1.0 (take at once) */
};

struct wss_inputs {
    uint64_t cgroup_usage;  /* bytes charged to the cgroup, or WSS_UNKNOWN */
    uint64_t inactive_file; /* the cgroup's inactive_file bytes, or WSS_UNKNOWN */
    uint64_t touched;       /* bytes touched by queries in the last window */
    uint64_t resident;      /* resident bytes of the mapped segments */
    uint64_t anon;          /* anonymous bytes held by the node (indexes) */
    uint64_t mglru;         /* young-generation bytes of the memcg (0: no MGLRU) */
    uint64_t damon;         /* accessed bytes of the node's own kdamond (0: none) */
};

struct wss_estimator;

/* cfg may be NULL for the defaults. Never fails. */
struct wss_estimator *wss_new(const struct wss_config *cfg);

/* NULL-safe. */
void wss_free(struct wss_estimator *est);

/*
 * Feeds one observation taken at now_ms (any monotonic milliseconds) and
 * returns the new estimate. raw = max(usage - inactive_file, touched,
 * resident + anon, mglru, damon); the cgroup term is used only when both of its inputs are
 * known (usage alone counts cold page cache and would overstate the working
 * set). The first update takes raw as is. After that, when raw is at or
 * above the estimate: est += rise_alpha * (raw - est); when below:
 * est -= (1 - exp(-dt / tau)) * (est - raw), with dt the time since the
 * previous update (0 if now_ms went backwards). Sums saturate.
 */
uint64_t wss_update(struct wss_estimator *est, const struct wss_inputs *in, uint64_t now_ms);

/* The smoothed estimate in bytes; 0 before the first update. */
uint64_t wss_estimate(const struct wss_estimator *est);

/* The unsmoothed maximum of the last update, and which input gave it. */
uint64_t wss_raw(const struct wss_estimator *est);
enum wss_source wss_source(const struct wss_estimator *est);

/*
 * Bytes the node's queries touched, per second, over the last
 * WSS_TOUCH_SLOTS seconds: the "touched" input of the estimator. The caller
 * embeds it zeroed and passes any monotonic seconds; not thread-safe.
 */
#define WSS_TOUCH_SLOTS 10

struct wss_touch {
    uint64_t slot[WSS_TOUCH_SLOTS];
    uint64_t second; /* the newest second with a slot; 0 before the first call */
};

/*
 * Adds bytes to second now_s, first clearing the slots of the seconds that
 * passed since the newest one. Returns how many slots it cleared: at most
 * WSS_TOUCH_SLOTS, however far now_s jumped (the first call on a host up for
 * a year clears the ring once, not 31 million times). A now_s older than the
 * newest second counts in the newest one.
 */
unsigned wss_touch_add(struct wss_touch *t, uint64_t now_s, uint64_t bytes);

/* Bytes touched in the WSS_TOUCH_SLOTS seconds up to now_s. */
uint64_t wss_touch_sum(struct wss_touch *t, uint64_t now_s);

struct wss_damon_info {
    bool present;         /* <sys_root>/kernel/mm/damon/admin/kdamonds exists */
    unsigned nr_kdamonds; /* as read from nr_kdamonds */
    unsigned nr_running;  /* kdamonds whose state reads "on" */
};

/*
 * Reads (never writes) <sys_root>/kernel/mm/damon/admin/kdamonds/nr_kdamonds
 * and each kdamond's state. Returns 0 when DAMON is absent (present = false)
 * or present with no kdamond running; -EBUSY when a kdamond is running, as
 * setting one up would have to touch it (changing nr_kdamonds rebuilds every
 * kdamond directory); in both cases *ret is filled. Other errors leave *ret
 * alone: -EIO for a malformed file, or the negative errno of a failed read.
 * At most 1024 kdamonds are examined.
 */
int wss_damon_probe(const char *sys_root, struct wss_damon_info *ret);

#endif
