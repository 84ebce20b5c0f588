/*
 * test_xthread.c - schedulers as objects, posts and calls across threads,
 * stepping a scheduler from another loop, a scheduler per core (weave.h,
 * "Schedulers, threads and embedding"; API.md, the section of that name,
 * sentence by sentence).
 *
 *   sched     weave_sched_new / run / free / self: a scheduler runs once;
 *             EBUSY on a thread that runs one, and for a scheduler running
 *             elsewhere; free is EBUSY while it runs and from its tasks,
 *             and otherwise cancels what is left, posts that never started
 *             included (they start cancelled and still run); self names the
 *             bound scheduler; weave_run is unchanged (EDEADLK), and a
 *             scheduler that can be posted to never reports a deadlock
 *   post      before the start, while running, from its own tasks and from
 *             another scheduler's; per-thread FIFO; a post during shutdown
 *             starts cancelled; ESRCH once stopped; EINVAL
 *   flood     4 threads x 250,000 posts into one scheduler, each run exactly
 *             once and in per-thread order; 1,000 rounds of posts and calls
 *             racing a scheduler's stop (run + refused == made)
 *   call      from a plain thread (it blocks), before the target starts, from
 *             a task of another scheduler (only the task waits), on the
 *             target's own thread (spawn + join; EDEADLK outside a task),
 *             cancelled or timed out mid-call (returns only after the remote
 *             task, which saw the cancel, has ended), by a caller cancelled
 *             before it calls, ESRCH from a stopped scheduler and from one
 *             that stops meanwhile
 *   step      a plain poll(2) loop: the fd is readable when a post arrives
 *             (also before the first step, and when *next_ms is NULL); a
 *             step runs each runnable task once and returns the live count;
 *             *next_ms is 0 (a task can run, a post is pending), -1 (only an
 *             fd or a post can wake one) or the time to the earliest timer
 *             (the fd is readable then, not before); a step returning 0 does
 *             not stop s; free cancels a stepped scheduler's tasks and posts;
 *             EBUSY from another thread, for a running scheduler, from a
 *             task, between steps; binding (self, SIGPIPE); weave_call into
 *             and out of a stepped scheduler
 *   threads   weave_run_threads: distinct indices, the caller runs index 0,
 *             options for each, returns after all, 0 = one per CPU, errors,
 *             one failing member, SIGINT stops every member (EINTR), a
 *             second one ends the process; WEAVE_LISTEN_REUSEPORT
 *
 * Times are asserted as lower bounds; upper bounds only catch hangs. Under
 * valgrind and ThreadSanitizer (which counts every task as a thread, and
 * dies past some 8,000 of them in a process) the stress tests scale down.
 *
 * Check timeouts: "sched" 10 s x 9, "post" 10 s x 7, "flood" 90 s x 2,
 * "call" 10 s x 10, "step" 10 s x 15, "threads" 15 s x 6: 90 + 70 + 180 +
 * 100 + 150 + 90 = 680 s; the CTest timeout in CMakeLists.txt (800 s) is
 * above their sum.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "weave_test.h"

/* ---- helpers ------------------------------------------------------------ */

/* A bound on waiting for another thread: only catches hangs. */
#define HANG_MS (10 * WT_PROMPT_MS)

static void nap_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};

    nanosleep(&ts, NULL);
}

/* A plain thread waits until *v >= at_least. */
static void thread_await(atomic_int *v, int at_least)
{
    int64_t t0 = wt_now_ns();

    while (atomic_load(v) < at_least) {
        ck_assert_msg(wt_ms_since(t0) < HANG_MS, "waited %lld ms for another thread",
                      (long long)wt_ms_since(t0));
        nap_us(200);
    }
}

/* A task waits until *v >= at_least, letting the others run. */
static void task_await(atomic_int *v, int at_least)
{
    int64_t t0 = wt_now_ns();

    while (atomic_load(v) < at_least) {
        ck_assert_msg(wt_ms_since(t0) < HANG_MS, "waited %lld ms for another thread",
                      (long long)wt_ms_since(t0));
        ck_assert_int_eq(weave_sleep(1), 0);
    }
}

/* A scheduler run by weave_sched_run on a thread of its own. */
struct runner {
    weave_sched *s;
    weave_fn main_fn;
    void *arg;
    pthread_t thread;
    int rc;       /* weave_sched_run's return */
    int err;      /* and errno */
    void *result; /* main's result */
};

static void *runner_body(void *p)
{
    struct runner *r = p;

    errno = 0;
    r->rc = weave_sched_run(r->s, r->main_fn, r->arg, &r->result);
    r->err = errno;
    return NULL;
}

static void runner_start(struct runner *r, weave_sched *s, weave_fn main_fn, void *arg)
{
    memset(r, 0, sizeof(*r));
    r->s = s;
    r->main_fn = main_fn;
    r->arg = arg;
    ck_assert_int_eq(pthread_create(&r->thread, NULL, runner_body, r), 0);
}

/* Join the runner's thread and assert that the run succeeded. */
static void runner_join(struct runner *r)
{
    ck_assert_int_eq(pthread_join(r->thread, NULL), 0);
    ck_assert_msg(r->rc == 0, "weave_sched_run: %d, errno %d", r->rc, r->err);
}

/* Whether fd is readable within timeout_ms (poll(2), as a host loop would). */
static int readable(int fd, int64_t timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int n;

    while ((n = poll(&p, 1, (int)timeout_ms)) < 0 && errno == EINTR)
        ;
    ck_assert_int_ge(n, 0);
    return n > 0 && (p.revents & POLLIN);
}

/* Whether the calling task is its scheduler's main task (weave_tasks). */
static int in_main_task(void)
{
    weave_task_info info[64];
    ssize_t n = weave_tasks(info, 64);

    ck_assert_int_ge(n, 1);
    for (ssize_t i = 0; i < n && i < 64; i++)
        if (info[i].state == WEAVE_TASK_RUNNING)
            return (info[i].flags & WEAVE_TASK_MAIN) != 0;
    ck_abort_msg("the calling task is not in weave_tasks");
    return -1;
}

static int sigpipe_blocked(void)
{
    sigset_t cur;

    ck_assert_int_eq(pthread_sigmask(SIG_SETMASK, NULL, &cur), 0);
    return sigismember(&cur, SIGPIPE);
}

/* What many tests count: tasks that ran. */
static atomic_int count;

static void *count_up(void *arg)
{
    atomic_fetch_add(&count, 1);
    return arg;
}

static void *return_arg(void *arg)
{
    return arg;
}

static void *indexed_count(unsigned index, void *arg)
{
    (void)index;
    atomic_fetch_add(&count, 1);
    return arg;
}

/* Held by a scheduler's main until the test lets it go. */
static atomic_int started, release_main;
static pthread_t started_thread;

static void *hold_until_released(void *arg)
{
    started_thread = pthread_self();
    atomic_store(&started, 1);
    task_await(&release_main, 1);
    return arg;
}

/* ---- sched: schedulers as objects ------------------------------------------ */

/* weave_sched_run gives main's result; a scheduler runs once: after it
 * returned, running or stepping it again is EINVAL (its fd too), and a post
 * or a call is ESRCH without running fn. */
START_TEST(runs_once)
{
    weave_sched *s = weave_sched_new(NULL);
    void *res = NULL;
    int64_t next = 5;

    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(weave_sched_run(s, return_arg, wt_ptr(7), &res), 0);
    ck_assert_int_eq(wt_int(res), 7);
    res = wt_ptr(1);
    WT_FAILS(weave_sched_run(s, count_up, NULL, &res), EINVAL);
    WT_FAILS(weave_sched_step(s, &next), EINVAL);
    WT_FAILS(weave_sched_fd(s), EINVAL);
    WT_FAILS(weave_post(s, count_up, NULL), ESRCH);
    WT_FAILS(weave_call(s, count_up, NULL, &res), ESRCH);
    ck_assert_ptr_eq(res, wt_ptr(1));
    ck_assert_int_eq(atomic_load(&count), 0);
    ck_assert_int_eq(weave_sched_free(s), 0);
}
END_TEST

/* EINVAL for NULL schedulers and functions and for bad options, none of
 * which touches the scheduler: it still runs afterwards. */
START_TEST(bad_arguments)
{
    weave_run_opts bad_flags = {.flags = 1u << 30};
    weave_run_opts bad_reserved = {.reserved = {1}};
    weave_sched *s;

    WT_FAILS_NULL(weave_sched_new(&bad_flags), EINVAL);
    WT_FAILS_NULL(weave_sched_new(&bad_reserved), EINVAL);
    ck_assert_ptr_nonnull(s = weave_sched_new(NULL));
    WT_FAILS(weave_sched_run(NULL, return_arg, NULL, NULL), EINVAL);
    WT_FAILS(weave_sched_run(s, NULL, NULL, NULL), EINVAL);
    WT_FAILS(weave_sched_free(NULL), EINVAL);
    WT_FAILS(weave_post(NULL, count_up, NULL), EINVAL);
    WT_FAILS(weave_post(s, NULL, NULL), EINVAL);
    WT_FAILS(weave_call(NULL, count_up, NULL, NULL), EINVAL);
    WT_FAILS(weave_call(s, NULL, NULL, NULL), EINVAL);
    WT_FAILS(weave_sched_step(NULL, NULL), EINVAL);
    WT_FAILS(weave_sched_fd(NULL), EINVAL);
    ck_assert_int_eq(weave_sched_run(s, count_up, NULL, NULL), 0);
    ck_assert_int_eq(atomic_load(&count), 1);
    ck_assert_int_eq(weave_sched_free(s), 0);
}
END_TEST

static weave_sched *other;

static void *try_nested(void *arg)
{
    WT_FAILS(weave_sched_run(other, count_up, NULL, NULL), EBUSY);
    WT_FAILS(weave_run(count_up, NULL, NULL), EBUSY);
    WT_FAILS(weave_sched_step(other, NULL), EBUSY);
    ck_assert_int_eq(atomic_load(&count), 0);
    return arg;
}

/* weave_sched_run (and weave_run, and a step) is EBUSY on a thread that
 * already runs a scheduler, whether that one came from weave_run or
 * weave_sched_run; the refused scheduler is left as it was and runs later. */
START_TEST(run_is_busy_inside_a_scheduler)
{
    weave_sched *s;

    ck_assert_ptr_nonnull(other = weave_sched_new(NULL));
    WT_RUN(try_nested, NULL);
    ck_assert_ptr_nonnull(s = weave_sched_new(NULL));
    ck_assert_int_eq(weave_sched_run(s, try_nested, NULL, NULL), 0);
    ck_assert_int_eq(weave_sched_free(s), 0);
    ck_assert_int_eq(weave_sched_run(other, count_up, NULL, NULL), 0);
    ck_assert_int_eq(atomic_load(&count), 1);
    ck_assert_int_eq(weave_sched_free(other), 0);
}
END_TEST

/* A scheduler running on thread A: from thread B, running it is EBUSY (its
 * main never runs), and so are a step and a free; B has no scheduler
 * (weave_sched_self: EPERM). Once A's run returned, running it is EINVAL. */
START_TEST(run_is_busy_while_running_elsewhere)
{
    weave_sched *s = weave_sched_new(NULL);
    struct runner r;

    ck_assert_ptr_nonnull(s);
    runner_start(&r, s, hold_until_released, wt_ptr(3));
    thread_await(&started, 1);
    WT_FAILS(weave_sched_run(s, count_up, NULL, NULL), EBUSY);
    WT_FAILS(weave_sched_step(s, NULL), EBUSY);
    WT_FAILS(weave_sched_free(s), EBUSY);
    WT_FAILS_NULL(weave_sched_self(), EPERM);
    atomic_store(&release_main, 1);
    runner_join(&r);
    ck_assert_int_eq(wt_int(r.result), 3);
    ck_assert_int_eq(atomic_load(&count), 0);
    WT_FAILS(weave_sched_run(s, count_up, NULL, NULL), EINVAL);
    ck_assert_int_eq(weave_sched_free(s), 0);
}
END_TEST

static void *free_own(void *arg)
{
    weave_sched *s = arg;

    ck_assert_ptr_eq(weave_sched_self(), s);
    WT_FAILS(weave_sched_free(s), EBUSY);
    atomic_fetch_add(&count, 1);
    return NULL;
}

static void *main_free_own(void *arg)
{
    weave_sched *s = arg;

    WT_FAILS(weave_sched_free(s), EBUSY); /* from main */
    WT_JOIN(WT_SPAWN(free_own, s));       /* from a spawned task */
    ck_assert_int_eq(weave_post(s, free_own, s), 0);
    task_await(&count, 2); /* from a posted task */
    return NULL;
}

/* weave_sched_free is EBUSY from any of the scheduler's own tasks: main, a
 * spawned one, a posted one; the run goes on unharmed. */
START_TEST(free_is_busy_from_its_tasks)
{
    weave_sched *s = weave_sched_new(NULL);

    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(weave_sched_run(s, main_free_own, s, NULL), 0);
    ck_assert_int_eq(atomic_load(&count), 2);
    ck_assert_int_eq(weave_sched_free(s), 0);
}
END_TEST

/* Posted tasks that never started, seen from inside. */
#define LEFT_MAX 8
static struct {
    atomic_int ran;
    int order[LEFT_MAX];
    int cancelled[LEFT_MAX]; /* weave_cancelled(self) at its start */
    int sleep_err[LEFT_MAX]; /* errno of its first blocking call */
    pthread_t thread[LEFT_MAX];
} left;

static void *leftover(void *arg)
{
    int *id = arg, i = *id;

    left.order[atomic_load(&left.ran)] = i;
    left.cancelled[i] = weave_cancelled(weave_self());
    errno = 0;
    ck_assert_int_eq(weave_sleep(-1), -1);
    left.sleep_err[i] = errno;
    left.thread[i] = pthread_self();
    free(id); /* what its arg owned is released: no leak for ASan or valgrind */
    atomic_fetch_add(&left.ran, 1);
    return NULL;
}

static void post_leftovers(weave_sched *s, int n)
{
    for (int i = 0; i < n; i++) {
        int *id = malloc(sizeof(*id));

        ck_assert_ptr_nonnull(id);
        *id = i;
        ck_assert_int_eq(weave_post(s, leftover, id), 0);
    }
}

static void assert_leftovers(int n, pthread_t where, int same)
{
    ck_assert_int_eq(atomic_load(&left.ran), n);
    for (int i = 0; i < n; i++) {
        ck_assert_int_eq(left.order[i], i);
        ck_assert_int_eq(left.cancelled[i], 1);
        ck_assert_int_eq(left.sleep_err[i], ECANCELED);
        ck_assert_int_eq(pthread_equal(left.thread[i], where) != 0, same);
    }
}

/* Free of a scheduler that never ran: the posts it holds start, cancelled
 * (their first blocking call fails with ECANCELED), in the order posted, and
 * run to their end, so each releases its arg; on the calling thread, which
 * runs no scheduler. */
START_TEST(free_runs_unstarted_posts_cancelled)
{
    weave_sched *s = weave_sched_new(NULL);

    ck_assert_ptr_nonnull(s);
    post_leftovers(s, 3);
    ck_assert_int_eq(atomic_load(&left.ran), 0);
    ck_assert_int_eq(weave_sched_free(s), 0);
    assert_leftovers(3, pthread_self(), 1);
    WT_FAILS_NULL(weave_sched_self(), EPERM); /* it bound nothing here */
}
END_TEST

static void *main_frees_unstarted(void *arg)
{
    weave_sched *mine = weave_sched_self();

    post_leftovers(arg, 3);
    ck_assert_int_eq(weave_sched_free(arg), 0);
    assert_leftovers(3, pthread_self(), 0);
    ck_assert_ptr_eq(weave_sched_self(), mine); /* still ours, unharmed */
    return NULL;
}

/* The same free, called from a task of another scheduler: the posts start
 * cancelled on a thread made for them (not the caller's), and free returns
 * once they have ended. */
START_TEST(free_from_a_task_uses_a_thread_of_its_own)
{
    weave_sched *s = weave_sched_new(NULL);

    ck_assert_ptr_nonnull(s);
    WT_RUN(main_frees_unstarted, s);
}
END_TEST

static weave_sched *seen[4];

static void *note_self(void *arg)
{
    seen[wt_int(arg)] = weave_sched_self();
    atomic_fetch_add(&count, 1);
    return NULL;
}

static void *main_note_self(void *arg)
{
    note_self(arg);
    WT_JOIN(WT_SPAWN(note_self, wt_ptr(2)));
    task_await(&count, 3);
    return NULL;
}

static void *thread_self(void *arg)
{
    errno = 0;
    ck_assert_ptr_null(weave_sched_self());
    ck_assert_int_eq(errno, EPERM);
    return arg;
}

/* weave_sched_self: NULL with EPERM on a thread with no scheduler (before,
 * after, and on another thread during a run, and on the thread that merely
 * made it); the scheduler itself in its main, spawned and posted tasks. */
START_TEST(self_names_the_running_scheduler)
{
    weave_sched *s;
    pthread_t t;

    WT_FAILS_NULL(weave_sched_self(), EPERM);
    ck_assert_ptr_nonnull(s = weave_sched_new(NULL));
    WT_FAILS_NULL(weave_sched_self(), EPERM);
    ck_assert_int_eq(weave_post(s, note_self, wt_ptr(1)), 0);
    ck_assert_int_eq(weave_sched_run(s, main_note_self, wt_ptr(0), NULL), 0);
    for (int i = 0; i < 3; i++)
        ck_assert_ptr_eq(seen[i], s);
    WT_FAILS_NULL(weave_sched_self(), EPERM);
    ck_assert_int_eq(weave_sched_free(s), 0);

    ck_assert_ptr_nonnull(s = weave_sched_new(NULL));
    {
        struct runner r;

        runner_start(&r, s, hold_until_released, NULL);
        thread_await(&started, 1);
        ck_assert_int_eq(pthread_create(&t, NULL, thread_self, NULL), 0);
        ck_assert_int_eq(pthread_join(t, NULL), 0);
        WT_FAILS_NULL(weave_sched_self(), EPERM);
        atomic_store(&release_main, 1);
        runner_join(&r);
    }
    ck_assert_int_eq(weave_sched_free(s), 0);
}
END_TEST

/* ---- weave_run unchanged; no deadlock report where a post can come -------- */

static weave_event *wake_ev; /* the waiting main's */

static void *set_wake(void *arg)
{
    ck_assert_int_eq(weave_event_set(wake_ev), 0);
    return arg;
}

struct later_post {
    weave_sched *s;
    int64_t after_ms;
};

static void *post_later(void *arg)
{
    struct later_post *lp = arg;

    nap_us((long)lp->after_ms * 1000);
    ck_assert_int_eq(weave_post(lp->s, set_wake, NULL), 0);
    return NULL;
}

static void *main_waits_alone(void *arg)
{
    weave_event ev;

    (void)arg;
    ck_assert_int_eq(weave_event_init(&ev), 0);
    WT_FAILS(weave_event_wait(&ev), ECANCELED); /* the deadlock unwinds it */
    ck_assert_int_eq(weave_event_destroy(&ev), 0);
    return wt_ptr(9);
}

/* Every task waits on the next, through a thread that posts the wake-up. */
static void *main_waits_for_a_post(void *arg)
{
    struct later_post lp = {.s = arg ? arg : weave_sched_self(), .after_ms = 30};
    weave_event ev;
    pthread_t t;

    ck_assert_ptr_nonnull(lp.s);
    ck_assert_int_eq(weave_event_init(&ev), 0);
    wake_ev = &ev;
    ck_assert_int_eq(pthread_create(&t, NULL, post_later, &lp), 0);
    ck_assert_int_eq(weave_event_wait(&ev), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_int_eq(weave_event_destroy(&ev), 0);
    return wt_ptr(8);
}

/* weave_run is as before: it returns main's result, and a run whose every
 * task waits on another is EDEADLK (*result still set). Once its
 * weave_sched_self has been taken, another thread may post to it, so it
 * waits for that post instead; and so does a scheduler made with
 * weave_sched_new, from the start. */
START_TEST(weave_run_unchanged_and_deadlocks)
{
    const weave_run_opts quiet = {.flags = WEAVE_NO_DEADLOCK_DUMP};
    weave_sched *s;
    void *res = NULL;

    ck_assert_int_eq(wt_int(WT_RUN(return_arg, wt_ptr(4))), 4);
    errno = 0;
    ck_assert_int_eq(weave_run_with(&quiet, main_waits_alone, NULL, &res), -1);
    ck_assert_int_eq(errno, EDEADLK);
    ck_assert_int_eq(wt_int(res), 9);

    ck_assert_int_eq(weave_run_with(&quiet, main_waits_for_a_post, NULL, &res), 0);
    ck_assert_int_eq(wt_int(res), 8);

    ck_assert_ptr_nonnull(s = weave_sched_new(&quiet));
    ck_assert_int_eq(weave_sched_run(s, main_waits_for_a_post, s, &res), 0);
    ck_assert_int_eq(wt_int(res), 8);
    ck_assert_int_eq(weave_sched_free(s), 0);
}
END_TEST

/* ---- post ------------------------------------------------------------------ */

#define LOG_MAX 256
static int order_log[LOG_MAX];
static pthread_t log_thread[LOG_MAX];
static atomic_int nlog, nlog_done;

/* A posted task that logs itself, checks it was not cancelled, and can wait. */
static void *log_arg(void *arg)
{
    int i = atomic_load(&nlog);

    ck_assert_int_lt(i, LOG_MAX);
    order_log[i] = (int)wt_int(arg);
    log_thread[i] = pthread_self();
    ck_assert_int_eq(weave_cancelled(weave_self()), 0);
    ck_assert(!in_main_task()); /* a task of its own */
    atomic_store(&nlog, i + 1);
    ck_assert_int_eq(weave_sleep(1), 0);
    ck_assert(pthread_equal(log_thread[i], pthread_self())); /* tasks never migrate */
    atomic_fetch_add(&nlog_done, 1);
    return NULL;
}

static void *main_awaits_log(void *arg)
{
    task_await(&nlog_done, (int)wt_int(arg));
    return NULL;
}

/* Posts made before the scheduler runs wait for it (nothing runs them
 * meanwhile), then run in the order posted, on the thread that runs it, as
 * ordinary tasks (not cancelled, may block). */
START_TEST(posts_before_start_wait_for_it)
{
    weave_sched *s = weave_sched_new(NULL);

    ck_assert_ptr_nonnull(s);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(weave_post(s, log_arg, wt_ptr(i)), 0);
    nap_us(20000);
    ck_assert_int_eq(atomic_load(&nlog), 0);
    ck_assert_int_eq(weave_sched_run(s, main_awaits_log, wt_ptr(5), NULL), 0);
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(order_log[i], i);
        ck_assert(pthread_equal(log_thread[i], pthread_self()));
    }
    ck_assert_int_eq(weave_sched_free(s), 0);
}
END_TEST

static void *post_chain(void *arg)
{
    int left_n = (int)wt_int(arg);

    log_arg(wt_ptr(100 + left_n));
    if (left_n > 0)
        ck_assert_int_eq(weave_post(weave_sched_self(), post_chain, wt_ptr(left_n - 1)), 0);
    return NULL;
}

static void *main_posts_to_itself(void *arg)
{
    weave_sched *me = weave_sched_self();

    (void)arg;
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(weave_post(me, log_arg, wt_ptr(i)), 0);
    ck_assert_int_eq(weave_post(me, post_chain, wt_ptr(4)), 0);
    ck_assert_int_eq(atomic_load(&nlog), 0); /* posting did not run them */
    task_await(&nlog_done, 8);
    return NULL;
}

/* A scheduler's own tasks may post to it: the posts run as tasks of their
 * own, in order, and a posted task may post again. */
START_TEST(posts_from_its_own_tasks)
{
    static const int want[8] = {0, 1, 2, 104, 103, 102, 101, 100};
    weave_sched *s = weave_sched_new(NULL);

    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(weave_sched_run(s, main_posts_to_itself, NULL, NULL), 0);
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(order_log[i], want[i]);
    ck_assert_int_eq(weave_sched_free(s), 0);
}
END_TEST

static weave_sched *target;
static pthread_t target_thread;

static void *post_from_thread(void *arg)
{
    ck_assert_int_eq(weave_post(target, count_up, NULL), 0);
    return arg;
}

static void *wait_for_post(void *arg)
{
    task_await(&count, 1);
    return arg;
}

/* A post from a thread with no scheduler runs on the target, while it
 * runs; once it has stopped, a post is ESRCH. */
START_TEST(post_from_a_plain_thread)
{
    pthread_t t;

    ck_assert_ptr_nonnull(target = weave_sched_new(NULL));
    ck_assert_int_eq(pthread_create(&t, NULL, post_from_thread, NULL), 0);
    ck_assert_int_eq(weave_sched_run(target, wait_for_post, NULL, NULL), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_int_eq(atomic_load(&count), 1);
    WT_FAILS(weave_post(target, count_up, NULL), ESRCH);
    ck_assert_int_eq(weave_sched_free(target), 0);
}
END_TEST

static void *main_posts_to_target(void *arg)
{
    for (int i = 0; i < (int)wt_int(arg); i++)
        ck_assert_int_eq(weave_post(target, log_arg, wt_ptr(i)), 0);
    return NULL;
}

/* Posts from a task of another scheduler reach a running scheduler, run on
 * its thread and in the order posted; the poster does not wait for them. */
START_TEST(posts_from_another_schedulers_task)
{
    struct runner r;

    ck_assert_ptr_nonnull(target = weave_sched_new(NULL));
    runner_start(&r, target, main_awaits_log, wt_ptr(20));
    WT_RUN(main_posts_to_target, wt_ptr(20));
    runner_join(&r);
    for (int i = 0; i < 20; i++) {
        ck_assert_int_eq(order_log[i], i);
        ck_assert(pthread_equal(log_thread[i], r.thread));
    }
    ck_assert_int_eq(weave_sched_free(target), 0);
}
END_TEST

static void *main_posts_to_stopped(void *arg)
{
    WT_FAILS(weave_post(arg, count_up, NULL), ESRCH);
    return NULL;
}

/* A post to a scheduler that has stopped is ESRCH, from a plain thread and
 * from a task of another scheduler, and fn never runs. */
START_TEST(post_to_a_stopped_scheduler_is_esrch)
{
    weave_sched *s = weave_sched_new(NULL);

    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(weave_sched_run(s, return_arg, NULL, NULL), 0);
    WT_FAILS(weave_post(s, count_up, NULL), ESRCH);
    WT_RUN(main_posts_to_stopped, s);
    ck_assert_int_eq(atomic_load(&count), 0);
    ck_assert_int_eq(weave_sched_free(s), 0);
    ck_assert_int_eq(atomic_load(&count), 0);
}
END_TEST

static atomic_int main_done, late_ran, straggler_ended;
static int late_cancelled, late_err;

static void *late_task(void *arg)
{
    late_cancelled = weave_cancelled(weave_self());
    errno = 0;
    ck_assert_int_eq(weave_sleep(-1), -1);
    late_err = errno;
    atomic_store(&late_ran, 1);
    return arg;
}

/* Keeps the scheduler shutting down (its cancel cannot reach into the
 * shield) until the late post has run. */
static void *straggler(void *arg)
{
    weave_shield sh;

    weave_shield_begin(&sh);
    task_await(&late_ran, 1);
    ck_assert_int_eq(weave_sleep(20), 0);
    weave_shield_end(&sh);
    atomic_store(&straggler_ended, 1);
    return arg;
}

static void *main_leaves_a_straggler(void *arg)
{
    ck_assert_int_eq(weave_detach(WT_SPAWN(straggler, NULL)), 0);
    ck_assert_int_eq(weave_yield(), 0);
    atomic_store(&main_done, 1); /* no scheduling point between this and the end */
    return arg;
}

/* A post that comes while the scheduler shuts down (its main has returned,
 * other tasks are still ending) is taken, and starts cancelled: its first
 * blocking call fails with ECANCELED. weave_sched_run returns only once
 * every task has ended, the shielded straggler's last 20 ms included. */
START_TEST(post_during_shutdown_starts_cancelled)
{
    weave_sched *s = weave_sched_new(NULL);
    struct runner r;

    ck_assert_ptr_nonnull(s);
    runner_start(&r, s, main_leaves_a_straggler, NULL);
    thread_await(&main_done, 1);
    ck_assert_int_eq(weave_post(s, late_task, NULL), 0);
    runner_join(&r);
    ck_assert_int_eq(atomic_load(&straggler_ended), 1);
    ck_assert_int_eq(atomic_load(&late_ran), 1);
    ck_assert_int_eq(late_cancelled, 1);
    ck_assert_int_eq(late_err, ECANCELED);
    ck_assert_int_eq(weave_sched_free(s), 0);
}
END_TEST

/* ---- flood: many threads posting into one scheduler ----------------------- */

#define FLOOD_MAX_THREADS 8

static struct {
    weave_sched *s;
    int nthreads;
    long nposts;                        /* per thread */
    long window;                        /* posts a thread may have ahead of its tasks */
    atomic_long ran[FLOOD_MAX_THREADS]; /* each thread's tasks that ran */
    long next[FLOOD_MAX_THREADS];       /* the scheduler's thread only: next expected */
    long misordered;                    /* likewise: a task out of its thread's order */
    atomic_long total;                  /* tasks that ran */
    pthread_barrier_t go;
} fl;

static void *flood_task(void *arg)
{
    long v = (long)wt_int(arg);
    int i = (int)(v / fl.nposts);
    long k = v % fl.nposts;

    if (fl.next[i] != k)
        fl.misordered++;
    fl.next[i] = k + 1;
    atomic_fetch_add(&fl.ran[i], 1);
    atomic_fetch_add(&fl.total, 1);
    return NULL;
}

static void *producer(void *arg)
{
    int i = (int)wt_int(arg);

    pthread_barrier_wait(&fl.go);
    for (long k = 0; k < fl.nposts; k++) {
        /* Bounded memory: a producer that is far ahead lets the tasks catch
         * up (each post is a task, with a stack, until it runs). */
        while (k - atomic_load(&fl.ran[i]) >= fl.window)
            nap_us(50);
        ck_assert_int_eq(weave_post(fl.s, flood_task, wt_ptr(i * fl.nposts + k)), 0);
    }
    return NULL;
}

static void *flood_main(void *arg)
{
    long want = (long)fl.nthreads * fl.nposts;
    int64_t t0 = wt_now_ns();

    (void)arg;
    while (atomic_load(&fl.total) < want) {
        ck_assert_msg(wt_ms_since(t0) < 60000, "%ld of %ld posts ran", atomic_load(&fl.total),
                      want);
        ck_assert_int_eq(weave_sleep(1), 0);
    }
    return NULL;
}

/* nthreads threads post nposts tasks each into one scheduler (some before
 * it starts, most while it runs): every post runs exactly once, and each
 * thread's posts start in the order it made them. */
static void flood(int nthreads, long nposts)
{
    pthread_t th[FLOOD_MAX_THREADS];

    ck_assert_int_le(nthreads, FLOOD_MAX_THREADS);
    fl.nthreads = nthreads;
    fl.nposts = nposts;
    fl.window = WT_TSAN ? 200 : 10000;
    ck_assert_ptr_nonnull(fl.s = weave_sched_new(NULL));
    ck_assert_int_eq(pthread_barrier_init(&fl.go, NULL, (unsigned)nthreads + 1), 0);
    for (int i = 0; i < nthreads; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, producer, wt_ptr(i)), 0);
    pthread_barrier_wait(&fl.go);
    ck_assert_int_eq(weave_sched_run(fl.s, flood_main, NULL, NULL), 0);
    for (int i = 0; i < nthreads; i++)
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
    pthread_barrier_destroy(&fl.go);
    ck_assert_int_eq(fl.misordered, 0);
    ck_assert_int_eq(atomic_load(&fl.total), (long)nthreads * nposts);
    for (int i = 0; i < nthreads; i++)
        ck_assert_int_eq(fl.next[i], nposts);
    WT_FAILS(weave_post(fl.s, flood_task, NULL), ESRCH);
    ck_assert_int_eq(weave_sched_free(fl.s), 0);
}

/* Tasks posted from one thread start in the order posted (3 threads, a few
 * thousand posts: the quick version of the flood). */
START_TEST(posts_keep_each_threads_order)
{
    flood(3, WT_ON_VALGRIND || WT_TSAN ? 300 : 3000);
}
END_TEST

/* The big one: 4 threads x 250,000 posts into one scheduler, each run
 * exactly once, in per-thread order (2,500 under valgrind, 1,000 under
 * ThreadSanitizer, whose tasks are threads, 25,000 under AddressSanitizer,
 * whose spawns are ten times slower). */
START_TEST(four_threads_flood_one_scheduler)
{
    flood(4, WT_ON_VALGRIND ? 2500 : WT_TSAN ? 1000 : WT_ASAN ? 25000 : 250000);
}
END_TEST

/* ---- flood: posts and calls racing a scheduler's stop --------------------- */

#define RACE_POSTERS 2

/* Posts a poster may have made ahead of its tasks that ran. Unthrottled,
 * two threads out-post one scheduler many times over, and a round lasts
 * until they reach their cap (each post is taken with all those queued
 * with it, as a task with a stack, before the next round). */
#define RACE_WINDOW 32

static struct {
    weave_sched *s;
    long cap;                            /* posts (calls) per thread at most */
    atomic_int go;                       /* the run began */
    atomic_long made[RACE_POSTERS];      /* posts accepted */
    atomic_long refused[RACE_POSTERS];   /* posts refused with ESRCH */
    atomic_long ran[RACE_POSTERS];       /* posted tasks that ran, by poster */
    atomic_long calls_ok, calls_refused; /* weave_call's 0 and ESRCH */
    atomic_long call_fn_ran;             /* the calls' fn that ran */
    int main_returned;                   /* the scheduler's thread only */
    long late_not_cancelled;             /* likewise: see race_task */
} race;

/* A posted task that starts after main returned must be cancelled: it was
 * either taken during shutdown, or alive when main's end cancelled all. */
static void *race_task(void *arg)
{
    if (race.main_returned && weave_cancelled(weave_self()) != 1)
        race.late_not_cancelled++;
    atomic_fetch_add(&race.ran[wt_int(arg)], 1);
    return arg;
}

static void *race_call_fn(void *arg)
{
    atomic_fetch_add(&race.call_fn_ran, 1);
    return arg;
}

static void *race_poster(void *arg)
{
    int i = (int)wt_int(arg);

    while (!atomic_load(&race.go))
        sched_yield();
    while (atomic_load(&race.made[i]) < race.cap) {
        while (atomic_load(&race.made[i]) - atomic_load(&race.ran[i]) >= RACE_WINDOW)
            sched_yield();
        if (weave_post(race.s, race_task, arg) == 0) {
            atomic_fetch_add(&race.made[i], 1);
            continue;
        }
        ck_assert_int_eq(errno, ESRCH);
        atomic_fetch_add(&race.refused[i], 1);
        /* Once refused, always refused: the scheduler ran once. */
        WT_FAILS(weave_post(race.s, race_task, arg), ESRCH);
        break;
    }
    return NULL;
}

static void *race_caller(void *arg)
{
    while (!atomic_load(&race.go))
        sched_yield();
    for (long k = 0; k < race.cap; k++) {
        void *res = NULL;

        if (weave_call(race.s, race_call_fn, wt_ptr(5), &res) == 0) {
            ck_assert_ptr_eq(res, wt_ptr(5));
            atomic_fetch_add(&race.calls_ok, 1);
            continue;
        }
        ck_assert_int_eq(errno, ESRCH);
        atomic_fetch_add(&race.calls_refused, 1);
        break;
    }
    return arg;
}

static void *race_main(void *arg)
{
    int yields = (int)wt_int(arg);

    atomic_store(&race.go, 1);
    for (int i = 0; i < RACE_POSTERS; i++)
        while (atomic_load(&race.made[i]) == 0 && atomic_load(&race.refused[i]) == 0)
            ck_assert_int_eq(weave_sleep_us(20), 0);
    for (int i = 0; i < yields; i++)
        ck_assert_int_eq(weave_yield(), 0);
    race.main_returned = 1;
    return NULL;
}

/* Posts and calls from other threads racing the stop of a scheduler, many
 * rounds: a post is never lost (tasks that ran + posts refused with ESRCH
 * == posts made), a call either returns fn's result (fn ran) or ESRCH (fn
 * never ran), posts taken after main's return start cancelled, and nothing
 * leaks (the ASan and valgrind runs check). */
START_TEST(posts_and_calls_race_the_stop)
{
    int rounds = WT_ON_VALGRIND ? 30 : WT_TSAN ? 100 : 1000;

    for (int round = 0; round < rounds; round++) {
        pthread_t posters[RACE_POSTERS], caller;
        long made = 0, refused = 0, ran = 0;

        memset(&race, 0, sizeof(race));
        race.cap = WT_TSAN ? 4 : 1000000;
        ck_assert_ptr_nonnull(race.s = weave_sched_new(NULL));
        for (int i = 0; i < RACE_POSTERS; i++)
            ck_assert_int_eq(pthread_create(&posters[i], NULL, race_poster, wt_ptr(i)), 0);
        ck_assert_int_eq(pthread_create(&caller, NULL, race_caller, NULL), 0);
        ck_assert_int_eq(weave_sched_run(race.s, race_main, wt_ptr(round % 5), NULL), 0);
        for (int i = 0; i < RACE_POSTERS; i++) {
            ck_assert_int_eq(pthread_join(posters[i], NULL), 0);
            made += atomic_load(&race.made[i]);
            refused += atomic_load(&race.refused[i]);
            ran += atomic_load(&race.ran[i]);
            ck_assert_int_le(atomic_load(&race.refused[i]), 1);
        }
        ck_assert_int_eq(pthread_join(caller, NULL), 0);
        ck_assert_msg(ran == made, "round %d: %ld posts accepted, %ld ran, %ld refused", round,
                      made, ran, refused);
        if (!WT_TSAN) /* no cap: each poster posts until it is refused */
            ck_assert_int_eq(refused, RACE_POSTERS);
        ck_assert_int_eq(atomic_load(&race.calls_ok), atomic_load(&race.call_fn_ran));
        ck_assert_int_eq(race.late_not_cancelled, 0);
        ck_assert_int_eq(weave_sched_free(race.s), 0);
    }
}
END_TEST

/* ---- call ------------------------------------------------------------------ */

/* Bring target up on a thread of its own, its main held until target_down. */
static void target_up(struct runner *r)
{
    ck_assert_ptr_nonnull(target = weave_sched_new(NULL));
    runner_start(r, target, hold_until_released, NULL);
    thread_await(&started, 1);
    target_thread = started_thread;
}

static void target_down(struct runner *r)
{
    atomic_store(&release_main, 1);
    runner_join(r);
    ck_assert_int_eq(weave_sched_free(target), 0);
}

/* Called on target: checks where it runs, sleeps 30 ms, doubles arg. */
static void *double_it(void *arg)
{
    ck_assert(pthread_equal(pthread_self(), target_thread));
    ck_assert_ptr_eq(weave_sched_self(), target);
    ck_assert(!in_main_task()); /* a task of its own */
    ck_assert_int_eq(weave_sleep(30), 0);
    return wt_ptr(wt_int(arg) * 2);
}

/* From a thread with no scheduler, weave_call blocks the thread until fn,
 * run as a task of the target on its thread, has returned; 0 and fn's
 * result. */
START_TEST(call_from_a_plain_thread_blocks)
{
    struct runner r;
    void *res = NULL;
    int64_t t0;

    target_up(&r);
    t0 = wt_now_ns();
    ck_assert_int_eq(weave_call(target, double_it, wt_ptr(21), &res), 0);
    ck_assert_int_ge(wt_ms_since(t0), 30);
    ck_assert_int_eq(wt_int(res), 42);
    ck_assert_int_eq(weave_call(target, double_it, wt_ptr(2), NULL), 0); /* result NULL */
    target_down(&r);
}
END_TEST

static atomic_int call_returned;

static void *early_caller(void *arg)
{
    void *res = NULL;

    (void)arg;
    ck_assert_int_eq(weave_call(target, double_it, wt_ptr(5), &res), 0);
    atomic_store(&call_returned, 1);
    return res;
}

static void *main_awaits_call(void *arg)
{
    task_await(&call_returned, 1);
    return arg;
}

/* A call made before the target runs waits for it (as posts do), and is
 * answered once it runs. */
START_TEST(call_before_start_waits_for_the_run)
{
    pthread_t t;
    void *res = NULL;

    ck_assert_ptr_nonnull(target = weave_sched_new(NULL));
    target_thread = pthread_self();
    ck_assert_int_eq(pthread_create(&t, NULL, early_caller, NULL), 0);
    nap_us(20000);
    ck_assert_int_eq(atomic_load(&call_returned), 0);
    ck_assert_int_eq(weave_sched_run(target, main_awaits_call, NULL, NULL), 0);
    ck_assert_int_eq(pthread_join(t, &res), 0);
    ck_assert_int_eq(wt_int(res), 10);
    ck_assert_int_eq(weave_sched_free(target), 0);
}
END_TEST

static atomic_int seen_parked_in_call;

/* Finds main parked in weave_call (WEAVE_WAIT_CALL) while it waits. */
static void *watch_main(void *arg)
{
    weave_task_info info[8];

    (void)arg;
    for (int tries = 0; tries < 1000 && !atomic_load(&seen_parked_in_call); tries++) {
        ssize_t n = weave_tasks(info, 8);

        for (ssize_t i = 0; i < n && i < 8; i++)
            if (info[i].id == 1 && info[i].state == WEAVE_TASK_PARKED &&
                info[i].wait == WEAVE_WAIT_CALL)
                atomic_store(&seen_parked_in_call, 1);
        ck_assert_int_eq(weave_sleep(1), 0);
    }
    return NULL;
}

static void *main_calls_target(void *arg)
{
    struct wt_ticker tk = {.period_ms = 2};
    weave_task *ticker = WT_SPAWN(wt_ticker_task, &tk);
    weave_task *watcher = WT_SPAWN(watch_main, NULL);
    void *res = NULL;

    (void)arg;
    ck_assert_int_eq(weave_call(target, double_it, wt_ptr(5), &res), 0);
    ck_assert_int_eq(wt_int(res), 10);
    ck_assert_int_ge(tk.ticks, 1); /* the caller's scheduler went on */
    tk.stop = 1;
    WT_JOIN(ticker);
    WT_JOIN(watcher);
    ck_assert_int_eq(atomic_load(&seen_parked_in_call), 1);
    WT_ASSERT_IDLE();
    return NULL;
}

/* From a task of another scheduler, only the task waits: its scheduler's
 * other tasks run meanwhile, and the caller shows as parked in a call
 * (WEAVE_WAIT_CALL). */
START_TEST(call_from_a_task_only_the_task_waits)
{
    struct runner r;

    target_up(&r);
    WT_RUN(main_calls_target, NULL);
    target_down(&r);
}
END_TEST

static uint64_t own_fn_id;
static pthread_t own_fn_thread;

static void *own_fn(void *arg)
{
    own_fn_id = weave_task_id(weave_self());
    own_fn_thread = pthread_self();
    ck_assert_int_eq(weave_sleep(5), 0);
    return wt_ptr(wt_int(arg) + 1);
}

static atomic_int remote_started, remote_saw_cancel, remote_ended;

/* Runs until cancelled, then cleans up for 40 ms in a shield. */
static void *slow_fn(void *arg)
{
    weave_shield sh;

    atomic_store(&remote_started, 1);
    errno = 0;
    ck_assert_int_eq(weave_sleep(-1), -1);
    if (errno == ECANCELED)
        atomic_store(&remote_saw_cancel, 1);
    weave_shield_begin(&sh);
    ck_assert_int_eq(weave_sleep(40), 0);
    weave_shield_end(&sh);
    atomic_store(&remote_ended, 1);
    return arg;
}

/* Calls slow_fn on the scheduler arg and returns weave_call's errno; asserts
 * that the call failed only after slow_fn had ended, and left *result alone. */
static void *slow_caller(void *arg)
{
    void *res = wt_ptr(-7);
    int err;

    errno = 0;
    ck_assert_int_eq(weave_call(arg, slow_fn, NULL, &res), -1);
    err = errno;
    ck_assert_int_eq(atomic_load(&remote_ended), 1);
    ck_assert_ptr_eq(res, wt_ptr(-7));
    return wt_ptr(err);
}

static void *main_calls_itself(void *arg)
{
    weave_sched *me = weave_sched_self();
    void *res = NULL;
    weave_task *t;
    int64_t t0;

    (void)arg;
    ck_assert_int_eq(weave_call(me, own_fn, wt_ptr(4), &res), 0);
    ck_assert_int_eq(wt_int(res), 5);
    ck_assert_uint_ne(own_fn_id, weave_task_id(weave_self()));
    ck_assert(pthread_equal(own_fn_thread, pthread_self()));
    /* A caller that is cancelled cancels fn's task and waits for its end. */
    t = WT_SPAWN(slow_caller, me);
    task_await(&remote_started, 1);
    t0 = wt_now_ns();
    ck_assert_int_eq(weave_cancel(t), 0);
    ck_assert_int_eq(wt_int(WT_JOIN(t)), ECANCELED);
    ck_assert_int_ge(wt_ms_since(t0), 40);
    ck_assert_int_eq(atomic_load(&remote_saw_cancel), 1);
    WT_ASSERT_IDLE();
    return NULL;
}

/* On the scheduler's own thread, inside a task, weave_call is a spawn +
 * join: fn runs as another task on the same thread and its result comes
 * back; with the same rule when the caller is cancelled (ECANCELED only
 * after fn's task, which saw the cancel, has ended). */
START_TEST(call_on_its_own_thread_is_spawn_and_join)
{
    WT_RUN(main_calls_itself, NULL);
}
END_TEST

/* On the scheduler's own thread outside a task (the host code of a stepped
 * scheduler, between steps), weave_call is EDEADLK: fn would never run. */
START_TEST(call_outside_a_task_on_its_thread_is_edeadlk)
{
    weave_sched *s = weave_sched_new(NULL);
    void *res = wt_ptr(3);

    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(weave_sched_step(s, NULL), 0);
    WT_FAILS(weave_call(s, count_up, NULL, &res), EDEADLK);
    ck_assert_ptr_eq(res, wt_ptr(3));
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(weave_sched_step(s, NULL), 0);
    ck_assert_int_eq(atomic_load(&count), 0);
    ck_assert_int_eq(weave_sched_free(s), 0);
    ck_assert_int_eq(atomic_load(&count), 0);
}
END_TEST

static void *main_cancels_a_caller(void *arg)
{
    weave_task *t = WT_SPAWN(slow_caller, target);
    int64_t t0;

    (void)arg;
    task_await(&remote_started, 1);
    t0 = wt_now_ns();
    ck_assert_int_eq(weave_cancel(t), 0);
    ck_assert_int_eq(wt_int(WT_JOIN(t)), ECANCELED);
    ck_assert_int_ge(wt_ms_since(t0), 40); /* fn's 40 ms of cleanup */
    ck_assert_int_eq(atomic_load(&remote_saw_cancel), 1);
    return NULL;
}

/* A caller task cancelled while fn runs on another scheduler: the remote
 * task is cancelled, and weave_call returns ECANCELED only once it has
 * ended. */
START_TEST(call_cancelled_mid_call)
{
    struct runner r;

    target_up(&r);
    WT_RUN(main_cancels_a_caller, NULL);
    target_down(&r);
}
END_TEST

static void *main_times_out_a_call(void *arg)
{
    weave_deadline d;
    void *res = wt_ptr(-7);
    int64_t t0 = wt_now_ns();

    (void)arg;
    weave_deadline_begin(&d, 30);
    WT_FAILS(weave_call(target, slow_fn, NULL, &res), ETIMEDOUT);
    ck_assert_int_eq(atomic_load(&remote_ended), 1);
    ck_assert_int_ge(wt_ms_since(t0), 30 + 40);
    ck_assert_int_eq(weave_deadline_end(&d), 1);
    ck_assert_ptr_eq(res, wt_ptr(-7));
    ck_assert_int_eq(atomic_load(&remote_saw_cancel), 1);
    return NULL;
}

/* A call that a deadline scope times out: ETIMEDOUT, by the same rule (the
 * remote task saw a cancel and had ended first). */
START_TEST(call_timed_out_by_a_deadline)
{
    struct runner r;

    target_up(&r);
    WT_RUN(main_times_out_a_call, NULL);
    target_down(&r);
}
END_TEST

static void *count_call(void *arg)
{
    atomic_fetch_add(&remote_started, 1);
    ck_assert_int_eq(weave_yield(), 0);
    atomic_fetch_add(&remote_ended, 1);
    return arg;
}

static void *main_cancelled_before_calling(void *arg)
{
    weave_deadline d;

    (void)arg;
    ck_assert_int_eq(weave_cancel(weave_self()), 0);
    WT_FAILS(weave_call(target, count_call, NULL, NULL), ECANCELED);
    ck_assert_int_eq(atomic_load(&remote_started), atomic_load(&remote_ended));
    /* A deadline scope that passed already: ETIMEDOUT, in a shield (which
     * keeps the cancel out but not a scope begun inside it). */
    {
        weave_shield sh;

        weave_shield_begin(&sh);
        weave_deadline_begin(&d, 0);
        WT_FAILS(weave_call(target, count_call, NULL, NULL), ETIMEDOUT);
        ck_assert_int_eq(weave_deadline_end(&d), 1);
        ck_assert_int_eq(atomic_load(&remote_started), atomic_load(&remote_ended));
        /* And in the shield, with no scope, the call goes through. */
        ck_assert_int_eq(weave_call(target, count_call, wt_ptr(1), NULL), 0);
        weave_shield_end(&sh);
    }
    ck_assert_int_ge(atomic_load(&remote_ended), 1);
    return NULL;
}

/* weave_call is a cancellation point: a caller cancelled before the call
 * (or whose deadline has passed) fails at once, and any remote task it
 * started has ended by then. */
START_TEST(call_by_a_cancelled_caller)
{
    struct runner r;

    target_up(&r);
    WT_RUN(main_cancelled_before_calling, NULL);
    target_down(&r);
}
END_TEST

static void *main_calls_stopped(void *arg)
{
    void *res = wt_ptr(3);

    WT_FAILS(weave_call(arg, count_up, NULL, &res), ESRCH);
    ck_assert_ptr_eq(res, wt_ptr(3));
    return NULL;
}

/* A call aimed at a scheduler that has stopped: ESRCH, from a plain thread
 * and from a task, and fn never started. */
START_TEST(call_to_a_stopped_scheduler_is_esrch)
{
    weave_sched *s = weave_sched_new(NULL);
    void *res = wt_ptr(3);

    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(weave_sched_run(s, return_arg, NULL, NULL), 0);
    WT_FAILS(weave_call(s, count_up, NULL, &res), ESRCH);
    ck_assert_ptr_eq(res, wt_ptr(3));
    WT_RUN(main_calls_stopped, s);
    ck_assert_int_eq(atomic_load(&count), 0);
    ck_assert_int_eq(weave_sched_free(s), 0);
}
END_TEST

struct pending_call {
    weave_sched *s;
    int from_task; /* call from a task of a scheduler of its own */
    int rc, err;
    void *res;
};

static void *pending_call_body(void *arg)
{
    struct pending_call *pc = arg;

    pc->res = wt_ptr(3);
    errno = 0;
    pc->rc = weave_call(pc->s, count_up, NULL, &pc->res);
    pc->err = errno;
    return NULL;
}

static void *pending_call_thread(void *arg)
{
    struct pending_call *pc = arg;

    if (pc->from_task)
        WT_RUN(pending_call_body, pc);
    else
        pending_call_body(pc);
    return NULL;
}

/* A call aimed at a scheduler that stops before fn starts: the call has
 * reached it (its fd is readable) when the stepped scheduler is freed;
 * weave_call returns ESRCH and fn never starts. Both from a plain thread
 * and from a task of another scheduler. */
START_TEST(call_to_a_scheduler_that_stops_meanwhile)
{
    for (int from_task = 0; from_task <= 1; from_task++) {
        struct pending_call pc = {.from_task = from_task};
        int64_t next = 5;
        pthread_t t;

        ck_assert_ptr_nonnull(pc.s = weave_sched_new(NULL));
        ck_assert_int_eq(weave_sched_step(pc.s, &next), 0);
        ck_assert_int_eq(next, -1);
        ck_assert_int_eq(pthread_create(&t, NULL, pending_call_thread, &pc), 0);
        ck_assert_msg(readable(weave_sched_fd(pc.s), HANG_MS), "the call never arrived");
        ck_assert_int_eq(weave_sched_free(pc.s), 0);
        ck_assert_int_eq(pthread_join(t, NULL), 0);
        ck_assert_int_eq(pc.rc, -1);
        ck_assert_int_eq(pc.err, ESRCH);
        ck_assert_ptr_eq(pc.res, wt_ptr(3));
        ck_assert_int_eq(atomic_load(&count), 0);
    }
}
END_TEST

/* ---- step: a plain poll(2) loop drives the scheduler ---------------------- */

/* Step s as a poll(2) loop would, until *flag >= at_least: after each step,
 * wait on the fd for at most *next_ms (for ever if -1: then the fd must
 * become readable). Returns the last step's count. */
static int host_loop(weave_sched *s, atomic_int *flag, int at_least)
{
    int fd = weave_sched_fd(s), n;
    int64_t t0 = wt_now_ns(), next = 0;

    ck_assert_int_ge(fd, 0);
    for (;;) {
        n = weave_sched_step(s, &next);
        ck_assert_int_ge(n, 0);
        if (atomic_load(flag) >= at_least)
            return n;
        ck_assert_int_lt(wt_ms_since(t0), HANG_MS);
        if (next < 0)
            ck_assert_msg(readable(fd, HANG_MS), "next_ms -1 and the fd never became readable");
        else
            (void)readable(fd, next);
    }
}

static void *post_count_up(void *arg)
{
    ck_assert_int_eq(weave_post(arg, count_up, NULL), 0);
    return NULL;
}

/* The fd of a stepped scheduler with nothing to do is not readable; a post
 * (from another thread, or from the host itself) makes it readable, and the
 * next step runs the posted task. */
START_TEST(fd_readable_when_a_post_arrives)
{
    weave_sched *s = weave_sched_new(NULL);
    int64_t next = 5;
    pthread_t t;
    int fd;

    ck_assert_ptr_nonnull(s);
    ck_assert_int_ge(fd = weave_sched_fd(s), 0);
    ck_assert_int_eq(weave_sched_step(s, &next), 0);
    ck_assert_int_eq(next, -1);
    ck_assert_int_eq(readable(fd, 0), 0);
    ck_assert_int_eq(pthread_create(&t, NULL, post_count_up, s), 0);
    ck_assert_msg(readable(fd, HANG_MS), "a post from a thread left the fd unreadable");
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_int_eq(atomic_load(&count), 0); /* only a step runs it */
    ck_assert_int_eq(weave_sched_step(s, &next), 0);
    ck_assert_int_eq(atomic_load(&count), 1);
    ck_assert_int_eq(next, -1);
    ck_assert_int_eq(readable(fd, 0), 0);
    ck_assert_int_eq(weave_post(s, count_up, NULL), 0);
    ck_assert_msg(readable(fd, HANG_MS), "a post from the host left the fd unreadable");
    ck_assert_int_eq(weave_sched_step(s, &next), 0);
    ck_assert_int_eq(atomic_load(&count), 2);
    ck_assert_int_eq(weave_sched_fd(s), fd); /* one fd, for the loop to watch once */
    ck_assert_int_eq(weave_sched_free(s), 0);
}
END_TEST

/* The same before the first step: weave_sched_fd is "readable when a step
 * has work", and a host loop that waits on it before stepping must learn of
 * posts made to a scheduler it has not stepped yet. */
START_TEST(fd_readable_when_a_post_arrives_before_the_first_step)
{
    weave_sched *s = weave_sched_new(NULL);
    pthread_t t;
    int fd;

    ck_assert_ptr_nonnull(s);
    ck_assert_int_ge(fd = weave_sched_fd(s), 0);
    ck_assert_int_eq(readable(fd, 0), 0);
    ck_assert_int_eq(pthread_create(&t, NULL, post_count_up, s), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_msg(readable(fd, WT_PROMPT_MS),
                  "a post to a scheduler never stepped left its fd unreadable");
    ck_assert_int_eq(weave_sched_step(s, NULL), 0);
    ck_assert_int_eq(atomic_load(&count), 1);
    ck_assert_int_eq(weave_sched_free(s), 0);
}
END_TEST

static void *sleeps_50ms(void *arg)
{
    ck_assert_int_eq(weave_sleep(50), 0);
    atomic_fetch_add(&count, 1);
    return arg;
}

/* *next_ms may be NULL ("if not NULL"): a loop that watches only the fd
 * must still see it readable when a post arrives and when a task's timer
 * expires. */
START_TEST(fd_readable_when_next_ms_is_null)
{
    weave_sched *s = weave_sched_new(NULL);
    int64_t t0;
    int fd;

    ck_assert_ptr_nonnull(s);
    ck_assert_int_ge(fd = weave_sched_fd(s), 0);
    ck_assert_int_eq(weave_sched_step(s, NULL), 0);
    ck_assert_int_eq(weave_post(s, count_up, NULL), 0);
    ck_assert_msg(readable(fd, WT_PROMPT_MS), "a post left the fd unreadable (next_ms NULL)");
    ck_assert_int_eq(weave_sched_step(s, NULL), 0);
    ck_assert_int_eq(atomic_load(&count), 1);
    ck_assert_int_eq(weave_post(s, sleeps_50ms, NULL), 0);
    t0 = wt_now_ns();
    ck_assert_int_eq(weave_sched_step(s, NULL), 1);
    ck_assert_msg(readable(fd, 50 + WT_PROMPT_MS), "a timer left the fd unreadable (next_ms NULL)");
    ck_assert_int_ge(wt_ms_since(t0), 50);
    ck_assert_int_eq(weave_sched_step(s, NULL), 0);
    ck_assert_int_eq(atomic_load(&count), 2);
    ck_assert_int_eq(weave_sched_free(s), 0);
}
END_TEST

static char step_log[32];
static int step_log_len;

static void step_mark(char c)
{
    ck_assert_int_lt(step_log_len, (int)sizeof(step_log) - 1);
    step_log[step_log_len++] = c;
}

static void *yields_twice(void *arg)
{
    for (int i = 0; i < 2; i++) {
        step_mark('a');
        ck_assert_int_eq(weave_yield(), 0);
    }
    step_mark('A');
    return arg;
}

static void *parks_for_ever(void *arg)
{
    step_mark('b');
    WT_FAILS(weave_sleep(-1), ECANCELED);
    step_mark('B');
    atomic_fetch_add(&count, 1);
    return arg;
}

static void *ends_at_once(void *arg)
{
    step_mark('c');
    return arg;
}

/* A step runs every task that can run at that moment, each once, and
 * returns how many tasks are alive: a task that yields runs again at the
 * next step, not in this one, and *next_ms is 0 while one can run, -1 once
 * only a post could wake one (a task in weave_sleep(-1)). */
START_TEST(step_runs_each_runnable_task_once)
{
    weave_sched *s = weave_sched_new(NULL);
    int64_t next = 5;

    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(weave_post(s, yields_twice, NULL), 0);
    ck_assert_int_eq(weave_post(s, parks_for_ever, NULL), 0);
    ck_assert_int_eq(weave_post(s, ends_at_once, NULL), 0);
    ck_assert_int_eq(weave_sched_step(s, &next), 2);
    ck_assert_str_eq(step_log, "abc");
    ck_assert_int_eq(next, 0);
    ck_assert_int_eq(weave_sched_step(s, &next), 2);
    ck_assert_str_eq(step_log, "abca");
    ck_assert_int_eq(next, 0);
    ck_assert_int_eq(weave_sched_step(s, &next), 1);
    ck_assert_str_eq(step_log, "abcaA");
    ck_assert_int_eq(next, -1);
    ck_assert_int_eq(weave_sched_step(s, &next), 1); /* nothing to do */
    ck_assert_str_eq(step_log, "abcaA");
    ck_assert_int_eq(next, -1);
    ck_assert_int_eq(weave_sched_free(s), 0);
    ck_assert_str_eq(step_log, "abcaAB");
}
END_TEST

static void *posts_to_its_own(void *arg)
{
    ck_assert_int_eq(weave_post(weave_sched_self(), count_up, NULL), 0);
    return arg;
}

/* A task that posts to its own stepped scheduler: the post is a task that
 * can run, so *next_ms is 0 even though the step counts no task alive (the
 * post is not taken until the next step, which runs it). */
START_TEST(next_ms_zero_while_a_post_is_pending)
{
    weave_sched *s = weave_sched_new(NULL);
    int64_t next = 5;

    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(weave_post(s, posts_to_its_own, NULL), 0);
    ck_assert_int_eq(weave_sched_step(s, &next), 0);
    ck_assert_int_eq(next, 0);
    ck_assert_int_eq(atomic_load(&count), 0);
    ck_assert_int_eq(weave_sched_step(s, &next), 0);
    ck_assert_int_eq(atomic_load(&count), 1);
    ck_assert_int_eq(next, -1);
    ck_assert_int_eq(weave_sched_free(s), 0);
}
END_TEST

static int64_t sleeper_t0[2], sleeper_t1[2];
static atomic_int sleepers_done;

static void *sleeper(void *arg)
{
    int i = (int)wt_int(arg);

    sleeper_t0[i] = wt_now_ns();
    ck_assert_int_eq(weave_sleep(40 * (i + 1)), 0);
    sleeper_t1[i] = wt_now_ns();
    atomic_fetch_add(&sleepers_done, 1);
    return NULL;
}

/* With only sleeping tasks, *next_ms is the time to the earliest timer
 * (never more than the shortest sleep), and the fd becomes readable then:
 * not before that timer's deadline. A loop that waits on the fd alone
 * wakes each sleeper no sooner than it asked. */
START_TEST(next_ms_is_the_time_to_the_earliest_timer)
{
    weave_sched *s = weave_sched_new(NULL);
    int64_t next = -5, t_ready;
    int fd;

    ck_assert_ptr_nonnull(s);
    ck_assert_int_ge(fd = weave_sched_fd(s), 0);
    ck_assert_int_eq(weave_post(s, sleeper, wt_ptr(1)), 0); /* 80 ms */
    ck_assert_int_eq(weave_post(s, sleeper, wt_ptr(0)), 0); /* 40 ms */
    ck_assert_int_eq(weave_sched_step(s, &next), 2);
    ck_assert_int_ge(next, 0);
    ck_assert_int_le(next, 40);
    ck_assert_msg(readable(fd, HANG_MS), "the fd was not readable at the timer");
    t_ready = wt_now_ns();
    ck_assert_int_ge((t_ready - sleeper_t0[0]) / 1000000, 40);
    ck_assert_int_eq(weave_sched_step(s, &next), 1);
    ck_assert_int_eq(atomic_load(&sleepers_done), 1);
    ck_assert_int_ge(next, 0);
    ck_assert_int_le(next, 80);
    ck_assert_msg(readable(fd, HANG_MS), "the fd was not readable at the second timer");
    ck_assert_int_ge(wt_ms_since(sleeper_t0[1]), 80);
    ck_assert_int_eq(weave_sched_step(s, &next), 0);
    ck_assert_int_eq(atomic_load(&sleepers_done), 2);
    ck_assert_int_eq(next, -1);
    for (int i = 0; i < 2; i++)
        ck_assert_int_ge((sleeper_t1[i] - sleeper_t0[i]) / 1000000, 40 * (i + 1));
    ck_assert_int_le(sleeper_t1[0], sleeper_t1[1]);
    ck_assert_int_eq(weave_sched_free(s), 0);
}
END_TEST

static int step_pipe[2];

static void *reads_the_pipe(void *arg)
{
    char buf[8] = {0};

    ck_assert_int_eq(weave_read(step_pipe[0], buf, sizeof(buf)), 4);
    ck_assert_str_eq(buf, "ping");
    atomic_fetch_add(&count, 1);
    return arg;
}

/* A task waiting on an fd, and nothing else: *next_ms is -1 and the fd of s
 * stays unreadable until the task's fd is ready; then it is readable and a
 * step runs the task. */
START_TEST(next_ms_minus_one_until_an_fd_is_ready)
{
    weave_sched *s = weave_sched_new(NULL);
    int64_t next = 5;
    int fd;

    ck_assert_ptr_nonnull(s);
    wt_make_pipe(step_pipe, O_NONBLOCK);
    ck_assert_int_ge(fd = weave_sched_fd(s), 0);
    ck_assert_int_eq(weave_post(s, reads_the_pipe, NULL), 0);
    ck_assert_int_eq(weave_sched_step(s, &next), 1);
    ck_assert_int_eq(next, -1);
    ck_assert_int_eq(readable(fd, 20), 0);
    ck_assert_int_eq(weave_sched_step(s, &next), 1); /* a spurious step is harmless */
    ck_assert_int_eq(atomic_load(&count), 0);
    ck_assert_int_eq(write(step_pipe[1], "ping", 4), 4);
    ck_assert_msg(readable(fd, HANG_MS), "the task's fd is ready; s's fd is not readable");
    ck_assert_int_eq(weave_sched_step(s, &next), 0);
    ck_assert_int_eq(atomic_load(&count), 1);
    ck_assert_int_eq(next, -1);
    ck_assert_int_eq(weave_sched_free(s), 0);
    close(step_pipe[0]);
    close(step_pipe[1]);
}
END_TEST

static atomic_int posted_and_ran;

static void *quick_post(void *arg)
{
    atomic_fetch_add(&posted_and_ran, 1);
    return arg;
}

/* A step that returns 0 (no task alive) does not stop the scheduler: a
 * later post makes it live again, time after time, and the count goes up
 * and down again. */
START_TEST(step_returning_zero_does_not_stop_it)
{
    weave_sched *s = weave_sched_new(NULL);
    int64_t next = 5;

    ck_assert_ptr_nonnull(s);
    for (int i = 1; i <= 5; i++) {
        ck_assert_int_eq(weave_sched_step(s, &next), 0);
        ck_assert_int_eq(next, -1);
        ck_assert_int_eq(weave_post(s, quick_post, NULL), 0);
        ck_assert_int_eq(host_loop(s, &posted_and_ran, i), 0);
    }
    ck_assert_int_eq(weave_post(s, parks_for_ever, NULL), 0);
    ck_assert_int_eq(weave_sched_step(s, &next), 1); /* live again */
    ck_assert_int_eq(weave_sched_free(s), 0);
    ck_assert_int_eq(atomic_load(&count), 1);
}
END_TEST

static void *waits_on_the_pipe_until_cancelled(void *arg)
{
    char c;

    WT_FAILS(weave_read(step_pipe[0], &c, 1), ECANCELED);
    return leftover(arg);
}

static void *sleeps_long_until_cancelled(void *arg)
{
    WT_FAILS(weave_sleep(100000), ECANCELED);
    return leftover(arg);
}

/* weave_sched_free of a stepped scheduler with tasks still alive (waiting
 * for ever, on an fd, on a long timer) and a post that no step took yet:
 * on the stepping thread, every one is cancelled (the post starts so) and
 * runs to its end, releasing its arg; then the thread is unbound. */
START_TEST(free_ends_a_stepped_schedulers_tasks)
{
    weave_sched *s = weave_sched_new(NULL);
    weave_fn fns[3] = {leftover, waits_on_the_pipe_until_cancelled, sleeps_long_until_cancelled};

    ck_assert_ptr_nonnull(s);
    wt_make_pipe(step_pipe, O_NONBLOCK);
    for (int i = 0; i < 3; i++) {
        int *id = malloc(sizeof(*id));

        ck_assert_ptr_nonnull(id);
        *id = i;
        ck_assert_int_eq(weave_post(s, fns[i], id), 0);
    }
    ck_assert_int_eq(weave_sched_step(s, NULL), 3);
    ck_assert_int_eq(weave_sched_step(s, NULL), 3);
    {
        int *id = malloc(sizeof(*id));

        ck_assert_ptr_nonnull(id);
        *id = 3;
        ck_assert_int_eq(weave_post(s, leftover, id), 0); /* never stepped */
    }
    ck_assert_int_eq(weave_sched_free(s), 0);
    ck_assert_int_eq(atomic_load(&left.ran), 4);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(left.sleep_err[i], ECANCELED);
        ck_assert(pthread_equal(left.thread[i], pthread_self()));
    }
    ck_assert_int_eq(left.cancelled[0], 0); /* started before the free */
    ck_assert_int_eq(left.cancelled[3], 1); /* started by the free: cancelled */
    WT_FAILS_NULL(weave_sched_self(), EPERM);
    close(step_pipe[0]);
    close(step_pipe[1]);
}
END_TEST

struct stepper {
    weave_sched *s;
    int step_err, run_err, free_err;
};

static void *step_from_here(void *arg)
{
    struct stepper *st = arg;

    errno = 0;
    ck_assert_int_eq(weave_sched_step(st->s, NULL), -1);
    st->step_err = errno;
    errno = 0;
    ck_assert_int_eq(weave_sched_run(st->s, count_up, NULL, NULL), -1);
    st->run_err = errno;
    errno = 0;
    ck_assert_int_eq(weave_sched_free(st->s), -1);
    st->free_err = errno;
    return NULL;
}

/* The first step binds the scheduler to the stepping thread until free:
 * from another thread a step, a run and a free are EBUSY. */
START_TEST(step_from_another_thread_is_ebusy)
{
    struct stepper st = {0};
    pthread_t t;

    ck_assert_ptr_nonnull(st.s = weave_sched_new(NULL));
    ck_assert_int_eq(weave_post(st.s, parks_for_ever, NULL), 0);
    ck_assert_int_eq(weave_sched_step(st.s, NULL), 1);
    ck_assert_int_eq(pthread_create(&t, NULL, step_from_here, &st), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_int_eq(st.step_err, EBUSY);
    ck_assert_int_eq(st.run_err, EBUSY);
    ck_assert_int_eq(st.free_err, EBUSY);
    ck_assert_int_eq(weave_sched_step(st.s, NULL), 1); /* still ours */
    ck_assert_int_eq(weave_sched_free(st.s), 0);
    ck_assert_int_eq(atomic_load(&count), 1);
}
END_TEST

/* A step of a scheduler that runs (on another thread) is EBUSY. */
START_TEST(step_of_a_running_scheduler_is_ebusy)
{
    weave_sched *s = weave_sched_new(NULL);
    int64_t next = 5;
    struct runner r;

    ck_assert_ptr_nonnull(s);
    runner_start(&r, s, hold_until_released, NULL);
    thread_await(&started, 1);
    WT_FAILS(weave_sched_step(s, &next), EBUSY);
    atomic_store(&release_main, 1);
    runner_join(&r);
    WT_FAILS(weave_sched_step(s, &next), EINVAL); /* done */
    ck_assert_int_eq(weave_sched_free(s), 0);
}
END_TEST

static void *steps_its_own(void *arg)
{
    weave_sched *s = arg;

    ck_assert_ptr_eq(weave_sched_self(), s);
    WT_FAILS(weave_sched_step(s, NULL), EBUSY);
    WT_FAILS(weave_sched_run(s, count_up, NULL, NULL), EBUSY);
    WT_FAILS(weave_sched_free(s), EBUSY);
    WT_FAILS(weave_sched_step(other, NULL), EBUSY); /* this thread runs one */
    atomic_fetch_add(&count, 1);
    return NULL;
}

/* From one of a stepped scheduler's tasks, stepping, running or freeing it
 * is EBUSY, and so is stepping another scheduler; between steps, on the
 * stepping thread, weave_run, weave_run_threads, running another scheduler
 * and stepping another are EBUSY too (this thread has a scheduler). */
START_TEST(step_from_a_task_or_between_steps_is_ebusy)
{
    weave_sched *s = weave_sched_new(NULL);

    ck_assert_ptr_nonnull(s);
    ck_assert_ptr_nonnull(other = weave_sched_new(NULL));
    ck_assert_int_eq(weave_post(s, steps_its_own, s), 0);
    ck_assert_int_eq(weave_sched_step(s, NULL), 0);
    ck_assert_int_eq(atomic_load(&count), 1);
    WT_FAILS(weave_run(count_up, NULL, NULL), EBUSY);
    WT_FAILS(weave_run_threads(2, NULL, indexed_count, NULL), EBUSY);
    WT_FAILS(weave_sched_run(other, count_up, NULL, NULL), EBUSY);
    WT_FAILS(weave_sched_step(other, NULL), EBUSY);
    ck_assert_int_eq(atomic_load(&count), 1);
    ck_assert_int_eq(weave_sched_free(s), 0);
    /* Unbound now: the other one may run here. */
    ck_assert_int_eq(weave_sched_run(other, count_up, NULL, NULL), 0);
    ck_assert_int_eq(atomic_load(&count), 2);
    ck_assert_int_eq(weave_sched_free(other), 0);
}
END_TEST

static void *self_in_task(void *arg)
{
    seen[0] = weave_sched_self();
    return arg;
}

/* The first step binds the stepping thread until weave_sched_free: before
 * it, weave_sched_self is NULL (EPERM) and SIGPIPE is as the thread had it;
 * from it on, weave_sched_self is s, in its tasks and between steps, and
 * SIGPIPE is blocked; after the free, both are as before. */
START_TEST(step_binds_the_thread_until_free)
{
    weave_sched *s = weave_sched_new(NULL);

    ck_assert_ptr_nonnull(s);
    ck_assert(!sigpipe_blocked());
    WT_FAILS_NULL(weave_sched_self(), EPERM);
    ck_assert_int_eq(weave_post(s, self_in_task, NULL), 0);
    ck_assert_int_eq(weave_sched_step(s, NULL), 0);
    ck_assert_ptr_eq(seen[0], s);
    ck_assert_ptr_eq(weave_sched_self(), s);
    ck_assert(sigpipe_blocked());
    ck_assert_int_eq(weave_sched_step(s, NULL), 0);
    ck_assert_ptr_eq(weave_sched_self(), s);
    ck_assert(sigpipe_blocked());
    ck_assert_int_eq(weave_sched_free(s), 0);
    WT_FAILS_NULL(weave_sched_self(), EPERM);
    ck_assert(!sigpipe_blocked());
}
END_TEST

static atomic_int stepped_call_done;

static void *calls_into_stepped(void *arg)
{
    void *res = NULL;

    ck_assert_int_eq(weave_call(target, double_it, wt_ptr(8), &res), 0);
    ck_assert_int_eq(wt_int(res), 16);
    atomic_store(&stepped_call_done, 1);
    /* The host loop waits on the fd: wake it to see the flag. */
    ck_assert_int_eq(weave_post(target, count_up, NULL), 0);
    return arg;
}

/* Tasks enter a stepped scheduler through weave_call too: a plain thread's
 * call runs on the stepping thread, driven by a loop that only watches the
 * fd and *next_ms (fn sleeps 30 ms), and its result comes back. */
START_TEST(call_into_a_stepped_scheduler)
{
    int64_t next = 5;
    pthread_t t;

    ck_assert_ptr_nonnull(target = weave_sched_new(NULL));
    target_thread = pthread_self();
    ck_assert_int_eq(weave_sched_step(target, &next), 0);
    ck_assert_int_eq(pthread_create(&t, NULL, calls_into_stepped, NULL), 0);
    ck_assert_int_ge(host_loop(target, &stepped_call_done, 1), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_int_eq(weave_sched_free(target), 0);
}
END_TEST

static atomic_int stepped_caller_done;

static void *stepped_caller(void *arg)
{
    void *res = NULL;

    ck_assert_int_eq(weave_call(target, double_it, wt_ptr(3), &res), 0);
    ck_assert_int_eq(wt_int(res), 6);
    atomic_store(&stepped_caller_done, 1);
    return arg;
}

/* A task of a stepped scheduler calls a scheduler running on another
 * thread: the answer wakes the stepping loop through the fd, and the next
 * step gives the task its result. */
START_TEST(call_from_a_stepped_schedulers_task)
{
    weave_sched *s = weave_sched_new(NULL);
    int64_t next = 5;
    struct runner r;

    ck_assert_ptr_nonnull(s);
    target_up(&r);
    ck_assert_int_eq(weave_post(s, stepped_caller, NULL), 0);
    ck_assert_int_eq(weave_sched_step(s, &next), 1);
    ck_assert_int_eq(next, -1); /* only the answer can wake it */
    ck_assert_int_eq(host_loop(s, &stepped_caller_done, 1), 0);
    ck_assert_int_eq(weave_sched_free(s), 0);
    target_down(&r);
}
END_TEST

/* ---- threads: a scheduler per core ---------------------------------------- */

static struct {
    atomic_int calls[WEAVE_THREADS_MAX];
    atomic_int done[WEAVE_THREADS_MAX];
    pthread_t thread[WEAVE_THREADS_MAX];
    weave_sched *sched[WEAVE_THREADS_MAX];
    unsigned n;
} rt;

static void *rt_main(unsigned index, void *arg)
{
    const weave_run_opts *opts = arg;

    ck_assert_uint_lt(index, rt.n);
    if (opts) { /* every scheduler has the options */
        weave_task_info info;

        ck_assert_int_eq(weave_tasks(&info, 1), 1);
        ck_assert_uint_eq(info.stack_size, opts->default_stack_size);
    }
    atomic_fetch_add(&rt.calls[index], 1);
    rt.thread[index] = pthread_self();
    rt.sched[index] = weave_sched_self();
    ck_assert_int_eq(weave_sleep((int64_t)(index % 4) * 10), 0);
    atomic_store(&rt.done[index], 1);
    return arg;
}

static void assert_rt_ran(unsigned n)
{
    ck_assert(pthread_equal(rt.thread[0], pthread_self())); /* the caller runs the first */
    for (unsigned i = 0; i < n; i++) {
        ck_assert_int_eq(atomic_load(&rt.calls[i]), 1);
        ck_assert_int_eq(atomic_load(&rt.done[i]), 1);
        ck_assert_ptr_nonnull(rt.sched[i]);
        for (unsigned j = 0; j < i; j++) {
            ck_assert(!pthread_equal(rt.thread[i], rt.thread[j]));
            ck_assert_ptr_ne(rt.sched[i], rt.sched[j]);
        }
    }
    WT_FAILS_NULL(weave_sched_self(), EPERM);
}

/* weave_run_threads(4): four schedulers, each on a thread of its own (the
 * calling thread runs the first) and with the options given, each running
 * main(index, arg) with a distinct index 0..3, once; it returns 0 after
 * every main has returned. */
START_TEST(run_threads_gives_each_an_index)
{
    const weave_run_opts opts = {.default_stack_size = 64 * 1024};

    rt.n = 4;
    ck_assert_int_eq(weave_run_threads(4, &opts, rt_main, (void *)&opts), 0);
    assert_rt_ran(4);
}
END_TEST

/* weave_run_threads(0): one scheduler per online CPU. */
START_TEST(run_threads_zero_is_one_per_cpu)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);

    ck_assert_int_ge(cpus, 1);
    ck_assert_int_le(cpus, WEAVE_THREADS_MAX);
    rt.n = (unsigned)cpus;
    ck_assert_int_eq(weave_run_threads(0, NULL, rt_main, NULL), 0);
    assert_rt_ran((unsigned)cpus);
}
END_TEST

static void *main_runs_threads(void *arg)
{
    WT_FAILS(weave_run_threads(2, NULL, indexed_count, NULL), EBUSY);
    return arg;
}

static void *fails_at_one(unsigned index, void *arg)
{
    weave_event ev;

    (void)arg;
    atomic_fetch_add(&rt.calls[index], 1);
    if (index == 1) { /* every task of its scheduler waits on another */
        ck_assert_int_eq(weave_event_init(&ev), 0);
        WT_FAILS(weave_event_wait(&ev), ECANCELED);
    } else {
        ck_assert_int_eq(weave_sleep(10), 0);
    }
    return NULL;
}

/* weave_run_threads: EINVAL for a NULL main, more than WEAVE_THREADS_MAX
 * schedulers or bad options (no main runs); EBUSY from a task; -1 with the
 * errno of a member that failed (EDEADLK) while the others returned 0. */
START_TEST(run_threads_errors)
{
    const weave_run_opts bad = {.flags = 1u << 30};
    const weave_run_opts quiet = {.flags = WEAVE_NO_DEADLOCK_DUMP};

    rt.n = 4;
    WT_FAILS(weave_run_threads(2, NULL, NULL, NULL), EINVAL);
    WT_FAILS(weave_run_threads(WEAVE_THREADS_MAX + 1, NULL, rt_main, NULL), EINVAL);
    WT_FAILS(weave_run_threads(2, &bad, rt_main, NULL), EINVAL);
    for (unsigned i = 0; i < rt.n; i++)
        ck_assert_int_eq(atomic_load(&rt.calls[i]), 0);
    WT_RUN(main_runs_threads, NULL);
    ck_assert_int_eq(atomic_load(&count), 0);
    WT_FAILS(weave_run_threads(3, &quiet, fails_at_one, NULL), EDEADLK);
    for (unsigned i = 0; i < 3; i++)
        ck_assert_int_eq(atomic_load(&rt.calls[i]), 1);
}
END_TEST

static struct {
    unsigned n;
    atomic_int ready;
    int caught[4];
    atomic_int saw_cancel[4];
    atomic_int cleaned[4];
} stop;

static void *stop_main(unsigned index, void *arg)
{
    weave_shield sh;

    ck_assert_int_eq(weave_cancel_on_signals(&stop.caught[index]), 0);
    atomic_fetch_add(&stop.ready, 1);
    if (index == 0) {
        /* Once every main has its stop, a process-directed Ctrl-C. */
        task_await(&stop.ready, (int)stop.n);
        ck_assert_int_eq(kill(getpid(), SIGINT), 0);
    }
    WT_FAILS(weave_sleep(-1), ECANCELED);
    atomic_store(&stop.saw_cancel[index], 1);
    weave_shield_begin(&sh);
    ck_assert_int_eq(weave_sleep(10), 0); /* cleanup may still wait */
    weave_shield_end(&sh);
    WT_FAILS(weave_sleep(1), ECANCELED);
    atomic_store(&stop.cleaned[index], 1);
    return arg;
}

/* One SIGINT to the process, once every main called
 * weave_cancel_on_signals, stops every scheduler: each main is cancelled,
 * cleans up in a shield, and weave_run_threads returns -1 with EINTR. */
START_TEST(sigint_stops_every_scheduler)
{
    /* As in a program of its own: Check's fork child keeps its runner's
     * handler, which would take the signal for the whole process group. */
    signal(SIGINT, SIG_DFL);
    stop.n = 3;
    WT_FAILS(weave_run_threads(stop.n, NULL, stop_main, NULL), EINTR);
    for (unsigned i = 0; i < stop.n; i++) {
        ck_assert_int_eq(atomic_load(&stop.saw_cancel[i]), 1);
        ck_assert_int_eq(atomic_load(&stop.cleaned[i]), 1);
        ck_assert_int_eq(stop.caught[i], SIGINT);
    }
}
END_TEST

static int marks_fd = -1;

static void mark_to_parent(char c)
{
    ck_assert_int_eq(write(marks_fd, &c, 1), 1);
}

/* A main whose cleanup never ends. */
static void *stubborn_main(unsigned index, void *arg)
{
    weave_shield sh;

    ck_assert_int_eq(weave_cancel_on_signals(NULL), 0);
    atomic_fetch_add(&stop.ready, 1);
    if (index == 0) {
        task_await(&stop.ready, 2);
        mark_to_parent('r');
    }
    WT_FAILS(weave_sleep(-1), ECANCELED);
    mark_to_parent('s');
    weave_shield_begin(&sh);
    (void)weave_sleep(-1);
    weave_shield_end(&sh);
    return arg;
}

static char next_mark(int fd)
{
    char c = 0;

    ck_assert_int_eq(read(fd, &c, 1), 1);
    return c;
}

/* While every main is still cleaning up after the first SIGINT, a second
 * one ends the process, by SIGINT (in a child of its own). */
START_TEST(second_sigint_ends_the_process)
{
    int marks[2], status;
    pid_t pid;

    ck_assert_int_eq(pipe2(marks, O_CLOEXEC), 0);
    fflush(NULL);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(marks[0]);
        marks_fd = marks[1];
        signal(SIGINT, SIG_DFL);
        (void)weave_run_threads(2, NULL, stubborn_main, NULL);
        _exit(1); /* not reached: the second SIGINT ends it */
    }
    close(marks[1]);
    ck_assert_int_eq(next_mark(marks[0]), 'r');
    ck_assert_int_eq(kill(pid, SIGINT), 0);
    ck_assert_int_eq(next_mark(marks[0]), 's');
    ck_assert_int_eq(next_mark(marks[0]), 's'); /* both are cleaning up */
    ck_assert_int_eq(kill(pid, SIGINT), 0);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGINT, "status %#x", status);
    close(marks[0]);
}
END_TEST

#define RP_CONNECTS 16

static struct {
    const char *host;
    atomic_int port;
    atomic_int listening;
    atomic_int accepted;
    atomic_int per[2];
} rp;

static void *acceptor(void *arg)
{
    int l = (int)wt_int(arg), index = wt_int(arg) >> 16 ? 1 : 0;

    l &= 0xffff;
    for (;;) {
        int c = weave_accept(l, NULL, NULL);

        if (c < 0) {
            ck_assert_int_eq(errno, ECANCELED);
            break;
        }
        atomic_fetch_add(&rp.per[index], 1);
        atomic_fetch_add(&rp.accepted, 1);
        ck_assert_int_eq(weave_close(c), 0);
    }
    return NULL;
}

static void *rp_main(unsigned index, void *arg)
{
    char port[16];
    weave_task *acc;
    int l;

    (void)arg;
    if (index == 0) {
        l = weave_tcp_listen_with(rp.host, "0", 16, WEAVE_LISTEN_REUSEPORT);
        ck_assert_int_ge(l, 0);
        atomic_store(&rp.port, (int)wt_port_of(l));
    } else {
        task_await(&rp.port, 1);
        snprintf(port, sizeof(port), "%d", atomic_load(&rp.port));
        /* Without the flag, the port is taken. */
        WT_FAILS(weave_tcp_listen_with(rp.host, port, 16, 0), EADDRINUSE);
        l = weave_tcp_listen_with(rp.host, port, 16, WEAVE_LISTEN_REUSEPORT);
        ck_assert_int_ge(l, 0);
        ck_assert_int_eq((int)wt_port_of(l), atomic_load(&rp.port));
    }
    ck_assert_int_lt(l, 0x10000);
    acc = WT_SPAWN(acceptor, wt_ptr(l | (index ? 0x10000 : 0)));
    atomic_fetch_add(&rp.listening, 1);
    if (index == 0) {
        task_await(&rp.listening, 2);
        snprintf(port, sizeof(port), "%d", atomic_load(&rp.port));
        for (int k = 0; k < RP_CONNECTS; k++) {
            int c = weave_tcp_connect("127.0.0.1", port, WT_PROMPT_MS);

            ck_assert_int_ge(c, 0);
            ck_assert_int_eq(weave_close(c), 0);
        }
    }
    task_await(&rp.accepted, RP_CONNECTS);
    ck_assert_int_eq(weave_cancel(acc), 0);
    WT_JOIN(acc);
    ck_assert_int_eq(weave_close(l), 0);
    return NULL;
}

/* WEAVE_LISTEN_REUSEPORT: two schedulers of weave_run_threads listen on one
 * port (the second learns it from the first socket), on 127.0.0.1 and on
 * every address (host NULL); every connection is accepted by one of them.
 * Without the flag the second listen is EADDRINUSE; other flags are EINVAL. */
START_TEST(reuseport_lets_two_schedulers_listen)
{
    static const char *hosts[2] = {"127.0.0.1", NULL};

    WT_FAILS(weave_tcp_listen_with("127.0.0.1", "0", 16, 1u << 1), EINVAL);
    WT_FAILS(weave_tcp_listen_with(NULL, "0", 16, 1u << 31), EINVAL);
    for (int h = 0; h < 2; h++) {
        memset(&rp, 0, sizeof(rp));
        rp.host = hosts[h];
        ck_assert_int_eq(weave_run_threads(2, NULL, rp_main, NULL), 0);
        ck_assert_int_eq(atomic_load(&rp.accepted), RP_CONNECTS);
        ck_assert_int_eq(atomic_load(&rp.per[0]) + atomic_load(&rp.per[1]), RP_CONNECTS);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("xthread");
    TCase *tc;

    tc = tcase_create("sched");
    wt_tag_native(tc); /* threads */
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, runs_once);
    tcase_add_test(tc, bad_arguments);
    tcase_add_test(tc, run_is_busy_inside_a_scheduler);
    tcase_add_test(tc, run_is_busy_while_running_elsewhere);
    tcase_add_test(tc, free_is_busy_from_its_tasks);
    tcase_add_test(tc, free_runs_unstarted_posts_cancelled);
    tcase_add_test(tc, free_from_a_task_uses_a_thread_of_its_own);
    tcase_add_test(tc, self_names_the_running_scheduler);
    tcase_add_test(tc, weave_run_unchanged_and_deadlocks);
    suite_add_tcase(s, tc);

    tc = tcase_create("post");
    wt_tag_native(tc);
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, post_from_a_plain_thread);
    tcase_add_test(tc, posts_before_start_wait_for_it);
    tcase_add_test(tc, posts_from_its_own_tasks);
    tcase_add_test(tc, posts_from_another_schedulers_task);
    tcase_add_test(tc, post_to_a_stopped_scheduler_is_esrch);
    tcase_add_test(tc, post_during_shutdown_starts_cancelled);
    tcase_add_test(tc, posts_keep_each_threads_order);
    suite_add_tcase(s, tc);

    tc = tcase_create("flood");
    wt_tag_native(tc);
    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, four_threads_flood_one_scheduler);
    tcase_add_test(tc, posts_and_calls_race_the_stop);
    suite_add_tcase(s, tc);

    tc = tcase_create("call");
    wt_tag_native(tc);
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, call_from_a_plain_thread_blocks);
    tcase_add_test(tc, call_before_start_waits_for_the_run);
    tcase_add_test(tc, call_from_a_task_only_the_task_waits);
    tcase_add_test(tc, call_on_its_own_thread_is_spawn_and_join);
    tcase_add_test(tc, call_outside_a_task_on_its_thread_is_edeadlk);
    tcase_add_test(tc, call_cancelled_mid_call);
    tcase_add_test(tc, call_timed_out_by_a_deadline);
    tcase_add_test(tc, call_by_a_cancelled_caller);
    tcase_add_test(tc, call_to_a_stopped_scheduler_is_esrch);
    tcase_add_test(tc, call_to_a_scheduler_that_stops_meanwhile);
    suite_add_tcase(s, tc);

    tc = tcase_create("step");
    wt_tag_native(tc);
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, fd_readable_when_a_post_arrives);
    tcase_add_test(tc, fd_readable_when_a_post_arrives_before_the_first_step);
    tcase_add_test(tc, fd_readable_when_next_ms_is_null);
    tcase_add_test(tc, step_runs_each_runnable_task_once);
    tcase_add_test(tc, next_ms_is_the_time_to_the_earliest_timer);
    tcase_add_test(tc, next_ms_minus_one_until_an_fd_is_ready);
    tcase_add_test(tc, step_returning_zero_does_not_stop_it);
    tcase_add_test(tc, free_ends_a_stepped_schedulers_tasks);
    tcase_add_test(tc, step_from_another_thread_is_ebusy);
    tcase_add_test(tc, step_of_a_running_scheduler_is_ebusy);
    tcase_add_test(tc, step_from_a_task_or_between_steps_is_ebusy);
    tcase_add_test(tc, step_binds_the_thread_until_free);
    tcase_add_test(tc, call_into_a_stepped_scheduler);
    tcase_add_test(tc, call_from_a_stepped_schedulers_task);
    tcase_add_test(tc, next_ms_zero_while_a_post_is_pending);
    suite_add_tcase(s, tc);

    tc = tcase_create("threads");
    wt_tag_native(tc);
    tcase_set_timeout(tc, 15);
    tcase_add_test(tc, run_threads_gives_each_an_index);
    tcase_add_test(tc, run_threads_zero_is_one_per_cpu);
    tcase_add_test(tc, run_threads_errors);
    tcase_add_test(tc, sigint_stops_every_scheduler);
    tcase_add_test(tc, second_sigint_ends_the_process);
    tcase_add_test(tc, reuseport_lets_two_schedulers_listen);
    suite_add_tcase(s, tc);

    return wt_main(s);
}
