/*
 * sampler: reads the kernel's memory signals on a thread of its own and
 * publishes snapshots for the loop. Expected load: one sample per 100 ms (or
 * per PSI trigger), each about ten small files under /proc and the cgroup
 * directory opened, read and closed (a few hundred microseconds in all);
 * readers copy ~1.6 KiB per sampler_read().
 *
 * The sampling state (previous snapshot, sequence number, read buffer,
 * trigger fd) belongs to whichever context samples: the caller of
 * sampler_sample_once() before sampler_start() or after sampler_stop(), the
 * thread in between. Only the publication ring is shared.
 */
#include "sampler.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "tte.h"
#include "xmalloc.h"

#define SAMPLER_BUF_SIZE      65536
#define SAMPLER_MAX_INTERVAL  60000
#define SAMPLER_MAX_ANCESTORS 64
#define SAMPLER_MAX_FIELDS    64
/* v1 reports "no limit" as LONG_MAX rounded down to a page; anything this big is no limit. */
#define SAMPLER_V1_UNLIMITED  (UINT64_C(1) << 62)
#define SAMPLER_PROC_MAGIC    0x9fa0
#define SAMPLER_CGROUP2_MAGIC 0x63677270

#define SAMPLER_TRIGGER_1S_SPEC "some 150000 1000000"
#define SAMPLER_TRIGGER_2S_SPEC "some 300000 2000000"

#define SAMPLER_WORDS ((sizeof(struct sampler_snapshot) + 7) / 8)

/* One publication slot: seq is the snapshot's seq when stable, 0 while written. */
struct sampler_slot {
    _Atomic uint64_t seq;
    _Atomic uint64_t words[SAMPLER_WORDS];
};

struct sampler {
    char proc_root[SAMPLER_PATH_MAX];
    char sys_root[SAMPLER_PATH_MAX];
    uint64_t interval_ns;
    uint64_t oom_recent_ns;

    /* Detection results. */
    enum sampler_cgroup_mode mode;
    char v1_dir[SAMPLER_PATH_MAX]; /* v1 memory cgroup directory, "" if none */
    char v2_dir[SAMPLER_PATH_MAX]; /* v2 cgroup directory, "" if none */
    char v2_top[SAMPLER_PATH_MAX]; /* its mount point: where the ancestor walk stops */
    char psi_path[SAMPLER_PATH_MAX];
    bool psi_host_wide;

    /* PSI trigger. */
    int trig_fd;
    enum sampler_trigger trig;
    char trig_reason[SAMPLER_REASON_MAX];
    uint64_t trigger_fires;

    /* Thread. */
    int epfd;
    int stopfd;
    pthread_t thread;
    bool running;

    /* Sampling state. */
    struct sampler_snapshot prev;         /* the last sample; seq 0 before the first */
    struct tte tte;                       /* time-to-exhaustion series */
    enum sampler_limit_source tte_source; /* the limit the series was measured against */
    uint64_t seq;
    char *buf;

    struct sampler_slot ring[SAMPLER_RING];
    _Atomic(struct sampler_slot *) latest;
};

/* names[v], or "unknown" for a value past the table. */
static const char *sampler_enum_name(const char *const *names, size_t n, unsigned v)
{
    return v < n ? names[v] : "unknown";
}

#define SAMPLER_NAME(names, v)                                                                 \
    sampler_enum_name(names, sizeof(names) / sizeof((names)[0]), (unsigned)(v))

const char *sampler_cgroup_mode_name(enum sampler_cgroup_mode mode)
{
    static const char *const names[] = {"none", "v1", "v2", "hybrid"};

    return SAMPLER_NAME(names, mode);
}

const char *sampler_trigger_name(enum sampler_trigger trig)
{
    static const char *const names[] = {"off", "1s", "2s"};

    return SAMPLER_NAME(names, trig);
}

const char *sampler_scope_name(enum sampler_scope scope)
{
    static const char *const names[] = {"none", "cgroup", "host"};

    return SAMPLER_NAME(names, scope);
}

const char *sampler_limit_source_name(enum sampler_limit_source src)
{
    static const char *const names[] = {"none", "cgroup_max", "cgroup_high", "memtotal"};

    return SAMPLER_NAME(names, src);
}

const char *sampler_cause_name(enum sampler_cause cause)
{
    static const char *const names[] = {"manual", "timer", "trigger"};

    return SAMPLER_NAME(names, cause);
}

/* snprintf into a fixed buffer; false if the result did not fit. */
static bool __attribute__((format(printf, 3, 4)))
sampler_fmt(char *dst, size_t size, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(dst, size, fmt, ap);
    va_end(ap);
    return n >= 0 && (size_t)n < size;
}

/* Reads path into s->buf, NUL-terminated, at most SAMPLER_BUF_SIZE - 1 bytes. */
static int sampler_slurp(struct sampler *s, const char *path)
{
    size_t len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return -errno;
    while (len < SAMPLER_BUF_SIZE - 1) {
        ssize_t n = read(fd, s->buf + len, SAMPLER_BUF_SIZE - 1 - len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int r = -errno;

            close(fd);
            return r;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    s->buf[len] = '\0';
    return 0;
}

/* Parses decimal digits at p into *ret; false on no digits or overflow. */
static bool sampler_parse_u64(const char *p, const char **end, uint64_t *ret)
{
    uint64_t v = 0;
    const char *q = p;

    for (; *q >= '0' && *q <= '9'; q++) {
        if (__builtin_mul_overflow(v, 10, &v) ||
            __builtin_add_overflow(v, (uint64_t)(*q - '0'), &v))
            return false;
    }
    if (q == p)
        return false;
    *end = q;
    *ret = v;
    return true;
}

/* Parses "12.34" (the kernel's fixed-point averages) without the locale. */
static bool sampler_parse_fixed(const char *p, const char **end, double *ret)
{
    uint64_t ip, fp = 0;
    double scale = 1.0;
    const char *q;

    if (!sampler_parse_u64(p, &q, &ip))
        return false;
    if (*q == '.') {
        q++;
        for (; *q >= '0' && *q <= '9' && scale < 1e15; q++) {
            fp = fp * 10 + (uint64_t)(*q - '0');
            scale *= 10.0;
        }
        while (*q >= '0' && *q <= '9')
            q++;
    }
    *end = q;
    *ret = (double)ip + (double)fp / scale;
    return true;
}

struct sampler_kv {
    const char *key;
    uint64_t val;
    bool found;
};

/*
 * Fills kv[] from "key value" or "Key: value" lines (memory.stat, vmstat,
 * memory.events, meminfo). The first occurrence of a key wins.
 */
static void sampler_kv_parse(const char *buf, struct sampler_kv *kv, size_t n)
{
    const char *line = buf;

    while (*line != '\0') {
        size_t len = strcspn(line, "\n");
        size_t klen = strcspn(line, " \t:\n");

        for (size_t i = 0; i < n; i++) {
            const char *p, *end;
            uint64_t v;

            if (kv[i].found || strlen(kv[i].key) != klen || memcmp(kv[i].key, line, klen) != 0)
                continue;
            p = line + klen;
            while (*p == ' ' || *p == '\t' || *p == ':')
                p++;
            if (sampler_parse_u64(p, &end, &v)) {
                kv[i].val = v;
                kv[i].found = true;
            }
            break;
        }
        line += len;
        if (*line == '\n')
            line++;
    }
}

/*
 * Reads a one-number cgroup file. "max" reads as SAMPLER_UNLIMITED; so does a
 * v1 "no limit" value when unlimited_v1 is set.
 */
static int sampler_read_u64(struct sampler *s, const char *dir, const char *name, bool unlimited_v1,
                            uint64_t *ret)
{
    char path[SAMPLER_PATH_MAX + 64];
    const char *end;
    uint64_t v;
    int r;

    if (!sampler_fmt(path, sizeof(path), "%s/%s", dir, name))
        return -ENAMETOOLONG;
    r = sampler_slurp(s, path);
    if (r < 0)
        return r;
    if (strncmp(s->buf, "max", 3) == 0 && (s->buf[3] == '\n' || s->buf[3] == '\0')) {
        *ret = SAMPLER_UNLIMITED;
        return 0;
    }
    if (!sampler_parse_u64(s->buf, &end, &v) || (*end != '\n' && *end != '\0'))
        return -EIO;
    if (unlimited_v1 && v >= SAMPLER_V1_UNLIMITED)
        v = SAMPLER_UNLIMITED;
    *ret = v;
    return 0;
}

/* Parses a PSI file's "some" and "full" lines; each needs all four fields. */
static void sampler_psi_parse(const char *buf, struct sampler_snapshot *snap)
{
    const char *line = buf;

    while (*line != '\0') {
        size_t len = strcspn(line, "\n");
        struct sampler_psi psi = {0};
        unsigned seen = 0;
        bool some = strncmp(line, "some ", 5) == 0, full = strncmp(line, "full ", 5) == 0;
        const char *p = some || full ? line + 5 : line + len;

        while ((some || full) && p < line + len) {
            const char *end = p;

            if (strncmp(p, "avg10=", 6) == 0 && sampler_parse_fixed(p + 6, &end, &psi.avg10))
                seen |= 1;
            else if (strncmp(p, "avg60=", 6) == 0 && sampler_parse_fixed(p + 6, &end, &psi.avg60))
                seen |= 2;
            else if (strncmp(p, "avg300=", 7) == 0 && sampler_parse_fixed(p + 7, &end, &psi.avg300))
                seen |= 4;
            else if (strncmp(p, "total=", 6) == 0 && sampler_parse_u64(p + 6, &end, &psi.total_us))
                seen |= 8;
            else
                end = p + strcspn(p, " \n");
            p = end;
            while (*p == ' ')
                p++;
        }
        if (seen == 15 && some) {
            snap->some = psi;
            snap->have |= SAMPLER_HAVE_PSI_SOME;
        } else if (seen == 15 && full) {
            snap->full = psi;
            snap->have |= SAMPLER_HAVE_PSI_FULL;
        }
        line += len;
        if (*line == '\n')
            line++;
    }
}

/* ---- detection ---- */

/* True if the comma-separated list has the token tok. */
static bool sampler_has_token(const char *list, const char *tok)
{
    size_t tl = strlen(tok);

    for (const char *p = list; *p != '\0';) {
        size_t n = strcspn(p, ",");

        if (n == tl && memcmp(p, tok, tl) == 0)
            return true;
        p += n;
        if (*p == ',')
            p++;
    }
    return false;
}

/*
 * Reads <proc_root>/self/cgroup: the v2 path ("0::/path") and the v1 path
 * of the memory controller, each "" when absent.
 */
static void sampler_parse_self_cgroup(const char *path, char *v1, char *v2, size_t size)
{
    FILE *f = fopen(path, "re");
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;

    v1[0] = v2[0] = '\0';
    if (f == NULL)
        return;
    while ((n = getline(&line, &cap, f)) > 0) {
        char *c1, *c2;

        if (line[n - 1] == '\n')
            line[n - 1] = '\0';
        c1 = strchr(line, ':');
        c2 = c1 != NULL ? strchr(c1 + 1, ':') : NULL;
        if (c2 == NULL || c2[1] != '/')
            continue;
        *c1 = *c2 = '\0';
        if (strcmp(line, "0") == 0 && c1[1] == '\0' && strlen(c2 + 1) < size)
            strcpy(v2, c2 + 1);
        else if (sampler_has_token(c1 + 1, "memory") && strlen(c2 + 1) < size)
            strcpy(v1, c2 + 1);
    }
    free(line);
    fclose(f);
}

/* Undoes mountinfo's octal escapes (\040 for a space) in place. */
static void sampler_unescape(char *s)
{
    char *w = s;

    for (char *r = s; *r != '\0'; r++) {
        if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
            r[3] >= '0' && r[3] <= '7') {
            *w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
            r += 3;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
}

/* If path lies at or under root (component-wise), returns the rest ("" or "/..."). */
static const char *sampler_under(const char *root, const char *path)
{
    size_t rl = strlen(root);

    if (strcmp(root, "/") == 0)
        return strcmp(path, "/") == 0 ? "" : path;
    if (strncmp(path, root, rl) == 0 && (path[rl] == '\0' || path[rl] == '/'))
        return path + rl;
    return NULL;
}

struct sampler_mount {
    char point[SAMPLER_PATH_MAX]; /* as in mountinfo */
    size_t root_len;              /* length of the matching mount root; the longest wins */
    char rel[SAMPLER_PATH_MAX];   /* the cgroup path below that root */
    bool found;
};

/* Records a candidate mount for cgroup path cg if its root contains cg. */
static void sampler_consider(struct sampler_mount *m, const char *cg, const char *root,
                             const char *point)
{
    const char *rel;

    if (cg[0] == '\0' || (rel = sampler_under(root, cg)) == NULL)
        return;
    if (m->found && strlen(root) <= m->root_len)
        return;
    if (strlen(point) >= sizeof(m->point) || strlen(rel) >= sizeof(m->rel))
        return;
    strcpy(m->point, point);
    strcpy(m->rel, rel);
    m->root_len = strlen(root);
    m->found = true;
}

/*
 * Reads mountinfo: the cgroup2 mount holding v2_path and the v1 memory
 * mount holding v1_path.
 */
static void sampler_parse_mountinfo(const char *path, const char *v1_path, const char *v2_path,
                                    struct sampler_mount *v1, struct sampler_mount *v2)
{
    FILE *f = fopen(path, "re");
    char *line = NULL;
    size_t cap = 0;

    if (f == NULL)
        return;
    while (getline(&line, &cap, f) > 0) {
        char *field[SAMPLER_MAX_FIELDS], *save = NULL;
        size_t nf = 0, sep = 0;

        for (char *t = strtok_r(line, " \n", &save); t != NULL && nf < SAMPLER_MAX_FIELDS;
             t = strtok_r(NULL, " \n", &save))
            field[nf++] = t;
        for (size_t i = 6; i < nf; i++) {
            if (strcmp(field[i], "-") == 0) {
                sep = i;
                break;
            }
        }
        if (sep == 0 || sep + 3 >= nf)
            continue;
        sampler_unescape(field[3]);
        sampler_unescape(field[4]);
        if (strcmp(field[sep + 1], "cgroup2") == 0)
            sampler_consider(v2, v2_path, field[3], field[4]);
        else if (strcmp(field[sep + 1], "cgroup") == 0 &&
                 sampler_has_token(field[sep + 3], "memory"))
            sampler_consider(v1, v1_path, field[3], field[4]);
    }
    free(line);
    fclose(f);
}

/* Maps a host mount point onto sys_root and appends rel; "" if too long. */
static void sampler_map_dir(const struct sampler *s, const struct sampler_mount *m, char *dir,
                            char *top)
{
    const char *point = m->point, *prefix = "";

    if (strcmp(point, "/sys") == 0 || strncmp(point, "/sys/", 5) == 0) {
        prefix = s->sys_root;
        point += 4;
    }
    if (!sampler_fmt(top, SAMPLER_PATH_MAX, "%s%s", prefix, point) ||
        !sampler_fmt(dir, SAMPLER_PATH_MAX, "%s%s%s", prefix, point, m->rel))
        top[0] = dir[0] = '\0';
}

static bool sampler_is_dir(const char *path)
{
    struct stat st;

    return path[0] != '\0' && stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool sampler_exists(const char *dir, const char *name)
{
    char path[SAMPLER_PATH_MAX + 64];

    return sampler_fmt(path, sizeof(path), "%s/%s", dir, name) && access(path, F_OK) == 0;
}

/* True if path reads as a PSI file with at least a valid "some" line. */
static bool sampler_psi_usable(struct sampler *s, const char *path)
{
    struct sampler_snapshot *probe;
    bool ok;

    if (sampler_slurp(s, path) < 0)
        return false;
    probe = xcalloc(1, sizeof(*probe));
    sampler_psi_parse(s->buf, probe);
    ok = (probe->have & SAMPLER_HAVE_PSI_SOME) != 0;
    free(probe);
    return ok;
}

static void sampler_detect(struct sampler *s)
{
    char path[SAMPLER_PATH_MAX + 32], v1_path[SAMPLER_PATH_MAX], v2_path[SAMPLER_PATH_MAX];
    char v1_top[SAMPLER_PATH_MAX];
    struct sampler_mount *v1 = xcalloc(1, sizeof(*v1)), *v2 = xcalloc(1, sizeof(*v2));
    bool v1_ok = false, v2_ok = false;

    if (sampler_fmt(path, sizeof(path), "%s/self/cgroup", s->proc_root))
        sampler_parse_self_cgroup(path, v1_path, v2_path, sizeof(v1_path));
    else
        v1_path[0] = v2_path[0] = '\0';
    if (sampler_fmt(path, sizeof(path), "%s/self/mountinfo", s->proc_root))
        sampler_parse_mountinfo(path, v1_path, v2_path, v1, v2);

    if (v1->found) {
        sampler_map_dir(s, v1, s->v1_dir, v1_top);
        v1_ok = sampler_is_dir(s->v1_dir);
    }
    if (v2->found) {
        sampler_map_dir(s, v2, s->v2_dir, s->v2_top);
        v2_ok = sampler_is_dir(s->v2_dir);
    }
    if (!v1_ok)
        s->v1_dir[0] = '\0';
    if (!v2_ok)
        s->v2_dir[0] = s->v2_top[0] = '\0';

    if (v1_ok && v2_ok && sampler_exists(s->v2_dir, "memory.pressure"))
        s->mode = SAMPLER_CGROUP_HYBRID;
    else if (v1_ok)
        s->mode = SAMPLER_CGROUP_V1;
    else if (v2_ok)
        s->mode = SAMPLER_CGROUP_V2;
    else
        s->mode = SAMPLER_CGROUP_NONE;
    if (s->mode == SAMPLER_CGROUP_V1)
        s->v2_dir[0] = s->v2_top[0] = '\0';

    s->psi_path[0] = '\0';
    if (s->v2_dir[0] != '\0' && sampler_fmt(path, sizeof(path), "%s/memory.pressure", s->v2_dir) &&
        strlen(path) < sizeof(s->psi_path) && sampler_psi_usable(s, path)) {
        strcpy(s->psi_path, path);
        /* The real root cgroup has no cgroup.type; its pressure is the host's. */
        s->psi_host_wide = !sampler_exists(s->v2_dir, "cgroup.type");
    } else if (sampler_fmt(path, sizeof(path), "%s/pressure/memory", s->proc_root) &&
               strlen(path) < sizeof(s->psi_path) && sampler_psi_usable(s, path)) {
        strcpy(s->psi_path, path);
        s->psi_host_wide = true;
    }
    free(v1);
    free(v2);
}

/* Arms a PSI trigger on s->psi_path: 1 s window, else 2 s, else off with a reason. */
static void sampler_arm_trigger(struct sampler *s)
{
    struct statfs sfs;
    int fd;

    s->trig = SAMPLER_TRIGGER_OFF;
    if (s->psi_path[0] == '\0') {
        sampler_fmt(s->trig_reason, sizeof(s->trig_reason), "no PSI file");
        return;
    }
    fd = open(s->psi_path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        sampler_fmt(s->trig_reason, sizeof(s->trig_reason), "open: %s", strerror(errno));
        return;
    }
    /* Never write a trigger spec into an ordinary file (a fixture tree). */
    if (fstatfs(fd, &sfs) < 0 ||
        (sfs.f_type != SAMPLER_PROC_MAGIC && sfs.f_type != SAMPLER_CGROUP2_MAGIC)) {
        sampler_fmt(s->trig_reason, sizeof(s->trig_reason), "not a kernel PSI file");
        close(fd);
        return;
    }
    /* The kernel overwrites the last byte written with a NUL: send the NUL. */
    if (write(fd, SAMPLER_TRIGGER_1S_SPEC, sizeof(SAMPLER_TRIGGER_1S_SPEC)) >= 0) {
        s->trig = SAMPLER_TRIGGER_1S;
        s->trig_reason[0] = '\0';
    } else if (errno != EINVAL) {
        sampler_fmt(s->trig_reason, sizeof(s->trig_reason), "1s trigger: %s", strerror(errno));
    } else if (write(fd, SAMPLER_TRIGGER_2S_SPEC, sizeof(SAMPLER_TRIGGER_2S_SPEC)) >= 0) {
        s->trig = SAMPLER_TRIGGER_2S;
        sampler_fmt(s->trig_reason, sizeof(s->trig_reason),
                    "1s window refused (EINVAL; needs CAP_SYS_RESOURCE)");
    } else {
        sampler_fmt(s->trig_reason, sizeof(s->trig_reason), "1s: EINVAL, 2s: %s", strerror(errno));
    }
    if (s->trig == SAMPLER_TRIGGER_OFF) {
        close(fd);
        return;
    }
    s->trig_fd = fd;
}

struct sampler *sampler_new(const struct sampler_config *cfg, char *err, size_t err_len)
{
    struct sampler_config def = {0};
    struct sampler *s;
    const char *proc_root, *sys_root;
    unsigned interval;

    if (cfg == NULL)
        cfg = &def;
    proc_root = cfg->proc_root != NULL ? cfg->proc_root : "/proc";
    sys_root = cfg->sys_root != NULL ? cfg->sys_root : "/sys";
    interval = cfg->interval_ms != 0 ? cfg->interval_ms : SAMPLER_DEFAULT_INTERVAL_MS;
    if (interval > SAMPLER_MAX_INTERVAL) {
        snprintf(err, err_len, "sampler interval %u ms is above %u ms", interval,
                 SAMPLER_MAX_INTERVAL);
        return NULL;
    }
    if (strlen(proc_root) >= SAMPLER_PATH_MAX / 2 || strlen(sys_root) >= SAMPLER_PATH_MAX / 2) {
        snprintf(err, err_len, "proc or sys root is too long");
        return NULL;
    }

    s = xcalloc(1, sizeof(*s));
    strcpy(s->proc_root, proc_root);
    strcpy(s->sys_root, sys_root);
    s->interval_ns = (uint64_t)interval * 1000000u;
    s->oom_recent_ns =
        (uint64_t)(cfg->oom_recent_s != 0 ? cfg->oom_recent_s : SAMPLER_DEFAULT_OOM_RECENT_S) *
        1000000000u;
    s->trig_fd = s->epfd = s->stopfd = -1;
    s->buf = xmalloc(SAMPLER_BUF_SIZE);
    tte_init(&s->tte, 0);
    for (size_t i = 0; i < SAMPLER_RING; i++)
        atomic_init(&s->ring[i].seq, 0);
    atomic_init(&s->latest, NULL);

    sampler_detect(s);
    if (cfg->psi_triggers)
        sampler_arm_trigger(s);
    else
        sampler_fmt(s->trig_reason, sizeof(s->trig_reason), "disabled");
    log_debug("sampler_detect", "cgroup=%s v1_dir=%s v2_dir=%s psi=%s host_wide=%d trigger=%s",
              sampler_cgroup_mode_name(s->mode), s->v1_dir[0] ? s->v1_dir : "-",
              s->v2_dir[0] ? s->v2_dir : "-", s->psi_path[0] ? s->psi_path : "none",
              s->psi_host_wide, sampler_trigger_name(s->trig));
    return s;
}

/* ---- one sample ---- */

static void sampler_sample_psi(struct sampler *s, struct sampler_snapshot *snap)
{
    if (s->psi_path[0] != '\0' && sampler_slurp(s, s->psi_path) == 0)
        sampler_psi_parse(s->buf, snap);
}

/*
 * Reads memory.max and memory.high of dir and each ancestor up to the
 * mount point; the smallest of each is what binds.
 */
static void sampler_v2_limits(struct sampler *s, struct sampler_snapshot *snap)
{
    char dir[SAMPLER_PATH_MAX];
    size_t top = strlen(s->v2_top);
    uint64_t v;

    strcpy(dir, s->v2_dir);
    snap->cg_limit = snap->cg_high = snap->cg_swap_max = SAMPLER_UNLIMITED;
    for (int depth = 0; depth < SAMPLER_MAX_ANCESTORS; depth++) {
        char *slash;

        if (sampler_read_u64(s, dir, "memory.max", false, &v) == 0) {
            snap->have |= SAMPLER_HAVE_CG_LIMIT;
            if (v < snap->cg_limit)
                snap->cg_limit = v;
        }
        if (sampler_read_u64(s, dir, "memory.high", false, &v) == 0) {
            snap->have |= SAMPLER_HAVE_CG_HIGH;
            if (v < snap->cg_high)
                snap->cg_high = v;
        }
        if (sampler_read_u64(s, dir, "memory.swap.max", false, &v) == 0) {
            snap->have |= SAMPLER_HAVE_CG_SWAP_MAX;
            if (v < snap->cg_swap_max)
                snap->cg_swap_max = v;
        }
        slash = strrchr(dir, '/');
        if (strlen(dir) <= top || slash == NULL || (size_t)(slash - dir) < top)
            break;
        *slash = '\0';
    }
}

static void sampler_sample_v2(struct sampler *s, struct sampler_snapshot *snap)
{
    const char *dir = s->v2_dir;
    char path[SAMPLER_PATH_MAX + 32];
    enum {
        K_INACTIVE_FILE,
        K_ACTIVE_FILE,
        K_ANON,
        K_FILE,
        K_REFAULT_FILE,
        K_REFAULT_ANON,
        K_REFAULT,
        K_PGSCAN,
        K_PGSCAN_KSWAPD,
        K_PGSCAN_DIRECT,
        K_PGSCAN_KHUGEPAGED,
        K_PGSCAN_PROACTIVE,
        K_COUNT
    };
    struct sampler_kv kv[K_COUNT] = {
        [K_INACTIVE_FILE] = {"inactive_file"},
        [K_ACTIVE_FILE] = {"active_file"},
        [K_ANON] = {"anon"},
        [K_FILE] = {"file"},
        [K_REFAULT_FILE] = {"workingset_refault_file"},
        [K_REFAULT_ANON] = {"workingset_refault_anon"},
        [K_REFAULT] = {"workingset_refault"},
        [K_PGSCAN] = {"pgscan"},
        [K_PGSCAN_KSWAPD] = {"pgscan_kswapd"},
        [K_PGSCAN_DIRECT] = {"pgscan_direct"},
        [K_PGSCAN_KHUGEPAGED] = {"pgscan_khugepaged"},
        [K_PGSCAN_PROACTIVE] = {"pgscan_proactive"},
    };
    struct sampler_kv oom = {"oom_kill"};

    if (sampler_read_u64(s, dir, "memory.current", false, &snap->cg_usage) == 0)
        snap->have |= SAMPLER_HAVE_CG_USAGE;
    sampler_v2_limits(s, snap);
    if (sampler_read_u64(s, dir, "memory.swap.current", false, &snap->cg_swap) == 0)
        snap->have |= SAMPLER_HAVE_CG_SWAP;

    if (sampler_fmt(path, sizeof(path), "%s/memory.stat", dir) && sampler_slurp(s, path) == 0) {
        sampler_kv_parse(s->buf, kv, K_COUNT);
        if (kv[K_INACTIVE_FILE].found && kv[K_ACTIVE_FILE].found && kv[K_ANON].found &&
            kv[K_FILE].found) {
            snap->cg_inactive_file = kv[K_INACTIVE_FILE].val;
            snap->cg_active_file = kv[K_ACTIVE_FILE].val;
            snap->cg_anon = kv[K_ANON].val;
            snap->cg_file = kv[K_FILE].val;
            snap->have |= SAMPLER_HAVE_CG_STAT;
        }
        if (kv[K_REFAULT_FILE].found || kv[K_REFAULT].found) {
            snap->refaults = kv[K_REFAULT_FILE].found
                                 ? kv[K_REFAULT_FILE].val + kv[K_REFAULT_ANON].val
                                 : kv[K_REFAULT].val;
            snap->refault_scope = SAMPLER_SCOPE_CGROUP;
            snap->have |= SAMPLER_HAVE_REFAULTS;
        }
        if (kv[K_REFAULT_ANON].found) {
            snap->swapins = kv[K_REFAULT_ANON].val;
            snap->swapin_scope = SAMPLER_SCOPE_CGROUP;
            snap->have |= SAMPLER_HAVE_SWAPINS;
        }
        if (kv[K_PGSCAN].found || kv[K_PGSCAN_KSWAPD].found || kv[K_PGSCAN_DIRECT].found) {
            snap->pgscan = kv[K_PGSCAN].found
                               ? kv[K_PGSCAN].val
                               : kv[K_PGSCAN_KSWAPD].val + kv[K_PGSCAN_DIRECT].val +
                                     kv[K_PGSCAN_KHUGEPAGED].val + kv[K_PGSCAN_PROACTIVE].val;
            snap->pgscan_scope = SAMPLER_SCOPE_CGROUP;
            snap->have |= SAMPLER_HAVE_PGSCAN;
        }
    }
    if (sampler_fmt(path, sizeof(path), "%s/memory.events", dir) && sampler_slurp(s, path) == 0) {
        sampler_kv_parse(s->buf, &oom, 1);
        if (oom.found) {
            snap->oom_kill = oom.val;
            snap->oom_scope = SAMPLER_SCOPE_CGROUP;
            snap->have |= SAMPLER_HAVE_OOM_KILL;
        }
    }
}

static void sampler_sample_v1(struct sampler *s, struct sampler_snapshot *snap)
{
    const char *dir = s->v1_dir;
    char path[SAMPLER_PATH_MAX + 32];
    enum {
        K_INACTIVE_FILE,
        K_ACTIVE_FILE,
        K_RSS,
        K_CACHE,
        K_REFAULT_FILE,
        K_REFAULT_ANON,
        K_HIER_LIMIT,
        K_COUNT
    };
    struct sampler_kv kv[K_COUNT] = {
        [K_INACTIVE_FILE] = {"total_inactive_file"},
        [K_ACTIVE_FILE] = {"total_active_file"},
        [K_RSS] = {"total_rss"},
        [K_CACHE] = {"total_cache"},
        [K_REFAULT_FILE] = {"total_workingset_refault_file"},
        [K_REFAULT_ANON] = {"total_workingset_refault_anon"},
        [K_HIER_LIMIT] = {"hierarchical_memory_limit"},
    };
    struct sampler_kv oom = {"oom_kill"};
    uint64_t memsw, memsw_limit;

    if (sampler_read_u64(s, dir, "memory.usage_in_bytes", true, &snap->cg_usage) == 0)
        snap->have |= SAMPLER_HAVE_CG_USAGE;
    if (sampler_read_u64(s, dir, "memory.limit_in_bytes", true, &snap->cg_limit) == 0)
        snap->have |= SAMPLER_HAVE_CG_LIMIT;
    if ((snap->have & SAMPLER_HAVE_CG_USAGE) &&
        sampler_read_u64(s, dir, "memory.memsw.usage_in_bytes", true, &memsw) == 0) {
        snap->cg_swap = memsw > snap->cg_usage ? memsw - snap->cg_usage : 0;
        snap->have |= SAMPLER_HAVE_CG_SWAP;
    }
    if ((snap->have & SAMPLER_HAVE_CG_LIMIT) &&
        sampler_read_u64(s, dir, "memory.memsw.limit_in_bytes", true, &memsw_limit) == 0) {
        snap->cg_swap_max = memsw_limit == SAMPLER_UNLIMITED ? SAMPLER_UNLIMITED
                            : memsw_limit > snap->cg_limit   ? memsw_limit - snap->cg_limit
                                                             : 0;
        snap->have |= SAMPLER_HAVE_CG_SWAP_MAX;
    }

    if (sampler_fmt(path, sizeof(path), "%s/memory.stat", dir) && sampler_slurp(s, path) == 0) {
        sampler_kv_parse(s->buf, kv, K_COUNT);
        if (kv[K_INACTIVE_FILE].found && kv[K_ACTIVE_FILE].found && kv[K_RSS].found &&
            kv[K_CACHE].found) {
            snap->cg_inactive_file = kv[K_INACTIVE_FILE].val;
            snap->cg_active_file = kv[K_ACTIVE_FILE].val;
            snap->cg_anon = kv[K_RSS].val;
            snap->cg_file = kv[K_CACHE].val;
            snap->have |= SAMPLER_HAVE_CG_STAT;
        }
        /* Only recent kernels count refaults per v1 cgroup; v1 never counts pgscan. */
        if (kv[K_REFAULT_FILE].found) {
            snap->refaults = kv[K_REFAULT_FILE].val + kv[K_REFAULT_ANON].val;
            snap->refault_scope = SAMPLER_SCOPE_CGROUP;
            snap->have |= SAMPLER_HAVE_REFAULTS;
        }
        if (kv[K_REFAULT_ANON].found) {
            snap->swapins = kv[K_REFAULT_ANON].val;
            snap->swapin_scope = SAMPLER_SCOPE_CGROUP;
            snap->have |= SAMPLER_HAVE_SWAPINS;
        }
        /* A parent's limit binds too. */
        if (kv[K_HIER_LIMIT].found) {
            uint64_t h = kv[K_HIER_LIMIT].val >= SAMPLER_V1_UNLIMITED ? SAMPLER_UNLIMITED
                                                                      : kv[K_HIER_LIMIT].val;

            if (!(snap->have & SAMPLER_HAVE_CG_LIMIT) || h < snap->cg_limit)
                snap->cg_limit = h;
            snap->have |= SAMPLER_HAVE_CG_LIMIT;
        }
    }
    if (sampler_fmt(path, sizeof(path), "%s/memory.oom_control", dir) &&
        sampler_slurp(s, path) == 0) {
        sampler_kv_parse(s->buf, &oom, 1);
        if (oom.found) {
            snap->oom_kill = oom.val;
            snap->oom_scope = SAMPLER_SCOPE_CGROUP;
            snap->have |= SAMPLER_HAVE_OOM_KILL;
        }
    }
}

static uint64_t sampler_kib(uint64_t kib)
{
    return kib > UINT64_MAX / 1024 ? UINT64_MAX : kib * 1024;
}

/* meminfo always; vmstat for swap traffic and for what the cgroup lacked. */
static void sampler_sample_host(struct sampler *s, struct sampler_snapshot *snap)
{
    char path[SAMPLER_PATH_MAX + 32];
    enum { M_TOTAL, M_AVAILABLE, M_SWAP_TOTAL, M_SWAP_FREE, M_COUNT };
    struct sampler_kv mi[M_COUNT] = {
        [M_TOTAL] = {"MemTotal"},
        [M_AVAILABLE] = {"MemAvailable"},
        [M_SWAP_TOTAL] = {"SwapTotal"},
        [M_SWAP_FREE] = {"SwapFree"},
    };
    enum {
        V_PSWPIN,
        V_PSWPOUT,
        V_REFAULT_FILE,
        V_REFAULT_ANON,
        V_REFAULT,
        V_PGSCAN_KSWAPD,
        V_PGSCAN_DIRECT,
        V_PGSCAN_KHUGEPAGED,
        V_PGSCAN_PROACTIVE,
        V_OOM_KILL,
        V_COUNT
    };
    struct sampler_kv vm[V_COUNT] = {
        [V_PSWPIN] = {"pswpin"},
        [V_PSWPOUT] = {"pswpout"},
        [V_REFAULT_FILE] = {"workingset_refault_file"},
        [V_REFAULT_ANON] = {"workingset_refault_anon"},
        [V_REFAULT] = {"workingset_refault"},
        [V_PGSCAN_KSWAPD] = {"pgscan_kswapd"},
        [V_PGSCAN_DIRECT] = {"pgscan_direct"},
        [V_PGSCAN_KHUGEPAGED] = {"pgscan_khugepaged"},
        [V_PGSCAN_PROACTIVE] = {"pgscan_proactive"},
        [V_OOM_KILL] = {"oom_kill"},
    };

    if (sampler_fmt(path, sizeof(path), "%s/meminfo", s->proc_root) &&
        sampler_slurp(s, path) == 0) {
        sampler_kv_parse(s->buf, mi, M_COUNT);
        if (mi[M_TOTAL].found && mi[M_AVAILABLE].found) {
            snap->mem_total = sampler_kib(mi[M_TOTAL].val);
            snap->mem_available = sampler_kib(mi[M_AVAILABLE].val);
            snap->have |= SAMPLER_HAVE_MEMINFO;
        }
        if (mi[M_SWAP_TOTAL].found && mi[M_SWAP_FREE].found) {
            snap->swap_total = sampler_kib(mi[M_SWAP_TOTAL].val);
            snap->swap_free = sampler_kib(mi[M_SWAP_FREE].val);
            snap->have |= SAMPLER_HAVE_HOST_SWAP;
        }
    }
    if (!sampler_fmt(path, sizeof(path), "%s/vmstat", s->proc_root) || sampler_slurp(s, path) != 0)
        return;
    sampler_kv_parse(s->buf, vm, V_COUNT);
    if (vm[V_PSWPIN].found && vm[V_PSWPOUT].found) {
        snap->pswpin = vm[V_PSWPIN].val;
        snap->pswpout = vm[V_PSWPOUT].val;
        snap->have |= SAMPLER_HAVE_PSWP;
        if (!(snap->have & SAMPLER_HAVE_SWAPINS)) {
            snap->swapins = vm[V_PSWPIN].val;
            snap->swapin_scope = SAMPLER_SCOPE_HOST;
            snap->have |= SAMPLER_HAVE_SWAPINS;
        }
    }
    if (!(snap->have & SAMPLER_HAVE_REFAULTS) &&
        (vm[V_REFAULT_FILE].found || vm[V_REFAULT].found)) {
        snap->refaults = vm[V_REFAULT_FILE].found ? vm[V_REFAULT_FILE].val + vm[V_REFAULT_ANON].val
                                                  : vm[V_REFAULT].val;
        snap->refault_scope = SAMPLER_SCOPE_HOST;
        snap->have |= SAMPLER_HAVE_REFAULTS;
    }
    if (!(snap->have & SAMPLER_HAVE_PGSCAN) &&
        (vm[V_PGSCAN_KSWAPD].found || vm[V_PGSCAN_DIRECT].found)) {
        snap->pgscan = vm[V_PGSCAN_KSWAPD].val + vm[V_PGSCAN_DIRECT].val +
                       vm[V_PGSCAN_KHUGEPAGED].val + vm[V_PGSCAN_PROACTIVE].val;
        snap->pgscan_scope = SAMPLER_SCOPE_HOST;
        snap->have |= SAMPLER_HAVE_PGSCAN;
    }
    if (!(snap->have & SAMPLER_HAVE_OOM_KILL) && vm[V_OOM_KILL].found) {
        snap->oom_kill = vm[V_OOM_KILL].val;
        snap->oom_scope = SAMPLER_SCOPE_HOST;
        snap->have |= SAMPLER_HAVE_OOM_KILL;
    }
}

/* The effective limit: the smallest known, limited one. */
static void sampler_limit(struct sampler_snapshot *snap)
{
    snap->limit_bytes = SAMPLER_UNLIMITED;
    snap->limit_source = SAMPLER_LIMIT_NONE;
    if ((snap->have & SAMPLER_HAVE_CG_LIMIT) && snap->cg_limit < snap->limit_bytes) {
        snap->limit_bytes = snap->cg_limit;
        snap->limit_source = SAMPLER_LIMIT_CGROUP_MAX;
    }
    if ((snap->have & SAMPLER_HAVE_CG_HIGH) && snap->cg_high < snap->limit_bytes) {
        snap->limit_bytes = snap->cg_high;
        snap->limit_source = SAMPLER_LIMIT_CGROUP_HIGH;
    }
    if ((snap->have & SAMPLER_HAVE_MEMINFO) && snap->mem_total < snap->limit_bytes) {
        snap->limit_bytes = snap->mem_total;
        snap->limit_source = SAMPLER_LIMIT_MEMTOTAL;
    }
    if (snap->limit_source != SAMPLER_LIMIT_NONE)
        snap->have |= SAMPLER_HAVE_LIMIT;
}

/* Per-second rate of a counter present in both samples; false if not computable. */
static bool sampler_rate(uint64_t cur, uint64_t prev, uint64_t dt_ns, double *ret)
{
    if (cur < prev || dt_ns == 0)
        return false;
    *ret = (double)(cur - prev) * 1e9 / (double)dt_ns;
    return true;
}

/* Stall fraction of dt_ns from two PSI totals (microseconds), clamped to 0..1. */
static bool sampler_stall(uint64_t cur_us, uint64_t prev_us, uint64_t dt_ns, double *ret)
{
    double f;

    if (cur_us < prev_us || dt_ns == 0)
        return false;
    f = (double)(cur_us - prev_us) * 1000.0 / (double)dt_ns;
    *ret = f > 1.0 ? 1.0 : f;
    return true;
}

/* Everything that needs the previous sample. */
static void sampler_derive(struct sampler *s, struct sampler_snapshot *snap)
{
    const struct sampler_snapshot *p = &s->prev;
    uint32_t both = snap->have & p->have;
    uint64_t dt;

    if (p->seq != 0)
        snap->oom_kill_rise_mono_ns = p->oom_kill_rise_mono_ns;
    if (p->seq != 0 && snap->taken_mono_ns > p->taken_mono_ns) {
        dt = snap->dt_ns = snap->taken_mono_ns - p->taken_mono_ns;
        if ((both & SAMPLER_HAVE_PSI_SOME) &&
            sampler_stall(snap->some.total_us, p->some.total_us, dt, &snap->some_stall))
            snap->have |= SAMPLER_HAVE_STALL_SOME;
        if ((both & SAMPLER_HAVE_PSI_FULL) &&
            sampler_stall(snap->full.total_us, p->full.total_us, dt, &snap->full_stall))
            snap->have |= SAMPLER_HAVE_STALL_FULL;
        if ((both & SAMPLER_HAVE_REFAULTS) && snap->refault_scope == p->refault_scope &&
            sampler_rate(snap->refaults, p->refaults, dt, &snap->refaults_per_s))
            snap->have |= SAMPLER_HAVE_REFAULT_RATE;
        if ((both & SAMPLER_HAVE_PGSCAN) && snap->pgscan_scope == p->pgscan_scope &&
            sampler_rate(snap->pgscan, p->pgscan, dt, &snap->pgscan_per_s))
            snap->have |= SAMPLER_HAVE_PGSCAN_RATE;
        if ((both & SAMPLER_HAVE_PSWP) &&
            sampler_rate(snap->pswpin, p->pswpin, dt, &snap->pswpin_per_s) &&
            sampler_rate(snap->pswpout, p->pswpout, dt, &snap->pswpout_per_s))
            snap->have |= SAMPLER_HAVE_PSWP_RATE;
        if ((both & SAMPLER_HAVE_SWAPINS) && snap->swapin_scope == p->swapin_scope &&
            sampler_rate(snap->swapins, p->swapins, dt, &snap->swapins_per_s))
            snap->have |= SAMPLER_HAVE_SWAPIN_RATE;
        if ((both & SAMPLER_HAVE_OOM_KILL) && snap->oom_scope == p->oom_scope &&
            snap->oom_kill > p->oom_kill)
            snap->oom_kill_rise_mono_ns = snap->taken_mono_ns;
    }
    snap->oom_kill_recent = snap->oom_kill_rise_mono_ns != 0 &&
                            snap->taken_mono_ns - snap->oom_kill_rise_mono_ns < s->oom_recent_ns;
}

/* The node's own resident bytes from <proc_root>/self/statm; 0 if unreadable. */
static uint64_t sampler_self_resident(struct sampler *s)
{
    char path[SAMPLER_PATH_MAX + 16];
    const char *p;
    uint64_t size, resident;
    long page = sysconf(_SC_PAGESIZE);

    if (!sampler_fmt(path, sizeof(path), "%s/self/statm", s->proc_root) ||
        sampler_slurp(s, path) != 0 || !sampler_parse_u64(s->buf, &p, &size) || *p != ' ' ||
        !sampler_parse_u64(p + 1, &p, &resident) || page <= 0)
        return 0;
    return resident > UINT64_MAX / (uint64_t)page ? UINT64_MAX : resident * (uint64_t)page;
}

static uint64_t sampler_sub(uint64_t a, uint64_t b)
{
    return a > b ? a - b : 0;
}

static uint64_t sampler_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/*
 * Used bytes and capacity against the effective limit (see
 * sampler_snapshot.exhaust_*), fed to the time-to-exhaustion series. The
 * series restarts when the limit's source changes: bytes of two scopes do
 * not make one line.
 */
static void sampler_exhaust(struct sampler *s, struct sampler_snapshot *snap)
{
    struct tte_estimate e;
    bool host_swap = (snap->have & SAMPLER_HAVE_HOST_SWAP) != 0;

    if (!(snap->have & SAMPLER_HAVE_LIMIT))
        goto none;
    if (snap->limit_source == SAMPLER_LIMIT_MEMTOTAL) {
        snap->exhaust_used = sampler_sub(snap->mem_total, snap->mem_available);
        if (host_swap) {
            snap->exhaust_used =
                sampler_add(snap->exhaust_used, sampler_sub(snap->swap_total, snap->swap_free));
            snap->exhaust_swap_cap = snap->swap_total;
        }
    } else if (snap->have & SAMPLER_HAVE_CG_USAGE) {
        snap->exhaust_used = snap->cg_usage;
        if (snap->have & SAMPLER_HAVE_CG_STAT)
            snap->exhaust_used = sampler_sub(snap->exhaust_used, snap->cg_inactive_file);
        if (snap->have & SAMPLER_HAVE_CG_SWAP)
            snap->exhaust_used = sampler_add(snap->exhaust_used, snap->cg_swap);
        if (host_swap)
            snap->exhaust_swap_cap = snap->swap_total;
        if ((snap->have & SAMPLER_HAVE_CG_SWAP_MAX) && snap->cg_swap_max < snap->exhaust_swap_cap)
            snap->exhaust_swap_cap = snap->cg_swap_max;
    } else {
        goto none;
    }
    snap->exhaust_self = sampler_self_resident(s);
    snap->exhaust_capacity = sampler_add(snap->limit_bytes, snap->exhaust_swap_cap);
    if (s->tte_source != snap->limit_source)
        tte_reset(&s->tte);
    s->tte_source = snap->limit_source;
    tte_add(&s->tte, snap->taken_mono_ns, snap->exhaust_used, snap->exhaust_self,
            snap->exhaust_capacity, &e);
    snap->tte_valid = e.valid;
    snap->growth_bytes_per_s = e.rate_bytes_per_s;
    snap->tte_ms = e.tte_ms;
    snap->fill_ms = e.fill_ms;
    snap->have |= SAMPLER_HAVE_EXHAUST;
    return;
none:
    tte_reset(&s->tte);
    snap->tte_ms = snap->fill_ms = TTE_NEVER_MS;
}

/* Writer side of the seqlock: only the sampling context calls this. */
static void sampler_publish(struct sampler *s, const struct sampler_snapshot *snap)
{
    struct sampler_slot *slot = &s->ring[snap->seq % SAMPLER_RING];
    uint64_t words[SAMPLER_WORDS] = {0};

    memcpy(words, snap, sizeof(*snap));
    atomic_store_explicit(&slot->seq, 0, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    for (size_t i = 0; i < SAMPLER_WORDS; i++)
        atomic_store_explicit(&slot->words[i], words[i], memory_order_relaxed);
    atomic_store_explicit(&slot->seq, snap->seq, memory_order_release);
    atomic_store_explicit(&s->latest, slot, memory_order_release);
}

int sampler_read(struct sampler *s, struct sampler_snapshot *out)
{
    uint64_t words[SAMPLER_WORDS];

    for (;;) {
        struct sampler_slot *slot = atomic_load_explicit(&s->latest, memory_order_acquire);
        uint64_t before, after;

        if (slot == NULL)
            return -ENODATA;
        before = atomic_load_explicit(&slot->seq, memory_order_acquire);
        if (before == 0)
            continue; /* being rewritten: latest has moved on, or will */
        for (size_t i = 0; i < SAMPLER_WORDS; i++)
            words[i] = atomic_load_explicit(&slot->words[i], memory_order_relaxed);
        atomic_thread_fence(memory_order_acquire);
        after = atomic_load_explicit(&slot->seq, memory_order_relaxed);
        if (before == after) {
            memcpy(out, words, sizeof(*out));
            return 0;
        }
    }
}

/* Takes, derives and publishes one sample. */
static void sampler_take(struct sampler *s, uint64_t now_ns, enum sampler_cause cause,
                         struct sampler_snapshot *snap)
{
    memset(snap, 0, sizeof(*snap));
    snap->seq = ++s->seq;
    snap->taken_mono_ns = now_ns;
    snap->cause = cause;
    snap->trigger_fires = s->trigger_fires;
    snap->cgroup_mode = s->mode;
    strcpy(snap->cgroup_dir, s->mode == SAMPLER_CGROUP_V2 ? s->v2_dir : s->v1_dir);
    strcpy(snap->psi_source, s->psi_path[0] != '\0' ? s->psi_path : "none");
    snap->psi_host_wide = s->psi_host_wide;
    snap->trigger = s->trig;
    strcpy(snap->trigger_reason, s->trig_reason);

    sampler_sample_psi(s, snap);
    if (s->mode == SAMPLER_CGROUP_V2)
        sampler_sample_v2(s, snap);
    else if (s->mode == SAMPLER_CGROUP_V1 || s->mode == SAMPLER_CGROUP_HYBRID)
        sampler_sample_v1(s, snap);
    sampler_sample_host(s, snap);
    sampler_limit(snap);
    sampler_derive(s, snap);
    sampler_exhaust(s, snap);
    s->prev = *snap;
    sampler_publish(s, snap);
}

int sampler_sample_once(struct sampler *s, uint64_t now_mono_ns, struct sampler_snapshot *ret)
{
    struct sampler_snapshot *snap;

    if (s->running)
        return -EBUSY;
    snap = xmalloc(sizeof(*snap));
    sampler_take(s, now_mono_ns, SAMPLER_CAUSE_MANUAL, snap);
    if (ret != NULL)
        memcpy(ret, snap, sizeof(*ret));
    free(snap);
    return 0;
}

/* ---- the thread ---- */

/* The trigger fd failed (its cgroup was removed): carry on without it. */
static void sampler_drop_trigger(struct sampler *s)
{
    epoll_ctl(s->epfd, EPOLL_CTL_DEL, s->trig_fd, NULL);
    close(s->trig_fd);
    s->trig_fd = -1;
    s->trig = SAMPLER_TRIGGER_OFF;
    sampler_fmt(s->trig_reason, sizeof(s->trig_reason), "trigger fd failed (cgroup removed?)");
    log_debug("sampler_trigger_dropped", "reason=cgroup_removed");
}

static void *sampler_thread(void *arg)
{
    struct sampler *s = arg;
    struct sampler_snapshot *snap = xmalloc(sizeof(*snap));
    uint64_t next = clock_mono_ns() + s->interval_ns;

    for (;;) {
        struct epoll_event ev[4];
        uint64_t now = clock_mono_ns();
        int timeout = next > now ? (int)((next - now + 999999) / 1000000) : 0;
        enum sampler_cause cause = SAMPLER_CAUSE_TIMER;
        int n = epoll_wait(s->epfd, ev, 4, timeout);

        if (n < 0 && errno != EINTR) {
            log_debug("sampler_epoll_failed", "errno=%d", errno);
            usleep(10000); /* never spin; the timer below still samples */
            n = 0;
        }
        for (int i = 0; i < n; i++) {
            if (ev[i].data.fd == s->stopfd) {
                free(snap);
                return NULL;
            }
            if (ev[i].data.fd == s->trig_fd && s->trig_fd >= 0) {
                if (ev[i].events & (EPOLLERR | EPOLLHUP)) {
                    sampler_drop_trigger(s);
                } else if (ev[i].events & EPOLLPRI) {
                    s->trigger_fires++;
                    cause = SAMPLER_CAUSE_TRIGGER;
                }
            }
        }
        now = clock_mono_ns();
        if (cause == SAMPLER_CAUSE_TRIGGER || now >= next) {
            sampler_take(s, now, cause, snap);
            next = now + s->interval_ns;
        }
    }
}

struct sampler *sampler_start(const struct sampler_config *cfg, char *err, size_t err_len)
{
    struct sampler *s = sampler_new(cfg, err, err_len);
    struct epoll_event ev = {.events = EPOLLIN};
    struct sampler_snapshot *first;
    sigset_t all, old;
    int r;

    if (s == NULL)
        return NULL;
    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    s->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (s->epfd < 0 || s->stopfd < 0) {
        snprintf(err, err_len, "sampler: epoll/eventfd: %s", strerror(errno));
        goto fail;
    }
    ev.data.fd = s->stopfd;
    if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->stopfd, &ev) < 0) {
        snprintf(err, err_len, "sampler: epoll_ctl: %s", strerror(errno));
        goto fail;
    }
    if (s->trig_fd >= 0) {
        struct epoll_event tev = {.events = EPOLLPRI, .data.fd = s->trig_fd};

        if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->trig_fd, &tev) < 0) {
            sampler_fmt(s->trig_reason, sizeof(s->trig_reason), "epoll_ctl: %s", strerror(errno));
            close(s->trig_fd);
            s->trig_fd = -1;
            s->trig = SAMPLER_TRIGGER_OFF;
        }
    }

    first = xmalloc(sizeof(*first));
    sampler_take(s, clock_mono_ns(), SAMPLER_CAUSE_MANUAL, first);
    free(first);

    /* The thread takes no signals: they belong to the loop thread. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    r = pthread_create(&s->thread, NULL, sampler_thread, s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r != 0) {
        snprintf(err, err_len, "sampler: pthread_create: %s", strerror(r));
        goto fail;
    }
    s->running = true;
    return s;

fail:
    sampler_free(s);
    return NULL;
}

void sampler_stop(struct sampler *s)
{
    uint64_t one = 1;

    if (s == NULL || !s->running)
        return;
    while (write(s->stopfd, &one, sizeof(one)) < 0 && errno == EINTR)
        ;
    pthread_join(s->thread, NULL);
    s->running = false;
}

void sampler_free(struct sampler *s)
{
    if (s == NULL)
        return;
    sampler_stop(s);
    if (s->trig_fd >= 0)
        close(s->trig_fd);
    if (s->epfd >= 0)
        close(s->epfd);
    if (s->stopfd >= 0)
        close(s->stopfd);
    free(s->buf);
    free(s);
}
