/*
 * wirejson: JSON for people and scripts, from the same encoded protobuf
 * messages the daemons answer with. One encoder, driven by protobuf-c's
 * message descriptors, serves every message of proto/sluice.proto, so a
 * field added to the proto appears in the JSON without code here. The JSON
 * is written by jansson (Debian's libjansson), which does the escaping.
 *
 * The mapping (documented in the README's API section, and stable):
 *  - one JSON object per message; keys are the proto's field names
 *    (snake_case, as in sluice.proto), in field-number order;
 *  - every field is present, with its default when the message does not
 *    set it (0, "", false, [], the first enum value, a nested message
 *    with its own defaults), so a consumer never tests for a missing key;
 *  - uint32, int64, uint64 as JSON integers (a uint64 above 2^63-1,
 *    which no field reaches in practice, as a decimal string, because
 *    jansson's integers are signed 64-bit);
 *  - fixed64 (the content digests) as a string of 16 lowercase hex
 *    digits, as `sluice-coord explain` and `sluice-node inspect` print it;
 *  - double as a JSON number with 16 significant digits (0.0042, not
 *    jansson's default 0.0041999999999999997; a value may differ from
 *    the protobuf one in its 17th digit), and NaN, Infinity, -Infinity as
 *    those strings (the proto3 JSON mapping's rule);
 *  - an enum as its value's name ("MEM_CAPACITY"), or as an integer for a
 *    number the proto does not name;
 *  - a string as a JSON string; a byte that is not valid UTF-8 becomes the
 *    four characters \xNN (see wirewalk.h), so the output is always valid.
 *
 * Expected load: one encode per JSON answer or CLI --json; each is a few
 * KiB to a few MiB (a 4 MiB protobuf answer at most).
 */
#ifndef SLUICE_WIREJSON_H
#define SLUICE_WIREJSON_H

#include <stdbool.h>
#include <stddef.h>

/* The messages that leave a daemon as a read endpoint's answer (or a CLI's). */
enum wire_msg {
    WIRE_MSG_ERROR,
    WIRE_MSG_NODE_STATUS,
    WIRE_MSG_QUERY_RESPONSE,
    WIRE_MSG_ASSIGN_RESPONSE,
    WIRE_MSG_CLUSTER_STATUS,
    WIRE_MSG_NODE_LIST,
    WIRE_MSG_SEGMENT_LIST,
    WIRE_MSG_EVENT_LIST,
    WIRE_MSG_SEGMENT_BATCH_RESPONSE,
    WIRE_MSG_TABLE_LIST,
    WIRE_MSG_HISTORY_LIST,
    WIRE_MSG_RECOMMENDATION_LIST,
    WIRE_MSG_PLACEMENT_MAP,
    WIRE_MSG_COUNT_
};

/* The proto's name of m ("NodeList"), or "?" for a value out of range. */
const char *wire_msg_name(enum wire_msg m);

#define WIREJSON_PRETTY 1u /* indent by two spaces, one key per line */

/*
 * Encodes len bytes of buf, an encoded message of type m, as one JSON
 * document (no trailing newline) in *ret_json (NUL-terminated, from
 * malloc: the caller frees it) and its length in *ret_len. flags: 0 for
 * compact, or WIREJSON_PRETTY. Returns 0, -EINVAL for an m out of range,
 * or -EBADMSG when buf is not a valid message of type m (nothing is
 * written then).
 */
int wirejson_encode(enum wire_msg m, const void *buf, size_t len, unsigned flags,
                    char **ret_json, size_t *ret_len);

/*
 * True when an Accept header value (NULL: none) prefers JSON: it names
 * application/json with a q above 0, and does not give
 * application/x-protobuf a higher q. Protobuf stays the default.
 */
bool wirejson_accepted(const char *accept);

#endif
