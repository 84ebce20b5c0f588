/*
 * fd.c - the fd table: waiting on file descriptors, and forgetting them.
 *
 * weave keeps a record per fd number it has waited on or done I/O on
 * (struct weave__fd, fd.h). Records live in chunks that never move,
 * so waiters and the poller may point into them. A record is registered
 * with the poller on the first wait that has to park, with the record's
 * watcher as the event's data, and stays registered until weave_fd_forget
 * or weave_close; it is never re-armed between waits (the poller is
 * edge-triggered).
 *
 * Each direction of an fd is a FIFO lock (a "side"). A call that may wait
 * for input or output takes the side first, so tasks waiting on one fd in
 * one direction queue behind each other and only the side's holder waits
 * for readiness: an event wakes exactly the task that will use it, and a
 * write that writes everything holds its side until it is done, so two
 * writers never interleave. Forgetting an fd wakes every task in any of its
 * queues with EBADF.
 *
 * An fd the user hands weave for I/O is switched to O_NONBLOCK on first
 * use. The flag lives on the open file description, which other fds and
 * other processes may share (the shell's terminal on stdin), so weave
 * remembers that it set the flag and clears it again when it is done with
 * the fd: when the fd is forgotten (weave_fd_forget, weave_close) and, for
 * every fd still known, when weave_run ends. An fd that was non-blocking
 * already is left as it is, and so are the fds weave makes itself.
 *
 * An fd closed with close(2) behind weave's back may have its number
 * reused. Before clearing the flag weave checks with fstat that the number
 * still names the file (st_dev, st_ino) it set the flag on; a number that
 * names another file is left alone. That is as far as the kernel lets a
 * process tell: the same file opened again under the same number (a
 * terminal, a FIFO) cannot be told from the description weave changed,
 * which is why weave.h asks for weave_close or weave_fd_forget.
 */
#include "base/common.h"
#include "core/scope.h"
#include "core/time.h"
#include "io/fd.h"

#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK_BITS WEAVE__FD_CHUNK_BITS
#define CHUNK      (1u << CHUNK_BITS) /* records per chunk */

int weave__fdtab_init(struct weave__sched *s)
{
    s->fds = calloc(1, sizeof(*s->fds));
    return s->fds ? 0 : -ENOMEM;
}

static void give_back(struct weave__sched *s, struct weave__fd *st, bool pass);

void weave__fdtab_term(struct weave__sched *s)
{
    struct weave__fdtab *tab = s->fds;

    if (!tab)
        return;
    for (size_t i = 0; i < tab->nchunks; i++) {
        if (!tab->chunks[i])
            continue;
        for (unsigned j = 0; j < CHUNK; j++)
            give_back(s, &tab->chunks[i][j], false);
        free(tab->chunks[i]);
    }
    weave__bufcache_term(&tab->bufs);
    free(tab->chunks);
    free(tab);
    s->fds = NULL;
}

void weave__fdtab_stats(const struct weave__sched *s, weave_stats *st)
{
    st->fd_waiters = s->fds->waiters;
    st->fds_registered = s->fds->registered;
}

static void fd_event(struct weave__sched *s, struct weave__watcher *w, int mask);

/* The record of fd (>= 0), made if needed; NULL if out of memory. */
static struct weave__fd *fd_state(struct weave__sched *s, int fd)
{
    struct weave__fdtab *tab = s->fds;
    size_t c = (size_t)fd >> CHUNK_BITS;
    struct weave__fd *chunk;

    if (c >= tab->nchunks) {
        size_t n = tab->nchunks ? tab->nchunks : 4;
        struct weave__fd **v;

        while (n <= c)
            n *= 2;
        v = realloc(tab->chunks, n * sizeof(struct weave__fd *));
        if (!v)
            return NULL;
        memset(v + tab->nchunks, 0, (n - tab->nchunks) * sizeof(struct weave__fd *));
        tab->chunks = v;
        tab->nchunks = n;
    }
    if (!tab->chunks[c]) {
        if (!(chunk = calloc(CHUNK, sizeof(*chunk))))
            return NULL;
        for (unsigned i = 0; i < CHUNK; i++) {
            chunk[i].watcher.fn = fd_event;
            chunk[i].fd = (int)((c << CHUNK_BITS) | i);
            for (int d = 0; d < 2; d++) {
                weave__lock_init(&chunk[i].side[d]);
                weave__queue_init(&chunk[i].ready[d]);
            }
        }
        tab->chunks[c] = chunk;
    }
    return &tab->chunks[c][(unsigned)fd & (CHUNK - 1)];
}

int weave__fd_mask(int events, int got)
{
    int m = got & (events | WEAVE_ERR | WEAVE_HUP);

    if (got & (WEAVE_ERR | WEAVE_HUP))
        m |= events;
    return m;
}

int weave__fd_poll(int fd, int events)
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
    return weave__fd_mask(events, got);
}

/* Whether another call holds a side of st that events need. */
static bool sides_held(const struct weave__fd *st, int events)
{
    return st && (((events & WEAVE_IN) && st->side[0].priv_owner) ||
                  ((events & WEAVE_OUT) && st->side[1].priv_owner));
}

int weave__fd_lock_wait(struct weave__sched *s, struct weave__fd *st, int events, int64_t timeout)
{
    int r = 0;

    for (int d = 0; d < 2 && r == 0; d++) {
        weave_mutex *l = &st->side[d];

        if (!(events & (d ? WEAVE_OUT : WEAVE_IN)) || weave__lock_try(s, l))
            continue;
        s->fds->waiters++;
        r = weave__lock_acquire(s, l, timeout);
        s->fds->waiters--;
        if (r < 0 && d == 1 && (events & WEAVE_IN))
            weave__lock_release(s, &st->side[0]);
    }
    return r;
}

/* Register st with the poller if it is not. Returns 0 or -errno: EPERM
 * not pollable (a regular file), ENOMEM. */
static int watch(struct weave__sched *s, struct weave__fd *st)
{
    int r;

    if (st->registered)
        return 0;
    r = weave__poller_add(&s->poller, st->fd, &st->watcher, 0);
    if (r < 0)
        return r == -ENOSPC ? -ENOMEM : r;
    st->registered = 1;
    s->fds->registered++;
    return 0;
}

struct weave__fd *weave__fd_watch(struct weave__sched *s, int fd, int *err)
{
    struct weave__fd *st = fd_state(s, fd);

    if (!st) {
        *err = -ENOMEM;
        return NULL;
    }
    if ((*err = watch(s, st)) < 0)
        return NULL;
    return st;
}

int weave__fd_park(struct weave__sched *s, struct weave__fd *st, int events, int64_t timeout)
{
    struct weave__waiter w[2];
    struct weave__wait wait;
    unsigned n = 0;
    int r = watch(s, st);

    if (r == -EPERM)
        return events; /* not pollable: always ready, as with poll(2) */
    if (r < 0)
        return r;
    if (events & WEAVE_IN)
        weave__queue_push(s, &st->ready[0], &w[n++], NULL);
    if (events & WEAVE_OUT)
        weave__queue_push(s, &st->ready[1], &w[n++], NULL);
    weave__wait_init(&wait, w, n, timeout, WEAVE_WAIT_FD, NULL);
    wait.fd = st->fd;
    s->fds->waiters++;
    s->io_waiters++;
    r = weave__park(s, &wait);
    s->io_waiters--;
    s->fds->waiters--;
    if (r != WEAVE__WHY_EVENT)
        return weave__why_errno(r);
    return weave__fd_mask(events, (int)wait.fired->value);
}

static void fd_event(struct weave__sched *s, struct weave__watcher *w, int mask)
{
    struct weave__fd *st = weave__container_of(w, struct weave__fd, watcher);

    if (!st->registered)
        return; /* forgotten by a watcher earlier in this batch */
    if (mask & WEAVE_IN)
        st->drained = 0;
    if (mask & (WEAVE__RDHUP | WEAVE_HUP | WEAVE_ERR))
        st->read_closed = 1;
    if (mask & WEAVE_IN)
        weave__queue_wake_all(s, &st->ready[0], mask);
    if (mask & WEAVE_OUT)
        weave__queue_wake_all(s, &st->ready[1], mask);
}

static int wait_fd(int fd, int events, int64_t timeout_ms)
{
    struct weave__sched *s = weave__tls;
    struct weave__fd *st;
    int64_t timeout;
    int r;

    if (fd < 0)
        return -EBADF;
    if (events == 0 || (events & ~(WEAVE_IN | WEAVE_OUT)))
        return -EINVAL;
    if ((timeout = weave__deadline_in(timeout_ms, 1000000)) < 0)
        return -EINVAL;
    if (!s)
        return -EPERM;
    if ((r = weave__checkpoint(s)) < 0)
        return r;
    /* Edge-triggered registration reports changes only: look at the fd's
     * state first, and park only if it is not ready now. This also tells
     * an fd that is not open (EBADF) before any record is made for it. */
    r = weave__fd_poll(fd, events);
    if (r < 0 || timeout_ms == 0)
        return r ? r : -ETIMEDOUT;
    if (r > 0 && !sides_held(weave__fd_find(s, fd), events))
        return r; /* ready, and nobody waits before us */
    if (!(st = fd_state(s, fd)))
        return -ENOMEM;
    if ((r = weave__fd_lock(s, st, events, timeout)) < 0)
        return r;
    r = weave__fd_poll(fd, events); /* the others before us may have changed it */
    if (r == 0)
        r = weave__fd_park(s, st, events, timeout);
    weave__fd_unlock(s, st, events);
    return r;
}

WEAVE__ENTRY int weave_wait_fd(int fd, int events, int64_t timeout_ms)
{
    WEAVE__SCOPES_CHECK();
    return weave__ret(wait_fd(fd, events, timeout_ms));
}

/* Whether st is a user's fd that weave learned already non-blocking: the
 * only kind of record that can share its description with one weave made
 * non-blocking (counted in tab->lenders, so that pass_on walks the table
 * only when there is one). */
static bool lender(const struct weave__fd *st)
{
    return st->kind == WEAVE__FD_POLL && !st->made_nonblocking && (st->dev || st->ino);
}

/* Wake every task waiting on fd with EBADF, drop its registration and
 * cached state. A side stays held by the call that holds it, which returns
 * EBADF and releases it. */
static void forget(struct weave__sched *s, struct weave__fd *st)
{
    if (lender(st))
        s->fds->lenders--;
    for (int d = 0; d < 2; d++) {
        weave__queue_close(s, &st->ready[d]);
        weave__queue_close(s, &st->side[d].priv_waiters);
    }
    if (st->registered) {
        weave__poller_del(&s->poller, st->fd);
        st->registered = 0;
        s->fds->registered--;
    }
    st->kind = WEAVE__FD_UNKNOWN;
    st->no_nowait_read = st->no_nowait_write = 0;
    st->short_drains = st->drained = st->read_closed = 0;
}

/* Whether st's fd still names the file weave learned at its number. */
static bool same_file(const struct weave__fd *st)
{
    struct stat sb;

    return fstat(st->fd, &sb) == 0 && sb.st_dev == st->dev && sb.st_ino == st->ino;
}

/* st's fd was just made blocking again. Another fd that weave still uses
 * may share its open file description (a dup of it), and would now block
 * the thread. Such an fd names the same file and, being in use, was
 * non-blocking until a moment ago: make it non-blocking again and let it
 * give the mode back in its turn. An fd of the same file that is still
 * non-blocking has a description of its own. Such an fd was learned
 * already non-blocking (a lender): with none in the table, nothing to do;
 * else a walk of the table. */
static void pass_on(struct weave__sched *s, const struct weave__fd *st)
{
    struct weave__fdtab *tab = s->fds;

    if (tab->lenders == 0)
        return;
    for (size_t i = 0; i < tab->nchunks; i++) {
        struct weave__fd *chunk = tab->chunks[i];

        for (unsigned j = 0; chunk && j < CHUNK; j++) {
            struct weave__fd *o = &chunk[j];
            int fl;

            if (o == st || o->kind != WEAVE__FD_POLL || o->dev != st->dev || o->ino != st->ino ||
                !same_file(o) || (fl = fcntl(o->fd, F_GETFL)) < 0 || (fl & O_NONBLOCK))
                continue;
            if (fcntl(o->fd, F_SETFL, fl | O_NONBLOCK) == 0) {
                o->made_nonblocking = 1; /* weave's to give back now */
                tab->lenders--;
            }
            return;
        }
    }
}

/* Clear O_NONBLOCK on st's fd if weave set it there and the fd still names
 * the same file; then, if pass, keep the fds sharing its description that
 * weave still uses non-blocking. */
static void give_back(struct weave__sched *s, struct weave__fd *st, bool pass)
{
    int fl;

    if (!st->made_nonblocking)
        return;
    st->made_nonblocking = 0;
    if (!same_file(st) || (fl = fcntl(st->fd, F_GETFL)) < 0 || !(fl & O_NONBLOCK))
        return;
    if (fcntl(st->fd, F_SETFL, fl & ~O_NONBLOCK) == 0 && pass)
        pass_on(s, st);
}

int weave_fd_forget(int fd)
{
    struct weave__sched *s = weave__tls;
    struct weave__fd *st;

    if (fd < 0)
        return weave__ret(-EBADF);
    if (s && (st = weave__fd_find(s, fd)) != NULL) {
        forget(s, st);
        give_back(s, st, true);
    }
    return 0;
}

void weave__fd_fresh(int fd, bool short_drains)
{
    struct weave__sched *s = weave__tls;
    struct weave__fd *st;

    if (!s)
        return;
    if ((st = weave__fd_find(s, fd)) != NULL)
        forget(s, st);
    else if (!(st = fd_state(s, fd)))
        return; /* out of memory: the first I/O call learns the fd instead */
    /* The number was free, so whatever file it named before was closed
     * behind weave's back: there is nothing left to give back to. */
    st->made_nonblocking = 0;
    st->dev = 0;
    st->ino = 0;
    st->kind = WEAVE__FD_POLL;
    st->short_drains = short_drains;
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

struct weave__fd *weave__fd_learn(struct weave__sched *s, int fd, int *err)
{
    struct weave__fd *st;
    struct stat sb;
    int fl;

    if (fd < 0) {
        *err = -EBADF;
        return NULL;
    }
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
    /* Only a flag weave set is weave's to clear: not the user's own. */
    st->made_nonblocking = !(fl & O_NONBLOCK);
    st->dev = sb.st_dev;
    st->ino = sb.st_ino;
    st->kind = WEAVE__FD_POLL;
    if (lender(st))
        s->fds->lenders++;
    st->short_drains = short_read_drains(fd, &sb, fl);
    return st;
}

int weave_close(int fd)
{
    if (weave_fd_forget(fd) < 0)
        return -1;
    return close(fd);
}
