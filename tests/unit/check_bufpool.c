/*
 * check_bufpool: the direct-I/O buffer pool. Files are written in a temporary
 * directory under the working directory (the build tree: a filesystem with
 * O_DIRECT, unlike a tmpfs /tmp); every 8-byte word of a file holds a pure
 * function of its offset, so any byte handed out can be checked. Pools use
 * 4 KiB blocks and 64..128 frames so that "larger than the pool" stays small.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bufpool.h"
#include "xmalloc.h"
#include "suite.h"

#define BLK 4096u

static char dir[64];

static uint64_t word_at(uint64_t file_tag, uint64_t off)
{
    uint64_t x = (off / 8 + 1) * 0x9E3779B97F4A7C15ull ^ file_tag;

    x ^= x >> 29;
    return x * 0xBF58476D1CE4E5B9ull;
}

/* Writes a file of size bytes (a multiple of 8) whose words are word_at(tag, off). */
static char *make_file(const char *name, uint64_t size, uint64_t tag)
{
    char *path = xasprintf("%s/%s", dir, name);
    uint64_t *buf = xmalloc(1 << 16);
    FILE *f = fopen(path, "we");

    ck_assert_ptr_nonnull(f);
    for (uint64_t off = 0; off < size;) {
        size_t n = size - off < (1 << 16) ? (size_t)(size - off) : (1 << 16);
        for (size_t k = 0; k < n / 8; k++)
            buf[k] = word_at(tag, off + k * 8);
        ck_assert_uint_eq(fwrite(buf, 1, n, f), n);
        off += n;
    }
    ck_assert_int_eq(fclose(f), 0);
    free(buf);
    return path;
}

static void setup(void)
{
    snprintf(dir, sizeof(dir), "check_bufpool-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
    char *cmd = xasprintf("rm -rf %s", dir);

    ck_assert_int_eq(system(cmd), 0);
    free(cmd);
}

static struct bufpool *make_pool(unsigned frames, unsigned readahead)
{
    struct bufpool *p = NULL;
    char err[200];

    ck_assert_int_eq(bufpool_new((uint64_t)frames * BLK, BLK, readahead, &p, err, sizeof(err)), 0);
    return p;
}

/* Reads block blk through a one-block cursor and checks its first word. */
static void touch(struct bufpool *p, struct bufpool_file *f, uint64_t tag, uint64_t blk)
{
    struct bufpool_cursor c;
    const void *ptr;
    size_t len;
    uint64_t w;

    bufpool_cursor_init(&c, p, f, blk * BLK, (blk + 1) * BLK);
    ck_assert_int_eq(bufpool_cursor_get(&c, blk * BLK, &ptr, &len), 0);
    memcpy(&w, ptr, 8);
    ck_assert_uint_eq(w, word_at(tag, blk * BLK));
    bufpool_cursor_done(&c);
}

/* Scans [start, end) of f, checking every word and that each pointer lies in the arena. */
static uint64_t scan_check(struct bufpool *p, struct bufpool_file *f, uint64_t tag, uint64_t start,
                           uint64_t end)
{
    struct bufpool_cursor c;
    const void *abase;
    uint64_t alen, off = start, words = 0;

    bufpool_arena(p, &abase, &alen);
    bufpool_cursor_init(&c, p, f, start, end);
    while (off < end) {
        const void *ptr;
        size_t len;

        ck_assert_int_eq(bufpool_cursor_get(&c, off, &ptr, &len), 0);
        ck_assert((const char *)ptr >= (const char *)abase);
        ck_assert((const char *)ptr + len <= (const char *)abase + alen);
        if (len > end - off)
            len = (size_t)(end - off);
        for (size_t k = 0; k < len / 8; k++) {
            uint64_t w;
            memcpy(&w, (const char *)ptr + k * 8, 8);
            if (w != word_at(tag, off + k * 8))
                ck_abort_msg("word at offset %llu is wrong", (unsigned long long)(off + k * 8));
            words++;
        }
        off += len;
    }
    bufpool_cursor_done(&c);
    return words;
}

START_TEST(test_new_refuses_bad_sizes)
{
    struct bufpool *p = NULL;
    char err[200];

    ck_assert_int_eq(bufpool_new(64 * BLK, 3000, 4, &p, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "power of two"));
    ck_assert_int_eq(bufpool_new(64 * BLK + 1, BLK, 4, &p, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "not a multiple"));
    ck_assert_int_eq(bufpool_new(8 * BLK, BLK, 4, &p, err, sizeof(err)), -EINVAL);
    ck_assert_int_eq(bufpool_new(64 * BLK, BLK, BUFPOOL_MAX_READAHEAD + 1, &p, err, sizeof(err)),
                     -EINVAL);
    ck_assert_ptr_null(p);
}
END_TEST

/* FIFO order on probation: with nothing used twice, the oldest block goes first. */
START_TEST(test_eviction_fifo_order)
{
    struct bufpool *p = make_pool(64, 0);
    char *path = make_file("a", 200 * BLK, 1);
    struct bufpool_file *f;
    struct bufpool_stats s;

    ck_assert_int_eq(bufpool_file_open(p, path, &f), 0);
    for (uint64_t b = 0; b < 64; b++)
        touch(p, f, 1, b);
    bufpool_stats(p, &s);
    ck_assert_uint_eq(s.frames_used, 64);
    ck_assert_uint_eq(s.evictions, 0);
    touch(p, f, 1, 64);
    ck_assert(!bufpool_contains(p, f, 0));
    ck_assert(bufpool_contains(p, f, 1));
    touch(p, f, 1, 65);
    ck_assert(!bufpool_contains(p, f, 1));
    ck_assert(bufpool_contains(p, f, 2));
    bufpool_stats(p, &s);
    ck_assert_uint_eq(s.evictions, 2);
    ck_assert_uint_eq(s.misses, 66);
    ck_assert_uint_eq(s.hits, 0);
    bufpool_file_close(f);
    bufpool_free(p);
    free(path);
}
END_TEST

/* A block used again on probation is promoted and outlives a long scan. */
START_TEST(test_hot_set_survives_scan)
{
    struct bufpool *p = make_pool(64, 4);
    char *path = make_file("a", 1024 * BLK, 2);
    struct bufpool_file *f;
    struct bufpool_stats s;

    ck_assert_int_eq(bufpool_file_open(p, path, &f), 0);
    /* Hot set: 20 blocks, each used twice. */
    for (int round = 0; round < 2; round++)
        for (uint64_t b = 0; b < 20; b++)
            touch(p, f, 2, b);
    /* A sequential scan of 12x the pool. */
    ck_assert_uint_eq(scan_check(p, f, 2, 200 * BLK, 968 * BLK), 768 * BLK / 8);
    for (uint64_t b = 0; b < 20; b++)
        ck_assert_msg(bufpool_contains(p, f, b), "hot block %llu was flushed by a scan",
                      (unsigned long long)b);
    bufpool_stats(p, &s);
    ck_assert_uint_eq(s.hits, 20);
    /* And the hot set is served from memory afterwards. */
    for (uint64_t b = 0; b < 20; b++)
        touch(p, f, 2, b);
    bufpool_stats(p, &s);
    ck_assert_uint_eq(s.hits, 40);
    bufpool_file_close(f);
    bufpool_free(p);
    free(path);
}
END_TEST

/* A block evicted from probation and read again soon (a ghost) goes to main. */
START_TEST(test_ghost_hit_enters_main)
{
    struct bufpool *p = make_pool(64, 0);
    char *path = make_file("a", 400 * BLK, 3);
    struct bufpool_file *f;

    ck_assert_int_eq(bufpool_file_open(p, path, &f), 0);
    for (uint64_t b = 0; b < 65; b++)
        touch(p, f, 3, b);
    ck_assert(!bufpool_contains(p, f, 0));
    touch(p, f, 3, 0); /* ghost hit */
    for (uint64_t b = 100; b < 300; b++)
        touch(p, f, 3, b);
    ck_assert(bufpool_contains(p, f, 0));
    ck_assert(!bufpool_contains(p, f, 1));
    bufpool_file_close(f);
    bufpool_free(p);
    free(path);
}
END_TEST

/* A pinned block is never evicted, and its bytes stay put while it is pinned. */
START_TEST(test_pinned_block_stays)
{
    struct bufpool *p = make_pool(64, 4);
    char *path = make_file("a", 600 * BLK, 4);
    struct bufpool_file *f;
    struct bufpool_cursor held;
    struct bufpool_stats s;
    const void *ptr;
    size_t len;
    uint64_t w;

    ck_assert_int_eq(bufpool_file_open(p, path, &f), 0);
    bufpool_cursor_init(&held, p, f, 5 * BLK, 6 * BLK);
    ck_assert_int_eq(bufpool_cursor_get(&held, 5 * BLK + 64, &ptr, &len), 0);
    ck_assert_uint_eq(len, BLK - 64);
    bufpool_stats(p, &s);
    ck_assert_uint_eq(s.pinned_frames, 1);
    scan_check(p, f, 4, 10 * BLK, 600 * BLK);
    ck_assert(bufpool_contains(p, f, 5));
    memcpy(&w, ptr, 8);
    ck_assert_uint_eq(w, word_at(4, 5 * BLK + 64));
    bufpool_stats(p, &s);
    ck_assert_uint_eq(s.pinned_frames, 1);
    bufpool_cursor_done(&held);
    bufpool_stats(p, &s);
    ck_assert_uint_eq(s.pinned_frames, 0);
    bufpool_file_close(f);
    bufpool_free(p);
    free(path);
}
END_TEST

/* The frame memory is the budget, before, during and after any amount of reading. */
START_TEST(test_bytes_equal_budget)
{
    struct bufpool *p = make_pool(64, 8);
    char *path = make_file("a", 300 * BLK + 24, 5);
    struct bufpool_file *f;
    struct bufpool_stats s;
    const void *abase;
    uint64_t alen;

    bufpool_stats(p, &s);
    ck_assert_uint_eq(s.budget_bytes, 64 * BLK);
    bufpool_arena(p, &abase, &alen);
    ck_assert_uint_eq(alen, 64 * BLK);
    ck_assert_int_eq(bufpool_file_open(p, path, &f), 0);
    ck_assert_uint_eq(bufpool_file_size(f), 300 * BLK + 24);
    /* Including the short last block. */
    ck_assert_uint_eq(scan_check(p, f, 5, 0, 300 * BLK + 24), (300 * BLK + 24) / 8);
    bufpool_stats(p, &s);
    ck_assert_uint_eq(s.budget_bytes, 64 * BLK);
    ck_assert_uint_le(s.frames_used, s.frames);
    ck_assert_uint_eq(s.read_bytes, 300 * BLK + 24);
    ck_assert_uint_eq(s.reads, 301);
    bufpool_file_close(f);
    bufpool_stats(p, &s);
    ck_assert_uint_eq(s.frames_used, 0);
    ck_assert_uint_eq(s.budget_bytes, 64 * BLK);
    bufpool_free(p);
    free(path);
}
END_TEST

/* Past the end of the file is an error, not a crash or a stale block. */
START_TEST(test_read_past_end)
{
    struct bufpool *p = make_pool(64, 2);
    char *path = make_file("a", 3 * BLK, 6);
    struct bufpool_file *f;
    struct bufpool_cursor c;
    const void *ptr;
    size_t len;

    ck_assert_int_eq(bufpool_file_open(p, path, &f), 0);
    bufpool_cursor_init(&c, p, f, 0, 10 * BLK);
    ck_assert_int_eq(bufpool_cursor_get(&c, 2 * BLK, &ptr, &len), 0);
    ck_assert_uint_eq(len, BLK);
    ck_assert_int_eq(bufpool_cursor_get(&c, 3 * BLK, &ptr, &len), -ENODATA);
    ck_assert_int_eq(bufpool_cursor_get(&c, 0, &ptr, &len), -ENODATA);
    bufpool_cursor_done(&c);
    bufpool_file_close(f);
    bufpool_free(p);
    free(path);
}
END_TEST

struct scan_thread {
    struct bufpool *pool;
    struct bufpool_file *file[2];
    uint64_t size;
    int rounds;
    uint64_t words;
};

static void *scan_thread_main(void *arg)
{
    struct scan_thread *t = arg;

    for (int r = 0; r < t->rounds; r++) {
        /* Two cursors at once, as a filtered scan holds the filter and the value column. */
        uint64_t half = t->size / 2 / BLK * BLK;
        t->words += scan_check(t->pool, t->file[r % 2], (uint64_t)(r % 2) + 10, 0, half);
        t->words += scan_check(t->pool, t->file[(r + 1) % 2], (uint64_t)((r + 1) % 2) + 10,
                               half, t->size);
    }
    return NULL;
}

/* Four threads scan two files, together 4x the pool, and every word is right. */
START_TEST(test_concurrent_scans)
{
    struct bufpool *p = make_pool(128, 8);
    uint64_t size = 256 * BLK + 8;
    char *path0 = make_file("a", size, 10), *path1 = make_file("b", size, 11);
    struct bufpool_file *f0, *f1;
    struct scan_thread t[4];
    pthread_t th[4];
    struct bufpool_stats s;

    ck_assert_int_eq(bufpool_file_open(p, path0, &f0), 0);
    ck_assert_int_eq(bufpool_file_open(p, path1, &f1), 0);
    for (int i = 0; i < 4; i++) {
        t[i] = (struct scan_thread){.pool = p, .file = {f0, f1}, .size = size, .rounds = 6};
        ck_assert_int_eq(pthread_create(&th[i], NULL, scan_thread_main, &t[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
        ck_assert_uint_eq(t[i].words, 6 * size / 8);
    }
    bufpool_stats(p, &s);
    ck_assert_uint_eq(s.pinned_frames, 0);
    ck_assert_uint_eq(s.budget_bytes, 128 * BLK);
    ck_assert_uint_eq(s.read_errors, 0);
    ck_assert_uint_ge(s.hits + s.misses, 4 * 6 * 257);
    bufpool_file_close(f0);
    bufpool_file_close(f1);
    bufpool_free(p);
    free(path0);
    free(path1);
}
END_TEST

/* The same with pread instead of io_uring (what a kernel without io_uring gets). */
START_TEST(test_concurrent_scans_pread)
{
    setenv("SLUICE_BUFPOOL_PREAD", "1", 1);
    {
        struct bufpool *p = make_pool(64, 4);
        uint64_t size = 200 * BLK;
        char *path0 = make_file("a", size, 10), *path1 = make_file("b", size, 11);
        struct bufpool_file *f0, *f1;
        struct scan_thread t[3];
        pthread_t th[3];
        struct bufpool_stats s;

        ck_assert_int_eq(bufpool_file_open(p, path0, &f0), 0);
        ck_assert_int_eq(bufpool_file_open(p, path1, &f1), 0);
        for (int i = 0; i < 3; i++) {
            t[i] = (struct scan_thread){.pool = p, .file = {f0, f1}, .size = size, .rounds = 4};
            ck_assert_int_eq(pthread_create(&th[i], NULL, scan_thread_main, &t[i]), 0);
        }
        for (int i = 0; i < 3; i++) {
            ck_assert_int_eq(pthread_join(th[i], NULL), 0);
            ck_assert_uint_eq(t[i].words, 4 * size / 8);
        }
        bufpool_stats(p, &s);
        ck_assert(!s.io_uring);
        ck_assert_uint_eq(s.pinned_frames, 0);
        bufpool_file_close(f0);
        bufpool_file_close(f1);
        bufpool_free(p);
        free(path0);
        free(path1);
    }
    unsetenv("SLUICE_BUFPOOL_PREAD");
}
END_TEST

/*
 * A filesystem without O_DIRECT answers EINVAL, which the node turns into a
 * refusal to start. tmpfs has O_DIRECT since Linux 6.6; ramfs never does, so
 * a child mounts one in a private mount namespace (root only: skipped
 * otherwise).
 */
START_TEST(test_ramfs_refuses_odirect)
{
    char mnt[] = "/tmp/check_bufpool-mnt-XXXXXX";
    pid_t pid;
    int status;

    ck_assert_ptr_nonnull(mkdtemp(mnt));
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct bufpool *p = make_pool(64, 0);
        struct bufpool_file *f = NULL;
        char *path = xasprintf("%s/seg", mnt);
        int fd;

        if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
            mount("none", mnt, "ramfs", 0, NULL) < 0)
            _exit(77);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || write(fd, "12345678", 8) != 8)
            _exit(2);
        close(fd);
        _exit(bufpool_file_open(p, path, &f) == -EINVAL && f == NULL ? 0 : 1);
    }
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    rmdir(mnt);
    ck_assert(WIFEXITED(status));
    if (WEXITSTATUS(status) == 77)
        return; /* no mount namespace for this user: nothing to show */
    ck_assert_int_eq(WEXITSTATUS(status), 0);
}
END_TEST

static Suite *bufpool_suite(void)
{
    Suite *s = suite_create("bufpool");
    TCase *tc;

    tc = tcase_create("config");
    tcase_add_test(tc, test_new_refuses_bad_sizes);
    tcase_add_test(tc, test_ramfs_refuses_odirect);
    suite_add_tcase(s, tc);

    tc = tcase_create("eviction");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_eviction_fifo_order);
    tcase_add_test(tc, test_hot_set_survives_scan);
    tcase_add_test(tc, test_ghost_hit_enters_main);
    suite_add_tcase(s, tc);

    tc = tcase_create("pins");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_pinned_block_stays);
    suite_add_tcase(s, tc);

    tc = tcase_create("budget");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_bytes_equal_budget);
    tcase_add_test(tc, test_read_past_end);
    suite_add_tcase(s, tc);

    tc = tcase_create("concurrency");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_concurrent_scans);
    tcase_add_test(tc, test_concurrent_scans_pread);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return harness_run_suite(bufpool_suite());
}
