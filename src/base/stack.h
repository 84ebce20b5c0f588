/*
 * stack.h - task stacks: slab-mapped, lazily committed, guarded, pooled.
 *
 * Stacks of one size and one guard size (a class) are carved from slab
 * mappings. Below every stack sits its guard region, installed with
 * madvise(MADV_GUARD_INSTALL) where the kernel has it (6.13+), which keeps a
 * slab a single mapping however many stacks it holds; elsewhere with
 * mprotect(PROT_NONE), which costs two mappings per stack and so meets
 * vm.max_map_count near 32,700 stacks. Classes never share a slab, so a
 * stack always lies above stacks with the same guard as its own (or below
 * the slab's start, which is unmapped or another slab). Freed stacks stay
 * mapped for reuse; past a small hot set their pages are handed back with
 * MADV_DONTNEED when the scheduler is idle, and entirely free slabs are
 * unmapped past a spare capacity of a few hundred stacks per size.
 *
 * A pool belongs to one scheduler (one thread); nothing here is shared.
 */
#ifndef WEAVE_STACK_H
#define WEAVE_STACK_H

#include <stddef.h>
#include <stdint.h>

#include "base/list.h"

struct weave__slab;
struct weave__stack_class;

/* A stack handed out by the pool: usable memory [lo, lo + size). */
struct weave__stack {
    char *lo;                 /* lowest usable byte; guard below */
    size_t size;              /* usable bytes, a multiple of the page */
    size_t guard;             /* bytes of guard right below lo */
    struct weave__slab *slab; /* slab it was carved from */
    uint32_t index;           /* its index in the slab */
};

enum weave__guard_mode {
    WEAVE__GUARD_UNKNOWN = 0, /* nothing mapped yet */
    WEAVE__GUARD_MADVISE = 1, /* MADV_GUARD_INSTALL */
    WEAVE__GUARD_MPROTECT = 2 /* mprotect(PROT_NONE), two VMAs a stack */
};

#define WEAVE__STACK_FRONT 16 /* free stacks the front holds */

/*
 * The front: up to WEAVE__STACK_FRONT free stacks of one class (the class of
 * the last free), kept LIFO in front of the slabs, so that a spawn after a
 * join takes a stack back without looking at a class list or a slab. Its
 * stacks are hot and free for the pool's counts (cached, hot) but still
 * handed out for their slabs, which never see them until the front gives
 * them back, when a stack of another class is freed, or at term. A free
 * that finds the front full goes to its slab.
 */
struct weave__stack_pool {
    struct weave_link classes;            /* one per stack size in use */
    size_t page;                          /* system page size */
    size_t guard;                         /* default bytes of guard below a stack */
    int guard_mode;                       /* enum weave__guard_mode */
    int no_batch;                         /* process_madvise on ourselves refused */
    uint64_t in_use;                      /* stacks handed out */
    uint64_t cached;                      /* free stacks still mapped, the front's too */
    uint64_t hot;                         /* free ones whose pages may be committed, ditto */
    uint64_t mapped_bytes;                /* virtual bytes of all slabs */
    uint32_t nfront;                      /* stacks in front[] */
    size_t front_size;                    /* usable bytes of the front's class (0: none yet) */
    size_t front_guard;                   /* its guard bytes */
    struct weave__stack_class *front_cls; /* that class */
    struct weave__stack front[WEAVE__STACK_FRONT]; /* [0, nfront), last freed last */
};

void weave__stack_pool_init(struct weave__stack_pool *pool);

/* Unmap every slab, the front's stacks with the others. Stacks still in use
 * must not run again. The pool is then empty, and may be used again. */
void weave__stack_pool_term(struct weave__stack_pool *pool);

/* Set the guard that weave__stack_alloc puts below a stack when asked for
 * none in particular (one page after init); guard is a nonzero multiple of
 * the page. Stacks handed out already keep theirs. */
void weave__stack_set_guard(struct weave__stack_pool *pool, size_t guard);

/* Hand out a stack of at least size usable bytes, with guard bytes of guard
 * below it (a multiple of the page; 0 = the pool's default). No system call
 * when a free stack of that class is at hand, and a few loads and stores
 * when the front holds one. Returns 0, or -ENOMEM when memory, address
 * space or the kernel's map count runs out. */
int weave__stack_alloc_guarded(struct weave__stack_pool *pool, size_t size, size_t guard,
                               struct weave__stack *out);

/* weave__stack_alloc_guarded with the pool's default guard. */
static inline int weave__stack_alloc(struct weave__stack_pool *pool, size_t size,
                                     struct weave__stack *out)
{
    return weave__stack_alloc_guarded(pool, size, 0, out);
}

/* Give a stack back to the pool: to the front, unless it is full or holds
 * another class (which it then gives back to the slabs first). */
void weave__stack_free(struct weave__stack_pool *pool, struct weave__stack *st);

/* Hand back the pages of free stacks beyond the few kept ready for reuse
 * (at most WEAVE__STACK_HOT_MAX of a class stay hot, the front's counted
 * among them). Cheap when there is nothing to do; the scheduler calls it
 * when idle. */
void weave__stack_trim(struct weave__stack_pool *pool);

#define WEAVE__STACK_HOT_MAX 64 /* hot free stacks a size keeps after a trim */

/* Whether weave__stack_trim may have work to do. */
static inline int weave__stack_trim_due(const struct weave__stack_pool *pool)
{
    return pool->hot > WEAVE__STACK_HOT_MAX;
}

/* Round size up to whole pages; 0 if that overflows. */
size_t weave__stack_round(const struct weave__stack_pool *pool, size_t size);

#endif /* WEAVE_STACK_H */
