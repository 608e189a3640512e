/*
 * scalekit: the pieces bench_scale and bench_catalog share (see
 * scalekit.h). Each is called a handful of times a run; the polling ones
 * sleep 50 ms between answers.
 */
#include "scalekit.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "harness.h"
#include "wire.h"
#include "xmalloc.h"

double scalekit_now_s(void)
{
    return (double)clock_mono_ns() / 1e9;
}

unsigned scalekit_free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
        perror("scalekit: free port");
        exit(1);
    }
    close(fd);
    return ntohs(a.sin_port);
}

void scalekit_proc_mem(int pid, uint64_t *hwm, uint64_t *rss)
{
    char path[64], line[256];
    FILE *f;

    *hwm = *rss = 0;
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    f = fopen(path, "re");
    if (f == NULL)
        return;
    while (fgets(line, sizeof(line), f) != NULL) {
        unsigned long long kb;

        if (sscanf(line, "VmHWM: %llu kB", &kb) == 1)
            *hwm = kb * 1024;
        else if (sscanf(line, "VmRSS: %llu kB", &kb) == 1)
            *rss = kb * 1024;
    }
    fclose(f);
}

double scalekit_proc_cpu_s(int pid)
{
    char path[64], buf[2048], *p;
    unsigned long long ut, st;
    FILE *f;
    size_t n;

    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    f = fopen(path, "re");
    if (f == NULL)
        return -1;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    p = strrchr(buf, ')');
    /* After "pid (comm)": state is field 3; utime and stime are fields 14 and 15. */
    if (p == NULL ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

uint64_t scalekit_env_u64(const char *name, uint64_t dflt)
{
    const char *v = getenv(name);

    return v != NULL && v[0] != '\0' ? strtoull(v, NULL, 10) : dflt;
}

int scalekit_register(const char *addr, uint64_t n, const char *who)
{
    struct wire_segment_batch b;

    b.specs = xcalloc(SCALEKIT_BATCH, sizeof(*b.specs));
    for (uint64_t from = 0; from < n; from += SCALEKIT_BATCH) {
        struct harness_reply rep;
        int rc;

        b.n = (size_t)(n - from < SCALEKIT_BATCH ? n - from : SCALEKIT_BATCH);
        for (size_t i = 0; i < b.n; i++) {
            struct wire_segment_spec *s = &b.specs[i];

            snprintf(s->segment_id, sizeof(s->segment_id), "seg-%07" PRIu64, from + i);
            s->uri = xasprintf("file:///scale/seg-%07" PRIu64 ".seg", from + i);
            s->row_count = 1000;
            s->avg_row_size = 1000;
            s->replication = 1;
        }
        rc = harness_register(addr, &b, NULL, &rep);
        for (size_t i = 0; i < b.n; i++) {
            free(b.specs[i].uri);
            b.specs[i].uri = NULL;
        }
        if (rc != 200) {
            fprintf(stderr, "%s: register at %" PRIu64 ": %d %s\n", who, from, rc, rep.err.message);
            free(b.specs);
            return -1;
        }
    }
    free(b.specs);
    return 0;
}

double scalekit_wait_loaded(const char *addr, uint64_t n, double timeout_s)
{
    double t0 = scalekit_now_s(), grew = t0;
    uint64_t best = 0;

    while (scalekit_now_s() - t0 < timeout_s && scalekit_now_s() - grew < 60) {
        struct wire_cluster_status st;

        if (harness_cluster_status(addr, &st) == 200) {
            if (st.segments_total == n && st.segments_loaded == n)
                return scalekit_now_s() - t0;
            if (st.segments_loaded > best) {
                best = st.segments_loaded;
                grew = scalekit_now_s();
            }
        }
        usleep(50000);
    }
    return -1;
}

void scalekit_stop(struct harness_proc *coord, struct harness_proc *farm, bool failed)
{
    if (failed) {
        if (coord != NULL)
            harness_proc_dump_log(coord);
        if (farm != NULL)
            harness_proc_dump_log(farm);
    }
    harness_proc_free(farm);
    harness_proc_free(coord);
}
