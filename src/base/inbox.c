/*
 * inbox.c - messages to a scheduler from any thread (inbox.h).
 *
 * The queue is a stack of messages linked through their next field, its
 * head swapped atomically: a send pushes with a compare-and-swap, the
 * taker exchanges the head for NULL (or for CLOSED, which ends sending)
 * and reverses what it got. Ordering: a send is a release of the message,
 * the taker's exchange an acquire, so the taker sees everything the sender
 * wrote before sending.
 *
 * A send counts itself in sending from before it publishes its message to
 * after its last look at the inbox: the scheduler that takes the message
 * may end at once, and its term waits for that count to fall to zero
 * before the memory goes (weave__inbox_quiesce).
 *
 * The kick (Dekker-style, both sides sequentially consistent): the taker
 * stores idle = 1 and then looks at the head; a sender pushes and then
 * looks at idle. At least one of them sees the other's store, so either
 * the taker does not block or the sender kicks. kicked makes one eventfd
 * write do for every send until the taker reads it.
 */
#include "base/inbox.h"

#include <errno.h>
#include <sched.h>
#include <stddef.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define CLOSED ((struct weave__msg *)(uintptr_t)1)

int weave__inbox_init(struct weave__inbox *ib, struct weave__poller *p, weave__watch_fn *on_kick)
{
    int r;

    ib->watcher.fn = on_kick;
    ib->head = NULL;
    ib->idle = 1; /* its taker has not run yet */
    ib->kicked = 0;
    ib->sending = 0;
    ib->kicks = 0;
    ib->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (ib->efd < 0)
        return errno > 0 ? -errno : -ENOMEM;
    if ((r = weave__poller_add(p, ib->efd, &ib->watcher, 1)) < 0) {
        close(ib->efd);
        ib->efd = -1;
        return r == -ENOSPC ? -ENOMEM : r;
    }
    return 0;
}

void weave__inbox_term(struct weave__inbox *ib, struct weave__poller *p)
{
    weave__inbox_quiesce(ib); /* a send may still be writing the eventfd */
    if (ib->efd < 0)
        return;
    weave__poller_del(p, ib->efd);
    close(ib->efd);
    ib->efd = -1;
}

void weave__inbox_quiesce(struct weave__inbox *ib)
{
    while (__atomic_load_n(&ib->sending, __ATOMIC_ACQUIRE) != 0)
        sched_yield();
}

int weave__inbox_send(struct weave__inbox *ib, struct weave__msg *m)
{
    struct weave__msg *h;

    /* Counted before m is published: once the taker has m, its scheduler
     * may end and free the inbox, while this send still reads it below. */
    __atomic_fetch_add(&ib->sending, 1, __ATOMIC_SEQ_CST);
    h = __atomic_load_n(&ib->head, __ATOMIC_RELAXED);
    do {
        if (h == CLOSED) {
            __atomic_fetch_sub(&ib->sending, 1, __ATOMIC_RELEASE);
            return -ESRCH;
        }
        m->next = h;
    } while (
        !__atomic_compare_exchange_n(&ib->head, &h, m, true, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED));
    if (__atomic_load_n(&ib->idle, __ATOMIC_SEQ_CST) &&
        !__atomic_exchange_n(&ib->kicked, 1, __ATOMIC_ACQ_REL)) {
        uint64_t one = 1;

        __atomic_fetch_add(&ib->kicks, 1, __ATOMIC_RELAXED);
        /* The counter cannot overflow before the taker reads it (it reads
         * it before kicked is cleared), so the write cannot fail but for a
         * closed fd, which the taker's term only does after close. */
        if (write(ib->efd, &one, sizeof(one)) != (ssize_t)sizeof(one)) {
            /* nothing to do: the taker looks at the queue every round */
        }
    }
    __atomic_fetch_sub(&ib->sending, 1, __ATOMIC_RELEASE);
    return 0;
}

/* The stack ms, newest first, as a list oldest first. */
static struct weave__msg *reverse(struct weave__msg *ms)
{
    struct weave__msg *out = NULL;

    while (ms) {
        struct weave__msg *next = ms->next;

        ms->next = out;
        out = ms;
        ms = next;
    }
    return out;
}

struct weave__msg *weave__inbox_take(struct weave__inbox *ib)
{
    struct weave__msg *h = __atomic_load_n(&ib->head, __ATOMIC_RELAXED);

    if (h == NULL || h == CLOSED)
        return NULL;
    return reverse(__atomic_exchange_n(&ib->head, NULL, __ATOMIC_ACQUIRE));
}

struct weave__msg *weave__inbox_close(struct weave__inbox *ib)
{
    struct weave__msg *h = __atomic_exchange_n(&ib->head, CLOSED, __ATOMIC_ACQUIRE);

    return h == CLOSED ? NULL : reverse(h);
}

bool weave__inbox_idle(struct weave__inbox *ib)
{
    struct weave__msg *h;

    __atomic_store_n(&ib->idle, 1, __ATOMIC_SEQ_CST);
    h = __atomic_load_n(&ib->head, __ATOMIC_SEQ_CST);
    return h == NULL || h == CLOSED;
}

void weave__inbox_kicked(struct weave__inbox *ib)
{
    uint64_t n;

    /* Read first, then clear: a send after the clear kicks again, and the
     * read of its write is still to come. */
    while (read(ib->efd, &n, sizeof(n)) < 0 && errno == EINTR)
        ;
    __atomic_store_n(&ib->kicked, 0, __ATOMIC_RELEASE);
}
