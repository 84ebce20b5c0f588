/*
 * poller_epoll.c - epoll backend.
 *
 * Edge-triggered registration means the kernel reports a change of state,
 * not a state: a waiter must first have found the fd not ready (EAGAIN, or
 * a zero-timeout poll) before it parks, and every wake-up is a fresh event.
 * In exchange no registration is ever re-armed or dropped between waits,
 * and an fd whose peer hung up does not flood every wait with EPOLLHUP.
 */
#include "poller.h"

#include <errno.h>
#include <limits.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "weave.h"

#ifdef WEAVE_HAVE_VALGRIND_H
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

#ifndef SYS_epoll_pwait2
#define SYS_epoll_pwait2 441
#endif

int weave__poller_init(struct weave__poller *p)
{
    p->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (p->epfd < 0)
        return -errno;
    /* valgrind 3.19 does not know epoll_pwait2 and warns on every process
     * that tries it; it cannot honour nanoseconds anyway. */
    p->have_pwait2 = !RUNNING_ON_VALGRIND;
    p->registered = 0;
    return 0;
}

void weave__poller_term(struct weave__poller *p)
{
    if (p->epfd >= 0)
        close(p->epfd);
    p->epfd = -1;
}

int weave__poller_add(struct weave__poller *p, int fd, uint64_t cookie)
{
    struct epoll_event ev;

    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.u64 = cookie;
    if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &ev) != 0)
        return -errno;
    p->registered++;
    return 0;
}

void weave__poller_del(struct weave__poller *p, int fd)
{
    /* Always counted down: weave's registration is gone either way, even
     * when the kernel dropped it already because the fd was closed. */
    (void)epoll_ctl(p->epfd, EPOLL_CTL_DEL, fd, NULL);
    p->registered--;
}

int weave__poller_wait(struct weave__poller *p, int64_t timeout_ns)
{
    int n;

    if (p->have_pwait2) {
        struct timespec ts, *tsp = NULL;

        if (timeout_ns >= 0) {
            ts.tv_sec = (time_t)(timeout_ns / 1000000000);
            ts.tv_nsec = (long)(timeout_ns % 1000000000);
            tsp = &ts;
        }
        n = (int)syscall(SYS_epoll_pwait2, p->epfd, p->events, WEAVE__POLL_BATCH, tsp, NULL, 0);
        if (n >= 0)
            return n;
        if (errno != ENOSYS)
            return -errno;
        p->have_pwait2 = 0;
    }
    {
        int ms;

        if (timeout_ns < 0)
            ms = -1;
        else if (timeout_ns / 1000000 >= INT_MAX)
            ms = INT_MAX; /* the caller loops until its deadline */
        else
            ms = (int)((timeout_ns + 999999) / 1000000);
        n = epoll_wait(p->epfd, p->events, WEAVE__POLL_BATCH, ms);
    }
    return n >= 0 ? n : -errno;
}

uint64_t weave__poller_cookie(const struct weave__poller *p, int i)
{
    return p->events[i].data.u64;
}

int weave__poller_mask(const struct weave__poller *p, int i)
{
    uint32_t e = p->events[i].events;
    int m = 0;

    if (e & (EPOLLIN | EPOLLPRI | EPOLLRDHUP))
        m |= WEAVE_IN;
    if (e & EPOLLOUT)
        m |= WEAVE_OUT;
    if (e & EPOLLERR)
        m |= WEAVE_ERR | WEAVE_IN | WEAVE_OUT;
    if (e & EPOLLHUP)
        m |= WEAVE_HUP | WEAVE_IN | WEAVE_OUT;
    return m;
}
