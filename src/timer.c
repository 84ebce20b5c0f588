/*
 * timer.c - binary min-heap of timers ordered by (deadline, seq).
 *
 * Invariant: for every i > 0, before(heap[(i - 1) / 2], heap[i]) or the two
 * are equal, and heap[i]->index == i.
 */
#include "timer.h"

#include <errno.h>
#include <stdlib.h>

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
    struct weave__timer **p;
    size_t cap;

    if (n <= h->cap)
        return 0;
    cap = h->cap ? h->cap : 64;
    while (cap < n) {
        if (cap > SIZE_MAX / 2 / sizeof(struct weave__timer *))
            return -ENOMEM;
        cap *= 2;
    }
    p = realloc(h->heap, cap * sizeof(struct weave__timer *));
    if (!p)
        return -ENOMEM;
    h->heap = p;
    h->cap = cap;
    return 0;
}

static int before(const struct weave__timer *a, const struct weave__timer *b)
{
    return a->deadline < b->deadline || (a->deadline == b->deadline && a->seq < b->seq);
}

static void place(struct weave__timers *h, size_t i, struct weave__timer *t)
{
    h->heap[i] = t;
    t->index = i;
}

static void sift_up(struct weave__timers *h, size_t i, struct weave__timer *t)
{
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!before(t, h->heap[parent]))
            break;
        place(h, i, h->heap[parent]);
        i = parent;
    }
    place(h, i, t);
}

static void sift_down(struct weave__timers *h, size_t i, struct weave__timer *t)
{
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= h->len)
            break;
        if (child + 1 < h->len && before(h->heap[child + 1], h->heap[child]))
            child++;
        if (!before(h->heap[child], t))
            break;
        place(h, i, h->heap[child]);
        i = child;
    }
    place(h, i, t);
}

void weave__timers_add(struct weave__timers *h, struct weave__timer *t, int64_t deadline)
{
    t->deadline = deadline;
    t->seq = h->seq++;
    sift_up(h, h->len++, t);
}

void weave__timers_remove(struct weave__timers *h, struct weave__timer *t)
{
    size_t i = t->index;
    struct weave__timer *last;

    if (i == WEAVE__TIMER_IDLE)
        return;
    t->index = WEAVE__TIMER_IDLE;
    last = h->heap[--h->len];
    if (last == t)
        return;
    /* Put the last timer in the hole and restore order in whichever
     * direction it is out of place. */
    if (i > 0 && before(last, h->heap[(i - 1) / 2]))
        sift_up(h, i, last);
    else
        sift_down(h, i, last);
}

struct weave__timer *weave__timers_expired(struct weave__timers *h, int64_t now)
{
    struct weave__timer *t = weave__timers_first(h);

    if (!t || t->deadline > now)
        return NULL;
    weave__timers_remove(h, t);
    return t;
}
