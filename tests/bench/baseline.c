/*
 * Baselines shared by the benchmarks (see baseline.h). Called a few dozen
 * times per run: nothing here is on a measured path except bench_plain_read,
 * which is the measurement.
 */
#include "baseline.h"

#include <stdlib.h>

static int baseline_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

double bench_median(double *v, size_t n)
{
    qsort(v, n, sizeof(*v), baseline_cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
__attribute__((target_clones("avx2", "default")))
#endif
uint64_t __attribute__((noinline)) bench_plain_read(const uint64_t *restrict p, size_t n)
{
    uint64_t s = 0;

    for (size_t i = 0; i < n; i++)
        s += p[i];
    return s;
}
