/*
 * keymap: open addressing over a power-of-two array of record pointers
 * (NULL: empty), linear probing, grown at a load of 3/4 and never shrunk
 * below 16 slots; a removal shifts the rest of its cluster back, so there
 * are no tombstones and a probe stops at the first empty slot.
 */
#include "keymap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xmalloc.h"

#define KEYMAP_MIN 16

struct keymap {
    void **slot;
    size_t cap, n, key_offset;
};

static uint64_t keymap_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;

    for (; *s != '\0'; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h ^ (h >> 29); /* the low bits pick the slot: fold the high ones in */
}

static const char *keymap_key(const struct keymap *m, const void *record)
{
    return (const char *)record + m->key_offset;
}

struct keymap *keymap_new(size_t key_offset)
{
    struct keymap *m = xcalloc(1, sizeof(*m));

    m->cap = KEYMAP_MIN;
    m->slot = xcalloc(m->cap, sizeof(*m->slot));
    m->key_offset = key_offset;
    return m;
}

void keymap_free(struct keymap *m)
{
    if (m == NULL)
        return;
    free(m->slot);
    free(m);
}

/* The slot holding key, or the empty slot where it would go. */
static size_t keymap_find(const struct keymap *m, const char *key)
{
    size_t mask = m->cap - 1, i = (size_t)keymap_hash(key) & mask;

    while (m->slot[i] != NULL && strcmp(keymap_key(m, m->slot[i]), key) != 0)
        i = (i + 1) & mask;
    return i;
}

void *keymap_get(const struct keymap *m, const char *key)
{
    return m->slot[keymap_find(m, key)];
}

/* Rehashes into cap slots (a power of two above the count). */
static void keymap_resize(struct keymap *m, size_t cap)
{
    void **old = m->slot;
    size_t old_cap = m->cap;

    m->slot = xcalloc(cap, sizeof(*m->slot));
    m->cap = cap;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i] != NULL)
            m->slot[keymap_find(m, keymap_key(m, old[i]))] = old[i];
    free(old);
}

void *keymap_put(struct keymap *m, void *record)
{
    size_t i = keymap_find(m, keymap_key(m, record));
    void *old = m->slot[i];

    m->slot[i] = record;
    if (old != NULL)
        return old;
    if (++m->n * 4 > m->cap * 3)
        keymap_resize(m, m->cap * 2);
    return NULL;
}

void *keymap_remove(struct keymap *m, const char *key)
{
    size_t mask = m->cap - 1, i = keymap_find(m, key), j = i;
    void *record = m->slot[i];

    if (record == NULL)
        return NULL;
    /* Shift back every later record of the cluster whose home is not between i and j. */
    for (;;) {
        size_t home;

        j = (j + 1) & mask;
        if (m->slot[j] == NULL)
            break;
        home = (size_t)keymap_hash(keymap_key(m, m->slot[j])) & mask;
        if (i <= j ? (i < home && home <= j) : (i < home || home <= j))
            continue;
        m->slot[i] = m->slot[j];
        i = j;
    }
    m->slot[i] = NULL;
    m->n--;
    /* A node that drained its copies gives the room back. */
    if (m->cap > KEYMAP_MIN && m->n * 8 < m->cap)
        keymap_resize(m, m->cap / 2);
    return record;
}

size_t keymap_count(const struct keymap *m)
{
    return m->n;
}

int keymap_foreach(const struct keymap *m, int (*fn)(const char *key, void *record, void *arg),
                   void *arg)
{
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slot[i] != NULL) {
            int r = fn(keymap_key(m, m->slot[i]), m->slot[i], arg);

            if (r != 0)
                return r;
        }
    }
    return 0;
}
