/*
 * fd.c - waiting on file descriptors, and forgetting them.
 *
 * weave keeps, per fd number, the tasks parked on it (one per direction)
 * and whether the fd is registered with the poller. Registration happens on
 * the first wait that has to park, and lasts until weave_fd_forget or
 * weave_close; an fd is never re-armed between waits (the poller is
 * edge-triggered). Every registration carries the fd's generation, bumped
 * by forget, so an event still queued for an fd that was forgotten (and
 * whose number may already name another file) is recognised and dropped.
 */
#include "internal.h"

#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <string.h>
#include <unistd.h>

static uint64_t cookie_of(int fd, uint32_t gen)
{
    return ((uint64_t)gen << 32) | (uint32_t)fd;
}

/* The state of fd, growing the table as needed; NULL if out of memory. */
static struct weave__fd *fd_state(struct weave__sched *s, int fd)
{
    size_t need = (size_t)fd + 1;

    if (need > s->nfds) {
        size_t n = s->nfds ? s->nfds : 64;
        struct weave__fd *v;

        while (n < need)
            n *= 2;
        v = realloc(s->fds, n * sizeof(*v));
        if (!v)
            return NULL;
        memset(v + s->nfds, 0, (n - s->nfds) * sizeof(*v));
        s->fds = v;
        s->nfds = n;
    }
    return &s->fds[fd];
}

/* Whether another task already waits on st in a direction of events. */
static bool busy(const struct weave__fd *st, int events)
{
    return ((events & WEAVE_IN) && st->waiter[0]) || ((events & WEAVE_OUT) && st->waiter[1]);
}

/* What a wait for events on fd returns, given what the fd reported. */
static int ready_mask(int events, int got)
{
    int m = got & (events | WEAVE_ERR | WEAVE_HUP);

    if (got & (WEAVE_ERR | WEAVE_HUP))
        m |= events;
    return m;
}

/* Readiness of fd right now, without blocking: a mask, 0, or -errno. */
static int poll_now(int fd, int events)
{
    struct pollfd p;
    int r, got = 0;

    p.fd = fd;
    p.events = (short)events;
    p.revents = 0;
    do
        r = poll(&p, 1, 0);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return -errno;
    if (p.revents & POLLNVAL)
        return -EBADF;
    if (p.revents & POLLIN)
        got |= WEAVE_IN;
    if (p.revents & POLLOUT)
        got |= WEAVE_OUT;
    if (p.revents & POLLERR)
        got |= WEAVE_ERR;
    if (p.revents & POLLHUP)
        got |= WEAVE_HUP;
    return ready_mask(events, got);
}

int weave__fd_park(struct weave__sched *s, int fd, int events, int64_t deadline)
{
    struct weave_task *self = s->current;
    struct weave__fd *st = fd_state(s, fd);
    int r;

    if (!st)
        return -ENOMEM;
    if (busy(st, events))
        return -EBUSY;
    if (!st->registered) {
        r = weave__poller_add(&s->poller, fd, cookie_of(fd, st->gen), 0);
        if (r == -EPERM)
            return events; /* not pollable: always ready, as with poll(2) */
        if (r == -ENOSPC)
            r = -ENOMEM;
        if (r < 0)
            return r;
        st->registered = 1;
    }
    if (events & WEAVE_IN)
        st->waiter[0] = self;
    if (events & WEAVE_OUT)
        st->waiter[1] = self;
    s->fd_waiters++;
    r = weave__park(s, deadline);
    s->fd_waiters--;
    st = &s->fds[fd]; /* the table may have moved while we were parked */
    if (st->waiter[0] == self)
        st->waiter[0] = NULL;
    if (st->waiter[1] == self)
        st->waiter[1] = NULL;
    return r < 0 ? r : ready_mask(events, r);
}

static int wait_fd(int fd, int events, int64_t timeout_ms)
{
    struct weave__sched *s = weave__tls;
    int64_t deadline;
    int r;

    if (fd < 0)
        return -EBADF;
    if (events == 0 || (events & ~(WEAVE_IN | WEAVE_OUT)))
        return -EINVAL;
    if ((deadline = weave__deadline_in(timeout_ms, 1000000)) < 0)
        return -EINVAL;
    if (!s)
        return -EPERM;
    if (weave__cancelled(s))
        return -ECANCELED;
    if ((size_t)fd < s->nfds && busy(&s->fds[fd], events))
        return -EBUSY;
    /* Edge-triggered registration reports changes only: look at the fd's
     * state first, and park only if it is not ready now. */
    r = poll_now(fd, events);
    if (r != 0)
        return r;
    if (timeout_ms == 0)
        return -ETIMEDOUT;
    return weave__fd_park(s, fd, events, deadline);
}

int weave_wait_fd(int fd, int events, int64_t timeout_ms)
{
    return weave__ret(wait_fd(fd, events, timeout_ms));
}

void weave__fd_event(struct weave__sched *s, uint64_t cookie, int mask)
{
    int fd = (int)(uint32_t)cookie;
    struct weave__fd *st;

    if ((size_t)fd >= s->nfds)
        return;
    st = &s->fds[fd];
    if (!st->registered || st->gen != (uint32_t)(cookie >> 32))
        return;
    if (mask & WEAVE_IN)
        st->drained = 0;
    if (mask & (WEAVE__RDHUP | WEAVE_HUP | WEAVE_ERR))
        st->read_closed = 1;
    if ((mask & WEAVE_IN) && st->waiter[0])
        weave__wake(s, st->waiter[0], mask);
    if ((mask & WEAVE_OUT) && st->waiter[1])
        weave__wake(s, st->waiter[1], mask);
}

/* Wake fd's waiters with EBADF, drop its registration and cached state. */
static void forget(struct weave__sched *s, struct weave__fd *st, int fd)
{
    for (int d = 0; d < 2; d++) {
        if (st->waiter[d]) {
            weave__wake(s, st->waiter[d], -EBADF);
            st->waiter[d] = NULL;
        }
    }
    if (st->registered) {
        weave__poller_del(&s->poller, fd);
        st->registered = 0;
    }
    st->kind = WEAVE__FD_UNKNOWN;
    st->no_nowait_read = st->no_nowait_write = 0;
    st->short_drains = st->drained = st->read_closed = 0;
    st->gen++;
}

int weave_fd_forget(int fd)
{
    struct weave__sched *s = weave__tls;

    if (fd < 0)
        return weave__ret(-EBADF);
    if (s && (size_t)fd < s->nfds)
        forget(s, &s->fds[fd], fd);
    return 0;
}

void weave__fd_fresh(int fd, bool short_drains)
{
    struct weave__sched *s = weave__tls;
    struct weave__fd *st;

    if (!s)
        return;
    if ((size_t)fd < s->nfds)
        forget(s, &s->fds[fd], fd);
    st = fd_state(s, fd);
    if (st) {
        st->kind = WEAVE__FD_POLL;
        st->short_drains = short_drains;
    }
}

/* Whether a short read from fd means it was emptied: true of TCP sockets
 * and of pipes and FIFOs (not in packet mode). Not of datagram sockets (a
 * read takes one datagram), nor of Unix stream sockets (a read stops where
 * credentials change), nor of anything unknown. */
static bool short_read_drains(int fd, const struct stat *sb, int fl)
{
    int type = 0, domain = 0;
    socklen_t len = sizeof(int);

    if (S_ISFIFO(sb->st_mode))
        return !(fl & O_DIRECT);
    if (!S_ISSOCK(sb->st_mode) || getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 ||
        getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0)
        return false;
    return type == SOCK_STREAM && (domain == AF_INET || domain == AF_INET6);
}

struct weave__fd *weave__fd_prepare(struct weave__sched *s, int fd, int *err)
{
    struct weave__fd *st;
    struct stat sb;
    int fl;

    if (fd < 0) {
        *err = -EBADF;
        return NULL;
    }
    if ((size_t)fd < s->nfds && s->fds[fd].kind != WEAVE__FD_UNKNOWN)
        return &s->fds[fd];
    if (fstat(fd, &sb) != 0) {
        *err = -errno;
        return NULL;
    }
    if (!(st = fd_state(s, fd))) {
        *err = -ENOMEM;
        return NULL;
    }
    if (S_ISREG(sb.st_mode) || S_ISBLK(sb.st_mode) || S_ISDIR(sb.st_mode)) {
        st->kind = WEAVE__FD_FILE;
        return st;
    }
    fl = fcntl(fd, F_GETFL);
    if (fl < 0 || (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)) {
        *err = -errno;
        return NULL;
    }
    st->kind = WEAVE__FD_POLL;
    st->short_drains = short_read_drains(fd, &sb, fl);
    return st;
}

int weave_close(int fd)
{
    if (weave_fd_forget(fd) < 0)
        return -1;
    return close(fd);
}

void weave__fd_term(struct weave__sched *s)
{
    free(s->fds);
    s->fds = NULL;
    s->nfds = 0;
}
