/*
 * uring.h - the scheduler's io_uring, for regular files and block devices
 * (uring.c), as file.c sees it.
 */
#ifndef WEAVE_URING_H
#define WEAVE_URING_H

#include <stdbool.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "core/sched.h"
#include "weave.h"

#define WEAVE__URING_DEPTH 256 /* calls in the ring at once, at most */

/* What weave__uring_call returns when the ring could not take the call
 * (no entry, a failed submission): the caller runs it on the pool. Below
 * every -errno. */
#define WEAVE__URING_FALLBACK (-0x10000)

enum weave__uring_op {
    WEAVE__URING_READ,     /* readv at the current position */
    WEAVE__URING_WRITE,    /* writev at the current position */
    WEAVE__URING_FSYNC,    /* fsync */
    WEAVE__URING_FDATASYNC /* fdatasync */
};

/* Decide where regular-file I/O goes, once per scheduler: the ring, made
 * now, unless the run flag, the environment, valgrind, the build or the
 * kernel says the pool (s->file_io_path). Returns whether it is the ring. */
bool weave__uring_start(struct weave__sched *s);

/* Whether regular-file calls of s go to its ring. */
static inline bool weave__uring_on(struct weave__sched *s)
{
    if (__builtin_expect(s->file_io_path == WEAVE_FILE_IO_URING, 1))
        return true;
    return s->file_io_path == WEAVE_FILE_IO_UNDECIDED && weave__uring_start(s);
}

/* Run op on fd through the ring (weave__uring_on said yes), iov[0..iovcnt)
 * for a read or write, parking the task until the kernel has completed it.
 * also, if not NULL, is one more queue to wait in: a weave__queue_close on
 * it (weave_close of the fd) ends the wait as a cancellation does. A task
 * that stops waiting asks the ring to cancel the call and waits, shielded,
 * for its completion: the kernel may use the buffers until then. Returns
 * the call's result (a count, or 0), or -errno: the kernel's, or
 * -ECANCELED, -ETIMEDOUT, -EBADF when the task stopped waiting before the
 * call completed; or WEAVE__URING_FALLBACK. */
ssize_t weave__uring_call(struct weave__sched *s, int op, int fd, const struct iovec *iov,
                          int iovcnt, struct weave_waitq *also);

/* The name of the operation a task parked on the ring waits for (object is
 * its struct weave__wait's object), for weave_tasks. */
const char *weave__uring_op_name(const void *object);

/* Free the ring (every task has ended, so no call is in it). */
void weave__uring_term(struct weave__sched *s);

/* The io_uring figures of weave_get_stats. */
void weave__uring_stats(const struct weave__sched *s, weave_stats *st);

#endif /* WEAVE_URING_H */
