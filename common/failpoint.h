/*
 * failpoint: test tools compiled into the daemons, inert unless the
 * environment names one. SLUICE_FAILPOINT="NAME" or "NAME:ARG" (one at a
 * time, as fail(9) and fail-rs arm theirs by name) makes failpoint_active()
 * true for that NAME only; with the variable unset every failpoint costs a
 * getenv() and a comparison. What each failpoint does is written where it
 * is checked (today: coordinator/dispatch.c, "dispatch-pause", the pause
 * between the lease check and the send that the fencing epoch protects
 * against; docs/DESIGN.md, fencing; coordinator/coord.c, "load-pause:MS",
 * a catalog load that takes MS longer). Not for production: nothing an
 * operator needs is behind one. No state, safe from any thread.
 */
#ifndef SLUICE_FAILPOINT_H
#define SLUICE_FAILPOINT_H

#include <stdbool.h>

/* The environment variable that arms a failpoint. */
#define FAILPOINT_ENV "SLUICE_FAILPOINT"

/*
 * True when SLUICE_FAILPOINT is name exactly or "name:ARG"; *ret_arg (may
 * be NULL) is then ARG, or "" when none was given, pointing into the
 * environment (valid until it changes). False, *ret_arg untouched,
 * otherwise.
 */
bool failpoint_active(const char *name, const char **ret_arg);

#endif
