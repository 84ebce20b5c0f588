/*
 * deadline.h - what the _timeout variants of the blocking calls need of
 * deadline scopes (deadline.c).
 */
#ifndef WEAVE_DEADLINE_H
#define WEAVE_DEADLINE_H

#include <stdint.h>

#include "core/sched.h"
#include "weave.h"

/*
 * At the entry of every public call that obeys deadline scopes or shields
 * (the blocking calls, and the scopes' own begin and end): drop the calling
 * task's scopes whose frames have returned. It compares the lowest open
 * scope on the task's stack with the stack pointer of the public call's
 * caller (its CFA): nothing live of the task lies below that. One compare
 * while no scope is open, or none has been forgotten.
 *
 * It must be expanded in the public function itself, which must not be
 * inlined into its caller (WEAVE__ENTRY): else the CFA would be the
 * caller's caller's, above the caller's own live scopes.
 */
#define WEAVE__ENTRY          __attribute__((noinline))
#define WEAVE__SCOPES_CHECK() weave__scopes_check((uintptr_t)__builtin_dwarf_cfa())

/* Drop t's scopes of which the oldest lies on t's stack below sp. */
void weave__scopes_popped(struct weave__task *t, uintptr_t sp);

static inline void weave__scopes_check(uintptr_t caller_sp)
{
    struct weave__sched *s = weave__tls;

    if (__builtin_expect(s != NULL && s->current->scope_low < caller_sp, 0))
        weave__scopes_popped(s->current, caller_sp);
}

/* t has ended: report and drop the scopes it left open. */
void weave__scopes_at_end(struct weave__task *t);

/* Begin a deadline scope of timeout_ms for a _timeout call: -EINVAL for a
 * timeout below -1 (nothing begun), else 0. */
int weave__timed_begin(weave_deadline *d, int64_t timeout_ms);

/* End it without disturbing errno; returns r, the call's result. */
int weave__timed_end(weave_deadline *d, int r);

#endif /* WEAVE_DEADLINE_H */
