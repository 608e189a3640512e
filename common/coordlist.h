/*
 * coordlist: the coordinators a client may talk to, and which one to talk
 * to next. Every client of the coordinator (the CLIs, a node's reports and
 * claims, the broker, the farm's virtual nodes) takes --coordinator as a
 * comma-separated list "A,B,C" and goes through here, so that the rule is
 * written once:
 *
 *  - send to the current address (the first one at the start);
 *  - a standby's answer is a 503 whose Error has the code "standby"
 *    (COORDLIST_STANDBY_CODE) or that names the leader in X-Sluice-Leader;
 *    one naming the leader: go to that leader next, whether or not it is
 *    in the list (to its place in the list when it is there);
 *  - no answer (refused, reset, timed out) or a standby's 503 naming no
 *    other leader: go to the next address of the list, round and round;
 *  - any other answer, errors included, is the leader's: stay. A 503 for
 *    a reason of the leader's own (segments unavailable, not ready) is
 *    one: it is not taken for a standby's.
 *
 * Three parts: the pure policy (coordlist_answer, tested without a loop),
 * a blocking fetch that applies it within one deadline (the CLIs), and an
 * asynchronous client over common/http that applies it between requests
 * (the daemons: a failed request is not sent again here, the next one goes
 * to the new address; their reports and polls recur every interval).
 */
#ifndef SLUICE_COORDLIST_H
#define SLUICE_COORDLIST_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct http_client;
struct http_client_reply;
struct http_response;

/* The header a standby names the leader in ("host:port"). */
#define COORDLIST_LEADER_HEADER "X-Sluice-Leader"
/* The Error code of a standby's 503 (coordinator/coord.c coord_standby_reply). */
#define COORDLIST_STANDBY_CODE "standby"
/* Addresses in one list. */
#define COORDLIST_MAX 16

struct coordlist;

/*
 * Parses "HOST:PORT[,HOST:PORT...]" (spaces around commas allowed). Returns
 * 0 with *ret set, or -EINVAL with err naming the bad element ("" or not
 * HOST:PORT) or -E2BIG (more than COORDLIST_MAX); *ret is untouched then.
 */
int coordlist_new(const char *csv, struct coordlist **ret, char *err, size_t err_len);

/* NULL-safe. */
void coordlist_free(struct coordlist *l);

/*
 * A copy of l (its addresses and where it stands) for another client,
 * which then moves on its own: a list parsed once serves all the clients
 * of a process. Free it with coordlist_free().
 */
struct coordlist *coordlist_copy(const struct coordlist *l);

/* Addresses in the list (a followed leader outside it not counted). */
size_t coordlist_count(const struct coordlist *l);

/* The i-th address of the list, i < coordlist_count(). */
const char *coordlist_at(const struct coordlist *l, size_t i);

/* The address to send to now: an address of the list, or a leader a standby named. */
const char *coordlist_current(const struct coordlist *l);

/*
 * Takes the answer of coordlist_current(): status is the HTTP status, or a
 * negative errno when no answer came; leader is the answer's
 * X-Sluice-Leader (NULL or "": none); code is the code of the Error in its
 * body (NULL or "": none; coordlist_error_code()). Returns true when the
 * client must go elsewhere, and coordlist_current() then names where (see
 * the top of this file); false when the current address answered as the
 * leader does (anything but a standby's 503), or for -ECANCELED (the
 * client itself gave up).
 */
bool coordlist_answer(struct coordlist *l, int status, const char *leader, const char *code);

/*
 * The code of the Error a coordinator's answer body holds, copied into buf
 * (buf_len bytes, at least 1): "" when the body is not an Error.
 */
const char *coordlist_error_code(const void *body, size_t len, char *buf, size_t buf_len);

/*
 * One blocking request (http_fetch) that follows the leader: tried on
 * coordlist_current(), then wherever coordlist_answer() says, until an
 * answer other than a standby's comes, within timeout_ms in all (each attempt gets
 * what is left; after a whole round of the list with no leader it waits
 * 200 ms, an election takes about a second). Returns 0 with *ret the
 * leader's answer, or the last standby's 503 when no leader answered in time; or the
 * last negative errno when no address answered at all (http_fetch's
 * errors). The list keeps the address that answered, for the next call.
 */
int coordlist_fetch(struct coordlist *l, const char *method, const char *path,
                    const char *content_type, const void *body, size_t len, const char *token,
                    unsigned timeout_ms, struct http_response *ret);

/* ---- the asynchronous client ---- */

struct coordclient;

/*
 * An http_client (common/http.h) to the current coordinator of l, which it
 * takes over (freed with it). timeout_ms and token as for
 * http_client_new(). Returns NULL (l freed) if the address is unusable.
 */
struct coordclient *coordclient_new(struct event_base *base, struct coordlist *l,
                                    unsigned timeout_ms, const char *token);

/* NULL-safe; requests in flight end with -ECANCELED as in http_client_free(). */
void coordclient_free(struct coordclient *cc);

/* The client to queue the next request on (valid until coordclient_answer moves). */
struct http_client *coordclient_client(struct coordclient *cc);

/* The address requests go to now. */
const char *coordclient_addr(const struct coordclient *cc);

/*
 * To be called first in the callback of every request queued on the
 * client, with its status and reply. When the answer says to go elsewhere,
 * the client is replaced by one to the new address (the old one is freed:
 * requests still queued on it end with -ECANCELED), the move is logged
 * (coordinator_follow from= to= why=) and true is returned. The request
 * itself is not sent again.
 */
bool coordclient_answer(struct coordclient *cc, int status, const struct http_client_reply *reply);

/* Times coordclient_answer moved (for metrics and tests). */
unsigned long coordclient_moves(const struct coordclient *cc);

#endif
