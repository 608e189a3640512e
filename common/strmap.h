/*
 * strmap: a hash map from NUL-terminated strings to pointers. The map copies
 * keys and never owns values. Expected size: up to ~10^6 entries (segments on
 * a coordinator); get/put/remove are O(1) on average, iteration is in no
 * particular order. Single-threaded.
 */
#ifndef SLUICE_STRMAP_H
#define SLUICE_STRMAP_H

#include <stddef.h>

struct strmap;

struct strmap *strmap_new(void);
/* Frees the map and its keys, not the values. NULL-safe. */
void strmap_free(struct strmap *m);

/* The value for key, or NULL. */
void *strmap_get(const struct strmap *m, const char *key);
/* Sets key to value (non-NULL); returns the previous value or NULL. */
void *strmap_put(struct strmap *m, const char *key, void *value);
/* Removes key; returns its value, or NULL if it was absent. */
void *strmap_remove(struct strmap *m, const char *key);
size_t strmap_count(const struct strmap *m);

/*
 * Calls fn for every entry; fn must not change the map. A non-zero return
 * stops the walk and is returned.
 */
int strmap_foreach(const struct strmap *m, int (*fn)(const char *key, void *value, void *arg),
                   void *arg);

#endif
