/*
 * handle.c - the handle table (see handle.h for the encoding).
 *
 * Slots are reused LIFO through a free list threaded in the table; the table
 * doubles when full, up to 2^24 - 1 slots.
 */
#include "base/handle.h"

#include <assert.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>

static_assert(sizeof(uintptr_t) >= 8, "weave handles need 64-bit pointers");

#define NO_SLOT   UINT32_MAX
#define MAX_SLOTS ((1u << 24) - 1)
#define GEN_MASK  0xffffffu

/* Runs begun in this process, for the tags. */
static atomic_uint_fast64_t next_run;

void weave__handles_init(struct weave__handles *h)
{
    uint64_t run = atomic_fetch_add(&next_run, 1);

    h->slots = NULL;
    h->nslots = 0;
    h->free_slot = NO_SLOT;
    h->tag = (uint32_t)(run % 65535u) + 1u;
    h->gen_seed = (uint32_t)(run / 65535u);
}

void weave__handles_term(struct weave__handles *h)
{
    free(h->slots);
    h->slots = NULL;
    h->nslots = 0;
    h->free_slot = NO_SLOT;
}

int weave__handle_alloc(struct weave__handles *h, struct weave__task *t, uint32_t *slot)
{
    if (h->free_slot == NO_SLOT) {
        uint32_t n = h->nslots ? h->nslots * 2 : 64;
        struct weave__slot *v;

        if (h->nslots >= MAX_SLOTS)
            return -ENOMEM;
        if (n > MAX_SLOTS)
            n = MAX_SLOTS;
        v = realloc(h->slots, n * sizeof(*v));
        if (!v)
            return -ENOMEM;
        for (uint32_t i = h->nslots; i < n; i++) {
            v[i].task = NULL;
            v[i].gen = h->gen_seed;
            v[i].next_free = i + 1 < n ? i + 1 : NO_SLOT;
        }
        h->free_slot = h->nslots;
        h->slots = v;
        h->nslots = n;
    }
    *slot = h->free_slot;
    h->free_slot = h->slots[*slot].next_free;
    h->slots[*slot].task = t;
    return 0;
}

void weave__handle_free(struct weave__handles *h, uint32_t slot)
{
    h->slots[slot].task = NULL;
    h->slots[slot].gen++;
    h->slots[slot].next_free = h->free_slot;
    h->free_slot = slot;
}

void weave__handles_shrink(struct weave__handles *h)
{
    uint32_t used = 0, n = 64, far = 0;
    struct weave__slot *v;

    for (uint32_t i = 0; i < h->nslots; i++)
        if (h->slots[i].task)
            used = i + 1;
    while (n < used)
        n *= 2;
    if ((uint64_t)n * 4 > h->nslots)
        return; /* a task in a high slot, or not worth a copy */
    /* Slots made again later start past every generation the dropped
     * ones reached, so a stale handle to one never names a later task. */
    for (uint32_t i = n; i < h->nslots; i++) {
        uint32_t d = (h->slots[i].gen - h->gen_seed) & GEN_MASK;

        if (d > far)
            far = d;
    }
    if ((v = realloc(h->slots, n * sizeof(*v))) == NULL)
        return;
    h->gen_seed += far + 1;
    h->slots = v;
    h->nslots = n;
    h->free_slot = NO_SLOT;
    for (uint32_t i = n; i-- > 0;)
        if (!v[i].task) {
            v[i].next_free = h->free_slot;
            h->free_slot = i;
        }
}

weave_task *weave__handle_of(const struct weave__handles *h, uint32_t slot)
{
    uint64_t gen = h->slots[slot].gen & GEN_MASK;
    uint64_t v = ((uint64_t)h->tag << 48) | (gen << 24) | ((uint64_t)slot + 1);

    return (weave_task *)(uintptr_t)v;
}

struct weave__task *weave__handle_task(const struct weave__handles *h, const weave_task *handle)
{
    uint64_t v = (uint64_t)(uintptr_t)handle;
    uint32_t slot = (uint32_t)(v & 0xffffffu) - 1; /* 0 wraps to NO_SLOT */
    const struct weave__slot *sl;

    if ((v >> 48) != h->tag || slot >= h->nslots)
        return NULL;
    sl = &h->slots[slot];
    if (!sl->task || (sl->gen & GEN_MASK) != ((v >> 24) & GEN_MASK))
        return NULL;
    return sl->task;
}
