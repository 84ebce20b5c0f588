/*
 * mask.h - the signal mask of a scheduler's thread (mask.c).
 */
#ifndef WEAVE_MASK_H
#define WEAVE_MASK_H

#include <signal.h>
#include <stdbool.h>

/* The signals a scheduler blocks on its thread, as it found them: SIGPIPE,
 * and the dump signal if there is one; and those that tasks blocked through
 * signal.c during the run. */
struct weave__mask {
    int sig[2];             /* the signals; 0 = none */
    sigset_t old_mask;      /* the thread's mask before weave_run */
    bool pending_before[2]; /* pending already: not ours to take */
    sigset_t tasks;         /* blocked for weave_signal_wait and
                               weave_cancel_on_signals */
};

/* Block SIGPIPE (and the dump signal, if not 0) on the calling thread,
 * keeping in *ms what to restore. Before the context template is taken, so
 * that every task runs with them blocked. */
void weave__mask_block(struct weave__mask *ms, int dump_signal);

/* Take what the run left pending of them (and of ms->tasks, the signals
 * tasks waited for), then unblock each signal unless the thread had it
 * blocked before. */
void weave__mask_restore(const struct weave__mask *ms);

#endif /* WEAVE_MASK_H */
