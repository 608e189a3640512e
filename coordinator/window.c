/*
 * window: AIMD on a node's outstanding assignments, with slow start and one
 * cut per round (NewReno's "recover" point), and the node's Retry-After as
 * a pause. See window.h for the rules and why each reason does what.
 */
#include "window.h"

void window_init(struct window *w)
{
    *w = (struct window){.cwnd = WINDOW_INITIAL, .ssthresh = WINDOW_MAX};
}

uint64_t window_on_send(struct window *w)
{
    return ++w->sent;
}

void window_on_advertise(struct window *w, uint64_t slots)
{
    w->advertised = slots;
}

void window_on_accept(struct window *w, uint64_t seq)
{
    w->accepted_total++;
    /* Flow-limited: the node's own bound, not this window, held it back. */
    if (w->advertised > 0 && w->cwnd >= (double)w->advertised)
        return;
    if (w->cwnd < w->ssthresh) {
        /* One per round trip: the acceptances of one batch are one answer. */
        if (seq > w->grown) {
            w->cwnd += 1.0;
            w->grown = w->sent;
        }
    } else
        w->cwnd += 1.0 / w->cwnd;
    if (w->cwnd > WINDOW_MAX)
        w->cwnd = WINDOW_MAX;
}

bool window_reason_pauses(enum wire_reason reason)
{
    switch (reason) {
    case WIRE_REASON_LOAD_CONCURRENCY:
    case WIRE_REASON_MEM_CRITICAL:
    case WIRE_REASON_MEM_PRESSURE:
    case WIRE_REASON_MEM_THRASHING:
    case WIRE_REASON_MEM_EXHAUSTION:
    case WIRE_REASON_LATENCY_SLO:
        return true;
    default:
        return false;
    }
}

bool window_on_refuse(struct window *w, uint64_t seq, enum wire_reason reason, uint32_t retry_ms,
                      uint64_t now_ms)
{
    bool cut = false;

    w->refused_total++;
    if (window_reason_pauses(reason) && retry_ms > 0 && now_ms + retry_ms > w->paused_until) {
        w->paused_until = now_ms + retry_ms;
        w->pauses_total++;
    }
    if (seq > w->recover) {
        /* The first refusal of what was sent since the last cut. */
        w->ssthresh = w->cwnd / 2 < WINDOW_MIN ? WINDOW_MIN : w->cwnd / 2;
        w->cwnd = w->ssthresh;
        w->recover = w->sent;
        w->cuts_total++;
        cut = true;
    }
    return cut;
}

unsigned window_size(const struct window *w)
{
    unsigned n = (unsigned)w->cwnd;

    return n < WINDOW_MIN ? WINDOW_MIN : n;
}

unsigned window_room(const struct window *w, unsigned outstanding, uint64_t now_ms)
{
    unsigned n = window_size(w);

    if (w->advertised > 0 && w->advertised < n)
        n = (unsigned)w->advertised;
    if (now_ms < w->paused_until)
        return 0;
    return outstanding >= n ? 0 : n - outstanding;
}
