/*
 * mkseg: the synthetic-segment writer, for benchmarks, tests and the
 * `sluice-node mkseg` command. It writes files in the format of
 * common/segfmt with the values segfmt's segment_synth_* functions define,
 * so a reader can compute every expected answer from the seed alone.
 * Expected load: one file at a time, any size, about 1 MiB of memory.
 */
#ifndef SLUICE_MKSEG_H
#define SLUICE_MKSEG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What mkseg_write writes. */
struct mkseg_spec {
    uint64_t rows;      /* 0 .. SEGMENT_MAX_ROWS */
    uint32_t row_bytes; /* 16 .. 16 + SEGMENT_MAX_BYTES_WIDTH: key, value, payload (mapped) */
    uint64_t seed;
    bool float_value; /* "value" is float64 (segment_synth_fvalue) not int64 */
    /*
     * 0, or the width of an extra bytes column "embedding" flagged
     * SEGMENT_COL_ANON: a node copies it into anonymous memory when it loads
     * the segment, as an engine holds a vector or inverted index in RAM.
     */
    uint32_t anon_row_bytes;
};

/*
 * Writes a segment of spec->rows rows with columns "key" (int64,
 * segment_synth_key), "value" (int64 segment_synth_value, or float64
 * segment_synth_fvalue when float_value) and, unless row_bytes == 16,
 * "payload" (bytes, width row_bytes - 16, segment_synth_payload), in that
 * order. Streams in bounded chunks (memory use is about 1 MiB whatever the
 * size), computes CRCs while writing, and writes the header last. The file is
 * built as "<path>.tmp", fsync'ed, renamed over path, and the directory
 * fsync'ed. On failure the temporary file is removed and path is untouched,
 * except when only the final directory fsync fails: path then already holds
 * the complete new file.
 * Returns 0, -EINVAL for a spec out of range, or the negated errno of the
 * failing system call; on error detail names the problem (and for I/O, the
 * call and the path).
 */
int mkseg_write(const char *path, const struct mkseg_spec *spec, char *detail,
                            size_t detail_len);

/*
 * The `sluice-node mkseg` command: argv[0] is "mkseg", the rest its flags.
 * Returns the exit code: 0 written, 1 the write failed, 2 usage (--help and
 * usage errors exit from inside, through cli_parse).
 */
int mkseg_main(int argc, char **argv);

#endif
