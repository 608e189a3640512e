/*
 * admission: gate evaluation, hysteresis and hold-down, slow start,
 * Retry-After, shedding policy and the cost model (contract in admission.h).
 *
 * Each gate is a small state machine in struct admission_gate_state. A signal
 * "breaches" when it is on the closed side of the threshold that applies to
 * the gate's current state: the enter threshold while open, the exit
 * threshold while closed. A breach closes the gate at once; the gate reopens
 * at the first observation that is not a breach and comes hold_down_ms or
 * more after the last one that was. Opening a hold-down gate starts slow
 * start. Exact gates (draining, concurrency, disk) run the same machine with
 * no hold-down, so they only record state for status and metrics.
 *
 * Expected load: admission_observe() ten times a second, admission_decide()
 * at most a few hundred times a second. Everything is O(number of gates), no
 * allocation, no system call.
 */
#include "admission.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reason.h"
#include "segfmt.h"
#include "strmap.h"
#include "xmalloc.h"

/* e: above this ratio a stall needs more than one time constant to decay. */
#define ADM_E 2.718281828459045

/* The gate order is the wire order: the loops and the array rely on it. */
_Static_assert(WIRE_REASON_DRAINING == 1 && WIRE_REASON_MEM_CRITICAL == 2 &&
                   WIRE_REASON_MEM_PRESSURE == 3 && WIRE_REASON_MEM_THRASHING == 4 &&
                   WIRE_REASON_MEM_CAPACITY == 5 && WIRE_REASON_LATENCY_SLO == 6 &&
                   WIRE_REASON_LOAD_CONCURRENCY == 7 && WIRE_REASON_DISK_FULL == 8,
               "admission gates must follow DESIGN.md's order");

struct admission_config admission_config_default(void)
{
    struct admission_config c;

    memset(&c, 0, sizeof(c));
    c.high_watermark = 0.85;
    c.budget_bytes = 0;
    c.critical_full_enter = 0.05;
    c.critical_full_exit = 0.01;
    c.critical_on_oom_kill = true;
    c.pressure_some_enter = 0.10;
    c.pressure_some_exit = 0.02;
    c.pressure_avg10_enter = 20.0;
    c.pressure_avg10_exit = 10.0;
    c.thrash_refault_enter = 5000.0;
    c.thrash_refault_exit = 1000.0;
    c.latency_slo_ms = 250;
    c.latency_baseline_factor = 2.0;
    c.latency_exit_ratio = 0.8;
    c.latency_min_queries = 100;
    c.max_loads = 4;
    c.disk_reserve_bytes = 256ull << 20;
    c.hold_down_ms = 5000;
    c.slow_start_ms = 10000;
    c.slow_start_max_loads = 1;
    c.slow_start_headroom = 0.5;
    c.retry_pressure_ms = reason_retry_default_ms(WIRE_REASON_MEM_PRESSURE);
    c.retry_pressure_max_ms = 60000;
    c.retry_capacity_ms = reason_retry_default_ms(WIRE_REASON_MEM_CAPACITY);
    c.retry_latency_ms = reason_retry_default_ms(WIRE_REASON_LATENCY_SLO);
    c.retry_concurrency_ms = reason_retry_default_ms(WIRE_REASON_LOAD_CONCURRENCY);
    c.retry_draining_ms = reason_retry_default_ms(WIRE_REASON_DRAINING);
    c.retry_disk_ms = reason_retry_default_ms(WIRE_REASON_DISK_FULL);
    c.exhaust_tte_enter_ms = 30000;
    c.exhaust_tte_exit_ms = 60000;
    c.exhaust_fast_fill_ms = 60000;
    c.exhaust_swapin_enter = 1000;
    c.exhaust_swapin_exit = 100;
    c.exhaust_swapin_sustain_ms = 3000;
    c.retry_jitter = 0.2;
    c.shed_after_ms = 3000;
    c.shed_cooldown_ms = 5000;
    return c;
}

/* Writes a message into err and returns -EINVAL. */
static int adm_invalid(char *err, size_t err_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int adm_invalid(char *err, size_t err_len, const char *fmt, ...)
{
    va_list ap;

    if (err != NULL && err_len > 0) {
        va_start(ap, fmt);
        vsnprintf(err, err_len, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

/* lo < v <= hi (lo_open) or lo <= v <= hi; false for NaN. */
static bool adm_in(double v, double lo, bool lo_open, double hi)
{
    if (!isfinite(v) || v > hi)
        return false;
    return lo_open ? v > lo : v >= lo;
}

int admission_config_check(const struct admission_config *cfg, char *err, size_t err_len)
{
    const struct {
        const char *flag;
        double v, lo;
        bool lo_open;
        double hi;
    } ranges[] = {
        {"--admit-high-watermark", cfg->high_watermark, 0, true, 1},
        {"--critical-full-enter", cfg->critical_full_enter, 0, true, 1},
        {"--critical-full-exit", cfg->critical_full_exit, 0, false, cfg->critical_full_enter},
        {"--pressure-some-enter", cfg->pressure_some_enter, 0, true, 1},
        {"--pressure-some-exit", cfg->pressure_some_exit, 0, false, cfg->pressure_some_enter},
        {"--pressure-avg10-enter", cfg->pressure_avg10_enter, 0, true, 100},
        {"--pressure-avg10-exit", cfg->pressure_avg10_exit, 0, false, cfg->pressure_avg10_enter},
        {"--thrash-refault-enter", cfg->thrash_refault_enter, 0, true, 1e12},
        {"--thrash-refault-exit", cfg->thrash_refault_exit, 0, false, cfg->thrash_refault_enter},
        {"--latency-baseline-factor", cfg->latency_baseline_factor, 0, false, 1000},
        {"--latency-exit-ratio", cfg->latency_exit_ratio, 0, true, 1},
        {"--slow-start-headroom", cfg->slow_start_headroom, 0, true, 1},
        {"--retry-jitter", cfg->retry_jitter, 0, false, 0.9},
        {"--exhaust-swapin-enter", cfg->exhaust_swapin_enter, 0, true, 1e12},
        {"--exhaust-swapin-exit", cfg->exhaust_swapin_exit, 0, false, cfg->exhaust_swapin_enter},
    };
    const struct {
        const char *flag;
        uint64_t v;
    } retries[] = {
        {"--retry-pressure", cfg->retry_pressure_ms},
        {"--retry-pressure-max", cfg->retry_pressure_max_ms},
        {"--retry-capacity", cfg->retry_capacity_ms},
        {"--retry-latency", cfg->retry_latency_ms},
        {"--retry-concurrency", cfg->retry_concurrency_ms},
        {"--retry-draining", cfg->retry_draining_ms},
        {"--retry-disk", cfg->retry_disk_ms},
    };

    if (err != NULL && err_len > 0)
        err[0] = '\0';
    for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++)
        if (!adm_in(ranges[i].v, ranges[i].lo, ranges[i].lo_open, ranges[i].hi))
            return adm_invalid(err, err_len, "%s: %g is outside %s%g, %g]", ranges[i].flag,
                               ranges[i].v, ranges[i].lo_open ? "(" : "[", ranges[i].lo,
                               ranges[i].hi);
    for (size_t i = 0; i < sizeof(retries) / sizeof(retries[0]); i++)
        if (retries[i].v == 0 || retries[i].v > UINT32_MAX)
            return adm_invalid(err, err_len, "%s: %llu ms is outside [1, %u]", retries[i].flag,
                               (unsigned long long)retries[i].v, (unsigned)UINT32_MAX);
    if (cfg->retry_pressure_max_ms < cfg->retry_pressure_ms)
        return adm_invalid(err, err_len, "--retry-pressure-max: %llu ms is below --retry-pressure",
                           (unsigned long long)cfg->retry_pressure_max_ms);
    if (cfg->exhaust_tte_enter_ms > 0 && cfg->exhaust_tte_exit_ms < cfg->exhaust_tte_enter_ms)
        return adm_invalid(err, err_len, "--exhaust-tte-exit: %llu ms is below --exhaust-tte-enter",
                           (unsigned long long)cfg->exhaust_tte_exit_ms);
    if (cfg->latency_min_queries < 1)
        return adm_invalid(err, err_len, "--latency-min-queries: %lld is below 1",
                           (long long)cfg->latency_min_queries);
    if (cfg->max_loads < 1)
        return adm_invalid(err, err_len, "--max-loads: %lld is below 1", (long long)cfg->max_loads);
    if (cfg->slow_start_max_loads < 1)
        return adm_invalid(err, err_len, "--slow-start-max-loads: %lld is below 1",
                           (long long)cfg->slow_start_max_loads);
    return 0;
}

/* now - then, or 0 if the clock went backwards. */
static uint64_t adm_since(uint64_t now, uint64_t then)
{
    return now > then ? now - then : 0;
}

static uint64_t adm_add(uint64_t a, uint64_t b)
{
    uint64_t r;

    return __builtin_add_overflow(a, b, &r) ? UINT64_MAX : r;
}

/* v > t for a finite v: a non-finite reading is no breach. */
static bool adm_above(double v, double t)
{
    return isfinite(v) && v > t;
}

/* Appends to the NUL-terminated buf, truncating. */
static void adm_append(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void adm_append(char *buf, size_t len, const char *fmt, ...)
{
    size_t used = strlen(buf);
    va_list ap;

    if (used + 1 >= len)
        return;
    va_start(ap, fmt);
    vsnprintf(buf + used, len - used, fmt, ap);
    va_end(ap);
}

/* ---- gate signals ---- */

/*
 * MEM_CRITICAL's breach, and in *ret_stall whether the full-stall part of it
 * breached (shedding looks only at that part).
 */
static bool adm_critical_breach(const struct admission_config *cfg,
                                const struct admission_signals *sig, bool closed, bool *ret_stall)
{
    double t = closed ? cfg->critical_full_exit : cfg->critical_full_enter;
    bool stall = sig->psi_available && adm_above(sig->full_frac, t);

    *ret_stall = stall;
    return stall || (cfg->critical_on_oom_kill && sig->oom_kills_recent > 0);
}

/* Some stall counts only with reclaim active: stalls without reclaim are not our memory. */
static bool adm_pressure_some(const struct admission_config *cfg,
                              const struct admission_signals *sig, bool closed)
{
    double t = closed ? cfg->pressure_some_exit : cfg->pressure_some_enter;

    return sig->psi_available && adm_above(sig->some_frac, t) && adm_above(sig->pgscan_per_s, 0);
}

static bool adm_pressure_avg10(const struct admission_config *cfg,
                               const struct admission_signals *sig, bool closed)
{
    double t = closed ? cfg->pressure_avg10_exit : cfg->pressure_avg10_enter;

    return sig->psi_available && adm_above(sig->some_avg10, t);
}

static bool adm_thrash_breach(const struct admission_config *cfg,
                              const struct admission_signals *sig, bool closed)
{
    double t = closed ? cfg->thrash_refault_exit : cfg->thrash_refault_enter;

    return sig->refaults_available && adm_above(sig->refaults_per_s, t);
}

/* Whether the 10 s p99 rests on enough queries to mean anything. */
static bool adm_latency_known(const struct admission_config *cfg,
                              const struct admission_signals *sig)
{
    return cfg->latency_slo_ms > 0 && cfg->latency_min_queries > 0 &&
           sig->queries_10s >= (uint64_t)cfg->latency_min_queries && isfinite(sig->p99_10s_ms);
}

static bool adm_latency_breach(const struct admission_config *cfg,
                               const struct admission_signals *sig, bool closed)
{
    double slo = (double)cfg->latency_slo_ms, base = sig->baseline_p99_ms;

    if (!adm_latency_known(cfg, sig))
        return false;
    if (closed)
        return sig->p99_10s_ms >= slo * cfg->latency_exit_ratio;
    if (!adm_above(sig->p99_10s_ms, slo))
        return false;
    /* An unknown baseline leaves the SLO alone to decide. */
    return !(isfinite(base) && base > 0) ||
           adm_above(sig->p99_10s_ms, base * cfg->latency_baseline_factor);
}

/* Time to exhaustion under enter (or, once closed, under exit). */
static bool adm_tte_breach(const struct admission_config *cfg, const struct admission_signals *sig,
                           bool closed)
{
    if (cfg->exhaust_tte_enter_ms == 0 || !sig->exhaust_available)
        return false;
    return sig->tte_ms < (closed ? cfg->exhaust_tte_exit_ms : cfg->exhaust_tte_enter_ms);
}

/* Swap-ins above enter (or, while high, above exit) right now. */
static bool adm_swapin_high(const struct admission_config *cfg, const struct admission_signals *sig,
                            bool high)
{
    return sig->swapins_available &&
           adm_above(sig->swapins_per_s,
                     high ? cfg->exhaust_swapin_exit : cfg->exhaust_swapin_enter);
}

/* Swap-ins high for exhaust_swapin_sustain_ms, as of the last observation. */
static bool adm_swapin_sustained(const struct admission_config *cfg,
                                 const struct admission_state *state, uint64_t now)
{
    return state->swapin_high &&
           adm_since(now, state->swapin_since_ms) >= cfg->exhaust_swapin_sustain_ms;
}

double admission_watermark(const struct admission_config *cfg, const struct admission_signals *sig)
{
    if (sig->admit_watermark > 0 && sig->admit_watermark <= 1)
        return sig->admit_watermark;
    return cfg->high_watermark;
}

uint64_t admission_admit_limit(const struct admission_config *cfg,
                               const struct admission_signals *sig)
{
    double v, w = admission_watermark(cfg, sig);

    if (cfg->budget_bytes > 0)
        return cfg->budget_bytes;
    if (sig->limit_bytes == 0 || !(w > 0))
        return 0;
    v = (double)sig->limit_bytes * fmin(w, 1.0);
    return v >= 18446744073709551616.0 ? UINT64_MAX : (uint64_t)v;
}

/* No headroom at all: what wss and in-flight loads use has reached the admit limit. */
static bool adm_capacity_full(const struct admission_config *cfg,
                              const struct admission_signals *sig)
{
    uint64_t limit = admission_admit_limit(cfg, sig);

    return limit > 0 && adm_add(sig->wss_bytes, sig->reserved_bytes) >= limit;
}

/* ---- the gate state machine ---- */

static void adm_gate_set(struct admission_gate_state *g, bool closed, uint64_t now)
{
    g->closed = closed;
    g->changed_ms = now;
    g->transitions++;
}

/* One observation of a gate. Returns true when it opened. */
static bool adm_gate_step(struct admission_gate_state *g, bool breach, uint64_t now,
                          uint64_t hold_down_ms)
{
    if (breach) {
        if (!g->breaching)
            g->breach_since_ms = now;
        g->breaching = true;
        g->last_breach_ms = now;
        if (!g->closed)
            adm_gate_set(g, true, now);
        return false;
    }
    g->breaching = false;
    if (g->closed && adm_since(now, g->last_breach_ms) >= hold_down_ms) {
        adm_gate_set(g, false, now);
        return true;
    }
    return false;
}

/* Hold-down time left on a closed gate whose signal no longer breaches. */
static uint64_t adm_hold_left(const struct admission_config *cfg,
                              const struct admission_gate_state *g, uint64_t now)
{
    uint64_t since = adm_since(now, g->last_breach_ms);

    return since >= cfg->hold_down_ms ? 0 : cfg->hold_down_ms - since;
}

bool admission_in_slow_start(const struct admission_config *cfg,
                             const struct admission_state *state, uint64_t now_ms)
{
    return state->recovered && cfg->slow_start_ms > 0 &&
           adm_since(now_ms, state->recovered_ms) < cfg->slow_start_ms;
}

static uint64_t adm_slow_start_left(const struct admission_config *cfg,
                                    const struct admission_state *state, uint64_t now)
{
    return cfg->slow_start_ms - adm_since(now, state->recovered_ms);
}

/* A config below 1 counts as 1, never as "none". */
uint64_t admission_max_loads(const struct admission_config *cfg,
                             const struct admission_state *state, uint64_t now)
{
    int64_t n = cfg->max_loads;

    if (admission_in_slow_start(cfg, state, now) && cfg->slow_start_max_loads < n)
        n = cfg->slow_start_max_loads;
    return n < 1 ? 1 : (uint64_t)n;
}

void admission_observe(const struct admission_config *cfg, const struct admission_signals *sig,
                       struct admission_state *state)
{
    struct admission_gate_state *g;
    uint64_t now = sig->now_ms, hold = cfg->hold_down_ms;
    bool opened = false, stall, breach;

    g = &state->gate[WIRE_REASON_MEM_CRITICAL];
    breach = adm_critical_breach(cfg, sig, g->closed, &stall);
    opened |= adm_gate_step(g, breach, now, hold);
    if (stall && !state->critical_stall)
        state->critical_stall_since_ms = now;
    state->critical_stall = stall;

    stall = adm_swapin_high(cfg, sig, state->swapin_high);
    if (stall && !state->swapin_high)
        state->swapin_since_ms = now;
    state->swapin_high = stall;
    g = &state->gate[WIRE_REASON_MEM_EXHAUSTION];
    breach = adm_tte_breach(cfg, sig, g->closed) || adm_swapin_sustained(cfg, state, now);
    opened |= adm_gate_step(g, breach, now, hold);

    g = &state->gate[WIRE_REASON_MEM_PRESSURE];
    breach = adm_pressure_some(cfg, sig, g->closed) || adm_pressure_avg10(cfg, sig, g->closed);
    opened |= adm_gate_step(g, breach, now, hold);

    g = &state->gate[WIRE_REASON_MEM_THRASHING];
    opened |= adm_gate_step(g, adm_thrash_breach(cfg, sig, g->closed), now, hold);

    g = &state->gate[WIRE_REASON_MEM_CAPACITY];
    opened |= adm_gate_step(g, adm_capacity_full(cfg, sig), now, hold);

    g = &state->gate[WIRE_REASON_LATENCY_SLO];
    opened |= adm_gate_step(g, adm_latency_breach(cfg, sig, g->closed), now, hold);

    if (opened) {
        state->recovered = true;
        state->recovered_ms = now;
    }

    /* Exact gates: state for status only, no hold-down, no slow start. */
    adm_gate_step(&state->gate[WIRE_REASON_DRAINING], sig->draining, now, 0);
    adm_gate_step(&state->gate[WIRE_REASON_LOAD_CONCURRENCY],
                  sig->loads_in_flight >= admission_max_loads(cfg, state, now), now, 0);
    adm_gate_step(&state->gate[WIRE_REASON_DISK_FULL],
                  sig->disk_free_bytes != UINT64_MAX &&
                      sig->disk_free_bytes < cfg->disk_reserve_bytes,
                  now, 0);
}

/* ---- verdicts ---- */

/* ms scaled by a factor in [1 - jitter, 1 + jitter] chosen by random; at least 1. */
static uint32_t adm_jitter(const struct admission_config *cfg, uint64_t ms, uint32_t random)
{
    double j = cfg->retry_jitter, u = (double)random / (double)UINT32_MAX, v;

    if (!(j >= 0))
        j = 0;
    if (j > 1)
        j = 1;
    v = (double)ms * (1.0 + j * (2.0 * u - 1.0));
    if (!(v >= 1))
        return 1;
    if (v >= (double)UINT32_MAX)
        return UINT32_MAX;
    return (uint32_t)llround(v);
}

/*
 * Retry-After of a stall gate. A PSI average decays like exp(-t / 10 s) once
 * the stall stops, so a signal at ratio x its exit threshold needs about
 * 10 s x ln(x) to fall under it: the retry is retry_pressure_ms x ln(ratio),
 * at least retry_pressure_ms (one time constant), at most
 * retry_pressure_max_ms, and never shorter than the hold-down still to run.
 */
static uint64_t adm_retry_pressure(const struct admission_config *cfg, double ratio,
                                   const struct admission_gate_state *g, uint64_t now)
{
    double r = (double)cfg->retry_pressure_ms;
    uint64_t ms, hold = adm_hold_left(cfg, g, now);

    if (ratio > ADM_E)
        r *= log(ratio); /* an infinite ratio (exit 0) gives the cap */
    if (!(r < (double)cfg->retry_pressure_max_ms))
        r = (double)cfg->retry_pressure_max_ms;
    ms = (uint64_t)r;
    return ms > hold ? ms : hold;
}

/* value / exit for the retry scale; 0 for no reading, infinite for exit 0. */
static double adm_ratio(double value, double exit_threshold)
{
    if (!isfinite(value) || value <= 0)
        return 0;
    return exit_threshold > 0 ? value / exit_threshold : HUGE_VAL;
}

static void adm_refuse(struct admission_verdict *ret, const struct admission_config *cfg,
                       enum wire_reason reason, uint64_t retry_ms, uint32_t random)
{
    ret->accept = false;
    ret->reason = reason;
    ret->retry_after_ms = adm_jitter(cfg, retry_ms, random);
}

/* How a closed stall gate's signal stands: over enter, still over exit, or held down. */
static void adm_level(char *buf, size_t len, const struct admission_config *cfg,
                      const struct admission_gate_state *g, uint64_t now, const char *what,
                      double v, double enter, double exit_threshold, const char *unit)
{
    if (adm_above(v, enter))
        adm_append(buf, len, "%s %.4g%s over enter %.4g%s (exit %.4g%s)", what, v, unit, enter,
                   unit, exit_threshold, unit);
    else if (g->breaching)
        adm_append(buf, len, "%s %.4g%s not yet under exit %.4g%s (enter %.4g%s)", what, v, unit,
                   exit_threshold, unit, enter, unit);
    else
        adm_append(buf, len, "%s %.4g%s under exit %.4g%s; held closed %llu ms more (hold-down)",
                   what, v, unit, exit_threshold, unit,
                   (unsigned long long)adm_hold_left(cfg, g, now));
}

/* Closes a hold-down gate that breaches its enter threshold now; decide never opens. */
static void adm_close_now(struct admission_gate_state *g, bool breach, uint64_t now)
{
    if (!g->closed && breach)
        adm_gate_step(g, true, now, 0);
}

static bool adm_check_critical(const struct admission_config *cfg,
                               const struct admission_signals *sig, struct admission_state *state,
                               uint32_t random, struct admission_verdict *ret)
{
    struct admission_gate_state *g = &state->gate[WIRE_REASON_MEM_CRITICAL];
    uint64_t now = sig->now_ms;
    bool stall;

    adm_close_now(g, adm_critical_breach(cfg, sig, false, &stall), now);
    if (!g->closed)
        return false;
    if (cfg->critical_on_oom_kill && sig->oom_kills_recent > 0) {
        /* The count covers a minute: retry at the cap. */
        adm_refuse(ret, cfg, WIRE_REASON_MEM_CRITICAL, cfg->retry_pressure_max_ms, random);
        adm_append(ret->detail, sizeof(ret->detail),
                   "%llu oom_kill event(s) in the last minute (threshold 1)",
                   (unsigned long long)sig->oom_kills_recent);
        return true;
    }
    adm_refuse(ret, cfg, WIRE_REASON_MEM_CRITICAL,
               adm_retry_pressure(cfg, adm_ratio(sig->full_frac, cfg->critical_full_exit), g, now),
               random);
    adm_level(ret->detail, sizeof(ret->detail), cfg, g, now, "full stall fraction", sig->full_frac,
              cfg->critical_full_enter, cfg->critical_full_exit, "");
    adm_append(ret->detail, sizeof(ret->detail), "; full avg10 %.4g%%", sig->full_avg10);
    return true;
}

/* Milliseconds as seconds for a detail; "never" for UINT64_MAX. */
static void adm_append_s(char *buf, size_t len, uint64_t ms)
{
    if (ms == UINT64_MAX)
        adm_append(buf, len, "never");
    else
        adm_append(buf, len, "%.1f s", (double)ms / 1000.0);
}

static bool adm_check_exhaust(const struct admission_config *cfg,
                              const struct admission_signals *sig, struct admission_state *state,
                              uint32_t random, struct admission_verdict *ret)
{
    struct admission_gate_state *g = &state->gate[WIRE_REASON_MEM_EXHAUSTION];
    uint64_t now = sig->now_ms;
    bool fast;

    adm_close_now(g, adm_tte_breach(cfg, sig, false), now);
    if (!g->closed)
        return false;
    fast = sig->exhaust_available && sig->fill_ms < cfg->exhaust_fast_fill_ms;
    adm_refuse(ret, cfg, WIRE_REASON_MEM_EXHAUSTION,
               fast ? adm_retry_pressure(cfg, 0, g, now) : cfg->retry_capacity_ms, random);
    adm_append(ret->detail, sizeof(ret->detail), "time to exhaustion ");
    adm_append_s(ret->detail, sizeof(ret->detail),
                 sig->exhaust_available ? sig->tte_ms : UINT64_MAX);
    adm_append(ret->detail, sizeof(ret->detail), " (enter %.1f s), growth %.4g MiB/s, fill ",
               (double)cfg->exhaust_tte_enter_ms / 1000.0, sig->growth_bytes_per_s / 1048576.0);
    adm_append_s(ret->detail, sizeof(ret->detail),
                 sig->exhaust_available ? sig->fill_ms : UINT64_MAX);
    adm_append(ret->detail, sizeof(ret->detail), ": %s; swap-in %.4g pages/s (enter %.4g%s)",
               fast ? "fast run, shedding" : "slow leak, go elsewhere", sig->swapins_per_s,
               cfg->exhaust_swapin_enter,
               adm_swapin_sustained(cfg, state, now) ? ", sustained" : "");
    return true;
}

static bool adm_check_pressure(const struct admission_config *cfg,
                               const struct admission_signals *sig, struct admission_state *state,
                               uint32_t random, struct admission_verdict *ret)
{
    struct admission_gate_state *g = &state->gate[WIRE_REASON_MEM_PRESSURE];
    uint64_t now = sig->now_ms;
    double some_ratio, avg_ratio;
    bool avg;

    adm_close_now(g, adm_pressure_some(cfg, sig, false) || adm_pressure_avg10(cfg, sig, false),
                  now);
    if (!g->closed)
        return false;
    some_ratio =
        adm_above(sig->pgscan_per_s, 0) ? adm_ratio(sig->some_frac, cfg->pressure_some_exit) : 0;
    avg_ratio = adm_ratio(sig->some_avg10, cfg->pressure_avg10_exit);
    adm_refuse(ret, cfg, WIRE_REASON_MEM_PRESSURE,
               adm_retry_pressure(cfg, fmax(some_ratio, avg_ratio), g, now), random);
    /* Name the signal that holds the gate: avg10 if it breaches and the stall does not. */
    avg = adm_pressure_avg10(cfg, sig, true) && !adm_pressure_some(cfg, sig, true);
    if (avg)
        adm_level(ret->detail, sizeof(ret->detail), cfg, g, now, "some avg10", sig->some_avg10,
                  cfg->pressure_avg10_enter, cfg->pressure_avg10_exit, "%");
    else
        adm_level(ret->detail, sizeof(ret->detail), cfg, g, now, "some stall fraction",
                  sig->some_frac, cfg->pressure_some_enter, cfg->pressure_some_exit, "");
    adm_append(ret->detail, sizeof(ret->detail), "; pgscan %.4g/s", sig->pgscan_per_s);
    return true;
}

static bool adm_check_thrash(const struct admission_config *cfg,
                             const struct admission_signals *sig, struct admission_state *state,
                             uint32_t random, struct admission_verdict *ret)
{
    struct admission_gate_state *g = &state->gate[WIRE_REASON_MEM_THRASHING];
    uint64_t now = sig->now_ms;

    adm_close_now(g, adm_thrash_breach(cfg, sig, false), now);
    if (!g->closed)
        return false;
    adm_refuse(
        ret, cfg, WIRE_REASON_MEM_THRASHING,
        adm_retry_pressure(cfg, adm_ratio(sig->refaults_per_s, cfg->thrash_refault_exit), g, now),
        random);
    adm_level(ret->detail, sizeof(ret->detail), cfg, g, now, "workingset refaults",
              sig->refaults_per_s, cfg->thrash_refault_enter, cfg->thrash_refault_exit, " pages/s");
    return true;
}

static bool adm_check_capacity(const struct admission_config *cfg,
                               const struct admission_signals *sig, struct admission_state *state,
                               const struct admission_request *req, uint32_t random,
                               struct admission_verdict *ret)
{
    struct admission_gate_state *g = &state->gate[WIRE_REASON_MEM_CAPACITY];
    uint64_t now = sig->now_ms, limit = admission_admit_limit(cfg, sig);
    uint64_t used = adm_add(sig->wss_bytes, sig->reserved_bytes), headroom, allowed;

    if (limit == 0)
        return false; /* unknown limit: said in the accept detail */
    adm_close_now(g, used >= limit, now);
    if (g->closed) {
        adm_refuse(ret, cfg, WIRE_REASON_MEM_CAPACITY, cfg->retry_capacity_ms, random);
        adm_append(ret->detail, sizeof(ret->detail),
                   "wss %llu + reserved %llu = %llu %s admit limit %llu",
                   (unsigned long long)sig->wss_bytes, (unsigned long long)sig->reserved_bytes,
                   (unsigned long long)used, used >= limit ? "reaches" : "is under",
                   (unsigned long long)limit);
        if (used < limit)
            adm_append(ret->detail, sizeof(ret->detail), "; held closed %llu ms more (hold-down)",
                       (unsigned long long)adm_hold_left(cfg, g, now));
        return true;
    }
    if (adm_add(used, req->cost_bytes) > limit) {
        adm_refuse(ret, cfg, WIRE_REASON_MEM_CAPACITY, cfg->retry_capacity_ms, random);
        adm_append(ret->detail, sizeof(ret->detail),
                   "wss %llu + reserved %llu + cost %llu > admit limit %llu",
                   (unsigned long long)sig->wss_bytes, (unsigned long long)sig->reserved_bytes,
                   (unsigned long long)req->cost_bytes, (unsigned long long)limit);
        if (cfg->budget_bytes == 0)
            adm_append(ret->detail, sizeof(ret->detail), " (limit %llu x %.3g)",
                       (unsigned long long)sig->limit_bytes, admission_watermark(cfg, sig));
        return true;
    }
    if (!admission_in_slow_start(cfg, state, now))
        return false;
    headroom = limit - used;
    allowed = (uint64_t)((double)headroom * fmin(fmax(cfg->slow_start_headroom, 0), 1));
    if (req->cost_bytes <= allowed)
        return false;
    /* Refused only by slow start, which ends at a known time: retry then. */
    adm_refuse(ret, cfg, WIRE_REASON_MEM_CAPACITY,
               adm_slow_start_left(cfg, state, now) > cfg->retry_concurrency_ms
                   ? adm_slow_start_left(cfg, state, now)
                   : cfg->retry_concurrency_ms,
               random);
    adm_append(ret->detail, sizeof(ret->detail),
               "slow start: cost %llu > %.3g x headroom %llu under admit limit %llu (%llu ms left)",
               (unsigned long long)req->cost_bytes, cfg->slow_start_headroom,
               (unsigned long long)headroom, (unsigned long long)limit,
               (unsigned long long)adm_slow_start_left(cfg, state, now));
    return true;
}

static bool adm_check_latency(const struct admission_config *cfg,
                              const struct admission_signals *sig, struct admission_state *state,
                              uint32_t random, struct admission_verdict *ret)
{
    struct admission_gate_state *g = &state->gate[WIRE_REASON_LATENCY_SLO];
    uint64_t now = sig->now_ms;
    double slo = (double)cfg->latency_slo_ms;

    adm_close_now(g, adm_latency_breach(cfg, sig, false), now);
    if (!g->closed)
        return false;
    adm_refuse(ret, cfg, WIRE_REASON_LATENCY_SLO, cfg->retry_latency_ms, random);
    if (g->breaching || adm_latency_breach(cfg, sig, true))
        adm_append(ret->detail, sizeof(ret->detail),
                   "p99 over 10 s %.4g ms not under %.4g ms (SLO %llu ms x %.3g); baseline "
                   "%.4g ms x %.3g",
                   sig->p99_10s_ms, slo * cfg->latency_exit_ratio,
                   (unsigned long long)cfg->latency_slo_ms, cfg->latency_exit_ratio,
                   sig->baseline_p99_ms, cfg->latency_baseline_factor);
    else
        adm_append(ret->detail, sizeof(ret->detail),
                   "p99 over 10 s %.4g ms back under %.4g ms; held closed %llu ms more (hold-down)",
                   sig->p99_10s_ms, slo * cfg->latency_exit_ratio,
                   (unsigned long long)adm_hold_left(cfg, g, now));
    adm_append(ret->detail, sizeof(ret->detail), "; p99 over 1 s %.4g ms, %llu queries",
               sig->p99_1s_ms, (unsigned long long)sig->queries_10s);
    return true;
}

static bool adm_check_concurrency(const struct admission_config *cfg,
                                  const struct admission_signals *sig,
                                  const struct admission_state *state, uint32_t random,
                                  struct admission_verdict *ret)
{
    uint64_t now = sig->now_ms, max = admission_max_loads(cfg, state, now);

    if (sig->loads_in_flight < max)
        return false;
    adm_refuse(ret, cfg, WIRE_REASON_LOAD_CONCURRENCY, cfg->retry_concurrency_ms, random);
    adm_append(ret->detail, sizeof(ret->detail), "%u load(s) in flight, max %llu",
               sig->loads_in_flight, (unsigned long long)max);
    if (admission_in_slow_start(cfg, state, now) && (int64_t)max < cfg->max_loads)
        adm_append(ret->detail, sizeof(ret->detail), " during slow start (%llu ms left, then %lld)",
                   (unsigned long long)adm_slow_start_left(cfg, state, now),
                   (long long)cfg->max_loads);
    return true;
}

static bool adm_check_disk(const struct admission_config *cfg, const struct admission_signals *sig,
                           const struct admission_request *req, uint32_t random,
                           struct admission_verdict *ret)
{
    uint64_t need = adm_add(req->file_bytes, cfg->disk_reserve_bytes);

    if (sig->disk_free_bytes == UINT64_MAX || need <= sig->disk_free_bytes)
        return false;
    adm_refuse(ret, cfg, WIRE_REASON_DISK_FULL, cfg->retry_disk_ms, random);
    adm_append(ret->detail, sizeof(ret->detail), "file %llu + disk reserve %llu > disk free %llu",
               (unsigned long long)req->file_bytes, (unsigned long long)cfg->disk_reserve_bytes,
               (unsigned long long)sig->disk_free_bytes);
    return true;
}

/* Says which gates could not fire for want of a signal. */
static void adm_notes(const struct admission_config *cfg, const struct admission_signals *sig,
                      char *buf, size_t len)
{
    if (!sig->psi_available)
        adm_append(buf, len, "; psi unavailable: stall gates off");
    if (!sig->refaults_available)
        adm_append(buf, len, "; refaults unavailable: MEM_THRASHING off");
    if (admission_admit_limit(cfg, sig) == 0)
        adm_append(buf, len, "; memory limit unknown: MEM_CAPACITY off");
}

void admission_decide(const struct admission_config *cfg, const struct admission_signals *sig,
                      struct admission_state *state, const struct admission_request *req,
                      uint32_t random, struct admission_verdict *ret)
{
    uint64_t now = sig->now_ms, limit, used;

    memset(ret, 0, sizeof(*ret));
    if (sig->draining) {
        adm_refuse(ret, cfg, WIRE_REASON_DRAINING, cfg->retry_draining_ms, random);
        adm_append(ret->detail, sizeof(ret->detail), "node is draining");
        return;
    }
    if (adm_check_critical(cfg, sig, state, random, ret) ||
        adm_check_exhaust(cfg, sig, state, random, ret) ||
        adm_check_pressure(cfg, sig, state, random, ret) ||
        adm_check_thrash(cfg, sig, state, random, ret) ||
        adm_check_capacity(cfg, sig, state, req, random, ret) ||
        adm_check_latency(cfg, sig, state, random, ret) ||
        adm_check_concurrency(cfg, sig, state, random, ret) ||
        adm_check_disk(cfg, sig, req, random, ret)) {
        adm_notes(cfg, sig, ret->detail, sizeof(ret->detail));
        return;
    }
    ret->accept = true;
    ret->reason = WIRE_REASON_NONE;
    ret->retry_after_ms = 0;
    limit = admission_admit_limit(cfg, sig);
    used = adm_add(sig->wss_bytes, sig->reserved_bytes);
    adm_append(ret->detail, sizeof(ret->detail), "admitted: cost %llu",
               (unsigned long long)req->cost_bytes);
    if (limit > 0)
        adm_append(ret->detail, sizeof(ret->detail), ", headroom %llu under admit limit %llu",
                   (unsigned long long)(limit - used), (unsigned long long)limit);
    if (admission_in_slow_start(cfg, state, now))
        adm_append(ret->detail, sizeof(ret->detail), "; slow start %llu ms left",
                   (unsigned long long)adm_slow_start_left(cfg, state, now));
    adm_notes(cfg, sig, ret->detail, sizeof(ret->detail));
}

bool admission_quiet(const struct admission_config *cfg, const struct admission_signals *sig,
                     const struct admission_state *state, const char **ret_why)
{
    const char *why = NULL;
    bool stall;

    if (adm_critical_breach(cfg, sig, true, &stall))
        why = stall ? "full stall" : "recent oom_kill";
    else if (adm_pressure_some(cfg, sig, true) || adm_pressure_avg10(cfg, sig, true))
        why = "memory stall";
    else if (adm_thrash_breach(cfg, sig, true))
        why = "refaults";
    else if (adm_swapin_high(cfg, sig, true))
        why = "swap-in";
    else if (adm_tte_breach(cfg, sig, true))
        why = "time to exhaustion";
    else if (adm_latency_known(cfg, sig) &&
             !(sig->p99_10s_ms < (double)cfg->latency_slo_ms * cfg->latency_exit_ratio))
        why = "p99";
    else if (admission_in_slow_start(cfg, state, sig->now_ms))
        why = "slow start";
    if (why != NULL && ret_why != NULL)
        *ret_why = why;
    return why == NULL;
}

/* ---- shedding ---- */

bool admission_should_shed(const struct admission_config *cfg, const struct admission_state *state,
                           const struct admission_signals *sig)
{
    const struct admission_gate_state *g;
    uint64_t now = sig->now_ms;

    if (cfg->shed_after_ms == 0)
        return false;
    if (state->shed && adm_since(now, state->last_shed_ms) < cfg->shed_cooldown_ms)
        return false;
    g = &state->gate[WIRE_REASON_MEM_EXHAUSTION];
    if (g->closed && adm_tte_breach(cfg, sig, true) && sig->fill_ms < cfg->exhaust_fast_fill_ms)
        return true; /* a fast run to OOM: waiting shed_after_ms may be too late */
    g = &state->gate[WIRE_REASON_MEM_CRITICAL];
    if (g->closed && state->critical_stall &&
        adm_since(now, state->critical_stall_since_ms) >= cfg->shed_after_ms)
        return true;
    g = &state->gate[WIRE_REASON_MEM_THRASHING];
    return g->closed && g->breaching && adm_since(now, g->breach_since_ms) >= cfg->shed_after_ms;
}

void admission_note_shed(struct admission_state *state, uint64_t now_ms)
{
    state->shed = true;
    state->last_shed_ms = now_ms;
}

/* ---- names and status ---- */

bool admission_is_gate(enum wire_reason reason)
{
    return reason == WIRE_REASON_MEM_EXHAUSTION ||
           ((unsigned)reason >= ADMISSION_GATE_FIRST && (unsigned)reason <= ADMISSION_GATE_LAST);
}

bool admission_gate_closed(const struct admission_state *state, enum wire_reason reason)
{
    if (!admission_is_gate(reason))
        return false;
    return state->gate[reason].closed;
}

uint64_t admission_gate_transitions(const struct admission_state *state, enum wire_reason reason)
{
    if (!admission_is_gate(reason))
        return 0;
    return state->gate[reason].transitions;
}

/* ---- cost model ---- */

/* The factor in force: 1.0 for a zeroed or corrupt struct, else clamped to the ratio range. */
static double adm_cost_factor(const struct admission_cost *c)
{
    double f = c->factor;

    if (!isfinite(f) || f <= 0)
        return 1.0;
    return fmin(fmax(f, ADMISSION_COST_RATIO_MIN), ADMISSION_COST_RATIO_MAX);
}

void admission_cost_init(struct admission_cost *c)
{
    c->factor = 1.0;
    c->samples = 0;
}

uint64_t admission_cost_estimate(const struct admission_cost *c, uint64_t row_count,
                                 uint64_t avg_row_size)
{
    uint64_t raw;
    double v;

    if (avg_row_size == 0)
        avg_row_size = 1;
    if (__builtin_mul_overflow(row_count, avg_row_size, &raw))
        return UINT64_MAX;
    v = ceil((double)raw * adm_cost_factor(c));
    /* 2^64: the first double that does not fit. */
    if (!(v < 18446744073709551616.0))
        return UINT64_MAX;
    return (uint64_t)v;
}

uint64_t admission_cost_declared(uint64_t estimate_bytes, uint64_t request_bytes)
{
    return request_bytes > estimate_bytes ? request_bytes : estimate_bytes;
}

void admission_cost_learn(struct admission_cost *c, uint64_t estimate_bytes,
                          uint64_t observed_bytes)
{
    double ratio;

    if (estimate_bytes == 0 || observed_bytes == 0)
        return;
    ratio = (double)observed_bytes / (double)estimate_bytes;
    ratio = fmin(fmax(ratio, ADMISSION_COST_RATIO_MIN), ADMISSION_COST_RATIO_MAX);
    c->factor = exp((1.0 - ADMISSION_COST_ALPHA) * log(adm_cost_factor(c)) +
                    ADMISSION_COST_ALPHA * log(ratio));
    if (c->samples < UINT_MAX)
        c->samples++;
}

/* ---- the reservation ledger ------------------------------------------------ */

struct admission_ledger {
    struct strmap *held; /* id -> struct admission_hold */
    uint64_t mem_bytes;  /* pending + held cost */
    uint64_t disk_bytes; /* held disk */
};

struct admission_ledger *admission_ledger_new(void)
{
    struct admission_ledger *l = xcalloc(1, sizeof(*l));

    l->held = strmap_new();
    return l;
}

static int adm_free_hold(const char *key, void *value, void *arg)
{
    free(value);
    return 0;
}

void admission_ledger_free(struct admission_ledger *l)
{
    if (l == NULL)
        return;
    strmap_foreach(l->held, adm_free_hold, NULL);
    strmap_free(l->held);
    free(l);
}

void admission_ledger_pend(struct admission_ledger *l, uint64_t cost)
{
    l->mem_bytes = adm_add(l->mem_bytes, cost);
}

void admission_ledger_unpend(struct admission_ledger *l, uint64_t cost)
{
    l->mem_bytes = l->mem_bytes > cost ? l->mem_bytes - cost : 0;
}

/* id's entry, created empty if none. */
static struct admission_hold *adm_hold_of(struct admission_ledger *l, const char *id)
{
    struct admission_hold *h = strmap_get(l->held, id);

    if (h == NULL) {
        h = xcalloc(1, sizeof(*h));
        strmap_put(l->held, id, h);
    }
    return h;
}

void admission_ledger_commit(struct admission_ledger *l, const char *id, uint64_t cost,
                             uint64_t raw)
{
    struct admission_hold *h = adm_hold_of(l, id);

    h->cost = adm_add(h->cost, cost);
    h->raw = raw;
}

int admission_heap_admit(const struct admission_config *cfg,
                         const struct admission_signals *sig, uint64_t cost_bytes,
                         uint64_t heap_bytes, uint64_t *ret_extra, char *detail, size_t len)
{
    uint64_t extra = heap_bytes > cost_bytes ? heap_bytes - cost_bytes : 0;
    uint64_t limit = admission_admit_limit(cfg, sig);
    uint64_t used = adm_add(sig->wss_bytes, sig->reserved_bytes);

    *ret_extra = 0;
    if (len > 0)
        detail[0] = '\0';
    if (extra == 0 || limit == 0)
        return 0;
    if (adm_add(used, extra) > limit) {
        snprintf(detail, len,
                 "the file's in-memory columns need %llu bytes, %llu more than the %llu "
                 "admitted from the request: wss %llu + reserved %llu + %llu > admit limit %llu",
                 (unsigned long long)heap_bytes, (unsigned long long)extra,
                 (unsigned long long)cost_bytes, (unsigned long long)sig->wss_bytes,
                 (unsigned long long)sig->reserved_bytes, (unsigned long long)extra,
                 (unsigned long long)limit);
        return -ENOMEM;
    }
    *ret_extra = extra;
    return 0;
}

int admission_disk_admit(const struct admission_config *cfg, struct admission_ledger *l,
                         const char *id, uint64_t file_bytes, int disk_err,
                         uint64_t disk_avail, char *detail, size_t len)
{
    uint64_t need = adm_add(adm_add(file_bytes, cfg->disk_reserve_bytes), l->disk_bytes);
    struct admission_hold *h;

    if (disk_err < 0) {
        snprintf(detail, len, "cannot measure the free space of the local disk: %s",
                 strerror(-disk_err));
        return -ENOSPC;
    }
    if (disk_avail < need) {
        snprintf(detail, len,
                 "local disk has %llu bytes free; this segment needs %llu plus a reserve of %llu "
                 "and %llu promised to loads in flight",
                 (unsigned long long)disk_avail, (unsigned long long)file_bytes,
                 (unsigned long long)cfg->disk_reserve_bytes,
                 (unsigned long long)l->disk_bytes);
        return -ENOSPC;
    }
    h = adm_hold_of(l, id);
    h->disk = adm_add(h->disk, file_bytes);
    l->disk_bytes = adm_add(l->disk_bytes, file_bytes);
    if (len > 0)
        detail[0] = '\0';
    return 0;
}

int admission_ledger_release(struct admission_ledger *l, const char *id,
                             struct admission_hold *ret)
{
    struct admission_hold *h = strmap_remove(l->held, id);

    if (h == NULL)
        return -ENOENT;
    l->mem_bytes = l->mem_bytes > h->cost ? l->mem_bytes - h->cost : 0;
    l->disk_bytes = l->disk_bytes > h->disk ? l->disk_bytes - h->disk : 0;
    if (ret != NULL)
        *ret = *h;
    free(h);
    return 0;
}

uint64_t admission_ledger_mem_bytes(const struct admission_ledger *l)
{
    return l->mem_bytes;
}

uint64_t admission_ledger_disk_bytes(const struct admission_ledger *l)
{
    return l->disk_bytes;
}

/*
 * What an errno says about this node, for both mappings below: out of disk
 * (DISK_FULL), out of descriptors or memory (MEM_CAPACITY: go elsewhere), or
 * nothing a reason names (NONE).
 */
static enum wire_reason admission_errno_reason(int err)
{
    switch (err < 0 ? -err : err) {
    case ENOSPC:
    case EDQUOT:
        return WIRE_REASON_DISK_FULL;
    case EMFILE:
    case ENFILE:
    case ENOMEM:
    case EAGAIN:
        return WIRE_REASON_MEM_CAPACITY;
    default:
        return WIRE_REASON_NONE;
    }
}

int admission_store_answer(int err, enum wire_reason *ret_reason)
{
    switch (-err) {
    case 0:
        *ret_reason = WIRE_REASON_NONE;
        return 202;
    case EINVAL:
        *ret_reason = WIRE_REASON_SEGMENT_INVALID;
        break;
    case ESHUTDOWN:
        *ret_reason = WIRE_REASON_DRAINING;
        break;
    default:
        *ret_reason = admission_errno_reason(err);
        if (*ret_reason == WIRE_REASON_NONE)
            return 409;
        break;
    }
    return reason_http_status(*ret_reason);
}

enum wire_reason admission_load_reason(int err)
{
    if (segment_is_format_error(err))
        return WIRE_REASON_SEGMENT_INVALID;
    return admission_errno_reason(err);
}
