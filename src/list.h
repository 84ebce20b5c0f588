/*
 * list.h - the one intrusive list of weave: circular, doubly linked, with a
 * sentinel head.
 *
 * A node is embedded in its owner and found again with weave__container_of.
 * An empty list (and an unlinked node, after weave__list_del) points at
 * itself, so a node can tell whether it is linked without a flag, and every
 * operation is O(1) without a branch on emptiness. Used for the run queue,
 * the live list, wait queues, stack slabs and the offload queues.
 */
#ifndef WEAVE_LIST_H
#define WEAVE_LIST_H

#include <stdbool.h>
#include <stddef.h>

struct weave__list {
    struct weave__list *next; /* next node, or the head after the last */
    struct weave__list *prev; /* previous node, or the head before the first */
};

#define weave__container_of(ptr, type, member)                                                     \
    ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* An empty list, or a node that is in none. */
static inline void weave__list_init(struct weave__list *l)
{
    l->next = l->prev = l;
}

static inline bool weave__list_empty(const struct weave__list *l)
{
    return l->next == l;
}

/* Whether node n is in a list (nodes are initialised unlinked). */
static inline bool weave__list_linked(const struct weave__list *n)
{
    return n->next != n;
}

static inline void weave__list_insert_before(struct weave__list *at, struct weave__list *n)
{
    n->next = at;
    n->prev = at->prev;
    at->prev->next = n;
    at->prev = n;
}

/* Append n at the back of l. */
static inline void weave__list_push(struct weave__list *l, struct weave__list *n)
{
    weave__list_insert_before(l, n);
}

/* Put n at the front of l. */
static inline void weave__list_push_front(struct weave__list *l, struct weave__list *n)
{
    weave__list_insert_before(l->next, n);
}

/* Unlink n and leave it unlinked (pointing at itself); harmless if it is. */
static inline void weave__list_del(struct weave__list *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->next = n->prev = n;
}

/* The first node of l, or NULL if it is empty. */
static inline struct weave__list *weave__list_first(const struct weave__list *l)
{
    return l->next == l ? NULL : l->next;
}

/* Unlink and return the first node of l, or NULL if it is empty. */
static inline struct weave__list *weave__list_pop(struct weave__list *l)
{
    struct weave__list *n = weave__list_first(l);

    if (n)
        weave__list_del(n);
    return n;
}

/* Iterate over the nodes of l; the body may unlink the current node. */
#define weave__list_each(pos, tmp, l)                                                              \
    for ((pos) = (l)->next, (tmp) = (pos)->next; (pos) != (l); (pos) = (tmp), (tmp) = (pos)->next)

#endif /* WEAVE_LIST_H */
