/*
 * wirewalk: one generic walk over encoded protobuf messages, driven by
 * protobuf-c's message descriptors, that puts every message into the form
 * the rest of common/wire.c relies on before protobuf-c unpacks it (and
 * every answer into a form every standard protobuf runtime can parse).
 *
 * For every field of every message, at every depth, present and future:
 *
 *  - a proto3 `string` must be valid UTF-8 without NUL bytes. A request
 *    holding another one is refused, naming the field path
 *    ("segments[2].uri: not valid UTF-8 (byte 0xff at offset 0)"); in an
 *    answer each offending byte is written as the four characters \xNN, so
 *    that nothing a peer sent leaves this process as invalid UTF-8.
 *  - a non-repeated message field that occurs more than once is merged,
 *    as the encoding defines: its occurrences are concatenated into one
 *    (protobuf-c would keep only one of them).
 *  - fields of the group wire types (3 and 4, unknown to proto3) are
 *    skipped, as standard parsers skip them; protobuf-c refuses them.
 *
 * Only wire.c includes this header: protobuf-c types never leave it.
 * Expected load: one walk per decoded request and per encoded answer; a
 * message already in normal form is read once and not copied.
 */
#ifndef SLUICE_WIREWALK_H
#define SLUICE_WIREWALK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

enum wirewalk_mode {
    WIREWALK_REQUEST, /* a string that is not UTF-8 refuses the message */
    WIREWALK_ANSWER,  /* such a string is escaped instead */
};

/*
 * Walks buf (len bytes, a message of type d). Returns 0 with *ret_buf NULL
 * when buf is already in normal form, 0 with *ret_buf (xmalloc'd, caller
 * frees) and *ret_len when it was rewritten, -EBADMSG when the encoding is
 * malformed (truncated field, wire type 6 or 7, unbalanced group, field
 * number 0), or -EINVAL in WIREWALK_REQUEST mode for a string that is not
 * UTF-8 or holds a NUL byte. On failure err (err_len bytes, may be NULL)
 * names the field path and the problem; *ret_buf is not written.
 */
int wirewalk_normalize(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len,
                       enum wirewalk_mode mode, uint8_t **ret_buf, size_t *ret_len, char *err,
                       size_t err_len);

/*
 * The bytes a value of type t takes in a protobuf-c message struct (or one
 * element of a repeated field's array): 4 or 8 for numbers, the size of a
 * pointer for a string or a message, of ProtobufCBinaryData for bytes.
 */
size_t wirewalk_value_size(ProtobufCType t);

#endif
