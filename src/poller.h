/*
 * poller.h - the readiness backend behind a small interface (epoll).
 *
 * An fd is registered once, edge-triggered, for input, output and peer
 * hang-up together, and stays registered until it is removed: waiting on it
 * again costs no system call. Each event carries the 64-bit cookie given at
 * registration. Timeouts are in nanoseconds and are honoured to the
 * nanosecond where the kernel has epoll_pwait2 (Linux 5.11); elsewhere, and
 * under valgrind, which lacks it, they are rounded up to whole milliseconds,
 * so a wait never ends early.
 */
#ifndef WEAVE_POLLER_H
#define WEAVE_POLLER_H

#include <stdint.h>
#include <sys/epoll.h>

#define WEAVE__POLL_BATCH 256 /* events taken in by one wait, at most */

struct weave__poller {
    int epfd;                                     /* the epoll instance */
    int have_pwait2;                              /* 1 until epoll_pwait2 answers ENOSYS */
    int registered;                               /* fds registered */
    struct epoll_event events[WEAVE__POLL_BATCH]; /* filled by wait */
};

/* Returns 0 or -errno (EMFILE, ENFILE, ENOMEM). */
int weave__poller_init(struct weave__poller *p);
void weave__poller_term(struct weave__poller *p);

/* Register fd. Returns 0 or -errno: EBADF not open, EPERM a regular file or
 * directory (not pollable), ENOMEM/ENOSPC out of memory or watches. */
int weave__poller_add(struct weave__poller *p, int fd, uint64_t cookie);

/* Remove fd's registration; errors (fd already closed) are ignored. */
void weave__poller_del(struct weave__poller *p, int fd);

/* Wait up to timeout_ns (-1 forever, 0 not at all) for events. Returns the
 * number of events, or -errno (EINTR when a signal arrived). */
int weave__poller_wait(struct weave__poller *p, int64_t timeout_ns);

/* The cookie and the WEAVE_IN / WEAVE_OUT / WEAVE_ERR / WEAVE_HUP mask of
 * event i of the last wait. */
uint64_t weave__poller_cookie(const struct weave__poller *p, int i);
int weave__poller_mask(const struct weave__poller *p, int i);

#endif /* WEAVE_POLLER_H */
