/*
 * healthcheck: the `healthcheck` subcommand of both binaries, for container
 * runtimes that probe by running a command (Docker's HEALTHCHECK, compose's
 * healthcheck:) in an image that has no shell and no curl.
 *
 * It sends one GET /healthz to the daemon in the same container and exits 0
 * on 200, 1 on anything else (printing why), 2 on a usage error. The address
 * comes from --addr, else SLUICE_LISTEN (so the probe follows the daemon's
 * own --listen when both read the container's environment), else the
 * binary's default; a wildcard host (0.0.0.0, [::], empty) is probed on
 * loopback. Expected load: one run every few seconds per container.
 */
#ifndef SLUICE_HEALTHCHECK_H
#define SLUICE_HEALTHCHECK_H

#include <stddef.h>

/* Exit codes of healthcheck_main(). */
#define HEALTHCHECK_EXIT_HEALTHY   0
#define HEALTHCHECK_EXIT_UNHEALTHY 1
#define HEALTHCHECK_EXIT_USAGE     2

/*
 * Turns a listen address into one to connect to: "0.0.0.0:P", ":P" and
 * "*:P" become "127.0.0.1:P", "[::]:P" becomes "[::1]:P", anything else is
 * copied. Returns 0, -EINVAL (no ":port" at the end) or -ENOSPC (ret too
 * small); ret is written only on success.
 */
int healthcheck_target(const char *listen, char *ret, size_t len);

/*
 * Runs the subcommand: argv[0] is "healthcheck", the rest are its flags
 * (--addr HOST:PORT, env SLUICE_LISTEN, default default_addr; --timeout,
 * default 2s). prog ("sluice-node") prefixes messages. Prints one line, on
 * stdout when healthy and on stderr otherwise, and returns one of the
 * HEALTHCHECK_EXIT_* codes; never exits itself.
 */
int healthcheck_main(const char *prog, const char *default_addr, int argc, char **argv);

#endif
