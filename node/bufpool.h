/*
 * bufpool: the buffer pool of direct I/O mode (`sluice-node serve
 * --io=direct`). It owns exactly --cache-budget bytes of frame memory,
 * allocated and touched once when the pool is made, and caches fixed-size,
 * block-aligned pieces of segment files read with O_DIRECT into it. Nothing
 * is mapped from a file, so a scan never takes a hidden page fault: a block
 * that is not in the pool is read where the scan asks for it, and a disk
 * error is an error code, not a SIGBUS.
 *
 * Blocks. A block is [k * block_bytes, (k + 1) * block_bytes) of one file;
 * offsets and lengths are multiples of block_bytes (itself a multiple of
 * 4096, the logical block size O_DIRECT needs), so the segment format's
 * 64-byte column alignment is enough: an 8-byte value never straddles two
 * blocks. The last block of a file may be short.
 *
 * Eviction: S3-FIFO (Yang et al., SOSP 2023). A new block enters a small
 * probationary FIFO (10% of the frames); one that is used again before it
 * leaves it moves to the main FIFO, one that is not leaves the pool and
 * its key enters a ghost FIFO; a block read again while its key is a ghost
 * goes straight to main. Main is a CLOCK with a 2-bit use count. A
 * sequential scan therefore passes through the small queue alone and never
 * flushes the hot set in main (check_bufpool shows it). Pinned or reading
 * frames are never evicted.
 *
 * Reads. A cursor reads one byte range of one file in order and keeps up to
 * readahead blocks in flight ahead of the block it hands out: through an
 * io_uring owned by the calling thread when the kernel offers one, with
 * synchronous pread otherwise. Readahead never pins more than half the
 * frames, so demand reads of other scans always find a frame eventually.
 *
 * Thread-safety: every function may be called from any thread; one mutex
 * guards the pool's tables (held only for lookups, never across I/O). A
 * cursor belongs to one thread at a time.
 */
#ifndef SLUICE_BUFPOOL_H
#define SLUICE_BUFPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The node's block size: 256 KiB reads keep a disk streaming. */
#define BUFPOOL_BLOCK_DEFAULT    (256u * 1024u)
#define BUFPOOL_READAHEAD_DEFAULT 8u
/* Fewest frames a pool may have (so that readahead and demand reads coexist). */
#define BUFPOOL_MIN_FRAMES 64u
/* Longest cursor readahead, in blocks. */
#define BUFPOOL_MAX_READAHEAD 32u

struct bufpool;
struct bufpool_file;

struct bufpool_stats {
    uint64_t budget_bytes;    /* frame memory: == the budget, always */
    uint64_t overhead_bytes;  /* tables beside the frames (fixed at creation) */
    uint64_t frames, block_bytes;
    uint64_t frames_used;     /* frames holding a block or a read */
    uint64_t pinned_frames;
    uint64_t hits, misses;    /* block lookups */
    uint64_t reads, read_bytes, read_ns; /* completed reads, bytes, summed latency */
    uint64_t read_errors;
    uint64_t evictions;
    bool io_uring; /* the last read went through io_uring */
};

/*
 * Makes a pool of budget_bytes of frames, block_bytes each: block_bytes a
 * power of two, at least 4096; budget_bytes a multiple of block_bytes and at
 * least BUFPOOL_MIN_FRAMES blocks; readahead 0..BUFPOOL_MAX_READAHEAD. The
 * frame memory is mapped and written once here, so it is resident and
 * charged to the caller's memory cgroup from the start, and never grows.
 * Returns 0 and *ret, -EINVAL with err naming the bad value, or -ENOMEM.
 */
int bufpool_new(uint64_t budget_bytes, uint32_t block_bytes, unsigned readahead,
                struct bufpool **ret, char *err, size_t err_len);

/* Frees the pool. Every file must have been closed. NULL-safe. */
void bufpool_free(struct bufpool *p);

/*
 * Opens path for O_DIRECT reads through the pool. Returns 0 and *ret, or a
 * negated errno: -EINVAL in particular when the filesystem refuses O_DIRECT
 * (tmpfs). The file's size is taken now (segments are immutable).
 */
int bufpool_file_open(struct bufpool *p, const char *path, struct bufpool_file **ret);

/*
 * Closes a file and drops its blocks from the pool. No cursor may be open on
 * it (the store guarantees this by reference counting). NULL-safe.
 */
void bufpool_file_close(struct bufpool_file *f);

uint64_t bufpool_file_size(const struct bufpool_file *f);

/*
 * A sequential reader of [start, end) of one file. Embed it; fields are
 * private. Initialise with bufpool_cursor_init, finish with
 * bufpool_cursor_done (which waits for its reads still in flight).
 */
struct bufpool_cursor {
    struct bufpool *pool;
    struct bufpool_file *file;
    uint64_t end_block;  /* one past the last block of the range */
    uint64_t next_issue; /* next block readahead would take */
    uint64_t cur_block;
    int cur;             /* pinned frame handed out last, or -1 */
    unsigned nra;        /* readahead frames pinned, for blocks after cur_block */
    int ra[BUFPOOL_MAX_READAHEAD];
    uint64_t ra_block[BUFPOOL_MAX_READAHEAD];
    int error;
};

void bufpool_cursor_init(struct bufpool_cursor *c, struct bufpool *p, struct bufpool_file *f,
                         uint64_t start, uint64_t end);

/*
 * Hands out the bytes at file offset off (inside the cursor's range, and not
 * before the previous call's block): *ret_ptr points to them and *ret_len
 * says how many are contiguous (up to the end of the block or of the file).
 * The block stays pinned until the next call or bufpool_cursor_done. Starts
 * readahead of the blocks after it. Returns 0, or a negated errno from the
 * read (-EIO, or -ENODATA when the file is shorter than off), after which
 * every later call fails the same way.
 */
int bufpool_cursor_get(struct bufpool_cursor *c, uint64_t off, const void **ret_ptr,
                       size_t *ret_len);

/* Unpins everything the cursor holds, after waiting for its reads. */
void bufpool_cursor_done(struct bufpool_cursor *c);

/* A consistent copy of the counters. */
void bufpool_stats(struct bufpool *p, struct bufpool_stats *ret);

/*
 * For tests: whether block blk of f is in the pool (ready), and the frame
 * memory's extent (every pointer handed out lies in it).
 */
bool bufpool_contains(struct bufpool *p, const struct bufpool_file *f, uint64_t blk);
void bufpool_arena(const struct bufpool *p, const void **ret_base, uint64_t *ret_len);

#endif
