/*
 * epoch: the node's fence against a deposed coordinator (see epoch.h).
 * Expected load: one call per assignment batch and per report answer.
 */
#include "epoch.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

int epoch_fence_load(struct epoch_fence *f, const char *dir, char *err, size_t err_len)
{
    char buf[32], *end;
    unsigned long long v;
    ssize_t n;
    int fd;

    if ((size_t)snprintf(f->path, sizeof(f->path), "%s/epoch", dir) >= sizeof(f->path)) {
        f->path[0] = '\0';
        snprintf(err, err_len, "%s/epoch: path too long", dir);
        return -ENAMETOOLONG;
    }
    fd = open(f->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT)
        return 0; /* never saw an election */
    if (fd < 0) {
        snprintf(err, err_len, "%s: %s", f->path, strerror(errno));
        return -errno;
    }
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n < 0) {
        snprintf(err, err_len, "%s: %s", f->path, strerror(errno));
        return -EIO;
    }
    buf[n] = '\0';
    errno = 0;
    v = strtoull(buf, &end, 10);
    if (end == buf || (*end != '\n' && *end != '\0') || errno != 0 || buf[0] == '-') {
        snprintf(err, err_len, "%s: not an epoch (a decimal number): remove it only if no "
                 "coordinator older than the current leader can reach this node", f->path);
        return -EINVAL;
    }
    if (v > f->highest)
        f->highest = v;
    return 0;
}

/* Writes the highest epoch to the fence's file: temporary file, fsync, rename. */
static int epoch_save(const struct epoch_fence *f)
{
    char tmp[sizeof(f->path) + 8];
    int fd, r = 0;

    snprintf(tmp, sizeof(tmp), "%s.tmp", f->path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    if (dprintf(fd, "%" PRIu64 "\n", f->highest) < 0 || fsync(fd) < 0)
        r = -errno;
    close(fd);
    if (r == 0 && rename(tmp, f->path) < 0)
        r = -errno;
    if (r < 0)
        (void)unlink(tmp);
    return r;
}

int epoch_admit(struct epoch_fence *f, uint64_t epoch, char *why, size_t why_len)
{
    if (epoch == 0 || epoch >= f->highest) {
        if (epoch > f->highest) {
            int r;

            f->highest = epoch;
            if (f->path[0] != '\0' && (r = epoch_save(f)) < 0) {
                f->save_failed++;
                log_warn("epoch_save_failed", "path=%s epoch=%" PRIu64 " error=%s", f->path,
                         epoch, log_q(strerror(-r)));
            }
        }
        return 0;
    }
    f->refused++;
    if (why != NULL && why_len > 0)
        snprintf(why, why_len,
                 "coordinator epoch %" PRIu64 " is older than epoch %" PRIu64
                 ", the newest leader this node has seen: refused from a deposed coordinator",
                 epoch, f->highest);
    return -ESTALE;
}
