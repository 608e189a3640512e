/*
 * claim: AIMD sizing of pull-mode claims and the pressure that stops them
 * (see claim.h). Pure arithmetic, called a few times a second.
 */
#include "claim.h"

double claim_backoff(double batch)
{
    return batch / 2 < CLAIM_MIN_BATCH ? CLAIM_MIN_BATCH : batch / 2;
}

double claim_after_answers(double batch, size_t n, size_t accepted)
{
    if (n == 0)
        return batch;
    /* Additive increase only when a claim of the full batch all fitted. */
    if (accepted == n && n >= (size_t)batch)
        return batch + 1 > CLAIM_MAX_BATCH ? CLAIM_MAX_BATCH : batch + 1;
    if (accepted < n)
        return claim_backoff(batch);
    return batch;
}

bool claim_pressure(const struct admission_config *cfg, const struct admission_state *state,
                    const struct admission_signals *sig)
{
    if (sig->draining)
        return true;
    for (int g = WIRE_REASON_MEM_CRITICAL; g <= WIRE_REASON_LATENCY_SLO; g++)
        if (admission_gate_closed(state, (enum wire_reason)g))
            return true;
    return cfg->latency_slo_ms > 0 && sig->queries_10s >= (uint64_t)cfg->latency_min_queries &&
           sig->p99_10s_ms > (double)cfg->latency_slo_ms;
}
