#ifndef SLUICE_BENCH_BASELINE_H
#define SLUICE_BENCH_BASELINE_H
/*
 * What every benchmark needs to report a figure as a ratio against a
 * baseline measured in the same run: the median of a set of samples, and
 * the plainest possible read of memory.
 */
#include <stddef.h>
#include <stdint.h>

/* The median of v[0..n) (n >= 1); sorts v in place. */
double bench_median(double *v, size_t n);

/*
 * Sums n 64-bit words at p: the memory-read baseline. Built with the same
 * -O3 and AVX2 clone as the scan kernels, so a scan's ratio against it
 * compares like with like and is never flattered by a slow baseline.
 */
uint64_t bench_plain_read(const uint64_t *restrict p, size_t n);

#endif
