/*
 * group.c - task groups (asyncio.TaskGroup and gather): members whose
 * results are kept in spawn order, one error that cancels them all, and a
 * wait for every one of them.
 *
 * A member runs member_main, which calls the user's function and, when it
 * returns, keeps its result in the member's record (a detached member's
 * record is freed instead), takes the member off the group's live list
 * and, when it was the last one, wakes the tasks in weave_group_wait. The member's task is detached (the group, not the user,
 * owns it): its record goes as soon as it ends, and its result stays in the
 * group until weave_group_free.
 */
#include "base/common.h"
#include "core/scope.h"
#include "core/task.h"
#include "core/time.h"
#include "core/wait.h"

#include <stdlib.h>

struct member {
    struct weave_link live; /* in the group's live list, while it runs */
    struct weave_group *g;  /* its group */
    weave_fn fn;            /* the user's function and argument */
    void *arg;
    void *result;             /* fn's return value, once ended */
    struct weave__task *task; /* its task, while it runs */
    bool ended;               /* fn returned */
    bool cancelled;           /* it was cancelled before fn returned */
    bool kept;                /* has an index: its result is kept */
};

struct weave_group {
    struct member **members;    /* [n] in spawn order */
    size_t n, cap;              /* members spawned, room */
    struct weave_link live;     /* members that have not ended */
    size_t nlive;               /* their number */
    int err;                    /* the group's error, 0 if none */
    struct weave_waitq waiters; /* tasks in weave_group_wait or _free */
    size_t waiting;             /* tasks inside weave_group_wait, woken or not */
    const void *home;           /* the thread whose tasks use it (weave__claim) */
    bool freeing;               /* weave_group_free waits for the rest */
};

weave_group *weave_group_new(void)
{
    weave_group *g = calloc(1, sizeof(*g));

    if (!g) {
        errno = ENOMEM;
        return NULL;
    }
    weave__list_init(&g->live);
    weave__queue_init(&g->waiters);
    return g;
}

static void *member_main(void *p)
{
    struct member *m = p;
    weave_group *g = m->g;

    void *r = m->fn(m->arg);

    m->result = r;
    m->ended = true;
    m->cancelled = (m->task->flags & WEAVE__CANCELLED) != 0;
    m->task = NULL;
    weave__list_del(&m->live);
    if (!m->kept)
        free(m); /* nobody will ask for its result */
    if (--g->nlive == 0)
        weave__queue_wake_all(weave__tls, &g->waiters, 0);
    return r;
}

/* The scheduler for a call on g that touches its tasks: EPERM outside a
 * task, or if another thread's tasks use g. */
static int sched_of(weave_group *g, struct weave__sched **sp)
{
    struct weave__sched *s = weave__tls;

    *sp = s;
    if (!s)
        return -EPERM;
    return weave__claim(&g->home, s);
}

static void cancel_members(struct weave__sched *s, weave_group *g)
{
    struct weave_link *n, *tmp;

    weave__list_each(n, tmp, &g->live)
        weave__cancel(s, weave__container_of(n, struct member, live)->task);
}

static weave_task *group_spawn(weave_group *g, const weave_task_opts *opts, weave_fn fn, void *arg,
                               bool kept)
{
    struct weave__sched *s;
    struct weave__task *t;
    struct member *m;
    int r;

    if (!g || !fn) {
        errno = EINVAL;
        return NULL;
    }
    if ((r = sched_of(g, &s)) < 0) {
        errno = -r;
        return NULL;
    }
    if (g->freeing) {
        errno = EINVAL;
        return NULL;
    }
    if (kept && g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 8;
        struct member **v = realloc(g->members, cap * sizeof(struct member *));
        if (!v) {
            errno = ENOMEM;
            return NULL;
        }
        g->members = v;
        g->cap = cap;
    }
    if (!(m = calloc(1, sizeof(*m)))) {
        errno = ENOMEM;
        return NULL;
    }
    m->g = g;
    m->fn = fn;
    m->arg = arg;
    m->kept = kept;
    if (!(t = weave__task_spawn(s, opts, member_main, m, &r))) {
        free(m);
        errno = -r;
        return NULL;
    }
    t->flags |= WEAVE__DETACHED;
    t->group = g;
    if (g->err)
        t->flags |= WEAVE__CANCELLED; /* the group failed or was cancelled */
    m->task = t;
    weave__list_push(&g->live, &m->live);
    g->nlive++;
    if (kept)
        g->members[g->n++] = m;
    return weave__handle_of(&s->handles, t->slot);
}

weave_task *weave_group_spawn_with(weave_group *g, const weave_task_opts *opts, weave_fn fn,
                                   void *arg)
{
    return group_spawn(g, opts, fn, arg, true);
}

weave_task *weave_group_spawn(weave_group *g, weave_fn fn, void *arg)
{
    return group_spawn(g, NULL, fn, arg, true);
}

weave_task *weave_group_spawn_detached(weave_group *g, weave_fn fn, void *arg)
{
    return group_spawn(g, NULL, fn, arg, false);
}

/* Record err as g's error if it has none, and cancel its members. */
static int fail(weave_group *g, int err)
{
    struct weave__sched *s;
    int r;

    if ((r = sched_of(g, &s)) < 0)
        return r;
    if (!g->err)
        g->err = err;
    if (g->nlive > 0)
        cancel_members(s, g);
    return 0;
}

int weave_group_fail(weave_group *g, int err)
{
    if (!g || err <= 0)
        return weave__ret(-EINVAL);
    return weave__ret(fail(g, err));
}

int weave_group_cancel(weave_group *g)
{
    if (!g)
        return weave__ret(-EINVAL);
    return weave__ret(fail(g, ECANCELED));
}

static int group_wait(weave_group *g, int64_t timeout_ms)
{
    struct weave__sched *s;
    int64_t timeout;
    int r, why;

    if (!g || (timeout = weave__deadline_in(timeout_ms, 1000000)) < 0)
        return -EINVAL;
    if ((r = sched_of(g, &s)) < 0)
        return r;
    if (g->freeing)
        return -EINVAL;
    if (s->current->group == g)
        return -EDEADLK;
    r = weave__checkpoint(s);
    g->waiting++; /* weave_group_free must not free g under us */
    while (r == 0 && g->nlive > 0) {
        if (timeout_ms == 0) {
            r = -ETIMEDOUT;
            break;
        }
        why = weave__wait_in(s, WEAVE_WAIT_GROUP, g, &g->waiters, NULL, timeout, NULL);
        r = weave__why_errno(why);
    }
    g->waiting--;
    if (r == -ECANCELED)
        fail(g, ECANCELED); /* the waiter's cancellation reaches its members */
    if (r < 0)
        return r;
    return g->err ? -g->err : 0;
}

WEAVE__ENTRY int weave_group_wait(weave_group *g, int64_t timeout_ms)
{
    WEAVE__SCOPES_CHECK();
    return weave__ret(group_wait(g, timeout_ms));
}

int weave_group_result(weave_group *g, size_t i, void **result)
{
    int r;

    if (!g)
        return weave__ret(-EINVAL);
    if ((r = weave__at_home(&g->home)) < 0)
        return weave__ret(r);
    if (i >= g->n)
        return weave__ret(-EINVAL);
    if (!g->members[i]->ended)
        return weave__ret(-EBUSY);
    if (result)
        *result = g->members[i]->result;
    return 0;
}

int weave_group_cancelled(weave_group *g, size_t i)
{
    int r;

    if (!g)
        return weave__ret(-EINVAL);
    if ((r = weave__at_home(&g->home)) < 0)
        return weave__ret(r);
    if (i >= g->n)
        return weave__ret(-EINVAL);
    if (!g->members[i]->ended)
        return weave__ret(-EBUSY);
    return g->members[i]->cancelled;
}

size_t weave_group_size(const weave_group *g)
{
    return g && weave__at_home(&g->home) == 0 ? g->n : 0;
}

WEAVE__ENTRY int weave_group_free(weave_group *g)
{
    struct weave__sched *s;
    weave_shield sh;
    int r;

    WEAVE__SCOPES_CHECK();
    if (!g)
        return weave__ret(-EINVAL);
    if ((r = weave__at_home(&g->home)) < 0)
        return weave__ret(r); /* another thread's tasks use it */
    if (g->freeing)
        return weave__ret(-EINVAL);
    if (g->waiting > 0)
        return weave__ret(-EBUSY);
    if (g->nlive > 0) {
        if ((r = sched_of(g, &s)) < 0)
            return weave__ret(r);
        if (s->current->group == g)
            return weave__ret(-EDEADLK);
        g->freeing = true;
        cancel_members(s, g);
        /* Wait for them even if we are cancelled or past a deadline. */
        weave_shield_begin(&sh);
        while (g->nlive > 0)
            (void)weave__wait_in(s, WEAVE_WAIT_GROUP, g, &g->waiters, NULL, WEAVE__NO_DEADLINE,
                                 NULL);
        weave_shield_end(&sh);
    }
    for (size_t i = 0; i < g->n; i++)
        free(g->members[i]);
    free(g->members);
    free(g);
    return 0;
}
