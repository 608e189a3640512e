/*
 * harness: fork/exec of real daemons for integration tests, with their
 * ports learnt from a ready file and their health from GET /healthz. Each
 * child runs in its own process group, so stopping it never touches any
 * process the test did not start.
 */
#include "harness.h"
#include "pg.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "xmalloc.h"

#define HARNESS_MAX_ARGS 64

struct harness_proc {
    char *dir;  /* where the ready file and the log live */
    char *log;  /* log file path */
    char *ready;
    char *argv[HARNESS_MAX_ARGS];
    int argc;
    pid_t pid;
    char addr[64];
    char *cgroup; /* joined by the child before exec */
};

/*
 * What this process started, so that an exit in the middle of a test (a
 * failed assertion ends a Check test process at once, without its teardown)
 * still stops every daemon and removes every directory and cgroup.
 */
#define HARNESS_TRACK_MAX 256
static struct harness_proc *harness_live[HARNESS_TRACK_MAX];
static char *harness_dirs[HARNESS_TRACK_MAX];
static char *harness_cgroups[HARNESS_TRACK_MAX];
static bool harness_atexit_set;

static void harness_atexit(void);

/* Tests write to sockets a daemon may close first (413, caps): never die of SIGPIPE. */
__attribute__((constructor)) static void harness_ignore_sigpipe(void)
{
    signal(SIGPIPE, SIG_IGN);
}

static void harness_track(void **table, void *item)
{
    if (!harness_atexit_set) {
        harness_atexit_set = true;
        atexit(harness_atexit);
    }
    for (size_t i = 0; i < HARNESS_TRACK_MAX; i++) {
        if (table[i] == NULL) {
            table[i] = item;
            return;
        }
    }
}

static void harness_untrack(void **table, const void *item)
{
    for (size_t i = 0; i < HARNESS_TRACK_MAX; i++)
        if (table[i] == item)
            table[i] = NULL;
}

static void harness_sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static unsigned long long harness_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000ull + (unsigned long long)ts.tv_nsec / 1000000ull;
}

char *harness_dir_new(const char *prefix)
{
    const char *tmp = getenv("TMPDIR");
    char *path = xasprintf("%s/%s-XXXXXX", tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp",
                           prefix != NULL ? prefix : "sluice-test");

    if (mkdtemp(path) == NULL) {
        fprintf(stderr, "harness: mkdtemp %s: %s\n", path, strerror(errno));
        abort();
    }
    harness_track((void **)harness_dirs, path);
    return path;
}

static int harness_rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    if (remove(path) < 0 && errno != ENOENT)
        fprintf(stderr, "harness: remove %s: %s\n", path, strerror(errno));
    return 0;
}

void harness_dir_remove(const char *path)
{
    if (path == NULL)
        return;
    harness_untrack((void **)harness_dirs, path);
    nftw(path, harness_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

void harness_workdir_new(const char *prefix, char **ret_dir, char **ret_storage, char **ret_data)
{
    *ret_dir = harness_dir_new(prefix);
    *ret_storage = xasprintf("%s/storage", *ret_dir);
    if (mkdir(*ret_storage, 0755) < 0)
        abort();
    if (ret_data != NULL)
        *ret_data = xasprintf("%s/data", *ret_dir);
}

/* Frees *s and leaves it NULL (s may be NULL). */
static void harness_free_str(char **s)
{
    if (s == NULL)
        return;
    free(*s);
    *s = NULL;
}

int harness_workdir_done(struct harness_proc **node, char **cgroup, char **dir, char **storage,
                         char **data)
{
    int rc = 0;

    if (node != NULL && *node != NULL) {
        rc = harness_proc_stop(*node);
        if (rc != 0)
            harness_proc_dump_log(*node);
        harness_proc_free(*node);
        *node = NULL;
    }
    if (cgroup != NULL)
        harness_cgroup_remove(*cgroup);
    harness_free_str(cgroup);
    if (dir != NULL)
        harness_dir_remove(*dir);
    harness_free_str(dir);
    harness_free_str(storage);
    harness_free_str(data);
    return rc;
}

const char *harness_bin(const char *name)
{
    static char buf[4096];
    const char *dir = getenv("SLUICE_BUILD_DIR");

    if (dir == NULL || dir[0] == '\0')
        dir = HARNESS_BUILD_DIR;
    if (strcmp(name, "sluice-node") == 0)
        snprintf(buf, sizeof(buf), "%s/node/sluice-node", dir);
    else
        snprintf(buf, sizeof(buf), "%s/coordinator/%s", dir, name);
    return buf;
}

static bool harness_read_ready(struct harness_proc *p)
{
    FILE *f = fopen(p->ready, "re");
    bool ok = false;

    if (f == NULL)
        return false;
    if (fgets(p->addr, sizeof(p->addr), f) != NULL) {
        p->addr[strcspn(p->addr, "\r\n")] = '\0';
        ok = p->addr[0] != '\0';
    }
    fclose(f);
    return ok;
}

bool harness_proc_alive(struct harness_proc *p)
{
    int status;

    if (p->pid <= 0)
        return false;
    if (waitpid(p->pid, &status, WNOHANG) == p->pid) {
        p->pid = -1;
        return false;
    }
    return true;
}

/*
 * In a memory cgroup as small as 64 MiB, ASan's quarantine of freed memory
 * (tests/run.sh sets 16 MiB; the default is 256 MiB) reads as the daemon's
 * own usage and can end in an OOM kill no real build would see. A daemon
 * started in a cgroup keeps a 4 MiB one, which still catches a use of a
 * recent free. Without ASan the variable is ignored. Runs in the child.
 */
static void harness_small_asan_quarantine(void)
{
    const char *old = getenv("ASAN_OPTIONS");
    char *opts = xasprintf("%s%squarantine_size_mb=4", old != NULL ? old : "",
                           old != NULL && old[0] != '\0' ? ":" : "");

    setenv("ASAN_OPTIONS", opts, 1); /* a later option wins over an earlier one */
    free(opts);
}

static int harness_spawn(struct harness_proc *p)
{
    unsigned long long deadline;
    pid_t pid;
    int fd;

    unlink(p->ready);
    p->addr[0] = '\0';
    fflush(NULL);
    pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        setpgid(0, 0);
        /* If the test process dies, so does its daemon. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() == 1)
            _exit(125);
        if (p->cgroup != NULL) {
            char *procs = xasprintf("%s/cgroup.procs", p->cgroup);
            FILE *f = fopen(procs, "w");
            if (f == NULL || fprintf(f, "%d\n", (int)getpid()) < 0 || fclose(f) != 0) {
                fprintf(stderr, "harness: cannot join %s: %s\n", p->cgroup, strerror(errno));
                _exit(126);
            }
            harness_small_asan_quarantine();
        }
        fd = open(p->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
        }
        execv(p->argv[0], p->argv);
        fprintf(stderr, "harness: exec %s: %s\n", p->argv[0], strerror(errno));
        _exit(127);
    }
    setpgid(pid, pid);
    p->pid = pid;
    deadline = harness_now_ms() + 15000;
    while (harness_now_ms() < deadline) {
        if (!harness_proc_alive(p))
            break;
        if (p->addr[0] != '\0' || harness_read_ready(p)) {
            struct http_response r;
            if (http_fetch(p->addr, "GET", "/healthz", NULL, NULL, 0, NULL, 1000, &r) == 0) {
                bool ok = r.status == 200;
                http_response_done(&r);
                if (ok)
                    return 0;
            }
        }
        harness_sleep_ms(20);
    }
    fprintf(stderr, "harness: %s did not become healthy\n", p->argv[0]);
    harness_proc_dump_log(p);
    harness_proc_kill(p);
    return -1;
}

struct harness_proc *harness_node_start(const char *storage_root, const char *data_dir,
                                        const char *const *extra_args)
{
    return harness_node_start_cg(storage_root, data_dir, NULL, extra_args);
}

/*
 * A process to start: bin with "<cmd> --listen=127.0.0.1:0", the given
 * first arguments (allocated; p takes them) and --ready-file=dir/ready,
 * then extra_args. Its output goes to dir/<name>.log.
 */
static struct harness_proc *harness_proc_new(const char *dir, const char *name, const char *ready,
                                             const char *bin, const char *cmd,
                                             char *const *first,
                                             const char *const *extra_args)
{
    struct harness_proc *p = xcalloc(1, sizeof(*p));

    harness_track((void **)harness_live, p);
    p->dir = xstrdup(dir);
    mkdir(p->dir, 0755);
    p->log = xasprintf("%s/%s.log", p->dir, name);
    p->ready = xasprintf("%s/%s", p->dir, ready);
    p->argv[p->argc++] = xstrdup(harness_bin(bin));
    p->argv[p->argc++] = xstrdup(cmd);
    p->argv[p->argc++] = xstrdup("--listen=127.0.0.1:0");
    for (size_t i = 0; first[i] != NULL; i++)
        p->argv[p->argc++] = first[i]; /* already allocated */
    p->argv[p->argc++] = xasprintf("--ready-file=%s", p->ready);
    for (size_t i = 0; extra_args != NULL && extra_args[i] != NULL; i++) {
        if (p->argc >= HARNESS_MAX_ARGS - 1)
            abort();
        p->argv[p->argc++] = xstrdup(extra_args[i]);
    }
    p->argv[p->argc] = NULL;
    p->pid = -1;
    return p;
}

/* Starts p; frees it and returns NULL when it does not become healthy. */
static struct harness_proc *harness_proc_start(struct harness_proc *p)
{
    if (harness_spawn(p) < 0) {
        harness_proc_free(p);
        return NULL;
    }
    return p;
}

struct harness_proc *harness_node_start_cg(const char *storage_root, const char *data_dir,
                                           const char *cgroup_dir,
                                           const char *const *extra_args)
{
    char *first[] = {xasprintf("--storage-root=%s", storage_root),
                     xasprintf("--data-dir=%s", data_dir), NULL};
    struct harness_proc *p = harness_proc_new(data_dir, "node", "ready", "sluice-node", "serve", first,
                                              extra_args);

    p->cgroup = cgroup_dir != NULL ? xstrdup(cgroup_dir) : NULL;
    return harness_proc_start(p);
}

struct harness_proc *harness_node_start_calm(const char *storage_root, const char *data_dir,
                                             const char *const *extra_args)
{
    char *proc = xasprintf("%s.quiet-proc", data_dir), *sys = xasprintf("%s.quiet-sys", data_dir);
    char *proc_arg = xasprintf("--proc-root=%s", proc), *sys_arg = xasprintf("--sys-root=%s", sys);
    const char *args[HARNESS_MAX_ARGS];
    struct harness_proc *p;
    size_t n = 0;

    mkdir(proc, 0755);
    mkdir(sys, 0755);
    args[n++] = proc_arg;
    args[n++] = sys_arg;
    args[n++] = "--admit-budget=64G";
    args[n++] = "--latency-slo=0";
    for (size_t i = 0; extra_args != NULL && extra_args[i] != NULL; i++) {
        if (n >= HARNESS_MAX_ARGS - 1)
            abort();
        args[n++] = extra_args[i];
    }
    args[n] = NULL;
    p = harness_node_start_cg(storage_root, data_dir, NULL, args);
    free(proc);
    free(sys);
    free(proc_arg);
    free(sys_arg);
    return p;
}

char *harness_coord_catalog(const char *dir)
{
    char why[512] = "", *uri;

    if (!harness_pg_mode())
        return xasprintf("%s/coord.db", dir);
    uri = harness_pg_dir_db(dir, why, sizeof(why));
    if (uri == NULL) {
        fprintf(stderr, "harness: SLUICE_TEST_CATALOG=postgresql: %s\n", why);
        abort();
    }
    return uri;
}

struct harness_proc *harness_coord_start(const char *dir, const char *const *extra_args)
{
    char *cat = harness_coord_catalog(dir);
    char *first[] = {harness_pg_mode() ? xasprintf("--catalog=%s", cat)
                                       : xasprintf("--db=%s/coord.db", dir),
                     NULL};

    free(cat);

    return harness_proc_start(
        harness_proc_new(dir, "coord", "coord.ready", "sluice-coord", "serve", first, extra_args));
}

struct harness_proc *harness_coord_start_on(const char *dir, const char *catalog,
                                            const char *const *extra_args)
{
    char *first[] = {xasprintf("--catalog=%s", catalog), NULL};

    return harness_proc_start(
        harness_proc_new(dir, "coord", "coord.ready", "sluice-coord", "serve", first, extra_args));
}

struct harness_proc *harness_farm_start(const char *dir, const char *coordinator, unsigned nodes,
                                        const char *const *extra_args)
{
    char *first[] = {xasprintf("--coordinator=%s", coordinator), xasprintf("--nodes=%u", nodes),
                     NULL};

    return harness_proc_start(
        harness_proc_new(dir, "farm", "farm.ready", "sluice-node", "farm", first, extra_args));
}

struct harness_proc *harness_broker_start(const char *dir, const char *coord_addr,
                                          const char *const *extra_args)
{
    char *first[] = {xasprintf("--coordinator=%s", coord_addr), NULL};

    return harness_proc_start(harness_proc_new(dir, "broker", "broker.ready", "sluice-coord",
                                               "broker", first, extra_args));
}

/* Finds this process's memory cgroup directory: v1 memory controller, else v2. */
static char *harness_own_cgroup(bool *ret_v2)
{
    char line[1024], *v1 = NULL, *v2 = NULL, *out = NULL;
    FILE *f = fopen("/proc/self/cgroup", "re");

    if (f == NULL)
        return NULL;
    while (fgets(line, sizeof(line), f) != NULL) {
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        line[strcspn(line, "\n")] = '\0';
        if (c2 == NULL)
            continue;
        *c2 = '\0';
        if (strcmp(c1 + 1, "memory") == 0 || strstr(c1 + 1, ",memory") != NULL ||
            strncmp(c1 + 1, "memory,", 7) == 0)
            v1 = xstrdup(c2 + 1);
        else if (c1[1] == '\0' && strncmp(line, "0", 1) == 0)
            v2 = xstrdup(c2 + 1);
    }
    fclose(f);
    if (v1 != NULL && access("/sys/fs/cgroup/memory", F_OK) == 0) {
        out = xasprintf("/sys/fs/cgroup/memory%s", strcmp(v1, "/") == 0 ? "" : v1);
        *ret_v2 = false;
    } else if (v2 != NULL && access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0) {
        out = xasprintf("/sys/fs/cgroup%s", strcmp(v2, "/") == 0 ? "" : v2);
        *ret_v2 = true;
    }
    free(v1);
    free(v2);
    return out;
}

static int harness_write(const char *path, const char *value)
{
    FILE *f = fopen(path, "w");
    int r = 0;

    if (f == NULL)
        return -errno;
    if (fputs(value, f) < 0)
        r = -errno;
    if (fclose(f) != 0 && r == 0)
        r = -errno;
    return r;
}

/*
 * Removes the cgroups "<name>-<pid>" that earlier tests left under own (a
 * failed assertion ends a test process with _exit, before any cleanup) once
 * that pid is gone and the group is empty; anything else is left alone.
 */
static void harness_cgroup_sweep(const char *own, const char *name)
{
    size_t len = strlen(name);
    DIR *d = opendir(own);
    struct dirent *de;

    if (d == NULL)
        return;
    while ((de = readdir(d)) != NULL) {
        char *end, *path;
        long pid;

        if (strncmp(de->d_name, name, len) != 0 || de->d_name[len] != '-')
            continue;
        pid = strtol(de->d_name + len + 1, &end, 10);
        if (*end != '\0' || pid <= 0 || pid == (long)getpid() ||
            kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        path = xasprintf("%s/%s", own, de->d_name);
        rmdir(path); /* fails, harmlessly, while a process is still inside */
        free(path);
    }
    closedir(d);
}

/* Makes own/name-<pid> (after sweeping dead ones) and tracks it; frees own. NULL with why. */
static char *harness_cgroup_mkdir(char *own, const char *name, char *why, size_t why_len)
{
    char *dir;

    harness_cgroup_sweep(own, name);
    dir = xasprintf("%s/%s-%d", own, name, (int)getpid());
    free(own);
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
        snprintf(why, why_len, "cannot create %s: %s", dir, strerror(errno));
        free(dir);
        return NULL;
    }
    harness_track((void **)harness_cgroups, xstrdup(dir));
    return dir;
}

char *harness_cgroup_new(const char *name, unsigned long long limit_bytes, char *why,
                         size_t why_len)
{
    bool v2 = false;
    char *own = harness_own_cgroup(&v2), *dir = NULL, *file = NULL, value[32];
    int r;

    if (own == NULL) {
        snprintf(why, why_len, "no memory cgroup found for this process");
        return NULL;
    }
    if ((dir = harness_cgroup_mkdir(own, name, why, why_len)) == NULL)
        return NULL;
    snprintf(value, sizeof(value), "%llu", limit_bytes);
    file = xasprintf("%s/%s", dir, v2 ? "memory.max" : "memory.limit_in_bytes");
    r = harness_write(file, value);
    free(file);
    if (r < 0) {
        snprintf(why, why_len, "cannot set the limit of %s: %s", dir, strerror(-r));
        rmdir(dir);
        free(dir);
        return NULL;
    }
    return dir;
}

/* This process's group in the cpu controller: v1 first, else v2 with cpu enabled; NULL if none. */
static char *harness_own_cpu_cgroup(bool *ret_v2)
{
    static const char *const mounts[] = {"cpu", "cpu,cpuacct", "cpuacct,cpu"};
    char line[1024], *v1 = NULL, *v2 = NULL, *out = NULL, *save = NULL;
    FILE *f = fopen("/proc/self/cgroup", "re");

    if (f == NULL)
        return NULL;
    while (fgets(line, sizeof(line), f) != NULL) {
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL, *tok;

        line[strcspn(line, "\n")] = '\0';
        if (c2 == NULL)
            continue;
        *c2 = '\0';
        if (c1[1] == '\0' && strncmp(line, "0", 1) == 0) {
            free(v2);
            v2 = xstrdup(strcmp(c2 + 1, "/") == 0 ? "" : c2 + 1);
            continue;
        }
        for (tok = strtok_r(c1 + 1, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save))
            if (strcmp(tok, "cpu") == 0) {
                free(v1);
                v1 = xstrdup(strcmp(c2 + 1, "/") == 0 ? "" : c2 + 1);
            }
    }
    fclose(f);
    for (size_t m = 0; v1 != NULL && out == NULL && m < sizeof(mounts) / sizeof(mounts[0]); m++) {
        char *p = xasprintf("/sys/fs/cgroup/%s%s", mounts[m], v1),
             *q = xasprintf("%s/cpu.cfs_quota_us", p);

        if (access(q, W_OK) == 0) {
            out = p;
            *ret_v2 = false;
        } else {
            free(p);
        }
        free(q);
    }
    if (out == NULL && v2 != NULL) {
        char *ctl = xasprintf("/sys/fs/cgroup%s/cgroup.subtree_control", v2), have[512] = "";
        FILE *cf = fopen(ctl, "re");

        if (cf != NULL) {
            if (fgets(have, sizeof(have), cf) == NULL)
                have[0] = '\0';
            fclose(cf);
        }
        for (char *tok = strtok_r(have, " \n", &save); tok != NULL && out == NULL;
             tok = strtok_r(NULL, " \n", &save))
            if (strcmp(tok, "cpu") == 0) {
                out = xasprintf("/sys/fs/cgroup%s", v2);
                *ret_v2 = true;
            }
        free(ctl);
    }
    free(v1);
    free(v2);
    return out;
}

char *harness_cpu_cgroup_new(const char *name, bool *ret_v2, char *why, size_t why_len)
{
    bool v2 = false;
    char *own = harness_own_cpu_cgroup(&v2), *dir;

    if (own == NULL) {
        snprintf(why, why_len, "no writable cpu controller for this process (/proc/self/cgroup)");
        return NULL;
    }
    if ((dir = harness_cgroup_mkdir(own, name, why, why_len)) == NULL)
        return NULL;
    *ret_v2 = v2;
    return dir;
}

int harness_cpu_cgroup_limit(const char *path, bool v2, unsigned percent, unsigned period_us)
{
    char *file, value[64];
    int r;

    if (v2) {
        file = xasprintf("%s/cpu.max", path);
        if (percent > 0)
            snprintf(value, sizeof(value), "%llu %u",
                     (unsigned long long)period_us * percent / 100, period_us);
        else
            snprintf(value, sizeof(value), "max %u", period_us);
        r = harness_write(file, value);
        free(file);
        return r;
    }
    file = xasprintf("%s/cpu.cfs_period_us", path);
    snprintf(value, sizeof(value), "%u", period_us);
    r = harness_write(file, value);
    free(file);
    if (r < 0)
        return r;
    file = xasprintf("%s/cpu.cfs_quota_us", path);
    if (percent > 0)
        snprintf(value, sizeof(value), "%llu", (unsigned long long)period_us * percent / 100);
    else
        snprintf(value, sizeof(value), "-1");
    r = harness_write(file, value);
    free(file);
    return r;
}

int harness_cgroup_move(const char *path, int pid)
{
    char *file = xasprintf("%s/cgroup.procs", path), value[32];
    int r;

    snprintf(value, sizeof(value), "%d", pid);
    r = harness_write(file, value);
    free(file);
    return r;
}

unsigned long long harness_cgroup_oom_kills(const char *path)
{
    char *file = xasprintf("%s/memory.oom_control", path), line[256];
    unsigned long long n = 0;
    FILE *f = fopen(file, "re");

    if (f == NULL) {
        free(file);
        file = xasprintf("%s/memory.events", path);
        f = fopen(file, "re");
    }
    free(file);
    if (f == NULL)
        return 0;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "oom_kill %llu", &n) == 1)
            break;
    fclose(f);
    return n;
}

void harness_cgroup_remove(const char *path)
{
    if (path == NULL)
        return;
    for (size_t i = 0; i < HARNESS_TRACK_MAX; i++) {
        if (harness_cgroups[i] != NULL && strcmp(harness_cgroups[i], path) == 0) {
            free(harness_cgroups[i]);
            harness_cgroups[i] = NULL;
        }
    }
    /* The last process may take a moment to leave after it was reaped. */
    for (int i = 0; i < 100 && rmdir(path) < 0 && errno == EBUSY; i++)
        harness_sleep_ms(20);
}

/* The co-tenant's body: never returns. Only system calls and memset after fork. */
static void harness_cotenant_run(const char *procs, size_t prefill, double rate, size_t cap,
                                 bool retouch)
{
    const size_t mib = 1u << 20, max_chunks = cap / mib + 1;
    char **chunk = mmap(NULL, max_chunks * sizeof(*chunk), PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    struct timespec t0, now;
    size_t held = 0;
    char pid[32];
    int fd = open(procs, O_WRONLY | O_CLOEXEC), n;

    n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
    if (fd < 0 || chunk == MAP_FAILED || write(fd, pid, (size_t)n) != n)
        _exit(3);
    close(fd);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        double dt, want;
        size_t target;

        clock_gettime(CLOCK_MONOTONIC, &now);
        dt = (double)(now.tv_sec - t0.tv_sec) + (double)(now.tv_nsec - t0.tv_nsec) / 1e9;
        want = (double)prefill + rate * dt;
        target = want > (double)cap ? cap : (size_t)want;
        while ((held + 1) * mib <= target && held < max_chunks) {
            chunk[held] = mmap(NULL, mib, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                               -1, 0);
            if (chunk[held] == MAP_FAILED)
                _exit(4);
            memset(chunk[held], 0xa5, mib);
            held++;
        }
        if (retouch)
            for (size_t i = 0; i < held; i++)
                for (size_t off = 0; off < mib; off += 4096)
                    chunk[i][off]++;
        usleep(retouch ? 100000 : 20000);
    }
}

int harness_cotenant_start(const char *path, size_t prefill, double rate, size_t cap,
                           bool retouch)
{
    char *procs = xasprintf("%s/cgroup.procs", path);
    pid_t pid = fork();

    if (pid == 0)
        harness_cotenant_run(procs, prefill, rate, cap, retouch);
    free(procs);
    return pid < 0 ? -errno : (int)pid;
}

void harness_cotenant_stop(int pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

const char *harness_proc_addr(const struct harness_proc *p)
{
    return p->addr;
}

int harness_proc_pid(const struct harness_proc *p)
{
    return p->pid;
}

int harness_proc_signal(struct harness_proc *p, int sig)
{
    if (p->pid <= 0)
        return -ESRCH;
    return kill(p->pid, sig) < 0 ? -errno : 0;
}

void harness_proc_kill(struct harness_proc *p)
{
    if (p->pid <= 0)
        return;
    kill(p->pid, SIGKILL);
    while (waitpid(p->pid, NULL, 0) < 0 && errno == EINTR)
        ;
    p->pid = -1;
}

int harness_proc_stop(struct harness_proc *p)
{
    unsigned long long deadline;
    int status;

    if (p->pid <= 0)
        return -1;
    kill(p->pid, SIGTERM);
    deadline = harness_now_ms() + 5000;
    while (harness_now_ms() < deadline) {
        pid_t r = waitpid(p->pid, &status, WNOHANG);
        if (r == p->pid) {
            p->pid = -1;
            return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        }
        harness_sleep_ms(10);
    }
    fprintf(stderr, "harness: pid %d ignored SIGTERM for 5 s; killing\n", (int)p->pid);
    harness_proc_kill(p);
    return -1;
}

int harness_proc_restart(struct harness_proc *p)
{
    if (p->pid > 0)
        harness_proc_stop(p);
    return harness_spawn(p);
}

void harness_proc_dump_log(const struct harness_proc *p)
{
    char line[1024];
    long lines = 0, skip;
    FILE *f = fopen(p->log, "re");

    if (f == NULL)
        return;
    while (fgets(line, sizeof(line), f) != NULL)
        lines++;
    rewind(f);
    skip = lines > 40 ? lines - 40 : 0;
    fprintf(stderr, "---- last lines of %s ----\n", p->log);
    while (fgets(line, sizeof(line), f) != NULL)
        if (skip-- <= 0)
            fputs(line, stderr);
    fprintf(stderr, "----\n");
    fclose(f);
}

void harness_proc_free(struct harness_proc *p)
{
    if (p == NULL)
        return;
    harness_untrack((void **)harness_live, p);
    if (p->pid > 0)
        harness_proc_stop(p);
    for (int i = 0; i < p->argc; i++)
        free(p->argv[i]);
    free(p->dir);
    free(p->log);
    free(p->ready);
    free(p->cgroup);
    free(p);
}

int harness_ctl(const struct harness_proc *coord, char **ret_output, const char *cmd, ...)
{
    char *co = xasprintf("--coordinator=%s", harness_proc_addr(coord));
    const char *argv[32] = {harness_bin("sluice-coord"), cmd, co};
    size_t n = 3;
    const char *a;
    va_list ap;
    int rc;

    va_start(ap, cmd);
    while ((a = va_arg(ap, const char *)) != NULL && n < sizeof(argv) / sizeof(argv[0]) - 1)
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    rc = harness_run(argv, ret_output);
    free(co);
    return rc;
}

int harness_run(const char *const *argv, char **ret_output)
{
    int fds[2], status;
    char *out = NULL;
    size_t len = 0, cap = 0;
    pid_t pid;

    if (pipe2(fds, O_CLOEXEC) < 0)
        return -1;
    fflush(NULL);
    pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        dup2(fds[1], STDERR_FILENO);
        execv(argv[0], (char *const *)(uintptr_t)argv);
        _exit(127);
    }
    close(fds[1]);
    for (;;) {
        ssize_t n;
        if (cap - len < 4096) {
            cap = cap * 2 + 8192;
            out = xreallocarray(out, cap, 1);
        }
        n = read(fds[0], out + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(fds[0]);
    out[len] = '\0';
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (ret_output != NULL)
        *ret_output = out;
    else
        free(out);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

bool harness_wait_until(bool (*fn)(void *), void *arg, unsigned timeout_ms)
{
    unsigned long long deadline = harness_now_ms() + timeout_ms;

    for (;;) {
        if (fn(arg))
            return true;
        if (harness_now_ms() >= deadline)
            return false;
        harness_sleep_ms(20);
    }
}

/* Stops what a test left running, then removes its cgroups and directories. */
static void harness_atexit(void)
{
    for (size_t i = 0; i < HARNESS_TRACK_MAX; i++) {
        if (harness_live[i] != NULL && harness_live[i]->pid > 0) {
            kill(harness_live[i]->pid, SIGKILL);
            waitpid(harness_live[i]->pid, NULL, 0);
            harness_live[i]->pid = -1;
        }
    }
    for (size_t i = 0; i < HARNESS_TRACK_MAX; i++) {
        if (harness_cgroups[i] != NULL) {
            char *path = harness_cgroups[i];
            harness_cgroups[i] = NULL;
            harness_cgroup_remove(path);
            free(path);
        }
    }
    for (size_t i = 0; i < HARNESS_TRACK_MAX; i++)
        if (harness_dirs[i] != NULL)
            nftw(harness_dirs[i], harness_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

bool harness_node_status(const char *addr, const char *token, unsigned timeout_ms,
                         struct wire_node_status *ret)
{
    struct http_response r;
    struct wire_error err;
    bool ok;

    if (addr == NULL || addr[0] == '\0' ||
        http_fetch(addr, "GET", "/v1/status", NULL, NULL, 0, token, timeout_ms, &r) < 0)
        return false;
    ok = r.status == 200 && wire_node_status_decode(r.body, r.body_len, ret, &err) == 0;
    http_response_done(&r);
    return ok;
}
