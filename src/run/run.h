/*
 * run.h - a scheduler as the public weave_sched (run.c): the core and what
 * binding it to a thread takes.
 */
#ifndef WEAVE_RUN_H
#define WEAVE_RUN_H

#include "core/sched.h"
#include "run/mask.h"
#include "weave.h"

struct group;

enum weave__sched_state {
    WEAVE__SCHED_NEW = 0, /* made; posts queue until it runs or steps */
    WEAVE__SCHED_RUNNING, /* in weave_sched_run, bound to its thread */
    WEAVE__SCHED_STEPPED, /* stepped once: bound to that thread until freed */
    WEAVE__SCHED_DONE     /* ran, or stepped and torn down: only free is left */
};

struct weave_sched {
    struct weave__sched core; /* what weave__tls points at */
    weave_run_opts opts;      /* as given (zero: the defaults) */
    int state;                /* enum weave__sched_state (atomic: any thread reads it) */
    struct weave__mask mask;  /* the bound thread's signal mask, to put back */
    void *overflow;           /* the fatal-signal handlers' token */
    struct group *group;      /* many.c: started with others, or NULL */
};

/* The scheduler bound to the calling thread (running or stepped), or NULL. */
struct weave_sched *weave__run_bound(void);

/* The weave_sched whose core s is. */
struct weave_sched *weave__run_of(struct weave__sched *s);

#endif /* WEAVE_RUN_H */
