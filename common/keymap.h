/*
 * keymap: a hash map from string keys to records that hold their own key,
 * so that it stores one pointer per entry and no copy of the key: the
 * coordinator's segments by id (c->segs) and each node's held copies
 * (coord_node.held) point at the segment records, whose id is the key; a
 * repset (repset.c) finds its packed copies by the id each holds. With
 * strmap (a key copy and a chained entry each) those two maps cost about 90
 * bytes a segment at 10^6; a keymap costs 11 to 21 (8 bytes a slot, a load
 * between 3/8 and 3/4).
 *
 * The key of a record is the NUL-terminated string at key_offset bytes into
 * it (offsetof(struct coord_seg, id)); it must not change while the record
 * is in the map. Records are borrowed, never freed here. Open addressing
 * with linear probing and backward-shift deletion (no tombstones); the
 * hash is FNV-1a of the key, so the order of a walk depends on the keys
 * only, never on addresses: a seeded simulation stays reproducible.
 *
 * Expected load: up to ~10^6 records; get, put and remove O(1) on average,
 * a walk O(capacity). Single-threaded.
 */
#ifndef SLUICE_KEYMAP_H
#define SLUICE_KEYMAP_H

#include <stddef.h>

struct keymap;

/* An empty map of records whose key is at key_offset. Never fails (xmalloc). */
struct keymap *keymap_new(size_t key_offset);
/* Frees the map, not the records. NULL-safe. */
void keymap_free(struct keymap *m);

/* The record with this key, or NULL. */
void *keymap_get(const struct keymap *m, const char *key);
/* Adds record (non-NULL), or replaces the one with its key: returns that one, or NULL. */
void *keymap_put(struct keymap *m, void *record);
/* Removes the record with this key: returns it, or NULL if it was absent. */
void *keymap_remove(struct keymap *m, const char *key);
size_t keymap_count(const struct keymap *m);

/*
 * Calls fn(key, record, arg) for every record, in an order that depends on
 * the keys only; fn must not change the map. A non-zero return stops the
 * walk and is returned. (The signature is strmap_foreach's, so a callback
 * serves both.)
 */
int keymap_foreach(const struct keymap *m, int (*fn)(const char *key, void *record, void *arg),
                   void *arg);

#endif
