/*
 * wait.c - waiting in one queue, waking a queue, the FIFO handoff lock.
 *
 * Everything here is built on weave__park and weave__wake_waiter (sched.c);
 * primitives with several clauses (an fd waited on in both directions,
 * select) build their struct weave__wait themselves.
 */
#include "core/wait.h"

int weave__wait_in(struct weave__sched *s, int kind, const void *object, struct weave_waitq *q,
                   void *data, int64_t timeout, intptr_t *value)
{
    struct weave__waiter w;
    struct weave__wait wait;
    int why;

    weave__queue_push(s, q, &w, data);
    weave__wait_init(&wait, &w, 1, timeout, kind, object);
    why = weave__park(s, &wait);
    if (value)
        *value = w.value;
    return why;
}

void weave__queue_wake_all(struct weave__sched *s, struct weave_waitq *q, intptr_t value)
{
    struct weave__waiter *w;

    while ((w = weave__queue_first(q)) != NULL)
        weave__wake_waiter(s, w, value); /* unlinks it */
}

void weave__queue_close(struct weave__sched *s, struct weave_waitq *q)
{
    struct weave__waiter *w;

    while ((w = weave__queue_first(q)) != NULL)
        if (weave__waiter_claim(w)) /* else taken out: completed elsewhere */
            weave__wake_claimed(s, w->task, WEAVE__WHY_CLOSED, w);
}

int weave__lock_acquire(struct weave__sched *s, weave_mutex *l, int64_t timeout)
{
    int why;

    if (weave__lock_try(s, l))
        return 0;
    why = weave__wait_in(s, WEAVE_WAIT_MUTEX, l, &l->priv_waiters, NULL, timeout, NULL);
    /* Served: weave__lock_release made us the owner before waking us. */
    return weave__why_errno(why);
}

void weave__lock_handoff(struct weave__sched *s, weave_mutex *l)
{
    struct weave__waiter *w = weave__queue_first(&l->priv_waiters);

    l->priv_owner = w->task->key;
    weave__wake_waiter(s, w, 0);
}
