/*
 * test_fault.c - every system call and allocation of weave that can fail is
 * made to fail, one call at a time, and weave must answer with a clean
 * error and stay usable (NOTES.md F, rows 5, 6, 26, 32, 35).
 *
 * A scenario is a few public calls that reach some of weave's calls: a
 * weave_run, a spawn, a sleep, a wait on a pipe, an offloaded call, a
 * channel, a group, a select. A dry run counts the calls it makes to each
 * function of fault.h. Then, for each function it reached and each errno
 * that function's man page gives (mode "once"), and again for every call
 * from the k-th on (mode "from"), the scenario runs in a fresh weave_run
 * with the k-th call failed, for k = 1, 2, ... until the k-th call is no
 * longer made. Each time:
 *   - the scenario's calls return success (weave retried or did without)
 *     or -1/NULL with an errno that weave.h documents for them; EINTR never
 *     comes out (it is retried);
 *   - right after, in the same weave_run, a spawn and join, a 1 ms sleep and
 *     a read from a pipe work, and the scheduler holds nothing more than
 *     the main task; where weave_run itself failed, the next one works;
 *   - no fd is left open (valgrind and ASan check the memory).
 * Each test prints its table: scenario, call, errno, how many of the
 * calls were failed in turn (sites) and in all (failed, both modes), and
 * what the scenario's calls returned in each mode (ok: success; else the
 * errno; with the number of runs that ended so).
 *
 * Beside the sweeps, the "calls" tests use the same counts to check how
 * many system calls and allocations request/response traffic over a
 * stream costs (no poll, no malloc per message).
 *
 * Beside them, the io_uring tests fail the ring's set-up and a submission
 * outright, and check that regular-file calls still complete (on the pool).
 *
 * Check timeouts: "sweep" and "threads" 60 s x 23 tests = 1380 s, "calls"
 * 10 s x 2 = 20 s; the CTest timeout in CMakeLists.txt (1500 s) is above
 * their sum.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fault.h"
#include "weave_test.h"

/* A stream buffer size beyond what a scheduler's buffer cache keeps
 * (src/io/bufcache.h: WEAVE__BUFCACHE_LARGEST, 64 KiB). */
#define LARGE_BUFFER ((size_t)128 << 10)

/* The errnos the man pages give for each function, in the cases weave
 * can meet (no bad arguments, no file mappings, no locks). */
struct errnos {
    int e[5];
};
static const struct errnos man_errnos[FAULT_NCALLS] = {
    [FAULT_MALLOC] = {{ENOMEM}},
    [FAULT_CALLOC] = {{ENOMEM}},
    [FAULT_REALLOC] = {{ENOMEM}},
    [FAULT_STRDUP] = {{ENOMEM}},
    [FAULT_MMAP] = {{ENOMEM}},
    [FAULT_MADVISE] = {{ENOMEM, EAGAIN}},
    [FAULT_MPROTECT] = {{ENOMEM}},
    [FAULT_SYSCALL] = {{ENOMEM}}, /* process_madvise */
    [FAULT_EPOLL_CREATE1] = {{EMFILE, ENFILE, ENOMEM}},
    [FAULT_EPOLL_CTL] = {{ENOMEM, ENOSPC}},
    [FAULT_EPOLL_WAIT] = {{EINTR}},
    [FAULT_EPOLL_PWAIT2] = {{EINTR}},
    [FAULT_EVENTFD] = {{EMFILE, ENFILE, ENOMEM}},
    [FAULT_TIMERFD_CREATE] = {{EMFILE, ENFILE, ENOMEM}},
    [FAULT_TIMERFD_SETTIME] = {{EINTR}}, /* not in the man page: weave must not mind */
    [FAULT_SIGNALFD] = {{EMFILE, ENFILE, ENOMEM}},
    [FAULT_PTHREAD_CREATE] = {{EAGAIN}},
    [FAULT_FCNTL] = {{EMFILE}}, /* F_DUPFD_CLOEXEC */
    [FAULT_READ] = {{EINTR}},
    [FAULT_WRITE] = {{EINTR}},
    [FAULT_POLL] = {{EINTR, ENOMEM}},
    [FAULT_SOCKET] = {{EMFILE, ENFILE, ENOMEM, ENOBUFS}},
    [FAULT_ACCEPT4] = {{EINTR, EMFILE, ENFILE, ENOMEM, ENOBUFS}},
    /* io_uring_setup(2): EPERM is io_uring_disabled saying no. */
    [FAULT_IO_URING_INIT] = {{ENOMEM, EMFILE, ENFILE, EPERM, ENOSYS}},
    /* io_uring_enter(2) */
    [FAULT_IO_URING_SUBMIT] = {{EAGAIN, EBUSY, ENOMEM, EINTR}},
};

static const char *errno_name(int e)
{
    switch (e) {
    case 0:
        return "ok";
    case ENOMEM:
        return "ENOMEM";
    case EMFILE:
        return "EMFILE";
    case ENFILE:
        return "ENFILE";
    case EINTR:
        return "EINTR";
    case EAGAIN:
        return "EAGAIN";
    case ENOSPC:
        return "ENOSPC";
    case ENOBUFS:
        return "ENOBUFS";
    case EINVAL:
        return "EINVAL";
    case ENOSYS:
        return "ENOSYS";
    case ETIMEDOUT:
        return "ETIMEDOUT";
    case EDEADLK:
        return "EDEADLK";
    case EPERM:
        return "EPERM";
    case EBUSY:
        return "EBUSY";
    default:
        return "other";
    }
}

/* ---- the probe: which call fails, and what came of it -------------------- */

static struct {
    bool measure;                       /* a dry run: count the calls, fail none */
    enum fault_call call;               /* else: the call failed ... */
    unsigned long k;                    /* ... from its k-th on ... */
    int err;                            /* ... with this errno ... */
    bool every_from;                    /* ... once, or every call from the k-th */
    bool armed;                         /* between arm() and disarm() */
    unsigned long before[FAULT_NCALLS]; /* counts at arm() (dry run) */
    unsigned long made[FAULT_NCALLS];   /* calls made while armed (dry run) */
    unsigned long failed;               /* calls failed while armed */
} probe;

/* Begin the part of a scenario whose calls are counted and failed. */
static void arm(void)
{
    probe.armed = true;
    probe.failed = 0;
    if (probe.measure) {
        for (int i = 0; i < FAULT_NCALLS; i++)
            probe.before[i] = fault_count((enum fault_call)i);
    } else {
        fault_set(probe.call, probe.k, probe.err, probe.every_from);
    }
}

/* End it (again: harmless). */
static void disarm(void)
{
    if (!probe.armed)
        return;
    probe.armed = false;
    if (probe.measure) {
        for (int i = 0; i < FAULT_NCALLS; i++)
            probe.made[i] = fault_count((enum fault_call)i) - probe.before[i];
    } else {
        probe.failed = fault_failed(probe.call);
        fault_unset(probe.call);
    }
}

/* ---- what must work after a failure ---------------------------------------- */

static void *late_writer(void *fdp)
{
    int fd = *(int *)fdp;

    (void)weave_sleep(1);
    ck_assert_int_eq(write(fd, "x", 1), 1);
    return NULL;
}

/* A spawn and join, a sleep, a read from a pipe; then nothing is left. */
static void usable(void)
{
    weave_task *t;
    int64_t t0;
    int p[2];
    char c = 0;

    t = WT_SPAWN(wt_nothing, wt_ptr(7));
    ck_assert_ptr_eq(WT_JOIN(t), wt_ptr(7));
    t0 = wt_now_ns();
    ck_assert_int_eq(weave_sleep(1), 0);
    ck_assert_int_ge(wt_ms_since(t0), 1);
    wt_make_pipe(p, 0);
    t = WT_SPAWN(late_writer, &p[1]);
    ck_assert_int_eq(weave_read(p[0], &c, 1), 1);
    ck_assert_int_eq(c, 'x');
    WT_JOIN(t);
    ck_assert_int_eq(weave_close(p[0]), 0);
    ck_assert_int_eq(weave_close(p[1]), 0);
    WT_ASSERT_IDLE();
}

static void *usable_main(void *arg)
{
    (void)arg;
    usable();
    return wt_ptr(1);
}

/* ---- scenarios ---------------------------------------------------------------
 *
 * Each runs in the main task of a weave_run, arms around the calls it
 * exercises, cleans up, and returns 0 or the errno its calls failed with.
 * allowed lists the errnos weave.h documents for them.
 */
struct scenario {
    const char *name;
    int (*body)(void); /* NULL: weave_run itself is the scenario */
    int allowed[6];
};

static int sc_spawn_size(void)
{
    weave_task_opts o = {.stack_size = 64 * 1024};
    weave_task *t;
    int e;

    arm();
    errno = 0;
    t = weave_spawn_with(&o, wt_nothing, wt_ptr(3));
    e = errno;
    disarm();
    if (!t)
        return e;
    ck_assert_ptr_eq(WT_JOIN(t), wt_ptr(3));
    return 0;
}

#define MANY 100 /* past the first slabs, handle table and timer heap sizes */

static int sc_spawn_many(void)
{
    static weave_task *t[MANY];
    int n = 0, e = 0;

    arm();
    for (; n < MANY; n++) {
        errno = 0;
        if (!(t[n] = weave_spawn(wt_nothing, wt_ptr(n)))) {
            e = errno;
            break;
        }
    }
    disarm();
    for (int i = 0; i < n; i++)
        ck_assert_ptr_eq(WT_JOIN(t[i]), wt_ptr(i));
    return e;
}

static int sc_sleep(void)
{
    int64_t t0 = wt_now_ns();
    int r, e;

    arm();
    errno = 0;
    r = weave_sleep(2);
    e = errno;
    disarm();
    if (r != 0)
        return e;
    ck_assert_int_ge(wt_ms_since(t0), 2); /* never early, EINTR or not */
    return 0;
}

/* wait (true: weave_wait_fd, false: weave_read) on a pipe that a task
 * writes to a moment later. */
static int pipe_wait(bool wait)
{
    weave_task *t;
    int p[2], r, e;
    char c = 0;

    wt_make_pipe(p, 0);
    t = WT_SPAWN(late_writer, &p[1]);
    arm();
    errno = 0;
    r = wait ? weave_wait_fd(p[0], WEAVE_IN, -1) : (int)weave_read(p[0], &c, 1);
    e = errno;
    disarm();
    WT_JOIN(t);
    if (r >= 0)
        ck_assert_int_eq(r, wait ? WEAVE_IN : 1);
    ck_assert_int_eq(weave_close(p[0]), 0);
    ck_assert_int_eq(weave_close(p[1]), 0);
    return r < 0 ? e : 0;
}

static int sc_wait_fd(void)
{
    return pipe_wait(true);
}

static int sc_read(void)
{
    return pipe_wait(false);
}

static int sc_offload(void)
{
    void *res = NULL;
    int r, e;

    arm();
    errno = 0;
    r = weave_offload(wt_nothing, wt_ptr(5), &res);
    e = errno;
    disarm();
    if (r != 0)
        return e;
    ck_assert_ptr_eq(res, wt_ptr(5));
    return 0;
}

/* An offloaded call that keeps its worker a moment, so that the next call
 * needs another worker. */
static void *slow_call(void *arg)
{
    usleep(2000);
    return arg;
}

static int offload_errs[4];

static void *offloader(void *arg)
{
    intptr_t i = wt_int(arg);
    void *res = NULL;

    errno = 0;
    if (weave_offload(slow_call, arg, &res) != 0)
        offload_errs[i] = errno;
    else
        ck_assert_ptr_eq(res, arg);
    return NULL;
}

static int sc_offload_many(void)
{
    weave_task *t[4];
    int e = 0;

    for (int i = 0; i < 4; i++) {
        offload_errs[i] = 0;
        t[i] = WT_SPAWN(offloader, wt_ptr(i));
    }
    arm();
    for (int i = 0; i < 4; i++)
        WT_JOIN(t[i]);
    disarm();
    for (int i = 0; i < 4 && !e; i++)
        e = offload_errs[i];
    return e;
}

static int sc_chan(void)
{
    weave_chan *c;
    int e, v = 9;

    arm();
    errno = 0;
    c = weave_chan_new(sizeof(int), 4);
    e = errno;
    disarm();
    if (!c)
        return e;
    ck_assert_int_eq(weave_chan_send(c, &v), 0);
    v = 0;
    ck_assert_int_eq(weave_chan_recv(c, &v), 0);
    ck_assert_int_eq(v, 9);
    ck_assert_int_eq(weave_chan_free(c), 0);
    return 0;
}

#define MEMBERS 20 /* past the member table's first sizes */

static int sc_group(void)
{
    weave_group *g;
    int e = 0;

    arm();
    errno = 0;
    if (!(g = weave_group_new())) {
        e = errno;
        disarm();
        return e;
    }
    for (int i = 0; i < MEMBERS; i++) {
        errno = 0;
        if (!weave_group_spawn(g, wt_nothing, wt_ptr(i))) {
            e = errno;
            break;
        }
    }
    disarm();
    ck_assert_int_eq(weave_group_wait(g, -1), 0);
    for (size_t i = 0; i < weave_group_size(g); i++) {
        void *r = NULL;
        ck_assert_int_eq(weave_group_result(g, i, &r), 0);
        ck_assert_ptr_eq(r, wt_ptr((intptr_t)i));
    }
    ck_assert_int_eq(weave_group_free(g), 0);
    return e;
}

#define CASES 20 /* more than select keeps on the stack */

static weave_chan *sel_chans[CASES];

static void *late_sender(void *arg)
{
    int v = 42;

    (void)arg;
    ck_assert_int_eq(weave_yield(), 0);
    ck_assert_int_eq(weave_chan_send(sel_chans[CASES / 2], &v), 0);
    return NULL;
}

static int sc_select(void)
{
    weave_select_case cases[CASES];
    int vals[CASES];
    weave_task *t;
    int r, e;

    for (int i = 0; i < CASES; i++) {
        sel_chans[i] = weave_chan_new(sizeof(int), 1);
        ck_assert_ptr_nonnull(sel_chans[i]);
        cases[i] =
            (weave_select_case){.op = WEAVE_CASE_RECV, .chan = sel_chans[i], .elem = &vals[i]};
    }
    t = WT_SPAWN(late_sender, NULL);
    arm();
    errno = 0;
    r = weave_select(cases, CASES, -1);
    e = errno;
    disarm();
    WT_JOIN(t);
    if (r >= 0) {
        ck_assert_int_eq(r, CASES / 2);
        ck_assert_int_eq(vals[CASES / 2], 42);
    }
    for (int i = 0; i < CASES; i++)
        ck_assert_int_eq(weave_chan_free(sel_chans[i]), 0);
    return r < 0 ? e : 0;
}

/* A write to a regular file: a dup of the fd is written on the pool. */
static int sc_file_write(void)
{
    char path[] = "/tmp/weave-fault-XXXXXX", back[4] = {0};
    int fd = mkstemp(path), e;
    ssize_t n;

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(unlink(path), 0);
    arm();
    errno = 0;
    n = weave_write(fd, "abc", 3);
    e = errno;
    disarm();
    if (n >= 0) {
        ck_assert_int_eq(n, 3);
        ck_assert_int_eq(pread(fd, back, 3, 0), 3);
        ck_assert_str_eq(back, "abc");
    }
    ck_assert_int_eq(weave_close(fd), 0);
    return n < 0 ? e : 0;
}

/* The same on the pool, as where the ring cannot be had: the environment
 * is read when the scheduler first needs to choose, in this scenario. */
static int sc_file_write_pool(void)
{
    int r;

    ck_assert_int_eq(setenv("WEAVE_NO_IO_URING", "1", 1), 0);
    r = sc_file_write();
    ck_assert_int_eq(unsetenv("WEAVE_NO_IO_URING"), 0);
    return r;
}

static struct {
    char port[16];
    int err; /* the client's errno, or 0 */
} tcp;

/* Connect by name (resolved on the pool), send a byte, hang up. */
static void *tcp_client(void *arg)
{
    int fd;

    (void)arg;
    errno = 0;
    if ((fd = weave_tcp_connect("localhost", tcp.port, -1)) < 0) {
        tcp.err = errno;
        return NULL;
    }
    ck_assert_int_eq(weave_write(fd, "y", 1), 1);
    ck_assert_int_eq(weave_close(fd), 0);
    return NULL;
}

static int sc_tcp(void)
{
    int lfd, afd, e = 0;
    weave_task *t;
    char c = 0;

    arm();
    errno = 0;
    if ((lfd = weave_tcp_listen("127.0.0.1", "0", 8)) < 0) {
        e = errno;
        disarm();
        return e;
    }
    (void)snprintf(tcp.port, sizeof(tcp.port), "%u", wt_port_of(lfd));
    tcp.err = 0;
    t = WT_SPAWN(tcp_client, NULL);
    WT_JOIN(t); /* the connection waits in the backlog */
    if (tcp.err) {
        disarm();
        ck_assert_int_eq(weave_close(lfd), 0);
        return tcp.err;
    }
    errno = 0;
    afd = weave_accept(lfd, NULL, NULL);
    e = afd < 0 ? errno : 0;
    disarm();
    if (afd < 0) /* the listening fd stays usable: the connection waits */
        ck_assert_int_ge(afd = weave_accept(lfd, NULL, NULL), 0);
    ck_assert_int_eq(weave_read(afd, &c, 1), 1);
    ck_assert_int_eq(c, 'y');
    ck_assert_int_eq(weave_read(afd, &c, 1), 0);
    ck_assert_int_eq(weave_close(afd), 0);
    ck_assert_int_eq(weave_close(lfd), 0);
    return e;
}

/* A line read through a stream, over a Unix socketpair whose peer writes
 * it a moment later (so the stream's first read says EAGAIN, and its
 * buffer is taken only once the line is there), then an answer written
 * back. A failed call loses nothing: the line is still had after it. */
static void *late_line(void *fdp)
{
    int fd = *(int *)fdp;

    (void)weave_sleep(1);
    ck_assert_int_eq(weave_write(fd, "hi\n", 3), 3);
    return NULL;
}

static int sc_stream(void)
{
    weave_stream *s;
    weave_task *t;
    char line[8];
    int sv[2], e = 0, printed = -1;
    ssize_t n = -1;

    wt_make_socketpair(sv, SOCK_STREAM);
    t = WT_SPAWN(late_line, &sv[1]);
    arm();
    errno = 0;
    if (!(s = weave_stream_new(sv[0], NULL))) {
        e = errno;
    } else if ((n = weave_stream_read_line(s, line, sizeof(line))) < 0) {
        e = errno;
    } else if ((printed = weave_stream_printf(s, "ok\n")) != 3 || weave_stream_flush(s) != 0) {
        e = errno;
    }
    disarm();
    WT_JOIN(t);
    if (!s)
        ck_assert_ptr_nonnull(s = weave_stream_new(sv[0], NULL));
    if (n < 0) /* a failed read lost nothing */
        ck_assert_int_eq(weave_stream_read_line(s, line, sizeof(line)), 3);
    ck_assert_str_eq(line, "hi\n");
    if (printed != 3) /* a failed printf buffered nothing: answer again */
        ck_assert_int_eq(weave_stream_printf(s, "ok\n"), 3);
    ck_assert_int_eq(weave_stream_close(s), 0); /* flushes, after a failed flush too */
    ck_assert_int_eq(weave_read(sv[1], line, sizeof(line)), 3);
    ck_assert_int_eq(memcmp(line, "ok\n", 3), 0);
    ck_assert_int_eq(weave_close(sv[1]), 0);
    return e;
}

static const struct scenario sc_run_ = {"weave_run", NULL, {ENOMEM, EMFILE, ENFILE}};

/* ---- the sweep ---------------------------------------------------------------- */

/* Rules that hold for a whole sweep: a kernel without guard regions, or
 * without process_madvise on ourselves. */
enum kernel { KERNEL_NOW, KERNEL_NO_BATCH, KERNEL_OLD };

static const char *const kernel_names[] = {"", " (no process_madvise)", " (no guard regions)"};

static void kernel_begin(enum kernel kern)
{
    if (kern >= KERNEL_NO_BATCH)
        fault_set(FAULT_SYSCALL, 1, ENOSYS, true);
    if (kern == KERNEL_OLD)
        fault_set(FAULT_MADVISE, 1, EINVAL, true);
}

/* Whether the kernel's rules hold call already. */
static bool kernel_owns(enum kernel kern, enum fault_call call)
{
    return (kern >= KERNEL_NO_BATCH && call == FAULT_SYSCALL) ||
           (kern == KERNEL_OLD && call == FAULT_MADVISE);
}

static void kernel_end(void)
{
    fault_unset(FAULT_SYSCALL);
    fault_unset(FAULT_MADVISE);
}

static int scenario_result;

static void *scenario_main(void *arg)
{
    const struct scenario *sc = arg;

    if (!sc->body) {
        disarm(); /* weave_run's own calls were the scenario */
        scenario_result = 0;
    } else {
        scenario_result = sc->body();
    }
    usable();
    return wt_ptr(1);
}

/* Run the scenario once as the probe says; returns what it returned. */
static int run_once(const struct scenario *sc, enum kernel kern)
{
    int fds = wt_fd_count(), r, e;
    void *res = NULL;

    kernel_begin(kern);
    scenario_result = -1;
    if (!sc->body)
        arm();
    errno = 0;
    r = weave_run(scenario_main, (void *)sc, &res);
    e = errno;
    disarm();
    if (r != 0) {
        ck_assert_msg(!sc->body, "%s: weave_run failed (%s) after the scenario", sc->name,
                      errno_name(e));
        scenario_result = e;
        res = NULL;
        ck_assert_int_eq(weave_run(usable_main, NULL, &res), 0);
    }
    ck_assert_ptr_eq(res, wt_ptr(1));
    kernel_end();
    ck_assert_int_eq(wt_fd_count(), fds);
    return scenario_result;
}

static bool allowed(const struct scenario *sc, int e)
{
    if (e == 0)
        return true;
    for (int i = 0; i < 6; i++)
        if (sc->allowed[i] == e)
            return true;
    return false;
}

/* WEAVE_FAULT_TRACE=1 names each run on stderr before it begins: what a
 * run that hangs or crashes was doing. */
static bool trace;

#define K_MAX 10000 /* a bound on the calls one scenario makes, for safety */

/* What a sweep did: the calls failed in turn (sites), in all (failed),
 * and what the scenario returned, e.g. "ENOMEM 3, ok 1". */
struct tally {
    unsigned long sites, failed;
    char outcome[96];
};

/* Fail each call of `call` in turn, as the scenario makes them. */
static struct tally sweep(const struct scenario *sc, enum kernel kern, enum fault_call call,
                          int err, bool every_from)
{
    int errs[8] = {0}, counts[8] = {0}, nerrs = 0;
    struct tally t = {0, 0, ""};
    size_t len = 0;
    unsigned long k;

    for (k = 1; k <= K_MAX; k++) {
        int e, j;

        probe.measure = false;
        probe.call = call;
        probe.k = k;
        probe.err = err;
        probe.every_from = every_from;
        if (trace)
            fprintf(stderr, "fault: %s: %s %s %s, call %lu\n", sc->name, fault_name(call),
                    errno_name(err), every_from ? "from" : "once", k);
        e = run_once(sc, kern);
        if (probe.failed == 0)
            break; /* no k-th call any more */
        t.failed += probe.failed;
        ck_assert_msg(allowed(sc, e), "%s: %s failing with %s (%s) at call %lu: got %s (%d)",
                      sc->name, fault_name(call), errno_name(err), every_from ? "from" : "once", k,
                      errno_name(e), e);
        for (j = 0; j < nerrs && errs[j] != e; j++)
            continue;
        if (j == nerrs && nerrs < 8)
            errs[nerrs++] = e;
        counts[j]++;
    }
    ck_assert_uint_lt(k, K_MAX);
    t.sites = k - 1;
    for (int j = 0; j < nerrs; j++)
        len += (size_t)snprintf(t.outcome + len, sizeof(t.outcome) - len, "%s%s %d", j ? ", " : "",
                                errno_name(errs[j]), counts[j]);
    return t;
}

#define ROW "fault: %-44s %-15s %-7s %5s %6s  %-24s %s\n"

/* The dry run, then the sweeps of every call the scenario reached, one row
 * for each call and errno: failing the k-th call only (once), and every
 * call from the k-th on (from; not for EINTR, which would spin). */
static void sweep_all(const struct scenario *sc, enum kernel kern)
{
    unsigned long made[FAULT_NCALLS];
    struct scenario named = *sc;
    char title[96];

    fault_clear(); /* count this thread's calls */
    probe.measure = true;
    (void)run_once(sc, kern);
    memcpy(made, probe.made, sizeof(made));
    (void)snprintf(title, sizeof(title), "%s%s", sc->name, kernel_names[kern]);
    named.name = title;
    printf(ROW, "scenario", "call", "errno", "sites", "failed", "outcome: once", "from");
    for (int c = 0; c < FAULT_NCALLS; c++) {
        if (!made[c] || kernel_owns(kern, (enum fault_call)c))
            continue;
        for (int i = 0; i < 5 && man_errnos[c].e[i]; i++) {
            int err = man_errnos[c].e[i];
            struct tally once = sweep(&named, kern, (enum fault_call)c, err, false);
            struct tally from = {0, 0, "-"};
            char sites[16], failed[32];

            if (err != EINTR)
                from = sweep(&named, kern, (enum fault_call)c, err, true);
            (void)snprintf(sites, sizeof(sites), "%lu", once.sites);
            (void)snprintf(failed, sizeof(failed), "%lu", once.failed + from.failed);
            printf(ROW, title, fault_name((enum fault_call)c), errno_name(err), sites, failed,
                   once.outcome, from.outcome);
        }
    }
    fflush(stdout);
}

/* ---- tests -------------------------------------------------------------------- */

START_TEST(fault_run)
{
    sweep_all(&sc_run_, KERNEL_NOW);
    sweep_all(&sc_run_, KERNEL_NO_BATCH);
    sweep_all(&sc_run_, KERNEL_OLD);
}
END_TEST

START_TEST(fault_spawn_new_size)
{
    static const struct scenario sc = {"spawn (new stack size)", sc_spawn_size, {ENOMEM}};

    sweep_all(&sc, KERNEL_NOW);
    sweep_all(&sc, KERNEL_NO_BATCH);
}
END_TEST

START_TEST(fault_spawn_many)
{
    static const struct scenario sc = {"spawn x100", sc_spawn_many, {ENOMEM}};

    sweep_all(&sc, KERNEL_NOW);
    sweep_all(&sc, KERNEL_OLD);
}
END_TEST

START_TEST(fault_sleep)
{
    static const struct scenario sc = {"sleep", sc_sleep, {0}};

    sweep_all(&sc, KERNEL_NOW);
}
END_TEST

START_TEST(fault_wait_fd)
{
    static const struct scenario sc = {"wait_fd (pipe)", sc_wait_fd, {ENOMEM}};

    sweep_all(&sc, KERNEL_NOW);
}
END_TEST

START_TEST(fault_read)
{
    static const struct scenario sc = {"read (pipe)", sc_read, {ENOMEM}};

    sweep_all(&sc, KERNEL_NOW);
}
END_TEST

START_TEST(fault_offload)
{
    static const struct scenario sc = {"offload", sc_offload, {ENOMEM, EAGAIN, EMFILE, ENFILE}};

    sweep_all(&sc, KERNEL_NOW);
}
END_TEST

START_TEST(fault_offload_many)
{
    static const struct scenario sc = {
        "offload x4 (more workers)", sc_offload_many, {ENOMEM, EAGAIN, EMFILE, ENFILE}};

    sweep_all(&sc, KERNEL_NOW);
}
END_TEST

START_TEST(fault_file_write)
{
    static const struct scenario sc = {
        "write (regular file)", sc_file_write, {ENOMEM, EAGAIN, EMFILE, ENFILE}};

    sweep_all(&sc, KERNEL_NOW);
}
END_TEST

START_TEST(fault_file_write_pool)
{
    static const struct scenario sc = {
        "write (regular file, pool)", sc_file_write_pool, {ENOMEM, EAGAIN, EMFILE, ENFILE}};

    sweep_all(&sc, KERNEL_NOW);
}
END_TEST

/* The ring's set-up fails (each errno io_uring_setup gives): regular files
 * go to the pool, for good, and the call still completes. */
static void *m_ring_setup_fails(void *arg)
{
    char path[] = "/tmp/weave-fault-XXXXXX", back[8] = {0};
    int fd = mkstemp(path);

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(unlink(path), 0);
    fault_set(FAULT_IO_URING_INIT, 1, (int)(intptr_t)arg, true);
    ck_assert_int_eq(weave_write(fd, "abc", 3), 3);
    ck_assert_int_eq(weave_fsync(fd), 0);
    ck_assert_int_eq(weave_write(fd, "def", 3), 3);
    ck_assert_uint_le(fault_count(FAULT_IO_URING_INIT), 1); /* tried once at most */
    fault_clear();
    ck_assert_int_eq(pread(fd, back, 6, 0), 6);
    ck_assert_str_eq(back, "abcdef");
    if (WEAVE_TEST_IO_URING)
        ck_assert_int_eq(wt_stats().file_io_path, WEAVE_FILE_IO_POOL);
    ck_assert_uint_eq(wt_stats().file_ring_ops, 0);
    ck_assert_uint_ge(wt_stats().offload_threads, 1);
    ck_assert_int_eq(weave_close(fd), 0);
    usable();
    return NULL;
}

START_TEST(ring_setup_fails_pool_instead)
{
    static const int errs[] = {ENOMEM, EMFILE, EPERM, ENOSYS};
    int fds = wt_fd_count();

    WT_RUN(m_ring_setup_fails, wt_ptr(errs[_i]));
    ck_assert_int_eq(wt_fd_count(), fds);
}
END_TEST

/* A submission fails: that call runs on the pool and completes; the entry
 * it left in the ring is a no-op, which the next submission carries
 * harmlessly; later calls use the ring again. */
static void *m_ring_submit_fails(void *arg)
{
    char path[] = "/tmp/weave-fault-XXXXXX", back[16] = {0};
    int fd = mkstemp(path);

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(unlink(path), 0);
    fault_set(FAULT_IO_URING_SUBMIT, 1, (int)(intptr_t)arg, false);
    ck_assert_int_eq(weave_write(fd, "abc", 3), 3);
    ck_assert_int_eq(weave_write(fd, "def", 3), 3);
    ck_assert_int_eq(weave_fdatasync(fd), 0);
    ck_assert_int_eq(weave_write(fd, "ghi", 3), 3);
    if (WEAVE_TEST_IO_URING && wt_stats().file_io_path == WEAVE_FILE_IO_URING) {
        ck_assert_uint_eq(fault_failed(FAULT_IO_URING_SUBMIT), 1);
        ck_assert_uint_ge(wt_stats().offload_threads, 1); /* the failed one */
        ck_assert_uint_eq(wt_stats().file_ring_ops, 3);
    }
    fault_clear();
    ck_assert_int_eq(pread(fd, back, 9, 0), 9);
    ck_assert_str_eq(back, "abcdefghi");
    ck_assert_int_eq(weave_close(fd), 0);
    usable();
    return NULL;
}

START_TEST(ring_submit_fails_call_completes)
{
    static const int errs[] = {EAGAIN, EBUSY, ENOMEM, EIO};
    int fds = wt_fd_count();

    WT_RUN(m_ring_submit_fails, wt_ptr(errs[_i]));
    ck_assert_int_eq(wt_fd_count(), fds);
}
END_TEST

START_TEST(fault_tcp)
{
    static const struct scenario sc = {
        "tcp listen, connect by name, accept", sc_tcp, {ENOMEM, EAGAIN, EMFILE, ENFILE, ENOBUFS}};

    sweep_all(&sc, KERNEL_NOW);
}
END_TEST

START_TEST(fault_chan)
{
    static const struct scenario sc = {"chan_new", sc_chan, {ENOMEM}};

    sweep_all(&sc, KERNEL_NOW);
}
END_TEST

START_TEST(fault_group)
{
    static const struct scenario sc = {"group_new + spawn x20", sc_group, {ENOMEM}};

    sweep_all(&sc, KERNEL_NOW);
}
END_TEST

START_TEST(fault_select)
{
    static const struct scenario sc = {"select (20 cases)", sc_select, {ENOMEM}};

    sweep_all(&sc, KERNEL_NOW);
}
END_TEST

START_TEST(fault_stream)
{
    static const struct scenario sc = {"stream line + answer (socketpair)", sc_stream, {ENOMEM}};

    sweep_all(&sc, KERNEL_NOW);
}
END_TEST

/* ---- calls per message --------------------------------------------------------
 *
 * Not failures: the calls weave makes, counted, for request/response
 * traffic over TCP on a stream (a server loop as demo/http_hello's): a
 * client task writes a line and reads the answer with weave_read, a server
 * task reads the line through a stream and answers through it. The
 * stream's read buffer is given back after each line and its write buffer
 * after each flush, so the counts show what that costs.
 */
#define EXCHANGES 200

static void *ping_client(void *arg)
{
    int fd = (int)wt_int(arg);
    char buf[64]; /* larger than an answer: each read comes back short */

    for (int i = 0; i < EXCHANGES; i++) {
        ck_assert_int_eq(weave_write(fd, "ping\n", 5), 5);
        ck_assert_int_eq(weave_read(fd, buf, sizeof(buf)), 5);
    }
    ck_assert_int_eq(weave_close(fd), 0);
    return NULL;
}

/* One server run: the read buffer size of its stream (0: the default),
 * and the calls counted while it served. */
struct exchange {
    size_t read_size;
    unsigned long made[FAULT_NCALLS];
};

/* Serve EXCHANGES lines through a stream of x->read_size; the calls made
 * meanwhile go to x->made. */
static void *exchange(void *arg)
{
    struct exchange *x = arg;
    weave_stream_opts o = {.read_size = x->read_size};
    int lfd, cfd, afd;
    weave_task *t;
    weave_stream *s;
    char line[16];

    ck_assert_int_ge(lfd = weave_tcp_listen("127.0.0.1", "0", 8), 0);
    ck_assert_int_ge(cfd = weave_tcp_connect("127.0.0.1", wt_port_str(lfd).s, -1), 0);
    ck_assert_int_ge(afd = weave_accept(lfd, NULL, NULL), 0);
    ck_assert_ptr_nonnull(s = weave_stream_new(afd, &o));
    t = WT_SPAWN(ping_client, wt_ptr(cfd));
    fault_clear(); /* count from here, on this thread */
    for (int i = 0; i < EXCHANGES; i++) {
        ck_assert_int_eq(weave_stream_read_line(s, line, sizeof(line)), 5);
        ck_assert_int_eq(weave_stream_printf(s, "pong\n"), 5);
        ck_assert_int_eq(weave_stream_flush(s), 0);
    }
    ck_assert_int_eq(weave_stream_read_line(s, line, sizeof(line)), 0);
    for (int c = 0; c < FAULT_NCALLS; c++)
        x->made[c] = fault_count((enum fault_call)c);
    WT_JOIN(t);
    ck_assert_int_eq(weave_stream_close(s), 0);
    ck_assert_int_eq(weave_close(lfd), 0);
    return NULL;
}

/* A read of a stream whose last read emptied the fd waits for the input
 * event without a system call: one read per message on each side (the
 * first may say EAGAIN), and not one poll. Its buffers come from the
 * scheduler's cache: a malloc for the first of each, none after. */
START_TEST(stream_calls_per_message)
{
    struct exchange x = {.read_size = 0};

    WT_RUN(exchange, &x);
    printf("stream_calls_per_message: %d exchanges: read %lu, write %lu, poll %lu, "
           "malloc %lu, epoll_wait %lu\n",
           EXCHANGES, x.made[FAULT_READ], x.made[FAULT_WRITE], x.made[FAULT_POLL],
           x.made[FAULT_MALLOC], x.made[FAULT_EPOLL_WAIT] + x.made[FAULT_EPOLL_PWAIT2]);
    ck_assert_uint_eq(x.made[FAULT_POLL], 0);
    ck_assert_uint_le(x.made[FAULT_READ], 2 * EXCHANGES + 4);
    ck_assert_uint_le(x.made[FAULT_WRITE], 2 * EXCHANGES + 2);
    ck_assert_uint_le(x.made[FAULT_MALLOC], 4);
}
END_TEST

/* A buffer larger than the cache keeps is allocated anew for each line,
 * and freed after it (ASan and valgrind see that nothing leaks). */
START_TEST(stream_large_buffers_uncached)
{
    struct exchange x = {.read_size = LARGE_BUFFER};

    WT_RUN(exchange, &x);
    ck_assert_uint_eq(x.made[FAULT_POLL], 0);
    ck_assert_uint_ge(x.made[FAULT_MALLOC], EXCHANGES);
}
END_TEST

static Suite *fault_suite(void)
{
    Suite *s = suite_create("fault");
    TCase *tc = tcase_create("sweep");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, fault_run);
    tcase_add_test(tc, fault_spawn_new_size);
    tcase_add_test(tc, fault_spawn_many);
    tcase_add_test(tc, fault_sleep);
    tcase_add_test(tc, fault_wait_fd);
    tcase_add_test(tc, fault_read);
    tcase_add_test(tc, fault_chan);
    tcase_add_test(tc, fault_group);
    tcase_add_test(tc, fault_select);
    tcase_add_test(tc, fault_stream);
    suite_add_tcase(s, tc);

    tc = tcase_create("calls");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, stream_calls_per_message);
    tcase_add_test(tc, stream_large_buffers_uncached);
    suite_add_tcase(s, tc);

    /* Worker threads: not under qemu-user (see wt_tag_native). */
    tc = tcase_create("threads");
    tcase_set_timeout(tc, 60);
    wt_tag_native(tc);
    tcase_add_test(tc, fault_offload);
    tcase_add_test(tc, fault_offload_many);
    tcase_add_test(tc, fault_file_write);
    tcase_add_test(tc, fault_file_write_pool);
    tcase_add_loop_test(tc, ring_setup_fails_pool_instead, 0, 4);
    tcase_add_loop_test(tc, ring_submit_fails_call_completes, 0, 4);
    tcase_add_test(tc, fault_tcp);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* each row out before a failure can cut it */
    trace = getenv("WEAVE_FAULT_TRACE") != NULL;
    return wt_main(fault_suite());
}
