/*
 * admission: the node's admission controller, shedding policy and segment
 * cost model, as pure code (DESIGN.md section 4, "Admission" and "After
 * admission").
 *
 * Nothing here does I/O, reads a clock, draws a random number or keeps a
 * global: the caller passes the time (inside struct admission_signals) and a
 * random value, so every behaviour is reproducible in a unit test. The node
 * fills struct admission_signals from its sampler snapshot, latency ring and
 * store, calls admission_observe() on every sampler tick (100 ms), and calls
 * admission_decide() for each assignment. Library code: it logs nothing; the
 * caller logs gate changes ("open -> closed (MEM_PRESSURE)") by comparing
 * admission_gate_closed() before and after admission_observe().
 *
 * Gates, most severe first; the first closed gate decides the verdict:
 *   DRAINING          the node is draining or shutting down            (503)
 *   MEM_CRITICAL      full memory stall, or a recent oom_kill          (429)
 *   MEM_PRESSURE      some memory stall with reclaim active, or avg10  (429)
 *   MEM_THRASHING     workingset refault rate                          (429)
 *   MEM_CAPACITY      wss + reserved + cost over the admit limit       (429)
 *   LATENCY_SLO       p99 over the SLO and over baseline x factor      (429)
 *   LOAD_CONCURRENCY  too many loads in flight                         (429)
 *   DISK_FULL         the segment file would eat into the disk reserve (507)
 * and MEM_EXHAUSTION (time to exhaustion under --exhaust-tte-enter, or
 * swap-in sustained), checked right after MEM_CRITICAL. The first eight are
 * enum wire_reason values ADMISSION_GATE_FIRST .. ADMISSION_GATE_LAST;
 * MEM_EXHAUSTION came later and has the number after SEGMENT_INVALID, so a
 * loop over every gate runs to WIRE_REASON_COUNT_ and skips non-gates
 * (admission_gate_closed() is false for them).
 *
 * MEM_EXHAUSTION tells a slow leak from a fast run by the fill time (how
 * long the growth would take to fill the whole capacity): a slow leak gets
 * --retry-capacity ("go elsewhere"), a fast run (fill time under
 * --exhaust-fast-fill) gets --retry-pressure and admission_should_shed()
 * sheds at once, without waiting for --shed-after.
 *
 * Flapping is prevented three ways:
 *  - hysteresis: the signal gates (MEM_CRITICAL, MEM_PRESSURE, MEM_THRASHING,
 *    LATENCY_SLO) close when their signal goes above the enter threshold and
 *    count as still breached while it stays above the (lower) exit threshold;
 *  - hold-down: a closed gate opens only once its signal has stayed on the
 *    open side for hold_down_ms (it stays closed at least hold_down_ms after
 *    the signal last breached). MEM_CAPACITY's "no headroom at all" state
 *    (wss + reserved over the admit limit) is held down the same way;
 *  - slow start: for slow_start_ms after any of those gates opens, at most
 *    slow_start_max_loads loads may be in flight and a request may use only
 *    slow_start_headroom of the remaining capacity headroom.
 * DRAINING, LOAD_CONCURRENCY and DISK_FULL compare exact quantities (a flag,
 * a count, bytes against this request) and have no hold-down: holding them
 * would only refuse work that fits.
 *
 * Only admission_observe() opens gates. admission_decide() may close a signal
 * gate whose signal is above its enter threshold right now (so a breach is
 * refused even between two ticks, or before the first one), but never opens
 * one.
 *
 * Not thread-safe: one struct admission_state belongs to the loop thread.
 */
#ifndef SLUICE_ADMISSION_H
#define SLUICE_ADMISSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire.h"

#define ADMISSION_GATE_FIRST WIRE_REASON_DRAINING
#define ADMISSION_GATE_LAST  WIRE_REASON_DISK_FULL
#define ADMISSION_DETAIL_MAX 200

/* Cost model: EWMA weight of a new sample, and the clamp on each sample. */
#define ADMISSION_COST_ALPHA     0.2
#define ADMISSION_COST_RATIO_MIN 0.05
#define ADMISSION_COST_RATIO_MAX 20.0

/*
 * What the node measured, at one instant. Fractions are 0..1, avg10 values
 * are percent as the kernel prints them. A non-finite value reads as "no
 * breach" for its gate (a sampler bug must not refuse everything).
 */
struct admission_signals {
    uint64_t now_ms; /* monotonic milliseconds; any origin, may be 0 */
    bool draining;
    bool psi_available;            /* false: the PSI gates cannot fire (said in detail) */
    double some_frac, full_frac;   /* memory stall fractions over the last ~100 ms */
    double some_avg10, full_avg10; /* percent, from the kernel */
    double pgscan_per_s;           /* reclaim activity; > 0 means reclaim is active */
    bool refaults_available;       /* false: MEM_THRASHING cannot fire */
    double refaults_per_s;         /* workingset refaults, pages/s */
    uint64_t oom_kills_recent;     /* oom_kill events in the last minute */
    uint64_t limit_bytes;          /* effective memory limit (0: unknown) */
    uint64_t wss_bytes;            /* smoothed working-set estimate */
    uint64_t reserved_bytes;       /* cost of loads admitted and still loading */
    double p99_1s_ms, p99_10s_ms;  /* query latency p99 over 1 s and 10 s */
    double baseline_p99_ms;        /* long-run p99 (0: unknown) */
    uint64_t queries_10s;          /* queries in the 10 s window */
    unsigned loads_in_flight;
    uint64_t disk_free_bytes;  /* free bytes in the data dir (UINT64_MAX: unknown) */
    bool exhaust_available;    /* false: the time-to-exhaustion half of MEM_EXHAUSTION is off */
    uint64_t tte_ms, fill_ms;  /* the sampler's estimate; UINT64_MAX: not growing */
    double growth_bytes_per_s; /* others' growth (for the detail) */
    bool swapins_available;    /* false: the swap-in half of MEM_EXHAUSTION is off */
    double swapins_per_s;      /* pages/s read back from swap */
    /*
     * The watermark in force (the adaptive one, node/watermark.h), 0..1;
     * 0 (or anything not in (0, 1]): cfg->high_watermark.
     */
    double admit_watermark;
};

/*
 * Tunables. Every field is a `sluice-node serve` flag; the comment gives the
 * flag name, its default and a help sentence. Types match common/config.h
 * targets: durations in ms and sizes in bytes are uint64_t, counts int64_t.
 */
struct admission_config {
    /* --admit-high-watermark 0.85: admit limit as a fraction of the memory limit. */
    double high_watermark;
    /* --admit-budget 0: explicit admit limit in bytes; 0 means limit x watermark. */
    uint64_t budget_bytes;

    /* --critical-full-enter 0.05: full-stall fraction that closes MEM_CRITICAL. */
    double critical_full_enter;
    /* --critical-full-exit 0.01: full-stall fraction below which it may reopen. */
    double critical_full_exit;
    /* --critical-on-oom-kill true: an oom_kill in the last minute closes MEM_CRITICAL. */
    bool critical_on_oom_kill;

    /* --pressure-some-enter 0.10: some-stall fraction (with reclaim) closing MEM_PRESSURE. */
    double pressure_some_enter;
    /* --pressure-some-exit 0.02: some-stall fraction below which it may reopen. */
    double pressure_some_exit;
    /* --pressure-avg10-enter 20: some avg10 (percent) that closes MEM_PRESSURE alone. */
    double pressure_avg10_enter;
    /* --pressure-avg10-exit 10: some avg10 (percent) below which it may reopen. */
    double pressure_avg10_exit;

    /* --thrash-refault-enter 5000: refaults (pages/s) that close MEM_THRASHING. */
    double thrash_refault_enter;
    /* --thrash-refault-exit 1000: refaults (pages/s) below which it may reopen. */
    double thrash_refault_exit;

    /* --latency-slo 250ms: query p99 objective; 0 disables LATENCY_SLO. */
    uint64_t latency_slo_ms;
    /* --latency-baseline-factor 2.0: p99 must also exceed baseline x this to close. */
    double latency_baseline_factor;
    /* --latency-exit-ratio 0.8: reopen once p99 is below SLO x this. */
    double latency_exit_ratio;
    /* --latency-min-queries 100: queries in 10 s needed before p99 counts. */
    int64_t latency_min_queries;

    /* --exhaust-tte-enter 30s: time to exhaustion that closes MEM_EXHAUSTION; 0 disables it. */
    uint64_t exhaust_tte_enter_ms;
    /* --exhaust-tte-exit 60s: time to exhaustion above which it may reopen. */
    uint64_t exhaust_tte_exit_ms;
    /* --exhaust-fast-fill 60s: growth that would fill the whole capacity sooner is a fast run
     * (shed). */
    uint64_t exhaust_fast_fill_ms;
    /* --exhaust-swapin-enter 1000: swap-ins (pages/s) that, sustained, close MEM_EXHAUSTION. */
    double exhaust_swapin_enter;
    /* --exhaust-swapin-exit 100: swap-ins (pages/s) below which it may reopen. */
    double exhaust_swapin_exit;
    /* --exhaust-swapin-sustain 3s: how long swap-ins must stay high to count. */
    uint64_t exhaust_swapin_sustain_ms;

    /* --max-loads 4: segment loads in flight at once. */
    int64_t max_loads;
    /* --disk-reserve 256M: local disk kept free; bigger segments get DISK_FULL. */
    uint64_t disk_reserve_bytes;

    /* --admit-hold-down 5s: a gate stays closed this long after its signal last breached. */
    uint64_t hold_down_ms;
    /* --admit-slow-start 10s: after a gate reopens, admit cautiously for this long. */
    uint64_t slow_start_ms;
    /* --slow-start-max-loads 1: loads in flight allowed during slow start. */
    int64_t slow_start_max_loads;
    /* --slow-start-headroom 0.5: share of the free capacity one request may use in slow start. */
    double slow_start_headroom;

    /* --retry-pressure 10s: base Retry-After of MEM_* stalls (avg10's time constant). */
    uint64_t retry_pressure_ms;
    /* --retry-pressure-max 60s: cap on the scaled pressure Retry-After. */
    uint64_t retry_pressure_max_ms;
    /* --retry-capacity 60s: Retry-After of MEM_CAPACITY ("go elsewhere"). */
    uint64_t retry_capacity_ms;
    /* --retry-latency 5s: Retry-After of LATENCY_SLO. */
    uint64_t retry_latency_ms;
    /* --retry-concurrency 250ms: Retry-After of LOAD_CONCURRENCY (load slots free up fast). */
    uint64_t retry_concurrency_ms;
    /* --retry-draining 30s: Retry-After of DRAINING. */
    uint64_t retry_draining_ms;
    /* --retry-disk 300s: Retry-After of DISK_FULL. */
    uint64_t retry_disk_ms;
    /* --retry-jitter 0.2: Retry-After is scaled by a random factor in [1 - j, 1 + j]. */
    double retry_jitter;

    /* --shed-after 3s: shed once MEM_CRITICAL stall or thrashing lasts this long; 0: never. */
    uint64_t shed_after_ms;
    /* --shed-cooldown 5s: least time between two sheds. */
    uint64_t shed_cooldown_ms;
};

/* One gate's state, for admission_state. */
struct admission_gate_state {
    bool closed;
    bool breaching;           /* signal on the closed side at the last evaluation */
    uint64_t last_breach_ms;  /* last evaluation that found it breaching */
    uint64_t breach_since_ms; /* start of the current run of breaching evaluations */
    uint64_t changed_ms;      /* when closed last changed */
    uint64_t transitions;     /* open -> closed and closed -> open changes so far */
};

/*
 * Per-node controller state. Public so that it can be embedded; an all-zero
 * struct is a valid state with every gate open and no slow start. Owned and
 * written by admission_observe(), admission_decide() and
 * admission_note_shed(); everything else only reads it.
 */
struct admission_state {
    struct admission_gate_state gate[WIRE_REASON_COUNT_]; /* by enum wire_reason */
    bool recovered;                   /* some hysteresis gate has reopened ... */
    uint64_t recovered_ms;            /* ... last at this time: slow start runs from here */
    bool critical_stall;              /* MEM_CRITICAL breached by its stall signal, not oom */
    uint64_t critical_stall_since_ms; /* start of that run */
    bool shed;                        /* admission_note_shed() has been called ... */
    uint64_t last_shed_ms;            /* ... last at this time */
    bool swapin_high;                 /* swap-ins above enter (exit while high) ... */
    uint64_t swapin_since_ms;         /* ... since this time */
};

struct admission_request {
    uint64_t cost_bytes; /* memory estimate, from admission_cost_estimate() */
    uint64_t file_bytes; /* size of the segment file to copy to local disk */
};

struct admission_verdict {
    bool accept;
    enum wire_reason reason;           /* WIRE_REASON_NONE when accepted */
    uint32_t retry_after_ms;           /* 0 when accepted; else jittered, at least 1 */
    char detail[ADMISSION_DETAIL_MAX]; /* names the signal, its value and the threshold */
};

/* The learned cost model. Zero-initialised it behaves as factor 1.0. */
struct admission_cost {
    double factor;    /* observed footprint / estimate; 1.0 before any sample */
    unsigned samples; /* samples learned */
};

/* The documented defaults (see each field of struct admission_config). */
struct admission_config admission_config_default(void);

/*
 * Checks a config after flag parsing: fractions in range, every exit
 * threshold at or below its enter threshold, counts at least 1. Returns 0, or
 * -EINVAL with a sentence naming the flag in err (which may be NULL if
 * err_len is 0).
 */
int admission_config_check(const struct admission_config *cfg, char *err, size_t err_len);

/*
 * Updates every gate from sig: hysteresis, hold-down, the capacity, draining,
 * concurrency and disk states shown by admission_gate_closed(), and the start
 * of slow start when a hysteresis gate reopens. Call on every sampler tick.
 */
void admission_observe(const struct admission_config *cfg, const struct admission_signals *sig,
                       struct admission_state *state);

/*
 * Decides one assignment. Walks the gates in order and answers with the first
 * that refuses req: reason, a Retry-After that follows the reason, jittered by
 * random (any uint32, e.g. from the node's PRNG), and a detail naming the
 * signal, its value and the threshold. Accepts otherwise, with a detail that
 * says which gates could not fire for want of a signal. May close a signal
 * gate (see the top of this file); never opens one. ret is always written.
 */
void admission_decide(const struct admission_config *cfg, const struct admission_signals *sig,
                      struct admission_state *state, const struct admission_request *req,
                      uint32_t random, struct admission_verdict *ret);

/*
 * True when the node should shed its coldest segment now: MEM_CRITICAL
 * closed with its full-stall signal breaching continuously for shed_after_ms
 * (a recent oom_kill alone does not shed: the count stays up for a minute
 * while the kill has already freed memory), or MEM_THRASHING closed and
 * breaching for shed_after_ms; and at least shed_cooldown_ms since the last
 * admission_note_shed(). Reads state as of the last admission_observe().
 */
bool admission_should_shed(const struct admission_config *cfg, const struct admission_state *state,
                           const struct admission_signals *sig);

/* Records that a segment was shed at now_ms, starting the cooldown. */
void admission_note_shed(struct admission_state *state, uint64_t now_ms);

/* Whether reason names an admission gate (DRAINING..DISK_FULL, MEM_EXHAUSTION). */
bool admission_is_gate(enum wire_reason reason);

/* Whether gate reason is closed as of the last observe/decide; false for non-gates. */
bool admission_gate_closed(const struct admission_state *state, enum wire_reason reason);

/* Open <-> closed changes of gate reason so far (for metrics); 0 for non-gates. */
uint64_t admission_gate_transitions(const struct admission_state *state, enum wire_reason reason);

/*
 * Whether every memory and latency signal is quiet now: each on the open side
 * of its exit threshold (the lower one), as if its gate were closed and about
 * to reopen: no full or some stall, no oom_kill in the last minute, refaults
 * and swap-ins under their exit rates, time to exhaustion above its exit, the
 * 10 s p99 (when enough queries count) under SLO x --latency-exit-ratio; and
 * no slow start in force. When not quiet, *ret_why (if not NULL) names the
 * first loud signal, a static string. The adaptive watermark probes upward
 * only while this holds (node/watermark.h).
 */
bool admission_quiet(const struct admission_config *cfg, const struct admission_signals *sig,
                     const struct admission_state *state, const char **ret_why);

/*
 * Loads allowed in flight at now_ms: --max-loads, or slow_start_max_loads
 * while slow start is in force; at least 1. What the node advertises as
 * load_slots in its pressure snapshot.
 */
uint64_t admission_max_loads(const struct admission_config *cfg,
                             const struct admission_state *state, uint64_t now_ms);

/* Whether slow start is in force at now_ms. */
bool admission_in_slow_start(const struct admission_config *cfg,
                             const struct admission_state *state, uint64_t now_ms);

/*
 * budget_bytes if set, else limit_bytes x the watermark in force
 * (admission_watermark()); 0 when unknown.
 */
uint64_t admission_admit_limit(const struct admission_config *cfg,
                               const struct admission_signals *sig);

/* sig->admit_watermark when it is in (0, 1], else cfg->high_watermark. */
double admission_watermark(const struct admission_config *cfg, const struct admission_signals *sig);

/* Sets factor to 1.0 and samples to 0. */
void admission_cost_init(struct admission_cost *c);

/*
 * Memory cost of a segment: row_count x avg_row_size x factor, rounded up,
 * saturating at UINT64_MAX (which no admit limit accepts). Never row_count
 * alone: an avg_row_size of 0 is counted as 1 byte. A factor that is not a
 * positive finite number (a zeroed struct) counts as 1.0.
 */
uint64_t admission_cost_estimate(const struct admission_cost *c, uint64_t row_count,
                                 uint64_t avg_row_size);

/*
 * The cost admission counts for a segment with a declared request: the
 * larger of the two, as a Kubernetes scheduler reserves a pod's request
 * even when it uses less, and never less than what this node learnt such a
 * segment costs (a request of 0 declares nothing).
 */
uint64_t admission_cost_declared(uint64_t estimate_bytes, uint64_t request_bytes);

/*
 * Learns from one loaded segment: ratio = observed / estimate, clamped to
 * [ADMISSION_COST_RATIO_MIN, ADMISSION_COST_RATIO_MAX], then an EWMA with
 * weight ADMISSION_COST_ALPHA taken on the log of the ratio (a geometric
 * EWMA: ratios are multiplicative and the clamp is symmetric, so a 20x
 * outlier moves the factor by the same 1.82x as a 1/20x one). Starting from
 * 1.0, a steady ratio r gives factor r^(1 - 0.8^n) after n samples. A sample
 * with estimate or observed 0 carries no information and is ignored.
 */
void admission_cost_learn(struct admission_cost *c, uint64_t estimate_bytes,
                          uint64_t observed_bytes);

/*
 * The reservation ledger: what loads admitted and still running were
 * promised, memory (the cost admission counted, in admission_signals'
 * reserved_bytes) and local disk (the file's size). Admission owns it, and
 * is the only place DISK_FULL is decided: from the sampled free space in
 * admission_decide(), and from the space the store measured at the precheck
 * against what the ledger already promised in admission_disk_admit().
 * Plain data, no I/O; one per node, on the loop thread.
 */
struct admission_ledger;

/* What one load holds. */
struct admission_hold {
    uint64_t cost; /* memory admission counted; 0 when admission was skipped */
    uint64_t raw;  /* rows x avg_row_size, for admission_cost_learn() */
    uint64_t disk; /* local disk promised to the copy */
};

struct admission_ledger *admission_ledger_new(void);
void admission_ledger_free(struct admission_ledger *l); /* NULL-safe */

/* Memory admitted for a load whose store answer is pending: counted from now. */
void admission_ledger_pend(struct admission_ledger *l, uint64_t cost);
/* The store refused that load: its pending memory is no longer counted. */
void admission_ledger_unpend(struct admission_ledger *l, uint64_t cost);
/* The store accepted it: the pending memory is held by id until its load ends. */
void admission_ledger_commit(struct admission_ledger *l, const char *id, uint64_t cost,
                             uint64_t raw);

/*
 * DISK_FULL for a load about to start (called by the store, on the loop
 * thread, after its precheck measured the free space: disk_err 0 and
 * disk_avail bytes, or disk_err < 0, the negative errno of the measurement).
 * Refused when the space could not be measured (it is not assumed to be
 * there), or file_bytes + the disk reserve + the disk promised to loads in
 * flight exceed disk_avail. Returns 0 with file_bytes held for id until
 * admission_ledger_release(), or -ENOSPC with detail written (always
 * NUL-terminated).
 */
int admission_disk_admit(const struct admission_config *cfg, struct admission_ledger *l,
                         const char *id, uint64_t file_bytes, int disk_err,
                         uint64_t disk_avail, char *detail, size_t len);

/*
 * MEM_CAPACITY for a load about to start whose file says it will copy
 * heap_bytes to the heap (its in-memory columns), more than the cost
 * admitted for it from the request (cost_bytes, already in
 * sig->reserved_bytes): refused when wss + reserved + the difference exceed
 * the admit limit (admission_admit_limit(); never with the limit unknown).
 * A declared row width says nothing of such columns; the header does. Pure:
 * returns the extra bytes to hold (0 when heap_bytes <= cost_bytes) into
 * *ret_extra and 0, or -ENOMEM with detail written (always NUL-terminated).
 */
int admission_heap_admit(const struct admission_config *cfg,
                         const struct admission_signals *sig, uint64_t cost_bytes,
                         uint64_t heap_bytes, uint64_t *ret_extra, char *detail, size_t len);

/* id's load ended: what it held is released into *ret (may be NULL). 0 or -ENOENT. */
int admission_ledger_release(struct admission_ledger *l, const char *id,
                             struct admission_hold *ret);

uint64_t admission_ledger_mem_bytes(const struct admission_ledger *l);  /* pending + held */
uint64_t admission_ledger_disk_bytes(const struct admission_ledger *l); /* held */

/*
 * The HTTP status of an assignment the store ended with err (its
 * store_assign_cb), and the reason in *ret_reason: 0 is 202; -ENOSPC or
 * -EDQUOT 507 DISK_FULL (the store says so only when admission_disk_admit()
 * refused); -EINVAL 422 SEGMENT_INVALID; -ESHUTDOWN 503 DRAINING; -EMFILE,
 * -ENFILE, -ENOMEM, -EAGAIN 429 MEM_CAPACITY (this node is short of
 * descriptors or memory); anything else (-EBUSY, -EEXIST) 409 with
 * WIRE_REASON_NONE.
 */
int admission_store_answer(int err, enum wire_reason *ret_reason);

/*
 * The reason of a FAILED segment, from the negative errno its load (or
 * reload) ended with. The store keeps that errno with the FAILED state; the
 * node maps it here when it builds a report or a status (store_status()),
 * so this is the only place a failed load becomes DISK_FULL: a SEGMENT_E*
 * format error (common/segfmt.h: the copy does not verify) SEGMENT_INVALID,
 * on which the coordinator's invalid vote rests; -ENOSPC or -EDQUOT
 * DISK_FULL; -EMFILE, -ENFILE, -ENOMEM, -EAGAIN MEM_CAPACITY (this node, not
 * the file: placed elsewhere); 0 and anything else (-EIO: a short source, a
 * SIGBUS on the local copy) NONE. Uses the same errno classes as
 * admission_store_answer(), except that -EINVAL is a system call's here
 * (NONE), not a refused request.
 */
enum wire_reason admission_load_reason(int err);

#endif
