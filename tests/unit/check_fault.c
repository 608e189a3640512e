/*
 * check_fault: the SIGBUS guard. A read of a mapping whose file was
 * truncated is caught by the innermost guard covering it (and only by one
 * covering it); without a covering guard the process still dies of SIGBUS.
 */
#include <check.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fault.h"
#include "suite.h"

#define PAGES 4

static char path[] = "/tmp/check_fault_XXXXXX";
static char *map;

/* A read the compiler cannot drop. */
#define READ(off) (*(const volatile char *)(map + (off)))
static long page;

/* Maps a PAGES-page file, then truncates it to one page. */
static void setup(void)
{
    int fd = mkstemp(path);
    char *buf;

    ck_assert_int_ge(fd, 0);
    page = sysconf(_SC_PAGESIZE);
    buf = calloc(PAGES, (size_t)page);
    memset(buf, 7, (size_t)(PAGES * page));
    ck_assert_int_eq(write(fd, buf, (size_t)(PAGES * page)), PAGES * page);
    free(buf);
    map = mmap(NULL, (size_t)(PAGES * page), PROT_READ, MAP_SHARED, fd, 0);
    ck_assert_ptr_ne(map, MAP_FAILED);
    ck_assert_int_eq(ftruncate(fd, page), 0);
    close(fd);
    ck_assert_int_eq(fault_init(), 0);
}

static void teardown(void)
{
    munmap(map, (size_t)(PAGES * page));
    unlink(path);
    strcpy(path, "/tmp/check_fault_XXXXXX");
}

/* Reads byte off of the mapping under a guard over [lo, lo + len). 1 if it faulted. */
static int guarded_read(size_t lo, size_t len, size_t off, char *ret, void **ret_addr)
{
    struct fault_guard g;

    fault_guard_push(&g, map + lo, len);
    if (sigsetjmp(g.env, 1) != 0) {
        *ret_addr = g.addr;
        return 1;
    }
    *ret = READ(off);
    fault_guard_pop(&g);
    return 0;
}

START_TEST(test_caught)
{
    unsigned long before = fault_recovered_total();
    char c = 0;
    void *addr = NULL;

    /* The first page is still there. */
    ck_assert_int_eq(guarded_read(0, (size_t)(PAGES * page), 10, &c, &addr), 0);
    ck_assert_int_eq(c, 7);
    /* The third is gone: caught, with the address. */
    ck_assert_int_eq(guarded_read(0, (size_t)(PAGES * page), (size_t)(2 * page + 5), &c, &addr),
                     1);
    ck_assert_ptr_eq(addr, map + 2 * page + 5);
    ck_assert_uint_eq(fault_recovered_total(), before + 1);
    /* Caught again (the mask was restored by siglongjmp). */
    ck_assert_int_eq(guarded_read(0, (size_t)(PAGES * page), (size_t)(3 * page), &c, &addr), 1);
    ck_assert_uint_eq(fault_recovered_total(), before + 2);
}
END_TEST

START_TEST(test_nested)
{
    struct fault_guard outer;
    volatile int inner_faults = 0;
    char c = 0;
    void *addr = NULL;

    /* An inner guard over other bytes lets the fault reach the outer one. */
    fault_guard_push(&outer, map, (size_t)(PAGES * page));
    if (sigsetjmp(outer.env, 1) == 0) {
        inner_faults += guarded_read(0, (size_t)page, (size_t)(2 * page), &c, &addr);
        ck_abort_msg("the read should have faulted");
    }
    ck_assert_int_eq(inner_faults, 0);
    ck_assert_ptr_eq(outer.addr, map + 2 * page);
}
END_TEST

/* A fault outside every guard is still fatal: SIGBUS, as without the handler. */
START_TEST(test_unguarded_dies)
{
    char c = 0;
    void *addr = NULL;

    /* A guard over the first page only does not cover the third. */
    (void)guarded_read(0, (size_t)page, 0, &c, &addr);
    c = READ(2 * page);
    ck_abort_msg("survived an unguarded fault (%d)", c);
}
END_TEST

/*
 * ASan installs a SIGBUS handler of its own, which would be the previous
 * handler fault.c chains to, and it aborts instead of dying of SIGBUS. The
 * unguarded case is about our handler passing the signal on, so ASan is
 * told to leave SIGBUS alone; the other builds ignore this hook.
 */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "handle_sigbus=0";
}

int main(void)
{
    Suite *s = suite_create("fault");
    TCase *tc = tcase_create("guard");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_caught);
    tcase_add_test(tc, test_nested);
    tcase_add_test_raise_signal(tc, test_unguarded_dies, SIGBUS);
    suite_add_tcase(s, tc);
    return harness_run_suite(s);
}
