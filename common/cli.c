/*
 * cli: the token, the call and the error line shared by both CLIs, so that
 * the two tools read tokens and report failures word for word alike.
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "http.h"
#include "wire.h"

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

int cli_call(const char *prog, const char *cmd, const char *what, const char *addr,
             const char *method, const char *path, const void *body, size_t len,
             const char *token, unsigned timeout_ms, struct http_response *resp)
{
    int r = http_fetch(addr, method, path, body != NULL ? WIRE_CONTENT_TYPE : NULL, body, len,
                       token, timeout_ms, resp);

    if (r < 0)
        fprintf(stderr, "%s %s: cannot reach %s at %s: %s\n", prog, cmd, what, addr,
                strerror(-r));
    return r;
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
