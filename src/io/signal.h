/*
 * signal.h - signals as events (signal.c), as seen by the other modules.
 */
#ifndef WEAVE_SIGNAL_H
#define WEAVE_SIGNAL_H

#include <signal.h>
#include <stdbool.h>

#include "core/sched.h"

/* Whether weave can never wait for sig: unblockable, synchronous, weave's
 * own (SIGPIPE) or kept by the C library. */
bool weave__signal_refused(int sig);

/* What a watched signal calls, on the scheduler's thread, when it comes. */
typedef void weave__signal_fn(struct weave__sched *s, int sig);

/* Watch sig on the scheduler's signalfd for good: each arrival calls fn,
 * between tasks. sig must be blocked on the thread already, before the
 * context template was taken (weave_run does so for its dump signal), and
 * weave_signal_wait refuses it from now on. One watched signal per
 * scheduler. 0 or -errno (EMFILE, ENFILE, ENOMEM: no signalfd). */
int weave__signal_watch(struct weave__sched *s, int sig, weave__signal_fn *fn);

/* Another scheduler started with s was stopped by sig (SIGINT, SIGTERM):
 * stop s as if it had caught it itself, unless it was stopped already. */
void weave__signal_stopped(struct weave__sched *s, int sig);

/* End what weave_signal_wait and weave_cancel_on_signals set up in this run
 * (the poller must still be there): add to *blocked the signals they
 * blocked on the thread, which weave_run unblocks once it has taken what is
 * pending of them. Returns the signal that cancelled the main task, or 0.
 * Ends the process as a second stop signal would if one is pending. */
int weave__signal_term(struct weave__sched *s, sigset_t *blocked);

#endif /* WEAVE_SIGNAL_H */
