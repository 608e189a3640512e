/*
 * sluice-coord: the coordinator daemon (`serve`) and the admin CLI (every
 * other command, see ctl.h), one binary in the Consul/Nomad manner. Only
 * option parsing and the event loop live here.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "catalog.h"
#include "cli.h"
#include "config.h"
#include "healthcheck.h"
#include "broker.h"
#include "coord.h"
#include "daemon.h"
#include "ctl.h"
#include "log.h"
#include "sluice_config.h"
#include "sqldb.h"
#include "xmalloc.h"

#define N_OPTS(a) (sizeof(a) / sizeof((a)[0]))

static int cmd_serve(int argc, char **argv)
{
    char *listen = NULL, *db = NULL, *catalog = NULL, *locator = NULL, shown[256];
    char *advertise = NULL, rebind[128];
    struct daemon_server_flags srv = {0};
    char *placement = NULL, *node_rows = NULL;
    uint64_t bytes_per_row = 0;
    static const char *const placements[] = {"roundrobin", "rowcount", NULL};
    uint64_t node_timeout = 0, assign_timeout = 0, drop_retry = 0, events_keep = 0;
    int64_t in_flight = 0;
    struct broker_flags bf = {0};
    const struct config_option opts[] = {
        {"listen", "SLUICE_LISTEN", CONFIG_STRING, &listen, "127.0.0.1:7000",
         "Address to serve HTTP on (host:port; port 0 picks a free one)."},
        {"advertise", "SLUICE_ADVERTISE", CONFIG_STRING, &advertise, "",
         "host:port clients are sent to when this coordinator leads (standbys name it in "
         "X-Sluice-Leader; default: the bound --listen address, a wildcard host replaced by "
         "the host name)."},
        {"catalog", "SLUICE_CATALOG", CONFIG_STRING, &catalog, NULL,
         "The catalog: sqlite:FILE (created if missing; WAL, synchronous=FULL) or a PostgreSQL "
         "connection URI, postgresql://USER@HOST:PORT/DB (libpq; the database must exist)."},
        {"db", "SLUICE_DB", CONFIG_STRING, &db, NULL,
         "The same as --catalog sqlite:FILE (kept for existing setups)."},
        {"node-timeout", "SLUICE_NODE_TIMEOUT", CONFIG_DURATION, &node_timeout, "5s",
         "A node that has not reported for this long is DOWN; its segments move.", 500,
         3600000},
        {"assign-timeout", "SLUICE_ASSIGN_TIMEOUT", CONFIG_DURATION, &assign_timeout, "10s",
         "An assignment with no answer marks its node SUSPECT and goes elsewhere.", 100,
         600000},
        {"max-in-flight", "SLUICE_MAX_IN_FLIGHT", CONFIG_INT, &in_flight, "64",
         "Assignments in flight per node.", 1, 100000},
        {"drop-retry", "SLUICE_DROP_RETRY", CONFIG_DURATION, &drop_retry, "60s",
         "A segment a node dropped or failed does not go back to it before this.", 0,
         86400000},
        {"events-keep", "SLUICE_EVENTS_KEEP", CONFIG_INT, &events_keep, "100000",
         "Events kept in the catalog (older ones are trimmed; ~130 bytes each on disk).", 100,
         10000000},
        DAEMON_SERVER_OPTIONS(srv),
        {"placement", "SLUICE_PLACEMENT", CONFIG_CHOICE, &placement, "roundrobin",
         "roundrobin: Sluice (blind round-robin, nodes refuse). rowcount: the central "
         "row-count scheduler, for comparison only (run its nodes with --admission=off).",
         .choices = placements},
        {"bytes-per-row", "SLUICE_BYTES_PER_ROW", CONFIG_SIZE, &bytes_per_row, "64",
         "rowcount: assumed bytes per row; a node's capacity is its memory limit / this.", 1,
         1 << 30},
        {"node-rows", "SLUICE_NODE_ROWS", CONFIG_STRING, &node_rows, "",
         "rowcount: explicit capacities in rows, id=rows,... (overrides --bytes-per-row)."},
        BROKER_OPTIONS(bf),
    };
    struct broker_config bcfg;
    struct event_base *base = NULL;
    struct coord_config cfg;
    struct coord *c = NULL;
    char err[512], fields[1100], *token = NULL;
    int next, rc;

    cli_parse("sluice-coord", opts, N_OPTS(opts), argc, argv, &next,
              "sluice-coord serve --catalog sqlite:FILE|postgresql://... [flags]",
              "Run the Sluice coordinator: register segments, place them round-robin on nodes "
              "that may refuse.",
              0, 0);
    if ((catalog != NULL) == (db != NULL)) {
        fprintf(stderr,
                "sluice-coord serve: %s\n(see: sluice-coord serve --help)\n",
                catalog == NULL ? "no catalog: give --catalog sqlite:FILE or postgresql://... (or "
                                  "--db FILE, SLUICE_CATALOG, SLUICE_DB)"
                                : "--catalog and --db (or SLUICE_CATALOG and SLUICE_DB) are both "
                                  "given; --db FILE is --catalog sqlite:FILE: give one");
        config_free_strings(opts, N_OPTS(opts));
        return 2;
    }
    locator = catalog != NULL ? xstrdup(catalog) : xasprintf("sqlite:%s", db);
    sqldb_redact(locator, shown, sizeof(shown));
    base = daemon_init("sluice-coord", &srv, &token);
    memset(&cfg, 0, sizeof(cfg));
    cfg.listen = listen;
    cfg.advertise = advertise;
    cfg.db_path = locator;
    cfg.token = token;
    cfg.node_timeout_ms = node_timeout;
    cfg.assign_timeout_ms = assign_timeout;
    cfg.max_in_flight_per_node = (unsigned)in_flight;
    cfg.drop_retry_ms = drop_retry;
    cfg.events_keep = events_keep;
    cfg.limits = daemon_server_limits(&srv);
    cfg.placement = placement;
    cfg.bytes_per_row = bytes_per_row;
    cfg.node_rows = node_rows;
    /* Table queries on the coordinator itself (POST /v1/query), the broker's code. */
    memset(&bcfg, 0, sizeof(bcfg));
    broker_flags_apply(&bf, &bcfg);
    cfg.broker = &bcfg;
    c = coord_new(base, &cfg, err, sizeof(err));
    snprintf(fields, sizeof(fields), "catalog=%s", shown);
    rc = daemon_serve(base, &srv, c != NULL ? coord_bound(c) : NULL, err, fields);
    /*
     * A leader that lost the lead steps down in place: its model goes
     * (nothing more is committed), and a new coordinator on the same
     * address starts as a standby, which leads again only after loading
     * the catalog afresh. The address is kept, so clients and the
     * --ready-file stay right; the loop stops only for SIGTERM or SIGINT.
     * That standby opens the catalog from its loop, every second until
     * it can (PostgreSQL may be restarting), so only a failure to bind
     * the address again ends the process here.
     */
    while (rc == 0 && coord_lost_lead(c)) {
        snprintf(rebind, sizeof(rebind), "%s", coord_bound(c));
        cfg.listen = rebind;
        cfg.elections = coord_elections(c);
        cfg.after_step_down = true;
        coord_free(c);
        c = coord_new(base, &cfg, err, sizeof(err));
        rc = daemon_serve(base, &srv, c != NULL ? coord_bound(c) : NULL, err, fields);
    }
    coord_free(c);
    daemon_done(base, token);
    free(locator);
    config_free_strings(opts, N_OPTS(opts));
    return rc;
}
/*
 * `sluice-coord catalog copy --from A --to B`: copies a catalog into an
 * empty one (SQLite into PostgreSQL, for a move to several coordinators).
 * Exit 0 copied, 1 refused or failed (a non-empty target among them), 2 usage.
 */
static int cmd_catalog(int argc, char **argv)
{
    char *from = NULL, *to = NULL, err[1024] = "", shown_from[256], shown_to[256];
    const struct config_option opts[] = {
        {"from", NULL, CONFIG_STRING, &from, NULL,
         "The catalog to copy: sqlite:FILE or postgresql://... (read only).", .required = true},
        {"to", NULL, CONFIG_STRING, &to, NULL,
         "The catalog to fill: sqlite:FILE or postgresql://...; it must be empty.",
         .required = true},
    };
    struct catalog_options big = {.events_keep = INT64_MAX};
    struct catalog *src = NULL, *dst = NULL;
    struct catalog_counts n;
    int next, r, rc = 1;

    cli_parse("sluice-coord catalog", opts, N_OPTS(opts), argc, argv, &next,
              "sluice-coord catalog copy --from sqlite:FILE --to postgresql://...",
              "Copy a catalog into an empty one, checking the counts; no coordinator may be "
              "running on either.",
              1, 1);
    if (strcmp(argv[next], "copy") != 0) {
        fprintf(stderr, "sluice-coord catalog: unknown subcommand \"%s\" (expected copy)\n",
                argv[next]);
        rc = 2;
        goto out;
    }
    sqldb_redact(from, shown_from, sizeof(shown_from));
    sqldb_redact(to, shown_to, sizeof(shown_to));
    if ((r = catalog_open_with(from, &big, &src, err, sizeof(err))) < 0) {
        fprintf(stderr, "sluice-coord catalog copy: --from %s: %s\n", shown_from, err);
        goto out;
    }
    if ((r = catalog_open_with(to, &big, &dst, err, sizeof(err))) < 0) {
        fprintf(stderr, "sluice-coord catalog copy: --to %s: %s\n", shown_to, err);
        goto out;
    }
    if ((r = catalog_copy(src, dst, &n, err, sizeof(err))) < 0) {
        fprintf(stderr, "sluice-coord catalog copy: %s -> %s: %s\n", shown_from, shown_to, err);
        goto out;
    }
    printf("copied %s -> %s: %" PRIu64 " segments, %" PRIu64 " nodes, %" PRIu64
           " assignments, %" PRIu64 " events (counts checked)\n",
           shown_from, shown_to, n.segments, n.nodes, n.assignments, n.events);
    rc = 0;
out:
    catalog_close(dst);
    catalog_close(src);
    config_free_strings(opts, N_OPTS(opts));
    return rc;
}

static int cmd_broker(int argc, char **argv)
{
    char *listen = NULL, *coordinator = NULL;
    struct daemon_server_flags srv = {0};
    struct broker_flags bf = {0};
    uint64_t poll = 0;
    const struct config_option opts[] = {
        {"listen", "SLUICE_BROKER_LISTEN", CONFIG_STRING, &listen, "127.0.0.1:7200",
         "Address to serve queries on (host:port; port 0 picks a free one)."},
        {"coordinator", "SLUICE_COORDINATOR", CONFIG_STRING, &coordinator, "127.0.0.1:7000",
         "The coordinator whose placement map the broker follows (host:port; several, "
         "comma-separated, to follow the leader among them)."},
        {"poll-interval", "SLUICE_POLL_INTERVAL", CONFIG_DURATION, &poll, "250ms",
         "How often to ask the coordinator for placement changes.", 10, 60000},
        BROKER_OPTIONS(bf),
        DAEMON_SERVER_OPTIONS(srv),
    };
    struct event_base *base = NULL;
    struct broker_config cfg;
    struct broker *b = NULL;
    char err[512], fields[600] = "", *token = NULL;
    int next, rc = 1;

    cli_parse("sluice-coord", opts, N_OPTS(opts), argc, argv, &next,
              "sluice-coord broker [--coordinator ADDR] [--listen ADDR] [flags]",
              "Run a query broker: POST /v1/query on a table, fanned out to the nodes that "
              "hold its segments, merged.",
              0, 0);
    cli_check_coordinators("sluice-coord", "broker", coordinator);
    base = daemon_init("sluice-coord", &srv, &token);
    memset(&cfg, 0, sizeof(cfg));
    cfg.listen = listen;
    cfg.coordinator = coordinator;
    cfg.token = token;
    cfg.poll_ms = poll;
    broker_flags_apply(&bf, &cfg);
    cfg.limits = daemon_server_limits(&srv);
    b = broker_new(base, &cfg, err, sizeof(err));
    snprintf(fields, sizeof(fields), "role=broker coordinator=%s replica_choice=%s", coordinator,
             bf.choice);
    rc = daemon_serve(base, &srv, b != NULL ? broker_bound(b) : NULL, err, fields);
    broker_free(b);
    daemon_done(base, token);
    config_free_strings(opts, N_OPTS(opts));
    return rc;
}

static void main_usage(FILE *out)
{
    fprintf(out, "usage: sluice-coord COMMAND [flags]\n\n"
                 "Daemon:\n"
                 "  serve     run the coordinator\n"
                 "  catalog   copy a catalog into an empty one (catalog copy --from A --to B)\n"
                 "  broker    run a query broker (POST /v1/query on a table)\n\n"
                 "Admin (talk to a running coordinator; --coordinator ADDR or "
                 "SLUICE_COORDINATOR):\n");
    ctl_usage(out);
    fprintf(out, "\nOther:\n"
                 "  healthcheck probe a running coordinator's /healthz (for container runtimes)\n"
                 "  version   print the version\n\n"
                 "Every command takes --help and --json where it prints; flags may come before or\n"
                 "after the command and its arguments, and \"--\" ends them. Exit codes: 0 done, 1\n"
                 "refused or failed, 2 usage, 3 coordinator unreachable, 4 wait timed out.\n");
}

/* The commands, for putting one first when global flags come before it. */
static bool main_is_command(const char *name)
{
    return strcmp(name, "serve") == 0 || strcmp(name, "catalog") == 0 ||
           strcmp(name, "broker") == 0 ||
           strcmp(name, "healthcheck") == 0 ||
           strcmp(name, "version") == 0 || ctl_is_command(name);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        main_usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        main_usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0)
        return cli_version("sluice-coord", 1, argv + 1);
    /* `sluice-coord --coordinator ADDR status`: the command may follow its flags. */
    (void)cli_command_first(argc, argv, main_is_command);
    if (strcmp(argv[1], "healthcheck") == 0)
        return healthcheck_main("sluice-coord", "127.0.0.1:7000", argc - 1, argv + 1);
    if (strcmp(argv[1], "version") == 0)
        return cli_version("sluice-coord", argc - 1, argv + 1);
    if (strcmp(argv[1], "serve") == 0)
        return cmd_serve(argc - 1, argv + 1);
    if (strcmp(argv[1], "catalog") == 0)
        return cmd_catalog(argc - 1, argv + 1);
    if (strcmp(argv[1], "broker") == 0)
        return cmd_broker(argc - 1, argv + 1);
    if (ctl_is_command(argv[1])) {
        signal(SIGPIPE, SIG_IGN);
        return ctl_main(argc - 1, argv + 1);
    }
    fprintf(stderr, "sluice-coord: unknown command \"%s\"\n", argv[1]);
    main_usage(stderr);
    return 2;
}
