/*
 * test_sched.c - tasks and the scheduler: spawn, join, detach, cancel,
 * yield, weave_run's result, shutdown and deadlock, names and ids, handles.
 *
 * Each test runs weave_run in its body; its main task ends by checking that
 * the scheduler holds nothing but itself (WT_ASSERT_IDLE). Tasks record
 * what they saw in static logs, which the test asserts after weave_run
 * returns, so that a task that never ran shows up as a missing entry.
 *
 * Check timeouts: "core" 10 s x 36 tests, "stress" 60 s x 1 = 420 s; the
 * CTest timeout in CMakeLists.txt (450 s) is above their sum.
 */
#include <errno.h>
#include <fenv.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "weave_test.h"

/* ---- a log of events, filled by tasks --------------------------------- */

#define LOG_MAX 256

static int log_buf[LOG_MAX];
static int log_len;

static void log_put(int v)
{
    ck_assert_int_lt(log_len, LOG_MAX);
    log_buf[log_len++] = v;
}

static void log_expect(const int *want, int n)
{
    ck_assert_int_eq(log_len, n);
    for (int i = 0; i < n; i++)
        ck_assert_msg(log_buf[i] == want[i], "log[%d] = %d, expected %d", i, log_buf[i], want[i]);
}

/* ---- small task bodies ------------------------------------------------- */

static void *ret_arg_plus_one(void *arg)
{
    return (char *)arg + 1;
}

static void *log_arg(void *arg)
{
    log_put((int)wt_int(arg));
    return arg;
}

static void *sleep_forever(void *arg)
{
    int *seen = arg;
    int r = weave_sleep(-1);

    if (seen)
        *seen = r == -1 ? errno : 0;
    return wt_ptr(7);
}

static void *sleep_ms(void *arg)
{
    return wt_ptr(weave_sleep((int64_t)wt_int(arg)));
}

/* ---- lifecycle and results -------------------------------------------- */

static char marker[4];

WT_TEST(lifecycle_join_hands_over_result)
{
    weave_task *t;
    weave_stats st;

    t = WT_SPAWN(ret_arg_plus_one, marker);
    ck_assert_int_eq(weave_get_stats(&st), 0);
    ck_assert_uint_eq(st.tasks_live, 2);
    ck_assert_uint_eq(st.tasks_spawned, 2); /* main and t */
    ck_assert_uint_eq(st.stacks_in_use, 2);
    ck_assert_ptr_eq(WT_JOIN(t), marker + 1);
    WT_ASSERT_IDLE();
}

WT_TEST(ended_task_is_a_zombie_until_joined)
{
    weave_task *t;
    weave_stats st;

    t = WT_SPAWN(ret_arg_plus_one, marker);
    ck_assert_int_eq(weave_sleep(1), 0);
    /* t has ended but is not joined: a zombie holding its result, and the
     * stack its record lives on, until the join. */
    ck_assert_int_eq(weave_get_stats(&st), 0);
    ck_assert_uint_eq(st.tasks_live, 1);
    ck_assert_uint_eq(st.tasks_zombie, 1);
    ck_assert_uint_eq(st.stacks_in_use, 2);
    ck_assert_ptr_eq(WT_JOIN(t), marker + 1);
    ck_assert_uint_eq(wt_stats().stacks_in_use, 1);
    WT_ASSERT_IDLE();
}

static void *m_result(void *arg)
{
    return (char *)arg + 3;
}

START_TEST(run_returns_main_result)
{
    void *res = NULL;

    ck_assert_int_eq(weave_run(m_result, marker, &res), 0);
    ck_assert_ptr_eq(res, marker + 3);
    /* result may be NULL */
    ck_assert_int_eq(weave_run(m_result, marker, NULL), 0);
    /* ... and join's result too */
}
END_TEST

WT_TEST(join_with_null_result)
{
    weave_task *t = WT_SPAWN(ret_arg_plus_one, marker);

    ck_assert_int_eq(weave_join(t, NULL), 0);
    WT_ASSERT_IDLE();
}

/* ---- spawn and order --------------------------------------------------- */

static int child_ran;

static void *set_child_ran(void *arg)
{
    (void)arg;
    child_ran = 1;
    return NULL;
}

static void *m_spawn_returns(void *arg)
{
    weave_task *t;

    (void)arg;
    t = WT_SPAWN(set_child_ran, NULL);
    /* The spawner keeps running: the child is only queued. */
    ck_assert_int_eq(child_ran, 0);
    for (volatile int i = 0; i < 100000; i++)
        ;
    ck_assert_int_eq(child_ran, 0);
    ck_assert_int_eq(weave_yield(), 0);
    ck_assert_int_eq(child_ran, 1);
    WT_JOIN(t);
    WT_ASSERT_IDLE();
    return NULL;
}

START_TEST(spawn_returns_at_once)
{
    child_ran = 0;
    WT_RUN(m_spawn_returns, NULL);
    ck_assert_int_eq(child_ran, 1);
}
END_TEST

static void *m_fifo(void *arg)
{
    weave_task *t[10];

    (void)arg;
    for (int i = 0; i < 10; i++)
        t[i] = WT_SPAWN(log_arg, wt_ptr(i));
    for (int i = 9; i >= 0; i--) /* join order must not matter */
        ck_assert_int_eq((int)wt_int(WT_JOIN(t[i])), i);
    WT_ASSERT_IDLE();
    return NULL;
}

START_TEST(spawned_tasks_run_fifo)
{
    static const int want[10] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};

    log_len = 0;
    WT_RUN(m_fifo, NULL);
    log_expect(want, 10);
}
END_TEST

static void *yielder3(void *arg)
{
    for (int i = 0; i < 5; i++) {
        log_put((int)wt_int(arg));
        ck_assert_int_eq(weave_yield(), 0);
    }
    return NULL;
}

static void *m_round_robin(void *arg)
{
    weave_task *t[3];

    (void)arg;
    for (int i = 0; i < 3; i++)
        t[i] = WT_SPAWN(yielder3, wt_ptr(i));
    for (int i = 0; i < 3; i++)
        WT_JOIN(t[i]);
    WT_ASSERT_IDLE();
    return NULL;
}

START_TEST(yield_round_robin)
{
    static const int want[15] = {0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2};

    log_len = 0;
    WT_RUN(m_round_robin, NULL);
    log_expect(want, 15);
}
END_TEST

WT_TEST(yield_with_nothing_else_runnable)
{
    for (int i = 0; i < 1000; i++)
        ck_assert_int_eq(weave_yield(), 0);
    WT_ASSERT_IDLE();
}

/* ---- shutdown: leftover tasks are cancelled and run to the end -------- */

static int cleanups;
static int leftover_err[4];

static void *leftover_sleeper(void *arg)
{
    char *buf = malloc(64); /* freed on the way out: a leak if not */
    int r = weave_sleep(10000);

    leftover_err[0] = r == -1 ? errno : 0;
    /* Later blocking calls fail too, at once. */
    ck_assert_int_eq(weave_sleep(10000), -1);
    ck_assert_int_eq(errno, ECANCELED);
    free(buf);
    cleanups++;
    return arg;
}

static void *leftover_yielder(void *arg)
{
    int r;

    while ((r = weave_yield()) == 0)
        ;
    leftover_err[1] = errno;
    cleanups++;
    return arg;
}

static void *leftover_joiner(void *arg)
{
    weave_task *t = arg;
    int r = weave_join(t, NULL);

    leftover_err[2] = r == -1 ? errno : 0;
    cleanups++;
    return NULL;
}

static void *leftover_forever(void *arg)
{
    int r = weave_sleep(-1);

    leftover_err[3] = r == -1 ? errno : 0;
    cleanups++;
    return arg;
}

static void *m_leftovers(void *arg)
{
    weave_task *s;

    (void)arg;
    s = WT_SPAWN(leftover_sleeper, NULL);
    WT_SPAWN(leftover_yielder, NULL);
    WT_SPAWN(leftover_joiner, s);
    weave_detach(WT_SPAWN(leftover_forever, NULL));
    ck_assert_int_eq(weave_sleep(5), 0); /* let them all block */
    ck_assert_int_eq(cleanups, 0);
    return wt_ptr(99); /* nobody joined anything */
}

START_TEST(leftover_tasks_cancelled_when_main_returns)
{
    int64_t t0 = wt_now_ns();

    cleanups = 0;
    memset(leftover_err, 0, sizeof(leftover_err));
    ck_assert_int_eq((int)wt_int(WT_RUN(m_leftovers, NULL)), 99);
    ck_assert_int_lt(wt_ms_since(t0), WT_PROMPT_MS); /* not the 10 s sleep */
    ck_assert_int_eq(cleanups, 4);
    for (int i = 0; i < 4; i++)
        ck_assert_msg(leftover_err[i] == ECANCELED, "task %d saw errno %d", i, leftover_err[i]);
}
END_TEST

/* ---- detach ------------------------------------------------------------ */

WT_TEST(detached_tasks)
{
    weave_task *a, *b;
    weave_stats st;

    /* Detached before it ran: it runs, and is released when it ends. */
    child_ran = 0;
    a = WT_SPAWN(set_child_ran, NULL);
    ck_assert_int_eq(weave_detach(a), 0);
    ck_assert_int_eq(weave_sleep(1), 0);
    ck_assert_int_eq(child_ran, 1);
    ck_assert_int_eq(weave_get_stats(&st), 0);
    ck_assert_uint_eq(st.tasks_live, 1);
    ck_assert_uint_eq(st.tasks_zombie, 0);
    errno = 0;
    ck_assert_uint_eq(weave_task_id(a), 0);
    ck_assert_int_eq(errno, ESRCH);

    /* Detached after it ended: released at once. */
    b = WT_SPAWN(ret_arg_plus_one, marker);
    ck_assert_int_eq(weave_sleep(1), 0);
    ck_assert_int_eq(weave_get_stats(&st), 0);
    ck_assert_uint_eq(st.tasks_zombie, 1);
    ck_assert_int_eq(weave_detach(b), 0);
    ck_assert_int_eq(weave_get_stats(&st), 0);
    ck_assert_uint_eq(st.tasks_zombie, 0);
    WT_FAILS(weave_detach(b), ESRCH);

    /* Detached while blocked: still runs to its end. */
    b = WT_SPAWN(sleep_ms, wt_ptr(5));
    ck_assert_int_eq(weave_yield(), 0);
    ck_assert_int_eq(weave_detach(b), 0);
    WT_FAILS(weave_detach(b), EINVAL); /* already detached */
    ck_assert_int_eq(weave_sleep(20), 0);
    WT_ASSERT_IDLE();
}

static void *detach_self(void *arg)
{
    ck_assert_int_eq(weave_detach(weave_self()), 0);
    ck_assert_int_eq(weave_sleep(1), 0);
    return arg;
}

WT_TEST(task_detaches_itself)
{
    weave_stats st;

    WT_SPAWN(detach_self, NULL);
    /* Until it has ended (a slow run, valgrind's, may take longer than
     * its 1 ms sleep): then nothing of it is left. */
    do {
        ck_assert_int_eq(weave_sleep(5), 0);
        ck_assert_int_eq(weave_get_stats(&st), 0);
    } while (st.tasks_live > 1);
    WT_ASSERT_IDLE();
}

/* ---- join errors ------------------------------------------------------- */

WT_TEST(join_finished_task_does_not_yield)
{
    weave_task *a, *b;

    a = WT_SPAWN(ret_arg_plus_one, marker);
    ck_assert_int_eq(weave_yield(), 0); /* a runs and ends */
    child_ran = 0;
    b = WT_SPAWN(set_child_ran, NULL);
    /* Joining an ended task does not yield: b, queued, must not have run. */
    ck_assert_ptr_eq(WT_JOIN(a), marker + 1);
    ck_assert_int_eq(child_ran, 0);
    WT_JOIN(b);
    ck_assert_int_eq(child_ran, 1);
    WT_ASSERT_IDLE();
}

WT_TEST(join_twice_esrch)
{
    weave_task *t;

    t = WT_SPAWN(ret_arg_plus_one, marker);
    WT_JOIN(t);
    WT_FAILS(weave_join(t, NULL), ESRCH);
    WT_ASSERT_IDLE();
}

static void *join_self(void *arg)
{
    (void)arg;
    WT_FAILS(weave_join(weave_self(), NULL), EDEADLK);
    return wt_ptr(5);
}

WT_TEST(join_self_edeadlk)
{
    WT_FAILS(weave_join(weave_self(), NULL), EDEADLK);
    ck_assert_int_eq((int)wt_int(WT_JOIN(WT_SPAWN(join_self, NULL))), 5);
    WT_ASSERT_IDLE();
}

WT_TEST(join_detached_einval)
{
    weave_task *t;

    t = WT_SPAWN(sleep_ms, wt_ptr(5));
    ck_assert_int_eq(weave_detach(t), 0);
    WT_FAILS(weave_join(t, NULL), EINVAL);
    ck_assert_int_eq(weave_sleep(20), 0);
    WT_ASSERT_IDLE();
}

static void *joiner(void *arg)
{
    return WT_JOIN((weave_task *)arg);
}

WT_TEST(two_joiners_einval)
{
    weave_task *a, *j;

    a = WT_SPAWN(sleep_ms, wt_ptr(20));
    j = WT_SPAWN(joiner, a);
    ck_assert_int_eq(weave_yield(), 0); /* j is now joining a */
    WT_FAILS(weave_join(a, NULL), EINVAL);
    WT_FAILS(weave_detach(a), EINVAL); /* being joined */
    /* The first joiner is unaffected and gets a's result (sleep's 0). */
    ck_assert_ptr_null(WT_JOIN(j));
    WT_FAILS(weave_join(a, NULL), ESRCH);
    WT_ASSERT_IDLE();
}

static void *join_main(void *arg)
{
    weave_task *m = arg;

    WT_FAILS(weave_join(m, NULL), EINVAL);
    WT_FAILS(weave_detach(m), EINVAL);
    return NULL;
}

WT_TEST(join_or_detach_main_einval)
{
    WT_JOIN(WT_SPAWN(join_main, weave_self()));
    WT_FAILS(weave_detach(weave_self()), EINVAL);
    WT_ASSERT_IDLE();
}

/* ---- cancellation ------------------------------------------------------ */

WT_TEST(cancel_sleeper)
{
    weave_task *t;
    int seen = -1;
    int64_t t0;

    t = WT_SPAWN(sleep_forever, &seen);
    ck_assert_int_eq(weave_sleep(10), 0);
    ck_assert_int_eq(seen, -1); /* still asleep */
    ck_assert_int_eq(weave_cancelled(t), 0);
    t0 = wt_now_ns();
    ck_assert_int_eq(weave_cancel(t), 0);
    ck_assert_int_eq(weave_cancelled(t), 1);
    /* It still runs to the end of its function. */
    ck_assert_int_eq((int)wt_int(WT_JOIN(t)), 7);
    ck_assert_int_lt(wt_ms_since(t0), WT_PROMPT_MS);
    ck_assert_int_eq(seen, ECANCELED);
    WT_ASSERT_IDLE();
}

static int joiner_err;

static void *cancelled_joiner(void *arg)
{
    int r = weave_join((weave_task *)arg, NULL);

    joiner_err = r == -1 ? errno : 0;
    return NULL;
}

WT_TEST(cancel_joiner)
{
    weave_task *target, *j;
    int seen = -1;

    joiner_err = -1;
    target = WT_SPAWN(sleep_forever, &seen);
    j = WT_SPAWN(cancelled_joiner, target);
    ck_assert_int_eq(weave_sleep(5), 0);
    ck_assert_int_eq(joiner_err, -1);
    ck_assert_int_eq(weave_cancel(j), 0);
    WT_JOIN(j);
    ck_assert_int_eq(joiner_err, ECANCELED);
    /* The target is untouched and stays joinable. */
    ck_assert_int_eq(seen, -1);
    ck_assert_int_eq(weave_cancelled(target), 0);
    ck_assert_int_eq(weave_cancel(target), 0);
    ck_assert_int_eq((int)wt_int(WT_JOIN(target)), 7);
    ck_assert_int_eq(seen, ECANCELED);
    WT_ASSERT_IDLE();
}

static void *returns_11(void *arg)
{
    (void)arg;
    return wt_ptr(11);
}

WT_TEST(cancelled_task_joins_ended_task)
{
    weave_task *t = WT_SPAWN(returns_11, NULL);
    void *res = NULL;

    ck_assert_int_eq(weave_yield(), 0); /* t runs and ends */
    ck_assert_int_eq(weave_cancel(weave_self()), 0);
    /* Joining a task that has ended does not wait, so a cancelled task
     * (cleanup code during shutdown, say) still gets the result. */
    ck_assert_int_eq(weave_join(t, &res), 0);
    ck_assert_ptr_eq(res, wt_ptr(11));
    /* But waiting on one that has not ended fails at once. */
    t = WT_SPAWN(returns_11, NULL);
    WT_FAILS(weave_join(t, NULL), ECANCELED);
    WT_FAILS(weave_sleep(1), ECANCELED);
}

static void *spin_yield(void *arg)
{
    long *count = arg;

    while (weave_yield() == 0)
        (*count)++;
    ck_assert_int_eq(errno, ECANCELED);
    /* A cancelled task that keeps yielding still yields and fails. */
    ck_assert_int_eq(weave_yield(), -1);
    ck_assert_int_eq(errno, ECANCELED);
    return NULL;
}

WT_TEST(cancel_yielder)
{
    weave_task *t;
    long count = 0, seen;

    t = WT_SPAWN(spin_yield, &count);
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(weave_yield(), 0);
    seen = count;
    ck_assert_int_ge(seen, 9);
    ck_assert_int_eq(weave_cancel(t), 0);
    WT_JOIN(t);
    ck_assert_int_le(count, seen + 1);
    WT_ASSERT_IDLE();
}

static void *cancels_itself(void *arg)
{
    int64_t t0;

    (void)arg;
    ck_assert_int_eq(weave_cancel(weave_self()), 0);
    ck_assert_int_eq(weave_cancelled(weave_self()), 1);
    /* The next blocking call fails at once, and so does every later one. */
    t0 = wt_now_ns();
    WT_FAILS(weave_sleep(5000), ECANCELED);
    WT_FAILS(weave_sleep(5000), ECANCELED);
    ck_assert_int_lt(wt_ms_since(t0), WT_PROMPT_MS);
    /* yield still yields: the other task gets to run */
    child_ran = 0;
    WT_FAILS(weave_yield(), ECANCELED);
    ck_assert_int_eq(child_ran, 1);
    return wt_ptr(3);
}

static void *m_cancel_self(void *arg)
{
    weave_task *t;

    (void)arg;
    t = WT_SPAWN(cancels_itself, NULL);
    ck_assert_int_eq(weave_yield(), 0); /* t cancels itself, then yields */
    child_ran = 1;
    ck_assert_int_eq((int)wt_int(WT_JOIN(t)), 3);
    /* main too */
    ck_assert_int_eq(weave_cancel(weave_self()), 0);
    WT_FAILS(weave_sleep(1), ECANCELED);
    ck_assert_int_eq(weave_cancelled(weave_self()), 1);
    WT_ASSERT_IDLE();
    return wt_ptr(4);
}

START_TEST(cancel_self)
{
    ck_assert_int_eq((int)wt_int(WT_RUN(m_cancel_self, NULL)), 4);
}
END_TEST

WT_TEST(cancel_twice)
{
    weave_task *t;
    int seen = -1;

    t = WT_SPAWN(sleep_forever, &seen);
    ck_assert_int_eq(weave_yield(), 0);
    ck_assert_int_eq(weave_cancel(t), 0);
    ck_assert_int_eq(weave_cancel(t), 0);
    ck_assert_int_eq((int)wt_int(WT_JOIN(t)), 7);
    ck_assert_int_eq(seen, ECANCELED);
    WT_ASSERT_IDLE();
}

WT_TEST(cancel_finished_task)
{
    weave_task *t;

    t = WT_SPAWN(ret_arg_plus_one, marker);
    ck_assert_int_eq(weave_yield(), 0); /* t ends */
    ck_assert_int_eq(weave_cancel(t), 0);
    /* Its result is still there. */
    ck_assert_ptr_eq(WT_JOIN(t), marker + 1);
    WT_ASSERT_IDLE();
}

static void *cancel_before_start(void *arg)
{
    (void)arg;
    ck_assert_int_eq(weave_cancelled(weave_self()), 1);
    WT_FAILS(weave_sleep(1), ECANCELED);
    return wt_ptr(8);
}

WT_TEST(cancel_before_first_run)
{
    weave_task *t;

    t = WT_SPAWN(cancel_before_start, NULL);
    ck_assert_int_eq(weave_cancel(t), 0);
    ck_assert_int_eq((int)wt_int(WT_JOIN(t)), 8); /* it runs anyway */
    WT_ASSERT_IDLE();
}

/* Every blocking call of a cancelled task fails with ECANCELED at once, and
 * keeps failing. */
static void *cancelled_calls(void *arg)
{
    weave_task *other = arg;
    int p[2];
    int64_t t0;

    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_eq(weave_sleep(-1), -1); /* until main cancels us */
    ck_assert_int_eq(errno, ECANCELED);
    t0 = wt_now_ns();
    for (int round = 0; round < 2; round++) {
        WT_FAILS(weave_sleep(10000), ECANCELED);
        WT_FAILS(weave_sleep(-1), ECANCELED);
        WT_FAILS(weave_sleep(0), ECANCELED);
        WT_FAILS(weave_sleep_us(10000000), ECANCELED);
        WT_FAILS(weave_sleep_us(0), ECANCELED);
        WT_FAILS(weave_yield(), ECANCELED);
        WT_FAILS(weave_join(other, NULL), ECANCELED);
        WT_FAILS(weave_wait_fd(p[0], WEAVE_IN, -1), ECANCELED);
        WT_FAILS(weave_wait_fd(p[0], WEAVE_IN, 10000), ECANCELED);
        WT_FAILS(weave_wait_fd(p[0], WEAVE_IN, 0), ECANCELED);
    }
    ck_assert_int_lt(wt_ms_since(t0), WT_PROMPT_MS);
    close(p[0]);
    close(p[1]);
    return wt_ptr(1);
}

WT_TEST(cancelled_task_blocking_calls_fail)
{
    weave_task *other, *t;
    int seen = -1;

    other = WT_SPAWN(sleep_forever, &seen);
    t = WT_SPAWN(cancelled_calls, other);
    ck_assert_int_eq(weave_sleep(5), 0);
    ck_assert_int_eq(weave_cancel(t), 0);
    ck_assert_int_eq((int)wt_int(WT_JOIN(t)), 1);
    ck_assert_int_eq(seen, -1); /* other was never touched */
    ck_assert_int_eq(weave_cancel(other), 0);
    WT_JOIN(other);
    WT_ASSERT_IDLE();
}

/* ---- spawn during shutdown, nested run, deadlock ---------------------- */

static int late_cancelled = -1;
static int late_sleep_err = -1;

static void *late_child(void *arg)
{
    (void)arg;
    late_cancelled = weave_cancelled(weave_self());
    late_sleep_err = weave_sleep(1000) == -1 ? errno : 0;
    return NULL;
}

static void *late_spawner(void *arg)
{
    (void)arg;
    ck_assert_int_eq(weave_sleep(-1), -1); /* main returns: we are cancelled */
    ck_assert_int_eq(errno, ECANCELED);
    ck_assert_ptr_nonnull(weave_spawn(late_child, NULL));
    return NULL;
}

static void *m_late_spawn(void *arg)
{
    (void)arg;
    WT_SPAWN(late_spawner, NULL);
    ck_assert_int_eq(weave_yield(), 0);
    return NULL;
}

START_TEST(spawn_during_shutdown_starts_cancelled)
{
    int64_t t0 = wt_now_ns();

    late_cancelled = late_sleep_err = -1;
    WT_RUN(m_late_spawn, NULL);
    ck_assert_int_eq(late_cancelled, 1);
    ck_assert_int_eq(late_sleep_err, ECANCELED);
    ck_assert_int_lt(wt_ms_since(t0), 1000);
}
END_TEST

WT_TEST(nested_run_ebusy)
{
    void *res = wt_ptr(1);

    WT_FAILS(weave_run(m_result, NULL, &res), EBUSY);
    ck_assert_ptr_eq(res, wt_ptr(1)); /* untouched */
    WT_FAILS(weave_run_with(NULL, m_result, NULL, NULL), EBUSY);
    /* the scheduler still works */
    ck_assert_ptr_eq(WT_JOIN(WT_SPAWN(ret_arg_plus_one, marker)), marker + 1);
    WT_ASSERT_IDLE();
}

static int dl_join_err;

static void *m_deadlock(void *arg)
{
    int *seen = arg;
    weave_task *t;
    int r;

    t = WT_SPAWN(sleep_forever, seen);
    r = weave_join(t, NULL); /* nothing can ever wake either of us */
    dl_join_err = r == -1 ? errno : 0;
    return wt_ptr(77);
}

START_TEST(deadlock_detected)
{
    void *res = NULL;
    int seen = -1;
    int64_t t0 = wt_now_ns();

    dl_join_err = -1;
    errno = 0;
    ck_assert_int_eq(weave_run(m_deadlock, &seen, &res), -1);
    ck_assert_int_eq(errno, EDEADLK);
    ck_assert_int_lt(wt_ms_since(t0), WT_PROMPT_MS);
    /* Every task was cancelled and unwound; main's result is still set. */
    ck_assert_int_eq(dl_join_err, ECANCELED);
    ck_assert_int_eq(seen, ECANCELED);
    ck_assert_int_eq((int)wt_int(res), 77);
}
END_TEST

struct cycle {
    weave_task *other; /* the task to join */
    int err;           /* errno of that join */
};

static void *cycle_member(void *arg)
{
    struct cycle *c = arg;

    c->err = weave_join(c->other, NULL) == -1 ? errno : 0;
    return NULL;
}

static void *m_join_cycle(void *arg)
{
    struct cycle *c = arg;
    weave_task *a, *b;

    /* a joins b and b joins a; main sleeps for ever: no task can ever run
     * again, though none waits on itself directly. */
    a = WT_SPAWN(cycle_member, &c[0]);
    b = WT_SPAWN(cycle_member, &c[1]);
    c[0].other = b;
    c[1].other = a;
    WT_FAILS(weave_sleep(-1), ECANCELED);
    return NULL;
}

START_TEST(join_cycle_deadlock)
{
    struct cycle c[2] = {{NULL, -1}, {NULL, -1}};

    errno = 0;
    ck_assert_int_eq(weave_run(m_join_cycle, c, NULL), -1);
    ck_assert_int_eq(errno, EDEADLK);
    ck_assert_int_eq(c[0].err, ECANCELED);
    ck_assert_int_eq(c[1].err, ECANCELED);
}
END_TEST

WT_TEST(timed_sleep_is_not_a_deadlock)
{
    weave_task *t;

    /* A task that sleeps with a deadline can always wake: not a deadlock. */
    t = WT_SPAWN(sleep_ms, wt_ptr(30));
    ck_assert_ptr_null(WT_JOIN(t));
    WT_ASSERT_IDLE();
}

/* ---- names, ids, handles ----------------------------------------------- */

static void *name_check(void *arg)
{
    weave_task *self = weave_self();

    ck_assert_ptr_nonnull(self);
    ck_assert_ptr_eq(self, *(weave_task **)arg); /* the handle spawn returned */
    return NULL;
}

WT_TEST(task_names_and_ids)
{
    char name[64];
    char longname[100];
    weave_task *t, *u, *v;
    weave_task_opts o = {0};

    ck_assert_uint_eq(weave_task_id(weave_self()), 1);
    ck_assert_str_eq(weave_task_name(weave_self()), "main");

    t = WT_SPAWN(ret_arg_plus_one, marker);
    ck_assert_uint_eq(weave_task_id(t), 2);
    ck_assert_str_eq(weave_task_name(t), "task-2");

    strcpy(name, "worker");
    o.name = name;
    u = weave_spawn_with(&o, ret_arg_plus_one, marker);
    ck_assert_ptr_nonnull(u);
    name[0] = 'X'; /* the name was copied */
    ck_assert_str_eq(weave_task_name(u), "worker");
    ck_assert_uint_eq(weave_task_id(u), 3);

    memset(longname, 'n', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    o.name = longname;
    v = weave_spawn_with(&o, ret_arg_plus_one, marker);
    ck_assert_ptr_nonnull(v);
    ck_assert_uint_eq(strlen(weave_task_name(v)), WEAVE_NAME_MAX - 1);
    ck_assert_int_eq(strncmp(weave_task_name(v), longname, WEAVE_NAME_MAX - 1), 0);
    ck_assert_uint_eq(weave_task_id(v), 4);

    /* Names stay valid after the task ends, until it is released. */
    ck_assert_int_eq(weave_yield(), 0);
    ck_assert_str_eq(weave_task_name(u), "worker");
    WT_JOIN(t);
    WT_JOIN(u);
    WT_JOIN(v);

    /* weave_self in a task is the handle spawn returned. */
    {
        weave_task *h = NULL;
        weave_task *w = WT_SPAWN(name_check, &h);
        h = w;
        WT_JOIN(w);
    }
    WT_ASSERT_IDLE();
}

WT_TEST(stale_handle_after_join_esrch)
{
    weave_task *t, *u;

    t = WT_SPAWN(ret_arg_plus_one, marker);
    WT_JOIN(t);
    WT_FAILS(weave_cancel(t), ESRCH);
    WT_FAILS(weave_detach(t), ESRCH);
    WT_FAILS(weave_join(t, NULL), ESRCH);
    WT_FAILS(weave_cancelled(t), ESRCH);
    WT_FAILS_NULL(weave_task_name(t), ESRCH);
    errno = 0;
    ck_assert_uint_eq(weave_task_id(t), 0);
    ck_assert_int_eq(errno, ESRCH);

    /* A new task may take the old one's slot; the old handle stays stale
     * and never reaches the new task. */
    u = WT_SPAWN(sleep_forever, NULL);
    ck_assert_ptr_ne(u, t);
    WT_FAILS(weave_cancel(t), ESRCH);
    ck_assert_int_eq(weave_cancelled(u), 0);
    ck_assert_int_eq(weave_cancel(u), 0);
    WT_JOIN(u);
    WT_ASSERT_IDLE();
}

/* ---- no leak over many tasks ------------------------------------------- */

WT_TEST(spawn_join_cycles_do_not_leak)
{
    /* 10^5 in the plain and ASan builds; valgrind runs 20-50x slower, so
     * there a tenth of that still shows a leak but keeps the run short. */
    long n = WT_ON_VALGRIND ? 10000 : 100000;
    weave_stats st0, st;

    for (long i = 0; i < 100; i++)
        WT_JOIN(WT_SPAWN(wt_nothing, NULL));
    ck_assert_int_eq(weave_get_stats(&st0), 0);
    for (long i = 0; i < n; i++) {
        weave_task *t = weave_spawn(wt_nothing, wt_ptr(i));
        ck_assert_ptr_nonnull(t);
        if (i % 2)
            ck_assert_int_eq(weave_yield(), 0); /* sometimes it ends first */
        ck_assert_int_eq((int)wt_int(WT_JOIN(t)), (int)i);
    }
    for (long i = 0; i < n / 10; i++) {
        weave_task *t = weave_spawn(wt_nothing, wt_ptr(i));
        ck_assert_ptr_nonnull(t);
        ck_assert_int_eq(weave_detach(t), 0);
        ck_assert_int_eq(weave_yield(), 0);
    }
    ck_assert_int_eq(weave_get_stats(&st), 0);
    ck_assert_uint_eq(st.tasks_live, 1);
    ck_assert_uint_eq(st.tasks_zombie, 0);
    ck_assert_uint_eq(st.stacks_in_use, 1);
    ck_assert_uint_eq(st.stack_bytes_mapped, st0.stack_bytes_mapped);
    ck_assert_uint_eq(st.stacks_cached, st0.stacks_cached);
    ck_assert_uint_eq(st.tasks_spawned, st0.tasks_spawned + (uint64_t)(n + n / 10));
    WT_ASSERT_IDLE();
}

/* ---- errno belongs to the task ------------------------------------------ */

/* The reproducer a user sent: a task that yields with errno set must not
 * leave it to the task that runs next. */
static void *setter(void *a)
{
    errno = ENOENT;
    ck_assert_int_eq(weave_yield(), 0);
    ck_assert_int_eq(errno, ENOENT); /* its own, still */
    return a;
}

WT_TEST(errno_is_the_tasks)
{
    weave_task *t = WT_SPAWN(setter, NULL);

    errno = 0;
    ck_assert_int_eq(weave_yield(), 0);
    ck_assert_int_eq(errno, 0);
    WT_JOIN(t);
    WT_ASSERT_IDLE();
}

/* 1,000 tasks, each with an errno of its own, pass the thread round many
 * times, through yields, sleeps and a channel (parks and wakes); a new task
 * starts with errno 0. */
#define PINGERS 1000
#define ROUNDS  20

static void *pinger(void *arg)
{
    weave_chan *c = arg;
    int mine = (int)(weave_task_id(weave_self()) % 100000) + 1;
    long n;

    ck_assert_int_eq(errno, 0);
    for (int r = 0; r < ROUNDS; r++) {
        errno = mine + r;
        if (r % 3 == 0)
            ck_assert_int_eq(weave_yield(), 0);
        else if (r % 3 == 1)
            ck_assert_int_eq(weave_sleep(0), 0);
        else
            ck_assert_int_eq(weave_chan_recv(c, &n), 0);
        ck_assert_int_eq(errno, mine + r);
    }
    return NULL;
}

WT_TEST(errno_ping_pong)
{
    weave_chan *c = weave_chan_new(sizeof(long), 0);
    weave_task *t[PINGERS];
    long n = 0;

    ck_assert_ptr_nonnull(c);
    for (int i = 0; i < PINGERS; i++)
        t[i] = WT_SPAWN(pinger, c);
    errno = -7;
    /* Every receive of every round, handed over one at a time. */
    for (int i = 0; i < PINGERS * (ROUNDS / 3); i++) {
        ck_assert_int_eq(weave_chan_send(c, &n), 0);
        ck_assert_int_eq(errno, -7);
    }
    for (int i = 0; i < PINGERS; i++)
        WT_JOIN(t[i]);
    ck_assert_int_eq(errno, -7);
    ck_assert_int_eq(weave_chan_free(c), 0);
    WT_ASSERT_IDLE();
}

/* ---- the floating-point control state belongs to the task ---------------- */

/* Three tasks pass the thread round 1,000 times: one rounds up, one down,
 * one never changes the mode. Each keeps its own through every switch: the
 * x87 control word (what fegetround reads on x86-64) and MXCSR (what a
 * double division obeys) alike. A switch reloads the state only when it
 * differs, so this takes both ways through it. */
#define FP_ROUNDS 1000

static int fp_bad; /* switches after which a task found a wrong state */

static void *rounder(void *arg)
{
    int mode = (int)(intptr_t)arg;
    volatile double one = 1.0, three = 3.0;
    double third;

    if (mode != FE_TONEAREST)
        ck_assert_int_eq(fesetround(mode), 0);
    ck_assert_int_eq(fegetround(), mode);
    third = one / three;
    for (int i = 0; i < FP_ROUNDS; i++) {
        ck_assert_int_eq(weave_yield(), 0);
        if (fegetround() != mode || one / three != third)
            fp_bad++;
    }
    return NULL;
}

WT_TEST(fp_control_state_is_the_tasks)
{
    volatile double one = 1.0, three = 3.0;
    weave_task *t[3];

    ck_assert_int_eq(fegetround(), FE_TONEAREST);
    t[0] = WT_SPAWN(rounder, (void *)(intptr_t)FE_UPWARD);
    t[1] = WT_SPAWN(rounder, (void *)(intptr_t)FE_DOWNWARD);
    t[2] = WT_SPAWN(rounder, (void *)(intptr_t)FE_TONEAREST);
    for (int i = 0; i < 3; i++)
        WT_JOIN(t[i]);
    ck_assert_int_eq(fp_bad, 0);
    ck_assert_int_eq(fegetround(), FE_TONEAREST);
    ck_assert(one / three > 0.333333333333333 && one / three < 0.333333333333334);
    WT_ASSERT_IDLE();
}

static Suite *sched_suite(void)
{
    Suite *s = suite_create("sched");
    TCase *tc = tcase_create("core");
    TCase *stress = tcase_create("stress");

    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, lifecycle_join_hands_over_result);
    tcase_add_test(tc, ended_task_is_a_zombie_until_joined);
    tcase_add_test(tc, run_returns_main_result);
    tcase_add_test(tc, join_with_null_result);
    tcase_add_test(tc, spawn_returns_at_once);
    tcase_add_test(tc, spawned_tasks_run_fifo);
    tcase_add_test(tc, yield_round_robin);
    tcase_add_test(tc, yield_with_nothing_else_runnable);
    tcase_add_test(tc, leftover_tasks_cancelled_when_main_returns);
    tcase_add_test(tc, detached_tasks);
    tcase_add_test(tc, task_detaches_itself);
    tcase_add_test(tc, join_finished_task_does_not_yield);
    tcase_add_test(tc, join_twice_esrch);
    tcase_add_test(tc, join_self_edeadlk);
    tcase_add_test(tc, join_detached_einval);
    tcase_add_test(tc, two_joiners_einval);
    tcase_add_test(tc, join_or_detach_main_einval);
    tcase_add_test(tc, cancel_sleeper);
    tcase_add_test(tc, cancel_joiner);
    tcase_add_test(tc, cancelled_task_joins_ended_task);
    tcase_add_test(tc, cancel_yielder);
    tcase_add_test(tc, cancel_self);
    tcase_add_test(tc, cancel_twice);
    tcase_add_test(tc, cancel_finished_task);
    tcase_add_test(tc, cancel_before_first_run);
    tcase_add_test(tc, cancelled_task_blocking_calls_fail);
    tcase_add_test(tc, spawn_during_shutdown_starts_cancelled);
    tcase_add_test(tc, nested_run_ebusy);
    tcase_add_test(tc, deadlock_detected);
    tcase_add_test(tc, join_cycle_deadlock);
    tcase_add_test(tc, timed_sleep_is_not_a_deadlock);
    tcase_add_test(tc, task_names_and_ids);
    tcase_add_test(tc, stale_handle_after_join_esrch);
    tcase_add_test(tc, errno_is_the_tasks);
    tcase_add_test(tc, errno_ping_pong);
    tcase_add_test(tc, fp_control_state_is_the_tasks);
    suite_add_tcase(s, tc);

    tcase_set_timeout(stress, 60);
    tcase_add_test(stress, spawn_join_cycles_do_not_leak);
    suite_add_tcase(s, stress);
    return s;
}

int main(void)
{
    return wt_main(sched_suite());
}
