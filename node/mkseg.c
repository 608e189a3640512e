/*
 * mkseg: writes synthetic segments. The writer streams: it lays out the
 * columns first, writes data sequentially through a 1 MiB buffer while
 * folding each column into its CRC, then pwrite()s the header
 * (segment_encode_header) over the zeros it reserved at offset 0.
 */
#include "mkseg.h"

#include <assert.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "crc32c.h"
#include "log.h"
#include "segfmt.h"
#include "xmalloc.h"

#define MKSEG_CHUNK (1024 * 1024)
#define N_OPTS(a) (sizeof(a) / sizeof((a)[0]))

static void mkseg_store64(unsigned char *p, uint64_t v)
{
    uint64_t le = htole64(v);

    memcpy(p, &le, sizeof(le));
}

static uint64_t mkseg_align_up(uint64_t v)
{
    return (v + (SEGMENT_ALIGN - 1)) & ~(uint64_t)(SEGMENT_ALIGN - 1);
}

/* Writes all of buf at the current position, retrying short writes and EINTR. */
static int mkseg_write_all(int fd, const void *buf, size_t len, const char *path, char *detail,
                             size_t detail_len)
{
    const unsigned char *p = buf;

    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n == 0)
            errno = EIO;
        if (n <= 0) {
            if (errno == EINTR)
                continue;
            return segment_fail_errno(detail, detail_len, "write", path);
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Fills buf with rows [row, row + n) of synthetic column col (0 key, 1 value, 2 payload, 3 anon). */
static void mkseg_fill_rows(const struct mkseg_spec *spec, int col, uint32_t width,
                              uint64_t row, size_t n, unsigned char *buf)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char *dst = buf + i * width;
        uint64_t r = row + i;
        if (col == 0) {
            mkseg_store64(dst, (uint64_t)segment_synth_key(spec->seed, r));
        } else if (col == 1 && spec->float_value) {
            double d = segment_synth_fvalue(spec->seed, r);
            uint64_t bits;
            memcpy(&bits, &d, sizeof(bits));
            mkseg_store64(dst, bits);
        } else if (col == 1) {
            mkseg_store64(dst, (uint64_t)segment_synth_value(spec->seed, r));
        } else if (col == 3) {
            /* The in-memory column: its own stream, not a copy of the payload. */
            segment_synth_payload(spec->seed ^ 0x5eed0fa110c8ull, r, dst, width);
        } else {
            segment_synth_payload(spec->seed, r, dst, width);
        }
    }
}

/* fsyncs the directory holding path so that a rename into it is durable. */
static int mkseg_fsync_dir(const char *path, char *detail, size_t detail_len)
{
    char *copy = xstrdup(path);
    const char *dir = dirname(copy);
    int fd = -1;
    int r = 0;

    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        r = segment_fail_errno(detail, detail_len, "open", dir);
        goto out;
    }
    if (fsync(fd) < 0) {
        r = segment_fail_errno(detail, detail_len, "fsync", dir);
        goto out;
    }
out:
    if (fd >= 0)
        close(fd);
    free(copy);
    return r;
}

int mkseg_write(const char *path, const struct mkseg_spec *spec, char *detail,
                            size_t detail_len)
{
    struct segment_header *hdr = NULL;
    unsigned char *chunk = NULL;
    char *tmp = NULL;
    uint64_t pos, end, first_offset;
    bool created = false;
    int fd = -1;
    int r = 0;

    if (spec->row_bytes < 16 || spec->row_bytes - 16 > SEGMENT_MAX_BYTES_WIDTH)
        return segment_fail(detail, detail_len, EINVAL, "row_bytes %u is outside 16..%d",
                            spec->row_bytes, 16 + SEGMENT_MAX_BYTES_WIDTH);
    if (spec->rows > SEGMENT_MAX_ROWS)
        return segment_fail(detail, detail_len, EINVAL, "rows %" PRIu64 " exceeds %" PRIu64,
                            spec->rows, SEGMENT_MAX_ROWS);
    if (spec->anon_row_bytes > SEGMENT_MAX_BYTES_WIDTH)
        return segment_fail(detail, detail_len, EINVAL, "anon_row_bytes %u exceeds %d",
                            spec->anon_row_bytes, SEGMENT_MAX_BYTES_WIDTH);

    /* Lay out the header in memory first: offsets and sizes are known up front. */
    hdr = xcalloc(1, sizeof(*hdr));
    hdr->version = SEGMENT_VERSION;
    hdr->column_count = spec->row_bytes == 16 ? 2 : 3;
    hdr->header_size = SEGMENT_FIXED_HEADER + hdr->column_count * SEGMENT_COLUMN_DESC;
    hdr->row_count = spec->rows;
    hdr->seed = spec->seed;
    strcpy(hdr->columns[0].name, "key");
    hdr->columns[0].type = SEGMENT_INT64;
    hdr->columns[0].width = 8;
    strcpy(hdr->columns[1].name, "value");
    hdr->columns[1].type = spec->float_value ? SEGMENT_FLOAT64 : SEGMENT_INT64;
    hdr->columns[1].width = 8;
    if (hdr->column_count == 3) {
        strcpy(hdr->columns[2].name, "payload");
        hdr->columns[2].type = SEGMENT_BYTES;
        hdr->columns[2].width = spec->row_bytes - 16;
    }
    if (spec->anon_row_bytes > 0) {
        struct segment_column *a = &hdr->columns[hdr->column_count++];
        strcpy(a->name, "embedding");
        a->type = SEGMENT_BYTES;
        a->width = spec->anon_row_bytes;
        a->flags = SEGMENT_COL_ANON;
        hdr->header_size = SEGMENT_FIXED_HEADER + hdr->column_count * SEGMENT_COLUMN_DESC;
    }
    first_offset = mkseg_align_up(hdr->header_size);
    end = first_offset;
    for (uint32_t i = 0; i < hdr->column_count; i++) {
        struct segment_column *col = &hdr->columns[i];
        col->offset = mkseg_align_up(end);
        col->length = spec->rows * col->width; /* <= 2^40 * (2^20 + 16): no overflow */
        end = col->offset + col->length;
    }
    hdr->file_size = end;

    tmp = xasprintf("%s.tmp", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        r = segment_fail_errno(detail, detail_len, "open", tmp);
        goto out;
    }
    created = true;

    /* Reserve the header and its padding with zeros; the real header goes in last. */
    chunk = xcalloc(1, MKSEG_CHUNK);
    r = mkseg_write_all(fd, chunk, first_offset, tmp, detail, detail_len);
    if (r < 0)
        goto out;
    pos = first_offset;
    for (uint32_t i = 0; i < hdr->column_count; i++) {
        struct segment_column *col = &hdr->columns[i];
        size_t rows_per_chunk = MKSEG_CHUNK / col->width;
        uint32_t crc = 0;

        assert(rows_per_chunk > 0);
        if (col->offset > pos) {
            memset(chunk, 0, col->offset - pos);
            r = mkseg_write_all(fd, chunk, col->offset - pos, tmp, detail, detail_len);
            if (r < 0)
                goto out;
            pos = col->offset;
        }
        for (uint64_t row = 0; row < spec->rows; row += rows_per_chunk) {
            size_t n = spec->rows - row < rows_per_chunk ? spec->rows - row : rows_per_chunk;
            size_t bytes = n * col->width;
            mkseg_fill_rows(spec, (col->flags & SEGMENT_COL_ANON) ? 3 : (int)i, col->width, row,
                              n, chunk);
            crc = crc32c_update(crc, chunk, bytes);
            r = mkseg_write_all(fd, chunk, bytes, tmp, detail, detail_len);
            if (r < 0)
                goto out;
            pos += bytes;
        }
        col->crc = crc;
    }
    assert(pos == hdr->file_size);

    segment_encode_header(hdr, chunk);
#ifndef NDEBUG
    {
        struct segment_header check;
        assert(segment_parse_header(chunk, hdr->header_size, hdr->file_size, &check, NULL, 0) == 0);
    }
#endif
    for (size_t done = 0; done < hdr->header_size;) {
        ssize_t n = pwrite(fd, chunk + done, hdr->header_size - done, (off_t)done);
        if (n == 0)
            errno = EIO;
        if (n <= 0) {
            if (errno == EINTR)
                continue;
            r = segment_fail_errno(detail, detail_len, "pwrite", tmp);
            goto out;
        }
        done += (size_t)n;
    }
    if (fsync(fd) < 0) {
        r = segment_fail_errno(detail, detail_len, "fsync", tmp);
        goto out;
    }
    if (close(fd) < 0) {
        fd = -1;
        r = segment_fail_errno(detail, detail_len, "close", tmp);
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) < 0) {
        int e = errno;
        r = segment_fail(detail, detail_len, e, "rename %s -> %s: %s", tmp, path, strerror(e));
        goto out;
    }
    created = false;
    r = mkseg_fsync_dir(path, detail, detail_len);
    if (r < 0)
        goto out;
    log_debug("segment_written", "path=%s rows=%" PRIu64 " file_size=%" PRIu64, path, spec->rows,
              hdr->file_size);
out:
    if (fd >= 0)
        close(fd);
    if (created)
        unlink(tmp);
    free(tmp);
    free(chunk);
    free(hdr);
    return r;
}

int mkseg_main(int argc, char **argv)
{
    int64_t rows = 0, row_bytes = 0, seed = 0, anon_row_bytes = 0;
    char *out = NULL;
    bool float_value = false;
    const struct config_option opts[] = {
        {"rows", "SLUICE_ROWS", CONFIG_INT, &rows, NULL,
         "Number of rows (at least 1: a segment of no rows cannot be registered).", 1,
         (int64_t)SEGMENT_MAX_ROWS, .required = true},
        {"row-bytes", NULL, CONFIG_INT, &row_bytes, "64",
         "Average row size in bytes: key (8) + value (8) + payload (the rest).", 16,
         16 + SEGMENT_MAX_BYTES_WIDTH},
        {"seed", NULL, CONFIG_INT, &seed, "1", "Seed of the synthetic data.", 0, INT64_MAX},
        {"float-value", NULL, CONFIG_BOOL, &float_value, "false",
         "Make the value column float64 instead of int64."},
        {"anon-row-bytes", NULL, CONFIG_INT, &anon_row_bytes, "0",
         "Bytes per row of an extra column the node holds in anonymous memory once loaded "
         "(like a vector index); 0 for none.",
         0, SEGMENT_MAX_BYTES_WIDTH},
        {"out", NULL, CONFIG_STRING, &out, NULL, "File to write (atomically).",
         .required = true},
    };
    struct mkseg_spec spec;
    char detail[512];
    int next, r;

    cli_parse("sluice-node", opts, N_OPTS(opts), argc, argv, &next,
              "sluice-node mkseg --rows N --out FILE [--row-bytes B] [--seed S]",
              "Write a synthetic segment: key int64 (increasing), value int64 in "
              "[-1e6, 1e6], payload bytes.",
              0, 0);
    spec.rows = (uint64_t)rows;
    spec.row_bytes = (uint32_t)row_bytes;
    spec.seed = (uint64_t)seed;
    spec.float_value = float_value;
    spec.anon_row_bytes = (uint32_t)anon_row_bytes;
    r = mkseg_write(out, &spec, detail, sizeof(detail));
    if (r < 0) {
        fprintf(stderr, "sluice-node mkseg: %s\n", detail);
        config_free_strings(opts, N_OPTS(opts));
        return 1;
    }
    printf("wrote %s: %" PRId64 " rows x %" PRId64 " bytes (+%" PRId64
           " in memory), seed %" PRId64 "\n",
           out, rows, row_bytes, anon_row_bytes, seed);
    config_free_strings(opts, N_OPTS(opts));
    return 0;
}
