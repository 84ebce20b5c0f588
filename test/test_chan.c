/*
 * test_chan.c - channels (weave_chan_*) and weave_select.
 *
 * Channels: rendezvous and buffered transfer, elements copied whole and
 * leaving in FIFO order, signal channels (elem_size 0), waiters served in
 * the order they came, weave_chan_len; close (buffered elements first,
 * then EPIPE; waiting senders and receivers woken with EPIPE); free while
 * waited on (EBUSY, and the channel still works); try_send and try_recv;
 * a waiter that is cancelled, times out or whose deadline scope passes
 * leaves its queue without taking or dropping an element (the exact
 * sequence of elements is checked afterwards), and one served before it
 * was cancelled keeps what it got; weave_run's teardown with tasks still
 * blocked; misuse (EINVAL, EPERM outside a task and from another
 * scheduler's thread).
 *
 * Select: each kind of case, timeouts, closed channels and fds, exactly one
 * case completing, fairness between ready cases, no trace left by a
 * select that gave up, the errors, and more cases than fit on the stack.
 *
 * Stress: 10^6 sequence-numbered messages from 4 senders to 4 receivers
 * (half of them receiving through weave_select) over a rendezvous and a
 * buffered channel, while a chaos task cancels random receivers and spawns
 * replacements; every message must arrive exactly once, and no cancelled
 * receiver may have taken one (10^5 messages under valgrind).
 *
 * Times are asserted as lower bounds; upper bounds (WT_PROMPT_MS) only
 * catch hangs.
 *
 * Check timeouts: "chan" 10 s x 22, "select" 10 s x 11, "stress" 60 s x 2
 * = 450 s; the CTest timeout in CMakeLists.txt (600 s) is above their sum.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "weave_test.h"

#define MS       ((int64_t)1000000)
#define SENTINEL (-777L)   /* what a receive buffer holds before anything came */
#define PLAIN    INT64_MIN /* struct op: the plain call, not the _timeout variant */
#define NO_SCOPE INT64_MIN /* struct op: no deadline scope around the call */
#define SEL_MAX  20        /* cases of a struct sel */

/* Fail unless expr holds. For hot loops: a passing ck_assert writes to
 * Check's pipe each time, which would dominate a stress test. */
#define REQUIRE(expr)                                                                              \
    do {                                                                                           \
        if (!(expr))                                                                               \
            ck_abort_msg("line %d: %s", __LINE__, #expr);                                          \
    } while (0)

/* ---- helpers ------------------------------------------------------------ */

/* One send or receive of a long, done by a task; what it got and when. */
struct op {
    weave_chan *c;
    int send;         /* 1: send val; 0: receive into val */
    int null_elem;    /* pass NULL as the element (signal channels) */
    int64_t timeout;  /* PLAIN, or the timeout of the _timeout variant */
    int64_t scope_ms; /* NO_SCOPE, or the call runs in a deadline scope of this */
    long val;
    int ret, err;  /* the call's result and errno */
    int scope_end; /* weave_deadline_end's result */
    int done;
    int order; /* 1 for the first op to return, then counting up */
    int64_t t0_ns, returned_ns;
};

static int returned_so_far;

static struct op op_send(weave_chan *c, long v)
{
    struct op o;

    memset(&o, 0, sizeof(o));
    o.c = c;
    o.send = 1;
    o.timeout = PLAIN;
    o.scope_ms = NO_SCOPE;
    o.val = v;
    o.ret = -42;
    return o;
}

static struct op op_recv(weave_chan *c)
{
    struct op o = op_send(c, SENTINEL);

    o.send = 0;
    return o;
}

static void *op_task(void *arg)
{
    struct op *o = arg;
    void *elem = o->null_elem ? NULL : &o->val;
    weave_deadline d;

    if (o->scope_ms != NO_SCOPE)
        weave_deadline_begin(&d, o->scope_ms);
    o->t0_ns = wt_now_ns();
    errno = 0;
    if (o->send && o->timeout == PLAIN)
        o->ret = weave_chan_send(o->c, elem);
    else if (o->send)
        o->ret = weave_chan_send_timeout(o->c, elem, o->timeout);
    else if (o->timeout == PLAIN)
        o->ret = weave_chan_recv(o->c, elem);
    else
        o->ret = weave_chan_recv_timeout(o->c, elem, o->timeout);
    o->err = errno;
    o->returned_ns = wt_now_ns();
    if (o->scope_ms != NO_SCOPE)
        o->scope_end = weave_deadline_end(&d);
    o->done = 1;
    o->order = ++returned_so_far;
    return NULL;
}

/* Spawn a task doing o and let it run until it blocks (or is done): it runs
 * before the caller, which yields once. */
static weave_task *start(struct op *o)
{
    weave_task *t = WT_SPAWN(op_task, o);

    ck_assert_int_eq(weave_yield(), 0);
    return t;
}

/* Assert that o ended with -1 and err. */
static void assert_failed(const struct op *o, int err)
{
    ck_assert_int_eq(o->done, 1);
    ck_assert_int_eq(o->ret, -1);
    ck_assert_int_eq(o->err, err);
}

static weave_chan *new_chan(size_t elem_size, size_t capacity)
{
    weave_chan *c = weave_chan_new(elem_size, capacity);

    ck_assert_ptr_nonnull(c);
    return c;
}

static void send_one(weave_chan *c, long v)
{
    ck_assert_int_eq(weave_chan_send(c, &v), 0);
}

static void send_now(weave_chan *c, long v)
{
    ck_assert_int_eq(weave_chan_try_send(c, &v), 0);
}

static long recv_one(weave_chan *c)
{
    long v = SENTINEL;

    ck_assert_int_eq(weave_chan_recv(c, &v), 0);
    return v;
}

static long recv_now(weave_chan *c)
{
    long v = SENTINEL;

    ck_assert_int_eq(weave_chan_try_recv(c, &v), 0);
    return v;
}

/* Assert that nothing can be received from c now (an element or a waiting
 * sender would be). */
static void assert_nothing(weave_chan *c)
{
    long v = SENTINEL;

    WT_FAILS(weave_chan_try_recv(c, &v), EAGAIN);
    ck_assert_int_eq(v, SENTINEL);
}

/* ---- select helpers ----------------------------------------------------- */

static weave_select_case chan_case(int op, weave_chan *c, void *elem)
{
    weave_select_case k;

    memset(&k, 0, sizeof(k));
    k.op = op;
    k.chan = c;
    k.elem = elem;
    k.fd = -1;
    k.err = -1;
    return k;
}

static weave_select_case send_case(weave_chan *c, void *elem)
{
    return chan_case(WEAVE_CASE_SEND, c, elem);
}

static weave_select_case recv_case(weave_chan *c, void *elem)
{
    return chan_case(WEAVE_CASE_RECV, c, elem);
}

static weave_select_case fd_case(int fd, int events)
{
    weave_select_case k = chan_case(WEAVE_CASE_FD, NULL, NULL);

    k.fd = fd;
    k.events = events;
    return k;
}

static weave_select_case task_case(weave_task *t)
{
    weave_select_case k = chan_case(WEAVE_CASE_TASK, NULL, NULL);

    k.task = t;
    return k;
}

/* A select done by a task. Cases may point at in[] and out[]. */
struct sel {
    weave_select_case cs[SEL_MAX];
    size_t n;
    int64_t timeout;
    int64_t scope_ms; /* NO_SCOPE, or the select runs in a deadline scope */
    long in[SEL_MAX], out[SEL_MAX];
    int ret, err, done;
    int64_t t0_ns, returned_ns;
};

static void sel_init(struct sel *s, int64_t timeout)
{
    memset(s, 0, sizeof(*s));
    s->timeout = timeout;
    s->scope_ms = NO_SCOPE;
    s->ret = -42;
    for (int i = 0; i < SEL_MAX; i++)
        s->in[i] = SENTINEL;
}

static void sel_add(struct sel *s, weave_select_case k)
{
    ck_assert_uint_lt(s->n, SEL_MAX);
    s->cs[s->n++] = k;
}

static void *sel_task(void *arg)
{
    struct sel *s = arg;
    weave_deadline d;

    s->t0_ns = wt_now_ns(); /* before the scope: its deadline counts from its begin */
    if (s->scope_ms != NO_SCOPE)
        weave_deadline_begin(&d, s->scope_ms);
    errno = 0;
    s->ret = weave_select(s->cs, s->n, s->timeout);
    s->err = errno;
    s->returned_ns = wt_now_ns();
    if (s->scope_ms != NO_SCOPE)
        (void)weave_deadline_end(&d);
    s->done = 1;
    return NULL;
}

static weave_task *sel_start(struct sel *s)
{
    weave_task *t = WT_SPAWN(sel_task, s);

    ck_assert_int_eq(weave_yield(), 0);
    return t;
}

static void put_byte(int fd)
{
    char c = 'x';

    ck_assert_int_eq((int)write(fd, &c, 1), 1);
}

/* ======================================================================== */
/*  Channels: happy paths                                                   */
/* ======================================================================== */

WT_TEST(rendezvous_hands_over)
{
    weave_chan *c = new_chan(sizeof(long), 0);
    struct op s = op_send(c, 41), r = op_recv(c);
    weave_task *t;

    /* A send waits until a receiver takes the element... */
    t = start(&s);
    ck_assert_int_eq(weave_sleep(10), 0);
    ck_assert_int_eq(s.done, 0);
    ck_assert_uint_eq(weave_chan_len(c), 0);
    ck_assert_int_eq(recv_one(c), 41);
    WT_JOIN(t);
    ck_assert_int_eq(s.ret, 0);

    /* ... and a receive waits until a sender comes. */
    t = start(&r);
    ck_assert_int_eq(weave_sleep(10), 0);
    ck_assert_int_eq(r.done, 0);
    send_one(c, 42);
    WT_JOIN(t);
    ck_assert_int_eq(r.ret, 0);
    ck_assert_int_eq(r.val, 42);

    /* Nothing is kept: with no partner, nothing to take and no room. */
    assert_nothing(c);
    WT_FAILS(weave_chan_try_send(c, &r.val), EAGAIN);
    ck_assert_uint_eq(weave_chan_len(c), 0);
    ck_assert_int_eq(weave_chan_free(c), 0);
    WT_ASSERT_IDLE();
}

WT_TEST(buffered_fifo_and_len)
{
    weave_chan *c = new_chan(sizeof(long), 4);
    struct op s = op_send(c, 14);
    weave_task *t;
    long v;

    /* Sends do not wait while there is room; len counts. */
    for (long i = 0; i < 4; i++) {
        v = 10 + i;
        ck_assert_int_eq(weave_chan_send(c, &v), 0);
        v = -1; /* the channel holds a copy */
        ck_assert_uint_eq(weave_chan_len(c), (size_t)i + 1);
    }
    /* Full: a sender waits; the receive that makes room moves its element
     * in behind the others and lets it go. */
    t = start(&s);
    ck_assert_int_eq(weave_sleep(5), 0);
    ck_assert_int_eq(s.done, 0);
    ck_assert_uint_eq(weave_chan_len(c), 4);
    ck_assert_int_eq(recv_one(c), 10);
    ck_assert_uint_eq(weave_chan_len(c), 4);
    WT_JOIN(t);
    ck_assert_int_eq(s.ret, 0);
    for (long i = 11; i <= 14; i++) {
        ck_assert_int_eq(recv_one(c), i);
        ck_assert_uint_eq(weave_chan_len(c), (size_t)(14 - i));
    }
    assert_nothing(c);

    /* Round and round the ring: FIFO across the wrap. */
    for (long k = 0; k < 300; k += 3) {
        for (long i = 0; i < 3; i++)
            send_one(c, k + i);
        ck_assert_uint_eq(weave_chan_len(c), 3);
        for (long i = 0; i < 3; i++)
            ck_assert_int_eq(recv_one(c), k + i);
    }
    ck_assert_int_eq(weave_chan_free(c), 0);
    WT_ASSERT_IDLE();
}

/* An element of an odd size, in a frame with guards on both sides. */
struct big {
    char name[27];
    double d;
    uint16_t tail;
};

struct framed {
    unsigned char before[16];
    struct big b;
    unsigned char after[16];
};

static struct big big_value(int k)
{
    struct big b;

    memset(&b, 0, sizeof(b));
    snprintf(b.name, sizeof(b.name), "element number %d", k);
    b.d = 1.5 * k;
    b.tail = (uint16_t)(0xbe00 + k);
    return b;
}

static void framed_init(struct framed *f)
{
    memset(f, 0x5a, sizeof(*f));
}

static void framed_check(const struct framed *f, int k)
{
    struct big want = big_value(k);

    ck_assert_int_eq(memcmp(&f->b, &want, sizeof(want)), 0);
    for (size_t i = 0; i < sizeof(f->before); i++) {
        ck_assert_uint_eq(f->before[i], 0x5a);
        ck_assert_uint_eq(f->after[i], 0x5a);
    }
}

struct big_recv {
    weave_chan *c;
    struct framed f;
    int ret;
};

static void *big_recv_task(void *arg)
{
    struct big_recv *r = arg;

    r->ret = weave_chan_recv(r->c, &r->f.b);
    return NULL;
}

WT_TEST(elements_copied_whole)
{
    weave_chan *c = new_chan(sizeof(struct big), 3);
    weave_chan *rv = new_chan(sizeof(struct big), 0);
    struct big_recv r;
    struct framed f;
    struct big b;
    weave_task *t;

    /* Buffered: copied in at the send, out at the receive, whole and no
     * more; the sender's memory may change at once. */
    for (int k = 0; k < 3; k++) {
        b = big_value(k);
        ck_assert_int_eq(weave_chan_send(c, &b), 0);
        memset(&b, 0xee, sizeof(b));
    }
    for (int k = 0; k < 3; k++) {
        framed_init(&f);
        ck_assert_int_eq(weave_chan_recv(c, &f.b), 0);
        framed_check(&f, k);
    }

    /* Rendezvous into a waiting receiver. */
    memset(&r, 0, sizeof(r));
    r.c = rv;
    r.ret = -42;
    framed_init(&r.f);
    t = WT_SPAWN(big_recv_task, &r);
    ck_assert_int_eq(weave_yield(), 0);
    b = big_value(7);
    ck_assert_int_eq(weave_chan_send(rv, &b), 0);
    memset(&b, 0xee, sizeof(b));
    WT_JOIN(t);
    ck_assert_int_eq(r.ret, 0);
    framed_check(&r.f, 7);

    ck_assert_int_eq(weave_chan_free(c), 0);
    ck_assert_int_eq(weave_chan_free(rv), 0);
    WT_ASSERT_IDLE();
}

WT_TEST(signal_channels_elem_size_zero)
{
    weave_chan *rv = new_chan(0, 0), *b = new_chan(0, 3), *huge = new_chan(0, SIZE_MAX);
    struct op s = op_send(rv, 5), r = op_recv(rv);
    weave_task *t;
    long v = 99;

    /* Rendezvous signals: a send waits for a receiver, with a NULL
     * element. */
    s.null_elem = 1;
    t = start(&s);
    ck_assert_int_eq(weave_sleep(5), 0);
    ck_assert_int_eq(s.done, 0);
    ck_assert_int_eq(weave_chan_recv(rv, NULL), 0);
    WT_JOIN(t);
    ck_assert_int_eq(s.ret, 0);
    /* A non-NULL element is allowed and never touched. */
    t = start(&r);
    ck_assert_int_eq(r.done, 0);
    ck_assert_int_eq(weave_chan_send(rv, &v), 0);
    WT_JOIN(t);
    ck_assert_int_eq(r.ret, 0);
    ck_assert_int_eq(r.val, SENTINEL);
    WT_FAILS(weave_chan_try_send(rv, NULL), EAGAIN);

    /* Buffered signals are counted. */
    for (size_t i = 1; i <= 3; i++) {
        ck_assert_int_eq(weave_chan_send(b, NULL), 0);
        ck_assert_uint_eq(weave_chan_len(b), i);
    }
    WT_FAILS(weave_chan_try_send(b, NULL), EAGAIN);
    for (size_t i = 3; i > 0; i--) {
        ck_assert_int_eq(weave_chan_recv(b, i == 2 ? (void *)&v : NULL), 0);
        ck_assert_uint_eq(weave_chan_len(b), i - 1);
    }
    ck_assert_int_eq(v, 99);
    WT_FAILS(weave_chan_try_recv(b, NULL), EAGAIN);

    /* elem_size 0 never overflows: any capacity holds no memory. */
    for (int i = 0; i < 1000; i++)
        ck_assert_int_eq(weave_chan_try_send(huge, NULL), 0);
    ck_assert_uint_eq(weave_chan_len(huge), 1000);

    ck_assert_int_eq(weave_chan_free(rv), 0);
    ck_assert_int_eq(weave_chan_free(b), 0);
    ck_assert_int_eq(weave_chan_free(huge), 0);
    WT_ASSERT_IDLE();
}

#define NW 5

static void *m_senders_fifo(void *arg)
{
    size_t cap = (size_t)wt_int(arg);
    weave_chan *c = new_chan(sizeof(long), cap);
    struct op s[NW];
    weave_task *t[NW];

    returned_so_far = 0;
    for (size_t i = 0; i < cap; i++)
        send_now(c, 100 + (long)i);
    for (int i = 0; i < NW; i++) {
        s[i] = op_send(c, i);
        t[i] = start(&s[i]);
    }
    ck_assert_int_eq(weave_sleep(5), 0);
    for (int i = 0; i < NW; i++)
        ck_assert_int_eq(s[i].done, 0);
    ck_assert_uint_eq(weave_chan_len(c), cap);
    /* The buffer first, then the waiting senders in the order they came. */
    for (size_t i = 0; i < cap; i++)
        ck_assert_int_eq(recv_one(c), 100 + (long)i);
    for (long i = 0; i < NW; i++)
        ck_assert_int_eq(recv_one(c), i);
    assert_nothing(c);
    for (int i = 0; i < NW; i++) {
        WT_JOIN(t[i]);
        ck_assert_int_eq(s[i].ret, 0);
        ck_assert_int_eq(s[i].order, i + 1);
    }
    ck_assert_int_eq(weave_chan_free(c), 0);
    WT_ASSERT_IDLE();
    return NULL;
}

START_TEST(waiting_senders_served_fifo)
{
    WT_RUN(m_senders_fifo, wt_ptr(0));
    WT_RUN(m_senders_fifo, wt_ptr(3));
}
END_TEST

static void *m_receivers_fifo(void *arg)
{
    size_t cap = (size_t)wt_int(arg);
    weave_chan *c = new_chan(sizeof(long), cap);
    struct op r[NW];
    weave_task *t[NW];

    returned_so_far = 0;
    for (int i = 0; i < NW; i++) {
        r[i] = op_recv(c);
        t[i] = start(&r[i]);
    }
    ck_assert_int_eq(weave_sleep(5), 0);
    for (int i = 0; i < NW; i++)
        ck_assert_int_eq(r[i].done, 0);
    /* Each send goes straight to the longest waiting receiver. */
    for (long i = 0; i < NW; i++) {
        send_one(c, i);
        ck_assert_uint_eq(weave_chan_len(c), 0);
    }
    for (int i = 0; i < NW; i++) {
        WT_JOIN(t[i]);
        ck_assert_int_eq(r[i].ret, 0);
        ck_assert_int_eq(r[i].val, i);
        ck_assert_int_eq(r[i].order, i + 1);
    }
    ck_assert_int_eq(weave_chan_free(c), 0);
    WT_ASSERT_IDLE();
    return NULL;
}

START_TEST(waiting_receivers_served_fifo)
{
    WT_RUN(m_receivers_fifo, wt_ptr(0));
    WT_RUN(m_receivers_fifo, wt_ptr(2));
}
END_TEST

/* ======================================================================== */
/*  Close and free                                                          */
/* ======================================================================== */

WT_TEST(close_delivers_buffer_then_epipe)
{
    weave_chan *c = new_chan(sizeof(long), 4);
    long v = 9;

    for (long i = 1; i <= 3; i++)
        send_now(c, i);
    ck_assert_int_eq(weave_chan_close(c), 0);
    /* Senders get EPIPE at once, though there is room. */
    WT_FAILS(weave_chan_send(c, &v), EPIPE);
    WT_FAILS(weave_chan_try_send(c, &v), EPIPE);
    WT_FAILS(weave_chan_send_timeout(c, &v, 1000), EPIPE);
    ck_assert_uint_eq(weave_chan_len(c), 3);
    /* Receivers still get what was buffered, in order, then EPIPE. */
    ck_assert_int_eq(recv_one(c), 1);
    ck_assert_int_eq(recv_now(c), 2);
    v = SENTINEL;
    ck_assert_int_eq(weave_chan_recv_timeout(c, &v, 1000), 0);
    ck_assert_int_eq(v, 3);
    v = SENTINEL;
    WT_FAILS(weave_chan_recv(c, &v), EPIPE);
    WT_FAILS(weave_chan_try_recv(c, &v), EPIPE);
    WT_FAILS(weave_chan_recv_timeout(c, &v, 1000), EPIPE);
    ck_assert_int_eq(v, SENTINEL);
    ck_assert_uint_eq(weave_chan_len(c), 0);
    /* Closing twice is EPIPE. */
    WT_FAILS(weave_chan_close(c), EPIPE);
    ck_assert_int_eq(weave_chan_free(c), 0);
    WT_ASSERT_IDLE();
}

static void *m_close_senders(void *arg)
{
    size_t cap = (size_t)wt_int(arg);
    weave_chan *c = new_chan(sizeof(long), cap);
    struct op s[3];
    weave_task *t[3];
    int64_t closed;

    for (size_t i = 0; i < cap; i++)
        send_now(c, 1 + (long)i);
    for (int i = 0; i < 3; i++) {
        s[i] = op_send(c, 10 + i);
        t[i] = start(&s[i]);
    }
    ck_assert_int_eq(weave_sleep(5), 0);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(s[i].done, 0);
    closed = wt_now_ns();
    ck_assert_int_eq(weave_chan_close(c), 0);
    for (int i = 0; i < 3; i++) {
        WT_JOIN(t[i]);
        assert_failed(&s[i], EPIPE);
        ck_assert_int_lt((s[i].returned_ns - closed) / MS, WT_PROMPT_MS);
    }
    /* Their elements were not taken in; the buffered ones still come. */
    for (size_t i = 0; i < cap; i++)
        ck_assert_int_eq(recv_one(c), 1 + (long)i);
    WT_FAILS(weave_chan_try_recv(c, &s[0].val), EPIPE);
    WT_FAILS(weave_chan_close(c), EPIPE);
    ck_assert_int_eq(weave_chan_free(c), 0);
    WT_ASSERT_IDLE();
    return NULL;
}

START_TEST(close_fails_waiting_senders)
{
    WT_RUN(m_close_senders, wt_ptr(0));
    WT_RUN(m_close_senders, wt_ptr(2));
}
END_TEST

static void *m_close_receivers(void *arg)
{
    size_t cap = (size_t)wt_int(arg);
    weave_chan *c = new_chan(sizeof(long), cap);
    struct op r[3];
    weave_task *t[3];
    int64_t closed;

    for (int i = 0; i < 3; i++) {
        r[i] = op_recv(c);
        t[i] = start(&r[i]);
    }
    ck_assert_int_eq(weave_sleep(5), 0);
    closed = wt_now_ns();
    ck_assert_int_eq(weave_chan_close(c), 0);
    for (int i = 0; i < 3; i++) {
        WT_JOIN(t[i]);
        assert_failed(&r[i], EPIPE);
        ck_assert_int_eq(r[i].val, SENTINEL);
        ck_assert_int_lt((r[i].returned_ns - closed) / MS, WT_PROMPT_MS);
    }
    ck_assert_int_eq(weave_chan_free(c), 0);
    WT_ASSERT_IDLE();
    return NULL;
}

START_TEST(close_fails_waiting_receivers)
{
    WT_RUN(m_close_receivers, wt_ptr(0));
    WT_RUN(m_close_receivers, wt_ptr(2));
}
END_TEST

WT_TEST(free_while_waited_on_ebusy)
{
    weave_chan *c = new_chan(sizeof(long), 0);
    struct op r[2] = {op_recv(c), op_recv(c)}, s = op_send(c, 3);
    weave_task *t[2], *ts, *tsel;
    struct sel sl;

    /* Receivers wait: EBUSY, and the channel still works. */
    t[0] = start(&r[0]);
    t[1] = start(&r[1]);
    WT_FAILS(weave_chan_free(c), EBUSY);
    send_one(c, 1);
    WT_FAILS(weave_chan_free(c), EBUSY);
    send_one(c, 2);
    WT_JOIN(t[0]);
    WT_JOIN(t[1]);
    ck_assert_int_eq(r[0].val, 1);
    ck_assert_int_eq(r[1].val, 2);

    /* A sender waits: the same. */
    ts = start(&s);
    WT_FAILS(weave_chan_free(c), EBUSY);
    ck_assert_int_eq(recv_one(c), 3);
    WT_JOIN(ts);
    ck_assert_int_eq(s.ret, 0);

    /* A select waits on it: the same. */
    sel_init(&sl, -1);
    sel_add(&sl, recv_case(c, &sl.in[0]));
    tsel = sel_start(&sl);
    WT_FAILS(weave_chan_free(c), EBUSY);
    send_one(c, 4);
    WT_JOIN(tsel);
    ck_assert_int_eq(sl.ret, 0);
    ck_assert_int_eq(sl.in[0], 4);

    ck_assert_int_eq(weave_chan_free(c), 0);
    WT_ASSERT_IDLE();
}

/* ======================================================================== */
/*  try_send, try_recv                                                      */
/* ======================================================================== */

WT_TEST(try_send_try_recv)
{
    weave_chan *rv = new_chan(sizeof(long), 0), *b = new_chan(sizeof(long), 2);
    struct op r = op_recv(rv), s = op_send(rv, 6), sb = op_send(b, 3);
    weave_task *t;
    long v = 1;

    /* EAGAIN where send and recv would wait. */
    WT_FAILS(weave_chan_try_send(rv, &v), EAGAIN);
    WT_FAILS(weave_chan_try_recv(rv, &v), EAGAIN);
    WT_FAILS(weave_chan_try_recv(b, &v), EAGAIN);
    send_now(b, 1);
    send_now(b, 2);
    WT_FAILS(weave_chan_try_send(b, &v), EAGAIN);
    ck_assert_uint_eq(weave_chan_len(b), 2);

    /* try_send hands over to a waiting receiver. */
    t = start(&r);
    send_now(rv, 5);
    WT_JOIN(t);
    ck_assert_int_eq(r.ret, 0);
    ck_assert_int_eq(r.val, 5);

    /* try_recv takes from a waiting sender. */
    t = start(&s);
    ck_assert_int_eq(recv_now(rv), 6);
    WT_JOIN(t);
    ck_assert_int_eq(s.ret, 0);

    /* try_recv from a full buffer lets a waiting sender in. */
    t = start(&sb);
    ck_assert_int_eq(sb.done, 0);
    ck_assert_int_eq(recv_now(b), 1);
    ck_assert_uint_eq(weave_chan_len(b), 2);
    WT_JOIN(t);
    ck_assert_int_eq(sb.ret, 0);
    ck_assert_int_eq(recv_now(b), 2);
    ck_assert_int_eq(recv_now(b), 3);
    assert_nothing(b);

    ck_assert_int_eq(weave_chan_free(rv), 0);
    ck_assert_int_eq(weave_chan_free(b), 0);
    WT_ASSERT_IDLE();
}

/* ======================================================================== */
/*  Waiters that give up: cancellation, deadlines, timeouts                  */
/* ======================================================================== */

/* How a waiter in the middle of the queue gives up. */
enum give_up { BY_CANCEL, BY_SCOPE, BY_TIMEOUT };

static void give_up_setup(struct op *o, enum give_up how)
{
    if (how == BY_SCOPE)
        o->scope_ms = 30;
    else if (how == BY_TIMEOUT)
        o->timeout = 30;
}

static void give_up_check(struct op *o, weave_task *t, enum give_up how)
{
    int64_t asked = wt_now_ns();

    if (how == BY_CANCEL)
        ck_assert_int_eq(weave_cancel(t), 0);
    WT_JOIN(t);
    if (how == BY_CANCEL) {
        assert_failed(o, ECANCELED);
        ck_assert_int_lt((o->returned_ns - asked) / MS, WT_PROMPT_MS);
        return;
    }
    assert_failed(o, ETIMEDOUT);
    ck_assert_int_ge(o->returned_ns - o->t0_ns, 30 * MS);
    if (how == BY_SCOPE)
        ck_assert_int_eq(o->scope_end, 1);
}

/* Senders 1, 2, 3 wait (after cap buffered elements); 2 gives up; the
 * elements that come out are exactly the buffer, 1 and 3. */
static void sender_gives_up(size_t cap, enum give_up how)
{
    weave_chan *c = new_chan(sizeof(long), cap);
    struct op s[3];
    weave_task *t[3];

    for (size_t i = 0; i < cap; i++)
        send_now(c, 100 + (long)i);
    for (int i = 0; i < 3; i++) {
        s[i] = op_send(c, i + 1);
        if (i == 1)
            give_up_setup(&s[i], how);
        t[i] = start(&s[i]);
    }
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(s[i].done, 0);
    give_up_check(&s[1], t[1], how);
    ck_assert_int_eq(s[0].done, 0);
    ck_assert_int_eq(s[2].done, 0);
    ck_assert_uint_eq(weave_chan_len(c), cap);
    for (size_t i = 0; i < cap; i++)
        ck_assert_int_eq(recv_one(c), 100 + (long)i);
    ck_assert_int_eq(recv_one(c), 1);
    ck_assert_int_eq(recv_one(c), 3);
    assert_nothing(c);
    WT_JOIN(t[0]);
    WT_JOIN(t[2]);
    ck_assert_int_eq(s[0].ret, 0);
    ck_assert_int_eq(s[2].ret, 0);
    ck_assert_int_eq(weave_chan_free(c), 0);
}

/* Receivers 1, 2, 3 wait; 2 gives up; then three elements are sent: 1 and
 * 3 get the first two, and the third stays (buffered) or finds nobody
 * (rendezvous). */
static void receiver_gives_up(size_t cap, enum give_up how)
{
    weave_chan *c = new_chan(sizeof(long), cap);
    struct op r[3];
    weave_task *t[3];

    for (int i = 0; i < 3; i++) {
        r[i] = op_recv(c);
        if (i == 1)
            give_up_setup(&r[i], how);
        t[i] = start(&r[i]);
    }
    give_up_check(&r[1], t[1], how);
    ck_assert_int_eq(r[1].val, SENTINEL);
    send_now(c, 10);
    send_now(c, 11);
    if (cap > 0) {
        send_now(c, 12);
        ck_assert_uint_eq(weave_chan_len(c), 1);
        ck_assert_int_eq(recv_now(c), 12);
    } else {
        long v = 12;
        WT_FAILS(weave_chan_try_send(c, &v), EAGAIN);
    }
    WT_JOIN(t[0]);
    WT_JOIN(t[2]);
    ck_assert_int_eq(r[0].ret, 0);
    ck_assert_int_eq(r[0].val, 10);
    ck_assert_int_eq(r[2].ret, 0);
    ck_assert_int_eq(r[2].val, 11);
    ck_assert_int_eq(r[1].val, SENTINEL);
    ck_assert_int_eq(weave_chan_free(c), 0);
}

static void *m_give_up(void *arg)
{
    enum give_up how = (enum give_up)wt_int(arg);

    sender_gives_up(0, how);
    sender_gives_up(2, how);
    receiver_gives_up(0, how);
    receiver_gives_up(2, how);
    WT_ASSERT_IDLE();
    return NULL;
}

START_TEST(cancelled_waiter_leaves_queue)
{
    WT_RUN(m_give_up, wt_ptr(BY_CANCEL));
}
END_TEST

START_TEST(deadline_scope_waiter_leaves_queue)
{
    WT_RUN(m_give_up, wt_ptr(BY_SCOPE));
}
END_TEST

START_TEST(timed_out_waiter_leaves_queue)
{
    WT_RUN(m_give_up, wt_ptr(BY_TIMEOUT));
}
END_TEST

/* Calls of a task that is cancelled, or whose deadline scope has passed,
 * fail at once even where they need not wait, and take or put nothing. */
struct doom {
    weave_chan *rv; /* rendezvous, a receiver waiting */
    weave_chan *b;  /* buffered, one element and room */
    int by_scope;   /* an expired scope instead of cancellation */
};

static void *doomed(void *arg)
{
    struct doom *d = arg;
    int err = d->by_scope ? ETIMEDOUT : ECANCELED;
    weave_select_case k[2];
    weave_deadline dl;
    long v = 77;

    if (d->by_scope)
        weave_deadline_begin(&dl, 0);
    else
        ck_assert_int_eq(weave_cancel(weave_self()), 0);
    WT_FAILS(weave_chan_send(d->rv, &v), err);
    WT_FAILS(weave_chan_send(d->b, &v), err);
    WT_FAILS(weave_chan_send_timeout(d->b, &v, 1000), err);
    WT_FAILS(weave_chan_recv(d->b, &v), err);
    WT_FAILS(weave_chan_recv_timeout(d->b, &v, 1000), err);
    k[0] = send_case(d->rv, &v);
    k[1] = recv_case(d->b, &v);
    WT_FAILS(weave_select(k, 2, 0), err);
    WT_FAILS(weave_select(k, 2, -1), err);
    ck_assert_int_eq(v, 77);
    if (d->by_scope)
        ck_assert_int_eq(weave_deadline_end(&dl), 1);
    return NULL;
}

WT_TEST(cancelled_or_expired_calls_fail_at_once)
{
    struct doom d = {new_chan(sizeof(long), 0), new_chan(sizeof(long), 5), 0};
    struct op r = op_recv(d.rv);
    weave_task *t;

    t = start(&r);
    send_now(d.b, 1);
    for (d.by_scope = 0; d.by_scope < 2; d.by_scope++) {
        WT_JOIN(WT_SPAWN(doomed, &d));
        ck_assert_int_eq(r.done, 0);
        ck_assert_uint_eq(weave_chan_len(d.b), 1);
    }
    ck_assert_int_eq(recv_now(d.b), 1);
    assert_nothing(d.b);
    send_now(d.rv, 2);
    WT_JOIN(t);
    ck_assert_int_eq(r.val, 2);
    ck_assert_int_eq(weave_chan_free(d.rv), 0);
    ck_assert_int_eq(weave_chan_free(d.b), 0);
    WT_ASSERT_IDLE();
}

/* A waiter served before it is cancelled (its partner came first, and it
 * has not run since) keeps what it got: the cancel cannot undo the
 * transfer, so nothing is lost. */
WT_TEST(served_then_cancelled_keeps_it)
{
    weave_chan *c = new_chan(sizeof(long), 0), *b = new_chan(sizeof(long), 1);
    struct op r = op_recv(c), s = op_send(c, 6), sb = op_send(b, 8);
    struct sel sl;
    weave_task *t;

    /* A receiver handed an element. */
    t = start(&r);
    send_now(c, 5);
    ck_assert_int_eq(weave_cancel(t), 0);
    WT_JOIN(t);
    ck_assert_int_eq(r.ret, 0);
    ck_assert_int_eq(r.val, 5);
    /* A sender whose element was taken. */
    t = start(&s);
    ck_assert_int_eq(recv_now(c), 6);
    ck_assert_int_eq(weave_cancel(t), 0);
    WT_JOIN(t);
    ck_assert_int_eq(s.ret, 0);
    /* A sender whose element moved into the buffer. */
    send_now(b, 7);
    t = start(&sb);
    ck_assert_int_eq(recv_now(b), 7);
    ck_assert_int_eq(weave_cancel(t), 0);
    WT_JOIN(t);
    ck_assert_int_eq(sb.ret, 0);
    ck_assert_int_eq(recv_now(b), 8);
    /* A select whose RECV was served. */
    sel_init(&sl, -1);
    sel_add(&sl, recv_case(c, &sl.in[0]));
    t = sel_start(&sl);
    send_now(c, 9);
    ck_assert_int_eq(weave_cancel(t), 0);
    WT_JOIN(t);
    ck_assert_int_eq(sl.ret, 0);
    ck_assert_int_eq(sl.cs[0].err, 0);
    ck_assert_int_eq(sl.in[0], 9);

    ck_assert_int_eq(weave_chan_free(c), 0);
    ck_assert_int_eq(weave_chan_free(b), 0);
    WT_ASSERT_IDLE();
}

WT_TEST(timeout_variants)
{
    weave_chan *rv = new_chan(sizeof(long), 0), *b = new_chan(sizeof(long), 1);
    struct op s = op_send(rv, 8);
    weave_task *t;
    int64_t t0;
    long v = 5;

    /* Not ready: ETIMEDOUT, never before the timeout. */
    t0 = wt_now_ns();
    WT_FAILS(weave_chan_send_timeout(rv, &v, 30), ETIMEDOUT);
    ck_assert_int_ge(wt_now_ns() - t0, 30 * MS);
    t0 = wt_now_ns();
    WT_FAILS(weave_chan_recv_timeout(b, &v, 30), ETIMEDOUT);
    ck_assert_int_ge(wt_now_ns() - t0, 30 * MS);
    ck_assert_int_eq(v, 5);
    /* Timeout 0 does not block: what can complete at once does, what
     * cannot fails at once with ETIMEDOUT, taking or putting nothing. */
    t0 = wt_now_ns();
    WT_FAILS(weave_chan_send_timeout(rv, &v, 0), ETIMEDOUT);
    WT_FAILS(weave_chan_recv_timeout(rv, &v, 0), ETIMEDOUT);
    ck_assert_int_eq(weave_chan_send_timeout(b, &v, 0), 0);
    ck_assert_uint_eq(weave_chan_len(b), 1);
    WT_FAILS(weave_chan_send_timeout(b, &v, 0), ETIMEDOUT);
    v = SENTINEL;
    ck_assert_int_eq(weave_chan_recv_timeout(b, &v, 0), 0);
    ck_assert_int_eq(v, 5);
    WT_FAILS(weave_chan_recv_timeout(b, &v, 0), ETIMEDOUT);
    ck_assert_uint_eq(weave_chan_len(b), 0);
    ck_assert_int_eq(v, 5);
    send_now(b, 6);
    ck_assert_int_lt(wt_ms_since(t0), WT_PROMPT_MS);
    /* Ready with a timeout left: success at once. */
    v = SENTINEL;
    ck_assert_int_eq(weave_chan_recv_timeout(b, &v, 1000), 0);
    ck_assert_int_eq(v, 6);
    v = 5;
    ck_assert_int_eq(weave_chan_send_timeout(b, &v, 1000), 0);
    ck_assert_int_eq(recv_now(b), 5);
    /* Served before the timeout: success, at the partner's time. */
    s.timeout = 10000;
    t = start(&s);
    ck_assert_int_eq(weave_sleep(10), 0);
    v = SENTINEL;
    ck_assert_int_eq(weave_chan_recv_timeout(rv, &v, -1), 0);
    ck_assert_int_eq(v, 8);
    WT_JOIN(t);
    ck_assert_int_eq(s.ret, 0);
    ck_assert_int_lt((s.returned_ns - s.t0_ns) / MS, WT_PROMPT_MS);
    /* A bad timeout. */
    WT_FAILS(weave_chan_send_timeout(b, &v, -2), EINVAL);
    WT_FAILS(weave_chan_recv_timeout(b, &v, -100), EINVAL);
    ck_assert_uint_eq(weave_chan_len(b), 0);
    ck_assert_uint_eq(wt_stats().timers_pending, 0);
    ck_assert_int_eq(weave_chan_free(rv), 0);
    ck_assert_int_eq(weave_chan_free(b), 0);
    WT_ASSERT_IDLE();
}

/* ======================================================================== */
/*  Teardown with waiters queued                                            */
/* ======================================================================== */

#define TD_OPS  6
#define TD_MANY 17

static struct op td_ops[TD_OPS];
static struct sel td_sel;
static weave_chan *td_rv, *td_buf, *td_empty, *td_many[TD_MANY];

static void *m_teardown(void *arg)
{
    (void)arg;
    td_rv = new_chan(sizeof(long), 0);
    td_buf = new_chan(sizeof(long), 2);
    td_empty = new_chan(sizeof(long), 2);
    send_now(td_buf, 1);
    send_now(td_buf, 2);
    td_ops[0] = op_send(td_rv, 10);
    td_ops[1] = op_send(td_rv, 11);
    td_ops[2] = op_send(td_buf, 3);
    td_ops[3] = op_send(td_buf, 4);
    td_ops[4] = op_recv(td_empty);
    td_ops[5] = op_recv(td_empty);
    for (int i = 0; i < TD_OPS; i++)
        (void)start(&td_ops[i]); /* never joined: weave_run releases them */
    /* A select of more cases than fit on its stack, so that it holds
     * memory while it waits. */
    sel_init(&td_sel, -1);
    for (int i = 0; i < TD_MANY; i++) {
        td_many[i] = new_chan(sizeof(long), 0);
        sel_add(&td_sel, recv_case(td_many[i], &td_sel.in[i]));
    }
    sel_add(&td_sel, send_case(td_rv, &td_sel.out[0]));
    (void)sel_start(&td_sel);
    for (int i = 0; i < TD_OPS; i++)
        ck_assert_int_eq(td_ops[i].done, 0);
    ck_assert_int_eq(td_sel.done, 0);
    ck_assert_uint_eq(wt_stats().tasks_live, TD_OPS + 2);
    /* Return with every other task blocked (so no WT_ASSERT_IDLE here:
     * what is left is the point). */
    return wt_ptr(123);
}

/* What the teardown left in the channels, looked at from a new run. */
static void *m_after_teardown(void *arg)
{
    ck_assert_uint_eq(weave_chan_len(td_buf), 2);
    ck_assert_int_eq(recv_now(td_buf), 1);
    ck_assert_int_eq(recv_now(td_buf), 2);
    assert_nothing(td_buf);
    assert_nothing(td_rv);
    assert_nothing(td_empty);
    return arg;
}

START_TEST(teardown_cancels_blocked_tasks)
{
    returned_so_far = 0;
    ck_assert_ptr_eq(WT_RUN(m_teardown, NULL), wt_ptr(123));
    for (int i = 0; i < TD_OPS; i++)
        assert_failed(&td_ops[i], ECANCELED);
    ck_assert_int_eq(td_ops[4].val, SENTINEL);
    ck_assert_int_eq(td_ops[5].val, SENTINEL);
    ck_assert_int_eq(td_sel.done, 1);
    ck_assert_int_eq(td_sel.ret, -1);
    ck_assert_int_eq(td_sel.err, ECANCELED);
    /* Nothing was taken, dropped or added, and no waiter is left. */
    WT_RUN(m_after_teardown, NULL);
    ck_assert_int_eq(weave_chan_free(td_rv), 0);
    ck_assert_int_eq(weave_chan_free(td_buf), 0);
    ck_assert_int_eq(weave_chan_free(td_empty), 0);
    for (int i = 0; i < TD_MANY; i++)
        ck_assert_int_eq(weave_chan_free(td_many[i]), 0);
}
END_TEST

/* ======================================================================== */
/*  Misuse                                                                  */
/* ======================================================================== */

WT_TEST(misuse_einval)
{
    weave_chan *c = new_chan(sizeof(long), 2), *rv = new_chan(sizeof(long), 0);
    struct op r = op_recv(rv);
    weave_task *t;
    long v = 1;

    WT_FAILS(weave_chan_send(NULL, &v), EINVAL);
    WT_FAILS(weave_chan_recv(NULL, &v), EINVAL);
    WT_FAILS(weave_chan_try_send(NULL, &v), EINVAL);
    WT_FAILS(weave_chan_try_recv(NULL, &v), EINVAL);
    WT_FAILS(weave_chan_send_timeout(NULL, &v, 10), EINVAL);
    WT_FAILS(weave_chan_recv_timeout(NULL, &v, 10), EINVAL);
    WT_FAILS(weave_chan_close(NULL), EINVAL);
    WT_FAILS(weave_chan_free(NULL), EINVAL);
    ck_assert_uint_eq(weave_chan_len(NULL), 0);

    /* A NULL element with elem_size > 0. */
    WT_FAILS(weave_chan_send(c, NULL), EINVAL);
    WT_FAILS(weave_chan_try_send(c, NULL), EINVAL);
    WT_FAILS(weave_chan_send_timeout(c, NULL, 10), EINVAL);
    send_now(c, 4);
    WT_FAILS(weave_chan_recv(c, NULL), EINVAL);
    WT_FAILS(weave_chan_try_recv(c, NULL), EINVAL);
    WT_FAILS(weave_chan_recv_timeout(c, NULL, 10), EINVAL);
    ck_assert_uint_eq(weave_chan_len(c), 1);
    ck_assert_int_eq(recv_now(c), 4);
    /* ... also when a receiver waits: it keeps waiting. */
    t = start(&r);
    WT_FAILS(weave_chan_send(rv, NULL), EINVAL);
    WT_FAILS(weave_chan_try_send(rv, NULL), EINVAL);
    ck_assert_int_eq(weave_yield(), 0);
    ck_assert_int_eq(r.done, 0);
    send_now(rv, 5);
    WT_JOIN(t);
    ck_assert_int_eq(r.val, 5);

    /* elem_size * capacity overflows. */
    WT_FAILS_NULL(weave_chan_new(SIZE_MAX / 2 + 1, 2), EINVAL);
    WT_FAILS_NULL(weave_chan_new(2, SIZE_MAX / 2 + 1), EINVAL);
    WT_FAILS_NULL(weave_chan_new(SIZE_MAX, SIZE_MAX), EINVAL);
    WT_FAILS_NULL(weave_chan_new((size_t)1 << 33, (size_t)1 << 33), EINVAL);

    ck_assert_int_eq(weave_chan_free(c), 0);
    ck_assert_int_eq(weave_chan_free(rv), 0);
    WT_ASSERT_IDLE();
}

static void *m_fill_two(void *arg)
{
    weave_chan *b = arg;

    send_one(b, 1);
    send_one(b, 2); /* left for the next weave_run */
    WT_ASSERT_IDLE();
    return NULL;
}

static void *m_drain_two(void *arg)
{
    weave_chan *b = arg;

    ck_assert_int_eq(recv_one(b), 1);
    ck_assert_int_eq(recv_one(b), 2);
    WT_ASSERT_IDLE();
    return NULL;
}

/* Outside a task every channel call but making, freeing and looking is
 * EPERM (weave.h's one rule), even one that would not have to wait, and
 * changes nothing. */
START_TEST(outside_a_task_eperm)
{
    weave_chan *rv = new_chan(sizeof(long), 0), *b = new_chan(sizeof(long), 2);
    weave_select_case k = recv_case(b, NULL);
    long v = 1;

    WT_FAILS(weave_chan_send(rv, &v), EPERM);
    WT_FAILS(weave_chan_recv(rv, &v), EPERM);
    WT_FAILS(weave_chan_send_timeout(rv, &v, 10), EPERM);
    WT_FAILS(weave_chan_recv_timeout(rv, &v, 10), EPERM);
    WT_FAILS(weave_chan_recv(b, &v), EPERM);
    WT_FAILS(weave_chan_try_send(rv, &v), EPERM);
    WT_FAILS(weave_chan_try_recv(b, &v), EPERM);
    WT_FAILS(weave_select(&k, 1, 0), EPERM);
    WT_FAILS(weave_select(NULL, 0, 0), EPERM);
    /* Calls that would not wait are refused all the same. */
    WT_FAILS(weave_chan_send(b, &v), EPERM);
    WT_FAILS(weave_chan_try_send(b, &v), EPERM);
    WT_FAILS(weave_chan_send_timeout(b, &v, 0), EPERM);
    WT_FAILS(weave_chan_close(b), EPERM);
    ck_assert_uint_eq(weave_chan_len(b), 0);
    /* Used by tasks, then looked at and freed outside. */
    WT_RUN(m_fill_two, b);
    ck_assert_uint_eq(weave_chan_len(b), 2);
    WT_FAILS(weave_chan_recv(b, &v), EPERM);
    WT_RUN(m_drain_two, b);
    ck_assert_uint_eq(weave_chan_len(b), 0);
    ck_assert_int_eq(weave_chan_free(b), 0);
    ck_assert_int_eq(weave_chan_free(rv), 0);
}
END_TEST

/*
 * Another thread's scheduler. Thread A (the test's) runs a scheduler whose
 * task R waits in a receive on xt.c; thread B, once told (a blocking pipe),
 * calls on xt.c first with no scheduler, then from a task of its own
 * scheduler, and says it is done (a pipe A's main waits on with weave).
 * B never touches xt.c while A's tasks run: A is parked in weave_wait_fd.
 */
static struct {
    weave_chan *c;
    int go[2], done[2];
    int b_select; /* B calls weave_select instead of the channel calls */
    int b_run;
} xt;

static void xt_chan_calls(void)
{
    long v = 5;

    WT_FAILS(weave_chan_send(xt.c, &v), EPERM);
    WT_FAILS(weave_chan_try_send(xt.c, &v), EPERM);
    WT_FAILS(weave_chan_send_timeout(xt.c, &v, 0), EPERM);
    WT_FAILS(weave_chan_recv(xt.c, &v), EPERM);
    WT_FAILS(weave_chan_try_recv(xt.c, &v), EPERM);
    WT_FAILS(weave_chan_recv_timeout(xt.c, &v, 0), EPERM);
    WT_FAILS(weave_chan_close(xt.c), EPERM);
    WT_FAILS(weave_chan_free(xt.c), EPERM);     /* A's scheduler runs: not ours to free */
    ck_assert_uint_eq(weave_chan_len(xt.c), 0); /* nor to look at: 0 */
    ck_assert_int_eq(v, 5);
}

static void *xt_b_chan(void *arg)
{
    (void)arg;
    xt_chan_calls();
    WT_ASSERT_IDLE();
    return NULL;
}

static void *xt_b_select(void *arg)
{
    long v = 6;
    weave_select_case k[2] = {send_case(xt.c, &v), recv_case(xt.c, &v)};

    (void)arg;
    /* A's task waits in xt.c's receivers: a SEND case would hand the
     * element to it and wake it from this thread; a RECV case would wait
     * in the same queue as it. */
    WT_FAILS(weave_select(&k[0], 1, 0), EPERM);
    WT_FAILS(weave_select(&k[0], 1, -1), EPERM);
    WT_FAILS(weave_select(&k[1], 1, -1), EPERM);
    WT_FAILS(weave_select(k, 2, -1), EPERM);
    ck_assert_int_eq(v, 6);
    WT_ASSERT_IDLE();
    return NULL;
}

static void *xt_thread(void *arg)
{
    char c;

    (void)arg;
    ck_assert_int_eq((int)read(xt.go[0], &c, 1), 1);
    xt_chan_calls(); /* no scheduler on this thread */
    xt.b_run = weave_run(xt.b_select ? xt_b_select : xt_b_chan, NULL, NULL);
    ck_assert_int_eq((int)write(xt.done[1], "d", 1), 1);
    return NULL;
}

static void *m_foreign(void *arg)
{
    struct op r;
    pthread_t th;
    weave_task *t;

    xt.b_select = (int)wt_int(arg);
    xt.b_run = -42;
    xt.c = new_chan(sizeof(long), 0);
    wt_make_pipe(xt.go, 0);
    wt_make_pipe(xt.done, O_NONBLOCK);
    r = op_recv(xt.c);
    t = start(&r);
    ck_assert_int_eq(r.done, 0);
    ck_assert_int_eq(pthread_create(&th, NULL, xt_thread, NULL), 0);
    put_byte(xt.go[1]);
    ck_assert_int_eq(weave_wait_fd(xt.done[0], WEAVE_IN, -1), WEAVE_IN);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_int_eq(xt.b_run, 0);
    /* B took nothing and gave nothing: R still waits, and works. */
    ck_assert_int_eq(r.done, 0);
    ck_assert_int_eq(r.val, SENTINEL);
    send_now(xt.c, 7);
    WT_JOIN(t);
    ck_assert_int_eq(r.ret, 0);
    ck_assert_int_eq(r.val, 7);
    ck_assert_int_eq(weave_chan_free(xt.c), 0);
    ck_assert_int_eq(weave_close(xt.done[0]), 0);
    close(xt.done[1]);
    close(xt.go[0]);
    close(xt.go[1]);
    WT_ASSERT_IDLE();
    return NULL;
}

START_TEST(other_schedulers_channel_eperm)
{
    WT_RUN(m_foreign, wt_ptr(0));
}
END_TEST

START_TEST(other_schedulers_channel_select_eperm)
{
    WT_RUN(m_foreign, wt_ptr(1));
}
END_TEST

/* ======================================================================== */
/*  Select                                                                  */
/* ======================================================================== */

WT_TEST(select_send_and_recv_cases)
{
    weave_chan *rv = new_chan(sizeof(long), 0), *b = new_chan(sizeof(long), 2);
    struct op r = op_recv(rv), s = op_send(rv, 6);
    weave_select_case k;
    struct sel sl;
    weave_task *t;
    long out = 5, in = SENTINEL;

    /* Ready at the call: a SEND to a waiting receiver... */
    t = start(&r);
    k = send_case(rv, &out);
    ck_assert_int_eq(weave_select(&k, 1, 0), 0);
    ck_assert_int_eq(k.err, 0);
    WT_JOIN(t);
    ck_assert_int_eq(r.val, 5);
    /* ... a RECV from a waiting sender... */
    t = start(&s);
    k = recv_case(rv, &in);
    ck_assert_int_eq(weave_select(&k, 1, -1), 0);
    ck_assert_int_eq(k.err, 0);
    ck_assert_int_eq(in, 6);
    WT_JOIN(t);
    ck_assert_int_eq(s.ret, 0);
    /* ... from a buffer, elem NULL dropping the element... */
    send_now(b, 7);
    send_now(b, 8);
    k = recv_case(b, NULL);
    ck_assert_int_eq(weave_select(&k, 1, 0), 0);
    ck_assert_int_eq(k.err, 0);
    ck_assert_uint_eq(weave_chan_len(b), 1);
    ck_assert_int_eq(recv_now(b), 8);
    /* ... and a SEND into a buffer. */
    k = send_case(b, &out);
    ck_assert_int_eq(weave_select(&k, 1, 0), 0);
    ck_assert_uint_eq(weave_chan_len(b), 1);
    ck_assert_int_eq(recv_now(b), 5);

    /* Waiting: a later send completes a RECV, into its elem. */
    sel_init(&sl, -1);
    sel_add(&sl, recv_case(rv, &sl.in[0]));
    t = sel_start(&sl);
    ck_assert_int_eq(sl.done, 0);
    send_now(rv, 9);
    WT_JOIN(t);
    ck_assert_int_eq(sl.ret, 0);
    ck_assert_int_eq(sl.cs[0].err, 0);
    ck_assert_int_eq(sl.in[0], 9);
    /* A later receive completes a SEND. */
    sel_init(&sl, -1);
    sl.out[0] = 10;
    sel_add(&sl, send_case(rv, &sl.out[0]));
    t = sel_start(&sl);
    ck_assert_int_eq(sl.done, 0);
    ck_assert_int_eq(recv_now(rv), 10);
    WT_JOIN(t);
    ck_assert_int_eq(sl.ret, 0);
    ck_assert_int_eq(sl.cs[0].err, 0);
    /* A waiting RECV with elem NULL takes the element and drops it. */
    sel_init(&sl, -1);
    sel_add(&sl, recv_case(b, NULL));
    t = sel_start(&sl);
    send_now(b, 11);
    WT_JOIN(t);
    ck_assert_int_eq(sl.ret, 0);
    ck_assert_uint_eq(weave_chan_len(b), 0);
    assert_nothing(b);

    ck_assert_int_eq(weave_chan_free(rv), 0);
    ck_assert_int_eq(weave_chan_free(b), 0);
    WT_ASSERT_IDLE();
}

WT_TEST(select_fd_cases)
{
    int p[2], sv[2];
    weave_select_case k;
    struct sel sl;
    weave_task *t;
    int64_t written;
    char ch;

    wt_make_pipe(p, O_NONBLOCK);
    wt_make_socketpair(sv, SOCK_STREAM);
    /* Ready at the call; events says what was seen. */
    k = fd_case(p[0], WEAVE_IN);
    WT_FAILS(weave_select(&k, 1, 0), ETIMEDOUT);
    k = fd_case(p[1], WEAVE_OUT);
    ck_assert_int_eq(weave_select(&k, 1, 0), 0);
    ck_assert_int_eq(k.events, WEAVE_OUT);
    ck_assert_int_eq(k.err, 0);
    put_byte(p[1]);
    k = fd_case(p[0], WEAVE_IN);
    ck_assert_int_eq(weave_select(&k, 1, -1), 0);
    ck_assert_int_eq(k.events, WEAVE_IN);
    ck_assert_int_eq((int)read(p[0], &ch, 1), 1);
    k = fd_case(sv[0], WEAVE_IN | WEAVE_OUT);
    ck_assert_int_eq(weave_select(&k, 1, 0), 0);
    ck_assert_int_eq(k.events, WEAVE_OUT);

    /* Waiting until readable. */
    sel_init(&sl, -1);
    sel_add(&sl, fd_case(p[0], WEAVE_IN));
    t = sel_start(&sl);
    ck_assert_int_eq(weave_sleep(20), 0);
    ck_assert_int_eq(sl.done, 0);
    ck_assert_uint_eq(wt_stats().fd_waiters, 1);
    written = wt_now_ns();
    put_byte(p[1]);
    WT_JOIN(t);
    ck_assert_int_eq(sl.ret, 0);
    ck_assert_int_eq(sl.cs[0].err, 0);
    ck_assert_int_eq(sl.cs[0].events, WEAVE_IN);
    ck_assert_int_ge(sl.returned_ns, written);
    ck_assert_uint_eq(wt_stats().fd_waiters, 0);
    ck_assert_int_eq((int)read(p[0], &ch, 1), 1);

    /* Waiting until writable. */
    wt_fill(p[1]);
    sel_init(&sl, -1);
    sel_add(&sl, fd_case(p[1], WEAVE_OUT));
    t = sel_start(&sl);
    ck_assert_int_eq(weave_sleep(20), 0);
    ck_assert_int_eq(sl.done, 0);
    written = wt_now_ns();
    wt_drain(p[0]);
    WT_JOIN(t);
    ck_assert_int_eq(sl.ret, 0);
    ck_assert_int_eq(sl.cs[0].events, WEAVE_OUT);
    ck_assert_int_ge(sl.returned_ns, written);

    /* Waiting on both directions of a socket: what came is reported. */
    wt_fill(sv[0]);
    sel_init(&sl, -1);
    sel_add(&sl, fd_case(sv[0], WEAVE_IN | WEAVE_OUT));
    t = sel_start(&sl);
    ck_assert_int_eq(weave_sleep(10), 0);
    ck_assert_int_eq(sl.done, 0);
    put_byte(sv[1]);
    WT_JOIN(t);
    ck_assert_int_eq(sl.ret, 0);
    ck_assert_int_ne(sl.cs[0].events & WEAVE_IN, 0);
    ck_assert_int_eq(sl.cs[0].events & ~(WEAVE_IN | WEAVE_OUT), 0);

    ck_assert_int_eq(weave_close(p[0]), 0);
    ck_assert_int_eq(weave_close(p[1]), 0);
    ck_assert_int_eq(weave_close(sv[0]), 0);
    ck_assert_int_eq(weave_close(sv[1]), 0);
    WT_ASSERT_IDLE();
}

static void *sleep_then(void *arg)
{
    ck_assert_int_eq(weave_sleep(wt_int(arg)), 0);
    return wt_ptr(77);
}

WT_TEST(select_task_case)
{
    weave_chan *c = new_chan(sizeof(long), 0);
    struct op r = op_recv(c);
    weave_select_case k[2];
    struct sel sl;
    weave_task *t, *ts;
    int64_t t0;
    long v = SENTINEL;

    /* Completes once the task has ended; the task is still joinable. */
    t = WT_SPAWN(sleep_then, wt_ptr(30));
    t0 = wt_now_ns();
    k[0] = task_case(t);
    ck_assert_int_eq(weave_select(k, 1, -1), 0);
    ck_assert_int_eq(k[0].err, 0);
    ck_assert_int_ge(wt_now_ns() - t0, 30 * MS);
    ck_assert_ptr_eq(WT_JOIN(t), wt_ptr(77));

    /* A task that has ended already: at once. */
    t = WT_SPAWN(wt_nothing, wt_ptr(5));
    ck_assert_int_eq(weave_yield(), 0);
    k[0] = task_case(t);
    ck_assert_int_eq(weave_select(k, 1, 0), 0);
    ck_assert_ptr_eq(WT_JOIN(t), wt_ptr(5));

    /* Not ended by the timeout: ETIMEDOUT, and the task is untouched. */
    t = start(&r);
    k[0] = task_case(t);
    WT_FAILS(weave_select(k, 1, 20), ETIMEDOUT);
    /* Another case completing first leaves the task alone too. */
    ts = WT_SPAWN(sleep_then, wt_ptr(10));
    k[0] = task_case(t);
    k[1] = task_case(ts);
    ck_assert_int_eq(weave_select(k, 2, -1), 1);
    ck_assert_int_eq(r.done, 0);
    ck_assert_ptr_eq(WT_JOIN(ts), wt_ptr(77));
    send_now(c, 3);
    WT_JOIN(t);
    ck_assert_int_eq(r.val, 3);

    /* A select and a join wait for one task: both complete. */
    t = WT_SPAWN(sleep_then, wt_ptr(10));
    sel_init(&sl, -1);
    sel_add(&sl, task_case(t));
    sel_add(&sl, recv_case(c, &v));
    ts = sel_start(&sl);
    ck_assert_ptr_eq(WT_JOIN(t), wt_ptr(77));
    WT_JOIN(ts);
    ck_assert_int_eq(sl.ret, 0);
    ck_assert_int_eq(v, SENTINEL);

    ck_assert_int_eq(weave_chan_free(c), 0);
    WT_ASSERT_IDLE();
}

WT_TEST(select_timeouts)
{
    weave_chan *c = new_chan(sizeof(long), 0);
    weave_select_case k[2];
    weave_deadline d;
    struct sel sl;
    weave_task *t;
    int p[2];
    int64_t t0;

    wt_make_pipe(p, O_NONBLOCK);
    k[0] = recv_case(c, NULL);
    k[1] = fd_case(p[0], WEAVE_IN);
    /* Nothing ready: ETIMEDOUT, not before the timeout. */
    t0 = wt_now_ns();
    WT_FAILS(weave_select(k, 2, 30), ETIMEDOUT);
    ck_assert_int_ge(wt_now_ns() - t0, 30 * MS);
    /* Timeout 0: at once. */
    t0 = wt_now_ns();
    WT_FAILS(weave_select(k, 2, 0), ETIMEDOUT);
    ck_assert_int_lt(wt_ms_since(t0), WT_PROMPT_MS);
    /* n = 0 is a sleep. */
    t0 = wt_now_ns();
    WT_FAILS(weave_select(NULL, 0, 25), ETIMEDOUT);
    ck_assert_int_ge(wt_now_ns() - t0, 25 * MS);
    WT_FAILS(weave_select(NULL, 0, 0), ETIMEDOUT);
    WT_FAILS(weave_select(k, 0, 0), ETIMEDOUT);
    /* A deadline scope: ETIMEDOUT at its deadline... */
    t0 = wt_now_ns();
    weave_deadline_begin(&d, 30);
    WT_FAILS(weave_select(k, 2, -1), ETIMEDOUT);
    ck_assert_int_eq(weave_deadline_end(&d), 1);
    ck_assert_int_ge(wt_now_ns() - t0, 30 * MS);
    /* ... or the select's own timeout, if nearer. */
    weave_deadline_begin(&d, 100000);
    WT_FAILS(weave_select(k, 2, 20), ETIMEDOUT);
    ck_assert_int_eq(weave_deadline_end(&d), 0);
    /* A sleeping select (n = 0, forever) is cancelled promptly. */
    sel_init(&sl, -1);
    t = sel_start(&sl);
    ck_assert_int_eq(weave_sleep(10), 0);
    ck_assert_int_eq(sl.done, 0);
    t0 = wt_now_ns();
    ck_assert_int_eq(weave_cancel(t), 0);
    WT_JOIN(t);
    ck_assert_int_eq(sl.ret, -1);
    ck_assert_int_eq(sl.err, ECANCELED);
    ck_assert_int_lt(wt_ms_since(t0), WT_PROMPT_MS);

    ck_assert_uint_eq(wt_stats().fd_waiters, 0);
    ck_assert_int_eq(weave_chan_free(c), 0);
    ck_assert_int_eq(weave_close(p[0]), 0);
    ck_assert_int_eq(weave_close(p[1]), 0);
    WT_ASSERT_IDLE();
}

WT_TEST(select_closed_channel_epipe)
{
    weave_chan *b = new_chan(sizeof(long), 2), *rv = new_chan(sizeof(long), 0);
    weave_chan *open = new_chan(sizeof(long), 0);
    weave_select_case k;
    struct sel sl;
    weave_task *t;
    long v = SENTINEL, out = 4;

    /* Closed with an element: RECV gets it, then completes with EPIPE. */
    send_now(b, 1);
    ck_assert_int_eq(weave_chan_close(b), 0);
    k = recv_case(b, &v);
    ck_assert_int_eq(weave_select(&k, 1, 0), 0);
    ck_assert_int_eq(k.err, 0);
    ck_assert_int_eq(v, 1);
    v = SENTINEL;
    k = recv_case(b, &v);
    ck_assert_int_eq(weave_select(&k, 1, -1), 0);
    ck_assert_int_eq(k.err, EPIPE);
    ck_assert_int_eq(v, SENTINEL);
    /* SEND on a closed channel: EPIPE, nothing put in. */
    k = send_case(b, &out);
    ck_assert_int_eq(weave_select(&k, 1, -1), 0);
    ck_assert_int_eq(k.err, EPIPE);
    ck_assert_uint_eq(weave_chan_len(b), 0);

    /* Closed under a waiting RECV, next to a case that stays open. */
    sel_init(&sl, -1);
    sel_add(&sl, recv_case(open, &sl.in[0]));
    sel_add(&sl, recv_case(rv, &sl.in[1]));
    t = sel_start(&sl);
    ck_assert_int_eq(weave_chan_close(rv), 0);
    WT_JOIN(t);
    ck_assert_int_eq(sl.ret, 1);
    ck_assert_int_eq(sl.cs[1].err, EPIPE);
    ck_assert_int_eq(sl.in[1], SENTINEL);
    ck_assert_int_eq(weave_chan_free(rv), 0);
    /* Closed under a waiting SEND. */
    rv = new_chan(sizeof(long), 0);
    sel_init(&sl, -1);
    sel_add(&sl, recv_case(open, &sl.in[0]));
    sel_add(&sl, send_case(rv, &sl.out[1]));
    t = sel_start(&sl);
    ck_assert_int_eq(weave_chan_close(rv), 0);
    WT_JOIN(t);
    ck_assert_int_eq(sl.ret, 1);
    ck_assert_int_eq(sl.cs[1].err, EPIPE);

    ck_assert_int_eq(weave_chan_free(open), 0);
    ck_assert_int_eq(weave_chan_free(rv), 0);
    ck_assert_int_eq(weave_chan_free(b), 0);
    WT_ASSERT_IDLE();
}

WT_TEST(select_fd_closed_under_it_ebadf)
{
    weave_chan *c = new_chan(sizeof(long), 0);
    struct sel sl;
    weave_task *t;
    int p[2];

    wt_make_pipe(p, O_NONBLOCK);
    sel_init(&sl, -1);
    sel_add(&sl, recv_case(c, &sl.in[0]));
    sel_add(&sl, fd_case(p[0], WEAVE_IN));
    t = sel_start(&sl);
    ck_assert_int_eq(sl.done, 0);
    ck_assert_int_eq(weave_close(p[0]), 0);
    WT_JOIN(t);
    ck_assert_int_eq(sl.ret, 1);
    ck_assert_int_eq(sl.cs[1].err, EBADF);
    ck_assert_uint_eq(wt_stats().fd_waiters, 0);
    close(p[1]);
    ck_assert_int_eq(weave_chan_free(c), 0);
    WT_ASSERT_IDLE();
}

WT_TEST(select_completes_exactly_one)
{
    weave_chan *b1 = new_chan(sizeof(long), 1), *b2 = new_chan(sizeof(long), 1);
    weave_chan *r1 = new_chan(sizeof(long), 0), *r2 = new_chan(sizeof(long), 0);
    weave_select_case k[2];
    long v1 = SENTINEL, v2 = SENTINEL, out = 30;
    struct sel sl;
    weave_task *t;
    int p[2], q[2];
    int r;

    /* Both ready at the call: exactly one completes. */
    send_now(b1, 1);
    send_now(b2, 2);
    k[0] = recv_case(b1, &v1);
    k[1] = recv_case(b2, &v2);
    r = weave_select(k, 2, 0);
    ck_assert(r == 0 || r == 1);
    ck_assert_uint_eq(weave_chan_len(b1) + weave_chan_len(b2), 1);
    ck_assert_int_eq(r == 0 ? v1 : v2, r == 0 ? 1 : 2);
    ck_assert_int_eq(r == 0 ? v2 : v1, SENTINEL);
    ck_assert_uint_eq(weave_chan_len(r == 0 ? b2 : b1), 1);
    ck_assert_int_eq(recv_now(r == 0 ? b2 : b1), r == 0 ? 2 : 1);

    /* Both become ready while it waits (buffered): the first send goes to
     * the select, the second into the buffer. */
    sel_init(&sl, -1);
    sel_add(&sl, recv_case(b1, &sl.in[0]));
    sel_add(&sl, recv_case(b2, &sl.in[1]));
    t = sel_start(&sl);
    send_now(b1, 11);
    send_now(b2, 12);
    WT_JOIN(t);
    ck_assert_int_eq(sl.ret, 0);
    ck_assert_int_eq(sl.in[0], 11);
    ck_assert_int_eq(sl.in[1], SENTINEL);
    ck_assert_uint_eq(weave_chan_len(b1), 0);
    ck_assert_int_eq(recv_now(b2), 12);

    /* Rendezvous: once one case completed, the other finds nobody. */
    sel_init(&sl, -1);
    sl.out[1] = 22;
    sel_add(&sl, recv_case(r1, &sl.in[0]));
    sel_add(&sl, send_case(r2, &sl.out[1]));
    t = sel_start(&sl);
    ck_assert_int_eq(recv_now(r2), 22);
    WT_FAILS(weave_chan_try_send(r1, &out), EAGAIN);
    WT_JOIN(t);
    ck_assert_int_eq(sl.ret, 1);
    ck_assert_int_eq(sl.in[0], SENTINEL);

    /* Two fds become ready while it waits: one case completes. */
    wt_make_pipe(p, O_NONBLOCK);
    wt_make_pipe(q, O_NONBLOCK);
    sel_init(&sl, -1);
    sel_add(&sl, fd_case(p[0], WEAVE_IN));
    sel_add(&sl, fd_case(q[0], WEAVE_IN));
    t = sel_start(&sl);
    put_byte(p[1]);
    put_byte(q[1]);
    WT_JOIN(t);
    ck_assert(sl.ret == 0 || sl.ret == 1);
    ck_assert_int_eq(sl.cs[sl.ret].events, WEAVE_IN);
    ck_assert_uint_eq(wt_stats().fd_waiters, 0);
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(weave_close(p[i]), 0);
        ck_assert_int_eq(weave_close(q[i]), 0);
    }

    ck_assert_int_eq(weave_chan_free(b1), 0);
    ck_assert_int_eq(weave_chan_free(b2), 0);
    ck_assert_int_eq(weave_chan_free(r1), 0);
    ck_assert_int_eq(weave_chan_free(r2), 0);
    WT_ASSERT_IDLE();
}

#define FAIR_ROUNDS 10000

WT_TEST(select_fair_between_ready_cases)
{
    weave_chan *c[2] = {new_chan(sizeof(long), 1), new_chan(sizeof(long), 1)};
    long v[2];
    weave_select_case k[2];
    long wins[2] = {0, 0};

    send_now(c[0], 0);
    send_now(c[1], 1);
    for (int i = 0; i < FAIR_ROUNDS; i++) {
        int r;

        v[0] = v[1] = SENTINEL;
        k[0] = recv_case(c[0], &v[0]);
        k[1] = recv_case(c[1], &v[1]);
        r = weave_select(k, 2, 0);
        REQUIRE(r == 0 || r == 1);
        REQUIRE(v[r] == r && v[1 - r] == SENTINEL);
        REQUIRE(weave_chan_len(c[1 - r]) == 1);
        wins[r]++;
        REQUIRE(weave_chan_try_send(c[r], &v[r]) == 0);
    }
    /* Each wins 40% to 60% (Go's rule; a fair coin strays this far with
     * probability below 10^-80). */
    ck_assert_int_ge(wins[0], FAIR_ROUNDS * 4 / 10);
    ck_assert_int_le(wins[0], FAIR_ROUNDS * 6 / 10);
    ck_assert_int_ge(wins[1], FAIR_ROUNDS * 4 / 10);
    ck_assert_int_le(wins[1], FAIR_ROUNDS * 6 / 10);
    ck_assert_int_eq(weave_chan_free(c[0]), 0);
    ck_assert_int_eq(weave_chan_free(c[1]), 0);
    WT_ASSERT_IDLE();
}

/* A select on a RECV (rendezvous), a SEND (rendezvous), a RECV (buffered)
 * and an fd gives up; afterwards each channel behaves as if it had never
 * waited. */
static void sel_gives_up(enum give_up how)
{
    weave_chan *r1 = new_chan(sizeof(long), 0), *s2 = new_chan(sizeof(long), 0);
    weave_chan *b3 = new_chan(sizeof(long), 2);
    struct op snd = op_send(r1, 7), rcv = op_recv(s2);
    weave_task *t, *ts, *tr;
    struct sel sl;
    int64_t asked;
    int p[2];
    long v = 1;

    wt_make_pipe(p, O_NONBLOCK);
    sel_init(&sl, how == BY_TIMEOUT ? 30 : -1);
    if (how == BY_SCOPE)
        sl.scope_ms = 30;
    sl.out[1] = 99;
    sel_add(&sl, recv_case(r1, &sl.in[0]));
    sel_add(&sl, send_case(s2, &sl.out[1]));
    sel_add(&sl, recv_case(b3, &sl.in[2]));
    sel_add(&sl, fd_case(p[0], WEAVE_IN));
    t = sel_start(&sl);
    ck_assert_int_eq(sl.done, 0);
    ck_assert_uint_eq(wt_stats().fd_waiters, 1);
    WT_FAILS(weave_chan_free(r1), EBUSY);
    asked = wt_now_ns();
    if (how == BY_CANCEL)
        ck_assert_int_eq(weave_cancel(t), 0);
    WT_JOIN(t);
    ck_assert_int_eq(sl.ret, -1);
    if (how == BY_CANCEL) {
        ck_assert_int_eq(sl.err, ECANCELED);
        ck_assert_int_lt((sl.returned_ns - asked) / MS, WT_PROMPT_MS);
    } else {
        ck_assert_int_eq(sl.err, ETIMEDOUT);
        ck_assert_int_ge(sl.returned_ns - sl.t0_ns, 30 * MS);
    }
    ck_assert_uint_eq(wt_stats().fd_waiters, 0);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(sl.in[i], SENTINEL);

    /* No dead receiver in r1, no dead sender in s2, b3 keeps what comes. */
    WT_FAILS(weave_chan_try_send(r1, &v), EAGAIN);
    assert_nothing(s2);
    send_now(b3, 5);
    ck_assert_uint_eq(weave_chan_len(b3), 1);
    ck_assert_int_eq(recv_now(b3), 5);
    /* A rendezvous send waits for a live receiver, not into the select. */
    ts = start(&snd);
    tr = start(&rcv);
    ck_assert_int_eq(snd.done, 0);
    ck_assert_int_eq(rcv.done, 0);
    ck_assert_int_eq(recv_one(r1), 7);
    send_one(s2, 8);
    WT_JOIN(ts);
    WT_JOIN(tr);
    ck_assert_int_eq(snd.ret, 0);
    ck_assert_int_eq(rcv.val, 8);
    ck_assert_int_eq(sl.in[0], SENTINEL);

    ck_assert_int_eq(weave_chan_free(r1), 0);
    ck_assert_int_eq(weave_chan_free(s2), 0);
    ck_assert_int_eq(weave_chan_free(b3), 0);
    ck_assert_int_eq(weave_close(p[0]), 0);
    ck_assert_int_eq(weave_close(p[1]), 0);
}

WT_TEST(select_that_gave_up_leaves_no_trace)
{
    sel_gives_up(BY_CANCEL);
    sel_gives_up(BY_TIMEOUT);
    sel_gives_up(BY_SCOPE);
    WT_ASSERT_IDLE();
}

WT_TEST(select_errors)
{
    weave_chan *c = new_chan(sizeof(long), 1), *sig = new_chan(0, 1);
    weave_select_case k[2];
    weave_task *t;
    int p[2], closed_fd;
    long v = 3;

    send_now(c, 42);
    wt_make_pipe(p, O_NONBLOCK);
    closed_fd = p[0];
    close(p[0]);
    t = WT_SPAWN(wt_nothing, NULL);
    WT_JOIN(t); /* t is stale now */

    /* EINVAL. */
    WT_FAILS(weave_select(NULL, 1, 0), EINVAL);
    k[0] = recv_case(c, &v);
    WT_FAILS(weave_select(k, 1, -2), EINVAL);
    WT_FAILS(weave_select(NULL, 0, -2), EINVAL);
    k[1] = chan_case(0, c, &v);
    WT_FAILS(weave_select(k, 2, 0), EINVAL);
    k[1] = chan_case(WEAVE_CASE_TASK + 1, c, &v);
    WT_FAILS(weave_select(k, 2, 0), EINVAL);
    k[1] = send_case(NULL, &v);
    WT_FAILS(weave_select(k, 2, 0), EINVAL);
    k[1] = recv_case(NULL, &v);
    WT_FAILS(weave_select(k, 2, 0), EINVAL);
    k[1] = send_case(c, NULL);
    WT_FAILS(weave_select(k, 2, 0), EINVAL);
    k[1] = fd_case(p[1], 0);
    WT_FAILS(weave_select(k, 2, 0), EINVAL);
    k[1] = fd_case(p[1], WEAVE_ERR);
    WT_FAILS(weave_select(k, 2, 0), EINVAL);
    k[1] = fd_case(p[1], WEAVE_OUT | 0x100);
    WT_FAILS(weave_select(k, 2, 0), EINVAL);
    /* EBADF, ESRCH, EDEADLK. */
    k[1] = fd_case(-1, WEAVE_IN);
    WT_FAILS(weave_select(k, 2, 0), EBADF);
    k[1] = fd_case(closed_fd, WEAVE_IN);
    WT_FAILS(weave_select(k, 2, 0), EBADF);
    k[1] = task_case(t);
    WT_FAILS(weave_select(k, 2, 0), ESRCH);
    k[1] = task_case(weave_self());
    WT_FAILS(weave_select(k, 2, 0), EDEADLK);
    /* No error took anything from the ready case next to it. */
    ck_assert_int_eq(v, 3);
    ck_assert_uint_eq(weave_chan_len(c), 1);
    ck_assert_int_eq(k[0].err, -1);

    /* A NULL element is fine to send where elem_size is 0. */
    k[0] = send_case(sig, NULL);
    ck_assert_int_eq(weave_select(k, 1, 0), 0);
    ck_assert_uint_eq(weave_chan_len(sig), 1);

    ck_assert_int_eq(recv_now(c), 42);
    ck_assert_int_eq(weave_chan_free(c), 0);
    ck_assert_int_eq(weave_chan_free(sig), 0);
    close(p[1]);
    WT_ASSERT_IDLE();
}

#define MANY 40

static weave_chan *many[MANY];

static void *send_later(void *arg)
{
    long i = (long)wt_int(arg);

    ck_assert_int_eq(weave_sleep(5), 0);
    send_one(many[i], 1000 + i);
    return NULL;
}

WT_TEST(select_more_than_16_cases)
{
    static weave_select_case k[MANY];
    static long in[MANY];
    static const long picks[] = {0, 15, 16, 17, 39};
    struct sel sl;
    weave_task *t;
    int64_t t0;

    for (int i = 0; i < MANY; i++)
        many[i] = new_chan(sizeof(long), 1);
    /* Waiting on 40 cases: the one that becomes ready completes. */
    for (size_t j = 0; j < sizeof(picks) / sizeof(picks[0]); j++) {
        long want = picks[j];

        for (int i = 0; i < MANY; i++) {
            in[i] = SENTINEL;
            k[i] = recv_case(many[i], &in[i]);
        }
        t = WT_SPAWN(send_later, wt_ptr(want));
        ck_assert_int_eq(weave_select(k, MANY, -1), want);
        ck_assert_int_eq(k[want].err, 0);
        ck_assert_int_eq(in[want], 1000 + want);
        WT_JOIN(t);
        for (int i = 0; i < MANY; i++) {
            if (i != want)
                ck_assert_int_eq(in[i], SENTINEL);
            ck_assert_uint_eq(weave_chan_len(many[i]), 0);
        }
    }
    /* Ready at the call. */
    send_now(many[30], 5);
    ck_assert_int_eq(weave_select(k, MANY, 0), 30);
    ck_assert_int_eq(in[30], 5);
    /* Timing out. */
    t0 = wt_now_ns();
    WT_FAILS(weave_select(k, MANY, 20), ETIMEDOUT);
    ck_assert_int_ge(wt_now_ns() - t0, 20 * MS);
    /* Cancelled while waiting, in a task: no waiter left anywhere. */
    sel_init(&sl, -1);
    for (int i = 0; i < SEL_MAX; i++)
        sel_add(&sl, recv_case(many[i], &sl.in[i]));
    t = sel_start(&sl);
    ck_assert_int_eq(weave_cancel(t), 0);
    WT_JOIN(t);
    ck_assert_int_eq(sl.err, ECANCELED);
    for (int i = 0; i < MANY; i++)
        ck_assert_int_eq(weave_chan_free(many[i]), 0);
    WT_ASSERT_IDLE();
}

/* ======================================================================== */
/*  Stress: exactly-once delivery under cancellation                        */
/* ======================================================================== */

#define ST_SENDERS   4
#define ST_RECEIVERS 4
#define CHAOS_ODDS   64 /* the chaos task strikes once in this many turns */

struct msg {
    uint32_t sender, seq, check, pad;
};

static const struct msg no_msg = {UINT32_MAX, UINT32_MAX, UINT32_MAX, UINT32_MAX};

static uint32_t msg_check(uint32_t sender, uint32_t seq)
{
    return (sender * 0x9e3779b9u) ^ seq ^ 0xa5a5a5a5u;
}

static int msg_none(const struct msg *m)
{
    return memcmp(m, &no_msg, sizeof(*m)) == 0;
}

/* What the chaos task saw when it cancelled a receiver. */
enum { SAW_NOTHING, SAW_BLOCKED, SAW_SERVED };

struct rslot {
    weave_task *t;
    int use_select; /* receive with weave_select instead of weave_chan_recv */
    int in_recv;    /* inside the receive call (parked, or woken and not run) */
    int saw;        /* set by chaos just before it cancels this receiver */
    struct msg buf, spare;
    int64_t last[ST_SENDERS]; /* the last seq this receiver got from each sender */
};

static struct {
    weave_chan *c, *idle; /* the channel; one nobody sends on (select receivers) */
    uint32_t per_sender;
    unsigned char *seen; /* [sender * per_sender + seq]: received */
    uint64_t received, cancels, cancelled_blocked, cancelled_served;
    uint64_t rng;
    int stop;
    struct rslot slot[ST_RECEIVERS];
} st;

static uint64_t st_random(void)
{
    st.rng ^= st.rng >> 12;
    st.rng ^= st.rng << 25;
    st.rng ^= st.rng >> 27;
    return st.rng * 0x2545f4914f6cdd1dull;
}

static void *st_sender(void *arg)
{
    uint32_t id = (uint32_t)wt_int(arg);

    for (uint32_t seq = 0; seq < st.per_sender; seq++) {
        struct msg m = {id, seq, msg_check(id, seq), 0};

        REQUIRE(weave_chan_send(st.c, &m) == 0);
    }
    return NULL;
}

/* One receive; 0, or -1 with *err. */
static int st_recv(struct rslot *r, int *err)
{
    weave_select_case k[2];
    int ret;

    if (!r->use_select) {
        errno = 0;
        ret = weave_chan_recv(st.c, &r->buf);
        *err = errno;
        return ret;
    }
    k[0] = recv_case(st.c, &r->buf);
    k[1] = recv_case(st.idle, &r->spare);
    errno = 0;
    ret = weave_select(k, 2, -1);
    if (ret < 0) {
        *err = errno;
        return -1;
    }
    REQUIRE(ret == 0);
    *err = k[0].err;
    return k[0].err ? -1 : 0;
}

static void *st_receiver(void *arg)
{
    struct rslot *r = arg;

    for (int i = 0; i < ST_SENDERS; i++)
        r->last[i] = -1;
    for (;;) {
        int err = 0, ret, saw;
        struct msg m;

        r->buf = no_msg;
        r->spare = no_msg;
        r->in_recv = 1;
        ret = st_recv(r, &err);
        r->in_recv = 0;
        saw = r->saw;
        r->saw = SAW_NOTHING;
        REQUIRE(msg_none(&r->spare));
        if (ret < 0) {
            /* Gave up (cancelled) or closed: took nothing. */
            REQUIRE(msg_none(&r->buf));
            REQUIRE(saw != SAW_SERVED);
            REQUIRE(err == ECANCELED || err == EPIPE);
            if (saw == SAW_BLOCKED) {
                REQUIRE(err == ECANCELED);
                st.cancelled_blocked++;
            }
            return NULL;
        }
        /* Served, even if cancelled after the element was handed over. */
        REQUIRE(saw != SAW_BLOCKED);
        if (saw == SAW_SERVED)
            st.cancelled_served++;
        m = r->buf;
        REQUIRE(m.sender < ST_SENDERS && m.seq < st.per_sender);
        REQUIRE(m.check == msg_check(m.sender, m.seq) && m.pad == 0);
        /* One receiver gets each sender's messages in their order. (Two
         * receivers may run in another order than they were served.) */
        REQUIRE((int64_t)m.seq > r->last[m.sender]);
        r->last[m.sender] = m.seq;
        REQUIRE(st.seen[(size_t)m.sender * st.per_sender + m.seq] == 0);
        st.seen[(size_t)m.sender * st.per_sender + m.seq] = 1;
        st.received++;
    }
}

static void *st_chaos(void *arg)
{
    (void)arg;
    while (!st.stop) {
        struct rslot *r;

        REQUIRE(weave_yield() == 0);
        if (st_random() % CHAOS_ODDS != 0)
            continue;
        r = &st.slot[st_random() % ST_RECEIVERS];
        /* A receiver inside its call whose buffer is untouched is parked
         * and not served: it must fail with ECANCELED and take nothing.
         * One whose buffer was filled was served before the cancel: it
         * must return its element. */
        if (!r->in_recv)
            r->saw = SAW_NOTHING;
        else
            r->saw = msg_none(&r->buf) ? SAW_BLOCKED : SAW_SERVED;
        REQUIRE(weave_cancel(r->t) == 0);
        REQUIRE(weave_join(r->t, NULL) == 0);
        st.cancels++;
        r->in_recv = 0;
        r->t = weave_spawn(st_receiver, r);
        REQUIRE(r->t != NULL);
    }
    return NULL;
}

static void *m_stress(void *arg)
{
    uint32_t total = WT_ON_VALGRIND ? 100000 : 1000000;
    weave_task *senders[ST_SENDERS], *chaos;

    memset(&st, 0, sizeof(st));
    st.per_sender = total / ST_SENDERS;
    st.seen = calloc(total, 1);
    ck_assert_ptr_nonnull(st.seen);
    st.c = new_chan(sizeof(struct msg), (size_t)wt_int(arg));
    st.idle = new_chan(sizeof(struct msg), 0);
    st.rng = 0x9e3779b97f4a7c15ull + (uint64_t)wt_int(arg);
    for (int i = 0; i < ST_RECEIVERS; i++) {
        st.slot[i].use_select = i % 2;
        st.slot[i].t = WT_SPAWN(st_receiver, &st.slot[i]);
    }
    for (int i = 0; i < ST_SENDERS; i++)
        senders[i] = WT_SPAWN(st_sender, wt_ptr(i));
    chaos = WT_SPAWN(st_chaos, NULL);
    for (int i = 0; i < ST_SENDERS; i++)
        WT_JOIN(senders[i]);
    st.stop = 1;
    WT_JOIN(chaos);
    /* The receivers drain what is left, then get EPIPE. */
    ck_assert_int_eq(weave_chan_close(st.c), 0);
    for (int i = 0; i < ST_RECEIVERS; i++)
        WT_JOIN(st.slot[i].t);

    ck_assert_uint_eq(st.received, total);
    for (uint32_t i = 0; i < total; i++)
        REQUIRE(st.seen[i] == 1);
    /* The chaos did strike, at receivers parked in their call too. */
    ck_assert_uint_gt(st.cancels, 0);
    ck_assert_uint_gt(st.cancelled_blocked, 0);
    free(st.seen);
    ck_assert_int_eq(weave_chan_free(st.c), 0);
    ck_assert_int_eq(weave_chan_free(st.idle), 0);
    WT_ASSERT_IDLE();
    return NULL;
}

START_TEST(stress_rendezvous_exactly_once)
{
    WT_RUN(m_stress, wt_ptr(0));
}
END_TEST

START_TEST(stress_buffered_exactly_once)
{
    WT_RUN(m_stress, wt_ptr(8));
}
END_TEST

/* ======================================================================== */

static Suite *chan_suite(void)
{
    Suite *s = suite_create("chan");
    TCase *tc = tcase_create("chan");
    TCase *sel = tcase_create("select");
    TCase *stress = tcase_create("stress");

    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, rendezvous_hands_over);
    tcase_add_test(tc, buffered_fifo_and_len);
    tcase_add_test(tc, elements_copied_whole);
    tcase_add_test(tc, signal_channels_elem_size_zero);
    tcase_add_test(tc, waiting_senders_served_fifo);
    tcase_add_test(tc, waiting_receivers_served_fifo);
    tcase_add_test(tc, close_delivers_buffer_then_epipe);
    tcase_add_test(tc, close_fails_waiting_senders);
    tcase_add_test(tc, close_fails_waiting_receivers);
    tcase_add_test(tc, free_while_waited_on_ebusy);
    tcase_add_test(tc, try_send_try_recv);
    tcase_add_test(tc, cancelled_waiter_leaves_queue);
    tcase_add_test(tc, deadline_scope_waiter_leaves_queue);
    tcase_add_test(tc, timed_out_waiter_leaves_queue);
    tcase_add_test(tc, cancelled_or_expired_calls_fail_at_once);
    tcase_add_test(tc, served_then_cancelled_keeps_it);
    tcase_add_test(tc, timeout_variants);
    tcase_add_test(tc, teardown_cancels_blocked_tasks);
    tcase_add_test(tc, misuse_einval);
    tcase_add_test(tc, outside_a_task_eperm);
    suite_add_tcase(s, tc);

    tc = tcase_create("threads");
    wt_tag_native(tc);
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, other_schedulers_channel_eperm);
    tcase_add_test(tc, other_schedulers_channel_select_eperm);
    suite_add_tcase(s, tc);

    tcase_set_timeout(sel, 10);
    tcase_add_test(sel, select_send_and_recv_cases);
    tcase_add_test(sel, select_fd_cases);
    tcase_add_test(sel, select_task_case);
    tcase_add_test(sel, select_timeouts);
    tcase_add_test(sel, select_closed_channel_epipe);
    tcase_add_test(sel, select_fd_closed_under_it_ebadf);
    tcase_add_test(sel, select_completes_exactly_one);
    tcase_add_test(sel, select_fair_between_ready_cases);
    tcase_add_test(sel, select_that_gave_up_leaves_no_trace);
    tcase_add_test(sel, select_errors);
    tcase_add_test(sel, select_more_than_16_cases);
    suite_add_tcase(s, sel);

    tcase_set_timeout(stress, 60);
    tcase_add_test(stress, stress_rendezvous_exactly_once);
    tcase_add_test(stress, stress_buffered_exactly_once);
    suite_add_tcase(s, stress);
    return s;
}

int main(void)
{
    return wt_main(chan_suite());
}
