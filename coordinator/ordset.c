/*
 * ordset: a sorted array of blocks, each a sorted array of up to
 * ORDSET_BLOCK record pointers; every block but the only one holds at least
 * one record. An add goes to the first block whose last key is not below
 * the new one (else the last block) and splits a full block in two halves;
 * a remove that leaves a block and a neighbour with at most half a block
 * between them merges the two, so blocks stay about a quarter full or more
 * however records come and go.
 */
#include "ordset.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "xmalloc.h"

#define ORDSET_BLOCK 128

struct ordset_block {
    size_t n;
    void *rec[ORDSET_BLOCK];
};

struct ordset {
    struct ordset_block **b;
    size_t nb, cap_b;
    size_t n, key_offset;
};

static const char *ordset_rkey(const struct ordset *s, const void *record)
{
    return (const char *)record + s->key_offset;
}

struct ordset *ordset_new(size_t key_offset)
{
    struct ordset *s = xcalloc(1, sizeof(*s));

    s->key_offset = key_offset;
    return s;
}

void ordset_free(struct ordset *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->nb; i++)
        free(s->b[i]);
    free(s->b);
    free(s);
}

/* Inserts a fresh block at index at of the block array. */
static struct ordset_block *ordset_block_insert(struct ordset *s, size_t at)
{
    if (s->nb == s->cap_b) {
        s->cap_b = s->cap_b * 2 + 8;
        s->b = xreallocarray(s->b, s->cap_b, sizeof(*s->b));
    }
    memmove(&s->b[at + 1], &s->b[at], (s->nb - at) * sizeof(*s->b));
    s->nb++;
    return s->b[at] = xcalloc(1, sizeof(**s->b));
}

static void ordset_block_delete(struct ordset *s, size_t at)
{
    free(s->b[at]);
    memmove(&s->b[at], &s->b[at + 1], (s->nb - at - 1) * sizeof(*s->b));
    s->nb--;
}

/* The first block whose last key is >= key (strict: > key), or nb when none is. */
static size_t ordset_find_block(const struct ordset *s, const char *key, int strict)
{
    size_t lo = 0, hi = s->nb;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct ordset_block *b = s->b[mid];
        int c = strcmp(ordset_rkey(s, b->rec[b->n - 1]), key);

        if (c > 0 || (c == 0 && !strict))
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/* In block b, the first index whose key is >= key (strict: > key). */
static size_t ordset_find_in(const struct ordset *s, const struct ordset_block *b, const char *key,
                             int strict)
{
    size_t lo = 0, hi = b->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(ordset_rkey(s, b->rec[mid]), key);

        if (c > 0 || (c == 0 && !strict))
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

int ordset_add(struct ordset *s, void *record)
{
    const char *key = ordset_rkey(s, record);
    size_t bi, i;
    struct ordset_block *b;

    if (s->nb == 0) {
        b = ordset_block_insert(s, 0);
        b->rec[b->n++] = record;
        s->n++;
        return 0;
    }
    bi = ordset_find_block(s, key, 0);
    if (bi == s->nb)
        bi--; /* after every key: the last block */
    b = s->b[bi];
    i = ordset_find_in(s, b, key, 0);
    if (i < b->n && strcmp(ordset_rkey(s, b->rec[i]), key) == 0)
        return -EEXIST;
    if (b->n == ORDSET_BLOCK) {
        struct ordset_block *r = ordset_block_insert(s, bi + 1);

        b = s->b[bi];
        r->n = ORDSET_BLOCK / 2;
        memcpy(r->rec, &b->rec[ORDSET_BLOCK / 2], r->n * sizeof(r->rec[0]));
        b->n = ORDSET_BLOCK / 2;
        if (i > b->n) {
            i -= b->n;
            b = r;
        }
    }
    memmove(&b->rec[i + 1], &b->rec[i], (b->n - i) * sizeof(b->rec[0]));
    b->rec[i] = record;
    b->n++;
    s->n++;
    return 0;
}

void *ordset_remove(struct ordset *s, const char *key)
{
    size_t bi = ordset_find_block(s, key, 0), i;
    struct ordset_block *b;
    void *record;

    if (bi == s->nb)
        return NULL;
    b = s->b[bi];
    i = ordset_find_in(s, b, key, 0);
    if (i == b->n || strcmp(ordset_rkey(s, b->rec[i]), key) != 0)
        return NULL;
    record = b->rec[i];
    memmove(&b->rec[i], &b->rec[i + 1], (b->n - i - 1) * sizeof(b->rec[0]));
    b->n--;
    s->n--;
    /* Merge with the next block (or the previous) when both fit in half a block. */
    if (bi + 1 < s->nb && b->n + s->b[bi + 1]->n <= ORDSET_BLOCK / 2) {
        memcpy(&b->rec[b->n], s->b[bi + 1]->rec, s->b[bi + 1]->n * sizeof(b->rec[0]));
        b->n += s->b[bi + 1]->n;
        ordset_block_delete(s, bi + 1);
    } else if (bi > 0 && b->n + s->b[bi - 1]->n <= ORDSET_BLOCK / 2) {
        struct ordset_block *p = s->b[bi - 1];

        memcpy(&p->rec[p->n], b->rec, b->n * sizeof(b->rec[0]));
        p->n += b->n;
        ordset_block_delete(s, bi);
    } else if (b->n == 0) {
        ordset_block_delete(s, bi); /* emptied, its neighbours too full to take it */
    }
    return record;
}

size_t ordset_count(const struct ordset *s)
{
    return s->n;
}

/* p at block bi, index i, or the end when that is past the last record. */
static void ordset_pos_set(const struct ordset *s, size_t bi, size_t i, struct ordset_pos *p)
{
    if (bi < s->nb && i == s->b[bi]->n) {
        bi++;
        i = 0;
    }
    p->s = bi < s->nb ? s : NULL;
    p->block = bi;
    p->i = i;
}

void ordset_after(const struct ordset *s, const char *after, struct ordset_pos *ret)
{
    size_t bi;

    if (after == NULL) {
        ordset_pos_set(s, 0, 0, ret);
        return;
    }
    bi = ordset_find_block(s, after, 1);
    ordset_pos_set(s, bi, bi < s->nb ? ordset_find_in(s, s->b[bi], after, 1) : 0, ret);
}

void ordset_next(struct ordset_pos *p)
{
    if (p->s != NULL)
        ordset_pos_set(p->s, p->block, p->i + 1, p);
}

void *ordset_value(const struct ordset_pos *p)
{
    return p->s != NULL ? p->s->b[p->block]->rec[p->i] : NULL;
}

const char *ordset_key(const struct ordset_pos *p)
{
    return p->s != NULL ? ordset_rkey(p->s, ordset_value(p)) : NULL;
}
