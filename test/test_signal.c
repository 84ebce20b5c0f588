/*
 * test_signal.c - signals as events (weave_signal_wait) and graceful
 * shutdown on Ctrl-C (weave_cancel_on_signals).
 *
 * Waiting: a signal sent by the process to itself, from another thread
 * (to the process and to the scheduler's thread), timeouts, cancellation,
 * deadline scopes; every waiter for a signal is woken by it, a waiter for
 * another signal is not; a signal that comes while nobody waits stays
 * pending for the next wait, even while other waits read the signalfd; the
 * mask holds in every task, spawned before or after the first wait, with
 * either task switch; weave_run gives the mask back and discards what
 * arrived late. Bad arguments, calls outside a task, no fd left for the
 * signalfd.
 *
 * Shutdown: SIGINT or SIGTERM cancel the main task, whatever it waits on;
 * weave_run returns -1/EINTR and names the signal. A forked child runs a
 * small server (a group of members holding memory and fds, a straggler
 * task, a shielded cleanup) and is sent SIGINT by the parent: it exits
 * 130, and every cleanup left its mark on a pipe. Under the suite's
 * valgrind registration the child runs under memcheck too (valgrind
 * follows fork), and a leak there changes its exit status. A second
 * SIGINT during a slow shielded cleanup kills the child by SIGINT.
 *
 * Check timeouts: "wait" 8 s x 10, "mask" 8 s x 2, "misuse" 8 s x 3,
 * "shutdown" 15 s x 4 = 180 s; the CTest timeout in CMakeLists.txt
 * (250 s) is above their sum.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "weave_test.h"

static sigset_t set_of(int a, int b)
{
    sigset_t set;

    sigemptyset(&set);
    if (a)
        sigaddset(&set, a);
    if (b)
        sigaddset(&set, b);
    return set;
}

/* Whether sig is blocked on the calling thread right now. */
static int blocked_here(int sig)
{
    sigset_t cur;

    ck_assert_int_eq(pthread_sigmask(SIG_BLOCK, NULL, &cur), 0);
    return sigismember(&cur, sig) == 1;
}

static int pending_here(int sig)
{
    sigset_t p;

    ck_assert_int_eq(sigpending(&p), 0);
    return sigismember(&p, sig) == 1;
}

/* Block sig for this run without waiting: a wait that cannot block. */
static void take_charge_of(int sig)
{
    sigset_t set = set_of(sig, 0);

    WT_FAILS(weave_signal_wait(&set, 0), ETIMEDOUT);
}

/* A task waiting for the signals in *arg (a sigset_t), forever. */
static void *waiter(void *arg)
{
    int sig = weave_signal_wait(arg, -1);

    return wt_ptr(sig < 0 ? -errno : sig);
}

/* ---- waiting ------------------------------------------------------------------------- */

static void *m_kill_self(void *arg)
{
    sigset_t set = set_of(SIGUSR1, 0);
    weave_task *t = WT_SPAWN(waiter, &set);

    (void)arg;
    ck_assert_int_eq(weave_yield(), 0); /* t parks */
    ck_assert_int_eq(kill(getpid(), SIGUSR1), 0);
    ck_assert_int_eq(wt_int(WT_JOIN(t)), SIGUSR1);
    ck_assert(!pending_here(SIGUSR1));
    WT_ASSERT_IDLE();
    return NULL;
}

START_TEST(kill_self)
{
    WT_RUN(m_kill_self, NULL);
    /* The mask is as weave_run found it. */
    ck_assert(!blocked_here(SIGUSR1));
}
END_TEST

static void *m_wait_in_main(void *arg)
{
    sigset_t set = set_of(SIGUSR1, SIGUSR2);

    (void)arg;
    take_charge_of(SIGUSR2);
    ck_assert_int_eq(raise(SIGUSR2), 0); /* thread-directed, held pending */
    ck_assert_int_eq(weave_signal_wait(&set, -1), SIGUSR2);
    return NULL;
}

START_TEST(wait_in_main)
{
    WT_RUN(m_wait_in_main, NULL);
    ck_assert(!blocked_here(SIGUSR2));
}
END_TEST

struct sender {
    pthread_t target; /* pthread_kill this thread, or kill the process */
    int to_thread;
    int sig;
};

static void *sender_thread(void *arg)
{
    struct sender *sd = arg;
    sigset_t set = set_of(sd->sig, 0);

    /* A thread of the program must not take the signal itself. */
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    usleep(20000);
    if (sd->to_thread)
        pthread_kill(sd->target, sd->sig);
    else
        kill(getpid(), sd->sig);
    return NULL;
}

static void *m_from_thread(void *arg)
{
    struct sender sd = {pthread_self(), (int)wt_int(arg), SIGUSR2};
    sigset_t set = set_of(SIGUSR2, 0);
    pthread_t th;
    int64_t t0 = wt_now_ns();

    ck_assert_int_eq(pthread_create(&th, NULL, sender_thread, &sd), 0);
    /* Nothing else runs: the scheduler sleeps in the poller. */
    ck_assert_int_eq(weave_signal_wait(&set, -1), SIGUSR2);
    ck_assert_int_ge(wt_ms_since(t0), 15);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    return NULL;
}

START_TEST(from_another_thread)
{
    WT_RUN(m_from_thread, wt_ptr(0)); /* kill(getpid()) */
    WT_RUN(m_from_thread, wt_ptr(1)); /* pthread_kill(the scheduler's thread) */
}
END_TEST

WT_TEST(timeouts)
{
    sigset_t set = set_of(SIGUSR1, 0);
    weave_deadline d;
    int64_t t0 = wt_now_ns();

    WT_FAILS(weave_signal_wait(&set, 0), ETIMEDOUT);
    WT_FAILS(weave_signal_wait(&set, 30), ETIMEDOUT);
    ck_assert_int_ge(wt_ms_since(t0), 30);

    t0 = wt_now_ns();
    weave_deadline_begin(&d, 20);
    WT_FAILS(weave_signal_wait(&set, -1), ETIMEDOUT);
    ck_assert_int_eq(weave_deadline_end(&d), 1);
    ck_assert_int_ge(wt_ms_since(t0), 20);

    /* A signal that comes in time beats the timeout. */
    ck_assert_int_eq(kill(getpid(), SIGUSR1), 0);
    ck_assert_int_eq(weave_signal_wait(&set, 10000), SIGUSR1);
    WT_ASSERT_IDLE();
}

WT_TEST(cancellation)
{
    sigset_t set = set_of(SIGUSR1, 0);
    weave_task *t = WT_SPAWN(waiter, &set);
    weave_task_info info[2];

    ck_assert_int_eq(weave_yield(), 0);
    ck_assert_int_eq(weave_tasks(info, 2), 2);
    ck_assert_int_eq(info[1].state, WEAVE_TASK_PARKED);
    ck_assert_int_eq(info[1].wait, WEAVE_WAIT_SIGNAL);
    ck_assert_int_eq(weave_cancel(t), 0);
    ck_assert_int_eq(wt_int(WT_JOIN(t)), -ECANCELED);

    /* Nobody waits now: the signal stays pending for the next wait. */
    ck_assert_int_eq(kill(getpid(), SIGUSR1), 0);
    ck_assert_int_eq(weave_sleep(10), 0);
    ck_assert(pending_here(SIGUSR1));
    ck_assert_int_eq(weave_signal_wait(&set, 0), SIGUSR1);

    /* A cancelled task does not take a pending signal: it stays. */
    ck_assert_int_eq(kill(getpid(), SIGUSR1), 0);
    ck_assert_int_eq(weave_cancel(weave_self()), 0);
    WT_FAILS(weave_signal_wait(&set, -1), ECANCELED);
    ck_assert(pending_here(SIGUSR1));
    {
        weave_shield sh;

        weave_shield_begin(&sh);
        ck_assert_int_eq(weave_signal_wait(&set, -1), SIGUSR1);
        weave_shield_end(&sh);
    }
}

WT_TEST(every_waiter_is_woken)
{
    sigset_t one = set_of(SIGUSR1, 0), both = set_of(SIGUSR1, SIGUSR2), two = set_of(SIGUSR2, 0);
    weave_task *a = WT_SPAWN(waiter, &one);
    weave_task *b = WT_SPAWN(waiter, &both);
    weave_task *c = WT_SPAWN(waiter, &two);
    weave_task_info info[4];

    ck_assert_int_eq(weave_yield(), 0);
    ck_assert_int_eq(kill(getpid(), SIGUSR1), 0);
    /* Both waiters for SIGUSR1 get it; the one for SIGUSR2 waits on. */
    ck_assert_int_eq(wt_int(WT_JOIN(a)), SIGUSR1);
    ck_assert_int_eq(wt_int(WT_JOIN(b)), SIGUSR1);
    ck_assert_int_eq(weave_tasks(info, 4), 2);
    ck_assert_int_eq(info[1].wait, WEAVE_WAIT_SIGNAL);
    ck_assert_int_eq(kill(getpid(), SIGUSR2), 0);
    ck_assert_int_eq(wt_int(WT_JOIN(c)), SIGUSR2);
    WT_ASSERT_IDLE();
}

WT_TEST(sent_before_anyone_waits)
{
    sigset_t one = set_of(SIGUSR1, 0), two = set_of(SIGUSR2, 0);
    weave_task *t;

    take_charge_of(SIGUSR1);
    /* A waiter for SIGUSR2 reads the signalfd; SIGUSR1, which nobody
     * waits for, must not be read and lost meanwhile. */
    t = WT_SPAWN(waiter, &two);
    ck_assert_int_eq(weave_yield(), 0);
    ck_assert_int_eq(kill(getpid(), SIGUSR1), 0);
    ck_assert_int_eq(weave_sleep(20), 0);
    ck_assert_int_eq(kill(getpid(), SIGUSR2), 0);
    ck_assert_int_eq(wt_int(WT_JOIN(t)), SIGUSR2);
    ck_assert(pending_here(SIGUSR1));
    ck_assert_int_eq(weave_signal_wait(&one, 0), SIGUSR1);
    ck_assert(!pending_here(SIGUSR1));
    WT_FAILS(weave_signal_wait(&one, 0), ETIMEDOUT);
}

/* The program blocked the signal before weave_run, and one is pending. */
static void *m_blocked_by_caller(void *arg)
{
    sigset_t set = set_of(SIGUSR1, 0);

    (void)arg;
    ck_assert_int_eq(weave_signal_wait(&set, 0), SIGUSR1);
    ck_assert_int_eq(raise(SIGUSR1), 0); /* left pending */
    return NULL;
}

START_TEST(blocked_by_the_caller)
{
    sigset_t set = set_of(SIGUSR1, 0);

    ck_assert_int_eq(pthread_sigmask(SIG_BLOCK, &set, NULL), 0);
    ck_assert_int_eq(raise(SIGUSR1), 0);
    WT_RUN(m_blocked_by_caller, NULL);
    /* The caller's: still blocked, and what is pending is left alone. */
    ck_assert(blocked_here(SIGUSR1));
    ck_assert(pending_here(SIGUSR1));
}
END_TEST

static void *m_late_signal(void *arg)
{
    (void)arg;
    take_charge_of(SIGUSR1);
    take_charge_of(SIGHUP);
    ck_assert_int_eq(kill(getpid(), SIGUSR1), 0);
    ck_assert_int_eq(raise(SIGHUP), 0);
    return NULL; /* nobody takes them */
}

START_TEST(late_signals_are_discarded)
{
    WT_RUN(m_late_signal, NULL);
    /* Alive: they were taken before the mask was given back. */
    ck_assert(!blocked_here(SIGUSR1));
    ck_assert(!blocked_here(SIGHUP));
    ck_assert(!pending_here(SIGUSR1));
}
END_TEST

/* ---- the mask holds in every task ------------------------------------------------------ */

struct mask_probe {
    int before; /* 1 once the task saw SIGUSR1 blocked after resuming */
    int sent;   /* 1 once it sent SIGUSR1 to the process */
};

/* Spawned before the first wait: parked while main blocks the signal,
 * then resumed through its own saved context. */
static void *early_task(void *arg)
{
    struct mask_probe *p = arg;

    ck_assert(!blocked_here(SIGUSR1));
    ck_assert_int_eq(weave_sleep(20), 0);
    p->before = blocked_here(SIGUSR1);
    /* Were it unblocked here, this would kill the process. */
    ck_assert_int_eq(kill(getpid(), SIGUSR1), 0);
    p->sent = 1;
    for (int i = 0; i < 100; i++)
        ck_assert_int_eq(weave_yield(), 0);
    ck_assert(blocked_here(SIGUSR1));
    return NULL;
}

static void *late_task(void *arg)
{
    (void)arg;
    ck_assert(blocked_here(SIGUSR1)); /* made from the template */
    for (int i = 0; i < 100; i++) {
        ck_assert_int_eq(weave_yield(), 0);
        ck_assert(blocked_here(SIGUSR1));
    }
    return NULL;
}

static void *m_mask_holds(void *arg)
{
    struct mask_probe p = {0, 0};
    sigset_t set = set_of(SIGUSR1, 0);
    weave_task *early = WT_SPAWN(early_task, &p);
    weave_task *late;

    (void)arg;
    ck_assert_int_eq(weave_yield(), 0); /* early parks in its sleep */
    take_charge_of(SIGUSR1);
    late = WT_SPAWN(late_task, NULL);
    ck_assert_int_eq(weave_signal_wait(&set, -1), SIGUSR1);
    ck_assert_int_eq(p.sent, 1);
    ck_assert_int_eq(p.before, 1);
    WT_JOIN(early);
    WT_JOIN(late);
    ck_assert(blocked_here(SIGUSR1));
    return NULL;
}

START_TEST(mask_holds_in_every_task)
{
    ck_assert_ptr_nonnull(weave_context_backend());
    WT_RUN(m_mask_holds, NULL);
    ck_assert(!blocked_here(SIGUSR1));
}
END_TEST

/* A task that yields forever while the signal arrives: the mask it runs
 * with is the one every context shares. */
static void *spinner(void *arg)
{
    int *stop = arg;

    while (!*stop)
        if (weave_yield() < 0)
            break;
    return NULL;
}

WT_TEST(signal_while_others_run)
{
    sigset_t set = set_of(SIGUSR2, 0);
    int stop = 0;
    weave_task *spin;
    struct sender sd = {pthread_self(), 1, SIGUSR2};
    pthread_t th;

    spin = WT_SPAWN(spinner, &stop);
    ck_assert_int_eq(pthread_create(&th, NULL, sender_thread, &sd), 0);
    ck_assert_int_eq(weave_signal_wait(&set, -1), SIGUSR2);
    stop = 1;
    WT_JOIN(spin);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
}

static void *m_many_contexts(void *arg)
{
    enum { N = 50 };
    weave_task *t[N];
    sigset_t set = set_of(SIGUSR1, SIGUSR2);

    (void)arg;
    for (int i = 0; i < N; i++)
        t[i] = WT_SPAWN(waiter, &set); /* the first wait blocks for the others */
    ck_assert_int_eq(weave_yield(), 0);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(weave_cancel(t[i]), 0);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(wt_int(WT_JOIN(t[i])), -ECANCELED);
    ck_assert(blocked_here(SIGUSR1) && blocked_here(SIGUSR2));
    return NULL;
}

START_TEST(many_waiters_come_and_go)
{
    WT_RUN(m_many_contexts, NULL);
    ck_assert(!blocked_here(SIGUSR1) && !blocked_here(SIGUSR2));
}
END_TEST

/* ---- misuse ------------------------------------------------------------------------------ */

static void *m_bad_args(void *arg)
{
    static const int refused[] = {SIGKILL, SIGSTOP, SIGSEGV, SIGBUS,  SIGILL,
                                  SIGFPE,  SIGTRAP, SIGSYS,  SIGABRT, SIGPIPE};
    sigset_t set;

    (void)arg;
    WT_FAILS(weave_signal_wait(NULL, 0), EINVAL);
    sigemptyset(&set);
    WT_FAILS(weave_signal_wait(&set, 0), EINVAL);
    set = set_of(SIGUSR1, 0);
    WT_FAILS(weave_signal_wait(&set, -2), EINVAL);
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        set = set_of(SIGUSR1, refused[i]);
        WT_FAILS(weave_signal_wait(&set, 0), EINVAL);
    }
    set = set_of(SIGWINCH, 0); /* the run's dump signal */
    WT_FAILS(weave_signal_wait(&set, 0), EINVAL);
    sigfillset(&set);
    WT_FAILS(weave_signal_wait(&set, 0), EINVAL);
    /* Nothing was blocked by the refused calls. */
    ck_assert(!blocked_here(SIGUSR1));
    return NULL;
}

START_TEST(bad_arguments)
{
    weave_run_opts o = {.dump_signal = SIGWINCH};

    ck_assert_int_eq(weave_run_with(&o, m_bad_args, NULL, NULL), 0);
}
END_TEST

START_TEST(outside_a_task)
{
    sigset_t set = set_of(SIGUSR1, 0);
    int caught = 0;

    WT_FAILS(weave_signal_wait(&set, 0), EPERM);
    WT_FAILS(weave_signal_wait(&set, -1), EPERM);
    WT_FAILS(weave_signal_wait(NULL, 0), EINVAL);
    WT_FAILS(weave_cancel_on_signals(&caught), EPERM);
    ck_assert(!blocked_here(SIGUSR1));
}
END_TEST

/* No fd left for the signalfd: the first call fails cleanly, blocking
 * nothing, and a later one works. */
WT_TEST(no_fd_for_the_signalfd)
{
    sigset_t set = set_of(SIGUSR1, 0);
    struct rlimit old, low;
    int next = dup(0);
    int caught = 0;

    ck_assert_int_ge(next, 0);
    close(next);
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
    low = old;
    low.rlim_cur = (rlim_t)next; /* every fd below is taken */
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
    WT_FAILS(weave_signal_wait(&set, 0), EMFILE);
    WT_FAILS(weave_cancel_on_signals(&caught), EMFILE);
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
    ck_assert(!blocked_here(SIGUSR1) && !blocked_here(SIGINT));
    WT_FAILS(weave_signal_wait(&set, 0), ETIMEDOUT); /* blocks it now */
    ck_assert_int_eq(kill(getpid(), SIGUSR1), 0);
    ck_assert_int_eq(weave_signal_wait(&set, -1), SIGUSR1);
}

/* ---- shutdown on SIGINT / SIGTERM ------------------------------------------------------- */

static void *m_stopped(void *arg)
{
    int *caught = arg;
    int sig = caught[1];
    weave_event ev;
    weave_shield sh;

    ck_assert_int_eq(weave_cancel_on_signals(caught), 0);
    ck_assert_int_eq(weave_cancel_on_signals(caught), 0); /* again: harmless */
    ck_assert_int_eq(weave_event_init(&ev), 0);
    ck_assert_int_eq(kill(getpid(), sig), 0);
    /* Waiting on something no fd or timer can end: not a deadlock. */
    WT_FAILS(weave_event_wait(&ev), ECANCELED);
    ck_assert_int_eq(*caught, sig);
    weave_shield_begin(&sh);
    ck_assert_int_eq(weave_sleep(5), 0); /* cleanup may still wait */
    weave_shield_end(&sh);
    WT_FAILS(weave_sleep(5), ECANCELED);
    ck_assert_int_eq(weave_event_destroy(&ev), 0);
    return wt_ptr(7);
}

START_TEST(stop_cancels_main)
{
    static const int sigs[] = {SIGINT, SIGTERM};

    for (int i = 0; i < 2; i++) {
        int caught[2] = {0, sigs[i]};
        void *res = NULL;

        errno = 0;
        ck_assert_int_eq(weave_run(m_stopped, caught, &res), -1);
        ck_assert_int_eq(errno, EINTR);
        ck_assert_int_eq(wt_int(res), 7);
        ck_assert_int_eq(caught[0], sigs[i]);
        ck_assert(!blocked_here(sigs[i]));
    }
}
END_TEST

/* The child's side: a small server that shuts down on SIGINT. Marks, one
 * byte each on the marks pipe: 'r' ready, 'g' a member cleaned up, 'm'
 * main's shielded cleanup ran, 'l' a straggler (not in the group) was
 * cancelled when main returned, 's' a slow cleanup began, 'e' it ended. */
static int marks_fd = -1;

static void mark(char c)
{
    ck_assert_int_eq(write(marks_fd, &c, 1), 1);
}

static void *member(void *arg)
{
    char *buf = malloc(4096);
    int p[2];
    ssize_t n;

    (void)arg;
    ck_assert_ptr_nonnull(buf);
    ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
    n = weave_read(p[0], buf, 4096); /* a client that never writes */
    if (n < 0 && errno == ECANCELED)
        mark('g');
    ck_assert_int_eq(weave_close(p[0]), 0);
    ck_assert_int_eq(weave_close(p[1]), 0);
    free(buf);
    return NULL;
}

static void *straggler(void *arg)
{
    char *held = malloc(128);

    (void)arg;
    ck_assert_ptr_nonnull(held);
    if (weave_sleep(-1) < 0 && errno == ECANCELED)
        mark('l');
    free(held);
    return NULL;
}

static int child_caught;

static void *server_main(void *arg)
{
    weave_group *g;
    weave_shield sh;
    weave_task *s;
    int slow = (int)wt_int(arg);

    ck_assert_int_eq(weave_cancel_on_signals(&child_caught), 0);
    if (slow) {
        mark('r');
        WT_FAILS(weave_sleep(-1), ECANCELED);
        weave_shield_begin(&sh);
        mark('s');
        ck_assert_int_eq(weave_sleep(60000), 0); /* a cleanup that hangs */
        mark('e');
        weave_shield_end(&sh);
        return NULL;
    }
    g = weave_group_new();
    ck_assert_ptr_nonnull(g);
    for (int i = 0; i < 3; i++)
        ck_assert_ptr_nonnull(weave_group_spawn(g, member, NULL));
    s = WT_SPAWN(straggler, NULL);
    ck_assert_int_eq(weave_detach(s), 0);
    ck_assert_int_eq(weave_yield(), 0); /* everyone holds what it holds */
    mark('r');
    WT_FAILS(weave_group_wait(g, -1), ECANCELED);
    weave_shield_begin(&sh);
    ck_assert_int_eq(weave_sleep(20), 0); /* say goodbye to the clients */
    mark('m');
    weave_shield_end(&sh);
    ck_assert_int_eq(weave_group_free(g), 0);
    return NULL;
}

/* Run the server in a child; returns its pid. */
static pid_t start_server(int marks[2], int slow)
{
    pid_t pid;

    ck_assert_int_eq(pipe2(marks, O_CLOEXEC), 0);
    fflush(NULL);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int r;

        close(marks[0]);
        marks_fd = marks[1];
        /* As in a program of its own: the default actions. */
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        r = weave_run(server_main, wt_ptr(slow), NULL);
        if (r == -1 && errno == EINTR && child_caught == SIGINT && !blocked_here(SIGINT))
            exit(128 + child_caught); /* exit, not _exit: leak checkers run */
        exit(1);
    }
    close(marks[1]);
    return pid;
}

static char next_mark(int fd)
{
    char c = 0;

    ck_assert_int_eq(read(fd, &c, 1), 1);
    return c;
}

START_TEST(graceful_shutdown)
{
    int marks[2], status, g = 0, m = 0, l = 0, pos = 0, m_at = -1, l_at = -1;
    pid_t pid = start_server(marks, 0);
    char c;

    ck_assert_int_eq(next_mark(marks[0]), 'r');
    ck_assert_int_eq(kill(pid, SIGINT), 0);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 130, "status %#x", status);
    while (read(marks[0], &c, 1) == 1) {
        g += c == 'g';
        if (c == 'm')
            m++, m_at = pos;
        if (c == 'l')
            l++, l_at = pos;
        pos++;
    }
    close(marks[0]);
    ck_assert_int_eq(g, 3);
    ck_assert_int_eq(m, 1);
    ck_assert_int_eq(l, 1);
    ck_assert_int_gt(l_at, m_at); /* leftovers go once main has returned */
}
END_TEST

START_TEST(second_sigint_kills)
{
    int marks[2], status;
    pid_t pid = start_server(marks, 1);
    char c;

    ck_assert_int_eq(next_mark(marks[0]), 'r');
    ck_assert_int_eq(kill(pid, SIGINT), 0);
    ck_assert_int_eq(next_mark(marks[0]), 's');
    ck_assert_int_eq(kill(pid, SIGINT), 0);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGINT, "status %#x", status);
    ck_assert_int_eq(read(marks[0], &c, 1), 0); /* the cleanup never ended */
    close(marks[0]);
}
END_TEST

/* A stop signal that came before weave_cancel_on_signals, while the
 * program had it blocked, counts as the first. */
static void *m_early_stop(void *arg)
{
    int *caught = arg;

    ck_assert_int_eq(weave_cancel_on_signals(caught), 0);
    WT_FAILS(weave_sleep(-1), ECANCELED);
    return NULL;
}

START_TEST(stop_pending_before_the_call)
{
    sigset_t set = set_of(SIGTERM, 0);
    int caught = 0;

    ck_assert_int_eq(pthread_sigmask(SIG_BLOCK, &set, NULL), 0);
    ck_assert_int_eq(raise(SIGTERM), 0);
    errno = 0;
    ck_assert_int_eq(weave_run(m_early_stop, &caught, NULL), -1);
    ck_assert_int_eq(errno, EINTR);
    ck_assert_int_eq(caught, SIGTERM);
    ck_assert(blocked_here(SIGTERM)); /* the caller's, as it was */
}
END_TEST

static Suite *signal_suite(void)
{
    Suite *s = suite_create("signal");
    TCase *tc = tcase_create("wait");
    TCase *mask = tcase_create("mask");
    TCase *mis = tcase_create("misuse");
    TCase *down = tcase_create("shutdown");

    wt_tag_native(tc); /* threads, and signals qemu-user cannot deliver */
    tcase_set_timeout(tc, 8);
    tcase_add_test(tc, kill_self);
    tcase_add_test(tc, wait_in_main);
    tcase_add_test(tc, from_another_thread);
    tcase_add_test(tc, timeouts);
    tcase_add_test(tc, cancellation);
    tcase_add_test(tc, every_waiter_is_woken);
    tcase_add_test(tc, sent_before_anyone_waits);
    tcase_add_test(tc, blocked_by_the_caller);
    tcase_add_test(tc, late_signals_are_discarded);
    tcase_add_test(tc, many_waiters_come_and_go);
    suite_add_tcase(s, tc);

    wt_tag_native(mask);
    tcase_set_timeout(mask, 8);
    tcase_add_test(mask, mask_holds_in_every_task);
    tcase_add_test(mask, signal_while_others_run);
    suite_add_tcase(s, mask);

    tcase_set_timeout(mis, 8);
    tcase_add_test(mis, bad_arguments);
    tcase_add_test(mis, outside_a_task);
    tcase_add_test(mis, no_fd_for_the_signalfd);
    suite_add_tcase(s, mis);

    wt_tag_native(down);
    tcase_set_timeout(down, 15);
    tcase_add_test(down, stop_cancels_main);
    tcase_add_test(down, graceful_shutdown);
    tcase_add_test(down, second_sigint_kills);
    tcase_add_test(down, stop_pending_before_the_call);
    suite_add_tcase(s, down);
    return s;
}

int main(void)
{
    return wt_main(signal_suite());
}
