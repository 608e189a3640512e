/*
 * cli: the token, the call and the error line shared by both CLIs, so that
 * the two tools read tokens and report failures word for word alike.
 */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "coordlist.h"
#include "daemon.h"
#include "http.h"
#include "sluice_config.h"
#include "wire.h"
#include "xmalloc.h"

/* True if the flag arg ("--node", not "--node=x") takes the next argument as its value. */
static bool cli_takes_value(const struct config_option *opts, size_t n, const char *arg)
{
    if (strncmp(arg, "--", 2) != 0 || strchr(arg, '=') != NULL)
        return false;
    for (size_t k = 0; k < n; k++)
        if (strcmp(arg + 2, opts[k].name) == 0)
            return opts[k].type != CONFIG_BOOL;
    return false;
}

/*
 * Puts the flags first, then (if the user wrote one) "--", then the
 * positional arguments, then what followed "--": config_parse stops at the
 * first positional argument, so this is what lets flags stand anywhere. A
 * flag's value is the next argument unless the flag is boolean, written
 * --name=value, or the next argument starts with "--" (config_parse's rule).
 * The count of arguments does not change.
 */
static void cli_reorder(const struct config_option *opts, size_t n, int argc, char **argv)
{
    char **flags = xcalloc((size_t)argc + 1, sizeof(char *));
    char **pos = xcalloc((size_t)argc + 1, sizeof(char *));
    int nf = 0, np = 0, i, o = 1;

    for (i = 1; i < argc; i++) {
        const char *a = argv[i];

        if (strcmp(a, "--") == 0)
            break;
        if (a[0] != '-' || a[1] == '\0') {
            pos[np++] = argv[i];
            continue;
        }
        flags[nf++] = argv[i];
        if (cli_takes_value(opts, n, a) && i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0)
            flags[nf++] = argv[++i];
    }
    for (int k = 0; k < nf; k++)
        argv[o++] = flags[k];
    if (i < argc)
        argv[o++] = argv[i]; /* the user's "--": what follows it stays positional */
    for (int k = 0; k < np; k++)
        argv[o++] = pos[k];
    free(flags);
    free(pos);
}

void cli_parse(const char *prog, const struct config_option *opts, size_t n, int argc,
               char **argv, int *ret_next, const char *usage, const char *desc, int min_pos,
               int max_pos)
{
    char err[256];
    int r, got;

    cli_reorder(opts, n, argc, argv);
    r = config_parse(opts, n, argc, argv, ret_next, err, sizeof(err));
    if (r == CONFIG_HELP) {
        config_usage(stdout, usage, desc, opts, n);
        exit(0);
    }
    if (r < 0) {
        fprintf(stderr, "%s %s: %s\n(see: %s %s --help)\n", prog, argv[0], err, prog, argv[0]);
        exit(CLI_EXIT_USAGE);
    }
    got = argc - *ret_next;
    if (got >= min_pos && (max_pos < 0 || got <= max_pos))
        return;
    if (max_pos == 0)
        fprintf(stderr, "%s %s: unexpected argument \"%s\"\n", prog, argv[0], argv[*ret_next]);
    else if (min_pos == max_pos)
        fprintf(stderr, "%s %s: expected %d argument%s, got %d\n", prog, argv[0], min_pos,
                min_pos == 1 ? "" : "s", got);
    else if (max_pos < 0)
        fprintf(stderr, "%s %s: expected at least %d argument%s, got %d\n", prog, argv[0],
                min_pos, min_pos == 1 ? "" : "s", got);
    else
        fprintf(stderr, "%s %s: expected %d to %d arguments, got %d\n", prog, argv[0], min_pos,
                max_pos, got);
    fprintf(stderr, "usage: %s\n", usage);
    exit(CLI_EXIT_USAGE);
}

int cli_version(const char *prog, int argc, char **argv)
{
    char usage[64];
    int next;

    snprintf(usage, sizeof(usage), "%s version", prog);
    cli_parse(prog, NULL, 0, argc, argv, &next, usage, "Print the version.", 0, 0);
    printf("%s %s\n", prog, SLUICE_VERSION);
    return 0;
}

bool cli_command_first(int argc, char **argv, bool (*is_command)(const char *name))
{
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
        char *cmd = argv[i];

        if (!is_command(cmd))
            continue;
        memmove(&argv[2], &argv[1], (size_t)(i - 1) * sizeof(char *));
        argv[1] = cmd;
        return true;
    }
    return false;
}

void cli_check_addr(const char *prog, const char *cmd, const char *flag, const char *addr,
                    const char *example)
{
    const char *colon = strrchr(addr, ':');
    char *end;
    long port;

    if (strstr(addr, "://") == NULL && colon != NULL && colon != addr && colon[1] != '\0') {
        port = strtol(colon + 1, &end, 10);
        if (*end == '\0' && port >= 1 && port <= 65535 && colon[1] >= '0' && colon[1] <= '9')
            return;
    }
    fprintf(stderr, "%s %s: %s \"%s\" is not an address: expected HOST:PORT, for example %s\n",
            prog, cmd, flag, addr, example);
    exit(CLI_EXIT_USAGE);
}

void cli_check_coordinators(const char *prog, const char *cmd, const char *list)
{
    struct coordlist *l = NULL;
    char err[512];

    if (coordlist_new(list, &l, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s %s: %s, for example 127.0.0.1:7000 or c1:7000,c2:7000\n", prog, cmd,
                err);
        exit(CLI_EXIT_USAGE);
    }
    coordlist_free(l);
}

char *cli_load_token(const char *prog, const char *path)
{
    char err[300];
    char *token = NULL;

    if (daemon_load_token(path, &token, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s: %s\n", prog, err);
        exit(CLI_EXIT_USAGE);
    }
    return token;
}

const char *cli_daemon_what(const char *daemon)
{
    return strcmp(daemon, "sluice-coord") == 0    ? "the coordinator"
           : strcmp(daemon, "sluice-broker") == 0 ? "the broker"
                                                   : "the node";
}

/* "node" for a Server header "sluice-node/...", "broker", or "coordinator". */
static const char *cli_server_kind(const char *server)
{
    return strncmp(server, "sluice-node", 11) == 0     ? "node"
           : strncmp(server, "sluice-broker", 13) == 0 ? "broker"
                                                        : "coordinator";
}

int cli_call(const char *prog, const char *cmd, const char *daemon, const char *addr,
             const char *method, const char *path, const void *body, size_t len,
             const char *token, unsigned timeout_ms, struct http_response *resp)
{
    struct http_response hr;
    size_t dlen = strlen(daemon);
    const char *ctype = body != NULL ? WIRE_CONTENT_TYPE : NULL;
    struct coordlist *l = NULL;
    char err[512];
    int r;

    /* Only coordinators come in lists, with standbys that name their leader. */
    if (strcmp(daemon, "sluice-coord") == 0) {
        if ((r = coordlist_new(addr, &l, err, sizeof(err))) < 0) {
            fprintf(stderr, "%s %s: %s\n", prog, cmd, err);
            return r;
        }
        r = coordlist_fetch(l, method, path, ctype, body, len, token, timeout_ms, &hr);
        coordlist_free(l);
    } else {
        r = http_fetch(addr, method, path, ctype, body, len, token, timeout_ms, &hr);
    }
    if (r < 0) {
        fprintf(stderr, "%s %s: cannot reach %s at %s: %s\n", prog, cmd, cli_daemon_what(daemon),
                addr, strerror(-r));
        return r;
    }
    /* "Server: sluice-node/0.9": the other daemon answered. */
    if (strncmp(hr.server, "sluice-", 7) == 0 &&
        !(strncmp(hr.server, daemon, dlen) == 0 && (hr.server[dlen] == '/' || hr.server[dlen] == '\0'))) {
        fprintf(stderr, "%s %s: %s is a Sluice %s, not a %s\n", prog, cmd, addr,
                cli_server_kind(hr.server), cli_server_kind(daemon));
        http_response_done(&hr);
        return -EPROTOTYPE;
    }
    *resp = hr;
    return 0;
}

void cli_print_error(const char *prog, const char *cmd, const struct http_response *resp)
{
    struct wire_error e;

    if (strncmp(resp->content_type, WIRE_CONTENT_TYPE, strlen(WIRE_CONTENT_TYPE)) == 0 &&
        wire_error_decode(resp->body, resp->body_len, &e) == 0 && e.message[0] != '\0')
        fprintf(stderr, "%s %s: HTTP %d %s: %s\n", prog, cmd, resp->status, e.code, e.message);
    else
        fprintf(stderr, "%s %s: HTTP %d: %.200s\n", prog, cmd, resp->status, resp->body);
}

const struct cli_command *cli_command_find(const struct cli_command *cmds, size_t n,
                                           const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(name, cmds[i].name) == 0)
            return &cmds[i];
    return NULL;
}

void cli_command_usage(FILE *out, const struct cli_command *cmds, size_t n, int width)
{
    for (size_t i = 0; i < n; i++)
        fprintf(out, "  %-*s %s\n", width, cmds[i].name, cmds[i].help);
}

int cli_command_run(const char *prog, const struct cli_command *cmds, size_t n, int argc,
                    char **argv)
{
    const struct cli_command *c = cli_command_find(cmds, n, argv[0]);

    if (c != NULL)
        return c->fn(argc, argv);
    if (prog != NULL)
        fprintf(stderr, "%s: unknown command \"%s\"\n", prog, argv[0]);
    return CLI_EXIT_USAGE;
}
