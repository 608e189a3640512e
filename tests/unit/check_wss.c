/*
 * check_wss: unit tests for node/wss. Residency is checked with exact page
 * counts on a private anonymous mapping (transparent huge pages disabled on
 * it, so touching one byte makes exactly one page resident) and on a file in
 * a mkdtemp directory whose pages are dropped with fadvise and read back.
 * The estimator is driven with injected times and its answers compared with
 * the documented formulas. The DAMON probe only ever sees fixture trees built
 * in a mkdtemp directory; it is never pointed at the real /sys.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wss.h"
#include "suite.h"

#define GiB (UINT64_C(1) << 30)

static size_t test_ps;

static int test_rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

/* Removes a fixture tree. */
static void test_rmtree(const char *dir)
{
    nftw(dir, test_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static void test_mkdtemp(char *buf, size_t len)
{
    snprintf(buf, len, "/tmp/check_wss.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(buf));
}

/* Writes content to root/rel, creating the parent directories. */
static void test_put(const char *root, const char *rel, const char *content)
{
    char path[4096];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", root, rel);
    for (char *p = path + strlen(root) + 1; *p != '\0'; p++) {
        if (*p == '/') {
            *p = '\0';
            ck_assert(mkdir(path, 0755) == 0 || errno == EEXIST);
            *p = '/';
        }
    }
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(content, f);
    ck_assert_int_eq(fclose(f), 0);
}

START_TEST(test_resident_anon)
{
    const size_t pages = 5000; /* more than one 4096-page mincore chunk */
    const size_t touch[] = {0, 1, 4095, 4096, 4999};
    uint64_t bytes = 1;
    char *map =
        mmap(NULL, pages * test_ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    ck_assert_ptr_ne(map, MAP_FAILED);
    ck_assert_int_eq(madvise(map, pages * test_ps, MADV_NOHUGEPAGE), 0);
    ck_assert_int_eq(wss_resident_bytes(map, pages * test_ps, &bytes), 0);
    ck_assert_uint_eq(bytes, 0);

    for (size_t i = 0; i < sizeof(touch) / sizeof(touch[0]); i++)
        map[touch[i] * test_ps + 7] = 1;
    ck_assert_int_eq(wss_resident_bytes(map, pages * test_ps, &bytes), 0);
    ck_assert_uint_eq(bytes, 5 * test_ps);
    /* Sub-ranges: the second chunk alone, one page, and a partial page. */
    ck_assert_int_eq(wss_resident_bytes(map + 4096 * test_ps, 904 * test_ps, &bytes), 0);
    ck_assert_uint_eq(bytes, 2 * test_ps);
    ck_assert_int_eq(wss_resident_bytes(map + 2 * test_ps, 4094 * test_ps, &bytes), 0);
    ck_assert_uint_eq(bytes, 1 * test_ps);
    ck_assert_int_eq(wss_resident_bytes(map, 1, &bytes), 0);
    ck_assert_uint_eq(bytes, test_ps);
    ck_assert_int_eq(wss_resident_bytes(map, 0, &bytes), 0);
    ck_assert_uint_eq(bytes, 0);

    /* Dropping a page makes it non-resident again. */
    ck_assert_int_eq(madvise(map + test_ps, test_ps, MADV_DONTNEED), 0);
    ck_assert_int_eq(wss_resident_bytes(map, pages * test_ps, &bytes), 0);
    ck_assert_uint_eq(bytes, 4 * test_ps);

    /* Errors, which leave *ret alone. */
    bytes = 42;
    ck_assert_int_eq(wss_resident_bytes(map + 1, test_ps, &bytes), -EINVAL);
    ck_assert_int_eq(munmap(map + 10 * test_ps, test_ps), 0);
    ck_assert_int_eq(wss_resident_bytes(map, pages * test_ps, &bytes), -ENOMEM);
    ck_assert_uint_eq(bytes, 42);
    munmap(map, 10 * test_ps);
    munmap(map + 11 * test_ps, (pages - 11) * test_ps);
}
END_TEST

START_TEST(test_cachestat_file)
{
    char dir[64], path[128];
    char *buf = calloc(8, test_ps);
    uint64_t bytes = 0;
    int fd, r;

    ck_assert_ptr_nonnull(buf);
    test_mkdtemp(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/seg", dir);
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ck_assert_int_ge(fd, 0);
    memset(buf, 'x', 8 * test_ps);
    ck_assert_int_eq(write(fd, buf, 8 * test_ps), (ssize_t)(8 * test_ps));

    r = wss_cachestat_bytes(fd, 0, 0, &bytes);
    if (r == -ENOSYS || r == -EOPNOTSUPP) {
        printf("check_wss: cachestat skipped: %s\n", strerror(-r));
        goto out;
    }
    ck_assert_int_eq(r, 0);
    /* Just written: all 8 pages are in the page cache. */
    ck_assert_uint_eq(bytes, 8 * test_ps);

    /* Written back and dropped: none. */
    ck_assert_int_eq(fsync(fd), 0);
    ck_assert_int_eq(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
    ck_assert_int_eq(wss_cachestat_bytes(fd, 0, 0, &bytes), 0);
    ck_assert_uint_eq(bytes, 0);

    /* Read back in full: 8 again; a 3-page range of it: 3. */
    ck_assert_int_eq(pread(fd, buf, 8 * test_ps, 0), (ssize_t)(8 * test_ps));
    ck_assert_int_eq(wss_cachestat_bytes(fd, 0, 0, &bytes), 0);
    ck_assert_uint_eq(bytes, 8 * test_ps);
    ck_assert_int_eq(wss_cachestat_bytes(fd, 2 * test_ps, 3 * test_ps, &bytes), 0);
    ck_assert_uint_eq(bytes, 3 * test_ps);
    /* Past the end of the file there is nothing. */
    ck_assert_int_eq(wss_cachestat_bytes(fd, 100 * test_ps, 0, &bytes), 0);
    ck_assert_uint_eq(bytes, 0);

    ck_assert_int_eq(wss_cachestat_bytes(-1, 0, 0, &bytes), -EBADF);
out:
    close(fd);
    free(buf);
    test_rmtree(dir);
}
END_TEST

START_TEST(test_estimator_max)
{
    struct wss_estimator *est = wss_new(NULL);
    struct wss_inputs in = {.cgroup_usage = 10 * GiB,
                            .inactive_file = 4 * GiB,
                            .touched = 5 * GiB,
                            .resident = 1 * GiB,
                            .anon = 2 * GiB};

    ck_assert_uint_eq(wss_estimate(est), 0);
    ck_assert_int_eq(wss_source(est), WSS_SOURCE_NONE);
    /* max(10 - 4, 5, 1 + 2) = 6, from the cgroup. */
    ck_assert_uint_eq(wss_update(est, &in, 1000), 6 * GiB);
    ck_assert_uint_eq(wss_raw(est), 6 * GiB);
    ck_assert_str_eq(wss_source_name(wss_source(est)), "cgroup");

    /* Touched wins; the rise is taken at once. */
    in.touched = 8 * GiB;
    ck_assert_uint_eq(wss_update(est, &in, 1100), 8 * GiB);
    ck_assert_str_eq(wss_source_name(wss_source(est)), "touched");

    /* Resident + anon wins. */
    in.resident = 7 * GiB;
    ck_assert_uint_eq(wss_update(est, &in, 1200), 9 * GiB);
    ck_assert_str_eq(wss_source_name(wss_source(est)), "resident");

    /* Usage without inactive_file is not used: it counts cold page cache. */
    in = (struct wss_inputs){
        .cgroup_usage = 100 * GiB, .inactive_file = WSS_UNKNOWN, .touched = 9 * GiB};
    wss_update(est, &in, 1300);
    ck_assert_uint_eq(wss_raw(est), 9 * GiB);
    ck_assert_int_eq(wss_source(est), WSS_SOURCE_TOUCHED);
    /* Usage below inactive_file gives 0, not a wrapped huge value. */
    in = (struct wss_inputs){.cgroup_usage = 1 * GiB, .inactive_file = 2 * GiB};
    wss_update(est, &in, 1400);
    ck_assert_uint_eq(wss_raw(est), 0);
    ck_assert_int_eq(wss_source(est), WSS_SOURCE_NONE);
    /* resident + anon saturates. */
    in = (struct wss_inputs){.cgroup_usage = WSS_UNKNOWN,
                             .inactive_file = WSS_UNKNOWN,
                             .resident = UINT64_MAX - 1,
                             .anon = 10};
    ck_assert_uint_eq(wss_update(est, &in, 1500), UINT64_MAX);
    ck_assert_uint_eq(wss_raw(est), UINT64_MAX);

    ck_assert_str_eq(wss_source_name(WSS_SOURCE_NONE), "none");
    wss_free(est);
    wss_free(NULL);
}
END_TEST

/* Inputs whose raw value is exactly v, from the resident term. */
static struct wss_inputs test_in(uint64_t v)
{
    return (struct wss_inputs){
        .cgroup_usage = WSS_UNKNOWN, .inactive_file = WSS_UNKNOWN, .resident = v};
}

START_TEST(test_estimator_decay)
{
    struct wss_estimator *est = wss_new(NULL); /* tau 30 s */
    struct wss_inputs in;
    double expect;

    in = test_in(8 * GiB);
    ck_assert_uint_eq(wss_update(est, &in, 10000), 8 * GiB);
    /* One time constant after a drop to 2 GiB: 2 + 6 / e GiB. */
    in = test_in(2 * GiB);
    expect = 2.0 * GiB + 6.0 * GiB * exp(-1.0);
    uint64_t got = wss_update(est, &in, 40000);
    ck_assert_msg(fabs((double)got - expect) <= 1.0, "got %llu want %.1f", (unsigned long long)got,
                  expect);
    ck_assert_uint_eq(wss_raw(est), 2 * GiB);
    /* No time passed, or time went backwards: no decay. */
    ck_assert_uint_eq(wss_update(est, &in, 40000), got);
    ck_assert_uint_eq(wss_update(est, &in, 39000), got);
    /* Two half steps equal one whole: 15 s + 15 s = 30 s. The clock went back
     * to 39000 above, so the steps count from there. */
    wss_update(est, &in, 39000 + 15000);
    uint64_t two = wss_update(est, &in, 39000 + 30000);
    expect = 2.0 * GiB + ((double)got - 2.0 * GiB) * exp(-1.0);
    ck_assert_msg(fabs((double)two - expect) <= 2.0, "got %llu want %.1f", (unsigned long long)two,
                  expect);
    /* After 10 time constants it is within 0.005% of the floor, never below. */
    uint64_t late = wss_update(est, &in, 39000 + 330000);
    ck_assert_uint_ge(late, 2 * GiB);
    ck_assert_uint_le(late, 2 * GiB + 6 * GiB / 20000);
    /* A rise is taken at once, whatever the time. */
    in = test_in(5 * GiB);
    ck_assert_uint_eq(wss_update(est, &in, 39000 + 330001), 5 * GiB);
    wss_free(est);
}
END_TEST

START_TEST(test_estimator_config)
{
    struct wss_config cfg = {.decay_tau_ms = 1000, .rise_alpha = 0.5};
    struct wss_estimator *est = wss_new(&cfg);
    struct wss_inputs in = test_in(1000);

    /* The first update is taken as is, even with a slow rise. */
    ck_assert_uint_eq(wss_update(est, &in, 0), 1000);
    in = test_in(3000);
    ck_assert_uint_eq(wss_update(est, &in, 1), 2000);
    ck_assert_uint_eq(wss_update(est, &in, 2), 2500);
    /* tau 1 s: 2 s after a drop to 500 it is 500 + 2000 / e^2 = 770.67. */
    in = test_in(500);
    ck_assert_uint_eq(wss_update(est, &in, 2002), 771);
    ck_assert_uint_eq(wss_estimate(est), 771);
    wss_free(est);
}
END_TEST

START_TEST(test_damon_probe)
{
    char root[64];
    struct wss_damon_info info;

    test_mkdtemp(root, sizeof(root));

    /* Absent: no DAMON at all. */
    memset(&info, 0xff, sizeof(info));
    ck_assert_int_eq(wss_damon_probe(root, &info), 0);
    ck_assert(!info.present);
    ck_assert_uint_eq(info.nr_kdamonds, 0);
    ck_assert_uint_eq(info.nr_running, 0);
    /* DAMON built without its sysfs admin tree counts as absent too. */
    test_put(root, "kernel/mm/damon/README", "x\n");
    ck_assert_int_eq(wss_damon_probe(root, &info), 0);
    ck_assert(!info.present);

    /* Present, no kdamond. */
    test_put(root, "kernel/mm/damon/admin/kdamonds/nr_kdamonds", "0\n");
    ck_assert_int_eq(wss_damon_probe(root, &info), 0);
    ck_assert(info.present);
    ck_assert_uint_eq(info.nr_kdamonds, 0);

    /* Present, two idle kdamonds. */
    test_put(root, "kernel/mm/damon/admin/kdamonds/nr_kdamonds", "2\n");
    test_put(root, "kernel/mm/damon/admin/kdamonds/0/state", "off\n");
    test_put(root, "kernel/mm/damon/admin/kdamonds/1/state", "off\n");
    ck_assert_int_eq(wss_damon_probe(root, &info), 0);
    ck_assert(info.present);
    ck_assert_uint_eq(info.nr_kdamonds, 2);
    ck_assert_uint_eq(info.nr_running, 0);

    /* One running: busy, and the info is still filled. */
    test_put(root, "kernel/mm/damon/admin/kdamonds/1/state", "on\n");
    memset(&info, 0, sizeof(info));
    ck_assert_int_eq(wss_damon_probe(root, &info), -EBUSY);
    ck_assert(info.present);
    ck_assert_uint_eq(info.nr_kdamonds, 2);
    ck_assert_uint_eq(info.nr_running, 1);

    /* Malformed files are errors that leave info alone. */
    test_put(root, "kernel/mm/damon/admin/kdamonds/1/state", "maybe\n");
    info.nr_running = 77;
    ck_assert_int_eq(wss_damon_probe(root, &info), -EIO);
    ck_assert_uint_eq(info.nr_running, 77);
    test_put(root, "kernel/mm/damon/admin/kdamonds/nr_kdamonds", "-1\n");
    ck_assert_int_eq(wss_damon_probe(root, &info), -EIO);
    test_put(root, "kernel/mm/damon/admin/kdamonds/nr_kdamonds", "two\n");
    ck_assert_int_eq(wss_damon_probe(root, &info), -EIO);
    /* nr_kdamonds names a directory that is not there. */
    test_put(root, "kernel/mm/damon/admin/kdamonds/nr_kdamonds", "3\n");
    test_put(root, "kernel/mm/damon/admin/kdamonds/1/state", "off\n");
    ck_assert_int_eq(wss_damon_probe(root, &info), -ENOENT);

    test_rmtree(root);
}
END_TEST

/*
 * The touched ring's first call on a host up for a year clears the ring once
 * (it used to count every second from 0 to the uptime, inside the loop).
 */
START_TEST(test_touch_first_call_jumps)
{
    const uint64_t year = 365ULL * 86400;
    struct wss_touch t;

    memset(&t, 0, sizeof(t));
    ck_assert_uint_le(wss_touch_add(&t, year, 100), WSS_TOUCH_SLOTS);
    ck_assert_uint_eq(wss_touch_sum(&t, year), 100);
    /* A second later: one slot cleared, both seconds counted. */
    ck_assert_uint_eq(wss_touch_add(&t, year + 1, 20), 1);
    ck_assert_uint_eq(wss_touch_sum(&t, year + 1), 120);
    /* The window is WSS_TOUCH_SLOTS seconds: the first second leaves it at +10. */
    ck_assert_uint_eq(wss_touch_sum(&t, year + WSS_TOUCH_SLOTS - 1), 120);
    ck_assert_uint_eq(wss_touch_sum(&t, year + WSS_TOUCH_SLOTS), 20);
    /* A gap longer than the ring empties it, clearing each slot once. */
    ck_assert_uint_eq(wss_touch_add(&t, year + 1000000, 7), WSS_TOUCH_SLOTS);
    ck_assert_uint_eq(wss_touch_sum(&t, year + 1000000), 7);
    /* A second older than the newest counts in the newest. */
    ck_assert_uint_eq(wss_touch_add(&t, year, 1), 0);
    ck_assert_uint_eq(wss_touch_sum(&t, year + 1000000), 8);
}
END_TEST

static void test_add(Suite *s, const char *name, const TTest *test)
{
    TCase *tc = tcase_create(name);

    tcase_add_test(tc, test);
    suite_add_tcase(s, tc);
}

static Suite *wss_suite(void)
{
    Suite *s = suite_create("wss");

    test_add(s, "resident_anon", test_resident_anon);
    test_add(s, "cachestat_file", test_cachestat_file);
    test_add(s, "estimator_max", test_estimator_max);
    test_add(s, "estimator_decay", test_estimator_decay);
    test_add(s, "estimator_config", test_estimator_config);
    test_add(s, "damon_probe", test_damon_probe);
    test_add(s, "touch_first_call_jumps", test_touch_first_call_jumps);
    return s;
}

int main(void)
{
    test_ps = (size_t)sysconf(_SC_PAGESIZE);
    return harness_run_suite(wss_suite());
}
