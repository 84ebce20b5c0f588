/*
 * test_stack.c - task stacks: sizes, usable size, pooling and reuse, lazy
 * commit, many stacks at once, running out of address space, and stack
 * overflow (diagnosed and aborted, never silent).
 *
 * Under AddressSanitizer weave installs no overflow handler: ASan reports
 * the overflow itself, and aborts (weave_test.h makes abort_on_error the
 * default).
 *
 * Check timeouts: "core" 10 s x 8 tests, "overflow" 10 s x 5, "stress"
 * 60 s x 1 = 190 s; the CTest timeout in CMakeLists.txt (200 s) is above
 * their sum.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "weave_test.h"

#define KiB ((size_t)1024)
#define MiB ((size_t)1024 * 1024)

static weave_task *spawn_sized(size_t size, const char *name, weave_fn fn, void *arg)
{
    weave_task_opts o = {0};

    o.stack_size = size;
    o.name = name;
    return weave_spawn_with(&o, fn, arg);
}

/* ---- using the stack ------------------------------------------------------ */

/* Recurse through frames of about 4 KiB until depth frames are live. */
static size_t recurse(size_t depth)
{
    volatile char frame[4000];

    frame[0] = (char)depth;
    frame[sizeof(frame) - 1] = (char)depth;
    if (depth == 0)
        return 0;
    return recurse(depth - 1) + (size_t)frame[0] - (size_t)frame[sizeof(frame) - 1] + 1;
}

/* Touch bytes bytes of stack in one frame, page by page, top down. */
static void *touch_stack(void *arg)
{
    size_t bytes = (size_t)wt_int(arg);
    volatile char big[bytes];

    for (size_t i = bytes; i > 0; i -= 4096 < i ? 4096 : i)
        big[i - 1] = (char)i;
    big[0] = 1;
    return wt_ptr(big[0] + big[bytes - 1]);
}

static void *use_half_meg(void *arg)
{
    (void)arg;
    /* 128 frames of ~4 KiB: more than 512 KiB of live frames */
    return wt_ptr((intptr_t)recurse(128));
}

static void *m_big_stack(void *arg)
{
    weave_task *t;

    (void)arg;
    t = spawn_sized(MiB, "big", use_half_meg, NULL);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq((int)wt_int(WT_JOIN(t)), 128);
    /* The whole requested size is usable: all but a margin for the task's
     * entry frames (and ASan's redzones). */
    t = spawn_sized(MiB, "nearly-all", touch_stack, wt_ptr((intptr_t)(MiB - 16 * KiB)));
    ck_assert_ptr_nonnull(t);
    WT_JOIN(t);
    t = spawn_sized(WEAVE_STACK_MIN, "min", touch_stack,
                    wt_ptr((intptr_t)(WEAVE_STACK_MIN - 8 * KiB)));
    ck_assert_ptr_nonnull(t);
    WT_JOIN(t);
    WT_ASSERT_IDLE();
    return NULL;
}

START_TEST(big_stack_is_usable)
{
    WT_RUN(m_big_stack, NULL);
}
END_TEST

static void *m_default_size(void *arg)
{
    weave_task *t;

    (void)arg;
    /* Size 0 means the run's default, here 1 MiB: 512 KiB fit. */
    t = spawn_sized(0, NULL, use_half_meg, NULL);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq((int)wt_int(WT_JOIN(t)), 128);
    t = WT_SPAWN(use_half_meg, NULL);
    ck_assert_int_eq((int)wt_int(WT_JOIN(t)), 128);
    /* main itself got the default too */
    ck_assert_int_eq((int)wt_int(use_half_meg(NULL)), 128);
    WT_ASSERT_IDLE();
    return NULL;
}

START_TEST(run_default_stack_size_is_used)
{
    weave_run_opts o = {.default_stack_size = MiB};

    ck_assert_int_eq(weave_run_with(&o, m_default_size, NULL, NULL), 0);
}
END_TEST

static void *m_sizes(void *arg)
{
    static const size_t bad[] = {1,
                                 WEAVE_STACK_MIN - 1,
                                 WEAVE_STACK_MIN - 4096,
                                 WEAVE_STACK_MAX + 1,
                                 WEAVE_STACK_MAX + 4096,
                                 (size_t)1 << 40,
                                 SIZE_MAX / 2,
                                 SIZE_MAX - 4095,
                                 SIZE_MAX - 1,
                                 SIZE_MAX};
    static const size_t good[] = {0,
                                  WEAVE_STACK_MIN,
                                  WEAVE_STACK_MIN + 1,
                                  WEAVE_STACK_DEFAULT,
                                  WEAVE_STACK_DEFAULT - 1,
                                  3 * MiB + 7,
                                  WEAVE_STACK_MAX};
    weave_stats before = wt_stats(), after;

    (void)arg;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        WT_FAILS_NULL(spawn_sized(bad[i], "bad", wt_nothing, NULL), EINVAL);
    after = wt_stats();
    ck_assert_uint_eq(after.tasks_spawned, before.tasks_spawned); /* nothing made */
    ck_assert_uint_eq(after.stack_bytes_mapped, before.stack_bytes_mapped);
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        weave_task *t = spawn_sized(good[i], "good", wt_nothing, wt_ptr((intptr_t)i));
        ck_assert_msg(t != NULL, "size %zu: errno %d", good[i], errno);
        ck_assert_int_eq((int)wt_int(WT_JOIN(t)), (int)i);
    }
    /* opts may be NULL */
    {
        weave_task *t = weave_spawn_with(NULL, wt_nothing, wt_ptr(5));
        ck_assert_ptr_nonnull(t);
        ck_assert_int_eq((int)wt_int(WT_JOIN(t)), 5);
    }
    WT_ASSERT_IDLE();
    return NULL;
}

START_TEST(stack_size_limits)
{
    WT_RUN(m_sizes, NULL);
}
END_TEST

static void *m_run_sizes(void *arg)
{
    return arg;
}

START_TEST(run_stack_size_limits)
{
    static const size_t bad[] = {1, WEAVE_STACK_MIN - 1, WEAVE_STACK_MAX + 1, SIZE_MAX};
    static const size_t good[] = {0, WEAVE_STACK_MIN, 256 * KiB + 1};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        weave_run_opts o = {.default_stack_size = bad[i]};
        WT_FAILS(weave_run_with(&o, m_run_sizes, NULL, NULL), EINVAL);
    }
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        weave_run_opts o = {.default_stack_size = good[i]};
        void *res = NULL;
        ck_assert_int_eq(weave_run_with(&o, m_run_sizes, wt_ptr(9), &res), 0);
        ck_assert_ptr_eq(res, wt_ptr(9));
    }
}
END_TEST

/* ---- reuse, pooling, lazy commit ---------------------------------------- */

static void *m_reuse(void *arg)
{
    weave_task *t[100];
    weave_stats st, one, rest;
    uint64_t peak_bytes = 0;

    (void)arg;
    /* One task at a time: the same stack over and over, nothing mapped. */
    WT_JOIN(WT_SPAWN(wt_nothing, NULL));
    one = wt_stats();
    for (int i = 0; i < 5000; i++)
        WT_JOIN(WT_SPAWN(wt_nothing, NULL));
    st = wt_stats();
    ck_assert_uint_eq(st.stack_bytes_mapped, one.stack_bytes_mapped);
    ck_assert_uint_eq(st.stacks_cached, one.stacks_cached);

    /* Bursts of 100 tasks. The pool keeps one empty slab per size and
     * gives the others back, so a burst may map a slab again; but what
     * stays mapped between bursts, and what a burst maps, must not grow
     * from one burst to the next. */
    for (int round = 0; round < 50; round++) {
        for (int i = 0; i < 100; i++)
            t[i] = WT_SPAWN(wt_nothing, NULL);
        st = wt_stats();
        ck_assert_uint_eq(st.stacks_in_use, 101);
        /* Slabs grow (8, 16, ... 256 stacks) for the first few bursts. */
        if (round < 5)
            peak_bytes = st.stack_bytes_mapped > peak_bytes ? st.stack_bytes_mapped : peak_bytes;
        else
            ck_assert_uint_le(st.stack_bytes_mapped, peak_bytes);
        for (int i = 0; i < 100; i++)
            WT_JOIN(t[i]);
        st = wt_stats();
        if (round == 0)
            rest = st;
        else
            ck_assert_uint_eq(st.stack_bytes_mapped, rest.stack_bytes_mapped);
    }
    WT_ASSERT_IDLE();
    return NULL;
}

START_TEST(stacks_are_reused)
{
    WT_RUN(m_reuse, NULL);
}
END_TEST

static int kernel_at_least(int major, int minor)
{
    struct utsname u;
    int ma = 0, mi = 0;

    if (uname(&u) != 0 || sscanf(u.release, "%d.%d", &ma, &mi) != 2)
        return 0;
    return ma > major || (ma == major && mi >= minor);
}

static void *m_guard_mode(void *arg)
{
    weave_stats st = wt_stats();

    (void)arg;
    ck_assert_msg(st.guard_mode == 1 || st.guard_mode == 2, "guard_mode %d", st.guard_mode);
    /* Linux 6.13 has MADV_GUARD_INSTALL; weave must use it there (valgrind
     * may refuse the unknown madvise, and then mprotect is right). */
    if (kernel_at_least(6, 13) && !WT_ON_VALGRIND)
        ck_assert_int_eq(st.guard_mode, 1);
    ck_assert_uint_gt(st.stack_bytes_mapped, 0);
    WT_ASSERT_IDLE();
    return NULL;
}

START_TEST(guard_mode_reported)
{
    WT_RUN(m_guard_mode, NULL);
}
END_TEST

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, resident = 0;

    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fscanf(f, "%ld %ld", &size, &resident), 2);
    fclose(f);
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static void *sleep_a_while(void *arg)
{
    ck_assert_int_eq(weave_sleep((int64_t)wt_int(arg)), 0);
    return NULL;
}

static void *sleep_until_cancelled(void *arg)
{
    (void)arg;
    ck_assert_int_eq(weave_sleep(-1), -1);
    ck_assert_int_eq(errno, ECANCELED);
    return NULL;
}

static void *m_lazy(void *arg)
{
    enum { N = 2000 };
    static weave_task *t[N];
    long before, grown;

    (void)arg;
    before = rss_kib();
    for (int i = 0; i < N; i++) {
        t[i] = spawn_sized(MiB, NULL, sleep_a_while, wt_ptr(50));
        ck_assert_ptr_nonnull(t[i]);
    }
    ck_assert_int_eq(weave_sleep(10), 0); /* all are asleep now */
    grown = rss_kib() - before;
    /* 2000 MiB of stacks reserved; committed only where touched, a few
     * pages each (ASan adds shadow and fake stacks: allow 64 KiB). */
    ck_assert_msg(grown < N * 64, "RSS grew by %ld KiB for %d 1 MiB stacks", grown, N);
    for (int i = 0; i < N; i++)
        WT_JOIN(t[i]);
    WT_ASSERT_IDLE();
    return NULL;
}

START_TEST(stacks_are_committed_lazily)
{
    WT_RUN(m_lazy, NULL);
}
END_TEST

/* ---- many stacks ------------------------------------------------------- */

static void *m_many(void *arg)
{
    long n = (long)wt_int(arg);
    weave_task **t = calloc((size_t)n, sizeof(*t));
    weave_stats st, peak;

    ck_assert_ptr_nonnull(t);
    for (long i = 0; i < n; i++) {
        t[i] = weave_spawn(sleep_a_while, wt_ptr(100));
        ck_assert_msg(t[i] != NULL, "spawn %ld failed: errno %d", i, errno);
    }
    /* Behind every one of them: when we run again, all are asleep (the
     * timers fire only after this round, however long it took). */
    ck_assert_int_eq(weave_yield(), 0);
    peak = wt_stats();
    ck_assert_uint_eq(peak.tasks_live, (uint64_t)n + 1);
    ck_assert_uint_eq(peak.stacks_in_use, (uint64_t)n + 1);
    ck_assert_uint_eq(peak.timers_pending, (uint64_t)n);
    for (long i = 0; i < n; i++)
        WT_JOIN(t[i]);
    free(t);
    st = wt_stats();
    /* The slabs emptied are given back, but for one kept for reuse. */
    ck_assert_uint_lt(st.stack_bytes_mapped, peak.stack_bytes_mapped / 4);
    WT_ASSERT_IDLE();
    return NULL;
}

START_TEST(twenty_thousand_sleepers)
{
    /* The full 20,000 in the plain and ASan builds; under valgrind, whose
     * every task start costs milliseconds, 2,000. */
    long n = WT_ON_VALGRIND ? 2000 : 20000;

    WT_RUN(m_many, wt_ptr(n));
}
END_TEST

/*
 * Spawn until the address space runs out, then check that the failure was
 * a clean ENOMEM and that weave works on once the tasks have ended. The
 * limit leaves room for 8 stacks of 64 MiB and 40 MiB more: less than one
 * such stack, but plenty for the heap and, under valgrind, for valgrind's
 * own memory (which the limit counts too).
 */
#define BIG_STACK (64 * MiB)

static void *m_rlimit(void *arg)
{
    enum { MAX = 64 };
    static weave_task *t[MAX];
    struct rlimit *saved = arg, lim;
    long n = 0, pages = 0;
    int err = 0;
    FILE *f = fopen("/proc/self/statm", "r");

    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fscanf(f, "%ld", &pages), 1);
    fclose(f);
    lim = *saved;
    lim.rlim_cur = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + 8 * BIG_STACK + 40 * MiB;
    ck_assert_int_eq(setrlimit(RLIMIT_AS, &lim), 0);
    while (n < MAX) {
        t[n] = spawn_sized(BIG_STACK, NULL, sleep_until_cancelled, NULL);
        if (!t[n]) {
            err = errno;
            break;
        }
        n++;
    }
    ck_assert_int_eq(err, ENOMEM);
    ck_assert_int_ge(n, 6);
    ck_assert_int_le(n, 8);
#if WT_ASAN
    /* ASan (with detect_stack_use_after_return) gives each task that runs
     * a fake stack sized after its real one, about ten times 64 MiB here,
     * which the limit has no room for: lift it for ASan's sake before the
     * tasks first run. */
    ck_assert_int_eq(setrlimit(RLIMIT_AS, saved), 0);
#endif
    ck_assert_int_eq(weave_yield(), 0); /* the others are unaffected */
    ck_assert_uint_eq(wt_stats().tasks_live, (uint64_t)n + 1);
    for (long i = 0; i < n; i++) {
        ck_assert_int_eq(weave_cancel(t[i]), 0);
        WT_JOIN(t[i]);
    }
    /* Still under the limit, spawning works again, big stacks and small. */
    for (long i = 0; i < n; i++) {
        t[i] = spawn_sized(BIG_STACK, NULL, sleep_a_while, wt_ptr(1));
        ck_assert_msg(t[i] != NULL, "respawn %ld: errno %d", i, errno);
    }
    for (long i = 0; i < n; i++)
        WT_JOIN(t[i]);
    WT_JOIN(WT_SPAWN(sleep_a_while, wt_ptr(1)));
    ck_assert_int_eq(setrlimit(RLIMIT_AS, saved), 0);
    WT_ASSERT_IDLE();
    return NULL;
}

START_TEST(spawn_enomem_under_rlimit_as)
{
    struct rlimit saved;

    ck_assert_int_eq(getrlimit(RLIMIT_AS, &saved), 0);
    WT_RUN(m_rlimit, &saved);
}
END_TEST

/* ---- stack overflow ------------------------------------------------------- */

static void *m_overflow(void *arg)
{
    weave_task *t;

    (void)arg;
    WT_JOIN(WT_SPAWN(wt_nothing, NULL)); /* an id to skip: the culprit is 3 */
    t = spawn_sized(64 * KiB, "deep-recursion", wt_overflow_task, NULL);
    ck_assert_ptr_nonnull(t);
    WT_JOIN(t);
    ck_abort_msg("the overflowing task returned");
    return NULL;
}

START_TEST(overflow_aborts)
{
    /* Keep the expected report out of the test log. */
    ck_assert_ptr_nonnull(freopen("/dev/null", "w", stderr));
    weave_run(m_overflow, NULL, NULL);
}
END_TEST

static void overflow_child(void)
{
    weave_run(m_overflow, NULL, NULL);
}

START_TEST(overflow_names_the_task)
{
    static char out[16384];
    int status = wt_run_child_capture(overflow_child, out, sizeof(out));

    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
                  "child status 0x%x, stderr:\n%s", status, out);
#if !WT_ASAN
    ck_assert_msg(strstr(out, "stack overflow in task 3 (deep-recursion)") != NULL,
                  "stderr was:\n%s", out);
#else
    /* ASan reports it in its own words. */
    ck_assert_msg(strstr(out, "stack-overflow") != NULL, "stderr was:\n%s", out);
#endif
}
END_TEST

START_TEST(overflow_without_handler_is_sigsegv)
{
    weave_run_opts o = {.flags = WEAVE_NO_OVERFLOW_HANDLER};

    weave_run_with(&o, m_overflow, NULL, NULL);
}
END_TEST

/* A fault that is not an overflow goes to the handler that was there
 * before weave's. The fault is a write to a read-only page: a mapped
 * address, so that memcheck (which checks addressability, not protection)
 * lets the kernel raise the SIGSEGV instead of reporting an error. */
static void user_segv(int sig)
{
    (void)sig;
    _exit(7);
}

static void *write_read_only(void *arg)
{
    volatile int *p = (volatile int *)arg;

    *p = 1;
    return NULL;
}

static void *m_bad_write(void *arg)
{
    WT_JOIN(WT_SPAWN(write_read_only, arg));
    ck_abort_msg("the write to a read-only page returned");
    return NULL;
}

static void *read_only_page(void)
{
    void *p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    ck_assert_ptr_ne(p, MAP_FAILED);
    return p;
}

START_TEST(other_faults_reach_previous_handler)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = user_segv;
    sigemptyset(&sa.sa_mask);
    ck_assert_int_eq(sigaction(SIGSEGV, &sa, NULL), 0);
    weave_run(m_bad_write, read_only_page(), NULL);
}
END_TEST

START_TEST(other_faults_still_crash)
{
    weave_run(m_bad_write, read_only_page(), NULL);
}
END_TEST

static Suite *stack_suite(void)
{
    Suite *s = suite_create("stack");
    TCase *tc = tcase_create("core");
    TCase *ov = tcase_create("overflow");
    TCase *stress = tcase_create("stress");

    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, big_stack_is_usable);
    tcase_add_test(tc, run_default_stack_size_is_used);
    tcase_add_test(tc, stack_size_limits);
    tcase_add_test(tc, run_stack_size_limits);
    tcase_add_test(tc, stacks_are_reused);
    tcase_add_test(tc, guard_mode_reported);
    tcase_add_test(tc, stacks_are_committed_lazily);
    suite_add_tcase(s, tc);

    tc = tcase_create("limits");
    wt_tag_native(tc);
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, spawn_enomem_under_rlimit_as);
    suite_add_tcase(s, tc);

    tcase_set_timeout(ov, 10);
    wt_tag_native(ov);
    tcase_add_test_raise_signal(ov, overflow_aborts, SIGABRT);
    tcase_add_test(ov, overflow_names_the_task);
#if WT_ASAN
    /* ASan's own SIGSEGV handler reports and aborts. */
    tcase_add_test_raise_signal(ov, overflow_without_handler_is_sigsegv, SIGABRT);
    tcase_add_test_raise_signal(ov, other_faults_still_crash, SIGABRT);
#else
    tcase_add_test_raise_signal(ov, overflow_without_handler_is_sigsegv, SIGSEGV);
    tcase_add_test_raise_signal(ov, other_faults_still_crash, SIGSEGV);
#endif
    tcase_add_exit_test(ov, other_faults_reach_previous_handler, 7);
    suite_add_tcase(s, ov);

    tcase_set_timeout(stress, 60);
    tcase_add_test(stress, twenty_thousand_sleepers);
    suite_add_tcase(s, stress);
    return s;
}

int main(void)
{
    return wt_main(stack_suite());
}
