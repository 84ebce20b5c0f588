/*
 * io.c - read, write, send, recv, accept, connect that suspend the task.
 *
 * Every call has the same shape: try the system call; if it would block
 * (EAGAIN), park the task on the fd until the poller reports it ready, and
 * try again. The poller is edge-triggered, so a task only ever parks after
 * seeing EAGAIN, and each wake-up is news. A peer that hangs up or an error
 * on the fd wakes the task; the retried call then returns 0 or the error,
 * so nothing spins.
 *
 * One shortcut: on a TCP socket or a pipe, a read that returns less than it
 * asked for has emptied the fd, so the next read would only say EAGAIN.
 * weave notes that (the fd is "drained") and the next read parks without
 * trying; any input event clears the note. This saves a system call per
 * message in request/response traffic (bench/echo_bench). It is not taken
 * once the peer has hung up (the end of file may have come under the same
 * edge as the data), after a peek, nor on fds where a short read proves
 * nothing: datagram sockets, Unix stream sockets (a read stops where the
 * sender's credentials change), packet-mode pipes.
 *
 * Regular files are not pollable: their reads, writes and syncs go to
 * file.c.
 */
#include "base/common.h"
#include "core/scope.h"
#include "io/bufcache.h"
#include "io/fd.h"
#include "io/file.h"
#include "io/io.h"

#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum op_kind { OP_READ, OP_WRITE, OP_RECV, OP_SEND, OP_RECVFROM, OP_SENDTO, OP_ACCEPT };

/* One system call's arguments. Plain reads and writes use one iovec. */
struct io_op {
    int kind;                /* enum op_kind */
    const struct iovec *iov; /* buffers (read, write, readv, writev) */
    int iovcnt;
    void *buf; /* buffer of recv/send/recvfrom/sendto */
    size_t len;
    int flags;             /* recv/send flags */
    struct sockaddr *addr; /* recvfrom source / accept peer */
    socklen_t *addrlen;
    const struct sockaddr *to; /* sendto destination */
    socklen_t tolen;
};

static ssize_t syscall_once(int fd, const struct io_op *op)
{
    switch (op->kind) {
    case OP_READ:
        return op->iovcnt == 1 ? read(fd, op->iov[0].iov_base, op->iov[0].iov_len)
                               : readv(fd, op->iov, op->iovcnt);
    case OP_WRITE:
        return op->iovcnt == 1 ? write(fd, op->iov[0].iov_base, op->iov[0].iov_len)
                               : writev(fd, op->iov, op->iovcnt);
    case OP_RECV:
        return recv(fd, op->buf, op->len, op->flags);
    case OP_SEND:
        return send(fd, op->buf, op->len, op->flags | MSG_NOSIGNAL);
    case OP_RECVFROM:
        return recvfrom(fd, op->buf, op->len, op->flags, op->addr, op->addrlen);
    case OP_SENDTO:
        return sendto(fd, op->buf, op->len, op->flags | MSG_NOSIGNAL, op->to, op->tolen);
    default:
        return accept4(fd, op->addr, op->addrlen, SOCK_NONBLOCK);
    }
}

/* ---- the common loop ---------------------------------------------------- */

/* Remember that a read of n bytes emptied the fd, if it came back short from
 * an fd where that is so. Not once the peer has hung up: its FIN may have
 * come with the data, under the same edge, and the next read must get the
 * end of file rather than wait for an edge that will never come. Not for a
 * peek, which leaves the data where it was. */
static void note_short_read(struct weave__fd *st, const struct io_op *op, size_t n)
{
    size_t want = op->kind == OP_READ ? weave__iov_total(op->iov, op->iovcnt) : op->len;

    if (st->short_drains && !st->read_closed && n < want && !(op->flags & MSG_PEEK))
        st->drained = 1;
}

/* Run op on fd once, holding its side, parking on EAGAIN until it
 * completes. Returns the call's result or -errno. */
static ssize_t io_held(struct weave__sched *s, int fd, struct weave__fd *st, const struct io_op *op,
                       int events)
{
    bool reads = op->kind == OP_READ || op->kind == OP_RECV || op->kind == OP_RECVFROM;
    int r;

    if (st->kind == WEAVE__FD_FILE && (op->kind == OP_READ || op->kind == OP_WRITE))
        return weave__file_io(s, fd, st, op->iov, op->iovcnt, op->kind == OP_WRITE);
    if (reads && st->drained && !(op->flags & MSG_DONTWAIT)) {
        /* The last read came back short from an fd where that means it was
         * emptied, and no input event came since: a read now would only
         * say EAGAIN. Wait for the event instead; the registration is
         * edge-triggered and permanent, so data that arrived meanwhile has
         * queued one. */
        st->drained = 0;
        if ((r = weave__fd_park(s, st, events, WEAVE__NO_DEADLINE)) < 0)
            return r;
    }
    for (;;) {
        ssize_t n = syscall_once(fd, op);

        if (n >= 0) {
            if (reads && n > 0)
                note_short_read(st, op, (size_t)n);
            return n;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -errno;
        if (op->flags & MSG_DONTWAIT)
            return -EAGAIN; /* the caller asked not to wait */
        if ((r = weave__fd_park(s, st, events, WEAVE__NO_DEADLINE)) < 0)
            return r;
    }
}

/* Check the call may block, learn the fd and take its side (events).
 * Returns the fd's record, or NULL with *err set. With MSG_DONTWAIT the
 * side is not waited for: held by another call, it is -EAGAIN. */
static struct weave__fd *io_begin(struct weave__sched *s, int fd, int events, int flags, int *err)
{
    struct weave__fd *st;

    if (!s) {
        *err = -EPERM;
        return NULL;
    }
    if ((*err = weave__checkpoint(s)) < 0 || !(st = weave__fd_prepare(s, fd, err)))
        return NULL;
    if (flags & MSG_DONTWAIT) {
        if (!weave__lock_try(s, &st->side[events == WEAVE_OUT])) {
            *err = -EAGAIN;
            return NULL;
        }
    } else if ((*err = weave__fd_lock(s, st, events, WEAVE__NO_DEADLINE)) < 0) {
        return NULL;
    }
    return st;
}

/* One call of op on fd, in turn with the other tasks using its side. */
static ssize_t io_once(int fd, const struct io_op *op, int events)
{
    struct weave__sched *s = weave__tls;
    struct weave__fd *st;
    ssize_t n;
    int err;

    if (!(st = io_begin(s, fd, events, op->flags, &err)))
        return err;
    n = io_held(s, fd, st, op, events);
    weave__fd_unlock(s, st, events);
    return n;
}

static ssize_t ret_ssize(ssize_t r)
{
    if (r < 0) {
        errno = (int)-r;
        return -1;
    }
    return r;
}

/* Write everything op describes (one buffer, or iovecs), continuing after
 * short writes, holding the fd's output side throughout so that no other
 * task's write lands in the middle. Returns the total, a short total if an
 * error stopped it after some bytes, or -errno. */
static ssize_t write_all(int fd, struct io_op *op)
{
    struct weave__sched *s = weave__tls;
    struct iovec *owned = NULL; /* a copy of the caller's const iovecs */
    struct weave__fd *st;
    size_t done = 0;
    ssize_t n = 0;
    int err;

    if (!(st = io_begin(s, fd, WEAVE_OUT, op->flags, &err)))
        return err;
    for (;;) {
        size_t left;

        if ((n = io_held(s, fd, st, op, WEAVE_OUT)) < 0)
            break;
        done += (size_t)n;
        if (op->kind == OP_SEND) {
            op->buf = (char *)op->buf + n;
            op->len -= (size_t)n;
            if (op->len == 0)
                break;
            continue;
        }
        /* Drop the iovecs written in full, trim the first one left. */
        left = (size_t)n;
        while (op->iovcnt > 0 && left >= op->iov[0].iov_len) {
            left -= op->iov[0].iov_len;
            op->iov++;
            op->iovcnt--;
        }
        if (op->iovcnt == 0)
            break;
        if (!owned) {
            owned = malloc((size_t)op->iovcnt * sizeof(*owned));
            if (!owned)
                break;
            memcpy(owned, op->iov, (size_t)op->iovcnt * sizeof(*owned));
            op->iov = owned;
        }
        /* op->iov points into owned from here on. */
        ((struct iovec *)(uintptr_t)op->iov)->iov_base = (char *)op->iov[0].iov_base + left;
        ((struct iovec *)(uintptr_t)op->iov)->iov_len -= left;
    }
    weave__fd_unlock(s, st, WEAVE_OUT);
    free(owned);
    return done > 0 || n >= 0 ? (ssize_t)done : n;
}

/* ---- the calls ---------------------------------------------------------- */

static int check_iov(const struct iovec *iov, int iovcnt)
{
    size_t t = 0;

    if (iovcnt < 0 || iovcnt > IOV_MAX || (iovcnt > 0 && !iov))
        return -EINVAL;
    for (int i = 0; i < iovcnt; i++) {
        if (iov[i].iov_len > (size_t)SSIZE_MAX - t)
            return -EINVAL;
        t += iov[i].iov_len;
    }
    return 0;
}

WEAVE__ENTRY ssize_t weave_read(int fd, void *buf, size_t count)
{
    struct iovec v = {buf, count};
    struct io_op op = {.kind = OP_READ, .iov = &v, .iovcnt = 1};

    WEAVE__SCOPES_CHECK();
    return ret_ssize(io_once(fd, &op, WEAVE_IN));
}

WEAVE__ENTRY ssize_t weave_readv(int fd, const struct iovec *iov, int iovcnt)
{
    struct io_op op = {.kind = OP_READ, .iov = iov, .iovcnt = iovcnt};
    int r = check_iov(iov, iovcnt);

    WEAVE__SCOPES_CHECK();
    return ret_ssize(r < 0 ? r : io_once(fd, &op, WEAVE_IN));
}

WEAVE__ENTRY ssize_t weave_write(int fd, const void *buf, size_t count)
{
    struct iovec v = {(void *)(uintptr_t)buf, count};
    struct io_op op = {.kind = OP_WRITE, .iov = &v, .iovcnt = 1};

    WEAVE__SCOPES_CHECK();
    if (count > SSIZE_MAX)
        return ret_ssize(-EINVAL);
    if (count == 0)
        return ret_ssize(io_once(fd, &op, WEAVE_OUT));
    return ret_ssize(write_all(fd, &op));
}

WEAVE__ENTRY ssize_t weave_writev(int fd, const struct iovec *iov, int iovcnt)
{
    struct io_op op = {.kind = OP_WRITE, .iov = iov, .iovcnt = iovcnt};
    int r = check_iov(iov, iovcnt);

    WEAVE__SCOPES_CHECK();
    if (r < 0)
        return ret_ssize(r);
    if (weave__iov_total(iov, iovcnt) == 0)
        return ret_ssize(io_once(fd, &op, WEAVE_OUT));
    return ret_ssize(write_all(fd, &op));
}

/* fsync or fdatasync, holding the output side: after the writes of the
 * tasks ahead in its queue. */
static int sync_fd(int fd, bool datasync)
{
    struct weave__sched *s = weave__tls;
    struct weave__fd *st;
    int err, r;

    if (!(st = io_begin(s, fd, WEAVE_OUT, 0, &err)))
        return err;
    if (st->kind == WEAVE__FD_FILE)
        r = weave__file_sync(s, fd, st, datasync);
    else
        r = (datasync ? fdatasync(fd) : fsync(fd)) == 0 ? 0 : -errno;
    weave__fd_unlock(s, st, WEAVE_OUT);
    return r;
}

WEAVE__ENTRY int weave_fsync(int fd)
{
    WEAVE__SCOPES_CHECK();
    return weave__ret(sync_fd(fd, false));
}

WEAVE__ENTRY int weave_fdatasync(int fd)
{
    WEAVE__SCOPES_CHECK();
    return weave__ret(sync_fd(fd, true));
}

WEAVE__ENTRY ssize_t weave_recv(int fd, void *buf, size_t len, int flags)
{
    struct io_op op = {.kind = OP_RECV, .buf = buf, .len = len, .flags = flags};

    WEAVE__SCOPES_CHECK();
    return ret_ssize(io_once(fd, &op, WEAVE_IN));
}

WEAVE__ENTRY ssize_t weave_send(int fd, const void *buf, size_t len, int flags)
{
    struct io_op op = {.kind = OP_SEND, .buf = (void *)(uintptr_t)buf, .len = len, .flags = flags};

    WEAVE__SCOPES_CHECK();
    if (len > SSIZE_MAX)
        return ret_ssize(-EINVAL);
    if (len == 0)
        return ret_ssize(io_once(fd, &op, WEAVE_OUT));
    return ret_ssize(write_all(fd, &op));
}

WEAVE__ENTRY ssize_t weave_recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *src,
                                    socklen_t *addrlen)
{
    struct io_op op = {.kind = OP_RECVFROM,
                       .buf = buf,
                       .len = len,
                       .flags = flags,
                       .addr = src,
                       .addrlen = addrlen};

    WEAVE__SCOPES_CHECK();
    return ret_ssize(io_once(fd, &op, WEAVE_IN));
}

WEAVE__ENTRY ssize_t weave_sendto(int fd, const void *buf, size_t len, int flags,
                                  const struct sockaddr *dst, socklen_t addrlen)
{
    struct io_op op = {.kind = OP_SENDTO,
                       .buf = (void *)(uintptr_t)buf,
                       .len = len,
                       .flags = flags,
                       .to = dst,
                       .tolen = addrlen};

    WEAVE__SCOPES_CHECK();
    return ret_ssize(io_once(fd, &op, WEAVE_OUT));
}

WEAVE__ENTRY int weave_accept(int fd, struct sockaddr *addr, socklen_t *addrlen)
{
    struct io_op op = {.kind = OP_ACCEPT, .addr = addr, .addrlen = addrlen};
    struct weave__sched *s = weave__tls;
    struct weave__fd *st;
    ssize_t r;
    int err;

    WEAVE__SCOPES_CHECK();
    if (!(st = io_begin(s, fd, WEAVE_IN, 0, &err)))
        return weave__ret(err);
    r = io_held(s, fd, st, &op, WEAVE_IN);
    weave__fd_unlock(s, st, WEAVE_IN);
    if (r >= 0) /* a TCP listener's connections are TCP sockets */
        weave__fd_fresh((int)r, st->short_drains);
    return (int)ret_ssize(r);
}

ssize_t weave__read_lazy(int fd, size_t size, void **buf)
{
    struct weave__sched *s = weave__tls;
    struct iovec v = {NULL, size};
    struct io_op op = {.kind = OP_READ, .iov = &v, .iovcnt = 1};
    struct weave__fd *st;
    ssize_t n;
    int err;

    *buf = NULL;
    if (!(st = io_begin(s, fd, WEAVE_IN, 0, &err)))
        return err;
    for (;;) {
        if (st->drained && st->kind == WEAVE__FD_POLL) {
            /* Known empty: a read would only say EAGAIN. The registration
             * is edge-triggered and permanent, so input that came
             * meanwhile has queued an event (which clears the note). */
            if ((n = weave__fd_park(s, st, WEAVE_IN, WEAVE__NO_DEADLINE)) < 0)
                break;
            st->drained = 0;
        }
        if (!(v.iov_base = weave__buf_take(weave__bufs(s), size))) {
            n = -ENOMEM;
            break;
        }
        if (st->kind == WEAVE__FD_FILE)
            n = weave__file_io(s, fd, st, &v, 1, false);
        else if ((n = syscall_once(fd, &op)) < 0)
            n = -errno;
        if (n > 0) {
            note_short_read(st, &op, (size_t)n);
            *buf = v.iov_base;
            break;
        }
        weave__buf_give(weave__bufs(s), v.iov_base, size);
        if (n == -EINTR)
            continue;
        if ((n != -EAGAIN && n != -EWOULDBLOCK) || st->kind != WEAVE__FD_POLL)
            break; /* end of file, or an error (from a file, EAGAIN is one) */
        /* Empty now: any input from here on comes with an event. */
        st->drained = 1;
    }
    weave__fd_unlock(s, st, WEAVE_IN);
    return n;
}

/* Pause until timeout (the back-off's), or fail at overall. Returns 0 when
 * the pause is over, or -errno. */
static int backoff(struct weave__sched *s, int64_t pause, int64_t overall)
{
    struct weave__wait w;
    int why;

    weave__wait_init(&w, NULL, 0, pause < overall ? pause : overall, WEAVE_WAIT_SLEEP, NULL);
    why = weave__park(s, &w);
    if (why == WEAVE__WHY_TIMEOUT)
        return pause < overall ? 0 : -ETIMEDOUT;
    return weave__why_errno(why);
}

int weave__connect(struct weave__sched *s, int fd, const struct sockaddr *addr, socklen_t addrlen,
                   int64_t timeout)
{
    int64_t backoff_us = 1000;
    struct weave__fd *st;
    int soerr = 0, err, r;
    socklen_t len = sizeof(soerr);

    if ((r = weave__checkpoint(s)) < 0)
        return r;
    if (!(st = weave__fd_prepare(s, fd, &err)))
        return err;
    for (;;) {
        if (connect(fd, addr, addrlen) == 0)
            return 0;
        if (errno == EINPROGRESS || errno == EINTR)
            break;
        if (errno != EAGAIN)
            return -errno;
        /* A Unix socket whose listener's backlog is full: a blocking
         * connect would wait for room, and nothing reports room, so retry
         * after a growing pause. */
        if ((r = backoff(s, weave__deadline_after(backoff_us * 1000), timeout)) < 0)
            return r;
        if (backoff_us < 64000)
            backoff_us *= 2;
    }
    /* In progress: it is done when the socket becomes writable. */
    if ((r = weave__fd_lock(s, st, WEAVE_OUT, timeout)) < 0)
        return r;
    r = weave__fd_park(s, st, WEAVE_OUT, timeout);
    weave__fd_unlock(s, st, WEAVE_OUT);
    if (r < 0)
        return r;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0)
        return -errno;
    return soerr ? -soerr : 0;
}

WEAVE__ENTRY int weave_connect(int fd, const struct sockaddr *addr, socklen_t addrlen)
{
    struct weave__sched *s = weave__tls;

    WEAVE__SCOPES_CHECK();
    if (!s)
        return weave__ret(-EPERM);
    return weave__ret(weave__connect(s, fd, addr, addrlen, WEAVE__NO_DEADLINE));
}
