/*
 * ordset: a skip list (Pugh 1990) with p = 1/4, up to ORDSET_LEVELS levels,
 * enough for 4^16 keys at the expected cost.
 */
#include "ordset.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "xmalloc.h"

#define ORDSET_LEVELS 16

struct ordset_node {
    const char *key;
    void *value;
    unsigned levels;
    struct ordset_node *next[]; /* next[0] is the ordered chain */
};

struct ordset {
    struct ordset_node *head; /* a key-less node of every level */
    unsigned levels;          /* levels in use */
    size_t n;
    uint32_t rng;
};

struct ordset *ordset_new(uint32_t seed)
{
    struct ordset *s = xcalloc(1, sizeof(*s));

    s->head = xcalloc(1, sizeof(*s->head) + ORDSET_LEVELS * sizeof(s->head->next[0]));
    s->head->levels = ORDSET_LEVELS;
    s->levels = 1;
    s->rng = seed != 0 ? seed : 0x9e3779b9u;
    return s;
}

void ordset_free(struct ordset *s)
{
    struct ordset_node *n, *next;

    if (s == NULL)
        return;
    for (n = s->head; n != NULL; n = next) {
        next = n->next[0];
        free(n);
    }
    free(s);
}

/* 1 + the number of successive 1/4 draws that came up: levels of a new node. */
static unsigned ordset_level(struct ordset *s)
{
    unsigned lv = 1;

    s->rng ^= s->rng << 13;
    s->rng ^= s->rng >> 17;
    s->rng ^= s->rng << 5;
    for (uint32_t r = s->rng; lv < ORDSET_LEVELS && (r & 3) == 0; r >>= 2)
        lv++;
    return lv;
}

/* Fills prev[i] with the last node at level i whose key sorts before key. */
static void ordset_find(const struct ordset *s, const char *key, struct ordset_node **prev)
{
    struct ordset_node *x = s->head;

    for (unsigned i = s->levels; i-- > 0;) {
        while (x->next[i] != NULL && strcmp(x->next[i]->key, key) < 0)
            x = x->next[i];
        prev[i] = x;
    }
}

int ordset_add(struct ordset *s, const char *key, void *value)
{
    struct ordset_node *prev[ORDSET_LEVELS], *n;
    unsigned lv;

    ordset_find(s, key, prev);
    if (prev[0]->next[0] != NULL && strcmp(prev[0]->next[0]->key, key) == 0)
        return -EEXIST;
    lv = ordset_level(s);
    for (unsigned i = s->levels; i < lv; i++)
        prev[i] = s->head;
    if (lv > s->levels)
        s->levels = lv;
    n = xmalloc(sizeof(*n) + lv * sizeof(n->next[0]));
    n->key = key;
    n->value = value;
    n->levels = lv;
    for (unsigned i = 0; i < lv; i++) {
        n->next[i] = prev[i]->next[i];
        prev[i]->next[i] = n;
    }
    s->n++;
    return 0;
}

void *ordset_remove(struct ordset *s, const char *key)
{
    struct ordset_node *prev[ORDSET_LEVELS], *n;
    void *value;

    ordset_find(s, key, prev);
    n = prev[0]->next[0];
    if (n == NULL || strcmp(n->key, key) != 0)
        return NULL;
    for (unsigned i = 0; i < n->levels; i++)
        prev[i]->next[i] = n->next[i];
    while (s->levels > 1 && s->head->next[s->levels - 1] == NULL)
        s->levels--;
    value = n->value;
    free(n);
    s->n--;
    return value;
}

size_t ordset_count(const struct ordset *s)
{
    return s->n;
}

const struct ordset_node *ordset_after(const struct ordset *s, const char *after)
{
    const struct ordset_node *x = s->head;

    if (after == NULL)
        return s->head->next[0];
    for (unsigned i = s->levels; i-- > 0;)
        while (x->next[i] != NULL && strcmp(x->next[i]->key, after) <= 0)
            x = x->next[i];
    return x->next[0];
}

const struct ordset_node *ordset_next(const struct ordset_node *n)
{
    return n->next[0];
}

const char *ordset_key(const struct ordset_node *n)
{
    return n->key;
}

void *ordset_value(const struct ordset_node *n)
{
    return n->value;
}
