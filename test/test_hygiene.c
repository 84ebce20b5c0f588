/*
 * test_hygiene.c - what weave changes on an fd it did not create, it
 * changes back: O_NONBLOCK, which the I/O calls set on first use, is
 * cleared again when the fd is forgotten, before weave_close closes it,
 * and when weave_run ends; weave's own fds stay non-blocking.
 *
 * The flag lives on the open file description, so the tests look at it
 * through a second fd on the same description, as a shell holding the
 * terminal would: a raw dup, or the parent's end in a forked child that
 * dup2's its end onto fd 0 and runs weave on it as stdin.
 *
 * Check timeouts: "hygiene" 15 s x 10 tests = 150 s; the CTest timeout in
 * CMakeLists.txt (170 s) is above it.
 */
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "weave_test.h"

/* ---- helpers ------------------------------------------------------------ */

static bool nonblocking(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    ck_assert_int_ge(fl, 0);
    return (fl & O_NONBLOCK) != 0;
}

/* In a forked child, where Check cannot report: say what failed and exit
 * with code. */
static void child_expect(bool ok, int code, const char *what)
{
    if (!ok) {
        (void)fprintf(stderr, "child: %s\n", what);
        _exit(code);
    }
}

/* Whether fd (in a child) is non-blocking; exits the child if F_GETFL fails. */
static bool child_nonblocking(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    child_expect(fl >= 0, 90, "F_GETFL failed");
    return (fl & O_NONBLOCK) != 0;
}

/* Wait for child pid and assert it exited 0. */
static void reap_ok(pid_t pid)
{
    int status;

    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "the child failed: status 0x%x (exit %d)", status,
                  WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

/* Read exactly n bytes from a blocking fd, within a generous bound. */
static void read_exactly(int fd, char *buf, size_t n)
{
    size_t got = 0;

    while (got < n) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        ssize_t k;

        ck_assert_int_eq(poll(&p, 1, (int)WT_PROMPT_MS * 5), 1);
        k = read(fd, buf + got, n - got);
        ck_assert_int_gt(k, 0);
        got += (size_t)k;
    }
}

/* ---- stdin as a pipe, in a child ---------------------------------------- */

struct stdin_run {
    int peer;      /* the pipe's writer; -1 for a pty */
    char got[8];   /* what the reader read */
    ssize_t got_n; /* its result */
    bool was_nb;   /* fd 0 was non-blocking while the reader waited */
    ssize_t wrote; /* weave_write(0) on a pty */
};

static void *stdin_reader(void *arg)
{
    struct stdin_run *r = arg;

    r->got_n = weave_read(STDIN_FILENO, r->got, 4);
    return NULL;
}

static void *m_stdin_pipe(void *arg)
{
    struct stdin_run *r = arg;
    weave_task *t = WT_SPAWN(stdin_reader, r);

    /* The reader parks: nothing was written yet. */
    if (weave_sleep(10) != 0)
        return wt_ptr(-1);
    r->was_nb = child_nonblocking(STDIN_FILENO);
    if (weave_write(r->peer, "ping", 4) != 4)
        return wt_ptr(-1);
    return weave_join(t, NULL) == 0 ? NULL : wt_ptr(-1);
}

START_TEST(stdin_pipe_blocking_after_run)
{
    int p[2];
    pid_t pid;

    wt_make_pipe(p, 0);
    ck_assert(!nonblocking(p[0]));
    (void)fflush(stderr);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct stdin_run r = {.peer = p[1]};
        void *res = wt_ptr(-1);

        child_expect(dup2(p[0], STDIN_FILENO) == STDIN_FILENO, 10, "dup2");
        child_expect(weave_run(m_stdin_pipe, &r, &res) == 0 && res == NULL, 11, "weave_run");
        child_expect(r.got_n == 4 && memcmp(r.got, "ping", 4) == 0, 12, "the read");
        child_expect(r.was_nb, 13, "stdin was not made non-blocking while in use");
        child_expect(!child_nonblocking(STDIN_FILENO), 14, "stdin left non-blocking");
        child_expect(!child_nonblocking(p[1]), 15, "the writer left non-blocking");
        _exit(0);
    }
    reap_ok(pid);
    /* The parent's fds share the child's descriptions. */
    ck_assert(!nonblocking(p[0]));
    ck_assert(!nonblocking(p[1]));
    close(p[0]);
    close(p[1]);
}
END_TEST

/* ---- stdin as a pty, in a child ------------------------------------------ */

static void *m_stdin_pty(void *arg)
{
    struct stdin_run *r = arg;
    weave_task *t = WT_SPAWN(stdin_reader, r);

    if (weave_sleep(10) != 0)
        return wt_ptr(-1);
    r->was_nb = child_nonblocking(STDIN_FILENO);
    /* The parent answers "pong" once it has read this on the master. */
    r->wrote = weave_write(STDIN_FILENO, "ping", 4);
    return weave_join(t, NULL) == 0 ? NULL : wt_ptr(-1);
}

START_TEST(stdin_pty_blocking_after_run)
{
    struct termios tio;
    char buf[4];
    int master, slave;
    pid_t pid;

    master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    ck_assert_int_ge(master, 0);
    ck_assert_int_eq(grantpt(master), 0);
    ck_assert_int_eq(unlockpt(master), 0);
    slave = open(ptsname(master), O_RDWR | O_NOCTTY | O_CLOEXEC);
    ck_assert_int_ge(slave, 0);
    /* Raw: bytes pass as they are, no echo, no line discipline. */
    ck_assert_int_eq(tcgetattr(slave, &tio), 0);
    cfmakeraw(&tio);
    ck_assert_int_eq(tcsetattr(slave, TCSANOW, &tio), 0);
    ck_assert(!nonblocking(slave));
    (void)fflush(stderr);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct stdin_run r = {.peer = -1};
        void *res = wt_ptr(-1);

        close(master);
        child_expect(dup2(slave, STDIN_FILENO) == STDIN_FILENO, 10, "dup2");
        child_expect(weave_run(m_stdin_pty, &r, &res) == 0 && res == NULL, 11, "weave_run");
        child_expect(r.wrote == 4, 16, "the write");
        child_expect(r.got_n == 4 && memcmp(r.got, "pong", 4) == 0, 12, "the read");
        child_expect(r.was_nb, 13, "stdin was not made non-blocking while in use");
        child_expect(!child_nonblocking(STDIN_FILENO), 14, "stdin left non-blocking");
        _exit(0);
    }
    read_exactly(master, buf, 4);
    ck_assert_int_eq(memcmp(buf, "ping", 4), 0);
    ck_assert_int_eq(write(master, "pong", 4), 4);
    reap_ok(pid);
    /* The parent's slave fd is the child's stdin's description. */
    ck_assert(!nonblocking(slave));
    close(slave);
    close(master);
}
END_TEST

/* ---- forgetting and closing ---------------------------------------------- */

/* A blocking pipe with a byte waiting in it. */
static void ready_pipe(int p[2])
{
    wt_make_pipe(p, 0);
    ck_assert_int_eq(write(p[1], "x", 1), 1);
}

WT_TEST(fd_forget_restores)
{
    char c;
    int p[2];

    ready_pipe(p);
    ck_assert_int_eq(weave_read(p[0], &c, 1), 1);
    ck_assert(nonblocking(p[0]));
    ck_assert_int_eq(weave_fd_forget(p[0]), 0);
    ck_assert(!nonblocking(p[0]));
    /* Forgetting twice changes nothing; using it again makes it
     * non-blocking again, and forgetting it then gives that back too. */
    ck_assert_int_eq(weave_fd_forget(p[0]), 0);
    ck_assert(!nonblocking(p[0]));
    ck_assert_int_eq(write(p[1], "y", 1), 1);
    ck_assert_int_eq(weave_read(p[0], &c, 1), 1);
    ck_assert(nonblocking(p[0]));
    ck_assert_int_eq(weave_fd_forget(p[0]), 0);
    ck_assert(!nonblocking(p[0]));
    close(p[0]);
    close(p[1]);
}

/* A task parked in weave_read is woken with EBADF by the forget, and the
 * fd is blocking again afterwards. */
static void *parked_read(void *arg)
{
    char c;

    return wt_ptr(weave_read((int)wt_int(arg), &c, 1) < 0 ? errno : 0);
}

WT_TEST(fd_forget_under_a_waiter_restores)
{
    weave_task *t;
    int p[2];

    wt_make_pipe(p, 0);
    t = WT_SPAWN(parked_read, wt_ptr(p[0]));
    ck_assert_int_eq(weave_sleep(5), 0);
    ck_assert(nonblocking(p[0]));
    ck_assert_int_eq(weave_fd_forget(p[0]), 0);
    ck_assert(!nonblocking(p[0]));
    ck_assert_int_eq(wt_int(WT_JOIN(t)), EBADF);
    ck_assert(!nonblocking(p[0]));
    close(p[0]);
    close(p[1]);
}

WT_TEST(close_of_a_dup_leaves_the_other_blocking)
{
    char c;
    int p[2], d;

    ready_pipe(p);
    d = dup(p[0]);
    ck_assert_int_ge(d, 0);
    ck_assert_int_eq(weave_read(d, &c, 1), 1);
    ck_assert(nonblocking(p[0])); /* one description */
    ck_assert_int_eq(weave_close(d), 0);
    ck_assert(!nonblocking(p[0]));
    close(p[0]);
    close(p[1]);
}

/* Two fds on one description, both used by weave: closing one must not
 * leave the other blocking the thread; closing the second gives the mode
 * back. */
WT_TEST(two_fds_on_one_description)
{
    weave_task *t;
    char c;
    int p[2], d, watch;

    ready_pipe(p);
    d = dup(p[0]);
    watch = dup(p[0]); /* never used by weave */
    ck_assert_int_ge(d, 0);
    ck_assert_int_ge(watch, 0);
    ck_assert_int_eq(weave_read(p[0], &c, 1), 1);
    ck_assert_int_eq(write(p[1], "y", 1), 1);
    ck_assert_int_eq(weave_read(d, &c, 1), 1);
    ck_assert_int_eq(weave_close(p[0]), 0);
    ck_assert(nonblocking(watch));
    /* d still parks its reader instead of blocking the thread. */
    t = WT_SPAWN(parked_read, wt_ptr(d));
    ck_assert_int_eq(weave_sleep(5), 0);
    ck_assert_int_eq(weave_write(p[1], "z", 1), 1);
    ck_assert_int_eq(wt_int(WT_JOIN(t)), 0);
    ck_assert_int_eq(weave_close(d), 0);
    ck_assert(!nonblocking(watch));
    close(watch);
    ck_assert_int_eq(weave_close(p[1]), 0);
}

/* ---- what stays non-blocking --------------------------------------------- */

struct kept {
    int p[2];
    int watch; /* a dup of p[0] */
};

static void *m_already_nonblocking(void *arg)
{
    struct kept *k = arg;
    char c;

    wt_make_pipe(k->p, O_NONBLOCK);
    k->watch = dup(k->p[0]);
    ck_assert_int_ge(k->watch, 0);
    ck_assert_int_eq(write(k->p[1], "x", 1), 1);
    ck_assert_int_eq(weave_read(k->p[0], &c, 1), 1);
    ck_assert_int_eq(weave_fd_forget(k->p[0]), 0);
    ck_assert(nonblocking(k->watch));
    ck_assert_int_eq(weave_write(k->p[1], "y", 1), 1);
    ck_assert_int_eq(weave_read(k->p[0], &c, 1), 1);
    ck_assert_int_eq(weave_close(k->p[0]), 0);
    ck_assert(nonblocking(k->watch));
    return NULL; /* p[1] is left to weave_run's end */
}

START_TEST(already_nonblocking_stays_so)
{
    struct kept k;

    WT_RUN(m_already_nonblocking, &k);
    ck_assert(nonblocking(k.watch));
    ck_assert(nonblocking(k.p[1]));
    close(k.watch);
    close(k.p[1]);
}
END_TEST

struct tcp_fds {
    int l, c, s; /* listener, client, server side: weave's own */
    int user;    /* a socket of the test's, connected with weave_connect */
    int dups[4]; /* raw dups of the four */
};

static void *m_weaves_own_fds(void *arg)
{
    struct tcp_fds *f = arg;
    struct sockaddr_storage la;
    int fds[4];

    f->l = weave_tcp_listen("127.0.0.1", "0", 8);
    ck_assert_int_ge(f->l, 0);
    f->c = weave_tcp_connect("127.0.0.1", wt_port_str(f->l).s, 5000);
    ck_assert_int_ge(f->c, 0);
    f->s = weave_accept(f->l, NULL, NULL);
    ck_assert_int_ge(f->s, 0);
    la = wt_local_addr(f->l);
    f->user = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(f->user, 0);
    ck_assert_int_eq(weave_connect(f->user, (struct sockaddr *)&la, sizeof(struct sockaddr_in)), 0);
    fds[0] = f->l;
    fds[1] = f->c;
    fds[2] = f->s;
    fds[3] = f->user;
    for (int i = 0; i < 4; i++) {
        ck_assert(nonblocking(fds[i]));
        f->dups[i] = dup(fds[i]);
        ck_assert_int_ge(f->dups[i], 0);
    }
    /* Closed through weave: its own fds stay non-blocking, the user's
     * socket is blocking again. */
    ck_assert_int_eq(weave_close(f->c), 0);
    ck_assert_int_eq(weave_close(f->user), 0);
    ck_assert(nonblocking(f->dups[1]));
    ck_assert(!nonblocking(f->dups[3]));
    ck_assert_int_eq(weave_close(f->dups[3]), 0);
    return NULL; /* l and s are left to weave_run's end */
}

START_TEST(weaves_own_fds_stay_nonblocking)
{
    struct tcp_fds f;

    WT_RUN(m_weaves_own_fds, &f);
    ck_assert(nonblocking(f.l));
    ck_assert(nonblocking(f.s));
    ck_assert(nonblocking(f.dups[0]));
    ck_assert(nonblocking(f.dups[2]));
    close(f.l);
    close(f.s);
    for (int i = 0; i < 3; i++)
        close(f.dups[i]);
}
END_TEST

/* ---- weave_run's end ------------------------------------------------------ */

static void *m_left_in_use(void *arg)
{
    int *p = arg;
    char c;

    ready_pipe(p);
    ck_assert_int_eq(weave_read(p[0], &c, 1), 1);
    ck_assert_int_eq(weave_write(p[1], "y", 1), 1);
    ck_assert(nonblocking(p[0]));
    ck_assert(nonblocking(p[1]));
    return NULL;
}

START_TEST(run_end_restores_fds_in_use)
{
    int p[2];

    WT_RUN(m_left_in_use, p);
    ck_assert(!nonblocking(p[0]));
    ck_assert(!nonblocking(p[1]));
    close(p[0]);
    close(p[1]);
}
END_TEST

/* An fd closed behind weave's back, its number then taken by another pipe
 * that the user made non-blocking: neither forgetting the stale number nor
 * weave_run's end may clear the new pipe's flag. */
struct reused {
    int num;  /* the number, reused */
    int q[2]; /* the new pipe: q[0] a second fd on what num names now */
};

/* Make weave switch a pipe's reader to O_NONBLOCK, then put a new
 * non-blocking pipe's reader under its number with dup2, which closes the
 * old one without weave knowing. */
static void reuse_number(struct reused *r)
{
    char c;
    int p[2];

    ready_pipe(p);
    ck_assert_int_eq(weave_read(p[0], &c, 1), 1);
    r->num = p[0];
    wt_make_pipe(r->q, O_NONBLOCK);
    ck_assert_int_eq(dup2(r->q[0], r->num), r->num);
    close(p[1]);
    ck_assert(nonblocking(r->num));
}

static void *m_reused_number(void *arg)
{
    struct reused *r = arg;
    char c;

    reuse_number(r);
    ck_assert_int_eq(weave_fd_forget(r->num), 0);
    ck_assert(nonblocking(r->q[0]));
    /* Used again and forgotten again: it was non-blocking before. */
    ck_assert_int_eq(write(r->q[1], "x", 1), 1);
    ck_assert_int_eq(weave_read(r->num, &c, 1), 1);
    ck_assert_int_eq(weave_fd_forget(r->num), 0);
    ck_assert(nonblocking(r->q[0]));
    return NULL;
}

static void *m_reused_number_at_end(void *arg)
{
    reuse_number(arg);
    return NULL;
}

START_TEST(reused_number_is_left_alone)
{
    struct reused r;

    WT_RUN(m_reused_number, &r);
    ck_assert(nonblocking(r.q[0]));
    close(r.num);
    close(r.q[0]);
    close(r.q[1]);
    WT_RUN(m_reused_number_at_end, &r);
    ck_assert(nonblocking(r.q[0]));
    close(r.num);
    close(r.q[0]);
    close(r.q[1]);
}
END_TEST

static Suite *hygiene_suite(void)
{
    Suite *s = suite_create("hygiene");
    TCase *tc = tcase_create("hygiene");

    tcase_set_timeout(tc, 15);
    tcase_add_test(tc, stdin_pipe_blocking_after_run);
    tcase_add_test(tc, stdin_pty_blocking_after_run);
    tcase_add_test(tc, fd_forget_restores);
    tcase_add_test(tc, fd_forget_under_a_waiter_restores);
    tcase_add_test(tc, close_of_a_dup_leaves_the_other_blocking);
    tcase_add_test(tc, two_fds_on_one_description);
    tcase_add_test(tc, already_nonblocking_stays_so);
    tcase_add_test(tc, weaves_own_fds_stay_nonblocking);
    tcase_add_test(tc, run_end_restores_fds_in_use);
    tcase_add_test(tc, reused_number_is_left_alone);
    wt_tag_native(tc); /* forks, and weave_tcp_connect's offload pool */
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return wt_main(hygiene_suite());
}
