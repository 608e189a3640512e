/*
 * clock: monotonic and wall time in integer units. Inline because these sit
 * on the query path and the sampler's 100 ms tick.
 *
 * Deadlines and durations use clock_mono_ns(); clock_wall_ms() is only for
 * timestamps that are stored or shown. Tests can replace either clock for
 * the whole process with clock_set_source() (e.g. step the wall clock back
 * an hour); the cost when none is set is one load and a branch.
 */
#ifndef SLUICE_CLOCK_H
#define SLUICE_CLOCK_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/*
 * A replacement clock. A NULL member keeps the real clock. The functions
 * may be called from any thread.
 */
struct clock_source {
    uint64_t (*mono_ns)(void);
    uint64_t (*wall_ms)(void);
};

/* The source in effect, or NULL for the real clocks. Read through the inlines below. */
extern const struct clock_source *volatile clock_source_current;

/*
 * Test hook: every later clock_mono_ns()/clock_wall_ms() in the process goes
 * to src (NULL restores the real clocks). src must outlive its use. Set it
 * before the threads that read the clock start, or make its functions
 * thread-safe; production code never calls this.
 */
void clock_set_source(const struct clock_source *src);

/* The real CLOCK_MONOTONIC in ns, whatever the source (for a source that offsets it). */
static inline uint64_t clock_real_mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The real CLOCK_REALTIME in ms since the epoch, whatever the source. */
static inline uint64_t clock_real_wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000ull + (uint64_t)ts.tv_nsec / 1000000ull;
}

/* Nanoseconds on CLOCK_MONOTONIC: for durations and deadlines. */
static inline uint64_t clock_mono_ns(void)
{
    const struct clock_source *src = clock_source_current;

    if (src != NULL && src->mono_ns != NULL)
        return src->mono_ns();
    return clock_real_mono_ns();
}

/* Milliseconds since the Unix epoch: for timestamps stored or shown to people. */
static inline uint64_t clock_wall_ms(void)
{
    const struct clock_source *src = clock_source_current;

    if (src != NULL && src->wall_ms != NULL)
        return src->wall_ms();
    return clock_real_wall_ms();
}

#endif
