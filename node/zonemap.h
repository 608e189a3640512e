/*
 * zonemap: the per-segment heap index. For every int64 and float64 column it
 * keeps the min and max of each block of ZONEMAP_BLOCK_ROWS rows, so a range
 * filter can skip whole blocks and take whole blocks without testing rows.
 * It is also, deliberately, the anonymous memory that every loaded segment
 * carries next to its file-backed mapping, as a real engine's indexes do.
 * Immutable once built; safe to read from any thread.
 */
#ifndef SLUICE_ZONEMAP_H
#define SLUICE_ZONEMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "segfmt.h"

#define ZONEMAP_BLOCK_ROWS 4096u

struct zonemap;

/* Builds the index over a mapped, verified segment. Never fails. */
struct zonemap *zonemap_build(const void *base, const struct segment_header *hdr);

/*
 * The same; with own_pages the index is one mmap'ed block of whole pages
 * that it shares with nothing, so that it can be mlock'ed and munlock'ed
 * without touching other memory (zonemap_bytes then counts the rounding).
 */
struct zonemap *zonemap_build_ex(const void *base, const struct segment_header *hdr,
                                 bool own_pages);

/* The index's memory, one block (page-aligned with own_pages). */
void zonemap_region(const struct zonemap *zm, const void **ret_addr, size_t *ret_len);
void zonemap_free(struct zonemap *zm);

/* Heap bytes held by the index. */
size_t zonemap_bytes(const struct zonemap *zm);
uint64_t zonemap_block_count(const struct zonemap *zm);

/*
 * Min and max of int64 column col in block b. Returns false when the column
 * is not int64 or b is out of range, and then writes nothing.
 */
bool zonemap_int_range(const struct zonemap *zm, unsigned col, uint64_t b, int64_t *ret_min,
                       int64_t *ret_max);

#endif
