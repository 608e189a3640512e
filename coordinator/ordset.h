/*
 * ordset: an ordered set of records that hold their own string key, so
 * that a listing sorted by key can start anywhere and cost what it shows:
 * the coordinator keeps its segments in one per state and pages through
 * them (GET /v1/segments?after=) without collecting and sorting 10^6 ids.
 *
 * A record's key is the NUL-terminated string at key_offset bytes into it
 * (a segment's own id); records are borrowed, never copied or freed, and a
 * key must not change while its record is in the set. Order is strcmp's.
 * The set is a sorted array of blocks of up to 128 record pointers each, a
 * B+ tree of height two: 8 to 16 bytes a record where the skip list before
 * it cost about 48 (a node and its links, in malloc's chunks). No
 * randomness: a run is reproducible.
 *
 * Expected load: up to ~10^6 records; add and remove O(log n) compares and
 * a move of up to 128 pointers in a block (a block split or emptied also
 * moves the block array: O(n / 128) pointers, once per 64 adds at most);
 * a seek O(log n), each step of a walk O(1). Single-threaded.
 */
#ifndef SLUICE_ORDSET_H
#define SLUICE_ORDSET_H

#include <stddef.h>

struct ordset;

/*
 * A place in a walk: the record there, or the end. Valid until the set
 * changes; a caller that walks on after a change seeks again (by key).
 */
struct ordset_pos {
    const struct ordset *s; /* NULL: the end */
    size_t block, i;
};

/* An empty set of records whose key is at key_offset. Never fails (xmalloc). */
struct ordset *ordset_new(size_t key_offset);
/* Frees the set, not the records. NULL-safe. */
void ordset_free(struct ordset *s);

/* Adds record (borrowed): 0, or -EEXIST with nothing changed when its key is in the set. */
int ordset_add(struct ordset *s, void *record);
/* Removes the record with this key; returns it, NULL if it was absent. */
void *ordset_remove(struct ordset *s, const char *key);
size_t ordset_count(const struct ordset *s);

/* *ret: the first record whose key sorts after `after` (NULL: the first of all), or the end. */
void ordset_after(const struct ordset *s, const char *after, struct ordset_pos *ret);
/* Steps to the next record (no-op at the end). */
void ordset_next(struct ordset_pos *p);
/* The record at p, or NULL at the end. */
void *ordset_value(const struct ordset_pos *p);
/* Its key, or NULL at the end. */
const char *ordset_key(const struct ordset_pos *p);

#endif
