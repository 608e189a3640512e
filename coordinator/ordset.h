/*
 * ordset: an ordered set of string keys with a value each (a skip list), so
 * that a listing sorted by key can start anywhere and cost what it shows:
 * the coordinator keeps its segments in one per state and pages through
 * them (GET /v1/segments?after=) without collecting and sorting 10^6 ids.
 *
 * Keys are borrowed, not copied: a key must stay valid and unchanged while
 * it is in the set (a segment's own id). Order is strcmp's. The levels come
 * from a seeded xorshift, so a run is reproducible.
 *
 * Expected load: up to ~10^6 keys; add and remove O(log n) expected, a seek
 * O(log n), each step of a walk O(1); about 40 bytes a key. Single-threaded.
 */
#ifndef SLUICE_ORDSET_H
#define SLUICE_ORDSET_H

#include <stddef.h>
#include <stdint.h>

struct ordset;
struct ordset_node;

struct ordset *ordset_new(uint32_t seed);
/* Frees the set, not the keys or values. NULL-safe. */
void ordset_free(struct ordset *s);

/* Adds key (borrowed) with value: 0, or -EEXIST with nothing changed. */
int ordset_add(struct ordset *s, const char *key, void *value);
/* Removes key; returns its value, NULL if it was absent. */
void *ordset_remove(struct ordset *s, const char *key);
size_t ordset_count(const struct ordset *s);

/* The first entry whose key sorts after `after` (NULL: the first of all), or NULL. */
const struct ordset_node *ordset_after(const struct ordset *s, const char *after);
/* The entry after n, or NULL. */
const struct ordset_node *ordset_next(const struct ordset_node *n);
const char *ordset_key(const struct ordset_node *n);
void *ordset_value(const struct ordset_node *n);

#endif
