/*
 * chan.c - channels: a ring buffer and two wait queues.
 *
 * Senders wait in `senders` with their element as the waiter's data,
 * receivers in `receivers` with their destination. Whoever completes a
 * transfer copies the element and wakes the other side with an event, so a
 * woken waiter's transfer is already done when it runs, and the wake takes
 * it out of every queue (select's other cases included) at once.
 *
 * Invariants: receivers wait only while the buffer is empty; senders wait
 * only while it is full (always, for a rendezvous channel, where the
 * "buffer" holds nothing) and no receiver waits. So the order of elements
 * is: the buffer first, then the waiting senders in their order; a receive
 * that takes from a full buffer moves the first waiting sender's element
 * in at its back.
 */
#include "base/common.h"
#include "coord/chan.h"
#include "coord/ring.h"
#include "coord/shared.h"
#include "core/deadline.h"
#include "core/scope.h"
#include "core/time.h"
#include "core/wait.h"

#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static weave_chan *chan_new(size_t elem_size, size_t capacity, bool shared)
{
    weave_chan *c;

    /* The same bounds whatever the capacity: a rendezvous channel copies
     * elements as a buffered one does. */
    if (elem_size > WEAVE_CHAN_ELEM_MAX || (elem_size && capacity > PTRDIFF_MAX / elem_size)) {
        errno = EINVAL;
        return NULL;
    }
    if (!(c = calloc(1, sizeof(*c)))) {
        errno = ENOMEM;
        return NULL;
    }
    if ((elem_size * capacity > 0 && !(c->buf = malloc(elem_size * capacity))) ||
        (shared && weave__shared_init(c) < 0)) {
        free(c->buf);
        free(c);
        errno = ENOMEM;
        return NULL;
    }
    c->elem_size = elem_size;
    c->cap = capacity;
    if (weave__tls && !shared)
        c->home = weave__tls->home; /* made by a task: its thread's */
    weave__queue_init(&c->senders);
    weave__queue_init(&c->receivers);
    return c;
}

weave_chan *weave_chan_new(size_t elem_size, size_t capacity)
{
    return chan_new(elem_size, capacity, false);
}

weave_chan *weave_chan_new_shared(size_t elem_size, size_t capacity)
{
    return chan_new(elem_size, capacity, true);
}

int weave__chan_foreign(const struct weave__sched *s, weave_chan *c)
{
    return s ? weave__claim(&c->home, s) : -EPERM;
}

bool weave__chan_send_ready(weave_chan *c)
{
    return c->closed || c->len < c->cap || weave__queue_live(&c->receivers);
}

int weave__chan_send_now(struct weave__sched *s, weave_chan *c, const void *elem)
{
    struct weave__waiter *w;

    if (c->closed)
        return -EPIPE;
    while ((w = weave__queue_live(&c->receivers)) != NULL)
        if (weave__waiter_claim(w)) {
            weave__ring_copy(c, w->data, elem);
            weave__wake_served(s, w, 0);
            return 0;
        }
    if (c->len == c->cap)
        return -EAGAIN; /* its receivers were all completed elsewhere */
    weave__ring_push(c, elem);
    return 0;
}

bool weave__chan_recv_ready(weave_chan *c)
{
    return c->len > 0 || c->closed || weave__queue_live(&c->senders);
}

/* The first waiting sender this call may serve, claimed, or NULL. */
static struct weave__waiter *claim_sender(weave_chan *c)
{
    struct weave__waiter *w;

    while ((w = weave__queue_live(&c->senders)) != NULL)
        if (weave__waiter_claim(w))
            return w;
    return NULL;
}

int weave__chan_recv_now(struct weave__sched *s, weave_chan *c, void *elem)
{
    struct weave__waiter *w = claim_sender(c);

    if (c->len > 0) {
        weave__ring_pop(c, elem);
        if (w) { /* room now: the first waiting sender's element moves in */
            weave__ring_push(c, w->data);
            weave__wake_served(s, w, 0);
        }
        return 0;
    }
    if (w) {
        weave__ring_copy(c, elem, w->data);
        weave__wake_served(s, w, 0);
        return 0;
    }
    return c->closed ? -EPIPE : -EAGAIN;
}

struct weave_waitq *weave__chan_queue(weave_chan *c, bool send)
{
    return send ? &c->senders : &c->receivers;
}

size_t weave__chan_elem_size(const weave_chan *c)
{
    return c->elem_size;
}

/* What a waiter's wake means for a channel operation. */
static int woke(int why)
{
    return why == WEAVE__WHY_CLOSED ? -EPIPE : weave__why_errno(why);
}

enum mode {       /* the values shared.c takes */
            TRY,  /* never wait: EAGAIN */
            POLL, /* a blocking call with timeout 0: a cancellation point that
             never waits, ETIMEDOUT */
            WAIT  /* wait as long as it takes */
};

/* timeout: a shared channel's own (absolute ns, or WEAVE__NO_DEADLINE); a
 * local channel's calls time out through a deadline scope. */
static int chan_op(weave_chan *c, void *elem, bool send, enum mode mode, int64_t timeout)
{
    struct weave__sched *s = weave__tls;
    int r;

    if (!c || (!elem && c->elem_size))
        return -EINVAL;
    if (__builtin_expect(c->shared != NULL, 0))
        return weave__shared_op(c, elem, send, (int)mode, timeout);
    if ((r = weave__chan_foreign(s, c)) < 0)
        return r;
    if (mode != TRY && (r = weave__checkpoint(s)) < 0)
        return r;
    if ((send ? weave__chan_send_ready(c) : weave__chan_recv_ready(c)) &&
        (r = send ? weave__chan_send_now(s, c, elem) : weave__chan_recv_now(s, c, elem)) != -EAGAIN)
        return r;
    if (mode != WAIT)
        return mode == TRY ? -EAGAIN : -ETIMEDOUT;
    return woke(weave__wait_in(s, WEAVE_WAIT_CHAN, c, weave__chan_queue(c, send), elem,
                               WEAVE__NO_DEADLINE, NULL));
}

WEAVE__ENTRY int weave_chan_send(weave_chan *c, const void *elem)
{
    WEAVE__SCOPES_CHECK();
    return weave__ret(chan_op(c, (void *)(uintptr_t)elem, true, WAIT, WEAVE__NO_DEADLINE));
}

WEAVE__ENTRY int weave_chan_recv(weave_chan *c, void *elem)
{
    WEAVE__SCOPES_CHECK();
    return weave__ret(chan_op(c, elem, false, WAIT, WEAVE__NO_DEADLINE));
}

int weave_chan_try_send(weave_chan *c, const void *elem)
{
    return weave__ret(chan_op(c, (void *)(uintptr_t)elem, true, TRY, WEAVE__NO_DEADLINE));
}

int weave_chan_try_recv(weave_chan *c, void *elem)
{
    return weave__ret(chan_op(c, elem, false, TRY, WEAVE__NO_DEADLINE));
}

/* A _timeout call on a shared channel waits with a timeout of its own,
 * which a thread with no scheduler can have too (a deadline scope needs a
 * task). */
static int shared_timed(weave_chan *c, void *elem, bool send, int64_t timeout_ms)
{
    int64_t at = weave__deadline_in(timeout_ms, 1000000);

    return at < 0 ? -EINVAL : chan_op(c, elem, send, WAIT, at);
}

WEAVE__ENTRY int weave_chan_send_timeout(weave_chan *c, const void *elem, int64_t timeout_ms)
{
    weave_deadline d;

    WEAVE__SCOPES_CHECK();
    if (c && c->shared && timeout_ms != 0)
        return weave__ret(shared_timed(c, (void *)(uintptr_t)elem, true, timeout_ms));
    if (timeout_ms == 0)
        return weave__ret(chan_op(c, (void *)(uintptr_t)elem, true, POLL, WEAVE__NO_DEADLINE));
    if (weave__timed_begin(&d, timeout_ms) < 0)
        return weave__ret(-EINVAL);
    return weave__timed_end(&d, weave_chan_send(c, elem));
}

WEAVE__ENTRY int weave_chan_recv_timeout(weave_chan *c, void *elem, int64_t timeout_ms)
{
    weave_deadline d;

    WEAVE__SCOPES_CHECK();
    if (c && c->shared && timeout_ms != 0)
        return weave__ret(shared_timed(c, elem, false, timeout_ms));
    if (timeout_ms == 0)
        return weave__ret(chan_op(c, elem, false, POLL, WEAVE__NO_DEADLINE));
    if (weave__timed_begin(&d, timeout_ms) < 0)
        return weave__ret(-EINVAL);
    return weave__timed_end(&d, weave_chan_recv(c, elem));
}

int weave_chan_close(weave_chan *c)
{
    struct weave__sched *s = weave__tls;
    int r;

    if (!c)
        return weave__ret(-EINVAL);
    if (c->shared)
        return weave__ret(weave__shared_close(c));
    if ((r = weave__chan_foreign(s, c)) < 0)
        return weave__ret(r);
    if (c->closed)
        return weave__ret(-EPIPE);
    c->closed = true;
    /* Receivers wait only on an empty buffer: they get EPIPE now. */
    weave__queue_close(s, &c->senders);
    weave__queue_close(s, &c->receivers);
    return 0;
}

size_t weave_chan_len(const weave_chan *c)
{
    if (!c)
        return 0;
    if (c->shared) /* its lock is not what the const is about */
        return weave__shared_len((weave_chan *)(uintptr_t)c);
    return weave__at_home(&c->home) == 0 ? c->len : 0;
}

/* A shared channel whose waiters' parties were all completed elsewhere
 * still holds them until those parties take them out (on their threads,
 * as they wake): wait for that, letting them run. */
static int shared_free(weave_chan *c)
{
    for (;;) {
        int r = weave__shared_drained(c);

        if (r <= 0)
            return r;
        if (weave__tls)
            (void)weave_yield();
        else
            (void)sched_yield();
    }
}

int weave_chan_free(weave_chan *c)
{
    int r;

    if (!c)
        return weave__ret(-EINVAL);
    if (c->shared) {
        if ((r = shared_free(c)) < 0)
            return weave__ret(r);
        weave__shared_free(c);
    } else if ((r = weave__at_home(&c->home)) < 0) {
        return weave__ret(r);
    } else if (weave__queue_live(&c->senders) || weave__queue_live(&c->receivers)) {
        return weave__ret(-EBUSY);
    }
    free(c->buf);
    free(c);
    return 0;
}
