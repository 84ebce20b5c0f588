/*
 * internal.h - the seams between weave's modules.
 *
 * Data flows one way: the public calls (time.c, fd.c, ...) sit on the
 * scheduler (sched.c), and the scheduler on context.c, stack.c, timer.c and
 * poller_epoll.c, none of which knows about the others. Non-static internals
 * are prefixed weave__; errno is set only at the public boundary, internals
 * return 0 or a negative errno value.
 *
 * The core of every blocking call is one pair:
 *
 *     weave__park(s, deadline)    suspend the current task
 *     weave__wake(s, t, code)     make a parked task runnable again
 *
 * A blocking primitive records the current task where its waker will find
 * it (an fd slot, a joiner pointer, ...), parks, and on return removes that
 * record if it is still there. Sleep, fd waits and joins differ only in who
 * calls weave__wake; a timeout is a wake by the timer heap with -ETIMEDOUT,
 * and cancellation a wake with -ECANCELED.
 */
#ifndef WEAVE_INTERNAL_H
#define WEAVE_INTERNAL_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>
#include <ucontext.h>

#include "context.h"
#include "poller.h"
#include "stack.h"
#include "timer.h"
#include "weave.h"

#define WEAVE__NO_DEADLINE    INT64_MAX /* park without a timer */
#define WEAVE_OFFLOAD_DEFAULT 4         /* offload threads unless told */
#define WEAVE_OFFLOAD_MAX     1024      /* more is refused with EINVAL */

enum weave__task_state {
    WEAVE__READY,   /* on the run queue */
    WEAVE__RUNNING, /* the current task */
    WEAVE__PARKED,  /* waiting for weave__wake */
    WEAVE__DONE     /* its function returned */
};

enum weave__task_flag {
    WEAVE__CANCELLED = 1u << 0, /* weave_cancel was called */
    WEAVE__DETACHED = 1u << 1,  /* release on exit, nobody joins */
    WEAVE__MAIN = 1u << 2       /* weave_run's main task */
};

/*
 * A task record. Its saved context lives at the top of its stack (the stack
 * and context go away together when the task ends); the record outlives
 * them until the task is joined, detached or weave_run returns.
 */
struct weave_task {
    struct weave_task *next;      /* run queue link */
    struct weave_task *live_prev; /* list of tasks not yet ended */
    struct weave_task *live_next;
    struct weave__ctx *ctx;    /* saved context; NULL once ended */
    struct weave__stack stack; /* its stack, while it has one */
    struct weave__timer timer; /* armed while a timed park is pending */
    weave_fn fn;               /* the task's function and argument */
    void *arg;
    void *result;              /* fn's return value, once DONE */
    struct weave_task *joiner; /* task parked in weave_join on this */
    uint64_t id;               /* 1 = main, then spawn order */
    uint32_t slot;             /* index in the handle table */
    uint8_t state;             /* enum weave__task_state */
    uint8_t flags;             /* enum weave__task_flag */
    int wake;                  /* code handed over by weave__wake */
    char name[WEAVE_NAME_MAX]; /* NUL-terminated */
};

/* A handle table slot. Handles given to users encode (tag, gen, slot), so a
 * stale or foreign handle is recognised and refused, never dereferenced. */
struct weave__slot {
    struct weave_task *task; /* NULL when free */
    uint32_t gen;            /* bumped each time the slot is freed */
    uint32_t next_free;      /* free list link */
};

enum weave__fd_kind {
    WEAVE__FD_UNKNOWN = 0, /* not used for I/O yet (or forgotten) */
    WEAVE__FD_POLL = 1,    /* pollable; weave made it O_NONBLOCK */
    WEAVE__FD_FILE = 2     /* regular file or block device: not pollable */
};

/* What weave keeps per fd it has waited on or done I/O on (fd.c). */
struct weave__fd {
    struct weave_task *waiter[2]; /* parked for input [0], output [1] */
    uint32_t gen;                 /* bumped by forget; cookies carry it */
    uint8_t registered;           /* in the poller */
    uint8_t kind;                 /* enum weave__fd_kind */
    uint8_t no_nowait_read;       /* preadv2(RWF_NOWAIT) unsupported here */
    uint8_t no_nowait_write;      /* pwritev2(RWF_NOWAIT) unsupported here */
    uint8_t short_drains;         /* a short read empties it: TCP, pipes */
    uint8_t drained;              /* a short read emptied it, no input since */
    uint8_t read_closed;          /* the peer hung up, or an error came */
};

struct weave__pool;

struct weave__sched {
    struct weave__ctx root;       /* the thread's own stack (weave_run) */
    struct weave_task *current;   /* running task */
    struct weave_task *runq_head; /* FIFO of READY tasks */
    struct weave_task *runq_tail;
    size_t runq_len;
    size_t round_left;       /* tasks left to run before polling */
    struct weave_task *live; /* tasks not yet ended */
    struct weave_task *dead; /* ended task whose stack is not freed */
    uint64_t live_count;
    uint64_t zombie_count; /* ended, not yet joined */
    uint64_t spawned;      /* tasks ever spawned */
    uint64_t next_id;
    struct weave__slot *slots; /* handle table */
    uint32_t nslots;
    uint32_t free_slot; /* head of the free slot list */
    uint32_t tag;       /* this scheduler's handle tag */
    uint32_t gen_seed;  /* first generation of new slots */
    struct weave__timers timers;
    struct weave__poller poller;
    struct weave__stack_pool stacks;
    struct weave__fd *fds; /* indexed by fd number */
    size_t nfds;
    uint64_t fd_waiters;      /* tasks parked on fds */
    uint64_t external;        /* tasks parked on the offload pool */
    struct weave__pool *pool; /* offload workers, once started */
    unsigned offload_threads; /* most workers the pool may start */
    size_t default_stack;     /* usable bytes for weave_spawn */
    bool shutting_down;       /* main returned: cancel everything */
    bool deadlocked;          /* nothing could ever wake */
    ucontext_t tmpl;          /* copied into every new context */
};

/* The scheduler running on this thread, or NULL. initial-exec keeps reads
 * cheap and safe in the stack overflow handler. */
extern _Thread_local struct weave__sched *weave__tls __attribute__((tls_model("initial-exec")));

static inline int64_t weave__clock_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* now + delta_ns, or WEAVE__NO_DEADLINE when that does not fit. */
static inline int64_t weave__deadline_after(int64_t delta_ns)
{
    int64_t now = weave__clock_ns();

    return delta_ns >= WEAVE__NO_DEADLINE - now ? WEAVE__NO_DEADLINE : now + delta_ns;
}

/* The deadline of a public timeout of amount units of unit_ns: an absolute
 * CLOCK_MONOTONIC time, WEAVE__NO_DEADLINE for -1 (or too large to
 * represent), or -EINVAL if amount < -1 (deadlines are never negative). */
int64_t weave__deadline_in(int64_t amount, int64_t unit_ns);

/* Set errno from a negative errno code and return -1 (or pass r >= 0). */
static inline int weave__ret(int r)
{
    if (r < 0) {
        errno = -r;
        return -1;
    }
    return r;
}

/* Suspend the current task until weave__wake or until deadline passes
 * (WEAVE__NO_DEADLINE: no timer). Returns the waker's code (>= 0 or a
 * negative errno), -ETIMEDOUT or -ECANCELED; -ECANCELED at once, without
 * parking, if the task has been cancelled. */
int weave__park(struct weave__sched *s, int64_t deadline);

/* Make t runnable with code if it is parked; otherwise do nothing. */
void weave__wake(struct weave__sched *s, struct weave_task *t, int code);

/* Put the current task at the back of the run queue and run the others. */
void weave__yield(struct weave__sched *s);

static inline bool weave__cancelled(const struct weave__sched *s)
{
    return (s->current->flags & WEAVE__CANCELLED) != 0;
}

/* The poller cookie of the offload pool's eventfd. No fd cookie equals it:
 * their low 32 bits hold an fd number, which is below 2^31. */
#define WEAVE__COOKIE_OFFLOAD UINT64_MAX

/* fd.c: an event from the poller for cookie (fd and generation). */
void weave__fd_event(struct weave__sched *s, uint64_t cookie, int mask);

/* fd.c: make fd ready for I/O calls: learn its kind (and make it
 * non-blocking if pollable) on first use. Returns the state, or NULL with
 * *err = -EBADF or -ENOMEM. */
struct weave__fd *weave__fd_prepare(struct weave__sched *s, int fd, int *err);

/* fd.c: park the current task until fd is ready for events, after the
 * caller saw EAGAIN. Returns the ready mask, or -errno (ECANCELED,
 * ETIMEDOUT, EBADF from weave_close, EBUSY, ENOMEM). */
int weave__fd_park(struct weave__sched *s, int fd, int events, int64_t deadline);

/* fd.c: fd was just made by weave (accept, socket): drop whatever state a
 * previous fd of the same number left behind and mark it pollable and
 * non-blocking; short_drains as for struct weave__fd. A no-op outside a
 * scheduler. */
void weave__fd_fresh(int fd, bool short_drains);

/* io.c: connect fd, waiting until deadline for a connection in progress.
 * Returns 0 or -errno. */
int weave__connect(struct weave__sched *s, int fd, const struct sockaddr *addr, socklen_t addrlen,
                   int64_t deadline);

/* offload.c: run fn(arg) on a worker, parking the current task until it
 * returns or deadline passes. Returns 0 with *result set. Or the call was
 * accepted but the task stopped waiting: -ECANCELED, -ETIMEDOUT, or -EBADF
 * (a weave_close woke it), after which discard(result, arg) runs on the
 * scheduler's thread once fn has returned (result NULL if it never ran). Or
 * the call was not accepted and arg is still the caller's: -ENOMEM,
 * -EAGAIN, -EMFILE, -ENFILE. */
int weave__offload(struct weave__sched *s, weave_fn fn, void *arg, void **result,
                   void (*discard)(void *, void *), int64_t deadline);

/* offload.c: the pool's eventfd fired: hand finished calls over. */
void weave__offload_event(struct weave__sched *s);

/* offload.c: worker threads started so far. */
unsigned weave__offload_threads(const struct weave__sched *s);

/* offload.c: stop the workers (after the calls they run) and free the pool. */
void weave__offload_term(struct weave__sched *s);

/* fd.c: forget every fd; called when the scheduler ends. */
void weave__fd_term(struct weave__sched *s);

/* overflow.c: install the SIGSEGV handler (once per process) and an
 * alternate signal stack for this thread. Returns a token for
 * weave__overflow_thread_end, or NULL when nothing needs undoing. */
void *weave__overflow_thread_begin(void);
void weave__overflow_thread_end(void *token);

#endif /* WEAVE_INTERNAL_H */
