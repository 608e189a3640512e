/*
 * repset: a node's set of copies as one report said it is, keyed by segment
 * id, with its digest. Both ends of delta reports keep one per node: the
 * node the set its coordinator acknowledged last (the base of its next
 * delta), the coordinator the set it rebuilt from the node's full report and
 * the deltas since (what reconciliation reads). Pure: no loop, no I/O.
 *
 * The digest of a set is its count and the sum, modulo 2^64, of each copy's
 * hash, so it does not depend on order and is updated in O(1) per change.
 * A copy's hash (repset_entry_hash) is XXH3-64 (Debian's libxxhash) of its
 * id and every field a report carries except the uri (never in reports) and
 * last_query_unix_ms, which changes with every query and which the
 * coordinator does not read: a copy queried since the last report is not a
 * change, and the rebuilt set says 0 for it. A sum, not a xor: two equal
 * hashes would cancel in a xor.
 *
 * Expected size: up to about 10^5 copies per set (WIRE_REPORT_MAX_SEGS);
 * put, remove and lookups O(1), a diff O(copies).
 */
#ifndef SLUICE_REPSET_H
#define SLUICE_REPSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire.h"

struct repset;

/* An empty set. */
struct repset *repset_new(void);
/* NULL-safe. */
void repset_free(struct repset *s);
/* Empties the set. */
void repset_clear(struct repset *s);

/* The digest: the number of copies and the sum of their hashes. */
size_t repset_count(const struct repset *s);
uint64_t repset_hash(const struct repset *s);

/* One copy's hash (see the top of this file). */
uint64_t repset_entry_hash(const struct wire_segment_status *e);
/* The digest of v[0..n) as a set would have it (each id once). */
void repset_digest_of(const struct wire_segment_status *v, size_t n, uint64_t *ret_count,
                      uint64_t *ret_hash);

/* Adds the copy e, or replaces the one with its id. */
void repset_put(struct repset *s, const struct wire_segment_status *e);
/*
 * The copy with this id, written into *ret as repset_export() writes it (no
 * uri, last_query_unix_ms 0): true, or false when the set has none.
 */
bool repset_get(const struct repset *s, const char *id, struct wire_segment_status *ret);
/* Whether the set holds a copy with this id. */
bool repset_has(const struct repset *s, const char *id);
/* Removes the copy with this id: true, or false when the set has none. */
bool repset_remove(struct repset *s, const char *id);
/* The set becomes v[0..n) (a full report); of an id given twice the later wins. */
void repset_replace(struct repset *s, const struct wire_segment_status *v, size_t n);

/*
 * What a delta holds to turn set s into cur[0..n) (each id once): the
 * indexes into cur of the copies s lacks or holds otherwise (by hash), and
 * the ids s holds that cur lacks. Owned by the caller: repset_diff_done().
 */
struct repset_diff {
    size_t *changed;
    size_t n_changed;
    char (*removed)[WIRE_ID_MAX + 1];
    size_t n_removed;
};
void repset_diff(const struct repset *s, const struct wire_segment_status *cur, size_t n,
                 struct repset_diff *ret);
/* NULL-safe; empties it. */
void repset_diff_done(struct repset_diff *d);

/*
 * Applies a delta: every copy of changed[0..n_changed) put, every id of
 * removed[0..n_removed) removed. Returns how many removed ids the set did
 * not hold (0 when the delta fits the set; the digest then tells the rest).
 */
size_t repset_apply(struct repset *s, const struct wire_segment_status *changed, size_t n_changed,
                    const char (*removed)[WIRE_ID_MAX + 1], size_t n_removed);

/*
 * Writes the whole set, in no particular order, into *v (grown with
 * xreallocarray as needed; *cap its capacity, the caller frees *v) and
 * returns the number of copies. Every uri is NULL, last_query_unix_ms 0.
 */
size_t repset_export(const struct repset *s, struct wire_segment_status **v, size_t *cap);

#endif
