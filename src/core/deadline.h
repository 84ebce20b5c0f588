/*
 * deadline.h - what the _timeout variants of the blocking calls need of
 * deadline scopes (deadline.c).
 */
#ifndef WEAVE_DEADLINE_H
#define WEAVE_DEADLINE_H

#include <stdint.h>

#include "weave.h"

/* Begin a deadline scope of timeout_ms for a _timeout call: -EINVAL for a
 * timeout below -1 (nothing begun), else 0. */
int weave__timed_begin(weave_deadline *d, int64_t timeout_ms);

/* End it without disturbing errno; returns r, the call's result. */
int weave__timed_end(weave_deadline *d, int r);

#endif /* WEAVE_DEADLINE_H */
