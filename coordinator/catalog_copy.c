/*
 * catalog_copy: moves a whole catalog from one backend to another (the way
 * from SQLite to PostgreSQL), through the catalog's own API only, so every
 * row is validated again on the way in. Reads walk the source once per
 * table; writes go into one transaction of the target, committed only
 * after the counts of both sides agree.
 *
 * Expected load: an operator's one-off command; 10^6 segments take one
 * pass of each table and one commit.
 */
#include "catalog.h"

#include <errno.h>
#include <stdbool.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* The walk's state: where rows go, and how many went. */
struct copy_walk {
    struct catalog *to;
    uint64_t n;
    bool target_failed; /* the error is the target's, not the walk's */
};

static int copy_count_seg_cb(const struct catalog_segment *s, void *arg)
{
    ((struct copy_walk *)arg)->n++;
    return 0;
}

static int copy_count_node_cb(const struct catalog_node *n, void *arg)
{
    ((struct copy_walk *)arg)->n++;
    return 0;
}

static int copy_count_asg_cb(const struct catalog_assignment *a, void *arg)
{
    ((struct copy_walk *)arg)->n++;
    return 0;
}

static int copy_count_ev_cb(const struct catalog_event *e, void *arg)
{
    ((struct copy_walk *)arg)->n++;
    return 0;
}

int catalog_counts(struct catalog *c, struct catalog_counts *ret)
{
    struct copy_walk w[4] = {{0}};
    int r;

    if ((r = catalog_foreach_segment(c, NULL, copy_count_seg_cb, &w[0])) < 0 ||
        (r = catalog_foreach_node(c, copy_count_node_cb, &w[1])) < 0 ||
        (r = catalog_foreach_assignment(c, NULL, NULL, copy_count_asg_cb, &w[2])) < 0 ||
        (r = catalog_foreach_event(c, NULL, 0, 0, copy_count_ev_cb, &w[3])) < 0)
        return r;
    ret->segments = w[0].n;
    ret->nodes = w[1].n;
    ret->assignments = w[2].n;
    ret->events = w[3].n;
    return 0;
}

/* Each callback writes one row into the target; a failure stops the walk with its errno. */
static int copy_seg_cb(const struct catalog_segment *s, void *arg)
{
    struct copy_walk *w = arg;
    int r = catalog_put_segment(w->to, s);

    w->n += r == 0;
    w->target_failed = r != 0;
    return r;
}

static int copy_node_cb(const struct catalog_node *n, void *arg)
{
    struct copy_walk *w = arg;
    int r = catalog_put_node(w->to, n);

    w->n += r == 0;
    w->target_failed = r != 0;
    return r;
}

static int copy_asg_cb(const struct catalog_assignment *a, void *arg)
{
    struct copy_walk *w = arg;
    int r = catalog_put_assignment(w->to, a->segment_id, a->node_id, a->state, a->updated_ms);

    w->n += r == 0;
    w->target_failed = r != 0;
    return r;
}

static int copy_ev_cb(const struct catalog_event *e, void *arg)
{
    struct copy_walk *w = arg;
    int r = catalog_add_event(w->to, e);

    w->n += r == 0;
    w->target_failed = r != 0;
    return r;
}

static bool copy_counts_equal(const struct catalog_counts *a, const struct catalog_counts *b)
{
    return a->segments == b->segments && a->nodes == b->nodes &&
           a->assignments == b->assignments && a->events == b->events;
}

int catalog_copy(struct catalog *from, struct catalog *to, struct catalog_counts *ret, char *err,
                 size_t err_len)
{
    struct catalog_counts src, dst;
    struct copy_walk w = {.to = to};
    const char *step = "";
    int r;

    if ((r = catalog_counts(to, &dst)) < 0) {
        snprintf(err, err_len, "target: %s", catalog_errmsg(to));
        return r;
    }
    if (dst.segments + dst.nodes + dst.assignments + dst.events > 0) {
        snprintf(err, err_len,
                 "the target catalog is not empty (%" PRIu64 " segments, %" PRIu64
                 " nodes, %" PRIu64 " assignments, %" PRIu64
                 " events); refusing to overwrite it",
                 dst.segments, dst.nodes, dst.assignments, dst.events);
        return -ENOTEMPTY;
    }
    if ((r = catalog_begin(to)) < 0) {
        snprintf(err, err_len, "target: %s", catalog_errmsg(to));
        return r;
    }
    /* A callback's error is the target's; the walk's own is the source's. */
    step = "nodes";
    r = catalog_foreach_node(from, copy_node_cb, &w);
    if (r == 0) {
        step = "segments";
        r = catalog_foreach_segment(from, NULL, copy_seg_cb, &w);
    }
    if (r == 0) {
        step = "assignments";
        r = catalog_foreach_assignment(from, NULL, NULL, copy_asg_cb, &w);
    }
    if (r == 0) {
        step = "events";
        r = catalog_foreach_event(from, NULL, 0, 0, copy_ev_cb, &w);
    }
    if (r < 0) {
        snprintf(err, err_len, "copying %s: %s: %s", step, w.target_failed ? "target" : "source",
                 catalog_errmsg(w.target_failed ? to : from));
        goto fail;
    }
    if ((r = catalog_counts(from, &src)) < 0 || (r = catalog_counts(to, &dst)) < 0) {
        snprintf(err, err_len, "counting: %s / %s", catalog_errmsg(from), catalog_errmsg(to));
        goto fail;
    }
    if (!copy_counts_equal(&src, &dst)) {
        snprintf(err, err_len,
                 "counts differ after the copy: source %" PRIu64 "/%" PRIu64 "/%" PRIu64
                 "/%" PRIu64 ", target %" PRIu64 "/%" PRIu64 "/%" PRIu64 "/%" PRIu64
                 " (segments/nodes/assignments/events); nothing was committed",
                 src.segments, src.nodes, src.assignments, src.events, dst.segments, dst.nodes,
                 dst.assignments, dst.events);
        r = -EIO;
        goto fail;
    }
    if ((r = catalog_commit(to)) < 0) {
        snprintf(err, err_len, "target: %s", catalog_errmsg(to));
        return r;
    }
    if (ret != NULL)
        *ret = dst;
    return 0;
fail:
    catalog_rollback(to);
    return r;
}
