/*
 * fault.h - fault injection for weave's system calls and allocations, for
 * the fault suite (test_fault.c).
 *
 * The mechanism. The library is not built any differently: the fault
 * suite links the very weave_static archive the other suites use. What
 * changes is how it is linked. test/CMakeLists.txt first makes one
 * relocatable object (`cc -r`) of every member of the archive together with
 * fault.c, with `-Wl,--wrap=<sym>` for each call below. Inside that partial
 * link the linker resolves every reference to <sym> to __wrap_<sym> (defined
 * here) and every reference to __real_<sym> (made here) to the real <sym>.
 * The suite's executable then links that object like any other, with no
 * --wrap: the test's own code, Check and glibc's internal calls (strdup's or
 * getaddrinfo's malloc, say) reach the real functions and are never counted
 * or failed. Only the library's own calls are.
 *
 * Each __wrap_<sym> counts the call and forwards it to __real_<sym>, unless
 * the rule of <sym> says to fail this call: then it returns the function's
 * failure value with the rule's errno (pthread_create returns it). A rule
 * fails the k-th call counted after it was set, once or every call from
 * the k-th on. Rules and counts are per process (Check forks a child per
 * test, so a test starts with none), and only the calls of one thread are
 * counted and failed: the thread that last set a rule or cleared them (the
 * scheduler's). Calls on weave's worker threads pass through uncounted, so
 * that the k-th call is the same one in every run whatever the threads'
 * timing; the rules are atomic all the same, since workers read them.
 *
 * Link-time optimisation. Where the library is built with it (the release
 * build types), its objects hold GCC's IR rather than code: the partial
 * link then runs the link-time optimisation first (-flinker-output=
 * nolto-rel) and renames the calls of the code it produces, which works
 * as well (checked with RelWithDebInfo). For other compilers' IR the
 * suite is not built; test/CMakeLists.txt decides.
 */
#ifndef WEAVE_FAULT_H
#define WEAVE_FAULT_H

#include <stdbool.h>

/* The calls weave makes that can fail, and that a rule can fail. */
enum fault_call {
    FAULT_MALLOC,
    FAULT_CALLOC,
    FAULT_REALLOC,
    FAULT_STRDUP,
    FAULT_MMAP,
    FAULT_MADVISE,
    FAULT_MPROTECT,
    FAULT_SYSCALL, /* process_madvise is reached through syscall(2) */
    FAULT_EPOLL_CREATE1,
    FAULT_EPOLL_CTL,
    FAULT_EPOLL_WAIT,
    FAULT_EPOLL_PWAIT2,
    FAULT_EVENTFD,
    FAULT_TIMERFD_CREATE,
    FAULT_TIMERFD_SETTIME,
    FAULT_SIGNALFD,
    FAULT_PTHREAD_CREATE,
    FAULT_FCNTL, /* F_DUPFD and F_DUPFD_CLOEXEC only */
    FAULT_READ,
    FAULT_WRITE,
    FAULT_POLL,
    FAULT_SOCKET,
    FAULT_ACCEPT4,
    FAULT_IO_URING_INIT,   /* io_uring_queue_init_params: the ring's set-up */
    FAULT_IO_URING_SUBMIT, /* io_uring_submit; both wrapped only in a build
                              with liburing (WEAVE_FAULT_IO_URING), and
                              failed with -err as liburing does */
    FAULT_NCALLS
};

/* Fail the k-th call (k >= 1) of call made from now on with err; with
 * every_from, that call and every later one. Replaces call's rule and
 * restarts its count. */
void fault_set(enum fault_call call, unsigned long k, int err, bool every_from);

/* Remove call's rule; its count goes on. */
void fault_unset(enum fault_call call);

/* Remove every rule and zero every count. */
void fault_clear(void);

/* Calls of call made since its rule was last set (or since fault_clear). */
unsigned long fault_count(enum fault_call call);

/* Of those, the ones failed by the rule. */
unsigned long fault_failed(enum fault_call call);

/* The function's name: "malloc", "epoll_ctl", ... */
const char *fault_name(enum fault_call call);

#endif /* WEAVE_FAULT_H */
