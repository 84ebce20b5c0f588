/*
 * deadline.c - deadline scopes and shields (asyncio.timeout, Trio's
 * fail_after and shielded cancel scopes), and dropping those left open.
 *
 * A task keeps its open scopes in order in its record (t->scopes, oldest
 * first), and one number summing them up: t->deadline, the earliest
 * deadline that applies now. Beginning a scope saves that number in the
 * caller's struct and lowers it; a shield saves it and lifts it (outer
 * deadlines stop applying) and counts itself in t->shields, which turns
 * cancellation off; ending either puts the saved number back. Begin and
 * end are O(1); the blocking calls only compare t->deadline with the clock
 * (weave__checkpoint) and arm the task's one timer at it (weave__park).
 *
 * A scope left open by an early return lives in a frame that is gone. Its
 * struct must not be read again (the memory is someone else's now), which
 * is why what a report and a drop need (the struct's address, where it was
 * begun, its kind) is in the task's record, not in the struct. A scope on
 * the task's stack is dead once the caller of a public weave call sits
 * above it: every live frame of the task lies at or above the stack
 * pointer of the call (its CFA). t->scope_low, the lowest open scope on
 * the stack, makes that one compare at the entry of each blocking call
 * (WEAVE__SCOPES_CHECK). Dropping the oldest dead scope and all begun
 * after it leaves only live scopes, from whose structs t->deadline and
 * t->shields are summed up again.
 */
#include "core/deadline.h"

#include <dlfcn.h>
#include <stdio.h>

#include "base/common.h"
#include "core/sched.h"
#include "core/task.h"
#include "core/time.h"

enum scope_kind {
    SCOPE_NONE = 0,     /* not begun (no task was running), ended or dropped */
    SCOPE_DEADLINE = 1, /* a deadline scope */
    SCOPE_BAD = 2,      /* a deadline scope begun with a bad timeout */
    SCOPE_SHIELD = 3,   /* a shield */
    SCOPE_DEEP = 4      /* a deadline scope beyond WEAVE_SCOPE_MAX: expired */
};

static bool on_stack(const struct weave__task *t, const void *p)
{
    return (uintptr_t)p - (uintptr_t)t->stack.lo < t->stack.size;
}

/* t->scope_low again, after scopes were ended or dropped. */
static void rescan_low(struct weave__task *t)
{
    uintptr_t low = UINTPTR_MAX;

    for (uint32_t i = 0; i < t->nscopes; i++)
        if (on_stack(t, t->scopes[i].p) && (uintptr_t)t->scopes[i].p < low)
            low = (uintptr_t)t->scopes[i].p;
    t->scope_low = low;
}

static void scope_push(struct weave__task *t, struct weave_scope_private *p, int kind,
                       int64_t deadline, const void *where)
{
    p->kind = kind;
    p->saved = t->deadline;
    t->scopes[t->nscopes++] = (struct weave__scope){.p = p, .where = where, .kind = kind};
    if (on_stack(t, p) && (uintptr_t)p < t->scope_low)
        t->scope_low = (uintptr_t)p;
    t->deadline = deadline;
    if (kind == SCOPE_SHIELD)
        t->shields++;
}

/* End the innermost scope, whose struct is live. */
static void scope_pop(struct weave__task *t)
{
    struct weave_scope_private *p = t->scopes[--t->nscopes].p;

    t->deadline = p->saved;
    if (p->kind == SCOPE_SHIELD)
        t->shields--;
    p->kind = SCOPE_NONE;
    if ((uintptr_t)p == t->scope_low)
        rescan_low(t);
}

/* "lookup+0x1c (./prog)", or the bare address. */
static void describe(char *out, size_t cap, const void *where)
{
    Dl_info info;

    if (dladdr(where, &info) && info.dli_sname && info.dli_saddr)
        (void)snprintf(out, cap, "%s+0x%zx (%s)", info.dli_sname,
                       (size_t)((const char *)where - (const char *)info.dli_saddr),
                       info.dli_fname ? info.dli_fname : "?");
    else if (info.dli_fname && info.dli_fbase)
        (void)snprintf(out, cap, "%p (%s+0x%zx)", where, info.dli_fname,
                       (size_t)((const char *)where - (const char *)info.dli_fbase));
    else
        (void)snprintf(out, cap, "%p", where);
}

/* Drop scopes[i ..) of t: the oldest is dead (why says how we know);
 * those after it are not read unless they are live (at or above sp, or
 * off the stack), and those are marked ended. Then sum up the rest. */
static void drop_from(struct weave__task *t, uint32_t i, uintptr_t sp, const char *why)
{
    const struct weave__scope *dead = &t->scopes[i];
    char where[256];
    int64_t deadline = WEAVE__NO_DEADLINE;
    uint32_t shields = 0, after = t->nscopes - i - 1;

    describe(where, sizeof(where), dead->where);
    (void)fprintf(stderr,
                  "weave: task %llu (%s): the %s begun at %s was never ended (%s); dropped, "
                  "with the %u scope%s begun after it\n",
                  (unsigned long long)t->id, weave__task_name(t),
                  dead->kind == SCOPE_SHIELD ? "shield" : "deadline scope", where, why, after,
                  after == 1 ? "" : "s");
    for (uint32_t k = i + 1; k < t->nscopes; k++)
        if (!on_stack(t, t->scopes[k].p) || (uintptr_t)t->scopes[k].p >= sp)
            t->scopes[k].p->kind = SCOPE_NONE;
    t->nscopes = i;
    for (uint32_t k = 0; k < t->nscopes; k++) {
        const struct weave_scope_private *p = t->scopes[k].p;

        if (p->kind == SCOPE_SHIELD) {
            deadline = WEAVE__NO_DEADLINE;
            shields++;
        } else if (p->at < deadline) {
            deadline = p->at;
        }
    }
    t->deadline = deadline;
    t->shields = shields;
    rescan_low(t);
}

void weave__scopes_popped(struct weave__task *t, uintptr_t sp)
{
    for (uint32_t i = 0; i < t->nscopes; i++)
        if (on_stack(t, t->scopes[i].p) && (uintptr_t)t->scopes[i].p < sp) {
            drop_from(t, i, sp, "its function returned");
            return;
        }
}

void weave__scopes_at_end(struct weave__task *t)
{
    if (t->nscopes > 0)
        drop_from(t, 0, UINTPTR_MAX, "the task ended");
}

/* Begin p, of deadline at (a shield: none), for the current task of s. A
 * struct already open in the task is one whose begin was left behind in a
 * frame since returned, and is being reused: that one is dropped first. */
static bool begin(struct weave__sched *s, struct weave_scope_private *p, int kind, int64_t at,
                  const void *where)
{
    struct weave__task *t = s->current;

    for (uint32_t i = 0; i < t->nscopes; i++)
        if (t->scopes[i].p == p) {
            drop_from(t, i, UINTPTR_MAX, "its struct was begun again");
            break;
        }
    if (t->nscopes == WEAVE_SCOPE_MAX)
        return false;
    scope_push(t, p, kind, kind == SCOPE_SHIELD || at < t->deadline ? at : t->deadline, where);
    return true;
}

WEAVE__ENTRY void weave_deadline_begin(weave_deadline *d, int64_t timeout_ms)
{
    struct weave__sched *s = weave__tls;
    const void *where = __builtin_return_address(0);
    struct weave__task *t;
    int64_t at;

    WEAVE__SCOPES_CHECK();
    if (!d)
        return;
    d->priv.kind = SCOPE_NONE;
    if (!s)
        return;
    t = s->current;
    at = weave__deadline_in(timeout_ms, 1000000);
    if (at < 0) {
        /* A bad timeout never means "no deadline": the scope starts
         * expired, and its end reports EINVAL. */
        d->priv.at = 0;
        if (!begin(s, &d->priv, SCOPE_BAD, 0, where))
            d->priv.kind = SCOPE_DEEP;
    } else {
        d->priv.at = at;
        if (!begin(s, &d->priv, SCOPE_DEADLINE, at, where))
            d->priv.kind = SCOPE_DEEP;
    }
    if (d->priv.kind == SCOPE_DEEP) {
        /* Too deep to track: expired, so that the mistake shows at once,
         * until weave_deadline_end puts the deadline back. */
        d->priv.at = 0;
        d->priv.saved = t->deadline;
        t->deadline = 0;
    }
}

WEAVE__ENTRY int weave_deadline_end(weave_deadline *d)
{
    struct weave__sched *s = weave__tls;
    struct weave__task *t;
    int kind;

    WEAVE__SCOPES_CHECK();
    if (!d)
        return weave__ret(-EINVAL);
    if (!s)
        return weave__ret(-EPERM);
    t = s->current;
    if (d->priv.kind == SCOPE_DEEP) {
        t->deadline = d->priv.saved;
        d->priv.kind = SCOPE_NONE;
        return weave__ret(-EMLINK);
    }
    if (t->nscopes == 0 || t->scopes[t->nscopes - 1].p != &d->priv ||
        (d->priv.kind != SCOPE_DEADLINE && d->priv.kind != SCOPE_BAD))
        return weave__ret(-EINVAL); /* not the caller's innermost scope */
    kind = d->priv.kind;
    scope_pop(t);
    if (kind == SCOPE_BAD)
        return weave__ret(-EINVAL);
    return d->priv.at != WEAVE__NO_DEADLINE && weave__clock_ns() >= d->priv.at;
}

WEAVE__ENTRY void weave_shield_begin(weave_shield *sh)
{
    struct weave__sched *s = weave__tls;
    const void *where = __builtin_return_address(0);

    WEAVE__SCOPES_CHECK();
    if (!sh)
        return;
    sh->priv.kind = SCOPE_NONE;
    sh->priv.at = WEAVE__NO_DEADLINE;
    if (s && !begin(s, &sh->priv, SCOPE_SHIELD, WEAVE__NO_DEADLINE, where)) {
        char at[256];

        describe(at, sizeof(at), where);
        (void)fprintf(stderr,
                      "weave: task %llu (%s): the shield begun at %s is not begun: scopes "
                      "nest at most %d deep\n",
                      (unsigned long long)s->current->id, weave__task_name(s->current), at,
                      WEAVE_SCOPE_MAX);
    }
}

WEAVE__ENTRY void weave_shield_end(weave_shield *sh)
{
    struct weave__sched *s = weave__tls;
    struct weave__task *t;
    uint32_t i;

    WEAVE__SCOPES_CHECK();
    if (!sh || !s || sh->priv.kind != SCOPE_SHIELD)
        return;
    t = s->current;
    for (i = t->nscopes; i > 0 && t->scopes[i - 1].p != &sh->priv; i--)
        ;
    if (i == 0)
        return; /* not one of the caller's open scopes */
    /* Scopes begun inside the shield and left open end with it; they are
     * all live, since the check above dropped the dead ones. */
    while (t->nscopes >= i)
        scope_pop(t);
}

int weave__timed_begin(weave_deadline *d, int64_t timeout_ms)
{
    if (timeout_ms < -1)
        return -EINVAL;
    weave_deadline_begin(d, timeout_ms);
    return 0;
}

int weave__timed_end(weave_deadline *d, int r)
{
    int saved = errno;

    (void)weave_deadline_end(d);
    errno = saved;
    return r;
}
