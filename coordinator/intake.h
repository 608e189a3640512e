/*
 * intake: the coordinator's side of delta reports, as pure code. Each node
 * has a struct intake: the incarnation of the node process it last heard
 * from, the report it acknowledged last (the base of the node's next delta)
 * and the node's whole set as of that report, rebuilt from the full report
 * and the deltas since. intake_take() judges one report against it:
 *
 *   incarnation 0         an older node's full report: reconciled as it is,
 *                         never acknowledged (LEGACY)
 *   a new incarnation     the node restarted, or this coordinator did (it
 *                         knows no incarnation then): the base is forgotten;
 *                         a full report is taken, a delta answered send_full
 *   seq below the last    an older report, reordered or repeated: ignored
 *     applied             (OLD), it changes nothing, not even liveness
 *   seq == the last       a duplicate: acknowledged again, applied once
 *     applied             (DUPLICATE)
 *   a full report         the set becomes its list (FULL)
 *   a delta               applied to the set only on the base acknowledged
 *                         (base_seq), and kept only if the rebuilt set then
 *                         has the node's digest (DELTA); otherwise nothing is
 *                         reconciled, send_full is answered, and a digest
 *                         mismatch forgets the base (UNAPPLIED)
 *
 * A report is applied when its verdict is LEGACY, FULL or DELTA: the caller
 * then reconciles the whole set (the report's list, or intake_export() of
 * the rebuilt one) with reconcile_report(), exactly as for a full report.
 * No loop, catalog or model: check_intake feeds crafted report sequences.
 */
#ifndef SLUICE_INTAKE_H
#define SLUICE_INTAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "repset.h"
#include "wire.h"

struct intake {
    uint64_t incarnation; /* 0: none heard (a new node, or since this coordinator started) */
    uint64_t applied_seq; /* the highest seq applied in this incarnation */
    uint64_t acked_seq;   /* the base: the set is the node's as of it; 0: no base */
    struct repset *set;   /* allocated on the first report that has an incarnation */
};

enum intake_verdict {
    INTAKE_LEGACY,    /* an older node's full report: reconcile its list */
    INTAKE_FULL,      /* a full report: reconcile its list */
    INTAKE_DELTA,     /* a delta applied: reconcile the rebuilt set */
    INTAKE_DUPLICATE, /* applied before: answer again, change nothing */
    INTAKE_OLD,       /* older than one applied: ignored */
    INTAKE_UNAPPLIED, /* a delta that could not be applied: the whole set is asked for */
    INTAKE_VERDICT_COUNT_
};

/* Why the whole set is asked for (send_full). */
enum intake_why {
    INTAKE_WHY_NONE,
    INTAKE_WHY_NO_BASE,      /* this coordinator has no base: it restarted, or forgot it */
    INTAKE_WHY_RESTARTED,    /* a delta from a new incarnation: the node restarted */
    INTAKE_WHY_BASE,         /* the delta's base is not the report acknowledged last */
    INTAKE_WHY_DIGEST,       /* the rebuilt set's digest differs from the node's */
    INTAKE_WHY_COUNT_
};

struct intake_result {
    enum intake_verdict verdict;
    enum intake_why why;       /* INTAKE_WHY_NONE unless send_full */
    bool applied;              /* LEGACY, FULL, DELTA: reconcile the whole set */
    bool digest_mismatch;      /* the digest disagreed (FULL or a delta) */
    /* The answer: ReportResponse's ack_seq and send_full. */
    uint64_t ack_seq;
    bool send_full;
};

/* An intake with no base (all zero is one too). */
void intake_init(struct intake *in);
/* Frees the set; NULL-safe; leaves it as intake_init() does. */
void intake_done(struct intake *in);

/*
 * Judges report rep of the intake's node and, when it is applied, updates
 * the base and the rebuilt set. Writes the verdict and the answer's fields
 * into *ret. Never fails: a report that does not fit is answered send_full.
 */
void intake_take(struct intake *in, const struct wire_node_report *rep, struct intake_result *ret);

/*
 * The whole set to reconcile after rep was applied: rep's own list for
 * LEGACY and FULL, else the rebuilt set written into *scratch (grown as
 * needed, *cap its capacity; the caller frees it). Sets *ret_n.
 */
const struct wire_segment_status *intake_set(const struct intake *in,
                                             const struct wire_node_report *rep,
                                             const struct intake_result *res,
                                             struct wire_segment_status **scratch, size_t *cap,
                                             size_t *ret_n);

/* "LEGACY", "FULL", ...; "?" out of range. */
const char *intake_verdict_name(enum intake_verdict v);
/* "no_base", "restarted", "base", "digest" ("" for NONE): full_reason and the metric's label. */
const char *intake_why_name(enum intake_why w);

#endif
