/*
 * post.c - work handed to a scheduler from any thread: weave_post (a new
 * detached task) and weave_call (a task whose result the caller waits for).
 *
 * Both travel as messages through the scheduler's inbox (base/inbox.h),
 * which either takes a message or refuses it (ESRCH, once the scheduler
 * has stopped); the message runs on the scheduler's thread, in its poll
 * step, and spawns the task there.
 *
 * A call's record is shared by two threads, so it lives on the heap with
 * a count of references: the caller's; the scheduler's, held from the
 * start message until the task has ended and the caller was told; and
 * one for a stop message in flight (the caller stopped waiting, so the
 * task is to be cancelled). Whoever drops the last frees it. The caller is
 * told by a message to its own scheduler's inbox (a task caller), or
 * through a condition variable (a thread with no scheduler).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "core/scope.h"
#include "core/task.h"
#include "core/wait.h"
#include "run/run.h"

/* ---- weave_post ---------------------------------------------------------- */

struct post {
    struct weave__msg msg; /* first */
    weave_fn fn;
    void *arg;
};

static void post_start(struct weave__sched *s, struct weave__msg *m)
{
    struct post *p = (struct post *)m;
    struct weave__task *t;
    int err;

    if (!(t = weave__task_spawn(s, NULL, p->fn, p->arg, &err))) {
        /* No stack now: again at the next turn of the loop. */
        if (weave__inbox_send(&s->inbox, m) == 0)
            return;
        (void)fprintf(stderr, "weave: a posted task could not start while its scheduler shut "
                              "down: out of memory; it never runs\n");
        free(p);
        return;
    }
    t->flags |= WEAVE__DETACHED;
    free(p);
}

int weave_post(weave_sched *w, weave_fn fn, void *arg)
{
    struct post *p;

    if (!w || !fn)
        return weave__ret(-EINVAL);
    if (!(p = malloc(sizeof(*p))))
        return weave__ret(-ENOMEM);
    p->msg.fn = post_start;
    p->fn = fn;
    p->arg = arg;
    if (weave__inbox_send(&w->core.inbox, &p->msg) < 0) {
        free(p);
        return weave__ret(-ESRCH);
    }
    return 0;
}

/* ---- weave_call ---------------------------------------------------------- */

enum call_state {
    CALL_QUEUED = 0, /* the start message is on its way */
    CALL_RUNNING,    /* its task runs on the target */
    CALL_ENDED,      /* fn returned: result is set */
    CALL_REFUSED,    /* the target stopped before fn started */
    CALL_FAILED      /* no task could be made: err */
};

struct call {
    struct weave__msg start; /* to the target: spawn the task */
    struct weave__msg stop;  /* to the target: cancel it */
    struct weave__msg done;  /* to the caller's scheduler: it is over */
    weave_fn fn;             /* the call */
    void *arg;
    void *result;                /* fn's, once ENDED */
    int err;                     /* FAILED: why, a negative errno */
    int state;                   /* enum call_state (atomic) */
    int refs;                    /* (atomic) see the top of this file */
    struct weave__task *task;    /* target's thread only: while RUNNING */
    struct weave__sched *caller; /* the calling task's scheduler, or NULL */
    struct weave_waitq waiters;  /* the calling task, parked (its thread only) */
    bool told;                   /* the caller was told (its thread, or under mu) */
    pthread_mutex_t mu;          /* a thread caller: told, under mu */
    pthread_cond_t cv;
};

static void release(struct call *c)
{
    if (__atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) == 0) {
        if (!c->caller) {
            pthread_cond_destroy(&c->cv);
            pthread_mutex_destroy(&c->mu);
        }
        free(c);
    }
}

/* On the caller's scheduler: the call is over. */
static void call_done(struct weave__sched *s, struct weave__msg *m)
{
    struct call *c = weave__container_of(m, struct call, done);
    struct weave__waiter *w = weave__queue_first(&c->waiters);

    c->told = true;
    if (w)
        weave__wake_waiter(s, w, 0);
}

/* On the target: tell the caller that the call is over (final is its state
 * now), and drop the target's reference. */
static void tell(struct call *c, int final)
{
    __atomic_store_n(&c->state, final, __ATOMIC_RELEASE);
    if (c->caller) {
        /* The caller waits until told, so its scheduler runs: the send is
         * taken. */
        (void)weave__inbox_send(&c->caller->inbox, &c->done);
    } else {
        pthread_mutex_lock(&c->mu);
        c->told = true;
        pthread_cond_signal(&c->cv);
        pthread_mutex_unlock(&c->mu);
    }
    release(c);
}

static void *call_main(void *arg)
{
    struct call *c = arg;

    c->result = c->fn(c->arg);
    c->task = NULL;
    tell(c, CALL_ENDED);
    return NULL;
}

/* On the target: start the call's task, or refuse it once the target is
 * stopping (its inbox closed: drained at the end of the run). */
static void call_start(struct weave__sched *s, struct weave__msg *m)
{
    struct call *c = weave__container_of(m, struct call, start);
    struct weave__task *t;
    int err;

    if (weave__inbox_closed(&s->inbox)) {
        tell(c, CALL_REFUSED);
        return;
    }
    if (!(t = weave__task_spawn(s, NULL, call_main, c, &err))) {
        c->err = err;
        tell(c, CALL_FAILED);
        return;
    }
    t->flags |= WEAVE__DETACHED;
    c->task = t;
    __atomic_store_n(&c->state, CALL_RUNNING, __ATOMIC_RELEASE);
}

/* On the target: the caller stopped waiting; cancel the task if it runs.
 * (The start message was sent before this one by the same thread, so it
 * has been taken.) */
static void call_stop(struct weave__sched *s, struct weave__msg *m)
{
    struct call *c = weave__container_of(m, struct call, stop);

    if (c->task)
        weave__cancel(s, c->task);
    release(c);
}

/* A task of another scheduler waits for c. Returns 0 or the reason it
 * stopped waiting (-ECANCELED, -ETIMEDOUT), after the task has ended. */
static int task_waits(struct weave__sched *s, weave_sched *target, struct call *c)
{
    weave_shield sh;
    int r = 0;

    s->remote_waiters++; /* a message from another thread will wake it */
    while (!c->told && r == 0)
        r = weave__why_errno(
            weave__wait_in(s, WEAVE_WAIT_CALL, c, &c->waiters, NULL, WEAVE__NO_DEADLINE, NULL));
    if (!c->told) {
        __atomic_add_fetch(&c->refs, 1, __ATOMIC_ACQ_REL);
        if (weave__inbox_send(&target->core.inbox, &c->stop) < 0) /* stopped: the start */
            __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL);    /* was taken as it drained */
        weave_shield_begin(&sh);
        while (!c->told)
            (void)weave__wait_in(s, WEAVE_WAIT_CALL, c, &c->waiters, NULL, WEAVE__NO_DEADLINE,
                                 NULL);
        weave_shield_end(&sh);
    }
    s->remote_waiters--;
    return r;
}

/* On s's own thread, in a task: spawn and join, with the same rule when
 * the caller stops waiting. */
static int call_here(weave_fn fn, void *arg, void **result)
{
    weave_task *t = weave_spawn(fn, arg);
    weave_shield sh;
    int err;

    if (!t)
        return -errno;
    if (weave_join(t, result) == 0)
        return 0;
    err = errno;
    (void)weave_cancel(t);
    weave_shield_begin(&sh);
    (void)weave_join(t, NULL);
    weave_shield_end(&sh);
    return -err;
}

static int call(weave_sched *w, weave_fn fn, void *arg, void **result)
{
    struct weave__sched *s = weave__tls;
    struct call *c;
    int r = 0, state;

    if (!w || !fn)
        return -EINVAL;
    if (s == &w->core)
        return call_here(fn, arg, result);
    if (!s && weave__run_bound() == w)
        return -EDEADLK; /* its own thread, between tasks: it would never run */
    if (s && (r = weave__checkpoint(s)) < 0)
        return r;
    if (!(c = calloc(1, sizeof(*c))))
        return -ENOMEM;
    c->start.fn = call_start;
    c->stop.fn = call_stop;
    c->done.fn = call_done;
    c->fn = fn;
    c->arg = arg;
    c->refs = 2;
    c->caller = s;
    weave__queue_init(&c->waiters);
    if (!s) {
        pthread_mutex_init(&c->mu, NULL);
        pthread_cond_init(&c->cv, NULL);
    }
    if (weave__inbox_send(&w->core.inbox, &c->start) < 0) {
        c->refs = 1;
        release(c);
        return -ESRCH;
    }
    if (s) {
        r = task_waits(s, w, c);
    } else {
        pthread_mutex_lock(&c->mu);
        while (!c->told)
            pthread_cond_wait(&c->cv, &c->mu);
        pthread_mutex_unlock(&c->mu);
    }
    state = __atomic_load_n(&c->state, __ATOMIC_ACQUIRE);
    if (r == 0 && state == CALL_REFUSED)
        r = -ESRCH;
    else if (r == 0 && state == CALL_FAILED)
        r = c->err;
    else if (r == 0 && result)
        *result = c->result;
    release(c);
    return r;
}

WEAVE__ENTRY int weave_call(weave_sched *w, weave_fn fn, void *arg, void **result)
{
    WEAVE__SCOPES_CHECK();
    return weave__ret(call(w, fn, arg, result));
}
