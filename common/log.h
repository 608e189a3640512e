/*
 * log: one line per event on stderr, as key=value pairs.
 *
 * Every line starts with ts=<RFC 3339 UTC, ms> level=<level> event=<name>,
 * followed by the caller's own key=value pairs. Library code logs at debug
 * only; daemons log once, at the boundary, when state changes ("old -> new
 * (reason)") or when a peer did something wrong. The level is process-wide
 * and set once at start-up. Thread-safe: each line is written with a single
 * write(2), so lines from the sampler or the worker pool never interleave.
 */
#ifndef SLUICE_LOG_H
#define SLUICE_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum log_level {
    LOG_LEVEL_DEBUG = 0,
    LOG_LEVEL_INFO = 1,
    LOG_LEVEL_WARN = 2,
    LOG_LEVEL_ERROR = 3,
};

/* Sets the lowest level that is written. Default: LOG_LEVEL_INFO. */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);

/* Parses "debug", "info", "warn" or "error". Returns 0, or -EINVAL. */
int log_level_parse(const char *s, enum log_level *ret_level);
const char *log_level_name(enum log_level level);

/*
 * Writes one line: event is a short snake_case name, fmt (may be NULL)
 * formats the rest of the line, which should be key=value pairs. Every value
 * that a peer controls (ids, URIs, addresses, details, error messages that
 * may embed them) or that may hold a space goes through log_q(), never
 * through a bare "%s" or "\"%s\"": a newline, a quote or a " key=" in it
 * would otherwise forge a field or a whole line. As a last line of defence
 * log_vwrite() also turns any control byte that reaches it into '?'.
 */
void log_write(enum log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void log_vwrite(enum log_level level, const char *event, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

#define log_debug(...) log_write(LOG_LEVEL_DEBUG, __VA_ARGS__)
#define log_info(...)  log_write(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_warn(...)  log_write(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_error(...) log_write(LOG_LEVEL_ERROR, __VA_ARGS__)

/* Logs at error level and exits with status 1. */
void fatal(const char *event, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));

/*
 * The one quoting function for log values (logfmt's rule). Writes s into buf
 * (of size len, NUL-terminated) and returns buf:
 *  - as it is when it is 1..n bytes of printable ASCII other than space,
 *    '"', '\\' and '=' (ids, numbers, plain paths: no change);
 *  - otherwise double-quoted, with '"' and '\\' escaped by a backslash,
 *    \n \r \t as such, and every other byte below 0x20 or above 0x7e as
 *    \xHH, so that the value is one field on one line whatever s holds.
 * NULL is written as "". If the result does not fit, it is cut at a whole
 * escape and ends in ..." (quoted, even if s alone would not need quotes).
 * len < 3 gives "" in buf when len > 0. Never fails, never allocates.
 */
const char *log_quote(char *buf, size_t len, const char *s);

/* Room log_q() gives one value: enough for a URI (WIRE_URI_MAX is 1024) mostly escaped. */
#define LOG_QUOTE_MAX 1600

/*
 * log_quote() into a buffer that lives until the end of the enclosing
 * block, for use right in a log call's arguments:
 *     log_info("segment_state", "id=%s uri=%s", log_q(id), log_q(uri));
 */
#define log_q(s) log_quote((char[LOG_QUOTE_MAX]){0}, LOG_QUOTE_MAX, (s))

#endif
