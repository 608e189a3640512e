/*
 * wirewalk: the descriptor-driven walk over encoded messages (see
 * wirewalk.h), and the UTF-8 checks wire.h exports. A message is walked
 * once to check it; only when it must change (a split message field, a
 * group, an escaped string) is it walked a second time to write the normal
 * form. Expected load: one or two linear passes per message; bodies are
 * capped at WIRE_MAX_BODY before they get here.
 */
#include "wirewalk.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"
#include "xmalloc.h"

#define WW_MAX_DEPTH 32  /* the schema is not recursive; this only bounds hostile input */
#define WW_PATH_MAX  192 /* field paths in error messages, truncated past this */
#define WW_SMALL     32  /* per-message field counters kept on the stack up to this */

bool wire_utf8_valid(const void *s, size_t n, size_t *ret_bad)
{
    const unsigned char *p = s;
    size_t i = 0;

    while (i < n) {
        unsigned c = p[i];
        size_t k;
        unsigned lo = 0x80, hi = 0xbf;

        if (c < 0x80) {
            if (c == 0)
                goto bad;
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            k = 1;
        } else if (c >= 0xe0 && c <= 0xef) {
            k = 2;
            if (c == 0xe0)
                lo = 0xa0; /* overlong */
            else if (c == 0xed)
                hi = 0x9f; /* UTF-16 surrogates */
        } else if (c >= 0xf0 && c <= 0xf4) {
            k = 3;
            if (c == 0xf0)
                lo = 0x90; /* overlong */
            else if (c == 0xf4)
                hi = 0x8f; /* above U+10FFFF */
        } else {
            goto bad;
        }
        if (n - i <= k)
            goto bad;
        if (p[i + 1] < lo || p[i + 1] > hi)
            goto bad;
        for (size_t j = 2; j <= k; j++)
            if (p[i + j] < 0x80 || p[i + j] > 0xbf)
                goto bad;
        i += k + 1;
    }
    return true;
bad:
    if (ret_bad != NULL)
        *ret_bad = i;
    return false;
}

/* Length of the valid UTF-8 sequence at p (n bytes left), 0 if none starts there. */
static size_t ww_utf8_seq(const unsigned char *p, size_t n)
{
    size_t bad = 0;
    size_t k = p[0] < 0x80 ? 1 : p[0] < 0xe0 ? 2 : p[0] < 0xf0 ? 3 : 4;

    if (k > n)
        return 0;
    return wire_utf8_valid(p, k, &bad) ? k : 0;
}

size_t wire_utf8_escape(char *dst, size_t size, const void *src, size_t n)
{
    const unsigned char *p = src;
    size_t used = 0, i = 0;

    if (size == 0)
        return 0;
    while (i < n) {
        size_t k = ww_utf8_seq(p + i, n - i);

        if (k > 0) {
            if (used + k >= size)
                break;
            memcpy(dst + used, p + i, k);
            used += k;
            i += k;
        } else {
            if (used + 4 >= size)
                break;
            snprintf(dst + used, 5, "\\x%02X", p[i]);
            used += 4;
            i++;
        }
    }
    dst[used] = '\0';
    return used;
}

/* Output of the rewriting pass; NULL while checking. */
struct ww_out {
    uint8_t *p;
    size_t len, cap;
};

struct ww {
    enum wirewalk_mode mode;
    bool rewrite; /* set by the checking pass when the message must change */
    char *err;
    size_t err_len;
    char path[WW_PATH_MAX];
    size_t plen;
};

static void ww_put(struct ww_out *o, const void *p, size_t n)
{
    if (o == NULL || n == 0)
        return;
    if (o->cap - o->len < n) {
        size_t cap = o->cap > 0 ? o->cap : 256;

        while (cap - o->len < n)
            cap *= 2;
        o->p = xreallocarray(o->p, cap, 1);
        o->cap = cap;
    }
    memcpy(o->p + o->len, p, n);
    o->len += n;
}

static size_t ww_varint_encode(uint8_t *b, uint64_t v)
{
    size_t n = 0;

    do {
        b[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v != 0)
            b[n] |= 0x80;
        n++;
    } while (v != 0);
    return n;
}

static void ww_put_varint(struct ww_out *o, uint64_t v)
{
    uint8_t b[10];

    ww_put(o, b, ww_varint_encode(b, v));
}

/* Reads a varint at *i; -EBADMSG if truncated or longer than 10 bytes. */
static int ww_varint(const uint8_t *p, size_t len, size_t *i, uint64_t *ret)
{
    uint64_t v = 0;

    for (unsigned shift = 0; shift < 70; shift += 7) {
        if (*i >= len)
            return -EBADMSG;
        v |= (uint64_t)(p[*i] & 0x7f) << (shift < 64 ? shift : 0);
        if ((p[(*i)++] & 0x80) == 0) {
            *ret = v;
            return 0;
        }
    }
    return -EBADMSG;
}

/*
 * Skips the field whose key (wire type wt, number num) ended at *i. For a
 * group, skips to its matching end-group key. Sets *ret_off and *ret_n to a
 * length-delimited payload. Returns 0 or -EBADMSG.
 */
static int ww_skip(const uint8_t *p, size_t len, size_t *i, unsigned wt, uint64_t num,
                   size_t *ret_off, size_t *ret_n)
{
    uint64_t v;

    switch (wt) {
    case 0:
        return ww_varint(p, len, i, &v);
    case 1:
    case 5: {
        size_t n = wt == 1 ? 8 : 4;
        if (len - *i < n)
            return -EBADMSG;
        *i += n;
        return 0;
    }
    case 2:
        if (ww_varint(p, len, i, &v) < 0 || v > len - *i)
            return -EBADMSG;
        *ret_off = *i;
        *ret_n = (size_t)v;
        *i += (size_t)v;
        return 0;
    case 3: {
        /* Nested groups are tracked by number, without recursion. */
        uint64_t stack[WW_MAX_DEPTH];
        size_t depth = 0;

        stack[depth++] = num;
        while (depth > 0) {
            uint64_t key;
            size_t off, n;

            if (ww_varint(p, len, i, &key) < 0 || (key >> 3) == 0)
                return -EBADMSG;
            if ((key & 7) == 4) {
                if (stack[--depth] != key >> 3)
                    return -EBADMSG;
            } else if ((key & 7) == 3) {
                if (depth == WW_MAX_DEPTH)
                    return -EBADMSG;
                stack[depth++] = key >> 3;
            } else if (ww_skip(p, len, i, (unsigned)(key & 7), key >> 3, &off, &n) < 0) {
                return -EBADMSG;
            }
        }
        return 0;
    }
    default: /* 4 without its 3, or 6 and 7 */
        return -EBADMSG;
    }
}

static int ww_fail(struct ww *w, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int ww_fail(struct ww *w, int r, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (w->err == NULL || w->err_len == 0)
        return r;
    n = snprintf(w->err, w->err_len, "%s%s", w->path, w->plen > 0 ? ": " : "");
    if (n < 0 || (size_t)n >= w->err_len)
        return r;
    va_start(ap, fmt);
    vsnprintf(w->err + n, w->err_len - (size_t)n, fmt, ap);
    va_end(ap);
    return r;
}

/* Appends ".name" or "name[index]" to the path; returns the old length. */
static size_t ww_path_push(struct ww *w, const char *name, long index)
{
    size_t old = w->plen, room = sizeof(w->path) - 1; /* the path stays NUL-terminated */
    char num[24], *d = num + sizeof(num);

    /*
     * Appended by hand, not with snprintf: this runs for every field of
     * every message, and a NodeReport has thousands (issue 17's profile).
     */
    if (old > 0 && w->plen < room)
        w->path[w->plen++] = '.';
    for (; *name != '\0' && w->plen < room; name++)
        w->path[w->plen++] = *name;
    if (index >= 0) {
        unsigned long v = (unsigned long)index;

        *--d = ']';
        do
            *--d = (char)('0' + v % 10);
        while ((v /= 10) > 0);
        *--d = '[';
        for (; d < num + sizeof(num) && w->plen < room; d++)
            w->path[w->plen++] = *d;
    }
    w->path[w->plen] = '\0';
    return old;
}

static void ww_path_pop(struct ww *w, size_t old)
{
    w->plen = old;
    w->path[old] = '\0';
}

static int ww_message(struct ww *w, const ProtobufCMessageDescriptor *d, const uint8_t *p,
                      size_t len, int depth, struct ww_out *out);

/* A string field's payload: checked, then copied or escaped. */
static int ww_string(struct ww *w, uint64_t num, const uint8_t *s, size_t n, struct ww_out *out)
{
    size_t bad = 0;

    if (wire_utf8_valid(s, n, &bad)) {
        ww_put_varint(out, num << 3 | 2);
        ww_put_varint(out, n);
        ww_put(out, s, n);
        return 0;
    }
    if (w->mode == WIREWALK_REQUEST) {
        if (s[bad] == 0)
            return ww_fail(w, -EINVAL, "contains a NUL byte at offset %zu", bad);
        return ww_fail(w, -EINVAL, "not valid UTF-8 (byte 0x%02x at offset %zu)", s[bad], bad);
    }
    w->rewrite = true;
    if (out != NULL) {
        size_t cap = n * 4 + 1;
        char *e = xmalloc(cap);
        size_t m = wire_utf8_escape(e, cap, s, n);

        ww_put_varint(out, num << 3 | 2);
        ww_put_varint(out, m);
        ww_put(out, e, m);
        free(e);
    }
    return 0;
}

/* Walks a sub-message and writes it as one length-delimited field. */
static int ww_sub(struct ww *w, const ProtobufCFieldDescriptor *f, const uint8_t *s, size_t n,
                  int depth, struct ww_out *out)
{
    size_t at, body;
    uint8_t b[10];
    size_t k;
    int r;

    if (out == NULL)
        return ww_message(w, f->descriptor, s, n, depth + 1, NULL);
    ww_put_varint(out, (uint64_t)f->id << 3 | 2);
    at = out->len;
    ww_put(out, "\0\0\0\0\0\0\0\0\0\0", 10); /* room for the length */
    r = ww_message(w, f->descriptor, s, n, depth + 1, out);
    if (r < 0)
        return r;
    body = out->len - at - 10;
    k = ww_varint_encode(b, body);
    memmove(out->p + at + k, out->p + at + 10, body);
    memcpy(out->p + at, b, k);
    out->len = at + k + body;
    return 0;
}

/*
 * The payloads of every later occurrence of field num (length-delimited)
 * in p[from..len), appended to first; NULL if there is none. Malformed
 * input is left for the caller's own walk to report.
 */
static uint8_t *ww_gather(const uint8_t *p, size_t len, size_t from, uint64_t num,
                          const uint8_t *first, size_t first_n, size_t *ret_n)
{
    struct ww_out o = {0};
    size_t i = from;
    bool found = false;

    while (i < len) {
        uint64_t key;
        size_t off = 0, n = 0;

        if (ww_varint(p, len, &i, &key) < 0 ||
            ww_skip(p, len, &i, (unsigned)(key & 7), key >> 3, &off, &n) < 0)
            break;
        if ((key & 7) == 2 && key >> 3 == num) {
            if (!found)
                ww_put(&o, first, first_n);
            found = true;
            ww_put(&o, p + off, n);
        }
    }
    if (found && o.p == NULL)
        o.p = xmalloc(1); /* every part was empty */
    *ret_n = o.len;
    return o.p;
}

static int ww_message(struct ww *w, const ProtobufCMessageDescriptor *d, const uint8_t *p,
                      size_t len, int depth, struct ww_out *out)
{
    unsigned small[WW_SMALL];
    unsigned *count = small; /* occurrences so far, by field index */
    size_t i = 0;
    int r = 0;

    if (depth > WW_MAX_DEPTH)
        return ww_fail(w, -EBADMSG, "nested too deeply");
    if (d->n_fields > WW_SMALL)
        count = xcalloc(d->n_fields, sizeof(*count));
    else
        memset(small, 0, sizeof(small));
    while (i < len) {
        size_t start = i, off = 0, n = 0;
        const ProtobufCFieldDescriptor *f;
        uint64_t key, num;
        unsigned wt;

        if (ww_varint(p, len, &i, &key) < 0 || (key >> 3) == 0 || (key >> 3) > INT_MAX) {
            r = ww_fail(w, -EBADMSG, "malformed field key at offset %zu", start);
            break;
        }
        wt = (unsigned)(key & 7);
        num = key >> 3;
        if (ww_skip(p, len, &i, wt, num, &off, &n) < 0) {
            r = ww_fail(w, -EBADMSG, "field %llu: malformed or truncated at offset %zu",
                        (unsigned long long)num, start);
            break;
        }
        if (wt == 3) {
            w->rewrite = true; /* a group: standard parsers skip it, protobuf-c would refuse */
            continue;
        }
        f = protobuf_c_message_descriptor_get_field(d, (unsigned)num);
        if (wt != 2 || f == NULL ||
            (f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE)) {
            ww_put(out, p + start, i - start);
            continue;
        }
        {
            size_t idx = (size_t)(f - d->fields);
            bool repeated = f->label == PROTOBUF_C_LABEL_REPEATED;
            size_t old = ww_path_push(w, f->name, repeated ? (long)count[idx] : -1);

            count[idx]++;
            if (f->type == PROTOBUF_C_TYPE_STRING) {
                r = ww_string(w, num, p + off, n, out);
            } else if (repeated) {
                r = ww_sub(w, f, p + off, n, depth, out);
            } else if (count[idx] > 1) {
                w->rewrite = true; /* merged into the first occurrence */
            } else {
                size_t mn = 0;
                uint8_t *merged = ww_gather(p, len, i, num, p + off, n, &mn);

                if (merged != NULL)
                    w->rewrite = true;
                r = ww_sub(w, f, merged != NULL ? merged : p + off, merged != NULL ? mn : n,
                           depth, out);
                free(merged);
            }
            if (r < 0)
                break;
            ww_path_pop(w, old);
        }
    }
    if (count != small)
        free(count);
    return r;
}

int wirewalk_normalize(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len,
                       enum wirewalk_mode mode, uint8_t **ret_buf, size_t *ret_len, char *err,
                       size_t err_len)
{
    struct ww w = {.mode = mode, .err = err, .err_len = err_len};
    struct ww_out out = {0};
    int r;

    r = ww_message(&w, d, buf, len, 0, NULL);
    if (r < 0)
        return r;
    if (!w.rewrite) {
        *ret_buf = NULL;
        *ret_len = len;
        return 0;
    }
    w.plen = 0;
    w.path[0] = '\0';
    r = ww_message(&w, d, buf, len, 0, &out);
    if (r < 0) {
        free(out.p);
        return r;
    }
    *ret_buf = out.p != NULL ? out.p : xmalloc(1);
    *ret_len = out.len;
    return 0;
}

size_t wirewalk_value_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return 4;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return 8;
    case PROTOBUF_C_TYPE_FLOAT:
        return sizeof(float);
    case PROTOBUF_C_TYPE_DOUBLE:
        return sizeof(double);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_ENUM:
        return sizeof(int);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_MESSAGE:
    default:
        return sizeof(void *);
    }
}
