/*
 * scope.h - a task's open deadline scopes and shields (scope.c), and the
 * check at the entry of every public call that obeys them.
 */
#ifndef WEAVE_SCOPE_H
#define WEAVE_SCOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/sched.h"
#include "weave.h"

enum weave__scope_kind {
    WEAVE__SCOPE_NONE = 0,     /* not begun (no task was running), ended or dropped */
    WEAVE__SCOPE_DEADLINE = 1, /* a deadline scope */
    WEAVE__SCOPE_BAD = 2,      /* a deadline scope begun with a bad timeout */
    WEAVE__SCOPE_SHIELD = 3,   /* a shield */
    WEAVE__SCOPE_DEEP = 4      /* a deadline scope beyond WEAVE_SCOPE_MAX: expired */
};

/* Open p, of kind (DEADLINE, BAD or SHIELD) and deadline at (a shield:
 * WEAVE__NO_DEADLINE), as t's innermost scope, begun from where. false
 * when WEAVE_SCOPE_MAX are open already (nothing is opened). */
bool weave__scope_open(struct weave__task *t, struct weave_scope_private *p, int kind, int64_t at,
                       const void *where);

/* Whether p is t's innermost open scope. */
bool weave__scope_is_innermost(const struct weave__task *t, const struct weave_scope_private *p);

/* End t's innermost scope (whose struct the caller holds). */
void weave__scope_close_innermost(struct weave__task *t);

/* End p and every scope begun after it; false if p is not open in t. */
bool weave__scope_close_through(struct weave__task *t, struct weave_scope_private *p);

/* Write where (a return address) as "symbol+0x1c (file)" or an address. */
void weave__scope_describe(char *out, size_t cap, const void *where);

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

#endif /* WEAVE_SCOPE_H */
