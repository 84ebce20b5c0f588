/*
 * task.c - the task API: spawn, join, detach, cancel, yield, names and ids.
 *
 * A task is born with a record, a handle slot and a stack whose top holds
 * its saved context; it ends when its function returns (task_main), which
 * wakes every task waiting in its `ended` queue (weave_join, select). Its
 * stack is freed by the next context to run; its record when it is joined
 * or, if detached, as soon as it ends.
 */
#include "base/common.h"
#include "core/scope.h"
#include "core/task.h"
#include "core/wait.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bytes kept at the top of every stack for the task's record. */
#define RECORD_BYTES ((sizeof(struct weave__task) + 63) & ~(size_t)63)

/* Look up a handle for a public call: the scheduler and task, or -errno. */
static int lookup(const weave_task *h, struct weave__sched **sp, struct weave__task **tp)
{
    struct weave__sched *s = weave__tls;

    if (!s)
        return -EPERM;
    *sp = s;
    *tp = weave__handle_task(&s->handles, h);
    return *tp ? 0 : -ESRCH;
}

static _Noreturn void task_main(void *arg)
{
    struct weave__task *t = arg;
    struct weave__sched *s = weave__tls;

    weave__reap(s);
    t->result = t->fn(t->arg);
    if (__builtin_expect(t->nscopes > 0, 0))
        weave__scopes_at_end(t);

    t->state = WEAVE__DONE;
    weave__live_remove(s, t);
    if (t->flags & WEAVE__MAIN) {
        s->shutting_down = true;
        weave__cancel_all(s);
    }
    weave__queue_wake_all(s, &t->ended, 0);
    weave__switch_exit(s, t);
}

/* Make a task and queue it; returns it, or NULL with *err set to a negative
 * errno. */
static struct weave__task *task_new(struct weave__sched *s, size_t stack_size, size_t guard,
                                    const char *name, weave_fn fn, void *arg, int *err)
{
    struct weave__task *t;
    struct weave__stack st;
    size_t total = weave__stack_round(&s->stacks, stack_size + RECORD_BYTES);
    uint32_t slot;
    int r;

    /* Every task has at most one timer armed: keep the heap big enough for
     * all of them, so that arming one never fails. */
    if (s->live_count >= s->timers.cap &&
        weave__timers_reserve(&s->timers, (size_t)s->live_count + 1) < 0) {
        *err = -ENOMEM;
        return NULL;
    }
    if ((r = weave__stack_alloc_guarded(&s->stacks, total, guard, &st)) < 0) {
        *err = r;
        return NULL;
    }
    t = (struct weave__task *)(void *)(st.lo + st.size - RECORD_BYTES);
    if ((r = weave__handle_alloc(&s->handles, t, &slot)) < 0) {
        weave__stack_free(&s->stacks, &st);
        *err = r;
        return NULL;
    }
    /* Every field but the scope slots, each once: the stack may be a used
     * one. (link and live are set when it is queued, state too.) */
    t->stack = st;
    t->timer.index = WEAVE__TIMER_IDLE;
    t->wait = NULL;
    weave__queue_init(&t->ended);
    t->fn = fn;
    t->arg = arg;
    t->result = NULL;
    t->scope_low = UINTPTR_MAX;
    t->deadline = WEAVE__NO_DEADLINE;
    t->shields = 0;
    t->nscopes = 0;
    t->sched = s;
    t->group = NULL;
    t->slot = slot;
    t->id = ++s->next_id;
    t->key = weave__task_key(s, t->id);
    t->flags = s->shutting_down ? WEAVE__CANCELLED : 0;
    t->name[0] = '\0';
    weave__ctx_make(&t->ctx, &s->tmpl, st.lo, st.size - RECORD_BYTES, task_main, t);
    if (name) { /* else "task-<id>", made when asked for */
        size_t len = strnlen(name, WEAVE_NAME_MAX - 1);
        memcpy(t->name, name, len);
        t->name[len] = '\0';
    }
    s->spawned++;
    weave__live_add(s, t);
    return t;
}

struct weave__task *weave__spawn_main(struct weave__sched *s, weave_fn fn, void *arg, int *err)
{
    struct weave__task *t = task_new(s, s->default_stack, 0, "main", fn, arg, err);

    if (t)
        t->flags |= WEAVE__MAIN;
    return t;
}

static int check_stack_size(size_t size)
{
    return size >= WEAVE_STACK_MIN && size <= WEAVE_STACK_MAX ? 0 : -EINVAL;
}

int weave__check_stack_size(size_t size)
{
    return check_stack_size(size);
}

/* A guard size of the options: 0 means the default, else at most the max. */
int weave__check_guard_size(size_t size)
{
    return size <= WEAVE_GUARD_MAX ? 0 : -EINVAL;
}

static bool bad_opts(const weave_task_opts *opts)
{
    return opts && ((opts->stack_size && check_stack_size(opts->stack_size) < 0) ||
                    weave__check_guard_size(opts->guard_size) < 0 ||
                    !weave__all_zero(opts->reserved, sizeof(opts->reserved)));
}

struct weave__task *weave__task_spawn(struct weave__sched *s, const weave_task_opts *opts,
                                      weave_fn fn, void *arg, int *err)
{
    size_t size;

    if (bad_opts(opts)) {
        *err = -EINVAL;
        return NULL;
    }
    size = opts && opts->stack_size ? opts->stack_size : s->default_stack;
    /* A guard of 0 bytes is the pool's default: the scheduler's. */
    return task_new(s, size, opts ? opts->guard_size : 0, opts ? opts->name : NULL, fn, arg, err);
}

weave_task *weave_spawn_with(const weave_task_opts *opts, weave_fn fn, void *arg)
{
    struct weave__sched *s = weave__tls;
    struct weave__task *t;
    int err;

    if (!fn || bad_opts(opts)) {
        errno = EINVAL;
        return NULL;
    }
    if (!s) {
        errno = EPERM;
        return NULL;
    }
    t = weave__task_spawn(s, opts, fn, arg, &err);
    if (!t) {
        errno = -err;
        return NULL;
    }
    return weave__handle_of(&s->handles, t->slot);
}

weave_task *weave_spawn(weave_fn fn, void *arg)
{
    struct weave__sched *s = weave__tls;
    struct weave__task *t;
    int err;

    /* weave_spawn_with(NULL, fn, arg), without the options to look at */
    if (!fn || !s) {
        errno = !fn ? EINVAL : EPERM;
        return NULL;
    }
    t = task_new(s, s->default_stack, 0, NULL, fn, arg, &err);
    if (!t) {
        errno = -err;
        return NULL;
    }
    return weave__handle_of(&s->handles, t->slot);
}

WEAVE__ENTRY int weave_join(weave_task *h, void **result)
{
    struct weave__sched *s;
    struct weave__task *t;
    int r = lookup(h, &s, &t);

    WEAVE__SCOPES_CHECK();
    if (r < 0)
        return weave__ret(r);
    if (t == s->current)
        return weave__ret(-EDEADLK);
    if (t->flags & (WEAVE__DETACHED | WEAVE__MAIN | WEAVE__JOINING))
        return weave__ret(-EINVAL);
    if (t->state != WEAVE__DONE) {
        /* t cannot be released while we wait: only its joiner (us) could. */
        t->flags |= WEAVE__JOINING;
        r = weave__why_errno(
            weave__wait_in(s, WEAVE_WAIT_JOIN, t, &t->ended, NULL, WEAVE__NO_DEADLINE, NULL));
        t->flags &= (uint8_t)~WEAVE__JOINING;
        if (r < 0)
            return weave__ret(r);
    }
    if (result)
        *result = t->result;
    weave__task_release(s, t);
    return 0;
}

int weave_detach(weave_task *h)
{
    struct weave__sched *s;
    struct weave__task *t;
    int r = lookup(h, &s, &t);

    if (r < 0)
        return weave__ret(r);
    if (t->flags & (WEAVE__DETACHED | WEAVE__MAIN | WEAVE__JOINING))
        return weave__ret(-EINVAL);
    if (t->flags & WEAVE__REAPED)
        weave__task_release(s, t);
    else
        t->flags |= WEAVE__DETACHED;
    return 0;
}

int weave_cancel(weave_task *h)
{
    struct weave__sched *s;
    struct weave__task *t;
    int r = lookup(h, &s, &t);

    if (r < 0)
        return weave__ret(r);
    weave__cancel(s, t);
    return 0;
}

int weave_cancelled(const weave_task *h)
{
    struct weave__sched *s;
    struct weave__task *t;
    int r = lookup(h, &s, &t);

    if (r < 0)
        return weave__ret(r);
    return (t->flags & WEAVE__CANCELLED) != 0;
}

weave_task *weave_self(void)
{
    struct weave__sched *s = weave__tls;

    if (!s) {
        errno = EPERM;
        return NULL;
    }
    return weave__handle_of(&s->handles, s->current->slot);
}

const char *weave_task_name(const weave_task *h)
{
    struct weave__sched *s;
    struct weave__task *t;
    int r = lookup(h, &s, &t);

    if (r < 0) {
        errno = -r;
        return NULL;
    }
    return weave__task_name(t);
}

uint64_t weave_task_id(const weave_task *h)
{
    struct weave__sched *s;
    struct weave__task *t;
    int r = lookup(h, &s, &t);

    if (r < 0) {
        errno = -r;
        return 0;
    }
    return t->id;
}

WEAVE__ENTRY int weave_yield(void)
{
    struct weave__sched *s = weave__tls;

    WEAVE__SCOPES_CHECK();
    if (!s)
        return weave__ret(-EPERM);
    weave__yield(s);
    return weave__ret(weave__checkpoint(s));
}
