/*
 * sampler: the node's memory pressure sampler. A thread of its own reads
 * PSI, the node's memory cgroup and the host's meminfo/vmstat every
 * interval (100 ms), derives stall fractions and rates from the deltas, and
 * publishes an immutable struct sampler_snapshot that the loop thread copies
 * without a lock or a syscall.
 *
 * Detection (once, in sampler_new) reads <proc_root>/self/cgroup and
 * <proc_root>/self/mountinfo:
 *   v2      a "0::<path>" line and a cgroup2 mount: the memory files are in
 *           <mount><path>.
 *   v1      a line whose controllers include "memory" and a cgroup (v1)
 *           mount with the memory option.
 *   hybrid  v1 as above, plus "0::<path>" and a cgroup2 mount whose
 *           <mount><path>/memory.pressure exists (e.g. /sys/fs/cgroup/unified):
 *           memory files from v1, PSI from v2.
 *   none    none of these: host files only.
 * Mount points in mountinfo are host paths; a leading "/sys" is replaced by
 * sys_root so fixture trees work (other mount points are used as they are).
 * A mount's root field (a bind mount of a sub-cgroup, as in containers
 * without a cgroup namespace) is stripped from the process's cgroup path.
 * Detection is not repeated: a node moved to another cgroup must restart.
 *
 * PSI comes from the v2 cgroup's memory.pressure (v2 and hybrid), else from
 * <proc_root>/pressure/memory, flagged psi_host_wide. A v2 directory without
 * cgroup.type is the real root cgroup, whose pressure is the host's, so it is
 * flagged host-wide too (this is what a hybrid host whose processes sit in
 * the v2 root, like systemd's "unified" mount, gives).
 *
 * PSI triggers (cfg->psi_triggers): the PSI file is opened O_RDWR|O_NONBLOCK
 * and "some 150000 1000000" written (15% of a 1 s window); on EINVAL (the
 * kernel refuses windows that are not a multiple of 2 s without
 * CAP_SYS_RESOURCE) "some 300000 2000000" is tried; if that fails too the
 * sampler runs on its timer alone and the snapshot says why. Triggers are
 * only attempted on files of procfs or cgroup2 (never on a fixture tree).
 * The thread waits on the trigger with EPOLLPRI in its own epoll, the
 * interval as timeout, so a trigger causes an immediate sample. The v1
 * memory.pressure_level notification (eventfd + cgroup.event_control) is not
 * used: it needs a write into the cgroup, its levels are coarse and PSI
 * covers the same ground on every kernel that has it.
 *
 * Missing files are never fatal: each value has a SAMPLER_HAVE_* bit, set
 * only when it was read (or derived) in this sample.
 *
 * Publication: snapshots go into a ring of SAMPLER_RING slots, each guarded
 * by its own sequence number (a seqlock written with C11 atomics); an atomic
 * pointer names the newest. sampler_read() copies the newest slot and
 * retries if the writer reused it meanwhile, which needs the reader to stall
 * for SAMPLER_RING - 1 whole intervals. The reader's obligation: use the
 * copy, never keep a pointer into the sampler.
 */
#ifndef SLUICE_SAMPLER_H
#define SLUICE_SAMPLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SAMPLER_PATH_MAX   512
#define SAMPLER_REASON_MAX 128
#define SAMPLER_RING       4

#define SAMPLER_DEFAULT_INTERVAL_MS  100
#define SAMPLER_DEFAULT_OOM_RECENT_S 30

/* A byte limit that is "max" (v2) or huge (v1: 9223372036854771712). */
#define SAMPLER_UNLIMITED UINT64_MAX

struct sampler;

struct sampler_config {
    const char *proc_root; /* NULL = "/proc" */
    const char *sys_root;  /* NULL = "/sys" */
    unsigned interval_ms;  /* 1..60000; 0 = 100 */
    bool psi_triggers;     /* try PSI triggers (only meaningful with the thread) */
    unsigned oom_recent_s; /* oom_kill_recent window; 0 = 30 */
};

enum sampler_cgroup_mode {
    SAMPLER_CGROUP_NONE = 0,
    SAMPLER_CGROUP_V1,
    SAMPLER_CGROUP_V2,
    SAMPLER_CGROUP_HYBRID,
};

enum sampler_trigger {
    SAMPLER_TRIGGER_OFF = 0,
    SAMPLER_TRIGGER_1S, /* "some 150000 1000000" accepted */
    SAMPLER_TRIGGER_2S, /* "some 300000 2000000" accepted */
};

/* Where a counter came from: the node's cgroup, or the whole host. */
enum sampler_scope {
    SAMPLER_SCOPE_NONE = 0,
    SAMPLER_SCOPE_CGROUP,
    SAMPLER_SCOPE_HOST,
};

enum sampler_limit_source {
    SAMPLER_LIMIT_NONE = 0,
    SAMPLER_LIMIT_CGROUP_MAX,  /* v2 memory.max (any ancestor), v1 limit_in_bytes */
    SAMPLER_LIMIT_CGROUP_HIGH, /* v2 memory.high (any ancestor) */
    SAMPLER_LIMIT_MEMTOTAL,    /* MemTotal from meminfo */
};

enum sampler_cause {
    SAMPLER_CAUSE_MANUAL = 0, /* sampler_sample_once, or the first sample of sampler_start */
    SAMPLER_CAUSE_TIMER,
    SAMPLER_CAUSE_TRIGGER,
};

/* Bits of sampler_snapshot.have: which fields hold a value read this sample. */
#define SAMPLER_HAVE_PSI_SOME     (1u << 0) /* some */
#define SAMPLER_HAVE_PSI_FULL     (1u << 1) /* full */
#define SAMPLER_HAVE_STALL_SOME   (1u << 2) /* some_stall */
#define SAMPLER_HAVE_STALL_FULL   (1u << 3) /* full_stall */
#define SAMPLER_HAVE_CG_USAGE     (1u << 4) /* cg_usage */
#define SAMPLER_HAVE_CG_LIMIT     (1u << 5) /* cg_limit */
#define SAMPLER_HAVE_CG_HIGH      (1u << 6) /* cg_high */
#define SAMPLER_HAVE_CG_STAT      (1u << 7) /* cg_inactive_file, cg_active_file, cg_anon, cg_file */
#define SAMPLER_HAVE_CG_SWAP      (1u << 8) /* cg_swap */
#define SAMPLER_HAVE_MEMINFO      (1u << 9) /* mem_total, mem_available */
#define SAMPLER_HAVE_HOST_SWAP    (1u << 10) /* swap_total, swap_free */
#define SAMPLER_HAVE_LIMIT        (1u << 11) /* limit_bytes, limit_source */
#define SAMPLER_HAVE_REFAULTS     (1u << 12) /* refaults, refault_scope */
#define SAMPLER_HAVE_PGSCAN       (1u << 13) /* pgscan, pgscan_scope */
#define SAMPLER_HAVE_PSWP         (1u << 14) /* pswpin, pswpout (host) */
#define SAMPLER_HAVE_OOM_KILL     (1u << 15) /* oom_kill, oom_scope, oom_kill_recent */
#define SAMPLER_HAVE_REFAULT_RATE (1u << 16) /* refaults_per_s */
#define SAMPLER_HAVE_PGSCAN_RATE  (1u << 17) /* pgscan_per_s */
#define SAMPLER_HAVE_PSWP_RATE    (1u << 18) /* pswpin_per_s, pswpout_per_s */
#define SAMPLER_HAVE_CG_SWAP_MAX  (1u << 19) /* cg_swap_max */
#define SAMPLER_HAVE_SWAPINS      (1u << 20) /* swapins, swapin_scope */
#define SAMPLER_HAVE_SWAPIN_RATE  (1u << 21) /* swapins_per_s */
#define SAMPLER_HAVE_EXHAUST      (1u << 22) /* used, capacity, self, swap_cap, tte estimate */

/* One line of a PSI file. Averages are percentages as the kernel prints them. */
struct sampler_psi {
    double avg10, avg60, avg300;
    uint64_t total_us; /* cumulative stall time */
};

/*
 * What the sampler saw at taken_mono_ns. Holds no pointers: a copy is
 * self-contained. Rates and stall fractions are over the dt_ns since the
 * previous sample, and need both samples to have the value from the same
 * scope; a counter that went backwards (cgroup recreated) gives no rate.
 */
struct sampler_snapshot {
    uint64_t seq;           /* 1 for the first sample, then +1 per sample */
    uint64_t taken_mono_ns; /* CLOCK_MONOTONIC (or the injected clock) */
    uint64_t dt_ns;         /* since the previous sample; 0 on the first */
    uint32_t have;          /* SAMPLER_HAVE_* */
    enum sampler_cause cause;
    uint64_t trigger_fires; /* PSI trigger wake-ups so far */

    /* Sources, fixed by detection (the trigger may be dropped later). */
    enum sampler_cgroup_mode cgroup_mode;
    char cgroup_dir[SAMPLER_PATH_MAX]; /* memory cgroup directory, "" with mode none */
    char psi_source[SAMPLER_PATH_MAX]; /* PSI file read, or "none" */
    bool psi_host_wide;
    enum sampler_trigger trigger;
    char trigger_reason[SAMPLER_REASON_MAX]; /* why 2s or off; "" for 1s */

    /* PSI. Stall fractions are 0..1 of the last interval. */
    struct sampler_psi some, full;
    double some_stall, full_stall;

    /* The memory cgroup, bytes. v1: usage_in_bytes, limit_in_bytes (with
     * hierarchical_memory_limit), total_rss as anon, total_cache as file,
     * memsw.usage - usage as swap. No memory.high on v1. */
    uint64_t cg_usage;
    uint64_t cg_limit; /* SAMPLER_UNLIMITED when "max" */
    uint64_t cg_high;  /* SAMPLER_UNLIMITED when "max" */
    uint64_t cg_inactive_file, cg_active_file, cg_anon, cg_file;
    uint64_t cg_swap;

    /* The host, bytes. */
    uint64_t mem_total, mem_available;
    uint64_t swap_total, swap_free;

    /* min(cg_limit, cg_high, mem_total) over those known and limited. */
    uint64_t limit_bytes;
    enum sampler_limit_source limit_source;

    /* Cumulative counters (pages, or events for oom_kill) and their scope. */
    uint64_t refaults; /* workingset_refault_file + _anon (or workingset_refault) */
    uint64_t pgscan;   /* pgscan, or the sum of pgscan_kswapd/direct/khugepaged/proactive */
    uint64_t pswpin, pswpout;
    uint64_t oom_kill;
    enum sampler_scope refault_scope, pgscan_scope, oom_scope;

    /* Per second over the last interval. */
    double refaults_per_s, pgscan_per_s, pswpin_per_s, pswpout_per_s;

    /* Swap-ins: the cgroup's workingset_refault_anon (anon pages read back
     * from swap soon after eviction), else the host's pswpin; pages. */
    uint64_t swapins;
    enum sampler_scope swapin_scope;
    double swapins_per_s;

    /* The swap the cgroup may use: v2 memory.swap.max (smallest over the
     * ancestors), v1 memsw.limit_in_bytes - limit_in_bytes. */
    uint64_t cg_swap_max;

    /* Time to exhaustion (node/tte.h): exhaust_used is usage + swap less
     * inactive page cache (the cgroup's when the limit is a cgroup's, else
     * MemTotal - MemAvailable + swap used), exhaust_self the node's own
     * resident bytes (<proc_root>/self/statm), exhaust_capacity the limit plus
     * the swap usable (exhaust_swap_cap: min(cg_swap_max, SwapTotal), or
     * SwapTotal, 0 without swap). The rate is the growth of used - self over
     * the last 5 s; tte_ms and fill_ms are TTE_NEVER_MS (UINT64_MAX) without
     * growth or without enough samples (tte_valid false). */
    uint64_t exhaust_used, exhaust_self, exhaust_capacity, exhaust_swap_cap;
    bool tte_valid;
    double growth_bytes_per_s;
    uint64_t tte_ms, fill_ms;

    /* oom_kill rose within the last oom_recent_s (the first sample only sets
     * the reference: kills from before the node started do not count). */
    bool oom_kill_recent;
    uint64_t oom_kill_rise_mono_ns; /* when it last rose; 0 = not seen */
};

/*
 * Detects the cgroup setup and the PSI source and, if cfg->psi_triggers,
 * arms a trigger. Takes no sample and starts no thread. cfg may be NULL for
 * the defaults. Returns NULL, with a message in err, only for an invalid
 * interval; a host without cgroups or PSI is not an error.
 */
struct sampler *sampler_new(const struct sampler_config *cfg, char *err, size_t err_len);

/*
 * sampler_new, then one synchronous sample (so sampler_read succeeds at
 * once), then the thread. Returns NULL with err filled if the thread, its
 * epoll or its eventfd cannot be created. Stop with sampler_free().
 */
struct sampler *sampler_start(const struct sampler_config *cfg, char *err, size_t err_len);

/*
 * Stops and joins the thread, if running. The last snapshot stays readable
 * and sampler_sample_once() usable. Idempotent; call from the thread that
 * started it.
 */
void sampler_stop(struct sampler *s);

/* sampler_stop, then frees everything, the trigger fd included. NULL-safe. */
void sampler_free(struct sampler *s);

/*
 * Takes one sample now (now_mono_ns is the clock the deltas use: tests pass
 * fake times), publishes it and copies it to *ret if ret is not NULL.
 * Returns 0, or -EBUSY while the thread runs (it owns the sampling state).
 */
int sampler_sample_once(struct sampler *s, uint64_t now_mono_ns, struct sampler_snapshot *ret);

/*
 * Copies the newest published snapshot into *out: no lock, no syscall, safe
 * from any thread while the sampler runs. Returns 0, or -ENODATA if nothing
 * was published yet (only possible without sampler_start).
 */
int sampler_read(struct sampler *s, struct sampler_snapshot *out);

/* "none", "v1", "v2", "hybrid". */
const char *sampler_cgroup_mode_name(enum sampler_cgroup_mode mode);
/* "off", "1s", "2s". */
const char *sampler_trigger_name(enum sampler_trigger trig);
/* "none", "cgroup", "host". */
const char *sampler_scope_name(enum sampler_scope scope);
/* "none", "cgroup_max", "cgroup_high", "memtotal". */
const char *sampler_limit_source_name(enum sampler_limit_source src);
/* "manual", "timer", "trigger". */
const char *sampler_cause_name(enum sampler_cause cause);

#endif
