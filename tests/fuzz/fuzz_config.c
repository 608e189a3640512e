/*
 * fuzz_config: config_parse over an option table with every type (string,
 * int with and without a range, size, duration, double, bool, choice, a
 * required option, an environment fallback), with argv made of the input's
 * NUL-separated strings (at most 32, each an exact-size heap copy); and the
 * value parsers config_parse_size, config_parse_duration_ms and
 * config_parse_bool on the input as one string.
 *
 * Oracles: on success every target is inside its range and every choice is
 * one of its choices; on failure no target and not *ret_next_arg changed;
 * err is always a string; a second parse over the same targets replaces the
 * strings without leaking; a plain decimal means the same to the size and
 * duration parsers as to strtoull.
 */
#include "fuzz.h"

#include <errno.h>

#include "config.h"

#define MAX_ARGS 32

static const char *const modes[] = {"push", "pull", "off", NULL};

struct targets {
    char *listen, *name, *mode;
    int64_t rows, delta, count;
    uint64_t mem, big, timeout;
    double ratio, scale;
    bool verbose, color;
};

static struct targets t;

static const struct config_option opts[] = {
    {.name = "listen", .type = CONFIG_STRING, .target = &t.listen, .required = true},
    {.name = "name", .env = "SLUICE_FUZZ_NAME", .type = CONFIG_STRING, .target = &t.name,
     .default_value = "node-1"},
    {.name = "mode", .type = CONFIG_CHOICE, .target = &t.mode, .default_value = "push",
     .choices = modes},
    {.name = "rows", .type = CONFIG_INT, .target = &t.rows, .min = 1, .max = 1000000},
    {.name = "delta", .type = CONFIG_INT, .target = &t.delta, .min = -100, .max = -1,
     .default_value = "-5"},
    {.name = "count", .type = CONFIG_INT, .target = &t.count},
    {.name = "mem", .type = CONFIG_SIZE, .target = &t.mem, .min = 4096, .max = INT64_MAX},
    {.name = "big", .type = CONFIG_SIZE, .target = &t.big},
    {.name = "timeout", .env = "SLUICE_FUZZ_TIMEOUT", .type = CONFIG_DURATION,
     .target = &t.timeout, .min = 10, .max = 3600000},
    {.name = "ratio", .type = CONFIG_DOUBLE, .target = &t.ratio, .dmin = 0.0, .dmax = 1.0},
    {.name = "scale", .type = CONFIG_DOUBLE, .target = &t.scale},
    {.name = "verbose", .type = CONFIG_BOOL, .target = &t.verbose},
    {.name = "color", .env = "SLUICE_FUZZ_COLOR", .type = CONFIG_BOOL, .target = &t.color,
     .default_value = "yes"},
};
#define NOPTS (sizeof(opts) / sizeof(opts[0]))

/* The environment is part of the input space only through fixed values. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    unsetenv("SLUICE_FUZZ_NAME");
    setenv("SLUICE_FUZZ_TIMEOUT", "5s", 1);
    setenv("SLUICE_FUZZ_COLOR", "", 1); /* set but empty counts as unset */
    return 0;
}

static void check_targets(void)
{
    FUZZ_CHECK(t.listen != NULL);
    FUZZ_CHECK(t.name != NULL);
    FUZZ_CHECK(t.mode != NULL);
    FUZZ_CHECK(strcmp(t.mode, "push") == 0 || strcmp(t.mode, "pull") == 0 ||
               strcmp(t.mode, "off") == 0);
    FUZZ_CHECK(t.rows == 7 || (t.rows >= 1 && t.rows <= 1000000));
    FUZZ_CHECK(t.delta >= -100 && t.delta <= -1);
    FUZZ_CHECK(t.mem == 7 || t.mem >= 4096);
    FUZZ_CHECK(t.timeout >= 10 && t.timeout <= 3600000);
    FUZZ_CHECK(t.ratio == 7.0 || (t.ratio >= 0.0 && t.ratio <= 1.0));
    FUZZ_CHECK(isfinite(t.scale));
}

static void fuzz_parse(char **argv, int argc)
{
    struct targets before;
    char err[200];
    int next = -42, r;

    /* Sentinels outside every range, so that a write is visible. */
    memset(&t, 0, sizeof(t));
    t.rows = t.delta = t.count = 7;
    t.mem = t.big = t.timeout = 7;
    t.ratio = t.scale = 7.0;
    before = t;
    r = config_parse(opts, NOPTS, argc, argv, &next, err, sizeof(err));
    FUZZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL);
    if (r != 0) {
        FUZZ_CHECK(r == CONFIG_HELP || r == -EINVAL || r == -ERANGE);
        FUZZ_CHECK(r != CONFIG_HELP || err[0] == '\0');
        FUZZ_CHECK(r == CONFIG_HELP || err[0] != '\0');
        FUZZ_CHECK(next == -42 && memcmp(&t, &before, sizeof(t)) == 0);
        return;
    }
    FUZZ_CHECK(err[0] == '\0');
    FUZZ_CHECK(next >= 1 && next <= argc);
    check_targets();
    /* Again over the same targets: the old strings are freed on replacement. */
    r = config_parse(opts, NOPTS, argc, argv, &next, err, sizeof(err));
    FUZZ_CHECK(r == 0);
    check_targets();
    config_free_strings(opts, NOPTS);
    FUZZ_CHECK(t.listen == NULL && t.name == NULL && t.mode == NULL);
}

static void fuzz_values(const char *s)
{
    uint64_t size = 0, ms = 0, ref;
    bool b;
    int rs, rd, rb;
    char *end;

    rs = config_parse_size(s, &size);
    rd = config_parse_duration_ms(s, &ms);
    rb = config_parse_bool(s, &b);
    FUZZ_CHECK(rs == 0 || rs == -EINVAL || rs == -ERANGE);
    FUZZ_CHECK(rd == 0 || rd == -EINVAL || rd == -ERANGE);
    FUZZ_CHECK(rb == 0 || rb == -EINVAL);
    if (s[0] >= '0' && s[0] <= '9' && strspn(s, "0123456789") == strlen(s)) {
        errno = 0;
        ref = strtoull(s, &end, 10);
        if (errno == ERANGE) {
            FUZZ_CHECK(rs == -ERANGE && rd == -ERANGE);
        } else {
            FUZZ_CHECK(rs == 0 && size == ref);
            FUZZ_CHECK(rd == 0 && ms == ref);
        }
    }
    if (s[0] == '\0' || s[0] == ' ' || s[0] == '+' || s[0] == '-')
        FUZZ_CHECK(rs == -EINVAL && rd == -EINVAL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *argv[MAX_ARGS + 1];
    int argc = 0;
    size_t i = 0;
    char *whole;

    argv[argc++] = strdup("fuzz_config");
    while (i < size && argc < MAX_ARGS) {
        const uint8_t *nul = memchr(data + i, 0, size - i);
        size_t n = nul != NULL ? (size_t)(nul - (data + i)) : size - i;

        argv[argc] = fuzz_string(data + i, n);
        argc++;
        i += n + 1;
    }
    argv[argc] = NULL;
    fuzz_parse(argv, argc);
    for (int k = 0; k < argc; k++)
        free(argv[k]);

    whole = fuzz_string(data, size);
    fuzz_values(whole);
    free(whole);
    return 0;
}
