/*
 * strmap: separate chaining with a power-of-two bucket array that doubles
 * when the load factor passes 1. FNV-1a hashes the keys.
 */
#include "strmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xmalloc.h"

struct strmap_entry {
    struct strmap_entry *next;
    void *value;
    char key[]; /* flexible: one allocation per entry */
};

struct strmap {
    struct strmap_entry **buckets;
    size_t nbuckets, count;
};

static uint64_t strmap_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;

    for (; *s != '\0'; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

struct strmap *strmap_new(void)
{
    struct strmap *m = xcalloc(1, sizeof(*m));

    m->nbuckets = 64;
    m->buckets = xcalloc(m->nbuckets, sizeof(*m->buckets));
    return m;
}

void strmap_free(struct strmap *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->nbuckets; i++) {
        struct strmap_entry *e = m->buckets[i], *next;
        for (; e != NULL; e = next) {
            next = e->next;
            free(e);
        }
    }
    free(m->buckets);
    free(m);
}

static struct strmap_entry **strmap_slot(const struct strmap *m, const char *key)
{
    struct strmap_entry **pp = &m->buckets[strmap_hash(key) & (m->nbuckets - 1)];

    while (*pp != NULL && strcmp((*pp)->key, key) != 0)
        pp = &(*pp)->next;
    return pp;
}

void *strmap_get(const struct strmap *m, const char *key)
{
    struct strmap_entry *e = *strmap_slot(m, key);

    return e != NULL ? e->value : NULL;
}

static void strmap_grow(struct strmap *m)
{
    size_t n = m->nbuckets * 2;
    struct strmap_entry **b = xcalloc(n, sizeof(*b));

    for (size_t i = 0; i < m->nbuckets; i++) {
        struct strmap_entry *e = m->buckets[i], *next;
        for (; e != NULL; e = next) {
            size_t k = strmap_hash(e->key) & (n - 1);
            next = e->next;
            e->next = b[k];
            b[k] = e;
        }
    }
    free(m->buckets);
    m->buckets = b;
    m->nbuckets = n;
}

void *strmap_put(struct strmap *m, const char *key, void *value)
{
    struct strmap_entry **pp = strmap_slot(m, key), *e;
    size_t len;
    void *old;

    if (*pp != NULL) {
        old = (*pp)->value;
        (*pp)->value = value;
        return old;
    }
    len = strlen(key);
    e = xmalloc(sizeof(*e) + len + 1);
    memcpy(e->key, key, len + 1);
    e->value = value;
    e->next = NULL;
    *pp = e;
    if (++m->count > m->nbuckets)
        strmap_grow(m);
    return NULL;
}

void *strmap_remove(struct strmap *m, const char *key)
{
    struct strmap_entry **pp = strmap_slot(m, key), *e = *pp;
    void *value;

    if (e == NULL)
        return NULL;
    *pp = e->next;
    value = e->value;
    free(e);
    m->count--;
    return value;
}

size_t strmap_count(const struct strmap *m)
{
    return m->count;
}

int strmap_foreach(const struct strmap *m, int (*fn)(const char *key, void *value, void *arg),
                   void *arg)
{
    for (size_t i = 0; i < m->nbuckets; i++) {
        for (struct strmap_entry *e = m->buckets[i]; e != NULL; e = e->next) {
            int r = fn(e->key, e->value, arg);
            if (r != 0)
                return r;
        }
    }
    return 0;
}
