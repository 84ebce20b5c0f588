/*
 * weave_test.h - helpers shared by weave's Check suites.
 *
 * Every test runs weave_run inside its own body (Check forks a child per
 * test, and a scheduler made before the fork would share its epoll fd with
 * every child). Time is measured here with clock_gettime(CLOCK_MONOTONIC),
 * independently of weave_now, and asserted as lower bounds and order only;
 * the few upper bounds are generous and only catch hangs.
 */
#ifndef WEAVE_TEST_H
#define WEAVE_TEST_H

#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "weave.h"

#ifdef WEAVE_HAVE_VALGRIND_H
#include <valgrind/valgrind.h>
#define WT_ON_VALGRIND ((int)RUNNING_ON_VALGRIND)
#else
#define WT_ON_VALGRIND 0
#endif

#if defined(__SANITIZE_ADDRESS__)
#define WT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WT_ASAN 1
#endif
#endif
#ifndef WT_ASAN
#define WT_ASAN 0
#endif

#if WT_ASAN
#include <sanitizer/asan_interface.h>

/* A task that overflows its stack under ASan is reported by ASan, which
 * then exits with status 1 unless abort_on_error is set. The tests expect
 * SIGABRT, as without ASan, so make that the default here; ASAN_OPTIONS
 * still overrides it. */
const char *__asan_default_options(void)
{
    return "abort_on_error=1";
}
#endif

/* A generous bound that only catches hangs: wall time of a blocking call
 * that should end promptly (cancellation, a write that wakes a reader). */
#define WT_PROMPT_MS ((int64_t)(WT_ON_VALGRIND ? 20000 : 2000))

static inline int64_t wt_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline int64_t wt_ms_since(int64_t t0_ns)
{
    return (wt_now_ns() - t0_ns) / 1000000;
}

static inline void *wt_ptr(intptr_t v)
{
    return (void *)v;
}

static inline intptr_t wt_int(void *p)
{
    return (intptr_t)p;
}

/* Assert that a call failed with -1 (or NULL/0) and the given errno. */
#define WT_FAILS(call, err)                                                                        \
    do {                                                                                           \
        errno = 0;                                                                                 \
        ck_assert_int_eq((call), -1);                                                              \
        ck_assert_int_eq(errno, (err));                                                            \
    } while (0)

#define WT_FAILS_NULL(call, err)                                                                   \
    do {                                                                                           \
        errno = 0;                                                                                 \
        ck_assert_ptr_null((call));                                                                \
        ck_assert_int_eq(errno, (err));                                                            \
    } while (0)

/* Assert that the calling scheduler holds nothing but the calling task: no
 * other task, timer or fd waiter, and one stack. Meant for the end of a
 * test's main task. */
#define WT_ASSERT_IDLE()                                                                           \
    do {                                                                                           \
        weave_stats st_;                                                                           \
        ck_assert_int_eq(weave_get_stats(&st_), 0);                                                \
        ck_assert_uint_eq(st_.tasks_live, 1);                                                      \
        ck_assert_uint_eq(st_.tasks_zombie, 0);                                                    \
        ck_assert_uint_eq(st_.timers_pending, 0);                                                  \
        ck_assert_uint_eq(st_.fd_waiters, 0);                                                      \
        ck_assert_uint_eq(st_.stacks_in_use, 1);                                                   \
    } while (0)

/* Run main_fn as a test's scheduler; assert success and return its result. */
#define WT_RUN(main_fn, arg)                                                                       \
    ({                                                                                             \
        void *res_ = wt_ptr(-42);                                                                  \
        errno = 0;                                                                                 \
        ck_assert_int_eq(weave_run((main_fn), (arg), &res_), 0);                                   \
        res_;                                                                                      \
    })

/* Spawn and assert success. */
#define WT_SPAWN(fn, arg)                                                                          \
    ({                                                                                             \
        weave_task *t_ = weave_spawn((fn), (arg));                                                 \
        ck_assert_msg(t_ != NULL, "weave_spawn failed: errno %d", errno);                          \
        t_;                                                                                        \
    })

/* Join and assert success; returns the task's result. */
#define WT_JOIN(t)                                                                                 \
    ({                                                                                             \
        void *r_ = wt_ptr(-42);                                                                    \
        ck_assert_int_eq(weave_join((t), &r_), 0);                                                 \
        r_;                                                                                        \
    })

/* Run fn in a forked child with its stderr sent to a pipe; store what it
 * wrote (NUL-terminated) in out and return its wait status. For checking
 * the report of a child that dies. */
static inline int wt_run_child_capture(void (*fn)(void), char *out, size_t cap)
{
    int p[2], status = 0;
    size_t len = 0;
    ssize_t n;
    pid_t pid;

    ck_assert_int_eq(pipe(p), 0);
    fflush(stderr);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(p[1], STDERR_FILENO);
        close(p[0]);
        close(p[1]);
        fn();
        _exit(0);
    }
    close(p[1]);
    while (len + 1 < cap && (n = read(p[0], out + len, cap - 1 - len)) > 0)
        len += (size_t)n;
    out[len] = '\0';
    close(p[0]);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    return status;
}

/* Build a suite runner and run it in fork mode; returns main's status. */
static inline int wt_main(Suite *s)
{
    SRunner *sr = srunner_create(s);
    int failed;

    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif /* WEAVE_TEST_H */
