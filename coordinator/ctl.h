/*
 * ctl: the admin CLI of sluice-coord (status, nodes, segments, tables, recommend, add, import,
 * drain, undrain, events, explain, wait, retry, forget, and query, which talks to a broker). Each command talks to the
 * coordinator's HTTP API and prints a table for people or, with --json, one
 * JSON document for scripts: for a command that reads an endpoint, the
 * document that endpoint answers with Accept: application/json (one
 * encoder, common/wirejson).
 *
 * Exit codes (CTL_EXIT_*): 0 done; 1 the coordinator refused or failed the
 * request, or the result is not the one asked for (drain/undrain left the
 * node in another state, `wait` ended with INVALID segments); 2 usage
 * error; 3 the coordinator could not be reached; 4 `wait` timed out.
 *
 * The renderers are pure (wire struct in, text out) so tests can check the
 * output formats without a coordinator.
 */
#ifndef SLUICE_CTL_H
#define SLUICE_CTL_H

#include <stdbool.h>
#include <stdio.h>

#include "wire.h"

enum {
    CTL_EXIT_OK = 0,
    CTL_EXIT_FAILED = 1,
    CTL_EXIT_USAGE = 2,
    CTL_EXIT_UNREACHABLE = 3,
    CTL_EXIT_TIMEOUT = 4,
};

/* Runs one admin command: argv[0] is its name ("nodes", ...). */
int ctl_main(int argc, char **argv);
/* True if name is an admin command. */
bool ctl_is_command(const char *name);
/* Lists the admin commands, one per line, for `sluice-coord --help`. */
void ctl_usage(FILE *out);

void ctl_print_status(FILE *out, const struct wire_cluster_status *st, bool json);
void ctl_print_nodes(FILE *out, const struct wire_node_list *nodes, bool json);
void ctl_print_segments(FILE *out, const struct wire_segment_list *segs, bool json);
void ctl_print_tables(FILE *out, const struct wire_table_list *tables, bool json);
void ctl_print_recommendations(FILE *out, const struct wire_recommendation_list *recs, bool json);
void ctl_print_events(FILE *out, const struct wire_event_list *evs, bool json);
void ctl_print_explain(FILE *out, const struct wire_segment_info *seg, bool json);
/* A broker's answer to `query` (agg and table as asked). */
void ctl_print_query(FILE *out, const struct wire_table_query_response *r, const char *agg,
                     const char *table, bool json);
/* --filter COL:LO:HI into q's filter; 0, or -EINVAL with msg naming the problem. */
int ctl_parse_filter(const char *s, struct wire_query_request *q, char *msg, size_t len);

#endif
