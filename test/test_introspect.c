/*
 * test_introspect.c - seeing inside: weave_tasks, weave_dump, the report on
 * deadlock, the dump on a signal, and the watchdog.
 */
#include <fcntl.h>
#include <signal.h>
#include <string.h>

#include "weave_test.h"

/* The entry of weave_tasks for task id, asserting there is one. */
static weave_task_info info_of(uint64_t id)
{
    weave_task_info all[64];
    ssize_t n = weave_tasks(all, 64);

    ck_assert_int_gt(n, 0);
    ck_assert_int_le(n, 64);
    for (ssize_t i = 0; i < n; i++)
        if (all[i].id == id)
            return all[i];
    ck_abort_msg("task %llu not listed", (unsigned long long)id);
    return all[0];
}

/* ---- what each task waits on ---------------------------------------------- */

struct waits {
    weave_chan *c;
    weave_mutex m;
    weave_sem sem;
    weave_event ev;
    weave_group *g;
    int p[2];
};

static void *sleeper(void *arg)
{
    (void)arg;
    return wt_ptr(weave_sleep(10000));
}

static void *chan_waiter(void *arg)
{
    struct waits *w = arg;
    int v;

    return wt_ptr(weave_chan_recv_timeout(w->c, &v, 10000));
}

static void *mutex_waiter(void *arg)
{
    struct waits *w = arg;

    if (weave_mutex_lock(&w->m) != 0)
        return wt_ptr(-1);
    return wt_ptr(weave_mutex_unlock(&w->m));
}

static void *sem_waiter(void *arg)
{
    return wt_ptr(weave_sem_acquire(&((struct waits *)arg)->sem));
}

static void *event_waiter(void *arg)
{
    return wt_ptr(weave_event_wait(&((struct waits *)arg)->ev));
}

static void *fd_waiter(void *arg)
{
    char c;

    return wt_ptr(weave_read(((struct waits *)arg)->p[0], &c, 1) == 1 ? 0 : -1);
}

static void *group_waiter(void *arg)
{
    return wt_ptr(weave_group_wait(((struct waits *)arg)->g, -1));
}

static void *joiner(void *arg)
{
    return wt_ptr(weave_join(arg, NULL));
}

/* Touch 40 KiB of the stack, then park. */
static void *deep(void *arg)
{
    volatile char buf[40 * 1024];

    memset((char *)buf, 1, sizeof(buf));
    (void)arg;
    return wt_ptr(weave_sleep(10000) + buf[100]);
}

WT_TEST(tasks_say_what_they_wait_on)
{
    struct waits w;
    weave_task *t[10], *child;
    weave_task_info i;
    weave_task_info few[2];

    w.c = weave_chan_new(sizeof(int), 0);
    ck_assert_ptr_nonnull(w.c);
    ck_assert_int_eq(weave_mutex_init(&w.m), 0);
    ck_assert_int_eq(weave_sem_init(&w.sem, 0), 0);
    ck_assert_int_eq(weave_event_init(&w.ev), 0);
    w.g = weave_group_new();
    ck_assert_ptr_nonnull(w.g);
    wt_make_pipe(w.p, O_NONBLOCK);
    ck_assert_int_eq(weave_mutex_lock(&w.m), 0);

    t[0] = WT_SPAWN(sleeper, NULL);
    t[1] = WT_SPAWN(chan_waiter, &w);
    t[2] = WT_SPAWN(mutex_waiter, &w);
    t[3] = WT_SPAWN(sem_waiter, &w);
    t[4] = WT_SPAWN(event_waiter, &w);
    t[5] = WT_SPAWN(fd_waiter, &w);
    t[6] = WT_SPAWN(group_waiter, &w);
    child = weave_group_spawn(w.g, sleeper, NULL);
    ck_assert_ptr_nonnull(child);
    t[7] = WT_SPAWN(joiner, t[0]);
    t[8] = WT_SPAWN(deep, NULL);
    t[9] = WT_SPAWN(wt_nothing, NULL); /* ends, unjoined */

    /* Before they run, every one is ready. */
    ck_assert_int_eq(info_of(weave_task_id(t[0])).state, WEAVE_TASK_READY);
    i = info_of(weave_task_id(weave_self()));
    ck_assert_int_eq(i.state, WEAVE_TASK_RUNNING);
    ck_assert_uint_eq(i.flags & WEAVE_TASK_MAIN, WEAVE_TASK_MAIN);
    ck_assert_uint_eq(i.id, 1);
    ck_assert_str_eq(i.name, weave_task_name(weave_self()));

    ck_assert_int_eq(weave_sleep(20), 0);

    i = info_of(weave_task_id(t[0]));
    ck_assert_int_eq(i.state, WEAVE_TASK_PARKED);
    ck_assert_int_eq(i.wait, WEAVE_WAIT_SLEEP);
    ck_assert_int_ge(i.parked_us, 20000);
    ck_assert_int_gt(i.timeout_us, 0);
    ck_assert_int_le(i.timeout_us, 10000 * 1000);
    ck_assert_str_eq(i.name, weave_task_name(t[0]));

    i = info_of(weave_task_id(t[1]));
    ck_assert_int_eq(i.wait, WEAVE_WAIT_CHAN);
    ck_assert_ptr_eq(i.wait_object, w.c);
    ck_assert_int_gt(i.timeout_us, 0);

    i = info_of(weave_task_id(t[2]));
    ck_assert_int_eq(i.wait, WEAVE_WAIT_MUTEX);
    ck_assert_ptr_eq(i.wait_object, &w.m);
    ck_assert_int_eq(i.timeout_us, -1);

    ck_assert_int_eq(info_of(weave_task_id(t[3])).wait, WEAVE_WAIT_SEM);
    ck_assert_ptr_eq(info_of(weave_task_id(t[3])).wait_object, &w.sem);
    ck_assert_int_eq(info_of(weave_task_id(t[4])).wait, WEAVE_WAIT_EVENT);

    i = info_of(weave_task_id(t[5]));
    ck_assert_int_eq(i.wait, WEAVE_WAIT_FD);
    ck_assert_int_eq(i.wait_fd, w.p[0]);

    i = info_of(weave_task_id(t[6]));
    ck_assert_int_eq(i.wait, WEAVE_WAIT_GROUP);
    ck_assert_ptr_eq(i.wait_object, w.g);

    i = info_of(weave_task_id(t[7]));
    ck_assert_int_eq(i.wait, WEAVE_WAIT_JOIN);
    ck_assert_uint_eq(i.wait_task, weave_task_id(t[0]));

    i = info_of(weave_task_id(t[8]));
    ck_assert_uint_eq(i.stack_size, WEAVE_STACK_DEFAULT);
    ck_assert_uint_ge(i.stack_used, 40 * 1024);
    ck_assert_uint_le(i.stack_used, i.stack_size);

    i = info_of(weave_task_id(t[9]));
    ck_assert_int_eq(i.state, WEAVE_TASK_ENDED);
    ck_assert_int_eq(i.wait, WEAVE_WAIT_NONE);

    /* A short array gets the first entries and the whole count. */
    ck_assert_int_eq(weave_tasks(few, 2), 12);
    ck_assert_uint_eq(few[0].id, 1);
    ck_assert_int_eq(weave_tasks(NULL, 0), 12);
    WT_FAILS(weave_tasks(NULL, 1), EINVAL);

    /* A cancelled waiter says so; then every one is let go. */
    ck_assert_int_eq(weave_cancel(t[0]), 0);
    ck_assert_int_eq(wt_int(WT_JOIN(t[7])), 0); /* it joined t[0], which was cancelled */
    ck_assert_int_eq(weave_chan_close(w.c), 0);
    ck_assert_int_eq(wt_int(WT_JOIN(t[1])), -1);
    ck_assert_int_eq(weave_mutex_unlock(&w.m), 0);
    ck_assert_int_eq(wt_int(WT_JOIN(t[2])), 0);
    ck_assert_int_eq(weave_sem_release(&w.sem), 0);
    ck_assert_int_eq(wt_int(WT_JOIN(t[3])), 0);
    ck_assert_int_eq(weave_event_set(&w.ev), 0);
    ck_assert_int_eq(wt_int(WT_JOIN(t[4])), 0);
    ck_assert_int_eq(write(w.p[1], "x", 1), 1);
    ck_assert_int_eq(wt_int(WT_JOIN(t[5])), 0);
    ck_assert_int_eq(weave_group_cancel(w.g), 0);
    WT_JOIN(t[6]);
    ck_assert_int_eq(weave_group_free(w.g), 0);
    ck_assert_int_eq(weave_cancel(t[8]), 0);
    WT_JOIN(t[8]);
    WT_JOIN(t[9]);
    ck_assert_int_eq(weave_tasks(NULL, 0), 1);
    ck_assert_int_eq(weave_chan_free(w.c), 0);
    ck_assert_int_eq(weave_close(w.p[0]), 0);
    ck_assert_int_eq(close(w.p[1]), 0);
    WT_ASSERT_IDLE();
}

START_TEST(tasks_outside_a_scheduler)
{
    weave_task_info i;

    WT_FAILS(weave_tasks(&i, 1), EPERM);
    WT_FAILS(weave_dump(2), EPERM);
}
END_TEST

/* ---- weave_dump ---------------------------------------------------------------- */

static void *named_sleeper(void *arg)
{
    (void)arg;
    (void)weave_sleep(10000);
    return NULL;
}

static void *m_dump(void *arg)
{
    char *out = arg;
    weave_task_opts o = {.name = "napper"};
    weave_task *t = weave_spawn_with(&o, named_sleeper, NULL);
    weave_task *j;
    int p[2];
    ssize_t n;

    ck_assert_ptr_nonnull(t);
    j = WT_SPAWN(joiner, t);
    ck_assert_int_eq(weave_yield(), 0);
    wt_make_pipe(p, O_NONBLOCK);
    ck_assert_int_eq(weave_dump(p[1]), 0);
    n = read(p[0], out, 4095);
    ck_assert_int_gt(n, 0);
    out[n] = '\0';
    WT_FAILS(weave_dump(-1), EBADF);
    ck_assert_int_eq(weave_cancel(t), 0);
    WT_JOIN(j);
    ck_assert_int_eq(close(p[0]), 0);
    ck_assert_int_eq(close(p[1]), 0);
    WT_ASSERT_IDLE();
    return NULL;
}

START_TEST(dump_lists_every_task)
{
    char out[4096];

    WT_RUN(m_dump, out);
    ck_assert_msg(strstr(out, "weave: 3 tasks: 1 running, 0 ready, 2 parked") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "napper") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "sleep") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "join task 2") != NULL, "%s", out);
    ck_assert_msg(strstr(out, " main") != NULL, "%s", out);
}
END_TEST

/* ---- deadlock ---------------------------------------------------------------------- */

static void *waits_forever(void *arg)
{
    int v;

    return wt_ptr(weave_chan_recv(arg, &v));
}

static void *m_deadlock(void *arg)
{
    weave_chan *c = weave_chan_new(sizeof(int), 0);
    weave_task_opts o = {.name = "stuck-receiver"};
    weave_task *t = weave_spawn_with(&o, waits_forever, c);

    (void)arg;
    (void)weave_join(t, NULL);
    (void)weave_chan_free(c);
    return NULL;
}

static unsigned deadlock_flags;

static void run_deadlock(void)
{
    weave_run_opts o = {.flags = deadlock_flags};

    if (weave_run_with(&o, m_deadlock, NULL, NULL) == -1 && errno == EDEADLK)
        _exit(7);
    _exit(1);
}

START_TEST(deadlock_prints_the_tasks)
{
    char out[8192];
    int st;

    deadlock_flags = 0;
    st = wt_run_child_capture(run_deadlock, out, sizeof(out));
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 7, "status %d: %s", st, out);
    ck_assert_msg(strstr(out, "weave: deadlock") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "stuck-receiver") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "chan 0x") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "join task 2") != NULL, "%s", out);
}
END_TEST

START_TEST(deadlock_dump_can_be_turned_off)
{
    char out[8192];
    int st;

    deadlock_flags = WEAVE_NO_DEADLOCK_DUMP;
    st = wt_run_child_capture(run_deadlock, out, sizeof(out));
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 7, "status %d: %s", st, out);
    ck_assert_msg(strstr(out, "weave:") == NULL, "%s", out); /* ASan may warn */
}
END_TEST

/* ---- the dump on a signal ------------------------------------------------------------ */

static void *m_signalled(void *arg)
{
    weave_task_opts o = {.name = "signal-napper"};
    weave_task *t = weave_spawn_with(&o, named_sleeper, NULL);

    (void)arg;
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(kill(getpid(), SIGUSR1), 0);
    ck_assert_int_eq(weave_sleep(50), 0);
    ck_assert_int_eq(kill(getpid(), SIGUSR1), 0); /* left pending at the end */
    ck_assert_int_eq(weave_cancel(t), 0);
    WT_JOIN(t);
    return NULL;
}

static void run_signalled(void)
{
    weave_run_opts o = {.dump_signal = SIGUSR1};

    if (weave_run_with(&o, m_signalled, NULL, NULL) != 0)
        _exit(1);
    /* SIGUSR1 is ours again, and what was pending was taken. */
    if (signal(SIGUSR1, SIG_DFL) == SIG_ERR)
        _exit(2);
    _exit(7);
}

START_TEST(dump_on_a_signal)
{
    char out[8192];
    int st = wt_run_child_capture(run_signalled, out, sizeof(out));

    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 7, "status %d: %s", st, out);
    ck_assert_msg(strstr(out, "signal-napper") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "weave: 2 tasks") != NULL, "%s", out);
}
END_TEST

START_TEST(bad_dump_signals_and_watchdogs)
{
    static const int bad[] = {-1, SIGKILL, SIGSTOP, SIGSEGV, SIGBUS, SIGABRT, SIGPIPE, 1000};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        weave_run_opts o = {.dump_signal = bad[i]};
        WT_FAILS(weave_run_with(&o, wt_nothing, NULL, NULL), EINVAL);
    }
    {
        weave_run_opts o = {.watchdog_ms = -5};
        WT_FAILS(weave_run_with(&o, wt_nothing, NULL, NULL), EINVAL);
    }
}
END_TEST

/* ---- the watchdog ---------------------------------------------------------------------- */

static int spin_yields;

static void *spinner(void *arg)
{
    int64_t t0 = wt_now_ns();

    (void)arg;
    /* Long enough for the watchdog's thread to sample it several times,
     * also under valgrind, which runs one thread at a time. */
    while (wt_ms_since(t0) < (WT_ON_VALGRIND ? 2000 : 400))
        if (spin_yields)
            (void)weave_yield();
    return NULL;
}

static void *m_watched(void *arg)
{
    weave_task_opts o = {.name = "spinner"};
    weave_task *t = weave_spawn_with(&o, spinner, NULL);

    (void)arg;
    ck_assert_ptr_nonnull(t);
    WT_JOIN(t);
    ck_assert_int_eq(weave_sleep(200), 0); /* idle is not a stall */
    return NULL;
}

static void run_watched(void)
{
    weave_run_opts o = {.watchdog_ms = 100};

    _exit(weave_run_with(&o, m_watched, NULL, NULL) == 0 ? 7 : 1);
}

START_TEST(watchdog_names_a_task_that_does_not_yield)
{
    char out[4096];
    int st;

    spin_yields = 0;
    st = wt_run_child_capture(run_watched, out, sizeof(out));
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 7, "status %d: %s", st, out);
    ck_assert_msg(strstr(out, "weave: watchdog: task 2 has run for") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "weave: watchdog: task 2 (spinner) ran") != NULL, "%s", out);
}
END_TEST

START_TEST(watchdog_is_quiet_when_tasks_yield)
{
    char out[4096];
    int st;

    spin_yields = 1;
    st = wt_run_child_capture(run_watched, out, sizeof(out));
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 7, "status %d: %s", st, out);
    ck_assert_msg(strstr(out, "weave:") == NULL, "%s", out); /* ASan may warn */
}
END_TEST

static Suite *introspect_suite(void)
{
    Suite *s = suite_create("introspect");
    TCase *list = tcase_create("list");
    TCase *report = tcase_create("report");

    tcase_set_timeout(list, 20);
    tcase_add_test(list, tasks_say_what_they_wait_on);
    tcase_add_test(list, tasks_outside_a_scheduler);
    tcase_add_test(list, dump_lists_every_task);
    suite_add_tcase(s, list);

    tcase_set_timeout(report, 30);
    wt_tag_native(report); /* processes, signals and the watchdog's thread */
    tcase_add_test(report, deadlock_prints_the_tasks);
    tcase_add_test(report, deadlock_dump_can_be_turned_off);
    tcase_add_test(report, dump_on_a_signal);
    tcase_add_test(report, bad_dump_signals_and_watchdogs);
    tcase_add_test(report, watchdog_names_a_task_that_does_not_yield);
    tcase_add_test(report, watchdog_is_quiet_when_tasks_yield);
    suite_add_tcase(s, report);
    return s;
}

int main(void)
{
    return wt_main(introspect_suite());
}
