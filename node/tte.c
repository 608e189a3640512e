/*
 * tte: a least-squares slope over a ring of at most TTE_POINTS points.
 * Expected load: one tte_add per sampler tick (100 ms), each a pass over
 * the ~50 points of a 5 s window: negligible.
 */
#include "tte.h"

#include <math.h>
#include <string.h>

void tte_init(struct tte *t, uint64_t window_ns)
{
    memset(t, 0, sizeof(*t));
    t->window_ns = window_ns != 0 ? window_ns : TTE_DEFAULT_WINDOW_NS;
}

void tte_reset(struct tte *t)
{
    t->head = t->n = 0;
}

/* Milliseconds for seconds, saturating at TTE_NEVER_MS - 1 (never is reserved). */
static uint64_t tte_ms(double s)
{
    double ms = s * 1000.0;

    if (!(ms >= 0.0))
        return 0;
    if (ms >= (double)(TTE_NEVER_MS - 1))
        return TTE_NEVER_MS - 1;
    return (uint64_t)ms;
}

void tte_add(struct tte *t, uint64_t t_ns, uint64_t used_bytes, uint64_t self_bytes,
             uint64_t capacity_bytes, struct tte_estimate *ret)
{
    struct tte_estimate e = {.tte_ms = TTE_NEVER_MS, .fill_ms = TTE_NEVER_MS};
    uint64_t window = t->window_ns != 0 ? t->window_ns : TTE_DEFAULT_WINDOW_NS;
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    unsigned used_points = 0;

    if (t->n > 0 && t_ns <= t->pt[(t->head + t->n - 1) % TTE_POINTS].t_ns)
        tte_reset(t);
    if (t->n == TTE_POINTS) {
        t->head = (t->head + 1) % TTE_POINTS;
        t->n--;
    }
    t->pt[(t->head + t->n) % TTE_POINTS] = (struct tte_point){
        .t_ns = t_ns,
        .others = (double)used_bytes - (double)(self_bytes < used_bytes ? self_bytes : used_bytes),
    };
    t->n++;
    /* Drop points older than the window: they will never count again. */
    while (t->n > 0 && t_ns - t->pt[t->head].t_ns > window) {
        t->head = (t->head + 1) % TTE_POINTS;
        t->n--;
    }

    e.headroom_bytes = used_bytes < capacity_bytes ? capacity_bytes - used_bytes : 0;
    for (unsigned i = 0; i < t->n; i++) {
        const struct tte_point *p = &t->pt[(t->head + i) % TTE_POINTS];
        double x = -(double)(t_ns - p->t_ns) / 1e9; /* seconds before now */

        sx += x;
        sy += p->others;
        sxx += x * x;
        sxy += x * p->others;
        used_points++;
    }
    if (used_points >= TTE_MIN_POINTS && capacity_bytes != 0 && capacity_bytes != UINT64_MAX) {
        double n = (double)used_points;
        double den = n * sxx - sx * sx;

        if (den > 0) {
            e.valid = true;
            e.rate_bytes_per_s = (n * sxy - sx * sy) / den;
            if (e.rate_bytes_per_s > 0) {
                e.tte_ms = tte_ms((double)e.headroom_bytes / e.rate_bytes_per_s);
                e.fill_ms = tte_ms((double)capacity_bytes / e.rate_bytes_per_s);
            }
        }
    }
    if (!isfinite(e.rate_bytes_per_s)) {
        e.valid = false;
        e.rate_bytes_per_s = 0;
        e.tte_ms = e.fill_ms = TTE_NEVER_MS;
    }
    if (ret != NULL)
        *ret = e;
}
