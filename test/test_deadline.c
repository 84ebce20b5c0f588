/*
 * test_deadline.c - deadline scopes, shields and wake reasons, for every
 * blocking call.
 *
 * Each blocking call has a "blocker": a way to make it wait with nothing
 * coming (an fd with nothing to read, a full socket, a listener nobody
 * connects to, a task that never ends, a worker held at a gate). Every
 * scenario runs on every blocker (a loop test per blocker, each in its own
 * process):
 *
 *   expires        a scope's deadline passes while the call waits
 *   expired        the scope had expired before the call (timeout 0, and a
 *                  deadline that passed while the task ran)
 *   inner/outer    nested scopes, the inner or the outer one nearer
 *   restored       ending a scope puts back the one around it, and after
 *                  the last one the call waits again
 *   shield         a cancelled task blocks normally inside a shield, bounded
 *                  by a scope begun inside it; an outer deadline does not
 *                  reach in; once the shield ends, ECANCELED again
 *
 * Times are asserted as lower bounds; upper bounds only catch hangs.
 *
 * Check timeouts: "blockers" 30 s x 14, "rules" 10 s x 12; the CTest timeout
 * in CMakeLists.txt (600 s) is above their sum.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "weave_test.h"

#define MS ((int64_t)1000000)

/* ---- blockers ----------------------------------------------------------- */

#define MAX_GATES 64

/* Gates for offloaded calls, opened once each at the end of the test (after
 * every scenario), so that weave_run's end can join the workers still held. */
static struct wt_gate gates[MAX_GATES];
static int ngates;

struct env {
    int fd[2];      /* a pipe or socketpair */
    int l;          /* a listener */
    int extra[2];   /* connections that fill a backlog */
    weave_task *t;  /* a task that never ends by itself */
    char path[256]; /* a Unix socket's path */
    struct wt_gate *gate;
};

struct blocker {
    const char *name;
    void (*setup)(struct env *e);
    int (*call)(struct env *e); /* -1 with errno, or what the call returned */
    void (*teardown)(struct env *e);
};

static void *sleep_forever(void *arg)
{
    (void)arg;
    weave_sleep(-1);
    return NULL;
}

static void none(struct env *e)
{
    (void)e;
}

static void pipe_setup(struct env *e)
{
    wt_make_pipe(e->fd, O_NONBLOCK);
}

static void pair_setup(struct env *e)
{
    wt_make_socketpair(e->fd, SOCK_STREAM);
}

static void full_pair_setup(struct env *e)
{
    wt_make_socketpair(e->fd, SOCK_STREAM);
    wt_fill(e->fd[0]);
}

static void fds_teardown(struct env *e)
{
    ck_assert_int_eq(weave_close(e->fd[0]), 0);
    ck_assert_int_eq(weave_close(e->fd[1]), 0);
}

static void task_setup(struct env *e)
{
    e->t = WT_SPAWN(sleep_forever, NULL);
}

static void task_teardown(struct env *e)
{
    ck_assert_int_eq(weave_cancel(e->t), 0);
    WT_JOIN(e->t);
}

static void listen_setup(struct env *e)
{
    e->l = weave_tcp_listen("127.0.0.1", "0", 4);
    ck_assert_int_ge(e->l, 0);
}

/* A TCP listener whose accept queue is full: with a backlog of 0 and one
 * connection queued, the kernel drops further SYNs, so a connect stays in
 * progress. */
static void full_listen_setup(struct env *e)
{
    int one = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_storage a;

    e->l = weave_tcp_listen("127.0.0.1", "0", 0);
    ck_assert_int_ge(e->l, 0);
    a = wt_local_addr(e->l);
    ck_assert_int_ge(one, 0);
    (void)connect(one, (struct sockaddr *)&a, sizeof(struct sockaddr_in));
    ck_assert_int_gt(weave_wait_fd(one, WEAVE_OUT, 5000), 0); /* it is queued */
    e->extra[0] = one;
}

static void listen_teardown(struct env *e)
{
    ck_assert_int_eq(weave_close(e->l), 0);
}

static void full_listen_teardown(struct env *e)
{
    ck_assert_int_eq(weave_close(e->extra[0]), 0);
    ck_assert_int_eq(weave_close(e->l), 0);
}

/* A Unix listener whose backlog is full: connects get EAGAIN, and weave's
 * connect retries with a growing pause. */
static void full_unix_setup(struct env *e)
{
    struct sockaddr_un a;
    int n = 0;

    wt_tmp_make();
    wt_tmp_path(e->path, sizeof(e->path), "full.sock");
    e->l = weave_unix_listen(e->path, 0);
    ck_assert_int_ge(e->l, 0);
    memset(&a, 0, sizeof(a));
    a.sun_family = AF_UNIX;
    strcpy(a.sun_path, e->path);
    for (;;) {
        int c = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(c, 0);
        if (connect(c, (struct sockaddr *)&a, sizeof(a)) != 0) {
            ck_assert_int_eq(errno, EAGAIN);
            close(c);
            break;
        }
        ck_assert_int_lt(n, 2);
        e->extra[n++] = c;
    }
    for (int i = n; i < 2; i++)
        e->extra[i] = -1;
}

static void full_unix_teardown(struct env *e)
{
    for (int i = 0; i < 2; i++)
        if (e->extra[i] >= 0)
            close(e->extra[i]);
    ck_assert_int_eq(weave_close(e->l), 0);
    unlink(e->path);
    wt_tmp_cleanup();
}

static void gate_setup(struct env *e)
{
    ck_assert_int_lt(ngates, MAX_GATES);
    e->gate = &gates[ngates++];
    wt_gate_init(e->gate);
}

static int call_sleep(struct env *e)
{
    (void)e;
    return weave_sleep(100000);
}

static int call_join(struct env *e)
{
    return weave_join(e->t, NULL);
}

static int call_wait_fd(struct env *e)
{
    return weave_wait_fd(e->fd[0], WEAVE_IN, -1);
}

static char sink[4096];

static int call_read(struct env *e)
{
    return (int)weave_read(e->fd[0], sink, sizeof(sink));
}

static int call_readv(struct env *e)
{
    struct iovec v = {sink, sizeof(sink)};

    return (int)weave_readv(e->fd[0], &v, 1);
}

static int call_recv(struct env *e)
{
    return (int)weave_recv(e->fd[0], sink, sizeof(sink), 0);
}

static int call_recvfrom(struct env *e)
{
    return (int)weave_recvfrom(e->fd[0], sink, sizeof(sink), 0, NULL, NULL);
}

static int call_write(struct env *e)
{
    return (int)weave_write(e->fd[0], sink, sizeof(sink));
}

static int call_writev(struct env *e)
{
    struct iovec v = {sink, sizeof(sink)};

    return (int)weave_writev(e->fd[0], &v, 1);
}

static int call_send(struct env *e)
{
    return (int)weave_send(e->fd[0], sink, sizeof(sink), 0);
}

static int call_sendto(struct env *e)
{
    return (int)weave_sendto(e->fd[0], sink, sizeof(sink), 0, NULL, 0);
}

static int call_accept(struct env *e)
{
    return weave_accept(e->l, NULL, NULL);
}

static int call_connect(struct env *e)
{
    struct sockaddr_storage a = wt_local_addr(e->l);
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), r, err;

    ck_assert_int_ge(c, 0);
    r = weave_connect(c, (struct sockaddr *)&a, sizeof(struct sockaddr_in));
    err = errno;
    weave_close(c);
    errno = err;
    return r;
}

static int call_tcp_connect(struct env *e)
{
    int c = weave_tcp_connect("127.0.0.1", wt_port_str(e->l).s, -1);

    if (c >= 0)
        weave_close(c);
    return c;
}

static int call_unix_connect(struct env *e)
{
    int c = weave_unix_connect(e->path);

    if (c >= 0)
        weave_close(c);
    return c;
}

static int call_offload(struct env *e)
{
    return weave_offload(wt_gate_fn, e->gate, NULL);
}

static const struct blocker blockers[] = {
    {"sleep", none, call_sleep, none},
    {"join", task_setup, call_join, task_teardown},
    {"wait_fd", pipe_setup, call_wait_fd, fds_teardown},
    {"read", pair_setup, call_read, fds_teardown},
    {"readv", pipe_setup, call_readv, fds_teardown},
    {"recv", pair_setup, call_recv, fds_teardown},
    {"recvfrom", pair_setup, call_recvfrom, fds_teardown},
    {"write", full_pair_setup, call_write, fds_teardown},
    {"writev", full_pair_setup, call_writev, fds_teardown},
    {"send", full_pair_setup, call_send, fds_teardown},
    {"sendto", full_pair_setup, call_sendto, fds_teardown},
    {"accept", listen_setup, call_accept, listen_teardown},
    {"connect", full_listen_setup, call_connect, full_listen_teardown},
    {"tcp_connect", full_listen_setup, call_tcp_connect, full_listen_teardown},
    {"unix_connect", full_unix_setup, call_unix_connect, full_unix_teardown},
    {"offload", gate_setup, call_offload, none},
};
#define NBLOCKERS ((int)(sizeof(blockers) / sizeof(blockers[0])))

/* ---- scenarios ---------------------------------------------------------- */

/* Run b's call, expecting -1/err no sooner than min_ms after since (the
 * clock when the scope that should end it began; 0: the call itself). */
static void expect(const struct blocker *b, struct env *e, int err, int64_t since, int64_t min_ms,
                   const char *when)
{
    int64_t t0 = since ? since : wt_now_ns(), took;
    int r;

    errno = 0;
    r = b->call(e);
    took = wt_now_ns() - t0;
    ck_assert_msg(r == -1 && errno == err, "%s, %s: returned %d, errno %d (%s), expected %s",
                  b->name, when, r, errno, strerror(errno), strerror(err));
    ck_assert_msg(took >= min_ms * MS, "%s, %s: returned after %lld ns, before %lld ms", b->name,
                  when, (long long)took, (long long)min_ms);
    ck_assert_msg(took < (min_ms + WT_PROMPT_MS) * MS, "%s, %s: took %lld ms", b->name, when,
                  (long long)(took / MS));
}

static void sc_expires(const struct blocker *b)
{
    struct env e;
    weave_deadline d;
    int64_t t0;

    b->setup(&e);
    t0 = wt_now_ns();
    weave_deadline_begin(&d, 30);
    expect(b, &e, ETIMEDOUT, t0, 30, "scope expiring while it waits");
    ck_assert_int_eq(weave_deadline_end(&d), 1);
    b->teardown(&e);
}

static void sc_expired(const struct blocker *b)
{
    struct env e;
    weave_deadline d;
    int64_t t0;

    b->setup(&e);
    weave_deadline_begin(&d, 0);
    expect(b, &e, ETIMEDOUT, 0, 0, "scope of 0 ms");
    ck_assert_int_eq(weave_deadline_end(&d), 1);

    /* A deadline that passes while the task runs (without a blocking
     * call) fails the next blocking call at once. */
    weave_deadline_begin(&d, 10);
    t0 = wt_now_ns();
    while (wt_now_ns() - t0 < 15 * MS)
        ;
    expect(b, &e, ETIMEDOUT, 0, 0, "deadline passed while running");
    ck_assert_int_eq(weave_deadline_end(&d), 1);
    b->teardown(&e);
}

static void sc_nested(const struct blocker *b)
{
    struct env e;
    weave_deadline outer, inner;
    int64_t t0;

    b->setup(&e);
    weave_deadline_begin(&outer, 100000);
    t0 = wt_now_ns();
    weave_deadline_begin(&inner, 30);
    expect(b, &e, ETIMEDOUT, t0, 30, "inner scope nearer");
    ck_assert_int_eq(weave_deadline_end(&inner), 1);
    ck_assert_int_eq(weave_deadline_end(&outer), 0);

    t0 = wt_now_ns();
    weave_deadline_begin(&outer, 30);
    weave_deadline_begin(&inner, 100000);
    expect(b, &e, ETIMEDOUT, t0, 30, "outer scope nearer");
    ck_assert_int_eq(weave_deadline_end(&inner), 0);
    ck_assert_int_eq(weave_deadline_end(&outer), 1);
    b->teardown(&e);
}

/* Cancels the task arg after 20 ms. */
static void *cancel_later(void *arg)
{
    ck_assert_int_eq(weave_sleep(20), 0);
    ck_assert_int_eq(weave_cancel(arg), 0);
    return NULL;
}

/* Teardown for a cancelled task: inside a shield, so that it can still
 * wait for what it cleans up. */
static void shielded_teardown(const struct blocker *b, struct env *e)
{
    weave_shield sh;

    weave_shield_begin(&sh);
    b->teardown(e);
    weave_shield_end(&sh);
}

static void sc_restored(const struct blocker *b)
{
    struct env e;
    weave_deadline outer, inner;
    weave_task *canceller;
    int64_t t0;

    b->setup(&e);
    t0 = wt_now_ns();
    weave_deadline_begin(&outer, 60);
    weave_deadline_begin(&inner, 20);
    ck_assert_int_eq(weave_deadline_end(&inner), 0);
    expect(b, &e, ETIMEDOUT, t0, 60, "outer scope restored");
    ck_assert_int_eq(weave_deadline_end(&outer), 1);
    b->teardown(&e);

    /* No scope left: the call waits until something else ends it. */
    b->setup(&e);
    t0 = wt_now_ns();
    canceller = WT_SPAWN(cancel_later, weave_self());
    expect(b, &e, ECANCELED, t0, 20, "no scope left");
    WT_JOIN(canceller); /* ended: joining it does not wait */
    shielded_teardown(b, &e);
}

static void sc_shield(const struct blocker *b)
{
    struct env e;
    weave_deadline outer, inner;
    weave_shield sh;
    int64_t t0;

    b->setup(&e);
    /* Cancelled before the shield began: inside, the call blocks normally,
     * bounded by a scope begun inside the shield. */
    ck_assert_int_eq(weave_cancel(weave_self()), 0);
    weave_shield_begin(&sh);
    t0 = wt_now_ns();
    weave_deadline_begin(&inner, 30);
    expect(b, &e, ETIMEDOUT, t0, 30, "cancelled task inside a shield");
    ck_assert_int_eq(weave_deadline_end(&inner), 1);
    weave_shield_end(&sh);
    expect(b, &e, ECANCELED, 0, 0, "after the shield");

    /* An outer deadline does not reach into a shield. */
    weave_deadline_begin(&outer, 10);
    weave_shield_begin(&sh);
    t0 = wt_now_ns();
    weave_deadline_begin(&inner, 40);
    expect(b, &e, ETIMEDOUT, t0, 40, "outer deadline, shield, inner deadline");
    ck_assert_int_eq(weave_deadline_end(&inner), 1);
    weave_shield_end(&sh);
    ck_assert_int_eq(weave_deadline_end(&outer), 1);
    shielded_teardown(b, &e);
}

/* Begin an expired scope (a shield) in a frame of their own and return
 * without ending it: the early-return mistake. */
static __attribute__((noinline)) void forget_expired_scope(void)
{
    weave_deadline d;

    weave_deadline_begin(&d, 0);
}

static __attribute__((noinline)) void forget_shield(void)
{
    weave_shield sh;

    weave_shield_begin(&sh);
}

/* The same, 8 KiB deeper than the caller's frame: below the frames of any
 * call the caller makes next, so that the blocker's own weave call is the
 * first to find it (a call from a frame that covers the forgotten struct
 * cannot tell it from a live one; weave.h says so). */
static __attribute__((noinline)) void forget_deep(void (*forget)(void))
{
    volatile char pad[8192];

    pad[0] = 0;
    forget();
    pad[1] = pad[0];
}

static void sc_popped(const struct blocker *b)
{
    struct env e;
    weave_deadline d;
    int64_t t0;

    b->setup(&e);
    /* The forgotten expired scope no longer applies: the call waits for the
     * scope of its own (it would fail at once if the forgotten one held). */
    forget_deep(forget_expired_scope);
    t0 = wt_now_ns();
    weave_deadline_begin(&d, 30);
    expect(b, &e, ETIMEDOUT, t0, 30, "after a forgotten expired scope");
    ck_assert_int_eq(weave_deadline_end(&d), 1);

    /* Nor does a forgotten shield keep a cancel out (the call would block
     * until the test's timeout if it did): found by the blocker's call. */
    forget_deep(forget_shield);
    ck_assert_int_eq(weave_cancel(weave_self()), 0);
    expect(b, &e, ECANCELED, 0, 0, "after a forgotten shield");
    shielded_teardown(b, &e);
}

static void (*const scenarios[])(const struct blocker *) = {
    sc_expires, sc_expired, sc_nested, sc_restored, sc_shield, sc_popped,
};

/* Each scenario runs in a task of its own (a shield scenario leaves its
 * task cancelled). */
struct run_one {
    const struct blocker *b;
    void (*sc)(const struct blocker *);
};

static void *scenario_task(void *arg)
{
    struct run_one *r = arg;

    r->sc(r->b);
    return NULL;
}

static void *m_blocker(void *arg)
{
    const struct blocker *b = arg;

    for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++) {
        struct run_one r = {b, scenarios[i]};
        WT_JOIN(WT_SPAWN(scenario_task, &r));
    }
    /* Let the workers still held go (a gate may hold several calls). */
    for (int i = 0; i < ngates; i++)
        wt_gate_open(&gates[i], 8);
    WT_ASSERT_IDLE();
    return NULL;
}

START_TEST(every_scenario)
{
    ngates = 0;
    WT_RUN(m_blocker, (void *)(uintptr_t)&blockers[_i]);
    for (int i = 0; i < ngates; i++)
        wt_gate_destroy(&gates[i]);
}
END_TEST

/* ---- the rules of scopes themselves ------------------------------------- */

WT_TEST(own_timeout_and_scope)
{
    weave_deadline d;
    int p[2];
    int64_t t0;

    wt_make_pipe(p, O_NONBLOCK);
    /* A sleep that ends before the deadline succeeds; one that would end
     * after it fails at the deadline. */
    weave_deadline_begin(&d, 1000);
    t0 = wt_now_ns();
    ck_assert_int_eq(weave_sleep(20), 0);
    ck_assert_int_ge(wt_now_ns() - t0, 20 * MS);
    ck_assert_int_eq(weave_deadline_end(&d), 0);
    t0 = wt_now_ns();
    weave_deadline_begin(&d, 20);
    WT_FAILS(weave_sleep(1000), ETIMEDOUT);
    ck_assert_int_ge(wt_now_ns() - t0, 20 * MS);
    ck_assert_int_lt(wt_now_ns() - t0, WT_PROMPT_MS * MS);
    ck_assert_int_eq(weave_deadline_end(&d), 1);
    /* A call's own timeout nearer than the scope: the call's, and the
     * scope has not passed. */
    weave_deadline_begin(&d, 1000);
    WT_FAILS(weave_wait_fd(p[0], WEAVE_IN, 20), ETIMEDOUT);
    ck_assert_int_eq(weave_deadline_end(&d), 0);
    /* yield obeys scopes too. */
    weave_deadline_begin(&d, 0);
    WT_FAILS(weave_yield(), ETIMEDOUT);
    WT_FAILS(weave_sleep(0), ETIMEDOUT);
    ck_assert_int_eq(weave_deadline_end(&d), 1);
    ck_assert_int_eq(weave_yield(), 0);
    ck_assert_int_eq(weave_close(p[0]), 0);
    ck_assert_int_eq(weave_close(p[1]), 0);
    WT_ASSERT_IDLE();
}

/* weave_tcp_connect's own timeout and a scope around it: the earlier wins. */
WT_TEST(tcp_connect_timeout_and_scope)
{
    struct env e;
    weave_deadline d;
    int64_t t0;

    full_listen_setup(&e);
    weave_deadline_begin(&d, 1000);
    t0 = wt_now_ns();
    WT_FAILS(weave_tcp_connect("127.0.0.1", wt_port_str(e.l).s, 30), ETIMEDOUT);
    ck_assert_int_ge(wt_now_ns() - t0, 30 * MS);
    ck_assert_int_eq(weave_deadline_end(&d), 0);
    t0 = wt_now_ns();
    weave_deadline_begin(&d, 30);
    WT_FAILS(weave_tcp_connect("127.0.0.1", wt_port_str(e.l).s, 1000), ETIMEDOUT);
    ck_assert_int_ge(wt_now_ns() - t0, 30 * MS);
    ck_assert_int_lt(wt_now_ns() - t0, WT_PROMPT_MS * MS);
    ck_assert_int_eq(weave_deadline_end(&d), 1);
    full_listen_teardown(&e);
    WT_ASSERT_IDLE();
}

static void *m_misuse(void *arg)
{
    weave_deadline a, b, bad;
    weave_shield sh;

    (void)arg;
    WT_FAILS(weave_deadline_end(NULL), EINVAL);
    weave_deadline_begin(NULL, 10); /* nothing happens */
    weave_shield_begin(NULL);
    weave_shield_end(NULL);

    /* Ending a scope that is not the innermost: EINVAL, nothing ends. */
    weave_deadline_begin(&a, 1000);
    weave_deadline_begin(&b, 0);
    WT_FAILS(weave_deadline_end(&a), EINVAL);
    WT_FAILS(weave_sleep(10), ETIMEDOUT); /* b still applies */
    ck_assert_int_eq(weave_deadline_end(&b), 1);
    ck_assert_int_eq(weave_deadline_end(&a), 0);
    WT_FAILS(weave_deadline_end(&a), EINVAL); /* ended twice */
    ck_assert_int_eq(weave_sleep(1), 0);

    /* A bad timeout never means "no deadline". */
    weave_deadline_begin(&bad, -5);
    WT_FAILS(weave_sleep(1000), ETIMEDOUT);
    WT_FAILS(weave_deadline_end(&bad), EINVAL);
    ck_assert_int_eq(weave_sleep(1), 0);

    /* Ending a shield ends what was begun inside it and left open. */
    weave_shield_begin(&sh);
    weave_deadline_begin(&a, 0);
    weave_shield_end(&sh);
    WT_FAILS(weave_deadline_end(&a), EINVAL);
    ck_assert_int_eq(weave_sleep(1), 0);
    WT_ASSERT_IDLE();
    return NULL;
}

START_TEST(misuse)
{
    weave_deadline d;
    weave_shield sh;

    /* Outside a task: begin does nothing, end says EPERM. */
    weave_deadline_begin(&d, 10);
    WT_FAILS(weave_deadline_end(&d), EPERM);
    weave_shield_begin(&sh);
    weave_shield_end(&sh);
    WT_RUN(m_misuse, NULL);
}
END_TEST

/* Another task's scope is not the caller's. */
static weave_deadline shared_scope;

static void *end_other(void *arg)
{
    (void)arg;
    WT_FAILS(weave_deadline_end(&shared_scope), EINVAL);
    ck_assert_int_eq(weave_sleep(1), 0); /* no deadline here */
    return NULL;
}

WT_TEST(scopes_belong_to_their_task)
{
    weave_task *t = WT_SPAWN(end_other, NULL);
    weave_shield sh;

    weave_deadline_begin(&shared_scope, 0);
    WT_FAILS(weave_yield(), ETIMEDOUT); /* it yields first: end_other runs */
    weave_shield_begin(&sh);            /* the expired scope does not apply here */
    WT_JOIN(t);
    weave_shield_end(&sh);
    WT_FAILS(weave_sleep(1), ETIMEDOUT);
    ck_assert_int_eq(weave_deadline_end(&shared_scope), 1);
    WT_ASSERT_IDLE();
}

/* Inside a shield a cancelled task's calls complete normally. */
static void *shielded_reader(void *arg)
{
    int fd = (int)wt_int(arg);
    weave_shield sh;
    char c;

    weave_shield_begin(&sh);
    ck_assert_int_eq(weave_sleep(20), 0);
    ck_assert_int_eq((int)weave_read(fd, &c, 1), 1);
    ck_assert_int_eq(c, 'x');
    weave_shield_end(&sh);
    WT_FAILS(weave_sleep(1), ECANCELED);
    return NULL;
}

WT_TEST(shield_lets_calls_complete)
{
    int p[2];
    weave_task *t;

    wt_make_pipe(p, O_NONBLOCK);
    t = WT_SPAWN(shielded_reader, wt_ptr(p[0]));
    ck_assert_int_eq(weave_sleep(5), 0);
    ck_assert_int_eq(weave_cancel(t), 0); /* does not interrupt the sleep */
    ck_assert_int_eq(weave_sleep(40), 0);
    ck_assert_int_eq(weave_cancel(t), 0); /* nor the read */
    ck_assert_int_eq((int)write(p[1], "x", 1), 1);
    WT_JOIN(t);
    ck_assert_int_eq(weave_close(p[0]), 0);
    ck_assert_int_eq(weave_close(p[1]), 0);
    WT_ASSERT_IDLE();
}

/* ---- wake reasons ------------------------------------------------------- */

struct raced {
    int fd;
    int r, err;
    int64_t slept_ns; /* how long the sleep after the wait lasted */
};

/* Waits on fd for 20 ms, then sleeps 30 ms: a second, stale wake-up of
 * the wait would end the sleep early. */
static void *raced_waiter(void *arg)
{
    struct raced *w = arg;
    int64_t t0;

    errno = 0;
    w->r = weave_wait_fd(w->fd, WEAVE_IN, 20);
    w->err = errno;
    t0 = wt_now_ns();
    weave_sleep(30);
    w->slept_ns = wt_now_ns() - t0;
    return NULL;
}

static void spin_until(int64_t t_ns)
{
    while (wt_now_ns() < t_ns)
        ;
}

/* A timeout and an event in the same loop turn: one wake, one reason. */
WT_TEST(timeout_and_event_one_wake)
{
    int p[2];
    struct raced w;
    weave_task *t;
    int64_t t0;

    wt_make_pipe(p, O_NONBLOCK);
    w.fd = p[0];
    t = WT_SPAWN(raced_waiter, &w);
    t0 = wt_now_ns();
    ck_assert_int_eq(weave_yield(), 0); /* it waits now */
    /* Without letting the scheduler poll: the timeout passes, and then
     * the fd becomes ready. Both reach the scheduler at its next poll. */
    spin_until(t0 + 25 * MS);
    ck_assert_int_eq((int)write(p[1], "x", 1), 1);
    WT_JOIN(t);
    ck_assert_int_eq(w.r, -1);
    ck_assert_int_eq(w.err, ETIMEDOUT);
    ck_assert_int_ge(w.slept_ns, 30 * MS);
    ck_assert_int_eq(weave_close(p[0]), 0);
    ck_assert_int_eq(weave_close(p[1]), 0);
    WT_ASSERT_IDLE();
}

/* A cancel and an event in the same turn: the cancel came first. */
WT_TEST(cancel_and_event_one_wake)
{
    int p[2];
    struct raced w;
    weave_task *t;

    wt_make_pipe(p, O_NONBLOCK);
    w.fd = p[0];
    t = WT_SPAWN(raced_waiter, &w);
    ck_assert_int_eq(weave_yield(), 0);
    ck_assert_int_eq((int)write(p[1], "x", 1), 1);
    ck_assert_int_eq(weave_cancel(t), 0);
    WT_JOIN(t);
    ck_assert_int_eq(w.r, -1);
    ck_assert_int_eq(w.err, ECANCELED);
    ck_assert_int_eq(weave_close(p[0]), 0);
    ck_assert_int_eq(weave_close(p[1]), 0);
    WT_ASSERT_IDLE();
}

/* An event and then a cancel in the same turn: the event came first, so
 * the call succeeds; the cancellation applies from the next call on. */
struct joiner {
    weave_task *target;
    int r;
    void *result;
    int after_err;
};

static void *joiner_task(void *arg)
{
    struct joiner *j = arg;

    j->r = weave_join(j->target, &j->result);
    errno = 0;
    weave_sleep(1);
    j->after_err = errno;
    return NULL;
}

static void *yield_then_return(void *arg)
{
    ck_assert_int_eq(weave_yield(), 0);
    return arg;
}

WT_TEST(event_then_cancel_keeps_the_event)
{
    struct joiner j = {NULL, -2, NULL, 0};
    weave_task *t;

    j.target = WT_SPAWN(yield_then_return, wt_ptr(7));
    t = WT_SPAWN(joiner_task, &j);
    /* Runs target (which yields), the joiner (which waits), target again
     * (which ends and wakes the joiner); we run before the joiner does. */
    ck_assert_int_eq(weave_yield(), 0);
    ck_assert_int_eq(weave_yield(), 0);
    ck_assert_int_eq(weave_cancel(t), 0);
    WT_JOIN(t);
    ck_assert_int_eq(j.r, 0);
    ck_assert_ptr_eq(j.result, wt_ptr(7));
    ck_assert_int_eq(j.after_err, ECANCELED);
    WT_ASSERT_IDLE();
}

/* A deadline scope and an event in the same turn: the timer fired first. */
static void *scoped_reader(void *arg)
{
    struct raced *w = arg;
    weave_deadline d;
    char c;
    int64_t t0;

    weave_deadline_begin(&d, 20);
    errno = 0;
    w->r = (int)weave_read(w->fd, &c, 1);
    w->err = errno;
    ck_assert_int_eq(weave_deadline_end(&d), 1);
    t0 = wt_now_ns();
    weave_sleep(30);
    w->slept_ns = wt_now_ns() - t0;
    return NULL;
}

WT_TEST(deadline_and_event_one_wake)
{
    int p[2];
    struct raced w;
    weave_task *t;
    int64_t t0;
    char c;

    wt_make_pipe(p, O_NONBLOCK);
    w.fd = p[0];
    t = WT_SPAWN(scoped_reader, &w);
    t0 = wt_now_ns();
    ck_assert_int_eq(weave_yield(), 0);
    spin_until(t0 + 25 * MS);
    ck_assert_int_eq((int)write(p[1], "x", 1), 1);
    WT_JOIN(t);
    ck_assert_int_eq(w.r, -1);
    ck_assert_int_eq(w.err, ETIMEDOUT);
    ck_assert_int_ge(w.slept_ns, 30 * MS);
    /* The byte was not taken. */
    ck_assert_int_eq((int)read(p[0], &c, 1), 1);
    ck_assert_int_eq(weave_close(p[0]), 0);
    ck_assert_int_eq(weave_close(p[1]), 0);
    WT_ASSERT_IDLE();
}

/* ---- scopes left open ----------------------------------------------------- */

/* The reproducer a user sent, as it was run: the early return skips
 * weave_deadline_end. Not static, so that dladdr can name it (the suite
 * exports its symbols). */
__attribute__((visibility("default"))) int lookup(int key);

int lookup(int key)
{
    weave_deadline d;

    weave_deadline_begin(&d, 100);
    if (key < 0)
        return -1; /* skips weave_deadline_end */
    if (weave_sleep(10) < 0)
        return -1;
    return weave_deadline_end(&d);
}

WT_TEST(forgotten_scope_is_dropped)
{
    char out[1024];
    int saved = wt_stderr_begin();
    int64_t t0;

    ck_assert_int_eq(lookup(-1), -1);
    t0 = wt_now_ns();
    ck_assert_int_eq(weave_sleep(200), 0); /* was -1, ETIMEDOUT */
    ck_assert_int_ge(wt_now_ns() - t0, 200 * MS);
    ck_assert_int_eq(weave_sleep(1), 0); /* and so were later calls */
    wt_stderr_end(saved, out, sizeof(out));
    ck_assert_msg(strstr(out, "weave: task 1 (main): the deadline scope begun at lookup+") &&
                      strstr(out, "was never ended (its function returned); dropped, with the 0 "
                                  "scopes begun after it"),
                  "report: %s", out);
    ck_assert_ptr_null(strchr(strchr(out, '\n') + 1, '\n')); /* one line */

    /* The same frame begun again (lookup called twice at one depth): the
     * forgotten scope at that place is dropped, not taken for the new one. */
    saved = wt_stderr_begin();
    ck_assert_int_eq(lookup(-1), -1);
    ck_assert_int_eq(weave_sleep(150), 0); /* past the forgotten deadline */
    ck_assert_int_eq(lookup(1), 0);
    wt_stderr_end(saved, out, sizeof(out));
    ck_assert_msg(strstr(out, "was never ended"), "report: %s", out);
    WT_ASSERT_IDLE();
}

/* A scope begun after a forgotten one is in the same frame or deeper,
 * gone with it, unless its struct lives elsewhere: this one is static. */
static weave_deadline later;

static __attribute__((noinline)) void forget_two_scopes(void)
{
    weave_deadline d;

    weave_deadline_begin(&d, 0);
    weave_deadline_begin(&later, 0);
}

WT_TEST(scopes_begun_after_are_dropped_too)
{
    char out[1024];
    int saved = wt_stderr_begin();

    forget_two_scopes();
    ck_assert_int_eq(weave_yield(), 0); /* both dropped: no deadline applies */
    WT_FAILS(weave_deadline_end(&later), EINVAL);
    ck_assert_int_eq(weave_sleep(1), 0);
    wt_stderr_end(saved, out, sizeof(out));
    ck_assert_msg(strstr(out, "dropped, with the 1 scope begun after it"), "report: %s", out);
    WT_ASSERT_IDLE();
}

WT_TEST(forgotten_shield_lets_cancel_in)
{
    char out[1024];
    int saved = wt_stderr_begin();
    weave_shield sh;

    forget_shield();
    ck_assert_int_eq(weave_cancel(weave_self()), 0);
    WT_FAILS(weave_sleep(10000), ECANCELED);
    wt_stderr_end(saved, out, sizeof(out));
    ck_assert_msg(strstr(out, "the shield begun at "), "report: %s", out);
    /* A shield that is ended stays as it was. */
    weave_shield_begin(&sh);
    ck_assert_int_eq(weave_sleep(1), 0);
    weave_shield_end(&sh);
    WT_FAILS(weave_sleep(1), ECANCELED);
}

static void *ends_in_scope(void *arg)
{
    weave_deadline d;

    weave_deadline_begin(&d, 1000);
    return arg;
}

WT_TEST(task_ending_with_a_scope_open)
{
    char out[1024];
    int saved = wt_stderr_begin();
    weave_task *t = weave_spawn_with(&(weave_task_opts){.name = "leaky"}, ends_in_scope, NULL);

    ck_assert_ptr_nonnull(t);
    WT_JOIN(t);
    wt_stderr_end(saved, out, sizeof(out));
    ck_assert_msg(strstr(out, "(leaky): the deadline scope begun at ") &&
                      strstr(out, "was never ended (the task ended)"),
                  "report: %s", out);
    WT_ASSERT_IDLE();
}

/* The same mistake with the self-ending scopes: an early return ends them,
 * inlined or not, without a word and without touching errno. */
static inline int lookup_scoped(int key)
{
    WEAVE_DEADLINE_SCOPE(d, 50);
    if (key < 0) {
        errno = EIO;
        return -1; /* d ends here */
    }
    if (weave_sleep(10) < 0)
        return -1;
    return weave_deadline_end(&d); /* by hand: then the automatic end does nothing */
}

static int shielded_sleep(int ms)
{
    WEAVE_SHIELD_SCOPE(sh);
    return weave_sleep(ms); /* sh ends after the sleep */
}

WT_TEST(self_ending_scopes)
{
    char out[1024];
    int saved = wt_stderr_begin();
    int64_t t0;

    errno = 0;
    ck_assert_int_eq(lookup_scoped(-1), -1);
    ck_assert_int_eq(errno, EIO);
    t0 = wt_now_ns();
    ck_assert_int_eq(weave_sleep(80), 0); /* past the deadline of d */
    ck_assert_int_ge(wt_now_ns() - t0, 80 * MS);
    ck_assert_int_eq(lookup_scoped(1), 0);
    ck_assert_int_eq(weave_cancel(weave_self()), 0);
    ck_assert_int_eq(shielded_sleep(5), 0);
    WT_FAILS(weave_sleep(1), ECANCELED);
    wt_stderr_end(saved, out, sizeof(out));
    ck_assert_msg(out[0] == '\0', "report: %s", out);
}

/* Scopes nest WEAVE_SCOPE_MAX deep; one more deadline scope begins expired
 * and its end says EMLINK; one more shield is not begun. */
static void nest(int depth)
{
    weave_deadline d;

    if (depth == WEAVE_SCOPE_MAX) {
        weave_shield sh;

        ck_assert_int_eq(weave_sleep(1), 0);
        weave_deadline_begin(&d, 10000);
        WT_FAILS(weave_sleep(1), ETIMEDOUT);
        WT_FAILS(weave_deadline_end(&d), EMLINK);
        ck_assert_int_eq(weave_sleep(1), 0);
        weave_shield_begin(&sh);
        ck_assert_int_eq(weave_cancel(weave_self()), 0);
        WT_FAILS(weave_sleep(1), ECANCELED); /* not shielded */
        weave_shield_end(&sh);
        return;
    }
    weave_deadline_begin(&d, 10000);
    nest(depth + 1);
    ck_assert_int_eq(weave_deadline_end(&d), 0);
}

static void *nester(void *arg)
{
    nest(0);
    return arg;
}

WT_TEST(scopes_nest_to_a_limit)
{
    char out[1024];
    int saved = wt_stderr_begin();

    WT_JOIN(WT_SPAWN(nester, NULL));
    wt_stderr_end(saved, out, sizeof(out));
    ck_assert_msg(strstr(out, "scopes nest at most 32 deep"), "report: %s", out);
    WT_ASSERT_IDLE();
}

static void tmpbase_make(void)
{
    wt_tmpbase_make("weave-deadline");
}

int main(void)
{
    Suite *s = suite_create("deadline");
    TCase *tc = tcase_create("blockers");

    tcase_set_timeout(tc, 30);
    tcase_add_unchecked_fixture(tc, tmpbase_make, wt_tmpbase_remove);
    tcase_add_loop_test(tc, every_scenario, 0, NBLOCKERS - 1);
    suite_add_tcase(s, tc);

    /* The offload blocker, last of the table, needs the pool's threads. */
    tc = tcase_create("offload");
    wt_tag_native(tc);
    tcase_set_timeout(tc, 30);
    tcase_add_unchecked_fixture(tc, tmpbase_make, wt_tmpbase_remove);
    tcase_add_loop_test(tc, every_scenario, NBLOCKERS - 1, NBLOCKERS);
    suite_add_tcase(s, tc);

    tc = tcase_create("rules");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, own_timeout_and_scope);
    tcase_add_test(tc, tcp_connect_timeout_and_scope);
    tcase_add_test(tc, misuse);
    tcase_add_test(tc, scopes_belong_to_their_task);
    tcase_add_test(tc, shield_lets_calls_complete);
    tcase_add_test(tc, timeout_and_event_one_wake);
    tcase_add_test(tc, cancel_and_event_one_wake);
    tcase_add_test(tc, event_then_cancel_keeps_the_event);
    tcase_add_test(tc, deadline_and_event_one_wake);
    suite_add_tcase(s, tc);

    tc = tcase_create("forgotten");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, forgotten_scope_is_dropped);
    tcase_add_test(tc, scopes_begun_after_are_dropped_too);
    tcase_add_test(tc, forgotten_shield_lets_cancel_in);
    tcase_add_test(tc, task_ending_with_a_scope_open);
    tcase_add_test(tc, scopes_nest_to_a_limit);
    tcase_add_test(tc, self_ending_scopes);
    suite_add_tcase(s, tc);
    return wt_main(s);
}
