/*
 * cli: what both command-line tools (`sluice-coord <command>` and
 * `sluice-node assign|query|status`) do around one request to a daemon:
 * load the cluster token, make the call, and print a failed answer. Each
 * function prints at most one line to stderr, prefixed "<prog> <cmd>:",
 * and the CLIs stay free to choose their exit codes. Runs once per command;
 * no state.
 */
#ifndef SLUICE_CLI_H
#define SLUICE_CLI_H

#include <stddef.h>

struct http_response;

/* The exit code of a usage error, the same in both CLIs. */
#define CLI_EXIT_USAGE 2

/* The --token-file option, the same in both CLIs; var is a char *. */
#define CLI_TOKEN_OPTION(var)                                                                   \
    {"token-file", "SLUICE_TOKEN_FILE", CONFIG_STRING, &(var), "",                              \
     "Cluster token file (else $SLUICE_TOKEN)."}

/*
 * The cluster token: the first line of the file at path, or $SLUICE_TOKEN
 * when path is NULL or empty; NULL when neither gives one (no auth). The
 * caller frees it. A file that cannot be read or is empty is a usage
 * error: prints "<prog>: --token-file PATH: <problem>" and exits with
 * CLI_EXIT_USAGE.
 */
char *cli_load_token(const char *prog, const char *path);

/*
 * Sends one request to the daemon `what` ("the coordinator", "the node") at
 * addr and waits up to timeout_ms. body may be NULL (then no content type
 * is sent; else it is protobuf). Returns 0 with *resp filled when the
 * daemon answered, whatever the status (free it with http_response_done),
 * or prints "<prog> <cmd>: cannot reach <what> at <addr>: <strerror>" and
 * returns the negative errno; *resp is written only on 0.
 */
int cli_call(const char *prog, const char *cmd, const char *what, const char *addr,
             const char *method, const char *path, const void *body, size_t len,
             const char *token, unsigned timeout_ms, struct http_response *resp);

/*
 * Prints a failed answer: "<prog> <cmd>: HTTP <status> <code>: <message>"
 * when the body is a protobuf Error with a message, else
 * "<prog> <cmd>: HTTP <status>: <first 200 bytes of the body>".
 */
void cli_print_error(const char *prog, const char *cmd, const struct http_response *resp);

#endif
