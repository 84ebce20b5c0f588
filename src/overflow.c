/*
 * overflow.c - naming the task whose stack overflowed.
 *
 * A task that runs off the bottom of its stack touches the guard page below
 * it and gets SIGSEGV. The handler runs on an alternate signal stack (the
 * task's own has no room left), checks whether the faulting address lies in
 * the guard page of the task running on this thread, and if so writes
 *
 *     weave: stack overflow in task 7 (parser): fault at 0x... in guard
 *     page [0x..., 0x...) below its 131072-byte stack
 *
 * to stderr and aborts: carrying on after an overflow is not safe in C
 * (locks may be held, invariants half-updated). Any other fault is passed
 * to the handler installed before weave's, or to the default action.
 *
 * The handler is process-wide and installed once, by the first weave_run
 * that asks for it; each thread running a scheduler gets an alternate
 * signal stack unless it has one already. Under AddressSanitizer nothing is
 * installed: ASan reports stack overflows itself.
 */
#include "internal.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifdef WEAVE_ASAN

void *weave__overflow_thread_begin(void)
{
    return NULL;
}

void weave__overflow_thread_end(void *token)
{
    (void)token;
}

#else

#define ALTSTACK_BYTES ((size_t)64 * 1024)

static struct sigaction previous; /* SIGSEGV's action before weave's */
static pthread_once_t installed = PTHREAD_ONCE_INIT;

/* Async-signal-safe formatting into buf; returns the new end. */
static char *put_str(char *p, char *end, const char *s)
{
    while (*s && p < end)
        *p++ = *s++;
    return p;
}

static char *put_num(char *p, char *end, uint64_t v, unsigned base)
{
    char tmp[24];
    size_t n = 0;

    do {
        tmp[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    if (base == 16)
        p = put_str(p, end, "0x");
    while (n && p < end)
        *p++ = tmp[--n];
    return p;
}

static void report(const struct weave__task *t, const char *addr, const char *glo, const char *ghi)
{
    char buf[512], *p = buf, *end = buf + sizeof(buf) - 1;

    p = put_str(p, end, "weave: stack overflow in task ");
    p = put_num(p, end, t->id, 10);
    p = put_str(p, end, " (");
    if (t->name[0]) {
        p = put_str(p, end, t->name);
    } else {
        p = put_str(p, end, "task-");
        p = put_num(p, end, t->id, 10);
    }
    p = put_str(p, end, "): fault at ");
    p = put_num(p, end, (uintptr_t)addr, 16);
    p = put_str(p, end, " in guard page [");
    p = put_num(p, end, (uintptr_t)glo, 16);
    p = put_str(p, end, ", ");
    p = put_num(p, end, (uintptr_t)ghi, 16);
    p = put_str(p, end, ") below its ");
    p = put_num(p, end, t->stack.size, 10);
    p = put_str(p, end, "-byte stack\n");
    (void)!write(STDERR_FILENO, buf, (size_t)(p - buf));
}

static void on_segv(int sig, siginfo_t *si, void *uctx)
{
    struct weave__sched *s = weave__tls;
    struct weave__task *t = s ? s->current : NULL;

    if (t && t->state != WEAVE__DONE) {
        const char *lo = t->stack.lo, *glo = lo - s->stacks.guard;
        const char *addr = si->si_addr;

        if (addr >= glo && addr < lo) {
            report(t, addr, glo, lo);
            abort();
        }
    }
    if (previous.sa_flags & SA_SIGINFO) {
        previous.sa_sigaction(sig, si, uctx);
    } else if (previous.sa_handler == SIG_DFL || previous.sa_handler == SIG_IGN) {
        /* Restore the default action; the faulting instruction runs again
         * and the process dies of SIGSEGV as it would have without us. */
        struct sigaction dfl;
        memset(&dfl, 0, sizeof(dfl));
        dfl.sa_handler = SIG_DFL;
        sigaction(sig, &dfl, NULL);
    } else {
        previous.sa_handler(sig);
    }
}

static void install(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &previous);
}

void *weave__overflow_thread_begin(void)
{
    stack_t cur, ss;
    void *mem;

    pthread_once(&installed, install);
    if (sigaltstack(NULL, &cur) == 0 && !(cur.ss_flags & SS_DISABLE))
        return NULL; /* the thread has an alternate stack already */
    mem = mmap(NULL, ALTSTACK_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED)
        return NULL; /* overflows then die of SIGSEGV, unnamed but safe */
    ss.ss_sp = mem;
    ss.ss_size = ALTSTACK_BYTES;
    ss.ss_flags = 0;
    if (sigaltstack(&ss, NULL) != 0) {
        munmap(mem, ALTSTACK_BYTES);
        return NULL;
    }
    return mem;
}

void weave__overflow_thread_end(void *token)
{
    stack_t ss;

    if (!token)
        return;
    memset(&ss, 0, sizeof(ss));
    ss.ss_flags = SS_DISABLE;
    sigaltstack(&ss, NULL);
    munmap(token, ALTSTACK_BYTES);
}

#endif /* WEAVE_ASAN */
