/*
 * web: the coordinator's status page. GET / answers the one HTML file of
 * coordinator/web/ (CSS and JS inline), built into the binary by
 * tools/embed.py, so a cluster without internet shows it; the page reads
 * the JSON read endpoints. GET /v1/history answers what the page draws its
 * sparklines from: each node's ring of report samples (history.h).
 *
 * GET / is public, like /healthz: the page holds nothing of the cluster's;
 * every endpoint it calls needs the token when one is configured, and the
 * page asks for it. Expected load: a few browsers refreshing every 2 s.
 */
#include "coord_int.h"

#include <stdlib.h>
#include <string.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "clock.h"
#include "history.h"
#include "pbhttp.h"
#include "strmap.h"
#include "wirejson.h"
#include "xmalloc.h"

extern const unsigned char coord_web_index[];
extern const size_t coord_web_index_len;

void coord_page_cb(struct evhttp_request *req, const char *rest, void *arg)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);

    /* Nothing but this page's own inline code runs, and nothing is fetched elsewhere. */
    evhttp_add_header(h, "Content-Security-Policy",
                      "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                      "connect-src 'self'; img-src 'self' data:; form-action 'none'; "
                      "frame-ancestors 'none'; base-uri 'none'");
    evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
    evhttp_add_header(h, "Cache-Control", "no-cache");
    http_reply(req, 200, "text/html; charset=utf-8", coord_web_index, coord_web_index_len);
}

struct coord_hist_collect {
    struct wire_history_list l;
    uint64_t now_ms;
};

static int coord_collect_history(const char *key, void *value, void *arg)
{
    struct coord_hist_collect *hc = arg;
    const struct coord_node *n = value;
    struct wire_node_history *d = &hc->l.nodes[hc->l.n++];

    snprintf(d->node_id, sizeof(d->node_id), "%s", n->id);
    d->samples = xcalloc(HISTORY_SAMPLES, sizeof(*d->samples));
    d->n = history_copy(&n->hist, hc->now_ms, (uint64_t)HISTORY_SAMPLES * HISTORY_STEP_MS,
                        d->samples);
    return 0;
}

static int coord_cmp_history(const void *a, const void *b)
{
    return strcmp(((const struct wire_node_history *)a)->node_id,
                  ((const struct wire_node_history *)b)->node_id);
}

void coord_history_cb(struct evhttp_request *req, const char *rest, void *arg)
{
    struct coord *c = arg;
    struct coord_hist_collect hc;
    uint8_t *buf;
    size_t len;

    memset(&hc, 0, sizeof(hc));
    hc.now_ms = clock_wall_ms();
    hc.l.step_ms = HISTORY_STEP_MS;
    hc.l.nodes = xcalloc(strmap_count(c->nodes) + 1, sizeof(*hc.l.nodes));
    strmap_foreach(c->nodes, coord_collect_history, &hc);
    qsort(hc.l.nodes, hc.l.n, sizeof(*hc.l.nodes), coord_cmp_history);
    buf = wire_history_list_encode(&hc.l, &len);
    for (size_t i = 0; i < hc.l.n; i++)
        free(hc.l.nodes[i].samples);
    free(hc.l.nodes);
    pbhttp_reply_msg(req, 200, WIRE_MSG_HISTORY_LIST, buf, len);
}
