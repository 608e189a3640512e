/*
 * check_store: the store on a real event loop and worker pool, over
 * temporary directories: assignment outcomes, what a refused assignment
 * leaves behind (nothing), crash recovery of the data directory, deletion.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <event2/event.h>

#include "admission.h"
#include "pool.h"
#include "mkseg.h"
#include "segfmt.h"
#include "store.h"
#include "xmalloc.h"
#include "suite.h"

static char root[64], data[128], storage[128];
static struct event_base *base;
static struct pool *pool;
/* Admission's side, as the node wires it: the disk decision and its ledger. */
static struct admission_config acfg;
static struct admission_ledger *ledger;

static void write_seg(const char *name, uint64_t rows)
{
    struct mkseg_spec spec = {.rows = rows, .row_bytes = 32, .seed = 4};
    char *path = xasprintf("%s/%s", storage, name), detail[256];

    ck_assert_int_eq(mkseg_write(path, &spec, detail, sizeof(detail)), 0);
    free(path);
}

static void setup(void)
{
    snprintf(root, sizeof(root), "/tmp/check_store-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(root));
    snprintf(storage, sizeof(storage), "%s/storage", root);
    snprintf(data, sizeof(data), "%s/data", root);
    mkdir(storage, 0755);
    base = event_base_new();
    pool = pool_new(base, 2);
}

static void teardown(void)
{
    char *cmd = xasprintf("rm -rf %s", root);

    pool_free(pool);
    event_base_free(base);
    admission_ledger_free(ledger);
    ledger = NULL;
    ck_assert_int_eq(system(cmd), 0);
    free(cmd);
}

/* The heap bytes the last precheck reported, and a heap limit to refuse above (0: none). */
static uint64_t seen_heap_bytes, heap_limit;

static int admit_disk(void *arg, const char *id, uint64_t file_bytes, uint64_t heap_bytes,
                      int disk_err, uint64_t disk_avail, void *assign_arg, char *detail,
                      size_t len)
{
    (void)arg;
    (void)assign_arg;
    seen_heap_bytes = heap_bytes;
    if (heap_limit > 0 && heap_bytes > heap_limit) {
        snprintf(detail, len, "in-memory columns %llu > %llu", (unsigned long long)heap_bytes,
                 (unsigned long long)heap_limit);
        return -ENOMEM;
    }
    return admission_disk_admit(&acfg, ledger, id, file_bytes, disk_err, disk_avail, detail, len);
}

static void load_ended(const char *id, bool ok, uint64_t file_bytes, uint64_t index_bytes,
                       void *arg)
{
    (void)admission_ledger_release(ledger, id, NULL);
}

/* A store whose loads admission lets start while reserve bytes of disk stay free. */
static struct store *open_store(uint64_t reserve)
{
    struct store_config cfg = {.storage_root = storage, .data_dir = data};
    char err[256];
    struct store *st = store_new(pool, &cfg, err, sizeof(err));

    ck_assert_msg(st != NULL, "%s", err);
    memset(&acfg, 0, sizeof(acfg));
    acfg.disk_reserve_bytes = reserve;
    admission_ledger_free(ledger);
    ledger = admission_ledger_new();
    store_set_admit(st, admit_disk, NULL);
    store_set_load_cb(st, load_ended, NULL);
    return st;
}

struct answer {
    int status;
    enum wire_reason reason;
    char detail[256];
    bool done;
};

/* The store answers -errno; the status and reason are the node's mapping of it. */
static void assign_cb(int err, const char *detail, void *arg)
{
    struct answer *a = arg;

    a->status = admission_store_answer(err, &a->reason);
    snprintf(a->detail, sizeof(a->detail), "%s", detail);
    a->done = true;
}

static void delete_cb(int status, const char *detail, void *arg)
{
    struct answer *a = arg;

    a->status = status;
    snprintf(a->detail, sizeof(a->detail), "%s", detail);
    a->done = true;
}

/* Runs the loop until *flag or 10 s. */
static void run_until(bool (*fn)(void *), void *arg)
{
    for (int i = 0; i < 1000 && !fn(arg); i++) {
        struct timeval tv = {0, 10000};
        event_base_loopexit(base, &tv);
        event_base_dispatch(base);
    }
    ck_assert(fn(arg));
}

static bool answered(void *arg)
{
    return ((struct answer *)arg)->done;
}

struct want {
    struct store *st;
    enum wire_segment_state state;
    size_t n;
};

static bool states_are(void *arg)
{
    struct want *w = arg;
    struct store_totals t;

    store_totals(w->st, &t);
    return t.segments[w->state] == w->n && t.loads_in_flight == 0;
}

static struct answer do_assign(struct store *st, const char *id, const char *file, uint64_t rows)
{
    struct wire_assign_request req;
    struct answer a = {0};

    memset(&req, 0, sizeof(req));
    snprintf(req.segment_id, sizeof(req.segment_id), "%s", id);
    snprintf(req.uri, sizeof(req.uri), "file://%s/%s", storage, file);
    req.row_count = rows;
    req.avg_row_size = 32;
    store_assign(st, &req, assign_cb, &a);
    run_until(answered, &a);
    return a;
}

static size_t count_files(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    size_t n = 0;

    if (d == NULL)
        return 0;
    while ((de = readdir(d)) != NULL)
        n += de->d_name[0] != '.';
    closedir(d);
    return n;
}

START_TEST(test_assign_load)
{
    struct store *st = open_store(0);
    struct want w = {st, WIRE_SEG_LOADED, 1};
    struct wire_node_status ns;
    struct store_seg *seg;
    struct answer a;
    char err[128];

    write_seg("a.seg", 10000);
    a = do_assign(st, "a", "a.seg", 10000);
    ck_assert_int_eq(a.status, 202);
    run_until(states_are, &w);
    seg = store_get_loaded(st, "a", err, sizeof(err));
    ck_assert_ptr_nonnull(seg);
    ck_assert_uint_eq(store_seg_header(seg)->row_count, 10000);
    store_seg_unref(seg);
    memset(&ns, 0, sizeof(ns));
    store_status(st, admission_load_reason, &ns);
    ck_assert_uint_eq(ns.n_segments, 1);
    {
        /* The incremental totals agree with a full recount. */
        struct store_totals t;
        store_totals(st, &t);
        ck_assert_uint_eq(t.mapped_bytes, ns.mapped_bytes);
        ck_assert_uint_eq(t.index_bytes, ns.index_bytes);
        ck_assert_uint_eq(t.segments[WIRE_SEG_LOADED], 1);
        ck_assert_uint_eq(t.segments[WIRE_SEG_LOADING], 0);
    }
    ck_assert_str_eq(ns.segments[0].segment_id, "a");
    ck_assert_uint_gt(ns.segments[0].index_bytes, 0);
    ck_assert_uint_eq(ns.mapped_bytes, ns.segments[0].file_bytes);
    wire_node_status_done(&ns);
    /* Same assignment again: idempotent; another URI or size: conflict naming it. */
    ck_assert_int_eq(do_assign(st, "a", "a.seg", 10000).status, 202);
    write_seg("b.seg", 10000);
    a = do_assign(st, "a", "b.seg", 10000);
    ck_assert_int_eq(a.status, 409);
    ck_assert_str_eq(a.detail, "uri: segment \"a\" is already held with another uri");
    a = do_assign(st, "a", "a.seg", 9999);
    ck_assert_int_eq(a.status, 409);
    ck_assert_str_eq(a.detail,
                     "row_count: segment \"a\" is already held with another row_count");
    {
        struct wire_assign_request req;
        memset(&req, 0, sizeof(req));
        snprintf(req.segment_id, sizeof(req.segment_id), "a");
        snprintf(req.uri, sizeof(req.uri), "file://%s/a.seg", storage);
        req.row_count = 10000;
        req.avg_row_size = 64;
        memset(&a, 0, sizeof(a));
        store_assign(st, &req, assign_cb, &a);
        run_until(answered, &a);
        ck_assert_int_eq(a.status, 409);
        ck_assert_str_eq(a.detail,
                         "avg_row_size: segment \"a\" is already held with another avg_row_size");
    }
    /* The refusals changed nothing. */
    seg = store_get_loaded(st, "a", err, sizeof(err));
    ck_assert_ptr_nonnull(seg);
    ck_assert_str_eq(store_seg_header(seg)->columns[0].name, "key");
    ck_assert_uint_eq(store_seg_header(seg)->row_count, 10000);
    store_seg_unref(seg);
    ck_assert_ptr_null(store_get_loaded(st, "zzz", err, sizeof(err)));
    ck_assert_str_eq(err, "segment \"zzz\" is not on this node");
    store_free(st);
}
END_TEST

START_TEST(test_refusals_leave_nothing)
{
    struct store *st = open_store(0);
    struct store_totals t;
    struct answer a;

    write_seg("a.seg", 100);
    a = do_assign(st, "m", "missing.seg", 100);
    ck_assert_int_eq(a.status, 422);
    ck_assert_int_eq(a.reason, WIRE_REASON_SEGMENT_INVALID);
    a = do_assign(st, "r", "a.seg", 99);
    ck_assert_int_eq(a.status, 422);
    ck_assert_msg(strstr(a.detail, "the file says 100") != NULL, "%s", a.detail);
    a = do_assign(st, "d", "../storage/a.seg", 100);
    ck_assert_int_eq(a.status, 422);
    store_totals(st, &t);
    ck_assert_uint_eq(t.segments[WIRE_SEG_LOADING] + t.segments[WIRE_SEG_LOADED] +
                          t.segments[WIRE_SEG_FAILED],
                      0);
    ck_assert_uint_eq(t.loads_in_flight, 0);
    {
        char *segdir = xasprintf("%s/segments", data);
        ck_assert_uint_eq(count_files(segdir), 0);
        free(segdir);
    }
    store_free(st);
}
END_TEST

START_TEST(test_disk_full)
{
    /* A reserve no disk has: every assignment is refused with DISK_FULL. */
    struct store *st = open_store(UINT64_MAX / 4);
    struct answer a;

    write_seg("a.seg", 100);
    a = do_assign(st, "a", "a.seg", 100);
    ck_assert_int_eq(a.status, 507);
    ck_assert_int_eq(a.reason, WIRE_REASON_DISK_FULL);
    ck_assert_msg(strstr(a.detail, "free") != NULL, "%s", a.detail);
    store_free(st);
}
END_TEST

/*
 * The precheck reads the file's in-memory (SEGMENT_COL_ANON) columns from
 * its header and hands their size to the admit function; a refusal of that
 * memory (-ENOMEM) answers 429 MEM_CAPACITY with the admit function's detail
 * and leaves nothing behind.
 */
START_TEST(test_admit_sees_heap_bytes)
{
    struct store *st = open_store(0);
    struct mkseg_spec spec = {.rows = 200, .row_bytes = 16, .seed = 5, .anon_row_bytes = 512};
    char *path = xasprintf("%s/wide.seg", storage), detail[256];
    struct answer a;

    ck_assert_int_eq(mkseg_write(path, &spec, detail, sizeof(detail)), 0);
    write_seg("narrow.seg", 200);
    heap_limit = 0;
    a = do_assign(st, "narrow", "narrow.seg", 200);
    ck_assert_int_eq(a.status, 202);
    ck_assert_uint_eq(seen_heap_bytes, 0);
    heap_limit = 200 * 512 - 1;
    a = do_assign(st, "wide", "wide.seg", 200);
    ck_assert_uint_eq(seen_heap_bytes, 200 * 512);
    ck_assert_int_eq(a.status, 429);
    ck_assert_int_eq(a.reason, WIRE_REASON_MEM_CAPACITY);
    ck_assert_msg(strstr(a.detail, "in-memory columns 102400") != NULL, "%s", a.detail);
    ck_assert(!store_holds(st, "wide"));
    heap_limit = 200 * 512;
    a = do_assign(st, "wide", "wide.seg", 200);
    ck_assert_int_eq(a.status, 202);
    heap_limit = 0;
    free(path);
    store_free(st);
}
END_TEST

static bool both_answered(void *arg)
{
    struct answer *a = arg;

    return a[0].done && a[1].done;
}

/*
 * Two assignments checked at the same time, with room for one and a half
 * copies above the reserve: the second counts the disk promised to the first
 * and is refused, so no accepted load runs out of disk later.
 */
START_TEST(test_disk_shared_by_concurrent_prechecks)
{
    struct wire_assign_request req[2];
    struct answer a[2];
    struct statvfs vfs;
    struct stat sb;
    struct store *st;
    char *src, want[128];
    uint64_t avail;
    int accepted = 0;

    write_seg("big.seg", 2u << 20); /* 64 MiB of rows */
    src = xasprintf("%s/big.seg", storage);
    ck_assert_int_eq(stat(src, &sb), 0);
    mkdir(data, 0755);
    ck_assert_int_eq(statvfs(data, &vfs), 0);
    avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
    ck_assert_uint_gt(avail, 2 * (uint64_t)sb.st_size);
    /* Room for 1.5 copies: a margin of half a copy against other writers. */
    st = open_store(avail - (uint64_t)sb.st_size * 3 / 2);
    memset(a, 0, sizeof(a));
    for (int i = 0; i < 2; i++) {
        memset(&req[i], 0, sizeof(req[i]));
        snprintf(req[i].segment_id, sizeof(req[i].segment_id), "big-%d", i);
        snprintf(req[i].uri, sizeof(req[i].uri), "file://%s", src);
        req[i].row_count = 2u << 20;
        req[i].avg_row_size = 32;
    }
    store_assign(st, &req[0], assign_cb, &a[0]);
    store_assign(st, &req[1], assign_cb, &a[1]);
    run_until(both_answered, a);
    snprintf(want, sizeof(want), "%llu promised to loads in flight",
             (unsigned long long)sb.st_size);
    for (int i = 0; i < 2; i++) {
        if (a[i].status == 202) {
            accepted++;
            continue;
        }
        ck_assert_int_eq(a[i].status, 507);
        ck_assert_int_eq(a[i].reason, WIRE_REASON_DISK_FULL);
        ck_assert_msg(strstr(a[i].detail, want) != NULL, "%s", a[i].detail);
    }
    ck_assert_int_eq(accepted, 1);
    {
        struct want w = {st, WIRE_SEG_LOADED, 1};
        run_until(states_are, &w);
    }
    store_free(st);
    free(src);
}
END_TEST

/* Out of file descriptors is this node's trouble, not the file's: 429 MEM_CAPACITY. */
START_TEST(test_no_descriptors_is_not_invalid)
{
    struct store *st = open_store(0);
    struct store_totals t;
    int fds[1024], n = 0;
    struct answer a;
    struct rlimit rl;

    write_seg("a.seg", 100);
    /* A small table to fill (this test runs in its own process). */
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    rl.rlim_cur = 512;
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    while (n < 1024 && (fds[n] = dup(0)) >= 0)
        n++;
    ck_assert_int_eq(errno, EMFILE);
    a = do_assign(st, "a", "a.seg", 100);
    while (n > 0)
        close(fds[--n]);
    ck_assert_int_eq(a.status, 429);
    ck_assert_int_eq(a.reason, WIRE_REASON_MEM_CAPACITY);
    ck_assert_msg(strstr(a.detail, "Too many open files") != NULL, "%s", a.detail);
    store_totals(st, &t);
    ck_assert_uint_eq(t.loads_in_flight, 0);
    ck_assert_uint_eq(t.segments[WIRE_SEG_LOADING], 0);
    /* With descriptors back, the same assignment goes through. */
    ck_assert_int_eq(do_assign(st, "a", "a.seg", 100).status, 202);
    {
        struct want w = {st, WIRE_SEG_LOADED, 1};
        run_until(states_are, &w);
    }
    store_free(st);
}
END_TEST

START_TEST(test_recovery)
{
    struct store *st = open_store(0);
    struct want w = {st, WIRE_SEG_LOADED, 2};
    char *segdir = xasprintf("%s/segments", data), *p;
    FILE *f;

    write_seg("a.seg", 1000);
    write_seg("b.seg", 2000);
    ck_assert_int_eq(do_assign(st, "a", "a.seg", 1000).status, 202);
    ck_assert_int_eq(do_assign(st, "b", "b.seg", 2000).status, 202);
    run_until(states_are, &w);
    store_free(st);
    /* What a crash can leave: a partial copy, a .meta without its .seg, a .seg without .meta. */
    static const char *const junk[] = {"c.seg.tmp", "d.meta", "e.seg", "f.meta.tmp"};
    for (size_t i = 0; i < 4; i++) {
        p = xasprintf("%s/%s", segdir, junk[i]);
        f = fopen(p, "w");
        fputs("uri=file:///x\nrow_count=1\navg_row_size=1\n", f);
        fclose(f);
        free(p);
    }
    st = open_store(0);
    w.st = st;
    run_until(states_are, &w);
    ck_assert_uint_eq(count_files(segdir), 4); /* a and b: .seg + .meta each */
    for (size_t i = 0; i < 4; i++) {
        p = xasprintf("%s/%s", segdir, junk[i]);
        ck_assert_int_eq(access(p, F_OK), -1);
        free(p);
    }
    store_free(st);
    free(segdir);
}
END_TEST

START_TEST(test_delete)
{
    struct store *st = open_store(0);
    struct want w = {st, WIRE_SEG_LOADED, 1};
    char *segdir = xasprintf("%s/segments", data);
    struct answer a = {0};

    write_seg("a.seg", 1000);
    ck_assert_int_eq(do_assign(st, "a", "a.seg", 1000).status, 202);
    run_until(states_are, &w);
    store_delete(st, "a", delete_cb, &a);
    run_until(answered, &a);
    ck_assert_int_eq(a.status, 200);
    ck_assert_uint_eq(count_files(segdir), 0);
    {
        struct store_totals t;
        store_totals(st, &t);
        ck_assert_uint_eq(t.mapped_bytes, 0);
        ck_assert_uint_eq(t.index_bytes, 0);
        ck_assert_uint_eq(t.segments[WIRE_SEG_LOADED], 0);
    }
    memset(&a, 0, sizeof(a));
    store_delete(st, "a", delete_cb, &a);
    ck_assert(a.done);
    ck_assert_int_eq(a.status, 404);
    store_free(st);
    free(segdir);
}
END_TEST

static bool pool_idle(void *arg)
{
    return pool_pending(pool) == 0;
}

/*
 * Loads "a" (4,096 rows), takes a query's reference to it and sheds it; returns
 * once the shed's unlink has finished, with the reference still held.
 */
static struct store_seg *shed_while_held(struct store *st, const char *segdir)
{
    struct want w = {st, WIRE_SEG_LOADED, 1};
    struct store_seg *held;
    char err[256];

    write_seg("a.seg", 4096);
    ck_assert_int_eq(do_assign(st, "a", "a.seg", 4096).status, 202);
    run_until(states_are, &w);
    held = store_get_loaded(st, "a", err, sizeof(err));
    ck_assert_msg(held != NULL, "%s", err);
    ck_assert_int_eq(store_shed(st, "a", WIRE_REASON_MEM_CRITICAL, "test"), 0);
    run_until(pool_idle, NULL); /* the shed's unlink is done (else: 409, being unloaded) */
    ck_assert_uint_eq(count_files(segdir), 0);
    return held;
}

/*
 * A query holds a segment that is shed and then deleted: the memory stays
 * readable until the query lets go, and the totals never go negative.
 */
START_TEST(test_shed_then_delete_under_query)
{
    struct store *st = open_store(0);
    char *segdir = xasprintf("%s/segments", data);
    struct store_seg *held = shed_while_held(st, segdir);
    const struct segment_header *hdr;
    struct store_totals t;
    struct answer a = {0};
    uint64_t sum = 0;

    store_delete(st, "a", delete_cb, &a);
    run_until(answered, &a);
    ck_assert_int_eq(a.status, 200);
    store_totals(st, &t);
    ck_assert_uint_eq(t.index_bytes, 0);
    ck_assert_uint_eq(t.mapped_bytes, 0);
    for (int i = 0; i < WIRE_SEG_COUNT_; i++)
        ck_assert_uint_eq(t.segments[i], 0);
    /* The query still reads every row of the key column, as written. */
    hdr = store_seg_header(held);
    ck_assert_ptr_nonnull(hdr);
    ck_assert_ptr_nonnull(store_seg_base(held));
    {
        const int64_t *key = (const int64_t *)((const char *)store_seg_base(held) +
                                               hdr->columns[0].offset);
        for (uint64_t r = 0; r < hdr->row_count; r++)
            sum += key[r] == segment_synth_key(4, r);
    }
    ck_assert_uint_eq(sum, 4096);
    store_seg_unref(held);
    store_free(st);
    free(segdir);
}
END_TEST

/*
 * A shed segment a query holds is re-assigned, the query lets go while the
 * precheck runs, and the precheck refuses: the old entry is back and its
 * memory is released, not kept until the next deletion.
 */
START_TEST(test_shed_replaced_refused_releases)
{
    struct store *st = open_store(0);
    char *segdir = xasprintf("%s/segments", data);
    struct store_seg *held = shed_while_held(st, segdir);
    struct wire_assign_request req;
    struct store_totals t;
    struct answer a = {0};

    store_totals(st, &t);
    ck_assert_uint_gt(t.mapped_bytes, 0); /* the query still reads it */
    memset(&req, 0, sizeof(req));
    snprintf(req.segment_id, sizeof(req.segment_id), "a");
    snprintf(req.uri, sizeof(req.uri), "file://%s/a.seg", storage);
    req.row_count = 4095; /* the file says 4096: the precheck refuses */
    req.avg_row_size = 32;
    store_assign(st, &req, assign_cb, &a);
    store_seg_unref(held);
    run_until(answered, &a);
    ck_assert_int_eq(a.status, 422);
    store_totals(st, &t);
    ck_assert_uint_eq(t.segments[WIRE_SEG_DROPPED], 1);
    ck_assert_uint_eq(t.mapped_bytes, 0);
    ck_assert_uint_eq(t.index_bytes, 0);
    store_free(st);
    free(segdir);
}
END_TEST

START_TEST(test_bad_roots)
{
    struct store_config cfg = {.storage_root = "/nonexistent/x", .data_dir = data};
    char err[256];

    ck_assert_ptr_null(store_new(pool, &cfg, err, sizeof(err)));
    ck_assert_msg(strstr(err, "--storage-root /nonexistent/x") != NULL, "%s", err);
    cfg.storage_root = storage;
    cfg.data_dir = "/proc/forbidden/data";
    ck_assert_ptr_null(store_new(pool, &cfg, err, sizeof(err)));
    ck_assert_msg(strstr(err, "--data-dir") != NULL, "%s", err);
}
END_TEST

/* A pool job that holds its worker until the test writes to the pipe. */
static void block_work(void *arg)
{
    char c;

    (void)!read(*(int *)arg, &c, 1);
}

/*
 * A deletion that arrives while a shed is removing the files waits for it:
 * no second unlink of the same paths runs beside the shed's (it could land
 * after a re-assignment's new copy and remove it). Once answered, a new
 * assignment's copy stays.
 */
START_TEST(test_delete_waits_for_shed)
{
    struct store *st = open_store(0);
    char *segdir = xasprintf("%s/segments", data);
    struct want w = {st, WIRE_SEG_LOADED, 1};
    struct answer a = {0};
    int fds[2];

    write_seg("a.seg", 4096);
    ck_assert_int_eq(do_assign(st, "a", "a.seg", 4096).status, 202);
    run_until(states_are, &w);
    ck_assert_int_eq(pipe(fds), 0);
    /* Both workers busy: the shed's unlink stays queued. */
    pool_submit(pool, block_work, NULL, &fds[0]);
    pool_submit(pool, block_work, NULL, &fds[0]);
    ck_assert_int_eq(store_shed(st, "a", WIRE_REASON_MEM_CRITICAL, "test"), 0);
    ck_assert_uint_eq(pool_pending(pool), 3);
    store_delete(st, "a", delete_cb, &a);
    ck_assert_uint_eq(pool_pending(pool), 3); /* no unlink queued beside the shed's */
    ck_assert(!a.done);
    ck_assert_int_eq(do_assign(st, "a", "a.seg", 4096).status, 409); /* being unloaded */
    ck_assert_int_eq(write(fds[1], "xx", 2), 2);
    run_until(answered, &a);
    ck_assert_int_eq(a.status, 200);
    run_until(pool_idle, NULL);
    ck_assert(!store_holds(st, "a"));
    ck_assert_int_eq(do_assign(st, "a", "a.seg", 4096).status, 202);
    run_until(states_are, &w);
    run_until(pool_idle, NULL);
    ck_assert_uint_eq(count_files(segdir), 2); /* a.seg and a.meta */
    close(fds[0]);
    close(fds[1]);
    store_free(st);
    free(segdir);
}
END_TEST

/*
 * When the free space of the data directory cannot be measured, the
 * assignment is refused 507 DISK_FULL naming the failure, not accepted
 * unchecked.
 */
START_TEST(test_statvfs_failure_refuses)
{
    struct store *st = open_store(0);
    char *segdir = xasprintf("%s/segments", data);
    struct store_totals t;
    struct answer a;

    write_seg("a.seg", 1000);
    ck_assert_int_eq(rmdir(segdir), 0); /* statvfs now fails with ENOENT */
    a = do_assign(st, "a", "a.seg", 1000);
    ck_assert_int_eq(a.status, 507);
    ck_assert_int_eq(a.reason, WIRE_REASON_DISK_FULL);
    ck_assert_msg(strstr(a.detail, "cannot measure") != NULL && strstr(a.detail, segdir) != NULL,
                  "%s", a.detail);
    store_totals(st, &t);
    ck_assert_uint_eq(t.loads_in_flight, 0);
    ck_assert(!store_holds(st, "a"));
    store_free(st);
    free(segdir);
}
END_TEST

/* An assignment of file as id, carrying digest. */
static struct answer do_assign_digest(struct store *st, const char *id, const char *file,
                                      uint64_t rows, uint64_t digest)
{
    struct wire_assign_request req;
    struct answer a = {0};

    memset(&req, 0, sizeof(req));
    snprintf(req.segment_id, sizeof(req.segment_id), "%s", id);
    snprintf(req.uri, sizeof(req.uri), "file://%s/%s", storage, file);
    req.row_count = rows;
    req.avg_row_size = 32;
    req.digest = digest;
    store_assign(st, &req, assign_cb, &a);
    run_until(answered, &a);
    return a;
}

/* The digest of a file in the storage root. */
static uint64_t file_digest(const char *name)
{
    char *path = xasprintf("%s/%s", storage, name), detail[256];
    unsigned char buf[SEGMENT_MAX_HEADER_SIZE];
    struct segment_header hdr;
    struct stat sb;
    FILE *f = fopen(path, "rb");
    size_t n;

    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(stat(path, &sb), 0);
    n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    ck_assert_int_eq(segment_parse_header(buf, n, (uint64_t)sb.st_size, &hdr, detail,
                                          sizeof(detail)),
                     0);
    free(path);
    return segment_digest(&hdr);
}

/*
 * The registered digest travels with the assignment: a file with another one
 * is refused 422 (it changed since it was registered), a copy held with
 * another one answers 409, and status reports each copy's digest.
 */
START_TEST(test_digest_checked)
{
    struct store *st = open_store(0);
    struct want w = {st, WIRE_SEG_LOADED, 1};
    struct wire_node_status ns;
    struct answer a;
    uint64_t d;

    write_seg("a.seg", 1000);
    d = file_digest("a.seg");
    a = do_assign_digest(st, "a", "a.seg", 1000, d ^ 1);
    ck_assert_int_eq(a.status, 422);
    ck_assert_int_eq(a.reason, WIRE_REASON_SEGMENT_INVALID);
    ck_assert_msg(strstr(a.detail, "digest") != NULL && strstr(a.detail, "changed"), "%s",
                  a.detail);
    ck_assert(!store_holds(st, "a"));
    ck_assert_int_eq(do_assign_digest(st, "a", "a.seg", 1000, d).status, 202);
    run_until(states_are, &w);
    memset(&ns, 0, sizeof(ns));
    store_status(st, admission_load_reason, &ns);
    ck_assert_uint_eq(ns.n_segments, 1);
    ck_assert_uint_eq(ns.segments[0].digest, d);
    wire_node_status_done(&ns);
    /* The same assignment again, or one without a digest: a retry. Another digest: 409. */
    ck_assert_int_eq(do_assign_digest(st, "a", "a.seg", 1000, d).status, 202);
    ck_assert_int_eq(do_assign_digest(st, "a", "a.seg", 1000, 0).status, 202);
    a = do_assign_digest(st, "a", "a.seg", 1000, d + 1);
    ck_assert_int_eq(a.status, 409);
    ck_assert_msg(strstr(a.detail, "digest") != NULL, "%s", a.detail);
    store_free(st);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("store");
    TCase *tc = tcase_create("store");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_assign_load);
    tcase_add_test(tc, test_refusals_leave_nothing);
    tcase_add_test(tc, test_disk_full);
    tcase_add_test(tc, test_admit_sees_heap_bytes);
    tcase_add_test(tc, test_no_descriptors_is_not_invalid);
    tcase_add_test(tc, test_disk_shared_by_concurrent_prechecks);
    tcase_add_test(tc, test_recovery);
    tcase_add_test(tc, test_delete);
    tcase_add_test(tc, test_bad_roots);
    tcase_add_test(tc, test_shed_then_delete_under_query);
    tcase_add_test(tc, test_shed_replaced_refused_releases);
    tcase_add_test(tc, test_delete_waits_for_shed);
    tcase_add_test(tc, test_statvfs_failure_refuses);
    tcase_add_test(tc, test_digest_checked);
    suite_add_tcase(s, tc);
    return harness_run_suite(s);
}
