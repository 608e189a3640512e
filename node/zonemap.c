/*
 * zonemap: one pass over each numeric column at load time (on a worker
 * thread), min/max per 4096-row block. For a 1 GiB segment of 16-byte rows
 * that is 16 K blocks, i.e. 256 KiB of index per int64 column.
 */
#include "zonemap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "log.h"
#include "xmalloc.h"

struct zonemap_col {
    enum segment_col_type type; /* SEGMENT_INT64 or SEGMENT_FLOAT64; 0 for none */
    int64_t *imin, *imax;
    double *fmin, *fmax;
};

struct zonemap {
    uint64_t blocks;
    unsigned ncols;
    bool own_pages; /* mmap'ed, whole pages of its own */
    size_t bytes;   /* the whole allocation */
    struct zonemap_col cols[SEGMENT_MAX_COLUMNS];
};

static void zonemap_build_int(struct zonemap_col *zc, const int64_t *v, uint64_t rows,
                              uint64_t blocks)
{
    for (uint64_t b = 0; b < blocks; b++) {
        uint64_t start = b * ZONEMAP_BLOCK_ROWS;
        uint64_t end = start + ZONEMAP_BLOCK_ROWS < rows ? start + ZONEMAP_BLOCK_ROWS : rows;
        int64_t mn = v[start], mx = v[start];

        for (uint64_t i = start + 1; i < end; i++) {
            mn = v[i] < mn ? v[i] : mn;
            mx = v[i] > mx ? v[i] : mx;
        }
        zc->imin[b] = mn;
        zc->imax[b] = mx;
    }
}

static void zonemap_build_float(struct zonemap_col *zc, const double *v, uint64_t rows,
                                uint64_t blocks)
{
    for (uint64_t b = 0; b < blocks; b++) {
        uint64_t start = b * ZONEMAP_BLOCK_ROWS;
        uint64_t end = start + ZONEMAP_BLOCK_ROWS < rows ? start + ZONEMAP_BLOCK_ROWS : rows;
        double mn = v[start], mx = v[start];

        for (uint64_t i = start + 1; i < end; i++) {
            mn = v[i] < mn ? v[i] : mn;
            mx = v[i] > mx ? v[i] : mx;
        }
        zc->fmin[b] = mn;
        zc->fmax[b] = mx;
    }
}

struct zonemap *zonemap_build(const void *base, const struct segment_header *hdr)
{
    return zonemap_build_ex(base, hdr, false);
}

struct zonemap *zonemap_build_ex(const void *base, const struct segment_header *hdr,
                                 bool own_pages)
{
    uint64_t rows = hdr->row_count;
    uint64_t blocks = (rows + ZONEMAP_BLOCK_ROWS - 1) / ZONEMAP_BLOCK_ROWS;
    size_t total = sizeof(struct zonemap), page = (size_t)sysconf(_SC_PAGESIZE);
    struct zonemap *zm;
    char *p;

    /* One block: the struct, then two arrays per numeric column. */
    for (unsigned c = 0; c < hdr->column_count && blocks > 0; c++)
        if (hdr->columns[c].type == SEGMENT_INT64 || hdr->columns[c].type == SEGMENT_FLOAT64)
            total += 2 * blocks * sizeof(int64_t);
    if (own_pages) {
        total = (total + page - 1) / page * page;
        zm = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (zm == MAP_FAILED)
            fatal("zonemap_mmap", "bytes=%zu error=\"%s\"", total, strerror(errno));
    } else {
        zm = xcalloc(1, total);
    }
    zm->own_pages = own_pages;
    zm->blocks = blocks;
    zm->ncols = hdr->column_count;
    zm->bytes = total;
    p = (char *)(zm + 1);
    for (unsigned c = 0; c < hdr->column_count && zm->blocks > 0; c++) {
        const struct segment_column *col = &hdr->columns[c];
        struct zonemap_col *zc = &zm->cols[c];
        const void *data = (const char *)base + col->offset;

        if (col->type == SEGMENT_INT64) {
            zc->type = SEGMENT_INT64;
            zc->imin = (int64_t *)p;
            zc->imax = zc->imin + blocks;
            p += 2 * blocks * sizeof(int64_t);
            zonemap_build_int(zc, data, rows, zm->blocks);
        } else if (col->type == SEGMENT_FLOAT64) {
            zc->type = SEGMENT_FLOAT64;
            zc->fmin = (double *)p;
            zc->fmax = zc->fmin + blocks;
            p += 2 * blocks * sizeof(double);
            zonemap_build_float(zc, data, rows, zm->blocks);
        }
    }
    return zm;
}

void zonemap_free(struct zonemap *zm)
{
    if (zm == NULL)
        return;
    if (zm->own_pages)
        munmap(zm, zm->bytes);
    else
        free(zm);
}

void zonemap_region(const struct zonemap *zm, const void **ret_addr, size_t *ret_len)
{
    *ret_addr = zm;
    *ret_len = zm->bytes;
}

size_t zonemap_bytes(const struct zonemap *zm)
{
    return zm->bytes;
}

uint64_t zonemap_block_count(const struct zonemap *zm)
{
    return zm->blocks;
}

bool zonemap_int_range(const struct zonemap *zm, unsigned col, uint64_t b, int64_t *ret_min,
                       int64_t *ret_max)
{
    if (col >= zm->ncols || b >= zm->blocks || zm->cols[col].type != SEGMENT_INT64)
        return false;
    *ret_min = zm->cols[col].imin[b];
    *ret_max = zm->cols[col].imax[b];
    return true;
}
