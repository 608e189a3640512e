/*
 * fixture_tree: kernel fixture trees for unit tests of modules that read
 * /sys or /proc through a root path (check_mglru, check_damon). A tree is a
 * mkdtemp directory under /tmp; nothing here ever touches the real /sys.
 * Header-only: each test binary is one file plus this.
 */
#ifndef SLUICE_TESTS_FIXTURE_TREE_H
#define SLUICE_TESTS_FIXTURE_TREE_H

#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Makes /tmp/<prefix>.XXXXXX into buf. */
static inline void fixture_new(char *buf, size_t len, const char *prefix)
{
    snprintf(buf, len, "/tmp/%s.XXXXXX", prefix);
    ck_assert_ptr_nonnull(mkdtemp(buf));
}

/* Writes content to root/rel, creating the parent directories. */
static inline void fixture_put(const char *root, const char *rel, const char *content)
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

/* The contents of root/rel, trailing newlines kept, into buf ("" if unreadable). */
static inline const char *fixture_get(const char *root, const char *rel, char *buf, size_t len)
{
    char path[4096];
    FILE *f;
    size_t n = 0;

    snprintf(path, sizeof(path), "%s/%s", root, rel);
    f = fopen(path, "r");
    if (f != NULL) {
        n = fread(buf, 1, len - 1, f);
        fclose(f);
    }
    buf[n] = '\0';
    return buf;
}

static inline int fixture_rm_cb(const char *path, const struct stat *st, int flag,
                                struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* rm -rf root. */
static inline void fixture_remove(const char *root)
{
    nftw(root, fixture_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
