/*
 * wire: the only place where protobuf messages exist. Every message of
 * proto/sluice.proto that crosses a process boundary has a plain C mirror
 * here, a decoder that caps the size before unpacking and validates every
 * field after it, and an encoder. Daemon code sees only the C structs.
 *
 * Decoders return 0, or a negative errno with *err naming the problem in a
 * sentence that starts with the field ("segment_id: contains '/'"): -EMSGSIZE
 * when the body is over WIRE_MAX_BODY, -EBADMSG when it is not a valid
 * protobuf message, -EINVAL when a field is out of range. On failure the
 * output struct holds nothing the caller must free. Encoders return a buffer
 * from xmalloc that the caller frees, and never fail.
 */
#ifndef SLUICE_WIRE_H
#define SLUICE_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "reason.h"

#define WIRE_CONTENT_TYPE       "application/x-protobuf"
#define WIRE_MAX_BODY           (4u << 20)
#define WIRE_ID_MAX             128
#define WIRE_URI_MAX            4096
#define WIRE_COLUMN_MAX         47
#define WIRE_DETAIL_MAX         255
#define WIRE_QUERY_MAX_SEGMENTS 1024
#define WIRE_ROW_COUNT_MAX      1000000000000ull /* 10^12 */
#define WIRE_ROW_SIZE_MAX       (16ull << 20)
/* A table name: 1..WIRE_TABLE_MAX bytes (wire_check_table); "" on the wire means this one. */
#define WIRE_TABLE_MAX          128
#define WIRE_TABLE_DEFAULT      "default"
/* Declared memory of one segment (mem_request_bytes, mem_limit_bytes): 16 TiB. */
#define WIRE_MEM_DECLARED_MAX   (1ull << 44)

enum wire_verdict { WIRE_VERDICT_UNSPECIFIED = 0, WIRE_VERDICT_ACCEPTED, WIRE_VERDICT_REJECTED };

enum wire_segment_state {
    WIRE_SEG_UNSPECIFIED = 0,
    WIRE_SEG_LOADING,
    WIRE_SEG_LOADED,
    WIRE_SEG_FAILED,
    WIRE_SEG_DROPPED,
    WIRE_SEG_COUNT_
};

enum wire_node_state { WIRE_NODE_UNSPECIFIED = 0, WIRE_NODE_SERVING, WIRE_NODE_DRAINING };

enum wire_aggregate {
    WIRE_AGG_UNSPECIFIED = 0,
    WIRE_AGG_COUNT,
    WIRE_AGG_SUM,
    WIRE_AGG_MIN,
    WIRE_AGG_MAX,
    WIRE_AGG_COUNT_
};

const char *wire_segment_state_name(enum wire_segment_state s);
const char *wire_node_state_name(enum wire_node_state s);
const char *wire_aggregate_name(enum wire_aggregate a);
int wire_aggregate_parse(const char *s, enum wire_aggregate *ret);

/*
 * True when n bytes at s are valid UTF-8 (no overlong forms, surrogates or
 * code points past U+10FFFF) without NUL bytes; otherwise false with
 * *ret_bad (may be NULL) at the first offending byte.
 */
bool wire_utf8_valid(const void *s, size_t n, size_t *ret_bad);
/*
 * Copies n bytes of src into dst (size bytes, NUL-terminated, truncated at
 * a character boundary), writing each byte that is not part of valid UTF-8
 * (and NUL) as the four characters \xNN. Returns the length written.
 */
size_t wire_utf8_escape(char *dst, size_t size, const void *src, size_t n);

struct wire_error {
    char code[32];     /* stable: "invalid_field", "bad_message", "too_large", ... */
    char message[256]; /* names the problem */
};

/* Fills err (which may be NULL) with code and a printf-style message. */
void wire_error_set(struct wire_error *err, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Field validators shared with the daemons. Return 0 or -EINVAL and fill err. */
int wire_check_segment_id(const char *field, const char *id, struct wire_error *err);
/*
 * file:///absolute/path, no '%', no control bytes. Whether the path stays
 * inside a storage root is the node's question (a '..' component or a
 * symlink is refused there with 422 SEGMENT_INVALID), not a syntax error.
 */
int wire_check_uri(const char *field, const char *uri, struct wire_error *err);
/* host:port with a host name, IPv4 or [IPv6] address and a port in 1..65535. */
int wire_check_addr(const char *field, const char *addr, struct wire_error *err);
/* True when a path component of uri is "." or "..". */
bool wire_uri_has_dot_component(const char *uri);
int wire_check_column(const char *field, const char *name, struct wire_error *err);

/* How a node reads segment data (serve --io). */
enum wire_io_mode { WIRE_IO_UNSPECIFIED = 0, WIRE_IO_MMAP, WIRE_IO_DIRECT };

/* "mmap", "direct", or "-" for a node that did not say. */
const char *wire_io_mode_name(enum wire_io_mode m);

struct wire_pressure {
    double some_avg10, full_avg10;
    double some_fraction, full_fraction;
    uint64_t usage_bytes, limit_bytes, wss_bytes;
    double p99_seconds;
    uint64_t loads_in_flight;
    bool psi_host_wide;
    enum wire_io_mode io_mode;
    uint64_t pool_bytes;   /* direct mode: the buffer pool */
    double pool_hit_ratio; /* direct mode: 0..1 over the last second */
    uint64_t pinned_bytes; /* mlock'ed segment memory (--mlock-budget) */
    bool tte_known;        /* tte_ms holds an estimate (something is growing) */
    uint64_t tte_ms;       /* estimated time to memory exhaustion */
    double growth_bytes_per_s, swapins_per_s;
    double admit_watermark; /* 0..1 in force; 0: not said (decode: anything else reads 0) */
    uint64_t queries_in_flight; /* queries scanning or queued on the node */
    uint64_t load_slots;        /* loads allowed in flight now; 0: not said */
};

struct wire_assign_request {
    char segment_id[WIRE_ID_MAX + 1];
    char uri[WIRE_URI_MAX + 1];
    uint64_t row_count;
    uint64_t avg_row_size;
    uint64_t digest; /* content digest (segment_digest), 0: unknown */
    uint64_t mem_request_bytes, mem_limit_bytes; /* declared; 0: none (wire_check_mem) */
};

struct wire_assign_response {
    enum wire_verdict verdict;
    enum wire_reason reason;
    uint32_t retry_after_ms;
    struct wire_pressure pressure;
    char detail[WIRE_DETAIL_MAX + 1];
    uint32_t status; /* the single endpoint's HTTP status; 0 if the sender did not say */
};

#define WIRE_ASSIGN_BATCH_MAX 1024

struct wire_assign_batch {
    size_t n;
    struct wire_assign_request *assignments; /* owned */
    uint64_t epoch;                          /* the coordinator's; 0: none */
};

struct wire_assign_batch_response {
    size_t n;
    struct wire_assign_response *results; /* owned */
};

struct wire_query_request {
    size_t n_segments;
    char (*segment_ids)[WIRE_ID_MAX + 1]; /* n_segments entries, owned */
    enum wire_aggregate aggregate;
    char column[WIRE_COLUMN_MAX + 1];
    char filter_column[WIRE_COLUMN_MAX + 1]; /* "" means no filter */
    int64_t lo, hi;
    char table[WIRE_TABLE_MAX + 1]; /* a broker's query: the table; "" for a node's */
    bool allow_partial;              /* broker: answer without the missing segments */
    uint32_t timeout_ms;             /* the asker's remaining wait; 0: the receiver's default */
};

struct wire_query_response {
    uint64_t rows_matched;
    bool is_float;
    int64_t int_value;
    double float_value;
    uint64_t rows_scanned;
    uint64_t bytes_scanned;
    uint64_t blocks_skipped;
    uint64_t service_us; /* the node's time on the request; 0: not said */
};

/*
 * A broker's answer to a table query: the merged result and its account of
 * the fan-out. Encoded as a QueryResponse, whose broker fields a node leaves
 * empty.
 */
struct wire_table_query_response {
    struct wire_query_response result;
    uint32_t segments;
    size_t n_missing;
    char (*missing)[WIRE_ID_MAX + 1]; /* owned */
    bool partial;
    uint32_t nodes_asked, subrequests, retries, hedges;
    uint64_t placement_version;
};

struct wire_segment_status {
    char segment_id[WIRE_ID_MAX + 1];
    enum wire_segment_state state;
    enum wire_reason reason;
    char detail[WIRE_DETAIL_MAX + 1];
    uint64_t row_count, avg_row_size;
    uint64_t file_bytes, index_bytes;
    char *uri; /* owned; NULL in node reports */
    uint64_t last_query_unix_ms;
    uint64_t digest; /* content digest of the copy, 0: unknown */
    uint64_t footprint_bytes; /* observed while LOADED; 0 otherwise */
    uint64_t mem_request_bytes, mem_limit_bytes; /* as assigned; 0: none */
    bool over_limit;          /* LOADED with footprint over a declared limit */
};

struct wire_node_status {
    char node_id[WIRE_ID_MAX + 1];
    enum wire_node_state state;
    size_t n_segments;
    struct wire_segment_status *segments; /* owned */
    uint64_t mapped_bytes, index_bytes;
    struct wire_pressure pressure;
    char version[32];
    uint64_t uptime_seconds;
    char signal_sources[512];
    double cost_factor;
    char closed_gates[256]; /* space-separated reason names */
    char warnings[1024];    /* what the operator should know, one sentence a line ('\n') */
};

/* NodeStatus.warnings: at most this many lines are sent. */
#define WIRE_WARNINGS_MAX 8

int wire_assign_request_decode(const void *buf, size_t len, struct wire_assign_request *ret,
                               struct wire_error *err);
uint8_t *wire_assign_request_encode(const struct wire_assign_request *m, size_t *ret_len);

int wire_assign_response_decode(const void *buf, size_t len, struct wire_assign_response *ret,
                                struct wire_error *err);
uint8_t *wire_assign_response_encode(const struct wire_assign_response *m, size_t *ret_len);

/* Every assignment is validated; the first invalid one names its index. */
int wire_assign_batch_decode(const void *buf, size_t len, struct wire_assign_batch *ret,
                             struct wire_error *err);
uint8_t *wire_assign_batch_encode(const struct wire_assign_batch *m, size_t *ret_len);
void wire_assign_batch_done(struct wire_assign_batch *m);

int wire_assign_batch_response_decode(const void *buf, size_t len,
                                      struct wire_assign_batch_response *ret,
                                      struct wire_error *err);
uint8_t *wire_assign_batch_response_encode(const struct wire_assign_batch_response *m,
                                           size_t *ret_len);
void wire_assign_batch_response_done(struct wire_assign_batch_response *m);

int wire_query_request_decode(const void *buf, size_t len, struct wire_query_request *ret,
                              struct wire_error *err);
uint8_t *wire_query_request_encode(const struct wire_query_request *m, size_t *ret_len);
/* Frees the id array. NULL-safe; leaves the struct zeroed. */
void wire_query_request_done(struct wire_query_request *m);

int wire_query_response_decode(const void *buf, size_t len, struct wire_query_response *ret,
                               struct wire_error *err);
uint8_t *wire_query_response_encode(const struct wire_query_response *m, size_t *ret_len);

/*
 * A broker's QueryRequest: a valid table, no segment_ids, and the checks of
 * a node's (aggregate, column, filter, lo <= hi). Nothing to free.
 */
int wire_table_query_decode(const void *buf, size_t len, struct wire_query_request *ret,
                            struct wire_error *err);
/* missing ids validated, at most WIRE_SEGMENT_LIST_MAX of them. */
int wire_table_query_response_decode(const void *buf, size_t len,
                                     struct wire_table_query_response *ret,
                                     struct wire_error *err);
uint8_t *wire_table_query_response_encode(const struct wire_table_query_response *m,
                                          size_t *ret_len);
void wire_table_query_response_done(struct wire_table_query_response *m); /* NULL-safe */

int wire_node_status_decode(const void *buf, size_t len, struct wire_node_status *ret,
                            struct wire_error *err);
uint8_t *wire_node_status_encode(const struct wire_node_status *m, size_t *ret_len);
void wire_node_status_done(struct wire_node_status *m);

int wire_error_decode(const void *buf, size_t len, struct wire_error *ret);
uint8_t *wire_error_encode(const struct wire_error *m, size_t *ret_len);

/* ---- coordinator API ---------------------------------------------------- */

#define WIRE_ADDR_MAX          255
#define WIRE_BATCH_MAX         10000
#define WIRE_REPLICATION_MAX   16
#define WIRE_REPORT_MAX_SEGS   100000
#define WIRE_CLAIM_MAX         1000
/* Listings (answers to the CLI): counts are capped before anything is allocated. */
#define WIRE_SEGMENT_LIST_MAX  1000000
#define WIRE_NODE_LIST_MAX     10000
#define WIRE_EVENT_LIST_MAX    100000
#define WIRE_TABLE_LIST_MAX    100000

struct wire_node_report {
    char node_id[WIRE_ID_MAX + 1];
    char addr[WIRE_ADDR_MAX + 1];
    enum wire_node_state state;
    struct wire_pressure pressure;
    size_t n_segments;
    struct wire_segment_status *segments; /* owned */
    uint64_t uptime_seconds;
    bool claim;
    /*
     * Delta reports (NodeReport in the proto): incarnation 0 is an older
     * node's full report, and the fields below are then 0.
     */
    uint64_t incarnation;
    uint64_t seq;
    bool delta;          /* segments: only the changes since base_seq */
    uint64_t base_seq;
    size_t n_removed;
    char (*removed)[WIRE_ID_MAX + 1]; /* owned; a delta's copies no longer held */
    uint64_t set_count, set_hash;     /* the digest of the whole set (repset.h) */
};

#define WIRE_FULL_REASON_MAX 63

struct wire_report_response {
    size_t n_drop;
    char (*drop)[WIRE_ID_MAX + 1]; /* owned */
    uint64_t ack_seq;              /* the report applied; 0: none */
    bool send_full;                /* the next report must hold the whole set */
    char full_reason[WIRE_FULL_REASON_MAX + 1];
    uint64_t epoch; /* the coordinator's leader epoch; 0: none */
};

struct wire_segment_spec {
    char segment_id[WIRE_ID_MAX + 1];
    char *uri; /* owned */
    uint64_t row_count, avg_row_size;
    uint32_t replication; /* 1..WIRE_REPLICATION_MAX after decoding */
    uint64_t digest;      /* content digest (segment_digest), 0: unknown */
    char table[WIRE_TABLE_MAX + 1]; /* WIRE_TABLE_DEFAULT after decoding an empty one */
    uint64_t mem_request_bytes, mem_limit_bytes; /* declared; 0: none (wire_check_mem) */
};

struct wire_segment_batch {
    size_t n;
    struct wire_segment_spec *specs; /* owned */
};

struct wire_batch_response {
    uint32_t registered, unchanged;
};

struct wire_table_info {
    char table[WIRE_TABLE_MAX + 1];
    uint64_t segments, segments_loaded, segments_pending, segments_invalid;
    uint64_t rows, bytes;
};

struct wire_table_list {
    size_t n;
    struct wire_table_info *tables; /* owned */
};

/* One table's recommendation (proto Recommendation says how it is made). */
struct wire_recommendation {
    char table[WIRE_TABLE_MAX + 1];
    uint64_t segments, observed;
    uint64_t p50_bytes, p90_bytes, p95_bytes, max_bytes;
    uint64_t request_bytes, limit_bytes;
    uint64_t declared_request_bytes, declared_limit_bytes;
    double request_ratio, limit_ratio;
    uint64_t estimate_bytes;
    double estimate_ratio;
    uint64_t over_limit;
};

struct wire_recommendation_list {
    size_t n;
    struct wire_recommendation *recs; /* owned */
};

struct wire_placement {
    char node_id[WIRE_ID_MAX + 1];
    enum wire_segment_state state;
};

struct wire_segment_info {
    struct wire_segment_spec spec;
    char state[16];
    size_t n_placements;
    struct wire_placement *placements; /* owned */
    uint64_t backoff_until_ms;
    char last_reason[32];
    char *explain; /* owned, may be NULL */
    uint64_t footprint_bytes; /* largest its LOADED copies reported; 0: none */
    bool over_limit;
};

struct wire_segment_list {
    size_t n;
    struct wire_segment_info *segments; /* owned */
    uint64_t total;
    char next_after[WIRE_ID_MAX + 1]; /* "" : the last page */
};

struct wire_node_info {
    char node_id[WIRE_ID_MAX + 1];
    char addr[WIRE_ADDR_MAX + 1];
    char state[16];
    struct wire_pressure pressure;
    uint32_t segments;
    char last_reason[32];
    uint64_t last_seen_ms;
    uint64_t refusals;
};

struct wire_node_list {
    size_t n;
    struct wire_node_info *nodes; /* owned */
};

struct wire_event {
    uint64_t id, ts_ms;
    char segment_id[WIRE_ID_MAX + 1];
    char node_id[WIRE_ID_MAX + 1];
    char kind[32];
    enum wire_reason reason;
    uint32_t http_status, retry_after_ms;
    char detail[WIRE_DETAIL_MAX + 1];
    uint64_t count;      /* identical events folded into this one; decode makes 0 into 1 */
    uint64_t last_ts_ms; /* the last of them; 0: only one */
};

struct wire_event_list {
    size_t n;
    struct wire_event *events; /* owned */
    uint64_t next_before;      /* 0: no older page */
};

struct wire_claim_request {
    char node_id[WIRE_ID_MAX + 1];
    uint32_t max_segments; /* 1..WIRE_CLAIM_MAX */
};

struct wire_claim_response {
    size_t n;
    struct wire_assign_request *assignments; /* owned */
};

/* Coordinators listed in ClusterStatus at most. */
#define WIRE_COORDS_MAX 16

struct wire_coord_seen {
    char addr[WIRE_ADDR_MAX + 1];
    char role[16];
    uint64_t seen_ms_ago;
};

struct wire_cluster_status {
    uint64_t segments_total, segments_pending, segments_loaded, segments_invalid;
    uint64_t segments_backing_off;
    uint32_t nodes_up, nodes_total;
    uint32_t nodes_draining; /* of nodes_up */
    uint64_t assignments_in_flight;
    char version[32];
    uint64_t uptime_seconds;
    uint64_t assignments_accepted;
    uint64_t refusals[WIRE_REASON_COUNT_]; /* by reason, since the coordinator started */
    char leader[WIRE_ADDR_MAX + 1];        /* the answering leader's advertised address */
    uint64_t leader_epoch;                 /* 0: no election (SQLite) */
    struct wire_coord_seen coordinators[WIRE_COORDS_MAX];
    size_t n_coordinators;
};

int wire_node_report_decode(const void *buf, size_t len, struct wire_node_report *ret,
                            struct wire_error *err);
uint8_t *wire_node_report_encode(const struct wire_node_report *m, size_t *ret_len);
void wire_node_report_done(struct wire_node_report *m);

int wire_report_response_decode(const void *buf, size_t len, struct wire_report_response *ret,
                                struct wire_error *err);
uint8_t *wire_report_response_encode(const struct wire_report_response *m, size_t *ret_len);
void wire_report_response_done(struct wire_report_response *m);

/*
 * A table name: 1..WIRE_TABLE_MAX bytes of valid UTF-8 holding no control
 * character (C0, DEL or C1) and no '/', with no space at either end. 0, or
 * -EINVAL with err naming field and the offending byte.
 */
int wire_check_table(const char *field, const char *name, struct wire_error *err);
/*
 * Declared memory: each of request and limit at most WIRE_MEM_DECLARED_MAX,
 * and a limit (when not 0) at least the request. 0, or -EINVAL with err
 * naming "<prefix>mem_request_bytes" or "<prefix>mem_limit_bytes".
 */
int wire_check_mem(const char *prefix, uint64_t request, uint64_t limit, struct wire_error *err);
/* Validates one spec (shared by the decoder and the CLI's import). */
int wire_check_segment_spec(const char *field, const struct wire_segment_spec *s,
                            struct wire_error *err);
int wire_segment_batch_decode(const void *buf, size_t len, struct wire_segment_batch *ret,
                              struct wire_error *err);
uint8_t *wire_segment_batch_encode(const struct wire_segment_batch *m, size_t *ret_len);
void wire_segment_batch_done(struct wire_segment_batch *m);

int wire_batch_response_decode(const void *buf, size_t len, struct wire_batch_response *ret,
                               struct wire_error *err);
uint8_t *wire_batch_response_encode(const struct wire_batch_response *m, size_t *ret_len);

int wire_segment_list_decode(const void *buf, size_t len, struct wire_segment_list *ret,
                             struct wire_error *err);
uint8_t *wire_segment_list_encode(const struct wire_segment_list *m, size_t *ret_len);
void wire_segment_list_done(struct wire_segment_list *m);

int wire_table_list_decode(const void *buf, size_t len, struct wire_table_list *ret,
                           struct wire_error *err);
uint8_t *wire_table_list_encode(const struct wire_table_list *m, size_t *ret_len);

/* GET /v1/history: per node, samples of its reports (HistoryList in the proto). */
struct wire_history_sample {
    uint64_t ts_ms, usage_bytes, limit_bytes, wss_bytes;
    double some_avg10, full_avg10, p99_seconds;
};

struct wire_node_history {
    char node_id[WIRE_ID_MAX + 1];
    size_t n;
    struct wire_history_sample *samples; /* owned by whoever filled it */
};

struct wire_history_list {
    size_t n;
    struct wire_node_history *nodes; /* owned by whoever filled it */
    uint32_t step_ms;
};

uint8_t *wire_history_list_encode(const struct wire_history_list *m, size_t *ret_len);
void wire_table_list_done(struct wire_table_list *m);

int wire_recommendation_list_decode(const void *buf, size_t len,
                                    struct wire_recommendation_list *ret, struct wire_error *err);
uint8_t *wire_recommendation_list_encode(const struct wire_recommendation_list *m,
                                         size_t *ret_len);
void wire_recommendation_list_done(struct wire_recommendation_list *m);

/* GET /v1/placements (PlacementMap in the proto). */
#define WIRE_PLACEMENT_PAGE_MAX 5000 /* segments in one answer: 5000 x ~700 bytes < 4 MiB */

struct wire_placed_segment {
    char segment_id[WIRE_ID_MAX + 1];
    char table[WIRE_TABLE_MAX + 1];
    size_t n_nodes;                    
    char (*node_ids)[WIRE_ID_MAX + 1]; /* owned */
    char state[16];
};

struct wire_placed_node {
    char node_id[WIRE_ID_MAX + 1];
    char addr[WIRE_ADDR_MAX + 1];
    char state[16];
    double p99_seconds;
    uint64_t queries_in_flight;
};

struct wire_placement_map {
    uint64_t epoch, version;
    bool full;
    size_t n_segments;
    struct wire_placed_segment *segments; /* owned */
    size_t n_nodes;
    struct wire_placed_node *nodes; /* owned */
    char next_after[WIRE_ID_MAX + 1];
};

/*
 * Segments at most WIRE_PLACEMENT_PAGE_MAX, nodes WIRE_NODE_LIST_MAX, each
 * segment's holders WIRE_NODE_LIST_MAX; every id and table validated.
 */
int wire_placement_map_decode(const void *buf, size_t len, struct wire_placement_map *ret,
                              struct wire_error *err);
uint8_t *wire_placement_map_encode(const struct wire_placement_map *m, size_t *ret_len);
void wire_placement_map_done(struct wire_placement_map *m); /* NULL-safe */

int wire_node_list_decode(const void *buf, size_t len, struct wire_node_list *ret,
                          struct wire_error *err);
uint8_t *wire_node_list_encode(const struct wire_node_list *m, size_t *ret_len);
void wire_node_list_done(struct wire_node_list *m);

int wire_event_list_decode(const void *buf, size_t len, struct wire_event_list *ret,
                           struct wire_error *err);
uint8_t *wire_event_list_encode(const struct wire_event_list *m, size_t *ret_len);
void wire_event_list_done(struct wire_event_list *m);

int wire_claim_request_decode(const void *buf, size_t len, struct wire_claim_request *ret,
                              struct wire_error *err);
uint8_t *wire_claim_request_encode(const struct wire_claim_request *m, size_t *ret_len);

int wire_claim_response_decode(const void *buf, size_t len, struct wire_claim_response *ret,
                               struct wire_error *err);
uint8_t *wire_claim_response_encode(const struct wire_claim_response *m, size_t *ret_len);
void wire_claim_response_done(struct wire_claim_response *m);

int wire_cluster_status_decode(const void *buf, size_t len, struct wire_cluster_status *ret,
                               struct wire_error *err);
uint8_t *wire_cluster_status_encode(const struct wire_cluster_status *m, size_t *ret_len);

#endif
