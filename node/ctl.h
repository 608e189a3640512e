/*
 * ctl (node): the commands of `sluice-node` that are not the daemon:
 * inspect (a segment file's header), and assign, query, status (one request
 * to a running node). They parse flags with common/cli like sluice-coord's
 * commands (flags anywhere, "--" ends them) and print one answer. Expected
 * load: a person or a script, one command per process.
 *
 * Exit codes: 0 success, 1 failure or a refusal, 2 usage error.
 */
#ifndef SLUICE_NODE_CTL_H
#define SLUICE_NODE_CTL_H

#include <stdbool.h>
#include <stdio.h>

/* True if name is one of the commands nodectl_main runs. */
bool nodectl_is_command(const char *name);

/* Runs the command argv[0] (nodectl_is_command must be true) and returns its exit code. */
int nodectl_main(int argc, char **argv);

/* The "  name  what it does" lines of these commands, for the top-level usage. */
void nodectl_usage(FILE *out);

#endif
