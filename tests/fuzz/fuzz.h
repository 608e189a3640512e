/*
 * fuzz: helpers shared by the libFuzzer targets in tests/fuzz/. Each target
 * is one file with LLVMFuzzerTestOneInput; this header gives them the
 * prototypes (-Wmissing-prototypes), an oracle that aborts with a message,
 * and exact-size copies of the input so that ASan sees any over-read.
 */
#ifndef SLUICE_FUZZ_H
#define SLUICE_FUZZ_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* An oracle: a broken invariant is a crash libFuzzer keeps the input of. */
#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: fuzz check failed: %s\n", __FILE__, __LINE__, #cond);          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Same value, or both NaN: -0.0 and 0.0 may legitimately swap on the wire. */
static inline bool fuzz_same_double(double a, double b)
{
    return a == b || (isnan(a) && isnan(b));
}

/* A heap copy of exactly size bytes (malloc(0) is given one byte it never reads). */
static inline uint8_t *fuzz_copy(const uint8_t *data, size_t size)
{
    uint8_t *p = malloc(size == 0 ? 1 : size);

    if (p == NULL)
        abort();
    if (size > 0)
        memcpy(p, data, size);
    return p;
}

/* The input up to its first NUL as a heap string of exactly that length plus one. */
static inline char *fuzz_string(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t n = nul != NULL ? (size_t)(nul - data) : size;
    char *s = malloc(n + 1);

    if (s == NULL)
        abort();
    memcpy(s, data, n);
    s[n] = '\0';
    return s;
}

#endif
