/*
 * config: table-driven command-line flags with SLUICE_* environment
 * fallbacks and generated --help, shared by every subcommand of both daemons
 * (DESIGN.md section 6).
 *
 * A subcommand describes its flags in a static array of struct config_option
 * and calls config_parse once at start-up. Each option takes its value from,
 * in order of precedence: the command line (--name value or --name=value),
 * then its environment variable, then its default. An option with none of
 * the three leaves its target untouched, so a target's initial value acts as
 * a last default; one marked required is an error instead. An environment
 * variable that is set but empty counts as unset. The environment is only
 * read for options not given on the command line, so a bad variable that a
 * flag overrides is not an error.
 *
 * Ranges: for CONFIG_INT, CONFIG_SIZE and CONFIG_DURATION the value must lie
 * in [min, max], for CONFIG_DOUBLE in [dmin, dmax]; min == max == 0 (or
 * dmin == dmax == 0) means no bound, which is what a designated initializer
 * that names neither gives.
 *
 * Not thread-safe (reads the environment); meant for main().
 */
#ifndef SLUICE_CONFIG_H
#define SLUICE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* config_parse's return value when -h or --help was given. */
#define CONFIG_HELP 1

enum config_type {
    CONFIG_STRING,   /* target char **: a copy the caller owns */
    CONFIG_INT,      /* target int64_t *: decimal, optional sign */
    CONFIG_SIZE,     /* target uint64_t *: bytes; 4096, 64K, 512M, 2G, 1T, KiB..TiB */
    CONFIG_DURATION, /* target uint64_t *: milliseconds; 250ms, 5s, 2m, 1h, bare = ms (a bare
                        number out of range says so) */
    CONFIG_DOUBLE,   /* target double *: finite, strtod syntax */
    CONFIG_BOOL,     /* target bool *: --flag, --no-flag, --flag=true/false/1/0/yes/no/on/off */
    CONFIG_CHOICE,   /* target char **: one of choices[] in any case, as choices[] spells it */
};

struct config_option {
    const char *name; /* "listen" for --listen; unique, not "help" */
    const char *env;  /* "SLUICE_LISTEN", or NULL for none */
    enum config_type type;
    void *target;               /* see enum config_type */
    const char *default_value;  /* parsed like user input; NULL for none */
    const char *help;           /* one sentence; may contain '\n' */
    int64_t min, max;           /* CONFIG_INT, CONFIG_SIZE, CONFIG_DURATION */
    double dmin, dmax;          /* CONFIG_DOUBLE */
    const char *const *choices; /* CONFIG_CHOICE: NULL-terminated */
    bool required;              /* error if no flag, environment or default */
};

/*
 * Parses argv[1..argc) against opts[0..n). argv[0] is the command (or
 * subcommand) name and is skipped. Parsing stops at "--" (consumed) or at the
 * first argument that is not a flag ("-" alone is not a flag); on success the
 * index of the first positional argument is stored in *ret_next_arg (which may
 * be NULL), argc if there is none.
 *
 * "--name value" takes the next argument as the value unless that argument
 * starts with "--" (use --name=value for such a value); boolean flags never
 * take the next argument. A repeated flag: the last one wins.
 *
 * Returns 0 with every target written; CONFIG_HELP if -h or --help was seen
 * (also after an error, so "--bad --help" shows the help); or a negative
 * errno (-EINVAL, or -ERANGE for a value out of range) with a one-line
 * message in err naming the flag or variable and the problem, for example
 * "--rows: \"abc\" is not an integer" or "SLUICE_ROWS (environment): 0 is
 * below the minimum 1". Unless 0 is returned, neither the targets nor
 * *ret_next_arg are touched. String targets must be NULL or hold a string from an earlier
 * config_parse: it is freed when replaced. err may be NULL when err_len is 0;
 * otherwise it is always NUL-terminated on return ("" on success).
 */
int config_parse(const struct config_option *opts, size_t n, int argc, char **argv,
                 int *ret_next_arg, char *err, size_t err_len);

/*
 * Writes the help text: "Usage: <usage_line>", the description (may be NULL),
 * then one entry per flag (name, type hint, help, and a line with its
 * default, range, environment variable and whether it is required), aligned,
 * and -h, --help last. The README's flag tables are copied from this.
 */
void config_usage(FILE *out, const char *usage_line, const char *description,
                  const struct config_option *opts, size_t n);

/* Frees the string targets (CONFIG_STRING, CONFIG_CHOICE) and sets them to NULL. */
void config_free_strings(const struct config_option *opts, size_t n);

/*
 * The value parsers, for reuse (for example by a fuzz target or a config
 * reload). Each accepts the whole string or nothing: no leading or trailing
 * space, no trailing junk. Return 0, -EINVAL for bad syntax, or -ERANGE when
 * the value does not fit in 64 bits; *ret_ is written only on success.
 *
 * config_parse_size: a decimal integer with an optional binary suffix,
 * case-insensitive: B, K/KiB, M/MiB, G/GiB, T/TiB (powers of 1024).
 * config_parse_duration_ms: a decimal integer with an optional unit ms, s, m
 * or h; no unit means milliseconds.
 * config_parse_bool: true/false, 1/0, yes/no, on/off, case-insensitive.
 */
int config_parse_size(const char *s, uint64_t *ret_bytes);
int config_parse_duration_ms(const char *s, uint64_t *ret_ms);
int config_parse_bool(const char *s, bool *ret_value);

#endif
