/*
 * fault: a SIGBUS on mapped segment data becomes an error of that segment,
 * not the death of the node. A file-backed mapping faults when its file is
 * truncated underneath it, when a page cannot be read from disk (EIO), or on
 * an uncorrectable memory error; the kernel then sends SIGBUS to the thread
 * that touched the page, whose default action kills the whole process.
 *
 * A thread that reads a mapping first pushes a guard naming the mapping and
 * a recovery point (sigsetjmp). The process-wide handler looks only at the
 * faulting thread's own guards (thread-local, so no lock and nothing that
 * is not async-signal-safe): when si_addr lies inside one of them it unwinds
 * to that guard's recovery point with siglongjmp; otherwise it hands the
 * signal to the handler installed before it, or restores the default action
 * so that the fault kills the process as it would have without us.
 *
 * Use, in one function (the frame of sigsetjmp must still be live):
 *
 *     struct fault_guard g;
 *     fault_guard_push(&g, base, len);
 *     if (sigsetjmp(g.env, 1) == 0) {
 *         ...read [base, base + len)...
 *         fault_guard_pop(&g);
 *     } else {
 *         ...g.addr faulted; the guard is already popped...
 *     }
 *
 * Locals changed between sigsetjmp and the fault must be volatile to be
 * read after it (C11 7.13.2.1); keep the guarded work in a called function.
 * Memory allocated inside the guarded region must be reachable from outside
 * it (a struct field, not a local), or it leaks on a fault.
 */
#ifndef SLUICE_FAULT_H
#define SLUICE_FAULT_H

#include <setjmp.h>
#include <stddef.h>

struct fault_guard {
    sigjmp_buf env;
    const char *lo, *hi;      /* the guarded bytes, [lo, hi) */
    void *addr;               /* where it faulted (after a fault) */
    int code;                 /* si_code of the fault (BUS_ADRERR, ...) */
    struct fault_guard *prev; /* the thread's enclosing guard */
};

/*
 * Installs the SIGBUS handler, once per process (later calls do nothing).
 * Returns 0, or a negative errno from sigaction.
 */
int fault_init(void);

/* Makes g the calling thread's innermost guard, over [base, base + len). */
void fault_guard_push(struct fault_guard *g, const void *base, size_t len);

/* Removes g, which must be the calling thread's innermost guard. */
void fault_guard_pop(struct fault_guard *g);

/* Faults recovered so far, by every thread. */
unsigned long fault_recovered_total(void);

#endif
