/*
 * sched.c - the core: the run queue, park and wake, the poll step.
 *
 * How control moves. weave_run's own stack (the root context) starts the
 * first task and gets control back only when no task is left. In between,
 * tasks hand the thread to each other directly: a task that parks, yields
 * or ends picks the next runnable task and switches straight to it, one
 * context switch per handoff. When the run queue is empty the parking task
 * itself waits in the poller, on its own stack, for a timer or an fd; if
 * what arrives wakes that same task, no switch happens at all. An ended
 * task cannot free the stack it is standing on, so it leaves itself in
 * s->dead and whichever context runs next frees it (weave__reap) before
 * anything else.
 *
 * Fairness rules (documented in weave.h):
 *   1. Runnable tasks run in FIFO order, in rounds: a round runs the tasks
 *      that were runnable when it began; tasks made runnable during it
 *      (yield, wake-ups, spawn) run in the next round.
 *   2. Between two rounds the scheduler fires expired timers, then polls
 *      fds without blocking if any task waits on one. A yield loop can
 *      therefore delay a timer or an fd by at most one round.
 *   3. One poll takes in at most WEAVE__POLL_BATCH events, and the tasks it
 *      wakes queue behind those already runnable, so a flood of fd events
 *      cannot starve runnable tasks.
 *   4. Only when no task is runnable does the scheduler block, until the
 *      earliest timer or the next fd event.
 *
 * The poll step knows nothing of fds or workers: each registered fd carries
 * a watcher, and an event is handed to it.
 */
#include "core/sched.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

_Thread_local struct weave__sched *weave__tls __attribute__((tls_model("initial-exec")));

/* Its address is the calling thread's token (struct weave__sched.home). */
static _Thread_local char thread_token __attribute__((tls_model("initial-exec")));

static _Noreturn void fatal(const char *what, int err)
{
    (void)fprintf(stderr, "weave: internal error: %s: %s\n", what, strerror(err));
    abort();
}

static void inbox_kicked(struct weave__sched *s, struct weave__watcher *w, int mask);

/* How far behind CLOCK_MONOTONIC the coarse clock may be: two of its ticks
 * (one, and one for a tick that comes late). -1 if it has none, or ticks
 * so seldom (over 10 ms) that it would rarely spare a read. */
static int64_t coarse_slack(void)
{
    struct timespec res;

    if (clock_getres(CLOCK_MONOTONIC_COARSE, &res) != 0 || res.tv_sec != 0 ||
        res.tv_nsec > 10000000)
        return -1;
    return 2 * (int64_t)res.tv_nsec;
}

int weave__sched_init(struct weave__sched *s, size_t default_stack)
{
    int r;

    memset(s, 0, sizeof(*s));
    s->inbox.efd = -1;
    weave__list_init(&s->runq);
    weave__list_init(&s->live);
    weave__timers_init(&s->timers);
    weave__stack_pool_init(&s->stacks);
    weave__handles_init(&s->handles);
    s->poller.epfd = -1;
    s->default_stack = default_stack;
    s->rng = 0x9e3779b97f4a7c15ull * s->handles.tag; /* never 0 */
    s->coarse_slack = coarse_slack();
    s->loop_ns = weave__clock_real_ns();
    if ((r = weave__poller_init(&s->poller)) < 0) {
        weave__sched_term(s);
        return r;
    }
    if ((r = weave__inbox_init(&s->inbox, &s->poller, inbox_kicked)) < 0) {
        weave__sched_term(s);
        return r;
    }
    return 0;
}

const void *weave__thread_token(void)
{
    return &thread_token;
}

/* The tokens of the threads running a scheduler now (bound to one): an
 * object whose home is not among them is idle, and anyone's to take. Only
 * the slow path of an ownership check looks here; binding and unbinding
 * change it. */
static struct {
    pthread_mutex_t lock;
    const void **tokens;
    size_t n, cap;
} homes = {.lock = PTHREAD_MUTEX_INITIALIZER};

static int home_enter(const void *token)
{
    int r = 0;

    pthread_mutex_lock(&homes.lock);
    if (homes.n == homes.cap) {
        size_t cap = homes.cap ? 2 * homes.cap : 16;
        const void **t = realloc(homes.tokens, cap * sizeof(*t));

        if (t) {
            homes.tokens = t;
            homes.cap = cap;
        }
    }
    if (homes.n < homes.cap)
        homes.tokens[homes.n++] = token;
    else
        r = -ENOMEM;
    pthread_mutex_unlock(&homes.lock);
    return r;
}

static void home_leave(const void *token)
{
    pthread_mutex_lock(&homes.lock);
    for (size_t i = 0; i < homes.n; i++)
        if (homes.tokens[i] == token) {
            homes.tokens[i] = homes.tokens[--homes.n];
            break;
        }
    if (homes.n == 0) { /* nothing kept while no scheduler runs */
        free(homes.tokens);
        homes.tokens = NULL;
        homes.cap = 0;
    }
    pthread_mutex_unlock(&homes.lock);
}

bool weave__home_busy(const void *token)
{
    bool busy = false;

    pthread_mutex_lock(&homes.lock);
    for (size_t i = 0; i < homes.n && !busy; i++)
        busy = homes.tokens[i] == token;
    pthread_mutex_unlock(&homes.lock);
    return busy;
}

int weave__sched_bind(struct weave__sched *s)
{
    int r;

    weave__ctx_root(&s->root);
    if (weave__ctx_template(&s->tmpl) != 0)
        return errno > 0 ? -errno : -ENOMEM;
    if ((r = home_enter(&thread_token)) < 0)
        return r;
    s->home = &thread_token;
    return 0;
}

void weave__sched_unbind(struct weave__sched *s)
{
    if (s->home)
        home_leave(s->home);
}

void weave__sched_term(struct weave__sched *s)
{
    /* Every task has ended; the records nobody joined (main's too) go with
     * the stacks they live on. */
    weave__handles_term(&s->handles);
    weave__inbox_term(&s->inbox, &s->poller);
    weave__poller_term(&s->poller);
    weave__stack_pool_term(&s->stacks);
    weave__timers_term(&s->timers);
}

/* ---- task records ------------------------------------------------------------ */

const char *weave__task_name(struct weave__task *t)
{
    if (!t->name[0]) {
        char digits[24];
        size_t n = 0, k = 0;
        uint64_t v = t->id;

        do
            digits[n++] = (char)('0' + v % 10);
        while ((v /= 10) != 0);
        memcpy(t->name, "task-", 5);
        for (k = 5; n > 0 && k < WEAVE_NAME_MAX - 1;)
            t->name[k++] = digits[--n];
        t->name[k] = '\0';
    }
    return t->name;
}

/* ---- the run queue and the live list -------------------------------------- */

static inline void runq_push(struct weave__sched *s, struct weave__task *t)
{
    t->state = WEAVE__READY;
    weave__list_push(&s->runq, &t->link);
    s->runq_len++;
}

/* The first task of the non-empty run queue, unlinked. */
static inline struct weave__task *runq_pop(struct weave__sched *s)
{
    struct weave_link *n = s->runq.next;

    s->runq.next = n->next;
    n->next->prev = &s->runq;
    s->runq_len--;
    return weave__container_of(n, struct weave__task, link);
}

void weave__live_add(struct weave__sched *s, struct weave__task *t)
{
    weave__list_push(&s->live, &t->live);
    s->live_count++;
    runq_push(s, t);
}

/* ---- park and wake --------------------------------------------------------- */

/* Take every clause of w out of its queue. */
static inline void unlink_clauses(struct weave__wait *w)
{
    for (unsigned i = 0; i < w->n; i++)
        weave__list_del(&w->clauses[i].link);
}

void weave__wake_claimed(struct weave__sched *s, struct weave__task *t, int why,
                         struct weave__waiter *fired)
{
    struct weave__wait *w = t->wait;

    if (t->state != WEAVE__PARKED)
        return;
    w->why = why;
    w->fired = fired;
    unlink_clauses(w);
    if (weave__timer_armed(&t->timer))
        weave__timers_remove(&s->timers, &t->timer);
    runq_push(s, t);
}

void weave__wake(struct weave__sched *s, struct weave__task *t, int why,
                 struct weave__waiter *fired)
{
    if (t->state != WEAVE__PARKED)
        return; /* woken already in this turn: the first reason stands */
    if (__builtin_expect(t->wait->claim != NULL, 0) &&
        __atomic_exchange_n(t->wait->claim, 1, __ATOMIC_ACQ_REL))
        return; /* completed by another thread: its wake-up is on its way */
    weave__wake_claimed(s, t, why, fired);
}

void weave__wake_served(struct weave__sched *s, struct weave__waiter *waiter, intptr_t value)
{
    waiter->value = value;
    weave__wake_claimed(s, waiter->task, WEAVE__WHY_EVENT, waiter);
}

bool weave__wake_waiter(struct weave__sched *s, struct weave__waiter *waiter, intptr_t value)
{
    if (!weave__waiter_claim(waiter))
        return false;
    weave__wake_served(s, waiter, value);
    return true;
}

void weave__park_for_claim(struct weave__sched *s)
{
    struct weave__task *t = s->current;
    struct weave__wait w;
    int64_t deadline = t->deadline;

    /* Neither a cancel nor a deadline may end this wait: lift both. */
    t->shields++;
    t->deadline = WEAVE__NO_DEADLINE;
    memset(&w, 0, sizeof(w));
    w.timeout = WEAVE__NO_DEADLINE;
    w.fd = -1;
    w.kind = WEAVE_WAIT_CHAN;
    (void)weave__park(s, &w);
    t->deadline = deadline;
    t->shields--;
}

void weave__cancel(struct weave__sched *s, struct weave__task *t)
{
    if (t->state == WEAVE__DONE)
        return;
    t->flags |= WEAVE__CANCELLED;
    if (t->shields == 0)
        weave__wake(s, t, WEAVE__WHY_CANCEL, NULL);
}

void weave__cancel_all(struct weave__sched *s)
{
    struct weave_link *n, *tmp;

    weave__list_each(n, tmp, &s->live)
        weave__cancel(s, weave__container_of(n, struct weave__task, live));
}

/* While a watchdog runs, tell its thread who runs now: relaxed stores,
 * plain moves, read from the watchdog's thread (t NULL: nobody, the
 * scheduler idles). */
static inline void publish_running(struct weave__sched *s, const struct weave__task *t)
{
    __atomic_store_n(&s->picks, s->picks + 1, __ATOMIC_RELAXED);
    __atomic_store_n(&s->running_id, t ? t->id : 0, __ATOMIC_RELAXED);
}

/* A timer fired: the call's own timeout, or the deadline of a scope,
 * whichever was earlier (the call's own on a tie). */
static void fire_timers(struct weave__sched *s, int64_t now)
{
    struct weave__timer *tm;

    while ((tm = weave__timers_expired(&s->timers, now)) != NULL) {
        struct weave__task *t = weave__container_of(tm, struct weave__task, timer);
        int why = t->wait->timeout <= t->deadline ? WEAVE__WHY_TIMEOUT : WEAVE__WHY_DEADLINE;

        weave__wake(s, t, why, NULL);
    }
}

/* Idle after a burst of tasks: give back the room the timer heap and the
 * handle table grew for it. The table's shrink scans it, so it is tried
 * again only after as many spawns as half its slots. */
static void trim_tables(struct weave__sched *s)
{
    bool shrunk = false;

    if (s->timers.cap > 256 && s->timers.cap / 4 > s->live_count + 1) {
        weave__timers_shrink(&s->timers, (size_t)s->live_count + 1);
        shrunk = true;
    }
    if (s->handles.nslots > 256 && s->live_count + s->zombie_count < s->handles.nslots / 4 &&
        s->spawned - s->trim_spawned >= s->handles.nslots / 2) {
        s->trim_spawned = s->spawned;
        weave__handles_shrink(&s->handles);
        shrunk = true;
    }
#ifdef __GLIBC__
    /* glibc keeps freed heap memory past a threshold that grows with the
     * large blocks it has seen: after a burst, hand it back too. */
    if (shrunk)
        (void)malloc_trim(0);
#else
    (void)shrunk;
#endif
}

/* A poller wait under the virtual clock: the deadline is translated to
 * real time, and the virtual clock advances by the real time waited. */
static int poll_virtual(struct weave__sched *s, int64_t deadline)
{
    int64_t t0 = weave__clock_real_ns();
    int64_t real = deadline;
    int n;

    if (deadline != WEAVE__POLL_NOW && deadline != WEAVE__POLL_FOREVER)
        real = deadline <= s->vnow                              ? WEAVE__POLL_NOW
               : deadline - s->vnow >= WEAVE__POLL_FOREVER - t0 ? WEAVE__POLL_FOREVER
                                                                : t0 + (deadline - s->vnow);
    n = weave__poller_wait(&s->poller, real);
    s->vnow += weave__clock_real_ns() - t0;
    return n;
}

void weave__sched_run_messages(struct weave__sched *s, struct weave__msg *m)
{
    while (m) {
        struct weave__msg *next = m->next; /* m may be freed by its fn */

        m->fn(s, m);
        m = next;
    }
}

/* Run the messages other threads sent (posts, remote wake-ups), in the
 * order each thread sent them: at most WEAVE__POLL_BATCH of them per look,
 * as for fd events, so that a flood of posts cannot starve the tasks that
 * run already; the rest wait in s->backlog for the next round. */
static void take_messages(struct weave__sched *s)
{
    struct weave__msg *m, *next;

    if (!s->backlog)
        s->backlog = weave__inbox_take(&s->inbox);
    for (int n = 0; (m = s->backlog) != NULL && n < WEAVE__POLL_BATCH; n++) {
        next = m->next; /* m may be freed by its fn */
        s->backlog = next;
        m->fn(s, m);
    }
}

/* Whether messages wait to be taken. */
static inline bool messages(const struct weave__sched *s)
{
    return s->backlog || weave__inbox_any(&s->inbox);
}

static void inbox_kicked(struct weave__sched *s, struct weave__watcher *w, int mask)
{
    (void)w;
    (void)mask;
    weave__inbox_kicked(&s->inbox);
    take_messages(s);
}

/* Hand the events of the last poller wait to their watchers. */
static void dispatch(struct weave__sched *s, int n)
{
    for (int i = 0; i < n; i++) {
        struct weave__watcher *w = weave__poller_data(&s->poller, i);
        w->fn(s, w, weave__poller_mask(&s->poller, i));
    }
}

/* A stepped scheduler's one look at the world per step: messages, expired
 * timers and fd events, without blocking. */
static void poll_once(struct weave__sched *s)
{
    int n;

    s->loop_ns = weave__clock_ns();
    s->clockless = 0;
    take_messages(s);
    if (weave__timers_any(&s->timers))
        fire_timers(s, s->loop_ns);
    while ((n = weave__poller_wait(&s->poller, WEAVE__POLL_NOW)) == -EINTR)
        ;
    if (n < 0)
        fatal("epoll_wait", -n);
    dispatch(s, n);
}

/*
 * Take in messages, expired timers and ready fds. With tasks runnable, poll
 * fds once without blocking (only if a task waits on one); with none, block
 * until something makes a task runnable. If nothing ever could (no timer,
 * fd, worker, remote waker, and no other thread can post), every task is
 * cancelled so that they all unwind, and weave_run reports EDEADLK.
 */
static void poll_step(struct weave__sched *s)
{
    bool polled = false;

    for (;;) {
        int64_t deadline;
        int n;

        s->loop_ns = weave__clock_ns();
        s->clockless = 0;
        if (messages(s))
            take_messages(s);
        if (weave__timers_any(&s->timers))
            fire_timers(s, s->loop_ns);
        if (s->runq_len > 0) {
            if (polled || (s->io_waiters == 0 && !s->always_poll))
                return;
            deadline = WEAVE__POLL_NOW;
        } else if (weave__timers_any(&s->timers)) {
            deadline = weave__timers_next(&s->timers);
        } else if (s->io_waiters > 0 || s->remote_waiters > 0 || s->reachable) {
            deadline = WEAVE__POLL_FOREVER;
        } else {
            if (!s->deadlocked && s->on_deadlock)
                s->on_deadlock(s); /* the task list, before it unwinds */
            s->deadlocked = true;
            s->shutting_down = true;
            weave__cancel_all(s);
            if (s->runq_len == 0)
                fatal("no task can run and none can be woken", EDEADLK);
            continue;
        }
        if (deadline != WEAVE__POLL_NOW) {
            if (s->watchdog)
                publish_running(s, NULL); /* idle is not a stall */
            if (weave__stack_trim_due(&s->stacks))
                weave__stack_trim(&s->stacks); /* hand back spare stack pages */
            trim_tables(s);
            if (!weave__inbox_idle(&s->inbox) || s->backlog) {
                weave__inbox_busy(&s->inbox); /* a message came: take it first */
                continue;
            }
        }
        if (s->vclock) {
            if (deadline != WEAVE__POLL_NOW && s->io_waiters == 0 && s->remote_waiters == 0 &&
                !s->reachable) {
                weave__inbox_busy(&s->inbox);
                s->vnow = deadline; /* only timers can wake anyone: jump */
                continue;
            }
            n = poll_virtual(s, deadline);
        } else {
            n = weave__poller_wait(&s->poller, deadline);
        }
        weave__inbox_busy(&s->inbox);
        polled = true;
        if (n < 0) {
            if (n != -EINTR)
                fatal("epoll_wait", -n);
            continue; /* a signal: recompute the time left and wait again */
        }
        dispatch(s, n);
    }
}

/*
 * Between two rounds of runnable tasks, whether the poll step may be
 * skipped: nothing to take in (no fd waiter, no message) and no timer due.
 * Reading the clock is then the costliest thing left: on a VM it costs
 * twice a whole task switch. So the clock is not read at all while no
 * timer is pending, for up to CLOCKLESS_MAX task runs (what a parked
 * task's `since` may then lag, for weave_tasks and the dump); and while
 * one is, the coarse clock (a third of the cost) says whether the earliest
 * can be due, and only then does the poll step read the real one. A timer
 * is never seen before it is due, and is seen at the first round after.
 */
#define CLOCKLESS_MAX 64

static inline bool quiet_round(struct weave__sched *s)
{
    int64_t now;

    if (s->io_waiters > 0 || s->always_poll || s->vclock || messages(s))
        return false;
    if (!weave__timers_any(&s->timers)) {
        if (s->clockless >= CLOCKLESS_MAX)
            return false;
        s->clockless += s->runq_len;
        return true;
    }
    if (s->coarse_slack < 0)
        return false;
    now = weave__clock_coarse_ns();
    if (now + s->coarse_slack >= weave__timers_next(&s->timers))
        return false;
    s->loop_ns = now; /* behind the real clock by less than the slack */
    s->clockless = 0;
    return true;
}

/* The start of a round, the slow way: a stall to report, a stepped
 * scheduler, or a poll step to make. false: a stepped scheduler has run
 * its round (go back to the stepping loop). */
static __attribute__((noinline)) bool new_round(struct weave__sched *s)
{
    if (__builtin_expect(s->watchdog != NULL, 0) &&
        __atomic_load_n(&s->stall_id, __ATOMIC_ACQUIRE) != 0)
        s->on_stall(s); /* the task it caught gives up the thread */
    while (s->round_left == 0) {
        if (__builtin_expect(s->stepping, 0)) {
            if (s->step_polled)
                return false;
            poll_once(s);
            s->step_polled = true;
            if ((s->round_left = s->runq_len) == 0)
                return false;
            break;
        }
        /* pick_next tried quiet_round already, unless a watchdog runs */
        if (s->runq_len == 0 || s->watchdog == NULL || !quiet_round(s))
            poll_step(s);
        s->round_left = s->runq_len;
    }
    return true;
}

/* The next task to run, or NULL when a stepped scheduler has run its round
 * (the caller then goes back to the stepping loop, s->root). A round is
 * the tasks runnable when it began; the next begins with a look at the
 * world (quiet_round, or the poll step). */
static inline struct weave__task *pick_next(struct weave__sched *s)
{
    struct weave__task *t;

    if (s->round_left == 0 || __builtin_expect(s->watchdog != NULL, 0)) {
        if (s->runq_len > 0 && !s->stepping && s->watchdog == NULL && quiet_round(s))
            s->round_left = s->runq_len;
        else if (!new_round(s))
            return NULL;
    }
    s->round_left--;
    t = runq_pop(s);
    t->state = WEAVE__RUNNING;
    if (__builtin_expect(s->watchdog != NULL, 0))
        publish_running(s, t);
    return t;
}

void weave__task_release(struct weave__sched *s, struct weave__task *t)
{
    struct weave__stack st = t->stack; /* the record is on it: copy first */

    if (!(t->flags & WEAVE__DETACHED))
        s->zombie_count--;
    weave__handle_free(&s->handles, t->slot);
    weave__stack_free(&s->stacks, &st);
}

void weave__reap_dead(struct weave__sched *s)
{
    struct weave__task *t = s->dead;

    s->dead = NULL;
    weave__ctx_destroy(&t->ctx);
    t->flags |= WEAVE__REAPED;
    if (t->flags & WEAVE__DETACHED)
        weave__task_release(s, t);
    else
        s->zombie_count++;
}

/* The current task has queued or parked itself: run the next one (or, in
 * a stepped scheduler whose round is over, go back to the stepping loop). */
static void run_next(struct weave__sched *s)
{
    struct weave__task *self = s->current;
    struct weave__task *next = pick_next(s);

    if (next == self)
        return;
    s->current = next;
    weave__ctx_switch(&self->ctx, next ? &next->ctx : &s->root);
    weave__reap(s);
}

int weave__park(struct weave__sched *s, struct weave__wait *w)
{
    struct weave__task *t = s->current;
    int64_t at = w->timeout < t->deadline ? w->timeout : t->deadline;

    /* A task cancelled while it was runnable was not woken by the cancel,
     * and one whose deadline passed while it ran was not woken by a timer:
     * refuse to park either, so that no loop of parks can miss them. */
    if (weave__cancel_applies(t))
        w->why = WEAVE__WHY_CANCEL;
    else if (t->deadline != WEAVE__NO_DEADLINE && t->deadline <= weave__clock_ns() &&
             t->deadline < w->timeout)
        w->why = WEAVE__WHY_DEADLINE;
    else {
        w->since = s->loop_ns;
        t->wait = w;
        t->state = WEAVE__PARKED;
        if (at != WEAVE__NO_DEADLINE)
            weave__timers_add(&s->timers, &t->timer, at);
        run_next(s);
        t->wait = NULL;
        return w->why;
    }
    unlink_clauses(w);
    return w->why;
}

void weave__yield(struct weave__sched *s)
{
    runq_push(s, s->current);
    run_next(s);
}

/* ---- starting and ending --------------------------------------------------- */

_Noreturn void weave__switch_exit(struct weave__sched *s, struct weave__task *t)
{
    struct weave__task *next = NULL;

    s->dead = t;
    if (s->live_count > 0)
        next = pick_next(s);
    s->current = next;
    weave__ctx_exit(&t->ctx, next ? &next->ctx : &s->root);
}

void weave__live_remove(struct weave__sched *s, struct weave__task *t)
{
    weave__list_del(&t->live);
    s->live_count--;
}

void weave__sched_loop(struct weave__sched *s)
{
    struct weave__task *first = pick_next(s);

    if (!first)
        return; /* a stepped scheduler with nothing to run */
    s->current = first;
    weave__ctx_switch(&s->root, &first->ctx);
    weave__reap(s);
}

int64_t weave__sched_next_ms(struct weave__sched *s)
{
    int64_t left;

    /* Something came while the step ran: the loop should step again at
     * once (a later send kicks the eventfd, which makes s's fd readable). */
    if (s->runq_len > 0 || s->backlog || !weave__inbox_idle(&s->inbox))
        return 0;
    if (!weave__timers_any(&s->timers))
        return -1;
    /* The fd becomes readable then too: the poller's timer is armed. */
    weave__poller_arm(&s->poller, weave__timers_next(&s->timers));
    left = weave__timers_next(&s->timers) - weave__clock_ns();
    return left <= 0 ? 0 : (left + 999999) / 1000000;
}

void weave__sched_step(struct weave__sched *s)
{
    s->stepping = true;
    s->step_polled = false;
    s->round_left = 0;
    weave__sched_loop(s);
    s->current = NULL;
}
