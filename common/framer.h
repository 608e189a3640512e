/*
 * framer: checks the framing of HTTP/1.1 requests as their bytes arrive,
 * before evhttp parses them, and hands on only whole requests that passed.
 *
 * evhttp 2.1 parses leniently: it takes the first of two Content-Length
 * headers, reads "+0", "0x0" and " 0" as numbers (also as chunk sizes),
 * stops the request line at a NUL byte and joins folded header lines, and
 * it offers no hook before it acts on what it parsed. That is how a request
 * could be smuggled behind another. The framer is the strict parser in
 * front of it: a request is passed on, bytes unchanged, only once all of it
 * (head and body) has arrived and its framing is unambiguous; the first
 * request it refuses ends the stream (everything after it is discarded).
 *
 * Pure: bytes in, whole requests out, no event loop (common/http.c runs it
 * as a bufferevent input filter). Expected load: every byte every client
 * sends, scanned once; a request is held until complete, so memory per
 * connection is bounded by max_headers + max_body.
 */
#ifndef SLUICE_FRAMER_H
#define SLUICE_FRAMER_H

#include <stdbool.h>
#include <stddef.h>

struct evbuffer;
struct framer;

/* One request or header line, CRLF included, must be shorter than this. */
#define FRAMER_LINE_MAX         8192u
#define FRAMER_HEADER_COUNT_MAX 100u

/*
 * A framer for one connection: bodies up to max_body bytes, request line
 * plus headers up to max_headers bytes. Never fails (xmalloc).
 */
struct framer *framer_new(size_t max_body, size_t max_headers);
/* NULL-safe. */
void framer_free(struct framer *f);

/*
 * Takes every byte of src. Appends to dst, unchanged, each request that is
 * now complete and well framed. Returns how many it appended (0: more bytes
 * are needed), or -EPROTO on the call that refuses a request (requests
 * before it in the same call were appended all the same); from then on
 * every byte is discarded and 0 is returned. What is refused, with the
 * status to answer (framer_status):
 *   400 request line not METHOD SP /target SP HTTP/1.x (1.0 or 1.1), a
 *       target with bytes outside 0x21..0x7e, starting with "//" or holding
 *       '#'; a line not ending in CRLF, a bare CR or a NUL byte anywhere in
 *       the head; obsolete line folding; a header name that is not a token
 *       or is followed by whitespace; a control byte in a value;
 *       Content-Length twice or not 1..19 decimal digits; Transfer-Encoding
 *       twice or other than "chunked"; both of them; a chunk size that is
 *       not 1..16 hex digits (no sign, prefix, space or extension); chunk
 *       data not followed by CRLF; trailer fields
 *   413 a body (Content-Length or the chunks' sum) over max_body
 *   414 a request line of FRAMER_LINE_MAX bytes or more
 *   417 an Expect other than 100-continue
 *   431 a header line of FRAMER_LINE_MAX bytes or more, more than
 *       FRAMER_HEADER_COUNT_MAX fields, or a head over max_headers bytes
 *   501 a method other than GET, POST or DELETE
 */
int framer_feed(struct framer *f, struct evbuffer *src, struct evbuffer *dst);

/* Requests passed on so far. */
unsigned long long framer_passed(const struct framer *f);
/* True once a request has been refused. */
bool framer_failed(const struct framer *f);
/* After a refusal: the HTTP status, the Error code ("bad_request", ...) and a sentence. */
int framer_status(const struct framer *f);
const char *framer_code(const struct framer *f);
const char *framer_message(const struct framer *f);

#endif
