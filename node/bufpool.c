/*
 * bufpool: frames, an S3-FIFO replacement policy, and O_DIRECT reads through
 * a per-thread io_uring (pread where io_uring is not available). Expected
 * load: a few scanning threads, each asking for a block every few tens of
 * microseconds when hot and every block_bytes / disk bandwidth when cold;
 * one mutex is enough at that rate, and it is never held across I/O.
 *
 * A frame is FREE (on the free list), READING (its read is in flight on the
 * ring of the thread that issued it, which alone reaps it), READY, or ERROR
 * (its read failed: out of the hash table, freed when the last pin goes).
 * Only FREE and unpinned READY frames are ever reused.
 *
 * Deadlock freedom: a thread that must wait (for a frame another thread is
 * reading, or for any frame to become free) first reaps every read of its own
 * ring, so no thread ever sleeps on a condition variable while holding an
 * unreaped read another thread might wait for.
 */
#include "bufpool.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "xmalloc.h"

enum bufpool_state { BP_FREE, BP_READING, BP_READY, BP_ERROR };
enum bufpool_queue_id { BP_Q_NONE, BP_Q_SMALL, BP_Q_MAIN };

#define BP_RING_ENTRIES 64u
#define BP_FREQ_MAX     3u

struct bufpool_ring;

struct bufpool_frame {
    struct bufpool *pool;
    uint64_t file_id, blk;
    enum bufpool_state state;
    enum bufpool_queue_id queue;
    unsigned pins;
    unsigned freq;
    int prev, next; /* queue (or free list, through next) */
    int hnext;      /* hash chain */
    int error;      /* BP_ERROR: the negated errno */
    uint32_t len;   /* valid bytes once READY */
    uint32_t want;  /* bytes the read must return */
    int fd;
    struct bufpool_ring *owner; /* READING: the ring that will reap it */
    uint64_t issued_ns;
};

struct bufpool_queue {
    int head, tail; /* head: newest */
    unsigned n;
};

struct bufpool {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    unsigned waiters;
    char *arena;
    uint64_t budget;
    uint32_t block;
    unsigned nframes, readahead, small_target;
    struct bufpool_frame *frames;
    int *buckets;
    unsigned nbuckets; /* power of two */
    int free_head;
    unsigned nfree, pinned;
    struct bufpool_queue small, main;
    uint64_t *ghost; /* fingerprints of blocks evicted from small; 0 is empty */
    unsigned ghost_cap, ghost_pos;
    uint64_t next_file_id;
    uint64_t hits, misses, reads, read_bytes, read_ns, read_errors, evictions;
    bool used_uring;
};

struct bufpool_file {
    struct bufpool *pool;
    int fd;
    uint64_t id, size;
};

/* One per thread, made on its first read. ok: io_uring works here. */
struct bufpool_ring {
    struct io_uring ring;
    bool ok;
    unsigned inflight;
};

static pthread_key_t bufpool_ring_key;
static pthread_once_t bufpool_ring_once = PTHREAD_ONCE_INIT;

static uint64_t bufpool_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void bufpool_ring_destroy(void *arg)
{
    struct bufpool_ring *r = arg;

    if (r->ok)
        io_uring_queue_exit(&r->ring);
    free(r);
}

static void bufpool_ring_key_init(void)
{
    if (pthread_key_create(&bufpool_ring_key, bufpool_ring_destroy) != 0)
        abort();
}

/* This thread's ring. SLUICE_BUFPOOL_PREAD=1 forces pread (for measurements). */
static struct bufpool_ring *bufpool_my_ring(void)
{
    struct bufpool_ring *r;
    const char *env;

    pthread_once(&bufpool_ring_once, bufpool_ring_key_init);
    r = pthread_getspecific(bufpool_ring_key);
    if (r != NULL)
        return r;
    r = xcalloc(1, sizeof(*r));
    env = getenv("SLUICE_BUFPOOL_PREAD");
    if (env == NULL || strcmp(env, "1") != 0)
        r->ok = io_uring_queue_init(BP_RING_ENTRIES, &r->ring, 0) == 0;
    if (pthread_setspecific(bufpool_ring_key, r) != 0)
        abort();
    return r;
}

static uint64_t bufpool_hash(uint64_t file_id, uint64_t blk)
{
    uint64_t x = file_id * 0x9E3779B97F4A7C15ull ^ (blk + 0x632BE59BD9B4E019ull);

    x ^= x >> 31;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 29;
    return x | 1; /* never 0: 0 marks an empty ghost slot */
}

/* --- queues (lock held) --- */

static void bufpool_q_push(struct bufpool *p, struct bufpool_queue *q, enum bufpool_queue_id id,
                           int i)
{
    struct bufpool_frame *f = &p->frames[i];

    f->queue = id;
    f->prev = -1;
    f->next = q->head;
    if (q->head >= 0)
        p->frames[q->head].prev = i;
    q->head = i;
    if (q->tail < 0)
        q->tail = i;
    q->n++;
}

static struct bufpool_queue *bufpool_q_of(struct bufpool *p, const struct bufpool_frame *f)
{
    return f->queue == BP_Q_SMALL ? &p->small : f->queue == BP_Q_MAIN ? &p->main : NULL;
}

static void bufpool_q_remove(struct bufpool *p, int i)
{
    struct bufpool_frame *f = &p->frames[i];
    struct bufpool_queue *q = bufpool_q_of(p, f);

    if (q == NULL)
        return;
    if (f->prev >= 0)
        p->frames[f->prev].next = f->next;
    else
        q->head = f->next;
    if (f->next >= 0)
        p->frames[f->next].prev = f->prev;
    else
        q->tail = f->prev;
    q->n--;
    f->queue = BP_Q_NONE;
    f->prev = f->next = -1;
}

/* --- hash table (lock held) --- */

static unsigned bufpool_bucket(const struct bufpool *p, uint64_t file_id, uint64_t blk)
{
    return (unsigned)(bufpool_hash(file_id, blk) & (p->nbuckets - 1));
}

static int bufpool_lookup(const struct bufpool *p, uint64_t file_id, uint64_t blk)
{
    for (int i = p->buckets[bufpool_bucket(p, file_id, blk)]; i >= 0; i = p->frames[i].hnext)
        if (p->frames[i].file_id == file_id && p->frames[i].blk == blk)
            return i;
    return -1;
}

static void bufpool_hash_insert(struct bufpool *p, int i)
{
    unsigned b = bufpool_bucket(p, p->frames[i].file_id, p->frames[i].blk);

    p->frames[i].hnext = p->buckets[b];
    p->buckets[b] = i;
}

static void bufpool_hash_remove(struct bufpool *p, int i)
{
    int *link = &p->buckets[bufpool_bucket(p, p->frames[i].file_id, p->frames[i].blk)];

    while (*link >= 0 && *link != i)
        link = &p->frames[*link].hnext;
    if (*link == i)
        *link = p->frames[i].hnext;
    p->frames[i].hnext = -1;
}

/* --- ghost FIFO (lock held); linear search is cheap next to a block read --- */

static void bufpool_ghost_add(struct bufpool *p, uint64_t fp)
{
    p->ghost[p->ghost_pos] = fp;
    p->ghost_pos = (p->ghost_pos + 1) % p->ghost_cap;
}

static bool bufpool_ghost_take(struct bufpool *p, uint64_t fp)
{
    for (unsigned k = 0; k < p->ghost_cap; k++) {
        if (p->ghost[k] == fp) {
            p->ghost[k] = 0;
            return true;
        }
    }
    return false;
}

/* --- frames (lock held) --- */

static void bufpool_free_push(struct bufpool *p, int i)
{
    struct bufpool_frame *f = &p->frames[i];

    f->state = BP_FREE;
    f->queue = BP_Q_NONE;
    f->prev = -1;
    f->next = p->free_head;
    p->free_head = i;
    p->nfree++;
}

static void bufpool_wake(struct bufpool *p)
{
    if (p->waiters > 0)
        pthread_cond_broadcast(&p->cond);
}

static void bufpool_pin(struct bufpool *p, int i)
{
    if (p->frames[i].pins++ == 0)
        p->pinned++;
}

static void bufpool_unpin_locked(struct bufpool *p, int i)
{
    struct bufpool_frame *f = &p->frames[i];

    if (f->pins == 0)
        abort();
    if (--f->pins > 0)
        return;
    p->pinned--;
    if (f->state == BP_ERROR)
        bufpool_free_push(p, i);
    bufpool_wake(p);
}

/*
 * A frame to reuse: a free one, else the S3-FIFO victim. Returns -1 when
 * every frame is pinned or reading.
 */
static int bufpool_evict(struct bufpool *p)
{
    if (p->nfree > 0) {
        int i = p->free_head;
        p->free_head = p->frames[i].next;
        p->nfree--;
        p->frames[i].next = -1;
        return i;
    }
    for (unsigned step = 0; step < 4 * p->nframes + 4; step++) {
        bool from_small = p->small.n > p->small_target || p->main.n == 0;
        struct bufpool_queue *q = from_small ? &p->small : &p->main;
        int i = q->tail;
        struct bufpool_frame *f;

        if (i < 0)
            return -1;
        f = &p->frames[i];
        bufpool_q_remove(p, i);
        if (f->pins > 0 || f->state != BP_READY) {
            bufpool_q_push(p, q, from_small ? BP_Q_SMALL : BP_Q_MAIN, i);
            continue;
        }
        if (from_small && f->freq > 0) {
            f->freq = 0; /* used again while on probation: promoted */
            bufpool_q_push(p, &p->main, BP_Q_MAIN, i);
            continue;
        }
        if (!from_small && f->freq > 0) {
            f->freq--;
            bufpool_q_push(p, &p->main, BP_Q_MAIN, i);
            continue;
        }
        bufpool_hash_remove(p, i);
        if (from_small)
            bufpool_ghost_add(p, bufpool_hash(f->file_id, f->blk));
        p->evictions++;
        return i;
    }
    return -1;
}

/* --- I/O (no lock held) --- */

/* Records a read's outcome and wakes whoever waits for the frame. */
static void bufpool_complete(struct bufpool_frame *f, int res)
{
    struct bufpool *p = f->pool;
    uint64_t now = bufpool_now_ns();
    int i = (int)(f - p->frames);

    pthread_mutex_lock(&p->lock);
    p->reads++;
    p->read_ns += now - f->issued_ns;
    if (res >= 0 && (uint32_t)res >= f->want) {
        f->len = f->want;
        f->state = BP_READY;
        p->read_bytes += (uint64_t)res;
    } else {
        f->error = res < 0 ? res : -EIO;
        f->state = BP_ERROR;
        p->read_errors++;
        bufpool_hash_remove(p, i);
        bufpool_q_remove(p, i);
    }
    f->owner = NULL;
    bufpool_wake(p);
    pthread_mutex_unlock(&p->lock);
}

/*
 * One read request: up to BP_GROUP_MAX consecutive blocks of one file, into
 * frames that need not be adjacent (readv). Larger requests matter: on the
 * disks measured here a 1 MiB read costs little more than a 256 KiB one.
 */
#define BP_GROUP_MAX 4u

struct bufpool_req {
    struct bufpool *pool;
    unsigned n;
    int frames[BP_GROUP_MAX];
    struct iovec iov[BP_GROUP_MAX];
};

/* Hands each frame of a finished request its share of res bytes. */
static void bufpool_req_complete(struct bufpool_req *q, int res)
{
    uint32_t block = q->pool->block;

    for (unsigned k = 0; k < q->n; k++) {
        int part;

        if (res < 0)
            part = res;
        else if ((uint64_t)res <= (uint64_t)k * block)
            part = 0;
        else
            part = (uint64_t)res - (uint64_t)k * block >= block ? (int)block
                                                                : (int)(res - (int)(k * block));
        bufpool_complete(&q->pool->frames[q->frames[k]], part);
    }
    free(q);
}

/* Reads a request synchronously (no io_uring here). */
static int bufpool_preadv_all(int fd, struct bufpool_req *q, uint64_t off)
{
    ssize_t n;

    do
        n = preadv(fd, q->iov, (int)q->n, (off_t)off);
    while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : (int)n;
}

/* Reaps one completion of r, waiting for it. */
static void bufpool_reap_one(struct bufpool_ring *r)
{
    struct io_uring_cqe *cqe;
    struct bufpool_req *q;
    int res, e;

    do
        e = io_uring_wait_cqe(&r->ring, &cqe);
    while (e == -EINTR);
    if (e < 0)
        abort(); /* only with a corrupted ring: nothing sane is left to do */
    q = io_uring_cqe_get_data(cqe);
    res = cqe->res;
    io_uring_cqe_seen(&r->ring, cqe);
    r->inflight--;
    bufpool_req_complete(q, res);
}

static void bufpool_drain(struct bufpool_ring *r)
{
    while (r->inflight > 0)
        bufpool_reap_one(r);
}

/*
 * Starts the reads of frames idx[0..n), which this thread marked READING,
 * merging runs of consecutive blocks of one file into one request each.
 */
static void bufpool_issue(struct bufpool *p, const int *idx, unsigned n)
{
    struct bufpool_ring *r = bufpool_my_ring();
    unsigned queued = 0;

    for (unsigned k = 0; k < n;) {
        struct bufpool_frame *first = &p->frames[idx[k]];
        struct bufpool_req *q = xcalloc(1, sizeof(*q));
        struct io_uring_sqe *sqe = NULL;
        uint64_t now = bufpool_now_ns();

        q->pool = p;
        while (k < n && q->n < BP_GROUP_MAX) {
            struct bufpool_frame *f = &p->frames[idx[k]];

            if (q->n > 0 && (f->fd != first->fd || f->blk != first->blk + q->n))
                break;
            f->issued_ns = now;
            f->owner = r->ok ? r : NULL;
            q->frames[q->n] = idx[k];
            q->iov[q->n].iov_base = p->arena + (uint64_t)idx[k] * p->block;
            q->iov[q->n].iov_len = p->block;
            q->n++;
            k++;
        }
        if (r->ok) {
            sqe = io_uring_get_sqe(&r->ring);
            if (sqe == NULL && io_uring_submit(&r->ring) >= 0) {
                queued = 0;
                sqe = io_uring_get_sqe(&r->ring);
            }
        }
        if (sqe == NULL) {
            for (unsigned j = 0; j < q->n; j++)
                p->frames[q->frames[j]].owner = NULL;
            bufpool_req_complete(q, bufpool_preadv_all(first->fd, q, first->blk * p->block));
            continue;
        }
        io_uring_prep_readv(sqe, first->fd, q->iov, q->n, first->blk * p->block);
        io_uring_sqe_set_data(sqe, q);
        r->inflight++;
        queued++;
    }
    if (queued > 0) {
        int e;
        do
            e = io_uring_submit(&r->ring);
        while (e == -EINTR);
        if (e < 0)
            abort(); /* the SQEs are already ours: a failed submit leaves no way back */
    }
    p->used_uring = r->ok;
}

/*
 * Waits (lock held, may drop it) until frame i is no longer READING. Reaps
 * this thread's own reads first; sleeps only with none of its own in flight.
 */
static void bufpool_wait_ready(struct bufpool *p, int i)
{
    struct bufpool_ring *r = bufpool_my_ring();

    while (p->frames[i].state == BP_READING) {
        if (r->inflight > 0) {
            bool mine = p->frames[i].owner == r;

            pthread_mutex_unlock(&p->lock);
            if (mine)
                bufpool_reap_one(r);
            else
                bufpool_drain(r);
            pthread_mutex_lock(&p->lock);
            continue;
        }
        p->waiters++;
        pthread_cond_wait(&p->cond, &p->lock);
        p->waiters--;
    }
}

/*
 * Finds block blk of f or claims a frame for it (lock held). Returns the
 * pinned frame, with *ret_issue true when the caller must start its read;
 * -1 when no frame is free and may_block is false. May drop the lock while
 * it waits for a frame.
 */
static int bufpool_acquire(struct bufpool *p, struct bufpool_file *file, uint64_t blk,
                           bool may_block, bool *ret_issue)
{
    struct bufpool_ring *r = NULL;

    *ret_issue = false;
    for (;;) {
        int i = bufpool_lookup(p, file->id, blk);
        struct bufpool_frame *f;
        uint64_t fp;

        if (i >= 0) {
            f = &p->frames[i];
            bufpool_pin(p, i);
            if (f->freq < BP_FREQ_MAX)
                f->freq++;
            p->hits++;
            return i;
        }
        i = bufpool_evict(p);
        if (i < 0) {
            if (!may_block)
                return -1;
            if (r == NULL)
                r = bufpool_my_ring();
            if (r->inflight > 0) {
                pthread_mutex_unlock(&p->lock);
                bufpool_drain(r);
                pthread_mutex_lock(&p->lock);
            } else {
                p->waiters++;
                pthread_cond_wait(&p->cond, &p->lock);
                p->waiters--;
            }
            continue; /* someone may have read the block meanwhile */
        }
        p->misses++;
        f = &p->frames[i];
        f->file_id = file->id;
        f->blk = blk;
        f->fd = file->fd;
        f->state = BP_READING;
        f->freq = 0;
        f->error = 0;
        f->len = 0;
        f->want = (uint32_t)(file->size - blk * p->block < p->block ? file->size - blk * p->block
                                                                     : p->block);
        f->pins = 0;
        bufpool_pin(p, i);
        bufpool_hash_insert(p, i);
        fp = bufpool_hash(file->id, blk);
        if (bufpool_ghost_take(p, fp))
            bufpool_q_push(p, &p->main, BP_Q_MAIN, i);
        else
            bufpool_q_push(p, &p->small, BP_Q_SMALL, i);
        *ret_issue = true;
        return i;
    }
}

/* --- public --- */

int bufpool_new(uint64_t budget_bytes, uint32_t block_bytes, unsigned readahead,
                struct bufpool **ret, char *err, size_t err_len)
{
    struct bufpool *p;
    uint64_t nframes;
    void *arena;

    if (block_bytes < 4096 || (block_bytes & (block_bytes - 1)) != 0) {
        snprintf(err, err_len, "block size %u is not a power of two of at least 4096",
                 block_bytes);
        return -EINVAL;
    }
    if (budget_bytes % block_bytes != 0 || budget_bytes / block_bytes < BUFPOOL_MIN_FRAMES ||
        budget_bytes / block_bytes > INT32_MAX / 2) {
        snprintf(err, err_len,
                 "%llu bytes is not a multiple of the %u-byte block between %u and %d blocks",
                 (unsigned long long)budget_bytes, block_bytes, BUFPOOL_MIN_FRAMES,
                 INT32_MAX / 2);
        return -EINVAL;
    }
    if (readahead > BUFPOOL_MAX_READAHEAD) {
        snprintf(err, err_len, "readahead %u is above %u blocks", readahead,
                 BUFPOOL_MAX_READAHEAD);
        return -EINVAL;
    }
    arena = mmap(NULL, (size_t)budget_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                 -1, 0);
    if (arena == MAP_FAILED) {
        snprintf(err, err_len, "cannot map %llu bytes for the buffer pool: %s",
                 (unsigned long long)budget_bytes, strerror(errno));
        return -ENOMEM;
    }
    /* Written once: resident and charged now, so the pool's cost never changes. */
    memset(arena, 0, (size_t)budget_bytes);
    nframes = budget_bytes / block_bytes;
    p = xcalloc(1, sizeof(*p));
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    p->arena = arena;
    p->budget = budget_bytes;
    p->block = block_bytes;
    p->nframes = (unsigned)nframes;
    p->readahead = readahead;
    p->small_target = p->nframes / 10 > 0 ? p->nframes / 10 : 1;
    p->frames = xcalloc(nframes, sizeof(*p->frames));
    for (p->nbuckets = 1; p->nbuckets < 2 * p->nframes;)
        p->nbuckets <<= 1;
    p->buckets = xmalloc(p->nbuckets * sizeof(*p->buckets));
    for (unsigned b = 0; b < p->nbuckets; b++)
        p->buckets[b] = -1;
    p->ghost_cap = p->nframes;
    p->ghost = xcalloc(p->ghost_cap, sizeof(*p->ghost));
    p->small.head = p->small.tail = p->main.head = p->main.tail = -1;
    p->free_head = -1;
    for (int i = (int)p->nframes - 1; i >= 0; i--) {
        p->frames[i].pool = p;
        p->frames[i].hnext = -1;
        bufpool_free_push(p, i);
    }
    p->next_file_id = 1;
    *ret = p;
    return 0;
}

void bufpool_free(struct bufpool *p)
{
    if (p == NULL)
        return;
    munmap(p->arena, (size_t)p->budget);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->cond);
    free(p->frames);
    free(p->buckets);
    free(p->ghost);
    free(p);
}

int bufpool_file_open(struct bufpool *p, const char *path, struct bufpool_file **ret)
{
    struct bufpool_file *f;
    struct stat sb;
    int fd = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);

    if (fd < 0)
        return -errno;
    if (fstat(fd, &sb) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    f = xcalloc(1, sizeof(*f));
    f->pool = p;
    f->fd = fd;
    f->size = (uint64_t)sb.st_size;
    pthread_mutex_lock(&p->lock);
    f->id = p->next_file_id++;
    pthread_mutex_unlock(&p->lock);
    *ret = f;
    return 0;
}

void bufpool_file_close(struct bufpool_file *f)
{
    struct bufpool *p;

    if (f == NULL)
        return;
    p = f->pool;
    pthread_mutex_lock(&p->lock);
    for (unsigned i = 0; i < p->nframes; i++) {
        struct bufpool_frame *fr = &p->frames[i];

        if (fr->file_id != f->id || (fr->state != BP_READY && fr->state != BP_READING))
            continue;
        if (fr->pins > 0 || fr->state == BP_READING)
            abort(); /* a cursor is still open on a closed file: a caller bug */
        bufpool_hash_remove(p, (int)i);
        bufpool_q_remove(p, (int)i);
        bufpool_free_push(p, (int)i);
    }
    bufpool_wake(p);
    pthread_mutex_unlock(&p->lock);
    close(f->fd);
    free(f);
}

uint64_t bufpool_file_size(const struct bufpool_file *f)
{
    return f->size;
}

void bufpool_cursor_init(struct bufpool_cursor *c, struct bufpool *p, struct bufpool_file *f,
                         uint64_t start, uint64_t end)
{
    memset(c, 0, sizeof(*c));
    c->pool = p;
    c->file = f;
    if (end > f->size)
        end = f->size;
    c->end_block = (end + p->block - 1) / p->block;
    c->next_issue = start / p->block;
    c->cur_block = start / p->block;
    c->cur = -1;
}

/* Takes frames for the next blocks of the range, within the readahead window. */
static void bufpool_readahead(struct bufpool_cursor *c)
{
    struct bufpool *p = c->pool;
    int issue[BUFPOOL_MAX_READAHEAD];
    unsigned n = 0;

    /* Topped up in batches, so consecutive blocks go out as large requests. */
    if (c->nra > p->readahead / 2)
        return;
    pthread_mutex_lock(&p->lock);
    while (c->nra < p->readahead && c->next_issue < c->end_block &&
           c->next_issue <= c->cur_block + p->readahead && p->pinned < p->nframes / 2) {
        bool need;
        int i = bufpool_acquire(p, c->file, c->next_issue, false, &need);

        if (i < 0)
            break;
        c->ra[c->nra] = i;
        c->ra_block[c->nra] = c->next_issue;
        c->nra++;
        c->next_issue++;
        if (need)
            issue[n++] = i;
    }
    pthread_mutex_unlock(&p->lock);
    if (n > 0)
        bufpool_issue(p, issue, n);
}

static void bufpool_cursor_drop_ra(struct bufpool_cursor *c, unsigned k)
{
    memmove(c->ra, c->ra + k, (c->nra - k) * sizeof(c->ra[0]));
    memmove(c->ra_block, c->ra_block + k, (c->nra - k) * sizeof(c->ra_block[0]));
    c->nra -= k;
}

int bufpool_cursor_get(struct bufpool_cursor *c, uint64_t off, const void **ret_ptr,
                       size_t *ret_len)
{
    struct bufpool *p = c->pool;
    uint64_t blk = off / p->block, in = off % p->block;
    struct bufpool_frame *f;

    if (c->error < 0)
        return c->error;
    if (off >= c->file->size) {
        c->error = -ENODATA;
        return c->error;
    }
    if (c->cur < 0 || c->cur_block != blk) {
        unsigned drop = 0;
        bool need = false;
        int i;

        pthread_mutex_lock(&p->lock);
        if (c->cur >= 0)
            bufpool_unpin_locked(p, c->cur);
        c->cur = -1;
        /* Blocks the scan skipped (zone maps) leave the window unused. */
        while (drop < c->nra && c->ra_block[drop] < blk)
            bufpool_unpin_locked(p, c->ra[drop++]);
        pthread_mutex_unlock(&p->lock);
        bufpool_cursor_drop_ra(c, drop);
        if (c->nra > 0 && c->ra_block[0] == blk) {
            i = c->ra[0];
            bufpool_cursor_drop_ra(c, 1);
        } else {
            pthread_mutex_lock(&p->lock);
            i = bufpool_acquire(p, c->file, blk, true, &need);
            pthread_mutex_unlock(&p->lock);
            if (need)
                bufpool_issue(p, &i, 1);
        }
        c->cur = i;
        c->cur_block = blk;
        if (c->next_issue <= blk)
            c->next_issue = blk + 1;
        bufpool_readahead(c);
        pthread_mutex_lock(&p->lock);
        bufpool_wait_ready(p, i);
        if (p->frames[i].state == BP_ERROR)
            c->error = p->frames[i].error;
        pthread_mutex_unlock(&p->lock);
        if (c->error < 0)
            return c->error;
    }
    f = &p->frames[c->cur];
    if (in >= f->len) {
        c->error = -ENODATA;
        return c->error;
    }
    *ret_ptr = p->arena + (uint64_t)c->cur * p->block + in;
    *ret_len = f->len - in;
    return 0;
}

void bufpool_cursor_done(struct bufpool_cursor *c)
{
    struct bufpool *p = c->pool;

    if (p == NULL)
        return;
    /* Reads in flight must be reaped by this thread before their frames go. */
    bufpool_drain(bufpool_my_ring());
    pthread_mutex_lock(&p->lock);
    if (c->cur >= 0)
        bufpool_unpin_locked(p, c->cur);
    for (unsigned k = 0; k < c->nra; k++)
        bufpool_unpin_locked(p, c->ra[k]);
    pthread_mutex_unlock(&p->lock);
    c->cur = -1;
    c->nra = 0;
    c->pool = NULL;
}

void bufpool_stats(struct bufpool *p, struct bufpool_stats *ret)
{
    memset(ret, 0, sizeof(*ret));
    pthread_mutex_lock(&p->lock);
    ret->budget_bytes = p->budget;
    ret->overhead_bytes = sizeof(*p) + (uint64_t)p->nframes * sizeof(*p->frames) +
                          (uint64_t)p->nbuckets * sizeof(*p->buckets) +
                          (uint64_t)p->ghost_cap * sizeof(*p->ghost);
    ret->frames = p->nframes;
    ret->block_bytes = p->block;
    ret->frames_used = p->nframes - p->nfree;
    ret->pinned_frames = p->pinned;
    ret->hits = p->hits;
    ret->misses = p->misses;
    ret->reads = p->reads;
    ret->read_bytes = p->read_bytes;
    ret->read_ns = p->read_ns;
    ret->read_errors = p->read_errors;
    ret->evictions = p->evictions;
    ret->io_uring = p->used_uring;
    pthread_mutex_unlock(&p->lock);
}

bool bufpool_contains(struct bufpool *p, const struct bufpool_file *f, uint64_t blk)
{
    int i;
    bool r;

    pthread_mutex_lock(&p->lock);
    i = bufpool_lookup(p, f->id, blk);
    r = i >= 0 && p->frames[i].state == BP_READY;
    pthread_mutex_unlock(&p->lock);
    return r;
}

void bufpool_arena(const struct bufpool *p, const void **ret_base, uint64_t *ret_len)
{
    *ret_base = p->arena;
    *ret_len = p->budget;
}
