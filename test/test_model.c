/*
 * test_model.c - a randomized model test of the public API, on one
 * scheduler ("model") and on two, each on a thread of its own ("two").
 *
 * A seeded PRNG (splitmix64, no rand()) drives a few root tasks through
 * random sequences of operations: spawn, sleep, yield, cancel, join,
 * detach, deadline scopes and shields, channel send/recv/close (buffered
 * and rendezvous, plain, timed and non-blocking), weave_select, mutexes
 * (plain, timed, try), a condition variable, a semaphore, an event and
 * task groups (spawn, spawn_detached, fail, cancel, wait, result, free).
 * Spawned tasks run short random sequences of their own, nested scopes
 * and groups included.
 *
 * A simple model checks every call and the end of the run:
 *
 *   - every call returns 0 (or its documented value) or -1 with one of the
 *     errnos its Errors paragraph in weave.h names;
 *   - ECANCELED only comes to a task that weave_cancelled reports
 *     cancelled and that has no shield up; ETIMEDOUT only once its own
 *     timeout or the deadline of an unshielded scope has passed; and a
 *     blocking call made by a cancelled task, or after a scope's deadline,
 *     fails (the join of an ended task and weave_group_free excepted);
 *   - no timer fires early: a sleep of d that returns 0 returns no sooner
 *     than d after the call, on weave_now_us; a timeout no sooner than the
 *     timeout; weave_deadline_end reports 1 only after the deadline and 0
 *     only before it;
 *   - no message is lost or duplicated: every value sent is unique, a
 *     ledger marks values accepted (a send that returned 0) and received;
 *     a value is received at most once, at the end every accepted value was
 *     received exactly once (by a task, or by the final drain of the closed
 *     channels) and no value whose send failed was ever received;
 *   - no lock has two owners: a holder counter per mutex, checked on every
 *     acquire, and the semaphore's holders never exceed its permits; a
 *     condition wait that returns 0 was preceded by a signal, an event wait
 *     that returns 0 by a set;
 *   - a joined task returns what it was given, a group member's result is
 *     there once the group waited for it, and every member has ended once
 *     weave_group_free returns;
 *   - every task ends: weave_run returns 0 and weave_get_stats shows nothing
 *     left but the main task.
 *
 * Progress: a plain wait (no timeout) can find nobody to wake it, so the
 * main task watches the operation count and, when it has stalled for a
 * tick, kicks: it cancels one spawned task, offers and takes an element on
 * every channel, broadcasts the condition and sets the event. At the end
 * it cancels every task that is left and kicks until they have ended.
 *
 * The run uses the virtual clock (WEAVE_VIRTUAL_CLOCK): every wait is on
 * timers, channels or locks, so sleeps and timeouts of seconds cost nothing
 * and a seed replays the same run. Each run prints one line on stderr:
 *
 *     model: seed=0x... ops=N tasks=M time=<wall>s vtime=<virtual>s
 *
 * Two schedulers ("two"). The model's scheduler runs as above, and a
 * second one, the remote, runs on a thread of its own (weave_sched_new,
 * weave_sched_run) with RWORKERS worker tasks of its own, replaced as they
 * end and cancelled now and then by its main. The two sides meet through:
 *
 *   - NSHARED shared channels (rendezvous and buffered), on which tasks of
 *     both sides send, receive (plain on the model's side, timed, try),
 *     select (the model's selects mix them with its local channels) and
 *     close (a closed one is replaced);
 *   - weave_post both ways: a posted task sends or receives one value on a
 *     shared channel, with a timeout;
 *   - weave_call both ways: the called function sleeps a little (checked
 *     like any sleep, and cancelled when its caller stops waiting) and may
 *     try_send a value, and returns its argument + 1, which the caller
 *     checks when the call returns 0.
 *
 * Every call of either side is checked by the rules above (its errnos,
 * ECANCELED and ETIMEDOUT only when due: weave_call and weave_post are
 * never refused with ESRCH, since each side runs until the other is done);
 * the one ledger (under a lock) takes the values of both sides, so no
 * value is lost or duplicated between them either; and at the end each
 * scheduler holds nothing but its main, every task it started for the
 * other side (every post and call) counted in weave_get_stats's spawns,
 * and the remote's weave_sched_run returns 0. The model's scheduler is
 * reachable from another thread, so its virtual clock cannot jump: a two
 * run uses the real clock. A seed fixes each side's random choices, not
 * how the two threads interleave, so it replays the same program but not
 * the same run. Each two run prints a second line, with the remote's
 * operations and the posts and calls between the two.
 *
 * Environment:
 *   WEAVE_MODEL_SEED=0x...  replay one seed (the first loop test of each
 *                           TCase runs it, the others are skipped);
 *   WEAVE_MODEL_OPS=N       operations per seed (the model's side).
 *
 * CI runs SEEDS (4) fixed seeds of 25,000 operations each, 10^5 in all, in
 * the plain and sanitizer builds; under valgrind 2,000 each. Two runs: 4
 * seeds of 25,000 operations of the model's side (some 15,000 of the
 * remote's); 4,000 under ThreadSanitizer, where every task is a thread and
 * a process can make some 8000; 1,000 under valgrind.
 *
 * The long run, 10^7 operations (4 seeds x 2.5 million), in a release-like
 * or Debug build:
 *
 *     WEAVE_MODEL_OPS=2500000 CK_TIMEOUT_MULTIPLIER=100 build/debug/test/test_model
 *
 * Check timeouts: "model" 60 s x 4 + "two" 60 s x 4 = 480 s; the CTest
 * timeout in CMakeLists.txt (540 s) is above it.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weave_test.h"

#define SEEDS       4
#define OPS_CI      25000
#define OPS_VG      2000
#define ROOTS       6
#define MAX_LIVE    64 /* tasks alive at once, beyond which spawns are skipped */
#define MAX_KIDS    4  /* unjoined children a task keeps */
#define MAX_DEPTH   4  /* spawn nesting */
#define MAX_FRAMES  4  /* scopes and shields open at once in a task */
#define MAX_MEMBERS 4
#define NCHAN       4
#define NMUTEX      2
#define SEM_PERMITS 3
#define GRAVE       16        /* stale handles kept to cancel (ESRCH) */
#define TICK_MS     20        /* the main task's stall check */
#define NEVER       INT64_MAX /* a deadline that never comes */

/* The second scheduler ("two" runs). */
#define OPS_TWO_CI   25000
#define OPS_TWO_TSAN 4000 /* every task a thread: TSan holds some 8000 */
#define OPS_TWO_VG   1000
#define NSHARED      2 /* shared channels, capacities 0 and 4 */
#define RWORKERS     4 /* the remote scheduler's worker tasks */
#define R_TICK_MS    5 /* the remote main's turn */

/* Waits for the other side that only catch hangs. */
#define BOUND_MS (WT_ON_VALGRIND ? 120000 : 20000)

/* ---- the PRNG -------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));

    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* ---- the model ------------------------------------------------------------- */

enum kind { ROOT, CHILD, MEMBER, MEMBER_DETACHED };
enum frame_kind { F_DEADLINE, F_SHIELD };

struct frame {
    enum frame_kind kind;
    int64_t lo, hi; /* the deadline lies in [lo, hi], weave_now_us; NEVER: none */
};

/* A task, as the model sees it. Freed by whoever releases the handle. */
struct mtask {
    weave_task *h;
    enum kind kind;
    int depth;     /* spawn nesting: roots 0 */
    int ops_left;  /* for tasks other than roots */
    bool detached; /* weave_detach succeeded on it */
    bool ended;    /* its function has returned (set just before) */
    int reg;       /* index in model.reg, or -1 */
    struct mtask *kids[MAX_KIDS];
    int nkids;
    struct frame frames[MAX_FRAMES];
    int nframes;
};

/* One channel slot: closing a channel retires it and opens a new one. */
struct chan_slot {
    weave_chan *c;
    size_t cap;
};

static struct model {
    uint64_t rng;
    uint64_t seed;
    uint64_t ops, ops_max;
    uint64_t tasks;     /* spawned, roots included */
    uint64_t live;      /* model tasks that have not ended */
    bool stopping;      /* the budget is spent: tasks wind down */
    struct mtask **reg; /* tasks whose handle is valid, roots excepted */
    size_t nreg, capreg;
    weave_task *grave[GRAVE];
    size_t ngrave;

    struct chan_slot chans[NCHAN];
    weave_chan **retired; /* closed channels, drained at the end */
    size_t nretired, capretired;
    pthread_mutex_t ledger;    /* next_value, accepted, recvd: both threads */
    uint64_t next_value;       /* values sent are 1, 2, ... */
    uint8_t *accepted, *recvd; /* [value]: send returned 0; times received */
    size_t capvalues;

    /* "two" runs: a second scheduler, the remote, on a thread of its own. */
    bool two;
    pthread_mutex_t shlock;           /* shared[].c and sretired: both threads */
    struct chan_slot shared[NSHARED]; /* closing one replaces it, as chans */
    weave_chan **sretired;            /* closed shared channels */
    size_t nsretired, capsretired;
    weave_sched *msched, *rsched; /* this run's scheduler and the remote's */
    pthread_t rthread;
    int rret, rerr;                  /* weave_sched_run's result on the remote */
    weave_chan *rdone;               /* shared: the remote's main closes it as it ends */
    atomic_int remote_stop;          /* the model is done: the remote winds down */
    atomic_ulong m2r_posts, m2r_ran; /* posts to the remote; those that ran */
    atomic_ulong r2m_posts;          /* posts from the remote */
    uint64_t r2m_ran;                /* and those that ran here */
    uint64_t foreign;                /* tasks started here for the remote */
    atomic_ulong n_call, n_post;     /* weave_call and weave_post, both ways */

    weave_mutex mtx[NMUTEX];
    int holders[NMUTEX];
    weave_cond cond; /* with mtx[0] */
    uint64_t cond_tokens, cond_signals;
    weave_sem sem;
    int sem_held;
    weave_event ev;
    uint64_t ev_sets;

    int64_t vstart, vend; /* weave_now_us as the run began and ended */
    uint64_t n_ok, n_canceled, n_timedout, n_pipe, n_recvd; /* outcomes, printed (atomic) */
} m;

/* The remote scheduler's own state, touched by its thread alone. */
static struct remote {
    uint64_t rng;
    uint64_t ops, tasks; /* operations done; tasks spawned by its main */
    uint64_t foreign;    /* tasks started there for the model (posts, calls) */
    bool stopping;
    struct mtask *workers[RWORKERS];
} rm;

static uint64_t rnd(uint64_t n)
{
    return n ? splitmix64(&m.rng) % n : 0;
}

static bool chance(unsigned percent)
{
    return rnd(100) < percent;
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);

    ck_assert_ptr_nonnull(q);
    return q;
}

/* ---- the registry of valid handles, and stale ones ------------------------- */

static void reg_add(struct mtask *t)
{
    if (m.nreg == m.capreg) {
        m.capreg = m.capreg ? 2 * m.capreg : 64;
        m.reg = xrealloc(m.reg, m.capreg * sizeof(*m.reg));
    }
    t->reg = (int)m.nreg;
    m.reg[m.nreg++] = t;
}

/* t's handle goes stale: out of the registry, into the graveyard. */
static void reg_stale(struct mtask *t)
{
    ck_assert_int_ge(t->reg, 0);
    m.reg[t->reg] = m.reg[--m.nreg];
    m.reg[t->reg]->reg = t->reg;
    t->reg = -1;
    m.grave[m.ngrave++ % GRAVE] = t->h;
}

/* ---- the ledger of channel values ------------------------------------------ */

static uint64_t new_value(void)
{
    uint64_t v;

    pthread_mutex_lock(&m.ledger);
    v = ++m.next_value;
    if (v >= m.capvalues) {
        size_t n = m.capvalues ? 2 * m.capvalues : 4096;

        m.accepted = xrealloc(m.accepted, n);
        m.recvd = xrealloc(m.recvd, n);
        memset(m.accepted + m.capvalues, 0, n - m.capvalues);
        memset(m.recvd + m.capvalues, 0, n - m.capvalues);
        m.capvalues = n;
    }
    pthread_mutex_unlock(&m.ledger);
    return v;
}

/* A send of v returned 0. */
static void accept_value(uint64_t v)
{
    pthread_mutex_lock(&m.ledger);
    m.accepted[v] = 1;
    pthread_mutex_unlock(&m.ledger);
}

static void got_value(uint64_t v)
{
    pthread_mutex_lock(&m.ledger);
    ck_assert_msg(v >= 1 && v <= m.next_value, "received value %" PRIu64 " never sent", v);
    ck_assert_msg(++m.recvd[v] == 1, "value %" PRIu64 " received twice", v);
    m.n_recvd++;
    pthread_mutex_unlock(&m.ledger);
}

/* ---- checking calls ---------------------------------------------------------- */

/* The deadline of the task's scopes that applies now: the nearest among
 * those begun since its innermost shield. */
static void scope_deadline(const struct mtask *me, int64_t *lo, int64_t *hi)
{
    *lo = *hi = NEVER;
    for (int i = me->nframes - 1; i >= 0; i--) {
        if (me->frames[i].kind == F_SHIELD)
            break;
        if (me->frames[i].lo < *lo)
            *lo = me->frames[i].lo;
        if (me->frames[i].hi < *hi)
            *hi = me->frames[i].hi;
    }
}

static bool shielded(const struct mtask *me)
{
    for (int i = 0; i < me->nframes; i++)
        if (me->frames[i].kind == F_SHIELD)
            return true;
    return false;
}

static bool cancelled(void)
{
    int c = weave_cancelled(weave_self());

    ck_assert_int_ge(c, 0);
    return c == 1;
}

/* A blocking call in progress: what held when it began. */
struct call {
    const char *what;
    int64_t t0;     /* weave_now_us before the call */
    int64_t own_lo; /* t0 + its own timeout, or NEVER */
    bool must_fail; /* cancelled, or past a deadline, when it began */
};

static struct call begin_call(const struct mtask *me, const char *what, int64_t timeout_us)
{
    struct call c = {what, weave_now_us(), NEVER, false};
    int64_t lo, hi;

    if (timeout_us >= 0)
        c.own_lo = c.t0 + timeout_us;
    scope_deadline(me, &lo, &hi);
    c.must_fail = (cancelled() && !shielded(me)) || c.t0 >= hi;
    return c;
}

static bool err_in(int err, const int *allowed)
{
    for (; *allowed; allowed++)
        if (*allowed == err)
            return true;
    return false;
}

static const int E_WAIT[] = {ECANCELED, ETIMEDOUT, 0};
static const int E_CHAN[] = {EPIPE, ECANCELED, ETIMEDOUT, 0};

/* Check how a blocking call ended: r is its result (0 or -1), err its
 * errno. Cancellation and deadlines fail a call with ECANCELED or
 * ETIMEDOUT; other errnos in allowed are the call's own (EPIPE). */
static void end_call(const struct mtask *me, const struct call *c, int r, int err,
                     const int *allowed)
{
    int64_t now = weave_now_us(), lo, hi;

    __atomic_add_fetch(&m.n_ok, r == 0, __ATOMIC_RELAXED);
    __atomic_add_fetch(&m.n_canceled, r == -1 && err == ECANCELED, __ATOMIC_RELAXED);
    __atomic_add_fetch(&m.n_timedout, r == -1 && err == ETIMEDOUT, __ATOMIC_RELAXED);
    __atomic_add_fetch(&m.n_pipe, r == -1 && err == EPIPE, __ATOMIC_RELAXED);
    if (r == 0) {
        ck_assert_msg(!c->must_fail, "%s succeeded though cancelled or past a deadline", c->what);
        return;
    }
    ck_assert_msg(r == -1, "%s returned %d", c->what, r);
    ck_assert_msg(err_in(err, allowed), "%s failed with errno %d (%s)", c->what, err,
                  strerror(err));
    if (err == ECANCELED)
        ck_assert_msg(cancelled() && !shielded(me), "%s: ECANCELED in a task not cancelled",
                      c->what);
    if (err == ETIMEDOUT) {
        scope_deadline(me, &lo, &hi);
        if (c->own_lo < lo)
            lo = c->own_lo;
        ck_assert_msg(lo != NEVER, "%s: ETIMEDOUT without a timeout or deadline", c->what);
        ck_assert_msg(now >= lo, "%s: ETIMEDOUT %" PRId64 " us early", c->what, lo - now);
    }
}

/* ---- operations -------------------------------------------------------------- */

static void random_op(struct mtask *me);
static void *task_fn(void *arg);

/* A timeout in ms: 0 (poll) often, else short or long; never -1. */
static int64_t rnd_timeout(void)
{
    uint64_t k = rnd(10);

    if (k < 2)
        return 0;
    if (k < 6)
        return 1 + (int64_t)rnd(5);
    return 5 + (int64_t)rnd(200);
}

static struct mtask *new_mtask(enum kind kind, int depth)
{
    struct mtask *t = calloc(1, sizeof(*t));

    ck_assert_ptr_nonnull(t);
    t->kind = kind;
    t->depth = depth;
    t->ops_left = 1 + (int)rnd(10);
    t->reg = -1;
    m.tasks++;
    m.live++;
    return t;
}

static void op_spawn(struct mtask *me)
{
    struct mtask *k;

    if (me->nkids == MAX_KIDS || m.live >= MAX_LIVE || me->depth >= MAX_DEPTH)
        return;
    k = new_mtask(CHILD, me->depth + 1);
    k->h = weave_spawn(task_fn, k);
    ck_assert_msg(k->h != NULL, "weave_spawn: errno %d", errno);
    reg_add(k);
    me->kids[me->nkids++] = k;
}

static void drop_kid(struct mtask *me, int i)
{
    me->kids[i] = me->kids[--me->nkids];
}

/* The handle of a joined or released task is stale; its record goes. */
static void release(struct mtask *t)
{
    reg_stale(t);
    free(t);
}

static void detach_kid(struct mtask *me, int i)
{
    struct mtask *k = me->kids[i];

    ck_assert_int_eq(weave_detach(k->h), 0);
    drop_kid(me, i);
    if (k->ended)
        release(k); /* released at once */
    else
        k->detached = true; /* it releases itself as it ends */
}

/* Join kid i; returns whether it was joined. */
static bool join_kid(struct mtask *me, int i)
{
    struct mtask *k = me->kids[i];
    bool was_ended = k->ended;
    struct call c = begin_call(me, "weave_join", -1);
    void *res = NULL;
    int r;

    errno = 0;
    r = weave_join(k->h, &res);
    if (was_ended) {
        ck_assert_msg(r == 0, "weave_join of an ended task: errno %d", errno);
    } else {
        end_call(me, &c, r, errno, E_WAIT);
    }
    if (r != 0)
        return false;
    ck_assert_msg(k->ended, "weave_join returned before the task ended");
    ck_assert_ptr_eq(res, k);
    drop_kid(me, i);
    release(k);
    return true;
}

static void op_join(struct mtask *me)
{
    if (me->nkids > 0)
        join_kid(me, (int)rnd((uint64_t)me->nkids));
}

static void op_detach(struct mtask *me)
{
    if (me->nkids > 0)
        detach_kid(me, (int)rnd((uint64_t)me->nkids));
}

static void op_cancel(struct mtask *me)
{
    (void)me;
    if (m.ngrave > 0 && chance(20)) {
        weave_task *h = m.grave[rnd(m.ngrave < GRAVE ? m.ngrave : GRAVE)];

        WT_FAILS(weave_cancel(h), ESRCH);
        return;
    }
    if (m.nreg > 0 && chance(15)) {
        struct mtask *t = m.reg[rnd(m.nreg)];

        ck_assert_int_eq(weave_cancel(t->h), 0);
        if (!t->ended)
            ck_assert_int_eq(weave_cancelled(t->h), 1);
    }
}

static void op_sleep(struct mtask *me)
{
    bool us = chance(30);
    int64_t d = us ? (int64_t)rnd(20000) : (int64_t)rnd(30);
    int64_t d_us = us ? d : d * 1000;
    struct call c = begin_call(me, "weave_sleep", -1);
    int r;

    errno = 0;
    r = us ? weave_sleep_us(d) : weave_sleep(d);
    end_call(me, &c, r, errno, E_WAIT);
    if (r == 0)
        ck_assert_msg(weave_now_us() >= c.t0 + d_us, "a sleep of %" PRId64 " us woke early", d_us);
}

static void op_yield(struct mtask *me)
{
    struct call c = begin_call(me, "weave_yield", -1);
    int r;

    errno = 0;
    r = weave_yield();
    end_call(me, &c, r, errno, E_WAIT);
}

static void op_send(struct mtask *me)
{
    struct chan_slot *cs = &m.chans[rnd(NCHAN)];
    weave_chan *ch = cs->c;
    uint64_t v = new_value();
    uint64_t how = rnd(4);
    int64_t to = rnd_timeout();
    struct call c;
    int r;

    if (how == 0) { /* try_send: not a blocking call */
        errno = 0;
        r = weave_chan_try_send(ch, &v);
        if (r != 0) {
            ck_assert_int_eq(r, -1);
            ck_assert_msg(errno == EAGAIN || errno == EPIPE, "try_send: errno %d", errno);
        }
    } else {
        c = begin_call(me, "weave_chan_send", how == 1 ? to * 1000 : -1);
        errno = 0;
        r = how == 1 ? weave_chan_send_timeout(ch, &v, to) : weave_chan_send(ch, &v);
        end_call(me, &c, r, errno, E_CHAN);
    }
    if (r == 0)
        accept_value(v);
}

static void op_recv(struct mtask *me)
{
    weave_chan *ch = m.chans[rnd(NCHAN)].c;
    uint64_t v = 0, how = rnd(4);
    int64_t to = rnd_timeout();
    struct call c;
    int r;

    if (how == 0) {
        errno = 0;
        r = weave_chan_try_recv(ch, &v);
        if (r != 0) {
            ck_assert_int_eq(r, -1);
            ck_assert_msg(errno == EAGAIN || errno == EPIPE, "try_recv: errno %d", errno);
        }
    } else {
        c = begin_call(me, "weave_chan_recv", how == 1 ? to * 1000 : -1);
        errno = 0;
        r = how == 1 ? weave_chan_recv_timeout(ch, &v, to) : weave_chan_recv(ch, &v);
        end_call(me, &c, r, errno, E_CHAN);
    }
    if (r == 0)
        got_value(v);
}

static void retire(weave_chan *c)
{
    if (m.nretired == m.capretired) {
        m.capretired = m.capretired ? 2 * m.capretired : 16;
        m.retired = xrealloc(m.retired, m.capretired * sizeof(*m.retired));
    }
    m.retired[m.nretired++] = c;
}

/* Close a channel: its slot gets a new one of the same capacity. Now and
 * then close a retired channel again, which is EPIPE. */
static void op_close(struct mtask *me)
{
    struct chan_slot *cs = &m.chans[rnd(NCHAN)];

    (void)me;
    if (m.nretired > 0 && chance(20)) {
        WT_FAILS(weave_chan_close(m.retired[rnd(m.nretired)]), EPIPE);
        return;
    }
    if (!chance(25))
        return;
    ck_assert_int_eq(weave_chan_close(cs->c), 0);
    retire(cs->c);
    cs->c = weave_chan_new(sizeof(uint64_t), cs->cap);
    ck_assert_ptr_nonnull(cs->c);
}

/* Shared channel i as it is now (another thread may close and replace
 * it; a retired one stays valid until the end of the run). */
static weave_chan *shared_chan(int i)
{
    weave_chan *c;

    pthread_mutex_lock(&m.shlock);
    c = m.shared[i].c;
    pthread_mutex_unlock(&m.shlock);
    return c;
}

/* A channel for a select case: a local one, or in "two" runs a shared
 * one as well (select mixes them). */
static weave_chan *any_chan(void)
{
    uint64_t i;

    if (!m.two)
        return m.chans[rnd(NCHAN)].c;
    i = rnd(NCHAN + NSHARED);
    return i < NCHAN ? m.chans[i].c : shared_chan((int)(i - NCHAN));
}

static void op_select(struct mtask *me)
{
    weave_select_case cases[2];
    uint64_t out = new_value(), in = 0;
    int64_t to = chance(20) ? -1 : rnd_timeout();
    struct call c;
    int r;

    memset(cases, 0, sizeof(cases));
    cases[0].op = WEAVE_CASE_SEND;
    cases[0].chan = any_chan();
    cases[0].elem = &out;
    cases[1].op = WEAVE_CASE_RECV;
    cases[1].chan = any_chan();
    cases[1].elem = &in;
    c = begin_call(me, "weave_select", to >= 0 ? to * 1000 : -1);
    errno = 0;
    r = weave_select(cases, 2, to);
    end_call(me, &c, r >= 0 ? 0 : r, errno, E_WAIT);
    if (r < 0)
        return;
    ck_assert_int_le(r, 1);
    ck_assert_msg(cases[r].err == 0 || cases[r].err == EPIPE, "select case err %d", cases[r].err);
    if (cases[r].err)
        return;
    if (r == 0)
        accept_value(out);
    else
        got_value(in);
}

/* What a task does while it holds a lock: yield or sleep a little. */
static void hold_a_while(struct mtask *me)
{
    for (uint64_t n = rnd(3); n > 0; n--) {
        if (chance(50))
            op_yield(me);
        else
            op_sleep(me);
    }
}

static void got_mutex(int i)
{
    ck_assert_msg(m.holders[i] == 0, "mutex %d has two owners", i);
    m.holders[i] = 1;
}

static void put_mutex(int i)
{
    ck_assert_int_eq(m.holders[i], 1);
    m.holders[i] = 0;
    ck_assert_int_eq(weave_mutex_unlock(&m.mtx[i]), 0);
}

/* Lock mutex i one way or another; returns whether it is held. */
static bool lock_mutex(struct mtask *me, int i)
{
    uint64_t how = rnd(3);
    int64_t to = rnd_timeout();
    struct call c;
    int r;

    if (how == 0) {
        errno = 0;
        r = weave_mutex_trylock(&m.mtx[i]);
        if (r != 0) {
            ck_assert_int_eq(r, -1);
            ck_assert_int_eq(errno, EBUSY); /* held, or handed to a waiter */
        }
    } else {
        c = begin_call(me, "weave_mutex_lock", how == 1 ? to * 1000 : -1);
        errno = 0;
        r = how == 1 ? weave_mutex_lock_timeout(&m.mtx[i], to) : weave_mutex_lock(&m.mtx[i]);
        end_call(me, &c, r, errno, E_WAIT);
    }
    if (r == 0)
        got_mutex(i);
    return r == 0;
}

static void op_mutex(struct mtask *me)
{
    int i = (int)rnd(NMUTEX);

    if (!lock_mutex(me, i))
        return;
    hold_a_while(me);
    put_mutex(i);
}

/* Wait on the condition for a token (under mtx[0]), or signal one. */
static void op_cond(struct mtask *me)
{
    if (!lock_mutex(me, 0))
        return;
    if (chance(50)) {
        m.cond_tokens++;
        m.cond_signals++;
        ck_assert_int_eq(chance(70) ? weave_cond_signal(&m.cond) : weave_cond_broadcast(&m.cond),
                         0);
    } else {
        while (m.cond_tokens == 0) {
            bool timed = chance(60);
            int64_t to = rnd_timeout();
            uint64_t signals = m.cond_signals;
            struct call c = begin_call(me, "weave_cond_wait", timed ? to * 1000 : -1);
            int r;

            m.holders[0] = 0;
            errno = 0;
            r = timed ? weave_cond_wait_timeout(&m.cond, &m.mtx[0], to)
                      : weave_cond_wait(&m.cond, &m.mtx[0]);
            got_mutex(0); /* held again, even on error */
            end_call(me, &c, r, errno, E_WAIT);
            if (r != 0)
                break;
            ck_assert_msg(m.cond_signals > signals, "weave_cond_wait woke without a signal");
        }
        if (m.cond_tokens > 0)
            m.cond_tokens--;
    }
    put_mutex(0);
}

static void op_sem(struct mtask *me)
{
    uint64_t how = rnd(3);
    int64_t to = rnd_timeout();
    struct call c;
    int r;

    if (how == 0) {
        errno = 0;
        r = weave_sem_try_acquire(&m.sem);
        if (r != 0) {
            ck_assert_int_eq(r, -1);
            ck_assert_int_eq(errno, EAGAIN);
        }
    } else {
        c = begin_call(me, "weave_sem_acquire", how == 1 ? to * 1000 : -1);
        errno = 0;
        r = how == 1 ? weave_sem_acquire_timeout(&m.sem, to) : weave_sem_acquire(&m.sem);
        end_call(me, &c, r, errno, E_WAIT);
    }
    if (r != 0)
        return;
    ck_assert_msg(++m.sem_held <= SEM_PERMITS, "semaphore: %d holders of %d permits", m.sem_held,
                  SEM_PERMITS);
    hold_a_while(me);
    m.sem_held--;
    ck_assert_int_eq(weave_sem_release(&m.sem), 0);
}

static void op_event(struct mtask *me)
{
    uint64_t k = rnd(4);

    if (k == 0) {
        m.ev_sets++;
        ck_assert_int_eq(weave_event_set(&m.ev), 0);
    } else if (k == 1) {
        ck_assert_int_eq(weave_event_clear(&m.ev), 0);
    } else {
        bool timed = k == 2;
        int64_t to = rnd_timeout();
        uint64_t sets = m.ev_sets;
        int was_set = weave_event_is_set(&m.ev);
        struct call c = begin_call(me, "weave_event_wait", timed ? to * 1000 : -1);
        int r;

        errno = 0;
        r = timed ? weave_event_wait_timeout(&m.ev, to) : weave_event_wait(&m.ev);
        end_call(me, &c, r, errno, E_WAIT);
        if (r == 0)
            ck_assert_msg(was_set == 1 || m.ev_sets > sets, "weave_event_wait woke unset");
    }
}

/* Run 1 to 3 random operations inside a deadline scope or a shield. */
static void op_scope(struct mtask *me)
{
    bool shield = chance(30);
    struct frame *f;
    int64_t b0, now;
    int64_t ms = chance(15) ? -1 : (chance(20) ? 0 : 1 + (int64_t)rnd(100));
    weave_deadline d;
    weave_shield s;
    int r;

    if (me->nframes == MAX_FRAMES)
        return;
    f = &me->frames[me->nframes];
    f->kind = shield ? F_SHIELD : F_DEADLINE;
    f->lo = f->hi = NEVER;
    b0 = weave_now_us();
    if (shield) {
        weave_shield_begin(&s);
    } else {
        weave_deadline_begin(&d, ms);
        if (ms >= 0) {
            f->lo = b0 + ms * 1000;
            f->hi = weave_now_us() + ms * 1000 + 1;
        }
    }
    me->nframes++;
    for (uint64_t n = 1 + rnd(3); n > 0; n--)
        random_op(me);
    me->nframes--;
    if (shield) {
        weave_shield_end(&s);
        return;
    }
    now = weave_now_us();
    r = weave_deadline_end(&d);
    ck_assert_msg(r == 0 || r == 1, "weave_deadline_end returned %d", r);
    if (r == 1)
        ck_assert_msg(weave_now_us() >= f->lo, "a deadline scope expired early");
    else
        ck_assert_msg(now < f->hi, "weave_deadline_end: 0 past the deadline");
}

static void op_group(struct mtask *me)
{
    struct mtask *mem[MAX_MEMBERS];
    bool indexed[MAX_MEMBERS];
    int n = 1 + (int)rnd(MAX_MEMBERS), nidx = 0, err = 0, e;
    bool group_err;
    weave_group *g;
    struct call c;
    int r;

    if (me->depth >= MAX_DEPTH || m.live + (uint64_t)n > MAX_LIVE)
        return;
    g = weave_group_new();
    ck_assert_ptr_nonnull(g);
    for (int i = 0; i < n; i++) {
        indexed[i] = chance(70);
        mem[i] = new_mtask(indexed[i] ? MEMBER : MEMBER_DETACHED, me->depth + 1);
        mem[i]->h = indexed[i] ? weave_group_spawn(g, task_fn, mem[i])
                               : weave_group_spawn_detached(g, task_fn, mem[i]);
        ck_assert_msg(mem[i]->h != NULL, "weave_group_spawn: errno %d", errno);
        reg_add(mem[i]);
        nidx += indexed[i];
    }
    ck_assert_uint_eq(weave_group_size(g), (size_t)nidx);
    if (chance(15)) {
        ck_assert_int_eq(weave_group_cancel(g), 0);
        err = ECANCELED;
    } else if (chance(15)) {
        ck_assert_int_eq(weave_group_fail(g, EIO), 0);
        err = EIO;
    }
    if (chance(85)) {
        int64_t to = chance(50) ? -1 : rnd_timeout();

        c = begin_call(me, "weave_group_wait", to >= 0 ? to * 1000 : -1);
        errno = 0;
        r = weave_group_wait(g, to);
        e = errno;
        /* The group's own error, unless it is ECANCELED and the caller is
         * cancelled too: then either may have ended the wait. */
        group_err =
            r == -1 && err != 0 && e == err && !(e == ECANCELED && cancelled() && !shielded(me));
        if (!group_err)
            end_call(me, &c, r, e, E_WAIT);
        if (err != 0)
            ck_assert_msg(r != 0, "weave_group_wait: 0 from a group with an error");
        if (r == 0 || group_err) {
            for (int i = 0, j = 0; i < n; i++) {
                void *res = NULL;

                ck_assert_msg(mem[i]->ended, "weave_group_wait returned before a member ended");
                if (!indexed[i])
                    continue;
                ck_assert_int_eq(weave_group_result(g, (size_t)j++, &res), 0);
                ck_assert_ptr_eq(res, mem[i]);
            }
        }
    }
    ck_assert_int_eq(weave_group_free(g), 0);
    for (int i = 0; i < n; i++) {
        ck_assert_msg(mem[i]->ended, "weave_group_free returned before a member ended");
        free(mem[i]);
    }
}

/* ---- two schedulers: shared channels, posts and calls ------------------------ */

/*
 * In "two" runs a second scheduler, the remote, runs on a thread of its
 * own. The model's tasks and the remote's meet on NSHARED shared channels
 * (sending, receiving, selecting, closing, from both sides), post tasks to
 * each other (weave_post), and run functions on each other and wait for
 * their results (weave_call). The same ledger (under a lock) takes the
 * values of both sides, and each side checks its calls as the model does.
 */

/* How a task of either side sends on, receives from or closes a shared
 * channel; rng gives the random choices of the calling side. */
static void shared_op(struct mtask *me, uint64_t (*rng)(uint64_t), int64_t timeout_ms,
                      bool may_wait_plain)
{
    int i = (int)rng(NSHARED);
    weave_chan *ch = shared_chan(i);
    uint64_t k = rng(20), how = rng(10), v = 0;
    struct call c;
    int r;

    if (k == 0) { /* close: the slot gets a new channel */
        pthread_mutex_lock(&m.shlock);
        if (m.shared[i].c == ch) {
            ck_assert_int_eq(weave_chan_close(ch), 0);
            if (m.nsretired == m.capsretired) {
                m.capsretired = m.capsretired ? 2 * m.capsretired : 16;
                m.sretired = xrealloc(m.sretired, m.capsretired * sizeof(*m.sretired));
            }
            m.sretired[m.nsretired++] = ch;
            m.shared[i].c = weave_chan_new_shared(sizeof(uint64_t), m.shared[i].cap);
            ck_assert_ptr_nonnull(m.shared[i].c);
        }
        pthread_mutex_unlock(&m.shlock);
        return;
    }
    if (k < 10)
        v = new_value();
    if (how < 3) { /* try: not a blocking call */
        errno = 0;
        r = k < 10 ? weave_chan_try_send(ch, &v) : weave_chan_try_recv(ch, &v);
        if (r != 0) {
            ck_assert_int_eq(r, -1);
            ck_assert_msg(errno == EAGAIN || errno == EPIPE, "shared try: errno %d", errno);
        }
    } else {
        bool timed = how < 8 || !may_wait_plain;

        c = begin_call(me, k < 10 ? "weave_chan_send (shared)" : "weave_chan_recv (shared)",
                       timed ? timeout_ms * 1000 : -1);
        errno = 0;
        if (k < 10)
            r = timed ? weave_chan_send_timeout(ch, &v, timeout_ms) : weave_chan_send(ch, &v);
        else
            r = timed ? weave_chan_recv_timeout(ch, &v, timeout_ms) : weave_chan_recv(ch, &v);
        end_call(me, &c, r, errno, E_CHAN);
    }
    if (r != 0)
        return;
    if (k < 10)
        accept_value(v);
    else
        got_value(v);
}

static void op_shared(struct mtask *me)
{
    /* The model's side may wait without a timeout too: the remote, or a
     * kick, completes it. */
    shared_op(me, rnd, rnd_timeout(), true);
}

/* What the model asks of the remote: run remote_called(x) there. */
struct rcall {
    uint64_t x;       /* it returns x + 1 */
    int64_t sleep_us; /* after sleeping this long (0: not at all) */
    bool send;        /* and then try_send v on shared channel chan */
    uint64_t v;
    int chan;
};

/* A sleep of us, checked as the model checks its own. */
static void checked_sleep_us(struct mtask *me, int64_t us)
{
    struct call c = begin_call(me, "weave_sleep_us", -1);
    int r;

    errno = 0;
    r = weave_sleep_us(us);
    end_call(me, &c, r, errno, E_WAIT);
    if (r == 0)
        ck_assert_msg(weave_now_us() >= c.t0 + us, "a sleep of %" PRId64 " us woke early", us);
}

/* On one side, for the other: what a call runs. */
static void *run_rcall(struct rcall *rc, uint64_t *foreign)
{
    struct mtask me;

    memset(&me, 0, sizeof(me));
    me.kind = CHILD;
    me.reg = -1;
    (*foreign)++;
    if (rc->sleep_us > 0)
        checked_sleep_us(&me, rc->sleep_us);
    if (rc->send) {
        errno = 0;
        if (weave_chan_try_send(shared_chan(rc->chan), &rc->v) == 0)
            accept_value(rc->v);
        else
            ck_assert_msg(errno == EAGAIN || errno == EPIPE, "shared try_send: errno %d", errno);
    }
    return (void *)(uintptr_t)(rc->x + 1);
}

static void *remote_called(void *arg) /* on the remote */
{
    return run_rcall(arg, &rm.foreign);
}

static void *model_called(void *arg) /* on the model's scheduler */
{
    return run_rcall(arg, &m.foreign);
}

/* Call fn on sched, from a task of the other side, and check the result. */
static void checked_call(struct mtask *me, weave_sched *sched, weave_fn fn, struct rcall *rc)
{
    struct call c = begin_call(me, "weave_call", -1);
    void *res = NULL;
    int ret;

    atomic_fetch_add(&m.n_call, 1);
    errno = 0;
    ret = weave_call(sched, fn, rc, &res);
    end_call(me, &c, ret, errno, E_WAIT);
    if (ret == 0)
        ck_assert_ptr_eq(res, (void *)(uintptr_t)(rc->x + 1));
}

static struct rcall new_rcall(uint64_t (*rng)(uint64_t))
{
    struct rcall rc;

    rc.x = rng(1u << 30);
    rc.sleep_us = rng(3) == 0 ? 0 : (int64_t)rng(3000);
    rc.send = rng(3) == 0;
    rc.v = rc.send ? new_value() : 0;
    rc.chan = (int)rng(NSHARED);
    return rc;
}

static void op_call(struct mtask *me)
{
    struct rcall rc = new_rcall(rnd);

    checked_call(me, m.rsched, remote_called, &rc);
}

/* A post: a task on the other side that sends or receives one value on a
 * shared channel, with a timeout. */
struct rpost {
    bool send;
    uint64_t v;
    int chan;
    int64_t timeout_ms;
};

static void run_rpost(struct rpost *p)
{
    struct mtask me;
    struct call c;
    weave_chan *ch = shared_chan(p->chan);
    uint64_t v = p->v;
    int ret;

    memset(&me, 0, sizeof(me));
    me.kind = CHILD;
    me.reg = -1;
    c = begin_call(&me, "weave_chan_send/recv_timeout (posted)", p->timeout_ms * 1000);
    errno = 0;
    ret = p->send ? weave_chan_send_timeout(ch, &v, p->timeout_ms)
                  : weave_chan_recv_timeout(ch, &v, p->timeout_ms);
    end_call(&me, &c, ret, errno, E_CHAN);
    if (ret == 0 && p->send)
        accept_value(v);
    else if (ret == 0)
        got_value(v);
    free(p);
}

static void *remote_posted(void *arg) /* on the remote */
{
    rm.foreign++;
    run_rpost(arg);
    atomic_fetch_add(&m.m2r_ran, 1);
    return NULL;
}

static void *model_posted(void *arg) /* on the model's scheduler */
{
    m.foreign++;
    run_rpost(arg);
    m.r2m_ran++;
    return NULL;
}

static struct rpost *new_rpost(uint64_t (*rng)(uint64_t))
{
    struct rpost *p = malloc(sizeof(*p));

    ck_assert_ptr_nonnull(p);
    p->send = rng(2) == 0;
    p->v = p->send ? new_value() : 0;
    p->chan = (int)rng(NSHARED);
    p->timeout_ms = (int64_t)rng(20);
    return p;
}

static void op_post(struct mtask *me)
{
    (void)me;
    atomic_fetch_add(&m.m2r_posts, 1);
    atomic_fetch_add(&m.n_post, 1);
    /* The remote runs until the model is done: a post is never refused. */
    ck_assert_int_eq(weave_post(m.rsched, remote_posted, new_rpost(rnd)), 0);
}

static void random_op(struct mtask *me)
{
    if (m.stopping)
        return;
    m.ops++;
    switch (rnd(m.two ? 24 : 20)) {
    case 0:
    case 1:
        op_spawn(me);
        break;
    case 2:
        op_join(me);
        break;
    case 3:
        op_detach(me);
        break;
    case 4:
        op_cancel(me);
        break;
    case 5:
    case 6:
        op_sleep(me);
        break;
    case 7:
        op_yield(me);
        break;
    case 8:
    case 9:
        op_send(me);
        break;
    case 10:
    case 11:
        op_recv(me);
        break;
    case 12:
        op_close(me);
        break;
    case 13:
        op_select(me);
        break;
    case 14:
        op_mutex(me);
        break;
    case 15:
        op_cond(me);
        break;
    case 16:
        op_sem(me);
        break;
    case 17:
        op_event(me);
        break;
    case 18:
        op_scope(me);
        break;
    case 19:
        op_group(me);
        break;
    case 20:
    case 21:
        op_shared(me);
        break;
    case 22:
        op_call(me);
        break;
    default:
        op_post(me);
        break;
    }
}

static void *task_fn(void *arg)
{
    struct mtask *me = arg;

    while (!m.stopping && (me->kind == ROOT || me->ops_left-- > 0))
        random_op(me);
    /* Join the children, or detach those that cannot be joined now. */
    while (me->nkids > 0) {
        int i = me->nkids - 1;

        if (!(chance(60) && join_kid(me, i)))
            detach_kid(me, i);
    }
    ck_assert_int_eq(me->nframes, 0);
    m.live--;
    me->ended = true;
    if (me->kind == MEMBER || me->kind == MEMBER_DETACHED)
        reg_stale(me); /* stale once it has ended; the group op frees it */
    else if (me->detached)
        release(me);
    return me;
}

/* ---- the remote scheduler ----------------------------------------------------- */

/* The remote's random numbers: its own generator, its thread alone. */
static uint64_t rrnd(uint64_t n)
{
    return n ? splitmix64(&rm.rng) % n : 0;
}

static void r_random_op(struct mtask *me);

/* A few remote operations inside a deadline scope or a shield, checked as
 * op_scope checks the model's. */
static void r_op_scope(struct mtask *me)
{
    bool shield = rrnd(3) == 0;
    int64_t ms = (int64_t)rrnd(15), b0, now;
    struct frame *f;
    weave_deadline d;
    weave_shield sh;
    int ret;

    if (me->nframes == MAX_FRAMES)
        return;
    f = &me->frames[me->nframes];
    f->kind = shield ? F_SHIELD : F_DEADLINE;
    f->lo = f->hi = NEVER;
    b0 = weave_now_us();
    if (shield) {
        weave_shield_begin(&sh);
    } else {
        weave_deadline_begin(&d, ms);
        f->lo = b0 + ms * 1000;
        f->hi = weave_now_us() + ms * 1000 + 1;
    }
    me->nframes++;
    for (uint64_t n = 1 + rrnd(2); n > 0; n--)
        r_random_op(me);
    me->nframes--;
    if (shield) {
        weave_shield_end(&sh);
        return;
    }
    now = weave_now_us();
    ret = weave_deadline_end(&d);
    ck_assert_msg(ret == 0 || ret == 1, "weave_deadline_end returned %d", ret);
    if (ret == 1)
        ck_assert_msg(weave_now_us() >= f->lo, "a deadline scope expired early");
    else
        ck_assert_msg(now < f->hi, "weave_deadline_end: 0 past the deadline");
}

/* A select of the remote over both shared channels: a send and a receive. */
static void r_op_select(struct mtask *me)
{
    weave_select_case cases[2];
    uint64_t out = new_value(), in = 0;
    int64_t to = (int64_t)rrnd(10);
    struct call c;
    int ret;

    memset(cases, 0, sizeof(cases));
    cases[0].op = WEAVE_CASE_SEND;
    cases[0].chan = shared_chan((int)rrnd(NSHARED));
    cases[0].elem = &out;
    cases[1].op = WEAVE_CASE_RECV;
    cases[1].chan = shared_chan((int)rrnd(NSHARED));
    cases[1].elem = &in;
    c = begin_call(me, "weave_select (remote)", to * 1000);
    errno = 0;
    ret = weave_select(cases, 2, to);
    end_call(me, &c, ret >= 0 ? 0 : ret, errno, E_WAIT);
    if (ret < 0 || cases[ret].err) {
        ck_assert(ret < 0 || cases[ret].err == EPIPE);
        return;
    }
    if (ret == 0)
        accept_value(out);
    else
        got_value(in);
}

static void r_random_op(struct mtask *me)
{
    struct rcall rc;

    if (rm.stopping)
        return;
    rm.ops++;
    switch (rrnd(10)) {
    case 0:
    case 1:
    case 2:
        shared_op(me, rrnd, (int64_t)rrnd(20), false);
        break;
    case 3:
        r_op_select(me);
        break;
    case 4:
    case 5:
        rc = new_rcall(rrnd);
        checked_call(me, m.msched, model_called, &rc);
        break;
    case 6:
        atomic_fetch_add(&m.r2m_posts, 1);
        atomic_fetch_add(&m.n_post, 1);
        /* The model's scheduler runs until the remote has ended. */
        ck_assert_int_eq(weave_post(m.msched, model_posted, new_rpost(rrnd)), 0);
        break;
    case 7:
        checked_sleep_us(me, (int64_t)rrnd(3000));
        break;
    default:
        r_op_scope(me);
        break;
    }
}

static void *remote_worker(void *arg)
{
    struct mtask *me = arg;

    while (!rm.stopping && me->ops_left-- > 0)
        r_random_op(me);
    ck_assert_int_eq(me->nframes, 0);
    me->ended = true;
    return me;
}

static void remote_spawn(int i)
{
    struct mtask *t = calloc(1, sizeof(*t));

    ck_assert_ptr_nonnull(t);
    t->kind = CHILD;
    t->reg = -1;
    t->ops_left = 1 + (int)rrnd(30);
    t->h = weave_spawn(remote_worker, t);
    ck_assert_msg(t->h != NULL, "weave_spawn: errno %d", errno);
    rm.tasks++;
    rm.workers[i] = t;
}

static void remote_reap(int i)
{
    void *res = NULL;

    ck_assert_int_eq(weave_join(rm.workers[i]->h, &res), 0);
    ck_assert_ptr_eq(res, rm.workers[i]);
    free(rm.workers[i]);
    rm.workers[i] = NULL;
}

/* Wait (sleeping) until cond(), with a bound that only catches hangs. */
static void await_cond(bool (*cond)(void), const char *what)
{
    int64_t t0 = wt_now_ns();

    while (!cond()) {
        ck_assert_msg(wt_ms_since(t0) < BOUND_MS, "waited %d ms for %s", BOUND_MS, what);
        ck_assert_int_eq(weave_sleep(1), 0);
    }
}

static bool m2r_posts_ran(void)
{
    return atomic_load(&m.m2r_ran) == atomic_load(&m.m2r_posts);
}

static bool r2m_posts_ran(void)
{
    return m.r2m_ran == atomic_load(&m.r2m_posts);
}

/* Nothing but the calling task left (the tasks started for the other
 * side's posts and calls have ended: a call's task ends just after it has
 * told its caller). */
static bool only_main_left(void)
{
    weave_stats st;

    ck_assert_int_eq(weave_get_stats(&st), 0);
    return st.tasks_live == 1 && st.tasks_zombie == 0;
}

/* Keep RWORKERS workers running, replacing those that end and cancelling
 * one now and then, until the model is done; then stop them, wait for the
 * model's posts, check that nothing is left and close rdone. */
static void *remote_main(void *arg)
{
    weave_stats st;

    (void)arg;
    for (int i = 0; i < RWORKERS; i++)
        remote_spawn(i);
    while (!atomic_load(&m.remote_stop)) {
        ck_assert_int_eq(weave_sleep(R_TICK_MS), 0);
        for (int i = 0; i < RWORKERS; i++)
            if (rm.workers[i]->ended) {
                remote_reap(i);
                remote_spawn(i);
            }
        if (rrnd(4) == 0) {
            struct mtask *t = rm.workers[rrnd(RWORKERS)];

            ck_assert_int_eq(weave_cancel(t->h), 0);
        }
    }
    rm.stopping = true;
    for (int i = 0; i < RWORKERS; i++) {
        ck_assert_int_eq(weave_cancel(rm.workers[i]->h), 0);
        remote_reap(i);
    }
    await_cond(m2r_posts_ran, "the model's posts to run on the remote");
    await_cond(only_main_left, "the remote's tasks to end");
    ck_assert_int_eq(weave_get_stats(&st), 0);
    ck_assert_uint_eq(st.timers_pending, 0);
    ck_assert_uint_eq(st.stacks_in_use, 1);
    ck_assert_uint_eq(st.tasks_spawned, rm.tasks + rm.foreign + 1);
    ck_assert_int_eq(weave_chan_close(m.rdone), 0);
    return NULL;
}

static void *remote_thread(void *arg)
{
    (void)arg;
    errno = 0;
    m.rret = weave_sched_run(m.rsched, remote_main, NULL, NULL);
    m.rerr = errno;
    return NULL;
}

/* ---- the main task ------------------------------------------------------------ */

/* Wake plain waits that nobody else may: cancel one spawned task, offer
 * and take an element on every channel, signal the condition, set the
 * event. With all, every spawned task is cancelled. */
static void kick(bool all)
{
    if (all) {
        for (size_t i = 0; i < m.nreg; i++)
            ck_assert_int_eq(weave_cancel(m.reg[i]->h), 0);
    } else if (m.nreg > 0) {
        ck_assert_int_eq(weave_cancel(m.reg[rnd(m.nreg)]->h), 0);
    }
    for (int i = 0; i < NCHAN; i++) {
        uint64_t v = new_value(), w;

        if (weave_chan_try_send(m.chans[i].c, &v) == 0)
            accept_value(v);
        if (weave_chan_try_recv(m.chans[i].c, &w) == 0)
            got_value(w);
    }
    for (int i = 0; m.two && i < NSHARED; i++) {
        weave_chan *c = shared_chan(i);
        uint64_t v = new_value(), w;

        if (weave_chan_try_send(c, &v) == 0)
            accept_value(v);
        if (weave_chan_try_recv(c, &w) == 0)
            got_value(w);
    }
    m.cond_signals++;
    ck_assert_int_eq(weave_cond_broadcast(&m.cond), 0);
    m.ev_sets++;
    ck_assert_int_eq(weave_event_set(&m.ev), 0);
}

/* Drain a closed channel into the ledger and free it. */
static void drain(weave_chan *c)
{
    uint64_t v;

    while (weave_chan_try_recv(c, &v) == 0)
        got_value(v);
    ck_assert_int_eq(errno, EPIPE);
    ck_assert_int_eq(weave_chan_free(c), 0);
}

static void *model_main(void *arg)
{
    struct mtask *roots[ROOTS];
    uint64_t last = UINT64_MAX;
    weave_stats st;

    (void)arg;
    m.vstart = weave_now_us();
    if (m.two) { /* the remote calls and posts here: this scheduler */
        ck_assert_ptr_nonnull(m.msched = weave_sched_self());
        ck_assert_int_eq(pthread_create(&m.rthread, NULL, remote_thread, NULL), 0);
    }
    for (int i = 0; i < ROOTS; i++) {
        roots[i] = new_mtask(ROOT, 0);
        roots[i]->h = weave_spawn(task_fn, roots[i]);
        ck_assert_ptr_nonnull(roots[i]->h);
    }
    /* Watch for stalls until the budget is spent. */
    while (m.ops < m.ops_max) {
        ck_assert_int_eq(weave_sleep(TICK_MS), 0);
        if (m.ops == last)
            kick(false);
        last = m.ops;
    }
    m.stopping = true;
    /* Wind down: cancel what is left, and kick until every task ended. */
    while (m.live > 0) {
        kick(true);
        ck_assert_int_eq(weave_sleep(TICK_MS), 0);
    }
    for (int i = 0; i < ROOTS; i++) {
        void *res = NULL;

        ck_assert_int_eq(weave_join(roots[i]->h, &res), 0);
        ck_assert_ptr_eq(res, roots[i]);
        free(roots[i]);
    }
    ck_assert_uint_eq(m.nreg, 0);
    if (m.two) {
        /* The remote winds down (its calls and posts here are still
         * served meanwhile), then closes rdone; its posts here all run. */
        atomic_store(&m.remote_stop, 1);
        WT_FAILS(weave_chan_recv(m.rdone, NULL), EPIPE);
        await_cond(r2m_posts_ran, "the remote's posts to run here");
        await_cond(only_main_left, "the tasks started for the remote to end");
    }
    m.vend = weave_now_us();

    /* Nothing is left in the scheduler but this task. */
    ck_assert_int_eq(weave_get_stats(&st), 0);
    ck_assert_uint_eq(st.tasks_live, 1);
    ck_assert_uint_eq(st.tasks_zombie, 0);
    ck_assert_uint_eq(st.timers_pending, 0);
    ck_assert_uint_eq(st.stacks_in_use, 1);
    ck_assert_uint_eq(st.tasks_spawned, m.tasks + m.foreign + 1);

    /* No lock is held, and nobody waits on one. */
    for (int i = 0; i < NMUTEX; i++) {
        ck_assert_int_eq(m.holders[i], 0);
        ck_assert_int_eq(weave_mutex_destroy(&m.mtx[i]), 0);
    }
    ck_assert_int_eq(m.sem_held, 0);
    ck_assert_int_eq(weave_sem_value(&m.sem), SEM_PERMITS);
    ck_assert_int_eq(weave_sem_destroy(&m.sem), 0);
    ck_assert_int_eq(weave_cond_destroy(&m.cond), 0);
    ck_assert_int_eq(weave_event_destroy(&m.ev), 0);

    /* Close and drain every channel: the ledger must balance. */
    for (int i = 0; i < NCHAN; i++) {
        ck_assert_int_eq(weave_chan_close(m.chans[i].c), 0);
        retire(m.chans[i].c);
    }
    for (int i = 0; m.two && i < NSHARED; i++) {
        ck_assert_int_eq(weave_chan_close(m.shared[i].c), 0);
        drain(m.shared[i].c);
    }
    for (size_t i = 0; i < m.nsretired; i++)
        drain(m.sretired[i]);
    for (size_t i = 0; i < m.nretired; i++)
        drain(m.retired[i]);
    for (uint64_t v = 1; v <= m.next_value; v++) {
        if (m.accepted[v])
            ck_assert_msg(m.recvd[v] == 1, "value %" PRIu64 " was sent and lost", v);
        else
            ck_assert_msg(m.recvd[v] == 0, "value %" PRIu64 " arrived though its send failed", v);
    }
    return NULL;
}

/* ---- the test ------------------------------------------------------------------- */

static uint64_t env_u64(const char *name, uint64_t dflt)
{
    const char *s = getenv(name);
    char *end;
    unsigned long long v;

    if (!s || !*s)
        return dflt;
    errno = 0;
    v = strtoull(s, &end, 0);
    ck_assert_msg(errno == 0 && *end == '\0', "%s: not a number: %s", name, s);
    return (uint64_t)v;
}

static void model_run(uint64_t seed, uint64_t ops, bool two)
{
    weave_run_opts opts;
    int64_t w0 = wt_now_ns();
    void *res = wt_ptr(-1);

    memset(&m, 0, sizeof(m));
    memset(&rm, 0, sizeof(rm));
    m.seed = seed;
    m.rng = seed;
    m.ops_max = ops;
    m.two = two;
    pthread_mutex_init(&m.ledger, NULL);
    pthread_mutex_init(&m.shlock, NULL);
    if (two) {
        uint64_t x = seed ^ UINT64_C(0x7e307e307e307e30);

        rm.rng = splitmix64(&x);
        for (int i = 0; i < NSHARED; i++) {
            m.shared[i].cap = i == 0 ? 0 : 4;
            m.shared[i].c = weave_chan_new_shared(sizeof(uint64_t), m.shared[i].cap);
            ck_assert_ptr_nonnull(m.shared[i].c);
        }
        ck_assert_ptr_nonnull(m.rdone = weave_chan_new_shared(0, 0));
        ck_assert_ptr_nonnull(m.rsched = weave_sched_new(NULL));
    }
    for (int i = 0; i < NCHAN; i++) {
        m.chans[i].cap = i == 0 ? 0 : (size_t)1 << (2 * (i - 1)); /* 0, 1, 4, 16 */
        m.chans[i].c = weave_chan_new(sizeof(uint64_t), m.chans[i].cap);
        ck_assert_ptr_nonnull(m.chans[i].c);
    }
    for (int i = 0; i < NMUTEX; i++)
        ck_assert_int_eq(weave_mutex_init(&m.mtx[i]), 0);
    ck_assert_int_eq(weave_cond_init(&m.cond), 0);
    ck_assert_int_eq(weave_sem_init(&m.sem, SEM_PERMITS), 0);
    ck_assert_int_eq(weave_event_init(&m.ev), 0);

    /* The virtual clock cannot jump in a two run, whose scheduler other
     * threads reach (weave_sched_self): it follows real time there. */
    memset(&opts, 0, sizeof(opts));
    opts.flags = two ? 0 : WEAVE_VIRTUAL_CLOCK;
    fprintf(stderr, "model: seed=0x%016" PRIx64 " ops=%" PRIu64 "%s starting\n", seed, ops,
            two ? " two" : "");
    errno = 0;
    ck_assert_msg(weave_run_with(&opts, model_main, NULL, &res) == 0, "weave_run: errno %d", errno);
    ck_assert_ptr_null(res);
    if (two) {
        ck_assert_int_eq(pthread_join(m.rthread, NULL), 0);
        ck_assert_msg(m.rret == 0, "weave_sched_run (remote): errno %d", m.rerr);
        ck_assert_int_eq(weave_sched_free(m.rsched), 0);
        ck_assert_int_eq(weave_chan_free(m.rdone), 0);
    }
    fprintf(stderr,
            "model: seed=0x%016" PRIx64 " ops=%" PRIu64 " tasks=%" PRIu64
            " time=%.2fs vtime=%.2fs (calls: %" PRIu64 " ok, %" PRIu64 " ECANCELED, %" PRIu64
            " ETIMEDOUT, %" PRIu64 " EPIPE; %" PRIu64 " values received)\n",
            seed, m.ops, m.tasks, (double)(wt_now_ns() - w0) / 1e9,
            (double)(m.vend - m.vstart) / 1e6, m.n_ok, m.n_canceled, m.n_timedout, m.n_pipe,
            m.n_recvd);
    if (two)
        fprintf(stderr,
                "model: two: remote ops=%" PRIu64 " tasks=%" PRIu64 "; %lu weave_call, %lu "
                "weave_post; %" PRIu64 " tasks started here for the remote, %" PRIu64
                " there for the model\n",
                rm.ops, rm.tasks, atomic_load(&m.n_call), atomic_load(&m.n_post), m.foreign,
                rm.foreign);
    pthread_mutex_destroy(&m.ledger);
    pthread_mutex_destroy(&m.shlock);
    free(m.reg);
    free(m.retired);
    free(m.sretired);
    free(m.accepted);
    free(m.recvd);
}

START_TEST(model_seed)
{
    uint64_t base = UINT64_C(0x5eedc0ffee000000) + (uint64_t)_i;
    uint64_t seed = splitmix64(&base);
    uint64_t ops = env_u64("WEAVE_MODEL_OPS", WT_ON_VALGRIND ? OPS_VG : OPS_CI);

    if (getenv("WEAVE_MODEL_SEED")) {
        if (_i != 0)
            return; /* replay one seed only */
        seed = env_u64("WEAVE_MODEL_SEED", 0);
    }
    model_run(seed, ops, false);
}
END_TEST

START_TEST(model_two_seed)
{
    uint64_t base = UINT64_C(0x2ced7e0000000000) + (uint64_t)_i;
    uint64_t seed = splitmix64(&base);
    uint64_t ops = env_u64("WEAVE_MODEL_OPS", WT_ON_VALGRIND ? OPS_TWO_VG
                                              : WT_TSAN      ? OPS_TWO_TSAN
                                                             : OPS_TWO_CI);

    if (getenv("WEAVE_MODEL_SEED")) {
        if (_i != 0)
            return;
        seed = env_u64("WEAVE_MODEL_SEED", 0);
    }
    model_run(seed, ops, true);
}
END_TEST

static Suite *model_suite(void)
{
    Suite *s = suite_create("model");
    TCase *tc = tcase_create("model");

    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, model_seed, 0, SEEDS);
    suite_add_tcase(s, tc);

    tc = tcase_create("two");
    wt_tag_native(tc); /* a second thread */
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, model_two_seed, 0, SEEDS);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return wt_main(model_suite());
}
