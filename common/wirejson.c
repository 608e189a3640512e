/*
 * wirejson: protobuf to JSON by walking protobuf-c's descriptors (see
 * wirejson.h for the mapping). Part of the wire library: like wire.c it
 * unpacks protobuf messages, and none leaves this file.
 */
#include "wirejson.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "log.h"
#include "sluice.pb-c.h"
#include "wire.h"
#include "wirewalk.h"
#include "xmalloc.h"

static const ProtobufCMessageDescriptor *const wirejson_descs[WIRE_MSG_COUNT_] = {
    [WIRE_MSG_ERROR] = &sluice__v1__error__descriptor,
    [WIRE_MSG_NODE_STATUS] = &sluice__v1__node_status__descriptor,
    [WIRE_MSG_QUERY_RESPONSE] = &sluice__v1__query_response__descriptor,
    [WIRE_MSG_ASSIGN_RESPONSE] = &sluice__v1__assign_response__descriptor,
    [WIRE_MSG_CLUSTER_STATUS] = &sluice__v1__cluster_status__descriptor,
    [WIRE_MSG_NODE_LIST] = &sluice__v1__node_list__descriptor,
    [WIRE_MSG_SEGMENT_LIST] = &sluice__v1__segment_list__descriptor,
    [WIRE_MSG_EVENT_LIST] = &sluice__v1__event_list__descriptor,
    [WIRE_MSG_SEGMENT_BATCH_RESPONSE] = &sluice__v1__segment_batch_response__descriptor,
    [WIRE_MSG_TABLE_LIST] = &sluice__v1__table_list__descriptor,
    [WIRE_MSG_HISTORY_LIST] = &sluice__v1__history_list__descriptor,
    [WIRE_MSG_RECOMMENDATION_LIST] = &sluice__v1__recommendation_list__descriptor,
    [WIRE_MSG_PLACEMENT_MAP] = &sluice__v1__placement_map__descriptor,
};

const char *wire_msg_name(enum wire_msg m)
{
    if ((unsigned)m >= WIRE_MSG_COUNT_)
        return "?";
    return wirejson_descs[m]->short_name;
}

static json_t *wirejson_message(const ProtobufCMessage *msg);

/* proto3's JSON mapping: the three values JSON has no number for are strings. */
static json_t *wirejson_double(double v)
{
    if (isnan(v))
        return json_string("NaN");
    if (isinf(v))
        return json_string(v > 0 ? "Infinity" : "-Infinity");
    return json_real(v);
}

/* A string field; wirewalk has already escaped any byte that is not UTF-8. */
static json_t *wirejson_string(const char *s)
{
    json_t *j;
    char buf[4 * WIRE_URI_MAX + 1];

    if (s == NULL)
        s = "";
    j = json_string(s);
    if (j == NULL) { /* not reached after wirewalk; never emit invalid JSON */
        wire_utf8_escape(buf, sizeof(buf), s, strlen(s));
        j = json_string(buf);
    }
    return j;
}

/* A nested message that the encoding leaves out: its defaults, for a stable shape. */
static json_t *wirejson_defaults(const ProtobufCMessageDescriptor *d)
{
    ProtobufCMessage *m = xmalloc(d->sizeof_message);
    json_t *j;

    protobuf_c_message_init(d, m);
    j = wirejson_message(m);
    free(m);
    return j;
}

/* The value at p of field f's type (one element, for a repeated field). */
static json_t *wirejson_value(const ProtobufCFieldDescriptor *f, const void *p)
{
    char num[24];

    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        return json_integer(*(const int32_t *)p);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return json_integer(*(const uint32_t *)p);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        return json_integer(*(const int64_t *)p);
    case PROTOBUF_C_TYPE_UINT64: {
        uint64_t v = *(const uint64_t *)p;

        if (v <= INT64_MAX)
            return json_integer((json_int_t)v);
        snprintf(num, sizeof(num), "%" PRIu64, v);
        return json_string(num);
    }
    case PROTOBUF_C_TYPE_FIXED64:
        snprintf(num, sizeof(num), "%016" PRIx64, *(const uint64_t *)p);
        return json_string(num);
    case PROTOBUF_C_TYPE_FLOAT:
        return wirejson_double(*(const float *)p);
    case PROTOBUF_C_TYPE_DOUBLE:
        return wirejson_double(*(const double *)p);
    case PROTOBUF_C_TYPE_BOOL:
        return json_boolean(*(const protobuf_c_boolean *)p);
    case PROTOBUF_C_TYPE_ENUM: {
        int v = *(const int *)p;
        const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(f->descriptor, v);

        return ev != NULL ? json_string(ev->name) : json_integer(v);
    }
    case PROTOBUF_C_TYPE_STRING:
        return wirejson_string(*(char *const *)p);
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *)p;

        return sub != NULL ? wirejson_message(sub) : wirejson_defaults(f->descriptor);
    }
    case PROTOBUF_C_TYPE_BYTES: /* the proto has no bytes field */
    default:
        return json_null();
    }
}

static json_t *wirejson_message(const ProtobufCMessage *msg)
{
    const ProtobufCMessageDescriptor *d = msg->descriptor;
    const char *base = (const char *)msg;
    json_t *obj = json_object();

    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        json_t *v;

        if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            *(const uint32_t *)(base + f->quantifier_offset) != f->id)
            continue; /* another member of its oneof is the one set */
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            const char *arr = *(char *const *)(base + f->offset);
            size_t step = wirewalk_value_size(f->type);

            v = json_array();
            for (size_t k = 0; k < n; k++)
                json_array_append_new(v, wirejson_value(f, arr + k * step));
        } else {
            v = wirejson_value(f, base + f->offset);
        }
        json_object_set_new(obj, f->name, v);
    }
    return obj;
}

int wirejson_encode(enum wire_msg m, const void *buf, size_t len, unsigned flags,
                    char **ret_json, size_t *ret_len)
{
    const ProtobufCMessageDescriptor *d;
    ProtobufCMessage *msg;
    uint8_t *norm = NULL;
    size_t nlen = len;
    json_t *j;
    char *out;

    if ((unsigned)m >= WIRE_MSG_COUNT_)
        return -EINVAL;
    d = wirejson_descs[m];
    if (len > WIRE_MAX_BODY ||
        wirewalk_normalize(d, buf, len, WIREWALK_ANSWER, &norm, &nlen, NULL, 0) < 0)
        return -EBADMSG;
    msg = protobuf_c_message_unpack(d, NULL, nlen, norm != NULL ? norm : buf);
    free(norm);
    if (msg == NULL)
        return -EBADMSG;
    j = wirejson_message(msg);
    protobuf_c_message_free_unpacked(msg, NULL);
    out = json_dumps(j, JSON_REAL_PRECISION(16) |
                            ((flags & WIREJSON_PRETTY) ? JSON_INDENT(2) : JSON_COMPACT));
    json_decref(j);
    if (out == NULL) /* jansson fails only when malloc does */
        fatal("out_of_memory", "json_dumps of a %s", d->short_name);
    *ret_json = out;
    *ret_len = strlen(out);
    return 0;
}

/* The q of one media range's parameters ("; q=0.5"): 1 when absent. */
static double wirejson_q(const char *params, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (params[i] != ';')
            continue;
        i++;
        while (i < n && (params[i] == ' ' || params[i] == '\t'))
            i++;
        if (i + 1 < n && (params[i] == 'q' || params[i] == 'Q') && params[i + 1] == '=')
            return strtod(params + i + 2, NULL);
    }
    return 1.0;
}

bool wirejson_accepted(const char *accept)
{
    double q_json = 0, q_pb = 0;
    const char *p = accept;

    while (p != NULL && *p != '\0') {
        const char *end = strchr(p, ',');
        size_t n = end != NULL ? (size_t)(end - p) : strlen(p), t;

        while (n > 0 && (*p == ' ' || *p == '\t')) {
            p++;
            n--;
        }
        for (t = 0; t < n && p[t] != ';' && p[t] != ' ' && p[t] != '\t'; t++)
            ;
        if (t == strlen("application/json") && strncasecmp(p, "application/json", t) == 0)
            q_json = wirejson_q(p + t, n - t);
        else if (t == strlen(WIRE_CONTENT_TYPE) && strncasecmp(p, WIRE_CONTENT_TYPE, t) == 0)
            q_pb = wirejson_q(p + t, n - t);
        p = end != NULL ? end + 1 : NULL;
    }
    return q_json > 0 && q_json >= q_pb;
}
