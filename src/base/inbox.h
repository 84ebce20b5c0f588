/*
 * inbox.h - messages to a scheduler from any thread: a lock-free queue
 * that many threads send to and one thread takes from, and an eventfd that
 * wakes the taker when it may be blocked (inbox.c).
 *
 * Why lock-free: a send is one compare-and-swap on the queue's head (a
 * Treiber stack, newest first) and never waits for another thread, not
 * even for one the kernel has descheduled while it held a lock; the taker
 * swaps the whole stack out at once and reverses it, so what one thread
 * sent comes out in the order it was sent. Messages are the senders' own
 * memory (intrusive): a send allocates nothing and cannot fail, but for a
 * closed inbox.
 *
 * Wake-ups are batched: the taker says when it may block (idle); a sender
 * writes the eventfd only if the taker is idle and nobody has written it
 * since the taker last read it. A busy taker costs senders no system call:
 * it looks at the queue's head once per round.
 *
 * This module knows nothing of tasks: a message is a function and a link.
 */
#ifndef WEAVE_INBOX_H
#define WEAVE_INBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/poller.h"

struct weave__sched;
struct weave__msg;

/* What a message does, on the taker's thread, when it is taken. */
typedef void weave__msg_fn(struct weave__sched *s, struct weave__msg *m);

struct weave__msg {
    struct weave__msg *next; /* in the queue */
    weave__msg_fn *fn;
};

struct weave__inbox {
    struct weave__watcher watcher; /* the eventfd's, in the poller */
    struct weave__msg *head;       /* atomic: sent, newest first; CLOSED once closed */
    int efd;                       /* the eventfd, or -1 */
    int idle;                      /* atomic: the taker may block; a send must kick */
    int kicked;                    /* atomic: the eventfd was written and not read since */
    int sending;                   /* atomic: sends under way; the inbox is not
                                      freed before they are done with it */
    uint64_t kicks;                /* eventfd writes, for the taker's figures (atomic) */
};

/* Make the inbox and register its eventfd with p behind on_kick (which must
 * call weave__inbox_kicked). It starts idle: until its taker first runs, a
 * send kicks the eventfd. 0 or -errno (EMFILE, ENFILE, ENOMEM). */
int weave__inbox_init(struct weave__inbox *ib, struct weave__poller *p, weave__watch_fn *on_kick);
void weave__inbox_term(struct weave__inbox *ib, struct weave__poller *p);

/* Wait until no send is under way (before the inbox's memory is freed). */
void weave__inbox_quiesce(struct weave__inbox *ib);

/* Send m (any thread). 0, or -ESRCH if the inbox is closed (m is not
 * taken: it is still the caller's). The inbox must be alive when the send
 * begins; the taker may free it as soon as it has taken m, which term
 * holds off until this send has let go of it. */
int weave__inbox_send(struct weave__inbox *ib, struct weave__msg *m);

/* Taker's side: whether anything waits (a relaxed look, for every round). */
static inline bool weave__inbox_any(const struct weave__inbox *ib)
{
    /* Neither NULL (nothing) nor CLOSED (1). */
    return (uintptr_t)__atomic_load_n(&ib->head, __ATOMIC_RELAXED) > 1;
}

/* Everything sent so far, oldest first (one thread's messages in the order
 * it sent them), linked through next; NULL if none. */
struct weave__msg *weave__inbox_take(struct weave__inbox *ib);

/* As take, and refuse every later send with ESRCH. */
struct weave__msg *weave__inbox_close(struct weave__inbox *ib);

/* Whether the inbox is closed (taker's side). */
static inline bool weave__inbox_closed(const struct weave__inbox *ib)
{
    return (uintptr_t)__atomic_load_n(&ib->head, __ATOMIC_RELAXED) == 1;
}

/* The taker is about to block: from now on a send kicks the eventfd.
 * Returns false if something was sent already (then do not block). */
bool weave__inbox_idle(struct weave__inbox *ib);

/* The taker is busy again: sends need not kick. */
static inline void weave__inbox_busy(struct weave__inbox *ib)
{
    __atomic_store_n(&ib->idle, 0, __ATOMIC_RELAXED);
}

/* The eventfd fired: read it, so that the next idle send kicks again. */
void weave__inbox_kicked(struct weave__inbox *ib);

#endif /* WEAVE_INBOX_H */
