/*
 * latency: a ring of per-second histograms with lazy expiry. Each slot is
 * stamped with the second it holds; recording into a slot whose stamp is
 * another second clears it first, and readers skip slots whose stamp falls
 * outside their window. That is the whole expiry mechanism: no timer, and a
 * gap of an hour costs the same as a gap of a second.
 */
#include "latency.h"

#include <math.h>
#include <stdlib.h>

#include "histogram.h"
#include "xmalloc.h"

#define NS_PER_S   UINT64_C(1000000000)
#define NO_SECOND  UINT64_MAX
#define BASELINE_Q 0.99

struct latency_slot {
    uint64_t sec; /* the second this slot holds, NO_SECOND if never used */
    struct histogram h;
};

struct latency {
    struct latency_slot slots[LATENCY_SLOTS];
    struct histogram scratch; /* merge target for reads; avoids a 9 KiB stack frame */
    uint64_t newest_sec;      /* newest second recorded, NO_SECOND before the first */
    uint64_t last_tick_sec;   /* second of the last latency_tick, NO_SECOND before */
    double baseline;          /* ns; 0 until a window qualifies */
    double alpha;
    uint64_t min_count;
    unsigned window_s;
};

struct latency *latency_new(const struct latency_config *cfg)
{
    struct latency *l = xcalloc(1, sizeof(*l));

    for (size_t i = 0; i < LATENCY_SLOTS; i++)
        l->slots[i].sec = NO_SECOND;
    l->newest_sec = NO_SECOND;
    l->last_tick_sec = NO_SECOND;
    l->alpha = LATENCY_DEFAULT_ALPHA;
    l->min_count = LATENCY_DEFAULT_MIN_COUNT;
    l->window_s = LATENCY_DEFAULT_WINDOW_S;
    if (cfg != NULL) {
        if (cfg->baseline_alpha > 0.0 && cfg->baseline_alpha <= 1.0)
            l->alpha = cfg->baseline_alpha;
        if (cfg->baseline_min_count > 0)
            l->min_count = cfg->baseline_min_count;
        if (cfg->baseline_window_s >= 1 && cfg->baseline_window_s <= LATENCY_SLOTS)
            l->window_s = cfg->baseline_window_s;
    }
    return l;
}

void latency_free(struct latency *l)
{
    free(l);
}

void latency_record(struct latency *l, uint64_t now_ns, uint64_t value_ns)
{
    uint64_t sec = now_ns / NS_PER_S;
    struct latency_slot *slot;

    if (l->newest_sec != NO_SECOND && sec < l->newest_sec)
        sec = l->newest_sec;
    l->newest_sec = sec;
    slot = &l->slots[sec % LATENCY_SLOTS];
    if (slot->sec != sec) {
        histogram_reset(&slot->h);
        slot->sec = sec;
    }
    histogram_record(&slot->h, value_ns);
}

/* The slot holding second sec, or NULL if that second is not in the ring. */
static const struct latency_slot *latency_slot_at(const struct latency *l, uint64_t sec)
{
    const struct latency_slot *slot = &l->slots[sec % LATENCY_SLOTS];

    return slot->sec == sec ? slot : NULL;
}

/*
 * Merges the seconds [last - n + 1, last] into l->scratch (clipped at second
 * 0) and returns the number of queries merged.
 */
static uint64_t latency_merge(struct latency *l, uint64_t last, unsigned n)
{
    histogram_reset(&l->scratch);
    for (unsigned k = 0; k < n && k <= last; k++) {
        const struct latency_slot *slot = latency_slot_at(l, last - k);

        if (slot != NULL)
            histogram_merge(&l->scratch, &slot->h);
    }
    return l->scratch.total;
}

static unsigned latency_clamp_window(unsigned window_s)
{
    if (window_s < 1)
        return 1;
    return window_s > LATENCY_SLOTS ? LATENCY_SLOTS : window_s;
}

uint64_t latency_quantile(struct latency *l, uint64_t now_ns, unsigned window_s, double q)
{
    if (latency_merge(l, now_ns / NS_PER_S, latency_clamp_window(window_s)) == 0)
        return 0;
    return histogram_quantile(&l->scratch, q);
}

uint64_t latency_count(const struct latency *l, uint64_t now_ns, unsigned window_s)
{
    uint64_t last = now_ns / NS_PER_S, total = 0;
    unsigned n = latency_clamp_window(window_s);

    for (unsigned k = 0; k < n && k <= last; k++) {
        const struct latency_slot *slot = latency_slot_at(l, last - k);

        if (slot != NULL)
            total += slot->h.total;
    }
    return total;
}

void latency_tick(struct latency *l, uint64_t now_ns)
{
    uint64_t sec = now_ns / NS_PER_S;
    double p99;

    if (l->last_tick_sec != NO_SECOND && sec <= l->last_tick_sec)
        return;
    l->last_tick_sec = sec;
    if (sec == 0)
        return; /* no complete second yet */
    if (latency_merge(l, sec - 1, l->window_s) < l->min_count)
        return;
    p99 = (double)histogram_quantile(&l->scratch, BASELINE_Q);
    if (l->baseline == 0.0)
        l->baseline = p99;
    else
        l->baseline += l->alpha * (p99 - l->baseline);
}

uint64_t latency_baseline(const struct latency *l)
{
    return (uint64_t)llround(l->baseline);
}
