/*
 * fuzz_segment_header: segment_parse_header on untrusted file bytes (every
 * segment a node opens, and `sluice-coord import`), with len = file_size =
 * the input size, and segment_verify over the same exact-size heap buffer
 * when the header parses.
 *
 * A random header almost never carries a correct header_crc, which would
 * keep the fuzzer at the CRC check; so each input is parsed twice, as given
 * and with header_crc recomputed, and the second pass reaches the field and
 * descriptor checks. Oracles: a header that parses is self-consistent
 * (every column inside the file, after the header), and parsing only the
 * header_size prefix gives the same answer as parsing the whole buffer, as
 * segfmt.h promises.
 */
#include "fuzz.h"

#include "crc32c.h"
#include "segfmt.h"

static uint32_t load32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void check_header(const struct segment_header *h, size_t size)
{
    FUZZ_CHECK(h->version == SEGMENT_VERSION);
    FUZZ_CHECK(h->column_count >= 1 && h->column_count <= SEGMENT_MAX_COLUMNS);
    FUZZ_CHECK(h->header_size == SEGMENT_FIXED_HEADER + h->column_count * SEGMENT_COLUMN_DESC);
    FUZZ_CHECK(h->header_size <= size && h->file_size == size);
    FUZZ_CHECK(h->row_count <= SEGMENT_MAX_ROWS);
    for (uint32_t i = 0; i < h->column_count; i++) {
        const struct segment_column *c = &h->columns[i];

        FUZZ_CHECK(c->name[0] != '\0' && memchr(c->name, '\0', sizeof(c->name)) != NULL);
        FUZZ_CHECK(segment_find_column(h, c->name) == (int)i);
        FUZZ_CHECK(c->offset % SEGMENT_ALIGN == 0 && c->offset >= h->header_size);
        FUZZ_CHECK(c->offset <= size && c->length <= size - c->offset);
        FUZZ_CHECK(c->length == h->row_count * c->width);
    }
}

/* Parses buf[0..size) as a whole file, then its header_size prefix alone. */
static void parse(const uint8_t *buf, size_t size)
{
    struct segment_header hdr, phdr;
    char detail[256];
    int r, pr;

    r = segment_parse_header(buf, size, size, &hdr, detail, sizeof(detail));
    FUZZ_CHECK(r == 0 || r == -SEGMENT_ETRUNCATED || r == -SEGMENT_EMAGIC ||
               r == -SEGMENT_EVERSION || r == -SEGMENT_EHEADER || r == -SEGMENT_ERANGE);
    FUZZ_CHECK(memchr(detail, '\0', sizeof(detail)) != NULL || r == 0);
    if (r == 0) {
        uint8_t *prefix;

        check_header(&hdr, size);
        r = segment_verify(buf, &hdr, detail, sizeof(detail));
        FUZZ_CHECK(r == 0 || r == -SEGMENT_ECHECKSUM);
        /* The contract: a prefix of header_size bytes is enough, and never over-read. */
        prefix = fuzz_copy(buf, hdr.header_size);
        pr = segment_parse_header(prefix, hdr.header_size, size, &phdr, NULL, 0);
        FUZZ_CHECK(pr == 0 && memcmp(&hdr, &phdr, sizeof(hdr)) == 0);
        free(prefix);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = fuzz_copy(data, size);
    uint32_t columns, header_size;

    parse(buf, size);
    if (size >= SEGMENT_FIXED_HEADER) {
        columns = load32(buf + 12);
        header_size = SEGMENT_FIXED_HEADER + columns * SEGMENT_COLUMN_DESC;
        if (columns >= 1 && columns <= SEGMENT_MAX_COLUMNS && header_size <= size &&
            load32(buf + 32) == header_size) {
            static const uint8_t zero[4];
            uint32_t crc = crc32c_update(0, buf, 36);

            crc = crc32c_update(crc, zero, sizeof(zero));
            crc = crc32c_update(crc, buf + 40, header_size - 40);
            if (crc != load32(buf + 36)) {
                for (int i = 0; i < 4; i++)
                    buf[36 + i] = (uint8_t)(crc >> (8 * i));
                parse(buf, size);
            }
        }
    }
    free(buf);
    return 0;
}
