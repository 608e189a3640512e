/*
 * failpoint: is a test failpoint armed (see failpoint.h). Expected load:
 * one call per batch of assignments; a getenv() each.
 */
#include "failpoint.h"

#include <stdlib.h>
#include <string.h>

bool failpoint_active(const char *name, const char **ret_arg)
{
    const char *v = getenv(FAILPOINT_ENV);
    size_t n = strlen(name);

    if (v == NULL || strncmp(v, name, n) != 0 || (v[n] != '\0' && v[n] != ':'))
        return false;
    if (ret_arg != NULL)
        *ret_arg = v[n] == ':' ? v + n + 1 : "";
    return true;
}
