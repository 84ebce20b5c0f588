/*
 * shared.h - shared channels (shared.c): the channel contract across
 * schedulers and plain threads, and what select needs of them.
 */
#ifndef WEAVE_SHARED_H
#define WEAVE_SHARED_H

#include <stdbool.h>
#include <stdint.h>

#include "base/inbox.h"
#include "coord/ring.h"
#include "core/sched.h"
#include "weave.h"

/*
 * Who waits on shared channels: a task of some scheduler, or a thread with
 * none. One party per blocking call (a select's cases share it). Its claim
 * is what makes the wait complete once: whoever completes it (a taker on
 * any thread, or the task's own scheduler for a timeout, a cancel or a
 * local case) first swaps it from 0 to 1.
 */
struct weave__party {
    int claim;                     /* atomic: 0 open, 1 taken */
    struct weave__sched *sched;    /* the task's scheduler, or NULL: a thread */
    struct weave__task *task;      /* the waiting task */
    struct weave__msg wake;        /* to sched, from a taker on another thread */
    struct weave__shwaiter *fired; /* the clause that completed, set under
                                      its channel's lock; NULL if none */
    int err;                       /* with fired: 0, or EPIPE (closed) */
    int done;                      /* a thread: set once fired (a futex) */
};

/* A party's place in one shared channel's queue. */
struct weave__shwaiter {
    struct weave_link link;     /* in senders or receivers, under the lock */
    struct weave__party *party; /* who waits */
    void *elem;                 /* send: the element; receive: where it goes */
    weave_chan *chan;
    bool send;
    int index; /* the caller's: a select's case */
};

/* Make c's shared part: 0 or -ENOMEM. Free it (nobody waits). */
int weave__shared_init(weave_chan *c);
void weave__shared_free(weave_chan *c);

/* The channel calls on a shared channel, from a task or a thread with no
 * scheduler. mode is chan.c's: 0 never wait (EAGAIN), 1 a cancellation
 * point that never waits (ETIMEDOUT), 2 wait, until timeout (absolute ns,
 * or WEAVE__NO_DEADLINE). 0 or -errno. */
int weave__shared_op(weave_chan *c, void *elem, bool send, int mode, int64_t timeout);
int weave__shared_close(weave_chan *c);
size_t weave__shared_len(weave_chan *c);

/* For weave_chan_free: -EBUSY if a party waits on c; 1 if only waiters of
 * parties completed elsewhere are left, which take them out as they wake;
 * 0 if none is. */
int weave__shared_drained(weave_chan *c);

/* For select: lock and unlock c (in address order, when several). */
void weave__shared_lock(weave_chan *c);
void weave__shared_unlock(weave_chan *c);

/* Under the lock: whether an operation looks ready (it may still find the
 * other side gone when it tries); and try it: 0, -EPIPE, or -EAGAIN (not
 * ready after all). */
bool weave__shared_ready(weave_chan *c, bool send);
int weave__shared_now(weave_chan *c, void *elem, bool send);

/* Under the lock: put w in c's queue for party. */
void weave__shared_enqueue(weave_chan *c, struct weave__shwaiter *w, struct weave__party *party,
                           void *elem, bool send);

/* Make party ready to wait, for the calling task of s (or a thread: s
 * NULL). */
void weave__party_init(struct weave__party *party, struct weave__sched *s);

/* Wait with party until a shared clause fires, or, for a task, until its
 * wait w (whose local clauses, if any, carry party's claim) is woken; a
 * thread waits until timeout (absolute ns, or WEAVE__NO_DEADLINE) or
 * forever. Every shared waiter ws[0 .. n) is linked when it is called, and
 * unlinked when it returns, so that nothing refers to the party any more.
 * Returns the index of the shared waiter that fired (party->err says how),
 * or -1: for a task, w->why and w->fired say why; for a thread, the
 * timeout passed. */
int weave__party_wait(struct weave__sched *s, struct weave__party *party,
                      struct weave__shwaiter *ws, size_t n, struct weave__wait *w, int64_t timeout);

#endif /* WEAVE_SHARED_H */
