/*
 * healthcheck: one GET /healthz with a short deadline, for container probes.
 * Runs once per probe in a fresh process, so it keeps no state and logs
 * nothing: the single line it prints is what `docker inspect` shows as the
 * probe's output.
 */
#include "healthcheck.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "http.h"

#define N_OPTS(a) (sizeof(a) / sizeof((a)[0]))

int healthcheck_target(const char *listen, char *ret, size_t len)
{
    const char *colon = strrchr(listen, ':');
    size_t host_len;
    const char *host;
    int n;

    if (colon == NULL || colon[1] == '\0')
        return -EINVAL;
    host_len = (size_t)(colon - listen);
    if (host_len == 0 || (host_len == 7 && memcmp(listen, "0.0.0.0", 7) == 0) ||
        (host_len == 1 && listen[0] == '*'))
        host = "127.0.0.1";
    else if (host_len == 4 && memcmp(listen, "[::]", 4) == 0)
        host = "[::1]";
    else
        host = NULL;
    if (host == NULL) {
        host = listen;
        colon = "";
    }
    n = snprintf(NULL, 0, "%s%s", host, colon);
    if (n < 0 || (size_t)n >= len)
        return -ENOSPC;
    snprintf(ret, len, "%s%s", host, colon);
    return 0;
}

int healthcheck_main(const char *prog, const char *default_addr, int argc, char **argv)
{
    char *addr = NULL;
    uint64_t timeout_ms = 0;
    const struct config_option opts[] = {
        {"addr", "SLUICE_LISTEN", CONFIG_STRING, &addr, default_addr,
         "Daemon to probe (host:port; a wildcard host is probed on loopback)."},
        {"timeout", NULL, CONFIG_DURATION, &timeout_ms, "2s", "Deadline for the whole request.",
         100, 60000},
    };
    char usage[128], err[256], target[300];
    struct http_response hr;
    int next, r, rc = HEALTHCHECK_EXIT_UNHEALTHY;

    snprintf(usage, sizeof(usage), "%s healthcheck [--addr HOST:PORT]", prog);
    r = config_parse(opts, N_OPTS(opts), argc, argv, &next, err, sizeof(err));
    if (r == CONFIG_HELP) {
        config_usage(stdout, usage,
                     "Probe GET /healthz of a running daemon: exit 0 on 200, 1 otherwise "
                     "(for container HEALTHCHECK and probes).",
                     opts, N_OPTS(opts));
        return HEALTHCHECK_EXIT_HEALTHY;
    }
    if (r < 0 || next < argc) {
        fprintf(stderr, "%s healthcheck: %s\n(see: %s --help)\n", prog,
                r < 0 ? err : "unexpected argument", usage);
        config_free_strings(opts, N_OPTS(opts));
        return HEALTHCHECK_EXIT_USAGE;
    }
    if (healthcheck_target(addr, target, sizeof(target)) < 0) {
        fprintf(stderr, "%s healthcheck: --addr \"%s\" is not host:port\n", prog, addr);
        rc = HEALTHCHECK_EXIT_USAGE;
        goto out;
    }
    r = http_fetch(target, "GET", "/healthz", NULL, NULL, 0, NULL, (unsigned)timeout_ms, &hr);
    if (r < 0) {
        fprintf(stderr, "%s healthcheck: unhealthy: %s: %s\n", prog, target,
                r == -ETIMEDOUT ? "no answer within the timeout" : strerror(-r));
        goto out;
    }
    if (hr.status == 200) {
        printf("%s healthcheck: healthy: %s answered 200\n", prog, target);
        rc = HEALTHCHECK_EXIT_HEALTHY;
    } else {
        int body_len = (int)strcspn(hr.body, "\r\n");

        fprintf(stderr, "%s healthcheck: unhealthy: %s answered %d%s%.*s\n", prog, target,
                hr.status, body_len > 0 ? ": " : "", body_len > 80 ? 80 : body_len, hr.body);
    }
    http_response_done(&hr);
out:
    config_free_strings(opts, N_OPTS(opts));
    return rc;
}
