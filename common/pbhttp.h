/*
 * pbhttp: protobuf over HTTP, the helpers both daemons' handlers share:
 * take the request body, require the protobuf content type, answer with an
 * Error body (and the same sentence in X-Sluice-Error) or a message.
 */
#ifndef SLUICE_PBHTTP_H
#define SLUICE_PBHTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wirejson.h"

struct evhttp_request;

/* The request body as one contiguous block (evhttp has capped its size). */
const void *pbhttp_body(struct evhttp_request *req, size_t *ret_len);

/* True for application/x-protobuf; otherwise answers 415 and returns false. */
bool pbhttp_check_content_type(struct evhttp_request *req);

/*
 * Sets X-Sluice-Error to message, printable ASCII only (other bytes as
 * \xNN, at most 255 bytes). Every non-2xx answer carries it.
 */
void pbhttp_set_error_header(struct evhttp_request *req, const char *message);

/* Answers status with an Error{code, message} body and X-Sluice-Error. */
void pbhttp_reply_error(struct evhttp_request *req, int status, const char *code,
                        const char *message);

/*
 * The decode preamble of every handler that takes a protobuf body, in two
 * calls so that each handler keeps its own typed decoder:
 *
 *     if (pbhttp_take_body(req, &body, &len) != 0 ||
 *         pbhttp_decoded(req, wire_x_decode(body, len, &m, &err), &err) != 0)
 *         return;
 *
 * pbhttp_take_body requires the protobuf content type: it returns 0 with
 * the body (evhttp has capped its size), or answers 415 and returns 415.
 * pbhttp_decoded takes a wire decoder's result r and its err: 0 gives 0;
 * otherwise it answers 413 (-EMSGSIZE: over WIRE_MAX_BODY) or 400 with the
 * decoder's Error and returns that status. Either way a non-zero return
 * means the request has been answered.
 */
struct wire_error;
int pbhttp_take_body(struct evhttp_request *req, const void **ret_body, size_t *ret_len);
int pbhttp_decoded(struct evhttp_request *req, int r, const struct wire_error *err);

/* Answers status with an encoded message and frees buf. */
void pbhttp_reply(struct evhttp_request *req, int status, uint8_t *buf, size_t len);

/*
 * The same for a read endpoint's answer, an encoded message of type m
 * (common/wirejson.h): when the request's Accept prefers
 * application/json (wirejson_accepted), the answer is that message as
 * JSON, with Content-Type application/json; otherwise protobuf. Either
 * way it carries Vary: Accept. Frees buf. Errors stay protobuf Error with
 * X-Sluice-Error whatever the Accept (the README's API section).
 */
void pbhttp_reply_msg(struct evhttp_request *req, int status, enum wire_msg m, uint8_t *buf,
                      size_t len);

#endif
