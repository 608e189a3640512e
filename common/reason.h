/*
 * reason: the one owner of the refusal reasons. The enum mirrors the proto
 * enum sluice.v1.Reason number for number (wire.c checks it at compile
 * time); this module holds the only name table, the parser, the HTTP status
 * each reason travels with, and the default Retry-After of each. Both
 * daemons, both CLIs and the tests read reasons through it. Pure and
 * constant: no state, no allocation, safe from any thread.
 */
#ifndef SLUICE_REASON_H
#define SLUICE_REASON_H

#include <stdint.h>

/* Values equal the proto enum numbers. The admission gates are
 * DRAINING..DISK_FULL in this order (DESIGN.md's gate order), and
 * MEM_EXHAUSTION, which came later: its number follows SEGMENT_INVALID. */
enum wire_reason {
    WIRE_REASON_NONE = 0,
    WIRE_REASON_DRAINING,
    WIRE_REASON_MEM_CRITICAL,
    WIRE_REASON_MEM_PRESSURE,
    WIRE_REASON_MEM_THRASHING,
    WIRE_REASON_MEM_CAPACITY,
    WIRE_REASON_LATENCY_SLO,
    WIRE_REASON_LOAD_CONCURRENCY,
    WIRE_REASON_DISK_FULL,
    WIRE_REASON_SEGMENT_INVALID,
    WIRE_REASON_MEM_EXHAUSTION, /* a gate too, checked after MEM_CRITICAL */
    WIRE_REASON_OVER_LIMIT,     /* not a refusal: why a segment over its declared limit was shed */
    WIRE_REASON_COUNT_
};

/* "MEM_PRESSURE", ...; "NONE" for WIRE_REASON_NONE; "UNKNOWN" if out of range. */
const char *reason_name(enum wire_reason r);

/*
 * Parses a name produced by reason_name() (exact, case-sensitive). Returns 0
 * with *ret set, or -EINVAL for NULL, "UNKNOWN" or any other string, with
 * *ret untouched.
 */
int reason_parse(const char *s, enum wire_reason *ret);

/*
 * The HTTP status an answer carrying reason r travels with (DESIGN.md's
 * table): 503 DRAINING, 507 DISK_FULL, 422 SEGMENT_INVALID, 429 for every
 * other reason. NONE and out-of-range values also give 429, so a refusal
 * whose reason was lost still reads as "busy, retry".
 */
int reason_http_status(enum wire_reason r);

/*
 * The default Retry-After of a refusal for reason r, in milliseconds: the
 * node's --retry-* defaults (pressure reasons share --retry-pressure).
 * 0 for NONE, SEGMENT_INVALID (never retried) and out-of-range values.
 */
uint32_t reason_retry_default_ms(enum wire_reason r);

#endif
