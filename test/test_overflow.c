/*
 * test_overflow.c - stack safety that does not depend on the user's
 * compiler flags, and fatal signals that name their task.
 *
 * Every case runs a scheduler in a forked child whose stderr is captured,
 * and checks how the child died and what it said. The user code that makes
 * large frames, stores through NULL and so on is in overflow_frames.c,
 * built without -fstack-clash-protection (and without UBSan): a frame
 * larger than a guard moves the stack pointer past it in one step.
 *
 * The frame cases put a victim task on the stack right below the culprit's
 * (same stack size and guard, spawned just before it, so the next stack of
 * the same slab) with a canary near the top of its stack. A SIGSEGV handler
 * of the user's, installed before weave_run, runs after weave's report and
 * says whether the canary is intact: for a frame the guard covers, the
 * fault must come before any byte below the guard is written.
 *
 * Under AddressSanitizer weave's handlers sit in front of ASan's: the line
 * naming the task is there too, and then ASan reports the fault in its own
 * words and aborts (the suites run with abort_on_error=1), so where the
 * fault reaches ASan's handler the child dies of SIGABRT.
 */
#include <alloca.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "overflow_frames.h"
#include "weave_test.h"

#define KiB ((size_t)1024)

/* What the forked child runs: set by a test before it forks. */
static struct {
    size_t frame;        /* bytes of the culprit's frame */
    int vla;             /* made with a VLA, else alloca */
    size_t guard;        /* weave_task_opts.guard_size of victim and culprit */
    size_t run_guard;    /* weave_run_opts.guard_size */
    unsigned flags;      /* weave_run_opts.flags */
    int user_handler;    /* install the canary-checking SIGSEGV handler */
    void (*crash)(void); /* what the culprit does, for the signal cases */
} plan;

static char out[32768]; /* the child's stderr */

static size_t page_size(void)
{
    return (size_t)sysconf(_SC_PAGESIZE);
}

/* ---- the victim and its canary --------------------------------------------- */

#define CANARY_BYTES 8192

static volatile unsigned char *canary; /* on the victim's stack */

static unsigned char canary_byte(size_t i)
{
    return (unsigned char)(0xa5 ^ (i * 7));
}

static void *victim(void *arg)
{
    /* alloca, not an array: with detect_stack_use_after_return an array
     * would live in ASan's fake stack, away from the task's stack. */
    volatile unsigned char *c = alloca(CANARY_BYTES);

    (void)arg;
    for (size_t i = 0; i < CANARY_BYTES; i++)
        c[i] = canary_byte(i);
    canary = c;
    weave_sleep(60 * 1000); /* the culprit kills the process first */
    return NULL;
}

/* The user's SIGSEGV handler: says whether the victim's canary survived,
 * then returns (weave aborts after an overflow). */
static void check_canary(int sig)
{
    static const char intact[] = "user handler: canary intact\n";
    static const char corrupt[] = "user handler: canary corrupted\n";
    static const char none[] = "user handler: no canary\n";
    int ok = 1;

    (void)sig;
    if (!canary) {
        (void)!write(STDERR_FILENO, none, sizeof(none) - 1);
        return;
    }
    for (size_t i = 0; i < CANARY_BYTES; i++)
        if (canary[i] != canary_byte(i))
            ok = 0;
    if (ok)
        (void)!write(STDERR_FILENO, intact, sizeof(intact) - 1);
    else
        (void)!write(STDERR_FILENO, corrupt, sizeof(corrupt) - 1);
}

static void install_user_handler(void (*fn)(int))
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = fn;
    sigemptyset(&sa.sa_mask);
    ck_assert_int_eq(sigaction(SIGSEGV, &sa, NULL), 0);
}

/* ---- the culprit ----------------------------------------------------------- */

static void *big_frame(void *arg)
{
    (void)arg;
    return wt_ptr((intptr_t)(plan.vla ? wt_frame_vla(plan.frame) : wt_frame_alloca(plan.frame)));
}

static void *crasher(void *arg)
{
    (void)arg;
    plan.crash();
    return NULL;
}

static weave_task *spawn_opts(size_t guard, const char *name, weave_fn fn)
{
    weave_task_opts o = {.stack_size = 128 * KiB, .name = name, .guard_size = guard};
    weave_task *t = weave_spawn_with(&o, fn, NULL);

    ck_assert_msg(t != NULL, "spawn %s: errno %d", name, errno);
    return t;
}

/* Main (task 1): the victim is task 2, the culprit task 3. */
static void *m_culprit(void *arg)
{
    weave_task *v, *c;

    (void)arg;
    v = spawn_opts(plan.guard, "victim", victim);
    ck_assert_int_eq(weave_yield(), 0); /* the victim lays its canary */
    ck_assert_ptr_nonnull((void *)canary);
    c = spawn_opts(plan.guard, plan.crash ? "crasher" : "big-frame",
                   plan.crash ? crasher : big_frame);
    WT_JOIN(c);
    (void)v;
    return NULL;
}

static void child(void)
{
    weave_run_opts o = {.guard_size = plan.run_guard, .flags = plan.flags};

    if (plan.user_handler)
        install_user_handler(check_canary);
    weave_run_with(&o, m_culprit, NULL, NULL);
    /* Reaching this line is the silent failure this suite is about. */
    (void)!write(STDERR_FILENO, "child: weave_run returned\n", 26);
}

/* Run the child; return its wait status, with its stderr in out. */
static int run_child(void)
{
    return wt_run_child_capture(child, out, sizeof(out));
}

static int has(const char *s)
{
    return strstr(out, s) != NULL;
}

/* The child died of signal sig. Under ASan a fault handed on to ASan's
 * handler ends in its report and SIGABRT instead. */
static void assert_died_of(int status, int sig)
{
    ck_assert_msg(WIFSIGNALED(status), "child exited (status 0x%x) instead of dying; stderr:\n%s",
                  status, out);
#if WT_ASAN
    if (WTERMSIG(status) == SIGABRT && sig != SIGABRT) {
        ck_assert_msg(has("AddressSanitizer"), "SIGABRT without ASan's report; stderr:\n%s", out);
        return;
    }
#endif
    /* memcheck's leak scan at the exit of a process dying of SIGBUS reads
     * the task stacks' guard regions (which it believes readable) and
     * valgrind then dies of SIGSEGV instead: the child did die, and weave's
     * line, checked by the caller, named the SIGBUS. */
    if (WT_ON_VALGRIND && sig == SIGBUS && WTERMSIG(status) == SIGSEGV)
        return;
    ck_assert_msg(WTERMSIG(status) == sig, "child died of signal %d, not %d; stderr:\n%s",
                  WTERMSIG(status), sig, out);
}

static void assert_says(const char *s)
{
    ck_assert_msg(has(s), "stderr lacks \"%s\"; it was:\n%s", s, out);
}

/* ---- frames the guard covers ----------------------------------------------- */

/* 136 KiB and 268 KiB frames (alloca and VLA) on a 128 KiB stack with the
 * default guard: the fault comes in the guard, the report names the task,
 * the victim below is untouched, the user's handler is called. */
START_TEST(default_guard_covers_frames)
{
    static const size_t frames[] = {136 * KiB, 268 * KiB};
    int status;

    plan.frame = frames[_i / 2];
    plan.vla = _i % 2;
    plan.user_handler = 1;
    status = run_child();
    assert_died_of(status, SIGABRT);
    assert_says("weave: stack overflow in task 3 (big-frame): fault at ");
    assert_says("-byte guard [");
    assert_says("user handler: canary intact");
    ck_assert_msg(!has("weave_run returned") && !has("corrupted"), "stderr:\n%s", out);
}
END_TEST

/* The plain case, no handler of the user's: SIGABRT and the report. */
START_TEST(frame_268k_reported)
{
    int status;

    plan.frame = 268 * KiB;
    plan.vla = 1;
    status = run_child();
    assert_died_of(status, SIGABRT);
    assert_says("weave: stack overflow in task 3 (big-frame): fault at ");
    assert_says(" in the 262144-byte guard [");
    assert_says(") below its 135168-byte stack");
}
END_TEST

/* guard_size per task and per scheduler: a 1 MiB guard covers a 768 KiB
 * frame on a 128 KiB stack, which would jump the default guard. */
START_TEST(bigger_guard_covers_bigger_frame)
{
    int status;

    plan.frame = 768 * KiB;
    plan.user_handler = 1;
    if (_i == 0)
        plan.guard = 1024 * KiB;
    else
        plan.run_guard = 1024 * KiB;
    status = run_child();
    assert_died_of(status, SIGABRT);
    assert_says("weave: stack overflow in task 3 (big-frame): fault at ");
    assert_says(" in the 1048576-byte guard [");
    assert_says("user handler: canary intact");
}
END_TEST

/*
 * A guard of one page (guard_size 1, rounded up) with frames far larger:
 * the frame jumps the guard and its first bytes land below, in the victim's
 * stack or its guard, so the victim's canary is not promised. What is: the
 * child never exits quietly. A frame written whole always reaches the guard
 * (it spans it), and a fault below the guard is recognised by the stack
 * pointer having left the stack; either way the report names the task.
 */
START_TEST(tiny_guard_never_silent)
{
    static const size_t frames[] = {136 * KiB, 268 * KiB};
    char guard_text[64];
    int status;

    plan.frame = frames[_i];
    plan.vla = 1;
    plan.guard = 1;
    plan.user_handler = 1; /* called too; what it finds is not asserted */
    status = run_child();
    assert_died_of(status, SIGABRT);
    ck_assert_msg(!has("weave_run returned"), "stderr:\n%s", out);
#if WT_ASAN
    /* The frame can land in a neighbour's mapped stack, where ASan's
     * instrumentation sees the wild write before any page faults: loud,
     * but ASan's report rather than weave's. */
    if (has("AddressSanitizer"))
        return;
#endif
    assert_says("weave: stack overflow in task 3 (big-frame): ");
    snprintf(guard_text, sizeof(guard_text), "%zu-byte guard", page_size());
    assert_says(guard_text);
    ck_assert_msg(!has("weave_run returned"), "stderr:\n%s", out);
}
END_TEST

/* Bad guard sizes are EINVAL, for a task and for a scheduler. */
static void *m_bad_guard(void *arg)
{
    static const size_t bad[] = {WEAVE_GUARD_MAX + 1, SIZE_MAX};
    weave_task_opts o = {.name = "x"};

    (void)arg;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        o.guard_size = bad[i];
        WT_FAILS_NULL(weave_spawn_with(&o, wt_nothing, NULL), EINVAL);
    }
    o.guard_size = WEAVE_GUARD_MAX;
    WT_JOIN(weave_spawn_with(&o, wt_nothing, NULL));
    o.guard_size = 1;
    WT_JOIN(weave_spawn_with(&o, wt_nothing, NULL));
    WT_ASSERT_IDLE();
    return NULL;
}

START_TEST(guard_size_limits)
{
    weave_run_opts o = {.guard_size = WEAVE_GUARD_MAX + 1};

    WT_FAILS(weave_run_with(&o, wt_nothing, NULL, NULL), EINVAL);
    o.guard_size = SIZE_MAX;
    WT_FAILS(weave_run_with(&o, wt_nothing, NULL, NULL), EINVAL);
    o.guard_size = 1;
    ck_assert_int_eq(weave_run_with(&o, m_bad_guard, NULL, NULL), 0);
    o.guard_size = 0;
    ck_assert_int_eq(weave_run_with(&o, m_bad_guard, NULL, NULL), 0);
}
END_TEST

/* ---- fatal signals in a task ----------------------------------------------- */

static void do_abort(void)
{
    abort();
}

static void do_raise_fpe(void)
{
    raise(SIGFPE);
}

static void do_divide(void)
{
    (void)wt_divide_by_zero(1);
}

static void do_bus(void)
{
    size_t pg = page_size();
    int fd = memfd_create("wt-bus", MFD_CLOEXEC);
    volatile char *p;

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, (off_t)pg), 0);
    p = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ck_assert_ptr_ne((void *)p, MAP_FAILED);
    ck_assert_int_eq(ftruncate(fd, 0), 0); /* the page now lies past the end */
    p[0] = 1;
}

static const struct {
    void (*crash)(void);
    int sig;
    const char *line; /* what the report says, after the task */
} crashes[] = {
    {wt_store_through_null, SIGSEGV,
     "weave: fatal signal SIGSEGV in task 3 (crasher): fault at 0x0 (address not mapped; a "
     "NULL pointer?)\n"},
    {do_abort, SIGABRT, "weave: fatal signal SIGABRT in task 3 (crasher): raised by the process"},
    {do_raise_fpe, SIGFPE, "weave: fatal signal SIGFPE in task 3 (crasher): raised by the process"},
#if defined(__x86_64__) || defined(__i386__)
    {do_divide, SIGFPE,
     "weave: fatal signal SIGFPE in task 3 (crasher): integer divide by zero at "
     "instruction 0x"},
#else
    {do_divide, SIGFPE, "weave: fatal signal SIGFPE in task 3 (crasher): raised by the process"},
#endif
    {do_bus, SIGBUS, "weave: fatal signal SIGBUS in task 3 (crasher): fault at 0x"},
    {wt_illegal_instruction, SIGILL, "weave: fatal signal SIGILL in task 3 (crasher): "},
};

START_TEST(fatal_signal_names_the_task)
{
    int status;

    plan.crash = crashes[_i].crash;
    status = run_child();
    assert_died_of(status, crashes[_i].sig);
    assert_says(crashes[_i].line);
}
END_TEST

/* A handler installed before weave_run still gets the fault, after weave's
 * line; here it ends the process its own way. The fault is a write to a
 * read-only page: an address memcheck finds addressable, so that valgrind
 * keeps the handler's exit status instead of its error exit code. */
static void user_exits(int sig)
{
    static const char msg[] = "user handler: called\n";

    (void)sig;
    (void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
    _exit(42);
}

static volatile int *read_only;

static void write_read_only(void)
{
    *read_only = 1;
}

static void chain_child(void)
{
    read_only = mmap(NULL, page_size(), PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne((void *)read_only, MAP_FAILED);
    install_user_handler(user_exits);
    plan.crash = write_read_only;
    weave_run(m_culprit, NULL, NULL);
}

START_TEST(previous_handler_is_called)
{
    int status = wt_run_child_capture(chain_child, out, sizeof(out));
    const char *line = strstr(out, "weave: fatal signal SIGSEGV in task 3 (crasher)");
    const char *user = strstr(out, "user handler: called");

    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 42, "status 0x%x; stderr:\n%s",
                  status, out);
    ck_assert_msg(line && user && line < user, "stderr:\n%s", out);
    assert_says("(access not permitted)");
}
END_TEST

/* ---- silence: the flag, outside a task, another thread -------------------- */

/* With WEAVE_NO_OVERFLOW_HANDLER weave says nothing, about a crash or an
 * overflow (the latter dies of the SIGSEGV of its guard). */
START_TEST(no_handler_flag_is_silent)
{
    int status;

    plan.flags = WEAVE_NO_OVERFLOW_HANDLER;
    if (_i == 0)
        plan.crash = wt_store_through_null;
    else
        plan.frame = 268 * KiB;
    status = run_child();
    assert_died_of(status, SIGSEGV);
    ck_assert_msg(!has("weave:"), "stderr:\n%s", out);
}
END_TEST

/* A run with the handlers installed, then one with the flag: the handlers
 * stay (they are process-wide) but name nothing for the second run. */
static void armed_then_flagged(void)
{
    weave_run_opts o = {.flags = WEAVE_NO_OVERFLOW_HANDLER};

    ck_assert_int_eq(weave_run(wt_nothing, NULL, NULL), 0);
    plan.crash = wt_store_through_null;
    weave_run_with(&o, m_culprit, NULL, NULL);
}

START_TEST(flag_silences_a_later_run)
{
    int status = wt_run_child_capture(armed_then_flagged, out, sizeof(out));

    assert_died_of(status, SIGSEGV);
    ck_assert_msg(!has("weave:"), "stderr:\n%s", out);
}
END_TEST

/* After weave_run has returned, a crash on the thread's own stack is not a
 * task's: it dies as it would have, silently. */
static void crash_after_run(void)
{
    ck_assert_int_eq(weave_run(wt_nothing, NULL, NULL), 0);
    wt_store_through_null();
}

/* A crash on a worker thread of the offload pool, while the task that
 * offloaded waits: not a task's either. */
static void *crash_on_worker(void *arg)
{
    (void)arg;
    wt_store_through_null();
    return NULL;
}

static void *m_offload_crash(void *arg)
{
    (void)arg;
    weave_offload(crash_on_worker, NULL, NULL);
    return NULL;
}

static void crash_on_other_thread(void)
{
    weave_run(m_offload_crash, NULL, NULL);
}

START_TEST(outside_a_task_is_silent)
{
    int status =
        wt_run_child_capture(_i == 0 ? crash_after_run : crash_on_other_thread, out, sizeof(out));

    assert_died_of(status, SIGSEGV);
    ck_assert_msg(!has("weave:"), "stderr:\n%s", out);
}
END_TEST

static void reset_plan(void)
{
    memset(&plan, 0, sizeof(plan));
    canary = NULL;
    out[0] = '\0';
}

static Suite *overflow_suite(void)
{
    Suite *s = suite_create("overflow");
    TCase *frames = tcase_create("frames");
    TCase *limits = tcase_create("limits");
    TCase *signals = tcase_create("signals");
    TCase *quiet = tcase_create("quiet");
    int ncrashes = (int)(sizeof(crashes) / sizeof(crashes[0]));

    /* Each test forks a child that dies (all of them native: processes,
     * guard pages, signals). */
    wt_tag_native(frames);
    tcase_set_timeout(frames, 20);
    tcase_add_checked_fixture(frames, reset_plan, NULL);
    tcase_add_loop_test(frames, default_guard_covers_frames, 0, 4);
    tcase_add_test(frames, frame_268k_reported);
    tcase_add_loop_test(frames, bigger_guard_covers_bigger_frame, 0, 2);
    tcase_add_loop_test(frames, tiny_guard_never_silent, 0, 2);
    suite_add_tcase(s, frames);

    tcase_set_timeout(limits, 10);
    tcase_add_test(limits, guard_size_limits);
    suite_add_tcase(s, limits);

    wt_tag_native(signals);
    tcase_set_timeout(signals, 20);
    tcase_add_checked_fixture(signals, reset_plan, NULL);
    tcase_add_loop_test(signals, fatal_signal_names_the_task, 0, ncrashes);
    tcase_add_test(signals, previous_handler_is_called);
    suite_add_tcase(s, signals);

    wt_tag_native(quiet);
    tcase_set_timeout(quiet, 20);
    tcase_add_checked_fixture(quiet, reset_plan, NULL);
    tcase_add_loop_test(quiet, no_handler_flag_is_silent, 0, 2);
    tcase_add_test(quiet, flag_silences_a_later_run);
    tcase_add_loop_test(quiet, outside_a_task_is_silent, 0, 2);
    suite_add_tcase(s, quiet);
    return s;
}

int main(void)
{
    return wt_main(overflow_suite());
}
