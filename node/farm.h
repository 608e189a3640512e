/*
 * farm: `sluice-node farm`, a test tool that runs many virtual nodes in one
 * process for tests and benchmarks of the coordinator at scale (issue 17).
 * It is not a node: it keeps no segment data and reads no kernel signal.
 *
 * One event loop serves N virtual nodes, each on its own 127.0.0.1 port
 * (port 0) under its own node id. Each virtual node runs the node's real
 * admission code (admission.h, through signals_fuse()) on simulated memory
 * signals: a capacity (its memory limit) and, for every segment it loads, a
 * footprint drawn from a seeded log-normal distribution around
 * rows x avg_row_size x --footprint-ratio (farm_footprint()), so the cost
 * model has something to learn. It answers POST /v1/assign and
 * /v1/assign/batch as a node does (202, 429 with reason and Retry-After,
 * 409, 422), holds each accepted segment LOADING for --load-time, then
 * LOADED with that footprint, and reports to the coordinator through the
 * node's own reporter (report.h). No pressure gate but MEM_CAPACITY,
 * LOAD_CONCURRENCY and DRAINING can close: there are no stalls to measure.
 *
 * A control server on --listen answers:
 *   GET  /healthz                "ok"
 *   GET  /v1/farm                one text line per virtual node (see farm.c)
 *   POST /v1/farm/kill/{id}      stops that virtual node at once, as kill -9
 *                                would: its port closes, its reports stop
 *
 * Expected load: 1,000 virtual nodes and 10^6 segments in one process on two
 * cores; each assignment is a hash lookup and one admission decision.
 */
#ifndef SLUICE_NODE_FARM_H
#define SLUICE_NODE_FARM_H

#include <stdbool.h>
#include <stdint.h>

/*
 * The footprint of segment id on any virtual node of a farm started with
 * seed: raw (rows x avg_row_size) x median x exp(sigma x z), z a standard
 * normal drawn from a hash of seed and id, so the same segment has the same
 * footprint wherever and whenever it is loaded. At least 1 byte; saturates
 * at UINT64_MAX.
 */
uint64_t farm_footprint(uint64_t seed, const char *id, uint64_t raw, double median, double sigma);

/*
 * Whether segment id is one of the fraction of "invalid files" a farm
 * started with seed answers 422 SEGMENT_INVALID (drawn from the same hash,
 * independently of the footprint).
 */
bool farm_invalid(uint64_t seed, const char *id, double fraction);

/* The `sluice-node farm` command: argv[0] is "farm". Returns the exit code. */
int farm_main(int argc, char **argv);

#endif
