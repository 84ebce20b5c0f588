/*
 * fault.c - the __wrap_ functions of fault.h: count each call of the
 * library, and fail the ones a rule names.
 *
 * This file is linked into the library's partial link (see fault.h), where
 * __real_<sym> means the real function. Nothing here may call a wrapped
 * function by its plain name: inside the partial link that would be the
 * wrapper again.
 */
#include "fault.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/types.h>
#include <unistd.h>

struct rule {
    atomic_bool armed;      /* a rule is set */
    atomic_ulong count;     /* calls made since it was set */
    atomic_ulong failed;    /* calls it failed */
    atomic_ulong at;        /* the call (1-based) it fails first */
    atomic_int err;         /* the errno it fails with */
    atomic_bool every_from; /* fail every call from `at` on, not just it */
};

static struct rule rules[FAULT_NCALLS];

/* The thread whose calls are counted and failed: the one that last set a
 * rule or cleared them. Calls made on weave's worker threads pass through
 * uncounted, so that the k-th call is the same one in every run, whatever
 * the threads' timing. */
static pthread_t owner;
static atomic_bool have_owner;

static void own(void)
{
    /* Written only when it changes, which never happens while a worker
     * runs: workers live within a weave_run of the owning thread. */
    if (atomic_load(&have_owner) && pthread_equal(owner, pthread_self()))
        return;
    atomic_store(&have_owner, false);
    owner = pthread_self();
    atomic_store(&have_owner, true);
}

static const char *const names[FAULT_NCALLS] = {
    [FAULT_MALLOC] = "malloc",
    [FAULT_CALLOC] = "calloc",
    [FAULT_REALLOC] = "realloc",
    [FAULT_STRDUP] = "strdup",
    [FAULT_MMAP] = "mmap",
    [FAULT_MADVISE] = "madvise",
    [FAULT_MPROTECT] = "mprotect",
    [FAULT_SYSCALL] = "syscall",
    [FAULT_EPOLL_CREATE1] = "epoll_create1",
    [FAULT_EPOLL_CTL] = "epoll_ctl",
    [FAULT_EPOLL_WAIT] = "epoll_wait",
    [FAULT_EPOLL_PWAIT2] = "epoll_pwait2",
    [FAULT_EVENTFD] = "eventfd",
    [FAULT_TIMERFD_CREATE] = "timerfd_create",
    [FAULT_TIMERFD_SETTIME] = "timerfd_settime",
    [FAULT_SIGNALFD] = "signalfd",
    [FAULT_PTHREAD_CREATE] = "pthread_create",
    [FAULT_FCNTL] = "fcntl",
    [FAULT_READ] = "read",
    [FAULT_WRITE] = "write",
    [FAULT_POLL] = "poll",
    [FAULT_SOCKET] = "socket",
    [FAULT_ACCEPT4] = "accept4",
    [FAULT_IO_URING_INIT] = "io_uring_queue_init_params",
    [FAULT_IO_URING_SUBMIT] = "io_uring_submit",
};

void fault_set(enum fault_call call, unsigned long k, int err, bool every_from)
{
    struct rule *r = &rules[call];

    atomic_store(&r->armed, false);
    atomic_store(&r->at, k);
    atomic_store(&r->err, err);
    atomic_store(&r->every_from, every_from);
    atomic_store(&r->count, 0);
    atomic_store(&r->failed, 0);
    own();
    atomic_store(&r->armed, true);
}

void fault_unset(enum fault_call call)
{
    atomic_store(&rules[call].armed, false);
}

void fault_clear(void)
{
    for (int i = 0; i < FAULT_NCALLS; i++) {
        atomic_store(&rules[i].armed, false);
        atomic_store(&rules[i].count, 0);
        atomic_store(&rules[i].failed, 0);
    }
    own();
}

unsigned long fault_count(enum fault_call call)
{
    return atomic_load(&rules[call].count);
}

unsigned long fault_failed(enum fault_call call)
{
    return atomic_load(&rules[call].failed);
}

const char *fault_name(enum fault_call call)
{
    return names[call];
}

/* Count a call; 0 to let it through, or the errno to fail it with. */
static int hit(enum fault_call call)
{
    struct rule *r = &rules[call];
    unsigned long n, at;

    if (!atomic_load(&have_owner) || !pthread_equal(pthread_self(), owner))
        return 0;
    n = atomic_fetch_add(&r->count, 1) + 1;

    if (!atomic_load(&r->armed))
        return 0;
    at = atomic_load(&r->at);
    if (n != at && !(n > at && atomic_load(&r->every_from)))
        return 0;
    atomic_fetch_add(&r->failed, 1);
    return atomic_load(&r->err);
}

/* ---- the wrappers, and the real functions they forward to ------------------ */

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
char *__real_strdup(const char *str);
void *__real_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int __real_madvise(void *addr, size_t len, int advice);
int __real_mprotect(void *addr, size_t len, int prot);
long __real_syscall(long nr, ...);
int __real_epoll_create1(int flags);
int __real_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev);
int __real_epoll_wait(int epfd, struct epoll_event *ev, int n, int timeout);
int __real_epoll_pwait2(int epfd, struct epoll_event *ev, int n, const struct timespec *timeout,
                        const sigset_t *mask);
int __real_eventfd(unsigned int initval, int flags);
int __real_timerfd_create(int clockid, int flags);
int __real_timerfd_settime(int fd, int flags, const struct itimerspec *value,
                           struct itimerspec *old);
int __real_signalfd(int fd, const sigset_t *mask, int flags);
int __real_pthread_create(pthread_t *th, const pthread_attr_t *attr, void *(*fn)(void *),
                          void *arg);
int __real_fcntl(int fd, int cmd, ...);
ssize_t __real_read(int fd, void *buf, size_t n);
ssize_t __real_write(int fd, const void *buf, size_t n);
int __real_poll(struct pollfd *fds, nfds_t n, int timeout);
int __real_socket(int domain, int type, int protocol);
int __real_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);

void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t size);
char *__wrap_strdup(const char *str);
void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int __wrap_madvise(void *addr, size_t len, int advice);
int __wrap_mprotect(void *addr, size_t len, int prot);
long __wrap_syscall(long nr, ...);
int __wrap_epoll_create1(int flags);
int __wrap_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev);
int __wrap_epoll_wait(int epfd, struct epoll_event *ev, int n, int timeout);
int __wrap_epoll_pwait2(int epfd, struct epoll_event *ev, int n, const struct timespec *timeout,
                        const sigset_t *mask);
int __wrap_eventfd(unsigned int initval, int flags);
int __wrap_timerfd_create(int clockid, int flags);
int __wrap_timerfd_settime(int fd, int flags, const struct itimerspec *value,
                           struct itimerspec *old);
int __wrap_signalfd(int fd, const sigset_t *mask, int flags);
int __wrap_pthread_create(pthread_t *th, const pthread_attr_t *attr, void *(*fn)(void *),
                          void *arg);
int __wrap_fcntl(int fd, int cmd, ...);
ssize_t __wrap_read(int fd, void *buf, size_t n);
ssize_t __wrap_write(int fd, const void *buf, size_t n);
int __wrap_poll(struct pollfd *fds, nfds_t n, int timeout);
int __wrap_socket(int domain, int type, int protocol);
int __wrap_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);

/* Fail the call with the rule's errno and return what the function
 * returns on failure. */
#define FAIL_OR_PASS(call, failure)                                                                \
    do {                                                                                           \
        int e_ = hit(call);                                                                        \
        if (e_) {                                                                                  \
            errno = e_;                                                                            \
            return (failure);                                                                      \
        }                                                                                          \
    } while (0)

void *__wrap_malloc(size_t size)
{
    FAIL_OR_PASS(FAULT_MALLOC, NULL);
    return __real_malloc(size);
}

void *__wrap_calloc(size_t n, size_t size)
{
    FAIL_OR_PASS(FAULT_CALLOC, NULL);
    return __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t size)
{
    FAIL_OR_PASS(FAULT_REALLOC, NULL);
    return __real_realloc(p, size);
}

/* strdup allocates inside glibc, where --wrap cannot reach its malloc. */
char *__wrap_strdup(const char *str)
{
    FAIL_OR_PASS(FAULT_STRDUP, NULL);
    return __real_strdup(str);
}

void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    FAIL_OR_PASS(FAULT_MMAP, MAP_FAILED);
    return __real_mmap(addr, len, prot, flags, fd, off);
}

int __wrap_madvise(void *addr, size_t len, int advice)
{
    FAIL_OR_PASS(FAULT_MADVISE, -1);
    return __real_madvise(addr, len, advice);
}

int __wrap_mprotect(void *addr, size_t len, int prot)
{
    FAIL_OR_PASS(FAULT_MPROTECT, -1);
    return __real_mprotect(addr, len, prot);
}

/* syscall(2) takes up to six word-sized arguments after the number; the
 * library passes integers and pointers only, so reading six longs and
 * passing them on is what glibc's own syscall does with its registers. */
long __wrap_syscall(long nr, ...)
{
    long a[6];
    va_list ap;

    FAIL_OR_PASS(FAULT_SYSCALL, -1L);
    va_start(ap, nr);
    for (int i = 0; i < 6; i++)
        a[i] = va_arg(ap, long);
    va_end(ap);
    return __real_syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}

int __wrap_epoll_create1(int flags)
{
    FAIL_OR_PASS(FAULT_EPOLL_CREATE1, -1);
    return __real_epoll_create1(flags);
}

int __wrap_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
    FAIL_OR_PASS(FAULT_EPOLL_CTL, -1);
    return __real_epoll_ctl(epfd, op, fd, ev);
}

int __wrap_epoll_wait(int epfd, struct epoll_event *ev, int n, int timeout)
{
    FAIL_OR_PASS(FAULT_EPOLL_WAIT, -1);
    return __real_epoll_wait(epfd, ev, n, timeout);
}

int __wrap_epoll_pwait2(int epfd, struct epoll_event *ev, int n, const struct timespec *timeout,
                        const sigset_t *mask)
{
    FAIL_OR_PASS(FAULT_EPOLL_PWAIT2, -1);
    return __real_epoll_pwait2(epfd, ev, n, timeout, mask);
}

int __wrap_eventfd(unsigned int initval, int flags)
{
    FAIL_OR_PASS(FAULT_EVENTFD, -1);
    return __real_eventfd(initval, flags);
}

int __wrap_timerfd_create(int clockid, int flags)
{
    FAIL_OR_PASS(FAULT_TIMERFD_CREATE, -1);
    return __real_timerfd_create(clockid, flags);
}

int __wrap_timerfd_settime(int fd, int flags, const struct itimerspec *value,
                           struct itimerspec *old)
{
    FAIL_OR_PASS(FAULT_TIMERFD_SETTIME, -1);
    return __real_timerfd_settime(fd, flags, value, old);
}

int __wrap_signalfd(int fd, const sigset_t *mask, int flags)
{
    FAIL_OR_PASS(FAULT_SIGNALFD, -1);
    return __real_signalfd(fd, mask, flags);
}

/* pthread_create reports its error as its result, not in errno. */
int __wrap_pthread_create(pthread_t *th, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
    int e = hit(FAULT_PTHREAD_CREATE);

    if (e)
        return e;
    return __real_pthread_create(th, attr, fn, arg);
}

/* Only the commands that make an fd are counted and failed: weave's other
 * fcntl calls read or set the flags of an fd it has just found open, which
 * can fail only with EBADF.
 *
 * fcntl's third argument is absent, an int or a pointer, by command: each
 * is passed on as what it is (valgrind checks the arguments a command
 * reads, and an int read as a word may carry garbage in its upper half). */
int __wrap_fcntl(int fd, int cmd, ...)
{
    va_list ap;
    int r;

    if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC)
        FAIL_OR_PASS(FAULT_FCNTL, -1);
    va_start(ap, cmd);
    switch (cmd) {
    case F_GETFD:
    case F_GETFL:
    case F_GETOWN:
    case F_GETSIG:
    case F_GETLEASE:
    case F_GETPIPE_SZ:
    case F_GET_SEALS:
        r = __real_fcntl(fd, cmd);
        break;
    case F_DUPFD:
    case F_DUPFD_CLOEXEC:
    case F_SETFD:
    case F_SETFL:
    case F_SETOWN:
    case F_SETSIG:
    case F_SETLEASE:
    case F_NOTIFY:
    case F_SETPIPE_SZ:
    case F_ADD_SEALS:
        r = __real_fcntl(fd, cmd, va_arg(ap, int));
        break;
    default:
        r = __real_fcntl(fd, cmd, va_arg(ap, void *));
        break;
    }
    va_end(ap);
    return r;
}

ssize_t __wrap_read(int fd, void *buf, size_t n)
{
    FAIL_OR_PASS(FAULT_READ, -1);
    return __real_read(fd, buf, n);
}

ssize_t __wrap_write(int fd, const void *buf, size_t n)
{
    FAIL_OR_PASS(FAULT_WRITE, -1);
    return __real_write(fd, buf, n);
}

int __wrap_poll(struct pollfd *fds, nfds_t n, int timeout)
{
    FAIL_OR_PASS(FAULT_POLL, -1);
    return __real_poll(fds, n, timeout);
}

int __wrap_socket(int domain, int type, int protocol)
{
    FAIL_OR_PASS(FAULT_SOCKET, -1);
    return __real_socket(domain, type, protocol);
}

int __wrap_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    FAIL_OR_PASS(FAULT_ACCEPT4, -1);
    return __real_accept4(fd, addr, len, flags);
}

#ifdef WEAVE_FAULT_IO_URING
/* liburing's calls return -errno rather than setting errno. Declared here
 * so that this file needs no liburing header. */
struct io_uring;
struct io_uring_params;
int __real_io_uring_queue_init_params(unsigned entries, struct io_uring *ring,
                                      struct io_uring_params *p);
int __real_io_uring_submit(struct io_uring *ring);
int __wrap_io_uring_queue_init_params(unsigned entries, struct io_uring *ring,
                                      struct io_uring_params *p);
int __wrap_io_uring_submit(struct io_uring *ring);

int __wrap_io_uring_queue_init_params(unsigned entries, struct io_uring *ring,
                                      struct io_uring_params *p)
{
    int err = hit(FAULT_IO_URING_INIT);

    return err ? -err : __real_io_uring_queue_init_params(entries, ring, p);
}

int __wrap_io_uring_submit(struct io_uring *ring)
{
    int err = hit(FAULT_IO_URING_SUBMIT);

    return err ? -err : __real_io_uring_submit(ring);
}
#endif
