/*
 * deadline.c - deadline scopes and shields (asyncio.timeout, Trio's
 * fail_after and shielded cancel scopes).
 *
 * A task keeps a stack of its open scopes, linked through the caller's own
 * weave_deadline / weave_shield structs (t->scope is the innermost), and
 * one number summing them up: t->deadline, the earliest deadline that
 * applies now. Beginning a scope saves that number in the scope and lowers
 * it; a shield saves it and lifts it (outer deadlines stop applying) and
 * counts itself in t->shields, which turns cancellation off; ending either
 * puts the saved number back. Begin and end are O(1); the blocking calls
 * only compare t->deadline with the clock (weave__checkpoint) and arm the
 * task's one timer at it (weave__park).
 */
#include "base/common.h"
#include "core/deadline.h"
#include "core/sched.h"
#include "core/time.h"

enum scope_kind {
    SCOPE_NONE = 0,     /* not begun (no task was running) */
    SCOPE_DEADLINE = 1, /* a deadline scope */
    SCOPE_BAD = 2,      /* a deadline scope begun with a bad timeout */
    SCOPE_SHIELD = 3    /* a shield */
};

static void scope_push(struct weave__task *t, struct weave_scope_private *p, int kind,
                       int64_t deadline)
{
    p->kind = kind;
    p->outer = t->scope;
    p->saved = t->deadline;
    t->scope = p;
    t->deadline = deadline;
    if (kind == SCOPE_SHIELD)
        t->shields++;
}

static void scope_pop(struct weave__task *t)
{
    struct weave_scope_private *p = t->scope;

    t->scope = p->outer;
    t->deadline = p->saved;
    if (p->kind == SCOPE_SHIELD)
        t->shields--;
    p->outer = NULL;
}

void weave_deadline_begin(weave_deadline *d, int64_t timeout_ms)
{
    struct weave__sched *s = weave__tls;
    struct weave__task *t;
    int64_t at;

    if (!d)
        return;
    d->priv.kind = SCOPE_NONE;
    d->priv.outer = NULL;
    if (!s)
        return;
    t = s->current;
    at = weave__deadline_in(timeout_ms, 1000000);
    if (at < 0) {
        /* A bad timeout never means "no deadline": the scope starts
         * expired, and its end reports EINVAL. */
        d->priv.at = 0;
        scope_push(t, &d->priv, SCOPE_BAD, 0);
        return;
    }
    d->priv.at = at;
    scope_push(t, &d->priv, SCOPE_DEADLINE, at < t->deadline ? at : t->deadline);
}

int weave_deadline_end(weave_deadline *d)
{
    struct weave__sched *s = weave__tls;
    struct weave__task *t;
    int kind;

    if (!d)
        return weave__ret(-EINVAL);
    if (!s)
        return weave__ret(-EPERM);
    t = s->current;
    if (t->scope != &d->priv || (d->priv.kind != SCOPE_DEADLINE && d->priv.kind != SCOPE_BAD))
        return weave__ret(-EINVAL); /* not the caller's innermost scope */
    kind = d->priv.kind;
    scope_pop(t);
    d->priv.kind = SCOPE_NONE;
    if (kind == SCOPE_BAD)
        return weave__ret(-EINVAL);
    return d->priv.at != WEAVE__NO_DEADLINE && weave__clock_ns() >= d->priv.at;
}

void weave_shield_begin(weave_shield *sh)
{
    struct weave__sched *s = weave__tls;

    if (!sh)
        return;
    sh->priv.kind = SCOPE_NONE;
    sh->priv.outer = NULL;
    sh->priv.at = WEAVE__NO_DEADLINE;
    if (s)
        scope_push(s->current, &sh->priv, SCOPE_SHIELD, WEAVE__NO_DEADLINE);
}

void weave_shield_end(weave_shield *sh)
{
    struct weave__sched *s = weave__tls;
    struct weave__task *t;
    struct weave_scope_private *p;

    if (!sh || !s || sh->priv.kind != SCOPE_SHIELD)
        return;
    t = s->current;
    for (p = t->scope; p && p != &sh->priv; p = p->outer)
        ;
    if (!p)
        return; /* not one of the caller's open scopes */
    /* Scopes begun inside the shield and left open end with it. */
    while (t->scope != &sh->priv) {
        p = t->scope;
        scope_pop(t);
        p->kind = SCOPE_NONE;
    }
    scope_pop(t);
    sh->priv.kind = SCOPE_NONE;
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
