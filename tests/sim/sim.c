/*
 * sluice-sim: a deterministic simulation of Sluice's placement policy, in the
 * manner of FoundationDB's and TigerBeetle's simulators. It links the real,
 * pure policy code, not copies of it:
 *
 *   coordinator/placer     blind round robin, refusals, back-off, exclusions
 *   coordinator/window     each node's dispatch window
 *   coordinator/intake     delta reports: a report against the node's acknowledged base
 *   coordinator/reconcile  the walk of a node's report over the model (a plan)
 *   coordinator/membership the rules that move a node's state
 *   node/admission         the gates, the cost model and the reservation ledger
 *   node/shed              which copy a node sheds under sustained pressure
 *   node/report            report_state: full reports and deltas, one at a time
 *
 * and runs them in simulated time (a virtual clock: every call takes now_ms,
 * and common/clock's test hook points at the same clock) with one seeded
 * PRNG (xoshiro256**, seeded by splitmix64 from --seed). What the daemons do
 * around the policy (HTTP, the catalog, the loop) is modelled here in a few
 * functions that mirror their glue: dispatch.c's callbacks and window
 * answers, api.c's report handler, model.c's application of a reconcile
 * plan, membership.c's one setter and its timeout scan, node.c's
 * assignment path.
 *
 * The world: --nodes nodes, each with a memory limit, and --segments
 * segments with a replication factor (1..3) and a real footprint that
 * differs from rows x avg_row_size by a per-table factor (0.4, 1 or 2) and
 * per-segment noise; admission only learns it from loads. For --chaos
 * seconds, faults happen: nodes crash (restarting after a while with their
 * LOADED copies or with an empty disk), nodes turn slow (answers and reports
 * late by up to 12 s, past --assign-timeout and --node-timeout), pressure
 * waves rise and fall on nodes (PSI stall signals; a fifth of them critical,
 * which makes nodes shed), and messages are lost (assignments, answers,
 * reports, their answers) or duplicated (assignments resent, reports sent
 * twice: right after, or late, after newer ones). Then the
 * world is quiet: every node is back, nothing is lost, and the simulation
 * runs until placement has nothing left to do (or --quiet-max).
 *
 * Invariants, checked at every step (see check_* below and DESIGN.md,
 * "Testing"):
 *   limit        no node's resident segment memory (the real footprints of
 *                its LOADING and LOADED copies) exceeds its memory limit, and
 *                every acceptance satisfies admission's own contract
 *                (wss + reserved + cost <= admit limit, loads <= --max-loads);
 *   replication  the live nodes holding a copy of a segment are at most its
 *                replication, except for at most EXCESS_MS after they first
 *                exceed it (an extra copy is dropped at a report: see
 *                sim_excess_bound_ms()); the placer never sends a segment to
 *                a node the model counts as a holder;
 *   quiet        once the world is quiet and placement has settled, every
 *                registered (acknowledged) segment is LOADED on exactly its
 *                replication of live nodes, the model agreeing with the
 *                nodes copy for copy, or is explained: still pending in the
 *                placer after a capacity refusal (the cluster is full).
 *
 * Same seed, same run: the output's digest hashes every segment's holders
 * and state at the end; --check-determinism runs each seed again in a fresh
 * process (new address layout) and compares.
 *
 * Expected load: 100 nodes and 10^4 segments take about a second per seed;
 * 1,000 nodes and 10^6 segments a few minutes and a few GB.
 */
#include "coord_int.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admission.h"
#include "clock.h"
#include "membership.h"
#include "placer.h"
#include "reason.h"
#include "reconcile.h"
#include "report.h"
#include "shed.h"
#include "strmap.h"
#include "window.h"
#include "xmalloc.h"

/* The daemons' defaults (README flag tables). */
#define NODE_TIMEOUT_MS   5000u
#define ASSIGN_TIMEOUT_MS 10000u
#define DROP_RETRY_MS     60000u
#define MAX_IN_FLIGHT     64u
#define REPORT_MS         1000u
#define NODE_TICK_MS      100u
#define MEMBERSHIP_MS     COORD_MEMBERSHIP_MS
/* Longest extra delay of a slow node's answers and reports. */
#define SLOW_MAX_MS 12000u
/* Network delay: 1..3 ms each way. */
#define NET_MS 3u

/* ---- randomness: splitmix64 seeds xoshiro256** ------------------------------ */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rng_s[4];

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(void)
{
    uint64_t r = rotl(rng_s[1] * 5, 7) * 9, t = rng_s[1] << 17;

    rng_s[2] ^= rng_s[0];
    rng_s[3] ^= rng_s[1];
    rng_s[1] ^= rng_s[2];
    rng_s[0] ^= rng_s[3];
    rng_s[2] ^= t;
    rng_s[3] = rotl(rng_s[3], 45);
    return r;
}

static void rng_seed(uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        rng_s[i] = splitmix64(&seed);
}

/* Uniform in [0, n) (n > 0); the bias of a 64-bit modulo is negligible here. */
static uint64_t rng_below(uint64_t n)
{
    return rng_next() % n;
}

static double rng_unit(void)
{
    return (double)(rng_next() >> 11) / 9007199254740992.0;
}

static bool rng_chance(double p)
{
    return p > 0 && rng_unit() < p;
}

/* ---- the world ---------------------------------------------------------------- */

struct sim_config {
    uint64_t seed;
    unsigned nodes;
    size_t segments;
    unsigned chaos_s;     /* seconds of faults */
    unsigned quiet_max_s; /* the quiet world must settle within this */
    double fault_rate;    /* multiplies every fault's rate; 0: none */
    double headroom;      /* the nodes' admit limits over the copies' real footprints */
    int verbose;
};

/* A copy on a node: the node's truth, which the coordinator only learns from reports. */
struct sim_copy {
    uint32_t seg;
    enum wire_segment_state state; /* LOADING, LOADED, DROPPED (shed, not yet cleared) */
    enum wire_reason reason;       /* why DROPPED */
    uint32_t gen;                  /* its load's number: a stale LOAD_DONE finds another */
    uint64_t fp;                   /* real footprint on this node */
};

struct sim_node {
    char id[16];
    struct coord_node *cn; /* the coordinator's model of it */
    uint64_t capacity;     /* memory limit */
    double fp_mult;        /* this node's footprints relative to the segment's */
    bool crashed, keep_on_restart;
    uint32_t epoch; /* incarnation: messages to an older one are lost */
    uint64_t slow_until, slow_ms;
    uint64_t wave_start, wave_end; /* a pressure wave: 0 none */
    double wave_peak;
    bool wave_critical;
    struct admission_state ast;
    struct admission_cost cost;
    struct admission_ledger *ledger;
    unsigned loads;          /* loads in flight */
    uint64_t resident;       /* real footprint of LOADING + LOADED copies */
    uint64_t loaded_bytes;   /* real footprint of LOADED copies: the measured working set */
    struct strmap *copies;   /* segment id -> struct sim_copy */
    uint64_t report_last_at; /* arrival of its last report: reports never overtake */
    struct report_state *rs; /* delta reports, this incarnation's numbering and base */
    uint64_t report_seq;     /* the report in flight (one at a time); 0: none */
    unsigned notes;          /* what answers said, for the next coordinator tick */
    uint32_t gen;
};

struct sim_seg {
    struct coord_seg *cs;  /* the coordinator's model */
    uint64_t fp;           /* real footprint (before the node's multiplier) */
    unsigned live;         /* copies LOADING or LOADED on nodes that run */
    uint64_t excess_since; /* live > replication since (0: not) */
    size_t excess_pos;     /* its place in the excess list */
    bool registered;
};

/* An assignment the coordinator sent and waits for. */
struct sim_attempt {
    uint64_t id;
    uint32_t node, seg;
    uint64_t seq; /* its window number */
    bool outstanding;
};

enum ev_kind {
    SE_ASSIGN,        /* an assignment reaches its node */
    SE_ANSWER,        /* the node's answer reaches the coordinator */
    SE_TIMEOUT,       /* the coordinator's client gives up on an assignment */
    SE_LOAD_DONE,     /* a node finished loading a copy */
    SE_REPORT,        /* a node sends its report */
    SE_REPORT_ARRIVE, /* ... which reaches the coordinator */
    SE_DROPS,         /* the report's answer (copies to drop, ack, send_full) reaches the node */
    SE_REPORT_LOST,   /* the node's client gives up on a report or its answer */
    SE_NODE_TICK,     /* every node's 100 ms tick: admission_observe, shedding */
    SE_COORD_TICK,    /* the coordinator's tick: notes, windows, placer_tick */
    SE_MEMBERSHIP,    /* the coordinator's timeout scan */
    SE_REGISTER,      /* a batch of segments is registered */
    SE_CRASH,
    SE_RESTART,
    SE_SLOW,
    SE_WAVE,
    SE_CHAOS_END,
};

/* A report in flight: report_build()'s message, copied (full or a delta). */
struct sim_report {
    uint32_t node, epoch, refs;
    struct wire_node_report rep; /* segments and removed owned here */
};

struct ev {
    uint64_t t, seq;
    enum ev_kind kind;
    uint32_t node, seg, epoch, gen;
    uint64_t attempt;
    int status;
    enum wire_reason reason;
    uint32_t retry_ms;
    bool answer;            /* SE_ASSIGN: this delivery answers (a duplicated one answers once) */
    void *ptr;              /* SE_REPORT_ARRIVE: struct sim_report; SE_DROPS: uint32_t[] */
    uint64_t rseq, ack_seq; /* SE_DROPS, SE_REPORT_LOST: the report's seq, the answer's ack */
    bool send_full;
    size_t n;
};

struct sim {
    struct sim_config cfg;
    uint64_t now;
    bool chaos; /* faults and message loss happen */
    struct ev *heap;
    size_t n_ev, cap_ev;
    uint64_t ev_seq;
    struct coord model; /* the coordinator's model: segs and nodes maps only */
    struct placer *placer;
    struct sim_node *nodes;
    struct sim_seg *segs;
    size_t registered;
    struct sim_attempt *att;
    size_t n_att;
    size_t *excess;
    size_t n_excess, cap_excess;
    uint32_t *noted; /* nodes with notes, in the order noted */
    size_t n_noted, cap_noted;
    uint64_t tick_at; /* the coordinator tick scheduled (UINT64_MAX: none) */
    struct admission_config acfg;
    struct wire_segment_status *rbuf, *scratch; /* a node's set to report; intake_set()'s */
    size_t n_rbuf, cap_rbuf, cap_scratch;
    uint64_t verdicts[INTAKE_VERDICT_COUNT_];
    struct reconcile_plan plan;
    struct reconcile_plan whole; /* the whole reconcile an incremental one is checked against */
    uint64_t incremental;        /* delta reports reconciled incrementally, each checked */
    uint64_t excess_bound_ms;
    /* counters, printed at the end */
    uint64_t events, assigns, accepts, refusals[WIRE_REASON_COUNT_], timeouts, crashes,
        restarts_empty, slows, waves, sheds, lost_msgs, dup_msgs, reports, drops, excess_max_ms;
};

static struct sim S;

/* ---- failing an invariant ------------------------------------------------------ */

static void sim_fail(const char *inv, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sim_fail(const char *inv, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "sim: seed=%" PRIu64 " t=%" PRIu64 "ms INVARIANT %s: ", S.cfg.seed, S.now, inv);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr,
            "\nreproduce: sluice-sim --seed %" PRIu64 " --nodes %u --segments %zu --chaos %u "
            "--fault-rate %g --headroom %g\n",
            S.cfg.seed, S.cfg.nodes, S.cfg.segments, S.cfg.chaos_s, S.cfg.fault_rate,
            S.cfg.headroom);
    exit(1);
}

/* ---- the event queue: a binary heap on (time, sequence), so ties keep their order --- */

static bool ev_before(const struct ev *a, const struct ev *b)
{
    return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

static struct ev *ev_new(uint64_t t, enum ev_kind kind)
{
    static struct ev e;

    memset(&e, 0, sizeof(e));
    e.t = t < S.now ? S.now : t;
    e.kind = kind;
    return &e;
}

static void ev_push(const struct ev *e)
{
    size_t i;

    if (S.n_ev == S.cap_ev) {
        S.cap_ev = S.cap_ev * 2 + 1024;
        S.heap = xreallocarray(S.heap, S.cap_ev, sizeof(*S.heap));
    }
    i = S.n_ev++;
    S.heap[i] = *e;
    S.heap[i].seq = S.ev_seq++;
    while (i > 0 && ev_before(&S.heap[i], &S.heap[(i - 1) / 2])) {
        struct ev t = S.heap[i];

        S.heap[i] = S.heap[(i - 1) / 2];
        S.heap[(i - 1) / 2] = t;
        i = (i - 1) / 2;
    }
}

static struct ev ev_pop(void)
{
    struct ev top = S.heap[0];
    size_t i = 0;

    S.heap[0] = S.heap[--S.n_ev];
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;

        if (l < S.n_ev && ev_before(&S.heap[l], &S.heap[m]))
            m = l;
        if (r < S.n_ev && ev_before(&S.heap[r], &S.heap[m]))
            m = r;
        if (m == i)
            break;
        struct ev t = S.heap[i];
        S.heap[i] = S.heap[m];
        S.heap[m] = t;
        i = m;
    }
    return top;
}

/* ---- the virtual clock, for anything that reads common/clock ------------------- */

static uint64_t sim_mono_ns(void)
{
    return S.now * 1000000ull;
}

static uint64_t sim_wall_ms(void)
{
    return 1700000000000ull + S.now;
}

static const struct clock_source sim_clock = {sim_mono_ns, sim_wall_ms};

/* ---- names ----------------------------------------------------------------------- */

static uint32_t node_index(const char *id)
{
    return (uint32_t)strtoul(id + 1, NULL, 10);
}

static uint32_t seg_index(const char *id)
{
    return (uint32_t)strtoul(id + 1, NULL, 10);
}

/* A node process's incarnation (never 0, which report_state_new() would make random). */
static uint64_t incarnation(const struct sim_node *sn)
{
    return (uint64_t)(node_index(sn->id) + 1) << 32 | (sn->epoch + 1);
}

static struct sim_node *node_of(const char *id)
{
    return &S.nodes[node_index(id)];
}

/* ---- the replication invariant's bookkeeping ------------------------------------- */

/*
 * How long a segment may sit on more live nodes than its replication. An
 * extra copy comes from a copy the model does not know (an accepted
 * assignment whose answer was lost or came too late, a node back from DOWN
 * with its copies) or from an adoption while the known copies were not yet
 * LOADED on live nodes; either is dropped at a report of a node holding
 * it, as soon as replication live LOADED copies exist elsewhere. So the
 * bound is: the new copies loading (the load time is short), a holder
 * that is SUSPECT or slow becoming DOWN or reporting again (node timeout),
 * and the reports that carry the verdict and its answer, each late by up
 * to a slow node's delay.
 */
static uint64_t sim_excess_bound_ms(void)
{
    return NODE_TIMEOUT_MS + 3 * (REPORT_MS + SLOW_MAX_MS) + COORD_REPORT_GRACE_MS;
}

static void excess_update(uint32_t si)
{
    struct sim_seg *g = &S.segs[si];
    bool over = g->live > g->cs->replication;

    if (over && g->excess_since == 0) {
        g->excess_since = S.now == 0 ? 1 : S.now;
        if (S.n_excess == S.cap_excess) {
            S.cap_excess = S.cap_excess * 2 + 64;
            S.excess = xreallocarray(S.excess, S.cap_excess, sizeof(*S.excess));
        }
        g->excess_pos = S.n_excess;
        S.excess[S.n_excess++] = si;
    } else if (!over && g->excess_since != 0) {
        uint64_t lasted = S.now - g->excess_since;

        if (lasted > S.excess_max_ms)
            S.excess_max_ms = lasted;
        S.excess[g->excess_pos] = S.excess[--S.n_excess];
        S.segs[S.excess[g->excess_pos]].excess_pos = g->excess_pos;
        g->excess_since = 0;
    }
}

static void live_add(uint32_t si, int d)
{
    S.segs[si].live = (unsigned)((int)S.segs[si].live + d);
    excess_update(si);
}

/* Every step: no segment has been over its replication for longer than the bound. */
static void check_replication(void)
{
    for (size_t i = 0; i < S.n_excess; i++) {
        struct sim_seg *g = &S.segs[S.excess[i]];

        if (S.now - g->excess_since > S.excess_bound_ms)
            sim_fail("replication",
                     "segment %s is on %u live nodes, replication %u, for %" PRIu64
                     " ms (bound %" PRIu64 " ms)",
                     g->cs->id, g->live, g->cs->replication, S.now - g->excess_since,
                     S.excess_bound_ms);
    }
}

/* ---- the coordinator's glue: model.c, dispatch.c and membership.c in miniature ---- */

static void coord_tick_at(uint64_t t)
{
    struct ev *e;

    if (t < S.now)
        t = S.now;
    if (t >= S.tick_at)
        return;
    S.tick_at = t;
    e = ev_new(t, SE_COORD_TICK);
    ev_push(e);
}

static void kick(void)
{
    coord_tick_at(S.now);
}

/* As model.c's coord_holder_add(), without the catalog. */
static void holder_add(struct coord_seg *s, struct coord_node *n, enum wire_segment_state st)
{
    struct coord_holder *h;

    if (coord_holder_find(s, n->id) != NULL)
        sim_fail("model", "segment %s counted twice on %s", s->id, n->id);
    if (s->n_holders == s->cap_holders) {
        s->cap_holders = s->cap_holders * 2 + 2;
        s->holders = xreallocarray(s->holders, s->cap_holders, sizeof(*s->holders));
    }
    h = &s->holders[s->n_holders++];
    h->node = n->id;
    h->state = st;
    h->since_ms = S.now;
    keymap_put(n->held, s);
    n->loading += st == WIRE_SEG_LOADING;
    reconcile_mark(n, s->id);
    reconcile_touch(&S.model, s, false);
}

/* As model.c's coord_holder_remove(). */
static void holder_remove(struct coord_seg *s, const char *node)
{
    struct coord_node *n = strmap_get(S.model.nodes, node);

    for (unsigned i = 0; i < s->n_holders; i++) {
        if (strcmp(s->holders[i].node, node) == 0) {
            if (n != NULL && s->holders[i].state == WIRE_SEG_LOADING && n->loading > 0)
                n->loading--;
            s->holders[i] = s->holders[--s->n_holders];
            break;
        }
    }
    if (n != NULL) {
        keymap_remove(n->held, s->id);
        reconcile_mark(n, s->id);
    }
}

/* As model.c's coord_seg_update() with dispatch.c's coord_rr_want(). */
static void seg_update(struct coord_seg *s)
{
    const char *holders[WIRE_REPLICATION_MAX * 2];
    unsigned n = 0;

    if (s->state == COORD_INVALID)
        return;
    s->state = coord_loaded_holders(s, NULL) >= s->replication ? COORD_LOADED : COORD_PENDING;
    if (s->n_holders >= s->replication) {
        placer_forget(S.placer, s->id);
        return;
    }
    for (unsigned i = 0; i < s->n_holders && n < sizeof(holders) / sizeof(holders[0]); i++)
        holders[n++] = s->holders[i].node;
    if (placer_want(S.placer, s->id, coord_seg_uri(s), s->row_count, s->avg_row_size, s->replication, holders,
                    n) < 0)
        sim_fail("model", "placer_want refused segment %s", s->id);
    kick();
}

/* As dispatch.c's coord_window_apply(). */
static void window_apply(struct coord_node *n)
{
    size_t room = window_room(&n->win, n->loading, S.now);

    if (n->win.paused_until > S.now &&
        (S.model.window_wake_ms == 0 || n->win.paused_until < S.model.window_wake_ms)) {
        S.model.window_wake_ms = n->win.paused_until;
        coord_tick_at(n->win.paused_until);
    }
    if (room == n->limit)
        return;
    if (placer_node_set_limit(S.placer, n->id, room) == 0) {
        if (room > n->limit)
            kick();
        n->limit = room;
    }
}

/* As membership.c's coord_node_set_state(): the one setter. */
static void set_state(struct coord_node *n, enum membership_state st)
{
    enum membership_state old = n->state;

    if (n->state == st) {
        struct placer_node_info pi;
        enum placer_node_state want = membership_placer_state(n->state, false);

        if (placer_node_lookup(S.placer, n->id, &pi) < 0 || pi.state != want) {
            placer_node_set(S.placer, n->id, want);
            kick();
        }
        return;
    }
    n->state = st;
    if (st == MEMBERSHIP_DOWN)
        window_init(&n->win);
    if (!membership_is_live(old) && membership_is_live(st))
        reconcile_node_back(&S.model, n);
    placer_node_set(S.placer, n->id, membership_placer_state(st, false));
    window_apply(n);
    kick();
}

static int collect_held(const char *key, void *value, void *arg)
{
    struct coord_seg ***p = arg;

    *(*p)++ = value;
    return 0;
}

/* As membership.c's coord_node_lost(): a DOWN node's copies are placed elsewhere. */
static void node_lost(struct coord_node *n)
{
    size_t count = keymap_count(n->held);
    struct coord_seg **v = xcalloc(count + 1, sizeof(*v)), **p = v;

    keymap_foreach(n->held, collect_held, &p);
    for (size_t i = 0; i < count; i++) {
        holder_remove(v[i], n->id);
        seg_update(v[i]);
    }
    free(v);
}

static void drops_add(uint32_t **d, size_t *n, size_t *cap, uint32_t si)
{
    if (*n == *cap) {
        *cap = *cap * 2 + 16;
        *d = xreallocarray(*d, *cap, sizeof(**d));
    }
    (*d)[(*n)++] = si;
}

/* As model.c's coord_apply_one(), without the catalog and events. */
static void apply_one(struct coord_node *n, const struct reconcile_action *a, uint32_t **drops,
                      size_t *n_drops, size_t *cap_drops)
{
    const struct wire_segment_status *r = a->rep;
    struct coord_seg *s = a->seg;
    struct coord_holder *h;

    if (a->revalidate && s->state == COORD_INVALID) {
        reconcile_touch(&S.model, s, true);
        s->state = COORD_PENDING;
        coord_seg_invalid_clear(s);
    }
    switch (a->kind) {
    case RECONCILE_STALE:
        if (coord_holder_find(s, n->id) != NULL)
            holder_remove(s, n->id);
        drops_add(drops, n_drops, cap_drops, seg_index(s->id));
        seg_update(s);
        if (s->state != COORD_INVALID)
            placer_exclude(S.placer, s->id, n->id, S.now + COORD_STALE_RETRY_MS);
        return;
    case RECONCILE_DROP:
    case RECONCILE_EXTRA:
    case RECONCILE_UNHELD:
        drops_add(drops, n_drops, cap_drops, seg_index(r->segment_id));
        return;
    case RECONCILE_ADOPT:
        if (coord_holder_find(s, n->id) == NULL)
            holder_add(s, n, r->state);
        break;
    case RECONCILE_UPDATE:
        h = coord_holder_find(s, n->id);
        if (h != NULL && h->state != r->state) {
            if (h->state == WIRE_SEG_LOADING && n->loading > 0)
                n->loading--;
            n->loading += r->state == WIRE_SEG_LOADING;
            h->state = r->state;
            h->since_ms = S.now;
            reconcile_touch(&S.model, s, false);
        }
        break;
    case RECONCILE_KEEP:
        break;
    case RECONCILE_GONE:
        drops_add(drops, n_drops, cap_drops, seg_index(s->id));
        if (coord_holder_find(s, n->id) == NULL)
            return;
        holder_remove(s, n->id);
        coord_seg_set_reason(s, r->reason);
        seg_update(s);
        placer_exclude(S.placer, s->id, n->id, S.now + DROP_RETRY_MS);
        return;
    case RECONCILE_LOST:
        if (coord_holder_find(s, n->id) == NULL)
            return;
        holder_remove(s, n->id);
        seg_update(s);
        return;
    case RECONCILE_KIND_COUNT_:
        return;
    }
    if (a->surplus && coord_holder_find(s, n->id) != NULL) {
        holder_remove(s, n->id);
        drops_add(drops, n_drops, cap_drops, seg_index(s->id));
    }
    seg_update(s);
}

/* ---- the placer's callbacks (dispatch.c's coord_op_*) -------------------------- */

static uint64_t node_delay(const struct sim_node *sn)
{
    uint64_t d = 1 + rng_below(NET_MS);

    if (S.now < sn->slow_until)
        d += sn->slow_ms;
    return d;
}

static void op_assign(void *ctx, uint64_t attempt_id, const char *node_id,
                      const struct placer_segment *seg)
{
    uint32_t ni = node_index(node_id), si = seg_index(seg->id), ai = (uint32_t)attempt_id;
    struct sim_node *sn = &S.nodes[ni];
    struct sim_attempt *a;
    struct ev *e;

    if (coord_holder_find(S.segs[si].cs, node_id) != NULL)
        sim_fail("replication", "the placer sent segment %s to %s, which holds it", seg->id,
                 node_id);
    if (ai >= S.n_att) {
        size_t n = ai * 2 + 1024;

        S.att = xreallocarray(S.att, n, sizeof(*S.att));
        memset(S.att + S.n_att, 0, (n - S.n_att) * sizeof(*S.att));
        S.n_att = n;
    }
    a = &S.att[ai];
    a->id = attempt_id;
    a->node = ni;
    a->seg = si;
    a->seq = window_on_send(&sn->cn->win);
    a->outstanding = true;
    S.assigns++;
    e = ev_new(S.now + ASSIGN_TIMEOUT_MS, SE_TIMEOUT);
    e->attempt = attempt_id;
    ev_push(e);
    if (S.chaos && rng_chance(0.005)) {
        S.lost_msgs++;
        return; /* the request is lost: the client times out */
    }
    e = ev_new(S.now + 1 + rng_below(NET_MS), SE_ASSIGN);
    e->node = ni;
    e->seg = si;
    e->epoch = sn->epoch;
    e->attempt = attempt_id;
    e->answer = true;
    if (S.chaos && rng_chance(0.005)) {
        /* Resent on a fresh connection (http_client_request_idempotent): the node decides twice. */
        S.dup_msgs++;
        e->answer = false;
        ev_push(e);
        e = ev_new(S.now + 5 + rng_below(NET_MS), SE_ASSIGN);
        e->node = ni;
        e->seg = si;
        e->epoch = sn->epoch;
        e->attempt = attempt_id;
        e->answer = true;
    }
    ev_push(e);
}

static void op_accepted(void *ctx, const struct placer_segment *ps, const char *node_id)
{
    struct coord_seg *s = S.segs[seg_index(ps->id)].cs;

    if (coord_holder_find(s, node_id) != NULL)
        return;
    holder_add(s, node_of(node_id)->cn, WIRE_SEG_LOADING);
    s->last_reason = 0;
}

static void op_refused(void *ctx, const struct placer_segment *ps, const char *node_id,
                       enum wire_reason reason, uint32_t retry_ms)
{
    struct coord_seg *s = S.segs[seg_index(ps->id)].cs;

    coord_seg_set_reason(s, reason);
}

static void op_backoff(void *ctx, const struct placer_segment *ps, uint64_t until_ms)
{
    S.segs[seg_index(ps->id)].cs->backoff_until_ms = until_ms;
}

static const struct placer_ops sim_placer_ops = {
    .assign = op_assign,
    .on_accepted = op_accepted,
    .on_refused = op_refused,
    .on_backoff = op_backoff,
};

/* As membership.c's coord_node_note(): applied at the next tick, in the order noted. */
static void node_note(uint32_t ni, unsigned note)
{
    if (S.nodes[ni].notes == 0) {
        if (S.n_noted == S.cap_noted) {
            S.cap_noted = S.cap_noted * 2 + 16;
            S.noted = xreallocarray(S.noted, S.cap_noted, sizeof(*S.noted));
        }
        S.noted[S.n_noted++] = ni;
    }
    S.nodes[ni].notes |= note;
    kick();
}

/* An answer (or the client's timeout, status 0) reaches the coordinator: dispatch.c's
 * coord_answer(). */
static void coord_answer(uint64_t attempt_id, int status, enum wire_reason reason,
                         uint32_t retry_ms)
{
    uint32_t ai = (uint32_t)attempt_id;
    struct sim_attempt *a = ai < S.n_att && S.att[ai].id == attempt_id ? &S.att[ai] : NULL;
    struct placer_answer ans;
    struct coord_node *n;

    if (a == NULL || !a->outstanding)
        return; /* the client gave up on it already */
    a->outstanding = false;
    n = S.nodes[a->node].cn;
    memset(&ans, 0, sizeof(ans));
    ans.http_status = status;
    ans.reason = reason;
    ans.retry_after_ms = retry_ms;
    if (placer_on_answer(S.placer, attempt_id, &ans, S.now, (uint32_t)rng_next()) == 0 &&
        placer_classify(status) == PLACER_TRANSPORT_ERROR)
        node_note(a->node, COORD_NOTE_NO_ANSWER);
    if (status == 202) {
        window_on_accept(&n->win, a->seq);
    } else if (status == 429) {
        window_on_refuse(&n->win, a->seq, reason,
                         retry_ms ? retry_ms : reason_retry_default_ms(reason), S.now);
    }
    if (status > 0)
        window_apply(n);
    kick();
}

/* The coordinator's tick: notes applied from the loop, windows woken, the placer fires. */
static void coord_tick(void)
{
    uint64_t next;

    S.tick_at = UINT64_MAX;
    for (size_t i = 0; i < S.n_noted; i++) {
        struct sim_node *sn = &S.nodes[S.noted[i]];
        enum membership_state st;

        if (sn->notes == 0)
            continue; /* a report came first */
        st = membership_on_answers(sn->cn->state, sn->notes & COORD_NOTE_NO_ANSWER,
                                   sn->notes & COORD_NOTE_DRAINING);
        sn->notes = 0;
        if (st != sn->cn->state)
            set_state(sn->cn, st);
    }
    S.n_noted = 0;
    if (S.model.window_wake_ms != 0 && S.now >= S.model.window_wake_ms) {
        S.model.window_wake_ms = 0;
        for (unsigned i = 0; i < S.cfg.nodes; i++)
            window_apply(S.nodes[i].cn);
    }
    placer_tick(S.placer, S.now);
    next = placer_next_deadline(S.placer);
    if (S.model.window_wake_ms != 0 && S.model.window_wake_ms < next)
        next = S.model.window_wake_ms;
    if (next != UINT64_MAX)
        coord_tick_at(next > S.now ? next : S.now + 1);
}

static void coord_membership(void)
{
    for (unsigned i = 0; i < S.cfg.nodes; i++) {
        struct coord_node *n = S.nodes[i].cn;

        if (membership_timed_out(n->state, S.now, n->last_seen_mono_ms, NODE_TIMEOUT_MS)) {
            set_state(n, MEMBERSHIP_DOWN);
            node_lost(n);
        }
    }
}

/* The answer to a report goes back to its node, unless it is lost or nobody waits for it. */
static void report_reply(const struct sim_report *rep, const struct intake_result *in,
                         uint32_t *drops, size_t n_drops, bool answer)
{
    struct sim_node *sn = &S.nodes[rep->node];
    struct ev *e;

    if (!answer) {
        free(drops); /* a late duplicate: its sender stopped waiting */
        return;
    }
    if (S.chaos && rng_chance(0.01)) {
        S.lost_msgs++;
        free(drops);
        /* The node's client times out: the report is unanswered, the drops wait for a later one. */
        e = ev_new(S.now + node_delay(sn), SE_REPORT_LOST);
        e->node = rep->node;
        e->epoch = rep->epoch;
        e->rseq = rep->rep.seq;
        ev_push(e);
        return;
    }
    e = ev_new(S.now + node_delay(sn), SE_DROPS);
    e->node = rep->node;
    e->epoch = rep->epoch;
    e->ptr = drops;
    e->n = n_drops;
    e->rseq = rep->rep.seq;
    e->ack_seq = in->ack_seq;
    e->send_full = in->send_full;
    ev_push(e);
}

/* A report reaches the coordinator: api.c's coord_report_cb(), intake first. */
static void coord_report(struct sim_report *rep, bool answer)
{
    struct sim_node *sn = &S.nodes[rep->node];
    struct coord_node *n = sn->cn;
    uint32_t *drops = NULL;
    size_t n_drops = 0, cap_drops = 0;
    struct intake_result in;

    S.reports++;
    intake_take(&n->intake, &rep->rep, &in);
    S.verdicts[in.verdict]++;
    if (in.verdict == INTAKE_OLD || in.verdict == INTAKE_DUPLICATE) {
        report_reply(rep, &in, NULL, 0, answer);
        return;
    }
    n->last_seen_mono_ms = S.now;
    sn->notes = 0;
    set_state(n, membership_on_report(false, false));
    if (in.applied) {
        size_t n_segs = 0;
        const struct wire_segment_status *segs = NULL;

        if (in.verdict == INTAKE_DELTA && !reconcile_needs_whole(n)) {
            /* Incremental, and checked against the whole reconcile it stands for. */
            size_t n_all;
            const struct wire_segment_status *all =
                intake_set(&n->intake, &rep->rep, &in, &S.scratch, &S.cap_scratch, &n_all);
            char why[512];

            reconcile_delta(&S.model, n, n->intake.set, &rep->rep, S.now, &S.plan);
            reconcile_report(&S.model, n, all, n_all, S.now, &S.whole);
            if (!reconcile_plans_agree(&S.whole, &S.plan, why, sizeof(why)))
                sim_fail("reconcile", "node %s report %" PRIu64 ": incremental and whole differ: %s",
                         n->id, rep->rep.seq, why);
            S.incremental++;
        } else {
            segs = intake_set(&n->intake, &rep->rep, &in, &S.scratch, &S.cap_scratch, &n_segs);
            reconcile_report(&S.model, n, segs, n_segs, S.now, &S.plan);
        }
        for (size_t i = 0; i < S.plan.n; i++)
            apply_one(n, &S.plan.v[i], &drops, &n_drops, &cap_drops);
        reconcile_settle(&S.model, n, in.verdict == INTAKE_LEGACY ? NULL : n->intake.set, segs,
                         n_segs, &S.plan);
    }
    window_apply(n);
    S.drops += n_drops;
    report_reply(rep, &in, drops, n_drops, answer);
}

/* ---- the nodes: node.c's assignment path, its tick, its reports ------------------ */

/* What admission sees: the simulated sampler (PSI from the wave, memory from the copies). */
static void node_signals(const struct sim_node *sn, struct admission_signals *sig)
{
    double some = 0;

    memset(sig, 0, sizeof(*sig));
    if (sn->wave_end > S.now && S.now >= sn->wave_start) {
        double mid = (double)(sn->wave_start + sn->wave_end) / 2, half = mid - sn->wave_start;

        some = sn->wave_peak * (1 - fabs((double)S.now - mid) / half);
    }
    sig->now_ms = S.now;
    sig->psi_available = true;
    sig->some_frac = some;
    sig->some_avg10 = some * 100;
    sig->full_frac = sn->wave_critical ? some / 2 : 0;
    sig->full_avg10 = sig->full_frac * 100;
    sig->pgscan_per_s = some > 0 ? 1000 : 0;
    sig->limit_bytes = sn->capacity;
    sig->wss_bytes = sn->loaded_bytes;
    sig->reserved_bytes = admission_ledger_mem_bytes(sn->ledger);
    sig->loads_in_flight = sn->loads;
    sig->disk_free_bytes = UINT64_MAX;
    sig->tte_ms = sig->fill_ms = UINT64_MAX;
}

static void node_answer(struct sim_node *sn, uint64_t attempt, int status, enum wire_reason reason,
                        uint32_t retry_ms)
{
    struct ev *e;

    if (S.chaos && rng_chance(0.005)) {
        S.lost_msgs++;
        return;
    }
    e = ev_new(S.now + node_delay(sn), SE_ANSWER);
    e->attempt = attempt;
    e->status = status;
    e->reason = reason;
    e->retry_ms = retry_ms;
    ev_push(e);
}

/* Every step: a node's resident segment memory stays under its limit. */
static void check_limit(const struct sim_node *sn)
{
    if (sn->resident > sn->capacity)
        sim_fail("limit", "node %s holds %" PRIu64 " bytes of segments, over its limit %" PRIu64,
                 sn->id, sn->resident, sn->capacity);
}

static void copy_free(struct sim_node *sn, struct sim_copy *c)
{
    if (c->state == WIRE_SEG_LOADING || c->state == WIRE_SEG_LOADED) {
        sn->resident -= c->fp;
        live_add(c->seg, -1);
    }
    if (c->state == WIRE_SEG_LOADED)
        sn->loaded_bytes -= c->fp;
    if (c->state == WIRE_SEG_LOADING) {
        sn->loads--;
        admission_ledger_release(sn->ledger, S.segs[c->seg].cs->id, NULL);
    }
    free(c);
}

/* An assignment reaches a node: node.c's node_assign(). */
static void node_assign(const struct ev *ev)
{
    struct sim_node *sn = &S.nodes[ev->node];
    struct sim_seg *g = &S.segs[ev->seg];
    struct coord_seg *s = g->cs;
    struct sim_copy *c;
    struct admission_signals sig;
    struct admission_request req;
    struct admission_verdict v;
    struct ev *e;

    if (sn->crashed || sn->epoch != ev->epoch)
        return; /* no one listens: the coordinator's client times out */
    c = strmap_get(sn->copies, s->id);
    if (c != NULL && (c->state == WIRE_SEG_LOADING || c->state == WIRE_SEG_LOADED)) {
        if (ev->answer)
            node_answer(sn, ev->attempt, 202, WIRE_REASON_NONE, 0); /* a retry: already held */
        return;
    }
    node_signals(sn, &sig);
    req.cost_bytes = admission_cost_estimate(&sn->cost, s->row_count, s->avg_row_size);
    req.file_bytes = s->row_count * s->avg_row_size;
    admission_decide(&S.acfg, &sig, &sn->ast, &req, (uint32_t)rng_next(), &v);
    if (!v.accept) {
        S.refusals[v.reason < WIRE_REASON_COUNT_ ? v.reason : 0]++;
        if (ev->answer)
            node_answer(sn, ev->attempt, reason_http_status(v.reason), v.reason, v.retry_after_ms);
        return;
    }
    /* Admission's own contract, at the moment it accepts. */
    if (sig.wss_bytes + sig.reserved_bytes + req.cost_bytes > admission_admit_limit(&S.acfg, &sig))
        sim_fail("limit",
                 "node %s accepted %s: wss %" PRIu64 " + reserved %" PRIu64 " + cost %" PRIu64
                 " > admit limit %" PRIu64,
                 sn->id, s->id, sig.wss_bytes, sig.reserved_bytes, req.cost_bytes,
                 admission_admit_limit(&S.acfg, &sig));
    if (sn->loads + 1 > (unsigned)S.acfg.max_loads)
        sim_fail("limit", "node %s accepted %s with %u loads in flight (max %" PRId64 ")", sn->id,
                 s->id, sn->loads, S.acfg.max_loads);
    if (c != NULL) { /* a DROPPED entry, replaced by the new copy */
        strmap_remove(sn->copies, s->id);
        copy_free(sn, c);
    }
    c = xcalloc(1, sizeof(*c));
    c->seg = ev->seg;
    c->state = WIRE_SEG_LOADING;
    c->gen = ++sn->gen;
    c->fp = (uint64_t)((double)g->fp * sn->fp_mult);
    strmap_put(sn->copies, s->id, c);
    admission_ledger_pend(sn->ledger, req.cost_bytes);
    admission_ledger_commit(sn->ledger, s->id, req.cost_bytes, req.file_bytes);
    sn->loads++;
    sn->resident += c->fp;
    live_add(ev->seg, +1);
    check_limit(sn);
    S.accepts++;
    /* Copy, verify and index: 20 ms plus 4 ms per MiB. */
    e = ev_new(S.now + 20 + (c->fp >> 18), SE_LOAD_DONE);
    e->node = ev->node;
    e->seg = ev->seg;
    e->epoch = sn->epoch;
    e->gen = c->gen;
    ev_push(e);
    if (ev->answer)
        node_answer(sn, ev->attempt, 202, WIRE_REASON_NONE, 0);
}

/* node.c's node_load_cb(): the reservation is released and the cost model learns. */
static void node_load_done(const struct ev *ev)
{
    struct sim_node *sn = &S.nodes[ev->node];
    struct sim_copy *c = strmap_get(sn->copies, S.segs[ev->seg].cs->id);
    struct admission_hold h;

    if (sn->crashed || sn->epoch != ev->epoch || c == NULL || c->gen != ev->gen ||
        c->state != WIRE_SEG_LOADING)
        return;
    c->state = WIRE_SEG_LOADED;
    sn->loads--;
    sn->loaded_bytes += c->fp;
    if (admission_ledger_release(sn->ledger, S.segs[ev->seg].cs->id, &h) == 0)
        admission_cost_learn(&sn->cost, h.raw, c->fp);
}

struct shed_walk {
    struct shed_candidate *v;
    size_t n;
};

static int shed_collect(const char *key, void *value, void *arg)
{
    struct shed_walk *w = arg;
    struct sim_copy *c = value;

    if (c->state == WIRE_SEG_LOADED) {
        w->v[w->n].id = key;
        w->v[w->n].bytes = c->fp;
        w->v[w->n].footprint = c->fp;
        w->n++;
    }
    return 0;
}

/* One node's 100 ms tick: node.c's admission_observe() and shedding. */
static void node_tick(struct sim_node *sn)
{
    struct admission_signals sig;

    node_signals(sn, &sig);
    admission_observe(&S.acfg, &sig, &sn->ast);
    if (admission_should_shed(&S.acfg, &sn->ast, &sig)) {
        struct shed_walk w = {xcalloc(strmap_count(sn->copies) + 1, sizeof(*w.v)), 0};
        const struct shed_candidate *pick;

        strmap_foreach(sn->copies, shed_collect, &w);
        pick = shed_pick(w.v, w.n);
        if (pick != NULL) {
            struct sim_copy *c = strmap_get(sn->copies, pick->id);

            sn->resident -= c->fp;
            sn->loaded_bytes -= c->fp;
            live_add(c->seg, -1);
            c->state = WIRE_SEG_DROPPED;
            c->reason = shed_reason(&sn->ast);
            S.sheds++;
        }
        free(w.v);
        admission_note_shed(&sn->ast, S.now);
    }
}

static int report_collect(const char *key, void *value, void *arg)
{
    const struct sim_copy *c = value;
    const struct coord_seg *seg = S.segs[c->seg].cs;
    struct wire_segment_status *r;

    (void)arg;
    if (S.n_rbuf == S.cap_rbuf) {
        S.cap_rbuf = S.cap_rbuf * 2 + 64;
        S.rbuf = xreallocarray(S.rbuf, S.cap_rbuf, sizeof(*S.rbuf));
    }
    r = &S.rbuf[S.n_rbuf++];
    memset(r, 0, sizeof(*r));
    snprintf(r->segment_id, sizeof(r->segment_id), "%s", key);
    r->state = c->state;
    r->reason = c->reason;
    r->row_count = c->state == WIRE_SEG_LOADED ? seg->row_count : 0;
    r->digest = c->state == WIRE_SEG_LOADED ? seg->digest : 0;
    return 0;
}

static void report_unref(struct sim_report *rep)
{
    if (--rep->refs == 0) {
        free(rep->rep.segments);
        free(rep->rep.removed);
        free(rep);
    }
}

/*
 * A node sends its report (node/report.c): one at a time, the whole set or
 * a delta against the base the coordinator acknowledged (report_build()).
 */
static void node_report(uint32_t ni)
{
    struct sim_node *sn = &S.nodes[ni];
    struct wire_node_report built;
    struct sim_report *rep;
    struct ev *e;
    uint64_t at;

    e = ev_new(S.now + REPORT_MS, SE_REPORT);
    e->node = ni;
    ev_push(e);
    if (sn->crashed || sn->report_seq != 0)
        return;
    S.n_rbuf = 0;
    strmap_foreach(sn->copies, report_collect, NULL);
    memset(&built, 0, sizeof(built));
    sn->report_seq = report_build(sn->rs, S.rbuf, S.n_rbuf, &built);
    if (S.chaos && rng_chance(0.01)) {
        S.lost_msgs++;
        e = ev_new(S.now + node_delay(sn), SE_REPORT_LOST);
        e->node = ni;
        e->epoch = sn->epoch;
        e->rseq = sn->report_seq;
        ev_push(e);
        return;
    }
    rep = xcalloc(1, sizeof(*rep));
    rep->node = ni;
    rep->epoch = sn->epoch;
    rep->rep = built;
    snprintf(rep->rep.node_id, sizeof(rep->rep.node_id), "%s", sn->id);
    rep->rep.segments =
        built.n_segments > 0 ? xcalloc(built.n_segments, sizeof(*built.segments)) : NULL;
    if (built.n_segments > 0)
        memcpy(rep->rep.segments, built.segments, built.n_segments * sizeof(*built.segments));
    rep->rep.removed =
        built.n_removed > 0 ? xcalloc(built.n_removed, sizeof(*built.removed)) : NULL;
    if (built.n_removed > 0)
        memcpy(rep->rep.removed, built.removed, built.n_removed * sizeof(*built.removed));
    /* One report at a time: a later one never overtakes an earlier one. */
    at = S.now + node_delay(sn);
    if (at <= sn->report_last_at)
        at = sn->report_last_at + 1;
    sn->report_last_at = at;
    rep->refs = 1;
    e = ev_new(at, SE_REPORT_ARRIVE);
    e->ptr = rep;
    e->answer = true;
    if (S.chaos && rng_chance(0.01)) {
        /*
         * Sent twice (a retransmission). Half the time the copy comes right
         * after and is the one answered; else it comes late, after newer
         * reports, and nobody waits for its answer (a reordered old report).
         */
        S.dup_msgs++;
        rep->refs++;
        if (rng_chance(0.5)) {
            e->answer = false;
            ev_push(e);
            e = ev_new(at + 1, SE_REPORT_ARRIVE);
            e->ptr = rep;
            e->answer = true;
            sn->report_last_at = at + 1;
        } else {
            struct ev late = *e;

            late.t = at + 1 + rng_below(3 * REPORT_MS);
            late.answer = false;
            ev_push(&late);
        }
    }
    ev_push(e);
}

/* The report's answer reaches the node: it drops what it was told to, and learns its base. */
static void node_drops(const struct ev *ev)
{
    struct sim_node *sn = &S.nodes[ev->node];
    const uint32_t *v = ev->ptr;

    if (!sn->crashed && sn->epoch == ev->epoch) {
        struct wire_report_response resp;

        for (size_t i = 0; i < ev->n; i++) {
            struct sim_copy *c = strmap_remove(sn->copies, S.segs[v[i]].cs->id);

            if (c != NULL)
                copy_free(sn, c);
        }
        memset(&resp, 0, sizeof(resp));
        resp.ack_seq = ev->ack_seq;
        resp.send_full = ev->send_full;
        report_answered(sn->rs, ev->rseq, &resp);
        if (sn->report_seq == ev->rseq)
            sn->report_seq = 0;
    }
    free(ev->ptr);
}

/* The node's client gave up on report seq: no answer, the base stays. */
static void node_report_lost(const struct ev *ev)
{
    struct sim_node *sn = &S.nodes[ev->node];

    if (sn->crashed || sn->epoch != ev->epoch || sn->report_seq != ev->rseq)
        return;
    report_unanswered(sn->rs, ev->rseq);
    sn->report_seq = 0;
}

static int crash_walk(const char *key, void *value, void *arg)
{
    struct sim_copy *c = value;
    struct sim_copy ***p = arg;

    *(*p)++ = c;
    return 0;
}

/* A node's process dies: loads in flight and shed entries go, LOADED copies stay on disk. */
static void node_crash(struct sim_node *sn)
{
    size_t n = strmap_count(sn->copies);
    struct sim_copy **v, **p;
    struct ev *e;

    if (sn->crashed)
        return;
    v = p = xcalloc(n + 1, sizeof(*v));
    S.crashes++;
    sn->crashed = true;
    report_state_free(sn->rs);
    sn->rs = NULL;
    sn->report_seq = 0;
    sn->epoch++;
    strmap_foreach(sn->copies, crash_walk, &p);
    for (size_t i = 0; i < n; i++) {
        struct sim_copy *c = v[i];

        if (c->state == WIRE_SEG_LOADED) {
            live_add(c->seg, -1); /* on disk, not serving */
            continue;
        }
        strmap_remove(sn->copies, S.segs[c->seg].cs->id);
        if (c->state == WIRE_SEG_LOADING) {
            sn->resident -= c->fp;
            live_add(c->seg, -1);
        }
        free(c);
    }
    free(v);
    sn->keep_on_restart = rng_chance(0.5);
    e = ev_new(S.now + 1000 + rng_below(30000), SE_RESTART);
    e->node = (uint32_t)(sn - S.nodes);
    ev_push(e);
}

/* The node starts again: with its LOADED copies (reloaded), or on an empty disk. */
static void node_restart(struct sim_node *sn)
{
    size_t n = strmap_count(sn->copies);
    struct sim_copy **v, **p;

    if (!sn->crashed)
        return;
    v = p = xcalloc(n + 1, sizeof(*v));
    sn->crashed = false;
    sn->rs = report_state_new(incarnation(sn));
    strmap_foreach(sn->copies, crash_walk, &p);
    sn->resident = sn->loaded_bytes = 0;
    if (!sn->keep_on_restart)
        S.restarts_empty++;
    for (size_t i = 0; i < n; i++) {
        struct sim_copy *c = v[i];

        if (sn->keep_on_restart) {
            sn->resident += c->fp;
            sn->loaded_bytes += c->fp;
            live_add(c->seg, +1);
        } else {
            strmap_remove(sn->copies, S.segs[c->seg].cs->id);
            free(c);
        }
    }
    free(v);
    memset(&sn->ast, 0, sizeof(sn->ast));
    admission_cost_init(&sn->cost);
    admission_ledger_free(sn->ledger);
    sn->ledger = admission_ledger_new();
    sn->loads = 0;
    check_limit(sn);
}

/* ---- faults ------------------------------------------------------------------------ */

static void fault_schedule(void)
{
    /* Per node and per minute of chaos, at fault rate 1: these many of each. */
    double per_min = S.cfg.fault_rate * S.cfg.nodes / 60.0 * (S.cfg.chaos_s / 60.0 + 0.0);
    struct {
        enum ev_kind kind;
        double per_node_min;
    } kinds[] = {{SE_CRASH, 0.10}, {SE_SLOW, 0.10}, {SE_WAVE, 0.20}};

    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        uint64_t count = (uint64_t)(per_min * 60.0 * kinds[k].per_node_min + 0.5);

        for (uint64_t i = 0; i < count; i++) {
            struct ev *e = ev_new(rng_below((uint64_t)S.cfg.chaos_s * 1000), kinds[k].kind);

            e->node = (uint32_t)rng_below(S.cfg.nodes);
            ev_push(e);
        }
    }
}

static void fault_slow(struct sim_node *sn)
{
    S.slows++;
    sn->slow_until = S.now + 2000 + rng_below(30000);
    sn->slow_ms = 200 + rng_below(SLOW_MAX_MS - 200);
}

static void fault_wave(struct sim_node *sn)
{
    S.waves++;
    sn->wave_start = S.now;
    sn->wave_end = S.now + 2000 + rng_below(20000);
    sn->wave_peak = 0.05 + 0.5 * rng_unit();
    sn->wave_critical = rng_chance(0.2);
}

/* The world goes quiet: every node back, no slowness, no waves, no loss. */
static void chaos_end(void)
{
    S.chaos = false;
    for (unsigned i = 0; i < S.cfg.nodes; i++) {
        struct sim_node *sn = &S.nodes[i];

        node_restart(sn);
        sn->slow_until = 0;
        if (sn->wave_end > S.now)
            sn->wave_end = S.now;
    }
}

/* ---- building the world --------------------------------------------------------- */

static void world_build(void)
{
    static const double table_ratio[3] = {0.4, 1.0, 2.0};
    double demand = 0, avg_cap;
    uint64_t worst_error = 0, min_cap = UINT64_MAX;
    struct placer_config pcfg = {.max_in_flight_per_node = MAX_IN_FLIGHT,
                                 .invalid_quorum = COORD_INVALID_QUORUM,
                                 .borrow_strings = true}; /* as the coordinator: S.segs' own */

    S.acfg = admission_config_default();
    S.model.segs = keymap_new(offsetof(struct coord_seg, id));
    S.model.nodes = strmap_new();
    S.placer = placer_new(&pcfg, &sim_placer_ops, &S);
    S.tick_at = UINT64_MAX;
    S.excess_bound_ms = sim_excess_bound_ms();
    S.segs = xcalloc(S.cfg.segments, sizeof(*S.segs));
    for (size_t i = 0; i < S.cfg.segments; i++) {
        struct sim_seg *g = &S.segs[i];
        struct coord_seg *s;
        uint64_t est, avg = 8u << rng_below(6); /* 8..256 bytes per row */
        double r = rng_unit(), ratio = table_ratio[rng_below(3)] * (0.8 + 0.45 * rng_unit());
        char id[32], uri[WIRE_ID_MAX + 32];

        /* rows x avg_row_size from 1 MiB to 16 MiB, log-uniform. */
        est = (uint64_t)(1048576.0 * pow(16.0, rng_unit()));
        snprintf(id, sizeof(id), "s%07zu", i);
        snprintf(uri, sizeof(uri), "file:///sim/%s", id);
        s = coord_seg_alloc(id, uri);
        s->row_count = est / avg + 1;
        s->avg_row_size = avg;
        s->digest = splitmix64(&(uint64_t){i + 1}) | 1;
        s->replication = r < 0.6 ? 1 : r < 0.9 ? 2 : 3;
        if (s->replication > S.cfg.nodes)
            s->replication = S.cfg.nodes;
        s->state = COORD_PENDING;
        g->cs = s;
        g->fp = (uint64_t)((double)(s->row_count * s->avg_row_size) * ratio);
        demand += (double)g->fp * 1.1 * s->replication;
        if ((uint64_t)((double)g->fp * 1.1) > s->row_count * s->avg_row_size &&
            (uint64_t)((double)g->fp * 1.1) - s->row_count * s->avg_row_size > worst_error)
            worst_error = (uint64_t)((double)g->fp * 1.1) - s->row_count * s->avg_row_size;
    }
    /* Admit limits (limit x 0.85) add up to headroom x what the copies really take. */
    avg_cap = demand * S.cfg.headroom / S.acfg.high_watermark / S.cfg.nodes;
    S.nodes = xcalloc(S.cfg.nodes, sizeof(*S.nodes));
    for (unsigned i = 0; i < S.cfg.nodes; i++) {
        struct sim_node *sn = &S.nodes[i];
        struct coord_node *n = xcalloc(1, sizeof(*n));
        struct ev *e;

        snprintf(sn->id, sizeof(sn->id), "n%05u", i);
        sn->capacity = (uint64_t)(avg_cap * (0.5 + rng_unit()));
        if (sn->capacity < min_cap)
            min_cap = sn->capacity;
        sn->fp_mult = 0.9 + 0.2 * rng_unit();
        sn->copies = strmap_new();
        sn->ledger = admission_ledger_new();
        sn->rs = report_state_new(incarnation(sn));
        admission_cost_init(&sn->cost);
        sn->cn = n;
        snprintf(n->id, sizeof(n->id), "%s", sn->id);
        n->state = MEMBERSHIP_UP;
        n->held = keymap_new(offsetof(struct coord_seg, id));
        intake_init(&n->intake);
        window_init(&n->win);
        n->limit = SIZE_MAX;
        n->last_seen_mono_ms = 0;
        strmap_put(S.model.nodes, n->id, n);
        placer_node_set(S.placer, n->id, PLACER_NODE_UP);
        window_apply(n);
        e = ev_new(rng_below(REPORT_MS), SE_REPORT); /* nodes report out of phase */
        e->node = i;
        ev_push(e);
    }
    /*
     * The limit invariant rests on admission's estimates being wrong by a
     * bounded amount: loads in flight x the worst underestimate must fit in
     * what the watermark leaves under the limit. Say so if the world breaks it.
     */
    if ((double)worst_error * (double)S.acfg.max_loads >
        (1 - S.acfg.high_watermark) * (double)min_cap)
        fprintf(stderr,
                "sim: note: max_loads x worst underestimate (%" PRIu64
                " bytes) exceeds the headroom of the smallest node (%" PRIu64
                "); the limit invariant may not hold\n",
                worst_error * (uint64_t)S.acfg.max_loads,
                (uint64_t)((1 - S.acfg.high_watermark) * (double)min_cap));
    /* Half the segments are registered at once, the rest over the first half of the chaos. */
    for (size_t off = 0, batch = 0; off < S.cfg.segments; batch++) {
        size_t k = batch == 0 ? S.cfg.segments / 2 : S.cfg.segments / 100 + 1;
        struct ev *e =
            ev_new(batch == 0 ? 0 : batch * (S.cfg.chaos_s * 1000ull / 200 + 1), SE_REGISTER);

        if (k > S.cfg.segments - off)
            k = S.cfg.segments - off;
        e->seg = (uint32_t)off;
        e->n = k;
        ev_push(e);
        off += k;
    }
    {
        struct ev *e = ev_new(NODE_TICK_MS, SE_NODE_TICK);
        ev_push(e);
        e = ev_new(MEMBERSHIP_MS, SE_MEMBERSHIP);
        ev_push(e);
        e = ev_new((uint64_t)S.cfg.chaos_s * 1000, SE_CHAOS_END);
        ev_push(e);
    }
    S.chaos = S.cfg.fault_rate > 0;
    if (S.chaos)
        fault_schedule();
}

static void register_batch(uint32_t first, size_t n)
{
    for (size_t i = first; i < first + n; i++) {
        struct sim_seg *g = &S.segs[i];

        keymap_put(S.model.segs, g->cs);
        g->registered = true;
        S.registered++;
        seg_update(g->cs);
    }
}

/* ---- the run ------------------------------------------------------------------------ */

static void dispatch(struct ev *e)
{
    switch (e->kind) {
    case SE_ASSIGN:
        node_assign(e);
        break;
    case SE_ANSWER:
        coord_answer(e->attempt, e->status, e->reason, e->retry_ms);
        break;
    case SE_TIMEOUT:
        if ((uint32_t)e->attempt < S.n_att && S.att[(uint32_t)e->attempt].id == e->attempt &&
            S.att[(uint32_t)e->attempt].outstanding)
            S.timeouts++;
        coord_answer(e->attempt, 0, WIRE_REASON_NONE, 0);
        break;
    case SE_LOAD_DONE:
        node_load_done(e);
        break;
    case SE_REPORT:
        node_report(e->node);
        break;
    case SE_REPORT_ARRIVE:
        coord_report(e->ptr, e->answer);
        report_unref(e->ptr);
        break;
    case SE_REPORT_LOST:
        node_report_lost(e);
        break;
    case SE_DROPS:
        node_drops(e);
        break;
    case SE_NODE_TICK: {
        struct ev *n = ev_new(S.now + NODE_TICK_MS, SE_NODE_TICK);

        ev_push(n);
        for (unsigned i = 0; i < S.cfg.nodes; i++)
            if (!S.nodes[i].crashed)
                node_tick(&S.nodes[i]);
        check_replication();
        break;
    }
    case SE_COORD_TICK:
        if (e->t == S.tick_at)
            coord_tick();
        break;
    case SE_MEMBERSHIP: {
        struct ev *n = ev_new(S.now + MEMBERSHIP_MS, SE_MEMBERSHIP);

        ev_push(n);
        coord_membership();
        break;
    }
    case SE_REGISTER:
        register_batch(e->seg, e->n);
        break;
    case SE_CRASH:
        if (S.chaos)
            node_crash(&S.nodes[e->node]);
        break;
    case SE_RESTART:
        node_restart(&S.nodes[e->node]);
        break;
    case SE_SLOW:
        if (S.chaos)
            fault_slow(&S.nodes[e->node]);
        break;
    case SE_WAVE:
        if (S.chaos)
            fault_wave(&S.nodes[e->node]);
        break;
    case SE_CHAOS_END:
        chaos_end();
        break;
    }
}

static bool settled(void);

static void run(void)
{
    uint64_t chaos_end_ms = (uint64_t)S.cfg.chaos_s * 1000,
             stop = chaos_end_ms + (uint64_t)S.cfg.quiet_max_s * 1000, next_check = 0;

    while (S.n_ev > 0) {
        struct ev e = ev_pop();

        S.now = e.t;
        S.events++;
        dispatch(&e);
        if (S.now >= chaos_end_ms + 2 * REPORT_MS && S.now >= next_check) {
            /* Quiet: once a second, see whether placement is done (two reports in). */
            next_check = S.now + REPORT_MS;
            if (settled() || S.now >= stop)
                break;
        }
    }
}

/* ---- the quiet world's verdict ------------------------------------------------------ */

enum verdict { V_LOADED, V_EXPLAINED, V_UNSETTLED };

/* Whether the node's admission would accept s now (decided on a copy of its state). */
static bool node_would_take(const struct sim_node *sn, const struct coord_seg *s)
{
    struct admission_state ast = sn->ast;
    struct admission_signals sig;
    struct admission_request req;
    struct admission_verdict v;
    const struct sim_copy *c = strmap_get(sn->copies, s->id);

    if (sn->crashed || sn->cn->state != MEMBERSHIP_UP ||
        (c != NULL && (c->state == WIRE_SEG_LOADING || c->state == WIRE_SEG_LOADED)))
        return false;
    node_signals(sn, &sig);
    req.cost_bytes = admission_cost_estimate(&sn->cost, s->row_count, s->avg_row_size);
    req.file_bytes = s->row_count * s->avg_row_size;
    admission_decide(&S.acfg, &sig, &ast, &req, 0, &v);
    return v.accept;
}

/*
 * LOADED: on exactly its replication of live nodes, LOADED there, and the
 * model agrees copy for copy. EXPLAINED: still wanted by the placer, last
 * refused for want of room (the cluster is full for it). Else UNSETTLED.
 */
static enum verdict seg_verdict(size_t i)
{
    struct sim_seg *g = &S.segs[i];
    struct coord_seg *s = g->cs;
    bool ok = g->registered && s->state == COORD_LOADED && s->n_holders == s->replication &&
              g->live == s->replication;
    char buf[8];

    for (unsigned k = 0; ok && k < s->n_holders; k++) {
        struct sim_node *sn = node_of(s->holders[k].node);
        struct sim_copy *c = strmap_get(sn->copies, s->id);

        ok = s->holders[k].state == WIRE_SEG_LOADED && sn->cn->state == MEMBERSHIP_UP &&
             !sn->crashed && c != NULL && c->state == WIRE_SEG_LOADED;
    }
    if (ok)
        return V_LOADED;
    if (placer_explain(S.placer, s->id, S.now, buf, sizeof(buf)) < 0 ||
        (strcmp(coord_seg_reason(s), "MEM_CAPACITY") != 0 &&
         strcmp(coord_seg_reason(s), "DISK_FULL") != 0))
        return V_UNSETTLED;
    /* The cluster must really be full for it: no live node without a copy would take it now. */
    for (unsigned k = 0; k < S.cfg.nodes; k++)
        if (node_would_take(&S.nodes[k], s))
            return V_UNSETTLED;
    return V_EXPLAINED;
}

/* Placement is done: nothing in flight or loading, and every segment LOADED or explained. */
static bool settled(void)
{
    struct placer_stats ps;

    placer_get_stats(S.placer, &ps);
    if (ps.in_flight != 0 || S.n_excess != 0 || S.registered != S.cfg.segments)
        return false;
    for (unsigned i = 0; i < S.cfg.nodes; i++)
        if (S.nodes[i].loads != 0)
            return false;
    for (size_t i = 0; i < S.cfg.segments; i++)
        if (seg_verdict(i) == V_UNSETTLED)
            return false;
    return true;
}

/* Once quiet: every registered segment LOADED (model and nodes agreeing) or explained. */
static void check_quiet(size_t *ret_loaded, size_t *ret_explained)
{
    size_t loaded = 0, explained = 0;
    char buf[2048];

    for (size_t i = 0; i < S.cfg.segments; i++) {
        struct sim_seg *g = &S.segs[i];
        struct coord_seg *s = g->cs;

        switch (seg_verdict(i)) {
        case V_LOADED:
            loaded++;
            continue;
        case V_EXPLAINED:
            explained++;
            continue;
        case V_UNSETTLED:
            break;
        }
        if (placer_explain(S.placer, s->id, S.now, buf, sizeof(buf)) < 0)
            snprintf(buf, sizeof(buf), "(not pending in the placer)");
        sim_fail("quiet",
                 "segment %s (replication %u) is %s with %u holders and %u live copies, "
                 "last reason \"%s\", after %" PRIu64 " ms of quiet:\n%s",
                 s->id, s->replication, coord_seg_state_names[s->state], s->n_holders, g->live,
                 coord_seg_reason(s), S.now - (uint64_t)S.cfg.chaos_s * 1000, buf);
    }
    *ret_loaded = loaded;
    *ret_explained = explained;
}

/* FNV-1a over every segment's state and sorted holders, then the nodes' states. */
static uint64_t digest(void)
{
    uint64_t h = 1469598103934665603ull;

#define MIX(x) (h = (h ^ (uint64_t)(x)) * 1099511628211ull)
    for (size_t i = 0; i < S.cfg.segments; i++) {
        const struct coord_seg *s = S.segs[i].cs;
        uint32_t v[WIRE_REPLICATION_MAX * 2];
        unsigned n = 0;

        MIX(i);
        MIX(s->state);
        for (unsigned k = 0; k < s->n_holders && n < sizeof(v) / sizeof(v[0]); k++)
            v[n++] = node_index(s->holders[k].node) * 8u + (uint32_t)s->holders[k].state;
        for (unsigned a = 1; a < n; a++)
            for (unsigned b = a; b > 0 && v[b - 1] > v[b]; b--) {
                uint32_t t = v[b];
                v[b] = v[b - 1];
                v[b - 1] = t;
            }
        for (unsigned k = 0; k < n; k++)
            MIX(v[k]);
    }
    for (unsigned i = 0; i < S.cfg.nodes; i++)
        MIX(S.nodes[i].cn->state);
    MIX(S.now);
#undef MIX
    return h;
}

static int free_copy(const char *key, void *value, void *arg)
{
    free(value);
    return 0;
}

static void world_free(void)
{
    placer_free(S.placer);
    for (unsigned i = 0; i < S.cfg.nodes; i++) {
        strmap_foreach(S.nodes[i].copies, free_copy, NULL);
        strmap_free(S.nodes[i].copies);
        admission_ledger_free(S.nodes[i].ledger);
        report_state_free(S.nodes[i].rs);
        intake_done(&S.nodes[i].cn->intake);
        reconcile_node_done(S.nodes[i].cn);
        keymap_free(S.nodes[i].cn->held);
        free(S.nodes[i].cn);
    }
    for (size_t i = 0; i < S.cfg.segments; i++) {
        free(S.segs[i].cs->holders);
        coord_seg_faults_free(S.segs[i].cs);
        free(S.segs[i].cs);
    }
    while (S.n_ev > 0) {
        struct ev e = ev_pop();

        if (e.kind == SE_REPORT_ARRIVE)
            report_unref(e.ptr);
        else if (e.kind == SE_DROPS)
            free(e.ptr);
    }
    keymap_free(S.model.segs);
    strmap_free(S.model.nodes);
    reconcile_plan_done(&S.plan);
    reconcile_plan_done(&S.whole);
    free(S.nodes);
    free(S.segs);
    free(S.heap);
    free(S.att);
    free(S.excess);
    free(S.noted);
    free(S.rbuf);
    free(S.scratch);
}

/* One seed, start to verdict. Prints the result line; exits 1 on a broken invariant. */
static uint64_t sim_run(const struct sim_config *cfg, bool quiet_output)
{
    size_t loaded, explained;
    uint64_t d;

    memset(&S, 0, sizeof(S));
    S.cfg = *cfg;
    rng_seed(cfg->seed);
    clock_set_source(&sim_clock);
    world_build();
    run();
    if (!settled())
        fprintf(stderr, "sim: seed=%" PRIu64 " not settled after %u s of quiet\n", cfg->seed,
                cfg->quiet_max_s);
    check_quiet(&loaded, &explained);
    d = digest();
    if (quiet_output) {
        printf("%016" PRIx64 "\n", d);
    } else {
        printf("sim seed=%" PRIu64 " nodes=%u segments=%zu chaos_s=%u t_end_ms=%" PRIu64
               " loaded=%zu explained=%zu assigns=%" PRIu64 " accepts=%" PRIu64 " refusals=%" PRIu64
               " (capacity %" PRIu64 ", concurrency %" PRIu64 ", pressure %" PRIu64
               ", critical %" PRIu64 ") timeouts=%" PRIu64 " crashes=%" PRIu64 " (empty %" PRIu64
               ") slow=%" PRIu64 " waves=%" PRIu64 " sheds=%" PRIu64 " lost_msgs=%" PRIu64
               " dup_msgs=%" PRIu64 " reports=%" PRIu64 " (full %" PRIu64 ", delta %" PRIu64
               ", duplicate %" PRIu64 ", old %" PRIu64 ", unapplied %" PRIu64 ")"
               " incremental=%" PRIu64 " drops=%" PRIu64 " excess_max_ms=%" PRIu64 " events=%" PRIu64 " digest=%016" PRIx64
               "\n",
               cfg->seed, cfg->nodes, cfg->segments, cfg->chaos_s, S.now, loaded, explained,
               S.assigns, S.accepts,
               S.refusals[WIRE_REASON_MEM_CAPACITY] + S.refusals[WIRE_REASON_LOAD_CONCURRENCY] +
                   S.refusals[WIRE_REASON_MEM_PRESSURE] + S.refusals[WIRE_REASON_MEM_CRITICAL] +
                   S.refusals[WIRE_REASON_MEM_EXHAUSTION] + S.refusals[WIRE_REASON_MEM_THRASHING],
               S.refusals[WIRE_REASON_MEM_CAPACITY], S.refusals[WIRE_REASON_LOAD_CONCURRENCY],
               S.refusals[WIRE_REASON_MEM_PRESSURE], S.refusals[WIRE_REASON_MEM_CRITICAL],
               S.timeouts, S.crashes, S.restarts_empty, S.slows, S.waves, S.sheds, S.lost_msgs,
               S.dup_msgs, S.reports, S.verdicts[INTAKE_FULL], S.verdicts[INTAKE_DELTA],
               S.verdicts[INTAKE_DUPLICATE], S.verdicts[INTAKE_OLD], S.verdicts[INTAKE_UNAPPLIED],
               S.incremental, S.drops, S.excess_max_ms, S.events, d);
    }
    fflush(stdout);
    world_free();
    clock_set_source(NULL);
    return d;
}

/* ---- command line ---------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f, "usage: sluice-sim [--seed N | --seeds A,B,C | --seeds A-B] [--nodes N]\n"
               "                  [--segments M] [--chaos SECONDS] [--quiet-max SECONDS]\n"
               "                  [--fault-rate X] [--headroom X] [--check-determinism]\n"
               "Runs the placement policy (placer, window, reconcile, membership, admission)\n"
               "in simulated time with seeded faults, checking its invariants at every step.\n"
               "Defaults: --seed 1 --nodes 100 --segments 10000 --chaos 60 --quiet-max 900\n"
               "--fault-rate 1 --headroom 1.5. Exit 1 on a broken invariant (with the command\n"
               "that reproduces it), 2 on a usage error.\n");
}

static int parse_u64(const char *s, uint64_t *ret)
{
    char *end;
    unsigned long long v;

    if (s == NULL || *s < '0' || *s > '9')
        return -EINVAL;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return -EINVAL;
    *ret = v;
    return 0;
}

static int parse_double(const char *s, double *ret)
{
    char *end;
    double v;

    if (s == NULL)
        return -EINVAL;
    v = strtod(s, &end);
    if (*end != '\0' || end == s || !isfinite(v) || v < 0)
        return -EINVAL;
    *ret = v;
    return 0;
}

/* "1,2,3" or "1-50": the seeds, into *ret (allocated), their count into *n. */
static int parse_seeds(const char *s, uint64_t **ret, size_t *n)
{
    char *copy = xstrdup(s), *tok, *save = NULL;
    const char *dash = strchr(s, '-');

    *ret = NULL;
    *n = 0;
    if (dash != NULL) {
        uint64_t a, b;
        char *lo = xstrndup(s, (size_t)(dash - s));
        int r = parse_u64(lo, &a) < 0 || parse_u64(dash + 1, &b) < 0 || b < a || b - a > 1000000
                    ? -EINVAL
                    : 0;

        free(lo);
        free(copy);
        if (r < 0)
            return r;
        *ret = xcalloc(b - a + 1, sizeof(**ret));
        for (uint64_t v = a; v <= b; v++)
            (*ret)[(*n)++] = v;
        return 0;
    }
    for (tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        uint64_t v;

        if (parse_u64(tok, &v) < 0) {
            free(copy);
            free(*ret);
            *ret = NULL;
            return -EINVAL;
        }
        *ret = xreallocarray(*ret, *n + 1, sizeof(**ret));
        (*ret)[(*n)++] = v;
    }
    free(copy);
    return *n > 0 ? 0 : -EINVAL;
}

/* Runs seed again in a fresh process (another address layout): its digest, or 0. */
static uint64_t rerun_digest(const char *self, const struct sim_config *cfg)
{
    char cmd[4096 + 512], line[64] = "";
    FILE *p;

    snprintf(cmd, sizeof(cmd),
             "'%s' --digest-only --seed %" PRIu64 " --nodes %u --segments %zu --chaos %u "
             "--quiet-max %u --fault-rate %.17g --headroom %.17g",
             self, cfg->seed, cfg->nodes, cfg->segments, cfg->chaos_s, cfg->quiet_max_s,
             cfg->fault_rate, cfg->headroom);
    p = popen(cmd, "r");
    if (p == NULL)
        return 0;
    if (fgets(line, sizeof(line), p) == NULL)
        line[0] = '\0';
    if (pclose(p) != 0)
        return 0;
    return strtoull(line, NULL, 16);
}

int main(int argc, char **argv)
{
    struct sim_config cfg = {.seed = 1,
                             .nodes = 100,
                             .segments = 10000,
                             .chaos_s = 60,
                             .quiet_max_s = 900,
                             .fault_rate = 1,
                             .headroom = 1.5};
    uint64_t *seeds = NULL, one;
    size_t n_seeds = 0;
    bool determinism = false, digest_only = false;
    char self[4096];
    ssize_t len;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t u;
        int r = 0;

        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--check-determinism") == 0) {
            determinism = true;
            continue;
        } else if (strcmp(a, "--digest-only") == 0) {
            digest_only = true;
            continue;
        } else if (strcmp(a, "--seed") == 0) {
            free(seeds);
            seeds = NULL;
            r = parse_u64(v, &one);
            if (r == 0) {
                seeds = xcalloc(1, sizeof(*seeds));
                seeds[0] = one;
                n_seeds = 1;
            }
        } else if (strcmp(a, "--seeds") == 0) {
            free(seeds);
            r = parse_seeds(v != NULL ? v : "", &seeds, &n_seeds);
        } else if (strcmp(a, "--nodes") == 0) {
            r = parse_u64(v, &u);
            if (r == 0 && (u < 1 || u > 100000))
                r = -ERANGE;
            cfg.nodes = (unsigned)u;
        } else if (strcmp(a, "--segments") == 0) {
            r = parse_u64(v, &u);
            if (r == 0 && (u < 1 || u > 100000000))
                r = -ERANGE;
            cfg.segments = (size_t)u;
        } else if (strcmp(a, "--chaos") == 0) {
            r = parse_u64(v, &u);
            if (r == 0 && (u < 1 || u > 86400))
                r = -ERANGE;
            cfg.chaos_s = (unsigned)u;
        } else if (strcmp(a, "--quiet-max") == 0) {
            r = parse_u64(v, &u);
            if (r == 0 && (u < 1 || u > 86400))
                r = -ERANGE;
            cfg.quiet_max_s = (unsigned)u;
        } else if (strcmp(a, "--fault-rate") == 0) {
            r = parse_double(v, &cfg.fault_rate);
        } else if (strcmp(a, "--headroom") == 0) {
            r = parse_double(v, &cfg.headroom);
            if (r == 0 && cfg.headroom < 0.1)
                r = -ERANGE;
        } else {
            fprintf(stderr, "sluice-sim: unknown option %s\n", a);
            usage(stderr);
            free(seeds);
            return 2;
        }
        if (r < 0) {
            fprintf(stderr, "sluice-sim: %s: %s\n", a,
                    v == NULL      ? "needs a value"
                    : r == -ERANGE ? "out of range"
                                   : "not a valid value");
            free(seeds);
            return 2;
        }
        i++;
    }
    if (seeds == NULL) {
        seeds = xcalloc(1, sizeof(*seeds));
        seeds[0] = cfg.seed;
        n_seeds = 1;
    }
    len = readlink("/proc/self/exe", self, sizeof(self) - 1);
    self[len > 0 ? len : 0] = '\0';
    for (size_t i = 0; i < n_seeds; i++) {
        uint64_t d, again;

        cfg.seed = seeds[i];
        d = sim_run(&cfg, digest_only);
        if (!determinism)
            continue;
        again = rerun_digest(self, &cfg);
        if (again != d) {
            fprintf(stderr,
                    "sim: seed=%" PRIu64 " INVARIANT determinism: digest %016" PRIx64
                    " here, %016" PRIx64 " in a second run\n",
                    cfg.seed, d, again);
            free(seeds);
            return 1;
        }
        printf("sim seed=%" PRIu64 " determinism ok (%016" PRIx64 " twice)\n", cfg.seed, d);
    }
    free(seeds);
    return 0;
}
