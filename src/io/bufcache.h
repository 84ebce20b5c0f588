/*
 * bufcache.h - a scheduler's cache of I/O buffers (bufcache.c).
 *
 * Streams hold a buffer only while bytes are in flight: they take one when
 * input arrives or output is buffered, and give it back once it is empty,
 * often several times per request. The cache keeps what is given back for
 * the next taker of the same size, so that this costs a few instructions
 * instead of a malloc and a free (and, with glibc, the odd brk as the top
 * of the heap is trimmed and grown again).
 *
 * Limits: at most WEAVE__BUFCACHE_BYTES are kept, in buffers of at most
 * WEAVE__BUFCACHE_LARGEST bytes each, of at most WEAVE__BUFCACHE_SIZES
 * distinct sizes at a time; a buffer beyond them is freed at once. The
 * cache belongs to one scheduler (its fd table holds it), is used by that
 * scheduler's thread only, and is emptied when the scheduler ends. Every
 * buffer is an ordinary malloc block: whoever holds one may free(3) it
 * instead of giving it back (a stream freed after its scheduler ended).
 */
#ifndef WEAVE_BUFCACHE_H
#define WEAVE_BUFCACHE_H

#include <stddef.h>
#include <stdint.h>

#define WEAVE__BUFCACHE_SIZES   4                   /* distinct sizes kept at once */
#define WEAVE__BUFCACHE_BYTES   ((size_t)128 << 10) /* bytes kept, at most */
#define WEAVE__BUFCACHE_LARGEST ((size_t)64 << 10)  /* larger buffers are not kept */

/* The buffers kept of one size: a stack linked through their first bytes
 * (every buffer is at least WEAVE_STREAM_BUF_MIN, 16 bytes). */
struct weave__bufbin {
    size_t size; /* bytes of each buffer here; meaningless while n is 0 */
    void *top;   /* the buffer given back last, or NULL */
    uint32_t n;  /* buffers kept here */
};

struct weave__bufcache {
    struct weave__bufbin bins[WEAVE__BUFCACHE_SIZES];
    size_t bytes; /* kept in every bin together */
};

/* A buffer of size bytes (size >= sizeof(void *)): a kept one if the cache
 * has one of that size, else a new one. NULL if out of memory. */
void *weave__buf_take(struct weave__bufcache *c, size_t size);

/* Give back buf (NULL is ignored), of size bytes, taken from any cache of
 * this thread or made with malloc: kept if it fits the limits, else freed. */
void weave__buf_give(struct weave__bufcache *c, void *buf, size_t size);

/* Free every buffer kept (at the scheduler's end). The cache stays usable. */
void weave__bufcache_term(struct weave__bufcache *c);

#endif /* WEAVE_BUFCACHE_H */
