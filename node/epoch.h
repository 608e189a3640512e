/*
 * epoch: the node's fence against a deposed coordinator. With the catalog
 * in PostgreSQL several coordinators may run; the one that leads took the
 * lead by incrementing an epoch in the catalog, and every assignment batch
 * and report answer it sends carries that epoch. A node remembers the
 * highest epoch it has seen and refuses anything from a lower one, so an
 * old leader cut off from the catalog (paused, partitioned) can never make
 * it act against the new one. Epoch 0 is "no election" (a coordinator on
 * SQLite, or one older than epochs): accepted, and it changes nothing.
 *
 * Pure: no loop, no I/O; the highest epoch lives in memory, so a node that
 * restarts learns it again from the first answer of the current leader.
 */
#ifndef SLUICE_EPOCH_H
#define SLUICE_EPOCH_H

#include <stddef.h>
#include <stdint.h>

struct epoch_fence {
    uint64_t highest; /* the highest epoch seen; 0: none yet */
    uint64_t refused; /* messages refused for a lower epoch */
};

/*
 * Admits a message from a coordinator at epoch: 0 (and highest is raised
 * to epoch if it is higher), or -ESTALE, with why holding a sentence that
 * names both epochs, when epoch is lower than the highest seen (the
 * message must then be ignored whole). why may be NULL when why_len is 0.
 */
int epoch_admit(struct epoch_fence *f, uint64_t epoch, char *why, size_t why_len);

#endif
