/*
 * run.c - schedulers as objects: made on any thread, run or stepped on one
 * thread they are then bound to, freed; weave_run is new + run + free; and
 * weave_get_stats, which asks each module for its own figures.
 *
 * A scheduler's life: NEW (made, not bound; posts queue in its inbox),
 * then RUNNING (weave_sched_run) or STEPPED (weave_sched_step, until
 * freed), then DONE. Binding is what must happen on the thread itself:
 * SIGPIPE (and the dump signal) blocked, the thread's own context and the
 * template of new contexts taken, the introspection options started, the
 * fatal-signal handlers armed. Its end undoes them in reverse.
 *
 * The end of a run: once every task has ended, the inbox is closed, so that
 * each post either was taken or is refused (ESRCH); what it held is run
 * (posted tasks start cancelled, since the scheduler is shutting down), and
 * the loop goes on until those have ended too. Then the modules end in
 * reverse: the signals tasks waited for (signal.c), the pool (its threads
 * may still be finishing calls), the fd table, the core.
 */
#include "run/run.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "core/task.h"
#include "diag/introspect.h"
#include "diag/overflow.h"
#include "io/fd.h"
#include "io/offload.h"
#include "io/proc.h"
#include "io/signal.h"
#include "io/uring.h"

/* Every flag weave_run_opts.flags may carry; others are EINVAL. */
#define RUN_FLAGS                                                                                  \
    (WEAVE_NO_OVERFLOW_HANDLER | WEAVE_NO_DEADLOCK_DUMP | WEAVE_VIRTUAL_CLOCK | WEAVE_NO_IO_URING)

/* The scheduler bound to this thread (running, or stepped), or NULL. */
static _Thread_local struct weave_sched *bound __attribute__((tls_model("initial-exec")));

static int check_opts(const weave_run_opts *o)
{
    if ((o->flags & ~(unsigned)RUN_FLAGS) ||
        (o->default_stack_size && weave__check_stack_size(o->default_stack_size) < 0) ||
        weave__check_guard_size(o->guard_size) < 0 ||
        !weave__all_zero(o->reserved, sizeof(o->reserved)) ||
        o->offload_threads > WEAVE_OFFLOAD_MAX || weave__introspect_check(o) < 0)
        return -EINVAL;
    return 0;
}

static void destroy(struct weave_sched *w)
{
    weave__procs_term(&w->core);
    weave__uring_term(&w->core);
    weave__offload_term(&w->core);
    weave__fdtab_term(&w->core);
    weave__sched_term(&w->core);
    free(w);
}

/* A new scheduler with its modules, unbound, or NULL with *err set. */
static struct weave_sched *make(const weave_run_opts *opts, bool reachable, int *err)
{
    struct weave_sched *w = calloc(1, sizeof(*w));
    struct weave__sched *s;

    if (!w) {
        *err = -ENOMEM;
        return NULL;
    }
    s = &w->core;
    *err = weave__sched_init(s, opts->default_stack_size ? opts->default_stack_size
                                                         : WEAVE_STACK_DEFAULT);
    if (*err < 0) {
        free(w);
        return NULL;
    }
    w->opts = *opts;
    s->reachable = reachable;
    s->vclock = (opts->flags & WEAVE_VIRTUAL_CLOCK) != 0;
    s->vnow = weave__clock_real_ns();
    if (opts->flags & WEAVE_NO_IO_URING)
        s->file_io_path = WEAVE_FILE_IO_POOL; /* else decided by the first file call */
    /* Every stack gets the scheduler's guard unless its task asks for
     * another. Rounding cannot overflow: the size is at most GUARD_MAX. */
    weave__stack_set_guard(
        &s->stacks,
        weave__stack_round(&s->stacks, opts->guard_size ? opts->guard_size : WEAVE_GUARD_DEFAULT));
    if ((*err = weave__fdtab_init(s)) < 0 ||
        (*err = weave__offload_init(s, opts->offload_threads ? opts->offload_threads
                                                             : WEAVE_OFFLOAD_DEFAULT)) < 0) {
        destroy(w);
        return NULL;
    }
    return w;
}

/* Bind w to the calling thread, whose state it takes (state: RUNNING or
 * STEPPED, from NEW). 0, or -EBUSY (this thread has a scheduler, or w is
 * bound elsewhere), -EINVAL (w is DONE), or what binding failed with. */
static int bind_to_thread(struct weave_sched *w, int state)
{
    int expected = WEAVE__SCHED_NEW, r;

    if (bound || weave__tls)
        return -EBUSY;
    if (!__atomic_compare_exchange_n(&w->state, &expected, state, false, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE))
        return expected == WEAVE__SCHED_DONE ? -EINVAL : -EBUSY;
    weave__mask_block(&w->mask, w->opts.dump_signal);
    if ((r = weave__sched_bind(&w->core)) < 0 ||
        (r = weave__introspect_start(&w->core, &w->opts)) < 0) {
        weave__sched_unbind(&w->core); /* if it was bound */
        (void)weave__signal_term(&w->core, &w->mask.tasks);
        weave__mask_restore(&w->mask);
        __atomic_store_n(&w->state, WEAVE__SCHED_NEW, __ATOMIC_RELEASE);
        return r;
    }
    w->overflow = NULL;
    if (!(w->opts.flags & WEAVE_NO_OVERFLOW_HANDLER))
        w->overflow = weave__overflow_thread_begin();
    bound = w;
    return 0;
}

/* Undo bind_to_thread; the scheduler is DONE. Returns the signal that stopped it
 * (weave_cancel_on_signals), or 0. */
static int unbind(struct weave_sched *w)
{
    int stop_signal;

    weave__overflow_thread_end(w->overflow);
    stop_signal = weave__signal_term(&w->core, &w->mask.tasks);
    weave__introspect_stop(&w->core);
    weave__mask_restore(&w->mask);
    weave__sched_unbind(&w->core);
    bound = NULL;
    __atomic_store_n(&w->state, WEAVE__SCHED_DONE, __ATOMIC_RELEASE);
    return stop_signal;
}

/* With every task ended: close the inbox, run what it held, and run the
 * loop again until those tasks have ended too. From then on, posts are
 * refused. */
static void drain(struct weave_sched *w)
{
    struct weave__sched *s = &w->core;
    struct weave__msg *m;

    s->shutting_down = true;
    s->stepping = false;
    while ((m = weave__inbox_close(&s->inbox)) != NULL || s->backlog || s->live_count > 0) {
        struct weave__msg *older = s->backlog; /* taken before the close */

        s->backlog = NULL;
        weave__sched_run_messages(s, older);
        weave__sched_run_messages(s, m);
        if (s->live_count > 0)
            weave__sched_loop(s);
    }
}

int weave_sched_run(weave_sched *w, weave_fn main_fn, void *arg, void **result)
{
    struct weave__sched *s;
    struct weave__task *main_task;
    bool deadlocked;
    int err, stop_signal;

    if (!w || !main_fn)
        return weave__ret(-EINVAL);
    if ((err = bind_to_thread(w, WEAVE__SCHED_RUNNING)) < 0)
        return weave__ret(err);
    s = &w->core;
    weave__tls = s;
    main_task = weave__spawn_main(s, main_fn, arg, &err);
    if (!main_task) {
        drain(w); /* posts made before the run still start, cancelled */
        weave__tls = NULL;
        (void)unbind(w);
        return weave__ret(err);
    }
    weave__sched_loop(s);
    /* Every task has ended; only the records of unjoined ones remain. */
    if (result)
        *result = main_task->result;
    drain(w);
    deadlocked = s->deadlocked;
    weave__tls = NULL;
    stop_signal = unbind(w);
    if (stop_signal)
        return weave__ret(-EINTR);
    return deadlocked ? weave__ret(-EDEADLK) : 0;
}

weave_sched *weave_sched_new(const weave_run_opts *opts)
{
    static const weave_run_opts defaults;
    struct weave_sched *w;
    int err;

    if (!opts)
        opts = &defaults;
    if ((err = check_opts(opts)) < 0) {
        errno = -err;
        return NULL;
    }
    if (!(w = make(opts, true, &err)))
        errno = -err;
    return w;
}

/* Tear down a scheduler that was never bound on a thread of its own: the
 * posts it holds start (cancelled) and end there, so that each can still
 * release what its argument owns. */
static void *drain_elsewhere(void *p)
{
    struct weave_sched *w = p;

    if (bind_to_thread(w, WEAVE__SCHED_RUNNING) == 0) {
        weave__tls = &w->core;
        drain(w);
        weave__tls = NULL;
        (void)unbind(w);
    }
    return NULL;
}

int weave_sched_free(weave_sched *w)
{
    int state;

    if (!w)
        return weave__ret(-EINVAL);
    state = __atomic_load_n(&w->state, __ATOMIC_ACQUIRE);
    if (state == WEAVE__SCHED_RUNNING || weave__tls == &w->core)
        return weave__ret(-EBUSY); /* running, or called from one of its tasks */
    if (state == WEAVE__SCHED_STEPPED) {
        if (bound != w)
            return weave__ret(-EBUSY); /* its tasks live on another thread */
        weave__tls = &w->core;
        weave__cancel_all(&w->core);
        drain(w);
        weave__tls = NULL;
        (void)unbind(w);
    } else if (state == WEAVE__SCHED_NEW) {
        if (!bound && !weave__tls) {
            (void)drain_elsewhere(w); /* this thread can host it */
        } else {
            pthread_t t;

            if (pthread_create(&t, NULL, drain_elsewhere, w) != 0)
                return weave__ret(-EAGAIN);
            pthread_join(t, NULL);
        }
    }
    destroy(w);
    return 0;
}

weave_sched *weave_sched_self(void)
{
    if (!bound) {
        errno = EPERM;
        return NULL;
    }
    bound->core.reachable = true; /* another thread may post to it now */
    return bound;
}

int weave_sched_fd(weave_sched *w)
{
    if (!w || __atomic_load_n(&w->state, __ATOMIC_ACQUIRE) == WEAVE__SCHED_DONE)
        return weave__ret(-EINVAL);
    return w->core.poller.epfd;
}

int weave_sched_step(weave_sched *w, int64_t *next_ms)
{
    struct weave__sched *s;
    int64_t next;
    int state, err;

    if (!w)
        return weave__ret(-EINVAL);
    state = __atomic_load_n(&w->state, __ATOMIC_ACQUIRE);
    if (state == WEAVE__SCHED_NEW) {
        if ((err = bind_to_thread(w, WEAVE__SCHED_STEPPED)) < 0)
            return weave__ret(err);
        if (w->core.next_id == 0)
            w->core.next_id = 1; /* id 1 is a main task's, and it has none */
    }
    if (state == WEAVE__SCHED_DONE)
        return weave__ret(-EINVAL);
    if (state == WEAVE__SCHED_RUNNING || bound != w || weave__tls)
        return weave__ret(-EBUSY); /* run, or stepped by another thread, or from a task */
    s = &w->core;
    weave__inbox_busy(&s->inbox);
    weave__tls = s;
    weave__sched_step(s);
    weave__tls = NULL;
    /* Always: it also makes a post, or the earliest timer, wake the fd. */
    next = weave__sched_next_ms(s);
    if (next_ms)
        *next_ms = next;
    return s->live_count > INT32_MAX ? INT32_MAX : (int)s->live_count;
}

int weave_run_with(const weave_run_opts *opts, weave_fn main_fn, void *arg, void **result)
{
    static const weave_run_opts defaults;
    struct weave_sched *w;
    int err, r;

    if (!opts)
        opts = &defaults;
    if (!main_fn || check_opts(opts) < 0)
        return weave__ret(-EINVAL);
    if (bound || weave__tls)
        return weave__ret(-EBUSY);
    if (!(w = make(opts, false, &err)))
        return weave__ret(err);
    r = weave_sched_run(w, main_fn, arg, result);
    err = errno;
    (void)weave_sched_free(w);
    errno = err;
    return r;
}

int weave_run(weave_fn main_fn, void *arg, void **result)
{
    return weave_run_with(NULL, main_fn, arg, result);
}

struct weave_sched *weave__run_bound(void)
{
    return bound;
}

struct weave_sched *weave__run_of(struct weave__sched *s)
{
    return weave__container_of(s, struct weave_sched, core);
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
    weave__uring_stats(s, st);
    return 0;
}

const char *weave_context_backend(void)
{
    return weave__ctx_backend();
}
