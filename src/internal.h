/*
 * internal.h - the seams between weave's modules, included by every file
 * above the lower layers.
 *
 * Data flows one way:
 *
 *     public calls    task.c run.c time.c deadline.c fd.c io.c net.c offload.c
 *          |
 *     wait core       wait.c (queues, the FIFO lock) on sched.c (park, wake,
 *          |          run queue, poll step) and handle.c (the handle table)
 *          |
 *     lower layers    context.c  stack.c  timer.c  poller_epoll.c
 *
 * and none of the four lower layers knows about the others. The core calls
 * up into nothing: fds and the offload pool register watchers, which the
 * poll step calls back. Non-static internals are prefixed weave__; errno is
 * set only at the public boundary (weave__ret), internals return 0 or a
 * negative errno value.
 */
#ifndef WEAVE_INTERNAL_H
#define WEAVE_INTERNAL_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "core.h"
#include "wait.h"
#include "weave.h"

#define WEAVE_OFFLOAD_DEFAULT 4 /* offload threads unless told */

#define WEAVE_OFFLOAD_MAX 1024 /* more is refused with EINVAL */

/* Every flag weave_run_opts.flags may carry; others are EINVAL. */
#define WEAVE__RUN_FLAGS (WEAVE_NO_OVERFLOW_HANDLER | WEAVE_NO_DEADLOCK_DUMP | WEAVE_VIRTUAL_CLOCK)

/* Whether the n bytes at p are all zero: the reserved fields of an options
 * struct, which a later version may give a meaning. */
static inline bool weave__all_zero(const void *p, size_t n)
{
    const unsigned char *b = p;

    for (size_t i = 0; i < n; i++)
        if (b[i])
            return false;
    return true;
}

/* Set errno from a negative errno code and return -1 (or pass r >= 0). */
static inline int weave__ret(int r)
{
    if (r < 0) {
        errno = -r;
        return -1;
    }
    return r;
}

/* The deadline of a public timeout of amount units of unit_ns: an absolute
 * CLOCK_MONOTONIC time, WEAVE__NO_DEADLINE for -1 (or too large to
 * represent), or -EINVAL if amount < -1 (deadlines are never negative). */
int64_t weave__deadline_in(int64_t amount, int64_t unit_ns);

/* ---- task.c ---------------------------------------------------------------- */

/* Spawn a task as weave_spawn_with does (opts may be NULL). Returns its
 * record, or NULL with *err set (-EINVAL bad opts, -ENOMEM). */
struct weave__task *weave__task_spawn(struct weave__sched *s, const weave_task_opts *opts,
                                      weave_fn fn, void *arg, int *err);

/* t's name: the one given at spawn, or "task-<id>" (made on first use). */
const char *weave__task_name(struct weave__task *t);

/* Spawn weave_run's main task. Returns it, or NULL with *err set. */
struct weave__task *weave__spawn_main(struct weave__sched *s, weave_fn fn, void *arg, int *err);

/* 0 if size is a valid stack size (WEAVE_STACK_MIN..MAX), else -EINVAL. */
int weave__check_stack_size(size_t size);

/* 0 if size is a valid guard_size of weave_run_opts or weave_task_opts (0,
 * the default, or at most WEAVE_GUARD_MAX), else -EINVAL. */
int weave__check_guard_size(size_t size);

/* ---- fd.c: the fd table ---------------------------------------------------- */

enum weave__fd_kind {
    WEAVE__FD_UNKNOWN = 0, /* not used for I/O yet (or forgotten) */
    WEAVE__FD_POLL = 1,    /* pollable; O_NONBLOCK (weave's own or set by weave) */
    WEAVE__FD_FILE = 2     /* regular file or block device: not pollable */
};

/*
 * What weave keeps per fd number it has waited on or done I/O on. Each
 * direction ("side": 0 input, 1 output) is a FIFO lock that a call holds
 * while it waits for readiness, so several tasks may wait on one fd and
 * are served in order, and a write that writes everything is never
 * interleaved with another. Records never move once made.
 */
struct weave__fd {
    struct weave__watcher watcher; /* the poller's callback for this fd */
    weave_mutex side[2];           /* input, output: held by the call using them */
    struct weave_waitq ready[2];   /* a side's holder, parked until ready */
    int fd;                        /* the fd number */
    uint8_t registered;            /* in the poller */
    uint8_t kind;                  /* enum weave__fd_kind */
    uint8_t no_nowait_read;        /* preadv2(RWF_NOWAIT) unsupported here */
    uint8_t no_nowait_write;       /* pwritev2(RWF_NOWAIT) unsupported here */
    uint8_t short_drains;          /* a short read empties it: TCP, pipes */
    uint8_t drained;               /* a short read emptied it, no input since */
    uint8_t read_closed;           /* the peer hung up, or an error came */
    uint8_t made_nonblocking;      /* weave set O_NONBLOCK: clear it when done */
    dev_t dev;                     /* the file learned at this number (fstat), */
    ino_t ino;                     /* to tell it from a later one; 0 if weave's */
};

#define WEAVE__FD_CHUNK_BITS 8 /* 256 records a chunk */

/* The fd table: records in chunks of 2^WEAVE__FD_CHUNK_BITS that never move. */
struct weave__fdtab {
    struct weave__fd **chunks; /* [nchunks], NULL where none is made yet */
    size_t nchunks;
    uint64_t waiters;    /* tasks waiting on an fd: for a side or readiness */
    uint64_t registered; /* records registered with the poller */
    uint64_t lenders;    /* user fds learned already non-blocking: the only
                            ones that can share a description with an fd
                            weave gives the mode back to (fd.c, pass_on) */
};

/* The record of fd (>= 0) if one was made, else NULL. */
static inline struct weave__fd *weave__fd_find(const struct weave__sched *s, int fd)
{
    size_t c = (size_t)fd >> WEAVE__FD_CHUNK_BITS;

    if (c >= s->fds->nchunks || !s->fds->chunks[c])
        return NULL;
    return &s->fds->chunks[c][(unsigned)fd & ((1u << WEAVE__FD_CHUNK_BITS) - 1)];
}

/* Make and free the scheduler's fd table. init returns 0 or -ENOMEM; term
 * first clears O_NONBLOCK where weave set it on an fd of the user's. */
int weave__fdtab_init(struct weave__sched *s);
void weave__fdtab_term(struct weave__sched *s);

/* The fd figures of weave_get_stats. */
void weave__fdtab_stats(const struct weave__sched *s, weave_stats *st);

/* weave__fd_prepare for an fd not known yet. */
struct weave__fd *weave__fd_learn(struct weave__sched *s, int fd, int *err);

/* Make fd ready for I/O calls: learn its kind (and make it non-blocking if
 * pollable) on first use. Returns its record, or NULL with *err = -EBADF or
 * -ENOMEM. */
static inline struct weave__fd *weave__fd_prepare(struct weave__sched *s, int fd, int *err)
{
    struct weave__fd *st = fd >= 0 ? weave__fd_find(s, fd) : NULL;

    return st && st->kind != WEAVE__FD_UNKNOWN ? st : weave__fd_learn(s, fd, err);
}

/* Take the sides of events (WEAVE_IN, WEAVE_OUT) of st for the current
 * task, waiting in FIFO order behind other tasks until timeout. Returns 0
 * or -ECANCELED, -ETIMEDOUT, -EBADF (weave_close). */
int weave__fd_lock_wait(struct weave__sched *s, struct weave__fd *st, int events, int64_t timeout);

static inline int weave__fd_lock(struct weave__sched *s, struct weave__fd *st, int events,
                                 int64_t timeout)
{
    if (events != (WEAVE_IN | WEAVE_OUT) && weave__lock_try(s, &st->side[events == WEAVE_OUT]))
        return 0; /* the common case: one side, free */
    return weave__fd_lock_wait(s, st, events, timeout);
}

static inline void weave__fd_unlock(struct weave__sched *s, struct weave__fd *st, int events)
{
    if (events & WEAVE_IN)
        weave__lock_release(s, &st->side[0]);
    if (events & WEAVE_OUT)
        weave__lock_release(s, &st->side[1]);
}

/* With the sides of events held, park until st's fd is ready for them,
 * after the caller saw EAGAIN. Returns the ready mask, or -errno
 * (ECANCELED, ETIMEDOUT, EBADF from weave_close, ENOMEM). */
int weave__fd_park(struct weave__sched *s, struct weave__fd *st, int events, int64_t timeout);

/* Readiness of fd right now, without blocking: the mask a wait for events
 * returns, 0 if not ready, or -errno (EBADF: not open). */
int weave__fd_poll(int fd, int events);

/* What a wait for events returns when the fd reported got: the requested
 * events seen, plus ERR/HUP (which make every requested event ready). */
int weave__fd_mask(int events, int got);

/* The record of fd (>= 0, open), registered with the poller, for a task
 * that will wait in its ready queues without holding its sides (select).
 * NULL with *err = -ENOMEM or -EPERM (not pollable). */
struct weave__fd *weave__fd_watch(struct weave__sched *s, int fd, int *err);

/* fd was just made by weave (accept, socket): drop whatever state a
 * previous fd of the same number left behind and mark it pollable and
 * non-blocking; short_drains as for struct weave__fd. A no-op outside a
 * scheduler. */
void weave__fd_fresh(int fd, bool short_drains);

/* ---- io.c, file.c ---------------------------------------------------------- */

/* The bytes iov[0..n) describe. */
size_t weave__iov_total(const struct iovec *iov, int n);

/* One read (or write) of a regular file or block device st, iov as for
 * readv. Returns the count or -errno. */
ssize_t weave__file_io(struct weave__sched *s, int fd, struct weave__fd *st,
                       const struct iovec *iov, int iovcnt, bool is_write);

/* Connect fd, waiting until timeout for a connection in progress. Returns 0
 * or -errno. */
int weave__connect(struct weave__sched *s, int fd, const struct sockaddr *addr, socklen_t addrlen,
                   int64_t timeout);

/* ---- offload.c: the worker pool -------------------------------------------- */

/* Make and free the scheduler's offload state (no thread starts before the
 * first call). init returns 0 or -ENOMEM. term waits for the calls still
 * running, discards abandoned results and joins the threads. */
int weave__offload_init(struct weave__sched *s, unsigned max_threads);
void weave__offload_term(struct weave__sched *s);

/* The offload figures of weave_get_stats. */
void weave__offload_stats(const struct weave__sched *s, weave_stats *st);

/*
 * Run fn(arg) on a worker, parking the current task until it returns or
 * timeout passes. also, if not NULL, is one more queue to wait in: a
 * weave__queue_close on it ends the wait with -EBADF (fd.c closes an fd's
 * queues). Returns 0 with *result set. Or the call was accepted but the
 * task stopped waiting: -ECANCELED, -ETIMEDOUT or -EBADF, after which
 * discard(result, arg) runs on the scheduler's thread once fn has returned
 * (result NULL if it never ran). Or the call was not accepted and arg is
 * still the caller's: -ENOMEM, -EAGAIN, -EMFILE, -ENFILE.
 */
int weave__offload(struct weave__sched *s, weave_fn fn, void *arg, void **result,
                   weave_discard_fn discard, int64_t timeout, struct weave_waitq *also);

/* ---- chan.c: what select needs of a channel -------------------------------- */

/* Whether a send (a receive) on c can complete now: a partner waits, the
 * buffer has room (an element), or c is closed. */
bool weave__chan_send_ready(const weave_chan *c);
bool weave__chan_recv_ready(const weave_chan *c);

/* Complete a send (a receive) that is ready. Returns 0 or -EPIPE. */
int weave__chan_send_now(struct weave__sched *s, weave_chan *c, const void *elem);
int weave__chan_recv_now(struct weave__sched *s, weave_chan *c, void *elem);

/* The queue where senders (send) or receivers wait; a waiter's data is
 * the element to send, or where a received one goes (NULL: dropped). */
struct weave_waitq *weave__chan_queue(weave_chan *c, bool send);

size_t weave__chan_elem_size(const weave_chan *c);

/* -EPERM if tasks of another scheduler (or of any, when none runs on this
 * thread) wait on c: a call here could not wake or join them safely. */
int weave__chan_foreign(const struct weave__sched *s, const weave_chan *c);

/* ---- deadline.c: the _timeout variants ------------------------------------ */

/* Begin a deadline scope of timeout_ms for a _timeout call: -EINVAL for a
 * timeout below -1 (nothing begun), else 0. */
int weave__timed_begin(weave_deadline *d, int64_t timeout_ms);

/* End it without disturbing errno; returns r, the call's result. */
int weave__timed_end(weave_deadline *d, int r);

/* ---- overflow.c -------------------------------------------------------------- */

/* Install the fatal-signal handlers (once per process), have them name the
 * tasks of this thread's scheduler, and give the thread an alternate signal
 * stack. Returns a token for weave__overflow_thread_end, which must follow
 * (with NULL too) when the scheduler ends. */
void *weave__overflow_thread_begin(void);
void weave__overflow_thread_end(void *token);

/* ---- introspect.c ------------------------------------------------------------ */

/* Write the task list of s to fd (weave_dump); 0 or a negative errno. */
int weave__dump(struct weave__sched *s, int fd);

/* Check the introspection options of o (dump_signal, watchdog_ms): 0 or
 * -EINVAL. */
int weave__introspect_check(const weave_run_opts *o);

/* Start what o asks for: the deadlock dump (unless turned off), the dump
 * signal's signalfd, the watchdog thread. 0 or -errno, with nothing
 * started. */
int weave__introspect_start(struct weave__sched *s, const weave_run_opts *o);

/* Stop what weave__introspect_start started; the thread's signal mask is
 * restored. */
void weave__introspect_stop(struct weave__sched *s);

/* weave_run found a deadlock: print the task list on stderr, unless the
 * run turned that off. */
void weave__deadlock_report(struct weave__sched *s);

/* ---- watchdog.c ---------------------------------------------------------------- */

/* Start the watchdog thread (threshold ms); 0 or -ENOMEM, -EAGAIN. */
int weave__watchdog_start(struct weave__sched *s, int64_t ms);

/* Stop and join it, if it runs. */
void weave__watchdog_stop(struct weave__sched *s);

/* The task the watchdog reported gives up the thread: name it, with its
 * whole time. */
void weave__watchdog_report(struct weave__sched *s);

/* At each pick, while a watchdog runs: before, report a task it caught;
 * after, tell its thread who runs now (relaxed stores: plain moves, read
 * from the watchdog's thread; t NULL: nobody, the scheduler idles). */
static inline void weave__watchdog_yielded(struct weave__sched *s)
{
    if (__atomic_load_n(&s->stall_id, __ATOMIC_ACQUIRE) != 0)
        weave__watchdog_report(s);
}

static inline void weave__watchdog_runs(struct weave__sched *s, const struct weave__task *t)
{
    __atomic_store_n(&s->picks, s->picks + 1, __ATOMIC_RELAXED);
    __atomic_store_n(&s->running_id, t ? t->id : 0, __ATOMIC_RELAXED);
}

/* ---- signal.c (as seen by the other modules) ------------------------------------ */

/* Whether weave can never wait for sig: unblockable, synchronous, weave's
 * own (SIGPIPE) or kept by the C library. */
bool weave__signal_refused(int sig);

/* Watch the run's dump signal (already blocked by weave_run) on the
 * signalfd: each arrival dumps the task list on stderr. 0 or -errno. */
int weave__signal_dump_on(struct weave__sched *s, int sig);

/* ---- signal.c ----------------------------------------------------------------- */

/* End what weave_signal_wait and weave_cancel_on_signals set up in this run
 * (the poller must still be there): add to *blocked the signals they
 * blocked on the thread, which weave_run unblocks once it has taken what is
 * pending of them. Returns the signal that cancelled the main task, or 0.
 * Ends the process as a second stop signal would if one is pending. */
int weave__signal_term(struct weave__sched *s, sigset_t *blocked);

#endif /* WEAVE_INTERNAL_H */
