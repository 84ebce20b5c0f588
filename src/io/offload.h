/*
 * offload.h - the scheduler's pool of worker threads (offload.c).
 */
#ifndef WEAVE_OFFLOAD_H
#define WEAVE_OFFLOAD_H

#include <stdint.h>

#include "core/sched.h"
#include "weave.h"

#define WEAVE_OFFLOAD_DEFAULT 4 /* offload threads unless told */

#define WEAVE_OFFLOAD_MAX 1024 /* more is refused with EINVAL */

/* Make and free the scheduler's offload state (no thread starts before the
 * first call). init returns 0 or -ENOMEM. term waits for the calls still
 * running, discards abandoned results and joins the threads. */
int weave__offload_init(struct weave__sched *s, unsigned max_threads);
void weave__offload_term(struct weave__sched *s);

/* The offload figures of weave_get_stats. */
void weave__offload_stats(const struct weave__sched *s, weave_stats *st);

/*
 * Run fn(arg) on a worker, parking the current task until it returns or
 * timeout passes. also, if not NULL, is one more queue to wait in: a
 * weave__queue_close on it ends the wait with -EBADF (fd.c closes an fd's
 * queues). Returns 0 with *result set. Or the call was accepted but the
 * task stopped waiting: -ECANCELED, -ETIMEDOUT or -EBADF, after which
 * discard(result, arg) runs on the scheduler's thread once fn has returned
 * (result NULL if it never ran). Or the call was not accepted and arg is
 * still the caller's: -ENOMEM, -EAGAIN, -EMFILE, -ENFILE.
 */
int weave__offload(struct weave__sched *s, weave_fn fn, void *arg, void **result,
                   weave_discard_fn discard, int64_t timeout, struct weave_waitq *also);

#endif /* WEAVE_OFFLOAD_H */
