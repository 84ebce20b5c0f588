/*
 * test_timer.c - the timer heap (src/timer.h) and sleeping.
 *
 * The "heap" case drives the heap directly against a reference model, which
 * is the only place equal deadlines can be made exactly equal. The others
 * go through the public API: sleeps never end early (measured here with
 * CLOCK_MONOTONIC), timers fire in deadline order, equal durations in the
 * order they were set, huge and negative durations, signals, starvation,
 * and 10^5 sleepers. The 10^5-sleeper test also reads each task's timer
 * through the internal seam (weave__tls), to check the firing order against
 * the exact deadlines weave computed rather than against estimates.
 *
 * Check timeouts: "heap" 10 s x 4, "sleep" 10 s x 35 (each iteration of a
 * loop test counts), "stress" 60 s x 1 = 450 s; the CTest timeout in
 * CMakeLists.txt (500 s) is above their sum.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/time.h>

#include "core/sched.h"
#include "base/timer.h"
#include "weave_test.h"

/* ---- the heap against a reference model ------------------------------- */

#define NT 512

struct ref {
    int armed;
    int64_t deadline;
    uint64_t order; /* when it was armed, as the model counts */
};

static struct weave__timer tm[NT];
static struct ref model[NT];
static uint64_t model_order;

/* The heap's own invariants: every timer knows its index, every slot holds
 * its timer's key, no child comes before its parent (four children each). */
static void heap_check(const struct weave__timers *h)
{
    for (size_t i = 0; i < h->len; i++) {
        const struct weave__timer_slot *s = &h->heap[i];
        ck_assert_uint_eq(s->timer->index, i);
        ck_assert_int_eq(s->deadline, s->timer->deadline);
        ck_assert_uint_eq(s->seq, s->timer->seq);
        if (i > 0) {
            const struct weave__timer_slot *p = &h->heap[(i - 1) / 4];
            ck_assert(p->deadline < s->deadline || (p->deadline == s->deadline && p->seq < s->seq));
        }
    }
}

/* The timer the model says fires first among those with deadline <= now,
 * or -1. */
static int model_first(int64_t now)
{
    int best = -1;

    for (int i = 0; i < NT; i++) {
        if (!model[i].armed || model[i].deadline > now)
            continue;
        if (best < 0 || model[i].deadline < model[best].deadline ||
            (model[i].deadline == model[best].deadline && model[i].order < model[best].order))
            best = i;
    }
    return best;
}

static size_t model_len(void)
{
    size_t n = 0;

    for (int i = 0; i < NT; i++)
        n += (size_t)model[i].armed;
    return n;
}

static void heap_setup(struct weave__timers *h)
{
    weave__timers_init(h);
    ck_assert_int_eq(weave__timers_reserve(h, NT), 0);
    for (int i = 0; i < NT; i++) {
        tm[i].index = WEAVE__TIMER_IDLE;
        model[i].armed = 0;
    }
    model_order = 0;
}

static void arm(struct weave__timers *h, int i, int64_t deadline)
{
    weave__timers_add(h, &tm[i], deadline);
    model[i].armed = 1;
    model[i].deadline = deadline;
    model[i].order = model_order++;
}

START_TEST(heap_random_against_reference)
{
    struct weave__timers h;
    unsigned seed = 12345;
    int64_t now = 0;

    /* Fewer steps under valgrind and ASan, where the O(n) model is slow. */
    int steps = WT_ON_VALGRIND ? 20000 : WT_ASAN ? 50000 : 200000;

    heap_setup(&h);
    for (int step = 0; step < steps; step++) {
        int op = rand_r(&seed) % 10;
        int i = rand_r(&seed) % NT;

        if (op < 5) {
            /* Few distinct deadlines, so that ties are common. */
            if (!model[i].armed)
                arm(&h, i, now + rand_r(&seed) % 40);
        } else if (op < 7) {
            /* Removing an idle timer is harmless. */
            weave__timers_remove(&h, &tm[i]);
            ck_assert(!weave__timer_armed(&tm[i]));
            model[i].armed = 0;
        } else {
            struct weave__timer *t;
            int want;

            now += rand_r(&seed) % 3;
            while ((want = model_first(now)) >= 0) {
                t = weave__timers_expired(&h, now);
                ck_assert_ptr_eq(t, &tm[want]);
                ck_assert(!weave__timer_armed(t));
                model[want].armed = 0;
            }
            ck_assert_ptr_null(weave__timers_expired(&h, now));
        }
        ck_assert_uint_eq(h.len, model_len());
        if (step % 64 == 0)
            heap_check(&h);
        if (h.len) {
            int want = model_first(INT64_MAX);
            ck_assert(weave__timers_any(&h));
            ck_assert_ptr_eq(h.heap[0].timer, &tm[want]);
            ck_assert_int_eq(weave__timers_next(&h), model[want].deadline);
        } else {
            ck_assert(!weave__timers_any(&h));
        }
    }
    weave__timers_term(&h);
}
END_TEST

START_TEST(heap_equal_deadlines_fire_fifo)
{
    struct weave__timers h;
    int order[NT], n = 0;

    heap_setup(&h);
    /* Interleave two deadlines, armed in a scrambled index order. */
    for (int k = 0; k < NT; k++) {
        int i = (k * 7) % NT; /* 7 is prime to 512: a permutation */
        arm(&h, i, i % 2 ? 100 : 50);
    }
    heap_check(&h);
    ck_assert_ptr_null(weave__timers_expired(&h, 49));
    for (struct weave__timer *t; (t = weave__timers_expired(&h, 100)) != NULL;)
        order[n++] = (int)(t - tm);
    ck_assert_int_eq(n, NT);
    /* All deadline-50 timers first, each group in the order armed. */
    for (int k = 1; k < NT; k++) {
        struct ref *a = &model[order[k - 1]], *b = &model[order[k]];
        ck_assert(a->deadline < b->deadline || (a->deadline == b->deadline && a->order < b->order));
    }
    ck_assert_int_eq(model[order[NT / 2 - 1]].deadline, 50);
    ck_assert_int_eq(model[order[NT / 2]].deadline, 100);
    weave__timers_term(&h);
}
END_TEST

START_TEST(heap_rearmed_timer_goes_behind_its_ties)
{
    struct weave__timers h;

    heap_setup(&h);
    for (int i = 0; i < 10; i++)
        arm(&h, i, 7);
    /* Disarm and re-arm timer 0 at the same deadline: it is now last. */
    weave__timers_remove(&h, &tm[0]);
    arm(&h, 0, 7);
    /* Remove one from the middle. */
    weave__timers_remove(&h, &tm[5]);
    heap_check(&h);
    {
        static const int want[] = {1, 2, 3, 4, 6, 7, 8, 9, 0};
        for (size_t k = 0; k < sizeof(want) / sizeof(want[0]); k++)
            ck_assert_ptr_eq(weave__timers_expired(&h, 7), &tm[want[k]]);
    }
    ck_assert_ptr_null(weave__timers_expired(&h, INT64_MAX));
    weave__timers_term(&h);
}
END_TEST

START_TEST(heap_extreme_deadlines)
{
    struct weave__timers h;

    heap_setup(&h);
    arm(&h, 0, INT64_MAX);
    arm(&h, 1, INT64_MIN);
    arm(&h, 2, 0);
    arm(&h, 3, INT64_MAX - 1);
    ck_assert_ptr_eq(weave__timers_expired(&h, INT64_MIN), &tm[1]);
    ck_assert_ptr_null(weave__timers_expired(&h, -1));
    ck_assert_ptr_eq(weave__timers_expired(&h, 0), &tm[2]);
    ck_assert_ptr_eq(weave__timers_expired(&h, INT64_MAX), &tm[3]);
    ck_assert_ptr_eq(weave__timers_expired(&h, INT64_MAX), &tm[0]);
    ck_assert_uint_eq(h.len, 0);
    weave__timers_term(&h);
}
END_TEST

/* ---- sleeps never end early -------------------------------------------- */

static const int64_t sleep_ms_table[] = {0, 1, 10, 50};

static void *m_sleep_ms(void *arg)
{
    int64_t d = *(const int64_t *)arg;

    for (int rep = 0; rep < 5; rep++) {
        int64_t t0 = wt_now_ns();
        ck_assert_int_eq(weave_sleep(d), 0);
        ck_assert_int_ge(wt_now_ns() - t0, d * 1000000);
    }
    WT_ASSERT_IDLE();
    return NULL;
}

START_TEST(sleep_ms_never_early)
{
    WT_RUN(m_sleep_ms, (void *)&sleep_ms_table[_i]);
}
END_TEST

static const int64_t sleep_us_table[] = {0, 1, 10, 100, 999, 1000, 1001, 20000};

static void *m_sleep_us(void *arg)
{
    int64_t d = *(const int64_t *)arg;

    for (int rep = 0; rep < 5; rep++) {
        int64_t t0 = wt_now_ns();
        ck_assert_int_eq(weave_sleep_us(d), 0);
        ck_assert_int_ge(wt_now_ns() - t0, d * 1000);
    }
    WT_ASSERT_IDLE();
    return NULL;
}

START_TEST(sleep_us_never_early)
{
    WT_RUN(m_sleep_us, (void *)&sleep_us_table[_i]);
}
END_TEST

/* Many short sleeps in a row, each checked: a deadline rounded down to the
 * clock's or the poller's resolution shows up here. */
WT_TEST(many_short_sleeps_never_early)
{
    for (int i = 0; i < 200; i++) {
        int64_t d = 1 + i % 7 * 150; /* 1 .. 901 us */
        int64_t t0 = wt_now_ns();
        ck_assert_int_eq(weave_sleep_us(d), 0);
        ck_assert_int_ge(wt_now_ns() - t0, d * 1000);
    }
    WT_ASSERT_IDLE();
}

/* ---- order ------------------------------------------------------------- */

#define LOG_MAX 64
static int log_buf[LOG_MAX];
static int log_len;

/* Under valgrind each task's first run takes far longer, so the gaps
 * between the durations of the order tests are widened there. */
static int64_t order_scale(void)
{
    return WT_ON_VALGRIND ? 5 : 1;
}

static void *sleep_then_log(void *arg)
{
    int v = (int)wt_int(arg);
    int64_t t0 = wt_now_ns();

    ck_assert_int_eq(weave_sleep(v * order_scale()), 0);
    ck_assert_int_ge(wt_now_ns() - t0, v * order_scale() * 1000000);
    ck_assert_int_lt(log_len, LOG_MAX);
    log_buf[log_len++] = v;
    return NULL;
}

static void *m_sleep_sort(void *arg)
{
    static const int d[4] = {30, 40, 10, 20};
    weave_task *t[4];

    (void)arg;
    for (int i = 0; i < 4; i++)
        t[i] = WT_SPAWN(sleep_then_log, wt_ptr(d[i]));
    for (int i = 0; i < 4; i++)
        WT_JOIN(t[i]);
    WT_ASSERT_IDLE();
    return NULL;
}

START_TEST(sleep_sort_order)
{
    log_len = 0;
    WT_RUN(m_sleep_sort, NULL);
    ck_assert_int_eq(log_len, 4);
    ck_assert_int_eq(log_buf[0], 10);
    ck_assert_int_eq(log_buf[1], 20);
    ck_assert_int_eq(log_buf[2], 30);
    ck_assert_int_eq(log_buf[3], 40);
}
END_TEST

static void *sleep20_log_index(void *arg)
{
    ck_assert_int_eq(weave_sleep(20), 0);
    log_buf[log_len++] = (int)wt_int(arg);
    return NULL;
}

static void *m_equal(void *arg)
{
    weave_task *t[32];

    (void)arg;
    for (int i = 0; i < 32; i++)
        t[i] = WT_SPAWN(sleep20_log_index, wt_ptr(i));
    for (int i = 0; i < 32; i++)
        WT_JOIN(t[i]);
    WT_ASSERT_IDLE();
    return NULL;
}

START_TEST(equal_durations_wake_in_sleep_order)
{
    log_len = 0;
    WT_RUN(m_equal, NULL);
    ck_assert_int_eq(log_len, 32);
    for (int i = 0; i < 32; i++)
        ck_assert_int_eq(log_buf[i], i);
}
END_TEST

static void *log_then_sleep0(void *arg)
{
    int us = (int)wt_int(arg);

    log_buf[log_len++] = 1;
    ck_assert_int_eq(us ? weave_sleep_us(0) : weave_sleep(0), 0);
    log_buf[log_len++] = 3;
    return NULL;
}

static void *log_two(void *arg)
{
    (void)arg;
    log_buf[log_len++] = 2;
    return NULL;
}

static void *m_sleep0(void *arg)
{
    weave_task *a, *b;

    a = WT_SPAWN(log_then_sleep0, arg);
    b = WT_SPAWN(log_two, NULL);
    WT_JOIN(a);
    WT_JOIN(b);
    WT_ASSERT_IDLE();
    return NULL;
}

START_TEST(sleep_zero_yields)
{
    /* a logs 1 and sleeps 0, which lets b log 2 before a logs 3 */
    log_len = 0;
    WT_RUN(m_sleep0, wt_ptr(0));
    ck_assert_int_eq(log_len, 3);
    ck_assert_int_eq(log_buf[0], 1);
    ck_assert_int_eq(log_buf[1], 2);
    ck_assert_int_eq(log_buf[2], 3);
    log_len = 0;
    WT_RUN(m_sleep0, wt_ptr(1));
    ck_assert_int_eq(log_len, 3);
    ck_assert_int_eq(log_buf[1], 2);
}
END_TEST

/* ---- huge, negative and infinite durations ---------------------------- */

struct huge {
    int us;    /* 1: weave_sleep_us, 0: weave_sleep */
    int64_t v; /* the duration */
};

static const struct huge huge_table[] = {
    {0, INT64_MAX},
    {0, INT64_MAX - 1},
    {0, INT64_MAX / 1000 + 1}, /* * 1000 overflows */
    {0, INT64_MAX / 1000},
    {0, INT64_MAX / 1000000 + 1}, /* * 10^6 overflows */
    {0, INT64_MAX / 1000000},
    {0, (int64_t)1000000000000}, /* 31 years: a deadline that fits */
    {1, INT64_MAX},
    {1, INT64_MAX / 1000 + 1},
    {1, INT64_MAX / 1000},
    {1, (int64_t)1000000000000000},
};

static int huge_done;

static void *huge_sleeper(void *arg)
{
    const struct huge *h = arg;
    int r = h->us ? weave_sleep_us(h->v) : weave_sleep(h->v);

    ck_assert_int_eq(r, -1);
    ck_assert_int_eq(errno, ECANCELED);
    huge_done = 1;
    return NULL;
}

static void *m_huge(void *arg)
{
    weave_task *t;

    huge_done = 0;
    t = WT_SPAWN(huge_sleeper, arg);
    ck_assert_int_eq(weave_sleep(30), 0);
    ck_assert_int_eq(huge_done, 0); /* did not return early */
    ck_assert_int_eq(weave_cancel(t), 0);
    WT_JOIN(t);
    ck_assert_int_eq(huge_done, 1);
    WT_ASSERT_IDLE();
    return NULL;
}

START_TEST(huge_durations_do_not_expire_and_cancel)
{
    WT_RUN(m_huge, (void *)&huge_table[_i]);
}
END_TEST

WT_TEST(negative_durations_einval)
{
    static const int64_t bad[] = {-2, -3, -1000, INT64_MIN + 1, INT64_MIN};
    weave_stats st;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        WT_FAILS(weave_sleep(bad[i]), EINVAL);
        WT_FAILS(weave_sleep_us(bad[i]), EINVAL);
    }
    ck_assert_int_eq(weave_get_stats(&st), 0);
    ck_assert_uint_eq(st.timers_pending, 0);
    WT_ASSERT_IDLE();
}

WT_TEST(sleep_minus_one_until_cancelled)
{
    weave_task *t[2];
    struct huge forever[2] = {{0, -1}, {1, -1}};
    weave_stats st;

    huge_done = 0;
    for (int i = 0; i < 2; i++)
        t[i] = WT_SPAWN(huge_sleeper, &forever[i]);
    ck_assert_int_eq(weave_sleep(50), 0);
    ck_assert_int_eq(huge_done, 0);
    /* sleep(-1) arms no timer */
    ck_assert_int_eq(weave_get_stats(&st), 0);
    ck_assert_uint_eq(st.timers_pending, 0);
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(weave_cancel(t[i]), 0);
        WT_JOIN(t[i]);
    }
    ck_assert_int_eq(huge_done, 1);
    WT_ASSERT_IDLE();
}

WT_TEST(cancel_removes_the_timer)
{
    weave_task *t[5];
    struct huge h = {0, 10000};
    weave_stats st;

    for (int i = 0; i < 5; i++)
        t[i] = WT_SPAWN(huge_sleeper, &h);
    ck_assert_int_eq(weave_yield(), 0);
    ck_assert_int_eq(weave_get_stats(&st), 0);
    ck_assert_uint_eq(st.timers_pending, 5);
    ck_assert_int_eq(weave_cancel(t[2]), 0);
    ck_assert_int_eq(weave_get_stats(&st), 0);
    ck_assert_uint_eq(st.timers_pending, 4); /* its timer is gone at once */
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(weave_cancel(t[i]), 0);
        WT_JOIN(t[i]);
    }
    WT_ASSERT_IDLE();
}

/* ---- signals ------------------------------------------------------------ */

static volatile sig_atomic_t alarms;

static void on_alarm(int sig)
{
    (void)sig;
    alarms++;
}

static void *m_storm(void *arg)
{
    struct itimerval it = {{0, 1000}, {0, 1000}};
    struct itimerval off = {{0, 0}, {0, 0}};
    int64_t t0;

    (void)arg;
    ck_assert_int_eq(setitimer(ITIMER_REAL, &it, NULL), 0);
    t0 = wt_now_ns();
    ck_assert_int_eq(weave_sleep(100), 0);
    ck_assert_int_ge(wt_now_ns() - t0, (int64_t)100 * 1000000);
    t0 = wt_now_ns();
    ck_assert_int_eq(weave_sleep_us(30000), 0);
    ck_assert_int_ge(wt_now_ns() - t0, (int64_t)30 * 1000000);
    ck_assert_int_eq(setitimer(ITIMER_REAL, &off, NULL), 0);
    WT_ASSERT_IDLE();
    return NULL;
}

START_TEST(signal_storm_does_not_end_sleep_early)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    ck_assert_int_eq(sigaction(SIGALRM, &sa, NULL), 0);
    alarms = 0;
    WT_RUN(m_storm, NULL);
    /* The storm really happened (~130 signals; far fewer under valgrind,
     * which delivers signals only between its scheduling slices). */
    ck_assert_int_ge(alarms, WT_ON_VALGRIND ? 2 : 20);
}
END_TEST

/* ---- starvation ---------------------------------------------------------- */

static int sleeper_woke;
static struct weave__task *sleeper_self;

static void *timed_sleeper(void *arg)
{
    int64_t t0 = wt_now_ns();

    (void)arg;
    sleeper_self = weave__tls->current;
    ck_assert_int_eq(weave_sleep(20), 0);
    ck_assert_int_ge(wt_now_ns() - t0, (int64_t)20 * 1000000);
    sleeper_woke = 1;
    return NULL;
}

WT_TEST(yield_loop_does_not_starve_sleeper)
{
    weave_task *t;
    int64_t deadline;
    long late = 0, total = 0;

    sleeper_woke = 0;
    t = WT_SPAWN(timed_sleeper, NULL);
    ck_assert_int_eq(weave_yield(), 0); /* the sleeper is parked now */
    /* weave's own deadline for it (the timer keeps it once fired) */
    ck_assert(weave__timer_armed(&sleeper_self->timer));
    deadline = sleeper_self->timer.deadline;
    /* Spin on yield only: the scheduler never blocks, yet must take the
     * expired timer in between two rounds: the sleeper runs within two of
     * our yields once its deadline has passed. */
    while (!sleeper_woke) {
        if (weave__clock_ns() >= deadline)
            late++;
        ck_assert_int_eq(weave_yield(), 0);
        total++;
        ck_assert_int_le(late, 3);
    }
    ck_assert_int_gt(total, late);
    WT_JOIN(t);
    WT_ASSERT_IDLE();
}

/* ---- the clock and the thread's timer slack ----------------------------- */

static void *m_slack(void *arg)
{
    int *inside = arg;

    *inside = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
    WT_ASSERT_IDLE();
    return NULL;
}

START_TEST(timer_slack_left_alone)
{
    int inside = -1;

    /* Timers end waits through a timerfd, which gets no slack, so weave_run
     * has no reason to touch the thread's timer slack, inside or after. */
    ck_assert_int_eq(prctl(PR_SET_TIMERSLACK, 50000UL, 0, 0, 0), 0);
    WT_RUN(m_slack, &inside);
    ck_assert_int_eq(inside, 50000);
    ck_assert_int_eq(prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0), 50000);
}
END_TEST

START_TEST(now_is_the_monotonic_clock)
{
    for (int i = 0; i < 1000; i++) {
        int64_t a = wt_now_ns();
        int64_t ms = weave_now(), us = weave_now_us();
        int64_t b = wt_now_ns();

        ck_assert_int_ge(ms, a / 1000000);
        ck_assert_int_le(ms, b / 1000000);
        ck_assert_int_ge(us, a / 1000);
        ck_assert_int_le(us, b / 1000);
    }
}
END_TEST

/* ---- 10^5 sleepers -------------------------------------------------------- */

struct wake {
    int64_t deadline; /* weave's own deadline for the task, ns */
    uint64_t seq;     /* and its insertion number */
};

static struct wake *wakes;
static long nwakes;

static void *random_sleeper(void *arg)
{
    int64_t d_us = (int64_t)wt_int(arg);
    int64_t t0 = wt_now_ns();
    struct weave__task *self;

    ck_assert_int_eq(weave_sleep_us(d_us), 0);
    ck_assert_int_ge(wt_now_ns() - t0, d_us * 1000);
    /* The timer is disarmed but keeps the deadline and insertion number it
     * fired with. */
    self = weave__tls->current;
    wakes[nwakes].deadline = self->timer.deadline;
    wakes[nwakes].seq = self->timer.seq;
    nwakes++;
    return NULL;
}

static void *m_many(void *arg)
{
    long n = (long)wt_int(arg);
    weave_task **t = calloc((size_t)n, sizeof(*t));
    unsigned seed = 4242;

    ck_assert_ptr_nonnull(t);
    for (long i = 0; i < n; i++) {
        /* 1 .. 300 ms (0 would yield without a timer), in whole ms so that
         * many deadlines nearly tie */
        int64_t d_us = (int64_t)(rand_r(&seed) % 300 + 1) * 1000;
        t[i] = weave_spawn(random_sleeper, wt_ptr((intptr_t)d_us));
        ck_assert_msg(t[i] != NULL, "spawn %ld: errno %d", i, errno);
    }
    for (long i = 0; i < n; i++)
        WT_JOIN(t[i]);
    free(t);
    WT_ASSERT_IDLE();
    return NULL;
}

/*
 * How many sleepers to run at once: 10^5. Under valgrind, whose every task
 * start costs milliseconds, 5,000. Under ASan with detect_stack_use_after_
 * return, ASan gives every task a fake stack of its own and remaps shadow
 * memory as tasks end in random order; the mappings this makes exceed
 * vm.max_map_count (65,530) and ASan dies ("ReserveShadowMemoryRange
 * failed", seen with 40,000 tasks), whatever weave does. So there, and only
 * there, the test runs 20,000; ASan without that option runs 10^5.
 */
static long many_sleepers(void)
{
    if (WT_ON_VALGRIND)
        return 5000;
#if WT_ASAN
    if (__asan_get_current_fake_stack() != NULL)
        return 20000;
#endif
    return 100000;
}

START_TEST(many_sleepers_wake_in_deadline_order)
{
    long n = many_sleepers();

    wakes = calloc((size_t)n, sizeof(*wakes));
    ck_assert_ptr_nonnull(wakes);
    nwakes = 0;
    WT_RUN(m_many, wt_ptr(n));
    ck_assert_int_eq(nwakes, n);
    for (long i = 1; i < n; i++) {
        const struct wake *a = &wakes[i - 1], *b = &wakes[i];
        ck_assert_msg(a->deadline < b->deadline || (a->deadline == b->deadline && a->seq < b->seq),
                      "wake %ld out of order", i);
    }
    free(wakes);
}
END_TEST

static Suite *timer_suite(void)
{
    Suite *s = suite_create("timer");
    TCase *heap = tcase_create("heap");
    TCase *sl = tcase_create("sleep");
    TCase *stress = tcase_create("stress");
    int nms = (int)(sizeof(sleep_ms_table) / sizeof(sleep_ms_table[0]));
    int nus = (int)(sizeof(sleep_us_table) / sizeof(sleep_us_table[0]));
    int nhuge = (int)(sizeof(huge_table) / sizeof(huge_table[0]));

    tcase_set_timeout(heap, 10);
    tcase_add_test(heap, heap_random_against_reference);
    tcase_add_test(heap, heap_equal_deadlines_fire_fifo);
    tcase_add_test(heap, heap_rearmed_timer_goes_behind_its_ties);
    tcase_add_test(heap, heap_extreme_deadlines);
    suite_add_tcase(s, heap);

    tcase_set_timeout(sl, 10);
    tcase_add_loop_test(sl, sleep_ms_never_early, 0, nms);
    tcase_add_loop_test(sl, sleep_us_never_early, 0, nus);
    tcase_add_test(sl, many_short_sleeps_never_early);
    tcase_add_test(sl, sleep_sort_order);
    tcase_add_test(sl, equal_durations_wake_in_sleep_order);
    tcase_add_test(sl, sleep_zero_yields);
    tcase_add_loop_test(sl, huge_durations_do_not_expire_and_cancel, 0, nhuge);
    tcase_add_test(sl, negative_durations_einval);
    tcase_add_test(sl, sleep_minus_one_until_cancelled);
    tcase_add_test(sl, cancel_removes_the_timer);
    tcase_add_test(sl, signal_storm_does_not_end_sleep_early);
    tcase_add_test(sl, yield_loop_does_not_starve_sleeper);
    tcase_add_test(sl, timer_slack_left_alone);
    tcase_add_test(sl, now_is_the_monotonic_clock);
    suite_add_tcase(s, sl);

    tcase_set_timeout(stress, 60);
    tcase_add_test(stress, many_sleepers_wake_in_deadline_order);
    suite_add_tcase(s, stress);
    return s;
}

int main(void)
{
    return wt_main(timer_suite());
}
