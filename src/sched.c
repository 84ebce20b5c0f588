/*
 * sched.c - tasks, the run queue, the loop, weave_run.
 *
 * How control moves. weave_run's own stack (the root context) starts the
 * first task and gets control back only when no task is left. In between,
 * tasks hand the thread to each other directly: a task that parks, yields
 * or ends picks the next runnable task and switches straight to it, one
 * swapcontext per handoff. When the run queue is empty the parking task
 * itself waits in epoll, on its own stack, for a timer or an fd; if what
 * arrives wakes that same task, no switch happens at all. An ended task
 * cannot free the stack it is standing on, so it leaves itself in
 * s->dead and whichever context runs next frees it (reap) before anything
 * else.
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
 */
#include "internal.h"

#include <assert.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

_Thread_local struct weave__sched *weave__tls __attribute__((tls_model("initial-exec")));

static_assert(sizeof(uintptr_t) >= 8, "weave handles need 64-bit pointers");

/*
 * A handle is the 64-bit value (tag << 48) | (gen << 24) | (slot + 1):
 *   tag   16 bits, the scheduler's run number mod 65535, plus 1: a handle
 *         from another thread's scheduler, or from an earlier run on this
 *         thread, names a different tag and is refused;
 *   gen   24 bits of the slot's generation, bumped when the slot is freed:
 *         a stale handle to a reused slot is refused. A run's slots start
 *         at a generation taken from the high part of its run number, so a
 *         run whose tag comes round again does not hand out the same
 *         handles either (the main task, say, always in slot 0);
 *   slot  24 bits: at most 2^24 - 1 tasks alive at once (spawn: ENOMEM).
 */
static atomic_uint_fast64_t next_run;

#define NO_SLOT   UINT32_MAX
#define MAX_SLOTS ((1u << 24) - 1)
#define GEN_MASK  0xffffffu

/* Bytes kept at the top of every stack for the task's saved context. */
#define CTX_BYTES ((sizeof(struct weave__ctx) + 63) & ~(size_t)63)

static _Noreturn void fatal(const char *what, int err)
{
    (void)fprintf(stderr, "weave: internal error: %s: %s\n", what, strerror(err));
    abort();
}

/* ---- handles ------------------------------------------------------------ */

static weave_task *handle_of(const struct weave__sched *s, const struct weave_task *t)
{
    uint64_t gen = s->slots[t->slot].gen & GEN_MASK;
    uint64_t h = ((uint64_t)s->tag << 48) | (gen << 24) | ((uint64_t)t->slot + 1);

    return (weave_task *)(uintptr_t)h;
}

static struct weave_task *task_of(const struct weave__sched *s, const weave_task *h)
{
    uint64_t v = (uint64_t)(uintptr_t)h;
    uint32_t slot = (uint32_t)(v & 0xffffffu) - 1; /* 0 wraps to NO_SLOT */
    const struct weave__slot *sl;

    if ((v >> 48) != s->tag || slot >= s->nslots)
        return NULL;
    sl = &s->slots[slot];
    if (!sl->task || (sl->gen & GEN_MASK) != ((v >> 24) & GEN_MASK))
        return NULL;
    return sl->task;
}

static int slot_alloc(struct weave__sched *s, struct weave_task *t)
{
    if (s->free_slot == NO_SLOT) {
        uint32_t n = s->nslots ? s->nslots * 2 : 64;
        struct weave__slot *v;

        if (s->nslots >= MAX_SLOTS)
            return -ENOMEM;
        if (n > MAX_SLOTS)
            n = MAX_SLOTS;
        v = realloc(s->slots, n * sizeof(*v));
        if (!v)
            return -ENOMEM;
        for (uint32_t i = s->nslots; i < n; i++) {
            v[i].task = NULL;
            v[i].gen = s->gen_seed;
            v[i].next_free = i + 1 < n ? i + 1 : NO_SLOT;
        }
        s->free_slot = s->nslots;
        s->slots = v;
        s->nslots = n;
    }
    t->slot = s->free_slot;
    s->free_slot = s->slots[t->slot].next_free;
    s->slots[t->slot].task = t;
    return 0;
}

static void slot_free(struct weave__sched *s, uint32_t i)
{
    s->slots[i].task = NULL;
    s->slots[i].gen++;
    s->slots[i].next_free = s->free_slot;
    s->free_slot = i;
}

/* Look up a handle for a public call: the scheduler and task, or -errno. */
static int lookup(const weave_task *h, struct weave__sched **sp, struct weave_task **tp)
{
    struct weave__sched *s = weave__tls;

    if (!s)
        return -EPERM;
    *sp = s;
    *tp = task_of(s, h);
    return *tp ? 0 : -ESRCH;
}

/* ---- run queue and the live list ---------------------------------------- */

static void runq_push(struct weave__sched *s, struct weave_task *t)
{
    t->state = WEAVE__READY;
    t->next = NULL;
    if (s->runq_tail)
        s->runq_tail->next = t;
    else
        s->runq_head = t;
    s->runq_tail = t;
    s->runq_len++;
}

static struct weave_task *runq_pop(struct weave__sched *s)
{
    struct weave_task *t = s->runq_head;

    s->runq_head = t->next;
    if (!s->runq_head)
        s->runq_tail = NULL;
    s->runq_len--;
    return t;
}

static void live_link(struct weave__sched *s, struct weave_task *t)
{
    t->live_prev = NULL;
    t->live_next = s->live;
    if (s->live)
        s->live->live_prev = t;
    s->live = t;
    s->live_count++;
}

static void live_unlink(struct weave__sched *s, struct weave_task *t)
{
    if (t->live_prev)
        t->live_prev->live_next = t->live_next;
    else
        s->live = t->live_next;
    if (t->live_next)
        t->live_next->live_prev = t->live_prev;
    s->live_count--;
}

/* ---- park and wake ------------------------------------------------------ */

void weave__wake(struct weave__sched *s, struct weave_task *t, int code)
{
    if (t->state != WEAVE__PARKED)
        return;
    t->wake = code;
    weave__timers_remove(&s->timers, &t->timer);
    runq_push(s, t);
}

/* Cancel every live task; wake those that are parked. */
static void cancel_all(struct weave__sched *s)
{
    for (struct weave_task *t = s->live; t; t = t->live_next) {
        t->flags |= WEAVE__CANCELLED;
        weave__wake(s, t, -ECANCELED);
    }
}

static void fire_timers(struct weave__sched *s, int64_t now)
{
    struct weave__timer *tm;

    while ((tm = weave__timers_expired(&s->timers, now)) != NULL) {
        struct weave_task *t =
            (struct weave_task *)(void *)((char *)tm - offsetof(struct weave_task, timer));
        weave__wake(s, t, -ETIMEDOUT);
    }
}

/*
 * Take in expired timers and ready fds. With tasks runnable, poll fds once
 * without blocking (only if a task waits on one); with none, block until
 * something makes a task runnable. If nothing ever could, every task is
 * cancelled so that they all unwind, and weave_run reports EDEADLK.
 */
static void poll_step(struct weave__sched *s)
{
    bool polled = false;

    for (;;) {
        int64_t deadline;
        int n;

        if (weave__timers_first(&s->timers))
            fire_timers(s, weave__clock_ns());
        if (s->runq_len > 0) {
            if (polled || (s->fd_waiters == 0 && s->external == 0))
                return;
            deadline = WEAVE__POLL_NOW;
        } else if (weave__timers_first(&s->timers)) {
            deadline = weave__timers_first(&s->timers)->deadline;
        } else if (s->fd_waiters > 0 || s->external > 0) {
            deadline = WEAVE__POLL_FOREVER;
        } else {
            s->deadlocked = true;
            s->shutting_down = true;
            cancel_all(s);
            if (s->runq_len == 0)
                fatal("no task can run and none is parked", EDEADLK);
            continue;
        }
        if (deadline != WEAVE__POLL_NOW && weave__stack_trim_due(&s->stacks))
            weave__stack_trim(&s->stacks); /* idle: hand back spare stack pages */
        n = weave__poller_wait(&s->poller, deadline);
        polled = true;
        if (n < 0) {
            if (n != -EINTR)
                fatal("epoll_wait", -n);
            continue; /* a signal: recompute the time left and wait again */
        }
        for (int i = 0; i < n; i++) {
            uint64_t cookie = weave__poller_cookie(&s->poller, i);
            if (cookie == WEAVE__COOKIE_OFFLOAD)
                weave__offload_event(s);
            else
                weave__fd_event(s, cookie, weave__poller_mask(&s->poller, i));
        }
    }
}

static struct weave_task *pick_next(struct weave__sched *s)
{
    while (s->round_left == 0) {
        poll_step(s);
        s->round_left = s->runq_len;
    }
    s->round_left--;
    return runq_pop(s);
}

static void task_release(struct weave__sched *s, struct weave_task *t)
{
    if (!(t->flags & WEAVE__DETACHED))
        s->zombie_count--;
    slot_free(s, t->slot);
    free(t);
}

/* Free the stack of the task that ended last, now that nobody runs on it. */
static void reap(struct weave__sched *s)
{
    struct weave_task *t = s->dead;

    if (!t)
        return;
    s->dead = NULL;
    weave__ctx_destroy(t->ctx);
    t->ctx = NULL;
    weave__stack_free(&s->stacks, &t->stack);
    if (t->flags & WEAVE__DETACHED)
        task_release(s, t);
    else
        s->zombie_count++;
}

/* The current task has queued or parked itself: run the next one. */
static void run_next(struct weave__sched *s)
{
    struct weave_task *self = s->current;
    struct weave_task *next = pick_next(s);

    next->state = WEAVE__RUNNING;
    if (next == self)
        return;
    s->current = next;
    weave__ctx_switch(self->ctx, next->ctx);
    reap(s);
}

int weave__park(struct weave__sched *s, int64_t deadline)
{
    struct weave_task *t = s->current;

    /* A task cancelled while it was runnable was not woken by the cancel:
     * refuse to park it, so that no loop of parks can miss a cancellation. */
    if (t->flags & WEAVE__CANCELLED)
        return -ECANCELED;
    t->state = WEAVE__PARKED;
    t->wake = 0;
    if (deadline != WEAVE__NO_DEADLINE)
        weave__timers_add(&s->timers, &t->timer, deadline);
    run_next(s);
    return t->wake;
}

void weave__yield(struct weave__sched *s)
{
    runq_push(s, s->current);
    run_next(s);
}

/* ---- task life ---------------------------------------------------------- */

static _Noreturn void task_exit(struct weave__sched *s, struct weave_task *t)
{
    struct weave__ctx *to;

    t->state = WEAVE__DONE;
    live_unlink(s, t);
    if (t->flags & WEAVE__MAIN) {
        s->shutting_down = true;
        cancel_all(s);
    }
    if (t->joiner)
        weave__wake(s, t->joiner, 0);
    s->dead = t;
    if (s->live_count == 0) {
        s->current = NULL;
        to = &s->root;
    } else {
        struct weave_task *next = pick_next(s);
        next->state = WEAVE__RUNNING;
        s->current = next;
        to = next->ctx;
    }
    weave__ctx_exit(t->ctx, to);
}

static void task_main(void *arg)
{
    struct weave_task *t = arg;
    struct weave__sched *s = weave__tls;

    reap(s);
    t->result = t->fn(t->arg);
    task_exit(s, t);
}

/* Make a task; returns it, or NULL with *err set to a negative errno. */
static struct weave_task *spawn(struct weave__sched *s, size_t stack_size, const char *name,
                                weave_fn fn, void *arg, int *err)
{
    struct weave_task *t;
    size_t total = weave__stack_round(&s->stacks, stack_size + CTX_BYTES);
    int r;

    /* Every task has at most one timer armed: keep the heap big enough for
     * all of them, so that arming one never fails. */
    r = weave__timers_reserve(&s->timers, (size_t)s->live_count + 1);
    if (r < 0 || !(t = calloc(1, sizeof(*t)))) {
        *err = -ENOMEM;
        return NULL;
    }
    if ((r = slot_alloc(s, t)) < 0) {
        free(t);
        *err = r;
        return NULL;
    }
    if ((r = weave__stack_alloc(&s->stacks, total, &t->stack)) < 0) {
        slot_free(s, t->slot);
        free(t);
        *err = r;
        return NULL;
    }
    t->ctx = (struct weave__ctx *)(void *)(t->stack.lo + t->stack.size - CTX_BYTES);
    weave__ctx_make(t->ctx, &s->tmpl, t->stack.lo, t->stack.size - CTX_BYTES, task_main, t);
    t->fn = fn;
    t->arg = arg;
    t->id = ++s->next_id;
    t->timer.index = WEAVE__TIMER_IDLE;
    if (name) {
        size_t len = strnlen(name, WEAVE_NAME_MAX - 1);
        memcpy(t->name, name, len);
        t->name[len] = '\0';
    } else {
        (void)snprintf(t->name, sizeof(t->name), "task-%llu", (unsigned long long)t->id);
    }
    if (s->shutting_down)
        t->flags |= WEAVE__CANCELLED;
    live_link(s, t);
    s->spawned++;
    runq_push(s, t);
    return t;
}

static int check_stack_size(size_t size)
{
    return size >= WEAVE_STACK_MIN && size <= WEAVE_STACK_MAX ? 0 : -EINVAL;
}

weave_task *weave_spawn_with(const weave_task_opts *opts, weave_fn fn, void *arg)
{
    struct weave__sched *s = weave__tls;
    size_t size;
    struct weave_task *t;
    int err;

    if (!fn || (opts && opts->stack_size && check_stack_size(opts->stack_size) < 0)) {
        errno = EINVAL;
        return NULL;
    }
    if (!s) {
        errno = EPERM;
        return NULL;
    }
    size = opts && opts->stack_size ? opts->stack_size : s->default_stack;
    t = spawn(s, size, opts ? opts->name : NULL, fn, arg, &err);
    if (!t) {
        errno = -err;
        return NULL;
    }
    return handle_of(s, t);
}

weave_task *weave_spawn(weave_fn fn, void *arg)
{
    return weave_spawn_with(NULL, fn, arg);
}

int weave_join(weave_task *h, void **result)
{
    struct weave__sched *s;
    struct weave_task *t, *self;
    int r = lookup(h, &s, &t);

    if (r < 0)
        return weave__ret(r);
    self = s->current;
    if (t == self)
        return weave__ret(-EDEADLK);
    if ((t->flags & (WEAVE__DETACHED | WEAVE__MAIN)) || t->joiner)
        return weave__ret(-EINVAL);
    if (t->state != WEAVE__DONE) {
        /* t cannot be released while we wait: only its joiner (us) could. */
        t->joiner = self;
        r = weave__park(s, WEAVE__NO_DEADLINE);
        t->joiner = NULL;
        if (r < 0)
            return weave__ret(r);
    }
    if (result)
        *result = t->result;
    task_release(s, t);
    return 0;
}

int weave_detach(weave_task *h)
{
    struct weave__sched *s;
    struct weave_task *t;
    int r = lookup(h, &s, &t);

    if (r < 0)
        return weave__ret(r);
    if ((t->flags & (WEAVE__DETACHED | WEAVE__MAIN)) || t->joiner)
        return weave__ret(-EINVAL);
    if (t->state == WEAVE__DONE && !t->ctx)
        task_release(s, t);
    else
        t->flags |= WEAVE__DETACHED;
    return 0;
}

int weave_cancel(weave_task *h)
{
    struct weave__sched *s;
    struct weave_task *t;
    int r = lookup(h, &s, &t);

    if (r < 0)
        return weave__ret(r);
    if (t->state != WEAVE__DONE) {
        t->flags |= WEAVE__CANCELLED;
        weave__wake(s, t, -ECANCELED);
    }
    return 0;
}

int weave_cancelled(const weave_task *h)
{
    struct weave__sched *s;
    struct weave_task *t;
    int r = lookup(h, &s, &t);

    if (r < 0)
        return weave__ret(r);
    return (t->flags & WEAVE__CANCELLED) != 0;
}

weave_task *weave_self(void)
{
    struct weave__sched *s = weave__tls;

    if (!s) {
        errno = EPERM;
        return NULL;
    }
    return handle_of(s, s->current);
}

const char *weave_task_name(const weave_task *h)
{
    struct weave__sched *s;
    struct weave_task *t;
    int r = lookup(h, &s, &t);

    if (r < 0) {
        errno = -r;
        return NULL;
    }
    return t->name;
}

uint64_t weave_task_id(const weave_task *h)
{
    struct weave__sched *s;
    struct weave_task *t;
    int r = lookup(h, &s, &t);

    if (r < 0) {
        errno = -r;
        return 0;
    }
    return t->id;
}

int weave_yield(void)
{
    struct weave__sched *s = weave__tls;

    if (!s)
        return weave__ret(-EPERM);
    weave__yield(s);
    return weave__cancelled(s) ? weave__ret(-ECANCELED) : 0;
}

int weave_get_stats(weave_stats *st)
{
    struct weave__sched *s = weave__tls;

    if (!st)
        return weave__ret(-EINVAL);
    if (!s)
        return weave__ret(-EPERM);
    memset(st, 0, sizeof(*st));
    st->tasks_live = s->live_count;
    st->tasks_zombie = s->zombie_count;
    st->tasks_spawned = s->spawned;
    st->timers_pending = s->timers.len;
    st->fd_waiters = s->fd_waiters;
    st->offload_waiters = s->external;
    st->offload_threads = weave__offload_threads(s);
    /* The offload pool's eventfd is weave's own, not one of the user's. */
    st->fds_registered = (uint64_t)s->poller.registered - (s->pool ? 1 : 0);
    st->stacks_in_use = s->stacks.in_use;
    st->stacks_cached = s->stacks.cached;
    st->stack_bytes_mapped = s->stacks.mapped_bytes;
    st->guard_mode = s->stacks.guard_mode;
    return 0;
}

/* ---- weave_run ---------------------------------------------------------- */

static void sched_free(struct weave__sched *s)
{
    for (uint32_t i = 0; i < s->nslots; i++)
        free(s->slots[i].task); /* zombies nobody joined, main included */
    free(s->slots);
    weave__offload_term(s);
    weave__fd_term(s);
    weave__poller_term(&s->poller);
    weave__stack_pool_term(&s->stacks);
    weave__timers_term(&s->timers);
    free(s);
}

/* A new scheduler, or NULL with *err set to a negative errno. */
static struct weave__sched *sched_new(const weave_run_opts *opts, int *err)
{
    struct weave__sched *s = calloc(1, sizeof(*s));
    uint64_t run;

    if (!s) {
        *err = -ENOMEM;
        return NULL;
    }
    weave__ctx_root(&s->root);
    weave__timers_init(&s->timers);
    weave__stack_pool_init(&s->stacks);
    s->free_slot = NO_SLOT;
    s->poller.epfd = -1;
    run = atomic_fetch_add(&next_run, 1);
    s->tag = (uint32_t)(run % 65535u) + 1u;
    s->gen_seed = (uint32_t)(run / 65535u);
    s->default_stack = opts->default_stack_size ? opts->default_stack_size : WEAVE_STACK_DEFAULT;
    s->offload_threads = opts->offload_threads ? opts->offload_threads : WEAVE_OFFLOAD_DEFAULT;
    if (weave__ctx_template(&s->tmpl) != 0) {
        *err = errno > 0 ? -errno : -ENOMEM;
        sched_free(s);
        return NULL;
    }
    if ((*err = weave__poller_init(&s->poller)) < 0) {
        sched_free(s);
        return NULL;
    }
    return s;
}

/* SIGPIPE as weave_run found it. */
struct sigpipe_state {
    sigset_t set;        /* just SIGPIPE */
    sigset_t old_mask;   /* the thread's mask before weave_run */
    bool pending_before; /* a SIGPIPE was pending already: not ours */
};

static bool sigpipe_pending(void)
{
    sigset_t pending;

    return sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE);
}

/* Block SIGPIPE before the context template is taken, so that every task
 * runs with it blocked: a write to a closed pipe or socket then fails with
 * EPIPE instead of killing the process. */
static void block_sigpipe(struct sigpipe_state *ps)
{
    sigemptyset(&ps->set);
    sigaddset(&ps->set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &ps->set, &ps->old_mask);
    ps->pending_before = sigpipe_pending();
}

/* Drop a SIGPIPE that a write left pending (it was reported as EPIPE
 * already), then unblock SIGPIPE unless the caller had it blocked. */
static void restore_sigpipe(const struct sigpipe_state *ps)
{
    if (!ps->pending_before && sigpipe_pending()) {
        struct timespec zero = {0, 0};
        (void)sigtimedwait(&ps->set, NULL, &zero);
    }
    if (!sigismember(&ps->old_mask, SIGPIPE))
        pthread_sigmask(SIG_UNBLOCK, &ps->set, NULL);
}

int weave_run_with(const weave_run_opts *opts, weave_fn main_fn, void *arg, void **result)
{
    static const weave_run_opts defaults;
    struct weave__sched *s = NULL;
    struct weave_task *main_task, *first;
    void *overflow = NULL;
    struct sigpipe_state sigpipe;
    int err;
    bool deadlocked;

    if (!opts)
        opts = &defaults;
    if (!main_fn || (opts->flags & ~(unsigned)WEAVE_NO_OVERFLOW_HANDLER) ||
        (opts->default_stack_size && check_stack_size(opts->default_stack_size) < 0) ||
        opts->offload_threads > WEAVE_OFFLOAD_MAX)
        return weave__ret(-EINVAL);
    if (weave__tls)
        return weave__ret(-EBUSY);
    block_sigpipe(&sigpipe);
    if (!(s = sched_new(opts, &err))) {
        restore_sigpipe(&sigpipe);
        return weave__ret(err);
    }
    weave__tls = s;
    main_task = spawn(s, s->default_stack, "main", main_fn, arg, &err);
    if (!main_task) {
        weave__tls = NULL;
        sched_free(s);
        restore_sigpipe(&sigpipe);
        return weave__ret(err);
    }
    main_task->flags |= WEAVE__MAIN;
    if (!(opts->flags & WEAVE_NO_OVERFLOW_HANDLER))
        overflow = weave__overflow_thread_begin();

    first = pick_next(s);
    first->state = WEAVE__RUNNING;
    s->current = first;
    weave__ctx_switch(&s->root, first->ctx);
    reap(s);
    /* Every task has ended; only zombies' records remain. */

    weave__overflow_thread_end(overflow);
    if (result)
        *result = main_task->result;
    deadlocked = s->deadlocked;
    weave__tls = NULL;
    sched_free(s);
    restore_sigpipe(&sigpipe);
    return deadlocked ? weave__ret(-EDEADLK) : 0;
}

int weave_run(weave_fn main_fn, void *arg, void **result)
{
    return weave_run_with(NULL, main_fn, arg, result);
}
