/*
 * test_group.c - task groups (weave_group_*): asyncio's TaskGroup and
 * gather.
 *
 * weave_group_wait waits for every member, results are read in spawn
 * order; weave_group_fail records the first error and cancels the others;
 * a wait's timeout or deadline leaves the members running, a cancelled
 * waiter takes them down with it; weave_group_cancel; groups inside
 * members; weave_group_free with members still running (it cancels them
 * and waits, even for a cancelled caller), and the cases it refuses;
 * member handles (cancel, name, select, but no join or detach); a member
 * spawned into a failed group starts cancelled; the gather-with-timeout
 * pattern; and misuse, outside a task and from other threads.
 *
 * Members are "mems" (struct mem): a task that sleeps (or waits on an
 * event), records what the call returned and when it ended, and returns a
 * value. Times are asserted as lower bounds; upper bounds only catch hangs.
 *
 * Detached members (weave_group_spawn_detached): counted by wait, cancel
 * and free, but without an index, and their memory goes as they end.
 *
 * Check timeouts: "group" 8 s x 11, "free" 8 s x 3, "misuse" 8 s x 3 =
 * 136 s; the CTest timeout in CMakeLists.txt (300 s) is above their sum.
 */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "weave_test.h"

#define MS ((int64_t)1000000)

/* ---- members -------------------------------------------------------------------- */

struct mem {
    int64_t sleep_ms;   /* what it waits for: a sleep of this (-1: until cancelled) */
    weave_event *event; /* or, if not NULL, this event */
    intptr_t value;     /* what it returns */
    weave_group *fail;  /* then, if not NULL: weave_group_fail(fail, fail_err) */
    int fail_err;
    int64_t cleanup_ms; /* when its wait failed: a shielded sleep of this, first */
    int r, err;         /* the wait's return and errno */
    int cancelled_at_start;
    int cleaned; /* the cleanup sleep returned 0 */
    int ended;
    int order; /* 1 for the first member to end, then counting up */
    int64_t t1;
};

static int ended_so_far;

static struct mem mem_of(int64_t sleep_ms, intptr_t value)
{
    struct mem m;

    memset(&m, 0, sizeof(m));
    m.sleep_ms = sleep_ms;
    m.value = value;
    m.r = -42;
    return m;
}

static void *mem_task(void *arg)
{
    struct mem *m = arg;

    m->cancelled_at_start = weave_cancelled(weave_self());
    errno = 0;
    m->r = m->event ? weave_event_wait(m->event) : weave_sleep(m->sleep_ms);
    m->err = errno;
    if (m->r != 0 && m->cleanup_ms > 0) {
        weave_shield sh;

        weave_shield_begin(&sh);
        m->cleaned = weave_sleep(m->cleanup_ms) == 0;
        weave_shield_end(&sh);
    }
    if (m->fail)
        ck_assert_int_eq(weave_group_fail(m->fail, m->fail_err), 0);
    m->t1 = wt_now_ns();
    m->order = ++ended_so_far;
    m->ended = 1;
    return wt_ptr(m->value);
}

static weave_task *spawn_mem(weave_group *g, struct mem *m)
{
    weave_task *t = weave_group_spawn(g, mem_task, m);

    ck_assert_msg(t != NULL, "weave_group_spawn failed: errno %d", errno);
    return t;
}

static weave_group *new_group(void)
{
    weave_group *g = weave_group_new();

    ck_assert_ptr_nonnull(g);
    return g;
}

/* Let every runnable task run until it blocks (a few rounds). */
static void settle(void)
{
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(weave_yield(), 0);
}

static void assert_result(weave_group *g, size_t i, intptr_t want)
{
    void *r = wt_ptr(-42);

    ck_assert_int_eq(weave_group_result(g, i, &r), 0);
    ck_assert_ptr_eq(r, wt_ptr(want));
}

static void assert_cancelled(const struct mem *m)
{
    ck_assert_int_eq(m->ended, 1);
    ck_assert_int_eq(m->r, -1);
    ck_assert_int_eq(m->err, ECANCELED);
}

/* ---- waiting and results -------------------------------------------------------- */

/*
 * wait returns once every member has ended, not before; results come in
 * spawn order though the members end in the reverse order (each waits on
 * an event of its own, set last to first). An empty group waits for
 * nothing.
 */
#define NWAIT 5

struct waiter {
    weave_group *g;
    int64_t timeout;
    int r, err;
    int done;
    int64_t t1;
};

static void *waiter_task(void *arg)
{
    struct waiter *w = arg;

    errno = 0;
    w->r = weave_group_wait(w->g, w->timeout);
    w->err = errno;
    w->t1 = wt_now_ns();
    w->done = 1;
    return NULL;
}

WT_TEST(wait_results_in_order)
{
    weave_group *g = new_group();
    weave_event ev[NWAIT];
    struct mem m[NWAIT];
    struct waiter w = {g, -1, -42, 0, 0, 0};
    weave_task *wt;
    void *r;

    ended_so_far = 0;
    ck_assert_uint_eq(weave_group_size(g), 0);
    ck_assert_int_eq(weave_group_wait(g, -1), 0);
    ck_assert_int_eq(weave_group_wait(g, 0), 0);
    for (int i = 0; i < NWAIT; i++) {
        ck_assert_int_eq(weave_event_init(&ev[i]), 0);
        m[i] = mem_of(0, 100 + i);
        m[i].event = &ev[i];
        spawn_mem(g, &m[i]);
        ck_assert_uint_eq(weave_group_size(g), (size_t)i + 1);
    }
    wt = WT_SPAWN(waiter_task, &w);
    settle();
    WT_FAILS(weave_group_result(g, 0, &r), EBUSY); /* not ended yet */
    for (int i = NWAIT - 1; i >= 0; i--) {
        ck_assert_int_eq(w.done, 0); /* member i still runs */
        ck_assert_int_eq(weave_event_set(&ev[i]), 0);
        settle();
        ck_assert_int_eq(m[i].ended, 1);
    }
    WT_JOIN(wt);
    ck_assert_int_eq(w.r, 0);
    for (int i = 0; i < NWAIT; i++) {
        ck_assert_int_eq(m[i].r, 0);
        ck_assert_int_eq(m[i].order, NWAIT - i); /* they ended last to first */
        assert_result(g, (size_t)i, 100 + i);
        ck_assert_int_eq(weave_group_result(g, (size_t)i, NULL), 0);
        ck_assert_int_eq(weave_event_destroy(&ev[i]), 0);
    }
    WT_FAILS(weave_group_result(g, NWAIT, &r), EINVAL);
    WT_FAILS(weave_group_result(g, SIZE_MAX, &r), EINVAL);
    ck_assert_int_eq(weave_group_wait(g, -1), 0); /* again: at once */
    ck_assert_int_eq(weave_group_wait(g, 0), 0);
    ck_assert_uint_eq(weave_group_size(g), NWAIT);
    ck_assert_int_eq(weave_group_free(g), 0);
    WT_ASSERT_IDLE();
}

/*
 * Several tasks may wait at once, and a member spawned while they wait (by
 * another member) is waited for too.
 */
struct spawner {
    weave_group *g;
    struct mem *child;
};

static void *spawner_task(void *arg)
{
    struct spawner *sp = arg;

    ck_assert_int_eq(weave_sleep(10), 0);
    spawn_mem(sp->g, sp->child);
    return wt_ptr(1);
}

WT_TEST(several_waiters)
{
    weave_group *g = new_group();
    struct mem child = mem_of(30, 5);
    struct spawner sp = {g, &child};
    struct waiter w[2] = {{g, -1, -42, 0, 0, 0}, {g, 5000, -42, 0, 0, 0}};
    weave_task *wt[2];

    ck_assert_ptr_nonnull(weave_group_spawn(g, spawner_task, &sp));
    wt[0] = WT_SPAWN(waiter_task, &w[0]);
    wt[1] = WT_SPAWN(waiter_task, &w[1]);
    ck_assert_int_eq(weave_group_wait(g, -1), 0);
    ck_assert_int_eq(child.ended, 1); /* spawned after the wait began */
    ck_assert_uint_eq(weave_group_size(g), 2);
    WT_JOIN(wt[0]);
    WT_JOIN(wt[1]);
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(w[i].r, 0);
        ck_assert_int_ge(w[i].t1, child.t1);
    }
    assert_result(g, 0, 1);
    assert_result(g, 1, 5);
    ck_assert_int_eq(weave_group_free(g), 0);
    WT_ASSERT_IDLE();
}

/* ---- errors and cancellation ---------------------------------------------------- */

/*
 * Fail-fast: a member's weave_group_fail records its error and cancels the
 * others, whatever they block in; wait returns -1 with that errno. Later
 * fails (and a cancel) do not override it; err <= 0 is EINVAL.
 */
WT_TEST(fail_fast)
{
    weave_group *g = new_group();
    weave_event never;
    struct mem quick = mem_of(0, 1), b = mem_of(-1, 2), c = mem_of(-1, 3);
    struct mem e = mem_of(0, 4), f = mem_of(20, 9);
    int64_t t0;

    ck_assert_int_eq(weave_event_init(&never), 0);
    e.event = &never;
    f.fail = g;
    f.fail_err = EIO;
    t0 = wt_now_ns();
    spawn_mem(g, &quick);
    spawn_mem(g, &b);
    spawn_mem(g, &f);
    spawn_mem(g, &c);
    spawn_mem(g, &e);
    errno = 0;
    ck_assert_int_eq(weave_group_wait(g, -1), -1);
    ck_assert_int_eq(errno, EIO);
    ck_assert_int_ge(wt_now_ns() - t0, 20 * MS);
    ck_assert_int_eq(quick.r, 0); /* it had ended: untouched */
    ck_assert_int_eq(f.r, 0);
    assert_cancelled(&b);
    assert_cancelled(&c);
    assert_cancelled(&e);
    ck_assert_int_lt((b.t1 - f.t1) / MS, WT_PROMPT_MS);
    assert_result(g, 0, 1);
    assert_result(g, 1, 2);
    assert_result(g, 2, 9);
    assert_result(g, 3, 3);
    assert_result(g, 4, 4);

    ck_assert_int_eq(weave_group_fail(g, ENOENT), 0); /* the first error stands */
    WT_FAILS(weave_group_wait(g, -1), EIO);
    ck_assert_int_eq(weave_group_cancel(g), 0);
    WT_FAILS(weave_group_wait(g, 0), EIO);
    WT_FAILS(weave_group_fail(g, 0), EINVAL);
    WT_FAILS(weave_group_fail(g, -EIO), EINVAL);
    WT_FAILS(weave_group_wait(g, -1), EIO);
    ck_assert_int_eq(weave_group_free(g), 0);
    ck_assert_int_eq(weave_event_destroy(&never), 0);
    WT_ASSERT_IDLE();
}

/*
 * A wait whose timeout (or deadline scope) passes first returns ETIMEDOUT
 * no sooner than it, and the members run on undisturbed: a later wait
 * succeeds. A timeout of 0 only looks.
 */
WT_TEST(wait_timeout)
{
    weave_group *g = new_group();
    weave_event go;
    struct mem m[3];
    weave_task *h[3];
    weave_deadline d;
    int64_t t0;

    ck_assert_int_eq(weave_event_init(&go), 0);
    for (int i = 0; i < 3; i++) {
        m[i] = mem_of(0, i);
        m[i].event = &go;
        h[i] = spawn_mem(g, &m[i]);
    }
    t0 = wt_now_ns();
    WT_FAILS(weave_group_wait(g, 20), ETIMEDOUT);
    ck_assert_int_ge(wt_now_ns() - t0, 20 * MS);
    WT_FAILS(weave_group_wait(g, 0), ETIMEDOUT);
    t0 = wt_now_ns();
    weave_deadline_begin(&d, 10);
    WT_FAILS(weave_group_wait(g, -1), ETIMEDOUT);
    ck_assert_int_eq(weave_deadline_end(&d), 1);
    ck_assert_int_ge(wt_now_ns() - t0, 10 * MS);
    WT_FAILS(weave_group_wait(g, -2), EINVAL);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(m[i].ended, 0);
        ck_assert_int_eq(weave_cancelled(h[i]), 0);
    }
    ck_assert_int_eq(weave_event_set(&go), 0);
    ck_assert_int_eq(weave_group_wait(g, 10000), 0);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(m[i].r, 0); /* their waits were never disturbed */
        assert_result(g, (size_t)i, i);
    }
    ck_assert_int_eq(weave_group_wait(g, 0), 0);
    ck_assert_int_eq(weave_group_free(g), 0);
    ck_assert_int_eq(weave_event_destroy(&go), 0);
    WT_ASSERT_IDLE();
}

/*
 * Cancelling the task in weave_group_wait: the wait returns ECANCELED at
 * once and the members are cancelled too; the group's error is ECANCELED.
 */
WT_TEST(waiter_cancelled)
{
    weave_group *g = new_group();
    struct mem m[3];
    struct waiter w = {g, -1, -42, 0, 0, 0};
    weave_task *wt;
    int64_t t_cancel;

    for (int i = 0; i < 3; i++) {
        m[i] = mem_of(-1, i);
        spawn_mem(g, &m[i]);
    }
    wt = WT_SPAWN(waiter_task, &w);
    settle();
    ck_assert_int_eq(w.done, 0);
    t_cancel = wt_now_ns();
    ck_assert_int_eq(weave_cancel(wt), 0);
    WT_JOIN(wt);
    ck_assert_int_eq(w.r, -1);
    ck_assert_int_eq(w.err, ECANCELED);
    ck_assert_int_lt((w.t1 - t_cancel) / MS, WT_PROMPT_MS);
    WT_FAILS(weave_group_wait(g, -1), ECANCELED);
    for (int i = 0; i < 3; i++) {
        assert_cancelled(&m[i]);
        assert_result(g, (size_t)i, i);
    }
    ck_assert_int_eq(weave_group_free(g), 0);
    WT_ASSERT_IDLE();
}

/*
 * weave_group_cancel cancels the members still running (one that ended
 * keeps its result) and makes the group's error ECANCELED, also for a
 * group whose members have all ended or that has none.
 */
WT_TEST(group_cancel)
{
    weave_group *g = new_group(), *empty = new_group();
    struct mem a = mem_of(0, 1), b = mem_of(-1, 2), c = mem_of(-1, 3);

    spawn_mem(g, &a);
    spawn_mem(g, &b);
    spawn_mem(g, &c);
    settle();
    ck_assert_int_eq(a.ended, 1);
    ck_assert_int_eq(b.ended + c.ended, 0);
    ck_assert_int_eq(weave_group_cancel(g), 0);
    WT_FAILS(weave_group_wait(g, -1), ECANCELED);
    ck_assert_int_eq(a.r, 0);
    assert_cancelled(&b);
    assert_cancelled(&c);
    assert_result(g, 0, 1);
    assert_result(g, 1, 2);
    assert_result(g, 2, 3);
    ck_assert_int_eq(weave_group_cancel(g), 0); /* again: harmless */
    WT_FAILS(weave_group_wait(g, 0), ECANCELED);
    ck_assert_int_eq(weave_group_free(g), 0);

    ck_assert_int_eq(weave_group_cancel(empty), 0);
    WT_FAILS(weave_group_wait(empty, -1), ECANCELED);
    ck_assert_int_eq(weave_group_free(empty), 0);
    WT_ASSERT_IDLE();
}

/* Members that return NULL: one ends on its own, one is cancelled in a
 * sleep, one is cancelled and still finishes its work in a shield. */
static void *null_after(void *arg)
{
    weave_shield sh;

    if (wt_int(arg) == 0)
        return NULL;
    if (wt_int(arg) == 2)
        weave_shield_begin(&sh);
    (void)weave_sleep(wt_int(arg) == 1 ? -1 : 30);
    if (wt_int(arg) == 2)
        weave_shield_end(&sh);
    return NULL;
}

/* A member's ending: returned, or cancelled before it returned, whatever
 * its result (all NULL here). */
WT_TEST(member_outcome)
{
    weave_group *g = new_group();
    void *r = wt_ptr(5);

    for (int i = 0; i < 3; i++)
        ck_assert_ptr_nonnull(weave_group_spawn(g, null_after, wt_ptr(i)));
    settle();
    ck_assert_int_eq(weave_group_cancelled(g, 0), 0);
    WT_FAILS(weave_group_cancelled(g, 1), EBUSY);
    WT_FAILS(weave_group_cancelled(g, 3), EINVAL);
    WT_FAILS(weave_group_cancelled(NULL, 0), EINVAL);
    ck_assert_int_eq(weave_group_cancel(g), 0);
    WT_FAILS(weave_group_wait(g, -1), ECANCELED);
    for (size_t i = 0; i < 3; i++) {
        ck_assert_int_eq(weave_group_result(g, i, &r), 0);
        ck_assert_ptr_null(r);
    }
    ck_assert_int_eq(weave_group_cancelled(g, 0), 0);
    ck_assert_int_eq(weave_group_cancelled(g, 1), 1);
    ck_assert_int_eq(weave_group_cancelled(g, 2), 1);
    ck_assert_int_eq(weave_group_free(g), 0);
    WT_ASSERT_IDLE();
}

/*
 * A member spawned into a group that failed or was cancelled starts
 * cancelled: its first blocking call fails with ECANCELED.
 */
WT_TEST(spawn_after_fail_starts_cancelled)
{
    weave_group *g = new_group(), *c = new_group();
    struct mem late = mem_of(5000, 7), late2 = mem_of(5000, 8), before = mem_of(-1, 6);
    weave_task *h;

    spawn_mem(g, &before);
    settle();
    ck_assert_int_eq(weave_group_fail(g, EPIPE), 0);
    h = spawn_mem(g, &late);
    ck_assert_int_eq(weave_cancelled(h), 1);
    WT_FAILS(weave_group_wait(g, -1), EPIPE);
    assert_cancelled(&before);
    ck_assert_int_eq(late.cancelled_at_start, 1);
    assert_cancelled(&late);
    assert_result(g, 1, 7);
    ck_assert_int_eq(weave_group_free(g), 0);

    ck_assert_int_eq(weave_group_cancel(c), 0); /* no member yet */
    h = spawn_mem(c, &late2);
    ck_assert_int_eq(weave_cancelled(h), 1);
    WT_FAILS(weave_group_wait(c, -1), ECANCELED);
    ck_assert_int_eq(late2.cancelled_at_start, 1);
    assert_cancelled(&late2);
    ck_assert_int_eq(weave_group_free(c), 0);
    WT_ASSERT_IDLE();
}

/* ---- nesting ---------------------------------------------------------------------- */

/*
 * Each member owns a group of its own: it spawns inner members, waits,
 * sums their results and frees the group. Cancelling the outer group
 * reaches a member in its inner wait, which takes its inner members down
 * and frees its group (waiting for their cleanup) before it ends.
 */
#define NOUTER 3
#define NINNER 4

struct outer {
    int64_t inner_sleep; /* -1: the inner members wait until cancelled */
    int inner_wait_r, inner_wait_err;
    struct mem inner[NINNER];
};

static void *outer_member(void *arg)
{
    struct outer *o = arg;
    weave_group *g = new_group();
    intptr_t sum = 0;

    for (int i = 0; i < NINNER; i++) {
        o->inner[i] = mem_of(o->inner_sleep < 0 ? -1 : o->inner_sleep + i, i + 1);
        o->inner[i].cleanup_ms = 10;
        spawn_mem(g, &o->inner[i]);
    }
    errno = 0;
    o->inner_wait_r = weave_group_wait(g, -1);
    o->inner_wait_err = errno;
    for (int i = 0; i < NINNER; i++) {
        void *r = NULL;
        if (weave_group_result(g, (size_t)i, &r) == 0)
            sum += wt_int(r);
    }
    ck_assert_int_eq(weave_group_free(g), 0);
    return wt_ptr(sum);
}

WT_TEST(nested_groups)
{
    weave_group *g = new_group();
    struct outer o[NOUTER];

    for (int i = 0; i < NOUTER; i++) {
        memset(&o[i], 0, sizeof(o[i]));
        o[i].inner_sleep = i;
        ck_assert_ptr_nonnull(weave_group_spawn(g, outer_member, &o[i]));
    }
    ck_assert_int_eq(weave_group_wait(g, -1), 0);
    for (int i = 0; i < NOUTER; i++) {
        ck_assert_int_eq(o[i].inner_wait_r, 0);
        assert_result(g, (size_t)i, 1 + 2 + 3 + 4);
    }
    ck_assert_int_eq(weave_group_free(g), 0);

    /* Cancellation through two levels. */
    g = new_group();
    for (int i = 0; i < NOUTER; i++) {
        memset(&o[i], 0, sizeof(o[i]));
        o[i].inner_sleep = -1;
        ck_assert_ptr_nonnull(weave_group_spawn(g, outer_member, &o[i]));
    }
    settle();
    ck_assert_int_eq(weave_group_cancel(g), 0);
    WT_FAILS(weave_group_wait(g, -1), ECANCELED);
    for (int i = 0; i < NOUTER; i++) {
        ck_assert_int_eq(o[i].inner_wait_r, -1);
        ck_assert_int_eq(o[i].inner_wait_err, ECANCELED);
        for (int k = 0; k < NINNER; k++) {
            assert_cancelled(&o[i].inner[k]);
            ck_assert_int_eq(o[i].inner[k].cleaned, 1);
        }
    }
    ck_assert_int_eq(weave_group_free(g), 0);
    WT_ASSERT_IDLE();
}

/* ---- member handles ----------------------------------------------------------------- */

/*
 * A member's handle can be cancelled, carries its name and can be selected
 * on; it cannot be joined or detached (the group owns it), and it goes
 * stale once the member has ended.
 */
WT_TEST(member_handles)
{
    weave_group *g = new_group();
    struct mem named = mem_of(-1, 1), timed = mem_of(20, 2);
    weave_task_opts opts = {.name = "worker-7"};
    weave_task_opts bad = {.stack_size = 1, .name = "tiny"};
    weave_select_case sc;
    weave_task *h, *h2;
    int64_t t0;

    h = weave_group_spawn_with(g, &opts, mem_task, &named);
    ck_assert_ptr_nonnull(h);
    ck_assert_str_eq(weave_task_name(h), "worker-7");
    ck_assert_uint_gt(weave_task_id(h), 1);
    WT_FAILS(weave_join(h, NULL), EINVAL);
    WT_FAILS(weave_detach(h), EINVAL);
    ck_assert_int_eq(weave_cancelled(h), 0);
    WT_FAILS_NULL(weave_group_spawn_with(g, &bad, mem_task, &timed), EINVAL);
    ck_assert_uint_eq(weave_group_size(g), 1);

    t0 = wt_now_ns();
    h2 = spawn_mem(g, &timed);
    memset(&sc, 0, sizeof(sc));
    sc.op = WEAVE_CASE_TASK;
    sc.task = h2;
    ck_assert_int_eq(weave_select(&sc, 1, 5000), 0);
    ck_assert_int_eq(sc.err, 0);
    ck_assert_int_eq(timed.ended, 1);
    ck_assert_int_ge(wt_now_ns() - t0, 20 * MS);
    assert_result(g, 1, 2);

    ck_assert_int_eq(named.ended, 0);
    ck_assert_int_eq(weave_cancel(h), 0);
    ck_assert_int_eq(weave_cancelled(h), 1);
    ck_assert_int_eq(weave_group_wait(g, -1), 0); /* one member cancelled: no group error */
    assert_cancelled(&named);
    assert_result(g, 0, 1);
    WT_FAILS(weave_cancel(h), ESRCH); /* ended: stale */
    WT_FAILS(weave_join(h2, NULL), ESRCH);
    sc.task = h2;
    WT_FAILS(weave_select(&sc, 1, 0), ESRCH);
    ck_assert_int_eq(weave_group_free(g), 0);
    WT_ASSERT_IDLE();
}

/* ---- gather with a timeout --------------------------------------------------------- */

/*
 * A deadline scope around weave_group_wait: the results that arrived in
 * time are kept, the members still running are cancelled by
 * weave_group_free, which returns once they have ended.
 */
WT_TEST(gather_with_deadline)
{
    weave_group *g = new_group();
    struct mem m[4] = {mem_of(0, 10), mem_of(-1, 11), mem_of(5, 12), mem_of(-1, 13)};
    int64_t ms = WT_ON_VALGRIND ? 1000 : 100; /* the fast ones are well within it */
    weave_deadline d;
    void *r;
    int64_t t0;

    for (int i = 0; i < 4; i++)
        spawn_mem(g, &m[i]);
    t0 = wt_now_ns();
    weave_deadline_begin(&d, ms);
    WT_FAILS(weave_group_wait(g, -1), ETIMEDOUT);
    ck_assert_int_eq(weave_deadline_end(&d), 1);
    ck_assert_int_ge(wt_now_ns() - t0, ms * MS);
    assert_result(g, 0, 10);
    assert_result(g, 2, 12);
    WT_FAILS(weave_group_result(g, 1, &r), EBUSY);
    WT_FAILS(weave_group_result(g, 3, &r), EBUSY);
    ck_assert_int_eq(weave_group_free(g), 0); /* the rest never end by themselves */
    assert_cancelled(&m[1]);
    assert_cancelled(&m[3]);
    ck_assert_int_eq(m[0].r + m[2].r, 0);
    WT_ASSERT_IDLE();
}

/* ---- freeing ------------------------------------------------------------------------ */

/*
 * weave_group_free with members running: it cancels them and returns only
 * once they have ended (their shielded cleanup included), also when the
 * caller is cancelled, or past a deadline.
 */
#define NFREE 3

struct freer {
    weave_group *g;
    struct mem *m;
    int how; /* 0 plain, 1 cancelled, 2 past a deadline */
    int r, err;
    int cleaned; /* every member had finished its cleanup when free returned */
};

static void *freer_task(void *arg)
{
    struct freer *f = arg;
    weave_deadline d;

    if (f->how == 1)
        ck_assert_int_eq(weave_cancel(weave_self()), 0);
    if (f->how == 2)
        weave_deadline_begin(&d, 0);
    errno = 0;
    f->r = weave_group_free(f->g);
    f->err = errno;
    f->cleaned = 1;
    for (int i = 0; i < NFREE; i++)
        f->cleaned &= f->m[i].ended && f->m[i].cleaned;
    if (f->how == 2)
        ck_assert_int_eq(weave_deadline_end(&d), 1);
    return NULL;
}

WT_TEST(free_running_members)
{
    for (int how = 0; how < 3; how++) {
        struct mem m[NFREE];
        struct freer f;
        int64_t t0;

        memset(&f, 0, sizeof(f));
        f.g = new_group();
        f.m = m;
        f.how = how;
        for (int i = 0; i < NFREE; i++) {
            m[i] = mem_of(-1, i);
            m[i].cleanup_ms = 20;
            spawn_mem(f.g, &m[i]);
        }
        settle();
        t0 = wt_now_ns();
        WT_JOIN(WT_SPAWN(freer_task, &f));
        ck_assert_int_eq(f.r, 0);
        ck_assert_int_eq(f.cleaned, 1);
        ck_assert_int_ge(wt_now_ns() - t0, 20 * MS);
        for (int i = 0; i < NFREE; i++)
            assert_cancelled(&m[i]);
    }
    WT_ASSERT_IDLE();
}

/*
 * A member may not wait for, or free, its own group (EDEADLK); free while
 * another task waits in weave_group_wait is EBUSY and frees nothing: the
 * wait goes on and succeeds.
 */
struct self_check {
    weave_group *g;
    weave_event go;
    int checked;
};

static void *self_member(void *arg)
{
    struct self_check *sc = arg;

    WT_FAILS(weave_group_wait(sc->g, -1), EDEADLK);
    WT_FAILS(weave_group_wait(sc->g, 0), EDEADLK);
    WT_FAILS(weave_group_free(sc->g), EDEADLK);
    sc->checked = 1;
    ck_assert_int_eq(weave_event_wait(&sc->go), 0);
    return wt_ptr(3);
}

WT_TEST(free_refused)
{
    weave_group *g = new_group();
    struct self_check sc;
    struct waiter w = {g, -1, -42, 0, 0, 0};
    weave_task *wt;

    sc.g = g;
    sc.checked = 0;
    ck_assert_int_eq(weave_event_init(&sc.go), 0);
    ck_assert_ptr_nonnull(weave_group_spawn(g, self_member, &sc));
    settle();
    ck_assert_int_eq(sc.checked, 1);
    wt = WT_SPAWN(waiter_task, &w);
    settle();
    ck_assert_int_eq(w.done, 0);
    WT_FAILS(weave_group_free(g), EBUSY);
    settle();
    ck_assert_int_eq(w.done, 0); /* still waiting, on a group still there */
    ck_assert_int_eq(weave_event_set(&sc.go), 0);
    WT_JOIN(wt);
    ck_assert_int_eq(w.r, 0);
    assert_result(g, 0, 3);
    ck_assert_int_eq(weave_group_free(g), 0);
    ck_assert_int_eq(weave_event_destroy(&sc.go), 0);
    WT_ASSERT_IDLE();
}

/*
 * The last member has just ended: the task in weave_group_wait is woken
 * but has not run yet, so it is still in weave_group_wait. weave_group_free
 * must refuse (EBUSY) rather than free the group under it.
 */
struct last {
    int ending; /* the member is about to return */
};

static void *last_member(void *arg)
{
    struct last *l = arg;

    ck_assert_int_eq(weave_yield(), 0);
    l->ending = 1;
    return NULL;
}

WT_TEST(free_while_waiter_wakes)
{
    weave_group *g = new_group();
    struct last l = {0};
    struct waiter w = {g, -1, -42, 0, 0, 0};
    weave_task *wt;
    int r, err;

    wt = WT_SPAWN(waiter_task, &w);
    ck_assert_ptr_nonnull(weave_group_spawn(g, last_member, &l));
    while (!l.ending)
        ck_assert_int_eq(weave_yield(), 0);
    ck_assert_int_eq(w.done, 0); /* woken, not yet returned from the wait */
    errno = 0;
    r = weave_group_free(g);
    err = errno;
    ck_assert_msg(r == -1 && err == EBUSY,
                  "weave_group_free freed a group a task is still waiting in: "
                  "returned %d, errno %d",
                  r, err);
    WT_JOIN(wt);
    ck_assert_int_eq(w.r, 0);
    ck_assert_int_eq(weave_group_free(g), 0);
    WT_ASSERT_IDLE();
}

/* ---- misuse ------------------------------------------------------------------------- */

WT_TEST(misuse_einval)
{
    weave_group *g = new_group();
    weave_task_opts opts = {.name = "x"};
    void *r;

    WT_FAILS_NULL(weave_group_spawn(NULL, wt_nothing, NULL), EINVAL);
    WT_FAILS_NULL(weave_group_spawn_with(NULL, &opts, wt_nothing, NULL), EINVAL);
    WT_FAILS_NULL(weave_group_spawn(g, NULL, NULL), EINVAL);
    WT_FAILS_NULL(weave_group_spawn_with(g, &opts, NULL, NULL), EINVAL);
    ck_assert_uint_eq(weave_group_size(g), 0);
    WT_FAILS(weave_group_fail(NULL, EIO), EINVAL);
    WT_FAILS(weave_group_cancel(NULL), EINVAL);
    WT_FAILS(weave_group_wait(NULL, -1), EINVAL);
    WT_FAILS(weave_group_wait(NULL, 0), EINVAL);
    WT_FAILS(weave_group_result(NULL, 0, &r), EINVAL);
    WT_FAILS(weave_group_free(NULL), EINVAL);
    ck_assert_uint_eq(weave_group_size(NULL), 0);
    WT_FAILS(weave_group_result(g, 0, &r), EINVAL); /* no member 0 */
    WT_FAILS(weave_group_wait(g, -2), EINVAL);
    WT_FAILS(weave_group_fail(g, 0), EINVAL);

    /* The group still works after all that. */
    ck_assert_ptr_nonnull(weave_group_spawn_with(g, NULL, wt_nothing, wt_ptr(4)));
    ck_assert_int_eq(weave_group_wait(g, -1), 0);
    assert_result(g, 0, 4);
    ck_assert_int_eq(weave_group_free(g), 0);
    WT_ASSERT_IDLE();
}

/* With no scheduler on the thread: spawning, waiting, failing and
 * cancelling are EPERM (weave.h's one rule); a group with no member can
 * still be made and freed. */
START_TEST(outside_a_task)
{
    weave_group *g = new_group();

    WT_FAILS_NULL(weave_group_spawn(g, wt_nothing, NULL), EPERM);
    WT_FAILS_NULL(weave_group_spawn_with(g, NULL, wt_nothing, NULL), EPERM);
    WT_FAILS(weave_group_wait(g, -1), EPERM);
    WT_FAILS(weave_group_wait(g, 0), EPERM);
    WT_FAILS(weave_group_fail(g, EIO), EPERM);
    WT_FAILS(weave_group_cancel(g), EPERM);
    ck_assert_uint_eq(weave_group_size(g), 0);
    ck_assert_int_eq(weave_group_free(g), 0);
}
END_TEST

/*
 * A group whose members are tasks of this thread's scheduler, used from
 * another thread, running a scheduler of its own or none: spawning into
 * it, failing, cancelling, waiting and freeing are EPERM and change
 * nothing.
 */
static weave_group *foreign_g;
static int foreign_tried;

static void foreign_try_all(void)
{
    WT_FAILS_NULL(weave_group_spawn(foreign_g, wt_nothing, NULL), EPERM);
    WT_FAILS(weave_group_fail(foreign_g, EIO), EPERM);
    WT_FAILS(weave_group_cancel(foreign_g), EPERM);
    WT_FAILS(weave_group_wait(foreign_g, -1), EPERM);
    WT_FAILS(weave_group_wait(foreign_g, 0), EPERM);
    WT_FAILS(weave_group_free(foreign_g), EPERM);
    ck_assert_uint_eq(weave_group_size(foreign_g), 0); /* looking is refused too */
    foreign_tried++;
}

static void *foreign_main(void *arg)
{
    (void)arg;
    foreign_try_all();
    WT_ASSERT_IDLE();
    return NULL;
}

static void *foreign_thread_with_scheduler(void *arg)
{
    (void)arg;
    ck_assert_int_eq(weave_run(foreign_main, NULL, NULL), 0);
    return NULL;
}

static void *foreign_thread_plain(void *arg)
{
    (void)arg;
    foreign_try_all();
    return NULL;
}

WT_TEST(other_threads_eperm)
{
    weave_event go;
    struct mem m = mem_of(0, 5);
    weave_task *h;
    pthread_t th;

    ck_assert_int_eq(weave_event_init(&go), 0);
    m.event = &go;
    foreign_g = new_group();
    h = spawn_mem(foreign_g, &m);
    settle();
    /* The other threads fail at once: this one may block in pthread_join. */
    ck_assert_int_eq(pthread_create(&th, NULL, foreign_thread_with_scheduler, NULL), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_int_eq(pthread_create(&th, NULL, foreign_thread_plain, NULL), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_int_eq(foreign_tried, 2);
    ck_assert_int_eq(weave_cancelled(h), 0);
    ck_assert_int_eq(m.ended, 0);
    ck_assert_int_eq(weave_event_set(&go), 0);
    ck_assert_int_eq(weave_group_wait(foreign_g, -1), 0); /* no error was recorded */
    ck_assert_int_eq(m.r, 0);
    assert_result(foreign_g, 0, 5);
    ck_assert_int_eq(weave_group_free(foreign_g), 0);
    ck_assert_int_eq(weave_event_destroy(&go), 0);
    WT_ASSERT_IDLE();
}

/* ---- detached members ------------------------------------------------------------- */

static int detached_done;

static void *detached_member(void *arg)
{
    int64_t ms = (int64_t)wt_int(arg);

    if (ms > 0 && weave_sleep(ms) != 0)
        return NULL; /* cancelled */
    detached_done++;
    return arg;
}

/* Members whose result nobody reads: no index, their records go as they
 * end (a server's connections), yet wait, cancel and free count them. */
WT_TEST(detached_members)
{
    weave_group *g = weave_group_new();
    int n = WT_ON_VALGRIND || WT_ASAN ? 2000 : 20000;
    size_t before, after;
    weave_task *t;

    ck_assert_ptr_nonnull(g);
    detached_done = 0;
    /* A kept member, then many detached ones that end at once. */
    ck_assert_ptr_nonnull(weave_group_spawn(g, detached_member, wt_ptr(1)));
    for (int i = 0; i < 100; i++)
        ck_assert_ptr_nonnull(weave_group_spawn_detached(g, detached_member, wt_ptr(0)));
    ck_assert_int_eq(weave_group_wait(g, -1), 0);
    ck_assert_int_eq(detached_done, 101);
    before = mallinfo2().uordblks;
    for (int i = 0; i < n; i++) {
        t = weave_group_spawn_detached(g, detached_member, wt_ptr(0));
        ck_assert_ptr_nonnull(t);
        WT_FAILS(weave_join(t, NULL), EINVAL);
        if (i % 100 == 99)
            ck_assert_int_eq(weave_group_wait(g, -1), 0);
    }
    ck_assert_int_eq(weave_group_wait(g, -1), 0);
    after = mallinfo2().uordblks;
    /* Memory does not grow with the members that came and went. */
    ck_assert_msg(after < before + 64 * 1024, "heap grew from %zu to %zu bytes over %d members",
                  before, after, n);
    ck_assert_uint_eq(weave_group_size(g), 1); /* only the kept one has an index */
    ck_assert_int_eq(detached_done, 101 + n);
    /* Still members: cancel and free reach the running ones. */
    for (int i = 0; i < 10; i++)
        ck_assert_ptr_nonnull(weave_group_spawn_detached(g, detached_member, wt_ptr(100000)));
    ck_assert_int_eq(weave_yield(), 0);
    WT_FAILS(weave_group_wait(g, 0), ETIMEDOUT);
    ck_assert_int_eq(weave_group_free(g), 0);
    ck_assert_int_eq(detached_done, 101 + n);
    WT_ASSERT_IDLE();
}

/* ---- the suite ---------------------------------------------------------------------- */

static Suite *group_suite(void)
{
    Suite *s = suite_create("group");
    TCase *tc = tcase_create("group");
    TCase *fr = tcase_create("free");
    TCase *mis = tcase_create("misuse");

    tcase_set_timeout(tc, 8);
    tcase_add_test(tc, wait_results_in_order);
    tcase_add_test(tc, several_waiters);
    tcase_add_test(tc, fail_fast);
    tcase_add_test(tc, wait_timeout);
    tcase_add_test(tc, waiter_cancelled);
    tcase_add_test(tc, group_cancel);
    tcase_add_test(tc, member_outcome);
    tcase_add_test(tc, spawn_after_fail_starts_cancelled);
    tcase_add_test(tc, nested_groups);
    tcase_add_test(tc, member_handles);
    tcase_add_test(tc, gather_with_deadline);
    tcase_add_test(tc, detached_members);
    suite_add_tcase(s, tc);

    tcase_set_timeout(fr, 8);
    tcase_add_test(fr, free_running_members);
    tcase_add_test(fr, free_refused);
    tcase_add_test(fr, free_while_waiter_wakes);
    suite_add_tcase(s, fr);

    tcase_set_timeout(mis, 8);
    tcase_add_test(mis, misuse_einval);
    tcase_add_test(mis, outside_a_task);

    suite_add_tcase(s, mis);

    mis = tcase_create("threads");
    wt_tag_native(mis);
    tcase_set_timeout(mis, 8);
    tcase_add_test(mis, other_threads_eperm);
    suite_add_tcase(s, mis);
    return s;
}

int main(void)
{
    return wt_main(group_suite());
}
