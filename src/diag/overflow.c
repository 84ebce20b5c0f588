/*
 * overflow.c - naming the task that a fatal signal kills, and the task
 * whose stack overflowed.
 *
 * A task that runs off the bottom of its stack touches the guard region
 * below it and gets SIGSEGV. The handler runs on an alternate signal stack
 * (the task's own has no room left). It calls the fault an overflow of the
 * task running on this thread when the faulting address lies in that
 * task's guard, or when the interrupted stack pointer has left the task's
 * stack downwards (a frame larger than the guard jumped over it, and the
 * fault hit whatever lay below). It then writes
 *
 *     weave: stack overflow in task 7 (parser): fault at 0x... in the
 *     262144-byte guard [0x..., 0x...) below its 135168-byte stack
 *
 * to stderr and aborts (after the handler installed before weave's, if any,
 * has had its say): carrying on after an overflow is not safe in C (locks
 * may be held, invariants half-updated).
 *
 * Any other SIGSEGV, and SIGBUS, SIGILL, SIGFPE and SIGABRT, that hits a
 * task is named in one line:
 *
 *     weave: fatal signal SIGSEGV in task 7 (parser): fault at 0x0
 *     (address not mapped; a NULL pointer?)
 *
 * and then passed on: to the handler installed before weave's if there is
 * one, else to the default action, so that the process dies of the same
 * signal (and dumps core) as it would have without weave. A signal that
 * does not hit a task (weave_run's own stack, a thread without a
 * scheduler, a scheduler run with WEAVE_NO_OVERFLOW_HANDLER) is passed on
 * without a word; so is every signal after the first line, so that a dying
 * process says its cause once.
 *
 * Everything a handler calls is async-signal-safe: write(2), sigaction,
 * raise, getpid, abort, and formatting into a buffer on its own stack.
 *
 * The handlers are process-wide and installed once, by the first weave_run
 * that asks for them; each thread running such a scheduler gets an
 * alternate signal stack unless it has one already. Under AddressSanitizer
 * they are installed too, in front of ASan's own, which then reports the
 * fault in its words.
 */
#include "core/task.h"
#include "diag/overflow.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#define ALTSTACK_BYTES ((size_t)64 * 1024)
#define NFATAL         5

/* The signals named, and their actions before weave's (same order). */
static const int fatal_signals[NFATAL] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
static const char *const fatal_names[NFATAL] = {"SIGSEGV", "SIGBUS", "SIGILL", "SIGFPE", "SIGABRT"};
static struct sigaction previous[NFATAL];
static pthread_once_t installed = PTHREAD_ONCE_INIT;

/* A line was written: the process is dying, and says so once. */
static volatile sig_atomic_t reported;

/* This thread runs a scheduler that wants its fatal signals named.
 * initial-exec: a signal handler may read it without allocating. */
static _Thread_local int armed __attribute__((tls_model("initial-exec")));

/* ---- async-signal-safe formatting ------------------------------------------ */

struct line {
    char buf[512];
    char *p;
};

static void put_str(struct line *l, const char *s)
{
    char *end = l->buf + sizeof(l->buf) - 1;

    while (*s && l->p < end)
        *l->p++ = *s++;
}

static void put_num(struct line *l, uint64_t v, unsigned base)
{
    char tmp[24];
    size_t n = 0;

    do {
        tmp[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    if (base == 16)
        put_str(l, "0x");
    while (n) {
        char one[2] = {tmp[--n], '\0'};
        put_str(l, one);
    }
}

static void put_ptr(struct line *l, const void *p)
{
    put_num(l, (uintptr_t)p, 16);
}

/* "task 7 (parser)"; a task never named gets "task-7", which
 * weave__task_name would make, without writing it into the record. */
static void put_task(struct line *l, const struct weave__task *t)
{
    put_str(l, "task ");
    put_num(l, t->id, 10);
    put_str(l, " (");
    if (t->name[0]) {
        char name[WEAVE_NAME_MAX];
        memcpy(name, t->name, sizeof(name));
        name[WEAVE_NAME_MAX - 1] = '\0';
        put_str(l, name);
    } else {
        put_str(l, "task-");
        put_num(l, t->id, 10);
    }
    put_str(l, ")");
}

static void emit(struct line *l)
{
    put_str(l, "\n");
    if (l->p[-1] != '\n') /* cut short: end the line anyway */
        l->p[-1] = '\n';
    (void)!write(STDERR_FILENO, l->buf, (size_t)(l->p - l->buf));
    reported = 1;
}

/* ---- which task, and what happened ----------------------------------------- */

/* The stack pointer where the signal struck, or NULL if unknown here. */
static const char *interrupted_sp(const void *uctx)
{
    const ucontext_t *uc = uctx;

    if (!uc)
        return NULL;
#if defined(__x86_64__)
    return (const char *)(uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
#elif defined(__aarch64__)
    return (const char *)(uintptr_t)uc->uc_mcontext.sp;
#else
    return NULL;
#endif
}

enum verdict {
    NOT_A_TASK,     /* no task of an armed scheduler was running there */
    IN_TASK,        /* a fault (or a signal sent) while a task ran */
    OVERFLOW_GUARD, /* a fault in the running task's guard */
    OVERFLOW_PAST   /* the task's stack pointer went below its guard */
};

static enum verdict judge(int sig, const siginfo_t *si, const void *uctx,
                          const struct weave__task **tp)
{
    const struct weave__sched *s = weave__tls;
    const struct weave__task *t = s ? s->current : NULL;
    const char *lo, *hi, *glo, *sp, *addr = si->si_addr;

    if (!armed || !t || !t->stack.lo)
        return NOT_A_TASK;
    *tp = t;
    lo = t->stack.lo;
    hi = lo + t->stack.size;
    glo = lo - t->stack.guard;
    sp = interrupted_sp(uctx);
    if (sig == SIGSEGV && si->si_code > 0) {
        if (addr >= glo && addr < lo)
            return OVERFLOW_GUARD;
        /* Past the guard: a frame jumped it. The bound keeps a fault on some
         * unrelated stack that happens to lie lower from being taken for
         * one (no frame is larger than the largest stack). */
        if (sp && sp < glo && (size_t)(glo - sp) <= WEAVE_STACK_MAX)
            return OVERFLOW_PAST;
    }
    /* Without a stack pointer to check, trust current; with one, the task
     * must be running on its own stack (not on a signal stack, not in the
     * middle of a switch on weave_run's). */
    if (!sp || (sp >= glo && sp < hi))
        return IN_TASK;
    return NOT_A_TASK;
}

static const char *code_text(int sig, int code)
{
    switch (sig) {
    case SIGSEGV:
        return code == SEGV_MAPERR   ? "address not mapped"
               : code == SEGV_ACCERR ? "access not permitted"
                                     : NULL;
    case SIGBUS:
        return code == BUS_ADRERR   ? "no such memory; a file mapped past its end?"
               : code == BUS_ADRALN ? "misaligned access"
               : code == BUS_OBJERR ? "hardware error"
                                    : NULL;
    case SIGILL:
        return code == ILL_ILLOPC   ? "illegal opcode"
               : code == ILL_ILLOPN ? "illegal operand"
               : code == ILL_PRVOPC ? "privileged opcode"
                                    : NULL;
    case SIGFPE:
        return code == FPE_INTDIV   ? "integer divide by zero"
               : code == FPE_INTOVF ? "integer overflow"
               : code == FPE_FLTDIV ? "floating-point divide by zero"
                                    : NULL;
    default:
        return NULL;
    }
}

static void report_overflow(enum verdict v, const struct weave__task *t, const siginfo_t *si,
                            const void *uctx)
{
    struct line l = {.p = l.buf};
    const char *lo = t->stack.lo;

    put_str(&l, "weave: stack overflow in ");
    put_task(&l, t);
    if (v == OVERFLOW_GUARD) {
        put_str(&l, ": fault at ");
        put_ptr(&l, si->si_addr);
        put_str(&l, " in the ");
        put_num(&l, t->stack.guard, 10);
        put_str(&l, "-byte guard [");
        put_ptr(&l, lo - t->stack.guard);
        put_str(&l, ", ");
        put_ptr(&l, lo);
        put_str(&l, ") below its ");
        put_num(&l, t->stack.size, 10);
        put_str(&l, "-byte stack");
    } else {
        const char *sp = interrupted_sp(uctx);
        put_str(&l, ": stack pointer ");
        put_ptr(&l, sp);
        put_str(&l, " is ");
        put_num(&l, (uint64_t)(lo - sp), 10);
        put_str(&l, " bytes below its ");
        put_num(&l, t->stack.size, 10);
        put_str(&l, "-byte stack, past the ");
        put_num(&l, t->stack.guard, 10);
        put_str(&l, "-byte guard (a frame larger than the guard); fault at ");
        put_ptr(&l, si->si_addr);
    }
    emit(&l);
}

static void report_signal(int idx, const struct weave__task *t, const siginfo_t *si)
{
    struct line l = {.p = l.buf};
    int sig = fatal_signals[idx];
    const char *what = si->si_code > 0 ? code_text(sig, si->si_code) : NULL;

    put_str(&l, "weave: fatal signal ");
    put_str(&l, fatal_names[idx]);
    put_str(&l, " in ");
    put_task(&l, t);
    if (si->si_code <= 0) {
        /* Sent: kill, raise, abort. */
        if (si->si_pid == getpid()) {
            put_str(&l, ": raised by the process itself");
        } else {
            put_str(&l, ": sent by pid ");
            put_num(&l, (uint64_t)si->si_pid, 10);
        }
    } else if (sig == SIGSEGV || sig == SIGBUS) {
        put_str(&l, ": fault at ");
        put_ptr(&l, si->si_addr);
        if (what) {
            put_str(&l, " (");
            put_str(&l, what);
            if (sig == SIGSEGV && (uintptr_t)si->si_addr < 4096)
                put_str(&l, "; a NULL pointer?");
            put_str(&l, ")");
        }
    } else {
        put_str(&l, ": ");
        if (what) {
            put_str(&l, what);
            put_str(&l, " ");
        }
        put_str(&l, "at instruction ");
        put_ptr(&l, si->si_addr);
    }
    emit(&l);
}

/* ---- passing a signal on --------------------------------------------------- */

static bool is_handler(const struct sigaction *sa)
{
    return (sa->sa_flags & SA_SIGINFO) || (sa->sa_handler != SIG_DFL && sa->sa_handler != SIG_IGN);
}

static void call_previous(int idx, int sig, siginfo_t *si, void *uctx)
{
    if (previous[idx].sa_flags & SA_SIGINFO)
        previous[idx].sa_sigaction(sig, si, uctx);
    else
        previous[idx].sa_handler(sig);
}

/* What would have happened without weave: the previous handler runs, or
 * the default action kills the process. The signal is raised again, a
 * fault too (SA_NODEFER: it is not blocked here), rather than left to
 * strike again when the faulting instruction reruns: under valgrind a
 * rerun SIGBUS dies as SIGSEGV. The core's stack still goes through the
 * signal frame down to the fault. */
static void pass_on(int idx, int sig, siginfo_t *si, void *uctx)
{
    struct sigaction dfl;

    if (is_handler(&previous[idx])) {
        call_previous(idx, sig, si, uctx);
        return;
    }
    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    (void)sigaction(sig, &dfl, NULL);
    (void)raise(sig);
}

static void on_fatal(int sig, siginfo_t *si, void *uctx)
{
    const struct weave__task *t = NULL;
    enum verdict v;
    int idx = 0;

    while (idx < NFATAL - 1 && fatal_signals[idx] != sig)
        idx++;
    /* A sent signal that was ignored before weave stays ignored. (A fault
     * cannot be ignored: the kernel kills the process.) */
    if (si->si_code <= 0 && previous[idx].sa_handler == SIG_IGN &&
        !(previous[idx].sa_flags & SA_SIGINFO))
        return;
    v = reported ? NOT_A_TASK : judge(sig, si, uctx, &t);
    if (v == OVERFLOW_GUARD || v == OVERFLOW_PAST) {
        report_overflow(v, t, si, uctx);
        /* A handler of the user's (or ASan's) sees the overflow too; if it
         * returns, or there is none, nothing can go on. */
        if (is_handler(&previous[idx]))
            call_previous(idx, sig, si, uctx);
        abort();
    }
    if (v == IN_TASK)
        report_signal(idx, t, si);
    pass_on(idx, sig, si, uctx);
}

static void install(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_fatal;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    for (int i = 0; i < NFATAL; i++)
        sigaction(fatal_signals[i], &sa, &previous[i]);
}

void *weave__overflow_thread_begin(void)
{
    stack_t cur, ss;
    void *mem;

    pthread_once(&installed, install);
    armed = 1;
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

    armed = 0;
    if (!token)
        return;
    memset(&ss, 0, sizeof(ss));
    ss.ss_flags = SS_DISABLE;
    sigaltstack(&ss, NULL);
    munmap(token, ALTSTACK_BYTES);
}
