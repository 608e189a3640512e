/*
 * http: evhttp server with limits, keep-alive client and blocking fetch.
 *
 * libevent 2.1 evhttp has no connection cap, no per-request deadline and no
 * hook that runs per accepted connection except evhttp_set_bevcb(). We use
 * that hook to create each connection's bufferevent ourselves and keep an
 * extra reference on it, in a table with the connection's deadline. evhttp
 * installs its callbacks on it right after the hook returns and, when it
 * frees the connection, calls bufferevent_free(), which clears the callbacks
 * but cannot destroy the bufferevent while our reference is held. A sweep
 * (at every accept, when evhttp closes a connection that carried a request,
 * and on a short timer while connections exist) finds bufferevents whose
 * event callback is gone, drops our reference (which closes the socket,
 * BEV_OPT_CLOSE_ON_FREE) and updates the live count. Connections over the
 * cap, or past their deadline, get shutdown(SHUT_RDWR) on their socket: the
 * peer sees EOF at once, evhttp sees EOF and frees the connection through its
 * own error path, so we never free an evhttp object from outside.
 *
 * The bufferevent we hand evhttp is a filter over the socket's: its input
 * side is the request framer (common/framer.h), so evhttp parses only whole
 * requests whose framing is unambiguous; its output side writes answers
 * straight to the socket. A refused request becomes one synthetic request
 * that server_request_cb answers with an Error and Connection: close. Every
 * error the server answers by itself (framing, 401, 404, 405) is a protobuf
 * Error with X-Sluice-Error (pbhttp_reply_error).
 *
 * The client keeps one evhttp_connection per peer and hands evhttp one
 * request at a time (evhttp does not pipeline): the others wait in the
 * client's FIFO, so each request's deadline timer (evhttp's own timeout
 * only measures inactivity) starts when it is sent, not while it waits
 * behind a slow one.
 * Expected load: a few hundred requests per second per process, up to ~1000
 * server connections; per-connection lookups are linear in that number.
 */
#include "http.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "framer.h"
#include "log.h"
#include "pbhttp.h"
#include "xmalloc.h"

#define HTTP_METHODS            (HTTP_GET | HTTP_POST | HTTP_DELETE)
#define HTTP_SWEEP_MAX_MS       250u
#define HTTP_SWEEP_MIN_MS       10u
#define HTTP_ACCEPT_BACKOFF_MS  500u
#define HTTP_CLIENT_TIMEOUT_MS  10000u
#define HTTP_CLIENT_MAX_BODY    ((ev_ssize_t)64 << 20)
#define HTTP_CLIENT_MAX_HEADERS ((ev_ssize_t)64 << 10)
#define HTTP_HOST_MAX           256
#define HTTP_RETRY_AFTER_MAX    86400u
/* The request the framer hands evhttp in place of one it refused. */
#define HTTP_FRAMING_PATH       "/.sluice/framing-error"
#define HTTP_FRAMING_REQUEST    "GET " HTTP_FRAMING_PATH " HTTP/1.1\r\nConnection: close\r\n\r\n"

struct http_route {
    unsigned methods;
    char *path;
    size_t len;
    bool prefix;
    bool public_;
    http_handler_cb cb;
    void *arg;
};

/*
 * The request framer (common/framer.h) runs as an input filter between the
 * socket and evhttp: evhttp sees only whole requests that passed. Once a
 * request is refused nothing more is read from the connection, and evhttp
 * gets one synthetic request for HTTP_FRAMING_PATH, which
 * server_request_cb answers with the Error and Connection: close.
 */
struct http_filter {
    struct framer *framer;
    struct bufferevent *sock; /* the socket's bufferevent, below the filter */
};

/* One accepted connection; we hold one reference on bev until evhttp is done. */
struct http_conn {
    struct bufferevent *bev;
    struct http_filter *filter; /* lives as long as bev */
    int64_t deadline_ms; /* CLOCK_MONOTONIC; 0 while a request is being handled */
    bool rejected;       /* over the cap at accept; never counted as live */
    bool shut;           /* shutdown(2) done, waiting for evhttp to free it */
};

struct http_server {
    struct event_base *base;
    struct evhttp *evh;
    struct http_limits limits;
    struct http_route *routes;
    size_t nroutes;
    char *token; /* NULL: no auth */
    http_gate_cb gate; /* NULL: none */
    void *gate_arg;
    size_t token_len;
    char *name; /* the Server header of every answer; NULL: none */
    struct http_conn *conns;
    size_t nconns;
    size_t conns_alloc;
    struct event *sweep_ev;  /* timer, pending while conns is not empty */
    struct event *kick_ev;   /* activated to sweep right after the current callback */
    struct event *resume_ev; /* re-enables accepting after a back-off */
    struct evconnlistener **listeners;
    size_t nlisteners;
    unsigned sweep_ms;
    struct http_server_stats stats;
    struct http_server *registry_next;
};

/*
 * evconnlistener error callbacks receive evhttp's user data, not ours, so
 * servers are found by listener in this process-wide list. Only touched at
 * server creation and destruction and on accept errors.
 */
static pthread_mutex_t http_registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct http_server *http_registry;

static int64_t http_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct timeval http_tv(unsigned ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};

    return tv;
}

/* Splits "host:port" or "[v6]:port" into host and port. */
static int http_parse_host_port(const char *s, char *host, size_t hostlen, uint16_t *ret_port,
                                bool allow_zero)
{
    const char *h, *p, *colon;
    size_t n;
    unsigned long port = 0;

    if (s == NULL || *s == '\0')
        return -EINVAL;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');

        if (close == NULL || close[1] != ':')
            return -EINVAL;
        h = s + 1;
        n = (size_t)(close - h);
        p = close + 2;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            return -EINVAL;
        h = s;
        n = (size_t)(colon - s);
        if (memchr(h, ':', n) != NULL)
            return -EINVAL; /* IPv6 needs brackets */
        p = colon + 1;
    }
    if (n == 0 || n >= hostlen || *p == '\0' || strlen(p) > 5)
        return -EINVAL;
    for (const char *q = p; *q != '\0'; q++) {
        if (*q < '0' || *q > '9')
            return -EINVAL;
        port = port * 10 + (unsigned long)(*q - '0');
    }
    if (port > 65535 || (port == 0 && !allow_zero))
        return -EINVAL;
    memcpy(host, h, n);
    host[n] = '\0';
    *ret_port = (uint16_t)port;
    return 0;
}

struct http_limits http_limits_default(void)
{
    struct http_limits l = {
        .max_body = 4u << 20,
        .max_headers = 16u << 10,
        .max_connections = 1024,
        .idle_timeout_ms = 30000,
        .request_timeout_ms = 10000,
    };

    return l;
}

static ev_ssize_t http_clamp_ssize(size_t v)
{
    return v > (size_t)SSIZE_MAX ? (ev_ssize_t)SSIZE_MAX : (ev_ssize_t)v;
}

/* Server: connection table. */

static struct http_conn *server_find_conn(struct http_server *srv, struct bufferevent *bev)
{
    for (size_t i = 0; i < srv->nconns; i++) {
        if (srv->conns[i].bev == bev)
            return &srv->conns[i];
    }
    return NULL;
}

static void server_arm_sweep(struct http_server *srv)
{
    if (srv->nconns > 0 && !evtimer_pending(srv->sweep_ev, NULL)) {
        struct timeval tv = http_tv(srv->sweep_ms);

        evtimer_add(srv->sweep_ev, &tv);
    }
}

/*
 * Releases connections evhttp has freed and shuts down those that are over
 * the cap or past their deadline. Never frees an evhttp object.
 */
static void server_sweep(struct http_server *srv)
{
    int64_t now = http_now_ms();
    size_t i = 0;

    while (i < srv->nconns) {
        struct http_conn *c = &srv->conns[i];
        bufferevent_event_cb eventcb = NULL;

        bufferevent_getcb(c->bev, NULL, NULL, &eventcb, NULL);
        if (eventcb == NULL) {
            /* evhttp called bufferevent_free(); ours is the last reference. */
            if (!c->rejected) {
                assert(srv->stats.connections_live > 0);
                srv->stats.connections_live--;
            }
            bufferevent_disable(c->bev, EV_READ | EV_WRITE);
            bufferevent_decref(c->bev);
            srv->conns[i] = srv->conns[--srv->nconns];
            continue;
        }
        if (!c->shut && (c->rejected || (c->deadline_ms != 0 && now >= c->deadline_ms))) {
            evutil_socket_t fd = bufferevent_getfd(c->bev);

            if (fd >= 0) {
                shutdown(fd, SHUT_RDWR);
                c->shut = true;
                if (!c->rejected) {
                    srv->stats.connections_closed_deadline++;
                    log_debug("http_conn_deadline", "fd=%d request_timeout_ms=%u", (int)fd,
                              srv->limits.request_timeout_ms);
                }
            }
        }
        i++;
    }
    server_arm_sweep(srv);
}

static void server_sweep_cb(evutil_socket_t fd, short what, void *arg)
{
    server_sweep(arg);
}

/* bufferevent input filter: passes whole, well-framed requests to evhttp. */
static enum bufferevent_filter_result server_filter_in(struct evbuffer *src, struct evbuffer *dst,
                                                    ev_ssize_t limit,
                                                    enum bufferevent_flush_mode mode, void *ctx)
{
    struct http_filter *hf = ctx;
    int r = framer_feed(hf->framer, src, dst);

    if (r == -EPROTO) {
        log_debug("http_framing_refused", "status=%d reason=\"%s\"",
                  framer_status(hf->framer), framer_message(hf->framer));
        evbuffer_add(dst, HTTP_FRAMING_REQUEST, sizeof(HTTP_FRAMING_REQUEST) - 1);
        return BEV_OK;
    }
    return r > 0 ? BEV_OK : BEV_NEED_MORE;
}

/*
 * bufferevent output filter. A filter reports an answer written (and evhttp
 * then closes a Connection: close connection with shutdown(2)) as soon as
 * the answer has left the filter, not the socket; so the answer goes
 * straight to the socket when nothing is queued before it, and only what
 * the socket does not take at once waits in the socket's bufferevent. An
 * answer that is closed behind and larger than the socket's send buffer
 * can lose its tail; error answers are far smaller.
 */
static enum bufferevent_filter_result server_filter_out(struct evbuffer *src,
                                                        struct evbuffer *dst, ev_ssize_t limit,
                                                        enum bufferevent_flush_mode mode,
                                                        void *ctx)
{
    struct http_filter *hf = ctx;
    evutil_socket_t fd = bufferevent_getfd(hf->sock);

    if (evbuffer_get_length(src) == 0)
        return BEV_NEED_MORE;
    if (fd >= 0 && evbuffer_get_length(dst) == 0)
        (void)evbuffer_write(src, fd); /* errors show up on the socket's next read or write */
    evbuffer_add_buffer(dst, src);
    return BEV_OK;
}

static void server_filter_free_cb(void *ctx)
{
    struct http_filter *hf = ctx;

    framer_free(hf->framer);
    free(hf);
}

/*
 * evhttp calls this once per accepted socket, before it knows about the
 * connection; the socket is attached to the returned bufferevent right after.
 */
static struct bufferevent *server_bev_cb(struct event_base *base, void *arg)
{
    struct http_server *srv = arg;
    struct bufferevent *bev, *sock;
    struct http_filter *hf;
    struct http_conn *c;
    size_t high;

    server_sweep(srv);
    sock = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (sock == NULL)
        return NULL; /* evhttp makes its own; this connection escapes the cap */
    hf = xcalloc(1, sizeof(*hf));
    hf->framer = framer_new(srv->limits.max_body, srv->limits.max_headers);
    hf->sock = sock;
    bev = bufferevent_filter_new(sock, server_filter_in, server_filter_out, BEV_OPT_CLOSE_ON_FREE,
                                 server_filter_free_cb, hf);
    if (bev == NULL) {
        server_filter_free_cb(hf);
        bufferevent_free(sock);
        return NULL;
    }
    bufferevent_incref(bev);
    /*
     * Bounds what a bufferevent can buffer between evhttp freeing it and our
     * sweep; evhttp itself never needs more than one request's worth.
     */
    high = srv->limits.max_body + srv->limits.max_headers + 65536;
    if (high < srv->limits.max_body)
        high = SIZE_MAX;
    bufferevent_setwatermark(bev, EV_READ, 0, high);

    if (srv->nconns == srv->conns_alloc) {
        srv->conns_alloc = srv->conns_alloc ? srv->conns_alloc * 2 : 16;
        srv->conns = xreallocarray(srv->conns, srv->conns_alloc, sizeof(*srv->conns));
    }
    c = &srv->conns[srv->nconns++];
    memset(c, 0, sizeof(*c));
    c->bev = bev;
    c->filter = hf;
    c->deadline_ms = http_now_ms() + srv->limits.request_timeout_ms;
    srv->stats.connections_accepted++;
    if (srv->stats.connections_live >= srv->limits.max_connections) {
        c->rejected = true;
        srv->stats.connections_rejected_cap++;
        log_debug("http_conn_rejected", "reason=cap live=%llu max_connections=%u",
                  (unsigned long long)srv->stats.connections_live, srv->limits.max_connections);
        /* The socket is attached after we return; shut it down from the loop. */
        event_active(srv->kick_ev, EV_TIMEOUT, 1);
    } else {
        srv->stats.connections_live++;
    }
    server_arm_sweep(srv);
    return bev;
}

static void server_kick_cb(evutil_socket_t fd, short what, void *arg)
{
    server_sweep(arg);
}

/* evhttp is about to free a connection that carried a request: sweep soon. */
static void server_close_cb(struct evhttp_connection *evcon, void *arg)
{
    struct http_server *srv = arg;

    event_active(srv->kick_ev, EV_TIMEOUT, 1);
}

/* Server: accept back-off. */

static struct http_server *registry_find(const struct evconnlistener *lev)
{
    struct http_server *found = NULL;

    pthread_mutex_lock(&http_registry_lock);
    for (struct http_server *s = http_registry; s != NULL && found == NULL; s = s->registry_next) {
        for (size_t i = 0; i < s->nlisteners; i++) {
            if (s->listeners[i] == lev) {
                found = s;
                break;
            }
        }
    }
    pthread_mutex_unlock(&http_registry_lock);
    return found;
}

static void server_accept_error_cb(struct evconnlistener *lev, void *arg)
{
    int err = EVUTIL_SOCKET_ERROR();
    struct http_server *srv = registry_find(lev);
    struct timeval tv = http_tv(HTTP_ACCEPT_BACKOFF_MS);

    if (srv == NULL)
        return;
    if (err != EMFILE && err != ENFILE && err != ENOBUFS && err != ENOMEM) {
        log_debug("http_accept_error", "errno=%d", err);
        return;
    }
    /* Out of descriptors: the listening socket stays readable, so stop polling it. */
    for (size_t i = 0; i < srv->nlisteners; i++)
        evconnlistener_disable(srv->listeners[i]);
    srv->stats.accept_backoffs++;
    log_warn("http_accept_paused", "state=\"accepting -> paused (%s)\" resume_ms=%u live=%llu",
             strerror(err), HTTP_ACCEPT_BACKOFF_MS,
             (unsigned long long)srv->stats.connections_live);
    server_sweep(srv);
    evtimer_add(srv->resume_ev, &tv);
}

static void server_resume_cb(evutil_socket_t fd, short what, void *arg)
{
    struct http_server *srv = arg;

    for (size_t i = 0; i < srv->nlisteners; i++)
        evconnlistener_enable(srv->listeners[i]);
    log_debug("http_accept_resumed", "listeners=%zu", srv->nlisteners);
}

/* Server: requests. */

static void server_count_response(struct http_server *srv, int code)
{
    if (code >= 200 && code < 300)
        srv->stats.responses_2xx++;
    else if (code >= 400 && code < 500)
        srv->stats.responses_4xx++;
    else if (code >= 500 && code < 600)
        srv->stats.responses_5xx++;
    else
        srv->stats.responses_other++;
}

/* The answer has been written: count it and start the next request's deadline. */
static void server_complete_cb(struct evhttp_request *req, void *arg)
{
    struct http_server *srv = arg;
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct http_conn *c;

    server_count_response(srv, evhttp_request_get_response_code(req));
    if (evcon == NULL)
        return;
    c = server_find_conn(srv, evhttp_connection_get_bufferevent(evcon));
    if (c != NULL)
        c->deadline_ms = http_now_ms() + srv->limits.request_timeout_ms;
}

/* Compares in time that depends only on the expected token's length. */
static bool token_equal(const char *want, size_t want_len, const char *got, size_t got_len)
{
    volatile unsigned diff = want_len != got_len;

    for (size_t i = 0; i < want_len; i++) {
        unsigned char g = i < got_len ? (unsigned char)got[i] : 0;

        diff |= (unsigned char)want[i] ^ g;
    }
    return diff == 0;
}

static bool server_authorized(const struct http_server *srv, struct evhttp_request *req)
{
    const char *h = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    const char *got = "";

    if (h != NULL && strncasecmp(h, "Bearer ", 7) == 0) {
        got = h + 7;
        while (*got == ' ')
            got++;
    }
    return token_equal(srv->token, srv->token_len, got, strlen(got));
}

static void server_allow_header(char *buf, size_t len, unsigned methods)
{
    static const struct {
        unsigned bit;
        const char *name;
    } names[] = {{HTTP_GET, "GET"}, {HTTP_POST, "POST"}, {HTTP_DELETE, "DELETE"}};
    size_t used = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (methods & names[i].bit) {
            int n = snprintf(buf + used, len - used, "%s%s", used ? ", " : "", names[i].name);

            if (n < 0 || (size_t)n >= len - used)
                break;
            used += (size_t)n;
        }
    }
}

/*
 * Finds the route for path and method. The longest matching path wins (an
 * exact route beats a prefix of the same length). Sets *ret_known if any
 * route matches the path, *ret_allow to the methods on that path and
 * *ret_public if the path is public.
 */
static const struct http_route *server_match(const struct http_server *srv, const char *path,
                                             unsigned method, bool *ret_known, unsigned *ret_allow,
                                             bool *ret_public)
{
    const struct http_route *best = NULL, *chosen = NULL;
    size_t path_len = strlen(path);
    bool any_public = false;
    unsigned allow = 0;

    for (size_t i = 0; i < srv->nroutes; i++) {
        const struct http_route *r = &srv->routes[i];
        bool match = r->prefix ? (path_len >= r->len && memcmp(path, r->path, r->len) == 0)
                               : strcmp(path, r->path) == 0;

        if (!match)
            continue;
        if (best == NULL || r->len > best->len || (r->len == best->len && !r->prefix))
            best = r;
    }
    if (best != NULL) {
        for (size_t i = 0; i < srv->nroutes; i++) {
            const struct http_route *r = &srv->routes[i];

            if (r->len != best->len || r->prefix != best->prefix || strcmp(r->path, best->path))
                continue;
            allow |= r->methods;
            any_public |= r->public_;
            if ((r->methods & method) && chosen == NULL)
                chosen = r;
        }
    }
    *ret_known = best != NULL;
    *ret_allow = allow;
    *ret_public = chosen != NULL ? chosen->public_ : any_public;
    return chosen;
}

/* evhttp's generic callback: every complete request comes through here. */
static void server_request_cb(struct evhttp_request *req, void *arg)
{
    struct http_server *srv = arg;
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    const char *uri = evhttp_request_get_uri(req);
    const struct evhttp_uri *parsed = evhttp_request_get_evhttp_uri(req);
    const char *path = parsed != NULL ? evhttp_uri_get_path(parsed) : NULL;
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    unsigned method = (unsigned)cmd;
    const struct http_route *route;
    struct http_conn *c = NULL;
    bool known, public_;
    unsigned allow;

    evhttp_request_set_on_complete_cb(req, server_complete_cb, srv);
    if (srv->name != NULL)
        evhttp_add_header(evhttp_request_get_output_headers(req), "Server", srv->name);
    if (evcon != NULL) {
        struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);

        c = server_find_conn(srv, bev);
        /* The request is complete: no deadline until it has been answered. */
        if (c != NULL)
            c->deadline_ms = 0;
        evhttp_connection_set_closecb(evcon, server_close_cb, srv);
    }
    if (c != NULL && framer_failed(c->filter->framer) && path != NULL &&
        strcmp(path, HTTP_FRAMING_PATH) == 0) {
        /* The framer refused what came next on this connection: answer, then close. */
        evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
        pbhttp_reply_error(req, framer_status(c->filter->framer), framer_code(c->filter->framer),
                           framer_message(c->filter->framer));
        return;
    }
    srv->stats.requests++;
    if (uri == NULL || strcasestr(uri, "%00") != NULL) {
        pbhttp_reply_error(req, 400, "bad_request", "request target: contains %00");
        return;
    }
    if (path == NULL || path[0] != '/') {
        pbhttp_reply_error(req, 400, "bad_request", "request target: not a path");
        return;
    }
    route = server_match(srv, path, method, &known, &allow, &public_);
    if (srv->token != NULL && !public_ && !server_authorized(srv, req)) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
                          "Bearer realm=\"sluice\"");
        /* Say which, and where the CLIs and nodes take the token from. */
        pbhttp_reply_error(req, 401, "unauthorized",
                           evhttp_find_header(evhttp_request_get_input_headers(req),
                                              "Authorization") == NULL
                               ? "Authorization: this daemon needs the cluster token and the "
                                 "request has none; give it with --token-file FILE or "
                                 "SLUICE_TOKEN (header: Authorization: Bearer TOKEN)"
                               : "Authorization: the bearer token is not this daemon's; give "
                                 "the cluster's with --token-file FILE or SLUICE_TOKEN");
        return;
    }
    if (srv->gate != NULL && srv->gate(req, path, srv->gate_arg))
        return;
    if (!known) {
        pbhttp_reply_error(req, 404, "not_found", "path: no such endpoint");
        return;
    }
    if (route == NULL) {
        char allow_hdr[32], msg[96];

        server_allow_header(allow_hdr, sizeof(allow_hdr), allow);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", allow_hdr);
        snprintf(msg, sizeof(msg), "method: this endpoint takes %s", allow_hdr);
        pbhttp_reply_error(req, 405, "method_not_allowed", msg);
        return;
    }
    route->cb(req, route->prefix ? path + route->len : "", route->arg);
}

struct http_server *http_server_new(struct event_base *base, const struct http_limits *limits)
{
    struct http_limits def = http_limits_default();
    struct http_server *srv;
    struct timeval idle;

    assert(base != NULL);
    srv = xcalloc(1, sizeof(*srv));
    srv->base = base;
    srv->limits = limits != NULL ? *limits : def;
    if (srv->limits.max_body == 0)
        srv->limits.max_body = def.max_body;
    if (srv->limits.max_headers == 0)
        srv->limits.max_headers = def.max_headers;
    if (srv->limits.max_connections == 0)
        srv->limits.max_connections = def.max_connections;
    if (srv->limits.idle_timeout_ms == 0)
        srv->limits.idle_timeout_ms = def.idle_timeout_ms;
    if (srv->limits.request_timeout_ms == 0)
        srv->limits.request_timeout_ms = def.request_timeout_ms;
    srv->sweep_ms = srv->limits.request_timeout_ms / 4;
    if (srv->sweep_ms > HTTP_SWEEP_MAX_MS)
        srv->sweep_ms = HTTP_SWEEP_MAX_MS;
    if (srv->sweep_ms < HTTP_SWEEP_MIN_MS)
        srv->sweep_ms = HTTP_SWEEP_MIN_MS;

    srv->evh = evhttp_new(base);
    srv->sweep_ev = evtimer_new(base, server_sweep_cb, srv);
    srv->kick_ev = event_new(base, -1, 0, server_kick_cb, srv);
    srv->resume_ev = evtimer_new(base, server_resume_cb, srv);
    if (srv->evh == NULL || srv->sweep_ev == NULL || srv->kick_ev == NULL ||
        srv->resume_ev == NULL) {
        http_server_free(srv);
        return NULL;
    }
    evhttp_set_max_body_size(srv->evh, http_clamp_ssize(srv->limits.max_body));
    evhttp_set_max_headers_size(srv->evh, http_clamp_ssize(srv->limits.max_headers));
    evhttp_set_allowed_methods(srv->evh, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_DELETE);
    evhttp_set_default_content_type(srv->evh, NULL);
    idle = http_tv(srv->limits.idle_timeout_ms);
    evhttp_set_timeout_tv(srv->evh, &idle);
    evhttp_set_gencb(srv->evh, server_request_cb, srv);
    evhttp_set_bevcb(srv->evh, server_bev_cb, srv);

    pthread_mutex_lock(&http_registry_lock);
    srv->registry_next = http_registry;
    http_registry = srv;
    pthread_mutex_unlock(&http_registry_lock);
    return srv;
}

void http_server_free(struct http_server *srv)
{
    if (srv == NULL)
        return;
    pthread_mutex_lock(&http_registry_lock);
    for (struct http_server **pp = &http_registry; *pp != NULL; pp = &(*pp)->registry_next) {
        if (*pp == srv) {
            *pp = srv->registry_next;
            break;
        }
    }
    pthread_mutex_unlock(&http_registry_lock);

    /* evhttp first: it frees its connections (bufferevent_free), we then drop our refs. */
    if (srv->evh != NULL)
        evhttp_free(srv->evh);
    for (size_t i = 0; i < srv->nconns; i++) {
        bufferevent_disable(srv->conns[i].bev, EV_READ | EV_WRITE);
        bufferevent_decref(srv->conns[i].bev);
    }
    if (srv->sweep_ev != NULL)
        event_free(srv->sweep_ev);
    if (srv->kick_ev != NULL)
        event_free(srv->kick_ev);
    if (srv->resume_ev != NULL)
        event_free(srv->resume_ev);
    for (size_t i = 0; i < srv->nroutes; i++)
        free(srv->routes[i].path);
    free(srv->routes);
    free(srv->conns);
    free(srv->listeners);
    free(srv->token);
    free(srv->name);
    free(srv);
}

int http_server_bind(struct http_server *srv, const char *addr, char *ret_bound, size_t len)
{
    char host[HTTP_HOST_MAX], ip[INET6_ADDRSTRLEN], out[INET6_ADDRSTRLEN + 16];
    struct evhttp_bound_socket *bound;
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof(ss);
    uint16_t port;
    int r, n;

    r = http_parse_host_port(addr, host, sizeof(host), &port, true);
    if (r < 0)
        return r;
    errno = 0;
    bound = evhttp_bind_socket_with_handle(srv->evh, host, port);
    if (bound == NULL)
        return errno > 0 ? -errno : -EADDRINUSE;
    if (getsockname(evhttp_bound_socket_get_fd(bound), (struct sockaddr *)&ss, &sslen) < 0) {
        r = -errno;
        evhttp_del_accept_socket(srv->evh, bound);
        return r;
    }
    if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ss;

        inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
        n = snprintf(out, sizeof(out), "[%s]:%u", ip, (unsigned)ntohs(s6->sin6_port));
    } else {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)&ss;

        inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
        n = snprintf(out, sizeof(out), "%s:%u", ip, (unsigned)ntohs(s4->sin_port));
    }
    if (ret_bound != NULL && (n < 0 || (size_t)n >= len)) {
        evhttp_del_accept_socket(srv->evh, bound);
        return -ENOSPC;
    }
    pthread_mutex_lock(&http_registry_lock);
    srv->listeners = xreallocarray(srv->listeners, srv->nlisteners + 1, sizeof(*srv->listeners));
    srv->listeners[srv->nlisteners++] = evhttp_bound_socket_get_listener(bound);
    pthread_mutex_unlock(&http_registry_lock);
    evconnlistener_set_error_cb(evhttp_bound_socket_get_listener(bound), server_accept_error_cb);
    if (ret_bound != NULL)
        memcpy(ret_bound, out, (size_t)n + 1);
    log_debug("http_listen", "addr=%s", out);
    return 0;
}

static int server_add_route(struct http_server *srv, unsigned method_mask, const char *path,
                            bool is_prefix, bool public_, http_handler_cb cb, void *arg)
{
    struct http_route *r;

    if (path == NULL || path[0] != '/' || cb == NULL || method_mask == 0 ||
        (method_mask & ~HTTP_METHODS) != 0)
        return -EINVAL;
    for (size_t i = 0; i < srv->nroutes; i++) {
        if (srv->routes[i].prefix == is_prefix && strcmp(srv->routes[i].path, path) == 0 &&
            (srv->routes[i].methods & method_mask) != 0)
            return -EEXIST;
    }
    srv->routes = xreallocarray(srv->routes, srv->nroutes + 1, sizeof(*srv->routes));
    r = &srv->routes[srv->nroutes++];
    r->methods = method_mask;
    r->path = xstrdup(path);
    r->len = strlen(path);
    r->prefix = is_prefix;
    r->public_ = public_;
    r->cb = cb;
    r->arg = arg;
    return 0;
}

int http_server_route(struct http_server *srv, unsigned method_mask, const char *path,
                      bool is_prefix, http_handler_cb cb, void *arg)
{
    return server_add_route(srv, method_mask, path, is_prefix, false, cb, arg);
}

int http_server_route_public(struct http_server *srv, unsigned method_mask, const char *path,
                             bool is_prefix, http_handler_cb cb, void *arg)
{
    return server_add_route(srv, method_mask, path, is_prefix, true, cb, arg);
}

void http_server_set_name(struct http_server *srv, const char *name)
{
    free(srv->name);
    srv->name = name != NULL ? xstrdup(name) : NULL;
}

void http_server_set_gate(struct http_server *srv, http_gate_cb cb, void *arg)
{
    srv->gate = cb;
    srv->gate_arg = arg;
}

int http_server_set_token(struct http_server *srv, const char *token)
{
    if (token != NULL) {
        for (const char *p = token; *p != '\0'; p++) {
            if (*p <= ' ' || *p > '~')
                return -EINVAL;
        }
    }
    free(srv->token);
    srv->token = NULL;
    srv->token_len = 0;
    if (token != NULL && *token != '\0') {
        srv->token = xstrdup(token);
        srv->token_len = strlen(token);
    }
    return 0;
}

void http_server_get_stats(const struct http_server *srv, struct http_server_stats *ret)
{
    *ret = srv->stats;
}

void http_reply(struct evhttp_request *req, int code, const char *content_type, const void *body,
                size_t len)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct bufferevent *bev = evcon != NULL ? evhttp_connection_get_bufferevent(evcon) : NULL;
    const char *phrase = NULL;

    if (content_type != NULL) {
        struct evkeyvalq *out = evhttp_request_get_output_headers(req);

        evhttp_remove_header(out, "Content-Type");
        evhttp_add_header(out, "Content-Type", content_type);
    }
    if (len > 0)
        evbuffer_add(evhttp_request_get_output_buffer(req), body, len);
    /* evhttp 2.1 knows phrases up to 417 only. */
    switch (code) {
    case 422:
        phrase = "Unprocessable Content";
        break;
    case 429:
        phrase = "Too Many Requests";
        break;
    case 414:
        phrase = "URI Too Long";
        break;
    case 431:
        phrase = "Request Header Fields Too Large";
        break;
    case 507:
        phrase = "Insufficient Storage";
        break;
    default:
        break;
    }
    evhttp_send_reply(req, code, phrase, NULL);
    /*
     * A server connection's bufferevent is the framer's filter, and a
     * filter moves what evhttp queued to the socket only when the socket
     * has just written something: push the answer through now. The filter
     * outlives this call (http_conn holds a reference), even if evhttp
     * frees the connection from inside the flush.
     */
    if (bev != NULL)
        bufferevent_flush(bev, EV_WRITE, BEV_NORMAL);
}

void http_reply_text(struct evhttp_request *req, int code, const char *fmt, ...)
{
    va_list ap;
    char small[256], *buf = small;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) {
        n = 0;
        small[0] = '\0';
    } else if ((size_t)n >= sizeof(small)) {
        buf = xmalloc((size_t)n + 1);
        va_start(ap, fmt);
        vsnprintf(buf, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    http_reply(req, code, "text/plain; charset=utf-8", buf, (size_t)n);
    if (buf != small)
        free(buf);
}

/* Client. */

/*
 * One request. It waits in the client's FIFO until the connection is free,
 * then is handed to evhttp (active): its deadline starts then, not when it
 * was queued. Everything needed to send it again is kept, for the one
 * retry on a fresh connection.
 */
struct http_client_req {
    struct http_client *client;
    struct evhttp_request *evreq; /* NULL once evhttp no longer knows it */
    struct event *timer;          /* deadline; also delivers a deferred result */
    http_client_cb cb;            /* NULL once the caller has been told */
    void *arg;
    int64_t start_ms;             /* when first sent */
    enum evhttp_cmd_type method;
    char *path, *content_type;
    void *body;
    size_t len;
    enum evhttp_request_error error;
    bool have_error;
    bool deferred; /* result in deferred_status, to be delivered by timer */
    int deferred_status;
    bool idempotent, retried, sent;
    struct http_client_req *prev, *next; /* every request of the client */
    struct http_client_req *qnext;       /* the FIFO of requests not sent yet */
};

struct http_client {
    struct event_base *base;
    struct evhttp_connection *evcon;
    char *host_header;
    char *authorization; /* "Bearer <token>" or NULL */
    unsigned timeout_ms;
    struct http_client_req *head;
    struct http_client_req *qhead, *qtail; /* waiting to be sent */
    struct http_client_req *active;        /* handed to evhttp */
    struct event *pump_ev;                 /* sends the next request, from the loop */
    unsigned npending;
    unsigned depth;  /* >0 while our code runs inside libevent or caller callbacks */
    bool submitting; /* inside evhttp_make_request(): defer results */
    bool dying;
};

static void client_link(struct http_client *client, struct http_client_req *creq)
{
    creq->prev = NULL;
    creq->next = client->head;
    if (client->head != NULL)
        client->head->prev = creq;
    client->head = creq;
    client->npending++;
}

static void client_unlink_free(struct http_client_req *creq)
{
    struct http_client *client = creq->client;

    if (creq->prev != NULL)
        creq->prev->next = creq->next;
    else
        client->head = creq->next;
    if (creq->next != NULL)
        creq->next->prev = creq->prev;
    assert(client->npending > 0);
    client->npending--;
    if (client->active == creq)
        client->active = NULL;
    if (creq->timer != NULL)
        event_free(creq->timer);
    free(creq->path);
    free(creq->content_type);
    free(creq->body);
    free(creq);
}

static int client_map_error(enum evhttp_request_error e)
{
    switch (e) {
    case EVREQ_HTTP_TIMEOUT:
        return -ETIMEDOUT;
    case EVREQ_HTTP_EOF:
        return -ECONNRESET;
    case EVREQ_HTTP_INVALID_HEADER:
        return -EPROTO;
    case EVREQ_HTTP_DATA_TOO_LONG:
        return -EMSGSIZE;
    case EVREQ_HTTP_REQUEST_CANCEL:
        return -ECANCELED;
    case EVREQ_HTTP_BUFFER_ERROR:
    default:
        return -EIO;
    }
}

static unsigned client_parse_retry_after(const char *v)
{
    unsigned long n = 0;

    if (v == NULL || *v == '\0')
        return 0;
    for (; *v != '\0'; v++) {
        if (*v < '0' || *v > '9')
            return 0; /* HTTP-date form: not used by our peers */
        n = n * 10 + (unsigned long)(*v - '0');
        if (n > HTTP_RETRY_AFTER_MAX)
            return HTTP_RETRY_AFTER_MAX;
    }
    return (unsigned)n;
}

/* Sends the next waiting request from the loop, never from inside evhttp. */
static void client_pump(struct http_client *client)
{
    if (!client->dying && client->active == NULL && client->qhead != NULL)
        event_active(client->pump_ev, EV_TIMEOUT, 1);
}

static void client_finish(struct http_client_req *creq, int status, struct evhttp_request *evreq);

/*
 * The peer gave no answer (status < 0, not a cancel): what waits behind
 * the failed request fails with it now, rather than each one reconnecting
 * and waiting out its own deadline in turn.
 */
static void client_fail_queued(struct http_client *client, int status)
{
    struct http_client_req *q = client->qhead;

    client->qhead = client->qtail = NULL;
    client->depth++;
    while (q != NULL) {
        struct http_client_req *next = q->qnext;

        q->qnext = NULL;
        client_finish(q, status, NULL);
        q = next;
    }
    client->depth--;
}

/* Tells the caller and forgets the request; evreq is non-NULL for HTTP answers. */
static void client_finish(struct http_client_req *creq, int status, struct evhttp_request *evreq)
{
    struct http_client *client = creq->client;
    struct http_client_reply reply = {.body = ""};
    http_client_cb cb = creq->cb;
    void *arg = creq->arg;
    bool was_active = client->active == creq;

    if (evreq != NULL) {
        struct evkeyvalq *h = evhttp_request_get_input_headers(evreq);
        struct evbuffer *b = evhttp_request_get_input_buffer(evreq);
        size_t n = evbuffer_get_length(b);

        reply.headers = h;
        reply.reason = evhttp_find_header(h, "X-Sluice-Reason");
        reply.content_type = evhttp_find_header(h, "Content-Type");
        reply.retry_after_s = client_parse_retry_after(evhttp_find_header(h, "Retry-After"));
        if (n > 0) {
            reply.body = evbuffer_pullup(b, -1);
            reply.body_len = n;
        }
    }
    client_unlink_free(creq);
    if (cb != NULL) {
        client->depth++;
        cb(status, &reply, arg);
        client->depth--;
    }
    if (was_active && !client->dying) {
        if (status < 0 && status != -ECANCELED)
            client_fail_queued(client, status);
        client_pump(client);
    }
}

static void client_error_cb(enum evhttp_request_error error, void *arg)
{
    struct http_client_req *creq = arg;

    creq->error = error;
    creq->have_error = true;
}

/*
 * A peer may close an idle keep-alive connection just as a request goes
 * out on it: the request then dies with the connection (EOF or a reset)
 * without the peer having acted on it. A request that is safe to send
 * twice gets one more try, on a fresh connection, within its deadline.
 */
static bool client_retry(struct http_client_req *creq, int status)
{
    struct http_client *client = creq->client;

    if (!creq->idempotent || creq->retried || client->dying ||
        (status != -ECONNRESET && status != -EIO))
        return false;
    creq->retried = true;
    creq->have_error = false;
    client->active = NULL;
    creq->qnext = client->qhead;
    client->qhead = creq;
    if (client->qtail == NULL)
        client->qtail = creq;
    client_pump(client);
    return true;
}

/* evhttp's request callback: an answer, or evreq NULL / code 0 on failure. */
static void client_done_cb(struct evhttp_request *evreq, void *arg)
{
    struct http_client_req *creq = arg;
    struct http_client *client = creq->client;
    int status, code = evreq != NULL ? evhttp_request_get_response_code(evreq) : 0;

    creq->evreq = NULL; /* evhttp frees it when we return */
    if (creq->cb == NULL) {
        client_unlink_free(creq); /* abandoned by http_client_free() */
        return;
    }
    if (code > 0) {
        status = code;
    } else if (creq->have_error) {
        status = client_map_error(creq->error);
    } else if (evreq != NULL) {
        /* Connect failed (evhttp_connection_cb_cleanup reports no error kind). */
        status = http_now_ms() - creq->start_ms + 5 >= (int64_t)client->timeout_ms ? -ETIMEDOUT
                                                                                   : -ECONNREFUSED;
    } else {
        status = -EIO;
    }
    if (code <= 0 && !client->submitting && client_retry(creq, status))
        return; /* its deadline keeps running */
    event_del(creq->timer);
    if (client->submitting) {
        creq->deferred = true;
        creq->deferred_status = status;
        event_active(creq->timer, EV_TIMEOUT, 1);
        return;
    }
    client_finish(creq, status, code > 0 ? evreq : NULL);
}

static void client_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct http_client_req *creq = arg;
    struct http_client *client = creq->client;
    struct evhttp_request *evreq = creq->evreq;

    if (creq->deferred) {
        client_finish(creq, creq->deferred_status, NULL);
        return;
    }
    /* Deadline: take the request back from evhttp, which then calls no callback. */
    creq->evreq = NULL;
    if (evreq != NULL) {
        client->depth++;
        evhttp_cancel_request(evreq);
        client->depth--;
    } else {
        /* Waiting for its retry: take it off the queue. */
        struct http_client_req **pp = &client->qhead;

        client->qtail = NULL;
        while (*pp != NULL) {
            if (*pp == creq) {
                *pp = creq->qnext;
            } else {
                client->qtail = *pp;
                pp = &(*pp)->qnext;
            }
        }
        creq->qnext = NULL;
        if (client->active == NULL)
            client->active = creq; /* so that the queue behind it fails with it */
    }
    client_finish(creq, -ETIMEDOUT, NULL);
}

/* Hands one request to evhttp; its deadline starts at its first sending. */
static void client_send(struct http_client *client, struct http_client_req *creq)
{
    struct evhttp_request *evreq = evhttp_request_new(client_done_cb, creq);
    struct evkeyvalq *h;
    int r;

    client->active = creq;
    if (!creq->sent) {
        struct timeval tv = http_tv(client->timeout_ms);

        creq->sent = true;
        creq->start_ms = http_now_ms();
        evtimer_add(creq->timer, &tv);
    }
    if (evreq == NULL) {
        creq->deferred = true;
        creq->deferred_status = -ENOMEM;
        event_del(creq->timer);
        event_active(creq->timer, EV_TIMEOUT, 1);
        return;
    }
    creq->evreq = evreq;
    evhttp_request_set_error_cb(evreq, client_error_cb);
    h = evhttp_request_get_output_headers(evreq);
    evhttp_add_header(h, "Host", client->host_header);
    if (client->authorization != NULL)
        evhttp_add_header(h, "Authorization", client->authorization);
    if (creq->content_type != NULL)
        evhttp_add_header(h, "Content-Type", creq->content_type);
    if (creq->len > 0 || creq->method == EVHTTP_REQ_POST || creq->method == EVHTTP_REQ_PUT) {
        char n[24];

        snprintf(n, sizeof(n), "%zu", creq->len);
        evhttp_add_header(h, "Content-Length", n);
    }
    if (creq->len > 0)
        evbuffer_add(evhttp_request_get_output_buffer(evreq), creq->body, creq->len);

    client->submitting = true;
    client->depth++;
    r = evhttp_make_request(client->evcon, evreq, creq->method, creq->path);
    client->depth--;
    client->submitting = false;
    if (r != 0 && !creq->deferred) {
        /*
         * Only an out-of-memory strdup fails here, and evhttp has then freed
         * evreq; report through the loop like any other failure.
         */
        creq->evreq = NULL;
        creq->deferred = true;
        creq->deferred_status = -EIO;
        event_del(creq->timer);
        event_active(creq->timer, EV_TIMEOUT, 1);
    }
}

static void client_pump_cb(evutil_socket_t fd, short what, void *arg)
{
    struct http_client *client = arg;
    struct http_client_req *creq = client->qhead;

    if (client->dying || client->active != NULL || creq == NULL)
        return;
    client->qhead = creq->qnext;
    if (client->qhead == NULL)
        client->qtail = NULL;
    creq->qnext = NULL;
    client_send(client, creq);
}

struct http_client *http_client_new(struct event_base *base, const char *host_port,
                                    unsigned timeout_ms, const char *token)
{
    struct http_client *client;
    char host[HTTP_HOST_MAX];
    struct timeval tv;
    uint16_t port;

    if (base == NULL || http_parse_host_port(host_port, host, sizeof(host), &port, false) < 0)
        return NULL;
    if (token != NULL && (*token == '\0' || strpbrk(token, "\r\n") != NULL))
        token = NULL;
    client = xcalloc(1, sizeof(*client));
    client->base = base;
    client->timeout_ms = timeout_ms != 0 ? timeout_ms : HTTP_CLIENT_TIMEOUT_MS;
    client->evcon = evhttp_connection_base_new(base, NULL, host, port);
    client->pump_ev = event_new(base, -1, 0, client_pump_cb, client);
    if (client->evcon == NULL || client->pump_ev == NULL) {
        if (client->evcon != NULL)
            evhttp_connection_free(client->evcon);
        if (client->pump_ev != NULL)
            event_free(client->pump_ev);
        free(client);
        return NULL;
    }
    tv = http_tv(client->timeout_ms);
    evhttp_connection_set_timeout_tv(client->evcon, &tv);
    evhttp_connection_set_retries(client->evcon, 0);
    evhttp_connection_set_max_body_size(client->evcon, HTTP_CLIENT_MAX_BODY);
    evhttp_connection_set_max_headers_size(client->evcon, HTTP_CLIENT_MAX_HEADERS);
    /*
     * READ_ON_WRITE_ERROR: a server that rejects a large body (413) closes
     * while we are still writing; read its answer instead of reporting EPIPE.
     * REUSE_CONNECTED_ADDR: reconnect without resolving the name again.
     */
    evhttp_connection_set_flags(client->evcon,
                                EVHTTP_CON_READ_ON_WRITE_ERROR | EVHTTP_CON_REUSE_CONNECTED_ADDR);
    client->host_header = xstrdup(host_port);
    if (token != NULL)
        client->authorization = xasprintf("Bearer %s", token);
    return client;
}

static void client_destroy(struct http_client *client)
{
    if (client->evcon != NULL)
        evhttp_connection_free(client->evcon); /* frees its requests, calls nothing */
    while (client->head != NULL)
        client_unlink_free(client->head);
    event_free(client->pump_ev);
    free(client->host_header);
    free(client->authorization);
    free(client);
}

static void client_free_deferred_cb(evutil_socket_t fd, short what, void *arg)
{
    client_destroy(arg);
}

void http_client_free(struct http_client *client)
{
    static const struct timeval now = {0, 0};
    struct http_client_reply reply = {.body = ""};

    if (client == NULL || client->dying)
        return;
    client->dying = true;
    client->depth++;
    for (struct http_client_req *c = client->head; c != NULL; c = c->next) {
        http_client_cb cb = c->cb;

        if (cb == NULL)
            continue;
        c->cb = NULL;
        event_del(c->timer);
        cb(-ECANCELED, &reply, c->arg);
    }
    client->depth--;
    if (client->depth == 0) {
        client_destroy(client);
    } else if (event_base_once(client->base, -1, EV_TIMEOUT, client_free_deferred_cb, client,
                               &now) < 0) {
        log_debug("http_client_free_leak", "reason=event_base_once");
    }
}

static int client_enqueue(struct http_client *client, enum evhttp_cmd_type method,
                          const char *path, const char *content_type, const void *body,
                          size_t len, bool idempotent, http_client_cb cb, void *arg)
{
    struct http_client_req *creq;

    if (client->dying)
        return -ECANCELED;
    if (path == NULL || path[0] != '/' || strpbrk(path, " \r\n") != NULL || cb == NULL ||
        (len > 0 && body == NULL) ||
        (content_type != NULL && strpbrk(content_type, "\r\n") != NULL))
        return -EINVAL;
    switch (method) {
    case EVHTTP_REQ_GET:
    case EVHTTP_REQ_POST:
    case EVHTTP_REQ_DELETE:
    case EVHTTP_REQ_PUT:
    case EVHTTP_REQ_HEAD:
        break;
    default:
        return -EINVAL;
    }
    creq = xcalloc(1, sizeof(*creq));
    creq->client = client;
    creq->cb = cb;
    creq->arg = arg;
    creq->method = method;
    creq->path = xstrdup(path);
    creq->content_type = content_type != NULL ? xstrdup(content_type) : NULL;
    if (len > 0) {
        creq->body = xmalloc(len);
        memcpy(creq->body, body, len);
    }
    creq->len = len;
    creq->idempotent = idempotent;
    creq->timer = evtimer_new(client->base, client_timer_cb, creq);
    if (creq->timer == NULL) {
        free(creq->path);
        free(creq->content_type);
        free(creq->body);
        free(creq);
        return -ENOMEM;
    }
    client_link(client, creq);
    if (client->qtail != NULL)
        client->qtail->qnext = creq;
    else
        client->qhead = creq;
    client->qtail = creq;
    client_pump(client);
    return 0;
}

int http_client_request(struct http_client *client, enum evhttp_cmd_type method, const char *path,
                        const char *content_type, const void *body, size_t len, http_client_cb cb,
                        void *arg)
{
    return client_enqueue(client, method, path, content_type, body, len,
                          method != EVHTTP_REQ_POST, cb, arg);
}

int http_client_request_idempotent(struct http_client *client, enum evhttp_cmd_type method,
                                   const char *path, const char *content_type, const void *body,
                                   size_t len, http_client_cb cb, void *arg)
{
    return client_enqueue(client, method, path, content_type, body, len, true, cb, arg);
}

unsigned http_client_pending(const struct http_client *client)
{
    return client->npending;
}

/* Blocking fetch. */

struct fetch_state {
    struct event_base *base;
    bool done;
    int status;
    struct http_response resp;
};

static void fetch_cb(int status, const struct http_client_reply *reply, void *arg)
{
    struct fetch_state *st = arg;
    const char *server;

    st->done = true;
    st->status = status;
    if (status > 0) {
        st->resp.status = status;
        st->resp.body = xmalloc(reply->body_len + 1);
        memcpy(st->resp.body, reply->body, reply->body_len);
        st->resp.body[reply->body_len] = '\0';
        st->resp.body_len = reply->body_len;
        snprintf(st->resp.reason, sizeof(st->resp.reason), "%s",
                 reply->reason != NULL ? reply->reason : "");
        st->resp.retry_after_s = reply->retry_after_s;
        snprintf(st->resp.content_type, sizeof(st->resp.content_type), "%s",
                 reply->content_type != NULL ? reply->content_type : "");
        server = reply->headers != NULL ? evhttp_find_header(reply->headers, "Server") : NULL;
        snprintf(st->resp.server, sizeof(st->resp.server), "%s", server != NULL ? server : "");
        server = reply->headers != NULL ? evhttp_find_header(reply->headers, "X-Sluice-Leader")
                                        : NULL;
        snprintf(st->resp.leader, sizeof(st->resp.leader), "%s", server != NULL ? server : "");
    }
    event_base_loopbreak(st->base);
}

static int fetch_method(const char *m, enum evhttp_cmd_type *ret)
{
    static const struct {
        const char *name;
        enum evhttp_cmd_type type;
    } methods[] = {{"GET", EVHTTP_REQ_GET},
                   {"POST", EVHTTP_REQ_POST},
                   {"DELETE", EVHTTP_REQ_DELETE},
                   {"PUT", EVHTTP_REQ_PUT},
                   {"HEAD", EVHTTP_REQ_HEAD}};

    for (size_t i = 0; m != NULL && i < sizeof(methods) / sizeof(methods[0]); i++) {
        if (strcmp(m, methods[i].name) == 0) {
            *ret = methods[i].type;
            return 0;
        }
    }
    return -EINVAL;
}

int http_fetch(const char *host_port, const char *method, const char *path,
               const char *content_type, const void *body, size_t len, const char *token,
               unsigned timeout_ms, struct http_response *ret)
{
    struct fetch_state st = {0};
    struct http_client *client = NULL;
    enum evhttp_cmd_type type;
    int r;

    r = fetch_method(method, &type);
    if (r < 0)
        return r;
    st.base = event_base_new();
    if (st.base == NULL)
        return -ENOMEM;
    client = http_client_new(st.base, host_port, timeout_ms, token);
    if (client == NULL) {
        r = -EINVAL;
        goto out;
    }
    r = http_client_request(client, type, path, content_type, body, len, fetch_cb, &st);
    if (r < 0)
        goto out;
    while (!st.done) {
        /* 1 means no events left, which cannot happen while the deadline is pending. */
        if (event_base_dispatch(st.base) != 0 && !st.done) {
            r = -EIO;
            goto out;
        }
    }
    r = st.status > 0 ? 0 : st.status;
out:
    http_client_free(client);
    event_base_free(st.base);
    if (r == 0)
        *ret = st.resp;
    else
        free(st.resp.body);
    return r;
}

void http_response_done(struct http_response *r)
{
    if (r == NULL)
        return;
    free(r->body);
    memset(r, 0, sizeof(*r));
}
