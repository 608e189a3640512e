/*
 * fault: the SIGBUS handler and the per-thread guard stack (see fault.h).
 * The handler touches only the faulting thread's own thread-local stack, a
 * lock-free counter and the saved previous action, so it is safe whatever
 * the interrupted code was doing: the interrupted code is always the guarded
 * read itself, which holds no lock and allocates nothing.
 */
#include "fault.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

/* initial-exec: the handler must reach it without a call that could allocate. */
static __thread struct fault_guard *fault_top __attribute__((tls_model("initial-exec")));
static struct sigaction fault_prev;
static atomic_ulong fault_recovered;
static pthread_once_t fault_once = PTHREAD_ONCE_INIT;
static int fault_init_err;

static void fault_handler(int sig, siginfo_t *si, void *uctx)
{
    const char *addr = si->si_addr;

    for (struct fault_guard *g = fault_top; g != NULL; g = g->prev) {
        if (addr >= g->lo && addr < g->hi) {
            fault_top = g->prev;
            g->addr = si->si_addr;
            g->code = si->si_code;
            atomic_fetch_add_explicit(&fault_recovered, 1, memory_order_relaxed);
            siglongjmp(g->env, 1);
        }
    }
    /* Not ours: whoever handled SIGBUS before us, or the default (death). */
    if ((fault_prev.sa_flags & SA_SIGINFO) && fault_prev.sa_sigaction != NULL) {
        fault_prev.sa_sigaction(sig, si, uctx);
        return;
    }
    if (fault_prev.sa_handler != SIG_DFL && fault_prev.sa_handler != SIG_IGN &&
        fault_prev.sa_handler != NULL) {
        fault_prev.sa_handler(sig);
        return;
    }
    /* Returning re-executes the faulting access, which now kills. */
    {
        struct sigaction dfl;

        memset(&dfl, 0, sizeof(dfl));
        dfl.sa_handler = SIG_DFL;
        sigemptyset(&dfl.sa_mask);
        sigaction(sig, &dfl, NULL);
    }
}

static void fault_install(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = fault_handler;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGBUS, &sa, &fault_prev) < 0)
        fault_init_err = -errno;
}

int fault_init(void)
{
    pthread_once(&fault_once, fault_install);
    return fault_init_err;
}

void fault_guard_push(struct fault_guard *g, const void *base, size_t len)
{
    g->lo = base;
    g->hi = (const char *)base + len;
    g->addr = NULL;
    g->code = 0;
    g->prev = fault_top;
    /* The handler must see a complete guard: no reordering past this. */
    atomic_signal_fence(memory_order_seq_cst);
    fault_top = g;
    atomic_signal_fence(memory_order_seq_cst);
}

void fault_guard_pop(struct fault_guard *g)
{
    atomic_signal_fence(memory_order_seq_cst);
    fault_top = g->prev;
    atomic_signal_fence(memory_order_seq_cst);
}

unsigned long fault_recovered_total(void)
{
    return atomic_load_explicit(&fault_recovered, memory_order_relaxed);
}
