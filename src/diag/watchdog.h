/*
 * watchdog.h - the thread that reports a task keeping the scheduler's
 * thread too long (watchdog.c).
 */
#ifndef WEAVE_WATCHDOG_H
#define WEAVE_WATCHDOG_H

#include <stdint.h>

#include "core/sched.h"

/* Start the watchdog thread (threshold ms); 0 or -ENOMEM, -EAGAIN. */
int weave__watchdog_start(struct weave__sched *s, int64_t ms);

/* Stop and join it, if it runs. */
void weave__watchdog_stop(struct weave__sched *s);

#endif /* WEAVE_WATCHDOG_H */
