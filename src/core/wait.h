/*
 * wait.h - wait queues and the internal lock, on top of park and wake.
 *
 * A blocking primitive is a wait queue plus its own state. To wait, a task
 * fills a waiter, links it at the back of the queue (FIFO) and parks; to
 * serve a waiter, the owner takes the first one and wakes it with a value
 * (weave__wake_waiter), which also unlinks it from every other queue the
 * task was in. A waiter that is cancelled or times out has left every
 * queue before it runs again, so it can neither be served twice nor be
 * served after it gave up.
 *
 * The FIFO handoff lock (weave_mutex) is on the same core: release hands
 * ownership straight to the first waiter, so no task can barge ahead of one
 * that waits, and a waiter that gave up before the handoff never owns it.
 */
#ifndef WEAVE_WAIT_H
#define WEAVE_WAIT_H

#include "core/sched.h"

static inline void weave__queue_init(struct weave_waitq *q)
{
    weave__list_init(&q->waiters);
}

static inline bool weave__queue_empty(const struct weave_waitq *q)
{
    return weave__list_empty(&q->waiters);
}

/* The first waiter of q, or NULL. */
static inline struct weave__waiter *weave__queue_first(const struct weave_waitq *q)
{
    struct weave_link *n = weave__list_first(&q->waiters);

    return n ? weave__container_of(n, struct weave__waiter, link) : NULL;
}

/* The first waiter of q that can still be served, or NULL: waiters whose
 * wait another thread completed (a select with shared channels, whose
 * task has yet to take its waiters out) are taken out on the way. */
static inline struct weave__waiter *weave__queue_live(struct weave_waitq *q)
{
    struct weave__waiter *w;

    while ((w = weave__queue_first(q)) != NULL) {
        if (!w->claim || !__atomic_load_n(w->claim, __ATOMIC_ACQUIRE))
            return w;
        weave__list_del(&w->link);
    }
    return NULL;
}

/* Fill w for the current task and link it at the back of q. */
static inline void weave__queue_push(struct weave__sched *s, struct weave_waitq *q,
                                     struct weave__waiter *w, void *data)
{
    w->task = s->current;
    w->data = data;
    w->value = 0;
    w->claim = NULL;
    weave__list_push(&q->waiters, &w->link);
}

/* A wait of n clauses (already linked) with the call's own deadline, on
 * what kind (enum weave_wait_kind) and object say, for weave_tasks. */
static inline void weave__wait_init(struct weave__wait *w, struct weave__waiter *clauses,
                                    unsigned n, int64_t timeout, int kind, const void *object)
{
    w->clauses = clauses;
    w->n = n;
    w->fired = NULL;
    w->why = WEAVE__WHY_EVENT;
    w->timeout = timeout;
    w->object = object;
    w->fd = -1;
    w->kind = (uint8_t)kind;
    w->claim = NULL;
}

/* Wait in q alone until served, timeout (absolute ns, or WEAVE__NO_DEADLINE)
 * passes, a deadline passes or the task is cancelled. kind and object say
 * what the task waits on (weave__wait_init). data is the waiter's data for
 * the owner of q; *value receives what the server handed over. Returns the
 * reason (enum weave__why). */
int weave__wait_in(struct weave__sched *s, int kind, const void *object, struct weave_waitq *q,
                   void *data, int64_t timeout, intptr_t *value);

/* Wake every waiter of q with value (WEAVE__WHY_EVENT). */
void weave__queue_wake_all(struct weave__sched *s, struct weave_waitq *q, intptr_t value);

/* Wake every waiter of q with WEAVE__WHY_CLOSED: what they wait on is gone. */
void weave__queue_close(struct weave__sched *s, struct weave_waitq *q);

/* The FIFO handoff lock is weave_mutex itself (weave.h): priv_owner is the
 * owning task's key (0: free; keys are never reused within a run, and
 * differ between the runs of different threads), and
 * priv_waiters the tasks waiting for it. A zeroed lock must be
 * weave__lock_init'ed before these functions see it. */
static inline void weave__lock_init(weave_mutex *l)
{
    l->priv_owner = 0;
    weave__queue_init(&l->priv_waiters);
    l->priv_home = NULL;
}

/* Take l for the current task, waiting in FIFO order if it is held. Returns
 * 0, or -ECANCELED, -ETIMEDOUT (timeout or a deadline scope) or -EBADF
 * (weave__queue_close on its waiters) without it. */
int weave__lock_acquire(struct weave__sched *s, weave_mutex *l, int64_t timeout);

/* Take l if it is free (then nobody waits); returns whether it did. */
static inline bool weave__lock_try(struct weave__sched *s, weave_mutex *l)
{
    if (l->priv_owner)
        return false;
    l->priv_owner = s->current->key;
    return true;
}

/* Hand l to its first waiter (there is one). */
void weave__lock_handoff(struct weave__sched *s, weave_mutex *l);

/* Release l, handing it to the first waiter if there is one. */
static inline void weave__lock_release(struct weave__sched *s, weave_mutex *l)
{
    if (weave__queue_empty(&l->priv_waiters))
        l->priv_owner = 0;
    else
        weave__lock_handoff(s, l);
}

/*
 * What a local object (a channel, a lock, a group, a stream) belongs to:
 * the thread whose scheduler's task first made or used it, by the token of
 * that thread (struct weave__sched.home). Written by a compare-and-swap on
 * first use; every later call reads it (one predictable load), and a call
 * from a task of any other thread fails with EPERM without touching the
 * object, as long as that thread runs a scheduler. Once it runs none, the
 * object is idle and anyone's: the next task to use it takes it over (the
 * same swap), and any thread may look at it or free it. Schedulers that
 * run one after another on one thread share their objects.
 */
static inline int weave__claim(const void **owner, const struct weave__sched *s)
{
    const void *o = __atomic_load_n(owner, __ATOMIC_ACQUIRE);

    while (__builtin_expect(o != s->home, 0)) {
        if (o && weave__home_busy(o))
            return -EPERM;
        if (__atomic_compare_exchange_n(owner, &o, s->home, false, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE))
            break;
    }
    return 0;
}

/* For the calls that need no task (looking, destroying, freeing): 0 if the
 * object is the calling thread's, or idle (nobody's, or its thread runs no
 * scheduler now); -EPERM if another thread's tasks may use it now. */
static inline int weave__at_home(const void *const *home)
{
    const void *o = __atomic_load_n(home, __ATOMIC_ACQUIRE);

    return o == NULL || o == weave__thread_token() || !weave__home_busy(o) ? 0 : -EPERM;
}

#endif /* WEAVE_WAIT_H */
