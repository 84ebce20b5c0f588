/*
 * signal.c - signals as events: weave_signal_wait, and weave_cancel_on_signals,
 * which turns SIGINT and SIGTERM into the cancellation of the main task.
 *
 * A signal weave handles is blocked on the scheduler's thread from the
 * first call that names it until weave_run returns, and read through one
 * signalfd per scheduler, registered with the poller behind a watcher. The
 * signalfd's mask is kept to what someone wants right now: the signals the
 * parked waiters wait for, plus SIGINT and SIGTERM once
 * weave_cancel_on_signals was called, plus a signal watched for good by
 * a layer above (weave__signal_watch: the run's dump signal, whose arrival
 * dumps the task list). Any other signal of the blocked set
 * stays pending in the kernel, where the next wait that names it finds it
 * (sigtimedwait with a zero timeout), as sigwait would.
 *
 * Blocking must survive task switches: under ucontext every context
 * restores its own saved mask, so blocking a set means the thread, the
 * template new tasks are made from, weave_run's own context and every live
 * task's saved context (context.h).
 *
 * The signalfd is edge-triggered in the poller, and a change of its mask
 * does not make the poller report a signal that was pending already; hence
 * the look at what is pending before a task parks.
 *
 * A signal read from the signalfd wakes every task waiting for it at that
 * moment (Go's signal.Notify, Trio's signal receivers): a signal is news,
 * not a token to hand out. The waker takes the woken waiters' wants off the
 * counts at once and narrows the signalfd's mask before it reads again, so
 * a second signal that nobody waits for any longer stays pending.
 */
#include "base/common.h"
#include "core/scope.h"
#include "core/time.h"
#include "core/wait.h"
#include "io/signal.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

struct weave__signals {
    struct weave__watcher watcher; /* first: the poller hands it back */
    int fd;                        /* the signalfd */
    sigset_t blocked;              /* blocked on the thread by this module, this run */
    sigset_t watched;              /* the signalfd's mask */
    unsigned wanted[NSIG];         /* parked waiters whose set has the signal */
    struct weave_waitq waiters;    /* tasks in weave_signal_wait; data: their set */
    bool cancel_on;                /* weave_cancel_on_signals was called */
    int watch_sig;                 /* watched for good (weave__signal_watch), or 0 */
    weave__signal_fn *watch_fn;    /* what it calls */
    int stop_signal;               /* the first SIGINT/SIGTERM since, or 0 */
    int *caught;                   /* where to store it, or NULL */
};

/* Signals weave can never wait for: those that cannot be blocked or
 * caught, those the kernel sends to the thread that faults (blocking them
 * does not stop the fault from killing the process), and weave's own. */
bool weave__signal_refused(int sig)
{
    switch (sig) {
    case SIGKILL:
    case SIGSTOP:
    case SIGSEGV:
    case SIGBUS:
    case SIGILL:
    case SIGFPE:
    case SIGTRAP:
    case SIGSYS:
    case SIGABRT:
    case SIGPIPE: /* weave's: a write to a closed peer fails with EPIPE */
        return true;
    default:
        /* The C library keeps the signals between 31 and SIGRTMIN. */
        return sig > 31 && sig < SIGRTMIN;
    }
}

/* What weave_signal_wait refuses: those, and the signal watched for good. */
static bool refused(const struct weave__sched *s, int sig)
{
    return weave__signal_refused(sig) || (s->signals && sig == s->signals->watch_sig);
}

/* Block set on the thread and in every context that will run on it. */
static void block_everywhere(struct weave__sched *s, struct weave__signals *sg, const sigset_t *set)
{
    struct weave_link *n, *tmp;
    sigset_t fresh;
    int any = 0;

    memset(&fresh, 0, sizeof(fresh)); /* sigorset reads all of it */
    sigemptyset(&fresh);
    for (int sig = 1; sig < NSIG; sig++)
        if (sigismember(set, sig) == 1 && !sigismember(&sg->blocked, sig)) {
            sigaddset(&fresh, sig);
            any = 1;
        }
    if (!any)
        return;
    pthread_sigmask(SIG_BLOCK, &fresh, NULL);
    weave__ctx_sigblock_tmpl(&s->tmpl, &fresh);
    weave__ctx_sigblock(&s->root, &fresh);
    weave__list_each(n, tmp, &s->live)
        weave__ctx_sigblock(&weave__container_of(n, struct weave__task, live)->ctx, &fresh);
    sigorset(&sg->blocked, &sg->blocked, &fresh);
}

/* Set the signalfd's mask to what is wanted now. */
static void rewatch(struct weave__signals *sg)
{
    sigset_t want;

    /* sigemptyset clears only the kernel's part of a sigset_t; the whole
     * of it is compared below. */
    memset(&want, 0, sizeof(want));
    sigemptyset(&want);
    for (int sig = 1; sig < NSIG; sig++)
        if (sg->wanted[sig] > 0)
            sigaddset(&want, sig);
    if (sg->cancel_on) {
        sigaddset(&want, SIGINT);
        sigaddset(&want, SIGTERM);
    }
    if (sg->watch_sig)
        sigaddset(&want, sg->watch_sig);
    /* Changing the mask of a valid signalfd fails only if the fd is bad;
     * should it fail, the next change tries again. */
    if (memcmp(&want, &sg->watched, sizeof(want)) != 0 && signalfd(sg->fd, &want, 0) >= 0)
        sg->watched = want;
}

static void want(struct weave__signals *sg, const sigset_t *set, int delta)
{
    for (int sig = 1; sig < NSIG; sig++)
        if (sigismember(set, sig) == 1)
            sg->wanted[sig] = (unsigned)((int)sg->wanted[sig] + delta);
}

/* A second stop signal: end the process as that signal does by default,
 * so that the shell sees death by it. */
static _Noreturn void die_of(int sig)
{
    struct sigaction sa;
    sigset_t one;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    (void)sigaction(sig, &sa, NULL);
    sigemptyset(&one);
    sigaddset(&one, sig);
    (void)raise(sig);
    (void)pthread_sigmask(SIG_UNBLOCK, &one, NULL);
    _exit(128 + sig); /* not reached: the signal ends the process */
}

/* A stop by sig: record it, for weave_run's EINTR and the caller's
 * *caught, and cancel the main task. */
static void stopped(struct weave__sched *s, struct weave__signals *sg, int sig)
{
    struct weave_link *n, *tmp;

    sg->stop_signal = sig;
    if (sg->caught)
        *sg->caught = sig;
    weave__list_each(n, tmp, &s->live) {
        struct weave__task *t = weave__container_of(n, struct weave__task, live);

        if (t->flags & WEAVE__MAIN)
            weave__cancel(s, t);
    }
}

/* SIGINT or SIGTERM while weave_cancel_on_signals holds: the first cancels
 * the main task (and tells whoever registered s->on_stop: the schedulers
 * started together with s, which count a stop in any of them as the
 * first), a second ends the process. */
static void stop(struct weave__sched *s, struct weave__signals *sg, int sig)
{
    if (sg->stop_signal || (s->on_stop && s->on_stop(s, sig)))
        die_of(sig); /* a second one, here or in a scheduler started with s */
    stopped(s, sg, sig);
}

/* sig was taken: act on it, and wake every task waiting for it. */
static void deliver(struct weave__sched *s, struct weave__signals *sg, int sig)
{
    struct weave_link *n, *tmp;

    if (sig == sg->watch_sig) {
        sg->watch_fn(s, sig); /* nobody may wait for it */
        return;
    }
    if (sg->cancel_on && (sig == SIGINT || sig == SIGTERM))
        stop(s, sg, sig);
    weave__list_each(n, tmp, &sg->waiters.waiters) {
        struct weave__waiter *w = weave__container_of(n, struct weave__waiter, link);
        const sigset_t *set = w->data;

        if (sigismember(set, sig) == 1) {
            want(sg, set, -1);
            weave__wake_waiter(s, w, sig); /* unlinks it */
        }
    }
    rewatch(sg);
}

static void signals_event(struct weave__sched *s, struct weave__watcher *w, int mask)
{
    struct weave__signals *sg = (struct weave__signals *)w;
    struct signalfd_siginfo si;

    (void)mask;
    /* One at a time: each may narrow the mask for the next read. */
    while (read(sg->fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
        deliver(s, sg, (int)si.ssi_signo);
}

/* The scheduler's signal state, made on first use; NULL with *err set. */
static struct weave__signals *signals_of(struct weave__sched *s, int *err)
{
    struct weave__signals *sg = s->signals;
    sigset_t none;

    if (sg)
        return sg;
    if (!(sg = calloc(1, sizeof(*sg)))) {
        *err = -ENOMEM;
        return NULL;
    }
    sg->watcher.fn = signals_event;
    sigemptyset(&sg->blocked);
    sigemptyset(&sg->watched);
    weave__queue_init(&sg->waiters);
    sigemptyset(&none);
    sg->fd = signalfd(-1, &none, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sg->fd < 0 || (*err = weave__poller_add(&s->poller, sg->fd, &sg->watcher, 1)) < 0) {
        if (sg->fd < 0)
            *err = errno > 0 ? -errno : -ENOMEM;
        else
            close(sg->fd);
        free(sg);
        return NULL;
    }
    s->signals = sg;
    return sg;
}

/* Take a signal of set that is pending, if any: its number, or 0. */
static int take_pending(const sigset_t *set)
{
    static const struct timespec zero = {0, 0};
    sigset_t pending;
    int sig;

    if (sigpending(&pending) != 0)
        return 0;
    for (sig = 1; sig < NSIG; sig++)
        if (sigismember(set, sig) == 1 && sigismember(&pending, sig) == 1)
            break;
    if (sig == NSIG)
        return 0;
    sig = sigtimedwait(set, NULL, &zero);
    return sig > 0 ? sig : 0;
}

static int signal_wait(const sigset_t *set, int64_t timeout_ms)
{
    struct weave__sched *s = weave__tls;
    int64_t timeout = weave__deadline_in(timeout_ms, 1000000);
    struct weave__signals *sg;
    struct weave__waiter w;
    struct weave__wait wait;
    sigset_t mine;
    int r, sig, any = 0;

    if (!set || timeout < 0)
        return -EINVAL;
    if (!s)
        return -EPERM;
    for (sig = 1; sig < NSIG; sig++)
        if (sigismember(set, sig) == 1) {
            if (refused(s, sig))
                return -EINVAL;
            any = 1;
        }
    if (!any)
        return -EINVAL;
    if ((r = weave__checkpoint(s)) < 0)
        return r;
    if (!(sg = signals_of(s, &r)))
        return r;
    block_everywhere(s, sg, set);
    if ((sig = take_pending(set)) > 0) {
        deliver(s, sg, sig); /* to the others waiting for it */
        return sig;
    }
    if (timeout_ms == 0)
        return -ETIMEDOUT;
    mine = *set; /* the caller's may change while we wait */
    want(sg, &mine, +1);
    rewatch(sg);
    weave__queue_push(s, &sg->waiters, &w, &mine);
    weave__wait_init(&wait, &w, 1, timeout, WEAVE_WAIT_SIGNAL, NULL);
    s->io_waiters++;
    r = weave__park(s, &wait);
    s->io_waiters--;
    if (r == WEAVE__WHY_EVENT)
        return (int)w.value; /* deliver took our wants off */
    want(sg, &mine, -1);
    rewatch(sg);
    return weave__why_errno(r);
}

WEAVE__ENTRY int weave_signal_wait(const sigset_t *set, int64_t timeout_ms)
{
    WEAVE__SCOPES_CHECK();
    return weave__ret(signal_wait(set, timeout_ms));
}

int weave_cancel_on_signals(int *caught)
{
    struct weave__sched *s = weave__tls;
    struct weave__signals *sg;
    sigset_t stops;
    int r;

    if (!s)
        return weave__ret(-EPERM);
    if (!(sg = signals_of(s, &r)))
        return weave__ret(r);
    sigemptyset(&stops);
    sigaddset(&stops, SIGINT);
    sigaddset(&stops, SIGTERM);
    block_everywhere(s, sg, &stops);
    sg->caught = caught;
    if (!sg->cancel_on) {
        sg->cancel_on = true;
        /* The main task may wait on anything now: a signal can wake it, so
         * the scheduler waits in the poller rather than finding a
         * deadlock, and polls between rounds. */
        s->io_waiters++;
        rewatch(sg);
        /* One that came before the call was pending (blocked) or had
         * already acted; take it as the first. */
        if ((r = take_pending(&stops)) > 0)
            deliver(s, sg, r);
    }
    return 0;
}

int weave__signal_watch(struct weave__sched *s, int sig, weave__signal_fn *fn)
{
    struct weave__signals *sg;
    int r;

    if (!(sg = signals_of(s, &r)))
        return r;
    /* Blocked before the context template was taken, so every task runs
     * with it blocked; it only has to be read. Between rounds the poller
     * is asked too, but a watched signal never keeps a deadlock from being
     * reported (unlike weave_cancel_on_signals). */
    sg->watch_sig = sig;
    sg->watch_fn = fn;
    s->always_poll = true;
    rewatch(sg);
    return 0;
}

void weave__signal_stopped(struct weave__sched *s, int sig)
{
    struct weave__signals *sg;
    int r;

    if ((sg = signals_of(s, &r)) == NULL) {
        struct weave_link *n, *tmp;

        /* No room to record it: stop all the same. */
        weave__list_each(n, tmp, &s->live)
            if (weave__container_of(n, struct weave__task, live)->flags & WEAVE__MAIN)
                weave__cancel(s, weave__container_of(n, struct weave__task, live));
        return;
    }
    if (!sg->stop_signal)
        stopped(s, sg, sig);
}

int weave__signal_term(struct weave__sched *s, sigset_t *blocked)
{
    struct weave__signals *sg = s->signals;
    int stopped;

    if (!sg)
        return 0;
    if (sg->stop_signal) {
        sigset_t stops;
        int sig;

        sigemptyset(&stops);
        sigaddset(&stops, SIGINT);
        sigaddset(&stops, SIGTERM);
        if ((sig = take_pending(&stops)) > 0)
            die_of(sig); /* a second one came after the last poll */
    }
    if (sg->cancel_on)
        s->io_waiters--;
    sigorset(blocked, blocked, &sg->blocked);
    stopped = sg->stop_signal;
    weave__poller_del(&s->poller, sg->fd);
    close(sg->fd);
    free(sg);
    s->signals = NULL;
    return stopped;
}
