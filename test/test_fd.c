/*
 * test_fd.c - weave_wait_fd, weave_fd_forget and weave_close on pipes,
 * socketpairs, regular files and directories, all inside the process.
 *
 * Readiness is made by the test itself (a write, a read that makes room, a
 * close) at a known time, so a waiter's result and the moment it returns
 * can be asserted: never before the event, and a timeout never early.
 *
 * Check timeouts: "core" 10 s x 24 tests, "fairness" 30 s x 3 = 330 s; the
 * CTest timeout in CMakeLists.txt (350 s) is above their sum.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "weave_test.h"

/* ---- helpers ------------------------------------------------------------ */

static void put_byte(int fd)
{
    char c = 'x';

    ck_assert_int_eq((int)write(fd, &c, 1), 1);
}

/* A task waiting on one fd; what it got and when. */
struct waiter {
    int fd;
    int events;
    int64_t timeout;
    int result; /* the mask, or -1 */
    int err;    /* errno when result is -1 */
    int64_t returned_ns;
    int done;
    int order; /* 1 for the first waiter to return, then counting up */
};

static int returned_so_far;

static void *wait_task(void *arg)
{
    struct waiter *w = arg;

    errno = 0;
    w->result = weave_wait_fd(w->fd, w->events, w->timeout);
    w->err = errno;
    w->returned_ns = wt_now_ns();
    w->done = 1;
    w->order = ++returned_so_far;
    return NULL;
}

static struct waiter waiter_for(int fd, int events, int64_t timeout)
{
    struct waiter w = {fd, events, timeout, 0, 0, 0, 0, 0};

    return w;
}

/* ---- readiness ---------------------------------------------------------- */

WT_TEST(ready_fds_return_at_once)
{
    int p[2], sv[2];

    wt_make_pipe(p, O_NONBLOCK);
    put_byte(p[1]);
    ck_assert_int_eq(weave_wait_fd(p[0], WEAVE_IN, -1), WEAVE_IN);
    ck_assert_int_eq(weave_wait_fd(p[0], WEAVE_IN, 0), WEAVE_IN);
    ck_assert_int_eq(weave_wait_fd(p[1], WEAVE_OUT, -1), WEAVE_OUT);

    wt_make_socketpair(sv, SOCK_STREAM);
    /* Writable but not readable: only what is ready is reported. */
    ck_assert_int_eq(weave_wait_fd(sv[0], WEAVE_IN | WEAVE_OUT, -1), WEAVE_OUT);
    put_byte(sv[1]);
    ck_assert_int_eq(weave_wait_fd(sv[0], WEAVE_IN | WEAVE_OUT, -1), WEAVE_IN | WEAVE_OUT);
    ck_assert_int_eq(weave_wait_fd(sv[0], WEAVE_IN, 0), WEAVE_IN);
    for (int i = 0; i < 2; i++) {
        close(p[i]);
        close(sv[i]);
    }
    WT_ASSERT_IDLE();
}

static void *m_reader_wakes(void *arg)
{
    int *p = arg;
    struct waiter w = waiter_for(p[0], WEAVE_IN, -1);
    weave_task *t;
    weave_stats st;
    int64_t written;
    char c;

    t = WT_SPAWN(wait_task, &w);
    ck_assert_int_eq(weave_sleep(20), 0);
    ck_assert_int_eq(w.done, 0);
    st = wt_stats();
    ck_assert_uint_eq(st.fd_waiters, 1);
    ck_assert_uint_eq(st.fds_registered, 1);
    written = wt_now_ns();
    put_byte(p[1]);
    WT_JOIN(t);
    ck_assert_int_eq(w.result, WEAVE_IN);
    ck_assert_int_ge(w.returned_ns, written);
    ck_assert_int_lt((w.returned_ns - written) / 1000000, WT_PROMPT_MS);
    ck_assert_int_eq((int)read(p[0], &c, 1), 1);
    ck_assert_uint_eq(wt_stats().fd_waiters, 0);
    /* Registered once, the fd stays registered for the next wait. */
    ck_assert_uint_eq(wt_stats().fds_registered, 1);
    ck_assert_int_eq(weave_close(p[0]), 0);
    ck_assert_uint_eq(wt_stats().fds_registered, 0);
    close(p[1]);
    WT_ASSERT_IDLE();
    return NULL;
}

START_TEST(pipe_reader_wakes_on_write)
{
    int p[2];

    wt_make_pipe(p, O_NONBLOCK);
    WT_RUN(m_reader_wakes, p);
}
END_TEST

START_TEST(socketpair_reader_wakes_on_write)
{
    int sv[2];

    wt_make_socketpair(sv, SOCK_STREAM);
    WT_RUN(m_reader_wakes, sv);
}
END_TEST

static void *m_writer_wakes(void *arg)
{
    int *p = arg;
    struct waiter w = waiter_for(p[1], WEAVE_OUT, -1);
    weave_task *t;
    int64_t drained;

    wt_fill(p[1]);
    t = WT_SPAWN(wait_task, &w);
    ck_assert_int_eq(weave_sleep(20), 0);
    ck_assert_int_eq(w.done, 0);
    drained = wt_now_ns();
    ck_assert_uint_gt(wt_drain(p[0]), 0);
    WT_JOIN(t);
    ck_assert_int_eq(w.result, WEAVE_OUT);
    ck_assert_int_ge(w.returned_ns, drained);
    ck_assert_int_eq(weave_close(p[0]), 0);
    ck_assert_int_eq(weave_close(p[1]), 0);
    WT_ASSERT_IDLE();
    return NULL;
}

START_TEST(pipe_writer_wakes_when_room)
{
    int p[2];

    wt_make_pipe(p, O_NONBLOCK);
    WT_RUN(m_writer_wakes, p);
}
END_TEST

START_TEST(socketpair_writer_wakes_when_room)
{
    int sv[2], p[2];

    wt_make_socketpair(sv, SOCK_STREAM);
    /* m_writer_wakes writes to p[1] and reads from p[0]. */
    p[0] = sv[1];
    p[1] = sv[0];
    WT_RUN(m_writer_wakes, p);
}
END_TEST

/* ---- timeouts ----------------------------------------------------------- */

WT_TEST(timeouts_never_early)
{
    int p[2], sv[2], full[2];
    struct {
        int fd, events;
    } cases[4];

    wt_make_pipe(p, O_NONBLOCK);
    wt_make_socketpair(sv, SOCK_STREAM);
    wt_make_pipe(full, O_NONBLOCK);
    wt_fill(full[1]);
    cases[0].fd = p[0], cases[0].events = WEAVE_IN;
    cases[1].fd = sv[0], cases[1].events = WEAVE_IN;
    cases[2].fd = full[1], cases[2].events = WEAVE_OUT;
    cases[3].fd = sv[1], cases[3].events = WEAVE_IN;
    for (int i = 0; i < 4; i++) {
        for (int64_t d = 1; d <= 50; d *= 7) { /* 1, 7, 49 ms */
            int64_t t0 = wt_now_ns();
            WT_FAILS(weave_wait_fd(cases[i].fd, cases[i].events, d), ETIMEDOUT);
            ck_assert_int_ge(wt_now_ns() - t0, d * 1000000);
        }
        /* timeout 0 polls: not ready now */
        WT_FAILS(weave_wait_fd(cases[i].fd, cases[i].events, 0), ETIMEDOUT);
    }
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(weave_close(p[i]), 0);
        ck_assert_int_eq(weave_close(sv[i]), 0);
        ck_assert_int_eq(weave_close(full[i]), 0);
    }
    WT_ASSERT_IDLE();
}

WT_TEST(huge_timeout_does_not_expire)
{
    static const int64_t huge[] = {INT64_MAX, INT64_MAX / 1000000 + 1, (int64_t)1000000000000};
    int p[2];

    wt_make_pipe(p, O_NONBLOCK);
    for (size_t i = 0; i < sizeof(huge) / sizeof(huge[0]); i++) {
        struct waiter w = waiter_for(p[0], WEAVE_IN, huge[i]);
        weave_task *t = WT_SPAWN(wait_task, &w);
        ck_assert_int_eq(weave_sleep(20), 0);
        ck_assert_int_eq(w.done, 0);
        ck_assert_int_eq(weave_cancel(t), 0);
        WT_JOIN(t);
        ck_assert_int_eq(w.result, -1);
        ck_assert_int_eq(w.err, ECANCELED);
    }
    ck_assert_int_eq(weave_close(p[0]), 0);
    close(p[1]);
    WT_ASSERT_IDLE();
}

/* ---- a reader and a writer on one fd ------------------------------------ */

WT_TEST(reader_and_writer_on_one_fd)
{
    int sv[2];
    struct waiter r, w;
    weave_task *tr, *tw;
    weave_stats st;

    wt_make_socketpair(sv, SOCK_STREAM);
    wt_fill(sv[0]); /* sv[0] cannot write, and has nothing to read */
    r = waiter_for(sv[0], WEAVE_IN, 5000);
    w = waiter_for(sv[0], WEAVE_OUT, 5000);
    tr = WT_SPAWN(wait_task, &r);
    tw = WT_SPAWN(wait_task, &w);
    ck_assert_int_eq(weave_sleep(10), 0);
    st = wt_stats();
    ck_assert_uint_eq(st.fd_waiters, 2);
    ck_assert_uint_eq(st.fds_registered, 1);
    ck_assert_int_eq(r.done + w.done, 0);

    /* Input for the reader: the writer sleeps on. */
    put_byte(sv[1]);
    ck_assert_int_eq(weave_sleep(10), 0);
    ck_assert_int_eq(r.done, 1);
    ck_assert_int_eq(r.result, WEAVE_IN);
    ck_assert_int_eq(w.done, 0);

    /* Room for the writer. */
    ck_assert_uint_gt(wt_drain(sv[1]), 0);
    WT_JOIN(tw);
    ck_assert_int_eq(w.result, WEAVE_OUT);
    WT_JOIN(tr);
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(weave_close(sv[i]), 0);
    WT_ASSERT_IDLE();
}

/* Several tasks waiting on one fd in one direction are served in the order
 * they came; one that gives up (cancelled, timed out) leaves the others
 * where they were; weave_close wakes them all. */
WT_TEST(waiters_in_one_direction_fifo)
{
    int p[2];
    struct waiter w[5];
    weave_task *t[5];
    int64_t t0;

    returned_so_far = 0;
    wt_make_pipe(p, O_NONBLOCK);
    for (int i = 0; i < 5; i++) {
        w[i] = waiter_for(p[0], WEAVE_IN, i == 3 ? 20 : -1);
        t[i] = WT_SPAWN(wait_task, &w[i]);
    }
    t0 = wt_now_ns();
    ck_assert_int_eq(weave_yield(), 0);
    ck_assert_uint_eq(wt_stats().fd_waiters, 5);
    /* A waiter in the middle of the queue is cancelled, another times out. */
    ck_assert_int_eq(weave_cancel(t[2]), 0);
    WT_JOIN(t[2]);
    ck_assert_int_eq(w[2].result, -1);
    ck_assert_int_eq(w[2].err, ECANCELED);
    WT_JOIN(t[3]);
    ck_assert_int_eq(w[3].result, -1);
    ck_assert_int_eq(w[3].err, ETIMEDOUT);
    ck_assert_int_ge(w[3].returned_ns - t0, (int64_t)20 * 1000000);
    ck_assert_int_eq(w[0].done + w[1].done + w[4].done, 0);
    ck_assert_uint_eq(wt_stats().fd_waiters, 3);

    /* One byte of input: every waiter left sees it, first come first served. */
    put_byte(p[1]);
    WT_JOIN(t[0]);
    WT_JOIN(t[1]);
    WT_JOIN(t[4]);
    ck_assert_int_eq(w[0].result, WEAVE_IN);
    ck_assert_int_eq(w[1].result, WEAVE_IN);
    ck_assert_int_eq(w[4].result, WEAVE_IN);
    ck_assert_int_lt(w[0].order, w[1].order);
    ck_assert_int_lt(w[1].order, w[4].order);

    /* weave_close wakes the one waiting for input and those queued behind. */
    ck_assert_uint_eq(wt_drain(p[0]), 1);
    for (int i = 0; i < 3; i++) {
        w[i] = waiter_for(p[0], WEAVE_IN, -1);
        t[i] = WT_SPAWN(wait_task, &w[i]);
    }
    ck_assert_int_eq(weave_yield(), 0);
    ck_assert_int_eq(weave_close(p[0]), 0);
    for (int i = 0; i < 3; i++) {
        WT_JOIN(t[i]);
        ck_assert_int_eq(w[i].result, -1);
        ck_assert_int_eq(w[i].err, EBADF);
    }
    close(p[1]);
    WT_ASSERT_IDLE();
}

/* ---- hang-up and errors -------------------------------------------------- */

static void *m_hup(void *arg)
{
    int kind = (int)wt_int(arg);
    int p[2];
    struct waiter w;
    weave_task *t;
    char c;

    if (kind == 0)
        wt_make_pipe(p, O_NONBLOCK);
    else
        wt_make_socketpair(p, SOCK_STREAM);
    w = waiter_for(p[0], WEAVE_IN, 5000);
    t = WT_SPAWN(wait_task, &w);
    ck_assert_int_eq(weave_sleep(10), 0);
    ck_assert_int_eq(w.done, 0);
    ck_assert_int_eq(close(p[1]), 0);
    WT_JOIN(t);
    ck_assert_int_ge(w.result, 0);
    ck_assert_msg((w.result & (WEAVE_IN | WEAVE_HUP)) == (WEAVE_IN | WEAVE_HUP),
                  "mask 0x%x lacks IN|HUP", w.result);
    ck_assert_int_eq(w.result & WEAVE_OUT, 0); /* not asked for, not given */
    ck_assert_int_eq((int)read(p[0], &c, 1), 0);
    /* The hang-up stays visible to later waits, which return at once. */
    ck_assert_int_eq(weave_wait_fd(p[0], WEAVE_IN, 5000) & (WEAVE_IN | WEAVE_HUP),
                     WEAVE_IN | WEAVE_HUP);
    ck_assert_int_eq(weave_close(p[0]), 0);
    WT_ASSERT_IDLE();
    return NULL;
}

START_TEST(peer_hangup_wakes_reader)
{
    WT_RUN(m_hup, wt_ptr(0));
    WT_RUN(m_hup, wt_ptr(1));
}
END_TEST

WT_TEST(hangup_before_the_wait)
{
    int p[2], sv[2];
    int r;

    wt_make_pipe(p, O_NONBLOCK);
    wt_make_socketpair(sv, SOCK_STREAM);
    close(p[1]);
    close(sv[1]);
    r = weave_wait_fd(p[0], WEAVE_IN, 5000);
    ck_assert_int_eq(r & (WEAVE_IN | WEAVE_HUP), WEAVE_IN | WEAVE_HUP);
    r = weave_wait_fd(sv[0], WEAVE_IN, 5000);
    ck_assert_int_eq(r & (WEAVE_IN | WEAVE_HUP), WEAVE_IN | WEAVE_HUP);
    close(p[0]);
    close(sv[0]);
    WT_ASSERT_IDLE();
}

WT_TEST(reader_gone_wakes_writer)
{
    int p[2];
    struct waiter w;
    weave_task *t;

    wt_make_pipe(p, O_NONBLOCK);
    wt_fill(p[1]);
    w = waiter_for(p[1], WEAVE_OUT, 5000);
    t = WT_SPAWN(wait_task, &w);
    ck_assert_int_eq(weave_sleep(10), 0);
    ck_assert_int_eq(w.done, 0);
    ck_assert_int_eq(close(p[0]), 0);
    WT_JOIN(t);
    ck_assert_int_ge(w.result, 0);
    /* The write that follows would fail (EPIPE): the writer is told. */
    ck_assert_msg((w.result & WEAVE_OUT) && (w.result & (WEAVE_ERR | WEAVE_HUP)), "mask 0x%x",
                  w.result);
    ck_assert_int_eq(weave_close(p[1]), 0);
    WT_ASSERT_IDLE();
}

/* ---- cancellation, forget, close ------------------------------------------ */

WT_TEST(cancel_fd_waiter)
{
    int p[2];
    struct waiter w;
    weave_task *t;
    int64_t t0;

    wt_make_pipe(p, O_NONBLOCK);
    w = waiter_for(p[0], WEAVE_IN, -1);
    t = WT_SPAWN(wait_task, &w);
    ck_assert_int_eq(weave_sleep(10), 0);
    ck_assert_uint_eq(wt_stats().fd_waiters, 1);
    t0 = wt_now_ns();
    ck_assert_int_eq(weave_cancel(t), 0);
    WT_JOIN(t);
    ck_assert_int_lt(wt_ms_since(t0), WT_PROMPT_MS);
    ck_assert_int_eq(w.result, -1);
    ck_assert_int_eq(w.err, ECANCELED);
    ck_assert_uint_eq(wt_stats().fd_waiters, 0);
    /* The direction is free again, and data still wakes a new waiter. */
    w = waiter_for(p[0], WEAVE_IN, 5000);
    t = WT_SPAWN(wait_task, &w);
    ck_assert_int_eq(weave_yield(), 0);
    put_byte(p[1]);
    WT_JOIN(t);
    ck_assert_int_eq(w.result, WEAVE_IN);
    ck_assert_int_eq(weave_close(p[0]), 0);
    close(p[1]);
    WT_ASSERT_IDLE();
}

WT_TEST(close_wakes_waiters_with_ebadf)
{
    int sv[2];
    struct waiter r, w;
    weave_task *tr, *tw;
    int64_t t0;

    wt_make_socketpair(sv, SOCK_STREAM);
    wt_fill(sv[0]);
    r = waiter_for(sv[0], WEAVE_IN, -1);
    w = waiter_for(sv[0], WEAVE_OUT, -1);
    tr = WT_SPAWN(wait_task, &r);
    tw = WT_SPAWN(wait_task, &w);
    ck_assert_int_eq(weave_sleep(10), 0);
    ck_assert_uint_eq(wt_stats().fd_waiters, 2);
    t0 = wt_now_ns();
    ck_assert_int_eq(weave_close(sv[0]), 0);
    WT_JOIN(tr);
    WT_JOIN(tw);
    ck_assert_int_lt(wt_ms_since(t0), WT_PROMPT_MS);
    ck_assert_int_eq(r.result, -1);
    ck_assert_int_eq(r.err, EBADF);
    ck_assert_int_eq(w.result, -1);
    ck_assert_int_eq(w.err, EBADF);
    ck_assert_int_eq(fcntl(sv[0], F_GETFD), -1); /* and it is closed */
    ck_assert_uint_eq(wt_stats().fds_registered, 0);
    close(sv[1]);
    WT_ASSERT_IDLE();
}

WT_TEST(forget_wakes_waiter_and_keeps_fd)
{
    int p[2];
    struct waiter w;
    weave_task *t;

    wt_make_pipe(p, O_NONBLOCK);
    w = waiter_for(p[0], WEAVE_IN, -1);
    t = WT_SPAWN(wait_task, &w);
    ck_assert_int_eq(weave_sleep(10), 0);
    ck_assert_int_eq(weave_fd_forget(p[0]), 0);
    WT_JOIN(t);
    ck_assert_int_eq(w.result, -1);
    ck_assert_int_eq(w.err, EBADF);
    ck_assert_uint_eq(wt_stats().fds_registered, 0);
    /* The fd is still open, and can be waited on again. */
    ck_assert_int_ne(fcntl(p[0], F_GETFD), -1);
    w = waiter_for(p[0], WEAVE_IN, 5000);
    t = WT_SPAWN(wait_task, &w);
    ck_assert_int_eq(weave_sleep(5), 0);
    ck_assert_int_eq(w.done, 0);
    put_byte(p[1]);
    WT_JOIN(t);
    ck_assert_int_eq(w.result, WEAVE_IN);
    /* forget of an fd weave never saw, twice, is harmless */
    ck_assert_int_eq(weave_fd_forget(p[1]), 0);
    ck_assert_int_eq(weave_fd_forget(p[1]), 0);
    ck_assert_int_eq(weave_fd_forget(p[0]), 0);
    ck_assert_int_eq(close(p[0]), 0);
    ck_assert_int_eq(close(p[1]), 0);
    WT_FAILS(weave_fd_forget(-1), EBADF);
    WT_ASSERT_IDLE();
}

/* After weave_close, the same fd number for a new file is a new fd to
 * weave: the new file is registered, and nothing of the old one leaks in. */
WT_TEST(fd_number_reused_after_close)
{
    int a[2], b[2];
    struct waiter w;
    weave_task *t;
    int old;

    wt_make_pipe(a, O_NONBLOCK);
    old = a[0];
    WT_FAILS(weave_wait_fd(a[0], WEAVE_IN, 5), ETIMEDOUT); /* registered */
    put_byte(a[1]);
    ck_assert_int_eq(weave_close(a[0]), 0);
    wt_make_pipe(b, O_NONBLOCK);
    ck_assert_int_eq(b[0], old);
    WT_FAILS(weave_wait_fd(b[0], WEAVE_IN, 20), ETIMEDOUT);
    w = waiter_for(b[0], WEAVE_IN, 5000);
    t = WT_SPAWN(wait_task, &w);
    ck_assert_int_eq(weave_sleep(5), 0);
    ck_assert_int_eq(w.done, 0);
    put_byte(b[1]);
    WT_JOIN(t);
    ck_assert_int_eq(w.result, WEAVE_IN);
    ck_assert_int_eq(weave_close(b[0]), 0);
    close(b[1]);
    close(a[1]);
    WT_ASSERT_IDLE();
}

/* A waiter parked on a low fd while another task's wait on a high fd grows
 * weave's fd table under it. */
WT_TEST(fd_table_grows_under_a_waiter)
{
    int p[2], q[2], high;
    struct waiter lo, hi;
    weave_task *tl, *th;

    wt_make_pipe(p, O_NONBLOCK);
    wt_make_pipe(q, O_NONBLOCK);
    high = fcntl(q[0], F_DUPFD_CLOEXEC, 3000);
    ck_assert_int_ge(high, 3000);
    lo = waiter_for(p[0], WEAVE_IN, 5000);
    hi = waiter_for(high, WEAVE_IN, 5000);
    tl = WT_SPAWN(wait_task, &lo);
    ck_assert_int_eq(weave_yield(), 0);
    th = WT_SPAWN(wait_task, &hi);
    ck_assert_int_eq(weave_yield(), 0);
    ck_assert_uint_eq(wt_stats().fd_waiters, 2);
    put_byte(p[1]);
    put_byte(q[1]);
    WT_JOIN(tl);
    WT_JOIN(th);
    ck_assert_int_eq(lo.result, WEAVE_IN);
    ck_assert_int_eq(hi.result, WEAVE_IN);
    ck_assert_int_eq(weave_close(p[0]), 0);
    ck_assert_int_eq(weave_close(high), 0);
    close(p[1]);
    close(q[0]);
    close(q[1]);
    WT_ASSERT_IDLE();
}

WT_TEST(blocking_mode_left_alone)
{
    int p[2], q[2];

    wt_make_pipe(p, 0);
    wt_make_pipe(q, O_NONBLOCK);
    WT_FAILS(weave_wait_fd(p[0], WEAVE_IN, 5), ETIMEDOUT);
    WT_FAILS(weave_wait_fd(q[0], WEAVE_IN, 5), ETIMEDOUT);
    ck_assert_int_eq(weave_wait_fd(p[1], WEAVE_OUT, 5), WEAVE_OUT);
    /* weave_wait_fd leaves the blocking mode as it was */
    ck_assert_int_eq(fcntl(p[0], F_GETFL) & O_NONBLOCK, 0);
    ck_assert_int_eq(fcntl(p[1], F_GETFL) & O_NONBLOCK, 0);
    ck_assert_int_ne(fcntl(q[0], F_GETFL) & O_NONBLOCK, 0);
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(weave_close(p[i]), 0);
        ck_assert_int_eq(weave_close(q[i]), 0);
    }
    WT_ASSERT_IDLE();
}

/* ---- bad input --------------------------------------------------------------- */

WT_TEST(bad_fds_ebadf)
{
    int p[2], closed;

    WT_FAILS(weave_wait_fd(-1, WEAVE_IN, 0), EBADF);
    WT_FAILS(weave_wait_fd(-1, WEAVE_IN, -1), EBADF);
    WT_FAILS(weave_wait_fd(-100, WEAVE_OUT, 10), EBADF);
    WT_FAILS(weave_wait_fd(INT_MIN, WEAVE_IN, 10), EBADF);
    WT_FAILS(weave_wait_fd(INT_MAX, WEAVE_IN, -1), EBADF);
    /* a number that is not open now */
    wt_make_pipe(p, O_NONBLOCK);
    closed = p[0];
    close(p[0]);
    close(p[1]);
    WT_FAILS(weave_wait_fd(closed, WEAVE_IN, -1), EBADF);
    WT_FAILS(weave_wait_fd(closed, WEAVE_OUT, 0), EBADF);
    /* a number weave had registered, closed through weave */
    wt_make_pipe(p, O_NONBLOCK);
    WT_FAILS(weave_wait_fd(p[0], WEAVE_IN, 1), ETIMEDOUT);
    closed = p[0];
    ck_assert_int_eq(weave_close(p[0]), 0);
    WT_FAILS(weave_wait_fd(closed, WEAVE_IN, -1), EBADF);
    close(p[1]);
    WT_ASSERT_IDLE();
}

WT_TEST(bad_events_and_timeouts_einval)
{
    static const int bad[] = {0, 2, 0x20, 0x100, 0x10000, -1, WEAVE_IN | 0x2, WEAVE_OUT | 0x400};
    int p[2];

    wt_make_pipe(p, O_NONBLOCK);
    put_byte(p[1]); /* readable: an accepted call would return at once */
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        WT_FAILS(weave_wait_fd(p[0], bad[i], 0), EINVAL);
        WT_FAILS(weave_wait_fd(p[0], bad[i], -1), EINVAL);
    }
    WT_FAILS(weave_wait_fd(p[0], WEAVE_IN, -2), EINVAL);
    WT_FAILS(weave_wait_fd(p[0], WEAVE_IN, -1000), EINVAL);
    WT_FAILS(weave_wait_fd(p[0], WEAVE_IN, INT64_MIN), EINVAL);
    ck_assert_int_eq(weave_wait_fd(p[0], WEAVE_IN, -1), WEAVE_IN);
    close(p[0]);
    close(p[1]);
    WT_ASSERT_IDLE();
}

WT_TEST(regular_files_always_ready)
{
    FILE *f = tmpfile();
    int fd, dir, null;

    ck_assert_ptr_nonnull(f);
    fd = fileno(f);
    /* Regular files and directories are always ready, as with poll(2),
     * however long the timeout. */
    ck_assert_int_eq(weave_wait_fd(fd, WEAVE_IN, -1), WEAVE_IN);
    ck_assert_int_eq(weave_wait_fd(fd, WEAVE_OUT, -1), WEAVE_OUT);
    ck_assert_int_eq(weave_wait_fd(fd, WEAVE_IN | WEAVE_OUT, 0), WEAVE_IN | WEAVE_OUT);
    dir = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ck_assert_int_ge(dir, 0);
    ck_assert_int_eq(weave_wait_fd(dir, WEAVE_IN, -1), WEAVE_IN);
    null = open("/dev/null", O_RDWR | O_CLOEXEC);
    ck_assert_int_ge(null, 0);
    ck_assert_int_eq(weave_wait_fd(null, WEAVE_IN | WEAVE_OUT, -1), WEAVE_IN | WEAVE_OUT);
    ck_assert_int_eq(weave_fd_forget(fd), 0);
    fclose(f);
    ck_assert_int_eq(weave_close(dir), 0);
    ck_assert_int_eq(weave_close(null), 0);
    ck_assert_uint_eq(wt_stats().fds_registered, 0);
    WT_ASSERT_IDLE();
}

/* ---- readiness from another thread while tasks sleep ---------------------- */

struct later {
    int fd;
    int delay_ms;
};

static void *write_later(void *arg)
{
    struct later *l = arg;
    struct timespec ts = {0, (long)l->delay_ms * 1000000};

    nanosleep(&ts, NULL);
    put_byte(l->fd);
    return NULL;
}

static int order_log[4], order_len;

static void *log_after_wait(void *arg)
{
    struct waiter *w = arg;

    wait_task(w);
    order_log[order_len++] = 1;
    return NULL;
}

static void *m_fd_while_sleeping(void *arg)
{
    int p[2];
    pthread_t th;
    struct later l;
    struct waiter w;
    weave_task *t;
    int64_t t0;

    (void)arg;
    wt_make_pipe(p, O_NONBLOCK);
    w = waiter_for(p[0], WEAVE_IN, -1);
    t = WT_SPAWN(log_after_wait, &w);
    l.fd = p[1];
    l.delay_ms = 20;
    t0 = wt_now_ns();
    ck_assert_int_eq(pthread_create(&th, NULL, write_later, &l), 0);
    /* The scheduler blocks for the timer; the fd event must cut that
     * wait short for the fd waiter, and not end this sleep early. */
    ck_assert_int_eq(weave_sleep(300), 0);
    ck_assert_int_ge(wt_now_ns() - t0, (int64_t)300 * 1000000);
    order_log[order_len++] = 2;
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    WT_JOIN(t);
    ck_assert_int_eq(w.result, WEAVE_IN);
    ck_assert_int_ge(w.returned_ns - t0, (int64_t)20 * 1000000);
    ck_assert_int_eq(weave_close(p[0]), 0);
    close(p[1]);
    WT_ASSERT_IDLE();
    return NULL;
}

START_TEST(fd_ready_while_scheduler_waits_for_timer)
{
    order_len = 0;
    WT_RUN(m_fd_while_sleeping, NULL);
    ck_assert_int_eq(order_len, 2);
    ck_assert_int_eq(order_log[0], 1); /* the fd waiter, long before ... */
    ck_assert_int_eq(order_log[1], 2); /* ... the sleeper */
}
END_TEST

WT_TEST(fd_event_without_waiter_does_not_end_sleep)
{
    int p[2];
    pthread_t th;
    struct later l;
    int64_t t0;

    wt_make_pipe(p, O_NONBLOCK);
    /* Registered with the poller, then nobody waits on it. */
    WT_FAILS(weave_wait_fd(p[0], WEAVE_IN, 1), ETIMEDOUT);
    l.fd = p[1];
    l.delay_ms = 20;
    t0 = wt_now_ns();
    ck_assert_int_eq(pthread_create(&th, NULL, write_later, &l), 0);
    /* The only task sleeps; the fd's event arrives with no waiter. */
    ck_assert_int_eq(weave_sleep(100), 0);
    ck_assert_int_ge(wt_now_ns() - t0, (int64_t)100 * 1000000);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    /* The data is still seen by the next wait. */
    ck_assert_int_eq(weave_wait_fd(p[0], WEAVE_IN, 0), WEAVE_IN);
    ck_assert_int_eq(weave_close(p[0]), 0);
    close(p[1]);
    WT_ASSERT_IDLE();
}

WT_TEST(only_task_waits_on_fd_from_thread)
{
    int p[2];
    pthread_t th;
    struct later l;
    int64_t t0;

    wt_make_pipe(p, O_NONBLOCK);
    l.fd = p[1];
    l.delay_ms = 30;
    t0 = wt_now_ns();
    ck_assert_int_eq(pthread_create(&th, NULL, write_later, &l), 0);
    /* The only task waits on an fd with a long timeout: the event, not
     * the timeout, ends the wait. */
    ck_assert_int_eq(weave_wait_fd(p[0], WEAVE_IN, 10000), WEAVE_IN);
    ck_assert_int_ge(wt_now_ns() - t0, (int64_t)30 * 1000000);
    ck_assert_int_lt(wt_ms_since(t0), 10000);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_int_eq(weave_close(p[0]), 0);
    close(p[1]);
    WT_ASSERT_IDLE();
}

/* ---- fairness between fd wake-ups and yielding tasks ---------------------- */

/*
 * K ping-pong pairs over socketpairs keep the poller busy: each pinger
 * writes a byte and waits for the echo; each echoer waits, reads and writes
 * the byte back. Every return from a wait counts one fd wake-up. K is above
 * the poller's batch of 256 events, so one poll cannot take in everything.
 */
#define K 300

static int pairs[K][2];
static long fd_wakes; /* returns from wait_fd in the flood */
static long round_trips[K];

static void *pinger(void *arg)
{
    int i = (int)wt_int(arg), fd = pairs[i][1];
    char c = 'p';

    for (;;) {
        if (write(fd, &c, 1) != 1)
            break;
        if (weave_wait_fd(fd, WEAVE_IN, -1) < 0)
            break;
        fd_wakes++;
        if (read(fd, &c, 1) != 1)
            break;
        round_trips[i]++;
    }
    return NULL;
}

static void *echoer(void *arg)
{
    int fd = pairs[(int)wt_int(arg)][0];
    char c;

    for (;;) {
        if (weave_wait_fd(fd, WEAVE_IN, -1) < 0)
            break;
        fd_wakes++;
        if (read(fd, &c, 1) != 1 || write(fd, &c, 1) != 1)
            break;
    }
    return NULL;
}

static weave_task *flood_tasks[2 * K];

static void flood_start(void)
{
    fd_wakes = 0;
    for (int i = 0; i < K; i++) {
        wt_make_socketpair(pairs[i], SOCK_STREAM);
        round_trips[i] = 0;
        flood_tasks[2 * i] = WT_SPAWN(echoer, wt_ptr(i));
        flood_tasks[2 * i + 1] = WT_SPAWN(pinger, wt_ptr(i));
    }
}

static void flood_stop(void)
{
    for (int i = 0; i < 2 * K; i++)
        ck_assert_int_eq(weave_cancel(flood_tasks[i]), 0);
    for (int i = 0; i < 2 * K; i++)
        WT_JOIN(flood_tasks[i]);
    for (int i = 0; i < K; i++) {
        ck_assert_int_eq(weave_close(pairs[i][0]), 0);
        ck_assert_int_eq(weave_close(pairs[i][1]), 0);
    }
}

WT_TEST(fd_flood_does_not_starve_yielder)
{
    long max_between = 0, before = 0;

    flood_start();
    for (int n = 0; n < 2000; n++) {
        before = fd_wakes;
        ck_assert_int_eq(weave_yield(), 0);
        if (fd_wakes - before > max_between)
            max_between = fd_wakes - before;
    }
    /* The flood went on while we yielded ... */
    ck_assert_int_gt(fd_wakes, 2 * K);
    /* ... yet between two of our turns each of its 2K tasks ran at most
     * once: the woken queue behind the already runnable, round by round. */
    ck_assert_int_le(max_between, 2 * K);
    flood_stop();
    WT_ASSERT_IDLE();
}

static int spinners_stop;

static void *spinner(void *arg)
{
    long *yields = arg;

    while (!spinners_stop) {
        ck_assert_int_eq(weave_yield(), 0);
        (*yields)++;
    }
    return NULL;
}

WT_TEST(yield_loop_does_not_starve_fds)
{
    weave_task *sp[3];
    long yields[3] = {0, 0, 0};
    int done = 0;

    spinners_stop = 0;
    for (int i = 0; i < 3; i++)
        sp[i] = WT_SPAWN(spinner, &yields[i]);
    flood_start();
    /* Three tasks spin on yield and never block, so the scheduler never
     * sleeps in the poller; fd events must still be taken in between two
     * rounds. Wait until every pair has made 5 round trips. */
    while (!done) {
        ck_assert_int_eq(weave_yield(), 0);
        done = 1;
        for (int i = 0; i < K && done; i++)
            done = round_trips[i] >= 5;
        /* One round trip needs a few rounds (two wake-ups, up to two
         * polls of 256 events each): 5 took 14 rounds when measured. */
        ck_assert_int_lt(yields[0], 100);
    }
    spinners_stop = 1;
    for (int i = 0; i < 3; i++)
        WT_JOIN(sp[i]);
    flood_stop();
    WT_ASSERT_IDLE();
}

/* Many waiters woken together, from one write each. */
WT_TEST(many_waiters_all_wake)
{
    static struct waiter w[K];
    static weave_task *t[K];

    for (int i = 0; i < K; i++) {
        wt_make_socketpair(pairs[i], SOCK_STREAM);
        w[i] = waiter_for(pairs[i][0], WEAVE_IN, 10000);
        t[i] = WT_SPAWN(wait_task, &w[i]);
    }
    ck_assert_int_eq(weave_sleep(5), 0);
    ck_assert_uint_eq(wt_stats().fd_waiters, K);
    ck_assert_uint_eq(wt_stats().fds_registered, K);
    for (int i = K - 1; i >= 0; i--)
        put_byte(pairs[i][1]);
    for (int i = 0; i < K; i++) {
        WT_JOIN(t[i]);
        ck_assert_int_eq(w[i].result, WEAVE_IN);
    }
    for (int i = 0; i < K; i++) {
        ck_assert_int_eq(weave_close(pairs[i][0]), 0);
        ck_assert_int_eq(close(pairs[i][1]), 0);
    }
    ck_assert_uint_eq(wt_stats().fds_registered, 0);
    WT_ASSERT_IDLE();
}

static Suite *fd_suite(void)
{
    Suite *s = suite_create("fd");
    TCase *tc = tcase_create("core");
    TCase *fair = tcase_create("fairness");

    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, ready_fds_return_at_once);
    tcase_add_test(tc, pipe_reader_wakes_on_write);
    tcase_add_test(tc, socketpair_reader_wakes_on_write);
    tcase_add_test(tc, pipe_writer_wakes_when_room);
    tcase_add_test(tc, socketpair_writer_wakes_when_room);
    tcase_add_test(tc, timeouts_never_early);
    tcase_add_test(tc, huge_timeout_does_not_expire);
    tcase_add_test(tc, reader_and_writer_on_one_fd);
    tcase_add_test(tc, waiters_in_one_direction_fifo);
    tcase_add_test(tc, peer_hangup_wakes_reader);
    tcase_add_test(tc, hangup_before_the_wait);
    tcase_add_test(tc, reader_gone_wakes_writer);
    tcase_add_test(tc, cancel_fd_waiter);
    tcase_add_test(tc, close_wakes_waiters_with_ebadf);
    tcase_add_test(tc, forget_wakes_waiter_and_keeps_fd);
    tcase_add_test(tc, fd_number_reused_after_close);
    tcase_add_test(tc, fd_table_grows_under_a_waiter);
    tcase_add_test(tc, blocking_mode_left_alone);
    tcase_add_test(tc, bad_fds_ebadf);
    tcase_add_test(tc, bad_events_and_timeouts_einval);
    tcase_add_test(tc, regular_files_always_ready);
    suite_add_tcase(s, tc);

    /* Readiness made by another thread. */
    tc = tcase_create("thread");
    wt_tag_native(tc);
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, fd_ready_while_scheduler_waits_for_timer);
    tcase_add_test(tc, fd_event_without_waiter_does_not_end_sleep);
    tcase_add_test(tc, only_task_waits_on_fd_from_thread);
    suite_add_tcase(s, tc);

    tcase_set_timeout(fair, 30);
    tcase_add_test(fair, fd_flood_does_not_starve_yielder);
    tcase_add_test(fair, yield_loop_does_not_starve_fds);
    tcase_add_test(fair, many_waiters_all_wake);
    suite_add_tcase(s, fair);
    return s;
}

int main(void)
{
    return wt_main(fd_suite());
}
