/*
 * mlockset: which parts of the node's segments `--mlock-budget` pins, as
 * pure code (no mlock, no clock: the caller passes both the items and the
 * time), so that the choice is unit-tested without a kernel.
 *
 * An item is a span of pages in one region: a segment's mapping (its header
 * page(s), or one column) or its heap zone maps. Items of one region may
 * share a boundary page (columns are 64-byte aligned, not page aligned);
 * a page counts once whatever the number of chosen items on it, exactly as
 * the kernel counts VmLck. Items of different regions never share pages.
 *
 * The choice, under a strict budget of whole pages:
 *   1. every `must` item (headers and zone maps), in the order given, while
 *      they fit;
 *   2. then the other items by score (a decayed count of the queries that
 *      read the column), highest first, each taken if its pages not yet
 *      covered still fit. An item pinned now (`locked`) competes with its
 *      score times MLOCKSET_STICKY, so that two columns of nearly equal
 *      frequency do not swap pins on every pass.
 * Items of score 0 are never pinned (pinning cold data only costs memory).
 */
#ifndef SLUICE_MLOCKSET_H
#define SLUICE_MLOCKSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A pinned item keeps its pin until another scores this much higher. */
#define MLOCKSET_STICKY 1.25

struct mlockset_item {
    uint64_t region;     /* items of one region may share boundary pages */
    uint64_t first_page; /* page span [first_page, end_page) */
    uint64_t end_page;
    double score;        /* decayed query count; ignored for must items */
    bool must;           /* header or zone maps: pinned first */
    bool locked;         /* pinned now (for stickiness) */
    bool chosen;         /* output */
};

/*
 * Chooses items to pin within budget_pages. Items of a region must be
 * adjacent in the array (any order inside). Writes every item's `chosen`
 * and returns the pages chosen, never more than budget_pages. When not
 * every must item fits, *ret_must_missing (if not NULL) counts those left
 * out.
 */
uint64_t mlockset_choose(struct mlockset_item *items, size_t n, uint64_t budget_pages,
                         size_t *ret_must_missing);

/*
 * Page span of the bytes [offset, offset + length) of a mapping: first page
 * and end page (exclusive). length 0 gives an empty span.
 */
void mlockset_span(uint64_t offset, uint64_t length, uint64_t page_size, uint64_t *ret_first,
                   uint64_t *ret_end);

/*
 * A decayed count: score as of from_ms, decayed to to_ms with the given
 * half-life (score halves every half_life_ms). to_ms before from_ms leaves
 * it unchanged.
 */
double mlockset_decay(double score, uint64_t from_ms, uint64_t to_ms, uint64_t half_life_ms);

#endif
