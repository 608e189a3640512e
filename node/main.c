/*
 * sluice-node: the node daemon and its tools. Only the daemon's option
 * parsing, its event loop and the command dispatch live here; everything
 * else is in the node library.
 *
 *   sluice-node serve     run the node daemon
 *   sluice-node mkseg     write a synthetic segment file (mkseg.c)
 *   sluice-node farm      many virtual nodes in one process, a test tool (farm.c)
 *   sluice-node inspect | assign | query | status   (ctl.c)
 *   sluice-node healthcheck | version
 *
 * Exit codes: 0 success, 1 failure (or a refusal), 2 usage error.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "cli.h"
#include "ctl.h"
#include "farm.h"
#include "mkseg.h"
#include "node.h"
#include "config.h"
#include "daemon.h"
#include "healthcheck.h"
#include "http.h"
#include "log.h"
#include "segfmt.h"
#include "sluice_config.h"
#include "watermark.h"
#include "wire.h"
#include "xmalloc.h"

#define EXIT_USAGE 2
#define N_OPTS(a) (sizeof(a) / sizeof((a)[0]))

/*
 * --mlock-budget needs RLIMIT_MEMLOCK at least as large (checked even with
 * CAP_IPC_LOCK, which would bypass it: the limit is the operator's statement
 * of what this process may pin). Says how to raise it; -EPERM if too small.
 */
static int main_check_memlock(uint64_t budget)
{
    struct rlimit rl;
    char hard[32];

    if (budget == 0)
        return 0;
    if (getrlimit(RLIMIT_MEMLOCK, &rl) < 0) {
        fprintf(stderr, "sluice-node serve: --mlock-budget: cannot read RLIMIT_MEMLOCK: %s\n",
                strerror(errno));
        return -errno;
    }
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= budget)
        return 0;
    if (rl.rlim_max == RLIM_INFINITY)
        snprintf(hard, sizeof(hard), "unlimited");
    else
        snprintf(hard, sizeof(hard), "%llu bytes", (unsigned long long)rl.rlim_max);
    fprintf(stderr,
            "sluice-node serve: --mlock-budget %" PRIu64 " bytes exceeds RLIMIT_MEMLOCK "
            "(max locked memory), which is %llu bytes here (hard limit %s). Raise it for the "
            "node: `ulimit -l %" PRIu64 "` (KiB) in the shell that starts it; in docker "
            "compose, `ulimits: {memlock: {soft: %" PRIu64 ", hard: %" PRIu64 "}}` (bytes) "
            "on the service; under systemd, LimitMEMLOCK=; on Kubernetes there is no pod "
            "field for it: the container runtime's default applies (often 64 KiB or 8 MiB), "
            "so raise the runtime's memlock ulimit (containerd/CRI-O config, or docker's "
            "--default-ulimit memlock=...) on the nodes. Or lower --mlock-budget.\n",
            budget, (unsigned long long)rl.rlim_cur,
            hard,
            (budget + 1023) / 1024, budget, budget);
    return -EPERM;
}

static int cmd_serve(int argc, char **argv)
{
    char *listen = NULL, *storage_root = NULL, *data_dir = NULL, *opt_node_id = NULL;
    struct daemon_server_flags srv = {0};
    int64_t workers = 0, load_workers = 0, load_nice = 0, max_queries = 0;
    uint64_t disk_reserve = 0, cache_budget = 0, mlock_budget = 0;
    char *io = NULL;
    static const char *const io_modes[] = {"mmap", "direct", NULL};
    char *admission = NULL, *proc_root = NULL, *sys_root = NULL, *coordinator = NULL;
    char *advertise = NULL;
    uint64_t sample_ms = 0, report_ms = 0;
    bool psi_triggers = true, claim = false, wm_adaptive = true, damon = false;
    struct admission_config ac;
    struct watermark_config wm = {0};
    static const char *const onoff[] = {"on", "off", NULL};
    const struct config_option opts[] = {
        {"listen", "SLUICE_LISTEN", CONFIG_STRING, &listen, "127.0.0.1:7100",
         "Address to serve HTTP on (host:port; port 0 picks a free one)."},
        {"storage-root", "SLUICE_STORAGE_ROOT", CONFIG_STRING, &storage_root, NULL,
         "Deep storage directory; every segment URI must resolve inside it.", .required = true},
        {"data-dir", "SLUICE_DATA_DIR", CONFIG_STRING, &data_dir, NULL,
         "Local directory for segment copies; what is here is reloaded at start.",
         .required = true},
        {"node-id", "SLUICE_NODE_ID", CONFIG_STRING, &opt_node_id, "",
         "Name of this node ([A-Za-z0-9._-]); default: <host>-<random hex>, made on first "
         "start and kept in <data-dir>/node-id."},
        {"workers", "SLUICE_WORKERS", CONFIG_INT, &workers, "2",
         "Worker threads for query scans and assignment prechecks.", 1, 64},
        {"max-queries", "SLUICE_MAX_QUERIES", CONFIG_INT, &max_queries, "64",
         "Queries in flight; more get 429 LOAD_CONCURRENCY instead of queueing.", 1, 100000},
        {"load-workers", "SLUICE_LOAD_WORKERS", CONFIG_INT, &load_workers, "2",
         "Worker threads for segment loads (copy, verify, index).", 1, 64},
        {"load-nice", "SLUICE_LOAD_NICE", CONFIG_INT, &load_nice, "10",
         "Nice value added to the load workers, so loads yield the CPU to the event loop "
         "and queries (0: same priority).",
         0, 19},
        {"disk-reserve", "SLUICE_DISK_RESERVE", CONFIG_SIZE, &disk_reserve, "256M",
         "Local disk kept free; an assignment that would eat into it gets 507 DISK_FULL.", 0,
         INT64_MAX},
        {"io", "SLUICE_IO", CONFIG_CHOICE, &io, "mmap",
         "How segment data is read: mmap (the page cache) or direct (O_DIRECT into a pool "
         "of --cache-budget bytes; refuses to start where the data dir has no O_DIRECT).",
         .choices = io_modes},
        {"cache-budget", "SLUICE_CACHE_BUDGET", CONFIG_SIZE, &cache_budget, "0",
         "Buffer pool of --io=direct, allocated once at start: a multiple of 256K, at least "
         "16M. 0: half of the node's memory limit, at most 256M (256M with no limit). A "
         "budget at or above the limit is refused at start.",
         0, INT64_MAX},
        {"mlock-budget", "SLUICE_MLOCK_BUDGET", CONFIG_SIZE, &mlock_budget, "0",
         "Bytes of segment memory to keep mlock'ed: every header and zone map, then the "
         "most-queried columns; 0 pins nothing. RLIMIT_MEMLOCK must allow it.",
         0, INT64_MAX},
        DAEMON_SERVER_OPTIONS(srv),
        {"coordinator", "SLUICE_COORDINATOR", CONFIG_STRING, &coordinator, "",
         "Coordinator to report to every --report-interval (none: standalone); several, "
         "comma-separated, to follow the leader among them."},
        {"advertise", "SLUICE_ADVERTISE", CONFIG_STRING, &advertise, "",
         "host:port the coordinator should use to reach this node (default: --listen's)."},
        {"report-interval", "SLUICE_REPORT_INTERVAL", CONFIG_DURATION, &report_ms, "1s",
         "How often to report to the coordinator.", 100, 60000},
        {"claim", "SLUICE_CLAIM", CONFIG_BOOL, &claim, "false",
         "Pull mode: ask the coordinator for segments instead of being sent them."},
        {"admission", "SLUICE_ADMISSION", CONFIG_CHOICE, &admission, "on",
         "off accepts every assignment (the row-count baseline's nodes).", .choices = onoff},
        {"proc-root", "SLUICE_PROC_ROOT", CONFIG_STRING, &proc_root, "/proc",
         "Where /proc is read from (tests point it at fixture trees)."},
        {"sys-root", "SLUICE_SYS_ROOT", CONFIG_STRING, &sys_root, "/sys",
         "Where /sys is read from."},
        {"damon", "SLUICE_DAMON", CONFIG_BOOL, &damon, "false",
         "Run the node's own kdamond (DAMON sysfs, Linux 6.2+) on its own pid as a "
         "working-set source; refused, touching nothing, where any kdamond already exists."},
        {"sample-interval", "SLUICE_SAMPLE_INTERVAL", CONFIG_DURATION, &sample_ms, "100ms",
         "Pressure sampling period (PSI total= deltas).", 10, 10000},
        {"psi-triggers", "SLUICE_PSI_TRIGGERS", CONFIG_BOOL, &psi_triggers, "true",
         "Register PSI triggers (1 s window, else 2 s, else none) for instant wake-ups."},
        {"admit-high-watermark", "SLUICE_ADMIT_HIGH_WATERMARK", CONFIG_DOUBLE,
         &ac.high_watermark, "0.85", "Admit limit as a fraction of the memory limit.",
         .dmin = 0.05, .dmax = 1.0},
        {"admit-watermark-adaptive", "SLUICE_ADMIT_WATERMARK_ADAPTIVE", CONFIG_BOOL,
         &wm_adaptive, "true",
         "Probe the watermark upward while memory and p99 stay quiet and the node is full; "
         "back to --admit-high-watermark at once on any pressure gate."},
        {"admit-watermark-ceiling", "SLUICE_ADMIT_WATERMARK_CEILING", CONFIG_DOUBLE,
         &wm.ceiling, "0.95",
         "The adaptive watermark never goes above this (at or below --admit-high-watermark: "
         "no probing).",
         .dmin = 0.05, .dmax = 1.0},
        {"admit-watermark-step", "SLUICE_ADMIT_WATERMARK_STEP", CONFIG_DOUBLE, &wm.step, "0.01",
         "Added to the adaptive watermark per quiet --admit-watermark-probe.", .dmin = 0.001,
         .dmax = 0.5},
        {"admit-watermark-probe", "SLUICE_ADMIT_WATERMARK_PROBE", CONFIG_DURATION, &wm.probe_ms,
         "3s", "Quiet time the adaptive watermark waits before each step.", 100, 3600000},
        {"admit-budget", "SLUICE_ADMIT_BUDGET", CONFIG_SIZE, &ac.budget_bytes, "0",
         "Explicit admit limit in bytes; 0 means memory limit x watermark.", 0, INT64_MAX},
        {"critical-full-enter", NULL, CONFIG_DOUBLE, &ac.critical_full_enter, "0.05",
         "Full-stall fraction that closes MEM_CRITICAL.", .dmin = 0.0001, .dmax = 1},
        {"critical-full-exit", NULL, CONFIG_DOUBLE, &ac.critical_full_exit, "0.01",
         "Full-stall fraction below which MEM_CRITICAL may reopen.", .dmin = 0, .dmax = 1},
        {"critical-on-oom-kill", NULL, CONFIG_BOOL, &ac.critical_on_oom_kill, "true",
         "A recent oom_kill in the node's cgroup closes MEM_CRITICAL."},
        {"pressure-some-enter", NULL, CONFIG_DOUBLE, &ac.pressure_some_enter, "0.10",
         "Some-stall fraction (with reclaim active) that closes MEM_PRESSURE.", .dmin = 0.0001,
         .dmax = 1},
        {"pressure-some-exit", NULL, CONFIG_DOUBLE, &ac.pressure_some_exit, "0.02",
         "Some-stall fraction below which MEM_PRESSURE may reopen.", .dmin = 0, .dmax = 1},
        {"pressure-avg10-enter", NULL, CONFIG_DOUBLE, &ac.pressure_avg10_enter, "20",
         "PSI some avg10 (percent) that closes MEM_PRESSURE on its own.", .dmin = 0.01,
         .dmax = 100},
        {"pressure-avg10-exit", NULL, CONFIG_DOUBLE, &ac.pressure_avg10_exit, "10",
         "PSI some avg10 (percent) below which MEM_PRESSURE may reopen.", .dmin = 0,
         .dmax = 100},
        {"thrash-refault-enter", NULL, CONFIG_DOUBLE, &ac.thrash_refault_enter, "5000",
         "Workingset refaults (pages/s) that close MEM_THRASHING.", .dmin = 1, .dmax = 1e9},
        {"thrash-refault-exit", NULL, CONFIG_DOUBLE, &ac.thrash_refault_exit, "1000",
         "Refaults (pages/s) below which MEM_THRASHING may reopen.", .dmin = 0, .dmax = 1e9},
        {"latency-slo", "SLUICE_LATENCY_SLO", CONFIG_DURATION, &ac.latency_slo_ms, "250ms",
         "Query p99 objective; 0 disables LATENCY_SLO.", 0, 3600000},
        {"latency-baseline-factor", NULL, CONFIG_DOUBLE, &ac.latency_baseline_factor, "2.0",
         "p99 must also exceed its own baseline x this to close LATENCY_SLO.", .dmin = 1,
         .dmax = 1000},
        {"latency-exit-ratio", NULL, CONFIG_DOUBLE, &ac.latency_exit_ratio, "0.8",
         "LATENCY_SLO reopens once p99 is below SLO x this.", .dmin = 0.01, .dmax = 1},
        {"latency-min-queries", NULL, CONFIG_INT, &ac.latency_min_queries, "100",
         "Queries in 10 s needed before the p99 counts.", 1, 100000000},
        {"max-loads", "SLUICE_MAX_LOADS", CONFIG_INT, &ac.max_loads, "4",
         "Segment loads in flight at once; more get LOAD_CONCURRENCY.", 1, 1024},
        {"admit-hold-down", NULL, CONFIG_DURATION, &ac.hold_down_ms, "5s",
         "A gate stays closed this long after its signal last breached.", 0, 3600000},
        {"admit-slow-start", NULL, CONFIG_DURATION, &ac.slow_start_ms, "10s",
         "After a gate reopens, admit cautiously for this long.", 0, 3600000},
        {"slow-start-max-loads", NULL, CONFIG_INT, &ac.slow_start_max_loads, "1",
         "Loads in flight allowed during slow start.", 1, 1024},
        {"slow-start-headroom", NULL, CONFIG_DOUBLE, &ac.slow_start_headroom, "0.5",
         "Share of the free capacity one request may use during slow start.", .dmin = 0.01,
         .dmax = 1},
        {"retry-pressure", NULL, CONFIG_DURATION, &ac.retry_pressure_ms, "10s",
         "Base Retry-After of MEM_* stalls (PSI avg10's time constant).", 100, 3600000},
        {"retry-pressure-max", NULL, CONFIG_DURATION, &ac.retry_pressure_max_ms, "60s",
         "Cap on the scaled pressure Retry-After.", 100, 3600000},
        {"retry-capacity", NULL, CONFIG_DURATION, &ac.retry_capacity_ms, "60s",
         "Retry-After of MEM_CAPACITY (\"go elsewhere\").", 100, 3600000},
        {"retry-latency", NULL, CONFIG_DURATION, &ac.retry_latency_ms, "5s",
         "Retry-After of LATENCY_SLO.", 100, 3600000},
        {"retry-concurrency", NULL, CONFIG_DURATION, &ac.retry_concurrency_ms, "250ms",
         "Retry-After of LOAD_CONCURRENCY.", 100, 3600000},
        {"retry-draining", NULL, CONFIG_DURATION, &ac.retry_draining_ms, "30s",
         "Retry-After of DRAINING.", 100, 3600000},
        {"retry-disk", NULL, CONFIG_DURATION, &ac.retry_disk_ms, "300s",
         "Retry-After of DISK_FULL.", 100, 86400000},
        {"retry-jitter", NULL, CONFIG_DOUBLE, &ac.retry_jitter, "0.2",
         "Retry-After is scaled by a random factor in [1 - j, 1 + j].", .dmin = 0,
         .dmax = 0.9},
        {"exhaust-tte-enter", NULL, CONFIG_DURATION, &ac.exhaust_tte_enter_ms, "30s",
         "Estimated time to memory exhaustion that closes MEM_EXHAUSTION; 0 disables it.", 0,
         3600000},
        {"exhaust-tte-exit", NULL, CONFIG_DURATION, &ac.exhaust_tte_exit_ms, "60s",
         "Time to exhaustion above which MEM_EXHAUSTION may reopen.", 0, 3600000},
        {"exhaust-fast-fill", NULL, CONFIG_DURATION, &ac.exhaust_fast_fill_ms, "60s",
         "Growth that would fill the whole limit faster is a fast run: shed at once.", 0,
         3600000},
        {"exhaust-swapin-enter", NULL, CONFIG_DOUBLE, &ac.exhaust_swapin_enter, "1000",
         "Swap-ins (pages/s) that, sustained, close MEM_EXHAUSTION.", .dmin = 1, .dmax = 1e9},
        {"exhaust-swapin-exit", NULL, CONFIG_DOUBLE, &ac.exhaust_swapin_exit, "100",
         "Swap-ins (pages/s) below which MEM_EXHAUSTION may reopen.", .dmin = 0, .dmax = 1e9},
        {"exhaust-swapin-sustain", NULL, CONFIG_DURATION, &ac.exhaust_swapin_sustain_ms, "3s",
         "How long swap-ins must stay above --exhaust-swapin-enter to count.", 0, 3600000},
        {"shed-after", NULL, CONFIG_DURATION, &ac.shed_after_ms, "3s",
         "Shed the coldest segment once MEM_CRITICAL stall or thrashing lasts this long; 0: "
         "never.",
         0, 3600000},
        {"shed-cooldown", NULL, CONFIG_DURATION, &ac.shed_cooldown_ms, "5s",
         "Least time between two sheds.", 0, 3600000},
    };
    struct event_base *base = NULL;
    struct node *node = NULL;
    struct node_config cfg;
    char *token = NULL;
    char err[512], fields[2200] = "";
    int next, rc;

    ac = admission_config_default();
    cli_parse("sluice-node", opts, N_OPTS(opts), argc, argv, &next, "sluice-node serve [flags]",
              "Run a Sluice node: load assigned segments, answer queries, and refuse load "
              "(429 + Retry-After) the moment local pressure rises.",
              0, 0);
    ac.disk_reserve_bytes = disk_reserve;
    {
        char aerr[256];
        if (admission_config_check(&ac, aerr, sizeof(aerr)) < 0) {
            fprintf(stderr, "sluice-node serve: %s\n", aerr);
            exit(EXIT_USAGE);
        }
        /* A ceiling at or below the base leaves nothing to probe: the base holds. */
        wm.base = ac.high_watermark;
        if (wm.ceiling < wm.base)
            wm.ceiling = wm.base;
        if (watermark_config_check(&wm, aerr, sizeof(aerr)) < 0) {
            fprintf(stderr, "sluice-node serve: --admit-watermark-*: %s\n", aerr);
            exit(EXIT_USAGE);
        }
    }
    if (mlock_budget > 0 && strcmp(io, "direct") == 0) {
        fprintf(stderr, "sluice-node serve: --mlock-budget applies to --io=mmap only: in direct "
                        "mode segment data is read into the buffer pool, not mapped\n");
        exit(EXIT_USAGE);
    }
    if (main_check_memlock(mlock_budget) < 0)
        exit(1);
    base = daemon_init("sluice-node", &srv, &token);
    memset(&cfg, 0, sizeof(cfg));
    cfg.listen = listen;
    cfg.storage_root = storage_root;
    cfg.data_dir = data_dir;
    cfg.node_id = opt_node_id;
    cfg.token = token;
    cfg.workers = (unsigned)workers;
    cfg.load_workers = (unsigned)load_workers;
    cfg.load_nice = (int)load_nice;
    cfg.max_queries = (unsigned)max_queries;
    cfg.disk_reserve = disk_reserve;
    cfg.mlock_budget = mlock_budget;
    cfg.limits = daemon_server_limits(&srv);
    cfg.admission = ac;
    cfg.watermark_adaptive = wm_adaptive;
    cfg.watermark = wm;
    cfg.damon = damon;
    cfg.admission_on = strcmp(admission, "on") == 0;
    cfg.proc_root = proc_root;
    cfg.sys_root = sys_root;
    cfg.sample_ms = (unsigned)sample_ms;
    cfg.psi_triggers = psi_triggers;
    cfg.coordinator = coordinator;
    cfg.advertise = advertise;
    cfg.report_ms = report_ms;
    cfg.claim = claim;
    cfg.io_direct = strcmp(io, "direct") == 0;
    cfg.cache_budget = cache_budget;
    node = node_new(base, &cfg, err, sizeof(err));
    if (node != NULL)
        snprintf(fields, sizeof(fields), "node_id=%s storage_root=%s data_dir=%s", node_id(node),
                 storage_root, data_dir);
    rc = daemon_serve(base, &srv, node != NULL ? node_bound(node) : NULL, err, fields);
    node_free(node);
    daemon_done(base, token);
    config_free_strings(opts, N_OPTS(opts));
    return rc;
}

static void main_usage(FILE *out)
{
    fprintf(out, "usage: sluice-node COMMAND [flags]\n\n"
                 "Commands:\n"
                 "  serve       run the node daemon\n"
                 "  mkseg       write a synthetic segment file\n"
                 "  farm        run many virtual nodes in one process (a test tool)\n");
    nodectl_usage(out);
    fprintf(out, "  healthcheck probe a running node's /healthz (for container runtimes)\n"
                 "  version     print the version\n\n"
                 "Every command takes --help; flags may come before or after the arguments, and\n"
                 "\"--\" ends them. A flag's --help line names its environment variable, if it\n"
                 "has one. Exit codes: 0 done, 1 failed or refused, 2 usage.\n");
}

/* The commands, for putting one first when global flags come before it. */
static bool main_is_command(const char *name)
{
    return strcmp(name, "serve") == 0 || strcmp(name, "mkseg") == 0 || strcmp(name, "farm") == 0 ||
           strcmp(name, "healthcheck") == 0 || strcmp(name, "version") == 0 ||
           nodectl_is_command(name);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        main_usage(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        main_usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0)
        return cli_version("sluice-node", 1, argv + 1);
    /* `sluice-node --node ADDR status`: the command may follow its flags. */
    (void)cli_command_first(argc, argv, main_is_command);
    if (strcmp(argv[1], "healthcheck") == 0)
        return healthcheck_main("sluice-node", "127.0.0.1:7100", argc - 1, argv + 1);
    if (strcmp(argv[1], "version") == 0)
        return cli_version("sluice-node", argc - 1, argv + 1);
    if (strcmp(argv[1], "serve") == 0)
        return cmd_serve(argc - 1, argv + 1);
    if (strcmp(argv[1], "mkseg") == 0)
        return mkseg_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "farm") == 0)
        return farm_main(argc - 1, argv + 1);
    if (nodectl_is_command(argv[1]))
        return nodectl_main(argc - 1, argv + 1);
    fprintf(stderr, "sluice-node: unknown command \"%s\"\n", argv[1]);
    main_usage(stderr);
    return EXIT_USAGE;
}
