/*
 * check_healthcheck: unit tests for common/healthcheck. healthcheck_target
 * is pure; healthcheck_main is run against a real http_server on 127.0.0.1
 * port 0 whose loop runs in a thread of the test process (one answering
 * /healthz with 200, one with 503), a listener that never answers, and a
 * port with no listener, and its exit code is the value checked.
 */
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "healthcheck.h"
#include "http.h"
#include "suite.h"

struct fixture {
    struct event_base *base;
    struct http_server *srv;
    pthread_t thread;
    char addr[64];
    int code; /* what /healthz answers */
};

static void h_healthz(struct evhttp_request *req, const char *rest, void *arg)
{
    struct fixture *f = arg;

    http_reply_text(req, f->code, f->code == 200 ? "ok\n" : "draining\n");
}

static void *loop_thread(void *arg)
{
    struct fixture *f = arg;

    event_base_dispatch(f->base);
    return NULL;
}

static void fixture_start(struct fixture *f, int code)
{
    memset(f, 0, sizeof(*f));
    f->code = code;
    f->base = event_base_new();
    ck_assert_ptr_nonnull(f->base);
    f->srv = http_server_new(f->base, NULL);
    ck_assert_ptr_nonnull(f->srv);
    ck_assert_int_eq(http_server_route_public(f->srv, HTTP_GET, "/healthz", false, h_healthz, f),
                     0);
    ck_assert_int_eq(http_server_bind(f->srv, "127.0.0.1:0", f->addr, sizeof(f->addr)), 0);
    ck_assert_int_eq(pthread_create(&f->thread, NULL, loop_thread, f), 0);
}

static void fixture_stop(struct fixture *f)
{
    event_base_loopexit(f->base, NULL);
    pthread_join(f->thread, NULL);
    http_server_free(f->srv);
    event_base_free(f->base);
}

/* Runs `prog healthcheck ARGS...` and returns its exit code. */
static int run(const char *a1, const char *a2, const char *a3, const char *a4)
{
    /* argv is never written; the casts only satisfy main()'s signature. */
    char *argv[6] = {(char *)(uintptr_t) "healthcheck",
                     (char *)(uintptr_t)a1,
                     (char *)(uintptr_t)a2,
                     (char *)(uintptr_t)a3,
                     (char *)(uintptr_t)a4,
                     NULL};
    int argc = 1;

    while (argc < 5 && argv[argc] != NULL)
        argc++;
    return healthcheck_main("sluice-test", "127.0.0.1:1", argc, argv);
}

/* A listening socket on 127.0.0.1 that nobody accepts from; returns the fd. */
static int silent_listener(char *addr, size_t len)
{
    struct sockaddr_in sin = {.sin_family = AF_INET};
    socklen_t sl = sizeof(sin);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    ck_assert_int_ge(fd, 0);
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    ck_assert_int_eq(listen(fd, 8), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
    snprintf(addr, len, "127.0.0.1:%u", (unsigned)ntohs(sin.sin_port));
    return fd;
}

static int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

START_TEST(test_target_wildcards)
{
    char out[64];

    ck_assert_int_eq(healthcheck_target("0.0.0.0:7100", out, sizeof(out)), 0);
    ck_assert_str_eq(out, "127.0.0.1:7100");
    ck_assert_int_eq(healthcheck_target(":7000", out, sizeof(out)), 0);
    ck_assert_str_eq(out, "127.0.0.1:7000");
    ck_assert_int_eq(healthcheck_target("*:7000", out, sizeof(out)), 0);
    ck_assert_str_eq(out, "127.0.0.1:7000");
    ck_assert_int_eq(healthcheck_target("[::]:7100", out, sizeof(out)), 0);
    ck_assert_str_eq(out, "[::1]:7100");
}
END_TEST

START_TEST(test_target_copies_and_errors)
{
    char out[16] = "unchanged";

    ck_assert_int_eq(healthcheck_target("node1:7100", out, sizeof(out)), 0);
    ck_assert_str_eq(out, "node1:7100");
    ck_assert_int_eq(healthcheck_target("[::1]:7100", out, sizeof(out)), 0);
    ck_assert_str_eq(out, "[::1]:7100");
    strcpy(out, "unchanged");
    ck_assert_int_eq(healthcheck_target("node1", out, sizeof(out)), -EINVAL);
    ck_assert_int_eq(healthcheck_target("node1:", out, sizeof(out)), -EINVAL);
    ck_assert_int_eq(healthcheck_target("a-very-long-host-name:7100", out, sizeof(out)), -ENOSPC);
    ck_assert_str_eq(out, "unchanged");
}
END_TEST

START_TEST(test_healthy_is_0)
{
    struct fixture f;

    fixture_start(&f, 200);
    ck_assert_int_eq(run("--addr", f.addr, NULL, NULL), HEALTHCHECK_EXIT_HEALTHY);
    fixture_stop(&f);
}
END_TEST

START_TEST(test_non_200_is_1)
{
    struct fixture f;

    fixture_start(&f, 503);
    ck_assert_int_eq(run("--addr", f.addr, NULL, NULL), HEALTHCHECK_EXIT_UNHEALTHY);
    fixture_stop(&f);
}
END_TEST

START_TEST(test_env_listen_wildcard_probed_on_loopback)
{
    struct fixture f;
    char listen[64];

    fixture_start(&f, 200);
    snprintf(listen, sizeof(listen), "0.0.0.0%s", strrchr(f.addr, ':'));
    ck_assert_int_eq(setenv("SLUICE_LISTEN", listen, 1), 0);
    ck_assert_int_eq(run(NULL, NULL, NULL, NULL), HEALTHCHECK_EXIT_HEALTHY);
    /* --addr wins over the environment. */
    ck_assert_int_eq(run("--addr", "127.0.0.1:1", NULL, NULL), HEALTHCHECK_EXIT_UNHEALTHY);
    unsetenv("SLUICE_LISTEN");
    /* The default ("127.0.0.1:1" here) applies without either. */
    ck_assert_int_eq(run(NULL, NULL, NULL, NULL), HEALTHCHECK_EXIT_UNHEALTHY);
    fixture_stop(&f);
}
END_TEST

START_TEST(test_refused_is_1)
{
    char addr[64];
    int fd = silent_listener(addr, sizeof(addr));

    close(fd); /* nothing listens there now */
    ck_assert_int_eq(run("--addr", addr, NULL, NULL), HEALTHCHECK_EXIT_UNHEALTHY);
}
END_TEST

START_TEST(test_silent_peer_times_out)
{
    char addr[64];
    int fd = silent_listener(addr, sizeof(addr));
    int64_t t0 = mono_ms(), took;

    ck_assert_int_eq(run("--addr", addr, "--timeout", "300ms"), HEALTHCHECK_EXIT_UNHEALTHY);
    took = mono_ms() - t0;
    ck_assert_int_ge(took, 250);
    ck_assert_int_lt(took, 2000);
    close(fd);
}
END_TEST

START_TEST(test_usage_errors_are_2)
{
    ck_assert_int_eq(run("--addr", "no-port", NULL, NULL), HEALTHCHECK_EXIT_USAGE);
    ck_assert_int_eq(run("--bogus", NULL, NULL, NULL), HEALTHCHECK_EXIT_USAGE);
    ck_assert_int_eq(run("extra", NULL, NULL, NULL), HEALTHCHECK_EXIT_USAGE);
    ck_assert_int_eq(run("--timeout", "10ms", NULL, NULL), HEALTHCHECK_EXIT_USAGE);
    ck_assert_int_eq(run("--help", NULL, NULL, NULL), HEALTHCHECK_EXIT_HEALTHY);
}
END_TEST

static Suite *healthcheck_suite(void)
{
    Suite *s = suite_create("healthcheck");
    TCase *tc;

    tc = tcase_create("target");
    tcase_add_test(tc, test_target_wildcards);
    tcase_add_test(tc, test_target_copies_and_errors);
    suite_add_tcase(s, tc);

    tc = tcase_create("probe");
    tcase_add_test(tc, test_healthy_is_0);
    tcase_add_test(tc, test_non_200_is_1);
    tcase_add_test(tc, test_env_listen_wildcard_probed_on_loopback);
    tcase_add_test(tc, test_refused_is_1);
    tcase_add_test(tc, test_silent_peer_times_out);
    suite_add_tcase(s, tc);

    tc = tcase_create("usage");
    tcase_add_test(tc, test_usage_errors_are_2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    unsetenv("SLUICE_LISTEN");
    /* The server loop runs in a thread and is stopped from the test thread. */
    if (evthread_use_pthreads() != 0)
        return EXIT_FAILURE;
    return harness_run_suite(healthcheck_suite());
}
