/*
 * proc.c - child processes: weave_proc_spawn and the calls on its handle.
 *
 * A child is started by spawn.c (posix_spawn, after the checks that give
 * exec's errno in the parent) and followed through a pidfd: the poller watches it, and the watcher reaps the child as soon
 * as it ends, whether or not a task waits, so a handle freed early never
 * leaves a zombie. Where the kernel has no pidfd_open (before 5.3) or
 * refuses one, the child is looked at with waitid(P_PID, WNOHANG): by its
 * waiters, at intervals growing from 1 to 50 ms, by the next spawn for a
 * freed handle, and at the scheduler's end. SIGCHLD is left to the program.
 *
 * The handles of a scheduler are linked in its struct weave__procs. When
 * the scheduler ends (weave__procs_term), the pipes are closed, the ended
 * children reaped, the running ones handed to a detached thread that reaps
 * them as they end, and every handle freed.
 *
 * Internals return 0 (or a count) or a negative errno; the public calls set
 * errno once, on the way out.
 */
#include "base/common.h"
#include "core/scope.h"
#include "core/time.h"
#include "core/wait.h"
#include "io/fd.h"
#include "io/proc.h"
#include "io/spawn.h"
#include "io/stream.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef P_PIDFD
#define P_PIDFD 3 /* waitid's idtype for a pidfd (Linux 5.4) */
#endif

#define POLL_FIRST_NS 1000000  /* without a pidfd: first look after 1 ms, */
#define POLL_LAST_NS  50000000 /* then twice as long each time, up to 50 ms */
#define SINK_FIRST    4096     /* communicate: first buffer of an output */
#define FEED_MAX      65536    /* communicate: bytes written at a time */

struct weave_proc {
    struct weave__watcher watcher; /* first: the pidfd's, in the poller */
    struct weave_link link;        /* in the scheduler's struct weave__procs */
    struct weave__sched *sched;    /* the scheduler it belongs to */
    struct weave_waitq waiters;    /* tasks parked in weave_proc_wait */
    unsigned waiting;              /* tasks in weave_proc_wait or communicate, parked or not */
    pid_t pid;
    int pidfd;               /* -1: none, or closed once reaped */
    int fd[3];               /* weave's ends of the pipes, or -1 */
    weave_stream *stream[3]; /* over fd[i], made on request, or NULL */
    int status;              /* as waitpid reports it, once reaped */
    int err;                 /* once reaped: 0, or -ECHILD (reaped by someone else) */
    unsigned flags;          /* weave_proc_opts.flags */
    bool reaped;
    bool watched; /* the pidfd is registered with the poller */
    bool freed;   /* weave_proc_free was called: released once reaped */
};

struct weave__procs {
    struct weave_link all; /* every handle not yet released */
    unsigned orphans;      /* freed, running, and without a pidfd: looked at by spawn */
};

/* ---- reaping --------------------------------------------------------------- */

/* The status waitpid(2) would report for what waitid filled in. */
static int status_of(const siginfo_t *si)
{
    switch (si->si_code) {
    case CLD_EXITED:
        return (si->si_status & 0xff) << 8;
    case CLD_DUMPED:
        return (si->si_status & 0x7f) | 0x80;
    default: /* CLD_KILLED */
        return si->si_status & 0x7f;
    }
}

/* Reap p if it has ended, without waiting. Returns whether it is reaped. */
static bool try_reap(struct weave_proc *p)
{
    siginfo_t si;
    int r;

    if (p->reaped)
        return true;
    memset(&si, 0, sizeof(si)); /* si_pid stays 0 if nothing ended */
    do
        r = p->pidfd >= 0 ? waitid((idtype_t)P_PIDFD, (id_t)p->pidfd, &si, WEXITED | WNOHANG)
                          : waitid(P_PID, (id_t)p->pid, &si, WEXITED | WNOHANG);
    while (r < 0 && errno == EINTR);
    if (r < 0) {
        if (errno != ECHILD)
            return false; /* not expected of a valid pidfd; look again later */
        p->err = -ECHILD; /* reaped by the program (waitpid(-1), SIGCHLD ignored) */
    } else if (si.si_pid == 0) {
        return false; /* still running */
    } else {
        p->status = status_of(&si);
    }
    p->reaped = true;
    return true;
}

static void release(struct weave_proc *p)
{
    weave__list_del(&p->link);
    free(p);
}

/* p was just reaped: stop watching it, and wake its waiters. */
static void ended(struct weave__sched *s, struct weave_proc *p)
{
    if (p->watched) {
        weave__poller_del(&s->poller, p->pidfd);
        p->watched = false;
    }
    if (p->pidfd >= 0) {
        close(p->pidfd);
        p->pidfd = -1;
    }
    weave__queue_wake_all(s, &p->waiters, 0);
}

/* Whether p is reaped, reaping it now if it has ended. A freed handle is
 * then the caller's to release. */
static bool reaped(struct weave__sched *s, struct weave_proc *p)
{
    if (p->reaped)
        return true;
    if (!try_reap(p))
        return false;
    if (p->freed && p->pidfd < 0)
        s->procs->orphans--;
    ended(s, p);
    return true;
}

/* The pidfd became readable: the child ended. */
static void proc_event(struct weave__sched *s, struct weave__watcher *w, int mask)
{
    struct weave_proc *p = (struct weave_proc *)w;

    (void)mask;
    if (reaped(s, p) && p->freed)
        release(p);
}

/* Freed handles without a pidfd have nobody to look at them but this. */
static void look_at_orphans(struct weave__sched *s, struct weave__procs *ps)
{
    struct weave_link *n, *tmp;

    if (ps->orphans == 0)
        return;
    weave__list_each(n, tmp, &ps->all) {
        struct weave_proc *p = weave__container_of(n, struct weave_proc, link);

        if (p->freed && p->pidfd < 0 && reaped(s, p))
            release(p);
    }
}

/* The scheduler's record of children, made on first use. */
static struct weave__procs *procs_of(struct weave__sched *s)
{
    struct weave__procs *ps = s->procs;

    if (ps)
        return ps;
    if (!(ps = calloc(1, sizeof(*ps))))
        return NULL;
    weave__list_init(&ps->all);
    s->procs = ps;
    return ps;
}

/* Follow the child through a pidfd in the poller, where the kernel gives
 * one; else p->pidfd stays -1 and the child is looked at instead. */
static void follow(struct weave__sched *s, struct weave_proc *p)
{
    int fd = (int)syscall(SYS_pidfd_open, p->pid, 0);

    if (fd < 0)
        return; /* ENOSYS (before 5.3), EMFILE, ...: waitid(P_PID) will do */
    (void)fcntl(fd, F_SETFD, FD_CLOEXEC); /* pidfd_open makes it so; older flags aside */
    p->pidfd = fd;
    /* Registered with the child running or ended, the edge-triggered
     * pidfd reports its end either way. */
    if (weave__poller_add(&s->poller, fd, &p->watcher, 1) == 0)
        p->watched = true;
}

static weave_proc *proc_spawn(const char *path, char *const argv[], const weave_proc_opts *opts,
                              int *err)
{
    static const weave_proc_opts defaults;
    struct weave__sched *s = weave__tls;
    const weave_proc_opts *o = opts ? opts : &defaults;
    struct weave__procs *ps;
    struct weave_proc *p;
    int fds[3];

    if (!path || !argv || !argv[0] || (*err = weave__spawn_check_opts(o)) < 0) {
        *err = -EINVAL;
        return NULL;
    }
    if (!s) {
        *err = -EPERM;
        return NULL;
    }
    if (!(ps = procs_of(s)) || !(p = calloc(1, sizeof(*p)))) {
        *err = -ENOMEM;
        return NULL;
    }
    look_at_orphans(s, ps);
    if ((*err = weave__spawn(path, argv, o, fds, &p->pid)) < 0) {
        free(p);
        return NULL;
    }
    p->watcher.fn = proc_event;
    p->sched = s;
    p->pidfd = -1;
    p->flags = o->flags;
    weave__queue_init(&p->waiters);
    for (int i = 0; i < 3; i++) {
        p->fd[i] = fds[i];
        if (p->fd[i] >= 0)
            weave__fd_fresh(p->fd[i], true); /* a short read from a pipe empties it */
    }
    weave__list_push(&ps->all, &p->link);
    follow(s, p);
    return p;
}

weave_proc *weave_proc_spawn(const char *path, char *const argv[], const weave_proc_opts *opts)
{
    int err = 0;
    weave_proc *p = proc_spawn(path, argv, opts, &err);

    if (!p)
        errno = -err;
    return p;
}

/* ---- the calls on a handle -------------------------------------------------- */

/* The check of every call that needs the handle's own scheduler. */
static int mine(const struct weave_proc *p)
{
    if (!p)
        return -EINVAL;
    return weave__tls && p->sched == weave__tls ? 0 : -EPERM;
}

pid_t weave_proc_pid(const weave_proc *p)
{
    return p ? p->pid : (pid_t)weave__ret(-EINVAL);
}

int weave_proc_fd(const weave_proc *p, int which)
{
    int r = mine(p);

    if (r < 0)
        return weave__ret(r);
    if (which < 0 || which > 2)
        return weave__ret(-EINVAL);
    return p->fd[which] >= 0 ? p->fd[which] : weave__ret(-EBADF);
}

weave_stream *weave_proc_stream(weave_proc *p, int which)
{
    int fd = weave_proc_fd(p, which);

    if (fd < 0)
        return NULL;
    if (!p->stream[which])
        p->stream[which] = weave_stream_new(fd, NULL); /* sets errno if NULL */
    return p->stream[which];
}

/* Close p's pipe of which, flushing its stream first if flush. */
static int close_pipe(struct weave_proc *p, int which, bool flush)
{
    int r = 0, fd = p->fd[which];

    if (fd < 0)
        return -EBADF;
    if (p->stream[which] && flush) {
        if (weave_stream_close(p->stream[which]) < 0)
            r = -errno; /* closed all the same */
    } else {
        if (p->stream[which])
            weave__stream_drop(p->stream[which]);
        if (weave_close(fd) < 0)
            r = -errno;
    }
    p->stream[which] = NULL;
    p->fd[which] = -1;
    return r;
}

WEAVE__ENTRY int weave_proc_close(weave_proc *p, int which)
{
    int r;

    WEAVE__SCOPES_CHECK();
    if ((r = mine(p)) < 0)
        return weave__ret(r);
    if (which < 0 || which > 2)
        return weave__ret(-EINVAL);
    return weave__ret(close_pipe(p, which, true));
}

static int wait_for(struct weave__sched *s, struct weave_proc *p, int *status, int64_t timeout_ms,
                    int64_t timeout);

static int proc_wait(struct weave_proc *p, int *status, int64_t timeout_ms)
{
    struct weave__sched *s = weave__tls;
    int64_t timeout = weave__deadline_in(timeout_ms, 1000000);
    int r;

    if (timeout < 0)
        return -EINVAL;
    if ((r = mine(p)) < 0 || (r = weave__checkpoint(s)) < 0)
        return r;
    p->waiting++;
    r = wait_for(s, p, status, timeout_ms, timeout);
    p->waiting--;
    return r;
}

/* proc_wait's loop. Without a pidfd the task wakes up now and then to look,
 * and is runnable, not parked, in between: p->waiting keeps p from being
 * freed under it. */
static int wait_for(struct weave__sched *s, struct weave_proc *p, int *status, int64_t timeout_ms,
                    int64_t timeout)
{
    int64_t step = POLL_FIRST_NS;
    int r;

    for (;;) {
        int64_t until = timeout;

        if (reaped(s, p)) {
            if (status && p->err == 0)
                *status = p->status;
            return p->err;
        }
        if (timeout_ms == 0)
            return -ETIMEDOUT;
        if (p->pidfd < 0 || !p->watched) {
            /* Nothing will tell: look again after a while. */
            int64_t look = weave__deadline_after(step);

            if (look < until)
                until = look;
            step = step * 2 < POLL_LAST_NS ? step * 2 : POLL_LAST_NS;
        }
        s->io_waiters++; /* the poller will wake it: this is no deadlock */
        r = weave__wait_in(s, WEAVE_WAIT_PROC, p, &p->waiters, NULL, until, NULL);
        s->io_waiters--;
        if (r == WEAVE__WHY_TIMEOUT && until != timeout)
            continue;
        if (r != WEAVE__WHY_EVENT)
            return weave__why_errno(r);
    }
}

WEAVE__ENTRY int weave_proc_wait(weave_proc *p, int *status)
{
    WEAVE__SCOPES_CHECK();
    return weave__ret(proc_wait(p, status, -1));
}

WEAVE__ENTRY int weave_proc_wait_timeout(weave_proc *p, int *status, int64_t timeout_ms)
{
    WEAVE__SCOPES_CHECK();
    return weave__ret(proc_wait(p, status, timeout_ms));
}

int weave_proc_kill(weave_proc *p, int sig)
{
    int r;

    if ((r = mine(p)) < 0)
        return weave__ret(r);
    if (sig < 0 || sig >= NSIG)
        return weave__ret(-EINVAL);
    if (p->reaped)
        return weave__ret(-ESRCH);
    /* Unreaped, the child (a zombie at worst) keeps its pid and its
     * group's id from being taken by another process. */
    if (p->flags & WEAVE_PROC_NEW_GROUP)
        return killpg(p->pid, sig);
    if (p->pidfd >= 0) {
        r = (int)syscall(SYS_pidfd_send_signal, p->pidfd, sig, NULL, 0);
        if (r == 0 || errno != ENOSYS)
            return r < 0 ? -1 : 0;
    }
    return kill(p->pid, sig);
}

int weave_proc_free(weave_proc *p)
{
    struct weave__sched *s = weave__tls;
    int r;

    if ((r = mine(p)) < 0)
        return weave__ret(r);
    if (p->waiting > 0)
        return weave__ret(-EBUSY);
    for (int i = 0; i < 3; i++)
        if (p->fd[i] >= 0)
            (void)close_pipe(p, i, false);
    p->freed = true;
    if (p->reaped) {
        release(p);
        return 0;
    }
    if (p->pidfd < 0)
        s->procs->orphans++; /* nothing will tell when it ends */
    if (reaped(s, p))
        release(p);
    return 0;
}

/* ---- communicate ------------------------------------------------------------ */

/* One output gathered by communicate. */
struct sink {
    char *buf;
    size_t len, cap;
};

/* Read what fd holds into k: > 0 while bytes came, 0 at end of file,
 * -EAGAIN when it is empty for now, or another -errno. */
static ssize_t drain_into(int fd, struct sink *k)
{
    ssize_t n;

    if (k->cap - k->len < 2) { /* room for a byte and the final NUL */
        size_t cap = k->cap ? k->cap * 2 : SINK_FIRST;
        char *b = cap > k->cap ? realloc(k->buf, cap) : NULL;

        if (!b)
            return -ENOMEM;
        k->buf = b;
        k->cap = cap;
    }
    do
        n = read(fd, k->buf + k->len, k->cap - k->len - 1);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    k->len += (size_t)n;
    return n;
}

/* Park until one of the fds (fds[i] >= 0) is ready for its events[i]. */
static int await_pipes(struct weave__sched *s, struct weave_proc *p, const int fds[3],
                       const int events[3])
{
    struct weave__waiter w[3];
    struct weave__wait wait;
    unsigned n = 0;
    int r = 0;

    for (int i = 0; i < 3; i++) {
        struct weave__fd *st;

        if (fds[i] < 0)
            continue;
        if (!(st = weave__fd_watch(s, fds[i], &r)))
            break;
        weave__queue_push(s, &st->ready[events[i] == WEAVE_OUT], &w[n++], NULL);
    }
    if (r < 0) {
        for (unsigned i = 0; i < n; i++)
            weave__list_del(&w[i].link);
        return r;
    }
    weave__wait_init(&wait, w, n, WEAVE__NO_DEADLINE, WEAVE_WAIT_PROC, p);
    s->fds->waiters++;
    s->io_waiters++;
    r = weave__park(s, &wait);
    s->io_waiters--;
    s->fds->waiters--;
    return r == WEAVE__WHY_EVENT ? 0 : weave__why_errno(r);
}

/* Feed input to stdin and gather stdout and stderr until every pipe is done. */
static int pump(struct weave__sched *s, struct weave_proc *p, const char *input, size_t input_len,
                struct sink sinks[3])
{
    size_t fed = 0;
    int r;

    for (;;) {
        int fds[3] = {-1, -1, -1}, events[3] = {0, 0, 0};
        bool waiting = false;

        if (p->fd[0] >= 0) {
            while (fed < input_len) {
                size_t chunk = input_len - fed < FEED_MAX ? input_len - fed : FEED_MAX;
                ssize_t n = write(p->fd[0], input + fed, chunk);

                if (n >= 0) {
                    fed += (size_t)n;
                } else if (errno == EAGAIN) {
                    fds[0] = p->fd[0], events[0] = WEAVE_OUT, waiting = true;
                    break;
                } else if (errno == EPIPE) {
                    fed = input_len; /* the child wants no more: it gets less */
                } else if (errno != EINTR) {
                    return -errno;
                }
            }
            if (fed == input_len && (r = close_pipe(p, 0, false)) < 0)
                return r;
        }
        for (int i = 1; i < 3; i++) {
            ssize_t n;

            if (p->fd[i] < 0)
                continue;
            while ((n = drain_into(p->fd[i], &sinks[i])) > 0)
                ;
            if (n == -EAGAIN) {
                fds[i] = p->fd[i], events[i] = WEAVE_IN, waiting = true;
            } else if (n == 0) {
                if ((r = close_pipe(p, i, false)) < 0)
                    return r;
            } else {
                return (int)n;
            }
        }
        if (!waiting)
            return 0;
        if ((r = await_pipes(s, p, fds, events)) < 0)
            return r;
    }
}

static int communicate(weave_proc *p, const void *input, size_t input_len, weave_proc_output *out)
{
    struct weave__sched *s = weave__tls;
    struct sink sinks[3];
    int r;

    if ((r = mine(p)) < 0)
        return r;
    if (!out || (input_len > 0 && (!input || p->fd[0] < 0)))
        return -EINVAL;
    for (int i = 0; i < 3; i++)
        if (p->stream[i] && weave_stream_buffered(p->stream[i]) > 0)
            return -EBUSY; /* bytes a stream holds would be lost or reordered */
    if ((r = weave__checkpoint(s)) < 0)
        return r;
    if (p->stream[0] && weave_stream_flush(p->stream[0]) < 0)
        return -errno; /* what the caller wrote to the stream goes first */
    memset(out, 0, sizeof(*out));
    memset(sinks, 0, sizeof(sinks));
    p->waiting++;
    /* Each output pipe that is open is read, so that a child filling it
     * cannot stall; drain_into makes its buffer before the first read, so
     * an empty output is "", and one that is no pipe NULL. */
    if ((r = pump(s, p, input, input_len, sinks)) == 0)
        r = proc_wait(p, &out->status, -1);
    p->waiting--;
    if (r < 0) {
        free(sinks[1].buf);
        free(sinks[2].buf);
        return r;
    }
    for (int i = 1; i < 3; i++)
        if (sinks[i].buf)
            sinks[i].buf[sinks[i].len] = '\0';
    out->out = sinks[1].buf, out->out_len = sinks[1].len;
    out->err = sinks[2].buf, out->err_len = sinks[2].len;
    return 0;
}

WEAVE__ENTRY int weave_proc_communicate(weave_proc *p, const void *input, size_t input_len,
                                        weave_proc_output *out)
{
    WEAVE__SCOPES_CHECK();
    return weave__ret(communicate(p, input, input_len, out));
}

/* ---- the scheduler's end ---------------------------------------------------- */

/* Children still running when their scheduler ended, for the reaper. */
struct leftovers {
    size_t n;
    pid_t *pid;
    int *pidfd; /* -1 where there is none */
};

static void *reaper(void *arg)
{
    struct leftovers *l = arg;
    struct pollfd *pfd = calloc(l->n, sizeof(*pfd));
    size_t waiting = 0;

    for (size_t i = 0; i < l->n; i++)
        if (l->pidfd[i] >= 0 && pfd) {
            pfd[waiting].fd = l->pidfd[i];
            pfd[waiting++].events = POLLIN;
        }
    while (waiting > 0) {
        if (poll(pfd, waiting, -1) < 0)
            continue; /* EINTR (every signal is blocked here), or ENOMEM: again */
        for (size_t i = 0; i < waiting;) {
            siginfo_t si;

            if (!pfd[i].revents) {
                i++;
                continue;
            }
            (void)waitid((idtype_t)P_PIDFD, (id_t)pfd[i].fd, &si, WEXITED | WNOHANG);
            close(pfd[i].fd);
            pfd[i] = pfd[--waiting];
        }
    }
    /* Without a pidfd (or without memory for the poll), one at a time. */
    for (size_t i = 0; i < l->n; i++)
        if (l->pidfd[i] < 0 || !pfd) {
            while (waitpid(l->pid[i], NULL, 0) < 0 && errno == EINTR)
                ;
            if (l->pidfd[i] >= 0)
                close(l->pidfd[i]);
        }
    free(pfd);
    free(l->pid);
    free(l->pidfd);
    free(l);
    return NULL;
}

/* Start the reaper for l; false if no thread could be made. */
static bool hand_over(struct leftovers *l)
{
    pthread_attr_t attr;
    pthread_t t;
    sigset_t all, old;
    bool ok;

    if (pthread_attr_init(&attr) != 0)
        return false;
    (void)pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    (void)pthread_attr_setstacksize(&attr, (size_t)64 * 1024);
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* the thread is born with every signal blocked */
    ok = pthread_create(&t, &attr, reaper, l) == 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    return ok;
}

void weave__procs_term(struct weave__sched *s)
{
    struct weave__procs *ps = s->procs;
    struct weave_link *n, *tmp;
    struct leftovers *l;
    size_t count = 0;

    if (!ps)
        return;
    weave__list_each(n, tmp, &ps->all)
        count++;
    l = calloc(1, sizeof(*l));
    if (l) {
        l->pid = calloc(count ? count : 1, sizeof(*l->pid));
        l->pidfd = calloc(count ? count : 1, sizeof(*l->pidfd));
    }
    weave__list_each(n, tmp, &ps->all) {
        struct weave_proc *p = weave__container_of(n, struct weave_proc, link);

        for (int i = 0; i < 3; i++) {
            if (p->stream[i])
                weave__stream_drop(p->stream[i]);
            if (p->fd[i] >= 0)
                close(p->fd[i]); /* the fd table goes next: nothing to forget */
        }
        if (p->watched)
            weave__poller_del(&s->poller, p->pidfd);
        if (!try_reap(p) && l && l->pid && l->pidfd) {
            l->pid[l->n] = p->pid;
            l->pidfd[l->n++] = p->pidfd; /* the reaper's now */
        } else if (p->pidfd >= 0) {
            close(p->pidfd); /* reaped; or, out of memory, left to init (a zombie) */
        }
        free(p);
    }
    if (l && (l->n == 0 || !hand_over(l))) {
        for (size_t i = 0; i < l->n; i++)
            if (l->pidfd[i] >= 0)
                close(l->pidfd[i]); /* no thread: the children become zombies */
        free(l->pid);
        free(l->pidfd);
        free(l);
    }
    free(ps);
    s->procs = NULL;
}
