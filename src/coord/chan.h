/*
 * chan.h - what select needs of a channel (chan.c).
 */
#ifndef WEAVE_CHAN_H
#define WEAVE_CHAN_H

#include <stdbool.h>
#include <stddef.h>

#include "core/sched.h"
#include "weave.h"

/* Whether a send (a receive) on c can complete now: a partner waits, the
 * buffer has room (an element), or c is closed. */
bool weave__chan_send_ready(weave_chan *c);
bool weave__chan_recv_ready(weave_chan *c);

/* Complete a send (a receive) that is ready. Returns 0, -EPIPE, or -EAGAIN
 * when the waiters that made it ready were completed by another thread
 * (a select with shared channels) meanwhile. */
int weave__chan_send_now(struct weave__sched *s, weave_chan *c, const void *elem);
int weave__chan_recv_now(struct weave__sched *s, weave_chan *c, void *elem);

/* The queue where senders (send) or receivers wait; a waiter's data is
 * the element to send, or where a received one goes (NULL: dropped). */
struct weave_waitq *weave__chan_queue(weave_chan *c, bool send);

size_t weave__chan_elem_size(const weave_chan *c);

/* -EPERM outside a task (every channel call needs one), or if another
 * thread's tasks use c (decided by its home alone: weave__claim). */
int weave__chan_foreign(const struct weave__sched *s, weave_chan *c);

#endif /* WEAVE_CHAN_H */
