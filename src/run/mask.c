/*
 * mask.c - the signal mask of a scheduler's thread while the scheduler is
 * bound to it: SIGPIPE blocked (so that writes to a closed peer fail with
 * EPIPE), the dump signal blocked (read by a signalfd), and at the end
 * everything put back as it was found, with what arrived meanwhile taken.
 */
#include "run/mask.h"

#include <pthread.h>
#include <string.h>
#include <time.h>

static bool sig_pending(int sig)
{
    sigset_t pending;

    return sigpending(&pending) == 0 && sigismember(&pending, sig);
}

/* Block SIGPIPE (and the dump signal) before the context template is
 * taken, so that every task runs with them blocked: a write to a closed
 * pipe or socket then fails with EPIPE instead of killing the process, and
 * the dump signal is read through a signalfd only. */
void weave__mask_block(struct weave__mask *ms, int dump_signal)
{
    sigset_t set;

    ms->sig[0] = SIGPIPE;
    ms->sig[1] = dump_signal;
    sigemptyset(&set);
    for (int i = 0; i < 2; i++)
        if (ms->sig[i])
            sigaddset(&set, ms->sig[i]);
    pthread_sigmask(SIG_BLOCK, &set, &ms->old_mask);
    for (int i = 0; i < 2; i++)
        ms->pending_before[i] = ms->sig[i] && sig_pending(ms->sig[i]);
    memset(&ms->tasks, 0, sizeof(ms->tasks)); /* sigorset reads all of it */
    sigemptyset(&ms->tasks);
}

/* Take every pending instance of sig (one may be pending for the thread
 * and one for the process). */
static void take_all(int sig)
{
    static const struct timespec zero = {0, 0};
    sigset_t one;

    sigemptyset(&one);
    sigaddset(&one, sig);
    while (sig_pending(sig) && sigtimedwait(&one, NULL, &zero) == sig)
        ;
}

/* Take what the run left pending (a SIGPIPE was reported as EPIPE already;
 * a dump signal that came too late to be read would otherwise kill the
 * process), then unblock each signal unless the caller had it blocked. */
void weave__mask_restore(const struct weave__mask *ms)
{
    for (int i = 0; i < 2; i++) {
        sigset_t one;
        struct timespec zero = {0, 0};

        if (!ms->sig[i])
            continue;
        sigemptyset(&one);
        sigaddset(&one, ms->sig[i]);
        if (!ms->pending_before[i] && sig_pending(ms->sig[i]))
            (void)sigtimedwait(&one, NULL, &zero);
        if (!sigismember(&ms->old_mask, ms->sig[i]))
            pthread_sigmask(SIG_UNBLOCK, &one, NULL);
    }
    /* A signal tasks waited for that came after the last wait belonged to
     * the run: it must not act now (a late SIGINT killing a program that
     * has shut down). One the caller had blocked stays as it is. */
    for (int sig = 1; sig < NSIG; sig++) {
        sigset_t one;

        if (sigismember(&ms->tasks, sig) != 1 || sigismember(&ms->old_mask, sig) == 1)
            continue;
        take_all(sig);
        sigemptyset(&one);
        sigaddset(&one, sig);
        pthread_sigmask(SIG_UNBLOCK, &one, NULL);
    }
}
