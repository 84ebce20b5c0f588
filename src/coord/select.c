/*
 * select.c - one wait over channel sends and receives, fds and task ends.
 *
 * First every case is checked; if some are ready, one of them is chosen
 * uniformly at random (reservoir sampling over the ready ones, with the
 * scheduler's generator) and completed. Otherwise the task puts one waiter
 * per case into the case's queue (the channel's senders or receivers, the
 * fd's ready queue, the task's end) and parks once. The first case to
 * complete wakes it, and that wake takes every other waiter out of its
 * queue: a channel's waker has already done the transfer, so exactly one
 * case completes, and a select that is cancelled or times out leaves no
 * trace anywhere.
 *
 * An fd case waits in the fd's ready queue without taking the fd's side:
 * it only watches, as weave_wait_fd's holder does, and is woken with it.
 */
#include "base/common.h"
#include "core/scope.h"
#include "coord/chan.h"
#include "core/time.h"
#include "io/fd.h"

#include <poll.h>
#include <stdlib.h>

#define LOCAL_CASES 16 /* waiters on the stack; more are malloc'ed */

/* Check case c and find its task record (TASK). Returns 0 or -errno. */
static int check_case(struct weave__sched *s, weave_select_case *c, struct weave__task **task)
{
    switch (c->op) {
    case WEAVE_CASE_SEND:
    case WEAVE_CASE_RECV:
        if (!c->chan || (c->op == WEAVE_CASE_SEND && !c->elem && weave__chan_elem_size(c->chan)))
            return -EINVAL;
        return weave__chan_foreign(s, c->chan);
    case WEAVE_CASE_FD:
        if (c->events == 0 || (c->events & ~(WEAVE_IN | WEAVE_OUT)))
            return -EINVAL;
        return c->fd < 0 ? -EBADF : 0;
    case WEAVE_CASE_TASK:
        if (!(*task = weave__handle_task(&s->handles, c->task)))
            return -ESRCH;
        return *task == s->current ? -EDEADLK : 0;
    default:
        return -EINVAL;
    }
}

/* Whether case c can complete now; for an fd, its ready mask in *mask.
 * Returns 1, 0, or -errno (EBADF: the fd is not open). */
static int case_ready(weave_select_case *c, struct weave__task *task, int *mask)
{
    switch (c->op) {
    case WEAVE_CASE_SEND:
        return weave__chan_send_ready(c->chan);
    case WEAVE_CASE_RECV:
        return weave__chan_recv_ready(c->chan);
    case WEAVE_CASE_FD:
        *mask = weave__fd_poll(c->fd, c->events);
        return *mask < 0 ? *mask : *mask > 0;
    default:
        return task->state == WEAVE__DONE;
    }
}

/* Complete ready case c now. */
static void complete(struct weave__sched *s, weave_select_case *c, int mask)
{
    int r = 0;

    if (c->op == WEAVE_CASE_SEND)
        r = weave__chan_send_now(s, c->chan, c->elem);
    else if (c->op == WEAVE_CASE_RECV)
        r = weave__chan_recv_now(s, c->chan, c->elem);
    else if (c->op == WEAVE_CASE_FD)
        c->events = mask;
    c->err = -r;
}

/* Put the waiters for case c in their queues: w[0], and w[1] for an fd
 * case waiting in both directions (else it stays unlinked). Returns 0 or
 * -errno. */
static int enqueue(struct weave__sched *s, weave_select_case *c, struct weave__task *task,
                   struct weave__waiter w[2], bool *io)
{
    struct weave__fd *st;
    int r;

    weave__list_init(&w[1].link);
    switch (c->op) {
    case WEAVE_CASE_SEND:
        weave__queue_push(s, weave__chan_queue(c->chan, true), w, c->elem);
        return 0;
    case WEAVE_CASE_RECV:
        weave__queue_push(s, weave__chan_queue(c->chan, false), w, c->elem);
        return 0;
    case WEAVE_CASE_FD:
        if (!(st = weave__fd_watch(s, c->fd, &r)))
            return r;
        if (c->events & WEAVE_IN)
            weave__queue_push(s, &st->ready[0], &w[0], NULL);
        if (c->events & WEAVE_OUT)
            weave__queue_push(s, &st->ready[1], &w[c->events & WEAVE_IN ? 1 : 0], NULL);
        *io = true;
        return 0;
    default:
        weave__queue_push(s, &task->ended, w, NULL);
        return 0;
    }
}

/* Park on every case; returns the index that completed, or -errno. Case
 * i waits with the waiters w[2i] and w[2i + 1]. */
static int wait_cases(struct weave__sched *s, weave_select_case *cases, size_t n,
                      struct weave__task **tasks, int64_t timeout)
{
    struct weave__waiter local[2 * LOCAL_CASES], *w = local;
    struct weave__wait wait;
    bool io = false;
    size_t i, k = 0;
    int r = 0, why;

    if (n > LOCAL_CASES && !(w = malloc(2 * n * sizeof(*w))))
        return -ENOMEM;
    for (i = 0; i < n && r == 0; i++) {
        r = enqueue(s, &cases[i], tasks[i], &w[2 * i], &io);
        if (r == 0)
            k = 2 * (i + 1);
    }
    weave__wait_init(&wait, w, (unsigned)k, timeout, WEAVE_WAIT_SELECT, cases);
    if (r < 0) {
        for (i = 0; i < k; i++)
            weave__list_del(&w[i].link);
        goto out;
    }
    if (io) {
        s->io_waiters++;
        s->fds->waiters++;
    }
    why = weave__park(s, &wait);
    if (io) {
        s->io_waiters--;
        s->fds->waiters--;
    }
    if (why == WEAVE__WHY_EVENT || why == WEAVE__WHY_CLOSED) {
        weave_select_case *c = &cases[(wait.fired - w) / 2];
        c->err = 0;
        if (why == WEAVE__WHY_CLOSED)
            c->err = c->op == WEAVE_CASE_FD ? EBADF : EPIPE;
        else if (c->op == WEAVE_CASE_FD)
            c->events = weave__fd_mask(c->events, (int)wait.fired->value);
        r = (int)((wait.fired - w) / 2);
    } else {
        r = weave__why_errno(why);
    }
out:
    if (w != local)
        free(w);
    return r;
}

static int select_cases(weave_select_case *cases, size_t n, int64_t timeout_ms)
{
    struct weave__sched *s = weave__tls;
    struct weave__task *local[LOCAL_CASES], **tasks = local;
    int64_t timeout = weave__deadline_in(timeout_ms, 1000000);
    int r, pick = -1, pick_mask = 0;
    size_t i, nready = 0;

    if (timeout < 0 || (n > 0 && !cases) || n > INT32_MAX)
        return -EINVAL;
    if (!s)
        return -EPERM;
    if (n > LOCAL_CASES && !(tasks = malloc(n * sizeof(struct weave__task *))))
        return -ENOMEM;
    for (i = 0, r = 0; i < n && r == 0; i++) {
        tasks[i] = NULL;
        r = check_case(s, &cases[i], &tasks[i]);
    }
    if (r == 0)
        r = weave__checkpoint(s);
    for (i = 0; i < n && r == 0; i++) {
        int mask = 0, ready = case_ready(&cases[i], tasks[i], &mask);

        if (ready < 0) {
            r = ready;
        } else if (ready && weave__random(s) % ++nready == 0) {
            pick = (int)i; /* each ready case wins with probability 1/nready */
            pick_mask = mask;
        }
    }
    if (r == 0 && pick >= 0) {
        complete(s, &cases[pick], pick_mask);
        r = pick;
    } else if (r == 0 && timeout_ms == 0) {
        r = -ETIMEDOUT;
    } else if (r == 0) {
        r = wait_cases(s, cases, n, tasks, timeout);
    }
    if (tasks != local)
        free(tasks);
    return r;
}

WEAVE__ENTRY int weave_select(weave_select_case *cases, size_t n, int64_t timeout_ms)
{
    WEAVE__SCOPES_CHECK();
    return weave__ret(select_cases(cases, n, timeout_ms));
}
