/*
 * check_repset: common/repset alone: the set digest does not depend on
 * order and follows every put and remove; a copy's hash changes with every
 * field a report carries but last_query_unix_ms and the uri; a diff holds
 * exactly what turns the set into the new list; an export gives back the
 * copies the set was given.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "repset.h"
#include "wire.h"
#include "suite.h"

static struct wire_segment_status copy_of(const char *id, enum wire_segment_state st,
                                          uint64_t footprint)
{
    struct wire_segment_status s;

    memset(&s, 0, sizeof(s));
    snprintf(s.segment_id, sizeof(s.segment_id), "%s", id);
    s.state = st;
    s.row_count = 1000;
    s.avg_row_size = 16;
    s.file_bytes = 16384;
    s.digest = 0x1234;
    s.footprint_bytes = footprint;
    return s;
}

/* n copies "s0".."s{n-1}", LOADED. */
static struct wire_segment_status *make(size_t n)
{
    struct wire_segment_status *v = calloc(n, sizeof(*v));
    char id[32];

    for (size_t i = 0; i < n; i++) {
        snprintf(id, sizeof(id), "s%zu", i);
        v[i] = copy_of(id, WIRE_SEG_LOADED, 4096 * (i + 1));
    }
    return v;
}

START_TEST(test_digest_order_free)
{
    struct wire_segment_status *v = make(50), *w = make(50);
    uint64_t c1, h1, c2, h2;

    /* w: v reversed. */
    for (size_t i = 0; i < 50; i++)
        w[i] = v[49 - i];
    repset_digest_of(v, 50, &c1, &h1);
    repset_digest_of(w, 50, &c2, &h2);
    ck_assert_uint_eq(c1, 50);
    ck_assert_uint_eq(c2, 50);
    ck_assert_uint_eq(h1, h2);
    /* One copy in another state: another digest, the same count. */
    w[7].state = WIRE_SEG_LOADING;
    repset_digest_of(w, 50, &c2, &h2);
    ck_assert_uint_eq(c2, 50);
    ck_assert_uint_ne(h1, h2);
    /* One copy fewer: another count and hash. */
    repset_digest_of(v, 49, &c2, &h2);
    ck_assert_uint_eq(c2, 49);
    ck_assert_uint_ne(h1, h2);
    free(v);
    free(w);
}
END_TEST

START_TEST(test_entry_hash_fields)
{
    static char uri[] = "file:///x";
    struct wire_segment_status a = copy_of("seg-a", WIRE_SEG_LOADED, 8192), b;
    uint64_t h = repset_entry_hash(&a);

#define CHANGED(stmt)                                \
    do {                                             \
        b = a;                                       \
        stmt;                                        \
        ck_assert_uint_ne(repset_entry_hash(&b), h); \
    } while (0)
    CHANGED(b.segment_id[5] = 'b');
    CHANGED(b.state = WIRE_SEG_DROPPED);
    CHANGED(b.reason = WIRE_REASON_MEM_CRITICAL);
    CHANGED(snprintf(b.detail, sizeof(b.detail), "shed"));
    CHANGED(b.row_count++);
    CHANGED(b.avg_row_size++);
    CHANGED(b.file_bytes++);
    CHANGED(b.index_bytes++);
    CHANGED(b.digest ^= 1);
    CHANGED(b.footprint_bytes++);
    CHANGED(b.mem_request_bytes = 1);
    CHANGED(b.mem_limit_bytes = 1);
    CHANGED(b.over_limit = true);
#undef CHANGED
    /* A query or a uri is not a change of the copy. */
    b = a;
    b.last_query_unix_ms = 1700000000000ULL;
    b.uri = uri;
    ck_assert_uint_eq(repset_entry_hash(&b), h);
    /* Id and detail are apart: "ab" + "" is not "a" + "b". */
    b = a;
    snprintf(a.segment_id, sizeof(a.segment_id), "ab");
    snprintf(b.segment_id, sizeof(b.segment_id), "a");
    snprintf(b.detail, sizeof(b.detail), "b");
    ck_assert_uint_ne(repset_entry_hash(&a), repset_entry_hash(&b));
}
END_TEST

START_TEST(test_put_remove_digest)
{
    struct wire_segment_status *v = make(20);
    struct repset *s = repset_new();
    uint64_t c, h;

    repset_replace(s, v, 20);
    repset_digest_of(v, 20, &c, &h);
    ck_assert_uint_eq(repset_count(s), 20);
    ck_assert_uint_eq(repset_hash(s), h);
    /* Replace one copy, remove another: the digest is the new list's. */
    v[3].state = WIRE_SEG_FAILED;
    v[3].reason = WIRE_REASON_SEGMENT_INVALID;
    repset_put(s, &v[3]);
    ck_assert(repset_remove(s, "s19"));
    ck_assert(!repset_remove(s, "s19"));
    repset_digest_of(v, 19, &c, &h);
    ck_assert_uint_eq(repset_count(s), 19);
    ck_assert_uint_eq(repset_hash(s), h);
    /* Empty: 0 and 0. */
    repset_clear(s);
    ck_assert_uint_eq(repset_count(s), 0);
    ck_assert_uint_eq(repset_hash(s), 0);
    repset_free(s);
    repset_free(NULL);
    free(v);
}
END_TEST

START_TEST(test_diff_apply)
{
    struct wire_segment_status *v = make(30), *cur = make(31);
    struct repset *s = repset_new(), *t = repset_new();
    struct repset_diff d;
    uint64_t c, h;

    repset_replace(s, v, 30);
    /* Nothing changed: an empty diff. */
    repset_diff(s, v, 30, &d);
    ck_assert_uint_eq(d.n_changed, 0);
    ck_assert_uint_eq(d.n_removed, 0);
    repset_diff_done(&d);
    /* cur: s5 LOADING -> LOADED footprint changed, s9 dropped, s30 new, s12 and s20 gone. */
    cur[5].footprint_bytes = 1;
    cur[9].state = WIRE_SEG_DROPPED;
    cur[12] = cur[30];
    cur[20] = cur[29];
    repset_diff(s, cur, 29, &d);
    ck_assert_uint_eq(d.n_changed, 3);
    ck_assert_uint_eq(d.changed[0], 5);
    ck_assert_uint_eq(d.changed[1], 9);
    ck_assert_uint_eq(d.changed[2], 12);
    /* Removed: s12 and s20 (s29, now at index 20, is the same copy: not a change). */
    ck_assert_uint_eq(d.n_removed, 2);
    ck_assert((strcmp(d.removed[0], "s12") == 0 && strcmp(d.removed[1], "s20") == 0) ||
              (strcmp(d.removed[0], "s20") == 0 && strcmp(d.removed[1], "s12") == 0));
    /* Applying the diff to a copy of the set gives cur's digest. */
    repset_replace(t, v, 30);
    {
        struct wire_segment_status ch[3];

        for (size_t i = 0; i < d.n_changed; i++)
            ch[i] = cur[d.changed[i]];
        ck_assert_uint_eq(repset_apply(t, ch, d.n_changed,
                                       (const char(*)[WIRE_ID_MAX + 1])d.removed, d.n_removed),
                          0);
    }
    repset_digest_of(cur, 29, &c, &h);
    ck_assert_uint_eq(repset_count(t), c);
    ck_assert_uint_eq(repset_hash(t), h);
    /* Removing what the set does not hold is counted. */
    {
        const char unknown[1][WIRE_ID_MAX + 1] = {"nope"};

        ck_assert_uint_eq(repset_apply(t, NULL, 0, unknown, 1), 1);
    }
    repset_diff_done(&d);
    repset_diff_done(NULL);
    repset_free(s);
    repset_free(t);
    free(v);
    free(cur);
}
END_TEST

static int by_id(const void *a, const void *b)
{
    return strcmp(((const struct wire_segment_status *)a)->segment_id,
                  ((const struct wire_segment_status *)b)->segment_id);
}

START_TEST(test_export)
{
    struct wire_segment_status *v = make(40), *out = NULL;
    struct repset *s = repset_new();
    size_t cap = 0, n;

    snprintf(v[2].detail, sizeof(v[2].detail), "checksum mismatch in column 3");
    v[2].state = WIRE_SEG_FAILED;
    v[2].reason = WIRE_REASON_SEGMENT_INVALID;
    v[4].over_limit = true;
    v[4].mem_limit_bytes = 100;
    v[6].last_query_unix_ms = 99; /* not kept */
    repset_replace(s, v, 40);
    n = repset_export(s, &out, &cap);
    ck_assert_uint_eq(n, 40);
    ck_assert_uint_ge(cap, 40);
    qsort(out, n, sizeof(*out), by_id);
    qsort(v, 40, sizeof(*v), by_id);
    for (size_t i = 0; i < n; i++) {
        ck_assert_str_eq(out[i].segment_id, v[i].segment_id);
        ck_assert_str_eq(out[i].detail, v[i].detail);
        ck_assert_int_eq(out[i].state, v[i].state);
        ck_assert_int_eq(out[i].reason, v[i].reason);
        ck_assert_uint_eq(out[i].row_count, v[i].row_count);
        ck_assert_uint_eq(out[i].avg_row_size, v[i].avg_row_size);
        ck_assert_uint_eq(out[i].file_bytes, v[i].file_bytes);
        ck_assert_uint_eq(out[i].index_bytes, v[i].index_bytes);
        ck_assert_uint_eq(out[i].last_query_unix_ms, 0);
        ck_assert_ptr_null(out[i].uri);
        ck_assert_uint_eq(out[i].digest, v[i].digest);
        ck_assert_uint_eq(out[i].footprint_bytes, v[i].footprint_bytes);
        ck_assert_uint_eq(out[i].mem_limit_bytes, v[i].mem_limit_bytes);
        ck_assert_int_eq(out[i].over_limit, v[i].over_limit);
        ck_assert_uint_eq(repset_entry_hash(&out[i]), repset_entry_hash(&v[i]));
    }
    /* Smaller later: the same storage. */
    repset_remove(s, "s1");
    ck_assert_uint_eq(repset_export(s, &out, &cap), 39);
    free(out);
    repset_free(s);
    free(v);
}
END_TEST

/*
 * The packed copies give back every field exactly, at the ends of their
 * ranges too, and the open-addressing table keeps finding every copy while
 * most of them are removed (backward shifts, the table halved) and put back.
 */
START_TEST(test_packed_round_trip)
{
    enum { N = 3000 };
    struct wire_segment_status *v = make(N), got;
    struct repset *s = repset_new();
    uint64_t c, h;

    for (size_t i = 0; i < N; i++) {
        uint64_t big = i % 3 == 0 ? UINT64_MAX - i : (uint64_t)1 << (i % 64);

        v[i].row_count = big;
        v[i].avg_row_size = i;
        v[i].file_bytes = big ^ i;
        v[i].index_bytes = i % 5 == 0 ? 0 : big;
        v[i].digest = i % 4 == 0 ? 0 : big;
        v[i].footprint_bytes = (uint64_t)1 << 63;
        v[i].mem_request_bytes = 127 + i % 3;
        v[i].mem_limit_bytes = 16383 + i % 3;
        v[i].state = (enum wire_segment_state)(i % 5);
        v[i].reason = (enum wire_reason)(i % WIRE_REASON_COUNT_);
        v[i].over_limit = i % 7 == 0;
        if (i % 11 == 0)
            snprintf(v[i].detail, sizeof(v[i].detail), "detail %zu", i);
        repset_put(s, &v[i]);
    }
    for (size_t i = 0; i < N; i++) {
        ck_assert(repset_get(s, v[i].segment_id, &got));
        ck_assert_uint_eq(repset_entry_hash(&got), repset_entry_hash(&v[i]));
        ck_assert_uint_eq(got.row_count, v[i].row_count);
        ck_assert_uint_eq(got.file_bytes, v[i].file_bytes);
        ck_assert_uint_eq(got.digest, v[i].digest);
        ck_assert_uint_eq(got.footprint_bytes, v[i].footprint_bytes);
        ck_assert_str_eq(got.detail, v[i].detail);
        ck_assert_int_eq(got.reason, v[i].reason);
    }
    /* Remove all but every tenth: the rest is still found, the removed are not. */
    for (size_t i = 0; i < N; i++)
        if (i % 10 != 0)
            ck_assert(repset_remove(s, v[i].segment_id));
    ck_assert_uint_eq(repset_count(s), N / 10);
    for (size_t i = 0; i < N; i++) {
        ck_assert_int_eq(repset_has(s, v[i].segment_id), i % 10 == 0);
        if (i % 10 == 0)
            v[i / 10] = v[i];
    }
    repset_digest_of(v, N / 10, &c, &h);
    ck_assert_uint_eq(repset_hash(s), h);
    ck_assert(!repset_remove(s, "s1"));
    repset_free(s);
    free(v);
}
END_TEST

static Suite *repset_suite(void)
{
    Suite *s = suite_create("repset");
    TCase *tc;

    tc = tcase_create("digest");
    tcase_add_test(tc, test_digest_order_free);
    tcase_add_test(tc, test_entry_hash_fields);
    tcase_add_test(tc, test_put_remove_digest);
    suite_add_tcase(s, tc);
    tc = tcase_create("diff");
    tcase_add_test(tc, test_diff_apply);
    suite_add_tcase(s, tc);
    tc = tcase_create("export");
    tcase_add_test(tc, test_export);
    tcase_add_test(tc, test_packed_round_trip);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return harness_run_suite(repset_suite());
}
