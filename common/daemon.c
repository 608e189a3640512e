/*
 * daemon: the start-up both daemons share (log level, token, SIGPIPE,
 * event_base), the token file, the ready file and the main loop. Run once
 * per process.
 */
#include "daemon.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "cli.h"
#include "log.h"
#include "sluice_config.h"
#include "xmalloc.h"

#include <unistd.h>

int daemon_load_token(const char *path, char **ret_token, char *err, size_t err_len)
{
    char buf[512];
    size_t n;
    FILE *f;

    if (path == NULL || path[0] == '\0') {
        const char *env = getenv("SLUICE_TOKEN");
        *ret_token = env != NULL && env[0] != '\0' ? xstrdup(env) : NULL;
        return 0;
    }
    f = fopen(path, "re");
    if (f == NULL) {
        int r = -errno;
        snprintf(err, err_len, "--token-file %s: %s", path, strerror(errno));
        return r;
    }
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    if (buf[0] == '\0') {
        snprintf(err, err_len, "--token-file %s: empty", path);
        return -EINVAL;
    }
    *ret_token = xstrdup(buf);
    return 0;
}

int daemon_write_ready(const char *path, const char *bound)
{
    char *tmp = xasprintf("%s.tmp", path);
    FILE *f = fopen(tmp, "we");
    int r = 0;

    if (f == NULL || fprintf(f, "%s\n", bound) < 0)
        r = -errno;
    if (f != NULL && fclose(f) != 0 && r == 0)
        r = -errno;
    if (r == 0 && rename(tmp, path) < 0)
        r = -errno;
    if (r < 0)
        unlink(tmp);
    free(tmp);
    return r;
}

static void daemon_stop_cb(evutil_socket_t sig, short what, void *arg)
{
    log_info("signal", "signal=%d action=stop", (int)sig);
    event_base_loopexit(arg, NULL);
}

void daemon_run(struct event_base *base)
{
    struct event *term = evsignal_new(base, SIGTERM, daemon_stop_cb, base);
    struct event *intr = evsignal_new(base, SIGINT, daemon_stop_cb, base);

    if (term == NULL || intr == NULL)
        fatal("evsignal_new", NULL);
    evsignal_add(term, NULL);
    evsignal_add(intr, NULL);
    event_base_dispatch(base);
    event_free(term);
    event_free(intr);
}

int daemon_serve(struct event_base *base, const struct daemon_server_flags *f, const char *bound,
                 const char *err, const char *fields)
{
    if (bound == NULL) {
        log_error("start_failed", "error=%s", log_q(err));
        return 1;
    }
    if (f->ready_file[0] != '\0' && daemon_write_ready(f->ready_file, bound) < 0) {
        log_error("start_failed", "error=\"cannot write --ready-file %s\"", f->ready_file);
        return 1;
    }
    log_info("listening", "addr=%s %s version=%s", bound, fields, SLUICE_VERSION);
    daemon_run(base);
    log_info("stopped", "addr=%s %s", bound, fields);
    return 0;
}

void daemon_done(struct event_base *base, char *token)
{
    if (base != NULL)
        event_base_free(base);
    free(token);
}

struct event_base *daemon_init(const char *prog, const struct daemon_server_flags *f,
                               char **ret_token)
{
    enum log_level lvl = LOG_LEVEL_INFO;
    struct event_config *cfg;
    struct event_base *base;

    log_level_parse(f->log_level, &lvl);
    log_set_level(lvl);
    *ret_token = cli_load_token(prog, f->token_file);
    signal(SIGPIPE, SIG_IGN);
    evthread_use_pthreads();
    /*
     * epoll's change list: the adds and deletes of one loop iteration are
     * folded into at most one epoll_ctl per descriptor (evhttp enables and
     * disables a connection's read and write events several times per
     * request; 1,000 nodes' requests made epoll_ctl about a tenth of the
     * coordinator's and the farm's CPU). Safe here: no socket this base
     * watches is dup()ed, the case libevent warns about.
     */
    cfg = event_config_new();
    if (cfg == NULL)
        fatal("event_config_new", NULL);
    event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    if (base == NULL)
        fatal("event_base_new", NULL);
    return base;
}

const char *const daemon_log_levels[] = {"debug", "info", "warn", "error", NULL};

struct http_limits daemon_server_limits(const struct daemon_server_flags *f)
{
    struct http_limits lim = http_limits_default();

    lim.max_body = f->max_body;
    lim.max_headers = f->max_headers;
    lim.max_connections = (unsigned)f->max_conns;
    lim.idle_timeout_ms = (unsigned)f->idle_ms;
    lim.request_timeout_ms = (unsigned)f->request_ms;
    return lim;
}
