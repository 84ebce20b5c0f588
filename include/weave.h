/*
 * weave.h - stackful coroutines for C on Linux.
 *
 * weave runs many tasks on one thread. Each task has its own stack and reads
 * top to bottom; every call that would wait (sleep, join, fd readiness, I/O)
 * suspends only the calling task and lets the scheduler run another one.
 *
 * Conventions, shared by every function below:
 *
 *   - A function returning int returns 0 (or a non-negative count) on success
 *     and -1 with errno set on failure. A function returning a pointer returns
 *     NULL with errno set. No function aborts on a caller's mistake.
 *   - errno values mean the same everywhere:
 *       EINVAL     a bad argument
 *       EPERM      a blocking call made outside a task (no weave_run here)
 *       ECANCELED  the calling task was cancelled while or before blocking
 *       ETIMEDOUT  a timeout passed, or the deadline of a deadline scope
 *       EDEADLK    a task would wait on itself; or weave_run found that no
 *                  task could ever wake again
 *       EBADF      a bad fd, or an fd closed with weave_close under a waiter
 *       ENOMEM     no memory or no stack
 *       EBUSY      a scheduler already runs on this thread
 *       ESRCH      a task handle that is stale (joined, or released) or was
 *                  never valid on this thread
 *   - Time is int64_t milliseconds (or microseconds for the _us variants),
 *     relative to the call. -1 waits forever, 0 does not block, any other
 *     negative value is EINVAL. Deadlines are taken on CLOCK_MONOTONIC, so
 *     changes of the wall clock never move them.
 *   - A timer never fires early: a task that sleeps d resumes no sooner than
 *     d after the call. Timers fire in deadline order; equal deadlines fire
 *     in the order they were set. Signals never end a sleep early.
 *   - Blocking calls are cancellation points: once a task is cancelled, each
 *     of them returns -1 with ECANCELED at once, and keeps doing so (but
 *     see shields, below). They also obey deadline scopes: once the
 *     deadline of a scope the task is in has passed, each of them returns
 *     -1 with ETIMEDOUT.
 *   - Several tasks waiting on one thing (an fd in one direction, a task's
 *     end, a lock) are served in the order they began to wait. A waiter
 *     that is cancelled or times out leaves without disturbing the others.
 *
 * Threads: one scheduler per thread, started by weave_run (or made with
 * weave_sched_new and run, or stepped from another loop, on a thread of
 * its own). Several threads may each run their own. Tasks and handles
 * belong to the scheduler that made them and must not be passed to another
 * thread's weave calls (such a handle is reported as ESRCH); so do local
 * channels, locks, groups and streams (EPERM from another thread). What
 * crosses threads: weave_post, weave_call and shared channels (see
 * "Schedulers, threads and embedding"). Tasks never migrate: a task runs
 * on its scheduler's thread from its first instruction to its last, so
 * errno and every thread-local variable stay valid across each wait (a
 * compiler may keep a thread-local's address across a call, which is why
 * a stackful task moved between threads would be unsafe in C). Nothing
 * here is async-signal-safe.
 *
 * Handles: a weave_task pointer is an opaque 64-bit value, never memory.
 * weave recognises a stale handle (its task joined or released), one from
 * another scheduler and one from an earlier weave_run, and refuses it with
 * ESRCH; only after some 16 million reuses of one handle slot, or 2^40
 * weave_runs in the process, could a stale handle name a live task again.
 */
#ifndef WEAVE_H
#define WEAVE_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#if defined(__GNUC__)
#define WEAVE_API              __attribute__((visibility("default")))
#define WEAVE_DEPRECATED(what) __attribute__((deprecated(what)))
#else
#define WEAVE_API
#define WEAVE_DEPRECATED(what)
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ======================================================================== */
/*  Version */
/* ======================================================================== */

/*
 * The version of this header. These three lines are the one place the
 * version is written: the build reads them for the library's version and
 * soname, the CMake package and weave.pc. Below 1.0, a minor release may
 * change the ABI.
 */
#define WEAVE_VERSION_MAJOR 0
#define WEAVE_VERSION_MINOR 1
#define WEAVE_VERSION_PATCH 0

/* The version as one number, MAJOR * 10000 + MINOR * 100 + PATCH, for
 * comparisons in #if. */
#define WEAVE_VERSION_NUMBER                                                                       \
    (WEAVE_VERSION_MAJOR * 10000 + WEAVE_VERSION_MINOR * 100 + WEAVE_VERSION_PATCH)

/* The version of the library this program runs with, which may be newer
 * than the header it was compiled against: "MAJOR.MINOR.PATCH" as a static
 * string, and as the number WEAVE_VERSION_NUMBER would give. Neither fails. */
WEAVE_API const char *weave_version(void);
WEAVE_API int weave_version_number(void);

/* ======================================================================== */
/*  Limits */
/* ======================================================================== */

/*
 * Stack sizes. A task's stack is mmap'ed and committed lazily: a task that
 * touches one page costs one page of memory, whatever its size. Below each
 * stack sits a guard region (see Guards), so an overflow faults instead of
 * corrupting a neighbour; weave reports it as "stack overflow in task <id>
 * (<name>)" on stderr and aborts. A requested size is rounded up to whole
 * pages; the task's bookkeeping (its saved context, about 1 KiB) is kept on
 * an extra page above the stack, so the whole requested size is usable.
 *
 * A frame larger than the guard (a big array, a VLA or alloca) can move the
 * stack pointer past it in one step. Code built with -fstack-clash-protection
 * probes every page of such a frame on the way down and always meets the
 * guard: the CMake targets weave::weave and weave::weave_static and weave.pc
 * pass the flag on to the code that uses them, where the compiler has it.
 */
#define WEAVE_STACK_DEFAULT ((size_t)128 * 1024)         /* 128 KiB */
#define WEAVE_STACK_MIN     ((size_t)16 * 1024)          /* smaller: EINVAL */
#define WEAVE_STACK_MAX     ((size_t)1024 * 1024 * 1024) /* larger: EINVAL */

/*
 * Guards. Below each stack lies a guard region that faults when touched: a
 * frame that jumps a guard smaller than itself (a large array or alloca in
 * code built without -fstack-clash-protection) would write into the stack
 * below, so the default guard is large. Guards installed with
 * MADV_GUARD_INSTALL (Linux 6.13) cost no memory, only address space and
 * page-table entries; on older kernels they are PROT_NONE pages. The size is
 * rounded up to whole pages. Stacks with different guards never share a
 * slab, so a task given a small guard endangers only stacks with the same.
 *
 * What a guard of g bytes promises, for code built without stack clash
 * protection: an overflow by a frame of at most g bytes beyond the stack
 * faults in the guard before it writes a byte below it. A larger frame may
 * first write into whatever lies below (another task's stack); weave still
 * recognises the overflow (the stack pointer has left the stack) when the
 * fault comes, and names the task, but the damage below may be done.
 *
 * The default was chosen by measurement (bench/scale_bench --guard-kib,
 * 10^6 tasks of 128 KiB alive at once, Linux 6.18, MADV_GUARD_INSTALL).
 * A guard costs no resident memory (4.06 KiB a task, one page, at every
 * size) but page tables and address space, per task:
 *
 *     guard      page tables   address space
 *     4 KiB      273 bytes     136 KiB
 *     64 KiB     393 bytes     196 KiB
 *     256 KiB    778 bytes     388 KiB
 *     1 MiB      2317 bytes    1156 KiB
 *
 * and a spawn that maps a new slab installs more guard entries (spawns
 * from the pool install none). 256 KiB covers any frame of up to 256 KiB
 * beyond the stack for about 0.5 KiB more page tables a task than one page
 * (an eighth of the page the task touches anyway); 1 MiB would cost 2 KiB
 * more (half of it). A million tasks reserve 370 GiB of the 128 TiB of
 * address space a process has.
 */
#define WEAVE_GUARD_DEFAULT ((size_t)256 * 1024)       /* 256 KiB */
#define WEAVE_GUARD_MAX     ((size_t)64 * 1024 * 1024) /* larger: EINVAL */

/* Task names longer than this (including the NUL) are truncated. */
#define WEAVE_NAME_MAX 32

/* ======================================================================== */
/*  Running and tasks */
/* ======================================================================== */

typedef struct weave_task weave_task; /* opaque handle; never dereference */
typedef void *(*weave_fn)(void *arg);

/* What weave_offload_with calls, on the scheduler's thread, for a call
 * whose result nobody will collect: result is fn's return value (NULL if
 * fn never ran) and arg the call's argument, to be freed. */
typedef void (*weave_discard_fn)(void *result, void *arg);

typedef struct weave_task_opts {
    size_t stack_size;    /* bytes; 0 = the scheduler's default */
    const char *name;     /* copied (see WEAVE_NAME_MAX); NULL = "task-<id>" */
    size_t guard_size;    /* bytes of guard below the stack, rounded up to
                          pages; 0 = the scheduler's default (see
                          WEAVE_GUARD_DEFAULT); above WEAVE_GUARD_MAX:
                          EINVAL */
    uint64_t reserved[5]; /* must be zero (else EINVAL): room for fields to
                             come, so that sizeof never changes */
} weave_task_opts;

/* Flags for weave_run_opts.flags. */
enum {
    /* Do not install weave's fatal-signal handlers (SIGSEGV, SIGBUS,
     * SIGILL, SIGFPE, SIGABRT) that name the task that crashed and the
     * task whose stack overflowed. They chain to any handler installed
     * before them, then let the default action happen. */
    WEAVE_NO_OVERFLOW_HANDLER = 1u << 0,
    /* Do not print the task list (weave_dump) on stderr when weave_run
     * finds a deadlock. */
    WEAVE_NO_DEADLOCK_DUMP = 1u << 1,
    /* A virtual clock, for tests: whenever every task waits on timers
     * alone (no fd, no offload call), time jumps to the earliest deadline
     * instead of passing, so an hour of timeouts runs in microseconds.
     * While a task waits on an fd or a worker, the clock follows real time.
     * Time spent running tasks is not counted. weave_now and every timeout
     * and deadline of the scheduler read this clock. */
    WEAVE_VIRTUAL_CLOCK = 1u << 2,
    /* Regular-file I/O never uses io_uring: it goes to the offload pool,
     * as it does in a build without liburing or where the kernel refuses
     * io_uring. The environment variable WEAVE_NO_IO_URING (set, and not
     * "" or "0") does the same for every scheduler of the process. See
     * "Regular files" under weave_read. */
    WEAVE_NO_IO_URING = 1u << 3
};

/* Options of weave_run_with. A zeroed struct means the defaults, and so
 * does a NULL opts: weave_run(f, a, r) is weave_run_with(NULL, f, a, r). */
typedef struct weave_run_opts {
    size_t default_stack_size; /* bytes; 0 = WEAVE_STACK_DEFAULT */
    unsigned offload_threads;  /* worker threads of weave_offload; 0 = 4 */
    unsigned flags;            /* WEAVE_NO_OVERFLOW_HANDLER | ... */
    size_t guard_size;         /* default guard below each stack, bytes,
                                  rounded up to pages; 0 = WEAVE_GUARD_DEFAULT;
                                  above WEAVE_GUARD_MAX: EINVAL */
    int dump_signal;           /* 0 = none; else a signal (SIGUSR1, say) on
                                  which weave_dump(2) runs between tasks; the
                                  signal is blocked on this thread and read
                                  through a signalfd */
    int64_t watchdog_ms;       /* 0 = off; else report on stderr a task that
                                  runs this long without giving up the thread */
    uint64_t reserved[8];      /* must be zero (else EINVAL): room for fields
                                  to come, so that sizeof never changes */
} weave_run_opts;

/*
 * Start a scheduler on the calling thread, run main_fn(arg) as its first
 * task and return when that task has finished. Tasks still alive then are
 * cancelled and run until they end (asyncio.run's behaviour); tasks nobody
 * joined are released. Nothing is left behind: no task, stack, fd or thread.
 * If result is not NULL, *result receives main_fn's return value.
 *
 * If at some point no task can run and none can ever be woken (no timers,
 * no fd or worker to wait for: every task waits on another), weave_run
 * cancels every task so they unwind, then returns -1 with EDEADLK; *result
 * is still set.
 *
 * Errors: EINVAL main_fn is NULL, or bad options; EBUSY a scheduler already
 * runs on this thread (a task called weave_run); ENOMEM, EMFILE, ENFILE the
 * scheduler's memory, epoll fd or first stack could not be had; EDEADLK;
 * EINTR a SIGINT or SIGTERM cancelled main (weave_cancel_on_signals).
 */
WEAVE_API int weave_run(weave_fn main_fn, void *arg, void **result);
WEAVE_API int weave_run_with(const weave_run_opts *opts, weave_fn main_fn, void *arg,
                             void **result);

/*
 * Create a task running fn(arg) and put it at the back of the run queue; the
 * caller keeps running (asyncio.create_task). The task must be joined or
 * detached once; one that is neither is released when weave_run returns. A
 * task spawned while weave_run is shutting down starts already cancelled.
 *
 * weave_spawn_with takes a stack size and a name; opts may be NULL for the
 * defaults.
 *
 * Errors: EINVAL fn is NULL, or opts->stack_size is nonzero and below
 * WEAVE_STACK_MIN or above WEAVE_STACK_MAX, or opts->guard_size is above
 * WEAVE_GUARD_MAX; EPERM no scheduler runs on this
 * thread; ENOMEM no memory, or no stack could be mapped (including when the
 * kernel's map count limit is reached); the other tasks are unaffected.
 */
WEAVE_API weave_task *weave_spawn(weave_fn fn, void *arg);
WEAVE_API weave_task *weave_spawn_with(const weave_task_opts *opts, weave_fn fn, void *arg);

/*
 * Wait for t to end, store its return value in *result (if result is not
 * NULL) and release t: the handle is stale from then on. If t has already
 * ended, returns at once without yielding.
 *
 * Errors: EPERM outside a task; EDEADLK t is the caller; ESRCH t is stale or
 * unknown (joined before, or released); EINVAL t is detached, is the main
 * task, or another task is already joining it; ECANCELED the caller was
 * cancelled and t has not ended (t stays joinable). A cancelled task can
 * still join a task that has ended, since that does not wait: this is how
 * cleanup code collects results while weave_run shuts down.
 */
WEAVE_API int weave_join(weave_task *t, void **result);

/*
 * Let t run on without being joined: it is released as soon as it ends (at
 * once if it already has). The handle must not be used afterwards.
 *
 * Errors: EPERM outside a task; ESRCH stale or unknown; EINVAL t is already
 * detached, is being joined, or is the main task.
 */
WEAVE_API int weave_detach(weave_task *t);

/*
 * Cancel t: from now on every blocking call of t returns -1 with ECANCELED,
 * and the one it is blocked in (if any) returns so at once. t still runs to
 * the end of its function, which is how it cleans up. Cancelling a task
 * that was cancelled before or has ended is harmless and returns 0; a task
 * may cancel itself.
 *
 * Errors: EPERM outside a task; ESRCH stale or unknown.
 */
WEAVE_API int weave_cancel(weave_task *t);

/* 1 if t has been cancelled, 0 if not; -1 with ESRCH or EPERM. */
WEAVE_API int weave_cancelled(const weave_task *t);

/* The calling task; NULL with EPERM outside a task. */
WEAVE_API weave_task *weave_self(void);

/*
 * t's name: the one given at spawn (truncated to WEAVE_NAME_MAX - 1 bytes)
 * or "task-<id>". Valid until t is released. NULL with ESRCH or EPERM.
 */
WEAVE_API const char *weave_task_name(const weave_task *t);

/* t's id: 1 for the main task, then counting up in spawn order; 0 with
 * ESRCH or EPERM. */
WEAVE_API uint64_t weave_task_id(const weave_task *t);

/*
 * Put the caller at the back of the run queue and let every task that is
 * runnable now run first. Expired timers and ready fds are taken in before
 * the caller runs again, so a yield loop never starves them.
 *
 * Returns 0; -1 with EPERM outside a task; -1 with ECANCELED if the caller
 * has been cancelled (it still yields first, so a cancelled task that keeps
 * yielding cannot starve the others).
 */
WEAVE_API int weave_yield(void);

/* ======================================================================== */
/*  Time */
/* ======================================================================== */

/*
 * Suspend the caller for ms milliseconds (us microseconds). 0 yields once
 * and returns; -1 sleeps until cancelled. Durations too large to represent
 * as a deadline are treated as -1.
 *
 * Returns 0 once the time has passed; -1 with ECANCELED if the task was or
 * became cancelled; EINVAL for a negative duration other than -1; EPERM
 * outside a task.
 */
WEAVE_API int weave_sleep(int64_t ms);
WEAVE_API int weave_sleep_us(int64_t us);

/* CLOCK_MONOTONIC in milliseconds (microseconds); usable from any thread,
 * inside or outside a scheduler. */
WEAVE_API int64_t weave_now(void);
WEAVE_API int64_t weave_now_us(void);

/* ======================================================================== */
/*  Timeouts and deadlines */
/* ======================================================================== */

/*
 * Deadline scopes (asyncio.timeout, Trio's fail_after). Between
 * weave_deadline_begin(&d, ms) and weave_deadline_end(&d), every blocking
 * call of the calling task fails with -1/ETIMEDOUT once ms have passed: a
 * call waiting then returns at the deadline, a call made after it fails at
 * once, and a weave_sleep longer than the time left returns -1/ETIMEDOUT
 * at the deadline (one that ends first returns 0). Blocking calls are
 * sleep, yield, join, wait_fd, every I/O call and helper, offload, and the
 * coordination calls.
 *
 *   - Scopes nest, and the nearest deadline wins; ending a scope restores
 *     the one around it. They apply to the task that began them only, not
 *     to tasks it spawns.
 *   - A timeout of 0 begins already expired; -1 never expires. A timeout
 *     below -1 is a mistake: the scope begins expired (a bad value never
 *     means "no deadline") and its end returns -1/EINVAL.
 *   - Scopes end in the reverse order of their begin, in the task that
 *     began them, before the function that began them returns (the struct
 *     is usually a local).
 *
 * weave_deadline_end returns 1 if this scope's own deadline has passed (a
 * call may have failed for it), 0 if not; -1 with EINVAL if d is not the
 * caller's innermost open scope (nothing is ended then) or was begun with
 * a bad timeout, EPERM outside a task.
 *
 * Shields (Trio's shielded cancel scopes). Between weave_shield_begin and
 * weave_shield_end, neither cancellation nor a deadline scope begun before
 * the shield interrupts a blocking call: cleanup code can still talk to a
 * peer, even in a task that was cancelled before the shield began. A
 * deadline scope begun inside the shield still applies, which is how such
 * cleanup is bounded. Once the shield ends, a cancelled task's blocking
 * calls fail with ECANCELED again, and an outer deadline that passed
 * meanwhile applies at once. Ending a shield ends the scopes begun inside
 * it that are still open. Outside a task both calls do nothing.
 *
 * The structs are the caller's (a local, usually) and must stay in place
 * until the scope ends; their fields are weave's.
 *
 * A scope left open by mistake (an early return that skips
 * weave_deadline_end or weave_shield_end) is found and dropped: once its
 * function has returned, its struct lies below the stack pointer of the
 * task's next weave call that obeys scopes (a blocking call, or a scope's
 * begin or end) made from the function it returned to, or from one above.
 * weave then writes one line on stderr naming the task and where the scope
 * was begun (a symbol where dladdr finds one, else an address), and goes
 * on as if that scope, and every scope the task began after it, had been
 * ended: a forgotten deadline no longer fails the task's calls, nor does a
 * forgotten shield keep a cancel out. The struct of a dropped scope is
 * never read again (its frame is gone); ending a dropped scope that is
 * still in place is EINVAL. A task that ends with scopes open gets the
 * same line. The check costs a blocking call one compare.
 *
 * What this cannot see: a call made from another function at the depth of
 * the one that returned (its frame covers the forgotten struct), and a
 * function the compiler inlined into its caller (its struct is in the
 * caller's frame, which has not returned). Until the task calls from a
 * frame above, such a scope still applies. With GCC and Clang,
 * WEAVE_DEADLINE_SCOPE and WEAVE_SHIELD_SCOPE below end themselves on
 * every way out of the block, early returns included: prefer them.
 *
 * Scopes nest at most WEAVE_SCOPE_MAX deep in one task. A deadline scope
 * beyond that begins expired and its end returns -1 with EMLINK; a shield
 * beyond that is not begun (it does not shield), and says so on stderr.
 */
#define WEAVE_SCOPE_MAX 32

struct weave_scope_private { /* private: weave's bookkeeping, do not touch */
    int64_t at;              /* the scope's own deadline, monotonic ns */
    int64_t saved;           /* the task's deadline before the scope */
    int kind;                /* deadline, shield, or not begun */
};

typedef struct weave_deadline {
    struct weave_scope_private priv;
} weave_deadline;

typedef struct weave_shield {
    struct weave_scope_private priv;
} weave_shield;

WEAVE_API void weave_deadline_begin(weave_deadline *d, int64_t timeout_ms);
WEAVE_API int weave_deadline_end(weave_deadline *d);
WEAVE_API void weave_shield_begin(weave_shield *s);
WEAVE_API void weave_shield_end(weave_shield *s);

/*
 * End d (s) if it is still open, leaving errno as it was: for cleanup code,
 * and for the macros below. A scope ended already is left alone.
 */
WEAVE_API void weave_deadline_cleanup(weave_deadline *d);
WEAVE_API void weave_shield_cleanup(weave_shield *s);

/*
 * Declare a deadline scope (a shield) named name and begin it; it ends by
 * itself when the block it is declared in is left, by its end, a return,
 * a break or a goto (GCC and Clang: the cleanup attribute). It may still be
 * ended by hand first (weave_deadline_end(&name), to learn whether its
 * deadline passed); then the automatic end does nothing:
 *
 *     int lookup(int key)
 *     {
 *         WEAVE_DEADLINE_SCOPE(d, 100);
 *         if (key < 0)
 *             return -1;             // d ends here
 *         return weave_sleep(10);    // and here
 *     }
 */
#if defined(__GNUC__)
/* name is the declared variable: it cannot be parenthesised. */
/* NOLINTBEGIN(bugprone-macro-parentheses) */
#define WEAVE_DEADLINE_SCOPE(name, timeout_ms)                                                     \
    weave_deadline name __attribute__((cleanup(weave_deadline_cleanup)));                          \
    weave_deadline_begin(&name, (timeout_ms))
#define WEAVE_SHIELD_SCOPE(name)                                                                   \
    weave_shield name __attribute__((cleanup(weave_shield_cleanup)));                              \
    weave_shield_begin(&name)
/* NOLINTEND(bugprone-macro-parentheses) */
#endif

/* ======================================================================== */
/*  Waiting on file descriptors */
/* ======================================================================== */

/* Same bits as POLLIN / POLLOUT / POLLERR / POLLHUP. */
enum { WEAVE_IN = 1, WEAVE_OUT = 4, WEAVE_ERR = 8, WEAVE_HUP = 16 };

/*
 * Wait until fd is ready for the requested events (WEAVE_IN, WEAVE_OUT or
 * both) or timeout_ms passes. Returns the mask of ready events: the
 * requested ones that are ready, plus WEAVE_ERR / WEAVE_HUP when the fd has
 * an error or the peer hung up (then every requested event is reported
 * ready, so the I/O call that follows returns the error or end of file).
 *
 * Tasks waiting on one fd in one direction take turns in the order they
 * came: the first waits for readiness, the others queue behind it, and each
 * looks at the fd again when its turn comes. The fd itself is left as it is (its
 * blocking mode is not changed). Regular files and directories are always
 * ready, as with poll(2). As with poll(2), readiness can be stale if
 * another task or process consumed the data first; use non-blocking fds.
 *
 * weave keeps a registration for every fd it has waited on. Close such an
 * fd with weave_close (which wakes its waiters with EBADF), or call
 * weave_fd_forget before close(2). A plain close(2) under a waiting task is
 * a mistake: the kernel drops the registration silently and the waiter only
 * wakes by its timeout or cancellation.
 *
 * Errors: EBADF fd is negative or not open; EINVAL events is 0 or has bits
 * other than WEAVE_IN and WEAVE_OUT, or timeout_ms < -1; ETIMEDOUT the
 * timeout (or a deadline scope) passed, timeout 0: not ready now;
 * ECANCELED; EPERM outside a task; ENOMEM the kernel refused the
 * registration for lack of memory or watches.
 */
WEAVE_API int weave_wait_fd(int fd, int events, int64_t timeout_ms);

/*
 * Wake every task waiting on fd with -1/EBADF and drop weave's registration
 * and cached state of fd, without closing it, and give back its blocking
 * mode (below). Call it before handing an fd to code that will close(2) it,
 * or that expects it blocking again. Returns 0; -1 with EBADF for a
 * negative fd. Outside a scheduler there is nothing to forget: it returns 0.
 *
 * What weave changes on an fd it did not create, it changes back. The I/O
 * calls below switch a pollable fd of the caller's to O_NONBLOCK on first
 * use; that flag is on the open file description, which dups and other
 * processes share (a shell's terminal on stdin). weave clears it again:
 *
 *   - when the fd is forgotten: weave_fd_forget, and weave_close, before
 *     it closes the fd (so a dup elsewhere is blocking again);
 *   - for every fd still in use when weave_run returns.
 *
 * Only a flag weave set is cleared: an fd that was non-blocking already
 * stays so, and so do the fds weave makes itself (weave_accept's, the TCP
 * and Unix helpers'), which are non-blocking by design. When another fd
 * that weave still uses shares the description (a dup of it), the
 * description stays non-blocking until that one is forgotten in turn.
 * Schedulers on several threads should not share a description that
 * weave makes non-blocking: the first run to end clears the flag under the
 * others. Make it non-blocking yourself first, and weave leaves it alone.
 *
 * An fd closed with close(2) behind weave's back is a mistake: weave can
 * give nothing back to it. If its number is reused, weave checks that the
 * number still names the same file (fstat's st_dev and st_ino) before it
 * clears the flag, so a different file under that number is never touched;
 * but the same file opened again under the same number (a terminal, a
 * FIFO) cannot be told apart, and would have O_NONBLOCK cleared.
 */
WEAVE_API int weave_fd_forget(int fd);

/*
 * weave_fd_forget(fd), then close(2). Returns close's result. Usable outside
 * a scheduler too, where it is close(2).
 */
WEAVE_API int weave_close(int fd);

/* ======================================================================== */
/*  Sequential-looking I/O                                                   */
/* ======================================================================== */

/*
 * The POSIX calls of the same name, with the same arguments and results,
 * except that instead of blocking the thread they suspend the calling task
 * until the fd is ready. They try the call first, and park only on EAGAIN.
 * EINTR is retried. They work on any fd:
 *
 *   - Sockets, pipes, FIFOs, terminals and other pollable fds are switched
 *     to O_NONBLOCK on first use (the flag is on the open file description,
 *     so other processes sharing it see it too, until weave gives it back:
 *     see weave_fd_forget).
 *   - Regular files and block devices cannot be polled. A read (or write)
 *     is first tried with preadv2(RWF_NOWAIT), which succeeds at once for
 *     data in the page cache; what would block goes, so that a slow disk
 *     never stalls the other tasks, to one of two places:
 *       - the scheduler's io_uring (Linux 5.6+, liburing at build time),
 *         made by the first call that needs it: the kernel moves the bytes
 *         straight from or into the task's buffer at the fd's current
 *         position, with no copy, dup or thread of weave's. A task whose
 *         call is cancelled (or whose deadline passes, or whose fd is
 *         weave_close'd) asks the ring to cancel it and waits, shielded,
 *         until the kernel has let go of the buffer: the call then returns
 *         its own result if it completed first (the bytes moved, and so did
 *         the offset), else -1 with ECANCELED (ETIMEDOUT, EBADF). Up to 256
 *         calls are in the ring at once; later ones wait their turn in
 *         FIFO order. Two calls of different tasks on one fd at its
 *         current position, a read and a write at the same moment, may
 *         each start from the position as it was before the other moved
 *         it (the kernel does not lock the position for io_uring).
 *       - the offload pool, where the ring cannot be had: built without
 *         liburing, a kernel without io_uring or with io_uring_disabled,
 *         the WEAVE_NO_IO_URING run flag or environment variable, a run
 *         under valgrind (which knows too little of io_uring to check it),
 *         or, for one call, a failed submission. The call runs on a dup of
 *         the fd, through a buffer of weave's, at most 1 MiB a call. A
 *         cancelled task returns at once; a read or write already handed
 *         to a worker may still complete (and move the file offset).
 *     weave_stats.file_io_path says which one a scheduler uses.
 *
 * While weave_run runs, SIGPIPE is blocked on its thread: writing to a pipe
 * or socket whose reader has gone fails with EPIPE instead of killing the
 * process (a pending SIGPIPE is discarded when weave_run returns).
 *
 * weave_write, weave_writev and weave_send write everything unless an error
 * or cancellation stops them; they then return the count written so far if
 * it is not zero (the next call reports the error), else -1 and errno.
 *
 * Tasks sharing an fd take turns in each direction, in the order they came
 * (Go's net.Conn does the same): a call holds the fd's input or output side
 * while it waits, and a write that writes everything holds the output side
 * until it is done, so two tasks' messages never interleave. With
 * MSG_DONTWAIT in flags, the socket calls do not wait, not even for their
 * turn: they return -1 with EAGAIN as POSIX's do.
 *
 * A writer parked on a Unix stream socket whose peer did shutdown(SHUT_RD)
 * is not woken: the kernel never reports such a socket writable, though a
 * write fails with EPIPE. Close or cancel it. Close fds used here with
 * weave_close (which wakes the tasks waiting on them with EBADF), or call
 * weave_fd_forget before
 * close(2): weave caches per-fd state. fds made by weave_accept and the
 * helpers below come with their state fresh, already non-blocking.
 *
 * Errors, besides the POSIX call's own: EPERM outside a task; ECANCELED;
 * ETIMEDOUT a deadline scope passed; EBADF the fd was closed by weave_close
 * while the task waited; ENOMEM weave's per-fd state or the fd's epoll
 * registration could not be had. On a regular file (read on the offload
 * pool when it is not in the page cache): EMFILE, ENFILE the fd could not
 * be duplicated for the worker; EAGAIN no worker thread could be started.
 */
WEAVE_API ssize_t weave_read(int fd, void *buf, size_t count);
WEAVE_API ssize_t weave_write(int fd, const void *buf, size_t count);
WEAVE_API ssize_t weave_readv(int fd, const struct iovec *iov, int iovcnt);
WEAVE_API ssize_t weave_writev(int fd, const struct iovec *iov, int iovcnt);
/* fsync(2) and fdatasync(2), without blocking the scheduler: on a regular
 * file or block device through the scheduler's io_uring, or the offload
 * pool (see above), after the writes of other tasks that hold the fd's
 * output side; on any other fd, the plain call. Blocking calls like
 * weave_write (cancellation points, deadline scopes); a cancelled fsync
 * on the ring waits until the kernel has ended it, then returns 0 if it
 * completed, else ECANCELED. Errors: fsync's own (EIO, EINVAL for an fd
 * that cannot be synced, ...), and EPERM, ECANCELED, ETIMEDOUT, EBADF,
 * ENOMEM as weave_write. */
WEAVE_API int weave_fsync(int fd);
WEAVE_API int weave_fdatasync(int fd);
WEAVE_API ssize_t weave_recv(int fd, void *buf, size_t len, int flags);
WEAVE_API ssize_t weave_send(int fd, const void *buf, size_t len, int flags);
WEAVE_API ssize_t weave_recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *src,
                                 socklen_t *addrlen);
/* Sends one datagram (or one chunk on a stream socket), waiting for room. */
WEAVE_API ssize_t weave_sendto(int fd, const void *buf, size_t len, int flags,
                               const struct sockaddr *dst, socklen_t addrlen);
/* The accepted fd is non-blocking (accept4 with SOCK_NONBLOCK). EMFILE and
 * ENFILE are returned as they come; the listening fd stays usable. */
WEAVE_API int weave_accept(int fd, struct sockaddr *addr, socklen_t *addrlen);
/* Waits for a connection in progress to complete and reports its SO_ERROR. */
WEAVE_API int weave_connect(int fd, const struct sockaddr *addr, socklen_t addrlen);

/*
 * Helpers returning a ready fd (non-blocking, close-on-exec) or -1.
 *
 * weave_tcp_listen: bind host:port with SO_REUSEADDR and listen. host NULL
 * or "" listens on every address, IPv6 and IPv4 (one dual-stack socket
 * where the system allows, else IPv4); port "0" picks a free port, which
 * getsockname reports. Numeric hosts are parsed in place; names are resolved
 * on the offload pool, never blocking the scheduler.
 *
 * weave_tcp_connect: resolve host (the same way) and try each address in
 * turn until one connects; timeout_ms (-1 forever) bounds resolution and
 * connection together. Fails with the last address's error (ECONNREFUSED,
 * ETIMEDOUT, ...).
 *
 * weave_unix_listen / weave_unix_connect: a Unix stream socket at path. An
 * existing file at path is not removed (EADDRINUSE). A full backlog makes
 * weave_unix_connect retry, sleeping, until it connects or is cancelled.
 *
 * Errors: EINVAL bad arguments (NULL or empty port, a number above 65535,
 * a service name the system does not know, backlog < 0); ENAMETOOLONG path
 * too long; EPERM outside a task (the connect helpers and name
 * resolution); ECANCELED; ETIMEDOUT; and those of socket(2), bind(2) and
 * connect(2). A failed name resolution has errnos of its own; the first
 * three are ones that neither those calls nor a TCP connection give:
 *
 *   ENXIO   no such name, or it has no address (EAI_NONAME, EAI_NODATA,
 *           EAI_ADDRFAMILY)
 *   EAGAIN  a temporary resolver failure (EAI_AGAIN): try again later
 *   EIO     the resolver failed for good (EAI_FAIL)
 *   ENOMEM  (EAI_MEMORY); EAI_SYSTEM gives the errno the resolver saw.
 *
 * weave_resolve_error says more. EADDRNOTAVAIL is bind's or connect's own
 * ("Cannot assign requested address"), never a name's.
 */
WEAVE_API int weave_tcp_listen(const char *host, const char *port, int backlog);

/* Flags of weave_tcp_listen_with. */
enum {
    /* SO_REUSEPORT: several sockets (one per scheduler, each on a thread of
     * its own) listen on one port, and the kernel spreads the connections
     * among them: a scheduler per core (weave_run_threads). Beware: another
     * process of the same user listening with it on that port joins the
     * group silently and takes a share of the connections, where a plain
     * listen would fail with EADDRINUSE; take the port without the flag
     * first (demo/http_hello does) if that matters. */
    WEAVE_LISTEN_REUSEPORT = 1u << 0
};

/* weave_tcp_listen with flags (WEAVE_LISTEN_REUSEPORT); EINVAL for others. */
WEAVE_API int weave_tcp_listen_with(const char *host, const char *port, int backlog,
                                    unsigned flags);
WEAVE_API int weave_tcp_connect(const char *host, const char *port, int64_t timeout_ms);
WEAVE_API int weave_unix_listen(const char *path, int backlog);
WEAVE_API int weave_unix_connect(const char *path);

/*
 * The resolver's message (gai_strerror) for the last name resolution of
 * weave_tcp_listen or weave_tcp_connect that failed on this thread's
 * scheduler, such as "Name or service not known"; "" if none has failed. A successful resolution
 * does not clear it. The record belongs to the running weave_run: outside
 * one (before, after, or on another thread) this returns "". The string is
 * static: never free it.
 */
WEAVE_API const char *weave_resolve_error(void);

/* ======================================================================== */
/*  Buffered streams                                                         */
/* ======================================================================== */

/*
 * A buffered reader and writer over any fd the I/O calls above take (a
 * socket, a pipe, a terminal, a file): lines, delimited records, exact
 * counts and peeking on the read side, gathered writes and printf on the
 * write side (Go's bufio, asyncio's StreamReader and StreamWriter). Every
 * call that waits is built on weave_read and weave_write, so it is a
 * cancellation point and obeys deadline scopes like them.
 *
 * Nothing is lost to an interruption. A call that fails with ECANCELED,
 * ETIMEDOUT or another error after reading part of what it wanted (half a
 * line, say) consumes nothing: the bytes stay in the stream's buffer, and
 * the next call starts with them. A write that fails leaves the bytes it
 * had buffered in the buffer, for the next flush.
 *
 * Memory: the buffers are taken on first use. Unless the stream is made
 * with WEAVE_STREAM_KEEP_BUFFERS, each is given back whenever it becomes
 * empty (the read buffer once its last byte is consumed, the write buffer
 * once flushed), and a read that finds its buffer empty takes one only
 * once input is there: a stream waiting for input holds only its record
 * (under 100 bytes), so an idle connection costs little. Buffers given
 * back go to a cache of the scheduler, which hands them to the next stream
 * that needs one of the same size: a refill costs no malloc, and no system
 * call but the read itself (a read that comes back short from a TCP socket
 * or a pipe shows it emptied the fd, so the next read waits for input
 * without trying first). Limits of the cache, per scheduler: 128 KiB, in
 * buffers of at most 64 KiB, of at most 4 sizes at a time; beyond them a
 * buffer is freed when given back, and allocated anew when taken. The
 * cache is freed when the scheduler ends.
 *
 * A stream belongs to one task at a time: two tasks must not call it at
 * once (one may read while another writes only through separate streams
 * over the same fd). Output is not flushed by reads: flush before waiting
 * for a reply. Every call but weave_stream_new takes a stream from
 * weave_stream_new; NULL is EINVAL.
 *
 * Errors of every call that reads or writes: EPERM outside a task;
 * ECANCELED; ETIMEDOUT the stream's timeout or a deadline scope passed;
 * EBADF the fd was closed with weave_close while the task waited; and
 * those of read(2) and write(2) on the fd (ECONNRESET, EPIPE, ...).
 */
typedef struct weave_stream weave_stream; /* opaque */

/* Buffer sizes: the defaults, and the bounds of weave_stream_opts. */
#define WEAVE_STREAM_BUF_DEFAULT ((size_t)4096)
#define WEAVE_STREAM_BUF_MIN     ((size_t)16)               /* smaller: EINVAL */
#define WEAVE_STREAM_BUF_MAX     ((size_t)64 * 1024 * 1024) /* larger: EINVAL */

/* Flags for weave_stream_opts.flags. */
enum {
    /* Keep each buffer from its first use until the stream is closed,
     * instead of freeing it whenever it is empty. */
    WEAVE_STREAM_KEEP_BUFFERS = 1u << 0
};

/* Options of weave_stream_new. A zeroed struct (or NULL) means the defaults. */
typedef struct weave_stream_opts {
    size_t read_size;     /* read buffer, bytes; 0 = WEAVE_STREAM_BUF_DEFAULT */
    size_t write_size;    /* write buffer, bytes; 0 = WEAVE_STREAM_BUF_DEFAULT */
    size_t line_max;      /* longest record (delimiter included) the line and
                          until calls accept; 0 = read_size; at most
                          read_size */
    unsigned flags;       /* WEAVE_STREAM_KEEP_BUFFERS */
    uint64_t reserved[4]; /* must be zero (else EINVAL): room for fields to
                             come, so that sizeof never changes */
} weave_stream_opts;

/*
 * A stream over fd, which stays the caller's until weave_stream_close. No
 * buffer is allocated yet and no I/O is done: this works outside a task.
 * Errors: EBADF fd < 0; EINVAL a size outside [WEAVE_STREAM_BUF_MIN,
 * WEAVE_STREAM_BUF_MAX], line_max above read_size, or an unknown flag;
 * ENOMEM.
 */
WEAVE_API weave_stream *weave_stream_new(int fd, const weave_stream_opts *opts);

/*
 * Flush the output, close the fd with weave_close and free the stream. The
 * fd is closed and the stream freed even when the flush fails (output not
 * written then is lost): the call returns -1 with the flush's error, or
 * with close(2)'s. Unread input is discarded. A cancelled task's flush
 * fails with ECANCELED at once; to still deliver the output, close inside
 * a shield (weave_shield_begin), bounded by a deadline scope.
 */
WEAVE_API int weave_stream_close(weave_stream *s);

/*
 * Flush the output and free the stream, leaving the fd open (and weave's
 * state of it as it was): for handing the fd on. Unread input in the
 * buffer is discarded (peek it first if it matters). The stream is freed
 * even when the flush fails: -1 with the flush's error then.
 */
WEAVE_API int weave_stream_free(weave_stream *s);

/* The stream's fd; -1 with EINVAL for NULL. */
WEAVE_API int weave_stream_fd(const weave_stream *s);

/*
 * Bound every later call of s that waits: each one fails with ETIMEDOUT
 * once timeout_ms have passed since it first read or wrote the fd (a
 * deadline scope around the rest of the call, nested in the caller's own;
 * a call served from the buffers alone begins none). -1 (the default)
 * waits forever; 0 is a scope that begins expired: a call that would read
 * or write the fd fails at once, so only what is buffered can be had. A
 * call's timeout covers all the reads or writes it makes, so a peer
 * trickling bytes cannot stretch it. Errors: EINVAL timeout_ms < -1.
 */
WEAVE_API int weave_stream_set_timeout(weave_stream *s, int64_t timeout_ms);

/* Bytes buffered for reading: what the read calls can return without
 * waiting (0 for NULL). Never blocks. */
WEAVE_API size_t weave_stream_buffered(const weave_stream *s);

/* ---- reading --------------------------------------------------------------- */

/*
 * Read what is there: copy up to n buffered bytes into buf, or, with none
 * buffered, wait for input (one read of the fd; a request of at least the
 * buffer's size reads straight into buf). Returns the bytes copied (at
 * least 1), 0 at end of file, or -1. EINVAL buf NULL, n 0 or n above SSIZE_MAX.
 */
WEAVE_API ssize_t weave_stream_read(weave_stream *s, void *buf, size_t n);

/*
 * Read exactly n bytes into buf. Returns n, or fewer at end of file: the
 * count that came (0 if none), all of them in buf and consumed. When n is
 * at most the read buffer's size, a call that fails consumes nothing (what
 * came stays buffered for the next call). A larger n reads straight into
 * buf: stopped by an error after k > 0 bytes, it returns k (as weave_read
 * would: the next call reports the error); so a short count from a large
 * read means end of file or an error, and the next call tells which.
 * EINVAL buf NULL, n 0 or n above SSIZE_MAX.
 */
WEAVE_API ssize_t weave_stream_read_exact(weave_stream *s, void *buf, size_t n);

/*
 * Read one line, up to and including its '\n', into buf, and end it with a
 * NUL; a line ending in "\r\n" keeps both. Returns its length (the '\n'
 * included, the NUL not), 0 at end of file, or -1. The last line of the
 * input may end without '\n': it is returned as it is, and the next call
 * returns 0.
 *
 * Limits: a line of more than min(line_max, cap - 1) bytes (its '\n'
 * included) fails with EMSGSIZE and consumes nothing, so the caller can
 * still take the bytes: with a larger buf (if line_max allows), with
 * weave_stream_read, or by skipping them. EINVAL buf NULL or cap < 2.
 */
WEAVE_API ssize_t weave_stream_read_line(weave_stream *s, char *buf, size_t cap);

/*
 * As weave_stream_read_line, for any delimiter of dlen bytes ("\r\n\r\n",
 * say), which is included in what is returned; no NUL is added. A record
 * of more than min(line_max, cap) bytes (its delimiter included) fails
 * with EMSGSIZE and consumes nothing. At end of file the bytes left are
 * returned without a delimiter, then 0. EINVAL buf or delim NULL, cap 0,
 * dlen 0 or above line_max.
 */
WEAVE_API ssize_t weave_stream_read_until(weave_stream *s, const void *delim, size_t dlen,
                                          void *buf, size_t cap);

/*
 * Look without consuming. weave_stream_peek waits until at least n bytes
 * are buffered (or end of file), points *data at the buffered bytes and
 * returns how many there are (n or more; fewer only at end of file; 0 with
 * n 0 and nothing buffered, without waiting). weave_stream_peek_until
 * waits until the buffer holds the delimiter and returns the length of the
 * record up to and including it (at end of file without one, the bytes
 * left; 0 if none), under the same limit as weave_stream_read_until
 * (line_max, else EMSGSIZE). The pointer stays valid until the next call
 * on s that reads (the write calls leave the read buffer alone);
 * weave_stream_skip then consumes what was looked at, which together reads
 * a record without copying it.
 *
 * Errors: EINVAL data NULL, n above the read buffer's size, delim NULL,
 * dlen 0 or above line_max; EMSGSIZE; and the read errors.
 */
WEAVE_API ssize_t weave_stream_peek(weave_stream *s, size_t n, const void **data);
WEAVE_API ssize_t weave_stream_peek_until(weave_stream *s, const void *delim, size_t dlen,
                                          const void **data);

/*
 * Consume and discard n bytes, reading more as needed (a request body, the
 * rest of an overlong line). Returns n, or fewer at end of file; stopped
 * by an error after k > 0 bytes, it returns k (the next call reports the
 * error); -1 if nothing was skipped. n 0 returns 0.
 */
WEAVE_API int64_t weave_stream_skip(weave_stream *s, int64_t n);

/* ---- writing --------------------------------------------------------------- */

/*
 * Buffer n bytes for writing. What does not fit in the buffer's free room
 * makes the stream flush first; n of at least the buffer's size then goes
 * straight to the fd (weave_write), and is not buffered. Returns n. If the
 * flush fails, none of buf is taken and -1 is returned (the buffered bytes
 * stay for the next flush); a direct write stopped by an error after k > 0
 * bytes returns k, as weave_write does. EINVAL buf NULL with n > 0.
 */
WEAVE_API ssize_t weave_stream_write(weave_stream *s, const void *buf, size_t n);

/*
 * Format as printf(3) does and buffer the result, as weave_stream_write.
 * A result longer than the buffer is formatted into a temporary
 * allocation. Returns the bytes buffered or written; EINVAL fmt NULL;
 * EOVERFLOW the result exceeds INT_MAX bytes; ENOMEM.
 */
WEAVE_API int weave_stream_printf(weave_stream *s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/*
 * Write out everything buffered. Returns 0; on an error, -1, with the bytes
 * not written still buffered (a later flush retries them).
 */
WEAVE_API int weave_stream_flush(weave_stream *s);

/* ======================================================================== */
/*  Child processes                                                         */
/* ======================================================================== */

/*
 * Programs started from a task, asyncio's create_subprocess_exec: each of
 * the child's stdin, stdout and stderr is inherited, /dev/null, or a pipe
 * whose other end weave hands back as a non-blocking fd (for weave_read,
 * weave_write, weave_select) or a buffered stream. Waiting for the child
 * to end is a blocking call like the others: a cancellation point that
 * obeys deadline scopes, with a _timeout variant. Stopping the wait never
 * stops the child; weave_proc_kill does, with the signal you choose.
 *
 * How: posix_spawn (a vfork-style clone, so a large parent is not copied)
 * and a pidfd (Linux 5.4: pidfd_open, waitid(P_PIDFD)), which the poller
 * watches, so nothing of the program's own SIGCHLD handling is touched:
 * no handler is installed, the signal is neither blocked nor ignored. On
 * an older kernel the child is looked at with waitpid(WNOHANG) at growing
 * intervals (1 to 50 ms) while a task waits for it. A program that reaps
 * every child itself (waitpid(-1, ...) in a SIGCHLD handler) takes weave's
 * children too, as it would any library's: weave then reports ECHILD.
 *
 * A child is reaped exactly once, and never left a zombie: when its handle
 * is freed before it ends, weave reaps it when it ends (the poller tells);
 * when the scheduler ends with children still running, one thread made
 * for the purpose waits for them and reaps them, and then ends. Neither
 * kills the child. A handle lives until weave_proc_free or the end of the
 * scheduler that made it, which frees those left (their pipes closed,
 * unflushed stream output dropped): do not use one after weave_run
 * returns.
 *
 * Minimum kernel: 5.4 (pidfd_open and waitid(P_PIDFD)). Older kernels, or
 * a pidfd refused (EMFILE), fall back as above; a freed handle's child is
 * then reaped at the next weave_proc_spawn or at the scheduler's end.
 *
 * The child starts with no signal blocked (whatever weave blocks on its
 * threads) and SIGPIPE at its default action, and every fd of the parent
 * that is close-on-exec (weave opens all of its own so) is closed in it.
 *
 * A handle belongs to the thread whose task spawned it: calls from any
 * other thread are EPERM. Every call but weave_proc_pid needs a task.
 */
typedef struct weave_proc weave_proc;

/* What each of the child's stdin, stdout and stderr is. */
enum weave_proc_stdio {
    WEAVE_PROC_INHERIT = 0, /* the parent's fd 0, 1 or 2 (the default) */
    WEAVE_PROC_NULL = 1,    /* /dev/null */
    WEAVE_PROC_PIPE = 2     /* a pipe: weave_proc_fd, weave_proc_stream */
};

/* Flags of weave_proc_opts. WEAVE_PROC_NEW_GROUP: the child leads a new
 * process group, and weave_proc_kill signals the whole group (a shell and
 * what it started). */
#define WEAVE_PROC_NEW_GROUP 0x1u

/* Options of weave_proc_spawn. A zeroed struct (or NULL) means the
 * defaults: the caller's environment and working directory, every stdio
 * fd inherited. */
typedef struct weave_proc_opts {
    char *const *envp;    /* the child's environment; NULL: the caller's */
    const char *cwd;      /* the child's working directory; NULL: the caller's */
    int stdio[3];         /* enum weave_proc_stdio for stdin, stdout, stderr */
    unsigned flags;       /* WEAVE_PROC_NEW_GROUP; others are EINVAL */
    uint64_t reserved[4]; /* zero */
} weave_proc_opts;

/*
 * Start path with argv (argv[0] first, NULL-terminated), as execvp does: a
 * path without a slash is looked up in PATH. With cwd set, a relative path
 * is taken from there. Returns the child's handle, or NULL with errno set:
 * EINVAL (NULL path or argv, bad opts), ENOENT, EACCES, ENOEXEC, ENOTDIR
 * (path or cwd; what exec would report, found before the child starts
 * where it can be), EMFILE, ENFILE, ENOMEM, EAGAIN (process limit), EPERM
 * (no task). The pipes are made before the child starts, so a spawn that
 * fails leaves nothing open.
 */
WEAVE_API weave_proc *weave_proc_spawn(const char *path, char *const argv[],
                                       const weave_proc_opts *opts);

/* The child's pid (kept after it is reaped), or -1 with errno EINVAL. */
WEAVE_API pid_t weave_proc_pid(const weave_proc *p);

/*
 * weave's end of the pipe to the child's stdin (which 0), stdout (1) or
 * stderr (2): non-blocking and close-on-exec, owned by p (weave_proc_close
 * or weave_proc_free closes it; do not close it yourself). -1 with errno
 * EBADF if that stream is not a pipe or was closed, EINVAL for another
 * which.
 */
WEAVE_API int weave_proc_fd(const weave_proc *p, int which);

/*
 * A buffered stream over the pipe of which (as weave_proc_fd), made on the
 * first call and the same one after; owned by p (freed with it, and by
 * weave_proc_close). For stdin, flush what you write before you close it.
 * NULL with errno set as weave_proc_fd, or ENOMEM.
 */
WEAVE_API weave_stream *weave_proc_stream(weave_proc *p, int which);

/* Close weave's end of the pipe of which (and its stream): for stdin, the
 * child reads end of file. 0, or -1 with errno EBADF (not a pipe, or closed
 * already), EINVAL, EPERM. */
WEAVE_API int weave_proc_close(weave_proc *p, int which);

/*
 * Wait until the child ends and reap it; *status (if not NULL) gets its
 * status as waitpid(2) reports it (WIFEXITED, WEXITSTATUS, WIFSIGNALED,
 * WTERMSIG). Once reaped, every later call returns the same status at
 * once. Any number of tasks may wait for one child. 0, or -1 with errno:
 * ECANCELED, ETIMEDOUT (a deadline scope; the child keeps running), ECHILD
 * (someone else reaped it), EINVAL, EPERM.
 */
WEAVE_API int weave_proc_wait(weave_proc *p, int *status);

/* weave_proc_wait for at most timeout_ms (0: only look; -1: no timeout),
 * as inside a deadline scope of that length: ETIMEDOUT. */
WEAVE_API int weave_proc_wait_timeout(weave_proc *p, int *status, int64_t timeout_ms);

/*
 * Send sig to the child (through its pidfd, so never to a process that took
 * its pid after it was reaped), or to its whole process group if it was
 * started with WEAVE_PROC_NEW_GROUP. sig 0 checks that it can be signalled.
 * 0, or -1 with errno ESRCH (it was reaped already), EINVAL (bad sig),
 * EPERM. Does not wait: weave_proc_wait does.
 */
WEAVE_API int weave_proc_kill(weave_proc *p, int sig);

/* What weave_proc_communicate gathered. The buffers are the caller's to
 * free(); each is NUL-terminated (the NUL not counted). */
typedef struct weave_proc_output {
    char *out; /* all of stdout, or NULL if it was not a pipe */
    size_t out_len;
    char *err; /* all of stderr, or NULL if it was not a pipe */
    size_t err_len;
    int status; /* as weave_proc_wait's */
} weave_proc_output;

/*
 * Python's communicate(): write all of input (input_len bytes; NULL for
 * none) to the child's stdin pipe and close it, read its stdout and stderr
 * pipes to their end, all at once so that no full pipe can stall the
 * child, then wait for it. The pipes it reads to their end, and stdin, are
 * closed (weave_proc_fd is then EBADF); a stdin stream is flushed first,
 * and a stream with input buffered is EBUSY. One task does it all, so a
 * deadline scope or a cancel ends it: then -1 with ETIMEDOUT or ECANCELED, what was read is
 * freed, and the child keeps running (kill it, then wait). 0 with *out
 * filled; or -1 with errno: EPIPE is not an error here (a child that
 * closes its stdin early simply gets less), EINVAL (input without a stdin
 * pipe, NULL out), EBUSY, ENOMEM, EPERM, ECHILD. An output that was no
 * pipe is NULL; an empty one is "".
 */
WEAVE_API int weave_proc_communicate(weave_proc *p, const void *input, size_t input_len,
                                     weave_proc_output *out);

/*
 * Close p's pipes and free it and its streams (unflushed output is
 * dropped: weave_proc_close flushes). A child that has not been reaped is
 * reaped when it ends (it keeps running). A task waiting for p must have
 * stopped first: EBUSY. 0, or -1 with errno EINVAL, EPERM, EBUSY.
 */
WEAVE_API int weave_proc_free(weave_proc *p);

/* ======================================================================== */
/*  Coordination: task groups, channels, select, locks and signals          */
/* ======================================================================== */

/*
 * Everything here coordinates the tasks of one scheduler and never blocks
 * the thread. Every call that waits is a cancellation point and obeys
 * deadline scopes, and waiters are served in the order they came. A waiter
 * that is cancelled or times out leaves without taking or losing anything:
 * no element, permit, lock or wake-up is lost or handed out twice.
 *
 * Who may call, one rule for every object here: a call that takes, gives,
 * waits or wakes (send, receive, close, select, lock, unlock, signal,
 * acquire, release, set, clear, and spawning into, failing, cancelling,
 * waiting for a group) must be made by a task. Made outside one (before or
 * after weave_run, or on a thread with no scheduler), it fails with EPERM,
 * even when it would not have to wait. Making, initialising, destroying and
 * freeing an object, and the calls that only look (weave_chan_len,
 * weave_sem_value, weave_event_is_set, weave_group_size,
 * weave_group_result, weave_group_cancelled), work anywhere.
 *
 * An object belongs to the scheduler whose tasks use it. A call made on
 * another scheduler's thread that would have to wake or join tasks of the
 * first fails with EPERM.
 *
 * The _timeout variants run the call inside a deadline scope of timeout_ms
 * (weave_deadline_begin), and fail with ETIMEDOUT when it passes. As
 * everywhere, a timeout of 0 does not block: the call completes if it can
 * at once, else fails with ETIMEDOUT (it is still a cancellation point).
 */

/* Private: the links of weave's wait queues, inside the objects below. */
struct weave_link {
    struct weave_link *next, *prev;
};
struct weave_waitq { /* tasks waiting, in order; all zero: empty */
    struct weave_link waiters;
};

/* ---- task groups (asyncio.TaskGroup, gather) ---------------------------- */

typedef struct weave_group weave_group; /* opaque */

/* A new, empty group; NULL with ENOMEM. Its members must all be spawned by
 * tasks of one scheduler. */
WEAVE_API weave_group *weave_group_new(void);

/*
 * Spawn a member of g, as weave_spawn(_with) does. Members are numbered 0,
 * 1, ... in spawn order (see weave_group_result). The handle may be
 * cancelled, named or selected on, but it belongs to the group: joining or
 * detaching it is EINVAL, and it goes stale once the member has ended and
 * its result is kept by the group. A member spawned after the group failed
 * or was cancelled starts cancelled.
 *
 * Errors: EINVAL g or fn is NULL, or bad opts; EPERM outside a task, or g
 * has members of another scheduler; ENOMEM.
 */
WEAVE_API weave_task *weave_group_spawn(weave_group *g, weave_fn fn, void *arg);
WEAVE_API weave_task *weave_group_spawn_with(weave_group *g, const weave_task_opts *opts,
                                             weave_fn fn, void *arg);

/*
 * Spawn a member whose result nobody will read: it has no index, and its
 * record is freed as soon as it ends, so a group of them holds memory only
 * for the members running. Otherwise a member like any other (wait, fail,
 * cancel and free count it). For the connection tasks of a server.
 */
WEAVE_API weave_task *weave_group_spawn_detached(weave_group *g, weave_fn fn, void *arg);

/* Record err (> 0, an errno value) as g's error unless one was recorded
 * already (the first wins), and cancel every member that has not ended.
 * Any task may call it, a member too. Returns 0; EINVAL g NULL or err <= 0;
 * EPERM as above. */
WEAVE_API int weave_group_fail(weave_group *g, int err);

/*
 * Wait until every member spawned so far has ended, then return 0, or -1
 * with the group's error: the first given to weave_group_fail, or
 * ECANCELED after weave_group_cancel. Returns -1/ETIMEDOUT when timeout_ms
 * (or a deadline scope) passed first: the members keep running. Returns
 * -1/ECANCELED when the waiting task is cancelled: the members are
 * cancelled too, and weave_group_free waits for them. Several tasks may
 * wait at once.
 *
 * Errors besides: EINVAL g NULL or timeout_ms < -1; EDEADLK the caller is a
 * member of g; EPERM outside a task.
 */
WEAVE_API int weave_group_wait(weave_group *g, int64_t timeout_ms);

/* The result of member i (in spawn order), once it has ended: 0, with its
 * return value in *result (if not NULL). EINVAL g NULL or no member i;
 * EBUSY member i has not ended. */
WEAVE_API int weave_group_result(weave_group *g, size_t i, void **result);

/* How member i (in spawn order) ended: 1 if it was cancelled before its
 * function returned (by weave_group_fail, weave_group_cancel, a waiter's
 * cancellation or weave_cancel on its handle), 0 if it returned without
 * being cancelled. Its result (weave_group_result) is whatever its function
 * returned either way: NULL from a cancelled member and NULL from one that
 * finished are told apart here. -1 with EINVAL g NULL or no member i, EBUSY
 * member i has not ended. */
WEAVE_API int weave_group_cancelled(weave_group *g, size_t i);

/* The number of members spawned so far (0 for NULL). */
WEAVE_API size_t weave_group_size(const weave_group *g);

/* Cancel every member that has not ended; the group's error becomes
 * ECANCELED unless it has one. Returns 0; EINVAL; EPERM. */
WEAVE_API int weave_group_cancel(weave_group *g);

/*
 * Cancel the members that have not ended, wait for them to end (even if
 * the caller is cancelled: this wait is shielded), and free g. Returns 0;
 * EINVAL g NULL; EBUSY another task is in weave_group_wait(g), nothing is
 * freed; EDEADLK the caller is a member of g; EPERM members are left and
 * the caller is not a task of their scheduler.
 */
WEAVE_API int weave_group_free(weave_group *g);

/* ---- channels (Go's channels, asyncio.Queue) ----------------------------- */

typedef struct weave_chan weave_chan; /* opaque */

/*
 * A channel of elements of elem_size bytes (0 is allowed: a channel of pure
 * signals) holding up to capacity of them; capacity 0 makes a rendezvous
 * channel, where a send waits for a receiver to take the element. Elements
 * are copied in and out, and leave in the order they entered; an element
 * is at most WEAVE_CHAN_ELEM_MAX bytes (send a pointer to anything larger),
 * whatever the capacity. NULL with ENOMEM, or EINVAL for an elem_size above
 * WEAVE_CHAN_ELEM_MAX or a buffer (elem_size * capacity) above PTRDIFF_MAX.
 */
#define WEAVE_CHAN_ELEM_MAX ((size_t)16 * 1024 * 1024) /* 16 MiB */

WEAVE_API weave_chan *weave_chan_new(size_t elem_size, size_t capacity);

/*
 * Send a copy of the element at elem, waiting while the channel is full
 * (or, for a rendezvous channel, until a receiver takes it). Receive the
 * oldest element into elem, waiting while there is none.
 *
 * Errors: EPIPE the channel is closed (a receiver gets it once the buffer
 * is drained; a sender at once, also one that was waiting); EINVAL c NULL,
 * or elem NULL with elem_size > 0; ECANCELED; ETIMEDOUT; EPERM outside a
 * task, or another scheduler's tasks wait on c.
 */
WEAVE_API int weave_chan_send(weave_chan *c, const void *elem);
WEAVE_API int weave_chan_recv(weave_chan *c, void *elem);
WEAVE_API int weave_chan_send_timeout(weave_chan *c, const void *elem, int64_t timeout_ms);
WEAVE_API int weave_chan_recv_timeout(weave_chan *c, void *elem, int64_t timeout_ms);

/* As send and recv, but never wait: EAGAIN when they would (EPERM outside
 * a task, as for every channel call). */
WEAVE_API int weave_chan_try_send(weave_chan *c, const void *elem);
WEAVE_API int weave_chan_try_recv(weave_chan *c, void *elem);

/* Close c: receivers still get the buffered elements, then EPIPE; senders,
 * waiting or not, get EPIPE. Returns 0; EPIPE closed already; EINVAL;
 * EPERM. */
WEAVE_API int weave_chan_close(weave_chan *c);

/* Elements buffered now (0 for NULL). */
WEAVE_API size_t weave_chan_len(const weave_chan *c);

/* Free c. EBUSY tasks wait on it (nothing is freed); EINVAL c NULL. */
WEAVE_API int weave_chan_free(weave_chan *c);

/* ---- select -------------------------------------------------------------- */

enum { WEAVE_CASE_SEND = 1, WEAVE_CASE_RECV, WEAVE_CASE_FD, WEAVE_CASE_TASK };

typedef struct weave_select_case {
    int op;           /* WEAVE_CASE_* */
    weave_chan *chan; /* SEND, RECV */
    void *elem;       /* SEND: the element; RECV: where it goes (may be NULL) */
    int fd;           /* FD */
    int events;       /* FD: WEAVE_IN | WEAVE_OUT wanted; on return, those seen */
    weave_task *task; /* TASK: completes once the task has ended (it stays joinable) */
    int err;          /* on return: 0, or EPIPE for a closed channel, EBADF for an
                         fd closed with weave_close while the select waited */
} weave_select_case;

/*
 * Wait until one of the n cases can complete, complete exactly that one,
 * and return its index. A send completes when its element is taken or
 * buffered, a receive when an element arrives, an fd case when the fd is
 * ready for one of its events (events is set to what was seen), a task case
 * once the task has ended. A send or a receive on a closed channel (a
 * receive: once it is drained) completes with err = EPIPE.
 *
 * Fairness: when several cases are ready at the call, one of them is
 * chosen uniformly at random (Go's rule), so a case that is always ready
 * cannot starve another; when none is, the first to become ready wins.
 * With n = 0 it is a sleep of timeout_ms that ends in ETIMEDOUT.
 *
 * Errors: ETIMEDOUT timeout_ms (or a deadline scope) passed, 0: nothing
 * ready now; ECANCELED; EINVAL cases NULL with n > 0, an unknown op, a
 * NULL channel, a NULL elem to send on a channel with elem_size > 0, bad
 * events, timeout_ms < -1; EBADF a negative or closed fd; ESRCH a stale
 * task handle; EDEADLK a task case names the caller; EPERM outside a task;
 * ENOMEM (more than 16 cases need memory).
 */
WEAVE_API int weave_select(weave_select_case *cases, size_t n, int64_t timeout_ms);

/* ---- mutex, condition, semaphore, event ------------------------------------ */

/*
 * Statically initialisable (WEAVE_MUTEX_INIT, ...) or set up by _init; no
 * malloc. Their fields are weave's. An object may be destroyed (EBUSY while
 * held or waited on) and initialised again.
 *
 * weave_mutex: FIFO handoff. Unlock hands the mutex straight to the first
 * waiter, so no task can barge ahead of one that waits, and a waiter that
 * gave up (cancelled, timed out) never owns it. Not recursive: locking a
 * mutex the caller holds is EDEADLK. trylock: EBUSY when held. unlock:
 * EPERM when the caller does not hold it.
 */
typedef struct weave_mutex {
    uint64_t priv_owner;             /* key of the owning task, 0 if free */
    struct weave_waitq priv_waiters; /* tasks waiting for it */
    const void *priv_home;           /* the thread whose tasks use it, or NULL */
} weave_mutex;
#define WEAVE_MUTEX_INIT                                                                           \
    {                                                                                              \
        0, {{NULL, NULL}}, NULL                                                                    \
    }

WEAVE_API int weave_mutex_init(weave_mutex *m);
WEAVE_API int weave_mutex_destroy(weave_mutex *m);
WEAVE_API int weave_mutex_lock(weave_mutex *m);
WEAVE_API int weave_mutex_lock_timeout(weave_mutex *m, int64_t timeout_ms);
WEAVE_API int weave_mutex_trylock(weave_mutex *m);
WEAVE_API int weave_mutex_unlock(weave_mutex *m);

/*
 * weave_cond: weave_cond_wait releases m (which the caller must hold:
 * EPERM), waits for a signal, and takes m again before it returns, even on
 * error (ECANCELED, ETIMEDOUT): taking it back is not interrupted. No
 * spurious wake-ups, but the condition may have changed again by the time
 * the caller holds m: wait in a loop. signal wakes the longest waiter,
 * broadcast all of them; with no waiter they do nothing.
 */
typedef struct weave_cond {
    struct weave_waitq priv_waiters;
    const void *priv_home; /* the thread whose tasks use it, or NULL */
} weave_cond;
#define WEAVE_COND_INIT                                                                            \
    {                                                                                              \
        {{NULL, NULL}}, NULL                                                                       \
    }

WEAVE_API int weave_cond_init(weave_cond *c);
WEAVE_API int weave_cond_destroy(weave_cond *c);
WEAVE_API int weave_cond_wait(weave_cond *c, weave_mutex *m);
WEAVE_API int weave_cond_wait_timeout(weave_cond *c, weave_mutex *m, int64_t timeout_ms);
WEAVE_API int weave_cond_signal(weave_cond *c);
WEAVE_API int weave_cond_broadcast(weave_cond *c);

/*
 * weave_sem: a counting semaphore. release hands its permit straight to the
 * first waiter, if any. try_acquire: EAGAIN with no permit. release:
 * EOVERFLOW when the count is WEAVE_SEM_VALUE_MAX already.
 */
#define WEAVE_SEM_VALUE_MAX (~0u)
typedef struct weave_sem {
    unsigned priv_value;             /* permits */
    struct weave_waitq priv_waiters; /* tasks waiting for one */
    const void *priv_home;           /* the thread whose tasks use it, or NULL */
} weave_sem;
#define WEAVE_SEM_INIT(n)                                                                          \
    {                                                                                              \
        (n), {{NULL, NULL}}, NULL                                                                  \
    }

WEAVE_API int weave_sem_init(weave_sem *s, unsigned value);
WEAVE_API int weave_sem_destroy(weave_sem *s);
WEAVE_API int weave_sem_acquire(weave_sem *s);
WEAVE_API int weave_sem_acquire_timeout(weave_sem *s, int64_t timeout_ms);
WEAVE_API int weave_sem_try_acquire(weave_sem *s);
WEAVE_API int weave_sem_release(weave_sem *s);
/* Permits available now; -1 with EINVAL for NULL. */
WEAVE_API int64_t weave_sem_value(const weave_sem *s);

/*
 * weave_event (asyncio.Event): set wakes every waiter and lets every wait
 * return at once until clear. is_set returns 1 or 0 (-1 with EINVAL).
 */
typedef struct weave_event {
    int priv_set;                    /* 1 while set */
    struct weave_waitq priv_waiters; /* tasks waiting for it */
    const void *priv_home;           /* the thread whose tasks use it, or NULL */
} weave_event;
#define WEAVE_EVENT_INIT                                                                           \
    {                                                                                              \
        0, {{NULL, NULL}}, NULL                                                                    \
    }

WEAVE_API int weave_event_init(weave_event *e);
WEAVE_API int weave_event_destroy(weave_event *e);
WEAVE_API int weave_event_set(weave_event *e);
WEAVE_API int weave_event_clear(weave_event *e);
WEAVE_API int weave_event_wait(weave_event *e);
WEAVE_API int weave_event_wait_timeout(weave_event *e, int64_t timeout_ms);
WEAVE_API int weave_event_is_set(const weave_event *e);

/* ======================================================================== */
/*  Blocking work                                                            */
/* ======================================================================== */

/*
 * Run fn(arg) on a worker thread and suspend the calling task until it
 * returns; every other task keeps running (asyncio's run_in_executor). The
 * pool belongs to the scheduler: its threads (weave_run_opts.offload_threads,
 * default 4) start when first needed and are joined when weave_run returns,
 * which therefore waits for calls still running. Calls beyond the thread
 * count queue in FIFO order.
 *
 * If the calling task is cancelled (before or while it waits),
 * weave_offload returns -1 with ECANCELED at once. A call that had not started yet is dropped and
 * never runs; one already running finishes on its worker and its result is
 * discarded. fn keeps using arg until it returns, so arg must not live on
 * the caller's stack if the caller can be cancelled; weave_offload_with names
 * a function that receives a discarded call's result (NULL if fn never ran)
 * and its arg, on the scheduler's thread, to free them (it must not call
 * blocking weave functions). ECANCELED and ETIMEDOUT (a deadline scope
 * passed) always mean that discard has been or will be called; any other
 * error means fn never ran and arg is still the caller's.
 *
 * Returns 0 and stores fn's return value in *result (if result is not
 * NULL); a call that finished is returned even if the task was cancelled
 * meanwhile. Errors: EINVAL fn is NULL; EPERM outside a task; ECANCELED;
 * ETIMEDOUT; ENOMEM; EAGAIN no worker thread could be started;
 * EMFILE/ENFILE no eventfd.
 */
WEAVE_API int weave_offload(weave_fn fn, void *arg, void **result);
WEAVE_API int weave_offload_with(weave_fn fn, void *arg, void **result, weave_discard_fn discard);

/* The earlier name of weave_offload_with, kept so that code and binaries
 * built against it keep working. */
WEAVE_API int weave_offload_ex(weave_fn fn, void *arg, void **result, weave_discard_fn discard)
    WEAVE_DEPRECATED("use weave_offload_with");

/* ======================================================================== */
/*  Schedulers, threads and embedding                                        */
/* ======================================================================== */

/*
 * A scheduler is an object of its own: made on any thread, run on one (or
 * stepped from a loop that is not weave's), reachable from every other.
 * weave_run is weave_sched_new + weave_sched_run + weave_sched_free.
 */
typedef struct weave_sched weave_sched; /* opaque */

/*
 * A new scheduler with the options of weave_run_with (NULL: the defaults),
 * made on any thread; it binds to the thread that first runs or steps it.
 * Posts to it queue until then. NULL with EINVAL (bad options), ENOMEM,
 * EMFILE, ENFILE.
 *
 * A scheduler made here can be posted to from other threads for as long
 * as it lives, so it never reports a deadlock (nor does one whose
 * weave_sched_self was taken): with every task waiting on another, it
 * waits for a post.
 */
WEAVE_API weave_sched *weave_sched_new(const weave_run_opts *opts);

/*
 * Run s on the calling thread as weave_run does: main_fn(arg) as its main
 * task, until it has returned and every other task of s has ended; *result
 * receives main_fn's return value. A scheduler runs once. Then its inbox is
 * closed: every post either ran, or is refused with ESRCH.
 *
 * Errors: as weave_run (EDEADLK, EINTR ...); EINVAL s or main_fn NULL, or s
 * has run already; EBUSY this thread already runs a scheduler, or s is
 * running or stepped elsewhere.
 */
WEAVE_API int weave_sched_run(weave_sched *s, weave_fn main_fn, void *arg, void **result);

/*
 * Free s: cancel whatever tasks are left, posted ones that never started
 * included (they start cancelled, so each can still release what its arg
 * owns), let them end, and free everything. A stepped scheduler is torn
 * down on the thread that steps it; one that never ran, on the calling
 * thread (or, if that thread runs a scheduler already, on a thread made
 * for it). Errors: EINVAL s NULL; EBUSY while weave_sched_run runs s,
 * from one of its tasks, or for a stepped scheduler, from another thread
 * than its own; EAGAIN no thread could be made.
 */
WEAVE_API int weave_sched_free(weave_sched *s);

/* The scheduler bound to the calling thread (running it, or stepping it);
 * NULL with EPERM if none. */
WEAVE_API weave_sched *weave_sched_self(void);

/*
 * Post: run fn(arg) as a new detached task on s, from any thread (a task of
 * any scheduler, s's own included, or a thread with none). It never blocks
 * and never loses a task: it is queued, or refused with an errno. Tasks
 * posted from one thread start in the order they were posted. Posts made
 * before s runs wait for it; a post that comes while s shuts down (its main
 * has returned) starts cancelled. A wake-up costs one eventfd write when s
 * sleeps in its poller, and none while it is busy or already woken.
 *
 * Errors: EINVAL s or fn NULL; ESRCH s has stopped (fn does not run);
 * ENOMEM. A posted task that cannot get a stack when its turn comes is
 * tried again at every turn of the loop.
 */
WEAVE_API int weave_post(weave_sched *s, weave_fn fn, void *arg);

/*
 * Run fn(arg) as a task on s and wait for its result (asyncio's
 * run_coroutine_threadsafe(...).result()).
 *
 *   - From a task of another scheduler: only the task waits. It is a
 *     cancellation point and obeys deadline scopes; a caller that stops
 *     waiting cancels the remote task and waits (shielded) for it to end,
 *     then returns ECANCELED or ETIMEDOUT.
 *   - From a thread with no scheduler running: the thread blocks.
 *   - On s's own thread: a plain spawn + join inside a task (with the same
 *     rule on cancellation); EDEADLK outside one.
 *
 * Returns 0 with fn's return value in *result (if result is not NULL).
 * Errors: EINVAL s or fn NULL; ESRCH s stopped before fn started;
 * ECANCELED; ETIMEDOUT; EDEADLK; ENOMEM.
 */
WEAVE_API int weave_call(weave_sched *s, weave_fn fn, void *arg, void **result);

/*
 * A scheduler per core, for servers: start n schedulers (0: one per online
 * CPU), each on a thread of its own (the calling thread runs the first),
 * each running main_fn(index, arg) with its index (0 .. n-1) as weave_run
 * runs its main, and return when every one has returned. Listen with
 * WEAVE_LISTEN_REUSEPORT in each, and the kernel spreads connections.
 *
 * Ctrl-C: the first SIGINT or SIGTERM that one of them takes (each main
 * calls weave_cancel_on_signals) stops every one: each main is cancelled
 * and cleans up in its own tasks, and this returns -1 with EINTR; a second
 * one ends the process. Returns 0 once all have returned 0; else -1 with
 * the errno of the first that failed. Errors: EINVAL main_fn NULL, bad
 * options or n above WEAVE_THREADS_MAX; EBUSY this thread runs a scheduler;
 * EAGAIN no thread could be started; and those of weave_run.
 */
typedef void *(*weave_indexed_fn)(unsigned index, void *arg);
#define WEAVE_THREADS_MAX 1024
WEAVE_API int weave_run_threads(unsigned n, const weave_run_opts *opts, weave_indexed_fn main_fn,
                                void *arg);

/*
 * A channel that any scheduler's tasks, and any thread, may use: the whole
 * channel contract of weave_chan_new (the same calls: send, receive, the
 * _try and _timeout variants, close, len, free, and weave_select, where it
 * mixes with local channels, fds and tasks). A thread with no scheduler
 * blocks in its calls (a futex: it never spins) and may select over shared
 * channels alone. Elements sent by one task (or thread) are received in the
 * order sent; closing wakes the waiters on every scheduler. A transfer to
 * or from a task on another scheduler wakes it through that scheduler's
 * inbox (as a post does). Within one scheduler it costs a lock more than a
 * local channel; local channels pay nothing for it.
 *
 * weave_chan_free waits (yielding) for the waiters of calls that another
 * thread has just completed to be taken out by their tasks. Errors as for
 * weave_chan_new.
 */
WEAVE_API weave_chan *weave_chan_new_shared(size_t elem_size, size_t capacity);

/*
 * Embedding: another loop (libuv, GLib, a game loop, a plain poll) drives
 * s. It watches weave_sched_fd(s) for reading and calls weave_sched_step
 * when that fd is readable or when *next_ms (set by the previous step) has
 * passed. A step takes in expired timers, fd events and posts once, runs
 * the tasks that can run then (each once), and returns without blocking:
 * the number of tasks of s still alive, with *next_ms (if not NULL) set to
 * how long the loop may wait before the next step: 0 a task can already
 * run, -1 only an fd event or a post can wake one, else the time to the
 * earliest timer (the fd becomes readable then as well). Tasks enter a
 * stepped scheduler through weave_post (and weave_call). A step that
 * returns 0 does not stop s: a later post makes it live again.
 *
 * The first step binds s to the stepping thread until weave_sched_free;
 * SIGPIPE stays blocked on that thread until then. The fd is s's own: do
 * not read it or close it. Errors: EINVAL s NULL or done; EBUSY s runs,
 * or is stepped by another thread, or this thread runs another scheduler,
 * or the step was called from one of s's tasks.
 */
WEAVE_API int weave_sched_fd(weave_sched *s);
WEAVE_API int weave_sched_step(weave_sched *s, int64_t *next_ms);

/* ======================================================================== */
/*  Signals                                                                  */
/* ======================================================================== */

/*
 * Signals as events. A signal named here is blocked on the scheduler's
 * thread from the first call that names it until weave_run returns, and
 * read through a signalfd: no handler runs, and a task learns of it by
 * waiting, as it would for data on an fd. Blocking holds in every task,
 * whichever task switch weave was built with.
 *
 * A process-directed signal (kill, Ctrl-C from the terminal) goes to a
 * thread that does not block it. weave's own threads (the offload pool,
 * the watchdog) block every signal; other threads of the program must
 * block the signals named here too (pthread_sigmask, or create them while
 * the signals are blocked), or the kernel may hand such a signal to one of
 * them. One scheduler per process should own a given signal: two threads
 * waiting on the same signal each see it only if it is sent to them.
 *
 * When weave_run returns, each signal weave blocked is unblocked again
 * (unless it was blocked before weave_run), and what arrived of it that no
 * task took is discarded first: a late signal does not act on a program
 * that has finished its run.
 */

/*
 * Suspend the calling task until one of the signals in set arrives, and
 * return its number. Every task waiting for a signal when it is taken is
 * woken with it (a signal is news, as with Go's signal.Notify): two tasks
 * waiting for SIGHUP both return SIGHUP. A signal of set that arrives while
 * no task waits for it stays pending, and the next wait whose set holds it
 * returns it at once (as sigwait does); the kernel keeps at most one
 * pending instance of each standard signal, so several sent meanwhile are
 * seen as one. When several are pending, the lowest number comes first.
 * The signal's disposition is left alone; a signal whose action is SIG_IGN
 * may be dropped by the kernel before anyone can take it.
 *
 * timeout_ms as everywhere: -1 waits until a signal arrives, 0 takes a
 * pending one or fails at once. A cancellation point that obeys deadline
 * scopes; weave_tasks shows the wait as WEAVE_WAIT_SIGNAL.
 *
 * Errors: EINVAL set is NULL or empty, timeout_ms below -1, or set holds a
 * signal weave cannot wait for: SIGKILL, SIGSTOP, the synchronous signals
 * (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGSYS), SIGABRT, SIGPIPE
 * (weave's own: writes to a closed peer fail with EPIPE), the run's
 * dump_signal, or one the C library keeps for itself; EPERM outside a task;
 * ECANCELED; ETIMEDOUT; EMFILE, ENFILE, ENOMEM the signalfd could not be
 * made (first call of the run only).
 */
#if defined(_POSIX_C_SOURCE) || defined(_XOPEN_SOURCE) || defined(_GNU_SOURCE) ||                  \
    defined(_DEFAULT_SOURCE)
/* sigset_t is POSIX: a strict ISO C build (-std=c11 with no feature macro)
 * must define _POSIX_C_SOURCE (200809L) to see this declaration. */
WEAVE_API int weave_signal_wait(const sigset_t *set, int64_t timeout_ms);
#endif

/*
 * Shut down gracefully on Ctrl-C (asyncio.run's behaviour): from this call
 * until weave_run returns, the first SIGINT or SIGTERM cancels the main
 * task. Its blocking calls fail with ECANCELED, its cleanup runs (in a
 * shield where it must still wait: weave_shield_begin), and once it
 * returns, weave_run cancels the tasks still alive and waits for them to
 * unwind, as after any return of main. weave_run then returns -1 with
 * errno EINTR (*result is still set), and *caught, if caught is not NULL,
 * holds the signal's number, so the program can exit with 128 + its
 * number (130 for SIGINT, 143 for SIGTERM), as the shell expects.
 *
 * A second SIGINT or SIGTERM before weave_run returns ends the process at
 * once by that signal's default action (its disposition is reset first),
 * so a cleanup that hangs can still be interrupted. Tasks waiting for
 * SIGINT or SIGTERM in weave_signal_wait are woken by them as well.
 *
 * Call it early in the main task: until then Ctrl-C acts as the program
 * set it up to (by default, it kills the process). caught must stay valid
 * until weave_run returns; a later call replaces it. While this holds, a
 * run whose tasks all wait on each other is not reported as a deadlock:
 * a signal could still wake the main task.
 *
 * Returns 0. Errors: EPERM outside a task; EMFILE, ENFILE, ENOMEM the
 * signalfd could not be made.
 */
WEAVE_API int weave_cancel_on_signals(int *caught);

/* ======================================================================== */
/*  Introspection */
/* ======================================================================== */

/* How the guards below stacks are made (weave_stats.guard_mode). */
typedef enum weave_guard_mode {
    WEAVE_GUARD_UNKNOWN = 0, /* no stack mapped yet */
    WEAVE_GUARD_MADVISE = 1, /* MADV_GUARD_INSTALL (Linux 6.13+): no memory,
                                no extra mapping */
    WEAVE_GUARD_MPROTECT = 2 /* PROT_NONE pages: two mappings per stack */
} weave_guard_mode;

/* Which way regular-file reads and writes go (weave_stats.file_io_path);
 * see "Regular files" under weave_read. */
typedef enum weave_file_io_path {
    WEAVE_FILE_IO_UNDECIDED = 0, /* no call has needed to choose yet: the
                                    ring is made by the first regular-file
                                    call that cannot be served at once */
    WEAVE_FILE_IO_POOL = 1,      /* the offload pool (forced, no liburing,
                                    the kernel refused io_uring, valgrind) */
    WEAVE_FILE_IO_URING = 2      /* the scheduler's io_uring */
} weave_file_io_path;

/* A snapshot of the calling thread's scheduler, for tests and monitoring. */
typedef struct weave_stats {
    uint64_t tasks_live;             /* tasks not yet ended (main included) */
    uint64_t tasks_zombie;           /* ended, waiting to be joined */
    uint64_t tasks_spawned;          /* total since weave_run began */
    uint64_t timers_pending;         /* sleeping or timed waits */
    uint64_t fd_waiters;             /* tasks parked on fds */
    uint64_t offload_waiters;        /* tasks waiting for weave_offload */
    uint64_t offload_threads;        /* worker threads started */
    uint64_t fds_registered;         /* fds weave keeps an epoll registration of */
    uint64_t stacks_in_use;          /* stacks held by tasks not released yet: live
                                    ones and zombies (a task's record lives on
                                    its stack until it is joined) */
    uint64_t stacks_cached;          /* free stacks kept mapped for reuse */
    uint64_t stack_bytes_mapped;     /* virtual bytes of all stack slabs */
    weave_guard_mode guard_mode;     /* how stacks are guarded */
    weave_file_io_path file_io_path; /* where regular-file I/O goes */
    uint64_t file_ring_ops;          /* regular-file calls submitted to io_uring */
    uint64_t file_ring_waiters;      /* tasks waiting for one of them (or for a
                                    free entry of the ring) */
    uint64_t file_ring_full;         /* times a call waited for a free entry */
    uint64_t reserved[5];            /* zero: room for figures to come */
} weave_stats;

/* Fill *st for the calling thread's scheduler. EPERM outside one, EINVAL if
 * st is NULL. */
WEAVE_API int weave_get_stats(weave_stats *st);

/* What a task waits on (weave_task_info.wait). */
typedef enum weave_wait_kind {
    WEAVE_WAIT_NONE = 0, /* not parked: running, runnable or ended */
    WEAVE_WAIT_SLEEP,    /* weave_sleep, or a pause between retries */
    WEAVE_WAIT_FD,       /* an fd (weave_wait_fd and the I/O calls) */
    WEAVE_WAIT_JOIN,     /* another task's end (weave_join) */
    WEAVE_WAIT_GROUP,    /* a group (weave_group_wait, weave_group_free) */
    WEAVE_WAIT_CHAN,     /* a channel (send or receive) */
    WEAVE_WAIT_SELECT,   /* several channels (weave_select) */
    WEAVE_WAIT_MUTEX,    /* a weave_mutex */
    WEAVE_WAIT_COND,     /* a weave_cond */
    WEAVE_WAIT_SEM,      /* a weave_sem */
    WEAVE_WAIT_EVENT,    /* a weave_event */
    WEAVE_WAIT_OFFLOAD,  /* a worker thread (weave_offload) */
    WEAVE_WAIT_SIGNAL,   /* a signal */
    WEAVE_WAIT_CALL,     /* another scheduler's task (weave_call) */
    WEAVE_WAIT_PROC,     /* a child process's end (weave_proc_wait) */
    WEAVE_WAIT_IO_URING  /* a regular-file call in the scheduler's io_uring
                            (weave_task_info.wait_op names it), or a free
                            entry of the ring */
} weave_wait_kind;

/* A task's state (weave_task_info.state). */
typedef enum weave_task_state {
    WEAVE_TASK_RUNNING = 0, /* the calling task */
    WEAVE_TASK_READY,       /* runnable, waiting for its turn */
    WEAVE_TASK_PARKED,      /* waiting (see wait) */
    WEAVE_TASK_ENDED        /* its function returned; not joined yet */
} weave_task_state;

/* Bits of weave_task_info.flags. */
enum {
    WEAVE_TASK_MAIN = 1u << 0,      /* weave_run's main task */
    WEAVE_TASK_CANCELLED = 1u << 1, /* weave_cancel was called on it */
    WEAVE_TASK_DETACHED = 1u << 2,  /* nobody will join it */
    WEAVE_TASK_SHIELDED = 1u << 3   /* a shield is up */
};

/* One task, as weave_tasks sees it. */
typedef struct weave_task_info {
    uint64_t id;               /* weave_task_id: 1 = main, then spawn order */
    char name[WEAVE_NAME_MAX]; /* weave_task_name */
    weave_task_state state;
    weave_wait_kind wait;    /* what it waits on, while PARKED */
    const void *wait_object; /* the channel, lock, group ... it waits on */
    int wait_fd;             /* the fd, for WEAVE_WAIT_FD; else -1 */
    uint64_t wait_task;      /* the task it joins, for WEAVE_WAIT_JOIN */
    int64_t parked_us;       /* how long it has been parked, counted from
                                   the scheduler's last look at the clock
                                   before it parked (at most 64 task runs
                                   or one clock tick, about 4 ms, earlier);
                                   0 if not parked */
    int64_t timeout_us;      /* time left before its wait times out (its
                                   own timeout or a deadline scope), or -1 */
    size_t stack_size;       /* usable bytes of its stack */
    size_t stack_used;       /* high-water mark: bytes of its stack that
                                   were ever touched, in whole pages (a reused
                                   stack counts what earlier tasks touched,
                                   until weave hands its pages back) */
    unsigned flags;          /* WEAVE_TASK_MAIN | ... */
    const char *wait_op;     /* for WEAVE_WAIT_IO_URING: the operation,
                                "read", "write", "fsync", "fdatasync", or
                                "ring-full" while it waits for an entry;
                                else NULL. A static string. */
    uint64_t reserved[3];    /* zero: room for fields to come */
} weave_task_info;

/*
 * List the calling scheduler's tasks: the live ones, then the ended ones
 * nobody joined yet, each in spawn order. Fills at most n entries of out and
 * returns how many tasks there are (which may be more than n: call again
 * with a larger array). The list is a snapshot; nothing blocks.
 * Errors: EPERM outside a scheduler; EINVAL out is NULL while n > 0.
 */
WEAVE_API ssize_t weave_tasks(weave_task_info *out, size_t n);

/*
 * Write the task list to fd as text, one line per task (id, name, state,
 * what it waits on and for how long, stack use), headed by a summary line
 * that names the scheduler and its thread (several may run in a process);
 * Go's goroutine dump, without stacks. The calling thread's scheduler only:
 * a deadlock report, too, is its own scheduler's. Writes with write(2), so it can be
 * aimed at stderr from anywhere in a task. Returns 0, or -1 with EPERM
 * outside a scheduler, or the errno of a failed write.
 */
WEAVE_API int weave_dump(int fd);

/* How this build of weave switches tasks: "ucontext" (makecontext and
 * swapcontext) or "asm" (weave's own switch; configured with
 * -DWEAVE_CONTEXT=asm). */
WEAVE_API const char *weave_context_backend(void);

/* ======================================================================== */
/*  TLS over OpenSSL                                                         */
/* ======================================================================== */

/*
 * TLS 1.2 and 1.3 over a connected socket, with OpenSSL 3 doing the
 * cryptography and weave the waiting: the handshake, reads and writes are
 * blocking calls like weave_read (cancellation points, bounded by deadline
 * scopes and by the connection's own timeout), and park only the calling
 * task. A client checks the server's certificate chain and name by default.
 *
 *     weave_tls_opts o = {0};                  // system CAs, verification on
 *     weave_tls_config *cfg = weave_tls_client_config(&o);
 *     int fd = weave_tcp_connect("example.org", "443", 5000);
 *     weave_tls *t = weave_tls_connect(cfg, fd, "example.org", 5000);
 *     if (!t)                                  // the fd is still ours
 *         fprintf(stderr, "tls: %s (%s)\n", strerror(errno), weave_tls_error());
 *     weave_tls_write(t, "GET / HTTP/1.0\r\n\r\n", 18);
 *     n = weave_tls_read(t, buf, sizeof(buf)); // 0: the server closed
 *     weave_tls_close(t);                      // close_notify, then the fd
 *     weave_tls_config_free(cfg);
 *
 * A server makes one config from its certificate chain and key, and runs
 * weave_tls_accept in each connection's own task, so that a slow or
 * hostile client holds up nobody else.
 *
 * weave is built with TLS when its build finds OpenSSL 3 (pkg-config
 * openssl; the configure step says so). Without it these calls are still
 * declared, and each one fails with ENOTSUP (weave_tls_error says why).
 *
 * A connection belongs to one task at a time: two tasks must not call it
 * at once, not even one reading while the other writes (OpenSSL's
 * connection state is shared by both directions). Its calls from a task
 * of another thread's scheduler fail with EPERM. A buffered stream over a
 * connection is a stream whose reads and writes go to weave_tls_read and
 * weave_tls_write. Configs are shared freely, across threads too.
 *
 * Errors of the calls that talk to the peer (connect, accept, read, write):
 *
 *   EKEYREJECTED  the peer's certificate failed verification: expired or
 *                 not yet valid, signed by a CA not trusted, not for the
 *                 host name asked for, malformed, ... weave_tls_error tells
 *                 which ("certificate has expired", "hostname mismatch",
 *                 "unable to get local issuer certificate")
 *   EPROTO        the peer does not speak TLS (a plain-text server, bytes
 *                 that are no TLS record), or broke the protocol, or sent
 *                 an alert ("tlsv1 alert unknown ca": the peer rejected our
 *                 certificate); weave_tls_error has OpenSSL's reason
 *   ECONNRESET    the peer closed the connection without close_notify
 *                 (mid-handshake, between records, or in the middle of a
 *                 record: a truncation), or reset it
 *   ETIMEDOUT     the call's timeout, the connection's, or a deadline scope
 *                 passed (a peer that stalls mid-handshake)
 *   ECANCELED     the calling task was cancelled
 *   EBADF         the fd was closed with weave_close while the task waited
 *   EPERM         outside a task, or from another thread's task
 *   EINVAL        a NULL or bad argument
 *   ENOMEM        OpenSSL or weave could not allocate
 *   and the socket's own errors (EPIPE, ...).
 * After an EKEYREJECTED, EPROTO or ECONNRESET the connection is dead: later
 * reads and writes fail with the same errno, and weave_tls_close sends no
 * close_notify.
 */
typedef struct weave_tls_config weave_tls_config; /* opaque: settings, certificates */
typedef struct weave_tls weave_tls;               /* opaque: one connection */

/* Flags of weave_tls_opts. */
enum {
    /* Client only: do not verify the server's certificate or name (for
     * tests and for peers pinned some other way). host may then be NULL. */
    WEAVE_TLS_NO_VERIFY = 1u << 0
};

/* Options of a config. A zeroed struct (or NULL, for a client) means the
 * defaults. Strings are read during the call only. */
typedef struct weave_tls_opts {
    const char *ca_file;     /* client: PEM file of the CAs to trust instead
                                  of the system's; NULL = the system's */
    const char *ca_path;     /* client: a directory of hashed CA files
                                  (c_rehash), instead of or besides ca_file */
    const char *cert_file;   /* server: PEM certificate chain, leaf first */
    const char *key_file;    /* server: PEM private key of that leaf */
    const char *const *alpn; /* ALPN protocols, NULL-terminated, most
                                  preferred first ("h2", "http/1.1"); NULL =
                                  no ALPN. A client offers them, a server
                                  picks the first of its own the client
                                  offered (none in common: no protocol, no
                                  failure) */
    unsigned flags;          /* WEAVE_TLS_NO_VERIFY */
    void *reserved[4];       /* must be NULL (else EINVAL) */
} weave_tls_opts;

/* How long weave_tls_close waits, at most, to send close_notify (ms). */
#define WEAVE_TLS_CLOSE_TIMEOUT_MS 1000

/*
 * Make a client config: trust the system's CAs (OpenSSL's default paths,
 * /etc/ssl/certs on Debian), or those of ca_file / ca_path; verify the
 * server's chain and name; TLS 1.2 at least. Reads its files now, on the
 * calling thread, so make configs at start-up and share them; this works
 * outside a task. NULL opts are the defaults.
 * Errors: EINVAL a server's field (cert_file, key_file) set, an unknown
 * flag, a reserved field set, an ALPN name empty or over 255 bytes;
 * ENOENT, EACCES, ... ca_file or ca_path cannot be opened; EPROTO it holds
 * no certificate OpenSSL can read (weave_tls_error: why); ENOMEM; ENOTSUP
 * weave was built without OpenSSL.
 */
WEAVE_API weave_tls_config *weave_tls_client_config(const weave_tls_opts *o);

/*
 * Make a server config from cert_file (the chain, leaf first) and key_file,
 * both required. Clients are not asked for certificates.
 * Errors: EINVAL opts NULL, cert_file or key_file NULL, a client's field
 * (ca_file, ca_path, WEAVE_TLS_NO_VERIFY) set, a reserved field set, a bad
 * ALPN name; ENOENT, EACCES, ... a file cannot be opened; EPROTO a file
 * holds no usable certificate or key, or the key is not the certificate's
 * (weave_tls_error: why); ENOMEM; ENOTSUP.
 */
WEAVE_API weave_tls_config *weave_tls_server_config(const weave_tls_opts *o);

/* Let go of c: it is freed once the last connection made with it is
 * closed. NULL is ignored. Any thread. */
WEAVE_API void weave_tls_config_free(weave_tls_config *c);

/*
 * Run a client handshake over fd (a connected stream socket) within
 * timeout_ms (-1: no limit of its own; deadline scopes apply either way):
 * send host as SNI (not for an IP literal) and, unless the config says
 * WEAVE_TLS_NO_VERIFY, check the server's certificate against host (a DNS
 * name, or an IP address in the certificate). On success the connection
 * owns fd, and weave_tls_close closes it. On failure fd is still the
 * caller's, to weave_close (nothing more can be done on it: part of a
 * handshake may have gone over it). fd is made non-blocking as the I/O
 * calls do. Errors: those above; EINVAL c NULL or a server's, host NULL or
 * empty (unless WEAVE_TLS_NO_VERIFY), timeout_ms < -1; EBADF fd < 0.
 */
WEAVE_API weave_tls *weave_tls_connect(weave_tls_config *c, int fd, const char *host,
                                       int64_t timeout_ms);

/* The server's handshake over fd (an accepted socket), as weave_tls_connect:
 * the connection owns fd on success, the caller keeps it on failure. EINVAL
 * c is a client's. */
WEAVE_API weave_tls *weave_tls_accept(weave_tls_config *c, int fd, int64_t timeout_ms);

/*
 * Read up to n bytes of the peer's data into buf. Returns the count (at
 * least 1), 0 once the peer sent close_notify (and at every call after), or
 * -1. n 0 returns 0 at once. A read that fails with ETIMEDOUT or ECANCELED
 * loses nothing: the next one goes on. EINVAL t NULL, buf NULL with n > 0,
 * n above SSIZE_MAX.
 */
WEAVE_API ssize_t weave_tls_read(weave_tls *t, void *buf, size_t n);

/*
 * Write all n bytes of buf (in records of at most 16 KiB). Returns n, or -1:
 * unlike weave_write, a failed TLS write has no count, as part of a record
 * may have gone. A write interrupted by a timeout or cancellation leaves the
 * connection unable to write again (later writes: EPIPE; close it). n 0
 * returns 0. EINVAL t NULL, buf NULL with n > 0, n above SSIZE_MAX.
 */
WEAVE_API ssize_t weave_tls_write(weave_tls *t, const void *buf, size_t n);

/*
 * Bound every later read and write of t: each fails with ETIMEDOUT once
 * timeout_ms have passed since it began (a deadline scope around the call,
 * nested in the caller's own). -1 (the default) waits forever. Errors:
 * EINVAL t NULL or timeout_ms < -1; EPERM another thread's.
 */
WEAVE_API int weave_tls_set_timeout(weave_tls *t, int64_t timeout_ms);

/* The connection's fd, for weave_wait_fd or getpeername; do not read,
 * write or close it. -1 with EINVAL for NULL. */
WEAVE_API int weave_tls_fd(const weave_tls *t);

/* The protocol ALPN chose ("h2"), or NULL if none (or t NULL). Valid until
 * weave_tls_close. */
WEAVE_API const char *weave_tls_alpn(const weave_tls *t);

/*
 * Send close_notify, close the fd with weave_close and free t, always
 * (unless another thread's tasks use it: EPERM, nothing done). close_notify
 * is sent under a shield (a cancelled task still sends it) bounded by a
 * deadline of WEAVE_TLS_CLOSE_TIMEOUT_MS, and only on a live connection
 * (not after a fatal error or an interrupted write), and only from a task:
 * outside one the fd is just closed. The peer's own close_notify is not
 * waited for. Returns 0, or -1 with the error of close_notify (ETIMEDOUT,
 * EPIPE, ...; none once the peer's own close_notify came) or of close(2),
 * t freed all the same. EINVAL t NULL.
 */
WEAVE_API int weave_tls_close(weave_tls *t);

/*
 * Why the last TLS call that failed on this thread's scheduler failed, in
 * OpenSSL's words or weave's: "certificate has expired", "hostname
 * mismatch", "wrong version number", "unexpected eof while reading",
 * "Connection timed out". "" if none has failed; a success does not clear
 * it. The record belongs to the running scheduler (as weave_resolve_error's):
 * outside one this returns "", and config calls made there leave none.
 * The string is static: never free it.
 */
WEAVE_API const char *weave_tls_error(void);

/*
 * A buffered stream (weave_stream_new's) over the TLS connection t: the
 * same calls, read_line and printf included, read and write through t.
 * weave_stream_close flushes, then closes t (weave_tls_close: close_notify,
 * then the fd); weave_stream_free leaves t open and the caller's. While the
 * stream waits for input it holds no buffer of its own (OpenSSL keeps its
 * record buffers). NULL with errno: EINVAL t NULL or bad opts, ENOMEM,
 * ENOTSUP in a build without OpenSSL.
 */
WEAVE_API weave_stream *weave_stream_tls(weave_tls *t, const weave_stream_opts *opts);

#ifdef __cplusplus
}
#endif

#endif /* WEAVE_H */
