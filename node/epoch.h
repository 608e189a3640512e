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
 * No loop. The highest epoch lives in memory, and, for a node with a data
 * directory (epoch_fence_load), in <data_dir>/epoch too, written (temporary
 * file, fsync, rename) each time it rises, which is once per election: a
 * node that restarts still refuses a leader older than the newest it saw.
 * Without a file (the farm's virtual nodes) it is memory only.
 */
#ifndef SLUICE_EPOCH_H
#define SLUICE_EPOCH_H

#include <stddef.h>
#include <stdint.h>

struct epoch_fence {
    uint64_t highest; /* the highest epoch seen; 0: none yet */
    uint64_t refused; /* messages refused for a lower epoch */
    uint64_t save_failed; /* rises that could not be written to path */
    char path[512];   /* where highest is kept; "": memory only */
};

/*
 * Keeps the fence in <dir>/epoch: reads the highest epoch from it if it
 * exists (a restart), and writes every rise there from now on. Returns 0,
 * or -errno with err naming the file and the problem (unreadable, not a
 * number, path too long): a node must not start with a fence it cannot
 * trust.
 */
int epoch_fence_load(struct epoch_fence *f, const char *dir, char *err, size_t err_len);

/*
 * Admits a message from a coordinator at epoch: 0 (and highest is raised
 * to epoch if it is higher, and written to the fence's file if it has one;
 * a failed write is counted in save_failed and logged, the message still
 * admitted), or -ESTALE, with why holding a sentence that
 * names both epochs, when epoch is lower than the highest seen (the
 * message must then be ignored whole). why may be NULL when why_len is 0.
 */
int epoch_admit(struct epoch_fence *f, uint64_t epoch, char *why, size_t why_len);

#endif
