/*
 * stack.c - slab-mapped, guarded, pooled task stacks.
 *
 * A class is one stack size and one guard size. Layout of a slab of n
 * stacks of a class (stride = guard + size):
 *
 *     base                                                    base + n*stride
 *     | guard | stack 0 ... | guard | stack 1 ... | ... | guard | stack n-1 |
 *
 * Stacks grow down, so each guard sits below its stack. A guard costs no
 * memory when made with MADV_GUARD_INSTALL (only address space, and the
 * page-table entries that mark it), and one guard region per stack however
 * large. Slabs of different classes are separate mappings: a stack with a
 * small guard never lies right above one with a large guard, so a task that
 * asks for a small guard puts at risk only stacks that asked for the same.
 * Pages are committed
 * only when touched (MAP_NORESERVE, no MAP_POPULATE) and transparent huge
 * pages are refused for slabs, since one huge page would commit 2 MiB for a
 * stack that touches one 4 KiB page.
 *
 * Freeing a stack makes no system call: the stack turns "hot" (its pages
 * may still be committed) and is reused first. Up to WEAVE__STACK_FRONT
 * freed stacks of the class freed last wait in the pool's front (see
 * stack.h), where a spawn finds them without a look at the class list or a
 * slab; the slabs hold the rest, each on a LIFO free list. Hot stacks
 * beyond HOT_MAX are handed back with MADV_DONTNEED (the guard stays) by
 * weave__stack_trim, which the scheduler calls when it is about to sleep, or
 * at once past HOT_LIMIT. A slab whose stacks are all free is unmapped, unless the class
 * would then have fewer than RETAIN free stacks: a burst of tasks that
 * comes and goes does not map and unmap slabs every time.
 *
 * Invariants of a class:
 *   - every slab is on the class's list of all slabs; a slab with at least
 *     one free stack is also on its partial list;
 *   - a free stack is hot or "cold" (never touched, or released); hot counts
 *     them per slab, per class and per pool;
 *   - nfree counts the free stacks of all its slabs.
 * And of the pool: the front holds nfront hot stacks of front_cls, which
 * their slabs count as handed out; cached and hot count them as free, so
 *     cached = nfront + the classes' nfree,  hot = nfront + the classes' hot.
 */
#include "base/stack.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "base/context.h" /* WEAVE_ASAN */
#include "base/list.h"

#ifdef WEAVE_HAVE_VALGRIND_H
#include <valgrind/valgrind.h>
#define vg_register(lo, hi) VALGRIND_STACK_REGISTER(lo, hi)
#define vg_deregister(id)   VALGRIND_STACK_DEREGISTER(id)
#else
#define vg_register(lo, hi) ((void)(lo), (void)(hi), 1u)
#define vg_deregister(id)   ((void)(id))
#endif

#ifdef WEAVE_ASAN
#include <sanitizer/asan_interface.h>
#endif

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102 /* Linux 6.13; glibc 2.36 lacks the name */
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif
#define PIDFD_SELF_PROCESS (-10001) /* process_madvise on ourselves, Linux 6.14 */
#define BATCH                                                                                      \
    64 /* ranges per process_madvise call (1 KiB of iovecs
                                       on the stack: this may run on a small task stack) */

#define NO_INDEX        UINT32_MAX
#define HOT_MAX         WEAVE__STACK_HOT_MAX
#define HOT_LIMIT       4096               /* hot free stacks in a pool that force a trim */
#define RETAIN          256                /* free stacks a class keeps before unmapping */
#define SLAB_FIRST      8                  /* stacks in a class's first slab */
#define SLAB_MAX_STACKS 256                /* ... growing up to this many */
#define SLAB_MAX_BYTES  ((size_t)64 << 20) /* ... within this much mapping */

struct weave__slab {
    struct weave_link all;     /* in the class's list of all slabs */
    struct weave_link partial; /* in its partial list, while a stack is free */
    struct weave__stack_class *cls;
    char *base;          /* start of the mapping */
    size_t map_len;      /* its length in bytes */
    uint32_t nstacks;    /* stacks in the slab */
    uint32_t nfree;      /* free ones */
    uint32_t hot;        /* free ones that are hot */
    uint32_t free_head;  /* first free, LIFO */
    uint32_t *next_free; /* [nstacks] free-list links */
    uint8_t *cold;       /* [nstacks] 1 = no pages (meaningful when free) */
    unsigned *vg_id;     /* [nstacks] valgrind id or 0 */
};

struct weave__stack_class {
    struct weave_link link;    /* in the pool's classes, most recently used first */
    size_t size;               /* usable bytes per stack */
    size_t guard;              /* bytes of guard below each stack */
    size_t stride;             /* guard + size */
    struct weave_link slabs;   /* all slabs */
    struct weave_link partial; /* slabs with a free stack */
    uint64_t nfree;            /* free stacks in all slabs */
    uint64_t hot;              /* hot ones */
    uint32_t next_nstacks;     /* size of the next slab */
};

void weave__stack_pool_init(struct weave__stack_pool *pool)
{
    long page = sysconf(_SC_PAGESIZE);

    memset(pool, 0, sizeof(*pool));
    weave__list_init(&pool->classes);
    pool->page = page > 0 ? (size_t)page : 4096;
    pool->guard = pool->page;
}

void weave__stack_set_guard(struct weave__stack_pool *pool, size_t guard)
{
    pool->guard = guard;
}

size_t weave__stack_round(const struct weave__stack_pool *pool, size_t size)
{
    size_t mask = pool->page - 1;

    if (size > SIZE_MAX - mask)
        return 0;
    return (size + mask) & ~mask;
}

static int install_guard(struct weave__stack_pool *pool, char *at, size_t len)
{
    if (pool->guard_mode != WEAVE__GUARD_MPROTECT) {
        if (madvise(at, len, MADV_GUARD_INSTALL) == 0) {
            pool->guard_mode = WEAVE__GUARD_MADVISE;
            return 0;
        }
        /* EINVAL: this kernel has no guard regions. Anything else (ENOMEM
         * for page tables, say) is a real failure. */
        if (errno != EINVAL || pool->guard_mode == WEAVE__GUARD_MADVISE)
            return -1;
        pool->guard_mode = WEAVE__GUARD_MPROTECT;
    }
    return mprotect(at, len, PROT_NONE);
}

/* madvise(advice) on the n ranges of iov, in as few system calls as the
 * kernel allows: process_madvise on this process where it accepts the
 * advice (Linux 6.14+), else -1 with errno, and the caller does one
 * madvise per range (or goes without). */
static int madvise_batch(struct weave__stack_pool *pool, struct iovec *iov, size_t n, int advice)
{
#ifdef SYS_process_madvise
    size_t done = 0;

    if (pool->no_batch) {
        errno = ENOSYS;
        return -1;
    }
    while (done < n) {
        size_t k = n - done < BATCH ? n - done : BATCH;
        long r = syscall(SYS_process_madvise, PIDFD_SELF_PROCESS, iov + done, k, advice, 0);

        if (r < 0) {
            if (errno == EBADF || errno == ENOSYS || errno == EPERM)
                pool->no_batch = 1; /* this kernel: no process_madvise on ourselves */
            return -1;
        }
        /* It may stop early (a range it cannot advise): go on from there. */
        while (done < n && r >= (long)iov[done].iov_len) {
            r -= (long)iov[done].iov_len;
            done++;
        }
        if (done < n && r > 0) {
            iov[done].iov_base = (char *)iov[done].iov_base + r;
            iov[done].iov_len -= (size_t)r;
        }
    }
    return 0;
#else
    (void)pool, (void)iov, (void)n, (void)advice;
    errno = ENOSYS;
    return -1;
#endif
}

/* Guard every stack of a slab of n stacks of class c at base. Returns 0, or
 * -1 with errno (ENOMEM). */
static int guard_slab(struct weave__stack_pool *pool, const struct weave__stack_class *c,
                      char *base, uint32_t n)
{
    size_t stride = c->stride;

    struct iovec iov[BATCH];

    if (pool->guard_mode != WEAVE__GUARD_MPROTECT && !pool->no_batch) {
        uint32_t i = 0;

        while (i < n) {
            uint32_t k = 0;
            for (; k < BATCH && i + k < n; k++) {
                iov[k].iov_base = base + (size_t)(i + k) * stride;
                iov[k].iov_len = c->guard;
            }
            if (madvise_batch(pool, iov, k, MADV_GUARD_INSTALL) != 0)
                break;
            pool->guard_mode = WEAVE__GUARD_MADVISE;
            i += k;
        }
        if (i == n)
            return 0;
        if (i > 0 && errno != EINVAL && errno != EBADF && errno != ENOSYS && errno != EPERM)
            return -1;
        /* Go on one stack at a time (installing a guard twice is harmless). */
    }
    for (uint32_t i = 0; i < n; i++)
        if (install_guard(pool, base + (size_t)i * stride, c->guard) != 0)
            return -1;
    return 0;
}

/* Commit the top page of every stack of a slab in a few system calls, where
 * the kernel allows: a task's record and first frames live there, and a
 * page faulted in by the batch costs less than one faulted in by a write. */
static void populate_tops(struct weave__stack_pool *pool, char *base, size_t stride, uint32_t n)
{
    struct iovec iov[BATCH];

    for (uint32_t i = 0; i < n;) {
        uint32_t k = 0;
        for (; k < BATCH && i + k < n; k++) {
            iov[k].iov_base = base + (size_t)(i + k + 1) * stride - pool->page;
            iov[k].iov_len = pool->page;
        }
        if (madvise_batch(pool, iov, k, MADV_POPULATE_WRITE) != 0)
            return; /* an optimisation only */
        i += k;
    }
}

static void slab_unmap(struct weave__stack_pool *pool, struct weave__slab *s)
{
    for (uint32_t i = 0; i < s->nstacks; i++)
        if (s->vg_id[i])
            vg_deregister(s->vg_id[i]);
    munmap(s->base, s->map_len);
    pool->mapped_bytes -= s->map_len;
    pool->cached -= s->nfree;
    pool->hot -= s->hot;
    free(s);
}

/* Map a slab of n stacks of class c, or return NULL with errno set. */
static struct weave__slab *slab_map(struct weave__stack_pool *pool, struct weave__stack_class *c,
                                    uint32_t n)
{
    size_t meta =
        sizeof(struct weave__slab) + n * (sizeof(uint32_t) + sizeof(unsigned) + sizeof(uint8_t));
    struct weave__slab *s;

    if (c->stride > SIZE_MAX / n) {
        errno = ENOMEM;
        return NULL;
    }
    s = calloc(1, meta);
    if (!s)
        return NULL;
    s->next_free = (uint32_t *)(s + 1);
    s->vg_id = (unsigned *)(s->next_free + n);
    s->cold = (uint8_t *)(s->vg_id + n);
    s->cls = c;
    weave__list_init(&s->all);
    weave__list_init(&s->partial);
    s->nstacks = n;
    s->map_len = c->stride * n;
    s->base = mmap(NULL, s->map_len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (s->base == MAP_FAILED) {
        free(s);
        return NULL;
    }
    (void)madvise(s->base, s->map_len, MADV_NOHUGEPAGE);
    if (guard_slab(pool, c, s->base, n) != 0) {
        int e = errno;
        munmap(s->base, s->map_len);
        free(s);
        errno = e;
        return NULL;
    }
    populate_tops(pool, s->base, c->stride, n);
    /* Free list in address order; every stack starts cold. */
    for (uint32_t i = 0; i < n; i++) {
        s->next_free[i] = i + 1 < n ? i + 1 : NO_INDEX;
        s->cold[i] = 1;
    }
    s->free_head = 0;
    s->nfree = n;
    c->nfree += n;
    pool->mapped_bytes += s->map_len;
    pool->cached += n;
    weave__list_push_front(&c->slabs, &s->all);
    weave__list_push_front(&c->partial, &s->partial);
    return s;
}

static struct weave__stack_class *class_get(struct weave__stack_pool *pool, size_t size,
                                            size_t guard)
{
    struct weave_link *n, *tmp;
    struct weave__stack_class *c;

    /* Few classes are ever in use; the most recently used one is kept first. */
    weave__list_each(n, tmp, &pool->classes) {
        c = weave__container_of(n, struct weave__stack_class, link);
        if (c->size == size && c->guard == guard) {
            weave__list_del(&c->link);
            weave__list_push_front(&pool->classes, &c->link);
            return c;
        }
    }
    if (size > SIZE_MAX - guard)
        return NULL;
    c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->size = size;
    c->guard = guard;
    c->stride = size + guard;
    c->next_nstacks = SLAB_FIRST;
    weave__list_init(&c->slabs);
    weave__list_init(&c->partial);
    weave__list_push_front(&pool->classes, &c->link);
    return c;
}

/* Take a free stack of size and guard (both rounded) from its class's slabs,
 * mapping a slab if none has one. Kept out of line, so that the front's
 * path in weave__stack_alloc_guarded saves no registers for it. */
static __attribute__((noinline)) int slab_take(struct weave__stack_pool *pool, size_t size,
                                               size_t guard, struct weave__stack *out)
{
    struct weave__stack_class *c;
    struct weave__slab *s;
    uint32_t i;

    if (size == 0 || guard == 0 || !(c = class_get(pool, size, guard)))
        return -ENOMEM;
    if (!weave__list_empty(&c->partial)) {
        s = weave__container_of(c->partial.next, struct weave__slab, partial);
    } else {
        uint32_t n = c->next_nstacks;
        size_t cap = SLAB_MAX_BYTES / c->stride;

        if (n > cap)
            n = cap > 0 ? (uint32_t)cap : 1;
        /* Near the map count or address-space limit a smaller slab may still
         * fit: halve down to a single stack before giving up. */
        while (!(s = slab_map(pool, c, n))) {
            if (n == 1)
                return -ENOMEM;
            n /= 2;
        }
        if (c->next_nstacks < SLAB_MAX_STACKS)
            c->next_nstacks *= 2;
    }
    i = s->free_head;
    s->free_head = s->next_free[i];
    if (--s->nfree == 0)
        weave__list_del(&s->partial);
    c->nfree--;
    if (!s->cold[i]) {
        s->hot--;
        c->hot--;
        pool->hot--;
    }
    s->cold[i] = 0;
    out->lo = s->base + (size_t)i * c->stride + c->guard;
    out->size = c->size;
    out->guard = c->guard;
    out->slab = s;
    out->index = i;
    if (!s->vg_id[i])
        s->vg_id[i] = vg_register(out->lo, out->lo + out->size - 1);
    pool->in_use++;
    pool->cached--;
    return 0;
}

int weave__stack_alloc_guarded(struct weave__stack_pool *pool, size_t size, size_t guard,
                               struct weave__stack *out)
{
    if (guard == 0)
        guard = pool->guard;
    /* Sizes that match the front's are whole pages already: round only
     * those that do not. */
    if (size != pool->front_size || guard != pool->front_guard) {
        size = weave__stack_round(pool, size);
        guard = weave__stack_round(pool, guard);
        if (size != pool->front_size || guard != pool->front_guard)
            return slab_take(pool, size, guard, out);
    }
    if (pool->nfront == 0)
        return slab_take(pool, size, guard, out);
    /* Hot, registered with valgrind, unpoisoned: as it was freed. */
    *out = pool->front[--pool->nfront];
    pool->in_use++;
    pool->cached--;
    pool->hot--;
    return 0;
}

/* Give the pages of the k stacks in iov back: in a few system calls where
 * the kernel allows, else one madvise per stack. */
static void release_pages(struct weave__stack_pool *pool, struct iovec *iov, size_t k)
{
    if (k == 0 || madvise_batch(pool, iov, k, MADV_DONTNEED) == 0)
        return;
    for (size_t j = 0; j < k; j++)
        (void)madvise(iov[j].iov_base, iov[j].iov_len, MADV_DONTNEED);
}

/* Hand the pages of hot free stacks of c back until c has at most keep. */
static void class_trim(struct weave__stack_pool *pool, struct weave__stack_class *c, uint64_t keep)
{
    struct weave_link *n, *tmp;
    struct iovec iov[BATCH];
    size_t k = 0;

    weave__list_each(n, tmp, &c->slabs) {
        struct weave__slab *s = weave__container_of(n, struct weave__slab, all);

        if (c->hot <= keep)
            break;
        for (uint32_t i = s->free_head; i != NO_INDEX && s->hot > 0 && c->hot > keep;
             i = s->next_free[i]) {
            if (s->cold[i])
                continue;
            iov[k].iov_base = s->base + (size_t)i * c->stride + c->guard;
            iov[k].iov_len = c->size;
            if (++k == BATCH) {
                release_pages(pool, iov, k);
                k = 0;
            }
            s->cold[i] = 1;
            s->hot--;
            c->hot--;
            pool->hot--;
        }
    }
    release_pages(pool, iov, k);
}

/* Hot free stacks class c may keep in its slabs: HOT_MAX, less those of
 * the front when it holds c's. */
static uint64_t slab_keep(const struct weave__stack_pool *pool, const struct weave__stack_class *c)
{
    return c == pool->front_cls ? (uint64_t)HOT_MAX - pool->nfront : (uint64_t)HOT_MAX;
}

void weave__stack_trim(struct weave__stack_pool *pool)
{
    struct weave_link *n, *tmp;

    weave__list_each(n, tmp, &pool->classes) {
        struct weave__stack_class *c = weave__container_of(n, struct weave__stack_class, link);
        uint64_t keep = slab_keep(pool, c);

        if (c->hot > keep)
            class_trim(pool, c, keep);
    }
}

/* Put stack st, hot and counted free by the pool already, back on its
 * slab's free list; unmap the slab if that leaves it entirely free and
 * enough free stacks elsewhere. Out of line, as slab_take. */
static __attribute__((noinline)) void slab_put(struct weave__stack_pool *pool,
                                               const struct weave__stack *st)
{
    struct weave__slab *s = st->slab;
    struct weave__stack_class *c = s->cls;
    uint32_t i = st->index;

    s->cold[i] = 0;
    s->hot++;
    c->hot++;
    s->next_free[i] = s->free_head;
    s->free_head = i;
    if (s->nfree++ == 0)
        weave__list_push_front(&c->partial, &s->partial);
    c->nfree++;
    if (s->nfree == s->nstacks && c->nfree - s->nstacks >= RETAIN) {
        /* Entirely free, and enough free stacks remain without it. */
        weave__list_del(&s->partial);
        weave__list_del(&s->all);
        c->nfree -= s->nstacks;
        c->hot -= s->hot;
        slab_unmap(pool, s);
    }
    if (pool->hot > HOT_LIMIT)
        class_trim(pool, c, slab_keep(pool, c)); /* the scheduler has not been idle */
}

/* Give the front's stacks back to their slabs; the front is then empty and
 * of no class. */
static __attribute__((noinline)) void front_flush(struct weave__stack_pool *pool)
{
    while (pool->nfront > 0) {
        struct weave__stack st = pool->front[--pool->nfront];
        slab_put(pool, &st);
    }
    pool->front_cls = NULL;
    pool->front_size = pool->front_guard = 0;
}

/* weave__stack_free of st, counted free already, when the front cannot
 * take it as it is: it holds another class, or is full, or the pool holds
 * so many hot stacks that this free must trim. */
static __attribute__((noinline)) void free_slow(struct weave__stack_pool *pool,
                                                struct weave__stack *st)
{
    if (st->size != pool->front_size || st->guard != pool->front_guard) {
        /* The front follows the class of the last free. */
        front_flush(pool);
        pool->front_cls = st->slab->cls;
        pool->front_size = st->size;
        pool->front_guard = st->guard;
    }
    if (pool->nfront < WEAVE__STACK_FRONT && pool->hot <= HOT_LIMIT)
        pool->front[pool->nfront++] = *st;
    else
        slab_put(pool, st);
    st->slab = NULL;
    st->lo = NULL;
}

void weave__stack_free(struct weave__stack_pool *pool, struct weave__stack *st)
{
#ifdef WEAVE_ASAN
    /* Frames of the task that ran here may have left poisoned redzones. */
    __asan_unpoison_memory_region(st->lo, st->size);
#endif
    pool->in_use--;
    pool->cached++;
    pool->hot++;
    if (st->size == pool->front_size && st->guard == pool->front_guard &&
        pool->nfront < WEAVE__STACK_FRONT && pool->hot <= HOT_LIMIT) {
        pool->front[pool->nfront++] = *st;
        st->slab = NULL;
        st->lo = NULL;
        return;
    }
    free_slow(pool, st);
}

void weave__stack_pool_term(struct weave__stack_pool *pool)
{
    struct weave_link *cn, *sn;

    /* The front's stacks are unmapped with their slabs. */
    pool->nfront = 0;
    pool->front_cls = NULL;
    pool->front_size = pool->front_guard = 0;

    while ((cn = weave__list_pop(&pool->classes)) != NULL) {
        struct weave__stack_class *c = weave__container_of(cn, struct weave__stack_class, link);

        while ((sn = weave__list_pop(&c->slabs)) != NULL)
            slab_unmap(pool, weave__container_of(sn, struct weave__slab, all));
        free(c);
    }
    pool->in_use = pool->cached = pool->hot = 0;
}
