/*
 * crc32c: CRC-32C with a hardware path and a software fallback.
 *
 * Expected load: every byte of every segment passes through here once when it
 * is written and once when it is verified, so multi-GiB inputs are normal.
 * The SSE4.2 path consumes 8 bytes per crc32 instruction (several GB/s per
 * core); the slicing-by-8 fallback manages roughly 1-2 GB/s. The hardware path
 * is compiled with a target attribute rather than -msse4.2 so the rest of the
 * program stays runnable on any x86_64, and is chosen per call from a flag
 * set once from __builtin_cpu_supports.
 *
 * Loads use memcpy so that unaligned buffers are well defined (and clean under
 * UBSan); the compiler turns them into plain moves.
 */
#include "crc32c.h"

#include <endian.h>
#include <pthread.h>
#include <string.h>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

#define CRC32C_POLY 0x82F63B78u

/* crc32c_table[k][b]: the CRC of byte b followed by k zero bytes. */
static uint32_t crc32c_table[8][256];
static pthread_once_t crc32c_table_once = PTHREAD_ONCE_INIT;

/* Builds the slicing tables; run once, through pthread_once. */
static void crc32c_table_init(void)
{
    for (uint32_t b = 0; b < 256; b++) {
        uint32_t c = b;
        for (int i = 0; i < 8; i++)
            c = (c & 1) ? (c >> 1) ^ CRC32C_POLY : c >> 1;
        crc32c_table[0][b] = c;
    }
    for (uint32_t b = 0; b < 256; b++) {
        for (int k = 1; k < 8; k++) {
            uint32_t c = crc32c_table[k - 1][b];
            crc32c_table[k][b] = (c >> 8) ^ crc32c_table[0][c & 0xff];
        }
    }
}

uint32_t crc32c_update_sw(uint32_t crc, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    uint32_t c = ~crc;

    pthread_once(&crc32c_table_once, crc32c_table_init);
    while (len > 0 && ((uintptr_t)p & 7) != 0) {
        c = crc32c_table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
        len--;
    }
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        w = le64toh(w) ^ c;
        c = crc32c_table[7][w & 0xff] ^ crc32c_table[6][(w >> 8) & 0xff] ^
            crc32c_table[5][(w >> 16) & 0xff] ^ crc32c_table[4][(w >> 24) & 0xff] ^
            crc32c_table[3][(w >> 32) & 0xff] ^ crc32c_table[2][(w >> 40) & 0xff] ^
            crc32c_table[1][(w >> 48) & 0xff] ^ crc32c_table[0][w >> 56];
        p += 8;
        len -= 8;
    }
    while (len > 0) {
        c = crc32c_table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
        len--;
    }
    return ~c;
}

#if defined(__x86_64__)

/* -1 until first use, then 0 or 1; racing first callers store the same value. */
static int crc32c_hw_state = -1;

bool crc32c_hw_available(void)
{
    int state = __atomic_load_n(&crc32c_hw_state, __ATOMIC_RELAXED);

    if (state < 0) {
        /* Needed if the first call comes from a constructor, harmless otherwise. */
        __builtin_cpu_init();
        state = __builtin_cpu_supports("sse4.2") ? 1 : 0;
        __atomic_store_n(&crc32c_hw_state, state, __ATOMIC_RELAXED);
    }
    return state == 1;
}

__attribute__((target("sse4.2"))) uint32_t crc32c_update_hw(uint32_t crc, const void *buf,
                                                            size_t len)
{
    const unsigned char *p = buf;
    uint64_t c = ~crc;

    while (len > 0 && ((uintptr_t)p & 7) != 0) {
        c = _mm_crc32_u8((uint32_t)c, *p++);
        len--;
    }
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c = _mm_crc32_u64(c, w);
        p += 8;
        len -= 8;
    }
    while (len > 0) {
        c = _mm_crc32_u8((uint32_t)c, *p++);
        len--;
    }
    return ~(uint32_t)c;
}

#else

bool crc32c_hw_available(void)
{
    return false;
}

/* No hardware path on this architecture: callers are told so, but stay correct. */
uint32_t crc32c_update_hw(uint32_t crc, const void *buf, size_t len)
{
    return crc32c_update_sw(crc, buf, len);
}

#endif

uint32_t crc32c_update(uint32_t crc, const void *buf, size_t len)
{
    if (crc32c_hw_available())
        return crc32c_update_hw(crc, buf, len);
    return crc32c_update_sw(crc, buf, len);
}

uint32_t crc32c(const void *buf, size_t len)
{
    return crc32c_update(0, buf, len);
}
