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

/* The node, struct weave_link { next, prev }, is declared in weave.h, so
 * that the statically initialisable objects there (weave_mutex, ...) can
 * hold a wait queue. A zeroed head is not a list yet: weave__list_init it
 * (sync.c does, on first use). */
#include "weave.h"

#define weave__container_of(ptr, type, member)                                                     \
    ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* An empty list, or a node that is in none. */
static inline void weave__list_init(struct weave_link *l)
{
    l->next = l->prev = l;
}

static inline bool weave__list_empty(const struct weave_link *l)
{
    return l->next == l;
}

/* Whether node n is in a list (nodes are initialised unlinked). */
static inline bool weave__list_linked(const struct weave_link *n)
{
    return n->next != n;
}

static inline void weave__list_insert_before(struct weave_link *at, struct weave_link *n)
{
    n->next = at;
    n->prev = at->prev;
    at->prev->next = n;
    at->prev = n;
}

/* Append n at the back of l. */
static inline void weave__list_push(struct weave_link *l, struct weave_link *n)
{
    weave__list_insert_before(l, n);
}

/* Put n at the front of l. */
static inline void weave__list_push_front(struct weave_link *l, struct weave_link *n)
{
    weave__list_insert_before(l->next, n);
}

/* Unlink n and leave it unlinked (pointing at itself); harmless if it is. */
static inline void weave__list_del(struct weave_link *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->next = n->prev = n;
}

/* The first node of l, or NULL if it is empty. */
static inline struct weave_link *weave__list_first(const struct weave_link *l)
{
    return l->next == l ? NULL : l->next;
}

/* Unlink and return the first node of l, or NULL if it is empty. The head
 * is relinked by name rather than through n->prev (which is l), so that the
 * static analyzer sees l->next move on when the caller frees n. */
static inline struct weave_link *weave__list_pop(struct weave_link *l)
{
    struct weave_link *n = l->next;

    if (n == l)
        return NULL;
    l->next = n->next;
    n->next->prev = l;
    n->next = n->prev = n;
    return n;
}

/* Iterate over the nodes of l; the body may unlink the current node. */
#define weave__list_each(pos, tmp, l)                                                              \
    for ((pos) = (l)->next, (tmp) = (pos)->next; (pos) != (l); (pos) = (tmp), (tmp) = (pos)->next)

#endif /* WEAVE_LIST_H */
