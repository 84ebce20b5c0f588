/*
 * timer.c - a 4-ary min-heap of timers ordered by (deadline, seq).
 *
 * Invariant: for every i > 0, the slot (i - 1) / 4 comes before slot i or
 * has the same key; heap[i].timer->index == i, and heap[i] holds a copy of
 * heap[i].timer's deadline and seq.
 */
#include "base/timer.h"

#include <errno.h>
#include <stdlib.h>

#define ARITY 4

void weave__timers_init(struct weave__timers *h)
{
    h->heap = NULL;
    h->len = h->cap = 0;
    h->seq = 0;
}

void weave__timers_term(struct weave__timers *h)
{
    free(h->heap);
    weave__timers_init(h);
}

int weave__timers_reserve(struct weave__timers *h, size_t n)
{
    struct weave__timer_slot *p;
    size_t cap;

    if (n <= h->cap)
        return 0;
    cap = h->cap ? h->cap : 64;
    while (cap < n) {
        if (cap > SIZE_MAX / 2 / sizeof(*p))
            return -ENOMEM;
        cap *= 2;
    }
    p = realloc(h->heap, cap * sizeof(*p));
    if (!p)
        return -ENOMEM;
    h->heap = p;
    h->cap = cap;
    return 0;
}

void weave__timers_shrink(struct weave__timers *h, size_t n)
{
    struct weave__timer_slot *p;
    size_t cap = 64;

    while (cap < n || cap < h->len)
        cap *= 2;
    if (cap * 4 > h->cap)
        return; /* not worth a copy */
    if ((p = realloc(h->heap, cap * sizeof(*p))) == NULL)
        return; /* keep the larger one */
    h->heap = p;
    h->cap = cap;
}

static inline int before(const struct weave__timer_slot *a, const struct weave__timer_slot *b)
{
    return a->deadline < b->deadline || (a->deadline == b->deadline && a->seq < b->seq);
}

static inline void place(struct weave__timers *h, size_t i, struct weave__timer_slot s)
{
    h->heap[i] = s;
    s.timer->index = i;
}

static void sift_up(struct weave__timers *h, size_t i, struct weave__timer_slot s)
{
    while (i > 0) {
        size_t parent = (i - 1) / ARITY;
        if (!before(&s, &h->heap[parent]))
            break;
        place(h, i, h->heap[parent]);
        i = parent;
    }
    place(h, i, s);
}

static void sift_down(struct weave__timers *h, size_t i, struct weave__timer_slot s)
{
    for (;;) {
        size_t first = ARITY * i + 1, last = first + ARITY, best;

        if (first >= h->len)
            break;
        if (last > h->len)
            last = h->len;
        best = first;
        for (size_t c = first + 1; c < last; c++)
            if (before(&h->heap[c], &h->heap[best]))
                best = c;
        if (!before(&h->heap[best], &s))
            break;
        place(h, i, h->heap[best]);
        i = best;
    }
    place(h, i, s);
}

void weave__timers_add(struct weave__timers *h, struct weave__timer *t, int64_t deadline)
{
    struct weave__timer_slot s = {deadline, h->seq++, t};

    t->deadline = deadline;
    t->seq = s.seq;
    sift_up(h, h->len++, s);
}

void weave__timers_remove(struct weave__timers *h, struct weave__timer *t)
{
    size_t i = t->index;
    struct weave__timer_slot last;

    if (i == WEAVE__TIMER_IDLE)
        return;
    t->index = WEAVE__TIMER_IDLE;
    last = h->heap[--h->len];
    if (last.timer == t)
        return;
    /* Put the last timer in the hole and restore order in whichever
     * direction it is out of place. */
    if (i > 0 && before(&last, &h->heap[(i - 1) / ARITY]))
        sift_up(h, i, last);
    else
        sift_down(h, i, last);
}

struct weave__timer *weave__timers_expired(struct weave__timers *h, int64_t now)
{
    struct weave__timer *t;

    if (h->len == 0 || h->heap[0].deadline > now)
        return NULL;
    t = h->heap[0].timer;
    weave__timers_remove(h, t);
    return t;
}
