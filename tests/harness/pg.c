/*
 * harness pg: a private PostgreSQL server for tests (see pg.h). Start-up
 * costs about a second (initdb without fsync of its own files, then the
 * server); each database a test asks for is a CREATE DATABASE on it.
 */
#include "pg.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "xmalloc.h"

#define HARNESS_PG_BIN_DEFAULT "/usr/lib/postgresql/15/bin"

struct harness_pg {
    char *dir;  /* owned by postgres (as root) */
    char *data; /* dir/data */
    char *bin;
    int port;
    unsigned dbs; /* databases created */
    pid_t owner;  /* the process that started it */
};

/* The one server a process may leave behind, for the atexit handler. */
static struct harness_pg *harness_pg_live;
/* The server of SLUICE_TEST_CATALOG=postgresql (harness_pg_shared). */
static struct harness_pg *harness_pg_shared_server;

static void harness_pg_set_why(char *why, size_t why_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void harness_pg_set_why(char *why, size_t why_len, const char *fmt, ...)
{
    va_list ap;

    if (why == NULL || why_len == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(why, why_len, fmt, ap);
    va_end(ap);
}

/* Runs bin/prog with args as the postgres user (when root), output to log. Exit status or -1. */
static int harness_pg_run(const struct harness_pg *pg, const char *prog, const char *const *args,
                          const char *log)
{
    const char *argv[32];
    char *path = xasprintf("%s/%s", pg->bin, prog);
    size_t n = 0;
    int status = -1;
    pid_t pid;

    if (geteuid() == 0) {
        argv[n++] = "/usr/sbin/runuser";
        argv[n++] = "-u";
        argv[n++] = "postgres";
        argv[n++] = "--";
    }
    argv[n++] = path;
    for (size_t i = 0; args[i] != NULL && n < 31; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
        }
        /* The server must not stay in this process's group: Check kills tests by group. */
        setsid();
        execv(argv[0], (char *const *)(uintptr_t)argv);
        _exit(127);
    }
    if (pid > 0)
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
    free(path);
    return pid > 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The last lines of a log file, for a failure message. */
static void harness_pg_tail(const char *log, char *buf, size_t size)
{
    FILE *f = fopen(log, "re");
    long off;
    size_t n;

    buf[0] = '\0';
    if (f == NULL)
        return;
    fseek(f, 0, SEEK_END);
    off = ftell(f);
    fseek(f, off > (long)size - 1 ? off - (long)size + 1 : 0, SEEK_SET);
    n = fread(buf, 1, size - 1, f);
    buf[n] = '\0';
    fclose(f);
}

static int harness_pg_free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;

    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static int harness_pg_rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    remove(path);
    return 0;
}

static int harness_pg_ctl(struct harness_pg *pg, const char *action)
{
    /* The server writes server.log as postgres; pg_ctl's own output goes to ctl.log. */
    char *log = xasprintf("%s/server.log", pg->dir), *ctl = xasprintf("%s/ctl.log", pg->dir);
    char *opts;
    int r;

    opts = xasprintf("-c listen_addresses=127.0.0.1 -p %d -k %s -c fsync=on -c max_connections=60"
                     " -c shared_buffers=16MB",
                     pg->port, pg->dir);
    if (strcmp(action, "start") == 0) {
        const char *args[] = {"-D", pg->data, "-l", log, "-o", opts, "-w", "-t", "30", "start",
                              NULL};
        r = harness_pg_run(pg, "pg_ctl", args, ctl);
    } else {
        const char *args[] = {"-D", pg->data, "-m", "immediate", "-w", "-t", "30", "stop", NULL};
        r = harness_pg_run(pg, "pg_ctl", args, ctl);
    }
    free(ctl);
    free(opts);
    free(log);
    return r;
}

static void harness_pg_atexit(void)
{
    if (harness_pg_live != NULL && harness_pg_live->owner == getpid())
        harness_pg_stop(harness_pg_live);
}

struct harness_pg *harness_pg_start(char *why, size_t why_len)
{
    static bool atexit_set;
    const char *tmp = getenv("TMPDIR"), *bin = getenv("SLUICE_PG_BIN");
    struct harness_pg *pg = xcalloc(1, sizeof(*pg));
    char tail[600], *initdb = NULL, *log = NULL;
    struct passwd *pw = NULL;

    pg->owner = getpid();
    pg->bin = xstrdup(bin != NULL && bin[0] != '\0' ? bin : HARNESS_PG_BIN_DEFAULT);
    initdb = xasprintf("%s/initdb", pg->bin);
    if (access(initdb, X_OK) != 0) {
        harness_pg_set_why(why, why_len,
                           "%s: %s (install Debian's postgresql: tests/deps.sh, or set "
                           "SLUICE_PG_BIN)",
                           initdb, strerror(errno));
        goto fail;
    }
    if (geteuid() == 0 && (pw = getpwnam("postgres")) == NULL) {
        harness_pg_set_why(why, why_len,
                           "running as root and there is no postgres user to run the server as");
        goto fail;
    }
    pg->dir = xasprintf("%s/sluice-pg-XXXXXX", tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    if (mkdtemp(pg->dir) == NULL) {
        harness_pg_set_why(why, why_len, "mkdtemp %s: %s", pg->dir, strerror(errno));
        free(pg->dir);
        pg->dir = NULL;
        goto fail;
    }
    if (pw != NULL && chown(pg->dir, pw->pw_uid, pw->pw_gid) < 0) {
        harness_pg_set_why(why, why_len, "chown %s postgres: %s", pg->dir, strerror(errno));
        goto fail;
    }
    pg->data = xasprintf("%s/data", pg->dir);
    log = xasprintf("%s/initdb.log", pg->dir);
    {
        const char *args[] = {"-D", pg->data, "-U", "postgres", "-A", "trust", "-E", "UTF8",
                              "--locale=C", "--no-sync", NULL};
        if (harness_pg_run(pg, "initdb", args, log) != 0) {
            harness_pg_tail(log, tail, sizeof(tail));
            harness_pg_set_why(why, why_len, "initdb in %s failed: %s", pg->data, tail);
            goto fail;
        }
    }
    free(log);
    log = xasprintf("%s/server.log", pg->dir);
    for (int attempt = 0;; attempt++) {
        pg->port = harness_pg_free_port();
        if (harness_pg_ctl(pg, "start") == 0)
            break;
        if (attempt == 2) {
            harness_pg_tail(log, tail, sizeof(tail));
            harness_pg_set_why(why, why_len, "pg_ctl start failed: %s", tail);
            goto fail;
        }
    }
    free(log);
    free(initdb);
    harness_pg_live = pg;
    if (!atexit_set) {
        atexit_set = true;
        atexit(harness_pg_atexit);
    }
    return pg;
fail:
    free(log);
    free(initdb);
    if (pg->dir != NULL)
        nftw(pg->dir, harness_pg_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(pg->dir);
    free(pg->data);
    free(pg->bin);
    free(pg);
    return NULL;
}

void harness_pg_stop(struct harness_pg *pg)
{
    if (pg == NULL)
        return;
    if (pg->port > 0)
        (void)harness_pg_ctl(pg, "stop");
    nftw(pg->dir, harness_pg_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    if (harness_pg_live == pg)
        harness_pg_live = NULL;
    if (harness_pg_shared_server == pg)
        harness_pg_shared_server = NULL;
    free(pg->dir);
    free(pg->data);
    free(pg->bin);
    free(pg);
}

int harness_pg_restart(struct harness_pg *pg, unsigned down_ms)
{
    struct timespec ts = {(time_t)(down_ms / 1000), (long)(down_ms % 1000) * 1000000L};

    if (harness_pg_ctl(pg, "stop") != 0)
        return -1;
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
    return harness_pg_ctl(pg, "start") == 0 ? 0 : -1;
}

int harness_pg_exec(const char *uri, const char *sql, char *why, size_t why_len)
{
    PGconn *conn = PQconnectdb(uri);
    PGresult *res = NULL;
    int r = -1;

    if (PQstatus(conn) != CONNECTION_OK) {
        harness_pg_set_why(why, why_len, "connect %s: %s", uri, PQerrorMessage(conn));
        goto out;
    }
    res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
        harness_pg_set_why(why, why_len, "%s: %s", sql, PQerrorMessage(conn));
        goto out;
    }
    r = 0;
out:
    PQclear(res);
    PQfinish(conn);
    return r;
}

long long harness_pg_int(const char *uri, const char *sql)
{
    PGconn *conn = PQconnectdb(uri);
    PGresult *res = NULL;
    long long v = -1;

    if (PQstatus(conn) == CONNECTION_OK) {
        res = PQexec(conn, sql);
        if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0 &&
            !PQgetisnull(res, 0, 0))
            v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    }
    PQclear(res);
    PQfinish(conn);
    return v;
}

char *harness_pg_new_db(struct harness_pg *pg, char *why, size_t why_len)
{
    char *admin = xasprintf("postgresql://postgres@127.0.0.1:%d/postgres", pg->port);
    char *sql = xasprintf("CREATE DATABASE sluice_t%u", ++pg->dbs);
    char *uri = NULL;

    if (harness_pg_exec(admin, sql, why, why_len) == 0)
        uri = xasprintf("postgresql://postgres@127.0.0.1:%d/sluice_t%u", pg->port, pg->dbs);
    free(sql);
    free(admin);
    return uri;
}

bool harness_pg_mode(void)
{
    const char *v = getenv("SLUICE_TEST_CATALOG");

    return v != NULL && strcmp(v, "postgresql") == 0;
}

struct harness_pg *harness_pg_shared(char *why, size_t why_len)
{
    if (harness_pg_shared_server == NULL)
        harness_pg_shared_server = harness_pg_start(why, why_len);
    return harness_pg_shared_server;
}

char *harness_pg_dir_db(const char *dir, char *why, size_t why_len)
{
    struct harness_pg *pg = harness_pg_shared(why, why_len);
    const char *base = strrchr(dir, '/');
    char name[64], *admin, *sql, *uri;
    size_t n = 0;

    if (pg == NULL)
        return NULL;
    /* "sluice-coord-it-Ab12Cd" -> "d_sluice_coord_it_Ab12Cd": quoted, so case is kept. */
    n = (size_t)snprintf(name, sizeof(name), "d_");
    for (base = base != NULL ? base + 1 : dir; *base != '\0' && n < sizeof(name) - 1; base++)
        name[n++] = (char)(isalnum((unsigned char)*base) ? *base : '_');
    name[n] = '\0';
    admin = xasprintf("postgresql://postgres@127.0.0.1:%d/postgres", pg->port);
    uri = xasprintf("postgresql://postgres@127.0.0.1:%d/%s", pg->port, name);
    if (harness_pg_int(admin, "SELECT 1") != 1) {
        harness_pg_set_why(why, why_len, "the shared PostgreSQL at port %d does not answer",
                           pg->port);
        free(uri);
        uri = NULL;
    } else {
        char q[160];

        snprintf(q, sizeof(q), "SELECT count(*) FROM pg_database WHERE datname = '%s'", name);
        if (harness_pg_int(admin, q) == 0) {
            sql = xasprintf("CREATE DATABASE \"%s\"", name);
            if (harness_pg_exec(admin, sql, why, why_len) < 0) {
                free(uri);
                uri = NULL;
            }
            free(sql);
        }
    }
    free(admin);
    return uri;
}
