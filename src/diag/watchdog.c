/*
 * watchdog.c - the watchdog (weave_run_opts.watchdog_ms): a thread that
 * reports a task that keeps the scheduler's thread too long.
 *
 * The thread samples a counter the scheduler bumps at each pick (a relaxed
 * store, no locked instruction, and only while a watchdog runs): a counter
 * that stands still longer than the threshold while a task runs is a task
 * that does not give up the thread. The thread names the task by id at
 * once; the scheduler names it again, with its name and the whole time,
 * when it finally gives up the thread (weave__watchdog_report).
 */
#include "core/task.h"
#include "diag/watchdog.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

struct weave__watchdog {
    struct weave__sched *s;
    int64_t threshold_ns;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
};

static void *watchdog_main(void *arg)
{
    struct weave__watchdog *wd = arg;
    struct weave__sched *s = wd->s;
    int64_t period = wd->threshold_ns / 4 > 1000000 ? wd->threshold_ns / 4 : 1000000;
    uint64_t seen = __atomic_load_n(&s->picks, __ATOMIC_RELAXED);
    int64_t since = weave__clock_real_ns();
    bool reported = false;

    pthread_mutex_lock(&wd->mu);
    while (!wd->stop) {
        int64_t at = weave__clock_real_ns() + period, now;
        struct timespec ts = {(time_t)(at / 1000000000), (long)(at % 1000000000)};
        uint64_t picks, id;

        (void)pthread_cond_timedwait(&wd->cv, &wd->mu, &ts);
        picks = __atomic_load_n(&s->picks, __ATOMIC_RELAXED);
        id = __atomic_load_n(&s->running_id, __ATOMIC_RELAXED);
        now = weave__clock_real_ns();
        if (picks != seen || id == 0) {
            seen = picks;
            since = now;
            reported = false;
        } else if (!reported && now - since >= wd->threshold_ns) {
            char line[160];
            int n = snprintf(line, sizeof(line),
                             "weave: watchdog: task %llu has run for %lld ms without giving up "
                             "the thread\n",
                             (unsigned long long)id, (long long)((now - since) / 1000000));

            /* since first: the scheduler reads it once it sees the id. */
            __atomic_store_n(&s->stall_since, since, __ATOMIC_RELAXED);
            __atomic_store_n(&s->stall_id, id, __ATOMIC_RELEASE);
            if (n > 0 && write(STDERR_FILENO, line, (size_t)n) < 0) {
                /* stderr is gone: nobody to tell */
            }
            reported = true;
        }
    }
    pthread_mutex_unlock(&wd->mu);
    return NULL;
}

/* The task the watchdog reported gives up the thread: name it, with its
 * whole time (struct weave__sched.on_stall, called at the next pick). */
static void report(struct weave__sched *s)
{
    uint64_t id = __atomic_load_n(&s->stall_id, __ATOMIC_ACQUIRE);
    int64_t since = __atomic_load_n(&s->stall_since, __ATOMIC_RELAXED);
    struct weave__task *t = s->current;

    __atomic_store_n(&s->stall_id, 0, __ATOMIC_RELAXED);
    if (t && t->id == id)
        (void)fprintf(stderr,
                      "weave: watchdog: task %llu (%s) ran %lld ms without giving up the thread\n",
                      (unsigned long long)id, weave__task_name(t),
                      (long long)((weave__clock_real_ns() - since) / 1000000));
}

int weave__watchdog_start(struct weave__sched *s, int64_t ms)
{
    struct weave__watchdog *wd = calloc(1, sizeof(*wd));
    pthread_condattr_t ca;
    sigset_t all, old;
    int r;

    if (!wd)
        return -ENOMEM;
    wd->s = s;
    wd->threshold_ns = ms > INT64_MAX / 1000000 ? INT64_MAX : ms * 1000000;
    pthread_mutex_init(&wd->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&wd->cv, &ca);
    pthread_condattr_destroy(&ca);
    sigfillset(&all); /* the thread takes no signal meant for the program */
    pthread_sigmask(SIG_SETMASK, &all, &old);
    r = pthread_create(&wd->thread, NULL, watchdog_main, wd);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r != 0) {
        pthread_cond_destroy(&wd->cv);
        pthread_mutex_destroy(&wd->mu);
        free(wd);
        return -EAGAIN;
    }
    s->on_stall = report;
    s->watchdog = wd;
    return 0;
}

void weave__watchdog_stop(struct weave__sched *s)
{
    struct weave__watchdog *wd = s->watchdog;

    if (!wd)
        return;
    pthread_mutex_lock(&wd->mu);
    wd->stop = true;
    pthread_cond_signal(&wd->cv);
    pthread_mutex_unlock(&wd->mu);
    pthread_join(wd->thread, NULL);
    pthread_cond_destroy(&wd->cv);
    pthread_mutex_destroy(&wd->mu);
    free(wd);
    s->watchdog = NULL;
}
