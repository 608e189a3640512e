/*
 * segfmt: the on-disk format of one immutable column segment, its validation,
 * and the values of synthetic segments (their writer is node/mkseg). It lives in
 * common/ because both daemons read it: the node loads segments, the
 * coordinator's `import` reads their headers. Its names keep the segment_
 * prefix: they name the format, and the node's code is full of them.
 *
 * A segment file is a 64-byte fixed header, then column_count 96-byte column
 * descriptors (together header_size bytes), then each column's data at a
 * 64-byte aligned offset, zero padding in between. All integers are
 * little-endian. Every field is checked by segment_parse_header before anything
 * else in the node trusts it; column data is checked separately, by CRC-32C, in
 * segment_verify, because that costs a full read of the file.
 *
 * Fixed header (64 bytes):
 *    0 char magic[8] "SLUICESG"     32 u32 header_size = 64 + 96 * column_count
 *    8 u32 version (1)              36 u32 header_crc: CRC-32C of [0, header_size)
 *   12 u32 column_count (1..64)            with this field taken as zero
 *   16 u64 row_count (0..2^40)      40 u64 seed (informational)
 *   24 u64 file_size (real length)  48 u32 flags (0); 52..63 reserved, zero
 * Column descriptor (96 bytes):
 *    0 char name[48]: 1..47 of [A-Za-z0-9_], NUL-padded; names are unique
 *   48 u32 type (enum segment_col_type)   64 u64 length = row_count * width
 *   52 u32 width: 8, or 1..2^20 for bytes  72 u32 CRC-32C of the data
 *   56 u64 offset: 64-aligned, >= header_size, offset + length <= file_size
 *   76 u32 flags (SEGMENT_COL_ANON only)  80..95 reserved, zero
 * Columns may appear in any order on disk but never overlap.
 *
 * Errors. Every function that can fail returns 0 or a negative errno and,
 * when given a detail buffer, one sentence naming the problem. The format's
 * own failures are the SEGMENT_E* errno values below, so one error space
 * serves the parser, the verifier and the writer.
 *
 * Nothing here keeps state; all functions are thread-safe.
 */
#ifndef SLUICE_SEGFMT_H
#define SLUICE_SEGFMT_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define SEGMENT_MAGIC           "SLUICESG"
#define SEGMENT_VERSION         1
#define SEGMENT_FIXED_HEADER    64
#define SEGMENT_COLUMN_DESC     96
#define SEGMENT_MAX_COLUMNS     64
#define SEGMENT_MAX_ROWS        (UINT64_C(1) << 40)
#define SEGMENT_MAX_BYTES_WIDTH 1048576
#define SEGMENT_NAME_SIZE       48
#define SEGMENT_ALIGN           64
/* Largest possible header_size: what a reader must have in hand at most. */
#define SEGMENT_MAX_HEADER_SIZE (SEGMENT_FIXED_HEADER + SEGMENT_MAX_COLUMNS * SEGMENT_COLUMN_DESC)

/* Column flag: the engine loads this column into anonymous memory. Carried only. */
#define SEGMENT_COL_ANON 0x1u

enum segment_col_type {
    SEGMENT_INT64 = 1,
    SEGMENT_FLOAT64 = 2,
    SEGMENT_BYTES = 3,
};

/* One decoded column descriptor. name is NUL-terminated. */
struct segment_column {
    char name[SEGMENT_NAME_SIZE];
    enum segment_col_type type;
    uint32_t width;
    uint64_t offset;
    uint64_t length;
    uint32_t crc;
    uint32_t flags;
};

/*
 * A decoded, validated header. Callers embed it (about 5 KiB); columns[i] is
 * meaningful for i < column_count, in on-disk descriptor order.
 */
struct segment_header {
    uint32_t version;
    uint32_t column_count;
    uint32_t header_size;
    uint32_t header_crc;
    uint64_t row_count;
    uint64_t file_size;
    uint64_t seed;
    struct segment_column columns[SEGMENT_MAX_COLUMNS];
};

/*
 * Distinct failures of an untrusted segment, returned negated. Each is an
 * errno value; the parser and the verifier make no system call, so these are
 * all they return. (The writer returns the errno of a failing system call,
 * and its detail names the call.)
 * SEGMENT_ETRUNCATED: the bytes end before the format says they should: fewer
 *   than 64, fewer than header_size, or a real file length smaller than the
 *   header's file_size. A truncated file always yields this, never ERANGE.
 * SEGMENT_EMAGIC, SEGMENT_EVERSION: not a segment, or a version we do not read.
 * SEGMENT_EHEADER: bad header_crc, column_count, header_size, row_count above
 *   2^40, flags, non-zero reserved bytes, or a descriptor with a bad or
 *   duplicate name, unknown type, wrong width, or unknown column flag.
 * SEGMENT_ERANGE: a column offset that is misaligned, inside the header or past
 *   the end; a length that is not row_count * width; overlapping columns; a
 *   real file length larger than the header's file_size.
 * SEGMENT_ECHECKSUM: a column's data does not match its CRC-32C.
 */
#define SEGMENT_ETRUNCATED ENODATA
#define SEGMENT_EMAGIC     ENOEXEC
#define SEGMENT_EVERSION   EPROTONOSUPPORT
#define SEGMENT_EHEADER    EBADMSG
#define SEGMENT_ERANGE     ERANGE
#define SEGMENT_ECHECKSUM  EILSEQ

/*
 * Returns a stable snake_case name for err (either sign): "truncated",
 * "bad_magic", "unknown_version", "bad_header", "out_of_range",
 * "checksum_mismatch"; "ok" for 0 and "unknown" for any other errno.
 */
const char *segment_error_name(int err);

/*
 * True when err (either sign) is one of the format's own SEGMENT_E* values:
 * the bytes are not a valid segment, whoever reads them. False for 0 and for
 * every other errno (a failing system call).
 */
bool segment_is_format_error(int err);

/* Returns "int64", "float64", "bytes", or "unknown". */
const char *segment_col_type_name(enum segment_col_type type);

/*
 * Validates the fixed header and every column descriptor. buf holds the first
 * len bytes of a file whose real length is file_size; a prefix is enough once
 * len >= header_size (SEGMENT_MAX_HEADER_SIZE always suffices). Never reads
 * buf beyond len. Checks run in this order, so the first problem wins:
 * length >= 64, magic, version, column_count and header_size, length >=
 * header_size, header_crc, the other header fields, file_size against the real
 * length, each descriptor's fields and ranges in turn, then duplicate names
 * and overlaps.
 * Returns 0 and fills *ret_hdr, or a negated SEGMENT_E* value and, when
 * detail is not NULL, writes one sentence naming the problem into detail
 * (truncated to detail_len), e.g. "column 2 (payload): offset 100 is not
 * 64-byte aligned". *ret_hdr is written only on success.
 */
int segment_parse_header(const void *buf, size_t len, uint64_t file_size,
                         struct segment_header *ret_hdr, char *detail, size_t detail_len);

/*
 * Checks every column's CRC-32C. base maps the whole file (hdr->file_size
 * bytes) and hdr came from segment_parse_header on that same file. Reads every
 * data byte once. Returns 0, or -SEGMENT_ECHECKSUM with detail naming the
 * first bad column and both CRCs.
 */
int segment_verify(const void *base, const struct segment_header *hdr, char *detail,
                   size_t detail_len);

/*
 * The segment's content digest: a 64-bit hash of the header fields that
 * define the file (version, row_count, file_size, seed, and each column's
 * name, type, width, offset, length, CRC-32C and flags). Column data enters
 * through its CRC-32C, so two files with the same digest hold the same data
 * unless a column's CRC collides (2^-32 per changed column); any change to
 * the header changes it. Never 0 (0 means "unknown" on the wire). The
 * coordinator registers it (`sluice-coord import`) and nodes report it for
 * each copy, so a copy of another file under the same id is not adopted.
 */
uint64_t segment_digest(const struct segment_header *hdr);

/* Returns the index of the column called name, or -1. */
int segment_find_column(const struct segment_header *hdr, const char *name);

/*
 * Writes the header for humans, as `sluice-node inspect` shows it: a summary
 * line, one line per column (index, name, type, width, offset, length, crc,
 * flags), then data totals and bytes per row.
 */
void segment_print_header(FILE *out, const struct segment_header *hdr);

/*
 * Synthetic data: pure functions of (seed, row) built on splitmix64, so any
 * row can be recomputed on its own, e.g. by a test computing the expected
 * answer to a query without reading the file.
 * segment_synth_key is row * 4 + (a hash of seed and row) % 4, strictly
 * increasing in row. segment_synth_value is uniform on [-1000000, 1000000]
 * from an independent hash. segment_synth_fvalue is that value / 1000.0.
 * segment_synth_payload fills len bytes with the pseudo-random payload of row.
 */
int64_t segment_synth_key(uint64_t seed, uint64_t row);
int64_t segment_synth_value(uint64_t seed, uint64_t row);
double segment_synth_fvalue(uint64_t seed, uint64_t row);
void segment_synth_payload(uint64_t seed, uint64_t row, void *buf, size_t len);

/*
 * Reads and parses the header of the segment file at path. Returns 0, the
 * negated errno of open/fstat/pread (-EISDIR for a directory), or a
 * segment_parse_header error; detail names the problem.
 */
int segment_read_header(const char *path, struct segment_header *ret_hdr, char *detail,
                        size_t detail_len);

/* Bytes of one row: the sum of every column's width (the size a reader budgets per row). */
uint64_t segment_row_bytes(const struct segment_header *hdr);

/*
 * How every function here reports a failure, for writers of segment files
 * too: formats the detail sentence into detail (if not NULL and detail_len
 * > 0) and returns -err.
 */
__attribute__((format(printf, 4, 5))) int segment_fail(char *detail, size_t detail_len, int err,
                                                       const char *fmt, ...);

/* A failed system call: detail "<call> <path>: <strerror(errno)>", returns -errno. */
int segment_fail_errno(char *detail, size_t detail_len, const char *call, const char *path);

/*
 * Serialises hdr (whose fields the caller has laid out: columns, offsets,
 * lengths, CRCs) into buf, hdr->header_size bytes, computing header_crc.
 * What it writes parses back with segment_parse_header.
 */
void segment_encode_header(const struct segment_header *hdr, unsigned char *buf);

#endif
