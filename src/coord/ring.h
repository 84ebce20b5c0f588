/*
 * ring.h - a channel's record and its ring buffer, for chan.c and for
 * shared.c, which keeps the same buffer under a lock.
 */
#ifndef WEAVE_RING_H
#define WEAVE_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "weave.h"

struct weave__shared;

struct weave_chan {
    size_t elem_size;             /* bytes per element, may be 0 */
    size_t cap;                   /* elements the buffer holds; 0: rendezvous */
    size_t head;                  /* index of the oldest buffered element */
    size_t len;                   /* elements buffered */
    unsigned char *buf;           /* cap * elem_size bytes, or NULL */
    struct weave_waitq senders;   /* local: waiter data, the element to send */
    struct weave_waitq receivers; /* local: waiter data, where it goes, or NULL */
    bool closed;                  /* weave_chan_close was called */
    const void *home;             /* local: the thread whose tasks use it (weave__claim) */
    struct weave__shared *shared; /* a shared channel's lock and waiters, or NULL */
};

static inline void weave__ring_copy(const weave_chan *c, void *to, const void *from)
{
    if (!to)
        return;
    /* The common sizes as moves of their own, not a call of memcpy. */
    switch (c->elem_size) {
    case 0:
        return;
    case 4:
        memcpy(to, from, 4);
        return;
    case 8:
        memcpy(to, from, 8);
        return;
    case 16:
        memcpy(to, from, 16);
        return;
    default:
        memcpy(to, from, c->elem_size);
    }
}

/* Append a copy of elem (there is room). */
static inline void weave__ring_push(weave_chan *c, const void *elem)
{
    size_t tail = c->head + c->len;

    if (tail >= c->cap)
        tail -= c->cap;
    weave__ring_copy(c, c->buf + tail * c->elem_size, elem);
    c->len++;
}

/* Take the oldest element into elem (NULL: drop it; there is one). */
static inline void weave__ring_pop(weave_chan *c, void *elem)
{
    weave__ring_copy(c, elem, c->buf + c->head * c->elem_size);
    if (++c->head == c->cap)
        c->head = 0;
    c->len--;
}

#endif /* WEAVE_RING_H */
