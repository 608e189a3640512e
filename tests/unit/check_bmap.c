/*
 * check_bmap: coordinator/bmap alone, the broker's copy of the placement
 * map. A full refresh in pages becomes visible whole at its end, with the
 * first page's version; deltas replace the segments they name (holders,
 * state, a move to another table, a removal); tables list their segments in id order;
 * a delta from another epoch, or before any full map, is refused; node
 * slots never change and a node an answer leaves out has no state.
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bmap.h"
#include "suite.h"

/* A placed segment with up to two holders ("" ends the list). */
static struct wire_placed_segment seg(const char *id, const char *table, const char *h1,
                                      const char *h2)
{
    struct wire_placed_segment s;

    memset(&s, 0, sizeof(s));
    strcpy(s.segment_id, id);
    strcpy(s.table, table);
    strcpy(s.state, h1[0] != '\0' ? "LOADED" : "PENDING");
    s.node_ids = calloc(2, sizeof(*s.node_ids));
    if (h1[0] != '\0')
        strcpy(s.node_ids[s.n_nodes++], h1);
    if (h2[0] != '\0')
        strcpy(s.node_ids[s.n_nodes++], h2);
    return s;
}

static struct wire_placed_node node(const char *id, const char *addr, const char *state)
{
    struct wire_placed_node n;

    memset(&n, 0, sizeof(n));
    strcpy(n.node_id, id);
    strcpy(n.addr, addr);
    strcpy(n.state, state);
    n.p99_seconds = 0.01;
    return n;
}

static void answer(struct wire_placement_map *pm, uint64_t epoch, uint64_t version, bool full,
                   struct wire_placed_segment *segs, size_t n, struct wire_placed_node *nodes,
                   size_t nn)
{
    memset(pm, 0, sizeof(*pm));
    pm->epoch = epoch;
    pm->version = version;
    pm->full = full;
    pm->segments = segs;
    pm->n_segments = n;
    pm->nodes = nodes;
    pm->n_nodes = nn;
}

static void free_segs(struct wire_placed_segment *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(s[i].node_ids);
}

START_TEST(test_full_in_pages_then_deltas)
{
    struct bmap *m = bmap_new();
    struct wire_placed_node nodes[2] = {node("n1", "127.0.0.1:1", "UP"),
                                        node("n2", "127.0.0.1:2", "UP")};
    struct wire_placed_segment p1[2] = {seg("c", "t", "n1", "n2"), seg("a", "t", "n2", "")};
    struct wire_placed_segment p2[1] = {seg("b", "u", "n1", "")};
    struct wire_placed_segment d1[2] = {seg("a", "t", "n1", "n2"), seg("b", "t", "", "")};
    const struct bmap_seg *const *segs;
    struct wire_placement_map pm;

    ck_assert(!bmap_ready(m));
    ck_assert_uint_eq(bmap_table(m, "t", &segs), 0);
    /* A full page outside a refresh, a delta before any full map: refused. */
    answer(&pm, 7, 10, true, p1, 2, nodes, 2);
    ck_assert_int_eq(bmap_apply(m, &pm), -EINVAL);
    answer(&pm, 7, 10, false, p1, 2, nodes, 2);
    ck_assert_int_eq(bmap_apply(m, &pm), -ESTALE);

    bmap_full_begin(m);
    answer(&pm, 7, 10, true, p1, 2, nodes, 2);
    ck_assert_int_eq(bmap_apply(m, &pm), 0);
    /* Not visible before the end. */
    ck_assert_uint_eq(bmap_table(m, "t", &segs), 0);
    answer(&pm, 7, 12, true, p2, 1, nodes, 2);
    ck_assert_int_eq(bmap_apply(m, &pm), 0);
    ck_assert_int_eq(bmap_full_end(m), 0);
    ck_assert(bmap_ready(m));
    ck_assert_uint_eq(bmap_epoch(m), 7);
    ck_assert_uint_eq(bmap_version(m), 10); /* the first page's */
    ck_assert_uint_eq(bmap_count(m), 3);
    ck_assert_uint_eq(bmap_table(m, "t", &segs), 2);
    ck_assert_str_eq(segs[0]->id, "a"); /* id order */
    ck_assert_str_eq(segs[1]->id, "c");
    ck_assert_uint_eq(segs[1]->n_slots, 2);
    ck_assert_uint_eq(segs[0]->n_slots, 1);
    ck_assert_uint_eq(segs[0]->slots[0], bmap_node(m, "n2")->slot);
    ck_assert_uint_eq(bmap_table(m, "u", &segs), 1);

    /* A delta: a gets a second holder, b moves to t and has none. */
    answer(&pm, 7, 15, false, d1, 2, nodes, 1); /* n2 left out: forgotten */
    ck_assert_int_eq(bmap_apply(m, &pm), 0);
    ck_assert_uint_eq(bmap_version(m), 15);
    ck_assert_uint_eq(bmap_table(m, "u", &segs), 0);
    ck_assert_uint_eq(bmap_table(m, "t", &segs), 3);
    ck_assert_str_eq(segs[0]->id, "a");
    ck_assert_str_eq(segs[1]->id, "b");
    ck_assert_str_eq(segs[2]->id, "c");
    ck_assert_uint_eq(segs[0]->n_slots, 2);
    ck_assert_uint_eq(segs[1]->n_slots, 0);
    ck_assert_str_eq(segs[1]->state, "PENDING");
    ck_assert_str_eq(bmap_node(m, "n2")->state, "");
    ck_assert_str_eq(bmap_node(m, "n1")->state, "UP");
    ck_assert_uint_eq(bmap_count(m), 3);

    /* A segment removed by the operator leaves the map and its table. */
    {
        struct wire_placed_segment rm[1] = {seg("c", "t", "", "")};

        strcpy(rm[0].state, "REMOVED");
        answer(&pm, 7, 16, false, rm, 1, nodes, 2);
        ck_assert_int_eq(bmap_apply(m, &pm), 0);
        ck_assert_uint_eq(bmap_count(m), 2);
        ck_assert_uint_eq(bmap_table(m, "t", &segs), 2);
        ck_assert_str_eq(segs[1]->id, "b");
        ck_assert_int_eq(bmap_apply(m, &pm), 0); /* again: harmless */
        ck_assert_uint_eq(bmap_count(m), 2);
        free_segs(rm, 1);
    }
    /* Another epoch's delta: refused, nothing changes. */
    answer(&pm, 8, 16, false, p2, 1, nodes, 2);
    ck_assert_int_eq(bmap_apply(m, &pm), -ESTALE);
    ck_assert_uint_eq(bmap_version(m), 16);
    ck_assert_uint_eq(bmap_table(m, "u", &segs), 0);
    free_segs(p1, 2);
    free_segs(p2, 1);
    free_segs(d1, 2);
    bmap_free(m);
}
END_TEST

START_TEST(test_slots_are_stable)
{
    struct bmap *m = bmap_new();
    struct wire_placed_node a[2] = {node("x", "127.0.0.1:1", "UP"),
                                    node("y", "127.0.0.1:2", "UP")};
    struct wire_placed_node b[2] = {node("z", "127.0.0.1:3", "UP"),
                                    node("x", "127.0.0.1:9", "DOWN")};
    struct wire_placed_segment s[1] = {seg("s", "t", "w", "")}; /* a holder no answer listed */
    struct wire_placement_map pm;

    bmap_full_begin(m);
    answer(&pm, 1, 1, true, NULL, 0, a, 2);
    ck_assert_int_eq(bmap_apply(m, &pm), 0);
    ck_assert_int_eq(bmap_full_end(m), 0);
    ck_assert_int_eq(bmap_full_end(m), -EINVAL);
    answer(&pm, 1, 2, false, s, 1, b, 2);
    ck_assert_int_eq(bmap_apply(m, &pm), 0);
    ck_assert_uint_eq(bmap_slots(m), 4);
    ck_assert_uint_eq(bmap_node(m, "x")->slot, 0);
    ck_assert_uint_eq(bmap_node(m, "y")->slot, 1);
    ck_assert_str_eq(bmap_node(m, "x")->addr, "127.0.0.1:9");
    ck_assert_str_eq(bmap_node(m, "x")->state, "DOWN");
    ck_assert_str_eq(bmap_node_at(m, bmap_node(m, "z")->slot)->id, "z");
    ck_assert_str_eq(bmap_node(m, "w")->state, ""); /* known by its holding only */
    ck_assert_ptr_null(bmap_node_at(m, 4));
    ck_assert_ptr_null(bmap_node(m, "nope"));
    free_segs(s, 1);
    bmap_free(m);
}
END_TEST

static Suite *bmap_suite(void)
{
    Suite *s = suite_create("bmap");
    TCase *tc = tcase_create("apply");

    tcase_add_test(tc, test_full_in_pages_then_deltas);
    tcase_add_test(tc, test_slots_are_stable);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return harness_run_suite(bmap_suite());
}
