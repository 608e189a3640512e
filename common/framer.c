/*
 * framer: the strict HTTP/1.1 request framing check of framer.h. A state
 * machine over the bytes held for the current request: request line, header
 * lines, then a Content-Length body or chunks, line by line; a request is
 * moved to the output only once it is complete.
 */
#include "framer.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "log.h"
#include "xmalloc.h"

enum framer_state {
    FRAMER_LINE,       /* expecting a request line */
    FRAMER_HEADER,     /* expecting a header line or the empty line */
    FRAMER_BODY,       /* body_left bytes of a Content-Length body */
    FRAMER_CHUNK_SIZE, /* expecting a chunk-size line */
    FRAMER_CHUNK_DATA, /* body_left bytes of chunk data, then CRLF */
    FRAMER_TRAILER,    /* expecting the empty line after the last chunk */
    FRAMER_FAILED,     /* refused: input is discarded */
};

struct framer {
    enum framer_state state;
    size_t max_body, max_headers;
    struct evbuffer *hold; /* the request being checked, and what follows it */
    size_t scan;           /* bytes of hold checked so far */
    size_t head_bytes;
    unsigned n_headers, n_length, n_encoding;
    bool chunked;
    uint64_t length;
    uint64_t body_left, body_total;
    unsigned long long passed; /* requests passed on so far */
    int fail_status;
    char fail_code[32];
    char fail_msg[160];
};

static int framer_fail(struct framer *f, int status, const char *code, const char *fmt,
                       ...) __attribute__((format(printf, 4, 5)));

static int framer_fail(struct framer *f, int status, const char *code, const char *fmt, ...)
{
    va_list ap;

    f->state = FRAMER_FAILED;
    f->fail_status = status;
    snprintf(f->fail_code, sizeof(f->fail_code), "%s", code);
    va_start(ap, fmt);
    vsnprintf(f->fail_msg, sizeof(f->fail_msg), fmt, ap);
    va_end(ap);
    return -1;
}

/*
 * Takes the next CRLF-terminated line at f->scan into line (without the
 * CRLF). Returns its length, -2 when it is not complete yet, or -1 (failed)
 * when it is too long or holds a bare CR or a NUL byte.
 */
static long framer_line(struct framer *f, char *line, const char *what)
{
    size_t avail = evbuffer_get_length(f->hold) - f->scan;
    struct evbuffer_ptr at;
    size_t n;

    if (evbuffer_ptr_set(f->hold, &at, f->scan, EVBUFFER_PTR_SET) < 0)
        return -2;
    at = evbuffer_search(f->hold, "\n", 1, &at);
    if (at.pos < 0 && avail < FRAMER_LINE_MAX)
        return -2;
    n = at.pos < 0 ? avail : (size_t)at.pos - f->scan + 1;
    if (n >= FRAMER_LINE_MAX) {
        if (f->state == FRAMER_LINE)
            return framer_fail(f, 414, "uri_too_long", "%s: longer than %u bytes", what,
                               FRAMER_LINE_MAX);
        return framer_fail(f, 431, "headers_too_large", "%s: longer than %u bytes", what,
                           FRAMER_LINE_MAX);
    }
    evbuffer_ptr_set(f->hold, &at, f->scan, EVBUFFER_PTR_SET);
    evbuffer_copyout_from(f->hold, &at, line, n);
    if (n < 2 || line[n - 2] != '\r')
        return framer_fail(f, 400, "bad_request", "%s: must end with CRLF", what);
    n -= 2;
    line[n] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (line[i] == '\0')
            return framer_fail(f, 400, "bad_request", "%s: NUL byte at offset %zu", what, i);
        if (line[i] == '\r')
            return framer_fail(f, 400, "bad_request", "%s: bare CR at offset %zu", what, i);
    }
    f->scan += n + 2;
    return (long)n;
}

static bool framer_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int framer_request_line(struct framer *f, const char *line, size_t n)
{
    const char *sp1 = memchr(line, ' ', n), *sp2, *target;
    size_t mlen, tlen;

    if (n == 0)
        return framer_fail(f, 400, "bad_request", "request line: empty");
    if (sp1 == NULL)
        return framer_fail(f, 400, "bad_request", "request line: no request target");
    mlen = (size_t)(sp1 - line);
    target = sp1 + 1;
    sp2 = memchr(target, ' ', n - mlen - 1);
    if (sp2 == NULL)
        return framer_fail(f, 400, "bad_request", "request line: no HTTP version");
    tlen = (size_t)(sp2 - target);
    if (strcmp(sp2 + 1, "HTTP/1.1") != 0 && strcmp(sp2 + 1, "HTTP/1.0") != 0)
        return framer_fail(f, 400, "bad_request",
                           "request line: the version must be HTTP/1.1 or HTTP/1.0");
    for (size_t i = 0; i < mlen; i++)
        if (!framer_tchar((unsigned char)line[i]))
            return framer_fail(f, 400, "bad_request", "request line: malformed method");
    if (mlen == 0)
        return framer_fail(f, 400, "bad_request", "request line: malformed method");
    if (!((mlen == 3 && memcmp(line, "GET", 3) == 0) ||
          (mlen == 4 && memcmp(line, "POST", 4) == 0) ||
          (mlen == 6 && memcmp(line, "DELETE", 6) == 0)))
        return framer_fail(f, 501, "not_implemented",
                           "request line: method %.*s is not one of GET, POST, DELETE",
                           (int)(mlen < 16 ? mlen : 16), line);
    if (tlen == 0 || target[0] != '/')
        return framer_fail(f, 400, "bad_request", "request line: the target must start with '/'");
    /* evhttp would read "//host:port/..." as an authority, and route on what follows it. */
    if (tlen >= 2 && target[1] == '/')
        return framer_fail(f, 400, "bad_request", "request line: the target starts with \"//\"");
    if (memchr(target, '#', tlen) != NULL)
        return framer_fail(f, 400, "bad_request", "request line: a fragment ('#') in the target");
    for (size_t i = 0; i < tlen; i++) {
        unsigned char c = (unsigned char)target[i];
        if (c <= 0x20 || c >= 0x7f)
            return framer_fail(f, 400, "bad_request",
                               "request line: byte 0x%02x in the target", c);
    }
    return 0;
}

/* Strips optional whitespace around a header value in place. */
static char *framer_trim(char *v)
{
    size_t n;

    while (*v == ' ' || *v == '\t')
        v++;
    n = strlen(v);
    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        v[--n] = '\0';
    return v;
}

static int framer_header(struct framer *f, char *line, size_t n)
{
    char *colon = memchr(line, ':', n), *v;

    if (line[0] == ' ' || line[0] == '\t')
        return framer_fail(f, 400, "bad_request",
                           "header line %u: obsolete line folding is not accepted",
                           f->n_headers + 1);
    if (++f->n_headers > FRAMER_HEADER_COUNT_MAX)
        return framer_fail(f, 431, "headers_too_large", "headers: more than %u fields",
                           FRAMER_HEADER_COUNT_MAX);
    if (colon == NULL || colon == line)
        return framer_fail(f, 400, "bad_request", "header line %u: no field name",
                           f->n_headers);
    for (char *p = line; p < colon; p++)
        if (!framer_tchar((unsigned char)*p))
            return framer_fail(f, 400, "bad_request",
                               "header line %u: byte 0x%02x in the field name", f->n_headers,
                               (unsigned char)*p);
    *colon = '\0';
    for (char *p = colon + 1; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 && *p != '\t')
            return framer_fail(f, 400, "bad_request", "%s: control byte 0x%02x in the value",
                               line, (unsigned char)*p);
    v = framer_trim(colon + 1);
    if (strcasecmp(line, "Content-Length") == 0) {
        size_t k = strlen(v);

        if (++f->n_length > 1)
            return framer_fail(f, 400, "bad_request", "Content-Length: sent more than once");
        if (k == 0 || k > 19 || strspn(v, "0123456789") != k)
            return framer_fail(f, 400, "bad_request", "Content-Length: not a decimal number");
        f->length = strtoull(v, NULL, 10);
    } else if (strcasecmp(line, "Transfer-Encoding") == 0) {
        if (++f->n_encoding > 1)
            return framer_fail(f, 400, "bad_request", "Transfer-Encoding: sent more than once");
        if (strcasecmp(v, "chunked") != 0)
            return framer_fail(f, 400, "bad_request",
                               "Transfer-Encoding: only \"chunked\" is supported");
        f->chunked = true;
    } else if (strcasecmp(line, "Expect") == 0 && strcasecmp(v, "100-continue") != 0) {
        return framer_fail(f, 417, "expectation_failed", "Expect: only 100-continue is supported");
    }
    return 0;
}

/* The head is complete: decide how the body is framed. */
static int framer_head_done(struct framer *f)
{
    if (f->n_length > 0 && f->n_encoding > 0)
        return framer_fail(f, 400, "bad_request",
                           "both Content-Length and Transfer-Encoding: the length is ambiguous");
    f->body_total = 0;
    if (f->chunked) {
        f->state = FRAMER_CHUNK_SIZE;
        return 0;
    }
    if (f->length > f->max_body)
        return framer_fail(f, 413, "too_large", "body: %llu bytes, the limit is %zu",
                           (unsigned long long)f->length, f->max_body);
    f->body_left = f->length;
    f->state = f->length > 0 ? FRAMER_BODY : FRAMER_LINE;
    return 0;
}

static int framer_chunk_size(struct framer *f, const char *line, size_t n)
{
    uint64_t size = 0;

    if (n == 0 || n > 16 || strspn(line, "0123456789abcdefABCDEF") != n)
        return framer_fail(f, 400, "bad_request",
                           "chunk size: \"%.20s\" is not a hexadecimal number", line);
    for (size_t i = 0; i < n; i++) {
        char c = line[i];
        size = size << 4 | (uint64_t)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    if (size > f->max_body || f->body_total + size > f->max_body)
        return framer_fail(f, 413, "too_large", "body: more than %zu bytes", f->max_body);
    f->body_total += size;
    f->body_left = size;
    f->state = size > 0 ? FRAMER_CHUNK_DATA : FRAMER_TRAILER;
    return 0;
}

/* One step over hold: 1 after progress, 0 when more input is needed, -1 once failed. */
static int framer_step(struct framer *f)
{
    char line[FRAMER_LINE_MAX + 1];
    size_t avail = evbuffer_get_length(f->hold) - f->scan;
    long n;

    switch (f->state) {
    case FRAMER_LINE:
    case FRAMER_HEADER:
    case FRAMER_CHUNK_SIZE:
    case FRAMER_TRAILER:
        n = framer_line(f, line,
                        f->state == FRAMER_LINE         ? "request line"
                        : f->state == FRAMER_HEADER     ? "header line"
                        : f->state == FRAMER_CHUNK_SIZE ? "chunk size"
                                                         : "trailer");
        if (n == -2)
            return 0;
        if (n < 0)
            return -1;
        break;
    case FRAMER_BODY: {
        size_t take = avail < f->body_left ? avail : (size_t)f->body_left;

        if (take == 0)
            return 0;
        f->scan += take;
        f->body_left -= take;
        if (f->body_left == 0)
            f->state = FRAMER_LINE;
        return 1;
    }
    case FRAMER_CHUNK_DATA: {
        struct evbuffer_ptr at;
        char crlf[2];

        if (avail < f->body_left + 2)
            return 0;
        f->scan += (size_t)f->body_left;
        evbuffer_ptr_set(f->hold, &at, f->scan, EVBUFFER_PTR_SET);
        evbuffer_copyout_from(f->hold, &at, crlf, 2);
        if (crlf[0] != '\r' || crlf[1] != '\n')
            return framer_fail(f, 400, "bad_request", "chunk data: not followed by CRLF");
        f->scan += 2;
        f->state = FRAMER_CHUNK_SIZE;
        return 1;
    }
    case FRAMER_FAILED:
    default:
        return -1;
    }

    switch (f->state) {
    case FRAMER_LINE:
        f->head_bytes = (size_t)n + 2;
        f->n_headers = f->n_length = f->n_encoding = 0;
        f->chunked = false;
        f->length = 0;
        if (framer_request_line(f, line, (size_t)n) < 0)
            return -1;
        f->state = FRAMER_HEADER;
        return 1;
    case FRAMER_HEADER:
        f->head_bytes += (size_t)n + 2;
        if (f->head_bytes > f->max_headers)
            return framer_fail(f, 431, "headers_too_large", "headers: more than %zu bytes",
                               f->max_headers);
        if (n == 0)
            return framer_head_done(f) < 0 ? -1 : 1;
        return framer_header(f, line, (size_t)n) < 0 ? -1 : 1;
    case FRAMER_CHUNK_SIZE:
        return framer_chunk_size(f, line, (size_t)n) < 0 ? -1 : 1;
    case FRAMER_TRAILER:
        if (n != 0)
            return framer_fail(f, 400, "bad_request", "trailer fields are not supported");
        f->state = FRAMER_LINE;
        return 1;
    default:
        return -1;
    }
}

struct framer *framer_new(size_t max_body, size_t max_headers)
{
    struct framer *f = xcalloc(1, sizeof(*f));

    f->hold = evbuffer_new();
    if (f->hold == NULL)
        fatal("out_of_memory", "what=evbuffer");
    f->max_body = max_body;
    f->max_headers = max_headers;
    return f;
}

void framer_free(struct framer *f)
{
    if (f == NULL)
        return;
    evbuffer_free(f->hold);
    free(f);
}

int framer_feed(struct framer *f, struct evbuffer *src, struct evbuffer *dst)
{
    int n = 0, r;

    if (f->state == FRAMER_FAILED) {
        evbuffer_drain(src, evbuffer_get_length(src));
        return 0;
    }
    evbuffer_add_buffer(f->hold, src);
    while ((r = framer_step(f)) > 0) {
        if (f->state == FRAMER_LINE) {
            evbuffer_remove_buffer(f->hold, dst, f->scan);
            f->scan = 0;
            f->passed++;
            n++;
        }
    }
    if (r < 0) {
        evbuffer_drain(f->hold, evbuffer_get_length(f->hold));
        f->scan = 0;
        return -EPROTO;
    }
    return n;
}

unsigned long long framer_passed(const struct framer *f)
{
    return f->passed;
}

bool framer_failed(const struct framer *f)
{
    return f->state == FRAMER_FAILED;
}

int framer_status(const struct framer *f)
{
    return f->fail_status;
}

const char *framer_code(const struct framer *f)
{
    return f->fail_code;
}

const char *framer_message(const struct framer *f)
{
    return f->fail_msg;
}
