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
 * formats the rest of the line, which should be key=value pairs. Values that
 * may contain spaces should be quoted by the caller with log_quote().
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
 * Copies s into buf (of size len) as a double-quoted value with '"', '\\'
 * and control characters escaped, truncating if needed. Returns buf.
 */
const char *log_quote(char *buf, size_t len, const char *s);

#endif
