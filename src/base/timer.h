/*
 * timer.h - the timer heap: a 4-ary min-heap of deadlines.
 *
 * Timers are ordered by (deadline, seq): seq counts insertions, so equal
 * deadlines leave the heap in the order they were set. Each timer knows its
 * index in the heap, so removing one (a woken or cancelled sleeper) costs
 * O(log n) like inserting and popping. The heap never allocates on insert
 * once room is reserved.
 *
 * The heap keeps each timer's key (deadline, seq) in its own array, next
 * to the pointer: comparisons read only that array, never the timers,
 * which live in task records spread over as many pages as there are
 * tasks. A sift touches a timer only to tell it its new index. With four
 * children per node the heap is half as deep as a binary one, so a pop
 * among 10^6 timers moves about 10 entries instead of 20.
 */
#ifndef WEAVE_TIMER_H
#define WEAVE_TIMER_H

#include <stddef.h>
#include <stdint.h>

#define WEAVE__TIMER_IDLE SIZE_MAX /* index of a timer that is not armed */

struct weave__timer {
    int64_t deadline; /* CLOCK_MONOTONIC, nanoseconds (kept after it fires) */
    uint64_t seq;     /* insertion order, breaks deadline ties */
    size_t index;     /* slot in the heap, or WEAVE__TIMER_IDLE */
};

/* A slot of the heap: a timer and a copy of its key. */
struct weave__timer_slot {
    int64_t deadline;
    uint64_t seq;
    struct weave__timer *timer;
};

struct weave__timers {
    struct weave__timer_slot *heap; /* heap[0] has the earliest deadline */
    size_t len;                     /* armed timers */
    size_t cap;                     /* slots allocated */
    uint64_t seq;                   /* next insertion number */
};

void weave__timers_init(struct weave__timers *h);
void weave__timers_term(struct weave__timers *h);

/* Make room for n armed timers, so that weave__timers_add cannot fail while
 * at most n are armed. Returns 0 or -ENOMEM. */
int weave__timers_reserve(struct weave__timers *h, size_t n);

/* Give back memory beyond the room for n armed timers, when that is most
 * of it; never below what is armed. */
void weave__timers_shrink(struct weave__timers *h, size_t n);

/* Arm t at deadline; t must be idle and room reserved. */
void weave__timers_add(struct weave__timers *h, struct weave__timer *t, int64_t deadline);

/* Disarm t if it is armed. */
void weave__timers_remove(struct weave__timers *h, struct weave__timer *t);

/* Whether a timer is armed, and the earliest deadline (valid if so). */
static inline int weave__timers_any(const struct weave__timers *h)
{
    return h->len != 0;
}

static inline int64_t weave__timers_next(const struct weave__timers *h)
{
    return h->heap[0].deadline;
}

/* Disarm and return the earliest timer if its deadline is <= now, else NULL. */
struct weave__timer *weave__timers_expired(struct weave__timers *h, int64_t now);

static inline int weave__timer_armed(const struct weave__timer *t)
{
    return t->index != WEAVE__TIMER_IDLE;
}

#endif /* WEAVE_TIMER_H */
