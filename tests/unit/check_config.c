/*
 * check_config: unit tests for common/config. Covers every option type and
 * the value parsers, the wording of each error (it names the flag or the
 * variable and the problem), precedence flag > environment > default, "--"
 * and positional arguments, --help, the usage text, and that a failed parse
 * leaves every target as it was.
 */
#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "suite.h"

static char *t_listen, *t_mode, *t_db;
static int64_t t_rows;
static uint64_t t_mem, t_timeout;
static double t_ratio;
static bool t_verbose;

static const char *const test_modes[] = {"fast", "safe", NULL};

static const struct config_option test_opts[] = {
    {.name = "listen",
     .env = "SLUICE_LISTEN",
     .type = CONFIG_STRING,
     .target = &t_listen,
     .default_value = "127.0.0.1:7070",
     .help = "Address to listen on."},
    {.name = "rows",
     .env = "SLUICE_ROWS",
     .type = CONFIG_INT,
     .target = &t_rows,
     .default_value = "4096",
     .help = "Rows per segment.",
     .min = 1,
     .max = 1000000},
    {.name = "mem",
     .env = "SLUICE_MEM",
     .type = CONFIG_SIZE,
     .target = &t_mem,
     .default_value = "64M",
     .help = "Memory budget.",
     .min = 4096,
     .max = INT64_C(1) << 40},
    {.name = "timeout",
     .env = "SLUICE_TIMEOUT",
     .type = CONFIG_DURATION,
     .target = &t_timeout,
     .default_value = "5s",
     .help = "Request timeout.",
     .min = 100,
     .max = 3600000},
    {.name = "ratio",
     .env = "SLUICE_RATIO",
     .type = CONFIG_DOUBLE,
     .target = &t_ratio,
     .default_value = "0.5",
     .help = "Sampling ratio.",
     .dmin = 0,
     .dmax = 1},
    {.name = "verbose",
     .env = "SLUICE_VERBOSE",
     .type = CONFIG_BOOL,
     .target = &t_verbose,
     .help = "Log at debug level."},
    {.name = "mode",
     .env = "SLUICE_MODE",
     .type = CONFIG_CHOICE,
     .target = &t_mode,
     .default_value = "safe",
     .help = "Write mode.",
     .choices = test_modes},
    {.name = "db",
     .env = "SLUICE_DB",
     .type = CONFIG_STRING,
     .target = &t_db,
     .help = "Catalog database.",
     .required = true},
};
#define TEST_N (sizeof(test_opts) / sizeof(test_opts[0]))

static const char *const test_envs[] = {"SLUICE_LISTEN",  "SLUICE_ROWS",  "SLUICE_MEM",
                                        "SLUICE_TIMEOUT", "SLUICE_RATIO", "SLUICE_VERBOSE",
                                        "SLUICE_MODE",    "SLUICE_DB",    NULL};

static char test_err[256];
static int test_next;

/* Runs config_parse on a private, writable copy of args (args[0] is the command). */
static int test_parse_v(const char *const *args)
{
    char *argv[32];
    int argc = 0, r;

    for (; args[argc] != NULL; argc++) {
        ck_assert_int_lt(argc, 31);
        argv[argc] = strdup(args[argc]);
    }
    argv[argc] = NULL;
    test_next = -1;
    r = config_parse(test_opts, TEST_N, argc, argv, &test_next, test_err, sizeof(test_err));
    for (int i = 0; i < argc; i++)
        free(argv[i]);
    return r;
}

#define PARSE(...) test_parse_v((const char *const[]){"serve", __VA_ARGS__, NULL})

/* Asserts that a parse failed with code and an error containing want. */
#define ASSERT_FAILS(code, want, ...)                                                              \
    do {                                                                                           \
        int r_ = PARSE(__VA_ARGS__);                                                               \
        ck_assert_int_eq(r_, (code));                                                              \
        ck_assert_msg(strstr(test_err, (want)) != NULL, "error \"%s\" lacks \"%s\"", test_err,     \
                      (want));                                                                     \
    } while (0)

static void test_setup(void)
{
    for (size_t i = 0; test_envs[i] != NULL; i++)
        unsetenv(test_envs[i]);
    config_free_strings(test_opts, TEST_N);
    t_rows = -7;
    t_mem = 7;
    t_timeout = 7;
    t_ratio = -7.0;
    t_verbose = false;
    test_err[0] = '\0';
}

static void test_teardown(void)
{
    config_free_strings(test_opts, TEST_N);
}

START_TEST(test_defaults)
{
    ck_assert_int_eq(PARSE("--db", "/tmp/x.db"), 0);
    ck_assert_str_eq(test_err, "");
    ck_assert_str_eq(t_listen, "127.0.0.1:7070");
    ck_assert_int_eq(t_rows, 4096);
    ck_assert_uint_eq(t_mem, 64u << 20);
    ck_assert_uint_eq(t_timeout, 5000);
    ck_assert_double_eq(t_ratio, 0.5);
    ck_assert_str_eq(t_mode, "safe");
    ck_assert_str_eq(t_db, "/tmp/x.db");
    /* No flag, variable or default: the target keeps its value. */
    ck_assert(!t_verbose);
    t_verbose = true;
    ck_assert_int_eq(PARSE("--db", "d"), 0);
    ck_assert(t_verbose);
    ck_assert_int_eq(test_next, 3);
}
END_TEST

START_TEST(test_every_type)
{
    ck_assert_int_eq(PARSE("--listen", "0.0.0.0:1", "--rows=17", "--mem", "2G", "--timeout=250ms",
                           "--ratio", "0.25", "--verbose", "--mode=fast", "--db=d"),
                     0);
    ck_assert_str_eq(t_listen, "0.0.0.0:1");
    ck_assert_int_eq(t_rows, 17);
    ck_assert_uint_eq(t_mem, 2ull << 30);
    ck_assert_uint_eq(t_timeout, 250);
    ck_assert_double_eq(t_ratio, 0.25);
    ck_assert(t_verbose);
    ck_assert_str_eq(t_mode, "fast");
    ck_assert_str_eq(t_db, "d");
    ck_assert_int_eq(test_next, 12);

    /* Other spellings, and the last of a repeated flag wins. */
    ck_assert_int_eq(PARSE("--db", "d", "--mem=64KiB", "--timeout", "2m", "--ratio=.5", "--rows",
                           "+8", "--listen=", "--listen", "x=y", "--verbose=off"),
                     0);
    ck_assert_uint_eq(t_mem, 65536);
    ck_assert_uint_eq(t_timeout, 120000);
    ck_assert_double_eq(t_ratio, 0.5);
    ck_assert_int_eq(t_rows, 8);
    ck_assert_str_eq(t_listen, "x=y");
    ck_assert(!t_verbose);
    ck_assert_int_eq(PARSE("--db", "d", "--verbose=YES", "--timeout", "1h", "--mem", "4096"), 0);
    ck_assert(t_verbose);
    ck_assert_uint_eq(t_timeout, 3600000);
    ck_assert_uint_eq(t_mem, 4096);
    ck_assert_int_eq(PARSE("--db", "d", "--verbose", "--no-verbose", "--timeout", "100"), 0);
    ck_assert(!t_verbose);
    ck_assert_uint_eq(t_timeout, 100);
    ck_assert_int_eq(PARSE("--db", "d", "--listen=", "--rows", "1000000"), 0);
    ck_assert_str_eq(t_listen, "");
    ck_assert_int_eq(t_rows, 1000000);
}
END_TEST

START_TEST(test_negative_int_value)
{
    static int64_t offset;
    static const struct config_option opts[] = {
        {.name = "offset", .type = CONFIG_INT, .target = &offset, .help = "Offset."},
    };
    char a0[] = "cmd", a1[] = "--offset", a2[] = "-5", a3[] = "--offset=-9223372036854775808";
    char *argv[] = {a0, a1, a2, NULL};
    char *argv2[] = {a0, a3, NULL};
    int next = 0;

    /* A value may start with one dash; min == max == 0 means unbounded. */
    ck_assert_int_eq(config_parse(opts, 1, 3, argv, &next, test_err, sizeof(test_err)), 0);
    ck_assert_int_eq(offset, -5);
    ck_assert_int_eq(config_parse(opts, 1, 2, argv2, NULL, test_err, sizeof(test_err)), 0);
    ck_assert_int_eq(offset, INT64_MIN);
}
END_TEST

START_TEST(test_parse_size)
{
    static const struct {
        const char *s;
        uint64_t v;
    } ok[] = {
        {"0", 0},
        {"123", 123},
        {"123B", 123},
        {"64K", 64ull << 10},
        {"64k", 64ull << 10},
        {"64KiB", 64ull << 10},
        {"512M", 512ull << 20},
        {"512mib", 512ull << 20},
        {"2G", 2ull << 30},
        {"2GiB", 2ull << 30},
        {"1T", 1ull << 40},
        {"3TiB", 3ull << 40},
        {"18446744073709551615", UINT64_MAX},
        {"16777215T", 16777215ull << 40},
    };
    static const char *const bad[] = {
        "",   "K",    "-1",  " 1", "1 ",  "1.5G", "64KB",
        "1X", "0x10", "1GG", "G1", "1 G", "+1",   "99999999999999999999X"};
    static const char *const big[] = {"18446744073709551616", "16777216T", "99999999999999999999K"};
    uint64_t v;

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        v = 1;
        ck_assert_msg(config_parse_size(ok[i].s, &v) == 0, "%s", ok[i].s);
        ck_assert_uint_eq(v, ok[i].v);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        v = 42;
        ck_assert_msg(config_parse_size(bad[i], &v) == -EINVAL, "\"%s\"", bad[i]);
        ck_assert_uint_eq(v, 42);
    }
    for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++) {
        v = 42;
        ck_assert_msg(config_parse_size(big[i], &v) == -ERANGE, "%s", big[i]);
        ck_assert_uint_eq(v, 42);
    }
}
END_TEST

START_TEST(test_parse_duration)
{
    static const struct {
        const char *s;
        uint64_t v;
    } ok[] = {
        {"0", 0},       {"42", 42},
        {"250ms", 250}, {"5s", 5000},
        {"2m", 120000}, {"1h", 3600000},
        {"0ms", 0},     {"5124095576030h", 5124095576030ull * 3600000},
    };
    static const char *const bad[] = {"",   "s",    "1.5s", "5 s", "-5s",
                                      "5S", "5sec", "1d",   "ms5", "5mss"};
    uint64_t v;

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        v = 1;
        ck_assert_msg(config_parse_duration_ms(ok[i].s, &v) == 0, "%s", ok[i].s);
        ck_assert_uint_eq(v, ok[i].v);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        v = 42;
        ck_assert_msg(config_parse_duration_ms(bad[i], &v) == -EINVAL, "\"%s\"", bad[i]);
        ck_assert_uint_eq(v, 42);
    }
    ck_assert_int_eq(config_parse_duration_ms("5124095576031h", &v), -ERANGE);
    ck_assert_int_eq(config_parse_duration_ms("18446744073709551616", &v), -ERANGE);
    ck_assert_uint_eq(v, 42);
}
END_TEST

START_TEST(test_parse_bool)
{
    static const char *const yes[] = {"true", "1", "yes", "on", "TRUE", "Yes", "ON"};
    static const char *const no[] = {"false", "0", "no", "off", "False", "NO", "Off"};
    static const char *const bad[] = {"", "2", "y", "n", "truee", " true", "enable"};
    bool v;

    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        v = false;
        ck_assert_int_eq(config_parse_bool(yes[i], &v), 0);
        ck_assert(v);
        ck_assert_int_eq(config_parse_bool(no[i], &v), 0);
        ck_assert(!v);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        v = true;
        ck_assert_int_eq(config_parse_bool(bad[i], &v), -EINVAL);
        ck_assert(v);
    }
}
END_TEST

START_TEST(test_error_messages)
{
    ASSERT_FAILS(-EINVAL, "unknown flag --x", "--db", "d", "--x");
    ck_assert_str_eq(test_err, "unknown flag --x");
    ASSERT_FAILS(-EINVAL, "unknown flag --x", "--x=3");
    ck_assert_str_eq(test_err, "unknown flag --x");
    ASSERT_FAILS(-EINVAL, "unknown flag -rows (did you mean --rows?)", "-rows", "5");
    ASSERT_FAILS(-EINVAL, "unknown flag -v", "-v");
    ASSERT_FAILS(-EINVAL, "unknown flag --no-rows", "--no-rows");
    ASSERT_FAILS(-EINVAL, "--no-verbose does not take a value", "--no-verbose=1");
    ASSERT_FAILS(-EINVAL, "--listen needs a value", "--db", "d", "--listen");
    ck_assert_str_eq(test_err, "--listen needs a value");
    ASSERT_FAILS(-EINVAL, "--listen needs a value", "--listen", "--db", "d");

    ASSERT_FAILS(-EINVAL, "--rows: \"abc\" is not an integer", "--db", "d", "--rows", "abc");
    ck_assert_str_eq(test_err, "--rows: \"abc\" is not an integer");
    ASSERT_FAILS(-EINVAL, "--rows: \"12x\" is not an integer", "--rows=12x");
    ASSERT_FAILS(-EINVAL, "--rows: \"\" is not an integer", "--rows=");
    ASSERT_FAILS(-EINVAL, "--rows: \" 5\" is not an integer", "--rows= 5");
    ASSERT_FAILS(-ERANGE, "--rows: \"99999999999999999999\" is out of range", "--rows",
                 "99999999999999999999");
    ASSERT_FAILS(-ERANGE, "--rows: 0 is below the minimum 1", "--rows", "0");
    ck_assert_str_eq(test_err, "--rows: 0 is below the minimum 1");
    ASSERT_FAILS(-ERANGE, "--rows: -3 is below the minimum 1", "--rows", "-3");
    ASSERT_FAILS(-ERANGE, "--rows: 1000001 is above the maximum 1000000", "--rows=1000001");

    ASSERT_FAILS(-EINVAL, "--mem: \"64KB\" is not a size", "--mem", "64KB");
    ASSERT_FAILS(-ERANGE, "--mem: \"99999999999T\" is too large", "--mem", "99999999999T");
    ASSERT_FAILS(-ERANGE, "--mem: 1K is below the minimum 4K", "--mem", "1K");
    ASSERT_FAILS(-ERANGE, "--mem: 2T is above the maximum 1T", "--mem", "2T");
    ASSERT_FAILS(-EINVAL, "--timeout: \"1.5s\" is not a duration", "--timeout", "1.5s");
    ASSERT_FAILS(-ERANGE, "--timeout: 10ms is below the minimum 100ms", "--timeout", "10ms");
    /* A bare number is milliseconds: say so, or "5" reads as a typo for 5 s. */
    ASSERT_FAILS(-ERANGE, "--timeout: 5 is below the minimum 100ms (a bare number is "
                          "milliseconds: write 5s for seconds)",
                 "--timeout", "5");
    ASSERT_FAILS(-ERANGE, "--timeout: 2h is above the maximum 1h", "--timeout", "2h");
    ASSERT_FAILS(-EINVAL, "--ratio: \"abc\" is not a number", "--ratio", "abc");
    ASSERT_FAILS(-EINVAL, "--ratio: \"nan\" is not a number", "--ratio", "nan");
    ASSERT_FAILS(-EINVAL, "--ratio: \"inf\" is not a number", "--ratio", "inf");
    ASSERT_FAILS(-ERANGE, "--ratio: \"1e999\" is out of range", "--ratio", "1e999");
    ASSERT_FAILS(-ERANGE, "--ratio: 1.5 is above the maximum 1", "--ratio", "1.5");
    ASSERT_FAILS(-ERANGE, "--ratio: -0.1 is below the minimum 0", "--ratio=-0.1");
    ASSERT_FAILS(-EINVAL, "--verbose: \"maybe\" is not a boolean", "--verbose=maybe");
    ASSERT_FAILS(-EINVAL, "--mode: \"x\" is not one of: fast, safe", "--mode", "x");
    ck_assert_str_eq(test_err, "--mode: \"x\" is not one of: fast, safe");
    /* A choice in any case is the choice as the table spells it. */
    ck_assert_int_eq(PARSE("--db", "d", "--mode=FAST"), 0);
    ck_assert_str_eq(t_mode, "fast");

    ASSERT_FAILS(-EINVAL, "--db is required", "--rows", "5");
    ck_assert_str_eq(test_err, "--db is required (or set SLUICE_DB)");
}
END_TEST

START_TEST(test_environment)
{
    /* The environment fills in what the command line does not give. */
    setenv("SLUICE_DB", "/env/db", 1);
    setenv("SLUICE_ROWS", "77", 1);
    setenv("SLUICE_MEM", "1G", 1);
    setenv("SLUICE_TIMEOUT", "3s", 1);
    setenv("SLUICE_RATIO", "0.75", 1);
    setenv("SLUICE_VERBOSE", "on", 1);
    setenv("SLUICE_MODE", "fast", 1);
    setenv("SLUICE_LISTEN", "[::1]:9", 1);
    ck_assert_int_eq(PARSE("--rows", "5"), 0);
    ck_assert_str_eq(t_db, "/env/db");
    ck_assert_int_eq(t_rows, 5); /* flag beats environment */
    ck_assert_uint_eq(t_mem, 1ull << 30);
    ck_assert_uint_eq(t_timeout, 3000);
    ck_assert_double_eq(t_ratio, 0.75);
    ck_assert(t_verbose);
    ck_assert_str_eq(t_mode, "fast");
    ck_assert_str_eq(t_listen, "[::1]:9");
    ck_assert_int_eq(PARSE("--no-verbose", "--listen", "flag"), 0);
    ck_assert(!t_verbose);
    ck_assert_str_eq(t_listen, "flag");
    ck_assert_int_eq(t_rows, 77); /* environment beats default */

    /* A bad variable is reported as such, unless a flag overrides it. */
    setenv("SLUICE_ROWS", "abc", 1);
    ASSERT_FAILS(-EINVAL, "SLUICE_ROWS (environment): \"abc\" is not an integer", "--mem=4K");
    ck_assert_str_eq(test_err, "SLUICE_ROWS (environment): \"abc\" is not an integer");
    ck_assert_int_eq(PARSE("--rows", "9"), 0);
    ck_assert_int_eq(t_rows, 9);
    setenv("SLUICE_ROWS", "0", 1);
    ASSERT_FAILS(-ERANGE, "SLUICE_ROWS (environment): 0 is below the minimum 1", "--mem=4K");
    setenv("SLUICE_ROWS", "", 1); /* empty counts as unset: the default applies */
    ck_assert_int_eq(PARSE("--mem=4K"), 0);
    ck_assert_int_eq(t_rows, 4096);
    setenv("SLUICE_MODE", "slow", 1);
    ASSERT_FAILS(-EINVAL, "SLUICE_MODE (environment): \"slow\" is not one of: fast, safe",
                 "--mem=4K");
    unsetenv("SLUICE_MODE");
    setenv("SLUICE_VERBOSE", "maybe", 1);
    ASSERT_FAILS(-EINVAL, "SLUICE_VERBOSE (environment): \"maybe\" is not a boolean", "--mem=4K");
}
END_TEST

START_TEST(test_bad_default)
{
    static int64_t n;
    static const struct config_option opts[] = {
        {.name = "n", .type = CONFIG_INT, .target = &n, .default_value = "0", .min = 1, .max = 9},
    };
    char a0[] = "cmd";
    char *argv[] = {a0, NULL};

    n = 5;
    ck_assert_int_eq(config_parse(opts, 1, 1, argv, NULL, test_err, sizeof(test_err)), -ERANGE);
    ck_assert_str_eq(test_err, "--n (default): 0 is below the minimum 1");
    ck_assert_int_eq(n, 5);
}
END_TEST

START_TEST(test_positional)
{
    /* "--" ends the flags; what follows is positional even if it looks like a flag. */
    ck_assert_int_eq(PARSE("--db", "d", "--", "--rows", "x"), 0);
    ck_assert_int_eq(test_next, 4);
    ck_assert_int_eq(t_rows, 4096);
    /* So does the first non-flag argument; "-" is one. */
    ck_assert_int_eq(PARSE("--db", "d", "file.seg", "--rows", "abc"), 0);
    ck_assert_int_eq(test_next, 3);
    ck_assert_int_eq(t_rows, 4096);
    ck_assert_int_eq(PARSE("--rows=3", "-", "--db"), -EINVAL); /* --db never parsed: required */
    ck_assert_int_eq(PARSE("--db=d", "-", "x"), 0);
    ck_assert_int_eq(test_next, 2);
    /* A boolean never swallows the next argument. */
    ck_assert_int_eq(PARSE("--db=d", "--verbose", "true"), 0);
    ck_assert(t_verbose);
    ck_assert_int_eq(test_next, 3);
    /* No positional arguments: next is argc. */
    ck_assert_int_eq(PARSE("--db=d", "--"), 0);
    ck_assert_int_eq(test_next, 3);
    ck_assert_int_eq(PARSE("--db=d"), 0);
    ck_assert_int_eq(test_next, 2);
}
END_TEST

START_TEST(test_help)
{
    char *old_db = strdup("old");

    t_db = old_db;
    ck_assert_int_eq(PARSE("--help"), CONFIG_HELP);
    ck_assert_int_eq(PARSE("--rows", "5", "-h"), CONFIG_HELP);
    ck_assert_int_eq(test_next, -1);
    ck_assert_int_eq(t_rows, -7);
    ck_assert_ptr_eq(t_db, old_db);
    ck_assert_str_eq(test_err, "");
    /* Help wins over an error, before or after it. */
    ck_assert_int_eq(PARSE("--bogus", "--help"), CONFIG_HELP);
    ck_assert_str_eq(test_err, "");
    ck_assert_int_eq(PARSE("--rows", "abc", "-h"), CONFIG_HELP);
    /* But not after "--", where it is a positional argument. */
    ck_assert_int_eq(PARSE("--db", "d", "--", "--help"), 0);
    ck_assert_int_eq(PARSE("--bogus", "--", "--help"), -EINVAL);
    /* Nor after the first positional argument. */
    ck_assert_int_eq(PARSE("file", "-h"), -EINVAL);
    ck_assert_str_eq(test_err, "--db is required (or set SLUICE_DB)");
}
END_TEST

START_TEST(test_failure_leaves_targets)
{
    char *listen = strdup("old-listen"), *mode = strdup("old-mode"), *db = strdup("old-db");

    t_listen = listen;
    t_mode = mode;
    t_db = db;
    t_verbose = true;
    /* Errors at each stage: a flag value, a late flag, the environment, required. */
    ASSERT_FAILS(-ERANGE, "--rows", "--listen", "new", "--mem", "8K", "--timeout", "1s", "--ratio",
                 "0.9", "--no-verbose", "--mode", "fast", "--db", "new", "--rows", "0");
    ASSERT_FAILS(-EINVAL, "unknown flag", "--listen", "new", "--mode", "fast", "--db", "n", "--zz");
    setenv("SLUICE_TIMEOUT", "forever", 1);
    ASSERT_FAILS(-EINVAL, "SLUICE_TIMEOUT", "--listen", "new", "--mode", "fast", "--db", "n");
    unsetenv("SLUICE_TIMEOUT");
    ASSERT_FAILS(-EINVAL, "--db is required", "--listen", "new", "--mode", "fast", "--rows", "2");
    ck_assert_ptr_eq(t_listen, listen);
    ck_assert_str_eq(t_listen, "old-listen");
    ck_assert_ptr_eq(t_mode, mode);
    ck_assert_str_eq(t_mode, "old-mode");
    ck_assert_ptr_eq(t_db, db);
    ck_assert_int_eq(t_rows, -7);
    ck_assert_uint_eq(t_mem, 7);
    ck_assert_uint_eq(t_timeout, 7);
    ck_assert_double_eq(t_ratio, -7.0);
    ck_assert(t_verbose);
    ck_assert_int_eq(test_next, -1);
    /* A later success replaces (and frees) the old strings. */
    ck_assert_int_eq(PARSE("--db", "new"), 0);
    ck_assert_str_eq(t_db, "new");
    ck_assert_str_eq(t_listen, "127.0.0.1:7070");
}
END_TEST

START_TEST(test_free_strings)
{
    ck_assert_int_eq(PARSE("--db", "d"), 0);
    ck_assert_ptr_nonnull(t_listen);
    config_free_strings(test_opts, TEST_N);
    ck_assert_ptr_null(t_listen);
    ck_assert_ptr_null(t_mode);
    ck_assert_ptr_null(t_db);
    config_free_strings(test_opts, TEST_N); /* idempotent */
}
END_TEST

START_TEST(test_usage)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    ck_assert_ptr_nonnull(f);
    config_usage(f, "sluice-node serve [flags]", "Serves segments over HTTP.", test_opts, TEST_N);
    fclose(f);
    ck_assert_str_eq(text, "Usage: sluice-node serve [flags]\n"
                           "\n"
                           "Serves segments over HTTP.\n"
                           "\n"
                           "Flags:\n"
                           "  --listen STRING     Address to listen on.\n"
                           "                      (default: 127.0.0.1:7070; env: SLUICE_LISTEN)\n"
                           "  --rows INT          Rows per segment.\n"
                           "                      (default: 4096; range: 1..1000000; env: "
                           "SLUICE_ROWS)\n"
                           "  --mem SIZE          Memory budget.\n"
                           "                      (default: 64M; range: 4K..1T; env: SLUICE_MEM)\n"
                           "  --timeout DURATION  Request timeout.\n"
                           "                      (default: 5s; range: 100ms..1h; env: "
                           "SLUICE_TIMEOUT)\n"
                           "  --ratio NUMBER      Sampling ratio.\n"
                           "                      (default: 0.5; range: 0..1; env: SLUICE_RATIO)\n"
                           "  --[no-]verbose      Log at debug level.\n"
                           "                      (env: SLUICE_VERBOSE)\n"
                           "  --mode fast|safe    Write mode.\n"
                           "                      (default: safe; env: SLUICE_MODE)\n"
                           "  --db STRING         Catalog database.\n"
                           "                      (env: SLUICE_DB; required)\n"
                           "  -h, --help          Show this help and exit.\n");
    free(text);
}
END_TEST

START_TEST(test_usage_wrapping)
{
    static char *kind;
    static int64_t n;
    static uint64_t cache;
    static const char *const kinds[] = {"alpha", "beta", "gamma", "delta", "epsilon", NULL};
    static const struct config_option opts[] = {
        {.name = "kind",
         .type = CONFIG_CHOICE,
         .target = &kind,
         .choices = kinds,
         .help = "Kind of thing.\nSecond line.",
         .default_value = ""},
        {.name = "n", .type = CONFIG_INT, .target = &n, .min = 1, .max = INT64_MAX, .help = "N."},
        {.name = "cache",
         .type = CONFIG_SIZE,
         .target = &cache,
         .max = INT64_C(1) << 30,
         .help = "Cache."},
    };
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    /* A left column wider than 32 moves the help to its own line; \n in help indents. */
    ck_assert_ptr_nonnull(f);
    config_usage(f, "x [flags] FILE", NULL, opts, 3);
    fclose(f);
    ck_assert_str_eq(text, "Usage: x [flags] FILE\n"
                           "\n"
                           "Flags:\n"
                           "  --kind alpha|beta|gamma|delta|epsilon\n"
                           "                Kind of thing.\n"
                           "                Second line.\n"
                           "                (default: \"\")\n"
                           "  --n INT       N.\n"
                           "                (min: 1)\n"
                           "  --cache SIZE  Cache.\n"
                           "                (max: 1G)\n"
                           "  -h, --help    Show this help and exit.\n");
    free(text);
}
END_TEST

/* One TCase per behaviour, each with fresh targets and a clean environment. */
static void test_add(Suite *s, const char *name, const TTest *test)
{
    TCase *tc = tcase_create(name);

    tcase_add_checked_fixture(tc, test_setup, test_teardown);
    tcase_add_test(tc, test);
    suite_add_tcase(s, tc);
}

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");

    test_add(s, "defaults", test_defaults);
    test_add(s, "every_type", test_every_type);
    test_add(s, "negative_int_value", test_negative_int_value);
    test_add(s, "parse_size", test_parse_size);
    test_add(s, "parse_duration", test_parse_duration);
    test_add(s, "parse_bool", test_parse_bool);
    test_add(s, "error_messages", test_error_messages);
    test_add(s, "environment", test_environment);
    test_add(s, "bad_default", test_bad_default);
    test_add(s, "positional", test_positional);
    test_add(s, "help", test_help);
    test_add(s, "failure_leaves_targets", test_failure_leaves_targets);
    test_add(s, "free_strings", test_free_strings);
    test_add(s, "usage", test_usage);
    test_add(s, "usage_wrapping", test_usage_wrapping);
    return s;
}

int main(void)
{
    return harness_run_suite(config_suite());
}
