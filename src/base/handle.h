/*
 * handle.h - the handle table: what users hold instead of task records.
 *
 * A weave_task * given to users is an opaque 64-bit value, never memory:
 *
 *     (tag << 48) | (gen << 24) | (slot + 1)
 *
 *   tag   16 bits, the scheduler's run number mod 65535, plus 1: a handle
 *         from another thread's scheduler, or from an earlier run on this
 *         thread, names a different tag and is refused;
 *   gen   24 bits of the slot's generation, bumped when the slot is freed:
 *         a stale handle to a reused slot is refused. A run's slots start
 *         at a generation taken from the high part of its run number, so a
 *         run whose tag comes round again does not hand out the same
 *         handles either (the main task, say, always in slot 0);
 *   slot  24 bits: at most 2^24 - 1 tasks alive at once.
 *
 * The table knows records only as pointers; it never looks inside them.
 */
#ifndef WEAVE_HANDLE_H
#define WEAVE_HANDLE_H

#include <stdint.h>

#include "weave.h"

struct weave__task;

/* A slot of the table. */
struct weave__slot {
    struct weave__task *task; /* NULL when free */
    uint32_t gen;             /* bumped each time the slot is freed */
    uint32_t next_free;       /* free list link */
};

struct weave__handles {
    struct weave__slot *slots; /* [nslots] */
    uint32_t nslots;
    uint32_t free_slot; /* head of the free list */
    uint32_t tag;       /* this run's tag */
    uint32_t gen_seed;  /* first generation of new slots */
};

/* A table with a tag of its own, never used by another run in the process. */
void weave__handles_init(struct weave__handles *h);
void weave__handles_term(struct weave__handles *h);

/* Give t a slot; returns it, or -ENOMEM when the table is full. */
int weave__handle_alloc(struct weave__handles *h, struct weave__task *t, uint32_t *slot);

/* Free a slot: its handle is stale from now on. */
void weave__handle_free(struct weave__handles *h, uint32_t slot);

/* Give back the part of the table past the highest slot in use, when that
 * is most of it. O(slots): call it rarely (the scheduler, when idle after
 * a burst of tasks). */
void weave__handles_shrink(struct weave__handles *h);

/* The handle of the record in slot. */
weave_task *weave__handle_of(const struct weave__handles *h, uint32_t slot);

/* The record a handle names, or NULL if it is stale or foreign. */
struct weave__task *weave__handle_task(const struct weave__handles *h, const weave_task *handle);

#endif /* WEAVE_HANDLE_H */
