/*
 * intake: one node's reports against its acknowledged base (see intake.h).
 * Expected load: a report per node per second; a full report costs a put
 * per copy, a delta a put per change, and both a digest comparison.
 */
#include "intake.h"

#include <string.h>

/* Forgets the base and the set (the set's storage is kept for reuse). */
static void intake_reset(struct intake *in, uint64_t incarnation)
{
    in->incarnation = incarnation;
    in->applied_seq = 0;
    in->acked_seq = 0;
    if (in->set != NULL)
        repset_clear(in->set);
}

void intake_init(struct intake *in)
{
    memset(in, 0, sizeof(*in));
}

void intake_done(struct intake *in)
{
    if (in == NULL)
        return;
    repset_free(in->set);
    intake_init(in);
}

static bool digest_agrees(const struct intake *in, const struct wire_node_report *rep)
{
    return repset_count(in->set) == rep->set_count && repset_hash(in->set) == rep->set_hash;
}

static void unapplied(struct intake_result *ret, enum intake_why why)
{
    ret->verdict = INTAKE_UNAPPLIED;
    ret->why = why;
    ret->send_full = true;
}

void intake_take(struct intake *in, const struct wire_node_report *rep, struct intake_result *ret)
{
    memset(ret, 0, sizeof(*ret));
    if (rep->incarnation == 0) {
        /* An older node: full reports, nothing acknowledged, no base kept. */
        intake_reset(in, 0);
        ret->verdict = INTAKE_LEGACY;
        ret->applied = true;
        return;
    }
    if (in->set == NULL)
        in->set = repset_new();
    if (rep->incarnation != in->incarnation) {
        bool restarted = in->incarnation != 0;

        intake_reset(in, rep->incarnation);
        if (rep->delta) {
            unapplied(ret, restarted ? INTAKE_WHY_RESTARTED : INTAKE_WHY_NO_BASE);
            return;
        }
    } else if (rep->seq < in->applied_seq) {
        ret->verdict = INTAKE_OLD;
        return;
    } else if (rep->seq == in->applied_seq) {
        ret->verdict = INTAKE_DUPLICATE;
        /* Acknowledged again, unless its digest had disagreed. */
        if (in->acked_seq == rep->seq)
            ret->ack_seq = rep->seq;
        else {
            ret->why = INTAKE_WHY_DIGEST;
            ret->send_full = true;
        }
        return;
    }
    if (!rep->delta) {
        repset_replace(in->set, rep->segments, rep->n_segments);
        in->applied_seq = rep->seq;
        ret->verdict = INTAKE_FULL;
        ret->applied = true;
        ret->ack_seq = rep->seq;
        if (digest_agrees(in, rep)) {
            in->acked_seq = rep->seq;
        } else {
            /* The list is the truth and is reconciled; no delta can build on it. */
            in->acked_seq = 0;
            ret->digest_mismatch = true;
            ret->why = INTAKE_WHY_DIGEST;
            ret->send_full = true;
        }
        return;
    }
    if (in->acked_seq == 0) {
        unapplied(ret, INTAKE_WHY_NO_BASE);
        return;
    }
    if (rep->base_seq != in->acked_seq) {
        /* The node did not see the acknowledgement of a report applied since its base. */
        unapplied(ret, INTAKE_WHY_BASE);
        return;
    }
    repset_apply(in->set, rep->segments, rep->n_segments,
                 (const char(*)[WIRE_ID_MAX + 1])rep->removed, rep->n_removed);
    in->applied_seq = rep->seq;
    if (!digest_agrees(in, rep)) {
        /* The rebuilt set is not the node's: nothing is reconciled from it. */
        in->acked_seq = 0;
        repset_clear(in->set);
        ret->digest_mismatch = true;
        unapplied(ret, INTAKE_WHY_DIGEST);
        return;
    }
    in->acked_seq = rep->seq;
    ret->verdict = INTAKE_DELTA;
    ret->applied = true;
    ret->ack_seq = rep->seq;
}

const struct wire_segment_status *intake_set(const struct intake *in,
                                             const struct wire_node_report *rep,
                                             const struct intake_result *res,
                                             struct wire_segment_status **scratch, size_t *cap,
                                             size_t *ret_n)
{
    if (res->verdict != INTAKE_DELTA) {
        *ret_n = rep->n_segments;
        return rep->segments;
    }
    *ret_n = repset_export(in->set, scratch, cap);
    return *scratch;
}

const char *intake_verdict_name(enum intake_verdict v)
{
    static const char *const names[INTAKE_VERDICT_COUNT_] = {
        "LEGACY", "FULL", "DELTA", "DUPLICATE", "OLD", "UNAPPLIED"};

    return (unsigned)v < INTAKE_VERDICT_COUNT_ ? names[v] : "?";
}

const char *intake_why_name(enum intake_why w)
{
    static const char *const names[INTAKE_WHY_COUNT_] = {"", "no_base", "restarted", "base",
                                                         "digest"};

    return (unsigned)w < INTAKE_WHY_COUNT_ ? names[w] : "?";
}
