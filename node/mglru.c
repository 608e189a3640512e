/*
 * mglru: parsers for the multigen LRU's sysfs switch and debugfs lru_gen
 * file (contract in mglru.h). Expected load: one read a second at most; the
 * debugfs file is a few lines per memcg and node.
 */
#include "mglru.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "xmalloc.h"

int mglru_parse_enabled(const char *text, bool *ret_enabled)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(text, &end, 0);
    if (errno != 0 || end == text)
        return -EINVAL;
    while (*end == ' ' || *end == '\n' || *end == '\t')
        end++;
    if (*end != '\0')
        return -EINVAL;
    *ret_enabled = (v & 1) != 0;
    return 0;
}

int mglru_memcg_path(const char *text, char *ret, size_t len)
{
    const char *line = text, *v2 = NULL, *v1 = NULL;

    while (line != NULL && *line != '\0') {
        const char *c1 = strchr(line, ':'), *c2 = c1 != NULL ? strchr(c1 + 1, ':') : NULL;
        const char *nl = strchr(line, '\n');

        if (c2 != NULL && (nl == NULL || c2 < nl)) {
            size_t n = (size_t)(c2 - c1 - 1);
            const char *ctl = c1 + 1;

            if (n == 0 && c1 - line == 1 && line[0] == '0') {
                v2 = c2 + 1;
            } else {
                /* A comma-separated controller list: "memory" as a whole word. */
                for (const char *w = ctl; w < c2;) {
                    const char *comma = memchr(w, ',', (size_t)(c2 - w));
                    const char *e = comma != NULL ? comma : c2;

                    if ((size_t)(e - w) == 6 && memcmp(w, "memory", 6) == 0)
                        v1 = c2 + 1;
                    w = e + 1;
                }
            }
        }
        line = nl != NULL ? nl + 1 : NULL;
    }
    if (v1 == NULL)
        v1 = v2;
    if (v1 == NULL)
        return -ENOENT;
    {
        size_t n = strcspn(v1, "\n");

        if (n + 1 > len)
            return -ENAMETOOLONG;
        memcpy(ret, v1, n);
        ret[n] = '\0';
    }
    return 0;
}

/* One generation of one node, kept until the node's block ends. */
struct mglru_gen {
    int64_t anon, file;
};

/* Adds the youngest `young` of n gens (listed oldest first) to ret. */
static void mglru_node_done(const struct mglru_gen *g, size_t n, unsigned young,
                            uint64_t page_size, struct mglru_wss *ret)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t pages = (uint64_t)(g[i].anon > 0 ? g[i].anon : 0) +
                         (uint64_t)(g[i].file > 0 ? g[i].file : 0);

        ret->total_bytes += pages * page_size;
        if (i + young >= n)
            ret->young_bytes += pages * page_size;
    }
}

int mglru_parse(const char *text, const char *memcg_path, unsigned young, uint64_t page_size,
                struct mglru_wss *ret)
{
    struct mglru_wss w = {0};
    struct mglru_gen gens[64];
    size_t n = 0;
    bool in = false, found = false;
    const char *line = text;

    if (young == 0 || page_size == 0)
        return -EINVAL;
    while (line != NULL && *line != '\0') {
        const char *nl = strchr(line, '\n');
        size_t len = nl != NULL ? (size_t)(nl - line) : strlen(line);
        char buf[512], word[16], path[400];
        long long a, b, c, d;

        if (len >= sizeof(buf))
            len = sizeof(buf) - 1;
        memcpy(buf, line, len);
        buf[len] = '\0';
        line = nl != NULL ? nl + 1 : NULL;
        if (sscanf(buf, " %15s", word) != 1)
            continue; /* blank */
        if (strcmp(word, "memcg") == 0) {
            if (in) {
                mglru_node_done(gens, n, young, page_size, &w);
                n = 0;
            }
            in = false;
            path[0] = '\0';
            /* "memcg <id> <path>"; a memcg being removed may print no path. */
            if (sscanf(buf, " memcg %lld %399s", &a, path) >= 1 && strcmp(path, memcg_path) == 0) {
                if (found)
                    return -EINVAL; /* the same memcg twice */
                in = found = true;
            }
            continue;
        }
        if (!in)
            continue;
        if (strcmp(word, "node") == 0) {
            if (sscanf(buf, " node %lld", &a) != 1)
                return -EINVAL;
            mglru_node_done(gens, n, young, page_size, &w);
            n = 0;
            w.nodes++;
            continue;
        }
        if (sscanf(buf, " %lld %lld %lld %lld", &a, &b, &c, &d) != 4 || w.nodes == 0)
            return -EINVAL;
        if (n == sizeof(gens) / sizeof(gens[0]))
            return -EINVAL;
        gens[n].anon = c;
        gens[n].file = d;
        n++;
        w.gens++;
    }
    if (!found)
        return -ENOENT;
    if (in)
        mglru_node_done(gens, n, young, page_size, &w);
    *ret = w;
    return 0;
}

/* Reads a whole small file into a NUL-terminated heap string; 0 or -errno. */
static int mglru_slurp(const char *path, char **ret)
{
    FILE *f = fopen(path, "re");
    size_t cap = 4096, len = 0;
    char *buf;

    if (f == NULL)
        return -errno;
    buf = xmalloc(cap);
    for (;;) {
        size_t got = fread(buf + len, 1, cap - len - 1, f);

        len += got;
        if (got == 0)
            break;
        if (len + 1 == cap) {
            if (cap >= (16u << 20))
                break; /* a bound on what a kernel file may make us hold */
            cap *= 2;
            buf = xreallocarray(buf, cap, 1);
        }
    }
    fclose(f);
    buf[len] = '\0';
    *ret = buf;
    return 0;
}

int mglru_read(const char *sys_root, const char *memcg_path, unsigned young, struct mglru_wss *ret)
{
    char *path = xasprintf("%s/kernel/mm/lru_gen/enabled", sys_root), *text = NULL;
    bool enabled = false;
    long page = sysconf(_SC_PAGESIZE);
    int r = mglru_slurp(path, &text);

    free(path);
    if (r == -ENOENT)
        return -ENOTSUP;
    if (r < 0)
        return r;
    r = mglru_parse_enabled(text, &enabled);
    free(text);
    if (r < 0)
        return r;
    if (!enabled)
        return -ENOTSUP;
    path = xasprintf("%s/kernel/debug/lru_gen", sys_root);
    r = mglru_slurp(path, &text);
    free(path);
    if (r < 0)
        return r;
    r = mglru_parse(text, memcg_path, young, page > 0 ? (uint64_t)page : 4096, ret);
    free(text);
    return r;
}
