/*
 * store: segment table and segment files. The table is a strmap keyed by
 * segment id, touched only on the loop thread. Every file operation is a
 * job on the worker pool; a job carries a reference to its segment and hands
 * its results back in its done callback. Expected load: tens of assignments
 * per second, each moving up to a few GiB; up to ~100 K segments per node.
 */
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bufpool.h"
#include "fault.h"
#include "log.h"
#include "mlockset.h"
#include "pool.h"
#include "query.h"
#include "shed.h"
#include "strmap.h"
#include "xmalloc.h"
#include "zonemap.h"

#define STORE_DETAIL_MAX 256
/* Bytes read for a header precheck: the fixed header and every descriptor. */
#define STORE_HEADER_MAX (64 + SEGMENT_MAX_COLUMNS * 96)

struct store_seg {
    struct store *st;
    char id[WIRE_ID_MAX + 1];
    char *uri;
    uint64_t row_count, avg_row_size;
    uint64_t mem_request, mem_limit; /* declared in the assignment (kept in .meta); 0: none */
    uint64_t digest;      /* the copy's content digest; 0 until its header is read */
    uint64_t want_digest; /* the digest the assignment registered; 0: unknown */
    enum wire_segment_state state;
    int err; /* FAILED: the negative errno the load ended with (the node maps it) */
    enum wire_reason shed_reason; /* DROPPED: the reason store_shed() was given */
    char detail[STORE_DETAIL_MAX];
    bool hidden;    /* precheck in progress: not yet acknowledged */
    bool release_pending; /* shed: drop the mapping once queries let go */
    bool shedding;        /* shed: its files are being removed */
    bool unloading; /* deletion running: gone for callers */
    unsigned refs;  /* the table holds one while the segment is in it */
    void *base;     /* mapping of the local copy (mmap mode) */
    size_t map_len;
    struct bufpool_file *bf; /* the local copy, opened for O_DIRECT (direct mode) */
    uint64_t file_bytes;
    struct segment_header *hdr;
    struct zonemap *zm;
    void *anon;          /* the SEGMENT_COL_ANON columns, copied to the heap */
    uint64_t anon_bytes;
    uint64_t last_query_ms;
    /* --mlock-budget: query frequency per column, and what is pinned now. */
    double score[SEGMENT_MAX_COLUMNS]; /* decayed counts of queries reading each column */
    uint64_t score_ms;                 /* when score was last decayed */
    uint64_t pin_cols;                 /* bit c: column c's pages are mlock'ed */
    bool pin_meta, pin_zm;             /* header pages, zone maps mlock'ed */
    uint64_t pinned_bytes;             /* whole pages locked, as VmLck counts them */
    store_delete_cb delete_cb;
    void *delete_arg;
};

struct store {
    struct pool *pool;      /* prechecks, unlinks */
    struct pool *load_pool; /* copies, verification, reloads */
    char *root;     /* realpath of the storage root, no trailing slash */
    char *segdir;   /* <data_dir>/segments */
    struct strmap *segs; /* id -> struct store_seg, holding the table's reference */
    uint64_t loads_ok, loads_failed, copied_bytes, deletes;
    uint64_t faults; /* LOADED segments failed by a fault on their mapping */
    store_load_cb load_cb;
    void *load_arg;
    uint64_t in_flight;
    store_admit_fn admit; /* asked before a load starts (admission's disk decision) */
    void *admit_arg;
    /* Kept incrementally (store_acct): visible segments by state, and bytes. */
    uint64_t count_by_state[WIRE_SEG_COUNT_];
    uint64_t mapped_bytes, index_bytes, meta_bytes;
    bool closing; /* store_close(): nothing new is started */
    struct bufpool *bufpool; /* direct I/O mode; NULL: segments are mapped */
    uint64_t mlock_budget; /* 0: nothing is pinned */
    uint64_t page_size;
    uint64_t pinned_bytes;  /* sum over segments */
    uint64_t pin_failures;  /* mlock calls refused (EAGAIN, ENOMEM) */
    bool pin_running;       /* a pin job is on the load pool */
};

enum store_job_kind { STORE_JOB_PRECHECK, STORE_JOB_LOAD, STORE_JOB_RELOAD, STORE_JOB_UNLINK };

struct store_job {
    enum store_job_kind kind;
    struct store *st;
    struct store_seg *seg; /* referenced */
    int src_fd;
    uint64_t src_size;
    uint64_t heap_bytes;      /* the source's SEGMENT_COL_ANON bytes, from the precheck */
    uint64_t disk_avail;      /* free bytes the precheck measured (if disk_err is 0) */
    int disk_err;             /* 0, or the negative errno of that measurement */
    bool loaded;  /* the load or reload succeeded */
    uint64_t digest; /* the source's content digest, from the precheck */
    bool corrupt; /* it failed on the file's content, not on this node */
    store_assign_cb assign_cb;
    void *assign_arg;
    struct store_seg *replaced; /* a FAILED/DROPPED entry this assignment replaces */
    /* results */
    int err; /* outcome of a precheck: 0 or a negative errno (see store_assign_cb) */
    int status; /* of an unlink: 200 or 500 */
    int load_err; /* a failed load's negative errno, kept with its FAILED state */
    char detail[STORE_DETAIL_MAX];
    void *base;
    size_t map_len;
    struct bufpool_file *bf;
    struct segment_header *hdr;
    struct zonemap *zm;
    void *anon;
    uint64_t anon_bytes;
    uint64_t copied;
};

static struct store_seg *store_lookup(const struct store *st, const char *id)
{
    return strmap_get(st->segs, id);
}

static void store_insert(struct store *st, struct store_seg *seg)
{
    strmap_put(st->segs, seg->id, seg);
}

static void store_remove(struct store *st, struct store_seg *seg)
{
    if (strmap_get(st->segs, seg->id) == seg)
        strmap_remove(st->segs, seg->id);
}

static int store_collect_cb(const char *key, void *value, void *arg)
{
    struct store_seg ***p = arg;

    *(*p)++ = value;
    return 0;
}

/* Every entry of the table, in no order; the caller frees the array. */
static size_t store_all(const struct store *st, struct store_seg ***ret)
{
    size_t n = strmap_count(st->segs);
    struct store_seg **arr = xcalloc(n + 1, sizeof(*arr)), **p = arr;

    strmap_foreach(st->segs, store_collect_cb, &p);
    *ret = arr;
    return n;
}

static bool store_visible(const struct store_seg *seg);

/*
 * Heap a segment's entry holds besides its index: the entry, its URI and,
 * once loaded, its decoded header. Exact, so direct mode can charge it.
 */
static uint64_t store_seg_meta_bytes(const struct store_seg *seg)
{
    return sizeof(*seg) + strlen(seg->uri) + 1 + (seg->hdr != NULL ? sizeof(*seg->hdr) : 0);
}

/*
 * A LOADED segment's observed footprint: what store_acct counts for it (the
 * mapping less its anonymous columns' pages, the heap index with those
 * columns, and the entry's own heap). 0 in any other state.
 */
static uint64_t store_seg_footprint(const struct store_seg *seg)
{
    if (seg->state != WIRE_SEG_LOADED)
        return 0;
    return (seg->base != NULL ? seg->map_len - seg->anon_bytes : 0) +
           (seg->zm != NULL ? zonemap_bytes(seg->zm) : 0) + seg->anon_bytes +
           store_seg_meta_bytes(seg);
}

/*
 * Adds (sign +1) or removes (-1) a segment's share of the totals. Called on
 * both sides of every change to its visibility, state or mapping, so that
 * store_totals() is O(1) on the assignment path.
 */
static void store_acct(struct store *st, const struct store_seg *seg, int sign)
{
    uint64_t mapped, index, meta;

    if (!store_visible(seg))
        return;
    /* The anonymous columns' file pages are never read again: the heap copy counts. */
    mapped = seg->base != NULL ? seg->map_len - seg->anon_bytes : 0;
    index = (seg->zm != NULL ? zonemap_bytes(seg->zm) : 0) + seg->anon_bytes;
    meta = store_seg_meta_bytes(seg);
    if (sign > 0) {
        st->count_by_state[seg->state]++;
        st->mapped_bytes += mapped;
        st->index_bytes += index;
        st->meta_bytes += meta;
    } else {
        st->count_by_state[seg->state]--;
        st->mapped_bytes -= mapped;
        st->index_bytes -= index;
        st->meta_bytes -= meta;
    }
}

static struct store_seg *store_seg_new(struct store *st, const char *id, const char *uri,
                                       uint64_t rows, uint64_t avg_row_size)
{
    struct store_seg *seg = xcalloc(1, sizeof(*seg));

    seg->st = st;
    snprintf(seg->id, sizeof(seg->id), "%s", id);
    seg->uri = xstrdup(uri);
    seg->row_count = rows;
    seg->avg_row_size = avg_row_size;
    seg->state = WIRE_SEG_LOADING;
    seg->refs = 1;
    return seg;
}

/* Drops the mapping and the index (the segment is no longer served). */
static void store_seg_release_data(struct store_seg *seg)
{
    /* munmap unlocks what was pinned; the budget gets it back. */
    seg->st->pinned_bytes -= seg->pinned_bytes;
    seg->pinned_bytes = 0;
    seg->pin_cols = 0;
    seg->pin_meta = seg->pin_zm = false;
    if (seg->base != NULL)
        munmap(seg->base, seg->map_len);
    seg->base = NULL;
    seg->map_len = 0;
    bufpool_file_close(seg->bf);
    seg->bf = NULL;
    zonemap_free(seg->zm);
    seg->zm = NULL;
    free(seg->hdr);
    seg->hdr = NULL;
    free(seg->anon);
    seg->anon = NULL;
    seg->anon_bytes = 0;
}

/*
 * A shed segment's memory goes as soon as only the table holds it. (While the
 * entry is out of the table, the last reference may be a query's or a
 * replacing assignment's: the memory then goes with it, or here once the
 * entry is back in the table.)
 */
static void store_seg_release_if_idle(struct store_seg *seg)
{
    if (seg->refs == 1 && seg->release_pending && store_lookup(seg->st, seg->id) == seg) {
        seg->release_pending = false;
        store_acct(seg->st, seg, -1);
        store_seg_release_data(seg);
        store_acct(seg->st, seg, +1);
    }
}

void store_seg_unref(struct store_seg *seg)
{
    if (seg == NULL)
        return;
    if (seg->refs == 0)
        fatal("store_refcount", "id=%s refs=0", seg->id);
    if (--seg->refs > 0) {
        store_seg_release_if_idle(seg);
        return;
    }
    store_seg_release_data(seg);
    free(seg->uri);
    free(seg);
}

static struct store_seg *store_seg_ref(struct store_seg *seg)
{
    seg->refs++;
    return seg;
}

static char *store_path(const struct store *st, const char *id, const char *suffix)
{
    return xasprintf("%s/%s%s", st->segdir, id, suffix);
}

static void store_set_detail(struct store_job *job, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void store_set_detail(struct store_job *job, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(job->detail, sizeof(job->detail), fmt, ap);
    va_end(ap);
}

/* fsync(2) of a directory, so that renames and unlinks in it are durable. */
static int store_sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int r = 0;

    if (fd < 0)
        return -errno;
    if (fsync(fd) < 0)
        r = -errno;
    close(fd);
    return r;
}

/*
 * A source that cannot be opened is -EINVAL (the request names no valid
 * segment), unless this node is out of descriptors or memory: then the
 * errno itself, which the node answers "go elsewhere" (store_assign_cb).
 */
static void store_precheck_open_failed(struct store_job *job, const char *path, int err)
{
    if (err == EMFILE || err == ENFILE || err == ENOMEM || err == EAGAIN) {
        job->err = -err;
        store_set_detail(job, "this node cannot open %s now: %s", path, strerror(err));
        return;
    }
    store_set_detail(job, "uri: cannot open %s: %s", path, strerror(err));
}

/*
 * Worker: opens the source and checks, on the opened file itself, that it
 * lies inside the storage root, is a regular file and has a valid header.
 */
static void store_precheck_work(void *arg)
{
    struct store_job *job = arg;
    struct store *st = job->st;
    const char *path = job->seg->uri + strlen("file://");
    char link[64], real[PATH_MAX], detail[200];
    unsigned char *buf = NULL;
    size_t rootlen = strlen(st->root);
    struct statvfs vfs;
    struct stat sb;
    ssize_t n;
    int pfd, fd, r;

    job->err = -EINVAL; /* the file or the request: 422 SEGMENT_INVALID */
    /*
     * O_PATH first: nothing outside the storage root and nothing but a
     * regular file is ever really opened (a device or a FIFO has side
     * effects on open). Only then is the same inode opened for reading.
     */
    pfd = open(path, O_PATH | O_CLOEXEC);
    if (pfd < 0) {
        store_precheck_open_failed(job, path, errno);
        return;
    }
    snprintf(link, sizeof(link), "/proc/self/fd/%d", pfd);
    n = readlink(link, real, sizeof(real) - 1);
    if (n < 0) {
        store_set_detail(job, "uri: cannot resolve %s: %s", path, strerror(errno));
        close(pfd);
        return;
    }
    real[n] = '\0';
    if (strncmp(real, st->root, rootlen) != 0 || real[rootlen] != '/') {
        store_set_detail(job, "uri: %s resolves to %s, outside the storage root %s", path, real,
                         st->root);
        close(pfd);
        return;
    }
    if (fstat(pfd, &sb) < 0) {
        store_set_detail(job, "uri: cannot stat %s: %s", path, strerror(errno));
        close(pfd);
        return;
    }
    if (!S_ISREG(sb.st_mode)) {
        store_set_detail(job, "uri: %s is not a regular file", path);
        close(pfd);
        return;
    }
    fd = open(link, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        store_precheck_open_failed(job, path, errno);
    close(pfd);
    if (fd < 0)
        return;
    if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
        store_set_detail(job, "uri: %s changed while it was checked", path);
        goto fail;
    }
    buf = xmalloc(STORE_HEADER_MAX);
    n = pread(fd, buf, STORE_HEADER_MAX, 0);
    if (n < 0) {
        store_set_detail(job, "uri: cannot read %s: %s", path, strerror(errno));
        goto fail;
    }
    {
        struct segment_header hdr;
        r = segment_parse_header(buf, (size_t)n, (uint64_t)sb.st_size, &hdr, detail,
                                 sizeof(detail));
        if (r < 0) {
            store_set_detail(job, "segment file %s: %s (%s)", path, detail,
                             segment_error_name(r));
            goto fail;
        }
        if (hdr.row_count != job->seg->row_count) {
            store_set_detail(job, "row_count: the request says %llu, the file says %llu",
                             (unsigned long long)job->seg->row_count,
                             (unsigned long long)hdr.row_count);
            goto fail;
        }
        job->digest = segment_digest(&hdr);
        job->heap_bytes = 0;
        for (unsigned i = 0; i < hdr.column_count; i++)
            if (hdr.columns[i].flags & SEGMENT_COL_ANON)
                job->heap_bytes += hdr.columns[i].length;
        if (job->seg->want_digest != 0 && job->digest != job->seg->want_digest) {
            store_set_detail(job,
                             "digest: the file's is %016llx, the registered one %016llx (the "
                             "file changed since it was registered)",
                             (unsigned long long)job->digest,
                             (unsigned long long)job->seg->want_digest);
            goto fail;
        }
    }
    /*
     * Measured here, judged on the loop thread by admission against what
     * loads in flight were promised (store_admit_fn); a failure is passed on.
     */
    if (statvfs(st->segdir, &vfs) < 0)
        job->disk_err = -errno;
    else
        job->disk_avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
    free(buf);
    job->src_fd = fd;
    job->src_size = (uint64_t)sb.st_size;
    job->err = 0;
    return;
fail:
    free(buf);
    close(fd);
}

/* Copies src to dst from offset 0, in the kernel where it can. */
static int store_copy(int src, int dst, uint64_t size, uint64_t *ret_copied)
{
    uint64_t done = 0;
    char *buf = NULL;
    int r = 0;

    while (done < size) {
        ssize_t n = copy_file_range(src, NULL, dst, NULL, size - done, 0);
        if (n > 0) {
            done += (uint64_t)n;
            continue;
        }
        if (n == 0)
            break;
        if (errno == EINTR)
            continue;
        if (errno != EXDEV && errno != ENOSYS && errno != EINVAL && errno != EOPNOTSUPP) {
            r = -errno;
            goto out;
        }
        /* Fall back to read/write for the rest. */
        buf = xmalloc(1 << 20);
        if (lseek(src, (off_t)done, SEEK_SET) < 0 || lseek(dst, (off_t)done, SEEK_SET) < 0) {
            r = -errno;
            goto out;
        }
        while (done < size) {
            ssize_t got = read(src, buf, 1 << 20);
            if (got < 0 && errno == EINTR)
                continue;
            if (got <= 0) {
                r = got < 0 ? -errno : -EIO;
                goto out;
            }
            for (ssize_t off = 0; off < got;) {
                ssize_t w = write(dst, buf + off, (size_t)(got - off));
                if (w < 0 && errno == EINTR)
                    continue;
                if (w < 0) {
                    r = -errno;
                    goto out;
                }
                off += w;
            }
            done += (uint64_t)got;
        }
    }
    if (done != size)
        r = -EIO; /* the source shrank under us */
out:
    free(buf);
    *ret_copied = done;
    return r;
}

/*
 * Copies the columns flagged SEGMENT_COL_ANON into one heap block, as an
 * engine loads a vector or inverted index into RAM: every page is written,
 * so the memory is anonymous and resident, charged to the node's cgroup.
 */
/* Copies the anonymous-memory columns to the heap. 0, or -ENOMEM. */
static int store_load_anon(struct store_job *job)
{
    const struct segment_header *hdr = job->hdr;
    uint64_t total = 0, off = 0;

    for (unsigned i = 0; i < hdr->column_count; i++)
        if (hdr->columns[i].flags & SEGMENT_COL_ANON)
            total += hdr->columns[i].length;
    if (total == 0)
        return 0;
    job->anon = total <= SIZE_MAX ? malloc((size_t)total) : NULL;
    if (job->anon == NULL) {
        job->load_err = -ENOMEM;
        store_set_detail(job, "cannot allocate %llu bytes for the in-memory columns",
                         (unsigned long long)total);
        return -ENOMEM;
    }
    for (unsigned i = 0; i < hdr->column_count; i++) {
        const struct segment_column *c = &hdr->columns[i];
        if (!(c->flags & SEGMENT_COL_ANON))
            continue;
        memcpy((char *)job->anon + off, (const char *)job->base + c->offset, c->length);
        off += c->length;
    }
    job->anon_bytes = total;
    return 0;
}

/*
 * Says where a read of a segment's mapping faulted: the byte offset, and the
 * column holding it when hdr is known.
 */
static void store_fault_describe(char *out, size_t out_len, const struct segment_header *hdr,
                                 const void *base, size_t map_len, const void *addr)
{
    uint64_t off = (uint64_t)((const char *)addr - (const char *)base);
    const char *col = NULL;

    for (unsigned i = 0; hdr != NULL && i < hdr->column_count; i++)
        if (off >= hdr->columns[i].offset && off < hdr->columns[i].offset + hdr->columns[i].length)
            col = hdr->columns[i].name;
    snprintf(out, out_len,
             "reading the local copy faulted (SIGBUS) at byte %llu of %zu%s%s%s: the file shrank "
             "underneath the node or its disk failed",
             (unsigned long long)off, map_len, col != NULL ? ", column \"" : "",
             col != NULL ? col : "", col != NULL ? "\"" : "");
}

/*
 * Every read of a fresh mapping: header, column checksums, the heap columns
 * and the zone maps. Fills job->base/map_len/hdr/anon/zm, or sets the detail.
 */
static int store_check_mapping(struct store_job *job, void *base, size_t size,
                               struct segment_header *hdr)
{
    char detail[200];
    int r;

    r = segment_parse_header(base, size, size, hdr, detail, sizeof(detail));
    if (r == 0)
        r = segment_verify(base, hdr, detail, sizeof(detail));
    if (r < 0) {
        job->load_err = r;
        job->corrupt = true;
        store_set_detail(job, "segment %s: %s (%s)", job->seg->id, detail, segment_error_name(r));
        return r;
    }
    job->hdr = hdr;
    job->base = base;
    job->map_len = size;
    r = store_load_anon(job);
    if (r < 0) {
        job->hdr = NULL;
        job->base = NULL;
        job->map_len = 0;
        return r;
    }
    job->zm = zonemap_build_ex(base, hdr, job->st->mlock_budget > 0);
    return 0;
}

/*
 * store_check_mapping under a fault guard. A SIGBUS while reading fails the
 * load like a corrupt copy, with -EIO (this node's copy is bad, not the
 * source: no format error); what it had built is freed, except a zone map
 * being built at that moment (a rare, bounded leak).
 */
static int store_check_guarded(struct store_job *job, void *base, size_t size,
                               struct segment_header *hdr)
{
    struct fault_guard g;
    int r;

    fault_guard_push(&g, base, size);
    if (sigsetjmp(g.env, 1) != 0) {
        char what[STORE_DETAIL_MAX - 64];

        store_fault_describe(what, sizeof(what), job->hdr, base, size, g.addr);
        store_set_detail(job, "segment %s: %s", job->seg->id, what);
        job->load_err = -EIO;
        job->corrupt = true;
        job->hdr = NULL;
        job->base = NULL;
        job->map_len = 0;
        job->zm = NULL;
        free(job->anon);
        job->anon = NULL;
        job->anon_bytes = 0;
        return -EIO;
    }
    r = store_check_mapping(job, base, size, hdr);
    fault_guard_pop(&g);
    return r;
}

/*
 * Maps a local copy and verifies it: header against its real size, then
 * every column checksum; then copies the heap columns and builds the zone
 * maps. A SIGBUS while reading (the copy shrank, or a disk error) fails the
 * load like a corrupt copy, with -EIO: this node's copy is bad, not the
 * source. Fills job->base/map_len/hdr/zm or sets the detail.
 */
static int store_map_verify(struct store_job *job, const char *path)
{
    struct segment_header *hdr = NULL;
    struct stat sb;
    void *base = MAP_FAILED;
    int fd, r;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &sb) < 0) {
        r = -errno;
        job->load_err = r;
        store_set_detail(job, "cannot open local copy %s: %s", path, strerror(errno));
        goto fail;
    }
    if (sb.st_size < 64) {
        r = -SEGMENT_ETRUNCATED;
        job->load_err = r;
        job->corrupt = true;
        store_set_detail(job, "local copy %s: %lld bytes is shorter than a header", path,
                         (long long)sb.st_size);
        goto fail;
    }
    base = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED) {
        r = -errno;
        job->load_err = r;
        store_set_detail(job, "cannot map %s: %s", path, strerror(errno));
        goto fail;
    }
    hdr = xmalloc(sizeof(*hdr));
    r = store_check_guarded(job, base, (size_t)sb.st_size, hdr);
    if (r < 0)
        goto fail;
    close(fd);
    return 0;
fail:
    if (base != MAP_FAILED)
        munmap(base, (size_t)sb.st_size);
    if (fd >= 0)
        close(fd);
    free(hdr);
    return r;
}

static int store_write_meta(const struct store *st, const struct store_seg *seg)
{
    char *tmp = store_path(st, seg->id, ".meta.tmp");
    char *path = store_path(st, seg->id, ".meta");
    FILE *f = fopen(tmp, "we");
    int r = 0;

    if (f == NULL) {
        r = -errno;
        goto out;
    }
    fprintf(f, "uri=%s\nrow_count=%llu\navg_row_size=%llu\n", seg->uri,
            (unsigned long long)seg->row_count, (unsigned long long)seg->avg_row_size);
    /* Older builds skip lines they do not know. */
    if (seg->mem_request != 0 || seg->mem_limit != 0)
        fprintf(f, "mem_request=%llu\nmem_limit=%llu\n", (unsigned long long)seg->mem_request,
                (unsigned long long)seg->mem_limit);
    /* A torn .meta after a power loss fails to parse, and its segment is reloaded no more. */
    if (fflush(f) != 0)
        r = -errno;
    if (fclose(f) != 0 && r == 0)
        r = -errno;
    if (r == 0 && rename(tmp, path) < 0)
        r = -errno;
    if (r < 0)
        unlink(tmp);
out:
    free(tmp);
    free(path);
    return r;
}

/*
 * Direct mode: a verified, indexed copy stops being mapped and is opened for
 * O_DIRECT reads through the pool instead. The pages its copy and its
 * verification left in the page cache (the local copy's and the source's)
 * are written back and dropped, so what the node holds in memory is its pool
 * and its heaps, to the byte. Returns 0 (also in mmap mode, doing nothing) or
 * a negated errno with the detail set.
 */
static int store_direct_open(struct store_job *job, const char *path)
{
    int fd, r;

    if (job->st->bufpool == NULL)
        return 0;
    munmap(job->base, job->map_len);
    job->base = NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fdatasync(fd);
        (void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        close(fd);
    }
    if (job->src_fd >= 0)
        (void)posix_fadvise(job->src_fd, 0, 0, POSIX_FADV_DONTNEED);
    r = bufpool_file_open(job->st->bufpool, path, &job->bf);
    if (r < 0) {
        job->load_err = r;
        store_set_detail(job, "cannot open %s for direct I/O (--io=direct): %s", path,
                         strerror(-r));
    }
    return r;
}

/* Undoes a job's results after a failure past store_map_verify. */
static void store_job_drop_results(struct store_job *job)
{
    if (job->base != NULL)
        munmap(job->base, job->map_len);
    job->base = NULL;
    bufpool_file_close(job->bf);
    job->bf = NULL;
    zonemap_free(job->zm);
    job->zm = NULL;
    free(job->hdr);
    job->hdr = NULL;
    free(job->anon);
    job->anon = NULL;
    job->anon_bytes = 0;
}

static void store_load_work(void *arg)
{
    struct store_job *job = arg;
    struct store *st = job->st;
    char *tmp = store_path(st, job->seg->id, ".seg.tmp");
    char *path = store_path(st, job->seg->id, ".seg");
    int out = -1, r;

    out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0) {
        job->load_err = -errno;
        store_set_detail(job, "cannot create %s: %s", tmp, strerror(errno));
        goto fail;
    }
    /*
     * No fsync on the load path: a segment is served only after its column
     * checksums verify, and every committed copy is verified again when the
     * node starts, so a copy torn by a power loss is found and removed, never
     * served. Against kill -9 the page cache survives anyway.
     */
    r = store_copy(job->src_fd, out, job->src_size, &job->copied);
    if (r < 0) {
        job->load_err = r;
        if (r == -EIO && job->copied < job->src_size)
            store_set_detail(job, "copying %s into %s: the source ended after %llu of %llu bytes "
                             "(changed while copying?)", job->seg->uri, tmp,
                             (unsigned long long)job->copied, (unsigned long long)job->src_size);
        else
            store_set_detail(job, "copying %s into %s: %s", job->seg->uri, tmp, strerror(-r));
        goto fail;
    }
    close(out);
    out = -1;
    if (store_map_verify(job, tmp) < 0)
        goto fail;
    r = store_write_meta(st, job->seg);
    if (r == 0 && rename(tmp, path) < 0)
        r = -errno;
    if (r < 0) {
        job->load_err = r;
        store_set_detail(job, "committing %s: %s", path, strerror(-r));
        goto fail;
    }
    if (store_direct_open(job, path) < 0)
        goto fail;
    job->load_err = 0;
    job->loaded = true;
    goto out;
fail:
    if (out >= 0)
        close(out);
    store_job_drop_results(job);
    unlink(tmp);
    {
        char *meta = store_path(st, job->seg->id, ".meta");
        unlink(meta);
        free(meta);
    }
    unlink(path);
out:
    close(job->src_fd);
    job->src_fd = -1;
    free(tmp);
    free(path);
}

static void store_reload_work(void *arg)
{
    struct store_job *job = arg;
    char *path = store_path(job->st, job->seg->id, ".seg");

    if (store_map_verify(job, path) == 0 && store_direct_open(job, path) == 0) {
        job->load_err = 0;
        job->loaded = true;
    } else if (job->hdr != NULL) {
        store_job_drop_results(job); /* verified, but direct I/O refused the copy */
    } else if (job->corrupt) {
        /*
         * A committed copy that no longer verifies is not served again. (One
         * that failed on this node, out of memory or descriptors, stays on
         * disk: FAILED now, and the coordinator decides.)
         */
        char *meta = store_path(job->st, job->seg->id, ".meta");
        unlink(path);
        unlink(meta);
        store_sync_dir(job->st->segdir);
        free(meta);
    }
    free(path);
}

static void store_unlink_work(void *arg)
{
    struct store_job *job = arg;
    char *path = store_path(job->st, job->seg->id, ".seg");
    char *meta = store_path(job->st, job->seg->id, ".meta");
    int r = 0;

    /* The .seg goes first: a .meta alone is cleaned up at the next start. */
    if (unlink(path) < 0 && errno != ENOENT)
        r = -errno;
    if (unlink(meta) < 0 && errno != ENOENT && r == 0)
        r = -errno;
    if (r == 0)
        r = store_sync_dir(job->st->segdir);
    job->status = r == 0 ? 200 : 500;
    if (r < 0)
        store_set_detail(job, "removing %s: %s", path, strerror(-r));
    free(path);
    free(meta);
}

static struct store_job *store_job_new(struct store *st, enum store_job_kind kind,
                                       struct store_seg *seg)
{
    struct store_job *job = xcalloc(1, sizeof(*job));

    job->kind = kind;
    job->st = st;
    job->seg = store_seg_ref(seg);
    job->src_fd = -1;
    return job;
}

static void store_job_free(struct store_job *job)
{
    bufpool_file_close(job->bf);
    if (job->src_fd >= 0)
        close(job->src_fd);
    store_seg_unref(job->seg);
    free(job);
}

static void store_unlink_done(void *arg);

/* Starts removing a segment's files; it leaves the table when that is done. */
static void store_start_unlink(struct store *st, struct store_seg *seg)
{
    store_acct(st, seg, -1);
    seg->unloading = true;
    pool_submit(st->pool, store_unlink_work, store_unlink_done, store_job_new(st, STORE_JOB_UNLINK,
                                                                              seg));
}

static void store_unlink_done(void *arg)
{
    struct store_job *job = arg;
    struct store_seg *seg = job->seg;
    struct store *st = job->st;

    if (job->status == 200) {
        log_info("segment_unloaded", "id=%s", log_q(seg->id));
        st->deletes++;
    } else {
        log_warn("segment_unload_failed", "id=%s detail=%s", log_q(seg->id), log_q(job->detail));
    }
    if (seg->delete_cb != NULL)
        seg->delete_cb(job->status, job->detail, seg->delete_arg);
    seg->delete_cb = NULL;
    store_remove(st, seg);
    store_seg_unref(seg); /* the table's reference */
    store_job_free(job);
}

/* Installs a load's results, or records its failure. */
static void store_finish_load(struct store_job *job)
{
    struct store_seg *seg = job->seg;
    struct store *st = job->st;

    st->in_flight--;
    store_acct(st, seg, -1);
    if (job->loaded) {
        seg->base = job->base;
        seg->map_len = job->map_len;
        seg->bf = job->bf;
        job->bf = NULL;
        seg->file_bytes = job->map_len;
        seg->hdr = job->hdr;
        seg->zm = job->zm;
        seg->anon = job->anon;
        seg->anon_bytes = job->anon_bytes;
        seg->state = WIRE_SEG_LOADED;
        seg->digest = segment_digest(job->hdr);
        seg->err = 0;
        seg->detail[0] = '\0';
        st->loads_ok++;
        st->copied_bytes += job->copied;
        log_info("segment_state", "id=%s transition=\"LOADING -> LOADED\" bytes=%zu index_bytes=%zu",
                 log_q(seg->id), seg->map_len, zonemap_bytes(seg->zm));
    } else {
        seg->state = WIRE_SEG_FAILED;
        /* A load that failed without an errno of its own still fails. */
        seg->err = job->load_err < 0 ? job->load_err : -EIO;
        snprintf(seg->detail, sizeof(seg->detail), "%s", job->detail);
        st->loads_failed++;
        log_warn("segment_state", "id=%s transition=\"LOADING -> FAILED\" err=%d detail=%s",
                 log_q(seg->id), seg->err, log_q(job->detail));
    }
    store_acct(st, seg, +1);
    if (st->load_cb != NULL)
        st->load_cb(seg->id, seg->state == WIRE_SEG_LOADED, seg->file_bytes,
                    (seg->zm != NULL ? zonemap_bytes(seg->zm) : 0) + seg->anon_bytes,
                    st->load_arg);
    /* A deletion that arrived while loading runs now (or is refused at shutdown). */
    if (seg->delete_cb != NULL && st->closing) {
        seg->delete_cb(503, "the node is shutting down; retry", seg->delete_arg);
        seg->delete_cb = NULL;
        store_acct(st, seg, +1); /* visible again: the deletion did not happen */
    } else if (seg->delete_cb != NULL) {
        store_start_unlink(st, seg);
    }
}

static void store_load_done(void *arg)
{
    struct store_job *job = arg;

    store_finish_load(job);
    store_job_free(job);
}

/*
 * Asks admission whether the copy may take its room on the local disk and
 * its in-memory columns their heap, on the loop thread, so that concurrent
 * prechecks (a batch) each count what was promised to the ones accepted
 * before them. -ENOSPC or -ENOMEM with its detail.
 */
static void store_admit_disk(struct store *st, struct store_job *job)
{
    char detail[STORE_DETAIL_MAX];
    int r;

    if (job->err != 0 || st->admit == NULL)
        return;
    detail[0] = '\0';
    r = st->admit(st->admit_arg, job->seg->id, job->src_size, job->heap_bytes, job->disk_err,
                  job->disk_avail, job->assign_arg, detail, sizeof(detail));
    if (r == -ENOSPC) {
        job->err = r;
        store_set_detail(job, "%s (data directory %s)", detail, st->segdir);
    } else if (r < 0) {
        job->err = r;
        store_set_detail(job, "%s", detail);
    }
}

static void store_precheck_done(void *arg)
{
    struct store_job *job = arg;
    struct store_seg *seg = job->seg;
    struct store *st = job->st;

    if (job->err == 0 && st->closing) {
        job->err = -ESHUTDOWN;
        store_set_detail(job, "the node is shutting down");
    }
    /* Last: once admission holds the disk for it, the load starts. */
    store_admit_disk(st, job);
    if (job->err != 0) {
        /* Refused: nothing was acknowledged, so nothing remains; a replaced entry returns. */
        st->in_flight--;
        store_remove(st, seg);
        store_seg_unref(seg);
        if (job->replaced != NULL) {
            store_insert(st, job->replaced);
            store_acct(st, job->replaced, +1);
            store_seg_release_if_idle(job->replaced); /* a query may have let go meanwhile */
            job->replaced = NULL;
        }
        job->assign_cb(job->err, job->detail, job->assign_arg);
        log_info("assign_refused", "id=%s error=%s detail=%s", log_q(seg->id),
                 log_q(strerror(-job->err)), log_q(job->detail));
        store_job_free(job);
        return;
    }
    seg->hidden = false;
    seg->digest = job->digest;
    store_acct(st, seg, +1);
    if (job->replaced != NULL) {
        store_seg_unref(job->replaced);
        job->replaced = NULL;
    }
    job->assign_cb(0, "", job->assign_arg);
    log_info("segment_state", "id=%s transition=\"NEW -> LOADING\" uri=%s", log_q(seg->id),
             log_q(seg->uri));
    job->kind = STORE_JOB_LOAD;
    pool_submit(st->load_pool, store_load_work, store_load_done, job);
}

void store_assign(struct store *st, const struct wire_assign_request *req, store_assign_cb cb,
                  void *arg)
{
    struct store_seg *seg = store_lookup(st, req->segment_id), *replaced = NULL;
    struct store_job *job;
    char detail[STORE_DETAIL_MAX];

    if (wire_uri_has_dot_component(req->uri)) {
        snprintf(detail, sizeof(detail),
                 "uri: '.' and '..' components are refused: the path must stay inside the "
                 "storage root %s", st->root);
        cb(-EINVAL, detail, arg);
        return;
    }
    if (seg != NULL) {
        if (seg->hidden || seg->unloading || seg->delete_cb != NULL || seg->shedding) {
            snprintf(detail, sizeof(detail), "segment_id: \"%s\" is being %s; retry later",
                     req->segment_id, seg->hidden ? "checked" : "unloaded");
            cb(-EBUSY, detail, arg);
            return;
        }
        if (seg->state == WIRE_SEG_LOADING || seg->state == WIRE_SEG_LOADED) {
            /* A retry must be the same assignment; anything else is a conflict. */
            const char *field = strcmp(seg->uri, req->uri) != 0         ? "uri"
                                : seg->row_count != req->row_count       ? "row_count"
                                : seg->avg_row_size != req->avg_row_size ? "avg_row_size"
                                : req->digest != 0 && seg->digest != 0 &&
                                        seg->digest != req->digest
                                    ? "digest"
                                    : NULL;
            if (field == NULL) {
                cb(0, "already assigned", arg);
            } else {
                snprintf(detail, sizeof(detail),
                         "%s: segment \"%s\" is already held with another %s", field,
                         req->segment_id, field);
                cb(-EEXIST, detail, arg);
            }
            return;
        }
        /*
         * FAILED or DROPPED: the new assignment replaces the old entry if its
         * precheck succeeds; if it is refused, the old entry comes back.
         */
        store_acct(st, seg, -1);
        store_remove(st, seg);
        replaced = seg;
    }
    seg = store_seg_new(st, req->segment_id, req->uri, req->row_count, req->avg_row_size);
    seg->want_digest = req->digest;
    seg->mem_request = req->mem_request_bytes;
    seg->mem_limit = req->mem_limit_bytes;
    seg->hidden = true;
    store_insert(st, seg);
    st->in_flight++;
    job = store_job_new(st, STORE_JOB_PRECHECK, seg);
    job->assign_cb = cb;
    job->assign_arg = arg;
    job->replaced = replaced;
    pool_submit(st->pool, store_precheck_work, store_precheck_done, job);
}

void store_close(struct store *st)
{
    if (st != NULL)
        st->closing = true;
}

void store_delete(struct store *st, const char *id, store_delete_cb cb, void *arg)
{
    struct store_seg *seg = store_lookup(st, id);
    char detail[STORE_DETAIL_MAX];

    if (seg == NULL) {
        snprintf(detail, sizeof(detail), "segment \"%s\" is not on this node", id);
        cb(404, detail, arg);
        return;
    }
    if (seg->hidden) {
        /* An assignment of it is being checked (and may put back an older entry). */
        snprintf(detail, sizeof(detail), "segment \"%s\" is being checked; retry later", id);
        cb(409, detail, arg);
        return;
    }
    if (seg->unloading || seg->delete_cb != NULL) {
        snprintf(detail, sizeof(detail), "segment \"%s\" is already being unloaded", id);
        cb(409, detail, arg);
        return;
    }
    store_acct(st, seg, -1);
    seg->delete_cb = cb;
    seg->delete_arg = arg;
    log_info("segment_state", "id=%s transition=\"%s -> UNLOADING\"", log_q(id),
             wire_segment_state_name(seg->state));
    /*
     * A loading segment is unloaded when its load finishes; a shedding one
     * when the shed's unlink has run, so that no second unlink of the same
     * paths can still be pending once a new copy is written.
     */
    if (seg->state != WIRE_SEG_LOADING && !seg->shedding)
        store_start_unlink(st, seg);
}

struct store_seg *store_get_loaded(struct store *st, const char *id, char *err, size_t err_len)
{
    struct store_seg *seg = store_lookup(st, id);

    if (seg == NULL || seg->hidden || seg->unloading || seg->delete_cb != NULL) {
        snprintf(err, err_len, "segment \"%s\" is not on this node", id);
        return NULL;
    }
    if (seg->state != WIRE_SEG_LOADED) {
        snprintf(err, err_len, "segment \"%s\" is %s, not LOADED", id,
                 wire_segment_state_name(seg->state));
        return NULL;
    }
    return store_seg_ref(seg);
}

const void *store_seg_base(const struct store_seg *seg)
{
    return seg->base;
}

void store_seg_source(const struct store_seg *seg, struct query_source *ret)
{
    ret->base = seg->base;
    ret->pool = seg->st->bufpool;
    ret->file = seg->bf;
}

const char *store_seg_id(const struct store_seg *seg)
{
    return seg->id;
}

const struct segment_header *store_seg_header(const struct store_seg *seg)
{
    return seg->hdr;
}

const struct zonemap *store_seg_index(const struct store_seg *seg)
{
    return seg->zm;
}

void store_seg_touch(struct store_seg *seg, uint64_t now_unix_ms)
{
    seg->last_query_ms = now_unix_ms;
}

static bool store_visible(const struct store_seg *seg)
{
    return !seg->hidden && !seg->unloading && seg->delete_cb == NULL;
}

static int store_cmp_status(const void *a, const void *b)
{
    return strcmp(((const struct wire_segment_status *)a)->segment_id,
                  ((const struct wire_segment_status *)b)->segment_id);
}

void store_status(const struct store *st, store_reason_fn reason_of, struct wire_node_status *out)
{
    struct store_seg **all;
    size_t count = store_all(st, &all), n = 0;

    out->segments = xcalloc(count, sizeof(*out->segments));
    out->mapped_bytes = 0;
    out->index_bytes = 0;
    for (size_t k = 0; k < count; k++) {
        const struct store_seg *seg = all[k];
        struct wire_segment_status *s;

        if (!store_visible(seg))
            continue;
        s = &out->segments[n++];
        snprintf(s->segment_id, sizeof(s->segment_id), "%s", seg->id);
        s->state = seg->state;
        /* A shed names its own reason; every other state's is its errno's (0: none). */
        if (seg->state == WIRE_SEG_DROPPED)
            s->reason = seg->shed_reason;
        else
            s->reason = reason_of(seg->state == WIRE_SEG_FAILED ? seg->err : 0);
        snprintf(s->detail, sizeof(s->detail), "%s", seg->detail);
        s->row_count = seg->row_count;
        s->avg_row_size = seg->avg_row_size;
        s->file_bytes = seg->file_bytes;
        s->index_bytes = (seg->zm != NULL ? zonemap_bytes(seg->zm) : 0) + seg->anon_bytes;
        s->uri = xstrdup(seg->uri);
        s->last_query_unix_ms = seg->last_query_ms;
        s->digest = seg->digest;
        s->footprint_bytes = store_seg_footprint(seg);
        s->mem_request_bytes = seg->mem_request;
        s->mem_limit_bytes = seg->mem_limit;
        s->over_limit = shed_over_limit(s->footprint_bytes, seg->mem_limit);
        out->mapped_bytes += seg->base != NULL ? seg->map_len - seg->anon_bytes : 0;
        out->index_bytes += s->index_bytes;
    }
    free(all);
    out->n_segments = n;
    qsort(out->segments, n, sizeof(*out->segments), store_cmp_status);
}

void store_totals(const struct store *st, struct store_totals *out)
{
    memset(out, 0, sizeof(*out));
    memcpy(out->segments, st->count_by_state, sizeof(out->segments));
    out->mapped_bytes = st->mapped_bytes;
    out->index_bytes = st->index_bytes;
    out->meta_bytes = st->meta_bytes;
    out->loads_ok_total = st->loads_ok;
    out->loads_failed_total = st->loads_failed;
    out->copied_bytes_total = st->copied_bytes;
    out->deletes_total = st->deletes;
    out->faults_total = st->faults;
    out->pinned_bytes = st->pinned_bytes;
    out->pin_failures_total = st->pin_failures;
    out->loads_in_flight = st->in_flight;
}

void store_set_admit(struct store *st, store_admit_fn fn, void *arg)
{
    st->admit = fn;
    st->admit_arg = arg;
}

void store_set_load_cb(struct store *st, store_load_cb cb, void *arg)
{
    st->load_cb = cb;
    st->load_arg = arg;
}

size_t store_loaded_refs(struct store *st, struct store_seg ***ret)
{
    struct store_seg **arr;
    size_t count = store_all(st, &arr), n = 0;

    /* Keep the LOADED ones, referenced, at the front of the same array. */
    for (size_t k = 0; k < count; k++)
        if (store_visible(arr[k]) && arr[k]->state == WIRE_SEG_LOADED)
            arr[n++] = store_seg_ref(arr[k]);
    *ret = arr;
    return n;
}

size_t store_seg_map_len(const struct store_seg *seg)
{
    return seg->map_len;
}

const char *store_coldest(const struct store *st, struct shed_candidate *ret)
{
    const struct shed_candidate *best;
    struct shed_candidate *cand;
    struct store_seg **all;
    size_t count = store_all(st, &all), n = 0;
    const char *id;

    cand = xcalloc(count > 0 ? count : 1, sizeof(*cand));
    for (size_t k = 0; k < count; k++) {
        const struct store_seg *seg = all[k];

        if (!store_visible(seg) || seg->state != WIRE_SEG_LOADED)
            continue;
        cand[n].id = seg->id;
        cand[n].last_query_ms = seg->last_query_ms;
        cand[n].bytes = seg->map_len;
        cand[n].footprint = store_seg_footprint(seg);
        cand[n].limit = seg->mem_limit;
        n++;
    }
    best = shed_pick(cand, n);
    id = best != NULL ? best->id : NULL;
    if (best != NULL && ret != NULL)
        *ret = *best;
    free(cand);
    free(all);
    return id;
}

/* Worker: removes a shed segment's files; the entry stays, DROPPED. */
static void store_shed_work(void *arg)
{
    struct store_job *job = arg;

    store_unlink_work(job);
}

static void store_shed_done(void *arg)
{
    struct store_job *job = arg;
    struct store_seg *seg = job->seg;
    struct store *st = job->st;

    seg->shedding = false;
    if (job->status != 200)
        log_warn("segment_shed_unlink_failed", "id=%s detail=%s", log_q(seg->id),
                 log_q(job->detail));
    /* A deletion that arrived meanwhile runs now (or is refused at shutdown). */
    if (seg->delete_cb != NULL && st->closing) {
        seg->delete_cb(503, "the node is shutting down; retry", seg->delete_arg);
        seg->delete_cb = NULL;
        store_acct(st, seg, +1); /* visible again: the deletion did not happen */
    } else if (seg->delete_cb != NULL) {
        store_start_unlink(st, seg);
    }
    store_job_free(job);
}

/* id's entry when it is LOADED and visible, else NULL. */
static struct store_seg *store_lookup_loaded(const struct store *st, const char *id)
{
    struct store_seg *seg = store_lookup(st, id);

    return seg != NULL && store_visible(seg) && seg->state == WIRE_SEG_LOADED ? seg : NULL;
}

/*
 * Takes a LOADED segment out of service as state (DROPPED or FAILED): it is
 * no longer served, its mapping and index go once no query holds them, and
 * its local copy is removed. The entry stays until deleted or reassigned.
 * cause is the key=value the log line gives for it.
 */
static void store_take_out(struct store *st, struct store_seg *seg, enum wire_segment_state state,
                           const char *cause, const char *detail)
{
    store_acct(st, seg, -1);
    seg->state = state;
    snprintf(seg->detail, sizeof(seg->detail), "%s", detail);
    log_warn("segment_state", "id=%s transition=\"LOADED -> %s\" %s detail=%s", log_q(seg->id),
             wire_segment_state_name(state), cause, log_q(detail));
    if (seg->refs == 1)
        store_seg_release_data(seg);
    else
        seg->release_pending = true;
    seg->file_bytes = 0;
    seg->shedding = true;
    store_acct(st, seg, +1);
    pool_submit(st->pool, store_shed_work, store_shed_done,
                store_job_new(st, STORE_JOB_UNLINK, seg));
}

int store_shed(struct store *st, const char *id, enum wire_reason reason, const char *detail)
{
    struct store_seg *seg = store_lookup_loaded(st, id);
    char cause[64];

    if (seg == NULL)
        return -ENOENT;
    seg->shed_reason = reason;
    snprintf(cause, sizeof(cause), "reason=%s", reason_name(reason));
    store_take_out(st, seg, WIRE_SEG_DROPPED, cause, detail);
    return 0;
}

int store_fail(struct store *st, const char *id, const char *detail)
{
    struct store_seg *seg = store_lookup_loaded(st, id);
    char cause[32];

    if (seg == NULL)
        return -ENOENT;
    seg->err = -EIO; /* this node's copy is bad, not the source */
    snprintf(cause, sizeof(cause), "err=%d", seg->err);
    store_take_out(st, seg, WIRE_SEG_FAILED, cause, detail);
    st->faults++;
    return 0;
}

int store_seg_read(const struct store_seg *seg, void (*fn)(void *arg), void *arg, char *detail,
                   size_t detail_len)
{
    struct fault_guard g;

    fault_guard_push(&g, seg->base, seg->map_len);
    if (sigsetjmp(g.env, 1) != 0) {
        store_fault_describe(detail, detail_len, seg->hdr, seg->base, seg->map_len, g.addr);
        return -EIO;
    }
    fn(arg);
    fault_guard_pop(&g);
    return 0;
}

bool store_holds(const struct store *st, const char *id)
{
    const struct store_seg *seg = store_lookup(st, id);

    return seg != NULL && store_visible(seg) &&
           (seg->state == WIRE_SEG_LOADING || seg->state == WIRE_SEG_LOADED);
}

const char *store_segdir(const struct store *st)
{
    return st->segdir;
}

static bool store_has_suffix(const char *s, const char *suffix, size_t *ret_stem)
{
    size_t n = strlen(s), m = strlen(suffix);

    if (n <= m || strcmp(s + n - m, suffix) != 0)
        return false;
    *ret_stem = n - m;
    return true;
}

/* Reads a .meta file written by store_write_meta(). Returns 0 or -EBADMSG. */
static int store_read_meta(const char *path, char **ret_uri, uint64_t *ret_rows,
                           uint64_t *ret_row_size, uint64_t *ret_mem_request,
                           uint64_t *ret_mem_limit)
{
    char line[WIRE_URI_MAX + 64];
    char *uri = NULL;
    unsigned long long rows = 0, size = 0, req = 0, lim = 0;
    FILE *f = fopen(path, "re");

    if (f == NULL)
        return -errno;
    while (fgets(line, sizeof(line), f) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        if (strncmp(line, "uri=", 4) == 0 && uri == NULL)
            uri = xstrdup(line + 4);
        else if (sscanf(line, "row_count=%llu", &rows) == 1 ||
                 sscanf(line, "avg_row_size=%llu", &size) == 1 ||
                 sscanf(line, "mem_request=%llu", &req) == 1 ||
                 sscanf(line, "mem_limit=%llu", &lim) == 1)
            continue;
    }
    fclose(f);
    if (uri == NULL || wire_check_uri("uri", uri, NULL) < 0 || rows == 0 || size == 0 ||
        wire_check_mem("", req, lim, NULL) < 0) {
        free(uri);
        return -EBADMSG;
    }
    *ret_uri = uri;
    *ret_rows = rows;
    *ret_row_size = size;
    *ret_mem_request = req;
    *ret_mem_limit = lim;
    return 0;
}

static void store_reload_done(void *arg)
{
    struct store_job *job = arg;

    store_finish_load(job);
    store_job_free(job);
}

/*
 * Start-up: delete what a crash left half-written and queue a reload of
 * every committed segment. Runs before the loop serves anything.
 */
static int store_recover(struct store *st, char *err, size_t err_len)
{
    DIR *d = opendir(st->segdir);
    struct dirent *de;
    unsigned reloaded = 0, removed = 0;

    if (d == NULL) {
        snprintf(err, err_len, "cannot open %s: %s", st->segdir, strerror(errno));
        return -errno;
    }
    while ((de = readdir(d)) != NULL) {
        const char *name = de->d_name;
        char id[WIRE_ID_MAX + 1], *path, *seg_path;
        size_t stem;

        if (name[0] == '.')
            continue;
        path = xasprintf("%s/%s", st->segdir, name);
        if (store_has_suffix(name, ".tmp", &stem)) {
            unlink(path);
            removed++;
        } else if (store_has_suffix(name, ".seg", &stem)) {
            /* Handled through its .meta; a .seg without one is orphaned. */
            char *meta = xasprintf("%.*s.meta", (int)(strlen(path) - 4), path);
            if (access(meta, F_OK) != 0) {
                unlink(path);
                removed++;
            }
            free(meta);
        } else if (store_has_suffix(name, ".meta", &stem) && stem <= WIRE_ID_MAX) {
            char *uri = NULL;
            uint64_t rows = 0, size = 0, mem_request = 0, mem_limit = 0;

            snprintf(id, sizeof(id), "%.*s", (int)stem, name);
            seg_path = store_path(st, id, ".seg");
            if (wire_check_segment_id("id", id, NULL) < 0 || access(seg_path, F_OK) != 0 ||
                store_read_meta(path, &uri, &rows, &size, &mem_request, &mem_limit) < 0) {
                unlink(seg_path);
                unlink(path);
                removed++;
            } else {
                struct store_seg *seg = store_seg_new(st, id, uri, rows, size);
                seg->mem_request = mem_request;
                seg->mem_limit = mem_limit;
                store_insert(st, seg);
                store_acct(st, seg, +1);
                st->in_flight++;
                pool_submit(st->load_pool, store_reload_work, store_reload_done,
                            store_job_new(st, STORE_JOB_RELOAD, seg));
                reloaded++;
            }
            free(uri);
            free(seg_path);
        }
        free(path);
    }
    closedir(d);
    if (removed > 0)
        store_sync_dir(st->segdir);
    log_info("store_recovered", "dir=%s reloading=%u removed_partial=%u", st->segdir, reloaded,
             removed);
    return 0;
}

/*
 * Direct mode needs O_DIRECT where the local copies live: a filesystem
 * without it (ramfs; tmpfs before Linux 6.6) answers EINVAL to open. The
 * node then refuses to start rather than fall back to mmap silently.
 */
static int store_probe_direct(struct store *st, char *err, size_t err_len)
{
    char *probe = xasprintf("%s/.odirect-probe", st->segdir);
    struct bufpool_file *f = NULL;
    int fd, r;

    fd = open(probe, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        r = -errno;
        snprintf(err, err_len, "--io=direct: cannot create %s: %s", probe, strerror(-r));
        goto out;
    }
    close(fd);
    r = bufpool_file_open(st->bufpool, probe, &f);
    if (r < 0)
        snprintf(err, err_len,
                 "--io=direct: the filesystem of %s refuses O_DIRECT (open: %s); put --data-dir "
                 "on a filesystem with direct I/O (ext4, xfs, btrfs) or use --io=mmap",
                 st->segdir, strerror(-r));
    bufpool_file_close(f);
    unlink(probe);
out:
    free(probe);
    return r;
}

struct store *store_new(struct pool *pool, const struct store_config *cfg, char *err,
                        size_t err_len)
{
    struct store *st = xcalloc(1, sizeof(*st));
    char real[PATH_MAX];
    struct stat sb;

    /* Every mapping this store makes is read under a fault guard. */
    int fr = fault_init();

    if (fr < 0) {
        snprintf(err, err_len, "cannot install the SIGBUS handler: %s", strerror(-fr));
        free(st);
        return NULL;
    }
    st->mlock_budget = cfg->mlock_budget;
    st->page_size = (uint64_t)sysconf(_SC_PAGESIZE);
    st->pool = pool;
    st->load_pool = cfg->load_pool != NULL ? cfg->load_pool : pool;
    st->segs = strmap_new();
    if (realpath(cfg->storage_root, real) == NULL || stat(real, &sb) < 0 || !S_ISDIR(sb.st_mode)) {
        snprintf(err, err_len, "--storage-root %s: %s", cfg->storage_root,
                 errno != 0 ? strerror(errno) : "not a directory");
        goto fail;
    }
    st->root = xstrdup(real);
    if (mkdir(cfg->data_dir, 0755) < 0 && errno != EEXIST) {
        snprintf(err, err_len, "--data-dir %s: %s", cfg->data_dir, strerror(errno));
        goto fail;
    }
    if (realpath(cfg->data_dir, real) == NULL) {
        snprintf(err, err_len, "--data-dir %s: %s", cfg->data_dir, strerror(errno));
        goto fail;
    }
    st->segdir = xasprintf("%s/segments", real);
    if (mkdir(st->segdir, 0755) < 0 && errno != EEXIST) {
        snprintf(err, err_len, "%s: %s", st->segdir, strerror(errno));
        goto fail;
    }
    st->bufpool = cfg->bufpool;
    if (st->bufpool != NULL && store_probe_direct(st, err, err_len) < 0)
        goto fail;
    if (store_recover(st, err, err_len) < 0)
        goto fail;
    return st;
fail:
    store_free(st);
    return NULL;
}

void store_free(struct store *st)
{
    if (st == NULL)
        return;
    if (st->segs != NULL) {
        struct store_seg **all;
        size_t count = store_all(st, &all);

        for (size_t k = 0; k < count; k++)
            store_seg_unref(all[k]);
        free(all);
        strmap_free(st->segs);
    }
    free(st->root);
    free(st->segdir);
    free(st);
}

/* ---- --mlock-budget: pinning headers, zone maps and hot columns ---------- */

/* How fast query frequency fades: a column unqueried for a minute weighs half. */
#define STORE_PIN_HALF_LIFE_MS 60000

void store_seg_record_query(struct store_seg *seg, int column, int filter_column,
                            uint64_t now_ms)
{
    if (seg->st->mlock_budget == 0 || seg->hdr == NULL)
        return;
    for (unsigned c = 0; c < seg->hdr->column_count; c++)
        seg->score[c] = mlockset_decay(seg->score[c], seg->score_ms, now_ms,
                                       STORE_PIN_HALF_LIFE_MS);
    seg->score_ms = now_ms > seg->score_ms ? now_ms : seg->score_ms;
    if (column >= 0 && column < SEGMENT_MAX_COLUMNS)
        seg->score[column] += 1.0;
    if (filter_column >= 0 && filter_column < SEGMENT_MAX_COLUMNS && filter_column != column)
        seg->score[filter_column] += 1.0;
}

/* What one segment should have pinned, and what it has. */
struct store_pin_want {
    struct store_seg *seg; /* referenced */
    uint64_t old_cols, new_cols;
    bool old_meta, new_meta, old_zm, new_zm;
    /* results, written by the worker */
    uint64_t got_cols;
    bool got_meta, got_zm;
    uint64_t got_pages;
};

struct store_pin_job {
    struct store *st;
    size_t n;
    struct store_pin_want *w;
    uint64_t failures;
};

/* Marks the pages of the header (when meta) and of the columns in cols. */
static void store_pin_pages(const struct store_seg *seg, bool meta, uint64_t cols,
                            uint8_t *pages, uint64_t npages, uint64_t page)
{
    const struct segment_header *h = seg->hdr;
    uint64_t f, e;

    memset(pages, 0, npages);
    if (meta) {
        mlockset_span(0, h->header_size, page, &f, &e);
        for (uint64_t p = f; p < e && p < npages; p++)
            pages[p] = 1;
    }
    for (unsigned c = 0; c < h->column_count; c++) {
        if (!(cols & (UINT64_C(1) << c)))
            continue;
        mlockset_span(h->columns[c].offset, h->columns[c].length, page, &f, &e);
        for (uint64_t p = f; p < e && p < npages; p++)
            pages[p] = 1;
    }
}

/*
 * mlock(2) and munlock(2) through the raw system calls. The sanitizer
 * runtimes intercept mlock() and munlock() and turn them into no-ops, so
 * under ASan the budget would be reported as pinned while nothing is; the
 * raw calls pin for real in every build. Same contract as mlock(2).
 */
static int store_mlock(const void *addr, size_t len)
{
    return syscall(SYS_mlock, addr, len) == 0 ? 0 : -1;
}

static int store_munlock(const void *addr, size_t len)
{
    return syscall(SYS_munlock, addr, len) == 0 ? 0 : -1;
}

/*
 * Calls op (store_mlock or store_munlock) on each run of pages where from is set and
 * not_in is not. Returns 0, or the first negative errno (and goes on).
 */
static int store_pin_runs(const struct store_seg *seg, const uint8_t *from, const uint8_t *not_in,
                          uint64_t npages, uint64_t page, int (*op)(const void *, size_t))
{
    int r = 0;

    for (uint64_t p = 0; p < npages;) {
        uint64_t q;

        if (!from[p] || not_in[p]) {
            p++;
            continue;
        }
        for (q = p; q < npages && from[q] && !not_in[q]; q++)
            ;
        if (op((const char *)seg->base + p * page, (size_t)((q - p) * page)) < 0 && r == 0)
            r = -errno;
        p = q;
    }
    return r;
}

static uint64_t store_pin_count(const uint8_t *pages, uint64_t npages)
{
    uint64_t n = 0;

    for (uint64_t p = 0; p < npages; p++)
        n += pages[p];
    return n;
}

/*
 * Worker: every unpin first, then every pin, so that what is locked never
 * exceeds the larger of the old and the new choice, both within the budget.
 * A pin the kernel refuses is undone and the segment keeps old ∩ new.
 */
static void store_pin_work(void *arg)
{
    struct store_pin_job *job = arg;
    uint64_t page = job->st->page_size;

    for (int phase = 0; phase < 2; phase++) {
        for (size_t i = 0; i < job->n; i++) {
            struct store_pin_want *w = &job->w[i];
            const struct store_seg *seg = w->seg;
            uint64_t npages = (seg->map_len + page - 1) / page;
            uint8_t *oldp = xcalloc(npages + 1, 1), *newp = xcalloc(npages + 1, 1);
            const void *zaddr = NULL;
            size_t zlen = 0;

            if (seg->base == NULL || seg->hdr == NULL) {
                free(oldp);
                free(newp);
                continue;
            }
            if (seg->zm != NULL)
                zonemap_region(seg->zm, &zaddr, &zlen);
            store_pin_pages(seg, w->old_meta, w->old_cols, oldp, npages, page);
            store_pin_pages(seg, w->new_meta, w->new_cols, newp, npages, page);
            if (phase == 0) {
                (void)store_pin_runs(seg, oldp, newp, npages, page, store_munlock);
                if (w->old_zm && !w->new_zm && zlen > 0)
                    (void)store_munlock(zaddr, zlen);
                /* Until phase 1 succeeds: what both choices share. */
                w->got_cols = w->old_cols & w->new_cols;
                w->got_meta = w->old_meta && w->new_meta;
                w->got_zm = w->old_zm && w->new_zm;
            } else {
                bool zm_ok = true;

                if (store_pin_runs(seg, newp, oldp, npages, page, store_mlock) < 0) {
                    job->failures++;
                    (void)store_pin_runs(seg, newp, oldp, npages, page, store_munlock);
                } else {
                    w->got_cols = w->new_cols;
                    w->got_meta = w->new_meta;
                }
                if (w->new_zm && !w->old_zm && zlen > 0 && store_mlock(zaddr, zlen) < 0) {
                    job->failures++;
                    (void)store_munlock(zaddr, zlen);
                    zm_ok = false;
                }
                w->got_zm = w->new_zm && zm_ok;
                store_pin_pages(seg, w->got_meta, w->got_cols, newp, npages, page);
                w->got_pages = store_pin_count(newp, npages) +
                               (w->got_zm ? (zlen + page - 1) / page : 0);
            }
            free(oldp);
            free(newp);
        }
    }
}

static void store_pin_done(void *arg)
{
    struct store_pin_job *job = arg;
    struct store *st = job->st;

    for (size_t i = 0; i < job->n; i++) {
        struct store_pin_want *w = &job->w[i];
        struct store_seg *seg = w->seg;

        if (seg->base != NULL) {
            st->pinned_bytes -= seg->pinned_bytes;
            seg->pin_cols = w->got_cols;
            seg->pin_meta = w->got_meta;
            seg->pin_zm = w->got_zm;
            seg->pinned_bytes = w->got_pages * st->page_size;
            st->pinned_bytes += seg->pinned_bytes;
        }
        store_seg_unref(seg);
    }
    if (job->failures > 0)
        log_warn("mlock_refused", "calls=%llu pinned_bytes=%llu budget=%llu",
                 (unsigned long long)job->failures, (unsigned long long)st->pinned_bytes,
                 (unsigned long long)st->mlock_budget);
    st->pin_failures += job->failures;
    st->pin_running = false;
    free(job->w);
    free(job);
}

static int store_cmp_seg_id(const void *a, const void *b)
{
    return strcmp((*(struct store_seg *const *)a)->id, (*(struct store_seg *const *)b)->id);
}

void store_pin_tick(struct store *st, uint64_t now_ms)
{
    struct store_seg **all;
    struct mlockset_item *items;
    size_t count, n = 0, nitems = 0, nw = 0, *first;
    struct store_pin_want *w;
    struct store_pin_job *job;
    uint64_t page = st->page_size;

    if (st->mlock_budget == 0 || st->pin_running || st->closing)
        return;
    count = store_all(st, &all);
    /* The LOADED segments, in id order (a stable choice). */
    for (size_t k = 0; k < count; k++)
        if (store_visible(all[k]) && all[k]->state == WIRE_SEG_LOADED && all[k]->base != NULL &&
            !all[k]->release_pending)
            all[n++] = all[k];
    qsort(all, n, sizeof(*all), store_cmp_seg_id);
    items = xcalloc(n * (SEGMENT_MAX_COLUMNS + 2) + 1, sizeof(*items));
    first = xcalloc(n + 1, sizeof(*first));
    for (size_t k = 0; k < n; k++) {
        struct store_seg *seg = all[k];
        const struct segment_header *h = seg->hdr;
        struct mlockset_item *it;

        first[k] = nitems;
        it = &items[nitems++];
        it->region = 2 * k;
        it->must = true;
        it->locked = seg->pin_meta;
        mlockset_span(0, h->header_size, page, &it->first_page, &it->end_page);
        for (unsigned c = 0; c < h->column_count; c++) {
            it = &items[nitems++];
            it->region = 2 * k;
            /* Heap copies (SEGMENT_COL_ANON) are never read from the mapping. */
            if (!(h->columns[c].flags & SEGMENT_COL_ANON))
                mlockset_span(h->columns[c].offset, h->columns[c].length, page,
                              &it->first_page, &it->end_page);
            it->score = mlockset_decay(seg->score[c], seg->score_ms, now_ms,
                                       STORE_PIN_HALF_LIFE_MS);
            it->locked = (seg->pin_cols >> c) & 1;
        }
        it = &items[nitems++];
        it->region = 2 * k + 1;
        it->must = true;
        it->locked = seg->pin_zm;
        if (seg->zm != NULL) {
            const void *za;
            size_t zl;

            zonemap_region(seg->zm, &za, &zl);
            it->end_page = (zl + page - 1) / page;
        }
    }
    first[n] = nitems;
    (void)mlockset_choose(items, nitems, st->mlock_budget / page, NULL);
    w = xcalloc(n + 1, sizeof(*w));
    for (size_t k = 0; k < n; k++) {
        struct store_seg *seg = all[k];
        const struct mlockset_item *it = &items[first[k]];
        uint64_t cols = 0;

        for (unsigned c = 0; c < seg->hdr->column_count; c++)
            if (it[1 + c].chosen && it[1 + c].end_page > it[1 + c].first_page)
                cols |= UINT64_C(1) << c;
        if (cols == seg->pin_cols && it[0].chosen == seg->pin_meta &&
            it[seg->hdr->column_count + 1].chosen == seg->pin_zm)
            continue;
        w[nw].seg = store_seg_ref(seg);
        w[nw].old_cols = seg->pin_cols;
        w[nw].old_meta = seg->pin_meta;
        w[nw].old_zm = seg->pin_zm;
        w[nw].new_cols = cols;
        w[nw].new_meta = it[0].chosen;
        w[nw].new_zm = it[seg->hdr->column_count + 1].chosen;
        nw++;
    }
    free(items);
    free(first);
    free(all);
    if (nw == 0) {
        free(w);
        return;
    }
    job = xcalloc(1, sizeof(*job));
    job->st = st;
    job->n = nw;
    job->w = w;
    st->pin_running = true;
    pool_submit(st->load_pool, store_pin_work, store_pin_done, job);
}
