/*
 * log: key=value lines on stderr. Each line is formatted into a stack buffer
 * and written with one write(2) so that lines from several threads never
 * interleave. Expected load: a few lines per second; nothing here is on a hot
 * path, and debug lines cost one comparison when disabled.
 */
#include "log.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static enum log_level log_min_level = LOG_LEVEL_INFO;

static const char *const log_level_names[] = {"debug", "info", "warn", "error"};

void log_set_level(enum log_level level)
{
    log_min_level = level;
}

enum log_level log_get_level(void)
{
    return log_min_level;
}

int log_level_parse(const char *s, enum log_level *ret_level)
{
    for (size_t i = 0; i < sizeof(log_level_names) / sizeof(log_level_names[0]); i++) {
        if (strcmp(s, log_level_names[i]) == 0) {
            *ret_level = (enum log_level)i;
            return 0;
        }
    }
    return -EINVAL;
}

const char *log_level_name(enum log_level level)
{
    if ((unsigned)level > LOG_LEVEL_ERROR)
        return "unknown";
    return log_level_names[level];
}

void log_vwrite(enum log_level level, const char *event, const char *fmt, va_list ap)
{
    char line[2048];
    struct timeval tv;
    struct tm tm;
    size_t n;
    int r;

    if (level < log_min_level)
        return;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    n = strftime(line, sizeof(line), "ts=%Y-%m-%dT%H:%M:%S", &tm);
    r = snprintf(line + n, sizeof(line) - n, ".%03ldZ level=%s event=%s", (long)(tv.tv_usec / 1000),
                 log_level_name(level), event);
    if (r > 0)
        n += (size_t)r < sizeof(line) - n ? (size_t)r : sizeof(line) - n - 1;
    if (fmt != NULL && *fmt != '\0' && n < sizeof(line) - 2) {
        line[n++] = ' ';
        r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
        if (r > 0)
            n += (size_t)r < sizeof(line) - n ? (size_t)r : sizeof(line) - n - 1;
    }
    if (n >= sizeof(line) - 1)
        n = sizeof(line) - 2;
    /* A value that skipped log_q() still cannot start a line of its own. */
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)line[i] < 0x20)
            line[i] = '?';
    line[n++] = '\n';
    /* A failed write to stderr has nowhere to be reported. */
    while (write(STDERR_FILENO, line, n) < 0 && errno == EINTR)
        ;
}

void log_write(enum log_level level, const char *event, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_vwrite(level, event, fmt, ap);
    va_end(ap);
}

void fatal(const char *event, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_vwrite(LOG_LEVEL_ERROR, event, fmt, ap);
    va_end(ap);
    exit(1);
}

/* Bytes a value may hold and still be written bare. */
static bool log_bare_byte(unsigned char c)
{
    return c > 0x20 && c < 0x7f && c != '"' && c != '\\' && c != '=';
}

/* The escape of one byte inside quotes into esc (4 bytes); returns its length. */
static size_t log_escape(unsigned char c, char esc[4])
{
    static const char hex[] = "0123456789abcdef";

    if (c == '"' || c == '\\') {
        esc[0] = '\\';
        esc[1] = (char)c;
        return 2;
    }
    if (c == '\n' || c == '\r' || c == '\t') {
        esc[0] = '\\';
        esc[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
        return 2;
    }
    if (c < 0x20 || c > 0x7e) {
        esc[0] = '\\';
        esc[1] = 'x';
        esc[2] = hex[c >> 4];
        esc[3] = hex[c & 15];
        return 4;
    }
    esc[0] = (char)c;
    return 1;
}

const char *log_quote(char *buf, size_t len, const char *s)
{
    size_t n, need = 2, o = 0;
    bool bare;
    char esc[4];

    if (len < 3) {
        if (len > 0)
            buf[0] = '\0';
        return buf;
    }
    if (s == NULL)
        s = "";
    n = strlen(s);
    bare = n > 0 && n < len;
    for (size_t i = 0; bare && i < n; i++)
        bare = log_bare_byte((unsigned char)s[i]);
    if (bare) {
        memcpy(buf, s, n + 1);
        return buf;
    }
    for (size_t i = 0; i < n; i++)
        need += log_escape((unsigned char)s[i], esc);
    buf[o++] = '"';
    for (size_t i = 0; i < n; i++) {
        size_t k = log_escape((unsigned char)s[i], esc);

        /* Cut: what is written, then "...", the closing quote and the NUL must fit. */
        if (need + 1 > len && o + k + 3 + 2 > len)
            break;
        memcpy(buf + o, esc, k);
        o += k;
    }
    if (need + 1 > len)
        for (int d = 0; d < 3 && o + 2 < len; d++)
            buf[o++] = '.';
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}
