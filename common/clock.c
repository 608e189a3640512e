/*
 * clock: the one injection point for time. The clocks themselves are inline
 * in clock.h; this file holds the process-wide source that tests may set.
 * Expected load: none (set once per test).
 */
#include "clock.h"

const struct clock_source *volatile clock_source_current;

void clock_set_source(const struct clock_source *src)
{
    clock_source_current = src;
}
