/*
 * sched.h - the core (sched.c): task records, the scheduler, park and wake.
 *
 * Every blocking call of weave is one shape (libdill's clauses): the task
 * puts waiters ("clauses") into zero or more wait queues, then parks with a
 * struct weave__wait naming them and its own timeout. Whoever wakes it says
 * why (enum weave__why), and the wake takes every clause out of its queue at
 * once, in O(1) each, so no later waker can pick the task again:
 *
 *     WEAVE__WHY_EVENT     an event on a clause: w->fired names which one,
 *                          and the clause's value carries the waker's news
 *     WEAVE__WHY_TIMEOUT   the call's own timeout passed
 *     WEAVE__WHY_DEADLINE  a deadline scope of the task passed
 *     WEAVE__WHY_CANCEL    the task was cancelled (and no shield is up)
 *     WEAVE__WHY_CLOSED    what it waited on went away (an fd weave_close'd)
 *
 * The first wake wins: a task woken twice in one loop turn (an event and
 * its timeout, say) sees only the first reason. One timer per task serves
 * both the call's timeout and its scopes' deadline: it is armed at the
 * earlier of the two, and the fire says which one it was.
 *
 * Invariant: a waiter is linked into a queue exactly while its task is
 * parked in a wait that lists it; weave__park returns with every clause
 * unlinked, whatever the reason.
 */
#ifndef WEAVE_SCHED_H
#define WEAVE_SCHED_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "base/context.h"
#include "base/handle.h"
#include "base/inbox.h"
#include "base/list.h"
#include "base/poller.h"
#include "base/stack.h"
#include "base/timer.h"
#include "weave.h"

#define WEAVE__NO_DEADLINE INT64_MAX /* no timeout, no deadline */

enum weave__task_state {
    WEAVE__READY,   /* on the run queue */
    WEAVE__RUNNING, /* the current task */
    WEAVE__PARKED,  /* waiting for a wake */
    WEAVE__DONE     /* its function returned */
};

enum weave__task_flag {
    WEAVE__CANCELLED = 1u << 0, /* weave_cancel was called */
    WEAVE__DETACHED = 1u << 1,  /* release on exit, nobody joins */
    WEAVE__MAIN = 1u << 2,      /* weave_run's main task */
    WEAVE__JOINING = 1u << 3,   /* a task waits in weave_join for it */
    WEAVE__REAPED = 1u << 4     /* ended, and no context runs on its stack */
};

enum weave__why {
    WEAVE__WHY_EVENT = 0, /* an event on a clause (see the top of this file) */
    WEAVE__WHY_TIMEOUT,
    WEAVE__WHY_DEADLINE,
    WEAVE__WHY_CANCEL,
    WEAVE__WHY_CLOSED
};

/* A wait queue, struct weave_waitq (weave.h): waiters in FIFO order. */

/* A task's place in one wait queue (a clause of its wait). */
struct weave__waiter {
    struct weave_link link;   /* in the queue, while the task waits */
    struct weave__task *task; /* the waiting task */
    void *data;               /* the queue owner's: an element buffer, ... */
    intptr_t value;           /* the waker's news, read after WEAVE__WHY_EVENT */
    int *claim;               /* its wait's claim (below), or NULL */
};

/* What a parked task waits for. Lives on the parked task's stack. */
struct weave__wait {
    struct weave__waiter *clauses; /* [n], linked by the caller before parking */
    unsigned n;
    int why;                     /* enum weave__why, set by the wake */
    struct weave__waiter *fired; /* EVENT or CLOSED: the clause that fired */
    int64_t timeout;             /* the call's own deadline (ns), or WEAVE__NO_DEADLINE */
    int64_t since;               /* when it parked: the scheduler's clock at its
                                    last look (ns; see quiet_round, sched.c) */
    const void *object;          /* what it waits on, for weave_tasks: a channel,
                                    a lock, the task joined ... or NULL */
    int fd;                      /* the fd, for WEAVE_WAIT_FD; else -1 */
    uint8_t kind;                /* enum weave_wait_kind */
    int *claim;                  /* NULL; or, for a wait that other threads may
                                    complete too (a select with a shared
                                    channel), a flag every waker must swap
                                    from 0 to 1 before it may wake the task */
};

/*
 * An open deadline scope or shield, as the task keeps it (deadline.c):
 * everything needed to end, report or drop it without reading the user's
 * struct, which may lie in a frame that has returned, or in one where the
 * compiler inlined the function that began it and its lifetime is over.
 */
struct weave__scope {
    uintptr_t p;       /* the user's struct, | its kind (low bits) */
    const void *where; /* the return address of its begin */
    int64_t deadline;  /* the task's deadline while it is the innermost */
#ifdef WEAVE_ASAN
    uintptr_t place; /* where on the task's stack its frame is: ASan may
                        have put the struct in a fake frame elsewhere */
#endif
};

/*
 * A task record, internal: users hold handles (weave_task *), which
 * handle.c maps to records. The record, its saved context included, lives
 * at the top of the task's own stack, so that spawning allocates nothing
 * but a stack and a task touches one page to start; the stack (and the
 * record) is given back when the task is released: at once when a detached
 * task ends, else when it is joined or weave_run returns.
 */
struct weave__task {
    struct weave_link link;    /* run queue, while READY */
    struct weave_link live;    /* the scheduler's tasks not yet ended */
    struct weave__stack stack; /* its stack, while it has one */
    struct weave__timer timer; /* armed while a timed park is pending */
    struct weave__wait *wait;  /* what it waits for, while PARKED */
    struct weave_waitq ended;  /* tasks waiting for it to end */
    weave_fn fn;               /* the task's function and argument */
    void *arg;
    void *result;               /* fn's return value, once DONE */
    uintptr_t scope_low;        /* lowest address of an open scope on
                                          this task's stack, UINTPTR_MAX if none
                                          (deadline.c: below the caller's stack
                                          pointer, it was popped) */
    int64_t deadline;           /* earliest deadline of the scopes that apply */
    uint32_t shields;           /* shields open */
    uint32_t nscopes;           /* open scopes: scopes[0 .. nscopes) */
    struct weave__sched *sched; /* the scheduler it belongs to */
    struct weave_group *group;  /* the group it is a member of, or NULL */
    uint32_t slot;              /* index in the handle table */
    uint64_t id;                /* 1 = main, then spawn order */
    uint64_t key;               /* unique among the live tasks of every
                                          scheduler: the run's tag << 48 | id */
    uint8_t state;              /* enum weave__task_state */
    uint8_t flags;              /* enum weave__task_flag */
    struct weave__ctx ctx;      /* saved context, while it runs */
    char name[WEAVE_NAME_MAX];  /* NUL-terminated; "" until asked: task-<id> */
    /* Last, and never zeroed: only scopes[0 .. nscopes) is ever read. */
    struct weave__scope scopes[WEAVE_SCOPE_MAX]; /* open scopes, oldest first */
};

struct weave__sched;

/* What the core tells the layers above, through functions they register
 * in the scheduler: the core calls up into nothing by name. */
typedef void weave__sched_hook(struct weave__sched *s);

struct weave__fdtab;
struct weave__offload;
struct weave__uring;
struct weave__signals;
struct weave__procs;
struct weave__watchdog;

struct weave__sched {
    struct weave__ctx root;      /* the thread's own stack (weave_run) */
    struct weave__task *current; /* running task */
    struct weave_link runq;      /* READY tasks, FIFO */
    size_t runq_len;             /* tasks on it */
    size_t round_left;           /* tasks left to run before polling */
    struct weave_link live;      /* tasks not yet ended */
    uint64_t live_count;         /* their number */
    struct weave__task *dead;    /* ended task whose stack is not freed */
    uint64_t zombie_count;       /* ended, not yet joined */
    uint64_t spawned;            /* tasks ever spawned */
    uint64_t trim_spawned;       /* spawned when the handle table was last
                                    offered a shrink */
    uint64_t next_id;            /* id of the last task spawned */
    uint64_t io_waiters;         /* parked tasks an fd or worker event may wake */
    uint64_t remote_waiters;     /* parked tasks another thread may wake (a
                                    message in the inbox, looked at every
                                    round: no poll needed for them) */
    struct weave__handles handles;
    struct weave__timers timers;
    struct weave__poller poller;
    struct weave__inbox inbox;  /* messages from other threads */
    struct weave__msg *backlog; /* taken from it, not run yet (oldest
                                   first): for the next round */
    const void *home;           /* its thread's token, once bound: what
                                         the objects of its tasks belong to */
    struct weave__stack_pool stacks;
    struct weave__fdtab *fds;                         /* fd.c's table */
    struct weave__offload *offload;                   /* offload.c's pool */
    struct weave__uring *uring;                       /* uring.c: the io_uring of regular
                                         files, made on first use; NULL before */
    uint8_t file_io_path;                             /* enum weave_file_io_path: where
                                         regular-file I/O goes (uring.c) */
    const char *resolve_error;                        /* net.c: gai_strerror of the last failed
                                         name resolution, NULL if none */
    const char *tls_error;                            /* tls.c: why the last TLS call failed,
                                         NULL if none */
    size_t default_stack;                             /* usable bytes for weave_spawn */
    uint64_t rng;                                     /* state of weave__random */
    bool shutting_down;                               /* main returned: cancel everything */
    bool deadlocked;                                  /* nothing could ever wake */
    bool vclock;                                      /* WEAVE_VIRTUAL_CLOCK: time is vnow */
    bool reachable;                                   /* other threads may post to it: waiting
                                         for that is not a deadlock */
    bool stepping;                                    /* driven by weave_sched_step */
    bool step_polled;                                 /* this step has taken in events */
    int64_t loop_ns;                                  /* the clock at the poll step's last look
                                         at it (see quiet_round, sched.c) */
    uint64_t clockless;                               /* task runs since the clock was read */
    int64_t coarse_slack;                             /* how far CLOCK_MONOTONIC_COARSE may lag
                                         CLOCK_MONOTONIC (ns); -1: not used */
    bool always_poll;                                 /* poll between rounds even with no fd
                                       waiter (a watched signal's signalfd) */
    struct weave__procs *procs;                       /* proc.c: child processes, made on
                                         first use; NULL before */
    struct weave__signals *signals;                   /* signal.c: signalfd and waiters, made
                                         on first use; NULL before */
    struct weave__watchdog *watchdog;                 /* watchdog.c: the watchdog thread */
    weave__sched_hook *on_deadlock;                   /* no task can ever be woken: called
                                         once, before every task is
                                         cancelled (introspect.c); or NULL */
    weave__sched_hook *on_stall;                      /* a task the watchdog reported gives
                                         up the thread (watchdog.c) */
    bool (*on_stop)(struct weave__sched *s, int sig); /* a first stop
                                         signal cancelled main (signal.c);
                                         true: one stopped it already
                                         elsewhere (a second one); or NULL */
    uint64_t picks;                                   /* tasks picked to run (the watchdog
                                         reads it from its thread) */
    uint64_t running_id;                              /* id of the running task; 0 idle */
    uint64_t stall_id;                                /* a task the watchdog reported */
    int64_t stall_since;                              /* when that task began to run */
    int64_t vnow;                                     /* the virtual clock, ns */
    struct weave__ctx_tmpl tmpl;                      /* what every new context starts from */
};

/* The scheduler running on this thread, or NULL. initial-exec keeps reads
 * cheap and safe in the stack overflow handler. */
extern _Thread_local struct weave__sched *weave__tls __attribute__((tls_model("initial-exec")));

/* CLOCK_MONOTONIC, in ns: what the poller's timerfd counts in. */
static inline int64_t weave__clock_real_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* CLOCK_MONOTONIC_COARSE, in ns: the monotonic clock at the last tick,
 * behind CLOCK_MONOTONIC by less than a tick, and three times cheaper to
 * read on a VM. */
static inline int64_t weave__clock_coarse_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The scheduler's clock, in ns: CLOCK_MONOTONIC, or the virtual clock of a
 * scheduler run with WEAVE_VIRTUAL_CLOCK (poll_step moves it). Every
 * timeout, deadline and weave_now reads this one. */
static inline int64_t weave__clock_ns(void)
{
    const struct weave__sched *s = weave__tls;

    if (__builtin_expect(s != NULL && s->vclock, 0))
        return s->vnow;
    return weave__clock_real_ns();
}

/* now + delta_ns, or WEAVE__NO_DEADLINE when that does not fit. */
static inline int64_t weave__deadline_after(int64_t delta_ns)
{
    int64_t now = weave__clock_ns();

    return delta_ns >= WEAVE__NO_DEADLINE - now ? WEAVE__NO_DEADLINE : now + delta_ns;
}

/* ---- life of a scheduler and its tasks (sched.c) ------------------------- */

/* Set up s: its run queue, timers, poller, inbox, stacks and handle table,
 * on any thread. Returns 0 or a negative errno; on failure s holds
 * nothing. */
int weave__sched_init(struct weave__sched *s, size_t default_stack);

/* The calling thread's token: what struct weave__sched.home is on it. */
const void *weave__thread_token(void);

/* Whether the thread of token runs a scheduler now (bound to one). */
bool weave__home_busy(const void *token);

/* Make s ready to run on the calling thread, which it then never leaves:
 * the thread's own context, and the template of new contexts (taken from
 * the thread, its signal mask included). 0 or a negative errno. */
int weave__sched_bind(struct weave__sched *s);

/* Undo weave__sched_bind's mark of the thread as running a scheduler. */
void weave__sched_unbind(struct weave__sched *s);

/* Free what s holds, the records of tasks nobody joined included. */
void weave__sched_term(struct weave__sched *s);

/* Count a new task t as live and queue it to run. */
void weave__live_add(struct weave__sched *s, struct weave__task *t);

/* t has ended: it is no longer live. */
void weave__live_remove(struct weave__sched *s, struct weave__task *t);

/* Leave the ended current task t for good: run the next task, or return to
 * weave_run's stack when no task is left. */
_Noreturn void weave__switch_exit(struct weave__sched *s, struct weave__task *t);

/* Free the stack of the task that ended last; the first thing any context
 * does after a switch. */
void weave__reap_dead(struct weave__sched *s);

static inline void weave__reap(struct weave__sched *s)
{
    if (s->dead)
        weave__reap_dead(s);
}

/* From the thread's own stack: run tasks until every one has ended. */
void weave__sched_loop(struct weave__sched *s);

/* From the thread's own stack: one step of an embedded scheduler (stepping
 * from then on): take in messages, expired timers and fd events once, run
 * the tasks runnable then, and return without blocking. */
void weave__sched_step(struct weave__sched *s);

/* After a step: how long the stepping loop may wait before the next one,
 * in ms (0: a task can run now; -1: only an fd event or a message can wake
 * anyone); from then on a message makes s's poller fd readable, and so
 * does the earliest timer. */
int64_t weave__sched_next_ms(struct weave__sched *s);

/* Run messages m (a list, oldest first) on s's thread. */
void weave__sched_run_messages(struct weave__sched *s, struct weave__msg *m);

/* t's name: the one given at spawn, or "task-<id>" (made on first use). */
const char *weave__task_name(struct weave__task *t);

/* Release an ended task's record (joined, or detached). */
void weave__task_release(struct weave__sched *s, struct weave__task *t);

/* Mark t cancelled; wake it if it is parked and no shield is up. */
void weave__cancel(struct weave__sched *s, struct weave__task *t);

/* Cancel every live task. */
void weave__cancel_all(struct weave__sched *s);

/* ---- park and wake (sched.c) --------------------------------------------- */

/* Suspend the current task until one of w's clauses (already linked into
 * their queues) is woken, w->timeout passes, a deadline scope passes, or
 * the task is cancelled. Returns w->why; every clause is unlinked. Refuses
 * to park, returning at once, a task that is cancelled (unshielded) or
 * whose deadline has passed. */
int weave__park(struct weave__sched *s, struct weave__wait *w);

/* Whether the caller may serve waiter (complete its wait, then wake it
 * with weave__wake_served): always for a plain wait; for one with a claim
 * only if this call takes it. A waiter that cannot be served (its wait is
 * being completed by another thread) is taken out of its queue. */
static inline bool weave__waiter_claim(struct weave__waiter *waiter)
{
    if (__builtin_expect(waiter->claim == NULL, 1) ||
        !__atomic_exchange_n(waiter->claim, 1, __ATOMIC_ACQ_REL))
        return true;
    weave__list_del(&waiter->link);
    return false;
}

/* Wake the task waiting in waiter (linked into a queue, claimed) with
 * WEAVE__WHY_EVENT, handing it value. */
void weave__wake_served(struct weave__sched *s, struct weave__waiter *waiter, intptr_t value);

/* weave__waiter_claim, then weave__wake_served; whether it woke it. */
bool weave__wake_waiter(struct weave__sched *s, struct weave__waiter *waiter, intptr_t value);

/* Wake t, if it is parked, for why (fired: the clause, for EVENT/CLOSED);
 * for a wait with a claim, only if this takes it. */
void weave__wake(struct weave__sched *s, struct weave__task *t, int why,
                 struct weave__waiter *fired);

/* Wake t, if it is parked, for why (fired: the clause, or NULL for an
 * event outside its clauses, such as a shared channel's), when the caller
 * has taken its wait's claim (or it has none). */
void weave__wake_claimed(struct weave__sched *s, struct weave__task *t, int why,
                         struct weave__waiter *fired);

/* Park until weave__wake_claimed, whatever cancellation or deadlines say:
 * for a task whose wait another thread claimed while it stopped waiting,
 * and whose wake-up (a message pointing into its stack) is on its way. */
void weave__park_for_claim(struct weave__sched *s);

/* Put the current task at the back of the run queue and run the others. */
void weave__yield(struct weave__sched *s);

/* The key of task id of s (struct weave__task.key): what a weave_mutex
 * records as its owner, so that another scheduler's task with the same id
 * is not taken for the owner. The tag in its top 16 bits names the run. */
static inline uint64_t weave__task_key(const struct weave__sched *s, uint64_t id)
{
    return ((uint64_t)s->handles.tag << 48) | (id & ((1ull << 48) - 1));
}

/* Whether owner (a task key) is a task of s. */
static inline bool weave__key_of(const struct weave__sched *s, uint64_t owner)
{
    return (owner >> 48) == s->handles.tag;
}

/* A pseudo-random number (xorshift64*) from the scheduler's own generator,
 * seeded per run: for choices that must be fair (select). */
static inline uint64_t weave__random(struct weave__sched *s)
{
    uint64_t x = s->rng;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    s->rng = x;
    return x * 0x2545f4914f6cdd1dull;
}

/* ---- the checks every blocking call makes --------------------------------- */

/* Whether cancellation applies to t now (cancelled, and no shield up). */
static inline bool weave__cancel_applies(const struct weave__task *t)
{
    return (t->flags & WEAVE__CANCELLED) && t->shields == 0;
}

/* At the start of a blocking call: -ECANCELED if the task is cancelled (and
 * unshielded), -ETIMEDOUT if a deadline scope has passed, else 0. Reads the
 * clock only while a deadline scope applies. */
static inline __attribute__((always_inline)) int weave__checkpoint(const struct weave__sched *s)
{
    const struct weave__task *t = s->current;

    if (weave__cancel_applies(t))
        return -ECANCELED;
    if (t->deadline != WEAVE__NO_DEADLINE && weave__clock_ns() >= t->deadline)
        return -ETIMEDOUT;
    return 0;
}

/* The errno of a wake reason: 0 for an event, else what the call reports. */
static inline int weave__why_errno(int why)
{
    static const int err[] = {0, -ETIMEDOUT, -ETIMEDOUT, -ECANCELED, -EBADF};

    return err[why];
}

#endif /* WEAVE_SCHED_H */
