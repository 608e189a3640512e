/*
 * check_sampler: unit tests for node/sampler. Every test but the last builds
 * a fixture tree (<tmp>/proc and <tmp>/sys) for one kind of host and points
 * the sampler at it: a cgroup v2 host, a v1 host, a hybrid host (v1 memory
 * controller, PSI from the cgroup2 "unified" mount), hosts with and without
 * swap, with PSI missing, with a bind-mounted cgroup. Samples are taken
 * with sampler_sample_once() and fake times, so stall fractions and rates
 * are exact: the expected values are written out from the documented
 * formulas (frac = dtotal_us / dt_us, rate = dcount / dt_s).
 *
 * The thread test runs on a fixture tree with triggers off (and checks that
 * asking for triggers on a fixture neither arms one nor writes into it). The
 * last test samples the real /proc and /sys read-only and asserts only what
 * holds on any Linux host; it prints what it detected.
 *
 * The temporary directory is created and removed by an unchecked fixture,
 * which runs in the parent process, so it is removed even when a test fails.
 */
#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "sampler.h"
#include "suite.h"

#define KiB UINT64_C(1024)
#define MiB (UINT64_C(1) << 20)
#define GiB (UINT64_C(1) << 30)
#define MS  UINT64_C(1000000)
#define SEC UINT64_C(1000000000)

#define V2_CG   "sys/fs/cgroup/system.slice/sluice.service"
#define V1_CG   "sys/fs/cgroup/memory/sluice"
#define HY_V1   "sys/fs/cgroup/memory/process_api/abc"
#define HY_V2   "sys/fs/cgroup/unified"
#define V1_HUGE "9223372036854771712"

static char test_root[64];

static int test_rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void test_setup(void)
{
    snprintf(test_root, sizeof(test_root), "/tmp/check_sampler.XXXXXX");
    if (mkdtemp(test_root) == NULL)
        abort();
}

static void test_teardown(void)
{
    nftw(test_root, test_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* Writes content to <test_root>/rel, creating the parent directories. */
static void test_put(const char *rel, const char *content)
{
    char path[1024];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", test_root, rel);
    for (char *p = path + strlen(test_root) + 1; *p != '\0'; p++) {
        if (*p == '/') {
            *p = '\0';
            ck_assert(mkdir(path, 0755) == 0 || errno == EEXIST);
            *p = '/';
        }
    }
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(content, f);
    ck_assert_int_eq(fclose(f), 0);
}

static void __attribute__((format(printf, 2, 3))) test_putf(const char *rel, const char *fmt, ...)
{
    char buf[8192];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    test_put(rel, buf);
}

static void test_rm(const char *rel)
{
    char path[1024];

    snprintf(path, sizeof(path), "%s/%s", test_root, rel);
    ck_assert_int_eq(unlink(path), 0);
}

/* Absolute path of rel in the fixture tree (static buffer). */
static const char *test_abs(const char *rel)
{
    static char path[1024];

    snprintf(path, sizeof(path), "%s/%s", test_root, rel);
    return path;
}

static void test_psi(const char *rel, uint64_t some_total, uint64_t full_total)
{
    test_putf(rel,
              "some avg10=12.34 avg60=5.00 avg300=0.07 total=%llu\n"
              "full avg10=1.50 avg60=0.25 avg300=0.00 total=%llu\n",
              (unsigned long long)some_total, (unsigned long long)full_total);
}

/* meminfo in kB, as the kernel writes it. */
static void test_meminfo(uint64_t total_kb, uint64_t avail_kb, uint64_t swap_total_kb,
                         uint64_t swap_free_kb)
{
    test_putf("proc/meminfo",
              "MemTotal:       %llu kB\n"
              "MemFree:          100000 kB\n"
              "MemAvailable:   %llu kB\n"
              "Buffers:            1000 kB\n"
              "SwapCached:            0 kB\n"
              "SwapTotal:      %llu kB\n"
              "SwapFree:       %llu kB\n",
              (unsigned long long)total_kb, (unsigned long long)avail_kb,
              (unsigned long long)swap_total_kb, (unsigned long long)swap_free_kb);
}

static void test_vmstat(uint64_t pswpin, uint64_t pswpout, uint64_t refault_file,
                        uint64_t pgscan_kswapd, uint64_t oom_kill)
{
    test_putf("proc/vmstat",
              "nr_free_pages 12345\n"
              "workingset_refault_anon 7\n"
              "workingset_refault_file %llu\n"
              "pswpin %llu\n"
              "pswpout %llu\n"
              "pgscan_kswapd %llu\n"
              "pgscan_direct 100\n"
              "pgscan_khugepaged 10\n"
              "pgscan_direct_throttle 999999\n"
              "pgscan_anon 999999\n"
              "pgscan_file 999999\n"
              "oom_kill %llu\n",
              (unsigned long long)refault_file, (unsigned long long)pswpin,
              (unsigned long long)pswpout, (unsigned long long)pgscan_kswapd,
              (unsigned long long)oom_kill);
}

static void test_v2_stat(uint64_t refault_file, uint64_t pgscan)
{
    test_putf(V2_CG "/memory.stat",
              "anon 314572800\n"
              "file 734003200\n"
              "kernel 1000000\n"
              "active_anon 300000000\n"
              "inactive_anon 14572800\n"
              "active_file 209715200\n"
              "inactive_file 524288000\n"
              "workingset_refault_anon 5\n"
              "workingset_refault_file %llu\n"
              "pgscan %llu\n"
              "pgscan_kswapd 999999\n"
              "pgscan_direct 999999\n",
              (unsigned long long)refault_file, (unsigned long long)pgscan);
}

/*
 * A cgroup v2 host: the node in system.slice/sluice.service (memory.max
 * 4 GiB, but system.slice caps at 3 GiB), 16 GiB of RAM, no swap.
 */
static void test_v2_host(void)
{
    test_put("proc/self/cgroup", "0::/system.slice/sluice.service\n");
    test_put("proc/self/mountinfo",
             "22 1 253:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw\n"
             "23 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw\n"
             "24 22 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:2 - sysfs sysfs rw\n"
             "29 24 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 "
             "cgroup2 rw,nsdelegate,memory_recursiveprot\n");
    test_meminfo(16 * GiB / KiB, 12 * GiB / KiB, 0, 0);
    test_vmstat(0, 0, 5000, 1000, 0);
    test_psi("proc/pressure/memory", 999, 999);
    test_psi("sys/fs/cgroup/memory.pressure", 999, 999);
    test_put("sys/fs/cgroup/system.slice/cgroup.type", "domain\n");
    test_put("sys/fs/cgroup/system.slice/memory.max", "3221225472\n");
    test_put("sys/fs/cgroup/system.slice/memory.high", "max\n");
    test_put(V2_CG "/cgroup.type", "domain\n");
    test_put(V2_CG "/memory.current", "1073741824\n");
    test_put(V2_CG "/memory.max", "4294967296\n");
    test_put(V2_CG "/memory.high", "max\n");
    test_put(V2_CG "/memory.swap.current", "0\n");
    test_put(V2_CG "/memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n");
    test_v2_stat(1000, 2000);
    test_psi(V2_CG "/memory.pressure", 1000000, 200000);
}

/* A cgroup v1 host: no limit on the node's cgroup, 8 GiB of RAM, PSI host-wide. */
static void test_v1_host(void)
{
    test_put("proc/self/cgroup", "12:memory:/sluice\n11:cpu,cpuacct:/sluice\n1:name=systemd:/\n");
    test_put("proc/self/mountinfo",
             "22 1 253:1 / / rw,relatime - ext4 /dev/vda1 rw\n"
             "31 24 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
             "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct\n"
             "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
             "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n");
    test_meminfo(8 * GiB / KiB, 6 * GiB / KiB, 2 * GiB / KiB, 1536 * MiB / KiB);
    test_vmstat(10, 20, 5000, 1000, 0);
    test_psi("proc/pressure/memory", 500000, 100000);
    test_put(V1_CG "/memory.usage_in_bytes", "536870912\n");
    test_put(V1_CG "/memory.limit_in_bytes", V1_HUGE "\n");
    test_put(V1_CG "/memory.memsw.usage_in_bytes", "641728512\n");
    test_put(V1_CG "/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 4\n");
    test_put(V1_CG "/memory.stat", "cache 100\nrss 200\ninactive_file 1\nactive_file 2\n"
                                   "hierarchical_memory_limit " V1_HUGE "\n"
                                   "hierarchical_memsw_limit " V1_HUGE "\n"
                                   "total_cache 402653184\n"
                                   "total_rss 134217728\n"
                                   "total_inactive_file 268435456\n"
                                   "total_active_file 134217728\n");
}

/* This machine's layout: v1 memory controller, cgroup2 at unified, node in its root. */
static void test_hybrid_host(void)
{
    test_put("proc/self/cgroup",
             "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/abc\n1:cpu:/\n0::/\n");
    test_put("proc/self/mountinfo",
             "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
             "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
             "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
             "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n"
             "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n");
    test_meminfo(24 * GiB / KiB, 23 * GiB / KiB, 0, 0);
    test_vmstat(0, 0, 5000, 1000, 0);
    test_psi("proc/pressure/memory", 1, 1);
    test_psi(HY_V2 "/memory.pressure", 300, 100);
    test_put(HY_V2 "/cgroup.procs", "1\n");
    test_put(HY_V1 "/memory.usage_in_bytes", "6582272\n");
    test_put(HY_V1 "/memory.limit_in_bytes", "2147483648\n");
    test_put(HY_V1 "/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n");
    test_put(HY_V1 "/memory.stat",
             "hierarchical_memory_limit 1073741824\n"
             "total_cache 3698688\ntotal_rss 1646592\n"
             "total_workingset_refault_anon 3\ntotal_workingset_refault_file 893\n"
             "total_inactive_file 1118208\ntotal_active_file 2580480\n");
}

static struct sampler *test_sampler(bool triggers)
{
    char proc[128], sys[128], err[256] = "";
    struct sampler_config cfg = {.proc_root = proc, .sys_root = sys, .psi_triggers = triggers};
    struct sampler *s;

    snprintf(proc, sizeof(proc), "%s/proc", test_root);
    snprintf(sys, sizeof(sys), "%s/sys", test_root);
    s = sampler_new(&cfg, err, sizeof(err));
    ck_assert_msg(s != NULL, "sampler_new: %s", err);
    return s;
}

static void test_sample(struct sampler *s, uint64_t now, struct sampler_snapshot *snap)
{
    ck_assert_int_eq(sampler_sample_once(s, now, snap), 0);
}

#define HAS(snap, bit) (((snap)->have & (bit)) != 0)

START_TEST(test_v2_detect)
{
    struct sampler_snapshot snap;
    struct sampler *s;

    test_v2_host();
    s = test_sampler(false);
    test_sample(s, 10 * SEC, &snap);
    ck_assert_uint_eq(snap.seq, 1);
    ck_assert_uint_eq(snap.taken_mono_ns, 10 * SEC);
    ck_assert_uint_eq(snap.dt_ns, 0);
    ck_assert_str_eq(sampler_cgroup_mode_name(snap.cgroup_mode), "v2");
    ck_assert_str_eq(snap.cgroup_dir, test_abs(V2_CG));
    ck_assert_str_eq(snap.psi_source, test_abs(V2_CG "/memory.pressure"));
    ck_assert(!snap.psi_host_wide);
    ck_assert_str_eq(sampler_trigger_name(snap.trigger), "off");
    ck_assert_str_eq(snap.trigger_reason, "disabled");

    /* PSI as printed. */
    ck_assert(HAS(&snap, SAMPLER_HAVE_PSI_SOME) && HAS(&snap, SAMPLER_HAVE_PSI_FULL));
    ck_assert_double_eq_tol(snap.some.avg10, 12.34, 1e-9);
    ck_assert_double_eq_tol(snap.some.avg60, 5.0, 1e-9);
    ck_assert_double_eq_tol(snap.some.avg300, 0.07, 1e-9);
    ck_assert_uint_eq(snap.some.total_us, 1000000);
    ck_assert_double_eq_tol(snap.full.avg10, 1.5, 1e-9);
    ck_assert_uint_eq(snap.full.total_us, 200000);
    /* No stall fraction or rate from a single sample. */
    ck_assert(!HAS(&snap, SAMPLER_HAVE_STALL_SOME));
    ck_assert(!HAS(&snap, SAMPLER_HAVE_REFAULT_RATE));

    /* cgroup files. */
    ck_assert(HAS(&snap, SAMPLER_HAVE_CG_USAGE));
    ck_assert_uint_eq(snap.cg_usage, 1 * GiB);
    ck_assert(HAS(&snap, SAMPLER_HAVE_CG_STAT));
    ck_assert_uint_eq(snap.cg_inactive_file, 524288000);
    ck_assert_uint_eq(snap.cg_active_file, 209715200);
    ck_assert_uint_eq(snap.cg_anon, 314572800);
    ck_assert_uint_eq(snap.cg_file, 734003200);
    ck_assert(HAS(&snap, SAMPLER_HAVE_CG_SWAP));
    ck_assert_uint_eq(snap.cg_swap, 0);
    ck_assert_uint_eq(snap.refaults, 1005);
    ck_assert_str_eq(sampler_scope_name(snap.refault_scope), "cgroup");
    ck_assert_uint_eq(snap.pgscan, 2000); /* "pgscan", not the sum of the parts */
    ck_assert_int_eq(snap.pgscan_scope, SAMPLER_SCOPE_CGROUP);
    ck_assert_uint_eq(snap.oom_kill, 1);
    ck_assert_int_eq(snap.oom_scope, SAMPLER_SCOPE_CGROUP);
    ck_assert(!snap.oom_kill_recent); /* the first sample only sets the reference */

    /* Limits: the parent's 3 GiB memory.max binds, below the node's 4 GiB and MemTotal. */
    ck_assert(HAS(&snap, SAMPLER_HAVE_CG_LIMIT) && HAS(&snap, SAMPLER_HAVE_CG_HIGH));
    ck_assert_uint_eq(snap.cg_limit, 3 * GiB);
    ck_assert_uint_eq(snap.cg_high, SAMPLER_UNLIMITED);
    ck_assert_uint_eq(snap.mem_total, 16 * GiB);
    ck_assert_uint_eq(snap.mem_available, 12 * GiB);
    ck_assert_uint_eq(snap.limit_bytes, 3 * GiB);
    ck_assert_str_eq(sampler_limit_source_name(snap.limit_source), "cgroup_max");

    /* memory.high below it takes over; then nothing below MemTotal. */
    test_put(V2_CG "/memory.high", "2147483648\n");
    test_sample(s, 11 * SEC, &snap);
    ck_assert_uint_eq(snap.limit_bytes, 2 * GiB);
    ck_assert_int_eq(snap.limit_source, SAMPLER_LIMIT_CGROUP_HIGH);
    test_put(V2_CG "/memory.high", "max\n");
    test_put(V2_CG "/memory.max", "max\n");
    test_put("sys/fs/cgroup/system.slice/memory.max", "max\n");
    test_sample(s, 12 * SEC, &snap);
    ck_assert_uint_eq(snap.cg_limit, SAMPLER_UNLIMITED);
    ck_assert_uint_eq(snap.limit_bytes, 16 * GiB);
    ck_assert_int_eq(snap.limit_source, SAMPLER_LIMIT_MEMTOTAL);
    /* A limit above RAM does not raise the effective limit. */
    test_put(V2_CG "/memory.max", "34359738368\n");
    test_sample(s, 13 * SEC, &snap);
    ck_assert_uint_eq(snap.cg_limit, 32 * GiB);
    ck_assert_uint_eq(snap.limit_bytes, 16 * GiB);
    ck_assert_uint_eq(snap.seq, 4);
    sampler_free(s);
}
END_TEST

START_TEST(test_v2_older_kernel_keys)
{
    struct sampler_snapshot snap;
    struct sampler *s;

    test_v2_host();
    /* Before 5.9: one workingset_refault; no "pgscan" total, only its parts. */
    test_put(V2_CG "/memory.stat", "anon 1\nfile 2\nactive_file 3\ninactive_file 4\n"
                                   "workingset_refault 77\npgscan_kswapd 30\npgscan_direct 12\n"
                                   "pgscan_khugepaged 3\n");
    s = test_sampler(false);
    test_sample(s, SEC, &snap);
    ck_assert_uint_eq(snap.refaults, 77);
    ck_assert_int_eq(snap.refault_scope, SAMPLER_SCOPE_CGROUP);
    ck_assert_uint_eq(snap.pgscan, 45);
    ck_assert_int_eq(snap.pgscan_scope, SAMPLER_SCOPE_CGROUP);
    /* Without refault keys at all, the host's vmstat stands in, flagged. */
    test_put(V2_CG "/memory.stat", "anon 1\nfile 2\nactive_file 3\ninactive_file 4\n");
    test_sample(s, 2 * SEC, &snap);
    ck_assert_uint_eq(snap.refaults, 5007); /* workingset_refault_file + _anon */
    ck_assert_int_eq(snap.refault_scope, SAMPLER_SCOPE_HOST);
    ck_assert_uint_eq(snap.pgscan, 1110); /* kswapd + direct + khugepaged, not _anon/_file */
    ck_assert_int_eq(snap.pgscan_scope, SAMPLER_SCOPE_HOST);
    /* The scope changed between the samples: no rate. */
    ck_assert(!HAS(&snap, SAMPLER_HAVE_REFAULT_RATE));
    sampler_free(s);
}
END_TEST

START_TEST(test_v1_detect)
{
    struct sampler_snapshot snap;
    struct sampler *s;

    test_v1_host();
    s = test_sampler(false);
    test_sample(s, SEC, &snap);
    ck_assert_str_eq(sampler_cgroup_mode_name(snap.cgroup_mode), "v1");
    ck_assert_str_eq(snap.cgroup_dir, test_abs(V1_CG));
    ck_assert_str_eq(snap.psi_source, test_abs("proc/pressure/memory"));
    ck_assert(snap.psi_host_wide);
    ck_assert_uint_eq(snap.some.total_us, 500000);

    ck_assert_uint_eq(snap.cg_usage, 512 * MiB);
    ck_assert(HAS(&snap, SAMPLER_HAVE_CG_LIMIT));
    ck_assert_uint_eq(snap.cg_limit, SAMPLER_UNLIMITED); /* 9223372036854771712 */
    ck_assert(!HAS(&snap, SAMPLER_HAVE_CG_HIGH));
    ck_assert_uint_eq(snap.limit_bytes, 8 * GiB);
    ck_assert_int_eq(snap.limit_source, SAMPLER_LIMIT_MEMTOTAL);
    ck_assert(HAS(&snap, SAMPLER_HAVE_CG_STAT));
    ck_assert_uint_eq(snap.cg_inactive_file, 256 * MiB); /* total_, not the local value */
    ck_assert_uint_eq(snap.cg_active_file, 128 * MiB);
    ck_assert_uint_eq(snap.cg_anon, 128 * MiB);
    ck_assert_uint_eq(snap.cg_file, 384 * MiB);
    ck_assert(HAS(&snap, SAMPLER_HAVE_CG_SWAP));
    ck_assert_uint_eq(snap.cg_swap, 100 * MiB); /* memsw - usage */
    ck_assert_uint_eq(snap.oom_kill, 4);
    ck_assert_int_eq(snap.oom_scope, SAMPLER_SCOPE_CGROUP);
    /* v1 counts neither refaults (here) nor pgscan: the host's stand in. */
    ck_assert_int_eq(snap.refault_scope, SAMPLER_SCOPE_HOST);
    ck_assert_uint_eq(snap.refaults, 5007);
    ck_assert_int_eq(snap.pgscan_scope, SAMPLER_SCOPE_HOST);
    ck_assert_uint_eq(snap.pgscan, 1110);
    ck_assert(HAS(&snap, SAMPLER_HAVE_HOST_SWAP));
    ck_assert_uint_eq(snap.swap_total, 2 * GiB);
    ck_assert_uint_eq(snap.swap_free, 1536 * MiB);

    /* A limit on the node's cgroup, then a smaller one on a parent. */
    test_put(V1_CG "/memory.limit_in_bytes", "2147483648\n");
    test_sample(s, 2 * SEC, &snap);
    ck_assert_uint_eq(snap.cg_limit, 2 * GiB);
    ck_assert_uint_eq(snap.limit_bytes, 2 * GiB);
    ck_assert_int_eq(snap.limit_source, SAMPLER_LIMIT_CGROUP_MAX);
    test_put(V1_CG "/memory.stat", "hierarchical_memory_limit 1073741824\n"
                                   "total_cache 1\ntotal_rss 2\n"
                                   "total_inactive_file 3\ntotal_active_file 4\n");
    test_sample(s, 3 * SEC, &snap);
    ck_assert_uint_eq(snap.cg_limit, 1 * GiB);
    ck_assert_uint_eq(snap.limit_bytes, 1 * GiB);

    /* Without refaults in vmstat either: unavailable, and said so. */
    test_put("proc/vmstat", "pswpin 1\npswpout 2\n");
    test_sample(s, 4 * SEC, &snap);
    ck_assert(!HAS(&snap, SAMPLER_HAVE_REFAULTS));
    ck_assert(!HAS(&snap, SAMPLER_HAVE_PGSCAN));
    ck_assert_int_eq(snap.refault_scope, SAMPLER_SCOPE_NONE);
    ck_assert_str_eq(sampler_scope_name(snap.refault_scope), "none");
    sampler_free(s);
}
END_TEST

START_TEST(test_v1_bind_mount)
{
    struct sampler_snapshot snap;
    struct sampler *s;

    /* A container without a cgroup namespace: its own cgroup bind-mounted as the root. */
    test_put("proc/self/cgroup", "7:memory:/docker/f00d\n");
    test_put("proc/self/mountinfo",
             "35 31 0:32 /docker/f00d /sys/fs/cgroup/memory ro,nosuid - cgroup cgroup "
             "rw,memory\n"
             "36 31 0:33 /docker/f00d /sys/fs/cgroup/my\\040cpu ro - cgroup cgroup rw,cpu\n");
    test_put("sys/fs/cgroup/memory/memory.usage_in_bytes", "4096\n");
    s = test_sampler(false);
    test_sample(s, SEC, &snap);
    ck_assert_int_eq(snap.cgroup_mode, SAMPLER_CGROUP_V1);
    ck_assert_str_eq(snap.cgroup_dir, test_abs("sys/fs/cgroup/memory"));
    ck_assert_uint_eq(snap.cg_usage, 4096);
    /* Everything else is missing, and said to be. */
    ck_assert(!HAS(&snap, SAMPLER_HAVE_CG_LIMIT));
    ck_assert(!HAS(&snap, SAMPLER_HAVE_CG_STAT));
    ck_assert(!HAS(&snap, SAMPLER_HAVE_MEMINFO));
    ck_assert(!HAS(&snap, SAMPLER_HAVE_LIMIT));
    ck_assert(!HAS(&snap, SAMPLER_HAVE_PSI_SOME));
    ck_assert_str_eq(snap.psi_source, "none");
    sampler_free(s);
}
END_TEST

START_TEST(test_hybrid_detect)
{
    struct sampler_snapshot snap;
    struct sampler *s;

    test_hybrid_host();
    s = test_sampler(false);
    test_sample(s, SEC, &snap);
    ck_assert_str_eq(sampler_cgroup_mode_name(snap.cgroup_mode), "hybrid");
    ck_assert_str_eq(snap.cgroup_dir, test_abs(HY_V1));
    ck_assert_str_eq(snap.psi_source, test_abs(HY_V2 "/memory.pressure"));
    /* The node sits in the real v2 root (no cgroup.type): that pressure is the host's. */
    ck_assert(snap.psi_host_wide);
    ck_assert_uint_eq(snap.some.total_us, 300);
    ck_assert_uint_eq(snap.cg_usage, 6582272);
    /* hierarchical_memory_limit (1 GiB) below limit_in_bytes (2 GiB). */
    ck_assert_uint_eq(snap.cg_limit, 1 * GiB);
    ck_assert_uint_eq(snap.limit_bytes, 1 * GiB);
    /* Recent kernels do count refaults per v1 cgroup. */
    ck_assert_uint_eq(snap.refaults, 896);
    ck_assert_int_eq(snap.refault_scope, SAMPLER_SCOPE_CGROUP);
    ck_assert_int_eq(snap.oom_scope, SAMPLER_SCOPE_CGROUP);
    ck_assert(HAS(&snap, SAMPLER_HAVE_HOST_SWAP));
    ck_assert_uint_eq(snap.swap_total, 0);
    ck_assert(!HAS(&snap, SAMPLER_HAVE_CG_SWAP)); /* no memsw file */
    sampler_free(s);
}
END_TEST

START_TEST(test_hybrid_child_cgroup)
{
    struct sampler_snapshot snap;
    struct sampler *s;

    test_hybrid_host();
    test_put("proc/self/cgroup", "4:memory:/process_api/abc\n0::/sluice.slice\n");
    test_psi(HY_V2 "/sluice.slice/memory.pressure", 4242, 42);
    test_put(HY_V2 "/sluice.slice/cgroup.type", "domain\n");
    s = test_sampler(false);
    test_sample(s, SEC, &snap);
    ck_assert_int_eq(snap.cgroup_mode, SAMPLER_CGROUP_HYBRID);
    ck_assert_str_eq(snap.psi_source, test_abs(HY_V2 "/sluice.slice/memory.pressure"));
    ck_assert(!snap.psi_host_wide);
    ck_assert_uint_eq(snap.some.total_us, 4242);
    sampler_free(s);

    /* Without a memory.pressure in the v2 cgroup it is plain v1, PSI from /proc. */
    test_rm(HY_V2 "/sluice.slice/memory.pressure");
    s = test_sampler(false);
    test_sample(s, SEC, &snap);
    ck_assert_int_eq(snap.cgroup_mode, SAMPLER_CGROUP_V1);
    ck_assert_str_eq(snap.psi_source, test_abs("proc/pressure/memory"));
    ck_assert(snap.psi_host_wide);
    sampler_free(s);
}
END_TEST

START_TEST(test_psi_missing)
{
    struct sampler_snapshot snap;
    struct sampler *s;

    /* v2 without memory.pressure in the cgroup: the host's, flagged. */
    test_v2_host();
    test_rm(V2_CG "/memory.pressure");
    s = test_sampler(false);
    test_sample(s, SEC, &snap);
    ck_assert_int_eq(snap.cgroup_mode, SAMPLER_CGROUP_V2);
    ck_assert_str_eq(snap.psi_source, test_abs("proc/pressure/memory"));
    ck_assert(snap.psi_host_wide);
    sampler_free(s);

    /* No PSI at all (CONFIG_PSI=n, or psi=0): runs, and says so. */
    test_rm("proc/pressure/memory");
    s = test_sampler(true);
    test_sample(s, SEC, &snap);
    test_sample(s, 2 * SEC, &snap);
    ck_assert_str_eq(snap.psi_source, "none");
    ck_assert(!HAS(&snap, SAMPLER_HAVE_PSI_SOME) && !HAS(&snap, SAMPLER_HAVE_PSI_FULL));
    ck_assert(!HAS(&snap, SAMPLER_HAVE_STALL_SOME));
    ck_assert_int_eq(snap.trigger, SAMPLER_TRIGGER_OFF);
    ck_assert_str_eq(snap.trigger_reason, "no PSI file");
    /* The rest still works. */
    ck_assert_uint_eq(snap.cg_usage, 1 * GiB);
    ck_assert_uint_eq(snap.limit_bytes, 3 * GiB);
    sampler_free(s);

    /* A malformed PSI file is no PSI file. */
    test_put(V2_CG "/memory.pressure", "some avg10=1.00 total=12\n");
    s = test_sampler(false);
    test_sample(s, SEC, &snap);
    ck_assert_str_eq(snap.psi_source, "none");
    sampler_free(s);
}
END_TEST

START_TEST(test_no_cgroup)
{
    struct sampler_snapshot snap;
    struct sampler *s;

    /* Only host files: no self/cgroup, no mountinfo. */
    test_meminfo(4 * GiB / KiB, 3 * GiB / KiB, 0, 0);
    test_psi("proc/pressure/memory", 10, 5);
    s = test_sampler(false);
    test_sample(s, SEC, &snap);
    ck_assert_str_eq(sampler_cgroup_mode_name(snap.cgroup_mode), "none");
    ck_assert_str_eq(snap.cgroup_dir, "");
    ck_assert(snap.psi_host_wide);
    ck_assert(!HAS(&snap, SAMPLER_HAVE_CG_USAGE));
    ck_assert_uint_eq(snap.limit_bytes, 4 * GiB);
    ck_assert(!HAS(&snap, SAMPLER_HAVE_PSWP)); /* no vmstat */
    ck_assert(!HAS(&snap, SAMPLER_HAVE_OOM_KILL));
    sampler_free(s);

    /* A completely empty tree: nothing, but a valid snapshot. */
    test_rm("proc/meminfo");
    test_rm("proc/pressure/memory");
    s = test_sampler(false);
    test_sample(s, SEC, &snap);
    ck_assert_uint_eq(snap.have, 0);
    ck_assert_uint_eq(snap.seq, 1);
    ck_assert_int_eq(snap.limit_source, SAMPLER_LIMIT_NONE);
    sampler_free(s);
}
END_TEST

START_TEST(test_stall_fractions)
{
    struct sampler_snapshot snap;
    struct sampler *s;
    uint64_t t0 = 1000 * SEC;

    test_v2_host();
    s = test_sampler(false);
    test_sample(s, t0, &snap);
    /* 100 ms later: some +25 ms, full +5 ms of stall. */
    test_psi(V2_CG "/memory.pressure", 1000000 + 25000, 200000 + 5000);
    test_sample(s, t0 + 100 * MS, &snap);
    ck_assert_uint_eq(snap.dt_ns, 100 * MS);
    ck_assert(HAS(&snap, SAMPLER_HAVE_STALL_SOME) && HAS(&snap, SAMPLER_HAVE_STALL_FULL));
    ck_assert_double_eq_tol(snap.some_stall, 0.25, 1e-12);
    ck_assert_double_eq_tol(snap.full_stall, 0.05, 1e-12);
    /* A late tick: 40 ms of stall over 400 ms. */
    test_psi(V2_CG "/memory.pressure", 1025000 + 40000, 205000);
    test_sample(s, t0 + 500 * MS, &snap);
    ck_assert_double_eq_tol(snap.some_stall, 0.1, 1e-12);
    ck_assert_double_eq_tol(snap.full_stall, 0.0, 1e-12);
    /* More stall than time (per-CPU totals can do that): clamped to 1. */
    test_psi(V2_CG "/memory.pressure", 1065000 + 300000, 205000 + 150000);
    test_sample(s, t0 + 600 * MS, &snap);
    ck_assert_double_eq_tol(snap.some_stall, 1.0, 1e-12);
    ck_assert_double_eq_tol(snap.full_stall, 1.0, 1e-12);
    /* A total that went backwards (cgroup recreated): no fraction this time. */
    test_psi(V2_CG "/memory.pressure", 5, 5);
    test_sample(s, t0 + 700 * MS, &snap);
    ck_assert(!HAS(&snap, SAMPLER_HAVE_STALL_SOME));
    /* The same time again: no interval, no fraction. */
    test_sample(s, t0 + 700 * MS, &snap);
    ck_assert_uint_eq(snap.dt_ns, 0);
    ck_assert(!HAS(&snap, SAMPLER_HAVE_STALL_SOME));
    sampler_free(s);
}
END_TEST

START_TEST(test_rates)
{
    struct sampler_snapshot snap;
    struct sampler *s;
    uint64_t t0 = 50 * SEC;

    test_v1_host();
    test_vmstat(10, 20, 5000, 1000, 0);
    s = test_sampler(false);
    test_sample(s, t0, &snap);
    ck_assert(HAS(&snap, SAMPLER_HAVE_PSWP));
    ck_assert(!HAS(&snap, SAMPLER_HAVE_PSWP_RATE));
    /* Half a second later: +500 refaults, +2000 kswapd scans, +20 in, +5 out. */
    test_vmstat(30, 25, 5500, 3000, 0);
    test_sample(s, t0 + 500 * MS, &snap);
    ck_assert(HAS(&snap, SAMPLER_HAVE_REFAULT_RATE));
    ck_assert_double_eq_tol(snap.refaults_per_s, 1000.0, 1e-9);
    ck_assert(HAS(&snap, SAMPLER_HAVE_PGSCAN_RATE));
    ck_assert_double_eq_tol(snap.pgscan_per_s, 4000.0, 1e-9);
    ck_assert(HAS(&snap, SAMPLER_HAVE_PSWP_RATE));
    ck_assert_double_eq_tol(snap.pswpin_per_s, 40.0, 1e-9);
    ck_assert_double_eq_tol(snap.pswpout_per_s, 10.0, 1e-9);
    ck_assert_uint_eq(snap.pswpin, 30);
    /* Nothing moved over 2 s: zero rates, still valid. */
    test_sample(s, t0 + 2500 * MS, &snap);
    ck_assert(HAS(&snap, SAMPLER_HAVE_REFAULT_RATE));
    ck_assert_double_eq_tol(snap.refaults_per_s, 0.0, 1e-12);
    ck_assert_double_eq_tol(snap.pswpin_per_s, 0.0, 1e-12);
    sampler_free(s);
}
END_TEST

START_TEST(test_swap_present)
{
    struct sampler_snapshot snap;
    struct sampler *s;

    /* v2 with swap: memory.swap.current and the host's SwapTotal/SwapFree. */
    test_v2_host();
    test_meminfo(16 * GiB / KiB, 12 * GiB / KiB, 4 * GiB / KiB, 3 * GiB / KiB);
    test_put(V2_CG "/memory.swap.current", "104857600\n");
    s = test_sampler(false);
    test_sample(s, SEC, &snap);
    ck_assert(HAS(&snap, SAMPLER_HAVE_CG_SWAP));
    ck_assert_uint_eq(snap.cg_swap, 100 * MiB);
    ck_assert_uint_eq(snap.swap_total, 4 * GiB);
    ck_assert_uint_eq(snap.swap_free, 3 * GiB);
    sampler_free(s);

    /* Without swap accounting (swapaccount=0): no cgroup swap value. */
    test_rm(V2_CG "/memory.swap.current");
    test_meminfo(16 * GiB / KiB, 12 * GiB / KiB, 0, 0);
    s = test_sampler(false);
    test_sample(s, SEC, &snap);
    ck_assert(!HAS(&snap, SAMPLER_HAVE_CG_SWAP));
    ck_assert(HAS(&snap, SAMPLER_HAVE_HOST_SWAP));
    ck_assert_uint_eq(snap.swap_total, 0);
    sampler_free(s);
}
END_TEST

/* memory.stat of V2_CG with inactive_file 500 MiB and the given anon refaults. */
static void test_v2_stat_anon(uint64_t refault_anon)
{
    test_putf(V2_CG "/memory.stat",
              "anon 314572800\nfile 734003200\nactive_file 209715200\ninactive_file 524288000\n"
              "workingset_refault_anon %llu\nworkingset_refault_file 1000\npgscan 2000\n",
              (unsigned long long)refault_anon);
}

START_TEST(test_exhaust_v2_swap)
{
    struct sampler_snapshot snap;
    struct sampler *s;

    /* v2, system.slice caps memory at 3 GiB, memory.swap.max 1 GiB of 4 GiB host swap. */
    test_v2_host();
    test_meminfo(16 * GiB / KiB, 12 * GiB / KiB, 4 * GiB / KiB, 3 * GiB / KiB);
    test_put(V2_CG "/memory.swap.max", "1073741824\n");
    test_put(V2_CG "/memory.swap.current", "104857600\n");
    s = test_sampler(false);
    /* 100 MiB/s of growth and 100 anon refaults/s, 100 ms apart. */
    for (uint64_t i = 0; i < 10; i++) {
        test_putf(V2_CG "/memory.current", "%llu\n", (unsigned long long)(GiB + i * 10 * MiB));
        test_v2_stat_anon(5 + i * 10);
        test_sample(s, SEC + i * 100 * MS, &snap);
    }
    ck_assert(HAS(&snap, SAMPLER_HAVE_CG_SWAP_MAX));
    ck_assert_uint_eq(snap.cg_swap_max, GiB);
    ck_assert(HAS(&snap, SAMPLER_HAVE_SWAPIN_RATE));
    ck_assert_int_eq(snap.swapin_scope, SAMPLER_SCOPE_CGROUP);
    ck_assert_double_eq_tol(snap.swapins_per_s, 100.0, 1e-6);
    ck_assert(HAS(&snap, SAMPLER_HAVE_EXHAUST));
    ck_assert_uint_eq(snap.exhaust_swap_cap, GiB);
    ck_assert_uint_eq(snap.exhaust_capacity, 4 * GiB);
    /* used = current - inactive_file + swap = 1024 + 90 - 500 + 100 MiB */
    ck_assert_uint_eq(snap.exhaust_used, 714 * MiB);
    ck_assert(snap.tte_valid);
    ck_assert_double_eq_tol(snap.growth_bytes_per_s, 100.0 * (double)MiB, 1e-3 * (double)MiB);
    /* (4096 - 714) MiB / 100 MiB/s = 33.82 s; fill 40.96 s */
    ck_assert_uint_ge(snap.tte_ms, 33800);
    ck_assert_uint_le(snap.tte_ms, 33840);
    ck_assert_uint_ge(snap.fill_ms, 40940);
    ck_assert_uint_le(snap.fill_ms, 40980);
    sampler_free(s);
}
END_TEST

START_TEST(test_exhaust_v1_swap)
{
    struct sampler_snapshot snap;
    struct sampler *s;

    /* v1 with a 1 GiB limit, memsw 1.5 GiB (512 MiB of swap), anon refaults not per
     * cgroup on this kernel: swap-ins from the host's pswpin. */
    test_v1_host();
    test_put(V1_CG "/memory.limit_in_bytes", "1073741824\n");
    test_put(V1_CG "/memory.memsw.limit_in_bytes", "1610612736\n");
    s = test_sampler(false);
    for (uint64_t i = 0; i < 10; i++) {
        uint64_t usage = 512 * MiB + i * 5 * MiB;

        test_putf(V1_CG "/memory.usage_in_bytes", "%llu\n", (unsigned long long)usage);
        test_putf(V1_CG "/memory.memsw.usage_in_bytes", "%llu\n",
                  (unsigned long long)(usage + 100 * MiB));
        test_vmstat(10 + i * 10, 20, 5000, 1000, 0);
        test_sample(s, SEC + i * 100 * MS, &snap);
    }
    ck_assert(HAS(&snap, SAMPLER_HAVE_CG_SWAP_MAX));
    ck_assert_uint_eq(snap.cg_swap_max, 512 * MiB);
    ck_assert_int_eq(snap.swapin_scope, SAMPLER_SCOPE_HOST);
    ck_assert_double_eq_tol(snap.swapins_per_s, 100.0, 1e-6);
    ck_assert_int_eq(snap.limit_source, SAMPLER_LIMIT_CGROUP_MAX);
    ck_assert_uint_eq(snap.exhaust_capacity, 1536 * MiB);
    /* 512 + 45 - 256 (inactive file) + 100 (swap) */
    ck_assert_uint_eq(snap.exhaust_used, 401 * MiB);
    ck_assert_double_eq_tol(snap.growth_bytes_per_s, 50.0 * (double)MiB, 1e-3 * (double)MiB);
    /* 1135 MiB / 50 MiB/s = 22.7 s; fill 30.72 s */
    ck_assert_uint_ge(snap.tte_ms, 22680);
    ck_assert_uint_le(snap.tte_ms, 22720);
    ck_assert_uint_ge(snap.fill_ms, 30700);
    ck_assert_uint_le(snap.fill_ms, 30740);
    sampler_free(s);
}
END_TEST

START_TEST(test_exhaust_hybrid_swap_self)
{
    struct sampler_snapshot snap;
    struct sampler *s;
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);

    /* Hybrid, 1 GiB hierarchical limit, no memsw files, 1 GiB of host swap. */
    test_hybrid_host();
    test_meminfo(24 * GiB / KiB, 23 * GiB / KiB, GiB / KiB, GiB / KiB);
    s = test_sampler(false);
    /* The node itself grows 20 MiB/s, a co-tenant 4000 KiB/s: only the co-tenant counts. */
    for (uint64_t i = 0; i < 10; i++) {
        uint64_t self = 100 * MiB + i * 2 * MiB;

        test_putf(HY_V1 "/memory.usage_in_bytes", "%llu\n",
                  (unsigned long long)(300 * MiB + i * (2 * MiB + 400 * KiB)));
        test_putf("proc/self/statm", "50000 %llu 100 10 0 2000 0\n",
                  (unsigned long long)(self / page));
        test_sample(s, SEC + i * 100 * MS, &snap);
    }
    ck_assert(!HAS(&snap, SAMPLER_HAVE_CG_SWAP_MAX));
    ck_assert_int_eq(snap.swapin_scope, SAMPLER_SCOPE_CGROUP);
    ck_assert_uint_eq(snap.exhaust_swap_cap, GiB);
    ck_assert_uint_eq(snap.exhaust_capacity, 2 * GiB);
    ck_assert_uint_eq(snap.exhaust_self, 118 * MiB);
    ck_assert_double_eq_tol(snap.growth_bytes_per_s, 4000.0 * (double)KiB, 1.0);
    sampler_free(s);

    /* Without swap, and with no growth: capacity is the limit, tte never. */
    test_meminfo(24 * GiB / KiB, 23 * GiB / KiB, 0, 0);
    s = test_sampler(false);
    for (uint64_t i = 0; i < 10; i++)
        test_sample(s, SEC + i * 100 * MS, &snap);
    ck_assert_uint_eq(snap.exhaust_capacity, GiB);
    ck_assert(snap.tte_valid);
    ck_assert_uint_eq(snap.tte_ms, UINT64_MAX);
    sampler_free(s);
}
END_TEST

START_TEST(test_oom_kill_rise)
{
    struct sampler_config cfg = {.oom_recent_s = 30};
    char proc[128], sys[128], err[128];
    struct sampler_snapshot snap;
    struct sampler *s;
    uint64_t t0 = 100 * SEC;

    test_v2_host();
    snprintf(proc, sizeof(proc), "%s/proc", test_root);
    snprintf(sys, sizeof(sys), "%s/sys", test_root);
    cfg.proc_root = proc;
    cfg.sys_root = sys;
    s = sampler_new(&cfg, err, sizeof(err));
    ck_assert_ptr_nonnull(s);
    test_sample(s, t0, &snap); /* oom_kill 1 from before the start: not recent */
    ck_assert(!snap.oom_kill_recent);
    ck_assert_uint_eq(snap.oom_kill_rise_mono_ns, 0);
    test_sample(s, t0 + SEC, &snap);
    ck_assert(!snap.oom_kill_recent);

    test_put(V2_CG "/memory.events", "oom 2\noom_kill 2\n");
    test_sample(s, t0 + 2 * SEC, &snap);
    ck_assert(snap.oom_kill_recent);
    ck_assert_uint_eq(snap.oom_kill, 2);
    ck_assert_uint_eq(snap.oom_kill_rise_mono_ns, t0 + 2 * SEC);
    /* Still recent 29.999 s later, not at 30 s. */
    test_sample(s, t0 + 32 * SEC - 1, &snap);
    ck_assert(snap.oom_kill_recent);
    ck_assert_uint_eq(snap.oom_kill_rise_mono_ns, t0 + 2 * SEC);
    test_sample(s, t0 + 32 * SEC, &snap);
    ck_assert(!snap.oom_kill_recent);
    /* The file vanishing for a sample does not lose the last rise. */
    test_rm(V2_CG "/memory.events");
    test_rm("proc/vmstat");
    test_sample(s, t0 + 33 * SEC, &snap);
    ck_assert(!HAS(&snap, SAMPLER_HAVE_OOM_KILL));
    ck_assert_uint_eq(snap.oom_kill_rise_mono_ns, t0 + 2 * SEC);
    sampler_free(s);

    /* Invalid configuration is the only failure of sampler_new. */
    cfg.interval_ms = 600000;
    ck_assert_ptr_null(sampler_new(&cfg, err, sizeof(err)));
    ck_assert(strstr(err, "interval") != NULL);
}
END_TEST

START_TEST(test_read_and_publish)
{
    struct sampler_snapshot snap, got;
    struct sampler *s;

    test_v2_host();
    s = test_sampler(false);
    ck_assert_int_eq(sampler_read(s, &got), -ENODATA);
    /* More samples than ring slots: the reader always gets the newest. */
    for (uint64_t i = 1; i <= 3 * SAMPLER_RING + 1; i++) {
        test_sample(s, i * SEC, &snap);
        ck_assert_int_eq(sampler_read(s, &got), 0);
        ck_assert_uint_eq(got.seq, i);
        ck_assert_uint_eq(got.taken_mono_ns, i * SEC);
        ck_assert_int_eq(memcmp(&got, &snap, sizeof(got)), 0);
    }
    /* NULL ret is allowed. */
    ck_assert_int_eq(sampler_sample_once(s, 100 * SEC, NULL), 0);
    ck_assert_int_eq(sampler_read(s, &got), 0);
    ck_assert_uint_eq(got.seq, 3 * SAMPLER_RING + 2);
    sampler_free(s);
    sampler_free(NULL);
}
END_TEST

static void test_sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

START_TEST(test_thread)
{
    char proc[128], sys[128], err[256] = "";
    struct sampler_config cfg = {
        .proc_root = proc, .sys_root = sys, .interval_ms = 10, .psi_triggers = false};
    struct sampler_snapshot a, b, c;
    struct sampler *s;
    uint64_t t0;

    test_v2_host();
    snprintf(proc, sizeof(proc), "%s/proc", test_root);
    snprintf(sys, sizeof(sys), "%s/sys", test_root);
    t0 = clock_mono_ns();
    s = sampler_start(&cfg, err, sizeof(err));
    ck_assert_msg(s != NULL, "sampler_start: %s", err);
    /* A snapshot exists as soon as sampler_start returns. */
    ck_assert_int_eq(sampler_read(s, &a), 0);
    ck_assert_uint_ge(a.seq, 1);
    ck_assert_uint_ge(a.taken_mono_ns, t0);
    ck_assert_uint_eq(a.cg_usage, 1 * GiB);
    /* The sampling state belongs to the thread now. */
    ck_assert_int_eq(sampler_sample_once(s, clock_mono_ns(), NULL), -EBUSY);

    /* Stall injected while it runs shows up in a later snapshot. */
    test_psi(V2_CG "/memory.pressure", 1000000 + 50000000, 200000);
    test_sleep_ms(200);
    ck_assert_int_eq(sampler_read(s, &b), 0);
    ck_assert_uint_gt(b.seq, a.seq + 3); /* about 20 samples in 200 ms */
    ck_assert_uint_gt(b.taken_mono_ns, a.taken_mono_ns);
    ck_assert_uint_eq(b.some.total_us, 51000000);
    ck_assert_int_eq(b.cause, SAMPLER_CAUSE_TIMER);
    ck_assert_str_eq(sampler_cause_name(b.cause), "timer");
    ck_assert(HAS(&b, SAMPLER_HAVE_STALL_SOME));
    ck_assert_uint_gt(b.dt_ns, 0);

    sampler_stop(s);
    sampler_stop(s); /* idempotent */
    ck_assert_int_eq(sampler_read(s, &c), 0);
    test_sleep_ms(50);
    ck_assert_int_eq(sampler_read(s, &b), 0);
    ck_assert_uint_eq(b.seq, c.seq); /* nothing published after the stop */
    /* Synchronous sampling is possible again, and continues the sequence. */
    ck_assert_int_eq(sampler_sample_once(s, clock_mono_ns(), &b), 0);
    ck_assert_uint_eq(b.seq, c.seq + 1);
    sampler_free(s);
}
END_TEST

START_TEST(test_triggers_on_fixture)
{
    char proc[128], sys[128], err[256] = "", buf[256];
    struct sampler_config cfg = {
        .proc_root = proc, .sys_root = sys, .interval_ms = 20, .psi_triggers = true};
    struct sampler_snapshot snap;
    struct sampler *s;
    FILE *f;
    size_t n;

    test_v2_host();
    snprintf(proc, sizeof(proc), "%s/proc", test_root);
    snprintf(sys, sizeof(sys), "%s/sys", test_root);
    s = sampler_start(&cfg, err, sizeof(err));
    ck_assert_msg(s != NULL, "sampler_start: %s", err);
    ck_assert_int_eq(sampler_read(s, &snap), 0);
    /* An ordinary file is not armed: the sampler runs on its timer. */
    ck_assert_str_eq(sampler_trigger_name(snap.trigger), "off");
    ck_assert_str_eq(snap.trigger_reason, "not a kernel PSI file");
    test_sleep_ms(60);
    sampler_free(s);
    /* And nothing was written into the fixture. */
    f = fopen(test_abs(V2_CG "/memory.pressure"), "r");
    ck_assert_ptr_nonnull(f);
    n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    ck_assert(strncmp(buf, "some avg10=12.34", 16) == 0);
    ck_assert(strstr(buf, "total=1000000\n") != NULL);
}
END_TEST

/* The real host, read-only: only what must hold on any Linux. */
START_TEST(test_real_host)
{
    char err[256] = "";
    struct sampler_snapshot a, b;
    struct sampler *s = sampler_new(NULL, err, sizeof(err));
    uint64_t t0 = clock_mono_ns();

    ck_assert_msg(s != NULL, "sampler_new: %s", err);
    test_sample(s, t0, &a);
    test_sleep_ms(120);
    test_sample(s, clock_mono_ns(), &b);
    printf("check_sampler: real host: cgroup=%s dir=%s psi=%s host_wide=%d limit=%llu (%s) "
           "refaults=%s pgscan=%s oom=%s some_stall=%.4f\n",
           sampler_cgroup_mode_name(b.cgroup_mode), b.cgroup_dir[0] ? b.cgroup_dir : "-",
           b.psi_source, b.psi_host_wide, (unsigned long long)b.limit_bytes,
           sampler_limit_source_name(b.limit_source), sampler_scope_name(b.refault_scope),
           sampler_scope_name(b.pgscan_scope), sampler_scope_name(b.oom_scope), b.some_stall);
    ck_assert(HAS(&b, SAMPLER_HAVE_MEMINFO));
    ck_assert_uint_gt(b.mem_total, 0);
    ck_assert_uint_le(b.mem_available, b.mem_total);
    ck_assert(HAS(&b, SAMPLER_HAVE_LIMIT));
    ck_assert_uint_le(b.limit_bytes, b.mem_total);
    ck_assert_uint_gt(b.limit_bytes, 0);
    ck_assert_uint_eq(b.seq, 2);
    ck_assert_uint_gt(b.dt_ns, 100 * MS);
    if (HAS(&b, SAMPLER_HAVE_STALL_SOME)) {
        ck_assert(b.some_stall >= 0.0 && b.some_stall <= 1.0);
        ck_assert_uint_ge(b.some.total_us, a.some.total_us);
    }
    if (b.cgroup_mode != SAMPLER_CGROUP_NONE) {
        struct stat st;

        ck_assert_int_eq(stat(b.cgroup_dir, &st), 0);
        ck_assert(S_ISDIR(st.st_mode));
    }
    if (strcmp(b.psi_source, "none") != 0)
        ck_assert(HAS(&b, SAMPLER_HAVE_PSI_SOME));
    ck_assert_int_eq(b.trigger, SAMPLER_TRIGGER_OFF); /* never armed here: read-only */
    sampler_free(s);
}
END_TEST

static void test_add(Suite *s, const char *name, const TTest *test)
{
    TCase *tc = tcase_create(name);

    tcase_add_unchecked_fixture(tc, test_setup, test_teardown);
    tcase_add_test(tc, test);
    tcase_set_timeout(tc, 30);
    suite_add_tcase(s, tc);
}

static Suite *sampler_suite(void)
{
    Suite *s = suite_create("sampler");

    test_add(s, "v2_detect", test_v2_detect);
    test_add(s, "v2_older_kernel_keys", test_v2_older_kernel_keys);
    test_add(s, "v1_detect", test_v1_detect);
    test_add(s, "v1_bind_mount", test_v1_bind_mount);
    test_add(s, "hybrid_detect", test_hybrid_detect);
    test_add(s, "hybrid_child_cgroup", test_hybrid_child_cgroup);
    test_add(s, "psi_missing", test_psi_missing);
    test_add(s, "no_cgroup", test_no_cgroup);
    test_add(s, "stall_fractions", test_stall_fractions);
    test_add(s, "rates", test_rates);
    test_add(s, "swap_present", test_swap_present);
    test_add(s, "exhaust_v2_swap", test_exhaust_v2_swap);
    test_add(s, "exhaust_v1_swap", test_exhaust_v1_swap);
    test_add(s, "exhaust_hybrid_swap_self", test_exhaust_hybrid_swap_self);
    test_add(s, "oom_kill_rise", test_oom_kill_rise);
    test_add(s, "read_and_publish", test_read_and_publish);
    test_add(s, "thread", test_thread);
    test_add(s, "triggers_on_fixture", test_triggers_on_fixture);
    test_add(s, "real_host", test_real_host);
    return s;
}

int main(void)
{
    return harness_run_suite(sampler_suite());
}
