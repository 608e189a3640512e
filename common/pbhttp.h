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

/* Answers status with an encoded message and frees buf. */
void pbhttp_reply(struct evhttp_request *req, int status, uint8_t *buf, size_t len);

#endif
