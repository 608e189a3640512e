/*
 * config: flag parsing. Expected load: once per process start, a few dozen
 * options, so everything is a linear scan and clarity wins.
 *
 * config_parse works in two phases so that bad input changes no state: it
 * first parses every value (command line, then environment, then defaults)
 * into an array of temporaries, and only when all of them validated does it
 * write the caller's targets. On any error or --help the temporaries are
 * freed and the targets are left as they were.
 */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

#include "xmalloc.h"

/* A parsed value waiting to be written to its target. */
struct config_value {
    bool set;
    union {
        char *s; /* CONFIG_STRING, CONFIG_CHOICE; owned */
        int64_t i;
        uint64_t u; /* CONFIG_SIZE, CONFIG_DURATION */
        double d;
        bool b;
    } v;
};

/* Longest left column ("  --name HINT") before help moves to its own line. */
#define CONFIG_USAGE_MAX_LEFT 32

static void config_error(char *err, size_t err_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void config_error(char *err, size_t err_len, const char *fmt, ...)
{
    va_list ap;

    if (err_len == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

static bool config_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/*
 * Parses a run of decimal digits at the start of s into *ret_value and sets
 * *ret_end past it. Returns -EINVAL if s does not start with a digit and
 * -ERANGE on overflow, in which case the digits are still skipped so the
 * caller can tell a bad suffix (-EINVAL) from a big number.
 */
static int config_parse_digits(const char *s, uint64_t *ret_value, const char **ret_end)
{
    uint64_t v = 0;
    bool overflow = false;

    *ret_end = s;
    if (!config_is_digit(*s))
        return -EINVAL;
    for (; config_is_digit(*s); s++) {
        if (__builtin_mul_overflow(v, 10, &v) ||
            __builtin_add_overflow(v, (uint64_t)(*s - '0'), &v))
            overflow = true;
    }
    *ret_end = s;
    if (overflow)
        return -ERANGE;
    *ret_value = v;
    return 0;
}

struct config_unit {
    const char *suffix;
    uint64_t factor;
};

/* Parses digits followed by one of units[] (the empty suffix included if listed). */
static int config_parse_with_units(const char *s, const struct config_unit *units, size_t nunits,
                                   bool ignore_case, uint64_t *ret_value)
{
    uint64_t v = 0, out;
    const char *end;
    int r;

    r = config_parse_digits(s, &v, &end);
    if (r == -EINVAL)
        return r;
    for (size_t i = 0; i < nunits; i++) {
        if ((ignore_case ? strcasecmp(end, units[i].suffix) : strcmp(end, units[i].suffix)) != 0)
            continue;
        if (r < 0)
            return r;
        if (__builtin_mul_overflow(v, units[i].factor, &out))
            return -ERANGE;
        *ret_value = out;
        return 0;
    }
    return -EINVAL;
}

int config_parse_size(const char *s, uint64_t *ret_bytes)
{
    static const struct config_unit units[] = {
        {"", 1},
        {"B", 1},
        {"K", UINT64_C(1) << 10},
        {"KiB", UINT64_C(1) << 10},
        {"M", UINT64_C(1) << 20},
        {"MiB", UINT64_C(1) << 20},
        {"G", UINT64_C(1) << 30},
        {"GiB", UINT64_C(1) << 30},
        {"T", UINT64_C(1) << 40},
        {"TiB", UINT64_C(1) << 40},
    };

    return config_parse_with_units(s, units, sizeof(units) / sizeof(units[0]), true, ret_bytes);
}

int config_parse_duration_ms(const char *s, uint64_t *ret_ms)
{
    static const struct config_unit units[] = {
        {"", 1}, {"ms", 1}, {"s", 1000}, {"m", 60 * 1000}, {"h", 60 * 60 * 1000},
    };

    return config_parse_with_units(s, units, sizeof(units) / sizeof(units[0]), false, ret_ms);
}

int config_parse_bool(const char *s, bool *ret_value)
{
    static const char *const yes[] = {"true", "1", "yes", "on"};
    static const char *const no[] = {"false", "0", "no", "off"};

    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *ret_value = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *ret_value = false;
            return 0;
        }
    }
    return -EINVAL;
}

/* A decimal int64 with an optional sign, and nothing else. */
static int config_parse_int(const char *s, int64_t *ret_value)
{
    const char *digits = (*s == '-' || *s == '+') ? s + 1 : s;
    char *end;
    long long v;

    if (!config_is_digit(*digits))
        return -EINVAL;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (*end != '\0')
        return -EINVAL;
    if (errno == ERANGE)
        return -ERANGE;
    *ret_value = v;
    return 0;
}

/* A finite double in strtod syntax, without leading space, nan or inf. */
static int config_parse_double(const char *s, double *ret_value)
{
    const char *digits = (*s == '-' || *s == '+') ? s + 1 : s;
    char *end;
    double v;

    if (!config_is_digit(*digits) && !(*digits == '.' && config_is_digit(digits[1])))
        return -EINVAL;
    v = strtod(s, &end);
    if (*end != '\0')
        return -EINVAL;
    if (!isfinite(v))
        return -ERANGE;
    *ret_value = v;
    return 0;
}

/* Formats a byte count with the largest binary suffix that divides it. */
static void config_format_size(char *buf, size_t len, uint64_t v)
{
    static const char suffixes[] = "KMGT";

    for (int i = 4; i >= 1; i--) {
        uint64_t unit = UINT64_C(1) << (10 * i);

        if (v != 0 && v % unit == 0) {
            snprintf(buf, len, "%" PRIu64 "%c", v / unit, suffixes[i - 1]);
            return;
        }
    }
    snprintf(buf, len, "%" PRIu64, v);
}

/* Formats milliseconds with the largest unit that divides them. */
static void config_format_duration(char *buf, size_t len, uint64_t ms)
{
    if (ms != 0 && ms % (60 * 60 * 1000) == 0)
        snprintf(buf, len, "%" PRIu64 "h", ms / (60 * 60 * 1000));
    else if (ms != 0 && ms % (60 * 1000) == 0)
        snprintf(buf, len, "%" PRIu64 "m", ms / (60 * 1000));
    else if (ms != 0 && ms % 1000 == 0)
        snprintf(buf, len, "%" PRIu64 "s", ms / 1000);
    else
        snprintf(buf, len, "%" PRIu64 "ms", ms);
}

/* Formats an int64 bound of o in the option's own notation. */
static void config_format_bound(char *buf, size_t len, const struct config_option *o, int64_t v)
{
    if (o->type == CONFIG_SIZE && v >= 0)
        config_format_size(buf, len, (uint64_t)v);
    else if (o->type == CONFIG_DURATION && v >= 0)
        config_format_duration(buf, len, (uint64_t)v);
    else
        snprintf(buf, len, "%" PRId64, v);
}

/* Writes "a, b, c" into buf. */
static void config_format_choices(char *buf, size_t len, const char *const *choices)
{
    size_t o = 0;

    buf[0] = '\0';
    for (size_t i = 0; choices[i] != NULL && o < len; i++) {
        int r = snprintf(buf + o, len - o, "%s%s", i == 0 ? "" : ", ", choices[i]);

        if (r < 0)
            break;
        o += (size_t)r;
    }
}

static bool config_bounded(const struct config_option *o)
{
    return o->min != 0 || o->max != 0;
}

static bool config_dbounded(const struct config_option *o)
{
    return o->dmin != 0.0 || o->dmax != 0.0;
}

/*
 * Reports a value outside [min, max]: text is the user's spelling, src names
 * where it came from. Returns 0 when neither below nor above.
 */
static int config_range_error(const struct config_option *o, bool below, bool above,
                              const char *text, const char *src, char *err, size_t err_len)
{
    char bound[64];

    if (below) {
        config_format_bound(bound, sizeof(bound), o, o->min);
        config_error(err, err_len, "%s: %s is below the minimum %s", src, text, bound);
        return -ERANGE;
    }
    if (above) {
        config_format_bound(bound, sizeof(bound), o, o->max);
        config_error(err, err_len, "%s: %s is above the maximum %s", src, text, bound);
        return -ERANGE;
    }
    return 0;
}

/* Range check for the uint64 types against the int64 bounds. */
static int config_check_u64(const struct config_option *o, uint64_t v, const char *text,
                            const char *src, char *err, size_t err_len)
{
    if (!config_bounded(o))
        return 0;
    return config_range_error(o, o->min > 0 && v < (uint64_t)o->min,
                              o->max < 0 || v > (uint64_t)o->max, text, src, err, err_len);
}

/*
 * Parses text as the value of o into *val (replacing what was there). src
 * names the origin for messages: "--rows", "SLUICE_ROWS (environment)".
 */
static int config_set(const struct config_option *o, struct config_value *val, const char *text,
                      const char *src, char *err, size_t err_len)
{
    struct config_value nv = {.set = true};
    char list[512];
    int r = 0;

    switch (o->type) {
    case CONFIG_STRING:
        nv.v.s = xstrdup(text);
        break;
    case CONFIG_CHOICE:
        /* Any case: `--state loaded` is LOADED; the value is the table's spelling. */
        for (size_t i = 0; o->choices[i] != NULL; i++) {
            if (strcasecmp(text, o->choices[i]) == 0) {
                nv.v.s = xstrdup(o->choices[i]);
                break;
            }
        }
        if (nv.v.s == NULL) {
            config_format_choices(list, sizeof(list), o->choices);
            config_error(err, err_len, "%s: \"%s\" is not one of: %s", src, text, list);
            return -EINVAL;
        }
        break;
    case CONFIG_INT:
        r = config_parse_int(text, &nv.v.i);
        if (r == -EINVAL)
            config_error(err, err_len, "%s: \"%s\" is not an integer", src, text);
        else if (r < 0)
            config_error(err, err_len, "%s: \"%s\" is out of range", src, text);
        else
            r = config_range_error(o, config_bounded(o) && nv.v.i < o->min,
                                   config_bounded(o) && nv.v.i > o->max, text, src, err, err_len);
        break;
    case CONFIG_SIZE:
        r = config_parse_size(text, &nv.v.u);
        if (r == -EINVAL)
            config_error(err, err_len,
                         "%s: \"%s\" is not a size (examples: 4096, 64K, 512M, 2G, 1T)", src, text);
        else if (r < 0)
            config_error(err, err_len, "%s: \"%s\" is too large", src, text);
        else
            r = config_check_u64(o, nv.v.u, text, src, err, err_len);
        break;
    case CONFIG_DURATION:
        r = config_parse_duration_ms(text, &nv.v.u);
        if (r == -EINVAL)
            config_error(err, err_len, "%s: \"%s\" is not a duration (examples: 250ms, 5s, 2m, 1h)",
                         src, text);
        else if (r < 0)
            config_error(err, err_len, "%s: \"%s\" is too large", src, text);
        else
            r = config_check_u64(o, nv.v.u, text, src, err, err_len);
        if (r == -ERANGE && err_len > 0 && text[strspn(text, "0123456789")] == '\0') {
            size_t used = strlen(err);

            if (err_len > used)
                snprintf(err + used, err_len - used,
                         " (a bare number is milliseconds: write %ss for seconds)", text);
        }
        break;
    case CONFIG_DOUBLE:
        r = config_parse_double(text, &nv.v.d);
        if (r == -EINVAL) {
            config_error(err, err_len, "%s: \"%s\" is not a number", src, text);
        } else if (r < 0) {
            config_error(err, err_len, "%s: \"%s\" is out of range", src, text);
        } else if (config_dbounded(o) && nv.v.d < o->dmin) {
            config_error(err, err_len, "%s: %s is below the minimum %g", src, text, o->dmin);
            r = -ERANGE;
        } else if (config_dbounded(o) && nv.v.d > o->dmax) {
            config_error(err, err_len, "%s: %s is above the maximum %g", src, text, o->dmax);
            r = -ERANGE;
        }
        break;
    case CONFIG_BOOL:
        r = config_parse_bool(text, &nv.v.b);
        if (r < 0)
            config_error(err, err_len,
                         "%s: \"%s\" is not a boolean (use true/false, yes/no, on/off, 1/0)", src,
                         text);
        break;
    }
    if (r < 0)
        return r;
    if (val->set && (o->type == CONFIG_STRING || o->type == CONFIG_CHOICE))
        free(val->v.s);
    *val = nv;
    return 0;
}

/* Index of the option called name[0..len), or -1. */
static ssize_t config_find(const struct config_option *opts, size_t n, const char *name, size_t len)
{
    for (size_t i = 0; i < n; i++) {
        if (strlen(opts[i].name) == len && memcmp(opts[i].name, name, len) == 0)
            return (ssize_t)i;
    }
    return -1;
}

/* The table is code, not input: mistakes in it are caught by assert. */
static void config_check_table(const struct config_option *opts, size_t n)
{
#ifndef NDEBUG
    for (size_t i = 0; i < n; i++) {
        const struct config_option *o = &opts[i];

        assert(o->name != NULL && o->name[0] != '\0' && o->name[0] != '-');
        assert(strchr(o->name, '=') == NULL && strcmp(o->name, "help") != 0);
        assert(o->target != NULL);
        assert(o->type != CONFIG_CHOICE || o->choices != NULL);
        assert(o->min <= o->max && o->dmin <= o->dmax);
        for (size_t j = 0; j < i; j++)
            assert(strcmp(opts[j].name, o->name) != 0 && "duplicate option name");
    }
#else
    (void)opts;
    (void)n;
#endif
}

static void config_free_values(const struct config_option *opts, size_t n,
                               struct config_value *vals)
{
    for (size_t i = 0; i < n; i++) {
        if (vals[i].set && (opts[i].type == CONFIG_STRING || opts[i].type == CONFIG_CHOICE))
            free(vals[i].v.s);
    }
    free(vals);
}

static bool config_is_help(const char *arg)
{
    return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0;
}

int config_parse(const struct config_option *opts, size_t n, int argc, char **argv,
                 int *ret_next_arg, char *err, size_t err_len)
{
    struct config_value *vals = xcalloc(n, sizeof(*vals));
    char src[160];
    int i, r = 0, flags_end = argc; /* where flags end, once known */

    if (err_len > 0)
        err[0] = '\0';
    config_check_table(opts, n);

    for (i = 1; i < argc; i++) {
        const char *arg = argv[i], *name, *eq, *value;
        const struct config_option *o;
        bool negated = false;
        size_t len;
        ssize_t k;

        if (strcmp(arg, "--") == 0) {
            i++;
            break;
        }
        if (config_is_help(arg)) {
            r = CONFIG_HELP;
            goto fail;
        }
        if (arg[0] != '-' || arg[1] == '\0')
            break; /* the first positional argument */
        if (arg[1] != '-') {
            if (config_find(opts, n, arg + 1, strcspn(arg + 1, "=")) >= 0)
                config_error(err, err_len, "unknown flag %s (did you mean -%.*s?)", arg,
                             (int)strcspn(arg, "="), arg);
            else
                config_error(err, err_len, "unknown flag %s", arg);
            r = -EINVAL;
            goto fail;
        }
        name = arg + 2;
        eq = strchr(name, '=');
        len = eq != NULL ? (size_t)(eq - name) : strlen(name);
        k = config_find(opts, n, name, len);
        if (k < 0 && len > 3 && strncmp(name, "no-", 3) == 0) {
            k = config_find(opts, n, name + 3, len - 3);
            if (k >= 0 && opts[k].type != CONFIG_BOOL)
                k = -1;
            negated = k >= 0;
        }
        if (k < 0) {
            config_error(err, err_len, "unknown flag --%.*s", (int)len, name);
            r = -EINVAL;
            goto fail;
        }
        o = &opts[k];
        snprintf(src, sizeof(src), "--%s", o->name);
        if (negated) {
            if (eq != NULL) {
                config_error(err, err_len, "--no-%s does not take a value", o->name);
                r = -EINVAL;
                goto fail;
            }
            value = "false";
        } else if (eq != NULL) {
            value = eq + 1;
        } else if (o->type == CONFIG_BOOL) {
            value = "true";
        } else if (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0) {
            value = argv[++i];
        } else {
            config_error(err, err_len, "--%s needs a value", o->name);
            r = -EINVAL;
            goto fail;
        }
        r = config_set(o, &vals[k], value, src, err, err_len);
        if (r < 0)
            goto fail;
    }
    flags_end = i;

    for (size_t k = 0; k < n; k++) {
        const struct config_option *o = &opts[k];
        const char *e = o->env != NULL ? getenv(o->env) : NULL;

        if (vals[k].set)
            continue;
        if (e != NULL && e[0] != '\0') {
            snprintf(src, sizeof(src), "%s (environment)", o->env);
            r = config_set(o, &vals[k], e, src, err, err_len);
        } else if (o->default_value != NULL) {
            snprintf(src, sizeof(src), "--%s (default)", o->name);
            r = config_set(o, &vals[k], o->default_value, src, err, err_len);
        } else if (o->required) {
            if (o->env != NULL)
                config_error(err, err_len, "--%s is required (or set %s)", o->name, o->env);
            else
                config_error(err, err_len, "--%s is required", o->name);
            r = -EINVAL;
        }
        if (r < 0)
            goto fail;
    }

    /* Everything validated: commit. Ownership of strings moves to the targets. */
    for (size_t k = 0; k < n; k++) {
        const struct config_option *o = &opts[k];

        if (!vals[k].set)
            continue;
        switch (o->type) {
        case CONFIG_STRING:
        case CONFIG_CHOICE:
            free(*(char **)o->target);
            *(char **)o->target = vals[k].v.s;
            break;
        case CONFIG_INT:
            *(int64_t *)o->target = vals[k].v.i;
            break;
        case CONFIG_SIZE:
        case CONFIG_DURATION:
            *(uint64_t *)o->target = vals[k].v.u;
            break;
        case CONFIG_DOUBLE:
            *(double *)o->target = vals[k].v.d;
            break;
        case CONFIG_BOOL:
            *(bool *)o->target = vals[k].v.b;
            break;
        }
    }
    free(vals);
    if (ret_next_arg != NULL)
        *ret_next_arg = i;
    return 0;

fail:
    config_free_values(opts, n, vals);
    /* "--bad --help" should show the help rather than complain. */
    for (int j = 1; r < 0 && j < flags_end && strcmp(argv[j], "--") != 0; j++) {
        if (config_is_help(argv[j]))
            r = CONFIG_HELP;
    }
    if (r == CONFIG_HELP && err_len > 0)
        err[0] = '\0';
    return r;
}

/* The placeholder after the flag name in the usage text. */
static void config_hint(char *buf, size_t len, const struct config_option *o)
{
    switch (o->type) {
    case CONFIG_STRING:
        snprintf(buf, len, " STRING");
        break;
    case CONFIG_INT:
        snprintf(buf, len, " INT");
        break;
    case CONFIG_SIZE:
        snprintf(buf, len, " SIZE");
        break;
    case CONFIG_DURATION:
        snprintf(buf, len, " DURATION");
        break;
    case CONFIG_DOUBLE:
        snprintf(buf, len, " NUMBER");
        break;
    case CONFIG_BOOL:
        buf[0] = '\0';
        break;
    case CONFIG_CHOICE: {
        size_t o_len = 0;

        buf[0] = '\0';
        for (size_t i = 0; o->choices[i] != NULL && o_len < len; i++) {
            int r = snprintf(buf + o_len, len - o_len, "%c%s", i == 0 ? ' ' : '|', o->choices[i]);

            if (r < 0)
                break;
            o_len += (size_t)r;
        }
        break;
    }
    }
}

/* "  --name HINT" or "  --[no-]name". */
static void config_left(char *buf, size_t len, const struct config_option *o)
{
    char hint[256];

    config_hint(hint, sizeof(hint), o);
    snprintf(buf, len, "  --%s%s%s", o->type == CONFIG_BOOL ? "[no-]" : "", o->name, hint);
}

/* Writes text, indenting the lines after the first by indent columns. */
static void config_put_indented(FILE *out, const char *text, int indent)
{
    for (; *text != '\0'; text++) {
        fputc(*text, out);
        if (*text == '\n')
            fprintf(out, "%*s", indent, "");
    }
}

/* The "(default: ...; range: ...; env: ...; required)" line, or "" if empty. */
static void config_details(char *buf, size_t len, const struct config_option *o)
{
    char lo[64], hi[64];
    size_t used = 0;
    int r;

#define CONFIG_ADD(...)                                                                            \
    do {                                                                                           \
        if (used < len) {                                                                          \
            r = snprintf(buf + used, len - used, "%s", used == 0 ? "(" : "; ");                    \
            used += r > 0 ? (size_t)r : 0;                                                         \
        }                                                                                          \
        if (used < len) {                                                                          \
            r = snprintf(buf + used, len - used, __VA_ARGS__);                                     \
            used += r > 0 ? (size_t)r : 0;                                                         \
        }                                                                                          \
    } while (0)

    buf[0] = '\0';
    if (o->default_value != NULL) {
        if (o->default_value[0] == '\0')
            CONFIG_ADD("default: \"\"");
        else
            CONFIG_ADD("default: %s", o->default_value);
    }
    if ((o->type == CONFIG_INT || o->type == CONFIG_SIZE || o->type == CONFIG_DURATION) &&
        config_bounded(o)) {
        config_format_bound(lo, sizeof(lo), o, o->min);
        config_format_bound(hi, sizeof(hi), o, o->max);
        if (o->max == INT64_MAX)
            CONFIG_ADD("min: %s", lo);
        else if (o->min == INT64_MIN || (o->min == 0 && o->type != CONFIG_INT))
            CONFIG_ADD("max: %s", hi);
        else
            CONFIG_ADD("range: %s..%s", lo, hi);
    }
    if (o->type == CONFIG_DOUBLE && config_dbounded(o))
        CONFIG_ADD("range: %g..%g", o->dmin, o->dmax);
    if (o->env != NULL)
        CONFIG_ADD("env: %s", o->env);
    if (o->required)
        CONFIG_ADD("required");
    if (used > 0 && used < len - 1) {
        buf[used++] = ')';
        buf[used] = '\0';
    }
#undef CONFIG_ADD
}

void config_usage(FILE *out, const char *usage_line, const char *description,
                  const struct config_option *opts, size_t n)
{
    static const char help_left[] = "  -h, --help";
    char left[512], details[512];
    int col = (int)strlen(help_left);

    for (size_t i = 0; i < n; i++) {
        int w;

        config_left(left, sizeof(left), &opts[i]);
        w = (int)strlen(left);
        if (w <= CONFIG_USAGE_MAX_LEFT && w > col)
            col = w;
    }
    col += 2; /* the help column */

    fprintf(out, "Usage: %s\n", usage_line);
    if (description != NULL && description[0] != '\0') {
        fputc('\n', out);
        config_put_indented(out, description, 0);
        fputc('\n', out);
    }
    fprintf(out, "\nFlags:\n");
    for (size_t i = 0; i < n; i++) {
        const struct config_option *o = &opts[i];
        int w;

        config_left(left, sizeof(left), o);
        w = (int)strlen(left);
        fputs(left, out);
        if (w + 2 > col)
            fprintf(out, "\n%*s", col, "");
        else
            fprintf(out, "%*s", col - w, "");
        config_put_indented(out, o->help != NULL ? o->help : "", col);
        fputc('\n', out);
        config_details(details, sizeof(details), o);
        if (details[0] != '\0')
            fprintf(out, "%*s%s\n", col, "", details);
    }
    fprintf(out, "%s%*s%s\n", help_left, col - (int)strlen(help_left), "",
            "Show this help and exit.");
}

void config_free_strings(const struct config_option *opts, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (opts[i].type == CONFIG_STRING || opts[i].type == CONFIG_CHOICE) {
            char **s = opts[i].target;

            free(*s);
            *s = NULL;
        }
    }
}
