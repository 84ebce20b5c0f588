/*
 * time.h - public timeouts turned into deadlines (time.c).
 */
#ifndef WEAVE_CORE_TIME_H
#define WEAVE_CORE_TIME_H

#include <stdint.h>

/* The deadline of a public timeout of amount units of unit_ns: an absolute
 * time on the scheduler's clock, WEAVE__NO_DEADLINE for -1 (or too large
 * to represent), or -EINVAL if amount < -1 (deadlines are never negative). */
int64_t weave__deadline_in(int64_t amount, int64_t unit_ns);

#endif /* WEAVE_CORE_TIME_H */
