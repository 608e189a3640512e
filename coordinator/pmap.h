/*
 * pmap: the change log behind GET /v1/placements?since=V, as pure code (no
 * I/O, no clock). The coordinator calls pmap_touch() for a segment whenever
 * what a broker needs of it changes (its LOADED holders, its table, its
 * registration), which gives the change a version, one more than the last.
 * A broker that has seen everything up to version V asks for the changes
 * after V; pmap_since() walks the log's entries after V, oldest first.
 *
 * The log is a ring of the last `cap` changes: a V older than that
 * (someone missed more than cap changes) gets -ESTALE, and the coordinator
 * answers with the full map instead. An item touched several times is in
 * the ring several times; the caller keeps the version of each item's last
 * touch (pmap_touch's result) and takes an entry only when its version is
 * that one, so each changed item is named once, in the order of its last
 * change.
 *
 * Items are the caller's pointers, never dereferenced here; an item must
 * outlive its entries (coordinator segments are never freed while it
 * runs). Expected load: a few touches per report or assignment answer; a
 * broker's poll every few hundred ms walks the changes since its last.
 */
#ifndef SLUICE_PMAP_H
#define SLUICE_PMAP_H

#include <stddef.h>
#include <stdint.h>

struct pmap;

/* A log that keeps the last cap changes (cap >= 1). Never fails. */
struct pmap *pmap_new(size_t cap);
void pmap_free(struct pmap *p); /* NULL-safe */

/* Records a change of item: returns its version, the log's new version. */
uint64_t pmap_touch(struct pmap *p, void *item);

/* The version of the last change; 0 before any. */
uint64_t pmap_version(const struct pmap *p);

/*
 * Calls cb(item, version, arg) for every change with a version above since,
 * oldest first; a cb that returns non-zero stops the walk with that value.
 * Returns 0 (nothing changed after since included); -ESTALE when changes
 * after since have left the ring (since < version - cap) or since is past
 * the log's version (a broker that saw another coordinator): the caller
 * must send everything.
 */
int pmap_since(const struct pmap *p, uint64_t since,
               int (*cb)(void *item, uint64_t version, void *arg), void *arg);

#endif
