/*
 * fuzz_framer: the strict HTTP request framing (common/framer.c) on raw
 * bytes. The input is fed whole, then again in pieces whose sizes come from
 * the input's first byte. Oracles: what passes is a prefix of the input,
 * byte for byte; both feedings pass the same requests and bytes and refuse
 * (or not) with the same status; a refusal has a 4xx or 501 status.
 */
#include "fuzz.h"

#include <errno.h>

#include <event2/buffer.h>

#include "framer.h"

struct run {
    unsigned long long passed;
    int status;
    size_t out;
};

static struct run feed(const uint8_t *data, size_t size, size_t step)
{
    struct framer *f = framer_new(4096, 2048);
    struct evbuffer *src = evbuffer_new(), *dst = evbuffer_new();
    struct run r = {0};

    for (size_t off = 0; off < size; off += step) {
        size_t n = size - off < step ? size - off : step;

        evbuffer_add(src, data + off, n);
        if (framer_feed(f, src, dst) == -EPROTO) {
            FUZZ_CHECK(r.status == 0);
            r.status = framer_status(f);
            FUZZ_CHECK((r.status >= 400 && r.status < 500) || r.status == 501);
        }
        FUZZ_CHECK(evbuffer_get_length(src) == 0);
    }
    r.passed = framer_passed(f);
    r.out = evbuffer_get_length(dst);
    FUZZ_CHECK(r.out <= size);
    FUZZ_CHECK(r.out == 0 || memcmp(evbuffer_pullup(dst, -1), data, r.out) == 0);
    FUZZ_CHECK((r.passed == 0) == (r.out == 0));
    evbuffer_free(src);
    evbuffer_free(dst);
    framer_free(f);
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct run whole, parts;

    if (size == 0)
        return 0;
    whole = feed(data + 1, size - 1, size);
    parts = feed(data + 1, size - 1, (size_t)data[0] % 17 + 1);
    FUZZ_CHECK(whole.passed == parts.passed);
    FUZZ_CHECK(whole.status == parts.status);
    FUZZ_CHECK(whole.out == parts.out);
    return 0;
}
