/*
 * crc32c: the Castagnoli CRC (polynomial 0x1EDC6F41, reflected 0x82F63B78),
 * used for segment header and column checksums. Values are the standard
 * finalised CRC-32C (initial value and final xor 0xFFFFFFFF), so
 * crc32c("123456789") == 0xE3069283 and results agree with other tools.
 *
 * On x86_64 CPUs with SSE4.2 the crc32 instruction is used (detected at run
 * time, so no special compiler flags are needed); elsewhere a slicing-by-8
 * table version runs. Both give identical results. All functions are
 * thread-safe and keep no per-call state.
 */
#ifndef SLUICE_CRC32C_H
#define SLUICE_CRC32C_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Extends crc, the CRC-32C of some earlier bytes (0 for none), with len bytes
 * at buf and returns the CRC-32C of the concatenation:
 * crc32c_update(crc32c_update(0, a, na), b, nb) == crc32c(a||b). buf may have
 * any alignment and may be NULL when len is 0.
 */
uint32_t crc32c_update(uint32_t crc, const void *buf, size_t len);

/* Returns the CRC-32C of len bytes at buf; same as crc32c_update(0, buf, len). */
uint32_t crc32c(const void *buf, size_t len);

/*
 * The two implementations behind crc32c_update, exposed so tests can compare
 * them. crc32c_update_hw may only be called when crc32c_hw_available() is
 * true; crc32c_update_sw always works.
 */
bool crc32c_hw_available(void);
uint32_t crc32c_update_hw(uint32_t crc, const void *buf, size_t len);
uint32_t crc32c_update_sw(uint32_t crc, const void *buf, size_t len);

#endif
