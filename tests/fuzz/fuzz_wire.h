/*
 * fuzz_wire: field-by-field equality of the wire structs, for the round-trip
 * oracle of the fuzz_wire_* targets: whatever a decoder accepts, its encoder
 * must turn into bytes that decode again to the same struct. Only fields the
 * daemons act on are compared; the one known lossy field (NodeStatus
 * closed_gates, re-split on spaces) is left out.
 */
#ifndef SLUICE_FUZZ_WIRE_H
#define SLUICE_FUZZ_WIRE_H

#include "fuzz.h"
#include "wire.h"

static inline bool fuzz_str_eq(const char *a, const char *b)
{
    return strcmp(a != NULL ? a : "", b != NULL ? b : "") == 0;
}

static inline bool fuzz_pressure_eq(const struct wire_pressure *a, const struct wire_pressure *b)
{
    return fuzz_same_double(a->some_avg10, b->some_avg10) &&
           fuzz_same_double(a->full_avg10, b->full_avg10) &&
           fuzz_same_double(a->some_fraction, b->some_fraction) &&
           fuzz_same_double(a->full_fraction, b->full_fraction) &&
           a->usage_bytes == b->usage_bytes && a->limit_bytes == b->limit_bytes &&
           a->wss_bytes == b->wss_bytes && fuzz_same_double(a->p99_seconds, b->p99_seconds) &&
           a->loads_in_flight == b->loads_in_flight && a->psi_host_wide == b->psi_host_wide;
}

static inline bool fuzz_segment_status_eq(const struct wire_segment_status *a,
                                          const struct wire_segment_status *b)
{
    return strcmp(a->segment_id, b->segment_id) == 0 && a->state == b->state &&
           a->reason == b->reason && strcmp(a->detail, b->detail) == 0 &&
           a->row_count == b->row_count && a->avg_row_size == b->avg_row_size &&
           a->file_bytes == b->file_bytes && a->index_bytes == b->index_bytes &&
           fuzz_str_eq(a->uri, b->uri) && (a->uri == NULL) == (b->uri == NULL) &&
           a->last_query_unix_ms == b->last_query_unix_ms;
}

static inline bool fuzz_segment_statuses_eq(const struct wire_segment_status *a, size_t na,
                                            const struct wire_segment_status *b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (!fuzz_segment_status_eq(&a[i], &b[i]))
            return false;
    return true;
}

static inline bool fuzz_assign_request_eq(const struct wire_assign_request *a,
                                          const struct wire_assign_request *b)
{
    return strcmp(a->segment_id, b->segment_id) == 0 && strcmp(a->uri, b->uri) == 0 &&
           a->row_count == b->row_count && a->avg_row_size == b->avg_row_size;
}

static inline bool fuzz_segment_spec_eq(const struct wire_segment_spec *a,
                                        const struct wire_segment_spec *b)
{
    return strcmp(a->segment_id, b->segment_id) == 0 && fuzz_str_eq(a->uri, b->uri) &&
           a->row_count == b->row_count && a->avg_row_size == b->avg_row_size &&
           a->replication == b->replication;
}

/* What every accepted assignment must satisfy, whichever message carried it. */
static inline void fuzz_check_assign_valid(const struct wire_assign_request *a)
{
    FUZZ_CHECK(wire_check_segment_id("segment_id", a->segment_id, NULL) == 0);
    FUZZ_CHECK(wire_check_uri("uri", a->uri, NULL) == 0);
    FUZZ_CHECK(a->row_count > 0 && a->avg_row_size > 0);
}

#endif
