/*
 * watermark: additive increase while quiet, reset to base on a breach.
 * Expected load: one call per sampler tick.
 */
#include "watermark.h"

#include <errno.h>
#include <stdio.h>

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
