/*
 * coordlist: which coordinator of a --coordinator list to talk to (see
 * coordlist.h). Expected load: one decision per request to the
 * coordinator, a few per second per client; lists of two or three.
 */
#include "coordlist.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "clock.h"
#include "http.h"
#include "log.h"
#include "wire.h"
#include "xmalloc.h"

struct coordlist {
    char addr[COORDLIST_MAX][WIRE_ADDR_MAX + 1];
    size_t n;
    size_t cur;                           /* index into addr, when followed is "" */
    char followed[WIRE_ADDR_MAX + 1];     /* a leader a standby named; "": none */
};

int coordlist_new(const char *csv, struct coordlist **ret, char *err, size_t err_len)
{
    struct coordlist *l;
    const char *p = csv != NULL ? csv : "";
    struct wire_error werr;

    l = xcalloc(1, sizeof(*l));
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
        char one[WIRE_ADDR_MAX + 1];

        while (len > 0 && *p == ' ') {
            p++;
            len--;
        }
        while (len > 0 && p[len - 1] == ' ')
            len--;
        if (len == 0 || len > WIRE_ADDR_MAX) {
            snprintf(err, err_len, "--coordinator \"%s\": element %zu is %s", csv != NULL ? csv : "",
                     l->n + 1, len == 0 ? "empty" : "too long");
            free(l);
            return -EINVAL;
        }
        memcpy(one, p, len);
        one[len] = '\0';
        if (wire_check_addr("--coordinator", one, &werr) < 0 || strstr(one, "://") != NULL) {
            snprintf(err, err_len, "--coordinator \"%s\" is not an address: expected HOST:PORT",
                     one);
            free(l);
            return -EINVAL;
        }
        if (l->n == COORDLIST_MAX) {
            snprintf(err, err_len, "--coordinator: more than %d addresses", COORDLIST_MAX);
            free(l);
            return -E2BIG;
        }
        memcpy(l->addr[l->n++], one, len + 1);
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    *ret = l;
    return 0;
}

void coordlist_free(struct coordlist *l)
{
    free(l);
}

struct coordlist *coordlist_copy(const struct coordlist *l)
{
    struct coordlist *c = xmalloc(sizeof(*c));

    *c = *l;
    return c;
}

size_t coordlist_count(const struct coordlist *l)
{
    return l->n;
}

const char *coordlist_at(const struct coordlist *l, size_t i)
{
    return i < l->n ? l->addr[i] : NULL;
}

const char *coordlist_current(const struct coordlist *l)
{
    return l->followed[0] != '\0' ? l->followed : l->addr[l->cur];
}

const char *coordlist_error_code(const void *body, size_t len, char *buf, size_t buf_len)
{
    struct wire_error e;

    buf[0] = '\0';
    if (body != NULL && len > 0 && wire_error_decode(body, len, &e) == 0)
        snprintf(buf, buf_len, "%s", e.code);
    return buf;
}

bool coordlist_answer(struct coordlist *l, int status, const char *leader, const char *code)
{
    const char *cur = coordlist_current(l);
    struct wire_error werr;
    bool named = leader != NULL && leader[0] != '\0';

    if (status == -ECANCELED || (status >= 0 && status != 503))
        return false;
    /* A 503 of the leader's own (no leader named, not "standby"): its answer. */
    if (status == 503 && !named && (code == NULL || strcmp(code, COORDLIST_STANDBY_CODE) != 0))
        return false;
    if (status == 503 && leader != NULL && leader[0] != '\0' && strcmp(leader, cur) != 0 &&
        strlen(leader) <= WIRE_ADDR_MAX && wire_check_addr("leader", leader, &werr) == 0) {
        /* A standby named the leader: go there, in the list or not. */
        for (size_t i = 0; i < l->n; i++) {
            if (strcmp(l->addr[i], leader) == 0) {
                l->cur = i;
                l->followed[0] = '\0';
                return true;
            }
        }
        snprintf(l->followed, sizeof(l->followed), "%s", leader);
        return true;
    }
    /*
     * No answer, or a standby that knows no other leader: the next of the
     * list. A followed leader outside the list that failed gives way to
     * the list where it was left.
     */
    if (l->followed[0] != '\0')
        l->followed[0] = '\0';
    else
        l->cur = (l->cur + 1) % l->n;
    return true;
}

int coordlist_fetch(struct coordlist *l, const char *method, const char *path,
                    const char *content_type, const void *body, size_t len, const char *token,
                    unsigned timeout_ms, struct http_response *ret)
{
    uint64_t start = clock_mono_ns() / 1000000, now = start;
    struct http_response last = {0};
    bool have_last = false;
    size_t since_leader_hint = 0;
    int r = -ETIMEDOUT;

    do {
        struct http_response hr;
        const char *leader;
        unsigned left = timeout_ms - (unsigned)(now - start);

        char code[sizeof(((struct wire_error *)0)->code)] = "";

        r = http_fetch(coordlist_current(l), method, path, content_type, body, len, token, left,
                       &hr);
        leader = r == 0 ? hr.leader : NULL;
        if (r == 0)
            coordlist_error_code(hr.body, hr.body_len, code, sizeof(code));
        if (!coordlist_answer(l, r == 0 ? hr.status : r, leader, code) && r == 0) {
            http_response_done(&last);
            *ret = hr;
            return 0;
        }
        since_leader_hint = leader != NULL && leader[0] != '\0' ? 0 : since_leader_hint + 1;
        if (r == 0) {
            http_response_done(&last);
            last = hr;
            have_last = true;
        }
        /* A whole round with no leader named: an election is under way. */
        if (since_leader_hint >= l->n) {
            struct timespec pause = {0, 200 * 1000000L};

            since_leader_hint = 0;
            nanosleep(&pause, NULL);
        }
        now = clock_mono_ns() / 1000000;
    } while (now - start < timeout_ms);
    if (have_last) {
        *ret = last;
        return 0;
    }
    return r < 0 ? r : -ETIMEDOUT;
}

/* ---- the asynchronous client ---- */

struct coordclient {
    struct event_base *base;
    struct coordlist *l;
    struct http_client *client;
    unsigned timeout_ms;
    char *token;
    unsigned long moves;
};

struct coordclient *coordclient_new(struct event_base *base, struct coordlist *l,
                                    unsigned timeout_ms, const char *token)
{
    struct coordclient *cc = xcalloc(1, sizeof(*cc));

    cc->base = base;
    cc->l = l;
    cc->timeout_ms = timeout_ms;
    cc->token = token != NULL ? xstrdup(token) : NULL;
    cc->client = http_client_new(base, coordlist_current(l), timeout_ms, token);
    if (cc->client == NULL) {
        coordclient_free(cc);
        return NULL;
    }
    return cc;
}

void coordclient_free(struct coordclient *cc)
{
    if (cc == NULL)
        return;
    http_client_free(cc->client);
    coordlist_free(cc->l);
    free(cc->token);
    free(cc);
}

struct http_client *coordclient_client(struct coordclient *cc)
{
    return cc->client;
}

const char *coordclient_addr(const struct coordclient *cc)
{
    return coordlist_current(cc->l);
}

bool coordclient_answer(struct coordclient *cc, int status, const struct http_client_reply *reply)
{
    const char *leader = NULL;
    char from[WIRE_ADDR_MAX + 1], why[48], code[sizeof(((struct wire_error *)0)->code)] = "";
    struct http_client *next;

    if (status == 503 && reply != NULL && reply->headers != NULL)
        leader = evhttp_find_header(reply->headers, COORDLIST_LEADER_HEADER);
    if (status == 503 && reply != NULL)
        coordlist_error_code(reply->body, reply->body_len, code, sizeof(code));
    snprintf(from, sizeof(from), "%s", coordlist_current(cc->l));
    if (!coordlist_answer(cc->l, status, leader, code))
        return false;
    if (status < 0)
        snprintf(why, sizeof(why), "%s", strerror(-status));
    else
        snprintf(why, sizeof(why), "%s", leader != NULL ? "standby_named_leader" : "standby");
    cc->moves++;
    log_info("coordinator_follow", "from=%s to=%s why=%s", from, coordlist_current(cc->l),
             log_q(why));
    next = http_client_new(cc->base, coordlist_current(cc->l), cc->timeout_ms, cc->token);
    if (next == NULL)
        return true; /* cannot happen: every address was checked; keep the old client */
    http_client_free(cc->client);
    cc->client = next;
    return true;
}

unsigned long coordclient_moves(const struct coordclient *cc)
{
    return cc->moves;
}
