/*
 * weave_test.h - helpers shared by weave's Check suites: the macros and
 * inline helpers below, and the functions of weave_test.c, which is built
 * into every suite.
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
#include <sys/socket.h>
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

#if defined(__SANITIZE_THREAD__)
#define WT_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define WT_TSAN 1
#endif
#endif
#ifndef WT_TSAN
#define WT_TSAN 0
#endif

#if WT_ASAN
#include <sanitizer/asan_interface.h>
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

/*
 * Define a Check test whose body runs as the main task of its own
 * scheduler:
 *
 *     WT_TEST(sleep_orders_wakeups)
 *     {
 *         ...asserts, inside a task...
 *     }
 *
 * registered like any test (tcase_add_test(tc, sleep_orders_wakeups)). The
 * test asserts that weave_run succeeded; the body takes no argument and
 * returns nothing. WT_TEST_WITH does the same with weave_run_with and the
 * options given as designated initializers:
 *
 *     WT_TEST_WITH(one_worker_serializes, .offload_threads = 1)
 *
 * A test that checks something after weave_run returns, or runs it more
 * than once, is written out with START_TEST and WT_RUN instead.
 */
#define WT_TEST(name)                                                                              \
    WT_TEST_TASK_(name)                                                                            \
    START_TEST(name)                                                                               \
    {                                                                                              \
        WT_RUN(wt_task_##name, NULL);                                                              \
    }                                                                                              \
    END_TEST                                                                                       \
    static void wt_body_##name(void)

#define WT_TEST_WITH(name, ...)                                                                    \
    WT_TEST_TASK_(name)                                                                            \
    START_TEST(name)                                                                               \
    {                                                                                              \
        const weave_run_opts o_ = {__VA_ARGS__};                                                   \
        errno = 0;                                                                                 \
        ck_assert_int_eq(weave_run_with(&o_, wt_task_##name, NULL, NULL), 0);                      \
    }                                                                                              \
    END_TEST                                                                                       \
    static void wt_body_##name(void)

/* The task that WT_TEST's scheduler runs: the test's body, declared here
 * and defined by the block after the macro. */
#define WT_TEST_TASK_(name)                                                                        \
    static void wt_body_##name(void);                                                              \
    static void *wt_task_##name(void *arg)                                                         \
    {                                                                                              \
        (void)arg;                                                                                 \
        wt_body_##name();                                                                          \
        return NULL;                                                                               \
    }

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

/* Send this process's stderr to a file until wt_stderr_end, which stores
 * what was written (NUL-terminated) in out. In process, so usable where
 * nothing may fork (qemu-user). */
static inline int wt_stderr_begin(void)
{
    FILE *f = tmpfile();
    int saved;

    ck_assert_ptr_nonnull(f);
    fflush(stderr);
    saved = dup(STDERR_FILENO);
    ck_assert_int_ge(saved, 0);
    ck_assert_int_eq(dup2(fileno(f), STDERR_FILENO), STDERR_FILENO);
    fclose(f); /* fd 2 keeps the file open */
    return saved;
}

static inline void wt_stderr_end(int saved, char *out, size_t cap)
{
    ssize_t n;

    fflush(stderr);
    n = pread(STDERR_FILENO, out, cap - 1, 0);
    out[n > 0 ? n : 0] = '\0';
    ck_assert_int_eq(dup2(saved, STDERR_FILENO), STDERR_FILENO);
    close(saved);
}

/* ---- weave_test.c ------------------------------------------------------- */

/* A task body (or offloaded function) that returns its argument. */
void *wt_nothing(void *arg);

/* weave_get_stats of the calling scheduler, asserting success. */
weave_stats wt_stats(void);

/* WT_ASSERT_IDLE, and no task waits for the offload pool either. Meant for
 * the end of a test's main task. */
void wt_assert_idle_offload(void);

/* Open fds of this process (the directory's own fd included, every time). */
int wt_fd_count(void);

/* Whether fd has O_NONBLOCK set. */
int wt_is_nonblocking(int fd);

/* pipe2 with flags | O_CLOEXEC, asserting success. */
void wt_make_pipe(int p[2], int flags);

/* A non-blocking, close-on-exec AF_UNIX socketpair of the given type. */
void wt_make_socketpair(int sv[2], int type);

/* Write until the fd (non-blocking) is full; returns the bytes written. */
size_t wt_fill(int fd);

/* Read everything there is from a non-blocking fd; returns the bytes read. */
size_t wt_drain(int fd);

/* The local address of a socket (getsockname, asserting success). */
struct sockaddr_storage wt_local_addr(int fd);

/* The port of an AF_INET or AF_INET6 address, in host order. */
unsigned wt_port_of_addr(const struct sockaddr_storage *ss);

/* The local port of a TCP or UDP socket. */
unsigned wt_port_of(int fd);

/* The local port of a socket as a string, for weave_tcp_connect. */
struct wt_port_str {
    char s[16];
};
struct wt_port_str wt_port_str(int fd);

/*
 * A scratch directory per test, for files and Unix sockets. Each test's
 * directory (wt_tmp_make) is made under a base directory per TCase, which
 * the parent process makes and removes around the TCase (an unchecked
 * fixture: wt_tmpbase_make from a suite's own fixture, wt_tmpbase_remove):
 * a test that fails ends its process at once, leaving its own behind.
 */

/* Make the base directory $TMPDIR/<name>-XXXXXX (/tmp without TMPDIR); on
 * failure there is none, and wt_tmp_make fails. */
void wt_tmpbase_make(const char *name);

/* Remove the base directory and everything left in it. */
void wt_tmpbase_remove(void);

/* Make this test's scratch directory. */
void wt_tmp_make(void);

/* The scratch directory made by wt_tmp_make. */
const char *wt_tmp_dir(void);

/* The path of name in the scratch directory, into out[cap]. */
void wt_tmp_path(char *out, size_t cap, const char *name);

/* Remove the scratch directory, asserting that it holds only files. */
void wt_tmp_cleanup(void);

/*
 * A gate that offloaded calls wait at until the test opens it, one byte per
 * call let through. The pipe stays blocking: weave never sees it.
 */
struct wt_gate {
    int p[2];
};

void wt_gate_init(struct wt_gate *g);

/* Let the next `calls` calls through. */
void wt_gate_open(struct wt_gate *g, int calls);

void wt_gate_destroy(struct wt_gate *g);

/* Wait at the gate until it lets this call through (blocks the thread). */
void wt_gate_pass(struct wt_gate *g);

/* An offloaded function that waits at the gate arg (a struct wt_gate *). */
void *wt_gate_fn(void *gate);

/* A task that holds a pool worker: it offloads wt_gate_fn(gate) and asserts
 * that the call succeeded once the gate let it through. */
void *wt_gate_task(void *gate);

/* A task that sleeps period_ms and counts a tick until stop is set. For
 * showing that the scheduler went on while something else waited. */
struct wt_ticker {
    int64_t period_ms;
    long ticks;
    int stop;
};
void *wt_ticker_task(void *ticker);

/* A task body that recurses until its stack overflows; never returns. */
void *wt_overflow_task(void *arg);

/* Tag a TCase whose tests need what only a native kernel gives: a process
 * of their own (they end in a signal or exit(), or fork), a thread (the
 * offload pool, a second scheduler), guard pages, address-space limits, or
 * memory handed back to the kernel (RSS).
 * The aarch64 build runs under qemu-user, which here can neither clone nor
 * emulate those: its run (preset aarch64-asm) uses CK_FORK=no and
 * CK_EXCLUDE_TAGS=native, and these cases run only in the native builds. */
static inline void wt_tag_native(TCase *tc)
{
    tcase_set_tags(tc, "native");
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
