/*
 * task.h - making tasks (task.c), for the layers that spawn them: groups,
 * posts and the scheduler's main task.
 */
#ifndef WEAVE_TASK_H
#define WEAVE_TASK_H

#include <stddef.h>

#include "core/sched.h"

/* Spawn a task as weave_spawn_with does (opts may be NULL). Returns its
 * record, or NULL with *err set (-EINVAL bad opts, -ENOMEM). */
struct weave__task *weave__task_spawn(struct weave__sched *s, const weave_task_opts *opts,
                                      weave_fn fn, void *arg, int *err);

/* Spawn a scheduler's main task. Returns it, or NULL with *err set. */
struct weave__task *weave__spawn_main(struct weave__sched *s, weave_fn fn, void *arg, int *err);

/* 0 if size is a valid stack size (WEAVE_STACK_MIN..MAX), else -EINVAL. */
int weave__check_stack_size(size_t size);

/* 0 if size is a valid guard_size of weave_run_opts or weave_task_opts (0,
 * the default, or at most WEAVE_GUARD_MAX), else -EINVAL. */
int weave__check_guard_size(size_t size);

#endif /* WEAVE_TASK_H */
