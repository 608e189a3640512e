/*
 * wire: pack and unpack proto/sluice.proto messages, with a size cap before
 * unpacking and a validation of every field after it. protobuf-c structs are
 * created and freed only in this file. Expected load: one decode per HTTP
 * request (thousands per second on the coordinator's bulk paths), so nothing
 * here allocates beyond what protobuf-c itself needs.
 */
#include "wire.h"

#include <errno.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * protobuf-c takes char * for fields it only reads, and its generated
 * initialisers cast away const themselves: -Wcast-qual has nothing to say here.
 */
#pragma GCC diagnostic ignored "-Wcast-qual"

#include "sluice.pb-c.h"
#include "wirewalk.h"
#include "xmalloc.h"

_Static_assert((int)WIRE_REASON_SEGMENT_INVALID == (int)SLUICE__V1__REASON__SEGMENT_INVALID, "reason enum");
_Static_assert((int)WIRE_REASON_MEM_EXHAUSTION == (int)SLUICE__V1__REASON__MEM_EXHAUSTION, "reason enum");
_Static_assert((int)WIRE_REASON_OVER_LIMIT == (int)SLUICE__V1__REASON__OVER_LIMIT, "reason enum");
_Static_assert((int)WIRE_REASON_DISK_FULL == (int)SLUICE__V1__REASON__DISK_FULL, "reason enum");
_Static_assert((int)WIRE_SEG_DROPPED == (int)SLUICE__V1__SEGMENT_STATE__DROPPED, "segment state enum");
_Static_assert((int)WIRE_AGG_MAX == (int)SLUICE__V1__AGGREGATE__MAX, "aggregate enum");
_Static_assert((int)WIRE_NODE_DRAINING == (int)SLUICE__V1__NODE_STATE__DRAINING_STATE, "node state enum");
_Static_assert((int)WIRE_VERDICT_REJECTED == (int)SLUICE__V1__VERDICT__REJECTED, "verdict enum");

/*
 * Copies a NUL-terminated string into a fixed buffer, truncating if it must
 * at a UTF-8 character boundary: a multi-byte character cut in half would
 * make the copy invalid UTF-8, which every answer refuses to carry as is (a
 * decoded string re-encoded must come back the same).
 */
static void wire_copy_text(char *dst, size_t size, const char *src)
{
    size_t n = strlen(src);

    if (n >= size) {
        n = size - 1;
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static const char *const wire_seg_names[WIRE_SEG_COUNT_] = {"UNSPECIFIED", "LOADING", "LOADED",
                                                            "FAILED", "DROPPED"};

static const char *const wire_agg_names[WIRE_AGG_COUNT_] = {"unspecified", "count", "sum", "min",
                                                            "max"};

const char *wire_segment_state_name(enum wire_segment_state s)
{
    if ((unsigned)s >= WIRE_SEG_COUNT_)
        return "UNKNOWN";
    return wire_seg_names[s];
}

const char *wire_io_mode_name(enum wire_io_mode m)
{
    switch (m) {
    case WIRE_IO_MMAP:
        return "mmap";
    case WIRE_IO_DIRECT:
        return "direct";
    case WIRE_IO_UNSPECIFIED:
        break;
    }
    return "-";
}

const char *wire_node_state_name(enum wire_node_state s)
{
    switch (s) {
    case WIRE_NODE_SERVING:
        return "SERVING";
    case WIRE_NODE_DRAINING:
        return "DRAINING";
    case WIRE_NODE_UNSPECIFIED:
        break;
    }
    return "UNSPECIFIED";
}

const char *wire_aggregate_name(enum wire_aggregate a)
{
    if ((unsigned)a >= WIRE_AGG_COUNT_)
        return "unknown";
    return wire_agg_names[a];
}

int wire_aggregate_parse(const char *s, enum wire_aggregate *ret)
{
    for (unsigned i = 1; i < WIRE_AGG_COUNT_; i++) {
        if (strcmp(s, wire_agg_names[i]) == 0) {
            *ret = (enum wire_aggregate)i;
            return 0;
        }
    }
    return -EINVAL;
}

void wire_error_set(struct wire_error *err, const char *code, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL)
        return;
    wire_copy_text(err->code, sizeof(err->code), code);
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
}

static int wire_invalid(struct wire_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int wire_invalid(struct wire_error *err, const char *fmt, ...)
{
    va_list ap;

    if (err != NULL) {
        snprintf(err->code, sizeof(err->code), "invalid_field");
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof(err->message), fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

int wire_check_segment_id(const char *field, const char *id, struct wire_error *err)
{
    size_t n = strlen(id);

    if (n == 0)
        return wire_invalid(err, "%s: empty", field);
    if (n > WIRE_ID_MAX)
        return wire_invalid(err, "%s: %zu bytes, the limit is %d", field, n, WIRE_ID_MAX);
    if (id[0] == '.' || id[0] == '-')
        return wire_invalid(err, "%s: must not start with '%c'", field, id[0]);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return wire_invalid(err, "%s: byte 0x%02x at offset %zu is not one of [A-Za-z0-9._-]",
                                field, c, i);
    }
    return 0;
}

int wire_check_uri(const char *field, const char *uri, struct wire_error *err)
{
    static const char prefix[] = "file://";
    size_t n = strlen(uri);
    const char *path, *p;

    if (n == 0)
        return wire_invalid(err, "%s: empty", field);
    if (n > WIRE_URI_MAX)
        return wire_invalid(err, "%s: %zu bytes, the limit is %d", field, n, WIRE_URI_MAX);
    if (strncmp(uri, prefix, sizeof(prefix) - 1) != 0)
        return wire_invalid(err, "%s: only file:// URIs are supported", field);
    path = uri + sizeof(prefix) - 1;
    if (path[0] != '/')
        return wire_invalid(err, "%s: path must be absolute (file:///...)", field);
    for (p = path; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20 || c == 0x7f)
            return wire_invalid(err, "%s: control byte 0x%02x in path", field, c);
        if (c == '%')
            return wire_invalid(err, "%s: percent-encoding is not supported", field);
    }
    if (path[n - (size_t)(path - uri) - 1] == '/')
        return wire_invalid(err, "%s: names a directory, not a file", field);
    return 0;
}

int wire_check_addr(const char *field, const char *addr, struct wire_error *err)
{
    const char *colon = strrchr(addr, ':'), *host_end;
    unsigned long port;
    char *end;

    if (colon == NULL || colon == addr)
        return wire_invalid(err, "%s: must be host:port", field);
    port = strtoul(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || port == 0 || port > 65535)
        return wire_invalid(err, "%s: port must be 1..65535", field);
    host_end = colon;
    if (addr[0] == '[') {
        if (colon[-1] != ']')
            return wire_invalid(err, "%s: unterminated [IPv6] host", field);
        for (const char *q = addr + 1; q < colon - 1; q++)
            if (!(((*q >= '0' && *q <= '9') || (*q >= 'a' && *q <= 'f') ||
                   (*q >= 'A' && *q <= 'F') || *q == ':' || *q == '.')))
                return wire_invalid(err, "%s: bad IPv6 host", field);
        return 0;
    }
    for (const char *q = addr; q < host_end; q++)
        if (!((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') ||
              *q == '.' || *q == '-' || *q == '_'))
            return wire_invalid(err, "%s: byte 0x%02x is not allowed in a host name", field,
                                (unsigned char)*q);
    return 0;
}

bool wire_uri_has_dot_component(const char *uri)
{
    const char *p = strstr(uri, "://");

    for (p = p != NULL ? p + 3 : uri; *p != '\0';) {
        const char *end;
        size_t len;

        while (*p == '/')
            p++;
        end = strchr(p, '/');
        len = end != NULL ? (size_t)(end - p) : strlen(p);
        if ((len == 2 && p[0] == '.' && p[1] == '.') || (len == 1 && p[0] == '.'))
            return true;
        p += len;
    }
    return false;
}

int wire_check_column(const char *field, const char *name, struct wire_error *err)
{
    size_t n = strlen(name);

    if (n == 0)
        return wire_invalid(err, "%s: empty", field);
    if (n > WIRE_COLUMN_MAX)
        return wire_invalid(err, "%s: %zu bytes, the limit is %d", field, n, WIRE_COLUMN_MAX);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_'))
            return wire_invalid(err, "%s: byte 0x%02x at offset %zu is not one of [A-Za-z0-9_]",
                                field, c, i);
    }
    return 0;
}

int wire_check_table(const char *field, const char *name, struct wire_error *err)
{
    size_t n = strlen(name), bad;

    if (n == 0)
        return wire_invalid(err, "%s: empty", field);
    if (n > WIRE_TABLE_MAX)
        return wire_invalid(err, "%s: %zu bytes, the limit is %d", field, n, WIRE_TABLE_MAX);
    if (!wire_utf8_valid(name, n, &bad))
        return wire_invalid(err, "%s: not valid UTF-8 (byte 0x%02x at offset %zu)", field,
                            (unsigned char)name[bad], bad);
    if (name[0] == ' ' || name[n - 1] == ' ')
        return wire_invalid(err, "%s: begins or ends with a space", field);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        /* C1 controls are U+0080..U+009F, encoded 0xC2 0x80..0x9F. */
        bool c1 = c == 0xC2 && i + 1 < n && (unsigned char)name[i + 1] <= 0x9F;

        if (c < 0x20 || c == 0x7F || c1)
            return wire_invalid(err, "%s: control character at offset %zu", field, i);
        if (c == '/')
            return wire_invalid(err, "%s: '/' at offset %zu is not allowed", field, i);
    }
    return 0;
}

int wire_check_mem(const char *prefix, uint64_t request, uint64_t limit, struct wire_error *err)
{
    if (request > WIRE_MEM_DECLARED_MAX)
        return wire_invalid(err, "%smem_request_bytes: %llu is over the limit of %llu", prefix,
                            (unsigned long long)request, WIRE_MEM_DECLARED_MAX);
    if (limit > WIRE_MEM_DECLARED_MAX)
        return wire_invalid(err, "%smem_limit_bytes: %llu is over the limit of %llu", prefix,
                            (unsigned long long)limit, WIRE_MEM_DECLARED_MAX);
    if (limit != 0 && limit < request)
        return wire_invalid(err, "%smem_limit_bytes: %llu is under mem_request_bytes %llu",
                            prefix, (unsigned long long)limit, (unsigned long long)request);
    return 0;
}

/* Copies a string that a peer controls, refusing it if it does not fit. */
static int wire_copy_checked(const char *field, char *dst, size_t size, const char *src,
                             struct wire_error *err)
{
    size_t n = src != NULL ? strlen(src) : 0;

    if (n >= size)
        return wire_invalid(err, "%s: %zu bytes, the limit is %zu", field, n, size - 1);
    memcpy(dst, src != NULL ? src : "", n + 1);
    return 0;
}

static int wire_check_size(size_t len, struct wire_error *err)
{
    if (len > WIRE_MAX_BODY) {
        wire_error_set(err, "too_large", "body: %zu bytes, the limit is %u", len, WIRE_MAX_BODY);
        return -EMSGSIZE;
    }
    return 0;
}


static int wire_bad_message(struct wire_error *err, const char *what)
{
    wire_error_set(err, "bad_message", "body: not a valid %s protobuf message", what);
    return -EBADMSG;
}

/*
 * A bump allocator for one unpack: protobuf-c allocates every sub-message
 * and string separately, which for a NodeReport is several allocations per
 * listed copy, 10^6 copies a second at 1,000 nodes (issue 17's profile).
 * Here they come from 64 KiB blocks, and freeing the message is freeing the
 * blocks (wire_bump_done(); never free_unpacked() with this allocator).
 */
struct wire_bump_block {
    struct wire_bump_block *next;
    size_t used, cap;
    max_align_t data[];
};

struct wire_bump {
    struct wire_bump_block *head;
};

#define WIRE_BUMP_BLOCK (64 * 1024)

static void *wire_bump_alloc(void *arg, size_t size)
{
    struct wire_bump *a = arg;
    struct wire_bump_block *b = a->head;
    size_t need = (size + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);

    if (b == NULL || b->cap - b->used < need) {
        size_t cap = need > WIRE_BUMP_BLOCK ? need : WIRE_BUMP_BLOCK;

        b = xmalloc(sizeof(*b) + cap);
        b->used = 0;
        b->cap = cap;
        b->next = a->head;
        a->head = b;
    }
    b->used += need;
    return (char *)b->data + b->used - need;
}

static void wire_bump_free(void *arg, void *ptr)
{
    (void)arg;
    (void)ptr; /* everything goes at once, in wire_bump_done() */
}

static void wire_bump_done(struct wire_bump *a)
{
    while (a->head != NULL) {
        struct wire_bump_block *b = a->head;

        a->head = b->next;
        free(b);
    }
}

/*
 * Size cap, then the walk of wirewalk.c (UTF-8 of every string, split
 * message fields merged, groups skipped), then protobuf-c's unpacker on
 * the normal form, with alloc (NULL: malloc). protobuf-c copies what it
 * keeps, so the normal form is freed at once. Returns the message, or NULL
 * with *ret_r and err set.
 */
static void *wire_unpack_with(const ProtobufCMessageDescriptor *d, const void *buf, size_t len,
                              const char *what, ProtobufCAllocator *alloc, struct wire_error *err,
                              int *ret_r)
{
    uint8_t *norm = NULL;
    size_t nlen = len;
    char msg[sizeof(err->message)];
    ProtobufCMessage *m;
    int r;

    if ((r = wire_check_size(len, err)) < 0) {
        *ret_r = r;
        return NULL;
    }
    r = wirewalk_normalize(d, buf, len, WIREWALK_REQUEST, &norm, &nlen, msg, sizeof(msg));
    if (r == -EINVAL) {
        wire_error_set(err, "invalid_field", "%s", msg);
        *ret_r = r;
        return NULL;
    }
    if (r < 0) {
        *ret_r = wire_bad_message(err, what);
        return NULL;
    }
    m = protobuf_c_message_unpack(d, alloc, nlen, norm != NULL ? norm : buf);
    free(norm);
    if (m == NULL)
        *ret_r = wire_bad_message(err, what);
    return m;
}

static void *wire_unpack(const ProtobufCMessageDescriptor *d, const void *buf, size_t len,
                         const char *what, struct wire_error *err, int *ret_r)
{
    return wire_unpack_with(d, buf, len, what, NULL, err, ret_r);
}

/*
 * Packs msg, then makes sure every string in it is valid UTF-8: a string
 * that came from a peer (a detail, a name in a message) is escaped, so no
 * answer carries bytes a standard client refuses to parse.
 */
static uint8_t *wire_pack(const ProtobufCMessage *msg, size_t *ret_len)
{
    size_t n = protobuf_c_message_get_packed_size(msg), nlen = 0;
    uint8_t *buf = xmalloc(n), *norm = NULL;

    *ret_len = protobuf_c_message_pack(msg, buf);
    if (wirewalk_normalize(msg->descriptor, buf, *ret_len, WIREWALK_ANSWER, &norm, &nlen, NULL,
                           0) == 0 &&
        norm != NULL) {
        free(buf);
        buf = norm;
        *ret_len = nlen;
    }
    return buf;
}

/* ---- messages mirrored field by field ------------------------------------ */

/*
 * Most fields are copied as they are between a protobuf-c message and its C
 * mirror in wire.h. A table names them, one line a field: the member of the
 * protobuf-c struct and the member of the C struct (offset and size). The
 * rest comes from protobuf-c's descriptor of the message: the field's type
 * (found by the member's offset), and for an enum the values this build
 * knows. A text is copied into its fixed buffer by wire_copy_text's rules (a
 * long one cut at a character boundary); an enum value this build does not
 * know reads as 0; integers are copied at the width of each side; a nested
 * message has a table of its own. What a field means (a range, a default,
 * a text that must be valid) stays in the message's own code, which checks
 * the unpacked message before copying it and fixes the copy after.
 */
struct wire_msg;

struct wire_field {
    size_t pb_off;              /* of the member in the protobuf-c struct */
    size_t off, size;           /* of the member in the C struct */
    const struct wire_msg *msg; /* a nested message: its table; else NULL */
};

struct wire_msg {
    const ProtobufCMessageDescriptor *desc;
    size_t size; /* of the C struct */
    const struct wire_field *fields;
    size_t n;
    void (*fix)(void *c); /* after a decode: defaults and ranges; may be NULL */
};

#define WIRE_FIELD_MSG(pb, pb_member, c, c_member, nested)                                      \
    {offsetof(pb, pb_member), offsetof(c, c_member), sizeof(((c *)0)->c_member), nested}
#define WIRE_FIELD_AS(pb, pb_member, c, c_member) WIRE_FIELD_MSG(pb, pb_member, c, c_member, NULL)
#define WIRE_FIELD(pb, c, member)                 WIRE_FIELD_MSG(pb, member, c, member, NULL)
#define WIRE_MSG(desc, c, table, fix)                                                            \
    {&desc, sizeof(c), table, sizeof(table) / sizeof((table)[0]), fix}

/* The descriptor of the field at pb_off in messages of d; a table naming no field of d is a bug. */
static const ProtobufCFieldDescriptor *wire_field_desc(const ProtobufCMessageDescriptor *d,
                                                       size_t pb_off)
{
    for (unsigned i = 0; i < d->n_fields; i++) {
        if (d->fields[i].offset == pb_off && d->fields[i].label != PROTOBUF_C_LABEL_REPEATED)
            return &d->fields[i];
    }
    abort();
}

/* Copies an unsigned integer between members of widths 4 or 8 (the wider one is truncated). */
static void wire_copy_uint(void *dst, size_t dst_size, const void *src, size_t src_size)
{
    uint64_t v = 0;
    uint32_t v32;

    if (src_size == sizeof(v32)) {
        memcpy(&v32, src, sizeof(v32));
        v = v32;
    } else {
        memcpy(&v, src, sizeof(v));
    }
    if (dst_size == sizeof(v32)) {
        v32 = (uint32_t)v;
        memcpy(dst, &v32, sizeof(v32));
    } else {
        memcpy(dst, &v, sizeof(v));
    }
}

/* Element i of a protobuf-c array of message pointers. */
static const ProtobufCMessage *wire_item(const void *array, size_t i)
{
    const ProtobufCMessage *p;

    memcpy(&p, (const char *)array + i * sizeof(p), sizeof(p));
    return p;
}

static void wire_from_pb(const struct wire_msg *t, void *dst, const ProtobufCMessage *m);

/*
 * Copies the fields of t from the unpacked message m into the C struct dst;
 * what t does not name is left as it is.
 */
static void wire_fields_from_pb(const struct wire_msg *t, void *dst, const ProtobufCMessage *m)
{
    for (size_t i = 0; i < t->n; i++) {
        const struct wire_field *f = &t->fields[i];
        const ProtobufCFieldDescriptor *fd = wire_field_desc(t->desc, f->pb_off);
        const char *s = (const char *)m + f->pb_off;
        char *d = (char *)dst + f->off;
        const ProtobufCMessage *sub;
        const char *text;
        protobuf_c_boolean b;
        bool v;
        int e;

        switch (fd->type) {
        case PROTOBUF_C_TYPE_STRING:
            memcpy(&text, s, sizeof(text));
            wire_copy_text(d, f->size, text != NULL ? text : "");
            break;
        case PROTOBUF_C_TYPE_MESSAGE:
            memcpy(&sub, s, sizeof(sub));
            wire_from_pb(f->msg, d, sub);
            break;
        case PROTOBUF_C_TYPE_BOOL:
            memcpy(&b, s, sizeof(b));
            v = b != 0;
            memcpy(d, &v, sizeof(v));
            break;
        case PROTOBUF_C_TYPE_ENUM:
            memcpy(&e, s, sizeof(e));
            if (protobuf_c_enum_descriptor_get_value(fd->descriptor, e) == NULL)
                e = 0;
            memcpy(d, &e, sizeof(e));
            break;
        case PROTOBUF_C_TYPE_DOUBLE:
        case PROTOBUF_C_TYPE_INT64:
        case PROTOBUF_C_TYPE_SINT64:
        case PROTOBUF_C_TYPE_SFIXED64:
            memcpy(d, s, f->size);
            break;
        default:
            wire_copy_uint(d, f->size, s, wirewalk_value_size(fd->type));
            break;
        }
    }
    if (t->fix != NULL)
        t->fix(dst);
}

/* The same, all of dst written: what t does not name is zeroed, as is all of it when m is NULL. */
static void wire_from_pb(const struct wire_msg *t, void *dst, const ProtobufCMessage *m)
{
    memset(dst, 0, t->size);
    if (m != NULL)
        wire_fields_from_pb(t, dst, m);
}

/*
 * Memory for a message being encoded: every block is freed at once, after
 * the pack. Blocks are zeroed.
 */
struct wire_arena {
    void *last; /* the newest block; its first word points at the one before */
};

#define WIRE_ARENA_HEAD 16 /* keeps what follows aligned for any member */

static void *wire_arena_alloc(struct wire_arena *a, size_t size)
{
    char *p = xcalloc(1, WIRE_ARENA_HEAD + size);

    memcpy(p, &a->last, sizeof(a->last));
    a->last = p;
    return p + WIRE_ARENA_HEAD;
}

static void wire_arena_free(struct wire_arena *a)
{
    while (a->last != NULL) {
        void *p = a->last;

        memcpy(&a->last, p, sizeof(a->last));
        free(p);
    }
}

/*
 * Fills the message m (initialised, of t's type) from the C struct src by
 * t. Strings point into src, which must outlive m; nested messages come
 * from the arena.
 */
static void wire_to_pb(const struct wire_msg *t, ProtobufCMessage *m, const void *src,
                       struct wire_arena *a)
{
    for (size_t i = 0; i < t->n; i++) {
        const struct wire_field *f = &t->fields[i];
        const ProtobufCFieldDescriptor *fd = wire_field_desc(t->desc, f->pb_off);
        const char *s = (const char *)src + f->off;
        char *d = (char *)m + f->pb_off;
        ProtobufCMessage *sub;
        char *text;
        protobuf_c_boolean b;
        bool v;

        switch (fd->type) {
        case PROTOBUF_C_TYPE_STRING:
            text = (char *)(uintptr_t)s;
            memcpy(d, &text, sizeof(text));
            break;
        case PROTOBUF_C_TYPE_MESSAGE:
            sub = wire_arena_alloc(a, f->msg->desc->sizeof_message);
            protobuf_c_message_init(f->msg->desc, sub);
            wire_to_pb(f->msg, sub, s, a);
            memcpy(d, &sub, sizeof(sub));
            break;
        case PROTOBUF_C_TYPE_BOOL:
            memcpy(&v, s, sizeof(v));
            b = v;
            memcpy(d, &b, sizeof(b));
            break;
        case PROTOBUF_C_TYPE_ENUM:
        case PROTOBUF_C_TYPE_DOUBLE:
        case PROTOBUF_C_TYPE_INT64:
        case PROTOBUF_C_TYPE_SINT64:
        case PROTOBUF_C_TYPE_SFIXED64:
            memcpy(d, s, f->size);
            break;
        default:
            wire_copy_uint(d, wirewalk_value_size(fd->type), s, f->size);
            break;
        }
    }
}

/*
 * The n C structs at items as protobuf messages of t's type, for a repeated
 * field: returns the array of pointers to them (from the arena).
 */
static void *wire_items_to_pb(const struct wire_msg *t, const void *items, size_t n,
                              struct wire_arena *a)
{
    size_t sz = t->desc->sizeof_message;
    char *block = wire_arena_alloc(a, n * (sizeof(void *) + sz));
    char *msgs = block + n * sizeof(void *);

    for (size_t i = 0; i < n; i++) {
        ProtobufCMessage *m = (ProtobufCMessage *)(void *)(msgs + i * sz);

        protobuf_c_message_init(t->desc, m);
        wire_to_pb(t, m, (const char *)items + i * t->size, a);
        memcpy(block + i * sizeof(void *), &m, sizeof(m));
    }
    return block;
}

/* The n unpacked messages of a repeated field as a new array of C structs (t's). */
static void *wire_items_from_pb(const struct wire_msg *t, const void *array, size_t n)
{
    char *out = xcalloc(n, t->size);

    for (size_t i = 0; i < n; i++)
        wire_from_pb(t, out + i * t->size, wire_item(array, i));
    return out;
}

/* Refuses a repeated field of more than max entries. */
static int wire_check_count(const char *field, size_t n, size_t max, struct wire_error *err)
{
    if (n > max)
        return wire_invalid(err, "%s: %zu entries, the limit is %zu", field, n, max);
    return 0;
}

/* Packs m, then frees the arena its parts came from. */
static uint8_t *wire_pack_free(const ProtobufCMessage *m, struct wire_arena *a, size_t *ret_len)
{
    uint8_t *buf = wire_pack(m, ret_len);

    wire_arena_free(a);
    return buf;
}

/* Packs m with its repeated field `field` holding the n C structs at items, copied by t. */
static uint8_t *wire_list_encode(ProtobufCMessage *m, const char *field, const struct wire_msg *t,
                                 const void *items, size_t n, size_t *ret_len)
{
    const ProtobufCFieldDescriptor *fd =
        protobuf_c_message_descriptor_get_field_by_name(m->descriptor, field);
    struct wire_arena a = {NULL};
    void *array = wire_items_to_pb(t, items, n, &a);

    memcpy((char *)m + fd->quantifier_offset, &n, sizeof(n));
    memcpy((char *)m + fd->offset, &array, sizeof(array));
    return wire_pack_free(m, &a, ret_len);
}

/* The ids as a protobuf repeated string field, from the arena (strings borrowed). */
static char **wire_ids_to_pb(char (*ids)[WIRE_ID_MAX + 1], size_t n, struct wire_arena *a)
{
    char **out = wire_arena_alloc(a, n * sizeof(char *));

    for (size_t i = 0; i < n; i++)
        out[i] = ids[i];
    return out;
}

/* ---- tables ---------------------------------------------------------------- */

/* A watermark outside (0, 1] reads as "not said". */
static void wire_pressure_fix(void *c)
{
    struct wire_pressure *p = c;

    if (!(p->admit_watermark > 0 && p->admit_watermark <= 1))
        p->admit_watermark = 0;
}

#define F(m) WIRE_FIELD(Sluice__V1__PressureSnapshot, struct wire_pressure, m)
static const struct wire_field wire_pressure_fields[] = {
    F(some_avg10),     F(full_avg10),     F(some_fraction),   F(full_fraction),
    F(usage_bytes),    F(limit_bytes),    F(wss_bytes),       F(p99_seconds),
    F(loads_in_flight), F(psi_host_wide), F(io_mode),         F(pool_bytes),
    F(pool_hit_ratio), F(pinned_bytes),   F(tte_known),       F(tte_ms),
    WIRE_FIELD_AS(Sluice__V1__PressureSnapshot, growth_bytes_per_second, struct wire_pressure,
                  growth_bytes_per_s),
    WIRE_FIELD_AS(Sluice__V1__PressureSnapshot, swapins_per_second, struct wire_pressure,
                  swapins_per_s),
    F(admit_watermark), F(queries_in_flight), F(load_slots),
};
#undef F
static const struct wire_msg wire_pressure_msg =
    WIRE_MSG(sluice__v1__pressure_snapshot__descriptor, struct wire_pressure,
             wire_pressure_fields, wire_pressure_fix);

#define F(m) WIRE_FIELD(Sluice__V1__AssignRequest, struct wire_assign_request, m)
static const struct wire_field wire_assign_fields[] = {
    F(segment_id), F(uri), F(row_count), F(avg_row_size), F(digest), F(mem_request_bytes),
    F(mem_limit_bytes),
};
#undef F
static const struct wire_msg wire_assign_msg = WIRE_MSG(
    sluice__v1__assign_request__descriptor, struct wire_assign_request, wire_assign_fields, NULL);

#define F(m) WIRE_FIELD(Sluice__V1__AssignResponse, struct wire_assign_response, m)
static const struct wire_field wire_assign_response_fields[] = {
    F(verdict), F(reason), F(retry_after_ms), F(detail), F(status),
    WIRE_FIELD_MSG(Sluice__V1__AssignResponse, pressure, struct wire_assign_response, pressure,
                   &wire_pressure_msg),
};
#undef F
static const struct wire_msg wire_assign_response_msg =
    WIRE_MSG(sluice__v1__assign_response__descriptor, struct wire_assign_response,
             wire_assign_response_fields, NULL);


/* ---- node API ------------------------------------------------------------- */

/* Validates one unpacked AssignRequest into out; prefix names it in errors ("" or
 * "assignments[3]."). */
static int wire_assign_from_pb(const Sluice__V1__AssignRequest *m, const char *prefix,
                               struct wire_assign_request *out, struct wire_error *err)
{
    char field[64];

    snprintf(field, sizeof(field), "%ssegment_id", prefix);
    if (wire_check_segment_id(field, m->segment_id, err) < 0)
        return -EINVAL;
    snprintf(field, sizeof(field), "%suri", prefix);
    if (wire_check_uri(field, m->uri, err) < 0)
        return -EINVAL;
    if (m->row_count == 0 || m->row_count > WIRE_ROW_COUNT_MAX)
        return wire_invalid(err, "%srow_count: %llu is outside 1..%llu", prefix,
                            (unsigned long long)m->row_count, WIRE_ROW_COUNT_MAX);
    if (m->avg_row_size == 0 || m->avg_row_size > WIRE_ROW_SIZE_MAX)
        return wire_invalid(err, "%savg_row_size: %llu is outside 1..%llu", prefix,
                            (unsigned long long)m->avg_row_size, WIRE_ROW_SIZE_MAX);
    if (wire_check_mem(prefix, m->mem_request_bytes, m->mem_limit_bytes, err) < 0)
        return -EINVAL;
    wire_from_pb(&wire_assign_msg, out, &m->base);
    return 0;
}

int wire_assign_request_decode(const void *buf, size_t len, struct wire_assign_request *ret,
                               struct wire_error *err)
{
    Sluice__V1__AssignRequest *m;
    struct wire_assign_request out;
    int r;

    m = wire_unpack(&sluice__v1__assign_request__descriptor, buf, len, "AssignRequest", err, &r);
    if (m == NULL)
        return r;
    r = wire_assign_from_pb(m, "", &out, err);
    if (r == 0)
        *ret = out;
    sluice__v1__assign_request__free_unpacked(m, NULL);
    return r;
}

int wire_assign_batch_decode(const void *buf, size_t len, struct wire_assign_batch *ret,
                             struct wire_error *err)
{
    Sluice__V1__AssignBatch *m;
    struct wire_assign_batch out = {0, NULL, 0};
    char prefix[48];
    int r;

    m = wire_unpack(&sluice__v1__assign_batch__descriptor, buf, len, "AssignBatch", err, &r);
    if (m == NULL)
        return r;
    r = -EINVAL;
    if (m->n_assignments == 0) {
        wire_invalid(err, "assignments: empty");
        goto out;
    }
    if (wire_check_count("assignments", m->n_assignments, WIRE_ASSIGN_BATCH_MAX, err) < 0)
        goto out;
    out.assignments = xcalloc(m->n_assignments, sizeof(*out.assignments));
    for (size_t i = 0; i < m->n_assignments; i++) {
        snprintf(prefix, sizeof(prefix), "assignments[%zu].", i);
        if (wire_assign_from_pb(m->assignments[i], prefix, &out.assignments[i], err) < 0) {
            free(out.assignments);
            goto out;
        }
    }
    out.n = m->n_assignments;
    out.epoch = m->epoch;
    *ret = out;
    r = 0;
out:
    sluice__v1__assign_batch__free_unpacked(m, NULL);
    return r;
}

uint8_t *wire_assign_batch_encode(const struct wire_assign_batch *in, size_t *ret_len)
{
    Sluice__V1__AssignBatch m = SLUICE__V1__ASSIGN_BATCH__INIT;

    m.epoch = in->epoch;
    return wire_list_encode(&m.base, "assignments", &wire_assign_msg, in->assignments, in->n,
                            ret_len);
}

void wire_assign_batch_done(struct wire_assign_batch *m)
{
    if (m == NULL)
        return;
    free(m->assignments);
    memset(m, 0, sizeof(*m));
}

/* Encodes the single message that t mirrors from the C struct in. */
static uint8_t *wire_encode(const struct wire_msg *t, const void *in, size_t *ret_len)
{
    struct wire_arena a = {NULL};
    ProtobufCMessage *m = wire_arena_alloc(&a, t->desc->sizeof_message);

    protobuf_c_message_init(t->desc, m);
    wire_to_pb(t, m, in, &a);
    return wire_pack_free(m, &a, ret_len);
}

uint8_t *wire_assign_request_encode(const struct wire_assign_request *in, size_t *ret_len)
{
    return wire_encode(&wire_assign_msg, in, ret_len);
}

/* Refuses a verdict or reason this build does not know. */
static int wire_check_verdict(const Sluice__V1__AssignResponse *m, struct wire_error *err)
{
    if ((unsigned)m->verdict > WIRE_VERDICT_REJECTED || m->verdict == 0)
        return wire_invalid(err, "verdict: unknown value %d", (int)m->verdict);
    if ((unsigned)m->reason >= WIRE_REASON_COUNT_)
        return wire_invalid(err, "reason: unknown value %d", (int)m->reason);
    return 0;
}

int wire_assign_response_decode(const void *buf, size_t len, struct wire_assign_response *ret,
                                struct wire_error *err)
{
    Sluice__V1__AssignResponse *m;
    int r;

    m = wire_unpack(&sluice__v1__assign_response__descriptor, buf, len, "AssignResponse", err, &r);
    if (m == NULL)
        return r;
    /* The detail is for people: a long one is cut, not refused. */
    r = wire_check_verdict(m, err);
    if (r == 0)
        wire_from_pb(&wire_assign_response_msg, ret, &m->base);
    sluice__v1__assign_response__free_unpacked(m, NULL);
    return r;
}

uint8_t *wire_assign_response_encode(const struct wire_assign_response *in, size_t *ret_len)
{
    return wire_encode(&wire_assign_response_msg, in, ret_len);
}

int wire_assign_batch_response_decode(const void *buf, size_t len,
                                      struct wire_assign_batch_response *ret,
                                      struct wire_error *err)
{
    Sluice__V1__AssignBatchResponse *m;
    int r;

    m = wire_unpack(&sluice__v1__assign_batch_response__descriptor, buf, len,
                    "AssignBatchResponse", err, &r);
    if (m == NULL)
        return r;
    memset(ret, 0, sizeof(*ret));
    r = wire_check_count("results", m->n_results, WIRE_ASSIGN_BATCH_MAX, err);
    for (size_t i = 0; r == 0 && i < m->n_results; i++) {
        const Sluice__V1__AssignResponse *a = m->results[i];

        /* Unlike a single answer, an entry may leave its verdict unsaid. */
        if ((unsigned)a->reason >= WIRE_REASON_COUNT_ ||
            (unsigned)a->verdict > WIRE_VERDICT_REJECTED)
            r = wire_invalid(err, "results[%zu]: unknown verdict or reason", i);
    }
    if (r == 0) {
        ret->results = wire_items_from_pb(&wire_assign_response_msg, m->results, m->n_results);
        ret->n = m->n_results;
    }
    sluice__v1__assign_batch_response__free_unpacked(m, NULL);
    return r;
}

uint8_t *wire_assign_batch_response_encode(const struct wire_assign_batch_response *in,
                                           size_t *ret_len)
{
    Sluice__V1__AssignBatchResponse m = SLUICE__V1__ASSIGN_BATCH_RESPONSE__INIT;

    return wire_list_encode(&m.base, "results", &wire_assign_response_msg, in->results, in->n,
                            ret_len);
}

void wire_assign_batch_response_done(struct wire_assign_batch_response *m)
{
    if (m == NULL)
        return;
    free(m->results);
    memset(m, 0, sizeof(*m));
}

#define F(m) WIRE_FIELD(Sluice__V1__QueryRequest, struct wire_query_request, m)
static const struct wire_field wire_query_fields[] = {
    F(aggregate), F(column), F(filter_column), F(lo), F(hi), F(table), F(allow_partial),
    F(timeout_ms),
};
#undef F
static const struct wire_msg wire_query_msg = WIRE_MSG(
    sluice__v1__query_request__descriptor, struct wire_query_request, wire_query_fields, NULL);

/*
 * The checks of a QueryRequest shared by a node's (segment_ids, no table)
 * and a broker's (a table, no segment_ids); out takes the fields but not
 * the ids.
 */
static int wire_query_from_pb(const Sluice__V1__QueryRequest *m, bool table_query,
                              struct wire_query_request *out, struct wire_error *err)
{
    char field[48];

    if (table_query) {
        if (m->n_segment_ids > 0)
            return wire_invalid(err, "segment_ids: a broker queries every segment of the "
                                     "table; name the table only");
        if (wire_check_table("table", m->table, err) < 0)
            return -EINVAL;
    } else {
        if (m->table[0] != '\0')
            return wire_invalid(err, "table: a node answers for segment_ids; ask a broker "
                                     "(sluice-coord broker) for a table");
        if (m->n_segment_ids == 0)
            return wire_invalid(err, "segment_ids: empty");
        if (m->n_segment_ids > WIRE_QUERY_MAX_SEGMENTS)
            return wire_invalid(err, "segment_ids: %zu ids, the limit is %d",
                                m->n_segment_ids, WIRE_QUERY_MAX_SEGMENTS);
        for (size_t i = 0; i < m->n_segment_ids; i++) {
            snprintf(field, sizeof(field), "segment_ids[%zu]", i);
            if (wire_check_segment_id(field, m->segment_ids[i], err) < 0)
                return -EINVAL;
            /* A duplicate would be counted twice. n <= 1024 keeps this cheap. */
            for (size_t j = 0; j < i; j++)
                if (strcmp(m->segment_ids[i], m->segment_ids[j]) == 0)
                    return wire_invalid(err, "%s: duplicate of segment_ids[%zu]", field, j);
        }
    }
    if (m->aggregate == 0 || (unsigned)m->aggregate >= WIRE_AGG_COUNT_)
        return wire_invalid(err, "aggregate: unknown value %d (count, sum, min, max)",
                            (int)m->aggregate);
    if (wire_check_column("column", m->column, err) < 0)
        return -EINVAL;
    if (m->filter_column[0] != '\0') {
        if (wire_check_column("filter_column", m->filter_column, err) < 0)
            return -EINVAL;
        if (m->lo > m->hi)
            return wire_invalid(err, "lo: %lld is greater than hi %lld", (long long)m->lo,
                                (long long)m->hi);
    }
    wire_from_pb(&wire_query_msg, out, &m->base);
    return 0;
}

int wire_query_request_decode(const void *buf, size_t len, struct wire_query_request *ret,
                              struct wire_error *err)
{
    Sluice__V1__QueryRequest *m;
    struct wire_query_request out;
    int r;

    m = wire_unpack(&sluice__v1__query_request__descriptor, buf, len, "QueryRequest", err, &r);
    if (m == NULL)
        return r;
    r = wire_query_from_pb(m, false, &out, err);
    if (r == 0) {
        out.n_segments = m->n_segment_ids;
        out.segment_ids = xcalloc(m->n_segment_ids, sizeof(*out.segment_ids));
        for (size_t i = 0; i < m->n_segment_ids; i++)
            wire_copy_text(out.segment_ids[i], sizeof(out.segment_ids[i]), m->segment_ids[i]);
        *ret = out;
    }
    sluice__v1__query_request__free_unpacked(m, NULL);
    return r;
}

int wire_table_query_decode(const void *buf, size_t len, struct wire_query_request *ret,
                            struct wire_error *err)
{
    Sluice__V1__QueryRequest *m;
    struct wire_query_request out;
    int r;

    m = wire_unpack(&sluice__v1__query_request__descriptor, buf, len, "QueryRequest", err, &r);
    if (m == NULL)
        return r;
    r = wire_query_from_pb(m, true, &out, err);
    if (r == 0)
        *ret = out;
    sluice__v1__query_request__free_unpacked(m, NULL);
    return r;
}

uint8_t *wire_query_request_encode(const struct wire_query_request *in, size_t *ret_len)
{
    Sluice__V1__QueryRequest m = SLUICE__V1__QUERY_REQUEST__INIT;
    struct wire_arena a = {NULL};

    wire_to_pb(&wire_query_msg, &m.base, in, &a);
    m.n_segment_ids = in->n_segments;
    m.segment_ids = wire_ids_to_pb(in->segment_ids, in->n_segments, &a);
    return wire_pack_free(&m.base, &a, ret_len);
}

void wire_query_request_done(struct wire_query_request *m)
{
    if (m == NULL)
        return;
    free(m->segment_ids);
    memset(m, 0, sizeof(*m));
}

#define F(m) WIRE_FIELD(Sluice__V1__QueryResponse, struct wire_query_response, m)
static const struct wire_field wire_query_response_fields[] = {
    F(rows_matched), F(is_float),      F(int_value),      F(float_value),
    F(rows_scanned), F(bytes_scanned), F(blocks_skipped), F(service_us),
};
#undef F
static const struct wire_msg wire_query_response_msg =
    WIRE_MSG(sluice__v1__query_response__descriptor, struct wire_query_response,
             wire_query_response_fields, NULL);

/* Unpacks a message that is all plain fields, by its table: nothing in it can be refused. */
static int wire_decode(const struct wire_msg *t, const void *buf, size_t len, void *ret,
                       struct wire_error *err)
{
    ProtobufCMessage *m;
    int r;

    m = wire_unpack(t->desc, buf, len, t->desc->short_name, err, &r);
    if (m == NULL)
        return r;
    wire_from_pb(t, ret, m);
    protobuf_c_message_free_unpacked(m, NULL);
    return 0;
}

int wire_query_response_decode(const void *buf, size_t len, struct wire_query_response *ret,
                               struct wire_error *err)
{
    return wire_decode(&wire_query_response_msg, buf, len, ret, err);
}

uint8_t *wire_query_response_encode(const struct wire_query_response *in, size_t *ret_len)
{
    return wire_encode(&wire_query_response_msg, in, ret_len);
}

/* A broker's answer: the fields beyond a node's (result) and the missing ids. */
#define F(m) WIRE_FIELD(Sluice__V1__QueryResponse, struct wire_table_query_response, m)
static const struct wire_field wire_table_query_response_fields[] = {
    F(segments), F(partial), F(nodes_asked), F(subrequests), F(retries), F(hedges),
    F(placement_version),
};
#undef F
static const struct wire_msg wire_table_query_response_msg =
    WIRE_MSG(sluice__v1__query_response__descriptor, struct wire_table_query_response,
             wire_table_query_response_fields, NULL);

/* Copies a repeated string field of segment ids, validating each. */
static int wire_ids_from_pb(const char *field, char **ids, size_t n, size_t max,
                            char (**ret)[WIRE_ID_MAX + 1], struct wire_error *err);

int wire_table_query_response_decode(const void *buf, size_t len,
                                     struct wire_table_query_response *ret,
                                     struct wire_error *err)
{
    Sluice__V1__QueryResponse *m;
    struct wire_table_query_response out;
    int r;

    m = wire_unpack(&sluice__v1__query_response__descriptor, buf, len, "QueryResponse", err, &r);
    if (m == NULL)
        return r;
    r = wire_ids_from_pb("missing_segment_ids", m->missing_segment_ids,
                         m->n_missing_segment_ids, WIRE_SEGMENT_LIST_MAX, &out.missing, err);
    if (r == 0) {
        char (*missing)[WIRE_ID_MAX + 1] = out.missing;

        wire_from_pb(&wire_table_query_response_msg, &out, &m->base);
        wire_from_pb(&wire_query_response_msg, &out.result, &m->base);
        out.missing = missing;
        out.n_missing = m->n_missing_segment_ids;
        *ret = out;
    }
    sluice__v1__query_response__free_unpacked(m, NULL);
    return r;
}

uint8_t *wire_table_query_response_encode(const struct wire_table_query_response *in,
                                          size_t *ret_len)
{
    Sluice__V1__QueryResponse m = SLUICE__V1__QUERY_RESPONSE__INIT;
    struct wire_arena a = {NULL};

    wire_to_pb(&wire_query_response_msg, &m.base, &in->result, &a);
    wire_to_pb(&wire_table_query_response_msg, &m.base, in, &a);
    m.n_missing_segment_ids = in->n_missing;
    m.missing_segment_ids = wire_ids_to_pb(in->missing, in->n_missing, &a);
    return wire_pack_free(&m.base, &a, ret_len);
}

void wire_table_query_response_done(struct wire_table_query_response *m)
{
    if (m == NULL)
        return;
    free(m->missing);
    memset(m, 0, sizeof(*m));
}

/* Every field but uri (owned, NULL when empty). */
#define F(m) WIRE_FIELD(Sluice__V1__SegmentStatus, struct wire_segment_status, m)
static const struct wire_field wire_status_fields[] = {
    F(segment_id),      F(state),           F(reason),          F(detail),
    F(row_count),       F(avg_row_size),    F(file_bytes),      F(index_bytes),
    F(last_query_unix_ms), F(digest),       F(footprint_bytes), F(mem_request_bytes),
    F(mem_limit_bytes), F(over_limit),
};
#undef F
static const struct wire_msg wire_status_msg = WIRE_MSG(
    sluice__v1__segment_status__descriptor, struct wire_segment_status, wire_status_fields, NULL);

static int wire_segment_status_from_pb(struct wire_segment_status *dst,
                                       const Sluice__V1__SegmentStatus *s, size_t i,
                                       struct wire_error *err)
{
    char field[48];

    /* The field's name is formatted only for an error: a report lists 10^3 copies a second. */
    if (wire_check_segment_id("", s->segment_id, NULL) < 0) {
        snprintf(field, sizeof(field), "segments[%zu].segment_id", i);
        return wire_check_segment_id(field, s->segment_id, err);
    }
    if (s->state == 0 || (unsigned)s->state >= WIRE_SEG_COUNT_)
        return wire_invalid(err, "segments[%zu].state: unknown value %d", i, (int)s->state);
    if ((unsigned)s->reason >= WIRE_REASON_COUNT_)
        return wire_invalid(err, "segments[%zu].reason: unknown value %d", i, (int)s->reason);
    if (s->uri != NULL && strlen(s->uri) > WIRE_URI_MAX)
        return wire_invalid(err, "segments[%zu].uri: %zu bytes, the limit is %d", i,
                            strlen(s->uri), WIRE_URI_MAX);
    wire_from_pb(&wire_status_msg, dst, &s->base);
    dst->uri = s->uri != NULL && s->uri[0] != '\0' ? xstrdup(s->uri) : NULL;
    return 0;
}

/*
 * Validates and copies the segments of a NodeStatus or NodeReport into a new
 * array; on an error nothing is left allocated.
 */
static int wire_statuses_from_pb(Sluice__V1__SegmentStatus *const *segs, size_t n, size_t max,
                                 struct wire_segment_status **ret, struct wire_error *err)
{
    struct wire_segment_status *out;

    if (wire_check_count("segments", n, max, err) < 0)
        return -EINVAL;
    out = xcalloc(n, sizeof(*out));
    for (size_t i = 0; i < n; i++) {
        if (wire_segment_status_from_pb(&out[i], segs[i], i, err) < 0) {
            for (size_t j = 0; j < i; j++)
                free(out[j].uri);
            free(out);
            return -EINVAL;
        }
    }
    *ret = out;
    return 0;
}

/* Protobuf views of a status array, from the arena. */
static Sluice__V1__SegmentStatus **wire_statuses_to_pb(const struct wire_segment_status *in,
                                                       size_t n, struct wire_arena *a)
{
    Sluice__V1__SegmentStatus **ptrs = wire_items_to_pb(&wire_status_msg, in, n, a);

    for (size_t i = 0; i < n; i++)
        ptrs[i]->uri = (char *)(uintptr_t)(in[i].uri != NULL ? in[i].uri : "");
    return ptrs;
}

static void wire_statuses_free(struct wire_segment_status *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(s[i].uri);
    free(s);
}

/* A node holds at most this many segments in one status message. */
#define WIRE_STATUS_MAX_SEGMENTS 100000

/* Every field but segments, closed_gates and warnings. */
#define F(m) WIRE_FIELD(Sluice__V1__NodeStatus, struct wire_node_status, m)
static const struct wire_field wire_node_status_fields[] = {
    F(node_id), F(state),          F(mapped_bytes),   F(index_bytes),
    F(version), F(uptime_seconds), F(signal_sources), F(cost_factor),
    WIRE_FIELD_MSG(Sluice__V1__NodeStatus, pressure, struct wire_node_status, pressure,
                   &wire_pressure_msg),
};
#undef F
static const struct wire_msg wire_node_status_msg =
    WIRE_MSG(sluice__v1__node_status__descriptor, struct wire_node_status,
             wire_node_status_fields, NULL);

/* Joins a repeated string field into buf with sep between items (truncated to fit). */
static void wire_join(char *buf, size_t len, char *const *items, size_t n, const char *sep)
{
    size_t o = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < n && o < len - 1; i++) {
        int k = snprintf(buf + o, len - o, "%s%s", i > 0 ? sep : "", items[i]);

        if (k < 0)
            break;
        o += (size_t)k;
    }
}

/* Splits s in place at sep into at most max items (empty ones skipped); returns the count. */
static size_t wire_split(char *s, const char *sep, char **items, size_t max)
{
    char *save = NULL, *tok;
    size_t n = 0;

    for (tok = strtok_r(s, sep, &save); tok != NULL && n < max; tok = strtok_r(NULL, sep, &save))
        items[n++] = tok;
    return n;
}

int wire_node_status_decode(const void *buf, size_t len, struct wire_node_status *ret,
                            struct wire_error *err)
{
    Sluice__V1__NodeStatus *m;
    struct wire_segment_status *segs = NULL;
    int r;

    m = wire_unpack(&sluice__v1__node_status__descriptor, buf, len, "NodeStatus", err, &r);
    if (m == NULL)
        return r;
    r = -EINVAL;
    if (m->node_id[0] != '\0' && wire_check_segment_id("node_id", m->node_id, err) < 0)
        goto out;
    if ((unsigned)m->state > WIRE_NODE_DRAINING) {
        wire_invalid(err, "state: unknown value %d", (int)m->state);
        goto out;
    }
    if (wire_statuses_from_pb(m->segments, m->n_segments, WIRE_STATUS_MAX_SEGMENTS, &segs, err) < 0)
        goto out;
    wire_from_pb(&wire_node_status_msg, ret, &m->base);
    ret->segments = segs;
    ret->n_segments = m->n_segments;
    wire_join(ret->closed_gates, sizeof(ret->closed_gates), m->closed_gates, m->n_closed_gates,
              " ");
    wire_join(ret->warnings, sizeof(ret->warnings), m->warnings, m->n_warnings, "\n");
    r = 0;
out:
    sluice__v1__node_status__free_unpacked(m, NULL);
    return r;
}

uint8_t *wire_node_status_encode(const struct wire_node_status *in, size_t *ret_len)
{
    Sluice__V1__NodeStatus m = SLUICE__V1__NODE_STATUS__INIT;
    struct wire_arena a = {NULL};
    char gates[sizeof(in->closed_gates)], warns[sizeof(in->warnings)];
    char *names[WIRE_REASON_COUNT_], *lines[WIRE_WARNINGS_MAX];

    wire_to_pb(&wire_node_status_msg, &m.base, in, &a);
    m.n_segments = in->n_segments;
    m.segments = wire_statuses_to_pb(in->segments, in->n_segments, &a);
    /* Repeated fields that are one separated string here. */
    wire_copy_text(gates, sizeof(gates), in->closed_gates);
    m.closed_gates = names;
    m.n_closed_gates = wire_split(gates, " ", names, WIRE_REASON_COUNT_);
    wire_copy_text(warns, sizeof(warns), in->warnings);
    m.warnings = lines;
    m.n_warnings = wire_split(warns, "\n", lines, WIRE_WARNINGS_MAX);
    return wire_pack_free(&m.base, &a, ret_len);
}

void wire_node_status_done(struct wire_node_status *m)
{
    if (m == NULL)
        return;
    wire_statuses_free(m->segments, m->n_segments);
    memset(m, 0, sizeof(*m));
}

static const struct wire_field wire_error_fields[] = {
    WIRE_FIELD(Sluice__V1__Error, struct wire_error, code),
    WIRE_FIELD(Sluice__V1__Error, struct wire_error, message),
};
static const struct wire_msg wire_error_msg =
    WIRE_MSG(sluice__v1__error__descriptor, struct wire_error, wire_error_fields, NULL);

int wire_error_decode(const void *buf, size_t len, struct wire_error *ret)
{
    struct wire_error ignored;
    int r = wire_decode(&wire_error_msg, buf, len, ret, &ignored);

    return r == -EINVAL ? -EBADMSG : r;
}

uint8_t *wire_error_encode(const struct wire_error *in, size_t *ret_len)
{
    return wire_encode(&wire_error_msg, in, ret_len);
}

/* ---- coordinator API ---------------------------------------------------- */

/* Every field but segments and removed_segment_ids. */
#define F(m) WIRE_FIELD(Sluice__V1__NodeReport, struct wire_node_report, m)
static const struct wire_field wire_node_report_fields[] = {
    F(node_id), F(addr), F(state), F(uptime_seconds), F(claim),
    F(incarnation), F(seq), F(delta), F(base_seq), F(set_count), F(set_hash),
    WIRE_FIELD_MSG(Sluice__V1__NodeReport, pressure, struct wire_node_report, pressure,
                   &wire_pressure_msg),
};
#undef F
static const struct wire_msg wire_node_report_msg =
    WIRE_MSG(sluice__v1__node_report__descriptor, struct wire_node_report,
             wire_node_report_fields, NULL);

static int wire_ids_from_pb(const char *field, char **ids, size_t n, size_t max,
                            char (**ret)[WIRE_ID_MAX + 1], struct wire_error *err);

/*
 * A report's delta fields (NodeReport in the proto): only a report with an
 * incarnation is numbered and acknowledged, and only a delta has a base and
 * names removed copies.
 */
static int wire_report_delta_check(const Sluice__V1__NodeReport *m, struct wire_error *err)
{
    if (m->incarnation == 0 && (m->seq != 0 || m->delta || m->base_seq != 0 ||
                                m->n_removed_segment_ids != 0))
        return wire_invalid(err, "incarnation: 0 (an older node's full report) with delta fields set");
    if (m->incarnation != 0 && m->seq == 0)
        return wire_invalid(err, "seq: 0; reports are numbered from 1");
    if (m->delta && (m->base_seq == 0 || m->base_seq >= m->seq))
        return wire_invalid(err, "base_seq: %llu, a delta's base is an earlier report (seq %llu)",
                            (unsigned long long)m->base_seq, (unsigned long long)m->seq);
    if (!m->delta && (m->base_seq != 0 || m->n_removed_segment_ids != 0))
        return wire_invalid(err, "%s: set in a full report",
                            m->base_seq != 0 ? "base_seq" : "removed_segment_ids");
    if (m->set_count > WIRE_REPORT_MAX_SEGS)
        return wire_invalid(err, "set_count: %llu, the limit is %d",
                            (unsigned long long)m->set_count, WIRE_REPORT_MAX_SEGS);
    return 0;
}

int wire_node_report_decode(const void *buf, size_t len, struct wire_node_report *ret,
                            struct wire_error *err)
{
    char (*removed)[WIRE_ID_MAX + 1] = NULL;
    Sluice__V1__NodeReport *m;
    struct wire_bump bump = {NULL};
    ProtobufCAllocator alloc = {wire_bump_alloc, wire_bump_free, &bump};
    struct wire_segment_status *segs = NULL;
    char addr[WIRE_ADDR_MAX + 1];
    int r;

    m = wire_unpack_with(&sluice__v1__node_report__descriptor, buf, len, "NodeReport", &alloc, err,
                         &r);
    if (m == NULL) {
        wire_bump_done(&bump); /* what a failed unpack left */
        return r;
    }
    r = -EINVAL;
    if (wire_check_segment_id("node_id", m->node_id, err) < 0 ||
        wire_copy_checked("addr", addr, sizeof(addr), m->addr, err) < 0 ||
        wire_check_addr("addr", addr, err) < 0)
        goto out;
    if (m->state == 0 || (unsigned)m->state > WIRE_NODE_DRAINING) {
        wire_invalid(err, "state: unknown value %d", (int)m->state);
        goto out;
    }
    if (wire_report_delta_check(m, err) < 0 ||
        wire_ids_from_pb("removed_segment_ids", m->removed_segment_ids,
                         m->n_removed_segment_ids, WIRE_REPORT_MAX_SEGS, &removed, err) < 0)
        goto out;
    if (wire_statuses_from_pb(m->segments, m->n_segments, WIRE_REPORT_MAX_SEGS, &segs, err) < 0) {
        free(removed);
        goto out;
    }
    wire_from_pb(&wire_node_report_msg, ret, &m->base);
    ret->segments = segs;
    ret->n_segments = m->n_segments;
    ret->removed = removed;
    ret->n_removed = m->n_removed_segment_ids;
    r = 0;
out:
    wire_bump_done(&bump); /* m and everything in it */
    return r;
}

uint8_t *wire_node_report_encode(const struct wire_node_report *in, size_t *ret_len)
{
    Sluice__V1__NodeReport m = SLUICE__V1__NODE_REPORT__INIT;
    struct wire_arena a = {NULL};

    wire_to_pb(&wire_node_report_msg, &m.base, in, &a);
    m.n_segments = in->n_segments;
    m.segments = wire_statuses_to_pb(in->segments, in->n_segments, &a);
    m.n_removed_segment_ids = in->n_removed;
    m.removed_segment_ids = wire_ids_to_pb(in->removed, in->n_removed, &a);
    return wire_pack_free(&m.base, &a, ret_len);
}

void wire_node_report_done(struct wire_node_report *m)
{
    if (m == NULL)
        return;
    wire_statuses_free(m->segments, m->n_segments);
    free(m->removed);
    memset(m, 0, sizeof(*m));
}


/* Copies a repeated string field of segment ids, validating each. */
static int wire_ids_from_pb(const char *field, char **ids, size_t n, size_t max,
                            char (**ret)[WIRE_ID_MAX + 1], struct wire_error *err)
{
    char (*out)[WIRE_ID_MAX + 1];
    char name[64];

    if (wire_check_count(field, n, max, err) < 0)
        return -EINVAL;
    out = xcalloc(n, sizeof(*out));
    for (size_t i = 0; i < n; i++) {
        snprintf(name, sizeof(name), "%s[%zu]", field, i);
        if (wire_check_segment_id(name, ids[i], err) < 0) {
            free(out);
            return -EINVAL;
        }
        wire_copy_text(out[i], sizeof(out[i]), ids[i]);
    }
    *ret = out;
    return 0;
}

int wire_report_response_decode(const void *buf, size_t len, struct wire_report_response *ret,
                                struct wire_error *err)
{
    Sluice__V1__ReportResponse *m;
    int r;

    m = wire_unpack(&sluice__v1__report_response__descriptor, buf, len, "ReportResponse", err, &r);
    if (m == NULL)
        return r;
    memset(ret, 0, sizeof(*ret));
    r = wire_ids_from_pb("drop_segment_ids", m->drop_segment_ids, m->n_drop_segment_ids,
                         WIRE_REPORT_MAX_SEGS, &ret->drop, err);
    if (r == 0) {
        ret->n_drop = m->n_drop_segment_ids;
        ret->ack_seq = m->ack_seq;
        ret->send_full = m->send_full;
        ret->epoch = m->epoch;
        wire_copy_text(ret->full_reason, sizeof(ret->full_reason),
                       m->full_reason != NULL ? m->full_reason : "");
    }
    sluice__v1__report_response__free_unpacked(m, NULL);
    return r;
}

uint8_t *wire_report_response_encode(const struct wire_report_response *in, size_t *ret_len)
{
    Sluice__V1__ReportResponse m = SLUICE__V1__REPORT_RESPONSE__INIT;
    struct wire_arena a = {NULL};

    m.n_drop_segment_ids = in->n_drop;
    m.drop_segment_ids = wire_ids_to_pb(in->drop, in->n_drop, &a);
    m.ack_seq = in->ack_seq;
    m.send_full = in->send_full;
    m.epoch = in->epoch;
    m.full_reason = (char *)(uintptr_t)in->full_reason;
    return wire_pack_free(&m.base, &a, ret_len);
}

void wire_report_response_done(struct wire_report_response *m)
{
    if (m == NULL)
        return;
    free(m->drop);
    memset(m, 0, sizeof(*m));
}


int wire_check_segment_spec(const char *field, const struct wire_segment_spec *s,
                            struct wire_error *err)
{
    char name[64];

    snprintf(name, sizeof(name), "%s.segment_id", field);
    if (wire_check_segment_id(name, s->segment_id, err) < 0)
        return -EINVAL;
    snprintf(name, sizeof(name), "%s.uri", field);
    if (wire_check_uri(name, s->uri != NULL ? s->uri : "", err) < 0)
        return -EINVAL;
    if (s->row_count == 0 || s->row_count > WIRE_ROW_COUNT_MAX)
        return wire_invalid(err, "%s.row_count: %llu is outside 1..%llu", field,
                            (unsigned long long)s->row_count, WIRE_ROW_COUNT_MAX);
    if (s->avg_row_size == 0 || s->avg_row_size > WIRE_ROW_SIZE_MAX)
        return wire_invalid(err, "%s.avg_row_size: %llu is outside 1..%llu", field,
                            (unsigned long long)s->avg_row_size, WIRE_ROW_SIZE_MAX);
    if (s->replication > WIRE_REPLICATION_MAX)
        return wire_invalid(err, "%s.replication: %u is outside 1..%d", field, s->replication,
                            WIRE_REPLICATION_MAX);
    snprintf(name, sizeof(name), "%s.table", field);
    if (wire_check_table(name, s->table, err) < 0)
        return -EINVAL;
    snprintf(name, sizeof(name), "%s.", field);
    if (wire_check_mem(name, s->mem_request_bytes, s->mem_limit_bytes, err) < 0)
        return -EINVAL;
    return 0;
}

/* Replication 0 reads as 1, an empty table as the default one. */
static void wire_spec_fix(void *c)
{
    struct wire_segment_spec *s = c;

    if (s->replication == 0)
        s->replication = 1;
    if (s->table[0] == '\0')
        wire_copy_text(s->table, sizeof(s->table), WIRE_TABLE_DEFAULT);
}

/* Every field but uri (owned, never NULL after a decode). */
#define F(m) WIRE_FIELD(Sluice__V1__SegmentSpec, struct wire_segment_spec, m)
static const struct wire_field wire_spec_fields[] = {
    F(segment_id), F(row_count), F(avg_row_size),      F(replication),
    F(digest),     F(table),     F(mem_request_bytes), F(mem_limit_bytes),
};
#undef F
static const struct wire_msg wire_spec_msg =
    WIRE_MSG(sluice__v1__segment_spec__descriptor, struct wire_segment_spec, wire_spec_fields,
             wire_spec_fix);

static void wire_spec_from_pb(struct wire_segment_spec *dst, const Sluice__V1__SegmentSpec *s)
{
    wire_from_pb(&wire_spec_msg, dst, &s->base);
    dst->uri = xstrdup(s->uri != NULL ? s->uri : "");
}

/* A protobuf view of a spec (strings borrowed from s). */
static void wire_spec_to_pb(Sluice__V1__SegmentSpec *dst, const struct wire_segment_spec *s,
                            struct wire_arena *a)
{
    wire_to_pb(&wire_spec_msg, &dst->base, s, a);
    dst->uri = (char *)(uintptr_t)(s->uri != NULL ? s->uri : "");
}

int wire_segment_batch_decode(const void *buf, size_t len, struct wire_segment_batch *ret,
                              struct wire_error *err)
{
    Sluice__V1__SegmentBatch *m;
    struct wire_segment_batch out;
    char field[48];
    int r;

    m = wire_unpack(&sluice__v1__segment_batch__descriptor, buf, len, "SegmentBatch", err, &r);
    if (m == NULL)
        return r;
    memset(&out, 0, sizeof(out));
    r = -EINVAL;
    if (m->n_segments == 0) {
        wire_invalid(err, "segments: empty");
        goto out;
    }
    if (wire_check_count("segments", m->n_segments, WIRE_BATCH_MAX, err) < 0)
        goto out;
    out.specs = xcalloc(m->n_segments, sizeof(*out.specs));
    for (size_t i = 0; i < m->n_segments; i++) {
        const Sluice__V1__SegmentSpec *s = m->segments[i];

        /* Lengths first: the copy below would cut a text that is too long. */
        if (s->uri != NULL && strlen(s->uri) > WIRE_URI_MAX) {
            wire_invalid(err, "segments[%zu].uri: %zu bytes, the limit is %d", i, strlen(s->uri),
                         WIRE_URI_MAX);
            goto fail;
        }
        snprintf(field, sizeof(field), "segments[%zu].segment_id", i);
        if (strlen(s->segment_id) > WIRE_ID_MAX) {
            wire_check_segment_id(field, s->segment_id, err);
            goto fail;
        }
        snprintf(field, sizeof(field), "segments[%zu].table", i);
        if (strlen(s->table) > WIRE_TABLE_MAX) {
            wire_check_table(field, s->table, err);
            goto fail;
        }
        wire_spec_from_pb(&out.specs[i], s);
        out.n = i + 1;
        snprintf(field, sizeof(field), "segments[%zu]", i);
        if (wire_check_segment_spec(field, &out.specs[i], err) < 0)
            goto fail;
    }
    *ret = out;
    r = 0;
    goto out;
fail:
    wire_segment_batch_done(&out);
out:
    sluice__v1__segment_batch__free_unpacked(m, NULL);
    return r;
}


uint8_t *wire_segment_batch_encode(const struct wire_segment_batch *in, size_t *ret_len)
{
    Sluice__V1__SegmentBatch m = SLUICE__V1__SEGMENT_BATCH__INIT;
    struct wire_arena a = {NULL};

    m.n_segments = in->n;
    m.segments = wire_items_to_pb(&wire_spec_msg, in->specs, in->n, &a);
    for (size_t i = 0; i < in->n; i++)
        wire_spec_to_pb(m.segments[i], &in->specs[i], &a);
    return wire_pack_free(&m.base, &a, ret_len);
}

void wire_segment_batch_done(struct wire_segment_batch *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->n; i++)
        free(m->specs[i].uri);
    free(m->specs);
    memset(m, 0, sizeof(*m));
}

static const struct wire_field wire_batch_response_fields[] = {
    WIRE_FIELD(Sluice__V1__SegmentBatchResponse, struct wire_batch_response, registered),
    WIRE_FIELD(Sluice__V1__SegmentBatchResponse, struct wire_batch_response, unchanged),
};
static const struct wire_msg wire_batch_response_msg =
    WIRE_MSG(sluice__v1__segment_batch_response__descriptor, struct wire_batch_response,
             wire_batch_response_fields, NULL);

int wire_batch_response_decode(const void *buf, size_t len, struct wire_batch_response *ret,
                               struct wire_error *err)
{
    return wire_decode(&wire_batch_response_msg, buf, len, ret, err);
}

uint8_t *wire_batch_response_encode(const struct wire_batch_response *in, size_t *ret_len)
{
    return wire_encode(&wire_batch_response_msg, in, ret_len);
}

/* Listings are answers from our own coordinator to the CLI: bounded, lenient. */

/* A state this build does not know reads as unspecified. */
static void wire_placement_fix(void *c)
{
    struct wire_placement *p = c;

    if ((unsigned)p->state >= WIRE_SEG_COUNT_)
        p->state = WIRE_SEG_UNSPECIFIED;
}

static const struct wire_field wire_placement_fields[] = {
    WIRE_FIELD(Sluice__V1__Placement, struct wire_placement, node_id),
    WIRE_FIELD(Sluice__V1__Placement, struct wire_placement, state),
};
static const struct wire_msg wire_placement_msg =
    WIRE_MSG(sluice__v1__placement__descriptor, struct wire_placement, wire_placement_fields,
             wire_placement_fix);

/* Every field but spec, placements and explain. */
#define F(m) WIRE_FIELD(Sluice__V1__SegmentInfo, struct wire_segment_info, m)
static const struct wire_field wire_segment_info_fields[] = {
    F(state), F(backoff_until_ms), F(last_reason), F(footprint_bytes), F(over_limit),
};
#undef F
static const struct wire_msg wire_segment_info_msg =
    WIRE_MSG(sluice__v1__segment_info__descriptor, struct wire_segment_info,
             wire_segment_info_fields, NULL);

int wire_segment_list_decode(const void *buf, size_t len, struct wire_segment_list *ret,
                             struct wire_error *err)
{
    Sluice__V1__SegmentList *m;
    struct wire_segment_list out;
    int r;

    m = wire_unpack(&sluice__v1__segment_list__descriptor, buf, len, "SegmentList", err, &r);
    if (m == NULL)
        return r;
    r = wire_check_count("segments", m->n_segments, WIRE_SEGMENT_LIST_MAX, err);
    if (r < 0)
        goto out;
    memset(&out, 0, sizeof(out));
    out.segments = wire_items_from_pb(&wire_segment_info_msg, m->segments, m->n_segments);
    for (size_t i = 0; i < m->n_segments; i++) {
        const Sluice__V1__SegmentInfo *s = m->segments[i];
        struct wire_segment_info *d = &out.segments[i];

        if (s->spec != NULL) {
            wire_spec_from_pb(&d->spec, s->spec);
        } else {
            d->spec.uri = xstrdup("");
            d->spec.replication = 1;
        }
        d->n_placements = s->n_placements;
        d->placements = wire_items_from_pb(&wire_placement_msg, s->placements, s->n_placements);
        d->explain = s->explain[0] != '\0' ? xstrdup(s->explain) : NULL;
    }
    out.n = m->n_segments;
    out.total = m->total;
    wire_copy_text(out.next_after, sizeof(out.next_after), m->next_after);
    *ret = out;
out:
    sluice__v1__segment_list__free_unpacked(m, NULL);
    return r;
}

uint8_t *wire_segment_list_encode(const struct wire_segment_list *in, size_t *ret_len)
{
    Sluice__V1__SegmentList m = SLUICE__V1__SEGMENT_LIST__INIT;
    struct wire_arena a = {NULL};

    m.n_segments = in->n;
    m.segments = wire_items_to_pb(&wire_segment_info_msg, in->segments, in->n, &a);
    for (size_t i = 0; i < in->n; i++) {
        const struct wire_segment_info *s = &in->segments[i];
        Sluice__V1__SegmentInfo *d = m.segments[i];

        d->spec = wire_arena_alloc(&a, sizeof(*d->spec));
        sluice__v1__segment_spec__init(d->spec);
        wire_spec_to_pb(d->spec, &s->spec, &a);
        d->n_placements = s->n_placements;
        d->placements = wire_items_to_pb(&wire_placement_msg, s->placements, s->n_placements, &a);
        d->explain = (char *)(uintptr_t)(s->explain != NULL ? s->explain : "");
    }
    m.total = in->total;
    m.next_after = (char *)(uintptr_t)in->next_after;
    return wire_pack_free(&m.base, &a, ret_len);
}

void wire_segment_list_done(struct wire_segment_list *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->n; i++) {
        free(m->segments[i].spec.uri);
        free(m->segments[i].placements);
        free(m->segments[i].explain);
    }
    free(m->segments);
    memset(m, 0, sizeof(*m));
}

/*
 * A listing whose entries are plain messages: unpacks it, checks the count
 * of its repeated field `field` (at most max) and copies the entries by t
 * into a new array (*ret_items, *ret_n: written only on success). With
 * ret_m, the unpacked message is returned for its other fields (the caller
 * frees it); without, it is freed here.
 */
static int wire_list_decode(const ProtobufCMessageDescriptor *d, const char *field,
                            const struct wire_msg *t, size_t max, const void *buf, size_t len,
                            void *ret_items, size_t *ret_n, ProtobufCMessage **ret_m,
                            struct wire_error *err)
{
    const ProtobufCFieldDescriptor *fd = protobuf_c_message_descriptor_get_field_by_name(d, field);
    ProtobufCMessage *m;
    void *array, *items;
    size_t n;
    int r;

    m = wire_unpack(d, buf, len, d->short_name, err, &r);
    if (m == NULL)
        return r;
    memcpy(&n, (const char *)m + fd->quantifier_offset, sizeof(n));
    memcpy(&array, (const char *)m + fd->offset, sizeof(array));
    r = wire_check_count(field, n, max, err);
    if (r == 0) {
        items = wire_items_from_pb(t, array, n);
        memcpy(ret_items, &items, sizeof(items));
        *ret_n = n;
    }
    if (r == 0 && ret_m != NULL)
        *ret_m = m;
    else
        protobuf_c_message_free_unpacked(m, NULL);
    return r;
}


#define F(m) WIRE_FIELD(Sluice__V1__TableInfo, struct wire_table_info, m)
static const struct wire_field wire_table_fields[] = {
    F(table), F(segments), F(segments_loaded), F(segments_pending), F(segments_invalid),
    F(rows),  F(bytes),
};
#undef F
static const struct wire_msg wire_table_msg =
    WIRE_MSG(sluice__v1__table_info__descriptor, struct wire_table_info, wire_table_fields, NULL);

int wire_table_list_decode(const void *buf, size_t len, struct wire_table_list *ret,
                           struct wire_error *err)
{
    return wire_list_decode(&sluice__v1__table_list__descriptor, "tables", &wire_table_msg,
                            WIRE_TABLE_LIST_MAX, buf, len, &ret->tables, &ret->n, NULL, err);
}

uint8_t *wire_table_list_encode(const struct wire_table_list *in, size_t *ret_len)
{
    Sluice__V1__TableList m = SLUICE__V1__TABLE_LIST__INIT;

    return wire_list_encode(&m.base, "tables", &wire_table_msg, in->tables, in->n, ret_len);
}

#define F(m) WIRE_FIELD(Sluice__V1__HistorySample, struct wire_history_sample, m)
static const struct wire_field wire_history_sample_fields[] = {
    F(ts_ms),      F(usage_bytes), F(limit_bytes), F(wss_bytes),
    F(some_avg10), F(full_avg10),  F(p99_seconds),
};
#undef F
static const struct wire_msg wire_history_sample_msg =
    WIRE_MSG(sluice__v1__history_sample__descriptor, struct wire_history_sample,
             wire_history_sample_fields, NULL);

static const struct wire_field wire_node_history_fields[] = {
    WIRE_FIELD(Sluice__V1__NodeHistory, struct wire_node_history, node_id),
};
static const struct wire_msg wire_node_history_msg =
    WIRE_MSG(sluice__v1__node_history__descriptor, struct wire_node_history,
             wire_node_history_fields, NULL);

uint8_t *wire_history_list_encode(const struct wire_history_list *in, size_t *ret_len)
{
    Sluice__V1__HistoryList m = SLUICE__V1__HISTORY_LIST__INIT;
    struct wire_arena a = {NULL};

    m.n_nodes = in->n;
    m.nodes = wire_items_to_pb(&wire_node_history_msg, in->nodes, in->n, &a);
    for (size_t i = 0; i < in->n; i++) {
        m.nodes[i]->n_samples = in->nodes[i].n;
        m.nodes[i]->samples =
            wire_items_to_pb(&wire_history_sample_msg, in->nodes[i].samples, in->nodes[i].n, &a);
    }
    m.step_ms = in->step_ms;
    return wire_pack_free(&m.base, &a, ret_len);
}

void wire_table_list_done(struct wire_table_list *m)
{
    if (m == NULL)
        return;
    free(m->tables);
    memset(m, 0, sizeof(*m));
}

#define F(m) WIRE_FIELD(Sluice__V1__Recommendation, struct wire_recommendation, m)
static const struct wire_field wire_recommendation_fields[] = {
    F(table),         F(segments),      F(observed),
    F(p50_bytes),     F(p90_bytes),     F(p95_bytes),
    F(max_bytes),     F(request_bytes), F(limit_bytes),
    F(declared_request_bytes),          F(declared_limit_bytes),
    F(request_ratio), F(limit_ratio),   F(estimate_bytes),
    F(estimate_ratio), F(over_limit),
};
#undef F
static const struct wire_msg wire_recommendation_msg =
    WIRE_MSG(sluice__v1__recommendation__descriptor, struct wire_recommendation,
             wire_recommendation_fields, NULL);

int wire_recommendation_list_decode(const void *buf, size_t len,
                                    struct wire_recommendation_list *ret, struct wire_error *err)
{
    return wire_list_decode(&sluice__v1__recommendation_list__descriptor, "recommendations",
                            &wire_recommendation_msg, WIRE_TABLE_LIST_MAX, buf, len, &ret->recs,
                            &ret->n, NULL, err);
}

uint8_t *wire_recommendation_list_encode(const struct wire_recommendation_list *in,
                                         size_t *ret_len)
{
    Sluice__V1__RecommendationList m = SLUICE__V1__RECOMMENDATION_LIST__INIT;

    return wire_list_encode(&m.base, "recommendations", &wire_recommendation_msg, in->recs, in->n,
                            ret_len);
}

void wire_recommendation_list_done(struct wire_recommendation_list *m)
{
    if (m == NULL)
        return;
    free(m->recs);
    memset(m, 0, sizeof(*m));
}

void wire_placement_map_done(struct wire_placement_map *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->n_segments; i++)
        free(m->segments[i].node_ids);
    free(m->segments);
    free(m->nodes);
    memset(m, 0, sizeof(*m));
}

/* Every field but node_ids. */
#define F(m) WIRE_FIELD(Sluice__V1__PlacedSegment, struct wire_placed_segment, m)
static const struct wire_field wire_placed_segment_fields[] = {F(segment_id), F(table), F(state)};
#undef F
static const struct wire_msg wire_placed_segment_msg =
    WIRE_MSG(sluice__v1__placed_segment__descriptor, struct wire_placed_segment,
             wire_placed_segment_fields, NULL);

#define F(m) WIRE_FIELD(Sluice__V1__PlacedNode, struct wire_placed_node, m)
static const struct wire_field wire_placed_node_fields[] = {
    F(node_id), F(addr), F(state), F(p99_seconds), F(queries_in_flight),
};
#undef F
static const struct wire_msg wire_placed_node_msg = WIRE_MSG(
    sluice__v1__placed_node__descriptor, struct wire_placed_node, wire_placed_node_fields, NULL);

/* Every field but segments and nodes. */
#define F(m) WIRE_FIELD(Sluice__V1__PlacementMap, struct wire_placement_map, m)
static const struct wire_field wire_placement_map_fields[] = {
    F(epoch), F(version), F(full), F(next_after),
};
#undef F
static const struct wire_msg wire_placement_map_msg =
    WIRE_MSG(sluice__v1__placement_map__descriptor, struct wire_placement_map,
             wire_placement_map_fields, NULL);

int wire_placement_map_decode(const void *buf, size_t len, struct wire_placement_map *ret,
                              struct wire_error *err)
{
    Sluice__V1__PlacementMap *m;
    struct wire_placement_map out;
    char field[64];
    int r;

    m = wire_unpack(&sluice__v1__placement_map__descriptor, buf, len, "PlacementMap", err, &r);
    if (m == NULL)
        return r;
    memset(&out, 0, sizeof(out));
    r = -EINVAL;
    if (wire_check_count("segments", m->n_segments, WIRE_PLACEMENT_PAGE_MAX, err) < 0 ||
        wire_check_count("nodes", m->n_nodes, WIRE_NODE_LIST_MAX, err) < 0)
        goto out;
    /* Copied first, checked in order after: what is kept has passed. */
    wire_from_pb(&wire_placement_map_msg, &out, &m->base);
    out.segments = wire_items_from_pb(&wire_placed_segment_msg, m->segments, m->n_segments);
    out.n_segments = m->n_segments;
    for (size_t i = 0; i < m->n_segments; i++) {
        const Sluice__V1__PlacedSegment *p = m->segments[i];
        struct wire_placed_segment *d = &out.segments[i];

        snprintf(field, sizeof(field), "segments[%zu].segment_id", i);
        if (wire_check_segment_id(field, p->segment_id, err) < 0)
            goto out;
        snprintf(field, sizeof(field), "segments[%zu].table", i);
        if (wire_check_table(field, p->table, err) < 0)
            goto out;
        snprintf(field, sizeof(field), "segments[%zu].node_ids", i);
        if (wire_ids_from_pb(field, p->node_ids, p->n_node_ids, WIRE_NODE_LIST_MAX,
                             &d->node_ids, err) < 0)
            goto out;
        d->n_nodes = p->n_node_ids;
    }
    out.nodes = wire_items_from_pb(&wire_placed_node_msg, m->nodes, m->n_nodes);
    out.n_nodes = m->n_nodes;
    for (size_t i = 0; i < m->n_nodes; i++) {
        snprintf(field, sizeof(field), "nodes[%zu].node_id", i);
        if (wire_check_segment_id(field, m->nodes[i]->node_id, err) < 0)
            goto out;
        snprintf(field, sizeof(field), "nodes[%zu].addr", i);
        if (wire_check_addr(field, m->nodes[i]->addr, err) < 0)
            goto out;
    }
    if (m->next_after[0] != '\0' && wire_check_segment_id("next_after", m->next_after, err) < 0)
        goto out;
    *ret = out;
    memset(&out, 0, sizeof(out));
    r = 0;
out:
    wire_placement_map_done(&out);
    sluice__v1__placement_map__free_unpacked(m, NULL);
    return r;
}

uint8_t *wire_placement_map_encode(const struct wire_placement_map *in, size_t *ret_len)
{
    Sluice__V1__PlacementMap m = SLUICE__V1__PLACEMENT_MAP__INIT;
    struct wire_arena a = {NULL};

    wire_to_pb(&wire_placement_map_msg, &m.base, in, &a);
    m.n_segments = in->n_segments;
    m.segments = wire_items_to_pb(&wire_placed_segment_msg, in->segments, in->n_segments, &a);
    for (size_t i = 0; i < in->n_segments; i++) {
        m.segments[i]->n_node_ids = in->segments[i].n_nodes;
        m.segments[i]->node_ids =
            wire_ids_to_pb(in->segments[i].node_ids, in->segments[i].n_nodes, &a);
    }
    m.n_nodes = in->n_nodes;
    m.nodes = wire_items_to_pb(&wire_placed_node_msg, in->nodes, in->n_nodes, &a);
    return wire_pack_free(&m.base, &a, ret_len);
}

#define F(m) WIRE_FIELD(Sluice__V1__NodeInfo, struct wire_node_info, m)
static const struct wire_field wire_node_info_fields[] = {
    F(node_id),     F(addr),         F(state),    F(segments),
    F(last_reason), F(last_seen_ms), F(refusals),
    WIRE_FIELD_MSG(Sluice__V1__NodeInfo, pressure, struct wire_node_info, pressure,
                   &wire_pressure_msg),
};
#undef F
static const struct wire_msg wire_node_info_msg = WIRE_MSG(
    sluice__v1__node_info__descriptor, struct wire_node_info, wire_node_info_fields, NULL);

int wire_node_list_decode(const void *buf, size_t len, struct wire_node_list *ret,
                          struct wire_error *err)
{
    return wire_list_decode(&sluice__v1__node_list__descriptor, "nodes", &wire_node_info_msg,
                            WIRE_NODE_LIST_MAX, buf, len, &ret->nodes, &ret->n, NULL, err);
}

uint8_t *wire_node_list_encode(const struct wire_node_list *in, size_t *ret_len)
{
    Sluice__V1__NodeList m = SLUICE__V1__NODE_LIST__INIT;

    return wire_list_encode(&m.base, "nodes", &wire_node_info_msg, in->nodes, in->n, ret_len);
}

void wire_node_list_done(struct wire_node_list *m)
{
    if (m == NULL)
        return;
    free(m->nodes);
    memset(m, 0, sizeof(*m));
}

/* An unknown reason reads as NONE, a count of 0 as 1. */
static void wire_event_fix(void *c)
{
    struct wire_event *e = c;

    if ((unsigned)e->reason >= WIRE_REASON_COUNT_)
        e->reason = WIRE_REASON_NONE;
    if (e->count == 0)
        e->count = 1;
}

#define F(m) WIRE_FIELD(Sluice__V1__Event, struct wire_event, m)
static const struct wire_field wire_event_fields[] = {
    F(id),          F(ts_ms),          F(segment_id), F(node_id), F(kind),       F(reason),
    F(http_status), F(retry_after_ms), F(detail),     F(count),   F(last_ts_ms),
};
#undef F
static const struct wire_msg wire_event_msg =
    WIRE_MSG(sluice__v1__event__descriptor, struct wire_event, wire_event_fields, wire_event_fix);

int wire_event_list_decode(const void *buf, size_t len, struct wire_event_list *ret,
                           struct wire_error *err)
{
    struct wire_event_list out;
    ProtobufCMessage *m;
    int r;

    r = wire_list_decode(&sluice__v1__event_list__descriptor, "events", &wire_event_msg,
                         WIRE_EVENT_LIST_MAX, buf, len, &out.events, &out.n, &m, err);
    if (r < 0)
        return r;
    out.next_before = ((Sluice__V1__EventList *)m)->next_before;
    *ret = out;
    protobuf_c_message_free_unpacked(m, NULL);
    return 0;
}

uint8_t *wire_event_list_encode(const struct wire_event_list *in, size_t *ret_len)
{
    Sluice__V1__EventList m = SLUICE__V1__EVENT_LIST__INIT;

    m.next_before = in->next_before;
    return wire_list_encode(&m.base, "events", &wire_event_msg, in->events, in->n, ret_len);
}

void wire_event_list_done(struct wire_event_list *m)
{
    if (m == NULL)
        return;
    free(m->events);
    memset(m, 0, sizeof(*m));
}

static const struct wire_field wire_claim_fields[] = {
    WIRE_FIELD(Sluice__V1__ClaimRequest, struct wire_claim_request, node_id),
    WIRE_FIELD(Sluice__V1__ClaimRequest, struct wire_claim_request, max_segments),
};
static const struct wire_msg wire_claim_msg = WIRE_MSG(
    sluice__v1__claim_request__descriptor, struct wire_claim_request, wire_claim_fields, NULL);

int wire_claim_request_decode(const void *buf, size_t len, struct wire_claim_request *ret,
                              struct wire_error *err)
{
    Sluice__V1__ClaimRequest *m;
    int r;

    m = wire_unpack(&sluice__v1__claim_request__descriptor, buf, len, "ClaimRequest", err, &r);
    if (m == NULL)
        return r;
    r = -EINVAL;
    if (wire_check_segment_id("node_id", m->node_id, err) < 0)
        goto out;
    if (m->max_segments == 0 || m->max_segments > WIRE_CLAIM_MAX) {
        wire_invalid(err, "max_segments: %u is outside 1..%d", m->max_segments, WIRE_CLAIM_MAX);
        goto out;
    }
    wire_from_pb(&wire_claim_msg, ret, &m->base);
    r = 0;
out:
    sluice__v1__claim_request__free_unpacked(m, NULL);
    return r;
}

uint8_t *wire_claim_request_encode(const struct wire_claim_request *in, size_t *ret_len)
{
    return wire_encode(&wire_claim_msg, in, ret_len);
}

int wire_claim_response_decode(const void *buf, size_t len, struct wire_claim_response *ret,
                               struct wire_error *err)
{
    Sluice__V1__ClaimResponse *m;
    char field[48], uri[WIRE_URI_MAX + 1];
    int r;

    m = wire_unpack(&sluice__v1__claim_response__descriptor, buf, len, "ClaimResponse", err, &r);
    if (m == NULL)
        return r;
    memset(ret, 0, sizeof(*ret));
    r = wire_check_count("assignments", m->n_assignments, WIRE_CLAIM_MAX, err);
    for (size_t i = 0; r == 0 && i < m->n_assignments; i++) {
        const Sluice__V1__AssignRequest *a = m->assignments[i];

        snprintf(field, sizeof(field), "assignments[%zu].segment_id", i);
        if (wire_check_segment_id(field, a->segment_id, err) < 0 ||
            wire_copy_checked("assignments.uri", uri, sizeof(uri), a->uri, err) < 0 ||
            wire_check_uri("assignments.uri", uri, err) < 0) {
            r = -EINVAL;
            break;
        }
        if (a->row_count == 0 || a->avg_row_size == 0) {
            r = wire_invalid(err, "assignments[%zu]: row_count and avg_row_size must be > 0", i);
            break;
        }
        snprintf(field, sizeof(field), "assignments[%zu].", i);
        r = wire_check_mem(field, a->mem_request_bytes, a->mem_limit_bytes, err);
    }
    if (r == 0) {
        ret->assignments = wire_items_from_pb(&wire_assign_msg, m->assignments, m->n_assignments);
        ret->n = m->n_assignments;
    }
    sluice__v1__claim_response__free_unpacked(m, NULL);
    return r;
}

uint8_t *wire_claim_response_encode(const struct wire_claim_response *in, size_t *ret_len)
{
    Sluice__V1__ClaimResponse m = SLUICE__V1__CLAIM_RESPONSE__INIT;

    return wire_list_encode(&m.base, "assignments", &wire_assign_msg, in->assignments, in->n,
                            ret_len);
}

void wire_claim_response_done(struct wire_claim_response *m)
{
    if (m == NULL)
        return;
    free(m->assignments);
    memset(m, 0, sizeof(*m));
}

/* Every field but the refusals by reason. */
#define F(m) WIRE_FIELD(Sluice__V1__ClusterStatus, struct wire_cluster_status, m)
static const struct wire_field wire_cluster_fields[] = {
    F(segments_total),       F(segments_pending), F(segments_loaded),
    F(segments_invalid),     F(segments_backing_off), F(nodes_up),
    F(nodes_total),          F(assignments_in_flight), F(version),
    F(uptime_seconds),       F(assignments_accepted), F(nodes_draining),
    F(leader),               F(leader_epoch),
};
#undef F
static const struct wire_msg wire_cluster_msg = WIRE_MSG(
    sluice__v1__cluster_status__descriptor, struct wire_cluster_status, wire_cluster_fields, NULL);

int wire_cluster_status_decode(const void *buf, size_t len, struct wire_cluster_status *ret,
                               struct wire_error *err)
{
    Sluice__V1__ClusterStatus *m;
    int r;

    m = wire_unpack(&sluice__v1__cluster_status__descriptor, buf, len, "ClusterStatus", err, &r);
    if (m == NULL)
        return r;
    wire_from_pb(&wire_cluster_msg, ret, &m->base);
    for (size_t i = 0; i < m->n_refusals; i++) {
        unsigned rr = (unsigned)m->refusals[i]->reason;

        /* A reason this build does not know is not shown, as in every other message. */
        if (rr < WIRE_REASON_COUNT_)
            ret->refusals[rr] += m->refusals[i]->count;
    }
    ret->n_coordinators = 0;
    for (size_t i = 0; i < m->n_coordinators && i < WIRE_COORDS_MAX; i++) {
        struct wire_coord_seen *o = &ret->coordinators[ret->n_coordinators++];

        wire_copy_text(o->addr, sizeof(o->addr),
                       m->coordinators[i]->addr != NULL ? m->coordinators[i]->addr : "");
        wire_copy_text(o->role, sizeof(o->role),
                       m->coordinators[i]->role != NULL ? m->coordinators[i]->role : "");
        o->seen_ms_ago = m->coordinators[i]->seen_ms_ago;
    }
    sluice__v1__cluster_status__free_unpacked(m, NULL);
    return 0;
}

uint8_t *wire_cluster_status_encode(const struct wire_cluster_status *in, size_t *ret_len)
{
    Sluice__V1__ClusterStatus m = SLUICE__V1__CLUSTER_STATUS__INIT;
    Sluice__V1__ReasonCount rc[WIRE_REASON_COUNT_], *rcp[WIRE_REASON_COUNT_];
    Sluice__V1__CoordinatorSeen cs[WIRE_COORDS_MAX], *csp[WIRE_COORDS_MAX];
    struct wire_arena a = {NULL};

    wire_to_pb(&wire_cluster_msg, &m.base, in, &a);
    for (size_t i = 0; i < in->n_coordinators && i < WIRE_COORDS_MAX; i++) {
        sluice__v1__coordinator_seen__init(&cs[i]);
        cs[i].addr = (char *)(uintptr_t)in->coordinators[i].addr;
        cs[i].role = (char *)(uintptr_t)in->coordinators[i].role;
        cs[i].seen_ms_ago = in->coordinators[i].seen_ms_ago;
        csp[i] = &cs[i];
        m.n_coordinators = i + 1;
    }
    m.coordinators = csp;
    for (unsigned i = 0; i < WIRE_REASON_COUNT_; i++) {
        if (in->refusals[i] == 0)
            continue;
        sluice__v1__reason_count__init(&rc[m.n_refusals]);
        rc[m.n_refusals].reason = (Sluice__V1__Reason)i;
        rc[m.n_refusals].count = in->refusals[i];
        rcp[m.n_refusals] = &rc[m.n_refusals];
        m.n_refusals++;
    }
    m.refusals = rcp;
    return wire_pack_free(&m.base, &a, ret_len);
}
