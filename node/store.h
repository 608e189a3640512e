/*
 * store: the node's segments. It owns the segment table, the local copies in
 * <data-dir>/segments/, their mappings and their zone-map indexes, and runs
 * every file operation on the worker pool so the event loop never blocks on
 * disk.
 *
 * Lifecycle of an assignment:
 *   store_assign()  precheck on a worker: the URI must name a regular file
 *                   inside the storage root (checked on the opened file, so a
 *                   symlink cannot escape), with a valid header whose
 *                   row_count (and digest, when the request carries one)
 *                   matches the request; the free space of the
 *                   local disk is measured, and admission decides on the
 *                   loop thread whether the copy fits (store_set_admit()).
 *                   A failed precheck changes nothing and answers a negative
 *                   errno (store_assign_cb).
 *   LOADING         copy into <id>.seg.tmp, map, verify every column
 *                   checksum, write <id>.meta, rename to <id>.seg, build the
 *                   zone maps. No fsync: nothing is served before it
 *                   verifies, and a restart verifies every copy again.
 *   LOADED          served to queries. The rename is the commit point: after
 *                   kill -9 a restarted node reloads (and re-verifies) every
 *                   <id>.seg that has its <id>.meta and deletes partial files.
 *   FAILED          with the negative errno the load ended with and a
 *                   detail: a SEGMENT_E* format error (checksum mismatch
 *                   found while loading), -ENOSPC, -EIO, ... The store
 *                   keeps the errno; the reason it is reported with is the
 *                   caller's mapping of it (store_status()). The local copy
 *                   is removed; a new assignment of the same id retries.
 *                   A LOADED segment becomes FAILED too (-EIO) when a
 *                   read of its mapping faults: SIGBUS, because the local
 *                   copy was truncated or its disk failed (store_seg_read).
 *                   Every read of a mapping is guarded (node/fault.h), so a
 *                   fault costs that segment, never the node.
 *
 * Segments are reference-counted so that a query scanning on a worker keeps
 * its mapping alive even if the segment is deleted meanwhile. All functions
 * are called on the loop thread; the accessors of a referenced segment may
 * be used on any thread, since a loaded segment is immutable.
 */
#ifndef SLUICE_STORE_H
#define SLUICE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "segfmt.h"
#include "shed.h"
#include "wire.h"

struct bufpool;
struct event_base;
struct pool;
struct query_source;
struct store;
struct store_seg;
struct zonemap;

struct store_config {
    /*
     * Loads (copy, verify, index) run on load_pool; quick work (prechecks,
     * unlinks) on the pool given to store_new(), so an assignment's answer
     * never waits behind another segment's copy. NULL: the same pool.
     */
    struct pool *load_pool;
    const char *storage_root; /* must exist; resolved with realpath() */
    const char *data_dir;     /* created if missing */
    /*
     * Direct I/O mode (--io=direct): segments are read through this pool
     * with O_DIRECT and never mapped once loaded. NULL: mmap mode.
     */
    struct bufpool *bufpool;
    /*
     * --mlock-budget: bytes of segment memory kept mlock'ed (0: none). The
     * caller has checked RLIMIT_MEMLOCK. See store_pin_tick().
     */
    uint64_t mlock_budget;
};

/*
 * Opens the store: creates <data_dir>/segments, removes partial files left by
 * a crash and queues a reload of every committed segment (they show LOADING
 * until verified). Returns NULL with err filled when a directory is unusable,
 * or, in direct mode, when <data_dir>/segments refuses O_DIRECT (the error
 * names the directory and --io=direct: there is no fallback to mmap).
 */
struct store *store_new(struct pool *pool, const struct store_config *cfg, char *err,
                        size_t err_len);

/*
 * Shutdown, step one: from now on nothing new is started. An assignment still
 * in its precheck is answered 503 DRAINING instead of being loaded, and a
 * deletion waiting for its load is answered 503, so that draining the worker
 * pools (pool_free) submits no further work. NULL-safe.
 */
void store_close(struct store *st);

/* Frees the table and every mapping. Call after pool_free(). NULL-safe. */
void store_free(struct store *st);

/*
 * Answer to an assignment, on the loop thread, as a negative errno and a
 * detail naming the problem; never a reason or an HTTP status (the caller
 * maps them, admission_store_answer()):
 *   0           accepted, now LOADING, or already LOADING/LOADED under the same URI
 *   -EBUSY      the id is being checked, unloaded, deleted or shed
 *   -EEXIST     the id is held under another URI, row_count, avg_row_size or digest
 *   -EINVAL     the file or the request is not a valid segment (missing, outside
 *               the storage root, a bad header, another row count or digest)
 *   -EMFILE, -ENFILE, -ENOMEM, -EAGAIN   this node could not open the file now
 *   -ESHUTDOWN  the store is closing
 *   -ENOSPC     the admit function refused the disk room (store_set_admit())
 *   -ENOMEM     ... or the memory of the file's in-memory columns
 */
typedef void (*store_assign_cb)(int err, const char *detail, void *arg);

/*
 * Asked on the loop thread once an assignment's precheck has passed, just
 * before its load starts: may the copy of id, file_bytes long, take its room
 * on the local disk, and may its load copy heap_bytes to the heap (the
 * file's SEGMENT_COL_ANON columns, read from its header: memory the load
 * certainly takes, whatever the request declared)? disk_err is 0 and
 * disk_avail the free bytes the precheck measured, or disk_err is the
 * negative errno of that measurement. assign_arg is store_assign()'s arg.
 * Returns 0 (the load starts; the room is the caller's to account until
 * store_load_cb reports the load's end), -ENOSPC (disk) or -ENOMEM
 * (memory) with detail written.
 */
typedef int (*store_admit_fn)(void *arg, const char *id, uint64_t file_bytes,
                              uint64_t heap_bytes, int disk_err, uint64_t disk_avail,
                              void *assign_arg, char *detail, size_t len);

/* Sets the admit function (NULL: every load is let start). */
void store_set_admit(struct store *st, store_admit_fn fn, void *arg);

/* Starts an assignment; cb is called exactly once, possibly before return. */
void store_assign(struct store *st, const struct wire_assign_request *req, store_assign_cb cb,
                  void *arg);

/*
 * Answer to a deletion: 200 once the local copy is gone from disk, 404 when
 * the id is unknown, 409 when a deletion of it is already running or an
 * assignment of it is still being checked. A deletion of a LOADING segment
 * waits for the load, and one of a segment being shed waits for the shed's
 * unlink, so that no unlink of its paths is pending once the id can be
 * assigned again.
 */
typedef void (*store_delete_cb)(int status, const char *detail, void *arg);
void store_delete(struct store *st, const char *id, store_delete_cb cb, void *arg);

/*
 * Returns a new reference to a LOADED segment, or NULL with err saying why
 * (unknown id, or its current state). Release with store_seg_unref().
 */
struct store_seg *store_get_loaded(struct store *st, const char *id, char *err, size_t err_len);
void store_seg_unref(struct store_seg *seg);

/* The mapping (mmap mode), or NULL in direct mode: use store_seg_source. */
const void *store_seg_base(const struct store_seg *seg);
/* Where a scan reads the segment: its mapping, or the pool and its file. */
void store_seg_source(const struct store_seg *seg, struct query_source *ret);
const char *store_seg_id(const struct store_seg *seg);
const struct segment_header *store_seg_header(const struct store_seg *seg);
const struct zonemap *store_seg_index(const struct store_seg *seg);
/* Records a query of the segment (least-recently-queried shedding uses it). */
void store_seg_touch(struct store_seg *seg, uint64_t now_unix_ms);

/*
 * The reason a FAILED segment is reported with, from the negative errno its
 * load ended with; called with 0 for LOADING and LOADED ones. The node
 * passes admission_load_reason(): the store names no reason of its own.
 */
typedef enum wire_reason (*store_reason_fn)(int err);

/*
 * Fills out->segments (sorted by id), mapped_bytes and index_bytes. Each
 * segment's reason is reason_of(its errno), except a DROPPED one's, which is
 * the reason store_shed() was given.
 */
void store_status(const struct store *st, store_reason_fn reason_of, struct wire_node_status *out);

struct store_totals {
    uint64_t segments[WIRE_SEG_COUNT_]; /* by state, visible segments only */
    uint64_t mapped_bytes, index_bytes;
    uint64_t meta_bytes; /* heap of the entries and their headers, exact */
    uint64_t loads_ok_total, loads_failed_total, copied_bytes_total, deletes_total;
    uint64_t faults_total; /* LOADED segments failed by store_fail() */
    uint64_t pinned_bytes;       /* mlock'ed now (whole pages), <= the mlock budget */
    uint64_t pin_failures_total; /* mlock calls the kernel refused */
    uint64_t loads_in_flight; /* prechecks + loads */
};
void store_totals(const struct store *st, struct store_totals *out);

/*
 * Called on the loop thread when a load or reload ends: ok, and the
 * footprint it ended with (mapped file bytes and heap index bytes).
 */
typedef void (*store_load_cb)(const char *id, bool ok, uint64_t file_bytes, uint64_t index_bytes,
                              void *arg);
void store_set_load_cb(struct store *st, store_load_cb cb, void *arg);

/*
 * New references to every LOADED segment, for work on a worker thread
 * (residency). *ret is an array the caller frees after unref'ing each.
 */
size_t store_loaded_refs(struct store *st, struct store_seg ***ret);
size_t store_seg_map_len(const struct store_seg *seg);

/*
 * The LOADED segment to shed (shed_pick: one over its declared limit first,
 * else the one queried least recently), or NULL. When ret is not NULL and a
 * segment is chosen, *ret is its candidate (ret->id is the returned id,
 * valid until the store next changes).
 */
const char *store_coldest(const struct store *st, struct shed_candidate *ret);

/*
 * Sheds a LOADED segment: it becomes DROPPED with reason and detail (so
 * status and the coordinator see why), stops being served, its mapping and
 * index are released as soon as no query holds them, and its local copy is
 * removed. The entry stays, DROPPED, until deleted or assigned again.
 * Returns 0, or -ENOENT when id is not LOADED.
 */
int store_shed(struct store *st, const char *id, enum wire_reason reason, const char *detail);

/*
 * Fails a LOADED segment whose mapping faulted (store_seg_read): it becomes
 * FAILED with -EIO (this node's copy is bad, not the source) and the
 * detail, and is then handled as store_shed() handles a shed segment: no
 * longer served, memory released once no query holds it, local copy
 * removed. The coordinator hears FAILED in the next report and places the
 * segment again; a new assignment copies and verifies it afresh.
 * Returns 0, or -ENOENT when id is not LOADED (another query failed it first).
 */
int store_fail(struct store *st, const char *id, const char *detail);

/*
 * Runs fn(arg), which reads seg's mapping (a scan), with a SIGBUS on that
 * mapping caught: a truncated local copy or a disk error then returns -EIO,
 * with detail naming the offset and column that faulted and "SIGBUS", and fn
 * is abandoned where it faulted (it must keep its results in arg and hold no
 * lock or allocation only it knows of). Returns 0 when fn completed. Any
 * thread; seg must be referenced.
 */
int store_seg_read(const struct store_seg *seg, void (*fn)(void *arg), void *arg, char *detail,
                   size_t detail_len);

/*
 * --mlock-budget. store_seg_record_query() counts a query that read column
 * and filter_column (-1: none) of seg, in a count that halves every minute
 * without queries. store_pin_tick() re-chooses what is pinned (node/mlockset:
 * every header and zone map first, then the most-queried columns, all within
 * the budget in whole pages) and, if that changed, applies it on the load
 * pool: munlock everything that leaves first, then mlock what joins, so the
 * locked total never exceeds the budget, even in passing. One application
 * runs at a time; a tick during it does nothing. Zone maps are then built in
 * pages of their own (zonemap_build_ex) so that pinning one never pins, or
 * unpins, anything else. Both do nothing without a budget. Loop thread.
 */
void store_seg_record_query(struct store_seg *seg, int column, int filter_column,
                            uint64_t now_ms);
void store_pin_tick(struct store *st, uint64_t now_ms);

/* True when id is LOADING or LOADED here (an assignment of it is a retry). */
bool store_holds(const struct store *st, const char *id);

/* <data-dir>/segments, for disk-space checks. */
const char *store_segdir(const struct store *st);

#endif
