/*
 * segfmt: encode, decode and validate segment files, and the synthetic
 * values. The layout is documented in segfmt.h.
 *
 * The parser treats its input as hostile: every read is bounds-checked against
 * len before it happens, every multiplication and addition of file-controlled
 * values is overflow-checked, and integers are loaded with memcpy plus
 * le*toh so unaligned buffers and big-endian hosts both work. It runs once
 * per segment open and costs O(header_size); segment_verify is the expensive
 * part (one CRC pass over the data) and is kept separate so callers can choose
 * when to pay for it.
 *
 * segment_encode_header is the one writer of the header layout; the
 * synthetic-segment writer (node/mkseg.c) uses it. Synthetic values are pure
 * functions of (seed, row), defined here, so that tests and benchmarks can
 * compute expected results without reading the file back.
 */
#include "segfmt.h"

#include <assert.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"
#include "log.h"
#include "xmalloc.h"

/* Field offsets in the fixed header and in a column descriptor. */
#define HDR_MAGIC        0
#define HDR_VERSION      8
#define HDR_COLUMN_COUNT 12
#define HDR_ROW_COUNT    16
#define HDR_FILE_SIZE    24
#define HDR_HEADER_SIZE  32
#define HDR_HEADER_CRC   36
#define HDR_SEED         40
#define HDR_FLAGS        48
#define HDR_RESERVED     52
#define COL_NAME         0
#define COL_TYPE         48
#define COL_WIDTH        52
#define COL_OFFSET       56
#define COL_LENGTH       64
#define COL_CRC          72
#define COL_FLAGS        76
#define COL_RESERVED     80

/* Size of the writer's staging buffer; bounds its memory whatever the file size. */
#define SEGMENT_CHUNK (1024 * 1024)

static uint32_t segment_load32(const unsigned char *p)
{
    uint32_t v;

    memcpy(&v, p, sizeof(v));
    return le32toh(v);
}

static uint64_t segment_load64(const unsigned char *p)
{
    uint64_t v;

    memcpy(&v, p, sizeof(v));
    return le64toh(v);
}

static void segment_store32(unsigned char *p, uint32_t v)
{
    v = htole32(v);
    memcpy(p, &v, sizeof(v));
}

static void segment_store64(unsigned char *p, uint64_t v)
{
    v = htole64(v);
    memcpy(p, &v, sizeof(v));
}

static bool segment_all_zero(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0)
            return false;
    return true;
}


int segment_fail(char *detail, size_t detail_len, int err, const char *fmt, ...)
{
    va_list ap;

    if (detail != NULL && detail_len > 0) {
        va_start(ap, fmt);
        vsnprintf(detail, detail_len, fmt, ap);
        va_end(ap);
    }
    return -err;
}

int segment_fail_errno(char *detail, size_t detail_len, const char *call, const char *path)
{
    int e = errno;

    return segment_fail(detail, detail_len, e, "%s %s: %s", call, path, strerror(e));
}

const char *segment_error_name(int err)
{
    switch (err < 0 ? -err : err) {
    case 0:
        return "ok";
    case SEGMENT_ETRUNCATED:
        return "truncated";
    case SEGMENT_EMAGIC:
        return "bad_magic";
    case SEGMENT_EVERSION:
        return "unknown_version";
    case SEGMENT_EHEADER:
        return "bad_header";
    case SEGMENT_ERANGE:
        return "out_of_range";
    case SEGMENT_ECHECKSUM:
        return "checksum_mismatch";
    default:
        return "unknown";
    }
}

bool segment_is_format_error(int err)
{
    return err != 0 && strcmp(segment_error_name(err), "unknown") != 0;
}

const char *segment_col_type_name(enum segment_col_type type)
{
    switch (type) {
    case SEGMENT_INT64:
        return "int64";
    case SEGMENT_FLOAT64:
        return "float64";
    case SEGMENT_BYTES:
        return "bytes";
    default:
        return "unknown";
    }
}

static bool segment_name_char_ok(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/*
 * Checks a raw 48-byte name field: 1..47 allowed characters, then NUL bytes
 * to the end of the field. On success copies it into out.
 */
static int segment_parse_name(const unsigned char *p, uint32_t index, char *out, char *detail,
                              size_t detail_len)
{
    size_t n = 0;

    while (n < SEGMENT_NAME_SIZE && p[n] != 0) {
        if (!segment_name_char_ok(p[n]))
            return segment_fail(detail, detail_len, SEGMENT_EHEADER,
                                "column %u: name has invalid byte 0x%02x at position %zu", index,
                                p[n], n);
        n++;
    }
    if (n == 0)
        return segment_fail(detail, detail_len, SEGMENT_EHEADER, "column %u: name is empty", index);
    if (n == SEGMENT_NAME_SIZE)
        return segment_fail(detail, detail_len, SEGMENT_EHEADER,
                            "column %u: name is not NUL-terminated within %d bytes", index,
                            SEGMENT_NAME_SIZE);
    if (!segment_all_zero(p + n, SEGMENT_NAME_SIZE - n))
        return segment_fail(detail, detail_len, SEGMENT_EHEADER,
                            "column %u: name padding after the NUL is not zero", index);
    memcpy(out, p, n);
    memset(out + n, 0, SEGMENT_NAME_SIZE - n);
    return 0;
}

/*
 * Decodes and checks one descriptor against the already validated header
 * fields in hdr (row_count, header_size, file_size).
 */
static int segment_parse_column(const unsigned char *p, uint32_t index,
                                const struct segment_header *hdr, struct segment_column *col,
                                char *detail, size_t detail_len)
{
    uint32_t type, width;
    uint64_t want;
    int r;

    r = segment_parse_name(p + COL_NAME, index, col->name, detail, detail_len);
    if (r < 0)
        return r;
    type = segment_load32(p + COL_TYPE);
    width = segment_load32(p + COL_WIDTH);
    col->offset = segment_load64(p + COL_OFFSET);
    col->length = segment_load64(p + COL_LENGTH);
    col->crc = segment_load32(p + COL_CRC);
    col->flags = segment_load32(p + COL_FLAGS);

    switch (type) {
    case SEGMENT_INT64:
    case SEGMENT_FLOAT64:
        if (width != 8)
            return segment_fail(detail, detail_len, SEGMENT_EHEADER,
                                "column %u (%s): width %u is not 8 for type %s", index, col->name,
                                width, segment_col_type_name((enum segment_col_type)type));
        break;
    case SEGMENT_BYTES:
        if (width < 1 || width > SEGMENT_MAX_BYTES_WIDTH)
            return segment_fail(detail, detail_len, SEGMENT_EHEADER,
                                "column %u (%s): bytes width %u is outside 1..%d", index, col->name,
                                width, SEGMENT_MAX_BYTES_WIDTH);
        break;
    default:
        return segment_fail(detail, detail_len, SEGMENT_EHEADER, "column %u (%s): unknown type %u",
                            index, col->name, type);
    }
    col->type = (enum segment_col_type)type;
    col->width = width;
    if ((col->flags & ~SEGMENT_COL_ANON) != 0)
        return segment_fail(detail, detail_len, SEGMENT_EHEADER,
                            "column %u (%s): unknown flags 0x%x", index, col->name, col->flags);
    if (!segment_all_zero(p + COL_RESERVED, SEGMENT_COLUMN_DESC - COL_RESERVED))
        return segment_fail(detail, detail_len, SEGMENT_EHEADER,
                            "column %u (%s): reserved descriptor bytes are not zero", index,
                            col->name);

    if (col->offset % SEGMENT_ALIGN != 0)
        return segment_fail(detail, detail_len, SEGMENT_ERANGE,
                            "column %u (%s): offset %" PRIu64 " is not %d-byte aligned", index,
                            col->name, col->offset, SEGMENT_ALIGN);
    if (col->offset < hdr->header_size)
        return segment_fail(detail, detail_len, SEGMENT_ERANGE,
                            "column %u (%s): offset %" PRIu64
                            " is inside the header (header_size %u)",
                            index, col->name, col->offset, hdr->header_size);
    if (col->offset > hdr->file_size)
        return segment_fail(detail, detail_len, SEGMENT_ERANGE,
                            "column %u (%s): offset %" PRIu64
                            " is past the end of the file (%" PRIu64 " bytes)",
                            index, col->name, col->offset, hdr->file_size);
    /* row_count <= 2^40 and width <= 2^20 keep this far from overflow; check anyway. */
    if (__builtin_mul_overflow(hdr->row_count, (uint64_t)width, &want))
        return segment_fail(detail, detail_len, SEGMENT_ERANGE,
                            "column %u (%s): row_count %" PRIu64 " * width %u overflows", index,
                            col->name, hdr->row_count, width);
    if (col->length != want)
        return segment_fail(detail, detail_len, SEGMENT_ERANGE,
                            "column %u (%s): length %" PRIu64 " is not row_count %" PRIu64
                            " * width %u = %" PRIu64,
                            index, col->name, col->length, hdr->row_count, width, want);
    if (col->length > hdr->file_size - col->offset)
        return segment_fail(detail, detail_len, SEGMENT_ERANGE,
                            "column %u (%s): data [%" PRIu64 ", %" PRIu64
                            ") extends past the end of the file (%" PRIu64 " bytes)",
                            index, col->name, col->offset, col->offset + col->length,
                            hdr->file_size);
    return 0;
}

/* Checks that no two columns share a byte; O(n^2) is nothing at n <= 64. */
static int segment_check_overlap(const struct segment_header *hdr, char *detail, size_t detail_len)
{
    for (uint32_t i = 0; i < hdr->column_count; i++) {
        const struct segment_column *a = &hdr->columns[i];
        for (uint32_t j = i + 1; j < hdr->column_count; j++) {
            const struct segment_column *b = &hdr->columns[j];
            if (strcmp(a->name, b->name) == 0)
                return segment_fail(detail, detail_len, SEGMENT_EHEADER,
                                    "columns %u and %u are both named %s", i, j, a->name);
            /* Both ranges are within the file, so the sums cannot overflow. */
            if (a->length > 0 && b->length > 0 && a->offset < b->offset + b->length &&
                b->offset < a->offset + a->length)
                return segment_fail(detail, detail_len, SEGMENT_ERANGE,
                                    "column %u (%s) [%" PRIu64 ", %" PRIu64 ") overlaps column %u "
                                    "(%s) [%" PRIu64 ", %" PRIu64 ")",
                                    i, a->name, a->offset, a->offset + a->length, j, b->name,
                                    b->offset, b->offset + b->length);
        }
    }
    return 0;
}

int segment_parse_header(const void *buf, size_t len, uint64_t file_size,
                         struct segment_header *ret_hdr, char *detail, size_t detail_len)
{
    const unsigned char *p = buf;
    struct segment_header hdr;
    uint32_t stored_crc, crc, flags;
    uint64_t declared_size;
    static const unsigned char zero_crc[4];
    int r;

    memset(&hdr, 0, sizeof(hdr));
    if (len < SEGMENT_FIXED_HEADER || file_size < SEGMENT_FIXED_HEADER)
        return segment_fail(detail, detail_len, SEGMENT_ETRUNCATED,
                            "have %" PRIu64 " bytes, fewer than the %d-byte fixed header",
                            file_size < len ? file_size : (uint64_t)len, SEGMENT_FIXED_HEADER);
    if (memcmp(p + HDR_MAGIC, SEGMENT_MAGIC, 8) != 0)
        return segment_fail(detail, detail_len, SEGMENT_EMAGIC,
                            "magic is not \"" SEGMENT_MAGIC "\"");
    hdr.version = segment_load32(p + HDR_VERSION);
    if (hdr.version != SEGMENT_VERSION)
        return segment_fail(detail, detail_len, SEGMENT_EVERSION,
                            "version %u is not supported (this build reads version %d)",
                            hdr.version, SEGMENT_VERSION);
    hdr.column_count = segment_load32(p + HDR_COLUMN_COUNT);
    if (hdr.column_count < 1 || hdr.column_count > SEGMENT_MAX_COLUMNS)
        return segment_fail(detail, detail_len, SEGMENT_EHEADER, "column_count %u is outside 1..%d",
                            hdr.column_count, SEGMENT_MAX_COLUMNS);
    hdr.header_size = segment_load32(p + HDR_HEADER_SIZE);
    if (hdr.header_size != SEGMENT_FIXED_HEADER + hdr.column_count * SEGMENT_COLUMN_DESC)
        return segment_fail(detail, detail_len, SEGMENT_EHEADER,
                            "header_size %u is not %u for %u columns", hdr.header_size,
                            SEGMENT_FIXED_HEADER + hdr.column_count * SEGMENT_COLUMN_DESC,
                            hdr.column_count);
    if (len < hdr.header_size || file_size < hdr.header_size)
        return segment_fail(detail, detail_len, SEGMENT_ETRUNCATED,
                            "have %" PRIu64 " bytes, fewer than the %u-byte header",
                            file_size < len ? file_size : (uint64_t)len, hdr.header_size);

    stored_crc = segment_load32(p + HDR_HEADER_CRC);
    crc = crc32c_update(0, p, HDR_HEADER_CRC);
    crc = crc32c_update(crc, zero_crc, sizeof(zero_crc));
    crc = crc32c_update(crc, p + HDR_HEADER_CRC + 4, hdr.header_size - (HDR_HEADER_CRC + 4));
    if (crc != stored_crc)
        return segment_fail(detail, detail_len, SEGMENT_EHEADER,
                            "header_crc 0x%08x does not match computed 0x%08x", stored_crc, crc);
    hdr.header_crc = stored_crc;

    hdr.row_count = segment_load64(p + HDR_ROW_COUNT);
    if (hdr.row_count > SEGMENT_MAX_ROWS)
        return segment_fail(detail, detail_len, SEGMENT_EHEADER,
                            "row_count %" PRIu64 " exceeds the limit of %" PRIu64, hdr.row_count,
                            SEGMENT_MAX_ROWS);
    hdr.seed = segment_load64(p + HDR_SEED);
    flags = segment_load32(p + HDR_FLAGS);
    if (flags != 0)
        return segment_fail(detail, detail_len, SEGMENT_EHEADER, "header flags 0x%x are not zero",
                            flags);
    if (!segment_all_zero(p + HDR_RESERVED, SEGMENT_FIXED_HEADER - HDR_RESERVED))
        return segment_fail(detail, detail_len, SEGMENT_EHEADER,
                            "reserved header bytes 52..63 are not zero");

    declared_size = segment_load64(p + HDR_FILE_SIZE);
    if (file_size < declared_size)
        return segment_fail(detail, detail_len, SEGMENT_ETRUNCATED,
                            "file is %" PRIu64 " bytes but its header says %" PRIu64, file_size,
                            declared_size);
    if (file_size > declared_size)
        return segment_fail(detail, detail_len, SEGMENT_ERANGE,
                            "file is %" PRIu64 " bytes, longer than the %" PRIu64
                            " its header says",
                            file_size, declared_size);
    hdr.file_size = declared_size;

    for (uint32_t i = 0; i < hdr.column_count; i++) {
        const unsigned char *d = p + SEGMENT_FIXED_HEADER + (size_t)i * SEGMENT_COLUMN_DESC;
        r = segment_parse_column(d, i, &hdr, &hdr.columns[i], detail, detail_len);
        if (r < 0)
            return r;
    }
    r = segment_check_overlap(&hdr, detail, detail_len);
    if (r < 0)
        return r;

    memcpy(ret_hdr, &hdr, sizeof(hdr));
    return 0;
}

int segment_verify(const void *base, const struct segment_header *hdr, char *detail,
                   size_t detail_len)
{
    const unsigned char *p = base;

    for (uint32_t i = 0; i < hdr->column_count; i++) {
        const struct segment_column *col = &hdr->columns[i];
        uint32_t crc = crc32c(p + col->offset, col->length);
        if (crc != col->crc)
            return segment_fail(detail, detail_len, SEGMENT_ECHECKSUM,
                                "column %u (%s): data crc32c 0x%08x does not match descriptor "
                                "0x%08x",
                                i, col->name, crc, col->crc);
    }
    return 0;
}

int segment_find_column(const struct segment_header *hdr, const char *name)
{
    for (uint32_t i = 0; i < hdr->column_count; i++)
        if (strcmp(hdr->columns[i].name, name) == 0)
            return (int)i;
    return -1;
}

void segment_print_header(FILE *out, const struct segment_header *hdr)
{
    uint64_t data_bytes = 0;
    uint32_t row_width = 0;

    fprintf(out,
            "segment version %u: %u columns, %" PRIu64 " rows, file_size %" PRIu64
            " bytes, header_size %u, header_crc 0x%08x, seed %" PRIu64 ", digest %016" PRIx64
            "\n",
            hdr->version, hdr->column_count, hdr->row_count, hdr->file_size, hdr->header_size,
            hdr->header_crc, hdr->seed, segment_digest(hdr));
    fprintf(out, "  %3s %-24s %-7s %8s %14s %14s %10s %s\n", "#", "name", "type", "width", "offset",
            "length", "crc32c", "flags");
    for (uint32_t i = 0; i < hdr->column_count; i++) {
        const struct segment_column *col = &hdr->columns[i];
        fprintf(out, "  %3u %-24s %-7s %8u %14" PRIu64 " %14" PRIu64 " 0x%08x %s\n", i, col->name,
                segment_col_type_name(col->type), col->width, col->offset, col->length, col->crc,
                (col->flags & SEGMENT_COL_ANON) ? "anon" : "-");
        data_bytes += col->length;
        row_width += col->width;
    }
    fprintf(out, "  data %" PRIu64 " bytes, overhead %" PRIu64 " bytes; row width %u bytes",
            data_bytes, hdr->file_size - data_bytes, row_width);
    if (hdr->row_count > 0)
        fprintf(out, ", avg %.2f file bytes per row\n",
                (double)hdr->file_size / (double)hdr->row_count);
    else
        fprintf(out, ", no rows\n");
}

/* The splitmix64 output function applied to x + golden gamma. */
static uint64_t segment_splitmix64(uint64_t x)
{
    x += UINT64_C(0x9E3779B97F4A7C15);
    x = (x ^ (x >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94D049BB133111EB);
    return x ^ (x >> 31);
}

/* An independent hash of (seed, row) per stream: key, value, payload. */
static uint64_t segment_mix(uint64_t seed, uint64_t row, uint64_t stream)
{
    return segment_splitmix64(segment_splitmix64(seed ^ (stream * UINT64_C(0xD1B54A32D192ED03))) ^
                              row);
}

/* Folds v into the running digest h (a splitmix64 step per word). */
static uint64_t segment_digest_add(uint64_t h, uint64_t v)
{
    return segment_splitmix64(h ^ v);
}

uint64_t segment_digest(const struct segment_header *hdr)
{
    uint64_t h = segment_splitmix64(SEGMENT_VERSION);

    h = segment_digest_add(h, hdr->version);
    h = segment_digest_add(h, hdr->column_count);
    h = segment_digest_add(h, hdr->row_count);
    h = segment_digest_add(h, hdr->file_size);
    h = segment_digest_add(h, hdr->seed);
    for (uint32_t i = 0; i < hdr->column_count; i++) {
        const struct segment_column *c = &hdr->columns[i];
        unsigned char name[SEGMENT_NAME_SIZE];

        /* As on disk: NUL-padded, read little-endian, so every host agrees. */
        memset(name, 0, sizeof(name));
        memcpy(name, c->name, strnlen(c->name, SEGMENT_NAME_SIZE - 1));
        for (size_t w = 0; w < SEGMENT_NAME_SIZE; w += 8)
            h = segment_digest_add(h, segment_load64(name + w));
        h = segment_digest_add(h, (uint64_t)c->type << 32 | c->width);
        h = segment_digest_add(h, c->offset);
        h = segment_digest_add(h, c->length);
        h = segment_digest_add(h, (uint64_t)c->crc << 32 | c->flags);
    }
    return h != 0 ? h : 1;
}

int64_t segment_synth_key(uint64_t seed, uint64_t row)
{
    return (int64_t)(row * 4 + (segment_mix(seed, row, 1) & 3));
}

int64_t segment_synth_value(uint64_t seed, uint64_t row)
{
    /* Modulo bias is below 2^-42: irrelevant for test data. */
    return (int64_t)(segment_mix(seed, row, 2) % 2000001) - 1000000;
}

double segment_synth_fvalue(uint64_t seed, uint64_t row)
{
    return (double)segment_synth_value(seed, row) / 1000.0;
}

void segment_synth_payload(uint64_t seed, uint64_t row, void *buf, size_t len)
{
    unsigned char *p = buf;
    uint64_t state = segment_mix(seed, row, 3);
    unsigned char word[8];

    for (size_t off = 0; off < len; off += 8) {
        state += UINT64_C(0x9E3779B97F4A7C15);
        segment_store64(word, segment_splitmix64(state));
        memcpy(p + off, word, len - off < 8 ? len - off : 8);
    }
}

int segment_read_header(const char *path, struct segment_header *ret_hdr, char *detail,
                        size_t detail_len)
{
    unsigned char *buf = xmalloc(SEGMENT_MAX_HEADER_SIZE);
    struct stat sb;
    ssize_t n;
    int r, fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        r = segment_fail_errno(detail, detail_len, "open", path);
        goto out;
    }
    if (fstat(fd, &sb) < 0) {
        r = segment_fail_errno(detail, detail_len, "fstat", path);
        goto out;
    }
    if (S_ISDIR(sb.st_mode)) {
        r = segment_fail(detail, detail_len, EISDIR, "%s is a directory, not a segment file",
                         path);
        goto out;
    }
    n = pread(fd, buf, SEGMENT_MAX_HEADER_SIZE, 0);
    if (n < 0) {
        r = segment_fail_errno(detail, detail_len, "read", path);
        goto out;
    }
    r = segment_parse_header(buf, (size_t)n, (uint64_t)sb.st_size, ret_hdr, detail, detail_len);
out:
    if (fd >= 0)
        close(fd);
    free(buf);
    return r;
}

uint64_t segment_row_bytes(const struct segment_header *hdr)
{
    uint64_t row_bytes = 0;

    for (unsigned i = 0; i < hdr->column_count; i++)
        row_bytes += hdr->columns[i].width;
    return row_bytes;
}

void segment_encode_header(const struct segment_header *hdr, unsigned char *buf)
{
    memset(buf, 0, hdr->header_size);
    memcpy(buf + HDR_MAGIC, SEGMENT_MAGIC, 8);
    segment_store32(buf + HDR_VERSION, hdr->version);
    segment_store32(buf + HDR_COLUMN_COUNT, hdr->column_count);
    segment_store64(buf + HDR_ROW_COUNT, hdr->row_count);
    segment_store64(buf + HDR_FILE_SIZE, hdr->file_size);
    segment_store32(buf + HDR_HEADER_SIZE, hdr->header_size);
    segment_store64(buf + HDR_SEED, hdr->seed);
    for (uint32_t i = 0; i < hdr->column_count; i++) {
        const struct segment_column *col = &hdr->columns[i];
        unsigned char *d = buf + SEGMENT_FIXED_HEADER + (size_t)i * SEGMENT_COLUMN_DESC;
        memcpy(d + COL_NAME, col->name, strnlen(col->name, SEGMENT_NAME_SIZE - 1));
        segment_store32(d + COL_TYPE, (uint32_t)col->type);
        segment_store32(d + COL_WIDTH, col->width);
        segment_store64(d + COL_OFFSET, col->offset);
        segment_store64(d + COL_LENGTH, col->length);
        segment_store32(d + COL_CRC, col->crc);
        segment_store32(d + COL_FLAGS, col->flags);
    }
    segment_store32(buf + HDR_HEADER_CRC, crc32c(buf, hdr->header_size));
}

