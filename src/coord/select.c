/*
 * select.c - one wait over channel sends and receives, fds and task ends.
 *
 * First every case is checked; if some are ready, one of them is chosen
 * uniformly at random (reservoir sampling over the ready ones) and
 * completed. Otherwise the task puts one waiter per case into the case's
 * queue (the channel's senders or receivers, the fd's ready queue, the
 * task's end) and parks once. The first case to complete wakes it, and
 * that wake takes every other waiter out of its queue: a channel's waker
 * has already done the transfer, so exactly one case completes, and a
 * select that is cancelled or times out leaves no trace anywhere.
 *
 * Shared channels (shared.c) are locked, in address order, from the first
 * look at the cases until every waiter is in its queue, so that nothing
 * can complete in between unseen. A shared case that looked ready may find
 * its other side gone when it tries (claimed by another thread meanwhile):
 * it counts as not ready, and the choice is made again. A select with a
 * shared case waits as a party (shared.h): its wait has a claim, which its
 * local waiters carry too, so that it completes once whoever completes it.
 * A thread with no scheduler may select over shared channels alone.
 *
 * An fd case waits in the fd's ready queue without taking the fd's side:
 * it only watches, as weave_wait_fd's holder does, and is woken with it.
 */
#include "base/common.h"
#include "coord/chan.h"
#include "coord/shared.h"
#include "core/scope.h"
#include "core/time.h"
#include "io/fd.h"

#include <poll.h>
#include <stdlib.h>
#include <time.h>

#define LOCAL_CASES 16 /* waiters on the stack; more are malloc'ed */

static bool is_chan(const weave_select_case *c)
{
    return c->op == WEAVE_CASE_SEND || c->op == WEAVE_CASE_RECV;
}

static bool is_shared(const weave_select_case *c)
{
    return is_chan(c) && c->chan->shared;
}

/* Check case c and find its task record (TASK). s is NULL on a thread with
 * no scheduler, which may only use shared channels. Returns 0 or -errno. */
static int check_case(struct weave__sched *s, weave_select_case *c, struct weave__task **task)
{
    switch (c->op) {
    case WEAVE_CASE_SEND:
    case WEAVE_CASE_RECV:
        if (!c->chan || (c->op == WEAVE_CASE_SEND && !c->elem && weave__chan_elem_size(c->chan)))
            return -EINVAL;
        return c->chan->shared ? 0 : weave__chan_foreign(s, c->chan);
    case WEAVE_CASE_FD:
        if (c->events == 0 || (c->events & ~(WEAVE_IN | WEAVE_OUT)))
            return -EINVAL;
        if (!s)
            return -EPERM;
        return c->fd < 0 ? -EBADF : 0;
    case WEAVE_CASE_TASK:
        if (!s)
            return -EPERM;
        if (!(*task = weave__handle_task(&s->handles, c->task)))
            return -ESRCH;
        return *task == s->current ? -EDEADLK : 0;
    default:
        return -EINVAL;
    }
}

/* Whether case c can complete now; for an fd, its ready mask in *mask.
 * Returns 1, 0, or -errno (EBADF: the fd is not open). Shared channels are
 * locked. */
static int case_ready(weave_select_case *c, struct weave__task *task, int *mask)
{
    switch (c->op) {
    case WEAVE_CASE_SEND:
    case WEAVE_CASE_RECV:
        if (c->chan->shared)
            return weave__shared_ready(c->chan, c->op == WEAVE_CASE_SEND);
        return c->op == WEAVE_CASE_SEND ? weave__chan_send_ready(c->chan)
                                        : weave__chan_recv_ready(c->chan);
    case WEAVE_CASE_FD:
        *mask = weave__fd_poll(c->fd, c->events);
        return *mask < 0 ? *mask : *mask > 0;
    default:
        return task && task->state == WEAVE__DONE; /* check_case found it */
    }
}

/* Complete ready case c now: 0, or -EAGAIN if a channel's other side was
 * taken meanwhile (by another thread). c->err says how it completed. */
static int complete(struct weave__sched *s, weave_select_case *c, int mask)
{
    int r = 0;

    if (is_chan(c)) {
        bool send = c->op == WEAVE_CASE_SEND;

        if (c->chan->shared)
            r = weave__shared_now(c->chan, c->elem, send);
        else
            r = send ? weave__chan_send_now(s, c->chan, c->elem)
                     : weave__chan_recv_now(s, c->chan, c->elem);
        if (r == -EAGAIN)
            return r;
    } else if (c->op == WEAVE_CASE_FD) {
        c->events = mask;
    }
    c->err = -r;
    return 0;
}

/* A number for fair choices: the scheduler's generator, or, on a thread
 * with none, one of the thread's own (xorshift64*, seeded per thread). */
static uint64_t random_for(struct weave__sched *s)
{
    static _Thread_local uint64_t x;

    if (s)
        return weave__random(s);
    if (!x)
        x = ((uint64_t)(uintptr_t)&x ^ (uint64_t)clock()) | 1;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    return x * 0x2545f4914f6cdd1dull;
}

/* Lock the shared channels of the cases, each once, in address order. */
static int cmp_chan(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) * (weave_chan *const *)a, y = (uintptr_t) * (weave_chan *const *)b;

    return x < y ? -1 : x > y;
}

struct locks {
    weave_chan *local[LOCAL_CASES];
    weave_chan **chans; /* distinct shared channels, sorted */
    size_t n;
};

static int lock_shared(struct locks *l, weave_select_case *cases, size_t n)
{
    size_t k = 0;

    l->chans = l->local;
    for (size_t i = 0; i < n; i++)
        k += is_shared(&cases[i]);
    l->n = 0;
    if (k == 0)
        return 0;
    /* An array of pointers (clang-tidy takes sizeof(T *) for a mistake). */
    if (k > LOCAL_CASES &&
        !(l->chans = malloc(k * sizeof(*l->chans)))) // NOLINT(bugprone-sizeof-expression)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        if (is_shared(&cases[i]))
            l->chans[l->n++] = cases[i].chan;
    qsort(l->chans, l->n, sizeof(*l->chans), cmp_chan); // NOLINT(bugprone-sizeof-expression)
    k = 0;
    for (size_t i = 0; i < l->n; i++)
        if (i == 0 || l->chans[i] != l->chans[k - 1])
            l->chans[k++] = l->chans[i];
    l->n = k;
    for (size_t i = 0; i < l->n; i++)
        weave__shared_lock(l->chans[i]);
    return 0;
}

static void unlock_shared(struct locks *l)
{
    for (size_t i = l->n; i > 0; i--)
        weave__shared_unlock(l->chans[i - 1]);
    l->n = 0;
    if (l->chans != l->local)
        free(l->chans);
    l->chans = l->local;
}

/* Put the waiters for case c in their queues: w[0], and w[1] for an fd
 * case waiting in both directions (else it stays unlinked), or sw for a
 * shared channel. st: an fd case's record, watched already. */
static void enqueue(struct weave__sched *s, weave_select_case *c, struct weave__task *task,
                    struct weave__fd *st, struct weave__waiter w[2], struct weave__shwaiter *sw,
                    struct weave__party *party)
{
    weave__list_init(&w[0].link);
    weave__list_init(&w[1].link);
    switch (c->op) {
    case WEAVE_CASE_SEND:
    case WEAVE_CASE_RECV:
        if (c->chan->shared)
            weave__shared_enqueue(c->chan, sw, party, c->elem, c->op == WEAVE_CASE_SEND);
        else
            weave__queue_push(s, weave__chan_queue(c->chan, c->op == WEAVE_CASE_SEND), w, c->elem);
        break;
    case WEAVE_CASE_FD:
        if (c->events & WEAVE_IN)
            weave__queue_push(s, &st->ready[0], &w[0], NULL);
        if (c->events & WEAVE_OUT)
            weave__queue_push(s, &st->ready[1], &w[c->events & WEAVE_IN ? 1 : 0], NULL);
        break;
    default:
        weave__queue_push(s, &task->ended, w, NULL);
        break;
    }
}

/* The memory a waiting select needs: on the stack for a few cases. */
struct waiters {
    struct weave__waiter local[2 * LOCAL_CASES], *w;
    struct weave__shwaiter local_sw[LOCAL_CASES], *sw;
};

static int waiters_get(struct waiters *m, size_t n, bool shared)
{
    m->w = m->local;
    m->sw = m->local_sw;
    if (n > LOCAL_CASES && !(m->w = malloc(2 * n * sizeof(*m->w))))
        return -ENOMEM;
    if (n > LOCAL_CASES && shared && !(m->sw = malloc(n * sizeof(*m->sw)))) {
        free(m->w);
        return -ENOMEM;
    }
    return 0;
}

static void waiters_put(struct waiters *m)
{
    if (m->w != m->local)
        free(m->w);
    if (m->sw != m->local_sw)
        free(m->sw);
}

/* Wait on every case, with the shared channels locked (this unlocks
 * them). Returns the index that completed, or -errno. Case i waits with
 * the waiters w[2i] and w[2i + 1], or with a shared waiter. */
static int wait_cases(struct weave__sched *s, weave_select_case *cases, size_t n,
                      struct weave__task **tasks, int64_t timeout, struct locks *locks)
{
    struct weave__party party;
    struct waiters m;
    struct weave__wait wait;
    bool io = false;
    size_t i, nsw = 0;
    int r = 0, why, fired = -1;

    if ((r = waiters_get(&m, n, locks->n > 0)) < 0)
        return r;
    /* What can fail first, before anything is in a queue: the fd records
     * (kept, for now, in the waiters' data). */
    for (i = 0; i < n; i++)
        m.w[2 * i].data = NULL;
    for (i = 0; i < n && r == 0; i++)
        if (cases[i].op == WEAVE_CASE_FD) {
            m.w[2 * i].data = weave__fd_watch(s, cases[i].fd, &r);
            io = true;
        }
    if (r < 0) {
        waiters_put(&m);
        return r;
    }
    weave__party_init(&party, s);
    for (i = 0; i < n; i++) {
        struct weave__shwaiter *sw = &m.sw[nsw];

        enqueue(s, &cases[i], tasks[i], m.w[2 * i].data, &m.w[2 * i], sw, &party);
        if (is_shared(&cases[i]))
            sw[0].index = (int)i, nsw++;
    }
    if (locks->n > 0) /* local waiters complete the party's wait too */
        for (i = 0; i < 2 * n; i++)
            m.w[i].claim = &party.claim;
    unlock_shared(locks);
    if (s)
        weave__wait_init(&wait, m.w, (unsigned)(2 * n), timeout, WEAVE_WAIT_SELECT, cases);
    if (io) {
        s->io_waiters++;
        s->fds->waiters++;
    }
    if (nsw > 0) {
        if (s)
            wait.claim = &party.claim;
        fired = weave__party_wait(s, &party, m.sw, nsw, &wait, timeout);
        why = s ? wait.why : WEAVE__WHY_TIMEOUT;
    } else {
        why = weave__park(s, &wait);
    }
    if (io) {
        s->io_waiters--;
        s->fds->waiters--;
    }
    if (fired >= 0) {
        weave_select_case *c = &cases[m.sw[fired].index];

        c->err = party.err;
        r = m.sw[fired].index;
    } else if (why == WEAVE__WHY_EVENT || why == WEAVE__WHY_CLOSED) {
        weave_select_case *c = &cases[(wait.fired - m.w) / 2];

        c->err = 0;
        if (why == WEAVE__WHY_CLOSED)
            c->err = c->op == WEAVE_CASE_FD ? EBADF : EPIPE;
        else if (c->op == WEAVE_CASE_FD)
            c->events = weave__fd_mask(c->events, (int)wait.fired->value);
        r = (int)((wait.fired - m.w) / 2);
    } else {
        r = weave__why_errno(why);
    }
    waiters_put(&m);
    return r;
}

/* Pick one ready case at random and complete it; a shared case whose
 * other side went meanwhile drops out and the choice is made again.
 * Returns its index, -1 if none is ready, or -errno. */
static int pick_ready(struct weave__sched *s, weave_select_case *cases, size_t n,
                      struct weave__task **tasks, bool *gone)
{
    for (;;) {
        int pick = -1, pick_mask = 0;
        size_t nready = 0;

        for (size_t i = 0; i < n; i++) {
            int mask = 0, ready;

            if (gone[i])
                continue;
            if ((ready = case_ready(&cases[i], tasks[i], &mask)) < 0)
                return ready;
            if (ready && random_for(s) % ++nready == 0) {
                pick = (int)i; /* each ready case wins with probability 1/nready */
                pick_mask = mask;
            }
        }
        if (pick < 0 || complete(s, &cases[pick], pick_mask) == 0)
            return pick;
        gone[pick] = true;
    }
}

static int select_cases(weave_select_case *cases, size_t n, int64_t timeout_ms)
{
    struct weave__sched *s = weave__tls;
    struct weave__task *local[LOCAL_CASES], **tasks = local;
    bool local_gone[LOCAL_CASES], *gone = local_gone;
    int64_t timeout = weave__deadline_in(timeout_ms, 1000000);
    struct locks locks = {.n = 0};
    size_t i, nshared = 0;
    int r;

    if (timeout < 0 || (n > 0 && !cases) || n > INT32_MAX)
        return -EINVAL;
    for (i = 0; i < n; i++)
        nshared += is_chan(&cases[i]) && cases[i].chan && cases[i].chan->shared;
    if (!s && (n == 0 || nshared < n))
        return -EPERM; /* a thread with no scheduler: shared channels only */
    if (n > LOCAL_CASES &&
        (!(tasks = malloc(n * sizeof(*tasks))) || // NOLINT(bugprone-sizeof-expression)
         !(gone = calloc(n, sizeof(*gone))))) {
        free(tasks);
        return -ENOMEM;
    }
    for (i = 0; i < n; i++) {
        tasks[i] = NULL;
        gone[i] = false;
    }
    for (i = 0, r = 0; i < n && r == 0; i++)
        r = check_case(s, &cases[i], &tasks[i]);
    if (r == 0 && s)
        r = weave__checkpoint(s);
    if (r == 0)
        r = lock_shared(&locks, cases, n);
    if (r == 0 && (r = pick_ready(s, cases, n, tasks, gone)) == -1) {
        if (timeout_ms == 0) {
            r = -ETIMEDOUT;
        } else {
            r = wait_cases(s, cases, n, tasks, timeout, &locks); /* unlocks */
        }
    }
    unlock_shared(&locks);
    if (tasks != local) {
        free(tasks);
        free(gone);
    }
    return r;
}

WEAVE__ENTRY int weave_select(weave_select_case *cases, size_t n, int64_t timeout_ms)
{
    WEAVE__SCOPES_CHECK();
    return weave__ret(select_cases(cases, n, timeout_ms));
}
