/*
 * bmap: the broker's copy of the coordinator's placement map, as pure code
 * (no I/O, no clock): what GET /v1/placements answered, applied. Segments
 * are kept by id and, per table, in id order (the query's segment order,
 * which merge.h's float sums depend on); nodes by id, each with a slot
 * (0, 1, 2, ... in order of first sight, never reused) that names it to
 * the replica policy (replica.h).
 *
 * An answer with full=false replaces the segments it names, each whole (one
 * whose state is REMOVED, taken back by the operator, leaves the map). A
 * full answer comes in pages: bmap_full_begin() opens a staging copy,
 * bmap_apply() fills it page by page, bmap_full_end() swaps it in, so that
 * queries meanwhile see the old map whole rather than a half-built one.
 * Nodes are applied at once from every answer (each carries all of them):
 * a node the answer does not list is gone (its slot stays, empty).
 *
 * Ownership: everything returned points into the map and stays valid until
 * the next bmap_apply(), bmap_full_end() or bmap_free(); a caller that
 * keeps something across an answer copies it.
 *
 * Expected load: a poll every few hundred ms applying a few changes; a
 * table lookup per query, which sorts a table once after it changed
 * (O(n log n)) and is O(1) otherwise.
 */
#ifndef SLUICE_BMAP_H
#define SLUICE_BMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire.h"

/*
 * A segment, compact: the coordinator answers queries through a broker of
 * its own, so it keeps this copy of every segment beside its model (at
 * 10^6 segments a fixed 129-byte id, a table name copy, a slot array and a
 * strmap entry each cost about 330 bytes a segment; this is about 90).
 */
struct bmap_seg {
    const char *table; /* the name its table holds (not owned) */
    const char *state; /* static: "PENDING", "LOADED", "INVALID"; "" for another */
    size_t n_slots;
    size_t *slots;     /* the slots of its LOADED holders: &one_slot, or owned when more */
    size_t one_slot;
    char id[];         /* NUL-terminated */
};

struct bmap_node {
    char id[WIRE_ID_MAX + 1];
    char addr[WIRE_ADDR_MAX + 1];
    char state[16]; /* UP, SUSPECT, DOWN, DRAINING; "" once the coordinator forgot it */
    double p99_seconds;
    uint64_t queries_in_flight;
    size_t slot;
};

struct bmap;

struct bmap *bmap_new(void);
void bmap_free(struct bmap *m); /* NULL-safe */

/*
 * Starts a full refresh: the pages that follow go to a staging copy until
 * bmap_full_end(). Starting again drops a staging copy left half-built.
 */
void bmap_full_begin(struct bmap *m);
/* Swaps the staging copy in (its epoch and version with it). -EINVAL if none was begun. */
int bmap_full_end(struct bmap *m);

/*
 * Applies one answer: its nodes at once; its segments to the staging copy
 * during a full refresh, else to the live map. A delta (full false) is
 * refused with -ESTALE when its epoch is not the map's (the coordinator
 * restarted: refresh in full); a full page outside a refresh with -EINVAL.
 * The version becomes the answer's, except during a full refresh, where
 * the first page's is kept (changes while the pages came arrive with the
 * next delta). Returns 0.
 */
int bmap_apply(struct bmap *m, const struct wire_placement_map *pm);

uint64_t bmap_epoch(const struct bmap *m);   /* 0: nothing applied yet */
uint64_t bmap_version(const struct bmap *m);
bool bmap_ready(const struct bmap *m);       /* a full map has been applied */

/*
 * The segments of table in id order: their count, and *ret the array
 * (NULL when the table has none).
 */
size_t bmap_table(struct bmap *m, const char *table, const struct bmap_seg *const **ret);

/* Slots ever given (an upper bound of every slot). */
size_t bmap_slots(const struct bmap *m);
/* The node in slot, or NULL past bmap_slots(). */
const struct bmap_node *bmap_node_at(const struct bmap *m, size_t slot);
/* The node called id, or NULL. */
const struct bmap_node *bmap_node(const struct bmap *m, const char *id);
/* Segments in the live map. */
size_t bmap_count(const struct bmap *m);

#endif
