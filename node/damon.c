/*
 * damon: the node's own kdamond through DAMON's sysfs interface (contract
 * and ownership rules in damon.h). Expected load: a handful of small file
 * writes at start and stop, one command write and a directory of small
 * reads a second.
 */
#include "damon.h"

#include <ctype.h>
#include <stdbool.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wss.h"

/* Reads a small file, trailing newline stripped; 0 or -errno. */
static int damon_get(const char *dir, const char *name, char *buf, size_t len)
{
    char path[DAMON_PATH_MAX + 256];
    ssize_t n;
    int fd;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    n = read(fd, buf, len - 1);
    close(fd);
    if (n < 0)
        return -errno;
    buf[n] = '\0';
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    return 0;
}

/* A non-negative decimal file; 0 or -errno (-EIO when it is not a number). */
static int damon_get_u64(const char *dir, const char *name, uint64_t *ret)
{
    char buf[64], *end;
    int r = damon_get(dir, name, buf, sizeof(buf));

    if (r < 0)
        return r;
    errno = 0;
    *ret = strtoull(buf, &end, 10);
    if (errno != 0 || end == buf || *end != '\0' || buf[0] == '-')
        return -EIO;
    return 0;
}

/*
 * Writes text to dir/name, an existing file (never created: a missing file
 * is an error, as on the kernel), truncated first as a shell's ">" does.
 * 0 or -errno.
 */
static int damon_put(const char *dir, const char *name, const char *text)
{
    char path[DAMON_PATH_MAX + 256];
    size_t len = strlen(text);
    int fd, r = 0;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (write(fd, text, len) != (ssize_t)len)
        r = errno != 0 ? -errno : -EIO;
    close(fd);
    return r;
}

/* Whether kdamond 0 is still the one damon_start() made. */
static bool damon_ours(const struct damon_own *own)
{
    char admin[DAMON_PATH_MAX + 8];
    uint64_t nr = 0, target = 0, pid = 0;
    char *slash;

    if (own->dir[0] == '\0')
        return false;
    snprintf(admin, sizeof(admin), "%s", own->dir);
    slash = strrchr(admin, '/');
    if (slash == NULL)
        return false;
    *slash = '\0';
    if (damon_get_u64(admin, "nr_kdamonds", &nr) < 0 || nr != 1 ||
        damon_get_u64(own->dir, "contexts/0/targets/0/pid_target", &target) < 0 ||
        target != (uint64_t)own->target)
        return false;
    if (own->kdamond_pid > 0 &&
        (damon_get_u64(own->dir, "pid", &pid) < 0 || pid != (uint64_t)own->kdamond_pid))
        return false;
    return true;
}

int damon_start(const char *sys_root, pid_t pid, struct damon_own *own, char *err,
                size_t err_len)
{
    static const struct {
        const char *file, *value; /* value NULL: the target pid */
    } steps[] = {
        {"contexts/nr_contexts", "1"},
        {"contexts/0/operations", "vaddr"},
        {"contexts/0/targets/nr_targets", "1"},
        {"contexts/0/targets/0/pid_target", NULL},
        {"contexts/0/schemes/nr_schemes", "1"},
        {"contexts/0/schemes/0/action", "stat"},
        {"state", "on"},
    };
    struct wss_damon_info info;
    char admin[DAMON_PATH_MAX], dir[DAMON_PATH_MAX + 8], pidtext[32], buf[64];
    int r;

    memset(own, 0, sizeof(*own));
    r = wss_damon_probe(sys_root, &info);
    if (r < 0 && r != -EBUSY) {
        snprintf(err, err_len, "cannot read DAMON's sysfs tree under %s: %s", sys_root,
                 strerror(-r));
        return r;
    }
    if (!info.present) {
        snprintf(err, err_len, "no DAMON sysfs interface (%s/kernel/mm/damon/admin)", sys_root);
        return -ENOTSUP;
    }
    if (info.nr_kdamonds > 0) {
        snprintf(err, err_len,
                 "%u kdamond(s) exist (%u running) that this node did not create; making one "
                 "would rebuild them all: not touched",
                 info.nr_kdamonds, info.nr_running);
        return -EBUSY;
    }
    if (snprintf(admin, sizeof(admin) - 8, "%s/kernel/mm/damon/admin/kdamonds", sys_root) >=
        (int)sizeof(admin) - 8) {
        snprintf(err, err_len, "sys root too long");
        return -ENAMETOOLONG;
    }
    snprintf(dir, sizeof(dir), "%s/0", admin);
    snprintf(pidtext, sizeof(pidtext), "%d", (int)pid);
    r = damon_put(admin, "nr_kdamonds", "1");
    if (r < 0) {
        snprintf(err, err_len, "%s/nr_kdamonds: %s", admin, strerror(-r));
        return r;
    }
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        r = damon_put(dir, steps[i].file, steps[i].value != NULL ? steps[i].value : pidtext);
        if (r < 0) {
            snprintf(err, err_len, "%s/%s: %s", dir, steps[i].file, strerror(-r));
            (void)damon_put(admin, "nr_kdamonds", "0");
            return r;
        }
    }
    snprintf(own->dir, sizeof(own->dir), "%s", dir);
    own->target = pid;
    own->kdamond_pid = -1;
    if (damon_get(dir, "pid", buf, sizeof(buf)) == 0 && isdigit((unsigned char)buf[0]))
        own->kdamond_pid = strtol(buf, NULL, 10);
    return 0;
}

int damon_read(const struct damon_own *own, struct damon_wss *ret, char *err, size_t err_len)
{
    char regions[DAMON_PATH_MAX + 64];
    struct damon_wss w = {0};
    struct dirent *de;
    DIR *d;
    int r;

    if (!damon_ours(own)) {
        snprintf(err, err_len, "kdamond 0 is no longer this node's: DAMON not used");
        return -ESTALE;
    }
    r = damon_put(own->dir, "state", "update_schemes_tried_regions");
    if (r < 0) {
        snprintf(err, err_len, "%s/state: update_schemes_tried_regions: %s", own->dir,
                 strerror(-r));
        return r;
    }
    snprintf(regions, sizeof(regions), "%s/contexts/0/schemes/0/tried_regions", own->dir);
    d = opendir(regions);
    if (d == NULL) {
        r = -errno;
        snprintf(err, err_len, "%s: %s", regions, strerror(-r));
        return r;
    }
    while ((de = readdir(d)) != NULL) {
        char rdir[DAMON_PATH_MAX + 384];
        uint64_t start, end, acc;

        if (!isdigit((unsigned char)de->d_name[0]))
            continue; /* ".", "..", total_bytes */
        snprintf(rdir, sizeof(rdir), "%s/%s", regions, de->d_name);
        if ((r = damon_get_u64(rdir, "start", &start)) < 0 ||
            (r = damon_get_u64(rdir, "end", &end)) < 0 ||
            (r = damon_get_u64(rdir, "nr_accesses", &acc)) < 0 || end < start) {
            snprintf(err, err_len, "%s: %s", rdir, r < 0 ? strerror(-r) : "end before start");
            closedir(d);
            return r < 0 ? r : -EIO;
        }
        w.regions++;
        w.total_bytes += end - start;
        if (acc > 0)
            w.accessed_bytes += end - start;
    }
    closedir(d);
    *ret = w;
    return 0;
}

void damon_stop(struct damon_own *own)
{
    char admin[DAMON_PATH_MAX + 8], *slash;

    if (own == NULL || !damon_ours(own)) {
        if (own != NULL)
            own->dir[0] = '\0';
        return;
    }
    (void)damon_put(own->dir, "state", "off");
    snprintf(admin, sizeof(admin), "%s", own->dir);
    slash = strrchr(admin, '/');
    if (slash != NULL) {
        *slash = '\0';
        (void)damon_put(admin, "nr_kdamonds", "0");
    }
    own->dir[0] = '\0';
}
