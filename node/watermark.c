/*
 * watermark: additive increase while quiet and capacity-limited, reset to
 * the base on a breach (contract in watermark.h). Expected load: one
 * judgement and one update per 100 ms tick.
 */
#include "watermark.h"

#include <errno.h>
#include <stdio.h>

#include "reason.h"

int watermark_config_check(const struct watermark_config *cfg, char *err, size_t err_len)
{
    const char *why = NULL;

    if (!(cfg->base > 0 && cfg->base <= 1))
        why = "base watermark must be in (0, 1]";
    else if (!(cfg->ceiling >= cfg->base && cfg->ceiling <= 1))
        why = "ceiling must be between the base watermark and 1";
    else if (!(cfg->step > 0 && cfg->step <= 1))
        why = "step must be in (0, 1]";
    if (why == NULL)
        return 0;
    if (err != NULL && err_len > 0)
        snprintf(err, err_len, "%s", why);
    return -EINVAL;
}

double watermark_update(struct watermark *w, const struct watermark_config *cfg, bool quiet,
                        bool breach, uint64_t now_ms)
{
    if (!w->started) {
        w->started = true;
        w->current = cfg->base;
        w->quiet_since_ms = now_ms;
    }
    if (breach) {
        if (w->current > cfg->base)
            w->backoffs++;
        w->current = cfg->base;
        w->quiet_since_ms = now_ms;
    } else if (!quiet || now_ms < w->quiet_since_ms) {
        w->quiet_since_ms = now_ms;
    } else if (now_ms - w->quiet_since_ms >= cfg->probe_ms) {
        w->current += cfg->step;
        if (w->current > cfg->ceiling)
            w->current = cfg->ceiling;
        w->quiet_since_ms = now_ms;
    }
    return w->current;
}

void watermark_judge(const struct watermark_config *cfg, const struct admission_config *acfg,
                     const struct admission_signals *sig, const struct admission_state *astate,
                     bool refused, uint64_t refused_ms, struct watermark_view *ret)
{
    static const enum wire_reason loud[] = {
        WIRE_REASON_MEM_CRITICAL, WIRE_REASON_MEM_EXHAUSTION, WIRE_REASON_MEM_PRESSURE,
        WIRE_REASON_MEM_THRASHING, WIRE_REASON_LATENCY_SLO,
    };
    uint64_t limit, used, step;

    ret->quiet = false;
    ret->breach = false;
    for (size_t i = 0; i < sizeof(loud) / sizeof(loud[0]); i++) {
        if (admission_gate_closed(astate, loud[i])) {
            ret->breach = true;
            ret->why = reason_name(loud[i]);
            return;
        }
    }
    if (!admission_quiet(acfg, sig, astate, &ret->why))
        return;
    /* Demand: within one step of the admit limit, or a capacity refusal lately. */
    limit = admission_admit_limit(acfg, sig);
    used = sig->wss_bytes + sig->reserved_bytes;
    if (used < sig->wss_bytes)
        used = UINT64_MAX;
    step = (uint64_t)((double)sig->limit_bytes * cfg->step);
    if (limit > 0 && (used >= limit || limit - used <= step)) {
        ret->quiet = true;
        ret->why = "quiet, at the admit limit";
    } else if (refused && sig->now_ms >= refused_ms &&
               sig->now_ms - refused_ms < acfg->retry_capacity_ms) {
        ret->quiet = true;
        ret->why = "quiet, capacity refused lately";
    } else {
        ret->why = limit == 0 ? "memory limit unknown" : "no demand";
    }
}
