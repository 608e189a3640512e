/*
 * pmap: a ring of the last changes, each a (version, item) pair, for the
 * deltas of GET /v1/placements (see pmap.h). Versions are consecutive, so
 * the entry of version v sits at (v - 1) % cap and a walk since V is a
 * seek by arithmetic, O(changes since V).
 */
#include <errno.h>
#include <stdlib.h>

#include "pmap.h"
#include "xmalloc.h"

struct pmap_entry {
    uint64_t version;
    void *item;
};

struct pmap {
    size_t cap;
    uint64_t version;
    struct pmap_entry *ring;
};

struct pmap *pmap_new(size_t cap)
{
    struct pmap *p = xcalloc(1, sizeof(*p));

    p->cap = cap > 0 ? cap : 1;
    p->ring = xcalloc(p->cap, sizeof(*p->ring));
    return p;
}

void pmap_free(struct pmap *p)
{
    if (p == NULL)
        return;
    free(p->ring);
    free(p);
}

uint64_t pmap_touch(struct pmap *p, void *item)
{
    struct pmap_entry *e;

    p->version++;
    e = &p->ring[(p->version - 1) % p->cap];
    e->version = p->version;
    e->item = item;
    return p->version;
}

uint64_t pmap_version(const struct pmap *p)
{
    return p->version;
}

int pmap_since(const struct pmap *p, uint64_t since,
               int (*cb)(void *item, uint64_t version, void *arg), void *arg)
{
    if (since > p->version || p->version - since > p->cap)
        return -ESTALE;
    for (uint64_t v = since + 1; v <= p->version; v++) {
        const struct pmap_entry *e = &p->ring[(v - 1) % p->cap];
        int r = cb(e->item, e->version, arg);

        if (r != 0)
            return r;
    }
    return 0;
}
