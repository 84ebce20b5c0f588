/*
 * run.c - weave_run: making a scheduler, running it, tearing it down; and
 * weave_get_stats, which asks each module for its own figures.
 *
 * A run: block SIGPIPE (so that writes to a closed peer fail with EPIPE),
 * make the scheduler and its modules (core, fd table, offload pool), spawn
 * main, run until every task has ended, then end the modules in reverse:
 * the pool first (its threads may still be finishing calls), then the fd
 * table, then the core.
 */
#include "internal.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

/* SIGPIPE as weave_run found it. */
struct sigpipe_state {
    sigset_t set;        /* just SIGPIPE */
    sigset_t old_mask;   /* the thread's mask before weave_run */
    bool pending_before; /* a SIGPIPE was pending already: not ours */
};

static bool sigpipe_pending(void)
{
    sigset_t pending;

    return sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE);
}

/* Block SIGPIPE before the context template is taken, so that every task
 * runs with it blocked: a write to a closed pipe or socket then fails with
 * EPIPE instead of killing the process. */
static void block_sigpipe(struct sigpipe_state *ps)
{
    sigemptyset(&ps->set);
    sigaddset(&ps->set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &ps->set, &ps->old_mask);
    ps->pending_before = sigpipe_pending();
}

/* Drop a SIGPIPE that a write left pending (it was reported as EPIPE
 * already), then unblock SIGPIPE unless the caller had it blocked. */
static void restore_sigpipe(const struct sigpipe_state *ps)
{
    if (!ps->pending_before && sigpipe_pending()) {
        struct timespec zero = {0, 0};
        (void)sigtimedwait(&ps->set, NULL, &zero);
    }
    if (!sigismember(&ps->old_mask, SIGPIPE))
        pthread_sigmask(SIG_UNBLOCK, &ps->set, NULL);
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
    struct sigpipe_state sigpipe;
    int err;
    bool deadlocked;

    if (!opts)
        opts = &defaults;
    if (!main_fn || (opts->flags & ~(unsigned)WEAVE_NO_OVERFLOW_HANDLER) ||
        (opts->default_stack_size && weave__check_stack_size(opts->default_stack_size) < 0) ||
        weave__check_guard_size(opts->guard_size) < 0 || opts->offload_threads > WEAVE_OFFLOAD_MAX)
        return weave__ret(-EINVAL);
    if (weave__tls)
        return weave__ret(-EBUSY);
    block_sigpipe(&sigpipe);
    if (!(s = sched_new(opts, &err))) {
        restore_sigpipe(&sigpipe);
        return weave__ret(err);
    }
    weave__tls = s;
    main_task = weave__spawn_main(s, main_fn, arg, &err);
    if (!main_task) {
        weave__tls = NULL;
        sched_free(s);
        restore_sigpipe(&sigpipe);
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
    weave__tls = NULL;
    sched_free(s);
    restore_sigpipe(&sigpipe);
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
    st->guard_mode = s->stacks.guard_mode;
    weave__fdtab_stats(s, st);
    weave__offload_stats(s, st);
    return 0;
}

const char *weave_context_backend(void)
{
    return weave__ctx_backend();
}
