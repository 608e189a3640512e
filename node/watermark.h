/*
 * watermark: the adaptive admit watermark, as pure code (not yet wired into
 * the node: see issue 21). The admit limit starts at the configured
 * watermark (--admit-high-watermark). While the caller reports the node
 * quiet (no memory stall, no refault growth, no swap-in, p99 under the SLO)
 * it probes upward by step every probe_ms, bounded by ceiling; any breach
 * drops it back to the base at once, like TCP's congestion window after a
 * loss, and probing restarts only after a further probe_ms of quiet.
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

#endif
