/*
 * test_vclock.c - the virtual clock (WEAVE_VIRTUAL_CLOCK).
 *
 * Under the virtual clock, a scheduler whose tasks wait on timers alone
 * jumps to the earliest deadline: an hour of sleeps and timeouts takes no
 * real time, and weave_now moves by exactly what was waited. Waits on fds
 * and workers keep real time. Real time here is measured independently
 * (wt_now_ns) and only bounded from above to catch a clock that does not
 * jump; virtual time is exact, because nothing but the jumps moves it.
 */
#include <fcntl.h>
#include <pthread.h>
#include <string.h>

#include "weave_test.h"

#define HOUR_MS ((int64_t)3600 * 1000)

/* ---- timers jump ----------------------------------------------------------- */

WT_TEST_WITH(hour_sleep_takes_no_time, .flags = WEAVE_VIRTUAL_CLOCK)
{
    int64_t real0 = wt_now_ns();
    int64_t t0 = weave_now_us();

    ck_assert_int_eq(weave_sleep(HOUR_MS), 0);
    ck_assert_int_eq(weave_now_us() - t0, HOUR_MS * 1000);
    ck_assert_int_lt(wt_ms_since(real0), WT_PROMPT_MS);
    WT_ASSERT_IDLE();
}

/* Sleepers of different lengths, spawned in reverse: they wake in deadline
 * order, each at exactly its own deadline. */
#define N_SLEEPERS 50

struct order {
    int64_t t0;
    int next;
    int woke[N_SLEEPERS];
    int64_t at[N_SLEEPERS];
};

struct sleeper {
    struct order *o;
    int i;
};

static void *sleeper_task(void *arg)
{
    struct sleeper *sl = arg;

    ck_assert_int_eq(weave_sleep((int64_t)(sl->i + 1) * 60 * 1000), 0);
    sl->o->at[sl->i] = weave_now_us() - sl->o->t0;
    sl->o->woke[sl->o->next++] = sl->i;
    return NULL;
}

WT_TEST_WITH(sleepers_wake_in_order_at_their_deadline, .flags = WEAVE_VIRTUAL_CLOCK)
{
    struct order o;
    struct sleeper sl[N_SLEEPERS];
    weave_task *t[N_SLEEPERS];

    memset(&o, 0, sizeof(o));
    o.t0 = weave_now_us();
    for (int i = N_SLEEPERS - 1; i >= 0; i--) {
        sl[i] = (struct sleeper){&o, i};
        t[i] = WT_SPAWN(sleeper_task, &sl[i]);
    }
    for (int i = 0; i < N_SLEEPERS; i++)
        WT_JOIN(t[i]);
    ck_assert_int_eq(o.next, N_SLEEPERS);
    for (int i = 0; i < N_SLEEPERS; i++) {
        ck_assert_int_eq(o.woke[i], i);
        ck_assert_int_eq(o.at[i], (int64_t)(i + 1) * 60 * 1000 * 1000);
    }
    WT_ASSERT_IDLE();
}

/* A call's own timeout and a deadline scope, an hour each, on waits that
 * nothing will ever end: both end exactly when they should. */
WT_TEST_WITH(timeouts_and_deadlines_jump, .flags = WEAVE_VIRTUAL_CLOCK)
{
    weave_chan *c = weave_chan_new(sizeof(int), 0);
    weave_deadline d;
    int64_t t0;
    int v;

    ck_assert_ptr_nonnull(c);
    t0 = weave_now_us();
    WT_FAILS(weave_chan_recv_timeout(c, &v, HOUR_MS), ETIMEDOUT);
    ck_assert_int_eq(weave_now_us() - t0, HOUR_MS * 1000);

    t0 = weave_now_us();
    weave_deadline_begin(&d, 2 * HOUR_MS);
    WT_FAILS(weave_chan_recv(c, &v), ETIMEDOUT);
    ck_assert_int_eq(weave_deadline_end(&d), 1);
    ck_assert_int_eq(weave_now_us() - t0, 2 * HOUR_MS * 1000);

    ck_assert_int_eq(weave_chan_free(c), 0);
    WT_ASSERT_IDLE();
}

/* ---- real waits keep real time ---------------------------------------------- */

/* A wait on an fd that nothing makes ready: its 50 ms timeout takes 50 ms
 * of real time, and the virtual clock moves at least that much. */
WT_TEST_WITH(fd_waits_keep_real_time, .flags = WEAVE_VIRTUAL_CLOCK)
{
    int p[2];
    int64_t real0, t0;

    wt_make_pipe(p, O_NONBLOCK);
    real0 = wt_now_ns();
    t0 = weave_now_us();
    WT_FAILS(weave_wait_fd(p[0], WEAVE_IN, 50), ETIMEDOUT);
    ck_assert_int_ge(wt_ms_since(real0), 50);
    ck_assert_int_ge(weave_now_us() - t0, 50 * 1000);
    ck_assert_int_eq(weave_close(p[0]), 0);
    ck_assert_int_eq(close(p[1]), 0);
    WT_ASSERT_IDLE();
}

/* While a task waits on an fd, a sleeper's hour is not skipped: the clock
 * follows real time until the fd's writer (a thread, 30 ms later) wakes
 * it; then only the timer is left and the clock jumps to it. */
struct writer {
    int fd;
    int64_t delay_ms;
};

static void *writer_thread(void *arg)
{
    struct writer *w = arg;
    struct timespec ts = {0, (long)w->delay_ms * 1000000};

    nanosleep(&ts, NULL);
    ck_assert_int_eq(write(w->fd, "x", 1), 1);
    return NULL;
}

static void *hour_task(void *arg)
{
    int64_t t0 = weave_now_us();

    (void)arg;
    ck_assert_int_eq(weave_sleep(HOUR_MS), 0);
    return wt_ptr(weave_now_us() - t0 >= HOUR_MS * 1000);
}

WT_TEST_WITH(fd_waiter_holds_the_clock_to_real_time, .flags = WEAVE_VIRTUAL_CLOCK)
{
    int p[2];
    char c;
    pthread_t th;
    struct writer w;
    weave_task *sleeper;
    int64_t real0 = wt_now_ns();

    wt_make_pipe(p, O_NONBLOCK);
    w = (struct writer){p[1], 30};
    sleeper = WT_SPAWN(hour_task, NULL);
    ck_assert_int_eq(pthread_create(&th, NULL, writer_thread, &w), 0);
    ck_assert_int_eq(weave_read(p[0], &c, 1), 1);
    ck_assert_int_ge(wt_ms_since(real0), 30);
    ck_assert_int_eq(wt_int(WT_JOIN(sleeper)), 1);
    ck_assert_int_lt(wt_ms_since(real0), WT_PROMPT_MS);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_int_eq(weave_close(p[0]), 0);
    ck_assert_int_eq(close(p[1]), 0);
    WT_ASSERT_IDLE();
}

static void *slow_call(void *arg)
{
    struct timespec ts = {0, 40 * 1000000};

    nanosleep(&ts, NULL);
    return arg;
}

WT_TEST_WITH(offload_keeps_real_time, .flags = WEAVE_VIRTUAL_CLOCK)
{
    int64_t t0 = weave_now_us();
    void *r = NULL;

    ck_assert_int_eq(weave_offload(slow_call, wt_ptr(7), &r), 0);
    ck_assert_int_eq(wt_int(r), 7);
    ck_assert_int_ge(weave_now_us() - t0, 40 * 1000);
    wt_assert_idle_offload();
}

/* ---- the flag ----------------------------------------------------------------- */

/* Without the flag, the clock is real: a 30 ms sleep takes 30 ms. */
WT_TEST(without_the_flag_time_is_real)
{
    int64_t real0 = wt_now_ns();

    ck_assert_int_eq(weave_sleep(30), 0);
    ck_assert_int_ge(wt_ms_since(real0), 30);
}

START_TEST(unknown_flags_are_refused)
{
    weave_run_opts o = {.flags = WEAVE_VIRTUAL_CLOCK | (1u << 30)};

    WT_FAILS(weave_run_with(&o, wt_nothing, NULL, NULL), EINVAL);
}
END_TEST

/* A thousand hours of timers under a deadline scope in a loop: the clock
 * is monotonic and every sleep lasts exactly what it asked. */
WT_TEST_WITH(a_thousand_hours, .flags = WEAVE_VIRTUAL_CLOCK)
{
    int64_t prev = weave_now_us();

    for (int i = 1; i <= 1000; i++) {
        ck_assert_int_eq(weave_sleep(HOUR_MS), 0);
        ck_assert_int_eq(weave_now_us() - prev, HOUR_MS * 1000);
        prev = weave_now_us();
    }
    WT_ASSERT_IDLE();
}

static Suite *vclock_suite(void)
{
    Suite *s = suite_create("vclock");
    TCase *jump = tcase_create("jump");
    TCase *real = tcase_create("real");
    TCase *flag = tcase_create("flag");

    tcase_set_timeout(jump, 20);
    tcase_add_test(jump, hour_sleep_takes_no_time);
    tcase_add_test(jump, sleepers_wake_in_order_at_their_deadline);
    tcase_add_test(jump, timeouts_and_deadlines_jump);
    tcase_add_test(jump, a_thousand_hours);
    suite_add_tcase(s, jump);

    tcase_set_timeout(real, 20);
    wt_tag_native(real); /* a thread */
    tcase_add_test(real, fd_waits_keep_real_time);
    tcase_add_test(real, fd_waiter_holds_the_clock_to_real_time);
    tcase_add_test(real, offload_keeps_real_time);
    suite_add_tcase(s, real);

    tcase_set_timeout(flag, 20);
    tcase_add_test(flag, without_the_flag_time_is_real);
    tcase_add_test(flag, unknown_flags_are_refused);
    suite_add_tcase(s, flag);
    return s;
}

int main(void)
{
    return wt_main(vclock_suite());
}
