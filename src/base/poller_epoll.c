/*
 * poller_epoll.c - epoll backend.
 *
 * Edge-triggered registration means the kernel reports a change of state,
 * not a state: a waiter must first have found the fd not ready (EAGAIN, or
 * a zero-timeout poll) before it parks, and every wake-up is a fresh event.
 * In exchange no registration is ever re-armed or dropped between waits,
 * and an fd whose peer hung up does not flood every wait with EPOLLHUP.
 *
 * The timerfd is registered edge-triggered too and never read: each expiry
 * is a fresh event, and the scheduler reads the clock itself. Its events are
 * taken out of the batch before the caller sees it.
 */
#include "base/poller.h"

#include <errno.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "weave.h"

int weave__poller_init(struct weave__poller *p)
{
    struct epoll_event ev;
    int r;

    p->armed = 0;
    p->tfd = -1;
    p->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (p->epfd < 0)
        return -errno;
    p->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (p->tfd < 0)
        goto fail;
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN | EPOLLET;
    ev.data.ptr = &p->tfd; /* no registration's data can be this */
    if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->tfd, &ev) != 0)
        goto fail;
    return 0;
fail:
    /* epoll_ctl fails with ENOSPC at the user's limit of epoll watches
     * (max_user_watches): for the caller, that is out of memory. */
    r = errno == ENOSPC ? -ENOMEM : -errno;
    weave__poller_term(p);
    return r;
}

void weave__poller_term(struct weave__poller *p)
{
    if (p->tfd >= 0)
        close(p->tfd);
    if (p->epfd >= 0)
        close(p->epfd);
    p->tfd = p->epfd = -1;
}

int weave__poller_add(struct weave__poller *p, int fd, void *data, int in_only)
{
    struct epoll_event ev;

    memset(&ev, 0, sizeof(ev));
    ev.events = in_only ? EPOLLIN | EPOLLET : EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.ptr = data;
    if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &ev) != 0)
        return -errno;
    return 0;
}

void weave__poller_del(struct weave__poller *p, int fd)
{
    /* The kernel may have dropped it already, when the fd was closed. */
    (void)epoll_ctl(p->epfd, EPOLL_CTL_DEL, fd, NULL);
}

static int arm(struct weave__poller *p, int64_t deadline)
{
    struct itimerspec its;

    if (deadline == p->armed)
        return 0;
    memset(&its, 0, sizeof(its));
    its.it_value.tv_sec = (time_t)(deadline / 1000000000);
    its.it_value.tv_nsec = (long)(deadline % 1000000000);
    if (timerfd_settime(p->tfd, TFD_TIMER_ABSTIME, &its, NULL) != 0)
        return -errno;
    p->armed = deadline;
    return 0;
}

void weave__poller_arm(struct weave__poller *p, int64_t deadline)
{
    (void)arm(p, deadline); /* a failed arm: the loop still has next_ms */
}

int weave__poller_wait(struct weave__poller *p, int64_t deadline)
{
    int n, kept = 0, r;

    if (deadline != WEAVE__POLL_NOW && deadline != WEAVE__POLL_FOREVER &&
        (r = arm(p, deadline)) < 0)
        return r;
    n = epoll_wait(p->epfd, p->events, WEAVE__POLL_BATCH, deadline == WEAVE__POLL_NOW ? 0 : -1);
    if (n < 0)
        return -errno;
    for (int i = 0; i < n; i++) {
        if (p->events[i].data.ptr == &p->tfd)
            p->armed = 0; /* it fired: the next deadline must arm it again */
        else
            p->events[kept++] = p->events[i];
    }
    return kept;
}

void *weave__poller_data(const struct weave__poller *p, int i)
{
    return p->events[i].data.ptr;
}

int weave__poller_mask(const struct weave__poller *p, int i)
{
    uint32_t e = p->events[i].events;
    int m = 0;

    if (e & (EPOLLIN | EPOLLPRI | EPOLLRDHUP))
        m |= WEAVE_IN;
    if (e & EPOLLRDHUP)
        m |= WEAVE__RDHUP;
    if (e & EPOLLOUT)
        m |= WEAVE_OUT;
    if (e & EPOLLERR)
        m |= WEAVE_ERR | WEAVE_IN | WEAVE_OUT;
    if (e & EPOLLHUP)
        m |= WEAVE_HUP | WEAVE_IN | WEAVE_OUT;
    return m;
}
