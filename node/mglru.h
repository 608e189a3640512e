/*
 * mglru: the multigen LRU as a working-set source. Where the kernel has
 * MGLRU (/sys/kernel/mm/lru_gen/enabled with bit 0 set), its debugfs file
 * lru_gen lists, per memory cgroup and NUMA node, the generations of the
 * LRU from oldest to youngest:
 *
 *   memcg  <memcg_id>  <memcg_path>
 *    node  <node_id>
 *          <gen_nr>  <age_in_ms>  <nr_anon_pages>  <nr_file_pages>
 *          ...
 *
 * Pages in the youngest generations were accessed most recently: their
 * bytes are a working set measured by the kernel's own aging, without
 * sampling page tables ourselves. mglru_parse() sums, for one memcg, the
 * anon and file pages of the youngest `young` generations of every node
 * (a negative count, which the kernel can print while pages move between
 * generations, counts as 0).
 *
 * Pure parsers plus one reader that takes a root path (sys_root, so tests
 * point it at fixture trees; the debugfs file is <sys_root>/kernel/debug/
 * lru_gen). Nothing here writes anything. This host's kernel has no MGLRU:
 * the node then says "mglru=absent" and uses its other sources.
 */
#ifndef SLUICE_NODE_MGLRU_H
#define SLUICE_NODE_MGLRU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Generations counted as "young" by default: the two youngest of MGLRU's four. */
#define MGLRU_YOUNG_DEFAULT 2

struct mglru_wss {
    uint64_t young_bytes; /* anon + file pages of the youngest generations, in bytes */
    uint64_t total_bytes; /* every generation's pages, in bytes */
    unsigned nodes;       /* NUMA nodes seen for the memcg */
    unsigned gens;        /* generations seen (all nodes) */
};

/*
 * Parses the contents of /sys/kernel/mm/lru_gen/enabled: a hex mask such as
 * "0x0007". Sets *ret_enabled to bit 0 (the main switch). Returns 0, or
 * -EINVAL for text that is not such a number.
 */
int mglru_parse_enabled(const char *text, bool *ret_enabled);

/*
 * Parses the debugfs lru_gen text for the memcg whose path is memcg_path
 * (as the file prints it, e.g. "/" or "/system.slice/sluice.service"),
 * counting young generations per node and page_size bytes per page. Returns
 * 0 with *ret filled, -ENOENT when that memcg is not in the text, -EINVAL
 * for a malformed line inside its block (young 0 or page_size 0 too).
 */
int mglru_parse(const char *text, const char *memcg_path, unsigned young, uint64_t page_size,
                struct mglru_wss *ret);

/*
 * The memory cgroup's path as lru_gen prints it, from the text of
 * /proc/self/cgroup: the v1 line whose controllers include "memory", else
 * the v2 line "0::<path>". Returns 0, -ENOENT (neither), -ENAMETOOLONG.
 */
int mglru_memcg_path(const char *proc_self_cgroup, char *ret, size_t len);

/*
 * Reads <sys_root>/kernel/mm/lru_gen/enabled and, when enabled,
 * <sys_root>/kernel/debug/lru_gen, and parses as above. Returns 0, or
 * -ENOTSUP (no MGLRU, or disabled), -EACCES/-ENOENT (debugfs not readable:
 * not mounted, or not root), or what mglru_parse() returns.
 */
int mglru_read(const char *sys_root, const char *memcg_path, unsigned young, struct mglru_wss *ret);

#endif
