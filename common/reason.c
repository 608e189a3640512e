/*
 * reason: one row per reason, indexed by the enum, so that the name, the
 * status and the default Retry-After of a reason cannot drift apart.
 */
#include "reason.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

struct reason_row {
    const char *name;
    int http_status;
    uint32_t retry_default_ms;
};

static const struct reason_row reason_rows[WIRE_REASON_COUNT_] = {
    [WIRE_REASON_NONE] = {"NONE", 429, 0},
    [WIRE_REASON_DRAINING] = {"DRAINING", 503, 30000},
    [WIRE_REASON_MEM_CRITICAL] = {"MEM_CRITICAL", 429, 10000},
    [WIRE_REASON_MEM_PRESSURE] = {"MEM_PRESSURE", 429, 10000},
    [WIRE_REASON_MEM_THRASHING] = {"MEM_THRASHING", 429, 10000},
    [WIRE_REASON_MEM_CAPACITY] = {"MEM_CAPACITY", 429, 60000},
    [WIRE_REASON_LATENCY_SLO] = {"LATENCY_SLO", 429, 5000},
    [WIRE_REASON_LOAD_CONCURRENCY] = {"LOAD_CONCURRENCY", 429, 250},
    [WIRE_REASON_DISK_FULL] = {"DISK_FULL", 507, 300000},
    [WIRE_REASON_SEGMENT_INVALID] = {"SEGMENT_INVALID", 422, 0},
    [WIRE_REASON_MEM_EXHAUSTION] = {"MEM_EXHAUSTION", 429, 60000},
    [WIRE_REASON_OVER_LIMIT] = {"OVER_LIMIT", 429, 0},
};

const char *reason_name(enum wire_reason r)
{
    if ((unsigned)r >= WIRE_REASON_COUNT_)
        return "UNKNOWN";
    return reason_rows[r].name;
}

int reason_parse(const char *s, enum wire_reason *ret)
{
    if (s == NULL)
        return -EINVAL;
    for (unsigned i = 0; i < WIRE_REASON_COUNT_; i++) {
        if (strcmp(s, reason_rows[i].name) == 0) {
            *ret = (enum wire_reason)i;
            return 0;
        }
    }
    return -EINVAL;
}

int reason_http_status(enum wire_reason r)
{
    if ((unsigned)r >= WIRE_REASON_COUNT_)
        return 429;
    return reason_rows[r].http_status;
}

uint32_t reason_retry_default_ms(enum wire_reason r)
{
    if ((unsigned)r >= WIRE_REASON_COUNT_)
        return 0;
    return reason_rows[r].retry_default_ms;
}
