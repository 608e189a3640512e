/*
 * check_segfmt: unit tests for common/segfmt. A real synthetic segment
 * (1000 rows x 48 bytes) is written into a fresh mkdtemp directory for every
 * TCase; the tests read it back through mmap and check every value against
 * the synthetic generators, then corrupt copies of it one field at a time and
 * check that each corruption yields its own error. After changing a header
 * field the header CRC is re-stamped, so the parser gets past the CRC check
 * to the check under test. Byte offsets below are written out from the format
 * description in segfmt.h, not taken from segfmt.c, so a layout mistake in
 * the writer cannot hide behind the same mistake in the test.
 *
 * The temporary directory is created and removed by an unchecked fixture,
 * which runs in the parent process, so it is removed even when a test fails.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"
#include "mkseg.h"
#include "segfmt.h"
#include "xmalloc.h"
#include "suite.h"

#define TEST_ROWS      1000
#define TEST_ROW_BYTES 48
#define TEST_SEED      0x5EEDu

/* Layout of the base segment, from the format: 3 columns, header 64 + 3 * 96. */
#define T_HEADER_SIZE 352
#define T_DESC(i)     (64 + (i)*96)
#define T_KEY_OFF     384
#define T_VALUE_OFF   (T_KEY_OFF + TEST_ROWS * 8)
#define T_PAYLOAD_OFF (T_VALUE_OFF + TEST_ROWS * 8)
#define T_FILE_SIZE   (T_PAYLOAD_OFF + TEST_ROWS * (TEST_ROW_BYTES - 16))

static char test_dir[256];
static char test_base[512];

/* Unchecked fixture (parent process): a temp dir holding base.seg. */
static void test_setup(void)
{
    struct mkseg_spec spec = {TEST_ROWS, TEST_ROW_BYTES, TEST_SEED, false};
    char detail[256] = "";
    int r;

    snprintf(test_dir, sizeof(test_dir), "/tmp/check_segfmt.XXXXXX");
    if (mkdtemp(test_dir) == NULL) {
        perror("mkdtemp");
        abort();
    }
    snprintf(test_base, sizeof(test_base), "%s/base.seg", test_dir);
    r = mkseg_write(test_base, &spec, detail, sizeof(detail));
    if (r != 0) {
        fprintf(stderr, "mkseg_write: %d %s\n", r, detail);
        abort();
    }
}

static void test_teardown(void)
{
    DIR *d = opendir(test_dir);
    struct dirent *e;
    char p[1024];

    if (d != NULL) {
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(p, sizeof(p), "%s/%s", test_dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(test_dir);
}

static void test_put32(unsigned char *p, size_t off, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[off + (size_t)i] = (unsigned char)(v >> (8 * i));
}

static void test_put64(unsigned char *p, size_t off, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[off + (size_t)i] = (unsigned char)(v >> (8 * i));
}

static uint32_t test_get32(const unsigned char *p, size_t off)
{
    uint32_t v = 0;

    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[off + (size_t)i];
    return v;
}

static uint64_t test_get64(const unsigned char *p, size_t off)
{
    uint64_t v = 0;

    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[off + (size_t)i];
    return v;
}

/*
 * Recomputes header_crc (offset 36) over [0, header_size) with the field
 * zeroed, taking header_size from the buffer but never reading past len.
 */
static void test_restamp(unsigned char *buf, size_t len)
{
    size_t hs;

    if (len < 64)
        return;
    hs = test_get32(buf, 32);
    if (hs > len)
        hs = len;
    test_put32(buf, 36, 0);
    test_put32(buf, 36, crc32c(buf, hs));
}

/* Reads a whole file into a new buffer. */
static unsigned char *test_read_file(const char *path, size_t *ret_len)
{
    struct stat st;
    unsigned char *buf;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(fstat(fd, &st), 0);
    buf = xmalloc((size_t)st.st_size);
    ck_assert_int_eq(read(fd, buf, (size_t)st.st_size), st.st_size);
    close(fd);
    *ret_len = (size_t)st.st_size;
    return buf;
}

static void test_write_file(const char *path, const void *buf, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, buf, len), (ssize_t)len);
    close(fd);
}

/* A mutable copy of base.seg, and the outcome of parsing it. */
struct test_seg {
    unsigned char *buf;
    size_t len;
    struct segment_header hdr;
    char detail[512];
};

static void test_load_base(struct test_seg *t)
{
    memset(t, 0, sizeof(*t));
    t->buf = test_read_file(test_base, &t->len);
    ck_assert_uint_eq(t->len, T_FILE_SIZE);
}

/* Parses the buffer as a whole file of its own length. */
static int test_parse(struct test_seg *t)
{
    t->detail[0] = '\0';
    return segment_parse_header(t->buf, t->len, t->len, &t->hdr, t->detail, sizeof(t->detail));
}

#define test_expect(t, err)                                                                        \
    do {                                                                                           \
        int r_ = test_parse(t);                                                                    \
        ck_assert_msg(r_ == -(err), "expected %s, got %d (%s): %s", segment_error_name(err), r_,   \
                      segment_error_name(r_), (t)->detail);                                        \
        ck_assert_msg((t)->detail[0] != '\0', "no detail for %s", segment_error_name(err));        \
    } while (0)

/* Checks every row of a mapped segment against the generators. */
static void test_check_values(const unsigned char *base, const struct segment_header *hdr,
                              uint64_t seed, bool float_value)
{
    int k = segment_find_column(hdr, "key");
    int v = segment_find_column(hdr, "value");
    int p = segment_find_column(hdr, "payload");
    unsigned char expect[TEST_ROW_BYTES];
    int64_t prev = INT64_MIN;

    ck_assert_int_eq(k, 0);
    ck_assert_int_eq(v, 1);
    for (uint64_t row = 0; row < hdr->row_count; row++) {
        int64_t key = (int64_t)test_get64(base, hdr->columns[k].offset + row * 8);
        uint64_t vbits = test_get64(base, hdr->columns[v].offset + row * 8);

        ck_assert_int_eq(key, segment_synth_key(seed, row));
        ck_assert_int_gt(key, prev);
        ck_assert_int_ge(key, (int64_t)row * 4);
        ck_assert_int_le(key, (int64_t)row * 4 + 3);
        prev = key;
        if (float_value) {
            double d;
            memcpy(&d, &vbits, sizeof(d));
            ck_assert(d == segment_synth_fvalue(seed, row));
        } else {
            ck_assert_int_eq((int64_t)vbits, segment_synth_value(seed, row));
        }
        if (p >= 0) {
            uint32_t w = hdr->columns[p].width;
            ck_assert_uint_le(w, sizeof(expect));
            segment_synth_payload(seed, row, expect, w);
            ck_assert_mem_eq(base + hdr->columns[p].offset + row * w, expect, w);
        }
    }
}

/* Maps path, parses and verifies it, and checks the values. */
static void test_map_and_check(const char *path, uint64_t seed, bool float_value,
                               struct segment_header *hdr)
{
    char detail[256] = "";
    struct stat st;
    void *m;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(fstat(fd, &st), 0);
    m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    ck_assert_ptr_ne(m, MAP_FAILED);
    close(fd);
    ck_assert_msg(segment_parse_header(m, (size_t)st.st_size, (uint64_t)st.st_size, hdr, detail,
                                       sizeof(detail)) == 0,
                  "parse: %s", detail);
    ck_assert_uint_eq(hdr->file_size, (uint64_t)st.st_size);
    ck_assert_msg(segment_verify(m, hdr, detail, sizeof(detail)) == 0, "verify: %s", detail);
    test_check_values(m, hdr, seed, float_value);
    munmap(m, (size_t)st.st_size);
}

START_TEST(test_roundtrip)
{
    struct segment_header hdr;
    struct test_seg t;
    char tmp[1024];

    test_map_and_check(test_base, TEST_SEED, false, &hdr);
    ck_assert_uint_eq(hdr.version, 1);
    ck_assert_uint_eq(hdr.column_count, 3);
    ck_assert_uint_eq(hdr.header_size, T_HEADER_SIZE);
    ck_assert_uint_eq(hdr.row_count, TEST_ROWS);
    ck_assert_uint_eq(hdr.seed, TEST_SEED);
    ck_assert_uint_eq(hdr.file_size, T_FILE_SIZE);
    ck_assert_str_eq(hdr.columns[0].name, "key");
    ck_assert_str_eq(hdr.columns[1].name, "value");
    ck_assert_str_eq(hdr.columns[2].name, "payload");
    ck_assert_int_eq(hdr.columns[0].type, SEGMENT_INT64);
    ck_assert_int_eq(hdr.columns[1].type, SEGMENT_INT64);
    ck_assert_int_eq(hdr.columns[2].type, SEGMENT_BYTES);
    ck_assert_uint_eq(hdr.columns[2].width, TEST_ROW_BYTES - 16);
    ck_assert_uint_eq(hdr.columns[0].offset, T_KEY_OFF);
    ck_assert_uint_eq(hdr.columns[1].offset, T_VALUE_OFF);
    ck_assert_uint_eq(hdr.columns[2].offset, T_PAYLOAD_OFF);
    ck_assert_uint_eq(hdr.columns[2].length, TEST_ROWS * (TEST_ROW_BYTES - 16));
    ck_assert_int_eq(segment_find_column(&hdr, "payload"), 2);
    ck_assert_int_eq(segment_find_column(&hdr, "nope"), -1);

    /* The stored CRCs are those of the raw column bytes, and padding is zero. */
    test_load_base(&t);
    ck_assert_uint_eq(hdr.columns[2].crc, crc32c(t.buf + T_PAYLOAD_OFF, TEST_ROWS * 32));
    ck_assert_uint_eq(test_get32(t.buf, T_DESC(1) + 72), crc32c(t.buf + T_VALUE_OFF, 8000));
    for (size_t i = T_HEADER_SIZE; i < T_KEY_OFF; i++)
        ck_assert_uint_eq(t.buf[i], 0);
    ck_assert_mem_eq(t.buf, "SLUICESG", 8);
    free(t.buf);

    /* The temporary file was renamed away. */
    snprintf(tmp, sizeof(tmp), "%s.tmp", test_base);
    ck_assert_int_eq(access(tmp, F_OK), -1);
}
END_TEST

START_TEST(test_prefix_is_enough)
{
    struct test_seg t;
    int r;

    test_load_base(&t);
    /* Exactly header_size bytes of a full-length file parse. */
    r = segment_parse_header(t.buf, T_HEADER_SIZE, t.len, &t.hdr, t.detail, sizeof(t.detail));
    ck_assert_int_eq(r, 0);
    ck_assert_uint_eq(t.hdr.columns[2].offset, T_PAYLOAD_OFF);
    r = segment_parse_header(t.buf, T_HEADER_SIZE - 1, t.len, &t.hdr, t.detail, sizeof(t.detail));
    ck_assert_int_eq(r, -SEGMENT_ETRUNCATED);
    free(t.buf);
}
END_TEST

START_TEST(test_float_variant)
{
    struct mkseg_spec spec = {300, 24, 77, true};
    struct segment_header hdr;
    char path[1024];
    char detail[256] = "";

    snprintf(path, sizeof(path), "%s/float.seg", test_dir);
    ck_assert_int_eq(mkseg_write(path, &spec, detail, sizeof(detail)), 0);
    test_map_and_check(path, 77, true, &hdr);
    ck_assert_int_eq(hdr.columns[1].type, SEGMENT_FLOAT64);
    ck_assert_uint_eq(hdr.columns[2].width, 8);
    ck_assert(segment_synth_fvalue(77, 5) == (double)segment_synth_value(77, 5) / 1000.0);
}
END_TEST

START_TEST(test_row_bytes_16)
{
    struct mkseg_spec spec = {500, 16, 3, false};
    struct segment_header hdr;
    char path[1024];
    char detail[256] = "";

    snprintf(path, sizeof(path), "%s/narrow.seg", test_dir);
    ck_assert_int_eq(mkseg_write(path, &spec, detail, sizeof(detail)), 0);
    test_map_and_check(path, 3, false, &hdr);
    ck_assert_uint_eq(hdr.column_count, 2);
    ck_assert_uint_eq(hdr.header_size, 64 + 2 * 96);
    ck_assert_int_eq(segment_find_column(&hdr, "payload"), -1);
    /* key [256, 4256), value at the next 64-byte boundary, 4288. */
    ck_assert_uint_eq(hdr.columns[1].offset, 4288);
    ck_assert_uint_eq(hdr.file_size, 4288 + 500 * 8);
}
END_TEST

START_TEST(test_zero_rows)
{
    struct mkseg_spec spec = {0, 40, 1, false};
    struct segment_header hdr;
    char path[1024];
    char detail[256] = "";

    snprintf(path, sizeof(path), "%s/empty.seg", test_dir);
    ck_assert_int_eq(mkseg_write(path, &spec, detail, sizeof(detail)), 0);
    test_map_and_check(path, 1, false, &hdr);
    ck_assert_uint_eq(hdr.row_count, 0);
    ck_assert_uint_eq(hdr.columns[2].length, 0);
    ck_assert_uint_eq(hdr.columns[2].crc, 0);
}
END_TEST

START_TEST(test_bad_spec)
{
    struct mkseg_spec spec = {10, 15, 1, false};
    char path[1024];
    char detail[256] = "";

    snprintf(path, sizeof(path), "%s/bad.seg", test_dir);
    ck_assert_int_eq(mkseg_write(path, &spec, detail, sizeof(detail)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(detail, "row_bytes 15"));
    ck_assert_int_eq(access(path, F_OK), -1);
    spec.row_bytes = 16 + SEGMENT_MAX_BYTES_WIDTH + 1;
    ck_assert_int_eq(mkseg_write(path, &spec, detail, sizeof(detail)), -EINVAL);
    spec.row_bytes = 16;
    spec.rows = SEGMENT_MAX_ROWS + 1;
    ck_assert_int_eq(mkseg_write(path, &spec, detail, sizeof(detail)), -EINVAL);
}
END_TEST

START_TEST(test_io_error)
{
    struct mkseg_spec spec = {10, 16, 1, false};
    char path[1024];
    char detail[1024] = "";

    snprintf(path, sizeof(path), "%s/missing/x.seg", test_dir);
    ck_assert_int_eq(mkseg_write(path, &spec, detail, sizeof(detail)), -ENOENT);
    ck_assert_ptr_nonnull(strstr(detail, "open"));
    ck_assert_ptr_nonnull(strstr(detail, "missing/x.seg.tmp"));
}
END_TEST

START_TEST(test_synth_functions)
{
    int64_t vmin = INT64_MAX, vmax = INT64_MIN;
    int differ = 0;

    for (uint64_t row = 0; row < 100000; row++) {
        int64_t v = segment_synth_value(9, row);
        ck_assert_int_ge(v, -1000000);
        ck_assert_int_le(v, 1000000);
        vmin = v < vmin ? v : vmin;
        vmax = v > vmax ? v : vmax;
        ck_assert_int_lt(segment_synth_key(9, row), segment_synth_key(9, row + 1));
        differ += segment_synth_key(9, row) != segment_synth_key(10, row);
    }
    /* Uniform over the range: 100000 draws reach both ends closely. */
    ck_assert_int_lt(vmin, -990000);
    ck_assert_int_gt(vmax, 990000);
    /* The low two bits come from the seed: about 3/4 of keys differ between seeds. */
    ck_assert_int_gt(differ, 70000);
    ck_assert_int_eq(segment_synth_key(9, UINT64_C(1) << 40) >> 2, (int64_t)1 << 40);
}
END_TEST

START_TEST(test_names)
{
    ck_assert_str_eq(segment_error_name(-SEGMENT_ETRUNCATED), "truncated");
    ck_assert_str_eq(segment_error_name(-SEGMENT_EMAGIC), "bad_magic");
    ck_assert_str_eq(segment_error_name(-SEGMENT_EVERSION), "unknown_version");
    ck_assert_str_eq(segment_error_name(-SEGMENT_EHEADER), "bad_header");
    ck_assert_str_eq(segment_error_name(-SEGMENT_ERANGE), "out_of_range");
    ck_assert_str_eq(segment_error_name(SEGMENT_ECHECKSUM), "checksum_mismatch");
    ck_assert_str_eq(segment_error_name(-EIO), "unknown");
    ck_assert_str_eq(segment_error_name(0), "ok");
    /* One error space: the format's failures are errno values, all distinct. */
    ck_assert_int_eq(SEGMENT_ETRUNCATED, ENODATA);
    ck_assert_int_eq(SEGMENT_EMAGIC, ENOEXEC);
    ck_assert_int_eq(SEGMENT_EVERSION, EPROTONOSUPPORT);
    ck_assert_int_eq(SEGMENT_EHEADER, EBADMSG);
    ck_assert_int_eq(SEGMENT_ERANGE, ERANGE);
    ck_assert_int_eq(SEGMENT_ECHECKSUM, EILSEQ);
    ck_assert_str_eq(segment_col_type_name(SEGMENT_INT64), "int64");
    ck_assert_str_eq(segment_col_type_name(SEGMENT_FLOAT64), "float64");
    ck_assert_str_eq(segment_col_type_name(SEGMENT_BYTES), "bytes");
    ck_assert_str_eq(segment_col_type_name((enum segment_col_type)7), "unknown");
}
END_TEST

/*
 * The digest is a function of the header: the same file gives the same value,
 * a column's CRC, the row count or the seed changes it, and it is never 0.
 */
START_TEST(test_digest)
{
    struct test_seg t;
    struct segment_header h;
    uint64_t d;

    test_load_base(&t);
    ck_assert_int_eq(test_parse(&t), 0);
    d = segment_digest(&t.hdr);
    ck_assert_uint_ne(d, 0);
    h = t.hdr;
    ck_assert_uint_eq(segment_digest(&h), d);
    h.columns[h.column_count - 1].crc ^= 1;
    ck_assert_uint_ne(segment_digest(&h), d);
    h = t.hdr;
    h.row_count++;
    ck_assert_uint_ne(segment_digest(&h), d);
    h = t.hdr;
    h.seed++;
    ck_assert_uint_ne(segment_digest(&h), d);
    h = t.hdr;
    h.columns[0].name[0] ^= 0x20;
    ck_assert_uint_ne(segment_digest(&h), d);
    free(t.buf);
}
END_TEST

START_TEST(test_print_header)
{
    struct test_seg t;
    char *text = NULL;
    size_t size = 0;
    FILE *f;

    test_load_base(&t);
    ck_assert_int_eq(test_parse(&t), 0);
    f = open_memstream(&text, &size);
    ck_assert_ptr_nonnull(f);
    segment_print_header(f, &t.hdr);
    fclose(f);
    ck_assert_ptr_nonnull(strstr(text, "1000 rows"));
    ck_assert_ptr_nonnull(strstr(text, "file_size 48384"));
    ck_assert_ptr_nonnull(strstr(text, "payload"));
    ck_assert_ptr_nonnull(strstr(text, "bytes"));
    ck_assert_ptr_nonnull(strstr(text, "16384"));
    ck_assert_ptr_nonnull(strstr(text, "row width 48 bytes"));
    ck_assert_ptr_nonnull(strstr(text, "avg 48.38 file bytes per row"));
    free(text);
    free(t.buf);
}
END_TEST

/* Truncates base.seg on disk to n bytes and parses what is left. */
static int test_parse_truncated(size_t n, char *detail, size_t detail_len)
{
    struct segment_header hdr;
    unsigned char *buf;
    size_t len;
    int r;

    ck_assert_int_eq(truncate(test_base, (off_t)n), 0);
    buf = test_read_file(test_base, &len);
    ck_assert_uint_eq(len, n);
    r = segment_parse_header(buf, len, len, &hdr, detail, detail_len);
    free(buf);
    return r;
}

START_TEST(test_truncated)
{
    char detail[256];

    ck_assert_int_eq(test_parse_truncated(T_FILE_SIZE - 1, detail, sizeof(detail)),
                     -SEGMENT_ETRUNCATED);
    ck_assert_ptr_nonnull(strstr(detail, "48383"));
    ck_assert_int_eq(test_parse_truncated(T_KEY_OFF, detail, sizeof(detail)), -SEGMENT_ETRUNCATED);
    ck_assert_int_eq(test_parse_truncated(T_HEADER_SIZE - 1, detail, sizeof(detail)),
                     -SEGMENT_ETRUNCATED);
    ck_assert_int_eq(test_parse_truncated(100, detail, sizeof(detail)), -SEGMENT_ETRUNCATED);
    ck_assert_int_eq(test_parse_truncated(63, detail, sizeof(detail)), -SEGMENT_ETRUNCATED);
    ck_assert_int_eq(test_parse_truncated(0, detail, sizeof(detail)), -SEGMENT_ETRUNCATED);
}
END_TEST

START_TEST(test_trailing_bytes)
{
    struct test_seg t;
    unsigned char *longer;

    test_load_base(&t);
    longer = xcalloc(1, t.len + 64);
    memcpy(longer, t.buf, t.len);
    free(t.buf);
    t.buf = longer;
    t.len += 64;
    test_expect(&t, SEGMENT_ERANGE);
    free(t.buf);
}
END_TEST

START_TEST(test_bad_magic)
{
    struct test_seg t;

    test_load_base(&t);
    t.buf[7] = 'X';
    test_restamp(t.buf, t.len);
    test_expect(&t, SEGMENT_EMAGIC);
    free(t.buf);
}
END_TEST

START_TEST(test_unknown_version)
{
    struct test_seg t;

    test_load_base(&t);
    test_put32(t.buf, 8, 2);
    test_restamp(t.buf, t.len);
    test_expect(&t, SEGMENT_EVERSION);
    test_put32(t.buf, 8, 0);
    test_restamp(t.buf, t.len);
    test_expect(&t, SEGMENT_EVERSION);
    free(t.buf);
}
END_TEST

START_TEST(test_bad_header_crc)
{
    struct test_seg t;

    test_load_base(&t);
    t.buf[40] ^= 1; /* seed, not re-stamped */
    test_expect(&t, SEGMENT_EHEADER);
    ck_assert_ptr_nonnull(strstr(t.detail, "header_crc"));
    t.buf[40] ^= 1;
    ck_assert_int_eq(test_parse(&t), 0);
    t.buf[T_DESC(2) + 60] ^= 0x80; /* a descriptor byte is covered too */
    test_expect(&t, SEGMENT_EHEADER);
    t.buf[T_DESC(2) + 60] ^= 0x80;
    t.buf[36] ^= 0x10; /* the stored crc itself */
    test_expect(&t, SEGMENT_EHEADER);
    free(t.buf);
}
END_TEST

START_TEST(test_bad_column_count)
{
    struct test_seg t;

    test_load_base(&t);
    test_put32(t.buf, 12, 0);
    test_restamp(t.buf, t.len);
    test_expect(&t, SEGMENT_EHEADER);
    ck_assert_ptr_nonnull(strstr(t.detail, "column_count 0"));
    test_put32(t.buf, 12, 65);
    test_put32(t.buf, 32, 64 + 65 * 96);
    test_restamp(t.buf, t.len);
    test_expect(&t, SEGMENT_EHEADER);
    ck_assert_ptr_nonnull(strstr(t.detail, "column_count 65"));
    /* A count that disagrees with header_size. */
    test_put32(t.buf, 12, 2);
    test_put32(t.buf, 32, T_HEADER_SIZE);
    test_restamp(t.buf, t.len);
    test_expect(&t, SEGMENT_EHEADER);
    ck_assert_ptr_nonnull(strstr(t.detail, "header_size"));
    free(t.buf);
}
END_TEST

START_TEST(test_bad_row_count)
{
    struct test_seg t;

    test_load_base(&t);
    test_put64(t.buf, 16, SEGMENT_MAX_ROWS + 1);
    test_restamp(t.buf, t.len);
    test_expect(&t, SEGMENT_EHEADER);
    ck_assert_ptr_nonnull(strstr(t.detail, "row_count"));
    free(t.buf);
}
END_TEST

START_TEST(test_nonzero_reserved)
{
    struct test_seg t;

    test_load_base(&t);
    t.buf[63] = 1;
    test_restamp(t.buf, t.len);
    test_expect(&t, SEGMENT_EHEADER);
    t.buf[63] = 0;
    test_put32(t.buf, 48, 4); /* header flags */
    test_restamp(t.buf, t.len);
    test_expect(&t, SEGMENT_EHEADER);
    test_put32(t.buf, 48, 0);
    t.buf[T_DESC(1) + 95] = 0xff; /* descriptor reserved */
    test_restamp(t.buf, t.len);
    test_expect(&t, SEGMENT_EHEADER);
    ck_assert_ptr_nonnull(strstr(t.detail, "column 1 (value)"));
    t.buf[T_DESC(1) + 95] = 0;
    test_restamp(t.buf, t.len);
    ck_assert_int_eq(test_parse(&t), 0);
    free(t.buf);
}
END_TEST

START_TEST(test_bad_type)
{
    struct test_seg t;

    test_load_base(&t);
    test_put32(t.buf, T_DESC(1) + 48, 4);
    test_restamp(t.buf, t.len);
    test_expect(&t, SEGMENT_EHEADER);
    ck_assert_ptr_nonnull(strstr(t.detail, "unknown type 4"));
    test_put32(t.buf, T_DESC(1) + 48, 0);
    test_restamp(t.buf, t.len);
    test_expect(&t, SEGMENT_EHEADER);
    free(t.buf);
}
END_TEST

START_TEST(test_bad_width)
{
    struct test_seg t;

    test_load_base(&t);
    test_put32(t.buf, T_DESC(0) + 52, 4); /* int64 must be 8 */
    test_restamp(t.buf, t.len);
    test_expect(&t, SEGMENT_EHEADER);
    test_put32(t.buf, T_DESC(0) + 52, 8);
    test_put32(t.buf, T_DESC(2) + 52, 0); /* bytes 0 */
    test_restamp(t.buf, t.len);
    test_expect(&t, SEGMENT_EHEADER);
    test_put32(t.buf, T_DESC(2) + 52, SEGMENT_MAX_BYTES_WIDTH + 1);
    test_restamp(t.buf, t.len);
    test_expect(&t, SEGMENT_EHEADER);
    free(t.buf);
}
END_TEST

START_TEST(test_bad_name)
{
    struct test_seg t;

    test_load_base(&t);
    t.buf[T_DESC(2) + 3] = '-'; /* "pay-oad" */
    test_restamp(t.buf, t.len);
    test_expect(&t, SEGMENT_EHEADER);
    ck_assert_ptr_nonnull(strstr(t.detail, "0x2d"));
    t.buf[T_DESC(2) + 3] = 'l';
    t.buf[T_DESC(2) + 20] = 'x'; /* junk after the NUL */
    test_restamp(t.buf, t.len);
    test_expect(&t, SEGMENT_EHEADER);
    memset(t.buf + T_DESC(2), 'a', 48); /* no NUL */
    test_restamp(t.buf, t.len);
    test_expect(&t, SEGMENT_EHEADER);
    memset(t.buf + T_DESC(2), 0, 48); /* empty */
    test_restamp(t.buf, t.len);
    test_expect(&t, SEGMENT_EHEADER);
    memcpy(t.buf + T_DESC(2), "key", 3); /* duplicate of column 0 */
    test_restamp(t.buf, t.len);
    test_expect(&t, SEGMENT_EHEADER);
    memcpy(t.buf + T_DESC(2), "Pay_10", 6); /* allowed characters */
    test_restamp(t.buf, t.len);
    ck_assert_int_eq(test_parse(&t), 0);
    ck_assert_str_eq(t.hdr.columns[2].name, "Pay_10");
    free(t.buf);
}
END_TEST

START_TEST(test_column_flags)
{
    struct test_seg t;

    test_load_base(&t);
    test_put32(t.buf, T_DESC(2) + 76, SEGMENT_COL_ANON);
    test_restamp(t.buf, t.len);
    ck_assert_int_eq(test_parse(&t), 0);
    ck_assert_uint_eq(t.hdr.columns[2].flags, SEGMENT_COL_ANON);
    test_put32(t.buf, T_DESC(2) + 76, 2);
    test_restamp(t.buf, t.len);
    test_expect(&t, SEGMENT_EHEADER);
    free(t.buf);
}
END_TEST

START_TEST(test_offset_misaligned)
{
    struct test_seg t;

    test_load_base(&t);
    test_put64(t.buf, T_DESC(2) + 56, T_PAYLOAD_OFF + 8);
    test_restamp(t.buf, t.len);
    test_expect(&t, SEGMENT_ERANGE);
    ck_assert_ptr_nonnull(
        strstr(t.detail, "column 2 (payload): offset 16392 is not 64-byte aligned"));
    free(t.buf);
}
END_TEST

START_TEST(test_offset_out_of_range)
{
    struct test_seg t;

    test_load_base(&t);
    test_put64(t.buf, T_DESC(2) + 56, (uint64_t)T_FILE_SIZE + 64 - T_FILE_SIZE % 64);
    test_restamp(t.buf, t.len);
    test_expect(&t, SEGMENT_ERANGE);
    ck_assert_ptr_nonnull(strstr(t.detail, "past the end"));
    /* Starts inside the file but runs off its end. */
    test_put64(t.buf, T_DESC(2) + 56, T_FILE_SIZE - T_FILE_SIZE % 64);
    test_restamp(t.buf, t.len);
    test_expect(&t, SEGMENT_ERANGE);
    /* Near 2^64: offset + length must not wrap around to look valid. */
    test_put64(t.buf, T_DESC(2) + 56, UINT64_MAX - 63);
    test_restamp(t.buf, t.len);
    test_expect(&t, SEGMENT_ERANGE);
    /* Inside the header. */
    test_put64(t.buf, T_DESC(0) + 56, 256);
    test_put64(t.buf, T_DESC(2) + 56, T_PAYLOAD_OFF);
    test_restamp(t.buf, t.len);
    test_expect(&t, SEGMENT_ERANGE);
    ck_assert_ptr_nonnull(strstr(t.detail, "inside the header"));
    free(t.buf);
}
END_TEST

START_TEST(test_bad_length)
{
    struct test_seg t;

    test_load_base(&t);
    test_put64(t.buf, T_DESC(1) + 64, TEST_ROWS * 8 - 8);
    test_restamp(t.buf, t.len);
    test_expect(&t, SEGMENT_ERANGE);
    ck_assert_ptr_nonnull(strstr(t.detail, "is not row_count"));
    free(t.buf);
}
END_TEST

START_TEST(test_overlap)
{
    struct test_seg t;

    test_load_base(&t);
    test_put64(t.buf, T_DESC(1) + 56, T_KEY_OFF + 64); /* value starts inside key */
    test_restamp(t.buf, t.len);
    test_expect(&t, SEGMENT_ERANGE);
    ck_assert_ptr_nonnull(strstr(t.detail, "overlaps"));
    test_put64(t.buf, T_DESC(1) + 56, T_KEY_OFF); /* identical ranges */
    test_restamp(t.buf, t.len);
    test_expect(&t, SEGMENT_ERANGE);
    free(t.buf);
}
END_TEST

START_TEST(test_length_overflow)
{
    struct test_seg t;
    uint64_t rows = (UINT64_C(1) << 61) + 1; /* rows * 8 wraps to 8 */

    test_load_base(&t);
    /* A wrapped product that a naive check would accept: caught by the row limit. */
    test_put64(t.buf, 16, rows);
    test_put64(t.buf, T_DESC(0) + 64, rows * 8);
    test_put64(t.buf, T_DESC(1) + 64, rows * 8);
    test_put64(t.buf, T_DESC(2) + 64, rows * 32);
    test_restamp(t.buf, t.len);
    test_expect(&t, SEGMENT_EHEADER);
    /* The largest legal product (2^40 rows * 2^20 bytes) is exact and out of range. */
    test_put64(t.buf, 16, SEGMENT_MAX_ROWS);
    test_put64(t.buf, T_DESC(0) + 64, SEGMENT_MAX_ROWS * 8);
    test_put32(t.buf, T_DESC(2) + 52, SEGMENT_MAX_BYTES_WIDTH);
    test_restamp(t.buf, t.len);
    test_expect(&t, SEGMENT_ERANGE);
    ck_assert_ptr_nonnull(strstr(t.detail, "column 0 (key)"));
    free(t.buf);
}
END_TEST

START_TEST(test_checksum)
{
    struct test_seg t;

    test_load_base(&t);
    t.buf[T_PAYLOAD_OFF + 1234] ^= 0x01;
    ck_assert_int_eq(test_parse(&t), 0);
    ck_assert_int_eq(segment_verify(t.buf, &t.hdr, t.detail, sizeof(t.detail)), -SEGMENT_ECHECKSUM);
    ck_assert_ptr_nonnull(strstr(t.detail, "column 2 (payload)"));
    t.buf[T_PAYLOAD_OFF + 1234] ^= 0x01;
    ck_assert_int_eq(segment_verify(t.buf, &t.hdr, t.detail, sizeof(t.detail)), 0);
    t.buf[T_KEY_OFF] ^= 0x80;
    ck_assert_int_eq(segment_verify(t.buf, &t.hdr, t.detail, sizeof(t.detail)), -SEGMENT_ECHECKSUM);
    ck_assert_ptr_nonnull(strstr(t.detail, "column 0 (key)"));
    t.buf[T_KEY_OFF] ^= 0x80;
    /* A wrong stored crc (header re-stamped) is caught too. */
    test_put32(t.buf, T_DESC(1) + 72, test_get32(t.buf, T_DESC(1) + 72) + 1);
    test_restamp(t.buf, t.len);
    ck_assert_int_eq(test_parse(&t), 0);
    ck_assert_int_eq(segment_verify(t.buf, &t.hdr, t.detail, sizeof(t.detail)), -SEGMENT_ECHECKSUM);
    ck_assert_ptr_nonnull(strstr(t.detail, "column 1 (value)"));
    free(t.buf);
}
END_TEST

/* The corrupted file on disk gives the same answer as the buffer. */
START_TEST(test_corrupt_file_on_disk)
{
    struct segment_header hdr;
    struct test_seg t;
    char path[1024];
    char detail[256] = "";
    unsigned char *buf;
    size_t len;

    test_load_base(&t);
    test_put32(t.buf, 8, 9);
    test_restamp(t.buf, t.len);
    snprintf(path, sizeof(path), "%s/v9.seg", test_dir);
    test_write_file(path, t.buf, t.len);
    buf = test_read_file(path, &len);
    ck_assert_int_eq(segment_parse_header(buf, len, len, &hdr, detail, sizeof(detail)),
                     -SEGMENT_EVERSION);
    ck_assert_ptr_nonnull(strstr(detail, "version 9"));
    free(buf);
    free(t.buf);
}
END_TEST

static uint64_t fuzz_state = 0x9E3779B97F4A7C15ULL;

static uint64_t fuzz_rng(void)
{
    fuzz_state ^= fuzz_state << 13;
    fuzz_state ^= fuzz_state >> 7;
    fuzz_state ^= fuzz_state << 17;
    return fuzz_state;
}

START_TEST(test_fuzz_header)
{
    struct test_seg t;
    /* What the header parser can return; seen[i] counts outcomes[i]. */
    static const int outcomes[] = {0,
                                   -SEGMENT_ETRUNCATED,
                                   -SEGMENT_EMAGIC,
                                   -SEGMENT_EVERSION,
                                   -SEGMENT_EHEADER,
                                   -SEGMENT_ERANGE};
    int seen[sizeof(outcomes) / sizeof(outcomes[0])] = {0};
    const int n_outcomes = (int)(sizeof(outcomes) / sizeof(outcomes[0]));

    test_load_base(&t);
    for (int iter = 0; iter < 2000; iter++) {
        /* An exact-size heap copy, so ASan flags any read past len. */
        size_t len = T_HEADER_SIZE;
        uint64_t file_size = T_FILE_SIZE;
        struct segment_header hdr;
        char detail[128];
        unsigned char *buf;
        int flips = 1 + (int)(fuzz_rng() % 8);
        int r, k;

        switch (fuzz_rng() % 4) {
        case 0:
            len = fuzz_rng() % (T_HEADER_SIZE + 1);
            break;
        case 1:
            file_size = fuzz_rng() % 2 ? fuzz_rng() : fuzz_rng() % (T_FILE_SIZE * 2);
            break;
        default:
            break;
        }
        buf = xmalloc(len);
        memcpy(buf, t.buf, len);
        if (iter % 50 == 0) {
            for (size_t i = 0; i < len; i++)
                buf[i] = (unsigned char)fuzz_rng();
            if (len >= 12) {
                memcpy(buf, "SLUICESG", 8);
                test_put32(buf, 8, 1);
            }
        }
        for (int f = 0; f < flips && len > 0; f++) {
            size_t at = fuzz_rng() % len;
            switch (fuzz_rng() % 3) {
            case 0:
                buf[at] ^= (unsigned char)(1u << (fuzz_rng() % 8));
                break;
            case 1:
                buf[at] = (unsigned char)fuzz_rng();
                break;
            default:
                if (at + 8 <= len)
                    test_put64(buf, at, fuzz_rng() % 2 ? fuzz_rng() : fuzz_rng() % 100000);
                break;
            }
        }
        /* Mostly re-stamp, so mutations get past the CRC to the field checks. */
        if (fuzz_rng() % 4 != 0)
            test_restamp(buf, len);
        r = segment_parse_header(buf, len, file_size, &hdr, detail, sizeof(detail));
        for (k = 0; k < n_outcomes && outcomes[k] != r; k++)
            ;
        ck_assert_msg(k < n_outcomes, "iteration %d: unexpected %d", iter, r);
        seen[k]++;
        free(buf);
    }
    /* The mutations reached every check the header parser has. */
    for (int e = 0; e < n_outcomes; e++)
        ck_assert_msg(seen[e] > 0, "no input produced %s", segment_error_name(outcomes[e]));
    free(t.buf);
}
END_TEST

/* One TCase per behaviour, each with its own temp dir and base segment. */
static void test_add(Suite *s, const char *name, const TTest *test)
{
    TCase *tc = tcase_create(name);

    tcase_add_unchecked_fixture(tc, test_setup, test_teardown);
    tcase_add_test(tc, test);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
}

static Suite *segment_suite(void)
{
    Suite *s = suite_create("segfmt");

    test_add(s, "roundtrip", test_roundtrip);
    test_add(s, "prefix_is_enough", test_prefix_is_enough);
    test_add(s, "float_variant", test_float_variant);
    test_add(s, "row_bytes_16", test_row_bytes_16);
    test_add(s, "zero_rows", test_zero_rows);
    test_add(s, "bad_spec", test_bad_spec);
    test_add(s, "io_error", test_io_error);
    test_add(s, "synth_functions", test_synth_functions);
    test_add(s, "names", test_names);
    test_add(s, "print_header", test_print_header);
    test_add(s, "truncated", test_truncated);
    test_add(s, "trailing_bytes", test_trailing_bytes);
    test_add(s, "bad_magic", test_bad_magic);
    test_add(s, "unknown_version", test_unknown_version);
    test_add(s, "bad_header_crc", test_bad_header_crc);
    test_add(s, "bad_column_count", test_bad_column_count);
    test_add(s, "bad_row_count", test_bad_row_count);
    test_add(s, "nonzero_reserved", test_nonzero_reserved);
    test_add(s, "bad_type", test_bad_type);
    test_add(s, "bad_width", test_bad_width);
    test_add(s, "bad_name", test_bad_name);
    test_add(s, "column_flags", test_column_flags);
    test_add(s, "offset_misaligned", test_offset_misaligned);
    test_add(s, "offset_out_of_range", test_offset_out_of_range);
    test_add(s, "bad_length", test_bad_length);
    test_add(s, "overlap", test_overlap);
    test_add(s, "length_overflow", test_length_overflow);
    test_add(s, "checksum", test_checksum);
    test_add(s, "digest", test_digest);
    test_add(s, "corrupt_file_on_disk", test_corrupt_file_on_disk);
    test_add(s, "fuzz_header", test_fuzz_header);
    return s;
}

int main(void)
{
    return harness_run_suite(segment_suite());
}
