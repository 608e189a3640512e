/*
 * zonemap: one pass over each numeric column at load time (on a worker
 * thread), min/max per 4096-row block. For a 1 GiB segment of 16-byte rows
 * that is 16 K blocks, i.e. 256 KiB of index per int64 column.
 */
#include "zonemap.h"

#include <stdlib.h>
#include <string.h>

#include "xmalloc.h"

struct zonemap_col {
    enum segment_col_type type; /* SEGMENT_INT64 or SEGMENT_FLOAT64; 0 for none */
    int64_t *imin, *imax;
    double *fmin, *fmax;
};

struct zonemap {
    uint64_t blocks;
    unsigned ncols;
    size_t bytes;
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
    struct zonemap *zm = xcalloc(1, sizeof(*zm));
    uint64_t rows = hdr->row_count;

    zm->blocks = (rows + ZONEMAP_BLOCK_ROWS - 1) / ZONEMAP_BLOCK_ROWS;
    zm->ncols = hdr->column_count;
    zm->bytes = sizeof(*zm);
    for (unsigned c = 0; c < hdr->column_count && zm->blocks > 0; c++) {
        const struct segment_column *col = &hdr->columns[c];
        struct zonemap_col *zc = &zm->cols[c];
        const void *data = (const char *)base + col->offset;

        if (col->type == SEGMENT_INT64) {
            zc->type = SEGMENT_INT64;
            zc->imin = xcalloc(zm->blocks, sizeof(int64_t));
            zc->imax = xcalloc(zm->blocks, sizeof(int64_t));
            zonemap_build_int(zc, data, rows, zm->blocks);
            zm->bytes += 2 * zm->blocks * sizeof(int64_t);
        } else if (col->type == SEGMENT_FLOAT64) {
            zc->type = SEGMENT_FLOAT64;
            zc->fmin = xcalloc(zm->blocks, sizeof(double));
            zc->fmax = xcalloc(zm->blocks, sizeof(double));
            zonemap_build_float(zc, data, rows, zm->blocks);
            zm->bytes += 2 * zm->blocks * sizeof(double);
        }
    }
    return zm;
}

void zonemap_free(struct zonemap *zm)
{
    if (zm == NULL)
        return;
    for (unsigned c = 0; c < zm->ncols; c++) {
        free(zm->cols[c].imin);
        free(zm->cols[c].imax);
        free(zm->cols[c].fmin);
        free(zm->cols[c].fmax);
    }
    free(zm);
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
