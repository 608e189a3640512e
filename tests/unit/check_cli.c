/*
 * check_cli: what both CLIs print around a call: the error line for a
 * protobuf Error and for any other body, the unreachable line, and the
 * token from a file, from $SLUICE_TOKEN, and a bad file as a usage error.
 * stderr goes to a temporary file while a function under test runs.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "http.h"
#include "wire.h"
#include "suite.h"

static char test_out[1024];

static FILE *test_capture_begin(int *saved)
{
    FILE *f = tmpfile();

    ck_assert_ptr_nonnull(f);
    fflush(stderr);
    *saved = dup(STDERR_FILENO);
    ck_assert_int_ge(dup2(fileno(f), STDERR_FILENO), 0);
    return f;
}

/* Restores stderr and returns what was written (static buffer). */
static const char *test_capture_end(FILE *f, int saved)
{
    size_t n;

    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    rewind(f);
    n = fread(test_out, 1, sizeof(test_out) - 1, f);
    test_out[n] = '\0';
    fclose(f);
    return test_out;
}

START_TEST(test_print_error_protobuf)
{
    struct wire_error e = {0};
    struct http_response r = {0};
    size_t len;
    uint8_t *buf;
    FILE *f;
    int saved;

    snprintf(e.code, sizeof(e.code), "invalid_field");
    snprintf(e.message, sizeof(e.message), "segment_id: empty");
    buf = wire_error_encode(&e, &len);
    r.status = 400;
    r.body = (char *)buf;
    r.body_len = len;
    snprintf(r.content_type, sizeof(r.content_type), "%s", WIRE_CONTENT_TYPE);
    f = test_capture_begin(&saved);
    cli_print_error("sluice-coord", "add", &r);
    ck_assert_str_eq(test_capture_end(f, saved),
                     "sluice-coord add: HTTP 400 invalid_field: segment_id: empty\n");
    free(buf);
}
END_TEST

START_TEST(test_print_error_text)
{
    char body[] = "<html>not found</html>";
    struct http_response r = {0};
    FILE *f;
    int saved;

    r.status = 404;
    r.body = body;
    r.body_len = strlen(body);
    snprintf(r.content_type, sizeof(r.content_type), "text/html");
    f = test_capture_begin(&saved);
    cli_print_error("sluice-node", "status", &r);
    ck_assert_str_eq(test_capture_end(f, saved),
                     "sluice-node status: HTTP 404: <html>not found</html>\n");
}
END_TEST

START_TEST(test_call_unreachable)
{
    struct http_response r;
    FILE *f;
    int saved, rc;

    /* Port 1 on 127.0.0.1: nothing listens there in a test run. */
    f = test_capture_begin(&saved);
    rc = cli_call("sluice-node", "status", "sluice-node", "127.0.0.1:1", "GET", "/v1/status", NULL,
                  0, NULL, 2000, &r);
    test_capture_end(f, saved);
    ck_assert_int_lt(rc, 0);
    ck_assert_msg(strncmp(test_out, "sluice-node status: cannot reach the node at 127.0.0.1:1: ",
                          strlen("sluice-node status: cannot reach the node at 127.0.0.1:1: ")) ==
                      0,
                  "got: %s", test_out);
}
END_TEST

START_TEST(test_token_file_and_env)
{
    char path[] = "/tmp/check_cli.XXXXXX";
    int fd = mkstemp(path);
    char *t;

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "s3cret\nsecond line\n", 19), 19);
    close(fd);
    t = cli_load_token("sluice-coord", path);
    ck_assert_str_eq(t, "s3cret");
    free(t);
    unlink(path);
    setenv("SLUICE_TOKEN", "from-env", 1);
    t = cli_load_token("sluice-coord", "");
    ck_assert_str_eq(t, "from-env");
    free(t);
    unsetenv("SLUICE_TOKEN");
    ck_assert_ptr_null(cli_load_token("sluice-coord", NULL));
}
END_TEST

/* A token file that cannot be read is a usage error: exit 2. */
START_TEST(test_token_file_missing)
{
    (void)cli_load_token("sluice-node", "/nonexistent/check_cli/token");
}
END_TEST

/*
 * A writable argv of copied words (the CLIs reorder argv in place). It stays
 * reachable from test_argv_kept, so a test that ends in exit() leaks nothing.
 */
static char test_words[16][32];
static char *test_argv_kept[17];

static char **test_argv(const char *const *words, size_t n)
{
    ck_assert_uint_le(n, 16);
    for (size_t i = 0; i < n; i++) {
        snprintf(test_words[i], sizeof(test_words[i]), "%s", words[i]);
        test_argv_kept[i] = test_words[i];
    }
    test_argv_kept[n] = NULL;
    return test_argv_kept;
}
#define TEST_ARGV(...)                                                                             \
    test_argv((const char *const[]){__VA_ARGS__},                                                  \
              sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *))

/* Flags after the arguments, a flag's value, and "--" ending the flags. */
START_TEST(test_parse_flags_anywhere)
{
    char *node = NULL;
    bool json = false;
    const struct config_option opts[] = {
        {"node", NULL, CONFIG_STRING, &node, "default:1", "Node."},
        {"json", NULL, CONFIG_BOOL, &json, "false", "JSON."},
    };
    char **argv = TEST_ARGV("query", "a", "--node", "h:2", "b", "--json", "--", "--c");
    int next;

    cli_parse("sluice-node", opts, 2, 8, argv, &next, "query ID...", NULL, 1, -1);
    ck_assert_str_eq(node, "h:2");
    ck_assert(json);
    ck_assert_int_eq(8 - next, 3);
    ck_assert_str_eq(argv[next], "a");
    ck_assert_str_eq(argv[next + 1], "b");
    ck_assert_str_eq(argv[next + 2], "--c");
    free(node);
}
END_TEST

/* Too many arguments is a usage error: exit 2. */
START_TEST(test_parse_extra_argument)
{
    bool json = false;
    const struct config_option opts[] = {{"json", NULL, CONFIG_BOOL, &json, "false", "JSON."}};
    char **argv = TEST_ARGV("status", "--json", "extra");
    int next;

    cli_parse("sluice-coord", opts, 1, 3, argv, &next, "status", NULL, 0, 0);
}
END_TEST

static bool test_is_command(const char *name)
{
    return strcmp(name, "status") == 0;
}

/* A global flag before the command: the command moves first, the rest keep their order. */
START_TEST(test_command_first)
{
    char **argv = TEST_ARGV("sluice-coord", "--coordinator", "h:1", "status", "--json");

    ck_assert(cli_command_first(5, argv, test_is_command));
    ck_assert_str_eq(argv[1], "status");
    ck_assert_str_eq(argv[2], "--coordinator");
    ck_assert_str_eq(argv[3], "h:1");
    ck_assert_str_eq(argv[4], "--json");
}
END_TEST

/* A URL is not an address: a usage error (exit 2), not "cannot reach". */
START_TEST(test_check_addr_url)
{
    cli_check_addr("sluice-coord", "status", "--coordinator", "127.0.0.1:7000", "x");
    cli_check_addr("sluice-coord", "status", "--coordinator", "[::1]:7000", "x");
    cli_check_addr("sluice-coord", "status", "--coordinator", "http://127.0.0.1:7000", "x");
}
END_TEST

START_TEST(test_check_addr_no_port)
{
    cli_check_addr("sluice-coord", "status", "--coordinator", "127.0.0.1", "x");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cli");
    TCase *err = tcase_create("print_error");
    TCase *call = tcase_create("call");
    TCase *token = tcase_create("token");
    TCase *parse = tcase_create("parse");

    tcase_add_test(err, test_print_error_protobuf);
    tcase_add_test(err, test_print_error_text);
    tcase_add_test(call, test_call_unreachable);
    tcase_add_test(token, test_token_file_and_env);
    tcase_add_exit_test(token, test_token_file_missing, CLI_EXIT_USAGE);
    suite_add_tcase(s, err);
    suite_add_tcase(s, call);
    tcase_add_test(parse, test_parse_flags_anywhere);
    tcase_add_exit_test(parse, test_parse_extra_argument, CLI_EXIT_USAGE);
    tcase_add_test(parse, test_command_first);
    tcase_add_exit_test(parse, test_check_addr_url, CLI_EXIT_USAGE);
    tcase_add_exit_test(parse, test_check_addr_no_port, CLI_EXIT_USAGE);
    suite_add_tcase(s, token);
    suite_add_tcase(s, parse);
    return harness_run_suite(s);
}
