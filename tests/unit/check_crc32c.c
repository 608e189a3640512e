/*
 * check_crc32c: unit tests for common/crc32c. Checks published CRC-32C
 * vectors, that the SSE4.2 and table implementations agree on buffers of many
 * lengths and alignments (this is what catches a broken head/tail loop), and
 * that chaining crc32c_update over pieces equals one pass over the whole.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "suite.h"

/* A fixed xorshift generator so failures reproduce. */
static uint64_t test_rng_state = 0x2545F4914F6CDD1DULL;

static uint64_t test_rng(void)
{
    test_rng_state ^= test_rng_state << 13;
    test_rng_state ^= test_rng_state >> 7;
    test_rng_state ^= test_rng_state << 17;
    return test_rng_state;
}

static void test_fill(unsigned char *buf, size_t len)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (unsigned char)test_rng();
}

START_TEST(test_known_vectors)
{
    static const unsigned char zeros[32];
    unsigned char ones[32];
    unsigned char inc[32];

    memset(ones, 0xff, sizeof(ones));
    for (size_t i = 0; i < sizeof(inc); i++)
        inc[i] = (unsigned char)i;
    /* RFC 3720 (iSCSI) appendix B.4 vectors and the usual check value. */
    ck_assert_uint_eq(crc32c("123456789", 9), 0xE3069283u);
    ck_assert_uint_eq(crc32c(zeros, sizeof(zeros)), 0x8A9136AAu);
    ck_assert_uint_eq(crc32c(ones, sizeof(ones)), 0x62A8AB43u);
    ck_assert_uint_eq(crc32c(inc, sizeof(inc)), 0x46DD794Eu);
    ck_assert_uint_eq(crc32c("", 0), 0u);
    ck_assert_uint_eq(crc32c(NULL, 0), 0u);
    ck_assert_uint_eq(crc32c_update_sw(0, "123456789", 9), 0xE3069283u);
    ck_assert_uint_eq(crc32c_update_sw(0, zeros, sizeof(zeros)), 0x8A9136AAu);
    if (crc32c_hw_available()) {
        ck_assert_uint_eq(crc32c_update_hw(0, "123456789", 9), 0xE3069283u);
        ck_assert_uint_eq(crc32c_update_hw(0, inc, sizeof(inc)), 0x46DD794Eu);
    }
}
END_TEST

START_TEST(test_hw_matches_sw)
{
    enum { MAX_LEN = 4096 + 64 };
    static unsigned char buf[MAX_LEN + 16];
    size_t lens[] = {0,  1,  2,  3,  7,   8,    9,    15,   16,     17,
                     31, 63, 64, 65, 255, 1000, 4095, 4096, MAX_LEN};

    if (!crc32c_hw_available())
        return;
    for (int round = 0; round < 20; round++) {
        test_fill(buf, MAX_LEN + 16);
        for (size_t li = 0; li < sizeof(lens) / sizeof(lens[0]); li++) {
            for (size_t align = 0; align < 16; align++) {
                uint32_t seed = round % 2 ? (uint32_t)test_rng() : 0;
                uint32_t sw = crc32c_update_sw(seed, buf + align, lens[li]);
                uint32_t hw = crc32c_update_hw(seed, buf + align, lens[li]);
                ck_assert_msg(sw == hw, "len=%zu align=%zu: sw 0x%08x hw 0x%08x", lens[li], align,
                              sw, hw);
            }
        }
    }
    /* Every length up to 300, since the tail loops differ per length mod 8. */
    for (size_t len = 0; len <= 300; len++) {
        ck_assert_uint_eq(crc32c_update_sw(0, buf + 3, len), crc32c_update_hw(0, buf + 3, len));
    }
}
END_TEST

START_TEST(test_sw_is_bitwise_crc)
{
    /* Reference: the bit-at-a-time definition, independent of the tables. */
    unsigned char buf[257];

    test_fill(buf, sizeof(buf));
    for (size_t len = 0; len <= sizeof(buf); len += 37) {
        uint32_t c = 0xFFFFFFFFu;
        for (size_t i = 0; i < len; i++) {
            c ^= buf[i];
            for (int k = 0; k < 8; k++)
                c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        }
        ck_assert_uint_eq(crc32c_update_sw(0, buf, len), ~c);
        ck_assert_uint_eq(crc32c(buf, len), ~c);
    }
}
END_TEST

START_TEST(test_chaining)
{
    enum { LEN = 5000 };
    static unsigned char buf[LEN];
    uint32_t whole;

    test_fill(buf, LEN);
    whole = crc32c(buf, LEN);
    ck_assert_uint_eq(crc32c_update(crc32c_update(0, "1234", 4), "56789", 5), 0xE3069283u);
    for (size_t split = 0; split <= LEN; split += 97) {
        uint32_t c = crc32c_update(0, buf, split);
        ck_assert_uint_eq(crc32c_update(c, buf + split, LEN - split), whole);
        c = crc32c_update_sw(0, buf, split);
        ck_assert_uint_eq(crc32c_update_sw(c, buf + split, LEN - split), whole);
    }
    /* Many small uneven pieces. */
    {
        uint32_t c = 0;
        size_t off = 0;
        while (off < LEN) {
            size_t n = 1 + test_rng() % 23;
            if (n > LEN - off)
                n = LEN - off;
            c = crc32c_update(c, buf + off, n);
            off += n;
        }
        ck_assert_uint_eq(c, whole);
    }
}
END_TEST

static Suite *crc32c_suite(void)
{
    Suite *s = suite_create("crc32c");
    TCase *tc;

    tc = tcase_create("known_vectors");
    tcase_add_test(tc, test_known_vectors);
    suite_add_tcase(s, tc);
    tc = tcase_create("hw_matches_sw");
    tcase_add_test(tc, test_hw_matches_sw);
    suite_add_tcase(s, tc);
    tc = tcase_create("sw_is_bitwise_crc");
    tcase_add_test(tc, test_sw_is_bitwise_crc);
    suite_add_tcase(s, tc);
    tc = tcase_create("chaining");
    tcase_add_test(tc, test_chaining);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return harness_run_suite(crc32c_suite());
}
