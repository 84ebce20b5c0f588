/*
 * bufcache.c - a scheduler's cache of I/O buffers (bufcache.h says what
 * for, and its limits).
 *
 * Each size kept has a bin: a stack of the buffers given back, linked
 * through their first bytes, so keeping a buffer costs no memory of its
 * own. Taking pops the bin of that size; giving pushes onto it. A bin
 * left empty may be taken over by another size, so the sizes a program
 * uses now are the ones kept.
 *
 * A kept buffer is nobody's: under AddressSanitizer it is poisoned, and
 * under valgrind marked inaccessible, until it is taken again, so that a
 * stream that used a buffer after giving it back is caught as a use after
 * free would be.
 */
#include "io/bufcache.h"

#include <stdlib.h>
#include <string.h>

#include "base/context.h" /* WEAVE_ASAN */

/* hide: the buffer is kept, nobody may touch it. show_link: its link may
 * be read (under ASan the whole buffer is usable again). fresh: taken,
 * its bytes as undefined as a new malloc block's. */
#ifdef WEAVE_ASAN
#include <sanitizer/asan_interface.h>
#define hide(p, n)      __asan_poison_memory_region((p), (n))
#define show_link(p, n) __asan_unpoison_memory_region((p), (n))
#define fresh(p, n)     ((void)(p), (void)(n))
#elif defined(WEAVE_HAVE_VALGRIND_H)
#include <valgrind/memcheck.h>
#define hide(p, n)      (void)VALGRIND_MAKE_MEM_NOACCESS((p), (n))
#define show_link(p, n) ((void)(n), (void)VALGRIND_MAKE_MEM_DEFINED((p), sizeof(void *)))
#define fresh(p, n)     (void)VALGRIND_MAKE_MEM_UNDEFINED((p), (n))
#else
#define hide(p, n)      ((void)(p), (void)(n))
#define show_link(p, n) ((void)(p), (void)(n))
#define fresh(p, n)     ((void)(p), (void)(n))
#endif

/* The bin of size if there is one, else an empty bin to hold that size if
 * claim, else NULL. */
static struct weave__bufbin *bin_of(struct weave__bufcache *c, size_t size, int claim)
{
    struct weave__bufbin *free_bin = NULL;

    for (int i = 0; i < WEAVE__BUFCACHE_SIZES; i++) {
        struct weave__bufbin *b = &c->bins[i];

        if (b->n > 0 && b->size == size)
            return b;
        if (b->n == 0 && !free_bin)
            free_bin = b;
    }
    if (claim && free_bin)
        free_bin->size = size;
    return claim ? free_bin : NULL;
}

void *weave__buf_take(struct weave__bufcache *c, size_t size)
{
    struct weave__bufbin *b = bin_of(c, size, 0);
    void *buf, *next;

    if (!b)
        return malloc(size);
    buf = b->top;
    show_link(buf, size);
    memcpy(&next, buf, sizeof(next));
    fresh(buf, size);
    b->top = next;
    b->n--;
    c->bytes -= size;
    return buf;
}

void weave__buf_give(struct weave__bufcache *c, void *buf, size_t size)
{
    struct weave__bufbin *b;

    if (!buf)
        return;
    if (size > WEAVE__BUFCACHE_LARGEST || c->bytes + size > WEAVE__BUFCACHE_BYTES ||
        !(b = bin_of(c, size, 1))) {
        free(buf);
        return;
    }
    memcpy(buf, &b->top, sizeof(b->top));
    hide(buf, size);
    b->top = buf;
    b->n++;
    c->bytes += size;
}

void weave__bufcache_term(struct weave__bufcache *c)
{
    for (int i = 0; i < WEAVE__BUFCACHE_SIZES; i++) {
        struct weave__bufbin *b = &c->bins[i];

        while (b->n > 0) {
            void *buf = b->top;

            show_link(buf, b->size);
            memcpy(&b->top, buf, sizeof(b->top));
            b->n--;
            free(buf);
        }
        b->top = NULL;
    }
    c->bytes = 0;
}
