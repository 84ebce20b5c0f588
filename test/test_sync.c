/*
 * test_sync.c - weave_mutex, weave_cond, weave_sem and weave_event.
 *
 * For each primitive: the happy path; FIFO service with handoff (unlock,
 * release and signal give the lock, the permit or the wake-up straight to
 * the first waiter, so nobody barges ahead of one that waits); a waiter
 * cancelled, or past a deadline (a scope, or the _timeout variant; 0
 * completes if it can at once, else fails), while it waits, which leaves
 * without taking or losing anything; weave_run
 * ending while tasks still wait; every errno the header names; and calls
 * from another thread, with a scheduler of its own or none, on objects
 * whose waiters or owner are not its own.
 *
 * Most waits are made by "jobs" (struct job): a task that makes one
 * blocking call and records what it returned, in which order and when, and
 * whether it held the mutex afterwards (proved by an unlock that succeeds).
 * Times are asserted as lower bounds; upper bounds only catch hangs.
 *
 * Check timeouts: "mutex" 8 s x 7, "cond" 8 s x 5, "sem" 8 s x 6, "event"
 * 8 s x 3, "teardown" 8 s x 4 (a loop test), "threads" 8 s x 4 = 232 s; the
 * CTest timeout in CMakeLists.txt (300 s) is above their sum.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "weave_test.h"

#define MS ((int64_t)1000000)

/* ---- jobs: one blocking call in a task of its own --------------------------- */

enum op { OP_LOCK, OP_COND, OP_ACQUIRE, OP_EVENT };
enum how { PLAIN, TIMED, SCOPED }; /* the call; its _timeout variant; in a scope */

struct job {
    enum op op;
    enum how how;
    int64_t ms; /* TIMED, SCOPED: the timeout */
    weave_mutex *m;
    weave_cond *c;
    weave_sem *s;
    weave_event *e;
    int keep;      /* OP_ACQUIRE: keep the permit (else give it back at once) */
    int r, err;    /* the call's return, and errno */
    int scope_end; /* SCOPED: weave_deadline_end's return */
    int held;      /* OP_LOCK, OP_COND: the task held m after the call */
    int done;      /* the call returned */
    int order;     /* 1 for the first call to return, then counting up */
    int64_t t0;    /* ns: the call began */
    int64_t t1;    /* ns: it returned */
};

static int returned; /* calls returned so far, for job.order */

static struct job job_of(enum op op, enum how how, int64_t ms)
{
    struct job j;

    memset(&j, 0, sizeof(j));
    j.op = op;
    j.how = how;
    j.ms = ms;
    j.r = -42;
    return j;
}

static int job_call(struct job *j)
{
    int timed = j->how == TIMED;

    switch (j->op) {
    case OP_LOCK:
        return timed ? weave_mutex_lock_timeout(j->m, j->ms) : weave_mutex_lock(j->m);
    case OP_COND:
        return timed ? weave_cond_wait_timeout(j->c, j->m, j->ms) : weave_cond_wait(j->c, j->m);
    case OP_ACQUIRE:
        return timed ? weave_sem_acquire_timeout(j->s, j->ms) : weave_sem_acquire(j->s);
    case OP_EVENT:
        return timed ? weave_event_wait_timeout(j->e, j->ms) : weave_event_wait(j->e);
    }
    return -42;
}

static void *job_task(void *arg)
{
    struct job *j = arg;
    weave_deadline d;

    if (j->op == OP_COND)
        ck_assert_int_eq(weave_mutex_lock(j->m), 0);
    j->t0 = wt_now_ns();
    if (j->how == SCOPED)
        weave_deadline_begin(&d, j->ms);
    errno = 0;
    j->r = job_call(j);
    j->err = errno;
    if (j->how == SCOPED)
        j->scope_end = weave_deadline_end(&d);
    j->t1 = wt_now_ns();
    j->order = ++returned;
    j->done = 1;
    if (j->op == OP_LOCK || j->op == OP_COND) {
        /* Not a blocking call: it works in a cancelled task too, and says
         * whether the call left the task holding m. */
        errno = 0;
        j->held = weave_mutex_unlock(j->m) == 0;
        if (!j->held)
            ck_assert_int_eq(errno, EPERM);
    } else if (j->op == OP_ACQUIRE && j->r == 0 && !j->keep) {
        ck_assert_int_eq(weave_sem_release(j->s), 0);
    }
    return NULL;
}

static weave_task *start(struct job *j)
{
    return WT_SPAWN(job_task, j);
}

/* start, for a job nobody joins: it is released when it ends. */
static void go(struct job *j)
{
    ck_assert_int_eq(weave_detach(start(j)), 0);
}

/* Let every runnable task run until it blocks (a few rounds). */
static void settle(void)
{
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(weave_yield(), 0);
}

static void assert_failed(const struct job *j, int err)
{
    ck_assert_int_eq(j->done, 1);
    ck_assert_int_eq(j->r, -1);
    ck_assert_int_eq(j->err, err);
}

static void assert_ok(const struct job *j)
{
    ck_assert_int_eq(j->done, 1);
    ck_assert_int_eq(j->r, 0);
}

/* A job whose deadline of j->ms passed while it waited: ETIMEDOUT, and no
 * sooner than j->ms after the call (and not hung either). */
static void assert_timed_out(const struct job *j)
{
    assert_failed(j, ETIMEDOUT);
    ck_assert_int_ge(j->t1 - j->t0, j->ms * MS);
    ck_assert_int_lt((j->t1 - j->t0) / MS, j->ms + WT_PROMPT_MS);
    if (j->how == SCOPED)
        ck_assert_int_eq(j->scope_end, 1);
}

/* ---- mutex -------------------------------------------------------------------- */

/* Tasks that read a shared counter, yield, and write it back plus one, all
 * under the mutex: no update is lost and never two tasks are inside. */
struct excl {
    weave_mutex *m;
    long count;
    int inside, max_inside, rounds;
};

static void *excl_task(void *arg)
{
    struct excl *x = arg;

    for (int i = 0; i < x->rounds; i++) {
        long v;

        ck_assert_int_eq(weave_mutex_lock(x->m), 0);
        v = x->count;
        if (++x->inside > x->max_inside)
            x->max_inside = x->inside;
        ck_assert_int_eq(weave_yield(), 0);
        x->count = v + 1;
        x->inside--;
        ck_assert_int_eq(weave_mutex_unlock(x->m), 0);
        if (i % 3 == 0)
            ck_assert_int_eq(weave_yield(), 0);
    }
    return NULL;
}

#define NEXCL 8

WT_TEST(mutex_excludes)
{
    weave_mutex m;
    struct excl x;
    weave_task *t[NEXCL];

    ck_assert_int_eq(weave_mutex_init(&m), 0);
    memset(&x, 0, sizeof(x));
    x.m = &m;
    x.rounds = WT_ON_VALGRIND ? 20 : 200;
    for (int i = 0; i < NEXCL; i++)
        t[i] = WT_SPAWN(excl_task, &x);
    for (int i = 0; i < NEXCL; i++)
        WT_JOIN(t[i]);
    ck_assert_int_eq(x.count, (long)NEXCL * x.rounds);
    ck_assert_int_eq(x.max_inside, 1);
    ck_assert_int_eq(weave_mutex_trylock(&m), 0); /* left free */
    ck_assert_int_eq(weave_mutex_unlock(&m), 0);
    ck_assert_int_eq(weave_mutex_destroy(&m), 0);
    WT_ASSERT_IDLE();
}

/* Never passed to weave_mutex_init: its first use is a contended one. */
static weave_mutex static_mutex = WEAVE_MUTEX_INIT;

WT_TEST(mutex_static_init)
{
    weave_mutex local = WEAVE_MUTEX_INIT;
    struct job j[3];

    ck_assert_int_eq(weave_mutex_lock(&static_mutex), 0);
    for (int i = 0; i < 3; i++) {
        j[i] = job_of(OP_LOCK, PLAIN, 0);
        j[i].m = &static_mutex;
        go(&j[i]);
    }
    settle();
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(j[i].done, 0);
    ck_assert_int_eq(weave_mutex_unlock(&static_mutex), 0);
    settle();
    for (int i = 0; i < 3; i++) {
        assert_ok(&j[i]);
        ck_assert_int_eq(j[i].held, 1);
        ck_assert_int_eq(j[i].order, i + 1);
    }
    ck_assert_int_eq(weave_mutex_destroy(&static_mutex), 0);

    ck_assert_int_eq(weave_mutex_trylock(&local), 0);
    WT_FAILS(weave_mutex_trylock(&local), EBUSY);
    WT_FAILS(weave_mutex_destroy(&local), EBUSY);
    ck_assert_int_eq(weave_mutex_unlock(&local), 0);
    ck_assert_int_eq(weave_mutex_destroy(&local), 0);
    WT_ASSERT_IDLE();
}

/*
 * Waiters get the mutex in the order they came, and the holder that
 * unlocks and at once locks again queues behind them: unlock handed the
 * mutex to the first waiter, so the relock cannot barge in.
 */
WT_TEST(mutex_fifo_no_barging)
{
    weave_mutex m;
    struct job j[4];
    int mine;

    returned = 0;
    ck_assert_int_eq(weave_mutex_init(&m), 0);
    ck_assert_int_eq(weave_mutex_lock(&m), 0);
    for (int i = 0; i < 4; i++) {
        j[i] = job_of(OP_LOCK, PLAIN, 0);
        j[i].m = &m;
        go(&j[i]);
        settle(); /* j[i] queues before j[i + 1] */
    }
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(j[i].done, 0);
    ck_assert_int_eq(weave_mutex_unlock(&m), 0);
    ck_assert_int_eq(weave_mutex_lock(&m), 0); /* no yield in between */
    mine = ++returned;
    for (int i = 0; i < 4; i++) {
        assert_ok(&j[i]);
        ck_assert_int_eq(j[i].held, 1);
        ck_assert_int_eq(j[i].order, i + 1);
    }
    ck_assert_int_eq(mine, 5);
    ck_assert_int_eq(weave_mutex_unlock(&m), 0);
    ck_assert_int_eq(weave_mutex_destroy(&m), 0);
    settle(); /* the jobs end */
    WT_ASSERT_IDLE();
}

/* Another task's attempts on a mutex it does not hold. */
static void *not_owner_task(void *arg)
{
    weave_mutex *m = arg;

    WT_FAILS(weave_mutex_unlock(m), EPERM);
    WT_FAILS(weave_mutex_trylock(m), EBUSY);
    return NULL;
}

WT_TEST(mutex_misuse)
{
    weave_mutex m;
    struct job j = job_of(OP_LOCK, PLAIN, 0);

    ck_assert_int_eq(weave_mutex_init(&m), 0);
    WT_FAILS(weave_mutex_unlock(&m), EPERM); /* free */
    ck_assert_int_eq(weave_mutex_lock(&m), 0);
    WT_FAILS(weave_mutex_lock(&m), EDEADLK);
    WT_FAILS(weave_mutex_lock_timeout(&m, 1000), EDEADLK);
    WT_FAILS(weave_mutex_trylock(&m), EBUSY);
    WT_FAILS(weave_mutex_destroy(&m), EBUSY); /* held */
    WT_JOIN(WT_SPAWN(not_owner_task, &m));
    j.m = &m;
    go(&j);
    settle();
    WT_FAILS(weave_mutex_destroy(&m), EBUSY); /* held and waited on */
    ck_assert_int_eq(weave_mutex_unlock(&m), 0);
    settle();
    assert_ok(&j);
    ck_assert_int_eq(j.held, 1);
    WT_FAILS(weave_mutex_unlock(&m), EPERM); /* free again */
    ck_assert_int_eq(weave_mutex_destroy(&m), 0);

    /* Destroyed, then initialised again: as good as new. */
    ck_assert_int_eq(weave_mutex_init(&m), 0);
    ck_assert_int_eq(weave_mutex_lock(&m), 0);
    ck_assert_int_eq(weave_mutex_unlock(&m), 0);

    WT_FAILS(weave_mutex_lock_timeout(&m, -2), EINVAL);
    ck_assert_int_eq(weave_mutex_trylock(&m), 0); /* the bad call took nothing */
    ck_assert_int_eq(weave_mutex_unlock(&m), 0);
    ck_assert_int_eq(weave_mutex_destroy(&m), 0);

    WT_FAILS(weave_mutex_init(NULL), EINVAL);
    WT_FAILS(weave_mutex_destroy(NULL), EINVAL);
    WT_FAILS(weave_mutex_lock(NULL), EINVAL);
    WT_FAILS(weave_mutex_lock_timeout(NULL, 10), EINVAL);
    WT_FAILS(weave_mutex_trylock(NULL), EINVAL);
    WT_FAILS(weave_mutex_unlock(NULL), EINVAL);
    WT_ASSERT_IDLE();
}

/* A cancelled task's lock on a free mutex: ECANCELED, and it takes nothing. */
static void *cancelled_locker(void *arg)
{
    weave_mutex *m = arg;

    ck_assert_int_eq(weave_cancel(weave_self()), 0);
    WT_FAILS(weave_mutex_lock(m), ECANCELED);
    WT_FAILS(weave_mutex_lock_timeout(m, 1000), ECANCELED);
    WT_FAILS(weave_mutex_lock_timeout(m, 0), ECANCELED);
    WT_FAILS(weave_mutex_unlock(m), EPERM);
    return NULL;
}

/*
 * A waiter cancelled before the handoff leaves the queue at once and never
 * owns the mutex: the next waiter gets it, and once that one unlocks the
 * mutex is free (not held by the waiter that left).
 */
WT_TEST(mutex_cancel_waiter)
{
    weave_mutex m;
    struct job a = job_of(OP_LOCK, PLAIN, 0), b = job_of(OP_LOCK, PLAIN, 0);
    weave_task *ta, *tb;
    int64_t t_cancel;

    ck_assert_int_eq(weave_mutex_init(&m), 0);
    ck_assert_int_eq(weave_mutex_lock(&m), 0);
    a.m = b.m = &m;
    ta = start(&a);
    tb = start(&b);
    settle();
    t_cancel = wt_now_ns();
    ck_assert_int_eq(weave_cancel(ta), 0);
    settle();
    assert_failed(&a, ECANCELED);
    ck_assert_int_lt((a.t1 - t_cancel) / MS, WT_PROMPT_MS);
    ck_assert_int_eq(a.held, 0);
    ck_assert_int_eq(b.done, 0);
    ck_assert_int_eq(weave_mutex_unlock(&m), 0); /* to b, past the one that left */
    settle();
    assert_ok(&b);
    ck_assert_int_eq(b.held, 1);
    WT_JOIN(ta);
    WT_JOIN(tb);
    ck_assert_int_eq(weave_mutex_trylock(&m), 0); /* nobody holds it */
    ck_assert_int_eq(weave_mutex_unlock(&m), 0);

    WT_JOIN(WT_SPAWN(cancelled_locker, &m));
    ck_assert_int_eq(weave_mutex_trylock(&m), 0);
    ck_assert_int_eq(weave_mutex_unlock(&m), 0);
    ck_assert_int_eq(weave_mutex_destroy(&m), 0);
    WT_ASSERT_IDLE();
}

/*
 * Cancelled after the handoff but before it ran: the waiter was served, so
 * either its lock returns 0 and it owns the mutex, or the lock fails and
 * the mutex went on; never a failed lock that left the mutex held.
 */
WT_TEST(mutex_cancel_after_handoff)
{
    weave_mutex m;
    struct job a = job_of(OP_LOCK, PLAIN, 0);
    weave_task *ta;

    ck_assert_int_eq(weave_mutex_init(&m), 0);
    ck_assert_int_eq(weave_mutex_lock(&m), 0);
    a.m = &m;
    ta = start(&a);
    settle();
    ck_assert_int_eq(weave_mutex_unlock(&m), 0);
    ck_assert_int_eq(weave_cancel(ta), 0); /* a has not run since */
    WT_JOIN(ta);
    ck_assert_int_eq(a.done, 1);
    ck_assert_int_eq(a.held, a.r == 0);
    ck_assert_int_eq(weave_mutex_trylock(&m), 0);
    ck_assert_int_eq(weave_mutex_unlock(&m), 0);
    ck_assert_int_eq(weave_mutex_destroy(&m), 0);
    WT_ASSERT_IDLE();
}

/*
 * Waiters whose deadline passes (a scope, lock_timeout) give up no sooner
 * than it, never own the mutex, and leave the waiter behind them first in
 * line. A timed lock that succeeds leaves no deadline behind. A timeout of
 * 0 never waits: it takes a free mutex, else fails at once.
 */
WT_TEST(mutex_deadline)
{
    weave_mutex m;
    struct job a = job_of(OP_LOCK, SCOPED, 30), b = job_of(OP_LOCK, TIMED, 30);
    struct job z = job_of(OP_LOCK, TIMED, 0), c = job_of(OP_LOCK, PLAIN, 0);
    weave_task *t[4];

    ck_assert_int_eq(weave_mutex_init(&m), 0);
    ck_assert_int_eq(weave_mutex_lock(&m), 0);
    a.m = b.m = z.m = c.m = &m;
    t[0] = start(&a);
    t[1] = start(&b);
    t[2] = start(&z);
    t[3] = start(&c);
    settle();
    assert_failed(&z, ETIMEDOUT); /* timeout 0: at once */
    ck_assert_int_lt((z.t1 - z.t0) / MS, WT_PROMPT_MS);
    ck_assert_int_eq(weave_sleep(60), 0); /* a's and b's deadlines fire first */
    assert_timed_out(&a);
    assert_timed_out(&b);
    ck_assert_int_eq(a.held + b.held + z.held, 0);
    ck_assert_int_eq(c.done, 0);
    ck_assert_int_eq(weave_mutex_unlock(&m), 0);
    for (int i = 0; i < 4; i++)
        WT_JOIN(t[i]);
    assert_ok(&c);
    ck_assert_int_eq(c.held, 1);
    ck_assert_int_eq(weave_mutex_trylock(&m), 0);
    ck_assert_int_eq(weave_mutex_unlock(&m), 0);

    ck_assert_int_eq(weave_mutex_lock_timeout(&m, 20), 0);
    ck_assert_int_eq(weave_sleep(40), 0); /* past the 20 ms: no scope left open */
    ck_assert_int_eq(weave_mutex_unlock(&m), 0);
    ck_assert_int_eq(weave_mutex_lock_timeout(&m, 0), 0); /* free: 0 takes it */
    WT_FAILS(weave_mutex_lock_timeout(&m, 0), EDEADLK);
    ck_assert_int_eq(weave_mutex_unlock(&m), 0);
    ck_assert_int_eq(weave_mutex_destroy(&m), 0);
    WT_ASSERT_IDLE();
}

/* ---- condition variable --------------------------------------------------------- */

/*
 * signal wakes the longest waiter, one at a time, and that waiter returns
 * only once it holds the mutex again; broadcast wakes the rest. A signal
 * with no waiter is not kept for a later one.
 */
WT_TEST(cond_signal_order)
{
    weave_mutex m;
    weave_cond c;
    struct job w[4], late = job_of(OP_COND, TIMED, 30);

    returned = 0;
    ck_assert_int_eq(weave_mutex_init(&m), 0);
    ck_assert_int_eq(weave_cond_init(&c), 0);
    for (int i = 0; i < 4; i++) {
        w[i] = job_of(OP_COND, PLAIN, 0);
        w[i].m = &m;
        w[i].c = &c;
        go(&w[i]);
        settle();
    }
    ck_assert_int_eq(weave_mutex_lock(&m), 0); /* all four wait: m is free */
    ck_assert_int_eq(weave_cond_signal(&c), 0);
    settle();
    ck_assert_int_eq(w[0].done, 0); /* woken, but m is ours */
    ck_assert_int_eq(weave_mutex_unlock(&m), 0);
    settle();
    assert_ok(&w[0]);
    ck_assert_int_eq(w[0].held, 1);
    for (int i = 1; i < 4; i++)
        ck_assert_int_eq(w[i].done, 0); /* one signal, one wake-up */
    ck_assert_int_eq(weave_cond_signal(&c), 0);
    settle();
    assert_ok(&w[1]);
    ck_assert_int_eq(w[2].done + w[3].done, 0);
    ck_assert_int_eq(weave_cond_broadcast(&c), 0);
    settle();
    for (int i = 0; i < 4; i++) {
        assert_ok(&w[i]);
        ck_assert_int_eq(w[i].held, 1);
        ck_assert_int_eq(w[i].order, i + 1);
    }

    ck_assert_int_eq(weave_cond_signal(&c), 0); /* nobody waits: nothing */
    ck_assert_int_eq(weave_cond_broadcast(&c), 0);
    late.m = &m;
    late.c = &c;
    WT_JOIN(start(&late));
    assert_timed_out(&late);
    ck_assert_int_eq(late.held, 1);
    ck_assert_int_eq(weave_cond_destroy(&c), 0);
    ck_assert_int_eq(weave_mutex_destroy(&m), 0);
    WT_ASSERT_IDLE();
}

/*
 * weave_cond_wait returns holding the mutex whatever happened: cancelled
 * while waiting (even while another task holds the mutex: it waits for it,
 * uninterrupted), a scope's deadline, the _timeout variant, a timeout of 0,
 * and a task cancelled before the call (which never lets go of it).
 */
static void *cancel_then_wait(void *arg)
{
    struct job *j = arg;

    ck_assert_int_eq(weave_mutex_lock(j->m), 0);
    ck_assert_int_eq(weave_cancel(weave_self()), 0);
    WT_FAILS(weave_cond_wait(j->c, j->m), ECANCELED);
    WT_FAILS(weave_cond_wait_timeout(j->c, j->m, 1000), ECANCELED);
    ck_assert_int_eq(weave_mutex_unlock(j->m), 0); /* still ours */
    return NULL;
}

/* Deadlines long enough that no job reaches them during a settle(). */
#define DL ((int64_t)(WT_ON_VALGRIND ? 300 : 30))

WT_TEST(cond_errors_hold_mutex)
{
    weave_mutex m;
    weave_cond c;
    struct job k = job_of(OP_COND, PLAIN, 0), d = job_of(OP_COND, SCOPED, DL);
    struct job t = job_of(OP_COND, TIMED, DL), z = job_of(OP_COND, TIMED, 0);
    struct job *all[] = {&k, &d, &t, &z};
    weave_task *tk, *h[4];

    ck_assert_int_eq(weave_mutex_init(&m), 0);
    ck_assert_int_eq(weave_cond_init(&c), 0);
    for (int i = 0; i < 4; i++) {
        all[i]->m = &m;
        all[i]->c = &c;
        h[i] = start(all[i]);
    }
    tk = h[0];
    settle();
    assert_failed(&z, ETIMEDOUT);
    ck_assert_int_eq(z.held, 1);

    /* Cancel k and let d's and t's deadlines pass, all while we hold m. */
    ck_assert_int_eq(weave_mutex_lock(&m), 0);
    ck_assert_int_eq(weave_cancel(tk), 0);
    ck_assert_int_eq(weave_sleep(2 * DL), 0);
    settle();
    ck_assert_int_eq(k.done + d.done + t.done, 0); /* they wait for m */
    ck_assert_int_eq(weave_mutex_unlock(&m), 0);
    for (int i = 0; i < 4; i++)
        WT_JOIN(h[i]);
    assert_failed(&k, ECANCELED);
    assert_timed_out(&d);
    assert_timed_out(&t);
    ck_assert_int_eq(k.held + d.held + t.held, 3);

    WT_JOIN(WT_SPAWN(cancel_then_wait, &k));
    ck_assert_int_eq(weave_cond_destroy(&c), 0); /* nobody left in it */
    ck_assert_int_eq(weave_mutex_destroy(&m), 0);
    WT_ASSERT_IDLE();
}

/*
 * No lost wake-up: the signaller queues for the mutex while the waiter
 * holds it, and gets it the moment weave_cond_wait lets go of it; its
 * signal then finds the waiter already waiting, since letting go of the
 * mutex and starting to wait are one step. The waiter waits once, with no
 * predicate loop, so a signal that came "between" would be lost and the
 * wait would time out.
 */
struct lost {
    weave_mutex m;
    weave_cond c;
    int signalled;
    int r, err;
};

static void *lost_waiter(void *arg)
{
    struct lost *l = arg;

    ck_assert_int_eq(weave_mutex_lock(&l->m), 0);
    ck_assert_int_eq(weave_yield(), 0); /* the signaller queues for m */
    ck_assert_int_eq(l->signalled, 0);
    errno = 0;
    l->r = weave_cond_wait_timeout(&l->c, &l->m, WT_PROMPT_MS);
    l->err = errno;
    ck_assert_int_eq(weave_mutex_unlock(&l->m), 0);
    return NULL;
}

static void *lost_signaller(void *arg)
{
    struct lost *l = arg;

    ck_assert_int_eq(weave_mutex_lock(&l->m), 0); /* at once after the wait began */
    ck_assert_int_eq(weave_cond_signal(&l->c), 0);
    l->signalled = 1;
    ck_assert_int_eq(weave_mutex_unlock(&l->m), 0);
    return NULL;
}

WT_TEST(cond_no_lost_wakeup)
{
    struct lost l;
    weave_task *w, *s;

    memset(&l, 0, sizeof(l));
    ck_assert_int_eq(weave_mutex_init(&l.m), 0);
    ck_assert_int_eq(weave_cond_init(&l.c), 0);
    w = WT_SPAWN(lost_waiter, &l);
    s = WT_SPAWN(lost_signaller, &l);
    WT_JOIN(w);
    WT_JOIN(s);
    ck_assert_int_eq(l.signalled, 1);
    ck_assert_msg(l.r == 0, "the signal was lost: wait returned %d, errno %d", l.r, l.err);
    ck_assert_int_eq(weave_cond_destroy(&l.c), 0);
    ck_assert_int_eq(weave_mutex_destroy(&l.m), 0);
    WT_ASSERT_IDLE();
}

/*
 * A bounded buffer with two condition variables and predicate loops:
 * producers wait while it is full, consumers while it is empty; every item
 * is consumed exactly once and the buffer never overflows.
 */
#define PC_CAP   4
#define PC_PROD  4
#define PC_CONS  3
#define PC_ITEMS (WT_ON_VALGRIND ? 100 : 1500) /* per producer */

struct pc {
    weave_mutex m;
    weave_cond not_empty, not_full;
    int buf[PC_CAP];
    int head, count, max_count;
    int closed;
    unsigned char *seen; /* [PC_PROD * PC_ITEMS] */
    long consumed;
};

static void *pc_producer(void *arg)
{
    struct pc *p = arg;
    static int next_id;
    int id = next_id++;

    for (int i = 0; i < PC_ITEMS; i++) {
        ck_assert_int_eq(weave_mutex_lock(&p->m), 0);
        while (p->count == PC_CAP)
            ck_assert_int_eq(weave_cond_wait(&p->not_full, &p->m), 0);
        p->buf[(p->head + p->count) % PC_CAP] = id * PC_ITEMS + i;
        if (++p->count > p->max_count)
            p->max_count = p->count;
        ck_assert_int_eq(weave_cond_signal(&p->not_empty), 0);
        ck_assert_int_eq(weave_mutex_unlock(&p->m), 0);
        if (i % 7 == id)
            ck_assert_int_eq(weave_yield(), 0);
    }
    return NULL;
}

static void *pc_consumer(void *arg)
{
    struct pc *p = arg;

    for (;;) {
        int v;

        ck_assert_int_eq(weave_mutex_lock(&p->m), 0);
        while (p->count == 0 && !p->closed)
            ck_assert_int_eq(weave_cond_wait(&p->not_empty, &p->m), 0);
        if (p->count == 0) { /* closed and drained */
            ck_assert_int_eq(weave_mutex_unlock(&p->m), 0);
            return NULL;
        }
        v = p->buf[p->head];
        p->head = (p->head + 1) % PC_CAP;
        p->count--;
        ck_assert_int_eq(weave_cond_signal(&p->not_full), 0);
        ck_assert_int_eq(weave_mutex_unlock(&p->m), 0);
        ck_assert_int_ge(v, 0);
        ck_assert_int_lt(v, PC_PROD * PC_ITEMS);
        ck_assert_int_eq(p->seen[v], 0);
        p->seen[v] = 1;
        p->consumed++;
        if (v % 5 == 0)
            ck_assert_int_eq(weave_yield(), 0);
    }
}

WT_TEST(cond_producer_consumer)
{
    struct pc p;
    weave_task *prod[PC_PROD], *cons[PC_CONS];

    memset(&p, 0, sizeof(p));
    p.seen = calloc((size_t)(PC_PROD * PC_ITEMS), 1);
    ck_assert_ptr_nonnull(p.seen);
    ck_assert_int_eq(weave_mutex_init(&p.m), 0);
    ck_assert_int_eq(weave_cond_init(&p.not_empty), 0);
    ck_assert_int_eq(weave_cond_init(&p.not_full), 0);
    for (int i = 0; i < PC_CONS; i++)
        cons[i] = WT_SPAWN(pc_consumer, &p);
    for (int i = 0; i < PC_PROD; i++)
        prod[i] = WT_SPAWN(pc_producer, &p);
    for (int i = 0; i < PC_PROD; i++)
        WT_JOIN(prod[i]);
    ck_assert_int_eq(weave_mutex_lock(&p.m), 0);
    p.closed = 1;
    ck_assert_int_eq(weave_cond_broadcast(&p.not_empty), 0);
    ck_assert_int_eq(weave_mutex_unlock(&p.m), 0);
    for (int i = 0; i < PC_CONS; i++)
        WT_JOIN(cons[i]);
    ck_assert_int_eq(p.consumed, (long)PC_PROD * PC_ITEMS);
    for (int i = 0; i < PC_PROD * PC_ITEMS; i++)
        ck_assert_int_eq(p.seen[i], 1);
    ck_assert_int_le(p.max_count, PC_CAP);
    ck_assert_int_eq(p.max_count, PC_CAP); /* producers did have to wait */
    free(p.seen);
    ck_assert_int_eq(weave_cond_destroy(&p.not_empty), 0);
    ck_assert_int_eq(weave_cond_destroy(&p.not_full), 0);
    ck_assert_int_eq(weave_mutex_destroy(&p.m), 0);
    WT_ASSERT_IDLE();
}

/* Waiting on a mutex held by another task: EPERM, and it stays theirs. */
static void *foreign_mutex_waiter(void *arg)
{
    struct job *j = arg;

    WT_FAILS(weave_cond_wait(j->c, j->m), EPERM);
    WT_FAILS(weave_cond_wait_timeout(j->c, j->m, 10), EPERM);
    WT_FAILS(weave_mutex_unlock(j->m), EPERM);
    return NULL;
}

static weave_cond static_cond = WEAVE_COND_INIT;

WT_TEST(cond_misuse)
{
    weave_mutex m;
    weave_cond c;
    struct job w = job_of(OP_COND, PLAIN, 0), s = job_of(OP_COND, PLAIN, 0);

    ck_assert_int_eq(weave_mutex_init(&m), 0);
    ck_assert_int_eq(weave_cond_init(&c), 0);
    WT_FAILS(weave_cond_wait(&c, &m), EPERM); /* m is free */
    WT_FAILS(weave_cond_wait_timeout(&c, &m, 10), EPERM);
    ck_assert_int_eq(weave_mutex_lock(&m), 0);
    w.m = &m;
    w.c = &c;
    WT_JOIN(WT_SPAWN(foreign_mutex_waiter, &w));
    WT_FAILS(weave_cond_wait_timeout(&c, &m, -2), EINVAL);
    ck_assert_int_eq(weave_mutex_unlock(&m), 0); /* still ours after both */

    go(&w);
    settle();
    ck_assert_int_eq(w.done, 0);
    WT_FAILS(weave_cond_destroy(&c), EBUSY);
    ck_assert_int_eq(weave_cond_signal(&c), 0);
    settle();
    assert_ok(&w);
    ck_assert_int_eq(weave_cond_destroy(&c), 0);
    ck_assert_int_eq(weave_cond_init(&c), 0); /* again, after destroy */

    /* A condition never passed to weave_cond_init. */
    s.m = &m;
    s.c = &static_cond;
    go(&s);
    settle();
    ck_assert_int_eq(s.done, 0);
    WT_FAILS(weave_cond_destroy(&static_cond), EBUSY);
    ck_assert_int_eq(weave_cond_broadcast(&static_cond), 0);
    settle();
    assert_ok(&s);
    ck_assert_int_eq(s.held, 1);
    ck_assert_int_eq(weave_cond_destroy(&static_cond), 0);

    WT_FAILS(weave_cond_init(NULL), EINVAL);
    WT_FAILS(weave_cond_destroy(NULL), EINVAL);
    WT_FAILS(weave_cond_wait(NULL, &m), EINVAL);
    WT_FAILS(weave_cond_wait(&c, NULL), EINVAL);
    WT_FAILS(weave_cond_wait_timeout(NULL, &m, 10), EINVAL);
    WT_FAILS(weave_cond_wait_timeout(&c, NULL, 10), EINVAL);
    WT_FAILS(weave_cond_signal(NULL), EINVAL);
    WT_FAILS(weave_cond_broadcast(NULL), EINVAL);
    ck_assert_int_eq(weave_cond_destroy(&c), 0);
    ck_assert_int_eq(weave_mutex_destroy(&m), 0);
    WT_ASSERT_IDLE();
}

/* ---- semaphore ------------------------------------------------------------------- */

/* At most `permits` tasks inside at once. */
struct limit {
    weave_sem *s;
    int inside, max_inside;
};

static void *limited_task(void *arg)
{
    struct limit *l = arg;

    ck_assert_int_eq(weave_sem_acquire(l->s), 0);
    if (++l->inside > l->max_inside)
        l->max_inside = l->inside;
    ck_assert_int_eq(weave_sleep(5), 0);
    l->inside--;
    ck_assert_int_eq(weave_sem_release(l->s), 0);
    return NULL;
}

static weave_sem static_sem = WEAVE_SEM_INIT(2);

WT_TEST(sem_counting)
{
    weave_sem s;
    struct limit l = {&static_sem, 0, 0};
    weave_task *t[6];

    ck_assert_int_eq(weave_sem_init(&s, 3), 0);
    ck_assert_int_eq(weave_sem_value(&s), 3);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(weave_sem_try_acquire(&s), 0);
    WT_FAILS(weave_sem_try_acquire(&s), EAGAIN);
    ck_assert_int_eq(weave_sem_value(&s), 0);
    ck_assert_int_eq(weave_sem_release(&s), 0);
    ck_assert_int_eq(weave_sem_release(&s), 0);
    ck_assert_int_eq(weave_sem_value(&s), 2);
    ck_assert_int_eq(weave_sem_acquire(&s), 0);
    ck_assert_int_eq(weave_sem_acquire_timeout(&s, 1000), 0);
    ck_assert_int_eq(weave_sem_value(&s), 0);
    WT_FAILS(weave_sem_acquire_timeout(&s, 0), ETIMEDOUT);
    ck_assert_int_eq(weave_sem_destroy(&s), 0);

    /* WEAVE_SEM_INIT(2), never initialised: two tasks inside at most. */
    ck_assert_int_eq(weave_sem_value(&static_sem), 2);
    for (int i = 0; i < 6; i++)
        t[i] = WT_SPAWN(limited_task, &l);
    for (int i = 0; i < 6; i++)
        WT_JOIN(t[i]);
    ck_assert_int_eq(l.max_inside, 2);
    ck_assert_int_eq(weave_sem_value(&static_sem), 2);
    ck_assert_int_eq(weave_sem_destroy(&static_sem), 0);
    WT_ASSERT_IDLE();
}

/*
 * release hands its permit straight to the first waiter: the count stays
 * 0, a try_acquire right after it cannot take the permit, and waiters are
 * served in the order they came.
 */
WT_TEST(sem_fifo_handoff)
{
    weave_sem s;
    struct job w[4];

    returned = 0;
    ck_assert_int_eq(weave_sem_init(&s, 0), 0);
    for (int i = 0; i < 4; i++) {
        w[i] = job_of(OP_ACQUIRE, PLAIN, 0);
        w[i].s = &s;
        w[i].keep = 1;
        go(&w[i]);
        settle();
    }
    ck_assert_int_eq(weave_sem_release(&s), 0);
    ck_assert_int_eq(weave_sem_value(&s), 0);    /* handed, not counted */
    WT_FAILS(weave_sem_try_acquire(&s), EAGAIN); /* it is w[0]'s */
    WT_FAILS(weave_sem_acquire_timeout(&s, 0), ETIMEDOUT);
    settle();
    assert_ok(&w[0]);
    for (int i = 1; i < 4; i++)
        ck_assert_int_eq(w[i].done, 0);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(weave_sem_release(&s), 0);
    ck_assert_int_eq(weave_sem_value(&s), 0);
    settle();
    for (int i = 0; i < 4; i++) {
        assert_ok(&w[i]);
        ck_assert_int_eq(w[i].order, i + 1);
    }
    ck_assert_int_eq(weave_sem_release(&s), 0); /* nobody waits: counted */
    ck_assert_int_eq(weave_sem_value(&s), 1);
    ck_assert_int_eq(weave_sem_destroy(&s), 0);
    WT_ASSERT_IDLE();
}

/*
 * A waiter that gives up (cancelled, timed out) before a release is never
 * handed a permit, and one cancelled after its release but before it ran
 * either has the permit or left it counted: permits are conserved.
 */
WT_TEST(sem_gives_up_gets_nothing)
{
    weave_sem s;
    struct job a = job_of(OP_ACQUIRE, PLAIN, 0), b = job_of(OP_ACQUIRE, PLAIN, 0);
    struct job c = job_of(OP_ACQUIRE, PLAIN, 0), t = job_of(OP_ACQUIRE, TIMED, 20);
    struct job d = job_of(OP_ACQUIRE, PLAIN, 0);
    struct job *all[] = {&a, &b, &t, &c};
    weave_task *h[4], *td;
    int64_t t_cancel;

    ck_assert_int_eq(weave_sem_init(&s, 0), 0);
    for (int i = 0; i < 4; i++) {
        all[i]->s = &s;
        all[i]->keep = 1;
        h[i] = start(all[i]);
    }
    settle();
    t_cancel = wt_now_ns();
    ck_assert_int_eq(weave_cancel(h[1]), 0); /* b */
    ck_assert_int_eq(weave_sleep(40), 0);    /* t times out */
    assert_failed(&b, ECANCELED);
    ck_assert_int_lt((b.t1 - t_cancel) / MS, WT_PROMPT_MS);
    assert_timed_out(&t);
    ck_assert_int_eq(a.done + c.done, 0);
    ck_assert_int_eq(weave_sem_release(&s), 0);
    ck_assert_int_eq(weave_sem_release(&s), 0);
    settle();
    assert_ok(&a);
    assert_ok(&c);
    ck_assert_int_eq(weave_sem_value(&s), 0);
    ck_assert_int_eq(weave_sem_release(&s), 0); /* the one b and t did not take */
    ck_assert_int_eq(weave_sem_value(&s), 1);
    for (int i = 0; i < 4; i++)
        WT_JOIN(h[i]);

    /* Cancelled after the handoff. */
    ck_assert_int_eq(weave_sem_try_acquire(&s), 0);
    d.s = &s;
    d.keep = 1;
    td = start(&d);
    settle();
    ck_assert_int_eq(weave_sem_release(&s), 0);
    ck_assert_int_eq(weave_cancel(td), 0); /* d has not run since */
    WT_JOIN(td);
    ck_assert_int_eq(d.done, 1);
    ck_assert_int_eq(weave_sem_value(&s) + (d.r == 0), 1);
    ck_assert_int_eq(weave_sem_destroy(&s), 0);
    WT_ASSERT_IDLE();
}

/* A cancelled task's acquire fails even with permits there, taking none. */
static void *cancelled_acquirer(void *arg)
{
    weave_sem *s = arg;

    ck_assert_int_eq(weave_cancel(weave_self()), 0);
    WT_FAILS(weave_sem_acquire(s), ECANCELED);
    WT_FAILS(weave_sem_acquire_timeout(s, 1000), ECANCELED);
    WT_FAILS(weave_sem_acquire_timeout(s, 0), ECANCELED);
    return NULL;
}

WT_TEST(sem_deadline)
{
    weave_sem s;
    struct job d = job_of(OP_ACQUIRE, SCOPED, 30), t = job_of(OP_ACQUIRE, TIMED, 30);
    weave_task *h[2];

    ck_assert_int_eq(weave_sem_init(&s, 0), 0);
    d.s = t.s = &s;
    h[0] = start(&d);
    h[1] = start(&t);
    WT_JOIN(h[0]);
    WT_JOIN(h[1]);
    assert_timed_out(&d);
    assert_timed_out(&t);
    ck_assert_int_eq(weave_sem_value(&s), 0);
    WT_FAILS(weave_sem_acquire_timeout(&s, -2), EINVAL);

    ck_assert_int_eq(weave_sem_release(&s), 0);
    WT_JOIN(WT_SPAWN(cancelled_acquirer, &s));
    ck_assert_int_eq(weave_sem_value(&s), 1);
    ck_assert_int_eq(weave_sem_acquire_timeout(&s, 20), 0);
    ck_assert_int_eq(weave_sleep(40), 0); /* past the 20 ms: no scope left open */
    ck_assert_int_eq(weave_sem_release(&s), 0);
    ck_assert_int_eq(weave_sem_acquire_timeout(&s, 0), 0); /* a permit: 0 takes it */
    ck_assert_int_eq(weave_sem_value(&s), 0);
    WT_FAILS(weave_sem_acquire_timeout(&s, 0), ETIMEDOUT);
    ck_assert_int_eq(weave_sem_release(&s), 0);
    ck_assert_int_eq(weave_sem_destroy(&s), 0);
    WT_ASSERT_IDLE();
}

static weave_sem full_sem = WEAVE_SEM_INIT(WEAVE_SEM_VALUE_MAX);

WT_TEST(sem_overflow)
{
    weave_sem s;

    ck_assert_int_eq(weave_sem_init(&s, WEAVE_SEM_VALUE_MAX - 1), 0);
    ck_assert_int_eq(weave_sem_release(&s), 0);
    ck_assert_int_eq(weave_sem_value(&s), (int64_t)WEAVE_SEM_VALUE_MAX);
    WT_FAILS(weave_sem_release(&s), EOVERFLOW);
    ck_assert_int_eq(weave_sem_value(&s), (int64_t)WEAVE_SEM_VALUE_MAX);
    ck_assert_int_eq(weave_sem_try_acquire(&s), 0);
    ck_assert_int_eq(weave_sem_value(&s), (int64_t)WEAVE_SEM_VALUE_MAX - 1);
    ck_assert_int_eq(weave_sem_destroy(&s), 0);

    ck_assert_int_eq(weave_sem_value(&full_sem), (int64_t)WEAVE_SEM_VALUE_MAX);
    WT_FAILS(weave_sem_release(&full_sem), EOVERFLOW);
    ck_assert_int_eq(weave_sem_value(&full_sem), (int64_t)WEAVE_SEM_VALUE_MAX);
    WT_ASSERT_IDLE();
}

WT_TEST(sem_misuse)
{
    weave_sem s = WEAVE_SEM_INIT(5);
    struct job w = job_of(OP_ACQUIRE, PLAIN, 0);

    ck_assert_int_eq(weave_sem_value(&s), 5);
    ck_assert_int_eq(weave_sem_destroy(&s), 0); /* nobody waits */
    ck_assert_int_eq(weave_sem_init(&s, 0), 0);
    w.s = &s;
    w.keep = 1;
    go(&w);
    settle();
    WT_FAILS(weave_sem_destroy(&s), EBUSY);
    ck_assert_int_eq(weave_sem_release(&s), 0);
    settle();
    assert_ok(&w);
    ck_assert_int_eq(weave_sem_destroy(&s), 0);

    WT_FAILS(weave_sem_init(NULL, 1), EINVAL);
    WT_FAILS(weave_sem_destroy(NULL), EINVAL);
    WT_FAILS(weave_sem_acquire(NULL), EINVAL);
    WT_FAILS(weave_sem_acquire_timeout(NULL, 10), EINVAL);
    WT_FAILS(weave_sem_try_acquire(NULL), EINVAL);
    WT_FAILS(weave_sem_release(NULL), EINVAL);
    errno = 0;
    ck_assert_int_eq(weave_sem_value(NULL), -1);
    ck_assert_int_eq(errno, EINVAL);
    WT_ASSERT_IDLE();
}

/* ---- event ----------------------------------------------------------------------- */

/*
 * set wakes every waiter; while set, every wait returns at once; clear
 * makes waits wait again. Waiters woken by a set return 0 even if the
 * event is cleared before they run (a pulse).
 */
WT_TEST(event_set_wakes_all)
{
    weave_event e;
    struct job w[5], late = job_of(OP_EVENT, TIMED, 30);

    ck_assert_int_eq(weave_event_init(&e), 0);
    ck_assert_int_eq(weave_event_is_set(&e), 0);
    for (int i = 0; i < 5; i++) {
        w[i] = job_of(OP_EVENT, PLAIN, 0);
        w[i].e = &e;
        go(&w[i]);
    }
    settle();
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(w[i].done, 0);
    ck_assert_int_eq(weave_event_set(&e), 0);
    ck_assert_int_eq(weave_event_is_set(&e), 1);
    settle();
    for (int i = 0; i < 5; i++)
        assert_ok(&w[i]);
    ck_assert_int_eq(weave_event_set(&e), 0); /* again: harmless */
    ck_assert_int_eq(weave_event_wait(&e), 0);
    ck_assert_int_eq(weave_event_wait_timeout(&e, 1000), 0);
    ck_assert_int_eq(weave_event_wait_timeout(&e, 0), 0); /* set: 0 returns 0 */

    ck_assert_int_eq(weave_event_clear(&e), 0);
    ck_assert_int_eq(weave_event_is_set(&e), 0);
    ck_assert_int_eq(weave_event_clear(&e), 0); /* again: harmless */
    late.e = &e;
    WT_JOIN(start(&late));
    assert_timed_out(&late);

    /* A pulse: set, and clear before the woken waiters run. */
    for (int i = 0; i < 3; i++) {
        w[i] = job_of(OP_EVENT, PLAIN, 0);
        w[i].e = &e;
        go(&w[i]);
    }
    settle();
    ck_assert_int_eq(weave_event_set(&e), 0);
    ck_assert_int_eq(weave_event_clear(&e), 0);
    settle();
    for (int i = 0; i < 3; i++)
        assert_ok(&w[i]);
    ck_assert_int_eq(weave_event_destroy(&e), 0);
    WT_ASSERT_IDLE();
}

/* A waiter cancelled or past its deadline leaves; the others still wait and
 * are woken by the set. */
WT_TEST(event_cancel_deadline)
{
    weave_event e;
    struct job a = job_of(OP_EVENT, PLAIN, 0), k = job_of(OP_EVENT, PLAIN, 0);
    struct job d = job_of(OP_EVENT, SCOPED, 30), t = job_of(OP_EVENT, TIMED, 30);
    struct job z = job_of(OP_EVENT, TIMED, 0), b = job_of(OP_EVENT, PLAIN, 0);
    struct job *all[] = {&a, &k, &d, &t, &z, &b};
    weave_task *h[6];
    int64_t t_cancel;

    ck_assert_int_eq(weave_event_init(&e), 0);
    for (int i = 0; i < 6; i++) {
        all[i]->e = &e;
        h[i] = start(all[i]);
    }
    settle();
    assert_failed(&z, ETIMEDOUT);
    t_cancel = wt_now_ns();
    ck_assert_int_eq(weave_cancel(h[1]), 0);
    settle();
    assert_failed(&k, ECANCELED);
    ck_assert_int_lt((k.t1 - t_cancel) / MS, WT_PROMPT_MS);
    ck_assert_int_eq(weave_sleep(60), 0);
    assert_timed_out(&d);
    assert_timed_out(&t);
    ck_assert_int_eq(a.done + b.done, 0);
    ck_assert_int_eq(weave_event_set(&e), 0);
    for (int i = 0; i < 6; i++)
        WT_JOIN(h[i]);
    assert_ok(&a);
    assert_ok(&b);
    ck_assert_int_eq(weave_event_destroy(&e), 0);
    WT_ASSERT_IDLE();
}

static weave_event static_event = WEAVE_EVENT_INIT;

WT_TEST(event_misuse)
{
    weave_event e;
    struct job w = job_of(OP_EVENT, PLAIN, 0);

    /* Never initialised: a waiter, destroy refused while it waits. */
    ck_assert_int_eq(weave_event_is_set(&static_event), 0);
    w.e = &static_event;
    go(&w);
    settle();
    ck_assert_int_eq(w.done, 0);
    WT_FAILS(weave_event_destroy(&static_event), EBUSY);
    ck_assert_int_eq(weave_event_set(&static_event), 0);
    settle();
    assert_ok(&w);
    ck_assert_int_eq(weave_event_destroy(&static_event), 0);

    ck_assert_int_eq(weave_event_init(&e), 0);
    ck_assert_int_eq(weave_event_set(&e), 0);
    ck_assert_int_eq(weave_event_destroy(&e), 0);
    ck_assert_int_eq(weave_event_init(&e), 0); /* again, and unset */
    ck_assert_int_eq(weave_event_is_set(&e), 0);
    WT_FAILS(weave_event_wait_timeout(&e, -2), EINVAL);
    ck_assert_int_eq(weave_event_destroy(&e), 0);

    WT_FAILS(weave_event_init(NULL), EINVAL);
    WT_FAILS(weave_event_destroy(NULL), EINVAL);
    WT_FAILS(weave_event_set(NULL), EINVAL);
    WT_FAILS(weave_event_clear(NULL), EINVAL);
    WT_FAILS(weave_event_wait(NULL), EINVAL);
    WT_FAILS(weave_event_wait_timeout(NULL, 10), EINVAL);
    WT_FAILS(weave_event_is_set(NULL), EINVAL);
    WT_ASSERT_IDLE();
}

/* ---- weave_run ends while tasks wait ----------------------------------------------- */

/*
 * Main returns while tasks wait on the object: weave_run cancels them, each
 * call returns ECANCELED (a cond waiter holding the mutex), weave_run
 * returns 0, and the object is left with no waiter linked in it: destroy
 * succeeds, and it works again in the next run.
 */
enum { K_MUTEX, K_COND, K_SEM, K_EVENT, NKINDS };

#define NTEAR 3

static struct {
    weave_mutex m;
    weave_cond c;
    weave_sem s;
    weave_event e;
    struct job j[NTEAR];
    int holder_unlocked;
} tear;

/* Holds the mutex until cancelled, then lets go of it. */
static void *tear_holder(void *arg)
{
    (void)arg;
    ck_assert_int_eq(weave_mutex_lock(&tear.m), 0);
    WT_FAILS(weave_sleep(-1), ECANCELED);
    tear.holder_unlocked = weave_mutex_unlock(&tear.m) == 0;
    return NULL;
}

static void *m_teardown(void *arg)
{
    int kind = (int)wt_int(arg);
    static const enum op ops[NKINDS] = {OP_LOCK, OP_COND, OP_ACQUIRE, OP_EVENT};

    ck_assert_int_eq(weave_mutex_init(&tear.m), 0);
    ck_assert_int_eq(weave_cond_init(&tear.c), 0);
    ck_assert_int_eq(weave_sem_init(&tear.s, 0), 0);
    ck_assert_int_eq(weave_event_init(&tear.e), 0);
    if (kind == K_MUTEX)
        (void)WT_SPAWN(tear_holder, NULL);
    for (int i = 0; i < NTEAR; i++) {
        struct job *j = &tear.j[i];
        *j = job_of(ops[kind], PLAIN, 0);
        j->m = &tear.m;
        j->c = &tear.c;
        j->s = &tear.s;
        j->e = &tear.e;
        j->keep = 1;
        (void)WT_SPAWN(job_task, j);
    }
    settle();
    for (int i = 0; i < NTEAR; i++)
        ck_assert_int_eq(tear.j[i].done, 0);
    return wt_ptr(7); /* leaving them all waiting */
}

/* The next run: the objects work as new. */
static void *m_after_teardown(void *arg)
{
    struct job a = job_of(OP_LOCK, PLAIN, 0), c = job_of(OP_COND, PLAIN, 0);
    struct job s = job_of(OP_ACQUIRE, PLAIN, 0), e = job_of(OP_EVENT, PLAIN, 0);

    (void)arg;
    ck_assert_int_eq(weave_mutex_init(&tear.m), 0);
    ck_assert_int_eq(weave_cond_init(&tear.c), 0);
    ck_assert_int_eq(weave_sem_init(&tear.s, 0), 0);
    ck_assert_int_eq(weave_event_init(&tear.e), 0);
    a.m = c.m = &tear.m;
    c.c = &tear.c;
    s.s = &tear.s;
    e.e = &tear.e;
    ck_assert_int_eq(weave_mutex_lock(&tear.m), 0);
    go(&a);
    go(&c);
    go(&s);
    go(&e);
    settle();
    ck_assert_int_eq(weave_mutex_unlock(&tear.m), 0);
    settle(); /* a takes m and lets go, c waits */
    ck_assert_int_eq(weave_cond_signal(&tear.c), 0);
    ck_assert_int_eq(weave_sem_release(&tear.s), 0);
    ck_assert_int_eq(weave_event_set(&tear.e), 0);
    settle();
    assert_ok(&a);
    assert_ok(&c);
    assert_ok(&s);
    assert_ok(&e);
    ck_assert_int_eq(weave_mutex_destroy(&tear.m), 0);
    ck_assert_int_eq(weave_cond_destroy(&tear.c), 0);
    ck_assert_int_eq(weave_sem_destroy(&tear.s), 0);
    ck_assert_int_eq(weave_event_destroy(&tear.e), 0);
    WT_ASSERT_IDLE();
    return NULL;
}

START_TEST(teardown_with_waiters)
{
    ck_assert_ptr_eq(WT_RUN(m_teardown, wt_ptr(_i)), wt_ptr(7));
    for (int i = 0; i < NTEAR; i++) {
        assert_failed(&tear.j[i], ECANCELED);
        ck_assert_int_eq(tear.j[i].held, _i == K_COND);
    }
    if (_i == K_MUTEX)
        ck_assert_int_eq(tear.holder_unlocked, 1);
    ck_assert_int_eq(weave_sem_value(&tear.s), 0);
    ck_assert_int_eq(weave_event_is_set(&tear.e), 0);
    /* Nobody is left linked in them, nobody holds the mutex. */
    ck_assert_int_eq(weave_mutex_destroy(&tear.m), 0);
    ck_assert_int_eq(weave_cond_destroy(&tear.c), 0);
    ck_assert_int_eq(weave_sem_destroy(&tear.s), 0);
    ck_assert_int_eq(weave_event_destroy(&tear.e), 0);
    WT_RUN(m_after_teardown, NULL);
}
END_TEST

/* ---- outside a task, and other threads --------------------------------------------- */

/*
 * With no scheduler on the thread, every call that takes, gives, waits or
 * wakes is EPERM (weave.h's one rule), even one that would not have to
 * wait: locking a free mutex, releasing a permit, setting an event,
 * signalling nobody. Initialising, destroying and looking work.
 */
START_TEST(outside_a_task)
{
    weave_mutex m = WEAVE_MUTEX_INIT;
    weave_cond c = WEAVE_COND_INIT;
    weave_sem s = WEAVE_SEM_INIT(1);
    weave_event e = WEAVE_EVENT_INIT;

    WT_FAILS(weave_mutex_lock(&m), EPERM);
    WT_FAILS(weave_mutex_lock_timeout(&m, 10), EPERM);
    WT_FAILS(weave_mutex_lock_timeout(&m, 0), EPERM);
    WT_FAILS(weave_mutex_trylock(&m), EPERM);
    WT_FAILS(weave_mutex_unlock(&m), EPERM);
    WT_FAILS(weave_cond_wait(&c, &m), EPERM);
    WT_FAILS(weave_cond_wait_timeout(&c, &m, 10), EPERM);
    WT_FAILS(weave_sem_acquire(&s), EPERM);
    WT_FAILS(weave_sem_acquire_timeout(&s, 10), EPERM);
    WT_FAILS(weave_event_wait(&e), EPERM);
    WT_FAILS(weave_event_wait_timeout(&e, 10), EPERM);

    WT_FAILS(weave_cond_signal(&c), EPERM);
    WT_FAILS(weave_cond_broadcast(&c), EPERM);
    WT_FAILS(weave_sem_release(&s), EPERM);
    WT_FAILS(weave_sem_try_acquire(&s), EPERM);
    ck_assert_int_eq(weave_sem_value(&s), 1);
    WT_FAILS(weave_event_set(&e), EPERM);
    WT_FAILS(weave_event_clear(&e), EPERM);
    ck_assert_int_eq(weave_event_is_set(&e), 0);
    ck_assert_int_eq(weave_mutex_destroy(&m), 0);
    ck_assert_int_eq(weave_cond_destroy(&c), 0);
    ck_assert_int_eq(weave_sem_destroy(&s), 0);
    ck_assert_int_eq(weave_event_destroy(&e), 0);
}
END_TEST

/*
 * Objects whose waiters are tasks of this thread's scheduler, and whose
 * mutex is held by one of them (not the main task: see the next tests).
 * Another thread, running a scheduler of its own or none, tries them: every
 * call that would wake, or queue behind, those waiters fails with EPERM
 * and changes nothing; afterwards the owner's own calls serve the waiters.
 */
static struct {
    weave_mutex m;  /* held by x.holder, x.jm waits for it */
    weave_mutex cm; /* the mutex of x.c */
    weave_cond c;   /* x.jc waits */
    weave_sem s;    /* x.js waits */
    weave_event e;  /* x.je waits */
    weave_event go; /* lets x.holder unlock */
    struct job jm, jc, js, je;
    int other_ran;
} x;

static void *x_holder(void *arg)
{
    (void)arg;
    ck_assert_int_eq(weave_mutex_lock(&x.m), 0);
    ck_assert_int_eq(weave_event_wait(&x.go), 0);
    ck_assert_int_eq(weave_mutex_unlock(&x.m), 0);
    return NULL;
}

/* What the other thread tries, with or without a scheduler. */
static void x_try_all(void)
{
    weave_mutex own = WEAVE_MUTEX_INIT;

    WT_FAILS(weave_cond_signal(&x.c), EPERM);
    WT_FAILS(weave_cond_broadcast(&x.c), EPERM);
    WT_FAILS(weave_sem_release(&x.s), EPERM);
    WT_FAILS(weave_event_set(&x.e), EPERM);
    WT_FAILS(weave_mutex_unlock(&x.m), EPERM);
    WT_FAILS(weave_mutex_lock(&x.m), EPERM);
    WT_FAILS(weave_mutex_lock_timeout(&x.m, 10), EPERM);
    WT_FAILS(weave_mutex_trylock(&x.m), EPERM); /* another thread's mutex */
    WT_FAILS(weave_sem_acquire(&x.s), EPERM);
    WT_FAILS(weave_sem_acquire_timeout(&x.s, 10), EPERM);
    WT_FAILS(weave_sem_try_acquire(&x.s), EPERM);
    WT_FAILS(weave_event_wait(&x.e), EPERM);
    WT_FAILS(weave_event_wait_timeout(&x.e, 10), EPERM);
    if (weave_self()) {
        ck_assert_int_eq(weave_mutex_lock(&own), 0);
        WT_FAILS(weave_cond_wait(&x.c, &own), EPERM);
        WT_FAILS(weave_cond_wait_timeout(&x.c, &own, 10), EPERM);
        ck_assert_int_eq(weave_mutex_unlock(&own), 0); /* still held */
    }
    x.other_ran++;
}

static void *x_other_main(void *arg)
{
    (void)arg;
    x_try_all();
    WT_ASSERT_IDLE();
    return NULL;
}

static void *x_thread_with_scheduler(void *arg)
{
    (void)arg;
    ck_assert_int_eq(weave_run(x_other_main, NULL, NULL), 0);
    return NULL;
}

static void *x_thread_plain(void *arg)
{
    (void)arg;
    x_try_all();
    return NULL;
}

WT_TEST(cross_thread_eperm)
{
    pthread_t th;
    weave_task *h[5];

    memset(&x, 0, sizeof(x));
    ck_assert_int_eq(weave_mutex_init(&x.m), 0);
    ck_assert_int_eq(weave_mutex_init(&x.cm), 0);
    ck_assert_int_eq(weave_cond_init(&x.c), 0);
    ck_assert_int_eq(weave_sem_init(&x.s, 0), 0);
    ck_assert_int_eq(weave_event_init(&x.e), 0);
    ck_assert_int_eq(weave_event_init(&x.go), 0);
    x.jm = job_of(OP_LOCK, PLAIN, 0);
    x.jm.m = &x.m;
    x.jc = job_of(OP_COND, PLAIN, 0);
    x.jc.m = &x.cm;
    x.jc.c = &x.c;
    x.js = job_of(OP_ACQUIRE, PLAIN, 0);
    x.js.s = &x.s;
    x.js.keep = 1;
    x.je = job_of(OP_EVENT, PLAIN, 0);
    x.je.e = &x.e;
    h[0] = WT_SPAWN(x_holder, NULL);
    settle();
    h[1] = start(&x.jm);
    h[2] = start(&x.jc);
    h[3] = start(&x.js);
    h[4] = start(&x.je);
    settle();

    /* The other threads fail at once, so this thread may simply block in
     * pthread_join: nothing here needs to run meanwhile. */
    ck_assert_int_eq(pthread_create(&th, NULL, x_thread_with_scheduler, NULL), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_int_eq(pthread_create(&th, NULL, x_thread_plain, NULL), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_int_eq(x.other_ran, 2);

    settle();
    ck_assert_int_eq(x.jm.done + x.jc.done + x.js.done + x.je.done, 0);
    ck_assert_int_eq(weave_sem_value(&x.s), 0);
    ck_assert_int_eq(weave_event_is_set(&x.e), 0);
    ck_assert_int_eq(weave_cond_signal(&x.c), 0);
    ck_assert_int_eq(weave_sem_release(&x.s), 0);
    ck_assert_int_eq(weave_event_set(&x.e), 0);
    ck_assert_int_eq(weave_event_set(&x.go), 0);
    for (int i = 0; i < 5; i++)
        WT_JOIN(h[i]);
    assert_ok(&x.jm);
    ck_assert_int_eq(x.jm.held, 1);
    assert_ok(&x.jc);
    ck_assert_int_eq(x.jc.held, 1);
    assert_ok(&x.js);
    assert_ok(&x.je);
    ck_assert_int_eq(weave_mutex_destroy(&x.m), 0);
    ck_assert_int_eq(weave_mutex_destroy(&x.cm), 0);
    ck_assert_int_eq(weave_cond_destroy(&x.c), 0);
    ck_assert_int_eq(weave_sem_destroy(&x.s), 0);
    ck_assert_int_eq(weave_event_destroy(&x.e), 0);
    ck_assert_int_eq(weave_event_destroy(&x.go), 0);
    WT_ASSERT_IDLE();
}

/*
 * The mutex held by this thread's main task, with nobody waiting. Another
 * thread's main task (task ids start at 1 on every scheduler) is not its
 * owner: its unlock must fail with EPERM and leave the mutex held.
 */
static weave_mutex held_here;
static int other_unlock_r, other_unlock_err;

static void *unlock_elsewhere_main(void *arg)
{
    (void)arg;
    errno = 0;
    other_unlock_r = weave_mutex_unlock(&held_here);
    other_unlock_err = errno;
    return NULL;
}

static void *unlock_elsewhere_thread(void *arg)
{
    (void)arg;
    ck_assert_int_eq(weave_run(unlock_elsewhere_main, NULL, NULL), 0);
    return NULL;
}

WT_TEST(cross_thread_unlock_by_same_task_id)
{
    pthread_t th;

    ck_assert_int_eq(weave_mutex_init(&held_here), 0);
    ck_assert_int_eq(weave_mutex_lock(&held_here), 0);
    ck_assert_int_eq(pthread_create(&th, NULL, unlock_elsewhere_thread, NULL), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_msg(other_unlock_r == -1 && other_unlock_err == EPERM,
                  "another thread's task unlocked our mutex: returned %d, errno %d", other_unlock_r,
                  other_unlock_err);
    ck_assert_int_eq(weave_mutex_unlock(&held_here), 0); /* still ours */
    ck_assert_int_eq(weave_mutex_destroy(&held_here), 0);
    WT_ASSERT_IDLE();
}

/*
 * The mutex held by a task of this thread (not main), with nobody waiting.
 * Another thread's task that locks it must not queue behind our task: the
 * unlock here would then hand the mutex to, and wake, a task of the other
 * scheduler. Its lock must fail with EPERM at once.
 */
static int other_lock_r, other_lock_err;
static int64_t other_lock_ms;

static void *lock_elsewhere_main(void *arg)
{
    int64_t t0 = wt_now_ns();

    (void)arg;
    errno = 0;
    other_lock_r = weave_mutex_lock_timeout(&held_here, 200);
    other_lock_err = errno;
    other_lock_ms = wt_ms_since(t0);
    if (other_lock_r == 0)
        (void)weave_mutex_unlock(&held_here);
    return NULL;
}

static void *lock_elsewhere_thread(void *arg)
{
    (void)arg;
    ck_assert_int_eq(weave_run(lock_elsewhere_main, NULL, NULL), 0);
    return NULL;
}

static void *hold_held_here(void *arg)
{
    pthread_t th;

    (void)arg;
    ck_assert_int_eq(weave_mutex_lock(&held_here), 0);
    ck_assert_int_eq(pthread_create(&th, NULL, lock_elsewhere_thread, NULL), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0); /* we hold it meanwhile */
    ck_assert_int_eq(weave_mutex_unlock(&held_here), 0);
    return NULL;
}

WT_TEST(cross_thread_lock_of_held_mutex)
{
    ck_assert_int_eq(weave_mutex_init(&held_here), 0);
    WT_JOIN(WT_SPAWN(hold_held_here, NULL));
    ck_assert_msg(other_lock_r == -1 && other_lock_err == EPERM,
                  "another thread's task queued for our task's mutex: returned %d, errno %d "
                  "after %lld ms",
                  other_lock_r, other_lock_err, (long long)other_lock_ms);
    ck_assert_int_eq(weave_mutex_trylock(&held_here), 0);
    ck_assert_int_eq(weave_mutex_unlock(&held_here), 0);
    ck_assert_int_eq(weave_mutex_destroy(&held_here), 0);
    WT_ASSERT_IDLE();
}

/* ---- the suite ------------------------------------------------------------------- */

static Suite *sync_suite(void)
{
    Suite *s = suite_create("sync");
    TCase *mutex = tcase_create("mutex");
    TCase *cond = tcase_create("cond");
    TCase *sem = tcase_create("sem");
    TCase *event = tcase_create("event");
    TCase *tear_tc = tcase_create("teardown");
    TCase *threads = tcase_create("threads");

    tcase_set_timeout(mutex, 8);
    tcase_add_test(mutex, mutex_excludes);
    tcase_add_test(mutex, mutex_static_init);
    tcase_add_test(mutex, mutex_fifo_no_barging);
    tcase_add_test(mutex, mutex_misuse);
    tcase_add_test(mutex, mutex_cancel_waiter);
    tcase_add_test(mutex, mutex_cancel_after_handoff);
    tcase_add_test(mutex, mutex_deadline);
    suite_add_tcase(s, mutex);

    tcase_set_timeout(cond, 8);
    tcase_add_test(cond, cond_signal_order);
    tcase_add_test(cond, cond_errors_hold_mutex);
    tcase_add_test(cond, cond_no_lost_wakeup);
    tcase_add_test(cond, cond_producer_consumer);
    tcase_add_test(cond, cond_misuse);
    suite_add_tcase(s, cond);

    tcase_set_timeout(sem, 8);
    tcase_add_test(sem, sem_counting);
    tcase_add_test(sem, sem_fifo_handoff);
    tcase_add_test(sem, sem_gives_up_gets_nothing);
    tcase_add_test(sem, sem_deadline);
    tcase_add_test(sem, sem_overflow);
    tcase_add_test(sem, sem_misuse);
    suite_add_tcase(s, sem);

    tcase_set_timeout(event, 8);
    tcase_add_test(event, event_set_wakes_all);
    tcase_add_test(event, event_cancel_deadline);
    tcase_add_test(event, event_misuse);
    suite_add_tcase(s, event);

    tcase_set_timeout(tear_tc, 8);
    tcase_add_loop_test(tear_tc, teardown_with_waiters, 0, NKINDS);
    suite_add_tcase(s, tear_tc);

    wt_tag_native(threads);
    tcase_set_timeout(threads, 8);
    tcase_add_test(threads, outside_a_task);
    tcase_add_test(threads, cross_thread_eperm);
    tcase_add_test(threads, cross_thread_unlock_by_same_task_id);
    tcase_add_test(threads, cross_thread_lock_of_held_mutex);
    suite_add_tcase(s, threads);
    return s;
}

int main(void)
{
    return wt_main(sync_suite());
}
