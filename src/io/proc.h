/*
 * proc.h - child processes (proc.c), for the layer that ends a scheduler.
 */
#ifndef WEAVE_PROC_H
#define WEAVE_PROC_H

#include "core/sched.h"

/* The scheduler ends: reap every child of s that has ended, hand those
 * still running to a thread that reaps them as they end, close every pipe
 * and free every handle (freed by the user or not). No task runs. */
void weave__procs_term(struct weave__sched *s);

#endif /* WEAVE_PROC_H */
