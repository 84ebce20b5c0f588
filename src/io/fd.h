/*
 * fd.h - the fd table (fd.c): what weave keeps per fd number, the FIFO
 * sides that tasks take turns on, and parking until an fd is ready.
 */
#ifndef WEAVE_FD_H
#define WEAVE_FD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/sched.h"
#include "core/wait.h"
#include "io/bufcache.h"
#include "weave.h"

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

/* The fd table: records in chunks of 2^WEAVE__FD_CHUNK_BITS that never move.
 * It is the I/O layer's state in the scheduler, so the scheduler's cache of
 * stream buffers lives here too, and ends with it. */
struct weave__fdtab {
    struct weave__fd **chunks; /* [nchunks], NULL where none is made yet */
    size_t nchunks;
    uint64_t waiters;            /* tasks waiting on an fd: for a side or readiness */
    uint64_t registered;         /* records registered with the poller */
    uint64_t lenders;            /* user fds learned already non-blocking: the only
                            ones that can share a description with an fd
                            weave gives the mode back to (fd.c, pass_on) */
    struct weave__bufcache bufs; /* buffers streams gave back, for the next */
};

/* The buffer cache of scheduler s. */
static inline struct weave__bufcache *weave__bufs(const struct weave__sched *s)
{
    return &s->fds->bufs;
}

/* The record of fd (>= 0) if one was made, else NULL. */
static inline struct weave__fd *weave__fd_find(const struct weave__sched *s, int fd)
{
    size_t c = (size_t)fd >> WEAVE__FD_CHUNK_BITS;

    if (c >= s->fds->nchunks || !s->fds->chunks[c])
        return NULL;
    return &s->fds->chunks[c][(unsigned)fd & ((1u << WEAVE__FD_CHUNK_BITS) - 1)];
}

/* Make and free the scheduler's fd table (and its buffer cache). init
 * returns 0 or -ENOMEM; term first clears O_NONBLOCK where weave set it on
 * an fd of the user's. */
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

#endif /* WEAVE_FD_H */
