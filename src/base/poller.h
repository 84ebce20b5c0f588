/*
 * poller.h - the readiness backend behind a small interface (epoll).
 *
 * An fd is registered once, edge-triggered, for input, output and peer
 * hang-up together, and stays registered until it is removed: waiting on it
 * again costs no system call. Each event carries the pointer given at
 * registration (the scheduler gives a watcher; the poller never looks).
 *
 * Waits end at an absolute CLOCK_MONOTONIC deadline, kept in a timerfd: a
 * timerfd's hrtimer gets no slack, while an epoll timeout is given a slack
 * of max(timer slack, timeout / 1000), a millisecond on a one-second sleep
 * (bench/timer_bench measures both).
 */
#ifndef WEAVE_POLLER_H
#define WEAVE_POLLER_H

#include <stdint.h>
#include <sys/epoll.h>

#define WEAVE__POLL_BATCH   256       /* events taken in by one wait, at most */
#define WEAVE__POLL_NOW     0         /* deadline: do not block */
#define WEAVE__POLL_FOREVER INT64_MAX /* deadline: none */

/* In an event mask, besides WEAVE_IN/OUT/ERR/HUP: the peer shut down its
 * writing side (EPOLLRDHUP); never reported to users. */
#define WEAVE__RDHUP 0x2000

/* What the scheduler calls for an event on a registered fd: the data given
 * at registration is a watcher, so the loop dispatches an event without
 * knowing who registered the fd. */
struct weave__sched;
struct weave__watcher;
typedef void weave__watch_fn(struct weave__sched *s, struct weave__watcher *w, int mask);
struct weave__watcher {
    weave__watch_fn *fn;
};

struct weave__poller {
    int epfd;                                     /* the epoll instance */
    int tfd;                                      /* timerfd for deadlines */
    int64_t armed;                                /* deadline tfd is set to, or 0 */
    struct epoll_event events[WEAVE__POLL_BATCH]; /* filled by wait */
};

/* Returns 0 or -errno (EMFILE, ENFILE, ENOMEM). */
int weave__poller_init(struct weave__poller *p);
void weave__poller_term(struct weave__poller *p);

/* Register fd, for input only (in_only) or for input, output and hang-up.
 * Returns 0 or -errno: EBADF not open, EPERM a regular file or directory
 * (not pollable), ENOMEM/ENOSPC out of memory or watches. */
int weave__poller_add(struct weave__poller *p, int fd, void *data, int in_only);

/* Remove fd's registration; errors (fd already closed) are ignored. */
void weave__poller_del(struct weave__poller *p, int fd);

/* Wait for events until deadline (CLOCK_MONOTONIC ns; WEAVE__POLL_NOW or
 * WEAVE__POLL_FOREVER). Returns the number of events (0 when the deadline
 * passed), or -errno (EINTR when a signal arrived). */
int weave__poller_wait(struct weave__poller *p, int64_t deadline);

/* Arm the poller's timer at deadline (CLOCK_MONOTONIC ns), so that the
 * epoll fd itself becomes readable then (a loop that watches it, when
 * weave is embedded). */
void weave__poller_arm(struct weave__poller *p, int64_t deadline);

/* The data and the WEAVE_IN / WEAVE_OUT / WEAVE_ERR / WEAVE_HUP mask of
 * event i of the last wait. */
void *weave__poller_data(const struct weave__poller *p, int i);
int weave__poller_mask(const struct weave__poller *p, int i);

#endif /* WEAVE_POLLER_H */
