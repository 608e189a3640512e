/*
 * watermark: the adaptive admit watermark, as pure code. The admit limit
 * starts at the configured watermark (--admit-high-watermark). While the
 * node is quiet (no memory stall, no refault growth, no swap-in, p99 under
 * the SLO) and wants more (watermark_judge()), it probes upward by step
 * every probe_ms, bounded by ceiling; any breach drops it back to the base
 * at once, like TCP's congestion window after a loss, and probing restarts
 * only after a further probe_ms of quiet.
 *
 * The node calls watermark_judge() and watermark_update() on every tick,
 * after admission_observe(), and passes the result to admission in
 * admission_signals.admit_watermark. Like TCP's window, which grows only
 * while the sender has more to send than it allows (RFC 7661), the
 * watermark grows only while the node is capacity-limited: its footprint
 * within one step of the admit limit, or MEM_CAPACITY refused something in
 * the last --retry-capacity (the time a refused segment takes to come back).
 * An idle node keeps its watermark: quiet at half its memory says nothing
 * about the last tenth.
 *
 * No I/O, no clock: the caller passes now_ms. One struct watermark per node,
 * owned by the loop thread; a zeroed struct reads as "not started" and is
 * set to the base by the first watermark_update().
 */
#ifndef SLUICE_WATERMARK_H
#define SLUICE_WATERMARK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "admission.h"

struct watermark_config {
    double base;       /* the configured watermark, 0 < base <= ceiling <= 1 */
    double ceiling;    /* never probe above this */
    double step;       /* added per probe, > 0 */
    uint64_t probe_ms; /* quiet time needed before each step */
};

struct watermark {
    bool started;
    double current;          /* the watermark in force */
    uint64_t quiet_since_ms; /* start of the current quiet run (or last step) */
    uint64_t backoffs;       /* breaches that dropped it back */
};

/* Checks the ranges above; 0 or -EINVAL with a sentence in err. */
int watermark_config_check(const struct watermark_config *cfg, char *err, size_t err_len);

/*
 * One observation: breach drops current to base at once (and counts a
 * backoff if it was above); quiet for probe_ms since the last step or
 * breach adds step, capped at ceiling; neither (not quiet, no breach) holds
 * current and restarts the quiet run. Returns the watermark in force.
 */
double watermark_update(struct watermark *w, const struct watermark_config *cfg, bool quiet,
                        bool breach, uint64_t now_ms);

/* One tick's judgement, from watermark_judge(). */
struct watermark_view {
    bool quiet;      /* probe may go on: quiet signals and demand */
    bool breach;     /* drop back to the base now */
    const char *why; /* static: "quiet", the closed gate, or what holds it */
};

/*
 * Judges one tick from the admission controller's view after
 * admission_observe(); sig->admit_watermark is the watermark in force.
 * Breach: MEM_CRITICAL, MEM_EXHAUSTION, MEM_PRESSURE, MEM_THRASHING or
 * LATENCY_SLO closed. Quiet: admission_quiet() and demand (see the top of
 * this file; refused says whether MEM_CAPACITY ever refused, last at
 * refused_ms). Neither: hold. ret is always written.
 */
void watermark_judge(const struct watermark_config *cfg, const struct admission_config *acfg,
                     const struct admission_signals *sig, const struct admission_state *astate,
                     bool refused, uint64_t refused_ms, struct watermark_view *ret);

#endif
