/*
 * deadline.c - deadline scopes and shields (asyncio.timeout, Trio's
 * fail_after and shielded cancel scopes): the public calls, on the task's
 * scope records (scope.c).
 *
 * Beginning a scope lowers the task's deadline to its own, if that is
 * nearer; a shield lifts it (outer deadlines stop applying) and turns
 * cancellation off; ending either puts back what applied before. Begin and
 * end are O(1); the blocking calls only compare t->deadline with the clock
 * (weave__checkpoint) and arm the task's one timer at it (weave__park).
 */
#include "core/deadline.h"

#include <stdio.h>

#include "base/common.h"
#include "core/scope.h"
#include "core/time.h"

WEAVE__ENTRY void weave_deadline_begin(weave_deadline *d, int64_t timeout_ms)
{
    struct weave__sched *s = weave__tls;
    const void *where = __builtin_return_address(0);
    struct weave__task *t;
    int64_t at;

    WEAVE__SCOPES_CHECK();
    if (!d)
        return;
    d->priv.kind = WEAVE__SCOPE_NONE;
    if (!s)
        return;
    t = s->current;
    at = weave__deadline_in(timeout_ms, 1000000);
    if (at < 0) {
        /* A bad timeout never means "no deadline": the scope starts
         * expired, and its end reports EINVAL. */
        d->priv.at = 0;
        if (!weave__scope_open(t, &d->priv, WEAVE__SCOPE_BAD, 0, where))
            d->priv.kind = WEAVE__SCOPE_DEEP;
    } else {
        d->priv.at = at;
        if (!weave__scope_open(t, &d->priv, WEAVE__SCOPE_DEADLINE, at, where))
            d->priv.kind = WEAVE__SCOPE_DEEP;
    }
    if (d->priv.kind == WEAVE__SCOPE_DEEP) {
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
    if (d->priv.kind == WEAVE__SCOPE_DEEP) {
        t->deadline = d->priv.saved;
        d->priv.kind = WEAVE__SCOPE_NONE;
        return weave__ret(-EMLINK);
    }
    if (!weave__scope_is_innermost(t, &d->priv) ||
        (d->priv.kind != WEAVE__SCOPE_DEADLINE && d->priv.kind != WEAVE__SCOPE_BAD))
        return weave__ret(-EINVAL); /* not the caller's innermost scope */
    kind = d->priv.kind;
    weave__scope_close_innermost(t);
    if (kind == WEAVE__SCOPE_BAD)
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
    sh->priv.kind = WEAVE__SCOPE_NONE;
    sh->priv.at = WEAVE__NO_DEADLINE;
    if (s &&
        !weave__scope_open(s->current, &sh->priv, WEAVE__SCOPE_SHIELD, WEAVE__NO_DEADLINE, where)) {
        char at[256];

        weave__scope_describe(at, sizeof(at), where);
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

    WEAVE__SCOPES_CHECK();
    if (!sh || !s || sh->priv.kind != WEAVE__SCOPE_SHIELD)
        return;
    /* Scopes begun inside the shield and left open end with it. */
    (void)weave__scope_close_through(s->current, &sh->priv);
}

WEAVE__ENTRY void weave_deadline_cleanup(weave_deadline *d)
{
    int saved = errno;

    WEAVE__SCOPES_CHECK();
    if (d && d->priv.kind != WEAVE__SCOPE_NONE)
        (void)weave_deadline_end(d);
    errno = saved;
}

WEAVE__ENTRY void weave_shield_cleanup(weave_shield *sh)
{
    int saved = errno;

    WEAVE__SCOPES_CHECK();
    weave_shield_end(sh);
    errno = saved;
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
