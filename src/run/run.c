/*
 * run.c - weave_run: making a scheduler, running it, tearing it down; and
 * weave_get_stats, which asks each module for its own figures.
 *
 * A run: block SIGPIPE (so that writes to a closed peer fail with EPIPE),
 * make the scheduler and its modules (core, fd table, offload pool), spawn
 * main, run until every task has ended, then end the modules in reverse:
 * the signals tasks waited for (signal.c), the pool (its threads may still
 * be finishing calls), then the fd table, then the core. Last, the thread's
 * signal mask is put back as weave_run found it.
 */
#include "base/common.h"
#include "core/task.h"
#include "diag/introspect.h"
#include "diag/overflow.h"
#include "io/fd.h"
#include "io/offload.h"
#include "io/signal.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

/* Every flag weave_run_opts.flags may carry; others are EINVAL. */
#define RUN_FLAGS (WEAVE_NO_OVERFLOW_HANDLER | WEAVE_NO_DEADLOCK_DUMP | WEAVE_VIRTUAL_CLOCK)

/* The signals weave_run blocks on its thread, as it found them: SIGPIPE,
 * and the dump signal if there is one; and those that tasks blocked through
 * signal.c during the run. */
struct sigmask_state {
    int sig[2];             /* the signals; 0 = none */
    sigset_t old_mask;      /* the thread's mask before weave_run */
    bool pending_before[2]; /* pending already: not ours to take */
    sigset_t tasks;         /* blocked for weave_signal_wait and
                               weave_cancel_on_signals */
};

static bool sig_pending(int sig)
{
    sigset_t pending;

    return sigpending(&pending) == 0 && sigismember(&pending, sig);
}

/* Block SIGPIPE (and the dump signal) before the context template is
 * taken, so that every task runs with them blocked: a write to a closed
 * pipe or socket then fails with EPIPE instead of killing the process, and
 * the dump signal is read through a signalfd only. */
static void block_signals(struct sigmask_state *ms, int dump_signal)
{
    sigset_t set;

    ms->sig[0] = SIGPIPE;
    ms->sig[1] = dump_signal;
    sigemptyset(&set);
    for (int i = 0; i < 2; i++)
        if (ms->sig[i])
            sigaddset(&set, ms->sig[i]);
    pthread_sigmask(SIG_BLOCK, &set, &ms->old_mask);
    for (int i = 0; i < 2; i++)
        ms->pending_before[i] = ms->sig[i] && sig_pending(ms->sig[i]);
    memset(&ms->tasks, 0, sizeof(ms->tasks)); /* sigorset reads all of it */
    sigemptyset(&ms->tasks);
}

/* Take every pending instance of sig (one may be pending for the thread
 * and one for the process). */
static void take_all(int sig)
{
    static const struct timespec zero = {0, 0};
    sigset_t one;

    sigemptyset(&one);
    sigaddset(&one, sig);
    while (sig_pending(sig) && sigtimedwait(&one, NULL, &zero) == sig)
        ;
}

/* Take what the run left pending (a SIGPIPE was reported as EPIPE already;
 * a dump signal that came too late to be read would otherwise kill the
 * process), then unblock each signal unless the caller had it blocked. */
static void restore_signals(const struct sigmask_state *ms)
{
    for (int i = 0; i < 2; i++) {
        sigset_t one;
        struct timespec zero = {0, 0};

        if (!ms->sig[i])
            continue;
        sigemptyset(&one);
        sigaddset(&one, ms->sig[i]);
        if (!ms->pending_before[i] && sig_pending(ms->sig[i]))
            (void)sigtimedwait(&one, NULL, &zero);
        if (!sigismember(&ms->old_mask, ms->sig[i]))
            pthread_sigmask(SIG_UNBLOCK, &one, NULL);
    }
    /* A signal tasks waited for that came after the last wait belonged to
     * the run: it must not act now (a late SIGINT killing a program that
     * has shut down). One the caller had blocked stays as it is. */
    for (int sig = 1; sig < NSIG; sig++) {
        sigset_t one;

        if (sigismember(&ms->tasks, sig) != 1 || sigismember(&ms->old_mask, sig) == 1)
            continue;
        take_all(sig);
        sigemptyset(&one);
        sigaddset(&one, sig);
        pthread_sigmask(SIG_UNBLOCK, &one, NULL);
    }
}

static void sched_free(struct weave__sched *s)
{
    weave__offload_term(s);
    weave__fdtab_term(s);
    weave__sched_term(s);
    free(s);
}

/* A new scheduler with its modules, or NULL with *err set. */
static struct weave__sched *sched_new(const weave_run_opts *opts, int *err)
{
    struct weave__sched *s = malloc(sizeof(*s));

    if (!s) {
        *err = -ENOMEM;
        return NULL;
    }
    *err = weave__sched_init(s, opts->default_stack_size ? opts->default_stack_size
                                                         : WEAVE_STACK_DEFAULT);
    if (*err < 0) {
        free(s);
        return NULL;
    }
    s->vclock = (opts->flags & WEAVE_VIRTUAL_CLOCK) != 0;
    s->vnow = weave__clock_real_ns();
    /* Every stack gets the scheduler's guard unless its task asks for
     * another. Rounding cannot overflow: the size is at most GUARD_MAX. */
    weave__stack_set_guard(
        &s->stacks,
        weave__stack_round(&s->stacks, opts->guard_size ? opts->guard_size : WEAVE_GUARD_DEFAULT));
    if ((*err = weave__fdtab_init(s)) < 0 ||
        (*err = weave__offload_init(s, opts->offload_threads ? opts->offload_threads
                                                             : WEAVE_OFFLOAD_DEFAULT)) < 0) {
        sched_free(s);
        return NULL;
    }
    return s;
}

int weave_run_with(const weave_run_opts *opts, weave_fn main_fn, void *arg, void **result)
{
    static const weave_run_opts defaults;
    struct weave__sched *s = NULL;
    struct weave__task *main_task;
    void *overflow = NULL;
    struct sigmask_state sigmask;
    int err, stop_signal;
    bool deadlocked;

    if (!opts)
        opts = &defaults;
    if (!main_fn || (opts->flags & ~(unsigned)RUN_FLAGS) ||
        (opts->default_stack_size && weave__check_stack_size(opts->default_stack_size) < 0) ||
        weave__check_guard_size(opts->guard_size) < 0 ||
        !weave__all_zero(opts->reserved, sizeof(opts->reserved)) ||
        opts->offload_threads > WEAVE_OFFLOAD_MAX || weave__introspect_check(opts) < 0)
        return weave__ret(-EINVAL);
    if (weave__tls)
        return weave__ret(-EBUSY);
    block_signals(&sigmask, opts->dump_signal);
    if (!(s = sched_new(opts, &err))) {
        restore_signals(&sigmask);
        return weave__ret(err);
    }
    if ((err = weave__introspect_start(s, opts)) < 0) {
        (void)weave__signal_term(s, &sigmask.tasks);
        sched_free(s);
        restore_signals(&sigmask);
        return weave__ret(err);
    }
    weave__tls = s;
    main_task = weave__spawn_main(s, main_fn, arg, &err);
    if (!main_task) {
        weave__tls = NULL;
        weave__introspect_stop(s);
        (void)weave__signal_term(s, &sigmask.tasks);
        sched_free(s);
        restore_signals(&sigmask);
        return weave__ret(err);
    }
    if (!(opts->flags & WEAVE_NO_OVERFLOW_HANDLER))
        overflow = weave__overflow_thread_begin();

    weave__sched_loop(s);
    /* Every task has ended; only the records of unjoined ones remain. */

    weave__overflow_thread_end(overflow);
    if (result)
        *result = main_task->result;
    deadlocked = s->deadlocked;
    stop_signal = weave__signal_term(s, &sigmask.tasks);
    weave__introspect_stop(s);
    weave__tls = NULL;
    sched_free(s);
    restore_signals(&sigmask);
    if (stop_signal)
        return weave__ret(-EINTR);
    return deadlocked ? weave__ret(-EDEADLK) : 0;
}

int weave_run(weave_fn main_fn, void *arg, void **result)
{
    return weave_run_with(NULL, main_fn, arg, result);
}

int weave_get_stats(weave_stats *st)
{
    struct weave__sched *s = weave__tls;

    if (!st)
        return weave__ret(-EINVAL);
    if (!s)
        return weave__ret(-EPERM);
    memset(st, 0, sizeof(*st));
    st->tasks_live = s->live_count;
    st->tasks_zombie = s->zombie_count;
    st->tasks_spawned = s->spawned;
    st->timers_pending = s->timers.len;
    st->stacks_in_use = s->stacks.in_use;
    st->stacks_cached = s->stacks.cached;
    st->stack_bytes_mapped = s->stacks.mapped_bytes;
    st->guard_mode = (weave_guard_mode)s->stacks.guard_mode;
    weave__fdtab_stats(s, st);
    weave__offload_stats(s, st);
    return 0;
}

const char *weave_context_backend(void)
{
    return weave__ctx_backend();
}
