/*
 * shared.c - shared channels: the channel contract for tasks of any
 * scheduler and for threads with none.
 *
 * A shared channel is a local one's ring buffer plus a mutex and two
 * queues of parties' waiters (struct weave__shwaiter), kept under the
 * mutex; nobody ever waits while holding it. The rules are chan.c's: the
 * buffer first, then the waiting senders in order; whoever completes a
 * transfer copies the element and wakes the other side, whose call is then
 * already done.
 *
 * Completing a wait on another thread is the hard part. A waiting party
 * may also be woken by its own scheduler (a timeout, a cancel, a local
 * case of its select) or time out on its own thread, while a taker holds
 * a channel's lock. So every wait that other threads can complete has a
 * claim, swapped from 0 to 1 by whoever completes it, and only that one
 * acts: a taker that loses the swap takes the waiter out and looks at the
 * next; a timer that loses it leaves the task parked, since the taker's
 * wake-up is on its way. That wake-up points into the waiting task's
 * stack (the party), so the task never leaves its wait before it came:
 * after its wait it takes its waiters out of every queue (under each lock),
 * and if a taker claimed it meanwhile, it parks again until woken by it
 * (weave__park_for_claim). A task on another scheduler is woken through
 * its scheduler's inbox; a thread, through a futex.
 */
#include "coord/shared.h"

#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core/wait.h"

struct weave__shared {
    pthread_mutex_t lock;
    struct weave_link senders;   /* struct weave__shwaiter, in order */
    struct weave_link receivers; /* the same */
    size_t attached;             /* waiters enqueued whose parties have not
                                    taken them out yet (a taker's claim takes
                                    a waiter out of the queue, not this) */
};

int weave__shared_init(weave_chan *c)
{
    struct weave__shared *sh = malloc(sizeof(*sh));

    if (!sh)
        return -ENOMEM;
    pthread_mutex_init(&sh->lock, NULL);
    sh->attached = 0;
    weave__list_init(&sh->senders);
    weave__list_init(&sh->receivers);
    c->shared = sh;
    return 0;
}

void weave__shared_free(weave_chan *c)
{
    pthread_mutex_destroy(&c->shared->lock);
    free(c->shared);
    c->shared = NULL;
}

void weave__shared_lock(weave_chan *c)
{
    pthread_mutex_lock(&c->shared->lock);
}

void weave__shared_unlock(weave_chan *c)
{
    pthread_mutex_unlock(&c->shared->lock);
}

/* ---- waking a party -------------------------------------------------------- */

static void futex_wake(int *word)
{
    (void)syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/* On the waiting task's scheduler: a taker on another thread completed its
 * wait. */
static void party_woken(struct weave__sched *s, struct weave__msg *m)
{
    struct weave__party *p = weave__container_of(m, struct weave__party, wake);

    weave__wake_claimed(s, p->task, WEAVE__WHY_EVENT, NULL);
}

/* w completed (claimed, out of its queue), with err: tell its party. */
static void fire(struct weave__shwaiter *w, int err)
{
    struct weave__party *p = w->party;

    p->err = err;
    p->fired = w;
    if (!p->sched) {
        __atomic_store_n(&p->done, 1, __ATOMIC_RELEASE);
        futex_wake(&p->done);
    } else if (p->sched == weave__tls) {
        weave__wake_claimed(p->sched, p->task, WEAVE__WHY_EVENT, NULL);
    } else {
        /* Its task waits until woken by this, so its scheduler runs and
         * its inbox takes the message. */
        (void)weave__inbox_send(&p->sched->inbox, &p->wake);
    }
}

/* The first waiter of q whose party this call claims, out of the queue;
 * those claimed by someone else are taken out on the way (their parties
 * take out the rest of their waiters themselves). NULL if none. */
static struct weave__shwaiter *claim_first(struct weave_link *q)
{
    struct weave_link *n;

    while ((n = weave__list_first(q)) != NULL) {
        struct weave__shwaiter *w = weave__container_of(n, struct weave__shwaiter, link);

        weave__list_del(n);
        if (!__atomic_exchange_n(&w->party->claim, 1, __ATOMIC_ACQ_REL))
            return w;
    }
    return NULL;
}

/* Whether q holds a waiter whose party is still open (a hint: the party
 * may be claimed elsewhere the next moment). */
static bool has_live(struct weave_link *q)
{
    struct weave_link *n;

    while ((n = weave__list_first(q)) != NULL) {
        struct weave__shwaiter *w = weave__container_of(n, struct weave__shwaiter, link);

        if (!__atomic_load_n(&w->party->claim, __ATOMIC_ACQUIRE))
            return true;
        weave__list_del(n);
    }
    return false;
}

/* ---- transfers, under the lock ------------------------------------------------ */

bool weave__shared_ready(weave_chan *c, bool send)
{
    struct weave__shared *sh = c->shared;

    if (send)
        return c->closed || c->len < c->cap || has_live(&sh->receivers);
    return c->len > 0 || c->closed || has_live(&sh->senders);
}

int weave__shared_now(weave_chan *c, void *elem, bool send)
{
    struct weave__shared *sh = c->shared;
    struct weave__shwaiter *w;

    if (send) {
        if (c->closed)
            return -EPIPE;
        if ((w = claim_first(&sh->receivers)) != NULL) {
            weave__ring_copy(c, w->elem, elem);
            fire(w, 0);
            return 0;
        }
        if (c->len < c->cap) {
            weave__ring_push(c, elem);
            return 0;
        }
        return -EAGAIN;
    }
    if (c->len > 0) {
        weave__ring_pop(c, elem);
        if ((w = claim_first(&sh->senders)) != NULL) { /* room now: it moves in */
            weave__ring_push(c, w->elem);
            fire(w, 0);
        }
        return 0;
    }
    if ((w = claim_first(&sh->senders)) != NULL) {
        weave__ring_copy(c, elem, w->elem);
        fire(w, 0);
        return 0;
    }
    return c->closed ? -EPIPE : -EAGAIN;
}

void weave__shared_enqueue(weave_chan *c, struct weave__shwaiter *w, struct weave__party *party,
                           void *elem, bool send)
{
    w->party = party;
    w->elem = elem;
    w->chan = c;
    w->send = send;
    c->shared->attached++;
    weave__list_push(send ? &c->shared->senders : &c->shared->receivers, &w->link);
}

/* ---- waiting --------------------------------------------------------------------- */

void weave__party_init(struct weave__party *party, struct weave__sched *s)
{
    party->claim = 0;
    party->sched = s;
    party->task = s ? s->current : NULL;
    party->wake.fn = party_woken;
    party->fired = NULL;
    party->err = 0;
    party->done = 0;
}

/* Take every waiter of ws out of its queue, each under its channel's lock:
 * from then on no taker can reach the party. */
static void unlink_all(struct weave__shwaiter *ws, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        weave__shared_lock(ws[i].chan);
        weave__list_del(&ws[i].link);
        ws[i].chan->shared->attached--;
        weave__shared_unlock(ws[i].chan);
    }
}

/* A thread waits for a taker, until timeout. Returns whether one came. */
static bool thread_waits(struct weave__party *party, int64_t timeout)
{
    for (;;) {
        struct timespec ts, *left = NULL;

        if (__atomic_load_n(&party->done, __ATOMIC_ACQUIRE))
            return true;
        if (timeout != WEAVE__NO_DEADLINE) {
            int64_t ns = timeout - weave__clock_real_ns();

            if (ns <= 0) {
                if (!__atomic_exchange_n(&party->claim, 1, __ATOMIC_ACQ_REL))
                    return false;             /* nobody took it: timed out */
                timeout = WEAVE__NO_DEADLINE; /* taken: its done is on its way */
                continue;
            }
            ts.tv_sec = (time_t)(ns / 1000000000);
            ts.tv_nsec = (long)(ns % 1000000000);
            left = &ts;
        }
        (void)syscall(SYS_futex, &party->done, FUTEX_WAIT_PRIVATE, 0, left, NULL, 0);
    }
}

int weave__party_wait(struct weave__sched *s, struct weave__party *party,
                      struct weave__shwaiter *ws, size_t n, struct weave__wait *w, int64_t timeout)
{
    if (!s) {
        bool fired = thread_waits(party, timeout);

        unlink_all(ws, n);
        return fired ? (int)(party->fired - ws) : -1;
    }
    s->remote_waiters++; /* another thread may wake it */
    (void)weave__park(s, w);
    s->remote_waiters--;
    unlink_all(ws, n);
    /* party->fired is set under a channel's lock, which unlink_all took
     * after it: what it says now is final. */
    if (!party->fired)
        return -1;
    if (w->why != WEAVE__WHY_EVENT || w->fired != NULL)
        weave__park_for_claim(s); /* claimed while it stopped waiting */
    return (int)(party->fired - ws);
}

/* ---- the channel calls ------------------------------------------------------------ */

int weave__shared_op(weave_chan *c, void *elem, bool send, int mode, int64_t timeout)
{
    struct weave__sched *s = weave__tls;
    struct weave__shwaiter waiter;
    struct weave__party party;
    struct weave__wait w;
    int r;

    if (s && mode != 0 && (r = weave__checkpoint(s)) < 0)
        return r;
    weave__shared_lock(c);
    r = weave__shared_now(c, elem, send);
    if (r != -EAGAIN || mode != 2) {
        weave__shared_unlock(c);
        return r != -EAGAIN ? r : mode == 0 ? -EAGAIN : -ETIMEDOUT;
    }
    weave__party_init(&party, s);
    weave__shared_enqueue(c, &waiter, &party, elem, send);
    weave__shared_unlock(c);
    if (s) {
        weave__wait_init(&w, NULL, 0, timeout, WEAVE_WAIT_CHAN, c);
        w.claim = &party.claim;
    }
    if (weave__party_wait(s, &party, &waiter, 1, &w, timeout) == 0)
        return -party.err;
    return s ? weave__why_errno(w.why) : -ETIMEDOUT;
}

int weave__shared_close(weave_chan *c)
{
    struct weave__shared *sh = c->shared;
    struct weave__shwaiter *w;

    weave__shared_lock(c);
    if (c->closed) {
        weave__shared_unlock(c);
        return -EPIPE;
    }
    c->closed = true;
    /* Receivers wait only on an empty buffer: they get EPIPE now. */
    while ((w = claim_first(&sh->receivers)) != NULL)
        fire(w, EPIPE);
    while ((w = claim_first(&sh->senders)) != NULL)
        fire(w, EPIPE);
    weave__shared_unlock(c);
    return 0;
}

size_t weave__shared_len(weave_chan *c)
{
    size_t n;

    weave__shared_lock(c);
    n = c->len;
    weave__shared_unlock(c);
    return n;
}

int weave__shared_drained(weave_chan *c)
{
    struct weave__shared *sh = c->shared;
    int r = 0;

    weave__shared_lock(c);
    if (has_live(&sh->senders) || has_live(&sh->receivers))
        r = -EBUSY;
    else if (sh->attached > 0)
        r = 1; /* parties completed elsewhere, still to take their waiters out */
    weave__shared_unlock(c);
    return r;
}
