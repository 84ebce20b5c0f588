/*
 * test_errors.c - bad input and misuse, table by table (NOTES.md, F): every
 * call returns the documented error, never aborts, and leaves the scheduler
 * working.
 *
 * Check timeouts: "errors" 10 s x 13 tests = 130 s; the CTest timeout in
 * CMakeLists.txt (150 s) is above their sum.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <unistd.h>

#include "weave_test.h"

#if WT_ASAN
#include <sanitizer/lsan_interface.h>
#endif

/* Handles no weave call ever returned. */
static weave_task *const garbage[] = {
    NULL,
    (weave_task *)(uintptr_t)0x1234,
    (weave_task *)(uintptr_t)1,
    (weave_task *)(uintptr_t)UINTPTR_MAX,
    (weave_task *)(uintptr_t)0xdeadbeefcafef00dull,
};

/* Every call on handle h fails with err. */
static void handle_fails(weave_task *h, int err)
{
    void *res = wt_ptr(5);

    WT_FAILS(weave_join(h, &res), err);
    ck_assert_ptr_eq(res, wt_ptr(5)); /* untouched */
    WT_FAILS(weave_detach(h), err);
    WT_FAILS(weave_cancel(h), err);
    WT_FAILS(weave_cancelled(h), err);
    WT_FAILS_NULL(weave_task_name(h), err);
    errno = 0;
    ck_assert_uint_eq(weave_task_id(h), 0);
    ck_assert_int_eq(errno, err);
}

/* ---- outside a scheduler -------------------------------------------------- */

START_TEST(outside_a_task_eperm)
{
    int p[2];
    weave_stats st;
    weave_task_opts o = {.name = "x"};

    ck_assert_int_eq(pipe(p), 0);
    WT_FAILS(weave_sleep(10), EPERM);
    WT_FAILS(weave_sleep(0), EPERM);
    WT_FAILS(weave_sleep(-1), EPERM);
    WT_FAILS(weave_sleep_us(10), EPERM);
    WT_FAILS(weave_yield(), EPERM);
    WT_FAILS(weave_wait_fd(p[0], WEAVE_IN, 0), EPERM);
    WT_FAILS(weave_wait_fd(p[1], WEAVE_OUT, -1), EPERM);
    WT_FAILS_NULL(weave_spawn(wt_nothing, NULL), EPERM);
    WT_FAILS_NULL(weave_spawn_with(&o, wt_nothing, NULL), EPERM);
    WT_FAILS_NULL(weave_spawn_with(NULL, wt_nothing, NULL), EPERM);
    WT_FAILS_NULL(weave_self(), EPERM);
    WT_FAILS(weave_get_stats(&st), EPERM);
    for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++)
        handle_fails(garbage[i], EPERM);
    /* The clock works anywhere. */
    ck_assert_int_gt(weave_now_us(), 0);
    close(p[0]);
    close(p[1]);
}
END_TEST

START_TEST(fd_forget_and_close_outside_scheduler)
{
    int p[2];

    ck_assert_int_eq(pipe(p), 0);
    WT_FAILS(weave_fd_forget(-1), EBADF);
    WT_FAILS(weave_close(-1), EBADF);
    /* weave.h: outside a scheduler there is nothing to forget, and
     * weave_close is close(2). */
    ck_assert_int_eq(weave_fd_forget(p[0]), 0);
    ck_assert_int_eq(fcntl(p[0], F_GETFD), 0); /* still open */
    ck_assert_int_eq(weave_close(p[0]), 0);
    WT_FAILS(fcntl(p[0], F_GETFD), EBADF);
    WT_FAILS(weave_close(p[0]), EBADF);
    close(p[1]);
}
END_TEST

START_TEST(get_stats_null_einval)
{
    WT_FAILS(weave_get_stats(NULL), EINVAL);
}
END_TEST

WT_TEST(get_stats_null_in_task_einval)
{
    WT_FAILS(weave_get_stats(NULL), EINVAL);
    WT_ASSERT_IDLE();
}

/* ---- weave_run's own arguments --------------------------------------------- */

START_TEST(run_bad_arguments_einval)
{
    static const unsigned bad_flags[] = {1u << 4, 1u << 5, 1u << 31, ~0u,
                                         WEAVE_NO_OVERFLOW_HANDLER | (1u << 5)};
    static const size_t bad_stack[] = {1, WEAVE_STACK_MIN - 1, WEAVE_STACK_MAX + 1, SIZE_MAX};
    weave_run_opts o;
    void *res = wt_ptr(3);

    WT_FAILS(weave_run(NULL, NULL, &res), EINVAL);
    WT_FAILS(weave_run_with(NULL, NULL, NULL, &res), EINVAL);
    ck_assert_ptr_eq(res, wt_ptr(3));
    for (size_t i = 0; i < sizeof(bad_flags) / sizeof(bad_flags[0]); i++) {
        memset(&o, 0, sizeof(o));
        o.flags = bad_flags[i];
        WT_FAILS(weave_run_with(&o, wt_nothing, NULL, &res), EINVAL);
    }
    for (size_t i = 0; i < sizeof(bad_stack) / sizeof(bad_stack[0]); i++) {
        memset(&o, 0, sizeof(o));
        o.default_stack_size = bad_stack[i];
        WT_FAILS(weave_run_with(&o, wt_nothing, NULL, &res), EINVAL);
    }
    ck_assert_ptr_eq(res, wt_ptr(3));
    /* None of that left anything behind: runs work. */
    memset(&o, 0, sizeof(o));
    o.flags = WEAVE_NO_OVERFLOW_HANDLER;
    ck_assert_int_eq(weave_run_with(&o, wt_nothing, wt_ptr(4), &res), 0);
    ck_assert_ptr_eq(res, wt_ptr(4));
    ck_assert_int_eq(weave_run_with(NULL, wt_nothing, wt_ptr(6), &res), 0);
    ck_assert_ptr_eq(res, wt_ptr(6));
    WT_FAILS_NULL(weave_self(), EPERM); /* and it is gone again */
}
END_TEST

WT_TEST(nested_run_ebusy)
{
    weave_run_opts o = {0};

    WT_FAILS(weave_run(wt_nothing, NULL, NULL), EBUSY);
    WT_FAILS(weave_run_with(&o, wt_nothing, NULL, NULL), EBUSY);
    WT_JOIN(WT_SPAWN(wt_nothing, NULL));
    WT_ASSERT_IDLE();
}

static int lowest_free_fd(void)
{
    int fd = dup(0);

    ck_assert_int_ge(fd, 0);
    close(fd);
    return fd;
}

START_TEST(run_emfile_leaks_no_fd)
{
    struct rlimit saved, lim;
    int lowest = lowest_free_fd();
    int extra;

    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &saved), 0);
    /* Room for no fd, then for one more, ...: the scheduler's fds cannot
     * all be had, until they can. Whatever fails, no fd is left open. */
    for (extra = 0; extra < 8; extra++) {
        int r;

        lim = saved;
        lim.rlim_cur = (rlim_t)(lowest + extra);
        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &lim), 0);
        errno = 0;
        r = weave_run(wt_nothing, NULL, NULL);
        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &saved), 0);
        ck_assert_int_eq(lowest_free_fd(), lowest);
        if (r == 0)
            break;
        ck_assert_int_eq(r, -1);
        ck_assert_int_eq(errno, EMFILE);
        WT_FAILS_NULL(weave_self(), EPERM);
    }
    ck_assert_int_gt(extra, 0); /* it needs at least one fd */
    ck_assert_int_lt(extra, 8);
    ck_assert_int_eq(weave_run(wt_nothing, NULL, NULL), 0);
}
END_TEST

/* ---- arguments inside a task ------------------------------------------------ */

WT_TEST(bad_arguments_in_task)
{
    static const size_t bad_stack[] = {1, WEAVE_STACK_MIN - 1, WEAVE_STACK_MAX + 1, SIZE_MAX};
    static const int64_t bad_time[] = {-2, -1000, INT64_MIN};
    weave_task_opts o = {.name = "x"};
    weave_stats before, after;
    int p[2];

    ck_assert_int_eq(weave_get_stats(&before), 0);
    WT_FAILS_NULL(weave_spawn(NULL, NULL), EINVAL);
    WT_FAILS_NULL(weave_spawn_with(NULL, NULL, NULL), EINVAL);
    WT_FAILS_NULL(weave_spawn_with(&o, NULL, NULL), EINVAL);
    for (size_t i = 0; i < sizeof(bad_stack) / sizeof(bad_stack[0]); i++) {
        o.stack_size = bad_stack[i];
        WT_FAILS_NULL(weave_spawn_with(&o, wt_nothing, NULL), EINVAL);
    }
    ck_assert_int_eq(weave_get_stats(&after), 0);
    ck_assert_uint_eq(after.tasks_spawned, before.tasks_spawned);
    ck_assert_uint_eq(after.stack_bytes_mapped, before.stack_bytes_mapped);

    ck_assert_int_eq(pipe(p), 0);
    for (size_t i = 0; i < sizeof(bad_time) / sizeof(bad_time[0]); i++) {
        WT_FAILS(weave_sleep(bad_time[i]), EINVAL);
        WT_FAILS(weave_sleep_us(bad_time[i]), EINVAL);
        WT_FAILS(weave_wait_fd(p[0], WEAVE_IN, bad_time[i]), EINVAL);
    }
    WT_FAILS(weave_wait_fd(p[0], 0, 0), EINVAL);
    WT_FAILS(weave_wait_fd(p[0], 0x100, 0), EINVAL);
    WT_FAILS(weave_wait_fd(-1, WEAVE_IN, 0), EBADF);
    WT_FAILS(weave_fd_forget(-1), EBADF);
    WT_FAILS(weave_close(-1), EBADF);
    close(p[0]);
    close(p[1]);
    /* after all that, the scheduler works */
    ck_assert_int_eq((int)wt_int(WT_JOIN(WT_SPAWN(wt_nothing, wt_ptr(12)))), 12);
    ck_assert_int_eq(weave_sleep(1), 0);
    WT_ASSERT_IDLE();
}

/* ---- every size parameter at its limits ------------------------------------- */

static void *spawn_sized(size_t stack, size_t guard)
{
    weave_task_opts o = {.stack_size = stack, .guard_size = guard};
    weave_task *t = weave_spawn_with(&o, wt_nothing, wt_ptr(7));

    return t ? WT_JOIN(t) : NULL;
}

WT_TEST(sizes_at_their_limits)
{
    static char buf[64];
    weave_stream_opts so = {0};
    weave_stream *st;
    weave_select_case k = {.op = WEAVE_CASE_FD, .fd = 0, .events = WEAVE_IN};
    weave_chan *c;
    int p[2];

    /* Channels: the same bounds whatever the capacity (a rendezvous
     * channel copies elements as a buffered one does). */
    WT_FAILS_NULL(weave_chan_new(SIZE_MAX / 2, 0), EINVAL); /* the reproducer */
    WT_FAILS_NULL(weave_chan_new(SIZE_MAX, 0), EINVAL);
    WT_FAILS_NULL(weave_chan_new(WEAVE_CHAN_ELEM_MAX + 1, 0), EINVAL);
    WT_FAILS_NULL(weave_chan_new(WEAVE_CHAN_ELEM_MAX + 1, 1), EINVAL);
    WT_FAILS_NULL(weave_chan_new(2, (size_t)PTRDIFF_MAX / 2 + 1), EINVAL);
    WT_FAILS_NULL(weave_chan_new(1, SIZE_MAX), EINVAL);
    WT_FAILS_NULL(weave_chan_new(WEAVE_CHAN_ELEM_MAX, SIZE_MAX / 2), EINVAL);
    ck_assert_ptr_nonnull(c = weave_chan_new(WEAVE_CHAN_ELEM_MAX, 0));
    ck_assert_int_eq(weave_chan_free(c), 0);
    ck_assert_ptr_nonnull(c = weave_chan_new(0, SIZE_MAX)); /* signals: no buffer */
    ck_assert_int_eq(weave_chan_free(c), 0);

    /* Stacks and guards: the bounds themselves work, one past is EINVAL. */
    ck_assert_ptr_eq(spawn_sized(WEAVE_STACK_MIN, 0), wt_ptr(7));
    WT_FAILS_NULL(spawn_sized(WEAVE_STACK_MIN - 1, 0), EINVAL);
    WT_FAILS_NULL(spawn_sized(WEAVE_STACK_MAX + 1, 0), EINVAL);
    WT_FAILS_NULL(spawn_sized(SIZE_MAX, 0), EINVAL);
    ck_assert_ptr_eq(spawn_sized(0, WEAVE_GUARD_MAX), wt_ptr(7));
    WT_FAILS_NULL(spawn_sized(0, WEAVE_GUARD_MAX + 1), EINVAL);
    WT_FAILS_NULL(spawn_sized(0, SIZE_MAX), EINVAL);

    /* Streams: buffer sizes within [MIN, MAX], line_max at most read_size;
     * a read or write of more than SSIZE_MAX bytes is EINVAL. */
    ck_assert_int_eq(pipe(p), 0);
    so.read_size = WEAVE_STREAM_BUF_MIN - 1;
    WT_FAILS_NULL(weave_stream_new(p[0], &so), EINVAL);
    so.read_size = WEAVE_STREAM_BUF_MAX + 1;
    WT_FAILS_NULL(weave_stream_new(p[0], &so), EINVAL);
    so.read_size = SIZE_MAX;
    WT_FAILS_NULL(weave_stream_new(p[0], &so), EINVAL);
    so.read_size = 0;
    so.write_size = WEAVE_STREAM_BUF_MAX + 1;
    WT_FAILS_NULL(weave_stream_new(p[0], &so), EINVAL);
    so.write_size = 0;
    so.line_max = WEAVE_STREAM_BUF_DEFAULT + 1;
    WT_FAILS_NULL(weave_stream_new(p[0], &so), EINVAL);
    so.read_size = WEAVE_STREAM_BUF_MAX;
    so.write_size = WEAVE_STREAM_BUF_MIN;
    so.line_max = WEAVE_STREAM_BUF_MAX;
    ck_assert_ptr_nonnull(st = weave_stream_new(p[0], &so));
    WT_FAILS(weave_stream_read(st, buf, (size_t)SSIZE_MAX + 1), EINVAL);
    WT_FAILS(weave_stream_read_exact(st, buf, (size_t)SSIZE_MAX + 1), EINVAL);
    WT_FAILS(weave_stream_write(st, buf, (size_t)SSIZE_MAX + 1), EINVAL);
    WT_FAILS(weave_stream_peek(st, WEAVE_STREAM_BUF_MAX + 1, &(const void *){NULL}), EINVAL);
    ck_assert_int_eq(weave_stream_free(st), 0);

    /* I/O calls that write everything: more than SSIZE_MAX is EINVAL. */
    WT_FAILS(weave_write(p[1], buf, (size_t)SSIZE_MAX + 1), EINVAL);
    WT_FAILS(
        weave_writev(p[1], &(struct iovec){.iov_base = buf, .iov_len = (size_t)SSIZE_MAX + 1}, 1),
        EINVAL);
    close(p[0]);
    close(p[1]);

    /* select: more than INT32_MAX cases cannot be numbered. */
    WT_FAILS(weave_select(&k, (size_t)INT32_MAX + 1, 0), EINVAL);
    WT_FAILS(weave_select(&k, SIZE_MAX, 0), EINVAL);
    WT_ASSERT_IDLE();
}

/* ---- handles ---------------------------------------------------------------- */

WT_TEST(garbage_handles_esrch)
{
    weave_task *self = weave_self(), *t;

    for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++)
        handle_fails(garbage[i], ESRCH);
    /* A valid handle, altered: never confused with a live task. */
    t = WT_SPAWN(wt_nothing, NULL);
    handle_fails((weave_task *)((uintptr_t)t + 1000), ESRCH);
    handle_fails((weave_task *)((uintptr_t)t ^ ((uintptr_t)1 << 40)), ESRCH);
    handle_fails((weave_task *)((uintptr_t)self ^ ((uintptr_t)1 << 60)), ESRCH);
    WT_JOIN(t);
    ck_assert_uint_eq(weave_task_id(self), 1);
    WT_ASSERT_IDLE();
}

static weave_task *old_main, *old_task;

static void *m_first_run(void *arg)
{
    (void)arg;
    old_main = weave_self();
    old_task = WT_SPAWN(wt_nothing, NULL);
    ck_assert_int_eq(weave_yield(), 0);
    return NULL; /* old_task is left unjoined: released with the run */
}

static void *m_second_run(void *arg)
{
    weave_task *t;

    (void)arg;
    /* This run's main and first task sit where the old ones sat. */
    t = WT_SPAWN(wt_nothing, NULL);
    handle_fails(old_main, ESRCH);
    handle_fails(old_task, ESRCH);
    ck_assert_int_eq(weave_cancelled(t), 0);
    ck_assert_int_eq(weave_cancelled(weave_self()), 0);
    WT_JOIN(t);
    WT_ASSERT_IDLE();
    return NULL;
}

START_TEST(handle_from_finished_run_esrch)
{
    WT_RUN(m_first_run, NULL);
    handle_fails(old_main, EPERM); /* no scheduler here now */
    WT_RUN(m_second_run, NULL);
}
END_TEST

static void *m_count_runs(void *arg)
{
    (void)arg;
    return NULL;
}

static void *m_alias_check(void *arg)
{
    uint64_t id;

    (void)arg;
    WT_SPAWN(wt_nothing, NULL);
    errno = 0;
    id = weave_task_id(old_main);
    ck_assert_msg(id == 0 && errno == ESRCH,
                  "a main task handle from 255 runs ago names task %llu of this run "
                  "(errno %d); weave_cancel on it would cancel that task",
                  (unsigned long long)id, errno);
    errno = 0;
    id = weave_task_id(old_task);
    ck_assert_msg(id == 0 && errno == ESRCH,
                  "a stale task handle from 255 runs ago names task %llu of this run",
                  (unsigned long long)id);
    return NULL;
}

START_TEST(handle_from_earlier_runs_esrch)
{
    /* A handle stays stale however many schedulers this thread has run
     * since; weave tells schedulers apart by a tag carried in the handle,
     * which must not come round again. */
    WT_RUN(m_first_run, NULL);
    for (int i = 0; i < 254; i++)
        WT_RUN(m_count_runs, NULL);
    WT_RUN(m_alias_check, NULL);
}
END_TEST

/* ---- exit from a task ---------------------------------------------------- */

static void *exits(void *arg)
{
    (void)arg;
    exit(3);
}

static void *m_exit(void *arg)
{
    (void)arg;
    WT_SPAWN(wt_nothing, NULL);
    WT_JOIN(WT_SPAWN(exits, NULL));
    ck_abort_msg("exit(3) returned");
    return NULL;
}

START_TEST(exit_from_task)
{
#if WT_ASAN
    /* exit() from a task runs LeakSanitizer's check on the task's stack,
     * and LSan then scans that stack instead of the thread's own, where
     * Check keeps pointers to its records: they would be reported as
     * leaks. Tell LSan about the thread's stack. */
    pthread_attr_t attr;
    void *lo;
    size_t size;

    ck_assert_int_eq(pthread_getattr_np(pthread_self(), &attr), 0);
    ck_assert_int_eq(pthread_attr_getstack(&attr, &lo, &size), 0);
    pthread_attr_destroy(&attr);
    __lsan_register_root_region(lo, size);
#endif
    weave_run(m_exit, NULL, NULL);
}
END_TEST

static Suite *errors_suite(void)
{
    Suite *s = suite_create("errors");
    TCase *tc = tcase_create("errors");

    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, outside_a_task_eperm);
    tcase_add_test(tc, fd_forget_and_close_outside_scheduler);
    tcase_add_test(tc, get_stats_null_einval);
    tcase_add_test(tc, get_stats_null_in_task_einval);
    tcase_add_test(tc, run_bad_arguments_einval);
    tcase_add_test(tc, nested_run_ebusy);
    tcase_add_test(tc, run_emfile_leaks_no_fd);
    tcase_add_test(tc, bad_arguments_in_task);
    tcase_add_test(tc, sizes_at_their_limits);
    tcase_add_test(tc, garbage_handles_esrch);
    tcase_add_test(tc, handle_from_finished_run_esrch);
    tcase_add_test(tc, handle_from_earlier_runs_esrch);
    suite_add_tcase(s, tc);

    tc = tcase_create("exit");
    wt_tag_native(tc);
    tcase_set_timeout(tc, 10);
    tcase_add_exit_test(tc, exit_from_task, 3);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return wt_main(errors_suite());
}
