/*
 * check_web: the coordinator's status page (GET /) in a real browser,
 * headless Chromium from Debian, against a real cluster started through
 * tests/harness: a coordinator with a token and two nodes, four segments
 * that load and one that cannot (its file is missing: INVALID, with
 * refusals). tests/web/browse.py drives Chromium over the DevTools
 * protocol on a pipe and prints the rendered DOM; this test compares it
 * with what the API says (`sluice-coord status|nodes --json`): every
 * node's id, its state and its segment count, and the segment counts by
 * state. Without the token the page shows only its token form (and the API
 * answers 401); with it, the cluster. Screenshots (desktop and phone
 * width) go to $SLUICE_WEB_SHOTS (the build directory).
 *
 * Skipped, not failed, when chromium is not installed (tests/deps.sh
 * installs it).
 */
#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "http.h"
#include "mkseg.h"
#include "xmalloc.h"
#include "suite.h"

#define TOKEN "web-check-token-42"

static char *dir, *storage, *tokfile;
static struct harness_proc *coord, *nodes[2];
static const char *node_ids[2] = {"web-a", "web-b"};

static void setup(void)
{
    FILE *f;

    dir = harness_dir_new("sluice-web-it");
    storage = xasprintf("%s/storage", dir);
    mkdir(storage, 0755);
    tokfile = xasprintf("%s/token", dir);
    f = fopen(tokfile, "w");
    ck_assert_ptr_nonnull(f);
    fputs(TOKEN "\n", f);
    fclose(f);
    setenv("SLUICE_TOKEN", TOKEN, 1); /* for harness_ctl */
}

static void teardown(void)
{
    for (int i = 0; i < 2; i++) {
        harness_proc_free(nodes[i]);
        nodes[i] = NULL;
    }
    harness_proc_free(coord);
    coord = NULL;
    harness_dir_remove(dir);
    free(dir);
    free(storage);
    free(tokfile);
    unsetenv("SLUICE_TOKEN");
}

static bool have_chromium(void)
{
    return access("/usr/bin/chromium", X_OK) == 0;
}

/* Renders the page with browse.py; returns its exit status, the DOM in *ret_dom. */
static int browse(const char *token, const char *shot, unsigned width, unsigned height,
                  char **ret_dom)
{
    char *url = xasprintf("http://%s/", harness_proc_addr(coord));
    char *script = xasprintf("%s/../tests/web/browse.py", getenv("SLUICE_BUILD_DIR"));
    char *w = xasprintf("--width=%u", width), *h = xasprintf("--height=%u", height);
    char *s = shot != NULL ? xasprintf("--screenshot=%s/%s", getenv("SLUICE_WEB_SHOTS"), shot)
                           : xstrdup("--timeout=30");
    const char *argv[10] = {"/usr/bin/python3", script, url, w, h, s, "--timeout=40"};
    int n = 7, rc;

    if (token != NULL) {
        argv[n++] = "--token";
        argv[n++] = token;
    }
    argv[n] = NULL;
    rc = harness_run(argv, ret_dom);
    free(url);
    free(script);
    free(w);
    free(h);
    free(s);
    return rc;
}

/* A field of the one-line JSON a --json command printed: "key":N. */
static uint64_t json_u64(const char *json, const char *key)
{
    char *pat = xasprintf("\"%s\":", key);
    const char *p = strstr(json, pat);
    uint64_t v = UINT64_MAX;

    if (p != NULL)
        v = strtoull(p + strlen(pat), NULL, 10);
    free(pat);
    return v;
}

static bool all_settled(void *arg)
{
    char *out = NULL;
    bool ok = harness_ctl(coord, &out, "status", "--json", NULL) == 0 &&
              json_u64(out, "segments_loaded") == 4 && json_u64(out, "segments_invalid") == 1;

    free(out);
    return ok;
}

/* The <tr> of node id in dom (a copy, to be freed), or NULL. */
static char *node_row(const char *dom, const char *id)
{
    char *pat = xasprintf("<tr data-node=\"%s\">", id);
    const char *p = strstr(dom, pat), *end;

    free(pat);
    if (p == NULL || (end = strstr(p, "</tr>")) == NULL)
        return NULL;
    return xstrndup(p, (size_t)(end - p));
}

START_TEST(test_status_page)
{
    char *out = NULL, *dom = NULL, *data, *nodes_json = NULL, *want;
    const char *cargs[] = {NULL, NULL};
    struct http_response r;

    if (!have_chromium()) {
        fprintf(stderr, "check_web: SKIP: /usr/bin/chromium missing (tests/deps.sh installs it)\n");
        return;
    }
    cargs[0] = want = xasprintf("--token-file=%s", tokfile);
    coord = harness_coord_start(dir, cargs);
    ck_assert_ptr_nonnull(coord);
    free(want);
    for (int i = 0; i < 2; i++) {
        char *co = xasprintf("--coordinator=%s", harness_proc_addr(coord));
        char *id = xasprintf("--node-id=%s", node_ids[i]);
        char *tf = xasprintf("--token-file=%s", tokfile);
        const char *args[] = {co, id, tf, "--report-interval=200ms", NULL};

        data = xasprintf("%s/node-%d", dir, i);
        mkdir(data, 0755);
        nodes[i] = harness_node_start_calm(storage, data, args);
        ck_assert_ptr_nonnull(nodes[i]);
        free(co);
        free(id);
        free(tf);
        free(data);
    }
    for (int i = 0; i < 4; i++) {
        struct mkseg_spec spec = {.rows = 1000 * (uint64_t)(i + 1), .row_bytes = 16,
                                    .seed = (uint64_t)i + 1};
        char *path = xasprintf("%s/web-%d.seg", storage, i), detail[256];

        ck_assert_msg(mkseg_write(path, &spec, detail, sizeof(detail)) == 0, "%s",
                      detail);
        free(path);
    }
    ck_assert_int_eq(harness_ctl(coord, &out, "import", storage, NULL), 0);
    free(out);
    /* A segment whose file is not there: the nodes refuse it, it ends INVALID. */
    want = xasprintf("--uri=file://%s/missing.seg", storage);
    ck_assert_int_eq(harness_ctl(coord, &out, "add", "--id=web-missing", want, "--rows=10",
                                 "--row-size=16", NULL),
                     0);
    free(out);
    free(want);
    ck_assert_msg(harness_wait_until(all_settled, NULL, 30000), "segments did not settle");

    /* GET / needs no token and names nothing outside itself. */
    ck_assert_int_eq(http_fetch(harness_proc_addr(coord), "GET", "/", NULL, NULL, 0, NULL, 5000,
                                &r),
                     0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.content_type, "text/html; charset=utf-8");
    ck_assert_ptr_null(strstr(r.body, "src="));
    ck_assert_ptr_null(strstr(r.body, "href="));
    ck_assert_ptr_null(strstr(r.body, "url("));
    ck_assert_ptr_null(strstr(r.body, "https://"));
    http_response_done(&r);
    /* The API it calls does. */
    ck_assert_int_eq(http_fetch(harness_proc_addr(coord), "GET", "/v1/history", NULL, NULL, 0,
                                NULL, 5000, &r),
                     0);
    ck_assert_int_eq(r.status, 401);
    http_response_done(&r);

    /* Without the token: the token form, and nothing of the cluster. */
    ck_assert_int_eq(browse(NULL, NULL, 1280, 900, &dom), 0);
    ck_assert_msg(strstr(dom, "data-ready=\"login\"") != NULL, "%s", dom);
    ck_assert_msg(strstr(dom, "<form id=\"login\">") != NULL, "login form hidden: %s", dom);
    ck_assert_msg(strstr(dom, "<main id=\"app\" hidden=\"\">") != NULL, "%s", dom);
    for (int i = 0; i < 2; i++)
        ck_assert_msg(strstr(dom, node_ids[i]) == NULL, "%s shown without a token", node_ids[i]);
    free(dom);
    /* A wrong token: refused, said so. */
    ck_assert_int_eq(browse("not-the-token", NULL, 1280, 900, &dom), 0);
    ck_assert_msg(strstr(dom, "id=\"login-msg\" role=\"alert\">refused: ") != NULL, "%s", dom);
    ck_assert_msg(strstr(dom, node_ids[0]) == NULL, "%s", dom);
    free(dom);

    /* With it: what the API says. */
    ck_assert_int_eq(browse(TOKEN, "status-page.png", 1280, 900, &dom), 0);
    ck_assert_msg(strstr(dom, "data-ready=\"1\"") != NULL, "%s", dom);
    ck_assert_int_eq(harness_ctl(coord, &out, "status", "--json", NULL), 0);
    ck_assert_int_eq(harness_ctl(coord, &nodes_json, "nodes", "--json", NULL), 0);
    for (int i = 0; i < 2; i++) {
        char *row = node_row(dom, node_ids[i]), *api_pat, *p, state[16] = "", *cell;
        unsigned segs = 0;

        ck_assert_msg(row != NULL, "no row for %s: %s", node_ids[i], dom);
        ck_assert_ptr_nonnull(strstr(row, "<td class=\"node-id\">"));
        api_pat = xasprintf("\"node_id\":\"%s\"", node_ids[i]);
        p = strstr(nodes_json, api_pat);
        ck_assert_msg(p != NULL, "%s", nodes_json);
        ck_assert_int_eq(sscanf(strstr(p, "\"state\":\""), "\"state\":\"%15[A-Z]\"", state), 1);
        segs = (unsigned)json_u64(p, "segments");
        cell = xasprintf("<td class=\"node-state state-%s\">%s</td>", state, state);
        ck_assert_msg(strstr(row, cell) != NULL, "%s: want %s in %s", node_ids[i], cell, row);
        free(cell);
        cell = xasprintf("<td class=\"num node-segments\">%u</td>", segs);
        ck_assert_msg(strstr(row, cell) != NULL, "%s: want %s in %s", node_ids[i], cell, row);
        free(cell);
        ck_assert_msg(strstr(row, "<svg class=\"spark\"") != NULL, "no sparkline: %s", row);
        free(api_pat);
        free(row);
    }
    {
        static const char *const states[][2] = {{"TOTAL", "segments_total"},
                                                {"LOADED", "segments_loaded"},
                                                {"PENDING", "segments_pending"},
                                                {"INVALID", "segments_invalid"}};

        for (size_t k = 0; k < 4; k++) {
            char *cell = xasprintf("id=\"seg-count-%s\">%" PRIu64 "</b>", states[k][0],
                                   json_u64(out, states[k][1]));
            ck_assert_msg(strstr(dom, cell) != NULL, "want %s: %s", cell, dom);
            free(cell);
        }
    }
    /* Each segment listed, with its state and why the missing one is INVALID. */
    ck_assert_ptr_nonnull(strstr(dom, "<td class=\"seg-id\">web-2</td><td class=\"state-LOADED\">"));
    ck_assert_msg(strstr(dom, "<td class=\"seg-id\">web-missing</td><td class=\"state-INVALID\">"
                              "INVALID</td><td>default</td><td>-</td><td>SEGMENT_INVALID</td>") != NULL,
                  "%s", dom);
    free(out);
    free(nodes_json);
    free(dom);

    /* A phone-sized screen: the same page, one column; no horizontal page scroll. */
    ck_assert_int_eq(browse(TOKEN, "status-page-phone.png", 390, 844, &dom), 0);
    ck_assert_msg(strstr(dom, "data-ready=\"1\"") != NULL, "%s", dom);
    free(dom);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("web");
    TCase *tc = tcase_create("page");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, test_status_page);
    suite_add_tcase(s, tc);
    return harness_run_suite(s);
}
