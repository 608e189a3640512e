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

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct config_option;
struct http_response;

/* The exit code of a usage error, the same in both CLIs. */
#define CLI_EXIT_USAGE 2

/* The --token-file option, the same in both CLIs; var is a char *. */
#define CLI_TOKEN_OPTION(var)                                                                   \
    {"token-file", "SLUICE_TOKEN_FILE", CONFIG_STRING, &(var), "",                              \
     "Cluster token file (else $SLUICE_TOKEN)."}

/*
 * Parses one command's flags the same way in both CLIs. argv[0] is the
 * command ("query"); flags and positional arguments may come in any order,
 * and "--" ends the flags (what follows is positional even if it starts
 * with "--"). argv is reordered in place: on return argv[*ret_next..argc)
 * are the positional arguments in their original order.
 *
 * --help prints the usage (usage is the usage line, desc the description)
 * and exits 0. A bad flag prints "<prog> <cmd>: <problem>" and
 * "(see: <prog> <cmd> --help)" and exits CLI_EXIT_USAGE; so does a count of
 * positional arguments outside [min_pos, max_pos] (max_pos -1: no maximum),
 * naming what was expected and the usage line.
 */
void cli_parse(const char *prog, const struct config_option *opts, size_t n, int argc,
               char **argv, int *ret_next, const char *usage, const char *desc, int min_pos,
               int max_pos);

/*
 * The `version` command: prints "<prog> <version>" and returns 0; --help
 * prints its usage, any other flag or argument is a usage error (exit 2).
 */
int cli_version(const char *prog, int argc, char **argv);

/*
 * Moves the first argument of argv[1..argc) that names a command (is_command
 * says which) to argv[1], keeping the others in order, so that global flags
 * may come before the command: `sluice-coord --coordinator X status`. Stops
 * at "--". Returns true if a command was found.
 */
bool cli_command_first(int argc, char **argv, bool (*is_command)(const char *name));

/*
 * Checks a daemon address given as flag ("--coordinator") before any call:
 * it must be HOST:PORT with a port in 1..65535 and no scheme. Otherwise
 * prints "<prog> <cmd>: <flag> "<addr>" is not an address: expected
 * HOST:PORT, for example <example>" and exits CLI_EXIT_USAGE: a typo in an
 * address is a usage error, not an unreachable daemon.
 */
void cli_check_addr(const char *prog, const char *cmd, const char *flag, const char *addr,
                    const char *example);

/*
 * The same for --coordinator, which takes a comma-separated list
 * (common/coordlist.h): each element must be HOST:PORT. Otherwise prints
 * "<prog> <cmd>: <the problem>" and exits CLI_EXIT_USAGE.
 */
void cli_check_coordinators(const char *prog, const char *cmd, const char *list);

/*
 * The cluster token: the first line of the file at path, or $SLUICE_TOKEN
 * when path is NULL or empty; NULL when neither gives one (no auth). The
 * caller frees it. A file that cannot be read or is empty is a usage
 * error: prints "<prog>: --token-file PATH: <problem>" and exits with
 * CLI_EXIT_USAGE.
 */
char *cli_load_token(const char *prog, const char *path);

/*
 * Sends one request to the daemon at addr, which should be a `daemon`
 * ("sluice-coord", "sluice-broker" or "sluice-node"), and waits up to timeout_ms. For
 * "sluice-coord", addr is a --coordinator list, checked with
 * cli_check_coordinators(), and the request follows the leader
 * (coordlist_fetch: a standby's 503 sends it on, within timeout_ms). body may be
 * NULL (then no content type is sent; else it is protobuf). Returns 0 with
 * *resp filled when the daemon answered, whatever the status (free it with
 * http_response_done). Otherwise prints one line and returns a negative
 * errno, *resp untouched: "<prog> <cmd>: cannot reach the coordinator at
 * <addr>: <strerror>", or, when the answer's Server header names the other
 * Sluice daemon, "<prog> <cmd>: <addr> is a Sluice node, not a coordinator"
 * and -EPROTOTYPE.
 */
int cli_call(const char *prog, const char *cmd, const char *daemon, const char *addr,
             const char *method, const char *path, const void *body, size_t len,
             const char *token, unsigned timeout_ms, struct http_response *resp);

/*
 * What people call the daemon: "the coordinator" for "sluice-coord", "the
 * broker" for "sluice-broker" (sluice-coord broker), "the node" for "sluice-node".
 */
const char *cli_daemon_what(const char *daemon);

/*
 * Prints a failed answer: "<prog> <cmd>: HTTP <status> <code>: <message>"
 * when the body is a protobuf Error with a message, else
 * "<prog> <cmd>: HTTP <status>: <first 200 bytes of the body>".
 */
void cli_print_error(const char *prog, const char *cmd, const struct http_response *resp);

/* One subcommand of a CLI: its name, what runs it (argv[0] is the name), one line of help. */
struct cli_command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
};

/* The command of cmds named name, or NULL. */
const struct cli_command *cli_command_find(const struct cli_command *cmds, size_t n,
                                           const char *name);

/* Prints "  <name padded to width> <help>" for each of cmds. */
void cli_command_usage(FILE *out, const struct cli_command *cmds, size_t n, int width);

/*
 * Runs the command argv[0] of cmds and returns its exit status. An unknown
 * one returns CLI_EXIT_USAGE, after "<prog>: unknown command "<name>"" on
 * stderr when prog is not NULL.
 */
int cli_command_run(const char *prog, const struct cli_command *cmds, size_t n, int argc,
                    char **argv);

#endif
