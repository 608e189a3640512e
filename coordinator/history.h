/*
 * history: a bounded ring of what one node's reports said (memory used and
 * its limit, WSS, PSI some/full, query p99), for the web status page's
 * sparklines over the last 10 minutes (GET /v1/history). Pure: the caller
 * gives the time; nothing here reads a clock or allocates.
 *
 * A node reports every second or so; the ring keeps one sample per
 * HISTORY_STEP_MS at most (later reports within a step are skipped), so
 * HISTORY_SAMPLES samples cover 10 minutes whatever the report interval,
 * and a node costs a fixed ~14 KiB. Lost on a coordinator restart: it is a
 * view, not a record (Prometheus keeps the record).
 *
 * The struct is declared here because each struct coord_node embeds one.
 */
#ifndef SLUICE_HISTORY_H
#define SLUICE_HISTORY_H

#include <stddef.h>
#include <stdint.h>

#include "wire.h"

#define HISTORY_STEP_MS 2000u
#define HISTORY_SAMPLES 300u /* 10 minutes at HISTORY_STEP_MS */

struct history {
    struct wire_history_sample ring[HISTORY_SAMPLES];
    size_t head; /* next slot to write */
    size_t n;    /* samples held, <= HISTORY_SAMPLES */
};

/*
 * Records p as of wall time now_ms, unless the newest sample is less than
 * HISTORY_STEP_MS older (then nothing changes). A clock that stepped back
 * (now_ms before the newest sample) records, so the ring never stalls.
 * When full, the oldest sample goes.
 */
void history_push(struct history *h, uint64_t now_ms, const struct wire_pressure *p);

/*
 * Copies the samples no older than window_ms before now_ms into out (room
 * for HISTORY_SAMPLES), oldest first; returns how many.
 */
size_t history_copy(const struct history *h, uint64_t now_ms, uint64_t window_ms,
                    struct wire_history_sample *out);

#endif
