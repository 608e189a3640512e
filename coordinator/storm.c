/*
 * storm: one row per (kind, node, reason, interval) instead of one per
 * event. The open intervals sit in a hash map by key and, for the drain,
 * in an array; the whole thing is a few hundred bytes per busy node.
 */
#include "storm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strmap.h"
#include "xmalloc.h"

struct storm_iv {
    char *key;
    uint64_t row, count, written, start_ms;
    int64_t last_wall_ms;
    size_t slot;  /* index in storm.ivs */
    bool in_map;  /* the key's current interval (a newer one replaces an ended one) */
};

struct storm {
    uint64_t interval_ms;
    struct strmap *by_key;
    struct storm_iv **ivs;
    size_t n, cap;
    uint64_t folded;
};

struct storm *storm_new(uint64_t interval_ms)
{
    struct storm *s = xcalloc(1, sizeof(*s));

    s->interval_ms = interval_ms;
    s->by_key = strmap_new();
    return s;
}

void storm_reset(struct storm *s)
{
    for (size_t i = 0; i < s->n; i++) {
        if (s->ivs[i]->in_map)
            strmap_remove(s->by_key, s->ivs[i]->key);
        free(s->ivs[i]->key);
        free(s->ivs[i]);
    }
    s->n = 0;
}

void storm_free(struct storm *s)
{
    if (s == NULL)
        return;
    storm_reset(s);
    strmap_free(s->by_key);
    free(s->ivs);
    free(s);
}

/* The map key: fields joined by 0x1f, which no id, kind or number holds. */
static char *storm_key(const char *kind, const char *node, int reason)
{
    return xasprintf("%s\x1f%s\x1f%d", kind, node != NULL ? node : "", reason);
}

static void storm_forget(struct storm *s, struct storm_iv *iv)
{
    struct storm_iv *last = s->ivs[--s->n];

    s->ivs[iv->slot] = last;
    last->slot = iv->slot;
    if (iv->in_map)
        strmap_remove(s->by_key, iv->key);
    free(iv->key);
    free(iv);
}

bool storm_fold(struct storm *s, const char *kind, const char *node, int reason, uint64_t now_ms,
                int64_t wall_ms, uint64_t *ret_row)
{
    char *key;
    struct storm_iv *iv;

    if (s->interval_ms == 0)
        return false;
    key = storm_key(kind, node, reason);
    iv = strmap_get(s->by_key, key);
    free(key);
    if (iv == NULL || now_ms < iv->start_ms || now_ms - iv->start_ms >= s->interval_ms)
        return false;
    iv->count++;
    if (wall_ms > iv->last_wall_ms)
        iv->last_wall_ms = wall_ms;
    s->folded++;
    *ret_row = iv->row;
    return true;
}

void storm_open(struct storm *s, const char *kind, const char *node, int reason, uint64_t now_ms,
                uint64_t row)
{
    char *key;
    struct storm_iv *iv;

    if (s->interval_ms == 0)
        return;
    key = storm_key(kind, node, reason);
    iv = strmap_get(s->by_key, key);
    if (iv != NULL)
        iv->in_map = false; /* it ended: the next drain writes what it still owes, then forgets it */
    iv = xcalloc(1, sizeof(*iv));
    iv->key = key;
    iv->in_map = true;
    strmap_put(s->by_key, iv->key, iv);
    if (s->n == s->cap) {
        s->cap = s->cap * 2 + 16;
        s->ivs = xreallocarray(s->ivs, s->cap, sizeof(*s->ivs));
    }
    iv->slot = s->n;
    s->ivs[s->n++] = iv;
    iv->row = row;
    iv->count = iv->written = 1;
    iv->start_ms = now_ms;
    iv->last_wall_ms = 0;
}

int storm_drain(struct storm *s, uint64_t now_ms,
                int (*write)(uint64_t row, uint64_t count, int64_t last_wall_ms, void *arg),
                void *arg)
{
    size_t i = 0;

    while (i < s->n) {
        struct storm_iv *iv = s->ivs[i];
        int r;

        if (iv->count != iv->written) {
            if ((r = write(iv->row, iv->count, iv->last_wall_ms, arg)) != 0)
                return r;
            iv->written = iv->count;
        }
        if (!iv->in_map || now_ms < iv->start_ms || now_ms - iv->start_ms >= s->interval_ms)
            storm_forget(s, iv); /* the last one moved into slot i */
        else
            i++;
    }
    return 0;
}

unsigned storm_open_count(const struct storm *s)
{
    return (unsigned)s->n;
}

uint64_t storm_folded_total(const struct storm *s)
{
    return s->folded;
}
