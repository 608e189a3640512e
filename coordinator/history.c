/*
 * history: the per-node ring of report samples behind GET /v1/history.
 * O(1) per report, O(HISTORY_SAMPLES) per read.
 */
#include "history.h"

#include <string.h>

void history_push(struct history *h, uint64_t now_ms, const struct wire_pressure *p)
{
    struct wire_history_sample *s;

    if (h->n > 0) {
        const struct wire_history_sample *last =
            &h->ring[(h->head + HISTORY_SAMPLES - 1) % HISTORY_SAMPLES];

        if (now_ms >= last->ts_ms && now_ms - last->ts_ms < HISTORY_STEP_MS)
            return;
    }
    s = &h->ring[h->head];
    memset(s, 0, sizeof(*s));
    s->ts_ms = now_ms;
    s->usage_bytes = p->usage_bytes;
    s->limit_bytes = p->limit_bytes;
    s->wss_bytes = p->wss_bytes;
    s->some_avg10 = p->some_avg10;
    s->full_avg10 = p->full_avg10;
    s->p99_seconds = p->p99_seconds;
    h->head = (h->head + 1) % HISTORY_SAMPLES;
    if (h->n < HISTORY_SAMPLES)
        h->n++;
}

size_t history_copy(const struct history *h, uint64_t now_ms, uint64_t window_ms,
                    struct wire_history_sample *out)
{
    size_t first = (h->head + HISTORY_SAMPLES - h->n) % HISTORY_SAMPLES, k = 0;

    for (size_t i = 0; i < h->n; i++) {
        const struct wire_history_sample *s = &h->ring[(first + i) % HISTORY_SAMPLES];

        if (s->ts_ms + window_ms >= now_ms)
            out[k++] = *s;
    }
    return k;
}
