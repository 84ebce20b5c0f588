/*
 * sync.c - mutex, condition variable, semaphore and event: each one a wait
 * queue (struct weave_waitq, in the user's object) plus its own state.
 *
 * The objects are statically initialisable to all zeros, which is not yet
 * a list: every call starts with ready(), which makes the queue's head on
 * first use. Handoff is the rule everywhere: unlock, release and signal
 * give the lock, the permit or the wake-up straight to the first waiter,
 * and the wake takes it out of the queue at once; a waiter that gave up
 * before (cancelled, timed out) was taken out by its own wake, so it can
 * never be handed anything.
 */
#include "base/common.h"
#include "core/deadline.h"
#include "core/scope.h"
#include "core/wait.h"

#include <string.h>

static void ready(struct weave_waitq *q)
{
    if (!q->waiters.next)
        weave__queue_init(q);
}

/* The start of every call that takes, gives, waits or wakes: EPERM outside
 * a task (weave.h), or for an object that another thread's tasks use
 * (decided by its home alone, weave__claim: nothing else of it is read);
 * then its queue is made on first use. */
static int mine(const struct weave__sched *s, const void **home, struct weave_waitq *q)
{
    int r;

    if (!s)
        return -EPERM;
    if ((r = weave__claim(home, s)) < 0)
        return r;
    ready(q);
    return 0;
}

/* The start of a call that may wait: mine, and not cancelled, not past a
 * deadline. */
static int may_wait(const struct weave__sched *s, const void **home, struct weave_waitq *q)
{
    int r;

    if ((r = mine(s, home, q)) < 0)
        return r;
    return weave__checkpoint(s);
}

/* ---- mutex ------------------------------------------------------------------ */

int weave_mutex_init(weave_mutex *m)
{
    if (!m)
        return weave__ret(-EINVAL);
    weave__lock_init(m);
    return 0;
}

int weave_mutex_destroy(weave_mutex *m)
{
    int r;

    if (!m)
        return weave__ret(-EINVAL);
    if ((r = weave__at_home(&m->priv_home)) < 0)
        return weave__ret(r);
    ready(&m->priv_waiters);
    if (m->priv_owner || !weave__queue_empty(&m->priv_waiters))
        return weave__ret(-EBUSY);
    memset(m, 0, sizeof(*m));
    return 0;
}

/* poll: the call was given a timeout of 0, which never waits. */
static int mutex_lock(weave_mutex *m, bool poll)
{
    struct weave__sched *s = weave__tls;
    int r;

    if (!m)
        return -EINVAL;
    if ((r = may_wait(s, &m->priv_home, &m->priv_waiters)) < 0)
        return r;
    if (m->priv_owner && !weave__key_of(s, m->priv_owner))
        return -EPERM; /* held by another scheduler's task */
    if (m->priv_owner == s->current->key)
        return -EDEADLK;
    if (poll)
        return weave__lock_try(s, m) ? 0 : -ETIMEDOUT;
    return weave__lock_acquire(s, m, WEAVE__NO_DEADLINE);
}

WEAVE__ENTRY int weave_mutex_lock(weave_mutex *m)
{
    WEAVE__SCOPES_CHECK();
    return weave__ret(mutex_lock(m, false));
}

WEAVE__ENTRY int weave_mutex_lock_timeout(weave_mutex *m, int64_t timeout_ms)
{
    weave_deadline d;

    WEAVE__SCOPES_CHECK();
    if (timeout_ms == 0)
        return weave__ret(mutex_lock(m, true));
    if (weave__timed_begin(&d, timeout_ms) < 0)
        return weave__ret(-EINVAL);
    return weave__timed_end(&d, weave_mutex_lock(m));
}

int weave_mutex_trylock(weave_mutex *m)
{
    struct weave__sched *s = weave__tls;
    int r;

    if (!m)
        return weave__ret(-EINVAL);
    if ((r = mine(s, &m->priv_home, &m->priv_waiters)) < 0)
        return weave__ret(r);
    return weave__lock_try(s, m) ? 0 : weave__ret(-EBUSY);
}

int weave_mutex_unlock(weave_mutex *m)
{
    struct weave__sched *s = weave__tls;

    if (!m)
        return weave__ret(-EINVAL);
    if (mine(s, &m->priv_home, &m->priv_waiters) < 0 || !m->priv_owner ||
        m->priv_owner != s->current->key)
        return weave__ret(-EPERM);
    weave__lock_release(s, m);
    return 0;
}

/* ---- condition variable ------------------------------------------------------ */

int weave_cond_init(weave_cond *c)
{
    if (!c)
        return weave__ret(-EINVAL);
    weave__queue_init(&c->priv_waiters);
    c->priv_home = NULL;
    return 0;
}

int weave_cond_destroy(weave_cond *c)
{
    int r;

    if (!c)
        return weave__ret(-EINVAL);
    if ((r = weave__at_home(&c->priv_home)) < 0)
        return weave__ret(r);
    ready(&c->priv_waiters);
    if (!weave__queue_empty(&c->priv_waiters))
        return weave__ret(-EBUSY);
    memset(c, 0, sizeof(*c));
    return 0;
}

static int cond_wait(weave_cond *c, weave_mutex *m, bool poll)
{
    struct weave__sched *s = weave__tls;
    weave_shield sh;
    int why, r;

    if (!c || !m)
        return -EINVAL;
    if (!s || weave__claim(&m->priv_home, s) < 0 || !m->priv_owner ||
        m->priv_owner != s->current->key)
        return -EPERM;
    if ((r = may_wait(s, &c->priv_home, &c->priv_waiters)) < 0)
        return r; /* m is still held */
    if (poll)
        return -ETIMEDOUT; /* nothing can signal without waiting */
    weave__lock_release(s, m);
    why = weave__wait_in(s, WEAVE_WAIT_COND, c, &c->priv_waiters, NULL, WEAVE__NO_DEADLINE, NULL);
    /* Take m back whatever happened, and without being interrupted: the
     * caller must hold it when this returns. */
    weave_shield_begin(&sh);
    (void)weave__lock_acquire(s, m, WEAVE__NO_DEADLINE);
    weave_shield_end(&sh);
    return weave__why_errno(why);
}

WEAVE__ENTRY int weave_cond_wait(weave_cond *c, weave_mutex *m)
{
    WEAVE__SCOPES_CHECK();
    return weave__ret(cond_wait(c, m, false));
}

WEAVE__ENTRY int weave_cond_wait_timeout(weave_cond *c, weave_mutex *m, int64_t timeout_ms)
{
    weave_deadline d;

    WEAVE__SCOPES_CHECK();
    if (timeout_ms == 0)
        return weave__ret(cond_wait(c, m, true));
    if (weave__timed_begin(&d, timeout_ms) < 0)
        return weave__ret(-EINVAL);
    return weave__timed_end(&d, weave_cond_wait(c, m));
}

static int cond_wake(weave_cond *c, bool all)
{
    struct weave__sched *s = weave__tls;
    struct weave__waiter *w;
    int r;

    if (!c)
        return -EINVAL;
    if ((r = mine(s, &c->priv_home, &c->priv_waiters)) < 0)
        return r;
    if (all)
        weave__queue_wake_all(s, &c->priv_waiters, 0);
    else if ((w = weave__queue_first(&c->priv_waiters)) != NULL)
        weave__wake_waiter(s, w, 0);
    return 0;
}

int weave_cond_signal(weave_cond *c)
{
    return weave__ret(cond_wake(c, false));
}

int weave_cond_broadcast(weave_cond *c)
{
    return weave__ret(cond_wake(c, true));
}

/* ---- semaphore ---------------------------------------------------------------- */

int weave_sem_init(weave_sem *sem, unsigned value)
{
    if (!sem)
        return weave__ret(-EINVAL);
    sem->priv_value = value;
    weave__queue_init(&sem->priv_waiters);
    sem->priv_home = NULL;
    return 0;
}

int weave_sem_destroy(weave_sem *sem)
{
    int r;

    if (!sem)
        return weave__ret(-EINVAL);
    if ((r = weave__at_home(&sem->priv_home)) < 0)
        return weave__ret(r);
    ready(&sem->priv_waiters);
    if (!weave__queue_empty(&sem->priv_waiters))
        return weave__ret(-EBUSY);
    memset(sem, 0, sizeof(*sem));
    return 0;
}

static int sem_acquire(weave_sem *sem, bool poll)
{
    struct weave__sched *s = weave__tls;
    int r;

    if (!sem)
        return -EINVAL;
    if ((r = may_wait(s, &sem->priv_home, &sem->priv_waiters)) < 0)
        return r;
    if (sem->priv_value > 0) { /* then nobody waits: permits are handed over */
        sem->priv_value--;
        return 0;
    }
    if (poll)
        return -ETIMEDOUT;
    /* Served: weave_sem_release handed its permit to us. */
    return weave__why_errno(
        weave__wait_in(s, WEAVE_WAIT_SEM, sem, &sem->priv_waiters, NULL, WEAVE__NO_DEADLINE, NULL));
}

WEAVE__ENTRY int weave_sem_acquire(weave_sem *sem)
{
    WEAVE__SCOPES_CHECK();
    return weave__ret(sem_acquire(sem, false));
}

WEAVE__ENTRY int weave_sem_acquire_timeout(weave_sem *sem, int64_t timeout_ms)
{
    weave_deadline d;

    WEAVE__SCOPES_CHECK();
    if (timeout_ms == 0)
        return weave__ret(sem_acquire(sem, true));
    if (weave__timed_begin(&d, timeout_ms) < 0)
        return weave__ret(-EINVAL);
    return weave__timed_end(&d, weave_sem_acquire(sem));
}

int weave_sem_try_acquire(weave_sem *sem)
{
    int r;

    if (!sem)
        return weave__ret(-EINVAL);
    if ((r = mine(weave__tls, &sem->priv_home, &sem->priv_waiters)) < 0)
        return weave__ret(r);
    if (sem->priv_value == 0)
        return weave__ret(-EAGAIN);
    sem->priv_value--;
    return 0;
}

int weave_sem_release(weave_sem *sem)
{
    struct weave__sched *s = weave__tls;
    struct weave__waiter *w;
    int r;

    if (!sem)
        return weave__ret(-EINVAL);
    if ((r = mine(s, &sem->priv_home, &sem->priv_waiters)) < 0)
        return weave__ret(r);
    if ((w = weave__queue_first(&sem->priv_waiters)) != NULL)
        weave__wake_waiter(s, w, 0);
    else if (sem->priv_value == WEAVE_SEM_VALUE_MAX)
        return weave__ret(-EOVERFLOW);
    else
        sem->priv_value++;
    return 0;
}

int64_t weave_sem_value(const weave_sem *sem)
{
    int r;

    if (!sem)
        return weave__ret(-EINVAL);
    if ((r = weave__at_home(&sem->priv_home)) < 0)
        return weave__ret(r);
    return sem->priv_value;
}

/* ---- event ---------------------------------------------------------------------- */

int weave_event_init(weave_event *e)
{
    if (!e)
        return weave__ret(-EINVAL);
    e->priv_set = 0;
    weave__queue_init(&e->priv_waiters);
    e->priv_home = NULL;
    return 0;
}

int weave_event_destroy(weave_event *e)
{
    int r;

    if (!e)
        return weave__ret(-EINVAL);
    if ((r = weave__at_home(&e->priv_home)) < 0)
        return weave__ret(r);
    ready(&e->priv_waiters);
    if (!weave__queue_empty(&e->priv_waiters))
        return weave__ret(-EBUSY);
    memset(e, 0, sizeof(*e));
    return 0;
}

int weave_event_set(weave_event *e)
{
    struct weave__sched *s = weave__tls;
    int r;

    if (!e)
        return weave__ret(-EINVAL);
    if ((r = mine(s, &e->priv_home, &e->priv_waiters)) < 0)
        return weave__ret(r);
    e->priv_set = 1;
    weave__queue_wake_all(s, &e->priv_waiters, 0);
    return 0;
}

int weave_event_clear(weave_event *e)
{
    int r;

    if (!e)
        return weave__ret(-EINVAL);
    if ((r = mine(weave__tls, &e->priv_home, &e->priv_waiters)) < 0)
        return weave__ret(r);
    e->priv_set = 0;
    return 0;
}

static int event_wait(weave_event *e, bool poll)
{
    struct weave__sched *s = weave__tls;
    int r;

    if (!e)
        return -EINVAL;
    if ((r = may_wait(s, &e->priv_home, &e->priv_waiters)) < 0)
        return r;
    if (e->priv_set)
        return 0;
    if (poll)
        return -ETIMEDOUT;
    return weave__why_errno(
        weave__wait_in(s, WEAVE_WAIT_EVENT, e, &e->priv_waiters, NULL, WEAVE__NO_DEADLINE, NULL));
}

WEAVE__ENTRY int weave_event_wait(weave_event *e)
{
    WEAVE__SCOPES_CHECK();
    return weave__ret(event_wait(e, false));
}

WEAVE__ENTRY int weave_event_wait_timeout(weave_event *e, int64_t timeout_ms)
{
    weave_deadline d;

    WEAVE__SCOPES_CHECK();
    if (timeout_ms == 0)
        return weave__ret(event_wait(e, true));
    if (weave__timed_begin(&d, timeout_ms) < 0)
        return weave__ret(-EINVAL);
    return weave__timed_end(&d, weave_event_wait(e));
}

int weave_event_is_set(const weave_event *e)
{
    int r;

    if (!e)
        return weave__ret(-EINVAL);
    if ((r = weave__at_home(&e->priv_home)) < 0)
        return weave__ret(r);
    return e->priv_set != 0;
}
