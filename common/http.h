/*
 * http: the HTTP layer of both daemons, built on libevent 2.1 evhttp.
 *
 * Three parts share this header:
 *
 *  - A server with the limits evhttp 2.1 does not set by itself: body and
 *    header size, allowed methods, an idle timeout, a hard per-request
 *    deadline (slowloris), a connection cap enforced in our own accept path,
 *    accept back-off on EMFILE, "%00" rejection, routing with 404/405, and
 *    optional bearer-token auth. Expected load: hundreds of requests per
 *    second and up to ~1000 connections per process; every per-connection
 *    operation is O(live connections) at worst.
 *  - An asynchronous client with one keep-alive connection per peer, used by
 *    the coordinator to keep many requests in flight to many nodes.
 *  - A blocking fetch on a private event_base for the CLI, the test harness
 *    and tests.
 *
 * Everything except http_fetch() runs on the caller's event_base and must be
 * used from the thread that runs that loop. The process must ignore SIGPIPE
 * (libevent writes with writev(2)); daemons do this in main().
 *
 * Errors are negative errno values. The server's own answers are protobuf
 * Error messages with X-Sluice-Error (pbhttp_reply_error), like every error
 * of the daemons: 401 (missing or wrong token, with WWW-Authenticate), 404,
 * 405 (with Allow), 400 ("%00" in the target). Before evhttp parses a
 * request, a framer (a bufferevent filter) checks its framing and refuses,
 * with Connection: close and without reading anything after it: 400 for a
 * malformed request line or header line (NUL or bare CR anywhere, obsolete
 * line folding, a version other than HTTP/1.0 or 1.1, a target that is not
 * an absolute path of printable ASCII, or starts with "//" or holds a "#"), a
 * Content-Length that is not plain digits or is sent twice, a
 * Transfer-Encoding other than one "chunked",
 * both of them, a chunk size that is not plain hex digits, chunk data not
 * followed by CRLF, trailer fields; 413 for a body over max_body; 414 for a
 * request line of 8 KiB or more; 417 for an Expect other than
 * 100-continue; 431 for a header line of 8 KiB or more, more than 100
 * header fields or more than max_headers bytes of head; 501 for a method
 * other than GET, POST or DELETE. The framer hands evhttp a request only
 * once all of it, body included, has arrived (so a client waiting for
 * 100 Continue sends its body after its own timeout).
 */
#ifndef SLUICE_HTTP_H
#define SLUICE_HTTP_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <event2/http.h>

/* Method bits for http_server_route(); the only methods the server accepts. */
#define HTTP_GET    ((unsigned)EVHTTP_REQ_GET)
#define HTTP_POST   ((unsigned)EVHTTP_REQ_POST)
#define HTTP_DELETE ((unsigned)EVHTTP_REQ_DELETE)

/*
 * Server limits. A zero field means "use the default" (see
 * http_limits_default()).
 */
struct http_limits {
    size_t max_body;             /* request body bytes; larger: 413 */
    size_t max_headers;          /* request line + header bytes; larger: 400 */
    unsigned max_connections;    /* live connections; more are closed at accept */
    unsigned idle_timeout_ms;    /* evhttp read/write inactivity timeout */
    unsigned request_timeout_ms; /* complete request within this of accept or of
                                    the previous response, else the connection
                                    is closed */
};

/* 4 MiB body, 16 KiB headers, 1024 connections, 30 s idle, 10 s request. */
struct http_limits http_limits_default(void);

/* Counters for metrics; all monotonic except connections_live. */
struct http_server_stats {
    uint64_t connections_accepted;        /* every accepted socket, rejected ones too */
    uint64_t connections_live;            /* gauge: open and counted against the cap */
    uint64_t connections_rejected_cap;    /* closed at accept: over max_connections */
    uint64_t connections_closed_deadline; /* closed: no complete request in time */
    uint64_t requests;                    /* requests that reached routing */
    uint64_t responses_2xx;
    uint64_t responses_4xx;
    uint64_t responses_5xx;
    uint64_t responses_other; /* 1xx and 3xx */
    uint64_t accept_backoffs; /* accept paused after EMFILE and friends */
};

struct http_server;

/*
 * Route handler. req must be answered exactly once, now or later, with
 * http_reply()/http_reply_text() or any evhttp_send_reply*() call. rest is
 * the part of the path after the route's prefix ("" for exact routes); it
 * lives as long as req. Paths are matched as sent, without percent-decoding
 * and without the query string.
 */
typedef void (*http_handler_cb)(struct evhttp_request *req, const char *rest, void *arg);

/*
 * Creates a server on base with the given limits (NULL: defaults). The
 * server owns its evhttp and listeners. Returns NULL only if libevent fails.
 */
struct http_server *http_server_new(struct event_base *base, const struct http_limits *limits);

/*
 * Frees the server: listeners, connections and any request still waiting for
 * an answer (handlers must not touch such requests afterwards). NULL-safe.
 * Sockets of closed connections are released by the event_base's finalizers:
 * run the loop again or free the base afterwards. Must not be called from a
 * handler.
 */
void http_server_free(struct http_server *srv);

/*
 * Binds and listens on addr: "127.0.0.1:0", "0.0.0.0:7000", "[::1]:0" (port
 * 0 picks a free port). Writes the bound "host:port" (IPv6 in brackets) into
 * ret_bound if it is not NULL. May be called more than once.
 * Returns 0, -EINVAL (bad address), -ENOSPC (ret_bound too small) or
 * -EADDRINUSE/-errno from bind.
 */
int http_server_bind(struct http_server *srv, const char *addr, char *ret_bound, size_t len);

/*
 * Registers cb for the methods in method_mask (HTTP_GET | HTTP_POST |
 * HTTP_DELETE) on path (is_prefix false) or on every path that starts with
 * path (is_prefix true). The longest matching path wins, an exact route beats
 * a prefix route of the same length; if no route on that path takes the
 * method, the answer is 405. path is copied. Returns 0, -EINVAL (path not
 * starting with '/', empty or unknown method bits) or -EEXIST (same path and
 * kind already registered for one of these methods).
 */
int http_server_route(struct http_server *srv, unsigned method_mask, const char *path,
                      bool is_prefix, http_handler_cb cb, void *arg);

/* Same as http_server_route(), but the route needs no token (/metrics, /healthz). */
int http_server_route_public(struct http_server *srv, unsigned method_mask, const char *path,
                             bool is_prefix, http_handler_cb cb, void *arg);

/*
 * Requires "Authorization: Bearer <token>" on every non-public route
 * (compared in constant time); token NULL or "" turns auth off. The token is
 * copied. Returns 0 or -EINVAL (characters outside printable ASCII, or space).
 * Without a valid token the answer is 401 for every non-public path, known or
 * not, so unauthenticated clients learn nothing about routes.
 */
int http_server_set_token(struct http_server *srv, const char *token);

/*
 * A gate before routing: called for every request that passed the token
 * check (public routes, unknown paths and wrong methods included), with
 * its path. If it returns true it has answered the request and routing is
 * skipped; false routes it as usual. For a daemon that serves only part of
 * its API in some state (a standby coordinator). NULL removes it.
 */
typedef bool (*http_gate_cb)(struct evhttp_request *req, const char *path, void *arg);
void http_server_set_gate(struct http_server *srv, http_gate_cb cb, void *arg);

/*
 * Names the daemon in a "Server: <name>" header on every answer, errors
 * included ("sluice-node/0.9"), so that a client pointed at the wrong daemon
 * can say so. name is copied; NULL: no header (the default).
 */
void http_server_set_name(struct http_server *srv, const char *name);

/* Copies the counters into *ret. */
void http_server_get_stats(const struct http_server *srv, struct http_server_stats *ret);

/*
 * Answers req with code, an optional Content-Type (NULL: none) and len bytes
 * of body (body may be NULL when len is 0). Extra headers go into
 * evhttp_request_get_output_headers(req) before this call. req is freed by
 * evhttp once the answer is written; do not use it afterwards.
 */
void http_reply(struct evhttp_request *req, int code, const char *content_type, const void *body,
                size_t len);

/* Answers req with a text/plain; charset=utf-8 body formatted from fmt. */
void http_reply_text(struct evhttp_request *req, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Client.
 *
 * What a response looks like to a client callback. Every pointer is valid
 * only during the callback; copy what you keep.
 */
struct http_client_reply {
    const char *reason;              /* X-Sluice-Reason, or NULL */
    unsigned retry_after_s;          /* Retry-After in delta-seconds, 0 if absent or a date */
    const char *content_type;        /* Content-Type, or NULL */
    const struct evkeyvalq *headers; /* all response headers; NULL on transport errors */
    const void *body;                /* never NULL; "" when empty */
    size_t body_len;
};

/*
 * status is the HTTP status, or a negative errno when no response arrived:
 * -ETIMEDOUT (no complete response within timeout_ms of the request being
 * sent), -ECONNREFUSED (could not connect), -ECONNRESET (connection closed
 * early), -EPROTO (malformed response), -EMSGSIZE (response larger than the
 * client's limits: 64 MiB body, 64 KiB headers), -ECANCELED (client freed),
 * -ENOMEM, -EIO (anything else).
 */
typedef void (*http_client_cb)(int status, const struct http_client_reply *reply, void *arg);

struct http_client;

/*
 * Creates a client for one peer, "host:port" or "[v6]:port". Requests share
 * one keep-alive connection, opened on first use and reopened after errors;
 * they are sent one after another on it, in the order queued (evhttp does
 * not pipeline; the others wait in the client). timeout_ms (0: 10 s) bounds
 * each request from its sending to the last byte of the response, so a
 * request queued behind a slow one does not time out for that one's sake.
 * When a request gets no answer (status < 0, other than -ECANCELED), the
 * requests still waiting behind it fail with the same status at once:
 * the peer is not answering, and each would otherwise reconnect and wait
 * out its own deadline in turn. A request safe to send twice (GET, HEAD,
 * PUT, DELETE, or one queued with http_client_request_idempotent()) that
 * dies with its connection (-ECONNRESET, -EIO: e.g. the peer closed an idle
 * keep-alive connection just as it was sent) is sent once more on a fresh
 * connection, within its deadline; any other request is never retried.
 * token (NULL: none) is sent as a bearer token. Returns NULL on a bad
 * host_port. Name resolution, if host is a name, blocks (no evdns).
 */
struct http_client *http_client_new(struct event_base *base, const char *host_port,
                                    unsigned timeout_ms, const char *token);

/*
 * Frees the client. Requests still in flight are abandoned: their callbacks
 * run before this returns, with status -ECANCELED, and must not use the
 * client. Safe from inside a client callback (the connection is then
 * released on the next loop iteration). NULL-safe.
 */
void http_client_free(struct http_client *client);

/*
 * Queues a request for path (must start with '/'; include any query string)
 * with an optional body. body is copied. cb is called exactly once, always
 * from the event loop and never from inside this function. Returns 0,
 * -EINVAL (bad path or method) or -ECANCELED (client being freed).
 */
int http_client_request(struct http_client *client, enum evhttp_cmd_type method, const char *path,
                        const char *content_type, const void *body, size_t len, http_client_cb cb,
                        void *arg);
/*
 * The same, for a request whose effect is the same if the peer gets it twice
 * (e.g. a POST of assignments the node answers 202 again): it gets the one
 * retry on a fresh connection described at http_client_new().
 */
int http_client_request_idempotent(struct http_client *client, enum evhttp_cmd_type method,
                                   const char *path, const char *content_type, const void *body,
                                   size_t len, http_client_cb cb, void *arg);

/* Number of requests queued or in flight. */
unsigned http_client_pending(const struct http_client *client);

/*
 * Blocking fetch.
 */
struct http_response {
    int status;
    char *body; /* NUL-terminated (not counted in body_len); owned, free with _done */
    size_t body_len;
    char reason[32]; /* X-Sluice-Reason, truncated; "" if absent */
    unsigned retry_after_s;
    char content_type[64]; /* truncated; "" if absent */
    char server[64];       /* the Server header, truncated; "" if absent */
    char leader[256];      /* X-Sluice-Leader (a standby coordinator's answer); "" if absent */
};

/*
 * Performs one request on a private event_base and waits for it. method is
 * "GET", "POST", "DELETE", "PUT" or "HEAD". Returns 0 with *ret filled for
 * any HTTP status, or a negative errno as for http_client_cb (-EINVAL for a
 * bad method, host_port or path); *ret is written only on success.
 */
int http_fetch(const char *host_port, const char *method, const char *path,
               const char *content_type, const void *body, size_t len, const char *token,
               unsigned timeout_ms, struct http_response *ret);

/* Frees what http_fetch() allocated and clears *r. NULL-safe. */
void http_response_done(struct http_response *r);

#endif
