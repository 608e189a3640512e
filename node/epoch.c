/*
 * epoch: the node's fence against a deposed coordinator (see epoch.h).
 * Expected load: one call per assignment batch and per report answer.
 */
#include "epoch.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

int epoch_admit(struct epoch_fence *f, uint64_t epoch, char *why, size_t why_len)
{
    if (epoch == 0 || epoch >= f->highest) {
        if (epoch > f->highest)
            f->highest = epoch;
        return 0;
    }
    f->refused++;
    if (why != NULL && why_len > 0)
        snprintf(why, why_len,
                 "coordinator epoch %" PRIu64 " is older than epoch %" PRIu64
                 ", the newest leader this node has seen: refused from a deposed coordinator",
                 epoch, f->highest);
    return -ESTALE;
}
