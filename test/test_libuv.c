/*
 * test_libuv.c - weave embedded in libuv's loop (weave.h, "Schedulers,
 * threads and embedding": weave_sched_fd and weave_sched_step).
 *
 * The host is what a libuv program would write: a uv_poll on
 * weave_sched_fd(s) for reading and a uv_timer for *next_ms, each of which
 * calls weave_sched_step; the loop never steps otherwise. Tasks enter s by
 * weave_post (from libuv callbacks and another thread) and weave_call, and
 * they sleep and read sockets while libuv runs its own handles:
 *
 *   sleepers     tasks that sleep wake no earlier than asked, in deadline
 *                order, with the loop sleeping in between (few steps)
 *   sockets      tasks read socketpairs written by a libuv timer callback
 *                and by another thread, and answer back to a uv_poll
 *   posts        posts from a uv_timer and a uv_async callback (the async
 *                sent from another thread), a post and a weave_call from
 *                that thread; weave_call from a libuv callback, on s's own
 *                thread outside a task, is EDEADLK
 *
 * Times are asserted as lower bounds; upper bounds only catch hangs.
 *
 * Check timeouts: "libuv" 10 s x 3 = 30 s; the CTest timeout in
 * CMakeLists.txt (60 s) is above their sum.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "weave_test.h"

/* A bound on the whole loop: only catches hangs. */
#define HANG_MS (10 * WT_PROMPT_MS)

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};

    nanosleep(&ts, NULL);
}

/* ---- the host: s driven from libuv's loop -------------------------------- */

struct host {
    uv_loop_t loop;
    uv_poll_t poll;   /* weave_sched_fd(s), readable */
    uv_timer_t timer; /* *next_ms of the last step */
    uv_timer_t guard; /* fails the test if the loop hangs */
    weave_sched *s;
    int (*done)(void); /* the test's work is over: close the loop */
    int steps;         /* weave_sched_step calls */
    int last;          /* the last step's count of live tasks */
    int closing;
};

static struct host host;
static pthread_t loop_thread;

static void on_timer(uv_timer_t *t);

static void host_close(struct host *h)
{
    if (h->closing)
        return;
    h->closing = 1;
    uv_close((uv_handle_t *)&h->poll, NULL);
    uv_close((uv_handle_t *)&h->timer, NULL);
    uv_close((uv_handle_t *)&h->guard, NULL);
}

/* One step, then arm the timer for *next_ms (or stop it: -1). */
static void drive(struct host *h)
{
    int64_t next = -2;

    if (h->closing)
        return;
    h->last = weave_sched_step(h->s, &next);
    ck_assert_msg(h->last >= 0, "weave_sched_step: errno %d", errno);
    ck_assert_int_ge(next, -1);
    h->steps++;
    if (h->done()) {
        host_close(h);
        return;
    }
    if (next < 0)
        ck_assert_int_eq(uv_timer_stop(&h->timer), 0);
    else
        ck_assert_int_eq(uv_timer_start(&h->timer, on_timer, (uint64_t)next, 0), 0);
}

static void on_timer(uv_timer_t *t)
{
    drive(t->data);
}

static void on_readable(uv_poll_t *p, int status, int events)
{
    ck_assert_int_eq(status, 0);
    ck_assert(events & UV_READABLE);
    drive(p->data);
}

static void on_hang(uv_timer_t *t)
{
    (void)t;
    ck_abort_msg("the libuv loop ran %d ms without finishing", (int)HANG_MS);
}

/* Make s and the loop's handles; tasks may be posted before host_run. */
static void host_init(int (*done)(void))
{
    memset(&host, 0, sizeof(host));
    host.done = done;
    loop_thread = pthread_self();
    ck_assert_ptr_nonnull(host.s = weave_sched_new(NULL));
    ck_assert_int_eq(uv_loop_init(&host.loop), 0);
    ck_assert_int_eq(uv_poll_init(&host.loop, &host.poll, weave_sched_fd(host.s)), 0);
    ck_assert_int_eq(uv_timer_init(&host.loop, &host.timer), 0);
    ck_assert_int_eq(uv_timer_init(&host.loop, &host.guard), 0);
    host.poll.data = &host;
    host.timer.data = &host;
}

/* Run the loop until done() and every handle has closed; then free s. */
static void host_run(void)
{
    ck_assert_int_eq(uv_poll_start(&host.poll, UV_READABLE, on_readable), 0);
    ck_assert_int_eq(uv_timer_start(&host.guard, on_hang, (uint64_t)HANG_MS, 0), 0);
    uv_unref((uv_handle_t *)&host.guard);
    /* The first step at once: it binds s to this thread and runs what was
     * posted before the loop started. */
    ck_assert_int_eq(uv_timer_start(&host.timer, on_timer, 0, 0), 0);
    ck_assert_int_eq(uv_run(&host.loop, UV_RUN_DEFAULT), 0);
    ck_assert_int_eq(host.closing, 1);
    ck_assert_int_eq(uv_loop_close(&host.loop), 0);
    ck_assert_int_eq(weave_sched_free(host.s), 0);
}

/* A posted task checks that it runs on the loop's thread, in s. */
static void assert_in_host(void)
{
    ck_assert(pthread_equal(pthread_self(), loop_thread));
    ck_assert_ptr_eq(weave_sched_self(), host.s);
}

/* ---- sleepers ------------------------------------------------------------ */

#define NSLEEPERS 3
static const int64_t sleep_ms[NSLEEPERS] = {30, 10, 20};
static int64_t slept_t0[NSLEEPERS], slept_t1[NSLEEPERS];
static int wake_order[NSLEEPERS];
static int woken;
static long ticks; /* a libuv timer's, meanwhile */

static void *sleeper(void *arg)
{
    int i = (int)wt_int(arg);

    assert_in_host();
    slept_t0[i] = wt_now_ns();
    ck_assert_int_eq(weave_sleep(sleep_ms[i]), 0);
    slept_t1[i] = wt_now_ns();
    wake_order[woken++] = i;
    return NULL;
}

static int sleepers_done(void)
{
    return woken == NSLEEPERS && host.last == 0;
}

static void on_tick(uv_timer_t *t)
{
    ticks++;
    if (host.closing)
        uv_close((uv_handle_t *)t, NULL);
}

/* Tasks sleeping in a scheduler that libuv drives wake no earlier than they
 * asked, in deadline order, while libuv's own timer keeps ticking; the loop
 * steps only when the fd or *next_ms says so, so it sleeps in between: a
 * few steps, not a spin. */
START_TEST(sleepers_in_a_libuv_loop)
{
    uv_timer_t tick;

    host_init(sleepers_done);
    for (int i = 0; i < NSLEEPERS; i++)
        ck_assert_int_eq(weave_post(host.s, sleeper, wt_ptr(i)), 0);
    ck_assert_int_eq(uv_timer_init(&host.loop, &tick), 0);
    ck_assert_int_eq(uv_timer_start(&tick, on_tick, 2, 2), 0);
    host_run();
    ck_assert_int_eq(woken, NSLEEPERS);
    for (int i = 0; i < NSLEEPERS; i++)
        ck_assert_int_ge((slept_t1[i] - slept_t0[i]) / 1000000, sleep_ms[i]);
    ck_assert_int_eq(wake_order[0], 1); /* 10 ms */
    ck_assert_int_eq(wake_order[1], 2); /* 20 ms */
    ck_assert_int_eq(wake_order[2], 0); /* 30 ms */
    ck_assert_int_ge(ticks, 1);
    ck_assert_int_lt(host.steps, 200);
}
END_TEST

/* ---- sockets --------------------------------------------------------------- */

static int pair_cb[2];          /* written by a libuv timer callback */
static int pair_thread[2];      /* written by another thread */
static atomic_llong ping_at[2]; /* when each "ping" was written (ns) */
static atomic_int answers;      /* "pong"s read back by libuv */
static int readers_ended;

/* Reads "ping" from its end of pair i: the read returns only once it has
 * been written; answers "pong". */
static void *pinged(void *arg)
{
    int i = (int)wt_int(arg), fd = i == 0 ? pair_cb[0] : pair_thread[0];
    char buf[8] = {0};

    assert_in_host();
    ck_assert_int_eq(weave_read(fd, buf, sizeof(buf)), 4);
    ck_assert_int_ge(wt_now_ns(), atomic_load(&ping_at[i]));
    ck_assert_int_ne(atomic_load(&ping_at[i]), 0);
    ck_assert_str_eq(buf, "ping");
    ck_assert_int_eq(weave_write(fd, "pong", 4), 4);
    readers_ended++;
    return NULL;
}

static void ping(int i, int fd)
{
    atomic_store(&ping_at[i], wt_now_ns());
    ck_assert_int_eq(write(fd, "ping", 4), 4);
}

static void on_ping_time(uv_timer_t *t)
{
    ping(0, pair_cb[1]);
    uv_close((uv_handle_t *)t, NULL);
}

static void on_pong(uv_poll_t *p, int status, int events)
{
    char buf[8] = {0};
    int fd = *(int *)p->data;

    ck_assert_int_eq(status, 0);
    ck_assert(events & UV_READABLE);
    ck_assert_int_eq(read(fd, buf, sizeof(buf)), 4);
    ck_assert_str_eq(buf, "pong");
    atomic_fetch_add(&answers, 1);
    uv_close((uv_handle_t *)p, NULL);
    if (host.done()) /* the last step came before this answer */
        host_close(&host);
}

static void *ping_from_thread(void *arg)
{
    (void)arg;
    nap_ms(20);
    ping(1, pair_thread[1]);
    return NULL;
}

static int sockets_done(void)
{
    return readers_ended == 2 && atomic_load(&answers) == 2 && host.last == 0;
}

/* Tasks block reading sockets (weave_read) while libuv runs: one written by
 * a libuv timer callback 20 ms in, one by another thread; each read returns
 * only after its data was written, the task answers, and libuv reads the
 * answer. */
START_TEST(sockets_in_a_libuv_loop)
{
    uv_timer_t ping_time;
    uv_poll_t pong[2];
    pthread_t t;

    host_init(sockets_done);
    wt_make_socketpair(pair_cb, SOCK_STREAM);
    wt_make_socketpair(pair_thread, SOCK_STREAM);
    ck_assert_int_eq(weave_post(host.s, pinged, wt_ptr(0)), 0);
    ck_assert_int_eq(weave_post(host.s, pinged, wt_ptr(1)), 0);
    ck_assert_int_eq(uv_timer_init(&host.loop, &ping_time), 0);
    ck_assert_int_eq(uv_timer_start(&ping_time, on_ping_time, 20, 0), 0);
    ck_assert_int_eq(uv_poll_init(&host.loop, &pong[0], pair_cb[1]), 0);
    ck_assert_int_eq(uv_poll_init(&host.loop, &pong[1], pair_thread[1]), 0);
    pong[0].data = &pair_cb[1];
    pong[1].data = &pair_thread[1];
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(uv_poll_start(&pong[i], UV_READABLE, on_pong), 0);
    ck_assert_int_eq(pthread_create(&t, NULL, ping_from_thread, NULL), 0);
    host_run();
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_int_eq(readers_ended, 2);
    ck_assert_int_eq(atomic_load(&answers), 2);
    for (int i = 0; i < 2; i++) {
        close(pair_cb[i]);
        close(pair_thread[i]);
    }
}
END_TEST

/* ---- posts from libuv callbacks and another thread ---------------------- */

enum { FROM_TIMER, FROM_ASYNC, FROM_THREAD, FROM_LAST, NFROM };

static atomic_int posted_ran[NFROM];
static atomic_int call_done;
static uv_async_t async;

static void *note_post(void *arg)
{
    assert_in_host();
    ck_assert_int_eq(weave_sleep(1), 0); /* a task: it may block */
    atomic_fetch_add(&posted_ran[wt_int(arg)], 1);
    return NULL;
}

static void *twice(void *arg)
{
    assert_in_host();
    ck_assert_int_eq(weave_sleep(5), 0);
    return wt_ptr(wt_int(arg) * 2);
}

static void on_post_time(uv_timer_t *t)
{
    WT_FAILS(weave_call(host.s, twice, wt_ptr(1), NULL), EDEADLK); /* no task here */
    ck_assert_int_eq(weave_post(host.s, note_post, wt_ptr(FROM_TIMER)), 0);
    uv_close((uv_handle_t *)t, NULL);
}

static void on_async(uv_async_t *a)
{
    (void)a;
    ck_assert_int_eq(weave_post(host.s, note_post, wt_ptr(FROM_ASYNC)), 0);
}

static void *other_thread(void *arg)
{
    void *res = NULL;

    (void)arg;
    nap_ms(5);
    ck_assert_int_eq(uv_async_send(&async), 0);
    ck_assert_int_eq(weave_post(host.s, note_post, wt_ptr(FROM_THREAD)), 0);
    ck_assert_int_eq(weave_call(host.s, twice, wt_ptr(21), &res), 0);
    ck_assert_int_eq(wt_int(res), 42);
    atomic_store(&call_done, 1);
    /* A last post wakes the loop to see that the call returned. */
    ck_assert_int_eq(weave_post(host.s, note_post, wt_ptr(FROM_LAST)), 0);
    return NULL;
}

static int posts_done(void)
{
    for (int i = 0; i < NFROM; i++)
        if (atomic_load(&posted_ran[i]) != 1)
            return 0;
    if (!atomic_load(&call_done) || host.last != 0)
        return 0;
    uv_close((uv_handle_t *)&async, NULL);
    return 1;
}

/* Tasks posted from a uv_timer callback, from a uv_async callback (sent by
 * another thread), and from that thread directly, each run once on the
 * loop's thread; that thread's weave_call gets its result; a weave_call from
 * a libuv callback (s's thread, outside any task) is EDEADLK instead of
 * hanging the loop. */
START_TEST(posts_from_libuv_callbacks)
{
    uv_timer_t post_time;
    pthread_t t;

    host_init(posts_done);
    ck_assert_int_eq(uv_timer_init(&host.loop, &post_time), 0);
    ck_assert_int_eq(uv_timer_start(&post_time, on_post_time, 10, 0), 0);
    ck_assert_int_eq(uv_async_init(&host.loop, &async, on_async), 0);
    ck_assert_int_eq(pthread_create(&t, NULL, other_thread, NULL), 0);
    host_run();
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    for (int i = 0; i < NFROM; i++)
        ck_assert_int_eq(atomic_load(&posted_ran[i]), 1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("libuv");
    TCase *tc = tcase_create("libuv");

    wt_tag_native(tc); /* threads */
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, sleepers_in_a_libuv_loop);
    tcase_add_test(tc, sockets_in_a_libuv_loop);
    tcase_add_test(tc, posts_from_libuv_callbacks);
    suite_add_tcase(s, tc);
    return wt_main(s);
}
