/*
 * introspect.h - seeing inside a scheduler (introspect.c): the task list
 * as text, and what weave_run_opts asks for at the start of a run.
 */
#ifndef WEAVE_INTROSPECT_H
#define WEAVE_INTROSPECT_H

#include "core/sched.h"
#include "weave.h"

/* Write the task list of s to fd (weave_dump); 0 or a negative errno. */
int weave__dump(struct weave__sched *s, int fd);

/* Check the introspection options of o (dump_signal, watchdog_ms): 0 or
 * -EINVAL. */
int weave__introspect_check(const weave_run_opts *o);

/* Start what o asks for: the deadlock report on stderr (unless turned
 * off), the dump on a signal, the watchdog thread. 0 or -errno, with
 * nothing started. */
int weave__introspect_start(struct weave__sched *s, const weave_run_opts *o);

/* Stop what weave__introspect_start started. */
void weave__introspect_stop(struct weave__sched *s);

#endif /* WEAVE_INTROSPECT_H */
